/* synod-bench-groups: synod's groups side by side with Corosync CPG (3
 * corosync 3.1.7 instances, each in a network namespace of its own) and
 * JGroups 2.12 (SEQUENCER, TCP on 127.0.0.1), in one run on one machine:
 * send -> delivery latency at every member, messages/s from one sender
 * and from many, the time from a member's crash or clean end to the new
 * view, view changes, and (synod) a joiner's state transfer. Issue 23's
 * "Speed" targets are printed beside the medians.
 *
 * Every system is started here and stays up for the whole run; the
 * systems' rounds alternate (synod, CPG, JGroups, synod, ...), so the
 * machine's noise falls on all alike. Only processes, namespaces and
 * files this program created are touched, and they go at exit, also on
 * failure or ^C. See bench/README.md. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "synod_bench_groups.h"

/* Issue 23's targets for synod. */
#define TARGET_SENDERS_VS_CPG_FLOOD 2.0
#define TARGET_VIEW16_COMMIT_MS 2.0
#define TARGET_CKPT_MBS 50.0

static const char *const SYS_NAMES[GB_SYSTEMS] = {"synod", "CPG", "JGroups"};

static struct gb_results results;

/* ============================================================ utilities */

uint64_t gb_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void gb_sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

void gb_record(struct gb_results *r, enum gb_sys s, enum gb_metric m,
               double v) {
  if (isnan(v) || v < 0 || r->n[s][m] >= GB_RUNS_MAX)
    return;
  r->v[s][m][r->n[s][m]++] = v;
}

double gb_field(const char *line, const char *key) {
  char pat[64];
  snprintf(pat, sizeof pat, " %s=", key);
  const char *p = strstr(line, pat);
  return p ? strtod(p + strlen(pat), NULL) : NAN;
}

int gb_proc_spawn(struct gb_proc *p, char *const argv[], const char *log) {
  int in[2], out[2];
  pid_t parent = getpid();
  memset(p, 0, sizeof *p);
  p->in = p->out = -1;
  if (pipe2(in, O_CLOEXEC) != 0)
    return -1;
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in[0]), close(in[1]);
    return -1;
  }
  int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  fflush(NULL);
  p->pid = fork();
  if (p->pid == 0) {
    /* Its own process group (a ^C reaches only us, and we stop it), and
     * killed by the kernel if we die first. */
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(127);
    dup2(in[0], STDIN_FILENO);
    dup2(out[1], STDOUT_FILENO);
    if (fd >= 0)
      dup2(fd, STDERR_FILENO);
    execvp(argv[0], argv);
    _exit(127);
  }
  if (fd >= 0)
    close(fd);
  close(in[0]);
  close(out[1]);
  if (p->pid < 0) {
    close(in[1]), close(out[0]);
    return -1;
  }
  test_track(p->pid);
  p->in = in[1];
  p->out = out[0];
  return 0;
}

int gb_proc_line(struct gb_proc *p, char *line, size_t len,
                 unsigned timeout_ms) {
  uint64_t until = gb_now_ns() + (uint64_t)timeout_ms * 1000000u;
  for (;;) {
    char *nl = memchr(p->buf, '\n', p->len);
    if (nl) {
      size_t n = (size_t)(nl - p->buf);
      snprintf(line, len, "%.*s", (int)n, p->buf);
      memmove(p->buf, nl + 1, p->len - n - 1);
      p->len -= n + 1;
      return 0;
    }
    uint64_t now = gb_now_ns();
    if (now >= until || p->out < 0 || p->len == sizeof p->buf)
      return -1;
    struct pollfd pf = {.fd = p->out, .events = POLLIN};
    int rv = poll(&pf, 1, (int)((until - now) / 1000000u) + 1);
    if (rv < 0 && errno != EINTR)
      return -1;
    if (rv <= 0)
      continue;
    ssize_t got = read(p->out, p->buf + p->len, sizeof p->buf - p->len);
    if (got <= 0)
      return -1;
    p->len += (size_t)got;
  }
}

int gb_proc_write(struct gb_proc *p, const char *s) {
  size_t n = strlen(s);
  return write(p->in, s, n) == (ssize_t)n ? 0 : -1;
}

void gb_proc_stop(struct gb_proc *p, unsigned grace_ms) {
  if (p->pid > 0) {
    uint64_t until = gb_now_ns() + (uint64_t)grace_ms * 1000000u;
    pid_t r;
    kill(p->pid, SIGTERM);
    while ((r = waitpid(p->pid, NULL, WNOHANG)) == 0 && gb_now_ns() < until)
      gb_sleep_ms(5);
    if (r == 0) {
      kill(p->pid, SIGKILL);
      waitpid(p->pid, NULL, 0);
    }
    test_untrack(p->pid);
    p->pid = 0;
  }
  if (p->in >= 0)
    close(p->in);
  if (p->out >= 0)
    close(p->out);
  p->in = p->out = -1;
}

int gb_run(char *const argv[], const char *log, unsigned timeout_ms) {
  struct gb_proc p;
  int status;
  if (gb_proc_spawn(&p, argv, log) != 0)
    return -1;
  close(p.in);
  p.in = -1;
  /* Its stdout goes to the log too, through us. */
  int fd = open(log, O_WRONLY | O_APPEND | O_CLOEXEC);
  uint64_t until = gb_now_ns() + (uint64_t)timeout_ms * 1000000u;
  pid_t r = 0;
  while (gb_now_ns() < until && (r = waitpid(p.pid, &status, WNOHANG)) == 0) {
    char buf[4096];
    struct pollfd pf = {.fd = p.out, .events = POLLIN};
    if (poll(&pf, 1, 10) > 0) {
      ssize_t got = read(p.out, buf, sizeof buf);
      if (got > 0 && fd >= 0 && write(fd, buf, (size_t)got) < 0)
        break;
    }
  }
  if (fd >= 0)
    close(fd);
  if (r == p.pid) {
    test_untrack(p.pid);
    p.pid = 0;
    gb_proc_stop(&p, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  gb_proc_stop(&p, 100);
  return -1;
}

/* ============================================================== options */

static void usage(void) {
  printf("usage: synod-bench-groups [flags]\n"
         "  --quick            1 round, 1.5 s runs, 3 view changes (~3 min)\n"
         "  --systems LIST     synod,cpg,jgroups [all three]\n"
         "  --repeat N         rounds, each system's workloads once per round "
         "[3]\n"
         "  --seconds S        measured window of a traffic run [3]\n"
         "  --warmup S         before it [0.5]\n"
         "  --rate N           messages/s of the paced sender [1000]\n"
         "  --senders N        senders of the many-senders runs [64]\n"
         "  --view-members N   members of the view-change runs [16]\n"
         "  --ttl-ms N         session TTL of synod's SIGKILLed member [1000]\n"
         "  --checkpoint-mib N the joiner's checkpoint [16]\n"
         "  --crash-seconds S  CPG's crash run (its ring needs ~8 s) [12]\n"
         "  --max-minutes N    stop the run after this long [20]\n"
         "  --dir DIR          temporary directory's parent [$TMPDIR or /tmp]\n"
         "  --keep             keep the directory and the servers' logs\n");
}

static void parse(int argc, char **argv, struct gb_opts *o) {
  static const struct option lo[] = {
      {"quick", 0, 0, 'q'},         {"systems", 1, 0, 'S'},
      {"repeat", 1, 0, 'r'},        {"seconds", 1, 0, 's'},
      {"warmup", 1, 0, 'w'},        {"rate", 1, 0, 'R'},
      {"senders", 1, 0, 'n'},       {"view-members", 1, 0, 'v'},
      {"ttl-ms", 1, 0, 't'},        {"checkpoint-mib", 1, 0, 'c'},
      {"crash-seconds", 1, 0, 'C'}, {"max-minutes", 1, 0, 'm'},
      {"dir", 1, 0, 'd'},           {"keep", 0, 0, 'k'},
      {"help", 0, 0, 'h'},          {0, 0, 0, 0}};
  bool repeat_set = false, seconds_set = false;
  int c;
  while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    switch (c) {
    case 'q':
      o->quick = true;
      break;
    case 'S':
      memset(o->only, 0, sizeof o->only);
      o->only[GB_SYNOD] = strstr(optarg, "synod") != NULL;
      o->only[GB_CPG] = strstr(optarg, "cpg") != NULL;
      o->only[GB_JGROUPS] = strstr(optarg, "jgroups") != NULL;
      break;
    case 'r':
      o->repeat = atoi(optarg), repeat_set = true;
      break;
    case 's':
      o->seconds = atof(optarg), seconds_set = true;
      break;
    case 'w':
      o->warmup = atof(optarg);
      break;
    case 'R':
      o->rate = atof(optarg);
      break;
    case 'n':
      o->senders = atoi(optarg);
      break;
    case 'v':
      o->view_members = atoi(optarg);
      break;
    case 't':
      o->ttl_ms = (uint32_t)atoi(optarg);
      break;
    case 'c':
      o->checkpoint_bytes = (size_t)atoi(optarg) << 20;
      break;
    case 'C':
      o->crash_seconds = atof(optarg);
      break;
    case 'm':
      o->max_minutes = (unsigned)atoi(optarg);
      break;
    case 'd':
      setenv("SYNOD_TEST_TMP", optarg, 1);
      break;
    case 'k':
      o->keep = true;
      break;
    case 'h':
      usage();
      exit(0);
    default:
      usage();
      exit(2);
    }
  }
  if (o->quick) {
    if (!repeat_set)
      o->repeat = 1;
    if (!seconds_set)
      o->seconds = 1.5;
  }
  if (o->repeat < 1 || o->repeat > GB_RUNS_MAX || o->seconds <= 0 ||
      o->senders < 1 || o->senders > 120 || o->view_members < 4 ||
      o->view_members > 64 || o->ttl_ms < 1000 || o->rate <= 0) {
    fprintf(stderr, "synod-bench-groups: a flag is out of range\n");
    exit(2);
  }
}

/* ============================================================== report */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(enum gb_sys s, enum gb_metric m) {
  int n = results.n[s][m];
  double v[GB_RUNS_MAX];
  if (n == 0)
    return NAN;
  memcpy(v, results.v[s][m], (size_t)n * sizeof *v);
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void cell(char *out, size_t len, double v) {
  if (isnan(v))
    snprintf(out, len, "-");
  else if (v >= 1000)
    snprintf(out, len, "%.0f", v);
  else if (v >= 10)
    snprintf(out, len, "%.1f", v);
  else
    snprintf(out, len, "%.3f", v);
}

static void ratio(char *out, size_t len, double a, double b) {
  if (isnan(a) || isnan(b) || b == 0)
    snprintf(out, len, "-");
  else
    snprintf(out, len, "%.2fx", a / b);
}

struct row {
  enum gb_metric m;
  const char *label;
};

static const struct row ROWS[] = {
    {GB_LAT100_P50, "send -> delivery at every member, 100 B, p50 (ms)"},
    {GB_LAT100_P99, "  p99 (ms)"},
    {GB_LAT8K_P50, "send -> delivery at every member, 8 KiB, p50 (ms)"},
    {GB_LAT8K_P99, "  p99 (ms)"},
    {GB_FLOOD100, "one sender flooding, 100 B (msg/s at every member)"},
    {GB_FLOOD8K, "one sender flooding, 8 KiB (msg/s)"},
    {GB_SENDERS100, "N senders, 100 B (msg/s at every member)"},
    {GB_SENDERS8K, "N senders, 8 KiB (msg/s)"},
    {GB_CRASH_VIEW, "member SIGKILLed -> view at every other (ms)"},
    {GB_CRASH_GAP, "  longest pause in deliveries meanwhile (ms)"},
    {GB_CLOSE_VIEW, "member ends cleanly -> view at the others (ms)"},
    {GB_JOIN_VIEW, "a 4th member joins -> view at all 4 (ms)"},
    {GB_VIEW16, "view change at M members: join -> view at all (ms)"},
    {GB_VIEW16_COMMIT, "  from the join's answer (the commit) (ms)"},
    {GB_LEAVE16, "  leave -> view at the others (ms)"},
    {GB_CKPT_MBS, "joiner gets the checkpoint + tail (MB/s)"},
};

static void targets(const struct gb_opts *o) {
  double lat = median(GB_SYNOD, GB_LAT100_P50);
  double cpg_lat = median(GB_CPG, GB_LAT100_P50);
  double snd = median(GB_SYNOD, GB_SENDERS100);
  double flood = median(GB_CPG, GB_FLOOD100);
  double crash = median(GB_SYNOD, GB_CRASH_VIEW);
  double v16 = median(GB_SYNOD, GB_VIEW16_COMMIT);
  double ck = median(GB_SYNOD, GB_CKPT_MBS);
  const char *na = "not measured";
#define MET(c) ((c) ? "met" : "**not met**")
  printf("\nIssue 23's targets for synod (medians of this run):\n");
  if (isnan(lat) || isnan(cpg_lat))
    printf("- durable send -> delivery p50 <= CPG's: %s\n", na);
  else
    printf("- durable send -> delivery p50 <= CPG's: %.3f ms vs %.3f ms "
           "(%.2fx): %s\n",
           lat, cpg_lat, lat / cpg_lat, MET(lat <= cpg_lat));
  if (isnan(snd) || isnan(flood))
    printf("- %d senders >= %.0fx CPG's one-sender flood: %s\n", o->senders,
           TARGET_SENDERS_VS_CPG_FLOOD, na);
  else
    printf("- %d senders >= %.0fx CPG's one-sender flood: %.0f vs %.0f "
           "msg/s (%.2fx): %s\n",
           o->senders, TARGET_SENDERS_VS_CPG_FLOOD, snd, flood, snd / flood,
           MET(snd >= TARGET_SENDERS_VS_CPG_FLOOD * flood));
  if (isnan(crash))
    printf("- a SIGKILLed member leaves the view within its TTL: %s\n", na);
  else
    printf("- a SIGKILLed member leaves the view within its TTL (%u ms): "
           "%.0f ms: %s\n",
           o->ttl_ms, crash, MET(crash <= o->ttl_ms));
  if (isnan(v16))
    printf("- a view change with %d members at all of them within %.0f ms "
           "of the commit: %s\n",
           o->view_members, TARGET_VIEW16_COMMIT_MS, na);
  else
    printf("- a view change with %d members at all of them within %.0f ms "
           "of the commit (p50): %.3f ms: %s\n",
           o->view_members, TARGET_VIEW16_COMMIT_MS, v16,
           MET(v16 <= TARGET_VIEW16_COMMIT_MS));
  if (isnan(ck))
    printf("- a joiner gets a %zu MiB checkpoint + tail at >= %.0f MB/s: "
           "%s\n",
           o->checkpoint_bytes >> 20, TARGET_CKPT_MBS, na);
  else
    printf("- a joiner gets a %zu MiB checkpoint + tail at >= %.0f MB/s: "
           "%.1f MB/s: %s\n",
           o->checkpoint_bytes >> 20, TARGET_CKPT_MBS, ck,
           MET(ck >= TARGET_CKPT_MBS));
#undef MET
}

static void report(const struct gb_opts *o, double load0, double load1,
                   double elapsed_s) {
  printf("\nsynod-bench-groups: medians of %d round(s); load average %.2f at "
         "the start, %.2f at the end; %.0f s\n",
         o->repeat, load0, load1, elapsed_s);
  printf("paced sender %.0f msg/s; N = %d senders; M = %d members; runs of "
         "%.1f s after %.1f s of warm-up\n\n",
         o->rate, o->senders, o->view_members, o->seconds, o->warmup);
  printf("| workload | synod | CPG | JGroups | synod/CPG | synod/JGroups |\n"
         "|---|---|---|---|---|---|\n");
  for (size_t i = 0; i < sizeof ROWS / sizeof ROWS[0]; i++) {
    char c[GB_SYSTEMS][32], r1[32], r2[32];
    double v[GB_SYSTEMS];
    for (int s = 0; s < GB_SYSTEMS; s++) {
      v[s] = median((enum gb_sys)s, ROWS[i].m);
      cell(c[s], sizeof c[s], v[s]);
    }
    ratio(r1, sizeof r1, v[GB_SYNOD], v[GB_CPG]);
    ratio(r2, sizeof r2, v[GB_SYNOD], v[GB_JGROUPS]);
    printf("| %s | %s | %s | %s | %s | %s |\n", ROWS[i].label, c[0], c[1], c[2],
           r1, r2);
  }
  targets(o);
  printf("\nThe systems (what each guarantees; compare with care):\n");
  for (int s = 0; s < GB_SYSTEMS; s++) {
    if (results.why_not[s][0])
      printf("- %s: NOT RUN: %s\n", SYS_NAMES[s], results.why_not[s]);
    else if (o->only[s])
      printf("- %s: %s\n", SYS_NAMES[s], results.notes[s]);
  }
  if (results.peer_failures)
    printf("\nNOTE: %u run(s) of the peers gave no result in time (their "
           "lines on stderr say which; the logs stay with --keep)\n",
           results.peer_failures);
  if (results.failures)
    printf(
        "\nFAIL: %u of synod's workload runs gave no result (see the logs with "
        "--keep)\n",
        results.failures);
}

/* ================================================================ main */

static void stop_all(void) {
  gb_cpg_stop();
  gb_jgroups_stop();
  gb_synod_stop();
}

static void on_signal(int sig) {
  (void)sig;
  exit(130); /* stop_all and the harness's cleanup run at exit */
}

static void on_alarm(int sig) {
  (void)sig;
  static const char msg[] = "synod-bench-groups: --max-minutes reached\n";
  if (write(2, msg, sizeof msg - 1) < 0) {
  }
  exit(3);
}

int main(int argc, char **argv) {
  struct gb_opts o = {.repeat = 3,
                      .seconds = 3,
                      .warmup = 0.5,
                      .rate = 1000,
                      .senders = 64,
                      .view_members = 16,
                      .ttl_ms = 1000,
                      .checkpoint_bytes = 16u << 20,
                      .tail = 1000,
                      .crash_seconds = 12,
                      .max_minutes = 20};
  double load0[3] = {0}, load1[3] = {0};
  if (argc > 1 && strcmp(argv[1], "--group-victim") == 0)
    return gb_synod_victim_main(argc - 1, argv + 1);
  for (int s = 0; s < GB_SYSTEMS; s++)
    o.only[s] = true;
  parse(argc, argv, &o);
  setvbuf(stdout, NULL, _IOLBF, 0);
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0)
    return 1;
  self[n] = '\0';
  snprintf(o.self_dir, sizeof o.self_dir, "%s", self);
  *strrchr(o.self_dir, '/') = '\0';
  test_tmpdir("synod-bench-groups", o.dir, sizeof o.dir);
  if (o.keep)
    test_failed = 1; /* the harness then keeps the directory */
  atexit(stop_all);  /* runs before the harness's cleanup (registered first) */
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  signal(SIGALRM, on_alarm);
  signal(SIGPIPE, SIG_IGN);
  alarm(o.max_minutes * 60);
  getloadavg(load0, 3);
  uint64_t t0 = gb_now_ns();
  printf("synod-bench-groups: %s, in %s\n", o.quick ? "quick" : "full", o.dir);
  int (*start[GB_SYSTEMS])(const struct gb_opts *, struct gb_results *) = {
      gb_synod_start, gb_cpg_start, gb_jgroups_start};
  void (*round[GB_SYSTEMS])(const struct gb_opts *, struct gb_results *,
                            int) = {gb_synod_round, gb_cpg_round,
                                    gb_jgroups_round};
  bool up[GB_SYSTEMS] = {false};
  for (int s = 0; s < GB_SYSTEMS; s++) {
    if (!o.only[s])
      continue;
    fprintf(stderr, "starting %s\n", SYS_NAMES[s]);
    up[s] = start[s](&o, &results) == 0;
    if (!up[s])
      fprintf(stderr, "%s: NOT RUN: %s\n", SYS_NAMES[s], results.why_not[s]);
  }
  for (int rep = 0; rep < o.repeat; rep++)
    for (int s = 0; s < GB_SYSTEMS; s++)
      if (up[s]) {
        fprintf(stderr, "round %d/%d: %s\n", rep + 1, o.repeat, SYS_NAMES[s]);
        round[s](&o, &results, rep);
      }
  getloadavg(load1, 3);
  report(&o, load0[0], load1[0], (double)(gb_now_ns() - t0) / 1e9);
  stop_all();
  return results.failures ? 1 : 0;
}
