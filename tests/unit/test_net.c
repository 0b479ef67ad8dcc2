/* Networking: framing of length-prefixed protobuf messages. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "frame.h"
#include "client.h"
#include "peer.h"
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

/* ----------------------------------------------------------- peer links */

#define NETS 3

struct net_fixture {
  uv_loop_t loop;
  struct peer_net *net[NETS + 1]; /* index = id; net[0] unused */
  int up[NETS + 1][NETS + 1];     /* up[i][j]: i sees a link to j */
  uint64_t got[NETS + 1];         /* heartbeats received by id */
  uint64_t last_ctx[NETS + 1];
  bool in_order;
};

static void fx_recv_cb(void *arg, const struct core_msg *m) {
  struct net_fixture *fx = arg;
  if (m->type != CORE_MSG_HEARTBEAT) {
    return;
  }
  fx->in_order &= m->heartbeat.read_ctx == fx->last_ctx[m->to] + 1;
  fx->last_ctx[m->to] = m->heartbeat.read_ctx;
  fx->got[m->to]++;
}

/* The state callback carries no "self"; recover it from the hello order:
 * each net gets its own trampoline. */
static struct net_fixture *fx_current;
#define FX_STATE_CB(n)                                                         \
  static void fx_state_cb_##n(void *arg, uint64_t id, bool up,                 \
                              const Synod__Peer__PeerHello *hello) {           \
    (void)arg;                                                                 \
    (void)hello;                                                               \
    fx_current->up[n][id] += up ? 1 : -1;                                      \
  }
FX_STATE_CB(1)
FX_STATE_CB(2)
FX_STATE_CB(3)
static const peer_net_state_cb fx_state_cbs[NETS + 1] = {
    NULL, fx_state_cb_1, fx_state_cb_2, fx_state_cb_3};

static void fx_wake_cb(uv_timer_t *t) {
  (void)t;
}

/* Runs the loop until pred holds or timeout_ms passes; says which. */
static bool fx_run_until(struct net_fixture *fx,
                         bool (*pred)(struct net_fixture *), int timeout_ms) {
  uv_timer_t wake;
  uv_timer_init(&fx->loop, &wake);
  uv_timer_start(&wake, fx_wake_cb, 5, 5);
  uint64_t deadline = uv_now(&fx->loop) + (uint64_t)timeout_ms;
  bool ok;
  while (!(ok = pred(fx)) && uv_now(&fx->loop) < deadline) {
    uv_run(&fx->loop, UV_RUN_ONCE);
  }
  uv_close((uv_handle_t *)&wake, NULL);
  uv_run(&fx->loop, UV_RUN_NOWAIT);
  return ok;
}

/* The id_of option of the nets fx_start() makes; NULL: none. */
static peer_net_id_fn fx_id_of;

static void fx_start(struct net_fixture *fx, const char *cluster[NETS + 1]) {
  char err[SYNOD_ERRMSG_MAX];
  memset(fx, 0, sizeof *fx);
  fx->in_order = true;
  fx_current = fx;
  ck_assert_int_eq(uv_loop_init(&fx->loop), 0);
  for (uint64_t id = 1; id <= NETS; id++) {
    char name[16];
    snprintf(name, sizeof name, "synod-%d", (int)id - 1);
    struct peer_net_options o = {.loop = &fx->loop,
                                 .id = id,
                                 .name = name,
                                 .cluster_id = cluster ? cluster[id] : "test",
                                 .listen_address = "127.0.0.1:0",
                                 .recv_cb = fx_recv_cb,
                                 .state_cb = fx_state_cbs[id],
                                 .id_of = fx_id_of,
                                 .arg = fx,
                                 .backoff_min_ms = 10,
                                 .backoff_max_ms = 50};
    ck_assert_msg(peer_net_start(&o, &fx->net[id], err) == 0, "%s", err);
  }
}

static void fx_dial_all(struct net_fixture *fx) {
  for (int i = 1; i <= NETS; i++) {
    for (int j = 1; j <= NETS; j++) {
      if (i != j) {
        ck_assert_int_eq(peer_net_dial(fx->net[i],
                                       peer_net_listen_address(fx->net[j]),
                                       NULL),
                         0);
      }
    }
  }
}

static void fx_stop(struct net_fixture *fx) {
  for (int i = 1; i <= NETS; i++) {
    peer_net_stop(fx->net[i]);
  }
  ck_assert_int_eq(uv_run(&fx->loop, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(uv_loop_close(&fx->loop), 0);
}

/* Every pair has exactly one link up and one connection. */
static bool fx_settled(struct net_fixture *fx) {
  for (int i = 1; i <= NETS; i++) {
    struct peer_net_stats st;
    peer_net_stats(fx->net[i], &st);
    if (st.conns != NETS - 1) {
      return false;
    }
    for (int j = 1; j <= NETS; j++) {
      if (i != j && fx->up[i][j] != 1) {
        return false;
      }
    }
  }
  return true;
}

static bool fx_got_all(struct net_fixture *fx) {
  return fx->got[2] == 1000 && fx->got[3] == 1000;
}

START_TEST(replicas_dialling_each_other_end_with_one_link_per_pair) {
  struct net_fixture fx;
  fx_start(&fx, NULL);
  fx_dial_all(&fx);
  ck_assert_msg(fx_run_until(&fx, fx_settled, 5000),
                "links did not settle to one per pair within 5 s");
  /* 1000 messages queued in one loop turn to each of two peers arrive in
   * order, in far fewer writes than frames (bundling). */
  for (uint64_t k = 1; k <= 1000; k++) {
    for (uint64_t to = 2; to <= 3; to++) {
      struct core_msg m = {
          .type = CORE_MSG_HEARTBEAT, .from = 1, .to = to, .term = 1};
      m.heartbeat.read_ctx = k;
      ck_assert_int_eq(peer_net_send(fx.net[1], &m), 0);
    }
  }
  ck_assert_msg(fx_run_until(&fx, fx_got_all, 5000),
                "got %llu and %llu of 1000 heartbeats",
                (unsigned long long)fx.got[2], (unsigned long long)fx.got[3]);
  ck_assert(fx.in_order);
  struct peer_net_stats st;
  peer_net_stats(fx.net[1], &st);
  ck_assert_uint_lt(st.writes, 100);
  ck_assert_uint_eq(st.dropped, 0);
  /* Each link counts the bytes of its frames on both sides alike. */
  struct peer_link_stats out, in;
  ck_assert(peer_net_link_stats(fx.net[1], 2, &out));
  ck_assert(peer_net_link_stats(fx.net[2], 1, &in));
  ck_assert(out.up && in.up);
  ck_assert_uint_ge(out.bytes_out, 1000 * (FRAME_HEADER_BYTES + 4));
  ck_assert_uint_eq(out.bytes_out, in.bytes_in);
  ck_assert_uint_ne(in.last_recv_ms, 0);
  ck_assert(!peer_net_link_stats(fx.net[1], 99, &out));
  fx_stop(&fx);
}
END_TEST

struct raw_client {
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_write_t write;
  uv_buf_t buf;
  bool closed_by_server;
};

static void raw_read_alloc(uv_handle_t *h, size_t n, uv_buf_t *b) {
  static char sink[4096];
  (void)h;
  (void)n;
  *b = uv_buf_init(sink, sizeof sink);
}

static void raw_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  struct raw_client *rc = s->data;
  (void)b;
  if (n < 0) {
    rc->closed_by_server = true;
    uv_close((uv_handle_t *)&rc->tcp, NULL);
  }
}

static void raw_connect_cb(uv_connect_t *req, int status) {
  struct raw_client *rc = req->data;
  ck_assert_int_eq(status, 0);
  uv_read_start((uv_stream_t *)&rc->tcp, raw_read_alloc, raw_read_cb);
  uv_write(&rc->write, (uv_stream_t *)&rc->tcp, &rc->buf, 1, NULL);
}

static void raw_send(struct net_fixture *fx, struct raw_client *rc,
                     const char *address, const void *bytes, size_t n) {
  char host[PEER_ADDRESS_MAX];
  uint16_t port;
  struct sockaddr_in sa;
  memset(rc, 0, sizeof *rc);
  ck_assert_int_eq(peer_address_parse(address, host, &port), 0);
  ck_assert_int_eq(uv_ip4_addr(host, port, &sa), 0);
  uv_tcp_init(&fx->loop, &rc->tcp);
  rc->tcp.data = rc;
  rc->connect.data = rc;
  rc->buf = uv_buf_init((char *)bytes, (unsigned)n);
  uv_tcp_connect(&rc->connect, &rc->tcp, (struct sockaddr *)&sa,
                 raw_connect_cb);
}

static struct raw_client *raw_watch;
static bool raw_closed(struct net_fixture *fx) {
  (void)fx;
  return raw_watch->closed_by_server;
}

static bool fx_got_one(struct net_fixture *fx) {
  return fx->got[2] >= 1;
}

/* Sends a framed PeerHello from a raw connection to address; the bytes
 * stay in fb (the caller closes it) until the connection is done. */
static void raw_send_hello(struct net_fixture *fx, struct raw_client *rc,
                           struct frame_buf *fb, const char *address,
                           const char *cluster, const char *name, uint64_t id,
                           const uint8_t *incarnation) {
  Synod__Peer__PeerMessage pb = SYNOD__PEER__PEER_MESSAGE__INIT;
  Synod__Peer__PeerHello hello = SYNOD__PEER__PEER_HELLO__INIT;
  hello.protocol_version = 1;
  hello.cluster_id = (char *)cluster;
  hello.name = (char *)name;
  hello.id = id;
  if (incarnation != NULL) {
    hello.incarnation.data = (uint8_t *)incarnation;
    hello.incarnation.len = PEER_INCARNATION_BYTES;
  }
  pb.body_case = SYNOD__PEER__PEER_MESSAGE__BODY_HELLO;
  pb.hello = &hello;
  frame_buf_init(fb);
  ck_assert_int_eq(frame_buf_append_msg(fb, &pb.base, 0), 0);
  raw_send(fx, rc, address, fb->data, fb->len);
}

START_TEST(garbage_oversized_and_wrong_cluster_are_refused_others_served) {
  struct net_fixture fx;
  fx_start(&fx, NULL);
  fx_dial_all(&fx);
  ck_assert(fx_run_until(&fx, fx_settled, 5000));
  const char *b_addr = peer_net_listen_address(fx.net[2]);

  /* Garbage. */
  static const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  struct raw_client rc;
  raw_watch = &rc;
  raw_send(&fx, &rc, b_addr, junk, sizeof junk - 1);
  ck_assert_msg(fx_run_until(&fx, raw_closed, 3000),
                "server kept a connection that sent garbage");

  /* A frame header declaring 1 GiB. */
  static const uint8_t huge[4] = {0x40, 0, 0, 0};
  raw_send(&fx, &rc, b_addr, huge, sizeof huge);
  ck_assert_msg(fx_run_until(&fx, raw_closed, 3000),
                "server kept a connection that declared a 1 GiB frame");

  /* A well-formed hello from another cluster. */
  struct frame_buf fb;
  raw_send_hello(&fx, &rc, &fb, b_addr, "someone-else", "intruder", 99, NULL);
  ck_assert_msg(fx_run_until(&fx, raw_closed, 3000),
                "server kept a connection from another cluster");
  frame_buf_close(&fb);

  struct peer_net_stats st;
  peer_net_stats(fx.net[2], &st);
  ck_assert_uint_eq(st.refused, 3);

  /* The real peers were not disturbed. */
  struct core_msg m = {
      .type = CORE_MSG_HEARTBEAT, .from = 1, .to = 2, .term = 1};
  m.heartbeat.read_ctx = 1;
  ck_assert_int_eq(peer_net_send(fx.net[1], &m), 0);
  ck_assert(fx_run_until(&fx, fx_got_one, 3000));
  ck_assert_int_eq(fx.up[2][1], 1);
  fx_stop(&fx);
}
END_TEST

static bool fx_link_1_3_up(struct net_fixture *fx);

/* The fixture's ids: "synod-N" is N + 1, whatever the incarnation. */
static uint64_t fx_id_of_name(const char *name, const uint8_t *incarnation) {
  (void)incarnation;
  return strncmp(name, "synod-", 6) == 0 ? (uint64_t)atoi(name + 6) + 1 : 0;
}

static bool fx_1_refused_one(struct net_fixture *fx) {
  struct peer_net_stats st;
  peer_net_stats(fx->net[1], &st);
  return st.refused >= 1;
}

/* A replica that answers at an address with another name than the one we
 * dialled it under, or that claims an id that is not its name's, is
 * refused; the replicas that are who they say are served. */
START_TEST(peer_with_another_name_or_id_is_refused) {
  struct net_fixture fx;
  fx_id_of = fx_id_of_name;
  fx_start(&fx, NULL);
  fx_id_of = NULL;
  /* 1 expects "synod-7" at 2's address; 2 is synod-1. */
  ck_assert_int_eq(
      peer_net_dial(fx.net[1], peer_net_listen_address(fx.net[2]), "synod-7"),
      0);
  ck_assert_msg(fx_run_until(&fx, fx_1_refused_one, 3000),
                "1 took synod-1 at the address it expects synod-7");
  ck_assert_int_eq(fx.up[1][2], 0);
  ck_assert_int_eq(
      peer_net_dial(fx.net[1], peer_net_listen_address(fx.net[3]), "synod-2"),
      0);
  ck_assert_msg(
      fx_run_until(&fx, fx_link_1_3_up, 3000),
      "the link to the replica that is who 1 expects did not come up");

  /* A hello with the right cluster and a name whose id is another. */
  const uint8_t incarnation[PEER_INCARNATION_BYTES] = {1};
  struct frame_buf fb;
  struct raw_client rc;
  raw_watch = &rc;
  raw_send_hello(&fx, &rc, &fb, peer_net_listen_address(fx.net[3]), "test",
                 "synod-0", 77, incarnation);
  ck_assert_msg(fx_run_until(&fx, raw_closed, 3000),
                "3 kept a connection from a replica claiming id 77 as synod-0");
  frame_buf_close(&fb);
  struct peer_net_stats st;
  peer_net_stats(fx.net[3], &st);
  ck_assert_uint_eq(st.refused, 1);
  ck_assert_int_eq(fx.up[3][1], 1); /* the real synod-0 is still linked */
  fx_stop(&fx);
}
END_TEST

static bool fx_link_1_3_down(struct net_fixture *fx) {
  return fx->up[1][3] == 0;
}

static bool fx_link_1_3_up(struct net_fixture *fx) {
  return fx->up[1][3] == 1 && fx->up[3][1] == 1;
}

START_TEST(link_comes_back_after_the_peer_restarts) {
  struct net_fixture fx;
  char err[SYNOD_ERRMSG_MAX];
  fx_start(&fx, NULL);
  fx_dial_all(&fx);
  ck_assert(fx_run_until(&fx, fx_settled, 5000));
  char addr3[PEER_ADDRESS_MAX];
  snprintf(addr3, sizeof addr3, "%s", peer_net_listen_address(fx.net[3]));

  peer_net_stop(fx.net[3]);
  fx.net[3] = NULL;
  ck_assert_msg(fx_run_until(&fx, fx_link_1_3_down, 3000),
                "1 did not notice that 3 went away");
  /* Messages to a replica that is down are dropped, not queued forever. */
  struct core_msg m = {.type = CORE_MSG_HEARTBEAT, .from = 1, .to = 3};
  ck_assert_int_eq(peer_net_send(fx.net[1], &m), 0);

  memset(fx.up[3], 0, sizeof fx.up[3]);
  struct peer_net_options o = {.loop = &fx.loop,
                               .id = 3,
                               .name = "synod-2",
                               .cluster_id = "test",
                               .listen_address = addr3,
                               .recv_cb = fx_recv_cb,
                               .state_cb = fx_state_cbs[3],
                               .arg = &fx};
  ck_assert_msg(peer_net_start(&o, &fx.net[3], err) == 0, "%s", err);
  ck_assert_msg(fx_run_until(&fx, fx_link_1_3_up, 5000),
                "1 did not redial 3 after its restart");
  fx_stop(&fx);
}
END_TEST

START_TEST(bad_addresses_are_refused) {
  char host[PEER_ADDRESS_MAX];
  uint16_t port;
  ck_assert_int_eq(peer_address_parse("127.0.0.1:7701", host, &port), 0);
  ck_assert_str_eq(host, "127.0.0.1");
  ck_assert_uint_eq(port, 7701);
  ck_assert_int_eq(peer_address_parse("[::1]:7701", host, &port), 0);
  ck_assert_str_eq(host, "::1");
  ck_assert_int_eq(peer_address_parse("synod-0.synod:7701", host, &port), 0);
  ck_assert_str_eq(host, "synod-0.synod");
  ck_assert_int_eq(peer_address_parse("nohost", host, &port), SYNOD_EINVAL);
  ck_assert_int_eq(peer_address_parse(":7701", host, &port), SYNOD_EINVAL);
  ck_assert_int_eq(peer_address_parse("h:99999", host, &port), SYNOD_EINVAL);
  ck_assert_int_eq(peer_address_parse("h:12x", host, &port), SYNOD_EINVAL);
  ck_assert_int_eq(peer_address_parse("h:", host, &port), SYNOD_EINVAL);

  uv_loop_t loop;
  struct peer_net *net;
  char err[SYNOD_ERRMSG_MAX];
  uv_loop_init(&loop);
  struct peer_net_options o = {.loop = &loop,
                               .id = 1,
                               .name = "a",
                               .cluster_id = "c",
                               .listen_address = "not-an-ip:1"};
  ck_assert_int_eq(peer_net_start(&o, &net, err), SYNOD_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "not-an-ip:1"));
  ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/* ------------------------------------------------------ client listener */

/* Appends raw bytes (not a frame) to a frame_buf. */
static int frame_buf_grow_for_test(struct frame_buf *b, const void *p,
                                   size_t n) {
  uint8_t *d = realloc(b->data, b->len + n);
  if (d == NULL) {
    return -1;
  }
  memcpy(d + b->len, p, n);
  b->data = d;
  b->len += n;
  b->cap = b->len;
  return 0;
}

/* A test client on the same loop: writes bytes, reads ServerMessages. */
struct test_client {
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_write_t write;
  struct frame_buf out;
  struct frame_reader in;
  uint64_t ids[512]; /* response ids in arrival order */
  int codes[512];    /* their error codes (0 = success) */
  char last_error[256];
  int responses;
  bool closed;
};

static void tc_alloc(uv_handle_t *h, size_t n, uv_buf_t *b) {
  struct test_client *t = h->data;
  uint8_t *p;
  size_t len;
  (void)n;
  ck_assert_int_eq(frame_reader_reserve(&t->in, 4096, &p, &len), 0);
  *b = uv_buf_init((char *)p, (unsigned)len);
}

static void tc_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  struct test_client *t = st->data;
  const uint8_t *p;
  size_t len;
  (void)b;
  if (n < 0) {
    t->closed = true;
    uv_close((uv_handle_t *)&t->tcp, NULL);
    return;
  }
  frame_reader_commit(&t->in, (size_t)n);
  while (frame_reader_next(&t->in, &p, &len) == 0) {
    Synod__ServerMessage *sm = synod__server_message__unpack(NULL, len, p);
    ck_assert_ptr_nonnull(sm);
    ck_assert_int_eq(sm->body_case, SYNOD__SERVER_MESSAGE__BODY_RESPONSE);
    ck_assert_int_lt(t->responses, 512);
    t->ids[t->responses] = sm->response->id;
    t->codes[t->responses] =
        sm->response->error ? sm->response->error->code : 0;
    if (sm->response->error) {
      snprintf(t->last_error, sizeof t->last_error, "%s",
               sm->response->error->message);
    }
    t->responses++;
    synod__server_message__free_unpacked(sm, NULL);
  }
}

static void tc_connected(uv_connect_t *req, int status) {
  struct test_client *t = req->data;
  ck_assert_int_eq(status, 0);
  uv_read_start((uv_stream_t *)&t->tcp, tc_alloc, tc_read);
  uv_buf_t b = uv_buf_init((char *)t->out.data, (unsigned)t->out.len);
  uv_write(&t->write, (uv_stream_t *)&t->tcp, &b, 1, NULL);
}

static void tc_connect(uv_loop_t *loop, struct test_client *t,
                       const char *address) {
  char host[PEER_ADDRESS_MAX];
  uint16_t port;
  struct sockaddr_in sa;
  ck_assert_int_eq(peer_address_parse(address, host, &port), 0);
  ck_assert_int_eq(uv_ip4_addr(host, port, &sa), 0);
  frame_reader_init(&t->in, 0);
  uv_tcp_init(loop, &t->tcp);
  t->tcp.data = t;
  t->connect.data = t;
  uv_tcp_connect(&t->connect, &t->tcp, (struct sockaddr *)&sa, tc_connected);
}

static void tc_free(struct test_client *t) {
  frame_buf_close(&t->out);
  frame_reader_close(&t->in);
}

static void tc_add_hello(struct test_client *t, uint32_t version) {
  Synod__Request r = SYNOD__REQUEST__INIT;
  Synod__Hello h = SYNOD__HELLO__INIT;
  h.protocol_version = version;
  r.id = 1;
  r.body_case = SYNOD__REQUEST__BODY_HELLO;
  r.hello = &h;
  ck_assert_int_eq(frame_buf_append_msg(&t->out, &r.base, 0), 0);
}

static void tc_add_get(struct test_client *t, uint64_t id) {
  Synod__Request r = SYNOD__REQUEST__INIT;
  Synod__CounterGet g = SYNOD__COUNTER_GET__INIT;
  g.name = "c";
  r.id = id;
  r.body_case = SYNOD__REQUEST__BODY_COUNTER_GET;
  r.counter_get = &g;
  ck_assert_int_eq(frame_buf_append_msg(&t->out, &r.base, 0), 0);
}

/* The fake node answers every request with an empty response; `mixed`
 * answers counter gets by id % 3: a response, an error, or packed bytes
 * in the node's layout (a ServerMessage wrapping the id, then a packed
 * Response with an error). The answer callback tallies what it is told. */
struct echo_node {
  struct client_net *net;
  uint64_t last_conn;
  int closes;
  bool mixed;
  int answered[SYNOD_EINTERNAL + 1]; /* by code */
  int answered_gets;
};

static void echo_answer_cb(void *arg, uint32_t body_case, int code,
                           uint64_t duration_us) {
  struct echo_node *e = arg;
  ck_assert_int_ge(code, 0);
  ck_assert_int_le(code, SYNOD_EINTERNAL);
  ck_assert_uint_lt(duration_us, 60000000);
  e->answered[code]++;
  e->answered_gets += body_case == SYNOD__REQUEST__BODY_COUNTER_GET;
}

/* Sends the answer to `id` as requests.c does: field 1 of a ServerMessage
 * holding the id's field, then a packed Response without an id. */
static void echo_send_packed_error(struct echo_node *e, uint64_t conn_id,
                                   uint64_t id, int code) {
  Synod__Response resp = SYNOD__RESPONSE__INIT;
  Synod__Error err = SYNOD__ERROR__INIT;
  err.code = (Synod__ErrorCode)code;
  err.message = "packed";
  resp.error = &err;
  uint8_t body[256], buf[300];
  size_t n = synod__response__pack(&resp, body), k = 0;
  ck_assert_uint_lt(id, 128);
  buf[k++] = 0x0a;
  buf[k++] = (uint8_t)(2 + n);
  buf[k++] = 0x08;
  buf[k++] = (uint8_t)id;
  memcpy(buf + k, body, n);
  ck_assert_int_eq(client_net_send_bytes(e->net, conn_id, buf, k + n), 0);
}

static void echo_request_cb(void *arg, uint64_t conn_id,
                            const Synod__Request *req) {
  struct echo_node *e = arg;
  Synod__ServerMessage sm = SYNOD__SERVER_MESSAGE__INIT;
  Synod__Response resp = SYNOD__RESPONSE__INIT;
  resp.id = req->id;
  sm.body_case = SYNOD__SERVER_MESSAGE__BODY_RESPONSE;
  sm.response = &resp;
  e->last_conn = conn_id;
  bool get = req->body_case == SYNOD__REQUEST__BODY_COUNTER_GET;
  if (e->mixed && get && req->id % 3 == 1) {
    ck_assert_int_eq(client_net_send_error(e->net, conn_id, req->id,
                                           SYNOD_ELOCKED, "error %d", 1),
                     0);
  } else if (e->mixed && get && req->id % 3 == 2) {
    echo_send_packed_error(e, conn_id, req->id, SYNOD_ENOTLEADER);
  } else {
    ck_assert_int_eq(client_net_send(e->net, conn_id, &sm), 0);
  }
}

static void echo_close_cb(void *arg, uint64_t conn_id) {
  struct echo_node *e = arg;
  (void)conn_id;
  e->closes++;
}

static struct test_client *tc_watch;
static int tc_want;
static bool tc_has_responses(struct net_fixture *fx) {
  (void)fx;
  return tc_watch->responses >= tc_want;
}
static bool tc_is_closed(struct net_fixture *fx) {
  (void)fx;
  return tc_watch->closed;
}

static void echo_start(struct net_fixture *fx, struct echo_node *e) {
  char err[SYNOD_ERRMSG_MAX];
  memset(fx, 0, sizeof *fx);
  memset(e, 0, sizeof *e);
  ck_assert_int_eq(uv_loop_init(&fx->loop), 0);
  struct client_net_options o = {.loop = &fx->loop,
                                 .listen_address = "127.0.0.1:0",
                                 .frame_max_bytes = 4096,
                                 .request_cb = echo_request_cb,
                                 .close_cb = echo_close_cb,
                                 .answer_cb = echo_answer_cb,
                                 .arg = e};
  ck_assert_msg(client_net_start(&o, &e->net, err) == 0, "%s", err);
}

static void echo_stop(struct net_fixture *fx, struct echo_node *e) {
  client_net_stop(e->net);
  ck_assert_int_eq(uv_run(&fx->loop, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(uv_loop_close(&fx->loop), 0);
}

START_TEST(pipelined_requests_are_answered_in_order) {
  struct net_fixture fx;
  struct echo_node e;
  struct test_client t = {0};
  echo_start(&fx, &e);
  tc_add_hello(&t, 1);
  for (uint64_t id = 2; id <= 301; id++) {
    tc_add_get(&t, id);
  }
  tc_connect(&fx.loop, &t, client_net_listen_address(e.net));
  tc_watch = &t;
  tc_want = 301;
  ck_assert_msg(fx_run_until(&fx, tc_has_responses, 5000),
                "got %d of 301 answers", t.responses);
  for (int i = 0; i < 301; i++) {
    ck_assert_uint_eq(t.ids[i], (uint64_t)i + 1);
    ck_assert_int_eq(t.codes[i], 0);
  }
  /* Once the client is gone, answers to it are dropped. */
  uv_close((uv_handle_t *)&t.tcp, NULL);
  struct client_net_stats st;
  for (int i = 0; i < 100; i++) {
    uv_run(&fx.loop, UV_RUN_NOWAIT);
    client_net_stats(e.net, &st);
    if (st.conns == 0) {
      break;
    }
  }
  Synod__ServerMessage sm = SYNOD__SERVER_MESSAGE__INIT;
  ck_assert_int_eq(client_net_send(e.net, e.last_conn, &sm), SYNOD_ENOTFOUND);
  ck_assert_int_eq(e.closes, 1);
  echo_stop(&fx, &e);
  tc_free(&t);
}
END_TEST

/* Every answer reaches the answer callback once, with its code, whichever
 * way it left: a Response, an error, or bytes packed by the node. */
START_TEST(answers_are_reported_once_with_their_code) {
  struct net_fixture fx;
  struct echo_node e;
  struct test_client t = {0};
  echo_start(&fx, &e);
  e.mixed = true;
  tc_add_hello(&t, 1);
  for (uint64_t id = 2; id <= 91; id++) {
    tc_add_get(&t, id);
  }
  tc_connect(&fx.loop, &t, client_net_listen_address(e.net));
  tc_watch = &t;
  tc_want = 91;
  ck_assert_msg(fx_run_until(&fx, tc_has_responses, 5000),
                "got %d of 91 answers", t.responses);
  for (int i = 1; i < 91; i++) {
    int want = t.ids[i] % 3 == 1   ? SYNOD_ELOCKED
               : t.ids[i] % 3 == 2 ? SYNOD_ENOTLEADER
                                   : 0;
    ck_assert_int_eq(t.codes[i], want);
  }
  ck_assert_int_eq(e.answered_gets, 90);
  ck_assert_int_eq(e.answered[0], 31); /* the hello and 30 gets */
  ck_assert_int_eq(e.answered[SYNOD_ELOCKED], 30);
  ck_assert_int_eq(e.answered[SYNOD_ENOTLEADER], 30);
  uv_close((uv_handle_t *)&t.tcp, NULL);
  echo_stop(&fx, &e);
  tc_free(&t);
}
END_TEST

/* Sends `bytes` (after an optional hello) and expects one error answer
 * with `code`, then the server closing the connection. */
static void expect_refusal(bool hello, const void *bytes, size_t n, int code,
                           const char *text) {
  struct net_fixture fx;
  struct echo_node e;
  struct test_client t = {0};
  echo_start(&fx, &e);
  if (hello) {
    tc_add_hello(&t, 1);
  }
  ck_assert_int_eq(frame_buf_grow_for_test(&t.out, bytes, n), 0);
  tc_connect(&fx.loop, &t, client_net_listen_address(e.net));
  tc_watch = &t;
  ck_assert_msg(fx_run_until(&fx, tc_is_closed, 5000),
                "server did not close the connection");
  ck_assert_int_eq(t.responses, hello ? 2 : 1);
  ck_assert_int_eq(t.codes[t.responses - 1], code);
  ck_assert_msg(strstr(t.last_error, text) != NULL, "error '%s' lacks '%s'",
                t.last_error, text);
  struct client_net_stats st;
  client_net_stats(e.net, &st);
  ck_assert_uint_eq(st.refused, 1);
  echo_stop(&fx, &e);
  tc_free(&t);
}

START_TEST(bad_client_input_is_answered_then_disconnected) {
  /* A request frame that does not decode. */
  static const uint8_t garbage[] = {0, 0, 0, 3, 0x0a, 0xff, 0xff};
  expect_refusal(true, garbage, sizeof garbage, SYNOD_EMALFORMED,
                 "does not decode");
  /* A frame over the maximum (4096 in this fixture). */
  static const uint8_t huge[] = {0, 0, 0x10, 0x01};
  expect_refusal(true, huge, sizeof huge, SYNOD_ETOOBIG, "over the maximum");
  /* A first request that is not a Hello. */
  struct frame_buf b;
  frame_buf_init(&b);
  Synod__Request r = SYNOD__REQUEST__INIT;
  Synod__Status st = SYNOD__STATUS__INIT;
  r.id = 5;
  r.body_case = SYNOD__REQUEST__BODY_STATUS;
  r.status = &st;
  ck_assert_int_eq(frame_buf_append_msg(&b, &r.base, 0), 0);
  expect_refusal(false, b.data, b.len, SYNOD_EPROTO, "not a Hello");
  /* A protocol version this server does not speak. */
  frame_buf_reset(&b);
  Synod__Hello h = SYNOD__HELLO__INIT;
  h.protocol_version = 99;
  r.body_case = SYNOD__REQUEST__BODY_HELLO;
  r.hello = &h;
  ck_assert_int_eq(frame_buf_append_msg(&b, &r.base, 0), 0);
  expect_refusal(false, b.data, b.len, SYNOD_EPROTO, "protocol version 99");
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
  tc = tcase_create("peer_codec");
  tcase_add_test(tc, append_with_entries_round_trips);
  tcase_add_test(tc, every_core_message_type_round_trips);
  tcase_add_test(tc, snapshot_chunk_round_trips_with_config);
  tcase_add_test(tc, peer_garbage_and_broken_limits_are_malformed);
  tcase_add_test(tc, link_level_messages_are_left_to_the_link);
  suite_add_tcase(s, tc);
  tc = tcase_create("peer_links");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, replicas_dialling_each_other_end_with_one_link_per_pair);
  tcase_add_test(tc,
                 garbage_oversized_and_wrong_cluster_are_refused_others_served);
  tcase_add_test(tc, peer_with_another_name_or_id_is_refused);
  tcase_add_test(tc, link_comes_back_after_the_peer_restarts);
  tcase_add_test(tc, bad_addresses_are_refused);
  suite_add_tcase(s, tc);
  tc = tcase_create("client_listener");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, pipelined_requests_are_answered_in_order);
  tcase_add_test(tc, answers_are_reported_once_with_their_code);
  tcase_add_test(tc, bad_client_input_is_answered_then_disconnected);
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
