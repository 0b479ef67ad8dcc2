/* Metrics end to end: one replica runs in this process on a libuv loop and
 * libsynod's async client drives it on the same loop (adds, 10,000
 * counters, 10,000 held locks, 10,000 keys, one contended lock).
 * node_metrics_text's output must pass `promtool check metrics` and carry the
 * values that the workload implies. Prints what a render costs (bytes,
 * microseconds) with that state; the size must not grow with the number of
 * locks and counters. SYNOD_METRICS_OBJECTS=N changes the 10,000;
 * SYNOD_METRICS_OUT=PATH keeps a copy of the text.
 *
 * `test_metrics three`: three replicas in-process; the third starts after
 * the log was compacted, so it gets a snapshot. Every replica's text
 * passes promtool and shows its peers' links, the leader its followers'
 * lag, and the transfer on both sides. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "http_client.h"
#include "log.h"
#include "node_int.h"
#include "synod.h"
#include "version.h"

#define ADDS 100    /* on one counter */
#define WINDOW 256  /* requests in flight */
#define RENDERS 101 /* renders measured; the median is reported */
#define WAIT_MS 60000

enum job { JOB_ADD_SAME, JOB_ADD_MANY, JOB_LOCK_MANY, JOB_KEY_PUT };

#define TRIO 3

struct run {
  uv_loop_t loop;
  struct node *node;        /* the one driven (the leader of the trio) */
  struct node *nodes[TRIO]; /* `test_metrics three` */
  int stopped;
  struct synod_async *client;
  enum job job;
  uint64_t target, sent, done, failed;
  int last_error;
  bool contended_granted;
  bool client_closed;
  bool node_stopped;
};

/* ----------------------------------------------------------- the loop */

static void wake_cb(uv_timer_t *t) {
  (void)t;
}

/* Runs the loop until pred holds, at most timeout_ms; fails otherwise. */
static void run_until(struct run *r, bool (*pred)(struct run *),
                      const char *what) {
  uv_timer_t wake;
  uv_timer_init(&r->loop, &wake);
  uv_timer_start(&wake, wake_cb, 10, 10);
  uint64_t deadline = test_now_ms() + WAIT_MS;
  bool ok;
  while (!(ok = pred(r)) && test_now_ms() < deadline) {
    uv_run(&r->loop, UV_RUN_ONCE);
  }
  uv_close((uv_handle_t *)&wake, NULL);
  uv_run(&r->loop, UV_RUN_NOWAIT); /* pred may change: it held at exit */
  CHECK(ok, "%s within %d ms", what, WAIT_MS);
}

static bool is_leader(struct run *r) {
  return r->node->role == CORE_LEADER;
}

static bool job_finished(struct run *r) {
  return r->done == r->target;
}

static bool contended_granted(struct run *r) {
  return r->contended_granted;
}

static bool one_waiter(struct run *r) {
  struct fsm_stats st;
  fsm_stats_get(r->node->fsm, &st);
  return st.lock_waiters == 1;
}

static bool client_closed(struct run *r) {
  return r->client_closed;
}

static bool node_stopped(struct run *r) {
  return r->node_stopped;
}

/* ----------------------------------------------------------- the jobs */

static void job_issue(struct run *r);

static void job_done(struct run *r, int status) {
  r->done++;
  if (status != 0) {
    r->failed++;
    r->last_error = status;
  }
  job_issue(r);
}

static void add_cb(void *arg, int status, const int64_t *value) {
  (void)value;
  job_done(arg, status);
}

static void acquire_cb(void *arg, int status,
                       const struct synod_lock_grant *grant) {
  (void)grant;
  job_done(arg, status);
}

static void key_put_cb(void *arg, int status,
                       const struct synod_key_put_result *res) {
  (void)res;
  job_done(arg, status);
}

/* Keeps WINDOW requests of the current job in flight. */
static void job_issue(struct run *r) {
  char name[32];
  while (r->sent < r->target && r->sent - r->done < WINDOW) {
    int rv;
    snprintf(name, sizeof name, "%s-%llu",
             r->job == JOB_LOCK_MANY ? "lock"
             : r->job == JOB_KEY_PUT ? "key"
                                     : "counter",
             (unsigned long long)r->sent);
    if (r->job == JOB_ADD_SAME) {
      rv = synod_async_counter_add(r->client, "hits", 1, add_cb, r);
    } else if (r->job == JOB_ADD_MANY) {
      rv = synod_async_counter_add(r->client, name, 1, add_cb, r);
    } else if (r->job == JOB_KEY_PUT) {
      rv = synod_async_key_put(r->client, name, "value", 5, 0, NULL, 0,
                               key_put_cb, r);
    } else {
      rv = synod_async_lock_acquire(r->client, name, 1, 0, acquire_cb, r);
    }
    CHECK(rv == 0, "issue %s: %s", name, synod_strerror(rv));
    r->sent++;
  }
}

static void job_run(struct run *r, enum job job, uint64_t n) {
  r->job = job;
  r->target = n;
  r->sent = r->done = r->failed = 0;
  job_issue(r);
  run_until(r, job_finished, "the job's answers");
  CHECK(r->failed == 0, "%llu of %llu failed, last with %s",
        (unsigned long long)r->failed, (unsigned long long)n,
        synod_strerror(r->last_error));
}

static void contended_cb(void *arg, int status,
                         const struct synod_lock_grant *grant) {
  struct run *r = arg;
  (void)grant;
  CHECK(status == 0, "the queued acquire: %s", synod_strerror(status));
  r->contended_granted = true;
}

static void release_cb(void *arg, int status, const uint32_t *hold_count) {
  (void)arg;
  (void)hold_count;
  CHECK(status == 0, "release: %s", synod_strerror(status));
}

/* Owner 1 holds "contended", owner 2 queues for it, owner 1 releases: one
 * observation of the lock wait. */
static void contend(struct run *r) {
  job_run(r, JOB_ADD_SAME, 0); /* resets the counts */
  r->target = 1;
  CHECK(synod_async_lock_acquire(r->client, "contended", 1, 0, acquire_cb, r) ==
            0,
        "acquire");
  run_until(r, job_finished, "the first acquire");
  CHECK(synod_async_lock_acquire(r->client, "contended", 2, 30000, contended_cb,
                                 r) == 0,
        "queued acquire");
  run_until(r, one_waiter, "the second acquire queued");
  CHECK(synod_async_lock_release(r->client, "contended", 1, release_cb, r) == 0,
        "release");
  run_until(r, contended_granted, "the queued acquire's grant");
}

/* ------------------------------------------------------------- checks */

/* A histogram series: its buckets in order, cumulative, the last +Inf and
 * equal to _count. Returns the count. */
static double check_histogram(const char *text, const char *name,
                              const char *labels) {
  char prefix[256], series[256];
  snprintf(prefix, sizeof prefix, "\n%s_bucket{%s%sle=\"", name, labels,
           labels[0] ? "," : "");
  double prev = 0;
  int buckets = 0;
  const char *le = NULL;
  for (const char *p = strstr(text, prefix); p != NULL;
       p = strstr(p + 1, prefix)) {
    le = p + strlen(prefix);
    const char *value = strstr(le, "} ");
    CHECK(value != NULL, "bucket line of %s", name);
    double v = strtod(value + 2, NULL);
    CHECK(v >= prev, "%s{%s} buckets not cumulative", name, labels);
    prev = v;
    buckets++;
  }
  CHECK(buckets == HISTOGRAM_BOUNDS + 1, "%s{%s}: %d buckets", name, labels,
        buckets);
  CHECK(strncmp(le, "+Inf\"", 5) == 0, "%s{%s}: last bucket not +Inf", name,
        labels);
  snprintf(series, sizeof series, "%s_count%s%s%s", name, labels[0] ? "{" : "",
           labels, labels[0] ? "}" : "");
  CHECK(metrics_sample(text, series) == prev, "%s = %g, +Inf bucket %g", series,
        metrics_sample(text, series), prev);
  return prev;
}

static void check_roles(const char *text) {
  static const char *const roles[] = {"follower", "pre-candidate", "candidate",
                                      "leader"};
  char series[64];
  int ones = 0;
  for (int i = 0; i < 4; i++) {
    snprintf(series, sizeof series, "synod_role{role=\"%s\"}", roles[i]);
    double v = metrics_sample(text, series);
    CHECK(v == 0 || v == 1, "%s = %g", series, v);
    ones += v == 1;
  }
  CHECK(ones == 1, "%d roles are 1", ones);
  CHECK(metrics_sample(text, "synod_role{role=\"leader\"}") == 1, "not leader");
  CHECK(metrics_sample(text, "synod_is_leader") == 1, "synod_is_leader != 1");
}

static void check_values(const char *text, uint64_t objects) {
  char series[128];
  check_roles(text);
  snprintf(series, sizeof series,
           "synod_requests_total{op=\"counter_add\",code=\"SYNOD_OK\"}");
  CHECK(metrics_sample(text, series) >= ADDS + objects, "%s = %g", series,
        metrics_sample(text, series));
  snprintf(series, sizeof series,
           "synod_requests_total{op=\"lock_acquire\",code=\"SYNOD_OK\"}");
  CHECK(metrics_sample(text, series) >= objects + 2, "%s", series);
  CHECK(check_histogram(text, "synod_request_duration_seconds",
                        "op=\"counter_add\"") >= ADDS + objects,
        "counter_add durations");
  CHECK(metrics_sample(text, "synod_counters") == objects + 1,
        "synod_counters %g", metrics_sample(text, "synod_counters"));
  CHECK(metrics_sample(text, "synod_locks_held") == objects + 1,
        "locks held %g", metrics_sample(text, "synod_locks_held"));
  CHECK(metrics_sample(text, "synod_lock_waiters") == 0, "waiters");
  CHECK(metrics_sample(text, "synod_lock_grants_total") == objects + 2,
        "grants %g", metrics_sample(text, "synod_lock_grants_total"));
  CHECK(check_histogram(text, "synod_lock_wait_duration_seconds", "") == 1,
        "one queued grant");
  CHECK(metrics_sample(text, "synod_sessions") == 1, "sessions");
  CHECK(metrics_sample(text, "synod_sessions_opened_total") == 1,
        "sessions opened");
  /* JOB_KEY_PUT: key-0 .. key-(objects-1), 5 bytes of value each. */
  double key_bytes = 0;
  for (uint64_t i = 0; i < objects; i++) {
    key_bytes += (double)snprintf(NULL, 0, "key-%llu", (unsigned long long)i);
    key_bytes += 5;
  }
  CHECK(metrics_sample(text, "synod_keys") == objects, "synod_keys %g",
        metrics_sample(text, "synod_keys"));
  CHECK(metrics_sample(text, "synod_keys_bytes") == key_bytes,
        "synod_keys_bytes %g", metrics_sample(text, "synod_keys_bytes"));
  CHECK(metrics_sample(text, "synod_key_revision") == objects,
        "synod_key_revision %g", metrics_sample(text, "synod_key_revision"));
  CHECK(metrics_sample(text, "synod_key_work_keys") == 0,
        "synod_key_work_keys %g", metrics_sample(text, "synod_key_work_keys"));
  CHECK(metrics_sample(text, "synod_proposals_total") >= ADDS + 2 * objects,
        "proposals %g", metrics_sample(text, "synod_proposals_total"));
  CHECK(check_histogram(text, "synod_commit_latency_seconds", "") >=
            ADDS + 2 * objects,
        "commit latencies");
  CHECK(check_histogram(text, "synod_apply_duration_seconds", "") > 0,
        "apply durations");
  CHECK(metrics_sample(text, "synod_apply_duration_max_seconds") > 0 &&
            metrics_sample(text, "synod_apply_duration_max_seconds") <
                metrics_sample(text, "synod_apply_duration_seconds_sum") + 1e-6,
        "longest apply %g",
        metrics_sample(text, "synod_apply_duration_max_seconds"));
  CHECK(check_histogram(text, "synod_log_sync_duration_seconds", "") ==
            metrics_sample(text, "synod_log_syncs_total"),
        "one sync duration per sync");
  CHECK(metrics_sample(text, "synod_log_synced_entries_total") >=
            ADDS + 2 * objects,
        "synced entries");
  CHECK(metrics_sample(text, "synod_voters") == 1, "voters");
  CHECK(metrics_sample(text, "synod_client_connections") == 1, "connections");
  CHECK(metrics_sample(text, "synod_commit_index") ==
            metrics_sample(text, "synod_applied_index"),
        "applied behind commit at rest");
  CHECK(metrics_sample(text, "synod_process_resident_memory_bytes") > 1e6,
        "rss");
  CHECK(metrics_sample(text, "synod_process_open_fds") > 3, "fds");
  CHECK(metrics_sample(text,
                       "synod_build_info{version=\"" SYNOD_VERSION "\"}") == 1,
        "build info");
}

/* Renders RENDERS times; reports the size and the median and maximum
 * time, and returns the last text (the caller frees). */
static char *measure(struct run *r, const char *what, size_t *bytes) {
  static uint64_t us[RENDERS];
  char *text = NULL;
  for (int i = 0; i < RENDERS; i++) {
    free(text);
    uint64_t t0 = uv_hrtime();
    CHECK(node_metrics_text(r->node, &text, bytes) == 0, "render");
    us[i] = (uv_hrtime() - t0) / 1000;
  }
  for (int i = 1; i < RENDERS; i++) { /* insertion sort: 101 values */
    for (int j = i; j > 0 && us[j - 1] > us[j]; j--) {
      uint64_t t = us[j];
      us[j] = us[j - 1];
      us[j - 1] = t;
    }
  }
  printf("render %s: %zu bytes, median %llu us, max %llu us (%d renders)\n",
         what, *bytes, (unsigned long long)us[RENDERS / 2],
         (unsigned long long)us[RENDERS - 1], RENDERS);
  CHECK(strlen(text) == *bytes, "length");
  return text;
}

static void promtool_check(const char *text, const char *dir) {
  char path[PATH_MAX + 16], out[PATH_MAX + 16], cmd[3 * PATH_MAX];
  snprintf(path, sizeof path, "%s/metrics.txt", dir);
  snprintf(out, sizeof out, "%s/promtool.out", dir);
  FILE *f = fopen(path, "w");
  CHECK(f != NULL && fputs(text, f) >= 0 && fclose(f) == 0, "write %s", path);
  snprintf(cmd, sizeof cmd, "promtool check metrics < '%s'", path);
  int rv = test_sh(cmd, out, 60000);
  char *said = test_slurp(out);
  CHECK(rv == 0, "promtool check metrics exited %d:\n%s", rv, said);
  printf("promtool check metrics: ok\n%s", said);
  free(said);
}

/* ------------------------------------------------------------ set-up */

static void start_node(struct run *r, const char *dir) {
  char err[SYNOD_ERRMSG_MAX], data[PATH_MAX + 8];
  struct node_peer self = {.name = "synod-0", .address = "127.0.0.1:0"};
  snprintf(data, sizeof data, "%s/data", dir);
  struct node_options o = {.name = "synod-0",
                           .data_dir = data,
                           .client_address = "127.0.0.1:0",
                           .peer_address = "127.0.0.1:0",
                           .peers = &self,
                           .peers_n = 1};
  CHECK(uv_loop_init(&r->loop) == 0, "loop");
  CHECK(node_start(&r->loop, &o, &r->node, err) == 0, "node_start: %s", err);
  run_until(r, is_leader, "a leader");
}

static void start_client(struct run *r) {
  struct synod_options o;
  synod_options_init(&o);
  o.endpoints = client_net_listen_address(r->node->client_net);
  o.client_name = "test_metrics";
  CHECK(synod_async_new(&r->loop, &o, &r->client) == 0, "client");
}

static void client_close_cb(void *arg) {
  ((struct run *)arg)->client_closed = true;
}

static void node_stop_cb(struct node *n, void *arg) {
  (void)n;
  ((struct run *)arg)->node_stopped = true;
}

static void stop(struct run *r) {
  synod_async_close(r->client, client_close_cb, r);
  run_until(r, client_closed, "the client closed");
  node_shutdown(r->node, node_stop_cb, r);
  run_until(r, node_stopped, "the node stopped");
  uv_run(&r->loop, UV_RUN_DEFAULT);
  node_free(r->node);
  CHECK(uv_loop_close(&r->loop) == 0, "loop still has handles");
}

/* ------------------------------------------------------ three replicas */

/* The value of `name{peer="<peer>",...}`, or -1. */
static double peer_sample(const char *text, const char *name,
                          const char *peer) {
  char prefix[128];
  snprintf(prefix, sizeof prefix, "\n%s{peer=\"%s\",", name, peer);
  const char *p = strstr(text, prefix);
  const char *v = p ? strstr(p + 1, "} ") : NULL;
  return v ? strtod(v + 2, NULL) : -1;
}

static bool trio_has_leader(struct run *r) {
  for (int i = 0; i < TRIO; i++) {
    if (r->nodes[i] != NULL && r->nodes[i]->role == CORE_LEADER) {
      r->node = r->nodes[i];
      return true;
    }
  }
  return false;
}

/* The late replica installed a snapshot and caught up. */
static bool third_caught_up(struct run *r) {
  const struct node *t = r->nodes[TRIO - 1];
  return t->metrics.snapshots_received >= 1 &&
         t->applied_index >= core_commit_index(r->node->core) &&
         core_config(r->node->core)->voters_n == TRIO;
}

static void trio_start(struct run *r, struct cluster *c, int i) {
  char err[SYNOD_ERRMSG_MAX];
  struct node_peer peers[TRIO];
  for (int k = 0; k < TRIO; k++) {
    snprintf(peers[k].name, sizeof peers[k].name, "%s", c->nodes[k].name);
    snprintf(peers[k].address, sizeof peers[k].address, "%s", c->nodes[k].peer);
  }
  struct node_options o = {.name = c->nodes[i].name,
                           .data_dir = c->nodes[i].data,
                           .client_address = c->nodes[i].client,
                           .peer_address = c->nodes[i].peer,
                           .peers = peers,
                           .peers_n = TRIO,
                           .snapshot_entries = 500};
  CHECK(node_start(&r->loop, &o, &r->nodes[i], err) == 0, "node_start %d: %s",
        i, err);
}

static void trio_node_stop_cb(struct node *n, void *arg) {
  (void)n;
  ((struct run *)arg)->stopped++;
}

static bool trio_stopped(struct run *r) {
  return r->stopped == TRIO;
}

static void trio_check(struct run *r, struct cluster *c, int i,
                       const char *text) {
  for (int k = 0; k < TRIO; k++) {
    const char *peer = c->nodes[k].name;
    if (k == i) {
      continue;
    }
    CHECK(peer_sample(text, "synod_peer_up", peer) == 1, "%d: %s up", i, peer);
    if (r->nodes[i] != r->node && r->nodes[k] != r->node) {
      continue; /* followers exchange nothing past the handshake */
    }
    CHECK(peer_sample(text, "synod_peer_sent_bytes_total", peer) > 0 &&
              peer_sample(text, "synod_peer_received_bytes_total", peer) > 0,
          "%d: bytes to and from %s", i, peer);
    CHECK(peer_sample(text, "synod_peer_last_contact_seconds", peer) >= 0,
          "%d: contact with %s", i, peer);
    if (r->nodes[i] == r->node) {
      CHECK(peer_sample(text, "synod_peer_match_lag_entries", peer) >= 0,
            "leader: lag of %s", peer);
    }
  }
  if (r->nodes[i] == r->node) {
    CHECK(metrics_sample(text, "synod_snapshots_sent_total") >= 1, "sent");
    CHECK(check_histogram(text, "synod_snapshot_send_duration_seconds", "") >=
              1,
          "send durations");
  }
  if (i == TRIO - 1) {
    CHECK(metrics_sample(text, "synod_snapshots_received_total") >= 1,
          "received");
    CHECK(metrics_sample(text, "synod_snapshot_received_bytes_total") > 0,
          "bytes");
    CHECK(check_histogram(text, "synod_snapshot_receive_duration_seconds",
                          "") >= 1,
          "receive durations");
  }
  CHECK(metrics_sample(text, "synod_voters") == TRIO, "%d: voters", i);
  CHECK(i == TRIO - 1 ||
            metrics_sample(text, "synod_snapshots_taken_total") >= 1,
        "%d: taken", i);
}

static int three(void) {
  static struct run r;
  struct cluster c;
  char *text;
  size_t len;
  double leaders = 0;
  cluster_init(&c, TRIO, "in-process");
  CHECK(uv_loop_init(&r.loop) == 0, "loop");
  trio_start(&r, &c, 0);
  trio_start(&r, &c, 1);
  run_until(&r, trio_has_leader, "a leader of two");
  start_client(&r);
  job_run(&r, JOB_ADD_SAME, 3000); /* past a snapshot and its kept tail */
  trio_start(&r, &c, TRIO - 1);
  run_until(&r, third_caught_up, "the third replica caught up");
  for (int i = 0; i < TRIO; i++) {
    CHECK(node_metrics_text(r.nodes[i], &text, &len) == 0, "render %d", i);
    leaders += metrics_sample(text, "synod_is_leader");
    trio_check(&r, &c, i, text);
    promtool_check(text, c.dir);
    free(text);
  }
  CHECK(leaders == 1, "%g replicas say they lead", leaders);
  synod_async_close(r.client, client_close_cb, &r);
  run_until(&r, client_closed, "the client closed");
  for (int i = 0; i < TRIO; i++) {
    node_shutdown(r.nodes[i], trio_node_stop_cb, &r);
  }
  run_until(&r, trio_stopped, "the replicas stopped");
  uv_run(&r.loop, UV_RUN_DEFAULT);
  for (int i = 0; i < TRIO; i++) {
    node_free(r.nodes[i]);
  }
  CHECK(uv_loop_close(&r.loop) == 0, "loop still has handles");
  return 0;
}

int main(int argc, char **argv) {
  static struct run r;
  char dir[PATH_MAX];
  const char *env = getenv("SYNOD_METRICS_OBJECTS");
  uint64_t objects = env ? strtoull(env, NULL, 10) : 10000;
  size_t empty_bytes, full_bytes;
  if (test_sh("command -v promtool", "/dev/null", 10000) != 0) {
    fprintf(stderr, "SKIP: promtool not found (scripts/deps.sh --test)\n");
    return SKIP_EXIT;
  }
  const char *level = getenv("SYNOD_TEST_LOG_LEVEL");
  log_init("test", level ? (enum log_level)log_level_parse(level) : LOG_WARN);
  if (argc > 1 && strcmp(argv[1], "three") == 0) {
    return three();
  }
  test_tmpdir("metrics", dir, sizeof dir);
  start_node(&r, dir);
  start_client(&r);
  free(measure(&r, "at start", &empty_bytes));
  job_run(&r, JOB_ADD_SAME, ADDS);
  job_run(&r, JOB_ADD_MANY, objects);
  job_run(&r, JOB_LOCK_MANY, objects);
  job_run(&r, JOB_KEY_PUT, objects);
  contend(&r);
  char what[96];
  snprintf(what, sizeof what, "with %llu counters and %llu held locks",
           (unsigned long long)objects + 1, (unsigned long long)objects + 1);
  char *text = measure(&r, what, &full_bytes);
  /* Only series for the ops and codes seen were added, nothing per lock
   * or counter. */
  CHECK(full_bytes < empty_bytes + 16384, "%zu bytes, %zu at start", full_bytes,
        empty_bytes);
  check_values(text, objects);
  promtool_check(text, dir);
  const char *keep = getenv("SYNOD_METRICS_OUT");
  FILE *f = keep ? fopen(keep, "w") : NULL;
  if (f != NULL) {
    fputs(text, f);
    fclose(f);
  }
  free(text);
  stop(&r);
  return 0;
}
