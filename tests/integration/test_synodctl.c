/* synodctl end to end: counters, `lock` from two shells never overlapping
 * with growing fencing tokens, `lock --try` busy, `once` from three
 * "replicas" running once, elect/observe/leader, status (text and --json),
 * subscribe (--count, --json, --cursor across runs and SIGTERM) and
 * channel cursor,
 * (mock only) a lost lock stopping its command with exit 76, and (cluster
 * only) `synodctl dev` starting and stopping a cluster of its own.
 *
 *   test_synodctl mock      against mock_synodd (one fake replica)
 *   test_synodctl cluster   against 3 real synodd (exit 77 = skipped while
 *                           synodd does not accept --peers) */
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "synod.h"

/* snprintf that fails the test instead of truncating a command line. */
static void fmt(char *out, size_t len, const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  int n = vsnprintf(out, len, f, ap);
  va_end(ap);
  CHECK(n >= 0 && (size_t)n < len, "formatted text too long");
}

static char synodctl[PATH_MAX];
static char endpoints[256];
static char dir[PATH_MAX];

/* Runs synodctl with ARGS (a shell fragment); output to dir/NAME. */
static int ctl(const char *name, const char *args, char **out) {
  char cmd[4096], path[PATH_MAX + 64];
  fmt(path, sizeof path, "%s/%s", dir, name);
  unlink(path);
  fmt(cmd, sizeof cmd, "'%s' --endpoints %s %s", synodctl, endpoints, args);
  int rv = test_sh(cmd, path, 30000);
  if (out != NULL) {
    *out = test_slurp(path);
  }
  return rv;
}

static pid_t ctl_bg(const char *name, const char *args) {
  char cmd[4096], path[PATH_MAX + 64];
  fmt(path, sizeof path, "%s/%s", dir, name);
  unlink(path);
  fmt(cmd, sizeof cmd, "exec '%s' --endpoints %s %s", synodctl, endpoints,
      args);
  char *argv[] = {"sh", "-c", cmd, NULL};
  return test_spawn(argv, path);
}

static void path_in(const char *name, char *out, size_t len) {
  fmt(out, len, "%s/%s", dir, name);
}

/* Runs synodctl ARGS: it must exit 0 and print exactly `want`. */
static void ctl_expect(const char *name, const char *args, const char *want) {
  char *out;
  CHECK(ctl(name, args, &out) == 0, "synodctl %s: %s", args, out);
  CHECK(strcmp(out, want) == 0, "synodctl %s printed '%s', want '%s'", args,
        out, want);
  free(out);
}

/* Like ctl_expect, for output that starts with `want`. */
static void ctl_expect_start(const char *name, const char *args,
                             const char *want) {
  char *out;
  CHECK(ctl(name, args, &out) == 0, "synodctl %s: %s", args, out);
  CHECK(strncmp(out, want, strlen(want)) == 0,
        "synodctl %s printed '%s', want '%s...'", args, out, want);
  free(out);
}

static void scenario_counters(void) {
  char *out;
  ctl_expect("c1", "counter set c 5", "5\n");
  ctl_expect("c2", "counter add c 2", "7\n");
  ctl_expect("c3", "--json counter get c", "{\"name\":\"c\",\"value\":7}\n");
  CHECK(ctl("c4", "counter cas c 1 9", &out) == 75, "cas mismatch: %s", out);
  free(out);
  ctl_expect("c5", "counter cas c 7 9", "9\n");
  CHECK(ctl("c6", "counter bogus c", NULL) == 2, "usage error expected");
  ctl_expect("c7", "counter set c2 3", "3\n");
  ctl_expect("c8", "counter list c", "c\t9\nc2\t3\n");
  ctl_expect("c9", "counter delete c2", "deleted\n");
  ctl_expect("c10", "counter delete c2", "did not exist\n");
  CHECK(ctl("c11", "--json counter list c", &out) == 0, "%s", out);
  CHECK(strstr(out, "\"c2\"") == NULL && strstr(out, "\"c\"") != NULL,
        "list after the delete: %s", out);
  free(out);
  printf("ok counters (get set add cas delete list)\n");
}

/* Two shells each run three locked commands that log start and end with
 * their token; the intervals must not overlap and tokens must grow. */
static void scenario_lock_never_overlaps(void) {
  char log[PATH_MAX + 16], args[2048];
  pid_t a, b;
  path_in("lock.log", log, sizeof log);
  fmt(args, sizeof args,
      "lock L -- sh -c 'echo \"start $(date +%%s%%N) "
      "$SYNOD_LOCK_TOKEN\" >> %s; sleep 0.2; echo \"end $(date +%%s%%N)\""
      " >> %s'",
      log, log);
  char loop[4096];
  fmt(loop, sizeof loop,
      "for i in 1 2 3; do '%s' --endpoints %s %s || exit 1; done", synodctl,
      endpoints, args);
  char *argv[] = {"sh", "-c", loop, NULL};
  a = test_spawn(argv, NULL);
  b = test_spawn(argv, NULL);
  CHECK(test_wait(a, 60000, "shell a") == 0, "shell a failed");
  CHECK(test_wait(b, 60000, "shell b") == 0, "shell b failed");
  char *text = test_slurp(log), *save = NULL;
  uint64_t last_end = 0, last_token = 0;
  int starts = 0;
  bool open = false;
  for (char *line = strtok_r(text, "\n", &save); line != NULL;
       line = strtok_r(NULL, "\n", &save)) {
    uint64_t t, token;
    if (sscanf(line, "start %" SCNu64 " %" SCNu64, &t, &token) == 2) {
      CHECK(!open, "a command started while another held the lock");
      CHECK(t >= last_end, "start %" PRIu64 " before the last end", t);
      CHECK(token > last_token, "token %" PRIu64 " after %" PRIu64, token,
            last_token);
      last_token = token;
      open = true;
      starts++;
    } else {
      CHECK(sscanf(line, "end %" SCNu64, &t) == 1 && open, "bad line '%s'",
            line);
      last_end = t;
      open = false;
    }
  }
  CHECK(starts == 6 && !open, "%d runs logged", starts);
  free(text);
  printf("ok lock never overlaps, tokens grow\n");
}

static void scenario_lock_try_busy(void) {
  char ready[PATH_MAX + 16], go[PATH_MAX + 16], args[2048];
  path_in("held", ready, sizeof ready);
  path_in("go", go, sizeof go);
  fmt(args, sizeof args,
      "lock T -- sh -c 'echo held > %s; while [ ! -e %s ]; do sleep "
      "0.02; done'",
      ready, go);
  pid_t holder = ctl_bg("holder.out", args);
  test_wait_file(ready, "held", 20000);
  CHECK(ctl("try", "lock T --try -- true", NULL) == 75, "--try on held lock");
  CHECK(ctl("to", "lock T --timeout 300ms -- true", NULL) == 75,
        "--timeout on held lock");
  FILE *f = fopen(go, "w");
  fclose(f);
  CHECK(test_wait(holder, 20000, "holder") == 0, "holder failed");
  CHECK(ctl("try2", "lock T --try -- sh -c 'exit 3'", NULL) == 3,
        "CMD's status passes through");
  printf("ok lock --try busy = 75, CMD status passed on\n");
}

static void scenario_once(void) {
  char ran[PATH_MAX + 16], args[1024];
  pid_t p[3];
  int zeros = 0, taken = 0;
  path_in("ran", ran, sizeof ran);
  fmt(args, sizeof args, "once nightly 202611211730 -- sh -c 'echo ran >> %s'",
      ran);
  for (int i = 0; i < 3; i++) {
    char name[16];
    fmt(name, sizeof name, "once%d", i);
    p[i] = ctl_bg(name, args);
  }
  for (int i = 0; i < 3; i++) {
    int rv = test_wait(p[i], 30000, "once");
    zeros += rv == 0;
    taken += rv == 75;
  }
  char *text = test_slurp(ran);
  CHECK(strcmp(text, "ran\n") == 0 && zeros == 1 && taken == 2,
        "ran '%s', %d ran, %d taken", text, zeros, taken);
  free(text);
  fmt(args, sizeof args, "once nightly 202611211731 -- sh -c 'echo ran >> %s'",
      ran);
  CHECK(ctl("once-next", args, NULL) == 0, "the next slot runs");
  fmt(args, sizeof args, "once nightly 202611211730 -- sh -c 'echo ran >> %s'",
      ran);
  CHECK(ctl("once-old", args, NULL) == 75, "an old slot does not run");
  text = test_slurp(ran);
  CHECK(strcmp(text, "ran\nran\n") == 0, "ran '%s'", text);
  free(text);
  printf("ok once runs once per slot\n");
}

static void scenario_elections(void) {
  char o[PATH_MAX + 16], l1[PATH_MAX + 16], l2[PATH_MAX + 16];
  char *out;
  path_in("observe.out", o, sizeof o);
  path_in("elect1.out", l1, sizeof l1);
  path_in("elect2.out", l2, sizeof l2);
  CHECK(ctl("leader0", "leader E", NULL) == 75, "no leader yet");
  pid_t obs = ctl_bg("observe.out", "observe E");
  test_wait_file(o, "no leader", 20000);
  pid_t e1 = ctl_bg("elect1.out", "elect E pod-a");
  test_wait_file(l1, "leader: E (pod-a)", 20000);
  test_wait_file(o, "leader=pod-a", 20000);
  CHECK(ctl("leader1", "leader E", &out) == 0, "%s", out);
  CHECK(strstr(out, "leader=pod-a") != NULL, "leader printed '%s'", out);
  free(out);
  pid_t e2 = ctl_bg("elect2.out", "elect E pod-b");
  test_wait_file(l2, "candidate: E (pod-b)", 20000);
  kill(e1, SIGTERM);
  CHECK(test_wait(e1, 20000, "elect pod-a") == 0, "elect exit");
  test_wait_file(l2, "leader: E (pod-b)", 20000);
  test_wait_file(o, "leader=pod-b", 20000);
  kill(e2, SIGTERM);
  CHECK(test_wait(e2, 20000, "elect pod-b") == 0, "elect exit");
  char *text = test_slurp(o);
  const char *after = strstr(text, "leader=pod-b");
  free(text);
  CHECK(after != NULL, "observe saw pod-b");
  kill(obs, SIGTERM);
  CHECK(test_wait(obs, 20000, "observe") == 0, "observe exit");
  text = test_slurp(o);
  CHECK(strstr(strstr(text, "leader=pod-b"), "no leader") != NULL,
        "observe did not see the resign: '%s'", text);
  free(text);
  printf("ok elect, observe, leader\n");
}

static void scenario_status_json(void) {
  char *out;
  CHECK(ctl("status", "status --json", &out) == 0, "%s", out);
  CHECK(strstr(out, "\"role\":\"leader\"") != NULL, "status: %s", out);
  free(out);
  CHECK(ctl("status-text", "status", &out) == 0, "%s", out);
  CHECK(strstr(out, "ENDPOINT") != NULL && strstr(out, "leader") != NULL,
        "human-readable status: %s", out);
  free(out);
  printf("ok status and status --json\n");
}

/* subscribe prints each message once; with --cursor a run goes on after
 * the last message the previous run printed (committed before exiting,
 * also on SIGTERM); channel cursor gets and sets the cursor. */
static void scenario_subscribe(void) {
  char *out, t[PATH_MAX + 16];
  ctl_expect_start("p1", "publish subs s1 s2 s3 s4 s5", "1 5 index ");
  ctl_expect("s1", "subscribe subs --from first --count 3", "s1\ns2\ns3\n");
  CHECK(ctl("s2", "--json subscribe subs --from 4 --count 1", &out) == 0, "%s",
        out);
  CHECK(strncmp(out, "{\"channel\":\"subs\",\"offset\":4,\"index\":", 35) ==
                0 &&
            strstr(out, ",\"data\":\"s4\"}\n") != NULL,
        "subscribe --json printed '%s'", out);
  free(out);
  /* Live: from the next publish's offset, so the start cannot miss it. */
  pid_t live = ctl_bg("s3", "subscribe subs --from 6 --count 2");
  ctl_expect_start("p2", "publish subs s6 s7", "6 7 index ");
  CHECK(test_wait(live, 20000, "subscribe --count 2") == 0, "live exit");
  path_in("s3", t, sizeof t);
  out = test_slurp(t);
  CHECK(strcmp(out, "s6\ns7\n") == 0, "live subscribe printed '%s'", out);
  free(out);
  /* A cursor: a new one starts at the first; each run after the last. */
  ctl_expect("s4", "subscribe subs --cursor c1 --count 2", "s1\ns2\n");
  ctl_expect_start("s5", "channel cursor subs c1", "2 index ");
  ctl_expect("s6", "subscribe subs --cursor c1 --count 2", "s3\ns4\n");
  ctl_expect_start("s7", "channel cursor subs c1 0", "0 index ");
  ctl_expect("s8", "subscribe subs --cursor c1 --count 1", "s1\n");
  CHECK(ctl("s9", "channel cursor subs nope", &out) == 1 &&
            strstr(out, "SYNOD_ENOTFOUND") != NULL,
        "missing cursor: '%s'", out);
  free(out);
  /* SIGTERM: what was printed is committed before it exits. */
  path_in("s10", t, sizeof t);
  pid_t term = ctl_bg("s10", "subscribe subs --cursor c2");
  test_wait_file(t, "s7\n", 20000);
  kill(term, SIGTERM);
  CHECK(test_wait(term, 20000, "subscribe until SIGTERM") == 0, "term exit");
  ctl_expect_start("s11", "channel cursor subs c2", "7 index ");
  CHECK(ctl("s12", "subscribe", NULL) == 2, "usage error expected");
  CHECK(ctl("s13", "subscribe subs --prefix --cursor c", NULL) == 2,
        "a cursor on a prefix is a usage error");
  printf("ok subscribe (--count, --json, --cursor, SIGTERM), channel cursor\n");
}

/* subscribe --cursor: the channel deleted under it and created again
 * while it could not look (stopped): it ends, and what it printed is not
 * committed into the new channel of the name, whose next run would skip
 * as many of its messages (found by review). A real cluster only: the
 * mock does not end subscriptions on a delete. */
static void scenario_subscribe_deleted(void) {
  char *out, t[PATH_MAX + 16];
  ctl_expect_start("d1", "publish gone g1 g2", "1 2 index ");
  path_in("d2", t, sizeof t);
  pid_t del = ctl_bg("d2", "subscribe gone --from first --cursor c3");
  test_wait_file(t, "g2\n", 20000);
  kill(del, SIGSTOP);
  CHECK(ctl("d3", "channel delete gone", &out) == 0, "delete: %s", out);
  free(out);
  ctl_expect_start("d4", "publish gone n1 n2 n3", "1 3 index ");
  kill(del, SIGCONT);
  CHECK(test_wait(del, 20000, "subscribe of a deleted channel") == 1,
        "a deleted channel ends the subscription with exit 1");
  CHECK(ctl("d5", "channel cursor gone c3", &out) == 1 &&
            strstr(out, "SYNOD_ENOTFOUND") != NULL,
        "the cursor of the deleted channel landed in the new one: '%s'", out);
  free(out);
  printf("ok subscribe --cursor of a channel deleted and created again\n");
}

/* `synodctl dev` (what `make run` starts): three replicas, the banner
 * with their endpoints, a counter through them, Ctrl-C stops them all. */
static void scenario_dev(const char *synodd) {
  struct cluster c;
  char cmd[4096], out[PATH_MAX + 16], want[512];
  cluster_init(&c, 3, synodd); /* ports and a directory; starts nothing */
  unsigned base = (unsigned)atoi(strrchr(c.nodes[0].client, ':') + 1);
  fmt(out, sizeof out, "%s/dev.out", dir);
  fmt(cmd, sizeof cmd,
      "exec '%s' dev --replicas 3 --dir '%s/dev' --base-port %u", synodctl,
      c.dir, base);
  char *argv[] = {"sh", "-c", cmd, NULL};
  pid_t dev = test_spawn(argv, out);
  test_wait_file(out, "Ctrl-C stops the cluster.", 60000);
  char *text = test_slurp(out);
  fmt(want, sizeof want, "export SYNOD_ENDPOINTS=%s", c.endpoints);
  CHECK(strstr(text, want) != NULL, "no '%s' in the banner:\n%s", want, text);
  fmt(want, sizeof want, "http://%s/", c.nodes[2].http);
  CHECK(strstr(text, " http 127.0.0.1:") == NULL || strstr(text, want) != NULL,
        "synodd serves HTTP but the banner lacks '%s':\n%s", want, text);
  pid_t pids[3] = {0};
  const char *p = text;
  for (int i = 0; i < 3; i++) {
    p = strstr(p, " pid ");
    CHECK(p != NULL, "replica %d's pid is not in the output:\n%s", i, text);
    pids[i] = (pid_t)atoi(p + 5);
    p += 5;
    CHECK(pids[i] > 0 && kill(pids[i], 0) == 0, "replica pid %d is not running",
          (int)pids[i]);
  }
  free(text);

  char saved[sizeof endpoints];
  fmt(saved, sizeof saved, "%s", endpoints);
  fmt(endpoints, sizeof endpoints, "%s", c.endpoints);
  char *got;
  CHECK(ctl("dev-add", "counter add dev-hits 1", &got) == 0, "%s", got);
  CHECK(strcmp(got, "1\n") == 0, "add on the dev cluster printed '%s'", got);
  free(got);
  fmt(endpoints, sizeof endpoints, "%s", saved);

  kill(dev, SIGINT);
  int code = test_wait(dev, 30000, "synodctl dev after SIGINT");
  CHECK(code == 0, "synodctl dev exited %d after SIGINT", code);
  for (int i = 0; i < 3; i++) {
    CHECK(kill(pids[i], 0) != 0, "replica pid %d outlived synodctl dev",
          (int)pids[i]);
  }
  text = test_slurp(out);
  CHECK(strstr(text, "stopping...") != NULL, "no 'stopping...':\n%s", text);
  free(text);
  printf("ok synodctl dev: 3 replicas, banner, a counter, Ctrl-C stops them\n");
}

/* The fake server stops acknowledging keepalives: the lock is lost, the
 * command gets SIGTERM and synodctl exits 76. */
static void scenario_lock_lost(pid_t mock) {
  char up[PATH_MAX + 16], term[PATH_MAX + 16], args[2048];
  path_in("up", up, sizeof up);
  path_in("term", term, sizeof term);
  fmt(args, sizeof args,
      "--ttl 1s lock Lost --grace 2s -- sh -c 'trap \"echo term >> %s; "
      "exit 0\" TERM; echo up > %s; while :; do sleep 0.05; done'",
      term, up);
  pid_t p = ctl_bg("lost.out", args);
  test_wait_file(up, "up", 20000);
  kill(mock, SIGUSR1);
  uint64_t t0 = test_now_ms();
  int rv = test_wait(p, 10000, "lock lost");
  kill(mock, SIGUSR1);
  CHECK(rv == 76, "exit %d, want 76", rv);
  CHECK(test_now_ms() - t0 < 4000, "took %" PRIu64 " ms", test_now_ms() - t0);
  test_wait_file(term, "term", 1000);
  printf("ok lost lock stops the command, exit 76\n");
}

/* synodd configured by SYNOD_* variables alone, synodctl by
 * SYNOD_ENDPOINTS alone: a one-replica cluster that serves a counter and
 * exits 0 on SIGTERM. */
static void scenario_env_config(const char *synodd) {
  struct cluster c;
  char log[PATH_MAX + 16], out[PATH_MAX + 16], cmd[4096];
  char v_name[64], v_data[PATH_MAX + 16], v_client[64], v_peer[64];
  char v_peers[160];
  cluster_init(&c, 1, synodd); /* ports and a directory; starts nothing */
  fmt(log, sizeof log, "%s/env-synodd.log", dir);
  fmt(v_name, sizeof v_name, "SYNOD_NAME=%s", c.nodes[0].name);
  fmt(v_data, sizeof v_data, "SYNOD_DATA=%s", c.nodes[0].data);
  fmt(v_client, sizeof v_client, "SYNOD_CLIENT=%s", c.nodes[0].client);
  fmt(v_peer, sizeof v_peer, "SYNOD_PEER=%s", c.nodes[0].peer);
  fmt(v_peers, sizeof v_peers, "SYNOD_PEERS=%s=%s", c.nodes[0].name,
      c.nodes[0].peer);
  char *argv[] = {"env",
                  v_name,
                  v_data,
                  v_client,
                  v_peer,
                  v_peers,
                  "SYNOD_LOG_LEVEL=debug",
                  (char *)synodd,
                  NULL};
  c.nodes[0].pid = test_spawn(argv, log);
  cluster_wait_leader(&c, 30000);
  fmt(out, sizeof out, "%s/env-add.out", dir);
  fmt(cmd, sizeof cmd, "SYNOD_ENDPOINTS=%s '%s' counter add env-set 3",
      c.endpoints, synodctl);
  CHECK(test_sh(cmd, out, 30000) == 0, "synodctl by SYNOD_ENDPOINTS failed");
  char *text = test_slurp(out);
  CHECK(strcmp(text, "3\n") == 0, "add printed '%s'", text);
  free(text);
  text = test_slurp(log);
  CHECK(strstr(text, " DEBUG ") != NULL,
        "SYNOD_LOG_LEVEL=debug did not take (log %s)", log);
  free(text);
  kill(c.nodes[0].pid, SIGTERM);
  int code = test_wait(c.nodes[0].pid, 30000, "synodd on SIGTERM");
  c.nodes[0].pid = 0;
  CHECK(code == 0, "synodd exited %d on SIGTERM (log %s)", code, log);
  printf("ok synodd from SYNOD_* variables, synodctl from SYNOD_ENDPOINTS\n");
}

int main(int argc, char **argv) {
  bool mock = argc > 1 && strcmp(argv[1], "mock") == 0;
  char why[256], synodd[PATH_MAX], addr_file[PATH_MAX + 16];
  struct cluster c;
  pid_t mock_pid = 0;
  setvbuf(stdout, NULL, _IONBF, 0);
  test_binary("SYNODCTL", "synodctl", synodctl, sizeof synodctl);
  test_tmpdir("synodctl", dir, sizeof dir);
  if (mock) {
    char mock_bin[PATH_MAX];
    test_binary("MOCK_SYNODD", "mock_synodd", mock_bin, sizeof mock_bin);
    path_in("mock.addr", addr_file, sizeof addr_file);
    char *mock_argv[] = {mock_bin, NULL};
    mock_pid = test_spawn(mock_argv, addr_file);
    test_wait_file(addr_file, "\n", 10000);
    char *addr = test_slurp(addr_file);
    addr[strcspn(addr, "\n")] = '\0';
    fmt(endpoints, sizeof endpoints, "%s", addr);
    free(addr);
  } else {
    test_binary("SYNODD", "synodd", synodd, sizeof synodd);
    if (!cluster_synodd_ready(synodd, why, sizeof why)) {
      printf("SKIP: %s\n", why);
      return SKIP_EXIT;
    }
    cluster_start(&c, 3, synodd);
    cluster_wait_leader(&c, 30000);
    fmt(endpoints, sizeof endpoints, "%s", c.endpoints);
  }
  scenario_counters();
  scenario_lock_never_overlaps();
  scenario_lock_try_busy();
  scenario_once();
  scenario_elections();
  scenario_status_json();
  scenario_subscribe();
  if (mock) {
    scenario_lock_lost(mock_pid);
    kill(mock_pid, SIGTERM);
    CHECK(test_wait(mock_pid, 10000, "mock_synodd") == 0, "mock exit");
  } else {
    scenario_subscribe_deleted();
    cluster_stop(&c);
    scenario_dev(synodd);
    scenario_env_config(synodd);
  }
  printf("PASS\n");
  return 0;
}
