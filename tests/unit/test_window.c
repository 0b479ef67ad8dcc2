/* Retained stream windows (server/fsm/window.c): positions, order, eviction
 * from the front, lookups from anywhere, against a plain model under random
 * operations; and what a small retained item costs beyond its payload. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "window.h"

/* A reference: item i's bytes are a function of (pos, len). */
struct ref {
  uint64_t index, time_ms;
  size_t len;
};

static void fill(uint8_t *buf, uint64_t pos, size_t len) {
  for (size_t i = 0; i < len; i++) {
    buf[i] = (uint8_t)(pos * 131 + i * 7);
  }
}

static uint64_t rnd(uint64_t *x) {
  *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
  return *x;
}

static void assert_item(const struct window_item *it, uint64_t pos,
                        const struct ref *r) {
  static uint8_t want[70000];
  ck_assert_uint_eq(it->pos, pos);
  ck_assert_uint_eq(it->index, r->index);
  ck_assert_uint_eq(it->time_ms, r->time_ms);
  ck_assert_uint_eq(it->len, r->len);
  fill(want, pos, r->len);
  ck_assert(r->len == 0 || memcmp(it->data, want, r->len) == 0);
}

static void assert_sane(const struct window *s) {
  char msg[128];
  ck_assert_msg(window_check(s, msg) == 0, "window_check: %s", msg);
}

/* Random appends (sizes from 0 to 64 KiB, most small) and evictions;
 * after every step the window matches the model: bounds, bytes, a random
 * lookup, and an iteration from a random position. */
START_TEST(window_agrees_with_a_model_under_random_appends_and_evictions) {
  enum { STEPS = 20000 };
  static struct ref ref[STEPS + 1];
  /* Under valgrind (valgrind.window) a fifth: the same paths, 50x slower
   * (63 s of CI's plain pass before). */
  int steps = getenv("SYNOD_TEST_VALGRIND") != NULL ? STEPS / 5 : STEPS;
  static uint8_t buf[70000];
  struct window s;
  window_init(&s);
  uint64_t x = 0x9e3779b97f4a7c15ull, index = 0, time = 0, bytes = 0;
  uint64_t first = 1, next = 1;
  for (int step = 0; step < steps; step++) {
    uint64_t r = rnd(&x);
    if (r % 5 < 3 || first == next) {
      size_t len =
          r % 97 == 0 ? (size_t)(rnd(&x) % 65536) : (size_t)(rnd(&x) % 200);
      index += 1 + rnd(&x) % 3;
      time += rnd(&x) % 50;
      fill(buf, next, len);
      window_append(&s, index, time, buf, len);
      ref[next] = (struct ref){index, time, len};
      bytes += len;
      next++;
    } else {
      window_evict(&s);
      bytes -= ref[first].len;
      first++;
    }
    ck_assert_uint_eq(s.first, first);
    ck_assert_uint_eq(s.next, next);
    ck_assert_uint_eq(s.bytes, bytes);
    struct window_item it;
    ck_assert(!window_get(&s, first - 1, &it) || first == 1);
    ck_assert(!window_get(&s, next, &it));
    if (first < next) {
      uint64_t pos = first + rnd(&x) % (next - first);
      ck_assert(window_get(&s, pos, &it));
      assert_item(&it, pos, &ref[pos]);
    }
    if (step % 97 == 0) {
      assert_sane(&s);
      struct window_iter iter;
      uint64_t from = first + (next > first ? rnd(&x) % (next - first) : 0);
      window_iter_seek(&s, from, &iter);
      for (uint64_t pos = from; pos < next; pos++) {
        ck_assert(window_iter_next(&iter, &it));
        assert_item(&it, pos, &ref[pos]);
      }
      ck_assert(!window_iter_next(&iter, &it));
    }
  }
  window_close(&s);
  ck_assert_uint_eq(s.next, next);
  ck_assert_uint_eq(s.first, next);
}
END_TEST

START_TEST(seek_below_the_window_starts_at_its_first_item) {
  struct window s;
  struct window_iter it;
  struct window_item item;
  window_init_at(&s, 1000); /* restored: 999 items evicted before */
  for (int i = 0; i < 10; i++) {
    uint8_t b = (uint8_t)i;
    window_append(&s, 5000 + (uint64_t)i, 70000, &b, 1);
  }
  window_iter_seek(&s, 3, &it);
  ck_assert(window_iter_next(&it, &item));
  ck_assert_uint_eq(item.pos, 1000);
  ck_assert_uint_eq(item.index, 5000);
  ck_assert(window_front(&s, &item) && item.pos == 1000);
  ck_assert(window_get(&s, 1009, &item) && item.data[0] == 9);
  ck_assert(!window_get(&s, 999, &item));
  window_evict(&s);
  ck_assert(window_front(&s, &item) && item.pos == 1001 && item.index == 5001);
  assert_sane(&s);
  window_close(&s);
}
END_TEST

/* Seeking by log index (a prefix subscription's resume): the first item
 * above the index, across blocks, with several items at one index (a
 * batch publish), below the window and past its end; evicted_index
 * follows the evictions. */
START_TEST(seek_by_index_finds_the_first_item_above_it) {
  struct window s;
  struct window_iter it;
  struct window_item item;
  static uint8_t big[3000];
  window_init(&s);
  /* Items at indexes 10, 10, 10, 20, 30, 30, ... 3 KiB each: blocks of
   * one item. */
  uint64_t idx[12] = {10, 10, 10, 20, 30, 30, 40, 50, 50, 50, 60, 70};
  for (int i = 0; i < 12; i++) {
    window_append(&s, idx[i], 0, big, (size_t)(i % 2 ? 3 : sizeof big));
  }
  uint64_t want[][2] = {{0, 1},  {9, 1},  {10, 4},  {19, 4}, {20, 5},
                        {30, 7}, {45, 8}, {50, 11}, {60, 12}};
  for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
    window_iter_seek_index(&s, want[k][0], &it);
    ck_assert(window_iter_next(&it, &item));
    ck_assert_uint_eq(item.pos, want[k][1]);
    ck_assert_uint_eq(item.index, idx[want[k][1] - 1]);
  }
  window_iter_seek_index(&s, 70, &it);
  ck_assert(!window_iter_next(&it, &item));
  ck_assert_uint_eq(s.evicted_index, 0);
  for (int i = 0; i < 5; i++) {
    window_evict(&s);
  }
  ck_assert_uint_eq(s.evicted_index, 30);
  window_iter_seek_index(&s, 0, &it); /* below the window: its first */
  ck_assert(window_iter_next(&it, &item) && item.pos == 6 && item.index == 30);
  assert_sane(&s);
  window_close(&s);
}
END_TEST

/* The budget the channels issue sets: at most 64 bytes beyond its payload
 * per retained 100-byte message. */
START_TEST(a_small_item_costs_a_few_bytes_beyond_its_payload) {
  enum { N = 100000, LEN = 100 };
  struct window s;
  uint8_t msg[LEN];
  window_init(&s);
  memset(msg, 'm', sizeof msg);
  for (uint64_t i = 0; i < N; i++) {
    window_append(&s, 7 + 3 * i, 1000000 + i / 10, msg, LEN);
  }
  double overhead =
      (double)(window_memory_bytes(&s) + sizeof s - s.bytes) / (double)N;
  printf("window: %d items of %d bytes: %.1f bytes of overhead each\n", N, LEN,
         overhead);
  ck_assert_msg(overhead <= 64, "%.1f bytes of overhead per item", overhead);
  for (int i = 0; i < N / 2; i++) {
    window_evict(&s);
  }
  overhead = (double)(window_memory_bytes(&s) + sizeof s - s.bytes) / (N / 2);
  ck_assert_msg(overhead <= 64, "%.1f bytes after evicting half", overhead);
  assert_sane(&s);
  window_close(&s);
}
END_TEST

static Suite *window_suite(void) {
  Suite *s = suite_create("window");
  TCase *tc = tcase_create("window");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc,
                 window_agrees_with_a_model_under_random_appends_and_evictions);
  tcase_add_test(tc, seek_below_the_window_starts_at_its_first_item);
  tcase_add_test(tc, seek_by_index_finds_the_first_item_above_it);
  tcase_add_test(tc, a_small_item_costs_a_few_bytes_beyond_its_payload);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(window_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
