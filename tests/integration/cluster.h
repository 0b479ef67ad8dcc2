/* Integration harness: real synodd processes (or the mock) on 127.0.0.1,
 * with temp data dirs, bounded waits, kills by pid, and cleanup of every
 * child this process started, even when a check fails (atexit). */
#ifndef SYNOD_TEST_CLUSTER_H
#define SYNOD_TEST_CLUSTER_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define CLUSTER_NODES_MAX 5
#define SKIP_EXIT 77

/* Aborts the test with a message (children are cleaned up at exit). */
/* Set by CHECK before it exits: the temporary directories are then kept,
 * and the tail of every log in them goes to stderr. */
extern volatile int test_failed;

#define CHECK(cond, ...)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);          \
      fprintf(stderr, __VA_ARGS__);                                            \
      fprintf(stderr, "\n");                                                   \
      test_failed = 1;                                                         \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

struct cluster_node {
  char name[16];
  char client[32];
  char peer[32];
  char http[32];
  char data[PATH_MAX];
  char log[PATH_MAX];
  /* --peers for this replica; "" means the cluster's list (peers below).
   * Lets a test start some replicas with a smaller declared set, so that
   * the others must join. */
  char peers[CLUSTER_NODES_MAX * 48];
  pid_t pid; /* 0 when not running */
};

#define CLUSTER_EXTRA_ARGS_MAX 8

struct cluster {
  int n;
  struct cluster_node nodes[CLUSTER_NODES_MAX];
  char dir[PATH_MAX];
  char synodd[PATH_MAX];
  char endpoints[CLUSTER_NODES_MAX * 32];
  char peers[CLUSTER_NODES_MAX * 48];
  /* Appended to every synodd's command line, NULL-terminated (e.g.
   * "--snapshot-entries", "2000"); set between cluster_init and the
   * first cluster_restart. */
  const char *extra_args[CLUSTER_EXTRA_ARGS_MAX + 1];
};

/* Monotonic milliseconds. */
uint64_t test_now_ms(void);

/* A fresh directory under $SYNOD_TEST_TMP (or /tmp), removed at exit. */
void test_tmpdir(const char *prefix, char *out, size_t len);

/* The path of a built binary: $VAR if set, else bin/NAME next to this
 * test binary. */
void test_binary(const char *var, const char *name, char *out, size_t len);

/* Returns true if `synodd --help` mentions --peers; else fills why. */
bool cluster_synodd_ready(const char *synodd, char *why, size_t len);

/* Every cluster test's start: the synodd under test (SYNODD, else the one
 * built beside the test) into out, or "skipped: why" and exit SKIP_EXIT
 * when it is not there or cannot run a cluster. */
void cluster_synodd_or_skip(char *out, size_t len);

/* Picks free ports, makes data dirs, starts n replicas. */
void cluster_start(struct cluster *c, int n, const char *synodd);

/* cluster_start with args (NULL-terminated, at most
 * CLUSTER_EXTRA_ARGS_MAX, borrowed for the cluster's life) on every
 * synodd's command line, e.g. {"--keys-history", "1000", NULL}. */
void cluster_start_args(struct cluster *c, int n, const char *synodd,
                        const char *const *args);

/* cluster_start without starting anything: names, ports, data dirs and
 * the peers list of all n replicas. Start each with cluster_restart. */
void cluster_init(struct cluster *c, int n, const char *synodd);

/* "name=peer,..." of the first k replicas, into out (len bytes). */
void cluster_peers_prefix(const struct cluster *c, int k, char *out,
                          size_t len);

struct synod_status;
/* Asks replica i alone for its status (flags: 0 or SYNOD_STATUS_DIGEST).
 * Returns 0 and fills *st (free with synod_status_free), or the error. */
int cluster_status(const struct cluster *c, int i, unsigned flags,
                   uint32_t timeout_ms, struct synod_status *st);

/* Waits (bounded) until a replica reports a leader that every running
 * replica agrees on; returns its index. Fails the test on timeout. */
int cluster_wait_leader(struct cluster *c, uint32_t timeout_ms);

/* Sends sig to replica i; SIGKILL/SIGTERM also reap it. */
void cluster_signal(struct cluster *c, int i, int sig);
/* Starts replica i, which must not be running (also its first start after
 * cluster_init), with the same flags as before. */
void cluster_restart(struct cluster *c, int i);

/* SIGTERM, then SIGKILL after a bound, for every replica. */
void cluster_stop(struct cluster *c);

/* Registers a child pid to be killed at exit if still running. */
void test_track(pid_t pid);
void test_untrack(pid_t pid);

/* Spawns argv with stdout (and stderr) to out_path (NULL: inherit). */
pid_t test_spawn(char *const argv[], const char *out_path);

/* Waits up to timeout_ms for pid: true with *status its exit code
 * (128+sig when killed), or false if it still runs (it is left running). */
bool test_wait_for(pid_t pid, uint32_t timeout_ms, int *status);

/* Waits up to timeout_ms for pid; returns its exit code (128+sig when
 * killed), or fails the test on timeout (after killing it). */
int test_wait(pid_t pid, uint32_t timeout_ms, const char *what);

/* Runs `sh -c cmd` to completion (bounded), output to out_path. */
int test_sh(const char *cmd, const char *out_path, uint32_t timeout_ms);

/* Reads a whole file into a malloc'd string ("" if missing). */
char *test_slurp(const char *path);

/* Polls every 10 ms until path exists and contains needle (NULL: any
 * content), at most timeout_ms; fails the test otherwise. */
void test_wait_file(const char *path, const char *needle, uint32_t timeout_ms);

#endif
