/* History checkers: the counter linearizability checker accepts exactly
 * the histories a single atomic counter could have produced; the lock
 * checker refuses forged histories that break each of its rules. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"

#define E(o, a1, a2, inv, comp, val)                                           \
  (struct history_counter_entry) {                                             \
    .op = (o), .arg1 = (a1), .arg2 = (a2), .invoke = (inv),                    \
    .complete = (comp), .value = (val)                                         \
  }

static enum history_verdict check(const struct history_counter_entry *ops,
                                  size_t n) {
  char why[128];
  return history_counter_check(ops, n, 0, 0, why, sizeof why);
}

START_TEST(sequential_increments_are_linearizable) {
  struct history_counter_entry ops[] = {
      E(HISTORY_COUNTER_ADD_GET, 1, 0, 1, 2, 1),
      E(HISTORY_COUNTER_ADD_GET, 1, 0, 3, 4, 2),
      E(HISTORY_COUNTER_GET, 0, 0, 5, 6, 2),
  };
  ck_assert_int_eq(check(ops, 3), HISTORY_LINEARIZABLE);
}
END_TEST

START_TEST(lost_increment_is_caught) {
  /* Two sequential increments, then a read that saw only one. */
  struct history_counter_entry ops[] = {
      E(HISTORY_COUNTER_ADD_GET, 1, 0, 1, 2, 1),
      E(HISTORY_COUNTER_ADD_GET, 1, 0, 3, 4, 2),
      E(HISTORY_COUNTER_GET, 0, 0, 5, 6, 1),
  };
  char why[128];
  ck_assert_int_eq(history_counter_check(ops, 3, 0, 0, why, sizeof why),
                   HISTORY_NOT_LINEARIZABLE);
  ck_assert_str_ne(why, "");
}
END_TEST

START_TEST(concurrent_increments_may_take_either_order) {
  struct history_counter_entry ops[] = {
      E(HISTORY_COUNTER_ADD_GET, 1, 0, 1, 10, 2),
      E(HISTORY_COUNTER_ADD_GET, 1, 0, 2, 9, 1),
      E(HISTORY_COUNTER_GET, 0, 0, 11, 12, 2),
  };
  ck_assert_int_eq(check(ops, 3), HISTORY_LINEARIZABLE);
}
END_TEST

START_TEST(duplicate_applied_retry_is_caught) {
  /* One increment, retried, applied twice: a later read sees 2. */
  struct history_counter_entry ops[] = {
      E(HISTORY_COUNTER_ADD_GET, 1, 0, 1, 5, 1),
      E(HISTORY_COUNTER_GET, 0, 0, 6, 7, 2),
  };
  ck_assert_int_eq(check(ops, 2), HISTORY_NOT_LINEARIZABLE);
}
END_TEST

START_TEST(stale_read_after_completed_write_is_caught) {
  struct history_counter_entry ops[] = {
      E(HISTORY_COUNTER_SET, 5, 0, 1, 2, 5),
      E(HISTORY_COUNTER_GET, 0, 0, 3, 4, 0),
  };
  ck_assert_int_eq(check(ops, 2), HISTORY_NOT_LINEARIZABLE);
}
END_TEST

START_TEST(pending_operation_may_or_may_not_have_happened) {
  struct history_counter_entry ops[] = {
      E(HISTORY_COUNTER_ADD_GET, 7, 0, 1, 0, 0),
      E(HISTORY_COUNTER_GET, 0, 0, 2, 3, 0),
      E(HISTORY_COUNTER_GET, 0, 0, 4, 5, 7),
  };
  ops[0].pending = true;
  ck_assert_int_eq(check(ops, 3), HISTORY_LINEARIZABLE);
  /* But it cannot have happened twice, or un-happened. */
  ops[1].value = 7;
  ops[2].value = 0;
  ck_assert_int_eq(check(ops, 3), HISTORY_NOT_LINEARIZABLE);
}
END_TEST

START_TEST(cas_results_must_match_the_state) {
  struct history_counter_entry ops[] = {
      E(HISTORY_COUNTER_CAS, 0, 3, 1, 2, 3),
      E(HISTORY_COUNTER_CAS, 0, 9, 3, 4, 3),
  };
  ops[0].swapped = true;
  ops[1].swapped = false;
  ck_assert_int_eq(check(ops, 2), HISTORY_LINEARIZABLE);
  ops[1].swapped = true; /* claims to have swapped from 0, but it was 3 */
  ops[1].value = 9;
  ck_assert_int_eq(check(ops, 2), HISTORY_NOT_LINEARIZABLE);
}
END_TEST

START_TEST(overflow_must_really_overflow) {
  struct history_counter_entry ops[] = {
      E(HISTORY_COUNTER_SET, INT64_MAX, 0, 1, 2, INT64_MAX),
      E(HISTORY_COUNTER_ADD_GET, 1, 0, 3, 4, 0),
      E(HISTORY_COUNTER_GET_ADD, -1, 0, 5, 6, INT64_MAX),
  };
  ops[1].failed = ops[1].overflow = true;
  ck_assert_int_eq(check(ops, 3), HISTORY_LINEARIZABLE);
  ops[0].arg1 = 5; /* now +1 cannot overflow */
  ops[0].value = 5;
  ck_assert_int_eq(check(ops, 3), HISTORY_NOT_LINEARIZABLE);
}
END_TEST

START_TEST(delete_resets_to_zero_and_failed_ops_have_no_effect) {
  struct history_counter_entry ops[] = {
      E(HISTORY_COUNTER_ADD_GET, 4, 0, 1, 2, 4),
      E(HISTORY_COUNTER_DELETE, 0, 0, 3, 4, 0),
      E(HISTORY_COUNTER_ADD_GET, 100, 0, 5, 6, 0),
      E(HISTORY_COUNTER_GET_ADD, 1, 0, 7, 8, 0),
  };
  ops[2].failed = true; /* e.g. SYNOD_ESESSION: never applied */
  ck_assert_int_eq(check(ops, 4), HISTORY_LINEARIZABLE);
}
END_TEST

/* Many concurrent clients: a correct history of 8 clients x 40 increments
 * with overlapping intervals is accepted quickly. */
START_TEST(large_concurrent_history_is_checked_within_budget) {
  enum { CLIENTS = 8, EACH = 40, N = CLIENTS * EACH };
  struct history_counter_entry *ops = calloc(N, sizeof *ops);
  ck_assert_ptr_nonnull(ops);
  /* Round r: every client's op overlaps the others of its round; the
   * value order inside a round is the client order. */
  for (int r = 0; r < EACH; r++) {
    for (int c = 0; c < CLIENTS; c++) {
      struct history_counter_entry *o = &ops[r * CLIENTS + c];
      o->op = HISTORY_COUNTER_ADD_GET;
      o->arg1 = 1;
      o->invoke = (uint64_t)r * 100 + (uint64_t)c;
      o->complete = (uint64_t)r * 100 + 50 + (uint64_t)c;
      o->value = r * CLIENTS + c + 1;
    }
  }
  char why[128];
  ck_assert_int_eq(history_counter_check(ops, N, 0, 0, why, sizeof why),
                   HISTORY_LINEARIZABLE);
  ops[N - 1].value = 1; /* a value already taken */
  ck_assert_int_eq(history_counter_check(ops, N, 0, 0, why, sizeof why),
                   HISTORY_NOT_LINEARIZABLE);
  free(ops);
}
END_TEST

/* ------------------------------------------------------------------- keys */

#define KPUT(inv, comp, val, rev, ver)                                         \
  (struct history_kv_entry) {                                                  \
    .op = HISTORY_KV_PUT, .invoke = (inv), .complete = (comp), .value = (val), \
    .succeeded = true, .revision = (rev), .version = (ver)                     \
  }
#define KGET(inv, comp, fnd, val, ver)                                         \
  (struct history_kv_entry) {                                                  \
    .op = HISTORY_KV_GET, .invoke = (inv), .complete = (comp), .found = (fnd), \
    .got_value = (val), .version = (ver)                                       \
  }

static enum history_verdict kcheck(const struct history_kv_entry *ops,
                                   size_t n) {
  char why[128];
  return history_kv_check(ops, n, 0, why, sizeof why);
}

/* A compare on the key's version (0 = create only). */
static struct history_kv_entry kv_cas(struct history_kv_entry e,
                                      uint64_t version, bool succeeded) {
  e.cmp[0] = (struct history_kv_compare){
      .target = HISTORY_KV_VERSION, .cmp = HISTORY_KV_EQUAL, .number = version};
  e.cmp_n = 1;
  e.succeeded = succeeded;
  return e;
}

START_TEST(key_puts_and_reads_in_order_are_linearizable) {
  struct history_kv_entry ops[] = {
      KPUT(1, 2, 7, 1, 1),
      KPUT(3, 4, 8, 2, 2),
      KGET(5, 6, true, 8, 2),
  };
  ck_assert_int_eq(kcheck(ops, 3), HISTORY_LINEARIZABLE);
}
END_TEST

START_TEST(key_read_of_an_overwritten_value_is_caught) {
  struct history_kv_entry ops[] = {
      KPUT(1, 2, 7, 1, 1),
      KPUT(3, 4, 8, 2, 2),
      KGET(5, 6, true, 7, 1),
  };
  ck_assert_int_eq(kcheck(ops, 3), HISTORY_NOT_LINEARIZABLE);
}
END_TEST

START_TEST(key_two_creates_that_both_succeed_are_caught) {
  /* Concurrent create-only puts: at most one may succeed. */
  struct history_kv_entry ok[] = {
      kv_cas(KPUT(1, 10, 7, 1, 1), 0, true),
      kv_cas(KPUT(2, 9, 8, 0, 0), 0, false),
      KGET(11, 12, true, 7, 1),
  };
  ck_assert_int_eq(kcheck(ok, 3), HISTORY_LINEARIZABLE);
  struct history_kv_entry bad[] = {
      kv_cas(KPUT(1, 10, 7, 1, 1), 0, true),
      kv_cas(KPUT(2, 9, 8, 2, 1), 0, true),
  };
  ck_assert_int_eq(kcheck(bad, 2), HISTORY_NOT_LINEARIZABLE);
}
END_TEST

START_TEST(key_compare_and_put_on_a_stale_version_is_caught) {
  struct history_kv_entry ops[] = {
      KPUT(1, 2, 7, 1, 1), KPUT(3, 4, 8, 2, 2),
      kv_cas(KPUT(5, 6, 9, 3, 2), 1, true), /* version is 2 by now */
  };
  ck_assert_int_eq(kcheck(ops, 3), HISTORY_NOT_LINEARIZABLE);
  ops[2] = kv_cas(KPUT(5, 6, 9, 3, 3), 2, true);
  ck_assert_int_eq(kcheck(ops, 3), HISTORY_LINEARIZABLE);
}
END_TEST

START_TEST(key_revisions_must_grow_in_the_linearization) {
  /* Sequential puts whose revisions run backwards. */
  struct history_kv_entry ops[] = {
      KPUT(1, 2, 7, 5, 1),
      KPUT(3, 4, 8, 4, 2),
  };
  ck_assert_int_eq(kcheck(ops, 2), HISTORY_NOT_LINEARIZABLE);
}
END_TEST

START_TEST(key_pending_put_may_or_may_not_have_happened) {
  struct history_kv_entry ops[] = {
      KPUT(1, 2, 7, 1, 1),
      KPUT(3, 0, 8, 2, 0),
      KGET(5, 6, true, 7, 1),
      KGET(7, 8, true, 8, 2),
  };
  ops[1].pending = true;
  ck_assert_int_eq(kcheck(ops, 4), HISTORY_LINEARIZABLE);
  ops[3] = KGET(7, 8, true, 7, 1); /* it never happened */
  ck_assert_int_eq(kcheck(ops, 4), HISTORY_LINEARIZABLE);
  ops[2] = KGET(5, 6, true, 8, 2);
  ops[3] = KGET(7, 8, true, 7, 1); /* it happened, then unhappened */
  ck_assert_int_eq(kcheck(ops, 4), HISTORY_NOT_LINEARIZABLE);
}
END_TEST

START_TEST(key_delete_and_session_end_remove_the_key) {
  struct history_kv_entry ops[] = {
      KPUT(1, 2, 7, 1, 1),
      {.op = HISTORY_KV_DELETE,
       .invoke = 3,
       .complete = 4,
       .succeeded = true,
       .deleted = 1,
       .revision = 2},
      KGET(5, 6, false, 0, 0),
      KPUT(7, 8, 9, 3, 1), /* created again: version 1 */
      {.op = HISTORY_KV_END, .session = 5, .invoke = 9, .complete = 9},
      KGET(10, 11, true, 9, 1),
  };
  ops[3].session = 4;
  ck_assert_int_eq(kcheck(ops, 6), HISTORY_LINEARIZABLE);
  ops[4].session = 4; /* its own session ended: the key is gone */
  ck_assert_int_eq(kcheck(ops, 6), HISTORY_NOT_LINEARIZABLE);
  ops[5] = KGET(10, 11, false, 0, 0);
  ck_assert_int_eq(kcheck(ops, 6), HISTORY_LINEARIZABLE);
}
END_TEST

START_TEST(key_delete_count_must_match_the_state) {
  struct history_kv_entry ops[] = {
      {.op = HISTORY_KV_DELETE,
       .invoke = 1,
       .complete = 2,
       .succeeded = true,
       .deleted = 1,
       .revision = 1},
  };
  ck_assert_int_eq(kcheck(ops, 1), HISTORY_NOT_LINEARIZABLE);
  ops[0].deleted = 0;
  ck_assert_int_eq(kcheck(ops, 1), HISTORY_LINEARIZABLE);
}
END_TEST

START_TEST(key_value_compare_never_holds_on_an_absent_key) {
  struct history_kv_entry ops[] = {KPUT(1, 2, 7, 1, 1)};
  ops[0].cmp[0] = (struct history_kv_compare){
      .target = HISTORY_KV_VALUE, .cmp = HISTORY_KV_NOT_EQUAL, .number = 3};
  ops[0].cmp_n = 1;
  ck_assert_int_eq(kcheck(ops, 1), HISTORY_NOT_LINEARIZABLE);
  ops[0].succeeded = false;
  ops[0].version = 0;
  ck_assert_int_eq(kcheck(ops, 1), HISTORY_LINEARIZABLE);
}
END_TEST

/* ------------------------------------------------------------------ locks */

#define L(k, idx, t, lk, sess, own, seq, tok, a)                               \
  (struct history_lock_event) {                                                \
    .kind = HISTORY_LOCK_##k, .index = (idx), .time_ms = (t), .lock = (lk),    \
    .session = (sess), .owner = (own), .sequence = (seq), .token = (tok),      \
    .arg = (a)                                                                 \
  }

/* Feeds evs; returns the index of the first refused event, or n. */
static size_t feed_all(const struct history_lock_event *evs, size_t n,
                       char *why, size_t why_len) {
  struct history_locks *h = history_locks_new();
  size_t i = 0;
  while (i < n && history_locks_feed(h, &evs[i], why, why_len)) {
    i++;
  }
  history_locks_free(h);
  return i;
}

/* Two sessions; s1 holds lock 0, s2 queues, s1 releases, s2 is granted. */
static const struct history_lock_event fair[] = {
    L(OPEN, 1, 10, 0, 1, 0, 0, 0, 1000),    L(END, 1, 10, 0, 0, 0, 0, 0, 0),
    L(OPEN, 2, 20, 0, 2, 0, 0, 0, 1000),    L(END, 2, 20, 0, 0, 0, 0, 0, 0),
    L(GRANT, 3, 30, 0, 1, 1, 1, 3, 0),      L(END, 3, 30, 0, 0, 0, 0, 0, 0),
    L(ENQUEUE, 4, 40, 0, 2, 1, 1, 0, 5000), L(END, 4, 40, 0, 0, 0, 0, 0, 0),
    L(RELEASE, 5, 50, 0, 1, 1, 2, 0, 0),    L(GRANT, 5, 50, 0, 2, 1, 1, 5, 0),
    L(END, 5, 50, 0, 0, 0, 0, 0, 0),
};

START_TEST(lock_history_of_a_fair_handover_is_accepted) {
  char why[256] = "";
  size_t n = sizeof fair / sizeof fair[0];
  ck_assert_msg(feed_all(fair, n, why, sizeof why) == n, "%s", why);
}
END_TEST

START_TEST(lock_granted_to_a_second_owner_is_caught) {
  struct history_lock_event evs[sizeof fair / sizeof fair[0]];
  memcpy(evs, fair, sizeof evs);
  evs[6] = L(GRANT, 4, 40, 0, 2, 1, 1, 4, 0); /* instead of queueing */
  char why[256];
  ck_assert_uint_eq(feed_all(evs, 7, why, sizeof why), 6);
  ck_assert_ptr_nonnull(strstr(why, "two holders"));
}
END_TEST

START_TEST(fencing_token_that_does_not_grow_is_caught) {
  struct history_lock_event evs[sizeof fair / sizeof fair[0]];
  memcpy(evs, fair, sizeof evs);
  evs[9].token = 3; /* the waiter gets the old holder's token */
  char why[256];
  ck_assert_uint_eq(feed_all(evs, 11, why, sizeof why), 9);
  ck_assert_ptr_nonnull(strstr(why, "does not grow"));
}
END_TEST

START_TEST(waiter_granted_out_of_fifo_order_is_caught) {
  const struct history_lock_event evs[] = {
      L(OPEN, 1, 10, 0, 1, 0, 0, 0, 1000),
      L(OPEN, 2, 10, 0, 2, 0, 0, 0, 1000),
      L(OPEN, 3, 10, 0, 3, 0, 0, 0, 1000),
      L(GRANT, 4, 10, 0, 1, 1, 1, 4, 0),
      L(ENQUEUE, 5, 10, 0, 2, 1, 1, 0, 900),
      L(ENQUEUE, 6, 10, 0, 3, 1, 1, 0, 900),
      L(RELEASE, 7, 20, 0, 1, 1, 2, 0, 0),
      L(GRANT, 7, 20, 0, 3, 1, 1, 7, 0), /* s3 before s2 */
  };
  char why[256];
  ck_assert_uint_eq(feed_all(evs, 8, why, sizeof why), 7);
  ck_assert_ptr_nonnull(strstr(why, "FIFO"));
}
END_TEST

START_TEST(expired_session_that_keeps_waiting_or_is_granted_is_caught) {
  const struct history_lock_event evs[] = {
      L(OPEN, 1, 10, 0, 1, 0, 0, 0, 1000),
      L(OPEN, 2, 10, 0, 2, 0, 0, 0, 5000),
      L(GRANT, 3, 10, 0, 2, 1, 1, 3, 0),
      L(ENQUEUE, 4, 10, 0, 1, 1, 1, 0, 4000),
      L(END, 4, 10, 0, 0, 0, 0, 0, 0),
      L(EXPIRE, 5, 1011, 0, 1, 0, 0, 0, 0),
      L(END, 5, 1011, 0, 0, 0, 0, 0, 0), /* its waiter was not canceled */
  };
  char why[256];
  ck_assert_uint_eq(feed_all(evs, 7, why, sizeof why), 6);
  ck_assert_ptr_nonnull(strstr(why, "still waits"));
  struct history_lock_event granted[7];
  memcpy(granted, evs, sizeof granted);
  granted[6] = L(GRANT, 5, 1011, 1, 1, 1, 2, 5, 0);
  ck_assert_uint_eq(feed_all(granted, 7, why, sizeof why), 6);
  ck_assert_ptr_nonnull(strstr(why, "expired or closed"));
}
END_TEST

START_TEST(early_expiry_and_short_lock_delay_are_caught) {
  const struct history_lock_event early[] = {
      L(OPEN, 1, 10, 0, 1, 0, 0, 0, 1000),
      L(EXPIRE, 2, 1010, 0, 1, 0, 0, 0, 0), /* alive through 1010 */
  };
  char why[256];
  ck_assert_uint_eq(feed_all(early, 2, why, sizeof why), 1);
  ck_assert_ptr_nonnull(strstr(why, "early"));
  const struct history_lock_event late[] = {
      L(OPEN, 1, 10, 0, 1, 0, 0, 0, 1000),
      L(END, 2, 1011, 0, 0, 0, 0, 0, 0), /* due at 1011, not expired */
  };
  ck_assert_uint_eq(feed_all(late, 2, why, sizeof why), 1);
  ck_assert_ptr_nonnull(strstr(why, "outlives"));
  const struct history_lock_event delay[] = {
      L(OPEN, 1, 10, 0, 1, 0, 0, 0, 1000),
      L(OPEN, 2, 10, 0, 2, 0, 0, 0, 9000),
      L(GRANT, 3, 10, 0, 1, 1, 1, 3, 500), /* lock-delay 500 ms */
      L(ENQUEUE, 4, 10, 0, 2, 1, 1, 0, 5000),
      L(EXPIRE, 5, 1011, 0, 1, 0, 0, 0, 0),
      L(END, 5, 1011, 0, 0, 0, 0, 0, 0),
      L(GRANT, 6, 1400, 0, 2, 1, 1, 6, 0), /* before 1511 */
  };
  ck_assert_uint_eq(feed_all(delay, 7, why, sizeof why), 6);
  ck_assert_ptr_nonnull(strstr(why, "lock-delay"));
}
END_TEST

START_TEST(final_state_that_differs_from_the_history_is_caught) {
  struct history_locks *h = history_locks_new();
  char why[256];
  size_t n = sizeof fair / sizeof fair[0];
  for (size_t i = 0; i < n; i++) {
    ck_assert(history_locks_feed(h, &fair[i], why, sizeof why));
  }
  struct history_lock_final fin = {.lock = 0,
                                   .held = true,
                                   .session = 2,
                                   .owner = 1,
                                   .token = 5,
                                   .hold_count = 1};
  ck_assert_msg(history_locks_final(h, &fin, 1, why, sizeof why), "%s", why);
  fin.session = 1; /* the released holder still holds */
  ck_assert(!history_locks_final(h, &fin, 1, why, sizeof why));
  ck_assert(!history_locks_final(h, NULL, 0, why, sizeof why));
  uint32_t lock;
  uint64_t session, owner;
  ck_assert(history_locks_token(h, 5, &lock, &session, &owner));
  ck_assert_uint_eq(session, 2);
  ck_assert(!history_locks_token(h, 4, &lock, &session, &owner));
  history_locks_free(h);
}
END_TEST

/* ------------------------------------------------------------ channels */

#define P(ch, n_, inv, comp, ok, first, last, idx)                             \
  (struct history_publish) {                                                   \
    .channel = (ch), .n = (n_), .invoke = (inv), .complete = (comp),           \
    .acked = (ok), .first_offset = (first), .last_offset = (last),             \
    .index = (idx)                                                             \
  }
#define D(ch, off, idx, pub, part_)                                            \
  (struct history_delivery) {                                                  \
    .channel = (ch), .offset = (off), .index = (idx), .publish = (pub),        \
    .part = (part_)                                                            \
  }

/* Channels 0 and 1 (the prefix's) never drop a message; channel 2 keeps
 * its last 3. Publish 2's outcome is unknown (it was applied); publish 4
 * was refused. s0 and s1 follow one channel each, s2 and s3 the prefix
 * (s3 from after index 10), s4 channel 2, which had dropped offset 1 when
 * s4 asked for it. */
struct fx {
  uint64_t retain[3];
  bool in_prefix[3];
  struct history_publish pubs[9];
  struct history_delivery d[5][8];
  struct history_subscriber subs[5];
  struct history_channels h;
};

static void fx_init(struct fx *f) {
  static const struct history_publish pubs[9] = {
      P(0, 1, 1, 2, true, 1, 1, 10),   P(1, 2, 3, 6, true, 1, 2, 11),
      P(0, 1, 4, 0, false, 0, 0, 0),   P(0, 1, 7, 8, true, 3, 3, 13),
      P(1, 1, 9, 10, false, 0, 0, 0),  P(2, 1, 11, 12, true, 1, 1, 14),
      P(2, 1, 13, 14, true, 2, 2, 15), P(2, 1, 15, 16, true, 3, 3, 16),
      P(2, 1, 17, 18, true, 4, 4, 17),
  };
  const struct history_delivery d[5][8] = {
      {D(0, 1, 10, 0, 0), D(0, 2, 12, 2, 0), D(0, 3, 13, 3, 0)},
      {D(1, 1, 11, 1, 0), D(1, 2, 11, 1, 1)},
      {D(0, 1, 10, 0, 0), D(1, 1, 11, 1, 0), D(1, 2, 11, 1, 1),
       D(0, 2, 12, 2, 0), D(0, 3, 13, 3, 0)},
      {D(1, 1, 11, 1, 0), D(1, 2, 11, 1, 1), D(0, 2, 12, 2, 0),
       D(0, 3, 13, 3, 0)},
      {{.channel = 2, .offset = 2, .compacted = true, .next = 5},
       D(2, 2, 15, 6, 0),
       D(2, 3, 16, 7, 0),
       D(2, 4, 17, 8, 0)},
  };
  static const size_t dn[5] = {3, 2, 5, 4, 4};
  static const char *names[5] = {"s0", "s1", "s2", "s3", "s4"};
  memset(f, 0, sizeof *f);
  f->retain[2] = 3;
  f->in_prefix[0] = f->in_prefix[1] = true;
  memcpy(f->pubs, pubs, sizeof pubs);
  f->pubs[4].refused = true;
  memcpy(f->d, d, sizeof d);
  for (int i = 0; i < 5; i++) {
    f->subs[i] =
        (struct history_subscriber){.name = names[i],
                                    .prefix = i == 2 || i == 3,
                                    .channel = i == 4 ? 2 : (uint32_t)i,
                                    .start = i == 3 ? 10 : 1,
                                    .to_end = true,
                                    .d = f->d[i],
                                    .n = dn[i]};
  }
  f->subs[2].start = 0;
  f->h = (struct history_channels){.channels_n = 3,
                                   .retain = f->retain,
                                   .in_prefix = f->in_prefix,
                                   .pubs = f->pubs,
                                   .pubs_n = 9,
                                   .subs = f->subs,
                                   .subs_n = 5};
}

/* Asserts that the history fails with why starting with `rule`. */
static void fx_fails(const struct fx *f, const char *rule) {
  char why[512];
  ck_assert_msg(!history_channels_check(&f->h, why, sizeof why),
                "expected a %s violation", rule);
  ck_assert_msg(strncmp(why, rule, strlen(rule)) == 0, "expected %s: got %s",
                rule, why);
  if (getenv("HISTORY_PRINT") != NULL) {
    printf("%s\n", why);
  }
}

START_TEST(channel_history_of_correct_subscribers_is_accepted) {
  struct fx f;
  char why[512] = "";
  fx_init(&f);
  ck_assert_msg(history_channels_check(&f.h, why, sizeof why), "%s", why);
  /* A subscriber that stopped early may miss what came after. */
  f.subs[0].n = 1;
  f.subs[0].to_end = false;
  ck_assert_msg(history_channels_check(&f.h, why, sizeof why), "%s", why);
}
END_TEST

START_TEST(channel_delivery_with_a_gap_or_a_duplicate_is_caught) {
  struct fx f;
  fx_init(&f);
  f.d[0][1] = f.d[0][2]; /* s0: offsets 1, 3 */
  f.subs[0].n = 2;
  fx_fails(&f, "gap:");
  fx_init(&f);
  f.d[1][2] = f.d[1][1]; /* s1: offsets 1, 2, 2 */
  f.subs[1].n = 3;
  fx_fails(&f, "duplicate:");
  fx_init(&f);
  f.d[2][4] = f.d[2][2]; /* s2 goes back to ch1 offset 2 */
  fx_fails(&f, "duplicate:");
}
END_TEST

START_TEST(channel_compaction_that_the_limits_do_not_explain_is_caught) {
  struct fx f;
  fx_init(&f);
  f.d[4][0].next = 6; /* a window of 4 where 3 are kept */
  fx_fails(&f, "compacted:");
  fx_init(&f);
  /* s0 is told offset 2 of a channel that never drops is gone. */
  f.d[0][1] = (struct history_delivery){
      .channel = 0, .offset = 3, .compacted = true, .next = 4};
  fx_fails(&f, "compacted:");
  fx_init(&f);
  f.d[4][0].offset = 1; /* "compacted" at the offset it asked for */
  f.d[4][0].next = 4;
  fx_fails(&f, "compacted:");
}
END_TEST

START_TEST(prefix_subscribers_with_two_interleavings_are_caught) {
  struct fx f;
  fx_init(&f);
  /* s3 swaps ch1 offset 2 and ch0 offset 2: each channel stays in order,
   * the interleaving differs from s2's. */
  struct history_delivery t = f.d[3][1];
  f.d[3][1] = f.d[3][2];
  f.d[3][2] = t;
  fx_fails(&f, "interleaving:");
}
END_TEST

START_TEST(prefix_delivery_out_of_index_order_is_caught) {
  struct fx f;
  fx_init(&f);
  /* Both prefix subscribers agree, on an order that is not the log's. */
  struct history_delivery t = f.d[3][1];
  f.d[3][1] = f.d[3][2];
  f.d[3][2] = t;
  t = f.d[2][2];
  f.d[2][2] = f.d[2][3];
  f.d[2][3] = t;
  fx_fails(&f, "index order:");
  fx_init(&f);
  f.d[3][4] = (struct history_delivery)D(2, 2, 15, 6, 0); /* not its prefix */
  f.subs[3].n = 5;
  fx_fails(&f, "index order:");
}
END_TEST

START_TEST(one_offset_carrying_two_messages_is_caught) {
  struct fx f;
  fx_init(&f);
  f.d[3][2].publish = 3; /* s3 sees publish 3 at ch0 offset 2 */
  fx_fails(&f, "agreement:");
  fx_init(&f);
  f.d[1][1].index = 12; /* s1 sees ch1 offset 2 at another index */
  fx_fails(&f, "agreement:");
  fx_init(&f);
  f.d[0][0].publish = HISTORY_FOREIGN;
  fx_fails(&f, "agreement:");
}
END_TEST

START_TEST(channel_publish_applied_twice_or_despite_a_refusal_is_caught) {
  struct fx f;
  fx_init(&f);
  /* Publish 2 retried and appended again at offset 3, seen everywhere. */
  f.d[0][2] = (struct history_delivery)D(0, 3, 13, 2, 0);
  f.d[2][4] = f.d[0][2];
  f.d[3][3] = f.d[0][2];
  f.pubs[3].acked = false;
  fx_fails(&f, "exactly-once:");
  fx_init(&f);
  f.pubs[2].refused = true; /* answered with an error, yet appended */
  fx_fails(&f, "exactly-once:");
  fx_init(&f);
  f.d[1][1].index = 18; /* publish 1's batch split over two entries */
  f.h.subs_n = 2;       /* (as s0 and s1 alone see it) */
  fx_fails(&f, "exactly-once:");
}
END_TEST

START_TEST(channel_publish_delivered_elsewhere_than_acknowledged_is_caught) {
  struct fx f;
  fx_init(&f);
  f.pubs[3].first_offset = f.pubs[3].last_offset = 4;
  fx_fails(&f, "acknowledged:");
  fx_init(&f);
  f.pubs[1].last_offset = 3; /* 2 messages, 3 offsets */
  fx_fails(&f, "acknowledged:");
}
END_TEST

START_TEST(acknowledged_message_missing_at_a_subscriber_is_caught) {
  struct fx f;
  fx_init(&f);
  f.subs[0].n = 2; /* s0 ran to the end without ch0 offset 3 */
  fx_fails(&f, "lost:");
  fx_init(&f);
  f.subs[3].n = 3; /* nor s3, whose range covers index 13 */
  fx_fails(&f, "lost:");
}
END_TEST

START_TEST(channel_publishes_out_of_real_time_order_are_caught) {
  struct fx f;
  fx_init(&f);
  /* Publish 2 (ch0 offset 2) invoked after publish 3 (ch0 offset 3) was
   * acknowledged. */
  f.pubs[2].invoke = 9;
  fx_fails(&f, "real-time:");
  fx_init(&f);
  /* Publish 1 (ch1, index 11) invoked after publish 3 (ch0, index 13)
   * was acknowledged. */
  f.pubs[1].invoke = 9;
  f.pubs[1].complete = 10;
  fx_fails(&f, "real-time:");
}
END_TEST

static Suite *history_suite(void) {
  Suite *s = suite_create("history");
  TCase *tc = tcase_create("counter");
  tcase_add_test(tc, sequential_increments_are_linearizable);
  tcase_add_test(tc, lost_increment_is_caught);
  tcase_add_test(tc, concurrent_increments_may_take_either_order);
  tcase_add_test(tc, duplicate_applied_retry_is_caught);
  tcase_add_test(tc, stale_read_after_completed_write_is_caught);
  tcase_add_test(tc, pending_operation_may_or_may_not_have_happened);
  tcase_add_test(tc, cas_results_must_match_the_state);
  tcase_add_test(tc, overflow_must_really_overflow);
  tcase_add_test(tc, delete_resets_to_zero_and_failed_ops_have_no_effect);
  tcase_add_test(tc, large_concurrent_history_is_checked_within_budget);
  tcase_add_test(tc, key_puts_and_reads_in_order_are_linearizable);
  tcase_add_test(tc, key_read_of_an_overwritten_value_is_caught);
  tcase_add_test(tc, key_two_creates_that_both_succeed_are_caught);
  tcase_add_test(tc, key_compare_and_put_on_a_stale_version_is_caught);
  tcase_add_test(tc, key_revisions_must_grow_in_the_linearization);
  tcase_add_test(tc, key_pending_put_may_or_may_not_have_happened);
  tcase_add_test(tc, key_delete_and_session_end_remove_the_key);
  tcase_add_test(tc, key_delete_count_must_match_the_state);
  tcase_add_test(tc, key_value_compare_never_holds_on_an_absent_key);
  tcase_add_test(tc, lock_history_of_a_fair_handover_is_accepted);
  tcase_add_test(tc, lock_granted_to_a_second_owner_is_caught);
  tcase_add_test(tc, fencing_token_that_does_not_grow_is_caught);
  tcase_add_test(tc, waiter_granted_out_of_fifo_order_is_caught);
  tcase_add_test(tc,
                 expired_session_that_keeps_waiting_or_is_granted_is_caught);
  tcase_add_test(tc, early_expiry_and_short_lock_delay_are_caught);
  tcase_add_test(tc, final_state_that_differs_from_the_history_is_caught);
  suite_add_tcase(s, tc);
  tc = tcase_create("channel");
  tcase_add_test(tc, channel_history_of_correct_subscribers_is_accepted);
  tcase_add_test(tc, channel_delivery_with_a_gap_or_a_duplicate_is_caught);
  tcase_add_test(tc,
                 channel_compaction_that_the_limits_do_not_explain_is_caught);
  tcase_add_test(tc, prefix_subscribers_with_two_interleavings_are_caught);
  tcase_add_test(tc, prefix_delivery_out_of_index_order_is_caught);
  tcase_add_test(tc, one_offset_carrying_two_messages_is_caught);
  tcase_add_test(tc,
                 channel_publish_applied_twice_or_despite_a_refusal_is_caught);
  tcase_add_test(
      tc, channel_publish_delivered_elsewhere_than_acknowledged_is_caught);
  tcase_add_test(tc, acknowledged_message_missing_at_a_subscriber_is_caught);
  tcase_add_test(tc, channel_publishes_out_of_real_time_order_are_caught);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(history_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
