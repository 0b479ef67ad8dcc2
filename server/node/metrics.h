/* A replica's metrics: the counters and histograms the node keeps as things
 * happen, and the hooks that keep them. node_metrics_text (node.h) renders
 * them with the gauges read from the core, the state machine, the store
 * and the nets. Internal to server/node. */
#ifndef SYNOD_NODE_METRICS_H
#define SYNOD_NODE_METRICS_H

#include <stdint.h>

#include "core.h"
#include "histogram.h"
#include "synod.h"

/* Request body cases are protobuf field numbers of synod.Request's oneof,
 * all below this. */
#define METRICS_OPS_MAX 96
/* Error codes 0..SYNOD_EINTERNAL, then one slot for any other. */
#define METRICS_CODES (SYNOD_EINTERNAL + 2)
/* Leader: proposal batches waiting for their commit. When full, newer
 * batches are not timed (the backlog is bounded by the core anyway). */
#define METRICS_PROPOSALS_MAX 2048
/* Snapshot transfers to followers timed at once. */
#define METRICS_SENDS_MAX (2 * CORE_MEMBERS_MAX)

/* Entries [first, last] of `term`, proposed at at_us. */
struct metrics_proposal {
  uint64_t first;
  uint64_t last;
  uint64_t term;
  uint64_t at_us;
};

/* A snapshot streaming to follower `to` since its first chunk at start_us. */
struct metrics_send {
  uint64_t to; /* 0: free slot */
  uint64_t start_us;
};

/* Counters only grow; histograms are in microseconds (see histogram.h). */
struct node_metrics {
  uint64_t start_unix_s; /* wall clock at node_start */

  /* Client requests, by body case and answer code, and how long each
   * took from its arrival to its answer (client_net answer_cb). */
  uint64_t requests[METRICS_OPS_MAX][METRICS_CODES];
  struct histogram request_durations[METRICS_OPS_MAX];

  /* Leader: entries proposed, proposals the core refused (by code), and
   * the time from a proposal to its commit. */
  uint64_t proposals;
  /* Follower: clients' writes forwarded to the leader (Request.forward). */
  uint64_t writes_forwarded;
  uint64_t proposals_refused[METRICS_CODES];
  struct histogram commit_latencies;
  struct metrics_proposal *proposals_inflight; /* ring, owned */
  uint32_t proposals_head;                     /* oldest */
  uint32_t proposals_n;

  /* Time the loop spent on one update's committed entries, and the
   * longest such time since start: the histogram's buckets say how
   * often, the maximum says how long the worst stall was exactly. */
  struct histogram apply_durations;
  uint64_t apply_duration_max_us;

  /* Raft: leader changes seen (to a known leader), elections started
   * (becoming a candidate in a new term). */
  uint64_t leader_changes;
  uint64_t elections_started;
  /* Raft messages handed to the peer links, by type. */
  uint64_t msgs_sent[CORE_MSG_TYPE_COUNT];

  /* Writes: the duration of each batch's write and sync (one per
   * persist.syncs, snapshots included), and the store's checkpoints,
   * copied after each batch. */
  struct histogram sync_durations;
  struct histogram checkpoint_durations;

  /* Snapshots: taken here (save duration), sent to followers (first to
   * last chunk), received from the leader (first to last chunk). Bytes
   * are image sizes for taken ones, chunk bytes for sent and received. */
  uint64_t snapshots_taken;
  /* Images encoded for snapshots, on the loop and by a forked child. */
  uint64_t snapshots_encoded_loop;
  uint64_t snapshots_encoded_child;
  uint64_t snapshot_taken_bytes;
  struct histogram snapshot_save_durations;
  uint64_t snapshots_sent;
  uint64_t snapshot_sent_bytes;
  struct histogram snapshot_send_durations;
  struct metrics_send sends[METRICS_SENDS_MAX];
  uint64_t snapshots_received;
  uint64_t snapshot_received_bytes;
  struct histogram snapshot_receive_durations;
  uint64_t receive_start_us;
};

struct node;
struct persist_batch;

/* Monotonic microseconds. */
uint64_t metrics_now_us(void);

/* Sets up the metrics of a node being started. Returns 0 or SYNOD_ENOMEM.
 * metrics_close frees what it allocated; it accepts a zeroed struct. */
int metrics_init(struct node_metrics *m);
void metrics_close(struct node_metrics *m);

/* The hooks. Each is O(1) or O(what the update carries). */

/* A core update, before the node acts on it (it compares with the soft
 * state the node still holds): proposals, role, term and leader changes,
 * commits of our proposals, received snapshot chunks. */
void metrics_update(struct node *n, const struct core_update *up);
/* The update's committed entries were applied; apply began at start_us. */
void metrics_applied(struct node *n, const struct core_update *up,
                     uint64_t start_us);
/* The core refused an event (a proposal: counted by code). */
void metrics_refused(struct node *n, const struct core_event *ev, int rv);
/* A batch is durable (persist_complete): its write, a snapshot it held. */
void metrics_batch_done(struct node *n, const struct persist_batch *b);
/* A snapshot this replica took is current: len bytes, written in
 * write_us (its steps' writes, for a staged one). */
void metrics_snapshot_taken(struct node *n, size_t len, uint64_t write_us);
/* A message left for a peer (snapshot chunks are timed and counted). */
void metrics_msg_sent(struct node *n, const struct core_msg *m);
/* client_net_answer_cb: a request was answered. */
void metrics_answer_cb(void *arg, uint32_t body_case, int code,
                       uint64_t duration_us);

#endif /* SYNOD_NODE_METRICS_H */
