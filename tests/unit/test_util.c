/* Utilities: error messages with context, the u64 hash map. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "u64map.h"

START_TEST(errmsg_wrap_prefixes_context) {
  char buf[SYNOD_ERRMSG_MAX];
  errmsg_set(buf, "mdb_put: %s", "MDB_MAP_FULL");
  errmsg_wrap(buf, "append %d..%d", 12, 40);
  errmsg_wrap(buf, "store");
  ck_assert_str_eq(buf, "store: append 12..40: mdb_put: MDB_MAP_FULL");
}
END_TEST

START_TEST(errmsg_truncates_without_overflow) {
  char buf[SYNOD_ERRMSG_MAX];
  char big[1000];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  errmsg_set(buf, "%s", big);
  ck_assert_uint_eq(strlen(buf), SYNOD_ERRMSG_MAX - 1);
  errmsg_wrap(buf, "ctx");
  ck_assert_uint_eq(strlen(buf), SYNOD_ERRMSG_MAX - 1);
  ck_assert(strncmp(buf, "ctx: x", 6) == 0);
}
END_TEST

START_TEST(log_levels_parse) {
  ck_assert_int_eq(log_level_parse("debug"), LOG_DEBUG);
  ck_assert_int_eq(log_level_parse("error"), LOG_ERROR);
  ck_assert_int_eq(log_level_parse("loud"), -1);
}
END_TEST

/* Random inserts and deletes agree with a plain array at every step,
 * across growth and backward-shift deletion. */
START_TEST(u64map_agrees_with_a_reference_under_churn) {
  enum { KEYS = 2000 };
  static uintptr_t ref[KEYS + 1]; /* ref[k] = value or 0 */
  struct u64map m;
  uint64_t x = 88172645463325252ull;
  memset(ref, 0, sizeof ref);
  u64map_init(&m);
  size_t live = 0;
  /* Under valgrind a tenth of the churn covers the same paths. */
  int steps = getenv("SYNOD_TEST_VALGRIND") ? 20000 : 200000;
  for (int step = 0; step < steps; step++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    uint64_t k = x % KEYS + 1;
    if ((x >> 32) % 3 != 0) {
      uintptr_t v = (uintptr_t)(x | 1);
      ck_assert_int_eq(u64map_put(&m, k, (void *)v), 0);
      live += ref[k] == 0;
      ref[k] = v;
    } else {
      void *got = u64map_del(&m, k);
      ck_assert_ptr_eq(got, (void *)ref[k]);
      live -= ref[k] != 0;
      ref[k] = 0;
    }
    if (step % 997 == 0) {
      for (uint64_t j = 1; j <= KEYS; j++) {
        ck_assert_ptr_eq(u64map_get(&m, j), (void *)ref[j]);
      }
    }
    ck_assert_uint_eq(m.len, live);
  }
  ck_assert_ptr_null(u64map_get(&m, KEYS + 7));
  u64map_close(&m);
}
END_TEST

static void count_cb(void *arg, uint64_t key, void *value) {
  (void)value;
  *(uint64_t *)arg += key;
}

START_TEST(u64map_each_visits_every_entry_once) {
  struct u64map m;
  u64map_init(&m);
  uint64_t want = 0, got = 0;
  for (uint64_t k = 1; k <= 100; k++) {
    ck_assert_int_eq(u64map_put(&m, k * 1000003, &m), 0);
    want += k * 1000003;
  }
  u64map_each(&m, count_cb, &got);
  ck_assert_uint_eq(got, want);
  u64map_close(&m);
}
END_TEST

static Suite *util_suite(void) {
  Suite *s = suite_create("util");
  TCase *tc = tcase_create("util");
  tcase_add_test(tc, errmsg_wrap_prefixes_context);
  tcase_add_test(tc, errmsg_truncates_without_overflow);
  tcase_add_test(tc, log_levels_parse);
  tcase_add_test(tc, u64map_agrees_with_a_reference_under_churn);
  tcase_add_test(tc, u64map_each_visits_every_entry_once);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(util_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
