/* Metrics: the hooks that count and time what happens in a replica
 * (requests, proposals, commits, applies, writes, snapshots, Raft role
 * changes). Rendering is in metrics_text.c. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node_int.h"

uint64_t metrics_now_us(void) {
  return uv_hrtime() / 1000;
}

int metrics_init(struct node_metrics *m) {
  struct timespec ts;
  memset(m, 0, sizeof *m);
  m->proposals_inflight =
      calloc(METRICS_PROPOSALS_MAX, sizeof *m->proposals_inflight);
  if (m->proposals_inflight == NULL) {
    return SYNOD_ENOMEM;
  }
  clock_gettime(CLOCK_REALTIME, &ts);
  m->start_unix_s = (uint64_t)ts.tv_sec;
  return 0;
}

void metrics_close(struct node_metrics *m) {
  free(m->proposals_inflight);
  m->proposals_inflight = NULL;
}

static int metrics_code_slot(int code) {
  return code >= 0 && code <= SYNOD_EINTERNAL ? code : SYNOD_EINTERNAL + 1;
}

void metrics_answer_cb(void *arg, uint32_t body_case, int code,
                       uint64_t duration_us) {
  struct node *n = arg;
  if (body_case >= METRICS_OPS_MAX) {
    return;
  }
  n->metrics.requests[body_case][metrics_code_slot(code)]++;
  histogram_observe(&n->metrics.request_durations[body_case], duration_us);
}

void metrics_refused(struct node *n, const struct core_event *ev, int rv) {
  if (ev->type == CORE_EVENT_PROPOSE) {
    n->metrics.proposals_refused[metrics_code_slot(rv)] +=
        ev->propose.entries_n;
  }
}

/* ------------------------------------------------------------ commits */

static void metrics_proposed(struct node *n, const struct core_update *up) {
  struct node_metrics *m = &n->metrics;
  m->proposals += up->proposed_last - up->proposed_first + 1;
  if (m->proposals_n == METRICS_PROPOSALS_MAX) {
    return;
  }
  uint32_t i = (m->proposals_head + m->proposals_n) % METRICS_PROPOSALS_MAX;
  m->proposals_inflight[i] =
      (struct metrics_proposal){up->proposed_first, up->proposed_last,
                                core_term(n->core), metrics_now_us()};
  m->proposals_n++;
}

static void metrics_proposal_pop(struct node_metrics *m) {
  m->proposals_head = (m->proposals_head + 1) % METRICS_PROPOSALS_MAX;
  m->proposals_n--;
}

/* Observes proposal-to-commit for our proposals among the committed
 * entries; an entry committed with another term than we proposed it in
 * was replaced by another leader's and is not timed. */
static void metrics_committed(struct node *n, const struct core_update *up) {
  struct node_metrics *m = &n->metrics;
  uint64_t first = up->committed[0].index;
  uint64_t last = up->committed[up->committed_n - 1].index;
  uint64_t now = metrics_now_us();
  while (m->proposals_n > 0) {
    struct metrics_proposal *p = &m->proposals_inflight[m->proposals_head];
    if (p->first > last) {
      return;
    }
    uint64_t upto = p->last < last ? p->last : last;
    if (p->first >= first && up->committed[p->first - first].term == p->term) {
      histogram_observe_n(&m->commit_latencies, now - p->at_us,
                          upto - p->first + 1);
    }
    if (upto == p->last) {
      metrics_proposal_pop(m);
    } else {
      p->first = upto + 1;
    }
  }
}

/* ---------------------------------------------------------- snapshots */

static void metrics_chunk_received(struct node *n,
                                   const struct core_update *up) {
  struct node_metrics *m = &n->metrics;
  uint64_t now = metrics_now_us();
  if (up->snapshot_chunk.offset == 0) {
    m->receive_start_us = now;
  }
  m->snapshot_received_bytes += up->snapshot_chunk.len;
  if (up->snapshot_chunk.last) {
    m->snapshots_received++;
    histogram_observe(&m->snapshot_receive_durations,
                      now - m->receive_start_us);
  }
}

static struct metrics_send *metrics_send_slot(struct node_metrics *m,
                                              uint64_t to) {
  struct metrics_send *free_slot = NULL;
  for (uint32_t i = 0; i < METRICS_SENDS_MAX; i++) {
    if (m->sends[i].to == to) {
      return &m->sends[i];
    }
    if (m->sends[i].to == 0 && free_slot == NULL) {
      free_slot = &m->sends[i];
    }
  }
  return free_slot;
}

void metrics_msg_sent(struct node *n, const struct core_msg *msg) {
  struct node_metrics *m = &n->metrics;
  if ((unsigned)msg->type < CORE_MSG_TYPE_COUNT) {
    m->msgs_sent[msg->type]++;
  }
  if (msg->type != CORE_MSG_SNAPSHOT) {
    return;
  }
  m->snapshot_sent_bytes += msg->snapshot.len;
  struct metrics_send *s = metrics_send_slot(m, msg->to);
  uint64_t now = metrics_now_us();
  if (msg->snapshot.offset == 0 && s != NULL) {
    *s = (struct metrics_send){msg->to, now};
  }
  if (msg->snapshot.last) {
    m->snapshots_sent++;
    if (s != NULL && s->to == msg->to) {
      histogram_observe(&m->snapshot_send_durations, now - s->start_us);
      s->to = 0;
    }
  }
}

void metrics_snapshot_taken(struct node *n, size_t len, uint64_t write_us) {
  struct node_metrics *m = &n->metrics;
  m->snapshots_taken++;
  m->snapshot_taken_bytes += len;
  histogram_observe(&m->snapshot_save_durations, write_us);
}

void metrics_batch_done(struct node *n, const struct persist_batch *b) {
  struct node_metrics *m = &n->metrics;
  histogram_observe(&m->sync_durations, b->write_us);
  if (b->snapshot.present && !b->snapshot.received) {
    metrics_snapshot_taken(n, b->snapshot.len, b->write_us);
  }
  /* As the worker saw it under the write lock: another worker may be
   * writing the store now. */
  m->checkpoint_durations = b->checkpoint_durations;
}

/* ------------------------------------------------------------- update */

/* Raft: a new known leader; a new election (candidate in a new term). */
static void metrics_soft_state(struct node *n, const struct core_update *up) {
  struct node_metrics *m = &n->metrics;
  if (up->leader != 0 && up->leader != n->leader) {
    m->leader_changes++;
  }
  if (up->role == CORE_CANDIDATE &&
      (n->role != CORE_CANDIDATE || up->term != n->term)) {
    m->elections_started++;
  }
  if (n->role == CORE_LEADER && up->role != CORE_LEADER) {
    m->proposals_n = 0; /* whatever commits now is not ours to time */
  }
}

void metrics_update(struct node *n, const struct core_update *up) {
  if (up->soft_state_changed) {
    metrics_soft_state(n, up);
  }
  if (up->proposed_first != 0) {
    metrics_proposed(n, up);
  }
  if (up->snapshot_chunk_present) {
    metrics_chunk_received(n, up);
  }
  if (up->committed_n > 0 && n->metrics.proposals_n > 0) {
    metrics_committed(n, up);
  }
}

void metrics_applied(struct node *n, const struct core_update *up,
                     uint64_t start_us) {
  if (up->committed_n > 0) {
    uint64_t us = metrics_now_us() - start_us;
    histogram_observe(&n->metrics.apply_durations, us);
    if (us > n->metrics.apply_duration_max_us) {
      n->metrics.apply_duration_max_us = us;
    }
  }
}
