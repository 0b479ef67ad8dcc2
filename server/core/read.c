/* ReadIndex (thesis 6.4): linearizable reads without a log entry. The
 * leader records its commit index, confirms it is still the leader with a
 * round of heartbeats acknowledged by a quorum, then hands out the index. */
#include "core_int.h"

#include <inttypes.h>
#include <stdlib.h>

/* The round still waiting for a quorum, or 0. */
uint64_t core_read_round_outstanding(const struct core *c) {
  return c->read_round > c->read_round_done ? c->read_round : 0;
}

static bool core_read_committed_in_term(const struct core *c) {
  uint64_t t;
  return core_log_term(&c->log, c->commit, &t) && t == c->term;
}

/* Reads that arrive while a round is out wait for the next one, so one
 * round confirms a whole batch. */
static uint64_t core_read_assign(struct core *c) {
  if (core_read_round_outstanding(c) != 0) {
    return c->read_round + 1;
  }
  c->read_round++;
  core_repl_heartbeat(c);
  return c->read_round;
}

static int core_read_u64_desc(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a;
  uint64_t y = *(const uint64_t *)b;
  return x < y ? 1 : (x > y ? -1 : 0);
}

/* The highest round a quorum of voters acknowledged. The leader answers
 * every round it sends, if it is a voter. */
static uint64_t core_read_confirmed(struct core *c) {
  uint64_t acks[CORE_MEMBERS_MAX];
  uint32_t n = 0;
  for (uint32_t i = 0; i < c->config.voters_n; i++) {
    uint64_t id = c->config.voters[i];
    struct core_progress *p = core_progress_find(c, id);
    acks[n++] = id == c->id ? c->read_round : (p ? p->read_acked : 0);
  }
  if (n == 0) {
    return 0;
  }
  qsort(acks, n, sizeof *acks, core_read_u64_desc);
  return acks[core_quorum(c) - 1];
}

/* Hands out the reads whose round a quorum confirmed, then starts the
 * round the others wait for. */
void core_read_check(struct core *c) {
  uint64_t done = core_read_confirmed(c);
  if (done <= c->read_round_done) {
    return;
  }
  c->read_round_done = done;
  uint32_t kept = 0;
  bool queued = false;
  for (uint32_t i = 0; i < c->reads_n; i++) {
    struct core_pending_read *r = &c->reads[i];
    if (r->round != 0 && r->round <= done) {
      struct core_read *out = core_out_read(c);
      out->ctx = r->ctx;
      out->index = r->index;
      out->error = 0;
    } else {
      queued = queued || r->round > c->read_round;
      c->reads[kept++] = *r;
    }
  }
  c->reads_n = kept;
  if (queued && core_read_round_outstanding(c) == 0) {
    c->read_round++;
    core_repl_heartbeat(c);
    core_read_check(c); /* a single voter confirms at once */
  }
}

/* READ_INDEX: "If the leader has not yet marked an entry from its current
 * term committed, it waits until it has"; then it records the commit index
 * as the read index and confirms its leadership. */
void core_read_request(struct core *c, uint64_t ctx) {
  struct core_pending_read *r = &c->reads[c->reads_n++];
  r->ctx = ctx;
  r->index = 0;
  r->round = 0;
  if (core_read_committed_in_term(c)) {
    r->index = c->commit;
    r->round = core_read_assign(c);
  }
  core_read_check(c);
}

/* The first commit of our term releases the reads that waited for it. */
void core_read_on_commit(struct core *c) {
  uint64_t round = 0;
  for (uint32_t i = 0; i < c->reads_n; i++) {
    struct core_pending_read *r = &c->reads[i];
    if (r->round == 0) {
      if (round == 0) {
        round = core_read_assign(c);
      }
      r->index = c->commit;
      r->round = round;
    }
  }
  if (round != 0) {
    core_read_check(c);
  }
}

/* Leadership is gone: every read waiting fails. */
void core_read_fail_all(struct core *c) {
  for (uint32_t i = 0; i < c->reads_n; i++) {
    struct core_read *out = core_out_read(c);
    out->ctx = c->reads[i].ctx;
    out->index = 0;
    out->error = SYNOD_ENOTLEADER;
  }
  if (c->reads_n > 0) {
    core_trace(c, "%" PRIu32 " reads failed: not the leader", c->reads_n);
  }
  c->reads_n = 0;
}
