/* Log replication: per-follower progress (probe, replicate, snapshot),
 * AppendEntries and its consistency check, heartbeats, and the commit rule
 * (Raft §5.3, §5.4.2, Figure 2; progress states and flow control as in
 * etcd raft's tracker). */
#include "core_int.h"

#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ progress */

struct core_progress *core_progress_find(struct core *c, uint64_t id) {
  for (uint32_t i = 0; i < CORE_PEERS_MAX; i++) {
    if (c->prs[i].id == id && id != 0) {
      return &c->prs[i];
    }
  }
  return NULL;
}

static void core_inflights_clear(struct core_progress *p) {
  p->infl_head = 0;
  p->infl_n = 0;
  p->infl_bytes = 0;
}

static bool core_inflights_full(const struct core *c,
                                const struct core_progress *p) {
  return p->infl_n >= c->o.inflight_appends_max ||
         p->infl_bytes >= c->o.inflight_bytes_max;
}

static void core_inflights_add(struct core *c, struct core_progress *p,
                               uint64_t last, uint64_t bytes) {
  assert(p->infl_n < c->o.inflight_appends_max);
  uint32_t i = (p->infl_head + p->infl_n) % c->o.inflight_appends_max;
  p->inflights[i].last = last;
  p->inflights[i].bytes = bytes;
  p->infl_n++;
  p->infl_bytes += bytes;
}

/* Frees the appends in flight that end at or before `index`. */
static void core_inflights_free_to(struct core *c, struct core_progress *p,
                                   uint64_t index) {
  while (p->infl_n > 0 && p->inflights[p->infl_head].last <= index) {
    p->infl_bytes -= p->inflights[p->infl_head].bytes;
    p->infl_head = (p->infl_head + 1) % c->o.inflight_appends_max;
    p->infl_n--;
  }
}

static void core_inflights_free_first(struct core *c, struct core_progress *p) {
  if (p->infl_n > 0) {
    core_inflights_free_to(c, p, p->inflights[p->infl_head].last);
  }
}

void core_progress_probe(struct core_progress *p, uint64_t next) {
  p->state = CORE_PROGRESS_PROBE;
  p->next = next > p->match + 1 ? next : p->match + 1;
  p->probe_sent = false;
  core_inflights_clear(p);
}

static void core_progress_replicate(struct core_progress *p) {
  p->state = CORE_PROGRESS_REPLICATE;
  p->next = p->match + 1;
  p->probe_sent = false;
  core_inflights_clear(p);
}

static void core_progress_init(struct core *c, struct core_progress *p,
                               uint64_t id) {
  struct core_inflight *keep = p->inflights;
  memset(p, 0, sizeof *p);
  p->inflights = keep;
  p->id = id;
  p->recent_active = true; /* a grace period, as in etcd raft */
  core_progress_probe(p, core_log_last(&c->log) + 1);
}

/* Figure 2, leaders: "for each server, index of the next log entry to send
 * to that server (initialized to leader last log index + 1)", match 0.
 * Members are added and dropped as the configuration changes. */
void core_repl_sync_members(struct core *c) {
  for (uint32_t i = 0; i < CORE_PEERS_MAX; i++) {
    struct core_progress *p = &c->prs[i];
    if (p->id != 0 && !core_config_is_member(&c->config, p->id)) {
      if (c->transfer_target == p->id) {
        core_transfer_abort(c, "target left the configuration");
      }
      p->id = 0;
    }
  }
  const struct core_config *cfg = &c->config;
  for (uint32_t i = 0; i < cfg->voters_n + cfg->learners_n; i++) {
    uint64_t id =
        i < cfg->voters_n ? cfg->voters[i] : cfg->learners[i - cfg->voters_n];
    if (id == c->id || core_progress_find(c, id) != NULL) {
      continue;
    }
    struct core_progress *p = NULL;
    for (uint32_t j = 0; p == NULL && j < CORE_PEERS_MAX; j++) {
      p = c->prs[j].id == 0 ? &c->prs[j] : NULL;
    }
    assert(p != NULL);
    core_progress_init(c, p, id);
  }
}

void core_repl_start(struct core *c) {
  for (uint32_t i = 0; i < CORE_PEERS_MAX; i++) {
    c->prs[i].id = 0;
  }
  c->self_match = 0;
  c->transfer_target = 0;
  c->reads_n = 0;
  c->read_round_done = c->read_round;
  core_repl_sync_members(c);
}

void core_repl_stop(struct core *c) {
  for (uint32_t i = 0; i < CORE_PEERS_MAX; i++) {
    c->prs[i].id = 0;
  }
  c->self_match = 0;
}

/* -------------------------------------------------------------- sending */

/* How many entries from `first` fit in one append to p: at least one, at
 * most append_entries_max and append_bytes_max, and within the bytes p may
 * still have in flight. */
static uint32_t core_repl_batch(struct core *c, const struct core_progress *p,
                                uint64_t first, uint64_t *bytes) {
  uint64_t last = core_log_last(&c->log);
  uint64_t room = c->o.inflight_bytes_max > p->infl_bytes
                      ? c->o.inflight_bytes_max - p->infl_bytes
                      : 0;
  uint64_t cap = room < c->o.append_bytes_max ? room : c->o.append_bytes_max;
  uint32_t n = 0;
  *bytes = 0;
  while (first + n <= last && n < c->o.append_entries_max) {
    size_t len = core_log_get(&c->log, first + n)->len;
    if (n > 0 && *bytes + len > cap) {
      break;
    }
    *bytes += len;
    n++;
  }
  return n;
}

/* Sends p one append from p->next, if its state allows: a probe waits for
 * an answer, a pipeline for room, a snapshot for its end. An append with
 * no entries goes out only if empty_ok (it then probes p->next - 1). A
 * follower whose next entry was compacted gets the snapshot instead. */
void core_repl_send(struct core *c, struct core_progress *p, bool empty_ok) {
  uint64_t prev_term;
  uint64_t bytes;
  if (p->state == CORE_PROGRESS_SNAPSHOT ||
      (p->state == CORE_PROGRESS_PROBE && p->probe_sent) ||
      (p->state == CORE_PROGRESS_REPLICATE && core_inflights_full(c, p))) {
    return;
  }
  if (!core_log_term(&c->log, p->next - 1, &prev_term)) {
    core_snapshot_start(c, p);
    return;
  }
  uint32_t n = core_repl_batch(c, p, p->next, &bytes);
  if (n == 0 && !empty_ok) {
    return;
  }
  struct core_msg *m = core_msg_push(c, CORE_MSG_APPEND, p->id);
  m->append.prev_index = p->next - 1;
  m->append.prev_term = prev_term;
  m->append.commit = c->commit;
  p->commit_sent = c->commit;
  if (n > 0) {
    core_msg_attach_entries(c, p->next, n);
  }
  if (p->state == CORE_PROGRESS_REPLICATE && n > 0) {
    core_inflights_add(c, p, p->next + n - 1, bytes);
    p->next += n;
  } else if (p->state == CORE_PROGRESS_PROBE) {
    p->probe_sent = true;
  }
}

/* Sends p as much as its state allows. */
static void core_repl_send_all(struct core *c, struct core_progress *p) {
  uint32_t before;
  do {
    before = c->out.msgs_n;
    /* An unpaused probe always goes out: it finds where p stands. */
    core_repl_send(c, p, p->state == CORE_PROGRESS_PROBE);
  } while (p->state == CORE_PROGRESS_REPLICATE && c->out.msgs_n > before &&
           p->next <= core_log_last(&c->log));
}

void core_repl_broadcast(struct core *c) {
  for (uint32_t i = 0; i < CORE_PEERS_MAX; i++) {
    if (c->prs[i].id != 0) {
      core_repl_send_all(c, &c->prs[i]);
    }
  }
}

/* Heartbeats carry a commit index no follower can apply beyond what it
 * matches (etcd raft), and the ReadIndex round still waiting, if any. */
void core_repl_heartbeat(struct core *c) {
  uint64_t round = core_read_round_outstanding(c);
  for (uint32_t i = 0; i < CORE_PEERS_MAX; i++) {
    struct core_progress *p = &c->prs[i];
    if (p->id == 0) {
      continue;
    }
    struct core_msg *m = core_msg_push(c, CORE_MSG_HEARTBEAT, p->id);
    m->heartbeat.commit = p->match < c->commit ? p->match : c->commit;
    m->heartbeat.read_ctx = round;
  }
}

/* Thesis 6.2 CheckQuorum: "a leader steps down if an election timeout
 * elapses without a successful round of heartbeats to a majority". */
static bool core_repl_quorum_active(struct core *c) {
  uint32_t active = core_config_is_voter(&c->config, c->id);
  for (uint32_t i = 0; i < CORE_PEERS_MAX; i++) {
    struct core_progress *p = &c->prs[i];
    if (p->id != 0 && core_config_is_voter(&c->config, p->id)) {
      active += p->recent_active;
    }
    p->recent_active = false;
  }
  return active >= core_quorum(c);
}

void core_repl_tick(struct core *c) {
  c->heartbeat_elapsed++;
  c->election_elapsed++;
  if (c->election_elapsed >= c->o.election_ticks) {
    c->election_elapsed = 0;
    if (!core_repl_quorum_active(c) && !c->o.disable_check_quorum) {
      core_trace(c, "lost contact with a quorum: stepping down");
      core_become_follower(c, c->term, 0);
      return;
    }
  }
  core_transfer_tick(c);
  for (uint32_t i = 0; i < CORE_PEERS_MAX; i++) {
    if (c->prs[i].id != 0 && c->prs[i].state == CORE_PROGRESS_SNAPSHOT) {
      core_snapshot_tick(c, &c->prs[i]);
    }
  }
  if (c->heartbeat_elapsed >= c->o.heartbeat_ticks) {
    c->heartbeat_elapsed = 0;
    core_repl_heartbeat(c);
  }
}

/* --------------------------------------------------------------- commit */

/* Tells every follower that has all the entries sent so far, and nothing
 * more to be sent now, the new commit index at once, in an empty append
 * (etcd raft's bcastAppend after maybeCommit). Otherwise it would learn it
 * only with the next entries or heartbeat (a tick later): what a follower
 * serves (channel subscribers, stale reads) would lag the leader by up to
 * a tick whenever writes pause. One connection per peer keeps the empty
 * append behind the entries in flight. */
static void core_repl_commit_tell(struct core *c) {
  uint64_t last = core_log_last(&c->log);
  for (uint32_t i = 0; i < CORE_PEERS_MAX; i++) {
    struct core_progress *p = &c->prs[i];
    if (p->id != 0 && p->state == CORE_PROGRESS_REPLICATE && p->next > last &&
        p->commit_sent < c->commit) {
      core_repl_send(c, p, true);
    }
  }
}

static int core_u64_desc(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a;
  uint64_t y = *(const uint64_t *)b;
  return x < y ? 1 : (x > y ? -1 : 0);
}

/* Figure 2, leaders: "If there exists an N such that N > commitIndex, a
 * majority of matchIndex[i] >= N, and log[N].term == currentTerm: set
 * commitIndex = N" (§5.4.2: never by counting replicas of an older term).
 * Our own match counts only once PERSISTED said so, and not at all once
 * we are no longer a voter. */
void core_repl_maybe_commit(struct core *c) {
  uint64_t matches[CORE_MEMBERS_MAX];
  uint32_t n = 0;
  uint64_t term;
  for (uint32_t i = 0; i < c->config.voters_n; i++) {
    uint64_t id = c->config.voters[i];
    struct core_progress *p = core_progress_find(c, id);
    matches[n++] = id == c->id ? c->self_match : (p ? p->match : 0);
  }
  if (n == 0) {
    return;
  }
  qsort(matches, n, sizeof *matches, core_u64_desc);
  uint64_t index = matches[core_quorum(c) - 1];
  if (index <= c->commit || !core_log_term(&c->log, index, &term) ||
      term != c->term) {
    return;
  }
  c->commit = index;
  core_trace(c, "commit %" PRIu64, index);
  core_read_on_commit(c);
  core_membership_on_commit(c);
  if (c->role == CORE_LEADER) {
    core_repl_commit_tell(c);
  }
}

/* PROPOSE (and the leader's own entries): append, then replicate. */
void core_repl_propose(struct core *c, const struct core_entry *ents,
                       uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    core_log_append(&c->log, c->term, ents[i].type, ents[i].data, ents[i].len);
    core_out_appended(c, core_log_last(&c->log));
  }
  core_membership_refresh(c);
  core_repl_broadcast(c);
}

/* PERSISTED: every update through the one that produced (index, term) is
 * durable. Only an entry of our current term moves our own match: an older
 * (index, term) may name an entry that was replaced since. */
void core_repl_persisted(struct core *c, uint64_t index, uint64_t term) {
  uint64_t t;
  core_election_persisted(c, index, term);
  if (c->role != CORE_LEADER || term != c->term || index <= c->self_match ||
      !core_log_term(&c->log, index, &t) || t != term) {
    return;
  }
  c->self_match = index;
  core_repl_maybe_commit(c);
}

/* The link broke: whatever was in flight is lost, so probe again. */
void core_repl_unreachable(struct core *c, uint64_t id) {
  struct core_progress *p = core_progress_find(c, id);
  if (c->role != CORE_LEADER || p == NULL) {
    return;
  }
  if (p->state == CORE_PROGRESS_REPLICATE) {
    core_progress_probe(p, p->match + 1);
  } else if (p->state == CORE_PROGRESS_SNAPSHOT) {
    p->snap_sent = p->snap_acked;
    p->snap_sent_all = false;
  }
}

/* ------------------------------------------------------------- follower */

/* A message from the leader of our term: follow it, restart the timer. */
static void core_repl_heard_leader(struct core *c, uint64_t leader) {
  if (c->role != CORE_FOLLOWER || c->leader != leader) {
    core_become_follower(c, c->term, leader);
  }
  c->election_elapsed = 0;
}

static void core_repl_reply(struct core *c, const struct core_msg *m,
                            bool reject, uint64_t index) {
  struct core_msg *r = core_msg_push(c, CORE_MSG_APPEND_REPLY, m->from);
  r->append_reply.reject = reject;
  r->append_reply.index = index;
  if (reject) {
    /* etcd raft's hint: the largest index at or below prev_index whose
     * term is at most prev_term; the leader resumes just after it. */
    r->append_reply.hint_index =
        core_log_find_by_term(&c->log, m->append.prev_index,
                              m->append.prev_term, &r->append_reply.hint_term);
  }
}

/* Figure 2, AppendEntries receiver, 3-4: "If an existing entry conflicts
 * with a new one (same index but different terms), delete the existing
 * entry and all that follow it. Append any new entries not already in the
 * log." Entries that match are left alone, so a duplicate is a no-op. */
static void core_repl_merge(struct core *c, const struct core_entry *ents,
                            uint32_t n) {
  uint64_t last = core_log_last(&c->log);
  uint64_t t;
  uint32_t i = 0;
  while (i < n && ents[i].index <= last &&
         core_log_term(&c->log, ents[i].index, &t) && t == ents[i].term) {
    i++;
  }
  if (i == n) {
    return;
  }
  if (ents[i].index <= last) {
    assert(ents[i].index > c->commit); /* checked before the step */
    core_trace(c, "truncate from %" PRIu64, ents[i].index);
    core_log_truncate(&c->log, ents[i].index);
    core_out_truncated(c, ents[i].index);
  }
  for (; i < n; i++) {
    core_log_append(&c->log, ents[i].term, ents[i].type, ents[i].data,
                    ents[i].len);
    core_out_appended(c, ents[i].index);
  }
  core_membership_refresh(c);
}

/* Figure 2, AppendEntries receiver: 1-2 "Reply false if term <
 * currentTerm; reply false if log doesn't contain an entry at prevLogIndex
 * whose term matches prevLogTerm"; 5 "If leaderCommit > commitIndex, set
 * commitIndex = min(leaderCommit, index of last new entry)". Entries at or
 * below our commit index are known to match and are skipped. */
void core_recv_append(struct core *c, const struct core_msg *m) {
  if (c->role == CORE_LEADER) {
    return; /* two leaders in one term: never happens under Raft */
  }
  core_repl_heard_leader(c, m->from);
  uint64_t prev = m->append.prev_index;
  const struct core_entry *ents = m->append.entries;
  uint32_t n = m->append.entries_n;
  uint64_t t;
  if (prev + n <= c->commit) {
    core_repl_reply(c, m, false, c->commit);
    return;
  }
  if (prev < c->commit) {
    ents += c->commit - prev;
    n -= (uint32_t)(c->commit - prev);
    prev = c->commit;
  } else if (!core_log_term(&c->log, prev, &t) || t != m->append.prev_term) {
    core_trace(c, "reject append at %" PRIu64 "/%" PRIu64, prev,
               m->append.prev_term);
    core_repl_reply(c, m, true, prev);
    return;
  }
  core_repl_merge(c, ents, n);
  uint64_t verified = prev + n;
  uint64_t commit = m->append.commit < verified ? m->append.commit : verified;
  if (commit > c->commit) {
    c->commit = commit;
  }
  core_repl_reply(c, m, false, verified);
}

/* A heartbeat asserts leadership; its commit is at most what we match. */
void core_recv_heartbeat(struct core *c, const struct core_msg *m) {
  if (c->role == CORE_LEADER) {
    return;
  }
  core_repl_heard_leader(c, m->from);
  uint64_t commit = m->heartbeat.commit;
  uint64_t last = core_log_last(&c->log);
  if (commit > last) {
    commit = last;
  }
  if (commit > c->commit) {
    c->commit = commit;
  }
  struct core_msg *r = core_msg_push(c, CORE_MSG_HEARTBEAT_REPLY, m->from);
  r->heartbeat_reply.read_ctx = m->heartbeat.read_ctx;
}

/* --------------------------------------------------------------- leader */

/* A rejection moves next back, using the follower's hint to skip a whole
 * term at a time (etcd raft's findConflictByTerm); a stale one (for an
 * append older than what we know) is ignored. */
static void core_repl_rejected(struct core *c, struct core_progress *p,
                               const struct core_msg *m) {
  uint64_t rejected = m->append_reply.index;
  if (p->state == CORE_PROGRESS_SNAPSHOT ||
      (p->state == CORE_PROGRESS_REPLICATE && rejected <= p->match) ||
      (p->state == CORE_PROGRESS_PROBE && rejected != p->next - 1)) {
    return;
  }
  uint64_t hint = m->append_reply.hint_index;
  uint64_t hint_term = m->append_reply.hint_term;
  uint64_t found_term;
  if (hint_term > 0) {
    hint = core_log_find_by_term(&c->log, hint, hint_term, &found_term);
  }
  uint64_t next = hint + 1 < rejected ? hint + 1 : rejected;
  core_progress_probe(p, next);
  core_trace(
      c, "append to %" PRIu64 " rejected at %" PRIu64 ": probe from %" PRIu64,
      p->id, rejected, p->next);
  core_repl_send(c, p, true);
}

/* Figure 2, leaders: "If successful: update nextIndex and matchIndex for
 * follower." A probe that found its match turns into a pipeline. */
static bool core_repl_accepted(struct core *c, struct core_progress *p,
                               uint64_t index) {
  bool advanced = index > p->match;
  if (advanced) {
    p->match = index;
  }
  switch (p->state) {
  case CORE_PROGRESS_PROBE:
    if (index >= p->match) {
      core_progress_replicate(p);
    }
    break;
  case CORE_PROGRESS_REPLICATE:
    core_inflights_free_to(c, p, index);
    if (p->next <= p->match) {
      p->next = p->match + 1;
    }
    break;
  case CORE_PROGRESS_SNAPSHOT:
    if (p->match >= p->snap.index) {
      core_progress_probe(p, p->match + 1);
    }
    break;
  }
  return advanced;
}

/* Progress moved: commit, promote, transfer, then keep the pipe full. */
void core_repl_progressed(struct core *c, struct core_progress *p) {
  core_repl_maybe_commit(c);
  if (c->role != CORE_LEADER || p->id == 0) {
    return;
  }
  core_membership_maybe_promote(c);
  core_transfer_progress(c, p);
}

void core_recv_append_reply(struct core *c, const struct core_msg *m) {
  struct core_progress *p = core_progress_find(c, m->from);
  if (c->role != CORE_LEADER || p == NULL) {
    return;
  }
  p->recent_active = true;
  if (m->append_reply.reject) {
    core_repl_rejected(c, p, m);
    return;
  }
  if (core_repl_accepted(c, p, m->append_reply.index)) {
    core_repl_progressed(c, p);
    if (c->role != CORE_LEADER || p->id == 0) {
      return;
    }
  }
  core_repl_send_all(c, p);
}

/* A heartbeat reply proves the follower is there: it counts for
 * CheckQuorum and ReadIndex, and it restarts replication that lost a
 * message (a probe unpauses, a stalled pipeline probes with an empty
 * append), so no loss stalls a follower for good. */
void core_recv_heartbeat_reply(struct core *c, const struct core_msg *m) {
  struct core_progress *p = core_progress_find(c, m->from);
  if (c->role != CORE_LEADER || p == NULL) {
    return;
  }
  p->recent_active = true;
  if (m->heartbeat_reply.read_ctx > p->read_acked) {
    p->read_acked = m->heartbeat_reply.read_ctx;
    core_read_check(c);
    if (c->role != CORE_LEADER) {
      return;
    }
  }
  if (p->match >= core_log_last(&c->log)) {
    return;
  }
  if (p->state == CORE_PROGRESS_PROBE) {
    p->probe_sent = false;
    core_repl_send(c, p, true);
  } else if (p->state == CORE_PROGRESS_REPLICATE) {
    if (core_inflights_full(c, p)) {
      core_inflights_free_first(c, p);
    }
    core_repl_send(c, p, true);
  }
}
