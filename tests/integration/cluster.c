/* Integration harness: processes, ports, temp dirs, bounded waits. */
#include "cluster.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "synod.h"

#define TRACK_MAX 256

static pid_t tracked[TRACK_MAX];
static char tmpdirs[8][PATH_MAX];
static int tmpdirs_n;
static bool cleanup_registered;
static bool synodd_has_http; /* synodd --help mentions --http */

uint64_t test_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

volatile int test_failed;

/* At exit: every tracked child is killed and reaped, temp dirs go (unless
 * a check failed: then they stay, and their logs' ends are shown). */
static void test_cleanup(void) {
  char cmd[PATH_MAX + 16];
  for (int i = 0; i < TRACK_MAX; i++) {
    if (tracked[i] > 0) {
      kill(tracked[i], SIGKILL);
      waitpid(tracked[i], NULL, 0);
      tracked[i] = 0;
    }
  }
  if (test_failed) {
    for (int i = 0; i < tmpdirs_n; i++) {
      fprintf(stderr, "kept %s; the end of its logs:\n", tmpdirs[i]);
      snprintf(cmd, sizeof cmd,
               "for f in '%.4000s'/*.log; do [ -f \"$f\" ] && "
               "echo \"== $f\" && tail -n 25 \"$f\"; done >&2; true",
               tmpdirs[i]);
      if (system(cmd) != 0) {
        fprintf(stderr, "cleanup: could not show the logs of %s\n", tmpdirs[i]);
      }
    }
    return;
  }
  if (getenv("SYNOD_TEST_KEEP") != NULL) {
    return;
  }
  for (int i = 0; i < tmpdirs_n; i++) {
    snprintf(cmd, sizeof cmd, "rm -rf '%.4000s'", tmpdirs[i]);
    if (system(cmd) != 0) {
      fprintf(stderr, "cleanup: could not remove %s\n", tmpdirs[i]);
    }
  }
}

static void cleanup_on_signal(int sig) {
  test_cleanup();
  signal(sig, SIG_DFL);
  raise(sig);
}

static void register_cleanup(void) {
  if (!cleanup_registered) {
    cleanup_registered = true;
    atexit(test_cleanup);
    signal(SIGINT, cleanup_on_signal);
    signal(SIGTERM, cleanup_on_signal);
  }
}

void test_track(pid_t pid) {
  register_cleanup();
  for (int i = 0; i < TRACK_MAX; i++) {
    if (tracked[i] == 0) {
      tracked[i] = pid;
      return;
    }
  }
}

void test_untrack(pid_t pid) {
  for (int i = 0; i < TRACK_MAX; i++) {
    if (tracked[i] == pid) {
      tracked[i] = 0;
    }
  }
}

void test_tmpdir(const char *prefix, char *out, size_t len) {
  const char *base = getenv("SYNOD_TEST_TMP");
  char tmpl[PATH_MAX];
  register_cleanup();
  if (base == NULL || base[0] == '\0') {
    base = "/tmp";
  }
  mkdir(base, 0755);
  snprintf(tmpl, sizeof tmpl, "%s/%s-XXXXXX", base, prefix);
  CHECK(mkdtemp(tmpl) != NULL, "mkdtemp %s: %s", tmpl, strerror(errno));
  snprintf(out, len, "%s", tmpl);
  if (tmpdirs_n < 8) {
    snprintf(tmpdirs[tmpdirs_n++], PATH_MAX, "%s", tmpl);
  }
}

void test_binary(const char *var, const char *name, char *out, size_t len) {
  char self[PATH_MAX];
  const char *env = getenv(var);
  ssize_t n;
  if (env != NULL && env[0] != '\0') {
    snprintf(out, len, "%s", env);
    return;
  }
  n = readlink("/proc/self/exe", self, sizeof self - 1);
  CHECK(n > 0, "readlink /proc/self/exe: %s", strerror(errno));
  self[n] = '\0';
  *strrchr(self, '/') = '\0';
  snprintf(out, len, "%.*s/%s", (int)(len - 64), self, name);
}

/* posix_spawn, not fork: glibc's spawns with vfork semantics, so the
 * parent's page tables are not copied. A fork of a large, threaded test
 * process (the nemesis, holding its history) held every other thread up
 * for as long as the copy took, clients and their lock timers included. */
pid_t test_spawn(char *const argv[], const char *out_path) {
  posix_spawn_file_actions_t fa;
  pid_t pid;
  int rv;
  fflush(NULL);
  CHECK(posix_spawn_file_actions_init(&fa) == 0, "posix_spawn_file_actions");
  if (out_path != NULL) {
    CHECK(posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out_path,
                                           O_WRONLY | O_CREAT | O_APPEND,
                                           0644) == 0 &&
              posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO,
                                               STDERR_FILENO) == 0,
          "posix_spawn_file_actions: %s", out_path);
  }
  rv = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  CHECK(rv == 0, "spawn %s: %s", argv[0], strerror(rv));
  test_track(pid);
  return pid;
}

bool test_wait_for(pid_t pid, uint32_t timeout_ms, int *status) {
  uint64_t until = test_now_ms() + timeout_ms;
  int ws;
  for (;;) {
    pid_t r = waitpid(pid, &ws, WNOHANG);
    if (r == pid) {
      test_untrack(pid);
      *status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
      return true;
    }
    if (test_now_ms() >= until) {
      return false;
    }
    usleep(5000);
  }
}

int test_wait(pid_t pid, uint32_t timeout_ms, const char *what) {
  int status;
  CHECK(test_wait_for(pid, timeout_ms, &status),
        "%s (pid %d) still running after %u ms", what, (int)pid, timeout_ms);
  return status;
}

int test_sh(const char *cmd, const char *out_path, uint32_t timeout_ms) {
  char *argv[] = {"sh", "-c", (char *)cmd, NULL};
  return test_wait(test_spawn(argv, out_path), timeout_ms, cmd);
}

char *test_slurp(const char *path) {
  FILE *f = fopen(path, "r");
  char *buf;
  long n;
  if (f == NULL) {
    return strdup("");
  }
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  buf = calloc(1, (size_t)n + 1);
  if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
    buf[0] = '\0';
  }
  fclose(f);
  return buf;
}

void test_wait_file(const char *path, const char *needle, uint32_t timeout_ms) {
  uint64_t until = test_now_ms() + timeout_ms;
  for (;;) {
    char *s = test_slurp(path);
    bool ok = access(path, F_OK) == 0 && (needle == NULL || strstr(s, needle));
    free(s);
    if (ok) {
      return;
    }
    CHECK(test_now_ms() < until, "%s did not get '%s' within %u ms", path,
          needle ? needle : "(created)", timeout_ms);
    usleep(10000);
  }
}

/* ------------------------------------------------------------ synodd */

bool cluster_synodd_ready(const char *synodd, char *why, size_t len) {
  char dir[PATH_MAX], out[PATH_MAX + 16], cmd[PATH_MAX * 2 + 32];
  bool ok;
  if (access(synodd, X_OK) != 0) {
    snprintf(why, len, "%s is not built", synodd);
    return false;
  }
  test_tmpdir("synodd-help", dir, sizeof dir);
  snprintf(out, sizeof out, "%s/help", dir);
  snprintf(cmd, sizeof cmd, "'%s' --help", synodd);
  test_sh(cmd, out, 10000);
  char *text = test_slurp(out);
  ok = strstr(text, "--peers") != NULL;
  synodd_has_http = strstr(text, "--http") != NULL;
  free(text);
  unlink(out); /* every test asks: leave no directory behind */
  rmdir(dir);
  if (!ok) {
    snprintf(why, len, "%s --help does not mention --peers yet", synodd);
  }
  return ok;
}

void cluster_synodd_or_skip(char *out, size_t len) {
  char why[256];
  test_binary("SYNODD", "synodd", out, len);
  if (!cluster_synodd_ready(out, why, sizeof why)) {
    printf("skipped: %s\n", why);
    exit(SKIP_EXIT);
  }
}

/* A port nobody listens on now (bound and released: a small race). */
static bool port_free(unsigned port) {
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
  if (fd >= 0) {
    close(fd);
  }
  return ok;
}

/* Claims the n units of 10 ports from base for this process's lifetime
 * (a lock file per unit in /tmp/synod-test-ports): tests that run in
 * parallel never share a port, even one of a replica that has not
 * started yet (its port looks free). The locks go with the process. */
static bool port_block_claim(unsigned base, int n) {
  int fds[CLUSTER_NODES_MAX];
  int taken = 0;
  mkdir("/tmp/synod-test-ports", 0777);
  for (; taken < n; taken++) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/synod-test-ports/%u.lock",
             base + 10u * (unsigned)taken);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) {
      break; /* no lock to be had: the bind check alone decides */
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      close(fd);
      while (taken > 0) {
        close(fds[--taken]);
      }
      return false;
    }
    fds[taken] = fd; /* stays open, holding the lock */
  }
  return true;
}

/* Blocks of ports in 20000..32767, below Linux's ephemeral range
 * (32768..60999): a replica started late (a joiner, a restart) must find
 * its port still free, and ports in the ephemeral range are handed to
 * every outgoing connection the tests make meanwhile. */
static unsigned pick_base_port(int n) {
  srand((unsigned)(getpid() ^ test_now_ms()));
  for (int attempt = 0; attempt < 200; attempt++) {
    unsigned base = 20000 + (unsigned)(rand() % 1270) * 10;
    bool ok = true;
    for (int i = 0; i < n * 10 && ok; i++) {
      ok = port_free(base + (unsigned)i);
    }
    if (ok && port_block_claim(base, n)) {
      return base;
    }
  }
  CHECK(false, "no free block of ports found");
  return 0;
}

static void node_spawn(struct cluster *c, int i) {
  struct cluster_node *nd = &c->nodes[i];
  char *argv[16 + CLUSTER_EXTRA_ARGS_MAX];
  int k = 0;
  argv[k++] = c->synodd;
  argv[k++] = "--name";
  argv[k++] = nd->name;
  argv[k++] = "--data";
  argv[k++] = nd->data;
  argv[k++] = "--client";
  argv[k++] = nd->client;
  argv[k++] = "--peer";
  argv[k++] = nd->peer;
  argv[k++] = "--peers";
  argv[k++] = nd->peers[0] ? nd->peers : c->peers;
  argv[k++] = "--log-level";
  argv[k++] = "info";
  if (synodd_has_http) { /* not served by every synodd yet */
    argv[k++] = "--http";
    argv[k++] = nd->http;
  }
  for (int j = 0; j < CLUSTER_EXTRA_ARGS_MAX && c->extra_args[j]; j++) {
    argv[k++] = (char *)c->extra_args[j];
  }
  argv[k] = NULL;
  nd->pid = test_spawn(argv, nd->log);
}

void cluster_init(struct cluster *c, int n, const char *synodd) {
  CHECK(n >= 1 && n <= CLUSTER_NODES_MAX, "a cluster of %d replicas", n);
  unsigned base = pick_base_port(n);
  memset(c, 0, sizeof *c);
  c->n = n;
  snprintf(c->synodd, sizeof c->synodd, "%s", synodd);
  char dir[PATH_MAX];
  test_tmpdir("cluster", dir, sizeof dir);
  snprintf(c->dir, sizeof c->dir, "%s", dir);
  for (int i = 0; i < n; i++) {
    struct cluster_node *nd = &c->nodes[i];
    unsigned p = base + 10u * (unsigned)i;
    char name[16];
    snprintf(name, sizeof name, "synod-%d", i % CLUSTER_NODES_MAX);
    snprintf(nd->name, sizeof nd->name, "%s", name);
    snprintf(nd->client, sizeof nd->client, "127.0.0.1:%u", p);
    snprintf(nd->peer, sizeof nd->peer, "127.0.0.1:%u", p + 1);
    snprintf(nd->http, sizeof nd->http, "127.0.0.1:%u", p + 2);
    snprintf(nd->data, sizeof nd->data, "%.4000s/%s", dir, name);
    snprintf(nd->log, sizeof nd->log, "%.4000s/%s.log", dir, name);
    mkdir(nd->data, 0755);
    size_t pl = strlen(c->peers), el = strlen(c->endpoints);
    snprintf(c->peers + pl, sizeof c->peers - pl, "%s%s=%s", i ? "," : "",
             nd->name, nd->peer);
    snprintf(c->endpoints + el, sizeof c->endpoints - el, "%s%s", i ? "," : "",
             nd->client);
  }
}

void cluster_start(struct cluster *c, int n, const char *synodd) {
  cluster_init(c, n, synodd);
  for (int i = 0; i < n; i++) {
    node_spawn(c, i);
  }
}

void cluster_start_args(struct cluster *c, int n, const char *synodd,
                        const char *const *args) {
  cluster_init(c, n, synodd);
  for (int i = 0; args[i] != NULL; i++) {
    assert(i < CLUSTER_EXTRA_ARGS_MAX);
    c->extra_args[i] = args[i];
  }
  for (int i = 0; i < n; i++) {
    node_spawn(c, i);
  }
}

void cluster_peers_prefix(const struct cluster *c, int k, char *out,
                          size_t len) {
  out[0] = '\0';
  for (int i = 0; i < k && i < c->n; i++) {
    size_t l = strlen(out);
    snprintf(out + l, len - l, "%s%s=%s", i ? "," : "", c->nodes[i].name,
             c->nodes[i].peer);
  }
}

int cluster_status(const struct cluster *c, int i, unsigned flags,
                   uint32_t timeout_ms, struct synod_status *st) {
  struct synod_options o;
  struct synod_client *cl;
  int rv;
  synod_options_init(&o);
  o.endpoints = c->nodes[i].client;
  o.client_name = "integration status";
  o.connect_timeout_ms = timeout_ms;
  o.request_timeout_ms = timeout_ms;
  if ((rv = synod_client_new(&o, &cl)) != 0) {
    return rv;
  }
  rv = synod_status_ex(cl, flags, timeout_ms, st);
  synod_client_free(cl);
  return rv;
}

/* The leader name one replica reports, "" if none or unreachable. */
static void node_leader(const struct cluster_node *nd, char *out, size_t len) {
  struct synod_options o;
  struct synod_client *cl;
  struct synod_status st;
  out[0] = '\0';
  synod_options_init(&o);
  o.endpoints = nd->client;
  o.connect_timeout_ms = 300;
  o.request_timeout_ms = 500;
  if (synod_client_new(&o, &cl) != 0) {
    return;
  }
  if (synod_status(cl, 500, &st) == 0) {
    snprintf(out, len, "%s",
             st.role[0] && strcmp(st.role, "leader") == 0 ? st.name
                                                          : st.leader_name);
    synod_status_free(&st);
  }
  synod_client_free(cl);
}

/* Fails at once if a replica the harness believes running has exited
 * with an error (it could not bind its port, or crashed): no wait for it
 * can succeed. The child is left for its owner to reap. */
static void cluster_check_alive(const struct cluster *c) {
  for (int i = 0; i < c->n; i++) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (c->nodes[i].pid == 0 ||
        waitid(P_PID, (id_t)c->nodes[i].pid, &si,
               WEXITED | WNOHANG | WNOWAIT) != 0 ||
        si.si_pid != c->nodes[i].pid) {
      continue;
    }
    CHECK(si.si_code == CLD_EXITED && si.si_status == 0,
          "%s (pid %d) is gone: %s %d (log %s)", c->nodes[i].name,
          (int)c->nodes[i].pid,
          si.si_code == CLD_EXITED ? "exit status" : "signal", si.si_status,
          c->nodes[i].log);
  }
}

int cluster_wait_leader(struct cluster *c, uint32_t timeout_ms) {
  uint64_t until = test_now_ms() + timeout_ms;
  char first[64], other[64];
  for (;;) {
    bool agree = true;
    cluster_check_alive(c);
    first[0] = '\0';
    for (int i = 0; i < c->n && agree; i++) {
      if (c->nodes[i].pid == 0) {
        continue;
      }
      node_leader(&c->nodes[i], other, sizeof other);
      if (first[0] == '\0') {
        snprintf(first, sizeof first, "%s", other);
      }
      agree = other[0] != '\0' && strcmp(first, other) == 0;
    }
    for (int i = 0; agree && first[0] && i < c->n; i++) {
      if (strcmp(c->nodes[i].name, first) == 0 && c->nodes[i].pid != 0) {
        return i;
      }
    }
    CHECK(test_now_ms() < until,
          "no leader agreed on by every running replica within %u ms "
          "(logs in %s)",
          timeout_ms, c->dir);
    usleep(50000);
  }
}

void cluster_signal(struct cluster *c, int i, int sig) {
  struct cluster_node *nd = &c->nodes[i];
  if (nd->pid == 0) {
    return;
  }
  kill(nd->pid, sig);
  if (sig == SIGKILL || sig == SIGTERM) {
    test_wait(nd->pid, 10000, nd->name);
    nd->pid = 0;
  }
}

void cluster_restart(struct cluster *c, int i) {
  CHECK(c->nodes[i].pid == 0, "%s is still running", c->nodes[i].name);
  node_spawn(c, i);
}

void cluster_stop(struct cluster *c) {
  for (int i = 0; i < c->n; i++) {
    if (c->nodes[i].pid != 0) {
      kill(c->nodes[i].pid, SIGCONT);
      kill(c->nodes[i].pid, SIGTERM);
    }
  }
  for (int i = 0; i < c->n; i++) {
    if (c->nodes[i].pid == 0) {
      continue;
    }
    uint64_t until = test_now_ms() + 5000;
    pid_t r;
    while ((r = waitpid(c->nodes[i].pid, NULL, WNOHANG)) == 0 &&
           test_now_ms() < until) {
      usleep(5000);
    }
    if (r == 0) {
      fprintf(stderr, "%s did not stop on SIGTERM: SIGKILL\n",
              c->nodes[i].name);
      kill(c->nodes[i].pid, SIGKILL);
      waitpid(c->nodes[i].pid, NULL, 0);
    }
    test_untrack(c->nodes[i].pid);
    c->nodes[i].pid = 0;
  }
}
