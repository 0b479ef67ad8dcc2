/* The record of what the real state machine did and the checks over the
 * clients' history. Every entry's outputs, on the first replica to apply
 * it (every replica's outputs are compared with those), become:
 *
 *   - events for the lock and session model (tests/history: one holder
 *     per lock, growing tokens, FIFO waiters, expiry on time, lock-delay,
 *     nothing held or awaited by an ended session), fed in apply order so
 *     that a violation fails the run at the step that caused it;
 *   - the first answer to each (session, sequence), against which every
 *     retried request's answer is compared (exactly-once).
 *
 * At the end (sim_check_history) the counters' client histories, closed by
 * a read of the final state, must be linearizable; every lock, session and
 * election of the final state must match the model; and every lock grant
 * a client was told of must be one the log made. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

#include "synod.h"
#include "fsm.pb-c.h"

/* ------------------------------------------------------------- answers */

static uint64_t answer_hash(uint64_t session, uint64_t sequence) {
  return sim_mix(session * 0x9e3779b97f4a7c15ULL ^ sequence);
}

static struct sim_answer *answer_slot(struct sim *s, uint64_t session,
                                      uint64_t sequence) {
  if (s->answers_cap == 0) {
    return NULL;
  }
  uint64_t m = s->answers_cap - 1;
  for (uint64_t i = answer_hash(session, sequence) & m;; i = (i + 1) & m) {
    struct sim_answer *a = &s->answers[i];
    if (a->session == 0 || (a->session == session && a->sequence == sequence)) {
      return a;
    }
  }
}

static void answers_grow(struct sim *s) {
  struct sim_answer *old = s->answers;
  uint64_t n = s->answers_cap;
  s->answers_cap = n ? n * 2 : 1024;
  s->answers = calloc(s->answers_cap, sizeof(*s->answers));
  if (s->answers == NULL) {
    abort();
  }
  for (uint64_t i = 0; i < n; i++) {
    if (old[i].session != 0) {
      *answer_slot(s, old[i].session, old[i].sequence) = old[i];
    }
  }
  free(old);
}

const struct sim_answer *sim_answer_find(const struct sim *s, uint64_t session,
                                         uint64_t sequence) {
  struct sim_answer *a = answer_slot((struct sim *)s, session, sequence);
  return a != NULL && a->session != 0 ? a : NULL;
}

void sim_observe_free(struct sim *s) {
  free(s->answers);
  s->answers = NULL;
  s->answers_n = s->answers_cap = 0;
  history_locks_free(s->locks);
  s->locks = NULL;
  free(s->hops);
  s->hops = NULL;
}

/* ------------------------------------------------------------ decoding */

/* "l3" -> 3 for prefix 'l'; UINT32_MAX for any other name. */
static uint32_t name_number(const char *name, char prefix) {
  if (name == NULL || name[0] != prefix || name[1] < '0' || name[1] > '9' ||
      name[2] != '\0') {
    return UINT32_MAX;
  }
  return (uint32_t)(name[1] - '0');
}

static bool session_mutation(const Synod__Request *req) {
  switch (req->body_case) {
  case SYNOD__REQUEST__BODY_LOCK_ACQUIRE:
  case SYNOD__REQUEST__BODY_LOCK_RELEASE:
  case SYNOD__REQUEST__BODY_ELECTION_CAMPAIGN:
  case SYNOD__REQUEST__BODY_ELECTION_RESIGN:
  case SYNOD__REQUEST__BODY_COUNTER_SET:
  case SYNOD__REQUEST__BODY_COUNTER_CAS:
  case SYNOD__REQUEST__BODY_COUNTER_ADD:
  case SYNOD__REQUEST__BODY_COUNTER_DELETE:
  case SYNOD__REQUEST__BODY_CHANNEL_CREATE:
  case SYNOD__REQUEST__BODY_CHANNEL_PUBLISH:
    return req->session_id != 0 && req->sequence != 0;
  default:
    return false;
  }
}

static void answer_fill(struct sim_answer *a, const Synod__Response *resp,
                        int code) {
  a->code = code;
  if (resp != NULL && resp->body_case == SYNOD__RESPONSE__BODY_COUNTER_VALUE) {
    a->value = resp->counter_value->value;
  } else if (resp != NULL &&
             resp->body_case == SYNOD__RESPONSE__BODY_COUNTER_CAS) {
    a->value = resp->counter_cas->value;
    a->swapped = resp->counter_cas->swapped;
  }
}

static int response_code(const Synod__Response *resp) {
  return resp != NULL && resp->error != NULL ? (int)resp->error->code : 0;
}

/* Exactly-once: the first answer to (session, sequence) is recorded; a
 * retry must get the same bytes, or still be pending if the first was.
 * Returns true if the request is new (its effect goes to the model). */
static bool answer_check(struct sim *s, uint64_t index,
                         const Synod__Request *req,
                         const struct fsm_output *out,
                         const Synod__Response *resp) {
  int code = response_code(resp);
  uint64_t h = out->response.pending
                   ? 0
                   : sim_hash_bytes(SIM_HASH_INIT, out->response.data,
                                    out->response.len);
  struct sim_answer *a = answer_slot(s, req->session_id, req->sequence);
  if (a == NULL || a->session == 0) {
    if (code == SYNOD_ESESSION || code == SYNOD_ESEQUENCE) {
      return true; /* refused, not recorded by the fsm */
    }
    if ((s->answers_n + 1) * 2 > s->answers_cap) {
      answers_grow(s);
    }
    a = answer_slot(s, req->session_id, req->sequence);
    *a = (struct sim_answer){.session = req->session_id,
                             .sequence = req->sequence,
                             .pending = out->response.pending,
                             .hash = h};
    answer_fill(a, resp, code);
    if (req->body_case == SYNOD__REQUEST__BODY_LOCK_ACQUIRE) {
      a->lock = name_number(req->lock_acquire->name, 'l');
      a->lock_delay_ms = req->lock_acquire->lock_delay_ms;
    }
    s->answers_n++;
    return true;
  }
  if (code == SYNOD_ESESSION || code == SYNOD_ESEQUENCE) {
    return false;
  }
  if (out->response.pending != a->pending || (!a->pending && h != a->hash)) {
    sim_fail(s,
             "exactly-once: entry %" PRIu64 " retries session %" PRIu64
             " sequence %" PRIu64 " (body %d) and is answered %s (code %d) "
             "where the first application was answered %s (code %d, value "
             "%" PRId64 ")",
             index, req->session_id, req->sequence, (int)req->body_case,
             out->response.pending ? "pending" : "otherwise", code,
             a->pending ? "pending" : "", a->code, a->value);
  }
  return false;
}

/* ------------------------------------------------------------ the model */

struct obs {
  struct sim *s;
  uint64_t index;
  uint64_t time_ms;
};

static void feed(const struct obs *o, struct history_lock_event ev) {
  char why[512];
  if (o->s->failed) {
    return;
  }
  ev.index = o->index;
  ev.time_ms = o->time_ms;
  if (!history_locks_feed(o->s->locks, &ev, why, sizeof why)) {
    sim_fail(o->s, "lock history: %s", why);
  }
}

/* The effect of a new request's body, if it has one for the model. */
static bool body_effect(const Synod__Request *req, const struct fsm_output *out,
                        const Synod__Response *resp,
                        struct history_lock_event *ev) {
  int code = response_code(resp);
  memset(ev, 0, sizeof(*ev));
  ev->session = req->session_id;
  ev->sequence = req->sequence;
  switch (req->body_case) {
  case SYNOD__REQUEST__BODY_LOCK_ACQUIRE: {
    const Synod__LockAcquire *a = req->lock_acquire;
    ev->lock = name_number(a->name, 'l');
    ev->owner = a->owner_id;
    if (out->response.pending) {
      ev->kind = HISTORY_LOCK_ENQUEUE;
      ev->arg = a->timeout_ms;
      return true;
    }
    if (code != 0 || resp->body_case != SYNOD__RESPONSE__BODY_LOCK_ACQUIRE) {
      return false;
    }
    ev->token = resp->lock_acquire->token;
    ev->kind = resp->lock_acquire->hold_count == 1 ? HISTORY_LOCK_GRANT
                                                   : HISTORY_LOCK_REENTER;
    ev->arg = ev->kind == HISTORY_LOCK_GRANT ? a->lock_delay_ms
                                             : resp->lock_acquire->hold_count;
    return true;
  }
  case SYNOD__REQUEST__BODY_LOCK_RELEASE:
    if (code != 0 || resp->body_case != SYNOD__RESPONSE__BODY_LOCK_RELEASE) {
      return false;
    }
    ev->kind = HISTORY_LOCK_RELEASE;
    ev->lock = name_number(req->lock_release->name, 'l');
    ev->owner = req->lock_release->owner_id;
    ev->arg = resp->lock_release->hold_count;
    return true;
  case SYNOD__REQUEST__BODY_SESSION_CLOSE:
    ev->kind = HISTORY_LOCK_CLOSE;
    return code == 0 && resp != NULL;
  case SYNOD__REQUEST__BODY_SESSION_OPEN:
    if (code != 0 || resp->body_case != SYNOD__RESPONSE__BODY_SESSION_OPEN) {
      return false;
    }
    ev->kind = HISTORY_LOCK_OPEN;
    ev->session = resp->session_open->session_id;
    ev->arg = resp->session_open->ttl_ms;
    return true;
  default:
    return false;
  }
}

/* A release's or a close's own events come after the timers' events of the
 * same entry; this finds the first of them. */
static bool body_starts(const struct obs *o,
                        const struct history_lock_event *body,
                        const struct fsm_event *e) {
  uint64_t session, owner;
  uint32_t lock = name_number(e->name, 'l');
  if (body->kind == HISTORY_LOCK_RELEASE) {
    return e->type == FSM_EVENT_LOCK_GRANTED && lock == body->lock;
  }
  if (body->kind != HISTORY_LOCK_CLOSE) {
    return false;
  }
  if (e->type == FSM_EVENT_LOCK_CANCELED && e->session_id == body->session) {
    return true;
  }
  return e->type == FSM_EVENT_LOCK_GRANTED &&
         history_locks_holder(o->s->locks, lock, &session, &owner) &&
         session == body->session;
}

static void answer_event(struct sim *s, const struct fsm_event *e, int code) {
  struct sim_answer *a = answer_slot(s, e->session_id, e->sequence);
  if (a != NULL && a->session != 0 && a->pending) {
    a->pending = false;
    a->hash = sim_hash_bytes(SIM_HASH_INIT, e->response, e->response_len);
    a->code = code;
  }
}

static void event_lock(const struct obs *o, const struct fsm_event *e) {
  struct sim *s = o->s;
  struct history_lock_event ev = {.lock = name_number(e->name, 'l'),
                                  .session = e->session_id,
                                  .sequence = e->sequence};
  if (e->type != FSM_EVENT_LOCK_GRANTED) {
    ev.kind = e->type == FSM_EVENT_LOCK_TIMEOUT ? HISTORY_LOCK_TIMEOUT
                                                : HISTORY_LOCK_CANCEL;
    feed(o, ev);
    return;
  }
  Synod__Event *pe = synod__event__unpack(NULL, e->event_len, e->event);
  if (pe == NULL || pe->body_case != SYNOD__EVENT__BODY_LOCK_GRANTED) {
    sim_fail(s, "entry %" PRIu64 ": LOCK_GRANTED event does not decode",
             o->index);
  } else {
    const struct sim_answer *a = sim_answer_find(s, e->session_id, e->sequence);
    ev.kind = HISTORY_LOCK_GRANT;
    ev.owner = pe->lock_granted->owner_id;
    ev.token = pe->lock_granted->token;
    ev.arg = a != NULL ? a->lock_delay_ms : 0;
    s->stats.lock_grants++;
    feed(o, ev);
  }
  synod__event__free_unpacked(pe, NULL);
}

/* An election is led only by a live session. */
static void event_election(const struct obs *o, const struct fsm_event *e) {
  Synod__Event *pe = synod__event__unpack(NULL, e->event_len, e->event);
  if (pe == NULL || pe->body_case != SYNOD__EVENT__BODY_ELECTION_CHANGED ||
      pe->election_changed->info == NULL) {
    sim_fail(o->s, "entry %" PRIu64 ": ELECTION_CHANGED does not decode",
             o->index);
  } else {
    const Synod__ElectionInfo *info = pe->election_changed->info;
    if (info->has_leader &&
        history_locks_session(o->s->locks, info->session_id) != 1) {
      sim_fail(o->s,
               "election: entry %" PRIu64 " makes session %" PRIu64
               " leader of %s, but that session %s",
               o->index, info->session_id, e->name,
               history_locks_session(o->s->locks, info->session_id) == 0
                   ? "has ended"
                   : "was never opened");
    }
  }
  synod__event__free_unpacked(pe, NULL);
}

static void event_feed(const struct obs *o, const struct fsm_event *e) {
  switch (e->type) {
  case FSM_EVENT_SESSION_EXPIRED:
    o->s->stats.session_expiries++;
    feed(o, (struct history_lock_event){.kind = HISTORY_LOCK_EXPIRE,
                                        .session = e->session_id});
    break;
  case FSM_EVENT_LOCK_GRANTED:
  case FSM_EVENT_LOCK_TIMEOUT:
  case FSM_EVENT_LOCK_CANCELED:
    event_lock(o, e);
    break;
  case FSM_EVENT_ELECTION_CHANGED:
    event_election(o, e);
    break;
  case FSM_EVENT_CHANNEL_APPENDED:
  case FSM_EVENT_CHANNEL_DELETED:
  case FSM_EVENT_KEYS_CHANGED:
  case FSM_EVENT_GROUP_APPENDED:
  case FSM_EVENT_GROUP_DELETED:
    break;
  }
}

void sim_observe_apply(struct sim *s, uint64_t index, const uint8_t *data,
                       size_t len, const struct fsm_output *out,
                       uint64_t time_ms) {
  struct obs o = {s, index, time_ms};
  if (s->locks == NULL) {
    s->locks = history_locks_new();
  }
  Synod__Fsm__Command *cmd = synod__fsm__command__unpack(NULL, len, data);
  const Synod__Request *req =
      cmd != NULL && cmd->body_case == SYNOD__FSM__COMMAND__BODY_REQUEST
          ? cmd->request
          : NULL;
  Synod__Response *resp = NULL;
  if (out->has_response && !out->response.pending) {
    resp = synod__response__unpack(NULL, out->response.len, out->response.data);
    if (resp == NULL) {
      sim_fail(s, "entry %" PRIu64 ": the fsm's response does not decode",
               index);
    }
  }
  /* A queued acquire answered by this entry's timers is answered before
   * the body runs, which may be a retry of it: record those answers first
   * (no event of the body's own answers the body's request). */
  for (size_t i = 0; i < out->events_len; i++) {
    const struct fsm_event *e = &out->events[i];
    if (e->type == FSM_EVENT_LOCK_GRANTED ||
        e->type == FSM_EVENT_LOCK_TIMEOUT ||
        e->type == FSM_EVENT_LOCK_CANCELED) {
      answer_event(s, e,
                   e->type == FSM_EVENT_LOCK_GRANTED   ? 0
                   : e->type == FSM_EVENT_LOCK_TIMEOUT ? SYNOD_ETIMEDOUT
                                                       : SYNOD_ESESSION);
    }
  }
  struct history_lock_event body;
  bool have = false;
  if (req != NULL && !s->failed) {
    bool fresh =
        !session_mutation(req) || answer_check(s, index, req, out, resp);
    have = fresh && body_effect(req, out, resp, &body);
  }
  for (size_t i = 0; i < out->events_len && !s->failed; i++) {
    if (have && body_starts(&o, &body, &out->events[i])) {
      feed(&o, body);
      have = false;
    }
    event_feed(&o, &out->events[i]);
  }
  if (have) {
    feed(&o, body);
  }
  if (cmd != NULL && cmd->body_case == SYNOD__FSM__COMMAND__BODY_TICK) {
    for (size_t i = 0; i < cmd->tick->n_session_ids; i++) {
      feed(&o,
           (struct history_lock_event){.kind = HISTORY_LOCK_KEEPALIVE,
                                       .session = cmd->tick->session_ids[i]});
    }
  }
  if (req != NULL && req->body_case == SYNOD__REQUEST__BODY_SESSION_KEEPALIVE &&
      response_code(resp) == 0) {
    feed(&o, (struct history_lock_event){.kind = HISTORY_LOCK_KEEPALIVE,
                                         .session = req->session_id});
  }
  if (resp != NULL && resp->body_case == SYNOD__RESPONSE__BODY_SESSION_OPEN) {
    s->stats.sessions++;
  }
  feed(&o, (struct history_lock_event){.kind = HISTORY_LOCK_END});
  synod__response__free_unpacked(resp, NULL);
  synod__fsm__command__free_unpacked(cmd, NULL);
}

/* ------------------------------------------------- end-of-run checks */

static Synod__Response *query(struct sim *s, const struct fsm *f,
                              Synod__Request *req) {
  uint8_t *data;
  size_t len;
  if (fsm_query(f, req, &data, &len) != 0) {
    sim_fail(s, "fsm_query refused a read");
    return NULL;
  }
  Synod__Response *resp = synod__response__unpack(NULL, len, data);
  free(data);
  return resp;
}

static void check_final_locks(struct sim *s, const struct fsm *f) {
  struct history_lock_final fin[SIM_NAMES_MAX];
  char why[512], name[16];
  for (uint32_t n = 0; n < s->names_n; n++) {
    Synod__Request req = SYNOD__REQUEST__INIT;
    Synod__LockQuery q = SYNOD__LOCK_QUERY__INIT;
    snprintf(name, sizeof name, "l%" PRIu32, n);
    q.name = name;
    req.body_case = SYNOD__REQUEST__BODY_LOCK_QUERY;
    req.lock_query = &q;
    Synod__Response *r = query(s, f, &req);
    fin[n] = (struct history_lock_final){.lock = n};
    if (r != NULL && r->body_case == SYNOD__RESPONSE__BODY_LOCK_QUERY) {
      const Synod__LockInfo *li = r->lock_query;
      fin[n] = (struct history_lock_final){.lock = n,
                                           .held = li->held,
                                           .session = li->session_id,
                                           .owner = li->owner_id,
                                           .token = li->token,
                                           .hold_count = li->hold_count,
                                           .waiters = li->waiters};
      if (li->held && history_locks_session(s->locks, li->session_id) != 1) {
        sim_fail(s,
                 "final state: lock %s is held by session %" PRIu64
                 ", which has ended",
                 name, li->session_id);
      }
    }
    synod__response__free_unpacked(r, NULL);
  }
  if (!s->failed &&
      !history_locks_final(s->locks, fin, s->names_n, why, sizeof why)) {
    sim_fail(s, "lock history: %s", why);
  }
}

static void check_final_elections(struct sim *s, const struct fsm *f) {
  char name[16];
  for (uint32_t n = 0; n < s->names_n && !s->failed; n++) {
    Synod__Request req = SYNOD__REQUEST__INIT;
    Synod__ElectionLeader q = SYNOD__ELECTION_LEADER__INIT;
    snprintf(name, sizeof name, "e%" PRIu32, n);
    q.name = name;
    req.body_case = SYNOD__REQUEST__BODY_ELECTION_LEADER;
    req.election_leader = &q;
    Synod__Response *r = query(s, f, &req);
    if (r != NULL && r->body_case == SYNOD__RESPONSE__BODY_ELECTION_LEADER &&
        r->election_leader->has_leader &&
        history_locks_session(s->locks, r->election_leader->session_id) != 1) {
      sim_fail(s, "final state: election %s is led by ended session %" PRIu64,
               name, r->election_leader->session_id);
    }
    synod__response__free_unpacked(r, NULL);
  }
}

/* Sessions: the final state knows exactly the sessions the model says
 * live, among those the clients opened. */
static void check_final_sessions(struct sim *s, const struct fsm *f) {
  for (uint32_t i = 0; i < s->hops_n && !s->failed; i++) {
    uint64_t id = s->hops[i].session;
    int model = history_locks_session(s->locks, id);
    bool alive = fsm_session_ttl_ms(f, id) != 0;
    if (model >= 0 && alive != (model == 1)) {
      sim_fail(s,
               "final state: session %" PRIu64 " is %s but the history says "
               "it %s",
               id, alive ? "alive" : "gone", model ? "lives" : "ended");
    }
  }
}

static int64_t final_counter(struct sim *s, const struct fsm *f, uint32_t n) {
  char name[16];
  int64_t v = 0;
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__CounterGet q = SYNOD__COUNTER_GET__INIT;
  snprintf(name, sizeof name, "c%" PRIu32, n);
  q.name = name;
  req.body_case = SYNOD__REQUEST__BODY_COUNTER_GET;
  req.counter_get = &q;
  Synod__Response *r = query(s, f, &req);
  if (r != NULL && r->body_case == SYNOD__RESPONSE__BODY_COUNTER_VALUE) {
    v = r->counter_value->value;
  }
  synod__response__free_unpacked(r, NULL);
  return v;
}

static enum history_counter_op counter_op(const struct sim_op_spec *sp) {
  switch (sp->type) {
  case SIM_OP_GET:
    return HISTORY_COUNTER_GET;
  case SIM_OP_SET:
    return HISTORY_COUNTER_SET;
  case SIM_OP_CAS:
    return HISTORY_COUNTER_CAS;
  case SIM_OP_DELETE:
    return HISTORY_COUNTER_DELETE;
  default:
    return sp->a2 ? HISTORY_COUNTER_GET_ADD : HISTORY_COUNTER_ADD_GET;
  }
}

static bool is_counter(enum sim_op_type t) {
  return t == SIM_OP_ADD || t == SIM_OP_GET || t == SIM_OP_SET ||
         t == SIM_OP_CAS || t == SIM_OP_DELETE;
}

/* One client operation as a history entry. An operation whose outcome the
 * client never learned is resolved from the log: absent, it had no effect
 * by the final read; applied, it took effect before the final read with
 * the answer the state machine gave. Returns false to leave it out. */
static bool counter_entry(const struct sim *s, const struct sim_hop *hp,
                          uint64_t applied_by,
                          struct history_counter_entry *e) {
  const struct sim_op_spec *sp = &hp->spec;
  *e = (struct history_counter_entry){.op = counter_op(sp),
                                      .arg1 = sp->a1,
                                      .arg2 = sp->a2,
                                      .invoke = hp->invoke,
                                      .complete = hp->complete};
  int code = hp->r.code;
  int64_t value = hp->r.value;
  bool swapped = hp->r.swapped;
  if (!hp->r.done || code < 0) {
    const struct sim_answer *a =
        sp->type == SIM_OP_GET ? NULL
                               : sim_answer_find(s, hp->session, hp->sequence);
    if (a == NULL || a->pending) {
      return false;
    }
    code = a->code;
    value = a->value;
    swapped = a->swapped;
    e->complete = applied_by;
  }
  if (sp->type == SIM_OP_ADD && !sp->a2) {
    e->op = HISTORY_COUNTER_ADD_GET;
  }
  e->failed = code != 0;
  e->overflow = code == SYNOD_EOVERFLOW;
  e->value = value;
  e->swapped = swapped;
  return true;
}

static void describe_op(const struct sim_hop *hp, char *buf, size_t n) {
  snprintf(buf, n,
           "c%" PRIu32 "/t%" PRIu32 " session %" PRIu64 " seq %" PRIu64
           " type %d a1 %" PRId64 " a2 %" PRId64 " -> %s code %d value %" PRId64
           " swapped %d (invoked %" PRIu64 " ms, completed %" PRIu64 " ms)",
           hp->client, hp->thread, hp->session, hp->sequence,
           (int)hp->spec.type, hp->spec.a1, hp->spec.a2,
           hp->r.done ? "done" : "unknown", hp->r.code, hp->r.value,
           hp->r.swapped, hp->r.invoke_ms, hp->r.complete_ms);
}

static void check_counter(struct sim *s, const struct fsm *f, uint32_t n) {
  struct history_counter_entry *es = calloc(s->hops_n + 1, sizeof(*es));
  uint32_t *from = calloc(s->hops_n + 1, sizeof(*from));
  size_t k = 0;
  uint64_t applied_by = ++s->hist_clock;
  for (uint32_t i = 0; i < s->hops_n; i++) {
    const struct sim_hop *hp = &s->hops[i];
    if (is_counter(hp->spec.type) && hp->spec.name == n &&
        counter_entry(s, hp, applied_by, &es[k])) {
      from[k++] = i;
    }
  }
  uint64_t t = ++s->hist_clock;
  es[k] = (struct history_counter_entry){.op = HISTORY_COUNTER_GET,
                                         .invoke = t,
                                         .complete = t,
                                         .value = final_counter(s, f, n)};
  from[k++] = UINT32_MAX;
  char why[256], op[384] = "the final read";
  enum history_verdict v =
      history_counter_check(es, k, 0, 400000, why, sizeof why);
  s->stats.counter_ops_checked += k;
  if (v == HISTORY_INCONCLUSIVE) {
    s->stats.lin_inconclusive++;
  } else if (v == HISTORY_NOT_LINEARIZABLE) {
    size_t at = 0;
    sscanf(why, "no order places operation %zu", &at);
    if (at < k && from[at] != UINT32_MAX) {
      describe_op(&s->hops[from[at]], op, sizeof op);
    }
    sim_fail(s,
             "linearizability: counter c%" PRIu32 " (%zu operations, final "
             "value %" PRId64 "): %s: %s",
             n, k, es[k - 1].value, why, op);
  }
  free(es);
  free(from);
}

bool sim_check_history(struct sim *s) {
  uint64_t l = sim_leader(s);
  if (s->failed) {
    return false;
  }
  if (l == 0) {
    sim_fail(s, "history check: no leader to read the final state from");
    return false;
  }
  const struct fsm *f = s->r[l].srv.fsm;
  if (s->locks == NULL) {
    s->locks = history_locks_new();
  }
  sim_trace(s, l, "history: checking %" PRIu32 " client operations", s->hops_n);
  check_final_locks(s, f);
  check_final_elections(s, f);
  check_final_sessions(s, f);
  for (uint32_t n = 0; n < s->names_n && !s->failed; n++) {
    check_counter(s, f, n);
  }
  if (s->opts.channels && !s->failed) {
    sim_channels_check(s);
  }
  if (!s->failed) {
    sim_keys_check(s, f);
  }
  if (!s->failed) {
    sim_groups_check(s, (uint32_t)l);
  }
  return !s->failed;
}
