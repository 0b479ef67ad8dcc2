/* The replicated state machine: sessions, exactly-once, locks, counters,
 * elections, time, limits and snapshots, driven through encoded entries
 * exactly as a replica applies them. */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm.h"
#include "fsm.pb-c.h"
#include "fsm_harness.h"
#include "fsm_int.h"
#include "otree.h"
#include "synod.h"

/* ------------------------------------------------------------ harness */

static void h_acquire(struct h *h, uint64_t sid, uint64_t seq, const char *n,
                      uint64_t owner, uint32_t timeout_ms, uint32_t delay) {
  Synod__LockAcquire a = SYNOD__LOCK_ACQUIRE__INIT;
  a.name = (char *)n;
  a.owner_id = owner;
  a.timeout_ms = timeout_ms;
  a.lock_delay_ms = delay;
  REQ(h, sid, seq, LOCK_ACQUIRE, lock_acquire, &a);
}

static void h_release(struct h *h, uint64_t sid, uint64_t seq, const char *n,
                      uint64_t owner) {
  Synod__LockRelease a = SYNOD__LOCK_RELEASE__INIT;
  a.name = (char *)n;
  a.owner_id = owner;
  REQ(h, sid, seq, LOCK_RELEASE, lock_release, &a);
}

static void h_add(struct h *h, uint64_t sid, uint64_t seq, const char *n,
                  int64_t delta, int prev) {
  Synod__CounterAdd a = SYNOD__COUNTER_ADD__INIT;
  a.name = (char *)n;
  a.delta = delta;
  a.return_previous = prev;
  REQ(h, sid, seq, COUNTER_ADD, counter_add, &a);
}

static void h_set(struct h *h, uint64_t sid, uint64_t seq, const char *n,
                  int64_t v) {
  Synod__CounterSet a = SYNOD__COUNTER_SET__INIT;
  a.name = (char *)n;
  a.value = v;
  REQ(h, sid, seq, COUNTER_SET, counter_set, &a);
}

static void h_campaign(struct h *h, uint64_t sid, uint64_t seq, const char *n,
                       const char *value) {
  Synod__ElectionCampaign a = SYNOD__ELECTION_CAMPAIGN__INIT;
  a.name = (char *)n;
  a.value.data = (uint8_t *)value;
  a.value.len = strlen(value);
  REQ(h, sid, seq, ELECTION_CAMPAIGN, election_campaign, &a);
}

static Synod__Response *h_lock_query(struct h *h, const char *n) {
  Synod__Request r = SYNOD__REQUEST__INIT;
  Synod__LockQuery q = SYNOD__LOCK_QUERY__INIT;
  q.name = (char *)n;
  r.body_case = SYNOD__REQUEST__BODY_LOCK_QUERY;
  r.lock_query = &q;
  return h_query(h, &r);
}

static int64_t h_get(struct h *h, const char *n) {
  Synod__Request r = SYNOD__REQUEST__INIT;
  Synod__CounterGet q = SYNOD__COUNTER_GET__INIT;
  q.name = (char *)n;
  r.body_case = SYNOD__REQUEST__BODY_COUNTER_GET;
  r.counter_get = &q;
  Synod__Response *resp = h_query(h, &r);
  ck_assert_ptr_null(resp->error);
  int64_t v = resp->counter_value->value;
  synod__response__free_unpacked(resp, NULL);
  return v;
}

static Synod__Response *h_leader(struct h *h, const char *n) {
  Synod__Request r = SYNOD__REQUEST__INIT;
  Synod__ElectionLeader q = SYNOD__ELECTION_LEADER__INIT;
  q.name = (char *)n;
  r.body_case = SYNOD__REQUEST__BODY_ELECTION_LEADER;
  r.election_leader = &q;
  return h_query(h, &r);
}

static Synod__Response *event_response(const struct fsm_event *e) {
  Synod__Response *r =
      synod__response__unpack(NULL, e->response_len, e->response);
  ck_assert_ptr_nonnull(r);
  return r;
}

static void snapshot(const struct fsm *f, uint8_t **data, size_t *len) {
  ck_assert_int_eq(fsm_snapshot_encode(f, data, len), 0);
}

/* ------------------------------------------------------------ sessions */

START_TEST(session_open_uses_entry_index_as_id_and_default_ttl) {
  struct h h;
  h_init(&h, NULL);
  h.index = 41;
  uint64_t sid = h_open(&h, 0);
  ck_assert_uint_eq(sid, 42);
  ck_assert_uint_eq(h.resp->session_open->ttl_ms, 10000);
  ck_assert_uint_eq(h.out.response.index, 42);
  ck_assert_uint_eq(fsm_next_deadline(h.f), 1000 + 10000 + 1);
  h_close(&h);
}
END_TEST

START_TEST(session_open_ttl_out_of_bounds_is_erange) {
  struct h h;
  h_init(&h, NULL);
  Synod__SessionOpen o = SYNOD__SESSION_OPEN__INIT;
  o.ttl_ms = 999;
  REQ(&h, 0, 0, SESSION_OPEN, session_open, &o);
  ck_assert_int_eq(h_err(&h), SYNOD_ERANGE);
  ck_assert_str_eq(h_msg(&h), "session open: ttl_ms 999 outside 1000..300000");
  o.ttl_ms = 300001;
  REQ(&h, 0, 0, SESSION_OPEN, session_open, &o);
  ck_assert_int_eq(h_err(&h), SYNOD_ERANGE);
  o.ttl_ms = 300000;
  REQ(&h, 0, 0, SESSION_OPEN, session_open, &o);
  ck_assert_int_eq(h_err(&h), 0);
  h_close(&h);
}
END_TEST

/* Alive while time <= keepalive + ttl; expired one millisecond later. */
START_TEST(session_expires_only_when_time_passes_keepalive_plus_ttl) {
  struct h h;
  h_init(&h, NULL);
  uint64_t sid = h_open(&h, 2000); /* keepalive at 1000 */
  h_at(&h, 3000);
  ck_assert_uint_eq(h.out.events_len, 0);
  h_add(&h, sid, 1, "c", 1, 0);
  ck_assert_int_eq(h_err(&h), 0);
  h_at(&h, 3001);
  const struct fsm_event *e = h_event(&h, 0, FSM_EVENT_SESSION_EXPIRED);
  ck_assert_uint_eq(e->session_id, sid);
  Synod__Event *ev = synod__event__unpack(NULL, e->event_len, e->event);
  ck_assert_ptr_nonnull(ev);
  ck_assert_uint_eq(ev->session_expired->session_id, sid);
  synod__event__free_unpacked(ev, NULL);
  h_add(&h, sid, 2, "c", 1, 0);
  ck_assert_int_eq(h_err(&h), SYNOD_ESESSION);
  ck_assert_uint_eq(fsm_next_deadline(h.f), UINT64_MAX);
  h_close(&h);
}
END_TEST

START_TEST(session_ttl_is_known_while_alive_and_zero_after) {
  struct h h;
  h_init(&h, NULL);
  uint64_t sid = h_open(&h, 2000);
  ck_assert_uint_eq(fsm_session_ttl_ms(h.f, sid), 2000);
  ck_assert_uint_eq(fsm_session_ttl_ms(h.f, sid + 100), 0);
  h_at(&h, 3001);
  ck_assert_uint_eq(fsm_session_ttl_ms(h.f, sid), 0);
  h_close(&h);
}
END_TEST

START_TEST(tick_keepalive_extends_session_but_never_revives_it) {
  struct h h;
  h_init(&h, NULL);
  uint64_t a = h_open(&h, 1000), b = h_open(&h, 1000);
  h.time_ms = 1900;
  uint64_t ids[] = {a, 999};
  h_tick(&h, ids, 2); /* unknown ids are ignored */
  h_at(&h, 2500);
  ck_assert_uint_eq(h.out.events_len, 1);
  ck_assert_uint_eq(h_event(&h, 0, FSM_EVENT_SESSION_EXPIRED)->session_id, b);
  h.time_ms = 5000; /* a expired at 2901: this keepalive is too late */
  h_tick(&h, &a, 1);
  ck_assert_uint_eq(h_event(&h, 0, FSM_EVENT_SESSION_EXPIRED)->session_id, a);
  Synod__SessionKeepalive k = SYNOD__SESSION_KEEPALIVE__INIT;
  REQ(&h, a, 0, SESSION_KEEPALIVE, session_keepalive, &k);
  ck_assert_int_eq(h_err(&h), SYNOD_ESESSION);
  h_close(&h);
}
END_TEST

START_TEST(explicit_keepalive_request_resets_deadline) {
  struct h h;
  h_init(&h, NULL);
  uint64_t sid = h_open(&h, 1000);
  h.time_ms = 1800;
  Synod__SessionKeepalive k = SYNOD__SESSION_KEEPALIVE__INIT;
  REQ(&h, sid, 0, SESSION_KEEPALIVE, session_keepalive, &k);
  ck_assert_int_eq(h_err(&h), 0);
  ck_assert_uint_eq(h.resp->session_keepalive->ttl_ms, 1000);
  ck_assert_uint_eq(fsm_next_deadline(h.f), 2801);
  h_close(&h);
}
END_TEST

START_TEST(request_without_or_with_unknown_session_is_esession) {
  struct h h;
  h_init(&h, NULL);
  h_acquire(&h, 0, 1, "l", 1, 0, 0);
  ck_assert_int_eq(h_err(&h), SYNOD_ESESSION);
  ck_assert_str_eq(h_msg(&h), "lock acquire: needs a session");
  h_acquire(&h, 77, 1, "l", 1, 0, 0);
  ck_assert_int_eq(h_err(&h), SYNOD_ESESSION);
  ck_assert_str_eq(h_msg(&h), "lock acquire: session 77 unknown or expired");
  h_close(&h);
}
END_TEST

/* A clean close is the holder saying it is done: no lock-delay. */
START_TEST(session_close_releases_locks_without_lock_delay) {
  struct h h;
  h_init(&h, NULL);
  uint64_t a = h_open(&h, 5000), b = h_open(&h, 5000);
  h_acquire(&h, a, 1, "l", 1, 0, 30000);
  h_acquire(&h, b, 1, "l", 1, 1000, 0);
  ck_assert(h.out.response.pending);
  Synod__SessionClose c = SYNOD__SESSION_CLOSE__INIT;
  REQ(&h, a, 2, SESSION_CLOSE, session_close, &c);
  ck_assert_int_eq(h_err(&h), 0);
  const struct fsm_event *e = h_event(&h, 0, FSM_EVENT_LOCK_GRANTED);
  ck_assert_uint_eq(e->session_id, b);
  REQ(&h, a, 3, SESSION_CLOSE, session_close, &c);
  ck_assert_int_eq(h_err(&h), SYNOD_ESESSION);
  h_close(&h);
}
END_TEST

START_TEST(time_never_moves_back_on_a_lower_stamp) {
  struct h h;
  h_init(&h, NULL);
  h_at(&h, 5000);
  h_at(&h, 4000);
  ck_assert_uint_eq(fsm_time_ms(h.f), 5000);
  uint64_t sid = h_open(&h, 1000);
  (void)sid;
  ck_assert_uint_eq(fsm_next_deadline(h.f), 6001);
  h_close(&h);
}
END_TEST

/* ------------------------------------------------------------ exactly-once */

/* The client's increment is committed, the leader dies before answering,
 * the client retries the same (session, sequence) with the new leader: the
 * retry gets the first answer byte for byte and counts once. */
START_TEST(retried_increment_after_failover_counts_once) {
  struct h h;
  h_init(&h, NULL);
  uint64_t sid = h_open(&h, 10000);
  h_add(&h, sid, 1, "jobs", 1, 0);
  ck_assert_int_eq(h.resp->counter_value->value, 1);
  uint8_t first[64];
  size_t first_len = h.out.response.len;
  memcpy(first, h.out.response.data, first_len);
  h_add(&h, sid, 2, "jobs", 5, 0); /* another request in between */
  h_add(&h, sid, 1, "jobs", 1, 0); /* the retry, at a later index */
  ck_assert_uint_eq(h.out.response.len, first_len);
  ck_assert_mem_eq(h.out.response.data, first, first_len);
  ck_assert_uint_eq(h.out.response.index, h.index);
  ck_assert_int_eq(h_get(&h, "jobs"), 6);
  h_close(&h);
}
END_TEST

START_TEST(retried_error_answer_is_replayed_not_reapplied) {
  struct h h;
  h_init(&h, NULL);
  uint64_t a = h_open(&h, 10000), b = h_open(&h, 10000);
  h_acquire(&h, a, 1, "l", 1, 0, 0);
  h_acquire(&h, b, 1, "l", 1, 0, 0);
  ck_assert_int_eq(h_err(&h), SYNOD_ELOCKED);
  h_release(&h, a, 2, "l", 1);
  h_acquire(&h, b, 1, "l", 1, 0, 0); /* retry: still the recorded ELOCKED */
  ck_assert_int_eq(h_err(&h), SYNOD_ELOCKED);
  Synod__Response *q = h_lock_query(&h, "l");
  ck_assert(!q->lock_query->held);
  synod__response__free_unpacked(q, NULL);
  h_close(&h);
}
END_TEST

START_TEST(sequence_older_than_window_is_esequence) {
  struct fsm_options o = {.results_per_session_max = 4};
  struct h h;
  h_init(&h, &o);
  uint64_t sid = h_open(&h, 10000);
  for (uint64_t seq = 1; seq <= 6; seq++) {
    h_add(&h, sid, seq, "c", 1, 0);
  }
  h_add(&h, sid, 2, "c", 1, 0);
  ck_assert_int_eq(h_err(&h), SYNOD_ESEQUENCE);
  ck_assert_str_eq(h_msg(&h), "counter add: sequence 2 is at or below "
                              "session 1's window floor 2");
  h_add(&h, sid, 3, "c", 1, 0); /* still in the window: replayed */
  ck_assert_int_eq(h_err(&h), 0);
  ck_assert_int_eq(h.resp->counter_value->value, 3);
  ck_assert_int_eq(h_get(&h, "c"), 6);
  h_close(&h);
}
END_TEST

/* An acquire queued while its session goes on writing: its record is
 * pushed out of the window, yet a resend of it (libsynod's, after a
 * failover) is pending, not SYNOD_ESEQUENCE, and the grant answers it.
 * (A review found the resend refused and the waiter granted later all
 * the same: the lock held by a session whose client thought it failed.)
 * Any other request below the floor is still SYNOD_ESEQUENCE. */
START_TEST(a_queued_acquire_resent_below_the_floor_is_pending) {
  struct fsm_options o = {.results_per_session_max = 4};
  struct h h;
  h_init(&h, &o);
  uint64_t a = h_open(&h, 60000), b = h_open(&h, 60000);
  h_acquire(&h, a, 1, "l", 1, 0, 0);
  h_acquire(&h, b, 1, "l", 7, 50000, 0);
  ck_assert(h.out.response.pending);
  for (uint64_t seq = 2; seq <= 6; seq++) {
    h_add(&h, b, seq, "c", 1, 0);
    ck_assert_int_eq(h_err(&h), 0);
  }
  h_acquire(&h, b, 1, "l", 7, 50000, 0); /* the resend */
  ck_assert(h.out.response.pending);
  ck_assert_uint_eq(h.out.events_len, 0);
  h_add(&h, b, 2, "c", 1, 0);
  ck_assert_int_eq(h_err(&h), SYNOD_ESEQUENCE);
  h_release(&h, a, 2, "l", 1);
  ck_assert_int_eq(h_err(&h), 0);
  const struct fsm_event *e = h_event(&h, 0, FSM_EVENT_LOCK_GRANTED);
  ck_assert_uint_eq(e->session_id, b);
  ck_assert_uint_eq(e->sequence, 1);
  h_acquire(&h, b, 1, "l", 7, 50000, 0); /* granted: no longer queued */
  ck_assert(!h.out.response.pending);
  ck_assert_int_eq(h_err(&h), SYNOD_ESEQUENCE);
  h_close(&h);
}
END_TEST

/* Requests may commit out of order (pipelining across a failover): a new
 * sequence below the newest one but above the floor is still applied. */
START_TEST(out_of_order_sequence_above_floor_is_applied_once) {
  struct h h;
  h_init(&h, NULL);
  uint64_t sid = h_open(&h, 10000);
  h_add(&h, sid, 2, "c", 10, 0);
  h_add(&h, sid, 1, "c", 1, 0);
  ck_assert_int_eq(h.resp->counter_value->value, 11);
  h_add(&h, sid, 1, "c", 1, 0);
  ck_assert_int_eq(h_get(&h, "c"), 11);
  h_close(&h);
}
END_TEST

START_TEST(sessionless_counter_ops_apply_every_time) {
  struct h h;
  h_init(&h, NULL);
  h_add(&h, 0, 1, "c", 1, 0);
  h_add(&h, 0, 1, "c", 1, 0);
  ck_assert_int_eq(h.resp->counter_value->value, 2);
  h_close(&h);
}
END_TEST

/* ------------------------------------------------------------ locks */

START_TEST(lock_grant_token_is_the_entry_index) {
  struct h h;
  h_init(&h, NULL);
  uint64_t sid = h_open(&h, 10000);
  h_acquire(&h, sid, 1, "db", 7, 0, 0);
  ck_assert_int_eq(h_err(&h), 0);
  ck_assert_uint_eq(h.resp->lock_acquire->token, h.index);
  ck_assert_uint_eq(h.resp->lock_acquire->hold_count, 1);
  h_close(&h);
}
END_TEST

START_TEST(lock_reentrant_acquire_counts_holds_and_keeps_token) {
  struct h h;
  h_init(&h, NULL);
  uint64_t sid = h_open(&h, 10000);
  h_acquire(&h, sid, 1, "db", 7, 0, 0);
  uint64_t token = h.resp->lock_acquire->token;
  h_acquire(&h, sid, 2, "db", 7, 0, 0);
  ck_assert_uint_eq(h.resp->lock_acquire->token, token);
  ck_assert_uint_eq(h.resp->lock_acquire->hold_count, 2);
  h_release(&h, sid, 3, "db", 7);
  ck_assert_uint_eq(h.resp->lock_release->hold_count, 1);
  Synod__Response *q = h_lock_query(&h, "db");
  ck_assert(q->lock_query->held);
  ck_assert_uint_eq(q->lock_query->hold_count, 1);
  synod__response__free_unpacked(q, NULL);
  h_release(&h, sid, 4, "db", 7);
  ck_assert_uint_eq(h.resp->lock_release->hold_count, 0);
  q = h_lock_query(&h, "db");
  ck_assert(!q->lock_query->held);
  synod__response__free_unpacked(q, NULL);
  h_close(&h);
}
END_TEST

/* The same session with another owner id is another owner. */
START_TEST(lock_try_acquire_held_by_another_owner_is_elocked) {
  struct h h;
  h_init(&h, NULL);
  uint64_t sid = h_open(&h, 10000);
  h_acquire(&h, sid, 1, "db", 1, 0, 0);
  h_acquire(&h, sid, 2, "db", 2, 0, 0);
  ck_assert_int_eq(h_err(&h), SYNOD_ELOCKED);
  ck_assert_str_eq(h_msg(&h), "lock acquire: \"db\" held by session 1 owner 1");
  h_close(&h);
}
END_TEST

START_TEST(lock_release_by_non_holder_is_enotholder) {
  struct h h;
  h_init(&h, NULL);
  uint64_t a = h_open(&h, 10000), b = h_open(&h, 10000);
  h_release(&h, a, 1, "db", 1);
  ck_assert_int_eq(h_err(&h), SYNOD_ENOTHOLDER);
  ck_assert_str_eq(h_msg(&h), "lock release: \"db\" is not held");
  h_acquire(&h, a, 2, "db", 1, 0, 0);
  h_release(&h, b, 1, "db", 1);
  ck_assert_int_eq(h_err(&h), SYNOD_ENOTHOLDER);
  h_release(&h, a, 3, "db", 2);
  ck_assert_int_eq(h_err(&h), SYNOD_ENOTHOLDER);
  Synod__Response *q = h_lock_query(&h, "db");
  ck_assert_uint_eq(q->lock_query->session_id, a);
  synod__response__free_unpacked(q, NULL);
  h_close(&h);
}
END_TEST

START_TEST(lock_waiters_are_granted_in_fifo_order_with_growing_tokens) {
  struct h h;
  h_init(&h, NULL);
  uint64_t s[4];
  for (int i = 0; i < 4; i++) {
    s[i] = h_open(&h, 60000);
  }
  h_acquire(&h, s[0], 1, "q", 1, 0, 0);
  uint64_t token = h.resp->lock_acquire->token;
  for (int i = 1; i < 4; i++) {
    h_acquire(&h, s[i], 1, "q", 1, 30000, 0);
    ck_assert(h.out.response.pending);
    ck_assert_ptr_null(h.out.response.data);
  }
  for (int i = 0; i < 3; i++) {
    h_release(&h, s[i], 2, "q", 1);
    ck_assert_int_eq(h_err(&h), 0);
    const struct fsm_event *e = h_event(&h, 0, FSM_EVENT_LOCK_GRANTED);
    ck_assert_uint_eq(e->session_id, s[i + 1]);
    ck_assert_uint_eq(e->sequence, 1);
    ck_assert_str_eq(e->name, "q");
    Synod__Response *r = event_response(e);
    ck_assert_uint_gt(r->lock_acquire->token, token);
    ck_assert_uint_eq(r->lock_acquire->token, h.index);
    token = r->lock_acquire->token;
    synod__response__free_unpacked(r, NULL);
    Synod__Event *ev = synod__event__unpack(NULL, e->event_len, e->event);
    ck_assert_uint_eq(ev->lock_granted->token, token);
    ck_assert_uint_eq(ev->lock_granted->session_id, s[i + 1]);
    synod__event__free_unpacked(ev, NULL);
  }
  h_close(&h);
}
END_TEST

START_TEST(lock_acquire_timeout_yields_etimedout_event) {
  struct h h;
  h_init(&h, NULL);
  uint64_t a = h_open(&h, 60000), b = h_open(&h, 60000);
  h_acquire(&h, a, 1, "l", 1, 0, 0);
  h_acquire(&h, b, 1, "l", 1, 500, 0); /* at 1000: due 1500 */
  ck_assert_uint_eq(fsm_next_deadline(h.f), 1500);
  h_at(&h, 1499);
  ck_assert_uint_eq(h.out.events_len, 0);
  h_at(&h, 1500);
  const struct fsm_event *e = h_event(&h, 0, FSM_EVENT_LOCK_TIMEOUT);
  ck_assert_uint_eq(e->session_id, b);
  ck_assert_uint_eq(e->sequence, 1);
  Synod__Response *r = event_response(e);
  ck_assert_int_eq(r->error->code, SYNOD_ETIMEDOUT);
  ck_assert_str_eq(r->error->message, "lock acquire: \"l\" not granted by "
                                      "1500 ms");
  synod__response__free_unpacked(r, NULL);
  /* The retry of the timed-out acquire replays the timeout. */
  h_acquire(&h, b, 1, "l", 1, 500, 0);
  ck_assert_int_eq(h_err(&h), SYNOD_ETIMEDOUT);
  Synod__Response *q = h_lock_query(&h, "l");
  ck_assert_uint_eq(q->lock_query->waiters, 0);
  synod__response__free_unpacked(q, NULL);
  h_close(&h);
}
END_TEST

/* A retried acquire that still waits keeps its one place in the queue;
 * the grant answers it, and a later retry replays the grant. */
START_TEST(lock_retried_pending_acquire_stays_queued_once) {
  struct h h;
  h_init(&h, NULL);
  uint64_t a = h_open(&h, 60000), b = h_open(&h, 60000);
  h_acquire(&h, a, 1, "l", 1, 0, 0);
  h_acquire(&h, b, 1, "l", 1, 5000, 0);
  h_acquire(&h, b, 1, "l", 1, 5000, 0);
  ck_assert(h.out.response.pending);
  Synod__Response *q = h_lock_query(&h, "l");
  ck_assert_uint_eq(q->lock_query->waiters, 1);
  synod__response__free_unpacked(q, NULL);
  h_release(&h, a, 2, "l", 1);
  uint64_t token = h.index;
  h_event(&h, 0, FSM_EVENT_LOCK_GRANTED);
  h_acquire(&h, b, 1, "l", 1, 5000, 0);
  ck_assert_int_eq(h_err(&h), 0);
  ck_assert_uint_eq(h.resp->lock_acquire->token, token);
  ck_assert_uint_eq(h.resp->lock_acquire->hold_count, 1);
  h_close(&h);
}
END_TEST

START_TEST(lock_second_wait_by_same_owner_is_ebusy) {
  struct h h;
  h_init(&h, NULL);
  uint64_t a = h_open(&h, 60000), b = h_open(&h, 60000);
  h_acquire(&h, a, 1, "l", 1, 0, 0);
  h_acquire(&h, b, 1, "l", 9, 5000, 0);
  h_acquire(&h, b, 2, "l", 9, 5000, 0);
  ck_assert_int_eq(h_err(&h), SYNOD_EBUSY);
  h_close(&h);
}
END_TEST

START_TEST(lock_holder_expiry_grants_next_waiter_with_larger_token) {
  struct h h;
  h_init(&h, NULL);
  uint64_t a = h_open(&h, 1000), b = h_open(&h, 60000);
  h_acquire(&h, a, 1, "l", 1, 0, 0);
  uint64_t token = h.resp->lock_acquire->token;
  h_acquire(&h, b, 1, "l", 1, 30000, 0);
  h_at(&h, 2001);
  h_event(&h, 0, FSM_EVENT_SESSION_EXPIRED);
  const struct fsm_event *e = h_event(&h, 1, FSM_EVENT_LOCK_GRANTED);
  ck_assert_uint_eq(e->session_id, b);
  Synod__Response *r = event_response(e);
  ck_assert_uint_gt(r->lock_acquire->token, token);
  synod__response__free_unpacked(r, NULL);
  h_close(&h);
}
END_TEST

/* Lock-delay (Chubby): after the holder's session expires, nobody gets the
 * lock until the delay has passed, counted from the expiry deadline. */
START_TEST(lock_delay_holds_lock_free_until_delay_passes) {
  struct h h;
  h_init(&h, NULL);
  uint64_t a = h_open(&h, 1000), b = h_open(&h, 60000), c = h_open(&h, 60000);
  h_acquire(&h, a, 1, "l", 1, 0, 5000);
  h_acquire(&h, b, 1, "l", 1, 30000, 0);
  h_at(&h, 2001); /* a expires: delay until 7001 */
  ck_assert_uint_eq(h.out.events_len, 1);
  h_event(&h, 0, FSM_EVENT_SESSION_EXPIRED);
  ck_assert_uint_eq(fsm_next_deadline(h.f), 7001);
  h_acquire(&h, c, 1, "l", 1, 0, 0);
  ck_assert_int_eq(h_err(&h), SYNOD_ELOCKED);
  ck_assert_str_eq(h_msg(&h),
                   "lock acquire: \"l\" in lock-delay until 7001 ms");
  Synod__Response *q = h_lock_query(&h, "l");
  ck_assert(!q->lock_query->held);
  ck_assert_uint_eq(q->lock_query->waiters, 1);
  synod__response__free_unpacked(q, NULL);
  h_at(&h, 7000);
  ck_assert_uint_eq(h.out.events_len, 0);
  h_at(&h, 7001);
  ck_assert_uint_eq(h_event(&h, 0, FSM_EVENT_LOCK_GRANTED)->session_id, b);
  h_close(&h);
}
END_TEST

/* A lock-delay that ends with nobody waiting deletes the lock. */
START_TEST(lock_delay_without_waiters_ends_with_lock_deleted) {
  struct h h;
  h_init(&h, NULL);
  uint64_t a = h_open(&h, 1000);
  h_acquire(&h, a, 1, "l", 1, 0, 100);
  h_at(&h, 5000); /* expiry at 2001 and delay end at 2101 both pass */
  ck_assert_uint_eq(h.out.events_len, 1);
  ck_assert_uint_eq(fsm_next_deadline(h.f), UINT64_MAX);
  ck_assert_uint_eq(h.f->locks.count, 0);
  h_close(&h);
}
END_TEST

START_TEST(lock_waiters_of_an_expired_session_are_canceled) {
  struct h h;
  h_init(&h, NULL);
  uint64_t a = h_open(&h, 60000), b = h_open(&h, 1000);
  h_acquire(&h, a, 1, "l", 1, 0, 0);
  h_acquire(&h, b, 1, "l", 1, 30000, 0);
  h_at(&h, 2001);
  h_event(&h, 0, FSM_EVENT_SESSION_EXPIRED);
  const struct fsm_event *e = h_event(&h, 1, FSM_EVENT_LOCK_CANCELED);
  ck_assert_uint_eq(e->session_id, b);
  Synod__Response *r = event_response(e);
  ck_assert_int_eq(r->error->code, SYNOD_ESESSION);
  synod__response__free_unpacked(r, NULL);
  h_release(&h, a, 2, "l", 1);
  ck_assert_uint_eq(h.out.events_len, 0);
  ck_assert_uint_eq(h.f->locks.count, 0);
  h_close(&h);
}
END_TEST

/* Two grants of one name in one entry (expiry, then a release by the new
 * holder) still get strictly growing tokens. */
START_TEST(lock_two_grants_in_one_entry_get_distinct_tokens) {
  struct h h;
  h_init(&h, NULL);
  uint64_t a = h_open(&h, 1000), b = h_open(&h, 60000), c = h_open(&h, 60000);
  h_acquire(&h, a, 1, "l", 1, 0, 0);
  h_acquire(&h, b, 1, "l", 1, 30000, 0);
  h_acquire(&h, c, 1, "l", 1, 30000, 0);
  h.time_ms = 2001;
  h_release(&h, b, 2, "l", 1); /* b is granted by a's expiry first */
  ck_assert_int_eq(h_err(&h), 0);
  Synod__Response *r1 = event_response(h_event(&h, 1, FSM_EVENT_LOCK_GRANTED));
  Synod__Response *r2 = event_response(h_event(&h, 2, FSM_EVENT_LOCK_GRANTED));
  ck_assert_uint_eq(r1->lock_acquire->token, h.index);
  ck_assert_uint_eq(r2->lock_acquire->token, h.index + 1);
  synod__response__free_unpacked(r1, NULL);
  synod__response__free_unpacked(r2, NULL);
  /* The next grant anywhere stays above every token issued so far. */
  h_acquire(&h, c, 2, "other", 1, 0, 0);
  ck_assert_uint_eq(h.resp->lock_acquire->token, h.index + 1);
  h_close(&h);
}
END_TEST

START_TEST(lock_check_tells_current_token_from_stale) {
  struct h h;
  h_init(&h, NULL);
  uint64_t a = h_open(&h, 60000), b = h_open(&h, 60000);
  h_acquire(&h, a, 1, "l", 1, 0, 0);
  uint64_t old = h.resp->lock_acquire->token;
  h_acquire(&h, b, 1, "l", 1, 30000, 0);
  h_release(&h, a, 2, "l", 1);
  uint64_t cur = h.index;
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__LockCheck chk = SYNOD__LOCK_CHECK__INIT;
  chk.name = "l";
  chk.token = old;
  req.body_case = SYNOD__REQUEST__BODY_LOCK_CHECK;
  req.lock_check = &chk;
  Synod__Response *r = h_query(&h, &req);
  ck_assert(!r->lock_check->current);
  ck_assert_uint_eq(r->lock_check->current_token, cur);
  synod__response__free_unpacked(r, NULL);
  chk.token = cur;
  r = h_query(&h, &req);
  ck_assert(r->lock_check->current);
  synod__response__free_unpacked(r, NULL);
  chk.name = "free";
  chk.token = 0;
  r = h_query(&h, &req);
  ck_assert(!r->lock_check->current);
  ck_assert_uint_eq(r->lock_check->current_token, 0);
  synod__response__free_unpacked(r, NULL);
  h_close(&h);
}
END_TEST

START_TEST(lock_query_reports_holder_token_and_waiters) {
  struct h h;
  h_init(&h, NULL);
  uint64_t a = h_open(&h, 60000), b = h_open(&h, 60000);
  h_acquire(&h, a, 1, "l", 42, 0, 0);
  uint64_t token = h.index;
  h_acquire(&h, b, 1, "l", 1, 30000, 0);
  Synod__Response *q = h_lock_query(&h, "l");
  ck_assert(q->lock_query->held);
  ck_assert_uint_eq(q->lock_query->session_id, a);
  ck_assert_uint_eq(q->lock_query->owner_id, 42);
  ck_assert_uint_eq(q->lock_query->token, token);
  ck_assert_uint_eq(q->lock_query->hold_count, 1);
  ck_assert_uint_eq(q->lock_query->waiters, 1);
  synod__response__free_unpacked(q, NULL);
  h_close(&h);
}
END_TEST

START_TEST(lock_name_must_be_1_to_256_bytes_of_utf8) {
  struct h h;
  h_init(&h, NULL);
  uint64_t sid = h_open(&h, 60000);
  char name[301];
  memset(name, 'x', 300);
  name[300] = '\0';
  h_acquire(&h, sid, 1, name, 1, 0, 0);
  ck_assert_int_eq(h_err(&h), SYNOD_EINVAL);
  ck_assert_str_eq(h_msg(&h), "lock acquire: name length 300 exceeds 256");
  h_acquire(&h, sid, 2, "", 1, 0, 0);
  ck_assert_str_eq(h_msg(&h), "lock acquire: name is empty");
  h_acquire(&h, sid, 3, "ab\xc0\xaf", 1, 0, 0); /* overlong '/' */
  ck_assert_int_eq(h_err(&h), SYNOD_EINVAL);
  ck_assert_str_eq(h_msg(&h), "lock acquire: name is not valid UTF-8 (byte 2)");
  h_acquire(&h, sid, 4, "\xed\xa0\x80", 1, 0, 0); /* a surrogate */
  ck_assert_int_eq(h_err(&h), SYNOD_EINVAL);
  name[256] = '\0';
  h_acquire(&h, sid, 5, name, 1, 0, 0);
  ck_assert_int_eq(h_err(&h), 0);
  h_acquire(&h, sid, 6, "z\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x92", 1, 0, 0);
  ck_assert_int_eq(h_err(&h), 0);
  h_close(&h);
}
END_TEST

START_TEST(lock_delay_above_maximum_is_erange) {
  struct h h;
  h_init(&h, NULL);
  uint64_t sid = h_open(&h, 60000);
  h_acquire(&h, sid, 1, "l", 1, 0, 60001);
  ck_assert_int_eq(h_err(&h), SYNOD_ERANGE);
  ck_assert_str_eq(h_msg(&h),
                   "lock acquire: lock_delay_ms 60001 exceeds 60000");
  h_close(&h);
}
END_TEST

/* ------------------------------------------------------------ counters */

START_TEST(counter_get_of_missing_counter_is_zero_and_creates_nothing) {
  struct h h;
  h_init(&h, NULL);
  ck_assert_int_eq(h_get(&h, "nope"), 0);
  ck_assert_uint_eq(h.f->counters.count, 0);
  h_close(&h);
}
END_TEST

START_TEST(counter_set_add_and_get_and_get_and_add) {
  struct h h;
  h_init(&h, NULL);
  h_set(&h, 0, 0, "c", 40);
  ck_assert_int_eq(h.resp->counter_value->value, 40);
  h_add(&h, 0, 0, "c", 2, 0);
  ck_assert_int_eq(h.resp->counter_value->value, 42);
  h_add(&h, 0, 0, "c", -1, 1);
  ck_assert_int_eq(h.resp->counter_value->value, 42);
  ck_assert_int_eq(h_get(&h, "c"), 41);
  h_close(&h);
}
END_TEST

START_TEST(counter_cas_swaps_only_on_expected_value) {
  struct h h;
  h_init(&h, NULL);
  Synod__CounterCas cas = SYNOD__COUNTER_CAS__INIT;
  cas.name = "slot";
  cas.expect = 5;
  cas.update = 6;
  REQ(&h, 0, 0, COUNTER_CAS, counter_cas, &cas);
  ck_assert(!h.resp->counter_cas->swapped);
  ck_assert_int_eq(h.resp->counter_cas->value, 0);
  ck_assert_uint_eq(h.f->counters.count, 0);
  cas.expect = 0;
  REQ(&h, 0, 0, COUNTER_CAS, counter_cas, &cas);
  ck_assert(h.resp->counter_cas->swapped);
  ck_assert_int_eq(h.resp->counter_cas->value, 6);
  REQ(&h, 0, 0, COUNTER_CAS, counter_cas, &cas);
  ck_assert(!h.resp->counter_cas->swapped);
  ck_assert_int_eq(h.resp->counter_cas->value, 6);
  h_close(&h);
}
END_TEST

START_TEST(counter_add_overflow_both_ways_is_eoverflow_and_changes_nothing) {
  struct h h;
  h_init(&h, NULL);
  h_set(&h, 0, 0, "hi", INT64_MAX);
  h_add(&h, 0, 0, "hi", 1, 0);
  ck_assert_int_eq(h_err(&h), SYNOD_EOVERFLOW);
  ck_assert_str_eq(h_msg(&h), "counter add: \"hi\": 9223372036854775807 + 1 "
                              "overflows int64");
  ck_assert_int_eq(h_get(&h, "hi"), INT64_MAX);
  h_set(&h, 0, 0, "lo", INT64_MIN);
  h_add(&h, 0, 0, "lo", -1, 0);
  ck_assert_int_eq(h_err(&h), SYNOD_EOVERFLOW);
  ck_assert_int_eq(h_get(&h, "lo"), INT64_MIN);
  h_add(&h, 0, 0, "new", INT64_MIN, 0);
  ck_assert_int_eq(h_err(&h), 0);
  h_add(&h, 0, 0, "new", -1, 1);
  ck_assert_int_eq(h_err(&h), SYNOD_EOVERFLOW);
  h_close(&h);
}
END_TEST

START_TEST(counter_delete_reports_whether_it_existed) {
  struct h h;
  h_init(&h, NULL);
  Synod__CounterDelete d = SYNOD__COUNTER_DELETE__INIT;
  d.name = "c";
  h_set(&h, 0, 0, "c", 3);
  REQ(&h, 0, 0, COUNTER_DELETE, counter_delete, &d);
  ck_assert(h.resp->counter_delete->existed);
  REQ(&h, 0, 0, COUNTER_DELETE, counter_delete, &d);
  ck_assert(!h.resp->counter_delete->existed);
  ck_assert_int_eq(h_get(&h, "c"), 0);
  h_close(&h);
}
END_TEST

static Synod__Response *h_list(struct h *h, const char *prefix,
                               const char *after, uint32_t limit) {
  Synod__Request r = SYNOD__REQUEST__INIT;
  Synod__CounterList l = SYNOD__COUNTER_LIST__INIT;
  l.prefix = (char *)prefix;
  l.start_after = (char *)after;
  l.limit = limit;
  r.body_case = SYNOD__REQUEST__BODY_COUNTER_LIST;
  r.counter_list = &l;
  return h_query(h, &r);
}

START_TEST(counter_list_paginates_in_name_order_within_prefix) {
  struct h h;
  h_init(&h, NULL);
  const char *names[] = {"job/b", "a", "job/a", "job/c", "jobz", "job/"};
  for (int i = 0; i < 6; i++) {
    h_set(&h, 0, 0, names[i], i);
  }
  Synod__Response *r = h_list(&h, "job/", "", 2);
  ck_assert_uint_eq(r->counter_list->n_counters, 2);
  ck_assert_str_eq(r->counter_list->counters[0]->name, "job/");
  ck_assert_str_eq(r->counter_list->counters[1]->name, "job/a");
  ck_assert(r->counter_list->more);
  synod__response__free_unpacked(r, NULL);
  r = h_list(&h, "job/", "job/a", 2);
  ck_assert_uint_eq(r->counter_list->n_counters, 2);
  ck_assert_str_eq(r->counter_list->counters[0]->name, "job/b");
  ck_assert_str_eq(r->counter_list->counters[1]->name, "job/c");
  ck_assert_int_eq(r->counter_list->counters[1]->value, 3);
  ck_assert(!r->counter_list->more);
  synod__response__free_unpacked(r, NULL);
  r = h_list(&h, "", "", 0);
  ck_assert_uint_eq(r->counter_list->n_counters, 6);
  ck_assert_str_eq(r->counter_list->counters[0]->name, "a");
  ck_assert_str_eq(r->counter_list->counters[5]->name, "jobz");
  ck_assert(!r->counter_list->more);
  synod__response__free_unpacked(r, NULL);
  r = h_list(&h, "", "job/c", 0);
  ck_assert_uint_eq(r->counter_list->n_counters, 1);
  ck_assert_str_eq(r->counter_list->counters[0]->name, "jobz");
  synod__response__free_unpacked(r, NULL);
  h_close(&h);
}
END_TEST

/* ------------------------------------------------------------ elections */

START_TEST(election_first_candidate_leads_and_resign_passes_office_fifo) {
  struct h h;
  h_init(&h, NULL);
  uint64_t a = h_open(&h, 60000), b = h_open(&h, 60000), c = h_open(&h, 60000);
  h_campaign(&h, a, 1, "e", "pod-a");
  uint64_t rev_a = h.index;
  ck_assert(h.resp->election_campaign->leader);
  ck_assert_uint_eq(h.resp->election_campaign->info->revision, rev_a);
  const struct fsm_event *e = h_event(&h, 0, FSM_EVENT_ELECTION_CHANGED);
  ck_assert_str_eq(e->name, "e");
  h_campaign(&h, b, 1, "e", "pod-b");
  ck_assert(!h.resp->election_campaign->leader);
  ck_assert_uint_eq(h.resp->election_campaign->info->session_id, a);
  ck_assert_uint_eq(h.out.events_len, 0);
  h_campaign(&h, c, 1, "e", "pod-c");
  Synod__ElectionResign rs = SYNOD__ELECTION_RESIGN__INIT;
  rs.name = "e";
  REQ(&h, a, 2, ELECTION_RESIGN, election_resign, &rs);
  ck_assert_int_eq(h_err(&h), 0);
  ck_assert_uint_eq(h.resp->election_leader->session_id, b);
  ck_assert_uint_eq(h.resp->election_leader->revision, h.index);
  e = h_event(&h, 0, FSM_EVENT_ELECTION_CHANGED);
  Synod__Event *ev = synod__event__unpack(NULL, e->event_len, e->event);
  ck_assert_uint_eq(ev->election_changed->info->session_id, b);
  ck_assert_mem_eq(ev->election_changed->info->value.data, "pod-b", 5);
  ck_assert_uint_eq(ev->election_changed->info->candidates, 2);
  synod__event__free_unpacked(ev, NULL);
  REQ(&h, a, 3, ELECTION_RESIGN, election_resign, &rs);
  ck_assert_int_eq(h_err(&h), SYNOD_ENOTFOUND);
  REQ(&h, c, 2, ELECTION_RESIGN, election_resign, &rs); /* not leader */
  ck_assert_uint_eq(h.out.events_len, 0);
  REQ(&h, b, 2, ELECTION_RESIGN, election_resign, &rs);
  ck_assert(!h.resp->election_leader->has_leader);
  Synod__Response *r = h_leader(&h, "e");
  ck_assert(!r->election_leader->has_leader);
  ck_assert_str_eq(r->election_leader->name, "e");
  synod__response__free_unpacked(r, NULL);
  ck_assert_uint_eq(h.f->elections.count, 0);
  h_close(&h);
}
END_TEST

START_TEST(election_leader_expiry_hands_office_to_next_candidate) {
  struct h h;
  h_init(&h, NULL);
  uint64_t a = h_open(&h, 1000), b = h_open(&h, 60000);
  h_campaign(&h, a, 1, "e", "pod-a");
  h_campaign(&h, b, 1, "e", "pod-b");
  h_at(&h, 2001);
  h_event(&h, 0, FSM_EVENT_SESSION_EXPIRED);
  h_event(&h, 1, FSM_EVENT_ELECTION_CHANGED);
  Synod__Response *r = h_leader(&h, "e");
  ck_assert_uint_eq(r->election_leader->session_id, b);
  ck_assert_uint_eq(r->election_leader->revision, h.index);
  ck_assert_uint_eq(r->election_leader->candidates, 1);
  synod__response__free_unpacked(r, NULL);
  h_close(&h);
}
END_TEST

START_TEST(election_recampaign_updates_value_in_place) {
  struct h h;
  h_init(&h, NULL);
  uint64_t a = h_open(&h, 60000), b = h_open(&h, 60000);
  h_campaign(&h, a, 1, "e", "old");
  uint64_t rev = h.index;
  h_campaign(&h, b, 1, "e", "pod-b");
  h_campaign(&h, a, 2, "e", "new-address");
  ck_assert(h.resp->election_campaign->leader);
  ck_assert_uint_eq(h.resp->election_campaign->info->revision, rev);
  ck_assert_uint_eq(h.resp->election_campaign->info->candidates, 2);
  h_event(&h, 0, FSM_EVENT_ELECTION_CHANGED);
  h_campaign(&h, b, 2, "e", "pod-b2"); /* not leader: no event */
  ck_assert_uint_eq(h.out.events_len, 0);
  Synod__Response *r = h_leader(&h, "e");
  ck_assert_uint_eq(r->election_leader->value.len, 11);
  ck_assert_mem_eq(r->election_leader->value.data, "new-address", 11);
  synod__response__free_unpacked(r, NULL);
  h_close(&h);
}
END_TEST

START_TEST(election_value_over_limit_is_elimit) {
  struct h h;
  h_init(&h, NULL);
  uint64_t a = h_open(&h, 60000);
  char big[1026];
  memset(big, 'v', 1025);
  big[1025] = '\0';
  h_campaign(&h, a, 1, "e", big);
  ck_assert_int_eq(h_err(&h), SYNOD_ELIMIT);
  ck_assert_str_eq(h_msg(&h), "election campaign: value length 1025 exceeds "
                              "1024");
  big[1024] = '\0';
  h_campaign(&h, a, 2, "e", big);
  ck_assert_int_eq(h_err(&h), 0);
  h_close(&h);
}
END_TEST

/* ------------------------------------------------------------ limits */

START_TEST(limits_on_sessions_locks_counters_waiters_candidates) {
  struct fsm_options o = {.sessions_max = 2,
                          .locks_max = 1,
                          .counters_max = 1,
                          .waiters_per_lock_max = 1,
                          .candidates_per_election_max = 1,
                          .elections_max = 1};
  struct h h;
  h_init(&h, &o);
  uint64_t a = h_open(&h, 60000), b = h_open(&h, 60000);
  Synod__SessionOpen so = SYNOD__SESSION_OPEN__INIT;
  REQ(&h, 0, 0, SESSION_OPEN, session_open, &so);
  ck_assert_int_eq(h_err(&h), SYNOD_ELIMIT);
  ck_assert_str_eq(h_msg(&h), "session open: sessions_max 2 reached");
  h_acquire(&h, a, 1, "l1", 1, 0, 0);
  h_acquire(&h, a, 2, "l2", 1, 0, 0);
  ck_assert_str_eq(h_msg(&h), "lock acquire: locks_max 1 reached");
  h_acquire(&h, b, 1, "l1", 1, 1000, 0);
  ck_assert(h.out.response.pending);
  h_acquire(&h, b, 2, "l1", 2, 1000, 0);
  ck_assert_int_eq(h_err(&h), SYNOD_ELIMIT);
  ck_assert_str_eq(h_msg(&h),
                   "lock acquire: \"l1\": waiters_per_lock_max 1 reached");
  h_set(&h, 0, 0, "c1", 1);
  h_set(&h, 0, 0, "c2", 1);
  ck_assert_int_eq(h_err(&h), SYNOD_ELIMIT);
  ck_assert_str_eq(h_msg(&h), "counter set: counters_max 1 reached");
  h_set(&h, 0, 0, "c1", 2); /* an existing counter is still writable */
  ck_assert_int_eq(h_err(&h), 0);
  h_campaign(&h, a, 3, "e1", "x");
  h_campaign(&h, b, 3, "e1", "y");
  ck_assert_int_eq(h_err(&h), SYNOD_ELIMIT);
  h_campaign(&h, b, 4, "e2", "y");
  ck_assert_str_eq(h_msg(&h), "election campaign: elections_max 1 reached");
  h_close(&h);
}
END_TEST

/* ------------------------------------------------------------ workload */

/* A seeded mix of every kind of entry, with time moving, sessions expiring
 * and requests retried: the entries a cluster could commit. */
struct entry {
  uint8_t *data;
  size_t len;
};

static uint64_t lcg(uint64_t *s) {
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return *s >> 33;
}

static struct entry entry_of_request(uint64_t time_ms, Synod__Request *r) {
  struct entry e;
  e.len = fsm_command_encode_request(time_ms, r, NULL, 0);
  e.data = malloc(e.len ? e.len : 1);
  fsm_command_encode_request(time_ms, r, e.data, e.len);
  return e;
}

/* The messages one workload request may point at. */
struct bodies {
  Synod__LockAcquire la;
  Synod__LockRelease lr;
  Synod__CounterAdd ca;
  Synod__ElectionCampaign ec;
  Synod__ElectionResign er;
  Synod__SessionClose sc;
};

/* Fills r's body for op (30..99) on name. */
static void workload_body(uint64_t *rng, uint64_t op, const char *name,
                          struct bodies *b, Synod__Request *r) {
  if (op < 50) {
    synod__lock_acquire__init(&b->la);
    b->la.name = (char *)name;
    b->la.owner_id = lcg(rng) % 2;
    b->la.timeout_ms = lcg(rng) % 2 ? 0 : 500 + lcg(rng) % 3000;
    b->la.lock_delay_ms = lcg(rng) % 2 ? 0 : 200;
    r->body_case = SYNOD__REQUEST__BODY_LOCK_ACQUIRE;
    r->lock_acquire = &b->la;
  } else if (op < 65) {
    synod__lock_release__init(&b->lr);
    b->lr.name = (char *)name;
    b->lr.owner_id = lcg(rng) % 2;
    r->body_case = SYNOD__REQUEST__BODY_LOCK_RELEASE;
    r->lock_release = &b->lr;
  } else if (op < 80) {
    synod__counter_add__init(&b->ca);
    b->ca.name = (char *)name;
    b->ca.delta = (int64_t)(lcg(rng) % 7) - 3;
    r->body_case = SYNOD__REQUEST__BODY_COUNTER_ADD;
    r->counter_add = &b->ca;
  } else if (op < 90) {
    synod__election_campaign__init(&b->ec);
    b->ec.name = (char *)name;
    b->ec.value.data = (uint8_t *)name;
    b->ec.value.len = strlen(name);
    r->body_case = SYNOD__REQUEST__BODY_ELECTION_CAMPAIGN;
    r->election_campaign = &b->ec;
  } else if (op < 97) {
    synod__election_resign__init(&b->er);
    b->er.name = (char *)name;
    r->body_case = SYNOD__REQUEST__BODY_ELECTION_RESIGN;
    r->election_resign = &b->er;
  } else {
    synod__session_close__init(&b->sc);
    r->body_case = SYNOD__REQUEST__BODY_SESSION_CLOSE;
    r->session_close = &b->sc;
  }
}

/* One entry at index: an open (10%), a tick with keepalives (20%), or a
 * request in a random session, one in ten of them a retry. */
static struct entry workload_one(uint64_t *rng, uint64_t index,
                                 uint64_t *time_ms, uint64_t *sessions,
                                 uint64_t *seqs, size_t *n_sessions) {
  static const char *names[] = {"a", "b", "c/1", "c/2", "e"};
  Synod__Request r = SYNOD__REQUEST__INIT;
  Synod__SessionOpen so = SYNOD__SESSION_OPEN__INIT;
  struct bodies b;
  uint64_t op = lcg(rng) % 100;
  *time_ms += lcg(rng) % 300;
  if (op < 10 || *n_sessions == 0) {
    so.ttl_ms = 1000 + lcg(rng) % 4000;
    r.body_case = SYNOD__REQUEST__BODY_SESSION_OPEN;
    r.session_open = &so;
    sessions[*n_sessions] = index;
    seqs[(*n_sessions)++] = 0;
    return entry_of_request(*time_ms, &r);
  }
  size_t k = lcg(rng) % *n_sessions;
  if (op < 30) {
    struct entry e;
    size_t n = 1 + lcg(rng) % *n_sessions;
    e.data = malloc(1024);
    e.len = fsm_command_encode_tick(*time_ms, sessions + (*n_sessions - n), n,
                                    e.data, 1024);
    ck_assert_uint_le(e.len, 1024);
    return e;
  }
  r.session_id = sessions[k];
  r.sequence = (lcg(rng) % 10 == 0 && seqs[k] > 0) ? seqs[k] : ++seqs[k];
  workload_body(rng, op, names[lcg(rng) % 5], &b, &r);
  return entry_of_request(*time_ms, &r);
}

/* n entries for indexes 1..n. */
static struct entry *workload(uint64_t seed, size_t n) {
  struct entry *v = calloc(n, sizeof *v);
  uint64_t *sessions = calloc(n, sizeof *sessions);
  uint64_t *seqs = calloc(n, sizeof *seqs);
  size_t n_sessions = 0;
  uint64_t time_ms = 1000, rng = seed;
  for (size_t i = 0; i < n; i++) {
    v[i] = workload_one(&rng, i + 1, &time_ms, sessions, seqs, &n_sessions);
  }
  free(sessions);
  free(seqs);
  return v;
}

static void workload_free(struct entry *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(v[i].data);
  }
  free(v);
}

/* Applies entries [from, to) and returns a hash of every output, so that
 * two replicas' outputs can be compared as well as their images. */
static size_t event_counts[FSM_EVENT_ELECTION_CHANGED + 1];

static uint64_t feed(struct fsm *f, const struct entry *v, size_t from,
                     size_t to) {
  uint64_t h = 1469598103934665603ull;
  struct fsm_output out;
  for (size_t i = from; i < to; i++) {
    ck_assert_int_eq(fsm_apply(f, i + 1, v[i].data, v[i].len, &out), 0);
    h = (h ^ out.response.pending ^ (out.response.len << 1)) * 1099511628211u;
    for (size_t k = 0; k < out.response.len; k++) {
      h = (h ^ out.response.data[k]) * 1099511628211u;
    }
    for (size_t e = 0; e < out.events_len; e++) {
      event_counts[out.events[e].type]++;
      h = (h ^ (uint64_t)out.events[e].type ^ out.events[e].session_id) *
          1099511628211u;
      for (size_t k = 0; k < out.events[e].response_len; k++) {
        h = (h ^ out.events[e].response[k]) * 1099511628211u;
      }
    }
  }
  return h;
}

static void assert_same_image(const struct fsm *a, const struct fsm *b) {
  uint8_t *x, *y;
  size_t xl, yl;
  snapshot(a, &x, &xl);
  snapshot(b, &y, &yl);
  ck_assert_uint_eq(xl, yl);
  ck_assert_mem_eq(x, y, xl);
  ck_assert_uint_eq(fsm_digest(a), fsm_digest(b));
  free(x);
  free(y);
}

/* ------------------------------------------------------------ snapshots */

START_TEST(two_fsms_fed_the_same_entries_have_identical_snapshots) {
  size_t n = 3000;
  struct entry *v = workload(7, n);
  struct fsm *a = fsm_new(NULL), *b = fsm_new(NULL);
  for (size_t i = 0; i < n; i += 500) {
    ck_assert_uint_eq(feed(a, v, i, i + 500), feed(b, v, i, i + 500));
    assert_same_image(a, b);
  }
  /* The workload exercised every kind of event. */
  for (int t = FSM_EVENT_LOCK_GRANTED; t <= FSM_EVENT_ELECTION_CHANGED; t++) {
    ck_assert_msg(event_counts[t] > 0, "no event of type %d", t);
  }
  ck_assert_uint_gt(a->counters.count, 0);
  fsm_free(a);
  fsm_free(b);
  workload_free(v, n);
}
END_TEST

/* A replica restored from a snapshot mid-stream then behaves exactly like
 * one that applied every entry: same outputs, same images. */
START_TEST(snapshot_restored_replica_continues_identically) {
  size_t n = 4000;
  for (uint64_t seed = 1; seed <= 4; seed++) {
    struct entry *v = workload(seed, n);
    struct fsm *a = fsm_new(NULL), *b = fsm_new(NULL);
    uint8_t *img;
    size_t len;
    feed(a, v, 0, n / 2);
    snapshot(a, &img, &len);
    ck_assert_int_eq(fsm_snapshot_decode(b, img, len), 0);
    free(img);
    assert_same_image(a, b);
    ck_assert_uint_eq(fsm_next_deadline(a), fsm_next_deadline(b));
    ck_assert_uint_eq(feed(a, v, n / 2, n), feed(b, v, n / 2, n));
    assert_same_image(a, b);
    fsm_free(a);
    fsm_free(b);
    workload_free(v, n);
  }
}
END_TEST

START_TEST(snapshot_round_trip_gives_identical_bytes_and_digest) {
  struct h h;
  h_init(&h, NULL);
  uint64_t a = h_open(&h, 60000), b = h_open(&h, 60000);
  h_acquire(&h, a, 1, "l", 1, 0, 500);
  h_acquire(&h, b, 1, "l", 1, 9000, 0);
  h_set(&h, a, 2, "c", -5);
  h_campaign(&h, b, 2, "e", "pod-b");
  uint8_t *x, *y;
  size_t xl, yl;
  snapshot(h.f, &x, &xl);
  struct fsm *g = fsm_new(NULL);
  ck_assert_int_eq(fsm_snapshot_decode(g, x, xl), 0);
  snapshot(g, &y, &yl);
  ck_assert_uint_eq(xl, yl);
  ck_assert_mem_eq(x, y, xl);
  ck_assert_uint_eq(fsm_digest(h.f), fsm_digest(g));
  ck_assert_uint_eq(fsm_applied_index(g), h.index);
  ck_assert_uint_eq(fsm_time_ms(g), fsm_time_ms(h.f));
  struct fsm *empty = fsm_new(NULL);
  ck_assert_uint_ne(fsm_digest(g), fsm_digest(empty));
  fsm_free(empty);
  free(x);
  free(y);
  fsm_free(g);
  h_close(&h);
}
END_TEST

/* An image that does not decode, is truncated, has a flipped byte or
 * breaks an invariant is refused, and the fsm keeps its state. */
START_TEST(corrupt_snapshot_is_refused_and_fsm_unchanged) {
  size_t n = 1500;
  struct entry *v = workload(3, n);
  struct fsm *a = fsm_new(NULL), *b = fsm_new(NULL);
  feed(a, v, 0, n);
  feed(b, v, 0, 10);
  uint64_t before = fsm_digest(b);
  uint8_t *img;
  size_t len;
  snapshot(a, &img, &len);
  ck_assert_int_eq(fsm_snapshot_decode(b, img, len - 1), SYNOD_ECORRUPT);
  ck_assert_int_eq(fsm_snapshot_decode(b, (const uint8_t *)"\xff\xff", 2),
                   SYNOD_ECORRUPT);
  size_t refused = 0;
  for (size_t i = 0; i < len; i += 1 + len / 400) {
    img[i] ^= 0x5a;
    int rv = fsm_snapshot_decode(b, img, len);
    img[i] ^= 0x5a;
    if (rv != 0) {
      ck_assert_int_eq(rv, SYNOD_ECORRUPT);
      ck_assert_uint_eq(fsm_digest(b), before);
      refused++;
    } else { /* a flip that still makes a valid image: restore b */
      fsm_free(b);
      b = fsm_new(NULL);
      feed(b, v, 0, 10);
    }
  }
  ck_assert_uint_gt(refused, 100);
  ck_assert_uint_eq(fsm_digest(b), before);
  free(img);
  fsm_free(a);
  fsm_free(b);
  workload_free(v, n);
}
END_TEST

/* Hand-built images that decode but break one invariant each. */
START_TEST(snapshot_with_broken_invariants_is_refused) {
  struct fsm *f = fsm_new(NULL);
  Synod__Fsm__Image img = SYNOD__FSM__IMAGE__INIT;
  Synod__Fsm__Lock l = SYNOD__FSM__LOCK__INIT;
  Synod__Fsm__Lock *locks[] = {&l};
  Synod__Fsm__Counter c1 = SYNOD__FSM__COUNTER__INIT, c2 = c1;
  Synod__Fsm__Counter *counters[] = {&c1, &c2};
  uint8_t buf[256];
  size_t len;
  img.format = 1;
  img.applied_index = 10;
  /* A lock held by a session that does not exist. */
  l.name = "l";
  l.holder_session = 3;
  l.hold_count = 1;
  l.token = 5;
  img.token_last = 5;
  img.n_locks = 1;
  img.locks = locks;
  len = synod__fsm__image__pack(&img, buf);
  ck_assert_int_eq(fsm_snapshot_decode(f, buf, len), SYNOD_ECORRUPT);
  /* Counters out of order. */
  img.n_locks = 0;
  c1.name = "b";
  c2.name = "a";
  img.n_counters = 2;
  img.counters = counters;
  len = synod__fsm__image__pack(&img, buf);
  ck_assert_int_eq(fsm_snapshot_decode(f, buf, len), SYNOD_ECORRUPT);
  /* Fixed, it loads. */
  c1.name = "a";
  c2.name = "b";
  len = synod__fsm__image__pack(&img, buf);
  ck_assert_int_eq(fsm_snapshot_decode(f, buf, len), 0);
  ck_assert_uint_eq(f->counters.count, 2);
  /* A wrong format version. */
  img.format = 2;
  len = synod__fsm__image__pack(&img, buf);
  ck_assert_int_eq(fsm_snapshot_decode(f, buf, len), SYNOD_ECORRUPT);
  ck_assert_uint_eq(f->counters.count, 2);
  fsm_free(f);
}
END_TEST

/* What an expiry releases goes in name order, not in the order of history,
 * which a replica restored from a snapshot does not know: both replicas
 * grant the same names with the same tokens in the same order. */
START_TEST(expiry_releases_in_name_order_on_restored_and_live_replicas) {
  struct h h;
  h_init(&h, NULL);
  uint64_t a = h_open(&h, 1000), b = h_open(&h, 60000);
  h_acquire(&h, a, 1, "zeta", 1, 0, 0);
  h_acquire(&h, a, 2, "alpha", 1, 0, 0);
  h_acquire(&h, b, 1, "zeta", 1, 30000, 0);
  h_acquire(&h, b, 2, "alpha", 2, 30000, 0);
  uint8_t *img;
  size_t len;
  snapshot(h.f, &img, &len);
  struct h g = h;
  g.f = fsm_new(NULL);
  g.resp = NULL;
  ck_assert_int_eq(fsm_snapshot_decode(g.f, img, len), 0);
  free(img);
  h_at(&h, 2001);
  h_at(&g, 2001);
  struct h *both[] = {&h, &g};
  for (int i = 0; i < 2; i++) {
    ck_assert_uint_eq(both[i]->out.events_len, 3);
    ck_assert_str_eq(h_event(both[i], 1, FSM_EVENT_LOCK_GRANTED)->name,
                     "alpha");
    ck_assert_str_eq(h_event(both[i], 2, FSM_EVENT_LOCK_GRANTED)->name, "zeta");
  }
  assert_same_image(h.f, g.f);
  h_close(&h);
  h_close(&g);
}
END_TEST

/* ------------------------------------------------------------ bad input */

START_TEST(malformed_entry_gives_deterministic_error_and_changes_nothing) {
  struct h h, g;
  h_init(&h, NULL);
  h_init(&g, NULL);
  static const uint8_t junk[] = {0xff, 0x01, 0x22, 0x80};
  h_apply_bytes(&h, junk, sizeof junk);
  h_apply_bytes(&g, junk, sizeof junk);
  ck_assert_int_eq(h_err(&h), SYNOD_EMALFORMED);
  ck_assert_str_eq(h_msg(&h), "entry 1: 4 bytes do not decode as a "
                              "fsm.Command with a body");
  ck_assert_uint_eq(h.out.response.len, g.out.response.len);
  ck_assert_mem_eq(h.out.response.data, g.out.response.data,
                   h.out.response.len);
  h_apply_bytes(&h, NULL, 0); /* an empty Command has no body */
  ck_assert_int_eq(h_err(&h), SYNOD_EMALFORMED);
  ck_assert_uint_eq(fsm_applied_index(h.f), 2);
  ck_assert_uint_eq(fsm_time_ms(h.f), 0);
  /* A request body the fsm does not apply. */
  Synod__Hello hello = SYNOD__HELLO__INIT;
  REQ(&h, 0, 0, HELLO, hello, &hello);
  ck_assert_int_eq(h_err(&h), SYNOD_EINVAL);
  Synod__Request none = SYNOD__REQUEST__INIT;
  h_req(&h, &none);
  ck_assert_int_eq(h_err(&h), SYNOD_EINVAL);
  /* An index that does not grow is a programmer error. */
  struct fsm_output out;
  ck_assert_int_eq(fsm_apply(h.f, 2, junk, sizeof junk, &out), SYNOD_EINVAL);
  ck_assert_int_eq(fsm_index_advance(h.f, 10), 0);
  ck_assert_uint_eq(fsm_applied_index(h.f), 10);
  h_close(&h);
  h_close(&g);
}
END_TEST

/* Applies data as the entry after h's last: 0, or SYNOD_EPROTO with
 * nothing changed (a field this build does not know). */
static int h_apply_or_refuse(struct h *h, const uint8_t *data, size_t len) {
  struct fsm_output out;
  uint64_t digest = fsm_digest(h->f), applied = fsm_applied_index(h->f);
  int rv = fsm_apply(h->f, applied + 1, data, len, &out);
  if (rv == SYNOD_EPROTO) {
    ck_assert_uint_eq(fsm_applied_index(h->f), applied);
    ck_assert_uint_eq(fsm_digest(h->f), digest);
  } else {
    ck_assert_int_eq(rv, 0);
    h->index = applied + 1;
  }
  return rv;
}

/* An entry a newer build wrote, carrying a field or a body this build does
 * not know, is refused with nothing changed, not even the applied index:
 * applied here it would mean something else than on the replicas that
 * know it. The replica stops there (apply.c). */
START_TEST(an_entry_with_a_field_this_build_does_not_know_is_not_applied) {
  struct h h;
  h_init(&h, NULL);
  uint64_t sid = h_open(&h, 60000);
  Synod__CounterAdd a = SYNOD__COUNTER_ADD__INIT;
  a.name = "c";
  a.delta = 1;
  Synod__Request r = SYNOD__REQUEST__INIT;
  r.session_id = sid;
  r.sequence = 1;
  r.body_case = SYNOD__REQUEST__BODY_COUNTER_ADD;
  r.counter_add = &a;
  uint8_t one = 1, buf[256];
  ProtobufCMessageUnknownField extra = {.tag = 15,
                                        .wire_type =
                                            PROTOBUF_C_WIRE_TYPE_VARINT,
                                        .len = 1,
                                        .data = &one};
  static const struct {
    int where; /* 0: CounterAdd, 1: Request, 2: Command (a new body) */
    const char *says;
  } cases[] = {{0, "field 15 of synod.CounterAdd"},
               {1, "field 15 of synod.Request"},
               {2, "field 15 of synod.fsm.Command"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    a.base.n_unknown_fields = cases[i].where == 0;
    a.base.unknown_fields = &extra;
    r.base.n_unknown_fields = cases[i].where == 1;
    r.base.unknown_fields = &extra;
    size_t n = fsm_command_encode_request(h.time_ms, &r, buf, sizeof buf);
    ck_assert_uint_le(n, sizeof buf - 2);
    if (cases[i].where == 2) {
      buf[n++] = 15 << 3 | 2; /* field 15, length-delimited: a new body */
      buf[n++] = 0;
    }
    ck_assert_int_eq(h_apply_or_refuse(&h, buf, n), SYNOD_EPROTO);
    ck_assert_str_eq(fsm_unknown_field(h.f), cases[i].says);
  }
  /* An enum value the enum does not name (proto3 keeps the number). */
  a.base.n_unknown_fields = r.base.n_unknown_fields = 0;
  Synod__KeyCompare cmp = SYNOD__KEY_COMPARE__INIT;
  Synod__KeyCompare *cmps[] = {&cmp};
  cmp.target = (Synod__KeyCompare__Target)9;
  Synod__KeyPut put = SYNOD__KEY_PUT__INIT;
  put.key.data = (uint8_t *)"k";
  put.key.len = 1;
  put.n_compares = 1;
  put.compares = cmps;
  Synod__Request pr = SYNOD__REQUEST__INIT;
  pr.session_id = sid;
  pr.sequence = 2;
  pr.body_case = SYNOD__REQUEST__BODY_KEY_PUT;
  pr.key_put = &put;
  size_t n = fsm_command_encode_request(h.time_ms, &pr, buf, sizeof buf);
  ck_assert_int_eq(h_apply_or_refuse(&h, buf, n), SYNOD_EPROTO);
  ck_assert_str_eq(fsm_unknown_field(h.f), "value 9 of synod.KeyCompare.Target "
                                           "in field 2 of synod.KeyCompare");
  /* A higher format than this build's: refused whatever it holds. */
  Synod__Fsm__Command cmd = SYNOD__FSM__COMMAND__INIT;
  cmd.time_ms = h.time_ms;
  cmd.format = 2;
  cmd.body_case = SYNOD__FSM__COMMAND__BODY_REQUEST;
  cmd.request = &r;
  n = synod__fsm__command__pack(&cmd, buf);
  ck_assert_int_eq(h_apply_or_refuse(&h, buf, n), SYNOD_EPROTO);
  ck_assert_str_eq(fsm_unknown_field(h.f),
                   "format 2 of synod.fsm.Command (this build applies formats "
                   "up to 1)");
  /* The same add without them applies at the next index, once. */
  n = fsm_command_encode_request(h.time_ms, &r, buf, sizeof buf);
  uint64_t before = fsm_applied_index(h.f);
  ck_assert_int_eq(h_apply_or_refuse(&h, buf, n), 0);
  ck_assert_uint_eq(fsm_applied_index(h.f), before + 1);
  ck_assert_int_eq(h_get(&h, "c"), 1);
  /* Format 0, written by a build before the format: applied as that build
   * did, without the fields it did not know (so a log it left replays). */
  a.base.n_unknown_fields = 1;
  cmd.format = 0;
  r.sequence = 3;
  n = synod__fsm__command__pack(&cmd, buf);
  ck_assert_int_eq(h_apply_or_refuse(&h, buf, n), 0);
  ck_assert_int_eq(h_get(&h, "c"), 2);
  h_close(&h);
}
END_TEST

/* Every prefix of a valid entry, and every single-byte corruption of it,
 * is applied without crashing. */
START_TEST(truncated_and_flipped_entries_never_crash) {
  struct h h;
  h_init(&h, NULL);
  uint64_t sid = h_open(&h, 60000);
  Synod__Request r = SYNOD__REQUEST__INIT;
  Synod__LockAcquire a = SYNOD__LOCK_ACQUIRE__INIT;
  a.name = "lock";
  a.timeout_ms = 100;
  r.session_id = sid;
  r.sequence = 1;
  r.body_case = SYNOD__REQUEST__BODY_LOCK_ACQUIRE;
  r.lock_acquire = &a;
  uint8_t buf[128];
  size_t n = fsm_command_encode_request(h.time_ms, &r, buf, sizeof buf);
  for (size_t len = 0; len < n; len++) {
    h_apply_or_refuse(&h, buf, len);
  }
  for (size_t i = 0; i < n; i++) {
    for (int bit = 0; bit < 8; bit++) {
      buf[i] ^= (uint8_t)(1u << bit);
      h_apply_or_refuse(&h, buf, n);
      buf[i] ^= (uint8_t)(1u << bit);
    }
  }
  h_close(&h);
}
END_TEST

START_TEST(query_refuses_bodies_that_are_not_reads) {
  struct fsm *f = fsm_new(NULL);
  Synod__Request r = SYNOD__REQUEST__INIT;
  Synod__CounterAdd add = SYNOD__COUNTER_ADD__INIT;
  uint8_t *data = NULL;
  size_t len = 0;
  r.body_case = SYNOD__REQUEST__BODY_COUNTER_ADD;
  r.counter_add = &add;
  ck_assert(!fsm_request_is_read(&r));
  ck_assert_int_eq(fsm_query(f, &r, &data, &len), SYNOD_EINVAL);
  ck_assert_ptr_null(data);
  r.body_case = SYNOD__REQUEST__BODY_COUNTER_GET;
  r.counter_get = NULL; /* a body case without its message */
  ck_assert(fsm_request_is_read(&r));
  ck_assert_int_eq(fsm_query(f, &r, &data, &len), SYNOD_EINVAL);
  fsm_free(f);
}
END_TEST

/* ------------------------------------------------------------ containers */

struct item {
  struct otree_node node;
  uint32_t key;
};

static int item_cmp(const void *key, const struct otree_node *n) {
  uint32_t a = *(const uint32_t *)key;
  uint32_t b = FSM_CONTAINER(n, struct item, node)->key;
  return a < b ? -1 : a > b;
}

START_TEST(otree_stays_balanced_and_ordered_under_inserts_and_removes) {
  enum { N = 4096 };
  struct item *items = calloc(N, sizeof *items);
  struct otree t;
  uint64_t rng = 99;
  otree_init(&t, item_cmp);
  for (uint32_t i = 0; i < N; i++) {
    items[i].key = i;
  }
  for (int round = 0; round < 6; round++) {
    for (uint32_t i = 0; i < N; i++) {
      struct item *it = &items[lcg(&rng) % N];
      if (otree_find(&t, &it->key)) {
        otree_remove(&t, &it->node);
      } else {
        ck_assert_ptr_null(otree_insert(&t, &it->node, &it->key));
      }
    }
    ck_assert_uint_eq(otree_check(&t), t.count);
    uint32_t prev = 0, seen = 0;
    for (struct otree_node *n = otree_first(&t); n; n = otree_next(n)) {
      uint32_t k = FSM_CONTAINER(n, struct item, node)->key;
      ck_assert(seen == 0 || k > prev);
      prev = k;
      seen++;
    }
    ck_assert_uint_eq(seen, t.count);
    uint32_t probe = 1000;
    struct otree_node *lb = otree_lower_bound(&t, &probe, 1);
    if (lb) {
      ck_assert_uint_gt(FSM_CONTAINER(lb, struct item, node)->key, 1000);
    }
  }
  struct item dup = {.key = 7};
  if (otree_find(&t, &dup.key) == NULL) {
    otree_insert(&t, &items[7].node, &items[7].key);
  }
  ck_assert_ptr_eq(otree_insert(&t, &dup.node, &dup.key), &items[7].node);
  free(items);
}
END_TEST

/* The scale a later test loads: 100,000 counters and 10,000 held locks,
 * applied and round-tripped through a snapshot. */
START_TEST(scales_to_100k_counters_and_10k_held_locks) {
  int slow = getenv("SYNOD_TEST_VALGRIND") != NULL;
  size_t counters = slow ? 10000 : 100000, locks = slow ? 1000 : 10000;
  struct h h;
  h_init(&h, NULL);
  uint64_t sid = h_open(&h, 300000);
  char name[32];
  for (size_t i = 0; i < counters; i++) {
    snprintf(name, sizeof name, "counter/%07zu", i);
    h_add(&h, 0, 0, name, (int64_t)i, 0);
  }
  for (size_t i = 0; i < locks; i++) {
    snprintf(name, sizeof name, "lock/%06zu", i);
    h_acquire(&h, sid, i + 1, name, 1, 0, 0);
    ck_assert_int_eq(h_err(&h), 0);
  }
  ck_assert_uint_eq(h.f->counters.count, counters);
  ck_assert_uint_eq(h.f->locks.count, locks);
  ck_assert_uint_eq(otree_check(&h.f->counters), counters);
  uint8_t *img;
  size_t len;
  snapshot(h.f, &img, &len);
  struct fsm *g = fsm_new(NULL);
  ck_assert_int_eq(fsm_snapshot_decode(g, img, len), 0);
  ck_assert_uint_eq(fsm_digest(g), fsm_digest(h.f));
  free(img);
  fsm_free(g);
  /* Expiry releases all 10,000 locks in one entry. */
  h_at(&h, 1000 + 300001);
  ck_assert_uint_eq(h.f->locks.count, 0);
  h_close(&h);
}
END_TEST

static TCase *tcase_sessions(void) {
  TCase *tc = tcase_create("sessions_and_exactly_once");
  tcase_add_test(tc, session_open_uses_entry_index_as_id_and_default_ttl);
  tcase_add_test(tc, session_open_ttl_out_of_bounds_is_erange);
  tcase_add_test(tc, session_expires_only_when_time_passes_keepalive_plus_ttl);
  tcase_add_test(tc, session_ttl_is_known_while_alive_and_zero_after);
  tcase_add_test(tc, tick_keepalive_extends_session_but_never_revives_it);
  tcase_add_test(tc, explicit_keepalive_request_resets_deadline);
  tcase_add_test(tc, request_without_or_with_unknown_session_is_esession);
  tcase_add_test(tc, session_close_releases_locks_without_lock_delay);
  tcase_add_test(tc, time_never_moves_back_on_a_lower_stamp);
  tcase_add_test(tc, retried_increment_after_failover_counts_once);
  tcase_add_test(tc, retried_error_answer_is_replayed_not_reapplied);
  tcase_add_test(tc, sequence_older_than_window_is_esequence);
  tcase_add_test(tc, a_queued_acquire_resent_below_the_floor_is_pending);
  tcase_add_test(tc, out_of_order_sequence_above_floor_is_applied_once);
  tcase_add_test(tc, sessionless_counter_ops_apply_every_time);
  return tc;
}

static TCase *tcase_locks(void) {
  TCase *tc = tcase_create("locks");
  tcase_add_test(tc, lock_grant_token_is_the_entry_index);
  tcase_add_test(tc, lock_reentrant_acquire_counts_holds_and_keeps_token);
  tcase_add_test(tc, lock_try_acquire_held_by_another_owner_is_elocked);
  tcase_add_test(tc, lock_release_by_non_holder_is_enotholder);
  tcase_add_test(tc,
                 lock_waiters_are_granted_in_fifo_order_with_growing_tokens);
  tcase_add_test(tc, lock_acquire_timeout_yields_etimedout_event);
  tcase_add_test(tc, lock_retried_pending_acquire_stays_queued_once);
  tcase_add_test(tc, lock_second_wait_by_same_owner_is_ebusy);
  tcase_add_test(tc, lock_holder_expiry_grants_next_waiter_with_larger_token);
  tcase_add_test(tc, lock_delay_holds_lock_free_until_delay_passes);
  tcase_add_test(tc, lock_delay_without_waiters_ends_with_lock_deleted);
  tcase_add_test(tc, lock_waiters_of_an_expired_session_are_canceled);
  tcase_add_test(tc, lock_two_grants_in_one_entry_get_distinct_tokens);
  tcase_add_test(tc, lock_check_tells_current_token_from_stale);
  tcase_add_test(tc, lock_query_reports_holder_token_and_waiters);
  tcase_add_test(tc, lock_name_must_be_1_to_256_bytes_of_utf8);
  tcase_add_test(tc, lock_delay_above_maximum_is_erange);
  return tc;
}

static TCase *tcase_counters_elections(void) {
  TCase *tc = tcase_create("counters_elections_limits");
  tcase_add_test(tc,
                 counter_get_of_missing_counter_is_zero_and_creates_nothing);
  tcase_add_test(tc, counter_set_add_and_get_and_get_and_add);
  tcase_add_test(tc, counter_cas_swaps_only_on_expected_value);
  tcase_add_test(
      tc, counter_add_overflow_both_ways_is_eoverflow_and_changes_nothing);
  tcase_add_test(tc, counter_delete_reports_whether_it_existed);
  tcase_add_test(tc, counter_list_paginates_in_name_order_within_prefix);
  tcase_add_test(tc,
                 election_first_candidate_leads_and_resign_passes_office_fifo);
  tcase_add_test(tc, election_leader_expiry_hands_office_to_next_candidate);
  tcase_add_test(tc, election_recampaign_updates_value_in_place);
  tcase_add_test(tc, election_value_over_limit_is_elimit);
  tcase_add_test(tc, limits_on_sessions_locks_counters_waiters_candidates);
  return tc;
}

static TCase *tcase_snapshots(void) {
  TCase *tc = tcase_create("snapshots_and_bad_input");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, two_fsms_fed_the_same_entries_have_identical_snapshots);
  tcase_add_test(tc, snapshot_restored_replica_continues_identically);
  tcase_add_test(tc, snapshot_round_trip_gives_identical_bytes_and_digest);
  tcase_add_test(tc, corrupt_snapshot_is_refused_and_fsm_unchanged);
  tcase_add_test(tc,
                 expiry_releases_in_name_order_on_restored_and_live_replicas);
  tcase_add_test(tc, snapshot_with_broken_invariants_is_refused);
  tcase_add_test(tc,
                 malformed_entry_gives_deterministic_error_and_changes_nothing);
  tcase_add_test(tc,
                 an_entry_with_a_field_this_build_does_not_know_is_not_applied);
  tcase_add_test(tc, truncated_and_flipped_entries_never_crash);
  tcase_add_test(tc, query_refuses_bodies_that_are_not_reads);
  tcase_add_test(tc,
                 otree_stays_balanced_and_ordered_under_inserts_and_removes);
  tcase_add_test(tc, scales_to_100k_counters_and_10k_held_locks);
  return tc;
}

static void h_member(struct h *h, uint64_t id, const char *name,
                     const char *peer, bool remove) {
  struct fsm_member_info m = {id, name, peer, "c:1"};
  uint8_t buf[512];
  size_t len =
      fsm_command_encode_member(h->time_ms, &m, remove, buf, sizeof buf);
  ck_assert_uint_le(len, sizeof buf);
  h_apply_bytes(h, buf, len);
}

START_TEST(member_directory_records_replaces_and_forgets) {
  struct h h;
  struct fsm_member_info got;
  h_init(&h, NULL);
  h_member(&h, 7, "synod-0", "p:1", false);
  h_member(&h, 3, "synod-1", "p:2", false);
  ck_assert(fsm_member_get(h.f, 7, &got));
  ck_assert_str_eq(got.name, "synod-0");
  ck_assert_str_eq(got.peer_address, "p:1");
  h_member(&h, 7, "synod-0", "p:9", false); /* new address */
  ck_assert(fsm_member_get(h.f, 7, &got));
  ck_assert_str_eq(got.peer_address, "p:9");
  h_member(&h, 3, "", "", true);
  ck_assert(!fsm_member_get(h.f, 3, &got));
  h_member(&h, 0, "zero", "p", false); /* ignored alike everywhere */
  ck_assert(!fsm_member_get(h.f, 0, &got));
  ck_assert(!h.out.has_response);
  h_close(&h);
}
END_TEST

static void count_member(void *arg, const struct fsm_member_info *m) {
  uint64_t *last = arg;
  ck_assert_uint_gt(m->id, *last); /* id order */
  *last = m->id;
}

START_TEST(member_directory_survives_snapshot_in_id_order) {
  struct h h, g;
  uint8_t *img, *img2;
  size_t len, len2;
  h_init(&h, NULL);
  h_init(&g, NULL);
  h_member(&h, 900, "synod-2", "p:3", false);
  h_member(&h, 5, "synod-0", "p:1", false);
  h_member(&h, 77, "synod-1", "p:2", false);
  snapshot(h.f, &img, &len);
  ck_assert_int_eq(fsm_snapshot_decode(g.f, img, len), 0);
  snapshot(g.f, &img2, &len2);
  ck_assert_uint_eq(len, len2);
  ck_assert_mem_eq(img, img2, len);
  uint64_t last = 0;
  fsm_members_each(g.f, count_member, &last);
  ck_assert_uint_eq(last, 900);
  struct fsm_member_info got;
  ck_assert(fsm_member_get(g.f, 77, &got));
  ck_assert_str_eq(got.name, "synod-1");
  free(img);
  free(img2);
  h_close(&h);
  h_close(&g);
}
END_TEST

/* ---------------------------------------------------------------- stats */

/* The gauges fsm_stats_get keeps in O(1), counted the slow way. */
static void walk_counts(const struct fsm *f, uint64_t *held, uint64_t *waits) {
  *held = *waits = 0;
  for (struct otree_node *n = otree_first(&f->locks); n; n = otree_next(n)) {
    const struct fsm_lock *l = FSM_CONTAINER(n, struct fsm_lock, by_name);
    *held += l->holder != NULL;
    *waits += l->waiters_len;
  }
}

START_TEST(stats_count_holders_waiters_grants_and_wait_in_cluster_time) {
  struct h h;
  struct fsm_stats st;
  h_init(&h, NULL);
  uint64_t a = h_open(&h, 60000), b = h_open(&h, 60000);
  h_acquire(&h, a, 1, "x", 1, 0, 0);
  h_acquire(&h, a, 2, "x", 1, 0, 0); /* reentrant: no new grant */
  h_acquire(&h, a, 3, "y", 1, 0, 0);
  h_acquire(&h, b, 1, "x", 1, 30000, 0); /* queues at 1000 ms */
  fsm_stats_get(h.f, &st);
  ck_assert_uint_eq(st.sessions, 2);
  ck_assert_uint_eq(st.sessions_opened, 2);
  ck_assert_uint_eq(st.locks_held, 2);
  ck_assert_uint_eq(st.lock_waiters, 1);
  ck_assert_uint_eq(st.lock_grants, 2);
  ck_assert_uint_eq(st.lock_wait.count, 0);
  h.time_ms = 1250;
  h_release(&h, a, 4, "x", 1);
  h_release(&h, a, 5, "x", 1); /* the last hold: b gets x */
  fsm_stats_get(h.f, &st);
  ck_assert_uint_eq(st.locks_held, 2);
  ck_assert_uint_eq(st.lock_waiters, 0);
  ck_assert_uint_eq(st.lock_grants, 3);
  ck_assert_uint_eq(st.lock_wait.count, 1);
  ck_assert_uint_eq(st.lock_wait.sum_us, 250000);
  h_add(&h, 0, 0, "c1", 1, 0);
  h_add(&h, 0, 0, "c2", 1, 0);
  h_campaign(&h, a, 6, "e", "pod-a");
  h_campaign(&h, b, 2, "e", "pod-b");
  fsm_stats_get(h.f, &st);
  ck_assert_uint_eq(st.counters, 2);
  ck_assert_uint_eq(st.elections, 1);
  h_close(&h);
}
END_TEST

/* Expiry counts; a close does not. Both end the session's holds. */
START_TEST(stats_count_expired_sessions_not_closed_ones) {
  struct h h;
  struct fsm_stats st;
  h_init(&h, NULL);
  uint64_t a = h_open(&h, 1000), b = h_open(&h, 60000);
  h_acquire(&h, a, 1, "l", 1, 0, 0);
  h_acquire(&h, b, 1, "m", 1, 0, 0);
  Synod__SessionClose c = SYNOD__SESSION_CLOSE__INIT;
  REQ(&h, b, 2, SESSION_CLOSE, session_close, &c);
  h_at(&h, 2001);
  fsm_stats_get(h.f, &st);
  ck_assert_uint_eq(st.sessions, 0);
  ck_assert_uint_eq(st.sessions_opened, 2);
  ck_assert_uint_eq(st.sessions_expired, 1);
  ck_assert_uint_eq(st.locks_held, 0);
  h_close(&h);
}
END_TEST

/* Under a random workload the kept gauges match a walk of the state after
 * every entry; a replica restored from a snapshot has the same gauges,
 * keeps its own totals, and the counts never touch the image. */
START_TEST(stats_gauges_match_a_walk_and_are_rebuilt_on_restore) {
  size_t n = 4000;
  struct entry *v = workload(11, n);
  struct fsm *a = fsm_new(NULL), *b = fsm_new(NULL);
  struct fsm_stats sa, sb;
  uint64_t held, waits, max_held = 0, max_waits = 0;
  for (size_t i = 0; i < n; i++) {
    feed(a, v, i, i + 1);
    fsm_stats_get(a, &sa);
    walk_counts(a, &held, &waits);
    ck_assert_uint_eq(sa.locks_held, held);
    ck_assert_uint_eq(sa.lock_waiters, waits);
    max_held = held > max_held ? held : max_held;
    max_waits = waits > max_waits ? waits : max_waits;
  }
  ck_assert_uint_gt(max_held, 0); /* the workload exercised both */
  ck_assert_uint_gt(max_waits, 0);
  feed(b, v, 0, 100);
  fsm_stats_get(b, &sb);
  uint64_t grants_before = sb.lock_grants;
  uint8_t *img;
  size_t len;
  snapshot(a, &img, &len);
  ck_assert_int_eq(fsm_snapshot_decode(b, img, len), 0);
  free(img);
  assert_same_image(a, b);
  fsm_stats_get(a, &sa);
  fsm_stats_get(b, &sb);
  ck_assert_uint_eq(sb.locks_held, sa.locks_held);
  ck_assert_uint_eq(sb.lock_waiters, sa.lock_waiters);
  ck_assert_uint_eq(sb.sessions, sa.sessions);
  ck_assert_uint_eq(sb.counters, sa.counters);
  ck_assert_uint_eq(sb.elections, sa.elections);
  ck_assert_uint_eq(sb.lock_grants, grants_before);
  fsm_free(a);
  fsm_free(b);
  workload_free(v, n);
}
END_TEST

/* ------------------------------------------------------------ channels */

/* Publishes n messages "m<k>" (k from `k0`), in a session when sid != 0,
 * with an optional message id. */
static void h_publish(struct h *h, uint64_t sid, uint64_t seq, const char *ch,
                      int n, int k0, const char *id) {
  Synod__ChannelPublish p = SYNOD__CHANNEL_PUBLISH__INIT;
  ProtobufCBinaryData msgs[16];
  char text[16][16];
  for (int i = 0; i < n; i++) {
    snprintf(text[i], sizeof text[i], "m%d", k0 + i);
    msgs[i].data = (uint8_t *)text[i];
    msgs[i].len = strlen(text[i]);
  }
  p.name = (char *)ch;
  p.n_messages = (size_t)n;
  p.messages = msgs;
  p.message_id = (char *)(id ? id : "");
  REQ(h, sid, seq, CHANNEL_PUBLISH, channel_publish, &p);
}

static void h_channel_create(struct h *h, const char *ch, uint64_t max_msgs,
                             uint64_t max_age_ms, bool refuse) {
  Synod__ChannelCreate c = SYNOD__CHANNEL_CREATE__INIT;
  Synod__ChannelLimits l = SYNOD__CHANNEL_LIMITS__INIT;
  l.max_messages = max_msgs;
  l.max_age_ms = max_age_ms;
  l.refuse_when_full = refuse;
  c.name = (char *)ch;
  c.limits = &l;
  REQ(h, 0, 0, CHANNEL_CREATE, channel_create, &c);
}

/* A read through fsm_query: the response (caller frees), error or not;
 * pinned to the channel created at or before known (0: any). */
static Synod__Response *h_read_known(struct h *h, const char *ch, uint64_t from,
                                     uint64_t known) {
  Synod__Request r = SYNOD__REQUEST__INIT;
  Synod__ChannelRead q = SYNOD__CHANNEL_READ__INIT;
  q.name = (char *)ch;
  q.from = from;
  q.known_index = known;
  r.body_case = SYNOD__REQUEST__BODY_CHANNEL_READ;
  r.channel_read = &q;
  return h_query(h, &r);
}

static Synod__Response *h_read(struct h *h, const char *ch, uint64_t from) {
  return h_read_known(h, ch, from, 0);
}

/* What a reader sees of a channel: its whole read answer, packed. */
static char *channel_seen(struct h *h, const char *ch) {
  Synod__Response *r = h_read(h, ch, 0);
  size_t len = synod__response__get_packed_size(r);
  char *hex = malloc(2 * len + 1);
  uint8_t *buf = malloc(len + 1);
  synod__response__pack(r, buf);
  for (size_t i = 0; i < len; i++) {
    snprintf(hex + 2 * i, 3, "%02x", buf[i]);
  }
  hex[2 * len] = '\0';
  free(buf);
  synod__response__free_unpacked(r, NULL);
  return hex;
}

static void assert_seen(struct h *h, const char *ch, char *before) {
  char *now = channel_seen(h, ch);
  ck_assert_str_eq(now, before);
  free(now);
  free(before);
}

static void assert_messages(Synod__Response *r, uint64_t first_offset, size_t n,
                            int k0) {
  ck_assert_ptr_null(r->error);
  ck_assert_uint_eq(r->channel_messages->n_messages, n);
  for (size_t i = 0; i < n; i++) {
    char want[16];
    const Synod__ChannelMessage *m = r->channel_messages->messages[i];
    snprintf(want, sizeof want, "m%d", k0 + (int)i);
    ck_assert_uint_eq(m->offset, first_offset + i);
    ck_assert_uint_eq(m->data.len, strlen(want));
    ck_assert(memcmp(m->data.data, want, m->data.len) == 0);
  }
  synod__response__free_unpacked(r, NULL);
}

START_TEST(channel_publish_gets_dense_offsets_and_its_entry_index) {
  struct h h;
  h_init(&h, NULL);
  h_publish(&h, 0, 0, "events", 1, 1, NULL);
  ck_assert_int_eq(h_err(&h), 0);
  ck_assert_uint_eq(h.resp->channel_publish->first_offset, 1);
  ck_assert_uint_eq(h.resp->channel_publish->index, h.index);
  h_publish(&h, 0, 0, "events", 3, 2, NULL); /* a batch, atomically */
  ck_assert_uint_eq(h.resp->channel_publish->first_offset, 2);
  ck_assert_uint_eq(h.resp->channel_publish->last_offset, 4);
  assert_messages(h_read(&h, "events", 0), 1, 4, 1);
  assert_messages(h_read(&h, "events", 3), 3, 2, 3);
  assert_messages(h_read(&h, "events", 5), 5, 0, 0);
  /* A channel nobody published to reads as empty, from offset 1. */
  Synod__Response *r = h_read(&h, "nothing", 0);
  ck_assert_uint_eq(r->channel_messages->next_offset, 1);
  assert_messages(r, 1, 0, 0);
  h_close(&h);
}
END_TEST

/* A reader that pages through a channel naming the last message it read
 * (ChannelRead.known_index) is refused the next page once the channel is
 * deleted, and of a channel created again under the name, whose offsets
 * start at 1 again; unpinned, it reads the new channel at its offset. */
START_TEST(channel_read_with_a_known_index_refuses_a_channel_created_again) {
  struct h h;
  h_init(&h, NULL);
  h_publish(&h, 0, 0, "events", 2, 1, NULL); /* m1 m2 */
  Synod__Response *r = h_read(&h, "events", 1);
  uint64_t last = r->channel_messages->messages[1]->index;
  assert_messages(r, 1, 2, 1);
  assert_messages(h_read_known(&h, "events", 3, last), 3, 0, 0);
  /* A pin this replica has not applied yet: it cannot judge it. */
  h_assert_refused(h_read_known(&h, "events", 3, h.index + 1),
                   SYNOD_EUNAVAILABLE, "has not applied");
  Synod__ChannelDelete d = SYNOD__CHANNEL_DELETE__INIT;
  d.name = "events";
  REQ(&h, 0, 0, CHANNEL_DELETE, channel_delete, &d);
  ck_assert_int_eq(h_err(&h), 0);
  h_assert_refused(h_read_known(&h, "events", 3, last), SYNOD_ENOTFOUND,
                   "was deleted after index");
  h_publish(&h, 0, 0, "events", 3, 1, NULL); /* created again: m1 m2 m3 */
  uint64_t again = h.resp->channel_publish->index;
  char *before = channel_seen(&h, "events");
  h_assert_refused(h_read_known(&h, "events", 3, last), SYNOD_ENOTFOUND,
                   "created again at index");
  assert_seen(&h, "events", before);
  assert_messages(h_read(&h, "events", 3), 3, 1, 3); /* unpinned */
  assert_messages(h_read_known(&h, "events", 1, again), 1, 3, 1);
  h_close(&h);
}
END_TEST

/* Deletes channel `ch` through h, and applies the same entry to `also`
 * (a replica restored from an image) when not NULL. */
static void h_channel_delete_too(struct h *h, struct fsm *also,
                                 const char *ch) {
  Synod__Request r = SYNOD__REQUEST__INIT;
  Synod__ChannelDelete d = SYNOD__CHANNEL_DELETE__INIT;
  d.name = (char *)ch;
  r.body_case = SYNOD__REQUEST__BODY_CHANNEL_DELETE;
  r.channel_delete = &d;
  if (also != NULL) {
    uint8_t buf[512];
    size_t len = fsm_command_encode_request(h->time_ms, &r, buf, sizeof buf);
    struct fsm_output out;
    ck_assert_uint_le(len, sizeof buf);
    ck_assert_int_eq(fsm_apply(also, h->index + 1, buf, len, &out), 0);
  }
  h_req(h, &r);
  ck_assert_int_eq(h_err(h), 0);
}

/* Channel deletions are kept (fsm_channels_gone: what a subscription
 * that never applied one checks) as replicated state: in the image, the
 * same on a replica restored from one (whose channel may hold no items
 * any more), and bounded, the newest dropped index kept. */
START_TEST(channel_deletions_are_replicated_state_and_bounded) {
  struct h h;
  h_init(&h, NULL);
  h_channel_create(&h, "short", 2, 1000, false);
  h_publish(&h, 0, 0, "short", 2, 1, NULL); /* offsets 1-2 at one index */
  uint64_t published = h.index;
  h_at(&h, h.time_ms + 5000); /* both past their age */
  /* Refused (3 messages over its 2), after the two expired: a window with
   * no items, which an image gives a replica as evicted_index alone. */
  h_publish(&h, 0, 0, "short", 3, 3, NULL);
  ck_assert_int_eq(h_err(&h), SYNOD_ELIMIT);
  uint8_t *img;
  size_t len;
  snapshot(h.f, &img, &len);
  struct fsm *g = fsm_new(NULL);
  ck_assert_int_eq(fsm_snapshot_decode(g, img, len), 0);
  free(img);
  h_channel_delete_too(&h, g, "short");
  assert_same_image(h.f, g);
  size_t n;
  uint64_t forgotten;
  const struct fsm_channel_gone *gone = fsm_channels_gone(h.f, &n, &forgotten);
  ck_assert_uint_eq(n, 1);
  ck_assert_str_eq(gone[0].name, "short");
  ck_assert_uint_eq(gone[0].last_index, published);
  ck_assert_uint_eq(gone[0].last_offset, 2);
  ck_assert_uint_eq(gone[0].deleted_index, h.index);
  ck_assert_uint_eq(forgotten, 0);

  uint64_t deleted[FSM_CHANNELS_GONE_MAX + 8];
  deleted[0] = h.index;
  for (int i = 1; i < FSM_CHANNELS_GONE_MAX + 8; i++) {
    char name[16];
    snprintf(name, sizeof name, "c%d", i);
    h_publish(&h, 0, 0, name, 1, 1, NULL);
    h_channel_delete_too(&h, NULL, name);
    deleted[i] = h.index;
  }
  gone = fsm_channels_gone(h.f, &n, &forgotten);
  ck_assert_uint_eq(n, FSM_CHANNELS_GONE_MAX);
  ck_assert_uint_eq(forgotten, deleted[7]); /* 8 dropped, the 8th newest */
  ck_assert_uint_eq(gone[0].deleted_index, deleted[8]);
  ck_assert_uint_eq(gone[n - 1].deleted_index,
                    deleted[FSM_CHANNELS_GONE_MAX + 7]);
  snapshot(h.f, &img, &len);
  struct fsm *g2 = fsm_new(NULL);
  ck_assert_int_eq(fsm_snapshot_decode(g2, img, len), 0);
  free(img);
  assert_same_image(h.f, g2);
  fsm_free(g);
  fsm_free(g2);
  h_close(&h);
}
END_TEST

/* The digest leaves the record of deleted channels out: after an upgrade
 * from a build without it, a replica restored from its own older image
 * holds fewer deletions than one that replayed more, and nothing else
 * differs. */
START_TEST(digest_leaves_out_the_record_of_deleted_channels) {
  struct h h;
  h_init(&h, NULL);
  h_publish(&h, 0, 0, "c", 1, 1, NULL);
  h_channel_delete_too(&h, NULL, "c");
  h_publish(&h, 0, 0, "d", 1, 1, NULL);
  uint8_t *img, *old;
  size_t len, old_len;
  snapshot(h.f, &img, &len);
  Synod__Fsm__Image *m = synod__fsm__image__unpack(NULL, len, img);
  ck_assert_ptr_nonnull(m);
  ck_assert_uint_eq(m->n_channels_gone, 1);
  size_t kept = m->n_channels_gone;
  m->n_channels_gone = 0; /* as an older build wrote it */
  old_len = synod__fsm__image__get_packed_size(m);
  old = malloc(old_len);
  synod__fsm__image__pack(m, old);
  m->n_channels_gone = kept;
  synod__fsm__image__free_unpacked(m, NULL);
  struct fsm *g = fsm_new(NULL);
  ck_assert_int_eq(fsm_snapshot_decode(g, old, old_len), 0);
  ck_assert_uint_lt(old_len, len);
  ck_assert_uint_eq(fsm_digest(g), fsm_digest(h.f));
  free(img);
  free(old);
  fsm_free(g);
  h_close(&h);
}
END_TEST

START_TEST(channel_publish_retried_in_a_session_appends_once) {
  struct h h;
  h_init(&h, NULL);
  uint64_t sid = h_open(&h, 10000);
  h_publish(&h, sid, 1, "events", 2, 1, NULL);
  ck_assert_uint_eq(h.resp->channel_publish->first_offset, 1);
  h_publish(&h, sid, 1, "events", 2, 1, NULL); /* the retry */
  ck_assert_int_eq(h_err(&h), 0);
  ck_assert_uint_eq(h.resp->channel_publish->first_offset, 1);
  ck_assert_uint_eq(h.resp->channel_publish->last_offset, 2);
  assert_messages(h_read(&h, "events", 0), 1, 2, 1);
  h_close(&h);
}
END_TEST

START_TEST(channel_message_id_is_deduplicated_within_its_window) {
  struct h h;
  h_init(&h, NULL);
  h_publish(&h, 0, 0, "events", 1, 1, "id-1");
  h_publish(&h, 0, 0, "events", 1, 1, "id-1");
  ck_assert(h.resp->channel_publish->duplicate);
  ck_assert_uint_eq(h.resp->channel_publish->first_offset, 1);
  h_publish(&h, 0, 0, "events", 1, 2, "id-2");
  ck_assert_uint_eq(h.resp->channel_publish->first_offset, 2);
  h_at(&h, h.time_ms + 600000); /* the id window passes */
  h_publish(&h, 0, 0, "events", 1, 3, "id-1");
  ck_assert(!h.resp->channel_publish->duplicate);
  ck_assert_uint_eq(h.resp->channel_publish->first_offset, 3);
  h_close(&h);
}
END_TEST

START_TEST(channel_retention_drops_the_oldest_or_refuses) {
  struct h h;
  h_init(&h, NULL);
  h_channel_create(&h, "drop", 3, 0, false);
  ck_assert_int_eq(h_err(&h), 0);
  for (int k = 1; k <= 5; k++) {
    h_publish(&h, 0, 0, "drop", 1, k, NULL);
    ck_assert_int_eq(h_err(&h), 0);
  }
  assert_messages(h_read(&h, "drop", 0), 3, 3, 3);
  Synod__Response *r = h_read(&h, "drop", 2);
  ck_assert_int_eq(r->error->code, SYNOD_ECOMPACTED);
  ck_assert_uint_eq(r->error->first_available, 3);
  synod__response__free_unpacked(r, NULL);
  h_channel_create(&h, "refuse", 2, 0, true);
  h_publish(&h, 0, 0, "refuse", 2, 1, NULL);
  ck_assert_int_eq(h_err(&h), 0);
  char *before = channel_seen(&h, "refuse");
  h_publish(&h, 0, 0, "refuse", 1, 3, NULL);
  ck_assert_int_eq(h_err(&h), SYNOD_ELIMIT);
  ck_assert_ptr_nonnull(strstr(h_msg(&h), "is full"));
  assert_seen(&h, "refuse", before);
  assert_messages(h_read(&h, "refuse", 0), 1, 2, 1);
  h_close(&h);
}
END_TEST

START_TEST(channel_messages_older_than_max_age_are_gone) {
  struct h h;
  h_init(&h, NULL);
  h_channel_create(&h, "short", 0, 1000, false);
  h_publish(&h, 0, 0, "short", 2, 1, NULL);
  h_at(&h, h.time_ms + 500);
  h_publish(&h, 0, 0, "short", 1, 3, NULL);
  h_at(&h, h.time_ms + 600); /* the first two are 1,100 ms old */
  assert_messages(h_read(&h, "short", 0), 3, 1, 3);
  Synod__Response *r = h_read(&h, "short", 1);
  ck_assert_int_eq(r->error->code, SYNOD_ECOMPACTED);
  synod__response__free_unpacked(r, NULL);
  h_at(&h, h.time_ms + 1000);
  h_publish(&h, 0, 0, "short", 1, 4, NULL);
  assert_messages(h_read(&h, "short", 0), 4, 1, 4);
  h_close(&h);
}
END_TEST

/* Every refused request names what and which value, and changes nothing. */
START_TEST(channel_bad_input_gets_clear_errors_and_changes_nothing) {
  struct h h;
  h_init(&h, NULL);
  h_publish(&h, 0, 0, "events", 1, 1, NULL);
  char *before = channel_seen(&h, "events");
  static uint8_t big[300000];
  Synod__ChannelPublish p = SYNOD__CHANNEL_PUBLISH__INIT;
  ProtobufCBinaryData m = {sizeof big, big};
  p.name = "events";
  p.n_messages = 1;
  p.messages = &m;
  uint8_t *buf = malloc(400000);
  Synod__Request r = SYNOD__REQUEST__INIT;
  r.body_case = SYNOD__REQUEST__BODY_CHANNEL_PUBLISH;
  r.channel_publish = &p;
  size_t n = fsm_command_encode_request(h.time_ms, &r, buf, 400000);
  h_apply_bytes(&h, buf, n);
  free(buf);
  ck_assert_int_eq(h_err(&h), SYNOD_ETOOBIG);
  ck_assert_ptr_nonnull(strstr(h_msg(&h), "300000 bytes"));
  h_publish(&h, 0, 0, "events", 0, 1, NULL);
  ck_assert_int_eq(h_err(&h), SYNOD_EINVAL);
  h_publish(&h, 0, 0, "", 1, 1, NULL);
  ck_assert_int_eq(h_err(&h), SYNOD_EINVAL);
  h_channel_create(&h, "events", 5, 0, false); /* other limits */
  ck_assert_int_eq(h_err(&h), SYNOD_EEXIST);
  Synod__ChannelCreate c = SYNOD__CHANNEL_CREATE__INIT;
  Synod__ChannelLimits l = SYNOD__CHANNEL_LIMITS__INIT;
  l.max_message_bytes = 2000000;
  c.name = "huge";
  c.limits = &l;
  REQ(&h, 0, 0, CHANNEL_CREATE, channel_create, &c);
  ck_assert_int_eq(h_err(&h), SYNOD_ERANGE);
  Synod__ChannelDelete d = SYNOD__CHANNEL_DELETE__INIT;
  d.name = "nope";
  REQ(&h, 0, 0, CHANNEL_DELETE, channel_delete, &d);
  ck_assert_int_eq(h_err(&h), SYNOD_ENOTFOUND);
  Synod__Response *rr = h_read(&h, "events", 3);
  ck_assert_int_eq(rr->error->code, SYNOD_ERANGE);
  synod__response__free_unpacked(rr, NULL);
  assert_seen(&h, "events", before);
  Synod__Request lr = SYNOD__REQUEST__INIT;
  Synod__ChannelList cl = SYNOD__CHANNEL_LIST__INIT;
  lr.body_case = SYNOD__REQUEST__BODY_CHANNEL_LIST;
  lr.channel_list = &cl;
  rr = h_query(&h, &lr);
  ck_assert_uint_eq(rr->channel_list->n_channels, 1); /* "huge" not made */
  synod__response__free_unpacked(rr, NULL);
  h_close(&h);
}
END_TEST

/* A replica restored from the image answers reads and goes on publishing
 * exactly as the one that wrote it: same offsets, ids, limits, digest. */
START_TEST(channel_state_survives_a_snapshot_byte_for_byte) {
  struct h a, b;
  h_init(&a, NULL);
  h_init(&b, NULL);
  h_channel_create(&a, "small", 4, 0, false);
  for (int k = 1; k <= 9; k++) {
    h_publish(&a, 0, 0, k % 2 ? "small" : "other", 2, k, k % 3 ? NULL : "x");
  }
  uint8_t *img;
  size_t len;
  ck_assert_int_eq(fsm_snapshot_encode(a.f, &img, &len), 0);
  ck_assert_int_eq(fsm_snapshot_decode(b.f, img, len), 0);
  free(img);
  b.index = a.index;
  b.time_ms = a.time_ms;
  ck_assert_uint_eq(fsm_digest(a.f), fsm_digest(b.f));
  h_publish(&a, 0, 0, "small", 1, 50, "x"); /* a duplicate on both */
  h_publish(&b, 0, 0, "small", 1, 50, "x");
  ck_assert(b.resp->channel_publish->duplicate);
  h_publish(&a, 0, 0, "small", 1, 60, NULL);
  h_publish(&b, 0, 0, "small", 1, 60, NULL);
  ck_assert_uint_eq(a.resp->channel_publish->first_offset,
                    b.resp->channel_publish->first_offset);
  ck_assert_uint_eq(fsm_digest(a.f), fsm_digest(b.f));
  Synod__Response *ra = h_read(&a, "small", 0), *rb = h_read(&b, "small", 0);
  ck_assert_uint_eq(ra->channel_messages->n_messages,
                    rb->channel_messages->n_messages);
  ck_assert_uint_eq(ra->channel_messages->first_offset,
                    rb->channel_messages->first_offset);
  synod__response__free_unpacked(ra, NULL);
  synod__response__free_unpacked(rb, NULL);
  h_close(&a);
  h_close(&b);
}
END_TEST

static void h_cursor(struct h *h, const char *ch, const char *cursor,
                     uint64_t offset) {
  Synod__ChannelCursorCommit q = SYNOD__CHANNEL_CURSOR_COMMIT__INIT;
  q.channel = (char *)ch;
  q.cursor = (char *)cursor;
  q.offset = offset;
  REQ(h, 0, 0, CHANNEL_CURSOR_COMMIT, channel_cursor_commit, &q);
}

static int h_resp_code(const struct h *h) {
  return h->resp->error ? (int)h->resp->error->code : 0;
}

/* Durable cursors: commit (back and forth, not past the last offset),
 * get, a cap per channel, gone with the channel, in the snapshot. */
START_TEST(channel_cursors_commit_get_and_survive_a_snapshot) {
  struct h a, b;
  h_init(&a, NULL);
  h_init(&b, NULL);
  h_publish(&a, 0, 0, "c", 5, 1, NULL);
  h_cursor(&a, "c", "w1", 3);
  ck_assert_int_eq(h_resp_code(&a), 0);
  ck_assert_uint_eq(a.resp->channel_cursor->offset, 3);
  ck_assert_uint_eq(a.resp->channel_cursor->index, a.index);
  h_cursor(&a, "c", "w1", 1); /* back: a replay */
  ck_assert_int_eq(h_resp_code(&a), 0);
  h_cursor(&a, "c", "w0", 5);
  ck_assert_int_eq(h_resp_code(&a), 0);
  char *before = channel_seen(&a, "c");
  h_cursor(&a, "c", "w2", 6);
  ck_assert_int_eq(h_resp_code(&a), SYNOD_ERANGE);
  h_cursor(&a, "nope", "w2", 0);
  ck_assert_int_eq(h_resp_code(&a), SYNOD_ENOTFOUND);
  h_cursor(&a, "c", "", 0);
  ck_assert_int_eq(h_resp_code(&a), SYNOD_EINVAL);
  assert_seen(&a, "c", before);
  uint64_t off = 0;
  ck_assert(fsm_channel_cursor(a.f, "c", 1, "w1", &off) && off == 1);
  ck_assert(fsm_channel_cursor(a.f, "c", 1, "w0", &off) && off == 5);
  ck_assert(!fsm_channel_cursor(a.f, "c", 1, "w2", &off));
  /* Through fsm_query. */
  Synod__Request r = SYNOD__REQUEST__INIT;
  Synod__ChannelCursorGet g = SYNOD__CHANNEL_CURSOR_GET__INIT;
  g.channel = "c";
  g.cursor = "w0";
  r.body_case = SYNOD__REQUEST__BODY_CHANNEL_CURSOR_GET;
  r.channel_cursor_get = &g;
  Synod__Response *q = h_query(&a, &r);
  ck_assert_ptr_null(q->error);
  ck_assert_uint_eq(q->channel_cursor->offset, 5);
  synod__response__free_unpacked(q, NULL);
  g.cursor = "zz";
  q = h_query(&a, &r);
  ck_assert_int_eq(q->error->code, SYNOD_ENOTFOUND);
  synod__response__free_unpacked(q, NULL);
  /* The snapshot keeps them. */
  uint8_t *img;
  size_t len;
  ck_assert_int_eq(fsm_snapshot_encode(a.f, &img, &len), 0);
  ck_assert_int_eq(fsm_snapshot_decode(b.f, img, len), 0);
  free(img);
  ck_assert_uint_eq(fsm_digest(a.f), fsm_digest(b.f));
  ck_assert(fsm_channel_cursor(b.f, "c", 1, "w1", &off) && off == 1);
  /* At most 1,024 per channel. */
  for (int k = 0; k < 1022; k++) {
    char name[16];
    snprintf(name, sizeof name, "k%04d", k);
    h_cursor(&a, "c", name, 0);
    ck_assert_int_eq(h_resp_code(&a), 0);
  }
  h_cursor(&a, "c", "one-too-many", 0);
  ck_assert_int_eq(h_resp_code(&a), SYNOD_ELIMIT);
  h_close(&a);
  h_close(&b);
}
END_TEST

/* What subscriptions read: a publish reports CHANNEL_APPENDED, a delete
 * CHANNEL_DELETED; streams by name and by prefix, with the newest evicted
 * index, which the snapshot keeps. */
START_TEST(channel_streams_and_events_for_subscriptions) {
  struct h a, b;
  h_init(&a, NULL);
  h_init(&b, NULL);
  h_channel_create(&a, "p/a", 2, 0, false);
  h_publish(&a, 0, 0, "p/a", 1, 1, NULL);
  ck_assert_uint_eq(a.out.events_len, 1);
  ck_assert_int_eq(a.out.events[0].type, FSM_EVENT_CHANNEL_APPENDED);
  ck_assert_str_eq(a.out.events[0].name, "p/a");
  uint64_t evicting = a.index;
  h_publish(&a, 0, 0, "p/a", 1, 2, NULL);
  h_publish(&a, 0, 0, "p/a", 1, 3, NULL); /* evicts the first */
  h_publish(&a, 0, 0, "p/b", 1, 4, NULL);
  h_publish(&a, 0, 0, "q", 1, 5, NULL);
  struct fsm_stream st;
  ck_assert(fsm_channel_stream(a.f, "p/a", 3, &st));
  ck_assert_uint_eq(st.first, 2);
  ck_assert_uint_eq(st.evicted_index, evicting);
  ck_assert(!fsm_channel_stream(a.f, "p/c", 3, &st));
  /* A batch of 2, then one more into room for 2, evicts part of the
   * batch: the newest evicted index is the first retained one's, and the
   * image keeps it (the simulator found such images refused as
   * corrupt). */
  h_publish(&a, 0, 0, "p/a", 2, 6, NULL);
  evicting = a.index;
  h_publish(&a, 0, 0, "p/a", 1, 8, NULL); /* evicts the batch's first */
  ck_assert(fsm_channel_stream(a.f, "p/a", 3, &st));
  ck_assert_uint_eq(st.evicted_index, evicting);
  uint8_t *img;
  size_t len;
  ck_assert_int_eq(fsm_snapshot_encode(a.f, &img, &len), 0);
  ck_assert_int_eq(fsm_snapshot_decode(b.f, img, len), 0);
  free(img);
  ck_assert(fsm_channel_stream(b.f, "p/a", 3, &st));
  ck_assert_uint_eq(st.evicted_index, evicting);
  Synod__ChannelDelete d = SYNOD__CHANNEL_DELETE__INIT;
  d.name = "p/b";
  REQ(&a, 0, 0, CHANNEL_DELETE, channel_delete, &d);
  ck_assert_uint_eq(a.out.events_len, 1);
  ck_assert_int_eq(a.out.events[0].type, FSM_EVENT_CHANNEL_DELETED);
  ck_assert_str_eq(a.out.events[0].name, "p/b");
  h_close(&a);
  h_close(&b);
}
END_TEST

/* The server-wide cap is a replicated setting: a Settings entry changes
 * it on every replica alike (new channels' default max_bytes follows it,
 * larger limits are refused), and the snapshot keeps it. */
START_TEST(channel_byte_cap_is_a_replicated_setting) {
  struct h a, b;
  h_init(&a, NULL);
  h_init(&b, NULL);
  ck_assert_uint_eq(fsm_channels_bytes_max(a.f), 64ull << 20);
  Synod__ChannelCreate c = SYNOD__CHANNEL_CREATE__INIT;
  Synod__ChannelLimits l = SYNOD__CHANNEL_LIMITS__INIT;
  l.max_bytes = 100ull << 20;
  c.name = "big";
  c.limits = &l;
  REQ(&a, 0, 0, CHANNEL_CREATE, channel_create, &c);
  ck_assert_int_eq(h_resp_code(&a), SYNOD_ERANGE);
  uint8_t buf[64];
  struct fsm_settings st = {.channels_bytes_max = 128ull << 20};
  size_t n = fsm_command_encode_settings(a.time_ms, &st, buf, sizeof buf);
  ck_assert_uint_le(n, sizeof buf);
  h_apply_bytes(&a, buf, n);
  ck_assert_uint_eq(fsm_channels_bytes_max(a.f), 128ull << 20);
  REQ(&a, 0, 0, CHANNEL_CREATE, channel_create, &c);
  ck_assert_int_eq(h_resp_code(&a), 0);
  st.channels_bytes_max = 1 << 20; /* lowered: defaults follow */
  n = fsm_command_encode_settings(a.time_ms, &st, buf, sizeof buf);
  h_apply_bytes(&a, buf, n);
  h_publish(&a, 0, 0, "small", 1, 1, NULL);
  Synod__ChannelInfoGet g = SYNOD__CHANNEL_INFO_GET__INIT;
  Synod__Request r = SYNOD__REQUEST__INIT;
  g.name = "small";
  r.body_case = SYNOD__REQUEST__BODY_CHANNEL_INFO;
  r.channel_info = &g;
  Synod__Response *q = h_query(&a, &r);
  ck_assert_uint_eq(q->channel_info->limits->max_bytes, 1 << 20);
  synod__response__free_unpacked(q, NULL);
  uint8_t *img;
  size_t len;
  ck_assert_int_eq(fsm_snapshot_encode(a.f, &img, &len), 0);
  ck_assert_int_eq(fsm_snapshot_decode(b.f, img, len), 0);
  free(img);
  ck_assert_uint_eq(fsm_channels_bytes_max(b.f), 1 << 20);
  ck_assert_uint_eq(fsm_digest(a.f), fsm_digest(b.f));
  h_close(&a);
  h_close(&b);
}
END_TEST

/* Fills the stack below the caller with `byte`, so that what a callee
 * leaves uninitialised (struct padding) differs from call to call. */
static void __attribute__((noinline)) stack_dirty(uint8_t byte) {
  volatile uint8_t junk[1 << 16];
  for (size_t i = 0; i < sizeof junk; i++) {
    junk[i] = byte;
  }
}

/* Creating a channel again with the limits it has succeeds, whether it
 * was made by a publish, a create or a snapshot, and whatever the
 * replica's stack held (the simulator found limits compared with their
 * padding bytes: refused at random, and differently on each replica). */
START_TEST(channel_create_with_the_limits_it_has_succeeds) {
  struct h a, b;
  h_init(&a, NULL);
  h_init(&b, NULL);
  stack_dirty(0xa5);
  h_publish(&a, 0, 0, "events", 1, 1, NULL);
  stack_dirty(0x5a);
  h_channel_create(&a, "small", 4, 0, false);
  stack_dirty(0x5a);
  Synod__ChannelCreate c = SYNOD__CHANNEL_CREATE__INIT;
  c.name = "events"; /* the defaults it was made with */
  REQ(&a, 0, 0, CHANNEL_CREATE, channel_create, &c);
  ck_assert_msg(h_err(&a) == 0, "%s", h_msg(&a));
  stack_dirty(0xa5);
  h_channel_create(&a, "small", 4, 0, false);
  ck_assert_msg(h_err(&a) == 0, "%s", h_msg(&a));
  uint8_t *img;
  size_t len;
  ck_assert_int_eq(fsm_snapshot_encode(a.f, &img, &len), 0);
  stack_dirty(0xff);
  ck_assert_int_eq(fsm_snapshot_decode(b.f, img, len), 0);
  free(img);
  b.index = a.index;
  b.time_ms = a.time_ms;
  stack_dirty(0x11);
  h_channel_create(&b, "small", 4, 0, false);
  ck_assert_msg(h_err(&b) == 0, "%s", h_msg(&b));
  h_channel_create(&b, "small", 5, 0, false);
  ck_assert_int_eq(h_err(&b), SYNOD_EEXIST);
  h_close(&a);
  h_close(&b);
}
END_TEST

/* The server-wide cap: a channel drops its own oldest to make room, but
 * never another channel's; past that, the publish is refused. */
START_TEST(channel_server_wide_byte_cap_is_kept) {
  struct fsm_options o = {.channels_bytes_max = 10};
  struct h h;
  h_init(&h, &o);
  h_publish(&h, 0, 0, "a", 3, 1, NULL); /* m1 m2 m3: 6 bytes */
  ck_assert_int_eq(h_err(&h), 0);
  h_publish(&h, 0, 0, "b", 3, 4, NULL); /* 6 more: over 10 */
  ck_assert_int_eq(h_err(&h), SYNOD_ELIMIT);
  h_publish(&h, 0, 0, "b", 2, 4, NULL); /* 4 more: fits */
  ck_assert_int_eq(h_err(&h), 0);
  h_publish(&h, 0, 0, "a", 2, 4, NULL); /* a drops its two oldest */
  ck_assert_int_eq(h_err(&h), 0);
  assert_messages(h_read(&h, "a", 0), 3, 3, 3);
  assert_messages(h_read(&h, "b", 0), 1, 2, 4);
  h_close(&h);
}
END_TEST

static TCase *tcase_channels(void) {
  TCase *tc = tcase_create("channels");
  tcase_add_test(tc, channel_publish_gets_dense_offsets_and_its_entry_index);
  tcase_add_test(
      tc, channel_read_with_a_known_index_refuses_a_channel_created_again);
  tcase_add_test(tc, channel_deletions_are_replicated_state_and_bounded);
  tcase_add_test(tc, digest_leaves_out_the_record_of_deleted_channels);
  tcase_add_test(tc, channel_publish_retried_in_a_session_appends_once);
  tcase_add_test(tc, channel_message_id_is_deduplicated_within_its_window);
  tcase_add_test(tc, channel_retention_drops_the_oldest_or_refuses);
  tcase_add_test(tc, channel_messages_older_than_max_age_are_gone);
  tcase_add_test(tc, channel_bad_input_gets_clear_errors_and_changes_nothing);
  tcase_add_test(tc, channel_state_survives_a_snapshot_byte_for_byte);
  tcase_add_test(tc, channel_server_wide_byte_cap_is_kept);
  tcase_add_test(tc, channel_cursors_commit_get_and_survive_a_snapshot);
  tcase_add_test(tc, channel_streams_and_events_for_subscriptions);
  tcase_add_test(tc, channel_byte_cap_is_a_replicated_setting);
  tcase_add_test(tc, channel_create_with_the_limits_it_has_succeeds);
  return tc;
}

/* ------------------------------------------------------------ keys */

/* Applies a request of any size (values up to the 64 KiB limit and over). */
static void h_req_any(struct h *h, Synod__Request *req) {
  size_t n = fsm_command_encode_request(h->time_ms, req, NULL, 0);
  uint8_t *buf = malloc(n);
  ck_assert_uint_eq(fsm_command_encode_request(h->time_ms, req, buf, n), n);
  h_apply_bytes(h, buf, n);
  free(buf);
}

static ProtobufCBinaryData bin(const char *s) {
  return (ProtobufCBinaryData){s ? strlen(s) : 0, (uint8_t *)s};
}

#define KREQ(h, sid, seq, CASE, field, msg)                                    \
  do {                                                                         \
    Synod__Request r_ = SYNOD__REQUEST__INIT;                                  \
    r_.session_id = (sid);                                                     \
    r_.sequence = (seq);                                                       \
    r_.body_case = SYNOD__REQUEST__BODY_##CASE;                                \
    r_.field = (msg);                                                          \
    h_req_any((h), &r_);                                                       \
  } while (0)

/* A put; the answer is in h->resp. */
static void h_kput_cmp(struct h *h, uint64_t sid, uint64_t seq, const char *k,
                       const char *v, bool bound, Synod__KeyCompare **cs,
                       size_t n) {
  Synod__KeyPut p = SYNOD__KEY_PUT__INIT;
  p.key = bin(k);
  p.value = bin(v);
  p.session_bound = bound;
  p.compares = cs;
  p.n_compares = n;
  KREQ(h, sid, seq, KEY_PUT, key_put, &p);
}

static void h_kput(struct h *h, uint64_t sid, uint64_t seq, const char *k,
                   const char *v, bool bound) {
  h_kput_cmp(h, sid, seq, k, v, bound, NULL, 0);
}

/* A put that must succeed; returns its revision. */
static uint64_t h_kput_ok(struct h *h, const char *k, const char *v) {
  h_kput(h, 0, 0, k, v, false);
  ck_assert_msg(h_err(h) == 0, "%s", h->resp->error ? h_msg(h) : "");
  ck_assert(h->resp->key_put->succeeded);
  return h->resp->key_put->revision;
}

static void h_kdel(struct h *h, uint64_t sid, uint64_t seq, const char *k,
                   bool prefix) {
  Synod__KeyDelete d = SYNOD__KEY_DELETE__INIT;
  d.key = bin(k);
  d.prefix = prefix;
  KREQ(h, sid, seq, KEY_DELETE, key_delete, &d);
}

/* A get through fsm_query; the caller frees. */
static Synod__Response *h_kget(struct h *h, const char *k) {
  Synod__Request r = SYNOD__REQUEST__INIT;
  Synod__KeyGet g = SYNOD__KEY_GET__INIT;
  g.key = bin(k);
  r.body_case = SYNOD__REQUEST__BODY_KEY_GET;
  r.key_get = &g;
  ck_assert(fsm_request_is_read(&r));
  return h_query(h, &r);
}

/* The value of k, or NULL if absent; the caller frees. */
static char *h_kvalue(struct h *h, const char *k) {
  Synod__Response *r = h_kget(h, k);
  ck_assert_ptr_null(r->error);
  char *v = NULL;
  if (r->key_get->found) {
    v = strndup((const char *)r->key_get->kv->value.data,
                r->key_get->kv->value.len);
  }
  synod__response__free_unpacked(r, NULL);
  return v;
}

static bool h_khas(struct h *h, const char *k) {
  char *v = h_kvalue(h, k);
  free(v);
  return v != NULL;
}

/* A list page at a revision (0: now). */
static Synod__Response *h_klist_at(struct h *h, const char *prefix,
                                   const char *after, uint32_t limit,
                                   bool keys_only, uint64_t revision) {
  Synod__Request r = SYNOD__REQUEST__INIT;
  Synod__KeyList q = SYNOD__KEY_LIST__INIT;
  q.prefix = bin(prefix);
  q.after = bin(after);
  q.limit = limit;
  q.keys_only = keys_only;
  q.revision = revision;
  r.body_case = SYNOD__REQUEST__BODY_KEY_LIST;
  r.key_list = &q;
  ck_assert(fsm_request_is_read(&r));
  return h_query(h, &r);
}

static Synod__Response *h_klist(struct h *h, const char *prefix,
                                const char *after, uint32_t limit,
                                bool keys_only) {
  return h_klist_at(h, prefix, after, limit, keys_only, 0);
}

static bool kv_is(const Synod__KeyValue *kv, const char *k) {
  return kv->key.len == strlen(k) && memcmp(kv->key.data, k, kv->key.len) == 0;
}

static bool value_is(const Synod__KeyValue *kv, const char *v) {
  return kv->value.len == strlen(v) &&
         memcmp(kv->value.data, v, kv->value.len) == 0;
}

static void h_session_close(struct h *h, uint64_t sid) {
  Synod__Request r = SYNOD__REQUEST__INIT;
  Synod__SessionClose cl = SYNOD__SESSION_CLOSE__INIT;
  r.session_id = sid;
  r.body_case = SYNOD__REQUEST__BODY_SESSION_CLOSE;
  r.session_close = &cl;
  h_req(h, &r);
}

/* The page's keys and values as "k=v k=v" (keys only: "k k"). */
static void list_text(const Synod__Response *l, char *out, size_t cap) {
  size_t n = 0;
  out[0] = '\0';
  ck_assert_ptr_null(l->error);
  for (size_t i = 0; i < l->key_list->n_kvs; i++) {
    const Synod__KeyValue *kv = l->key_list->kvs[i];
    n += (size_t)snprintf(out + n, cap - n, "%s%.*s=%.*s", i ? " " : "",
                          (int)kv->key.len, (const char *)kv->key.data,
                          (int)kv->value.len, (const char *)kv->value.data);
  }
}

/* A list at a past revision shows the keys as they were then, whatever
 * changed since (puts, deletes, a session's end, a key made later): so a
 * listing whose later pages ask at the first page's revision is
 * consistent at it. Older than the history: SYNOD_ECOMPACTED; newer
 * than the newest: SYNOD_EINVAL. */
START_TEST(key_list_at_a_past_revision_is_the_keys_then) {
  struct fsm_options o = {.key_history_max = 50};
  struct h h;
  h_init(&h, &o);
  char text[512];
  uint64_t sid = h_open(&h, 60000);
  h_kput_ok(&h, "l/a", "1");
  h_kput_ok(&h, "l/b", "1");
  h_kput(&h, sid, 2, "l/c", "1", true); /* bound to the session */
  ck_assert_int_eq(h_err(&h), 0);
  uint64_t r1 = h.resp->key_put->revision;
  h_kput_ok(&h, "l/b", "2");
  h_kdel(&h, 0, 0, "l/a", false);
  h_kput_ok(&h, "l/d", "1");
  h_kput_ok(&h, "m/x", "1"); /* outside the prefix */
  h_session_close(&h, sid);  /* l/c goes with it */
  Synod__Response *l = h_klist_at(&h, "l/", NULL, 0, false, 0);
  list_text(l, text, sizeof text);
  ck_assert_str_eq(text, "l/b=2 l/d=1");
  synod__response__free_unpacked(l, NULL);
  l = h_klist_at(&h, "l/", NULL, 0, false, r1);
  list_text(l, text, sizeof text);
  ck_assert_str_eq(text, "l/a=1 l/b=1 l/c=1");
  ck_assert_uint_eq(l->key_list->revision, r1);
  ck_assert_uint_eq(l->key_list->kvs[1]->mod_revision, r1 - 1);
  ck_assert_uint_eq(l->key_list->kvs[2]->session_id, sid);
  synod__response__free_unpacked(l, NULL);
  /* In pages of one, each at r1. */
  const char *want[] = {"l/a=1", "l/b=1", "l/c=1"};
  const char *after = NULL;
  char last[16] = "";
  for (int i = 0; i < 3; i++) {
    l = h_klist_at(&h, "l/", after, 1, false, r1);
    list_text(l, text, sizeof text);
    ck_assert_str_eq(text, want[i]);
    ck_assert(l->key_list->more == (i < 2));
    snprintf(last, sizeof last, "%.*s", (int)l->key_list->kvs[0]->key.len,
             (const char *)l->key_list->kvs[0]->key.data);
    after = last;
    synod__response__free_unpacked(l, NULL);
  }
  l = h_klist_at(&h, "l/", NULL, 0, false,
                 r1 + 2); /* after the delete of l/a */
  list_text(l, text, sizeof text);
  ck_assert_str_eq(text, "l/b=2 l/c=1");
  synod__response__free_unpacked(l, NULL);
  l = h_klist_at(&h, "l/", NULL, 0, false, fsm_key_revision(h.f) + 1);
  ck_assert_int_eq(l->error->code, SYNOD_EINVAL);
  synod__response__free_unpacked(l, NULL);
  /* A stale read on a replica behind: not there yet, not a bad request. */
  Synod__Request sr = SYNOD__REQUEST__INIT;
  Synod__KeyList sq = SYNOD__KEY_LIST__INIT;
  sq.prefix = bin("l/");
  sq.revision = fsm_key_revision(h.f) + 1;
  sr.body_case = SYNOD__REQUEST__BODY_KEY_LIST;
  sr.key_list = &sq;
  sr.stale = true;
  l = h_query(&h, &sr);
  ck_assert_int_eq(l->error->code, SYNOD_EUNAVAILABLE);
  synod__response__free_unpacked(l, NULL);
  for (int i = 0; i < 60; i++) {
    h_kput_ok(&h, "m/y", "1"); /* the history keeps 50 revisions */
  }
  l = h_klist_at(&h, "l/", NULL, 0, false, r1);
  ck_assert_int_eq(l->error->code, SYNOD_ECOMPACTED);
  ck_assert_uint_gt(l->error->first_available, r1);
  synod__response__free_unpacked(l, NULL);
  h_close(&h);
}
END_TEST

/* A differential check of lists at past revisions (written by a review,
 * kept): random puts, session-bound puts, deletes (of keys and prefixes)
 * and session ends on ten keys, with a small history, small pages and a
 * small reply bound; after each step, a whole listing at a random past
 * revision, under a random prefix, must equal the listing taken at that
 * revision then (or be SYNOD_ECOMPACTED exactly when the history no
 * longer holds every change after it). */
#define LT_REVS 2000
static char *lt_then[LT_REVS];

static void lt_page_text(const Synod__Response *l, char *out, size_t cap,
                         size_t *n) {
  for (size_t i = 0; i < l->key_list->n_kvs; i++) {
    const Synod__KeyValue *kv = l->key_list->kvs[i];
    *n += (size_t)snprintf(
        out + *n, cap - *n, "%.*s=%.*s@%llu/%llu/%llu/%llu;", (int)kv->key.len,
        (const char *)kv->key.data, (int)kv->value.len,
        (const char *)kv->value.data, (unsigned long long)kv->create_revision,
        (unsigned long long)kv->mod_revision, (unsigned long long)kv->version,
        (unsigned long long)kv->session_id);
  }
}

/* A whole listing of prefix at rev (0: now), in pages of limit; 0 or the
 * error code. */
static int lt_list_all(struct h *h, const char *prefix, uint64_t rev,
                       uint32_t limit, char *out, size_t cap) {
  size_t n = 0;
  char after[64] = "";
  out[0] = '\0';
  for (int pages = 0; pages < 1000; pages++) {
    Synod__Response *l =
        h_klist_at(h, prefix, after[0] ? after : NULL, limit, false, rev);
    if (l->error) {
      int c = (int)l->error->code;
      synod__response__free_unpacked(l, NULL);
      return c;
    }
    ck_assert_uint_eq(l->key_list->revision,
                      rev ? rev : fsm_key_revision(h->f));
    lt_page_text(l, out, cap, &n);
    bool more = l->key_list->more;
    if (l->key_list->n_kvs > 0) {
      const Synod__KeyValue *kv = l->key_list->kvs[l->key_list->n_kvs - 1];
      snprintf(after, sizeof after, "%.*s", (int)kv->key.len,
               (const char *)kv->key.data);
    }
    synod__response__free_unpacked(l, NULL);
    if (!more) {
      return 0;
    }
  }
  ck_abort_msg("too many pages");
  return -1;
}

/* The entries of a whole listing's text under prefix. */
static void lt_filter(const char *all, const char *prefix, char *out,
                      size_t cap) {
  size_t n = 0, pl = strlen(prefix);
  out[0] = '\0';
  for (const char *p = all; *p;) {
    const char *e = strchr(p, ';');
    if (strncmp(p, prefix, pl) == 0) {
      n += (size_t)snprintf(out + n, cap - n, "%.*s", (int)(e - p + 1), p);
    }
    p = e + 1;
  }
}

START_TEST(key_list_at_a_revision_equals_the_listing_taken_then) {
  static char got[65536], want[65536], all[65536];
  const char *keys[] = {"a",   "ab",  "a/1", "a/2", "a/3",
                        "a/4", "b/1", "b/2", "b/3", "c"};
  const char *prefixes[] = {"", "a", "a/", "b/", "c", "zz"};
  unsigned seeds = getenv("SYNOD_TEST_VALGRIND") ? 8 : 100, compared = 0;
  for (unsigned seed = 1; seed <= seeds; seed++) {
    srand(seed);
    struct fsm_options o = {0};
    o.key_history_max = 10 + (uint64_t)(rand() % 60);
    o.key_reply_bytes_max = 8 + (uint32_t)(rand() % 60);
    o.key_work_per_entry = 1 + (uint32_t)(rand() % 3);
    struct h h;
    h_init(&h, &o);
    uint64_t sid[3], seq[3];
    for (int i = 0; i < 3; i++) {
      sid[i] = h_open(&h, 60000);
      seq[i] = 1;
    }
    memset(lt_then, 0, sizeof lt_then);
    ck_assert_int_eq(lt_list_all(&h, "", 0, 0, all, sizeof all), 0);
    lt_then[fsm_key_revision(h.f)] = strdup(all);
    for (int step = 0; step < 300 && fsm_key_revision(h.f) < LT_REVS - 5;
         step++) {
      int op = rand() % 12, si = rand() % 3;
      const char *k = keys[rand() % 10];
      char v[16];
      snprintf(v, sizeof v, "v%d", step);
      if (op < 5) {
        h_kput(&h, 0, 0, k, v, false);
      } else if (op < 8) {
        h_kput(&h, sid[si], seq[si]++, k, v, true);
      } else if (op < 10) {
        h_kdel(&h, 0, 0, k, rand() % 3 == 0);
      } else {
        h_session_close(&h, sid[si]);
        sid[si] = h_open(&h, 60000);
        seq[si] = 1;
      }
      uint64_t now = fsm_key_revision(h.f);
      if (lt_then[now] == NULL) {
        ck_assert_int_eq(lt_list_all(&h, "", 0, 0, all, sizeof all), 0);
        lt_then[now] = strdup(all);
      }
      uint64_t r = now ? 1 + (uint64_t)rand() % now : 0;
      if (r == 0 || lt_then[r] == NULL) {
        continue;
      }
      const char *pf = prefixes[rand() % 6];
      uint32_t lim = (uint32_t)(rand() % 4);
      int rc = lt_list_all(&h, pf, r, lim, got, sizeof got);
      struct fsm_stream st;
      fsm_key_stream(h.f, &st);
      if (r < now && r + 1 < st.first) {
        ck_assert_int_eq(rc, SYNOD_ECOMPACTED);
        continue;
      }
      ck_assert_msg(rc == 0, "seed %u revision %llu (history from %llu): %d",
                    seed, (unsigned long long)r, (unsigned long long)st.first,
                    rc);
      lt_filter(lt_then[r], pf, want, sizeof want);
      ck_assert_msg(strcmp(got, want) == 0,
                    "seed %u step %d revision %llu (now %llu) prefix '%s' "
                    "limit %u:\n got  %s\n want %s",
                    seed, step, (unsigned long long)r, (unsigned long long)now,
                    pf, lim, got, want);
      compared++;
    }
    for (int i = 0; i < LT_REVS; i++) {
      free(lt_then[i]);
      lt_then[i] = NULL;
    }
    h_close(&h);
  }
  ck_assert_uint_gt(compared, seeds * 50);
}
END_TEST

/* A hash of the keys' part of the image: key_revision, keys and history.
 * Equal before and after a request that must change nothing. */
static uint64_t keys_digest(struct h *h) {
  uint8_t *img, *part;
  size_t len;
  ck_assert_int_eq(fsm_snapshot_encode(h->f, &img, &len), 0);
  Synod__Fsm__Image *m = synod__fsm__image__unpack(NULL, len, img);
  ck_assert_ptr_nonnull(m);
  Synod__Fsm__Image k = SYNOD__FSM__IMAGE__INIT;
  k.key_revision = m->key_revision;
  k.n_keys = m->n_keys;
  k.keys = m->keys;
  k.key_history = m->key_history;
  size_t n = synod__fsm__image__get_packed_size(&k);
  part = malloc(n + 1);
  synod__fsm__image__pack(&k, part);
  uint64_t d = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) {
    d = (d ^ part[i]) * 0x100000001b3ull;
  }
  free(part);
  free(img);
  synod__fsm__image__free_unpacked(m, NULL);
  return d;
}

/* The history's events from revision `from`, one line each:
 * "rev put|del key=value" (value of the put, or of prev for a delete). */
static char *history_text(struct h *h, uint64_t from) {
  struct fsm_key_iter it;
  struct fsm_key_event ev;
  size_t cap = 1 << 16, len = 0;
  char *out = malloc(cap);
  out[0] = '\0';
  fsm_key_iter_seek(h->f, from, &it);
  while (fsm_key_iter_next(&it, &ev)) {
    const struct fsm_kv *v = ev.deleted ? &ev.prev : &ev.kv;
    if (len + 1100 > cap) {
      cap *= 2;
      out = realloc(out, cap);
    }
    len += (size_t)snprintf(out + len, cap - len, "%" PRIu64 " %s %.*s=%.*s\n",
                            ev.revision, ev.deleted ? "del" : "put",
                            (int)ev.kv.key_len, (const char *)ev.kv.key,
                            (int)v->value_len, (const char *)v->value);
  }
  return out;
}

/* Revisions are dense from 1, one per change; versions count puts and a
 * delete ends a key's life (the next put creates it again). */
START_TEST(key_put_get_delete_keep_revisions_and_versions) {
  struct h h;
  h_init(&h, NULL);
  ck_assert_uint_eq(fsm_key_revision(h.f), 0);
  ck_assert_uint_eq(h_kput_ok(&h, "gw/dev1", "a"), 1);
  ck_assert_uint_eq(h.resp->key_put->kv->create_revision, 1);
  ck_assert_uint_eq(h.resp->key_put->kv->version, 1);
  ck_assert_uint_eq(h_kput_ok(&h, "gw/dev1", "b"), 2);
  ck_assert_uint_eq(h.resp->key_put->kv->create_revision, 1);
  ck_assert_uint_eq(h.resp->key_put->kv->mod_revision, 2);
  ck_assert_uint_eq(h.resp->key_put->kv->version, 2);
  ck_assert_uint_eq(h.resp->key_put->kv->value.len, 0); /* not echoed */
  ck_assert_uint_eq(h_kput_ok(&h, "gw/dev2", ""), 3);
  Synod__Response *g = h_kget(&h, "gw/dev1");
  ck_assert(g->key_get->found);
  ck_assert(value_is(g->key_get->kv, "b"));
  ck_assert_uint_eq(g->key_get->kv->version, 2);
  ck_assert_uint_eq(g->key_get->revision, 3);
  synod__response__free_unpacked(g, NULL);
  g = h_kget(&h, "gw/dev2"); /* an empty value exists */
  ck_assert(g->key_get->found);
  synod__response__free_unpacked(g, NULL);
  /* A put answers the previous key with prev_kv. */
  Synod__KeyPut p = SYNOD__KEY_PUT__INIT;
  p.key = bin("gw/dev1");
  p.value = bin("c");
  p.prev_kv = true;
  KREQ(&h, 0, 0, KEY_PUT, key_put, &p);
  ck_assert(value_is(h.resp->key_put->prev, "b"));
  ck_assert_uint_eq(h.resp->key_put->prev->mod_revision, 2);
  ck_assert_uint_eq(h.resp->key_put->revision, 4);
  h_kdel(&h, 0, 0, "gw/dev1", false);
  ck_assert_int_eq(h_err(&h), 0);
  ck_assert_uint_eq(h.resp->key_delete->deleted, 1);
  ck_assert_uint_eq(h.resp->key_delete->revision, 5);
  g = h_kget(&h, "gw/dev1");
  ck_assert(!g->key_get->found);
  ck_assert_uint_eq(g->key_get->revision, 5);
  synod__response__free_unpacked(g, NULL);
  h_kdel(&h, 0, 0, "gw/dev1", false); /* nothing: no revision */
  ck_assert_uint_eq(h.resp->key_delete->deleted, 0);
  ck_assert(h.resp->key_delete->succeeded);
  ck_assert_uint_eq(h.resp->key_delete->revision, 5);
  ck_assert_uint_eq(h_kput_ok(&h, "gw/dev1", "d"), 6);
  ck_assert_uint_eq(h.resp->key_put->kv->create_revision, 6);
  ck_assert_uint_eq(h.resp->key_put->kv->version, 1);
  struct fsm_stats st;
  fsm_stats_get(h.f, &st);
  ck_assert_uint_eq(st.keys, 2);
  ck_assert_uint_eq(st.keys_bytes, 7 + 1 + 7);
  h_close(&h);
}
END_TEST

/* A retried put in a session is answered from the record: one revision,
 * one version. Without a session it is applied again. */
START_TEST(key_put_retried_in_a_session_applies_once) {
  struct h h;
  h_init(&h, NULL);
  uint64_t s = h_open(&h, 10000);
  h_kput(&h, s, 1, "k", "v", false);
  ck_assert_uint_eq(h.resp->key_put->revision, 1);
  h_kput(&h, s, 1, "k", "v", false);
  ck_assert_uint_eq(h.resp->key_put->revision, 1);
  ck_assert_uint_eq(fsm_key_revision(h.f), 1);
  h_kput(&h, 0, 0, "k", "v", false);
  h_kput(&h, 0, 0, "k", "v", false);
  ck_assert_uint_eq(h.resp->key_put->kv->version, 3);
  h_close(&h);
}
END_TEST

/* Prefix delete takes every key under the prefix at one revision; lists
 * page in key order after a key, answer their revision, keep to the
 * limit and the byte budget, and can leave the values out. */
START_TEST(key_prefix_delete_and_list_pages_at_a_revision) {
  struct fsm_options o = {.key_reply_bytes_max = 40};
  struct h h;
  h_init(&h, &o);
  const char *keys[] = {"dir/a", "dir/b", "dir/c", "dir/d",
                        "dir/e", "dirx",  "di",    "other"};
  for (size_t i = 0; i < 8; i++) {
    h_kput_ok(&h, keys[i], "0123456789");
  }
  Synod__Response *l = h_klist(&h, "dir/", NULL, 2, false);
  ck_assert_ptr_null(l->error);
  ck_assert_uint_eq(l->key_list->n_kvs, 2);
  ck_assert(kv_is(l->key_list->kvs[0], "dir/a"));
  ck_assert(kv_is(l->key_list->kvs[1], "dir/b"));
  ck_assert(value_is(l->key_list->kvs[0], "0123456789"));
  ck_assert(l->key_list->more);
  ck_assert_uint_eq(l->key_list->revision, 8);
  synod__response__free_unpacked(l, NULL);
  l = h_klist(&h, "dir/", "dir/b", 0, false); /* 15 bytes each: 2 fit 40 */
  ck_assert_uint_eq(l->key_list->n_kvs, 2);
  ck_assert(kv_is(l->key_list->kvs[0], "dir/c"));
  ck_assert(l->key_list->more);
  synod__response__free_unpacked(l, NULL);
  l = h_klist(&h, "dir/", "dir/d", 0, true);
  ck_assert_uint_eq(l->key_list->n_kvs, 1);
  ck_assert(kv_is(l->key_list->kvs[0], "dir/e"));
  ck_assert_uint_eq(l->key_list->kvs[0]->value.len, 0);
  ck_assert_uint_eq(l->key_list->kvs[0]->version, 1);
  ck_assert(!l->key_list->more);
  synod__response__free_unpacked(l, NULL);
  l = h_klist(&h, "dir/", "a", 0, true); /* after before the prefix */
  ck_assert_uint_eq(l->key_list->n_kvs, 5);
  synod__response__free_unpacked(l, NULL);
  l = h_klist(&h, "", NULL, 100, true); /* everything */
  ck_assert_uint_eq(l->key_list->n_kvs, 8);
  ck_assert(kv_is(l->key_list->kvs[0], "di"));
  ck_assert(kv_is(l->key_list->kvs[7], "other"));
  synod__response__free_unpacked(l, NULL);
  h_kdel(&h, 0, 0, "dir/", true);
  ck_assert_int_eq(h_err(&h), 0);
  ck_assert_uint_eq(h.resp->key_delete->deleted, 5);
  ck_assert_uint_eq(h.resp->key_delete->revision, 9);
  ck_assert(!h_khas(&h, "dir/c"));
  ck_assert(h_khas(&h, "dirx"));
  ck_assert(h_khas(&h, "di"));
  char *text = history_text(&h, 9);
  ck_assert_str_eq(text, "9 del dir/a=0123456789\n9 del dir/b=0123456789\n"
                         "9 del dir/c=0123456789\n9 del dir/d=0123456789\n"
                         "9 del dir/e=0123456789\n");
  free(text);
  h_kdel(&h, 0, 0, "", true); /* all */
  ck_assert_uint_eq(h.resp->key_delete->deleted, 3);
  l = h_klist(&h, "", NULL, 0, false);
  ck_assert_uint_eq(l->key_list->n_kvs, 0);
  ck_assert(!l->key_list->more);
  synod__response__free_unpacked(l, NULL);
  h_close(&h);
}
END_TEST

static Synod__KeyCompare cmp_num(const char *key, int target, int op,
                                 uint64_t n) {
  Synod__KeyCompare c = SYNOD__KEY_COMPARE__INIT;
  c.key = bin(key);
  c.target = (Synod__KeyCompare__Target)target;
  c.op = (Synod__KeyCompare__Op)op;
  c.number = n;
  return c;
}

static Synod__KeyCompare cmp_value(const char *key, int op, const char *v) {
  Synod__KeyCompare c =
      cmp_num(key, SYNOD__KEY_COMPARE__TARGET__TARGET_VALUE, op, 0);
  c.value = bin(v);
  return c;
}

/* One compare on the request's key; true if the put went through. */
static bool h_cas(struct h *h, const char *k, const char *v,
                  Synod__KeyCompare c) {
  Synod__KeyCompare *cs[] = {&c};
  uint64_t before = keys_digest(h);
  h_kput_cmp(h, 0, 0, k, v, false, cs, 1);
  ck_assert_msg(h_err(h) == 0, "%s", h->resp->error ? h_msg(h) : "");
  if (!h->resp->key_put->succeeded) {
    ck_assert_uint_eq(keys_digest(h), before); /* nothing changed */
  }
  return h->resp->key_put->succeeded;
}

enum {
  VER = SYNOD__KEY_COMPARE__TARGET__TARGET_VERSION,
  CREATE = SYNOD__KEY_COMPARE__TARGET__TARGET_CREATE_REVISION,
  MOD = SYNOD__KEY_COMPARE__TARGET__TARGET_MOD_REVISION,
  SESSION = SYNOD__KEY_COMPARE__TARGET__TARGET_SESSION,
  EQ = SYNOD__KEY_COMPARE__OP__OP_EQUAL,
  NE = SYNOD__KEY_COMPARE__OP__OP_NOT_EQUAL,
  LT = SYNOD__KEY_COMPARE__OP__OP_LESS,
  GT = SYNOD__KEY_COMPARE__OP__OP_GREATER,
};

/* Compare-and-put on version ("0" = create only: the default compare),
 * mod revision and value; a failed compare answers succeeded = false with
 * the key as it is, and changes nothing. */
START_TEST(key_compare_and_put_on_version_mod_revision_and_value) {
  struct h h;
  h_init(&h, NULL);
  Synod__KeyCompare create_only = SYNOD__KEY_COMPARE__INIT;
  ck_assert(h_cas(&h, "dev", "gw-a", create_only));
  ck_assert(!h_cas(&h, "dev", "gw-b", create_only));
  ck_assert_uint_eq(h.resp->key_put->kv->version, 1); /* as it is */
  ck_assert_uint_eq(h.resp->key_put->revision, 1);
  ck_assert(!h_cas(&h, "dev", "gw-b", cmp_num("", VER, EQ, 2)));
  ck_assert(h_cas(&h, "dev", "gw-b", cmp_num("", VER, EQ, 1)));
  ck_assert(!h_cas(&h, "dev", "gw-c", cmp_num("", MOD, EQ, 1)));
  ck_assert(h_cas(&h, "dev", "gw-c", cmp_num("", MOD, EQ, 2)));
  ck_assert(h_cas(&h, "dev", "gw-d", cmp_num("", CREATE, EQ, 1)));
  ck_assert(!h_cas(&h, "dev", "gw-e", cmp_value("", EQ, "gw-c")));
  ck_assert(h_cas(&h, "dev", "gw-e", cmp_value("", EQ, "gw-d")));
  ck_assert(h_cas(&h, "dev", "gw-f", cmp_value("", NE, "gw-d")));
  ck_assert(h_cas(&h, "dev", "gw-g", cmp_value("", LT, "gw-z")));
  ck_assert(!h_cas(&h, "dev", "gw-h", cmp_value("", GT, "gw-z")));
  ck_assert(h_cas(&h, "dev", "gw-h", cmp_num("", VER, GT, 5)));
  ck_assert(!h_cas(&h, "dev", "gw-i", cmp_num("", VER, LT, 5)));
  ck_assert(h_cas(&h, "dev", "gw-i", cmp_num("", SESSION, EQ, 0)));
  /* A value compare on an absent key never holds, whatever the op. */
  ck_assert(!h_cas(&h, "new", "x", cmp_value("", NE, "y")));
  ck_assert_ptr_null(h.resp->key_put->kv);
  ck_assert(!h_cas(&h, "new", "x", cmp_value("", EQ, "")));
  /* A compare on another key: a device moves only if gw-b is alive. */
  ck_assert(!h_cas(&h, "dev", "gw-b", cmp_num("gw/b", VER, GT, 0)));
  h_kput_ok(&h, "gw/b", "up");
  ck_assert(h_cas(&h, "dev", "gw-b", cmp_num("gw/b", VER, GT, 0)));
  char *v = h_kvalue(&h, "dev");
  ck_assert_str_eq(v, "gw-b");
  free(v);
  /* Compare-and-delete. */
  Synod__KeyCompare c = cmp_value("", EQ, "gw-a");
  Synod__KeyCompare *cs[] = {&c};
  Synod__KeyDelete d = SYNOD__KEY_DELETE__INIT;
  d.key = bin("dev");
  d.compares = cs;
  d.n_compares = 1;
  KREQ(&h, 0, 0, KEY_DELETE, key_delete, &d);
  ck_assert(!h.resp->key_delete->succeeded);
  ck_assert(h_khas(&h, "dev"));
  c = cmp_value("", EQ, "gw-b");
  KREQ(&h, 0, 0, KEY_DELETE, key_delete, &d);
  ck_assert(h.resp->key_delete->succeeded);
  ck_assert_uint_eq(h.resp->key_delete->deleted, 1);
  ck_assert(!h_khas(&h, "dev"));
  h_close(&h);
}
END_TEST

static Synod__KeyOp op_put(Synod__KeyPut *p, const char *k, const char *v) {
  Synod__KeyOp o = SYNOD__KEY_OP__INIT;
  synod__key_put__init(p);
  p->key = bin(k);
  p->value = bin(v);
  o.op_case = SYNOD__KEY_OP__OP_PUT;
  o.put = p;
  return o;
}

static Synod__KeyOp op_get(Synod__KeyGet *g, const char *k) {
  Synod__KeyOp o = SYNOD__KEY_OP__INIT;
  synod__key_get__init(g);
  g->key = bin(k);
  o.op_case = SYNOD__KEY_OP__OP_GET;
  o.get = g;
  return o;
}

static Synod__KeyOp op_del(Synod__KeyDelete *d, const char *k, bool prefix) {
  Synod__KeyOp o = SYNOD__KEY_OP__INIT;
  synod__key_delete__init(d);
  d->key = bin(k);
  d->prefix = prefix;
  o.op_case = SYNOD__KEY_OP__OP_DEL;
  o.del = d;
  return o;
}

/* A device moves from gateway A to B in one step: the transaction runs
 * its success branch or its failure branch, all of it at one revision, a
 * get seeing the writes before it; a stale gateway cannot overwrite. */
START_TEST(key_txn_is_atomic_and_runs_one_branch) {
  struct h h;
  h_init(&h, NULL);
  h_kput_ok(&h, "dev/1", "gw-a");
  h_kput_ok(&h, "gw-a/dev/1", "");
  Synod__KeyPut p1, p2, p3;
  Synod__KeyDelete d1;
  Synod__KeyGet g1, g2;
  Synod__KeyCompare c = cmp_value("dev/1", EQ, "gw-a");
  Synod__KeyCompare *cs[] = {&c};
  Synod__KeyOp ok[] = {op_put(&p1, "dev/1", "gw-b"),
                       op_del(&d1, "gw-a/dev/1", false),
                       op_put(&p2, "gw-b/dev/1", ""), op_get(&g1, "dev/1")};
  Synod__KeyOp fail[] = {op_get(&g2, "dev/1")};
  Synod__KeyOp *okp[] = {&ok[0], &ok[1], &ok[2], &ok[3]};
  Synod__KeyOp *failp[] = {&fail[0]};
  Synod__KeyTxn t = SYNOD__KEY_TXN__INIT;
  t.compares = cs;
  t.n_compares = 1;
  t.success = okp;
  t.n_success = 4;
  t.failure = failp;
  t.n_failure = 1;
  KREQ(&h, 0, 0, KEY_TXN, key_txn, &t);
  ck_assert_msg(h_err(&h) == 0, "%s", h.resp->error ? h_msg(&h) : "");
  Synod__KeyTxnReply *tr = h.resp->key_txn;
  ck_assert(tr->succeeded);
  ck_assert_uint_eq(tr->revision, 3);
  ck_assert_uint_eq(tr->n_results, 4);
  ck_assert_uint_eq(tr->results[0]->put->kv->mod_revision, 3);
  ck_assert_uint_eq(tr->results[1]->del->deleted, 1);
  ck_assert(tr->results[3]->get->found);
  ck_assert(value_is(tr->results[3]->get->kv, "gw-b")); /* sees the put */
  char *text = history_text(&h, 3);
  ck_assert_str_eq(text, "3 put dev/1=gw-b\n3 del gw-a/dev/1=\n"
                         "3 put gw-b/dev/1=\n");
  free(text);
  /* Gateway A, stale, tries the same move: the failure branch runs. */
  KREQ(&h, 0, 0, KEY_TXN, key_txn, &t);
  tr = h.resp->key_txn;
  ck_assert(!tr->succeeded);
  ck_assert_uint_eq(tr->n_results, 1);
  ck_assert(value_is(tr->results[0]->get->kv, "gw-b"));
  ck_assert_uint_eq(tr->revision, 3); /* a read-only branch: none used */
  ck_assert_uint_eq(fsm_key_revision(h.f), 3);
  /* A bad op in the branch that would not run still refuses it all. */
  uint64_t before = keys_digest(&h);
  g2.key = bin("");
  c = cmp_value("dev/1", EQ, "gw-b");
  KREQ(&h, 0, 0, KEY_TXN, key_txn, &t);
  ck_assert_int_eq(h_err(&h), SYNOD_EINVAL);
  ck_assert_ptr_nonnull(strstr(h_msg(&h), "failure op 0"));
  ck_assert_uint_eq(keys_digest(&h), before);
  g2.key = bin("dev/1");
  /* One key written twice, or under a deleted prefix: refused. */
  ok[2] = op_put(&p2, "dev/1", "again");
  KREQ(&h, 0, 0, KEY_TXN, key_txn, &t);
  ck_assert_int_eq(h_err(&h), SYNOD_EINVAL);
  ck_assert_ptr_nonnull(strstr(h_msg(&h), "op 2 writes a key op 0"));
  ok[2] = op_put(&p2, "x", "1");
  ok[1] = op_del(&d1, "", true);
  KREQ(&h, 0, 0, KEY_TXN, key_txn, &t);
  ck_assert_int_eq(h_err(&h), SYNOD_EINVAL);
  ck_assert_uint_eq(keys_digest(&h), before);
  /* A put in a transaction carries no compares of its own. */
  ok[1] = op_put(&p3, "y", "1");
  p3.compares = cs;
  p3.n_compares = 1;
  KREQ(&h, 0, 0, KEY_TXN, key_txn, &t);
  ck_assert_int_eq(h_err(&h), SYNOD_EINVAL);
  ck_assert_uint_eq(keys_digest(&h), before);
  h_close(&h);
}
END_TEST

/* Session-bound keys go when their session ends, at one revision each:
 * on close, and on expiry in cluster time, not a millisecond before. A
 * put without session_bound unbinds; one from another session moves the
 * key there. */
START_TEST(key_session_bound_keys_go_at_close_and_expiry_not_before) {
  struct h h;
  h_init(&h, NULL);
  uint64_t a = h_open(&h, 5000), b = h_open(&h, 5000);
  h_kput(&h, a, 1, "dev/1", "gw-a", true);
  ck_assert_int_eq(h_err(&h), 0);
  ck_assert_uint_eq(h.resp->key_put->kv->session_id, a);
  h_kput(&h, a, 2, "dev/2", "gw-a", true);
  h_kput(&h, a, 3, "dev/3", "gw-a", true);
  h_kput(&h, a, 4, "dev/3", "gw-a", false); /* unbound */
  h_kput(&h, b, 1, "dev/2", "gw-b", true);  /* moved to b */
  h_kput(&h, b, 2, "dev/4", "gw-b", true);
  ck_assert_uint_eq(fsm_key_revision(h.f), 6);
  uint64_t ids[] = {b};
  h.time_ms = 6000;
  h_tick(&h, ids, 1); /* a is still alive: kept alive at 1000 */
  ck_assert(h_khas(&h, "dev/1"));
  h.time_ms = 1000 + 5000; /* a's last millisecond */
  h_tick(&h, ids, 1);
  ck_assert(h_khas(&h, "dev/1"));
  h.time_ms = 1000 + 5000 + 1;
  h_tick(&h, ids, 1);
  ck_assert(!h_khas(&h, "dev/1"));
  ck_assert(h_khas(&h, "dev/2") && h_khas(&h, "dev/3") && h_khas(&h, "dev/4"));
  ck_assert_uint_eq(fsm_key_revision(h.f), 7);
  bool changed = false;
  for (size_t i = 0; i < h.out.events_len; i++) {
    if (h.out.events[i].type == FSM_EVENT_KEYS_CHANGED) {
      ck_assert_uint_eq(h.out.events[i].revision, 7);
      changed = true;
    }
  }
  ck_assert(changed);
  char *text = history_text(&h, 7);
  ck_assert_str_eq(text, "7 del dev/1=gw-a\n");
  free(text);
  Synod__Request r = SYNOD__REQUEST__INIT;
  Synod__SessionClose cl = SYNOD__SESSION_CLOSE__INIT;
  r.session_id = b;
  r.body_case = SYNOD__REQUEST__BODY_SESSION_CLOSE;
  r.session_close = &cl;
  h_req(&h, &r);
  ck_assert(!h_khas(&h, "dev/2") && !h_khas(&h, "dev/4"));
  ck_assert(h_khas(&h, "dev/3"));
  text = history_text(&h, 8);
  ck_assert_str_eq(text, "8 del dev/2=gw-b\n8 del dev/4=gw-b\n");
  free(text);
  /* A session that ends with no key bound uses no revision. */
  uint64_t c = h_open(&h, 5000);
  h_kput(&h, c, 1, "dev/5", "gw-c", true);
  h_kput(&h, c, 2, "dev/5", "gw-c", false);
  r.session_id = c;
  h_req(&h, &r);
  ck_assert_uint_eq(fsm_key_revision(h.f), 10);
  ck_assert(h_khas(&h, "dev/5"));
  /* Bound without a session, or with one that has ended. */
  h_kput(&h, 0, 0, "dev/6", "x", true);
  ck_assert_int_eq(h_err(&h), SYNOD_ESESSION);
  h_kput(&h, a, 5, "dev/6", "x", true);
  ck_assert_int_eq(h_err(&h), SYNOD_ESESSION);
  h_close(&h);
}
END_TEST

/* Sequence 0 in a session: refused for what needs a session (locks,
 * elections); applied every time, in the session, for what works without
 * one (the HTTP API's session-bound key puts). */
START_TEST(sequence_zero_in_a_session_is_einval_or_not_recorded) {
  struct h h;
  h_init(&h, NULL);
  uint64_t sid = h_open(&h, 10000);
  h_acquire(&h, sid, 0, "db", 7, 0, 0);
  ck_assert_int_eq(h_err(&h), SYNOD_EINVAL);
  h_add(&h, sid, 0, "c", 1, 0);
  ck_assert_int_eq(h_err(&h), 0);
  h_add(&h, sid, 0, "c", 1, 0);
  ck_assert_int_eq(h_get(&h, "c"), 2);
  h_kput(&h, sid, 0, "dev/1", "gw", true);
  ck_assert_int_eq(h_err(&h), 0);
  ck_assert_uint_eq(h.resp->key_put->kv->session_id, sid);
  h_session_close(&h, sid);
  ck_assert(!h_khas(&h, "dev/1"));
  h_close(&h);
}
END_TEST

/* An ended session's keys vanish at once for every read and write, and
 * leave the store key_work_per_entry per applied entry; the deadline
 * asks for Ticks meanwhile. A replica restored mid-way has the same
 * state and nothing to do. */
START_TEST(key_session_end_removes_keys_in_chunks_hidden_at_once) {
  struct fsm_options o = {.key_work_per_entry = 10};
  struct h h, b;
  h_init(&h, &o);
  h_init(&b, &o);
  uint64_t s = h_open(&h, 5000);
  char key[32];
  for (int i = 0; i < 35; i++) {
    snprintf(key, sizeof key, "dev/%02d", 34 - i); /* bound in this order */
    h_kput(&h, s, (uint64_t)i + 1, key, "gw", true);
    ck_assert_int_eq(h_err(&h), 0);
  }
  h_kput_ok(&h, "dev/zz", "other");
  ck_assert_uint_eq(fsm_next_deadline(h.f), 1000 + 5000 + 1);
  h_session_close(&h, s);
  uint64_t end = fsm_key_revision(h.f);
  ck_assert_uint_eq(end, 37);
  struct fsm_stats st;
  fsm_stats_get(h.f, &st);
  ck_assert_uint_eq(st.keys, 1);
  ck_assert_uint_eq(st.key_work_keys, 35); /* the close did none yet */
  ck_assert_uint_eq(fsm_next_deadline(h.f), h.time_ms);
  ck_assert(!h_khas(&h, "dev/07"));
  Synod__Response *l = h_klist(&h, "dev/", NULL, 0, true);
  ck_assert_uint_eq(l->key_list->n_kvs, 1);
  ck_assert(kv_is(l->key_list->kvs[0], "dev/zz"));
  synod__response__free_unpacked(l, NULL);
  ck_assert(h_cas(&h, "dev/07", "new", cmp_num("", VER, EQ, 0)));
  ck_assert_uint_eq(h.resp->key_put->kv->version, 1); /* created afresh */
  fsm_stats_get(h.f, &st);
  ck_assert_uint_eq(st.key_work_keys, 25);
  /* The image mid-way: the same state, nothing to do. */
  uint8_t *img;
  size_t len;
  ck_assert_int_eq(fsm_snapshot_encode(h.f, &img, &len), 0);
  ck_assert_int_eq(fsm_snapshot_decode(b.f, img, len), 0);
  free(img);
  b.index = h.index;
  b.time_ms = h.time_ms;
  ck_assert_uint_eq(fsm_digest(b.f), fsm_digest(h.f));
  ck_assert_uint_eq(fsm_next_deadline(b.f), UINT64_MAX);
  h_tick(&h, NULL, 0);
  h_tick(&h, NULL, 0);
  fsm_stats_get(h.f, &st);
  ck_assert_uint_eq(st.key_work_keys, 5);
  h_tick(&h, NULL, 0);
  fsm_stats_get(h.f, &st);
  ck_assert_uint_eq(st.key_work_keys, 0);
  ck_assert_uint_eq(fsm_next_deadline(h.f), UINT64_MAX);
  ck_assert_uint_eq(h.f->keys.count, 2); /* dev/07 again, dev/zz */
  /* The history holds every delete at the end's revision, in the order
   * the session bound them, on both replicas. */
  char *text = history_text(&h, end), *text_b = history_text(&b, end);
  ck_assert_str_eq(text, text_b);
  ck_assert_ptr_nonnull(strstr(text, "37 del dev/34=gw\n37 del dev/33=gw\n"));
  ck_assert_ptr_nonnull(strstr(text, "37 del dev/00=gw\n38 put dev/07=new\n"));
  free(text);
  free(text_b);
  for (int i = 0; i < 3; i++) {
    h_tick(&b, NULL, 0);
  }
  ck_assert_uint_eq(fsm_digest(b.f), fsm_digest(h.f));
  h_close(&h);
  h_close(&b);
}
END_TEST

/* The key history's bounds are a replicated setting (synodd's
 * --keys-history flags reach the state through the leader's Settings
 * entry): every replica trims alike, whatever its own options, and the
 * snapshot keeps the setting. */
START_TEST(key_history_bounds_are_a_replicated_setting) {
  struct fsm_options big = {.key_history_max = 1000};
  struct h a, b;
  h_init(&a, NULL);
  h_init(&b, &big);
  uint8_t buf[64];
  struct fsm_settings st = {.key_history_max = 2};
  size_t n = fsm_command_encode_settings(a.time_ms, &st, buf, sizeof buf);
  ck_assert_uint_le(n, sizeof buf);
  h_apply_bytes(&a, buf, n);
  h_apply_bytes(&b, buf, n);
  ck_assert_uint_eq(fsm_key_history_max(a.f), 2);
  ck_assert_uint_eq(fsm_key_history_max(b.f), 2);
  ck_assert_uint_eq(fsm_key_history_bytes_max(a.f), 64ull << 20);
  const char *keys[] = {"a", "b", "c", "d"};
  for (int i = 0; i < 4; i++) {
    h_kput_ok(&a, keys[i], "1");
    h_kput_ok(&b, keys[i], "1");
  }
  struct fsm_stream sa, sb;
  fsm_key_stream(a.f, &sa);
  fsm_key_stream(b.f, &sb);
  ck_assert_uint_eq(sa.first, 3);
  ck_assert_uint_eq(sb.first, 3);
  ck_assert_uint_eq(fsm_digest(a.f), fsm_digest(b.f));
  struct h c;
  h_init(&c, &big);
  uint8_t *img;
  size_t len;
  ck_assert_int_eq(fsm_snapshot_encode(a.f, &img, &len), 0);
  ck_assert_int_eq(fsm_snapshot_decode(c.f, img, len), 0);
  free(img);
  ck_assert_uint_eq(fsm_key_history_max(c.f), 2);
  ck_assert_uint_eq(fsm_digest(a.f), fsm_digest(c.f));
  h_close(&a);
  h_close(&b);
  h_close(&c);
}
END_TEST

/* The bound on a key's value is a replicated setting too
 * (--keys-value-max-bytes): 64 KiB until the leader's Settings entry says
 * otherwise, then that on every replica whatever its own options, kept by
 * the snapshot; a setting over what a frame holds is held to that. */
START_TEST(key_value_bound_is_a_replicated_setting) {
  struct fsm_options small = {.key_value_bytes_max = 10};
  struct h a, b;
  h_init(&a, NULL);
  h_init(&b, &small);
  char big[2002]; /* 2,001 bytes */
  memset(big, 'v', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  ck_assert_uint_eq(fsm_key_value_bytes_max(a.f), 64u << 10);
  h_kput(&b, 0, 0, "k", big, false);
  ck_assert_int_eq(h_err(&b), SYNOD_ETOOBIG);
  uint8_t buf[64];
  struct fsm_settings st = {.key_value_bytes_max = 2000};
  size_t n = fsm_command_encode_settings(a.time_ms, &st, buf, sizeof buf);
  ck_assert_uint_le(n, sizeof buf);
  h_apply_bytes(&a, buf, n);
  h_apply_bytes(&b, buf, n);
  for (struct h *x = &a; x != NULL; x = x == &a ? &b : NULL) {
    ck_assert_uint_eq(fsm_key_value_bytes_max(x->f), 2000);
    h_kput(x, 0, 0, "k", big, false); /* one byte too many */
    ck_assert_int_eq(h_err(x), SYNOD_ETOOBIG);
    ck_assert_msg(strstr(h_msg(x), "value of 2001 bytes") != NULL &&
                      strstr(h_msg(x), "over 2000") != NULL,
                  "%s", h_msg(x));
    big[2000] = '\0';
    h_kput_ok(x, "k", big);
    big[2000] = 'v';
  }
  struct h c;
  h_init(&c, NULL);
  uint8_t *img;
  size_t len;
  ck_assert_int_eq(fsm_snapshot_encode(b.f, &img, &len), 0);
  ck_assert_int_eq(fsm_snapshot_decode(c.f, img, len), 0);
  free(img);
  ck_assert_uint_eq(fsm_key_value_bytes_max(c.f), 2000);
  c.index = b.index;
  st.key_value_bytes_max = FSM_KEY_VALUE_BYTES_CAP + 1;
  n = fsm_command_encode_settings(c.time_ms, &st, buf, sizeof buf);
  h_apply_bytes(&c, buf, n);
  ck_assert_uint_eq(fsm_key_value_bytes_max(c.f), FSM_KEY_VALUE_BYTES_CAP);
  h_close(&a);
  h_close(&b);
  h_close(&c);
}
END_TEST

/* One history item per revision at position == revision; a transaction's
 * events share one; the window keeps its bounds by dropping the oldest
 * revisions (never the newest) and says where it starts. */
START_TEST(key_history_positions_are_revisions_and_compact) {
  struct fsm_options o = {.key_history_max = 4, .key_history_bytes_max = 200};
  struct h h;
  h_init(&h, &o);
  h_kput_ok(&h, "a", "1");
  h_kput_ok(&h, "b", "1");
  struct fsm_stream st;
  fsm_key_stream(h.f, &st);
  ck_assert_uint_eq(st.first, 1);
  ck_assert_uint_eq(st.window->next, 3);
  Synod__KeyPut p1, p2, p3;
  Synod__KeyOp ops[] = {op_put(&p1, "c", "1"), op_put(&p2, "d", "1"),
                        op_put(&p3, "e", "1")};
  Synod__KeyOp *opp[] = {&ops[0], &ops[1], &ops[2]};
  Synod__KeyTxn t = SYNOD__KEY_TXN__INIT;
  t.success = opp;
  t.n_success = 3;
  KREQ(&h, 0, 0, KEY_TXN, key_txn, &t);
  ck_assert_uint_eq(h.resp->key_txn->revision, 3);
  /* 5 events over 4: revision 1 goes, 2 stays (4 events). */
  fsm_key_stream(h.f, &st);
  ck_assert_uint_eq(st.first, 2);
  char *text = history_text(&h, 1); /* from below: from the first */
  ck_assert_str_eq(text, "2 put b=1\n3 put c=1\n3 put d=1\n3 put e=1\n");
  free(text);
  text = history_text(&h, 3);
  ck_assert_str_eq(text, "3 put c=1\n3 put d=1\n3 put e=1\n");
  free(text);
  /* A revision alone over the bounds is kept, with nothing else. */
  char big[300];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  h_kput_ok(&h, "big", big);
  fsm_key_stream(h.f, &st);
  ck_assert_uint_eq(st.first, 4);
  ck_assert_uint_eq(st.window->next, 5);
  struct fsm_key_iter it;
  struct fsm_key_event ev;
  fsm_key_iter_seek(h.f, 4, &it);
  ck_assert(fsm_key_iter_next(&it, &ev));
  ck_assert_uint_eq(ev.revision, 4);
  ck_assert_uint_eq(ev.index, h.index);
  ck_assert_uint_eq(ev.kv.value_len, 299);
  ck_assert(!ev.has_prev);
  ck_assert(!fsm_key_iter_next(&it, &ev));
  /* Previous values: a put over a key, and a delete. */
  h_kput_ok(&h, "a", "2");
  h_kdel(&h, 0, 0, "a", false);
  fsm_key_iter_seek(h.f, 5, &it);
  ck_assert(fsm_key_iter_next(&it, &ev));
  ck_assert(!ev.deleted && ev.has_prev);
  ck_assert_uint_eq(ev.prev.mod_revision, 1);
  ck_assert_uint_eq(ev.kv.version, 2);
  ck_assert_uint_eq(ev.prev.version, 1);
  ck_assert(fsm_key_iter_next(&it, &ev));
  ck_assert(ev.deleted && ev.has_prev);
  ck_assert_uint_eq(ev.revision, 6);
  ck_assert_uint_eq(ev.prev.mod_revision, 5);
  ck_assert_uint_eq(ev.prev.value_len, 1);
  h_close(&h);
}
END_TEST

/* A session end's revision leaves the history like any other, and its
 * keys are then freed by the work list; the snapshot never holds it. */
START_TEST(key_history_drops_a_session_end_and_frees_its_keys) {
  struct fsm_options o = {.key_history_max = 6, .key_work_per_entry = 2};
  struct h h, b;
  h_init(&h, &o);
  h_init(&b, &o);
  uint64_t s = h_open(&h, 5000);
  for (int i = 0; i < 5; i++) {
    char key[8];
    snprintf(key, sizeof key, "k%d", i);
    h_kput(&h, s, (uint64_t)i + 1, key, "v", true);
  }
  h_session_close(&h, s); /* revision 6: 5 deletes */
  /* 5 + 5 events, over 6: revisions 1..4 go, 2 per entry. */
  struct fsm_stream st;
  fsm_key_stream(h.f, &st);
  ck_assert_uint_eq(st.first, 3);
  ck_assert_uint_eq(fsm_next_deadline(h.f), h.time_ms);
  /* Over its bounds is part of the state: a replica restored now has the
   * same history and drops the same revisions. */
  uint8_t *img;
  size_t len;
  ck_assert_int_eq(fsm_snapshot_encode(h.f, &img, &len), 0);
  ck_assert_int_eq(fsm_snapshot_decode(b.f, img, len), 0);
  free(img);
  ck_assert_uint_eq(fsm_next_deadline(b.f), h.time_ms);
  b.index = h.index;
  b.time_ms = h.time_ms;
  h_tick(&b, NULL, 0);
  h_tick(&h, NULL, 0);
  ck_assert_uint_eq(fsm_digest(b.f), fsm_digest(h.f));
  fsm_key_stream(h.f, &st);
  ck_assert_uint_eq(st.first, 5);
  h_kput_ok(&h, "x", "1");
  h_kput_ok(&h, "y", "1"); /* 5 + 2 events: revision 6 goes too */
  while (fsm_next_deadline(h.f) == h.time_ms) {
    h_tick(&h, NULL, 0);
  }
  fsm_key_stream(h.f, &st);
  ck_assert_uint_eq(st.first, 7);
  ck_assert_uint_eq(h.f->key_graves.count, 0);
  struct fsm_stats stats;
  fsm_stats_get(h.f, &stats);
  ck_assert_uint_eq(stats.key_work_keys, 0);
  ck_assert_uint_eq(h.f->keys.count, 2);
  ck_assert_int_eq(fsm_snapshot_encode(h.f, &img, &len), 0);
  ck_assert_int_eq(fsm_snapshot_decode(b.f, img, len), 0);
  free(img);
  ck_assert_uint_eq(fsm_digest(b.f), fsm_digest(h.f));
  h_close(&h);
  h_close(&b);
}
END_TEST

/* What the work list still has to do is not in the image, so it must
 * never decide what the history keeps: a replica restored while the
 * original still takes keys out drops the same revisions, entry by entry
 * (with one budget for both, the original fell behind and the two kept
 * different histories). */
START_TEST(key_history_trim_is_the_same_on_a_restored_replica) {
  struct fsm_options o = {.key_history_max = 30, .key_work_per_entry = 1};
  struct h a, b;
  h_init(&a, &o);
  h_init(&b, &o);
  h_kput_ok(&a, "a", "1");
  uint64_t s = h_open(&a, 5000);
  for (int i = 0; i < 10; i++) {
    char key[8];
    snprintf(key, sizeof key, "k%d", i);
    h_kput(&a, s, (uint64_t)i + 1, key, "v", true);
  }
  h_session_close(&a, s); /* 21 events; 10 keys to take out */
  uint8_t *img;
  size_t len;
  ck_assert_int_eq(fsm_snapshot_encode(a.f, &img, &len), 0);
  ck_assert_int_eq(fsm_snapshot_decode(b.f, img, len), 0);
  free(img);
  b.index = a.index;
  b.time_ms = a.time_ms;
  for (int i = 0; i < 14; i++) {
    char key[8];
    snprintf(key, sizeof key, "x%d", i);
    h_kput_ok(&a, key, "1");
    h_kput_ok(&b, key, "1");
    ck_assert_uint_eq(fsm_digest(a.f), fsm_digest(b.f));
  }
  struct fsm_stream st;
  fsm_key_stream(a.f, &st);
  ck_assert_uint_gt(st.first, 1);
  h_close(&a);
  h_close(&b);
}
END_TEST

/* Builds a state with every kind of key thing: plain and bound keys, a
 * session end in the history, a transaction, deletes. */
static void keys_scene(struct h *h, uint64_t *live_session) {
  uint64_t gone = h_open(h, 5000), live = h_open(h, 60000);
  h_kput_ok(h, "cfg/flag", "on");
  h_kput(h, gone, 1, "dev/b", "gw-1", true);
  h_kput(h, gone, 2, "dev/a", "gw-1", true);
  h_kput(h, live, 1, "dev/c", "gw-2", true);
  h_kput(h, live, 2, "dev/d", "gw-2", true);
  h_kput_ok(h, "cfg/flag", "off");
  h_kdel(h, 0, 0, "nothing", false);
  uint64_t ids[] = {live};
  h->time_ms = 7000;
  h_tick(h, ids, 1); /* gone expires */
  Synod__KeyPut p1;
  Synod__KeyDelete d1;
  Synod__KeyOp ops[] = {op_put(&p1, "dev/e", "gw-2"),
                        op_del(&d1, "cfg/", true)};
  Synod__KeyOp *opp[] = {&ops[0], &ops[1]};
  Synod__KeyTxn t = SYNOD__KEY_TXN__INIT;
  t.success = opp;
  t.n_success = 2;
  KREQ(h, 0, 0, KEY_TXN, key_txn, &t);
  ck_assert_int_eq(h_err(h), 0);
  *live_session = live;
}

/* The image carries keys, bindings, the revision counter and the
 * history: a restored replica encodes the same bytes and goes on exactly
 * as the one that wrote it (same answers, same history, same digest),
 * through its bound keys' session expiry too. */
START_TEST(key_state_survives_a_snapshot_byte_for_byte) {
  struct h a, b;
  uint64_t live;
  h_init(&a, NULL);
  h_init(&b, NULL);
  keys_scene(&a, &live);
  uint8_t *img, *img2;
  size_t len, len2;
  ck_assert_int_eq(fsm_snapshot_encode(a.f, &img, &len), 0);
  ck_assert_int_eq(fsm_snapshot_decode(b.f, img, len), 0);
  ck_assert_int_eq(fsm_snapshot_encode(b.f, &img2, &len2), 0);
  ck_assert_uint_eq(len, len2);
  ck_assert_mem_eq(img, img2, len);
  free(img);
  free(img2);
  b.index = a.index;
  b.time_ms = a.time_ms;
  char *ha = history_text(&a, 1), *hb = history_text(&b, 1);
  ck_assert_str_eq(ha, hb);
  ck_assert_ptr_nonnull(strstr(ha, "del dev/b=gw-1\n"));
  free(ha);
  free(hb);
  struct h *both[] = {&a, &b};
  uint8_t *resp[2];
  size_t resp_len[2];
  for (int i = 0; i < 2; i++) {
    struct h *x = both[i];
    h_kput(x, live, 3, "dev/c", "gw-3", true);
    resp_len[i] = x->out.response.len;
    resp[i] = malloc(resp_len[i]);
    memcpy(resp[i], x->out.response.data, resp_len[i]);
    x->time_ms = 7000 + 60000 + 1;
    h_tick(x, NULL, 0); /* live expires: dev/c, d, e go */
    ck_assert(!h_khas(x, "dev/d"));
  }
  ck_assert_uint_eq(resp_len[0], resp_len[1]);
  ck_assert_mem_eq(resp[0], resp[1], resp_len[0]);
  free(resp[0]);
  free(resp[1]);
  ha = history_text(&a, 1);
  hb = history_text(&b, 1);
  ck_assert_str_eq(ha, hb);
  ck_assert_ptr_nonnull(strstr(ha, "del dev/d=gw-2\n"));
  free(ha);
  free(hb);
  ck_assert_uint_eq(fsm_digest(a.f), fsm_digest(b.f));
  h_close(&a);
  h_close(&b);
}
END_TEST

/* Re-packs an image after `mutate` changed it and checks it is refused. */
static void image_refused(const uint8_t *img, size_t len,
                          void (*mutate)(Synod__Fsm__Image *m)) {
  Synod__Fsm__Image *m = synod__fsm__image__unpack(NULL, len, img);
  ck_assert_ptr_nonnull(m);
  mutate(m);
  size_t n = synod__fsm__image__get_packed_size(m);
  uint8_t *buf = malloc(n + 1);
  synod__fsm__image__pack(m, buf);
  struct fsm *f = fsm_new(NULL);
  ck_assert_int_eq(fsm_snapshot_decode(f, buf, n), SYNOD_ECORRUPT);
  fsm_free(f);
  free(buf);
  synod__fsm__image__free_unpacked(m, NULL);
}

static void swap_keys(Synod__Fsm__Image *m) {
  Synod__Fsm__Key *k = m->keys[0];
  m->keys[0] = m->keys[1];
  m->keys[1] = k;
}
static void revision_back(Synod__Fsm__Image *m) {
  m->key_revision--;
}
static void key_unbound_session(Synod__Fsm__Image *m) {
  m->keys[0]->session_id = 999999;
}
static void grave_session_alive(Synod__Fsm__Image *m) {
  for (size_t i = 0; i < m->key_history->n_revisions; i++) {
    if (m->key_history->revisions[i]->session_id != 0) {
      m->key_history->revisions[i]->session_id = m->sessions[0]->id;
    }
  }
}
static void events_cut(Synod__Fsm__Image *m) {
  m->key_history->revisions[0]->events.len--;
}
static void history_first_wrong(Synod__Fsm__Image *m) {
  m->key_history->first_revision++;
}

START_TEST(key_image_that_breaks_an_invariant_is_refused) {
  struct h a;
  uint64_t live;
  h_init(&a, NULL);
  keys_scene(&a, &live);
  uint8_t *img;
  size_t len;
  ck_assert_int_eq(fsm_snapshot_encode(a.f, &img, &len), 0);
  image_refused(img, len, swap_keys);
  image_refused(img, len, revision_back);
  image_refused(img, len, key_unbound_session);
  image_refused(img, len, grave_session_alive);
  image_refused(img, len, events_cut);
  image_refused(img, len, history_first_wrong);
  free(img);
  h_close(&a);
}
END_TEST

/* Every refusal names the value and changes nothing. */
START_TEST(key_bad_input_gets_clear_errors_and_changes_nothing) {
  struct fsm_options o = {.keys_max = 3, .keys_bytes_max = 40};
  struct h h;
  h_init(&h, &o);
  h_kput_ok(&h, "a", "1");
  uint64_t before = keys_digest(&h);
  char long_key[600];
  memset(long_key, 'k', sizeof long_key - 1);
  long_key[513] = '\0';
  struct {
    const char *key;
    size_t len;
    int code;
    const char *msg;
  } bad[] = {
      {"", 0, SYNOD_EINVAL, "key put: key is empty"},
      {long_key, 513, SYNOD_EINVAL, "key of 513 bytes, over 512"},
      {"a\xff", 2, SYNOD_EINVAL, "not valid UTF-8 (byte 1)"},
      {"a\0b", 3, SYNOD_EINVAL, "NUL byte at 1"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    Synod__KeyPut p = SYNOD__KEY_PUT__INIT;
    p.key = (ProtobufCBinaryData){bad[i].len, (uint8_t *)bad[i].key};
    KREQ(&h, 0, 0, KEY_PUT, key_put, &p);
    ck_assert_int_eq(h_err(&h), bad[i].code);
    ck_assert_msg(strstr(h_msg(&h), bad[i].msg), "%s", h_msg(&h));
    ck_assert_uint_eq(keys_digest(&h), before);
  }
  long_key[512] = '\0';
  h_kput(&h, 0, 0, long_key, "", false); /* 512 bytes: over the bytes cap */
  ck_assert_int_eq(h_err(&h), SYNOD_ELIMIT);
  ck_assert_msg(strstr(h_msg(&h), "keys_bytes_max 40"), "%s", h_msg(&h));
  uint8_t *value = calloc(1, 65537);
  Synod__KeyPut p = SYNOD__KEY_PUT__INIT;
  p.key = bin("v");
  p.value = (ProtobufCBinaryData){65537, value};
  KREQ(&h, 0, 0, KEY_PUT, key_put, &p);
  ck_assert_int_eq(h_err(&h), SYNOD_ETOOBIG);
  ck_assert_msg(strstr(h_msg(&h), "value of 65537 bytes for \"v\", over 65536"),
                "%s", h_msg(&h));
  free(value);
  h_kput_ok(&h, "b", "1");
  h_kput_ok(&h, "c", "1");
  before = keys_digest(&h);
  h_kput(&h, 0, 0, "d", "1", false);
  ck_assert_int_eq(h_err(&h), SYNOD_ELIMIT);
  ck_assert_msg(strstr(h_msg(&h), "keys_max 3"), "%s", h_msg(&h));
  h_kput_ok(&h, "c", "2"); /* an existing key still takes puts */
  before = keys_digest(&h);
  /* Compares: an unknown target (a newer build's: not applied at all, see
   * an_entry_with_a_field_this_build_does_not_know_is_not_applied), a
   * prefix delete naming none. */
  Synod__KeyCompare c = cmp_num("", 9, EQ, 0);
  Synod__KeyCompare *cs[] = {&c};
  Synod__KeyPut kp = SYNOD__KEY_PUT__INIT;
  kp.key = bin("a");
  kp.value = bin("2");
  kp.compares = cs;
  kp.n_compares = 1;
  Synod__Request kr = SYNOD__REQUEST__INIT;
  kr.body_case = SYNOD__REQUEST__BODY_KEY_PUT;
  kr.key_put = &kp;
  uint8_t kbuf[256];
  size_t kn = fsm_command_encode_request(h.time_ms, &kr, kbuf, sizeof kbuf);
  ck_assert_int_eq(h_apply_or_refuse(&h, kbuf, kn), SYNOD_EPROTO);
  ck_assert_msg(strstr(fsm_unknown_field(h.f), "value 9 of synod.KeyCompare"),
                "%s", fsm_unknown_field(h.f));
  c = cmp_num("", VER, EQ, 0);
  Synod__KeyDelete d = SYNOD__KEY_DELETE__INIT;
  d.key = bin("a");
  d.prefix = true;
  d.compares = cs;
  d.n_compares = 1;
  KREQ(&h, 0, 0, KEY_DELETE, key_delete, &d);
  ck_assert_int_eq(h_err(&h), SYNOD_EINVAL);
  d.n_compares = 0;
  d.prev_kv = true;
  KREQ(&h, 0, 0, KEY_DELETE, key_delete, &d);
  ck_assert_int_eq(h_err(&h), SYNOD_EINVAL);
  ck_assert_msg(strstr(h_msg(&h), "prev_kv is for one key"), "%s", h_msg(&h));
  /* A transaction over its bound. */
  Synod__KeyGet gs[65];
  Synod__KeyOp ops[65];
  Synod__KeyOp *opp[65];
  for (int i = 0; i < 65; i++) {
    ops[i] = op_get(&gs[i], "a");
    opp[i] = &ops[i];
  }
  Synod__KeyTxn t = SYNOD__KEY_TXN__INIT;
  t.success = opp;
  t.n_success = 65;
  KREQ(&h, 0, 0, KEY_TXN, key_txn, &t);
  ck_assert_int_eq(h_err(&h), SYNOD_ELIMIT);
  ck_assert_msg(strstr(h_msg(&h), "65 operations in success, at most 64"), "%s",
                h_msg(&h));
  t.n_success = 64;
  KREQ(&h, 0, 0, KEY_TXN, key_txn, &t);
  ck_assert_int_eq(h_err(&h), 0);
  Synod__KeyOp empty = SYNOD__KEY_OP__INIT;
  opp[0] = &empty;
  KREQ(&h, 0, 0, KEY_TXN, key_txn, &t);
  ck_assert_int_eq(h_err(&h), SYNOD_EINVAL);
  ck_assert_msg(strstr(h_msg(&h), "success op 0: no operation"), "%s",
                h_msg(&h));
  ck_assert_uint_eq(keys_digest(&h), before);
  /* Reads refuse bad keys too. */
  Synod__Response *r = h_kget(&h, "");
  ck_assert_int_eq(r->error->code, SYNOD_EINVAL);
  synod__response__free_unpacked(r, NULL);
  ck_assert_uint_eq(keys_digest(&h), before);
  h_close(&h);
}
END_TEST

/* Gets and lists are reads (fsm_query answers them; in a log entry they
 * change nothing); puts, deletes and transactions are writes. */
START_TEST(key_get_and_list_are_reads_the_rest_writes) {
  Synod__Request r = SYNOD__REQUEST__INIT;
  Synod__KeyGet g = SYNOD__KEY_GET__INIT;
  Synod__KeyList l = SYNOD__KEY_LIST__INIT;
  Synod__KeyPut p = SYNOD__KEY_PUT__INIT;
  Synod__KeyDelete d = SYNOD__KEY_DELETE__INIT;
  Synod__KeyTxn t = SYNOD__KEY_TXN__INIT;
  r.body_case = SYNOD__REQUEST__BODY_KEY_GET;
  r.key_get = &g;
  ck_assert(fsm_request_is_read(&r) && !fsm_request_is_write(&r));
  r.body_case = SYNOD__REQUEST__BODY_KEY_LIST;
  r.key_list = &l;
  ck_assert(fsm_request_is_read(&r) && !fsm_request_is_write(&r));
  r.body_case = SYNOD__REQUEST__BODY_KEY_PUT;
  r.key_put = &p;
  ck_assert(!fsm_request_is_read(&r) && fsm_request_is_write(&r));
  r.body_case = SYNOD__REQUEST__BODY_KEY_DELETE;
  r.key_delete = &d;
  ck_assert(!fsm_request_is_read(&r) && fsm_request_is_write(&r));
  r.body_case = SYNOD__REQUEST__BODY_KEY_TXN;
  r.key_txn = &t;
  ck_assert(!fsm_request_is_read(&r) && fsm_request_is_write(&r));
  uint8_t *data;
  size_t len;
  struct fsm *f = fsm_new(NULL);
  ck_assert_int_eq(fsm_query(f, &r, &data, &len), SYNOD_EINVAL);
  fsm_free(f);
}
END_TEST

static TCase *tcase_keys(void) {
  TCase *tc = tcase_create("keys");
  tcase_add_test(tc, key_put_get_delete_keep_revisions_and_versions);
  tcase_add_test(tc, key_list_at_a_past_revision_is_the_keys_then);
  tcase_add_test(tc, key_list_at_a_revision_equals_the_listing_taken_then);
  tcase_add_test(tc, key_put_retried_in_a_session_applies_once);
  tcase_add_test(tc, key_prefix_delete_and_list_pages_at_a_revision);
  tcase_add_test(tc, key_compare_and_put_on_version_mod_revision_and_value);
  tcase_add_test(tc, key_txn_is_atomic_and_runs_one_branch);
  tcase_add_test(tc, key_session_bound_keys_go_at_close_and_expiry_not_before);
  tcase_add_test(tc, sequence_zero_in_a_session_is_einval_or_not_recorded);
  tcase_add_test(tc, key_session_end_removes_keys_in_chunks_hidden_at_once);
  tcase_add_test(tc, key_history_positions_are_revisions_and_compact);
  tcase_add_test(tc, key_history_bounds_are_a_replicated_setting);
  tcase_add_test(tc, key_value_bound_is_a_replicated_setting);
  tcase_add_test(tc, key_history_drops_a_session_end_and_frees_its_keys);
  tcase_add_test(tc, key_history_trim_is_the_same_on_a_restored_replica);
  tcase_add_test(tc, key_state_survives_a_snapshot_byte_for_byte);
  tcase_add_test(tc, key_image_that_breaks_an_invariant_is_refused);
  tcase_add_test(tc, key_bad_input_gets_clear_errors_and_changes_nothing);
  tcase_add_test(tc, key_get_and_list_are_reads_the_rest_writes);
  return tc;
}

static Suite *fsm_suite(void) {
  Suite *s = suite_create("fsm");
  suite_add_tcase(s, tcase_sessions());
  suite_add_tcase(s, tcase_locks());
  suite_add_tcase(s, tcase_counters_elections());
  suite_add_tcase(s, tcase_snapshots());
  suite_add_tcase(s, tcase_channels());
  suite_add_tcase(s, tcase_keys());
  TCase *tc = tcase_create("members");
  tcase_add_test(tc, member_directory_records_replaces_and_forgets);
  tcase_add_test(tc, member_directory_survives_snapshot_in_id_order);
  suite_add_tcase(s, tc);
  tc = tcase_create("stats");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc,
                 stats_count_holders_waiters_grants_and_wait_in_cluster_time);
  tcase_add_test(tc, stats_count_expired_sessions_not_closed_ones);
  tcase_add_test(tc, stats_gauges_match_a_walk_and_are_rebuilt_on_restore);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(fsm_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
