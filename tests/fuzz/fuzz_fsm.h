/* Invariants of a live state machine, checked by the harnesses that
 * change one (fsm_apply, request, snapshot). Reads fsm internals
 * (fsm_int.h) the way tests/unit/test_fsm.c does. */
#ifndef SYNOD_FUZZ_FSM_H
#define SYNOD_FUZZ_FSM_H

#include "fuzz.h"

#include "fsm.h"
#include "fsm_int.h"
#include "otree.h"

/* The trees are balanced and ordered; locks, sessions and the gauges
 * agree with each other. Cheap enough to run after every apply. */
static inline void fuzz_fsm_check(const struct fsm *f) {
  const struct otree *trees[] = {&f->sessions,  &f->locks,   &f->counters,
                                 &f->elections, &f->members, &f->timers};
  for (size_t i = 0; i < sizeof trees / sizeof *trees; i++) {
    FUZZ_CHECK(otree_check(trees[i]) == trees[i]->count, "tree %zu", i);
  }
  uint64_t held = 0, waiters = 0;
  for (struct otree_node *n = otree_first(&f->locks); n; n = otree_next(n)) {
    const struct fsm_lock *l = FSM_CONTAINER(n, struct fsm_lock, by_name);
    FUZZ_CHECK((l->holder != NULL) == (l->hold_count > 0),
               "lock '%s': holder and hold count %u disagree", l->name,
               l->hold_count);
    FUZZ_CHECK(l->holder != NULL || l->waiters_len > 0 || l->delay.armed,
               "lock '%s' free, unwaited and not in lock-delay, yet kept",
               l->name);
    FUZZ_CHECK(l->token <= f->token_last, "lock '%s' token %llu > last %llu",
               l->name, (unsigned long long)l->token,
               (unsigned long long)f->token_last);
    held += l->holder != NULL;
    waiters += l->waiters_len;
  }
  for (struct otree_node *n = otree_first(&f->sessions); n; n = otree_next(n)) {
    const struct fsm_session *s = FSM_CONTAINER(n, struct fsm_session, by_id);
    FUZZ_CHECK(s->results_len <= f->opt.results_per_session_max,
               "session %llu keeps %u results", (unsigned long long)s->id,
               s->results_len);
    for (uint32_t i = 0; i < s->results_len; i++) {
      FUZZ_CHECK(
          s->results[i].sequence > s->sequence_floor &&
              (i == 0 || s->results[i].sequence > s->results[i - 1].sequence),
          "session %llu: results out of order", (unsigned long long)s->id);
    }
    FUZZ_CHECK(s->keepalive_ms <= f->time_ms, "keepalive in the future");
  }
  struct fsm_stats st;
  fsm_stats_get(f, &st);
  FUZZ_CHECK(st.locks_held == held && st.lock_waiters == waiters,
             "gauges %llu held %llu waiting, counted %llu and %llu",
             (unsigned long long)st.locks_held,
             (unsigned long long)st.lock_waiters, (unsigned long long)held,
             (unsigned long long)waiters);
}

/* The state encodes to an image that decodes, into a fresh state machine
 * with the same options, to the same digest and the same bytes: every
 * state apply can reach is one a snapshot can carry. */
static inline void fuzz_fsm_check_image(const struct fsm *f,
                                        const struct fsm_options *opts) {
  uint8_t *img, *img2;
  size_t len, len2;
  FUZZ_CHECK(fsm_snapshot_encode(f, &img, &len) == 0, "encode");
  struct fsm *g = fsm_new(opts);
  int rv = fsm_snapshot_decode(g, img, len);
  FUZZ_CHECK(rv == 0, "the image of a live state is refused: %d", rv);
  FUZZ_CHECK(fsm_digest(g) == fsm_digest(f), "digest differs after restore");
  FUZZ_CHECK(fsm_snapshot_encode(g, &img2, &len2) == 0, "encode");
  FUZZ_CHECK(len2 == len && memcmp(img, img2, len) == 0,
             "restored state encodes differently");
  fuzz_fsm_check(g);
  struct fsm_stats a, b;
  fsm_stats_get(f, &a);
  fsm_stats_get(g, &b);
  FUZZ_CHECK(a.sessions == b.sessions && a.locks_held == b.locks_held &&
                 a.lock_waiters == b.lock_waiters && a.counters == b.counters &&
                 a.elections == b.elections,
             "gauges differ after restore");
  FUZZ_CHECK(fsm_next_deadline(g) == fsm_next_deadline(f),
             "next deadline differs after restore");
  free(img);
  free(img2);
  fsm_free(g);
}

/* An apply's output: answers and events are packed messages that decode. */
static inline void fuzz_fsm_check_output(const struct fsm_output *out) {
  if (out->has_response && !out->response.pending) {
    Synod__Response *r =
        synod__response__unpack(NULL, out->response.len, out->response.data);
    FUZZ_CHECK(r != NULL, "the answer does not decode");
    synod__response__free_unpacked(r, NULL);
  }
  for (size_t i = 0; i < out->events_len; i++) {
    const struct fsm_event *e = &out->events[i];
    if (e->response != NULL) {
      Synod__Response *r =
          synod__response__unpack(NULL, e->response_len, e->response);
      FUZZ_CHECK(r != NULL, "event %zu: the answer does not decode", i);
      synod__response__free_unpacked(r, NULL);
    }
    if (e->event != NULL) {
      Synod__Event *ev = synod__event__unpack(NULL, e->event_len, e->event);
      FUZZ_CHECK(ev != NULL, "event %zu does not decode", i);
      synod__event__free_unpacked(ev, NULL);
    }
  }
}

/* Small limits, so that short inputs reach every "limit reached" path. */
static inline void fuzz_fsm_small_options(struct fsm_options *o) {
  memset(o, 0, sizeof *o);
  o->name_bytes_max = 16;
  o->sessions_max = 4;
  o->locks_max = 4;
  o->counters_max = 4;
  o->elections_max = 3;
  o->waiters_per_lock_max = 2;
  o->candidates_per_election_max = 2;
  o->results_per_session_max = 3;
  o->value_bytes_max = 8;
  o->list_limit_max = 3;
}

#endif /* SYNOD_FUZZ_FSM_H */
