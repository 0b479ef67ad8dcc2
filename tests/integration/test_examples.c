/* clientlib/examples run against 3 real synodd processes.
 *
 * cluster_chat: three instances of the application, started one after the
 * other, each send 3 UUIDs one second apart and log what they receive;
 * every instance logs all 9 messages, its own included, in one order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
  cluster_stop(&c);
  printf("ok cluster_chat: %d instances each logged all %d messages, their "
         "own included, in one order\n",
         INSTANCES, INSTANCES * ROUNDS);
  return 0;
}
