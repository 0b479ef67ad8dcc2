/* synodctl's pure helpers: ready's decision (tools/ctl_ready.c) on status
 * replies, and key txn's JSON (tools/ctl_key.c): what parses, what is
 * refused and with which message. */
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
  SRunner *r = srunner_create(s);
  srunner_run_all(r, CK_NORMAL);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
