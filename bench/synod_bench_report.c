/* synod-bench: latency histograms, medians over repeated runs, and the
 * report (tables on stdout, or one JSON object with --json). */
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "synod_bench.h"

static int print_keys(const struct bench_report *rep);

static const char *const workload_names[BENCH_WORKLOADS] = {
    "counter-shared", "counter-own", "lock", "key-put", "key-get"};

static const char *const workload_help[BENCH_WORKLOADS] = {
    "every client adds 1 to ONE counter (etcd: range + compare-and-swap "
    "txn, retried on conflict)",
    "each client adds 1 to its own counter (etcd: the same CAS loop, which "
    "never conflicts)",
    "each client acquires and releases its own lock (etcd: /v3/lock/lock "
    "and /v3/lock/unlock, one lease per client)",
    "each client puts a 100-byte value to its own key (etcd: /v3/kv/put)",
    "each client gets its own 100-byte key, linearizably (etcd: /v3/kv/range, "
    "linearizable by default)"};

/* Only etcd's counters retry a compare that lost. */
static bool has_conflicts(enum bench_workload wl) {
  return wl == BENCH_COUNTER_SHARED || wl == BENCH_COUNTER_OWN;
}

static const char *const system_names[BENCH_SYSTEMS] = {"synod", "etcd"};

uint64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

const char *bench_workload_name(enum bench_workload wl) {
  return wl < BENCH_WORKLOADS ? workload_names[wl] : "?";
}

void bench_run_error(struct bench_run *r, const char *fmt, ...) {
  va_list ap;
  if (r->first_error[0] != '\0') {
    return;
  }
  va_start(ap, fmt);
  vsnprintf(r->first_error, sizeof r->first_error, fmt, ap);
  va_end(ap);
}

void bench_run_merge(struct bench_run *into, const struct bench_run *from) {
  into->ops += from->ops;
  into->conflicts += from->conflicts;
  for (int i = 0; i < BENCH_HIST_BUCKETS; i++) {
    into->hist.buckets[i] += from->hist.buckets[i];
  }
  into->hist.count += from->hist.count;
  into->ops_total += from->ops_total;
  into->unknown += from->unknown;
  into->errors += from->errors;
  if (into->first_error[0] == '\0') {
    memcpy(into->first_error, from->first_error, sizeof into->first_error);
  }
  if (from->verify == BENCH_VERIFY_FAIL && into->verify != BENCH_VERIFY_FAIL) {
    memcpy(into->verify_msg, from->verify_msg, sizeof into->verify_msg);
  }
  if (from->verify > into->verify) {
    into->verify = from->verify; /* NONE < OK < FAIL */
  }
  into->aborted |= from->aborted;
}

void bench_shared_name(char *buf, size_t len, unsigned run_id) {
  snprintf(buf, len, "bench-%d-%u-shared", (int)getpid(), run_id);
}

void bench_client_name(char *buf, size_t len, const struct bench_run *r,
                       int i) {
  snprintf(buf, len, "bench-%d-%u-%s-%d", (int)getpid(), r->run_id,
           bench_workload_name(r->workload), r->client_first + i);
}

void bench_key_value(char *buf, uint64_t seq) {
  int n = snprintf(buf, BENCH_KEY_VALUE_BYTES + 1,
                   "%llu:", (unsigned long long)seq);
  memset(buf + n, 'v', BENCH_KEY_VALUE_BYTES - (size_t)n);
  buf[BENCH_KEY_VALUE_BYTES] = '\0';
}

/* ------------------------------------------------------------ histogram */

static int hist_index(uint64_t us) {
  int e;
  if (us < BENCH_HIST_SUB) {
    return (int)us;
  }
  e = 63 - __builtin_clzll(us); /* >= 6 */
  if (e >= 40) {
    return BENCH_HIST_BUCKETS - 1;
  }
  return BENCH_HIST_SUB + (e - 6) * BENCH_HIST_SUB +
         (int)((us >> (e - 6)) & (BENCH_HIST_SUB - 1));
}

/* The middle of bucket i, in us. */
static uint64_t hist_value(int i) {
  int e;
  uint64_t sub;
  if (i < BENCH_HIST_SUB) {
    return (uint64_t)i;
  }
  e = (i - BENCH_HIST_SUB) / BENCH_HIST_SUB + 6;
  sub = (uint64_t)((i - BENCH_HIST_SUB) % BENCH_HIST_SUB);
  return (1ull << e) + (sub << (e - 6)) + (1ull << (e - 6)) / 2;
}

void bench_hist_record(struct bench_hist *h, uint64_t us) {
  h->buckets[hist_index(us)]++;
  h->count++;
}

uint64_t bench_hist_percentile(const struct bench_hist *h, double p) {
  uint64_t rank = (uint64_t)(p * (double)h->count + 0.999999);
  uint64_t seen = 0;
  if (h->count == 0) {
    return 0;
  }
  rank = rank < 1 ? 1 : rank;
  for (int i = 0; i < BENCH_HIST_BUCKETS; i++) {
    seen += h->buckets[i];
    if (seen >= rank) {
      return hist_value(i);
    }
  }
  return hist_value(BENCH_HIST_BUCKETS - 1);
}

/* -------------------------------------------------------------- medians */

void bench_sample_take(struct bench_sample *s, const struct bench_run *r) {
  s->ops_per_s = (double)r->ops / ((double)r->measure_ns / 1e9);
  s->p50_us = (double)bench_hist_percentile(&r->hist, 0.50);
  s->p99_us = (double)bench_hist_percentile(&r->hist, 0.99);
  s->conflicts_per_op = r->ops ? (double)r->conflicts / (double)r->ops : 0;
  s->errors = r->errors;
  s->verify = r->verify;
  s->aborted = r->aborted;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double bench_row_median(const struct bench_row *row, enum bench_system sys,
                        size_t field_offset) {
  double v[BENCH_REPEAT_MAX];
  int n = row->runs[sys];
  if (n == 0) {
    return 0;
  }
  for (int i = 0; i < n; i++) {
    memcpy(&v[i], (const char *)&row->samples[sys][i] + field_offset,
           sizeof v[i]);
  }
  qsort(v, (size_t)n, sizeof v[0], cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#define MEDIAN(row, sys, field)                                                \
  bench_row_median(row, sys, offsetof(struct bench_sample, field))

/* Counts a row's failed checks and aborted runs of one system. */
static int row_failures(const struct bench_row *row, enum bench_system sys) {
  int bad = 0;
  for (int i = 0; i < row->runs[sys]; i++) {
    bad += row->samples[sys][i].verify == BENCH_VERIFY_FAIL ||
           row->samples[sys][i].aborted;
  }
  return bad;
}

static uint64_t row_errors(const struct bench_row *row, enum bench_system sys) {
  uint64_t n = 0;
  for (int i = 0; i < row->runs[sys]; i++) {
    n += row->samples[sys][i].errors;
  }
  return n;
}

static bool row_has_both(const struct bench_row *row) {
  return row->runs[BENCH_SYNOD] > 0 && row->runs[BENCH_ETCD] > 0 &&
         MEDIAN(row, BENCH_ETCD, ops_per_s) > 0;
}

static double row_ratio(const struct bench_row *row) {
  return MEDIAN(row, BENCH_SYNOD, ops_per_s) /
         MEDIAN(row, BENCH_ETCD, ops_per_s);
}

/* --------------------------------------------------------------- tables */

static void print_ops(const struct bench_row *row, enum bench_system sys) {
  if (row->runs[sys] == 0) {
    printf("  %11s", "-");
  } else {
    printf("  %11.0f", MEDIAN(row, sys, ops_per_s));
  }
}

static void print_latency(const struct bench_row *row, enum bench_system sys) {
  char lat[32] = "-";
  if (row->runs[sys] > 0) {
    snprintf(lat, sizeof lat, "%.0f / %.0f", MEDIAN(row, sys, p50_us),
             MEDIAN(row, sys, p99_us));
  }
  printf("  %17s", lat);
}

/* clients, synod ops/s, etcd ops/s, ratio, synod p50/p99, etcd p50/p99,
 * and for the counters etcd's failed compares per update. */
static void print_row(const struct bench_row *row) {
  printf("%7d", row->clients);
  print_ops(row, BENCH_SYNOD);
  print_ops(row, BENCH_ETCD);
  if (row_has_both(row)) {
    printf("  %9.2fx", row_ratio(row));
  } else {
    printf("  %10s", "-");
  }
  print_latency(row, BENCH_SYNOD);
  print_latency(row, BENCH_ETCD);
  if (has_conflicts(row->workload) && row->runs[BENCH_ETCD] > 0) {
    printf("  %17.2f", MEDIAN(row, BENCH_ETCD, conflicts_per_op));
  }
  printf("\n");
}

/* Errors, failed checks and hung runs, loudly, under the table. */
static int print_notes(const struct bench_row *row) {
  int failed = 0;
  for (int sys = 0; sys < BENCH_SYSTEMS; sys++) {
    int bad = row_failures(row, sys);
    uint64_t errors = row_errors(row, sys);
    failed += bad;
    if (bad > 0) {
      printf("  FAIL %s %s/%d: %d of %d runs failed a check or did not "
             "finish: %s\n",
             system_names[sys], workload_names[row->workload], row->clients,
             bad, row->runs[sys], row->note[sys]);
    } else if (errors > 0) {
      printf("  note %s %s/%d: %llu failed operations (retried); first: %s\n",
             system_names[sys], workload_names[row->workload], row->clients,
             (unsigned long long)errors, row->note[sys]);
    }
  }
  return failed;
}

static void print_header(const struct bench_report *rep) {
  printf("synod-bench: synod %s vs etcd %s, %d replicas each on 127.0.0.1, "
         "fsync on in both\n",
         rep->synod_version[0] ? rep->synod_version : "-",
         rep->etcd_version[0] ? rep->etcd_version : "-", BENCH_REPLICAS);
  printf("runs: closed loop (one operation in flight per client), %.1f s "
         "measured after %.1f s warm-up, median of %d; the clients on %d "
         "load generator thread%s\n",
         rep->seconds, rep->warmup_s, rep->repeat, rep->threads,
         rep->threads == 1 ? "" : "s (each its own event loop)");
  printf("synod clients: libsynod async API, one session each, to the "
         "leader; etcd clients: v3 JSON gateway over HTTP/1.1 keep-alive, "
         "to %s\n",
         rep->etcd_target);
  if (rep->skipped != NULL) {
    printf("NOTE: %s\n", rep->skipped);
  }
  printf("load average at start: %.2f %.2f %.2f (2 cores shared)\n",
         rep->load_start[0], rep->load_start[1], rep->load_start[2]);
  if (rep->floor_measured) {
    printf("machine floor: one-way loopback hop p50 %.0f us, 4 KiB write + "
           "fdatasync p50 %.0f us; a replicated write from one client (4 "
           "hops + 1 flush) cannot take under %.0f us here\n",
           rep->floor.hop_p50_us, rep->floor.sync_p50_us,
           rep->floor.write_p50_us);
  }
}

/* The one-line summary: ratio range over rows where both systems ran. */
static void print_summary(const struct bench_report *rep, int failed) {
  double lo = 0, hi = 0, v[BENCH_WORKLOADS * 16];
  int n = 0, ilo = 0, ihi = 0;

  for (int i = 0; i < rep->rows_len && n < (int)(sizeof v / sizeof v[0]); i++) {
    if (!row_has_both(&rep->rows[i])) {
      continue;
    }
    v[n] = row_ratio(&rep->rows[i]);
    if (n == 0 || v[n] < lo) {
      lo = v[n], ilo = i;
    }
    if (n == 0 || v[n] > hi) {
      hi = v[n], ihi = i;
    }
    n++;
  }
  printf("summary: %s; ", failed ? "CHECKS FAILED (see FAIL above)"
                                 : "all correctness checks passed");
  if (n == 0) {
    printf("no configuration ran on both systems\n");
    return;
  }
  qsort(v, (size_t)n, sizeof v[0], cmp_double);
  printf("synod/etcd throughput: median %.2fx over %d configurations "
         "(lowest %.2fx %s/%d, highest %.2fx %s/%d)\n",
         n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2, n, lo,
         workload_names[rep->rows[ilo].workload], rep->rows[ilo].clients, hi,
         workload_names[rep->rows[ihi].workload], rep->rows[ihi].clients);
}

int bench_report_print(const struct bench_report *rep) {
  int failed = 0;
  print_header(rep);
  for (int wl = 0; wl < BENCH_WORKLOADS; wl++) {
    bool header = false;
    for (int i = 0; i < rep->rows_len; i++) {
      const struct bench_row *row = &rep->rows[i];
      if ((int)row->workload != wl) {
        continue;
      }
      if (!header) {
        printf("\n%s: %s\n", workload_names[wl], workload_help[wl]);
        printf("clients  synod ops/s   etcd ops/s  synod/etcd"
               "   synod p50/p99 us    etcd p50/p99 us%s\n",
               has_conflicts(wl) ? "  etcd conflicts/op" : "");
        header = true;
      }
      print_row(row);
    }
    for (int i = 0; i < rep->rows_len; i++) {
      if ((int)rep->rows[i].workload == wl) {
        failed += print_notes(&rep->rows[i]);
      }
    }
  }
  printf("\nload average at end: %.2f %.2f %.2f\n", rep->load_end[0],
         rep->load_end[1], rep->load_end[2]);
  failed += print_keys(rep);
  print_summary(rep, failed);
  return failed;
}

/* ------------------------------------------------------------- keys */

#define KEY_RATIO_TARGET 10.0     /* puts and gets: times etcd's rate */
#define KEY_BEYOND_TARGET 100.0   /* B per key beyond name and value */
#define KEY_LIST_TARGET 1000000.0 /* keys/s */
#define KEY_STALL_TARGET_S 0.010  /* longest apply during an expiry */

static int keys_failures(const struct bench_report *rep) {
  int failed = 0;
  for (int sys = 0; rep->keys_scale && sys < BENCH_SYSTEMS; sys++) {
    failed += rep->keys.sys[sys].failed;
  }
  return failed + (rep->keys_expiry && rep->keys.expiry.failed);
}

static const char *met(bool ok) {
  return ok ? "met" : "NOT MET";
}

/* The largest growth over the replicas: what every replica must have. */
static double rss_max(const struct bench_keys_system *s) {
  double m = s->rss_per_key[0];
  for (int i = 1; i < BENCH_REPLICAS; i++) {
    m = s->rss_per_key[i] > m ? s->rss_per_key[i] : m;
  }
  return m;
}

static void print_key_targets(const struct bench_report *rep) {
  for (int i = 0; i < rep->rows_len; i++) {
    const struct bench_row *row = &rep->rows[i];
    if ((row->workload == BENCH_KEY_PUT || row->workload == BENCH_KEY_GET) &&
        row_has_both(row)) {
      printf("target %s/%d: synod >= %.0fx etcd: %.2fx, %s\n",
             workload_names[row->workload], row->clients, KEY_RATIO_TARGET,
             row_ratio(row), met(row_ratio(row) >= KEY_RATIO_TARGET));
    }
  }
}

static void print_key_scale(const struct bench_report *rep) {
  const struct bench_keys_result *k = &rep->keys;
  printf("\nkey-scale: %" PRIu64 " keys of %.0f bytes (12-byte name, "
         "100-byte value), put in transactions, then paged through (keys "
         "only, %d a page, linearizable)\n",
         k->keys, k->name_value_bytes, 10000);
  for (int sys = 0; sys < BENCH_SYSTEMS; sys++) {
    const struct bench_keys_system *s = &k->sys[sys];
    if (!s->scale_ran) {
      if (s->failed) {
        printf("  FAIL %s: %s\n", system_names[sys], s->note);
      }
      continue;
    }
    printf("  %-5s fill %6.1f s; VmRSS growth per key %.0f / %.0f / %.0f B "
           "(replicas 0/1/2), beyond name and value %.0f B (largest); list "
           "%" PRIu64 " keys in %.3f s: %.0f keys/s\n",
           system_names[sys], s->fill_s, s->rss_per_key[0], s->rss_per_key[1],
           s->rss_per_key[2], rss_max(s) - k->name_value_bytes, s->listed,
           s->list_s, s->list_s > 0 ? (double)s->listed / s->list_s : 0);
    printf(
        "        of the growth per key, file-backed (RssFile): %.0f / %.0f / "
        "%.0f B\n",
        s->rss_file_per_key[0], s->rss_file_per_key[1], s->rss_file_per_key[2]);
    if (sys == BENCH_SYNOD) {
      printf("        entry bytes the Raft log held in memory then: %.1f / "
             "%.1f / %.1f MB (%.1f / %.1f / %.1f B per key)\n",
             s->log_bytes[0] / 1e6, s->log_bytes[1] / 1e6,
             s->log_bytes[2] / 1e6, (double)s->log_bytes[0] / k->keys,
             (double)s->log_bytes[1] / k->keys,
             (double)s->log_bytes[2] / k->keys);
    }
    if (s->failed) {
      printf("  FAIL %s: %s\n", system_names[sys], s->note);
    }
  }
  if (k->redis_ran) {
    printf("  redis (one server, no replica, nothing saved): VmRSS growth per "
           "key %.0f B, beyond name and value %.0f B\n",
           k->redis_per_key, k->redis_per_key - k->name_value_bytes);
  } else {
    printf("  redis not measured: %s\n", k->redis_note);
  }
  if (k->sys[BENCH_SYNOD].scale_ran) {
    const struct bench_keys_system *s = &k->sys[BENCH_SYNOD];
    double beyond = rss_max(s) - k->name_value_bytes;
    double rate = s->list_s > 0 ? (double)s->listed / s->list_s : 0;
    printf("target memory per key <= %.0f B beyond name and value: %.0f B, "
           "%s\n",
           KEY_BEYOND_TARGET, beyond, met(beyond <= KEY_BEYOND_TARGET));
    printf("target list >= %.0f keys/s: %.0f, %s\n", KEY_LIST_TARGET, rate,
           met(rate >= KEY_LIST_TARGET));
  }
}

/* The longest apply during the expiry: exact when the replica's maximum
 * rose; else below the earlier maximum, and the histogram says whether
 * any batch took over 10 ms. */
static void print_key_expiry(const struct bench_report *rep) {
  const struct bench_keys_expiry *x = &rep->keys.expiry;
  printf("\nkey-expiry: one session binds %" PRIu64 " keys, then closes; "
         "a watcher of the prefix counts the deletes\n",
         rep->keys.expiry_keys);
  if (!x->ran) {
    printf("  FAIL synod: %s\n", x->note);
    return;
  }
  for (int i = 0; i < BENCH_REPLICAS; i++) {
    bool rose = x->max_after_s[i] > x->max_before_s[i];
    char longest[64];
    if (rose) { /* the replica's maximum since start rose: exact */
      snprintf(longest, sizeof longest, "%.2f ms", 1e3 * x->max_after_s[i]);
    } else if (x->longest_le_s[i] >= 0) {
      snprintf(longest, sizeof longest, "<= %.2f ms (histogram bucket)",
               1e3 * x->longest_le_s[i]);
    } else {
      snprintf(longest, sizeof longest, "> 10 s");
    }
    printf("  synod-%d%s: %" PRIu64 " apply batches, %" PRIu64
           " over 10 ms, the longest %s; keys left to take out %" PRIu64
           "; snapshots taken %" PRIu64 "; longest apply since start %.2f ms\n",
           i, i == x->leader ? " (leader)" : "", x->batches[i], x->over_10ms[i],
           longest, x->work_left[i], x->snapshots[i], 1e3 * x->max_after_s[i]);
  }
  printf("  session close took %.1f ms; the watcher saw %" PRIu64
         " deletes, the last %.1f ms after the close\n",
         1e3 * x->close_s, x->watch_deletes, 1e3 * x->watch_all_s);
  printf("target longest apply stall on the leader <= %.0f ms: %s\n",
         1e3 * KEY_STALL_TARGET_S, met(x->over_10ms[x->leader] == 0));
  if (x->failed) {
    printf("  FAIL synod: %s\n", x->note);
  }
}

static int print_keys(const struct bench_report *rep) {
  print_key_targets(rep);
  if (rep->keys_scale) {
    print_key_scale(rep);
  }
  if (rep->keys_expiry) {
    print_key_expiry(rep);
  }
  return keys_failures(rep);
}

static json_t *json_keys(const struct bench_report *rep) {
  const struct bench_keys_result *k = &rep->keys;
  json_t *o = json_object();
  for (int sys = 0; rep->keys_scale && sys < BENCH_SYSTEMS; sys++) {
    const struct bench_keys_system *s = &k->sys[sys];
    if (s->scale_ran || s->failed) {
      json_object_set_new(
          o, system_names[sys],
          json_pack("{s:I,s:f,s:[fff],s:f,s:I,s:f,s:b,s:s}", "keys",
                    (json_int_t)k->keys, "fill_s", s->fill_s,
                    "rss_per_key_bytes", s->rss_per_key[0], s->rss_per_key[1],
                    s->rss_per_key[2], "beyond_name_value_bytes",
                    rss_max(s) - k->name_value_bytes, "listed",
                    (json_int_t)s->listed, "list_keys_per_s",
                    s->list_s > 0 ? (double)s->listed / s->list_s : 0.0,
                    "failed", s->failed, "note", s->note));
    }
  }
  if (rep->keys_scale && k->redis_ran) {
    json_object_set_new(o, "redis",
                        json_pack("{s:f,s:f}", "rss_per_key_bytes",
                                  k->redis_per_key, "beyond_name_value_bytes",
                                  k->redis_per_key - k->name_value_bytes));
  }
  if (rep->keys_expiry) {
    const struct bench_keys_expiry *x = &k->expiry;
    json_object_set_new(
        o, "expiry",
        json_pack("{s:I,s:i,s:[fff],s:[fff],s:[fff],s:[III],s:[III],s:f,s:I,s:"
                  "f,s:b,s:s}",
                  "keys", (json_int_t)k->expiry_keys, "leader", x->leader,
                  "apply_max_before_s", x->max_before_s[0], x->max_before_s[1],
                  x->max_before_s[2], "apply_max_after_s", x->max_after_s[0],
                  x->max_after_s[1], x->max_after_s[2], "apply_longest_le_s",
                  x->longest_le_s[0], x->longest_le_s[1], x->longest_le_s[2],
                  "apply_over_10ms", (json_int_t)x->over_10ms[0],
                  (json_int_t)x->over_10ms[1], (json_int_t)x->over_10ms[2],
                  "snapshots", (json_int_t)x->snapshots[0],
                  (json_int_t)x->snapshots[1], (json_int_t)x->snapshots[2],
                  "close_s", x->close_s, "watch_deletes",
                  (json_int_t)x->watch_deletes, "watch_all_s", x->watch_all_s,
                  "failed", x->failed, "note", x->note));
  }
  return o;
}

/* ----------------------------------------------------------------- JSON */

static json_t *json_cell(const struct bench_row *row, enum bench_system sys) {
  json_t *runs = json_array();
  json_t *cell;
  for (int i = 0; i < row->runs[sys]; i++) {
    json_array_append_new(runs, json_real(row->samples[sys][i].ops_per_s));
  }
  cell = json_pack(
      "{s:f,s:f,s:f,s:o,s:f,s:I,s:i,s:s}", "ops_per_s",
      MEDIAN(row, sys, ops_per_s), "p50_us", MEDIAN(row, sys, p50_us), "p99_us",
      MEDIAN(row, sys, p99_us), "runs_ops_per_s", runs, "bench_cpu",
      MEDIAN(row, sys, bench_cpu), "errors", (json_int_t)row_errors(row, sys),
      "failed_runs", row_failures(row, sys), "note", row->note[sys]);
  if (sys == BENCH_ETCD && has_conflicts(row->workload)) {
    json_object_set_new(cell, "conflicts_per_op",
                        json_real(MEDIAN(row, sys, conflicts_per_op)));
  }
  return cell;
}

static json_t *json_row(const struct bench_row *row) {
  json_t *o = json_pack("{s:s,s:i}", "workload", workload_names[row->workload],
                        "clients", row->clients);
  for (int sys = 0; sys < BENCH_SYSTEMS; sys++) {
    json_object_set_new(o, system_names[sys],
                        row->runs[sys] ? json_cell(row, sys) : json_null());
  }
  json_object_set_new(o, "ratio_synod_etcd",
                      row_has_both(row) ? json_real(row_ratio(row))
                                        : json_null());
  return o;
}

int bench_report_json(const struct bench_report *rep) {
  json_t *rows = json_array();
  json_t *top;
  int failed = 0;

  for (int i = 0; i < rep->rows_len; i++) {
    json_array_append_new(rows, json_row(&rep->rows[i]));
    failed += row_failures(&rep->rows[i], BENCH_SYNOD) +
              row_failures(&rep->rows[i], BENCH_ETCD);
  }
  failed += keys_failures(rep);
  top = json_pack(
      "{s:{s:i,s:b,s:f,s:f,s:i,s:i,s:s,s:s,s:s,s:s?},s:[fff],s:[fff],s:o,"
      "s:b}",
      "config", "replicas", BENCH_REPLICAS, "fsync", 1, "seconds", rep->seconds,
      "warmup_s", rep->warmup_s, "repeat", rep->repeat, "threads", rep->threads,
      "etcd_target", rep->etcd_target, "synod_version", rep->synod_version,
      "etcd_version", rep->etcd_version, "skipped", rep->skipped, "load_start",
      rep->load_start[0], rep->load_start[1], rep->load_start[2], "load_end",
      rep->load_end[0], rep->load_end[1], rep->load_end[2], "results", rows,
      "checks_passed", failed == 0);
  if (rep->keys_scale || rep->keys_expiry) {
    json_object_set_new(top, "keys", json_keys(rep));
  }
  if (rep->floor_measured) {
    json_object_set_new(top, "floor",
                        json_pack("{s:f,s:f,s:f}", "hop_p50_us",
                                  rep->floor.hop_p50_us, "sync_p50_us",
                                  rep->floor.sync_p50_us, "write_p50_us",
                                  rep->floor.write_p50_us));
  }
  json_dumpf(top, stdout, JSON_INDENT(2));
  printf("\n");
  json_decref(top);
  return failed;
}
