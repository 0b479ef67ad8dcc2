/* Utilities: error messages with context, the u64 hash map, latency
 * histograms, UTF-8 repair. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "histogram.h"
#include "log.h"
#include "u64map.h"
#include "utf8.h"

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

/* ----------------------------------------------------------- histogram */

/* Renders h into a string (malloc'ed; the caller frees). */
static char *histogram_text(const struct histogram *h, const char *labels) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(histogram_write(h, f, "synod_x_seconds", labels), 0);
  fclose(f);
  return text;
}

START_TEST(histogram_bounds_run_10us_to_10s_on_1_2_5) {
  ck_assert_uint_eq(histogram_bound_us(0), 10);
  ck_assert_uint_eq(histogram_bound_us(1), 25);
  ck_assert_uint_eq(histogram_bound_us(2), 50);
  ck_assert_uint_eq(histogram_bound_us(HISTOGRAM_BOUNDS - 1), 10000000);
  for (unsigned i = 0; i + 3 < HISTOGRAM_BOUNDS; i++) {
    ck_assert_uint_eq(histogram_bound_us(i + 3), 10 * histogram_bound_us(i));
  }
  ck_assert_uint_eq(histogram_bound_us(HISTOGRAM_BOUNDS), UINT64_MAX);
}
END_TEST

/* A value equal to a bound falls in that bound's bucket (le is <=); one
 * microsecond more falls in the next. */
START_TEST(histogram_observe_counts_le_the_bound) {
  struct histogram h;
  for (unsigned i = 0; i < HISTOGRAM_BOUNDS; i++) {
    histogram_init(&h);
    histogram_observe(&h, histogram_bound_us(i));
    histogram_observe(&h, histogram_bound_us(i) + 1);
    ck_assert_uint_eq(h.buckets[i], 1);
    ck_assert_uint_eq(h.buckets[i + 1], 1);
    ck_assert_uint_eq(h.count, 2);
  }
  histogram_init(&h);
  histogram_observe(&h, 0);
  ck_assert_uint_eq(h.buckets[0], 1);
  histogram_observe(&h, UINT64_MAX);
  ck_assert_uint_eq(h.buckets[HISTOGRAM_BOUNDS], 1);
  ck_assert_uint_eq(h.sum_us, UINT64_MAX); /* saturated, not wrapped */
}
END_TEST

START_TEST(histogram_write_is_cumulative_in_seconds_ending_in_inf) {
  struct histogram h;
  histogram_init(&h);
  histogram_observe(&h, 7);        /* le 0.00001 */
  histogram_observe_n(&h, 300, 2); /* le 0.0005 */
  histogram_observe(&h, 20000000); /* +Inf */
  char *t = histogram_text(&h, "op=\"counter_add\"");
  ck_assert_ptr_nonnull(strstr(
      t, "synod_x_seconds_bucket{op=\"counter_add\",le=\"0.00001\"} 1\n"));
  ck_assert_ptr_nonnull(strstr(
      t, "synod_x_seconds_bucket{op=\"counter_add\",le=\"0.00025\"} 1\n"));
  ck_assert_ptr_nonnull(strstr(
      t, "synod_x_seconds_bucket{op=\"counter_add\",le=\"0.0005\"} 3\n"));
  ck_assert_ptr_nonnull(
      strstr(t, "synod_x_seconds_bucket{op=\"counter_add\",le=\"10\"} 3\n"));
  ck_assert_ptr_nonnull(
      strstr(t, "synod_x_seconds_bucket{op=\"counter_add\",le=\"+Inf\"} 4\n"));
  ck_assert_ptr_nonnull(
      strstr(t, "synod_x_seconds_sum{op=\"counter_add\"} 20.000607\n"));
  ck_assert_ptr_nonnull(
      strstr(t, "synod_x_seconds_count{op=\"counter_add\"} 4\n"));
  /* Buckets come in increasing order, +Inf last, then sum and count. */
  char *inf = strstr(t, "le=\"+Inf\"");
  ck_assert_ptr_null(strstr(inf, "_bucket"));
  ck_assert(strstr(t, "le=\"0.00001\"") < strstr(t, "le=\"10\""));
  ck_assert(strstr(t, "le=\"+Inf\"") < strstr(t, "_sum"));
  ck_assert(strstr(t, "_sum") < strstr(t, "_count"));
  free(t);
}
END_TEST

START_TEST(histogram_write_without_labels_has_no_empty_braces) {
  struct histogram h;
  histogram_init(&h);
  histogram_observe(&h, 1500000);
  char *t = histogram_text(&h, NULL);
  ck_assert_ptr_nonnull(strstr(t, "synod_x_seconds_bucket{le=\"1\"} 0\n"));
  ck_assert_ptr_nonnull(strstr(t, "synod_x_seconds_bucket{le=\"2.5\"} 1\n"));
  ck_assert_ptr_nonnull(strstr(t, "synod_x_seconds_sum 1.500000\n"));
  ck_assert_ptr_nonnull(strstr(t, "synod_x_seconds_count 1\n"));
  ck_assert_ptr_null(strstr(t, "{}"));
  ck_assert_ptr_null(strstr(t, "{,"));
  free(t);
}
END_TEST

START_TEST(histogram_merge_adds_buckets_count_and_sum) {
  struct histogram a, b;
  histogram_init(&a);
  histogram_init(&b);
  histogram_observe(&a, 40);
  histogram_observe_n(&b, 40, 3);
  histogram_observe(&b, 9000000);
  histogram_merge(&a, &b);
  ck_assert_uint_eq(a.count, 5);
  ck_assert_uint_eq(a.buckets[2], 4); /* le 50 us */
  ck_assert_uint_eq(a.sum_us, 4 * 40 + 9000000);
  uint64_t total = 0;
  for (unsigned i = 0; i <= HISTOGRAM_BOUNDS; i++) {
    total += a.buckets[i];
  }
  ck_assert_uint_eq(total, a.count);
}
END_TEST

/* The repaired text, and that it is now valid UTF-8. */
static const char *sanitized(const char *in, char *buf, size_t cap) {
  snprintf(buf, cap, "%s", in);
  size_t n = utf8_sanitize(buf, strlen(buf));
  ck_assert_uint_eq(n, strlen(buf));
  ck_assert(utf8_valid(buf, n, NULL));
  return buf;
}

START_TEST(utf8_sanitize_replaces_bad_bytes_and_drops_a_cut_tail) {
  char b[64];
  ck_assert_str_eq(sanitized("plain", b, sizeof b), "plain");
  ck_assert_str_eq(sanitized("caf\xc3\xa9 \xe2\x82\xac", b, sizeof b),
                   "caf\xc3\xa9 \xe2\x82\xac"); /* valid: unchanged */
  ck_assert_str_eq(sanitized("a\xff"
                             "b",
                             b, sizeof b),
                   "a?b");
  ck_assert_str_eq(sanitized("\x80\xbf", b, sizeof b), "??"); /* lone tails */
  ck_assert_str_eq(sanitized("\xc0\xaf", b, sizeof b), "??"); /* overlong */
  ck_assert_str_eq(sanitized("\xed\xa0\x80", b, sizeof b),
                   "???"); /* surrogate */
  ck_assert_str_eq(sanitized("\xf4\x90\x80\x80", b, sizeof b), "????");
  ck_assert_str_eq(sanitized("\xc3x", b, sizeof b), "?x"); /* lead, no tail */
  /* A character cut in two by a byte count, as "%.4s" of "ab\xc3\xa9\xc3\xa9"
   * does: the half at the end goes. */
  ck_assert_str_eq(sanitized("ab\xc3\xa9\xc3", b, sizeof b), "ab\xc3\xa9");
  ck_assert_str_eq(sanitized("x\xe2\x82", b, sizeof b), "x");
  ck_assert_str_eq(sanitized("\xf0\x9f\x98", b, sizeof b), "");
  /* Cut in the middle, not at the end: each byte is replaced. */
  ck_assert_str_eq(sanitized("\xe2\x82 y", b, sizeof b), "?? y");
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
  tcase_add_test(tc, histogram_bounds_run_10us_to_10s_on_1_2_5);
  tcase_add_test(tc, histogram_observe_counts_le_the_bound);
  tcase_add_test(tc, histogram_write_is_cumulative_in_seconds_ending_in_inf);
  tcase_add_test(tc, histogram_write_without_labels_has_no_empty_braces);
  tcase_add_test(tc, histogram_merge_adds_buckets_count_and_sum);
  tcase_add_test(tc, utf8_sanitize_replaces_bad_bytes_and_drops_a_cut_tail);
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
