/* Benchmark of state transfer: how long a new replica takes to become a
 * voter at the leader's commit index, and what it costs the clients.
 *
 *   synod-bench-transfer [--counters N] [--runs R] [--snapshot-entries E]
 *                        [--window-ms W] [--channel-mib M] [--keep]
 *
 * Each run starts a fresh 3-replica cluster (the synodd built beside this
 * program, on free 127.0.0.1 ports, data in $SYNOD_TEST_TMP or /tmp), fills
 * N counters (default 100,000) and, with --channel-mib, M MiB of retained
 * 100-byte channel messages, then runs a light write load (1 client, one
 * add at a time) for W ms (default 3000) before starting a 4th replica,
 * which asks the leader to join and receives the latest snapshot and the
 * log tail. It measures: the snapshot the joiner installed (bytes), the
 * time from starting the joiner until it is a voter whose applied index
 * has reached the leader's commit index, the MB/s that makes, the time
 * from the leader adding it to its installing the snapshot (from the two
 * logs, at millisecond resolution: the chunks' trip, then storing and
 * decoding the image), and the load's latency before vs during the transfer.
 * Prints the median of R runs (default 3) and each run. */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "cluster.h"
#include "synod.h"

#define RUNS_MAX 15
#define FILLERS 8
#define WINDOW 32
#define SAMPLES_MAX (1u << 20)

struct opts {
  uint32_t counters;
  int runs;
  uint32_t snapshot_entries; /* 0: synodd's default */
  uint32_t window_ms;
  uint32_t channel_mib; /* retained channel messages to fill, MiB */
  bool keep;
};

/* What one run measured. Latencies in microseconds. */
struct result {
  double fill_s;
  double snapshot_bytes;
  double transfer_s; /* start -> voter at the leader's commit index */
  double mb_s;       /* snapshot bytes / transfer_s */
  double install_s;  /* leader's "adding" -> joiner's "installed snapshot" */
  double wire_s;     /* leader's "adding" -> joiner's last chunk received */
  double apply_s;    /* last chunk received -> snapshot installed */
  double before_p50, before_p99, during_p50, during_p99;
  double before_n, during_n;
};

/* ------------------------------------------------------------- loader */

/* One libuv loop on its own thread: FILLERS clients set the counters
 * (WINDOW requests in flight each), then one client adds in a closed loop
 * and records each latency in the phase it was sent in. */

struct filler {
  struct loader *l;
  struct synod_async *a;
  uint32_t next;
  uint32_t inflight;
  bool done;
};

struct samples {
  uint32_t *us;
  size_t n;
};

struct loader {
  uv_loop_t loop;
  uv_timer_t tick;
  pthread_t thread;
  uint32_t counters;
  struct filler fillers[FILLERS];
  struct synod_async *load;
  atomic_int fill_left;
  atomic_uint errors;
  atomic_int phase; /* 0: load off, 1: before, 2: during */
  atomic_bool quit, stopped;
  bool busy;
  int sent_phase;
  uint64_t sent_ns;
  pthread_mutex_t mu;
  struct samples samples[3]; /* by phase, under mu */
};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void filler_pump(struct filler *f);

static void fill_cb(void *arg, int status, const int64_t *value) {
  struct filler *f = arg;
  (void)value;
  f->inflight--;
  if (status != 0 && atomic_fetch_add(&f->l->errors, 1) == 0) {
    fprintf(stderr, "fill: %s (%s)\n", synod_errname(status),
            synod_async_last_errmsg(f->a));
  }
  filler_pump(f);
}

static void filler_pump(struct filler *f) {
  char name[32];
  while (f->inflight < WINDOW && f->next < f->l->counters) {
    snprintf(name, sizeof name, "c/%06" PRIu32, f->next);
    if (synod_async_counter_set(f->a, name, f->next, fill_cb, f) != 0) {
      atomic_fetch_add(&f->l->errors, 1);
    } else {
      f->inflight++;
    }
    f->next += FILLERS;
  }
  if (f->inflight == 0 && !f->done) {
    f->done = true;
    atomic_fetch_sub(&f->l->fill_left, 1);
  }
}

static void load_send(struct loader *l);

static void load_cb(void *arg, int status, const int64_t *value) {
  struct loader *l = arg;
  uint64_t us = (now_ns() - l->sent_ns) / 1000;
  (void)value;
  l->busy = false;
  if (status != 0) {
    if (atomic_fetch_add(&l->errors, 1) == 0) {
      fprintf(stderr, "load: %s (%s)\n", synod_errname(status),
              synod_async_last_errmsg(l->load));
    }
  } else if (l->sent_phase > 0) {
    pthread_mutex_lock(&l->mu);
    struct samples *s = &l->samples[l->sent_phase];
    if (s->n < SAMPLES_MAX) {
      s->us[s->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    }
    pthread_mutex_unlock(&l->mu);
  }
  if (atomic_load(&l->phase) > 0) {
    load_send(l);
  }
}

static void load_send(struct loader *l) {
  l->sent_phase = atomic_load(&l->phase);
  l->sent_ns = now_ns();
  l->busy = synod_async_counter_add(l->load, "load", 1, load_cb, l) == 0;
  if (!l->busy) {
    atomic_fetch_add(&l->errors, 1);
  }
}

static void loader_tick_cb(uv_timer_t *t) {
  struct loader *l = t->data;
  if (atomic_load(&l->quit)) {
    uv_close((uv_handle_t *)t, NULL);
    for (int i = 0; i < FILLERS; i++) {
      synod_async_close(l->fillers[i].a, NULL, NULL);
    }
    synod_async_close(l->load, NULL, NULL);
    return;
  }
  if (atomic_load(&l->phase) > 0 && !l->busy) {
    load_send(l);
  }
}

static void *loader_main(void *arg) {
  struct loader *l = arg;
  for (int i = 0; i < FILLERS; i++) {
    filler_pump(&l->fillers[i]);
  }
  uv_run(&l->loop, UV_RUN_DEFAULT);
  atomic_store(&l->stopped, true);
  return NULL;
}

static struct synod_async *loader_client(struct loader *l,
                                         const char *endpoints) {
  struct synod_options o;
  struct synod_async *a;
  synod_options_init(&o);
  o.endpoints = endpoints;
  o.client_name = "synod-bench-transfer";
  o.request_timeout_ms = 30000;
  CHECK(synod_async_new(&l->loop, &o, &a) == 0, "synod_async_new");
  return a;
}

static void loader_start(struct loader *l, const char *endpoints,
                         uint32_t counters) {
  memset(l, 0, sizeof *l);
  l->counters = counters;
  pthread_mutex_init(&l->mu, NULL);
  CHECK(uv_loop_init(&l->loop) == 0, "uv_loop_init");
  for (int p = 1; p < 3; p++) {
    l->samples[p].us = malloc(SAMPLES_MAX * sizeof(uint32_t));
    CHECK(l->samples[p].us != NULL, "out of memory");
  }
  atomic_store(&l->fill_left, FILLERS);
  for (int i = 0; i < FILLERS; i++) {
    l->fillers[i] = (struct filler){.l = l, .next = (uint32_t)i};
    l->fillers[i].a = loader_client(l, endpoints);
  }
  l->load = loader_client(l, endpoints);
  uv_timer_init(&l->loop, &l->tick);
  l->tick.data = l;
  uv_timer_start(&l->tick, loader_tick_cb, 2, 2);
  CHECK(pthread_create(&l->thread, NULL, loader_main, l) == 0, "thread");
}

static void loader_stop(struct loader *l) {
  uint64_t until = test_now_ms() + 10000;
  atomic_store(&l->phase, 0);
  atomic_store(&l->quit, true);
  while (!atomic_load(&l->stopped)) {
    CHECK(test_now_ms() < until, "client loop did not stop in 10 s");
    usleep(5000);
  }
  pthread_join(l->thread, NULL);
  uv_loop_close(&l->loop);
}

static void loader_free(struct loader *l) {
  for (int p = 1; p < 3; p++) {
    free(l->samples[p].us);
  }
}

/* ---------------------------------------------------------- measuring */

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The q-quantile (0..1) of the phase's latencies, in microseconds. */
static double quantile(struct loader *l, int phase, double q) {
  pthread_mutex_lock(&l->mu);
  struct samples *s = &l->samples[phase];
  double v = 0;
  if (s->n > 0) {
    qsort(s->us, s->n, sizeof *s->us, cmp_u32);
    size_t i = (size_t)(q * (double)(s->n - 1) + 0.5);
    v = s->us[i];
  }
  pthread_mutex_unlock(&l->mu);
  return v;
}

/* A status client bound to replica i, kept for the whole polling loop (so
 * that polling costs a request, not a thread and a connection). */
static struct synod_client *status_client(const struct cluster *c, int i) {
  struct synod_options o;
  struct synod_client *cl;
  synod_options_init(&o);
  o.endpoints = c->nodes[i].client;
  o.client_name = "synod-bench-transfer status";
  o.connect_timeout_ms = 1000;
  o.request_timeout_ms = 2000;
  CHECK(synod_client_new(&o, &cl) == 0, "%s", synod_client_errmsg());
  return cl;
}

/* Is replica `name` a voter in st's configuration? */
static bool is_voter(const struct synod_status *st, const char *name) {
  for (size_t i = 0; i < st->members_count; i++) {
    if (strcmp(st->members[i].name, name) == 0) {
      return st->members[i].voter;
    }
  }
  return false;
}

/* Polls until replica j is a voter (as the leader says) whose applied
 * index has reached the leader's commit index read just before. */
static void wait_caught_up(struct cluster *c, int leader, int j) {
  struct synod_client *lc = status_client(c, leader);
  struct synod_client *jc = status_client(c, j);
  uint64_t until = test_now_ms() + 300000;
  for (;;) {
    struct synod_status ls, js;
    bool done = false;
    if (synod_status(lc, 0, &ls) == 0) {
      if (is_voter(&ls, c->nodes[j].name) && synod_status(jc, 0, &js) == 0) {
        done = js.applied_index >= ls.commit_index;
        synod_status_free(&js);
      }
      synod_status_free(&ls);
    }
    if (done) {
      break;
    }
    CHECK(test_now_ms() < until, "%s not caught up within 300 s (logs in %s)",
          c->nodes[j].name, c->dir);
    usleep(2000);
  }
  synod_client_free(lc);
  synod_client_free(jc);
}

/* The wall-clock time (ms since the epoch) of the first log line of
 * `path` holding needle, and in *bytes the number before " bytes)" on it
 * if asked; 0 if none. Lines start "2026-11-21T17:21:31.123Z". */
static double log_time_ms(const char *path, const char *needle, double *bytes) {
  char *s = test_slurp(path), *hit = strstr(s, needle);
  double ms = 0;
  if (hit != NULL) {
    char *line = hit;
    while (line > s && line[-1] != '\n') {
      line--;
    }
    struct tm tm = {0};
    int msec = 0;
    if (sscanf(line, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon,
               &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &msec) == 7) {
      tm.tm_year -= 1900;
      tm.tm_mon -= 1;
      ms = (double)timegm(&tm) * 1000.0 + msec;
    }
    char *b = strstr(hit, " bytes)");
    if (bytes != NULL && b != NULL) {
      while (b > hit && b[-1] >= '0' && b[-1] <= '9') {
        b--;
      }
      *bytes = strtod(b, NULL);
    }
  }
  free(s);
  return ms;
}

/* Publishes mib MiB of 100-byte messages to channel "retained", in
 * batches of 1,000, so the snapshot carries them. */
static void fill_channel(struct cluster *c, uint32_t mib) {
  struct synod_options o;
  struct synod_client *cl;
  static char msgs[1000][100];
  const void *ptrs[1000];
  size_t lens[1000];
  synod_options_init(&o);
  o.endpoints = c->endpoints;
  o.client_name = "synod-bench-transfer";
  o.request_timeout_ms = 30000;
  CHECK(synod_client_new(&o, &cl) == 0, "%s", synod_client_errmsg());
  struct synod_channel_limits lim = {.max_bytes = 2ull * mib << 20,
                                     .max_messages = 100u * mib << 10};
  CHECK(synod_channel_create(cl, "retained", &lim, 0, NULL) == 0,
        "channel create: %s", synod_client_errmsg());
  uint64_t n = ((uint64_t)mib << 20) / 100;
  for (uint64_t k = 0; k < n; k += 1000) {
    for (int i = 0; i < 1000; i++) {
      snprintf(msgs[i], sizeof msgs[i], "%099" PRIu64, k + (uint64_t)i);
      ptrs[i] = msgs[i];
      lens[i] = 100;
    }
    size_t batch = n - k < 1000 ? (size_t)(n - k) : 1000;
    CHECK(synod_channel_publish(cl, "retained", ptrs, lens, batch, NULL, 0,
                                NULL) == 0,
          "publish at %" PRIu64 ": %s", k, synod_client_errmsg());
  }
  synod_client_free(cl);
}

/* --------------------------------------------------------------- runs */

static void run_fill(struct cluster *c, struct loader *l, const struct opts *o,
                     struct result *r) {
  uint64_t t0 = test_now_ms();
  loader_start(l, c->endpoints, o->counters);
  while (atomic_load(&l->fill_left) > 0) {
    CHECK(atomic_load(&l->errors) == 0, "fill failed (logs in %s)", c->dir);
    CHECK(test_now_ms() - t0 < 900000, "fill not done in 900 s");
    usleep(10000);
  }
  CHECK(atomic_load(&l->errors) == 0, "fill failed (logs in %s)", c->dir);
  if (o->channel_mib > 0) {
    fill_channel(c, o->channel_mib);
  }
  r->fill_s = (double)(test_now_ms() - t0) / 1000.0;
}

static void run_one(const char *synodd, const struct opts *o, int run,
                    struct result *r) {
  static struct cluster c;
  static struct loader l;
  char entries[16], needle[64];
  memset(r, 0, sizeof *r);
  cluster_init(&c, 4, synodd);
  snprintf(entries, sizeof entries, "%u", o->snapshot_entries);
  if (o->snapshot_entries > 0) {
    c.extra_args[0] = "--snapshot-entries";
    c.extra_args[1] = entries;
  }
  for (int i = 0; i < 3; i++) {
    cluster_peers_prefix(&c, 3, c.nodes[i].peers, sizeof c.nodes[i].peers);
    cluster_restart(&c, i);
  }
  int leader = cluster_wait_leader(&c, 60000);
  run_fill(&c, &l, o, r);
  leader = cluster_wait_leader(&c, 60000);
  atomic_store(&l.phase, 1);
  usleep(o->window_ms * 1000u); /* the measurement window, not a wait */
  atomic_store(&l.phase, 2);
  uint64_t t0 = now_ns();
  cluster_restart(&c, 3);
  wait_caught_up(&c, leader, 3);
  r->transfer_s = (double)(now_ns() - t0) / 1e9;
  atomic_store(&l.phase, 0);
  loader_stop(&l);
  CHECK(atomic_load(&l.errors) == 0, "the load saw errors (logs in %s)", c.dir);
  snprintf(needle, sizeof needle, "adding %s (", c.nodes[3].name);
  double added = log_time_ms(c.nodes[leader].log, needle, NULL);
  double installed =
      log_time_ms(c.nodes[3].log, "installed snapshot", &r->snapshot_bytes);
  double received = log_time_ms(c.nodes[3].log, "complete", NULL);
  r->install_s = added > 0 && installed > 0 ? (installed - added) / 1000.0 : 0;
  r->wire_s = added > 0 && received > 0 ? (received - added) / 1000.0 : 0;
  r->apply_s =
      received > 0 && installed > 0 ? (installed - received) / 1000.0 : 0;
  r->mb_s = r->snapshot_bytes / 1e6 / r->transfer_s;
  r->before_p50 = quantile(&l, 1, 0.50);
  r->before_p99 = quantile(&l, 1, 0.99);
  r->during_p50 = quantile(&l, 2, 0.50);
  r->during_p99 = quantile(&l, 2, 0.99);
  r->before_n = (double)l.samples[1].n;
  r->during_n = (double)l.samples[2].n;
  loader_free(&l);
  cluster_stop(&c);
  fprintf(stderr,
          "run %d: fill %.1f s, snapshot %.0f bytes, transfer %.3f s, "
          "leader add -> installed %.3f s, load p50/p99 %.0f/%.0f us "
          "before (%.0f), %.0f/%.0f us during (%.0f)%s%s\n",
          run, r->fill_s, r->snapshot_bytes, r->transfer_s, r->install_s,
          r->before_p50, r->before_p99, r->before_n, r->during_p50,
          r->during_p99, r->during_n, o->keep ? "; logs in " : "",
          o->keep ? c.dir : "");
}

/* The median of field `off` over the runs. */
static double median(const struct result *rs, int n, size_t off) {
  double v[RUNS_MAX];
  for (int i = 0; i < n; i++) {
    v[i] = *(const double *)((const char *)&rs[i] + off);
  }
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#define MED(field) median(rs, o->runs, offsetof(struct result, field))

static void report(const struct opts *o, const struct result *rs) {
  printf("\nstate transfer to a 4th replica: %u counters, median of %d "
         "runs\n\n",
         o->counters, o->runs);
  printf("%-44s %12s\n", "measure", "median");
  printf("%-44s %12.0f\n", "snapshot installed by the joiner (bytes)",
         MED(snapshot_bytes));
  printf("%-44s %12.3f\n", "start -> voter at leader's commit (s)",
         MED(transfer_s));
  printf("%-44s %12.2f\n", "transfer rate, snapshot / that time (MB/s)",
         MED(mb_s));
  printf("%-44s %12.3f\n", "leader adds learner -> snapshot installed (s)",
         MED(install_s));
  printf("%-44s %12.3f\n", "  of which: chunks sent and received (s)",
         MED(wire_s));
  printf("%-44s %12.3f\n", "  of which: stored and decoded (s)", MED(apply_s));
  printf("%-44s %12.2f\n", "load p50 before (ms)", MED(before_p50) / 1000);
  printf("%-44s %12.2f\n", "load p50 during (ms)", MED(during_p50) / 1000);
  printf("%-44s %12.2f\n", "load p99 before (ms)", MED(before_p99) / 1000);
  printf("%-44s %12.2f\n", "load p99 during (ms)", MED(during_p99) / 1000);
  printf("%-44s %12.2f\n", "extra p50 during the transfer (ms)",
         (MED(during_p50) - MED(before_p50)) / 1000);
  printf("%-44s %12.2f\n", "extra p99 during the transfer (ms)",
         (MED(during_p99) - MED(before_p99)) / 1000);
  printf("%-44s %12.0f / %.0f\n", "load samples before / during", MED(before_n),
         MED(during_n));
  printf("%-44s %12.1f\n", "fill time (s)", MED(fill_s));
}

static void usage(FILE *f) {
  fprintf(f, "usage: synod-bench-transfer [--counters N] [--runs R] "
             "[--snapshot-entries E] [--window-ms W] [--channel-mib M] "
             "[--keep]\n");
}

static int parse(int argc, char **argv, struct opts *o) {
  *o = (struct opts){.counters = 100000, .runs = 3, .window_ms = 3000};
  for (int i = 1; i < argc; i++) {
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(argv[i], "--keep") == 0) {
      o->keep = true;
    } else if (v && strcmp(argv[i], "--counters") == 0) {
      o->counters = (uint32_t)strtoul(argv[++i], NULL, 10);
    } else if (v && strcmp(argv[i], "--runs") == 0) {
      o->runs = atoi(argv[++i]);
    } else if (v && strcmp(argv[i], "--snapshot-entries") == 0) {
      o->snapshot_entries = (uint32_t)strtoul(argv[++i], NULL, 10);
    } else if (v && strcmp(argv[i], "--channel-mib") == 0) {
      o->channel_mib = (uint32_t)strtoul(argv[++i], NULL, 10);
    } else if (v && strcmp(argv[i], "--window-ms") == 0) {
      o->window_ms = (uint32_t)strtoul(argv[++i], NULL, 10);
    } else {
      usage(strcmp(argv[i], "--help") == 0 ? stdout : stderr);
      return strcmp(argv[i], "--help") == 0 ? 0 : 2;
    }
  }
  if (o->runs < 1 || o->runs > RUNS_MAX || o->counters == 0) {
    fprintf(stderr, "synod-bench-transfer: --runs 1..%d, --counters > 0\n",
            RUNS_MAX);
    return 2;
  }
  return -1;
}

int main(int argc, char **argv) {
  char synodd[PATH_MAX], why[256];
  struct result rs[RUNS_MAX];
  struct opts o;
  int rv = parse(argc, argv, &o);
  if (rv >= 0) {
    return rv;
  }
  signal(SIGPIPE, SIG_IGN);
  if (o.keep) {
    setenv("SYNOD_TEST_KEEP", "1", 1);
  }
  test_binary("SYNODD", "synodd", synodd, sizeof synodd);
  if (!cluster_synodd_ready(synodd, why, sizeof why)) {
    fprintf(stderr, "synod-bench-transfer: %s\n", why);
    return 1;
  }
  for (int i = 0; i < o.runs; i++) {
    run_one(synodd, &o, i + 1, &rs[i]);
  }
  report(&o, rs);
  return 0;
}
