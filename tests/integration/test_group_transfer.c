/* State transfer under failures, with real processes (issue 23's "Real
 * processes" test): three application processes (group_state_member, a
 * map kept from the group's messages plus a 12 MiB padding derived from
 * it) in a group on 3 synodd replicas; the coordinator's process is
 * SIGKILLed while a fourth joins with state, so the state request
 * follows to the next coordinator once the dead one's session expires;
 * the synod leader is SIGKILLed as that coordinator starts storing its
 * checkpoint, so the upload and the joiner's read go on across the
 * failover. At the end every live member prints the same map digest at
 * the same offset, and the joiner's padding matched its map. Every wait
 * is bounded and says what it waited for. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "synod.h"

/* Long enough that a member storing 12 MiB while the leader is killed
 * keeps its session on a loaded machine: at 4 s, with a load average of
 * 12 on 2 cores, B and D lost theirs in 1 of 7 runs (their keepalives
 * waited behind the chunks). A's expiry, which the test waits for, takes
 * this long. */
#define TTL_MS "8000"
#define PAD_BYTES "12582912" /* 12 MiB: a checkpoint of 13 chunks */
#define GROUP "tmap"

static char member_bin[PATH_MAX];

static pid_t member_start(const struct cluster *c, const char *name,
                          bool want_state, char *log, size_t len) {
  snprintf(log, len, "%.4000s/member-%s.log", c->dir, name);
  char *argv[] = {member_bin, (char *)name,           GROUP,
                  TTL_MS,     want_state ? "1" : "0", PAD_BYTES,
                  NULL};
  return test_spawn(argv, log);
}

/* Sends a command to the group, retried over a failover (a retried send
 * may appear twice: every member applies the same log either way). */
static uint64_t send_cmd(struct synod_client *cl, const char *cmd) {
  struct synod_group_sent sent;
  uint64_t deadline = test_now_ms() + 30000;
  for (;;) {
    int rv =
        synod_group_send(cl, GROUP, NULL, NULL, cmd, strlen(cmd), 0, &sent);
    if (rv == 0) {
      return sent.offset;
    }
    CHECK(test_now_ms() < deadline, "send %s: %s", cmd, synod_client_errmsg());
    printf("  send %s: %s (tried again)\n", cmd, synod_client_errmsg());
  }
}

/* n sets and deletes from `first` on, then a dump, whose offset is
 * returned. */
static uint64_t commands(struct synod_client *cl, int first, int n) {
  char cmd[64];
  for (int i = first; i < first + n; i++) {
    if (i % 5 == 4) {
      snprintf(cmd, sizeof cmd, "del k%d", (i * 7) % 40);
    } else {
      snprintf(cmd, sizeof cmd, "set k%d v%d", i % 40, i);
    }
    send_cmd(cl, cmd);
  }
  return send_cmd(cl, "dump");
}

/* The digest `log` printed for the dump at `offset` (waited for). */
static void digest_at(const char *log, const char *name, uint64_t offset,
                      char *out, size_t len) {
  char want[96];
  snprintf(want, sizeof want, "%s digest at %" PRIu64 ": ", name, offset);
  test_wait_file(log, want, 60000);
  char *text = test_slurp(log);
  const char *p = strstr(text, want);
  CHECK(p != NULL, "no '%s' in %s", want, log);
  p += strlen(want);
  snprintf(out, len, "%.*s", (int)strcspn(p, "\n"), p);
  free(text);
}

static bool file_has(const char *path, const char *needle) {
  char *text = test_slurp(path);
  bool has = strstr(text, needle) != NULL;
  free(text);
  return has;
}

int main(void) {
  char synodd[PATH_MAX], why[256];
  test_binary("SYNODD", "synodd", synodd, sizeof synodd);
  test_binary("SYNOD_GROUP_STATE_MEMBER", "group_state_member", member_bin,
              sizeof member_bin);
  if (!cluster_synodd_ready(synodd, why, sizeof why)) {
    printf("skipped: %s\n", why);
    return SKIP_EXIT;
  }
  signal(SIGPIPE, SIG_IGN);
  struct cluster c;
  cluster_start(&c, 3, synodd);
  cluster_wait_leader(&c, 20000);
  setenv("SYNOD_ENDPOINTS", c.endpoints, 1);
  struct synod_options o;
  struct synod_client *cl;
  synod_options_init(&o);
  o.endpoints = c.endpoints;
  CHECK(synod_client_new(&o, &cl) == 0, "%s", synod_client_errmsg());

  const char *names[4] = {"A", "B", "C", "D"};
  char logs[4][PATH_MAX], want[96], digests[4][64];
  pid_t pids[4];
  for (int i = 0; i < 3; i++) { /* in order: A coordinates */
    pids[i] = member_start(&c, names[i], false, logs[i], sizeof logs[i]);
    snprintf(want, sizeof want, "%s joined", names[i]);
    test_wait_file(logs[i], want, 20000);
  }
  uint64_t d1 = commands(cl, 0, 60);
  for (int i = 0; i < 3; i++) {
    digest_at(logs[i], names[i], d1, digests[i], sizeof digests[i]);
    CHECK(strcmp(digests[i], digests[0]) == 0, "at %" PRIu64 ": %s %s, A %s",
          d1, names[i], digests[i], digests[0]);
  }
  printf("A, B, C at %" PRIu64 ": %s\n", d1, digests[0]);

  /* D joins with state (there is no checkpoint: its request goes to
   * the coordinator) while the coordinator's process dies. */
  pids[3] = member_start(&c, "D", true, logs[3], sizeof logs[3]);
  kill(pids[0], SIGKILL);
  test_wait(pids[0], 10000, "the killed coordinator A");
  commands(cl, 60, 20); /* the group moves on meanwhile */

  /* A's session expires: B coordinates and gets D's request. The leader
   * dies as B starts to store its 12 MiB. */
  test_wait_file(logs[1], "B storing state for D", 30000);
  int leader = cluster_wait_leader(&c, 20000);
  bool stored = file_has(logs[1], "B stored state for D");
  bool joined = file_has(logs[3], "D joined");
  cluster_signal(&c, leader, SIGKILL);
  printf("leader %s SIGKILLed (B's checkpoint %s, D %s)\n",
         c.nodes[leader].name, stored ? "already stored" : "being stored",
         joined ? "already joined" : "still reading or waiting");

  test_wait_file(logs[3], "D joined", 90000);
  CHECK(file_has(logs[3], "with state from coordinator"),
        "D's state did not come from the coordinator:\n%s",
        test_slurp(logs[3]));
  CHECK(file_has(logs[3], "pad ok"), "D's state is damaged:\n%s",
        test_slurp(logs[3]));
  CHECK(file_has(logs[1], "B stored state for D"), "B's log:\n%s",
        test_slurp(logs[1]));

  uint64_t d2 = commands(cl, 80, 30);
  for (int i = 1; i < 4; i++) {
    digest_at(logs[i], names[i], d2, digests[i], sizeof digests[i]);
    CHECK(strcmp(digests[i], digests[1]) == 0,
          "at %" PRIu64 ": %s (log %s) has %s, B %s", d2, names[i], logs[i],
          digests[i], digests[1]);
  }
  CHECK(strstr(digests[1], "(0 keys)") == NULL, "an empty map: %s", digests[1]);
  for (int i = 1; i < 4; i++) {
    kill(pids[i], SIGTERM);
    test_wait(pids[i], 10000, "a member");
  }
  synod_client_free(cl);
  cluster_restart(&c, leader); /* so that cluster_stop finds all */
  cluster_stop(&c);
  printf("ok: A SIGKILLed while D joined with state; the leader SIGKILLed "
         "during the transfer; at offset %" PRIu64 " B, C and D print %s\n",
         d2, digests[1]);
  return 0;
}
