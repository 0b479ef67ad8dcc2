/* synod-nemesis: issue #15's nemesis for real processes. Each synodd runs
 * in its own network namespace; a seeded fault per round (partitions, a
 * bridge, a one-way drop, loss, SIGSTOP of the leader, SIGKILL of one and
 * of all, a full disk, a fast clock) while client threads on libsynod add
 * to a counter, cycle a fenced lock and campaign; after each round the
 * history is checked (counter linearizable, lock holds never overlap,
 * fencing in order, elections never overlap, acknowledged writes kept),
 * liveness after healing is bounded, and every replica reports the same
 * state digest.
 *
 *   synod-nemesis [--seed S] [--rounds N] [--round K] [--replicas 3|5]
 *                 [--kind FAULT] [--strict]
 *   synod-nemesis --check-history FILE
 *
 * Round K's fault comes from (S, K) alone: "--seed S --round K" replays it
 * on a fresh cluster. Every NEM_FAULTS consecutive rounds cover every
 * fault kind once (--kind: every round the one named). Exit 0: no violation; 1:
 * a violation (each printed with its replay command); 77: cannot run here (not
 * root, no namespaces). A round whose counter history is not linearizable
 * saves it (each operation with its client, status and session) in the
 * run's directory as counter-round<K>.txt; --check-history FILE checks
 * such a file again (exit 0 linearizable, 1 not, 2 inconclusive). */
#include "nemesis.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "synod.h"

#define STEADY_MS 1000
#define RECOVERY_BOUND_MS 15000 /* ops succeed again this soon after heal */
/* After a round, every subscriber has delivered every message this soon. */
#define CHANNELS_BOUND_MS 15000
#define DIGEST_BOUND_MS 20000
#define STEP_DOWN_MS 3000 /* an isolated leader steps down this soon */
#define FASTCLOCK_RATE "1.5"
#define FAKETIME_LIB "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"
#define TMPFS_SIZE "32m"

enum fault {
  F_ISOLATE_LEADER,
  F_SPLIT,
  F_BRIDGE,
  F_ONEWAY,
  F_LOSS,
  F_STOP_LEADER,
  F_KILL_ONE,
  F_KILL_ALL,
  F_DISK_FULL,
  F_FAST_CLOCK,
  NEM_FAULTS
};

static const char *fault_names[NEM_FAULTS] = {
    "isolate-leader", "split",    "bridge",   "one-way",   "loss",
    "stop-leader",    "kill-one", "kill-all", "disk-full", "fast-clock"};

struct replica {
  char name[32];
  char ns[48];
  char mnt[PATH_MAX];  /* its own tmpfs */
  char data[PATH_MAX]; /* mnt/data */
  char log[PATH_MAX];
  char client[48], peer[48], http[48];
  pid_t pid; /* changed (and reaped) only with g.pid_mu held */
  bool mounted;
  /* The exit monitor: set while the nemesis itself makes it exit (a
   * SIGKILL, a full disk); and when the monitor saw it exit (test_now_ms,
   * and the raw wait status), until it is reaped. */
  _Atomic bool may_exit;
  _Atomic bool stopped; /* SIGSTOPped by the nemesis */
  _Atomic uint64_t exit_ms;
  _Atomic int exit_status;
  int exits; /* unexpected exits so far, for the saved logs' names */
};

static struct {
  uint64_t seed;
  int n;
  char synodd[PATH_MAX];
  char dir[PATH_MAX];
  char peers[NEM_REPLICAS_MAX * 64];
  char endpoints[NEM_REPLICAS_MAX * 48];
  struct nem_net net;
  struct replica r[NEM_REPLICAS_MAX];
  int perm[NEM_FAULTS];
  /* The round being run, for messages. */
  int round;
  enum fault fault;
  int violations;
  int known_bugs;
  int round_violations_base; /* g.violations when the round began */
  int bound_exceeded;        /* fail-closed probes beyond the clock bound */
  bool strict;               /* known bugs count as violations */
  int only_kind;     /* --kind: every round this fault; -1: all in turn */
  bool break_checks; /* corrupt each round\'s history: checks must fail */
  int breaks_missed; /* rounds where they did not all */
  int64_t counter;   /* the counter's value at the end of the last round */
  uint64_t ops_total;
  bool torn_down;
  /* sh -c text that kills, deletes and unmounts all of the above; built
   * once set up, so that a signal handler can run it with fork/exec. */
  char cleanup_cmd[8192];
  /* Replicas' pids change and are reaped under pid_mu; the monitor thread
   * watches for exits nobody asked for. */
  pthread_mutex_t pid_mu;
  pthread_t monitor;
  _Atomic bool monitor_stop;
  bool monitor_running;
  /* Counter writes of earlier rounds whose outcome is unknown: they may
   * take effect after that round's final read (the client gave up on the
   * request, not the request on the cluster). */
  struct history_counter_entry *carry;
  struct nem_op_meta *carry_meta;
  size_t carry_n;
} g = {.pid_mu = PTHREAD_MUTEX_INITIALIZER};

/* ------------------------------------------------------------- PRNG */

/* splitmix64 (Steele, Lea, Flood): one state word, good enough to pick
 * faults and durations, and identical for a given seed everywhere. */
static uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static int rng_int(uint64_t *s, int lo, int hi) { /* [lo, hi] */
  return lo + (int)(rng_next(s) % (uint64_t)(hi - lo + 1));
}

static void rng_shuffle(uint64_t *s, int *a, int n) {
  for (int i = n - 1; i > 0; i--) {
    int j = rng_int(s, 0, i), t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
}

/* ------------------------------------------------------------ output */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("[%6.1f] ", (double)test_now_ms() / 1000.0);
  vprintf(fmt, ap);
  printf("\n");
  fflush(stdout);
  va_end(ap);
}

/* "synod-nemesis --seed S --round K ..." for the round being run. */
static const char *replay_cmd(void) {
  static char buf[160];
  snprintf(buf, sizeof buf,
           "synod-nemesis --seed %" PRIu64 " --round %d --replicas %d%s%s",
           g.seed, g.round, g.n, g.only_kind >= 0 ? " --kind " : "",
           g.only_kind >= 0 ? fault_names[g.only_kind] : "");
  return buf;
}

static void violation(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static void violation(const char *fmt, ...) {
  va_list ap;
  if (g.violations - g.round_violations_base >= 20) {
    if (g.violations - g.round_violations_base == 20) {
      printf("VIOLATION round %d: more than 20; the rest are counted, not "
             "shown\n",
             g.round);
    }
    g.violations++;
    return;
  }
  va_start(ap, fmt);
  printf("VIOLATION round %d (%s): ", g.round, fault_names[g.fault]);
  vprintf(fmt, ap);
  printf("\n  replay: %s\n", replay_cmd());
  fflush(stdout);
  va_end(ap);
  g.violations++;
}

/* A violation that is a known synod bug, reported where it was found:
 * printed with its replay, and fatal only with --strict (the regression
 * entry), so that the bounded run keeps checking everything else. */
static void known_bug(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static void known_bug(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("KNOWN BUG round %d (%s): ", g.round, fault_names[g.fault]);
  vprintf(fmt, ap);
  printf("\n  replay: %s --strict\n", replay_cmd());
  fflush(stdout);
  va_end(ap);
  g.known_bugs++;
  if (g.strict) {
    g.violations++;
  }
}

static void sleep_ms(unsigned ms) {
  usleep(ms * 1000u);
}

/* ---------------------------------------------------------- replicas */

static void replica_spawn(int i, bool fast_clock) {
  struct replica *r = &g.r[i];
  char *argv[40];
  char preload[PATH_MAX + 16], faketime[64];
  int k = 0;
  argv[k++] = "ip";
  argv[k++] = "netns";
  argv[k++] = "exec";
  argv[k++] = r->ns;
  if (fast_clock) {
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s", FAKETIME_LIB);
    snprintf(faketime, sizeof faketime, "FAKETIME=+0 x%s", FASTCLOCK_RATE);
    argv[k++] = "env";
    argv[k++] = preload;
    argv[k++] = faketime;
  }
  argv[k++] = g.synodd;
  argv[k++] = "--name";
  argv[k++] = r->name;
  argv[k++] = "--data";
  argv[k++] = r->data;
  argv[k++] = "--client";
  argv[k++] = r->client;
  argv[k++] = "--peer";
  argv[k++] = r->peer;
  argv[k++] = "--peers";
  argv[k++] = g.peers;
  argv[k++] = "--http";
  argv[k++] = r->http;
  argv[k++] = "--log-level";
  argv[k++] = "info";
  argv[k] = NULL;
  FILE *f = fopen(r->log, "a");
  if (f != NULL) {
    fprintf(f, "==== nemesis: start%s at %.1f s (round %d)\n",
            fast_clock ? " with a clock " FASTCLOCK_RATE "x fast" : "",
            (double)test_now_ms() / 1000.0, g.round);
    fclose(f);
  }
  pthread_mutex_lock(&g.pid_mu);
  r->pid = test_spawn(argv, r->log);
  atomic_store(&r->exit_ms, 0);
  atomic_store(&r->stopped, false);
  atomic_store(&r->may_exit, false);
  pthread_mutex_unlock(&g.pid_mu);
}

static bool replica_check_exit(int i, const char *when);

/* SIGSTOP or SIGCONT to replica i (noted, for an exit while stopped). */
static void replica_stop(int i, bool stop) {
  if (g.r[i].pid > 0) {
    atomic_store(&g.r[i].stopped, stop);
    kill(g.r[i].pid, stop ? SIGSTOP : SIGCONT);
  }
}

static void replica_kill(int i) {
  struct replica *r = &g.r[i];
  if (replica_check_exit(i, "before the nemesis killed it") || r->pid == 0) {
    return;
  }
  atomic_store(&r->may_exit, true);
  pthread_mutex_lock(&g.pid_mu);
  kill(r->pid, SIGCONT);
  kill(r->pid, SIGKILL);
  int code = test_wait(r->pid, 10000, r->name);
  r->pid = 0;
  pthread_mutex_unlock(&g.pid_mu);
  if (code != 128 + SIGKILL) { /* it went by itself just before */
    violation("%s had exited by itself (%s %d) when the nemesis killed it",
              r->name, code > 128 ? "signal" : "exit status",
              code > 128 ? code - 128 : code);
  }
}

/* True if replica i has exited by itself (then reaped; *code set). */
static bool replica_exited(int i, int *code) {
  int ws;
  pthread_mutex_lock(&g.pid_mu);
  pid_t p = g.r[i].pid == 0 ? 0 : waitpid(g.r[i].pid, &ws, WNOHANG);
  if (p == 0 || p != g.r[i].pid) {
    pthread_mutex_unlock(&g.pid_mu);
    return false;
  }
  test_untrack(p);
  *code = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
  g.r[i].pid = 0;
  pthread_mutex_unlock(&g.pid_mu);
  return true;
}

/* ------------------------------------------------------ exit monitor */

/* Every 100 ms: has a replica exited that nobody told to? The monitor
 * only looks (WNOWAIT) and notes when; the main thread reports and reaps
 * it at its next check (replica_check_exit), so that the exit time is
 * known to 0.1 s even if the round is busy elsewhere. */
static void *monitor_main(void *arg) {
  (void)arg;
  while (!atomic_load(&g.monitor_stop)) {
    int seen[NEM_REPLICAS_MAX], seen_n = 0;
    /* trylock: the main thread may hold it while it waits for a kill, or
     * while it exits (CHECK) and joins this thread. */
    if (pthread_mutex_trylock(&g.pid_mu) != 0) {
      sleep_ms(20);
      continue;
    }
    for (int i = 0; i < g.n; i++) {
      struct replica *r = &g.r[i];
      siginfo_t si;
      if (r->pid <= 0 || atomic_load(&r->exit_ms) != 0) {
        continue;
      }
      memset(&si, 0, sizeof si);
      if (waitid(P_PID, (id_t)r->pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0 ||
          si.si_pid != r->pid) {
        continue;
      }
      atomic_store(&r->exit_status,
                   si.si_code == CLD_EXITED
                       ? (si.si_status & 0xff) << 8
                       : (si.si_status & 0x7f) |
                             (si.si_code == CLD_DUMPED ? 0x80 : 0));
      atomic_store(&r->exit_ms, test_now_ms());
      if (!atomic_load(&r->may_exit)) {
        seen[seen_n++] = i;
      }
    }
    pthread_mutex_unlock(&g.pid_mu);
    for (int k = 0; k < seen_n; k++) {
      say("MONITOR: %s exited and the nemesis did not make it (round %d); "
          "reported at the next check",
          g.r[seen[k]].name, g.round);
    }
    sleep_ms(100);
  }
  return NULL;
}

static void monitor_start(void) {
  pthread_create(&g.monitor, NULL, monitor_main, NULL);
  g.monitor_running = true;
}

static void monitor_stop(void) {
  if (g.monitor_running) {
    atomic_store(&g.monitor_stop, true);
    pthread_join(g.monitor, NULL);
    g.monitor_running = false;
  }
}

/* "killed by signal 9 (SIGKILL)" or "exit status 1" for a wait status. */
static void wait_status_text(int ws, char *out, size_t len) {
  if (WIFSIGNALED(ws)) {
    snprintf(out, len, "killed by signal %d (SIG%s)%s", WTERMSIG(ws),
             sigabbrev_np(WTERMSIG(ws)) ? sigabbrev_np(WTERMSIG(ws)) : "?",
             WCOREDUMP(ws) ? ", core dumped" : "");
  } else if (WIFEXITED(ws)) {
    snprintf(out, len, "exit status %d", WEXITSTATUS(ws));
  } else {
    snprintf(out, len, "wait status 0x%x", ws);
  }
}

/* Copies the last `lines` lines of path into out_path; prints the last
 * `show` of them. */
static void log_tail_save(const char *path, const char *out_path, int lines,
                          int show) {
  char *s = test_slurp(path);
  size_t len = strlen(s);
  const char *from = s + len;
  int seen = 0;
  while (from > s && seen <= lines) {
    from--;
    if (*from == '\n' && from + 1 < s + len) {
      seen++;
    }
  }
  if (*from == '\n') {
    from++;
  }
  FILE *f = fopen(out_path, "w");
  if (f != NULL) {
    fputs(from, f);
    fclose(f);
  }
  /* The last `show` lines of that. */
  const char *p = s + len;
  seen = 0;
  while (p > from && seen <= show) {
    p--;
    if (*p == '\n' && p + 1 < s + len) {
      seen++;
    }
  }
  if (*p == '\n') {
    p++;
  }
  while (*p != '\0') {
    const char *eol = strchr(p, '\n');
    int n = eol ? (int)(eol - p) : (int)strlen(p);
    printf("    | %.*s\n", n > 300 ? 300 : n, p);
    p += n + (eol != NULL);
  }
  fflush(stdout);
  free(s);
}

/* If replica i exited without the nemesis making it (the monitor saw it
 * go), reports that as a violation with how it ended and the end of its
 * log (saved beside it), reaps it and returns true: the caller restarts
 * it or not. `when` says what the nemesis was doing. */
static bool replica_check_exit(int i, const char *when) {
  struct replica *r = &g.r[i];
  char how[96], tail[PATH_MAX + 32];
  int ws = 0;
  uint64_t at = atomic_load(&r->exit_ms);
  if (at == 0 || atomic_load(&r->may_exit) || r->pid <= 0) {
    return false;
  }
  pthread_mutex_lock(&g.pid_mu);
  pid_t pid = r->pid;
  if (waitpid(pid, &ws, 0) != pid) {
    ws = atomic_load(&r->exit_status);
  }
  test_untrack(pid);
  r->pid = 0;
  pthread_mutex_unlock(&g.pid_mu);
  wait_status_text(ws, how, sizeof how);
  bool by_kill = WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL;
  r->exits++;
  snprintf(tail, sizeof tail, "%.3000s.exit-%d", r->log, r->exits);
  violation("%s (pid %d) exited unexpectedly at about %.1f s (noticed %s): "
            "%s%s%s; the end of its log (saved in %s):",
            r->name, (int)pid, (double)at / 1000.0, when, how,
            atomic_load(&r->stopped) ? ", while SIGSTOPped by the nemesis" : "",
            by_kill ? " (the nemesis sent no SIGKILL: another process "
                      "or the kernel did)"
                    : "",
            tail);
  log_tail_save(r->log, tail, 200, 12);
  return true;
}

/* Reports (and restarts, as a supervisor would) every replica that exited
 * by itself. Returns how many did. */
static int replicas_check_exits(const char *when) {
  int n = 0;
  for (int i = 0; i < g.n; i++) {
    if (replica_check_exit(i, when)) {
      n++;
      say("restarting %s, as a supervisor would", g.r[i].name);
      replica_spawn(i, false);
    }
  }
  return n;
}

/* Replica i's own view. 0 and *st (free with synod_status_free). */
static int replica_status(int i, unsigned flags, uint32_t timeout_ms,
                          struct synod_status *st) {
  struct synod_options o;
  struct synod_client *cl;
  int rv;
  synod_options_init(&o);
  o.endpoints = g.r[i].client;
  o.endpoints_in_order = true;
  o.client_name = "nemesis status";
  o.connect_timeout_ms = timeout_ms / 3;
  o.attempt_delay_ms = timeout_ms / 3;
  o.request_timeout_ms = timeout_ms;
  if ((rv = synod_client_new(&o, &cl)) != 0) {
    return rv;
  }
  memset(st, 0, sizeof *st);
  rv = synod_status_ex(cl, flags, timeout_ms, st);
  synod_client_free(cl);
  return rv;
}

/* The replica that reports itself leader in the highest term, or -1. */
static int find_leader(uint64_t *term) {
  int best = -1;
  uint64_t best_term = 0;
  for (int i = 0; i < g.n; i++) {
    struct synod_status st;
    if (g.r[i].pid == 0 || replica_status(i, 0, 600, &st) != 0) {
      continue;
    }
    if (strcmp(st.role, "leader") == 0 && st.term >= best_term) {
      best = i;
      best_term = st.term;
    }
    synod_status_free(&st);
  }
  if (term != NULL) {
    *term = best_term;
  }
  return best;
}

static int wait_leader(uint32_t timeout_ms) {
  uint64_t until = test_now_ms() + timeout_ms;
  for (;;) {
    int l = find_leader(NULL);
    if (l >= 0 || test_now_ms() > until) {
      return l;
    }
    sleep_ms(100);
  }
}

/* --------------------------------------------------------- teardown */

static void teardown(void) {
  if (g.torn_down) {
    return;
  }
  g.torn_down = true;
  monitor_stop();
  for (int i = 0; i < g.n; i++) {
    if (g.r[i].pid > 0) {
      kill(g.r[i].pid, SIGCONT);
      kill(g.r[i].pid, SIGKILL);
      waitpid(g.r[i].pid, NULL, 0);
      test_untrack(g.r[i].pid);
      g.r[i].pid = 0;
    }
  }
  nem_net_teardown(&g.net);
  for (int i = 0; i < g.n; i++) {
    if (g.r[i].mounted) {
      if (umount2(g.r[i].mnt, MNT_DETACH) != 0) {
        fprintf(stderr, "nemesis: umount %s: %s\n", g.r[i].mnt,
                strerror(errno));
      }
      g.r[i].mounted = false;
    }
  }
}

/* Runs g.cleanup_cmd with async-signal-safe calls only. */
static void run_cleanup_cmd(void) {
  pid_t p;
  if (g.cleanup_cmd[0] == '\0') {
    return;
  }
  p = fork();
  if (p == 0) {
    execl("/bin/sh", "sh", "-c", g.cleanup_cmd, (char *)NULL);
    _exit(127);
  }
  if (p > 0) {
    while (waitpid(p, NULL, 0) < 0 && errno == EINTR) {
    }
  }
}

/* Interrupted: the threads may hold stdio and malloc locks, so no exit()
 * and no stdio here; the run's directory stays (its logs). */
static void on_signal(int sig) {
  static const char msg[] = "nemesis: interrupted, cleaning up\n";
  if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) {
    /* nothing to do */
  }
  for (int i = 0; i < g.n; i++) {
    if (g.r[i].pid > 0) {
      kill(g.r[i].pid, SIGKILL);
    }
  }
  run_cleanup_cmd();
  _exit(128 + sig);
}

static void cleanup_cmd_build(void) {
  char ns[48];
  size_t l;
  snprintf(g.cleanup_cmd, sizeof g.cleanup_cmd, "for ns in %s-cl %s-c2 %s-br",
           g.net.prefix, g.net.prefix, g.net.prefix);
  for (int i = 0; i < g.n; i++) {
    nem_net_ns(&g.net, i, ns, sizeof ns);
    l = strlen(g.cleanup_cmd);
    snprintf(g.cleanup_cmd + l, sizeof g.cleanup_cmd - l, " %s", ns);
  }
  l = strlen(g.cleanup_cmd);
  snprintf(g.cleanup_cmd + l, sizeof g.cleanup_cmd - l,
           "; do for p in $(ip netns pids $ns 2>/dev/null); do "
           "[ $p = $$ ] || [ $p = %d ] || kill -KILL $p; done; "
           "ip netns delete $ns 2>/dev/null; done; ",
           (int)getpid());
  for (int i = 0; i < g.n; i++) {
    l = strlen(g.cleanup_cmd);
    snprintf(g.cleanup_cmd + l, sizeof g.cleanup_cmd - l,
             "umount -l '%.1000s' 2>/dev/null; ", g.r[i].mnt);
  }
  l = strlen(g.cleanup_cmd);
  snprintf(g.cleanup_cmd + l, sizeof g.cleanup_cmd - l, "true");
}

static void setup_replicas(void) {
  test_tmpdir("nemesis", g.dir, sizeof g.dir);
  for (int i = 0; i < g.n; i++) {
    struct replica *r = &g.r[i];
    char src[96];
    /* Built in locals: r lives inside g, and the compiler cannot tell
     * that g.dir and r's fields do not overlap. */
    char name[32], mnt[PATH_MAX];
    snprintf(name, sizeof name, "synod-%d", i);
    snprintf(mnt, sizeof mnt, "%.3000s/%s", g.dir, name);
    memcpy(r->name, name, sizeof name);
    nem_net_ns(&g.net, i, r->ns, sizeof r->ns);
    memcpy(r->mnt, mnt, sizeof mnt);
    snprintf(r->data, sizeof r->data, "%.3000s/data", mnt);
    snprintf(r->log, sizeof r->log, "%.3000s.log", mnt);
    char addr[sizeof g.net.addr[i]];
    memcpy(addr, g.net.addr[i], sizeof addr);
    snprintf(r->client, sizeof r->client, "%s:%d", addr, NEM_CLIENT_PORT);
    snprintf(r->peer, sizeof r->peer, "%s:%d", addr, NEM_PEER_PORT);
    snprintf(r->http, sizeof r->http, "%s:%d", addr, NEM_HTTP_PORT);
    CHECK(mkdir(r->mnt, 0755) == 0, "mkdir %s: %s", r->mnt, strerror(errno));
    /* The mount's source names the run, so a later run can clean it. */
    snprintf(src, sizeof src, "%s-%s", g.net.prefix, r->name);
    CHECK(mount(src, r->mnt, "tmpfs", 0, "size=" TMPFS_SIZE) == 0,
          "mount tmpfs on %s: %s", r->mnt, strerror(errno));
    r->mounted = true;
    size_t pl = strlen(g.peers), el = strlen(g.endpoints);
    snprintf(g.peers + pl, sizeof g.peers - pl, "%s%s=%s", i ? "," : "",
             r->name, r->peer);
    snprintf(g.endpoints + el, sizeof g.endpoints - el, "%s%s", i ? "," : "",
             r->client);
  }
}

/* ------------------------------------------------------------ faults */

struct fault_ctx {
  uint64_t rng;
  int leader;
  uint64_t leader_term;
  char what[256]; /* the fault as applied, for the round's line */
};

static void heal(void) {
  if (nem_net_heal(&g.net) != 0) {
    say("heal: some rule could not be flushed");
  }
}

/* Cuts every link between side a (mask) and side b (mask). */
static void cut_sides(unsigned a, unsigned b) {
  for (int i = 0; i < g.n; i++) {
    for (int j = 0; j < g.n; j++) {
      if ((a >> i & 1) && (b >> j & 1)) {
        CHECK(nem_net_cut(&g.net, i, j) == 0, "iptables: cut %d-%d", i, j);
      }
    }
  }
}

static void mask_names(unsigned m, char *out, size_t len) {
  out[0] = '\0';
  for (int i = 0; i < g.n; i++) {
    if (m >> i & 1) {
      size_t l = strlen(out);
      snprintf(out + l, len - l, "%s%d", l ? "," : "", i);
    }
  }
}

static void fault_partition(struct fault_ctx *f, unsigned a, unsigned b,
                            const char *label) {
  char sa[32], sb[32];
  int d = rng_int(&f->rng, 3000, 5000);
  mask_names(a, sa, sizeof sa);
  mask_names(b, sb, sizeof sb);
  snprintf(f->what, sizeof f->what, "%s {%s} | {%s} for %d ms", label, sa, sb,
           d);
  say("fault: %s", f->what);
  cut_sides(a, b);
  sleep_ms((unsigned)d);
}

static void fault_isolate_leader(struct fault_ctx *f) {
  unsigned all = (1u << g.n) - 1, l = 1u << f->leader;
  struct synod_status st;
  fault_partition(f, l, all & ~l, "leader isolated from its peers");
  /* CheckQuorum: by now (>= 3 s) it must have stepped down; clients still
   * reach it, so it can be asked. */
  if (replica_status(f->leader, 0, 1000, &st) == 0) {
    if (strcmp(st.role, "leader") == 0) {
      violation("%s, cut off from every peer for >= %d ms, still reports "
                "itself leader (term %" PRIu64 ")",
                g.r[f->leader].name, STEP_DOWN_MS, st.term);
    }
    synod_status_free(&st);
  }
}

static void fault_split(struct fault_ctx *f) {
  int order[NEM_REPLICAS_MAX];
  int minority = rng_int(&f->rng, 1, (g.n - 1) / 2);
  unsigned a = 0, all = (1u << g.n) - 1;
  for (int i = 0; i < g.n; i++) {
    order[i] = i;
  }
  rng_shuffle(&f->rng, order, g.n);
  for (int i = 0; i < minority; i++) {
    a |= 1u << order[i];
  }
  fault_partition(f, a, all & ~a, "split minority/majority");
}

static void fault_bridge(struct fault_ctx *f) {
  int order[NEM_REPLICAS_MAX];
  unsigned a = 0, b = 0;
  for (int i = 0; i < g.n; i++) {
    order[i] = i;
  }
  rng_shuffle(&f->rng, order, g.n);
  /* order[0] is the bridge: it sees both halves. */
  for (int i = 1; i < g.n; i++) {
    if (i <= (g.n - 1) / 2) {
      a |= 1u << order[i];
    } else {
      b |= 1u << order[i];
    }
  }
  char label[64];
  snprintf(label, sizeof label, "bridge %d between", order[0]);
  fault_partition(f, a, b, label);
}

static void fault_oneway(struct fault_ctx *f) {
  int from = rng_int(&f->rng, 0, 1) ? f->leader : rng_int(&f->rng, 0, g.n - 1);
  int to = (from + rng_int(&f->rng, 1, g.n - 1)) % g.n;
  int d = rng_int(&f->rng, 3000, 5000);
  snprintf(f->what, sizeof f->what, "one-way drop %d -> %d%s for %d ms", from,
           to, from == f->leader ? " (from the leader)" : "", d);
  say("fault: %s", f->what);
  CHECK(nem_net_cut_oneway(&g.net, from, to) == 0, "iptables one-way");
  sleep_ms((unsigned)d);
}

/* Starts synod-nemesis-delay in every namespace (replicas and clients);
 * false if it is not built (no libnetfilter-queue-dev) or fails. */
static bool delay_start(pid_t *pids, int delay_ms, int jitter_ms,
                        uint64_t seed) {
  char bin[PATH_MAX], d[16], j[16], sd[32], ns[48];
  test_binary("SYNOD_NEMESIS_DELAY", "synod-nemesis-delay", bin, sizeof bin);
  if (access(bin, X_OK) != 0) {
    return false;
  }
  snprintf(d, sizeof d, "%d", delay_ms);
  snprintf(j, sizeof j, "%d", jitter_ms);
  for (int i = 0; i <= g.n; i++) {
    char path[PATH_MAX + 16];
    if (i < g.n) {
      nem_net_ns(&g.net, i, ns, sizeof ns);
    } else {
      nem_net_ns_client(&g.net, ns, sizeof ns);
    }
    snprintf(sd, sizeof sd, "%" PRIu64, seed + (uint64_t)i);
    snprintf(path, sizeof path, "%.3000s/delay-%d.log", g.dir, i);
    char *argv[] = {"ip", "netns", "exec", ns, bin, d, j, sd, NULL};
    pids[i] = test_spawn(argv, path);
  }
  return true;
}

static void delay_stop(pid_t *pids) {
  for (int i = 0; i <= g.n; i++) {
    if (pids[i] > 0) {
      kill(pids[i], SIGKILL);
      test_wait(pids[i], 10000, "synod-nemesis-delay");
      pids[i] = 0;
    }
  }
}

static void fault_loss(struct fault_ctx *f) {
  int d = rng_int(&f->rng, 4000, 6000);
  int delay_ms = rng_int(&f->rng, 10, 40), jitter_ms = delay_ms / 2;
  pid_t pids[NEM_REPLICAS_MAX + 1] = {0};
  bool delayed = delay_start(pids, delay_ms, jitter_ms, f->rng);
  if (delayed) {
    snprintf(f->what, sizeof f->what,
             "20%% loss, then %d ms +- %d ms delay (NFQUEUE; this kernel has "
             "no netem) on every packet received, rate capped at 2mbit "
             "(htb), for %d ms",
             delay_ms, jitter_ms, d);
  } else {
    snprintf(f->what, sizeof f->what,
             "20%% loss on every link, rate capped at 2mbit (htb), for %d ms; "
             "no added delay or jitter: no netem on this kernel and "
             "synod-nemesis-delay not built (libnetfilter-queue-dev)",
             d);
  }
  say("fault: %s", f->what);
  CHECK(nem_net_loss(&g.net, 20, "2mbit") == 0, "iptables/tc loss");
  if (delayed) {
    CHECK(nem_net_queue(&g.net) == 0, "iptables NFQUEUE");
  }
  sleep_ms((unsigned)d);
  if (delayed) {
    heal(); /* the rules first: no packet waits for a killed delayer */
    delay_stop(pids);
  }
}

/* The old leader, resumed, is asked at once (its only endpoint) for reads
 * and adds; they join the history, so a stale answer fails the counter's
 * linearizability. */
struct probe {
  int replica;
  pthread_t t;
  uint64_t until_us;
  int answered, failed;
};

static void *probe_main(void *arg) {
  struct probe *p = arg;
  struct synod_options o;
  struct synod_client *cl;
  synod_options_init(&o);
  o.endpoints = g.r[p->replica].client;
  o.endpoints_in_order = true;
  o.client_name = "nemesis stale-leader probe";
  o.connect_timeout_ms = 2500; /* the Hello waits in its socket */
  o.attempt_delay_ms = 2500;
  o.request_timeout_ms = 8000;
  if (synod_client_new(&o, &cl) != 0) {
    return NULL;
  }
  for (int k = 0; nem_now_us() < p->until_us; k++) {
    uint64_t t0 = nem_now_us();
    int64_t v = 0;
    int rv;
    if (k % 2 == 0) {
      rv = synod_counter_get(cl, NEM_COUNTER_NAME, 0, 8000, &v);
      nem_record_get(NEM_CLIENT_PROBE, cl, t0, nem_now_us(), rv, v);
    } else {
      struct history_counter_entry e = {
          .op = HISTORY_COUNTER_ADD_GET, .arg1 = 1, .invoke = t0};
      rv = synod_counter_add(cl, NEM_COUNTER_NAME, 1, 8000, &v);
      e.complete = nem_now_us();
      e.pending = rv != 0;
      e.value = v;
      nem_record_op(NEM_CLIENT_PROBE, cl, rv, &e);
    }
    rv == 0 ? p->answered++ : p->failed++;
    sleep_ms(5);
  }
  synod_client_free(cl);
  return NULL;
}

static void fault_stop_leader(struct fault_ctx *f) {
  int l = f->leader;
  int d = rng_int(&f->rng, 2000, 3500); /* election timeout: <= 1 s */
  struct probe p = {.replica = l};
  struct synod_status st;
  snprintf(f->what, sizeof f->what,
           "SIGSTOP of the leader %d (term %" PRIu64 ") for %d ms, SIGCONT", l,
           f->leader_term, d);
  say("fault: %s", f->what);
  replica_stop(l, true);
  sleep_ms((unsigned)d - 1000);
  /* Connect (and ask) while it is stopped: the request waits in its
   * socket and is the first thing it sees when it resumes. */
  p.until_us = nem_now_us() + 4000000;
  pthread_create(&p.t, NULL, probe_main, &p);
  sleep_ms(1000);
  replica_stop(l, false);
  sleep_ms(1500);
  if (replica_status(l, 0, 1000, &st) == 0) {
    if (strcmp(st.role, "leader") == 0 && st.term == f->leader_term) {
      /* Stale only if someone moved to a newer term during the stop: with
       * no election at all (a machine so loaded that no follower's timer
       * ran out in time), it is still the one leader. */
      char others[256] = "";
      size_t off = 0;
      bool newer = false;
      for (int i = 0; i < g.n; i++) {
        struct synod_status o;
        if (i == l || replica_status(i, 0, 1000, &o) != 0) {
          continue;
        }
        newer |= o.term > st.term;
        int w = snprintf(others + off, sizeof others - off,
                         " %s %s of term %" PRIu64 ";", g.r[i].name, o.role,
                         o.term);
        off += w > 0 && (size_t)w < sizeof others - off ? (size_t)w : 0;
        synod_status_free(&o);
      }
      if (newer) {
        violation("%s still reports itself leader of term %" PRIu64
                  " 1.5 s after SIGCONT (the others:%s)",
                  g.r[l].name, st.term, others);
      } else {
        say("%s is still leader of term %" PRIu64 " after SIGCONT: no "
            "election during the stop (the others:%s)",
            g.r[l].name, st.term, others[0] ? others : " no answer");
      }
    }
    synod_status_free(&st);
  }
  pthread_join(p.t, NULL);
  say("stale-leader probe: %d answered, %d failed", p.answered, p.failed);
}

static void fault_kill_one(struct fault_ctx *f) {
  int v = rng_int(&f->rng, 0, 1) ? f->leader : rng_int(&f->rng, 0, g.n - 1);
  int d = rng_int(&f->rng, 1000, 3000);
  snprintf(f->what, sizeof f->what, "SIGKILL %d%s, restart after %d ms", v,
           v == f->leader ? " (the leader)" : "", d);
  say("fault: %s", f->what);
  replica_kill(v);
  sleep_ms((unsigned)d);
  replica_spawn(v, false);
}

static void fault_kill_all(struct fault_ctx *f) {
  int d = rng_int(&f->rng, 500, 2000);
  snprintf(f->what, sizeof f->what, "SIGKILL all, restart after %d ms", d);
  say("fault: %s", f->what);
  for (int i = 0; i < g.n; i++) {
    replica_kill(i);
  }
  sleep_ms((unsigned)d);
  for (int i = 0; i < g.n; i++) {
    replica_spawn(i, false);
  }
}

static bool log_has_since(const char *path, long from, const char *needle) {
  char *s = test_slurp(path);
  bool yes = (long)strlen(s) > from && strstr(s + from, needle) != NULL;
  free(s);
  return yes;
}

/* Prints the first ERROR line of path after offset from. */
static void say_first_error(const char *path, long from) {
  char *s = test_slurp(path);
  if ((long)strlen(s) > from) {
    char *e = strstr(s + from, " ERROR ");
    if (e != NULL) {
      char *bol = e, *eol = strchr(e, '\n');
      while (bol > s + from && bol[-1] != '\n') {
        bol--;
      }
      say("  its log: %.*s", (int)(eol ? eol - bol : (long)strlen(bol)), bol);
    }
  }
  free(s);
}

static long file_size(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 ? (long)sb.st_size : 0;
}

/* Replica i said it is stopping: it must be gone within ms. If it is not,
 * its threads' stacks go to <log>.stacks (gdb, if installed), and it is
 * SIGKILLed so that the run goes on. */
static void hung_check(int i, uint32_t ms) {
  struct replica *r = &g.r[i];
  char cmd[PATH_MAX * 2];
  int code;
  for (uint64_t until = test_now_ms() + ms; test_now_ms() < until;) {
    if (replica_exited(i, &code)) {
      return;
    }
    sleep_ms(50);
  }
  snprintf(cmd, sizeof cmd,
           "command -v gdb >/dev/null && gdb -p %d -batch -ex "
           "'thread apply all bt' > '%s.stacks' 2>&1; true",
           (int)r->pid, r->log);
  test_sh(cmd, "/dev/null", 60000);
  violation("%s logged \"stopping the replica\" but was still running %u ms "
            "later (hung in exit; stacks in %s.stacks)",
            r->name, ms, r->log);
  replica_kill(i);
}

/* Did the others keep serving: an add invoked after t_us succeeded. */
static void check_served(uint64_t t_us, const char *when) {
  if (nem_workload_last_ok(NEM_ADD) < t_us) {
    violation("no add succeeded %s (the others must serve)", when);
  }
}

static void fault_disk_full(struct fault_ctx *f) {
  int v = rng_int(&f->rng, 0, g.n - 1);
  /* Left free after the fill: none, or a few pages, so that a write of
   * several pages is cut short (a short write, not ENOSPC). */
  static const int free_kb_choices[] = {0, 12, 28, 60};
  int free_kb = free_kb_choices[rng_int(&f->rng, 0, 3)];
  struct replica *r = &g.r[v];
  char cmd[2 * PATH_MAX + 128];
  long from = file_size(r->log);
  int code = 0;
  bool exited = false;
  uint64_t t0 = nem_now_us(), until;
  snprintf(f->what, sizeof f->what,
           "disk full for %d%s (its %s tmpfs filled, %d KiB left), then space "
           "returns",
           v, v == f->leader ? " (the leader)" : "", TMPFS_SIZE, free_kb);
  say("fault: %s", f->what);
  atomic_store(&r->may_exit, true); /* it should stop, saying why */
  snprintf(cmd, sizeof cmd,
           "dd if=/dev/zero of='%s/fill' bs=4k 2>/dev/null; "
           "truncate -s -%dK '%s/fill'; true",
           r->mnt, free_kb, r->mnt);
  test_sh(cmd, "/dev/null", 30000);
  /* The replica must notice at its next write; the workload writes all
   * the time, but the WAL file is preallocated (2 MiB) and only its
   * checkpoint into LMDB needs new space. Allow 15 s. */
  until = test_now_ms() + 15000;
  while (test_now_ms() < until && !(exited = replica_exited(v, &code))) {
    if (log_has_since(r->log, from, "stopping the replica")) {
      /* _exit(1) takes milliseconds; 10 s allows a loaded machine (3 s
       * did not: seed 1210 round 28 with builds running beside it, the
       * replica a zombie by the time gdb looked). */
      hung_check(v, 10000);
      exited = r->pid == 0;
      code = 1;
      break;
    }
    sleep_ms(100);
  }
  if (exited) {
    bool clear = log_has_since(r->log, from, "No space left on device") ||
                 log_has_since(r->log, from, "storage full");
    bool eio = log_has_since(r->log, from, "Input/output error");
    say("%s stopped (exit %d) with a full disk; its log %s the reason", r->name,
        code, clear ? "names" : "does NOT name");
    say_first_error(r->log, from);
    if (!clear && eio) {
      /* LMDB's mdb_txn_commit turns a short pwrite (what a full tmpfs or
       * ext4 gives) into EIO, and the store passes that on: the operator
       * reads "Input/output error" and suspects a failing disk. */
      known_bug("%s reported its full disk as an I/O error, not as "
                "ENOSPC/storage full (store: wal checkpoint: mdb_txn_commit: "
                "Input/output error)",
                r->name);
    } else if (!clear) {
      violation("%s stopped with a full disk without saying so in its log "
                "(%s)",
                r->name, r->log);
    }
    /* A supervisor restarts it while the disk is still full: it must
     * fail again the same clear way, or run. */
    from = file_size(r->log);
    replica_spawn(v, false);
    atomic_store(&r->may_exit, true);
    sleep_ms(2000);
    say_first_error(r->log, from);
    if (replica_exited(v, &code)) {
      say("restarted with the disk still full: stopped again (exit %d)%s", code,
          log_has_since(r->log, from, "No space left on device")
              ? ", naming the reason"
              : "");
    } else {
      say("restarted with the disk still full: running");
    }
  } else {
    say("%s kept running 15 s with a full disk (its files had room left)",
        r->name);
  }
  check_served(t0 + 1000000, "while one replica's disk was full");
  snprintf(cmd, sizeof cmd, "rm -f '%s/fill'", r->mnt);
  test_sh(cmd, "/dev/null", 10000);
  if (replica_exited(v, &code)) {
    say("%s stopped (exit %d) before the space returned", r->name, code);
  }
  if (r->pid == 0) {
    replica_spawn(v, false);
  } else {
    atomic_store(&r->may_exit, false);
  }
}

/* ---------------------------------------------------- clock-rate bound */

/* Fail closed, measured: a client in the second client namespace takes a
 * lock, then its namespace is cut off; another client queues for the
 * lock. The cut-off holder must be told LOST (its library's deadline,
 * on its own clock) before the other is granted the lock (the session's
 * expiry, in cluster time: the leader's clock). With the leader's clock
 * within the bound (README: 1/0.95) this must hold; with a leader 1.5x
 * fast it is expected not to, and the run says by how much. */
#define BOUND_LOCK "nemesis-bound"
#define BOUND_TTL_MS 3000

struct lonely {
  pthread_t t;
  _Atomic uint64_t granted_us, lost_us;
  _Atomic int rv;
  _Atomic bool done, quit;
};

static void lonely_lock_cb(void *arg, enum synod_lock_event ev,
                           const char *name, uint64_t owner, uint64_t token) {
  struct lonely *l = arg;
  uint64_t zero = 0;
  (void)name, (void)owner, (void)token;
  if (ev == SYNOD_LOCK_LOST) {
    atomic_compare_exchange_strong(&l->lost_us, &zero, nem_now_us());
  }
}

static void *lonely_main(void *arg) {
  struct lonely *l = arg;
  struct synod_options o;
  struct synod_client *c;
  struct synod_lock_grant gr;
  int rv;
  nem_net_enter(&g.net, "c2"); /* this thread, and the library's */
  synod_options_init(&o);
  o.endpoints = g.endpoints;
  o.client_name = "nemesis cut-off holder";
  o.session_ttl_ms = BOUND_TTL_MS;
  o.stall_timeout_ms = 600;
  o.request_timeout_ms = 3000;
  o.lock_cb = lonely_lock_cb;
  o.cb_arg = l;
  if (synod_client_new(&o, &c) != 0) {
    atomic_store(&l->rv, SYNOD_EINTERNAL);
    atomic_store(&l->done, true);
    return NULL;
  }
  rv = synod_lock_acquire(c, BOUND_LOCK, 1, 5000, &gr);
  if (rv == 0) {
    atomic_store(&l->granted_us, nem_now_us());
  }
  atomic_store(&l->rv, rv);
  atomic_store(&l->done, true);
  while (!atomic_load(&l->quit)) {
    sleep_ms(20);
  }
  synod_client_free(c);
  return NULL;
}

static void bound_probe(const char *label, bool beyond_bound) {
  struct lonely l = {0};
  struct synod_options o;
  struct synod_client *b = NULL;
  struct synod_lock_grant gr;
  uint64_t t_cut, t_b = 0, until;
  int rv;
  pthread_create(&l.t, NULL, lonely_main, &l);
  for (until = test_now_ms() + 8000;
       !atomic_load(&l.done) && test_now_ms() < until;) {
    sleep_ms(10);
  }
  if (!atomic_load(&l.done) || atomic_load(&l.rv) != 0) {
    say("bound probe (%s): the holder got no lock (%s); skipped", label,
        synod_errname(atomic_load(&l.rv)));
    goto out;
  }
  sleep_ms(300);
  CHECK(nem_net_cut_lonely(&g.net) == 0, "iptables: cut the holder off");
  t_cut = nem_now_us();
  synod_options_init(&o);
  o.endpoints = g.endpoints;
  o.client_name = "nemesis next holder";
  CHECK(synod_client_new(&o, &b) == 0, "synod_client_new");
  rv = synod_lock_acquire(b, BOUND_LOCK, 2, 10000, &gr);
  if (rv == 0) {
    t_b = nem_now_us();
  }
  for (until = test_now_ms() + 5000;
       atomic_load(&l.lost_us) == 0 && test_now_ms() < until;) {
    sleep_ms(10);
  }
  uint64_t lost = atomic_load(&l.lost_us);
  if (rv != 0 || lost == 0) {
    violation("bound probe (%s): %s", label,
              rv != 0 ? "the next holder was never granted the lock of a "
                        "cut-off holder"
                      : "the cut-off holder was never told LOST");
  } else if (t_b < lost) {
    if (beyond_bound) {
      g.bound_exceeded++;
      say("bound probe (%s): beyond the bound, as expected: the lock went "
          "to the next holder %.0f ms after the cut, %.0f ms BEFORE the "
          "cut-off holder was told LOST",
          label, (t_b - t_cut) / 1e3, (lost - t_b) / 1e3);
    } else {
      violation("fail closed broken (%s): the lock went to the next holder "
                "%.0f ms after the cut, %.0f ms before the cut-off holder "
                "was told LOST",
                label, (t_b - t_cut) / 1e3, (lost - t_b) / 1e3);
    }
  } else {
    say("bound probe (%s): the cut-off holder was told LOST %.0f ms after "
        "the cut, the next holder granted %.0f ms after that: fail closed "
        "held",
        label, (lost - t_cut) / 1e3, (t_b - lost) / 1e3);
  }
  if (rv == 0) {
    synod_lock_release(b, BOUND_LOCK, 2, 3000, NULL);
  }
out:
  heal();
  synod_client_free(b);
  atomic_store(&l.quit, true);
  pthread_join(l.t, NULL);
}

/* One replica's clock (CLOCK_MONOTONIC and the wall clock, and so its
 * timers) runs 1.5x fast. It matters most as leader: the leader stamps
 * cluster time, by which sessions expire. So once it has caught up, the
 * current leader is SIGSTOPped for 1.5 s (up to five times; a SIGKILL
 * would not do: the followers see its port refuse and elect at once,
 * whoever is first) until the fast replica, whose election timeout runs
 * out 1.5x sooner, wins. */
static void fault_fast_clock(struct fault_ctx *f) {
  int v = rng_int(&f->rng, 0, g.n - 1);
  int d = rng_int(&f->rng, 6000, 9000);
  int led_ms = 0, nudges = 0;
  bool probed = false;
  uint64_t t0;
  if (access(FAKETIME_LIB, R_OK) != 0) {
    snprintf(f->what, sizeof f->what,
             "fast clock: SKIPPED, %s missing (apt-get install libfaketime)",
             FAKETIME_LIB);
    say("fault: %s", f->what);
    sleep_ms(2000);
    return;
  }
  snprintf(f->what, sizeof f->what,
           "clock %sx fast on %d (libfaketime, restarted) for %d ms",
           FASTCLOCK_RATE, v, d);
  say("fault: %s", f->what);
  replica_kill(v);
  replica_spawn(v, true);
  t0 = nem_now_us();
  sleep_ms(1500);
  if (find_leader(NULL) != v) {
    bound_probe("a leader at the normal rate", false);
  }
  for (uint64_t until = test_now_ms() + (uint64_t)d; test_now_ms() < until;) {
    int l = find_leader(NULL);
    if (l == v) {
      if (!probed) {
        probed = true;
        bound_probe("the leader 1.5x fast", true);
      }
      led_ms += 300;
    } else if (l >= 0 && nudges < 5 && led_ms == 0) {
      nudges++;
      say("SIGSTOP the leader %d for 1500 ms so that %d may lead", l, v);
      replica_stop(l, true);
      sleep_ms(1500);
      replica_stop(l, false);
      sleep_ms(500);
      continue;
    }
    sleep_ms(300);
  }
  say("the fast replica led for about %d ms of the fault", led_ms);
  check_served(t0 + 1000000, "while one replica's clock ran fast");
  replica_kill(v);
  replica_spawn(v, false);
}

static void fault_run(enum fault k, struct fault_ctx *f) {
  switch (k) {
  case F_ISOLATE_LEADER:
    fault_isolate_leader(f);
    break;
  case F_SPLIT:
    fault_split(f);
    break;
  case F_BRIDGE:
    fault_bridge(f);
    break;
  case F_ONEWAY:
    fault_oneway(f);
    break;
  case F_LOSS:
    fault_loss(f);
    break;
  case F_STOP_LEADER:
    fault_stop_leader(f);
    break;
  case F_KILL_ONE:
    fault_kill_one(f);
    break;
  case F_KILL_ALL:
    fault_kill_all(f);
    break;
  case F_DISK_FULL:
    fault_disk_full(f);
    break;
  case F_FAST_CLOCK:
    fault_fast_clock(f);
    break;
  default:
    break;
  }
  heal();
}

/* ------------------------------------------------------------ checks */

static int cmp_hold(const void *a, const void *b) {
  const struct nem_hold *x = a, *y = b;
  return x->start_us < y->start_us ? -1 : x->start_us > y->start_us;
}

static int cmp_lead(const void *a, const void *b) {
  const struct nem_lead *x = a, *y = b;
  return x->start_us < y->start_us ? -1 : x->start_us > y->start_us;
}

static const char *const counter_op_names[] = {"get",     "set",     "cas",
                                               "add_get", "get_add", "delete"};

/* Writes a counter history, one operation a line with who made it and
 * what the library said, to path; --check-history reads it back. */
static bool counter_save(const char *path,
                         const struct history_counter_entry *ops,
                         const struct nem_op_meta *meta, size_t n,
                         int64_t initial, const char *verdict) {
  FILE *f = fopen(path, "w");
  if (f == NULL) {
    return false;
  }
  fprintf(f,
          "# synod-nemesis counter history: seed %" PRIu64 ", round %d (%s), "
          "%d replicas\n"
          "# replay: %s\n"
          "# verdict: %s\n"
          "# initial %" PRId64 "\n"
          "# clients: 0-%d workload (adders, then the reader), %d the "
          "stale-leader probe, %d the final read, %d carried from an earlier "
          "round (unknown outcome)\n"
          "# times: CLOCK_MONOTONIC us; a pending op has no completion\n"
          "# i op arg1 arg2 invoke complete pending failed overflow swapped "
          "value | client round status session message\n",
          g.seed, g.round, fault_names[g.fault], g.n, replay_cmd(), verdict,
          initial, NEM_CLIENT_PROBE - 1, NEM_CLIENT_PROBE, NEM_CLIENT_FINAL,
          NEM_CLIENT_CARRIED);
  for (size_t i = 0; i < n; i++) {
    const struct history_counter_entry *e = &ops[i];
    const struct nem_op_meta *m = &meta[i];
    fprintf(f,
            "%zu %s %" PRId64 " %" PRId64 " %" PRIu64 " %" PRIu64
            " %d %d %d %d %" PRId64 " | %d %d %s %" PRIu64 " %s\n",
            i, counter_op_names[e->op], e->arg1, e->arg2, e->invoke,
            e->complete, e->pending, e->failed, e->overflow, e->swapped,
            e->value, m->client, m->round, m->rv ? synod_errname(m->rv) : "OK",
            m->session, m->why);
  }
  return fclose(f) == 0;
}

/* --check-history FILE: the counter check of a saved history, offline.
 * Exit 0 linearizable, 1 not, 2 inconclusive or unreadable. */
static int check_history_file(const char *path) {
  FILE *f = fopen(path, "r");
  char line[1024], why[512] = "";
  struct history_counter_entry *ops = NULL;
  size_t n = 0, cap = 0, pending = 0;
  int64_t initial = 0;
  if (f == NULL) {
    fprintf(stderr, "%s: %s\n", path, strerror(errno));
    return 2;
  }
  while (fgets(line, sizeof line, f) != NULL) {
    struct history_counter_entry e = {0};
    char op[16];
    size_t i;
    int pend, failed, overflow, swapped;
    if (sscanf(line, "# initial %" SCNd64, &initial) == 1 || line[0] == '#') {
      continue;
    }
    if (sscanf(line,
               "%zu %15s %" SCNd64 " %" SCNd64 " %" SCNu64 " %" SCNu64
               " %d %d %d %d %" SCNd64,
               &i, op, &e.arg1, &e.arg2, &e.invoke, &e.complete, &pend, &failed,
               &overflow, &swapped, &e.value) != 11) {
      continue;
    }
    int kind = -1;
    for (int k = 0; k < 6; k++) {
      if (strcmp(op, counter_op_names[k]) == 0) {
        kind = k;
      }
    }
    e.op = (enum history_counter_op)(kind < 0 ? 0 : kind);
    if (kind < 0) {
      fprintf(stderr, "%s: unknown operation %s\n", path, op);
      fclose(f);
      return 2;
    }
    e.pending = pend, e.failed = failed, e.overflow = overflow;
    e.swapped = swapped;
    pending += e.pending;
    if (n == cap) {
      cap = cap ? 2 * cap : 1024;
      ops = realloc(ops, cap * sizeof *ops);
      CHECK(ops != NULL, "realloc");
    }
    ops[n++] = e;
  }
  fclose(f);
  enum history_verdict v =
      history_counter_check(ops, n, initial, 0, why, sizeof why);
  printf("%s: %zu operations (%zu pending), initial %" PRId64 ": %s%s%s\n",
         path, n, pending, initial,
         v == HISTORY_LINEARIZABLE       ? "linearizable"
         : v == HISTORY_NOT_LINEARIZABLE ? "NOT linearizable"
                                         : "inconclusive (search budget)",
         why[0] ? ": " : "", why);
  free(ops);
  return v == HISTORY_LINEARIZABLE ? 0 : v == HISTORY_NOT_LINEARIZABLE ? 1 : 2;
}

/* Unknown outcomes are carried this long into later rounds' histories. */
#define CARRY_MS 30000
#define CARRY_MAX 256

/* The round's counter history must be linearizable from the value the
 * last round's final read saw. An add whose outcome the client never
 * learned may take effect after that read (its request still in a
 * socket, a follower's forward or an uncommitted log entry when the
 * client gave up): so if the round's own history does not pass, it is
 * checked again with the unknown outcomes of the last rounds in it (as
 * pending operations, which may take effect once or never). On failure
 * the history goes to <dir>/counter-round<K>.txt. */
static void check_counter(const struct nem_record *rec, int64_t initial) {
  char why[512] = "";
  bool carried_used = false;
  const struct history_counter_entry *ops = rec->ops;
  const struct nem_op_meta *meta = rec->meta;
  size_t n = rec->ops_n;
  struct history_counter_entry *all = NULL;
  struct nem_op_meta *all_meta = NULL;
  enum history_verdict v =
      history_counter_check(ops, n, initial, 0, why, sizeof why);
  if (v == HISTORY_NOT_LINEARIZABLE && g.carry_n > 0) {
    char why2[512] = "";
    n = g.carry_n + rec->ops_n;
    all = malloc(n * sizeof *all);
    all_meta = malloc(n * sizeof *all_meta);
    CHECK(all != NULL && all_meta != NULL, "malloc");
    memcpy(all, g.carry, g.carry_n * sizeof *all);
    memcpy(all_meta, g.carry_meta, g.carry_n * sizeof *all_meta);
    memcpy(all + g.carry_n, rec->ops, rec->ops_n * sizeof *all);
    memcpy(all_meta + g.carry_n, rec->meta, rec->ops_n * sizeof *all_meta);
    ops = all;
    meta = all_meta;
    v = history_counter_check(ops, n, initial, 0, why2, sizeof why2);
    if (v == HISTORY_LINEARIZABLE) {
      carried_used = true;
      say("counter: linearizable only if some of the %zu earlier "
          "operations whose outcome is unknown took effect in this round, "
          "after the last round's final read (as they may):",
          g.carry_n);
      for (size_t i = 0; i < g.carry_n; i++) {
        say("  round %d, invoked at %.3f s, session %" PRIu64 ", %s: %s",
            g.carry_meta[i].round, (double)g.carry[i].invoke / 1e6,
            g.carry_meta[i].session, synod_errname(g.carry_meta[i].rv),
            g.carry_meta[i].why);
      }
    } else {
      snprintf(why, sizeof why,
               "%.400s (with the %zu earlier unknown outcomes)", why2,
               g.carry_n);
    }
  }
  if (v == HISTORY_NOT_LINEARIZABLE) {
    char path[PATH_MAX + 32], verdict[600];
    snprintf(path, sizeof path, "%.3000s/counter-round%d.txt", g.dir, g.round);
    snprintf(verdict, sizeof verdict, "not linearizable: %s", why);
    bool saved = counter_save(path, ops, meta, n, initial, verdict);
    violation("counter history of %zu operations is not linearizable "
              "(initial %" PRId64 "): %s; %s %s",
              n, initial, why, saved ? "history saved in" : "could not save",
              path);
  } else if (v == HISTORY_INCONCLUSIVE) {
    say("counter check INCONCLUSIVE (search budget) over %zu operations", n);
  }
  /* The next round's carry: this round's unknown outcomes, and earlier
   * ones still young, unless they were needed here (then they took
   * effect, at most once). */
  uint64_t young = nem_now_us() - (uint64_t)CARRY_MS * 1000;
  size_t k = 0;
  for (size_t i = 0; i < g.carry_n && !carried_used; i++) {
    if (g.carry[i].invoke >= young) {
      g.carry[k] = g.carry[i];
      g.carry_meta[k++] = g.carry_meta[i];
    }
  }
  for (size_t i = 0; i < rec->ops_n; i++) {
    const struct history_counter_entry *e = &rec->ops[i];
    if (!e->pending || e->op == HISTORY_COUNTER_GET) {
      continue;
    }
    if (k == CARRY_MAX) { /* the oldest goes */
      memmove(g.carry, g.carry + 1, (k - 1) * sizeof *g.carry);
      memmove(g.carry_meta, g.carry_meta + 1, (k - 1) * sizeof *g.carry_meta);
      k--;
    }
    if (g.carry == NULL) {
      g.carry = calloc(CARRY_MAX, sizeof *g.carry);
      g.carry_meta = calloc(CARRY_MAX, sizeof *g.carry_meta);
      CHECK(g.carry != NULL && g.carry_meta != NULL, "calloc");
    }
    g.carry[k] = *e;
    g.carry_meta[k] = rec->meta[i];
    g.carry_meta[k].client = NEM_CLIENT_CARRIED;
    snprintf(g.carry_meta[k].why, sizeof g.carry_meta[k].why,
             "client %d: %.80s", rec->meta[i].client, rec->meta[i].why);
    k++;
  }
  g.carry_n = k;
  free(all);
  free(all_meta);
}

/* Holds are [grant seen, release invoked or LOST told]: two holders at once
 * is a double grant; a later hold with a smaller token breaks fencing. */
static void check_locks(struct nem_record *rec) {
  qsort(rec->holds, rec->holds_n, sizeof *rec->holds, cmp_hold);
  for (size_t i = 0; i < rec->holds_n; i++) {
    const struct nem_hold *a = &rec->holds[i];
    for (size_t j = i + 1; j < rec->holds_n; j++) {
      const struct nem_hold *b = &rec->holds[j];
      if (b->start_us < a->end_us && b->client != a->client) {
        violation("lock held by client %d (token %" PRIu64 ", %.3f..%.3f s) "
                  "and client %d (token %" PRIu64 ", %.3f..%.3f s) at once",
                  a->client, a->token, a->start_us / 1e6, a->end_us / 1e6,
                  b->client, b->token, b->start_us / 1e6, b->end_us / 1e6);
      }
      /* The same token again, to the same client, is a reentry: its
       * release of the earlier hold timed out and did not take effect. */
      bool reentry = b->token == a->token && b->client == a->client;
      if (b->start_us >= a->end_us && b->token <= a->token && !reentry) {
        violation("lock grant token %" PRIu64 " (client %d, from %.3f s) "
                  "after token %" PRIu64 " (client %d, until %.3f s)",
                  b->token, b->client, b->start_us / 1e6, a->token, a->client,
                  a->end_us / 1e6);
      }
    }
  }
  for (size_t i = 0; i < rec->refusals_n; i++) {
    const struct nem_fence_refusal *r = &rec->refusals[i];
    violation("fenced resource refused client %d's token %" PRIu64
              " (it had seen %" PRIu64 ") at %.3f s, while that client had "
              "no LOST notice: someone else was granted the lock meanwhile",
              r->client, r->token, r->max_seen, r->at_us / 1e6);
  }
  if (rec->fence_order_errors > 0) {
    violation("fenced resource accepted %" PRIu64 " out-of-order tokens",
              rec->fence_order_errors);
  }
}

static void check_elections(struct nem_record *rec) {
  qsort(rec->leads, rec->leads_n, sizeof *rec->leads, cmp_lead);
  for (size_t i = 0; i < rec->leads_n; i++) {
    const struct nem_lead *a = &rec->leads[i];
    for (size_t j = i + 1; j < rec->leads_n; j++) {
      const struct nem_lead *b = &rec->leads[j];
      if (b->start_us < a->end_us && b->client != a->client) {
        violation("election led by client %d (rev %" PRIu64 ") and client %d "
                  "(rev %" PRIu64 ") at once (%.3f s)",
                  a->client, a->revision, b->client, b->revision,
                  b->start_us / 1e6);
      }
      /* The same revision to the same client: its resign timed out. */
      bool again = b->revision == a->revision && b->client == a->client;
      if (b->start_us >= a->end_us && b->revision <= a->revision && !again) {
        violation("election revision %" PRIu64 " after %" PRIu64, b->revision,
                  a->revision);
      }
    }
  }
}

/* Every running replica at one applied index with one digest. A replica
 * that exited by itself meanwhile is reported (and restarted). */
static void check_digests(void) {
  uint64_t until = test_now_ms() + DIGEST_BOUND_MS;
  char last[512] = "", silent[1024] = "";
  for (;;) {
    struct synod_status st[NEM_REPLICAS_MAX];
    bool all = true, same = true;
    bool ok[NEM_REPLICAS_MAX] = {false};
    memset(st, 0, sizeof st);
    replicas_check_exits("while the digests were compared");
    silent[0] = '\0';
    for (int i = 0; i < g.n; i++) {
      int rv = g.r[i].pid == 0
                   ? SYNOD_ECONNECT
                   : replica_status(i, SYNOD_STATUS_DIGEST, 1000, &st[i]);
      ok[i] = rv == 0;
      if (!ok[i]) {
        size_t l = strlen(silent);
        all = false;
        snprintf(silent + l, sizeof silent - l, " %s: %s", g.r[i].name,
                 g.r[i].pid == 0                     ? "not running"
                 : atomic_load(&g.r[i].exit_ms) != 0 ? "exited"
                                                     : synod_errname(rv));
      }
    }
    if (all) {
      last[0] = '\0';
      for (int i = 0; i < g.n; i++) {
        size_t l = strlen(last);
        snprintf(last + l, sizeof last - l, " %s@%" PRIu64 "=%016" PRIx64,
                 g.r[i].name, st[i].applied_index, st[i].digest);
        if (st[i].applied_index != st[0].applied_index) {
          same = false;
        }
      }
      if (same) {
        bool equal = true;
        for (int i = 1; i < g.n; i++) {
          equal = equal && st[i].digest == st[0].digest;
        }
        for (int i = 0; i < g.n; i++) {
          synod_status_free(&st[i]);
        }
        if (!equal) {
          violation("replicas differ at one applied index:%s", last);
        } else {
          say("digests agree:%s", last);
        }
        return;
      }
    }
    for (int i = 0; i < g.n; i++) {
      if (ok[i]) {
        synod_status_free(&st[i]);
      }
    }
    if (test_now_ms() > until) {
      violation("replicas did not reach one applied index within %d ms "
                "(last seen:%s%s%s)",
                DIGEST_BOUND_MS, last[0] ? last : " no answer from all",
                silent[0] ? "; did not answer:" : "", silent);
      return;
    }
    sleep_ms(50);
  }
}

/* The counter now, by a linearizable read, appended to the history: every
 * acknowledged add must be in it. */
static bool final_read(int64_t *value) {
  struct synod_options o;
  struct synod_client *cl;
  uint64_t until = test_now_ms() + 10000;
  bool ok = false;
  synod_options_init(&o);
  o.endpoints = g.endpoints;
  o.client_name = "nemesis final read";
  CHECK(synod_client_new(&o, &cl) == 0, "synod_client_new");
  while (!ok && test_now_ms() < until) {
    uint64_t t0 = nem_now_us();
    int rv = synod_counter_get(cl, NEM_COUNTER_NAME, 0, 2000, value);
    nem_record_get(NEM_CLIENT_FINAL, cl, t0, nem_now_us(), rv, *value);
    ok = rv == 0;
  }
  synod_client_free(cl);
  return ok;
}

/* Waits until adds, lock grants and campaigns invoked after heal_us have
 * succeeded; returns the time that took, or -1 past the bound. */
static long wait_recovery(uint64_t heal_us) {
  uint64_t until = nem_now_us() + (uint64_t)RECOVERY_BOUND_MS * 1000;
  for (;;) {
    bool ok = nem_workload_last_ok(NEM_ADD) > heal_us &&
              nem_workload_last_ok(NEM_LOCK) > heal_us &&
              nem_workload_last_ok(NEM_ELECT) > heal_us &&
              nem_workload_last_ok(NEM_PUB) > heal_us;
    if (ok) {
      return (long)((nem_now_us() - heal_us) / 1000);
    }
    if (nem_now_us() > until) {
      return -1;
    }
    sleep_ms(20);
  }
}

/* The round's channels: every subscriber caught up with the final
 * offsets within the bound and never had its subscription ended, and the
 * history passes the channel checker (gaps, duplicates, order, agreement,
 * exactly-once, acknowledged publishes delivered, real-time order). */
static void check_channels(const struct nem_record *rec) {
  struct history_subscriber subs[NEM_SUBSCRIBERS];
  static const uint64_t retain[NEM_CHANNELS] = {0, 0}; /* nothing dropped */
  static const bool in_prefix[NEM_CHANNELS] = {true, true};
  char why[512];
  for (int i = 0; i < NEM_SUBSCRIBERS; i++) {
    const struct nem_sub_record *s = &rec->subs[i];
    char name[32];
    snprintf(name, sizeof name, "subscriber %d", i);
    if (s->ended != 0) {
      violation("%s: its subscription ended: %s (%s)", name,
                synod_errname(s->ended), s->why);
    } else if (!s->to_end) {
      violation("%s: not caught up with the channels %d s after the round",
                name, CHANNELS_BOUND_MS / 1000);
    }
    subs[i] = (struct history_subscriber){.name = "nemesis subscriber",
                                          .prefix = s->prefix,
                                          .channel = s->channel,
                                          .start = s->prefix ? 0 : 1,
                                          .to_end = s->to_end,
                                          .d = s->d,
                                          .n = s->n};
  }
  struct history_channels h = {.channels_n = NEM_CHANNELS,
                               .retain = retain,
                               .in_prefix = in_prefix,
                               .pubs = rec->pubs,
                               .pubs_n = rec->pubs_n,
                               .subs = subs,
                               .subs_n = NEM_SUBSCRIBERS};
  if (!history_channels_check(&h, why, sizeof why)) {
    violation("channels: %s", why);
  }
}

/* --break-checks: breaks the round's history five ways, each of which
 * the checks must report: an acknowledged add returns a value off by
 * 1000, a second client holds the lock inside another's hold, a fenced
 * write was refused, a second leadership overlaps another, a subscriber
 * delivered a message twice. */
static void break_record(struct nem_record *rec) {
  struct nem_sub_record *s = &rec->subs[0];
  if (s->n > 0 && s->n < s->cap) {
    s->d[s->n] = s->d[s->n - 1];
    s->n++;
  }
  for (size_t i = 0; i < rec->ops_n; i++) {
    if (rec->ops[i].op == HISTORY_COUNTER_ADD_GET && !rec->ops[i].pending) {
      rec->ops[i].value += 1000;
      break;
    }
  }
  if (rec->holds_n > 0 && rec->holds_n < rec->holds_cap) {
    struct nem_hold h = rec->holds[0];
    h.client = h.client + 100;
    h.start_us += (h.end_us - h.start_us) / 2;
    h.token += 1;
    rec->holds[rec->holds_n++] = h;
  }
  if (rec->leads_n > 0 && rec->leads_n < rec->leads_cap) {
    struct nem_lead l = rec->leads[0];
    l.client += 100;
    l.start_us += (l.end_us - l.start_us) / 2;
    l.revision += 1;
    rec->leads[rec->leads_n++] = l;
  }
  struct nem_fence_refusal f = {.client = 100, .token = 1, .max_seen = 2};
  if (rec->refusals_n < rec->refusals_cap) {
    rec->refusals[rec->refusals_n++] = f;
  } else {
    rec->refusals =
        realloc(rec->refusals, (rec->refusals_n + 1) * sizeof *rec->refusals);
    CHECK(rec->refusals != NULL, "realloc");
    rec->refusals[rec->refusals_n++] = f;
    rec->refusals_cap = rec->refusals_n;
  }
}

static void round_run(int k) {
  struct fault_ctx f = {.rng = g.seed ^
                               (0x5851f42d4c957f2dull * (uint64_t)(k + 1))};
  struct nem_record rec;
  int before = g.violations;
  g.round_violations_base = g.violations;
  long recovery;
  int64_t value = 0;
  g.round = k;
  g.fault = g.only_kind >= 0 ? (enum fault)g.only_kind
                             : (enum fault)g.perm[k % NEM_FAULTS];
  say("round %d: %s; replay: %s", k, fault_names[g.fault], replay_cmd());
  replicas_check_exits("before the round");
  nem_workload_round(k);
  nem_workload_resume();
  sleep_ms(STEADY_MS);
  f.leader = wait_leader(10000);
  if (f.leader < 0) {
    violation("no leader before the fault");
    f.leader = 0;
  }
  find_leader(&f.leader_term);
  fault_run(g.fault, &f);
  replicas_check_exits("after the fault");
  uint64_t heal_us = nem_now_us();
  recovery = wait_recovery(heal_us);
  if (recovery < 0) {
    violation("adds, lock grants and campaigns did not all succeed again "
              "within %d ms of healing",
              RECOVERY_BOUND_MS);
  }
  sleep_ms(500);
  if (!nem_workload_pause(15000)) {
    violation("a client did not finish its operation within 15 s");
  }
  if (!final_read(&value)) {
    violation("the counter could not be read within 10 s after the round");
  }
  char why[256];
  if (!nem_workload_channels_finish(CHANNELS_BOUND_MS, why, sizeof why)) {
    violation("the channels' final offsets could not be read: %s", why);
  }
  nem_workload_take(&rec);
  if (g.break_checks) {
    break_record(&rec);
  }
  int checked = g.violations;
  check_counter(&rec, g.counter);
  check_locks(&rec);
  check_elections(&rec);
  check_channels(&rec);
  if (!nem_workload_channels_delete(why, sizeof why)) {
    say("the round's channels could not be deleted (%s): they stay", why);
  }
  if (g.break_checks) {
    int found = g.violations - checked;
    say("--break-checks: %d violations found in a history broken 5 ways",
        found);
    g.breaks_missed += found < 5;
  }
  check_digests();
  replicas_check_exits("at the end of the round");
  g.counter = value;
  size_t pend = 0;
  for (size_t i = 0; i < rec.ops_n; i++) {
    pend += rec.ops[i].pending;
  }
  size_t deliveries = 0;
  for (int i = 0; i < NEM_SUBSCRIBERS; i++) {
    deliveries += rec.subs[i].n;
  }
  uint64_t ops = rec.ops_n + rec.holds_n + rec.leads_n + rec.pubs_n;
  for (int i = 0; i < NEM_KINDS; i++) {
    ops += rec.stats[i].failed;
  }
  g.ops_total += ops;
  say("round %d %s: %s; counter %" PRId64 " (%zu counter ops, %zu unknown "
      "outcome), adds %" PRIu64 " ok/%" PRIu64 " failed, lock holds %zu "
      "(fence: %" PRIu64 " accepted, %" PRIu64 " refused), leads %zu, "
      "campaigns %" PRIu64 " ok/%" PRIu64 " failed, publishes %" PRIu64
      " ok/%" PRIu64 " unknown, deliveries %zu; recovered in %ld ms",
      k, fault_names[g.fault], g.violations == before ? "ok" : "VIOLATIONS",
      value, rec.ops_n, pend, rec.stats[NEM_ADD].ok, rec.stats[NEM_ADD].failed,
      rec.holds_n, rec.fence_accepted, rec.fence_refused, rec.leads_n,
      rec.stats[NEM_ELECT].ok, rec.stats[NEM_ELECT].failed,
      rec.stats[NEM_PUB].ok, rec.stats[NEM_PUB].failed, deliveries, recovery);
  nem_record_free(&rec);
}

/* -------------------------------------------------------------- main */

static void usage(void) {
  fprintf(stderr,
          "usage: synod-nemesis [--seed S] [--rounds N] [--round K] "
          "[--replicas 3|5] [--kind FAULT] [--strict] [--break-checks]\n"
          "       synod-nemesis --check-history FILE (a saved counter "
          "history)\n"
          "faults: isolate-leader split bridge one-way loss "
          "stop-leader kill-one kill-all disk-full fast-clock\n");
  exit(2);
}

int main(int argc, char **argv) {
  int rounds = NEM_FAULTS, only = -1;
  char why[512];
  uint64_t s;
  g.n = 5;
  g.only_kind = -1;
  g.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
  for (int i = 1; i < argc; i++) {
    if (i + 1 < argc && strcmp(argv[i], "--seed") == 0) {
      g.seed = strtoull(argv[++i], NULL, 0);
    } else if (i + 1 < argc && strcmp(argv[i], "--rounds") == 0) {
      rounds = atoi(argv[++i]);
    } else if (i + 1 < argc && strcmp(argv[i], "--round") == 0) {
      only = atoi(argv[++i]);
    } else if (i + 1 < argc && strcmp(argv[i], "--kind") == 0) {
      i++;
      g.only_kind = -2;
      for (int k = 0; k < NEM_FAULTS; k++) {
        if (strcmp(argv[i], fault_names[k]) == 0) {
          g.only_kind = k;
        }
      }
      if (g.only_kind < 0) {
        usage();
      }
    } else if (strcmp(argv[i], "--break-checks") == 0) {
      g.break_checks = true;
    } else if (i + 1 < argc && strcmp(argv[i], "--check-history") == 0) {
      return check_history_file(argv[i + 1]);
    } else if (strcmp(argv[i], "--strict") == 0) {
      g.strict = true;
    } else if (i + 1 < argc && strcmp(argv[i], "--replicas") == 0) {
      g.n = atoi(argv[++i]);
    } else {
      usage();
    }
  }
  if (g.n != 3 && g.n != 5) {
    usage();
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (geteuid() != 0) {
    printf("SKIP: synod-nemesis needs root (network namespaces, iptables, "
           "tmpfs mounts)\n");
    return SKIP_EXIT;
  }
  test_binary("SYNODD", "synodd", g.synodd, sizeof g.synodd);
  if (!cluster_synodd_ready(g.synodd, why, sizeof why)) {
    printf("SKIP: %s\n", why);
    return SKIP_EXIT;
  }
  s = g.seed;
  for (int i = 0; i < NEM_FAULTS; i++) {
    g.perm[i] = i;
  }
  rng_shuffle(&s, g.perm, NEM_FAULTS);
  printf("synod-nemesis: seed %" PRIu64 ", %d replicas, %s\n", g.seed, g.n,
         only >= 0 ? "one round (replay)" : "rounds from 0");
  nem_net_clean_stale();
  atexit(teardown); /* after the harness's own atexit: runs before it */
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  signal(SIGHUP, on_signal);
  signal(SIGPIPE, SIG_IGN);
  if (!nem_net_setup(&g.net, g.n, why, sizeof why)) {
    printf("SKIP: %s\n", why);
    return SKIP_EXIT;
  }
  setup_replicas();
  cleanup_cmd_build();
  for (int i = 0; i < g.n; i++) {
    replica_spawn(i, false);
  }
  monitor_start();
  nem_net_enter_client(&g.net);
  CHECK(wait_leader(20000) >= 0, "no leader within 20 s (logs in %s)", g.dir);
  nem_workload_start(g.endpoints, g.net.client_addr);
  uint64_t t0 = test_now_ms();
  for (int k = only >= 0 ? only : 0; k < (only >= 0 ? only + 1 : rounds); k++) {
    round_run(k);
  }
  nem_workload_stop();
  printf("synod-nemesis: %d round%s, %" PRIu64 " operations, %.0f s, "
         "%d violation%s, %d known bug%s, fail closed broken %d time%s "
         "with a 1.5x leader (beyond the bound) (seed %" PRIu64 ")\n",
         only >= 0 ? 1 : rounds, (only >= 0 || rounds == 1) ? "" : "s",
         g.ops_total, (double)(test_now_ms() - t0) / 1000.0, g.violations,
         g.violations == 1 ? "" : "s", g.known_bugs,
         g.known_bugs == 1 ? "" : "s", g.bound_exceeded,
         g.bound_exceeded == 1 ? "" : "s", g.seed);
  if (g.violations > 0 && !g.break_checks) {
    test_failed = 1; /* keep the logs */
    printf("logs kept in %s\n", g.dir);
  }
  teardown();
  if (g.break_checks) {
    /* Only the planted violations may have been found, all of them. */
    bool ok =
        g.breaks_missed == 0 && g.violations == 5 * (only >= 0 ? 1 : rounds);
    printf("--break-checks: %s\n", ok ? "every planted violation was found"
                                      : "FAILED: a planted violation was "
                                        "missed, or a real one found");
    return ok ? 0 : 1;
  }
  return g.violations > 0 ? 1 : 0;
}
