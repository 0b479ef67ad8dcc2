/* The core's entry points: creation from durable state, the step dispatch
 * (one handler per event and message type, after check.c validated it),
 * the term rules every message goes through, and the update buffers. */
#include "core_int.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ utilities */

void core_trace(struct core *c, const char *fmt, ...) {
  if (c->o.trace_cb == NULL) {
    return;
  }
  char line[256];
  int n = snprintf(line, sizeof line, "term %" PRIu64 ": ", c->term);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  va_end(ap);
  c->o.trace_cb(c->o.trace_arg, c->id, line);
}

/* Updates cannot be half undone, so running out of memory is fatal. */
static void core_grow(void **p, uint32_t *cap, uint32_t need, size_t size) {
  if (need <= *cap) {
    return;
  }
  uint32_t cap2 = *cap < 16 ? 16 : *cap;
  while (cap2 < need) {
    cap2 *= 2;
  }
  void *q = realloc(*p, (size_t)cap2 * size);
  if (q == NULL) {
    fprintf(stderr, "synod core: out of memory\n");
    abort();
  }
  *p = q;
  *cap = cap2;
}

bool core_config_is_voter(const struct core_config *cfg, uint64_t id) {
  for (uint32_t i = 0; i < cfg->voters_n; i++) {
    if (cfg->voters[i] == id) {
      return true;
    }
  }
  return false;
}

bool core_config_is_member(const struct core_config *cfg, uint64_t id) {
  for (uint32_t i = 0; i < cfg->learners_n; i++) {
    if (cfg->learners[i] == id) {
      return true;
    }
  }
  return core_config_is_voter(cfg, id);
}

uint32_t core_quorum(const struct core *c) {
  return c->config.voters_n / 2 + 1;
}

/* Raft §5.4.1: "If the logs have last entries with different terms, then
 * the log with the later term is more up-to-date. If the logs end with the
 * same term, then whichever log is longer is more up-to-date." */
bool core_log_up_to_date(const struct core *c, uint64_t last_index,
                         uint64_t last_term) {
  uint64_t my_term = core_log_last_term(&c->log);
  return last_term > my_term ||
         (last_term == my_term && last_index >= core_log_last(&c->log));
}

/* -------------------------------------------------------------- updates */

struct core_msg *core_msg_push(struct core *c, enum core_msg_type type,
                               uint64_t to) {
  struct core_out *o = &c->out;
  core_grow((void **)&o->msgs, &o->msgs_cap, o->msgs_n + 1, sizeof *o->msgs);
  core_grow((void **)&o->msg_ents_off, &o->msg_ents_off_cap, o->msgs_n + 1,
            sizeof *o->msg_ents_off);
  struct core_msg *m = &o->msgs[o->msgs_n];
  memset(m, 0, sizeof *m);
  o->msg_ents_off[o->msgs_n] = 0;
  o->msgs_n++;
  m->type = type;
  m->from = c->id;
  m->to = to;
  m->term = c->term;
  return m;
}

/* Copies log entries [first, first + n) into the last message pushed. The
 * pointer is set when the update is finished, since the pool may move. */
void core_msg_attach_entries(struct core *c, uint64_t first, uint32_t n) {
  struct core_out *o = &c->out;
  assert(o->msgs_n > 0 && o->msgs[o->msgs_n - 1].type == CORE_MSG_APPEND);
  core_grow((void **)&o->msg_ents, &o->msg_ents_cap, o->msg_ents_n + n,
            sizeof *o->msg_ents);
  o->msg_ents_off[o->msgs_n - 1] = o->msg_ents_n;
  for (uint32_t i = 0; i < n; i++) {
    o->msg_ents[o->msg_ents_n++] = *core_log_get(&c->log, first + i);
  }
  o->msgs[o->msgs_n - 1].append.entries_n = n;
}

/* The entry at `index` was appended in this step: persist it. */
void core_out_appended(struct core *c, uint64_t index) {
  if (c->out.persist_from == 0 || c->out.persist_from > index) {
    c->out.persist_from = index;
  }
}

/* The log loses its entries from `from` on: the store must too. */
void core_out_truncated(struct core *c, uint64_t from) {
  struct core_update *up = c->out.up;
  if (up->truncate_from == 0 || up->truncate_from > from) {
    up->truncate_from = from;
  }
  if (c->out.persist_from >= from) {
    c->out.persist_from = 0;
  }
}

struct core_read *core_out_read(struct core *c) {
  struct core_out *o = &c->out;
  core_grow((void **)&o->reads, &o->reads_cap, o->reads_n + 1,
            sizeof *o->reads);
  return &o->reads[o->reads_n++];
}

static void core_out_begin(struct core *c, struct core_update *up) {
  memset(up, 0, sizeof *up);
  c->out.up = up;
  c->out.msgs_n = 0;
  c->out.msg_ents_n = 0;
  c->out.committed_n = 0;
  c->out.reads_n = 0;
  c->out.persist_from = 0;
}

static void core_out_persisted_entries(struct core *c, struct core_update *up) {
  struct core_out *o = &c->out;
  uint64_t last = core_log_last(&c->log);
  if (o->persist_from == 0 || o->persist_from > last) {
    return;
  }
  uint32_t n = (uint32_t)(last - o->persist_from + 1);
  core_grow((void **)&o->ents, &o->ents_cap, n, sizeof *o->ents);
  for (uint32_t i = 0; i < n; i++) {
    o->ents[i] = *core_log_get(&c->log, o->persist_from + i);
  }
  up->entries = o->ents;
  up->entries_n = n;
  /* Deleting from an index above the first new entry deletes nothing more
   * than deleting from the first new entry would. */
  if (up->truncate_from > o->persist_from) {
    up->truncate_from = o->persist_from;
  }
  if (last > c->handed_max) {
    c->handed_max = last;
  }
}

static void core_out_state(struct core *c, struct core_update *up) {
  struct core_hard_state hs = {c->term, c->vote, c->commit};
  if (memcmp(&hs, &c->hs_out, sizeof hs) != 0) {
    up->hard_state_changed = true;
    up->hard_state = hs;
    c->hs_out = hs;
  }
  if (c->role != c->role_out || c->term != c->term_out ||
      c->leader != c->leader_out) {
    up->soft_state_changed = true;
    c->role_out = c->role;
    c->term_out = c->term;
    c->leader_out = c->leader;
  }
  up->role = c->role;
  up->term = c->term;
  up->leader = c->leader;
  if (memcmp(&c->config, &c->config_out, sizeof c->config) != 0) {
    up->config_changed = true;
    c->config_out = c->config;
  }
  up->config = c->config;
}

static void core_out_finish(struct core *c, struct core_update *up) {
  struct core_out *o = &c->out;
  core_out_persisted_entries(c, up);
  for (uint32_t i = 0; i < o->msgs_n; i++) {
    if (o->msgs[i].type == CORE_MSG_APPEND && o->msgs[i].append.entries_n > 0) {
      o->msgs[i].append.entries = o->msg_ents + o->msg_ents_off[i];
    }
  }
  up->msgs = o->msgs_n > 0 ? o->msgs : NULL;
  up->msgs_n = o->msgs_n;
  up->committed = o->committed_n > 0 ? o->committed : NULL;
  up->committed_n = o->committed_n;
  up->reads = o->reads_n > 0 ? o->reads : NULL;
  up->reads_n = o->reads_n;
  core_out_state(c, up);
  c->out.up = NULL;
}

/* base plus up to snapshot_spread_percent of it again, drawn from this
 * replica's id, the last snapshot's index `since` and a salt per
 * threshold (not from the PRNG, whose draws time elections). Replicas
 * apply the same entries: with one threshold they would all save their
 * images at one index, each stopping its log writes meanwhile, and no
 * majority would be left to commit. */
uint64_t core_snapshot_spread(const struct core *c, uint64_t since,
                              uint64_t base, uint64_t salt) {
  uint64_t spread = base * c->o.snapshot_spread_percent / 100;
  struct core_prng h;
  if (spread == 0) {
    return base;
  }
  core_prng_seed(&h, c->id ^ (since * salt));
  return base + core_prng_next(&h) % (spread + 1);
}

/* How many indexes in [0, x] are this replica's snapshot points: those
 * equal to `slot` modulo `period`. */
static uint64_t core_slot_points(uint64_t x, uint64_t slot, uint64_t period) {
  return x < slot ? 0 : (x - slot) / period + 1;
}

/* Whether applying (from, to] crossed one of this replica's snapshot points
 * (options.snapshot_slots); always, without slots or for a replica that is
 * not one of two or more voters. */
static bool core_snapshot_slot_crossed(const struct core *c, uint64_t from,
                                       uint64_t to) {
  const struct core_config *cfg = &c->config;
  uint64_t period = c->o.snapshot_entries;
  uint32_t k = 0;
  while (k < cfg->voters_n && cfg->voters[k] != c->id) {
    k++;
  }
  if (!c->o.snapshot_slots || k == cfg->voters_n || cfg->voters_n < 2 ||
      period < cfg->voters_n) {
    return true;
  }
  uint64_t slot = period * k / cfg->voters_n;
  return core_slot_points(to, slot, period) >
         core_slot_points(from, slot, period);
}

/* Hands out committed entries once each, in order (Figure 2, all servers:
 * "If commitIndex > lastApplied: increment lastApplied, apply
 * log[lastApplied] to state machine"). */
void core_repl_deliver(struct core *c) {
  struct core_out *o = &c->out;
  uint64_t applied_before = c->applied;
  if (c->applied < c->commit) {
    uint32_t n = (uint32_t)(c->commit - c->applied);
    core_grow((void **)&o->committed, &o->committed_cap, o->committed_n + n,
              sizeof *o->committed);
    for (uint64_t i = c->applied + 1; i <= c->commit; i++) {
      o->committed[o->committed_n++] = *core_log_get(&c->log, i);
      c->applied_bytes += core_log_get(&c->log, i)->len;
    }
    c->applied = c->commit;
  }
  uint64_t since =
      c->snap.index > c->snap_wanted_at ? c->snap.index : c->snap_wanted_at;
  uint64_t due = c->applied - since;
  uint64_t threshold = core_snapshot_spread(c, since, c->o.snapshot_entries,
                                            0xff51afd7ed558ccdULL);
  /* A new snapshot while one streams to a follower would make the leader
   * restart that transfer with the newer image (the shell keeps only the
   * latest), and under steady writes a large image would never finish:
   * hold off while streaming, up to four thresholds' worth of log. Never
   * past a quarter of log_bytes_max applied, though: proposals stop at
   * log_bytes_max, and only a snapshot frees the log, so holding off
   * longer wedged the leader for as long as the transfer lasted (forever,
   * for a follower that could not install the image). */
  uint64_t bytes = c->applied_bytes - c->snap_wanted_bytes;
  /* Whatever the entry count: a quarter of log_bytes_max, spread (up to
   * half a quarter again: proposals stop only at log_bytes_max). */
  bool bytes_due =
      bytes >= core_snapshot_spread(c, since, c->o.log_bytes_max / 4,
                                    0x9fb21c651e98df25ULL);
  /* A snapshot writes the whole state, so the entry count alone would
   * rewrite a large state (a key history, a channel's retained messages)
   * every few thousand small entries, each time stopping this replica's
   * log writes while it is saved: wait also until the log since the last
   * snapshot outweighs its image (thesis §5.1.1: a snapshot when the log
   * reaches the snapshot's size; writes then cost at most 2.5 times),
   * spread too: the image is the same size on every replica, and for a
   * large one this is the threshold that binds. */
  bool log_outweighs =
      bytes >=
      core_snapshot_spread(c, since, c->snap.size_bytes, 0xc2b2ae3d27d4eb4fULL);
  if (bytes_due ||
      (due >= threshold && log_outweighs &&
       (!core_snapshot_streaming(c) || due >= 4 * threshold) &&
       core_snapshot_slot_crossed(c, applied_before, c->applied))) {
    c->out.up->snapshot_wanted = true;
    c->snap_wanted_at = c->applied;
    c->snap_wanted_bytes = c->applied_bytes;
  }
}

/* --------------------------------------------------------- construction */

static void core_options_defaults(struct core_options *o) {
#define CORE_DEFAULT(field, value)                                             \
  if (o->field == 0) {                                                         \
    o->field = (value);                                                        \
  }
  CORE_DEFAULT(election_ticks, 10);
  CORE_DEFAULT(heartbeat_ticks, 1);
  CORE_DEFAULT(append_entries_max, 64);
  CORE_DEFAULT(append_bytes_max, 1u << 20);
  CORE_DEFAULT(inflight_appends_max, 16);
  CORE_DEFAULT(inflight_bytes_max, 8u << 20);
  CORE_DEFAULT(log_bytes_max, 256u << 20);
  CORE_DEFAULT(uncommitted_entries_max, 8192);
  CORE_DEFAULT(snapshot_chunk_bytes, 256u << 10);
  CORE_DEFAULT(snapshot_entries, 8192);
  CORE_DEFAULT(snapshot_keep_entries, 1024);
  CORE_DEFAULT(snapshot_keep_bytes, o->log_bytes_max / 16);
  CORE_DEFAULT(promote_lag_entries, 64);
  CORE_DEFAULT(held_bytes_min, 4u << 20);
#undef CORE_DEFAULT
}

static int core_restore_check(const struct core_restore *r, char *errmsg) {
  const struct core_snapshot_meta *s = &r->snapshot;
  if (s->index > 0 && (s->term == 0 || !core_config_valid(&s->config))) {
    errmsg_set(errmsg, "core: snapshot %" PRIu64 " has a bad term or config",
               s->index);
    return SYNOD_EINVAL;
  }
  if (r->entries_n > 0 && r->entries == NULL) {
    errmsg_set(errmsg, "core: %" PRIu32 " entries but no array", r->entries_n);
    return SYNOD_EINVAL;
  }
  uint64_t term = s->term;
  for (uint32_t i = 0; i < r->entries_n; i++) {
    const struct core_entry *e = &r->entries[i];
    if (e->index != s->index + 1 + i || e->term < term ||
        !core_entry_valid(e)) {
      errmsg_set(errmsg,
                 "core: entry %" PRIu32 " (index %" PRIu64 ", term %" PRIu64
                 ") is not contiguous from the snapshot or is invalid",
                 i, e->index, e->term);
      return SYNOD_EINVAL;
    }
    term = e->term;
  }
  return 0;
}

static void core_restore_apply(struct core *c, const struct core_restore *r) {
  const struct core_snapshot_meta *s = &r->snapshot;
  struct core_config none;
  memset(&none, 0, sizeof none);
  c->snap = *s;
  core_log_init(&c->log, s->index, s->term, s->index > 0 ? &s->config : &none);
  for (uint32_t i = 0; i < r->entries_n; i++) {
    const struct core_entry *e = &r->entries[i];
    core_log_append(&c->log, e->term, e->type, e->data, e->len);
  }
  c->handed_max = core_log_last(&c->log);
  c->log.durable = core_log_last(&c->log); /* it comes from the store */
  c->hs_out = r->hard_state;
  c->term = r->hard_state.term;
  c->vote = r->hard_state.vote;
  if (core_log_last_term(&c->log) > c->term) {
    /* A bootstrap log may be ahead of a zero hard state. */
    c->term = core_log_last_term(&c->log);
    c->vote = 0;
  }
  /* The state machine restarts from the snapshot, so everything after it
   * is handed out again. A commit beyond the log (a crash between storing
   * a received snapshot and installing it) is lowered to the log. */
  c->applied = s->index;
  c->commit = r->hard_state.commit;
  if (c->commit < s->index) {
    c->commit = s->index;
  }
  if (c->commit > core_log_last(&c->log)) {
    c->commit = core_log_last(&c->log);
  }
  c->snap_wanted_at = s->index;
  core_membership_refresh(c);
  c->config_out = c->config;
  c->term_out = c->term;
}

struct core *core_new(const struct core_options *opts,
                      const struct core_restore *restore, char *errmsg) {
  if (opts == NULL || opts->id == 0 || restore == NULL) {
    errmsg_set(errmsg, "core: options with a non-zero id are required");
    return NULL;
  }
  if (core_restore_check(restore, errmsg) != 0) {
    return NULL;
  }
  struct core *c = calloc(1, sizeof *c);
  if (c == NULL) {
    errmsg_set(errmsg, "core: out of memory");
    return NULL;
  }
  c->o = *opts;
  core_options_defaults(&c->o);
  c->id = opts->id;
  core_prng_seed(&c->prng, opts->seed ^ (opts->id * 0xd1b54a32d192ed03ULL));
  for (uint32_t i = 0; i < CORE_PEERS_MAX; i++) {
    c->prs[i].inflights =
        calloc(c->o.inflight_appends_max, sizeof *c->prs[i].inflights);
  }
  c->reads = calloc(CORE_READS_MAX, sizeof *c->reads);
  bool ok = c->reads != NULL;
  for (uint32_t i = 0; i < CORE_PEERS_MAX; i++) {
    ok = ok && c->prs[i].inflights != NULL;
  }
  if (!ok) {
    core_free(c);
    errmsg_set(errmsg, "core: out of memory");
    return NULL;
  }
  core_restore_apply(c, restore);
  c->role = c->role_out = CORE_FOLLOWER;
  core_election_timer_reset(c);
  core_trace(c,
             "started: last %" PRIu64 "/%" PRIu64 ", commit %" PRIu64
             ", snapshot %" PRIu64,
             core_log_last(&c->log), core_log_last_term(&c->log), c->commit,
             c->snap.index);
  return c;
}

void core_free(struct core *c) {
  if (c == NULL) {
    return;
  }
  core_log_close(&c->log);
  for (uint32_t i = 0; i < CORE_PEERS_MAX; i++) {
    free(c->prs[i].inflights);
  }
  free(c->reads);
  free(c->out.msgs);
  free(c->out.msg_ents_off);
  free(c->out.msg_ents);
  free(c->out.ents);
  free(c->out.committed);
  free(c->out.reads);
  free(c);
}

/* ---------------------------------------------------------------- terms */

/* Figure 2, all servers: "If RPC request or response contains term T >
 * currentTerm: set currentTerm = T, convert to follower." Except: a
 * PRE_VOTE and its reply never change a term (thesis 9.6), and a VOTE
 * reaching a replica that heard from a leader within the minimum election
 * timeout is ignored unless it comes from a leadership transfer (thesis
 * 4.2.3). Returns false if the message is to be dropped. */
static bool core_recv_higher_term(struct core *c, const struct core_msg *m) {
  switch (m->type) {
  case CORE_MSG_PRE_VOTE:
  case CORE_MSG_PRE_VOTE_REPLY:
    return true;
  case CORE_MSG_VOTE:
    if (core_election_in_lease(c) && !m->vote.transfer) {
      core_trace(c,
                 "ignore vote from %" PRIu64 " for term %" PRIu64
                 ": leader %" PRIu64 " is current",
                 m->from, m->term, c->leader);
      return false;
    }
    core_become_follower(c, m->term, 0);
    return true;
  case CORE_MSG_APPEND:
  case CORE_MSG_HEARTBEAT:
  case CORE_MSG_SNAPSHOT:
    core_become_follower(c, m->term, m->from);
    return true;
  default:
    core_become_follower(c, m->term, 0);
    return true;
  }
}

/* Figure 2: "Reply false if term < currentTerm." The reply carries our
 * term, so a stale leader or candidate learns it and steps down (etcd raft
 * does the same for appends when PreVote or CheckQuorum is on, where a
 * term would otherwise never reach a replica stuck in a past term). */
static void core_recv_lower_term(struct core *c, const struct core_msg *m) {
  struct core_msg *r;
  switch (m->type) {
  case CORE_MSG_APPEND:
  case CORE_MSG_HEARTBEAT:
  case CORE_MSG_SNAPSHOT:
    r = core_msg_push(c, CORE_MSG_APPEND_REPLY, m->from);
    r->append_reply.reject = true;
    break;
  case CORE_MSG_VOTE:
    core_msg_push(c, CORE_MSG_VOTE_REPLY, m->from);
    break;
  case CORE_MSG_PRE_VOTE:
    core_msg_push(c, CORE_MSG_PRE_VOTE_REPLY, m->from);
    break;
  default:
    break;
  }
}

static void core_receive(struct core *c, const struct core_msg *m) {
  if (m->term > c->term && !core_recv_higher_term(c, m)) {
    return;
  }
  if (m->term < c->term && m->type != CORE_MSG_PRE_VOTE_REPLY) {
    core_recv_lower_term(c, m);
    return;
  }
  switch (m->type) {
  case CORE_MSG_APPEND:
    core_recv_append(c, m);
    break;
  case CORE_MSG_APPEND_REPLY:
    core_recv_append_reply(c, m);
    break;
  case CORE_MSG_VOTE:
    core_recv_vote(c, m);
    break;
  case CORE_MSG_VOTE_REPLY:
    core_recv_vote_reply(c, m);
    break;
  case CORE_MSG_PRE_VOTE:
    core_recv_pre_vote(c, m);
    break;
  case CORE_MSG_PRE_VOTE_REPLY:
    core_recv_pre_vote_reply(c, m);
    break;
  case CORE_MSG_HEARTBEAT:
    core_recv_heartbeat(c, m);
    break;
  case CORE_MSG_HEARTBEAT_REPLY:
    core_recv_heartbeat_reply(c, m);
    break;
  case CORE_MSG_SNAPSHOT:
    core_recv_snapshot(c, m);
    break;
  case CORE_MSG_SNAPSHOT_REPLY:
    core_recv_snapshot_reply(c, m);
    break;
  case CORE_MSG_TIMEOUT_NOW:
    core_recv_timeout_now(c, m);
    break;
  case CORE_MSG_TYPE_COUNT:
    break;
  }
}

/* ----------------------------------------------------------------- step */

static void core_tick(struct core *c) {
  if (c->role == CORE_LEADER) {
    core_repl_tick(c);
  } else {
    core_election_tick(c);
  }
}

static void core_dispatch(struct core *c, const struct core_event *ev) {
  switch (ev->type) {
  case CORE_EVENT_RECEIVE:
    core_receive(c, ev->msg);
    break;
  case CORE_EVENT_TICK:
    core_tick(c);
    break;
  case CORE_EVENT_PROPOSE:
    core_repl_propose(c, ev->propose.entries, ev->propose.entries_n);
    break;
  case CORE_EVENT_PERSISTED:
    core_log_persisted(&c->log, ev->persisted.index, ev->persisted.term);
    core_repl_persisted(c, ev->persisted.index, ev->persisted.term);
    break;
  case CORE_EVENT_READ_INDEX:
    core_read_request(c, ev->read_ctx);
    break;
  case CORE_EVENT_SNAPSHOT_TAKEN:
    core_snapshot_taken(c, &ev->snapshot);
    break;
  case CORE_EVENT_ADD_MEMBER:
  case CORE_EVENT_REMOVE_MEMBER:
    core_membership_change(c, ev->type, ev->id);
    break;
  case CORE_EVENT_TRANSFER:
    core_transfer_start(c, ev->id);
    break;
  case CORE_EVENT_UNREACHABLE:
    core_repl_unreachable(c, ev->id);
    break;
  case CORE_EVENT_PEER_GONE:
    core_election_peer_gone(c, ev->id);
    break;
  case CORE_EVENT_RELEASE:
    /* What the store reads back is the log as the last completed write
     * left it; entries the core truncated since are not durable here,
     * and ones it appended after are durable only through a later write,
     * whose RELEASE will say how far the store has them. Not a maximum:
     * a truncation may lower it (entries released before stay readable:
     * they were committed), and lowers it in the log at once. */
    core_log_readable(&c->log, ev->release);
    break;
  }
}

int core_step(struct core *c, const struct core_event *ev,
              struct core_update *out) {
  assert(c != NULL && ev != NULL && out != NULL);
  memset(out, 0, sizeof *out);
  core_log_gc(&c->log);
  int rv = core_check_event(c, ev);
  if (rv != 0) {
    return rv;
  }
  c->errmsg[0] = '\0';
  core_out_begin(c, out);
  uint64_t last = core_log_last(&c->log);
  core_dispatch(c, ev);
  if (ev->type == CORE_EVENT_PROPOSE || ev->type == CORE_EVENT_ADD_MEMBER ||
      ev->type == CORE_EVENT_REMOVE_MEMBER) {
    out->proposed_first = last + 1;
    out->proposed_last = core_log_last(&c->log);
  }
  core_repl_deliver(c);
  /* Entries handed out to apply in this step are released too: their
   * data goes to the garbage, freed only at the next step. */
  core_log_release(&c->log, c->applied, c->o.held_bytes_min);
  core_out_finish(c, out);
  return 0;
}

/* ---------------------------------------------------------------- views */

enum core_role core_role(const struct core *c) {
  return c->role;
}

uint64_t core_term(const struct core *c) {
  return c->term;
}

uint64_t core_leader(const struct core *c) {
  return c->leader;
}

uint64_t core_commit_index(const struct core *c) {
  return c->commit;
}

uint64_t core_last_index(const struct core *c) {
  return core_log_last(&c->log);
}

uint64_t core_first_index(const struct core *c) {
  return core_log_first(&c->log);
}

uint64_t core_log_memory_bytes(const struct core *c) {
  return c->log.held_bytes;
}

uint64_t core_released_index(const struct core *c) {
  return c->log.released;
}

const struct core_config *core_config(const struct core *c) {
  return &c->config;
}

int core_config_at(const struct core *c, uint64_t index,
                   struct core_config *cfg) {
  if (index < c->log.prev_index) {
    return SYNOD_ECOMPACTED;
  }
  if (index > core_log_last(&c->log)) {
    return SYNOD_EUNAVAILABLE;
  }
  *cfg = core_log_config_at(&c->log, index)->config;
  return 0;
}

const char *core_errmsg(const struct core *c) {
  return c->errmsg;
}

uint64_t core_match_index(const struct core *c, uint64_t id) {
  if (c->role != CORE_LEADER) {
    return 0;
  }
  if (id == c->id) {
    return c->self_match;
  }
  for (uint32_t i = 0; i < CORE_PEERS_MAX; i++) {
    if (c->prs[i].id == id) {
      return c->prs[i].match;
    }
  }
  return 0;
}

const char *core_role_name(enum core_role role) {
  switch (role) {
  case CORE_FOLLOWER:
    return "follower";
  case CORE_PRE_CANDIDATE:
    return "pre-candidate";
  case CORE_CANDIDATE:
    return "candidate";
  case CORE_LEADER:
    return "leader";
  }
  return "?";
}

const char *core_msg_type_name(enum core_msg_type type) {
  static const char *const names[CORE_MSG_TYPE_COUNT] = {
      "append",   "append-reply",   "vote",        "vote-reply",
      "pre-vote", "pre-vote-reply", "heartbeat",   "heartbeat-reply",
      "snapshot", "snapshot-reply", "timeout-now",
  };
  return (unsigned)type < CORE_MSG_TYPE_COUNT ? names[type] : "?";
}
