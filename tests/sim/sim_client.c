/* Simulated clients, behaving as libsynod does: a session opened with a
 * TTL and kept alive every TTL/3, failing closed when no keepalive was
 * acknowledged within the TTL of its send; one sequence number per new
 * request; a request unanswered within a timeout, or redirected, is sent
 * again with the same (session, sequence) to the leader hint or another
 * replica. Each client runs up to three threads (lock owners) that issue
 * random counter, lock and election operations on a few shared names, and
 * may crash, pause (its session expires under it) or close its session.
 * Client <-> replica messages cross the simulated network. Every operation
 * goes into the history (struct sim_hop) that sim_observe.c checks. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

#include "synod.h"

static uint64_t pick(struct sim *s, uint64_t lo, uint64_t hi) {
  return sim_rand_range(&s->rand, lo, hi);
}

/* ------------------------------------------------------------- network */

void sim_cnet_send(struct sim *s, uint32_t client, uint32_t replica,
                   bool to_server, const uint8_t *data, size_t len) {
  const struct sim_client *k = &s->cl[client];
  if (replica == 0 || replica > SIM_IDS_MAX || !s->r[replica].exists ||
      k->cut[replica][to_server ? 0 : 1] > 0) {
    s->stats.msgs_lost++;
    return;
  }
  if (sim_rand_ppm(&s->rand, s->f.loss_ppm)) {
    s->stats.msgs_lost++;
    return;
  }
  int copies = sim_rand_ppm(&s->rand, s->f.dup_ppm) ? 2 : 1;
  for (int i = 0; i < copies; i++) {
    struct sim_cmsg *m = malloc(sizeof(*m) + len);
    if (m == NULL) {
      abort();
    }
    *m = (struct sim_cmsg){.client = client,
                           .replica = replica,
                           .to_server = to_server,
                           .len = (uint32_t)len};
    memcpy(m->data, data, len);
    uint64_t at = s->now_ms + pick(s, s->f.delay_min_ms, s->f.delay_max_ms);
    sim_schedule_cmsg(s, at, m);
  }
}

void sim_cnet_deliver(struct sim *s, struct sim_cmsg *m) {
  const struct sim_client *k = &s->cl[m->client];
  if (k->cut[m->replica][m->to_server ? 0 : 1] > 0) {
    s->stats.msgs_lost++;
  } else if (m->to_server) {
    struct sim_replica *rep = &s->r[m->replica];
    if (rep->up && rep->srv.fsm != NULL) {
      sim_server_receive(s, rep, m);
    } else {
      s->stats.msgs_lost++;
    }
  } else {
    sim_client_receive(s, m);
  }
  free(m);
}

/* A client cut off from some replicas for a while (one direction or
 * both): talking only to a minority, or losing the leader. */
void sim_clients_nemesis(struct sim *s, uint64_t ms) {
  if (s->cl_n == 0) {
    return;
  }
  uint32_t c = (uint32_t)pick(s, 1, s->cl_n);
  uint32_t keep = (uint32_t)pick(s, 1, (uint32_t)s->ids_n);
  bool all_but_one = pick(s, 0, 1) == 0;
  uint32_t dirs = (uint32_t)pick(s, 0, 2); /* 0 both, 1 to server, 2 back */
  sim_trace(s, 0, "c%" PRIu32 ": cut from %s r%" PRIu32 " for %" PRIu64 " ms",
            c, all_but_one ? "all but" : "", keep, ms);
  for (uint32_t r = 1; r <= s->ids_n; r++) {
    if ((r == keep) == all_but_one) {
      continue;
    }
    for (uint32_t d = 0; d < 2; d++) {
      if (dirs == 0 || dirs == d + 1) {
        s->cl[c].cut[r][d]++;
        sim_schedule_client(s, s->now_ms + ms, c, r | d << 8 | 1u << 16);
      }
    }
  }
}

/* ---------------------------------------------------------------- setup */

static void client_reset(struct sim *s, struct sim_client *k) {
  k->session = 0;
  k->sequence = 0;
  k->hint = 0;
  k->paused = false;
  k->crashed = false;
  k->ttl_ms = (uint32_t)pick(s, s->client_ttl_min_ms, s->client_ttl_max_ms);
  k->threads_n =
      k->scripted ? SIM_THREADS_MAX : (uint32_t)pick(s, 1, SIM_THREADS_MAX);
}

static struct sim_client *client_new(struct sim *s, bool scripted) {
  if (s->cl_n == SIM_CLIENTS_MAX) {
    return NULL;
  }
  struct sim_client *k = &s->cl[++s->cl_n];
  memset(k, 0, sizeof(*k));
  k->id = s->cl_n;
  k->exists = true;
  k->scripted = scripted;
  client_reset(s, k);
  sim_schedule_client(s, s->now_ms + 1, k->id, 0);
  return k;
}

/* The seed's choices for clients; called before the replicas start. */
void sim_clients_pick(struct sim *s) {
  if (s->opts.swarm) {
    s->fsm_window = pick(s, 0, 3) == 0 ? 4 : 32;
    s->client_poll_ms = (uint32_t)pick(s, 2, 20);
    s->client_wait_ms = (uint32_t)pick(s, 60, 1000);
    s->client_ttl_min_ms = (uint32_t)pick(s, 1000, 2500);
    s->client_ttl_max_ms = s->client_ttl_min_ms + (uint32_t)pick(s, 0, 4000);
    s->client_crash_ppm = pick(s, 0, 2) == 0 ? 0 : (uint32_t)pick(s, 0, 100);
    s->client_pause_ppm = pick(s, 0, 2) == 0 ? 0 : (uint32_t)pick(s, 0, 300);
    s->client_close_ppm = pick(s, 0, 2) == 0 ? 0 : (uint32_t)pick(s, 0, 300);
    s->client_part_weight = (uint32_t)pick(s, 0, 10);
    s->names_n = (uint32_t)pick(s, 1, 3);
  } else {
    s->fsm_window = 32;
    s->client_poll_ms = 5;
    s->client_wait_ms = 300;
    s->client_ttl_min_ms = 3000;
    s->client_ttl_max_ms = 3000;
    s->names_n = 3;
  }
}

void sim_clients_init(struct sim *s) {
  s->cl = calloc(SIM_CLIENTS_MAX + 1, sizeof(*s->cl));
  if (s->cl == NULL) {
    abort();
  }
  for (uint32_t i = 0; i < s->opts.clients && i < SIM_CLIENTS_MAX; i++) {
    client_new(s, false);
  }
}

static void cop_clear(struct sim_cop *op) {
  free(op->req);
  memset(op, 0, sizeof(*op));
}

void sim_clients_free(struct sim *s) {
  for (uint32_t c = 1; s->cl != NULL && c <= s->cl_n; c++) {
    struct sim_client *k = &s->cl[c];
    cop_clear(&k->open);
    cop_clear(&k->ka);
    for (uint32_t t = 0; t < SIM_THREADS_MAX; t++) {
      cop_clear(&k->th[t].op);
    }
  }
  free(s->cl);
  s->cl = NULL;
}

/* ------------------------------------------------------------- sending */

static bool replica_known(const struct sim *s, uint32_t r) {
  return r >= 1 && r <= s->ids_n && s->r[r].exists && !s->r[r].retired;
}

/* The leader hint, or any other replica the client knows of. */
static uint32_t target_pick(struct sim *s, struct sim_client *k,
                            uint32_t avoid) {
  if (replica_known(s, k->hint) && k->hint != avoid) {
    return k->hint;
  }
  uint32_t ids[SIM_IDS_MAX];
  uint32_t n = 0;
  for (uint32_t r = 1; r <= s->ids_n; r++) {
    if (replica_known(s, r) && r != avoid) {
      ids[n++] = r;
    }
  }
  if (n == 0) {
    return avoid;
  }
  return ids[pick(s, 0, n - 1)];
}

static void cop_send(struct sim *s, struct sim_client *k, struct sim_cop *op) {
  uint8_t buf[1024];
  uint8_t *p = buf;
  op->target = target_pick(s, k, op->attempts > 0 ? op->target : 0);
  op->request_id = ++k->request_id;
  op->sent_ms = s->now_ms;
  op->retry_at_ms = 0;
  if (op->attempts++ == 0) {
    op->first_sent_ms = s->now_ms;
  } else {
    s->stats.client_retries++;
  }
  size_t n = 0;
  p[n++] = 0x08; /* Request.id, varint; protobuf merges the fields */
  uint64_t v = op->request_id;
  do {
    p[n] = (uint8_t)(v & 0x7f);
    v >>= 7;
    p[n] |= v ? 0x80 : 0;
    n++;
  } while (v);
  if (n + op->len > sizeof(buf)) {
    abort();
  }
  memcpy(p + n, op->req, op->len);
  sim_cnet_send(s, k->id, op->target, true, p, n + op->len);
}

static void cop_start(struct sim *s, struct sim_client *k, struct sim_cop *op,
                      Synod__Request *req, uint64_t wait_ms) {
  cop_clear(op);
  op->active = true;
  op->body = (uint32_t)req->body_case;
  op->wait_ms = wait_ms;
  op->len = (uint32_t)synod__request__get_packed_size(req);
  op->req = malloc(op->len ? op->len : 1);
  synod__request__pack(req, op->req);
  cop_send(s, k, op);
}

static void cop_poll(struct sim *s, struct sim_client *k, struct sim_cop *op) {
  if (!op->active) {
    return;
  }
  if (op->retry_at_ms != 0 ? s->now_ms >= op->retry_at_ms
                           : s->now_ms >= op->sent_ms + op->wait_ms) {
    cop_send(s, k, op);
  }
}

/* ------------------------------------------------------------- history */

static struct sim_hop *hop_of(struct sim *s, const struct sim_cop *op) {
  return op->hop ? &s->hops[op->hop - 1] : NULL;
}

static uint32_t hop_new(struct sim *s, struct sim_client *k, uint32_t t,
                        const struct sim_op_spec *sp, uint64_t sequence) {
  if (s->hops_n == s->hops_cap) {
    s->hops_cap = s->hops_cap ? s->hops_cap * 2 : 256;
    s->hops = realloc(s->hops, s->hops_cap * sizeof(*s->hops));
    if (s->hops == NULL) {
      abort();
    }
  }
  struct sim_hop *hp = &s->hops[s->hops_n++];
  *hp = (struct sim_hop){.client = k->id,
                         .thread = t,
                         .spec = *sp,
                         .session = k->session,
                         .sequence = sequence,
                         .invoke = ++s->hist_clock};
  hp->r.code = -1;
  hp->r.invoke_ms = s->now_ms;
  s->stats.client_ops++;
  return s->hops_n;
}

/* The thread's operation ends: answered (code >= 0) or given up (-1). */
static void op_finish(struct sim *s, struct sim_client *k, uint32_t t,
                      int code) {
  struct sim_thread *th = &k->th[t];
  struct sim_hop *hp = hop_of(s, &th->op);
  hp->r.done = true;
  hp->r.code = code;
  hp->r.complete_ms = s->now_ms;
  hp->r.attempts = th->op.attempts;
  if (code >= 0) {
    hp->complete = ++s->hist_clock;
    s->stats.client_acked++;
  } else {
    s->stats.client_unknown++;
  }
  sim_trace(s, 0,
            "c%" PRIu32 "/t%" PRIu32 ": op %d seq %" PRIu64
            " %s %d value %" PRId64 " token %" PRIu64 " after %" PRIu32
            " sends",
            k->id, t, (int)hp->spec.type, hp->sequence,
            code >= 0 ? "answered" : "given up", code, hp->r.value, hp->r.token,
            hp->r.attempts);
  cop_clear(&th->op);
  th->next_ms = s->now_ms + pick(s, 0, 50);
}

/* The session is gone (or can no longer be trusted): libsynod fails every
 * operation in it and tells the application its locks are lost. */
static void session_lost(struct sim *s, struct sim_client *k, const char *why) {
  sim_trace(s, 0, "c%" PRIu32 ": session %" PRIu64 " lost: %s", k->id,
            k->session, why);
  for (uint32_t t = 0; t < SIM_THREADS_MAX; t++) {
    if (k->th[t].op.active) {
      op_finish(s, k, t, -1);
    }
    memset(k->th[t].holds, 0, sizeof(k->th[t].holds));
    memset(k->th[t].member, 0, sizeof(k->th[t].member));
    memset(k->th[t].gm, 0, sizeof(k->th[t].gm));
  }
  cop_clear(&k->open);
  cop_clear(&k->ka);
  k->session = 0;
}

/* ------------------------------------------------------------ requests */

static void name_of(char *buf, char prefix, uint32_t n) {
  buf[0] = prefix;
  buf[1] = (char)('0' + n);
  buf[2] = '\0';
}

/* ------------------------------------------------------------ groups */

/* The bodies of a group request, alive until it is packed. */
struct group_bodies {
  char group[8];
  char member[16];
  char to[16];
  uint8_t data[32];
  Synod__GroupJoin join;
  Synod__GroupLeave leave;
  Synod__GroupSend send;
  Synod__GroupCheckpoint ckpt;
  Synod__GroupStateRequest state;
};

static void member_name(char *buf, uint32_t client, uint32_t thread) {
  snprintf(buf, 16, "c%" PRIu32 ".t%" PRIu32, client, thread);
}

/* Fills req for a group op of thread t of client k. */
static void group_build(struct sim_client *k, uint32_t t,
                        const struct sim_op_spec *sp, Synod__Request *req,
                        struct group_bodies *b) {
  snprintf(b->group, sizeof b->group, "g%" PRIu32, sp->name);
  member_name(b->member, k->id, t);
  switch (sp->type) {
  case SIM_OP_GROUP_JOIN:
    synod__group_join__init(&b->join);
    b->join.group = b->group;
    b->join.member = b->member;
    b->join.data.data = (uint8_t *)b->member;
    b->join.data.len = strlen(b->member);
    b->join.want_state = sp->a1 != 0;
    req->body_case = SYNOD__REQUEST__BODY_GROUP_JOIN;
    req->group_join = &b->join;
    break;
  case SIM_OP_GROUP_LEAVE:
    synod__group_leave__init(&b->leave);
    b->leave.group = b->group;
    b->leave.member = b->member;
    req->body_case = SYNOD__REQUEST__BODY_GROUP_LEAVE;
    req->group_leave = &b->leave;
    break;
  case SIM_OP_GROUP_SEND:
    synod__group_send__init(&b->send);
    b->send.group = b->group;
    b->send.from = b->member;
    if (sp->a1 >= 0) {
      member_name(b->to, (uint32_t)(sp->a1 / SIM_THREADS_MAX) + 1,
                  (uint32_t)(sp->a1 % SIM_THREADS_MAX));
      b->send.to = b->to;
    }
    b->send.data.len =
        (size_t)snprintf((char *)b->data, sizeof b->data,
                         "m.c%" PRIu32 ".%" PRIu64, k->id, req->sequence);
    b->send.data.data = b->data;
    req->body_case = SYNOD__REQUEST__BODY_GROUP_SEND;
    req->group_send = &b->send;
    break;
  case SIM_OP_GROUP_CHECKPOINT:
    synod__group_checkpoint__init(&b->ckpt);
    b->ckpt.group = b->group;
    b->ckpt.member = b->member;
    b->ckpt.offset = (uint64_t)sp->a1;
    /* The member's state at offset: its running hash (sim_group.c). */
    memcpy(b->data, &sp->a2, sizeof sp->a2);
    b->ckpt.chunk.len = sizeof sp->a2;
    b->ckpt.chunk.data = b->data;
    b->ckpt.total_bytes = b->ckpt.chunk.len;
    req->body_case = SYNOD__REQUEST__BODY_GROUP_CHECKPOINT;
    req->group_checkpoint = &b->ckpt;
    break;
  default:
    synod__group_state_request__init(&b->state);
    b->state.group = b->group;
    b->state.member = b->member;
    req->body_case = SYNOD__REQUEST__BODY_GROUP_STATE_REQUEST;
    req->group_state_request = &b->state;
    break;
  }
}

/* Builds the request for sp in session k and starts it on thread t.
 * Returns the history handle. */
static uint32_t op_start(struct sim *s, struct sim_client *k, uint32_t t,
                         const struct sim_op_spec *sp) {
  Synod__Request req = SYNOD__REQUEST__INIT;
  char name[8];
  char value[24];
  uint64_t wait = s->client_wait_ms;
  bool read = sp->type == SIM_OP_GET || sp->type == SIM_OP_LEADER ||
              sim_keys_is_read(sp);
  Synod__CounterAdd add = SYNOD__COUNTER_ADD__INIT;
  Synod__CounterGet get = SYNOD__COUNTER_GET__INIT;
  Synod__CounterSet set = SYNOD__COUNTER_SET__INIT;
  Synod__CounterCas cas = SYNOD__COUNTER_CAS__INIT;
  Synod__CounterDelete del = SYNOD__COUNTER_DELETE__INIT;
  Synod__LockAcquire acq = SYNOD__LOCK_ACQUIRE__INIT;
  Synod__LockRelease rel = SYNOD__LOCK_RELEASE__INIT;
  Synod__ElectionCampaign camp = SYNOD__ELECTION_CAMPAIGN__INIT;
  Synod__ElectionResign res = SYNOD__ELECTION_RESIGN__INIT;
  Synod__ElectionLeader lead = SYNOD__ELECTION_LEADER__INIT;
  Synod__ChannelPublish pub = SYNOD__CHANNEL_PUBLISH__INIT;
  Synod__ChannelCreate create = SYNOD__CHANNEL_CREATE__INIT;
  Synod__ChannelLimits limits = SYNOD__CHANNEL_LIMITS__INIT;
  ProtobufCBinaryData msgs[SIM_BATCH_MAX];
  uint8_t payloads[SIM_BATCH_MAX][SIM_PAYLOAD_MAX];
  struct group_bodies gb;
  req.session_id = k->session;
  req.sequence = read ? 0 : ++k->sequence;
  switch (sp->type) {
  case SIM_OP_ADD:
    name_of(name, 'c', sp->name);
    add.name = name;
    add.delta = sp->a1;
    add.return_previous = sp->a2 != 0;
    req.body_case = SYNOD__REQUEST__BODY_COUNTER_ADD;
    req.counter_add = &add;
    break;
  case SIM_OP_GET:
    name_of(name, 'c', sp->name);
    get.name = name;
    req.body_case = SYNOD__REQUEST__BODY_COUNTER_GET;
    req.counter_get = &get;
    break;
  case SIM_OP_SET:
    name_of(name, 'c', sp->name);
    set.name = name;
    set.value = sp->a1;
    req.body_case = SYNOD__REQUEST__BODY_COUNTER_SET;
    req.counter_set = &set;
    break;
  case SIM_OP_CAS:
    name_of(name, 'c', sp->name);
    cas.name = name;
    cas.expect = sp->a1;
    cas.update = sp->a2;
    req.body_case = SYNOD__REQUEST__BODY_COUNTER_CAS;
    req.counter_cas = &cas;
    break;
  case SIM_OP_DELETE:
    name_of(name, 'c', sp->name);
    del.name = name;
    req.body_case = SYNOD__REQUEST__BODY_COUNTER_DELETE;
    req.counter_delete = &del;
    break;
  case SIM_OP_ACQUIRE:
    name_of(name, 'l', sp->name);
    acq.name = name;
    acq.owner_id = t + 1;
    acq.timeout_ms = sp->timeout_ms;
    acq.lock_delay_ms = sp->lock_delay_ms;
    req.body_case = SYNOD__REQUEST__BODY_LOCK_ACQUIRE;
    req.lock_acquire = &acq;
    wait += sp->timeout_ms;
    break;
  case SIM_OP_RELEASE:
    name_of(name, 'l', sp->name);
    rel.name = name;
    rel.owner_id = t + 1;
    req.body_case = SYNOD__REQUEST__BODY_LOCK_RELEASE;
    req.lock_release = &rel;
    break;
  case SIM_OP_CAMPAIGN:
    name_of(name, 'e', sp->name);
    snprintf(value, sizeof value, "c%" PRIu32 ".%" PRId64, k->id, sp->a1);
    camp.name = name;
    camp.value.data = (uint8_t *)value;
    camp.value.len = strlen(value);
    req.body_case = SYNOD__REQUEST__BODY_ELECTION_CAMPAIGN;
    req.election_campaign = &camp;
    break;
  case SIM_OP_RESIGN:
    name_of(name, 'e', sp->name);
    res.name = name;
    req.body_case = SYNOD__REQUEST__BODY_ELECTION_RESIGN;
    req.election_resign = &res;
    break;
  case SIM_OP_LEADER:
    name_of(name, 'e', sp->name);
    lead.name = name;
    req.body_case = SYNOD__REQUEST__BODY_ELECTION_LEADER;
    req.election_leader = &lead;
    break;
  case SIM_OP_PUBLISH:
    /* Payloads name the history record: the next one, made below. */
    sim_channel_name(s, sp->name, name);
    for (uint32_t i = 0; i < sp->a1 && i < SIM_BATCH_MAX; i++) {
      msgs[i].data = payloads[i];
      msgs[i].len = sim_channel_payload(s->hops_n + 1, i, payloads[i]);
    }
    pub.name = name;
    pub.n_messages = (size_t)sp->a1;
    pub.messages = msgs;
    req.body_case = SYNOD__REQUEST__BODY_CHANNEL_PUBLISH;
    req.channel_publish = &pub;
    break;
  case SIM_OP_CHANNEL_CREATE:
    sim_channel_name(s, sp->name, name);
    create.name = name;
    if (s->chan_ring && sp->name == s->chan_n) {
      limits.max_messages = s->ring_retain;
      create.limits = &limits;
    }
    req.body_case = SYNOD__REQUEST__BODY_CHANNEL_CREATE;
    req.channel_create = &create;
    break;
  case SIM_OP_GROUP_JOIN:
  case SIM_OP_GROUP_LEAVE:
  case SIM_OP_GROUP_SEND:
  case SIM_OP_GROUP_CHECKPOINT:
  case SIM_OP_GROUP_STATE:
    group_build(k, t, sp, &req, &gb);
    break;
  case SIM_OP_KEY:
    sim_keys_build(s, k->id, t, sp, &req);
    break;
  }
  struct sim_thread *th = &k->th[t];
  uint32_t h = hop_new(s, k, t, sp, req.sequence);
  cop_start(s, k, &th->op, &req, wait);
  th->op.hop = h;
  return h;
}

/* With the channel workload, pub_weight percent of the operations go to
 * channels: mostly publishes of one message or a batch of 2-4, and now
 * and then a create (with the same limits every time, so it must
 * succeed); "ring" is published to only once a create of it (with its
 * small max_messages) was acknowledged. */
static bool channel_pick(struct sim *s, struct sim_op_spec *sp) {
  if (!s->opts.channels || pick(s, 0, 99) >= s->pub_weight) {
    return false;
  }
  sp->name = (uint32_t)pick(s, 0, sim_channels_total(s) - 1);
  bool ring = s->chan_ring && sp->name == s->chan_n;
  if ((ring && !s->ring_ready) || pick(s, 0, 19) == 0) {
    sp->type = SIM_OP_CHANNEL_CREATE;
  } else {
    sp->type = SIM_OP_PUBLISH;
    sp->a1 = pick(s, 0, 2) == 0 ? (int64_t)pick(s, 2, SIM_BATCH_MAX) : 1;
  }
  return true;
}

/* With the group workload, a member asked for the group's state stores
 * it as a checkpoint first. Else a quarter of the operations go to
 * groups (half of them to a group the thread is in): a thread not in the
 * group joins it (asking for state half the time); one in it mostly
 * sends (to all, or to a member that may not exist), and now and then
 * leaves, stores its state as a checkpoint (asks for state while it has
 * none), or asks for state. Draws nothing without it, so other runs keep
 * their seeds. */
static bool group_pick(struct sim *s, struct sim_client *k, uint32_t t,
                       struct sim_op_spec *sp) {
  if (!s->opts.groups) {
    return false;
  }
  struct sim_thread *th = &k->th[t];
  for (uint32_t g = 0; g < SIM_GROUPS_MAX; g++) {
    if (th->member[g] && sim_groups_checkpoint(s, th->gm[g], true, sp)) {
      return true;
    }
  }
  if (pick(s, 0, 3) != 0) {
    return false;
  }
  sp->name = (uint32_t)pick(s, 0, SIM_GROUPS_MAX - 1);
  for (uint32_t g = 0; g < SIM_GROUPS_MAX; g++) {
    if (th->member[(sp->name + g) % SIM_GROUPS_MAX] && pick(s, 0, 1) == 0) {
      sp->name = (sp->name + g) % SIM_GROUPS_MAX;
      break;
    }
  }
  uint64_t x = pick(s, 0, 99);
  if (!th->member[sp->name]) {
    sp->type = SIM_OP_GROUP_JOIN;
    sp->a1 = (int64_t)pick(s, 0, 1);
  } else if (x < 65) {
    sp->type = SIM_OP_GROUP_SEND;
    sp->a1 =
        pick(s, 0, 2) != 0 ? -1 : (int64_t)pick(s, 0, 4 * SIM_THREADS_MAX - 1);
  } else if (x < 77) {
    sp->type = SIM_OP_GROUP_LEAVE;
  } else if (x < 90) {
    uint32_t g = sp->name;
    if (!sim_groups_checkpoint(s, th->gm[g], false, sp)) {
      sp->type = SIM_OP_GROUP_STATE;
    }
  } else {
    sp->type = SIM_OP_GROUP_STATE;
  }
  return true;
}

/* A random operation for a thread of a random client: mostly counters and
 * locks on a few shared names, so that histories are contended. */
static void thread_pick(struct sim *s, struct sim_client *k, uint32_t t) {
  struct sim_thread *th = &k->th[t];
  struct sim_op_spec sp = {.thread = t,
                           .name = (uint32_t)pick(s, 0, s->names_n - 1)};
  for (uint32_t n = 0; n < s->names_n; n++) {
    if (th->holds[n] > 0 && s->now_ms >= th->hold_until_ms[n]) {
      sp.type = SIM_OP_RELEASE;
      sp.name = n;
      op_start(s, k, t, &sp);
      return;
    }
  }
  if (channel_pick(s, &sp) || group_pick(s, k, t, &sp) ||
      sim_keys_op_pick(s, &sp)) {
    op_start(s, k, t, &sp);
    return;
  }
  uint64_t x = pick(s, 0, 99);
  if (x < 30) {
    sp.type = SIM_OP_ADD;
    sp.a1 = pick(s, 0, 60) == 0 ? INT64_MAX / 2 : (int64_t)pick(s, 0, 8) - 3;
    sp.a2 = (int64_t)pick(s, 0, 1);
  } else if (x < 45) {
    sp.type = SIM_OP_GET;
  } else if (x < 50) {
    sp.type = SIM_OP_SET;
    sp.a1 = pick(s, 0, 15) == 0 ? INT64_MAX - (int64_t)pick(s, 0, 3)
                                : (int64_t)pick(s, 0, 20);
  } else if (x < 60) {
    sp.type = SIM_OP_CAS;
    sp.a1 = (int64_t)pick(s, 0, 10);
    sp.a2 = (int64_t)pick(s, 0, 10);
  } else if (x < 63) {
    sp.type = SIM_OP_DELETE;
  } else if (x < 88) {
    sp.type = SIM_OP_ACQUIRE;
    if (th->holds[sp.name] > 0 && pick(s, 0, 3) != 0) {
      return; /* mostly no reentry: let the hold end */
    }
    sp.timeout_ms = pick(s, 0, 2) == 0 ? 0 : (uint32_t)pick(s, 20, 3000);
    sp.lock_delay_ms = pick(s, 0, 2) == 0 ? (uint32_t)pick(s, 0, 1500) : 0;
  } else if (x < 94) {
    sp.type = SIM_OP_CAMPAIGN;
    sp.a1 = t;
  } else if (x < 97) {
    sp.type = SIM_OP_RESIGN;
  } else {
    sp.type = SIM_OP_LEADER;
  }
  op_start(s, k, t, &sp);
}

/* ------------------------------------------------------------ answers */

static void on_acquired(struct sim *s, struct sim_client *k, uint32_t t,
                        struct sim_hop *hp, const Synod__LockAcquireReply *r) {
  struct sim_thread *th = &k->th[t];
  uint32_t n = hp->spec.name;
  uint32_t lock;
  uint64_t session, owner;
  hp->r.token = r->token;
  hp->r.hold = r->hold_count;
  if (!history_locks_token(s->locks, r->token, &lock, &session, &owner) ||
      lock != n || session != hp->session || owner != t + 1) {
    sim_fail(s,
             "lock: c%" PRIu32 "/t%" PRIu32 " (session %" PRIu64
             ") is told it holds l%" PRIu32 " with token %" PRIu64
             ", a grant the log never made to it",
             k->id, t, hp->session, n, r->token);
  } else if (r->hold_count != th->holds[n] + 1) {
    sim_fail(s,
             "lock: c%" PRIu32 "/t%" PRIu32 " acquires l%" PRIu32
             " it held %" PRIu32 " times and is told hold count %" PRIu32,
             k->id, t, n, th->holds[n], r->hold_count);
  }
  th->holds[n] = r->hold_count;
  th->tokens[n] = r->token;
  th->hold_until_ms[n] = s->now_ms + pick(s, 0, 600);
}

static void on_released(struct sim *s, struct sim_client *k, uint32_t t,
                        struct sim_hop *hp, int code,
                        const Synod__Response *resp) {
  struct sim_thread *th = &k->th[t];
  uint32_t n = hp->spec.name;
  if (code == SYNOD_ENOTHOLDER && th->holds[n] > 0) {
    sim_fail(s,
             "lock: c%" PRIu32 "/t%" PRIu32 " (session %" PRIu64
             ") holds l%" PRIu32 " (token %" PRIu64 ", hold %" PRIu32
             ") by acknowledgement, but its release is refused: not holder",
             k->id, t, hp->session, n, th->tokens[n], th->holds[n]);
    return;
  }
  if (code == 0) {
    uint32_t left = resp->lock_release->hold_count;
    if (left + 1 != th->holds[n]) {
      sim_fail(s,
               "lock: c%" PRIu32 "/t%" PRIu32 " releases l%" PRIu32
               " held %" PRIu32 " times and is told %" PRIu32 " are left",
               k->id, t, n, th->holds[n], left);
    }
    th->holds[n] = left;
    hp->r.hold = left;
  }
}

/* Every create asks for the limits the channel already has (or gets):
 * it must succeed unless the session is gone. */
static void on_created(struct sim *s, struct sim_client *k,
                       const struct sim_hop *hp, int code,
                       const Synod__Response *resp) {
  char name[8];
  sim_channel_name(s, hp->spec.name, name);
  bool ring = s->chan_ring && hp->spec.name == s->chan_n;
  if (code == SYNOD_EEXIST) {
    sim_fail(s,
             "channels: c%" PRIu32 " creates %s with the limits it was "
             "created with, and is refused: %s",
             k->id, name,
             resp->error->message ? resp->error->message : "(no message)");
  } else if (code == 0 && ring &&
             (resp->body_case != SYNOD__RESPONSE__BODY_CHANNEL_INFO ||
              resp->channel_info->limits == NULL ||
              resp->channel_info->limits->max_messages != s->ring_retain)) {
    sim_fail(s, "channels: %s was created without its max_messages %" PRIu64,
             name, s->ring_retain);
  } else if (code == 0 && ring && !s->ring_ready) {
    s->ring_ready = true;
    sim_trace(s, 0, "c%" PRIu32 ": %s created", k->id, name);
  }
}

/* A join's answer: the new view ends with this member, added at the
 * view's own offset. */
static void on_joined(struct sim *s, struct sim_client *k, uint32_t t,
                      uint32_t g, const Synod__GroupJoinReply *r) {
  char me[16];
  member_name(me, k->id, t);
  const Synod__GroupView *v = r->view;
  const Synod__GroupMember *last =
      v && v->n_members ? v->members[v->n_members - 1] : NULL;
  if (last == NULL || strcmp(last->name, me) != 0 ||
      last->joined_offset != v->offset || last->session_id != k->session ||
      v->view_id == 0 || r->state == NULL) {
    sim_fail(s,
             "groups: c%" PRIu32 "/t%" PRIu32 " joined g%" PRIu32
             " and the view does not end with it",
             k->id, t, g);
    return;
  }
  k->th[t].member[g] = true;
  k->th[t].group_offset[g] = v->offset; /* the group may be a new one */
  k->th[t].gm[g] = sim_groups_joined(s, k->id, t, g, r);
  s->stats.group_joins++;
  s->stats.group_states[r->state->source & 3]++;
}

/* Group answers: memberships as acknowledged, offsets that only grow. */
static void on_group(struct sim *s, struct sim_client *k, uint32_t t,
                     struct sim_hop *hp, const Synod__Response *resp,
                     int code) {
  struct sim_thread *th = &k->th[t];
  uint32_t g = hp->spec.name;
  switch (hp->spec.type) {
  case SIM_OP_GROUP_JOIN:
    if (code == 0 && resp->body_case == SYNOD__RESPONSE__BODY_GROUP_JOIN) {
      on_joined(s, k, t, g, resp->group_join);
    } else if (code == SYNOD_EEXIST) {
      th->member[g] = true;
    }
    break;
  case SIM_OP_GROUP_LEAVE:
    th->member[g] = false;
    th->gm[g] = 0;
    break;
  case SIM_OP_GROUP_SEND:
    if (code == 0 && resp->body_case == SYNOD__RESPONSE__BODY_GROUP_SEND) {
      uint64_t off = resp->group_send->offset;
      if (off == 0 || resp->group_send->index == 0) {
        sim_fail(s, "groups: a send to g%" PRIu32 " got offset 0", g);
      }
      th->group_offset[g] =
          off > th->group_offset[g] ? off : th->group_offset[g];
      s->stats.group_sends++;
    } else if (code == SYNOD_ENOTHOLDER ||
               (code == SYNOD_ENOTFOUND && hp->spec.a1 < 0)) {
      th->member[g] = false; /* else only the target may be missing */
    }
    break;
  case SIM_OP_GROUP_CHECKPOINT:
  case SIM_OP_GROUP_STATE:
    th->member[g] &= code != SYNOD_ENOTFOUND && code != SYNOD_ENOTHOLDER;
    s->stats.group_checkpoints +=
        hp->spec.type == SIM_OP_GROUP_CHECKPOINT && code == 0;
    if (hp->spec.type == SIM_OP_GROUP_STATE && code == 0) {
      s->stats.group_states[resp->group_state->source & 3]++;
      sim_groups_state_answer(s, th->gm[g], resp->group_state);
    }
    if (hp->spec.type == SIM_OP_GROUP_CHECKPOINT && code == 0 &&
        !resp->group_checkpoint->committed) {
      sim_fail(s,
               "groups: a one-chunk checkpoint of g%" PRIu32 " did not commit",
               g);
    }
    break;
  default:
    break;
  }
  if (!th->member[g]) {
    th->gm[g] = 0;
  }
}

static void on_result(struct sim *s, struct sim_client *k, uint32_t t,
                      const Synod__Response *resp, int code) {
  struct sim_hop *hp = hop_of(s, &k->th[t].op);
  if (code == 0) {
    switch (resp->body_case) {
    case SYNOD__RESPONSE__BODY_COUNTER_VALUE:
      hp->r.value = resp->counter_value->value;
      break;
    case SYNOD__RESPONSE__BODY_COUNTER_CAS:
      hp->r.value = resp->counter_cas->value;
      hp->r.swapped = resp->counter_cas->swapped;
      break;
    case SYNOD__RESPONSE__BODY_LOCK_ACQUIRE:
      on_acquired(s, k, t, hp, resp->lock_acquire);
      break;
    case SYNOD__RESPONSE__BODY_ELECTION_LEADER:
      hp->r.value = (int64_t)resp->election_leader->session_id;
      break;
    case SYNOD__RESPONSE__BODY_CHANNEL_PUBLISH:
      hp->r.first_offset = resp->channel_publish->first_offset;
      hp->r.last_offset = resp->channel_publish->last_offset;
      hp->r.index = resp->channel_publish->index;
      s->stats.publishes_acked++;
      s->stats.publishes_resent += k->th[t].op.attempts > 1;
      break;
    default:
      break;
    }
  }
  if (hp->spec.type == SIM_OP_CHANNEL_CREATE) {
    on_created(s, k, hp, code, resp);
  }
  if (hp->spec.type == SIM_OP_KEY) {
    sim_keys_result(s, k->id, t, (uint32_t)(hp - s->hops), resp);
  }
  if (hp->spec.type == SIM_OP_RELEASE) {
    on_released(s, k, t, hp, code, resp);
  }
  if (hp->spec.type >= SIM_OP_GROUP_JOIN) {
    on_group(s, k, t, hp, resp, code);
  }
  op_finish(s, k, t, code);
}

/* The op waiting for request id, and which: -1 open, -2 keepalive, else a
 * thread. */
static struct sim_cop *op_by_request(struct sim_client *k, uint64_t id,
                                     int *which) {
  if (k->open.active && k->open.request_id == id) {
    *which = -1;
    return &k->open;
  }
  if (k->ka.active && k->ka.request_id == id) {
    *which = -2;
    return &k->ka;
  }
  for (uint32_t t = 0; t < SIM_THREADS_MAX; t++) {
    if (k->th[t].op.active && k->th[t].op.request_id == id) {
      *which = (int)t;
      return &k->th[t].op;
    }
  }
  return NULL;
}

/* Redirects and refusals that leave the request to be sent again. */
static bool retry_later(struct sim *s, struct sim_client *k, struct sim_cop *op,
                        const Synod__Error *e) {
  int code = (int)e->code;
  if (code == SYNOD_ENOTLEADER) {
    unsigned long id = 0;
    k->hint = 0;
    if (e->leader_name != NULL && sscanf(e->leader_name, "r%lu", &id) == 1) {
      k->hint = (uint32_t)id;
    }
    op->retry_at_ms = s->now_ms + (op->attempts > 8 ? pick(s, 10, 100) : 0);
    return true;
  }
  if (code == SYNOD_ENOLEADER || code == SYNOD_EBUSY) {
    k->hint = 0;
    op->retry_at_ms = s->now_ms + pick(s, 10, 150);
    return true;
  }
  return false;
}

static void on_session_answer(struct sim *s, struct sim_client *k, int which,
                              const Synod__Response *resp, int code) {
  struct sim_cop *op = which == -1 ? &k->open : &k->ka;
  if (which == -1 && code == 0 &&
      resp->body_case == SYNOD__RESPONSE__BODY_SESSION_OPEN) {
    k->session = resp->session_open->session_id;
    k->ttl_ms = resp->session_open->ttl_ms;
    k->lease_from_ms = op->first_sent_ms;
    k->ka_sent_ms = op->first_sent_ms;
    k->sequence = 0;
    sim_trace(s, 0, "c%" PRIu32 ": session %" PRIu64 " ttl %" PRIu32, k->id,
              k->session, k->ttl_ms);
    cop_clear(op);
    return;
  }
  if (which == -2 && code == 0) {
    k->lease_from_ms = op->first_sent_ms;
    cop_clear(op);
    return;
  }
  if (which == -2 && code == SYNOD_ESESSION) {
    session_lost(s, k, "keepalive: the server knows no such session");
    return;
  }
  cop_clear(op); /* another refusal: start over at the next poll */
}

static void on_response(struct sim *s, struct sim_client *k,
                        const Synod__Response *resp) {
  int which;
  struct sim_cop *op = op_by_request(k, resp->id, &which);
  if (op == NULL) {
    return; /* the answer to a request sent again or given up */
  }
  int code = resp->error != NULL ? (int)resp->error->code : 0;
  if (code != 0 && retry_later(s, k, op, resp->error)) {
    return;
  }
  if (code == 0 && op->target != 0) {
    k->hint = op->target; /* it answered: it leads */
  }
  if (which < 0) {
    on_session_answer(s, k, which, resp, code);
    return;
  }
  if (code == SYNOD_ESESSION) {
    session_lost(s, k, "the server knows no such session");
    return;
  }
  if (code == SYNOD_ESEQUENCE) {
    op_finish(s, k, (uint32_t)which, -1);
    session_lost(s, k, "sequence forgotten: outcome unknown, abandon it");
    return;
  }
  on_result(s, k, (uint32_t)which, resp, code);
}

void sim_client_receive(struct sim *s, const struct sim_cmsg *m) {
  struct sim_client *k = &s->cl[m->client];
  if (!k->exists || k->crashed || k->paused || s->clients_stopped) {
    return;
  }
  Synod__ServerMessage *sm =
      synod__server_message__unpack(NULL, m->len, m->data);
  if (sm == NULL) {
    sim_fail(s, "c%" PRIu32 ": a message from r%" PRIu32 " does not decode",
             k->id, m->replica);
    return;
  }
  if (sm->body_case == SYNOD__SERVER_MESSAGE__BODY_RESPONSE) {
    on_response(s, k, sm->response);
  } else if (sm->body_case == SYNOD__SERVER_MESSAGE__BODY_EVENT &&
             sm->event->body_case == SYNOD__EVENT__BODY_SESSION_EXPIRED &&
             sm->event->session_expired->session_id == k->session &&
             k->session != 0) {
    session_lost(s, k, "the server says it expired");
  }
  synod__server_message__free_unpacked(sm, NULL);
}

/* ---------------------------------------------------------------- poll */

static void session_poll(struct sim *s, struct sim_client *k) {
  if (k->session == 0) {
    if (!k->open.active) {
      Synod__Request req = SYNOD__REQUEST__INIT;
      Synod__SessionOpen o = SYNOD__SESSION_OPEN__INIT;
      char name[16];
      snprintf(name, sizeof name, "c%" PRIu32, k->id);
      o.ttl_ms = k->ttl_ms;
      o.client_name = name;
      req.body_case = SYNOD__REQUEST__BODY_SESSION_OPEN;
      req.session_open = &o;
      cop_start(s, k, &k->open, &req, s->client_wait_ms);
    } else {
      cop_poll(s, k, &k->open);
    }
    return;
  }
  if (s->now_ms >= k->lease_from_ms + k->ttl_ms) {
    session_lost(s, k, "no keepalive acknowledged within the TTL");
    return;
  }
  uint32_t interval = k->ttl_ms / 3;
  if (!k->ka.active && s->now_ms >= k->ka_sent_ms + interval) {
    Synod__Request req = SYNOD__REQUEST__INIT;
    Synod__SessionKeepalive ka = SYNOD__SESSION_KEEPALIVE__INIT;
    req.session_id = k->session;
    req.body_case = SYNOD__REQUEST__BODY_SESSION_KEEPALIVE;
    req.session_keepalive = &ka;
    k->ka_sent_ms = s->now_ms;
    cop_start(s, k, &k->ka, &req, interval);
  } else {
    cop_poll(s, k, &k->ka);
  }
}

static void close_session(struct sim *s, struct sim_client *k) {
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__SessionClose cl = SYNOD__SESSION_CLOSE__INIT;
  uint8_t buf[64];
  req.session_id = k->session;
  req.id = ++k->request_id;
  req.body_case = SYNOD__REQUEST__BODY_SESSION_CLOSE;
  req.session_close = &cl;
  size_t n = synod__request__pack(&req, buf);
  sim_cnet_send(s, k->id, target_pick(s, k, 0), true, buf, n);
  session_lost(s, k, "closed by the client");
}

/* Random process faults: a crash (a new process starts later), a pause
 * longer than the TTL, a clean close. */
static bool client_faults(struct sim *s, struct sim_client *k) {
  if (sim_rand_ppm(&s->rand, s->client_crash_ppm)) {
    sim_trace(s, 0, "c%" PRIu32 ": crash", k->id);
    session_lost(s, k, "crash");
    sim_groups_client_crash(s, k->id);
    k->crashed = true;
    k->pause_until_ms = s->now_ms + pick(s, 100, 3ULL * k->ttl_ms);
    return true;
  }
  if (sim_rand_ppm(&s->rand, s->client_pause_ppm)) {
    k->paused = true;
    k->pause_until_ms = s->now_ms + pick(s, k->ttl_ms / 2, 3ULL * k->ttl_ms);
    sim_trace(s, 0, "c%" PRIu32 ": pause until %" PRIu64, k->id,
              k->pause_until_ms);
    return true;
  }
  if (k->session != 0 && sim_rand_ppm(&s->rand, s->client_close_ppm)) {
    close_session(s, k);
  }
  return false;
}

void sim_client_poll(struct sim *s, uint32_t c) {
  struct sim_client *k = &s->cl[c];
  if (!k->exists) {
    return;
  }
  sim_schedule_client(s, s->now_ms + s->client_poll_ms, c, 0);
  if (s->clients_stopped) {
    return;
  }
  if (k->crashed || k->paused) {
    if (k->scripted || s->now_ms < k->pause_until_ms) {
      return;
    }
    if (k->crashed) {
      client_reset(s, k); /* a new process */
    }
    k->crashed = k->paused = false;
    sim_trace(s, 0, "c%" PRIu32 ": resumes", k->id);
  }
  if (!k->scripted && client_faults(s, k)) {
    return;
  }
  session_poll(s, k);
  for (uint32_t t = 0; t < k->threads_n && k->session != 0; t++) {
    struct sim_thread *th = &k->th[t];
    if (th->op.active) {
      cop_poll(s, k, &th->op);
    } else if (!k->scripted && s->now_ms >= th->next_ms) {
      thread_pick(s, k, t);
    }
  }
}

void sim_client_unclog(struct sim *s, uint32_t c, uint32_t peer) {
  uint32_t r = peer & 0xff, d = (peer >> 8) & 1;
  if (s->cl[c].cut[r][d] > 0) {
    s->cl[c].cut[r][d]--;
  }
}

/* ------------------------------------------------------------ scripted */

uint32_t sim_client_add(struct sim *s, uint32_t ttl_ms) {
  if (s->cl == NULL) {
    return 0;
  }
  struct sim_client *k = client_new(s, true);
  if (k == NULL) {
    return 0;
  }
  k->ttl_ms = ttl_ms;
  return k->id;
}

uint64_t sim_client_session(const struct sim *s, uint32_t c) {
  return c >= 1 && c <= s->cl_n ? s->cl[c].session : 0;
}

uint32_t sim_client_submit(struct sim *s, uint32_t c,
                           const struct sim_op_spec *op) {
  if (c < 1 || c > s->cl_n || op->thread >= SIM_THREADS_MAX) {
    return 0;
  }
  struct sim_client *k = &s->cl[c];
  if (k->session == 0 || k->th[op->thread].op.active) {
    return 0;
  }
  return op_start(s, k, op->thread, op);
}

const struct sim_op_result *sim_client_result(const struct sim *s,
                                              uint32_t handle) {
  return handle >= 1 && handle <= s->hops_n ? &s->hops[handle - 1].r : NULL;
}

void sim_client_link(struct sim *s, uint32_t c, uint64_t replica,
                     bool to_server, bool to_client) {
  s->cl[c].cut[replica][0] = to_server ? 0 : 1;
  s->cl[c].cut[replica][1] = to_client ? 0 : 1;
}

void sim_client_pause(struct sim *s, uint32_t c, bool paused) {
  s->cl[c].paused = paused;
  s->cl[c].pause_until_ms = paused ? UINT64_MAX : 0;
}

void sim_client_crash(struct sim *s, uint32_t c) {
  struct sim_client *k = &s->cl[c];
  session_lost(s, k, "crash");
  sim_groups_client_crash(s, c);
  k->crashed = true;
  k->pause_until_ms = UINT64_MAX;
}
