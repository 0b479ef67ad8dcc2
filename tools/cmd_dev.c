/* synodctl dev: a local cluster of synodd processes in the foreground. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

#define DEV_REPLICAS_MAX 9
#define DEV_LEADER_WAIT_MS 30000
#define DEV_STOP_GRACE_MS 5000

struct dev {
  int replicas;
  const char *dir;
  unsigned base_port;
  const char *log_level;
  char synodd[PATH_MAX];
  bool has_http; /* this synodd serves HTTP (--http in its --help) */
  pid_t pids[DEV_REPLICAS_MAX];
  char endpoints[DEV_REPLICAS_MAX * 24];
};

static void dev_usage(FILE *out) {
  fprintf(out,
          "usage: synodctl dev [--replicas N] [--dir DIR] [--base-port P]\n"
          "                    [--log-level L]\n"
          "\n"
          "Starts N (default 3, at most %d) synodd replicas on 127.0.0.1:\n"
          "replica i listens for clients on P+10i, peers on P+10i+1 and\n"
          "HTTP on P+10i+2 (P defaults to 7700), keeps its data in\n"
          "DIR/synod-i (default ./var/dev) and logs to DIR/synod-i.log.\n"
          "Waits until a leader is elected, then stays in the foreground;\n"
          "INT or TERM stops the replicas (TERM, then KILL after %d s).\n"
          "synodd is looked for next to synodctl, then on PATH.\n"
          "Exit status: 0 after a clean stop; 1 if a replica could not be\n"
          "started or no leader was elected in %d s; 2 on usage errors.\n",
          DEV_REPLICAS_MAX, DEV_STOP_GRACE_MS / 1000,
          DEV_LEADER_WAIT_MS / 1000);
}

static int dev_parse(int argc, char **argv, struct dev *d) {
  d->replicas = 3;
  d->dir = "./var/dev";
  d->base_port = 7700;
  d->log_level = "info";
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    uint64_t n;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      dev_usage(stdout);
      return CTL_EXIT_OK;
    } else if (strcmp(a, "--replicas") == 0 && v &&
               ctl_uint64_parse(v, &n) == 0 && n >= 1 &&
               n <= DEV_REPLICAS_MAX) {
      d->replicas = (int)n;
    } else if (strcmp(a, "--base-port") == 0 && v &&
               ctl_uint64_parse(v, &n) == 0 && n >= 1 && n <= 65000) {
      d->base_port = (unsigned)n;
    } else if (strcmp(a, "--dir") == 0 && v) {
      d->dir = v;
    } else if (strcmp(a, "--log-level") == 0 && v) {
      d->log_level = v;
    } else {
      fprintf(stderr, "synodctl dev: bad argument '%s'\n", a);
      dev_usage(stderr);
      return CTL_EXIT_USAGE;
    }
    i++;
  }
  return -1;
}

/* synodd next to this binary, else the name alone (execvp searches PATH). */
static void dev_find_synodd(struct dev *d) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash != NULL) {
      *slash = '\0';
      snprintf(d->synodd, sizeof d->synodd, "%.*s/synodd",
               (int)(sizeof d->synodd - 8), self);
      if (access(d->synodd, X_OK) == 0) {
        return;
      }
    }
  }
  snprintf(d->synodd, sizeof d->synodd, "synodd");
}

/* Asks `synodd --help` whether it takes --http (older builds do not).
 * Runs before any thread exists. */
static void dev_probe_http(struct dev *d) {
  char cmd[PATH_MAX + 32], line[512];
  snprintf(cmd, sizeof cmd, "'%.4000s' --help 2>&1", d->synodd);
  FILE *p = popen(cmd, "r");
  while (p != NULL && fgets(line, sizeof line, p) != NULL) {
    d->has_http = d->has_http || strstr(line, "--http") != NULL;
  }
  if (p != NULL) {
    pclose(p);
  }
}

static int mkdir_p(const char *path) {
  char buf[PATH_MAX];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p == '/') {
      *p = '\0';
      if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
        return -1;
      }
      *p = '/';
    }
  }
  return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* Starts replica i; its output goes to DIR/synod-i.log. */
static int dev_start_one(const struct ctl_opts *o, struct dev *d, int i,
                         const char *peers, const sigset_t *old) {
  char name[24], data[PATH_MAX], log[PATH_MAX], client[32], peer[32], http[32];
  unsigned p = d->base_port + 10u * (unsigned)i;
  snprintf(name, sizeof name, "synod-%d", i);
  snprintf(data, sizeof data, "%s/%s", d->dir, name);
  snprintf(log, sizeof log, "%s/%s.log", d->dir, name);
  snprintf(client, sizeof client, "127.0.0.1:%u", p);
  snprintf(peer, sizeof peer, "127.0.0.1:%u", p + 1);
  snprintf(http, sizeof http, "127.0.0.1:%u", p + 2);
  if (mkdir_p(data) != 0) {
    fprintf(stderr, "%s: dev: mkdir %s: %s\n", o->prog, data, strerror(errno));
    return -1;
  }
  int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    fprintf(stderr, "%s: dev: open %s: %s\n", o->prog, log, strerror(errno));
    return -1;
  }
  char *argv[] = {d->synodd,
                  "--name",
                  name,
                  "--data",
                  data,
                  "--client",
                  client,
                  "--peer",
                  peer,
                  "--peers",
                  (char *)peers,
                  "--log-level",
                  (char *)d->log_level,
                  "--http",
                  http,
                  NULL};
  if (!d->has_http) {
    argv[13] = NULL;
  }
  d->pids[i] = ctl_spawn(argv, old, NULL, fd);
  close(fd);
  if (d->pids[i] < 0) {
    fprintf(stderr, "%s: dev: fork: %s\n", o->prog, strerror(errno));
    return -1;
  }
  printf("  %s  pid %-7d client %s  peer %s  http %s  log %s\n", name,
         (int)d->pids[i], client, peer, d->has_http ? http : "-", log);
  return 0;
}

/* Reaps exited children; reports each (unless stopping). Returns how
 * many are still running. */
static int dev_reap(const struct ctl_opts *o, struct dev *d, bool quiet) {
  int alive = 0, ws;
  for (int i = 0; i < d->replicas; i++) {
    if (d->pids[i] > 0 && waitpid(d->pids[i], &ws, WNOHANG) == d->pids[i]) {
      if (!quiet) {
        fprintf(stderr,
                "%s: dev: synod-%d (pid %d) exited unexpectedly with status "
                "%d; see %s/synod-%d.log\n",
                o->prog, i, (int)d->pids[i], ctl_exit_code(ws), d->dir, i);
      }
      d->pids[i] = 0;
    }
    alive += d->pids[i] > 0;
  }
  return alive;
}

static uint64_t dev_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* TERM to every child, KILL to those left after the grace period. */
static void dev_stop(const struct ctl_opts *o, struct dev *d) {
  struct timespec tick = {0, 50 * 1000000L};
  sigset_t chld;
  uint64_t until = dev_now_ms() + DEV_STOP_GRACE_MS;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  for (int i = 0; i < d->replicas; i++) {
    if (d->pids[i] > 0) {
      kill(d->pids[i], SIGTERM);
    }
  }
  while (dev_reap(o, d, true) > 0 && dev_now_ms() < until) {
    sigtimedwait(&chld, NULL, &tick);
  }
  for (int i = 0; i < d->replicas; i++) {
    if (d->pids[i] > 0) {
      fprintf(stderr, "%s: dev: synod-%d did not stop: SIGKILL\n", o->prog, i);
      kill(d->pids[i], SIGKILL);
      waitpid(d->pids[i], NULL, 0);
      d->pids[i] = 0;
    }
  }
}

/* Polls status until some replica names a leader, children die, a signal
 * asks to stop, or the bound passes. Returns 0 when a leader is known, 1
 * when a signal asked to stop, -1 on failure. */
static int dev_wait_leader(const struct ctl_opts *o, struct dev *d,
                           const sigset_t *set, char *leader, size_t len) {
  struct ctl_opts q = *o;
  struct timespec tick = {0, 200 * 1000000L};
  uint64_t until = dev_now_ms() + DEV_LEADER_WAIT_MS;
  struct synod_status st;
  q.endpoints = d->endpoints;
  q.timeout_ms = 500;
  struct synod_client *c = ctl_client(&q, "dev", NULL);
  if (c == NULL) {
    return -1;
  }
  int rv = -1;
  while (dev_now_ms() < until) {
    if (synod_status(c, 500, &st) == 0) {
      bool found = st.leader_name[0] != '\0';
      snprintf(leader, len, "%s", st.leader_name);
      synod_status_free(&st);
      if (found) {
        rv = 0;
        break;
      }
    }
    int sig = sigtimedwait(set, NULL, &tick);
    if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) {
      rv = 1; /* asked to stop: not a failure */
      break;
    }
    if (dev_reap(o, d, false) == 0) {
      fprintf(stderr, "%s: dev: every replica has exited\n", o->prog);
      break;
    }
  }
  if (rv != 0 && dev_now_ms() >= until) {
    fprintf(stderr,
            "%s: dev: no leader after %d s (last error: %s); see the logs "
            "in %s\n",
            o->prog, DEV_LEADER_WAIT_MS / 1000, synod_client_errmsg(), d->dir);
  }
  synod_client_free(c);
  return rv;
}

/* The replicas' HTTP: each one's URL, what it serves, and a curl. */
static void dev_banner_http(const struct dev *d) {
  printf("\nHTTP, on every replica: a status page at /, /healthz, /readyz,\n"
         "/metrics (Prometheus), /leader/NAME ({\"name\":...}):\n ");
  for (int i = 0; i < d->replicas; i++) {
    printf(" http://127.0.0.1:%u/", d->base_port + 10u * (unsigned)i + 2);
  }
  printf("\n  curl http://127.0.0.1:%u/leader/web\n", d->base_port + 2);
}

static void dev_banner(const struct dev *d, const char *leader) {
  printf(
      "\nleader: %s\n\n"
      "export SYNOD_ENDPOINTS=%s\n"
      "  synodctl status\n"
      "  synodctl counter add hits 1\n"
      "  synodctl lock demo -- sh -c 'echo token $SYNOD_LOCK_TOKEN; sleep 5'\n"
      "  synodctl once nightly $(date +%%Y%%m%%d) -- echo ran\n"
      "  synodctl elect web pod-a     # and: synodctl observe web\n"
      "  synodctl elect web pod-b --http 127.0.0.1:4040   # curl "
      "127.0.0.1:4040\n",
      leader, d->endpoints);
  if (d->has_http) {
    dev_banner_http(d);
  }
  printf("\nCtrl-C stops the cluster.\n");
  fflush(stdout);
}

/* Runs until INT/TERM; reports children that die meanwhile. */
static void dev_foreground(const struct ctl_opts *o, struct dev *d,
                           const sigset_t *set) {
  for (;;) {
    int sig = sigwaitinfo(set, NULL);
    if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) {
      printf("\nstopping...\n");
      return;
    }
    if (sig == SIGCHLD && dev_reap(o, d, false) == 0) {
      fprintf(stderr, "%s: dev: every replica has exited\n", o->prog);
      return;
    }
  }
}

int cmd_dev(const struct ctl_opts *o, int argc, char **argv) {
  struct dev d = {0};
  char peers[DEV_REPLICAS_MAX * 48] = "", leader[256] = "";
  sigset_t set, old;
  int code = dev_parse(argc, argv, &d);
  if (code >= 0) {
    return code;
  }
  dev_find_synodd(&d);
  dev_probe_http(&d);
  for (int i = 0; i < d.replicas; i++) {
    unsigned p = d.base_port + 10u * (unsigned)i;
    size_t n = strlen(peers), m = strlen(d.endpoints);
    snprintf(peers + n, sizeof peers - n, "%ssynod-%d=127.0.0.1:%u",
             i ? "," : "", i, p + 1);
    snprintf(d.endpoints + m, sizeof d.endpoints - m, "%s127.0.0.1:%u",
             i ? "," : "", p);
  }
  ctl_signals_block(&set, &old);
  printf("starting %d replicas of %s:\n", d.replicas, d.synodd);
  code = CTL_EXIT_OK;
  for (int i = 0; i < d.replicas && code == CTL_EXIT_OK; i++) {
    if (dev_start_one(o, &d, i, peers, &old) != 0) {
      code = CTL_EXIT_ERROR;
    }
  }
  fflush(stdout);
  int waited = code == CTL_EXIT_OK
                   ? dev_wait_leader(o, &d, &set, leader, sizeof leader)
                   : -1;
  if (code == CTL_EXIT_OK && waited < 0) {
    code = CTL_EXIT_ERROR;
  }
  if (waited == 0) {
    dev_banner(&d, leader);
    dev_foreground(o, &d, &set);
  }
  dev_stop(o, &d);
  return code;
}
