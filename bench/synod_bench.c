/* synod-bench: runs the same closed-loop workloads against a 3-replica
 * synod cluster and a 3-member etcd 3.4 cluster, side by side in one go,
 * and prints median throughput, latency and the synod/etcd ratio.
 *
 *   synod-bench [--quick] [--seconds S] [--repeat N] [--json] ...
 *
 * Both clusters are child processes on free 127.0.0.1 ports with data in
 * a temporary directory that is removed at the end. See bench/README.md. */
#include <curl/curl.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "synod_bench.h"

#define ETCD_DEFAULT "/usr/bin/etcd"
#define START_WAIT_MS 30000
#define CLIENT_COUNTS_MAX 8

volatile sig_atomic_t bench_interrupted;

struct options {
  double seconds;
  double warmup_s;
  int repeat;
  int clients[CLIENT_COUNTS_MAX];
  int clients_len;
  int threads; /* load generator threads */
  bool workloads[BENCH_WORKLOADS];
  bool key_scale;   /* fill --keys keys: memory per key, list */
  bool key_expiry;  /* a session of --expiry-keys keys ends */
  bool clients_set; /* --clients given: the key workloads use it too */
  uint64_t keys;
  uint64_t expiry_keys;
  int max_minutes;
  bool run[BENCH_SYSTEMS];
  bool json;
  bool keep;
  bool spread; /* etcd clients spread over members, not all to the leader */
  const char *dir;
  const char *etcd;
  const char *redis; /* key-scale's optional peer */
  int scrape_ms;     /* 0 = no scraper */
};

static const char usage[] =
    "usage: synod-bench [options]\n"
    "\n"
    "Starts a 3-replica synod cluster (synodd next to this program) and a\n"
    "3-member etcd cluster (/usr/bin/etcd, Debian's etcd-server; `make\n"
    "bench` installs it) on free 127.0.0.1 ports, runs each workload with\n"
    "each client count on both, alternately, and prints medians of the\n"
    "repeated runs: ops/s, p50/p99 latency, and the ratio synod/etcd\n"
    "(above 1: synod does more operations per second).\n"
    "\n"
    "  --seconds S        measured seconds per run [5]\n"
    "  --warmup S         unmeasured seconds before each run [1]\n"
    "  --repeat N         runs per configuration, median reported [3]\n"
    "  --clients LIST     concurrent clients, e.g. 1,8,64 [1,8,64]\n"
    "  --threads N        load generator threads, each with its own event\n"
    "                     loop and its share of the clients [one per CPU]\n"
    "  --workloads LIST   of counter-shared, counter-own, lock, key-put,\n"
    "                     key-get, key-scale, key-expiry; `keys` is the last\n"
    "                     four, `all` every one [counter-shared,counter-own,\n"
    "                     lock]. key-put and key-get run with 64 clients\n"
    "                     unless --clients is given\n"
    "  --keys N           key-scale: keys filled, measured and listed\n"
    "                     [1000000]\n"
    "  --expiry-keys N    key-expiry: keys bound to the session that ends\n"
    "                     [100000]\n"
    "  --max-minutes M    stop (as ^C does) after M minutes, and exit after\n"
    "                     one more whatever is still running [30]\n"
    "  --quick            1 run of 2 s (0.5 s warm-up) per configuration\n"
    "  --synod-only       do not start etcd\n"
    "  --etcd-only        do not start synod\n"
    "  --etcd-target T    leader: every etcd client talks to the leader;\n"
    "                     spread: client i talks to member i mod 3 [leader]\n"
    "  --etcd PATH        the etcd binary [/usr/bin/etcd]\n"
    "  --redis PATH       key-scale also fills one redis-server with the\n"
    "                     same keys, for its memory per key, if it exists\n"
    "                     [/usr/bin/redis-server]\n"
    "  --dir DIR          where the temporary data directory goes [$TMPDIR\n"
    "                     or /tmp]\n"
    "  --keep             keep the data directory and server logs\n"
    "  --json             one JSON object on stdout instead of tables\n"
    "  --scrape-ms MS     fetch every synod replica's /metrics each MS ms\n"
    "                     during the runs (what a Prometheus scrape costs)\n"
    "  --help             this text\n"
    "\n"
    "Progress goes to stderr. Exit status: 0 every check passed, 1 a check\n"
    "failed or a cluster did not start, 2 bad usage.\n";

static int parse_list(const char *arg, int *out, int max) {
  char buf[128], *save = NULL;
  int n = 0;
  snprintf(buf, sizeof buf, "%s", arg);
  for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    char *end;
    long v = strtol(t, &end, 10);
    if (*end != '\0' || v < 1 || v > BENCH_CLIENTS_MAX || n == max) {
      return -1;
    }
    out[n++] = (int)v;
  }
  return n;
}

static int parse_workloads(const char *arg, struct options *o) {
  char buf[128], *save = NULL;
  bool *on = o->workloads;
  memset(on, 0, BENCH_WORKLOADS * sizeof *on);
  o->key_scale = o->key_expiry = false;
  snprintf(buf, sizeof buf, "%s", arg);
  for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    bool all = strcmp(t, "all") == 0, keys = all || strcmp(t, "keys") == 0;
    int wl = 0;
    if (keys || strcmp(t, "key-scale") == 0 || strcmp(t, "key-expiry") == 0) {
      o->key_scale |= keys || strcmp(t, "key-scale") == 0;
      o->key_expiry |= keys || strcmp(t, "key-expiry") == 0;
      for (int i = 0; i < BENCH_WORKLOADS; i++) {
        on[i] |= all || (keys && (i == BENCH_KEY_PUT || i == BENCH_KEY_GET));
      }
      continue;
    }
    while (wl < BENCH_WORKLOADS && strcmp(t, bench_workload_name(wl)) != 0) {
      wl++;
    }
    if (wl == BENCH_WORKLOADS) {
      return -1;
    }
    on[wl] = true;
  }
  return 0;
}

static void options_default(struct options *o) {
  memset(o, 0, sizeof *o);
  o->seconds = 5;
  o->warmup_s = 1;
  o->repeat = 3;
  o->clients[0] = 1, o->clients[1] = 8, o->clients[2] = 64;
  o->clients_len = 3;
  o->threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
  o->threads = o->threads < 1                   ? 1
               : o->threads > BENCH_THREADS_MAX ? BENCH_THREADS_MAX
                                                : o->threads;
  for (int wl = 0; wl <= BENCH_LOCK; wl++) {
    o->workloads[wl] = true;
  }
  o->keys = 1000000;
  o->expiry_keys = 100000;
  o->max_minutes = 30;
  o->run[BENCH_SYNOD] = o->run[BENCH_ETCD] = true;
  o->etcd = ETCD_DEFAULT;
  o->redis = "/usr/bin/redis-server";
}

enum {
  OPT_SECONDS = 256,
  OPT_WARMUP,
  OPT_REPEAT,
  OPT_CLIENTS,
  OPT_THREADS,
  OPT_WORKLOADS,
  OPT_QUICK,
  OPT_SYNOD_ONLY,
  OPT_ETCD_ONLY,
  OPT_TARGET,
  OPT_ETCD,
  OPT_DIR,
  OPT_KEEP,
  OPT_JSON,
  OPT_SCRAPE,
  OPT_KEYS,
  OPT_EXPIRY_KEYS,
  OPT_MAX_MINUTES,
  OPT_REDIS,
  OPT_HELP
};

static const struct option long_options[] = {
    {"seconds", required_argument, NULL, OPT_SECONDS},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"repeat", required_argument, NULL, OPT_REPEAT},
    {"clients", required_argument, NULL, OPT_CLIENTS},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"workloads", required_argument, NULL, OPT_WORKLOADS},
    {"quick", no_argument, NULL, OPT_QUICK},
    {"synod-only", no_argument, NULL, OPT_SYNOD_ONLY},
    {"etcd-only", no_argument, NULL, OPT_ETCD_ONLY},
    {"etcd-target", required_argument, NULL, OPT_TARGET},
    {"etcd", required_argument, NULL, OPT_ETCD},
    {"dir", required_argument, NULL, OPT_DIR},
    {"keep", no_argument, NULL, OPT_KEEP},
    {"json", no_argument, NULL, OPT_JSON},
    {"scrape-ms", required_argument, NULL, OPT_SCRAPE},
    {"keys", required_argument, NULL, OPT_KEYS},
    {"expiry-keys", required_argument, NULL, OPT_EXPIRY_KEYS},
    {"max-minutes", required_argument, NULL, OPT_MAX_MINUTES},
    {"redis", required_argument, NULL, OPT_REDIS},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0}};

/* Applies one option; returns 0, or -1 for a bad value. `set` has a bit
 * per option given, so --quick does not override explicit values. */
static int apply_option(struct options *o, int opt, const char *arg,
                        unsigned *set) {
  char *end = NULL;
  *set |= 1u << (opt - OPT_SECONDS);
  switch (opt) {
  case OPT_SECONDS:
    o->seconds = strtod(arg, &end);
    return *end || o->seconds <= 0 || o->seconds > 3600 ? -1 : 0;
  case OPT_WARMUP:
    o->warmup_s = strtod(arg, &end);
    return *end || o->warmup_s < 0 || o->warmup_s > 600 ? -1 : 0;
  case OPT_REPEAT:
    o->repeat = (int)strtol(arg, &end, 10);
    return *end || o->repeat < 1 || o->repeat > BENCH_REPEAT_MAX ? -1 : 0;
  case OPT_CLIENTS:
    o->clients_len = parse_list(arg, o->clients, CLIENT_COUNTS_MAX);
    o->clients_set = true;
    return o->clients_len > 0 ? 0 : -1;
  case OPT_THREADS:
    o->threads = (int)strtol(arg, &end, 10);
    return *end || o->threads < 1 || o->threads > BENCH_THREADS_MAX ? -1 : 0;
  case OPT_WORKLOADS:
    return parse_workloads(arg, o);
  case OPT_QUICK:
    return 0;
  case OPT_SYNOD_ONLY:
    o->run[BENCH_ETCD] = false;
    return 0;
  case OPT_ETCD_ONLY:
    o->run[BENCH_SYNOD] = false;
    return 0;
  case OPT_TARGET:
    o->spread = strcmp(arg, "spread") == 0;
    return o->spread || strcmp(arg, "leader") == 0 ? 0 : -1;
  case OPT_ETCD:
    o->etcd = arg;
    return 0;
  case OPT_DIR:
    o->dir = arg;
    return 0;
  case OPT_KEEP:
    o->keep = true;
    return 0;
  case OPT_JSON:
    o->json = true;
    return 0;
  case OPT_SCRAPE:
    o->scrape_ms = (int)strtol(arg, &end, 10);
    return *end || o->scrape_ms < 10 || o->scrape_ms > 600000 ? -1 : 0;
  case OPT_KEYS:
    o->keys = strtoull(arg, &end, 10);
    return *end || o->keys < 1 || o->keys > 100000000 ? -1 : 0;
  case OPT_EXPIRY_KEYS:
    o->expiry_keys = strtoull(arg, &end, 10);
    return *end || o->expiry_keys < 1 || o->expiry_keys > 10000000 ? -1 : 0;
  case OPT_REDIS:
    o->redis = arg;
    return 0;
  case OPT_MAX_MINUTES:
    o->max_minutes = (int)strtol(arg, &end, 10);
    return *end || o->max_minutes < 1 || o->max_minutes > 1440 ? -1 : 0;
  default:
    return -1;
  }
}

/* Returns 0 to run, 1 after --help, 2 on bad usage (message printed). */
static int parse_args(int argc, char **argv, struct options *o) {
  unsigned set = 0;
  int opt;

  options_default(o);
  while ((opt = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
    if (opt == OPT_HELP) {
      fputs(usage, stdout);
      return 1;
    }
    if (opt == '?' || apply_option(o, opt, optarg, &set) != 0) {
      fprintf(stderr, "synod-bench: bad option%s%s (try --help)\n",
              optarg && opt != '?' ? " value " : "",
              optarg && opt != '?' ? optarg : "");
      return 2;
    }
  }
  if (optind < argc || (!o->run[BENCH_SYNOD] && !o->run[BENCH_ETCD])) {
    fprintf(stderr, "synod-bench: bad usage (try --help)\n");
    return 2;
  }
  if (set & 1u << (OPT_QUICK - OPT_SECONDS)) {
    o->seconds = set & 1u << (OPT_SECONDS - OPT_SECONDS) ? o->seconds : 2;
    o->warmup_s = set & 1u << (OPT_WARMUP - OPT_SECONDS) ? o->warmup_s : 0.5;
    o->repeat = set & 1u << (OPT_REPEAT - OPT_SECONDS) ? o->repeat : 1;
  }
  return 0;
}

/* ------------------------------------------------------- the environment */

static void on_signal(int sig) {
  (void)sig;
  bench_interrupted = 1;
}

/* --max-minutes: the first alarm stops the run as ^C does (every loop
 * and wait notices bench_interrupted, the clusters are stopped, the
 * report printed); if that has not ended the program a minute later, the
 * second exits at once (the kernel kills the servers, PR_SET_PDEATHSIG;
 * the data directory stays). */
static void on_alarm(int sig) {
  static const char stop[] = "synod-bench: --max-minutes reached, stopping\n";
  static const char hard[] = "synod-bench: still running a minute after "
                             "--max-minutes, exiting\n";
  (void)sig;
  if (!bench_interrupted) {
    bench_interrupted = 1;
    (void)!write(2, stop, sizeof stop - 1);
    alarm(60);
  } else {
    (void)!write(2, hard, sizeof hard - 1);
    _exit(3);
  }
}

static void signals_setup(int max_minutes) {
  struct sigaction sa = {.sa_handler = on_signal};
  struct sigaction al = {.sa_handler = on_alarm};
  sigemptyset(&sa.sa_mask);
  sigemptyset(&al.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGALRM, &al, NULL);
  signal(SIGPIPE, SIG_IGN);
  alarm((unsigned)max_minutes * 60);
}

/* synodd is the one built beside this program. */
static int find_synodd(char *path, size_t len) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) {
    return -1;
  }
  self[n] = '\0';
  snprintf(path, len, "%s/synodd", dirname(self));
  return access(path, X_OK);
}

static int rm_one(const char *path, const struct stat *sb, int flag,
                  struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

static int make_dir(const struct options *o, char *dir, size_t len) {
  const char *base = o->dir ? o->dir : getenv("TMPDIR");
  snprintf(dir, len, "%s/synod-bench.XXXXXX", base && *base ? base : "/tmp");
  if (mkdtemp(dir) == NULL) {
    fprintf(stderr, "synod-bench: mkdtemp %s: %s\n", dir, strerror(errno));
    return -1;
  }
  return 0;
}

/* ------------------------------------------------------------- the runs */

struct bench {
  struct options o;
  struct bench_cluster clusters[BENCH_SYSTEMS];
  int etcd_target[BENCH_REPLICAS]; /* member index per client i mod 3 */
  char etcd_target_text[64];
  char skipped[PATH_MAX + 64]; /* why etcd was not run */
  struct bench_report rep;
  const char *dir;       /* the temporary data directory */
  struct bench_run *run; /* reused by every run */
  unsigned run_id;
  int runs_done;
  int runs_total;
};

/* Keeps the row's note: the first failed check wins over errors. */
static void note_run(struct bench_row *row, enum bench_system sys,
                     const struct bench_run *r, int failed_before) {
  char *note = row->note[sys];
  size_t len = sizeof row->note[sys];
  if (r->verify == BENCH_VERIFY_FAIL && failed_before == 0) {
    snprintf(note, len, "%s",
             r->verify_msg[0] ? r->verify_msg : r->first_error);
  } else if (r->aborted && failed_before == 0) {
    snprintf(note, len, "run did not finish: %.200s", r->first_error);
  } else if (note[0] == '\0' && r->first_error[0] != '\0') {
    snprintf(note, len, "%s", r->first_error);
  }
}

/* CPU seconds this process has used (user + system). */
static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* One load generator: its share of a run's clients, on its own thread. */
struct generator {
  const struct bench *b;
  enum bench_system sys;
  struct bench_run r;
  int rv;
  pthread_t thread;
};

static void *generator_main(void *arg) {
  struct generator *g = arg;
  const struct bench_cluster *cl = &g->b->clusters[g->sys];
  g->rv = g->sys == BENCH_SYNOD ? bench_synod_run(cl, &g->r)
                                : bench_etcd_run(cl, g->b->etcd_target, &g->r);
  return NULL;
}

/* Splits r's clients over the generators, as evenly as they go, runs
 * them (the first on this thread) and adds their outputs into r. */
static int run_generators(const struct bench *b, enum bench_system sys,
                          struct bench_run *r) {
  static struct generator g[BENCH_THREADS_MAX];
  int n = b->o.threads < r->clients ? b->o.threads : r->clients;
  int first = 0;
  int rv = 0;

  r->start_ns = bench_now_ns();
  for (int i = 0; i < n; i++) {
    g[i] = (struct generator){.b = b, .sys = sys, .r = *r};
    g[i].r.clients = r->clients / n + (i < r->clients % n);
    g[i].r.client_first = first;
    first += g[i].r.clients;
    if (i > 0 &&
        pthread_create(&g[i].thread, NULL, generator_main, &g[i]) != 0) {
      bench_run_error(r, "cannot start load generator thread %d", i);
      n = i;
      rv = -1;
      break;
    }
  }
  if (n > 0) {
    generator_main(&g[0]);
  }
  for (int i = 0; i < n; i++) {
    if (i > 0) {
      pthread_join(g[i].thread, NULL);
    }
    bench_run_merge(r, &g[i].r);
    rv |= g[i].rv;
  }
  return rv;
}

/* counter-shared's check, once every generator is done: the counter read
 * back holds every add that succeeded, and at most the ones whose outcome
 * is unknown besides. */
static void verify_shared(const struct bench *b, enum bench_system sys,
                          struct bench_run *r) {
  char name[96], err[BENCH_ERRMSG_BYTES];
  int64_t value = 0;
  int rv;

  if (r->workload != BENCH_COUNTER_SHARED || r->aborted) {
    return;
  }
  bench_shared_name(name, sizeof name, r->run_id);
  rv = sys == BENCH_SYNOD
           ? bench_synod_counter_read(&b->clusters[sys], name, &value, err,
                                      sizeof err)
           : bench_etcd_counter_read(&b->clusters[sys], b->etcd_target[0], name,
                                     &value, err, sizeof err);
  if (rv != 0) {
    r->verify = BENCH_VERIFY_FAIL;
    snprintf(r->verify_msg, sizeof r->verify_msg,
             "cannot read counter %.64s back: %.120s", name, err);
  } else if (value < 0 || (uint64_t)value < r->ops_total ||
             (uint64_t)value > r->ops_total + r->unknown) {
    r->verify = BENCH_VERIFY_FAIL;
    snprintf(r->verify_msg, sizeof r->verify_msg,
             "counter %s = %" PRId64 " but %" PRIu64 " adds succeeded (%" PRIu64
             " unknown)",
             name, value, r->ops_total, r->unknown);
  } else if (r->verify == BENCH_VERIFY_NONE) {
    r->verify = BENCH_VERIFY_OK;
  }
}

static void one_run(struct bench *b, struct bench_row *row,
                    enum bench_system sys) {
  struct bench_run *r = b->run;
  struct bench_sample *s;
  double cpu0 = cpu_s();
  uint64_t t0 = bench_now_ns();
  int failed_before = 0;
  int rv;

  for (int i = 0; i < row->runs[sys]; i++) {
    failed_before += row->samples[sys][i].verify == BENCH_VERIFY_FAIL ||
                     row->samples[sys][i].aborted;
  }
  memset(r, 0, sizeof *r);
  r->workload = row->workload;
  r->clients = row->clients;
  r->run_id = ++b->run_id;
  r->warmup_ns = (uint64_t)(b->o.warmup_s * 1e9);
  r->measure_ns = (uint64_t)(b->o.seconds * 1e9);
  rv = run_generators(b, sys, r);
  r->aborted |= rv != 0;
  verify_shared(b, sys, r);
  s = &row->samples[sys][row->runs[sys]++];
  bench_sample_take(s, r);
  s->bench_cpu = (cpu_s() - cpu0) / ((double)(bench_now_ns() - t0) / 1e9);
  note_run(row, sys, r, failed_before);
  fprintf(stderr,
          "[%d/%d] %-14s %3d clients %-5s: %8.0f ops/s  p50 %6.0f us  p99 "
          "%7.0f us  bench cpu %3.0f%%%s%s\n",
          ++b->runs_done, b->runs_total, bench_workload_name(row->workload),
          row->clients, sys == BENCH_SYNOD ? "synod" : "etcd", s->ops_per_s,
          s->p50_us, s->p99_us, 100 * s->bench_cpu,
          r->verify == BENCH_VERIFY_FAIL ? "  FAIL: "
          : r->aborted                   ? "  ABORTED: "
                                         : "",
          r->verify == BENCH_VERIFY_FAIL ? r->verify_msg
          : r->aborted                   ? r->first_error
                                         : "");
}

/* Every workload x client count x repeat, synod and etcd alternately so
 * that the machine's noise falls on both alike. */
static const int key_clients[] = {64};

/* The client counts of a workload: --clients, or for the key workloads
 * without it, issue 22's 64. */
static const int *clients_of(const struct options *o, int wl, int *n) {
  if (!o->clients_set && (wl == BENCH_KEY_PUT || wl == BENCH_KEY_GET)) {
    *n = 1;
    return key_clients;
  }
  *n = o->clients_len;
  return o->clients;
}

static void run_all(struct bench *b) {
  for (int wl = 0; wl < BENCH_WORKLOADS; wl++) {
    int n;
    const int *clients = clients_of(&b->o, wl, &n);
    for (int ci = 0; ci < n && b->o.workloads[wl]; ci++) {
      struct bench_row *row = &b->rep.rows[b->rep.rows_len++];
      row->workload = wl;
      row->clients = clients[ci];
      for (int rep = 0; rep < b->o.repeat; rep++) {
        for (int sys = 0; sys < BENCH_SYSTEMS; sys++) {
          if (bench_interrupted) {
            return;
          }
          if (b->o.run[sys]) {
            one_run(b, row, sys);
          }
        }
      }
    }
  }
}

static void etcd_targets(struct bench *b) {
  const struct bench_cluster *e = &b->clusters[BENCH_ETCD];
  if (!b->o.run[BENCH_ETCD]) {
    snprintf(b->etcd_target_text, sizeof b->etcd_target_text, "-");
    return;
  }
  for (int i = 0; i < BENCH_REPLICAS; i++) {
    b->etcd_target[i] = b->o.spread ? i : e->leader;
  }
  if (b->o.spread) {
    snprintf(b->etcd_target_text, sizeof b->etcd_target_text,
             "all members (client i -> e<i mod 3>; leader e%d)", e->leader);
  } else {
    snprintf(b->etcd_target_text, sizeof b->etcd_target_text,
             "the leader (e%d)", e->leader);
  }
}

/* run_all, with the scraper beside it when --scrape-ms is given. */
static void run_scraped(struct bench *b) {
  struct bench_scraper *s = NULL;
  struct bench_scrape_stats st = {0};
  if (b->o.scrape_ms > 0 && b->o.run[BENCH_SYNOD] &&
      bench_scrape_start(&b->clusters[BENCH_SYNOD], b->o.scrape_ms, &s) != 0) {
    fprintf(stderr, "synod-bench: cannot start the scraper\n");
  }
  run_all(b);
  if ((b->o.key_scale || b->o.key_expiry) && !bench_interrupted) {
    bench_keys_run(b->clusters, b->o.run, b->o.key_scale, b->o.key_expiry,
                   access(b->o.redis, X_OK) == 0 ? b->o.redis : NULL, b->dir,
                   &b->rep.keys);
    if (access(b->o.redis, X_OK) != 0) {
      snprintf(b->rep.keys.redis_note, sizeof b->rep.keys.redis_note,
               "%s is missing", b->o.redis);
    }
    b->rep.keys_scale = b->o.key_scale;
    b->rep.keys_expiry = b->o.key_expiry && b->o.run[BENCH_SYNOD];
  }
  if (s != NULL) {
    bench_scrape_stop(s, &st);
    fprintf(stderr,
            "synod-bench: scraped /metrics of %d replicas every %d ms: %" PRIu64
            " answers (%" PRIu64 " failed), %" PRIu64
            " bytes each, fetch p50 %" PRIu64 " us, max %" PRIu64 " us\n",
            BENCH_REPLICAS, b->o.scrape_ms, st.scrapes, st.failed,
            st.bytes_last, st.p50_us, st.max_us);
  }
}

/* ---------------------------------------------------------------- main */

/* Decides which systems can run: no etcd binary means synod only. */
static int check_binaries(struct bench *b, char *synodd, size_t len) {
  if (b->o.run[BENCH_SYNOD] && find_synodd(synodd, len) != 0) {
    fprintf(stderr,
            "synod-bench: %s not found: build it next to "
            "synod-bench (cmake --build build --target synodd)\n",
            synodd);
    return -1;
  }
  if (b->o.run[BENCH_ETCD] && access(b->o.etcd, X_OK) != 0) {
    fprintf(stderr,
            "synod-bench: %s not found: install Debian's "
            "etcd-server (apt-get install etcd-server, or `make "
            "bench`, which does)%s\n",
            b->o.etcd, b->o.run[BENCH_SYNOD] ? "; running synod only" : "");
    if (!b->o.run[BENCH_SYNOD]) {
      return -1;
    }
    b->o.run[BENCH_ETCD] = false;
    snprintf(b->skipped, sizeof b->skipped,
             "etcd was not run: %s is missing (make bench installs "
             "etcd-server)",
             b->o.etcd);
    b->rep.skipped = b->skipped;
  }
  return 0;
}

static int start_clusters(struct bench *b, const char *synodd,
                          const char *dir) {
  char err[BENCH_ERRMSG_BYTES];
  for (int sys = 0; sys < BENCH_SYSTEMS; sys++) {
    struct bench_cluster *c = &b->clusters[sys];
    int rv;
    if (!b->o.run[sys]) {
      continue;
    }
    fprintf(stderr, "synod-bench: starting 3 %s replicas in %s ...\n",
            sys == BENCH_SYNOD ? "synod" : "etcd", dir);
    rv = sys == BENCH_SYNOD
             ? bench_synod_start(c, synodd, dir, START_WAIT_MS, err, sizeof err)
             : bench_etcd_start(c, b->o.etcd, dir, START_WAIT_MS, err,
                                sizeof err);
    if (rv != 0) {
      fprintf(stderr, "synod-bench: %s cluster did not start: %s\n",
              c->system ? c->system : "?", err);
      bench_cluster_dump_logs(c);
      return -1;
    }
    fprintf(stderr, "synod-bench: %s %s ready, leader %s\n", c->system,
            c->version, c->leader >= 0 ? c->procs[c->leader].name : "?");
  }
  return 0;
}

static void report_fill(struct bench *b) {
  b->rep.seconds = b->o.seconds;
  b->rep.warmup_s = b->o.warmup_s;
  b->rep.repeat = b->o.repeat;
  b->rep.threads = b->o.threads;
  b->rep.etcd_target = b->etcd_target_text;
  snprintf(b->rep.synod_version, sizeof b->rep.synod_version, "%s",
           b->clusters[BENCH_SYNOD].version);
  snprintf(b->rep.etcd_version, sizeof b->rep.etcd_version, "%s",
           b->clusters[BENCH_ETCD].version);
  for (int wl = 0; wl < BENCH_WORKLOADS; wl++) {
    int n;
    clients_of(&b->o, wl, &n);
    b->runs_total += b->o.workloads[wl] * n * b->o.repeat *
                     (b->o.run[BENCH_SYNOD] + b->o.run[BENCH_ETCD]);
  }
  b->rep.keys.keys = b->o.keys;
  b->rep.keys.expiry_keys = b->o.expiry_keys;
  b->rep.keys.name_value_bytes = 12 + BENCH_KEY_VALUE_BYTES;
}

static int bench_main(struct bench *b) {
  char synodd[PATH_MAX] = "synodd", dir[PATH_MAX];
  int failed = 0;

  if (check_binaries(b, synodd, sizeof synodd) != 0 ||
      make_dir(&b->o, dir, sizeof dir) != 0) {
    return 1;
  }
  getloadavg(b->rep.load_start, 3);
  fprintf(stderr, "synod-bench: measuring this machine's floor ...\n");
  b->rep.floor_measured = bench_floor_measure(dir, 2000, &b->rep.floor) == 0;
  if (start_clusters(b, synodd, dir) != 0) {
    failed = -1;
  } else {
    b->dir = dir;
    etcd_targets(b);
    report_fill(b);
    run_scraped(b);
  }
  getloadavg(b->rep.load_end, 3);
  for (int sys = 0; sys < BENCH_SYSTEMS; sys++) {
    bench_cluster_stop(&b->clusters[sys]);
  }
  if (b->o.keep) {
    fprintf(stderr, "synod-bench: kept data and logs in %s\n", dir);
  } else {
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  }
  if (failed == 0) {
    failed =
        b->o.json ? bench_report_json(&b->rep) : bench_report_print(&b->rep);
  }
  return failed != 0 || bench_interrupted ? 1 : 0;
}

int main(int argc, char **argv) {
  struct bench *b = calloc(1, sizeof *b);
  int rv;

  if (b == NULL) {
    return 1;
  }
  rv = parse_args(argc, argv, &b->o);
  if (rv != 0) {
    free(b);
    return rv == 1 ? 0 : 2;
  }
  b->run = calloc(1, sizeof *b->run);
  b->rep.rows =
      calloc(BENCH_WORKLOADS * CLIENT_COUNTS_MAX, sizeof *b->rep.rows);
  if (b->run == NULL || b->rep.rows == NULL ||
      curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
    fprintf(stderr, "synod-bench: out of memory\n");
    return 1;
  }
  signals_setup(b->o.max_minutes);
  rv = bench_main(b);
  curl_global_cleanup();
  free(b->rep.rows);
  free(b->run);
  free(b);
  return rv;
}
