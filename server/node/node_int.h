/* A replica's internals, shared by the files of server/node. */
#ifndef SYNOD_NODE_INT_H
#define SYNOD_NODE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "client.h"
#include "core.h"
#include "err.h"
#include "fsm.h"
#include "metrics.h"
#include "node.h"
#include "peer.h"
#include "store.h"
#include "subs.h"
#include "u64map.h"

/* ------------------------------------------------------------- persist */

/* A snapshot write: one taken here (image = the state machine's) or one
 * received from the leader (image = the chunks, assembled). */
struct persist_snapshot {
  bool present;
  bool received; /* from the leader: restore the fsm from it */
  struct core_snapshot_meta meta;
  uint8_t *image; /* owned */
  size_t len;
  /* The worker's: one of ours, at or below a snapshot the store received
   * from the leader meanwhile; not written. */
  bool stale;
};

/* A snapshot this replica took, too large for one write: its image goes
 * to the store a step at a time (PERSIST_STAGE_STEP_BYTES, one LMDB
 * transaction each), each step a batch of its own queued behind the log
 * writes that arrived during the one before, and the last step commits
 * it. One transaction for a 5 MB image took 10-36 ms here, in which this
 * replica wrote no log and its flush of megabytes held up the other
 * replicas' syncs on a shared disk: the fan-out's p99. */
struct persist_stage {
  struct core_snapshot_meta meta;
  uint8_t *image; /* owned */
  size_t len;
  size_t written;      /* bytes in the store; the worker's during a step */
  bool committed;      /* the worker's: the last step made it current */
  bool lost;           /* the worker's: a received snapshot replaced it */
  uint64_t generation; /* n->fsm_generation when taken */
  uint64_t write_us;   /* the steps' writes so far */
  size_t step;         /* image bytes per step */
};

/* The writes of one or more core updates, merged into one transaction and
 * one sync (group commit), and the messages that may leave only once they
 * are durable. A batch with a snapshot is closed: later updates open a
 * new one, so the store sees writes in the order the core made them. */
struct persist_batch {
  bool hard_state_set;
  struct core_hard_state hard_state;
  uint64_t truncate_from; /* 0 = none */
  struct core_entry *entries;
  uint32_t entries_n;
  uint32_t entries_cap;
  uint8_t *arena; /* the entries' payloads, back to back */
  size_t arena_len;
  size_t arena_cap;
  struct core_msg *msgs; /* deferred; they carry no pointers */
  uint32_t msgs_n;
  uint32_t msgs_cap;
  struct persist_snapshot snapshot;
  /* A step of persist.stage (closed to other writes), or its abort. */
  bool stage_step;
  bool stage_abort;
  /* Started: closed to new writes, on its way to the disk (or needing no
   * trip there). Synced: its writes are durable. Batches complete in
   * list order, each once it and every batch before it are synced. */
  bool started;
  bool synced;
  uv_work_t work;    /* work.data = node */
  uint64_t ticket;   /* its turn to write (persist.write_turn) */
  uint64_t write_us; /* how long the write and its sync took */
  uint64_t readable; /* store_log_readable_last() after the write */
  /* The store's checkpoint durations after this batch's write, copied
   * under the write lock (the loop must not read the store meanwhile). */
  struct histogram checkpoint_durations;
  int rv; /* the worker's result */
  char errmsg[SYNOD_ERRMSG_MAX];
  struct persist_batch *next;
};

/* Batches go to the disk through libuv's thread pool, several at once:
 * each worker writes its batch when its ticket's turn comes (write_lock,
 * so the store sees writes in the core's order, one thread at a time),
 * then syncs outside the lock, so the next batch is written while this
 * one syncs. Syncs of one file overlap well on this kind of disk (two at
 * once completed 3x as many per second as one at a time here, four 5x),
 * and a write no longer waits for the sync before it to finish. */
#define PERSIST_INFLIGHT_MAX 3

/* The image bytes one step of a staged snapshot writes (struct
 * persist_stage): two of the store's 256 KiB values, a flush of about a
 * millisecond here; for a larger image, a sixteenth of it (each step waits
 * behind the log writes queued before it, and under a heavy load a 56 MB
 * image in 512 KiB steps took more than 5 s to become current). */
#define PERSIST_STAGE_STEP_BYTES ((size_t)512 << 10)
#define PERSIST_STAGE_STEPS_MAX 16

struct persist {
  uv_idle_t idle; /* writes on the loop; see persist_start() */
  bool idle_open;
  bool lock_open;
  struct persist_batch *head; /* oldest first; started ones lead */
  struct persist_batch *tail;
  uint32_t inflight; /* batches queued to the pool, not yet back */
  bool on_loop;      /* a batch is being written on the loop */
  bool completing;   /* in persist_complete_ready(): not again */
  uv_mutex_t write_lock;
  uv_cond_t write_cond;
  uint64_t next_ticket; /* the next started batch's */
  uint64_t write_turn;  /* the ticket whose batch writes next */
  /* Under write_lock: a write failed, and why. The batches after it are
   * not written (the store went on without its entries, so theirs would
   * not follow) and carry its message: whichever completion stops the
   * replica first names the cause (a full disk, not "not contiguous"). */
  bool write_failed;
  char write_errmsg[SYNOD_ERRMSG_MAX];
  /* The latest term and vote known durable: messages of a leader may
   * leave before its entries are durable, never before its term. */
  uint64_t durable_term;
  uint64_t durable_vote;
  /* The core's latest hard state; unsaved = not yet in any batch. */
  struct core_hard_state latest;
  bool latest_unsaved;
  /* Since start: batches that went to disk, and the entries in them. */
  uint64_t syncs;
  uint64_t synced_entries;
  /* What the store can read back as the latest completed write left it,
   * and the value last stepped as the core's RELEASE (every tick). */
  uint64_t release_due;
  uint64_t release_sent;
  /* Appends whose released entries were read back from the store, and
   * those dropped because the store no longer held one. */
  uint64_t appends_filled;
  uint64_t appends_unfilled;
  uint64_t unfilled_warned_ms;
  /* The filled copy of an append's entries and the store's block they
   * point into, until the message is encoded. */
  struct core_entry *fill_ents;
  uint32_t fill_cap;
  struct persist_stage stage;
};

/* ------------------------------------------------------------- pending */

enum pending_kind {
  PENDING_REQUEST, /* a client's request in the entry */
  PENDING_TICK,    /* a Tick: the keepalives it carries */
  PENDING_MEMBER,  /* a configuration change an operator asked for */
};

/* Who waits for the answer to a write: a client connection (conn_id,
 * request_id), a node_write() caller on this replica (write_ctx, in
 * node.writes) or a follower that forwarded it (peer, peer_ctx). Exactly
 * one of conn_id, write_ctx and peer is non-zero (client connection ids
 * never are zero). */
struct origin {
  uint64_t conn_id;
  uint64_t request_id;
  uint64_t write_ctx;
  uint64_t peer;
  uint64_t peer_ctx;
};

/* A keepalive waiting for its Tick to apply: a client's on this replica,
 * or one a follower forwarded (Request.forward). */
struct keepalive_waiter {
  struct origin from;
  uint64_t session_id;
};

/* What this replica proposed at `index` in `term`, and who waits for it.
 * Kept in index order; an entry applied at that index with another term
 * means the proposal was lost with our leadership. */
struct pending {
  uint64_t index;
  uint64_t term;
  enum pending_kind kind;
  struct origin from; /* PENDING_REQUEST, PENDING_MEMBER */
  uint64_t session_id;
  uint64_t sequence;
  struct keepalive_waiter *waiters; /* PENDING_TICK, owned */
  uint32_t waiters_n;
  struct pending *next;
};

/* A client's write waiting for the end of the loop turn, when everything
 * that arrived in the turn is proposed at once (one append per follower). */
struct queued_proposal {
  uint8_t *data; /* the encoded fsm.Command, owned */
  size_t len;
  struct origin from;
  uint64_t session_id;
  uint64_t sequence;
};

/* A node_write() waiting for its answer: proposed here (asked == 0) or
 * forwarded to the leader `asked`. In node.writes by ctx; answered
 * exactly once, by deadline_ms at the latest. */
struct write {
  uint64_t ctx;
  node_write_cb cb;
  void *arg;
  uint64_t deadline_ms;
  uint64_t asked;
};

/* A queued lock acquire, answered by a later grant or timeout. Keyed by
 * (session, sequence) in node.waits. */
struct wait {
  uint64_t conn_id;
  uint64_t request_id;
};

/* A linearizable read waiting for its ReadIndex and then for the apply
 * index to reach it. */
struct read {
  uint64_t ctx;
  uint64_t index; /* 0 until the core (or the leader) confirms */
  uint64_t conn_id;
  uint64_t request_id;
  uint8_t *request; /* packed synod.Request, owned; NULL for a peer's */
  size_t request_len;
  /* node_read(): answered through cb instead of a client connection, by
   * deadline_ms at the latest. */
  node_read_cb cb;
  void *cb_arg;
  uint64_t deadline_ms;
  /* A follower's read: the leader it asked for the index (0 = the core). */
  uint64_t asked;
  /* The leader's side of a follower's read: whom to send the index. */
  uint64_t for_peer;
  uint64_t for_ctx;
  struct read *next;
};

/* node_cluster_status() in flight: the replicas asked, and their answers. */
struct status_gather {
  uint64_t ctx;
  uint64_t started_ms;
  uint64_t deadline_ms;
  node_cluster_status_cb cb;
  void *arg;
  uint64_t ids[NODE_INFO_MEMBERS_MAX];
  struct node_replica_status rs[NODE_INFO_MEMBERS_MAX];
  uint32_t n;
  uint32_t waiting;
  struct status_gather *next;
};

/* A peer we know from its handshake. */
struct member {
  uint64_t id;
  char name[NODE_NAME_MAX];
  char peer_address[NODE_ADDRESS_MAX];
  char client_address[NODE_ADDRESS_MAX];
  uint64_t log_last_index; /* as of its hello */
  bool up;
  bool leaving;          /* it asked to be removed: not added back until it
                            reconnects (a restart) */
  uint64_t last_recv_ms; /* node_now_ms() of its last message; 0 never */
};

#define NODE_MEMBERS_MAX (2 * CORE_MEMBERS_MAX)

/* Each replica takes its snapshots after up to half as many entries again
 * as --snapshot-entries, at its own indexes (core_options): writing one
 * holds the write path for a few milliseconds, and replicas that all did
 * it at the same index stalled every commit at once. */
#define NODE_SNAPSHOT_SPREAD_PERCENT 50

/* Appends in flight to one follower (the bytes stay capped by the core's
 * 8 MiB). A follower that stops writing for a while (its snapshot, a
 * checkpoint: 10-30 ms) keeps receiving entries and the commit index, so
 * it goes on applying and delivering to its subscribers, and acknowledges
 * all of it in one write when its disk is back. With the core's 16 (a few
 * leader turns at 10,000 msg/s) the leader stopped sending to it and its
 * subscribers waited out the whole save (fan-out runs, 2026-12-07). */
#define NODE_INFLIGHT_APPENDS 256
/* Entries kept behind a snapshot, for followers just behind it: in the
 * store and in the core alike (the core reads released ones back from the
 * store, so it must never keep more than the store does). */
#define NODE_SNAPSHOT_KEEP_ENTRIES 1024

/* ---------------------------------------------------------------- node */

struct node {
  uv_loop_t *loop;
  struct node_options opts; /* strings point into the copies below */
  char name[NODE_NAME_MAX];
  char data_dir[512];
  char cluster_id[NODE_NAME_MAX];
  char client_address[NODE_ADDRESS_MAX];
  char peer_address[NODE_ADDRESS_MAX];
  char advertise_client[NODE_ADDRESS_MAX];
  char advertise_peer[NODE_ADDRESS_MAX];
  struct node_peer *peers; /* the static list (opts.peers_n) */
  size_t name_prefix_len;  /* "synod" of "synod-2" */
  /* Addresses from the last discovery round, dialled. */
  char (*discovered)[NODE_ADDRESS_MAX];
  size_t discovered_n;

  uint64_t id; /* hash of name and incarnation */
  uint8_t incarnation[STORE_INCARNATION_BYTES];
  struct store store;
  struct core *core;
  struct fsm *fsm;
  struct peer_net *peer_net;
  struct client_net *client_net;
  uv_timer_t tick;
  /* Our leader's process died (peer_net_gone_cb): the core hears of it
   * after a random fraction of a tick, so that two followers who saw it
   * at the same moment do not split the vote. */
  uv_timer_t gone_timer;
  uint64_t gone_id; /* 0 = none pending */
  uint64_t gone_prng;
  struct persist persist;

  /* The current snapshot, whose image is in the store; snap_chunk holds a
   * chunk of it being sent to a lagging follower (read from the store:
   * the image is not kept in memory). */
  uint8_t *snap_chunk;
  size_t snap_chunk_cap;
  size_t snap_len;
  struct core_snapshot_meta snap_meta;
  bool snapshot_in_progress;
  /* node_handle_update runs: the update it handles points into the core's
   * output buffers, which any core_step reuses (node_step asserts). */
  bool in_update;
  /* Peers whose link closed while an update was handled (a write of
   * persist_start's early flush found it reset): their UNREACHABLE is
   * stepped once it is done. */
  uint64_t unreachable_later[2 * CORE_MEMBERS_MAX];
  uint32_t unreachable_later_n;
  bool snapshot_forked;    /* a child encodes the image (persist.c) */
  uint64_t fsm_generation; /* +1 each time a snapshot replaces the state */
  uint64_t bytes_since_snapshot; /* entry bytes applied since the last */
  uint64_t recv_started_ms;      /* progress of an image being received */
  uint64_t recv_logged_ms;
  size_t recv_last_len;
  /* An image being received from the leader. */
  uint8_t *recv_image;
  size_t recv_len;
  size_t recv_cap;

  /* What the state machine has applied: index, its term, and the
   * configuration as of it (for the snapshots we take). */
  uint64_t applied_index;
  uint64_t applied_term;
  struct core_config applied_config;

  /* Soft state, as of the last update. */
  enum core_role role;
  uint64_t term;
  uint64_t leader;

  /* Cluster time (leader): monotonic ms + offset, never behind a stamp
   * we issued or the applied time when we took office. */
  int64_t time_offset_ms;
  uint64_t last_stamp_ms;

  /* Requests in flight. */
  struct pending *pending_head; /* ascending index */
  struct pending *pending_tail;
  struct u64map waits; /* (session, sequence) key -> struct wait */
  struct read *reads;  /* in arrival order */
  /* Reads asked while an update was handled (an HTTP answer whose
   * connection's next request is a read): asked once it is done. */
  struct read *reads_later;
  uint64_t read_ctx_next;
  uint64_t proposed_first;  /* of the last PROPOSE or membership change */
  uv_check_t propose_check; /* runs requests_propose_flush each turn */
  bool propose_check_open;
  struct queued_proposal *queued;
  uint32_t queued_n;
  uint32_t queued_cap;
  uint64_t tick_pending_index;         /* the last Tick we proposed */
  struct keepalive_waiter *keepalives; /* for the next Tick */
  uint32_t keepalives_n;
  uint32_t keepalives_cap;
  struct u64map writes; /* ctx -> struct write: node_write() in flight */
  uint64_t write_ctx_next;
  struct u64map session_conns; /* session id -> conn id (+1) */
  /* Client connections that were answered SYNOD_ENOTLEADER: nothing
   * more of theirs is forwarded (Request.forward), so a session's writes
   * sent after one the client must send again reach the leader after it. */
  struct u64map redirected; /* conn id -> (void *)1 */
  struct u64map observers;  /* conn id -> struct observer list */

  struct subs subs; /* subscribe.c: subscriptions served here */

  struct member members[NODE_MEMBERS_MAX];
  uint32_t members_n;
  bool bootstrapped;          /* the log or a snapshot exists */
  bool was_member;            /* we have been in a configuration since start */
  uint64_t dir_pending_index; /* our last directory entry */
  uint64_t settings_pending_index; /* our last Settings entry */
  bool left;                       /* stopping: the leader removed us */
  uint64_t leave_sent_ms;
  uint64_t join_sent_ms;
  uint64_t join_hint; /* the leader, as a peer named it */

  /* For status: when we started, and the leaders we saw take office
   * (a ring, newest at leader_changes_n - 1 modulo the size). */
  uint64_t started_ms;
  uint64_t started_unix_ms;
  uint64_t leader_since_unix_ms;
  uint64_t leaderless_since_ms; /* loop time leader became 0; 0 if known */
  /* Ticks since a message from the leader we know: ticks, not loop time,
   * so that a pause of this process (SIGSTOP, a frozen VM) is not taken
   * for the leader's silence (the first tick after it runs before the
   * sockets are read). */
  uint32_t leader_unheard_ticks;
  struct node_leader_change leader_changes[NODE_LEADER_HISTORY_MAX];
  uint32_t leader_changes_n;
  struct status_gather *gathers; /* node_cluster_status() in flight */
  uint64_t gather_ctx_next;

  bool shutting_down;
  uint64_t shutdown_ticks;
  node_shutdown_cb shutdown_cb;
  void *shutdown_arg;
  unsigned handles_open;

  struct node_metrics metrics; /* see metrics.h */
};

/* subs_host.c: the subscription engine's host. */
int node_subs_init(struct node *n);
/* client_net's drain_cb: a connection has room again. */
void node_subs_on_drain(void *arg, uint64_t conn_id);

/* node.c */
int node_step(struct node *n, const struct core_event *ev);
/* Replaces the core by one built from rs (start-up, bootstrap). */
int node_core_new(struct node *n, const struct core_restore *rs, char *errmsg);
uint64_t node_now_ms(const struct node *n);
/* Stops the process at once (after the caller logged why): a write the
 * core counted on failed, and nothing that depended on it was sent. Not
 * exit(): libuv's destructor would join the worker threads, and one stuck
 * in a write to a full disk kept the process alive, answering nothing. */
_Noreturn void node_die(void);
struct member *node_member(struct node *n, uint64_t id);
const char *node_member_name(struct node *n, uint64_t id);
const char *node_leader_client_address(struct node *n);

/* persist.c */
int persist_init(struct node *n);
/* Opens and closes the loop handle that writes a follower's batches. */
void persist_start_loop(struct node *n);
void persist_stop_loop(struct node *n);
void persist_close(struct node *n);
/* Queues the writes and deferred messages of an update; sends the eager
 * messages now. Starts the worker if it is idle. */
int persist_update(struct node *n, const struct core_update *up);
/* Queues a snapshot of the state machine, which has applied through
 * `index` (of `term`, under `config`). A no-op while one is in progress. */
int persist_snapshot_take(struct node *n, uint64_t index, uint64_t term,
                          const struct core_config *config);
/* The image at index a just-queued update installs (received from the
 * leader), or NULL; owned by the batch, valid until the loop runs again. */
const uint8_t *persist_installing(const struct node *n, uint64_t index,
                                  size_t *len);
/* Tells the core how far the store can read the log back, if that moved
 * (it then keeps only recent entries' data in memory). Every tick. */
void persist_release(struct node *n);

/* apply.c */
void apply_update(struct node *n, const struct core_update *up);
void apply_fail_pending(struct node *n, int code);
/* Records who waits for a queued lock acquire (session, sequence). */
int apply_wait_add(struct node *n, uint64_t session_id, uint64_t sequence,
                   uint64_t conn_id, uint64_t request_id);
void apply_close(struct node *n);

/* requests.c */
void requests_on_request(void *arg, uint64_t conn_id,
                         const Synod__Request *req);
void requests_on_close(void *arg, uint64_t conn_id);
/* Asks the reads deferred while an update was handled (node_step). */
void requests_reads_later(struct node *n);
void requests_reads_ready(struct node *n, const struct core_update *up);
void requests_reads_serve(struct node *n);
void requests_reads_fail(struct node *n, int code);
/* node_read()'s reads past their deadline fail with SYNOD_ETIMEDOUT. */
void requests_reads_expire(struct node *n);
/* A follower's reads still waiting for an index from a leader that is no
 * longer the leader fail with SYNOD_ENOLEADER. */
void requests_reads_forward_fail(struct node *n);
/* The same for the reads that wait for `peer`'s read index. */
void requests_reads_peer_lost(struct node *n, uint64_t peer);
/* The leader's side of a follower's read, and the follower's. */
void requests_read_index_for_peer(struct node *n, uint64_t from, uint64_t ctx);
void requests_read_index_reply(struct node *n, uint64_t from, uint64_t ctx,
                               uint64_t index, uint32_t error);
void requests_tick(struct node *n);
void requests_keepalives_fail(struct node *n);
/* Proposes the writes queued during this loop turn, in one PROPOSE. */
void requests_propose_flush(struct node *n);
/* Leader: queues req (a write, fsm_request_is_write) for this turn's
 * PROPOSE; its answer goes to `from` once applied (or the failure, if it
 * is lost). Returns 0, or with nothing queued and why in msg:
 * SYNOD_EPROTO for a request that carries a field or an enum value this
 * build does not know (a newer client's: applied here it would lose what the
 * field means, and a replica of this build stops at such an entry, see
 * fsm_apply), SYNOD_ENOMEM. */
int requests_propose_from(struct node *n, const struct origin *from,
                          const Synod__Request *req, char *msg);
/* Collects a keepalive of session_id for the next Tick (leader only);
 * answered through writes_answer once the Tick applies. */
void requests_keepalive_from(struct node *n, const struct origin *from,
                             uint64_t session_id);
/* Answers the queued writes with an error (stopping). */
void requests_queued_fail(struct node *n, int code);
/* Leader: proposes a directory entry (no client waits for it); on success
 * n->proposed_first is its index. */
/* Proposes a Settings entry (leader). */
int requests_propose_settings(struct node *n, const struct fsm_settings *s);
int requests_propose_member(struct node *n, const struct fsm_member_info *m,
                            bool remove);
void requests_send_packed(struct node *n, uint64_t conn_id, uint64_t request_id,
                          const uint8_t *resp, size_t len);
void requests_send_ok(struct node *n, uint64_t conn_id, uint64_t request_id);
void requests_send_event(struct node *n, uint64_t conn_id, const uint8_t *event,
                         size_t len);
void requests_broadcast_leader(struct node *n);
/* Answers request_id with an error whose first_available is set (0 =
 * none). */
void requests_send_error_first(struct node *n, uint64_t conn_id,
                               uint64_t request_id, int code,
                               uint64_t first_available, const char *msg);
void requests_observers_notify(struct node *n, const char *name,
                               const uint8_t *event, size_t len);
void requests_close(struct node *n);

/* write.c: node_write() and the leader's side of forwarded writes. */
void writes_init(struct node *n);
/* Answers whoever waits on `from`: the packed Response (borrowed), or an
 * error (code != 0) with msg. A client connection gets a Response; a
 * node_write() caller its callback; a follower a ForwardReply. */
void writes_answer(struct node *n, const struct origin *from, int code,
                   const char *msg, const uint8_t *resp, size_t len);
/* A follower forwards a write; the leader answers its ForwardRequest. */
void writes_on_forward(struct node *n, uint64_t from,
                       const Synod__Peer__ForwardRequest *f);
void writes_on_forward_reply(struct node *n, uint64_t from,
                             const Synod__Peer__ForwardReply *r);
/* node_write()s past their deadline fail with SYNOD_ETIMEDOUT. */
void writes_expire(struct node *n);
/* Writes forwarded to a leader that is no longer the leader fail with
 * SYNOD_ENOTLEADER (their outcome unknown). */
void writes_forward_fail(struct node *n);
/* The link to `peer` went down: the writes forwarded to it fail with
 * SYNOD_ENOTLEADER (outcome unknown) instead of waiting for a reply that
 * will not come. */
void writes_peer_lost(struct node *n, uint64_t peer);
/* Every node_write() still waiting fails with `code` (stopping). */
void writes_fail_all(struct node *n, int code);
void writes_close(struct node *n);

/* info.c */
/* A peer asks for our figures; a peer sends its figures. */
void info_on_status_query(struct node *n, uint64_t from, uint64_t ctx);
void info_on_status_answer(struct node *n, uint64_t from,
                           const Synod__Peer__StatusAnswer *a);
/* Completes the gathers past their deadline (all of them with `all`). */
void info_gathers_expire(struct node *n, bool all);

/* bootstrap.c */
uint64_t bootstrap_id(const char *name, const uint8_t *incarnation);
bool bootstrap_is_member(const struct core_config *cfg, uint64_t id);
bool bootstrap_is_declared(const struct node *n, const char *name);
void bootstrap_on_peer_up(struct node *n, const Synod__Peer__PeerHello *h);
void bootstrap_tick(struct node *n);
void bootstrap_on_link_msg(struct node *n, uint64_t from,
                           const Synod__Peer__PeerMessage *pb);
/* Stopping: asks the leader to remove us; true once there is nothing
 * (more) to wait for: removed, not a member, the last voter, or no
 * leader to ask. */
bool bootstrap_leave(struct node *n);

#endif /* SYNOD_NODE_INT_H */
