/* synod-bench: the types shared by the harness, the two load generators
 * (synod over libsynod, etcd over its v3 JSON gateway) and the report. */
#ifndef SYNOD_BENCH_H
#define SYNOD_BENCH_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "synod_bench_floor.h"

#define BENCH_REPLICAS 3
#define BENCH_REPEAT_MAX 15
#define BENCH_CLIENTS_MAX 1024
#define BENCH_THREADS_MAX 16 /* load generator threads */
#define BENCH_ERRMSG_BYTES 256
#define BENCH_ERRORS_IN_A_ROW_MAX 20 /* a client stops after this many */
#define BENCH_DRAIN_MS 20000 /* bound on in-flight ops after a run ends */

/* Set by SIGINT/SIGTERM: every loop stops at its next turn. */
extern volatile sig_atomic_t bench_interrupted;

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

enum bench_workload {
  BENCH_COUNTER_SHARED = 0, /* every client adds 1 to one counter */
  BENCH_COUNTER_OWN = 1,    /* each client adds 1 to its own counter */
  BENCH_LOCK = 2,           /* each client locks and unlocks its own name */
  BENCH_KEY_PUT = 3,        /* each client puts 100 bytes to its own key */
  BENCH_KEY_GET = 4,        /* each client gets its own key, linearizably */
  BENCH_WORKLOADS = 5
};

/* The value size of the key workloads (bench/README.md, issue 22). */
#define BENCH_KEY_VALUE_BYTES 100

/* Fills a key workload's value: the client's op count in decimal, then
 * filler, BENCH_KEY_VALUE_BYTES in all, so a get can check what it read. */
void bench_key_value(char *buf, uint64_t seq);

const char *bench_workload_name(enum bench_workload wl);

enum bench_system { BENCH_SYNOD = 0, BENCH_ETCD = 1, BENCH_SYSTEMS = 2 };

/* ------------------------------------------------------------ latency */

/* Log-linear histogram of microseconds: exact below 64 us, then 64
 * sub-buckets per power of two (1.6% resolution) up to 2^40 us. */
#define BENCH_HIST_SUB 64
#define BENCH_HIST_BUCKETS (BENCH_HIST_SUB + 34 * BENCH_HIST_SUB)

struct bench_hist {
  uint64_t buckets[BENCH_HIST_BUCKETS];
  uint64_t count;
};

void bench_hist_record(struct bench_hist *h, uint64_t us);

/* The value (us) below which a fraction p (0..1) of the samples lie, to
 * the bucket's resolution; 0 when the histogram is empty. */
uint64_t bench_hist_percentile(const struct bench_hist *h, double p);

/* --------------------------------------------------------------- runs */

enum bench_verify {
  BENCH_VERIFY_NONE = 0, /* nothing to check for this workload */
  BENCH_VERIFY_OK = 1,
  BENCH_VERIFY_FAIL = 2
};

/* One timed run of one workload against one system. The caller fills the
 * inputs and zeroes the rest; the load generator fills the outputs. */
/* One load generator's part of a run: its clients, on a loop of its own
 * in a thread of its own. The harness splits a run's clients over
 * --threads generators and adds their outputs up (bench_run_merge). */
struct bench_run {
  /* inputs */
  enum bench_workload workload;
  int clients;         /* 1..BENCH_CLIENTS_MAX, each with one op in flight */
  int client_first;    /* the run's index of this generator's first client */
  unsigned run_id;     /* makes key, counter and lock names unique */
  uint64_t start_ns;   /* when every generator of the run starts */
  uint64_t warmup_ns;  /* ops completing before start + this not counted */
  uint64_t measure_ns; /* length of the measured window */
  /* outputs: the measured window */
  uint64_t ops;           /* successful operations completed in the window */
  uint64_t conflicts;     /* etcd: txns that lost a compare (retried) */
  struct bench_hist hist; /* latency of each counted op, us */
  /* outputs: the whole run (warm-up, window, drain) */
  uint64_t ops_total; /* successful operations */
  uint64_t unknown;   /* adds whose outcome is unknown (timed out) */
  uint64_t errors;    /* failed operations (retried or given up) */
  char first_error[BENCH_ERRMSG_BYTES]; /* "" if no error */
  enum bench_verify verify;
  char verify_msg[BENCH_ERRMSG_BYTES];
  bool aborted; /* interrupted, hung or could not start */
};

/* Records the first error of a run (later ones are only counted). */
void bench_run_error(struct bench_run *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Adds one generator's outputs to the run's. */
void bench_run_merge(struct bench_run *into, const struct bench_run *from);

/* Names the keys of a run (bench-<pid>-<run>-...): counter-shared's one
 * counter, and client i's own counter or lock. */
void bench_shared_name(char *buf, size_t len, unsigned run_id);
void bench_client_name(char *buf, size_t len, const struct bench_run *r, int i);

/* --------------------------------------------------------- clusters */

struct bench_proc {
  pid_t pid; /* 0 when not running */
  char name[16];
  char log_path[512];
};

/* A 3-replica cluster of child processes on free 127.0.0.1 ports. */
struct bench_cluster {
  const char *system; /* "synod" or "etcd" */
  struct bench_proc procs[BENCH_REPLICAS];
  int client_port[BENCH_REPLICAS];
  int peer_port[BENCH_REPLICAS];
  int http_port[BENCH_REPLICAS]; /* synod: --http, for --scrape-ms */
  char endpoints[128];           /* synod: "127.0.0.1:P0,127.0.0.1:P1,..." */
  int leader;                    /* index of the leader once known, else -1 */
  char version[32];              /* the server's own version string */
};

/* Starts 3 synodd (at `synodd`) with data under dir/synod-N and logs in
 * dir/synod-N.log, then waits up to wait_ms for a leader to answer.
 * Returns 0, or -1 with err filled (the cluster may be half started:
 * bench_cluster_stop it either way). */
int bench_synod_start(struct bench_cluster *c, const char *synodd,
                      const char *dir, int wait_ms, char *err, size_t len);

/* The same for 3 etcd members (at `etcd`, data under dir/eN). */
int bench_etcd_start(struct bench_cluster *c, const char *etcd, const char *dir,
                     int wait_ms, char *err, size_t len);

/* --scrape-ms: every replica's /metrics fetched each interval_ms on a
 * thread of its own while the runs go on. */
struct bench_scraper;
struct bench_scrape_stats {
  uint64_t scrapes; /* answered 200 */
  uint64_t failed;
  uint64_t bytes_last; /* size of the last answer */
  uint64_t p50_us;     /* fetch time, as the scraper sees it */
  uint64_t max_us;
};
int bench_scrape_start(const struct bench_cluster *c, int interval_ms,
                       struct bench_scraper **out);
void bench_scrape_stop(struct bench_scraper *s, struct bench_scrape_stats *out);

/* SIGTERM to every child, SIGKILL to those alive after 5 s; reaps them.
 * Accepts a zeroed or half-started cluster. */
void bench_cluster_stop(struct bench_cluster *c);

/* key-scale's optional peer: one redis-server (at `redis`) on a free
 * port, nothing saved, its log in dir/redis.log. Returns 0 with *port,
 * or -1 with err. bench_proc_stop stops it (SIGTERM, then SIGKILL after
 * a bound) and accepts a proc that never started. */
int bench_redis_start(struct bench_proc *p, const char *redis, const char *dir,
                      int *port, char *err, size_t len);
void bench_proc_stop(struct bench_proc *p);

/* Prints the last lines of each replica's log to stderr. */
void bench_cluster_dump_logs(const struct bench_cluster *c);

/* ------------------------------------------------------ load generators */

/* Runs one workload against the synod cluster (libsynod async API, one
 * uv loop, r->clients sessions). Fills r's outputs. Returns 0, or -1 if
 * the run could not be set up at all (r->first_error says why). */
int bench_synod_run(const struct bench_cluster *c, struct bench_run *r);

/* Reads a counter back once a run's generators are done (blocking):
 * counter-shared is checked there, the other workloads by the generators.
 * Returns 0, or -1 with a message in err. */
int bench_synod_counter_read(const struct bench_cluster *c, const char *name,
                             int64_t *value, char *err, size_t len);
int bench_etcd_counter_read(const struct bench_cluster *c, int member,
                            const char *name, int64_t *value, char *err,
                            size_t len);

/* Runs one workload against the etcd cluster (libcurl multi, one thread).
 * Client i talks to member target[i % 3]. Same contract as above. */
int bench_etcd_run(const struct bench_cluster *c, const int *target,
                   struct bench_run *r);

/* etcd's /v3/maintenance/status of one member, blocking (setup only):
 * returns 0 and the member id, the leader id and the version, or -1. */
int bench_etcd_status(int port, uint64_t *member, uint64_t *leader,
                      char *version, size_t version_len);

/* ------------------------------------------------------ key scale */

/* One system's fill, memory and list (bench/synod_bench_keys.c). */
struct bench_keys_system {
  bool scale_ran;
  bool failed;
  double fill_s;                      /* put every key, every replica has it */
  double rss_per_key[BENCH_REPLICAS]; /* VmRSS growth / keys, bytes */
  double rss_file_per_key[BENCH_REPLICAS]; /* ... of it file-backed */
  /* synod: the entry bytes its Raft log held in memory when the memory
   * was measured */
  uint64_t log_bytes[BENCH_REPLICAS];
  uint64_t listed; /* keys seen paging through them */
  double list_s;
  char note[BENCH_ERRMSG_BYTES];
};

/* synod's session expiry: the apply figures from each replica's
 * /metrics, before the session closed and once its keys were gone. */
struct bench_keys_expiry {
  bool ran;
  bool failed;
  int leader;
  double close_s;     /* synod_client_free of the owner (session close) */
  double watch_all_s; /* close to the watcher's last delete; -1: never */
  uint64_t watch_deletes;
  double max_before_s[BENCH_REPLICAS]; /* longest apply since start */
  double max_after_s[BENCH_REPLICAS];
  uint64_t batches[BENCH_REPLICAS];   /* applied in between */
  uint64_t over_10ms[BENCH_REPLICAS]; /* ... of which took over 10 ms */
  uint64_t work_left[BENCH_REPLICAS]; /* keys still to take out at the end */
  uint64_t snapshots[BENCH_REPLICAS]; /* taken in between */
  /* The longest batch applied in between took at most this (the upper
   * bound of the highest histogram bucket that gained one). */
  double longest_le_s[BENCH_REPLICAS];
  char note[BENCH_ERRMSG_BYTES];
};

struct bench_keys_result {
  uint64_t keys;        /* filled and listed */
  uint64_t expiry_keys; /* bound to the session that ends */
  double name_value_bytes;
  struct bench_keys_system sys[BENCH_SYSTEMS];
  struct bench_keys_expiry expiry;
  bool redis_ran; /* one redis-server, the same keys (optional) */
  double redis_per_key;
  char redis_note[BENCH_ERRMSG_BYTES]; /* why it did not run */
};

/* Runs the one-shot key measurements on the running clusters: with
 * scale, fill res->keys keys, memory per key, list (and the memory of
 * the same keys in one redis-server at `redis`, unless NULL, run in
 * dir); with expiry (synod only), res->expiry_keys session-bound keys
 * and the session's end. res->keys and expiry_keys are inputs; the rest
 * is filled. */
void bench_keys_run(const struct bench_cluster *clusters, const bool *run,
                    bool scale, bool expiry, const char *redis, const char *dir,
                    struct bench_keys_result *res);

/* ------------------------------------------------------------- report */

/* What one run left for the report. */
struct bench_sample {
  double ops_per_s;
  double p50_us;
  double p99_us;
  double conflicts_per_op; /* etcd counters: failed txns per update */
  double bench_cpu;        /* this process's CPU time / wall time */
  uint64_t errors;
  enum bench_verify verify;
  bool aborted;
};

/* One workload at one client count: the repeated runs of each system. */
struct bench_row {
  enum bench_workload workload;
  int clients;
  int runs[BENCH_SYSTEMS]; /* samples taken; 0 = system not run */
  struct bench_sample samples[BENCH_SYSTEMS][BENCH_REPEAT_MAX];
  char note[BENCH_SYSTEMS][BENCH_ERRMSG_BYTES]; /* first error, or "" */
};

struct bench_report {
  /* configuration */
  double seconds;
  double warmup_s;
  int repeat;
  int threads;             /* load generator threads */
  const char *etcd_target; /* "leader (e1)" or "spread over e0..e2" */
  char synod_version[32];
  char etcd_version[32];
  const char *skipped; /* why a system was not run, or NULL */
  double load_start[3];
  double load_end[3];
  struct bench_floor floor; /* measured before the clusters start */
  bool floor_measured;
  struct bench_row *rows;
  int rows_len;
  bool keys_scale;  /* key-scale ran: keys holds its figures */
  bool keys_expiry; /* key-expiry ran */
  struct bench_keys_result keys;
};

/* Summarizes a finished run into a sample (latencies from its histogram,
 * throughput over the measured window). */
void bench_sample_take(struct bench_sample *s, const struct bench_run *r);

/* Median of a sample field over a row's runs of one system. */
double bench_row_median(const struct bench_row *row, enum bench_system sys,
                        size_t field_offset);

/* Tables and summary on stdout; returns the number of failed checks. */
int bench_report_print(const struct bench_report *rep);

/* The same as one JSON object on stdout; returns the failed checks. */
int bench_report_json(const struct bench_report *rep);

#endif /* SYNOD_BENCH_H */
