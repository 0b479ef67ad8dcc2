/* A deterministic simulator for synod's Raft core: replicas of the real
 * core in one process over a simulated network, disk and clock, all driven
 * by one seeded PRNG, with Raft's safety invariants checked after every
 * step (TigerBeetle's VOPR, FoundationDB's simulation). */
#ifndef SYNOD_SIM_H
#define SYNOD_SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core.h"

/* Replica ids run from 1 to SIM_IDS_MAX; a removed id is never reused. */
#define SIM_IDS_MAX 12

/* Zero in a numeric field means the harness default, or in swarm mode the
 * value the seed picks. */
struct sim_options {
  uint64_t seed;
  uint32_t replicas; /* initial voters, ids 1..replicas; 3 or 5 */
  uint64_t steps;    /* sim_run: phase 1 length, in events fed to cores */
  bool swarm;        /* the seed picks every fault rate */
  bool workload;     /* random proposals, reads, membership, transfers */
  /* Client workload: this many simulated libsynod clients issue random
   * lock, counter and election operations (implies fsm). 0 = none. */
  uint32_t clients;
  /* Replicas apply into the real state machine (server/fsm) and run the
   * server shell (sim_server.c), so scripted clients can be added. */
  bool fsm;
  /* Channel workload (implies fsm): the clients also create channels and
   * publish to them, and subscribers read them from replicas' state
   * machines; the channel history is checked at the end (sim_channel.c,
   * sim_check_history). synod-sim --channels runs 4 clients unless told
   * otherwise. */
  bool channels;
  /* With channels: the subscribers are clients of the replicas' real
   * subscription engine (server/node/subscribe.c, hosted by sim_subs.c),
   * pushed to, granting credits and resuming elsewhere, in place of
   * readers of the replicas' state machines. */
  bool push;
  /* With push: about half the channel subscribers (drawn from a PRNG of
   * their own, so the seed's other draws stay those of --push) are
   * in-process consumers, as the HTTP API's event streams: a sink
   * (subs_sub_request), no credits, flow control by the bytes they hold,
   * started at the end of the turn (subs_start_queued). */
  bool sinks;
  /* Group workload (implies fsm): the clients' threads also join the
   * groups "g0".."g2" as members "c<client>.t<thread>", send to the group
   * or to one member, leave, ask for state and store their state as
   * checkpoints; each answer is checked against the request, replicas'
   * digests (groups are in the image) must agree, and the members read
   * their streams, which are checked against the stream as applied at
   * the end (sim_group.c). synod-sim --groups runs 4 clients unless
   * told otherwise. */
  bool groups;
  /* A SIM_BREAK_* mode: corrupt the channel history (or one subscriber's
   * read) on purpose, to show that the check catches it. 0 = none. */
  uint32_t channel_break;
  /* A SIM_GROUP_BREAK_* mode: plant a bug in the group members' readers
   * once, to show that the group checks catch it. 0 = none. */
  uint32_t group_break;
  /* Key workload (implies fsm): the clients also put, compare-and-put,
   * delete, get and move keys in transactions; the key store is checked
   * in apply order and the key histories at the end (sim_keys.c). */
  bool keys;
  /* A SIM_KEY_BREAK_* mode: corrupt the key model, a watcher or the key
   * history once, to show that the check catches it. 0 = none. */
  uint32_t key_break;
  bool trace;       /* keep trace lines: tail on failure, digest */
  bool trace_print; /* also print every trace line to stdout */
  /* The core's options. */
  uint32_t election_ticks;
  uint32_t heartbeat_ticks;
  uint32_t chunk_bytes;
  uint64_t snapshot_entries;
  uint32_t snapshot_spread_percent;
  uint64_t snapshot_keep_entries;
  uint64_t promote_lag_entries;
  uint32_t append_entries_max;
  bool disable_pre_vote;
  bool disable_check_quorum;
  /* A crash is reported to the other replicas as CORE_EVENT_PEER_GONE
   * (as synodd's peer links report a refused reconnect) after 0-100 ms,
   * and a quarter of the link cuts also report a live peer gone (a false
   * alarm). From a PRNG of its own: seeds replay unchanged without it. */
  bool peer_gone;
  /* The core as synodd runs it (server/node/node.c): snapshots at each
   * voter's own points of the log; appends in flight to a follower (0:
   * the core's default). */
  bool snapshot_slots;
  uint32_t inflight_appends_max;
  /* Fault-free timing, when not in swarm mode. */
  uint32_t tick_ms;
  uint32_t delay_min_ms;
  uint32_t delay_max_ms;
  uint32_t disk_min_ms;
  uint32_t disk_max_ms;
  /* Benchmark: no faults, zero latency; the workload keeps the leader busy
   * with batches of this many entries. 0 = off. */
  uint32_t bench_batch;
};

struct sim_stats {
  uint64_t steps;     /* events fed to cores */
  uint64_t events;    /* simulation events processed */
  uint64_t leaders;   /* distinct (term, leader) pairs seen */
  uint64_t committed; /* highest index applied anywhere */
  uint64_t proposed;  /* entries accepted by PROPOSE */
  uint64_t acked;     /* proposals applied by their proposer */
  uint64_t reads_ok;
  uint64_t crashes;
  uint64_t partitions;
  uint64_t snapshots_taken;
  uint64_t snapshots_installed;
  uint64_t config_changes; /* accepted ADD/REMOVE_MEMBER */
  uint64_t transfers;
  uint64_t msgs_sent;
  uint64_t msgs_lost;        /* loss, partitions, down receivers, filters */
  uint64_t entries_filled;   /* released entries an append read back */
  uint64_t appends_unfilled; /* appends dropped: an entry was compacted */
  /* Clients. */
  uint64_t sessions; /* opened (answered) */
  uint64_t session_expiries;
  uint64_t client_ops;     /* operations invoked */
  uint64_t client_acked;   /* answered (success or error) */
  uint64_t client_unknown; /* given up: outcome unknown */
  uint64_t client_retries; /* resends of the same (session, sequence) */
  uint64_t lock_grants;
  uint64_t counter_ops_checked;
  uint64_t key_ops_checked;    /* in key histories (--keys) */
  uint64_t key_events_watched; /* delivered to key watchers */
  uint64_t key_compactions;    /* watchers below the key history */
  uint64_t lin_inconclusive;   /* counter histories too big to decide */
  /* Channels. */
  uint64_t publishes_acked;
  uint64_t publishes_resent; /* acknowledged after more than one send */
  uint64_t deliveries;       /* messages delivered to subscribers */
  uint64_t sub_moves;        /* subscribers resumed on another replica */
  uint64_t compactions;      /* SYNOD_ECOMPACTED answers to subscribers */
  /* Groups: acknowledged joins, sends, committed checkpoints, and state
   * answers (checkpoint, requested, empty). */
  uint64_t group_joins;
  uint64_t group_sends;
  uint64_t group_checkpoints;
  uint64_t group_states[4];
  /* Members reading their streams (sim_group.c): readers, items read,
   * states taken from a checkpoint and the tail after it. */
  uint64_t group_readers;
  uint64_t group_deliveries;
  uint64_t group_transfers;
  uint64_t sent_to[SIM_IDS_MAX + 1][CORE_MSG_TYPE_COUNT];
  uint64_t installs[SIM_IDS_MAX + 1];
};

struct sim;

/* Creates a cluster of opts->replicas fresh replicas (each log holds the
 * bootstrap CONFIG entry) at time 0. Never returns NULL (aborts on OOM). */
struct sim *sim_new(const struct sim_options *opts);

void sim_free(struct sim *s);

/* The full two-phase run: opts.steps steps with faults, then heal and
 * require that a new entry commits on every live voter within 60 s of
 * simulated time. Returns 0, or 1 on an invariant or liveness failure
 * (sim_failure says which). */
int sim_run(struct sim *s);

/* Processes one simulation event. False once the run has failed. */
bool sim_step(struct sim *s);

/* Runs for ms of simulated time. False on failure. */
bool sim_run_for(struct sim *s, uint64_t ms);

/* Runs until done(s, arg) holds (checked after every event) or timeout_ms
 * pass. True if done held; false on timeout or failure. */
bool sim_run_until(struct sim *s, bool (*done)(struct sim *, void *), void *arg,
                   uint64_t timeout_ms);

uint64_t sim_now_ms(const struct sim *s);
bool sim_failed(const struct sim *s);
/* The first violation, "" if none. Owned by s. */
const char *sim_failure(const struct sim *s);
/* Prints the failure, the trace tail (if tracing) and the replay command. */
void sim_print_failure(const struct sim *s, FILE *f);
/* A digest of every trace line so far (0 unless opts.trace). */
uint64_t sim_digest(const struct sim *s);
const struct sim_stats *sim_stats(const struct sim *s);

/* The replica's core, or NULL if it is down or does not exist. Borrowed;
 * only valid until the next call into the simulator. */
struct core *sim_core(struct sim *s, uint64_t id);
/* The live replica that believes it leads in the highest term, or 0. */
uint64_t sim_leader(const struct sim *s);
/* The replica's state machine: last applied index. */
uint64_t sim_applied(const struct sim *s, uint64_t id);
/* True if some replica applied index; *term receives its term. */
bool sim_committed(const struct sim *s, uint64_t index, uint64_t *term);

/* Faults, for scripted scenarios. */
void sim_link(struct sim *s, uint64_t from, uint64_t to, bool up);
void sim_isolate(struct sim *s, uint64_t id); /* both directions */
void sim_heal(struct sim *s);                 /* all links up, no clogs */
void sim_crash(struct sim *s, uint64_t id);
void sim_restart(struct sim *s, uint64_t id);

/* Called for every message as it is sent; return false to drop it. The
 * callback may shorten m->append.entries_n (a shorter append is one the
 * leader could have sent). */
typedef bool (*sim_filter_cb)(void *arg, struct core_msg *m);
void sim_filter(struct sim *s, sim_filter_cb cb, void *arg);

/* Feeds ev to replica id's core and carries out the update. Returns
 * core_step's result (-1 if the replica is down). */
int sim_event(struct sim *s, uint64_t id, const struct core_event *ev);

/* Proposes n entries of about `bytes` bytes each through replica id;
 * *first and *last receive the indexes on success. */
int sim_propose(struct sim *s, uint64_t id, uint32_t n, uint32_t bytes,
                uint64_t *first, uint64_t *last);

/* Starts a fresh, empty replica under a new id (for ADD_MEMBER); 0 if no
 * id is left. */
uint64_t sim_spawn(struct sim *s);

/* ------------------------------------------------------------ clients */

/* Operations a client issues (sim_client.c). Names are numbers: counter
 * "c<n>", lock "l<n>", election "e<n>", channel "ch<n>" (or "ring", the
 * last one, when the seed has it). */
enum sim_op_type {
  SIM_OP_ADD, /* a1 = delta; a2 != 0: return the previous value */
  SIM_OP_GET, /* linearizable read (ReadIndex) */
  SIM_OP_SET, /* a1 = value */
  SIM_OP_CAS, /* a1 = expect, a2 = update */
  SIM_OP_DELETE,
  SIM_OP_ACQUIRE, /* timeout_ms (0 = try), lock_delay_ms */
  SIM_OP_RELEASE,
  SIM_OP_CAMPAIGN, /* a1 = value */
  SIM_OP_RESIGN,
  SIM_OP_LEADER,           /* linearizable read */
  SIM_OP_PUBLISH,          /* channel name, a1 messages */
  SIM_OP_CHANNEL_CREATE,   /* channel name, with its workload limits */
  SIM_OP_GROUP_JOIN,       /* group name; a1 != 0: want state */
  SIM_OP_GROUP_LEAVE,      /* group name */
  SIM_OP_GROUP_SEND,       /* group name; a1 < 0: to all, else to member a1 */
  SIM_OP_GROUP_CHECKPOINT, /* group name, a1 = the offset it reflects */
  SIM_OP_GROUP_STATE,      /* group name: a state request */
  SIM_OP_KEY,              /* key name, a1 = enum sim_key_kind, a2 = key b */
};

struct sim_op_spec {
  enum sim_op_type type;
  uint32_t name;
  int64_t a1;
  int64_t a2;
  uint32_t timeout_ms;
  uint32_t lock_delay_ms;
  uint32_t thread; /* 0..2: the owner id is thread + 1 */
};

/* What the client saw. code: 0 success, a SYNOD_E* code, or -1 while
 * unanswered or if the client gave up (unknown outcome). */
struct sim_op_result {
  bool done;
  int code;
  int64_t value; /* counters; election: the leader's session */
  bool swapped;
  uint64_t token;
  uint32_t hold;
  uint64_t invoke_ms;
  uint64_t complete_ms;
  uint32_t attempts;
  uint64_t first_offset; /* publish: as acknowledged */
  uint64_t last_offset;
  uint64_t index;
};

/* Adds a scripted client (needs opts.fsm): it opens a session with ttl_ms,
 * keeps it alive every ttl/3 and issues only what sim_client_submit gives
 * it, retrying like libsynod. Returns its number (>= 1). */
uint32_t sim_client_add(struct sim *s, uint32_t ttl_ms);
/* The client's session id, 0 while it has none. */
uint64_t sim_client_session(const struct sim *s, uint32_t c);
/* Starts op on one of the client's threads (which must be idle and the
 * session open). Returns a handle for sim_client_result, 0 if refused. */
uint32_t sim_client_submit(struct sim *s, uint32_t c,
                           const struct sim_op_spec *op);
/* Borrowed; valid until the next call into the simulator. */
const struct sim_op_result *sim_client_result(const struct sim *s,
                                              uint32_t handle);
/* Client-replica links, per direction. */
void sim_client_link(struct sim *s, uint32_t c, uint64_t replica,
                     bool to_server, bool to_client);
/* A paused client does nothing (no keepalives, no retries, drops what it
 * receives), as in a long GC pause; a crashed one stops for good. */
void sim_client_pause(struct sim *s, uint32_t c, bool paused);
void sim_client_crash(struct sim *s, uint32_t c);
/* The end-of-run history checks (counters linearizable against a final
 * read, lock model against the final state, acknowledged effects kept)
 * over the leader's state machine now. False (and the run failed) on a
 * violation. */
bool sim_check_history(struct sim *s);

/* ------------------------------------------------------------ channels */

/* Ways to break the channel check on purpose (opts.channel_break): each
 * corrupts the recorded history (or, RANGE, one read) so that one rule
 * of history_channels_check (or the subscribers' own check) must fail. */
enum sim_channel_break {
  SIM_BREAK_NONE,
  SIM_BREAK_GAP,             /* a subscriber misses one message */
  SIM_BREAK_DUPLICATE,       /* ... delivers one twice */
  SIM_BREAK_COMPACTED,       /* ... is told a kept message is compacted */
  SIM_BREAK_INTERLEAVING,    /* a prefix subscriber swaps two channels */
  SIM_BREAK_INDEX_ORDER,     /* ... all of them do, alike */
  SIM_BREAK_AGREEMENT,       /* an offset carries another payload */
  SIM_BREAK_EXACTLY_ONCE,    /* a payload appears at two offsets */
  SIM_BREAK_REFUSED,         /* a refused publish appears */
  SIM_BREAK_ACKNOWLEDGED,    /* an answer names other offsets */
  SIM_BREAK_LOST,            /* an acknowledged message never arrives */
  SIM_BREAK_REAL_TIME,       /* offsets against real-time order */
  SIM_BREAK_REAL_TIME_INDEX, /* indexes against it, across channels */
  SIM_BREAK_RANGE,           /* a read past the end of a caught-up replica */
  /* Prefix subscribers deliver part of an entry's batch, then resume
   * after its index: the rest is lost (a gap), as a prefix subscription
   * resumed by after_index alone would lose it. */
  SIM_BREAK_SPLIT_BATCH,
  SIM_BREAK_COUNT
};

/* "gap", "duplicate", ... (the names above, lower case, '-' for '_');
 * NULL past the end. */
const char *sim_channel_break_name(uint32_t mode);

/* ----------------------------------------------------------------- keys */

/* Ways to break the key checks on purpose (opts.key_break), each once. */
enum sim_key_break {
  SIM_KEY_BREAK_NONE,
  SIM_KEY_BREAK_SESSION_END, /* the model keeps a session's bound keys */
  SIM_KEY_BREAK_ATOMIC,      /* the model applies half a transaction */
  SIM_KEY_BREAK_COMPARE,     /* the model reverses a compare's outcome */
  SIM_KEY_BREAK_STALE_READ,  /* a get in the history saw another value */
  SIM_KEY_BREAK_GAP,         /* a prefix watcher's cursor skips one */
  SIM_KEY_BREAK_DUPLICATE,   /* ... steps back one */
  SIM_KEY_BREAK_AGREEMENT,   /* a watcher is handed a put's wrong value */
  SIM_KEY_BREAK_COUNT
};

/* "session-end", "atomic", ... (as above, lower case, '-' for '_'); NULL
 * past the last. */
const char *sim_key_break_name(uint32_t mode);

/* --------------------------------------------------------------- groups */

/* Ways to break the group checks on purpose (opts.group_break): a bug
 * planted once in the members' readers (sim_group.c). */
enum sim_group_break {
  SIM_GROUP_BREAK_NONE,
  SIM_GROUP_BREAK_MISADDRESSED, /* one read delivers a message to another */
  SIM_GROUP_BREAK_GAP,          /* a reader drops a message to all */
  SIM_GROUP_BREAK_DUPLICATE,    /* ... records a message twice */
  SIM_GROUP_BREAK_VIEW,         /* ... gets a view's member list wrong */
  SIM_GROUP_BREAK_SAME_VIEW,    /* ... a message to all's content wrong */
  SIM_GROUP_BREAK_STATE,        /* ... a checkpoint's bytes wrong */
  SIM_GROUP_BREAK_COUNT
};

/* "misaddressed", "gap", ... (as above, lower case, '-' for '_'); NULL
 * past the last. */
const char *sim_group_break_name(uint32_t mode);

#endif
