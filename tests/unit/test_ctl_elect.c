/* synodctl elect's pure parts (tools/ctl_elect.c): its arguments in
 * synodctl's and the leader-elector sidecar's spellings, the --http
 * address, and the fail-closed rule for the name the HTTP answer gives. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

/* Parses a NULL-terminated list of arguments after "elect". */
#define PARSE(a, err, ...)                                                     \
  ({                                                                           \
    char *argv_[] = {"elect", __VA_ARGS__, NULL};                              \
    ctl_elect_args_parse((int)(sizeof argv_ / sizeof argv_[0]) - 1, argv_,     \
                         (a), (err), sizeof(err));                             \
  })

START_TEST(elect_takes_name_value_and_http_positionally) {
  struct ctl_elect_args a;
  char err[128];
  ck_assert_int_eq(PARSE(&a, err, "sched", "pod-a", "--http", "127.0.0.1:4040"),
                   0);
  ck_assert_str_eq(a.name, "sched");
  ck_assert_str_eq(a.value, "pod-a");
  ck_assert_str_eq(a.http, "127.0.0.1:4040");
  ck_assert_ptr_null(a.ignored);
  ck_assert_uint_eq(a.ttl_ms, 0);
  ck_assert_int_eq(PARSE(&a, err, "sched", "pod-a"), 0);
  ck_assert_ptr_null(a.http);
}
END_TEST

START_TEST(elect_takes_the_sidecar_spellings_in_both_forms) {
  struct ctl_elect_args a;
  char err[128];
  ck_assert_int_eq(PARSE(&a, err, "--election=sched", "--http=localhost:4040",
                         "--id=pod-b", "--ttl=5s"),
                   0);
  ck_assert_str_eq(a.name, "sched");
  ck_assert_str_eq(a.value, "pod-b");
  ck_assert_str_eq(a.http, "localhost:4040");
  ck_assert_uint_eq(a.ttl_ms, 5000);
  ck_assert_int_eq(PARSE(&a, err, "--election", "sched", "--id", "pod-b",
                         "--http", ":4040", "--election-namespace=default",
                         "--use-cluster-credentials"),
                   0);
  ck_assert_str_eq(a.name, "sched");
  ck_assert_str_eq(a.value, "pod-b");
  ck_assert_str_eq(a.http, ":4040");
  ck_assert_str_eq(a.ignored, "--use-cluster-credentials");
  /* No --id: the caller picks the host name. */
  ck_assert_int_eq(PARSE(&a, err, "--election=sched"), 0);
  ck_assert_ptr_null(a.value);
}
END_TEST

START_TEST(elect_refuses_twice_given_missing_and_unknown) {
  struct ctl_elect_args a;
  char err[128];
  ck_assert_int_eq(PARSE(&a, err, "sched", "--election=other"), SYNOD_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "given twice"));
  ck_assert_int_eq(PARSE(&a, err, "sched", "pod-a", "--id", "pod-b"),
                   SYNOD_EINVAL);
  ck_assert_int_eq(PARSE(&a, err, "--id=pod-a"), SYNOD_EINVAL);
  ck_assert_str_eq(err, "no election name (NAME or --election)");
  ck_assert_int_eq(PARSE(&a, err, "sched", "--http"), SYNOD_EINVAL);
  ck_assert_str_eq(err, "--http needs a value");
  ck_assert_int_eq(PARSE(&a, err, "sched", "--http="), SYNOD_EINVAL);
  ck_assert_int_eq(PARSE(&a, err, "sched", "--id="), SYNOD_EINVAL);
  ck_assert_int_eq(PARSE(&a, err, "sched", "--bogus"), SYNOD_EINVAL);
  ck_assert_str_eq(err, "unknown option '--bogus'");
  ck_assert_int_eq(PARSE(&a, err, "sched", "a", "b"), SYNOD_EINVAL);
  ck_assert_int_eq(PARSE(&a, err, "sched", "--ttl=soon"), SYNOD_EINVAL);
  /* --election-namespace is a flag of its own, not --election=... */
  ck_assert_int_eq(PARSE(&a, err, "--election-namespace", "ns"), SYNOD_EINVAL);
  ck_assert_str_eq(err, "no election name (NAME or --election)");
}
END_TEST

START_TEST(http_address_maps_go_spellings_to_an_ip) {
  char out[64];
  ck_assert_int_eq(ctl_http_address("localhost:4040", out, sizeof out), 0);
  ck_assert_str_eq(out, "127.0.0.1:4040");
  ck_assert_int_eq(ctl_http_address(":4040", out, sizeof out), 0);
  ck_assert_str_eq(out, "0.0.0.0:4040");
  ck_assert_int_eq(ctl_http_address("10.0.0.7:80", out, sizeof out), 0);
  ck_assert_str_eq(out, "10.0.0.7:80");
  ck_assert_int_eq(ctl_http_address("4040", out, sizeof out), SYNOD_EINVAL);
  ck_assert_int_eq(ctl_http_address("localhost:", out, sizeof out),
                   SYNOD_EINVAL);
  ck_assert_int_eq(ctl_http_address("localhost:4040", out, 8), SYNOD_EINVAL);
}
END_TEST

static struct ctl_elect_view view(const char *leader, uint64_t leader_session,
                                  bool trusted) {
  return (struct ctl_elect_view){.has_leader = leader != NULL,
                                 .leader = leader ? leader : "",
                                 .leader_len = leader ? strlen(leader) : 0,
                                 .leader_session = leader_session,
                                 .own = "pod-a",
                                 .own_len = 5,
                                 .own_session = 7,
                                 .trusted = trusted};
}

static const char *answer(struct ctl_elect_view v) {
  static char out[64];
  const char *p;
  size_t len;
  ctl_elect_answer(&v, &p, &len);
  memcpy(out, p, len);
  out[len] = '\0';
  return out;
}

START_TEST(answer_names_us_only_while_our_trusted_session_leads) {
  ck_assert_str_eq(answer(view("pod-a", 7, true)), "pod-a");
  /* In jeopardy, lost or resigning: fail closed. */
  ck_assert_str_eq(answer(view("pod-a", 7, false)), "");
  /* Our value but another session (this pod's previous synodctl). */
  ck_assert_str_eq(answer(view("pod-a", 3, true)), "");
  /* Before our session opened, nothing is ours. */
  struct ctl_elect_view v = view("pod-a", 0, true);
  v.own_session = 0;
  ck_assert_str_eq(answer(v), "");
}
END_TEST

START_TEST(answer_names_another_leader_and_empty_without_one) {
  ck_assert_str_eq(answer(view("pod-b", 9, true)), "pod-b");
  ck_assert_str_eq(answer(view("pod-b", 9, false)), "pod-b");
  ck_assert_str_eq(answer(view(NULL, 0, true)), "");
  ck_assert_str_eq(answer(view("pod-ab", 9, true)), "pod-ab");
}
END_TEST

int main(void) {
  Suite *s = suite_create("ctl_elect");
  TCase *t = tcase_create("args");
  tcase_add_test(t, elect_takes_name_value_and_http_positionally);
  tcase_add_test(t, elect_takes_the_sidecar_spellings_in_both_forms);
  tcase_add_test(t, elect_refuses_twice_given_missing_and_unknown);
  tcase_add_test(t, http_address_maps_go_spellings_to_an_ip);
  suite_add_tcase(s, t);
  t = tcase_create("answer");
  tcase_add_test(t, answer_names_us_only_while_our_trusted_session_leads);
  tcase_add_test(t, answer_names_another_leader_and_empty_without_one);
  suite_add_tcase(s, t);
  SRunner *r = srunner_create(s);
  srunner_run_all(r, CK_NORMAL);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
