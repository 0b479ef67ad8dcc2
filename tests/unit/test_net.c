/* Networking: framing of length-prefixed protobuf messages. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "synod.h"
#include "synod.pb-c.h"

/* Appends one frame with payload bytes 0, 1, 2, ... n-1 (mod 251). */
static void append_pattern(struct frame_buf *b, size_t n) {
  uint8_t *p = malloc(n ? n : 1);
  ck_assert_ptr_nonnull(p);
  for (size_t i = 0; i < n; i++) {
    p[i] = (uint8_t)(i % 251);
  }
  ck_assert_int_eq(frame_buf_append(b, p, n, 0), 0);
  free(p);
}

static void assert_pattern(const uint8_t *p, size_t n, size_t want) {
  ck_assert_uint_eq(n, want);
  for (size_t i = 0; i < n; i++) {
    ck_assert_uint_eq(p[i], i % 251);
  }
}

START_TEST(frame_delivered_whole_when_fed_one_byte_at_a_time) {
  struct frame_buf b;
  struct frame_reader r;
  const uint8_t *p;
  size_t n;
  frame_buf_init(&b);
  frame_reader_init(&r, 0);
  append_pattern(&b, 1000);

  for (size_t i = 0; i < b.len; i++) {
    ck_assert_int_eq(frame_reader_next(&r, &p, &n), SYNOD_EUNAVAILABLE);
    ck_assert_int_eq(frame_reader_feed(&r, b.data + i, 1), 0);
  }
  ck_assert_int_eq(frame_reader_next(&r, &p, &n), 0);
  assert_pattern(p, n, 1000);
  ck_assert_int_eq(frame_reader_next(&r, &p, &n), SYNOD_EUNAVAILABLE);
  frame_reader_close(&r);
  frame_buf_close(&b);
}
END_TEST

START_TEST(many_frames_in_one_buffer_come_out_in_order) {
  struct frame_buf b;
  struct frame_reader r;
  const uint8_t *p;
  size_t n;
  frame_buf_init(&b);
  frame_reader_init(&r, 0);
  for (size_t i = 0; i < 100; i++) {
    append_pattern(&b, i * 7);
  }
  ck_assert_int_eq(frame_reader_feed(&r, b.data, b.len), 0);
  for (size_t i = 0; i < 100; i++) {
    ck_assert_int_eq(frame_reader_next(&r, &p, &n), 0);
    assert_pattern(p, n, i * 7);
  }
  ck_assert_int_eq(frame_reader_next(&r, &p, &n), SYNOD_EUNAVAILABLE);
  frame_reader_close(&r);
  frame_buf_close(&b);
}
END_TEST

/* Split at every possible point between two frames' bytes. */
START_TEST(frames_split_across_reads_at_any_point_reassemble) {
  struct frame_buf b;
  frame_buf_init(&b);
  append_pattern(&b, 10);
  append_pattern(&b, 300);
  for (size_t cut = 0; cut <= b.len; cut++) {
    struct frame_reader r;
    const uint8_t *p;
    size_t n;
    frame_reader_init(&r, 0);
    ck_assert_int_eq(frame_reader_feed(&r, b.data, cut), 0);
    int got = 0;
    while (frame_reader_next(&r, &p, &n) == 0) {
      assert_pattern(p, n, got == 0 ? 10 : 300);
      got++;
    }
    ck_assert_int_eq(frame_reader_feed(&r, b.data + cut, b.len - cut), 0);
    while (frame_reader_next(&r, &p, &n) == 0) {
      assert_pattern(p, n, got == 0 ? 10 : 300);
      got++;
    }
    ck_assert_int_eq(got, 2);
    frame_reader_close(&r);
  }
  frame_buf_close(&b);
}
END_TEST

START_TEST(zero_length_frame_is_an_empty_message) {
  struct frame_buf b;
  struct frame_reader r;
  const uint8_t *p;
  size_t n = 99;
  frame_buf_init(&b);
  frame_reader_init(&r, 0);
  append_pattern(&b, 0);
  ck_assert_uint_eq(b.len, FRAME_HEADER_BYTES);
  ck_assert_int_eq(frame_reader_feed(&r, b.data, b.len), 0);
  ck_assert_int_eq(frame_reader_next(&r, &p, &n), 0);
  ck_assert_uint_eq(n, 0);

  /* An empty payload decodes as a Request with every field at default. */
  Synod__Request *req = synod__request__unpack(NULL, n, p);
  ck_assert_ptr_nonnull(req);
  ck_assert_int_eq(req->body_case, SYNOD__REQUEST__BODY__NOT_SET);
  synod__request__free_unpacked(req, NULL);
  frame_reader_close(&r);
  frame_buf_close(&b);
}
END_TEST

START_TEST(oversized_length_is_refused_before_buffering) {
  struct frame_reader r;
  const uint8_t *p;
  size_t n = 0;
  uint8_t hdr[FRAME_HEADER_BYTES];
  frame_reader_init(&r, 1024);
  frame_header_encode(hdr, 1025);
  ck_assert_int_eq(frame_reader_feed(&r, hdr, sizeof hdr), 0);
  ck_assert_int_eq(frame_reader_next(&r, &p, &n), SYNOD_ETOOBIG);
  ck_assert_uint_eq(n, 1025);
  /* The reader keeps refusing: the stream cannot be resynchronised. */
  ck_assert_int_eq(frame_reader_next(&r, &p, &n), SYNOD_ETOOBIG);
  frame_reader_close(&r);

  /* Exactly the maximum is fine. */
  struct frame_buf b;
  frame_buf_init(&b);
  frame_reader_init(&r, 1024);
  append_pattern(&b, 1024);
  ck_assert_int_eq(frame_reader_feed(&r, b.data, b.len), 0);
  ck_assert_int_eq(frame_reader_next(&r, &p, &n), 0);
  assert_pattern(p, n, 1024);
  frame_reader_close(&r);
  frame_buf_close(&b);
}
END_TEST

START_TEST(default_maximum_is_one_mebibyte) {
  struct frame_reader r;
  frame_reader_init(&r, 0);
  ck_assert_uint_eq(r.frame_max_bytes, 1u << 20);
  frame_reader_close(&r);

  struct frame_buf b;
  frame_buf_init(&b);
  uint8_t *big = calloc(1, (1u << 20) + 1);
  ck_assert_ptr_nonnull(big);
  ck_assert_int_eq(frame_buf_append(&b, big, (1u << 20) + 1, 0), SYNOD_ETOOBIG);
  ck_assert_uint_eq(b.len, 0);
  ck_assert_int_eq(frame_buf_append(&b, big, 1u << 20, 0), 0);
  free(big);
  frame_buf_close(&b);
}
END_TEST

/* Random bytes either give frames that protobuf refuses or decodes
 * harmlessly, or a length over the maximum; never a crash or an overread
 * (ASan and valgrind watch). */
START_TEST(garbage_bytes_never_crash_the_reader) {
  uint64_t x = 0x9E3779B97F4A7C15ull;
  int too_big = 0;
  for (int round = 0; round < 200; round++) {
    struct frame_reader r;
    uint8_t junk[512];
    const uint8_t *p;
    size_t n;
    frame_reader_init(&r, 4096);
    for (size_t i = 0; i < sizeof junk; i++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      junk[i] = (uint8_t)x;
    }
    /* Small lengths in some rounds so that payloads do get decoded. */
    if (round % 2 == 0) {
      junk[0] = junk[1] = 0;
      junk[2] = 0;
      junk[3] &= 0x7f;
    }
    ck_assert_int_eq(frame_reader_feed(&r, junk, sizeof junk), 0);
    int rv;
    while ((rv = frame_reader_next(&r, &p, &n)) == 0) {
      Synod__Request *req = synod__request__unpack(NULL, n, p);
      if (req != NULL) {
        synod__request__free_unpacked(req, NULL);
      }
    }
    ck_assert(rv == SYNOD_EUNAVAILABLE || rv == SYNOD_ETOOBIG);
    too_big += rv == SYNOD_ETOOBIG;
    frame_reader_close(&r);
  }
  ck_assert_int_gt(too_big, 0);
}
END_TEST

START_TEST(protobuf_message_round_trips_through_a_frame) {
  struct frame_buf b;
  struct frame_reader r;
  const uint8_t *p;
  size_t n;
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__LockAcquire acq = SYNOD__LOCK_ACQUIRE__INIT;
  acq.name = "cron/nightly";
  acq.owner_id = 3;
  acq.timeout_ms = 5000;
  req.id = 11;
  req.body_case = SYNOD__REQUEST__BODY_LOCK_ACQUIRE;
  req.lock_acquire = &acq;

  frame_buf_init(&b);
  frame_reader_init(&r, 0);
  ck_assert_int_eq(frame_buf_append_msg(&b, &req.base, 0), 0);
  ck_assert_int_eq(frame_buf_append_msg(&b, &req.base, 4), SYNOD_ETOOBIG);
  ck_assert_int_eq(frame_reader_feed(&r, b.data, b.len), 0);
  ck_assert_int_eq(frame_reader_next(&r, &p, &n), 0);
  Synod__Request *back = synod__request__unpack(NULL, n, p);
  ck_assert_ptr_nonnull(back);
  ck_assert_uint_eq(back->id, 11);
  ck_assert_str_eq(back->lock_acquire->name, "cron/nightly");
  ck_assert_uint_eq(back->lock_acquire->timeout_ms, 5000);
  synod__request__free_unpacked(back, NULL);
  ck_assert_int_eq(frame_reader_next(&r, &p, &n), SYNOD_EUNAVAILABLE);
  frame_reader_close(&r);
  frame_buf_close(&b);
}
END_TEST

/* The reserve/commit pair (libuv's alloc_cb/read_cb) keeps unread bytes
 * across compaction. */
START_TEST(reserve_and_commit_keep_partial_frames_across_compaction) {
  struct frame_buf b;
  struct frame_reader r;
  const uint8_t *p;
  size_t n;
  frame_buf_init(&b);
  frame_reader_init(&r, 0);
  for (int i = 0; i < 50; i++) {
    append_pattern(&b, 5000);
  }
  size_t off = 0;
  int got = 0;
  while (off < b.len) {
    uint8_t *dst;
    size_t room;
    ck_assert_int_eq(frame_reader_reserve(&r, 1, &dst, &room), 0);
    ck_assert_uint_ge(room, 1);
    size_t k = b.len - off < 3333 ? b.len - off : 3333;
    k = k < room ? k : room;
    memcpy(dst, b.data + off, k);
    frame_reader_commit(&r, k);
    off += k;
    while (frame_reader_next(&r, &p, &n) == 0) {
      assert_pattern(p, n, 5000);
      got++;
    }
  }
  ck_assert_int_eq(got, 50);
  /* Buffer stays bounded: one frame plus one read chunk, not the stream. */
  ck_assert_uint_lt(r.cap, b.len);
  frame_reader_close(&r);
  frame_buf_close(&b);
}
END_TEST

static Suite *net_suite(void) {
  Suite *s = suite_create("net");
  TCase *tc = tcase_create("frame");
  tcase_add_test(tc, frame_delivered_whole_when_fed_one_byte_at_a_time);
  tcase_add_test(tc, many_frames_in_one_buffer_come_out_in_order);
  tcase_add_test(tc, frames_split_across_reads_at_any_point_reassemble);
  tcase_add_test(tc, zero_length_frame_is_an_empty_message);
  tcase_add_test(tc, oversized_length_is_refused_before_buffering);
  tcase_add_test(tc, default_maximum_is_one_mebibyte);
  tcase_add_test(tc, garbage_bytes_never_crash_the_reader);
  tcase_add_test(tc, protobuf_message_round_trips_through_a_frame);
  tcase_add_test(tc, reserve_and_commit_keep_partial_frames_across_compaction);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(net_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
