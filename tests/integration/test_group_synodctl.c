/* synodctl group end to end on 3 real synodd processes (issue 23):
 *
 *  - `group join g alpha --on-view HOOK -- SCRIPT`: the script sees the
 *    view in its environment (alpha the coordinator), `group view` and
 *    `group list` show it, the hook ran with the join's view;
 *  - a second join (beta): its script sees two members in join order,
 *    and alpha's hook runs again with that view;
 *  - `group send --to beta` reaches beta only (`group watch --member`
 *    from its offset, text and --json), a send to all reaches both, a
 *    live watch prints what is sent on stdin while it runs;
 *  - SIGTERM to beta's synodctl: its script is stopped, synodctl exits
 *    with the script's status and beta is out of the view as soon as it
 *    has exited (no TTL wait); a script that exits (status 3) leaves too;
 *  - a member name taken: exit 75; unknown group or member: exit 1 with
 *    the reason; bad usage: exit 2 at once, nothing sent;
 *  - a member whose session cannot be renewed (every replica stopped)
 *    is told it was removed: its script gets SIGTERM, exit 76, and the
 *    member is gone from the view once the cluster runs again.
 * Waits are bounded polls of files and views, never sleeps.
 * Exit 77 (skipped) while synodd does not accept --peers. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "synod.h"

static char synodctl[PATH_MAX];
static char dir[PATH_MAX];
static const char *endpoints;

/* Runs `synodctl --endpoints E ARGS` (a shell fragment: "%s" and "%s"
 * are synodctl and the endpoints); returns its exit code, *out its
 * output (stdout and stderr). */
static int ctl(const char *args, char **out) {
  char cmd[8192], path[PATH_MAX + 16];
  snprintf(path, sizeof path, "%s/ctl.out", dir);
  unlink(path);
  int n = snprintf(cmd, sizeof cmd, args, synodctl, endpoints);
  CHECK(n > 0 && (size_t)n < sizeof cmd, "command too long");
  int rv = test_sh(cmd, path, 30000);
  char *text = test_slurp(path);
  if (out != NULL) {
    *out = text;
  } else {
    free(text);
  }
  return rv;
}

/* ctl() that must exit with `code` and print `want` (NULL: anything). */
static void ctl_expect(const char *args, int code, const char *want) {
  char *out;
  int rv = ctl(args, &out);
  CHECK(rv == code && (want == NULL || strstr(out, want) != NULL),
        "%s: exit %d, want %d; output:\n%s\nwanted: %s", args, rv, code, out,
        want ? want : "(anything)");
  free(out);
}

/* ctl_expect whose output must NOT contain `unwanted`. */
static void ctl_expect_not(const char *args, int code, const char *want,
                           const char *unwanted) {
  char *out;
  int rv = ctl(args, &out);
  CHECK(rv == code && strstr(out, want) != NULL &&
            strstr(out, unwanted) == NULL,
        "%s: exit %d, want %d; output:\n%s\nwanted: %s, not %s", args, rv, code,
        out, want, unwanted);
  free(out);
}

#define CTL "'%s' --endpoints %s group "

static void path_of(char *out, size_t len, const char *name) {
  snprintf(out, len, "%s/%s", dir, name);
}

/* Starts `synodctl group join GROUP MEMBER [--ttl TTL] --on-view HOOK --
 * sh -c SCRIPT`: the script writes its SYNOD_ variables to DIR/env-MEMBER
 * (atomically) and waits; the hook appends "VIEW_ID MEMBERS
 * IS_COORDINATOR COORDINATOR" to DIR/hook-MEMBER. synodctl's own output
 * goes to DIR/join-MEMBER.out. */
static pid_t join_spawn(const char *group, const char *member,
                        const char *ttl) {
  static char hook[PATH_MAX * 2], script[PATH_MAX * 4];
  char env[PATH_MAX + 300], hook_out[PATH_MAX + 300], out[PATH_MAX + 300];
  snprintf(env, sizeof env, "%s/env-%s", dir, member);
  snprintf(hook_out, sizeof hook_out, "%s/hook-%s", dir, member);
  snprintf(out, sizeof out, "%s/join-%s.out", dir, member);
  snprintf(hook, sizeof hook,
           "echo \"$SYNOD_VIEW_ID $SYNOD_MEMBERS $SYNOD_IS_COORDINATOR "
           "$SYNOD_COORDINATOR\" >> '%s'",
           hook_out);
  snprintf(script, sizeof script,
           "env | grep '^SYNOD_' | sort > '%s.tmp' && mv '%s.tmp' '%s'; "
           "exec sleep 120",
           env, env, env);
  char *argv[] = {synodctl,       "--endpoints", (char *)endpoints,
                  "group",        "join",        (char *)group,
                  (char *)member, "--data",      "data-of-member",
                  "--ttl",        (char *)ttl,   "--on-view",
                  hook,           "--",          "sh",
                  "-c",           script,        NULL};
  return test_spawn(argv, out);
}

/* The value of VAR in DIR/env-MEMBER, once it is there. */
static void env_expect(const char *member, const char *line) {
  char path[PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/env-%s", dir, member);
  test_wait_file(path, "SYNOD_VIEW_ID=", 20000);
  char *text = test_slurp(path);
  CHECK(strstr(text, line) != NULL, "%s's environment:\n%s\nwanted: %s", member,
        text, line);
  free(text);
}

/* The view of `group` as libsynod reads it, linearizable. */
static int view_get(struct synod_client *cl, const char *group,
                    struct synod_group_info *g) {
  return synod_group_view_get(cl, group, 0, 10000, g);
}

/* Whether `member` is in the current view of `group`. */
static bool in_view(struct synod_client *cl, const char *group,
                    const char *member) {
  struct synod_group_info g;
  if (view_get(cl, group, &g) != 0) {
    return false;
  }
  bool found = false;
  for (size_t i = 0; i < g.view.count; i++) {
    found = found || strcmp(g.view.members[i].name, member) == 0;
  }
  synod_group_info_free(&g);
  return found;
}

/* "OFFSET index N" of a send: the offset. */
static uint64_t send_offset(const char *args) {
  char *out;
  CHECK(ctl(args, &out) == 0, "%s: %s", args, out);
  uint64_t off = strtoull(out, NULL, 10);
  CHECK(off > 0 && strstr(out, " index ") != NULL, "%s printed %s", args, out);
  free(out);
  return off;
}

static struct synod_client *client(const struct cluster *c) {
  struct synod_options o;
  struct synod_client *cl;
  synod_options_init(&o);
  o.endpoints = c->endpoints;
  o.client_name = "test_group_synodctl";
  o.request_timeout_ms = 10000;
  CHECK(synod_client_new(&o, &cl) == 0, "%s", synod_client_errmsg());
  return cl;
}

static pid_t alpha, beta;

/* alpha joins alone; then beta: environments, hooks, view, list. */
static void scenario_join(void) {
  char hook[PATH_MAX + 32];
  alpha = join_spawn("g1", "alpha", "10s");
  env_expect("alpha", "SYNOD_GROUP=g1\n");
  env_expect("alpha", "SYNOD_MEMBER=alpha\n");
  env_expect("alpha", "SYNOD_MEMBERS=alpha\n");
  env_expect("alpha", "SYNOD_COORDINATOR=alpha\n");
  env_expect("alpha", "SYNOD_IS_COORDINATOR=1\n");
  env_expect("alpha", "SYNOD_VIEW_ID=1\n");
  env_expect("alpha", "SYNOD_MEMBER_COUNT=1\n");
  path_of(hook, sizeof hook, "hook-alpha");
  test_wait_file(hook, "1 alpha 1 alpha\n", 10000);
  ctl_expect(CTL "view g1", 0, "* alpha  session ");
  ctl_expect(CTL "view g1", 0, "(coordinator)");
  ctl_expect(CTL "view g1 --json", 0, "\"coordinator\":\"alpha\"");
  ctl_expect(CTL "view g1 --json", 0,
             "\"members\":[{\"name\":\"alpha\",\"data\":\"data-of-member\"");
  ctl_expect(CTL "list", 0, "g1\tview 1\t1 members");
  ctl_expect(CTL "list --json", 0, "\"group\":\"g1\"");

  beta = join_spawn("g1", "beta", "10s");
  env_expect("beta", "SYNOD_MEMBERS=alpha,beta\n");
  env_expect("beta", "SYNOD_IS_COORDINATOR=0\n");
  env_expect("beta", "SYNOD_COORDINATOR=alpha\n");
  env_expect("beta", "SYNOD_VIEW_ID=2\n");
  test_wait_file(hook, "2 alpha,beta 1 alpha\n", 10000);
  path_of(hook, sizeof hook, "hook-beta");
  test_wait_file(hook, "2 alpha,beta 0 alpha\n", 10000);
  ctl_expect(CTL "view g1", 0,
             "view 2 at offset 2, 2 members\n"
             "  * alpha");
  ctl_expect(CTL "view g1", 0, "    beta  session ");
  printf("ok group join: the view in the script's environment, --on-view "
         "on the join and on the next view, group view and list\n");
}

/* Sends to one member and to all; watch --member from history and live. */
static void scenario_send_watch(void) {
  char args[512], out[PATH_MAX + 32], want[512];
  uint64_t to_beta = send_offset(CTL "send g1 --to beta for-beta");
  uint64_t to_all = send_offset(CTL "send g1 'for all'");
  CHECK(to_all == to_beta + 1, "offsets %" PRIu64 " %" PRIu64, to_beta, to_all);
  /* alpha receives the message to all and not beta's. */
  snprintf(args, sizeof args,
           CTL "watch g1 --from %" PRIu64 " --member alpha --count 1", "%s",
           "%s", to_beta);
  snprintf(want, sizeof want, "%" PRIu64 " message from=- to=* for all\n",
           to_all);
  ctl_expect_not(args, 0, want, "for-beta");
  snprintf(args, sizeof args,
           CTL "watch g1 --from %" PRIu64 " --member beta --count 2", "%s",
           "%s", to_beta);
  snprintf(want, sizeof want,
           "%" PRIu64 " message from=- to=beta for-beta\n"
           "%" PRIu64 " message from=- to=* for all\n",
           to_beta, to_all);
  ctl_expect(args, 0, want);
  snprintf(args, sizeof args,
           CTL "watch g1 --from %" PRIu64 " --member beta --count 1 --json",
           "%s", "%s", to_beta);
  snprintf(want, sizeof want, "\"offset\":%" PRIu64 ",\"index\":", to_beta);
  ctl_expect(args, 0, want);
  ctl_expect(args, 0,
             "\"type\":\"message\",\"from\":\"\",\"to\":\"beta\","
             "\"data\":\"for-beta\"}");
  /* The whole stream from 1: the views with their members. */
  ctl_expect(CTL "watch g1 --from 1 --count 2", 0,
             "1 view 1 members=alpha coordinator=alpha joined=alpha\n"
             "2 view 2 members=alpha,beta coordinator=alpha joined=beta\n");

  /* Live: from the next item, what is sent while it runs. */
  path_of(out, sizeof out, "watch-live.out");
  char cmd[PATH_MAX * 2];
  snprintf(cmd, sizeof cmd,
           "exec '%s' --endpoints %s group watch g1 --count 2 --member beta",
           synodctl, endpoints);
  char *argv[] = {"sh", "-c", cmd, NULL};
  pid_t w = test_spawn(argv, out);
  /* It says where it starts (stderr) once it read the view. */
  test_wait_file(out, "group watch: g1 from offset ", 20000);
  uint64_t first = send_offset(CTL "send g1 --to beta live-probe");
  ctl_expect("printf 'line one\\nline two\\n' | " CTL "send g1 -", 0,
             " index ");
  CHECK(test_wait(w, 20000, "group watch --count 2") == 0, "watch exit 0");
  char *text = test_slurp(out);
  snprintf(want, sizeof want,
           "%" PRIu64 " message from=- to=beta live-probe\n%" PRIu64
           " message from=- to=* line one\n",
           first, first + 1);
  CHECK(strstr(text, want) != NULL, "live watch printed:\n%s\nwanted:\n%s",
        text, want);
  free(text);
  printf("ok group send --to reaches that member only, watch --member from "
         "history (text, --json) and live, send from stdin\n");
}

/* Member taken, unknown group or member, bad usage. */
static void scenario_errors(void) {
  ctl_expect(CTL "join g1 alpha -- true 2>&1", 75, "is taken");
  ctl_expect(CTL "view nosuch 2>&1", 1, "SYNOD_ENOTFOUND");
  ctl_expect(CTL "view nosuch 2>&1", 1, "nosuch");
  ctl_expect(CTL "watch nosuch --count 1 2>&1", 1, "SYNOD_ENOTFOUND");
  ctl_expect(CTL "send nosuch hello 2>&1", 1, "SYNOD_ENOTFOUND");
  ctl_expect(CTL "send g1 --to nobody hello 2>&1", 1, "SYNOD_ENOTFOUND");
  ctl_expect(CTL "watch g1 --from 999999 --count 1 2>&1", 1, "SYNOD_ERANGE");

  static const struct {
    const char *args, *says;
  } bad[] = {
      {"", "which subcommand"},
      {"bogus", "unknown subcommand"},
      {"join", "NAME missing"},
      {"join g", "MEMBER missing"},
      {"join g m", "-- CMD missing"},
      {"join g m --", "-- CMD missing"},
      {"join g m --ttl x -- true", "bad argument '--ttl x'"},
      {"join g m --bogus -- true", "bad argument '--bogus"},
      {"view", "which group"},
      {"view a b", "one NAME"},
      {"watch", "watch: NAME"},
      {"watch g --count 0", "watch: NAME"},
      {"watch g --from x", "watch: NAME"},
      {"send g", "send: NAME"},
      {"send", "send: NAME"},
      {"list --limit 0", "list: --after"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char cmd[PATH_MAX * 2], out[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd,
             "'%s' --endpoints 127.0.0.1:1 --timeout 30s group %s 2>&1",
             synodctl, bad[i].args);
    path_of(out, sizeof out, "bad.out");
    unlink(out);
    uint64_t t0 = test_now_ms();
    int code = test_sh(cmd, out, 30000);
    char *text = test_slurp(out);
    CHECK(code == 2 && strstr(text, bad[i].says) != NULL &&
              strstr(text, "usage: synodctl group") != NULL &&
              test_now_ms() - t0 < 5000,
          "group %s: exit %d after %" PRIu64 " ms:\n%s\nwanted: %s",
          bad[i].args, code, test_now_ms() - t0, text, bad[i].says);
    free(text);
  }
  printf("ok group errors: member taken (75), unknown group or member (1), "
         "bad usage (2, nothing sent)\n");
}

/* SIGTERM to beta's synodctl; a script that exits leaves too. */
static void scenario_leave(const struct cluster *c) {
  char hook[PATH_MAX + 32];
  struct synod_client *cl = client(c);
  CHECK(in_view(cl, "g1", "beta"), "beta in the view");
  kill(beta, SIGTERM);
  int code = test_wait(beta, 20000, "join beta after SIGTERM");
  CHECK(code == 128 + SIGTERM,
        "beta's synodctl exit %d, want %d (the "
        "script's)",
        code, 128 + SIGTERM);
  CHECK(!in_view(cl, "g1", "beta"), "beta still in the view after its "
                                    "synodctl exited");
  path_of(hook, sizeof hook, "hook-alpha");
  test_wait_file(hook, "3 alpha 1 alpha\n", 10000);

  ctl_expect(CTL "join g1 gamma -- sh -c 'test \"$SYNOD_MEMBERS\" = "
                 "alpha,gamma && exit 3' 2>&1",
             3, "view ");
  CHECK(!in_view(cl, "g1", "gamma"), "gamma in the view after its script "
                                     "exited");
  /* The whole stream: gamma's join and leave, in order. */
  struct synod_group_info g;
  CHECK(view_get(cl, "g1", &g) == 0, "%s", synod_client_errmsg());
  char args[256];
  snprintf(args, sizeof args,
           CTL "watch g1 --from 1 --count %" PRIu64 " | grep ' view '", "%s",
           "%s", g.next_offset - 1);
  synod_group_info_free(&g);
  ctl_expect(args, 0,
             " view 4 members=alpha,gamma coordinator=alpha joined=gamma\n");
  ctl_expect(args, 0, " view 5 members=alpha coordinator=alpha left=gamma\n");
  synod_client_free(cl);
  printf("ok group join: SIGTERM passed on, exit with the script's status, "
         "out of the view at once; a script that exits leaves\n");
}

/* The session cannot be renewed: removed, script stopped, exit 76. */
static void scenario_lost(struct cluster *c) {
  char out[PATH_MAX + 32];
  kill(alpha, SIGTERM);
  CHECK(test_wait(alpha, 20000, "join alpha") == 128 + SIGTERM, "alpha exit");
  pid_t lost = join_spawn("g2", "delta", "1s");
  env_expect("delta", "SYNOD_MEMBERS=delta\n");
  for (int i = 0; i < c->n; i++) {
    cluster_signal(c, i, SIGSTOP);
  }
  int code = test_wait(lost, 15000, "join with the cluster stopped");
  for (int i = 0; i < c->n; i++) {
    cluster_signal(c, i, SIGCONT);
  }
  path_of(out, sizeof out, "join-delta.out");
  char *text = test_slurp(out);
  CHECK(code == 76 &&
            strstr(text, "member 'delta' of group 'g2' was "
                         "removed") != NULL &&
            strstr(text, "stopping sh") != NULL,
        "exit %d, want 76; printed:\n%s", code, text);
  free(text);
  cluster_wait_leader(c, 30000);
  struct synod_client *cl = client(c);
  uint64_t t0 = test_now_ms();
  while (in_view(cl, "g2", "delta")) {
    CHECK(test_now_ms() - t0 < 15000, "delta still in g2's view");
    usleep(50000);
  }
  synod_client_free(cl);
  printf("ok group join: a session that cannot be renewed: removed, the "
         "script stopped, exit 76, the member gone\n");
}

int main(void) {
  char synodd[PATH_MAX];
  struct cluster c;
  setvbuf(stdout, NULL, _IONBF, 0);
  cluster_synodd_or_skip(synodd, sizeof synodd);
  test_binary("SYNODCTL", "synodctl", synodctl, sizeof synodctl);
  test_tmpdir("group-ctl", dir, sizeof dir);
  cluster_start(&c, 3, synodd);
  cluster_wait_leader(&c, 30000);
  endpoints = c.endpoints;
  scenario_join();
  scenario_send_watch();
  scenario_errors();
  scenario_leave(&c);
  scenario_lost(&c);
  cluster_stop(&c);
  printf("PASS\n");
  return 0;
}
