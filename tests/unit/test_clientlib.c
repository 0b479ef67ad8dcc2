/* libsynod: pure helpers (endpoints, backoff, session clock, results), and
 * the engine against a fake one-replica server (mock_synodd.c): retries
 * with the same sequence, leader following, jeopardy/lost, threads. */
#include <arpa/inet.h>
#include <check.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "engine.h"
#include "mock_synodd.c"
#include "synod.h"
#include "util.h"

#include "mock_proxy.c"

/* ------------------------------------------------------------ endpoints */

START_TEST(endpoints_parse_lists_with_spaces_and_ipv6) {
  struct endpoint e[8];
  size_t n;
  char err[SYNOD_ERRMSG_BYTES];
  ck_assert_int_eq(
      endpoints_parse("127.0.0.1:7700, synod-1.synod:7710 ,[::1]:7720", e, 8,
                      &n, err),
      0);
  ck_assert_uint_eq(n, 3);
  ck_assert_str_eq(e[0].host, "127.0.0.1");
  ck_assert_uint_eq(e[0].port, 7700);
  ck_assert_str_eq(e[1].host, "synod-1.synod");
  ck_assert_uint_eq(e[1].port, 7710);
  ck_assert_str_eq(e[2].host, "::1");
  ck_assert_uint_eq(e[2].port, 7720);
  char out[64];
  endpoint_format(&e[2], out, sizeof out);
  ck_assert_str_eq(out, "[::1]:7720");
  endpoint_format(&e[0], out, sizeof out);
  ck_assert_str_eq(out, "127.0.0.1:7700");
}
END_TEST

START_TEST(endpoints_parse_refuses_bad_items_and_names_them) {
  static const char *bad[] = {
      "",     "host",     "host:",    ":7700",     "h:0",    "h:65536", "h:77x",
      "a:1,", "a:1,,b:2", "::1:7700", "[::1]7700", "[::1]:", "h:123456"};
  struct endpoint e[8];
  size_t n;
  char err[SYNOD_ERRMSG_BYTES];
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err[0] = '\0';
    ck_assert_msg(endpoints_parse(bad[i], e, 8, &n, err) == SYNOD_EINVAL,
                  "'%s' accepted", bad[i]);
    ck_assert_msg(err[0] != '\0', "no message for '%s'", bad[i]);
  }
  ck_assert_int_eq(endpoints_parse("a:1,b:2,c:3", e, 2, &n, err), SYNOD_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "more than 2"));
  ck_assert_int_eq(endpoints_parse("x:1,bad", e, 8, &n, err), SYNOD_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "'bad'"));
}
END_TEST

/* -------------------------------------------------------------- backoff */

START_TEST(backoff_stays_in_its_bounds_and_grows) {
  uint64_t prng = 42;
  for (int i = 0; i < 10000; i++) {
    uint32_t d = backoff_no_leader_ms(prng_next(&prng));
    ck_assert_uint_ge(d, 50);
    ck_assert_uint_le(d, 200);
  }
  for (unsigned attempt = 1; attempt < 20; attempt++) {
    uint32_t cap = BACKOFF_CONNECT_MIN_MS << (attempt - 1);
    if (attempt > 7 || cap > BACKOFF_CONNECT_MAX_MS) {
      cap = BACKOFF_CONNECT_MAX_MS;
    }
    for (int i = 0; i < 1000; i++) {
      uint32_t d = backoff_connect_ms(attempt, prng_next(&prng));
      ck_assert_uint_ge(d, cap / 2);
      ck_assert_uint_le(d, cap);
    }
  }
  ck_assert_uint_le(backoff_connect_ms(1, 0), 100);
  ck_assert_uint_eq(backoff_connect_ms(30, 0), BACKOFF_CONNECT_MAX_MS / 2);
}
END_TEST

/* -------------------------------------------------------- session clock */

START_TEST(session_clock_reports_jeopardy_at_half_ttl_and_lost_before_ttl) {
  const uint64_t base = 1000;
  const uint32_t ttl = 10000;
  ck_assert_int_eq(session_state_at(base, ttl, base), SYNOD_SESSION_OPEN);
  ck_assert_int_eq(session_state_at(base, ttl, base + 4999),
                   SYNOD_SESSION_OPEN);
  ck_assert_int_eq(session_state_at(base, ttl, base + 5000),
                   SYNOD_SESSION_JEOPARDY);
  ck_assert_int_eq(session_state_at(base, ttl, base + 9499),
                   SYNOD_SESSION_JEOPARDY);
  ck_assert_int_eq(session_state_at(base, ttl, base + 9500),
                   SYNOD_SESSION_LOST);
  /* Lost strictly before the server's earliest expiry (base + ttl). */
  ck_assert_uint_lt(session_deadline_ms(base, ttl), base + ttl);
  ck_assert_uint_eq(session_next_check_ms(base, ttl, base), base + 5000);
  ck_assert_uint_eq(session_next_check_ms(base, ttl, base + 5000), base + 9500);
  ck_assert_uint_eq(session_next_check_ms(base, ttl, base + 9500), UINT64_MAX);
  ck_assert_uint_eq(session_keepalive_interval_ms(ttl), 3333);
  /* Even the shortest TTL keeps the order open < jeopardy < lost. */
  ck_assert_uint_lt(session_jeopardy_ms(0, 1000), session_deadline_ms(0, 1000));
  ck_assert_uint_lt(session_keepalive_interval_ms(1000),
                    session_jeopardy_ms(0, 1000));
}
END_TEST

/* -------------------------------------------------- requests and results */

START_TEST(op_build_checks_names_and_values) {
  char err[SYNOD_ERRMSG_BYTES];
  char name[SYNOD_NAME_MAX + 2];
  uint8_t value[SYNOD_ELECTION_VALUE_MAX + 1] = {0};
  struct op *op;
  memset(name, 'x', sizeof name - 1);
  name[sizeof name - 1] = '\0';
  struct op_args args = {.name = name};
  ck_assert_int_eq(op_build(OP_COUNTER_GET, &args, &op, err), SYNOD_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "257"));
  args.name = "";
  ck_assert_int_eq(op_build(OP_LOCK_ACQUIRE, &args, &op, err), SYNOD_EINVAL);
  name[SYNOD_NAME_MAX] = '\0';
  args.name = name;
  args.bytes = value;
  args.bytes_len = sizeof value;
  ck_assert_int_eq(op_build(OP_ELECTION_CAMPAIGN, &args, &op, err),
                   SYNOD_EINVAL);
  args.bytes_len = SYNOD_ELECTION_VALUE_MAX;
  ck_assert_int_eq(op_build(OP_ELECTION_CAMPAIGN, &args, &op, err), 0);
  ck_assert_int_eq(op->req.body_case, SYNOD__REQUEST__BODY_ELECTION_CAMPAIGN);
  ck_assert_uint_eq(op->body.election_campaign.value.len,
                    SYNOD_ELECTION_VALUE_MAX);
  op_free(op);
  struct op_args add = {.name = "c", .value = -3};
  ck_assert_int_eq(op_build(OP_COUNTER_GET_ADD, &add, &op, err), 0);
  ck_assert(op->body.counter_add.return_previous);
  ck_assert_int_eq(op->body.counter_add.delta, -3);
  ck_assert(op_kind_sequenced(op->kind));
  op_free(op);
  struct op_args list = {.flags = SYNOD_READ_STALE};
  ck_assert_int_eq(op_build(OP_COUNTER_LIST, &list, &op, err), 0);
  ck_assert(op->req.stale);
  ck_assert(!op_kind_sequenced(op->kind));
  ck_assert(!op_kind_needs_session(op->kind));
  op_free(op);
}
END_TEST

START_TEST(results_copy_status_and_election_info) {
  Synod__Response r = SYNOD__RESPONSE__INIT;
  Synod__StatusReply st = SYNOD__STATUS_REPLY__INIT;
  Synod__Member m0 = SYNOD__MEMBER__INIT, m1 = SYNOD__MEMBER__INIT;
  Synod__Member *ms[2] = {&m0, &m1};
  union synod_result out;
  char err[SYNOD_ERRMSG_BYTES];
  st.name = "synod-1";
  st.role = "follower";
  st.term = 4;
  st.leader_name = "synod-0";
  st.commit_index = 10;
  st.members = ms;
  st.n_members = 2;
  m0.name = "synod-0";
  m0.role = "leader";
  m0.voter = true;
  m1.name = "synod-1";
  m1.match_index = 9;
  r.body_case = SYNOD__RESPONSE__BODY_STATUS;
  r.status = &st;
  ck_assert_int_eq(result_from_response(OP_STATUS, &r, &out, err), 0);
  ck_assert_str_eq(out.status.name, "synod-1");
  ck_assert_str_eq(out.status.leader_name, "synod-0");
  ck_assert_uint_eq(out.status.members_count, 2);
  ck_assert_str_eq(out.status.members[0].role, "leader");
  ck_assert_uint_eq(out.status.members[1].match_index, 9);
  ck_assert_str_eq(out.status.version, "");
  result_free(OP_STATUS, &out);
  /* A body that does not answer the request is refused. */
  ck_assert_int_eq(result_from_response(OP_COUNTER_GET, &r, &out, err),
                   SYNOD_EMALFORMED);
  Synod__ElectionInfo info = SYNOD__ELECTION_INFO__INIT;
  info.name = "e";
  info.has_leader = true;
  info.value.data = (uint8_t *)"pod-3";
  info.value.len = 5;
  r.body_case = SYNOD__RESPONSE__BODY_ELECTION_LEADER;
  r.election_leader = &info;
  ck_assert_int_eq(result_from_response(OP_ELECTION_LEADER, &r, &out, err), 0);
  ck_assert_str_eq((char *)out.info.value, "pod-3"); /* NUL-terminated */
  ck_assert_uint_eq(out.info.value_len, 5);
  result_free(OP_ELECTION_LEADER, &out);
  ck_assert_ptr_null(out.info.name);
}
END_TEST

START_TEST(key_ops_are_checked_and_built_whole) {
  char err[SYNOD_ERRMSG_BYTES];
  char longkey[SYNOD_KEY_BYTES_MAX + 2];
  struct op *op;
  memset(longkey, 'k', sizeof longkey - 1);
  longkey[sizeof longkey - 1] = '\0';
  struct key_args k = {.key = longkey, .value = "v", .value_len = 1};
  struct op_args args = {.key = &k};
  ck_assert_int_eq(op_build(OP_KEY_PUT, &args, &op, err), SYNOD_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "513 bytes"));
  k.key = "";
  ck_assert_int_eq(op_build(OP_KEY_GET, &args, &op, err), SYNOD_EINVAL);
  k.flags = SYNOD_KEY_PREFIX; /* a prefix may be empty: every key */
  ck_assert_int_eq(op_build(OP_KEY_DELETE, &args, &op, err), 0);
  ck_assert(op->req.key_delete->prefix);
  op_free(op);
  k.flags = SYNOD_KEY_PREFIX | SYNOD_KEY_PREV;
  ck_assert_int_eq(op_build(OP_KEY_DELETE, &args, &op, err), SYNOD_EINVAL);
  k.flags = SYNOD_KEY_KEYS_ONLY; /* not a put's flag */
  k.key = "k";
  ck_assert_int_eq(op_build(OP_KEY_PUT, &args, &op, err), SYNOD_EINVAL);
  /* A compare that fails in the middle frees what was built (ASan). */
  struct synod_key_compare cs[3] = {
      {.target = SYNOD_KEY_VALUE, .value = "a", .value_len = 1},
      {.key = "other", .target = SYNOD_KEY_MOD_REVISION, .number = 9},
      {.key = longkey}};
  k.flags = SYNOD_KEY_SESSION_BOUND | SYNOD_KEY_PREV;
  k.compares = cs;
  k.compares_n = 3;
  ck_assert_int_eq(op_build(OP_KEY_PUT, &args, &op, err), SYNOD_EINVAL);
  k.compares_n = 2;
  ck_assert_int_eq(op_build(OP_KEY_PUT, &args, &op, err), 0);
  const Synod__KeyPut *put = op->req.key_put;
  ck_assert_int_eq(op->req.body_case, SYNOD__REQUEST__BODY_KEY_PUT);
  ck_assert(put->session_bound && put->prev_kv);
  ck_assert_uint_eq(put->n_compares, 2);
  ck_assert_uint_eq(put->compares[0]->key.len, 0); /* the put's own key */
  ck_assert_int_eq(put->compares[1]->target,
                   SYNOD__KEY_COMPARE__TARGET__TARGET_MOD_REVISION);
  ck_assert(op_kind_sequenced(op->kind) && op_kind_needs_session(op->kind));
  op_free(op);
  k.compares_n = SYNOD_KEY_TXN_OPS_MAX + 1;
  ck_assert_int_eq(op_build(OP_KEY_PUT, &args, &op, err), SYNOD_ELIMIT);
  /* A transaction: compares need a key; a bad op in the failure branch
   * refuses the whole. */
  struct synod_key_op ops[2] = {
      {.type = SYNOD_KEY_OP_PUT, .key = "a", .value = "1", .value_len = 1},
      {.type = SYNOD_KEY_OP_GET, .key = "b"}};
  struct synod_key_op bad = {.type = SYNOD_KEY_OP_DELETE, .key = ""};
  struct synod_key_txn txn = {.compares = cs + 1,
                              .compares_n = 1,
                              .success = ops,
                              .success_n = 2,
                              .failure = &bad,
                              .failure_n = 1};
  struct key_args t = {.txn = &txn};
  args.key = &t;
  ck_assert_int_eq(op_build(OP_KEY_TXN, &args, &op, err), SYNOD_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "key txn: delete"));
  txn.failure_n = 0;
  ck_assert_int_eq(op_build(OP_KEY_TXN, &args, &op, err), 0);
  ck_assert_uint_eq(op->req.key_txn->n_success, 2);
  ck_assert_int_eq(op->req.key_txn->success[1]->op_case, SYNOD__KEY_OP__OP_GET);
  op_free(op);
  txn.compares = cs; /* the first has no key */
  ck_assert_int_eq(op_build(OP_KEY_TXN, &args, &op, err), SYNOD_EINVAL);
  struct key_args l = {.flags = SYNOD_READ_STALE | SYNOD_KEY_KEYS_ONLY};
  args.key = &l;
  ck_assert_int_eq(op_build(OP_KEY_LIST, &args, &op, err), 0);
  ck_assert(op->req.stale && op->req.key_list->keys_only);
  ck_assert(!op_kind_sequenced(op->kind));
  op_free(op);
}
END_TEST

START_TEST(key_results_copy_keys_and_values_nul_terminated) {
  Synod__Response r = SYNOD__RESPONSE__INIT;
  Synod__KeyTxnReply txn = SYNOD__KEY_TXN_REPLY__INIT;
  Synod__KeyOpResult res = SYNOD__KEY_OP_RESULT__INIT;
  Synod__KeyGetReply get = SYNOD__KEY_GET_REPLY__INIT;
  Synod__KeyValue kv = SYNOD__KEY_VALUE__INIT;
  Synod__KeyOpResult *results[1] = {&res};
  union synod_result out;
  char err[SYNOD_ERRMSG_BYTES];
  kv.key.data = (uint8_t *)"devices/d1";
  kv.key.len = 10;
  kv.value.data = (uint8_t *)"gw-b";
  kv.value.len = 4;
  kv.mod_revision = 7;
  get.found = true;
  get.kv = &kv;
  res.result_case = SYNOD__KEY_OP_RESULT__RESULT_GET;
  res.get = &get;
  txn.succeeded = true;
  txn.revision = 7;
  txn.results = results;
  txn.n_results = 1;
  r.body_case = SYNOD__RESPONSE__BODY_KEY_TXN;
  r.key_txn = &txn;
  ck_assert_int_eq(result_from_response(OP_KEY_TXN, &r, &out, err), 0);
  ck_assert(out.key_txn.succeeded);
  ck_assert_uint_eq(out.key_txn.count, 1);
  ck_assert_int_eq(out.key_txn.results[0].type, SYNOD_KEY_OP_GET);
  ck_assert_str_eq(out.key_txn.results[0].u.get.kv.key, "devices/d1");
  ck_assert_str_eq((char *)out.key_txn.results[0].u.get.kv.value, "gw-b");
  ck_assert_uint_eq(out.key_txn.results[0].u.get.kv.mod_revision, 7);
  result_free(OP_KEY_TXN, &out);
  ck_assert_ptr_null(out.key_txn.results);
  /* A result of no known kind is malformed, and nothing leaks. */
  res.result_case = SYNOD__KEY_OP_RESULT__RESULT__NOT_SET;
  ck_assert_int_eq(result_from_response(OP_KEY_TXN, &r, &out, err),
                   SYNOD_EMALFORMED);
  ck_assert_int_eq(result_from_response(OP_KEY_GET, &r, &out, err),
                   SYNOD_EMALFORMED);
}
END_TEST

START_TEST(group_ops_are_checked_and_sequenced_like_channel_writes) {
  char err[SYNOD_ERRMSG_BYTES];
  char longname[SYNOD_GROUP_MEMBER_MAX + 2];
  struct op *op;
  memset(longname, 'm', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  struct group_args g = {.group = "g", .member = ""};
  struct op_args args = {.group = &g};
  ck_assert_int_eq(op_build(OP_GROUP_JOIN, &args, &op, err), SYNOD_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "no member name"));
  g.member = longname;
  ck_assert_int_eq(op_build(OP_GROUP_LEAVE, &args, &op, err), SYNOD_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "257 bytes"));
  g.member = "m";
  g.group = "";
  ck_assert_int_eq(op_build(OP_GROUP_JOIN, &args, &op, err), SYNOD_EINVAL);
  g.group = "g";
  g.data_len = 3; /* and no pointer */
  ck_assert_int_eq(op_build(OP_GROUP_SEND, &args, &op, err), SYNOD_EINVAL);
  g.data = "abc";
  g.to = "m2";
  g.sender = "m";
  ck_assert_int_eq(op_build(OP_GROUP_SEND, &args, &op, err), 0);
  ck_assert_int_eq(op->req.body_case, SYNOD__REQUEST__BODY_GROUP_SEND);
  ck_assert_str_eq(op->req.group_send->to, "m2");
  ck_assert_str_eq(op->req.group_send->from, "m");
  ck_assert_uint_eq(op->req.group_send->data.len, 3);
  ck_assert(op_kind_sequenced(op->kind) && op_kind_needs_session(op->kind));
  op_free(op);
  /* A checkpoint chunk carries its place in the upload. */
  struct group_args k = {.group = "g",
                         .member = "m",
                         .offset = 9,
                         .total_bytes = 10,
                         .chunk_offset = 4,
                         .data = "456789",
                         .data_len = 6};
  args.group = &k;
  ck_assert_int_eq(op_build(OP_GROUP_CHECKPOINT, &args, &op, err), 0);
  ck_assert_uint_eq(op->req.group_checkpoint->chunk_offset, 4);
  ck_assert_uint_eq(op->req.group_checkpoint->total_bytes, 10);
  ck_assert_uint_eq(op->req.group_checkpoint->chunk.len, 6);
  op_free(op);
  /* Reads: stale when asked, never sequenced; a subscribe is bound to its
   * connection. */
  struct group_args r = {.group = "g", .flags = SYNOD_READ_STALE, .from = 5};
  args.group = &r;
  ck_assert_int_eq(op_build(OP_GROUP_READ, &args, &op, err), 0);
  ck_assert(op->req.stale && !op_kind_sequenced(op->kind));
  ck_assert_uint_eq(op->req.group_read->from, 5);
  op_free(op);
  char long_name[SYNOD_GROUP_MEMBER_MAX + 2];
  memset(long_name, 'm', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = '\0';
  r.member = long_name;
  ck_assert_int_eq(op_build(OP_GROUP_SUBSCRIBE, &args, &op, err), SYNOD_EINVAL);
  r.member = NULL; /* none: a watch of every item */
  ck_assert_int_eq(op_build(OP_GROUP_SUBSCRIBE, &args, &op, err), 0);
  op_free(op);
  r.member = "m";
  r.credits = SYNOD_SUBSCRIBE_WINDOW_MAX + 1;
  ck_assert_int_eq(op_build(OP_GROUP_SUBSCRIBE, &args, &op, err), SYNOD_EINVAL);
  r.credits = 4;
  ck_assert_int_eq(op_build(OP_GROUP_SUBSCRIBE, &args, &op, err), 0);
  ck_assert(op_kind_conn_bound(op->kind) && !op->req.stale);
  op_free(op);
}
END_TEST

START_TEST(group_results_copy_views_and_items_whole) {
  Synod__Response r = SYNOD__RESPONSE__INIT;
  Synod__GroupJoinReply j = SYNOD__GROUP_JOIN_REPLY__INIT;
  Synod__GroupView v = SYNOD__GROUP_VIEW__INIT;
  Synod__GroupMember m[2] = {SYNOD__GROUP_MEMBER__INIT,
                             SYNOD__GROUP_MEMBER__INIT};
  Synod__GroupMember *mp[2] = {&m[0], &m[1]};
  Synod__GroupState st = SYNOD__GROUP_STATE__INIT;
  union synod_result out;
  char err[SYNOD_ERRMSG_BYTES];
  m[0].name = "coord";
  m[1].name = "me";
  m[1].data.data = (uint8_t *)"d";
  m[1].data.len = 1;
  v.view_id = 2;
  v.offset = 7;
  v.members = mp;
  v.n_members = 2;
  st.source = SYNOD__GROUP_STATE__SOURCE__REQUESTED;
  st.request_offset = 8;
  st.coordinator = "coord";
  j.view = &v;
  j.state = &st;
  r.body_case = SYNOD__RESPONSE__BODY_GROUP_JOIN;
  r.group_join = &j;
  ck_assert_int_eq(result_from_response(OP_GROUP_JOIN, &r, &out, err), 0);
  ck_assert_uint_eq(out.group_joined.view.count, 2);
  ck_assert_str_eq(out.group_joined.view.members[0].name, "coord");
  ck_assert_str_eq((char *)out.group_joined.view.members[1].data, "d");
  ck_assert_int_eq(out.group_joined.state.source, SYNOD_GROUP_STATE_REQUESTED);
  ck_assert_str_eq(out.group_joined.state.coordinator, "coord");
  result_free(OP_GROUP_JOIN, &out);
  ck_assert_ptr_null(out.group_joined.view.members);
  /* Items of a read outlive the response: they are copied whole. */
  Synod__GroupItems items = SYNOD__GROUP_ITEMS__INIT;
  Synod__GroupItem it = SYNOD__GROUP_ITEM__INIT;
  Synod__GroupMessage msg = SYNOD__GROUP_MESSAGE__INIT;
  Synod__GroupItem *itp[1] = {&it};
  msg.from = "coord";
  msg.to = "me";
  msg.data.data = (uint8_t *)"hello";
  msg.data.len = 5;
  it.offset = 9;
  it.body_case = SYNOD__GROUP_ITEM__BODY_MESSAGE;
  it.message = &msg;
  items.items = itp;
  items.n_items = 1;
  items.next_offset = 10;
  r.body_case = SYNOD__RESPONSE__BODY_GROUP_ITEMS;
  r.group_items = &items;
  ck_assert_int_eq(result_from_response(OP_GROUP_READ, &r, &out, err), 0);
  ck_assert_uint_eq(out.group_items.count, 1);
  ck_assert_int_eq(out.group_items.items[0].type, SYNOD_GROUP_ITEM_MESSAGE);
  ck_assert_ptr_ne(out.group_items.items[0].data, msg.data.data);
  ck_assert_str_eq(out.group_items.items[0].data, "hello");
  ck_assert_str_eq(out.group_items.items[0].to, "me");
  result_free(OP_GROUP_READ, &out);
  /* The wrong body is malformed. */
  ck_assert_int_eq(result_from_response(OP_GROUP_JOIN, &r, &out, err),
                   SYNOD_EMALFORMED);
}
END_TEST

START_TEST(options_are_checked_and_endpoints_come_from_the_environment) {
  struct synod_options o;
  struct synod_client *c;
  synod_options_init(&o);
  o.endpoints = "nohost";
  ck_assert_int_eq(synod_client_new(&o, &c), SYNOD_EINVAL);
  ck_assert_ptr_nonnull(strstr(synod_client_errmsg(), "nohost"));
  o.endpoints = "127.0.0.1:1";
  o.session_ttl_ms = 500;
  ck_assert_int_eq(synod_client_new(&o, &c), SYNOD_EINVAL);
  ck_assert_ptr_nonnull(strstr(synod_client_errmsg(), "TTL"));
  o.endpoints = NULL;
  o.session_ttl_ms = 0;
  setenv("SYNOD_ENDPOINTS", "bad-from-env", 1);
  ck_assert_int_eq(synod_client_new(&o, &c), SYNOD_EINVAL);
  ck_assert_ptr_nonnull(strstr(synod_client_errmsg(), "bad-from-env"));
  unsetenv("SYNOD_ENDPOINTS");
  ck_assert_int_eq(synod_client_new(&o, &c), 0); /* the default list */
  synod_client_free(c);
}
END_TEST

/* ------------------------------------------------------ synodctl helpers */

START_TEST(durations_take_units_and_refuse_garbage) {
  uint32_t ms = 0;
  ck_assert_int_eq(ctl_duration_parse("500ms", &ms), 0);
  ck_assert_uint_eq(ms, 500);
  ck_assert_int_eq(ctl_duration_parse("10s", &ms), 0);
  ck_assert_uint_eq(ms, 10000);
  ck_assert_int_eq(ctl_duration_parse("2m", &ms), 0);
  ck_assert_uint_eq(ms, 120000);
  ck_assert_int_eq(ctl_duration_parse("1h", &ms), 0);
  ck_assert_uint_eq(ms, 3600000);
  ck_assert_int_eq(ctl_duration_parse("7", &ms), 0); /* seconds */
  ck_assert_uint_eq(ms, 7000);
  ck_assert_int_eq(ctl_duration_parse("0", &ms), 0);
  ck_assert_uint_eq(ms, 0);
  static const char *bad[] = {"",      "s",  "-1s",  "1.5s", "10 s",
                              "10sec", "1d", "ms10", " 5s"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ck_assert_msg(ctl_duration_parse(bad[i], &ms) == SYNOD_EINVAL,
                  "'%s' accepted", bad[i]);
  }
  ck_assert_int_eq(ctl_duration_parse(NULL, &ms), SYNOD_EINVAL);
  ck_assert_int_eq(ctl_duration_parse("4294967295ms", &ms), 0);
  ck_assert_int_eq(ctl_duration_parse("4294967296ms", &ms), SYNOD_ERANGE);
  ck_assert_int_eq(ctl_duration_parse("1193h", &ms), 0);
  ck_assert_int_eq(ctl_duration_parse("1194h", &ms), SYNOD_ERANGE);
}
END_TEST

START_TEST(integers_parse_whole_and_in_range) {
  int64_t v;
  uint64_t u;
  ck_assert_int_eq(ctl_int64_parse("-42", &v), 0);
  ck_assert_int_eq(v, -42);
  ck_assert_int_eq(ctl_int64_parse("9223372036854775807", &v), 0);
  ck_assert_int_eq(v, INT64_MAX);
  ck_assert_int_eq(ctl_int64_parse("9223372036854775808", &v), SYNOD_ERANGE);
  ck_assert_int_eq(ctl_int64_parse("12x", &v), SYNOD_EINVAL);
  ck_assert_int_eq(ctl_int64_parse("", &v), SYNOD_EINVAL);
  ck_assert_int_eq(ctl_int64_parse(" 1", &v), SYNOD_EINVAL);
  ck_assert_int_eq(ctl_uint64_parse("202611211730", &u), 0);
  ck_assert_uint_eq(u, 202611211730ull);
  ck_assert_int_eq(ctl_uint64_parse("-1", &u), SYNOD_EINVAL);
}
END_TEST

static char *dump(json_t *j) {
  char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(j);
  return s;
}

START_TEST(json_shapes_are_stable) {
  struct synod_member mb = {.name = "synod-0",
                            .peer_address = "p:1",
                            .client_address = "c:1",
                            .voter = true,
                            .role = "leader",
                            .match_index = 9};
  struct synod_status st = {.name = "synod-0",
                            .role = "leader",
                            .term = 3,
                            .leader_name = "synod-0",
                            .commit_index = 9,
                            .applied_index = 9,
                            .last_index = 10,
                            .snapshot_index = 0,
                            .log_syncs = 4,
                            .log_synced_entries = 12,
                            .members = &mb,
                            .members_count = 1,
                            .version = "0.1.0"};
  char *s = dump(ctl_status_json("127.0.0.1:7700", &st));
  ck_assert_str_eq(
      s, "{\"applied_index\":9,\"commit_index\":9,\"endpoint\":"
         "\"127.0.0.1:7700\",\"last_index\":10,\"leader\":\"synod-0\","
         "\"log_synced_entries\":12,\"log_syncs\":4,"
         "\"members\":[{\"client_address\":\"c:1\",\"match_index\":9,"
         "\"name\":\"synod-0\",\"peer_address\":\"p:1\",\"role\":"
         "\"leader\",\"voter\":true}],\"name\":\"synod-0\",\"role\":"
         "\"leader\",\"snapshot_index\":0,\"term\":3,\"version\":"
         "\"0.1.0\"}");
  free(s);
  struct synod_election_info info = {.name = "web",
                                     .has_leader = true,
                                     .value = (uint8_t *)"pod-a",
                                     .value_len = 5,
                                     .session_id = 4,
                                     .revision = 17,
                                     .candidates = 2};
  s = dump(ctl_election_json(&info));
  ck_assert_str_eq(s, "{\"candidates\":2,\"has_leader\":true,\"name\":"
                      "\"web\",\"revision\":17,\"session_id\":4,"
                      "\"value\":\"pod-a\"}");
  free(s);
  char line[256];
  ctl_election_line(&info, line, sizeof line);
  ck_assert_str_eq(line, "leader=pod-a session=4 revision=17 candidates=2");
  info.has_leader = false;
  s = dump(ctl_election_json(&info));
  ck_assert_ptr_nonnull(strstr(s, "\"value\":null"));
  free(s);
  ctl_election_line(&info, line, sizeof line);
  ck_assert_str_eq(line, "no leader (revision=17)");
  struct synod_counter_entry e[2] = {{"a", 1}, {"b", -2}};
  struct synod_counter_list l = {e, 2, true};
  s = dump(ctl_counter_list_json(&l));
  ck_assert_str_eq(s, "{\"counters\":[{\"name\":\"a\",\"value\":1},"
                      "{\"name\":\"b\",\"value\":-2}],\"more\":true}");
  free(s);
  struct synod_lock_info li = {true, 5, 6, 7, 1, 2};
  s = dump(ctl_lock_info_json("L", &li));
  ck_assert_str_eq(s, "{\"held\":true,\"hold_count\":1,\"name\":\"L\","
                      "\"owner_id\":6,\"session_id\":5,\"token\":7,"
                      "\"waiters\":2}");
  free(s);
}
END_TEST

/* ------------------------------------------------- against a fake server */

/* What the callbacks saw; shared with the client's thread. */
struct events {
  pthread_mutex_t mu;
  int jeopardy, safe, lost;
  uint64_t lost_token;
  uint64_t lost_at_ms;
  char lost_name[64];
  int session_lost;
  int elections;
  char election_value[64];
  bool election_has_leader;
};

static void ev_lock_cb(void *arg, enum synod_lock_event e, const char *name,
                       uint64_t owner_id, uint64_t token) {
  struct events *ev = arg;
  (void)owner_id;
  pthread_mutex_lock(&ev->mu);
  if (e == SYNOD_LOCK_JEOPARDY) {
    ev->jeopardy++;
  } else if (e == SYNOD_LOCK_SAFE) {
    ev->safe++;
  } else {
    ev->lost++;
    ev->lost_token = token;
    ev->lost_at_ms = now_ms();
    snprintf(ev->lost_name, sizeof ev->lost_name, "%s", name);
  }
  pthread_mutex_unlock(&ev->mu);
}

static void ev_session_cb(void *arg, enum synod_session_state st, uint64_t id) {
  struct events *ev = arg;
  (void)id;
  if (st == SYNOD_SESSION_LOST) {
    pthread_mutex_lock(&ev->mu);
    ev->session_lost++;
    pthread_mutex_unlock(&ev->mu);
  }
}

static void ev_election_cb(void *arg, int status,
                           const struct synod_election_info *info) {
  struct events *ev = arg;
  if (status != 0) {
    return;
  }
  pthread_mutex_lock(&ev->mu);
  ev->elections++;
  ev->election_has_leader = info->has_leader;
  snprintf(ev->election_value, sizeof ev->election_value, "%s",
           (const char *)info->value);
  pthread_mutex_unlock(&ev->mu);
}

static int ev_get(struct events *ev, int *field) {
  pthread_mutex_lock(&ev->mu);
  int v = *field;
  pthread_mutex_unlock(&ev->mu);
  return v;
}

static struct synod_client *client_for(const char *endpoints, uint32_t ttl_ms,
                                       struct events *ev) {
  struct synod_options o;
  struct synod_client *c;
  synod_options_init(&o);
  o.endpoints = endpoints;
  o.client_name = "test";
  o.session_ttl_ms = ttl_ms;
  o.request_timeout_ms = 5000;
  o.connect_timeout_ms = 1000;
  if (ev != NULL) {
    memset(ev, 0, sizeof *ev);
    pthread_mutex_init(&ev->mu, NULL);
    o.lock_cb = ev_lock_cb;
    o.session_cb = ev_session_cb;
    o.election_cb = ev_election_cb;
    o.cb_arg = ev;
  }
  ck_assert_msg(synod_client_new(&o, &c) == 0, "%s", synod_client_errmsg());
  return c;
}

#define OK(call)                                                               \
  ck_assert_msg((call) == 0, "%s: %s", #call, synod_client_errmsg())

START_TEST(counters_answer_every_operation) {
  struct mock *m = mock_start();
  struct synod_client *c = client_for(m->address, 0, NULL);
  int64_t v = -1;
  struct synod_counter_cas cas;
  struct synod_counter_list list;
  bool existed;
  OK(synod_counter_get(c, "a", 0, 0, &v));
  ck_assert_int_eq(v, 0);
  OK(synod_counter_set(c, "a", 40, 0));
  OK(synod_counter_add(c, "a", 2, 0, &v));
  ck_assert_int_eq(v, 42);
  OK(synod_counter_get_add(c, "a", -2, 0, &v));
  ck_assert_int_eq(v, 42);
  OK(synod_counter_cas(c, "a", 1, 5, 0, &cas));
  ck_assert(!cas.swapped);
  ck_assert_int_eq(cas.value, 40);
  OK(synod_counter_cas(c, "a", 40, 5, 0, &cas));
  ck_assert(cas.swapped);
  OK(synod_counter_set(c, "big", INT64_MAX, 0));
  ck_assert_int_eq(synod_counter_add(c, "big", 1, 0, &v), SYNOD_EOVERFLOW);
  ck_assert_str_eq(synod_client_errmsg(), "integer overflow");
  OK(synod_counter_list(c, "", NULL, 0, SYNOD_READ_STALE, 0, &list));
  ck_assert_uint_eq(list.count, 2);
  synod_counter_list_free(&list);
  OK(synod_counter_delete(c, "a", 0, &existed));
  ck_assert(existed);
  OK(synod_counter_delete(c, "a", 0, &existed));
  ck_assert(!existed);
  ck_assert_uint_ne(synod_session_id(c), 0);
  synod_client_free(c);
  mock_stop(m);
}
END_TEST

struct adder {
  struct synod_client *c;
  int n;
  int failures;
};

static void *adder_main(void *arg) {
  struct adder *ad = arg;
  for (int i = 0; i < ad->n; i++) {
    if (synod_counter_add(ad->c, "shared", 1, 0, NULL) != 0) {
      ad->failures++;
    }
  }
  return NULL;
}

/* 8 threads share one client; the server drops the connection after
 * every 13th mutation it applied, unanswered: each retry carries the same
 * (session, sequence), is answered from the record, and counts once. */
START_TEST(eight_threads_add_through_one_client_exactly_once_under_drops) {
  enum { THREADS = 8, N = 250 };
  struct mock *m = mock_start();
  struct synod_client *c = client_for(m->address, 0, NULL);
  pthread_t t[THREADS];
  struct adder ad[THREADS];
  int64_t v;
  m->drop_every = 13;
  for (int i = 0; i < THREADS; i++) {
    ad[i] = (struct adder){c, N, 0};
    pthread_create(&t[i], NULL, adder_main, &ad[i]);
  }
  for (int i = 0; i < THREADS; i++) {
    pthread_join(t[i], NULL);
    ck_assert_int_eq(ad[i].failures, 0);
  }
  OK(synod_counter_get(c, "shared", 0, 0, &v));
  ck_assert_int_eq(v, THREADS * N);
  ck_assert_int_gt(m->conns_dropped, 10);
  ck_assert_int_ge(m->replayed, m->conns_dropped);
  ck_assert_int_eq(m->sessions_opened, 1);
  synod_client_free(c);
  mock_stop(m);
}
END_TEST

struct waiter {
  struct synod_client *c;
  int rv;
  struct synod_lock_grant g;
};

static void *waiter_main(void *arg) {
  struct waiter *w = arg;
  w->rv = synod_lock_acquire(w->c, "L", 7, 5000, &w->g);
  return NULL;
}

START_TEST(locks_are_reentrant_exclusive_and_fifo_with_growing_tokens) {
  struct mock *m = mock_start();
  struct synod_client *a = client_for(m->address, 0, NULL);
  struct synod_client *b = client_for(m->address, 0, NULL);
  struct synod_lock_grant g1, g2;
  struct synod_lock_info info;
  struct synod_lock_check chk;
  uint32_t holds;
  OK(synod_lock_try(a, "L", 1, &g1));
  ck_assert_uint_eq(g1.hold_count, 1);
  OK(synod_lock_acquire(a, "L", 1, 0, &g2));
  ck_assert_uint_eq(g2.hold_count, 2);
  ck_assert_uint_eq(g2.token, g1.token);
  ck_assert_int_eq(synod_lock_try(b, "L", 1, &g2), SYNOD_ELOCKED);
  ck_assert_int_eq(synod_lock_release(b, "L", 1, 0, NULL), SYNOD_ENOTHOLDER);
  OK(synod_lock_query(b, "L", 0, 0, &info));
  ck_assert(info.held);
  ck_assert_uint_eq(info.session_id, synod_session_id(a));
  ck_assert_uint_eq(info.hold_count, 2);
  /* A waiter on b gets the lock once a lets go of both holds. */
  struct waiter w = {.c = b};
  pthread_t t;
  pthread_create(&t, NULL, waiter_main, &w);
  WAIT_UNTIL((synod_lock_query(a, "L", 0, 0, &info) == 0 && info.waiters == 1),
             5000);
  OK(synod_lock_release(a, "L", 1, 0, &holds));
  ck_assert_uint_eq(holds, 1);
  OK(synod_lock_release(a, "L", 1, 0, &holds));
  ck_assert_uint_eq(holds, 0);
  pthread_join(t, NULL);
  ck_assert_int_eq(w.rv, 0);
  ck_assert_uint_gt(w.g.token, g1.token);
  OK(synod_lock_check(a, "L", g1.token, 0, 0, &chk));
  ck_assert(!chk.current);
  ck_assert_uint_eq(chk.current_token, w.g.token);
  OK(synod_lock_check(a, "L", w.g.token, 0, 0, &chk));
  ck_assert(chk.current);
  /* Freeing b closes its session: the lock is free again. */
  synod_client_free(b);
  OK(synod_lock_try(a, "L", 1, &g2));
  ck_assert_uint_gt(g2.token, w.g.token);
  synod_client_free(a);
  mock_stop(m);
}
END_TEST

START_TEST(a_follower_redirects_mutations_and_reads_to_the_leader) {
  struct mock *leader = mock_start();
  struct mock *follower = mock_start();
  struct synod_status st;
  int64_t v;
  snprintf(follower->leader_address, sizeof follower->leader_address, "%s",
           leader->address);
  follower->follower = true;
  struct synod_client *c = client_for(follower->address, 0, NULL);
  /* Status is answered by whichever replica we reach first. */
  OK(synod_status(c, 0, &st));
  ck_assert_str_eq(st.role, "follower");
  synod_status_free(&st);
  OK(synod_counter_add(c, "x", 5, 0, &v));
  ck_assert_int_eq(v, 5);
  ck_assert_int_eq(leader->applied, 1);
  ck_assert_int_eq(follower->applied, 0);
  OK(synod_counter_get(c, "x", 0, 0, &v));
  ck_assert_int_eq(v, 5);
  synod_client_free(c);
  mock_stop(follower);
  mock_stop(leader);
}
END_TEST

START_TEST(no_reachable_endpoint_fails_with_econnect_in_time) {
  struct synod_client *c = client_for("127.0.0.1:1,127.0.0.1:2", 0, NULL);
  int64_t v;
  uint64_t t0 = now_ms();
  ck_assert_int_eq(synod_counter_get(c, "x", 0, 700, &v), SYNOD_ECONNECT);
  ck_assert_uint_lt(now_ms() - t0, 700 + 1500);
  ck_assert_msg(strstr(synod_client_errmsg(), "127.0.0.1:") != NULL &&
                    strstr(synod_client_errmsg(), "connect") != NULL,
                "message: %s", synod_client_errmsg());
  synod_client_free(c);
}
END_TEST

/* The server stops acknowledging keepalives: held locks are in jeopardy
 * past TTL/2 and lost before TTL has passed since the last acknowledged
 * keepalive was sent, which is before the server could expire them. */
START_TEST(unrenewed_session_reports_jeopardy_then_lost_before_ttl) {
  struct mock *m = mock_start();
  struct events ev;
  struct synod_client *c = client_for(m->address, 1000, &ev);
  struct synod_lock_grant g;
  uint64_t old_session, t0;
  OK(synod_lock_try(c, "L", 1, &g));
  old_session = synod_session_id(c);
  m->ignore_keepalives = true;
  t0 = now_ms(); /* the last acknowledged keepalive was sent before this */
  WAIT_UNTIL(ev_get(&ev, &ev.lost) == 1, 3000);
  ck_assert_int_eq(ev_get(&ev, &ev.jeopardy), 1);
  ck_assert_uint_lt(ev.lost_at_ms - t0, 1000);
  ck_assert_uint_eq(ev.lost_token, g.token);
  ck_assert_str_eq(ev.lost_name, "L");
  ck_assert_int_eq(ev_get(&ev, &ev.session_lost), 1);
  /* The lost lock cannot be released; a new request opens a new session. */
  ck_assert_int_eq(synod_lock_release(c, "L", 1, 0, NULL), SYNOD_ELOST);
  m->ignore_keepalives = false;
  OK(synod_counter_add(c, "n", 1, 0, NULL));
  ck_assert_uint_ne(synod_session_id(c), 0);
  ck_assert_uint_ne(synod_session_id(c), old_session);
  synod_client_free(c);
  mock_stop(m);
}
END_TEST

/* A mock whose group "g" holds checkpoint `first` at `offset`, replaced
 * after its first chunk is read (if `second`) by `second` at the same
 * offset. */
static struct mock *ckpt_mock(uint64_t offset, const char *first,
                              const char *second) {
  struct mock *m = mock_start();
  m->ckpt_offset = offset;
  snprintf(m->ckpt[0], sizeof m->ckpt[0], "%s", first);
  snprintf(m->ckpt[1], sizeof m->ckpt[1], "%s", second ? second : "");
  m->ckpt_swap = second != NULL;
  return m;
}

/* A checkpoint read in chunks returns one checkpoint whole: one stored
 * again at the same offset while it is read (at offset 0 too, and
 * shorter than what was read: SYNOD_ERANGE) is read again from its
 * start, by its index, never spliced onto the first one's chunks. */
START_TEST(a_checkpoint_replaced_at_its_offset_is_read_again_whole) {
  static const struct {
    uint64_t offset;
    const char *second;
  } cases[] = {{5, NULL}, {5, "0123456789"}, {0, "0123456789"}, {5, "xyz"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct mock *m = ckpt_mock(cases[i].offset, "abcdefghij", cases[i].second);
    struct synod_client *c = client_for(m->address, 0, NULL);
    struct synod_group_checkpoint ck;
    const char *want = cases[i].second ? cases[i].second : "abcdefghij";
    OK(synod_group_checkpoint_read(c, "g", 0, 3000, &ck));
    ck_assert_uint_eq(ck.len, strlen(want));
    ck_assert_mem_eq(ck.data, want, strlen(want));
    ck_assert_uint_eq(ck.info.index, cases[i].second ? 200 : 100);
    synod_group_checkpoint_free(&ck);
    synod_client_free(c);
    mock_stop(m);
  }
}
END_TEST

START_TEST(server_expiry_event_reports_locks_lost_at_once) {
  struct mock *m = mock_start();
  struct events ev;
  struct synod_client *c = client_for(m->address, 0, &ev);
  struct synod_lock_grant g;
  OK(synod_lock_try(c, "L", 3, &g));
  m->expire_session = synod_session_id(c);
  mock_poke(m);
  WAIT_UNTIL(ev_get(&ev, &ev.lost) == 1, 2000);
  ck_assert_int_eq(ev_get(&ev, &ev.jeopardy), 0);
  ck_assert_int_eq(synod_lock_release(c, "L", 3, 0, NULL), SYNOD_ELOST);
  OK(synod_lock_try(c, "L", 3, &g)); /* in a new session */
  synod_client_free(c);
  mock_stop(m);
}
END_TEST

START_TEST(observers_see_every_leader_change) {
  struct mock *m = mock_start();
  struct events ev;
  struct synod_client *obs = client_for(m->address, 0, &ev);
  struct synod_client *cand = client_for(m->address, 0, NULL);
  struct synod_election_info info;
  struct synod_election_campaign camp;
  OK(synod_election_observe(obs, "E", 0, &info));
  ck_assert(!info.has_leader);
  synod_election_info_free(&info);
  ck_assert_int_eq(synod_election_observe(obs, "E", 0, NULL), SYNOD_EEXIST);
  OK(synod_election_campaign(cand, "E", "pod-a", 5, 0, &camp));
  ck_assert(camp.leader);
  ck_assert_str_eq((char *)camp.info.value, "pod-a");
  synod_election_campaign_free(&camp);
  WAIT_UNTIL(ev_get(&ev, &ev.elections) == 1, 2000);
  ck_assert(ev.election_has_leader);
  ck_assert_str_eq(ev.election_value, "pod-a");
  OK(synod_election_leader(obs, "E", 0, 0, &info));
  ck_assert_uint_eq(info.session_id, synod_session_id(cand));
  synod_election_info_free(&info);
  OK(synod_election_resign(cand, "E", 0, NULL));
  WAIT_UNTIL(ev_get(&ev, &ev.elections) == 2, 2000);
  ck_assert(!ev.election_has_leader);
  OK(synod_election_unobserve(obs, "E"));
  ck_assert_int_eq(synod_election_unobserve(obs, "E"), SYNOD_ENOTFOUND);
  synod_client_free(cand);
  synod_client_free(obs);
  mock_stop(m);
}
END_TEST

/* --------------------------------------------- attempts and stalls */

/* A client whose endpoints are in order, with the attempt bounds given. */
static struct synod_client *client_bounded(const char *endpoints,
                                           uint32_t connect_ms,
                                           uint32_t delay_ms, uint32_t stall_ms,
                                           uint32_t ttl_ms, struct events *ev) {
  struct synod_options o;
  struct synod_client *c;
  synod_options_init(&o);
  o.endpoints = endpoints;
  o.endpoints_in_order = true;
  o.client_name = "test";
  o.session_ttl_ms = ttl_ms;
  o.request_timeout_ms = slow(3000);
  o.connect_timeout_ms = connect_ms;
  o.attempt_delay_ms = delay_ms;
  o.stall_timeout_ms = stall_ms;
  if (ev != NULL) {
    memset(ev, 0, sizeof *ev);
    pthread_mutex_init(&ev->mu, NULL);
    o.lock_cb = ev_lock_cb;
    o.session_cb = ev_session_cb;
    o.cb_arg = ev;
  }
  ck_assert_msg(synod_client_new(&o, &c) == 0, "%s", synod_client_errmsg());
  return c;
}

/* The first endpoint accepts (the kernel completes the handshake) and
 * never answers, like a SIGSTOPped replica. With a 50 ms attempt delay
 * the second endpoint is tried in parallel and wins: the first request
 * costs the delay, not the request's timeout. With the delay as long as
 * the connect bound, the silent endpoint costs exactly that bound. */
START_TEST(a_listener_that_never_answers_costs_one_attempt_delay) {
  struct mock *m = mock_start();
  char silent[64], eps[160];
  int lfd = silent_listener(silent, sizeof silent);
  struct synod_client *c;
  int64_t v;
  uint64_t t0, took;
  snprintf(eps, sizeof eps, "%s,%s", silent, m->address);
  c = client_bounded(eps, slow(300), slow(50), slow(1000), 0, NULL);
  t0 = now_ms();
  OK(synod_counter_add(c, "x", 1, 0, &v));
  took = now_ms() - t0;
  ck_assert_msg(took >= slow(50) - 2 && took < slow(50) + slow(200),
                "the first add took %" PRIu64 " ms; want the attempt delay "
                "(%u ms) plus a little",
                took, slow(50));
  ck_assert_int_eq(v, 1);
  synod_client_free(c);

  c = client_bounded(eps, slow(300), slow(300), slow(1000), 0, NULL);
  t0 = now_ms();
  OK(synod_counter_add(c, "x", 1, 0, &v));
  took = now_ms() - t0;
  ck_assert_msg(took >= slow(300) - 2 && took < slow(300) + slow(200),
                "the add took %" PRIu64 " ms; want the Hello bound (%u ms) "
                "plus a little",
                took, slow(300));
  ck_assert_int_eq(v, 2);
  synod_client_free(c);
  close(lfd);
  mock_stop(m);
}
END_TEST

/* A client whose only endpoint is silent learns it after one connect
 * bound, not after its request's timeout, and is told why. */
START_TEST(a_silent_only_endpoint_fails_after_one_bound_and_says_so) {
  char silent[64];
  int lfd = silent_listener(silent, sizeof silent);
  struct synod_options o;
  struct synod_client *c;
  struct synod_status st;
  uint64_t t0, took;
  synod_options_init(&o);
  o.endpoints = silent;
  o.connect_timeout_ms = slow(300);
  o.request_timeout_ms = slow(900);
  ck_assert_int_eq(synod_client_new(&o, &c), 0);
  t0 = now_ms();
  ck_assert_int_eq(synod_status(c, 0, &st), SYNOD_ECONNECT);
  took = now_ms() - t0;
  ck_assert_msg(took >= slow(300) - 2 && took < slow(300) + slow(200),
                "status failed after %" PRIu64 " ms; want about %u", took,
                slow(300));
  ck_assert_msg(strstr(synod_client_errmsg(), "Hello unanswered") != NULL &&
                    strstr(synod_client_errmsg(), silent) != NULL,
                "message: %s", synod_client_errmsg());
  synod_client_free(c);
  close(lfd);
}
END_TEST

/* The client completed its handshake through the proxy, then the proxy
 * goes silent (keeps the connection, forwards nothing). The next add
 * waits one stall bound, moves to the other endpoint (the same server)
 * with its (session, sequence), and counts once. */
START_TEST(a_connection_gone_silent_moves_its_request_within_the_bound) {
  struct mock *m = mock_start();
  struct proxy *p = proxy_start(m->address);
  char eps[160];
  struct synod_client *c;
  int64_t v;
  uint64_t t0, took;
  snprintf(eps, sizeof eps, "%s,%s", p->address, m->address);
  c = client_bounded(eps, slow(300), slow(50), slow(400), 0, NULL);
  OK(synod_counter_add(c, "x", 1, 0, &v));
  p->silent = true;
  t0 = now_ms();
  OK(synod_counter_add(c, "x", 1, 0, &v));
  took = now_ms() - t0;
  ck_assert_int_eq(v, 2);
  ck_assert_msg(took >= slow(400) - 2 && took < slow(400) + slow(300),
                "the add took %" PRIu64 " ms; want the stall bound (%u ms) "
                "plus a little",
                took, slow(400));
  ck_assert_int_eq(m->applied, 2);
  ck_assert_int_eq(m->sessions_opened, 1);
  /* The silent endpoint is tried last now: the next requests go on at
   * once. */
  t0 = now_ms();
  OK(synod_counter_add(c, "x", 1, 0, &v));
  ck_assert_uint_lt(now_ms() - t0, slow(100));
  synod_client_free(c);
  proxy_stop(p);
  mock_stop(m);
}
END_TEST

/* A fresh client (no endpoint order asked for, no leader known) starts its
 * second attempt after 10 ms, not the attempt delay: a silent endpoint,
 * wherever it comes in the random order, costs it about that. */
START_TEST(a_fresh_client_waits_little_for_a_silent_endpoint) {
  struct mock *m = mock_start();
  char silent[64], eps[160];
  int lfd = silent_listener(silent, sizeof silent);
  snprintf(eps, sizeof eps, "%s,%s", silent, m->address);
  for (int i = 0; i < 6; i++) {
    struct synod_options o;
    struct synod_client *c;
    int64_t v;
    synod_options_init(&o);
    o.endpoints = eps;
    o.connect_timeout_ms = slow(300);
    o.attempt_delay_ms = slow(250);
    o.request_timeout_ms = slow(3000);
    ck_assert_int_eq(synod_client_new(&o, &c), 0);
    uint64_t t0 = now_ms();
    OK(synod_counter_add(c, "x", 1, 0, &v));
    uint64_t took = now_ms() - t0;
    ck_assert_msg(took < slow(150),
                  "add %d took %" PRIu64 " ms; the attempt "
                  "delay is %u",
                  i, took, slow(250));
    synod_client_free(c);
  }
  close(lfd);
  mock_stop(m);
}
END_TEST

/* The replica the client is on steps down and knows no leader (a leader
 * cut off from the others): the client does not come back to it as "the
 * leader it last heard of", but asks the other endpoint at once. */
START_TEST(a_replica_that_knows_no_leader_is_left_at_once) {
  struct mock *a = mock_start(), *b = mock_start();
  char eps[160];
  int64_t v;
  /* Reads: they need no session, which two mocks could not share. */
  snprintf(eps, sizeof eps, "%s,%s", a->address, b->address);
  struct synod_client *c =
      client_bounded(eps, slow(300), slow(50), slow(1000), 0, NULL);
  OK(synod_counter_get(c, "x", 0, 0, &v));
  a->leader_address[0] = '\0';
  a->follower = true; /* "not the leader", and no leader to name */
  uint64_t t0 = now_ms();
  OK(synod_counter_get(c, "x", 0, 0, &v));
  uint64_t took = now_ms() - t0;
  ck_assert_msg(took < slow(150), "the read took %" PRIu64 " ms", took);
  a->follower = false; /* it would answer now, but b is where we are */
  for (int i = 0; i < 5; i++) {
    OK(synod_counter_get(c, "x", 0, 0, &v));
  }
  synod_client_free(c);
  mock_stop(a);
  mock_stop(b);
}
END_TEST

/* A session's renewal that gets no answer moves the connection before
 * the session is in jeopardy: the lock stays safe throughout. TTL 4 s:
 * a keepalive every 1.33 s, jeopardy 2 s after the last acknowledged
 * one was sent; the stall bound (400 ms) moves it well before. */
START_TEST(an_unanswered_keepalive_moves_the_session_before_jeopardy) {
  struct mock *m = mock_start();
  struct proxy *p = proxy_start(m->address);
  struct events ev;
  char eps[160];
  struct synod_client *c;
  struct synod_lock_grant g;
  struct synod_lock_info info;
  int before;
  snprintf(eps, sizeof eps, "%s,%s", p->address, m->address);
  c = client_bounded(eps, slow(300), slow(50), slow(400), slow(4000), &ev);
  OK(synod_lock_try(c, "L", 1, &g));
  p->silent = true;
  before = m->keepalives;
  /* Two renewals over the direct path: one moved, one after it. */
  WAIT_UNTIL(m->keepalives >= before + 2, (int)slow(4000));
  ck_assert_int_eq(ev_get(&ev, &ev.jeopardy), 0);
  ck_assert_int_eq(ev_get(&ev, &ev.lost), 0);
  OK(synod_lock_query(c, "L", 0, 0, &info));
  ck_assert(info.held);
  ck_assert_uint_eq(info.session_id, synod_session_id(c));
  synod_client_free(c);
  proxy_stop(p);
  mock_stop(m);
}
END_TEST

/* ------------------------------------------------------ async interface */

struct async_run {
  int done;
  int failures;
  int64_t last;
  bool closed;
};

static void async_add_cb(void *arg, int status, const int64_t *value) {
  struct async_run *r = arg;
  r->done++;
  if (status != 0) {
    r->failures++;
  } else {
    r->last = *value > r->last ? *value : r->last;
  }
}

static void async_closed_cb(void *arg) {
  ((struct async_run *)arg)->closed = true;
}

/* 200 adds submitted at once: at most SYNOD_INFLIGHT_MAX are in flight,
 * all complete, and the loop ends once the client is closed. */
START_TEST(async_pipelines_within_the_window_and_closes_cleanly) {
  struct mock *m = mock_start();
  uv_loop_t loop;
  struct synod_async *a;
  struct synod_options o;
  struct async_run r = {0};
  synod_options_init(&o);
  o.endpoints = m->address;
  uv_loop_init(&loop);
  ck_assert_int_eq(synod_async_new(&loop, &o, &a), 0);
  for (int i = 0; i < 200; i++) {
    ck_assert_int_eq(synod_async_counter_add(a, "p", 1, async_add_cb, &r), 0);
  }
  ck_assert_int_eq(synod_async_counter_add(a, "", 1, async_add_cb, &r),
                   SYNOD_EINVAL);
  uint64_t t0 = now_ms();
  while (r.done < 200 && now_ms() - t0 < 5000) {
    ck_assert_uint_le(a->inflight_sequenced, SYNOD_INFLIGHT_MAX);
    uv_run(&loop, UV_RUN_ONCE);
  }
  ck_assert_int_eq(r.done, 200);
  ck_assert_int_eq(r.failures, 0);
  ck_assert_int_eq(r.last, 200);
  synod_async_close(a, async_closed_cb, &r);
  ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ck_assert(r.closed);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  mock_stop(m);
}
END_TEST

struct ckpt_got {
  bool done;
  int status;
  char data[16];
  uint64_t index;
};

static void ckpt_got_cb(void *arg, int status,
                        const struct synod_group_checkpoint *ck) {
  struct ckpt_got *g = arg;
  g->done = true;
  g->status = status;
  if (status == 0) {
    snprintf(g->data, sizeof g->data, "%.*s", (int)ck->len,
             (const char *)ck->data);
    g->index = ck->info.index;
  }
}

/* The async read (a joining member's): the same as the blocking one. */
START_TEST(async_checkpoint_read_replaced_at_its_offset_reads_the_new_one) {
  static const struct {
    uint64_t offset;
    const char *second;
  } cases[] = {{5, "0123456789"}, {0, "0123456789"}, {5, "xyz"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct mock *m = ckpt_mock(cases[i].offset, "abcdefghij", cases[i].second);
    uv_loop_t loop;
    struct synod_async *a;
    struct synod_options o;
    struct async_run r = {0};
    struct ckpt_got got = {0};
    synod_options_init(&o);
    o.endpoints = m->address;
    uv_loop_init(&loop);
    ck_assert_int_eq(synod_async_new(&loop, &o, &a), 0);
    ck_assert_int_eq(
        synod_async_group_checkpoint_read(a, "g", 0, ckpt_got_cb, &got), 0);
    uint64_t t0 = now_ms();
    while (!got.done && now_ms() - t0 < 5000) {
      uv_run(&loop, UV_RUN_ONCE);
    }
    ck_assert(got.done);
    ck_assert_int_eq(got.status, 0);
    ck_assert_str_eq(got.data, cases[i].second);
    ck_assert_uint_eq(got.index, 200);
    synod_async_close(a, async_closed_cb, &r);
    ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    mock_stop(m);
  }
}
END_TEST

/* A call made after the loop sat idle longer than the request timeout
 * still gets its whole timeout: its deadline is counted from now, not
 * from the time the loop last looked (every call failed at once with
 * SYNOD_ETIMEDOUT in the group bench, whose loop waited between rounds). */
START_TEST(a_call_after_an_idle_loop_gets_its_whole_timeout) {
  struct mock *m = mock_start();
  uv_loop_t loop;
  struct synod_async *a;
  struct synod_options o;
  struct async_run r = {0};
  synod_options_init(&o);
  o.endpoints = m->address;
  o.request_timeout_ms = 300;
  uv_loop_init(&loop);
  ck_assert_int_eq(synod_async_new(&loop, &o, &a), 0);
  ck_assert_int_eq(synod_async_counter_add(a, "idle", 1, async_add_cb, &r), 0);
  uint64_t t0 = now_ms();
  while (r.done < 1 && now_ms() - t0 < 5000) {
    uv_run(&loop, UV_RUN_ONCE);
  }
  ck_assert_int_eq(r.done, 1);
  ck_assert_int_eq(r.failures, 0);
  usleep(600 * 1000); /* the loop does not run: its time goes stale */
  ck_assert_int_eq(synod_async_counter_add(a, "idle", 1, async_add_cb, &r), 0);
  t0 = now_ms();
  while (r.done < 2 && now_ms() - t0 < 5000) {
    uv_run(&loop, UV_RUN_ONCE);
  }
  ck_assert_int_eq(r.done, 2);
  ck_assert_msg(r.failures == 0, "the call after the idle loop failed");
  ck_assert_int_eq(r.last, 2);
  synod_async_close(a, async_closed_cb, &r);
  ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  mock_stop(m);
}
END_TEST

struct valid_run {
  int granted;
  int lost;
};

static void valid_grant_cb(void *arg, int status,
                           const struct synod_lock_grant *g) {
  (void)g;
  ((struct valid_run *)arg)->granted += status == 0;
}

static void valid_lock_cb(void *arg, enum synod_lock_event e, const char *name,
                          uint64_t owner_id, uint64_t token) {
  (void)name, (void)owner_id, (void)token;
  ((struct valid_run *)arg)->lost += e == SYNOD_LOCK_LOST;
}

/* synod_async_session_valid_ms() reads the clock, not the loop: with the
 * loop held up past the deadline it says 0 although no LOST report could
 * run yet; when the loop runs again the lock is reported lost and stays
 * so. (A lock holder that checked only for LOST went on using the lock
 * for as long as its process was held up: the nemesis saw two holders.) */
START_TEST(session_validity_is_read_from_the_clock_not_the_loop) {
  struct mock *m = mock_start();
  uv_loop_t loop;
  struct synod_async *a;
  struct synod_options o;
  struct valid_run r = {0};
  struct async_run closed = {0};
  synod_options_init(&o);
  o.endpoints = m->address;
  o.session_ttl_ms = 1000;
  o.lock_cb = valid_lock_cb;
  o.cb_arg = &r;
  uv_loop_init(&loop);
  ck_assert_int_eq(synod_async_new(&loop, &o, &a), 0);
  ck_assert_uint_eq(synod_async_session_valid_ms(a), 0); /* no session */
  ck_assert_int_eq(
      synod_async_lock_acquire(a, "V", 1, 2000, valid_grant_cb, &r), 0);
  uint64_t t0 = now_ms();
  while (r.granted < 1 && now_ms() - t0 < 5000) {
    uv_run(&loop, UV_RUN_ONCE);
  }
  ck_assert_int_eq(r.granted, 1);
  uint64_t v = synod_async_session_valid_ms(a);
  ck_assert_msg(v > 0 && v <= 950, "valid for %" PRIu64 " ms of 1000", v);
  usleep(1100 * 1000); /* the loop does not run: no timer can fire */
  ck_assert_uint_eq(synod_async_session_valid_ms(a), 0);
  ck_assert_int_eq(r.lost, 0);
  t0 = now_ms();
  while (r.lost < 1 && now_ms() - t0 < 5000) {
    uv_run(&loop, UV_RUN_ONCE);
  }
  ck_assert_int_eq(r.lost, 1);
  ck_assert_uint_eq(synod_async_session_valid_ms(a), 0);
  synod_async_close(a, async_closed_cb, &closed);
  ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  mock_stop(m);
}
END_TEST

/* A write that is not safe to send again (a member remove), with a
 * timeout under the stall bound, on a connection gone silent: its expiry
 * reconnects, which fails what was sent and may not be resent. It is
 * answered once, ETIMEDOUT. (A review found the expiry going on with the
 * op the reconnect had freed: a crash, a use-after-free under ASan.) */
START_TEST(an_expiry_on_a_silent_connection_answers_an_unresendable_op_once) {
  struct mock *m = mock_start();
  struct proxy *p = proxy_start(m->address);
  int64_t v;
  struct synod_client *c =
      client_bounded(p->address, slow(300), slow(50), slow(1000), 0, NULL);
  OK(synod_counter_get(c, "x", 0, 0, &v));
  p->silent = true;
  WAIT_UNTIL(p->silent_now, 1000);
  ck_assert_int_eq(synod_member_remove(c, "r2", 300), SYNOD_ETIMEDOUT);
  synod_client_free(c);
  proxy_stop(p);
  mock_stop(m);
}
END_TEST

/* An acquire that runs out of time where no replica can be reached; its
 * callback closes the client. (A review found the callback called again
 * by the close, with SYNOD_ESHUTDOWN, and the expiry then writing to the
 * freed op.) */
struct close_in_cb {
  struct synod_async *a;
  int calls, status;
  bool closed;
};

static void close_in_cb_closed(void *arg) {
  ((struct close_in_cb *)arg)->closed = true;
}

static void close_in_cb_acquired(void *arg, int status,
                                 const struct synod_lock_grant *g) {
  struct close_in_cb *z = arg;
  (void)g;
  z->calls++;
  z->status = status;
  if (z->calls == 1) {
    synod_async_close(z->a, close_in_cb_closed, z);
  }
}

START_TEST(
    an_acquire_whose_timeout_callback_closes_the_client_is_answered_once) {
  struct mock *m = mock_start();
  struct proxy *p = proxy_start(m->address);
  struct synod_client *c1 =
      client_bounded(m->address, slow(300), slow(50), slow(1000), 0, NULL);
  struct synod_lock_grant g;
  OK(synod_lock_try(c1, "Z", 1, &g)); /* held: the acquire below waits */
  uv_loop_t loop;
  struct synod_options o;
  struct close_in_cb z = {0};
  synod_options_init(&o);
  o.endpoints = p->address;
  o.request_timeout_ms = 1000;
  o.stay_on_replica = true;
  uv_loop_init(&loop);
  ck_assert_int_eq(synod_async_new(&loop, &o, &z.a), 0);
  ck_assert_int_eq(
      synod_async_lock_acquire(z.a, "Z", 2, 500, close_in_cb_acquired, &z), 0);
  uint64_t t0 = now_ms();
  while (z.a->last_sequence == 0 || now_ms() - t0 < 200) {
    ck_assert_msg(now_ms() - t0 < 5000, "the acquire was never sent");
    uv_run(&loop, UV_RUN_NOWAIT);
    usleep(1000);
  }
  proxy_stop(p); /* the replica goes away: no reconnect succeeds */
  t0 = now_ms();
  while (!z.closed && now_ms() - t0 < 5000) {
    uv_run(&loop, UV_RUN_ONCE);
  }
  ck_assert_msg(z.closed, "the close did not finish");
  ck_assert_int_eq(z.calls, 1);
  ck_assert_int_eq(z.status, SYNOD_ETIMEDOUT);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  synod_client_free(c1);
  mock_stop(m);
}
END_TEST

/* A close behind a window full of acquires waiting on a held lock: it
 * goes out at once and ends the session (its waiters with it), not after
 * its 2 s timeout with the session left to its TTL (found by review). */
struct full_window {
  struct synod_async *a;
  int answered;
  bool closed;
  uint64_t closed_ms;
};

static void full_window_acquired(void *arg, int status,
                                 const struct synod_lock_grant *g) {
  (void)status;
  (void)g;
  ((struct full_window *)arg)->answered++;
}

static void full_window_closed(void *arg) {
  struct full_window *w = arg;
  w->closed = true;
  w->closed_ms = now_ms();
}

START_TEST(a_close_behind_a_full_window_of_waiting_acquires_goes_out_at_once) {
  struct mock *m = mock_start();
  struct synod_client *holder = client_for(m->address, 0, NULL);
  struct synod_lock_grant g;
  OK(synod_lock_try(holder, "L", 1, &g));
  uv_loop_t loop;
  struct synod_options o;
  struct full_window w = {0};
  synod_options_init(&o);
  o.endpoints = m->address;
  uv_loop_init(&loop);
  ck_assert_int_eq(synod_async_new(&loop, &o, &w.a), 0);
  for (uint64_t k = 0; k < SYNOD_INFLIGHT_MAX; k++) {
    ck_assert_int_eq(synod_async_lock_acquire(w.a, "L", 100 + k, 30000,
                                              full_window_acquired, &w),
                     0);
  }
  uint64_t t0 = now_ms();
  while (w.a->inflight_sequenced < SYNOD_INFLIGHT_MAX) {
    ck_assert_msg(now_ms() - t0 < 5000, "the acquires were not sent");
    uv_run(&loop, UV_RUN_NOWAIT);
    usleep(1000);
  }
  int closed_before = m->sessions_closed;
  t0 = now_ms();
  synod_async_close(w.a, full_window_closed, &w);
  while (!w.closed && now_ms() - t0 < 5000) {
    uv_run(&loop, UV_RUN_ONCE);
  }
  ck_assert_msg(w.closed, "the close did not finish");
  ck_assert_msg(w.closed_ms - t0 < 1000, "the close took %" PRIu64 " ms",
                w.closed_ms - t0);
  ck_assert_int_eq(m->sessions_closed, closed_before + 1);
  ck_assert_int_eq(w.answered, SYNOD_INFLIGHT_MAX); /* each once */
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  synod_client_free(holder);
  mock_stop(m);
}
END_TEST

static Suite *clientlib_suite(void) {
  Suite *s = suite_create("clientlib");
  TCase *tc = tcase_create("pure");
  tcase_add_test(tc, endpoints_parse_lists_with_spaces_and_ipv6);
  tcase_add_test(tc, endpoints_parse_refuses_bad_items_and_names_them);
  tcase_add_test(tc, backoff_stays_in_its_bounds_and_grows);
  tcase_add_test(
      tc, session_clock_reports_jeopardy_at_half_ttl_and_lost_before_ttl);
  tcase_add_test(tc, op_build_checks_names_and_values);
  tcase_add_test(tc, results_copy_status_and_election_info);
  tcase_add_test(tc, key_ops_are_checked_and_built_whole);
  tcase_add_test(tc, key_results_copy_keys_and_values_nul_terminated);
  tcase_add_test(tc, group_ops_are_checked_and_sequenced_like_channel_writes);
  tcase_add_test(tc, group_results_copy_views_and_items_whole);
  tcase_add_test(tc,
                 options_are_checked_and_endpoints_come_from_the_environment);
  tcase_add_test(tc, durations_take_units_and_refuse_garbage);
  tcase_add_test(tc, integers_parse_whole_and_in_range);
  tcase_add_test(tc, json_shapes_are_stable);
  suite_add_tcase(s, tc);
  tc = tcase_create("mock");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, counters_answer_every_operation);
  tcase_add_test(tc,
                 eight_threads_add_through_one_client_exactly_once_under_drops);
  tcase_add_test(tc,
                 locks_are_reentrant_exclusive_and_fifo_with_growing_tokens);
  tcase_add_test(tc, a_follower_redirects_mutations_and_reads_to_the_leader);
  tcase_add_test(tc, no_reachable_endpoint_fails_with_econnect_in_time);
  tcase_add_test(tc, unrenewed_session_reports_jeopardy_then_lost_before_ttl);
  tcase_add_test(tc, server_expiry_event_reports_locks_lost_at_once);
  tcase_add_test(tc, observers_see_every_leader_change);
  tcase_add_test(tc, async_pipelines_within_the_window_and_closes_cleanly);
  tcase_add_test(tc, a_call_after_an_idle_loop_gets_its_whole_timeout);
  tcase_add_test(tc, session_validity_is_read_from_the_clock_not_the_loop);
  tcase_add_test(tc, a_listener_that_never_answers_costs_one_attempt_delay);
  tcase_add_test(tc, a_silent_only_endpoint_fails_after_one_bound_and_says_so);
  tcase_add_test(tc,
                 a_connection_gone_silent_moves_its_request_within_the_bound);
  tcase_add_test(tc, a_fresh_client_waits_little_for_a_silent_endpoint);
  tcase_add_test(tc, a_replica_that_knows_no_leader_is_left_at_once);
  tcase_add_test(tc, a_checkpoint_replaced_at_its_offset_is_read_again_whole);
  tcase_add_test(
      tc, async_checkpoint_read_replaced_at_its_offset_reads_the_new_one);
  tcase_add_test(tc, an_unanswered_keepalive_moves_the_session_before_jeopardy);
  tcase_add_test(
      tc, an_expiry_on_a_silent_connection_answers_an_unresendable_op_once);
  tcase_add_test(
      tc, an_acquire_whose_timeout_callback_closes_the_client_is_answered_once);
  tcase_add_test(
      tc, a_close_behind_a_full_window_of_waiting_acquires_goes_out_at_once);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(clientlib_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
