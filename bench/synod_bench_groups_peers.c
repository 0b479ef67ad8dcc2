/* synod-bench-groups: the two peers. Corosync CPG: three corosync 3.1.7
 * instances, each in a network namespace of its own (a private /run in a
 * mount namespace of its own too), knet on 127.0.1.1-3 over veth links to
 * a bridge in a fourth namespace, and synod-bench-groups-cpg member
 * processes inside those namespaces. JGroups 2.12: GroupsJGroups.java,
 * compiled here with javac, one JVM per workload. */
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster.h"
#include "synod_bench_groups.h"

#define CPG_NODES 3
#define JG_JAR "/usr/share/java/jgroups.jar"
#define JG_PORTS 40

#ifndef GB_SOURCE_DIR
#define GB_SOURCE_DIR "."
#endif

/* ====================================================== Corosync CPG */

static struct {
  bool made[CPG_NODES + 1]; /* namespaces we added: nodes, then the hub */
  char ns[CPG_NODES + 1][32];
  pid_t coro[CPG_NODES];
  char dir[PATH_MAX + 16];
  char member[PATH_MAX + 64];
  char setup_log[PATH_MAX + 32];
} cpg;

/* Runs `sh -c` on a command we built (only our own names and paths). */
static int cpg_sh(const char *fmt, ...) {
  char cmd[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  char *argv[] = {"sh", "-c", cmd, NULL};
  return gb_run(argv, cpg.setup_log, 20000);
}

static void cpg_conf_write(int i) {
  char path[PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/n%d/corosync.conf", cpg.dir, i + 1);
  FILE *f = fopen(path, "w");
  if (f == NULL)
    return;
  /* Corosync's defaults otherwise: token 3000 ms (+650 per node above 2),
   * consensus 1.2 x token. No crypto, as on a trusted loopback. */
  fprintf(f,
          "totem {\n  version: 2\n  cluster_name: gbench\n"
          "  transport: knet\n  crypto_cipher: none\n  crypto_hash: none\n"
          "}\nlogging {\n  to_stderr: yes\n  to_logfile: no\n"
          "  to_syslog: no\n  timestamp: on\n}\n"
          "quorum {\n  provider: corosync_votequorum\n}\n"
          "system {\n  state_dir: %s/n%d\n}\nnodelist {\n",
          cpg.dir, i + 1);
  for (int k = 0; k < CPG_NODES; k++)
    fprintf(f,
            "  node {\n    name: n%d\n    nodeid: %d\n"
            "    ring0_addr: 127.0.1.%d\n  }\n",
            k + 1, k + 1, k + 1);
  fprintf(f, "}\n");
  fclose(f);
}

/* Starts corosync i in its namespace, in a mount namespace of its own
 * with a fresh /run (its pid file and sockets' directory); `exec`s keep
 * the pid ours: ip netns exec, unshare and sh all exec the next. */
static int cpg_corosync_start(int i) {
  char cmd[PATH_MAX * 4];
  snprintf(cmd, sizeof cmd,
           "mount -t tmpfs gb-run /run && exec corosync -f -c "
           "%s/n%d/corosync.conf >>%s/n%d/corosync.log 2>&1",
           cpg.dir, i + 1, cpg.dir, i + 1);
  char *argv[] = {"ip", "netns", "exec", cpg.ns[i], "unshare",
                  "-m", "sh",    "-c",   cmd,       NULL};
  struct gb_proc p;
  if (gb_proc_spawn(&p, argv, cpg.setup_log) != 0)
    return -1;
  close(p.in);
  close(p.out);
  cpg.coro[i] = p.pid;
  return 0;
}

static void cpg_corosync_kill(int i, int sig) {
  if (cpg.coro[i] <= 0)
    return;
  kill(cpg.coro[i], sig);
  waitpid(cpg.coro[i], NULL, 0);
  test_untrack(cpg.coro[i]);
  cpg.coro[i] = 0;
}

/* Waits (bounded) until corosync i counts n votes. */
static int cpg_wait_votes(int i, int n, unsigned timeout_ms) {
  uint64_t until = gb_now_ns() + (uint64_t)timeout_ms * 1000000u;
  while (gb_now_ns() < until) {
    if (cpg_sh("ip netns exec %s corosync-quorumtool -s 2>/dev/null | "
               "grep -Eq 'Total votes: +%d$'",
               cpg.ns[i], n) == 0)
      return 0;
    gb_sleep_ms(200);
  }
  return -1;
}

void gb_cpg_stop(void) {
  for (int i = 0; i < CPG_NODES; i++)
    cpg_corosync_kill(i, SIGTERM);
  for (int i = 0; i <= CPG_NODES; i++)
    if (cpg.made[i]) {
      cpg.made[i] = false;
      cpg_sh("ip netns del %s", cpg.ns[i]);
    }
}

static int cpg_net_up(void) {
  const char *hub = cpg.ns[CPG_NODES];
  int pid = (int)getpid();
  if (cpg_sh("ip netns add %s", hub) != 0)
    return -1;
  cpg.made[CPG_NODES] = true;
  if (cpg_sh("ip -n %s link add gb%dbr type bridge && "
             "ip -n %s link set gb%dbr up",
             hub, pid, hub, pid) != 0)
    return -1;
  for (int i = 0; i < CPG_NODES; i++) {
    const char *ns = cpg.ns[i];
    if (cpg_sh("ip netns add %s", ns) != 0)
      return -1;
    cpg.made[i] = true;
    /* 127.0.1.x on a veth: the namespace's lo stays down, so nothing
     * routes 127/8 to it, and route_localnet lets 127/8 on the wire. */
    if (cpg_sh("ip link add gb%dv%d netns %s type veth peer name gb%dh%d "
               "netns %s && ip -n %s link set gb%dh%d master gb%dbr up && "
               "ip netns exec %s sysctl -qw net.ipv4.conf.all.route_localnet=1"
               " && ip netns exec %s sysctl -qw "
               "net.ipv4.conf.gb%dv%d.route_localnet=1 && "
               "ip -n %s addr add 127.0.1.%d/24 dev gb%dv%d && "
               "ip -n %s link set gb%dv%d up",
               pid, i, ns, pid, i, hub, hub, pid, i, pid, ns, ns, pid, i, ns,
               i + 1, pid, i, ns, pid, i) != 0)
      return -1;
  }
  return 0;
}

int gb_cpg_start(const struct gb_opts *o, struct gb_results *r) {
  char *why = r->why_not[GB_CPG];
  snprintf(cpg.member, sizeof cpg.member, "%s/synod-bench-groups-cpg",
           o->self_dir);
  snprintf(cpg.dir, sizeof cpg.dir, "%s/cpg", o->dir);
  snprintf(cpg.setup_log, sizeof cpg.setup_log, "%s/setup.log", cpg.dir);
  for (int i = 0; i < CPG_NODES; i++)
    snprintf(cpg.ns[i], sizeof cpg.ns[i], "gb%d-n%d", (int)getpid(), i + 1);
  snprintf(cpg.ns[CPG_NODES], sizeof cpg.ns[CPG_NODES], "gb%d-hub",
           (int)getpid());
  if (access("/usr/sbin/corosync", X_OK) != 0) {
    snprintf(why, GB_ERR_BYTES,
             "no /usr/sbin/corosync (Debian's corosync; "
             "make bench-groups installs it)");
    return -1;
  }
  if (access(cpg.member, X_OK) != 0) {
    snprintf(why, GB_ERR_BYTES, "%.200s is not built (needs libcpg-dev)",
             cpg.member);
    return -1;
  }
  if (geteuid() != 0) {
    snprintf(why, GB_ERR_BYTES, "network namespaces need root");
    return -1;
  }
  for (int i = 0; i < CPG_NODES; i++) {
    char d[PATH_MAX + 64];
    snprintf(d, sizeof d, "%s/n%d", cpg.dir, i + 1);
    if (cpg_sh("mkdir -p %s", d) != 0)
      return -1;
    cpg_conf_write(i);
  }
  if (cpg_net_up() != 0) {
    snprintf(why, GB_ERR_BYTES, "could not make the namespaces (%.200s)",
             cpg.setup_log);
    return -1;
  }
  for (int i = 0; i < CPG_NODES; i++)
    if (cpg_corosync_start(i) != 0) {
      snprintf(why, GB_ERR_BYTES, "could not start corosync");
      return -1;
    }
  for (int i = 0; i < CPG_NODES; i++)
    if (cpg_wait_votes(i, CPG_NODES, 30000) != 0) {
      snprintf(why, GB_ERR_BYTES,
               "corosync %d did not see 3 votes in 30 s "
               "(%.160s/n%d/corosync.log)",
               i + 1, cpg.dir, i + 1);
      return -1;
    }
  snprintf(r->notes[GB_CPG], sizeof r->notes[GB_CPG],
           "3 corosync 3.1.7, each in a network namespace (and a mount "
           "namespace with a private /run) of its own, knet on 127.0.1.1-3 "
           "over veth links to a bridge, default token (3000 ms + 650 per "
           "node above 2) and consensus (1.2 x token). Messages "
           "CPG_TYPE_AGREED (total order), delivered once every node has "
           "them in memory. CPG keeps nothing on disk: a crash of every "
           "node loses every message. It lets every side of a partition "
           "go on: each side installs its own view and keeps delivering, "
           "so two views coexist until they merge. A member is one libcpg "
           "connection; a sender must be a member, so N senders are N "
           "members that each receive every message");
  return 0;
}

struct cpg_run {
  const char *name;
  int handles[CPG_NODES], senders[CPG_NODES];
  size_t size;
  double rate, seconds, warmup;
  bool crash; /* SIGKILL corosync 3 one second in */
  /* out */
  double per_s_min, p50_med, p99_max, gap_max, crash_view_ms;
};

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* One run: a member process per node, ready, go, results. -1 if a
 * surviving member gave no result. */
static int cpg_run(const struct gb_opts *o, struct cpg_run *run, int rep) {
  struct gb_proc p[CPG_NODES];
  char group[64], args[CPG_NODES][8][32], log[PATH_MAX + 64], line[1024];
  int expect = 0, rv = 0;
  uint64_t kill_ns = 0;
  (void)o;
  snprintf(group, sizeof group, "gb-%s-%d", run->name, rep);
  for (int i = 0; i < CPG_NODES; i++)
    expect += run->handles[i];
  snprintf(log, sizeof log, "%s/members.log", cpg.dir);
  for (int i = 0; i < CPG_NODES; i++) {
    snprintf(args[i][0], 32, "%d", expect);
    snprintf(args[i][1], 32, "%d", run->handles[i]);
    snprintf(args[i][2], 32, "%d", run->senders[i]);
    snprintf(args[i][3], 32, "%zu", run->size);
    snprintf(args[i][4], 32, "%g", run->rate);
    snprintf(args[i][5], 32, "%g", run->seconds);
    snprintf(args[i][6], 32, "%g", run->warmup);
    char *argv[] = {"ip",       "netns",     "exec",     cpg.ns[i],
                    cpg.member, "--group",   group,      "--expect",
                    args[i][0], "--handles", args[i][1], "--senders",
                    args[i][2], "--size",    args[i][3], "--rate",
                    args[i][4], "--seconds", args[i][5], "--warmup",
                    args[i][6], NULL};
    if (gb_proc_spawn(&p[i], argv, log) != 0)
      p[i].pid = 0;
  }
  for (int i = 0; i < CPG_NODES && rv == 0; i++) {
    do {
      if (gb_proc_line(&p[i], line, sizeof line, 30000) != 0) {
        fprintf(stderr, "cpg %s: member %d not ready: %s\n", run->name, i + 1,
                line);
        rv = -1;
        break;
      }
    } while (strcmp(line, "ready") != 0);
  }
  uint64_t go = gb_now_ns() + 100000000u;
  char msg[64];
  snprintf(msg, sizeof msg, "go %llu\n", (unsigned long long)go);
  for (int i = 0; i < CPG_NODES && rv == 0; i++)
    gb_proc_write(&p[i], msg);
  if (rv == 0 && run->crash) {
    while (gb_now_ns() < go + 1000000000u)
      gb_sleep_ms(1);
    kill_ns = gb_now_ns();
    cpg_corosync_kill(CPG_NODES - 1, SIGKILL);
  }
  double per_s[CPG_NODES], p50[CPG_NODES];
  int got = 0;
  run->per_s_min = INFINITY, run->p99_max = 0, run->gap_max = 0;
  run->crash_view_ms = 0;
  unsigned wait_ms =
      (unsigned)((run->warmup + run->seconds + 1) * 1000) + 15000;
  for (int i = 0; i < CPG_NODES && rv == 0; i++) {
    if (run->crash && i == CPG_NODES - 1)
      break; /* its corosync is gone */
    bool view_seen = !run->crash;
    for (;;) {
      if (gb_proc_line(&p[i], line, sizeof line, wait_ms) != 0) {
        fprintf(stderr, "cpg %s: member %d gave no result\n", run->name, i + 1);
        rv = -1;
        break;
      }
      if (!view_seen && strncmp(line, "view ", 5) == 0 &&
          gb_field(line, "left") > 0) {
        double t = strtod(line + 5, NULL);
        double ms = (t - (double)kill_ns) / 1e6;
        if (ms > run->crash_view_ms)
          run->crash_view_ms = ms;
        view_seen = true;
      }
      if (strncmp(line, "result ", 7) == 0) {
        per_s[got] = gb_field(line, "per_s");
        p50[got++] = gb_field(line, "p50_ms");
        if (per_s[got - 1] < run->per_s_min)
          run->per_s_min = per_s[got - 1];
        if (gb_field(line, "p99_ms") > run->p99_max)
          run->p99_max = gb_field(line, "p99_ms");
        if (gb_field(line, "gap_max_ms") > run->gap_max)
          run->gap_max = gb_field(line, "gap_max_ms");
        if (!view_seen)
          rv = -1;
        break;
      }
    }
  }
  for (int i = 0; i < CPG_NODES; i++)
    gb_proc_stop(&p[i], 1000);
  if (rv == 0 && got > 0) {
    qsort(p50, (size_t)got, sizeof *p50, cmp_d);
    run->p50_med = p50[got / 2];
  }
  return rv;
}

static void cpg_record(struct gb_results *r, enum gb_metric m, double v,
                       int ok) {
  if (ok == 0)
    gb_record(r, GB_CPG, m, v);
}

void gb_cpg_round(const struct gb_opts *o, struct gb_results *r, int rep) {
  int n = o->senders;
  struct cpg_run runs[] = {
      {.name = "lat100",
       .handles = {1, 1, 1},
       .senders = {1, 0, 0},
       .size = 100,
       .rate = o->rate},
      {.name = "lat8k",
       .handles = {1, 1, 1},
       .senders = {1, 0, 0},
       .size = 8192,
       .rate = o->rate},
      {.name = "flood100",
       .handles = {1, 1, 1},
       .senders = {1, 0, 0},
       .size = 100},
      {.name = "flood8k",
       .handles = {1, 1, 1},
       .senders = {1, 0, 0},
       .size = 8192},
      {.name = "senders100",
       .handles = {n - 2 * (n / 3), n / 3, n / 3},
       .senders = {n - 2 * (n / 3), n / 3, n / 3},
       .size = 100},
      {.name = "senders8k",
       .handles = {n - 2 * (n / 3), n / 3, n / 3},
       .senders = {n - 2 * (n / 3), n / 3, n / 3},
       .size = 8192},
      {.name = "crash",
       .handles = {1, 1, 1},
       .senders = {1, 0, 0},
       .size = 100,
       .rate = o->rate,
       .crash = true},
  };
  for (size_t k = 0; k < sizeof runs / sizeof runs[0]; k++) {
    struct cpg_run *run = &runs[k];
    run->seconds = run->crash ? o->crash_seconds : o->seconds;
    run->warmup = run->crash ? 0 : o->warmup;
    int ok = cpg_run(o, run, rep);
    if (ok != 0)
      r->peer_failures++;
    switch (k) {
    case 0:
      cpg_record(r, GB_LAT100_P50, run->p50_med, ok);
      cpg_record(r, GB_LAT100_P99, run->p99_max, ok);
      break;
    case 1:
      cpg_record(r, GB_LAT8K_P50, run->p50_med, ok);
      cpg_record(r, GB_LAT8K_P99, run->p99_max, ok);
      break;
    case 2:
      cpg_record(r, GB_FLOOD100, run->per_s_min, ok);
      break;
    case 3:
      cpg_record(r, GB_FLOOD8K, run->per_s_min, ok);
      break;
    case 4:
      cpg_record(r, GB_SENDERS100, run->per_s_min, ok);
      break;
    case 5:
      cpg_record(r, GB_SENDERS8K, run->per_s_min, ok);
      break;
    case 6:
      cpg_record(r, GB_CRASH_VIEW, run->crash_view_ms, ok);
      cpg_record(r, GB_CRASH_GAP, run->gap_max, ok);
      break;
    }
    fprintf(stderr, "  cpg %-10s %s: %.0f msg/s, p50 %.3f ms, p99 %.3f ms%s\n",
            run->name, ok == 0 ? "ok" : "FAILED", run->per_s_min, run->p50_med,
            run->p99_max, "");
    if (run->crash) {
      fprintf(stderr,
              "  cpg crash: view after %.0f ms, longest pause %.0f "
              "ms\n",
              run->crash_view_ms, run->gap_max);
      if (cpg_corosync_start(CPG_NODES - 1) != 0 ||
          cpg_wait_votes(0, CPG_NODES, 30000) != 0) {
        fprintf(stderr, "cpg: corosync 3 did not come back\n");
        r->peer_failures++;
      }
    }
  }
}

/* ============================================================ JGroups */

static struct {
  char classes[PATH_MAX + 16];
  char log[PATH_MAX + 32];
  int port;
} jg;

void gb_jgroups_stop(void) {
}

/* A base port with JG_PORTS free ports above it on 127.0.0.1. */
static int jg_free_base(void) {
  for (int tries = 0; tries < 50; tries++) {
    int base = 20000 + rand() % 20000, i;
    for (i = 0; i < JG_PORTS; i++) {
      struct sockaddr_in sa = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)(base + i))};
      sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      int ok = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
      if (fd >= 0)
        close(fd);
      if (!ok)
        break;
    }
    if (i == JG_PORTS)
      return base;
  }
  return -1;
}

int gb_jgroups_start(const struct gb_opts *o, struct gb_results *r) {
  char *why = r->why_not[GB_JGROUPS];
  snprintf(jg.classes, sizeof jg.classes, "%s/jgroups", o->dir);
  snprintf(jg.log, sizeof jg.log, "%s/jgroups.log", o->dir);
  if (access(JG_JAR, R_OK) != 0 || access("/usr/bin/javac", X_OK) != 0) {
    snprintf(why, GB_ERR_BYTES,
             "no %s or javac (Debian's libjgroups-java and "
             "default-jdk-headless; make bench-groups installs them)",
             JG_JAR);
    return -1;
  }
  char *argv[] = {"javac",
                  "-nowarn",
                  "-cp",
                  JG_JAR,
                  "-d",
                  jg.classes,
                  GB_SOURCE_DIR "/bench/GroupsJGroups.java",
                  NULL};
  if (gb_run(argv, jg.log, 120000) != 0) {
    snprintf(why, GB_ERR_BYTES, "javac failed (%.200s)", jg.log);
    return -1;
  }
  srand((unsigned)getpid());
  snprintf(r->notes[GB_JGROUPS], sizeof r->notes[GB_JGROUPS],
           "JGroups 2.12.2 (Debian), every member a JChannel in one JVM "
           "(OpenJDK, serial GC) per workload: TCP on 127.0.0.1, TCPPING, "
           "FD_SOCK + FD, NAKACK, UNICAST, STABLE, GMS (view bundling off), "
           "SEQUENCER (total order: every message goes through the "
           "coordinator), UFC/MFC, FRAG2; as Debian's tcp.xml otherwise. "
           "Nothing on disk; after a partition each side installs its own "
           "view and goes on (MERGE2 merges them later)");
  return 0;
}

/* Runs one JGroups workload; the "jg" line it printed, or -1. */
static int jg_run(const char *workload, char *const extra[], char *out,
                  size_t len) {
  char cp[PATH_MAX + 128], port[16];
  char *argv[24];
  int n = 0;
  int base = jg_free_base();
  if (base < 0)
    return -1;
  snprintf(port, sizeof port, "%d", base);
  snprintf(cp, sizeof cp, "%s:%s", JG_JAR, jg.classes);
  argv[n++] = "java";
  argv[n++] = "-XX:+UseSerialGC";
  argv[n++] = "-Djava.net.preferIPv4Stack=true";
  argv[n++] = "-Djava.util.logging.config.file=/dev/null";
  argv[n++] = "-cp";
  argv[n++] = cp;
  argv[n++] = "GroupsJGroups";
  argv[n++] = (char *)workload;
  argv[n++] = port;
  for (int i = 0; extra[i] && n < 22; i++)
    argv[n++] = extra[i];
  argv[n] = NULL;
  struct gb_proc p;
  if (gb_proc_spawn(&p, argv, jg.log) != 0)
    return -1;
  int rv = -1;
  /* GroupsJGroups ends itself (its watchdog) within 90 s of a join
   * workload's start and 30 s after a traffic run's end. */
  while (gb_proc_line(&p, out, len, 120000) == 0)
    if (strncmp(out, "jg ", 3) == 0) {
      rv = strstr(out, " timeout=1") ? -1 : 0;
      break;
    }
  gb_proc_stop(&p, 2000);
  return rv;
}

void gb_jgroups_round(const struct gb_opts *o, struct gb_results *r, int rep) {
  char line[1024], a[8][48];
  (void)rep;
  snprintf(a[0], sizeof a[0], "seconds=%g", o->seconds);
  snprintf(a[1], sizeof a[1], "warmup=%g", o->warmup);
  snprintf(a[2], sizeof a[2], "rate=%g", o->rate);
  snprintf(a[3], sizeof a[3], "senders=%d", o->senders);
  snprintf(a[4], sizeof a[4], "join_members=%d", o->view_members);
  snprintf(a[5], sizeof a[5], "repeat=%d", o->quick ? 3 : 5);
  char *join[] = {a[4], a[5], NULL};
  char *lat100[] = {a[0], a[1], a[2], "size=100", NULL};
  char *lat8k[] = {a[0], a[1], a[2], "size=8192", NULL};
  char *flood100[] = {a[0], a[1], "senders=1", "size=100", NULL};
  char *flood8k[] = {a[0], a[1], "senders=1", "size=8192", NULL};
  char *many100[] = {a[0], a[1], a[3], "size=100", NULL};
  char *many8k[] = {a[0], a[1], a[3], "size=8192", NULL};
  struct {
    const char *w;
    char **args;
    enum gb_metric m, m99;
    const char *field;
  } runs[] = {
      {"latency", lat100, GB_LAT100_P50, GB_LAT100_P99, "p50_ms"},
      {"latency", lat8k, GB_LAT8K_P50, GB_LAT8K_P99, "p50_ms"},
      {"flood", flood100, GB_FLOOD100, GB_METRICS, "per_s"},
      {"flood", flood8k, GB_FLOOD8K, GB_METRICS, "per_s"},
      {"flood", many100, GB_SENDERS100, GB_METRICS, "per_s"},
      {"flood", many8k, GB_SENDERS8K, GB_METRICS, "per_s"},
      {"join", join, GB_JOIN_VIEW, GB_METRICS, "join4_ms"},
  };
  for (size_t k = 0; k < sizeof runs / sizeof runs[0]; k++) {
    uint64_t t0 = gb_now_ns();
    if (jg_run(runs[k].w, runs[k].args, line, sizeof line) != 0) {
      fprintf(stderr, "  jgroups %s: FAILED (no result in time; %s)\n",
              runs[k].w, jg.log);
      r->peer_failures++;
      continue;
    }
    fprintf(stderr, "  %s (%.1f s)\n", line, (gb_now_ns() - t0) / 1e9);
    gb_record(r, GB_JGROUPS, runs[k].m, gb_field(line, runs[k].field));
    if (runs[k].m99 != GB_METRICS)
      gb_record(r, GB_JGROUPS, runs[k].m99, gb_field(line, "p99_ms"));
    if (runs[k].m == GB_JOIN_VIEW) {
      char key[32];
      snprintf(key, sizeof key, "join%d_p50_ms", o->view_members);
      gb_record(r, GB_JGROUPS, GB_VIEW16, gb_field(line, key));
      snprintf(key, sizeof key, "leave%d_p50_ms", o->view_members);
      gb_record(r, GB_JGROUPS, GB_LEAVE16, gb_field(line, key));
    }
  }
}
