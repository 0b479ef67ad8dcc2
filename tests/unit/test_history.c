/* History checkers: the counter linearizability checker accepts exactly
 * the histories a single atomic counter could have produced. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

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
