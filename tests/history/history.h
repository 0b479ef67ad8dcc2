/* History checkers for the simulator: is a recorded history of counter
 * operations linearizable? (Wing & Gong's search with Lowe's memoisation,
 * the algorithm of Knossos and Porcupine.) Does a stream of lock events
 * keep mutual exclusion, token order, FIFO and session rules? */
#ifndef SYNOD_HISTORY_H
#define SYNOD_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum history_counter_op {
  HISTORY_COUNTER_GET,     /* result: value */
  HISTORY_COUNTER_SET,     /* arg1: value */
  HISTORY_COUNTER_CAS,     /* arg1: expect, arg2: update; swapped, value */
  HISTORY_COUNTER_ADD_GET, /* arg1: delta; result: value after */
  HISTORY_COUNTER_GET_ADD, /* arg1: delta; result: value before */
  HISTORY_COUNTER_DELETE,  /* value becomes 0 */
};

/* One operation on one counter, as a client saw it. Times are any
 * monotonic clock shared by all clients (the simulator's event sequence):
 * a precedes b iff a.complete < b.invoke.
 *
 * An operation whose outcome the client never learned (it gave up, its
 * process "crashed") has `pending` set: it may have taken effect once, at
 * any point after its invocation, or not at all. An operation that
 * completed with an error took no effect (`failed`); with
 * SYNOD_EOVERFLOW the checker verifies that it would have overflowed. */
struct history_counter_entry {
  enum history_counter_op op;
  int64_t arg1;
  int64_t arg2;
  uint64_t invoke;
  uint64_t complete;
  bool pending;
  bool failed;
  bool overflow; /* failed with SYNOD_EOVERFLOW */
  bool swapped;  /* CAS result */
  int64_t value; /* the value the operation returned */
};

enum history_verdict {
  HISTORY_LINEARIZABLE,
  HISTORY_NOT_LINEARIZABLE,
  HISTORY_INCONCLUSIVE, /* the search exceeded its memory budget */
};

/* Decides whether ops[0..n) on one counter, initially `initial`, is
 * linearizable. On HISTORY_NOT_LINEARIZABLE, `why` (why_len bytes) names
 * the first operation that could not be placed. `states_max` bounds the
 * memoised search (0 = 1,000,000 states). Does not modify ops. */
enum history_verdict
history_counter_check(const struct history_counter_entry *ops, size_t n,
                      int64_t initial, size_t states_max, char *why,
                      size_t why_len);

/* ------------------------------------------------------------------- keys */

/* One key as a register with compare-and-set (fsm "Keys"): absent, or a
 * value with its version, create and mod revisions and the session it is
 * bound to. Values are numbered by the caller (an id per distinct value;
 * LESS/GREATER on values compare the ids, so number them in byte order
 * if the history uses those). */
enum history_kv_op {
  HISTORY_KV_GET,    /* found, got_value, version, mod_revision */
  HISTORY_KV_PUT,    /* value, session (bound to; 0 = unbound), compares */
  HISTORY_KV_DELETE, /* compares; deleted */
  HISTORY_KV_END,    /* session ends: the key goes if bound to it */
};

enum history_kv_target {
  HISTORY_KV_VERSION,
  HISTORY_KV_CREATE_REVISION,
  HISTORY_KV_MOD_REVISION,
  HISTORY_KV_VALUE,
  HISTORY_KV_SESSION,
};

enum history_kv_cmp {
  HISTORY_KV_EQUAL,
  HISTORY_KV_NOT_EQUAL,
  HISTORY_KV_LESS,    /* what the key holds < number */
  HISTORY_KV_GREATER, /* what the key holds > number */
};

/* A compare on this key. For an absent key every target but VALUE is 0,
 * and a VALUE compare never holds. */
struct history_kv_compare {
  enum history_kv_target target;
  enum history_kv_cmp cmp;
  uint64_t number; /* the value id for HISTORY_KV_VALUE */
};

#define HISTORY_KV_COMPARES_MAX 4

/* One operation on one key, as its client saw it. A put or delete with
 * compares takes effect iff they all hold, and `succeeded` must say so. A
 * transaction is projected on each key it touches: its success branch as
 * that key's put or delete with the transaction's compares on that key
 * (which held), succeeded; a get of either branch as a get. Times and
 * pending/failed as in history_counter_entry (failed: no effect).
 *
 * revision: the revision a write that changed the key was given (0 =
 * unknown: then the key's mod revision is unknown until the next write,
 * and reads of it are not checked); every change of a key must have a
 * higher revision than the key's last change. version, mod_revision and
 * create_revision (when not 0) are what the answer said the key is after
 * the operation (after a refused compare: as it is). */
struct history_kv_entry {
  enum history_kv_op op;
  uint64_t value;
  uint64_t session;
  struct history_kv_compare cmp[HISTORY_KV_COMPARES_MAX];
  uint32_t cmp_n;
  uint64_t invoke;
  uint64_t complete;
  bool pending;
  bool failed;
  bool succeeded; /* put, delete: the compares held */
  bool found;     /* get: the key exists */
  uint64_t got_value;
  uint64_t deleted; /* delete: 1 or 0 keys went */
  uint64_t revision;
  uint64_t version;
  uint64_t mod_revision;
  uint64_t create_revision;
};

/* Decides whether ops[0..n) on one key, initially absent, is
 * linearizable (as history_counter_check: why names the first operation
 * no order places). Does not modify ops. */
enum history_verdict history_kv_check(const struct history_kv_entry *ops,
                                      size_t n, size_t states_max, char *why,
                                      size_t why_len);

/* ------------------------------------------------------------------ locks */

/* What the state machine did to sessions and locks, in apply order, as a
 * replica's fsm outputs show it. Locks are numbered by the caller. The
 * checker keeps a model (sessions with deadlines, holders, FIFO queues,
 * lock-delays) and refuses the first event that breaks a rule:
 *
 *   - a lock has at most one holder (session, owner) at a time;
 *   - fencing tokens strictly grow per lock (and across all locks);
 *   - waiters are granted in FIFO order; a grant never jumps a queue;
 *   - only live sessions hold, wait or are granted; a session that expired
 *     or closed holds and waits for nothing once its entry is applied;
 *   - sessions expire when cluster time passes keepalive + ttl, never
 *     before, and no later than the first entry past it; acquire timeouts
 *     and lock-delays likewise;
 *   - after a holder's session expires, its lock stays free until the
 *     expiry deadline plus the holder's lock-delay. */
enum history_lock_kind {
  HISTORY_LOCK_OPEN,      /* session, arg = ttl_ms */
  HISTORY_LOCK_KEEPALIVE, /* session (ignored unless live) */
  HISTORY_LOCK_EXPIRE,    /* session */
  HISTORY_LOCK_CLOSE,     /* session */
  HISTORY_LOCK_GRANT,     /* lock, session, owner, token, arg = lock_delay */
  HISTORY_LOCK_REENTER,   /* lock, session, owner, token, arg = hold count */
  HISTORY_LOCK_RELEASE,   /* lock, session, owner, arg = hold count left */
  HISTORY_LOCK_ENQUEUE,   /* lock, session, owner, sequence, arg = timeout */
  HISTORY_LOCK_TIMEOUT,   /* lock, session, sequence */
  HISTORY_LOCK_CANCEL,    /* lock, session, sequence */
  HISTORY_LOCK_END,       /* the end of one NORMAL entry: deadlines due */
};

struct history_lock_event {
  enum history_lock_kind kind;
  uint64_t index;   /* log index of the entry */
  uint64_t time_ms; /* cluster time after the entry's stamp */
  uint32_t lock;
  uint64_t session;
  uint64_t owner;
  uint64_t sequence;
  uint64_t token;
  uint32_t arg;
};

/* The state of one lock at the end, as a query of the final state shows. */
struct history_lock_final {
  uint32_t lock;
  bool held;
  uint64_t session;
  uint64_t owner;
  uint64_t token;
  uint32_t hold_count;
  uint32_t waiters;
};

struct history_locks;

/* A fresh model: no sessions, no locks. Never returns NULL (aborts). */
struct history_locks *history_locks_new(void);
void history_locks_free(struct history_locks *h);

/* Feeds the next event. Returns true, or false with the rule broken and
 * the values in why (then the model is unspecified: stop feeding). */
bool history_locks_feed(struct history_locks *h,
                        const struct history_lock_event *ev, char *why,
                        size_t why_len);

/* Compares the model with the final state of every lock the history
 * touched (fin[0..n), any order; a lock not listed must be free with no
 * waiters). False, with why, on the first difference. */
bool history_locks_final(const struct history_locks *h,
                         const struct history_lock_final *fin, size_t n,
                         char *why, size_t why_len);

/* The grant that issued token, if any: true and its lock, session, owner. */
bool history_locks_token(const struct history_locks *h, uint64_t token,
                         uint32_t *lock, uint64_t *session, uint64_t *owner);

/* The holder of lock now: true and its session and owner, or false. */
bool history_locks_holder(const struct history_locks *h, uint32_t lock,
                          uint64_t *session, uint64_t *owner);

/* 1 live, 0 expired or closed, -1 never opened. */
int history_locks_session(const struct history_locks *h, uint64_t session);

/* --------------------------------------------------------------- channels */

/* Channel histories (DESIGN.md "Streams"): what publishers were told and
 * what subscribers delivered. Channels are numbered by the caller. Each
 * published message carries a payload of the workload's own, so a
 * delivered message names the publish and the part of its batch that
 * carried it (HISTORY_FOREIGN if its payload is no workload's). */
#define HISTORY_FOREIGN UINT32_MAX

/* A publish of n messages to one channel, as its client saw it. Times are
 * the shared history clock: a precedes b iff a.complete < b.invoke. */
struct history_publish {
  uint32_t channel;
  uint32_t n;        /* messages in the batch: parts 0..n-1 */
  uint64_t invoke;   /* first send */
  uint64_t complete; /* answer received; 0 if the outcome is unknown */
  bool acked;        /* answered with success, as below */
  bool refused;      /* answered with an error: it took no effect */
  uint64_t first_offset;
  uint64_t last_offset;
  uint64_t index; /* the log index of its entry */
};

/* One message delivered, or (compacted) a replica's SYNOD_ECOMPACTED
 * answer to a read of the subscriber's next offset: then `offset` is the
 * first retained and `next` the end of the window [offset, next). */
struct history_delivery {
  uint32_t channel;
  uint64_t offset;
  uint64_t index;
  uint32_t publish; /* into history_channels.pubs, or HISTORY_FOREIGN */
  uint32_t part;
  bool compacted;
  uint64_t next;
};

/* A subscriber: one channel from an offset, or (prefix) every channel of
 * the prefix merged in log-index order from after an index. */
struct history_subscriber {
  const char *name; /* for messages */
  bool prefix;
  uint32_t channel; /* one channel's subscriber */
  uint64_t start;   /* first offset asked for; prefix: delivers index > it */
  bool to_end;      /* ran to the end and caught up with the final state */
  const struct history_delivery *d; /* in delivery order */
  size_t n;
};

struct history_channels {
  uint32_t channels_n;
  /* Per channel: the max_messages of a channel that drops its oldest
   * when full (its window then holds exactly that many), or 0 for one
   * that must never drop a message in this history. */
  const uint64_t *retain;
  const bool *in_prefix; /* per channel: the prefix subscribers' */
  const struct history_publish *pubs;
  size_t pubs_n;
  const struct history_subscriber *subs;
  size_t subs_n;
};

/* Checks, in this order, and stops at the first violation (why, prefixed
 * by the rule's name):
 *
 *   - "gap" / "duplicate": each subscriber delivers each channel's offsets
 *     consecutively from where it started, each once; a jump only at a
 *     SYNOD_ECOMPACTED answer, to the first retained offset;
 *   - "compacted": such an answer came from a channel that drops its
 *     oldest, for an offset below its window, which held exactly its
 *     limit of messages;
 *   - "interleaving": over the indexes both cover, the (channel, offset)
 *     sequence of one prefix subscriber is a prefix of the other's;
 *   - "index order": a prefix subscriber delivers in log-index order, and
 *     only its prefix's channels;
 *   - "agreement": a (channel, offset) carries one message and one index
 *     wherever it is delivered (subscribers and replicas), an index one
 *     channel's messages, and every payload is a publish's;
 *   - "exactly-once": a payload appears at one offset; a batch at
 *     consecutive offsets of one entry; a refused publish nowhere;
 *   - "acknowledged": a publish is delivered where its answer said;
 *   - "lost": every acknowledged message at or after a subscriber's start
 *     (and not compacted before it read it) is delivered to every
 *     subscriber that ran to the end;
 *   - "real-time": a publish acknowledged before another was invoked has
 *     lower offsets (same channel) and a lower index (any channel).
 *
 * Returns true if the history passes. Does not modify h. */
bool history_channels_check(const struct history_channels *h, char *why,
                            size_t why_len);

#endif
