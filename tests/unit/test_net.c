/* Networking: framing of length-prefixed protobuf messages. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "frame.h"
#include "peer_codec.h"
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

/* Encodes m, decodes it again, and returns the decoded form. */
static void peer_round_trip(const struct core_msg *m, struct peer_decoded *d) {
  struct frame_buf b;
  struct frame_reader r;
  const uint8_t *p;
  size_t n;
  char err[SYNOD_ERRMSG_MAX];
  frame_buf_init(&b);
  frame_reader_init(&r, 0);
  ck_assert_int_eq(peer_msg_encode(m, &b, 0), 0);
  ck_assert_int_eq(frame_reader_feed(&r, b.data, b.len), 0);
  ck_assert_int_eq(frame_reader_next(&r, &p, &n), 0);
  ck_assert_int_eq(peer_msg_decode(p, n, d, err), 0);
  ck_assert(d->is_core);
  ck_assert_int_eq(d->msg.type, m->type);
  ck_assert_uint_eq(d->msg.from, m->from);
  ck_assert_uint_eq(d->msg.to, m->to);
  ck_assert_uint_eq(d->msg.term, m->term);
  frame_reader_close(&r);
  frame_buf_close(&b);
}

START_TEST(append_with_entries_round_trips) {
  struct core_entry es[3] = {
      {.term = 4,
       .index = 10,
       .type = CORE_ENTRY_NORMAL,
       .data = (const uint8_t *)"abc",
       .len = 3},
      {.term = 4, .index = 11, .type = CORE_ENTRY_NOOP},
      {.term = 5,
       .index = 12,
       .type = CORE_ENTRY_CONFIG,
       .data = (const uint8_t *)"\x01\x02",
       .len = 2},
  };
  struct core_msg m = {.type = CORE_MSG_APPEND, .from = 1, .to = 2, .term = 5};
  m.append.prev_index = 9;
  m.append.prev_term = 3;
  m.append.commit = 8;
  m.append.entries = es;
  m.append.entries_n = 3;
  struct peer_decoded d;
  peer_round_trip(&m, &d);
  ck_assert_uint_eq(d.msg.append.prev_index, 9);
  ck_assert_uint_eq(d.msg.append.prev_term, 3);
  ck_assert_uint_eq(d.msg.append.commit, 8);
  ck_assert_uint_eq(d.msg.append.entries_n, 3);
  for (int i = 0; i < 3; i++) {
    const struct core_entry *e = &d.msg.append.entries[i];
    ck_assert_uint_eq(e->term, es[i].term);
    ck_assert_uint_eq(e->index, es[i].index);
    ck_assert_uint_eq(e->type, es[i].type);
    ck_assert_uint_eq(e->len, es[i].len);
    ck_assert(e->len == 0 || memcmp(e->data, es[i].data, e->len) == 0);
  }
  peer_decoded_free(&d);
}
END_TEST

START_TEST(every_core_message_type_round_trips) {
  struct peer_decoded d;
  struct core_msg m = {.from = 3, .to = 1, .term = 9};

  m.type = CORE_MSG_APPEND_REPLY;
  m.append_reply.reject = true;
  m.append_reply.index = 40;
  m.append_reply.hint_index = 31;
  m.append_reply.hint_term = 6;
  peer_round_trip(&m, &d);
  ck_assert(d.msg.append_reply.reject);
  ck_assert_uint_eq(d.msg.append_reply.index, 40);
  ck_assert_uint_eq(d.msg.append_reply.hint_index, 31);
  ck_assert_uint_eq(d.msg.append_reply.hint_term, 6);
  peer_decoded_free(&d);

  enum core_msg_type votes[] = {CORE_MSG_VOTE, CORE_MSG_PRE_VOTE};
  for (int i = 0; i < 2; i++) {
    memset(&m.vote, 0, sizeof m.vote);
    m.type = votes[i];
    m.vote.last_index = 77;
    m.vote.last_term = 8;
    m.vote.transfer = i == 0;
    peer_round_trip(&m, &d);
    ck_assert_uint_eq(d.msg.vote.last_index, 77);
    ck_assert_uint_eq(d.msg.vote.last_term, 8);
    ck_assert(d.msg.vote.transfer == (i == 0));
    peer_decoded_free(&d);
  }
  enum core_msg_type replies[] = {CORE_MSG_VOTE_REPLY, CORE_MSG_PRE_VOTE_REPLY};
  for (int i = 0; i < 2; i++) {
    m.type = replies[i];
    m.vote_reply.granted = true;
    peer_round_trip(&m, &d);
    ck_assert(d.msg.vote_reply.granted);
    peer_decoded_free(&d);
  }

  m.type = CORE_MSG_HEARTBEAT;
  m.heartbeat.commit = 12;
  m.heartbeat.read_ctx = 99;
  peer_round_trip(&m, &d);
  ck_assert_uint_eq(d.msg.heartbeat.commit, 12);
  ck_assert_uint_eq(d.msg.heartbeat.read_ctx, 99);
  peer_decoded_free(&d);

  m.type = CORE_MSG_HEARTBEAT_REPLY;
  m.heartbeat_reply.read_ctx = 98;
  peer_round_trip(&m, &d);
  ck_assert_uint_eq(d.msg.heartbeat_reply.read_ctx, 98);
  peer_decoded_free(&d);

  m.type = CORE_MSG_SNAPSHOT_REPLY;
  m.snapshot_reply.index = 500;
  m.snapshot_reply.offset = 4096;
  m.snapshot_reply.reject = true;
  peer_round_trip(&m, &d);
  ck_assert_uint_eq(d.msg.snapshot_reply.index, 500);
  ck_assert_uint_eq(d.msg.snapshot_reply.offset, 4096);
  ck_assert(d.msg.snapshot_reply.reject);
  peer_decoded_free(&d);

  m.type = CORE_MSG_TIMEOUT_NOW;
  peer_round_trip(&m, &d);
  peer_decoded_free(&d);
}
END_TEST

START_TEST(snapshot_chunk_round_trips_with_config) {
  uint8_t image[300];
  for (size_t i = 0; i < sizeof image; i++) {
    image[i] = (uint8_t)(i * 7);
  }
  struct core_msg m = {
      .type = CORE_MSG_SNAPSHOT, .from = 1, .to = 4, .term = 3};
  m.snapshot.meta.index = 1000;
  m.snapshot.meta.term = 2;
  m.snapshot.meta.size_bytes = 90000;
  m.snapshot.meta.config.voters_n = 3;
  m.snapshot.meta.config.voters[0] = 1;
  m.snapshot.meta.config.voters[1] = 2;
  m.snapshot.meta.config.voters[2] = 3;
  m.snapshot.meta.config.learners_n = 1;
  m.snapshot.meta.config.learners[0] = 4;
  m.snapshot.offset = 65536;
  m.snapshot.data = image;
  m.snapshot.len = sizeof image;
  m.snapshot.last = true;
  struct peer_decoded d;
  peer_round_trip(&m, &d);
  ck_assert_uint_eq(d.msg.snapshot.meta.index, 1000);
  ck_assert_uint_eq(d.msg.snapshot.meta.term, 2);
  ck_assert_uint_eq(d.msg.snapshot.meta.size_bytes, 90000);
  ck_assert_uint_eq(d.msg.snapshot.meta.config.voters_n, 3);
  ck_assert_uint_eq(d.msg.snapshot.meta.config.voters[2], 3);
  ck_assert_uint_eq(d.msg.snapshot.meta.config.learners_n, 1);
  ck_assert_uint_eq(d.msg.snapshot.meta.config.learners[0], 4);
  ck_assert_uint_eq(d.msg.snapshot.offset, 65536);
  ck_assert_uint_eq(d.msg.snapshot.len, sizeof image);
  ck_assert_mem_eq(d.msg.snapshot.data, image, sizeof image);
  ck_assert(d.msg.snapshot.last);
  peer_decoded_free(&d);
}
END_TEST

START_TEST(peer_garbage_and_broken_limits_are_malformed) {
  char err[SYNOD_ERRMSG_MAX] = "";
  struct peer_decoded d;
  const uint8_t junk[] = {0x0a, 0xff, 0xff, 0x01};
  ck_assert_int_eq(peer_msg_decode(junk, sizeof junk, &d, err),
                   SYNOD_EMALFORMED);
  ck_assert_ptr_nonnull(strstr(err, "does not decode"));
  ck_assert_ptr_null(d.pb);

  /* An entry type the core does not know. */
  Synod__Peer__PeerMessage pb = SYNOD__PEER__PEER_MESSAGE__INIT;
  Synod__Peer__Append ap = SYNOD__PEER__APPEND__INIT;
  Synod__Peer__Entry e = SYNOD__PEER__ENTRY__INIT;
  Synod__Peer__Entry *ep = &e;
  e.type = 7;
  e.index = 5;
  ap.n_entries = 1;
  ap.entries = &ep;
  pb.body_case = SYNOD__PEER__PEER_MESSAGE__BODY_APPEND;
  pb.append = &ap;
  uint8_t buf[256];
  size_t n = synod__peer__peer_message__pack(&pb, buf);
  ck_assert_int_eq(peer_msg_decode(buf, n, &d, err), SYNOD_EMALFORMED);
  ck_assert_ptr_nonnull(strstr(err, "unknown type 7"));

  /* A configuration with more members than the core can hold. */
  Synod__Peer__SnapshotChunk sc = SYNOD__PEER__SNAPSHOT_CHUNK__INIT;
  Synod__Peer__SnapshotMeta meta = SYNOD__PEER__SNAPSHOT_META__INIT;
  Synod__Peer__Config cfg = SYNOD__PEER__CONFIG__INIT;
  uint64_t many[CORE_MEMBERS_MAX + 1] = {0};
  cfg.n_voters = CORE_MEMBERS_MAX + 1;
  cfg.voters = many;
  meta.config = &cfg;
  sc.meta = &meta;
  pb.body_case = SYNOD__PEER__PEER_MESSAGE__BODY_SNAPSHOT;
  pb.snapshot = &sc;
  n = synod__peer__peer_message__pack(&pb, buf);
  ck_assert_int_eq(peer_msg_decode(buf, n, &d, err), SYNOD_EMALFORMED);
  ck_assert_ptr_nonnull(strstr(err, "voters"));

  /* A snapshot chunk without meta. */
  sc.meta = NULL;
  n = synod__peer__peer_message__pack(&pb, buf);
  ck_assert_int_eq(peer_msg_decode(buf, n, &d, err), SYNOD_EMALFORMED);

  /* No body at all. */
  pb.body_case = SYNOD__PEER__PEER_MESSAGE__BODY__NOT_SET;
  n = synod__peer__peer_message__pack(&pb, buf);
  ck_assert_int_eq(peer_msg_decode(buf, n, &d, err), SYNOD_EMALFORMED);
}
END_TEST

START_TEST(link_level_messages_are_left_to_the_link) {
  Synod__Peer__PeerMessage pb = SYNOD__PEER__PEER_MESSAGE__INIT;
  Synod__Peer__PeerHello hello = SYNOD__PEER__PEER_HELLO__INIT;
  hello.name = "synod-1";
  hello.cluster_id = "c1";
  hello.protocol_version = 1;
  pb.body_case = SYNOD__PEER__PEER_MESSAGE__BODY_HELLO;
  pb.hello = &hello;
  uint8_t buf[128];
  size_t n = synod__peer__peer_message__pack(&pb, buf);
  struct peer_decoded d;
  char err[SYNOD_ERRMSG_MAX];
  ck_assert_int_eq(peer_msg_decode(buf, n, &d, err), 0);
  ck_assert(!d.is_core);
  ck_assert_str_eq(d.pb->hello->name, "synod-1");
  peer_decoded_free(&d);
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
  tc = tcase_create("peer_codec");
  tcase_add_test(tc, append_with_entries_round_trips);
  tcase_add_test(tc, every_core_message_type_round_trips);
  tcase_add_test(tc, snapshot_chunk_round_trips_with_config);
  tcase_add_test(tc, peer_garbage_and_broken_limits_are_malformed);
  tcase_add_test(tc, link_level_messages_are_left_to_the_link);
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
