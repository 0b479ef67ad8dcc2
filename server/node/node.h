/* A replica: the Raft core, the state machine and the store, wired to the
 * peer links and the client listener on one libuv loop. main.c builds the
 * options and starts one; everything else happens in here. */
#ifndef SYNOD_NODE_H
#define SYNOD_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "subs.h"
#include "synod.pb-c.h"

#define NODE_NAME_MAX 64
#define NODE_ADDRESS_MAX 128

/* A replica of the declared cluster: its name and peer address. */
struct node_peer {
  char name[NODE_NAME_MAX];
  char address[NODE_ADDRESS_MAX];
};

/* Zero in a numeric field means its default. Strings are copied. */
struct node_options {
  const char *name;              /* this replica, e.g. "synod-0" */
  const char *data_dir;          /* LMDB environment; created if missing */
  const char *cluster_id;        /* default "synod"; peers must agree */
  const char *client_address;    /* listen, ip:port */
  const char *peer_address;      /* listen, ip:port */
  const char *advertise_client;  /* told to peers/clients; default listen */
  const char *advertise_peer;    /* default listen */
  const struct node_peer *peers; /* the declared replicas, self included */
  size_t peers_n;
  /* Without a static list: the StatefulSet's initial size N. The declared
   * replicas are then PREFIX-0..PREFIX-(N-1), PREFIX being this replica's
   * name without its "-<ordinal>"; PREFIX-0 founds the cluster. Their
   * addresses come from discovery (node_discovered). */
  uint32_t initial_size;
  uint32_t tick_ms;          /* [50] */
  uint32_t election_ticks;   /* [10]: elections after 0.5 to 1 s */
  uint32_t frame_max_bytes;  /* client frames [1 MiB] */
  uint64_t snapshot_entries; /* snapshot after this many entries [8192] */
  uint64_t snapshot_bytes;   /* or after this many entry bytes [64 MiB] */
  /* Where a snapshot's image is encoded: in a child process (fork) once
   * the last image passed 4 MiB (AUTO, the default), always, or on the
   * loop (NEVER). */
  enum {
    NODE_SNAPSHOT_FORK_AUTO,
    NODE_SNAPSHOT_FORK_ALWAYS,
    NODE_SNAPSHOT_FORK_NEVER
  } snapshot_fork;
  size_t map_size_max_bytes; /* LMDB map ceiling [64 GiB] */
  /* Server-wide cap on retained channel bytes; the leader writes it into
   * the replicated settings when it differs [0: leave as it is; the
   * state machine's default is 64 MiB]. */
  uint64_t channels_bytes_max;
  /* The key history watches read: events and bytes retained [0: the
   * state machine's defaults, 100,000 and 64 MiB]. Not replicated: give
   * every replica the same values, or their images differ. */
  uint64_t key_history_max;
  uint64_t key_history_bytes_max;
  /* The bound on one group checkpoint, written into the replicated
   * settings alike [0: leave as it is; the default is 16 MiB]. */
  uint64_t group_checkpoint_bytes_max;
  /* The bound on one key's value, written into the replicated settings
   * alike [0: leave as it is; the default is 64 KiB]. */
  uint64_t key_value_bytes_max;
};

struct node;

/* Opens the store, restores the state machine from the latest snapshot
 * and log, and starts listening on both ports. Returns 0, or a SYNOD_E*
 * code with errmsg (SYNOD_ERRMSG_MAX bytes) saying what failed with which
 * value (a taken port, a store that does not open, a bad option). */
int node_start(uv_loop_t *loop, const struct node_options *opts,
               struct node **out, char *errmsg);

/* Candidates found by discovery (DNS, the Kubernetes API): replicas to
 * connect to. New addresses are dialled; one that disappears is no longer
 * dialled, but a member is never removed because discovery lost it. */
void node_discovered(struct node *n, const struct node_peer *peers,
                     size_t peers_n);

/* Graceful stop (SIGTERM): refuse new client requests, hand leadership to
 * a caught-up voter if we lead, then close everything. `cb` runs once the
 * node has let go of the loop's handles; then free it with node_free. */
typedef void (*node_shutdown_cb)(struct node *n, void *arg);
void node_shutdown(struct node *n, node_shutdown_cb cb, void *arg);

/* Renders the replica's metrics in the Prometheus text exposition format
 * (0.0.4): every family under `synod_` with HELP and TYPE, base units in
 * the names (README.md lists them). Cheap enough for any scrape rate: it
 * reads kept counts and never walks the locks, counters or sessions. Call
 * it on the node's loop thread. On success *text is a malloc'ed buffer of
 * *len bytes (NUL-terminated, not counted) that the caller frees; returns
 * 0, or SYNOD_ENOMEM (nothing to free). */
int node_metrics_text(struct node *n, char **text, size_t *len);

/* Frees a node after its shutdown callback ran (or after node_start
 * failed: then *out was never set). Never fails. */
void node_free(struct node *n);

/* ------------------------------------------------ for HTTP and tools */

#define NODE_INFO_MEMBERS_MAX 16
#define NODE_LEADER_HISTORY_MAX 16

/* A replica of the configuration as this one sees it. */
struct node_member_info {
  char name[NODE_NAME_MAX];
  char peer_address[NODE_ADDRESS_MAX];
  char client_address[NODE_ADDRESS_MAX];
  bool voter;
  bool self;
  bool up;          /* a live peer link (self: true) */
  const char *role; /* "leader", "follower" or "learner" */
  /* The leader's view (0 elsewhere): the last entry known on its disk,
   * and how far it is behind the leader's last entry. */
  uint64_t match_index;
  uint64_t lag_entries;
  /* Since this replica last received anything from it; -1 never. */
  int64_t last_contact_ms;
};

/* A leader this replica saw take office. */
struct node_leader_change {
  uint64_t term;
  char leader[NODE_NAME_MAX]; /* "" = none known */
  uint64_t at_unix_ms;
};

struct node_info {
  const char *name;
  const char *cluster_id;
  const char *version;
  const char *role; /* leader, follower, candidate, learner, ... */
  uint64_t term;
  char leader[NODE_NAME_MAX];    /* "" = none known */
  uint64_t leader_since_unix_ms; /* 0 = none known */
  uint64_t commit_index;
  uint64_t applied_index;
  uint64_t last_index;
  uint64_t snapshot_index;
  uint64_t snapshot_bytes;
  uint64_t log_syncs;
  uint64_t log_synced_entries;
  uint64_t log_sync_us; /* total time in those syncs */
  uint64_t uptime_ms;
  uint64_t started_unix_ms;
  uint32_t voters;
  uint32_t learners;
  struct node_member_info members[NODE_INFO_MEMBERS_MAX];
  uint32_t members_n;
  /* Newest first. */
  struct node_leader_change leader_changes[NODE_LEADER_HISTORY_MAX];
  uint32_t leader_changes_n;
};

/* Wall-clock time in ms, for display only (status, leader history). */
uint64_t node_unix_ms(void);

/* Fills *out with what this replica knows now. Never fails. */
void node_info_get(struct node *n, struct node_info *out);

/* The rule of `synodctl ready`: a voter, or a learner that caught up;
 * that knows a leader; and has applied all but at most lag_max committed
 * entries. Writes the reason (or what it is ready as) into why. */
bool node_ready(struct node *n, uint64_t lag_max, char *why, size_t len);

/* The state machine, for read-only views (fsm_*_view). Valid until the
 * loop runs again. */
struct fsm;
const struct fsm *node_fsm(const struct node *n);

/* One replica's own figures, as it reported them to this one. */
struct node_replica_status {
  char name[NODE_NAME_MAX];
  bool reachable; /* it answered (self: always) */
  char error[96]; /* why not */
  char role[16];
  uint64_t term;
  char leader[NODE_NAME_MAX];
  uint64_t commit_index;
  uint64_t applied_index;
  uint64_t last_index;
  uint64_t snapshot_index;
  uint64_t uptime_ms;
  char version[32];
};

/* Every replica of the configuration's figures: this one's at once, the
 * others' asked for over the peer links. Calls cb exactly once, when all
 * answered or after timeout_ms (those that did not are marked
 * unreachable), possibly before returning; `rs` is borrowed until cb
 * returns. */
typedef void (*node_cluster_status_cb)(void *arg,
                                       const struct node_replica_status *rs,
                                       uint32_t n);
void node_cluster_status(struct node *n, uint32_t timeout_ms,
                         node_cluster_status_cb cb, void *arg);

/* A read answered: err 0 with the packed synod.Response (borrowed until
 * the callback returns), or a SYNOD_E* code (ENOLEADER, ETIMEDOUT,
 * ENOMEM, ...) with a message. */
typedef void (*node_read_cb)(void *arg, int err, const char *errmsg,
                             const uint8_t *resp, size_t len);

/* Serves a read request (a LockQuery, ElectionLeader, CounterGet, ...)
 * from this replica's state machine. Linearizable unless `stale`: the
 * leader confirms a read index with a quorum (ReadIndex, Raft thesis 6.4);
 * a follower asks the leader for one over the peer link and answers once
 * it has applied that far, so any replica serves linearizable reads.
 * Calls cb exactly once, within timeout_ms; possibly before returning
 * (stale reads, errors). `req` is copied. With req NULL it is a barrier:
 * cb gets err 0 and no response (resp NULL, len 0) once this replica has
 * applied everything acknowledged before the call. */
void node_read(struct node *n, const Synod__Request *req, bool stale,
               uint32_t timeout_ms, node_read_cb cb, void *arg);

/* A write answered: err 0 with the packed synod.Response (borrowed until
 * the callback returns; it may carry the state machine's own error, as a
 * client's answer would: SYNOD_ETOOBIG for a message over the channel's
 * limit, SYNOD_ELIMIT, ...), or a SYNOD_E* code with a message:
 *   - refused before anything was proposed, so not applied: SYNOD_EINVAL
 *     (not a write node_write serves), SYNOD_ETOOBIG (over the client
 *     frame maximum), SYNOD_EMALFORMED, SYNOD_ENOLEADER (no leader known,
 *     or not reachable), SYNOD_EBUSY (too many writes in flight),
 *     SYNOD_ENOMEM;
 *   - proposed or forwarded, outcome unknown (it may still be applied):
 *     SYNOD_ETIMEDOUT (no answer within the timeout), SYNOD_ENOTLEADER
 *     (leadership changed first; the message says whether the leader
 *     had proposed it), SYNOD_ESHUTDOWN (this replica is stopping).
 * A write in no session is not exactly-once: retrying after an unknown
 * outcome may apply it twice, unless the request deduplicates itself (a
 * ChannelPublish with a message_id). */
typedef void (*node_write_cb)(void *arg, int err, const char *errmsg,
                              const uint8_t *resp, size_t len);

/* Applies a write request (a ChannelPublish, CounterAdd, ...: any body
 * the state machine applies, except a LockAcquire, which may wait) through
 * the log, from any replica: the leader proposes it as it would a
 * client's request; a follower forwards it to the leader over the peer
 * link (ForwardRequest), which checks and proposes it and answers once it
 * is applied. The answer is the one a client would get. Calls cb exactly
 * once, within about timeout_ms (checked every tick); possibly before
 * returning (refusals). `req` is copied; its id is ignored. */
void node_write(struct node *n, const Synod__Request *req, uint32_t timeout_ms,
                node_write_cb cb, void *arg);

/* ----------------------------------------- in-process subscriptions */

/* Subscribes to one channel (or with q->prefix, to every channel whose
 * name starts with q->channel) from q->from / q->offset / q->cursor, as
 * a client's ChannelSubscribe (synod.proto) but for an in-process
 * consumer: q->subscription_id and q->credits are ignored. Served by this
 * replica from its own applied state. Returns 0 with *handle set (then
 * `started` runs exactly once, after this returns, at the end of the
 * loop turn at the earliest), or a SYNOD_E* code with errmsg
 * (SYNOD_ERRMSG_MAX bytes) and no callback: SYNOD_EINVAL (a bad name,
 * offset or start), SYNOD_ELIMIT (too many subscriptions on this
 * replica), SYNOD_ENOMEM. `q` is copied; `sink` must outlive the
 * subscription. */
int node_subscribe(struct node *n, const Synod__ChannelSubscribe *q,
                   const struct node_sub_sink *sink, void *arg,
                   uint64_t *handle, char *errmsg);

/* Watches a key or a key prefix from q->from_revision (0: the revisions
 * after the newest acknowledged, after a ReadIndex round), as a client's
 * KeyWatch (synod.proto), for an in-process consumer: the same machinery
 * and contract as node_subscribe, with the sink's key_started and
 * key_deliver (which must be set). q->subscription_id and q->credits are
 * ignored. Errors: SYNOD_EINVAL (a bad key or prefix), SYNOD_ELIMIT,
 * SYNOD_ENOLEADER, SYNOD_ENOMEM. The handle works with node_sub_drained
 * and node_unsubscribe. */
int node_key_watch(struct node *n, const Synod__KeyWatch *q,
                   const struct node_sub_sink *sink, void *arg,
                   uint64_t *handle, char *errmsg);

/* Subscribes to group q->group's stream from q->from (0: the items
 * after the newest acknowledged, after a ReadIndex round) as member
 * q->member, as a client's GroupSubscribe (synod.proto), for an
 * in-process consumer: the same machinery and contract as
 * node_subscribe, with the sink's group_started and group_deliver (which
 * must be set). q->member may also be empty here: an observer, delivered
 * every item (messages and state requests to one member included).
 * q->subscription_id and q->credits are ignored. Errors: SYNOD_EINVAL (a
 * bad group or member name), SYNOD_ELIMIT, SYNOD_ENOLEADER,
 * SYNOD_ENOMEM; at the start (group_started): SYNOD_ENOTFOUND (no such
 * group), SYNOD_ERANGE (from past the next offset), SYNOD_ECOMPACTED.
 * The group's deletion ends it (`ended`, SYNOD_ENOTFOUND). The handle
 * works with node_sub_drained and node_unsubscribe. */
int node_group_subscribe(struct node *n, const Synod__GroupSubscribe *q,
                         const struct node_sub_sink *sink, void *arg,
                         uint64_t *handle, char *errmsg);

/* The consumer of `handle` has room again (after want_drain): pushing
 * goes on, possibly before this returns. A dead handle is ignored. */
void node_sub_drained(struct node *n, uint64_t handle);

/* Ends a subscription without a callback (the consumer went away). A
 * dead handle is ignored: handles are never reused. */
void node_unsubscribe(struct node *n, uint64_t handle);

/* Subscriptions on this replica, client and in-process, that receive
 * channel `name` (its own and the prefixes that match it). */
uint64_t node_channel_subscribers(struct node *n, const char *name);

#endif /* SYNOD_NODE_H */
