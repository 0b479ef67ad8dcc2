/* libsynod's engine: the state behind struct synod_async, shared by the
 * files of clientlib/. Not installed; not part of the API.
 *
 * Everything here runs on the loop thread, except op_build and the
 * result_* conversions, which touch no engine state and may run on any
 * thread (the blocking interface builds requests on the caller's thread). */
#ifndef SYNOD_ENGINE_H
#define SYNOD_ENGINE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "stream.h"
#include "synod.h"
#include "synod.pb-c.h"
#include "util.h"

enum op_kind {
  OP_SESSION_OPEN,
  OP_SESSION_KEEPALIVE,
  OP_SESSION_CLOSE,
  OP_SESSION_WAIT, /* sends nothing: completes once a session is open */
  OP_LOCK_ACQUIRE,
  OP_LOCK_RELEASE,
  OP_LOCK_QUERY,
  OP_LOCK_CHECK,
  OP_COUNTER_GET,
  OP_COUNTER_SET,
  OP_COUNTER_CAS,
  OP_COUNTER_ADD,
  OP_COUNTER_GET_ADD,
  OP_COUNTER_DELETE,
  OP_COUNTER_LIST,
  OP_ELECTION_CAMPAIGN,
  OP_ELECTION_RESIGN,
  OP_ELECTION_LEADER,
  OP_ELECTION_OBSERVE,
  OP_STATUS,
  OP_MEMBER_REMOVE,
  OP_CHANNEL_CREATE,
  OP_CHANNEL_PUBLISH,
  OP_CHANNEL_READ,
  OP_CHANNEL_INFO,
  OP_CHANNEL_LIST,
  OP_CHANNEL_DELETE,
  OP_CHANNEL_SUBSCRIBE,
  OP_CHANNEL_CREDIT,
  OP_CHANNEL_UNSUBSCRIBE,
  OP_KEY_WATCH, /* a subscription too: credit and cancel are the channels' */
  OP_CHANNEL_CURSOR_COMMIT,
  OP_CHANNEL_CURSOR_GET,
  OP_KEY_PUT, /* keys.c: OP_KEY_PUT .. OP_KEY_TXN */
  OP_KEY_GET,
  OP_KEY_DELETE,
  OP_KEY_LIST,
  OP_KEY_TXN,
  OP_GROUP_JOIN, /* groups.c: OP_GROUP_JOIN .. OP_GROUP_SUBSCRIBE */
  OP_GROUP_LEAVE,
  OP_GROUP_SEND,
  OP_GROUP_CHECKPOINT, /* one chunk */
  OP_GROUP_STATE_REQUEST,
  OP_GROUP_VIEW_GET,
  OP_GROUP_LIST,
  OP_GROUP_CHECKPOINT_READ, /* one chunk */
  OP_GROUP_READ,
  OP_GROUP_SUBSCRIBE, /* a subscription: credit and cancel are the channels' */
  OP_KIND_COUNT
};

/* Mutating requests carry (session, sequence) and are applied once. */
bool op_kind_sequenced(enum op_kind kind);
/* Whether a request that was written on a connection which then failed
 * may be sent again on the next one: reads, sequenced writes, session open
 * and keepalive. Others (member remove) fail with SYNOD_ETIMEDOUT. */
bool op_kind_retry_safe(enum op_kind kind);
/* Requests that cannot be sent before a session is open. */
bool op_kind_needs_session(enum op_kind kind);
/* Requests that name something of the connection they are sent on (a
 * subscription id): never sent again on another one. When the live
 * connection is lost, the engine completes them with SYNOD_ECLOSED, sent
 * or not (subscribe.c subscribes again on the next connection). */
bool op_kind_conn_bound(enum op_kind kind);
const char *op_kind_name(enum op_kind kind);

struct op;

/* The op finished: status 0 with the server's Response (borrowed until the
 * callback returns; NULL for OP_SESSION_WAIT), or an error and its
 * message. The engine frees the op after the callback returns. */
typedef void (*op_done_cb)(struct op *op, int status,
                           const Synod__Response *resp, const char *errmsg);

/* Everything any request may carry; op_build takes what its kind needs. */
struct op_args {
  const char *name;
  const char *name2; /* counter list: start_after */
  uint64_t owner_id;
  uint64_t token;
  uint32_t timeout_ms; /* lock acquire: the server-side wait */
  uint32_t lock_delay_ms;
  uint32_t limit;
  int64_t value; /* set: the value; cas: expect; add: delta */
  int64_t update;
  const void *bytes; /* campaign value */
  size_t bytes_len;
  unsigned flags; /* SYNOD_READ_STALE */
  /* Channels: a publish's messages, a read's offset, a create's limits. */
  const void *const *messages;
  const size_t *lens;
  size_t messages_n;
  uint64_t from; /* read: the offset; cursor commit: the offset */
  const struct synod_channel_limits *limits;
  /* Subscriptions: subscribe's options (name: the channel or prefix,
   * name2: the cursor); credit's and unsubscribe's subscription. */
  bool prefix;
  int sub_from; /* Synod__ChannelSubscribe__From */
  uint64_t after_index;
  uint64_t after_offset;
  uint64_t known_index; /* ChannelSubscribe's and ChannelRead's */
  uint64_t scope_index; /* ChannelSubscribe's */
  uint32_t credits;
  uint64_t subscription_id;
  bool prev_kv; /* key watch; its key is `name`, from_revision `from`,
                   after_event `after_offset` */
  const struct key_args *key;     /* the key kinds' arguments (keys.c) */
  const struct group_args *group; /* the group kinds' (groups.c) */
};

/* A group call's arguments, borrowed until op_build returns (which
 * copies them). Strings may be NULL (""). */
struct group_args {
  const char *group;
  const char *member; /* join, leave, checkpoint, state, read, subscribe */
  const char *to;     /* send */
  const char *sender; /* send: the sender's member name (from) */
  const char *after;  /* list */
  const void *data;   /* join: the member's data; send; a checkpoint chunk */
  size_t data_len;
  bool want_state;
  uint64_t offset;       /* checkpoint: the offset it reflects; read: its */
  uint64_t total_bytes;  /* checkpoint */
  uint64_t chunk_offset; /* checkpoint: where the chunk goes; read: from */
  uint64_t from;         /* read, subscribe: the first offset */
  uint64_t known_index;  /* subscribe, reads: .known_index */
  uint32_t max;          /* read: items; checkpoint read: bytes */
  uint32_t limit;        /* list */
  uint32_t credits;      /* subscribe */
  unsigned flags;        /* SYNOD_READ_STALE */
};

/* A key call's arguments, borrowed until op_build returns (which copies
 * them). key: the key, prefix of a list or delete; name2-like `after`
 * for a list. */
struct key_args {
  const char *key;
  const void *value;
  size_t value_len;
  unsigned flags; /* SYNOD_KEY_*, SYNOD_READ_STALE */
  const struct synod_key_compare *compares;
  size_t compares_n;
  const char *after;
  uint32_t limit;
  uint64_t revision; /* list: at this revision (0: now) */
  const struct synod_key_txn *txn;
};

union op_body {
  Synod__SessionOpen session_open;
  Synod__SessionKeepalive session_keepalive;
  Synod__SessionClose session_close;
  Synod__LockAcquire lock_acquire;
  Synod__LockRelease lock_release;
  Synod__LockQuery lock_query;
  Synod__LockCheck lock_check;
  Synod__CounterGet counter_get;
  Synod__CounterSet counter_set;
  Synod__CounterCas counter_cas;
  Synod__CounterAdd counter_add;
  Synod__CounterDelete counter_delete;
  Synod__CounterList counter_list;
  Synod__ElectionCampaign election_campaign;
  Synod__ElectionResign election_resign;
  Synod__ElectionLeader election_leader;
  Synod__ElectionObserve election_observe;
  Synod__Status status;
  Synod__MemberRemove member_remove;
  Synod__ChannelCreate channel_create;
  Synod__ChannelPublish channel_publish;
  Synod__ChannelRead channel_read;
  Synod__ChannelInfoGet channel_info;
  Synod__ChannelList channel_list;
  Synod__ChannelDelete channel_delete;
  Synod__ChannelSubscribe channel_subscribe;
  Synod__ChannelCredit channel_credit;
  Synod__ChannelUnsubscribe channel_unsubscribe;
  Synod__KeyWatch key_watch;
  Synod__ChannelCursorCommit channel_cursor_commit;
  Synod__ChannelCursorGet channel_cursor_get;
};

/* One request from submit until its callback. Invariants: sequence != 0
 * iff a sequence of session_id was given to it; sent iff it was written on
 * the current connection and no answer came yet. */
struct op {
  struct op *prev, *next; /* in synod_async.ops, in submit order */
  enum op_kind kind;
  uint64_t id;
  uint64_t session_id;
  uint64_t sequence;
  bool sent;
  bool zombie; /* a lock acquire whose caller was told ETIMEDOUT */
  uint64_t deadline_ms;
  uint64_t sent_ms; /* loop time of the latest transmission */
  char *name;       /* owned copies the body points to */
  char *name2;
  uint8_t *bytes;
  uint64_t owner_id;
  ProtobufCBinaryData *msgs; /* a publish's, pointing into `bytes` */
  Synod__ChannelLimits limits;
  /* A key or group kind's body (KeyPut, ..., GroupSubscribe): a tree
   * allocated with malloc, which protobuf_c_message_free_unpacked frees
   * whole. */
  ProtobufCMessage *key_body;
  Synod__Request req;
  union op_body body;
  op_done_cb done;
  void *arg;             /* for done */
  void (*user_cb)(void); /* the async API's typed callback, by kind */
  void *user_arg;        /* its arg */
};

/* Builds an op of `kind` from args (copies every string). Returns 0 and
 * *out, SYNOD_EINVAL with errmsg, or SYNOD_ENOMEM. Any thread. */
int op_build(enum op_kind kind, const struct op_args *args, struct op **out,
             char *errmsg);
void op_free(struct op *op);

/* One checkpoint chunk stored (GroupCheckpointReply). */
struct group_chunk_stored {
  uint64_t received;
  uint64_t total_bytes;
  bool committed;
  uint64_t notice_offset;
};

/* One checkpoint chunk read (GroupCheckpointChunk); owns data and
 * info.member. */
struct group_chunk {
  struct synod_group_checkpoint_info info;
  uint64_t from;
  uint8_t *data;
  size_t len;
  bool last;
};

/* Every typed result, so one conversion serves both interfaces. */
union synod_result {
  struct synod_lock_grant lock_grant;
  uint32_t hold_count;
  struct synod_lock_info lock_info;
  struct synod_lock_check lock_check;
  int64_t value;
  struct synod_counter_cas cas;
  bool existed;
  struct synod_counter_list list;
  struct synod_election_campaign campaign;
  struct synod_election_info info;
  struct synod_status status;
  uint64_t session_id;
  struct synod_channel_info channel;
  struct synod_channel_published published;
  struct synod_channel_messages messages;
  struct synod_channel_list channels;
  struct synod_channel_cursor cursor;
  struct synod_subscription_start sub_start;
  struct synod_key_put_result key_put;
  struct synod_key_get_result key_get;
  struct synod_key_delete_result key_delete;
  struct synod_key_list key_list;
  struct synod_key_txn_result key_txn;
  struct synod_group_joined group_joined;
  struct synod_group_left group_left;
  struct synod_group_sent group_sent;
  struct group_chunk_stored group_chunk_stored;
  struct synod_group_state group_state;
  struct synod_group_info group_info;
  struct synod_group_list group_list;
  struct group_chunk group_chunk;
  struct synod_group_items group_items;
};

/* Converts a successful Response for an op of `kind` into *out (which
 * then owns copies of every string). Returns 0, SYNOD_EMALFORMED (the
 * answer does not fit the request) or SYNOD_ENOMEM. Any thread. */
int result_from_response(enum op_kind kind, const Synod__Response *resp,
                         union synod_result *out, char *errmsg);
void result_free(enum op_kind kind, union synod_result *r);
int election_info_from_pb(const Synod__ElectionInfo *pb,
                          struct synod_election_info *out);

/* keys.c: the key kinds' requests and results. */
bool op_kind_is_key(enum op_kind kind);
/* Builds op's body from args->key (copies everything). 0, SYNOD_EINVAL
 * or SYNOD_ELIMIT with errmsg, or SYNOD_ENOMEM. */
int keys_op_fill(struct op *op, const struct op_args *args, char *errmsg);
int keys_result_from_response(enum op_kind kind, const Synod__Response *resp,
                              union synod_result *out);
void keys_result_free(enum op_kind kind, union synod_result *r);
/* Calls the typed async callback cb of a key kind. */
void keys_deliver(enum op_kind kind, void (*cb)(void), void *arg, int status,
                  const union synod_result *r);

/* groups.c: the group kinds' requests and results. */
bool op_kind_is_group(enum op_kind kind);
/* Builds op's body from args->group (copies everything). 0, SYNOD_EINVAL
 * with errmsg, or SYNOD_ENOMEM. */
int groups_op_fill(struct op *op, const struct op_args *args, char *errmsg);
int groups_result_from_response(enum op_kind kind, const Synod__Response *resp,
                                union synod_result *out, char *errmsg);
void groups_result_free(enum op_kind kind, union synod_result *r);
void groups_deliver(enum op_kind kind, void (*cb)(void), void *arg, int status,
                    const union synod_result *r);
/* A stream item as the public struct: pointers borrow pb, but joined
 * (allocated: release with group_item_clear). 0 or SYNOD_ENOMEM. */
int group_item_from_pb(const Synod__GroupItem *pb,
                       struct synod_group_item *out);
void group_item_clear(struct synod_group_item *it);
/* A view from the wire, owning copies. 0 or SYNOD_ENOMEM. */
int group_view_from_pb(const Synod__GroupView *pb,
                       struct synod_group_view *out);

/* async.c: builds and submits an op whose result goes to the typed
 * callback cb (see synod_async's rules). */
int async_submit(struct synod_async *a, enum op_kind kind,
                 const struct op_args *args, void (*cb)(void), void *arg,
                 uint32_t timeout_ms);
/* client.c: runs a blocking call; *out (may be NULL) gets the result. */
struct synod_client;
int client_call(struct synod_client *c, enum op_kind kind,
                const struct op_args *args, uint32_t timeout_ms,
                union synod_result *out);
/* Runs fn(a, call, arg) on the client's loop thread and waits (up to
 * timeout_ms, 0: the request timeout, plus a grace) until fn, or
 * something it started, calls client_run_done(call, ...) exactly once.
 * Returns that status (its message in synod_client_errmsg). If the
 * caller gives up (a wedged loop thread only), arg is left to the loop
 * thread. */
struct call;
typedef void (*client_fn)(struct synod_async *a, struct call *call, void *arg);
int client_run(struct synod_client *c, client_fn fn, void *arg,
               uint32_t timeout_ms);
void client_run_done(struct call *call, int rv, const char *errmsg);
/* The client's request timeout (its options', defaulted). */
uint32_t client_request_timeout_ms(const struct synod_client *c);
/* Sets what synod_client_errmsg returns on this thread. */
void client_set_errmsg(int rv, const char *msg);

/* A connection to one endpoint: an attempt (in synod_async.attempts,
 * not ready) until its HelloReply, then the live connection (conn). Freed
 * once libuv closed the handle and any getaddrinfo finished (refs == 0). */
struct conn {
  struct stream s; /* s.data = this */
  struct synod_async *a;
  struct conn *next; /* in synod_async.attempts */
  uv_connect_t connect;
  uv_getaddrinfo_t gai;
  unsigned refs;
  bool has_tcp;
  bool connected; /* TCP connected, Hello sent */
  bool ready;     /* HelloReply received: the live connection */
  bool dead;      /* closing or abandoned; nothing more is done with it */
  uint64_t hello_id;
  uint64_t started_ms;    /* loop time the attempt began */
  uint64_t deadline_ms;   /* attempts: end of the current phase's bound */
  uint64_t last_rx_ms;    /* loop time of the last frame received */
  uint64_t probe_id;      /* the outstanding probe (a Hello), if any */
  uint64_t probe_sent_ms; /* 0: no probe outstanding */
  struct endpoint ep;
  char address[ENDPOINT_HOST_MAX + 16];
};

/* One round of connection attempts: the candidates in the order they are
 * tried (the leader first, endpoints recently silent last), started one
 * attempt_delay_ms after the other, or at once when one fails. */
#define ROUND_MAX (ENDPOINTS_MAX + 2)
/* A fresh client's first round starts its next attempt after at most this
 * long (see conn_round_start). */
#define FRESH_ATTEMPT_DELAY_MS 10
struct round {
  bool active;
  bool fresh;             /* the client never connected and knows no leader */
  size_t n;               /* candidates planned */
  size_t next;            /* next candidate to start; next <= n */
  uint64_t next_start_ms; /* when it starts if nothing fails first */
  struct endpoint cands[ROUND_MAX];
};

/* An endpoint that did not answer in time (an attempt ran out, lost a
 * race after attempt_delay_ms, or a live connection stalled): tried last
 * until SILENT_EXPIRE_MS after since_ms. */
#define SILENT_MAX ROUND_MAX
#define SILENT_EXPIRE_MS 10000
/* How long a replica that said it knows no leader is tried last. */
#define LEADERLESS_MS 2000
struct silent_mark {
  char address[ENDPOINT_HOST_MAX + 16]; /* "" = free slot */
  uint64_t since_ms;
};

struct held_lock {
  struct held_lock *next;
  char *name;
  uint64_t owner_id;
  uint64_t token;
  uint64_t session_id;
};

struct observer {
  struct observer *next;
  char *name;
  synod_election_cb cb;
  void *arg;
  bool have; /* last_* describe the last report */
  bool last_has_leader;
  uint64_t last_revision;
  uint64_t last_session_id;
};

#define ASYNC_TIMERS 5
#define LOST_LOCKS_MAX 1024
#define SWEEP_INTERVAL_MS 50
#define SESSION_CLOSE_TIMEOUT_MS 2000
#define REDIRECTS_MAX 3 /* in a row, before backing off */
/* An idle live connection (no request waiting) is probed after this many
 * stall bounds without a frame, if a session, an observer or a
 * subscription needs it. */
#define IDLE_PROBE_STALLS 5

/* One subscription (subscribe.c). The position is what makes resumption
 * exact: one channel's next_offset, or a prefix's (after_index,
 * after_offset), as delivered to the application. */
/* A group subscription's items (group_member.c and the blocking group
 * watch in client.c consume them): in
 * offset order, each after the last one delivered; borrowed for the
 * call. */
typedef synod_group_watch_cb group_items_cb;
/* The server confirmed a group subscription's start at `offset`. */
typedef synod_group_watch_start_cb group_start_cb;

struct synod_async_subscription {
  struct synod_async_subscription *next; /* in synod_async.subs */
  /* A group subscription (group_sub_start): one group's stream as
   * `member` sees it; the position is next_offset, moved by the items
   * and by GroupDelivery.progress_offset (items for others are
   * skipped, so no gap can be seen). */
  bool group;
  char *member;
  group_items_cb group_cb;
  group_start_cb group_start;
  /* A key watch (watch.c's entry): the fields of one channel do not
   * apply, and (after_index, after_offset) below is the last
   * (revision, event) delivered. */
  bool keys;
  bool prev_kv;
  char *channel; /* or the prefix; a key watch's key or key prefix */
  char *cursor;  /* "" = none */
  bool prefix;
  int from; /* as asked: used until positioned */
  uint64_t offset, after_index_asked;
  uint32_t window;            /* credits: messages held + granted, at most */
  bool manual;                /* consumption is reported by sub_consumed */
  uint64_t start_deadline_ms; /* until started */
  /* Until started: the last refusal that was not final, to say why it
   * did not start in time. */
  int refused_rv;
  char refused_why[SYNOD_ERRMSG_BYTES];
  synod_channel_message_cb msg_cb;
  synod_subscription_end_cb end_cb;
  synod_subscription_start_cb start_cb;
  synod_key_events_cb key_cb;            /* key watch: for msg_cb */
  synod_key_watch_start_cb key_start_cb; /* ... and start_cb */
  void *arg;
  /* wire_id != 0 iff a ChannelSubscribe went out on the live connection
   * and the subscription did not end there; its events carry it. */
  uint64_t wire_id;
  bool paused;     /* no credit to subscribe with until some is consumed */
  bool started;    /* the server confirmed a start once */
  bool positioned; /* the fields below say where to resume */
  /* One channel: the next offset to deliver; every lower one was. */
  uint64_t next_offset;
  /* Prefix: every message before (after_index, after_offset) in log
   * order was delivered: those of lower indexes, and at after_index
   * (one entry: one channel's batch, in offset order) those with an
   * offset up to after_offset, or all of them if it is 0. */
  uint64_t after_index, after_offset;
  /* One channel, a group: the log index of the last item delivered (a
   * member's: its join's before any), sent on a resume so that a stream
   * deleted and created again under the name ends the subscription
   * (SYNOD_ENOTFOUND) instead of going on in the new one. 0: none yet. */
  uint64_t known_index;
  /* A channel subscription's: where its scope began (the reply's
   * scope_index), sent on a resume, so that a channel deleted before a
   * prefix subscription began is no concern of it, and a whole channel
   * created and deleted before a one-channel subscription's first
   * message ends it. */
  uint64_t scope_index;
  /* Credits: held + ungranted + (what the server may still send) ==
   * window since the last subscribe. held: delivered and not yet
   * consumed (manual only); ungranted: consumed, not yet granted back. */
  uint32_t held, ungranted;
  unsigned busy; /* callbacks running: freeing waits */
  bool gone;     /* unlinked: no more callbacks; freed once busy == 0 */
};

struct synod_async {
  uv_loop_t *loop;
  struct synod_options opts; /* strings point to the copies below */
  char *client_name;
  struct endpoint endpoints[ENDPOINTS_MAX];
  size_t endpoints_n;
  size_t next_endpoint;
  /* Connection. conn: the live connection (ready), or NULL while a round
   * of attempts runs or a backoff waits. leader_hint: where ENOTLEADER
   * said the leader is; tried first by the next round, then forgotten.
   * leader_address: the leader last reported; tried next. */
  struct conn *conn;
  struct conn *attempts; /* the round's attempts in flight */
  struct round round;
  struct silent_mark silent[SILENT_MAX];
  char leader_hint[ENDPOINT_HOST_MAX + 16];
  char leader_address[ENDPOINT_HOST_MAX + 16];
  /* The replica that last said it knows no leader, and when: the next
   * rounds try it last until LEADERLESS_MS have passed (a leader cut off
   * from the others answers its clients at once, with "no leader"). */
  char leaderless[ENDPOINT_HOST_MAX + 16];
  uint64_t leaderless_ms;
  char leader_name[ENDPOINT_HOST_MAX];
  uint64_t leader_term;
  /* Effective bounds: the options, defaulted and clamped (see
   * async_configure). */
  uint32_t connect_bound_ms;
  uint32_t attempt_delay_ms;
  uint32_t stall_ms;
  unsigned rounds_failed; /* in a row; reset by a HelloReply */
  unsigned live_failures; /* live connections lost in a row; reset by an
                           * answer to a request */
  unsigned redirects;     /* in a row; reset by an answer */
  unsigned leaderless_n;  /* "no leader" answers in a row; likewise */
  bool ever_connected;
  char conn_error[SYNOD_ERRMSG_BYTES]; /* why the last attempt failed */
  uv_timer_t backoff_timer;            /* reconnect after a delay */
  uv_timer_t attempt_timer; /* attempt bounds and the next attempt's start */
  uv_timer_t keepalive_timer;
  uv_timer_t session_timer; /* next jeopardy/lost transition */
  uv_timer_t sweep_timer;   /* request deadlines */
  unsigned handles_open;
  /* Requests: a circular list with `ops` as its sentinel. ops_n counts
   * them; ops_unsequenced those of them that are sequenced and wait for
   * a sequence (a slot in the session's window): engine_flush stops
   * looking once every op left waits for one and no slot is free, so a
   * deep queue of publishes costs a flush O(ops in flight), not O(queue). */
  struct op ops;
  size_t ops_n;
  size_t ops_unsequenced;
  uint64_t flush_visits; /* ops engine_flush looked at, ever (for tests) */
  uint64_t next_id;
  /* Session. Invariant: session_id != 0 iff state is OPEN or JEOPARDY;
   * inflight_sequenced counts ops holding a sequence of session_id. */
  enum synod_session_state session_state;
  bool session_opening;
  _Atomic uint64_t session_id;
  uint32_t ttl_ms;
  uint64_t base_ms; /* send time of the last acknowledged keepalive */
  /* session_deadline_ms(base_ms, ttl_ms) while there is a session, else
   * 0: read by synod_async_session_valid_ms() from any thread. */
  _Atomic uint64_t deadline_ms;
  uint64_t last_sequence;
  unsigned inflight_sequenced;
  struct op *keepalive; /* the outstanding keepalive, or NULL */
  uint64_t keepalive_sent_ms;
  struct held_lock *held;
  struct held_lock *lost; /* locks of lost sessions, for SYNOD_ELOST */
  size_t lost_count;
  struct observer *observers;
  struct synod_async_subscription *subs;
  struct synod_async_group *groups; /* group_member.c's handles */
  unsigned sub_failures; /* subscriptions moved in a row; reset by a start */
  uint64_t prng;
  char errmsg[SYNOD_ERRMSG_BYTES];
  bool closing;
  bool close_finishing;
  synod_async_close_cb close_cb;
  void *close_arg;
};

/* engine.c */
/* Queues op and sends it when it can. On 0 the engine owns op and calls
 * op->done exactly once (timeout_ms bounds the wait from now; 0 = the
 * request timeout). On error (SYNOD_ESHUTDOWN, SYNOD_ELOST) the caller
 * still owns op and the callback is not called. */
int engine_submit(struct synod_async *a, struct op *op, uint32_t timeout_ms);
/* Unlinks op, calls its done and frees it. */
void engine_complete(struct synod_async *a, struct op *op, int status,
                     const Synod__Response *resp, const char *errmsg);
/* Queues op without sending (engine_flush sends). Same ownership as
 * engine_submit; never fails. For the engine's own requests. */
void engine_enqueue(struct synod_async *a, struct op *op, uint32_t timeout_ms);
/* Sends what can be sent now; connects if needed. */
void engine_flush(struct synod_async *a);
/* Drops the live connection and connects again after delay_ms. Its
 * unanswered ops will be resent if op_kind_retry_safe; the others fail
 * with SYNOD_ETIMEDOUT (outcome unknown). */
void engine_reconnect(struct synod_async *a, const char *why,
                      uint32_t delay_ms);
uint64_t engine_now(struct synod_async *a);
/* Connects again (a new round) after delay_ms. */
void engine_backoff(struct synod_async *a, uint32_t delay_ms);
/* A round failed and the next cannot connect before next_ready_ms: fails
 * with SYNOD_ECONNECT, now, the requests waiting for a connection whose
 * deadline comes first (those not in flight in a session: a write
 * already sent has an unknown outcome and waits for its deadline). */
void engine_fail_unreachable(struct synod_async *a, uint64_t next_ready_ms);
/* The stream's frame callback for every connection (attempt or live). */
bool engine_frame_cb(struct stream *s, const uint8_t *p, size_t n);
/* A HelloReply accepted on conn, which is now the live connection. */
void engine_on_ready(struct synod_async *a, struct conn *conn,
                     const Synod__HelloReply *h);
/* A leader was reported (HelloReply, redirect, event): remembered so the
 * next round tries it first. */
void engine_leader_seen(struct synod_async *a, const char *address);

/* conn.c: attempts, rounds, silent endpoints, the live connection's
 * watch. */
/* Starts a round of attempts over the planned candidates. */
void conn_round_start(struct synod_async *a);
/* The attempt or the live connection failed (refused, closed, a bad
 * frame, a refused Hello). Idempotent once the conn is dead. */
void conn_fail(struct conn *conn, const char *why);
/* conn's HelloReply was accepted: it becomes a->conn; the round ends and
 * the other attempts are closed. */
void conn_attempt_won(struct conn *conn);
/* Closes the live connection (its ops are the caller's business). */
void conn_drop_live(struct synod_async *a);
/* Closes every attempt and ends the round (client closing). */
void conn_attempts_abort(struct synod_async *a);
/* On every sweep: probes a quiet live connection and declares it dead
 * (marking its endpoint silent) after stall_ms without a frame while a
 * request waits. */
void conn_watch(struct synod_async *a, uint64_t now);
void attempt_timer_cb(uv_timer_t *t);
/* Silent endpoints: age of the mark (UINT64_MAX if none or expired). */
uint64_t conn_silent_age_ms(struct synod_async *a, const char *address);
void conn_silent_mark(struct synod_async *a, const char *address);
void conn_silent_clear(struct synod_async *a, const char *address);

/* session.c */
void session_open_if_needed(struct synod_async *a);
void session_on_ready(struct synod_async *a);
void session_keepalive_tick(uv_timer_t *t);
void session_timer_cb(uv_timer_t *t);
void session_check(struct synod_async *a);
void session_lost(struct synod_async *a, const char *why);
void session_on_closed(struct synod_async *a);
/* Bookkeeping when an op of this kind succeeded or failed. */
void session_on_result(struct synod_async *a, struct op *op, int status,
                       const Synod__Response *resp);
bool session_lock_was_lost(struct synod_async *a, const char *name,
                           uint64_t owner_id);
void session_free_tables(struct synod_async *a);
void observers_on_ready(struct synod_async *a);
void observers_report(struct synod_async *a, const Synod__ElectionInfo *pb);
int observer_add(struct synod_async *a, const char *name, synod_election_cb cb,
                 void *arg);
int observer_remove(struct synod_async *a, const char *name);
bool observer_active(struct synod_async *a, const char *name);
void observers_shutdown(struct synod_async *a);

/* subscribe.c */
/* Starts a subscription: copies o, checks it (SYNOD_EINVAL with
 * a->errmsg), and subscribes now or on the next live connection. On 0,
 * *out is the handle; start_cb (may be NULL) runs once the server first
 * confirms it, and end_cb once when it ends (never after an unsubscribe).
 * manual: the caller reports consumption with sub_consumed (otherwise a
 * message is consumed when msg_cb returns). A subscription not started
 * within start_timeout_ms (0: the request timeout) ends with
 * SYNOD_ETIMEDOUT, or SYNOD_ECONNECT when no replica could be reached. */
int sub_start(struct synod_async *a, const struct synod_subscribe_options *o,
              synod_channel_message_cb msg_cb, synod_subscription_end_cb end_cb,
              synod_subscription_start_cb start_cb, void *arg, bool manual,
              uint32_t start_timeout_ms, struct synod_async_subscription **out);
/* n messages delivered to a manual subscription were consumed: grant
 * credit back (in batches of half the window). */
void sub_consumed(struct synod_async *a, struct synod_async_subscription *s,
                  uint32_t n);
void subs_on_ready(struct synod_async *a);
void subs_on_conn_lost(struct synod_async *a);
void subs_on_delivery(struct synod_async *a, const Synod__ChannelDelivery *d);
void subs_on_key_delivery(struct synod_async *a,
                          const Synod__KeyWatchDelivery *d);
/* Puts s (its stream, position asked, window (0: the default) and
 * kind's callbacks filled) on the list with the rest, and subscribes now
 * if connected: sub_start's end, shared with key_watch_start. */
void sub_add(struct synod_async *a, struct synod_async_subscription *s,
             bool manual, synod_subscription_end_cb end_cb, void *arg,
             uint32_t start_timeout_ms);

/* watch.c: key watches, the start (the rest is subscribe.c's). As
 * sub_start, with key_cb for msg_cb and key_start_cb for start_cb. */
int key_watch_start(struct synod_async *a,
                    const struct synod_key_watch_options *o,
                    synod_key_events_cb key_cb,
                    synod_subscription_end_cb end_cb,
                    synod_key_watch_start_cb key_start_cb, void *arg,
                    bool manual, uint32_t start_timeout_ms,
                    struct synod_async_subscription **out);
/* e as the public struct; pointers borrow e. */
void key_event_from_pb(const Synod__KeyWatchEvent *e,
                       struct synod_key_event *out);
void subs_on_ended(struct synod_async *a, const Synod__SubscriptionEnded *e);
void subs_on_group_delivery(struct synod_async *a,
                            const Synod__GroupDelivery *d);
/* Starts a group subscription of `member` from offset `from` (>= 1),
 * as sub_start (items_cb for msg_cb, start for start_cb). A replica that
 * does not have the group or the offset yet (SYNOD_ENOTFOUND or
 * SYNOD_ERANGE before the start: it lags behind the one that answered
 * the join) is left for another, as a lagging one after the start is.
 * known_index: the log index of an item of the group the caller has (a
 * member's join), or 0 (see synod_async_subscription.known_index). */
/* synod_async_group_checkpoint_read of a group known at known_index (a
 * member's join): SYNOD_ENOTFOUND if the group of that name was created
 * after it (GroupCheckpointRead.known_index). */
int group_ckpt_read_start(struct synod_async *a, const char *group,
                          uint64_t known_index, synod_group_checkpoint_cb cb,
                          void *arg);
int group_sub_start(struct synod_async *a, const char *group,
                    const char *member, uint64_t from, uint64_t known_index,
                    uint32_t window, group_items_cb items_cb,
                    synod_subscription_end_cb end_cb, group_start_cb start,
                    void *arg, bool manual, uint32_t start_timeout_ms,
                    struct synod_async_subscription **out);
/* A group watch's arguments: 0, or SYNOD_EINVAL with errmsg. */
int group_watch_check(const char *group, const char *member, uint32_t window,
                      char *errmsg);
void subs_sweep(struct synod_async *a, uint64_t now);
void subs_shutdown(struct synod_async *a);

/* group_member.c: membership handles. group_member_start is
 * synod_async_group_member_join with manual consumption (reported with
 * group_member_consumed) and a bound on the ready callback
 * (ready_timeout_ms; 0: none but each step's own). */
int group_member_start(struct synod_async *a,
                       const struct synod_group_join_options *o,
                       const struct synod_group_callbacks *cbs, bool manual,
                       uint32_t ready_timeout_ms,
                       struct synod_async_group **out);
void group_member_consumed(struct synod_async_group *g, uint32_t n);
/* The session that held memberships ended: they end (SYNOD_ESESSION). */
void groups_on_session_lost(struct synod_async *a, uint64_t session_id,
                            const char *why);
/* Ends the handles whose state or ready bound passed. */
void groups_sweep(struct synod_async *a, uint64_t now);
/* The client closes: every handle ends (SYNOD_ESHUTDOWN) and is freed. */
void groups_shutdown(struct synod_async *a);

#endif
