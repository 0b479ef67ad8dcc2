/* clientlib/examples run against 3 real synodd processes.
 *
 * cluster_chat: three instances of the application, started one after the
 * other, each send 3 UUIDs one second apart and log what they receive;
 * every instance logs all 9 messages, its own included, in one order.
 *
 * device_registry: gateway A registers d1 and d2, gateway B takes d1
 * over; a lookup finds d1 at B and d2 at A; A, refreshing from its stale
 * view, does not overwrite d1; each gateway's devices vanish when it
 * exits. A follower of d1, started while A holds it, sees it move to B,
 * then vanish, through its key watch.
 *
 * replicated_map: three members keep a map from a group's messages; one
 * is SIGKILLed, more commands come, it is started again, rejoins with
 * state transfer (a checkpoint the coordinator stored on a state request,
 * then every command after it), and prints the same digest as the others
 * at the same dump. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <signal.h>

#include "cluster.h"
#include "synod.h"

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
  char example[PATH_MAX], log_a[PATH_MAX], log_b[PATH_MAX], log_f[PATH_MAX];
  test_binary("SYNOD_EXAMPLE_REGISTRY", "example_device_registry", example,
              sizeof example);
  snprintf(log_a, sizeof log_a, "%.4000s/gateway-a.log", c->dir);
  snprintf(log_b, sizeof log_b, "%.4000s/gateway-b.log", c->dir);
  snprintf(log_f, sizeof log_f, "%.4000s/follow.log", c->dir);
  char *argv_a[] = {example, "gateway", "gw-a:7000", "d1", "d2", NULL};
  pid_t a = test_spawn(argv_a, log_a);
  test_wait_file(log_a, "d2 registered at gw-a:7000", 10000);
  char *argv_f[] = {example, "follow", "d1", NULL};
  pid_t f = test_spawn(argv_f, log_f);
  test_wait_file(log_f, "d1 at gw-a:7000\n", 10000);
  char *argv_b[] = {example, "gateway", "gw-b:7000", "d1", NULL};
  pid_t b = test_spawn(argv_b, log_b);
  test_wait_file(log_b, "d1 registered at gw-b:7000, moved from gw-a:7000",
                 10000);
  test_wait_file(log_f, "d1 at gw-a:7000\nd1 at gw-b:7000\n", 10000);
  lookup(example, c->dir, "d1 d2 d3",
         "d1 at gw-b:7000|d2 at gw-a:7000|d3 nowhere");
  kill(a, SIGHUP); /* A refreshes from what it last wrote */
  test_wait_file(log_a, "d1 moved to gw-b:7000: not overwritten", 10000);
  test_wait_file(log_a, "d2 refreshed at gw-a:7000", 10000);
  lookup(example, c->dir, "d1", "d1 at gw-b:7000");
  kill(b, SIGTERM);
  CHECK(test_wait(b, 10000, "gateway b") == 0, "gateway b's exit");
  lookup(example, c->dir, "d1 d2", "d1 nowhere|d2 at gw-a:7000");
  /* The follower saw exactly the move and the end; A's refused refresh
   * wrote nothing. */
  test_wait_file(log_f, "d1 at gw-a:7000\nd1 at gw-b:7000\nd1 nowhere\n",
                 10000);
  kill(f, SIGTERM);
  CHECK(test_wait(f, 10000, "follower") == 0, "follower's exit");
  char *followed = test_slurp(log_f);
  CHECK(strcmp(followed, "d1 at gw-a:7000\nd1 at gw-b:7000\nd1 nowhere\n") == 0,
        "the follower printed:\n%s", followed);
  free(followed);
  kill(a, SIGTERM);
  CHECK(test_wait(a, 10000, "gateway a") == 0, "gateway a's exit");
  lookup(example, c->dir, "d1 d2", "d1 nowhere|d2 nowhere");
  printf("ok device_registry: a device moved from gateway A to B (and its "
         "follower saw it), A's stale refresh refused, each gateway's "
         "devices gone when it exited\n");
}

/* Sends one command to the map group; returns its offset. */
static uint64_t map_send(struct synod_client *cl, const char *cmd) {
  struct synod_group_sent sent;
  CHECK(synod_group_send(cl, "map", NULL, NULL, cmd, strlen(cmd), 0, &sent) ==
            0,
        "send %s: %s", cmd, synod_client_errmsg());
  return sent.offset;
}

/* Some sets and deletes, from `first` on; the last is a dump, whose
 * offset is returned. */
static uint64_t map_commands(struct synod_client *cl, int first, int n) {
  char cmd[64];
  for (int i = first; i < first + n; i++) {
    if (i % 4 == 3) {
      snprintf(cmd, sizeof cmd, "del k%d", (i * 7) % 12);
    } else {
      snprintf(cmd, sizeof cmd, "set k%d v%d", i % 12, i);
    }
    map_send(cl, cmd);
  }
  return map_send(cl, "dump");
}

/* The digest `log` printed for the dump at `offset` (waited for). */
static void map_digest(const char *log, const char *name, uint64_t offset,
                       char *out, size_t len) {
  char want[96];
  snprintf(want, sizeof want, "%s digest at %" PRIu64 ": ", name, offset);
  test_wait_file(log, want, 20000);
  char *text = test_slurp(log);
  const char *p = strstr(text, want);
  CHECK(p != NULL, "no '%s' in %s", want, log);
  p += strlen(want);
  size_t n = strcspn(p, "\n");
  snprintf(out, len, "%.*s", (int)n, p);
  free(text);
}

static void replicated_map(struct cluster *c) {
  char example[PATH_MAX], logs[5][PATH_MAX], digests[5][64], want[64];
  const char *names[5] = {"A", "B", "C", "C", "D"};
  pid_t pids[5];
  test_binary("SYNOD_EXAMPLE_MAP", "example_replicated_map", example,
              sizeof example);
  struct synod_options o;
  struct synod_client *cl;
  synod_options_init(&o);
  o.endpoints = c->endpoints;
  CHECK(synod_client_new(&o, &cl) == 0, "%s", synod_client_errmsg());
  for (int i = 0; i < 5; i++) {
    snprintf(logs[i], sizeof logs[i], "%.4000s/map-%d.log", c->dir, i);
  }
  for (int i = 0; i < 3; i++) {
    char *argv[] = {example, (char *)names[i], "map", "1000", NULL};
    pids[i] = test_spawn(argv, logs[i]);
    snprintf(want, sizeof want, "%s joined", names[i]);
    test_wait_file(logs[i], want, 20000);
  }
  uint64_t d1 = map_commands(cl, 0, 30);
  for (int i = 0; i < 3; i++) {
    map_digest(logs[i], names[i], d1, digests[i], sizeof digests[i]);
    CHECK(strcmp(digests[i], digests[0]) == 0,
          "at %" PRIu64 ": %s has %s, A %s", d1, names[i], digests[i],
          digests[0]);
  }
  /* C crashes; the map moves on without it; C comes back with state. */
  kill(pids[2], SIGKILL);
  test_wait(pids[2], 10000, "the killed map member");
  map_commands(cl, 30, 20);
  char *argv[] = {example, "C", "map", "1000", NULL};
  pids[3] = test_spawn(argv, logs[3]);
  test_wait_file(logs[3], "C joined", 30000);
  /* B's join made A store a checkpoint (an empty map at B's join):
   * C's state is that checkpoint, and every command after it. */
  test_wait_file(logs[3], "with state from checkpoint", 1000);
  test_wait_file(logs[0], "A state for B at", 1000);
  uint64_t d2 = map_commands(cl, 50, 10);
  for (int i = 0; i < 4; i++) {
    if (i == 2) {
      continue; /* dead */
    }
    map_digest(logs[i], names[i], d2, digests[i], sizeof digests[i]);
    CHECK(strcmp(digests[i], digests[0]) == 0,
          "at %" PRIu64 ": %s (log %s) has %s, A %s", d2, names[i], logs[i],
          digests[i], digests[0]);
  }
  CHECK(strstr(digests[0], "(0 keys)") == NULL, "an empty map: %s", digests[0]);
  /* The coordinator A is SIGKILLed while D joins with state, and the
   * synod leader too, during the transfer: D still gets the checkpoint
   * and every command after it, with no member to ask. */
  kill(pids[0], SIGKILL);
  test_wait(pids[0], 10000, "the killed coordinator");
  char *argv_d[] = {example, "D", "map", "1000", NULL};
  pids[4] = test_spawn(argv_d, logs[4]);
  int leader = cluster_wait_leader(c, 20000);
  cluster_signal(c, leader, SIGKILL);
  cluster_restart(c, leader);
  test_wait_file(logs[4], "D joined", 30000);
  test_wait_file(logs[4], "with state from checkpoint", 1000);
  uint64_t d3 = map_commands(cl, 60, 10);
  const int live[3] = {1, 3, 4};
  for (int i = 0; i < 3; i++) {
    int m = live[i];
    map_digest(logs[m], names[m], d3, digests[m], sizeof digests[m]);
    CHECK(strcmp(digests[m], digests[1]) == 0,
          "at %" PRIu64 ": %s (log %s) has %s, B %s", d3, names[m], logs[m],
          digests[m], digests[1]);
  }
  for (int i = 0; i < 3; i++) {
    kill(pids[live[i]], SIGTERM);
    test_wait(pids[live[i]], 10000, "a map member");
  }
  synod_client_free(cl);
  printf("ok replicated_map: C SIGKILLed, restarted with state (the "
         "checkpoint A stored for B, then the commands after it), and at "
         "offset %" PRIu64 " all three print %s; then the coordinator A "
         "and the synod leader SIGKILLed while D joined with state: at "
         "%" PRIu64 " B, C and D print %s\n",
         d2, digests[0], d3, digests[1]);
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
  replicated_map(&c);
  cluster_stop(&c);
  printf("ok cluster_chat: %d instances each logged all %d messages, their "
         "own included, in one order\n",
         INSTANCES, INSTANCES * ROUNDS);
  return 0;
}
