/* libsynod's subscriptions against the mock (mock_channels.c): every
 * message once and in order across a dropped connection, a replica that
 * repeats itself or starts early, one that stops and one that goes
 * silent; a gap and compaction end a subscription, never a silent skip;
 * credit follows the application (async: callbacks; blocking:
 * synod_subscription_next); durable cursors; the requests and results
 * themselves; the async channel calls. */
#include <check.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "engine.h"
#include "mock_synodd.c"
#include "synod.h"

#include "mock_proxy.c"

#define OK(call)                                                               \
  ck_assert_msg((call) == 0, "%s: %s", #call, synod_client_errmsg())

#define SEEN_MAX 512

static struct synod_client *client_for(const char *endpoints) {
  struct synod_options o;
  struct synod_client *c;
  synod_options_init(&o);
  o.endpoints = endpoints;
  o.client_name = "test";
  o.request_timeout_ms = slow(5000);
  o.connect_timeout_ms = slow(1000);
  ck_assert_msg(synod_client_new(&o, &c) == 0, "%s", synod_client_errmsg());
  return c;
}

/* Publishes n messages "CHANNEL:OFFSET" from offset `first` on, in
 * batches of `batch`; returns the log index of the first batch. */
static uint64_t publish_n(struct synod_client *c, const char *channel,
                          uint64_t first, int n, int batch) {
  uint64_t index = 0;
  for (int k = 0; k < n; k += batch) {
    char bufs[16][64];
    const void *ptrs[16];
    size_t lens[16];
    int b = n - k < batch ? n - k : batch;
    struct synod_channel_published p;
    ck_assert_int_le(b, 16);
    for (int i = 0; i < b; i++) {
      lens[i] = (size_t)snprintf(bufs[i], sizeof bufs[i], "%s:%" PRIu64,
                                 channel, first + (uint64_t)(k + i));
      ptrs[i] = bufs[i];
    }
    OK(synod_channel_publish(c, channel, ptrs, lens, (size_t)b, NULL, 0, &p));
    ck_assert_uint_eq(p.first_offset, first + (uint64_t)k);
    index = index ? index : p.index;
  }
  return index;
}

/* ------------------------------------------------------- async harness */

/* What an async subscription delivered, and how it started and ended. */
struct seen {
  uint64_t offsets[SEEN_MAX], indexes[SEEN_MAX];
  char channels[SEEN_MAX][16];
  size_t n;
  int bad; /* data that is not "CHANNEL:OFFSET" */
  char bad_what[128];
  int started;
  struct synod_subscription_start start;
  int ended, end_status;
  char end_msg[SYNOD_ERRMSG_BYTES];
  uint64_t first_available;
  /* Unsubscribe from the message callback after this many (0: never). */
  size_t unsubscribe_after;
  struct synod_async *a;
  struct synod_async_subscription *sub;
};

static void seen_msg_cb(void *arg, const struct synod_channel_message *m) {
  struct seen *w = arg;
  char want[64];
  int n = snprintf(want, sizeof want, "%s:%" PRIu64, m->channel, m->offset);
  if (w->n < SEEN_MAX) {
    w->offsets[w->n] = m->offset;
    w->indexes[w->n] = m->index;
    snprintf(w->channels[w->n], sizeof w->channels[0], "%s", m->channel);
  }
  if (m->len != (size_t)n || memcmp(m->data, want, m->len) != 0) {
    w->bad++;
    snprintf(w->bad_what, sizeof w->bad_what, "'%.*s' where '%s' was due",
             (int)m->len, (const char *)m->data, want);
  }
  w->n++;
  if (w->unsubscribe_after != 0 && w->n == w->unsubscribe_after) {
    synod_async_unsubscribe(w->a, w->sub);
  }
}

static void seen_end_cb(void *arg, int status, const char *errmsg,
                        uint64_t first_available) {
  struct seen *w = arg;
  w->ended++;
  w->end_status = status;
  w->first_available = first_available;
  snprintf(w->end_msg, sizeof w->end_msg, "%s", errmsg);
}

static void seen_start_cb(void *arg,
                          const struct synod_subscription_start *start) {
  struct seen *w = arg;
  w->started++;
  w->start = *start;
}

/* Offsets first .. first+n-1 of one channel, each once, in order. */
static void seen_check_dense(const struct seen *w, uint64_t first, size_t n) {
  ck_assert_msg(w->bad == 0, "%d bad messages, e.g. %s", w->bad, w->bad_what);
  ck_assert_uint_eq(w->n, n);
  for (size_t i = 0; i < n; i++) {
    ck_assert_msg(w->offsets[i] == first + i,
                  "message %zu has offset %" PRIu64 ", want %" PRIu64
                  " (a gap or a duplicate)",
                  i, w->offsets[i], first + i);
  }
}

struct async_client {
  uv_loop_t loop;
  struct synod_async *a;
};

static void async_open(struct async_client *ac, const char *endpoints,
                       uint32_t stall_ms) {
  struct synod_options o;
  synod_options_init(&o);
  o.endpoints = endpoints;
  o.endpoints_in_order = true;
  o.client_name = "test async";
  o.request_timeout_ms = slow(5000);
  o.connect_timeout_ms = slow(300);
  o.stall_timeout_ms = stall_ms;
  ck_assert_int_eq(uv_loop_init(&ac->loop), 0);
  ck_assert_int_eq(synod_async_new(&ac->loop, &o, &ac->a), 0);
}

static void async_close(struct async_client *ac) {
  synod_async_close(ac->a, NULL, NULL);
  ck_assert_int_eq(uv_run(&ac->loop, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(uv_loop_close(&ac->loop), 0);
}

/* Runs the async client's loop until cond, at most timeout_ms. */
#define RUN_UNTIL(ac, cond, timeout_ms)                                        \
  do {                                                                         \
    uint64_t t0_ = now_ms();                                                   \
    while (!(cond) && now_ms() - t0_ < (uint64_t)(timeout_ms)) {               \
      uv_run(&(ac)->loop, UV_RUN_ONCE);                                        \
    }                                                                          \
    ck_assert_msg((cond), "timed out after %d ms waiting for %s",              \
                  (int)(timeout_ms), #cond);                                   \
  } while (0)

static struct synod_async_subscription *
async_sub(struct async_client *ac, const struct synod_subscribe_options *o,
          struct seen *w) {
  struct synod_async_subscription *sub;
  int rv = synod_async_subscribe(ac->a, o, seen_msg_cb, seen_end_cb,
                                 seen_start_cb, w, &sub);
  ck_assert_msg(rv == 0, "subscribe: %s", synod_async_last_errmsg(ac->a));
  w->a = ac->a;
  w->sub = sub;
  return sub;
}

/* ------------------------------------------------------------ pure parts */

START_TEST(subscribe_requests_are_checked_built_and_answered) {
  char err[SYNOD_ERRMSG_BYTES];
  char long_name[SYNOD_NAME_MAX + 2];
  struct op *op;
  memset(long_name, 'p', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = '\0';
  struct op_args bad[] = {
      {.name = ""},                                  /* no channel */
      {.name = long_name, .prefix = true},           /* prefix too long */
      {.name = "a.", .prefix = true, .name2 = "c"},  /* cursor on a prefix */
      {.name = "ch", .sub_from = SYNOD_FROM_OFFSET}, /* offset 0 */
      {.name = "ch", .sub_from = 7},
      {.name = "ch", .credits = SYNOD_SUBSCRIBE_WINDOW_MAX + 1},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err[0] = '\0';
    ck_assert_msg(op_build(OP_CHANNEL_SUBSCRIBE, &bad[i], &op, err) ==
                      SYNOD_EINVAL,
                  "case %zu accepted", i);
    ck_assert_msg(err[0] != '\0', "case %zu: no message", i);
  }
  struct op_args every = {.name = "", .prefix = true};
  ck_assert_int_eq(op_build(OP_CHANNEL_SUBSCRIBE, &every, &op, err), 0);
  op_free(op);
  struct op_args args = {.name = "ch",
                         .name2 = "reader",
                         .sub_from = SYNOD_FROM_OFFSET,
                         .from = 42,
                         .credits = 64};
  ck_assert_int_eq(op_build(OP_CHANNEL_SUBSCRIBE, &args, &op, err), 0);
  ck_assert_int_eq(op->req.body_case, SYNOD__REQUEST__BODY_CHANNEL_SUBSCRIBE);
  ck_assert_str_eq(op->body.channel_subscribe.channel, "ch");
  ck_assert_str_eq(op->body.channel_subscribe.cursor, "reader");
  ck_assert_int_eq(op->body.channel_subscribe.from,
                   SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_OFFSET);
  ck_assert_uint_eq(op->body.channel_subscribe.offset, 42);
  ck_assert_uint_eq(op->body.channel_subscribe.credits, 64);
  ck_assert(op_kind_conn_bound(op->kind));
  ck_assert(!op_kind_sequenced(op->kind) && !op_kind_needs_session(op->kind));
  op_free(op);
  /* Cursors: a commit is a write in the session, a get is a read. */
  struct op_args cur = {.name = "ch", .name2 = "reader", .from = 7};
  ck_assert_int_eq(op_build(OP_CHANNEL_CURSOR_COMMIT, &cur, &op, err), 0);
  ck_assert_uint_eq(op->body.channel_cursor_commit.offset, 7);
  ck_assert(op_kind_sequenced(op->kind) && op_kind_needs_session(op->kind));
  ck_assert(!op_kind_conn_bound(op->kind));
  op_free(op);
  cur.name2 = "";
  ck_assert_int_eq(op_build(OP_CHANNEL_CURSOR_GET, &cur, &op, err),
                   SYNOD_EINVAL);
  /* Results: a cursor, and a channel's subscribers and cursors. */
  Synod__Response r = SYNOD__RESPONSE__INIT;
  Synod__ChannelCursor cc = SYNOD__CHANNEL_CURSOR__INIT;
  Synod__ChannelInfo ci = SYNOD__CHANNEL_INFO__INIT;
  union synod_result out;
  cc.offset = 9;
  cc.index = 77;
  r.body_case = SYNOD__RESPONSE__BODY_CHANNEL_CURSOR;
  r.channel_cursor = &cc;
  ck_assert_int_eq(result_from_response(OP_CHANNEL_CURSOR_GET, &r, &out, err),
                   0);
  ck_assert_uint_eq(out.cursor.offset, 9);
  ck_assert_uint_eq(out.cursor.index, 77);
  ck_assert_int_eq(result_from_response(OP_CHANNEL_INFO, &r, &out, err),
                   SYNOD_EMALFORMED);
  ci.name = "ch";
  ci.subscribers = 3;
  ci.cursors = 2;
  r.body_case = SYNOD__RESPONSE__BODY_CHANNEL_INFO;
  r.channel_info = &ci;
  ck_assert_int_eq(result_from_response(OP_CHANNEL_INFO, &r, &out, err), 0);
  ck_assert_uint_eq(out.channel.subscribers, 3);
  ck_assert_uint_eq(out.channel.cursors, 2);
  result_free(OP_CHANNEL_INFO, &out);
}
END_TEST

START_TEST(key_watch_requests_are_built_and_events_converted) {
  char err[SYNOD_ERRMSG_BYTES];
  struct op *op;
  /* A resume inside a revision: from (41, 3). */
  struct op_args args = {.name = "dev/",
                         .prefix = true,
                         .from = 41,
                         .after_offset = 3,
                         .prev_kv = true,
                         .credits = 8};
  ck_assert_int_eq(op_build(OP_KEY_WATCH, &args, &op, err), 0);
  ck_assert_int_eq(op->req.body_case, SYNOD__REQUEST__BODY_KEY_WATCH);
  ck_assert_uint_eq(op->body.key_watch.key.len, 4);
  ck_assert(memcmp(op->body.key_watch.key.data, "dev/", 4) == 0);
  ck_assert(op->body.key_watch.prefix && op->body.key_watch.prev_kv);
  ck_assert_uint_eq(op->body.key_watch.from_revision, 41);
  ck_assert_uint_eq(op->body.key_watch.after_event, 3);
  ck_assert_uint_eq(op->body.key_watch.credits, 8);
  /* Bound to its connection like a subscribe, never sent again. */
  ck_assert(op_kind_conn_bound(op->kind));
  ck_assert(!op_kind_sequenced(op->kind) && !op_kind_needs_session(op->kind));
  op_free(op);
  Synod__KeyWatchEvent e = SYNOD__KEY_WATCH_EVENT__INIT;
  Synod__KeyValue kv = SYNOD__KEY_VALUE__INIT, prev = SYNOD__KEY_VALUE__INIT;
  struct synod_key_event out;
  kv.key.data = (uint8_t *)"dev/7";
  kv.key.len = 5;
  prev = kv;
  prev.value.data = (uint8_t *)"gw-a";
  prev.value.len = 4;
  prev.session_id = 12;
  e.type = SYNOD__KEY_WATCH_EVENT__TYPE__DELETE;
  e.kv = &kv;
  e.prev_kv = &prev;
  e.revision = 41;
  e.event = 4;
  e.index = 900;
  key_event_from_pb(&e, &out);
  ck_assert(out.deleted && out.has_prev);
  ck_assert_uint_eq(out.revision, 41);
  ck_assert_uint_eq(out.event, 4);
  ck_assert_uint_eq(out.index, 900);
  ck_assert_uint_eq(out.kv.key_len, 5);
  ck_assert_uint_eq(out.kv.value_len, 0);
  ck_assert_uint_eq(out.prev.value_len, 4);
  ck_assert_uint_eq(out.prev.session_id, 12);
  e.type = SYNOD__KEY_WATCH_EVENT__TYPE__PUT;
  e.prev_kv = NULL;
  key_event_from_pb(&e, &out);
  ck_assert(!out.deleted && !out.has_prev);
}
END_TEST

START_TEST(subscription_json_gives_text_as_a_string_and_bytes_in_base64) {
  struct synod_channel_message m = {.offset = 7,
                                    .index = 40,
                                    .time_ms = 1700000000123,
                                    .data = "h\xc3\xa9llo",
                                    .len = 6,
                                    .channel = "events"};
  json_t *j = ctl_channel_message_json(&m);
  char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
  ck_assert_str_eq(s, "{\"channel\":\"events\",\"offset\":7,\"index\":40,"
                      "\"time_ms\":1700000000123,\"data\":\"h\xc3\xa9llo\"}");
  free(s);
  json_decref(j);
  m.data = "\xff\x00\x01";
  m.len = 3;
  j = ctl_channel_message_json(&m);
  s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
  ck_assert_str_eq(s, "{\"channel\":\"events\",\"offset\":7,\"index\":40,"
                      "\"time_ms\":1700000000123,\"data_base64\":\"/wAB\"}");
  free(s);
  json_decref(j);
  m.data = "ab\0c"; /* valid UTF-8, with a NUL: still text */
  m.len = 4;
  j = ctl_channel_message_json(&m);
  s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
  ck_assert_ptr_nonnull(strstr(s, "\"data\":\"ab\\u0000c\""));
  free(s);
  json_decref(j);
  char b64[16];
  ctl_base64(b64, "ab", 2);
  ck_assert_str_eq(b64, "YWI=");
  ctl_base64(b64, "abcd", 4);
  ck_assert_str_eq(b64, "YWJjZA==");
  ctl_base64(b64, "", 0);
  ck_assert_str_eq(b64, "");
}
END_TEST

/* ------------------------------------------------------------------ async */

/* 30 retained messages, then 70 live ones, through a window of 10: each
 * once, in order; the library gives credit back 5 at a time (half the
 * window), all but at most a window of it; after unsubscribing, the
 * replica serves nothing more. */
START_TEST(a_subscription_delivers_each_message_once_and_grants_half_windows) {
  struct mock *m = mock_start();
  struct synod_client *pub = client_for(m->address);
  struct async_client ac;
  struct seen w = {0};
  struct synod_subscribe_options o = {
      .channel = "ch", .from = SYNOD_FROM_FIRST, .window = 10};
  async_open(&ac, m->address, 0);
  publish_n(pub, "ch", 1, 30, 10);
  struct synod_async_subscription *sub = async_sub(&ac, &o, &w);
  RUN_UNTIL(&ac, w.n == 30, slow(5000));
  ck_assert_int_eq(w.started, 1);
  ck_assert_uint_eq(w.start.offset, 1);
  ck_assert_uint_eq(w.start.first_offset, 1);
  ck_assert_uint_eq(w.start.next_offset, 31);
  publish_n(pub, "ch", 31, 70, 7);
  RUN_UNTIL(&ac, w.n == 100, slow(5000));
  seen_check_dense(&w, 1, 100);
  ck_assert_int_eq(m->subscribes, 1);
  ck_assert_int_eq(m->sub_last_from, SYNOD_FROM_FIRST);
  ck_assert_uint_eq(m->sub_last_credits, 10);
  /* The mock sent 100 on 10 + what it was granted. */
  ck_assert_uint_ge(m->credits_granted, 90);
  ck_assert_uint_eq(m->credit_min, 5);
  ck_assert_uint_eq(m->credit_max, 5);
  ck_assert_str_eq(w.channels[99], "ch");
  synod_async_unsubscribe(ac.a, sub);
  RUN_UNTIL(&ac, m->unsubscribes == 1, slow(2000));
  ck_assert_int_eq(m->subs_active, 0);
  ck_assert_int_eq(w.ended, 0);
  async_close(&ac);
  synod_client_free(pub);
  mock_stop(m);
}
END_TEST

/* The replica drops the connection after 37 messages; the one it
 * reconnects to starts 5 messages early, and every delivery repeats the
 * message before it. The application sees 1..100, each once, in order;
 * the library resumed at offset 38 with a fresh window, and what it
 * dropped it gave credit back for (else the stream would stall). */
START_TEST(a_dropped_connection_resumes_at_the_next_offset_without_gap_or_dup) {
  struct mock *m = mock_start();
  struct synod_client *pub = client_for(m->address);
  struct async_client ac;
  struct seen w = {0};
  struct synod_subscribe_options o = {
      .channel = "ch", .from = SYNOD_FROM_FIRST, .window = 8};
  async_open(&ac, m->address, 0);
  publish_n(pub, "ch", 1, 100, 10);
  m->sub_drop_after = 37;
  m->sub_rewind = 5;
  m->sub_duplicate = true;
  async_sub(&ac, &o, &w);
  RUN_UNTIL(&ac, w.n == 100, slow(10000));
  seen_check_dense(&w, 1, 100);
  ck_assert_int_eq(m->conns_dropped, 1);
  ck_assert_int_eq(m->subscribes, 2);
  ck_assert_int_eq(m->sub_last_from, SYNOD_FROM_OFFSET);
  ck_assert_uint_eq(m->sub_last_offset, 38);
  ck_assert_uint_eq(m->sub_last_credits, 8);
  ck_assert_int_eq(w.started, 1); /* resumptions are not starts */
  ck_assert_int_eq(w.ended, 0);
  async_close(&ac);
  ck_assert_int_eq(w.ended, 1);
  ck_assert_int_eq(w.end_status, SYNOD_ESHUTDOWN);
  synod_client_free(pub);
  mock_stop(m);
}
END_TEST

/* The replica the subscriber is on (through the proxy) stops and ends
 * its subscriptions with SYNOD_ESHUTDOWN: that ends nothing; the library
 * leaves it, subscribes on the other endpoint from offset 21, and goes
 * on there. */
START_TEST(a_replica_that_stops_moves_the_subscription_which_goes_on) {
  struct mock *m = mock_start();
  struct proxy *p = proxy_start(m->address);
  struct synod_client *pub = client_for(m->address);
  struct async_client ac;
  struct seen w = {0};
  struct synod_subscribe_options o = {.channel = "ch",
                                      .from = SYNOD_FROM_FIRST};
  char eps[160];
  snprintf(eps, sizeof eps, "%s,%s", p->address, m->address);
  async_open(&ac, eps, 0);
  publish_n(pub, "ch", 1, 20, 10);
  async_sub(&ac, &o, &w);
  RUN_UNTIL(&ac, w.n == 20, slow(5000));
  /* Usually through the proxy (the first endpoint), but a loaded machine
   * may let the second attempt win: both reach the one mock. */
  char first[sizeof ac.a->conn->address];
  snprintf(first, sizeof first, "%s", ac.a->conn->address);
  m->sub_end_code = SYNOD_ESHUTDOWN;
  mock_poke(m);
  RUN_UNTIL(&ac,
            m->subscribes == 2 && ac.a->conn != NULL &&
                strcmp(ac.a->conn->address, first) != 0,
            slow(5000));
  publish_n(pub, "ch", 21, 20, 10);
  RUN_UNTIL(&ac, w.n == 40, slow(5000));
  seen_check_dense(&w, 1, 40);
  ck_assert_int_eq(m->sub_last_from, SYNOD_FROM_OFFSET);
  ck_assert_uint_eq(m->sub_last_offset, 21);
  ck_assert_int_eq(w.ended, 0);
  async_close(&ac);
  synod_client_free(pub);
  proxy_stop(p);
  mock_stop(m);
}
END_TEST

/* Offset 11 never comes: 12 after 10 ends the subscription with
 * SYNOD_EINTERNAL, nothing after the gap is passed on, and the library
 * unsubscribes. A deleted channel (SYNOD_ENOTFOUND) ends its
 * subscription too. */
START_TEST(a_gap_or_a_deleted_channel_ends_the_subscription) {
  struct mock *m = mock_start();
  struct synod_client *pub = client_for(m->address);
  struct async_client ac;
  struct seen w = {0}, w2 = {0};
  struct synod_subscribe_options o = {.channel = "ch",
                                      .from = SYNOD_FROM_FIRST};
  async_open(&ac, m->address, 0);
  publish_n(pub, "ch", 1, 10, 10);
  async_sub(&ac, &o, &w);
  RUN_UNTIL(&ac, w.n == 10, slow(5000));
  m->sub_skip = true;
  publish_n(pub, "ch", 11, 5, 5);
  RUN_UNTIL(&ac, w.ended == 1, slow(5000));
  ck_assert_int_eq(w.end_status, SYNOD_EINTERNAL);
  ck_assert_msg(strstr(w.end_msg, "gap") != NULL &&
                    strstr(w.end_msg, "offset 12") != NULL &&
                    strstr(w.end_msg, "offset 11") != NULL,
                "message: %s", w.end_msg);
  ck_assert_uint_eq(w.n, 10);
  RUN_UNTIL(&ac, m->unsubscribes == 1, slow(2000));
  o.from = SYNOD_FROM_NEXT;
  async_sub(&ac, &o, &w2);
  RUN_UNTIL(&ac, w2.started == 1, slow(5000));
  ck_assert_uint_eq(w2.start.offset, 16);
  m->sub_end_code = SYNOD_ENOTFOUND;
  mock_poke(m);
  RUN_UNTIL(&ac, w2.ended == 1, slow(5000));
  ck_assert_int_eq(w2.end_status, SYNOD_ENOTFOUND);
  ck_assert_ptr_nonnull(strstr(w2.end_msg, "'ch'"));
  ck_assert_int_eq(m->subscribes, 2); /* not subscribed again */
  async_close(&ac);
  ck_assert_int_eq(w.ended + w2.ended, 2); /* no ESHUTDOWN after the end */
  synod_client_free(pub);
  mock_stop(m);
}
END_TEST

/* Several channels' batches of 3 and 2 messages interleaved, delivered
 * two at a time; the connection drops after the 4th message, inside a
 * batch, and the replica it comes back to starts 2 messages early. The
 * prefix subscriber gets every message of a.* once, in log order: it
 * resumed after (index, offset) of the last message it delivered, and
 * dropped what came again. */
START_TEST(a_prefix_subscription_resumes_inside_a_batch_without_loss) {
  struct mock *m = mock_start();
  struct synod_client *pub = client_for(m->address);
  struct async_client ac;
  struct seen w = {0};
  struct synod_subscribe_options o = {
      .channel = "a.", .prefix = true, .from = SYNOD_FROM_FIRST};
  uint64_t ay_index = 0;
  async_open(&ac, m->address, 0);
  for (int r = 0; r < 6; r++) {
    publish_n(pub, "a.x", 1 + 3 * (uint64_t)r, 3, 3);
    publish_n(pub, "b.z", 1 + 3 * (uint64_t)r, 3, 3);
    uint64_t i = publish_n(pub, "a.y", 1 + 2 * (uint64_t)r, 2, 2);
    ay_index = ay_index ? ay_index : i;
  }
  m->sub_batch_max = 2;
  m->sub_drop_after = 4;
  m->sub_rewind = 2;
  async_sub(&ac, &o, &w);
  RUN_UNTIL(&ac, w.n == 30, slow(5000));
  ck_assert_msg(w.bad == 0, "%s", w.bad_what);
  for (size_t i = 0; i < 30; i++) {
    size_t r = i / 5, k = i % 5;
    const char *ch = k < 3 ? "a.x" : "a.y";
    uint64_t off = k < 3 ? 3 * r + k + 1 : 2 * r + (k - 3) + 1;
    ck_assert_msg(strcmp(w.channels[i], ch) == 0 && w.offsets[i] == off,
                  "message %zu is %s:%" PRIu64 ", want %s:%" PRIu64, i,
                  w.channels[i], w.offsets[i], ch, off);
    ck_assert(i == 0 || w.indexes[i] >= w.indexes[i - 1]);
  }
  ck_assert_int_eq(m->conns_dropped, 1);
  ck_assert_int_eq(m->subscribes, 2);
  ck_assert_int_eq(m->sub_last_from, SYNOD_FROM_OFFSET);
  /* After the 4th message: a.y's first, in the entry at ay_index. */
  ck_assert_uint_eq(m->sub_last_after_index, ay_index);
  ck_assert_uint_eq(m->sub_last_after_offset, 1);
  async_close(&ac);
  synod_client_free(pub);
  mock_stop(m);
}
END_TEST

/* The proxy the subscriber is connected through goes silent while nothing
 * else is asked on the connection. The idle probe finds it out within 5
 * stall bounds plus one, and the subscription resumes on the other
 * endpoint with the messages published meanwhile. */
START_TEST(an_idle_subscriber_leaves_a_silent_replica_within_its_bound) {
  struct mock *m = mock_start();
  struct proxy *p = proxy_start(m->address);
  struct synod_client *pub = client_for(m->address);
  struct async_client ac;
  struct seen w = {0};
  struct synod_subscribe_options o = {.channel = "ch", .from = SYNOD_FROM_NEXT};
  const uint32_t stall = slow(100);
  char eps[160];
  snprintf(eps, sizeof eps, "%s,%s", p->address, m->address);
  async_open(&ac, eps, stall);
  async_sub(&ac, &o, &w);
  RUN_UNTIL(&ac, w.started == 1, slow(5000));
  publish_n(pub, "ch", 1, 5, 5);
  RUN_UNTIL(&ac, w.n == 5, slow(5000));
  ck_assert_str_eq(ac.a->conn->address, p->address);
  p->silent = true;
  WAIT_UNTIL(p->silent_now, 1000);
  uint64_t t0 = now_ms();
  publish_n(pub, "ch", 6, 5, 5);
  RUN_UNTIL(&ac, w.n == 10, slow(5000));
  uint64_t took = now_ms() - t0;
  /* The upper bound leaves room for a loaded machine (a load average of
   * 17 on 2 cores took 1.2-2.2 s in 2 of 6 runs); that it left at all,
   * and not before the bound, is what is checked. */
  ck_assert_msg(took >= IDLE_PROBE_STALLS * stall - 2 &&
                    took < (IDLE_PROBE_STALLS + 1) * stall + slow(3000),
                "resumed after %" PRIu64 " ms; the stall bound is %u ms", took,
                stall);
  seen_check_dense(&w, 1, 10);
  ck_assert_str_eq(ac.a->conn->address, m->address);
  ck_assert_uint_eq(m->sub_last_offset, 6);
  ck_assert_int_eq(w.ended, 0);
  async_close(&ac);
  synod_client_free(pub);
  proxy_stop(p);
  mock_stop(m);
}
END_TEST

/* A message callback unsubscribes after 5 of a delivery of 20: no sixth
 * call. Closing the client ends the other subscription with
 * SYNOD_ESHUTDOWN. */
START_TEST(unsubscribing_from_a_callback_stops_it_and_close_ends_the_rest) {
  struct mock *m = mock_start();
  struct synod_client *pub = client_for(m->address);
  struct async_client ac;
  struct seen w = {.unsubscribe_after = 5}, w2 = {0};
  struct synod_subscribe_options o = {.channel = "ch",
                                      .from = SYNOD_FROM_FIRST};
  async_open(&ac, m->address, 0);
  publish_n(pub, "ch", 1, 16, 16);
  async_sub(&ac, &o, &w);
  o.from = SYNOD_FROM_NEXT;
  async_sub(&ac, &o, &w2);
  RUN_UNTIL(&ac, m->unsubscribes == 1 && w2.started == 1, slow(5000));
  ck_assert_uint_eq(w.n, 5);
  ck_assert_int_eq(w.ended, 0);
  ck_assert_int_eq(w2.ended, 0);
  async_close(&ac);
  ck_assert_int_eq(w.ended, 0);
  ck_assert_int_eq(w2.ended, 1);
  ck_assert_int_eq(w2.end_status, SYNOD_ESHUTDOWN);
  synod_client_free(pub);
  mock_stop(m);
}
END_TEST

/* --------------------------------------------------------------- blocking */

/* Window 4, 20 retained; the channel's retention then drops up to offset
 * 15 while the application holds 1..4. It gets 1..4, then
 * SYNOD_ECOMPACTED naming offset 15 (again on every later call): never
 * 15 after 4. */
START_TEST(compaction_ends_a_blocking_subscription_after_what_it_queued) {
  struct mock *m = mock_start();
  struct synod_client *c = client_for(m->address);
  struct synod_subscribe_options o = {
      .channel = "ch", .from = SYNOD_FROM_FIRST, .window = 4};
  struct synod_subscription *sub;
  struct synod_subscription_start start;
  struct synod_channel_message msg;
  publish_n(c, "ch", 1, 20, 10);
  OK(synod_subscribe(c, &o, 0, &sub, &start));
  ck_assert_uint_eq(start.offset, 1);
  WAIT_UNTIL(m->delivered == 4, (int)slow(5000));
  snprintf(m->compact_channel, sizeof m->compact_channel, "ch");
  m->compact_to = 15;
  mock_poke(m);
  WAIT_UNTIL(m->pokes_done == 1, (int)slow(5000));
  for (uint64_t k = 1; k <= 4; k++) {
    OK(synod_subscription_next(sub, slow(5000), &msg));
    ck_assert_uint_eq(msg.offset, k);
  }
  ck_assert_int_eq(synod_subscription_next(sub, slow(5000), &msg),
                   SYNOD_ECOMPACTED);
  ck_assert_msg(strstr(synod_client_errmsg(), "offset 5") != NULL &&
                    strstr(synod_client_errmsg(),
                           "the first available is offset 15") != NULL,
                "message: %s", synod_client_errmsg());
  ck_assert_uint_eq(synod_subscription_first_available(sub), 15);
  ck_assert_int_eq(synod_subscription_next(sub, 0, &msg), SYNOD_ECOMPACTED);
  synod_subscription_close(sub);
  synod_client_free(c);
  mock_stop(m);
}
END_TEST

struct next_waiter {
  struct synod_subscription *sub;
  int rv;
};

static void *next_waiter_main(void *arg) {
  struct next_waiter *nw = arg;
  struct synod_channel_message msg;
  nw->rv = synod_subscription_next(nw->sub, SYNOD_WAIT_FOREVER, &msg);
  return NULL;
}

/* Window 8, 100 retained: the server sends 8 and nothing more until the
 * application has taken 4, then more as it takes them; the queue never
 * holds more than the window. */
START_TEST(a_blocking_subscriber_holds_its_window_and_grants_as_it_takes) {
  struct mock *m = mock_start();
  struct synod_client *c = client_for(m->address);
  struct synod_subscribe_options o = {
      .channel = "ch", .from = SYNOD_FROM_FIRST, .window = 8};
  struct synod_subscription *sub;
  struct synod_channel_message msg;
  struct synod_status st;
  publish_n(c, "ch", 1, 100, 10);
  OK(synod_subscribe(c, &o, 0, &sub, NULL));
  WAIT_UNTIL(m->delivered == 8, (int)slow(5000));
  for (uint64_t k = 1; k <= 3; k++) {
    OK(synod_subscription_next(sub, slow(2000), &msg));
    ck_assert_uint_eq(msg.offset, k);
  }
  /* A round trip on the same connection: a credit sent before it has
   * reached the mock by now. */
  OK(synod_status(c, 0, &st));
  synod_status_free(&st);
  ck_assert_int_eq(m->credit_grants, 0);
  ck_assert_int_eq(m->delivered, 8);
  OK(synod_subscription_next(sub, 0, &msg)); /* queued before the answer */
  ck_assert_uint_eq(msg.offset, 4);
  WAIT_UNTIL(m->credit_grants == 1 && m->delivered == 12, (int)slow(5000));
  ck_assert_uint_eq(m->credits_granted, 4);
  for (uint64_t k = 5; k <= 100; k++) {
    OK(synod_subscription_next(sub, slow(5000), &msg));
    ck_assert_uint_eq(msg.offset, k);
    ck_assert_str_eq(msg.channel, "ch");
    char want[32];
    snprintf(want, sizeof want, "ch:%" PRIu64, k);
    ck_assert_str_eq(msg.data, want); /* NUL-terminated */
    ck_assert_uint_eq(msg.len, strlen(want));
    ck_assert_int_le(m->delivered - (int)k, 8); /* what we hold */
  }
  /* Each grant is half the window or, when the application took more
   * before the report went out, up to the window; never more. */
  ck_assert_uint_eq(m->credit_min, 4);
  ck_assert_uint_le(m->credit_max, 8);
  ck_assert_int_eq(synod_subscription_next(sub, 0, &msg), SYNOD_ETIMEDOUT);
  ck_assert_msg(strstr(synod_client_errmsg(), "no message") != NULL, "%s",
                synod_client_errmsg());
  /* A thread waiting without a bound is woken by the next message. */
  struct next_waiter nw = {.sub = sub, .rv = -1};
  pthread_t t;
  pthread_create(&t, NULL, next_waiter_main, &nw);
  publish_n(c, "ch", 101, 1, 1);
  pthread_join(t, NULL);
  ck_assert_int_eq(nw.rv, 0);
  synod_client_free(c); /* frees sub, still open, too */
  mock_stop(m);
}
END_TEST

/* A refusal that says "not now" is asked again (elsewhere, with backoff)
 * until the start's bound; one that says "never" ends at once. */
START_TEST(a_start_refused_for_now_is_retried_and_for_good_is_not) {
  struct mock *m = mock_start();
  struct synod_client *c = client_for(m->address);
  struct synod_subscribe_options o = {.channel = "ch"};
  struct synod_subscription *sub;
  uint64_t t0 = now_ms();
  m->sub_refuse = SYNOD_EUNAVAILABLE;
  int rv = synod_subscribe(c, &o, slow(1500), &sub, NULL);
  ck_assert_msg(rv == SYNOD_EUNAVAILABLE || rv == SYNOD_ETIMEDOUT, "%s: %s",
                synod_errname(rv), synod_client_errmsg());
  ck_assert_uint_ge(now_ms() - t0, slow(1500) - 2);
  ck_assert_int_ge(m->subscribes, 3);
  int before = m->subscribes;
  m->sub_refuse = SYNOD_EINVAL;
  t0 = now_ms();
  ck_assert_int_eq(synod_subscribe(c, &o, slow(8000), &sub, NULL),
                   SYNOD_EINVAL);
  /* At once, but for the backoff still running from the refusals. */
  ck_assert_uint_lt(now_ms() - t0, slow(2500));
  ck_assert_int_eq(m->subscribes, before + 1);
  ck_assert_ptr_nonnull(strstr(synod_client_errmsg(), "mock: refused"));
  synod_client_free(c);
  mock_stop(m);
}
END_TEST

/* Cursors: get before any commit is SYNOD_ENOTFOUND; commit, get; past
 * the end is SYNOD_ERANGE. A subscription with the cursor starts after
 * it; with a missing cursor, SYNOD_ENOTFOUND, or `from` when given. */
START_TEST(cursors_commit_and_get_and_subscriptions_start_after_them) {
  struct mock *m = mock_start();
  struct synod_client *c = client_for(m->address);
  struct synod_channel_cursor cur;
  struct synod_subscription *s1, *s2;
  struct synod_subscription_start start;
  struct synod_channel_message msg;
  struct synod_channel_info ci;
  publish_n(c, "ch", 1, 10, 10);
  ck_assert_int_eq(synod_channel_cursor_get(c, "ch", "g", 0, 0, &cur),
                   SYNOD_ENOTFOUND);
  OK(synod_channel_cursor_commit(c, "ch", "g", 4, 0, &cur));
  ck_assert_uint_eq(cur.offset, 4);
  ck_assert_uint_gt(cur.index, 0);
  OK(synod_channel_cursor_get(c, "ch", "g", SYNOD_READ_STALE, 0, &cur));
  ck_assert_uint_eq(cur.offset, 4);
  ck_assert_int_eq(synod_channel_cursor_commit(c, "ch", "g", 11, 0, NULL),
                   SYNOD_ERANGE);
  ck_assert_int_eq(synod_channel_cursor_commit(c, "ch", "", 1, 0, NULL),
                   SYNOD_EINVAL);
  struct synod_subscribe_options o = {.channel = "ch", .cursor = "g"};
  OK(synod_subscribe(c, &o, 0, &s1, &start));
  ck_assert_uint_eq(start.offset, 5);
  OK(synod_subscription_next(s1, slow(5000), &msg));
  ck_assert_uint_eq(msg.offset, 5);
  o.cursor = "missing";
  ck_assert_int_eq(synod_subscribe(c, &o, 0, &s2, NULL), SYNOD_ENOTFOUND);
  o.from = SYNOD_FROM_FIRST;
  OK(synod_subscribe(c, &o, 0, &s2, NULL));
  OK(synod_subscription_next(s2, slow(5000), &msg));
  ck_assert_uint_eq(msg.offset, 1);
  OK(synod_channel_info(c, "ch", 0, 0, &ci));
  ck_assert_uint_eq(ci.cursors, 1);
  ck_assert_uint_eq(ci.subscribers, 2);
  synod_channel_info_free(&ci);
  struct synod_subscribe_options bad = {
      .channel = "c", .prefix = true, .cursor = "g"};
  ck_assert_int_eq(synod_subscribe(c, &bad, 0, &s2, NULL), SYNOD_EINVAL);
  ck_assert_ptr_nonnull(strstr(synod_client_errmsg(), "cursor"));
  synod_subscription_close(s1);
  WAIT_UNTIL(m->subs_active == 1, (int)slow(2000));
  synod_subscription_close(NULL);
  synod_client_free(c); /* closes s2 */
  mock_stop(m);
}
END_TEST

/* ------------------------------------------------ async channel calls */

#define ASYNC_PUBS 40
#define DEEP_MSG_BYTES 100

struct async_calls {
  int published, publish_errors;
  uint64_t first[ASYNC_PUBS + 1], last[ASYNC_PUBS + 1];
  int read, read_status;
  size_t read_count;
  uint64_t read_offsets[16];
  char read_data[16][32];
  uint64_t read_next;
  int info, info_status;
  uint64_t info_messages;
  char info_name[16];
};

struct pub_arg {
  struct async_calls *calls;
  int i;
};

static void calls_published_cb(void *arg, int status,
                               const struct synod_channel_published *p) {
  struct pub_arg *pa = arg;
  struct async_calls *w = pa->calls;
  w->published++;
  if (status != 0) {
    ck_assert_ptr_null(p);
    w->publish_errors++;
    return;
  }
  w->first[pa->i] = p->first_offset;
  w->last[pa->i] = p->last_offset;
}

static void calls_read_cb(void *arg, int status,
                          const struct synod_channel_messages *m) {
  struct async_calls *w = arg;
  w->read++;
  w->read_status = status;
  if (status != 0) {
    return;
  }
  w->read_count = m->count;
  w->read_next = m->next_offset;
  for (size_t i = 0; i < m->count && i < 16; i++) {
    w->read_offsets[i] = m->messages[i].offset;
    snprintf(w->read_data[i], sizeof w->read_data[i], "%.*s",
             (int)m->messages[i].len, (const char *)m->messages[i].data);
  }
}

static void calls_info_cb(void *arg, int status,
                          const struct synod_channel_info *info) {
  struct async_calls *w = arg;
  w->info++;
  w->info_status = status;
  if (status == 0) {
    w->info_messages = info->messages;
    snprintf(w->info_name, sizeof w->info_name, "%s", info->name);
  } else {
    ck_assert_ptr_null(info);
  }
}

/* The async channel calls. A publish of three messages and forty single
 * ones made at once (more than SYNOD_INFLIGHT_MAX: the rest wait their
 * turn in the library) each get one callback, at dense offsets; a read
 * and an info see them; a bad call is refused at once, without a
 * callback; a missing channel's info fails through the callback. */
START_TEST(async_channel_publish_read_and_info_answer_through_callbacks) {
  struct mock *m = mock_start();
  struct async_client ac;
  struct async_calls w = {0};
  struct pub_arg args[ASYNC_PUBS + 1];
  char bufs[ASYNC_PUBS + 1][16];
  const void *ptrs[3];
  size_t lens[3];
  async_open(&ac, m->address, 0);
  for (int i = 0; i < 3; i++) {
    lens[i] = (size_t)snprintf(bufs[i], sizeof bufs[i], "ch:%d", i + 1);
    ptrs[i] = bufs[i];
  }
  args[0] = (struct pub_arg){&w, 0};
  ck_assert_int_eq(synod_async_channel_publish(ac.a, "ch", ptrs, lens, 3, NULL,
                                               calls_published_cb, &args[0]),
                   0);
  for (int i = 1; i <= ASYNC_PUBS; i++) {
    size_t len = (size_t)snprintf(bufs[i], sizeof bufs[i], "ch:%d", i + 3);
    const void *ptr = bufs[i];
    args[i] = (struct pub_arg){&w, i};
    ck_assert_int_eq(synod_async_channel_publish(ac.a, "ch", &ptr, &len, 1,
                                                 NULL, calls_published_cb,
                                                 &args[i]),
                     0);
    bufs[i][0] = 'X'; /* copied: the library must not read it later */
  }
  ck_assert_int_eq(synod_async_channel_publish(ac.a, "ch", ptrs, lens, 0, NULL,
                                               calls_published_cb, &args[0]),
                   SYNOD_EINVAL);
  ck_assert_ptr_nonnull(strstr(synod_async_last_errmsg(ac.a), "1 to 1000"));
  ck_assert_int_eq(synod_async_channel_publish(ac.a, "", ptrs, lens, 1, NULL,
                                               calls_published_cb, &args[0]),
                   SYNOD_EINVAL);
  ck_assert_int_eq(synod_async_channel_publish(ac.a, "ch", NULL, NULL, 1, NULL,
                                               calls_published_cb, &args[0]),
                   SYNOD_EINVAL);
  RUN_UNTIL(&ac, w.published == ASYNC_PUBS + 1, slow(5000));
  ck_assert_int_eq(w.publish_errors, 0);
  ck_assert_uint_eq(w.first[0], 1);
  ck_assert_uint_eq(w.last[0], 3);
  for (int i = 1; i <= ASYNC_PUBS; i++) {
    ck_assert_uint_eq(w.first[i], (uint64_t)i + 3);
    ck_assert_uint_eq(w.last[i], (uint64_t)i + 3);
  }
  ck_assert_int_eq(
      synod_async_channel_read(ac.a, "ch", 2, 5, 0, calls_read_cb, &w), 0);
  ck_assert_int_eq(
      synod_async_channel_info(ac.a, "ch", SYNOD_READ_STALE, calls_info_cb, &w),
      0);
  RUN_UNTIL(&ac, w.read == 1 && w.info == 1, slow(5000));
  ck_assert_int_eq(w.read_status, 0);
  ck_assert_uint_eq(w.read_count, 5);
  ck_assert_uint_eq(w.read_next, ASYNC_PUBS + 4);
  for (size_t i = 0; i < 5; i++) {
    char want[16];
    snprintf(want, sizeof want, "ch:%zu", i + 2);
    ck_assert_uint_eq(w.read_offsets[i], i + 2);
    ck_assert_str_eq(w.read_data[i], want);
  }
  ck_assert_int_eq(w.info_status, 0);
  ck_assert_uint_eq(w.info_messages, ASYNC_PUBS + 3);
  ck_assert_str_eq(w.info_name, "ch");
  ck_assert_int_eq(synod_async_channel_info(ac.a, "nope", 0, calls_info_cb, &w),
                   0);
  RUN_UNTIL(&ac, w.info == 2, slow(5000));
  ck_assert_int_eq(w.info_status, SYNOD_ENOTFOUND);
  async_close(&ac);
  mock_stop(m);
}
END_TEST

#define DEEP_PUBS 3000

static void deep_published_cb(void *arg, int status,
                              const struct synod_channel_published *p) {
  int *done = arg;
  (void)p;
  ck_assert_int_eq(status, 0);
  (*done)++;
}

/* Publishes far beyond the session's window wait in the library: each
 * new one, and each answer that frees a slot, costs the engine a look at
 * the ops in flight, not at the whole queue (which made a fast publisher
 * quadratic: 3,000 queued publishes took 9 million looks, a paced
 * 40,000/s publisher starved its own keepalives). */
START_TEST(a_deep_queue_of_async_publishes_costs_each_flush_the_window) {
  struct mock *m = mock_start();
  struct async_client ac;
  uint8_t msg[DEEP_MSG_BYTES] = {0};
  const void *ptr = msg;
  size_t len = sizeof msg;
  int done = 0;
  async_open(&ac, m->address, 0);
  ck_assert_int_eq(synod_async_channel_publish(ac.a, "ch", &ptr, &len, 1, NULL,
                                               deep_published_cb, &done),
                   0);
  RUN_UNTIL(&ac, done == 1, slow(5000)); /* connected, a session open */
  uint64_t visits = ac.a->flush_visits;
  for (int i = 0; i < DEEP_PUBS; i++) {
    ck_assert_int_eq(synod_async_channel_publish(ac.a, "ch", &ptr, &len, 1,
                                                 NULL, deep_published_cb,
                                                 &done),
                     0);
  }
  ck_assert_uint_eq(ac.a->ops_n, DEEP_PUBS);
  ck_assert_uint_eq(ac.a->ops_unsequenced, DEEP_PUBS - SYNOD_INFLIGHT_MAX);
  RUN_UNTIL(&ac, done == DEEP_PUBS + 1, slow(20000));
  /* About (window + 1) looks per submit and per answer. */
  ck_assert_uint_lt(ac.a->flush_visits - visits,
                    (uint64_t)4 * (SYNOD_INFLIGHT_MAX + 2) * DEEP_PUBS);
  ck_assert_uint_eq(ac.a->ops_unsequenced, 0);
  async_close(&ac);
  mock_stop(m);
}
END_TEST

struct admin_calls {
  int created, create_status;
  uint64_t created_next;
  int listed, list_status;
  size_t list_count;
  bool list_more;
  char list_first[16];
  int deleted, delete_status;
  char deleted_name[16];
};

static void admin_create_cb(void *arg, int status,
                            const struct synod_channel_info *info) {
  struct admin_calls *w = arg;
  w->created++;
  w->create_status = status;
  w->created_next = status == 0 ? info->next_offset : 0;
}

static void admin_list_cb(void *arg, int status,
                          const struct synod_channel_list *l) {
  struct admin_calls *w = arg;
  w->listed++;
  w->list_status = status;
  if (status == 0) {
    w->list_count = l->count;
    w->list_more = l->more;
    snprintf(w->list_first, sizeof w->list_first, "%s",
             l->count ? l->channels[0].name : "");
  }
}

static void admin_delete_cb(void *arg, int status,
                            const struct synod_channel_info *info) {
  struct admin_calls *w = arg;
  w->deleted++;
  w->delete_status = status;
  if (status == 0) {
    snprintf(w->deleted_name, sizeof w->deleted_name, "%s", info->name);
  }
}

/* The async create, list and delete: each answers through its own
 * callback with its result (a channel's info, a page of the list, the
 * deleted channel as it was); deleting a missing channel fails there. */
START_TEST(async_channel_create_list_and_delete_answer_through_callbacks) {
  struct mock *m = mock_start();
  struct async_client ac;
  struct admin_calls w = {0};
  struct synod_channel_limits lim = {.max_messages = 5};
  async_open(&ac, m->address, 0);
  ck_assert_int_eq(
      synod_async_channel_create(ac.a, "a", &lim, admin_create_cb, &w), 0);
  ck_assert_int_eq(
      synod_async_channel_create(ac.a, "b", NULL, admin_create_cb, &w), 0);
  RUN_UNTIL(&ac, w.created == 2, slow(5000));
  ck_assert_int_eq(w.create_status, 0);
  ck_assert_uint_eq(w.created_next, 1);
  ck_assert_int_eq(synod_async_channel_list(ac.a, NULL, 1, SYNOD_READ_STALE,
                                            admin_list_cb, &w),
                   0);
  RUN_UNTIL(&ac, w.listed == 1, slow(5000));
  ck_assert_int_eq(w.list_status, 0);
  ck_assert_uint_eq(w.list_count, 1);
  ck_assert(w.list_more);
  ck_assert_str_eq(w.list_first, "a");
  ck_assert_int_eq(synod_async_channel_list(ac.a, "a", 0, 0, admin_list_cb, &w),
                   0);
  RUN_UNTIL(&ac, w.listed == 2, slow(5000));
  ck_assert_uint_eq(w.list_count, 1);
  ck_assert(!w.list_more);
  ck_assert_str_eq(w.list_first, "b");
  ck_assert_int_eq(synod_async_channel_delete(ac.a, "a", admin_delete_cb, &w),
                   0);
  RUN_UNTIL(&ac, w.deleted == 1, slow(5000));
  ck_assert_int_eq(w.delete_status, 0);
  ck_assert_str_eq(w.deleted_name, "a");
  ck_assert_int_eq(synod_async_channel_delete(ac.a, "a", admin_delete_cb, &w),
                   0);
  RUN_UNTIL(&ac, w.deleted == 2, slow(5000));
  ck_assert_int_eq(w.delete_status, SYNOD_ENOTFOUND);
  ck_assert_int_eq(
      synod_async_channel_create(ac.a, "", NULL, admin_create_cb, &w),
      SYNOD_EINVAL);
  async_close(&ac);
  ck_assert_int_eq(w.created, 2);
  mock_stop(m);
}
END_TEST

static Suite *subscription_suite(void) {
  Suite *s = suite_create("subscription");
  TCase *tc = tcase_create("pure");
  tcase_add_test(tc, subscribe_requests_are_checked_built_and_answered);
  tcase_add_test(tc, key_watch_requests_are_built_and_events_converted);
  tcase_add_test(tc,
                 subscription_json_gives_text_as_a_string_and_bytes_in_base64);
  suite_add_tcase(s, tc);
  tc = tcase_create("mock");
  tcase_set_timeout(tc, 60);
  tcase_add_test(
      tc, a_subscription_delivers_each_message_once_and_grants_half_windows);
  tcase_add_test(
      tc, a_dropped_connection_resumes_at_the_next_offset_without_gap_or_dup);
  tcase_add_test(tc, a_replica_that_stops_moves_the_subscription_which_goes_on);
  tcase_add_test(tc, a_gap_or_a_deleted_channel_ends_the_subscription);
  tcase_add_test(tc, a_prefix_subscription_resumes_inside_a_batch_without_loss);
  tcase_add_test(tc,
                 an_idle_subscriber_leaves_a_silent_replica_within_its_bound);
  tcase_add_test(
      tc, unsubscribing_from_a_callback_stops_it_and_close_ends_the_rest);
  tcase_add_test(tc,
                 compaction_ends_a_blocking_subscription_after_what_it_queued);
  tcase_add_test(tc,
                 a_blocking_subscriber_holds_its_window_and_grants_as_it_takes);
  tcase_add_test(tc, a_start_refused_for_now_is_retried_and_for_good_is_not);
  tcase_add_test(tc, cursors_commit_and_get_and_subscriptions_start_after_them);
  tcase_add_test(tc,
                 async_channel_publish_read_and_info_answer_through_callbacks);
  tcase_add_test(tc,
                 async_channel_create_list_and_delete_answer_through_callbacks);
  tcase_add_test(tc,
                 a_deep_queue_of_async_publishes_costs_each_flush_the_window);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(subscription_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
