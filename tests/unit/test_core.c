/* The Raft core, one replica at a time: events fed by hand, updates checked
 * against the rules of the Raft paper and thesis; and a few runs of a tiny
 * perfect-network cluster for the paths that need several replicas. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "core_log.h"
#include "synod.h"

/* ------------------------------------------------------------- helpers */

static struct core_options test_opts(uint64_t id) {
  struct core_options o;
  memset(&o, 0, sizeof o);
  o.id = id;
  o.seed = 42;
  o.election_ticks = 10;
  o.heartbeat_ticks = 1;
  return o;
}

static struct core_config test_config(uint32_t voters) {
  struct core_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.voters_n = voters;
  for (uint32_t i = 0; i < voters; i++) {
    cfg.voters[i] = i + 1;
  }
  return cfg;
}

static uint8_t boot_buf[CORE_CONFIG_ENCODED_MAX];

/* The bootstrap entry every fresh replica starts with. */
static struct core_entry boot_entry(uint32_t voters) {
  struct core_config cfg = test_config(voters);
  struct core_entry e = {.term = 1, .index = 1, .type = CORE_ENTRY_CONFIG};
  e.len = core_config_encode(&cfg, boot_buf);
  e.data = boot_buf;
  return e;
}

static struct core *new_core_opts(const struct core_options *o,
                                  uint32_t voters) {
  struct core_entry boot = boot_entry(voters);
  struct core_restore r;
  memset(&r, 0, sizeof r);
  r.hard_state.term = 1;
  r.entries = &boot;
  r.entries_n = 1;
  char err[256];
  struct core *c = core_new(o, &r, err);
  ck_assert_msg(c != NULL, "core_new: %s", err);
  return c;
}

static struct core *new_core(uint64_t id, uint32_t voters) {
  struct core_options o = test_opts(id);
  o.disable_pre_vote = true;
  return new_core_opts(&o, voters);
}

static int step(struct core *c, const struct core_event *ev,
                struct core_update *up) {
  return core_step(c, ev, up);
}

static void tick(struct core *c, struct core_update *up) {
  struct core_event ev = {.type = CORE_EVENT_TICK};
  ck_assert_int_eq(step(c, &ev, up), 0);
}

static int recv(struct core *c, const struct core_msg *m,
                struct core_update *up) {
  struct core_event ev = {.type = CORE_EVENT_RECEIVE};
  ev.msg = m;
  return step(c, &ev, up);
}

static void persisted(struct core *c, uint64_t index, uint64_t term,
                      struct core_update *up) {
  struct core_event ev = {.type = CORE_EVENT_PERSISTED};
  ev.persisted.index = index;
  ev.persisted.term = term;
  ck_assert_int_eq(step(c, &ev, up), 0);
}

static const struct core_msg *find_msg(const struct core_update *up,
                                       enum core_msg_type type, uint64_t to) {
  for (uint32_t i = 0; i < up->msgs_n; i++) {
    if (up->msgs[i].type == type && (to == 0 || up->msgs[i].to == to)) {
      return &up->msgs[i];
    }
  }
  return NULL;
}

static uint32_t count_msgs(const struct core_update *up,
                           enum core_msg_type type, uint64_t to) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < up->msgs_n; i++) {
    n += up->msgs[i].type == type && (to == 0 || up->msgs[i].to == to);
  }
  return n;
}

static struct core_msg msg(enum core_msg_type type, uint64_t from, uint64_t to,
                           uint64_t term) {
  struct core_msg m;
  memset(&m, 0, sizeof m);
  m.type = type;
  m.from = from;
  m.to = to;
  m.term = term;
  return m;
}

/* Ticks until c sends a message of `type`; fails after 100 ticks. */
static void tick_until(struct core *c, enum core_msg_type type,
                       struct core_update *up) {
  for (int i = 0; i < 100; i++) {
    tick(c, up);
    if (find_msg(up, type, 0) != NULL) {
      return;
    }
  }
  ck_abort_msg("no %s after 100 ticks", core_msg_type_name(type));
}

static struct core_msg vote_reply(uint64_t from, uint64_t to, uint64_t term,
                                  bool granted) {
  struct core_msg m = msg(CORE_MSG_VOTE_REPLY, from, to, term);
  m.vote_reply.granted = granted;
  return m;
}

/* Replica 1 of a `voters` cluster with options o (pre-vote off), elected
 * leader in term 2 with its noop at index 2 persisted; votes from 2 (and
 * 3). */
static struct core *new_leader_opts(const struct core_options *o,
                                    uint32_t voters, struct core_update *up) {
  struct core *c = new_core_opts(o, voters);
  tick_until(c, CORE_MSG_VOTE, up);
  for (uint64_t v = 2; v <= voters / 2 + 1; v++) {
    struct core_msg r = vote_reply(v, 1, 2, true);
    ck_assert_int_eq(recv(c, &r, up), 0);
  }
  ck_assert_int_eq(core_role(c), CORE_LEADER);
  persisted(c, 2, 2, up);
  return c;
}

static struct core *new_leader(uint32_t voters, struct core_update *up) {
  struct core_options o = test_opts(1);
  o.disable_pre_vote = true;
  return new_leader_opts(&o, voters, up);
}

/* Replica 1 alone: it wins by its own vote, takes office once that vote
 * (and its noop at 2) is durable, and commits the noop. */
static struct core *single_leader(struct core_update *up) {
  struct core *c = new_core(1, 1);
  for (int i = 0; i < 30 && core_role(c) != CORE_CANDIDATE; i++) {
    tick(c, up);
  }
  ck_assert_int_eq(core_role(c), CORE_CANDIDATE);
  ck_assert_uint_eq(up->entries_n, 1);
  ck_assert_uint_eq(up->entries[0].type, CORE_ENTRY_NOOP);
  ck_assert(up->hard_state_changed && up->hard_state.vote == 1);
  persisted(c, 2, core_term(c), up);
  ck_assert_int_eq(core_role(c), CORE_LEADER);
  ck_assert_uint_eq(core_commit_index(c), 2);
  return c;
}

static struct core_msg append_reply(uint64_t from, uint64_t term,
                                    uint64_t index) {
  struct core_msg m = msg(CORE_MSG_APPEND_REPLY, from, 1, term);
  m.append_reply.index = index;
  return m;
}

static void propose(struct core *c, const char *data, struct core_update *up) {
  struct core_entry e = {.type = CORE_ENTRY_NORMAL};
  e.data = (const uint8_t *)data;
  e.len = strlen(data);
  struct core_event ev = {.type = CORE_EVENT_PROPOSE};
  ev.propose.entries = &e;
  ev.propose.entries_n = 1;
  ck_assert_int_eq(step(c, &ev, up), 0);
}

/* A replica restored from a log with the given terms (index 1 = the
 * bootstrap config entry, whatever terms[0] says about it). */
static struct core *new_core_log(const struct core_options *o, uint32_t voters,
                                 const uint64_t *terms, uint32_t n,
                                 uint64_t term, uint64_t commit) {
  struct core_entry ents[16];
  ck_assert_uint_le(n, 16);
  ents[0] = boot_entry(voters);
  for (uint32_t i = 1; i < n; i++) {
    memset(&ents[i], 0, sizeof ents[i]);
    ents[i].index = i + 1;
    ents[i].term = terms[i];
    ents[i].type = CORE_ENTRY_NORMAL;
  }
  struct core_restore r;
  memset(&r, 0, sizeof r);
  r.hard_state.term = term;
  r.hard_state.commit = commit;
  r.entries = ents;
  r.entries_n = n;
  char err[256];
  struct core *c = core_new(o, &r, err);
  ck_assert_msg(c != NULL, "core_new: %s", err);
  return c;
}

static struct core_msg vote_req(enum core_msg_type type, uint64_t from,
                                uint64_t to, uint64_t term, uint64_t last_index,
                                uint64_t last_term) {
  struct core_msg m = msg(type, from, to, term);
  m.vote.last_index = last_index;
  m.vote.last_term = last_term;
  return m;
}

/* ----------------------------------------------------------- elections */

/* Thesis 9.6: a pre-candidate asks for term + 1 without changing its
 * term or vote; a quorum of pre-votes starts the real election, within
 * [e, 2e) ticks of the last reset. */
START_TEST(follower_times_out_and_pre_votes_then_votes) {
  struct core_options o = test_opts(1);
  struct core *c = new_core_opts(&o, 3);
  struct core_update up;
  int ticks = 0;
  do {
    tick(c, &up);
    ticks++;
  } while (find_msg(&up, CORE_MSG_PRE_VOTE, 0) == NULL && ticks < 100);
  ck_assert_int_ge(ticks, 10);
  ck_assert_int_lt(ticks, 20);
  const struct core_msg *m = find_msg(&up, CORE_MSG_PRE_VOTE, 2);
  ck_assert_ptr_nonnull(m);
  ck_assert_ptr_nonnull(find_msg(&up, CORE_MSG_PRE_VOTE, 3));
  ck_assert_uint_eq(m->term, 2);
  ck_assert_uint_eq(m->vote.last_index, 1);
  ck_assert_uint_eq(m->vote.last_term, 1);
  ck_assert_uint_eq(core_term(c), 1);
  ck_assert_int_eq(core_role(c), CORE_PRE_CANDIDATE);
  ck_assert(!up.hard_state_changed);

  struct core_msg r = msg(CORE_MSG_PRE_VOTE_REPLY, 2, 1, 2);
  r.vote_reply.granted = true;
  ck_assert_int_eq(recv(c, &r, &up), 0);
  ck_assert_int_eq(core_role(c), CORE_CANDIDATE);
  ck_assert_uint_eq(core_term(c), 2);
  ck_assert(up.hard_state_changed);
  ck_assert_uint_eq(up.hard_state.term, 2);
  ck_assert_uint_eq(up.hard_state.vote, 1);
  ck_assert_uint_eq(count_msgs(&up, CORE_MSG_VOTE, 0), 2);
  core_free(c);
}
END_TEST

/* A pre-vote changes nothing on the voter: no term, no vote. */
START_TEST(pre_vote_granted_without_changing_term) {
  struct core_options o = test_opts(2);
  struct core *c = new_core_opts(&o, 3);
  struct core_update up;
  struct core_msg m = vote_req(CORE_MSG_PRE_VOTE, 1, 2, 2, 1, 1);
  ck_assert_int_eq(recv(c, &m, &up), 0);
  const struct core_msg *r = find_msg(&up, CORE_MSG_PRE_VOTE_REPLY, 1);
  ck_assert_ptr_nonnull(r);
  ck_assert(r->vote_reply.granted);
  ck_assert_uint_eq(r->term, 2);
  ck_assert_uint_eq(core_term(c), 1);
  ck_assert(!up.hard_state_changed);
  core_free(c);
}
END_TEST

/* Figure 2: at most one vote per term, and it is in the hard state of the
 * update whose messages carry the reply (persist before send). */
START_TEST(vote_refused_twice_in_a_term) {
  struct core *c = new_core(2, 3);
  struct core_update up;
  struct core_msg m = vote_req(CORE_MSG_VOTE, 1, 2, 2, 1, 1);
  ck_assert_int_eq(recv(c, &m, &up), 0);
  const struct core_msg *r = find_msg(&up, CORE_MSG_VOTE_REPLY, 1);
  ck_assert(r != NULL && r->vote_reply.granted);
  ck_assert(up.hard_state_changed);
  ck_assert_uint_eq(up.hard_state.vote, 1);
  ck_assert_uint_eq(up.hard_state.term, 2);

  m = vote_req(CORE_MSG_VOTE, 3, 2, 2, 1, 1);
  ck_assert_int_eq(recv(c, &m, &up), 0);
  r = find_msg(&up, CORE_MSG_VOTE_REPLY, 3);
  ck_assert(r != NULL && !r->vote_reply.granted);
  ck_assert(!up.hard_state_changed);

  m = vote_req(CORE_MSG_VOTE, 1, 2, 2, 1, 1); /* a retry: same answer */
  ck_assert_int_eq(recv(c, &m, &up), 0);
  r = find_msg(&up, CORE_MSG_VOTE_REPLY, 1);
  ck_assert(r != NULL && r->vote_reply.granted);
  core_free(c);
}
END_TEST

/* §5.4.1: a vote only for a log at least as up to date as ours. */
START_TEST(vote_refused_for_stale_log) {
  struct core_options o = test_opts(2);
  const uint64_t terms[] = {1, 1, 2};
  struct core *c = new_core_log(&o, 3, terms, 3, 2, 0);
  struct core_update up;
  struct core_msg m = vote_req(CORE_MSG_VOTE, 1, 2, 3, 5, 1); /* older term */
  ck_assert_int_eq(recv(c, &m, &up), 0);
  ck_assert(!find_msg(&up, CORE_MSG_VOTE_REPLY, 1)->vote_reply.granted);
  m = vote_req(CORE_MSG_VOTE, 1, 2, 3, 2, 2); /* same term, shorter */
  ck_assert_int_eq(recv(c, &m, &up), 0);
  ck_assert(!find_msg(&up, CORE_MSG_VOTE_REPLY, 1)->vote_reply.granted);
  ck_assert_uint_eq(core_term(c), 3);
  m = vote_req(CORE_MSG_VOTE, 1, 2, 3, 3, 2);
  ck_assert_int_eq(recv(c, &m, &up), 0);
  ck_assert(find_msg(&up, CORE_MSG_VOTE_REPLY, 1)->vote_reply.granted);
  ck_assert_uint_eq(up.hard_state.vote, 1);
  core_free(c);
}
END_TEST

/* Figure 2: a higher term in any message turns a leader into a follower of
 * that term, with no vote. */
START_TEST(higher_term_makes_leader_step_down) {
  struct core_update up;
  struct core *c = new_leader(3, &up);
  struct core_msg m = msg(CORE_MSG_APPEND_REPLY, 2, 1, 5);
  m.append_reply.reject = true;
  ck_assert_int_eq(recv(c, &m, &up), 0);
  ck_assert_int_eq(core_role(c), CORE_FOLLOWER);
  ck_assert_uint_eq(core_term(c), 5);
  ck_assert(up.hard_state_changed);
  ck_assert_uint_eq(up.hard_state.term, 5);
  ck_assert_uint_eq(up.hard_state.vote, 0);
  ck_assert(up.soft_state_changed);
  ck_assert_uint_eq(up.leader, 0);
  core_free(c);
}
END_TEST

/* Thesis 4.2.3: a replica that heard from its leader within the election
 * timeout ignores a VOTE for a higher term, unless it comes from a
 * leadership transfer. */
START_TEST(vote_ignored_while_leader_is_current_unless_transfer) {
  struct core *c = new_core(2, 3);
  struct core_update up;
  struct core_msg hb = msg(CORE_MSG_HEARTBEAT, 1, 2, 2);
  ck_assert_int_eq(recv(c, &hb, &up), 0);
  ck_assert_uint_eq(core_leader(c), 1);
  struct core_msg m = vote_req(CORE_MSG_VOTE, 3, 2, 3, 1, 1);
  ck_assert_int_eq(recv(c, &m, &up), 0);
  ck_assert_uint_eq(up.msgs_n, 0);
  ck_assert_uint_eq(core_term(c), 2);
  m.vote.transfer = true;
  ck_assert_int_eq(recv(c, &m, &up), 0);
  ck_assert_uint_eq(core_term(c), 3);
  ck_assert(find_msg(&up, CORE_MSG_VOTE_REPLY, 3)->vote_reply.granted);
  core_free(c);
}
END_TEST

/* A refused pre-vote carries the replier's term (etcd raft): a
 * pre-candidate behind in terms adopts it instead of asking forever. */
START_TEST(pre_vote_refusal_teaches_higher_term) {
  struct core_options o = test_opts(1);
  struct core *c = new_core_opts(&o, 3);
  struct core_update up;
  tick_until(c, CORE_MSG_PRE_VOTE, &up);
  struct core_msg r = msg(CORE_MSG_PRE_VOTE_REPLY, 2, 1, 7);
  ck_assert_int_eq(recv(c, &r, &up), 0);
  ck_assert_int_eq(core_role(c), CORE_FOLLOWER);
  ck_assert_uint_eq(core_term(c), 7);

  struct core *v = new_core_opts(&o, 3); /* as replica 1, at term 1 */
  struct core_msg hb = msg(CORE_MSG_HEARTBEAT, 3, 1, 5);
  ck_assert_int_eq(recv(v, &hb, &up), 0);
  struct core_msg pv = vote_req(CORE_MSG_PRE_VOTE, 2, 1, 5, 1, 1);
  ck_assert_int_eq(recv(v, &pv, &up), 0); /* in lease: refused */
  const struct core_msg *pr = find_msg(&up, CORE_MSG_PRE_VOTE_REPLY, 2);
  ck_assert(pr != NULL && !pr->vote_reply.granted);
  ck_assert_uint_eq(pr->term, 5);
  core_free(v);
  core_free(c);
}
END_TEST

/* A lower-term vote request gets our term back so the candidate learns. */
START_TEST(stale_candidate_learns_term_from_refusal) {
  struct core *c = new_core(2, 3);
  struct core_update up;
  struct core_msg m = vote_req(CORE_MSG_VOTE, 1, 2, 4, 1, 1);
  ck_assert_int_eq(recv(c, &m, &up), 0);
  m = vote_req(CORE_MSG_VOTE, 3, 2, 3, 9, 1);
  ck_assert_int_eq(recv(c, &m, &up), 0);
  const struct core_msg *r = find_msg(&up, CORE_MSG_VOTE_REPLY, 3);
  ck_assert(r != NULL && !r->vote_reply.granted);
  ck_assert_uint_eq(r->term, 4);
  core_free(c);
}
END_TEST

/* --------------------------------------------------------- replication */

static struct core_msg append_msg(uint64_t from, uint64_t to, uint64_t term,
                                  uint64_t prev_index, uint64_t prev_term,
                                  const struct core_entry *ents, uint32_t n,
                                  uint64_t commit) {
  struct core_msg m = msg(CORE_MSG_APPEND, from, to, term);
  m.append.prev_index = prev_index;
  m.append.prev_term = prev_term;
  m.append.entries = ents;
  m.append.entries_n = n;
  m.append.commit = commit;
  return m;
}

static struct core_entry ent(uint64_t index, uint64_t term) {
  struct core_entry e = {.index = index, .term = term};
  e.type = CORE_ENTRY_NORMAL;
  return e;
}

/* Figure 2 receiver 2, with etcd raft's hint: the largest index at or
 * below prev_index whose term is at most prev_term. */
START_TEST(append_rejected_on_mismatch_with_hint) {
  struct core_options o = test_opts(2);
  const uint64_t terms[] = {1, 2, 2, 2};
  struct core *c = new_core_log(&o, 3, terms, 4, 4, 1);
  struct core_update up;
  struct core_msg m = append_msg(1, 2, 4, 6, 3, NULL, 0, 1); /* too far */
  ck_assert_int_eq(recv(c, &m, &up), 0);
  const struct core_msg *r = find_msg(&up, CORE_MSG_APPEND_REPLY, 1);
  ck_assert(r != NULL && r->append_reply.reject);
  ck_assert_uint_eq(r->append_reply.index, 6);
  ck_assert_uint_eq(r->append_reply.hint_index, 4);
  ck_assert_uint_eq(r->append_reply.hint_term, 2);

  m = append_msg(1, 2, 4, 4, 1, NULL, 0, 1); /* conflicting term at 4 */
  ck_assert_int_eq(recv(c, &m, &up), 0);
  r = find_msg(&up, CORE_MSG_APPEND_REPLY, 1);
  ck_assert(r != NULL && r->append_reply.reject);
  ck_assert_uint_eq(r->append_reply.index, 4);
  ck_assert_uint_eq(r->append_reply.hint_index, 1);
  ck_assert_uint_eq(r->append_reply.hint_term, 1);
  ck_assert_uint_eq(up.entries_n, 0);
  ck_assert_uint_eq(core_last_index(c), 4);
  core_free(c);
}
END_TEST

/* The leader jumps next back over a whole term with the hint. */
START_TEST(leader_backtracks_by_term_with_hint) {
  struct core_options o = test_opts(1);
  o.disable_pre_vote = true;
  const uint64_t terms[] = {1, 1, 3, 3, 3};
  struct core *c = new_core_log(&o, 3, terms, 5, 3, 1);
  struct core_update up;
  tick_until(c, CORE_MSG_VOTE, &up);
  struct core_msg v = vote_reply(2, 1, 4, true);
  ck_assert_int_eq(recv(c, &v, &up), 0);
  ck_assert_int_eq(core_role(c), CORE_LEADER); /* noop at 6 */
  /* Follower 2 holds 1..4 of term 2 after index 2: hint (5 -> 4, 2). */
  struct core_msg r = msg(CORE_MSG_APPEND_REPLY, 2, 1, 4);
  r.append_reply.reject = true;
  r.append_reply.index = 5;
  r.append_reply.hint_index = 4;
  r.append_reply.hint_term = 2;
  ck_assert_int_eq(recv(c, &r, &up), 0);
  const struct core_msg *a = find_msg(&up, CORE_MSG_APPEND, 2);
  ck_assert_ptr_nonnull(a);
  ck_assert_uint_eq(a->append.prev_index, 2);
  ck_assert_uint_eq(a->append.prev_term, 1);
  ck_assert_uint_eq(a->append.entries_n, 4);
  ck_assert_uint_eq(a->append.entries[0].index, 3);
  core_free(c);
}
END_TEST

/* Figure 2 receiver 3: a conflicting suffix goes, and the store is told
 * to drop it before appending the new entries. */
START_TEST(conflicting_suffix_truncated) {
  struct core_options o = test_opts(2);
  const uint64_t terms[] = {1, 2, 2};
  struct core *c = new_core_log(&o, 3, terms, 3, 2, 1);
  struct core_update up;
  struct core_entry e[2] = {ent(2, 3), ent(3, 3)};
  struct core_msg m = append_msg(1, 2, 3, 1, 1, e, 2, 1);
  ck_assert_int_eq(recv(c, &m, &up), 0);
  ck_assert_uint_eq(up.truncate_from, 2);
  ck_assert_uint_eq(up.entries_n, 2);
  ck_assert_uint_eq(up.entries[0].index, 2);
  ck_assert_uint_eq(up.entries[0].term, 3);
  const struct core_msg *r = find_msg(&up, CORE_MSG_APPEND_REPLY, 1);
  ck_assert(r != NULL && !r->append_reply.reject);
  ck_assert_uint_eq(r->append_reply.index, 3);
  core_free(c);
}
END_TEST

/* A duplicated or reordered append whose entries already match changes
 * nothing, and acknowledges only what it verified. */
START_TEST(duplicate_append_is_noop) {
  struct core_options o = test_opts(2);
  const uint64_t terms[] = {1, 2, 2};
  struct core *c = new_core_log(&o, 3, terms, 3, 2, 1);
  struct core_update up;
  struct core_entry e = ent(2, 2);
  struct core_msg m = append_msg(1, 2, 2, 1, 1, &e, 1, 1);
  ck_assert_int_eq(recv(c, &m, &up), 0);
  ck_assert_uint_eq(up.truncate_from, 0);
  ck_assert_uint_eq(up.entries_n, 0);
  ck_assert_uint_eq(core_last_index(c), 3);
  const struct core_msg *r = find_msg(&up, CORE_MSG_APPEND_REPLY, 1);
  ck_assert(r != NULL && !r->append_reply.reject);
  ck_assert_uint_eq(r->append_reply.index, 2);
  core_free(c);
}
END_TEST

/* Figure 2 receiver 5: commit = min(leaderCommit, last new entry), never
 * beyond what this append verified. */
START_TEST(follower_commit_limited_to_verified_entries) {
  struct core_options o = test_opts(2);
  const uint64_t terms[] = {1, 1, 1, 1};
  struct core *c = new_core_log(&o, 3, terms, 4, 1, 1);
  struct core_update up;
  struct core_entry e = ent(2, 1);
  struct core_msg m = append_msg(1, 2, 2, 1, 1, &e, 1, 4);
  ck_assert_int_eq(recv(c, &m, &up), 0);
  ck_assert_uint_eq(core_commit_index(c), 2);
  ck_assert_uint_eq(up.committed_n, 2);
  ck_assert_uint_eq(up.committed[1].index, 2);
  ck_assert_uint_eq(up.hard_state.commit, 2);
  core_free(c);
}
END_TEST

/* §5.4.2 and Figure 8: a leader never commits an entry of an older term by
 * counting replicas; it commits once an entry of its own term is on a
 * majority, and its own copy counts only after PERSISTED. */
START_TEST(old_term_entry_not_committed_by_counting) {
  struct core_options o = test_opts(1);
  o.disable_pre_vote = true;
  const uint64_t terms[] = {1, 2};
  struct core *c = new_core_log(&o, 3, terms, 2, 3, 1);
  struct core_update up;
  tick_until(c, CORE_MSG_VOTE, &up);
  struct core_msg v = vote_reply(2, 1, 4, true);
  ck_assert_int_eq(recv(c, &v, &up), 0);
  ck_assert_int_eq(core_role(c), CORE_LEADER);
  ck_assert_uint_eq(core_last_index(c), 3); /* noop of term 4 */
  persisted(c, 2, 2, &up);
  struct core_msg r = append_reply(2, 4, 2);
  ck_assert_int_eq(recv(c, &r, &up), 0);
  ck_assert_uint_eq(core_commit_index(c), 1);
  persisted(c, 3, 4, &up); /* a majority now holds index 2, of term 2 */
  ck_assert_uint_eq(core_match_index(c, 1), 3);
  ck_assert_uint_eq(core_commit_index(c), 1);
  r = append_reply(2, 4, 3);
  ck_assert_int_eq(recv(c, &r, &up), 0);
  ck_assert_uint_eq(core_commit_index(c), 3);
  ck_assert_uint_eq(up.committed_n, 2);
  ck_assert_uint_eq(up.committed[0].index, 2);
  ck_assert_uint_eq(up.committed[1].index, 3);
  core_free(c);
}
END_TEST

/* A lone voter takes office only once its vote is durable (its noop
 * rides in the same update): a crash before that cannot leave two leaders
 * in one term. Stray ticks meanwhile do not start a new term. */
START_TEST(lone_candidate_takes_office_after_vote_is_durable) {
  struct core *c = new_core(1, 1);
  struct core_update up;
  for (int i = 0; i < 30 && core_role(c) != CORE_CANDIDATE; i++) {
    tick(c, &up);
  }
  ck_assert_int_eq(core_role(c), CORE_CANDIDATE);
  uint64_t term = core_term(c);
  ck_assert_uint_eq(up.entries_n, 1);
  ck_assert_uint_eq(up.entries[0].term, term);
  ck_assert_uint_eq(up.hard_state.vote, 1);
  for (int i = 0; i < 50; i++) {
    tick(c, &up);
  }
  ck_assert_int_eq(core_role(c), CORE_CANDIDATE);
  ck_assert_uint_eq(core_term(c), term);
  persisted(c, 2, term, &up);
  ck_assert_int_eq(core_role(c), CORE_LEADER);
  ck_assert(up.soft_state_changed);
  ck_assert_uint_eq(up.entries_n, 0); /* no second noop */
  ck_assert_uint_eq(core_commit_index(c), 2);
  core_free(c);
}
END_TEST

/* A single voter commits its own entries once they are durable, and each
 * committed entry is handed out exactly once. */
START_TEST(own_entries_count_only_after_persisted) {
  struct core_update up;
  struct core *c = single_leader(&up);
  ck_assert_uint_eq(up.committed_n, 2);
  propose(c, "x", &up);
  ck_assert_uint_eq(up.proposed_first, 3);
  ck_assert_uint_eq(up.proposed_last, 3);
  ck_assert_uint_eq(up.entries_n, 1);
  ck_assert_uint_eq(core_commit_index(c), 2);
  persisted(c, 3, core_term(c), &up);
  ck_assert_uint_eq(core_commit_index(c), 3);
  ck_assert_uint_eq(up.committed_n, 1);
  ck_assert_uint_eq(up.committed[0].len, 1);
  ck_assert_mem_eq(up.committed[0].data, "x", 1);
  tick(c, &up);
  ck_assert_uint_eq(up.committed_n, 0);
  core_free(c);
}
END_TEST
/* A commit is told to every follower at once, in an empty append, when
 * there are no entries to carry it: a follower serving subscribers or
 * stale reads would otherwise learn it a heartbeat later. Here the leader's
 * own write is the last one the commit waited for (followers were faster). */
START_TEST(commit_is_told_to_followers_at_once) {
  struct core_update up;
  struct core *c = new_leader(3, &up);
  for (uint64_t f = 2; f <= 3; f++) {
    struct core_msg r = append_reply(f, 2, 2); /* the noop: replicating */
    ck_assert_int_eq(recv(c, &r, &up), 0);
  }
  ck_assert_uint_eq(core_commit_index(c), 2);
  propose(c, "a", &up); /* 3, sent to both */
  struct core_msg r = append_reply(2, 2, 3);
  ck_assert_int_eq(recv(c, &r, &up), 0);
  ck_assert_uint_eq(up.msgs_n, 0);
  ck_assert_uint_eq(core_commit_index(c), 2); /* our own write is pending */
  persisted(c, 3, 2, &up);
  ck_assert_uint_eq(core_commit_index(c), 3);
  for (uint64_t f = 2; f <= 3; f++) {
    ck_assert_uint_eq(count_msgs(&up, CORE_MSG_APPEND, f), 1);
    const struct core_msg *a = find_msg(&up, CORE_MSG_APPEND, f);
    ck_assert_uint_eq(a->append.commit, 3);
    ck_assert_uint_eq(a->append.prev_index, 3);
    ck_assert_uint_eq(a->append.entries_n, 0);
  }
  /* Their answers change nothing and send nothing more (3 still has 3 in
   * flight: the empty append follows it on the one connection). */
  for (uint64_t f = 2; f <= 3; f++) {
    r = append_reply(f, 2, 3);
    ck_assert_int_eq(recv(c, &r, &up), 0);
    ck_assert_uint_eq(up.msgs_n, 0);
  }
  core_free(c);
}
END_TEST

/* A probe whose append or reply was lost is resent when a heartbeat reply
 * shows the follower is there: no permanent stall after a loss. */
START_TEST(lost_append_resent_after_heartbeat_reply) {
  struct core_update up;
  struct core *c = new_leader(3, &up);
  tick(c, &up);
  ck_assert_ptr_nonnull(find_msg(&up, CORE_MSG_HEARTBEAT, 2));
  ck_assert_uint_eq(count_msgs(&up, CORE_MSG_APPEND, 2), 0); /* paused */
  struct core_msg hr = msg(CORE_MSG_HEARTBEAT_REPLY, 2, 1, 2);
  ck_assert_int_eq(recv(c, &hr, &up), 0);
  const struct core_msg *a = find_msg(&up, CORE_MSG_APPEND, 2);
  ck_assert_ptr_nonnull(a);
  ck_assert_uint_eq(a->append.prev_index, 1);
  ck_assert_uint_eq(a->append.entries_n, 1);
  core_free(c);
}
END_TEST

/* In replicate state appends are pipelined up to inflight_appends_max;
 * each acknowledgement makes room for one more. */
START_TEST(pipelining_respects_inflight_cap) {
  struct core_options o = test_opts(1);
  o.disable_pre_vote = true;
  o.inflight_appends_max = 2;
  o.append_entries_max = 1;
  struct core *c = new_core_opts(&o, 3);
  struct core_update up;
  tick_until(c, CORE_MSG_VOTE, &up);
  struct core_msg v = vote_reply(2, 1, 2, true);
  ck_assert_int_eq(recv(c, &v, &up), 0);
  struct core_msg r = append_reply(2, 2, 2);
  ck_assert_int_eq(recv(c, &r, &up), 0); /* probe -> replicate */
  struct core_entry e[5];
  for (int i = 0; i < 5; i++) {
    e[i] = ent(0, 0);
  }
  struct core_event ev = {.type = CORE_EVENT_PROPOSE};
  ev.propose.entries = e;
  ev.propose.entries_n = 5;
  ck_assert_int_eq(step(c, &ev, &up), 0);
  ck_assert_uint_eq(count_msgs(&up, CORE_MSG_APPEND, 2), 2);
  ck_assert_uint_eq(find_msg(&up, CORE_MSG_APPEND, 2)->append.prev_index, 2);
  r = append_reply(2, 2, 3);
  ck_assert_int_eq(recv(c, &r, &up), 0);
  const struct core_msg *a = find_msg(&up, CORE_MSG_APPEND, 2);
  ck_assert_uint_eq(count_msgs(&up, CORE_MSG_APPEND, 2), 1);
  ck_assert_uint_eq(a->append.prev_index, 4);
  ck_assert_uint_eq(core_match_index(c, 2), 3);
  core_free(c);
}
END_TEST

/* -------------------------------------------------------------- reads */

static void read_index(struct core *c, uint64_t ctx, struct core_update *up,
                       int expect) {
  struct core_event ev = {.type = CORE_EVENT_READ_INDEX};
  ev.read_ctx = ctx;
  ck_assert_int_eq(step(c, &ev, up), expect);
}

/* Thesis 6.4: the read waits for the leader's first commit in its term,
 * then for a heartbeat round acknowledged by a quorum; reads that arrive
 * meanwhile share the next round. */
START_TEST(read_index_waits_for_heartbeat_round) {
  struct core_update up;
  struct core *c = new_leader(3, &up);
  read_index(c, 7, &up, 0);
  ck_assert_uint_eq(up.reads_n, 0);
  ck_assert_uint_eq(count_msgs(&up, CORE_MSG_HEARTBEAT, 0), 0);
  struct core_msg r = append_reply(2, 2, 2);
  ck_assert_int_eq(recv(c, &r, &up), 0); /* commits the noop */
  ck_assert_uint_eq(core_commit_index(c), 2);
  ck_assert_uint_eq(up.reads_n, 0);
  const struct core_msg *hb = find_msg(&up, CORE_MSG_HEARTBEAT, 3);
  ck_assert_ptr_nonnull(hb);
  uint64_t round = hb->heartbeat.read_ctx;
  ck_assert_uint_ne(round, 0);
  read_index(c, 8, &up, 0); /* waits for the next round */
  struct core_msg hr = msg(CORE_MSG_HEARTBEAT_REPLY, 3, 1, 2);
  hr.heartbeat_reply.read_ctx = round;
  ck_assert_int_eq(recv(c, &hr, &up), 0);
  ck_assert_uint_eq(up.reads_n, 1);
  ck_assert_uint_eq(up.reads[0].ctx, 7);
  ck_assert_uint_eq(up.reads[0].index, 2);
  ck_assert_int_eq(up.reads[0].error, 0);
  hb = find_msg(&up, CORE_MSG_HEARTBEAT, 2);
  ck_assert(hb != NULL && hb->heartbeat.read_ctx == round + 1);
  hr.heartbeat_reply.read_ctx = round + 1;
  ck_assert_int_eq(recv(c, &hr, &up), 0);
  ck_assert_uint_eq(up.reads_n, 1);
  ck_assert_uint_eq(up.reads[0].ctx, 8);
  core_free(c);
}
END_TEST

/* Reads waiting when leadership is lost fail with SYNOD_ENOTLEADER. */
START_TEST(read_index_fails_on_step_down) {
  struct core_update up;
  struct core *c = new_leader(3, &up);
  read_index(c, 7, &up, 0);
  struct core_msg m = msg(CORE_MSG_HEARTBEAT, 3, 1, 9);
  ck_assert_int_eq(recv(c, &m, &up), 0);
  ck_assert_uint_eq(up.reads_n, 1);
  ck_assert_uint_eq(up.reads[0].ctx, 7);
  ck_assert_int_eq(up.reads[0].error, SYNOD_ENOTLEADER);
  read_index(c, 8, &up, SYNOD_ENOTLEADER);
  read_index(c, 0, &up, SYNOD_EINVAL);
  core_free(c);
}
END_TEST

/* A single voter is its own quorum: the read is answered at once. */
START_TEST(single_voter_read_answered_at_once) {
  struct core_update up;
  struct core *c = single_leader(&up);
  read_index(c, 5, &up, 0);
  ck_assert_uint_eq(up.reads_n, 1);
  ck_assert_uint_eq(up.reads[0].index, 2);
  core_free(c);
}
END_TEST

/* ---------------------------------------------------- quorum, transfer */

/* Thesis 6.2: a leader that hears from no quorum for an election timeout
 * steps down; one that does stays. */
START_TEST(check_quorum_steps_down_without_acks) {
  struct core_update up;
  struct core *c = new_leader(3, &up);
  struct core_msg hr = msg(CORE_MSG_HEARTBEAT_REPLY, 2, 1, 2);
  for (int i = 0; i < 50; i++) {
    tick(c, &up);
    ck_assert_int_eq(recv(c, &hr, &up), 0);
  }
  ck_assert_int_eq(core_role(c), CORE_LEADER);
  for (int i = 0; i < 21 && core_role(c) == CORE_LEADER; i++) {
    tick(c, &up);
  }
  ck_assert_int_eq(core_role(c), CORE_FOLLOWER);
  ck_assert_uint_eq(core_term(c), 2);
  ck_assert_uint_eq(core_leader(c), 0);
  core_free(c);
}
END_TEST

/* Thesis 3.10: proposals stop, the target is brought up to date, then it
 * gets TIMEOUT_NOW; it campaigns at once, past leader stickiness. */
START_TEST(transfer_sends_timeout_now_when_target_matches) {
  struct core_update up;
  struct core *c = new_leader(3, &up);
  struct core_event ev = {.type = CORE_EVENT_TRANSFER};
  ev.id = 2;
  ck_assert_int_eq(step(c, &ev, &up), 0);
  ck_assert_ptr_null(find_msg(&up, CORE_MSG_TIMEOUT_NOW, 2));
  struct core_entry e = ent(0, 0);
  struct core_event pe = {.type = CORE_EVENT_PROPOSE};
  pe.propose.entries = &e;
  pe.propose.entries_n = 1;
  ck_assert_int_eq(step(c, &pe, &up), SYNOD_EBUSY);
  struct core_msg r = append_reply(2, 2, 2);
  ck_assert_int_eq(recv(c, &r, &up), 0);
  const struct core_msg *t = find_msg(&up, CORE_MSG_TIMEOUT_NOW, 2);
  ck_assert_ptr_nonnull(t);
  ck_assert_uint_eq(t->term, 2);

  struct core *f = new_core(2, 3);
  struct core_entry noop = ent(2, 2);
  noop.type = CORE_ENTRY_NOOP;
  struct core_msg a = append_msg(1, 2, 2, 1, 1, &noop, 1, 1);
  ck_assert_int_eq(recv(f, &a, &up), 0);
  ck_assert_int_eq(recv(f, t, &up), 0);
  ck_assert_int_eq(core_role(f), CORE_CANDIDATE);
  const struct core_msg *v = find_msg(&up, CORE_MSG_VOTE, 1);
  ck_assert(v != NULL && v->vote.transfer && v->term == 3);
  struct core_msg vote = *v;
  ck_assert_int_eq(recv(c, &vote, &up), 0); /* the old leader grants */
  ck_assert_int_eq(core_role(c), CORE_FOLLOWER);
  ck_assert(find_msg(&up, CORE_MSG_VOTE_REPLY, 2)->vote_reply.granted);
  core_free(f);
  core_free(c);
}
END_TEST

/* A transfer that does not finish within an election timeout is dropped
 * and proposals are taken again. */
START_TEST(transfer_aborted_after_election_timeout) {
  struct core_update up;
  struct core *c = new_leader(3, &up);
  struct core_event ev = {.type = CORE_EVENT_TRANSFER};
  ev.id = 3;
  ck_assert_int_eq(step(c, &ev, &up), 0);
  struct core_msg hr = msg(CORE_MSG_HEARTBEAT_REPLY, 2, 1, 2);
  for (int i = 0; i < 10; i++) {
    tick(c, &up);
    ck_assert_int_eq(recv(c, &hr, &up), 0);
  }
  ck_assert_int_eq(core_role(c), CORE_LEADER);
  propose(c, "y", &up);
  ev.id = 9;
  ck_assert_int_eq(step(c, &ev, &up), SYNOD_EINVAL);
  core_free(c);
}
END_TEST

/* ---------------------------------------------------------- malformed */

/* Never assert on what a peer sends: a bad message is refused with
 * SYNOD_EMALFORMED and changes nothing. */
START_TEST(malformed_messages_rejected_without_change) {
  struct core_options o = test_opts(2);
  const uint64_t terms[] = {1, 2, 2};
  struct core *c = new_core_log(&o, 3, terms, 3, 2, 2);
  struct core_update up;
  struct core_msg bad[9];
  bad[0] = msg((enum core_msg_type)99, 1, 2, 3);
  bad[1] = msg(CORE_MSG_HEARTBEAT, 2, 2, 3); /* from ourselves */
  bad[2] = msg(CORE_MSG_HEARTBEAT, 1, 3, 3); /* not for us */
  bad[3] = msg(CORE_MSG_HEARTBEAT, 1, 2, 0); /* term 0 */
  struct core_entry gap[2] = {ent(4, 3), ent(6, 3)};
  bad[4] = append_msg(1, 2, 3, 3, 2, gap, 2, 0);
  static const uint8_t junk[3] = {9, 9, 9};
  struct core_entry cfg = ent(4, 3);
  cfg.type = CORE_ENTRY_CONFIG;
  cfg.data = junk;
  cfg.len = sizeof junk;
  bad[5] = append_msg(1, 2, 3, 3, 2, &cfg, 1, 0);
  struct core_entry below = ent(2, 3); /* conflicts with committed 2/2 */
  bad[6] = append_msg(1, 2, 3, 1, 1, &below, 1, 0);
  bad[7] = msg(CORE_MSG_SNAPSHOT, 1, 2, 3);
  bad[7].snapshot.meta.index = 5;
  bad[7].snapshot.meta.term = 2;
  bad[7].snapshot.meta.size_bytes = 10;
  bad[7].snapshot.meta.config = test_config(3);
  bad[7].snapshot.offset = 8;
  bad[7].snapshot.len = 5; /* beyond the image */
  bad[7].snapshot.data = junk;
  bad[8] = vote_req(CORE_MSG_VOTE, 1, 2, 3, 4, 7); /* last term > term */
  for (int i = 0; i < 9; i++) {
    memset(&up, 0xab, sizeof up);
    ck_assert_int_eq(recv(c, &bad[i], &up), SYNOD_EMALFORMED);
    ck_assert_uint_eq(up.msgs_n, 0);
    ck_assert(!up.hard_state_changed);
    ck_assert_uint_eq(core_term(c), 2);
    ck_assert_uint_eq(core_last_index(c), 3);
    ck_assert_str_ne(core_errmsg(c), "");
  }
  /* The core still works. */
  struct core_entry ok = ent(4, 3);
  struct core_msg m = append_msg(1, 2, 3, 3, 2, &ok, 1, 0);
  ck_assert_int_eq(recv(c, &m, &up), 0);
  ck_assert_uint_eq(core_last_index(c), 4);
  ck_assert_str_eq(core_errmsg(c), "");
  core_free(c);
}
END_TEST

/* PERSISTED beyond what was handed out is the shell's bug: SYNOD_EINVAL. */
START_TEST(persisted_beyond_handed_out_is_einval) {
  struct core *c = new_core(1, 3);
  struct core_update up;
  struct core_event ev = {.type = CORE_EVENT_PERSISTED};
  ev.persisted.index = 5;
  ev.persisted.term = 1;
  ck_assert_int_eq(step(c, &ev, &up), SYNOD_EINVAL);
  ev.persisted.index = 1;
  ck_assert_int_eq(step(c, &ev, &up), 0);
  core_free(c);
}
END_TEST

/* --------------------------------------------------------- membership */

/* The encoding round-trips, and garbage decodes to SYNOD_EMALFORMED. */
START_TEST(config_encode_decode_round_trip_and_garbage_rejected) {
  struct core_config cfg = test_config(3);
  cfg.learners_n = 2;
  cfg.learners[0] = 7;
  cfg.learners[1] = 1ULL << 40;
  uint8_t buf[CORE_CONFIG_ENCODED_MAX];
  size_t len = core_config_encode(&cfg, buf);
  ck_assert_uint_eq(len, 8 + 5 * 8);
  struct core_config back;
  ck_assert_int_eq(core_config_decode(buf, len, &back), 0);
  ck_assert_mem_eq(&back, &cfg, sizeof cfg);

  ck_assert_int_eq(core_config_decode(buf, len - 1, &back), SYNOD_EMALFORMED);
  ck_assert_int_eq(core_config_decode(buf, 3, &back), SYNOD_EMALFORMED);
  uint8_t b2[CORE_CONFIG_ENCODED_MAX];
  memcpy(b2, buf, len);
  b2[0] = 2; /* unknown version */
  ck_assert_int_eq(core_config_decode(b2, len, &back), SYNOD_EMALFORMED);
  memcpy(b2, buf, len);
  b2[8] = 3; /* voters 3, 2, 3: not sorted */
  ck_assert_int_eq(core_config_decode(b2, len, &back), SYNOD_EMALFORMED);
  memcpy(b2, buf, len);
  memcpy(b2 + 8 + 3 * 8, b2 + 8, 8); /* learner 1 is also a voter */
  ck_assert_int_eq(core_config_decode(b2, len, &back), SYNOD_EMALFORMED);
  memcpy(b2, buf, len);
  b2[5] = 1; /* reserved byte */
  ck_assert_int_eq(core_config_decode(b2, len, &back), SYNOD_EMALFORMED);
  struct core_config none;
  memset(&none, 0, sizeof none);
  len = core_config_encode(&none, buf); /* no voters */
  ck_assert_int_eq(core_config_decode(buf, len, &back), SYNOD_EMALFORMED);
  ck_assert_int_eq(core_config_decode(NULL, 0, &back), SYNOD_EMALFORMED);
}
END_TEST

static int member_event(struct core *c, enum core_event_type type, uint64_t id,
                        struct core_update *up) {
  struct core_event ev = {.type = type};
  ev.id = id;
  return step(c, &ev, up);
}

/* Thesis 4.2.1 and 4.1: a new member joins as a learner (the config takes
 * effect once appended), one change at a time, and is promoted to voter
 * once it has caught up. */
START_TEST(learner_added_then_promoted_when_caught_up) {
  struct core_update up;
  struct core *c = single_leader(&up);
  ck_assert_int_eq(member_event(c, CORE_EVENT_ADD_MEMBER, 2, &up), 0);
  ck_assert(up.config_changed);
  ck_assert_uint_eq(up.config.learners_n, 1);
  ck_assert_uint_eq(up.config.learners[0], 2);
  ck_assert_uint_eq(up.proposed_first, 3);
  ck_assert_uint_eq(up.entries_n, 1);
  ck_assert_uint_eq(up.entries[0].type, CORE_ENTRY_CONFIG);
  ck_assert_ptr_nonnull(find_msg(&up, CORE_MSG_APPEND, 2));
  ck_assert_int_eq(member_event(c, CORE_EVENT_ADD_MEMBER, 3, &up),
                   SYNOD_ECONFIG);
  persisted(c, 3, core_term(c), &up);
  ck_assert_uint_eq(core_commit_index(c), 3);
  ck_assert_int_eq(member_event(c, CORE_EVENT_ADD_MEMBER, 2, &up),
                   SYNOD_ECONFIG);
  struct core_msg r = append_reply(2, core_term(c), 3);
  ck_assert_int_eq(recv(c, &r, &up), 0);
  ck_assert(up.config_changed);
  ck_assert_uint_eq(up.config.voters_n, 2);
  ck_assert_uint_eq(up.config.voters[1], 2);
  ck_assert_uint_eq(up.config.learners_n, 0);
  ck_assert_uint_eq(core_last_index(c), 4);
  core_free(c);
}
END_TEST

/* Thesis 4.2.2: a leader removed from the configuration manages the
 * cluster, not counting itself, until the change commits; then steps
 * down. The last voter cannot be removed. */
START_TEST(removed_leader_steps_down_after_commit) {
  struct core_update up;
  struct core *c = new_leader(3, &up);
  struct core_msg r = append_reply(2, 2, 2);
  ck_assert_int_eq(recv(c, &r, &up), 0);
  ck_assert_int_eq(member_event(c, CORE_EVENT_REMOVE_MEMBER, 1, &up), 0);
  ck_assert_uint_eq(core_config(c)->voters_n, 2);
  persisted(c, 3, 2, &up);
  r = append_reply(2, 2, 3);
  ck_assert_int_eq(recv(c, &r, &up), 0);
  ck_assert_uint_eq(core_commit_index(c), 2); /* 1 does not count */
  ck_assert_int_eq(core_role(c), CORE_LEADER);
  r = append_reply(3, 2, 3);
  ck_assert_int_eq(recv(c, &r, &up), 0);
  ck_assert_uint_eq(core_commit_index(c), 3);
  ck_assert_int_eq(core_role(c), CORE_FOLLOWER);
  for (int i = 0; i < 50; i++) { /* and never campaigns */
    tick(c, &up);
    ck_assert_uint_eq(up.msgs_n, 0);
  }
  core_free(c);

  struct core *s = single_leader(&up);
  ck_assert_int_eq(member_event(s, CORE_EVENT_REMOVE_MEMBER, 1, &up),
                   SYNOD_ECONFIG);
  ck_assert_int_eq(member_event(s, CORE_EVENT_REMOVE_MEMBER, 5, &up),
                   SYNOD_ECONFIG);
  core_free(s);
}
END_TEST

/* Ongaro's errata to single-server changes: no membership change before
 * the leader committed an entry of its own term. */
START_TEST(membership_change_refused_before_term_commit) {
  struct core_update up;
  struct core *c = new_leader(3, &up);
  ck_assert_int_eq(member_event(c, CORE_EVENT_ADD_MEMBER, 4, &up),
                   SYNOD_ECONFIG);
  ck_assert_uint_eq(core_last_index(c), 2);
  struct core_msg r = append_reply(2, 2, 2);
  ck_assert_int_eq(recv(c, &r, &up), 0);
  ck_assert_int_eq(member_event(c, CORE_EVENT_ADD_MEMBER, 4, &up), 0);
  ck_assert_uint_eq(core_last_index(c), 3);
  struct core *f = new_core(2, 3);
  ck_assert_int_eq(member_event(f, CORE_EVENT_ADD_MEMBER, 4, &up),
                   SYNOD_ENOTLEADER);
  core_free(f);
  core_free(c);
}
END_TEST

/* A configuration whose entry is truncated no longer applies. */
START_TEST(truncated_config_entry_reverts_config) {
  struct core *c = new_core(2, 3);
  struct core_update up;
  struct core_config cfg = test_config(3);
  cfg.learners_n = 1;
  cfg.learners[0] = 4;
  uint8_t buf[CORE_CONFIG_ENCODED_MAX];
  struct core_entry e = ent(2, 2);
  e.type = CORE_ENTRY_CONFIG;
  e.data = buf;
  e.len = core_config_encode(&cfg, buf);
  struct core_msg m = append_msg(1, 2, 2, 1, 1, &e, 1, 1);
  ck_assert_int_eq(recv(c, &m, &up), 0);
  ck_assert(up.config_changed);
  ck_assert_uint_eq(core_config(c)->learners_n, 1);
  struct core_entry e3 = ent(2, 3);
  m = append_msg(3, 2, 3, 1, 1, &e3, 1, 1);
  ck_assert_int_eq(recv(c, &m, &up), 0);
  ck_assert_uint_eq(up.truncate_from, 2);
  ck_assert(up.config_changed);
  ck_assert_uint_eq(core_config(c)->learners_n, 0);
  core_free(c);
}
END_TEST

/* ---------------------------------------------------------- snapshots */

static void snapshot_taken(struct core *c, uint64_t index, uint64_t term,
                           uint64_t size, struct core_update *up, int expect) {
  struct core_event ev = {.type = CORE_EVENT_SNAPSHOT_TAKEN};
  ev.snapshot.index = index;
  ev.snapshot.term = term;
  ev.snapshot.size_bytes = size;
  ck_assert_int_eq(step(c, &ev, up), expect);
}

/* With a spread, each snapshot falls due between snapshot_entries and half
 * as many again after the last one, at a distance that changes from one
 * snapshot to the next (and from one replica to another: the id is in the
 * draw). Without one, exactly at snapshot_entries. */
static void snapshot_gaps(uint32_t spread_percent, uint64_t gaps[12]) {
  struct core_options o = test_opts(1);
  o.disable_pre_vote = true;
  o.snapshot_entries = 8;
  o.snapshot_spread_percent = spread_percent;
  o.snapshot_keep_entries = 2;
  struct core_update up;
  struct core *c = new_leader_opts(&o, 3, &up);
  uint64_t since = 0;
  int n = 0;
  for (uint64_t index = 3; n < 12 && index < 400; index++) {
    propose(c, "e", &up);
    persisted(c, index, 2, &up);
    struct core_msg r = append_reply(2, 2, index);
    ck_assert_int_eq(recv(c, &r, &up), 0);
    ck_assert_uint_eq(core_commit_index(c), index);
    if (up.snapshot_wanted) {
      gaps[n++] = index - since;
      snapshot_taken(c, index, 2, 1, &up, 0); /* smaller than the log */
      since = index;
    }
  }
  ck_assert_int_eq(n, 12);
  core_free(c);
}

START_TEST(snapshot_due_points_spread_from_one_snapshot_to_the_next) {
  uint64_t gaps[12];
  bool differ = false;
  snapshot_gaps(0, gaps);
  for (int i = 1; i < 12; i++) {
    ck_assert_uint_eq(gaps[i], 8);
  }
  snapshot_gaps(50, gaps);
  for (int i = 1; i < 12; i++) {
    ck_assert_uint_ge(gaps[i], 8);
    ck_assert_uint_le(gaps[i], 12);
    differ = differ || gaps[i] != gaps[1];
  }
  ck_assert_msg(differ, "every snapshot came after %llu entries",
                (unsigned long long)gaps[1]);
}
END_TEST

/* A snapshot falls due after snapshot_entries only once the log since the
 * last one outweighs that one's image: 8 entries of 1 byte after an image
 * of 100 bytes are not worth rewriting it for; 100 bytes of entries are. */
START_TEST(snapshot_waits_for_the_log_to_outweigh_the_last_image) {
  struct core_options o = test_opts(1);
  o.disable_pre_vote = true;
  o.snapshot_entries = 8;
  o.snapshot_keep_entries = 2;
  struct core_update up;
  struct core *c = new_leader_opts(&o, 3, &up);
  uint64_t taken[3] = {0};
  int n = 0;
  for (uint64_t index = 3; n < 3 && index < 1000; index++) {
    propose(c, "e", &up);
    persisted(c, index, 2, &up);
    struct core_msg r = append_reply(2, 2, index);
    ck_assert_int_eq(recv(c, &r, &up), 0);
    if (up.snapshot_wanted) {
      taken[n++] = index;
      snapshot_taken(c, index, 2, n == 1 ? 100 : 4, &up, 0);
    }
  }
  ck_assert_int_eq(n, 3);
  ck_assert_uint_le(taken[0], 10); /* no image before: the entry count */
  /* After the 100-byte image: 100 one-byte entries, not 8. */
  ck_assert_uint_ge(taken[1] - taken[0], 100);
  ck_assert_uint_le(taken[1] - taken[0], 101);
  /* After a 4-byte image: the entry count again. */
  ck_assert_uint_eq(taken[2] - taken[1], 8);
  core_free(c);
}
END_TEST

/* The log-outweighs-the-image condition is spread as well: with an image
 * of 100 bytes every time and 1-byte entries, successive snapshots come
 * 100 to 150 entries apart, not always at one distance (the image is the
 * same size on every replica, so unspread this put them all at one
 * index, 142943 on three replicas in the group bench). */
START_TEST(snapshot_outweigh_point_spreads_too) {
  struct core_options o = test_opts(1);
  o.disable_pre_vote = true;
  o.snapshot_entries = 8;
  o.snapshot_spread_percent = 50;
  o.snapshot_keep_entries = 2;
  struct core_update up;
  struct core *c = new_leader_opts(&o, 3, &up);
  uint64_t gaps[8], since = 0;
  int n = 0;
  bool differ = false;
  for (uint64_t index = 3; n < 8 && index < 5000; index++) {
    propose(c, "e", &up);
    persisted(c, index, 2, &up);
    struct core_msg r = append_reply(2, 2, index);
    ck_assert_int_eq(recv(c, &r, &up), 0);
    if (up.snapshot_wanted) {
      if (since != 0) {
        gaps[n++] = index - since;
      }
      snapshot_taken(c, index, 2, 100, &up, 0);
      since = index;
    }
  }
  ck_assert_int_eq(n, 8);
  for (int i = 0; i < 8; i++) {
    ck_assert_uint_ge(gaps[i], 100);
    ck_assert_uint_le(gaps[i], 151);
    differ = differ || gaps[i] != gaps[0];
  }
  ck_assert_msg(differ, "every snapshot came %llu entries after the last",
                (unsigned long long)gaps[0]);
  core_free(c);
}
END_TEST

/* The byte threshold (a quarter of log_bytes_max) is spread like the entry
 * count: with a spread, successive snapshots of 100-byte entries fall
 * between 10,000 and 15,000 bytes apart and not always at one distance;
 * without, exactly at 10,000. */
static void snapshot_byte_gaps(uint32_t spread_percent, uint64_t gaps[8]) {
  struct core_options o = test_opts(1);
  o.disable_pre_vote = true;
  o.snapshot_entries = 1000000; /* only the bytes make one due */
  o.snapshot_spread_percent = spread_percent;
  o.snapshot_keep_entries = 2;
  o.log_bytes_max = 40000;
  struct core_update up;
  struct core *c = new_leader_opts(&o, 3, &up);
  char e[101];
  memset(e, 'b', 100);
  e[100] = '\0';
  uint64_t since = 0;
  int n = 0;
  for (uint64_t index = 3; n < 8 && index < 2000; index++) {
    propose(c, e, &up);
    persisted(c, index, 2, &up);
    struct core_msg r = append_reply(2, 2, index);
    ck_assert_int_eq(recv(c, &r, &up), 0);
    if (up.snapshot_wanted) {
      if (since != 0) {
        gaps[n++] = (index - since) * 100;
      }
      snapshot_taken(c, index, 2, 1, &up, 0);
      since = index;
    }
  }
  ck_assert_int_eq(n, 8);
  core_free(c);
}

START_TEST(snapshot_byte_threshold_spreads_like_the_entry_count) {
  uint64_t gaps[8];
  bool differ = false;
  snapshot_byte_gaps(0, gaps);
  for (int i = 0; i < 8; i++) {
    ck_assert_uint_eq(gaps[i], 10000);
  }
  snapshot_byte_gaps(50, gaps);
  for (int i = 0; i < 8; i++) {
    ck_assert_uint_ge(gaps[i], 10000);
    ck_assert_uint_le(gaps[i], 15100);
    differ = differ || gaps[i] != gaps[0];
  }
  ck_assert_msg(differ, "every snapshot came %llu bytes after the last",
                (unsigned long long)gaps[0]);
}
END_TEST

/* §7: a snapshot compacts the log (keeping snapshot_keep_entries behind
 * it); a follower that needs a compacted entry gets the snapshot in chunks
 * (data left to the shell), a bounded number at a time, with the
 * configuration as of its index; once it has it all, appends resume. */
/* Follower `from` answers an append in term 2: it knows only the
 * bootstrap entry. */
static void bootstrap_only_reply(struct core *c, uint64_t from,
                                 struct core_update *up) {
  struct core_msg r = msg(CORE_MSG_APPEND_REPLY, from, 1, 2);
  r.append_reply.reject = true;
  r.append_reply.index = 1;
  r.append_reply.hint_index = 1;
  r.append_reply.hint_term = 1;
  ck_assert_int_eq(recv(c, &r, up), 0);
}

START_TEST(snapshot_compacts_log_and_lagging_follower_gets_chunks) {
  struct core_options o = test_opts(1);
  o.disable_pre_vote = true;
  o.snapshot_keep_entries = 2;
  o.snapshot_chunk_bytes = 100;
  o.snapshot_entries = 8;
  struct core *c = new_core_opts(&o, 3);
  struct core_update up;
  tick_until(c, CORE_MSG_VOTE, &up);
  struct core_msg v = vote_reply(2, 1, 2, true);
  ck_assert_int_eq(recv(c, &v, &up), 0);
  bool wanted = false;
  for (int i = 0; i < 8; i++) {
    propose(c, "e", &up); /* indexes 3..10 */
  }
  persisted(c, 10, 2, &up);
  struct core_msg r = append_reply(2, 2, 10);
  ck_assert_int_eq(recv(c, &r, &up), 0);
  ck_assert_uint_eq(core_commit_index(c), 10);
  wanted = up.snapshot_wanted;
  ck_assert(wanted);
  snapshot_taken(c, 12, 2, 250, &up, SYNOD_EINVAL); /* not applied */
  snapshot_taken(c, 10, 1, 250, &up, SYNOD_EINVAL); /* wrong term */
  snapshot_taken(c, 10, 2, 250, &up, 0);
  ck_assert_uint_eq(core_first_index(c), 9);

  bootstrap_only_reply(c, 3, &up);
  ck_assert_uint_eq(count_msgs(&up, CORE_MSG_SNAPSHOT, 3), 3);
  const struct core_msg *s = find_msg(&up, CORE_MSG_SNAPSHOT, 3);
  ck_assert_uint_eq(s->snapshot.meta.index, 10);
  ck_assert_uint_eq(s->snapshot.meta.term, 2);
  ck_assert_uint_eq(s->snapshot.meta.config.voters_n, 3);
  ck_assert_uint_eq(s->snapshot.offset, 0);
  ck_assert_uint_eq(s->snapshot.len, 100);
  ck_assert_ptr_null(s->snapshot.data);
  ck_assert(up.msgs[up.msgs_n - 1].snapshot.last);
  ck_assert_uint_eq(up.msgs[up.msgs_n - 1].snapshot.offset, 200);
  ck_assert_uint_eq(up.msgs[up.msgs_n - 1].snapshot.len, 50);

  r = msg(CORE_MSG_SNAPSHOT_REPLY, 3, 1, 2);
  r.snapshot_reply.index = 10;
  r.snapshot_reply.offset = 250;
  ck_assert_int_eq(recv(c, &r, &up), 0);
  ck_assert_uint_eq(core_match_index(c, 3), 10);
  const struct core_msg *a = find_msg(&up, CORE_MSG_APPEND, 3);
  ck_assert(a != NULL && a->append.prev_index == 10);
  core_free(c);
}
END_TEST

/* Proposals stop while the in-memory log is over log_bytes_max, and only
 * a snapshot frees it: the core must ask for one before that, also while
 * a snapshot streams to a follower (whose hold-off used to outlast the
 * cap: the bench wedged a leader that way), and a snapshot must not keep
 * more than snapshot_keep_bytes (1,024 large entries kept held the log
 * over the cap for good). 100 entries of 500 bytes through a 10,000-byte
 * log, follower 3 streaming a snapshot it never finishes. */
START_TEST(large_entries_never_wedge_proposals) {
  struct core_options o = test_opts(1);
  o.disable_pre_vote = true;
  o.log_bytes_max = 10000;
  struct core *c = new_core_opts(&o, 3);
  struct core_update up;
  tick_until(c, CORE_MSG_VOTE, &up);
  struct core_msg v = vote_reply(2, 1, 2, true);
  ck_assert_int_eq(recv(c, &v, &up), 0);
  char big[501];
  memset(big, 'x', 500);
  big[500] = '\0';
  uint64_t last = 2, snapshots = 0;
  bool streaming = false;
  for (int i = 0; i < 100; i++) {
    propose(c, big, &up); /* asserts it is accepted */
    last++;
    persisted(c, last, 2, &up);
    struct core_msg r = append_reply(2, 2, last);
    ck_assert_int_eq(recv(c, &r, &up), 0);
    ck_assert_uint_eq(core_commit_index(c), last);
    if (up.snapshot_wanted) {
      snapshot_taken(c, last, 2, 1000, &up, 0);
      snapshots++;
    }
    if (snapshots == 1 && !streaming) {
      bootstrap_only_reply(c, 3, &up); /* follower 3 gets the image */
      ck_assert_uint_gt(count_msgs(&up, CORE_MSG_SNAPSHOT, 3), 0);
      ck_assert(core_snapshot_streaming(c));
      streaming = true;
    }
  }
  ck_assert(streaming);
  /* One snapshot per quarter of the cap applied: 50,000 bytes / 2,500. */
  ck_assert_uint_ge(snapshots, 15);
  /* What a snapshot keeps is at most 625 bytes: one entry. */
  ck_assert_uint_ge(core_first_index(c), last - 1 - 5);
  core_free(c);
}
END_TEST

/* RELEASE: a leader keeps the data of only its newest entries once they
 * are applied and durable; an append to a follower that needs older ones
 * carries them with data NULL for the shell to fill from its store, and
 * entries not applied or not durable keep their data whatever RELEASE
 * says. */
START_TEST(released_entries_are_sent_without_data) {
  struct core_options o = test_opts(1);
  o.disable_pre_vote = true;
  o.held_bytes_min = 10;
  struct core_update up;
  struct core *c = new_leader_opts(&o, 3, &up);
  uint64_t last = 2;
  for (int i = 0; i < 6; i++) {
    propose(c, "12345", &up);
    last++;
    persisted(c, last, 2, &up);
    struct core_msg r = append_reply(2, 2, last);
    ck_assert_int_eq(recv(c, &r, &up), 0);
  }
  ck_assert_uint_eq(core_commit_index(c), 8);
  propose(c, "abcde", &up); /* 9: neither durable nor committed */
  struct core_event rel = {.type = CORE_EVENT_RELEASE, .release = 9};
  ck_assert_int_eq(step(c, &rel, &up), 0);
  bootstrap_only_reply(c, 3, &up);
  const struct core_msg *a = find_msg(&up, CORE_MSG_APPEND, 3);
  ck_assert_ptr_nonnull(a);
  ck_assert_uint_le(a->append.prev_index, 1);
  ck_assert_uint_eq(a->append.prev_index + a->append.entries_n, 9);
  /* 1 (the configuration, restored from the store) and 3..7 gave their
   * data back; 2 is the noop (no data); 8 and 9 are the newest 10 bytes,
   * and 9 is not applied anyway. */
  for (uint32_t i = 0; i < a->append.entries_n; i++) {
    const struct core_entry *e = &a->append.entries[i];
    ck_assert_uint_eq(e->index, a->append.prev_index + 1 + i);
    if (e->index <= 2) {
      ck_assert_ptr_null(e->data);
      continue;
    }
    ck_assert_uint_eq(e->len, 5);
    if (e->index <= 7) {
      ck_assert_msg(e->data == NULL, "entry %d holds its data", (int)e->index);
    } else {
      ck_assert_msg(e->data != NULL, "entry %d lost its data", (int)e->index);
      ck_assert_int_eq(memcmp(e->data, e->index == 9 ? "abcde" : "12345", 5),
                       0);
    }
  }
  core_free(c);
}
END_TEST

/* The log's side of it: `durable` follows PERSISTED of entries it still
 * holds, RELEASE sets `readable` no higher than that, a truncation lowers
 * both, and release never passes `readable`: a RELEASE from before the
 * truncation (the store read the old suffix back) cannot drop data of
 * the new suffix, which the store may hold only in its write-ahead file,
 * even once PERSISTED says it is durable (a reviewer's interleaving). */
START_TEST(log_release_never_passes_readable) {
  struct core_log l;
  struct core_config cfg = test_config(3);
  core_log_init(&l, 0, 0, &cfg);
  for (int i = 0; i < 6; i++) {
    core_log_append(&l, 2, CORE_ENTRY_NORMAL, (const uint8_t *)"xy", 2);
  }
  ck_assert_uint_eq(l.held_bytes, 12);
  core_log_persisted(&l, 4, 1); /* another term: not this log's entry */
  ck_assert_uint_eq(l.durable, 0);
  core_log_readable(&l, 6);
  core_log_release(&l, 6, 0);
  ck_assert_uint_eq(l.released, 0); /* nothing durable yet */
  core_log_persisted(&l, 4, 2);
  ck_assert_uint_eq(l.durable, 4);
  core_log_readable(&l, 6);
  ck_assert_uint_eq(l.readable, 4);
  core_log_release(&l, 6, 1);
  ck_assert_uint_eq(l.released, 4);
  ck_assert_uint_eq(l.held_bytes, 4);
  ck_assert_uint_eq(l.bytes, 12);
  ck_assert_ptr_null(core_log_get(&l, 4)->data);
  ck_assert_ptr_nonnull(core_log_get(&l, 5)->data);
  core_log_persisted(&l, 6, 2);
  core_log_readable(&l, 6);
  core_log_truncate(&l, 6); /* a new leader's entry replaces 6 */
  ck_assert_uint_eq(l.durable, 5);
  ck_assert_uint_eq(l.readable, 5);
  core_log_append(&l, 3, CORE_ENTRY_NORMAL, (const uint8_t *)"zz", 2);
  core_log_persisted(&l, 6, 3); /* durable, in the write-ahead file only */
  core_log_release(&l, 6, 0);
  ck_assert_uint_eq(l.released, 5);
  ck_assert_ptr_nonnull(core_log_get(&l, 6)->data);
  core_log_readable(&l, 6); /* the store has it now */
  core_log_release(&l, 6, 0);
  ck_assert_uint_eq(l.released, 6);
  /* Compaction moves them all past what it drops. */
  core_log_compact(&l, 3);
  ck_assert_uint_eq(l.released, 6);
  ck_assert_uint_eq(l.held_bytes, 0);
  ck_assert_uint_eq(l.bytes, 6);
  core_log_close(&l);
}
END_TEST

static struct core_msg chunk(uint64_t offset, uint32_t len, const uint8_t *d) {
  struct core_msg m = msg(CORE_MSG_SNAPSHOT, 1, 2, 2);
  m.snapshot.meta.index = 10;
  m.snapshot.meta.term = 2;
  m.snapshot.meta.size_bytes = 250;
  m.snapshot.meta.config = test_config(3);
  m.snapshot.offset = offset;
  m.snapshot.len = len;
  m.snapshot.data = d;
  m.snapshot.last = offset + len == 250;
  return m;
}

/* Figure 13: chunks are stored in order (anything else is answered with
 * the offset wanted), the last one installs the snapshot, resets the log
 * and moves commit and applied to its index. */
START_TEST(follower_installs_snapshot_from_chunks) {
  struct core *c = new_core(2, 3);
  struct core_update up;
  static uint8_t data[250];
  struct core_msg m = chunk(100, 100, data);
  ck_assert_int_eq(recv(c, &m, &up), 0);
  const struct core_msg *r = find_msg(&up, CORE_MSG_SNAPSHOT_REPLY, 1);
  ck_assert(r != NULL && r->snapshot_reply.reject);
  ck_assert(!up.snapshot_chunk_present);
  m = chunk(0, 100, data);
  ck_assert_int_eq(recv(c, &m, &up), 0);
  ck_assert(up.snapshot_chunk_present);
  ck_assert_ptr_eq(up.snapshot_chunk.data, data);
  r = find_msg(&up, CORE_MSG_SNAPSHOT_REPLY, 1);
  ck_assert_uint_eq(r->snapshot_reply.offset, 100);
  m = chunk(200, 50, data + 200);
  ck_assert_int_eq(recv(c, &m, &up), 0);
  ck_assert(!up.snapshot_chunk_present);
  ck_assert_uint_eq(
      find_msg(&up, CORE_MSG_SNAPSHOT_REPLY, 1)->snapshot_reply.offset, 100);
  m = chunk(100, 100, data + 100);
  ck_assert_int_eq(recv(c, &m, &up), 0);
  ck_assert(!up.snapshot_install_present);
  m = chunk(200, 50, data + 200);
  ck_assert_int_eq(recv(c, &m, &up), 0);
  ck_assert(up.snapshot_chunk_present && up.snapshot_chunk.last);
  ck_assert(up.snapshot_install_present);
  ck_assert_uint_eq(up.snapshot_install.index, 10);
  ck_assert_uint_eq(up.committed_n, 0);
  ck_assert_uint_eq(up.hard_state.commit, 10);
  ck_assert_uint_eq(
      find_msg(&up, CORE_MSG_SNAPSHOT_REPLY, 1)->snapshot_reply.offset, 250);
  ck_assert_uint_eq(core_commit_index(c), 10);
  ck_assert_uint_eq(core_first_index(c), 11);
  ck_assert_uint_eq(core_last_index(c), 10);
  struct core_entry e = ent(11, 2);
  struct core_msg a = append_msg(1, 2, 2, 10, 2, &e, 1, 11);
  ck_assert_int_eq(recv(c, &a, &up), 0);
  ck_assert_uint_eq(up.committed_n, 1);
  ck_assert_uint_eq(up.committed[0].index, 11);
  core_free(c);
}
END_TEST

/* When a majority cannot keep up, the leader refuses new proposals once
 * the uncommitted backlog reaches its cap, and takes them again once the
 * followers catch up. */
START_TEST(propose_refused_while_backlog_is_full) {
  struct core_options o = test_opts(1);
  o.uncommitted_entries_max = 5;
  o.disable_pre_vote = true;
  struct core *c = new_core_opts(&o, 3);
  struct core_update up;
  tick_until(c, CORE_MSG_VOTE, &up);
  struct core_msg r = vote_reply(2, 1, 2, true);
  ck_assert_int_eq(recv(c, &r, &up), 0);
  persisted(c, 2, 2, &up); /* 1 (bootstrap) and 2 (noop): uncommitted */
  propose(c, "a", &up);
  propose(c, "b", &up);
  propose(c, "c", &up); /* 3..5: five uncommitted */
  struct core_entry e = {
      .type = CORE_ENTRY_NORMAL, .data = (const uint8_t *)"d", .len = 1};
  struct core_event ev = {.type = CORE_EVENT_PROPOSE};
  ev.propose.entries = &e;
  ev.propose.entries_n = 1;
  ck_assert_int_eq(step(c, &ev, &up), SYNOD_EBUSY);
  ck_assert_ptr_nonnull(strstr(core_errmsg(c), "not committed"));
  persisted(c, 5, 2, &up);
  struct core_msg ok = append_reply(2, 2, 5);
  ck_assert_int_eq(recv(c, &ok, &up), 0);
  ck_assert_uint_eq(core_commit_index(c), 5);
  ck_assert_int_eq(step(c, &ev, &up), 0);
  core_free(c);
}
END_TEST

/* A late or duplicated copy of the first chunk of the image being received
 * does not start it over (found by the simulator, seed 2001884: with
 * duplication and reordering a transfer restarted forever). */
START_TEST(duplicate_first_chunk_does_not_restart_transfer) {
  struct core *c = new_core(2, 3);
  struct core_update up;
  static uint8_t data[250];
  struct core_msg m = chunk(0, 100, data);
  ck_assert_int_eq(recv(c, &m, &up), 0);
  ck_assert(up.snapshot_chunk_present);
  m = chunk(100, 100, data + 100);
  ck_assert_int_eq(recv(c, &m, &up), 0);
  ck_assert(up.snapshot_chunk_present);
  m = chunk(0, 100, data); /* the duplicate */
  ck_assert_int_eq(recv(c, &m, &up), 0);
  ck_assert(!up.snapshot_chunk_present);
  const struct core_msg *r = find_msg(&up, CORE_MSG_SNAPSHOT_REPLY, 1);
  ck_assert(r != NULL && !r->snapshot_reply.reject);
  ck_assert_uint_eq(r->snapshot_reply.offset, 200);
  m = chunk(200, 50, data + 200);
  ck_assert_int_eq(recv(c, &m, &up), 0);
  ck_assert(up.snapshot_install_present);
  core_free(c);
}
END_TEST

/* On restart the state machine comes back from the snapshot, so committed
 * entries after it are handed out again, in order, in the first update. */
START_TEST(restart_redelivers_committed_from_snapshot_index) {
  struct core_entry ents[3] = {ent(6, 2), ent(7, 2), ent(8, 3)};
  struct core_restore r;
  memset(&r, 0, sizeof r);
  r.hard_state.term = 3;
  r.hard_state.vote = 2;
  r.hard_state.commit = 7;
  r.snapshot.index = 5;
  r.snapshot.term = 2;
  r.snapshot.config = test_config(3);
  r.entries = ents;
  r.entries_n = 3;
  struct core_options o = test_opts(1);
  char err[256];
  struct core *c = core_new(&o, &r, err);
  ck_assert_ptr_nonnull(c);
  ck_assert_int_eq(core_role(c), CORE_FOLLOWER);
  ck_assert_uint_eq(core_term(c), 3);
  ck_assert_uint_eq(core_first_index(c), 6);
  struct core_update up;
  tick(c, &up);
  ck_assert_uint_eq(up.committed_n, 2);
  ck_assert_uint_eq(up.committed[0].index, 6);
  ck_assert_uint_eq(up.committed[1].index, 7);
  ck_assert(!up.hard_state_changed);
  tick(c, &up);
  ck_assert_uint_eq(up.committed_n, 0);
  /* A vote restored for term 3 still binds. */
  struct core_msg v = vote_req(CORE_MSG_VOTE, 3, 1, 3, 8, 3);
  ck_assert_int_eq(recv(c, &v, &up), 0);
  ck_assert(!find_msg(&up, CORE_MSG_VOTE_REPLY, 3)->vote_reply.granted);
  core_free(c);

  ents[1].index = 9; /* a gap */
  ck_assert_ptr_null(core_new(&o, &r, err));
  ck_assert_str_ne(err, "");
}
END_TEST

/* ----------------------------------------------------- a tiny cluster */

/* Perfect network (FIFO, no loss), disks that sync at once, and an
 * optional cut link set. Messages are deep copies. */
#define NET_MAX 4096
struct net {
  struct core *c[4];
  bool down[4];
  struct core_msg q[NET_MAX];
  size_t head, tail;
  uint64_t applied[4];   /* last index applied per replica */
  uint64_t last_term[4]; /* term of that entry */
  uint32_t installs[4];
  uint64_t wanted_at[4][16]; /* applied index at each snapshot_wanted */
  uint32_t wanted_n[4];
};

static void net_copy(struct core_msg *dst, const struct core_msg *m) {
  *dst = *m;
  if (m->type == CORE_MSG_APPEND && m->append.entries_n > 0) {
    struct core_entry *e = calloc(m->append.entries_n, sizeof *e);
    for (uint32_t i = 0; i < m->append.entries_n; i++) {
      e[i] = m->append.entries[i];
      uint8_t *d = malloc(e[i].len + 1);
      if (e[i].len > 0) {
        memcpy(d, e[i].data, e[i].len);
      }
      e[i].data = d;
    }
    dst->append.entries = e;
  }
  if (m->type == CORE_MSG_SNAPSHOT) {
    dst->snapshot.data = calloc(1, m->snapshot.len + 1); /* a zero image */
  }
}

static void net_msg_free(struct core_msg *m) {
  if (m->type == CORE_MSG_APPEND && m->append.entries_n > 0) {
    for (uint32_t i = 0; i < m->append.entries_n; i++) {
      free((void *)m->append.entries[i].data);
    }
    free((void *)m->append.entries);
  }
  if (m->type == CORE_MSG_SNAPSHOT) {
    free((void *)m->snapshot.data);
  }
}

static void net_handle(struct net *n, int i, struct core_update *up) {
  for (uint32_t k = 0; k < up->msgs_n; k++) {
    ck_assert_uint_lt(n->tail - n->head, NET_MAX);
    net_copy(&n->q[n->tail++ % NET_MAX], &up->msgs[k]);
  }
  if (up->snapshot_install_present) {
    n->applied[i] = up->snapshot_install.index;
    n->installs[i]++;
  }
  for (uint32_t k = 0; k < up->committed_n; k++) {
    ck_assert_uint_eq(up->committed[k].index, n->applied[i] + 1);
    n->applied[i]++;
  }
  if (up->snapshot_wanted && n->wanted_n[i] < 16) {
    n->wanted_at[i][n->wanted_n[i]++] = n->applied[i];
  }
  if (up->entries_n > 0) {
    const struct core_entry *last = &up->entries[up->entries_n - 1];
    struct core_event ev = {.type = CORE_EVENT_PERSISTED};
    ev.persisted.index = last->index;
    ev.persisted.term = last->term;
    struct core_update up2;
    ck_assert_int_eq(core_step(n->c[i], &ev, &up2), 0);
    net_handle(n, i, &up2);
  }
}

static void net_event(struct net *n, int i, const struct core_event *ev) {
  struct core_update up;
  ck_assert_int_eq(core_step(n->c[i], ev, &up), 0);
  net_handle(n, i, &up);
}

static void net_deliver(struct net *n) {
  while (n->head != n->tail) {
    struct core_msg m = n->q[n->head++ % NET_MAX];
    if (!n->down[m.to] && !n->down[m.from]) {
      struct core_event ev = {.type = CORE_EVENT_RECEIVE};
      ev.msg = &m;
      net_event(n, (int)m.to, &ev);
    }
    net_msg_free(&m);
  }
}

static void net_run(struct net *n, int ticks) {
  for (int t = 0; t < ticks; t++) {
    for (int i = 1; i <= 3; i++) {
      if (!n->down[i]) {
        struct core_event ev = {.type = CORE_EVENT_TICK};
        net_event(n, i, &ev);
      }
    }
    net_deliver(n);
  }
}

static int net_leader(struct net *n) {
  int leader = 0;
  for (int i = 1; i <= 3; i++) {
    if (!n->down[i] && core_role(n->c[i]) == CORE_LEADER) {
      ck_assert_int_eq(leader, 0);
      leader = i;
    }
  }
  return leader;
}

static void net_init(struct net *n, struct core_options *o) {
  memset(n, 0, sizeof *n);
  for (int i = 1; i <= 3; i++) {
    o->id = (uint64_t)i;
    o->seed = 7;
    n->c[i] = new_core_opts(o, 3);
  }
}

/* count entries proposed at leader l, one per tick of the cluster. */
static void net_propose_each(struct net *n, int l, int count) {
  for (int k = 0; k < count; k++) {
    struct core_entry e = ent(0, 0);
    struct core_event ev = {.type = CORE_EVENT_PROPOSE};
    ev.propose.entries = &e;
    ev.propose.entries_n = 1;
    net_event(n, l, &ev);
    net_run(n, 1);
  }
}

static void net_free(struct net *n) {
  while (n->head != n->tail) {
    net_msg_free(&n->q[n->head++ % NET_MAX]);
  }
  for (int i = 1; i <= 3; i++) {
    core_free(n->c[i]);
  }
}

/* Three replicas elect one leader, commit and apply the same entries; a
 * replica cut off while the others compact catches up by snapshot. */
START_TEST(cluster_elects_commits_and_catches_up_by_snapshot) {
  struct core_options o = test_opts(1);
  o.snapshot_keep_entries = 1;
  o.snapshot_chunk_bytes = 10;
  struct net *n = calloc(1, sizeof *n);
  net_init(n, &o);
  net_run(n, 50);
  int l = net_leader(n);
  ck_assert_int_ne(l, 0);
  int cut = l == 3 ? 2 : 3;
  n->down[cut] = true;
  net_propose_each(n, l, 20);
  ck_assert_int_eq(net_leader(n), l);
  uint64_t commit = core_commit_index(n->c[l]);
  ck_assert_uint_ge(commit, 22);
  for (int i = 1; i <= 3; i++) {
    if (i != cut) {
      struct core_event ev = {.type = CORE_EVENT_SNAPSHOT_TAKEN};
      ev.snapshot.index = n->applied[i];
      ev.snapshot.term = core_term(n->c[l]); /* all after the noop */
      ev.snapshot.size_bytes = 35;
      net_event(n, i, &ev);
    }
  }
  n->down[cut] = false;
  net_run(n, 30);
  ck_assert_int_eq(net_leader(n), l);
  ck_assert_uint_eq(n->installs[cut], 1);
  for (int i = 1; i <= 3; i++) {
    ck_assert_uint_eq(n->applied[i], core_commit_index(n->c[l]));
  }
  net_free(n);
  free(n);
}
END_TEST

/* The indexes at which each of three replicas wanted a snapshot, with
 * snapshots due every 12 entries and slots on or off. */
static void snapshot_points(bool slots, struct net *n) {
  struct core_options o = test_opts(1);
  o.snapshot_entries = 12;
  o.snapshot_slots = slots;
  net_init(n, &o);
  net_run(n, 50);
  int l = net_leader(n);
  ck_assert_int_ne(l, 0);
  net_propose_each(n, l, 70);
  ck_assert_int_eq(net_leader(n), l);
}

/* With slots, replica k of 3 (by id) takes its snapshots only as its
 * applied index crosses k * 12 / 3 modulo 12: the three want theirs in
 * disjoint stretches of the log, never at one index. Without, they all
 * want one at the same indexes (the threshold counts the same entries). */
START_TEST(snapshot_slots_keep_replicas_apart) {
  struct net *n = calloc(1, sizeof *n);
  snapshot_points(false, n);
  bool together = false;
  for (uint32_t a = 0; a < n->wanted_n[1]; a++) {
    for (uint32_t b = 0; b < n->wanted_n[2]; b++) {
      together = together || n->wanted_at[1][a] == n->wanted_at[2][b];
    }
  }
  ck_assert_msg(together, "without slots, replicas 1 and 2 never wanted a "
                          "snapshot at the same index");
  net_free(n);
  memset(n, 0, sizeof *n);
  snapshot_points(true, n);
  for (int i = 1; i <= 3; i++) {
    uint64_t slot = (uint64_t)(i - 1) * 12 / 3;
    ck_assert_uint_ge(n->wanted_n[i], 3);
    for (uint32_t k = 0; k < n->wanted_n[i]; k++) {
      uint64_t at = n->wanted_at[i][k] % 12;
      ck_assert_msg(at >= slot && at < slot + 4,
                    "replica %d wanted a snapshot at %llu, outside its "
                    "slot %llu..%llu (mod 12)",
                    i, (unsigned long long)n->wanted_at[i][k],
                    (unsigned long long)slot, (unsigned long long)slot + 3);
    }
  }
  net_free(n);
  free(n);
}
END_TEST

static Suite *core_suite(void) {
  Suite *s = suite_create("core");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, follower_times_out_and_pre_votes_then_votes);
  tcase_add_test(tc, pre_vote_granted_without_changing_term);
  tcase_add_test(tc, vote_refused_twice_in_a_term);
  tcase_add_test(tc, vote_refused_for_stale_log);
  tcase_add_test(tc, higher_term_makes_leader_step_down);
  tcase_add_test(tc, vote_ignored_while_leader_is_current_unless_transfer);
  tcase_add_test(tc, stale_candidate_learns_term_from_refusal);
  tcase_add_test(tc, pre_vote_refusal_teaches_higher_term);
  tcase_add_test(tc, append_rejected_on_mismatch_with_hint);
  tcase_add_test(tc, leader_backtracks_by_term_with_hint);
  tcase_add_test(tc, conflicting_suffix_truncated);
  tcase_add_test(tc, duplicate_append_is_noop);
  tcase_add_test(tc, follower_commit_limited_to_verified_entries);
  tcase_add_test(tc, old_term_entry_not_committed_by_counting);
  tcase_add_test(tc, lone_candidate_takes_office_after_vote_is_durable);
  tcase_add_test(tc, own_entries_count_only_after_persisted);
  tcase_add_test(tc, lost_append_resent_after_heartbeat_reply);
  tcase_add_test(tc, commit_is_told_to_followers_at_once);
  tcase_add_test(tc, pipelining_respects_inflight_cap);
  tcase_add_test(tc, read_index_waits_for_heartbeat_round);
  tcase_add_test(tc, read_index_fails_on_step_down);
  tcase_add_test(tc, single_voter_read_answered_at_once);
  tcase_add_test(tc, check_quorum_steps_down_without_acks);
  tcase_add_test(tc, transfer_sends_timeout_now_when_target_matches);
  tcase_add_test(tc, transfer_aborted_after_election_timeout);
  tcase_add_test(tc, malformed_messages_rejected_without_change);
  tcase_add_test(tc, persisted_beyond_handed_out_is_einval);
  tcase_add_test(tc, config_encode_decode_round_trip_and_garbage_rejected);
  tcase_add_test(tc, learner_added_then_promoted_when_caught_up);
  tcase_add_test(tc, removed_leader_steps_down_after_commit);
  tcase_add_test(tc, membership_change_refused_before_term_commit);
  tcase_add_test(tc, truncated_config_entry_reverts_config);
  tcase_add_test(tc, snapshot_compacts_log_and_lagging_follower_gets_chunks);
  tcase_add_test(tc, snapshot_due_points_spread_from_one_snapshot_to_the_next);
  tcase_add_test(tc, snapshot_slots_keep_replicas_apart);
  tcase_add_test(tc, snapshot_waits_for_the_log_to_outweigh_the_last_image);
  tcase_add_test(tc, snapshot_byte_threshold_spreads_like_the_entry_count);
  tcase_add_test(tc, snapshot_outweigh_point_spreads_too);
  tcase_add_test(tc, follower_installs_snapshot_from_chunks);
  tcase_add_test(tc, duplicate_first_chunk_does_not_restart_transfer);
  tcase_add_test(tc, propose_refused_while_backlog_is_full);
  tcase_add_test(tc, large_entries_never_wedge_proposals);
  tcase_add_test(tc, released_entries_are_sent_without_data);
  tcase_add_test(tc, log_release_never_passes_readable);
  tcase_add_test(tc, restart_redelivers_committed_from_snapshot_index);
  tcase_add_test(tc, cluster_elects_commits_and_catches_up_by_snapshot);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(core_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
