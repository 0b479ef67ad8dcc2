/* clientlib/examples run against 3 real synodd processes.
 *
 * cluster_chat: three instances of the application, started one after the
 * other, each send 3 UUIDs one second apart and log what they receive;
 * every instance logs all 9 messages, its own included, in one order.
 *
 * device_registry: gateway A registers d1 and d2, gateway B takes d1
 * over; a lookup finds d1 at B and d2 at A; A, refreshing from its stale
 * view, does not overwrite d1; each gateway's devices vanish when it
 * exits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <signal.h>

#include "cluster.h"

#define INSTANCES 3
#define ROUNDS 3

/* The "received" lines of a log, in order, into out (one per line). */
static int received(const char *log, char lines[][128], int cap) {
  char *text = test_slurp(log);
  int n = 0;
  for (char *line = strtok(text, "\n"); line != NULL && n < cap;
       line = strtok(NULL, "\n")) {
    const char *q = strstr(line, " received \"");
    if (q != NULL) { /* the message and its offset, without the receiver */
      snprintf(lines[n++], 128, "%s", q + 10);
    }
  }
  free(text);
  return n;
}

/* Runs `example_device_registry lookup ARGS`; checks its output has
 * every line of want (separated by '|'). */
static void lookup(const char *example, const char *dir, const char *args,
                   const char *want) {
  char cmd[PATH_MAX * 2], out[PATH_MAX + 16], w[256];
  snprintf(cmd, sizeof cmd, "'%s' lookup %s", example, args);
  snprintf(out, sizeof out, "%.4000s/lookup.out", dir);
  unlink(out);
  CHECK(test_sh(cmd, out, 20000) == 0, "%s", cmd);
  char *text = test_slurp(out);
  snprintf(w, sizeof w, "%s", want);
  for (char *line = strtok(w, "|"); line != NULL; line = strtok(NULL, "|")) {
    CHECK(strstr(text, line) != NULL, "lookup %s: want '%s' in:\n%s", args,
          line, text);
  }
  free(text);
}

static void device_registry(const struct cluster *c) {
  char example[PATH_MAX], log_a[PATH_MAX], log_b[PATH_MAX];
  test_binary("SYNOD_EXAMPLE_REGISTRY", "example_device_registry", example,
              sizeof example);
  snprintf(log_a, sizeof log_a, "%.4000s/gateway-a.log", c->dir);
  snprintf(log_b, sizeof log_b, "%.4000s/gateway-b.log", c->dir);
  char *argv_a[] = {example, "gateway", "gw-a:7000", "d1", "d2", NULL};
  pid_t a = test_spawn(argv_a, log_a);
  test_wait_file(log_a, "d2 registered at gw-a:7000", 10000);
  char *argv_b[] = {example, "gateway", "gw-b:7000", "d1", NULL};
  pid_t b = test_spawn(argv_b, log_b);
  test_wait_file(log_b, "d1 registered at gw-b:7000, moved from gw-a:7000",
                 10000);
  lookup(example, c->dir, "d1 d2 d3",
         "d1 at gw-b:7000|d2 at gw-a:7000|d3 nowhere");
  kill(a, SIGHUP); /* A refreshes from what it last wrote */
  test_wait_file(log_a, "d1 moved to gw-b:7000: not overwritten", 10000);
  test_wait_file(log_a, "d2 refreshed at gw-a:7000", 10000);
  lookup(example, c->dir, "d1", "d1 at gw-b:7000");
  kill(b, SIGTERM);
  CHECK(test_wait(b, 10000, "gateway b") == 0, "gateway b's exit");
  lookup(example, c->dir, "d1 d2", "d1 nowhere|d2 at gw-a:7000");
  kill(a, SIGTERM);
  CHECK(test_wait(a, 10000, "gateway a") == 0, "gateway a's exit");
  lookup(example, c->dir, "d1 d2", "d1 nowhere|d2 nowhere");
  printf("ok device_registry: a device moved from gateway A to B, A's stale "
         "refresh refused, each gateway's devices gone when it exited\n");
}

int main(void) {
  char synodd[PATH_MAX], example[PATH_MAX], why[256];
  test_binary("SYNODD", "synodd", synodd, sizeof synodd);
  test_binary("SYNOD_EXAMPLE_CHAT", "example_cluster_chat", example,
              sizeof example);
  if (!cluster_synodd_ready(synodd, why, sizeof why)) {
    printf("skipped: %s\n", why);
    return SKIP_EXIT;
  }
  struct cluster c;
  cluster_start(&c, 3, synodd);
  cluster_wait_leader(&c, 20000);
  setenv("SYNOD_ENDPOINTS", c.endpoints, 1);
  char logs[INSTANCES][PATH_MAX];
  pid_t pids[INSTANCES];
  for (int i = 0; i < INSTANCES; i++) {
    char name[16], rounds[8];
    snprintf(name, sizeof name, "app-%d", i);
    snprintf(rounds, sizeof rounds, "%d", ROUNDS);
    snprintf(logs[i], sizeof logs[i], "%.4000s/%s.log", c.dir, name);
    char *argv[] = {example, name, "1000", rounds, NULL};
    pids[i] = test_spawn(argv, logs[i]);
    /* Joined (subscribed from the next message) before the next starts,
     * and all within the first second, before anyone sends. */
    test_wait_file(logs[i], "joined", 10000);
  }
  for (int i = 0; i < INSTANCES; i++) {
    CHECK(test_wait(pids[i], 30000, "example_cluster_chat") == 0,
          "app-%d failed (log %s)", i, logs[i]);
  }
  static char got[INSTANCES][64][128];
  int n[INSTANCES];
  for (int i = 0; i < INSTANCES; i++) {
    n[i] = received(logs[i], got[i], 64);
    CHECK(n[i] == INSTANCES * ROUNDS, "app-%d received %d messages, want %d", i,
          n[i], INSTANCES * ROUNDS);
    for (int k = 0; k < n[i]; k++) {
      CHECK(strcmp(got[i][k], got[0][k]) == 0,
            "app-%d's message %d is %s, app-0's %s", i, k, got[i][k],
            got[0][k]);
    }
    int own = 0;
    char me[16];
    snprintf(me, sizeof me, "\"app-%d ", i);
    for (int k = 0; k < n[i]; k++) {
      own += strncmp(got[i][k], me, strlen(me)) == 0;
    }
    CHECK(own == ROUNDS, "app-%d received %d of its own messages", i, own);
  }
  device_registry(&c);
  cluster_stop(&c);
  printf("ok cluster_chat: %d instances each logged all %d messages, their "
         "own included, in one order\n",
         INSTANCES, INSTANCES * ROUNDS);
  return 0;
}
