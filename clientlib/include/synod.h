/* libsynod: the client library of synod, and the one list of error codes
 * that the server, the client library and the wire schema share. */
#ifndef SYNOD_H
#define SYNOD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Every fallible function in synod returns 0 or one of these codes.
 * The numbers are part of the wire protocol: proto/synod.proto's ErrorCode
 * mirrors this list and a unit test checks that they agree. Append only;
 * never renumber. */
#define SYNOD_ERRORS(X)                                                        \
  X(SYNOD_OK, 0, "success")                                                    \
  X(SYNOD_EINVAL, 1, "invalid argument")                                       \
  X(SYNOD_ENOMEM, 2, "out of memory")                                          \
  X(SYNOD_ERANGE, 3, "value out of range")                                     \
  X(SYNOD_ENOTFOUND, 4, "not found")                                           \
  X(SYNOD_EEXIST, 5, "already exists")                                         \
  X(SYNOD_ELIMIT, 6, "limit reached")                                          \
  X(SYNOD_ETOOBIG, 7, "too large")                                             \
  X(SYNOD_EMALFORMED, 8, "malformed message")                                  \
  X(SYNOD_ECORRUPT, 9, "corrupt data")                                         \
  X(SYNOD_EIO, 10, "I/O error")                                                \
  X(SYNOD_ENOSPACE, 11, "storage full")                                        \
  X(SYNOD_ECOMPACTED, 12, "entry compacted into a snapshot")                   \
  X(SYNOD_EUNAVAILABLE, 13, "entry not available yet")                         \
  X(SYNOD_ENOTLEADER, 14, "not the leader")                                    \
  X(SYNOD_ENOLEADER, 15, "no leader known")                                    \
  X(SYNOD_ETIMEDOUT, 16, "timed out")                                          \
  X(SYNOD_ESESSION, 17, "session expired or unknown")                          \
  X(SYNOD_ENOTHOLDER, 18, "not the lock holder")                               \
  X(SYNOD_ELOCKED, 19, "held by another owner")                                \
  X(SYNOD_EOVERFLOW, 20, "integer overflow")                                   \
  X(SYNOD_EPROTO, 21, "protocol version mismatch")                             \
  X(SYNOD_ECLOSED, 22, "connection closed")                                    \
  X(SYNOD_ESHUTDOWN, 23, "shutting down")                                      \
  X(SYNOD_EBUSY, 24, "busy, try again")                                        \
  X(SYNOD_ECANCELED, 25, "canceled")                                           \
  X(SYNOD_ESEQUENCE, 26, "request sequence too old")                           \
  X(SYNOD_ELOST, 27, "lock or session can no longer be trusted")               \
  X(SYNOD_ECONNECT, 28, "cannot connect to any endpoint")                      \
  X(SYNOD_ECONFIG, 29, "membership change in progress or not allowed")         \
  X(SYNOD_EINTERNAL, 30, "internal error")

enum synod_error {
#define SYNOD_ERROR_ENUM(name, num, text) name = num,
  SYNOD_ERRORS(SYNOD_ERROR_ENUM)
#undef SYNOD_ERROR_ENUM
};

/* Returns a static, human-readable text for an error code; unknown codes
 * give "unknown error". Never returns NULL. */
const char *synod_strerror(int code);

/* Returns the symbolic name of an error code ("SYNOD_ENOTFOUND"), or
 * "SYNOD_E?" for an unknown code. Never returns NULL. */
const char *synod_errname(int code);

/* ===================================================================
 * The client library.
 *
 * Two interfaces over one engine:
 *
 *  - struct synod_async runs on a libuv loop that the caller owns. Every
 *    function must be called on that loop's thread; results arrive through
 *    callbacks `(void *arg, int status, const <result> *)` on that thread.
 *    A function that takes a callback either returns an error (and never
 *    calls the callback) or returns 0 and calls the callback exactly once
 *    (libuv's rule). A result pointer is borrowed until the callback
 *    returns and is NULL when status != 0.
 *
 *  - struct synod_client runs a synod_async on a background thread with
 *    its own loop. Its functions block with a timeout and are THREAD-SAFE:
 *    any number of threads may call one synod_client at once. Results are
 *    written to caller-provided structs; those holding strings are freed
 *    with the matching synod_*_free.
 *
 * What the engine does for both:
 *  - keeps one connection. To make one it runs a round of attempts: the
 *    leader first (named by the last redirect, else last reported), then
 *    the endpoints from a random start (in order with endpoints_in_order),
 *    endpoints that were silent in the last 10 s last. An attempt gets
 *    connect_timeout_ms for the TCP connect and as long again for the
 *    HelloReply; if it has not succeeded after attempt_delay_ms the next
 *    endpoint is tried in parallel, and the first HelloReply wins (happy
 *    eyeballs), so a replica that accepts connections and never answers
 *    (stopped, hung) costs a new client attempt_delay_ms, not its
 *    request's timeout. It follows SYNOD_ENOTLEADER to the leader's
 *    address, backs off (50-200 ms while an election is on, then
 *    exponentially up to 5 s while no endpoint answers) and retries;
 *  - watches the connection: when a request (a keepalive included) has
 *    waited stall_timeout_ms/2 with nothing at all received, it sends a
 *    probe that any live replica answers at once; after stall_timeout_ms
 *    of silence the connection is dead, its endpoint is tried last for
 *    10 s, and its requests move to another replica. An idle connection
 *    of a session, an observer or a subscription is probed after
 *    5 x stall_timeout_ms without a frame;
 *  - what moves to the new connection: subscriptions (from where they
 *    were, see "Subscriptions"), reads (get, list, query, check,
 *    leader, observe, status), every write made in a session (lock,
 *    counter, election, channel, key and group calls, session close: they
 *    carry (session, sequence), so the server applies each exactly once
 *    however often it is sent), session open (a duplicate session the
 *    server may have opened is never used and expires after its TTL) and
 *    keepalives. A write without a session (member remove) that was
 *    written on a connection which then failed is not sent again: it
 *    fails at once with SYNOD_ETIMEDOUT, its outcome unknown. A request
 *    that runs out of time fails with SYNOD_ETIMEDOUT wherever it was:
 *    a write in a session may or may not have been applied (once, if it
 *    was);
 *  - opens a session lazily, for the first request that needs one, renews
 *    it every TTL/3 and gives every mutating request the session and a
 *    sequence number; a retry after a reconnect reuses the same pair, so
 *    the server applies it at most once. At most SYNOD_INFLIGHT_MAX
 *    mutating requests are in flight per session; more wait their turn;
 *  - fails closed: it keeps its own session deadline, the send time of
 *    the last acknowledged keepalive plus the TTL (minus a 5% guard for
 *    timer lateness). Past TTL/2 without an acknowledgement every held lock
 *    is reported in jeopardy; at the deadline every held lock is reported
 *    lost, which is before the server can expire the session (the server
 *    measures from when it applied that keepalive, after we sent it). The
 *    next request that needs a session opens a new one; requests that were
 *    sequenced in the lost session fail with SYNOD_ESESSION (their outcome
 *    is unknown) and releasing a lock of the lost session fails with
 *    SYNOD_ELOST. The reports come from the client's loop, as late as it
 *    runs; synod_session_valid_ms() reads the deadline against the clock
 *    at the call, for a check at the point of use of a lock (or of a
 *    leadership, which lives in the session too).
 * =================================================================== */

#define SYNOD_NAME_MAX 256 /* bytes of a lock/counter/election name */
#define SYNOD_ELECTION_VALUE_MAX 1024 /* bytes of a candidate's value */
#define SYNOD_INFLIGHT_MAX 32  /* mutating requests in flight per session */
#define SYNOD_ERRMSG_BYTES 256 /* room for one error message */
#define SYNOD_SESSION_TTL_DEFAULT_MS 10000
#define SYNOD_SESSION_TTL_MIN_MS 1000
#define SYNOD_SESSION_TTL_MAX_MS 300000
/* Defaults of struct synod_options (see there for the reasons). */
#define SYNOD_CONNECT_TIMEOUT_DEFAULT_MS 300
#define SYNOD_ATTEMPT_DELAY_DEFAULT_MS 50
#define SYNOD_STALL_TIMEOUT_DEFAULT_MS 1000
#define SYNOD_REQUEST_TIMEOUT_DEFAULT_MS 10000
/* Used when neither the options nor SYNOD_ENDPOINTS name the servers. */
#define SYNOD_ENDPOINTS_DEFAULT "127.0.0.1:7700,127.0.0.1:7710,127.0.0.1:7720"

/* Read flag: any replica may answer from its own applied state, which may
 * lag behind the leader. Without it, reads are linearizable. */
#define SYNOD_READ_STALE 1u
/* synod_status_ex: also return the state machine's digest. */
#define SYNOD_STATUS_DIGEST 2u

/* owner_id 0 in the blocking lock calls means "the calling thread" (its
 * kernel thread id). The async calls take the id as given. */
#define SYNOD_OWNER_THREAD 0

enum synod_session_state {
  SYNOD_SESSION_NONE = 0,     /* no session (yet, or after close) */
  SYNOD_SESSION_OPEN = 1,     /* renewed in time */
  SYNOD_SESSION_JEOPARDY = 2, /* no renewal acknowledged for TTL/2 */
  SYNOD_SESSION_LOST = 3      /* deadline passed or the server expired it */
};

enum synod_lock_event {
  SYNOD_LOCK_JEOPARDY = 1, /* session in jeopardy: stop starting new work */
  SYNOD_LOCK_SAFE = 2,     /* the session was renewed again after jeopardy */
  SYNOD_LOCK_LOST = 3      /* no longer held: stop using the resource now */
};

/* ------------------------------------------------------------- results */

struct synod_lock_grant {
  uint64_t token;      /* fencing token; grows with every new grant */
  uint32_t hold_count; /* > 1 when reentered by the same owner */
};

struct synod_lock_info {
  bool held;
  uint64_t session_id;
  uint64_t owner_id;
  uint64_t token;
  uint32_t hold_count;
  uint32_t waiters;
};

struct synod_lock_check {
  bool current;           /* the token is the lock's current grant */
  uint64_t current_token; /* 0 when the lock is free */
};

struct synod_counter_cas {
  bool swapped;
  int64_t value; /* the value after the operation */
};

struct synod_counter_entry {
  char *name;
  int64_t value;
};

/* Owns its entries; free with synod_counter_list_free. */
struct synod_counter_list {
  struct synod_counter_entry *entries;
  size_t count;
  bool more; /* more names follow the last one: ask again after it */
};

/* Owns name and value; free with synod_election_info_free. value has
 * value_len bytes plus a terminating NUL (values are usually text). */
struct synod_election_info {
  char *name;
  bool has_leader;
  uint8_t *value;
  size_t value_len;
  uint64_t session_id; /* the leader's session */
  uint64_t revision;   /* log index at which this leader took office */
  uint32_t candidates;
};

/* Free with synod_election_campaign_free. */
struct synod_election_campaign {
  bool leader; /* this candidate leads now */
  struct synod_election_info info;
};

struct synod_member {
  char *name;
  char *peer_address;
  char *client_address;
  bool voter;
  char *role; /* leader, follower, candidate, learner */
  uint64_t match_index;
};

/* The answering replica's view. Free with synod_status_free. */
struct synod_status {
  char *name;
  char *role;
  uint64_t term;
  char *leader_name;
  uint64_t commit_index;
  uint64_t applied_index;
  uint64_t last_index;
  uint64_t snapshot_index;
  uint64_t snapshot_bytes;
  /* Since the replica started: log writes that went to disk (one sync
   * each) and the entries they carried; their ratio is the group commit. */
  uint64_t log_syncs;
  uint64_t log_synced_entries;
  /* With SYNOD_STATUS_DIGEST: a digest of the state machine at
   * applied_index; two replicas at one applied index must agree. */
  uint64_t digest;
  struct synod_member *members;
  size_t members_count;
  char *version;
};

/* Destructors: free what the struct owns and zero it. They accept a
 * zeroed struct and NULL. */
void synod_counter_list_free(struct synod_counter_list *l);
void synod_election_info_free(struct synod_election_info *info);
void synod_election_campaign_free(struct synod_election_campaign *c);
void synod_status_free(struct synod_status *s);

/* ----------------------------------------------------------- callbacks */

/* Every lock this client holds gets JEOPARDY, then SAFE or LOST. name is
 * borrowed for the call. On LOST, stop using the resource at once: the
 * server may grant the lock to someone else after the TTL and lock delay. */
typedef void (*synod_lock_event_cb)(void *arg, enum synod_lock_event event,
                                    const char *name, uint64_t owner_id,
                                    uint64_t token);

/* The session changed state (OPEN, JEOPARDY, LOST, NONE after close). */
typedef void (*synod_session_cb)(void *arg, enum synod_session_state state,
                                 uint64_t session_id);

/* The cluster reported a new leader (a LeaderChanged event, a HelloReply
 * or a redirect). Strings are borrowed for the call; address may be "". */
typedef void (*synod_leader_cb)(void *arg, const char *leader_name,
                                const char *leader_address, uint64_t term);

/* An observed election changed (see *_election_observe). */
typedef void (*synod_election_cb)(void *arg, int status,
                                  const struct synod_election_info *info);

/* ------------------------------------------------------------- options */

struct synod_options {
  /* "host:port,host:port" ("[::1]:7700" for IPv6). NULL: the environment
   * variable SYNOD_ENDPOINTS, else SYNOD_ENDPOINTS_DEFAULT. */
  const char *endpoints;
  const char *client_name; /* for the servers' logs; NULL: "libsynod" */
  uint32_t session_ttl_ms; /* 0: 10 s; 1 s .. 5 min */
  /* One connection attempt: the TCP connect, and then the HelloReply,
   * each get this long before the endpoint counts as silent. 0: 300 ms
   * (a replica answers Hello from its loop, without the disk, in well
   * under a millisecond on a LAN). Never more than a third of
   * request_timeout_ms, so a silent endpoint leaves time for the others. */
  uint32_t connect_timeout_ms;
  /* Start an attempt to the next endpoint, in parallel, when the current
   * one has not succeeded after this long; the first to answer wins.
   * 0: 50 ms: more than ten times a loaded replica's Hello latency on a
   * LAN, and what a silent replica costs a client that starts there (a
   * short-lived process such as synodctl, one in three times with three
   * replicas). Never more than the above. */
  uint32_t attempt_delay_ms;
  /* A connection on which a request waited this long with nothing
   * received is dead and its requests go to another replica (a probe at
   * half of it tells a slow replica from a silent one). 0: 1 s, the
   * server's longest default election timeout (20 ticks of 50 ms): if
   * the silent replica led, no other can lead sooner anyway. Never more
   * than half of request_timeout_ms or a quarter of the session TTL. */
  uint32_t stall_timeout_ms;
  uint32_t request_timeout_ms; /* default per request; 0: 10 s */
  /* Try the endpoints in the order given (the first one first) instead
   * of from a random one: for a preferred (nearby) replica, and tests. */
  bool endpoints_in_order;
  /* Stay on the replica connected to instead of following the leader:
   * that replica forwards this client's writes (and linearizable reads)
   * to the leader over its peer link and answers them. Its streams
   * (subscriptions, key watches, group streams) then stay where the
   * client connected, so the clients of an application spread the
   * deliveries over the replicas instead of all landing on the leader;
   * each write costs one more hop. A lock acquire, which may wait in its
   * queue, still moves the client to the leader, and so does a forwarded
   * write whose outcome was left unknown (a leader change, the link to the
   * leader down, no answer in 5 s): it is sent again to the leader,
   * applied once by its session sequence. A reconnect goes where the
   * endpoints say, not to the leader last reported. */
  bool stay_on_replica;
  uint32_t lock_delay_ms; /* sent with every lock acquire; 0: none */
  /* Optional notifications. For a synod_client they run on its background
   * thread: they must not block and must not call the blocking API of the
   * same client (that fails with SYNOD_EINVAL). */
  synod_lock_event_cb lock_cb;
  synod_session_cb session_cb;
  synod_leader_cb leader_cb;
  synod_election_cb election_cb; /* synod_client's observed elections */
  void *cb_arg;                  /* passed to every callback above */
};

/* Fills *opts with the defaults (all zero/NULL). */
void synod_options_init(struct synod_options *opts);

/* ======================================================= async interface */

struct synod_async;
struct uv_loop_s;

typedef void (*synod_async_close_cb)(void *arg);
typedef void (*synod_lock_acquire_cb)(void *arg, int status,
                                      const struct synod_lock_grant *grant);
/* *hold_count: how many holds remain; 0 = released. */
typedef void (*synod_lock_release_cb)(void *arg, int status,
                                      const uint32_t *hold_count);
typedef void (*synod_lock_query_cb)(void *arg, int status,
                                    const struct synod_lock_info *info);
typedef void (*synod_lock_check_cb)(void *arg, int status,
                                    const struct synod_lock_check *check);
typedef void (*synod_counter_cb)(void *arg, int status, const int64_t *value);
typedef void (*synod_counter_cas_cb)(void *arg, int status,
                                     const struct synod_counter_cas *cas);
typedef void (*synod_counter_delete_cb)(void *arg, int status,
                                        const bool *existed);
typedef void (*synod_counter_list_cb)(void *arg, int status,
                                      const struct synod_counter_list *list);
typedef void (*synod_election_campaign_cb)(
    void *arg, int status, const struct synod_election_campaign *campaign);
typedef void (*synod_status_cb)(void *arg, int status,
                                const struct synod_status *st);

/* Creates a client bound to `loop` (which the caller runs and which must
 * outlive the client). Copies everything in opts. Connects lazily, on the
 * first request. Returns 0 and *out, SYNOD_EINVAL (bad endpoints, TTL out
 * of bounds; synod_async_last_errmsg says which) or SYNOD_ENOMEM. */
int synod_async_new(struct uv_loop_s *loop, const struct synod_options *opts,
                    struct synod_async **out);

/* Ends the session (SessionClose, bounded by 2 s, so the server releases
 * this client's locks and candidacies at once), fails every outstanding
 * request with SYNOD_ESHUTDOWN, closes the handles and frees the client;
 * then calls cb (may be NULL). The loop must keep running until then. No
 * other call on `a` is allowed after this one. */
void synod_async_close(struct synod_async *a, synod_async_close_cb cb,
                       void *arg);

/* The current session id, 0 if none. Safe to call from any thread. */
uint64_t synod_async_session_id(const struct synod_async *a);

enum synod_session_state synod_async_session_state(const struct synod_async *a);

/* How many milliseconds the current session (and every lock it holds) is
 * certain to stay valid from now: its fail-closed deadline less the
 * monotonic clock read by this call; 0 with no session or once the
 * deadline has passed. It reads the clock, not the loop's timers, so a
 * loop held up (a stalled process, a long callback) cannot make it late,
 * as it can the SYNOD_LOCK_LOST report. Check it at the point of use,
 * right before touching what a lock guards; the lock's fencing token
 * covers whatever delay still follows. Safe to call from any thread. */
uint64_t synod_async_session_valid_ms(const struct synod_async *a);

/* The message that goes with the status of the callback now running (or
 * of the last synod_async_new failure): the server's text, or ours. Valid
 * until the callback returns. Never NULL. */
const char *synod_async_last_errmsg(const struct synod_async *a);

/* Lock calls. name: 1..SYNOD_NAME_MAX bytes. Errors returned directly:
 * SYNOD_EINVAL (bad name), SYNOD_ENOMEM, SYNOD_ESHUTDOWN (closing).
 * Through the callback: the server's error (SYNOD_ELOCKED for a try on a
 * held lock, SYNOD_ETIMEDOUT when not granted within timeout_ms,
 * SYNOD_ESESSION when the session was lost meanwhile), or SYNOD_ETIMEDOUT
 * when no answer came within timeout_ms + request_timeout_ms. A grant
 * that arrives after the callback was told SYNOD_ETIMEDOUT is released by
 * the library. */
int synod_async_lock_acquire(struct synod_async *a, const char *name,
                             uint64_t owner_id, uint32_t timeout_ms,
                             synod_lock_acquire_cb cb, void *arg);

/* Releases one hold. Returns SYNOD_ELOST directly (no callback) for a lock
 * that this client held in a session that was lost. Callback errors:
 * SYNOD_ENOTHOLDER. */
int synod_async_lock_release(struct synod_async *a, const char *name,
                             uint64_t owner_id, synod_lock_release_cb cb,
                             void *arg);

/* flags: 0 or SYNOD_READ_STALE. */
int synod_async_lock_query(struct synod_async *a, const char *name,
                           unsigned flags, synod_lock_query_cb cb, void *arg);
int synod_async_lock_check(struct synod_async *a, const char *name,
                           uint64_t token, unsigned flags,
                           synod_lock_check_cb cb, void *arg);

/* Counter calls. Callback errors: SYNOD_EOVERFLOW (add, nothing changed).
 * get/set/add report the value after the operation, get_add the value
 * before it. */
int synod_async_counter_get(struct synod_async *a, const char *name,
                            unsigned flags, synod_counter_cb cb, void *arg);
int synod_async_counter_set(struct synod_async *a, const char *name,
                            int64_t value, synod_counter_cb cb, void *arg);
int synod_async_counter_cas(struct synod_async *a, const char *name,
                            int64_t expect, int64_t update,
                            synod_counter_cas_cb cb, void *arg);
int synod_async_counter_add(struct synod_async *a, const char *name,
                            int64_t delta, synod_counter_cb cb, void *arg);
int synod_async_counter_get_add(struct synod_async *a, const char *name,
                                int64_t delta, synod_counter_cb cb, void *arg);
int synod_async_counter_delete(struct synod_async *a, const char *name,
                               synod_counter_delete_cb cb, void *arg);
/* prefix and start_after may be NULL (""); limit 0 = the server's maximum. */
int synod_async_counter_list(struct synod_async *a, const char *prefix,
                             const char *start_after, uint32_t limit,
                             unsigned flags, synod_counter_list_cb cb,
                             void *arg);

/* Election calls. value: at most SYNOD_ELECTION_VALUE_MAX bytes (copied). */
int synod_async_election_campaign(struct synod_async *a, const char *name,
                                  const void *value, size_t value_len,
                                  synod_election_campaign_cb cb, void *arg);
int synod_async_election_resign(struct synod_async *a, const char *name,
                                synod_election_cb cb, void *arg);
int synod_async_election_leader(struct synod_async *a, const char *name,
                                unsigned flags, synod_election_cb cb,
                                void *arg);

/* Calls cb with the current leader, then again on every change, in
 * order, until synod_async_election_unobserve (or close: one last call
 * with SYNOD_ESHUTDOWN). After a reconnect the library observes again and
 * reports the current leader if it changed meanwhile. One observer per
 * name: SYNOD_EEXIST if `name` is already observed. */
int synod_async_election_observe(struct synod_async *a, const char *name,
                                 synod_election_cb cb, void *arg);
/* Stops observing; cb is not called again. SYNOD_ENOTFOUND if not
 * observed. */
int synod_async_election_unobserve(struct synod_async *a, const char *name);

/* The status of whichever replica the client is connected to. */
int synod_async_status(struct synod_async *a, synod_status_cb cb, void *arg);

/* A call with no result but its status. */
typedef void (*synod_done_cb)(void *arg, int status);

/* Removes the replica named `name` from the membership (an operator's
 * action: a replica that only crashed stays a voter until removed). The
 * leader answers once the new configuration is committed. Errors:
 * SYNOD_ENOTFOUND (no member of that name), SYNOD_ECONFIG (another change
 * is in progress, or it is the last voter: retry or give up). */
int synod_async_member_remove(struct synod_async *a, const char *name,
                              synod_done_cb cb, void *arg);

/* ==================================================== blocking interface */

struct synod_client;

/* Starts the background thread (with every signal blocked, so signals go
 * to the application's threads). Connects lazily. Returns 0 and *out,
 * SYNOD_EINVAL (bad options; synod_client_errmsg says why), SYNOD_ENOMEM
 * or SYNOD_EINTERNAL (thread or loop creation failed). */
int synod_client_new(const struct synod_options *opts,
                     struct synod_client **out);

/* Closes the session (bounded by 2 s), fails calls still waiting with
 * SYNOD_ESHUTDOWN, stops the thread and frees everything. No call on `c`
 * may start after this one begins. Accepts NULL. */
void synod_client_free(struct synod_client *c);

/* The message of the last failed call made by the calling thread on any
 * synod_client ("" if none): the server's text or the library's. Points
 * to thread-local storage, valid until this thread's next call. */
const char *synod_client_errmsg(void);

/* Every blocking call below:
 *  - may be called from any thread, concurrently;
 *  - waits at most timeout_ms (0 = the client's request_timeout_ms) for
 *    the answer, reconnecting and retrying meanwhile (what is retried:
 *    see "What the engine does" above); on SYNOD_ETIMEDOUT a mutating
 *    request may or may not have been applied (exactly once if it was);
 *  - returns 0 or a SYNOD_E* code, and fills the out parameter only on
 *    success (out parameters marked "may be NULL" are optional);
 *  - returns SYNOD_EINVAL when called from one of this client's own
 *    callbacks (that would deadlock), SYNOD_ESHUTDOWN once freeing began,
 *    SYNOD_ECONNECT when no endpoint could be reached in time. */

/* Opens the session now if there is none; *session_id may be NULL. */
int synod_session_open(struct synod_client *c, uint32_t timeout_ms,
                       uint64_t *session_id);
/* The current session id, or 0. Does not block. */
uint64_t synod_session_id(struct synod_client *c);
/* synod_async_session_valid_ms() of the client's loop: how long its
 * session and locks are certain to stay valid, 0 if not at all. Does not
 * block; check it right before each use of a locked resource. */
uint64_t synod_session_valid_ms(struct synod_client *c);

/* Waits up to timeout_ms (0 = request_timeout_ms) in the lock's FIFO
 * queue. owner_id SYNOD_OWNER_THREAD = the calling thread. Errors:
 * SYNOD_ETIMEDOUT (not granted in time), SYNOD_ESESSION. */
int synod_lock_acquire(struct synod_client *c, const char *name,
                       uint64_t owner_id, uint32_t timeout_ms,
                       struct synod_lock_grant *grant);
/* Takes the lock only if free (or already ours): SYNOD_ELOCKED if held by
 * another owner. */
int synod_lock_try(struct synod_client *c, const char *name, uint64_t owner_id,
                   struct synod_lock_grant *grant);
/* Errors: SYNOD_ENOTHOLDER, SYNOD_ELOST (the lock was lost with its
 * session). hold_count may be NULL. */
int synod_lock_release(struct synod_client *c, const char *name,
                       uint64_t owner_id, uint32_t timeout_ms,
                       uint32_t *hold_count);
int synod_lock_query(struct synod_client *c, const char *name, unsigned flags,
                     uint32_t timeout_ms, struct synod_lock_info *info);
int synod_lock_check(struct synod_client *c, const char *name, uint64_t token,
                     unsigned flags, uint32_t timeout_ms,
                     struct synod_lock_check *check);

/* Counters. value/previous/out/existed may be NULL where noted. */
int synod_counter_get(struct synod_client *c, const char *name, unsigned flags,
                      uint32_t timeout_ms, int64_t *value);
int synod_counter_set(struct synod_client *c, const char *name, int64_t value,
                      uint32_t timeout_ms);
int synod_counter_cas(struct synod_client *c, const char *name, int64_t expect,
                      int64_t update, uint32_t timeout_ms,
                      struct synod_counter_cas *out);
/* *value (may be NULL) = the value after adding. SYNOD_EOVERFLOW. */
int synod_counter_add(struct synod_client *c, const char *name, int64_t delta,
                      uint32_t timeout_ms, int64_t *value);
/* *previous (may be NULL) = the value before adding. SYNOD_EOVERFLOW. */
int synod_counter_get_add(struct synod_client *c, const char *name,
                          int64_t delta, uint32_t timeout_ms,
                          int64_t *previous);
/* existed may be NULL. */
int synod_counter_delete(struct synod_client *c, const char *name,
                         uint32_t timeout_ms, bool *existed);
int synod_counter_list(struct synod_client *c, const char *prefix,
                       const char *start_after, uint32_t limit, unsigned flags,
                       uint32_t timeout_ms, struct synod_counter_list *list);

/* Elections. Campaigning does not wait to lead: out->leader says whether
 * this candidate leads now; observe the election to learn when it does. */
int synod_election_campaign(struct synod_client *c, const char *name,
                            const void *value, size_t value_len,
                            uint32_t timeout_ms,
                            struct synod_election_campaign *out);
/* info (may be NULL) = the leader after resigning. */
int synod_election_resign(struct synod_client *c, const char *name,
                          uint32_t timeout_ms,
                          struct synod_election_info *info);
int synod_election_leader(struct synod_client *c, const char *name,
                          unsigned flags, uint32_t timeout_ms,
                          struct synod_election_info *info);
/* Fills *info (may be NULL) with the current leader, then reports every
 * change to opts.election_cb (on the background thread) until
 * synod_election_unobserve. SYNOD_EEXIST if already observed. */
int synod_election_observe(struct synod_client *c, const char *name,
                           uint32_t timeout_ms,
                           struct synod_election_info *info);
int synod_election_unobserve(struct synod_client *c, const char *name);

/* The status of whichever replica answers (any replica may). */
int synod_status(struct synod_client *c, uint32_t timeout_ms,
                 struct synod_status *st);

/* synod_status with flags: 0 or SYNOD_STATUS_DIGEST. */
int synod_status_ex(struct synod_client *c, unsigned flags, uint32_t timeout_ms,
                    struct synod_status *st);

/* Blocking synod_async_member_remove. */
int synod_member_remove(struct synod_client *c, const char *name,
                        uint32_t timeout_ms);

/* ------------------------------------------------------------ channels
 *
 * Ordered, durable messages. A channel is a name (UTF-8, 1..256 bytes),
 * created on first publish with the defaults or by synod_channel_create
 * with its limits. Each message gets an offset (dense, from 1, per
 * channel) and the log index of the entry that appended it: the cluster's
 * one total order. Publishes are acknowledged once committed on a
 * majority and, carried in the client's session, applied exactly once
 * however often a failover makes the library send them. Reads are
 * linearizable unless flags has SYNOD_READ_STALE.
 *
 * A subscription pushes a channel's messages (or, with a prefix, those of
 * every channel whose name starts with it, in the cluster's total order)
 * as they are committed, from the replica the client is connected to,
 * follower or leader; see "Subscriptions" below. Durable cursors keep a
 * consumer's position in the cluster. Over HTTP: README.md, "HTTP". */

/* Zero in any field means the server's default. */
struct synod_channel_limits {
  uint64_t max_messages;      /* retained [1,000,000] */
  uint64_t max_bytes;         /* retained payload [64 MiB] */
  uint64_t max_age_ms;        /* cluster time [0: none] */
  uint32_t max_message_bytes; /* [256 KiB; at most 1,000,000] */
  bool refuse_when_full;      /* refuse publishes, not drop the oldest */
};

struct synod_channel_info {
  char *name;
  struct synod_channel_limits limits; /* resolved: no zero default */
  uint64_t first_offset;              /* the oldest retained */
  uint64_t next_offset;               /* the next publish's */
  uint64_t messages;
  uint64_t bytes;
  uint64_t subscribers; /* subscriptions on the replica that answered */
  uint32_t cursors;     /* durable cursors of the channel */
};
void synod_channel_info_free(struct synod_channel_info *info);

struct synod_channel_published {
  uint64_t first_offset;
  uint64_t last_offset;
  uint64_t index; /* the log index: the total order */
  bool duplicate; /* an earlier publish with the same message id */
};

struct synod_channel_message {
  uint64_t offset;
  uint64_t index;
  uint64_t time_ms; /* cluster time of the publish */
  void *data;       /* owned by the enclosing synod_channel_messages */
  size_t len;
  /* A subscription's messages: the channel (for a prefix, the one this
   * message is in); borrowed like data. NULL in a read's messages. */
  const char *channel;
};

struct synod_channel_messages {
  struct synod_channel_message *messages;
  size_t count;
  uint64_t first_offset; /* the oldest retained */
  uint64_t next_offset;  /* the next publish's */
};
void synod_channel_messages_free(struct synod_channel_messages *m);

struct synod_channel_list {
  struct synod_channel_info *channels;
  size_t count;
  bool more; /* call again with the last name as `after` */
};
void synod_channel_list_free(struct synod_channel_list *l);

/* Creates a channel with limits (NULL: the defaults). Creating one that
 * exists with the same limits succeeds; with others, SYNOD_EEXIST. Limits
 * over the server's caps: SYNOD_ERANGE. `out` may be NULL. */
int synod_channel_create(struct synod_client *c, const char *name,
                         const struct synod_channel_limits *limits,
                         uint32_t timeout_ms, struct synod_channel_info *out);

/* Publishes n messages (1..1000) atomically at consecutive offsets.
 * message_id (NULL or "") is deduplicated by the server within the
 * channel's last 4,096 ids and 10 minutes: a second publish with the
 * same id appends nothing and answers the first one's offsets
 * (out->duplicate). Errors: SYNOD_ETOOBIG (a message over the channel's
 * max_message_bytes), SYNOD_ELIMIT (the channel refuses when full, or the
 * messages cannot fit at all), SYNOD_EINVAL; SYNOD_ETIMEDOUT with the
 * outcome unknown (a retry in the same session is still exactly-once).
 * `out` may be NULL. */
int synod_channel_publish(struct synod_client *c, const char *name,
                          const void *const *messages, const size_t *lens,
                          size_t n, const char *message_id, uint32_t timeout_ms,
                          struct synod_channel_published *out);

/* Retained messages from offset `from` (0: the oldest retained), at most
 * `max` (0: 1,000) and about 1 MiB. A channel nobody published to reads
 * as empty with next_offset 1. SYNOD_ECOMPACTED when `from` is below the
 * oldest retained (synod_client_errmsg names it; synod_channel_info gives
 * first_offset); SYNOD_ERANGE past next_offset. Free *out with
 * synod_channel_messages_free. */
int synod_channel_read(struct synod_client *c, const char *name, uint64_t from,
                       uint32_t max, unsigned flags, uint32_t timeout_ms,
                       struct synod_channel_messages *out);
/* synod_channel_read of a channel read before, page by page: known_index
 * is the log index of a message already read from it (the last one's
 * `index`). Offsets start again at 1 in a channel deleted and created
 * again, so the next page of the one read might otherwise come from
 * another: SYNOD_ENOTFOUND instead when the channel of that name was
 * created after known_index, or is gone (the message says which). A
 * stale read (SYNOD_READ_STALE) from a replica that has not applied
 * known_index yet gets SYNOD_EUNAVAILABLE: it cannot tell; retry. 0: not
 * pinned, as synod_channel_read. A server of a build older than this
 * library ignores the pin (it reads as synod_channel_read). */
int synod_channel_read_pinned(struct synod_client *c, const char *name,
                              uint64_t from, uint32_t max, unsigned flags,
                              uint64_t known_index, uint32_t timeout_ms,
                              struct synod_channel_messages *out);

/* SYNOD_ENOTFOUND for a channel that does not exist. */
int synod_channel_info(struct synod_client *c, const char *name, unsigned flags,
                       uint32_t timeout_ms, struct synod_channel_info *out);

/* Channels in name order after `after` (NULL: from the first), at most
 * `limit` (0: 1,000). */
int synod_channel_list(struct synod_client *c, const char *after,
                       uint32_t limit, unsigned flags, uint32_t timeout_ms,
                       struct synod_channel_list *out);

/* Deletes a channel and its messages; *out (may be NULL) is the channel
 * as it was. SYNOD_ENOTFOUND if there is none. */
int synod_channel_delete(struct synod_client *c, const char *name,
                         uint32_t timeout_ms, struct synod_channel_info *out);

/* The channel calls on a synod_async, with the contracts of the blocking
 * ones above and the async rules (callbacks on the loop's thread, exactly
 * once when the call returned 0; the result borrowed until the callback
 * returns and NULL when status != 0). Each copies its arguments (names,
 * limits, the messages) before it returns. Errors returned directly:
 * SYNOD_EINVAL (a bad name; publish: n outside 1..1000), SYNOD_ENOMEM,
 * SYNOD_ESHUTDOWN (closing); the message is in synod_async_last_errmsg.
 * A publish is a write in the client's session, applied exactly once
 * however often a failover makes the library send it; SYNOD_ETIMEDOUT
 * after request_timeout_ms leaves its outcome unknown. Any number of
 * publishes may be outstanding: SYNOD_INFLIGHT_MAX of the session's
 * writes are in flight, the others wait their turn in the library. */
typedef void (*synod_channel_info_cb)(void *arg, int status,
                                      const struct synod_channel_info *info);
typedef void (*synod_channel_published_cb)(
    void *arg, int status, const struct synod_channel_published *published);
typedef void (*synod_channel_messages_cb)(
    void *arg, int status, const struct synod_channel_messages *messages);
typedef void (*synod_channel_list_cb)(void *arg, int status,
                                      const struct synod_channel_list *list);

/* limits may be NULL (the defaults). */
int synod_async_channel_create(struct synod_async *a, const char *name,
                               const struct synod_channel_limits *limits,
                               synod_channel_info_cb cb, void *arg);
/* messages[i] has lens[i] bytes, i < n; message_id may be NULL. */
int synod_async_channel_publish(struct synod_async *a, const char *name,
                                const void *const *messages, const size_t *lens,
                                size_t n, const char *message_id,
                                synod_channel_published_cb cb, void *arg);
int synod_async_channel_read(struct synod_async *a, const char *name,
                             uint64_t from, uint32_t max, unsigned flags,
                             synod_channel_messages_cb cb, void *arg);
int synod_async_channel_read_pinned(struct synod_async *a, const char *name,
                                    uint64_t from, uint32_t max, unsigned flags,
                                    uint64_t known_index,
                                    synod_channel_messages_cb cb, void *arg);
int synod_async_channel_info(struct synod_async *a, const char *name,
                             unsigned flags, synod_channel_info_cb cb,
                             void *arg);
/* after may be NULL (from the first name). */
int synod_async_channel_list(struct synod_async *a, const char *after,
                             uint32_t limit, unsigned flags,
                             synod_channel_list_cb cb, void *arg);
int synod_async_channel_delete(struct synod_async *a, const char *name,
                               synod_channel_info_cb cb, void *arg);

/* ------------------------------------------------------- subscriptions
 *
 * A subscription delivers messages in order, each once: one channel's
 * in offset order from a start, or (prefix) those of every channel whose
 * name starts with the prefix in log index order, which every prefix
 * subscriber sees interleaved the same way. First the retained messages
 * from the start, then each new one as soon as the replica has applied it.
 *
 * Resumption. The library remembers the last position it delivered (one
 * channel: the offset; prefix: the log index and offset) and, after a
 * disconnect, a failover or a restart of the replica it was on, subscribes
 * again on the next live connection from just after it, on whichever
 * replica that is (any replica serves subscriptions; they are never
 * redirected to the leader). The application sees no gap and no
 * duplicate: anything delivered again is dropped, and a gap (a server
 * bug) ends the subscription with SYNOD_EINTERNAL rather than being
 * passed on. A connection that stays silent is left after
 * 5 x stall_timeout_ms (probed, then stall_timeout_ms more), so a
 * subscriber on a dead replica moves on.
 *
 * A subscription ends, through its end callback or the blocking
 * synod_subscription_next, only when going on would break that promise
 * or cannot succeed anywhere:
 *  - SYNOD_ECOMPACTED: its next message was evicted by the channel's
 *    retention before it was delivered (a subscriber too slow, or away
 *    too long); first_available is the first offset still retained (for
 *    a prefix: the log index to resume after). Never a silent skip:
 *    subscribe again from there if that will do;
 *  - SYNOD_ENOTFOUND: the channel was deleted, or a cursor asked for
 *    with SYNOD_FROM_DEFAULT does not exist;
 *  - SYNOD_ELIMIT: a prefix that matches more than 1,024 channels;
 *  - SYNOD_EINVAL and other refusals of the start; SYNOD_EINTERNAL (a
 *    gap); SYNOD_ESHUTDOWN (the client is closing);
 *  - before it first started only: SYNOD_ETIMEDOUT or SYNOD_ECONNECT
 *    when it could not be started in time.
 * A replica that stops (SYNOD_ESHUTDOWN from the server) or has known no
 * leader for a while (SYNOD_ENOLEADER: it may be cut off from the
 * majority) ends nothing: the library moves to another replica.
 *
 * Flow control. At most `window` messages are delivered and not yet
 * consumed: the server sends that many, and the library grants more
 * credit each time half the window has been consumed. Async: a message
 * is consumed when its callback returns. Blocking: when the application
 * takes it with synod_subscription_next, so a slow application holds at
 * most `window` messages in the library's queue, and the server keeps
 * the rest (retained, within the channel's limits). */

#define SYNOD_SUBSCRIBE_WINDOW_DEFAULT 1000
#define SYNOD_SUBSCRIBE_WINDOW_MAX 1000000
/* synod_subscription_next: wait until a message comes or it ends. */
#define SYNOD_WAIT_FOREVER UINT32_MAX

/* Where a subscription starts (the numbers are the wire protocol's). */
enum synod_subscribe_from {
  /* With a cursor: after it, and SYNOD_ENOTFOUND if it does not exist.
   * Without: SYNOD_FROM_NEXT. */
  SYNOD_FROM_DEFAULT = 0,
  /* One channel: at `offset` (>= 1). Prefix: after log index
   * `after_index` (0: from the first retained of each channel). */
  SYNOD_FROM_OFFSET = 1,
  SYNOD_FROM_FIRST = 2, /* the first retained */
  /* The first message published after the subscription started: every
   * publish acknowledged before synod_subscribe returned (or start_cb
   * ran) is before it. */
  SYNOD_FROM_NEXT = 3
};

struct synod_subscribe_options {
  /* A channel's name (1..256 bytes) or, with prefix, the start of the
   * names of the channels to deliver (NULL or "": every channel). */
  const char *channel;
  bool prefix;
  enum synod_subscribe_from from;
  uint64_t offset;      /* SYNOD_FROM_OFFSET, one channel */
  uint64_t after_index; /* SYNOD_FROM_OFFSET, prefix */
  /* One channel only (NULL: none): start after this durable cursor's
   * offset; when it does not exist, `from` says where instead
   * (SYNOD_FROM_DEFAULT: SYNOD_ENOTFOUND). Only the start reads it: the
   * library commits nothing (see synod_channel_cursor_commit). */
  const char *cursor;
  /* Messages delivered and not yet consumed, at most. 0: 1,000; at most
   * SYNOD_SUBSCRIBE_WINDOW_MAX. */
  uint32_t window;
};

/* Where a subscription started, as the server confirmed it. */
struct synod_subscription_start {
  uint64_t offset; /* one channel: the first offset it delivers */
  /* Prefix: it delivers what comes after log index after_index and, of
   * that index's batch, after channel offset after_offset (0: all). */
  uint64_t after_index;
  uint64_t after_offset;
  uint64_t first_offset; /* the channel's oldest retained then (one channel) */
  uint64_t next_offset;  /* the channel's next publish's offset then */
};

/* One message. msg and everything it points to are borrowed until the
 * callback returns; data is not NUL-terminated. */
typedef void (*synod_channel_message_cb)(
    void *arg, const struct synod_channel_message *msg);
/* The subscription ended (see above): status, the message that says why
 * (borrowed for the call), and with SYNOD_ECOMPACTED the first position
 * still retained (an offset; for a prefix, the log index to resume after;
 * else 0). The handle is freed when this returns. */
typedef void (*synod_subscription_end_cb)(void *arg, int status,
                                          const char *errmsg,
                                          uint64_t first_available);
/* The server confirmed the start (once; resumptions are not reported). */
typedef void (*synod_subscription_start_cb)(
    void *arg, const struct synod_subscription_start *start);

struct synod_async_subscription;

/* Async. Subscribes now if connected, else on the next connection.
 * Returns 0 and *out, SYNOD_EINVAL (bad name or options; the message is
 * in synod_async_last_errmsg), SYNOD_ENOMEM or SYNOD_ESHUTDOWN. Then
 * calls start_cb (may be NULL) once, message_cb for every message, and
 * end_cb (may be NULL) once if it ends; all with `arg`, on the loop's
 * thread. A subscription not started within request_timeout_ms ends
 * with SYNOD_ETIMEDOUT (or SYNOD_ECONNECT). Callbacks may call
 * synod_async_unsubscribe on any subscription. */
int synod_async_subscribe(struct synod_async *a,
                          const struct synod_subscribe_options *o,
                          synod_channel_message_cb message_cb,
                          synod_subscription_end_cb end_cb,
                          synod_subscription_start_cb start_cb, void *arg,
                          struct synod_async_subscription **out);

/* Ends the subscription and frees the handle; no callback of it runs
 * after this returns (a message callback running now finishes). Calling it
 * from the subscription's end_cb does nothing (the handle is freed after
 * end_cb anyway); afterwards, the handle must not be used. */
void synod_async_unsubscribe(struct synod_async *a,
                             struct synod_async_subscription *sub);

struct synod_subscription;

/* Blocking. Subscribes and waits until the server confirmed the start
 * (start may be NULL), at most timeout_ms (0: the request timeout). The
 * errors of the start come back here (SYNOD_ENOTFOUND,
 * SYNOD_ECOMPACTED, SYNOD_EINVAL, SYNOD_ETIMEDOUT, SYNOD_ECONNECT, ...).
 * Close *out with synod_subscription_close; synod_client_free closes
 * the subscriptions still open (their handles are then gone). */
int synod_subscribe(struct synod_client *c,
                    const struct synod_subscribe_options *o,
                    uint32_t timeout_ms, struct synod_subscription **out,
                    struct synod_subscription_start *start);

/* The next message, waiting up to timeout_ms (0: do not wait;
 * SYNOD_WAIT_FOREVER: no bound). On 0, *msg points into memory the
 * subscription owns, valid until the next synod_subscription_next or
 * synod_subscription_close on it; data is followed by a NUL. Taking a
 * message consumes it (credit is granted back as the application takes
 * them). Returns SYNOD_ETIMEDOUT if none came in time (the subscription
 * goes on), or, once every message delivered before it was taken, the
 * status that ended the subscription, again on every later call
 * (synod_client_errmsg says why; synod_subscription_first_available
 * gives the position with SYNOD_ECOMPACTED). One thread at a time per
 * subscription; SYNOD_EINVAL from the client's own callbacks. A call
 * waiting when synod_client_free begins returns SYNOD_ESHUTDOWN. */
int synod_subscription_next(struct synod_subscription *sub, uint32_t timeout_ms,
                            struct synod_channel_message *msg);

/* With SYNOD_ECOMPACTED: the first position still retained; else 0. */
uint64_t synod_subscription_first_available(struct synod_subscription *sub);

/* Unsubscribes and frees everything, the last message included. Accepts
 * NULL. Not while another thread is in synod_subscription_next on it. */
void synod_subscription_close(struct synod_subscription *sub);

/* ------------------------------------------------------ durable cursors
 *
 * A cursor is a named position (offset) per channel and consumer, stored
 * in the cluster: a consumer that commits the offset it has processed
 * resumes after it, on any client, by subscribing with the cursor. At
 * most 1,024 per channel; they go with the channel. */

struct synod_channel_cursor {
  uint64_t offset; /* the last offset processed (0: none yet) */
  uint64_t index;  /* the log index of the commit that set it */
};

/* Sets the cursor to `offset` (0 .. the channel's last offset; it may go
 * back). A write in the session, exactly once like a publish. Errors:
 * SYNOD_ERANGE (past the channel's last offset), SYNOD_ENOTFOUND (no
 * such channel), SYNOD_ELIMIT (1,024 cursors). `out` may be NULL. */
int synod_channel_cursor_commit(struct synod_client *c, const char *channel,
                                const char *cursor, uint64_t offset,
                                uint32_t timeout_ms,
                                struct synod_channel_cursor *out);

/* SYNOD_ENOTFOUND for a cursor (or channel) that does not exist. Flags:
 * 0 or SYNOD_READ_STALE. */
int synod_channel_cursor_get(struct synod_client *c, const char *channel,
                             const char *cursor, unsigned flags,
                             uint32_t timeout_ms,
                             struct synod_channel_cursor *out);

typedef void (*synod_channel_cursor_cb)(
    void *arg, int status, const struct synod_channel_cursor *cursor);
int synod_async_channel_cursor_commit(struct synod_async *a,
                                      const char *channel, const char *cursor,
                                      uint64_t offset,
                                      synod_channel_cursor_cb cb, void *arg);
int synod_async_channel_cursor_get(struct synod_async *a, const char *channel,
                                   const char *cursor, unsigned flags,
                                   synod_channel_cursor_cb cb, void *arg);

/* ---------------------------------------------------------------- keys
 *
 * A registry of small values: who holds device X, a feature flag, a
 * piece of shared configuration. A key is 1..SYNOD_KEY_BYTES_MAX bytes
 * of UTF-8 without a NUL ("/" separates levels by convention; keys sort
 * bytewise); a value is bytes, at most 64 KiB unless the servers were
 * started with another limit (synodd --keys-value-max-bytes; over it:
 * SYNOD_ETOOBIG).
 *
 * Every write that changes something gets the cluster's next revision
 * (dense from 1, the same on every replica). Each key carries the
 * revision that created it, the one that last put it (mod_revision) and
 * its version (1 when created, +1 per put; a delete removes the key, a
 * later put creates it again at version 1).
 *
 * Session-bound keys (SYNOD_KEY_SESSION_BOUND): the key is deleted when
 * the client's session ends: synod_client_free / synod_async_close, or
 * expiry when the session could not be renewed for its TTL (measured in
 * cluster time, so a leader change neither keeps the key forever nor
 * drops it early). A later put without the flag unbinds it; a bound put
 * from another client moves it to that client's session. A lost session
 * (see "What the engine does") has taken its keys with it: the
 * application must put them again, in the new session.
 *
 * Compares make a write conditional (compare-and-put, compare-and-delete,
 * transactions): each compares one field of a key, as it is when the
 * write is applied, with a number or a value. A key that does not exist
 * has version, create and mod revision and session 0, and a value
 * compare on it never holds; so {version EQUAL 0} is "create only". A
 * compare that does not hold is not an error: the result says
 * succeeded = false, nothing changed and no revision was used.
 *
 * Writes are made in the client's session with a sequence number like
 * every other write: retried after a failover they are applied once.
 * Reads are linearizable, or with SYNOD_READ_STALE served by any replica
 * from what it has applied (possibly behind).
 *
 * Errors (through the return value or callback; nothing changed):
 * SYNOD_EINVAL (a bad key, prefix or compare; a transaction that writes
 * one key twice in a branch), SYNOD_ETOOBIG (a value over the limit, an
 * answer over the frame), SYNOD_ELIMIT (the servers' key count or bytes,
 * more than SYNOD_KEY_TXN_OPS_MAX compares or operations),
 * SYNOD_ESESSION (the session ended before the write was applied: its
 * outcome is unknown, as with SYNOD_ETIMEDOUT). */

#define SYNOD_KEY_BYTES_MAX 512        /* bytes of a key */
#define SYNOD_KEY_TXN_OPS_MAX 64       /* compares; operations per branch */
#define SYNOD_KEY_LIST_LIMIT_MAX 10000 /* keys in one list page */

/* Flags of the key calls; they share the space of SYNOD_READ_STALE,
 * which get and list take. */
#define SYNOD_KEY_SESSION_BOUND 0x10u /* put: delete with the session */
#define SYNOD_KEY_PREV 0x20u   /* put, one-key delete: answer the key before */
#define SYNOD_KEY_PREFIX 0x40u /* delete: every key starting with it */
#define SYNOD_KEY_KEYS_ONLY 0x80u /* list: no values */

/* A key as stored. Owns key and value (each followed by a NUL, so text
 * values can be used as strings). value is empty (value_len 0) in put
 * answers and keys-only lists. session_id: the session it is bound to,
 * 0 if none. */
struct synod_kv {
  char *key;
  size_t key_len;
  uint8_t *value;
  size_t value_len;
  uint64_t create_revision;
  uint64_t mod_revision;
  uint64_t version;
  uint64_t session_id;
};

/* What a compare looks at (numbers are the wire protocol's). */
enum synod_key_target {
  SYNOD_KEY_VERSION = 0,
  SYNOD_KEY_CREATE_REVISION = 1,
  SYNOD_KEY_MOD_REVISION = 2,
  SYNOD_KEY_VALUE = 3,  /* bytewise; LESS and GREATER in byte order */
  SYNOD_KEY_SESSION = 4 /* the session it is bound to (0: none) */
};

enum synod_key_cmp {
  SYNOD_KEY_EQUAL = 0,
  SYNOD_KEY_NOT_EQUAL = 1,
  SYNOD_KEY_LESS = 2,   /* what the key holds < number / value */
  SYNOD_KEY_GREATER = 3 /* what the key holds > number / value */
};

/* One condition. key NULL (or "") in a put or delete means the key
 * written; in a transaction it is required. A zeroed struct with a key is
 * "the key does not exist" (version EQUAL 0). Borrowed for the call. */
struct synod_key_compare {
  const char *key;
  enum synod_key_target target;
  enum synod_key_cmp op;
  uint64_t number;   /* every target but SYNOD_KEY_VALUE */
  const void *value; /* SYNOD_KEY_VALUE: value_len bytes */
  size_t value_len;
};

/* succeeded: the put was applied (false: a compare did not hold).
 * kv (has_kv): the key after the put, or as it is when a compare failed
 * (no has_kv if it does not exist), without its value. prev (has_prev,
 * with SYNOD_KEY_PREV): the key before the put, value included, if it
 * existed. revision: the store's revision after the request (the put's
 * own when it succeeded). Free with synod_key_put_result_free. */
struct synod_key_put_result {
  bool succeeded;
  bool has_kv;
  struct synod_kv kv;
  bool has_prev;
  struct synod_kv prev;
  uint64_t revision;
};

/* found = false (not an error) for a key that does not exist. revision:
 * the store's revision the answer was read at. Free with
 * synod_key_get_result_free. */
struct synod_key_get_result {
  bool found;
  struct synod_kv kv;
  uint64_t revision;
};

/* deleted: how many keys went (0: none existed; no revision used).
 * prev (has_prev, with SYNOD_KEY_PREV and one key): the deleted key.
 * Free with synod_key_delete_result_free. */
struct synod_key_delete_result {
  bool succeeded;
  uint64_t deleted;
  bool has_prev;
  struct synod_kv prev;
  uint64_t revision;
};

/* One page, consistent at `revision`. more: keys remain; ask again with
 * after = the last key of this page. Free with synod_key_list_free. */
struct synod_key_list {
  struct synod_kv *kvs;
  size_t count;
  bool more;
  uint64_t revision;
};

enum synod_key_op_type {
  SYNOD_KEY_OP_PUT = 1,
  SYNOD_KEY_OP_GET = 2,
  SYNOD_KEY_OP_DELETE = 3
};

/* One operation of a transaction. flags: put SYNOD_KEY_SESSION_BOUND and
 * SYNOD_KEY_PREV; delete SYNOD_KEY_PREFIX or SYNOD_KEY_PREV. Borrowed. */
struct synod_key_op {
  enum synod_key_op_type type;
  const char *key;
  const void *value; /* put: value_len bytes */
  size_t value_len;
  unsigned flags;
};

/* If every compare holds, the success operations, else the failure ones,
 * in order, atomically at one revision (a get sees the earlier operations
 * of its branch). At most SYNOD_KEY_TXN_OPS_MAX compares and operations
 * per branch; a branch may not write one key twice. Borrowed. */
struct synod_key_txn {
  const struct synod_key_compare *compares;
  size_t compares_n;
  const struct synod_key_op *success;
  size_t success_n;
  const struct synod_key_op *failure;
  size_t failure_n;
};

struct synod_key_op_result {
  enum synod_key_op_type type; /* selects the member below */
  union {
    struct synod_key_put_result put;
    struct synod_key_get_result get;
    struct synod_key_delete_result del;
  } u;
};

/* succeeded: the compares held and the success branch ran. results: one
 * per operation of the branch that ran, in order. revision: the store's
 * after the transaction (its own if it changed anything). Free with
 * synod_key_txn_result_free. */
struct synod_key_txn_result {
  bool succeeded;
  struct synod_key_op_result *results;
  size_t count;
  uint64_t revision;
};

/* Destructors: free what the struct owns and zero it; accept a zeroed
 * struct and NULL. */
void synod_kv_free(struct synod_kv *kv);
void synod_key_put_result_free(struct synod_key_put_result *r);
void synod_key_get_result_free(struct synod_key_get_result *r);
void synod_key_delete_result_free(struct synod_key_delete_result *r);
void synod_key_list_free(struct synod_key_list *l);
void synod_key_txn_result_free(struct synod_key_txn_result *r);

/* Sets key to value_len bytes of value, creating it if absent. flags:
 * SYNOD_KEY_SESSION_BOUND, SYNOD_KEY_PREV. With compares (n <=
 * SYNOD_KEY_TXN_OPS_MAX; NULL when n is 0), only if all of them hold:
 * compare-and-put. out may be NULL. */
int synod_key_put(struct synod_client *c, const char *key, const void *value,
                  size_t value_len, unsigned flags,
                  const struct synod_key_compare *compares, size_t compares_n,
                  uint32_t timeout_ms, struct synod_key_put_result *out);

/* Creates key only if it does not exist (a put with the compare
 * {version EQUAL 0}); *created (may be NULL) says whether it did. */
int synod_key_create(struct synod_client *c, const char *key, const void *value,
                     size_t value_len, unsigned flags, uint32_t timeout_ms,
                     bool *created);

/* flags: 0 or SYNOD_READ_STALE. */
int synod_key_get(struct synod_client *c, const char *key, unsigned flags,
                  uint32_t timeout_ms, struct synod_key_get_result *out);

/* Deletes key, or with SYNOD_KEY_PREFIX every key that starts with it
 * ("" then deletes every key). SYNOD_KEY_PREV (one key only): answer the
 * deleted key. With compares, only if all hold. out may be NULL. */
int synod_key_delete(struct synod_client *c, const char *key, unsigned flags,
                     const struct synod_key_compare *compares,
                     size_t compares_n, uint32_t timeout_ms,
                     struct synod_key_delete_result *out);

/* One page of the keys starting with prefix (NULL or "": all) after
 * `after` (NULL or "": from the first), at most limit (0: 1,000; at most
 * SYNOD_KEY_LIST_LIMIT_MAX) and about 512 KiB. flags: SYNOD_READ_STALE,
 * SYNOD_KEY_KEYS_ONLY. To read a prefix whole, call again with after =
 * the last key while more; each page is consistent at its own revision.
 * For a listing consistent at one revision, use synod_key_list_at. */
int synod_key_list(struct synod_client *c, const char *prefix,
                   const char *after, uint32_t limit, unsigned flags,
                   uint32_t timeout_ms, struct synod_key_list *out);

/* synod_key_list as the keys were at `revision` (0: now, as
 * synod_key_list): list the first page with 0, then the others with its
 * out->revision, and the whole listing is consistent at that revision
 * (watch from it + 1 to follow the changes after). The servers answer
 * from the key history: a revision older than it keeps gets
 * SYNOD_ECOMPACTED (the message names the oldest revision available:
 * list again from the first page); one after the newest, SYNOD_EINVAL,
 * or with SYNOD_READ_STALE, SYNOD_EUNAVAILABLE (the replica read is
 * behind the one that answered the revision: retry). */
int synod_key_list_at(struct synod_client *c, const char *prefix,
                      const char *after, uint32_t limit, unsigned flags,
                      uint64_t revision, uint32_t timeout_ms,
                      struct synod_key_list *out);

/* Runs a transaction (see struct synod_key_txn). out may be NULL. */
int synod_key_txn(struct synod_client *c, const struct synod_key_txn *txn,
                  uint32_t timeout_ms, struct synod_key_txn_result *out);

/* The key calls on a synod_async, with the contracts of the blocking ones
 * and the async rules. Each copies its arguments before it returns.
 * Errors returned directly: SYNOD_EINVAL (a bad key, flag or compare;
 * the message is in synod_async_last_errmsg), SYNOD_ELIMIT (too many
 * compares or operations), SYNOD_ENOMEM, SYNOD_ESHUTDOWN. */
typedef void (*synod_key_put_cb)(void *arg, int status,
                                 const struct synod_key_put_result *r);
typedef void (*synod_key_get_cb)(void *arg, int status,
                                 const struct synod_key_get_result *r);
typedef void (*synod_key_delete_cb)(void *arg, int status,
                                    const struct synod_key_delete_result *r);
typedef void (*synod_key_list_cb)(void *arg, int status,
                                  const struct synod_key_list *l);
typedef void (*synod_key_txn_cb)(void *arg, int status,
                                 const struct synod_key_txn_result *r);

int synod_async_key_put(struct synod_async *a, const char *key,
                        const void *value, size_t value_len, unsigned flags,
                        const struct synod_key_compare *compares,
                        size_t compares_n, synod_key_put_cb cb, void *arg);
int synod_async_key_get(struct synod_async *a, const char *key, unsigned flags,
                        synod_key_get_cb cb, void *arg);
int synod_async_key_delete(struct synod_async *a, const char *key,
                           unsigned flags,
                           const struct synod_key_compare *compares,
                           size_t compares_n, synod_key_delete_cb cb,
                           void *arg);
int synod_async_key_list(struct synod_async *a, const char *prefix,
                         const char *after, uint32_t limit, unsigned flags,
                         synod_key_list_cb cb, void *arg);
int synod_async_key_list_at(struct synod_async *a, const char *prefix,
                            const char *after, uint32_t limit, unsigned flags,
                            uint64_t revision, synod_key_list_cb cb, void *arg);
int synod_async_key_txn(struct synod_async *a, const struct synod_key_txn *txn,
                        synod_key_txn_cb cb, void *arg);

/* -------------------------------------------------------- key watches
 *
 * A key watch delivers every put and delete of one key, or of every key
 * under a prefix, from a revision on, in (revision, event) order, then
 * live: a subscription to the key history, with the same machinery,
 * promises and ends as a channel subscription (see "Subscriptions"):
 * any replica serves it; after a disconnect, failover or restart the
 * library watches again from just after the last event it delivered, so
 * the application sees no gap and no duplicate; SYNOD_ECOMPACTED (with
 * the oldest revision still retained as first_available) when the next
 * event is no longer in the server's bounded history (synodd
 * --keys-history): list the keys, then watch from the list's revision.
 *
 * The server also reports how far a watch has looked past events it
 * does not match (about once a second), and the library resumes from
 * there: a watch of a quiet key does not fall below the history while
 * other keys change.
 *
 * One revision may hold many events (a transaction; a session's end
 * deletes all of its keys at one revision), and a batch may end among
 * them: the position is (revision, event), events numbered from 1 within
 * their revision, counting those the watch does not match.
 *
 * The handles are the subscriptions': synod_async_unsubscribe cancels an
 * async key watch. */

/* One change. kv and prev are struct synod_kv (see "Keys"), here with
 * borrowed pointers (see the callback and synod_key_watch_next; never
 * synod_kv_free them); key and value are not NUL-terminated in general
 * (the blocking interface adds a NUL). A put's kv.mod_revision is its
 * revision; a delete's kv holds only the key. */
struct synod_key_event {
  uint64_t revision;
  uint32_t event; /* within the revision, from 1 */
  bool deleted;   /* a delete; else a put */
  struct synod_kv kv;
  /* With prev_kv: the key before the change, if it existed (always for
   * a delete). */
  bool has_prev;
  struct synod_kv prev;
  uint64_t index;   /* the log index of the entry that made the revision */
  uint64_t time_ms; /* its cluster time */
};

struct synod_key_watch_options {
  /* The key (UTF-8, 1..512 bytes), or with prefix, the start of the keys
   * to watch (NULL or "": every key). */
  const char *key;
  bool prefix;
  /* The first revision to deliver; 0: the revisions after every write
   * acknowledged before the watch started. */
  uint64_t from_revision;
  /* With from_revision: the events of from_revision already seen
   * (1..after_event); 0 = none. Resume after an event with its
   * (revision, event). */
  uint32_t after_event;
  bool prev_kv; /* deliver each event's previous key and value */
  /* Events delivered and not yet consumed, at most. 0: 1,000; at most
   * SYNOD_SUBSCRIBE_WINDOW_MAX. */
  uint32_t window;
};

/* Where a watch started, as the server confirmed it: its first event is
 * event after_event + 1 of `revision`. first_revision and last_revision:
 * the history on that replica then (oldest retained, newest issued). */
struct synod_key_watch_start {
  uint64_t revision;
  uint32_t after_event;
  uint64_t first_revision;
  uint64_t last_revision;
};

/* A batch of events, in order; borrowed until the callback returns. */
typedef void (*synod_key_events_cb)(void *arg,
                                    const struct synod_key_event *events,
                                    size_t n);
/* The server confirmed the start (once; resumptions are not reported). */
typedef void (*synod_key_watch_start_cb)(
    void *arg, const struct synod_key_watch_start *start);

/* Async. Watches now if connected, else on the next connection. Returns
 * 0 and *out, SYNOD_EINVAL (bad key or options; see
 * synod_async_last_errmsg), SYNOD_ENOMEM or SYNOD_ESHUTDOWN. Then calls
 * start_cb (may be NULL) once, events_cb for every batch, and end_cb
 * (may be NULL) once if it ends (its first_available: the oldest
 * revision retained, with SYNOD_ECOMPACTED); all with `arg`, on the
 * loop's thread. Cancel with synod_async_unsubscribe. */
int synod_async_key_watch(struct synod_async *a,
                          const struct synod_key_watch_options *o,
                          synod_key_events_cb events_cb,
                          synod_subscription_end_cb end_cb,
                          synod_key_watch_start_cb start_cb, void *arg,
                          struct synod_async_subscription **out);

struct synod_key_watch;

/* Blocking. Watches and waits until the server confirmed the start
 * (start may be NULL), at most timeout_ms (0: the request timeout). The
 * start's errors come back here (SYNOD_ECOMPACTED, SYNOD_EINVAL,
 * SYNOD_ETIMEDOUT, SYNOD_ECONNECT, ...). Close *out with
 * synod_key_watch_close; synod_client_free closes the watches still
 * open. */
int synod_key_watch(struct synod_client *c,
                    const struct synod_key_watch_options *o,
                    uint32_t timeout_ms, struct synod_key_watch **out,
                    struct synod_key_watch_start *start);

/* The next event, as synod_subscription_next: waits up to timeout_ms;
 * *ev points into memory the watch owns until the next call or
 * synod_key_watch_close (key and values followed by a NUL); taking it
 * consumes it. SYNOD_ETIMEDOUT if none came in time, or the status that
 * ended the watch (synod_key_watch_first_available gives the oldest
 * revision with SYNOD_ECOMPACTED). */
int synod_key_watch_next(struct synod_key_watch *w, uint32_t timeout_ms,
                         struct synod_key_event *ev);

/* With SYNOD_ECOMPACTED: the oldest revision still retained; else 0. */
uint64_t synod_key_watch_first_available(struct synod_key_watch *w);

/* Cancels the watch and frees everything. Accepts NULL. Not while
 * another thread is in synod_key_watch_next on it. */
void synod_key_watch_close(struct synod_key_watch *w);

/* ---------------------------------------------------------------- groups
 *
 * JGroups' three things on synod's one log (issue 23; the contract is
 * proto/synod.proto from "Groups"): a view (who is in the group, in join
 * order, the first member the coordinator), messages to the whole group
 * or to one member, and state transfer to a member that joins.
 *
 * A group is a name (as a channel's, 1..256 bytes); it exists while it
 * has members. A member is a name unique in the group (1..256 bytes) and
 * a small data value (at most 1 KiB by default), held by the client's
 * session: it leaves with synod_group_leave, or when the session ends
 * (synod_client_free, or expiry after the TTL). Every join and leave
 * makes the next view. Views, messages, state requests (to the
 * coordinator) and checkpoint notices are ONE stream per group, at dense
 * offsets from 1, in the cluster's total order; every member sees the
 * same items between two views (same-view delivery).
 *
 * Writes (join, leave, send, checkpoint, state request) are made in the
 * client's session with a sequence number, so a retry after a failover
 * is applied once. Reads are linearizable, or with SYNOD_READ_STALE
 * served from any replica's applied state.
 *
 * Errors (nothing changed): SYNOD_EINVAL (a bad group, member or
 * argument), SYNOD_ETOOBIG (data over the servers' bound), SYNOD_ELIMIT
 * (groups, members, open uploads, retained bytes), SYNOD_EEXIST (the
 * member name is taken), SYNOD_ENOTFOUND (no such group or member),
 * SYNOD_ENOTHOLDER (the member is not this session's), SYNOD_ERANGE (a
 * checkpoint offset out of order), SYNOD_ESESSION (the session ended
 * before the write was applied: outcome unknown). */

#define SYNOD_GROUP_MEMBER_MAX 256 /* bytes of a member name */
/* The bytes of one checkpoint chunk on the wire: the servers' default
 * bound (synodd's group_chunk_bytes_max); a server with a lower bound
 * gets halves of it, down to 64 KiB. */
#define SYNOD_GROUP_CHUNK_BYTES 1000000
/* Restarts of a checkpoint read when the checkpoint is replaced while it
 * is read (SYNOD_ECOMPACTED), before giving up with that error. */
#define SYNOD_GROUP_READ_RESTARTS_MAX 8

/* A member as a view lists it. In a result it owns name and data (data
 * is followed by a NUL); in a stream item it borrows them. */
struct synod_group_member {
  char *name;
  uint8_t *data;
  size_t data_len;
  uint64_t session_id;    /* the session holding it */
  uint64_t joined_offset; /* the offset of the view that added it */
};

/* A full view: members in join order, members[0] the coordinator. Free
 * with synod_group_view_free when it is a result. */
struct synod_group_view {
  uint64_t view_id; /* dense from 1 per group */
  uint64_t offset;  /* the offset of the view's item in the stream */
  struct synod_group_member *members;
  size_t count;
};

/* Where a joining member gets the group's state (the numbers are the
 * wire protocol's). */
enum synod_group_state_source {
  SYNOD_GROUP_STATE_NONE = 0,       /* not asked */
  SYNOD_GROUP_STATE_CHECKPOINT = 1, /* read the checkpoint at its offset */
  SYNOD_GROUP_STATE_REQUESTED = 2,  /* the coordinator was asked */
  SYNOD_GROUP_STATE_EMPTY = 3       /* the member is the coordinator */
};

struct synod_group_state {
  enum synod_group_state_source source;
  uint64_t checkpoint_offset; /* CHECKPOINT: the offset it reflects */
  uint64_t checkpoint_bytes;
  uint64_t request_offset; /* REQUESTED: the state request's item */
  char *coordinator;       /* REQUESTED: whom it went to (owned) */
};

/* A join's answer: the view it made (at view.offset), the log index of
 * the join and, with want_state, where the state is. Free with
 * synod_group_joined_free. */
struct synod_group_joined {
  struct synod_group_view view;
  uint64_t index;
  struct synod_group_state state;
};

struct synod_group_left {
  uint64_t view_id; /* the view without the member */
  uint64_t offset;  /* its item's offset */
};

struct synod_group_sent {
  uint64_t offset;
  uint64_t index;
  bool duplicate; /* an earlier send with the same message id */
};

/* A checkpoint: the group's state after every item up to `offset`, of
 * `bytes` bytes, committed at log index `index` (cluster time time_ms)
 * by `member` (owned in results, borrowed in items). */
struct synod_group_checkpoint_info {
  uint64_t offset;
  uint64_t bytes;
  uint64_t index;
  uint64_t time_ms;
  char *member;
};

/* A checkpoint stored whole: the offset of its notice in the stream. */
struct synod_group_stored {
  uint64_t notice_offset;
  uint64_t bytes;
};

/* A checkpoint read whole. data has len bytes (plus a NUL). Free with
 * synod_group_checkpoint_free. */
struct synod_group_checkpoint {
  struct synod_group_checkpoint_info info;
  uint8_t *data;
  size_t len;
};

/* A group as a replica has it. view has no members in a list. Free with
 * synod_group_info_free. */
struct synod_group_info {
  char *name;
  struct synod_group_view view;
  uint32_t members;
  uint64_t first_offset; /* the oldest retained item */
  uint64_t next_offset;  /* the next item's */
  uint64_t bytes;        /* retained item bytes */
  bool has_checkpoint;
  struct synod_group_checkpoint_info checkpoint;
  bool checkpoint_usable;  /* every item after it is retained */
  uint32_t state_requests; /* pending, waiting for a checkpoint */
};

struct synod_group_list {
  struct synod_group_info *groups;
  size_t count;
  bool more; /* call again with the last name as `after` */
};

enum synod_group_item_type {
  SYNOD_GROUP_ITEM_VIEW = 1,          /* a view change */
  SYNOD_GROUP_ITEM_MESSAGE = 2,       /* a message, to all or to `to` */
  SYNOD_GROUP_ITEM_STATE_REQUEST = 3, /* `member` asks coordinator `to` */
  SYNOD_GROUP_ITEM_CHECKPOINT = 4     /* a checkpoint was stored */
};

/* One stream item. Every pointer is borrowed: from the enclosing
 * synod_group_items, or for the duration of a callback, or until the
 * next synod_group_member_next. Strings are NUL-terminated; data is
 * followed by a NUL in read results and blocking events, and not in
 * async callbacks (as a channel message's). */
struct synod_group_item {
  enum synod_group_item_type type;
  uint64_t offset;
  uint64_t index;   /* the log index of the entry that made it */
  uint64_t time_ms; /* its cluster time */
  /* VIEW: the next view, as a change: who joined (at the end of the
   * member list, in join order), who left, and how many members it has. */
  uint64_t view_id;
  const struct synod_group_member *joined;
  size_t joined_n;
  char *const *left;
  size_t left_n;
  uint32_t members;
  /* MESSAGE: from ("" if the sender named no member), to ("" = all),
   * data. STATE_REQUEST: to (the coordinator) and member (who asks). */
  const char *from;
  const char *to;
  const void *data;
  size_t len;
  const char *member;
  /* CHECKPOINT: the checkpoint stored. */
  struct synod_group_checkpoint_info checkpoint;
  /* STATE_REQUEST: to == member, the EMPTY answer: the requester became
   * the coordinator while it waited; no one is left to ask. */
  bool empty;
};

/* Retained items of a read, in offset order. Free with
 * synod_group_items_free. */
struct synod_group_items {
  struct synod_group_item *items;
  size_t count;
  uint64_t first_offset; /* the oldest retained */
  uint64_t next_offset;  /* the next item's */
  void *internal;        /* what the items point into */
};

/* Destructors: free what the struct owns and zero it; accept a zeroed
 * struct and NULL. */
void synod_group_view_free(struct synod_group_view *v);
void synod_group_joined_free(struct synod_group_joined *j);
void synod_group_info_free(struct synod_group_info *info);
void synod_group_list_free(struct synod_group_list *l);
void synod_group_checkpoint_free(struct synod_group_checkpoint *ck);
void synod_group_items_free(struct synod_group_items *items);

/* Joins `member` (with data_len bytes of data, may be 0) under the
 * client's session. With want_state, also asks for the group's state
 * (out->state; see synod_group_member_join for the helper that does the
 * rest). Errors: SYNOD_EEXIST (the name is taken). out may be NULL. */
int synod_group_join(struct synod_client *c, const char *group,
                     const char *member, const void *data, size_t data_len,
                     bool want_state, uint32_t timeout_ms,
                     struct synod_group_joined *out);

/* Leaves: a new view without the member. SYNOD_ENOTHOLDER if the member
 * is not this session's; SYNOD_ENOTFOUND if there is no such member.
 * out may be NULL. */
int synod_group_leave(struct synod_client *c, const char *group,
                      const char *member, uint32_t timeout_ms,
                      struct synod_group_left *out);

/* Sends len bytes of data to every member, or with `to` (not NULL or "")
 * to that member only (SYNOD_ENOTFOUND if it is not in the view). `from`
 * (NULL or ""): one of this session's members, named as the sender.
 * Exactly once in the session, as a channel publish. out may be NULL. */
int synod_group_send(struct synod_client *c, const char *group, const char *to,
                     const char *from, const void *data, size_t len,
                     uint32_t timeout_ms, struct synod_group_sent *out);

/* Stores a state checkpoint: len bytes of data, the application's state
 * after every item up to `offset`, for `member` (this session's). The
 * library sends it in chunks of at most SYNOD_GROUP_CHUNK_BYTES, each a
 * write in the session (exactly once; a checkpoint is committed by its
 * last chunk and only then replaces the group's). timeout_ms bounds the
 * whole upload. Errors: SYNOD_ETOOBIG (over the servers' bound, 16 MiB
 * by default), SYNOD_ERANGE (offset past the group's last item, or
 * before its latest checkpoint), SYNOD_ELIMIT. out may be NULL. */
int synod_group_checkpoint_store(struct synod_client *c, const char *group,
                                 const char *member, uint64_t offset,
                                 const void *data, size_t len,
                                 uint32_t timeout_ms,
                                 struct synod_group_stored *out);

/* Reads the group's latest checkpoint whole, chunk by chunk; if it is
 * replaced meanwhile (SYNOD_ECOMPACTED), starts again with the new one,
 * at most SYNOD_GROUP_READ_RESTARTS_MAX times. timeout_ms bounds it all.
 * SYNOD_ENOTFOUND when the group has no checkpoint, or when it was
 * deleted and created again after the first chunk. The chunks are all of
 * one checkpoint of one group: one replaced meanwhile, even at the same
 * offset, is read again from its start. With SYNOD_READ_STALE, a later
 * chunk from a replica that has not applied the first one's checkpoint
 * (after a reconnect) gets SYNOD_EUNAVAILABLE: read again. */
int synod_group_checkpoint_read(struct synod_client *c, const char *group,
                                unsigned flags, uint32_t timeout_ms,
                                struct synod_group_checkpoint *out);

/* Asks for the group's state for `member` (this session's): out says
 * where it is (see enum synod_group_state_source). */
int synod_group_state_request(struct synod_client *c, const char *group,
                              const char *member, uint32_t timeout_ms,
                              struct synod_group_state *out);
void synod_group_state_free(struct synod_group_state *st);

/* The group's view and stream. SYNOD_ENOTFOUND if there is no group. */
int synod_group_view_get(struct synod_client *c, const char *group,
                         unsigned flags, uint32_t timeout_ms,
                         struct synod_group_info *out);

/* Groups in name order after `after` (NULL: the first), at most limit
 * (0: 1,000), without their members. */
int synod_group_list(struct synod_client *c, const char *after, uint32_t limit,
                     unsigned flags, uint32_t timeout_ms,
                     struct synod_group_list *out);

/* Retained items from offset `from` (0: the oldest retained), at most
 * max (0: 1,000) and about 1 MiB; with member (not NULL or ""), only the
 * items addressed to it and to all. SYNOD_ECOMPACTED when `from` is
 * below the oldest retained. */
int synod_group_read(struct synod_client *c, const char *group, uint64_t from,
                     uint32_t max, const char *member, unsigned flags,
                     uint32_t timeout_ms, struct synod_group_items *out);
/* synod_group_read pinned to the group read before (as
 * synod_channel_read_pinned): known_index is the log index of an item
 * already read (the last one's `index`), or of the caller's join;
 * SYNOD_ENOTFOUND when that group is gone, or was created again after it;
 * with SYNOD_READ_STALE, SYNOD_EUNAVAILABLE from a replica that has not
 * applied known_index yet (retry). 0: not pinned. */
int synod_group_read_pinned(struct synod_client *c, const char *group,
                            uint64_t from, uint32_t max, const char *member,
                            unsigned flags, uint64_t known_index,
                            uint32_t timeout_ms, struct synod_group_items *out);

/* Watching a group without joining it (an operator's tool, a dashboard):
 * its stream pushed from offset `from` (0: the next item), every item in
 * offset order, or with member (not NULL or "") only the items addressed
 * to it and to all, as that member would receive them. It is a
 * subscription (see "channel subscriptions": any replica serves it, it
 * resumes after disconnects and failovers with no gap and no duplicate,
 * flow control by `window`, 0: 1,000) and ends only with SYNOD_ENOTFOUND
 * (the group was deleted: its last member left; every item before that
 * is delivered first), SYNOD_ECOMPACTED (its next item is no longer
 * retained; first_available is the oldest that is), or as a channel
 * subscription does. A VIEW item gives the change (joined, left): start
 * from the view's offset (synod_group_view_get) to know every member. */
typedef void (*synod_group_watch_cb)(void *arg,
                                     const struct synod_group_item *items,
                                     size_t n);
/* The server confirmed the start: the first offset it delivers. */
typedef void (*synod_group_watch_start_cb)(void *arg, uint64_t offset);

/* Async: items_cb with each batch (borrowed for the call), end_cb (may
 * be NULL) once if it ends, start_cb (may be NULL) once; stop it with
 * synod_async_unsubscribe. Errors returned directly: SYNOD_EINVAL (bad
 * name; synod_async_last_errmsg), SYNOD_ENOMEM, SYNOD_ESHUTDOWN. */
int synod_async_group_watch(struct synod_async *a, const char *group,
                            const char *member, uint64_t from, uint32_t window,
                            synod_group_watch_cb items_cb,
                            synod_subscription_end_cb end_cb,
                            synod_group_watch_start_cb start_cb, void *arg,
                            struct synod_async_subscription **out);

struct synod_group_watch;

/* Blocking: starts the watch and waits until the server confirmed it
 * (*start_offset: the first offset it delivers; may be NULL), at most
 * timeout_ms (0: the request timeout). Close *out with
 * synod_group_watch_close; synod_client_free closes those still open. */
int synod_group_watch(struct synod_client *c, const char *group,
                      const char *member, uint64_t from, uint32_t window,
                      uint32_t timeout_ms, struct synod_group_watch **out,
                      uint64_t *start_offset);

/* The next item, as synod_subscription_next: waits up to timeout_ms (0:
 * not at all; SYNOD_WAIT_FOREVER), SYNOD_ETIMEDOUT if none came, or the
 * status that ended the watch once every item before it was taken. On 0
 * *item and all it points to (data followed by a NUL) are valid until the
 * next call or the close. One thread at a time per watch. */
int synod_group_watch_next(struct synod_group_watch *w, uint32_t timeout_ms,
                           struct synod_group_item *item);

/* With SYNOD_ECOMPACTED: the oldest offset still retained; else 0. */
uint64_t synod_group_watch_first_available(struct synod_group_watch *w);

/* Stops and frees everything, the last item included. Accepts NULL. */
void synod_group_watch_close(struct synod_group_watch *w);

/* The group calls on a synod_async, with the contracts of the blocking
 * ones and the async rules. Each copies its arguments (data included)
 * before it returns. Errors returned directly: SYNOD_EINVAL (the message
 * is in synod_async_last_errmsg), SYNOD_ENOMEM, SYNOD_ESHUTDOWN. */
typedef void (*synod_group_joined_cb)(void *arg, int status,
                                      const struct synod_group_joined *j);
typedef void (*synod_group_left_cb)(void *arg, int status,
                                    const struct synod_group_left *l);
typedef void (*synod_group_sent_cb)(void *arg, int status,
                                    const struct synod_group_sent *s);
typedef void (*synod_group_stored_cb)(void *arg, int status,
                                      const struct synod_group_stored *s);
typedef void (*synod_group_checkpoint_cb)(
    void *arg, int status, const struct synod_group_checkpoint *ck);
typedef void (*synod_group_state_cb)(void *arg, int status,
                                     const struct synod_group_state *st);
typedef void (*synod_group_info_cb)(void *arg, int status,
                                    const struct synod_group_info *info);
typedef void (*synod_group_list_cb)(void *arg, int status,
                                    const struct synod_group_list *l);
typedef void (*synod_group_items_cb)(void *arg, int status,
                                     const struct synod_group_items *items);

int synod_async_group_join(struct synod_async *a, const char *group,
                           const char *member, const void *data,
                           size_t data_len, bool want_state,
                           synod_group_joined_cb cb, void *arg);
int synod_async_group_leave(struct synod_async *a, const char *group,
                            const char *member, synod_group_left_cb cb,
                            void *arg);
int synod_async_group_send(struct synod_async *a, const char *group,
                           const char *to, const char *from, const void *data,
                           size_t len, synod_group_sent_cb cb, void *arg);
/* The whole upload, chunk after chunk; cb once, after the last chunk or
 * the first error (the request timeout bounds each chunk). */
int synod_async_group_checkpoint_store(struct synod_async *a, const char *group,
                                       const char *member, uint64_t offset,
                                       const void *data, size_t len,
                                       synod_group_stored_cb cb, void *arg);
int synod_async_group_checkpoint_read(struct synod_async *a, const char *group,
                                      unsigned flags,
                                      synod_group_checkpoint_cb cb, void *arg);
int synod_async_group_state_request(struct synod_async *a, const char *group,
                                    const char *member, synod_group_state_cb cb,
                                    void *arg);
int synod_async_group_view_get(struct synod_async *a, const char *group,
                               unsigned flags, synod_group_info_cb cb,
                               void *arg);
int synod_async_group_list(struct synod_async *a, const char *after,
                           uint32_t limit, unsigned flags,
                           synod_group_list_cb cb, void *arg);
int synod_async_group_read(struct synod_async *a, const char *group,
                           uint64_t from, uint32_t max, const char *member,
                           unsigned flags, synod_group_items_cb cb, void *arg);
int synod_async_group_read_pinned(struct synod_async *a, const char *group,
                                  uint64_t from, uint32_t max,
                                  const char *member, unsigned flags,
                                  uint64_t known_index, synod_group_items_cb cb,
                                  void *arg);

/* ---------------------------------------------------- group membership
 *
 * A membership handle joins a member and then follows the group's stream
 * as that member: the full view (the join's view, then each change
 * applied to it), every message to the group and to the member, the
 * state requests addressed to it as coordinator, checkpoint notices, and
 * the end of the membership. It rides on the subscription machinery
 * (see "Subscriptions"): after a disconnect, failover or restart it
 * resumes on any replica from just after the last item it delivered, so
 * the application sees no gap and no duplicate, and its window bounds
 * what is delivered and not yet consumed.
 *
 * State transfer (want_state). The member's state is the state the
 * application builds from the group's messages. The handle gets it
 * before any message after it:
 *  - CHECKPOINT: the latest checkpoint (N: the state after every item up
 *    to N) is read whole (chunks reassembled, restarted if it is replaced
 *    meanwhile) and handed over in the ready callback; then every message
 *    to the group after N (those before the join included), in order;
 *  - REQUESTED: the coordinator was asked; the handle waits, at most
 *    state_timeout_ms, for a checkpoint stored after the request (its
 *    notice in the stream: any member's, at any offset, answers every
 *    pending request), reads it, and goes on as above. SYNOD_ETIMEDOUT
 *    when none came in time;
 *  - EMPTY: this member is the coordinator: the state is empty, at the
 *    join's offset.
 * So the boundary is exact: the state at N, then the items N+1, N+2, ...
 * with one exception: a message addressed to this member alone after
 * its join is in no member's state, so it is delivered even when it
 * comes before N, in stream order with the views after the join. The join's own
 * view is reported when the stream reaches it (at once if the state is past
 * it), then each view after it, also those committed while the handle waited
 * for its state.
 *
 * Answering a state request: the callback (async) or event (blocking)
 * comes in stream order, so the application's state at that moment is
 * its state after every item up to the request's offset: store it with
 * synod_*_group_member_checkpoint at that offset.
 *
 * The end. A member is removed when its session ends (expired after the
 * TTL, or lost by this client: see "What the engine does") or when a
 * view drops it: the removed callback (async) or the next blocking call
 * on the handle says SYNOD_ESESSION, as does every later call on it. A
 * group subscription that cannot go on ends it with its status (see
 * "Subscriptions"). To come back, join again (with want_state). */

struct synod_group_join_options {
  const char *group;  /* 1..256 bytes */
  const char *member; /* 1..SYNOD_GROUP_MEMBER_MAX bytes */
  const void *data;   /* data_len bytes of member data (may be NULL) */
  size_t data_len;
  bool want_state;
  /* REQUESTED: how long to wait for the coordinator's checkpoint. 0: the
   * client's request timeout. */
  uint32_t state_timeout_ms;
  /* Items delivered and not yet consumed, at most. 0: 1,000. */
  uint32_t window;
};

/* What the join (and with want_state, the state transfer) gave. view is
 * the join's (at join_offset); the state (state_len bytes, may be 0) is
 * the application's state after every item up to state_offset, and the
 * items after state_offset follow. Without want_state, source is NONE
 * and state_offset is join_offset. Borrowed for the ready callback;
 * owned by the blocking call's caller (synod_group_ready_free). */
struct synod_group_ready {
  struct synod_group_view view;
  uint64_t join_offset;
  uint64_t index; /* the log index of the join */
  enum synod_group_state_source source;
  void *state;
  size_t state_len;
  uint64_t state_offset;
};
void synod_group_ready_free(struct synod_group_ready *r);

struct synod_async_group;

/* status 0: joined (and the state is in r); else the join or the state
 * transfer failed (r NULL) and the handle is ended with that status. */
typedef void (*synod_group_ready_cb)(void *arg, int status,
                                     const struct synod_group_ready *r);
/* The full view, after each change (borrowed for the call). */
typedef void (*synod_group_view_cb)(void *arg,
                                    const struct synod_group_view *view);
/* A message, a state request (item->member asks, or "" when the replicas
 * ask because the items after the latest checkpoint fill half the
 * group's window; either way store a checkpoint at item->offset) or a
 * checkpoint notice (borrowed for the call). */
typedef void (*synod_group_item_cb)(void *arg,
                                    const struct synod_group_item *item);
/* The membership ended: SYNOD_ESESSION (removed), or the status that
 * ended its stream. errmsg is borrowed for the call. */
typedef void (*synod_group_removed_cb)(void *arg, int status,
                                       const char *errmsg);

/* Every callback may be NULL but ready_cb; all get arg. */
struct synod_group_callbacks {
  synod_group_ready_cb ready_cb;
  synod_group_view_cb view_cb;
  synod_group_item_cb message_cb;
  synod_group_item_cb state_request_cb;
  synod_group_item_cb checkpoint_cb;
  synod_group_removed_cb removed_cb;
  void *arg;
};

/* Async. Joins (o and cbs are copied) and returns the handle, or
 * SYNOD_EINVAL (the message in synod_async_last_errmsg), SYNOD_ENOMEM,
 * SYNOD_ESHUTDOWN. Then ready_cb once, and after a successful ready the
 * others, in stream order, on the loop's thread, until the membership
 * ends or the handle is closed. The handle stays valid until
 * synod_async_group_member_close or synod_async_close, which frees it. */
int synod_async_group_member_join(struct synod_async *a,
                                  const struct synod_group_join_options *o,
                                  const struct synod_group_callbacks *cbs,
                                  struct synod_async_group **out);
/* Sends from this member (to NULL or "": to all). SYNOD_ESESSION (or the
 * status that ended the membership) directly once it ended. */
int synod_async_group_member_send(struct synod_async *a,
                                  struct synod_async_group *g, const char *to,
                                  const void *data, size_t len,
                                  synod_group_sent_cb cb, void *arg);
/* Stores len bytes as the member's state after every item up to
 * `offset` (see synod_async_group_checkpoint_store). */
int synod_async_group_member_checkpoint(struct synod_async *a,
                                        struct synod_async_group *g,
                                        uint64_t offset, const void *data,
                                        size_t len, synod_group_stored_cb cb,
                                        void *arg);
/* Leaves the group; the handle delivers nothing more (no removed_cb). */
int synod_async_group_member_leave(struct synod_async *a,
                                   struct synod_async_group *g,
                                   synod_group_left_cb cb, void *arg);
/* The full view as of the last view delivered (until ready: the join's;
 * borrowed until the next callback or close). */
const struct synod_group_view *
synod_async_group_member_view(const struct synod_async_group *g);
/* Stops following and frees the handle; no callback of it runs after
 * this returns. It does not leave: the member stays in the view until
 * it leaves or its session ends. Accepts NULL; allowed in its callbacks. */
void synod_async_group_member_close(struct synod_async *a,
                                    struct synod_async_group *g);

/* The blocking membership: the same handle, its callbacks turned into
 * events taken with synod_group_member_next. */
struct synod_group;

enum synod_group_event_type {
  SYNOD_GROUP_EVENT_VIEW = 1,          /* view */
  SYNOD_GROUP_EVENT_MESSAGE = 2,       /* item */
  SYNOD_GROUP_EVENT_STATE_REQUEST = 3, /* item */
  SYNOD_GROUP_EVENT_CHECKPOINT = 4     /* item */
};

/* Borrowed until the next synod_group_member_next or close. */
struct synod_group_event {
  enum synod_group_event_type type;
  struct synod_group_view view;
  struct synod_group_item item;
};

/* Blocking join-with-state: joins, and with want_state gets the state
 * (see "State transfer"), waiting at most timeout_ms for the join and the
 * state together (0: the request timeout plus state_timeout_ms). On 0,
 * *out is the handle and *ready (may be NULL) the view and the state
 * (free with synod_group_ready_free); events follow with
 * synod_group_member_next: the views from the join's on, the messages
 * to this member alone after its join, and everything else after the
 * state's offset, in stream order (see "State transfer").
 * Errors: the join's (SYNOD_EEXIST, ...), the state transfer's
 * (SYNOD_ETIMEDOUT: no checkpoint from the coordinator in time), and the
 * blocking interface's; on an error the member is left (best effort). */
int synod_group_member_join(struct synod_client *c,
                            const struct synod_group_join_options *o,
                            uint32_t timeout_ms, struct synod_group **out,
                            struct synod_group_ready *ready);

/* The next event, waiting up to timeout_ms (0: do not wait;
 * SYNOD_WAIT_FOREVER). SYNOD_ETIMEDOUT if none came; once every event
 * before the end was taken, the status that ended the membership
 * (SYNOD_ESESSION: removed; SYNOD_ECANCELED: it left), on every later
 * call too (synod_client_errmsg says why). One thread at a time. */
int synod_group_member_next(struct synod_group *g, uint32_t timeout_ms,
                            struct synod_group_event *ev);
/* As synod_group_send / synod_group_checkpoint_store from this member;
 * the end's status once it ended. */
int synod_group_member_send(struct synod_group *g, const char *to,
                            const void *data, size_t len, uint32_t timeout_ms,
                            struct synod_group_sent *out);
int synod_group_member_checkpoint(struct synod_group *g, uint64_t offset,
                                  const void *data, size_t len,
                                  uint32_t timeout_ms,
                                  struct synod_group_stored *out);
/* Leaves; then next returns SYNOD_ECANCELED once the events before the
 * leave were taken. */
int synod_group_member_leave(struct synod_group *g, uint32_t timeout_ms);
/* The member's name and group (borrowed until close). */
const char *synod_group_member_name(const struct synod_group *g);
/* Stops following and frees everything (does not leave). Accepts NULL.
 * Not while another thread is in synod_group_member_next on it. Call it
 * before synod_client_free. */
void synod_group_member_close(struct synod_group *g);

#ifdef __cplusplus
}
#endif
#endif /* SYNOD_H */
