/* The state machine's entry points: apply one log entry (advance time, run
 * what is due, dispatch the request with exactly-once), answer reads, and
 * build Commands. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm_int.h"
#include "pb_unknown.h"

/* How a request body is applied. */
enum op_kind {
  OP_READ,    /* fsm_query; in a log entry answered, never recorded */
  OP_OPEN,    /* SessionOpen: no session needed, not deduplicated */
  OP_ADMIN,   /* keepalive, close: need the session, idempotent */
  OP_SESSION, /* locks, elections: need a session, exactly-once */
  OP_ANY,     /* counters: exactly-once in a session, plain without */
};

struct op {
  fsm_handler_fn fn;
  enum op_kind kind;
  const char *what;
};

/* Indexed by body case, which protobuf-c numbers by field number. */
static const struct op ops[] = {
    [SYNOD__REQUEST__BODY_SESSION_OPEN] = {fsm_session_open, OP_OPEN,
                                           "session open"},
    [SYNOD__REQUEST__BODY_SESSION_KEEPALIVE] = {fsm_session_keepalive_req,
                                                OP_ADMIN, "session keepalive"},
    [SYNOD__REQUEST__BODY_SESSION_CLOSE] = {fsm_session_close, OP_ADMIN,
                                            "session close"},
    [SYNOD__REQUEST__BODY_LOCK_ACQUIRE] = {fsm_lock_acquire, OP_SESSION,
                                           "lock acquire"},
    [SYNOD__REQUEST__BODY_LOCK_RELEASE] = {fsm_lock_release, OP_SESSION,
                                           "lock release"},
    [SYNOD__REQUEST__BODY_LOCK_QUERY] = {fsm_lock_query, OP_READ, "lock query"},
    [SYNOD__REQUEST__BODY_LOCK_CHECK] = {fsm_lock_check, OP_READ, "lock check"},
    [SYNOD__REQUEST__BODY_COUNTER_GET] = {fsm_counter_get, OP_READ,
                                          "counter get"},
    [SYNOD__REQUEST__BODY_COUNTER_SET] = {fsm_counter_set, OP_ANY,
                                          "counter set"},
    [SYNOD__REQUEST__BODY_COUNTER_CAS] = {fsm_counter_cas, OP_ANY,
                                          "counter cas"},
    [SYNOD__REQUEST__BODY_COUNTER_ADD] = {fsm_counter_add, OP_ANY,
                                          "counter add"},
    [SYNOD__REQUEST__BODY_COUNTER_DELETE] = {fsm_counter_delete, OP_ANY,
                                             "counter delete"},
    [SYNOD__REQUEST__BODY_COUNTER_LIST] = {fsm_counter_list, OP_READ,
                                           "counter list"},
    [SYNOD__REQUEST__BODY_ELECTION_CAMPAIGN] = {fsm_election_campaign,
                                                OP_SESSION,
                                                "election campaign"},
    [SYNOD__REQUEST__BODY_ELECTION_RESIGN] = {fsm_election_resign, OP_SESSION,
                                              "election resign"},
    [SYNOD__REQUEST__BODY_ELECTION_LEADER] = {fsm_election_leader, OP_READ,
                                              "election leader"},
    [SYNOD__REQUEST__BODY_ELECTION_OBSERVE] = {fsm_election_leader, OP_READ,
                                               "election observe"},
    [SYNOD__REQUEST__BODY_CHANNEL_CREATE] = {fsm_channel_create, OP_ANY,
                                             "channel create"},
    [SYNOD__REQUEST__BODY_CHANNEL_PUBLISH] = {fsm_channel_publish, OP_ANY,
                                              "channel publish"},
    [SYNOD__REQUEST__BODY_CHANNEL_READ] = {fsm_channel_read, OP_READ,
                                           "channel read"},
    [SYNOD__REQUEST__BODY_CHANNEL_INFO] = {fsm_channel_info, OP_READ,
                                           "channel info"},
    [SYNOD__REQUEST__BODY_CHANNEL_LIST] = {fsm_channel_list, OP_READ,
                                           "channel list"},
    [SYNOD__REQUEST__BODY_CHANNEL_DELETE] = {fsm_channel_delete, OP_ANY,
                                             "channel delete"},
    [SYNOD__REQUEST__BODY_CHANNEL_CURSOR_COMMIT] = {fsm_channel_cursor_commit,
                                                    OP_ANY,
                                                    "channel cursor commit"},
    [SYNOD__REQUEST__BODY_CHANNEL_CURSOR_GET] = {fsm_channel_cursor_get,
                                                 OP_READ, "channel cursor get"},
    [SYNOD__REQUEST__BODY_KEY_PUT] = {fsm_key_put, OP_ANY, "key put"},
    [SYNOD__REQUEST__BODY_KEY_GET] = {fsm_key_get, OP_READ, "key get"},
    [SYNOD__REQUEST__BODY_KEY_DELETE] = {fsm_key_delete, OP_ANY, "key delete"},
    [SYNOD__REQUEST__BODY_KEY_LIST] = {fsm_key_list, OP_READ, "key list"},
    [SYNOD__REQUEST__BODY_KEY_TXN] = {fsm_key_txn, OP_ANY, "key txn"},
    [SYNOD__REQUEST__BODY_GROUP_JOIN] = {fsm_group_join, OP_SESSION,
                                         "group join"},
    [SYNOD__REQUEST__BODY_GROUP_LEAVE] = {fsm_group_leave, OP_SESSION,
                                          "group leave"},
    [SYNOD__REQUEST__BODY_GROUP_SEND] = {fsm_group_send, OP_ANY, "group send"},
    [SYNOD__REQUEST__BODY_GROUP_CHECKPOINT] = {fsm_group_checkpoint, OP_SESSION,
                                               "group checkpoint"},
    [SYNOD__REQUEST__BODY_GROUP_STATE_REQUEST] = {fsm_group_state_request,
                                                  OP_SESSION,
                                                  "group state request"},
    [SYNOD__REQUEST__BODY_GROUP_VIEW] = {fsm_group_view_get, OP_READ,
                                         "group view"},
    [SYNOD__REQUEST__BODY_GROUP_LIST] = {fsm_group_list, OP_READ, "group list"},
    [SYNOD__REQUEST__BODY_GROUP_CHECKPOINT_READ] = {fsm_group_checkpoint_read,
                                                    OP_READ,
                                                    "group checkpoint read"},
    [SYNOD__REQUEST__BODY_GROUP_READ] = {fsm_group_read, OP_READ, "group read"},
};

/* NULL for hello, status, member_remove, no body or an unknown case. */
static const struct op *op_for(Synod__Request__BodyCase body) {
  size_t i = (size_t)body;
  if (i >= sizeof ops / sizeof ops[0] || ops[i].fn == NULL) {
    return NULL;
  }
  return &ops[i];
}

/* ------------------------------------------------------------ lifecycle */

static uint32_t opt_or(uint32_t v, uint32_t dflt) {
  return v ? v : dflt;
}

static void options_resolve(struct fsm_options *o) {
  o->name_bytes_max = opt_or(o->name_bytes_max, 256);
  o->sessions_max = opt_or(o->sessions_max, 65536);
  o->locks_max = opt_or(o->locks_max, 100000);
  o->counters_max = opt_or(o->counters_max, 1000000);
  o->elections_max = opt_or(o->elections_max, 10000);
  o->waiters_per_lock_max = opt_or(o->waiters_per_lock_max, 1024);
  o->candidates_per_election_max = opt_or(o->candidates_per_election_max, 1024);
  o->results_per_session_max = opt_or(o->results_per_session_max, 32);
  o->value_bytes_max = opt_or(o->value_bytes_max, 1024);
  o->ttl_min_ms = opt_or(o->ttl_min_ms, 1000);
  o->ttl_max_ms = opt_or(o->ttl_max_ms, 300000);
  o->ttl_default_ms = opt_or(o->ttl_default_ms, 10000);
  o->lock_delay_max_ms = opt_or(o->lock_delay_max_ms, 60000);
  o->list_limit_max = opt_or(o->list_limit_max, 1000);
  o->channels_max = opt_or(o->channels_max, 10000);
  if (o->channel_messages_default == 0) {
    o->channel_messages_default = 1000000;
  }
  if (o->channel_bytes_default == 0) {
    o->channel_bytes_default = 64ull << 20;
  }
  o->channel_message_bytes_default =
      opt_or(o->channel_message_bytes_default, 256u << 10);
  o->channel_message_bytes_cap = opt_or(o->channel_message_bytes_cap, 1000000);
  if (o->channels_bytes_max == 0) {
    o->channels_bytes_max = 64ull << 20;
  }
  o->channel_ids_max = opt_or(o->channel_ids_max, 4096);
  o->channel_id_window_ms = opt_or(o->channel_id_window_ms, 600000);
  o->keys_max = opt_or(o->keys_max, 1000000);
  if (o->keys_bytes_max == 0) {
    o->keys_bytes_max = 1ull << 30;
  }
  o->key_value_bytes_max = opt_or(o->key_value_bytes_max, 64u << 10);
  o->key_txn_ops_max = opt_or(o->key_txn_ops_max, 64);
  o->key_list_max = opt_or(o->key_list_max, 10000);
  o->key_reply_bytes_max = opt_or(o->key_reply_bytes_max, 512u << 10);
  if (o->key_history_max == 0) {
    o->key_history_max = 100000;
  }
  if (o->key_history_bytes_max == 0) {
    o->key_history_bytes_max = 64ull << 20;
  }
  o->key_work_per_entry = opt_or(o->key_work_per_entry, 2048);
  o->groups_max = opt_or(o->groups_max, 10000);
  o->group_members_max = opt_or(o->group_members_max, 256);
  o->group_member_data_bytes_max = opt_or(o->group_member_data_bytes_max, 1024);
  o->group_message_bytes_max = opt_or(o->group_message_bytes_max, 256u << 10);
  if (o->group_items_max == 0) {
    o->group_items_max = 100000;
  }
  if (o->group_bytes_max == 0) {
    o->group_bytes_max = 64ull << 20;
  }
  if (o->group_checkpoint_bytes_max == 0) {
    o->group_checkpoint_bytes_max = 16ull << 20;
  }
  if (o->group_checkpoint_bytes_max > FSM_GROUP_CHECKPOINT_BYTES_CAP) {
    o->group_checkpoint_bytes_max = FSM_GROUP_CHECKPOINT_BYTES_CAP;
  }
  o->group_chunk_bytes_max = opt_or(o->group_chunk_bytes_max, 1000000);
  o->group_uploads_max = opt_or(o->group_uploads_max, 4);
  if (o->groups_bytes_max == 0) {
    o->groups_bytes_max = 256ull << 20;
  }
}

void fsm_state_init(struct fsm *f) {
  f->applied_index = f->time_ms = f->token_last = f->index = 0;
  f->stats.locks_held = f->stats.lock_waiters = 0;
  otree_init(&f->sessions, fsm_session_cmp);
  otree_init(&f->locks, fsm_lock_cmp);
  otree_init(&f->counters, fsm_counter_cmp);
  otree_init(&f->elections, fsm_election_cmp);
  otree_init(&f->members, fsm_member_cmp);
  otree_init(&f->channels, fsm_channel_cmp);
  f->channels_bytes = 0;
  f->channels_gone = NULL;
  f->channels_gone_n = 0;
  f->channels_gone_forgotten = 0;
  otree_init(&f->keys, fsm_key_cmp);
  f->keys_live = f->keys_bytes = f->key_revision = 0;
  window_init(&f->key_history);
  f->key_history_events = f->key_history_bytes = 0;
  otree_init(&f->key_graves, fsm_key_grave_cmp);
  fsm_list_init(&f->key_work);
  f->key_work_keys = 0;
  memset(&f->settings, 0, sizeof f->settings);
  otree_init(&f->groups, fsm_group_cmp);
  f->group_members = f->groups_bytes = 0;
  otree_init(&f->timers, fsm_timer_cmp);
}

/* Frees every object; the lists that link objects across trees need no
 * unlinking since everything goes. */
void fsm_state_clear(struct fsm *f) {
  struct otree_node *n;
  fsm_keys_clear(f);
  fsm_groups_clear(f); /* before the sessions its members point at */
  while ((n = otree_first(&f->sessions))) {
    otree_remove(&f->sessions, n);
    fsm_session_free(FSM_CONTAINER(n, struct fsm_session, by_id));
  }
  while ((n = otree_first(&f->locks))) {
    otree_remove(&f->locks, n);
    fsm_lock_free(FSM_CONTAINER(n, struct fsm_lock, by_name));
  }
  while ((n = otree_first(&f->counters))) {
    otree_remove(&f->counters, n);
    fsm_counter_free(FSM_CONTAINER(n, struct fsm_counter, by_name));
  }
  while ((n = otree_first(&f->elections))) {
    otree_remove(&f->elections, n);
    fsm_election_free(FSM_CONTAINER(n, struct fsm_election, by_name));
  }
  while ((n = otree_first(&f->members))) {
    otree_remove(&f->members, n);
    fsm_member_free(FSM_CONTAINER(n, struct fsm_member, by_id));
  }
  while ((n = otree_first(&f->channels))) {
    otree_remove(&f->channels, n);
    fsm_channel_free(FSM_CONTAINER(n, struct fsm_channel, by_name));
  }
  for (uint32_t i = 0; i < f->channels_gone_n; i++) {
    free(f->channels_gone[i].name);
  }
  free(f->channels_gone);
  fsm_state_init(f);
}

struct fsm *fsm_new(const struct fsm_options *opts) {
  struct fsm_options o = {0};
  if (opts) {
    o = *opts;
  }
  options_resolve(&o);
  if (o.ttl_min_ms > o.ttl_default_ms || o.ttl_default_ms > o.ttl_max_ms ||
      o.name_bytes_max > 65535) {
    return NULL;
  }
  struct fsm *f = fsm_xcalloc(1, sizeof *f);
  f->opt = o;
  pb_arena_init(&f->unpack);
  fsm_state_init(f);
  return f;
}

void fsm_free(struct fsm *f) {
  if (f == NULL) {
    return;
  }
  fsm_state_clear(f);
  fsm_output_reset(f);
  free(f->blocks);
  free(f->events);
  free(f->key_rev.buf);
  pb_arena_close(&f->unpack);
  free(f);
}

void fsm_stats_get(const struct fsm *f, struct fsm_stats *out) {
  *out = f->stats;
  out->sessions = f->sessions.count;
  out->counters = f->counters.count;
  out->elections = f->elections.count;
  out->keys = f->keys_live;
  out->keys_bytes = f->keys_bytes;
  out->key_work_keys = f->key_work_keys;
  out->groups = f->groups.count;
  out->group_members = f->group_members;
  out->groups_bytes = f->groups_bytes;
}

uint64_t fsm_time_ms(const struct fsm *f) {
  return f->time_ms;
}

uint64_t fsm_applied_index(const struct fsm *f) {
  return f->applied_index;
}

uint32_t fsm_session_ttl_ms(const struct fsm *f, uint64_t session_id) {
  const struct fsm_session *s = fsm_session_find(f, session_id);
  return s != NULL ? s->ttl_ms : 0;
}

int fsm_index_advance(struct fsm *f, uint64_t index) {
  if (index <= f->applied_index) {
    return SYNOD_EINVAL;
  }
  f->applied_index = index;
  return 0;
}

/* ------------------------------------------------------------ apply */

/* Points the output response at a copy of data in output memory. */
static void response_set(struct fsm *f, struct fsm_output *out,
                         const uint8_t *data, size_t len) {
  uint8_t *p = fsm_output_alloc(f, len);
  memcpy(p, data, len);
  out->response.data = p;
  out->response.len = len;
}

/* Packs r into the output and, when s is given, records it for
 * (s, sequence). */
static void reply_emit(struct fsm *f, struct fsm_reply *r, int rv,
                       struct fsm_session *s, uint64_t sequence,
                       struct fsm_output *out) {
  size_t len = 0;
  uint8_t *data = NULL;
  fsm_reply_finish(r, rv);
  out->response.pending = r->pending;
  if (!r->pending) {
    data = fsm_response_pack(&r->resp, &len);
    response_set(f, out, data, len);
  }
  free(r->scratch);
  free(r->scratch2);
  fsm_arena_free(r->arena);
  if (s) {
    fsm_session_record(f, s, sequence, data, len, r->pending);
  } else {
    free(data);
  }
}

/* Exactly-once: a sequence in the window is answered from its record; one
 * at or below the floor is refused; a new one is applied and recorded. */
static void request_in_session(struct fsm *f, const struct op *op,
                               struct fsm_session *s, const Synod__Request *req,
                               struct fsm_output *out) {
  struct fsm_reply r;
  fsm_reply_init(&r);
  int rv;
  if (req->sequence == 0 && op->kind == OP_ANY) {
    /* In the session, not exactly-once (fsm.h "Exactly-once"). */
    rv = op->fn(f, s, req, &r);
    reply_emit(f, &r, rv, NULL, 0, out);
    return;
  }
  if (req->sequence == 0) {
    errmsg_set(r.msg,
               "%s: sequence 0 in session %" PRIu64 "; sequences start at 1",
               op->what, s->id);
    reply_emit(f, &r, SYNOD_EINVAL, NULL, 0, out);
    return;
  }
  struct fsm_result *res = fsm_session_result(s, req->sequence);
  if (res) {
    out->response.pending = res->pending;
    if (!res->pending) {
      response_set(f, out, res->data, res->len);
    }
    return;
  }
  if (req->sequence <= s->sequence_floor &&
      req->body_case == SYNOD__REQUEST__BODY_LOCK_ACQUIRE &&
      fsm_lock_waiting(s, req->sequence)) {
    /* A resend of an acquire still queued, whose record the window
     * pushed out while the session went on writing: it is pending, and
     * its grant, timeout or cancel answers the resend (an event that
     * names the session and sequence). Only the answer differs from
     * SYNOD_ESEQUENCE's: nothing changes, so replicas of a build before
     * this one apply the same. */
    out->response.pending = 1;
    return;
  }
  if (req->sequence <= s->sequence_floor) {
    errmsg_set(r.msg,
               "%s: sequence %" PRIu64 " is at or below session %" PRIu64
               "'s window floor %" PRIu64,
               op->what, req->sequence, s->id, s->sequence_floor);
    reply_emit(f, &r, SYNOD_ESEQUENCE, NULL, 0, out);
    return;
  }
  rv = op->fn(f, s, req, &r);
  reply_emit(f, &r, rv, s, req->sequence, out);
}

static void request_apply(struct fsm *f, const Synod__Request *req,
                          struct fsm_output *out) {
  const struct op *op = op_for(req->body_case);
  struct fsm_session *s = NULL;
  struct fsm_reply r;
  int rv = 0;
  fsm_reply_init(&r);
  out->has_response = 1;
  out->response.session_id = req->session_id;
  out->response.sequence = req->sequence;
  out->response.index = f->index;
  if (op == NULL) {
    errmsg_set(r.msg,
               "entry %" PRIu64 ": request body %d is not a state "
               "machine command",
               f->index, (int)req->body_case);
    rv = SYNOD_EINVAL;
  } else if (op->kind == OP_READ || op->kind == OP_OPEN ||
             (op->kind == OP_ANY && req->session_id == 0)) {
    rv = op->fn(f, NULL, req, &r);
  } else if (req->session_id == 0) {
    errmsg_set(r.msg, "%s: needs a session", op->what);
    rv = SYNOD_ESESSION;
  } else if ((s = fsm_session_find(f, req->session_id)) == NULL) {
    errmsg_set(r.msg, "%s: session %" PRIu64 " unknown or expired", op->what,
               req->session_id);
    rv = SYNOD_ESESSION;
  } else if (op->kind == OP_ADMIN) {
    rv = op->fn(f, s, req, &r);
  } else {
    request_in_session(f, op, s, req, out);
    return;
  }
  reply_emit(f, &r, rv, NULL, 0, out);
}

/* A Command that does not decode changes nothing but the applied index;
 * its answer can only be routed by index. */
static void command_malformed(struct fsm *f, size_t len,
                              struct fsm_output *out) {
  struct fsm_reply r;
  fsm_reply_init(&r);
  out->has_response = 1;
  out->response.index = f->index;
  errmsg_set(r.msg,
             "entry %" PRIu64 ": %zu bytes do not decode as a "
             "fsm.Command with a body",
             f->index, len);
  reply_emit(f, &r, SYNOD_EMALFORMED, NULL, 0, out);
}

/* protobuf-c keeps a oneof's message pointers in one union, so any member
 * tells whether the body's message is present. */
static int request_well_formed(const Synod__Request *req) {
  return req->body_case == SYNOD__REQUEST__BODY__NOT_SET || req->hello != NULL;
}

int fsm_apply(struct fsm *f, uint64_t index, const uint8_t *data, size_t len,
              struct fsm_output *out) {
  if (index <= f->applied_index) {
    return SYNOD_EINVAL;
  }
  memset(out, 0, sizeof *out);
  Synod__Fsm__Command *cmd =
      synod__fsm__command__unpack(&f->unpack.allocator, len, data);
  /* Format 0 (a build before the field) is applied as that build did;
   * from 1 on, a newer build's entry is not to be applied here. */
  if (cmd != NULL && cmd->format != 0) {
    bool newer = cmd->format > FSM_COMMAND_FORMAT;
    if (newer) {
      snprintf(f->unknown, sizeof f->unknown,
               "format %u of synod.fsm.Command (this build applies formats "
               "up to %d)",
               cmd->format, FSM_COMMAND_FORMAT);
    }
    if (newer || pb_unknown_field(&cmd->base, f->unknown, sizeof f->unknown)) {
      pb_arena_reset(&f->unpack);
      return SYNOD_EPROTO;
    }
  }
  fsm_output_reset(f);
  f->index = f->applied_index = index;
  if (cmd == NULL || cmd->body_case == SYNOD__FSM__COMMAND__BODY__NOT_SET ||
      cmd->request == NULL ||
      (cmd->body_case == SYNOD__FSM__COMMAND__BODY_REQUEST &&
       !request_well_formed(cmd->request))) {
    command_malformed(f, len, out);
  } else {
    if (cmd->time_ms > f->time_ms) {
      f->time_ms = cmd->time_ms;
    }
    fsm_keys_work(f);
    fsm_timers_run(f);
    if (cmd->body_case == SYNOD__FSM__COMMAND__BODY_TICK) {
      fsm_session_tick(f, cmd->tick);
    } else if (cmd->body_case == SYNOD__FSM__COMMAND__BODY_MEMBER) {
      fsm_member_apply(f, cmd->member);
    } else if (cmd->body_case == SYNOD__FSM__COMMAND__BODY_SETTINGS) {
      f->settings.channels_bytes_max = cmd->settings->channels_bytes_max;
      f->settings.group_checkpoint_bytes_max =
          cmd->settings->group_checkpoint_bytes_max <=
                  FSM_GROUP_CHECKPOINT_BYTES_CAP
              ? cmd->settings->group_checkpoint_bytes_max
              : FSM_GROUP_CHECKPOINT_BYTES_CAP;
      f->settings.key_history_max = cmd->settings->key_history_max;
      f->settings.key_history_bytes_max = cmd->settings->key_history_bytes_max;
      f->settings.key_value_bytes_max =
          cmd->settings->key_value_bytes_max <= FSM_KEY_VALUE_BYTES_CAP
              ? cmd->settings->key_value_bytes_max
              : FSM_KEY_VALUE_BYTES_CAP;
    } else {
      request_apply(f, cmd->request, out);
    }
  }
  pb_arena_reset(&f->unpack); /* cmd with it */
  out->events = f->events;
  out->events_len = f->events_len;
  return 0;
}

const char *fsm_unknown_field(const struct fsm *f) {
  return f->unknown;
}

/* ------------------------------------------------------------ reads */

bool fsm_request_is_read(const Synod__Request *req) {
  const struct op *op = op_for(req->body_case);
  return op != NULL && op->kind == OP_READ;
}

bool fsm_request_is_write(const Synod__Request *req) {
  const struct op *op = op_for(req->body_case);
  return op != NULL && op->kind != OP_READ && request_well_formed(req);
}

int fsm_query(const struct fsm *f, const Synod__Request *req, uint8_t **data,
              size_t *len) {
  const struct op *op = op_for(req->body_case);
  struct fsm_reply r;
  if (op == NULL || op->kind != OP_READ || !request_well_formed(req)) {
    return SYNOD_EINVAL;
  }
  fsm_reply_init(&r);
  /* Read handlers share the mutating handlers' signature but only read. */
  int rv = op->fn((struct fsm *)f, NULL, req, &r);
  fsm_reply_finish(&r, rv);
  *data = fsm_response_pack(&r.resp, len);
  free(r.scratch);
  free(r.scratch2);
  fsm_arena_free(r.arena);
  return 0;
}

/* ------------------------------------------------------------ encode */

size_t fsm_command_pack(const Synod__Fsm__Command *c, uint8_t *buf,
                        size_t cap) {
  Synod__Fsm__Command x = *c;
  x.format = FSM_COMMAND_FORMAT;
  size_t n = synod__fsm__command__get_packed_size(&x);
  if (n <= cap) {
    synod__fsm__command__pack(&x, buf);
  }
  return n;
}

size_t fsm_command_encode_request(uint64_t time_ms, const Synod__Request *req,
                                  uint8_t *buf, size_t cap) {
  Synod__Fsm__Command c = SYNOD__FSM__COMMAND__INIT;
  c.time_ms = time_ms;
  c.body_case = SYNOD__FSM__COMMAND__BODY_REQUEST;
  c.request = (Synod__Request *)req;
  return fsm_command_pack(&c, buf, cap);
}

size_t fsm_command_encode_tick(uint64_t time_ms, const uint64_t *session_ids,
                               size_t n, uint8_t *buf, size_t cap) {
  Synod__Fsm__Command c = SYNOD__FSM__COMMAND__INIT;
  Synod__Fsm__Tick t = SYNOD__FSM__TICK__INIT;
  t.n_session_ids = n;
  t.session_ids = (uint64_t *)session_ids;
  c.time_ms = time_ms;
  c.body_case = SYNOD__FSM__COMMAND__BODY_TICK;
  c.tick = &t;
  return fsm_command_pack(&c, buf, cap);
}

/* --------------------------------------------------------- settings */

void fsm_settings_get(const struct fsm *f, struct fsm_settings *out) {
  *out = f->settings;
}

uint64_t fsm_channels_bytes_max(const struct fsm *f) {
  return f->settings.channels_bytes_max ? f->settings.channels_bytes_max
                                        : f->opt.channels_bytes_max;
}

uint64_t fsm_bulk_bytes(const struct fsm *f) {
  return f->channels_bytes + f->keys_bytes + f->key_history_bytes +
         f->groups_bytes;
}

uint64_t fsm_group_checkpoint_bytes_max(const struct fsm *f) {
  return f->settings.group_checkpoint_bytes_max
             ? f->settings.group_checkpoint_bytes_max
             : f->opt.group_checkpoint_bytes_max;
}

uint64_t fsm_key_history_max(const struct fsm *f) {
  return f->settings.key_history_max ? f->settings.key_history_max
                                     : f->opt.key_history_max;
}

uint64_t fsm_key_history_bytes_max(const struct fsm *f) {
  return f->settings.key_history_bytes_max ? f->settings.key_history_bytes_max
                                           : f->opt.key_history_bytes_max;
}

uint64_t fsm_key_value_bytes_max(const struct fsm *f) {
  return f->settings.key_value_bytes_max ? f->settings.key_value_bytes_max
                                         : f->opt.key_value_bytes_max;
}

size_t fsm_command_encode_settings(uint64_t time_ms,
                                   const struct fsm_settings *s, uint8_t *buf,
                                   size_t cap) {
  Synod__Fsm__Command c = SYNOD__FSM__COMMAND__INIT;
  Synod__Fsm__Settings m = SYNOD__FSM__SETTINGS__INIT;
  m.channels_bytes_max = s->channels_bytes_max;
  m.group_checkpoint_bytes_max = s->group_checkpoint_bytes_max;
  m.key_history_max = s->key_history_max;
  m.key_history_bytes_max = s->key_history_bytes_max;
  m.key_value_bytes_max = s->key_value_bytes_max;
  c.time_ms = time_ms;
  c.body_case = SYNOD__FSM__COMMAND__BODY_SETTINGS;
  c.settings = &m;
  return fsm_command_pack(&c, buf, cap);
}
