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
  OP_KIND_COUNT
};

/* Mutating requests carry (session, sequence) and are applied once. */
bool op_kind_sequenced(enum op_kind kind);
/* Requests that cannot be sent before a session is open. */
bool op_kind_needs_session(enum op_kind kind);
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
};

/* Converts a successful Response for an op of `kind` into *out (which
 * then owns copies of every string). Returns 0, SYNOD_EMALFORMED (the
 * answer does not fit the request) or SYNOD_ENOMEM. Any thread. */
int result_from_response(enum op_kind kind, const Synod__Response *resp,
                         union synod_result *out, char *errmsg);
void result_free(enum op_kind kind, union synod_result *r);
int election_info_from_pb(const Synod__ElectionInfo *pb,
                          struct synod_election_info *out);

/* A connection to one endpoint. Freed once libuv closed the handle and
 * any getaddrinfo finished (refs == 0). */
struct conn {
  struct stream s; /* s.data = this */
  struct synod_async *a;
  uv_connect_t connect;
  uv_getaddrinfo_t gai;
  unsigned refs;
  bool has_tcp;
  bool ready; /* HelloReply received */
  bool dead;  /* closing or abandoned; nothing more is done with it */
  uint64_t hello_id;
  uint64_t last_rx_ms;
  struct endpoint ep;
  char address[ENDPOINT_HOST_MAX + 16];
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

struct synod_async {
  uv_loop_t *loop;
  struct synod_options opts; /* strings point to the copies below */
  char *client_name;
  struct endpoint endpoints[ENDPOINTS_MAX];
  size_t endpoints_n;
  size_t next_endpoint;
  /* Connection. leader_hint: where ENOTLEADER or an event said the leader
   * is; tried first by the next connect, forgotten when that fails. */
  struct conn *conn;
  char leader_hint[ENDPOINT_HOST_MAX + 16];
  char leader_name[ENDPOINT_HOST_MAX];
  uint64_t leader_term;
  unsigned connect_failures; /* in a row; reset by a HelloReply */
  unsigned redirects;        /* in a row; reset by an answer */
  bool ever_connected;
  char conn_error[SYNOD_ERRMSG_BYTES]; /* why the last attempt failed */
  uv_timer_t backoff_timer;            /* reconnect after a delay */
  uv_timer_t connect_timer;            /* connect + Hello must finish in time */
  uv_timer_t keepalive_timer;
  uv_timer_t session_timer; /* next jeopardy/lost transition */
  uv_timer_t sweep_timer;   /* request deadlines */
  unsigned handles_open;
  /* Requests: a circular list with `ops` as its sentinel. */
  struct op ops;
  uint64_t next_id;
  /* Session. Invariant: session_id != 0 iff state is OPEN or JEOPARDY;
   * inflight_sequenced counts ops holding a sequence of session_id. */
  enum synod_session_state session_state;
  bool session_opening;
  _Atomic uint64_t session_id;
  uint32_t ttl_ms;
  uint64_t base_ms; /* send time of the last acknowledged keepalive */
  uint64_t last_sequence;
  unsigned inflight_sequenced;
  struct op *keepalive; /* the outstanding keepalive, or NULL */
  uint64_t keepalive_sent_ms;
  struct held_lock *held;
  struct held_lock *lost; /* locks of lost sessions, for SYNOD_ELOST */
  size_t lost_count;
  struct observer *observers;
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
/* Drops the current connection (its unanswered ops will be resent) and
 * connects again after delay_ms. */
void engine_reconnect(struct synod_async *a, const char *why,
                      uint32_t delay_ms);
uint64_t engine_now(struct synod_async *a);

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

#endif
