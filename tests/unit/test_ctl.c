/* synodctl's pure helpers: ready's decision (tools/ctl_ready.c) on status
 * replies, key txn's JSON (tools/ctl_key.c): what parses, what is
 * refused and with which message; key watch's lines and JSON; group's
 * environment for join, the members a watch follows, its JSON items. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static struct synod_member members[] = {
    {.name = "synod-0", .voter = true, .role = "leader"},
    {.name = "synod-1", .voter = true, .role = "follower"},
    {.name = "synod-2", .voter = false, .role = "learner"},
};

static struct synod_status status(const char *name, const char *role,
                                  const char *leader, uint64_t commit,
                                  uint64_t applied) {
  struct synod_status st = {.name = (char *)name,
                            .role = (char *)role,
                            .term = 3,
                            .leader_name = (char *)leader,
                            .commit_index = commit,
                            .applied_index = applied,
                            .members = members,
                            .members_count = 3};
  return st;
}

START_TEST(ready_voter_with_a_leader_and_applied_entries) {
  char why[256];
  struct synod_status st = status("synod-1", "follower", "synod-0", 90, 80);
  ck_assert(ctl_ready_check(&st, 64, why, sizeof why));
  ck_assert_str_eq(why, "synod-1 is ready: voter, leader synod-0, applied 80 "
                        "of 90");
  st = status("synod-0", "leader", "", 90, 90);
  ck_assert(ctl_ready_check(&st, 64, why, sizeof why));
}
END_TEST

START_TEST(ready_learner_only_once_caught_up) {
  char why[256];
  struct synod_status st = status("synod-2", "learner", "synod-0", 500, 10);
  ck_assert(!ctl_ready_check(&st, 64, why, sizeof why));
  ck_assert_str_eq(why, "synod-2 (learner) has applied 10 of 500 committed "
                        "entries: 490 behind, over 64");
  st = status("synod-2", "learner", "synod-0", 500, 480);
  ck_assert(ctl_ready_check(&st, 64, why, sizeof why));
  ck_assert_ptr_nonnull(strstr(why, "caught-up learner"));
}
END_TEST

START_TEST(not_ready_without_a_leader_or_outside_the_configuration) {
  char why[256];
  struct synod_status st = status("synod-1", "candidate", "", 9, 9);
  ck_assert(!ctl_ready_check(&st, 64, why, sizeof why));
  ck_assert_str_eq(why, "synod-1 knows no leader (term 3)");
  st = status("synod-3", "follower", "synod-0", 9, 9);
  ck_assert(!ctl_ready_check(&st, 64, why, sizeof why));
  ck_assert_ptr_nonnull(strstr(why, "synod-3 is not a member"));
  st.members_count = 0;
  st.members = NULL;
  ck_assert(!ctl_ready_check(&st, 64, why, sizeof why));
}
END_TEST

/* ----------------------------------------------------- key txn JSON */

static int txn_parse(const char *text, struct ctl_txn *t, char *err) {
  return ctl_txn_parse(text, strlen(text), t, err, 256);
}

START_TEST(txn_json_parses_compares_and_both_branches) {
  struct ctl_txn t;
  char err[256] = "";
  const char *text = "{\"compare\":[{\"key\":\"d/1\",\"mod_revision\":42},"
                     "{\"key\":\"d/2\",\"version\":0},"
                     "{\"key\":\"d/3\",\"value\":\"gw\",\"op\":\"!=\"},"
                     "{\"key\":\"d/4\",\"create_revision\":7,\"op\":\"<\"},"
                     "{\"key\":\"d/5\",\"session\":9,\"op\":\">\"}],"
                     "\"success\":[{\"put\":\"d/1\",\"value\":\"gw-b\","
                     "\"session_bound\":true,\"prev\":true},"
                     "{\"get\":\"d/1\"},{\"del\":\"d/old/\",\"prefix\":true}],"
                     "\"failure\":[{\"del\":\"d/1\",\"prev\":true}]}";
  ck_assert_int_eq(txn_parse(text, &t, err), 0);
  ck_assert_uint_eq(t.txn.compares_n, 5);
  ck_assert_str_eq(t.txn.compares[0].key, "d/1");
  ck_assert_int_eq(t.txn.compares[0].target, SYNOD_KEY_MOD_REVISION);
  ck_assert_int_eq(t.txn.compares[0].op, SYNOD_KEY_EQUAL);
  ck_assert_uint_eq(t.txn.compares[0].number, 42);
  ck_assert_int_eq(t.txn.compares[1].target, SYNOD_KEY_VERSION);
  ck_assert_uint_eq(t.txn.compares[1].number, 0);
  ck_assert_int_eq(t.txn.compares[2].target, SYNOD_KEY_VALUE);
  ck_assert_int_eq(t.txn.compares[2].op, SYNOD_KEY_NOT_EQUAL);
  ck_assert_uint_eq(t.txn.compares[2].value_len, 2);
  ck_assert_int_eq(memcmp(t.txn.compares[2].value, "gw", 2), 0);
  ck_assert_int_eq(t.txn.compares[3].target, SYNOD_KEY_CREATE_REVISION);
  ck_assert_int_eq(t.txn.compares[3].op, SYNOD_KEY_LESS);
  ck_assert_int_eq(t.txn.compares[4].target, SYNOD_KEY_SESSION);
  ck_assert_int_eq(t.txn.compares[4].op, SYNOD_KEY_GREATER);
  ck_assert_uint_eq(t.txn.success_n, 3);
  ck_assert_int_eq(t.txn.success[0].type, SYNOD_KEY_OP_PUT);
  ck_assert_str_eq(t.txn.success[0].key, "d/1");
  ck_assert_uint_eq(t.txn.success[0].value_len, 4);
  ck_assert_uint_eq(t.txn.success[0].flags,
                    SYNOD_KEY_SESSION_BOUND | SYNOD_KEY_PREV);
  ck_assert_int_eq(t.txn.success[1].type, SYNOD_KEY_OP_GET);
  ck_assert_int_eq(t.txn.success[2].type, SYNOD_KEY_OP_DELETE);
  ck_assert_uint_eq(t.txn.success[2].flags, SYNOD_KEY_PREFIX);
  ck_assert_uint_eq(t.txn.failure_n, 1);
  ck_assert_uint_eq(t.txn.failure[0].flags, SYNOD_KEY_PREV);
  ck_assert(ctl_txn_binds(&t));
  ctl_txn_free(&t);
}
END_TEST

START_TEST(txn_json_values_keep_their_bytes) {
  struct ctl_txn t;
  char err[256] = "";
  ck_assert_int_eq(
      txn_parse("{\"success\":[{\"put\":\"k\",\"value\":\"a\\u0000b\"}]}", &t,
                err),
      0);
  ck_assert_uint_eq(t.txn.success[0].value_len, 3);
  ck_assert_int_eq(memcmp(t.txn.success[0].value, "a\0b", 3), 0);
  ck_assert(!ctl_txn_binds(&t));
  ctl_txn_free(&t);
}
END_TEST

/* Each bad transaction is refused with a message naming the place. */
START_TEST(txn_json_bad_input_names_the_place) {
  static const struct {
    const char *text, *want;
  } bad[] = {
      {"", "line 1"},
      {"[1]", "a transaction is an object"},
      {"{\"success\":[{\"put\":\"k\",\"value\":\"v\"}", "line"},
      {"{\"succes\":[]}", "unknown field \"succes\""},
      {"{\"success\":[]}", "no operations"},
      {"{\"success\":{}}", "\"success\" must be an array"},
      {"{\"success\":[{\"put\":\"k\"}]}", "success[0]: \"value\" is missing"},
      {"{\"success\":[{\"put\":\"k\",\"value\":1}]}",
       "success[0]: \"value\" must be a string"},
      {"{\"success\":[{\"get\":\"k\",\"prefix\":true}]}",
       "success[0]: unknown field \"prefix\""},
      {"{\"failure\":[{\"del\":\"k\",\"prefix\":\"yes\"}]}",
       "failure[0]: \"prefix\" must be true or false"},
      {"{\"success\":[{\"nop\":\"k\"}]}", "needs \"put\", \"get\" or \"del\""},
      {"{\"compare\":[{\"key\":\"k\"}],\"success\":[{\"get\":\"k\"}]}",
       "compare[0]: needs one of"},
      {"{\"compare\":[{\"key\":\"k\",\"version\":1,\"value\":\"v\"}],"
       "\"success\":[{\"get\":\"k\"}]}",
       "takes only one"},
      {"{\"compare\":[{\"key\":\"k\",\"version\":-1}],"
       "\"success\":[{\"get\":\"k\"}]}",
       "integer >= 0"},
      {"{\"compare\":[{\"key\":\"k\",\"version\":1,\"op\":\"~\"}],"
       "\"success\":[{\"get\":\"k\"}]}",
       "op \"~\""},
      {"{\"compare\":[{\"version\":1}],\"success\":[{\"get\":\"k\"}]}",
       "compare[0]: \"key\" is missing"},
      {"{\"success\":[{\"get\":\"a\\u0000b\"}]}", "holds a NUL"},
      {"{\"success\":[{\"get\":\"k\"}],\"success\":[]}", "duplicate"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct ctl_txn t;
    char err[256] = "";
    ck_assert_msg(txn_parse(bad[i].text, &t, err) == SYNOD_EINVAL, "%s",
                  bad[i].text);
    ck_assert_msg(strstr(err, bad[i].want) != NULL, "%s: '%s', want '%s'",
                  bad[i].text, err, bad[i].want);
    ck_assert_ptr_null(t.root); /* freed */
  }
}
END_TEST

START_TEST(txn_json_over_the_bound_is_refused) {
  char text[8192] = "{\"success\":[";
  for (int i = 0; i <= SYNOD_KEY_TXN_OPS_MAX; i++) {
    strcat(text, i ? ",{\"get\":\"k\"}" : "{\"get\":\"k\"}");
  }
  strcat(text, "]}");
  struct ctl_txn t;
  char err[256] = "";
  ck_assert_int_eq(txn_parse(text, &t, err), SYNOD_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "65 entries; at most 64"));
}
END_TEST

START_TEST(kv_json_gives_binary_values_in_base64) {
  struct synod_kv kv = {.key = "k",
                        .key_len = 1,
                        .value = (uint8_t *)"\xff\xfe",
                        .value_len = 2,
                        .version = 3};
  json_t *o = ctl_kv_json(&kv, true);
  ck_assert_ptr_null(json_object_get(o, "value"));
  ck_assert_str_eq(json_string_value(json_object_get(o, "value_base64")),
                   "//4=");
  ck_assert_int_eq(json_integer_value(json_object_get(o, "version")), 3);
  json_decref(o);
}
END_TEST

START_TEST(escape_keeps_utf8_and_escapes_the_rest) {
  /* A tab, a newline, a backslash, C0 and DEL, a C1 control (U+0085),
   * a byte that is not UTF-8, and a sequence cut short at the end. */
  const char in[] = "caf\xc3\xa9 a\tb\nc\\d\x01\x7f\xc2\x85\xff\xe2\x82";
  char out[4 * sizeof in + 1];
  ctl_escape(out, in, sizeof in - 1);
  ck_assert_str_eq(out, "caf\xc3\xa9 a\\tb\\nc\\\\d\\x01\\x7f\\xc2\\x85"
                        "\\xff\\xe2\\x82");
  ctl_escape(out, "\xe2\x82\xac\r", 4); /* the euro sign, kept */
  ck_assert_str_eq(out, "\xe2\x82\xac\\r");
  ctl_escape(out, "", 0);
  ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(key_event_json_gives_put_delete_and_prev) {
  struct synod_key_event put = {.revision = 9,
                                .event = 2,
                                .kv = {.key = "devices/d1",
                                       .key_len = 10,
                                       .value = (uint8_t *)"gw-b",
                                       .value_len = 4,
                                       .create_revision = 3,
                                       .mod_revision = 9,
                                       .version = 2,
                                       .session_id = 7},
                                .has_prev = true,
                                .prev = {.key = "devices/d1",
                                         .key_len = 10,
                                         .value = (uint8_t *)"\xff",
                                         .value_len = 1,
                                         .mod_revision = 3}};
  json_t *o = ctl_key_event_json(&put);
  char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(o);
  ck_assert_str_eq(
      s, "{\"revision\":9,\"event\":2,\"type\":\"put\",\"key\":"
         "\"devices/d1\",\"value\":\"gw-b\",\"create_revision\":3,"
         "\"mod_revision\":9,\"version\":2,\"session_id\":7,\"prev\":{"
         "\"key\":\"devices/d1\",\"value_base64\":\"/w==\","
         "\"create_revision\":0,\"mod_revision\":3,\"version\":0,"
         "\"session_id\":0}}");
  free(s);
  struct synod_key_event del = {.revision = 10,
                                .event = 1,
                                .deleted = true,
                                .kv = {.key = "devices/d1", .key_len = 10}};
  o = ctl_key_event_json(&del);
  s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(o);
  ck_assert_str_eq(s, "{\"revision\":10,\"event\":1,\"type\":\"delete\","
                      "\"key\":\"devices/d1\"}");
  free(s);
}
END_TEST

/* ------------------------------------------------------- group helpers */

static struct synod_group_member gm[] = {
    {.name = "gw-a",
     .data = (uint8_t *)"a:7000",
     .data_len = 6,
     .session_id = 4,
     .joined_offset = 1},
    {.name = "gw-b",
     .data = (uint8_t *)"\xff",
     .data_len = 1,
     .session_id = 5,
     .joined_offset = 2},
};

static bool env_has(char **env, const char *kv) {
  for (size_t i = 0; env[i] != NULL; i++) {
    if (strcmp(env[i], kv) == 0) {
      return true;
    }
  }
  return false;
}

START_TEST(group_env_gives_the_view_and_whether_we_coordinate) {
  struct synod_group_view v = {
      .view_id = 7, .offset = 12, .members = gm, .count = 2};
  char **env = ctl_group_env("web", "gw-b", &v);
  ck_assert(env_has(env, "SYNOD_GROUP=web"));
  ck_assert(env_has(env, "SYNOD_MEMBER=gw-b"));
  ck_assert(env_has(env, "SYNOD_VIEW_ID=7"));
  ck_assert(env_has(env, "SYNOD_VIEW_OFFSET=12"));
  ck_assert(env_has(env, "SYNOD_MEMBER_COUNT=2"));
  ck_assert(env_has(env, "SYNOD_MEMBERS=gw-a,gw-b"));
  ck_assert(env_has(env, "SYNOD_COORDINATOR=gw-a"));
  ck_assert(env_has(env, "SYNOD_IS_COORDINATOR=0"));
  ctl_group_env_free(env);
  env = ctl_group_env("web", "gw-a", &v);
  ck_assert(env_has(env, "SYNOD_IS_COORDINATOR=1"));
  ctl_group_env_free(env);
  v.count = 0; /* no members: empty lists, not coordinator */
  env = ctl_group_env("web", "gw-a", &v);
  ck_assert(env_has(env, "SYNOD_MEMBERS="));
  ck_assert(env_has(env, "SYNOD_COORDINATOR="));
  ck_assert(env_has(env, "SYNOD_IS_COORDINATOR=0"));
  ctl_group_env_free(env);
}
END_TEST

START_TEST(group_members_follow_views_from_a_known_one) {
  struct ctl_group_members m = {0};
  char *left[] = {"gw-a"};
  struct synod_group_item join_b = {.type = SYNOD_GROUP_ITEM_VIEW,
                                    .view_id = 5,
                                    .joined = &gm[1],
                                    .joined_n = 1,
                                    .members = 2};
  struct synod_group_item leave_a = {.type = SYNOD_GROUP_ITEM_VIEW,
                                     .view_id = 6,
                                     .left = left,
                                     .left_n = 1,
                                     .members = 1};
  /* Unknown until set: a change alone says nothing of the rest. */
  ck_assert_int_eq(ctl_group_members_apply(&m, &join_b), 0);
  ck_assert(!m.known);
  struct synod_group_view v = {.view_id = 4, .members = gm, .count = 1};
  ck_assert_int_eq(ctl_group_members_set(&m, &v), 0);
  ck_assert_int_eq(ctl_group_members_apply(&m, &join_b), 0);
  ck_assert(m.known);
  ck_assert_int_eq(m.n, 2);
  ck_assert_str_eq(m.names[1], "gw-b");
  ck_assert_int_eq(ctl_group_members_apply(&m, &leave_a), 0);
  ck_assert_int_eq(m.n, 1);
  ck_assert_str_eq(m.names[0], "gw-b");
  /* A change whose count disagrees: forgotten, not printed wrong. */
  ck_assert_int_eq(ctl_group_members_apply(&m, &join_b), 0);
  ck_assert(m.known);
  join_b.members = 7;
  ck_assert_int_eq(ctl_group_members_apply(&m, &join_b), 0);
  ck_assert(!m.known);
  /* View 1 is a group's first: it starts from nobody. */
  struct synod_group_item first = {.type = SYNOD_GROUP_ITEM_VIEW,
                                   .view_id = 1,
                                   .joined = gm,
                                   .joined_n = 1,
                                   .members = 1};
  ck_assert_int_eq(ctl_group_members_apply(&m, &first), 0);
  ck_assert(m.known);
  ck_assert_int_eq(m.n, 1);
  ck_assert_str_eq(m.names[0], "gw-a");
  ctl_group_members_free(&m);
}
END_TEST

static char *item_text(const struct synod_group_item *it,
                       const struct ctl_group_members *m) {
  json_t *o = ctl_group_item_json("web", it, m);
  char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(o);
  return s;
}

START_TEST(group_item_json_by_type) {
  struct synod_group_item msg = {.type = SYNOD_GROUP_ITEM_MESSAGE,
                                 .offset = 9,
                                 .index = 40,
                                 .time_ms = 1000,
                                 .from = "",
                                 .to = "gw-b",
                                 .data = "\xfe",
                                 .len = 1};
  char *s = item_text(&msg, NULL);
  ck_assert_str_eq(s, "{\"group\":\"web\",\"offset\":9,\"index\":40,"
                      "\"time_ms\":1000,\"type\":\"message\",\"from\":\"\","
                      "\"to\":\"gw-b\",\"data_base64\":\"/g==\"}");
  free(s);
  struct synod_group_item view = {.type = SYNOD_GROUP_ITEM_VIEW,
                                  .offset = 2,
                                  .view_id = 2,
                                  .joined = &gm[1],
                                  .joined_n = 1,
                                  .members = 2};
  s = item_text(&view, NULL);
  ck_assert_str_eq(s, "{\"group\":\"web\",\"offset\":2,\"index\":0,"
                      "\"time_ms\":0,\"type\":\"view\",\"view_id\":2,"
                      "\"joined\":[{\"name\":\"gw-b\",\"data_base64\":"
                      "\"/w==\",\"session\":5,\"joined_offset\":2}],"
                      "\"left\":[],\"member_count\":2,\"coordinator\":null,"
                      "\"members\":null}");
  free(s);
  char *names[] = {"gw-a", "gw-b"};
  struct ctl_group_members m = {.known = true, .names = names, .n = 2};
  s = item_text(&view, &m);
  ck_assert_ptr_nonnull(
      strstr(s, "\"coordinator\":\"gw-a\",\"members\":[\"gw-a\",\"gw-b\"]}"));
  free(s);
  struct synod_group_item req = {.type = SYNOD_GROUP_ITEM_STATE_REQUEST,
                                 .offset = 3,
                                 .to = "gw-a",
                                 .member = "gw-b"};
  s = item_text(&req, NULL);
  ck_assert_ptr_nonnull(strstr(
      s, "\"type\":\"state_request\",\"to\":\"gw-a\",\"member\":\"gw-b\"}"));
  free(s);
}
END_TEST

int main(void) {
  Suite *s = suite_create("ctl");
  TCase *t = tcase_create("ready");
  tcase_add_test(t, ready_voter_with_a_leader_and_applied_entries);
  tcase_add_test(t, ready_learner_only_once_caught_up);
  tcase_add_test(t, not_ready_without_a_leader_or_outside_the_configuration);
  suite_add_tcase(s, t);
  t = tcase_create("key_txn_json");
  tcase_add_test(t, txn_json_parses_compares_and_both_branches);
  tcase_add_test(t, txn_json_values_keep_their_bytes);
  tcase_add_test(t, txn_json_bad_input_names_the_place);
  tcase_add_test(t, txn_json_over_the_bound_is_refused);
  tcase_add_test(t, kv_json_gives_binary_values_in_base64);
  suite_add_tcase(s, t);
  t = tcase_create("key_watch_output");
  tcase_add_test(t, escape_keeps_utf8_and_escapes_the_rest);
  tcase_add_test(t, key_event_json_gives_put_delete_and_prev);
  suite_add_tcase(s, t);
  t = tcase_create("group");
  tcase_add_test(t, group_env_gives_the_view_and_whether_we_coordinate);
  tcase_add_test(t, group_members_follow_views_from_a_known_one);
  tcase_add_test(t, group_item_json_by_type);
  suite_add_tcase(s, t);
  SRunner *r = srunner_create(s);
  srunner_run_all(r, CK_NORMAL);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
