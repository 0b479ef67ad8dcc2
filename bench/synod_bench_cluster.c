/* synod-bench: starts 3-replica synodd and etcd clusters as child
 * processes on free 127.0.0.1 ports, waits until they answer, stops them
 * by pid. Touches no process it did not start. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "synod.h"
#include "synod_bench.h"

#define STOP_GRACE_MS 5000
#define ARGV_MAX 32

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Finds n distinct free TCP ports on 127.0.0.1 by binding port 0 and
 * holding every socket until all are chosen. Another process may still
 * take one before the child binds it; the start then fails clearly. */
static int pick_ports(int *ports, int n) {
  int fds[3 * BENCH_REPLICAS];
  int rv = 0;
  int i;

  for (i = 0; i < n; i++) {
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof sa;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fds[i] = socket(AF_INET, SOCK_STREAM, 0);
    if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(fds[i], (struct sockaddr *)&sa, &len) != 0) {
      rv = -1;
      i++;
      break;
    }
    ports[i] = ntohs(sa.sin_port);
  }
  while (i-- > 0) {
    if (fds[i] >= 0) {
      close(fds[i]);
    }
  }
  return rv;
}

/* Forks and execs argv[0] with stdout and stderr to p->log_path, in its
 * own process group (so a ^C reaches only us, and we stop it in order)
 * and killed by the kernel if we die. Returns 0 or -1 with err. */
static int spawn(struct bench_proc *p, char *const argv[], char *err,
                 size_t len) {
  pid_t parent = getpid();
  int fd = open(p->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  pid_t pid;

  if (fd < 0) {
    snprintf(err, len, "open %s: %s", p->log_path, strerror(errno));
    return -1;
  }
  pid = fork();
  if (pid < 0) {
    snprintf(err, len, "fork: %s", strerror(errno));
    close(fd);
    return -1;
  }
  if (pid == 0) {
    int null = open("/dev/null", O_RDONLY);
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) {
      _exit(127);
    }
    dup2(null, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    execv(argv[0], argv);
    _exit(127);
  }
  close(fd);
  p->pid = pid;
  return 0;
}

/* Fails with err if a replica has exited already (it will not answer). */
static int check_alive(struct bench_cluster *c, char *err, size_t len) {
  for (int i = 0; i < BENCH_REPLICAS; i++) {
    int status;
    struct bench_proc *p = &c->procs[i];
    if (p->pid > 0 && waitpid(p->pid, &status, WNOHANG) == p->pid) {
      p->pid = 0;
      snprintf(err, len, "%s %s exited (status %d) during start-up; see %s",
               c->system, p->name,
               WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status),
               p->log_path);
      return -1;
    }
  }
  return 0;
}

static void cluster_init(struct bench_cluster *c, const char *system,
                         const char *dir, const char *prefix) {
  memset(c, 0, sizeof *c);
  c->system = system;
  c->leader = -1;
  for (int i = 0; i < BENCH_REPLICAS; i++) {
    char name[sizeof c->procs[i].name];
    snprintf(name, sizeof name, "%s%d", prefix, i);
    memcpy(c->procs[i].name, name, sizeof name);
    snprintf(c->procs[i].log_path, sizeof c->procs[i].log_path, "%s/%s.log",
             dir, name);
  }
}

static int cluster_ports(struct bench_cluster *c, char *err, size_t len) {
  int ports[3 * BENCH_REPLICAS];
  if (pick_ports(ports, 3 * BENCH_REPLICAS) != 0) {
    snprintf(err, len, "no free 127.0.0.1 ports: %s", strerror(errno));
    return -1;
  }
  for (int i = 0; i < BENCH_REPLICAS; i++) {
    c->client_port[i] = ports[2 * i];
    c->peer_port[i] = ports[2 * i + 1];
    c->http_port[i] = ports[2 * BENCH_REPLICAS + i];
  }
  return 0;
}

/* ---------------------------------------------------------------- synod */

/* Polls with the blocking client until a linearizable read succeeds
 * (which needs an elected leader), then notes the leader and version. */
static int synod_wait(struct bench_cluster *c, int wait_ms, char *err,
                      size_t len) {
  struct synod_options o;
  struct synod_client *cl = NULL;
  struct synod_status st = {0};
  uint64_t deadline = bench_now_ns() + (uint64_t)wait_ms * 1000000u;
  int rv;

  synod_options_init(&o);
  o.endpoints = c->endpoints;
  o.client_name = "synod-bench";
  o.connect_timeout_ms = 1000;
  o.request_timeout_ms = 1000;
  rv = synod_client_new(&o, &cl);
  if (rv != 0) {
    snprintf(err, len, "synod_client_new: %s: %s", synod_errname(rv),
             synod_client_errmsg());
    return -1;
  }
  do {
    int64_t v;
    if (check_alive(c, err, len) != 0 || bench_interrupted) {
      synod_client_free(cl);
      return -1;
    }
    rv = synod_counter_get(cl, "synod-bench-ready", 0, 1000, &v);
    if (rv != 0) {
      snprintf(err, len, "synod did not answer within %d ms: %s: %s", wait_ms,
               synod_errname(rv), synod_client_errmsg());
      sleep_ms(100);
    }
  } while (rv != 0 && bench_now_ns() < deadline);
  if (rv == 0 && synod_status(cl, 2000, &st) == 0) {
    snprintf(c->version, sizeof c->version, "%s", st.version ? st.version : "");
    for (int i = 0; i < BENCH_REPLICAS && st.leader_name; i++) {
      if (strcmp(c->procs[i].name, st.leader_name) == 0) {
        c->leader = i;
      }
    }
    synod_status_free(&st);
  }
  synod_client_free(cl);
  return rv == 0 ? 0 : -1;
}

static int synod_spawn(struct bench_cluster *c, int i, const char *synodd,
                       const char *dir, const char *peers, char *err,
                       size_t len) {
  char data[512], client[32], peer[32], http[32];
  char *argv[] = {(char *)synodd,
                  "--name",
                  c->procs[i].name,
                  "--data",
                  data,
                  "--client",
                  client,
                  "--peer",
                  peer,
                  "--peers",
                  (char *)peers,
                  "--log-level",
                  "warn",
                  "--http",
                  http,
                  NULL};
  snprintf(http, sizeof http, "127.0.0.1:%d", c->http_port[i]);
  snprintf(data, sizeof data, "%s/%s", dir, c->procs[i].name);
  snprintf(client, sizeof client, "127.0.0.1:%d", c->client_port[i]);
  snprintf(peer, sizeof peer, "127.0.0.1:%d", c->peer_port[i]);
  return spawn(&c->procs[i], argv, err, len);
}

int bench_synod_start(struct bench_cluster *c, const char *synodd,
                      const char *dir, int wait_ms, char *err, size_t len) {
  char peers[256];
  int i;

  cluster_init(c, "synod", dir, "synod-");
  if (cluster_ports(c, err, len) != 0) {
    return -1;
  }
  snprintf(c->endpoints, sizeof c->endpoints,
           "127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d", c->client_port[0],
           c->client_port[1], c->client_port[2]);
  snprintf(peers, sizeof peers,
           "synod-0=127.0.0.1:%d,synod-1=127.0.0.1:%d,synod-2=127.0.0.1:%d",
           c->peer_port[0], c->peer_port[1], c->peer_port[2]);
  for (i = 0; i < BENCH_REPLICAS; i++) {
    if (synod_spawn(c, i, synodd, dir, peers, err, len) != 0) {
      return -1;
    }
  }
  return synod_wait(c, wait_ms, err, len);
}

/* ----------------------------------------------------------------- etcd */

/* Ready when every member answers /v3/maintenance/status and all name
 * the same leader, one of them. */
static int etcd_ready(struct bench_cluster *c, char *err, size_t len) {
  uint64_t member[BENCH_REPLICAS], leader[BENCH_REPLICAS];
  for (int i = 0; i < BENCH_REPLICAS; i++) {
    if (bench_etcd_status(c->client_port[i], &member[i], &leader[i], c->version,
                          sizeof c->version) != 0) {
      snprintf(err, len, "etcd %s does not answer /v3/maintenance/status",
               c->procs[i].name);
      return -1;
    }
    if (leader[i] == 0 || leader[i] != leader[0]) {
      snprintf(err, len, "etcd members do not agree on a leader yet");
      return -1;
    }
  }
  for (int i = 0; i < BENCH_REPLICAS; i++) {
    if (member[i] == leader[0]) {
      c->leader = i;
      return 0;
    }
  }
  snprintf(err, len, "etcd's leader is not one of its members");
  return -1;
}

static int etcd_spawn(struct bench_cluster *c, int i, const char *etcd,
                      const char *dir, const char *initial, char *err,
                      size_t len) {
  char data[512], client[48], peer[48];
  char *argv[ARGV_MAX] = {(char *)etcd,
                          "--name",
                          c->procs[i].name,
                          "--data-dir",
                          data,
                          "--listen-client-urls",
                          client,
                          "--advertise-client-urls",
                          client,
                          "--listen-peer-urls",
                          peer,
                          "--initial-advertise-peer-urls",
                          peer,
                          "--initial-cluster",
                          (char *)initial,
                          "--initial-cluster-state",
                          "new",
                          "--initial-cluster-token",
                          "synod-bench",
                          "--logger",
                          "zap",
                          "--log-level",
                          "warn",
                          NULL};
  snprintf(data, sizeof data, "%s/%s", dir, c->procs[i].name);
  snprintf(client, sizeof client, "http://127.0.0.1:%d", c->client_port[i]);
  snprintf(peer, sizeof peer, "http://127.0.0.1:%d", c->peer_port[i]);
  return spawn(&c->procs[i], argv, err, len);
}

int bench_etcd_start(struct bench_cluster *c, const char *etcd, const char *dir,
                     int wait_ms, char *err, size_t len) {
  uint64_t deadline = bench_now_ns() + (uint64_t)wait_ms * 1000000u;
  char initial[256];
  int i;

  cluster_init(c, "etcd", dir, "e");
  if (cluster_ports(c, err, len) != 0) {
    return -1;
  }
  snprintf(initial, sizeof initial,
           "e0=http://127.0.0.1:%d,e1=http://127.0.0.1:%d,"
           "e2=http://127.0.0.1:%d",
           c->peer_port[0], c->peer_port[1], c->peer_port[2]);
  for (i = 0; i < BENCH_REPLICAS; i++) {
    if (etcd_spawn(c, i, etcd, dir, initial, err, len) != 0) {
      return -1;
    }
  }
  for (;;) {
    if (check_alive(c, err, len) != 0 || bench_interrupted) {
      return -1;
    }
    if (etcd_ready(c, err, len) == 0) {
      return 0;
    }
    if (bench_now_ns() >= deadline) {
      size_t used = strlen(err);
      snprintf(err + used, len - used, " (waited %d ms)", wait_ms);
      return -1;
    }
    sleep_ms(100);
  }
}

/* ------------------------------------------------------------- stopping */

static int reap_all(struct bench_cluster *c) {
  int alive = 0;
  for (int i = 0; i < BENCH_REPLICAS; i++) {
    struct bench_proc *p = &c->procs[i];
    if (p->pid > 0 && waitpid(p->pid, NULL, WNOHANG) != 0) {
      p->pid = 0; /* reaped, or not our child any more */
    }
    alive += p->pid > 0;
  }
  return alive;
}

/* SIGTERM to the followers (leader false) or to every replica still
 * running (leader true), then waits until `alive_max` remain or until
 * deadline_ns. */
static void stop_some(struct bench_cluster *c, bool leader, int alive_max,
                      uint64_t deadline_ns) {
  for (int i = 0; i < BENCH_REPLICAS; i++) {
    if (c->procs[i].pid > 0 && (leader || i != c->leader)) {
      kill(c->procs[i].pid, SIGTERM);
    }
  }
  while (reap_all(c) > alive_max && bench_now_ns() < deadline_ns) {
    sleep_ms(20);
  }
}

/* The followers go first: a leader told to stop hands leadership over
 * first (etcd 3.4 waits seconds for that if its followers are stopping
 * too); a leader without live followers exits at once. */
void bench_cluster_stop(struct bench_cluster *c) {
  uint64_t now = bench_now_ns();
  uint64_t ms = 1000000u;
  char err[BENCH_ERRMSG_BYTES];

  if (c->system != NULL && strcmp(c->system, "etcd") == 0 &&
      check_alive(c, err, sizeof err) == 0) {
    etcd_ready(c, err, sizeof err); /* which member leads now */
  }
  if (c->leader >= 0 && c->procs[c->leader].pid > 0) {
    stop_some(c, false, 1, now + STOP_GRACE_MS * ms);
  }
  stop_some(c, true, 0, now + 2 * STOP_GRACE_MS * ms);
  for (int i = 0; i < BENCH_REPLICAS; i++) {
    if (c->procs[i].pid > 0) {
      fprintf(stderr,
              "synod-bench: %s %s still running after SIGTERM: "
              "SIGKILL\n",
              c->system, c->procs[i].name);
      kill(c->procs[i].pid, SIGKILL);
      waitpid(c->procs[i].pid, NULL, 0);
      c->procs[i].pid = 0;
    }
  }
}

void bench_cluster_dump_logs(const struct bench_cluster *c) {
  for (int i = 0; i < BENCH_REPLICAS; i++) {
    char lines[8][512];
    int n = 0;
    FILE *f = fopen(c->procs[i].log_path, "r");
    if (f == NULL) {
      continue;
    }
    while (fgets(lines[n % 8], sizeof lines[0], f) != NULL) {
      n++;
    }
    fclose(f);
    fprintf(stderr, "--- last lines of %s:\n", c->procs[i].log_path);
    for (int j = n > 8 ? n - 8 : 0; j < n; j++) {
      fputs(lines[j % 8], stderr);
    }
  }
}

/* ---------------------------------------------------------------- redis */

int bench_redis_start(struct bench_proc *p, const char *redis, const char *dir,
                      int *port, char *err, size_t len) {
  char port_text[16];
  char *argv[] = {(char *)redis, "--bind",      "127.0.0.1", "--port",
                  port_text,     "--save",      "",          "--appendonly",
                  "no",          "--daemonize", "no",        NULL};
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "redis");
  snprintf(p->log_path, sizeof p->log_path, "%s/redis.log", dir);
  if (pick_ports(port, 1) != 0) {
    snprintf(err, len, "no free port");
    return -1;
  }
  snprintf(port_text, sizeof port_text, "%d", *port);
  return spawn(p, argv, err, len);
}

void bench_proc_stop(struct bench_proc *p) {
  uint64_t until = bench_now_ns() + STOP_GRACE_MS * 1000000ull;
  pid_t reaped = 0;
  if (p->pid <= 0) {
    return;
  }
  kill(p->pid, SIGTERM);
  while ((reaped = waitpid(p->pid, NULL, WNOHANG)) == 0 &&
         bench_now_ns() < until) {
    sleep_ms(20);
  }
  if (reaped == 0) {
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
  }
  p->pid = 0;
}
