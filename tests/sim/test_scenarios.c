/* Directed simulation scenarios: faults scripted precisely through the
 * harness API, on the real core, with every invariant of the simulator
 * checked after every step as well as each test's own assertions. */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "sim.h"

/* A fault-free cluster with quick links and disks. */
static struct sim *cluster(uint32_t replicas, uint64_t seed) {
  struct sim_options o = {.seed = seed,
                          .replicas = replicas,
                          .trace = true,
                          .trace_print = getenv("SIM_TRACE_PRINT") != NULL,
                          .chunk_bytes = 64,
                          .snapshot_entries = 100000,
                          .snapshot_keep_entries = 1000,
                          .delay_min_ms = 1,
                          .delay_max_ms = 3,
                          .disk_min_ms = 0,
                          .disk_max_ms = 1};
  return sim_new(&o);
}

static void assert_sane(struct sim *s) {
  if (sim_failed(s)) {
    sim_print_failure(s, stderr);
  }
  ck_assert_msg(!sim_failed(s), "invariant violated: %s", sim_failure(s));
}

static bool leader_is(struct sim *s, void *arg) {
  uint64_t want = *(uint64_t *)arg;
  return want == 0 ? sim_leader(s) != 0 : sim_leader(s) == want;
}

/* Runs until some replica (want 0) or replica `want` leads. */
static bool await_leader(struct sim *s, uint64_t want, uint64_t ms) {
  return sim_run_until(s, leader_is, &want, ms);
}

static uint64_t elect(struct sim *s) {
  ck_assert_msg(await_leader(s, 0, 5000), "no leader within 5 s");
  assert_sane(s);
  return sim_leader(s);
}

struct applied_arg {
  uint64_t ids[8];
  uint32_t n;
  uint64_t index;
};

static bool all_applied(struct sim *s, void *arg) {
  const struct applied_arg *a = arg;
  for (uint32_t i = 0; i < a->n; i++) {
    if (sim_applied(s, a->ids[i]) < a->index) {
      return false;
    }
  }
  return true;
}

/* Runs until every listed replica applied through index. */
static bool await_applied(struct sim *s, const uint64_t *ids, uint32_t n,
                          uint64_t index, uint64_t ms) {
  struct applied_arg a = {.n = n, .index = index};
  for (uint32_t i = 0; i < n; i++) {
    a.ids[i] = ids[i];
  }
  return sim_run_until(s, all_applied, &a, ms);
}

static uint64_t propose(struct sim *s, uint64_t id, uint32_t n) {
  uint64_t first = 0, last = 0;
  int rv = sim_propose(s, id, n, 32, &first, &last);
  ck_assert_msg(rv == 0, "propose on r%" PRIu64 ": %d", id, rv);
  return last;
}

static uint64_t term_of(struct sim *s, uint64_t id) {
  return core_term(sim_core(s, id));
}

/* ------------------------------------------------------------- Figure 8 */

/* Raft paper, Figure 8, with a as S1, b as S2, c/d as S3/S4, e as S5. */
struct fig8 {
  uint64_t a, b, c, d, e;
  uint64_t x; /* the contested index */
  int phase;
  bool trim; /* phase 3: a's appends carry nothing beyond x */
};

static bool is_campaign(const struct core_msg *m) {
  return m->type == CORE_MSG_VOTE || m->type == CORE_MSG_PRE_VOTE;
}

static bool fig8_filter(void *arg, struct core_msg *m) {
  struct fig8 *f = arg;
  bool append = m->type == CORE_MSG_APPEND;
  switch (f->phase) {
  case 1: /* a's entry x reaches b only */
    return !(append && m->from == f->a && m->to != f->b);
  case 2: /* only e may campaign, and e replicates nothing */
    return !(is_campaign(m) && m->from != f->e) && !(append && m->from == f->e);
  case 3: /* only a may campaign */
    if (is_campaign(m) && m->from != f->a) {
      return false;
    }
    if (append && m->from == f->a && f->trim) {
      uint32_t n = 0;
      while (n < m->append.entries_n && m->append.entries[n].index <= f->x) {
        n++;
      }
      m->append.entries_n = n;
    }
    return true;
  case 4: /* only e may campaign */
    return !(is_campaign(m) && m->from != f->e);
  default:
    return true;
  }
}

/* Figure 8 (a)-(c): x is written by a in term T1 and reaches only b; e
 * wins a later term with c and d and writes its own x; a comes back, wins
 * again and copies x (term T1) to b, c and d, so 4 of 5 replicas hold it,
 * but keeps its own new entry to itself. */
static void fig8_setup(struct sim *s, struct fig8 *f) {
  f->a = elect(s);
  uint64_t others[4];
  uint32_t n = 0;
  for (uint64_t id = 1; id <= 5; id++) {
    if (id != f->a) {
      others[n++] = id;
    }
  }
  f->b = others[0], f->c = others[1], f->d = others[2], f->e = others[3];
  uint64_t all[5] = {1, 2, 3, 4, 5};
  ck_assert(await_applied(s, all, 5, core_last_index(sim_core(s, f->a)), 2000));
  sim_filter(s, fig8_filter, f);
  f->phase = 1;
  f->x = propose(s, f->a, 1);
  ck_assert(sim_run_for(s, 50));
  ck_assert_uint_lt(core_commit_index(sim_core(s, f->a)), f->x);
  sim_crash(s, f->a);

  f->phase = 2;
  ck_assert_msg(await_leader(s, f->e, 10000), "e did not win");
  ck_assert(sim_run_for(s, 20)); /* e's own x is durable on e */
  ck_assert_uint_eq(core_last_index(sim_core(s, f->e)), f->x);
  sim_crash(s, f->e);

  f->phase = 3;
  sim_restart(s, f->a);
  ck_assert_msg(await_leader(s, f->a, 10000), "a did not win again");
  assert_sane(s);
}

START_TEST(figure8_old_term_entry_on_majority_is_not_committed_alone) {
  struct sim *s = cluster(5, 8);
  struct fig8 f = {.trim = true};
  fig8_setup(s, &f);
  ck_assert(sim_run_for(s, 1000));
  assert_sane(s);
  struct core *a = sim_core(s, f.a);
  uint64_t holders[3] = {f.b, f.c, f.d};
  for (int i = 0; i < 3; i++) {
    ck_assert_uint_ge(core_match_index(a, holders[i]), f.x);
  }
  /* x of term T1 is on 4 of 5 replicas, but only an entry of a's own term
   * may commit it (Figure 8 (c)): nothing at or after x is committed. */
  ck_assert_uint_lt(core_commit_index(a), f.x);
  for (uint64_t id = 1; id <= 5; id++) {
    ck_assert_uint_lt(sim_applied(s, id), f.x);
  }
  /* (d): a fails, e comes back with a later-term x and overwrites it. */
  sim_crash(s, f.a);
  f.phase = 4;
  sim_restart(s, f.e);
  ck_assert_msg(await_leader(s, f.e, 10000), "e did not win (d)");
  uint64_t live[4] = {f.b, f.c, f.d, f.e};
  ck_assert(await_applied(s, live, 4, f.x + 1, 5000));
  uint64_t term = 0;
  ck_assert(sim_committed(s, f.x, &term));
  ck_assert_uint_lt(term, term_of(s, f.e));
  sim_filter(s, NULL, NULL);
  sim_restart(s, f.a);
  uint64_t all[5] = {1, 2, 3, 4, 5};
  ck_assert(await_applied(s, all, 5, f.x + 1, 5000));
  assert_sane(s);
  sim_free(s);
}
END_TEST

START_TEST(figure8_entry_committed_with_current_term_entry_is_kept) {
  struct sim *s = cluster(5, 8);
  struct fig8 f = {.trim = false};
  fig8_setup(s, &f);
  /* (e): a's own entry x+1 reaches a majority, committing x with it. */
  uint64_t holders[4] = {f.a, f.b, f.c, f.d};
  ck_assert(await_applied(s, holders, 4, f.x + 1, 5000));
  uint64_t term_x = 0;
  ck_assert(sim_committed(s, f.x, &term_x));
  sim_crash(s, f.a);
  f.phase = 4;
  sim_restart(s, f.e);
  /* e's x (a later term than a's x) is behind the majority's x+1. */
  ck_assert_msg(!await_leader(s, f.e, 3000), "e won with a stale log");
  assert_sane(s);
  sim_filter(s, NULL, NULL);
  sim_restart(s, f.a);
  uint64_t all[5] = {1, 2, 3, 4, 5};
  ck_assert(await_applied(s, all, 5, f.x + 1, 5000));
  uint64_t term = 0;
  ck_assert(sim_committed(s, f.x, &term));
  ck_assert_uint_eq(term, term_x);
  assert_sane(s);
  sim_free(s);
}
END_TEST

/* ------------------------------------------------- PreVote, CheckQuorum */

START_TEST(prevote_partitioned_follower_rejoins_without_deposing_leader) {
  struct sim *s = cluster(3, 21);
  uint64_t l = elect(s);
  uint64_t t = term_of(s, l);
  uint64_t f = l % 3 + 1;
  sim_isolate(s, f);
  ck_assert(sim_run_for(s, 5000)); /* 25+ election timeouts */
  /* PreVote: the cut-off follower never wins a pre-vote, so it never
   * starts a term of its own. */
  ck_assert_uint_eq(term_of(s, f), t);
  ck_assert_uint_eq(sim_leader(s), l);
  sim_heal(s);
  uint64_t last = propose(s, l, 3);
  uint64_t all[3] = {1, 2, 3};
  ck_assert(await_applied(s, all, 3, last, 2000));
  ck_assert(sim_run_for(s, 2000));
  ck_assert_uint_eq(sim_leader(s), l);
  ck_assert_uint_eq(term_of(s, l), t);
  ck_assert_uint_eq(term_of(s, f), t);
  assert_sane(s);
  sim_free(s);
}
END_TEST

static bool steps_down(struct sim *s, void *arg) {
  uint64_t id = *(uint64_t *)arg;
  return core_role(sim_core(s, id)) != CORE_LEADER;
}

START_TEST(checkquorum_isolated_leader_steps_down_and_majority_elects) {
  struct sim *s = cluster(5, 33);
  uint64_t l = elect(s);
  uint64_t t = term_of(s, l);
  uint64_t all[5] = {1, 2, 3, 4, 5};
  ck_assert(await_applied(s, all, 5, core_last_index(sim_core(s, l)), 2000));
  sim_isolate(s, l);
  uint64_t lost = propose(s, l, 2); /* accepted, never committed */
  /* CheckQuorum: without replies from a majority for an election
   * timeout (at most 2 x 10 ticks of 10 ms, clocks up to 1.25x slow), the
   * leader steps down. */
  ck_assert_msg(sim_run_until(s, steps_down, &l, 600),
                "isolated leader still leads");
  ck_assert_msg(await_leader(s, 0, 3000), "majority elected no one");
  uint64_t n = sim_leader(s);
  ck_assert_uint_ne(n, l);
  ck_assert_uint_gt(term_of(s, n), t);
  uint64_t last = propose(s, n, 3);
  sim_heal(s);
  ck_assert(await_applied(s, all, 5, last, 3000));
  uint64_t term = 0;
  ck_assert(sim_committed(s, lost, &term));
  ck_assert_uint_ne(term, t); /* the isolated leader's entries are gone */
  assert_sane(s);
  sim_free(s);
}
END_TEST

static void tell_gone(struct sim *s, uint64_t to, uint64_t gone) {
  struct core_event ev = {.type = CORE_EVENT_PEER_GONE, .id = gone};
  ck_assert_int_eq(sim_event(s, to, &ev), 0);
}

/* A crashed leader's followers are told (as synodd's peer links report a
 * refused reconnect, each after its own random delay): the first one
 * campaigns at once, the second grants its pre-vote and vote, and a new
 * leader is in office well before the election timeout (100-200 ms here)
 * would even have started an election. */
START_TEST(peer_gone_leader_is_replaced_before_the_election_timeout) {
  struct sim *s = cluster(3, 41);
  uint64_t l = elect(s);
  uint64_t t = term_of(s, l);
  uint64_t all[3] = {1, 2, 3};
  ck_assert(await_applied(s, all, 3, core_last_index(sim_core(s, l)), 2000));
  uint64_t a = l % 3 + 1, b = a % 3 + 1;
  sim_crash(s, l);
  uint64_t start = sim_now_ms(s);
  tell_gone(s, a, l);
  ck_assert(sim_run_for(s, 15));
  tell_gone(s, b, l);
  ck_assert_msg(await_leader(s, 0, 60), "no leader %llu ms after the crash",
                (unsigned long long)(sim_now_ms(s) - start));
  uint64_t n = sim_leader(s);
  ck_assert(n == a || n == b);
  ck_assert_uint_eq(term_of(s, n), t + 1);
  assert_sane(s);
  sim_free(s);
}
END_TEST

/* A false alarm (a live leader reported gone to one follower) costs one
 * refused pre-vote: the other follower still hears the leader and does
 * not help depose it, so no term changes. */
START_TEST(peer_gone_false_alarm_does_not_depose_a_live_leader) {
  struct sim *s = cluster(3, 43);
  uint64_t l = elect(s);
  uint64_t t = term_of(s, l);
  uint64_t f = l % 3 + 1;
  tell_gone(s, f, l);
  ck_assert(sim_run_for(s, 2000));
  ck_assert_uint_eq(sim_leader(s), l);
  for (uint64_t id = 1; id <= 3; id++) {
    ck_assert_uint_eq(term_of(s, id), t);
  }
  uint64_t last = propose(s, l, 3);
  uint64_t all[3] = {1, 2, 3};
  ck_assert(await_applied(s, all, 3, last, 2000));
  assert_sane(s);
  sim_free(s);
}
END_TEST

/* Two replicas in term T with the longer log, two in term T+1 (they voted
 * there for a fifth that then died) with the shorter one: the first two
 * must learn term T+1 from the refusals of their pre-votes, or no one can
 * ever win (etcd raft: a refusal carries the voter's own term). */
START_TEST(prevote_refusal_teaches_precandidate_the_higher_term) {
  struct sim *s = cluster(5, 77);
  uint64_t a = elect(s);
  uint64_t all[5] = {1, 2, 3, 4, 5};
  ck_assert(await_applied(s, all, 5, core_last_index(sim_core(s, a)), 2000));
  uint64_t o[4], n = 0;
  for (uint64_t id = 1; id <= 5; id++) {
    if (id != a) {
      o[n++] = id;
    }
  }
  uint64_t b = o[0], c = o[1], d = o[2], e = o[3];
  uint64_t t = term_of(s, a);
  sim_crash(s, e);
  struct fig8 f = {.a = a, .b = b, .phase = 1};
  sim_filter(s, fig8_filter, &f); /* a's appends reach b only */
  propose(s, a, 1);
  ck_assert(sim_run_for(s, 50));
  uint64_t pair1[2] = {a, b}, pair2[2] = {c, d};
  for (int i = 0; i < 2; i++) {
    for (int j = 0; j < 2; j++) {
      sim_link(s, pair1[i], pair2[j], false);
      sim_link(s, pair2[j], pair1[i], false);
    }
  }
  ck_assert(sim_run_for(s, 500));
  /* e's vote request for T+1 reaches c and d before e dies. */
  for (int j = 0; j < 2; j++) {
    struct core_msg m = {
        .type = CORE_MSG_VOTE,
        .from = e,
        .to = pair2[j],
        .term = t + 1,
        .vote = {.last_index = core_last_index(sim_core(s, pair2[j])),
                 .last_term = t}};
    struct core_event ev = {.type = CORE_EVENT_RECEIVE, .msg = &m};
    ck_assert_int_eq(sim_event(s, pair2[j], &ev), 0);
  }
  ck_assert(sim_run_for(s, 20));
  ck_assert_uint_eq(term_of(s, c), t + 1);
  ck_assert_uint_eq(term_of(s, d), t + 1);
  ck_assert_uint_eq(term_of(s, a), t);
  sim_filter(s, NULL, NULL);
  sim_heal(s);
  ck_assert_msg(await_leader(s, 0, 10000),
                "no leader 10 s after healing (the PreVote term deadlock)");
  uint64_t l = sim_leader(s);
  ck_assert(l == a || l == b);
  assert_sane(s);
  sim_free(s);
}
END_TEST

/* ------------------------------------------------ conflicting suffix */

struct repair {
  uint64_t leader;
  uint64_t follower;
  bool counting;
  uint64_t appends;
  uint64_t rejects;
};

static bool count_repair(void *arg, struct core_msg *m) {
  struct repair *r = arg;
  if (!r->counting) {
    return true;
  }
  if (m->type == CORE_MSG_APPEND && m->from == r->leader &&
      m->to == r->follower) {
    r->appends++;
  }
  if (m->type == CORE_MSG_APPEND_REPLY && m->from == r->follower &&
      m->append_reply.reject) {
    r->rejects++;
  }
  return true;
}

START_TEST(conflicting_suffix_of_hundreds_is_repaired_in_few_round_trips) {
  struct sim *s = cluster(3, 44);
  uint64_t a = elect(s);
  uint64_t all[3] = {1, 2, 3};
  ck_assert(await_applied(s, all, 3, core_last_index(sim_core(s, a)), 2000));
  /* a, cut off, keeps appending entries of its term that never commit. */
  sim_isolate(s, a);
  for (int i = 0; i < 6; i++) {
    propose(s, a, 50);
  }
  uint64_t suffix_end = core_last_index(sim_core(s, a));
  ck_assert(sim_run_until(s, steps_down, &a, 1000));
  ck_assert(await_leader(s, 0, 3000));
  uint64_t b = sim_leader(s);
  uint64_t c = 6 - a - b;
  uint64_t last = 0;
  for (int i = 0; i < 8; i++) {
    last = propose(s, b, 50);
    ck_assert(sim_run_for(s, 5));
  }
  uint64_t others[2] = {b, c};
  ck_assert(await_applied(s, others, 2, last, 2000));
  ck_assert_uint_gt(last, suffix_end + 50);
  /* A fresh leader probes a just after its own last entry, far beyond
   * where a's log parts from it. */
  struct core_event ev = {.type = CORE_EVENT_TRANSFER, .id = c};
  ck_assert_int_eq(sim_event(s, b, &ev), 0);
  ck_assert(await_leader(s, c, 2000));
  struct repair r = {.leader = c, .follower = a, .counting = true};
  sim_filter(s, count_repair, &r);
  sim_heal(s);
  ck_assert(await_applied(s, &a, 1, last, 3000));
  /* With the conflict hint the leader skips the whole stale term at
   * once; one entry at a time would take 300 rejections. */
  ck_assert_msg(r.rejects <= 4, "%" PRIu64 " rejections", r.rejects);
  ck_assert_msg(r.appends <= 40, "%" PRIu64 " appends", r.appends);
  ck_assert_uint_eq(core_last_index(sim_core(s, a)),
                    core_last_index(sim_core(s, c)));
  assert_sane(s);
  sim_free(s);
}
END_TEST

/* ------------------------------------------------------------ snapshots */

/* Crashes follower f while leader l writes `rounds` batches that l and g
 * apply, then gives compaction time: f is left behind the leader's log.
 * Returns the last index written. */
static uint64_t lag_follower(struct sim *s, uint64_t l, uint64_t f, uint64_t g,
                             int rounds) {
  uint64_t last = 0;
  sim_crash(s, f);
  for (int i = 0; i < rounds; i++) {
    last = propose(s, l, 10);
    ck_assert(sim_run_for(s, 5));
  }
  uint64_t up[2] = {l, g};
  ck_assert(await_applied(s, up, 2, last, 3000));
  ck_assert(sim_run_for(s, 50));
  return last;
}

START_TEST(lagging_follower_receives_snapshot_in_chunks_and_catches_up) {
  struct sim_options o = {.seed = 55,
                          .replicas = 3,
                          .trace = true,
                          .chunk_bytes = 64,
                          .snapshot_entries = 50,
                          .snapshot_keep_entries = 10,
                          .delay_min_ms = 1,
                          .delay_max_ms = 3,
                          .disk_max_ms = 1};
  struct sim *s = sim_new(&o);
  uint64_t l = elect(s);
  uint64_t f = l % 3 + 1;
  uint64_t g = 6 - l - f;
  uint64_t last = lag_follower(s, l, f, g, 30);
  /* The leader compacted its log far past what f holds. */
  ck_assert_uint_gt(core_first_index(sim_core(s, l)), sim_applied(s, f) + 100);
  const struct sim_stats *st = sim_stats(s);
  uint64_t chunks = st->sent_to[f][CORE_MSG_SNAPSHOT];
  sim_restart(s, f);
  ck_assert(await_applied(s, &f, 1, last, 5000));
  ck_assert_uint_ge(st->sent_to[f][CORE_MSG_SNAPSHOT] - chunks, 2);
  ck_assert_uint_ge(st->installs[f], 1);
  /* And it keeps up afterwards, by appends. */
  last = propose(s, l, 5);
  uint64_t all[3] = {1, 2, 3};
  ck_assert(await_applied(s, all, 3, last, 2000));
  assert_sane(s);
  sim_free(s);
}
END_TEST

struct chunks_arg {
  uint64_t id;
  uint64_t offset; /* the highest offset id asked for */
};

static bool watch_replies(void *arg, struct core_msg *m) {
  struct chunks_arg *a = arg;
  if (m->type == CORE_MSG_SNAPSHOT_REPLY && m->from == a->id &&
      m->snapshot_reply.offset > a->offset) {
    a->offset = m->snapshot_reply.offset;
  }
  return true;
}

static bool asked_for_48(struct sim *s, void *arg) {
  (void)s;
  return ((struct chunks_arg *)arg)->offset >= 48;
}

START_TEST(snapshot_transfer_resumes_after_follower_restarts_mid_image) {
  struct sim_options o = {.seed = 56,
                          .replicas = 3,
                          .trace = true,
                          .chunk_bytes = 16,
                          .trace_print = getenv("SIM_TRACE_PRINT") != NULL,
                          .snapshot_entries = 50,
                          .snapshot_keep_entries = 10,
                          .delay_min_ms = 2,
                          .delay_max_ms = 4,
                          .disk_max_ms = 1};
  struct sim *s = sim_new(&o);
  uint64_t l = elect(s);
  uint64_t f = l % 3 + 1;
  uint64_t g = 6 - l - f;
  uint64_t last = lag_follower(s, l, f, g, 20);
  struct chunks_arg a = {.id = f};
  sim_filter(s, watch_replies, &a);
  sim_restart(s, f);
  /* f crashes once the leader has heard it hold 48 bytes: it lost the
   * partial image (and where it was), so it asks for offset 0 again. */
  ck_assert(sim_run_until(s, asked_for_48, &a, 2000));
  ck_assert_uint_eq(sim_stats(s)->installs[f], 0);
  sim_crash(s, f);
  sim_restart(s, f);
  ck_assert_msg(await_applied(s, &f, 1, last, 5000),
                "snapshot transfer stuck after the follower restarted "
                "(the snapshot transfer livelock)");
  ck_assert_uint_ge(sim_stats(s)->installs[f], 1);
  assert_sane(s);
  sim_free(s);
}
END_TEST

/* ----------------------------------------------------------- membership */

struct member_arg {
  uint64_t leader_hint;
  uint64_t id;
  bool voter; /* wait for id to be a voter (true) or gone (false) */
};

static bool config_has(struct sim *s, void *arg) {
  const struct member_arg *m = arg;
  uint64_t l = sim_leader(s);
  if (l == 0) {
    return false;
  }
  const struct core_config *cfg = core_config(sim_core(s, l));
  bool found = false;
  for (uint32_t i = 0; i < cfg->voters_n; i++) {
    found |= cfg->voters[i] == m->id;
  }
  for (uint32_t i = 0; i < cfg->learners_n && !m->voter; i++) {
    found |= cfg->learners[i] == m->id;
  }
  return found == m->voter &&
         core_commit_index(sim_core(s, l)) >= core_last_index(sim_core(s, l));
}

/* Proposes a batch every 10 ms until cond holds (or timeout). */
static bool under_load(struct sim *s, bool (*cond)(struct sim *, void *),
                       void *arg, uint64_t ms) {
  for (uint64_t t = 0; t < ms; t += 10) {
    uint64_t l = sim_leader(s);
    if (l != 0) {
      sim_propose(s, l, 3, 40, NULL, NULL);
    }
    if (sim_run_until(s, cond, arg, 10)) {
      return true;
    }
    if (sim_failed(s)) {
      return false;
    }
  }
  return false;
}

static int change(struct sim *s, enum core_event_type type, uint64_t id) {
  struct core_event ev = {.type = type, .id = id};
  return sim_event(s, sim_leader(s), &ev);
}

START_TEST(members_added_and_removed_under_load_lose_nothing) {
  struct sim *s = cluster(3, 66);
  uint64_t l = elect(s);
  for (int i = 0; i < 20; i++) {
    propose(s, l, 5);
    ck_assert(sim_run_for(s, 5));
  }
  uint64_t n = 0;
  for (uint64_t want = 4; want <= 5; want++) {
    n = sim_spawn(s);
    ck_assert_uint_eq(n, want);
    ck_assert_int_eq(change(s, CORE_EVENT_ADD_MEMBER, n), 0);
    struct member_arg voter = {.id = n, .voter = true};
    ck_assert_msg(under_load(s, config_has, &voter, 10000),
                  "r%d never became a voter", (int)n);
  }
  /* Remove a follower, then the leader itself. */
  uint64_t f = sim_leader(s) % 3 + 1;
  ck_assert_int_eq(change(s, CORE_EVENT_REMOVE_MEMBER, f), 0);
  struct member_arg gone = {.id = f, .voter = false};
  ck_assert_msg(under_load(s, config_has, &gone, 10000), "r%d stayed", (int)f);
  uint64_t old = sim_leader(s);
  ck_assert_int_eq(change(s, CORE_EVENT_REMOVE_MEMBER, old), 0);
  gone.id = old;
  ck_assert_msg(under_load(s, config_has, &gone, 10000), "leader stayed");
  ck_assert_uint_ne(sim_leader(s), old);
  /* The three voters left, the new ones among them, all apply a new
   * entry; the simulator checked every acknowledged write on the way. */
  uint64_t last = propose(s, sim_leader(s), 1);
  const struct core_config *cfg = core_config(sim_core(s, sim_leader(s)));
  ck_assert_uint_eq(cfg->voters_n, 3);
  ck_assert(await_applied(s, cfg->voters, cfg->voters_n, last, 3000));
  ck_assert_uint_ge(sim_applied(s, 4), last);
  ck_assert_uint_ge(sim_applied(s, 5), last);
  ck_assert_uint_gt(sim_stats(s)->acked, 100);
  assert_sane(s);
  sim_free(s);
}
END_TEST

/* -------------------------------------------------------------- clients */

/* A fault-free cluster on the real state machine, for scripted clients. */
static struct sim *fsm_cluster(uint32_t replicas, uint64_t seed) {
  struct sim_options o = {.seed = seed,
                          .replicas = replicas,
                          .fsm = true,
                          .trace = true,
                          .trace_print = getenv("SIM_TRACE_PRINT") != NULL,
                          .chunk_bytes = 1024,
                          .snapshot_entries = 100000,
                          .snapshot_keep_entries = 1000,
                          .delay_min_ms = 1,
                          .delay_max_ms = 3,
                          .disk_min_ms = 0,
                          .disk_max_ms = 1};
  return sim_new(&o);
}

static bool has_session(struct sim *s, void *arg) {
  return sim_client_session(s, *(uint32_t *)arg) != 0;
}

static uint32_t client(struct sim *s, uint32_t ttl_ms) {
  uint32_t c = sim_client_add(s, ttl_ms);
  ck_assert_uint_ne(c, 0);
  ck_assert_msg(sim_run_until(s, has_session, &c, 5000),
                "client %u opened no session", c);
  return c;
}

static bool op_done(struct sim *s, void *arg) {
  return sim_client_result(s, *(uint32_t *)arg)->done;
}

static const struct sim_op_result *await_op(struct sim *s, uint32_t h,
                                            uint64_t ms) {
  ck_assert_uint_ne(h, 0);
  sim_run_until(s, op_done, &h, ms);
  assert_sane(s);
  return sim_client_result(s, h);
}

static uint32_t submit(struct sim *s, uint32_t c, enum sim_op_type type,
                       uint32_t name, int64_t a1, uint32_t timeout_ms,
                       uint32_t lock_delay_ms, uint32_t thread) {
  struct sim_op_spec sp = {.type = type,
                           .name = name,
                           .a1 = a1,
                           .timeout_ms = timeout_ms,
                           .lock_delay_ms = lock_delay_ms,
                           .thread = thread};
  uint32_t h = sim_client_submit(s, c, &sp);
  ck_assert_msg(h != 0, "client %u refused the operation", c);
  return h;
}

/* An increment applied by the leader whose answer is lost, then retried
 * with the same (session, sequence) through the next leader, is answered
 * from the session's record: it counts once. */
START_TEST(retried_increment_across_leader_failover_counts_once) {
  struct sim *s = fsm_cluster(3, 21);
  uint64_t l = elect(s);
  uint32_t c = client(s, 5000);
  sim_client_link(s, c, l, true, false); /* l's answers never arrive */
  uint32_t h = submit(s, c, SIM_OP_ADD, 0, 1, 0, 0, 0);
  ck_assert(sim_run_for(s, 100));
  uint64_t idx = core_commit_index(sim_core(s, l));
  uint64_t all[3] = {1, 2, 3};
  ck_assert(await_applied(s, all, 3, idx, 2000));
  ck_assert(!sim_client_result(s, h)->done);
  sim_crash(s, l); /* the increment is committed everywhere, unanswered */
  const struct sim_op_result *r = await_op(s, h, 10000);
  ck_assert_msg(r->done && r->code == 0, "increment: code %d", r->code);
  ck_assert_int_eq(r->value, 1);
  ck_assert_uint_ge(r->attempts, 2);
  r = await_op(s, submit(s, c, SIM_OP_GET, 0, 0, 0, 0, 1), 5000);
  ck_assert_int_eq(r->code, 0);
  ck_assert_int_eq(r->value, 1);
  sim_restart(s, l);
  ck_assert(sim_run_for(s, 500));
  ck_assert(sim_check_history(s));
  sim_free(s);
}
END_TEST

/* The holder's session expires (its process pauses): the next waiter gets
 * the lock with a larger token, and not before the expiry deadline plus
 * the holder's lock-delay. */
START_TEST(expired_holder_hands_lock_to_next_waiter_after_lock_delay) {
  struct sim *s = fsm_cluster(3, 22);
  elect(s);
  uint32_t a = client(s, 2000);
  uint32_t b = client(s, 5000);
  const struct sim_op_result *ra =
      await_op(s, submit(s, a, SIM_OP_ACQUIRE, 0, 0, 0, 1500, 0), 3000);
  ck_assert_int_eq(ra->code, 0);
  uint64_t t1 = ra->token;
  uint32_t hb = submit(s, b, SIM_OP_ACQUIRE, 0, 0, 20000, 0, 0);
  ck_assert(sim_run_for(s, 300));
  ck_assert(!sim_client_result(s, hb)->done); /* queued behind a */
  uint64_t paused_at = sim_now_ms(s);
  sim_client_pause(s, a, true);
  const struct sim_op_result *rb = await_op(s, hb, 15000);
  ck_assert_msg(rb->done && rb->code == 0, "waiter: code %d", rb->code);
  ck_assert_uint_gt(rb->token, t1);
  /* a's last keepalive left at most ttl/3 before the pause: its session
   * lasted at least 2000 - 667 ms more, then the lock-delay. */
  ck_assert_uint_ge(rb->complete_ms, paused_at + 2000 - 667 + 1500);
  ck_assert(sim_check_history(s));
  sim_free(s);
}
END_TEST

/* A batch published through the leader whose answer is lost, then
 * retried with the same (session, sequence) through the next leader,
 * appears once: at the offsets the retry is told, to the subscribers on
 * every replica (the channel history check passes). */
START_TEST(retried_publish_across_leader_failover_appears_once) {
  struct sim_options o = {.seed = 24,
                          .replicas = 3,
                          .channels = true,
                          .trace = true,
                          .trace_print = getenv("SIM_TRACE_PRINT") != NULL,
                          .chunk_bytes = 1024,
                          .snapshot_entries = 100000,
                          .snapshot_keep_entries = 1000,
                          .delay_min_ms = 1,
                          .delay_max_ms = 3,
                          .disk_min_ms = 0,
                          .disk_max_ms = 1};
  struct sim *s = sim_new(&o);
  uint64_t l = elect(s);
  uint32_t c = client(s, 5000);
  sim_client_link(s, c, l, true, false); /* l's answers never arrive */
  uint32_t h = submit(s, c, SIM_OP_PUBLISH, 0, 2, 0, 0, 0);
  ck_assert(sim_run_for(s, 100));
  uint64_t idx = core_commit_index(sim_core(s, l));
  uint64_t all[3] = {1, 2, 3};
  ck_assert(await_applied(s, all, 3, idx, 2000));
  ck_assert(!sim_client_result(s, h)->done);
  sim_crash(s, l); /* the publish is committed everywhere, unanswered */
  const struct sim_op_result *r = await_op(s, h, 10000);
  ck_assert_msg(r->done && r->code == 0, "publish: code %d", r->code);
  ck_assert_uint_eq(r->first_offset, 1);
  ck_assert_uint_eq(r->last_offset, 2);
  ck_assert_uint_le(r->index, idx);
  ck_assert_uint_ge(r->attempts, 2);
  r = await_op(s, submit(s, c, SIM_OP_PUBLISH, 0, 1, 0, 0, 1), 5000);
  ck_assert_int_eq(r->code, 0);
  ck_assert_uint_eq(r->first_offset, 3);
  sim_restart(s, l);
  ck_assert(sim_run_for(s, 3000));
  ck_assert(sim_check_history(s));
  ck_assert_uint_ge(sim_stats(s)->deliveries, 3);
  sim_free(s);
}
END_TEST

static void split(struct sim *s, const uint64_t *minority, uint32_t n) {
  for (uint64_t a = 1; a <= 5; a++) {
    for (uint64_t b = 1; b <= 5; b++) {
      bool am = false, bm = false;
      for (uint32_t i = 0; i < n; i++) {
        am |= minority[i] == a;
        bm |= minority[i] == b;
      }
      if (a != b && am != bm) {
        sim_link(s, a, b, false);
      }
    }
  }
}

/* The old leader and one follower are cut off from the other three. A
 * client that reaches only that minority is never granted the lock; one
 * on the majority side gets it. */
START_TEST(minority_partition_never_grants_a_lock) {
  struct sim *s = fsm_cluster(5, 23);
  uint64_t l = elect(s);
  uint64_t other = l % 5 + 1;
  uint64_t minority[2] = {l, other};
  uint32_t a = client(s, 3000);
  uint32_t b = client(s, 3000);
  split(s, minority, 2);
  for (uint64_t r = 1; r <= 5; r++) {
    bool in = r == l || r == other;
    sim_client_link(s, a, r, in, in);
    sim_client_link(s, b, r, !in, !in);
  }
  uint32_t ha = submit(s, a, SIM_OP_ACQUIRE, 0, 0, 0, 0, 0);
  uint32_t hb = submit(s, b, SIM_OP_ACQUIRE, 0, 0, 0, 0, 0);
  ck_assert(sim_run_for(s, 8000));
  assert_sane(s);
  const struct sim_op_result *rb = sim_client_result(s, hb);
  ck_assert_msg(rb->done && rb->code == 0, "majority client: done %d code %d",
                rb->done, rb->code);
  const struct sim_op_result *ra = sim_client_result(s, ha);
  ck_assert_msg(!(ra->done && ra->code == 0),
                "the minority granted the lock (token %" PRIu64 ")", ra->token);
  sim_heal(s);
  ck_assert(sim_run_for(s, 3000));
  ck_assert(sim_check_history(s));
  sim_free(s);
}
END_TEST

int main(void) {
  Suite *suite = suite_create("sim");
  TCase *tc = tcase_create("scenarios");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, figure8_old_term_entry_on_majority_is_not_committed_alone);
  tcase_add_test(tc, figure8_entry_committed_with_current_term_entry_is_kept);
  tcase_add_test(tc,
                 prevote_partitioned_follower_rejoins_without_deposing_leader);
  tcase_add_test(tc,
                 checkquorum_isolated_leader_steps_down_and_majority_elects);
  tcase_add_test(tc, prevote_refusal_teaches_precandidate_the_higher_term);
  tcase_add_test(tc, peer_gone_leader_is_replaced_before_the_election_timeout);
  tcase_add_test(tc, peer_gone_false_alarm_does_not_depose_a_live_leader);
  tcase_add_test(tc,
                 conflicting_suffix_of_hundreds_is_repaired_in_few_round_trips);
  tcase_add_test(tc,
                 lagging_follower_receives_snapshot_in_chunks_and_catches_up);
  tcase_add_test(tc,
                 snapshot_transfer_resumes_after_follower_restarts_mid_image);
  tcase_add_test(tc, members_added_and_removed_under_load_lose_nothing);
  tcase_add_test(tc, retried_increment_across_leader_failover_counts_once);
  tcase_add_test(tc, expired_holder_hands_lock_to_next_waiter_after_lock_delay);
  tcase_add_test(tc, minority_partition_never_grants_a_lock);
  tcase_add_test(tc, retried_publish_across_leader_failover_appears_once);
  suite_add_tcase(suite, tc);
  SRunner *sr = srunner_create(suite);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
