/* The simulated server shell around the real state machine, one per
 * replica, doing what server/node does (requests.c, apply.c): the leader
 * stamps each entry with cluster time (its clock plus an offset, never
 * behind the state machine's time or its last stamp), collects keepalives
 * into one Tick entry per tick and proposes an empty Tick when a deadline
 * is due; applied entries are matched to pending proposals by (index,
 * term) and answered; queued acquires wait for their LOCK_* event; reads
 * go through ReadIndex; a non-leader redirects the client. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

#include "synod.h"

#define DIGEST_EVERY 16 /* indexes between fsm digest comparisons */
#define READ_CTX_SERVER (1ULL << 62)

static void *grow(void *p, uint32_t *cap, uint32_t need, size_t size) {
  if (need <= *cap) {
    return p;
  }
  uint32_t c = *cap ? *cap : 8;
  while (c < need) {
    c *= 2;
  }
  p = realloc(p, (size_t)c * size);
  if (p == NULL) {
    abort();
  }
  *cap = c;
  return p;
}

/* ---------------------------------------------------------------- clock */

/* The replica's monotonic clock (uv_now): its own rate, its own origin. */
static uint64_t clock_ms(const struct sim *s, const struct sim_replica *rep) {
  return rep->srv.clock_origin_ms +
         (s->now_ms - rep->tick_base_ms) * rep->clock_permille / 1000;
}

/* requests_stamp: the leader's clock, never behind a stamp it gave or the
 * time the state machine has reached. */
static uint64_t stamp(struct sim *s, struct sim_replica *rep) {
  struct sim_server *v = &rep->srv;
  uint64_t now = (uint64_t)((int64_t)clock_ms(s, rep) + v->time_offset_ms);
  uint64_t applied = fsm_time_ms(v->fsm);
  if (now < applied) {
    v->time_offset_ms += (int64_t)(applied - now);
    now = applied;
  }
  if (now < v->last_stamp_ms) {
    now = v->last_stamp_ms;
  }
  v->last_stamp_ms = now;
  return now;
}

/* ------------------------------------------------------------ answering */

static size_t varint(uint64_t v, uint8_t *out) {
  size_t n = 0;
  do {
    out[n] = (uint8_t)(v & 0x7f);
    v >>= 7;
    out[n] |= v ? 0x80 : 0;
    n++;
  } while (v);
  return n;
}

/* requests_send_wrapped: a ServerMessage whose field `field` (1 response,
 * 2 event) holds body, with Response.id prepended. */
static void send_wrapped(struct sim *s, struct sim_replica *rep, uint32_t c,
                         unsigned field, uint64_t request_id,
                         const uint8_t *body, size_t len) {
  uint8_t id[11], head[11];
  size_t id_len = 0;
  if (request_id != 0) {
    id[0] = 0x08;
    id_len = 1 + varint(request_id, id + 1);
  }
  size_t inner = id_len + len;
  head[0] = (uint8_t)(field << 3 | 2);
  size_t head_len = 1 + varint(inner, head + 1);
  uint8_t *buf = malloc(head_len + inner);
  if (buf == NULL) {
    abort();
  }
  memcpy(buf, head, head_len);
  memcpy(buf + head_len, id, id_len);
  if (len > 0) {
    memcpy(buf + head_len + id_len, body, len);
  }
  sim_cnet_send(s, c, (uint32_t)rep->id, false, buf, head_len + inner);
  free(buf);
}

static void send_response(struct sim *s, struct sim_replica *rep, uint32_t c,
                          Synod__Response *resp) {
  Synod__ServerMessage sm = SYNOD__SERVER_MESSAGE__INIT;
  sm.body_case = SYNOD__SERVER_MESSAGE__BODY_RESPONSE;
  sm.response = resp;
  size_t len = synod__server_message__get_packed_size(&sm);
  uint8_t *buf = malloc(len ? len : 1);
  if (buf == NULL) {
    abort();
  }
  synod__server_message__pack(&sm, buf);
  sim_cnet_send(s, c, (uint32_t)rep->id, false, buf, len);
  free(buf);
}

static void send_error(struct sim *s, struct sim_replica *rep, uint32_t c,
                       uint64_t request_id, int code, const char *text) {
  Synod__Response resp = SYNOD__RESPONSE__INIT;
  Synod__Error err = SYNOD__ERROR__INIT;
  err.code = (Synod__ErrorCode)code;
  err.message = (char *)text;
  resp.id = request_id;
  resp.error = &err;
  send_response(s, rep, c, &resp);
}

/* requests_redirect: ENOTLEADER with the leader's name and address, or
 * ENOLEADER while there is none. */
static void redirect(struct sim *s, struct sim_replica *rep, uint32_t c,
                     uint64_t request_id) {
  Synod__Response resp = SYNOD__RESPONSE__INIT;
  Synod__Error err = SYNOD__ERROR__INIT;
  char name[24], addr[32];
  uint64_t l = rep->core != NULL ? core_leader(rep->core) : 0;
  resp.id = request_id;
  resp.error = &err;
  if (l != 0 && l != rep->id) {
    snprintf(name, sizeof name, "r%" PRIu64, l);
    snprintf(addr, sizeof addr, "sim:%" PRIu64, l);
    err.code = SYNOD__ERROR_CODE__SYNOD_ENOTLEADER;
    err.leader_name = name;
    err.leader_address = addr;
    err.message = "not the leader";
  } else {
    err.code = SYNOD__ERROR_CODE__SYNOD_ENOLEADER;
    err.message = "no leader known; retry";
  }
  send_response(s, rep, c, &resp);
}

/* ------------------------------------------------------------- pending */

static void pending_push(struct sim *s, struct sim_replica *rep,
                         struct sim_pending p) {
  struct sim_server *v = &rep->srv;
  if (v->pend_head > 0 && v->pend_n == v->pend_cap) {
    v->pend_n -= v->pend_head;
    memmove(v->pend, v->pend + v->pend_head, v->pend_n * sizeof(*v->pend));
    v->pend_head = 0;
  }
  v->pend = grow(v->pend, &v->pend_cap, v->pend_n + 1, sizeof(*v->pend));
  p.index = s->proposed_first;
  p.term = core_term(rep->core);
  v->pend[v->pend_n++] = p;
}

/* pending_fail: the proposal may not have been applied; the client
 * retries with the same (session, sequence). */
static void pending_fail(struct sim *s, struct sim_replica *rep,
                         struct sim_pending *p, int code) {
  const char *why = "leadership changed before the request committed";
  if (p->kind == SIM_PENDING_REQUEST) {
    send_error(s, rep, p->client, p->request_id, code, why);
  }
  for (uint32_t i = 0; i < p->kas_n; i++) {
    send_error(s, rep, p->kas[i].client, p->kas[i].request_id, code, why);
  }
  free(p->kas);
  p->kas = NULL;
}

static void pending_fail_all(struct sim *s, struct sim_replica *rep, int code) {
  struct sim_server *v = &rep->srv;
  while (v->pend_head < v->pend_n) {
    pending_fail(s, rep, &v->pend[v->pend_head++], code);
  }
  v->pend_head = v->pend_n = 0;
}

/* pending_take: ours at index if it is the entry applied; everything of
 * ours below it was lost. Returns true and fills *out. */
static bool pending_take(struct sim *s, struct sim_replica *rep, uint64_t index,
                         uint64_t term, struct sim_pending *out) {
  struct sim_server *v = &rep->srv;
  while (v->pend_head < v->pend_n && v->pend[v->pend_head].index <= index) {
    struct sim_pending *p = &v->pend[v->pend_head++];
    if (p->index == index && p->term == term) {
      *out = *p;
      return true;
    }
    pending_fail(s, rep, p, SYNOD_ENOTLEADER);
  }
  return false;
}

/* --------------------------------------------------------------- waits */

static void wait_add(struct sim_replica *rep, uint64_t session,
                     uint64_t sequence, uint32_t c, uint64_t request_id) {
  struct sim_server *v = &rep->srv;
  for (uint32_t i = 0; i < v->waits_n; i++) {
    if (v->waits[i].session == session && v->waits[i].sequence == sequence) {
      v->waits[i].client = c; /* a retry: the newest asker */
      v->waits[i].request_id = request_id;
      return;
    }
  }
  v->waits = grow(v->waits, &v->waits_cap, v->waits_n + 1, sizeof(*v->waits));
  v->waits[v->waits_n++] = (struct sim_wait){session, sequence, c, request_id};
}

static bool wait_take(struct sim_replica *rep, uint64_t session,
                      uint64_t sequence, struct sim_wait *out) {
  struct sim_server *v = &rep->srv;
  for (uint32_t i = 0; i < v->waits_n; i++) {
    if (v->waits[i].session == session && v->waits[i].sequence == sequence) {
      *out = v->waits[i];
      memmove(&v->waits[i], &v->waits[i + 1],
              (v->waits_n - i - 1) * sizeof(*v->waits));
      v->waits_n--;
      return true;
    }
  }
  return false;
}

/* ------------------------------------------------------------ lifecycle */

void sim_server_start(struct sim *s, struct sim_replica *rep) {
  struct sim_server *v = &rep->srv;
  sim_server_stop(rep);
  struct fsm_options o = {.results_per_session_max = s->fsm_window,
                          .key_history_max = sim_keys_history_max(s),
                          .group_items_max = sim_groups_items_max(s)};
  v->fsm = fsm_new(&o);
  if (v->fsm == NULL) {
    abort();
  }
  v->clock_origin_ms = sim_rand_range(&s->rand, 0, 1000000);
  v->time_offset_ms = 0;
  v->last_stamp_ms = 0;
  v->tick_pending_index = 0;
  if (v->conns == NULL) {
    v->conns = calloc(SIM_CLIENTS_MAX + 1, sizeof(*v->conns));
  } else {
    memset(v->conns, 0, (SIM_CLIENTS_MAX + 1) * sizeof(*v->conns));
  }
  sim_subs_start(s, rep); /* after the clock: it reads it */
}

/* A crash: the process and its connections are gone; nothing answered. */
void sim_server_stop(struct sim_replica *rep) {
  struct sim_server *v = &rep->srv;
  sim_subs_stop(rep);
  fsm_free(v->fsm);
  v->fsm = NULL;
  for (uint32_t i = v->pend_head; i < v->pend_n; i++) {
    free(v->pend[i].kas);
  }
  free(v->pend);
  v->pend = NULL;
  v->pend_head = v->pend_n = v->pend_cap = 0;
  free(v->kas);
  v->kas = NULL;
  v->kas_n = v->kas_cap = 0;
  for (uint32_t i = 0; i < v->reads_n; i++) {
    free(v->reads[i].req);
  }
  free(v->reads);
  v->reads = NULL;
  v->reads_n = v->reads_cap = 0;
  free(v->waits);
  v->waits = NULL;
  v->waits_n = v->waits_cap = 0;
}

void sim_server_digest(struct sim *s, struct sim_replica *rep, uint64_t index) {
  if (index == 0 || index > s->g_n) {
    return;
  }
  uint64_t d = fsm_digest(rep->srv.fsm);
  struct sim_global *g = &s->g[index];
  if (g->fsm_digest == 0) {
    g->fsm_digest = d;
  } else if (g->fsm_digest != d) {
    sim_fail(s,
             "state machines disagree: r%" PRIu64 " at index %" PRIu64
             " has fsm digest %016" PRIx64 ", another replica had %016" PRIx64,
             rep->id, index, d, g->fsm_digest);
  }
}

bool sim_server_restore(struct sim *s, struct sim_replica *rep,
                        const uint8_t *image, size_t len, uint64_t index) {
  struct sim_server *v = &rep->srv;
  int rv = fsm_snapshot_decode(v->fsm, image, len);
  if (rv != 0 || fsm_applied_index(v->fsm) != index) {
    sim_fail(s,
             "r%" PRIu64 ": the state machine image in snapshot %" PRIu64
             " (%zu bytes) %s (applied %" PRIu64 ")",
             rep->id, index, len, rv != 0 ? "does not decode" : "is for",
             fsm_applied_index(v->fsm));
    return false;
  }
  sim_server_digest(s, rep, index);
  if (v->subs_on) {
    subs_on_install(&v->subs); /* apply_install */
  }
  struct sim_pending p;
  pending_take(s, rep, index, 0, &p); /* apply_install: all below are lost */
  return !s->failed;
}

/* node_soft_state: a leader that steps down fails what waits on it; a new
 * leader's cluster time continues from the state machine's. */
void sim_server_role(struct sim *s, struct sim_replica *rep, bool was_leader) {
  struct sim_server *v = &rep->srv;
  bool leader = rep->role == CORE_LEADER;
  if (v->fsm == NULL || was_leader == leader) {
    return;
  }
  if (was_leader) {
    pending_fail_all(s, rep, SYNOD_ENOTLEADER);
    for (uint32_t i = 0; i < v->reads_n; i++) {
      redirect(s, rep, v->reads[i].client, v->reads[i].request_id);
      free(v->reads[i].req);
    }
    v->reads_n = 0;
    return;
  }
  v->time_offset_ms = (int64_t)fsm_time_ms(v->fsm) - (int64_t)clock_ms(s, rep);
  sim_trace(s, rep->id, "server: leads; cluster time continues at %" PRIu64,
            fsm_time_ms(v->fsm));
}

/* ------------------------------------------------------------ proposing */

static int propose_bytes(struct sim *s, struct sim_replica *rep,
                         const uint8_t *data, size_t len) {
  struct core_entry e = {.type = CORE_ENTRY_NORMAL, .data = data, .len = len};
  struct core_event ev = {.type = CORE_EVENT_PROPOSE,
                          .propose = {.entries = &e, .entries_n = 1}};
  int rv = sim_step_core(s, rep, &ev);
  if (rv != 0 && rv != SYNOD_ENOTLEADER && rv != SYNOD_EBUSY) {
    sim_fail(s, "r%" PRIu64 ": PROPOSE of a client entry returned %s", rep->id,
             s->errmsg);
  }
  return rv;
}

static void propose(struct sim *s, struct sim_replica *rep, uint32_t c,
                    const Synod__Request *req) {
  Synod__Request copy = *req;
  copy.id = 0;
  copy.stale = false;
  uint64_t t = stamp(s, rep);
  size_t len = fsm_command_encode_request(t, &copy, NULL, 0);
  uint8_t *buf = malloc(len ? len : 1);
  if (buf == NULL) {
    abort();
  }
  fsm_command_encode_request(t, &copy, buf, len);
  int rv = propose_bytes(s, rep, buf, len);
  free(buf);
  if (rv == 0) {
    pending_push(s, rep,
                 (struct sim_pending){.kind = SIM_PENDING_REQUEST,
                                      .client = c,
                                      .request_id = req->id});
    sim_trace(s, rep->id,
              "server: c%" PRIu32 " session %" PRIu64 " seq %" PRIu64
              " body %d proposed at %" PRIu64 " stamp %" PRIu64,
              c, req->session_id, req->sequence, (int)req->body_case,
              s->proposed_first, t);
  } else if (rv == SYNOD_ENOTLEADER) {
    redirect(s, rep, c, req->id);
  } else {
    send_error(s, rep, c, req->id, rv, "propose refused; retry");
  }
}

static int u64_cmp(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* requests_tick: one Tick with this tick's keepalives, or an empty one
 * when a deadline is due and no Tick is in flight. */
void sim_server_tick(struct sim *s, struct sim_replica *rep) {
  struct sim_server *v = &rep->srv;
  uint64_t now = stamp(s, rep);
  bool due = fsm_next_deadline(v->fsm) <= now &&
             v->tick_pending_index <= fsm_applied_index(v->fsm);
  if (v->kas_n == 0 && !due) {
    return;
  }
  uint64_t *ids = malloc((v->kas_n + 1) * sizeof(*ids));
  size_t k = 0;
  for (uint32_t i = 0; i < v->kas_n; i++) {
    ids[i] = v->kas[i].session;
  }
  qsort(ids, v->kas_n, sizeof(*ids), u64_cmp);
  for (uint32_t i = 0; i < v->kas_n; i++) {
    if (k == 0 || ids[k - 1] != ids[i]) {
      ids[k++] = ids[i];
    }
  }
  size_t len = fsm_command_encode_tick(now, ids, k, NULL, 0);
  uint8_t *buf = malloc(len ? len : 1);
  fsm_command_encode_tick(now, ids, k, buf, len);
  int rv = propose_bytes(s, rep, buf, len);
  free(buf);
  free(ids);
  if (rv == 0) {
    pending_push(s, rep,
                 (struct sim_pending){.kind = SIM_PENDING_TICK,
                                      .kas = v->kas,
                                      .kas_n = v->kas_n});
    v->tick_pending_index = s->proposed_first;
    sim_trace(s, rep->id,
              "server: tick %" PRIu64 " with %zu keepalives, stamp %" PRIu64,
              s->proposed_first, k, now);
    v->kas = NULL;
    v->kas_n = v->kas_cap = 0;
    return;
  }
  for (uint32_t i = 0; i < v->kas_n; i++) {
    send_error(s, rep, v->kas[i].client, v->kas[i].request_id, rv,
               "keepalive: tick not proposed");
  }
  v->kas_n = 0;
}

/* ---------------------------------------------------------------- reads */

static void serve_read(struct sim *s, struct sim_replica *rep, uint32_t c,
                       uint64_t request_id, const Synod__Request *req) {
  uint8_t *data;
  size_t len;
  if (fsm_query(rep->srv.fsm, req, &data, &len) != 0) {
    send_error(s, rep, c, request_id, SYNOD_EINVAL, "not a read request");
    return;
  }
  send_wrapped(s, rep, c, 1, request_id, data, len);
  free(data);
}

static void read_start(struct sim *s, struct sim_replica *rep, uint32_t c,
                       const Synod__Request *req, const uint8_t *raw,
                       size_t raw_len) {
  struct sim_server *v = &rep->srv;
  uint64_t ctx = ++s->read_ctx | READ_CTX_SERVER;
  struct core_event ev = {.type = CORE_EVENT_READ_INDEX, .read_ctx = ctx};
  int rv = sim_step_core(s, rep, &ev);
  if (rv == SYNOD_ENOTLEADER) {
    redirect(s, rep, c, req->id);
    return;
  }
  if (rv != 0) {
    if (rv != SYNOD_EBUSY) {
      sim_fail(s, "r%" PRIu64 ": READ_INDEX returned %s", rep->id, s->errmsg);
    }
    send_error(s, rep, c, req->id, rv, "read refused; retry");
    return;
  }
  v->reads = grow(v->reads, &v->reads_cap, v->reads_n + 1, sizeof(*v->reads));
  struct sim_sread *r = &v->reads[v->reads_n++];
  *r = (struct sim_sread){.ctx = ctx, .client = c, .request_id = req->id};
  r->req = malloc(raw_len ? raw_len : 1);
  memcpy(r->req, raw, raw_len);
  r->len = (uint32_t)raw_len;
}

bool sim_server_read(struct sim *s, struct sim_replica *rep,
                     const struct core_read *rd) {
  struct sim_server *v = &rep->srv;
  if (!(rd->ctx & READ_CTX_SERVER)) {
    return false;
  }
  for (uint32_t i = 0; i < v->reads_n; i++) {
    struct sim_sread *r = &v->reads[i];
    if (r->ctx != rd->ctx) {
      continue;
    }
    if (rd->error == 0) {
      r->index = rd->index;
      return true;
    }
    redirect(s, rep, r->client, r->request_id);
    free(r->req);
    *r = v->reads[--v->reads_n];
    return true;
  }
  return true; /* failed at a step-down already */
}

void sim_server_reads_serve(struct sim *s, struct sim_replica *rep) {
  struct sim_server *v = &rep->srv;
  uint64_t applied = fsm_applied_index(v->fsm);
  uint32_t i = 0;
  while (i < v->reads_n) {
    struct sim_sread r = v->reads[i];
    if (r.index == 0 || r.index > applied) {
      i++;
      continue;
    }
    memmove(&v->reads[i], &v->reads[i + 1],
            (v->reads_n - i - 1) * sizeof(*v->reads));
    v->reads_n--;
    Synod__Request *req = synod__request__unpack(NULL, r.len, r.req);
    if (req != NULL) {
      serve_read(s, rep, r.client, r.request_id, req);
      synod__request__free_unpacked(req, NULL);
    }
    free(r.req);
  }
}

/* ------------------------------------------------------------- requests */

static void keepalive(struct sim *s, struct sim_replica *rep, uint32_t c,
                      const Synod__Request *req) {
  struct sim_server *v = &rep->srv;
  if (req->session_id == 0) {
    send_error(s, rep, c, req->id, SYNOD_EINVAL, "keepalive without session");
    return;
  }
  v->kas = grow(v->kas, &v->kas_cap, v->kas_n + 1, sizeof(*v->kas));
  v->kas[v->kas_n++] = (struct sim_kawait){c, req->id, req->session_id};
}

/* requests_on_request. */
void sim_server_receive(struct sim *s, struct sim_replica *rep,
                        const struct sim_cmsg *m) {
  struct sim_server *v = &rep->srv;
  uint32_t c = m->client;
  Synod__Request *req = synod__request__unpack(NULL, m->len, m->data);
  if (req == NULL) {
    send_error(s, rep, c, 0, SYNOD_EMALFORMED, "request does not decode");
    return;
  }
  if (req->session_id != 0 && c <= SIM_CLIENTS_MAX) {
    v->conns[c] = req->session_id;
  }
  if (req->body_case == SYNOD__REQUEST__BODY__NOT_SET) {
    send_error(s, rep, c, req->id, SYNOD_EINVAL, "request has no body");
  } else if (fsm_request_is_read(req) && req->stale) {
    serve_read(s, rep, c, req->id, req);
  } else if (rep->role != CORE_LEADER) {
    redirect(s, rep, c, req->id);
  } else if (req->body_case == SYNOD__REQUEST__BODY_SESSION_KEEPALIVE) {
    keepalive(s, rep, c, req);
  } else if (fsm_request_is_read(req)) {
    read_start(s, rep, c, req, m->data, m->len);
  } else {
    propose(s, rep, c, req);
  }
  synod__request__free_unpacked(req, NULL);
}

/* ---------------------------------------------------------------- apply */

static void answer_keepalives(struct sim *s, struct sim_replica *rep,
                              const struct sim_pending *p) {
  for (uint32_t i = 0; i < p->kas_n; i++) {
    const struct sim_kawait *w = &p->kas[i];
    uint32_t ttl = fsm_session_ttl_ms(rep->srv.fsm, w->session);
    if (ttl == 0) {
      send_error(s, rep, w->client, w->request_id, SYNOD_ESESSION,
                 "session expired or unknown");
      continue;
    }
    Synod__Response resp = SYNOD__RESPONSE__INIT;
    Synod__SessionKeepaliveReply r = SYNOD__SESSION_KEEPALIVE_REPLY__INIT;
    r.ttl_ms = ttl;
    resp.id = w->request_id;
    resp.body_case = SYNOD__RESPONSE__BODY_SESSION_KEEPALIVE;
    resp.session_keepalive = &r;
    send_response(s, rep, w->client, &resp);
  }
}

static void apply_event(struct sim *s, struct sim_replica *rep,
                        const struct fsm_event *e) {
  struct sim_server *v = &rep->srv;
  struct sim_wait w;
  switch (e->type) {
  case FSM_EVENT_LOCK_GRANTED:
  case FSM_EVENT_LOCK_TIMEOUT:
  case FSM_EVENT_LOCK_CANCELED:
    if (wait_take(rep, e->session_id, e->sequence, &w)) {
      send_wrapped(s, rep, w.client, 1, w.request_id, e->response,
                   e->response_len);
    }
    break;
  case FSM_EVENT_SESSION_EXPIRED:
    for (uint32_t c = 1; c <= SIM_CLIENTS_MAX; c++) {
      if (v->conns[c] == e->session_id) {
        v->conns[c] = 0;
        send_wrapped(s, rep, c, 2, 0, e->event, e->event_len);
      }
    }
    break;
  case FSM_EVENT_ELECTION_CHANGED:
    break;
  case FSM_EVENT_CHANNEL_APPENDED:
  case FSM_EVENT_CHANNEL_DELETED:
  case FSM_EVENT_KEYS_CHANGED:
  case FSM_EVENT_GROUP_APPENDED:
  case FSM_EVENT_GROUP_DELETED:
    if (v->subs_on) {
      subs_on_event(&v->subs, e); /* apply_event */
    }
    break;
  }
}

static uint64_t output_hash(const struct fsm_output *out) {
  uint64_t h = SIM_HASH_INIT;
  const struct fsm_response *r = &out->response;
  h = sim_hash_u64(h, out->has_response);
  h = sim_hash_u64(h, r->session_id);
  h = sim_hash_u64(h, r->sequence);
  h = sim_hash_u64(h, r->index);
  h = sim_hash_u64(h, r->pending);
  h = sim_hash_bytes(h, r->data, r->data ? r->len : 0);
  for (size_t i = 0; i < out->events_len; i++) {
    const struct fsm_event *e = &out->events[i];
    h = sim_hash_u64(h, e->type);
    h = sim_hash_u64(h, e->session_id);
    h = sim_hash_u64(h, e->sequence);
    h = sim_hash_bytes(h, e->name ? e->name : "",
                       e->name ? strlen(e->name) : 0);
    h = sim_hash_bytes(h, e->response, e->response ? e->response_len : 0);
    h = sim_hash_bytes(h, e->event, e->event ? e->event_len : 0);
    h = sim_hash_u64(h, e->revision);
  }
  return h;
}

static void apply_normal(struct sim *s, struct sim_replica *rep,
                         const struct sim_commit *c, bool first) {
  struct sim_server *v = &rep->srv;
  struct fsm_output out;
  int rv = fsm_apply(v->fsm, c->index, c->data, c->len, &out);
  if (rv == SYNOD_EPROTO && c->len > 0 && c->data[0] == 'r') {
    /* The core workload's payload ("r1.0.5 ..."), not a Command (those
     * start with time_ms, 0x08), read as a field no build knows: passed
     * over as a no-op entry is. synodd's entries are all Commands, and a
     * replica there stops at one it refuses (apply.c). */
    memset(&out, 0, sizeof out);
    rv = fsm_index_advance(v->fsm, c->index);
  }
  if (rv != 0) {
    sim_fail(s,
             "r%" PRIu64 ": fsm_apply %" PRIu64 " refused (fsm applied %" PRIu64
             "): %s%s",
             rep->id, c->index, fsm_applied_index(v->fsm), synod_strerror(rv),
             rv == SYNOD_EPROTO ? fsm_unknown_field(v->fsm) : "");
    return;
  }
  uint64_t h = output_hash(&out);
  if (first) {
    s->g[c->index].out_hash = h;
    sim_observe_apply(s, c->index, c->data, c->len, &out, fsm_time_ms(v->fsm));
    sim_keys_apply(s, v->fsm, c->index, c->data, c->len, &out);
    sim_groups_apply(s, v->fsm, c->index, &out);
  } else if (s->g[c->index].out_hash != h) {
    sim_fail(s,
             "state machines disagree: r%" PRIu64 " applying %" PRIu64
             " produced other answers or events than the first replica did",
             rep->id, c->index);
    return;
  }
  struct sim_pending p;
  if (pending_take(s, rep, c->index, c->term, &p)) {
    if (p.kind == SIM_PENDING_TICK) {
      answer_keepalives(s, rep, &p);
    } else if (out.has_response && out.response.pending) {
      wait_add(rep, out.response.session_id, out.response.sequence, p.client,
               p.request_id);
    } else if (out.has_response) {
      send_wrapped(s, rep, p.client, 1, p.request_id, out.response.data,
                   out.response.len);
    }
    free(p.kas);
  }
  for (size_t i = 0; i < out.events_len; i++) {
    apply_event(s, rep, &out.events[i]);
  }
}

void sim_server_apply(struct sim *s, struct sim_replica *rep,
                      const struct sim_commit *c, bool first) {
  struct sim_server *v = &rep->srv;
  if (c->type == CORE_ENTRY_NORMAL) {
    apply_normal(s, rep, c, first);
  } else {
    if (fsm_index_advance(v->fsm, c->index) != 0) {
      sim_fail(s, "r%" PRIu64 ": fsm_index_advance %" PRIu64 " refused",
               rep->id, c->index);
      return;
    }
    struct sim_pending p;
    if (pending_take(s, rep, c->index, c->term, &p)) {
      free(p.kas);
    }
  }
  if (!s->failed && c->index % DIGEST_EVERY == 0) {
    sim_server_digest(s, rep, c->index);
  }
}
