/* Requests and results: building a Request for each kind of call and
 * turning a Response into the public result structs. No engine state. */
#include <stdlib.h>
#include <string.h>

#include "engine.h"

struct kind_info {
  const char *name;
  bool sequenced;
  bool needs_session;
};

static const struct kind_info kinds[OP_KIND_COUNT] = {
    [OP_SESSION_OPEN] = {"session open", false, false},
    [OP_SESSION_KEEPALIVE] = {"session keepalive", false, true},
    [OP_SESSION_CLOSE] = {"session close", true, true},
    [OP_SESSION_WAIT] = {"session wait", false, true},
    [OP_LOCK_ACQUIRE] = {"lock acquire", true, true},
    [OP_LOCK_RELEASE] = {"lock release", true, true},
    [OP_LOCK_QUERY] = {"lock query", false, false},
    [OP_LOCK_CHECK] = {"lock check", false, false},
    [OP_COUNTER_GET] = {"counter get", false, false},
    [OP_COUNTER_SET] = {"counter set", true, true},
    [OP_COUNTER_CAS] = {"counter cas", true, true},
    [OP_COUNTER_ADD] = {"counter add", true, true},
    [OP_COUNTER_GET_ADD] = {"counter get-add", true, true},
    [OP_COUNTER_DELETE] = {"counter delete", true, true},
    [OP_COUNTER_LIST] = {"counter list", false, false},
    [OP_ELECTION_CAMPAIGN] = {"election campaign", true, true},
    [OP_ELECTION_RESIGN] = {"election resign", true, true},
    [OP_ELECTION_LEADER] = {"election leader", false, false},
    [OP_ELECTION_OBSERVE] = {"election observe", false, false},
    [OP_STATUS] = {"status", false, false},
    [OP_MEMBER_REMOVE] = {"member remove", false, false},
    [OP_CHANNEL_CREATE] = {"channel create", true, true},
    [OP_CHANNEL_PUBLISH] = {"channel publish", true, true},
    [OP_CHANNEL_READ] = {"channel read", false, false},
    [OP_CHANNEL_INFO] = {"channel info", false, false},
    [OP_CHANNEL_LIST] = {"channel list", false, false},
    [OP_CHANNEL_DELETE] = {"channel delete", true, true},
    [OP_CHANNEL_SUBSCRIBE] = {"channel subscribe", false, false},
    [OP_CHANNEL_CREDIT] = {"channel credit", false, false},
    [OP_CHANNEL_UNSUBSCRIBE] = {"channel unsubscribe", false, false},
    [OP_KEY_WATCH] = {"key watch", false, false},
    [OP_CHANNEL_CURSOR_COMMIT] = {"channel cursor commit", true, true},
    [OP_CHANNEL_CURSOR_GET] = {"channel cursor get", false, false},
    [OP_KEY_PUT] = {"key put", true, true},
    [OP_KEY_GET] = {"key get", false, false},
    [OP_KEY_DELETE] = {"key delete", true, true},
    [OP_KEY_LIST] = {"key list", false, false},
    [OP_KEY_TXN] = {"key txn", true, true},
    [OP_GROUP_JOIN] = {"group join", true, true},
    [OP_GROUP_LEAVE] = {"group leave", true, true},
    [OP_GROUP_SEND] = {"group send", true, true},
    [OP_GROUP_CHECKPOINT] = {"group checkpoint", true, true},
    [OP_GROUP_STATE_REQUEST] = {"group state request", true, true},
    [OP_GROUP_VIEW_GET] = {"group view", false, false},
    [OP_GROUP_LIST] = {"group list", false, false},
    [OP_GROUP_CHECKPOINT_READ] = {"group checkpoint read", false, false},
    [OP_GROUP_READ] = {"group read", false, false},
    [OP_GROUP_SUBSCRIBE] = {"group subscribe", false, false},
};

bool op_kind_sequenced(enum op_kind kind) {
  return kinds[kind].sequenced;
}

bool op_kind_retry_safe(enum op_kind kind) {
  /* Member remove is the one write that carries no session: sent twice,
   * the second could find the member gone and say ENOTFOUND. */
  return kind != OP_MEMBER_REMOVE;
}

bool op_kind_needs_session(enum op_kind kind) {
  return kinds[kind].needs_session;
}

bool op_kind_conn_bound(enum op_kind kind) {
  return kind == OP_CHANNEL_SUBSCRIBE || kind == OP_CHANNEL_CREDIT ||
         kind == OP_CHANNEL_UNSUBSCRIBE || kind == OP_KEY_WATCH ||
         kind == OP_GROUP_SUBSCRIBE;
}

const char *op_kind_name(enum op_kind kind) {
  return kinds[kind].name;
}

void op_free(struct op *op) {
  if (op == NULL) {
    return;
  }
  free(op->name);
  free(op->name2);
  free(op->bytes);
  free(op->msgs);
  if (op->key_body != NULL) {
    protobuf_c_message_free_unpacked(op->key_body, NULL);
  }
  free(op);
}

static bool kind_has_name(enum op_kind kind) {
  return (kind >= OP_LOCK_ACQUIRE && kind <= OP_ELECTION_OBSERVE &&
          kind != OP_COUNTER_LIST) ||
         (kind >= OP_CHANNEL_CREATE && kind <= OP_CHANNEL_DELETE &&
          kind != OP_CHANNEL_LIST) ||
         kind >= OP_CHANNEL_CURSOR_COMMIT;
}

/* A subscribe's channel (a prefix may be empty) and cursor. */
static int subscribe_check(const struct op_args *args, char *errmsg) {
  const char *what = "channel subscribe";
  size_t n = args->name != NULL ? strlen(args->name) : 0;
  bool cursor = args->name2 != NULL && args->name2[0] != '\0';
  if (!args->prefix) {
    int rv = name_check(what, args->name, errmsg);
    if (rv != 0) {
      return rv;
    }
  } else if (n > SYNOD_NAME_MAX) {
    errmsg_printf(errmsg, "%s: a prefix of %zu bytes; at most %d", what, n,
                  SYNOD_NAME_MAX);
    return SYNOD_EINVAL;
  }
  if (cursor && args->prefix) {
    errmsg_printf(errmsg, "%s: a cursor is for one channel, not a prefix",
                  what);
    return SYNOD_EINVAL;
  }
  if (cursor && name_check("channel cursor", args->name2, errmsg) != 0) {
    return SYNOD_EINVAL;
  }
  if (args->sub_from < SYNOD_FROM_DEFAULT || args->sub_from > SYNOD_FROM_NEXT) {
    errmsg_printf(errmsg, "%s: from %d is not a SYNOD_FROM_*", what,
                  args->sub_from);
    return SYNOD_EINVAL;
  }
  if (args->sub_from == SYNOD_FROM_OFFSET && !args->prefix && args->from == 0) {
    errmsg_printf(errmsg, "%s: from offset 0; offsets start at 1", what);
    return SYNOD_EINVAL;
  }
  if (args->credits > SYNOD_SUBSCRIBE_WINDOW_MAX) {
    errmsg_printf(errmsg, "%s: a window of %u; at most %d", what, args->credits,
                  SYNOD_SUBSCRIBE_WINDOW_MAX);
    return SYNOD_EINVAL;
  }
  return 0;
}

/* A publish's messages, copied into one block (op->bytes) that the
 * body's array points into. */
static int op_copy_messages(struct op *op, const struct op_args *args,
                            char *errmsg) {
  size_t total = 0;
  if (args->messages_n == 0 || args->messages_n > 1000) {
    errmsg_printf(errmsg, "channel publish: %zu messages; 1 to 1000",
                  args->messages_n);
    return SYNOD_EINVAL;
  }
  if (args->messages == NULL || args->lens == NULL) {
    errmsg_printf(errmsg, "channel publish: no messages or no lengths");
    return SYNOD_EINVAL;
  }
  for (size_t i = 0; i < args->messages_n; i++) {
    total += args->lens[i];
  }
  free(op->bytes);
  op->bytes = malloc(total + 1);
  op->msgs = calloc(args->messages_n, sizeof *op->msgs);
  if (op->bytes == NULL || op->msgs == NULL) {
    return SYNOD_ENOMEM;
  }
  for (size_t i = 0, at = 0; i < args->messages_n; i++) {
    if (args->lens[i] > 0) {
      memcpy(op->bytes + at, args->messages[i], args->lens[i]);
    }
    op->msgs[i].data = op->bytes + at;
    op->msgs[i].len = args->lens[i];
    at += args->lens[i];
  }
  return 0;
}

/* Copies the strings and bytes the body will point to. */
static int op_copy_args(struct op *op, const struct op_args *args,
                        char *errmsg) {
  int rv = 0;
  if (kind_has_name(op->kind)) {
    rv = name_check(op_kind_name(op->kind), args->name, errmsg);
  }
  if (rv == 0 && op->kind >= OP_CHANNEL_CURSOR_COMMIT) {
    rv = name_check("channel cursor", args->name2, errmsg);
  }
  if (rv == 0 && op->kind == OP_CHANNEL_SUBSCRIBE) {
    rv = subscribe_check(args, errmsg);
  }
  if (rv != 0) {
    return rv;
  }
  if (args->bytes_len > SYNOD_ELECTION_VALUE_MAX) {
    errmsg_printf(errmsg, "election value of %zu bytes over the maximum %d",
                  args->bytes_len, SYNOD_ELECTION_VALUE_MAX);
    return SYNOD_EINVAL;
  }
  op->name = strdup(args->name ? args->name : "");
  op->name2 = strdup(args->name2 ? args->name2 : "");
  op->bytes = malloc(args->bytes_len + 1);
  if (op->name == NULL || op->name2 == NULL || op->bytes == NULL) {
    return SYNOD_ENOMEM;
  }
  if (args->bytes_len > 0) {
    memcpy(op->bytes, args->bytes, args->bytes_len);
  }
  op->owner_id = args->owner_id;
  if (op->kind == OP_CHANNEL_PUBLISH) {
    return op_copy_messages(op, args, errmsg);
  }
  return 0;
}

#define BODY(field, INIT, CASE)                                                \
  do {                                                                         \
    Synod__##INIT init_ = SYNOD__##CASE##__INIT;                               \
    op->body.field = init_;                                                    \
    op->req.body_case = SYNOD__REQUEST__BODY_##CASE;                           \
    op->req.field = &op->body.field;                                           \
  } while (0)

static void op_fill_session(struct op *op) {
  switch (op->kind) {
  case OP_SESSION_OPEN:
    BODY(session_open, SessionOpen, SESSION_OPEN);
    break;
  case OP_SESSION_KEEPALIVE:
    BODY(session_keepalive, SessionKeepalive, SESSION_KEEPALIVE);
    break;
  case OP_SESSION_CLOSE:
    BODY(session_close, SessionClose, SESSION_CLOSE);
    break;
  default: /* OP_SESSION_WAIT sends nothing */
    break;
  }
}

static void op_fill_lock(struct op *op, const struct op_args *args) {
  switch (op->kind) {
  case OP_LOCK_ACQUIRE:
    BODY(lock_acquire, LockAcquire, LOCK_ACQUIRE);
    op->body.lock_acquire.name = op->name;
    op->body.lock_acquire.owner_id = args->owner_id;
    op->body.lock_acquire.timeout_ms = args->timeout_ms;
    op->body.lock_acquire.lock_delay_ms = args->lock_delay_ms;
    break;
  case OP_LOCK_RELEASE:
    BODY(lock_release, LockRelease, LOCK_RELEASE);
    op->body.lock_release.name = op->name;
    op->body.lock_release.owner_id = args->owner_id;
    break;
  case OP_LOCK_QUERY:
    BODY(lock_query, LockQuery, LOCK_QUERY);
    op->body.lock_query.name = op->name;
    break;
  default:
    BODY(lock_check, LockCheck, LOCK_CHECK);
    op->body.lock_check.name = op->name;
    op->body.lock_check.token = args->token;
    break;
  }
}

static void op_fill_counter(struct op *op, const struct op_args *args) {
  switch (op->kind) {
  case OP_COUNTER_GET:
    BODY(counter_get, CounterGet, COUNTER_GET);
    op->body.counter_get.name = op->name;
    break;
  case OP_COUNTER_SET:
    BODY(counter_set, CounterSet, COUNTER_SET);
    op->body.counter_set.name = op->name;
    op->body.counter_set.value = args->value;
    break;
  case OP_COUNTER_CAS:
    BODY(counter_cas, CounterCas, COUNTER_CAS);
    op->body.counter_cas.name = op->name;
    op->body.counter_cas.expect = args->value;
    op->body.counter_cas.update = args->update;
    break;
  case OP_COUNTER_ADD:
  case OP_COUNTER_GET_ADD:
    BODY(counter_add, CounterAdd, COUNTER_ADD);
    op->body.counter_add.name = op->name;
    op->body.counter_add.delta = args->value;
    op->body.counter_add.return_previous = op->kind == OP_COUNTER_GET_ADD;
    break;
  case OP_COUNTER_DELETE:
    BODY(counter_delete, CounterDelete, COUNTER_DELETE);
    op->body.counter_delete.name = op->name;
    break;
  default:
    BODY(counter_list, CounterList, COUNTER_LIST);
    op->body.counter_list.prefix = op->name;
    op->body.counter_list.start_after = op->name2;
    op->body.counter_list.limit = args->limit;
    break;
  }
}

static void op_fill_election(struct op *op, const struct op_args *args) {
  switch (op->kind) {
  case OP_ELECTION_CAMPAIGN:
    BODY(election_campaign, ElectionCampaign, ELECTION_CAMPAIGN);
    op->body.election_campaign.name = op->name;
    op->body.election_campaign.value.data = op->bytes;
    op->body.election_campaign.value.len = args->bytes_len;
    break;
  case OP_ELECTION_RESIGN:
    BODY(election_resign, ElectionResign, ELECTION_RESIGN);
    op->body.election_resign.name = op->name;
    break;
  case OP_ELECTION_LEADER:
    BODY(election_leader, ElectionLeader, ELECTION_LEADER);
    op->body.election_leader.name = op->name;
    break;
  default:
    BODY(election_observe, ElectionObserve, ELECTION_OBSERVE);
    op->body.election_observe.name = op->name;
    break;
  }
}

static void op_fill_channel(struct op *op, const struct op_args *args) {
  switch (op->kind) {
  case OP_CHANNEL_CREATE:
    BODY(channel_create, ChannelCreate, CHANNEL_CREATE);
    op->body.channel_create.name = op->name;
    if (args->limits != NULL) {
      Synod__ChannelLimits init = SYNOD__CHANNEL_LIMITS__INIT;
      op->limits = init;
      op->limits.max_messages = args->limits->max_messages;
      op->limits.max_bytes = args->limits->max_bytes;
      op->limits.max_age_ms = args->limits->max_age_ms;
      op->limits.max_message_bytes = args->limits->max_message_bytes;
      op->limits.refuse_when_full = args->limits->refuse_when_full;
      op->body.channel_create.limits = &op->limits;
    }
    break;
  case OP_CHANNEL_PUBLISH:
    BODY(channel_publish, ChannelPublish, CHANNEL_PUBLISH);
    op->body.channel_publish.name = op->name;
    op->body.channel_publish.message_id = op->name2;
    op->body.channel_publish.messages = op->msgs;
    op->body.channel_publish.n_messages = args->messages_n;
    break;
  case OP_CHANNEL_READ:
    BODY(channel_read, ChannelRead, CHANNEL_READ);
    op->body.channel_read.name = op->name;
    op->body.channel_read.from = args->from;
    op->body.channel_read.max = args->limit;
    op->body.channel_read.known_index = args->known_index;
    break;
  case OP_CHANNEL_INFO: {
    Synod__ChannelInfoGet init = SYNOD__CHANNEL_INFO_GET__INIT;
    op->body.channel_info = init;
    op->body.channel_info.name = op->name;
    op->req.body_case = SYNOD__REQUEST__BODY_CHANNEL_INFO;
    op->req.channel_info = &op->body.channel_info;
    break;
  }
  case OP_CHANNEL_LIST:
    BODY(channel_list, ChannelList, CHANNEL_LIST);
    op->body.channel_list.after = op->name;
    op->body.channel_list.limit = args->limit;
    break;
  default:
    BODY(channel_delete, ChannelDelete, CHANNEL_DELETE);
    op->body.channel_delete.name = op->name;
    break;
  }
}

/* Subscriptions and cursors. A subscribe's subscription_id is the op's
 * id, which the engine gives it when queued (subscribe.c sets it). */
static void op_fill_subscription(struct op *op, const struct op_args *args) {
  switch (op->kind) {
  case OP_CHANNEL_SUBSCRIBE: {
    Synod__ChannelSubscribe *b = &op->body.channel_subscribe;
    BODY(channel_subscribe, ChannelSubscribe, CHANNEL_SUBSCRIBE);
    b->channel = op->name;
    b->prefix = args->prefix;
    b->from = (Synod__ChannelSubscribe__From)args->sub_from;
    b->offset = args->from;
    b->after_index = args->after_index;
    b->after_offset = args->after_offset;
    b->known_index = args->known_index;
    b->scope_index = args->scope_index;
    b->cursor = op->name2;
    b->credits = args->credits;
    break;
  }
  case OP_CHANNEL_CREDIT:
    BODY(channel_credit, ChannelCredit, CHANNEL_CREDIT);
    op->body.channel_credit.subscription_id = args->subscription_id;
    op->body.channel_credit.credits = args->credits;
    break;
  case OP_CHANNEL_UNSUBSCRIBE:
    BODY(channel_unsubscribe, ChannelUnsubscribe, CHANNEL_UNSUBSCRIBE);
    op->body.channel_unsubscribe.subscription_id = args->subscription_id;
    break;
  case OP_KEY_WATCH:
    BODY(key_watch, KeyWatch, KEY_WATCH);
    op->body.key_watch.key.data = (uint8_t *)op->name;
    op->body.key_watch.key.len = strlen(op->name);
    op->body.key_watch.prefix = args->prefix;
    op->body.key_watch.from_revision = args->from;
    op->body.key_watch.after_event = (uint32_t)args->after_offset;
    op->body.key_watch.prev_kv = args->prev_kv;
    op->body.key_watch.credits = args->credits;
    break;
  case OP_CHANNEL_CURSOR_COMMIT:
    BODY(channel_cursor_commit, ChannelCursorCommit, CHANNEL_CURSOR_COMMIT);
    op->body.channel_cursor_commit.channel = op->name;
    op->body.channel_cursor_commit.cursor = op->name2;
    op->body.channel_cursor_commit.offset = args->from;
    break;
  default:
    BODY(channel_cursor_get, ChannelCursorGet, CHANNEL_CURSOR_GET);
    op->body.channel_cursor_get.channel = op->name;
    op->body.channel_cursor_get.cursor = op->name2;
    break;
  }
}

int op_build(enum op_kind kind, const struct op_args *args, struct op **out,
             char *errmsg) {
  struct op *op;
  int rv;
  op = calloc(1, sizeof *op);
  if (op == NULL) {
    return SYNOD_ENOMEM;
  }
  op->kind = kind;
  synod__request__init(&op->req);
  if (op_kind_is_key(kind) || op_kind_is_group(kind)) {
    rv = op_kind_is_key(kind) ? keys_op_fill(op, args, errmsg)
                              : groups_op_fill(op, args, errmsg);
    if (rv != 0) {
      goto err;
    }
    *out = op;
    return 0;
  }
  rv = op_copy_args(op, args, errmsg);
  if (rv != 0) {
    goto err;
  }
  op->req.stale = (args->flags & SYNOD_READ_STALE) != 0;
  if (kind <= OP_SESSION_WAIT) {
    op_fill_session(op);
  } else if (kind <= OP_LOCK_CHECK) {
    op_fill_lock(op, args);
  } else if (kind <= OP_COUNTER_LIST) {
    op_fill_counter(op, args);
  } else if (kind <= OP_ELECTION_OBSERVE) {
    op_fill_election(op, args);
  } else if (kind == OP_STATUS) {
    BODY(status, Status, STATUS);
    op->body.status.digest = (args->flags & SYNOD_STATUS_DIGEST) != 0;
  } else if (kind >= OP_CHANNEL_SUBSCRIBE) {
    op_fill_subscription(op, args);
  } else if (kind >= OP_CHANNEL_CREATE) {
    op_fill_channel(op, args);
  } else {
    BODY(member_remove, MemberRemove, MEMBER_REMOVE);
    op->body.member_remove.name = op->name;
  }
  *out = op;
  return 0;
err:
  op_free(op);
  return rv;
}
