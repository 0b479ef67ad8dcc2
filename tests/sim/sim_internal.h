/* The simulator's insides, shared by its files: the event queue, the
 * replicas with their durable state, the network and the global record
 * that the invariants are checked against. */
#ifndef SYNOD_SIM_INTERNAL_H
#define SYNOD_SIM_INTERNAL_H

#include <stdarg.h>

#include "err.h"
#include "fsm.h"
#include "subs.h"
#include "history.h"
#include "sim.h"
#include "sim_rand.h"

#define SIM_IMAGES_MAX 8   /* old snapshot images kept for sends in flight */
#define SIM_TRACE_TAIL 48  /* trace lines kept for a failure report */
#define SIM_TRACE_LINE 240 /* bytes per kept trace line */
#define SIM_FAILURE_MAX 1024
#define SIM_LIVENESS_MS 60000
#define SIM_CHECK_EVERY 2000 /* steps between whole-cluster checks */

/* ------------------------------------------------------------------ log */

/* One entry of a simulated log. data is owned (NULL when the log keeps
 * only terms and hashes). */
struct sim_entry {
  uint64_t term;
  uint64_t hash; /* of type and bytes: sim_entry_hash */
  uint8_t type;
  uint32_t len;
  uint8_t *data;
};

/* A contiguous run of entries [first, first + n). */
struct sim_log {
  uint64_t first; /* index of e[0]; first - 1 is covered by a snapshot */
  uint64_t n;
  uint64_t cap;
  struct sim_entry *e;
  bool keep_data;
};

void sim_log_init(struct sim_log *l, uint64_t first, bool keep_data);
void sim_log_close(struct sim_log *l);
uint64_t sim_log_last(const struct sim_log *l); /* first - 1 if empty */
/* The entry at index, or NULL if outside the log. */
const struct sim_entry *sim_log_get(const struct sim_log *l, uint64_t index);
/* Deletes entries from index on. */
void sim_log_truncate(struct sim_log *l, uint64_t index);
/* Writes entries (ascending, contiguous) as a store would put keys:
 * overwrites what is there, keeps what lies beyond. Returns false, writing
 * nothing, if the first entry would leave a gap after the log's end. */
bool sim_log_put(struct sim_log *l, const struct core_entry *es, uint32_t n);
/* Drops entries up to and including index; the log then starts at
 * index + 1 (empty if it ended before). */
void sim_log_compact(struct sim_log *l, uint64_t index);
/* Empties the log and restarts it at first. */
void sim_log_reset(struct sim_log *l, uint64_t first);
void sim_log_copy(struct sim_log *dst, const struct sim_log *src);
uint64_t sim_entry_hash(uint8_t type, const uint8_t *data, size_t len);

/* --------------------------------------------------------- state machine */

/* The replicated state: a hash chain over every applied entry. */
struct sim_fsm {
  uint64_t applied; /* last applied index */
  uint64_t applied_term;
  uint64_t count;            /* entries applied, snapshot included */
  uint64_t chain;            /* hash chain through applied */
  struct core_config config; /* as of applied */
};

uint64_t sim_chain_next(uint64_t chain, uint64_t index, uint64_t term,
                        uint64_t hash);
/* Encodes the state, with app_len bytes of the real state machine's image
 * (may be 0), as a snapshot image of at least min_bytes (padding fills the
 * rest). Returns a malloc'd buffer, its length in *len. */
uint8_t *sim_fsm_encode(const struct sim_fsm *f, const uint8_t *app,
                        uint32_t app_len, uint32_t min_bytes, uint32_t *len);
/* Decodes and verifies an image; *app points into buf at the real state
 * machine's image (*app_len bytes). Returns false if corrupt. */
bool sim_fsm_decode(const uint8_t *buf, uint64_t len, struct sim_fsm *f,
                    const uint8_t **app, uint32_t *app_len);

/* -------------------------------------------------------------- updates */

/* A committed entry as the state machine needs it. */
struct sim_commit {
  uint64_t index;
  uint64_t term;
  uint64_t hash;
  uint8_t type;
  bool config_ok; /* CONFIG entries: decoded into config */
  struct core_config config;
  const uint8_t *data; /* NORMAL entries with the real fsm: the bytes */
  uint32_t len;
};

/* A message in flight: one allocation holding the message, its entries and
 * their bytes. */
struct sim_msg {
  struct core_msg m;
  uint64_t seq; /* for the trace */
};

/* A core_update copied out of the core, waiting for its writes to be
 * durable (FIFO per replica). */
struct sim_update {
  struct sim_update *next;
  uint64_t done_ms;
  bool hs_changed;
  struct core_hard_state hs;
  uint64_t truncate_from;
  uint32_t entries_n;
  struct core_entry *entries; /* data in one block after the array */
  bool chunk_present;
  struct core_snapshot_meta chunk_meta;
  uint64_t chunk_offset;
  uint32_t chunk_len;
  bool chunk_last;
  uint8_t *chunk_data;
  uint32_t msgs_n;
  struct sim_msg **msgs;
  bool install_present;
  struct core_snapshot_meta install;
  uint32_t committed_n;
  struct sim_commit *committed; /* data in one block after the array */
  uint32_t reads_n;
  struct core_read *reads;
  bool snapshot_wanted;
};

/* ------------------------------------------------------------- server */

/* The shell around the real state machine, as server/node does it
 * (requests.c, apply.c): cluster-time stamps, Tick entries, proposals
 * matched by (index, term), ReadIndex reads, waits for queued acquires. */
enum sim_pending_kind { SIM_PENDING_REQUEST, SIM_PENDING_TICK };

struct sim_kawait { /* a keepalive waiting for its Tick */
  uint32_t client;
  uint64_t request_id;
  uint64_t session;
};

struct sim_pending {
  uint64_t index;
  uint64_t term;
  uint32_t kind;
  uint32_t client;
  uint64_t request_id;
  struct sim_kawait *kas; /* TICK: the keepalives it carries */
  uint32_t kas_n;
};

struct sim_sread {
  uint64_t ctx;
  uint64_t index; /* 0 until the core answers */
  uint32_t client;
  uint64_t request_id;
  uint8_t *req;
  uint32_t len;
};

struct sim_wait { /* a queued acquire's asker */
  uint64_t session;
  uint64_t sequence;
  uint32_t client;
  uint64_t request_id;
};

struct sim_server {
  struct fsm *fsm;
  uint64_t clock_origin_ms; /* this incarnation's monotonic clock at start */
  int64_t time_offset_ms;   /* cluster time = clock + offset (leader) */
  uint64_t last_stamp_ms;
  uint64_t tick_pending_index;
  struct sim_pending *pend; /* FIFO [pend_head, pend_n) */
  uint32_t pend_head, pend_n, pend_cap;
  struct sim_kawait *kas;
  uint32_t kas_n, kas_cap;
  struct sim_sread *reads;
  uint32_t reads_n, reads_cap;
  struct sim_wait *waits;
  uint32_t waits_n, waits_cap;
  uint64_t *conns; /* conns[c]: the last session client c used here */
  /* opts.push: the real subscription engine (server/node/subscribe.c)
   * on this replica, hosted by sim_subs.c. */
  bool subs_on;
  struct subs subs;
  struct sim *sim; /* the host's arguments */
  struct sim_replica *rep;
  uint64_t leaderless_since_ms;  /* replica clock; 0 while a leader is known */
  uint32_t leader_unheard_ticks; /* node.leader_unheard_ticks */
  uint64_t leader;               /* the one the replica's core names */
};

/* ------------------------------------------------------------- replicas */

struct sim_image {
  uint64_t index;
  uint64_t term;
  uint32_t len;
  uint8_t *bytes;
};

/* What survives a crash. */
struct sim_durable {
  struct core_hard_state hs;
  struct core_snapshot_meta snap; /* index 0 = none */
  struct sim_log log;             /* entries after snap.index */
  /* The snapshot being received, chunk by chunk. */
  struct core_snapshot_meta in_meta;
  uint8_t *in_bytes;
  /* Images taken or installed, newest last; the newest is snap's. */
  struct sim_image images[SIM_IMAGES_MAX];
  uint32_t images_n;
};

struct sim_proposal {
  uint64_t index;
  uint64_t term;
  uint64_t hash;
};

struct sim_read {
  uint64_t ctx;
  uint64_t acked_max; /* highest acknowledged index when issued */
};

struct sim_replica {
  uint64_t id;
  bool exists;
  bool up;
  bool retired;        /* removed from the cluster for good */
  bool was_member;     /* appeared in an applied configuration */
  bool retire_pending; /* removed; retired once the current event ends */
  uint32_t gen;        /* incarnation; older events are stale */
  struct core *core;
  uint32_t clock_permille; /* tick rate relative to real time */
  uint64_t tick_base_ms;
  uint64_t ticks;
  struct sim_durable dur;
  /* The simulated store reads back the durable log through this index
   * without waiting (LMDB, while later writes wait in the write-ahead
   * file until a checkpoint: a write that truncates, a snapshot, a
   * restart, or one write in four); RELEASE carries it on the next tick. */
  uint64_t store_readable;
  uint64_t release_sent;
  struct sim_update *q_head;
  struct sim_update *q_tail;
  uint64_t q_done_ms;
  /* The core's log as its updates described it (terms and hashes). */
  struct sim_log mirror;
  struct sim_fsm fsm;
  struct sim_server srv; /* with opts.fsm */
  /* Observed after each step, for monotonicity checks. */
  enum core_role role;
  uint64_t term;
  uint64_t commit;
  struct sim_proposal *props;
  uint32_t props_head; /* props[props_head..props_n) are pending */
  uint32_t props_n;
  uint32_t props_cap;
  struct sim_read *reads;
  uint32_t reads_n;
  uint32_t reads_cap;
  uint64_t seq; /* payload sequence */
};

/* --------------------------------------------------------------- events */

enum sim_ev_kind {
  SIM_EV_TICK,
  SIM_EV_DELIVER,
  SIM_EV_DISK,
  SIM_EV_WORKLOAD,
  SIM_EV_NEMESIS,
  SIM_EV_RESTART,
  SIM_EV_LINK_UP,
  SIM_EV_CMSG,      /* a client<->server message arrives */
  SIM_EV_CLIENT,    /* a client's poll */
  SIM_EV_PEER_GONE, /* id is told that peer's process is gone */
  SIM_EV_SUB,       /* a channel subscriber's poll (id: its number + 1) */
  SIM_EV_WATCH,     /* a key watcher's poll (id: its number) */
  SIM_EV_GMEMBER,   /* a group member's read (id: its number + 1) */
};

/* A message between a client and a replica: a packed synod.Request to the
 * server, a packed synod.ServerMessage to the client. */
struct sim_cmsg {
  uint32_t client;
  uint32_t replica;
  bool to_server;
  uint32_t len;
  uint8_t data[];
};

struct sim_ev {
  uint64_t at_ms;
  uint64_t seq; /* ties broken by insertion order */
  uint32_t kind;
  uint32_t id;
  uint32_t gen;
  uint32_t peer;
  struct sim_msg *msg;
  struct sim_cmsg *cmsg;
};

/* ----------------------------------------------------------- the faults */

struct sim_faults {
  uint32_t loss_ppm;
  uint32_t dup_ppm;
  uint32_t delay_min_ms;
  uint32_t delay_max_ms;
  uint32_t disk_min_ms;
  uint32_t disk_max_ms;
  uint32_t disk_slow_ppm; /* a write that takes 20x longer */
  uint32_t nemesis_ms;    /* mean gap between fault actions; 0 = none */
  uint32_t crash_weight;
  uint32_t partition_weight;
  uint32_t clog_weight;
  uint32_t fault_ms_max; /* longest partition, clog or downtime */
  uint32_t workload_ms;
  uint32_t batch_max;
  uint32_t bytes_max;
  uint32_t read_weight;
  uint32_t config_weight;
  uint32_t transfer_weight;
};

/* Global record of what was applied anywhere, by index. */
struct sim_global {
  uint64_t term;
  uint64_t hash;
  uint64_t chain;
  uint64_t out_hash;   /* real fsm: hash of the apply's output */
  uint64_t fsm_digest; /* real fsm: fsm_digest at index, 0 = not taken */
};

/* ------------------------------------------------------------- clients */

#define SIM_CLIENTS_MAX 24
#define SIM_THREADS_MAX 3
#define SIM_NAMES_MAX 4
#define SIM_GROUPS_MAX 3

/* One operation as a client invoked and saw it (the history). */
struct sim_hop {
  uint32_t client;
  uint32_t thread;
  struct sim_op_spec spec;
  uint64_t session;
  uint64_t sequence;
  uint64_t invoke; /* history clock (total order of invokes/completions) */
  uint64_t complete;
  struct sim_op_result r;
};

/* A request in flight from a client: resent with the same (session,
 * sequence) until answered. */
struct sim_cop {
  bool active;
  uint32_t hop;  /* history record + 1; 0 for session ops */
  uint32_t body; /* Synod__Request__BodyCase */
  uint64_t request_id;
  uint64_t first_sent_ms;
  uint64_t sent_ms;
  uint64_t wait_ms;     /* resend if unanswered this long */
  uint64_t retry_at_ms; /* a redirect: resend at this time */
  uint32_t target;
  uint32_t attempts;
  uint8_t *req; /* packed Request without id */
  uint32_t len;
};

struct sim_thread {
  struct sim_cop op;
  uint64_t next_ms;
  uint32_t holds[SIM_NAMES_MAX]; /* acknowledged hold counts */
  uint64_t tokens[SIM_NAMES_MAX];
  uint64_t hold_until_ms[SIM_NAMES_MAX];
  /* Groups: acknowledged memberships, and the newest offset an answer
   * gave in each group (what a checkpoint may reflect). */
  bool member[SIM_GROUPS_MAX];
  uint64_t group_offset[SIM_GROUPS_MAX];
  /* The reader of each acknowledged membership (sim_group.c), 0 = none. */
  uint32_t gm[SIM_GROUPS_MAX];
};

struct sim_client {
  uint32_t id;
  bool exists;
  bool scripted;
  bool crashed;
  bool paused;
  uint64_t pause_until_ms;
  uint32_t ttl_ms;
  uint64_t session;
  uint64_t lease_from_ms; /* send time of the last acknowledged keepalive */
  uint64_t ka_sent_ms;
  uint64_t sequence; /* last used */
  uint64_t request_id;
  uint32_t hint; /* leader hint */
  uint32_t threads_n;
  struct sim_cop open;
  struct sim_cop ka;
  struct sim_thread th[SIM_THREADS_MAX];
  /* cut[r][0]: client->r cut, cut[r][1]: r->client cut (counts). */
  uint32_t cut[SIM_IDS_MAX + 1][2];
};

/* Per (session, sequence): the first answer the state machine gave. */
struct sim_answer {
  uint64_t session; /* 0 = empty slot */
  uint64_t sequence;
  bool pending;
  uint64_t hash;
  int code;
  int64_t value;
  bool swapped;
  uint32_t lock; /* acquires: the lock and the delay asked */
  uint32_t lock_delay_ms;
};

/* ------------------------------------------------------------ channels */

#define SIM_CHANNELS_MAX 4 /* "ch0".."ch2" (the prefix "ch") and "ring" */
#define SIM_BATCH_MAX 4    /* messages per publish */
#define SIM_SUBS_MAX 72    /* workload subscribers and final readers */

/* opts.push: a client's connection to a replica's subscription engine
 * (sim_subs.c): the frames the engine sent, in a queue the client takes
 * from at its pace. Its id names the client (kind, number) and counts
 * the client's connections. */
enum sim_conn_kind {
  SIM_CONN_SUB = 1,
  SIM_CONN_WATCH = 2,
  SIM_CONN_MEMBER = 3
};
struct sim_frame;
struct sim_conn {
  uint64_t id; /* 0: none */
  uint32_t count;
  uint32_t replica; /* whose engine */
  uint32_t gen;     /* its incarnation */
  struct sim_frame *q_head, *q_tail;
  size_t q_bytes;
  size_t drain_below; /* 0: no drain asked */
  uint64_t req_next;
  /* Flow control, as libsynod's: credits granted at a time, items taken
   * since the last grant, and granted on this connection and not yet
   * delivered (below 0: the engine overran the credits). */
  uint32_t window;
  uint32_t taken;
  int64_t credit_left;
  /* opts.sinks: an in-process consumer (the HTTP API's kind), not a
   * connection: subscribed with subs_sub_request as `handle`, its sink
   * queueing the same frames a connection would; no credits. */
  bool inproc;
  uint64_t handle; /* 0: none */
  struct sim *sim; /* the sink's */
  /* In-process: its HTTP connection dropped and the API has not yet
   * cancelled the subscription (its close callback does): the sink takes
   * nothing and says SIZE_MAX queued, as the HTTP API's does. */
  bool gone;
};

/* A subscriber, modelled as the server's subscriptions will work: a
 * cursor on one replica, which delivers committed, applied messages from
 * its own state machine (fsm_query with ChannelRead, stale) in offset
 * order; on a move or a failover it resumes on another replica from the
 * last delivered offset + 1, or (prefix) after the last delivered index.
 * Its deliveries are its history. */
struct sim_sub {
  char name[32];
  bool prefix;  /* every "ch*" channel, merged in log-index order */
  bool final;   /* an end-of-run reader */
  bool started; /* at start_ms */
  bool stopped; /* unsubscribed at stop_ms */
  bool to_end;  /* drained at the end of the run */
  uint32_t channel;
  uint64_t start; /* first offset asked for; prefix: after this index */
  uint64_t start_ms;
  uint64_t stop_ms; /* 0: runs to the end */
  uint32_t poll_ms;
  uint32_t batch;    /* messages per read (and per prefix step) */
  uint32_t move_ppm; /* per poll: reconnect to another replica */
  bool from_next;    /* starts at the end, not at the first offset */
  uint32_t replica;  /* attached; 0 = none */
  uint32_t gen;      /* the replica's incarnation when attached */
  uint64_t next;     /* one channel: the next offset to deliver */
  /* The index of the last message delivered (prefix: where it resumes);
   * one channel: after a compacted answer, the applied index of the
   * replica that gave it. A replica that has applied it holds the
   * offset before next (or next itself). */
  uint64_t last_index;
  /* Prefix: the next offset per channel on this replica, 0 = not yet
   * computed; valid once the replica has applied last_index. */
  bool cursors_valid;
  uint64_t cursor[SIM_CHANNELS_MAX];
  struct history_delivery *d; /* d[0..n) */
  uint32_t n, cap;
  bool broke; /* SIM_BREAK_RANGE done */
  /* opts.push: a client of the server's own subscriptions (sim_subs.c)
   * on connection `conn` to `replica`, as libsynod's: frames arrive in
   * a queue it takes from at each poll, it grants credits as it takes
   * messages and resumes elsewhere after its last one. */
  bool push;
  struct sim_conn c;
  uint64_t sub_req;      /* the subscribe request in flight; 0 once answered */
  uint64_t after_offset; /* prefix: the last offset delivered at last_index */
  uint64_t known_index;  /* one channel: the last message's (libsynod's) */
  uint64_t scope_index;  /* where it began (libsynod's) */
  uint64_t retry_ms;     /* no subscribe before this (after a refusal) */
};

struct sim {
  struct sim_options opts;
  /* From the seed: 0 = the replicas never send RELEASE; else their cores
   * keep this many bytes of the newest entries and release the rest once
   * durable and applied, and appends are filled from the durable log. */
  uint64_t release_keep;
  struct sim_rand rand;
  struct sim_rand gone_rand; /* opts.peer_gone only */
  struct sim_rand ckpt_rand; /* release_keep > 0 only: checkpoints */
  struct sim_rand sink_rand; /* opts.sinks only */
  struct sim_faults f;
  uint64_t now_ms;
  uint64_t ev_seq;
  struct sim_ev *heap;
  uint64_t heap_n;
  uint64_t heap_cap;
  struct sim_replica r[SIM_IDS_MAX + 1];
  uint64_t ids_n; /* highest id in use */
  /* link_down[from][to]: nonzero while that direction is cut. */
  uint32_t link_down[SIM_IDS_MAX + 1][SIM_IDS_MAX + 1];
  uint64_t clog_until[SIM_IDS_MAX + 1][SIM_IDS_MAX + 1];
  /* Phase 2: the latest delivery time per link, so that links deliver in
   * order, as TCP does (phase 1 reorders freely). */
  uint64_t fifo_at[SIM_IDS_MAX + 1][SIM_IDS_MAX + 1];
  sim_filter_cb filter;
  void *filter_arg;
  /* Invariant state. */
  struct sim_global *g; /* g[i] for index i, 1..g_n */
  uint64_t g_n;
  uint64_t g_cap;
  uint64_t *leader_of; /* leader_of[term] */
  uint64_t leader_of_cap;
  struct sim_proposal *acked;
  uint64_t acked_n;
  uint64_t acked_cap;
  uint64_t acked_max;
  uint64_t read_ctx;
  /* opts.push: the subscription engines' ReadIndex rounds (sim_subs.c). */
  struct sim_subs_read *sub_reads;
  uint32_t sub_reads_n, sub_reads_cap;
  struct core_config cfg_applied; /* the latest CONFIG applied anywhere */
  uint32_t clock_spread_permille;
  uint64_t proposed_first; /* of the last PROPOSE step */
  uint64_t proposed_last;
  char errmsg[SYNOD_ERRMSG_MAX]; /* core_errmsg of the last failed step */
  bool phase2;
  bool failed;
  char failure[SIM_FAILURE_MAX];
  struct sim_stats stats;
  /* Trace. */
  uint64_t digest;
  char tail[SIM_TRACE_TAIL][SIM_TRACE_LINE];
  uint64_t tail_n;
  uint64_t msg_seq;
  uint64_t next_check_step;
  /* Bench: entries the leader has proposed and not yet applied. */
  uint64_t bench_outstanding;
  /* Clients and their history (with opts.fsm). */
  struct sim_client *cl; /* cl[1..cl_n] */
  uint32_t cl_n;
  uint32_t client_poll_ms;
  uint32_t client_wait_ms; /* resend after this long without an answer */
  uint32_t client_ttl_min_ms;
  uint32_t client_ttl_max_ms;
  uint32_t client_crash_ppm; /* per poll */
  uint32_t client_pause_ppm;
  uint32_t client_close_ppm;
  uint32_t client_part_weight; /* nemesis: client-replica partitions */
  uint32_t names_n;            /* counters, locks, elections in use */
  uint32_t fsm_window;         /* fsm results_per_session_max */
  bool chunk_explicit;         /* opts.chunk_bytes given, not picked */
  bool clients_stopped;
  struct sim_hop *hops;
  uint32_t hops_n, hops_cap;
  uint64_t hist_clock;
  struct sim_answer *answers; /* open addressing, power-of-two cap */
  uint64_t answers_n, answers_cap;
  struct history_locks *locks; /* the lock/session model, fed in order */
  /* Channels (opts.channels). */
  uint32_t chan_n;      /* "ch0".."ch<chan_n - 1>": the prefix's */
  bool chan_ring;       /* and "ring", channel chan_n, keeping ring_retain */
  uint64_t ring_retain; /* its max_messages: it drops its oldest */
  bool ring_ready;      /* a create of it was acknowledged */
  uint32_t pub_weight;  /* percent of client operations on channels */
  struct sim_sub *subs; /* subs[0..subs_n) */
  uint32_t subs_n;
  struct sim_keys *keys;     /* opts.keys: sim_keys.c */
  struct sim_groups *groups; /* opts.groups: sim_group.c */
};

/* sim.c */
void sim_schedule(struct sim *s, uint64_t at_ms, enum sim_ev_kind kind,
                  uint64_t id, struct sim_msg *msg);
void sim_schedule_cmsg(struct sim *s, uint64_t at_ms, struct sim_cmsg *m);
/* A client's poll (peer 0) or the end of one of its link cuts (peer:
 * replica | direction << 8 | 1 << 16). */
void sim_schedule_client(struct sim *s, uint64_t at_ms, uint32_t c,
                         uint32_t peer);
int sim_step_core(struct sim *s, struct sim_replica *rep,
                  const struct core_event *ev);
void sim_replica_start(struct sim *s, struct sim_replica *rep);
void sim_retire(struct sim *s, uint64_t id);
/* Cuts from->to for ms, then restores it (partitions compose). */
void sim_cut_for(struct sim *s, uint64_t from, uint64_t to, uint64_t ms);
/* Marks the run failed with a message (the first one wins). */
void sim_fail(struct sim *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void sim_trace(struct sim *s, uint64_t id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sim_trace_core_cb(void *arg, uint64_t id, const char *line);

/* sim_disk.c */
void sim_durable_init(struct sim_durable *d);
void sim_durable_close(struct sim_durable *d);
/* Deep-copies what the shell needs of an update (the core's pointers die
 * at the next step). */
struct sim_update *sim_update_copy(struct sim *s, struct sim_replica *rep,
                                   const struct core_update *up,
                                   bool keep_data);
void sim_update_free(struct sim_update *u);
/* The simulated store's checkpoint: everything durable reads back. */
void sim_disk_checkpoint(struct sim_replica *rep);
void sim_disk_enqueue(struct sim *s, struct sim_replica *rep,
                      struct sim_update *u);
void sim_disk_done(struct sim *s, struct sim_replica *rep);
void sim_disk_drop(struct sim_replica *rep);
const struct sim_image *sim_image_find(const struct sim_durable *d,
                                       uint64_t index);
void sim_image_add(struct sim_durable *d, uint64_t index, uint64_t term,
                   uint8_t *bytes, uint32_t len);

/* sim_net.c */
struct sim_msg *sim_msg_clone(const struct core_msg *m, const uint8_t *data);
/* Sends msg (taking ownership) through the simulated network. */
void sim_net_send(struct sim *s, struct sim_replica *from, struct sim_msg *msg);
void sim_net_deliver(struct sim *s, struct sim_msg *msg);
bool sim_net_link_up(const struct sim *s, uint64_t from, uint64_t to);
void sim_msg_describe(const struct core_msg *m, char *buf, size_t n);
void sim_net_cut(struct sim *s, uint64_t from, uint64_t to);
/* With opts.peer_gone: tells `to` (after 0-100 ms) that `gone`'s process
 * is gone. */
void sim_peer_gone_later(struct sim *s, uint64_t to, uint64_t gone);

/* sim_fsm.c: applying updates to the state machine */
void sim_apply_update(struct sim *s, struct sim_replica *rep,
                      const struct sim_update *u);
void sim_take_snapshot(struct sim *s, struct sim_replica *rep);

/* sim_server.c */
void sim_server_start(struct sim *s, struct sim_replica *rep);
void sim_server_stop(struct sim_replica *rep);
/* After every core step: leadership won or lost. */
void sim_server_role(struct sim *s, struct sim_replica *rep, bool was_leader);
void sim_server_tick(struct sim *s, struct sim_replica *rep);
void sim_server_apply(struct sim *s, struct sim_replica *rep,
                      const struct sim_commit *c, bool first);
/* The fsm image inside a snapshot image: decode into rep's fsm. */
bool sim_server_restore(struct sim *s, struct sim_replica *rep,
                        const uint8_t *image, size_t len, uint64_t index);
/* Returns true if rd was one of the server's reads. */
bool sim_server_read(struct sim *s, struct sim_replica *rep,
                     const struct core_read *rd);
void sim_server_reads_serve(struct sim *s, struct sim_replica *rep);
void sim_server_receive(struct sim *s, struct sim_replica *rep,
                        const struct sim_cmsg *m);
/* Records or compares the fsm digest at index (after apply, snapshot,
 * install). */
void sim_server_digest(struct sim *s, struct sim_replica *rep, uint64_t index);

/* sim_client.c */
void sim_clients_pick(struct sim *s);
void sim_clients_init(struct sim *s);
void sim_client_unclog(struct sim *s, uint32_t c, uint32_t peer);
void sim_clients_free(struct sim *s);
void sim_client_poll(struct sim *s, uint32_t c);
void sim_client_receive(struct sim *s, const struct sim_cmsg *m);
void sim_cnet_send(struct sim *s, uint32_t client, uint32_t replica,
                   bool to_server, const uint8_t *data, size_t len);
void sim_cnet_deliver(struct sim *s, struct sim_cmsg *m);
void sim_clients_nemesis(struct sim *s, uint64_t ms);

/* sim_keys.c: the key workload and its checks */
enum sim_key_kind {
  SIM_KEY_PUT,    /* half of them bound to the session */
  SIM_KEY_CREATE, /* version 0: create only (half bound) */
  SIM_KEY_CAS_VERSION,
  SIM_KEY_CAS_MOD,
  SIM_KEY_CAS_VALUE,
  SIM_KEY_DELETE,
  SIM_KEY_CAS_DELETE,
  SIM_KEY_GET,
  SIM_KEY_MOVE, /* txn: if a holds the value seen and b is absent, delete
                   a and put b; else get both */
  SIM_KEY_DELETE_PREFIX, /* every key "k/", at one revision */
  SIM_KEY_KINDS,
};
void sim_keys_pick(struct sim *s);
void sim_keys_init(struct sim *s); /* schedules the watchers */
void sim_keys_watch_poll(struct sim *s, uint32_t id);
/* The fsm's key_history_max for the run (0 = the default). */
uint64_t sim_keys_history_max(const struct sim *s);
/* opts.push: key watcher i's connection (NULL if there is none). */
struct sim_conn *sim_keys_conn(struct sim *s, uint32_t i);
/* opts.push: group member i's connection (NULL if there is none), and
 * whether every member still running has taken its whole stream; else
 * why not (why may be NULL). */
struct sim_conn *sim_groups_conn(struct sim *s, uint32_t i);
bool sim_groups_members_caught_up(struct sim *s, char *why, size_t len);
/* opts.push: every key watcher has taken every revision; else why not
 * (why may be NULL). */
bool sim_keys_watchers_caught_up(struct sim *s, char *why, size_t len);
void sim_keys_free(struct sim *s);
/* The share of client operations on keys: sets *sp to one, or false. */
bool sim_keys_op_pick(struct sim *s, struct sim_op_spec *sp);
bool sim_keys_is_read(const struct sim_op_spec *sp);
/* Fills req's body for sp (req's session and sequence set); the messages
 * live in s->keys until the next call. */
void sim_keys_build(struct sim *s, uint32_t client, uint32_t t,
                    const struct sim_op_spec *sp, Synod__Request *req);
/* The client got resp for history op hop (0-based). */
void sim_keys_result(struct sim *s, uint32_t client, uint32_t t, uint32_t hop,
                     const Synod__Response *resp);
/* The first replica applied entry index into f with output out. */
void sim_keys_apply(struct sim *s, const struct fsm *f, uint64_t index,
                    const uint8_t *data, size_t len,
                    const struct fsm_output *out);
/* End of run: each key's history linearizable against f's final state. */
void sim_keys_check(struct sim *s, const struct fsm *f);

/* sim_group.c: the group members' readers and the group checks */
void sim_groups_pick(struct sim *s);
/* The fsm's group_items_max for the run (0 = the default). */
uint32_t sim_groups_items_max(const struct sim *s);
void sim_groups_free(struct sim *s);
/* The first replica applied an entry into f with output out. */
void sim_groups_apply(struct sim *s, const struct fsm *f, uint64_t index,
                      const struct fsm_output *out);
/* An acknowledged join: starts its member's reader; returns its id. */
uint32_t sim_groups_joined(struct sim *s, uint32_t client, uint32_t thread,
                           uint32_t g, const Synod__GroupJoinReply *r);
/* A state request's answer for reader id. */
void sim_groups_state_answer(struct sim *s, uint32_t id,
                             const Synod__GroupState *st);
void sim_groups_client_crash(struct sim *s, uint32_t client);
/* Sets *sp to store reader id's state as a checkpoint (with due: only
 * one a state request asked it for). False if it has none to store. */
bool sim_groups_checkpoint(struct sim *s, uint32_t id, bool due,
                           struct sim_op_spec *sp);
void sim_groups_poll(struct sim *s, uint32_t id);
/* End of run: readers catch up on the leader; the group checks. */
void sim_groups_check(struct sim *s, uint32_t leader);

/* sim_channel.c: the channel workload's subscribers and checks */
void sim_channels_pick(struct sim *s);
void sim_channels_init(struct sim *s);
void sim_channels_free(struct sim *s);
void sim_sub_poll(struct sim *s, uint32_t id);
/* What sim_subs.c takes from sim_channel.c. */
bool sim_sub_attach(struct sim *s, struct sim_sub *sb, uint32_t avoid,
                    const char *why);
bool sim_sub_connected(const struct sim *s, const struct sim_sub *sb);
void sim_sub_deliver(struct sim *s, struct sim_sub *sb, uint32_t c,
                     const Synod__ChannelMessage *m);
/* An ECOMPACTED answer: first retained `first`, the window's end `next`
 * then (0: the replica's now). */
void sim_sub_compacted(struct sim *s, struct sim_sub *sb, const char *name,
                       uint64_t first, uint64_t next);
uint32_t sim_prefix_channel(const struct sim *s, const char *name);

/* sim_subs.c: the real subscription engine on the replicas (opts.push)
 * and the channel subscribers that use it. */
/* A client's connection: open to replica's engine (false if it runs
 * none), alive while that replica runs the incarnation it was opened
 * to, closed (the engine forgets its subscriptions; the frames not taken
 * are lost), the next frame (NULL if none, or if the connection died),
 * and the drain the engine asked for once the client took enough. */
bool sim_conn_open(struct sim *s, struct sim_conn *c, enum sim_conn_kind kind,
                   uint32_t number, uint32_t replica);
bool sim_conn_alive(const struct sim *s, const struct sim_conn *c);
struct subs *sim_conn_engine(struct sim *s, const struct sim_conn *c);
void sim_conn_close(struct sim *s, struct sim_conn *c);
Synod__ServerMessage *sim_conn_take(struct sim *s, struct sim_conn *c,
                                    uint64_t *channel_next);
/* A subscribe on c grants its window; n items delivered: how many past
 * the credits (0 if none); after taking: grants back the items taken once
 * they are half the window (if the subscribe was answered) and tells the
 * engine when the queue has room again. */
void sim_conn_subscribed(struct sim_conn *c);
int64_t sim_conn_delivered(struct sim_conn *c, size_t n);
void sim_conn_room(struct sim *s, struct sim_conn *c, bool answered);
/* An end or refusal that sends the client elsewhere (not a failure). */
bool sim_conn_moves_on(int code);
void sim_conn_free(struct sim_conn *c);
void sim_subs_start(struct sim *s, struct sim_replica *rep);
void sim_subs_stop(struct sim_replica *rep);
/* A peer's message reaches the replica (member.last_recv_ms). */
void sim_subs_heard(struct sim *s, struct sim_replica *rep, uint64_t from);
/* After each step of the replica's core: tracks the leader it knows. */
void sim_subs_role(struct sim *s, struct sim_replica *rep);
/* A ReadIndex answer of ctx with SIM_READ_CTX_SUBS: true if it was one. */
bool sim_subs_read(struct sim *s, const struct core_read *rd);
/* Serves the rounds that are done, failed or late. */
void sim_subs_reads_serve(struct sim *s);
void sim_subs_tick(struct sim *s, struct sim_replica *rep);
void sim_psub_poll(struct sim *s, struct sim_sub *sb);
/* Whether a push subscriber still running has caught up with the
 * leader's channels (the end of the run). */
bool sim_psub_caught_up(struct sim *s, const struct sim_sub *sb,
                        uint32_t leader);
void sim_psub_free(struct sim_sub *sb);
/* sim_run_until's test: every push subscriber still running caught up. */
bool sim_psubs_caught_up(struct sim *s, void *arg);
/* The first push subscriber behind, for a failure message. */
void sim_psubs_describe(struct sim *s, char *buf, size_t len);
/* Channels in the workload: the prefix's and the ring. */
uint32_t sim_channels_total(const struct sim *s);
/* "ch<c>" or "ring". buf holds at least 8 bytes. */
void sim_channel_name(const struct sim *s, uint32_t c, char *buf);
/* The payload of part `part` of the publish recorded as history
 * operation `hop` (1-based): unique, and long enough to vary in size.
 * Returns its length (at most SIM_PAYLOAD_MAX). */
#define SIM_PAYLOAD_MAX 80
size_t sim_channel_payload(uint32_t hop, uint32_t part, uint8_t *buf);
/* Drains the subscribers, reads every channel on every replica, and
 * checks the channel history (history_channels_check). */
void sim_channels_check(struct sim *s);

/* sim_observe.c: the record of what the state machine did */
void sim_observe_apply(struct sim *s, uint64_t index, const uint8_t *data,
                       size_t len, const struct fsm_output *out,
                       uint64_t time_ms);
const struct sim_answer *sim_answer_find(const struct sim *s, uint64_t session,
                                         uint64_t sequence);
void sim_observe_free(struct sim *s);

/* sim_check.c */
void sim_check_step(struct sim *s, struct sim_replica *rep,
                    const struct core_update *up);
void sim_check_hard_state(struct sim *s, struct sim_replica *rep,
                          const struct core_hard_state *hs);
/* c is about to be applied on rep, making its hash chain `chain`. */
void sim_check_apply(struct sim *s, struct sim_replica *rep,
                     const struct sim_commit *c, uint64_t chain);
void sim_check_durability(struct sim *s);
void sim_check_final(struct sim *s);
void sim_check_sent(struct sim *s, struct sim_replica *rep,
                    const struct core_msg *m);

/* sim_workload.c */
void sim_workload_pick(struct sim *s);
void sim_workload_tick(struct sim *s);
void sim_nemesis_tick(struct sim *s);
void sim_workload_applied(struct sim *s, struct sim_replica *rep,
                          const struct sim_commit *c);
void sim_workload_read(struct sim *s, struct sim_replica *rep,
                       const struct core_read *rd);
void sim_config_applied(struct sim *s, const struct core_config *cfg);
void sim_bench_tick(struct sim *s);

#endif
