/* Client requests: the handshake and status here; writes proposed to the
 * log (leader only); linearizable reads through ReadIndex; keepalives
 * batched into one Tick entry per leader tick. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "node_int.h"
#include "pb_unknown.h"
#include "synod.h"
#include "version.h"

/* ---------------------------------------------------------- answering */

static size_t varint_encode(uint64_t v, uint8_t *out) {
  size_t n = 0;
  do {
    out[n] = (uint8_t)(v & 0x7f);
    v >>= 7;
    out[n] |= v ? 0x80 : 0;
    n++;
  } while (v);
  return n;
}

/* Sends a ServerMessage whose field `field` (1 response, 2 event) holds
 * `body`, with Response.id prepended when request_id is non-zero (protobuf
 * merges a repeated field occurrence, so the packed bytes need no
 * decoding). */
static void requests_send_wrapped(struct node *n, uint64_t conn_id,
                                  unsigned field, uint64_t request_id,
                                  const uint8_t *body, size_t len) {
  uint8_t id_field[11];
  size_t id_len = 0;
  if (request_id != 0) {
    id_field[0] = 0x08; /* field 1, varint */
    id_len = 1 + varint_encode(request_id, id_field + 1);
  }
  size_t inner = id_len + len;
  uint8_t head[11];
  head[0] = (uint8_t)(field << 3 | 2); /* length-delimited */
  size_t head_len = 1 + varint_encode(inner, head + 1);
  uint8_t *buf = malloc(head_len + inner);
  if (buf == NULL) {
    log_error("node", "answer to %s: out of memory",
              client_net_remote(n->client_net, conn_id));
    return;
  }
  memcpy(buf, head, head_len);
  memcpy(buf + head_len, id_field, id_len);
  memcpy(buf + head_len + id_len, body, len);
  client_net_send_bytes(n->client_net, conn_id, buf, head_len + inner);
  free(buf);
}

void requests_send_packed(struct node *n, uint64_t conn_id, uint64_t request_id,
                          const uint8_t *resp, size_t len) {
  requests_send_wrapped(n, conn_id, 1, request_id, resp, len);
}

void requests_send_event(struct node *n, uint64_t conn_id, const uint8_t *event,
                         size_t len) {
  requests_send_wrapped(n, conn_id, 2, 0, event, len);
}

/* 0, or why it was not sent (the connection is gone, or closing). */
static int requests_send_response(struct node *n, uint64_t conn_id,
                                  Synod__Response *resp) {
  Synod__ServerMessage sm = SYNOD__SERVER_MESSAGE__INIT;
  sm.body_case = SYNOD__SERVER_MESSAGE__BODY_RESPONSE;
  sm.response = resp;
  return client_net_send(n->client_net, conn_id, &sm);
}

void requests_send_ok(struct node *n, uint64_t conn_id, uint64_t request_id) {
  Synod__Response resp = SYNOD__RESPONSE__INIT;
  resp.id = request_id;
  requests_send_response(n, conn_id, &resp);
}

/* Not the leader: tell the client where the leader is, or that there is
 * none right now (an election is on; retry shortly). */
static void requests_redirect(struct node *n, uint64_t conn_id,
                              uint64_t request_id) {
  Synod__Response resp = SYNOD__RESPONSE__INIT;
  Synod__Error err = SYNOD__ERROR__INIT;
  char text[160];
  const char *addr = node_leader_client_address(n);
  resp.id = request_id;
  resp.error = &err;
  if (n->leader != 0 && addr[0] != '\0' && !n->shutting_down) {
    err.code = SYNOD__ERROR_CODE__SYNOD_ENOTLEADER;
    err.leader_name = (char *)node_member_name(n, n->leader);
    err.leader_address = (char *)addr;
    snprintf(text, sizeof text, "%s is not the leader; %s at %s is", n->name,
             err.leader_name, addr);
  } else {
    err.code = SYNOD__ERROR_CODE__SYNOD_ENOLEADER;
    snprintf(text, sizeof text, "%s knows no leader (term %llu); retry",
             n->name, (unsigned long long)n->term);
  }
  err.message = text;
  /* Marked only while the connection is open: requests_on_close has
   * taken a closed one out for good. */
  if (requests_send_response(n, conn_id, &resp) == 0) {
    (void)u64map_put(&n->redirected, conn_id, (void *)1);
  }
}

/* ------------------------------------------------------------ handshake */

static void requests_hello(struct node *n, uint64_t conn_id, uint64_t id) {
  Synod__Response resp = SYNOD__RESPONSE__INIT;
  Synod__HelloReply h = SYNOD__HELLO_REPLY__INIT;
  h.protocol_version = SYNOD__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
  h.server_name = n->name;
  h.cluster_id = n->cluster_id;
  h.leader_name = n->leader ? (char *)node_member_name(n, n->leader) : "";
  h.leader_address = (char *)node_leader_client_address(n);
  h.term = n->term;
  resp.id = id;
  resp.body_case = SYNOD__RESPONSE__BODY_HELLO;
  resp.hello = &h;
  requests_send_response(n, conn_id, &resp);
}

void requests_broadcast_leader(struct node *n) {
  Synod__ServerMessage sm = SYNOD__SERVER_MESSAGE__INIT;
  Synod__Event ev = SYNOD__EVENT__INIT;
  Synod__LeaderChanged lc = SYNOD__LEADER_CHANGED__INIT;
  lc.leader_name = n->leader ? (char *)node_member_name(n, n->leader) : "";
  lc.leader_address = (char *)node_leader_client_address(n);
  lc.term = n->term;
  ev.body_case = SYNOD__EVENT__BODY_LEADER_CHANGED;
  ev.leader_changed = &lc;
  sm.body_case = SYNOD__SERVER_MESSAGE__BODY_EVENT;
  sm.event = &ev;
  client_net_broadcast(n->client_net, &sm);
}

/* --------------------------------------------------------------- status */

static void status_member(struct node *n, Synod__Member *m, uint64_t id,
                          bool voter) {
  const struct member *mem = node_member(n, id);
  bool self = id == n->id;
  m->name = (char *)node_member_name(n, id);
  m->peer_address =
      self ? n->advertise_peer : (mem ? (char *)mem->peer_address : "");
  m->client_address =
      self ? n->advertise_client : (mem ? (char *)mem->client_address : "");
  m->voter = voter;
  m->role = id == n->leader ? "leader" : voter ? "follower" : "learner";
  m->match_index = n->role == CORE_LEADER ? core_match_index(n->core, id) : 0;
}

static void requests_status(struct node *n, uint64_t conn_id, uint64_t id,
                            bool want_digest) {
  Synod__Response resp = SYNOD__RESPONSE__INIT;
  Synod__StatusReply st = SYNOD__STATUS_REPLY__INIT;
  const struct core_config *cfg = core_config(n->core);
  Synod__Member ms[2 * CORE_MEMBERS_MAX];
  Synod__Member *mp[2 * CORE_MEMBERS_MAX];
  size_t k = 0;
  for (uint32_t i = 0; i < cfg->voters_n; i++, k++) {
    synod__member__init(&ms[k]);
    status_member(n, &ms[k], cfg->voters[i], true);
    mp[k] = &ms[k];
  }
  for (uint32_t i = 0; i < cfg->learners_n; i++, k++) {
    synod__member__init(&ms[k]);
    status_member(n, &ms[k], cfg->learners[i], false);
    mp[k] = &ms[k];
  }
  st.name = n->name;
  st.role = (char *)core_role_name(n->role);
  st.term = n->term;
  st.leader_name = n->leader ? (char *)node_member_name(n, n->leader) : "";
  st.commit_index = core_commit_index(n->core);
  st.applied_index = n->applied_index;
  st.last_index = core_last_index(n->core);
  st.snapshot_index = n->snap_meta.index;
  st.snapshot_bytes = n->snap_len;
  st.log_syncs = n->persist.syncs;
  st.log_synced_entries = n->persist.synced_entries;
  st.digest = want_digest ? fsm_digest(n->fsm) : 0;
  st.n_members = k;
  st.members = mp;
  st.version = SYNOD_VERSION;
  resp.id = id;
  resp.body_case = SYNOD__RESPONSE__BODY_STATUS;
  resp.status = &st;
  requests_send_response(n, conn_id, &resp);
}

/* ------------------------------------------------------------- proposing */

static struct pending *pending_push(struct node *n, enum pending_kind kind) {
  struct pending *p = calloc(1, sizeof *p);
  if (p == NULL) {
    return NULL;
  }
  p->index = n->proposed_first;
  p->term = n->term;
  p->kind = kind;
  if (n->pending_tail == NULL) {
    n->pending_head = p;
  } else {
    n->pending_tail->next = p;
  }
  n->pending_tail = p;
  return p;
}

/* Proposes one NORMAL entry; on success n->proposed_first is its index. */
static int requests_propose_bytes(struct node *n, const uint8_t *data,
                                  size_t len) {
  struct core_entry e = {.type = CORE_ENTRY_NORMAL, .data = data, .len = len};
  struct core_event ev = {.type = CORE_EVENT_PROPOSE};
  ev.propose.entries = &e;
  ev.propose.entries_n = 1;
  return node_step(n, &ev);
}

/* The leader's stamp for a new entry: its clock, never behind a stamp it
 * gave or the time the state machine has reached. */
static uint64_t requests_stamp(struct node *n) {
  uint64_t now = (uint64_t)((int64_t)node_now_ms(n) + n->time_offset_ms);
  uint64_t applied = fsm_time_ms(n->fsm);
  if (now < applied) {
    n->time_offset_ms += (int64_t)(applied - now);
    now = applied;
  }
  if (now < n->last_stamp_ms) {
    now = n->last_stamp_ms;
  }
  n->last_stamp_ms = now;
  return now;
}

int requests_propose_member(struct node *n, const struct fsm_member_info *m,
                            bool remove) {
  uint64_t stamp = requests_stamp(n);
  uint8_t buf[512];
  size_t len = fsm_command_encode_member(stamp, m, remove, buf, sizeof buf);
  if (len > sizeof buf) {
    return SYNOD_ETOOBIG;
  }
  return requests_propose_bytes(n, buf, len);
}

int requests_propose_settings(struct node *n, const struct fsm_settings *s) {
  uint8_t buf[128];
  size_t len =
      fsm_command_encode_settings(requests_stamp(n), s, buf, sizeof buf);
  if (len > sizeof buf) {
    return SYNOD_ETOOBIG;
  }
  return requests_propose_bytes(n, buf, len);
}

/* Proposals are queued for the end of the loop turn: the writes of all
 * the clients served in one turn go to the log in one PROPOSE, so the
 * followers get one append (and the disk one write) for all of them. */
#define REQUESTS_QUEUED_MAX 4096

/* A queued write was not proposed: a client is sent to the leader. */
static void requests_propose_answer(struct node *n,
                                    const struct queued_proposal *q, int rv) {
  char msg[SYNOD_ERRMSG_MAX];
  if (rv == SYNOD_ENOTLEADER && q->from.conn_id != 0) {
    requests_redirect(n, q->from.conn_id, q->from.request_id);
    return;
  }
  snprintf(msg, sizeof msg,
           "%s could not propose the write (%s); it was "
           "not applied",
           n->name, synod_strerror(rv));
  writes_answer(n, &q->from, rv, msg, NULL, 0);
}

void requests_queued_fail(struct node *n, int code) {
  for (uint32_t i = 0; i < n->queued_n; i++) {
    requests_propose_answer(n, &n->queued[i], code);
    free(n->queued[i].data);
  }
  n->queued_n = 0;
}

/* Pending entries for the k proposals just appended from `first` on. */
static void requests_queued_pending(struct node *n, uint64_t first,
                                    uint32_t k) {
  for (uint32_t i = 0; i < k; i++) {
    const struct queued_proposal *q = &n->queued[i];
    n->proposed_first = first + i;
    struct pending *p = pending_push(n, PENDING_REQUEST);
    if (p == NULL) {
      requests_propose_answer(n, q, SYNOD_ENOMEM);
    } else {
      p->from = q->from;
      p->session_id = q->session_id;
      p->sequence = q->sequence;
    }
    free(q->data);
  }
  n->queued_n = 0;
}

void requests_propose_flush(struct node *n) {
  uint32_t k = n->queued_n;
  if (k == 0) {
    return;
  }
  struct core_entry *es = calloc(k, sizeof *es);
  int rv = SYNOD_ENOMEM;
  if (es != NULL) {
    for (uint32_t i = 0; i < k; i++) {
      es[i] = (struct core_entry){.type = CORE_ENTRY_NORMAL,
                                  .data = n->queued[i].data,
                                  .len = n->queued[i].len};
    }
    struct core_event ev = {.type = CORE_EVENT_PROPOSE};
    ev.propose.entries = es;
    ev.propose.entries_n = k;
    rv = node_step(n, &ev);
    free(es);
  }
  if (rv != 0) {
    requests_queued_fail(n, rv);
    return;
  }
  requests_queued_pending(n, n->proposed_first, k);
}

int requests_propose_from(struct node *n, const struct origin *from,
                          const Synod__Request *req, char *msg) {
  char where[128];
  if (pb_unknown_field(&req->base, where, sizeof where)) {
    errmsg_set(msg,
               "the request carries %s, which this server (synodd %s) does "
               "not know: a client newer than the server? Nothing was "
               "written",
               where, SYNOD_VERSION);
    return SYNOD_EPROTO;
  }
  int rv = fsm_request_bounds_check(req, msg);
  if (rv != 0) {
    return rv;
  }
  Synod__Request copy = *req;
  copy.id = 0;
  copy.stale = false;
  copy.forward = false;
  /* Full: propose what is queued now; but never under an update being
   * handled (a write from one of its callbacks), which the step would
   * reuse: the queue grows by that callback's writes until the turn ends. */
  if (n->queued_n >= REQUESTS_QUEUED_MAX && !n->in_update) {
    requests_propose_flush(n);
  }
  if (n->queued_n == n->queued_cap) {
    uint32_t cap = n->queued_cap ? n->queued_cap * 2 : 64;
    struct queued_proposal *q = realloc(n->queued, cap * sizeof *q);
    if (q == NULL) {
      errmsg_set(msg, "propose on %s: out of memory", n->name);
      return SYNOD_ENOMEM;
    }
    n->queued = q;
    n->queued_cap = cap;
  }
  uint64_t stamp = requests_stamp(n);
  size_t len = fsm_command_encode_request(stamp, &copy, NULL, 0);
  uint8_t *buf = malloc(len ? len : 1);
  if (buf == NULL) {
    errmsg_set(msg, "propose on %s: out of memory", n->name);
    return SYNOD_ENOMEM;
  }
  fsm_command_encode_request(stamp, &copy, buf, len);
  n->queued[n->queued_n++] =
      (struct queued_proposal){buf, len, *from, req->session_id, req->sequence};
  return 0;
}

static void requests_propose(struct node *n, uint64_t conn_id,
                             const Synod__Request *req) {
  struct origin from = {.conn_id = conn_id, .request_id = req->id};
  char msg[SYNOD_ERRMSG_MAX];
  int rv = requests_propose_from(n, &from, req, msg);
  if (rv != 0) {
    client_net_send_error(n->client_net, conn_id, req->id, rv, "%s", msg);
  }
}

/* ------------------------------------------------------------ keepalive */

void requests_keepalive_from(struct node *n, const struct origin *from,
                             uint64_t session_id) {
  if (session_id == 0) {
    writes_answer(n, from, SYNOD_EINVAL, "keepalive without a session id", NULL,
                  0);
    return;
  }
  if (n->keepalives_n == n->keepalives_cap) {
    uint32_t cap = n->keepalives_cap ? n->keepalives_cap * 2 : 64;
    struct keepalive_waiter *k =
        realloc(n->keepalives, cap * sizeof *n->keepalives);
    if (k == NULL) {
      writes_answer(n, from, SYNOD_ENOMEM, "keepalive: out of memory", NULL, 0);
      return;
    }
    n->keepalives = k;
    n->keepalives_cap = cap;
  }
  n->keepalives[n->keepalives_n++] =
      (struct keepalive_waiter){*from, session_id};
}

/* Leadership lost: the keepalives collected for the next Tick are
 * answered "not leader" (the client renews with the new leader), never
 * kept for a later term, which would renew sessions late and let a dead
 * client's locks outlive the TTL. */
void requests_keepalives_fail(struct node *n) {
  for (uint32_t i = 0; i < n->keepalives_n; i++) {
    const struct origin *from = &n->keepalives[i].from;
    if (from->conn_id != 0) {
      requests_redirect(n, from->conn_id, from->request_id);
    } else {
      writes_answer(n, from, SYNOD_ENOTLEADER,
                    "leadership changed before the keepalive's Tick", NULL, 0);
    }
  }
  n->keepalives_n = 0;
}

static int u64_cmp(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Proposes the Tick of this leader tick: the keepalives collected, or
 * nothing but the time when a deadline in the state machine is due. */
void requests_tick(struct node *n) {
  uint64_t now = requests_stamp(n);
  bool due = fsm_next_deadline(n->fsm) <= now &&
             n->tick_pending_index <= n->applied_index;
  if (n->keepalives_n == 0 && !due) {
    return;
  }
  uint64_t *ids = malloc((n->keepalives_n + 1) * sizeof *ids);
  size_t k = 0;
  for (uint32_t i = 0; ids != NULL && i < n->keepalives_n; i++) {
    ids[i] = n->keepalives[i].session_id;
  }
  if (ids != NULL) {
    qsort(ids, n->keepalives_n, sizeof *ids, u64_cmp);
    for (uint32_t i = 0; i < n->keepalives_n; i++) {
      k += k == 0 || ids[k - 1] != ids[i] ? (ids[k] = ids[i], 1) : 0;
    }
  }
  size_t len = fsm_command_encode_tick(now, ids, k, NULL, 0);
  uint8_t *buf = ids ? malloc(len ? len : 1) : NULL;
  int rv = SYNOD_ENOMEM;
  if (buf != NULL) {
    fsm_command_encode_tick(now, ids, k, buf, len);
    rv = requests_propose_bytes(n, buf, len);
  }
  free(buf);
  free(ids);
  struct pending *p = NULL;
  if (rv == 0 && (p = pending_push(n, PENDING_TICK)) != NULL) {
    p->waiters = n->keepalives;
    p->waiters_n = n->keepalives_n;
    n->keepalives = NULL;
    n->keepalives_n = n->keepalives_cap = 0;
    n->tick_pending_index = p->index;
    return;
  }
  char msg[SYNOD_ERRMSG_MAX];
  errmsg_set(msg, "keepalive: %s", synod_strerror(rv ? rv : SYNOD_ENOMEM));
  for (uint32_t i = 0; i < n->keepalives_n; i++) {
    writes_answer(n, &n->keepalives[i].from, rv ? rv : SYNOD_ENOMEM, msg, NULL,
                  0);
  }
  n->keepalives_n = 0;
}

/* ---------------------------------------------------------------- reads */

/* A channel's subscribers are this replica's, not the state machine's:
 * an answer about channels gets them filled in. Keeps *data as it is if
 * it cannot (out of memory: the count stays 0). */
static void fill_subscribers(struct node *n, const Synod__Request *req,
                             uint8_t **data, size_t *len) {
  if (req->body_case != SYNOD__REQUEST__BODY_CHANNEL_INFO &&
      req->body_case != SYNOD__REQUEST__BODY_CHANNEL_LIST) {
    return;
  }
  Synod__Response *r = synod__response__unpack(NULL, *len, *data);
  if (r == NULL) {
    return;
  }
  if (r->body_case == SYNOD__RESPONSE__BODY_CHANNEL_INFO) {
    r->channel_info->subscribers = subs_count(&n->subs, r->channel_info->name);
  } else if (r->body_case == SYNOD__RESPONSE__BODY_CHANNEL_LIST) {
    for (size_t i = 0; i < r->channel_list->n_channels; i++) {
      Synod__ChannelInfo *ci = r->channel_list->channels[i];
      ci->subscribers = subs_count(&n->subs, ci->name);
    }
  }
  size_t n2 = synod__response__get_packed_size(r);
  uint8_t *d2 = malloc(n2 ? n2 : 1);
  if (d2 != NULL) {
    synod__response__pack(r, d2);
    free(*data);
    *data = d2;
    *len = n2;
  }
  synod__response__free_unpacked(r, NULL);
}

static void requests_serve_read(struct node *n, uint64_t conn_id,
                                uint64_t request_id,
                                const Synod__Request *req) {
  uint8_t *data;
  size_t len;
  if (fsm_query(n->fsm, req, &data, &len) != 0) {
    client_net_send_error(n->client_net, conn_id, request_id, SYNOD_EINVAL,
                          "not a read request");
    return;
  }
  fill_subscribers(n, req, &data, &len);
  requests_send_packed(n, conn_id, request_id, data, len);
  free(data);
}

static void read_free(struct read *r) {
  free(r->request);
  free(r);
}

/* Answers a read that will not be served: a client is sent to the leader,
 * node_read()'s callback gets the code, a follower gets the code. */
static void read_fail(struct node *n, struct read *r, int code) {
  if (r->for_peer != 0) {
    Synod__Peer__PeerMessage pb = SYNOD__PEER__PEER_MESSAGE__INIT;
    Synod__Peer__ReadIndexReply rep = SYNOD__PEER__READ_INDEX_REPLY__INIT;
    rep.ctx = r->for_ctx;
    rep.error = (uint32_t)code;
    pb.body_case = SYNOD__PEER__PEER_MESSAGE__BODY_READ_INDEX_REPLY;
    pb.read_index_reply = &rep;
    peer_net_send_pb(n->peer_net, r->for_peer, &pb);
  } else if (r->cb != NULL) {
    char msg[160];
    snprintf(msg, sizeof msg, "read on %s: %s", n->name, synod_strerror(code));
    r->cb(r->cb_arg, code, msg, NULL, 0);
  } else {
    requests_redirect(n, r->conn_id, r->request_id);
  }
  read_free(r);
}

static struct read *read_new(struct node *n, const Synod__Request *req) {
  struct read *r = calloc(1, sizeof *r);
  size_t len = req != NULL ? synod__request__get_packed_size(req) : 0;
  if (r == NULL ||
      (req != NULL && (r->request = malloc(len ? len : 1)) == NULL)) {
    free(r);
    return NULL;
  }
  if (req != NULL) {
    synod__request__pack(req, r->request);
    r->request_len = len;
  }
  r->ctx = ++n->read_ctx_next;
  return r;
}

/* Asks the core for a read index for r, which is then in n->reads.
 * Returns 0 or the core's error (r is not kept). */
static int read_index_ask(struct node *n, struct read *r) {
  if (n->in_update) {
    /* From a callback of the update being handled: the core cannot be
     * stepped under its own update. Asked right after it, in order. */
    struct read **tail = &n->reads_later;
    while (*tail != NULL) {
      tail = &(*tail)->next;
    }
    r->next = NULL;
    *tail = r;
    return 0;
  }
  r->next = n->reads;
  n->reads = r;
  struct core_event ev = {.type = CORE_EVENT_READ_INDEX, .read_ctx = r->ctx};
  int rv = node_step(n, &ev);
  if (rv != 0) {
    n->reads = r->next;
  }
  return rv;
}

static void requests_read(struct node *n, uint64_t conn_id,
                          const Synod__Request *req) {
  struct read *r = read_new(n, req);
  if (r == NULL) {
    client_net_send_error(n->client_net, conn_id, req->id, SYNOD_ENOMEM,
                          "read: out of memory");
    return;
  }
  r->conn_id = conn_id;
  r->request_id = req->id;
  int rv = read_index_ask(n, r);
  if (rv == SYNOD_ENOTLEADER) {
    read_fail(n, r, rv);
  } else if (rv != 0) {
    client_net_send_error(n->client_net, conn_id, req->id, rv, "read on %s: %s",
                          n->name, synod_strerror(rv));
    read_free(r);
  }
}

void requests_reads_ready(struct node *n, const struct core_update *up) {
  for (uint32_t i = 0; i < up->reads_n; i++) {
    for (struct read **pp = &n->reads; *pp != NULL; pp = &(*pp)->next) {
      struct read *r = *pp;
      if (r->ctx != up->reads[i].ctx || r->asked != 0) {
        continue;
      }
      if (up->reads[i].error == 0 && r->for_peer == 0) {
        r->index = up->reads[i].index;
        break;
      }
      *pp = r->next;
      if (up->reads[i].error != 0) {
        read_fail(n, r, SYNOD_ENOTLEADER);
        break;
      }
      /* A follower's: it waits for its own apply, not ours. */
      Synod__Peer__PeerMessage pb = SYNOD__PEER__PEER_MESSAGE__INIT;
      Synod__Peer__ReadIndexReply rep = SYNOD__PEER__READ_INDEX_REPLY__INIT;
      rep.ctx = r->for_ctx;
      rep.index = up->reads[i].index;
      pb.body_case = SYNOD__PEER__PEER_MESSAGE__BODY_READ_INDEX_REPLY;
      pb.read_index_reply = &rep;
      peer_net_send_pb(n->peer_net, r->for_peer, &pb);
      read_free(r);
      break;
    }
  }
}

static void read_serve(struct node *n, struct read *r) {
  if (r->request == NULL) { /* a barrier (node_read with no request) */
    if (r->cb != NULL) {
      r->cb(r->cb_arg, 0, NULL, NULL, 0);
    }
    read_free(r);
    return;
  }
  Synod__Request *req =
      synod__request__unpack(NULL, r->request_len, r->request);
  if (req == NULL) {
    read_fail(n, r, SYNOD_ENOMEM);
    return;
  }
  if (r->cb == NULL) {
    requests_serve_read(n, r->conn_id, r->request_id, req);
  } else {
    uint8_t *data;
    size_t len;
    if (fsm_query(n->fsm, req, &data, &len) != 0) {
      r->cb(r->cb_arg, SYNOD_EINVAL, "not a read request", NULL, 0);
    } else {
      fill_subscribers(n, req, &data, &len);
      r->cb(r->cb_arg, 0, NULL, data, len);
      free(data);
    }
  }
  synod__request__free_unpacked(req, NULL);
  read_free(r);
}

/* Answers every read whose read index has been applied. */
void requests_reads_serve(struct node *n) {
  struct read **pp = &n->reads;
  while (*pp != NULL) {
    struct read *r = *pp;
    if (r->index == 0 || r->index > n->applied_index) {
      pp = &r->next;
      continue;
    }
    *pp = r->next;
    read_serve(n, r);
  }
}

void requests_reads_fail(struct node *n, int code) {
  while (n->reads != NULL) {
    struct read *r = n->reads;
    n->reads = r->next;
    read_fail(n, r, code);
  }
}

/* Removes and fails the reads `pred` picks (given `peer`). */
static void reads_fail_if(struct node *n,
                          bool (*pred)(struct node *n, const struct read *r,
                                       uint64_t peer),
                          uint64_t peer, int code) {
  struct read **pp = &n->reads;
  while (*pp != NULL) {
    struct read *r = *pp;
    if (!pred(n, r, peer)) {
      pp = &r->next;
      continue;
    }
    *pp = r->next;
    read_fail(n, r, code);
  }
}

static bool read_expired(struct node *n, const struct read *r, uint64_t peer) {
  (void)peer;
  return r->cb != NULL && r->deadline_ms <= node_now_ms(n);
}

void requests_reads_expire(struct node *n) {
  reads_fail_if(n, read_expired, 0, SYNOD_ETIMEDOUT);
}

static bool read_asked_old_leader(struct node *n, const struct read *r,
                                  uint64_t peer) {
  (void)peer;
  return r->asked != 0 && r->index == 0 && r->asked != n->leader;
}

void requests_reads_forward_fail(struct node *n) {
  reads_fail_if(n, read_asked_old_leader, 0, SYNOD_ENOLEADER);
}

static bool read_asked_peer(struct node *n, const struct read *r,
                            uint64_t peer) {
  (void)n;
  return r->asked != 0 && r->index == 0 && r->asked == peer;
}

void requests_reads_peer_lost(struct node *n, uint64_t peer) {
  reads_fail_if(n, read_asked_peer, peer, SYNOD_ENOLEADER);
}

void requests_read_index_for_peer(struct node *n, uint64_t from, uint64_t ctx) {
  struct read *r = read_new(n, NULL);
  if (r == NULL) {
    return; /* the follower's read times out */
  }
  r->for_peer = from;
  r->for_ctx = ctx;
  int rv = n->shutting_down ? SYNOD_ENOTLEADER : read_index_ask(n, r);
  if (rv != 0) {
    read_fail(n, r, rv);
  }
}

void requests_reads_later(struct node *n) {
  while (n->reads_later != NULL) {
    struct read *r = n->reads_later;
    n->reads_later = r->next;
    int rv = read_index_ask(n, r);
    if (rv != 0) {
      read_fail(n, r,
                rv == SYNOD_ENOTLEADER && r->cb != NULL ? SYNOD_ENOLEADER : rv);
    }
  }
}

void requests_read_index_reply(struct node *n, uint64_t from, uint64_t ctx,
                               uint64_t index, uint32_t error) {
  for (struct read **pp = &n->reads; *pp != NULL; pp = &(*pp)->next) {
    struct read *r = *pp;
    if (r->ctx != ctx || r->asked != from || r->index != 0) {
      continue;
    }
    if (error != 0 || index == 0) {
      *pp = r->next;
      read_fail(n, r, error != 0 ? (int)error : SYNOD_EPROTO);
      return;
    }
    r->index = index;
    requests_reads_serve(n);
    return;
  }
}

void node_read(struct node *n, const Synod__Request *req, bool stale,
               uint32_t timeout_ms, node_read_cb cb, void *arg) {
  bool readable = req == NULL || fsm_request_is_read(req);
  struct read *r = readable ? read_new(n, req) : NULL;
  if (r == NULL) {
    cb(arg, readable ? SYNOD_ENOMEM : SYNOD_EINVAL,
       "read: not a read request, or out of memory", NULL, 0);
    return;
  }
  r->cb = cb;
  r->cb_arg = arg;
  r->deadline_ms = node_now_ms(n) + timeout_ms;
  if (stale) {
    read_serve(n, r);
    return;
  }
  if (n->role == CORE_LEADER && !n->shutting_down) {
    int rv = read_index_ask(n, r);
    if (rv != 0) {
      read_fail(n, r, rv == SYNOD_ENOTLEADER ? SYNOD_ENOLEADER : rv);
    }
    return;
  }
  Synod__Peer__PeerMessage pb = SYNOD__PEER__PEER_MESSAGE__INIT;
  Synod__Peer__ReadIndexRequest ask = SYNOD__PEER__READ_INDEX_REQUEST__INIT;
  ask.ctx = r->ctx;
  pb.body_case = SYNOD__PEER__PEER_MESSAGE__BODY_READ_INDEX;
  pb.read_index = &ask;
  if (n->leader == 0 || n->shutting_down ||
      peer_net_send_pb(n->peer_net, n->leader, &pb) != 0) {
    read_fail(n, r, SYNOD_ENOLEADER);
    return;
  }
  r->asked = n->leader;
  r->next = n->reads;
  n->reads = r;
}

void requests_send_error_first(struct node *n, uint64_t conn_id,
                               uint64_t request_id, int code,
                               uint64_t first_available, const char *msg) {
  Synod__ServerMessage sm = SYNOD__SERVER_MESSAGE__INIT;
  Synod__Response resp = SYNOD__RESPONSE__INIT;
  Synod__Error err = SYNOD__ERROR__INIT;
  err.code = (Synod__ErrorCode)code;
  err.message = (char *)msg;
  err.first_available = first_available;
  resp.id = request_id;
  resp.error = &err;
  sm.body_case = SYNOD__SERVER_MESSAGE__BODY_RESPONSE;
  sm.response = &resp;
  client_net_send(n->client_net, conn_id, &sm);
}

/* ------------------------------------------------------------ observers */

/* Per connection, the election names it observes. */
struct observer {
  uint32_t n;
  char **names;
};

static void requests_observe(struct node *n, uint64_t conn_id,
                             const char *name) {
  struct observer *o = u64map_get(&n->observers, conn_id);
  if (o == NULL) {
    if ((o = calloc(1, sizeof *o)) == NULL ||
        u64map_put(&n->observers, conn_id, o) != 0) {
      free(o);
      return;
    }
  }
  for (uint32_t i = 0; i < o->n; i++) {
    if (strcmp(o->names[i], name) == 0) {
      return;
    }
  }
  char **names = realloc(o->names, (o->n + 1) * sizeof *names);
  if (names == NULL) {
    return;
  }
  o->names = names;
  if ((o->names[o->n] = strdup(name)) != NULL) {
    o->n++;
  }
}

static void observer_free(struct observer *o) {
  for (uint32_t i = 0; o != NULL && i < o->n; i++) {
    free(o->names[i]);
  }
  if (o != NULL) {
    free(o->names);
  }
  free(o);
}

struct notify {
  struct node *n;
  const char *name;
  const uint8_t *event;
  size_t len;
};

static void notify_cb(void *arg, uint64_t conn_id, void *value) {
  struct notify *nt = arg;
  struct observer *o = value;
  for (uint32_t i = 0; i < o->n; i++) {
    if (strcmp(o->names[i], nt->name) == 0) {
      requests_send_event(nt->n, conn_id, nt->event, nt->len);
      return;
    }
  }
}

void requests_observers_notify(struct node *n, const char *name,
                               const uint8_t *event, size_t len) {
  struct notify nt = {n, name, event, len};
  u64map_each(&n->observers, notify_cb, &nt);
}

/* ------------------------------------------------------------ forwarding */

/* How long a follower waits for the leader's answer to a client's request
 * it forwarded: past it the client is redirected and sends it again (half
 * of libsynod's default request timeout). */
#define REQUESTS_FORWARD_TIMEOUT_MS 5000

struct forwarded {
  struct node *n;
  uint64_t conn_id;
  uint64_t request_id;
  bool write;
};

static void requests_forwarded_cb(void *arg, int code, const char *msg,
                                  const uint8_t *resp, size_t len) {
  struct forwarded *f = arg;
  struct node *n = f->n;
  if (n->client_net == NULL) {
    /* stopping: the connection goes with the replica */
  } else if (code == 0) {
    n->metrics.writes_forwarded += f->write;
    requests_send_packed(n, f->conn_id, f->request_id, resp, len);
  } else if (code == SYNOD_ENOTLEADER || code == SYNOD_ENOLEADER ||
             code == SYNOD_ETIMEDOUT || code == SYNOD_ESHUTDOWN) {
    /* Not proposed; or the leader changed, the link to it went down, it
     * did not answer in time or this replica is stopping, with the
     * outcome unknown: the client sends it again (it may: see
     * requests_forward), to the leader this time. */
    requests_redirect(n, f->conn_id, f->request_id);
  } else {
    client_net_send_error(n->client_net, f->conn_id, f->request_id, code, "%s",
                          msg);
  }
  free(f);
}

/* A client's request on a follower, with Request.forward, served from
 * here so that the client stays on this replica with its streams: a
 * linearizable read through the leader's read index (node_read), a write
 * through the leader over the peer link (node_write), its answer back to
 * the client. Only writes the client may send again after an unknown
 * outcome (in a session, with a sequence; a keepalive; a SessionOpen,
 * whose duplicate would expire unused) and that never wait (a LockAcquire
 * waits in its queue; node_write refuses it). Returns false when the
 * request is not one to serve so: the caller redirects. */
static bool requests_forward(struct node *n, uint64_t conn_id,
                             const Synod__Request *req) {
  bool read = fsm_request_is_read(req);
  bool resendable = (req->session_id != 0 && req->sequence != 0) ||
                    req->body_case == SYNOD__REQUEST__BODY_SESSION_KEEPALIVE ||
                    req->body_case == SYNOD__REQUEST__BODY_SESSION_OPEN;
  if (!req->forward || n->leader == 0 || n->shutting_down ||
      u64map_get(&n->redirected, conn_id) != NULL ||
      (!read && (!resendable || !fsm_request_is_write(req) ||
                 req->body_case == SYNOD__REQUEST__BODY_LOCK_ACQUIRE))) {
    return false;
  }
  struct forwarded *f = malloc(sizeof *f);
  if (f == NULL) {
    return false;
  }
  *f = (struct forwarded){n, conn_id, req->id, !read};
  if (read) {
    node_read(n, req, false, REQUESTS_FORWARD_TIMEOUT_MS, requests_forwarded_cb,
              f);
  } else {
    node_write(n, req, REQUESTS_FORWARD_TIMEOUT_MS, requests_forwarded_cb, f);
  }
  return true;
}

/* ------------------------------------------------------------- dispatch */

static void requests_member_remove(struct node *n, uint64_t conn_id,
                                   const Synod__Request *req);

void requests_on_request(void *arg, uint64_t conn_id,
                         const Synod__Request *req) {
  struct node *n = arg;
  if (req->session_id != 0) {
    u64map_put(&n->session_conns, req->session_id,
               (void *)(uintptr_t)(conn_id + 1));
  }
  switch (req->body_case) {
  case SYNOD__REQUEST__BODY_HELLO:
    requests_hello(n, conn_id, req->id);
    return;
  case SYNOD__REQUEST__BODY_STATUS:
    requests_status(n, conn_id, req->id,
                    req->status != NULL && req->status->digest);
    return;
  case SYNOD__REQUEST__BODY__NOT_SET:
    client_net_send_error(n->client_net, conn_id, req->id, SYNOD_EINVAL,
                          "request %llu has no body",
                          (unsigned long long)req->id);
    return;
  default:
    break;
  }
  switch (req->body_case) { /* served here, by any replica */
  case SYNOD__REQUEST__BODY_CHANNEL_SUBSCRIBE:
    subs_subscribe(&n->subs, conn_id, req->id, req->channel_subscribe);
    return;
  case SYNOD__REQUEST__BODY_KEY_WATCH:
    subs_key_watch(&n->subs, conn_id, req->id, req->key_watch);
    return;
  case SYNOD__REQUEST__BODY_GROUP_SUBSCRIBE:
    subs_group_subscribe(&n->subs, conn_id, req->id, req->group_subscribe);
    return;
  case SYNOD__REQUEST__BODY_CHANNEL_CREDIT:
    subs_credit(&n->subs, conn_id, req->id, req->channel_credit);
    return;
  case SYNOD__REQUEST__BODY_CHANNEL_UNSUBSCRIBE:
    subs_unsubscribe(&n->subs, conn_id, req->id, req->channel_unsubscribe);
    return;
  default:
    break;
  }
  if (req->body_case == SYNOD__REQUEST__BODY_ELECTION_OBSERVE &&
      req->election_observe->name != NULL) {
    requests_observe(n, conn_id, req->election_observe->name);
  }
  if (fsm_request_is_read(req) && req->stale) {
    requests_serve_read(n, conn_id, req->id, req);
    return;
  }
  if (n->role != CORE_LEADER || n->shutting_down) {
    if (!requests_forward(n, conn_id, req)) {
      requests_redirect(n, conn_id, req->id);
    }
    return;
  }
  if (req->body_case == SYNOD__REQUEST__BODY_SESSION_KEEPALIVE) {
    struct origin from = {.conn_id = conn_id, .request_id = req->id};
    requests_keepalive_from(n, &from, req->session_id);
  } else if (req->body_case == SYNOD__REQUEST__BODY_MEMBER_REMOVE) {
    requests_member_remove(n, conn_id, req);
  } else if (fsm_request_is_read(req)) {
    requests_read(n, conn_id, req);
  } else {
    requests_propose(n, conn_id, req);
  }
}

static void requests_member_remove(struct node *n, uint64_t conn_id,
                                   const Synod__Request *req) {
  const char *name = req->member_remove->name;
  uint64_t id = 0;
  if (strcmp(name, n->name) == 0) {
    id = n->id;
  }
  for (uint32_t i = 0; id == 0 && i < n->members_n; i++) {
    if (strcmp(n->members[i].name, name) == 0) {
      id = n->members[i].id;
    }
  }
  if (id == 0) {
    client_net_send_error(n->client_net, conn_id, req->id, SYNOD_ENOTFOUND,
                          "member remove: no member named '%s'", name);
    return;
  }
  struct core_event ev = {.type = CORE_EVENT_REMOVE_MEMBER, .id = id};
  int rv = node_step(n, &ev);
  struct pending *p = NULL;
  if (rv == 0 && (p = pending_push(n, PENDING_MEMBER)) != NULL) {
    p->from = (struct origin){.conn_id = conn_id, .request_id = req->id};
    return;
  }
  client_net_send_error(n->client_net, conn_id, req->id, rv ? rv : SYNOD_ENOMEM,
                        "member remove '%s': %s", name,
                        rv ? core_errmsg(n->core) : "out of memory");
}

void requests_on_close(void *arg, uint64_t conn_id) {
  struct node *n = arg;
  u64map_del(&n->redirected, conn_id);
  observer_free(u64map_del(&n->observers, conn_id));
  subs_on_close(&n->subs, conn_id);
}

static void observer_free_cb(void *arg, uint64_t key, void *value) {
  (void)arg;
  (void)key;
  observer_free(value);
}

void requests_close(struct node *n) {
  u64map_each(&n->observers, observer_free_cb, NULL);
  u64map_close(&n->observers);
  u64map_close(&n->session_conns);
  u64map_close(&n->redirected);
  while (n->reads != NULL) {
    struct read *r = n->reads;
    n->reads = r->next;
    read_free(r);
  }
  free(n->keepalives);
  n->keepalives = NULL;
  for (uint32_t i = 0; i < n->queued_n; i++) {
    free(n->queued[i].data);
  }
  free(n->queued);
  n->queued = NULL;
  n->queued_n = n->queued_cap = 0;
}
