/* synod-bench-channels: synod's channels side by side with NATS JetStream
 * (3 servers, R3 file streams) and Redis Streams (1 server, AOF fsync
 * always), in one run on one machine, with 100-byte messages:
 *
 *   1. publish, one message per call, N closed-loop publishers: msg/s
 *   2. the same, a batch per call: msg/s
 *   3. fan-out: one paced publisher, M subscribers: publish-to-delivery
 *      p50/p99, and every subscriber must get every message; then the
 *      same with one more subscriber on each server that never reads
 *      (fanout-stalled): the others' latency, the servers' memory
 *   4. catch-up: one subscriber reads R retained messages from the first
 *   5. memory: each server's resident memory per retained message
 *
 * It starts every server itself (free 127.0.0.1 ports, data in a
 * temporary directory removed at the end), stops only those, by pid,
 * and bounds every wait. The runs of the systems alternate, so the
 * machine's noise falls on all alike. See bench/README.md. */
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "synod_bench_channels.h"
#include "synod_bench_floor.h"

/* Targets for synod (issue 14). */
#define TARGET_PUB1_MSGS 50000.0
#define TARGET_PUB_BATCH_MSGS 500000.0
#define TARGET_FAN_P50_MS 1.0
#define TARGET_FAN_P99_MS 5.0
#define TARGET_CATCHUP_MSGS 500000.0
#define TARGET_MEM_BYTES 64.0
/* What a replica may hold queued to its clients while one never reads:
 * the 4 MiB bound per connection (SUB_OUT_BYTES, server/node/subscribe.c)
 * and a delivery frame past it, as integration.subscribe checks. */
#define TARGET_STALLED_QUEUED_MIB 5.0

static const char *const SYS_NAMES[CHB_SYSTEMS] = {"synod", "nats", "redis"};

struct results {
  struct chb_pub pub[2][CHB_SYSTEMS][CHB_RUNS_MAX]; /* [single, batch] */
  int pub_n[2][CHB_SYSTEMS];
  struct chb_fanout fan[2][CHB_SYSTEMS][CHB_RUNS_MAX]; /* [plain, stalled] */
  int fan_n[2][CHB_SYSTEMS];
  struct chb_fill fill[CHB_SYSTEMS];
  bool filled[CHB_SYSTEMS];
  uint64_t rss0[CHB_SYSTEMS][CHB_PROCS_MAX], rss1[CHB_SYSTEMS][CHB_PROCS_MAX];
  uint64_t anon0[CHB_SYSTEMS][CHB_PROCS_MAX];
  uint64_t anon1[CHB_SYSTEMS][CHB_PROCS_MAX];
  struct chb_catchup catchup[CHB_SYSTEMS][CHB_RUNS_MAX];
  int catchup_n[CHB_SYSTEMS];
  struct bench_floor floor;
  bool floor_ok;
  double load0[3], load1[3];
  time_t started;
  double elapsed_s;
};

struct harness {
  struct chb_opts o;
  struct chb_system sys[CHB_SYSTEMS];
  struct results *res;
  unsigned run_id;
  char dir[PATH_MAX];
  unsigned max_s;
};

/* =============================================================== options */

static void usage(void) {
  printf("usage: synod-bench-channels [flags]\n"
         "  --quick             a ~1 minute smoke: 1 run of 2 s each, fan-out "
         "3 s,\n"
         "                      200,000 retained\n"
         "  --systems LIST      synod,nats,redis [all three]\n"
         "  --workloads LIST    retained,publish,batch,fanout,fanout-stalled "
         "[all five]\n"
         "  --publishers N      closed-loop publishers [64]\n"
         "  --batch N           messages per publish in the batch workload "
         "[100]\n"
         "  --conns N           publishers' connections per system [one per "
         "publisher]\n"
         "  --threads N         load generator loops (synod, redis; cnats "
         "delivery pool) [2]\n"
         "  --seconds S         measured window of a publish run [5]\n"
         "  --warmup S          warm-up before it [1]\n"
         "  --repeat N          runs of each workload per system [3]\n"
         "  --fanout-rate N     fan-out publisher's messages/s [10000]\n"
         "  --subscribers N     fan-out subscribers [16]\n"
         "  --fanout-seconds S  fan-out publishing time, warm-up included [5]\n"
         "  --retained N        messages of the catch-up and memory test "
         "[1000000]\n"
         "  --window N          synod subscriptions' window [libsynod's "
         "default]\n"
         "  --nats-sync V       JetStream sync_interval (2.10 and later only)\n"
         "  --dir D             temporary data under D [$TMPDIR or /tmp]\n"
         "  --keep              keep the data and the servers' logs\n"
         "  --max-minutes M     stop (and clean up) after M minutes [15]\n");
}

enum {
  OPT_QUICK = 256,
  OPT_SYSTEMS,
  OPT_WORKLOADS,
  OPT_PUBLISHERS,
  OPT_BATCH,
  OPT_CONNS,
  OPT_THREADS,
  OPT_SECONDS,
  OPT_WARMUP,
  OPT_REPEAT,
  OPT_FANOUT_RATE,
  OPT_SUBSCRIBERS,
  OPT_FANOUT_SECONDS,
  OPT_RETAINED,
  OPT_WINDOW,
  OPT_NATS_SYNC,
  OPT_DIR,
  OPT_KEEP,
  OPT_MAX_MINUTES,
  OPT_HELP
};

static const struct option LONG_OPTS[] = {
    {"quick", no_argument, NULL, OPT_QUICK},
    {"systems", required_argument, NULL, OPT_SYSTEMS},
    {"workloads", required_argument, NULL, OPT_WORKLOADS},
    {"publishers", required_argument, NULL, OPT_PUBLISHERS},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"conns", required_argument, NULL, OPT_CONNS},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"seconds", required_argument, NULL, OPT_SECONDS},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"repeat", required_argument, NULL, OPT_REPEAT},
    {"fanout-rate", required_argument, NULL, OPT_FANOUT_RATE},
    {"subscribers", required_argument, NULL, OPT_SUBSCRIBERS},
    {"fanout-seconds", required_argument, NULL, OPT_FANOUT_SECONDS},
    {"retained", required_argument, NULL, OPT_RETAINED},
    {"window", required_argument, NULL, OPT_WINDOW},
    {"nats-sync", required_argument, NULL, OPT_NATS_SYNC},
    {"dir", required_argument, NULL, OPT_DIR},
    {"keep", no_argument, NULL, OPT_KEEP},
    {"max-minutes", required_argument, NULL, OPT_MAX_MINUTES},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0}};

static int parse_systems(const char *list, bool *only) {
  char buf[128];
  snprintf(buf, sizeof buf, "%s", list);
  for (int i = 0; i < CHB_SYSTEMS; i++) {
    only[i] = false;
  }
  for (char *tok = strtok(buf, ","); tok != NULL; tok = strtok(NULL, ",")) {
    int i = 0;
    while (i < CHB_SYSTEMS && strcmp(tok, SYS_NAMES[i]) != 0) {
      i++;
    }
    if (i == CHB_SYSTEMS) {
      return -1;
    }
    only[i] = true;
  }
  return 0;
}

static int parse_workloads(const char *list, unsigned *bits) {
  static const char *const names[] = {"retained", "publish", "batch", "fanout",
                                      "fanout-stalled"};
  char buf[128];
  snprintf(buf, sizeof buf, "%s", list);
  *bits = 0;
  for (char *tok = strtok(buf, ","); tok != NULL; tok = strtok(NULL, ",")) {
    unsigned i = 0;
    while (i < sizeof names / sizeof names[0] && strcmp(tok, names[i]) != 0) {
      i++;
    }
    if (i == sizeof names / sizeof names[0]) {
      return -1;
    }
    *bits |= 1u << i;
  }
  return *bits != 0 ? 0 : -1;
}

/* Returns 0, 1 (--help) or 2 (bad usage). */
static int parse_args(int argc, char **argv, struct harness *h) {
  struct chb_opts *o = &h->o;
  unsigned set = 0; /* which of the quick-able flags were given */
  double minutes = 15;
  int c;
  *o = (struct chb_opts){.publishers = 64,
                         .batch = 100,
                         .threads = 2,
                         .warmup_s = 1,
                         .seconds = 5,
                         .repeat = 3,
                         .fanout_rate = 10000,
                         .subscribers = 16,
                         .fanout_s = 5,
                         .retained = 1000000,
                         .catchup_repeat = 3,
                         .workloads = CHB_WL_ALL};
  for (int i = 0; i < CHB_SYSTEMS; i++) {
    o->only[i] = true;
  }
  while ((c = getopt_long(argc, argv, "", LONG_OPTS, NULL)) != -1) {
    if (c >= OPT_SECONDS && c <= OPT_RETAINED) {
      set |= 1u << (c - OPT_SECONDS);
    }
    switch (c) {
    case OPT_QUICK:
      o->quick = true;
      break;
    case OPT_SYSTEMS:
      if (parse_systems(optarg, o->only) != 0) {
        fprintf(stderr, "--systems: synod, nats, redis\n");
        return 2;
      }
      break;
    case OPT_WORKLOADS:
      if (parse_workloads(optarg, &o->workloads) != 0) {
        fprintf(stderr, "--workloads: retained, publish, batch, fanout, "
                        "fanout-stalled\n");
        return 2;
      }
      break;
    case OPT_PUBLISHERS:
      o->publishers = atoi(optarg);
      break;
    case OPT_BATCH:
      o->batch = atoi(optarg);
      break;
    case OPT_CONNS:
      o->conns = atoi(optarg);
      break;
    case OPT_THREADS:
      o->threads = atoi(optarg);
      break;
    case OPT_SECONDS:
      o->seconds = atof(optarg);
      break;
    case OPT_WARMUP:
      o->warmup_s = atof(optarg);
      break;
    case OPT_REPEAT:
      o->repeat = atoi(optarg);
      o->catchup_repeat = o->repeat;
      break;
    case OPT_FANOUT_RATE:
      o->fanout_rate = atoi(optarg);
      break;
    case OPT_SUBSCRIBERS:
      o->subscribers = atoi(optarg);
      break;
    case OPT_FANOUT_SECONDS:
      o->fanout_s = atof(optarg);
      break;
    case OPT_RETAINED:
      o->retained = strtoull(optarg, NULL, 10);
      break;
    case OPT_WINDOW:
      o->window = (uint32_t)strtoul(optarg, NULL, 10);
      break;
    case OPT_NATS_SYNC:
      o->nats_sync = optarg;
      break;
    case OPT_DIR:
      setenv("SYNOD_TEST_TMP", optarg, 1);
      break;
    case OPT_KEEP:
      o->keep = true;
      break;
    case OPT_MAX_MINUTES:
      minutes = atof(optarg);
      break;
    case OPT_HELP:
      usage();
      return 1;
    default:
      return 2;
    }
  }
  if (o->quick) {
    o->seconds = set & 1u << (OPT_SECONDS - OPT_SECONDS) ? o->seconds : 2;
    o->warmup_s = set & 1u << (OPT_WARMUP - OPT_SECONDS) ? o->warmup_s : 0.5;
    if (!(set & 1u << (OPT_REPEAT - OPT_SECONDS))) {
      o->repeat = o->catchup_repeat = 1;
    }
    o->fanout_s =
        set & 1u << (OPT_FANOUT_SECONDS - OPT_SECONDS) ? o->fanout_s : 3;
    o->retained =
        set & 1u << (OPT_RETAINED - OPT_SECONDS) ? o->retained : 200000;
  }
  h->max_s = (unsigned)(minutes * 60);
  if (optind < argc || o->publishers < 1 || o->publishers > 4096 ||
      o->batch < 1 || o->batch > 1000 || o->threads < 1 || o->threads > 16 ||
      o->conns < 0 || o->conns > o->publishers || o->repeat < 1 ||
      o->repeat > CHB_RUNS_MAX || o->seconds <= 0 || o->warmup_s < 0 ||
      o->fanout_rate < 1 || o->subscribers < 1 || o->subscribers > 256 ||
      o->fanout_s <= o->warmup_s || o->retained < 1000 || h->max_s < 10) {
    fprintf(stderr, "synod-bench-channels: bad usage (try --help)\n");
    return 2;
  }
  return 0;
}

/* ================================================================ runs */

static double median(double *v, int n) {
  for (int i = 1; i < n; i++) { /* insertion sort: n is tiny */
    double x = v[i];
    int j = i;
    while (j > 0 && v[j - 1] > x) {
      v[j] = v[j - 1];
      j--;
    }
    v[j] = x;
  }
  if (n == 0) {
    return 0;
  }
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static bool sys_on(const struct harness *h, int s) {
  return h->o.only[s] && h->sys[s].available;
}

static void cpu_text(const struct chb_system *s, const double *server,
                     double client, char *out, size_t len) {
  size_t at = 0;
  out[0] = '\0';
  for (int i = 0; i < s->nprocs && at < len; i++) {
    at += (size_t)snprintf(out + at, len - at, "%s%s %.2f", i ? ", " : "",
                           s->proc_names[i], server[i]);
  }
  if (at < len) {
    snprintf(out + at, len - at, "; bench %.2f", client);
  }
}

static void run_publish(struct harness *h, int kind) {
  const char *what = kind ? "publish batch" : "publish 1";
  for (int rep = 0; rep < h->o.repeat; rep++) {
    for (int s = 0; s < CHB_SYSTEMS; s++) {
      struct chb_system *sys = &h->sys[s];
      struct chb_pub *r;
      char cpu[256];
      if (!sys_on(h, s)) {
        continue;
      }
      r = &h->res->pub[kind][s][h->res->pub_n[kind][s]++];
      memset(r, 0, sizeof *r);
      r->batch = kind ? h->o.batch : 1;
      r->run_id = ++h->run_id;
      sys->ops->publish(sys, &h->o, r);
      cpu_text(sys, r->server_cpu, r->client_cpu, cpu, sizeof cpu);
      fprintf(stderr,
              "  %-13s %-5s run %d: %9.0f msg/s  p50 %7.2f ms  p99 %7.2f ms"
              "  cores: %s%s%s\n",
              what, sys->name, rep + 1, (double)r->msgs / h->o.seconds,
              chb_hist_percentile(&r->hist, 0.5) / 1000.0,
              chb_hist_percentile(&r->hist, 0.99) / 1000.0, cpu,
              r->errors ? "  errors: " : "", r->errors ? r->first_error : "");
    }
  }
}

/* The two fan-out workloads: as they are, and with CHB_STALLED_SUBS
 * subscribers more that never read. */
static const char *const FAN_NAMES[2] = {"fan-out", "fan-out stall"};
static const unsigned FAN_BITS[2] = {CHB_WL_FANOUT, CHB_WL_FANOUT_STALLED};

/* Each server's VmRSS growth over a fan-out run and what it had queued
 * to its clients at the end, in MiB; "" if the system did not say. */
static void fan_mem_text(const struct chb_system *s, const struct chb_fanout *r,
                         char *out, size_t len) {
  size_t at = 0;
  out[0] = '\0';
  for (int i = 0; r->mem && i < s->nprocs && at < len; i++) {
    at += (size_t)snprintf(
        out + at, len - at, "%s%s VmRSS %+.1f MiB, %.2f MiB queued",
        i ? "; " : "", s->proc_names[i],
        ((double)r->rss1[i] - (double)r->rss0[i]) / 1048576.0,
        (double)r->queued[i] / 1048576.0);
  }
}

/* Publish-to-delivery p50/p99 (ms) by the server the subscribers read
 * from; "" if the system did not split them. */
static void fan_by_proc_text(const struct chb_system *s,
                             const struct chb_fanout *r, char *out,
                             size_t len) {
  size_t at = 0;
  out[0] = '\0';
  for (int i = 0; i < s->nprocs && at < len; i++) {
    if (r->hist_by_proc[i].count > 0) {
      at += (size_t)snprintf(
          out + at, len - at, "%s%s %.2f / %.2f", at ? ", " : "",
          s->proc_names[i],
          chb_hist_percentile(&r->hist_by_proc[i], 0.5) / 1000.0,
          chb_hist_percentile(&r->hist_by_proc[i], 0.99) / 1000.0);
    }
  }
}

/* One run of fan-out kind 0 (as it is) or 1 (stalled) on system s. */
static void fanout_once(struct harness *h, int kind, int s, int rep) {
  struct chb_system *sys = &h->sys[s];
  struct chb_fanout *r = &h->res->fan[kind][s][h->res->fan_n[kind][s]++];
  char cpu[256], mem[256];
  memset(r, 0, sizeof *r);
  r->run_id = ++h->run_id;
  r->stalled = kind ? CHB_STALLED_SUBS : 0;
  sys->ops->fanout(sys, &h->o, r);
  cpu_text(sys, r->server_cpu, r->client_cpu, cpu, sizeof cpu);
  fan_mem_text(sys, r, mem, sizeof mem);
  fprintf(stderr,
          "  %-13s %-5s run %d: p50 %6.2f ms  p99 %6.2f ms  "
          "%" PRIu64 "/%" PRIu64 " acked, %" PRIu64 " deliveries, %" PRIu64
          " missing, %" PRIu64 " dup, %" PRIu64 " unordered  cores: %s%s%s\n",
          FAN_NAMES[kind], sys->name, rep + 1,
          chb_hist_percentile(&r->hist, 0.5) / 1000.0,
          chb_hist_percentile(&r->hist, 0.99) / 1000.0, r->acked, r->sent,
          r->delivered, r->missing, r->duplicates, r->unordered, cpu,
          r->errors ? "  errors: " : "", r->errors ? r->first_error : "");
  if (mem[0] != '\0') {
    fprintf(stderr, "    %s\n", mem);
  }
}

/* Within each repetition the two workloads alternate, as the systems
 * do, and which goes first alternates from one repetition to the next,
 * so that the machine's noise and whatever the runs before left behind
 * fall on both alike. A system that cannot stall a subscriber runs only
 * the first. */
static void run_fanout(struct harness *h) {
  for (int rep = 0; rep < h->o.repeat; rep++) {
    for (int k = 0; k < 2; k++) {
      int kind = (k + rep) % 2;
      if (!(h->o.workloads & FAN_BITS[kind])) {
        continue;
      }
      for (int s = 0; s < CHB_SYSTEMS; s++) {
        if (sys_on(h, s) && (kind == 0 || h->sys[s].ops->fanout_stalls)) {
          fanout_once(h, kind, s, rep);
        }
      }
    }
  }
}

static void read_rss(const struct chb_system *sys, uint64_t *rss,
                     uint64_t *anon) {
  for (int i = 0; i < sys->nprocs; i++) {
    rss[i] = chb_proc_rss(sys->pids[i], &anon[i]);
  }
}

/* Memory, then catch-up, on the servers as they were started: the fill
 * is the first thing they hold. */
static void run_retained(struct harness *h) {
  struct results *res = h->res;
  for (int s = 0; s < CHB_SYSTEMS; s++) {
    struct chb_system *sys = &h->sys[s];
    struct chb_fill *f = &res->fill[s];
    if (!sys_on(h, s)) {
      continue;
    }
    read_rss(sys, res->rss0[s], res->anon0[s]);
    res->filled[s] = sys->ops->fill(sys, &h->o, f) == 0;
    chb_sleep_ms(1000); /* let background work (snapshots, flushes) end */
    read_rss(sys, res->rss1[s], res->anon1[s]);
    fprintf(stderr,
            "  fill          %-5s: %" PRIu64 " messages in %.1f s%s%s\n",
            sys->name, f->n, f->seconds, f->errors ? ": " : "",
            f->errors ? f->first_error : "");
  }
  for (int rep = 0; rep < h->o.catchup_repeat; rep++) {
    for (int s = 0; s < CHB_SYSTEMS; s++) {
      struct chb_system *sys = &h->sys[s];
      struct chb_catchup *r;
      if (!sys_on(h, s) || !res->filled[s]) {
        continue;
      }
      r = &res->catchup[s][res->catchup_n[s]++];
      memset(r, 0, sizeof *r);
      r->n = res->fill[s].n;
      r->rep = rep;
      sys->ops->catchup(sys, &h->o, r);
      fprintf(stderr,
              "  catch-up      %-5s run %d: %9.0f msg/s  (%" PRIu64
              " in %.2f s from %s, %" PRIu64 " out of order)%s%s\n",
              sys->name, rep + 1,
              r->seconds > 0 ? (double)r->received / r->seconds : 0,
              r->received, r->seconds, r->where, r->unordered,
              r->first_error[0] ? ": " : "", r->first_error);
    }
  }
  for (int s = 0; s < CHB_SYSTEMS; s++) {
    if (sys_on(h, s) && h->sys[s].ops->unfill != NULL) {
      h->sys[s].ops->unfill(&h->sys[s]);
    }
  }
}

/* ============================================================== report */

enum dir { HIGHER_BETTER, LOWER_BETTER };

struct row {
  const char *label;
  const char *unit;
  double v[CHB_SYSTEMS];
  bool has[CHB_SYSTEMS];
  enum dir dir;
  double target; /* 0: none */
  const char *target_text;
};

static void fmt_value(double v, bool has, const char *unit, char *out,
                      size_t len) {
  if (!has) {
    snprintf(out, len, "-");
  } else if (strcmp(unit, "msg/s") == 0) {
    snprintf(out, len, "%.0f", v);
  } else if (strcmp(unit, "B") == 0) {
    snprintf(out, len, "%.0f", v);
  } else {
    snprintf(out, len, "%.2f", v);
  }
}

static void print_row(const struct row *r) {
  char cell[CHB_SYSTEMS][32], ratio[2][16], met[16] = "";
  for (int s = 0; s < CHB_SYSTEMS; s++) {
    fmt_value(r->v[s], r->has[s], r->unit, cell[s], sizeof cell[s]);
  }
  for (int p = 1; p < CHB_SYSTEMS; p++) {
    if (r->has[0] && r->has[p] && r->v[p] != 0) {
      snprintf(ratio[p - 1], sizeof ratio[0], "%.2fx", r->v[0] / r->v[p]);
    } else {
      snprintf(ratio[p - 1], sizeof ratio[0], "-");
    }
  }
  if (r->target_text != NULL && r->has[0]) {
    bool ok =
        r->dir == HIGHER_BETTER ? r->v[0] >= r->target : r->v[0] <= r->target;
    snprintf(met, sizeof met, "%s", ok ? "met" : "NOT met");
  }
  printf("| %-44s | %-6s | %11s | %11s | %11s | %10s | %11s | %-10s | %-7s |\n",
         r->label, r->unit, cell[0], cell[1], cell[2], ratio[0], ratio[1],
         r->target_text ? r->target_text : "", met);
}

static void pub_rows(struct harness *h, int kind, struct row *tput,
                     struct row *p50, struct row *p99) {
  for (int s = 0; s < CHB_SYSTEMS; s++) {
    double a[CHB_RUNS_MAX], b[CHB_RUNS_MAX], c[CHB_RUNS_MAX];
    int n = h->res->pub_n[kind][s];
    for (int i = 0; i < n; i++) {
      const struct chb_pub *r = &h->res->pub[kind][s][i];
      a[i] = (double)r->msgs / h->o.seconds;
      b[i] = chb_hist_percentile(&r->hist, 0.5) / 1000.0;
      c[i] = chb_hist_percentile(&r->hist, 0.99) / 1000.0;
    }
    tput->has[s] = p50->has[s] = p99->has[s] = n > 0;
    tput->v[s] = median(a, n);
    p50->v[s] = median(b, n);
    p99->v[s] = median(c, n);
  }
}

/* The largest of a run's servers: VmRSS growth or bytes queued, MiB. */
static double fan_mem_max(const struct chb_fanout *r, int nprocs, bool queued) {
  double most = -1e18;
  for (int i = 0; i < nprocs; i++) {
    double v =
        queued ? (double)r->queued[i] : (double)r->rss1[i] - (double)r->rss0[i];
    most = v > most ? v : most;
  }
  return most / 1048576.0;
}

static void fan_rows(struct harness *h, int kind, struct row *p50,
                     struct row *p99, struct row *lost, struct row *growth,
                     struct row *queued) {
  for (int s = 0; s < CHB_SYSTEMS; s++) {
    double a[CHB_RUNS_MAX], b[CHB_RUNS_MAX], c[CHB_RUNS_MAX], d[CHB_RUNS_MAX];
    int n = 0, m = 0;
    double bad = 0;
    for (int i = 0; i < h->res->fan_n[kind][s]; i++) {
      const struct chb_fanout *r = &h->res->fan[kind][s][i];
      bad += (double)(r->missing + r->duplicates + r->unordered +
                      (r->sent - r->acked));
      if (r->hist.count > 0) { /* a run that failed early has none */
        a[n] = chb_hist_percentile(&r->hist, 0.5) / 1000.0;
        b[n++] = chb_hist_percentile(&r->hist, 0.99) / 1000.0;
      }
      if (r->mem) {
        c[m] = fan_mem_max(r, h->sys[s].nprocs, false);
        d[m++] = fan_mem_max(r, h->sys[s].nprocs, true);
      }
    }
    p50->has[s] = p99->has[s] = n > 0;
    lost->has[s] = h->res->fan_n[kind][s] > 0;
    growth->has[s] = m > 0;
    p50->v[s] = median(a, n);
    p99->v[s] = median(b, n);
    lost->v[s] = bad;
    growth->v[s] = median(c, m);
    if (queued != NULL) {
      queued->has[s] = m > 0;
      queued->v[s] = median(d, m);
    }
  }
}

/* Memory: each server's VmRSS growth over the fill, per retained
 * message, the largest of the system's processes; with the payload, and
 * beyond it (the overhead the target is about). */
static void retained_rows(struct harness *h, struct row *rate,
                          struct row *growth, struct row *mem) {
  struct results *res = h->res;
  for (int s = 0; s < CHB_SYSTEMS; s++) {
    double a[CHB_RUNS_MAX];
    int n = 0;
    for (int i = 0; i < res->catchup_n[s]; i++) {
      const struct chb_catchup *r = &res->catchup[s][i];
      if (r->received == r->n && r->seconds > 0) {
        a[n++] = (double)r->received / r->seconds;
      }
    }
    rate->has[s] = n > 0;
    rate->v[s] = median(a, n);
    growth->has[s] = mem->has[s] = res->filled[s];
    growth->v[s] = -1e18;
    for (int i = 0; res->filled[s] && i < h->sys[s].nprocs; i++) {
      double per = ((double)res->rss1[s][i] - (double)res->rss0[s][i]) /
                   (double)res->fill[s].n;
      growth->v[s] = per > growth->v[s] ? per : growth->v[s];
    }
    mem->v[s] = growth->v[s] - CHB_MSG_BYTES;
  }
}

static void print_details(struct harness *h) {
  struct results *res = h->res;
  printf("\nDetails\n\n");
  for (int s = 0; s < CHB_SYSTEMS; s++) {
    const struct chb_system *sys = &h->sys[s];
    if (!sys_on(h, s)) {
      continue;
    }
    printf("%s:\n", sys->name);
    if (res->filled[s]) {
      printf("  fill: %" PRIu64 " messages in %.2f s (%.0f msg/s)\n",
             res->fill[s].n, res->fill[s].seconds,
             (double)res->fill[s].n / res->fill[s].seconds);
      if (res->fill[s].note[0] != '\0') {
        printf("  after the fill: %s\n", res->fill[s].note);
      }
    }
    for (int i = 0; res->filled[s] && i < sys->nprocs; i++) {
      double n = (double)res->fill[s].n;
      printf("  memory %-8s: VmRSS %6.1f -> %6.1f MiB: %6.1f B/msg "
             "(anonymous %6.1f -> %6.1f MiB: %6.1f B/msg), minus the %d B "
             "payload\n",
             sys->proc_names[i], res->rss0[s][i] / 1048576.0,
             res->rss1[s][i] / 1048576.0,
             ((double)res->rss1[s][i] - (double)res->rss0[s][i]) / n,
             res->anon0[s][i] / 1048576.0, res->anon1[s][i] / 1048576.0,
             ((double)res->anon1[s][i] - (double)res->anon0[s][i]) / n,
             CHB_MSG_BYTES);
    }
    for (int k = 0; k < 2; k++) {
      for (int i = 0; i < res->pub_n[k][s]; i++) {
        const struct chb_pub *r = &res->pub[k][s][i];
        char cpu[256];
        cpu_text(sys, r->server_cpu, r->client_cpu, cpu, sizeof cpu);
        printf("  publish %-5s run %d: %.0f msg/s, cores used: %s%s%s\n",
               k ? "batch" : "1", i + 1, (double)r->msgs / h->o.seconds, cpu,
               r->errors ? "; errors: " : "", r->errors ? r->first_error : "");
        if (r->note[0] != '\0') {
          printf("    %s\n", r->note);
        }
      }
    }
    for (int k = 0; k < 2; k++) {
      for (int i = 0; i < res->fan_n[k][s]; i++) {
        const struct chb_fanout *r = &res->fan[k][s][i];
        char cpu[256], mem[256], by[256];
        cpu_text(sys, r->server_cpu, r->client_cpu, cpu, sizeof cpu);
        fan_mem_text(sys, r, mem, sizeof mem);
        fan_by_proc_text(sys, r, by, sizeof by);
        printf("  %s run %d: %" PRIu64 " deliveries, cores used: %s%s%s\n",
               FAN_NAMES[k], i + 1, r->delivered, cpu,
               r->errors ? "; errors: " : "", r->errors ? r->first_error : "");
        if (by[0] != '\0') {
          printf("    p50 / p99 (ms) by the server read from: %s\n", by);
        }
        if (mem[0] != '\0') {
          printf("    at the end: %s\n", mem);
        }
        if (r->note[0] != '\0') {
          printf("    %s\n", r->note);
        }
      }
    }
  }
}

static void print_header(struct harness *h) {
  struct results *res = h->res;
  struct utsname u;
  char model[128] = "", date[64];
  uname(&u);
  chb_command_line("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | "
                   "sed 's/^ *//'",
                   model, sizeof model);
  strftime(date, sizeof date, "%Y-%m-%d %H:%M %Z", localtime(&res->started));
  printf("synod-bench-channels, %s, %s\n", date, h->o.quick ? "--quick" : "");
  printf("machine: %ld CPUs (%s), Linux %s; load average %.2f at start, "
         "%.2f at end; %.0f s\n",
         sysconf(_SC_NPROCESSORS_ONLN), model, u.release, res->load0[0],
         res->load1[0], res->elapsed_s);
  if (res->floor_ok) {
    printf("floor: loopback hop p50 %.0f us, 4 KiB write + fdatasync p50 "
           "%.0f us%s: a replicated write cannot take less than %.0f us here\n",
           res->floor.hop_p50_us, res->floor.sync_p50_us,
           res->floor.sync_direct ? " (O_DIRECT)" : "",
           res->floor.write_p50_us);
  }
  printf("load: %d publishers over %d connections per system on %d load "
         "generator threads; messages of %d B; medians of %d runs "
         "(publish: %.1f s after %.1f s warm-up)\n",
         h->o.publishers, h->o.conns ? h->o.conns : h->o.publishers,
         h->o.threads, CHB_MSG_BYTES, h->o.repeat, h->o.seconds, h->o.warmup_s);
  printf("\nSystems\n\n");
  for (int s = 0; s < CHB_SYSTEMS; s++) {
    const struct chb_system *sys = &h->sys[s];
    if (!h->o.only[s]) {
      printf("- %s: not asked for (--systems)\n", sys->name);
    } else if (!sys->available) {
      printf("- %s: NOT RUN: %s\n", sys->name, sys->why);
    } else {
      printf("- %s %s: %s.\n  Durability: %s.\n", sys->name, sys->version,
             sys->setup, sys->durability);
    }
  }
}

static void print_report(struct harness *h) {
  char l1[96], l2[96], l3[96], l4[96], l5[96];
  struct row pub1 = {
      .unit = "msg/s", .target = TARGET_PUB1_MSGS, .target_text = ">= 50,000"};
  struct row pub1_50 = {.label = "  latency of one publish, p50",
                        .unit = "ms",
                        .dir = LOWER_BETTER};
  struct row pub1_99 = {.label = "  latency of one publish, p99",
                        .unit = "ms",
                        .dir = LOWER_BETTER};
  struct row pubb = {.unit = "msg/s",
                     .target = TARGET_PUB_BATCH_MSGS,
                     .target_text = ">= 500,000"};
  struct row pubb_50 = {.label = "  latency of one batch, p50",
                        .unit = "ms",
                        .dir = LOWER_BETTER};
  struct row pubb_99 = {.label = "  latency of one batch, p99",
                        .unit = "ms",
                        .dir = LOWER_BETTER};
  struct row fan50 = {.unit = "ms",
                      .dir = LOWER_BETTER,
                      .target = TARGET_FAN_P50_MS,
                      .target_text = "< 1 ms"};
  struct row fan99 = {.label = "  publish-to-delivery, p99",
                      .unit = "ms",
                      .dir = LOWER_BETTER,
                      .target = TARGET_FAN_P99_MS,
                      .target_text = "< 5 ms"};
  struct row lost = {.label = "  missing+dup+unordered+unacked",
                     .unit = "msgs",
                     .dir = LOWER_BETTER,
                     .target = 0,
                     .target_text = "0"};
  struct row fan_mem = {.label = "  VmRSS growth over the run, largest server",
                        .unit = "MiB",
                        .dir = LOWER_BETTER};
  struct row st50 = {.label = "fan-out, 1 sub per server never reads, p50",
                     .unit = "ms",
                     .dir = LOWER_BETTER,
                     .target = TARGET_FAN_P50_MS,
                     .target_text = "< 1 ms"};
  struct row st99 = fan99, st_lost = lost, st_mem = fan_mem;
  struct row st_queued = {.label = "  queued to clients at the end, largest",
                          .unit = "MiB",
                          .dir = LOWER_BETTER,
                          .target = TARGET_STALLED_QUEUED_MIB,
                          .target_text = "<= 5 MiB"};
  struct row catchup = {.unit = "msg/s",
                        .target = TARGET_CATCHUP_MSGS,
                        .target_text = ">= 500,000"};
  struct row growth = {.label = "memory: VmRSS growth per retained msg",
                       .unit = "B",
                       .dir = LOWER_BETTER};
  struct row mem = {.unit = "B",
                    .dir = LOWER_BETTER,
                    .target = TARGET_MEM_BYTES,
                    .target_text = "<= 64 B"};
  snprintf(l1, sizeof l1, "publish 1/call, %d publishers", h->o.publishers);
  snprintf(l2, sizeof l2, "publish %d/call, %d publishers", h->o.batch,
           h->o.publishers);
  snprintf(l3, sizeof l3, "fan-out %d msg/s to %d subs, p50", h->o.fanout_rate,
           h->o.subscribers);
  snprintf(l4, sizeof l4, "catch-up of %" PRIu64 " from the first",
           h->o.retained);
  snprintf(l5, sizeof l5, "  the same beyond the %d B payload", CHB_MSG_BYTES);
  pub1.label = l1;
  pubb.label = l2;
  fan50.label = l3;
  catchup.label = l4;
  mem.label = l5;
  pub_rows(h, 0, &pub1, &pub1_50, &pub1_99);
  pub_rows(h, 1, &pubb, &pubb_50, &pubb_99);
  fan_rows(h, 0, &fan50, &fan99, &lost, &fan_mem, NULL);
  fan_rows(h, 1, &st50, &st99, &st_lost, &st_mem, &st_queued);
  retained_rows(h, &catchup, &growth, &mem);
  print_header(h);
  printf("\nResults (medians; ratio = synod / peer: above 1 synod is higher, "
         "which is better for msg/s and worse for ms and B)\n\n");
  printf("| %-44s | %-6s | %11s | %11s | %11s | %10s | %11s | %-10s | %-7s |\n",
         "workload", "unit", "synod", "nats", "redis", "synod/nats",
         "synod/redis", "target", "synod");
  printf("|%.46s|%.8s|%.13s|%.13s|%.13s|%.12s|%.13s|%.12s|%.9s|\n",
         "----------------------------------------------", "--------",
         "-------------", "-------------", "-------------", "------------",
         "-------------", "------------", "---------");
  const struct row *rows[] = {&pub1,    &pub1_50, &pub1_99, &pubb,   &pubb_50,
                              &pubb_99, &fan50,   &fan99,   &lost,   &fan_mem,
                              &st50,    &st99,    &st_lost, &st_mem, &st_queued,
                              &catchup, &growth,  &mem};
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    print_row(rows[i]);
  }
  print_details(h);
}

/* What every run must get right, whatever its speed: each subscriber
 * gets every acknowledged message once and in order; the catch-up reads
 * every retained message in order. Prints a FAIL line for each miss;
 * returns how many. */
static int print_failures(const struct harness *h) {
  const struct results *res = h->res;
  int failed = 0;
  for (int s = 0; s < CHB_SYSTEMS; s++) {
    const char *name = SYS_NAMES[s];
    if (!sys_on(h, s)) {
      continue;
    }
    for (int k = 0; k < 2; k++) {
      for (int i = 0; i < res->fan_n[k][s]; i++) {
        const struct chb_fanout *r = &res->fan[k][s][i];
        if (r->missing || r->duplicates || r->unordered || r->acked == 0 ||
            r->acked < r->sent) {
          printf("FAIL %s %s run %d: %" PRIu64 " acknowledged, %" PRIu64
                 " missing, %" PRIu64 " duplicated, %" PRIu64
                 " out of order%s%.200s\n",
                 name, FAN_NAMES[k], i + 1, r->acked, r->missing, r->duplicates,
                 r->unordered, r->first_error[0] ? "; " : "", r->first_error);
          failed++;
        }
      }
    }
    if ((h->o.workloads & CHB_WL_RETAINED) && !res->filled[s]) {
      printf("FAIL %s fill: %.200s\n", name, res->fill[s].first_error);
      failed++;
    }
    for (int i = 0; i < res->catchup_n[s]; i++) {
      const struct chb_catchup *r = &res->catchup[s][i];
      if (r->received != r->n || r->unordered) {
        printf("FAIL %s catch-up run %d: %" PRIu64 " of %" PRIu64
               " read, %" PRIu64 " out of order%s%.200s\n",
               name, i + 1, r->received, r->n, r->unordered,
               r->first_error[0] ? "; " : "", r->first_error);
        failed++;
      }
    }
    for (int k = 0; k < 2; k++) {
      for (int i = 0; i < res->pub_n[k][s]; i++) {
        if (res->pub[k][s][i].msgs == 0 || res->pub[k][s][i].aborted) {
          printf("FAIL %s publish run %d: %.200s\n", name, i + 1,
                 res->pub[k][s][i].first_error);
          failed++;
        }
      }
    }
  }
  return failed;
}

/* ================================================================ main */

static void on_alarm(int sig) {
  static const char msg[] =
      "synod-bench-channels: --max-minutes passed: stopping\n";
  (void)sig;
  if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) {
    /* nothing more to say */
  }
  test_failed = 0; /* remove the temporary directories all the same */
  raise(SIGTERM);  /* the harness's handler kills our children */
}

static void systems_start(struct harness *h) {
  chb_synod_init(&h->sys[CHB_SYNOD]);
  chb_nats_init(&h->sys[CHB_NATS]);
  chb_redis_init(&h->sys[CHB_REDIS]);
  for (int s = 0; s < CHB_SYSTEMS; s++) {
    struct chb_system *sys = &h->sys[s];
    char dir[PATH_MAX];
    if (!h->o.only[s]) {
      continue;
    }
    fprintf(stderr, "synod-bench-channels: starting %s ...\n", sys->name);
    snprintf(dir, sizeof dir, "%.4000s/%s", h->dir, sys->name);
    if (mkdir(dir, 0755) != 0) {
      snprintf(sys->why, sizeof sys->why, "cannot make %.200s", dir);
      continue;
    }
    sys->available = sys->ops->start(sys, &h->o, dir) == 0;
    if (!sys->available) {
      fprintf(stderr, "synod-bench-channels: %s NOT RUN: %s\n", sys->name,
              sys->why);
      sys->ops->stop(sys);
    }
  }
}

int main(int argc, char **argv) {
  struct harness *h = calloc(1, sizeof *h);
  uint64_t t0 = chb_now_ns();
  int rv;
  if (h == NULL || (h->res = calloc(1, sizeof *h->res)) == NULL) {
    fprintf(stderr, "synod-bench-channels: out of memory\n");
    return 1;
  }
  rv = parse_args(argc, argv, h);
  if (rv != 0) {
    return rv == 1 ? 0 : 2;
  }
  if (h->o.keep) {
    setenv("SYNOD_TEST_KEEP", "1", 1);
  }
  if (getenv("SYNOD_TEST_TMP") == NULL && getenv("TMPDIR") != NULL) {
    setenv("SYNOD_TEST_TMP", getenv("TMPDIR"), 1);
  }
  signal(SIGPIPE, SIG_IGN);
  signal(SIGALRM, on_alarm);
  alarm(h->max_s);
  time(&h->res->started);
  getloadavg(h->res->load0, 3);
  test_tmpdir("synod-bench-channels", h->dir, sizeof h->dir);
  fprintf(stderr, "synod-bench-channels: data in %s; measuring the floor\n",
          h->dir);
  h->res->floor_ok = bench_floor_measure(h->dir, 1000, &h->res->floor) == 0;
  systems_start(h);
  if (h->o.workloads & CHB_WL_RETAINED) {
    fprintf(stderr, "retained messages: memory and catch-up\n");
    run_retained(h);
  }
  if (h->o.workloads & CHB_WL_PUBLISH) {
    fprintf(stderr, "publish, one message per call\n");
    run_publish(h, 0);
  }
  if (h->o.workloads & CHB_WL_BATCH) {
    fprintf(stderr, "publish, %d messages per call\n", h->o.batch);
    run_publish(h, 1);
  }
  if (h->o.workloads & (CHB_WL_FANOUT | CHB_WL_FANOUT_STALLED)) {
    fprintf(stderr, "fan-out\n");
    run_fanout(h);
  }
  getloadavg(h->res->load1, 3);
  for (int s = CHB_SYSTEMS - 1; s >= 0; s--) {
    if (h->o.only[s] && h->sys[s].available) {
      h->sys[s].ops->stop(&h->sys[s]);
    }
  }
  alarm(0);
  h->res->elapsed_s = (double)(chb_now_ns() - t0) / 1e9;
  print_report(h);
  rv = print_failures(h);
  if (h->o.keep) {
    fprintf(stderr, "synod-bench-channels: kept %s\n", h->dir);
  }
  free(h->res);
  free(h);
  return rv == 0 ? 0 : 1;
}
