/* synodctl ready's decision (tools/ctl_ready.c) on status replies: who is
 * ready for a readinessProbe and what the one-line reason says. */
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

int main(void) {
  Suite *s = suite_create("ctl");
  TCase *t = tcase_create("ready");
  tcase_add_test(t, ready_voter_with_a_leader_and_applied_entries);
  tcase_add_test(t, ready_learner_only_once_caught_up);
  tcase_add_test(t, not_ready_without_a_leader_or_outside_the_configuration);
  suite_add_tcase(s, t);
  SRunner *r = srunner_create(s);
  srunner_run_all(r, CK_NORMAL);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
