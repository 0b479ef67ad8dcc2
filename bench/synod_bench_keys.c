/* synod-bench: the key workloads that are one-shot measurements, not
 * closed loops (issue 22, "Speed and scale"): memory per key after a fill
 * of --keys keys, paging through them all, and the expiry of a session
 * holding --expiry-keys keys (the leader's longest apply stall, and when a
 * watcher saw every delete). Blocking calls, on a few threads of their
 * own; every wait is bounded and stops at bench_interrupted. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "synod.h"
#include "synod_bench.h"
#include "synod_bench_etcd.h"

#define FILL_THREADS 8
#define SYNOD_TXN_OPS SYNOD_KEY_TXN_OPS_MAX /* 64 */
#define ETCD_TXN_OPS 128                    /* etcd's --max-txn-ops */
#define LIST_PAGE 10000
#define TIMEOUT_MS 30000
#define SETTLE_MS 60000
#define WATCH_WAIT_MS 120000
#define SYNOD_KEYS_MAX 1000000 /* synodd's live keys, fsm keys_max */
#define KEY_PREFIX "k/"
#define EXPIRY_PREFIX "e/"

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static double since_s(uint64_t t0) {
  return (double)(bench_now_ns() - t0) / 1e9;
}

/* "k/0000123456": 12 bytes, the "16-byte-ish" names. */
static void key_name(char *buf, size_t len, const char *prefix, uint64_t i) {
  snprintf(buf, len, "%s%010" PRIu64, prefix, i);
}

/* VmRSS of a process, and its file-backed part (RssFile: for synodd,
 * LMDB's map) in *file if not NULL. */
static uint64_t proc_rss_file(pid_t pid, uint64_t *file) {
  char path[64], line[256];
  unsigned long long kb = 0, file_kb = 0;
  FILE *f;
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  if ((f = fopen(path, "r")) == NULL) {
    return 0;
  }
  while (fgets(line, sizeof line, f) != NULL) {
    if (sscanf(line, "VmRSS: %llu kB", &kb) != 1) {
      sscanf(line, "RssFile: %llu kB", &file_kb);
    }
  }
  fclose(f);
  if (file != NULL) {
    *file = (uint64_t)file_kb * 1024;
  }
  return (uint64_t)kb * 1024;
}

static uint64_t proc_rss(pid_t pid) {
  return proc_rss_file(pid, NULL);
}

/* ------------------------------------------------------------ HTTP */

struct buf {
  char *p;
  size_t len, cap;
};

static size_t buf_write(char *p, size_t size, size_t n, void *arg) {
  struct buf *b = arg;
  size_t len = size * n;
  if (b->len + len + 1 > b->cap) {
    size_t cap = (b->len + len + 1) * 2;
    char *q = realloc(b->p, cap);
    if (q == NULL) {
      return 0;
    }
    b->p = q, b->cap = cap;
  }
  memcpy(b->p + b->len, p, len);
  b->len += len;
  b->p[b->len] = '\0';
  return len;
}

/* GET (body NULL) or POST body to url with a reused handle; the answer
 * in out (reset first). Returns 0 for HTTP 200, else -1. */
static int http_do(CURL *h, const char *url, const char *body,
                   struct buf *out) {
  long code = 0;
  out->len = 0;
  if (out->p) {
    out->p[0] = '\0';
  }
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)TIMEOUT_MS);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, buf_write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
  if (body != NULL) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
  } else {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  }
  if (curl_easy_perform(h) != CURLE_OK) {
    return -1;
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  return code == 200 && out->p != NULL ? 0 : -1;
}

/* ------------------------------------------------------------- fill */

struct fill {
  const struct bench_cluster *c;
  uint64_t keys;
  bool del;      /* synod: delete keys 0..keys-1 instead */
  uint64_t next; /* next key to hand out, under mu */
  pthread_mutex_t mu;
  int failed;
  char err[BENCH_ERRMSG_BYTES];
};

/* Hands out the next batch [*first, *first + *n); false when done. */
static bool fill_take(struct fill *f, uint64_t batch, uint64_t *first,
                      uint64_t *n) {
  bool ok;
  pthread_mutex_lock(&f->mu);
  ok = f->next < f->keys && !f->failed && !bench_interrupted;
  *first = f->next;
  *n = f->keys - f->next < batch ? f->keys - f->next : batch;
  f->next += ok ? *n : 0;
  pthread_mutex_unlock(&f->mu);
  return ok;
}

static void fill_fail(struct fill *f, const char *msg) {
  pthread_mutex_lock(&f->mu);
  if (!f->failed) {
    snprintf(f->err, sizeof f->err, "%s", msg);
  }
  f->failed = 1;
  pthread_mutex_unlock(&f->mu);
}

static void *fill_synod(void *arg) {
  struct fill *f = arg;
  struct synod_options o;
  struct synod_client *cl = NULL;
  struct synod_key_op ops[SYNOD_TXN_OPS];
  char names[SYNOD_TXN_OPS][24], value[BENCH_KEY_VALUE_BYTES + 1];
  uint64_t first, n;
  char msg[BENCH_ERRMSG_BYTES];
  int rv;

  synod_options_init(&o);
  o.endpoints = f->c->endpoints;
  o.client_name = "synod-bench fill";
  if ((rv = synod_client_new(&o, &cl)) != 0) {
    snprintf(msg, sizeof msg, "synod fill: %s", synod_errname(rv));
    fill_fail(f, msg);
    return NULL;
  }
  while (fill_take(f, SYNOD_TXN_OPS, &first, &n)) {
    struct synod_key_txn txn = {.success = ops, .success_n = n};
    bench_key_value(value, first); /* one value for the transaction */
    for (uint64_t i = 0; i < n; i++) {
      key_name(names[i], sizeof names[i], KEY_PREFIX, first + i);
      ops[i] = (struct synod_key_op){SYNOD_KEY_OP_PUT, names[i], value,
                                     BENCH_KEY_VALUE_BYTES, 0};
      if (f->del) {
        ops[i] =
            (struct synod_key_op){SYNOD_KEY_OP_DELETE, names[i], NULL, 0, 0};
      }
    }
    if ((rv = synod_key_txn(cl, &txn, TIMEOUT_MS, NULL)) != 0) {
      snprintf(msg, sizeof msg, "synod fill txn: %s: %s", synod_errname(rv),
               synod_client_errmsg());
      fill_fail(f, msg);
    }
  }
  synod_client_free(cl);
  return NULL;
}

/* One txn of up to ETCD_TXN_OPS puts, as the gateway's JSON. */
static char *etcd_fill_body(uint64_t first, uint64_t n) {
  size_t cap = n * 260 + 64, at = 0;
  char *body = malloc(cap);
  char name[24], value[BENCH_KEY_VALUE_BYTES + 1], k64[40], v64[140];
  if (body == NULL) {
    return NULL;
  }
  at += (size_t)snprintf(body, cap, "{\"success\":[");
  for (uint64_t i = 0; i < n; i++) {
    key_name(name, sizeof name, KEY_PREFIX, first + i);
    bench_key_value(value, first + i);
    etcd_b64_encode(name, strlen(name), k64, sizeof k64);
    etcd_b64_encode(value, BENCH_KEY_VALUE_BYTES, v64, sizeof v64);
    at += (size_t)snprintf(body + at, cap - at,
                           "%s{\"request_put\":{\"key\":\"%s\",\"value\":"
                           "\"%s\"}}",
                           i ? "," : "", k64, v64);
  }
  snprintf(body + at, cap - at, "]}");
  return body;
}

static void *fill_etcd(void *arg) {
  struct fill *f = arg;
  CURL *h = curl_easy_init();
  struct buf out = {0};
  uint64_t first, n;
  char url[64], msg[BENCH_ERRMSG_BYTES];

  snprintf(url, sizeof url, "http://127.0.0.1:%d/v3/kv/txn",
           f->c->client_port[f->c->leader]);
  while (h != NULL && fill_take(f, ETCD_TXN_OPS, &first, &n)) {
    char *body = etcd_fill_body(first, n);
    if (body == NULL || http_do(h, url, body, &out) != 0 ||
        strstr(out.p, "\"succeeded\":true") == NULL) {
      snprintf(msg, sizeof msg, "etcd fill txn: %.200s",
               out.p ? out.p : "no answer");
      fill_fail(f, msg);
    }
    free(body);
  }
  if (h == NULL) {
    fill_fail(f, "etcd fill: curl_easy_init");
  }
  curl_easy_cleanup(h);
  free(out.p);
  return NULL;
}

/* Puts keys 0..keys-1 under KEY_PREFIX, 100 bytes each, from
 * FILL_THREADS threads in transactions. Returns 0 or -1 with err. */
static int fill_keys(const struct bench_cluster *c, enum bench_system sys,
                     uint64_t keys, bool del, char *err, size_t len) {
  struct fill f = {.c = c, .keys = keys, .del = del};
  pthread_t t[FILL_THREADS];
  int started = 0;

  pthread_mutex_init(&f.mu, NULL);
  for (; started < FILL_THREADS; started++) {
    if (pthread_create(&t[started], NULL,
                       sys == BENCH_SYNOD ? fill_synod : fill_etcd, &f) != 0) {
      fill_fail(&f, "cannot start a fill thread");
      break;
    }
  }
  for (int i = 0; i < started; i++) {
    pthread_join(t[i], NULL);
  }
  pthread_mutex_destroy(&f.mu);
  if (f.failed || bench_interrupted) {
    snprintf(err, len, "%s", f.failed ? f.err : "interrupted");
    return -1;
  }
  return 0;
}

/* ----------------------------------------------------------- settle */

/* Every synod replica has applied what the leader had committed. */
static int settle_synod(const struct bench_cluster *c, char *err, size_t len) {
  uint64_t until = bench_now_ns() + SETTLE_MS * 1000000ull, commit = 0;
  for (int i = 0; i < BENCH_REPLICAS && !bench_interrupted; i++) {
    char ep[32];
    struct synod_options o;
    struct synod_client *cl = NULL;
    struct synod_status st;
    uint64_t applied = 0;

    synod_options_init(&o);
    snprintf(ep, sizeof ep, "127.0.0.1:%d", c->client_port[i]);
    o.endpoints = i == 0 ? c->endpoints : ep;
    if (synod_client_new(&o, &cl) == 0 && i == 0 &&
        synod_status(cl, TIMEOUT_MS, &st) == 0) {
      commit = st.commit_index;
      synod_status_free(&st);
    }
    synod_client_free(cl);
    o.endpoints = ep;
    while (applied < commit && bench_now_ns() < until && !bench_interrupted) {
      if (synod_client_new(&o, &cl) == 0 && synod_status(cl, 2000, &st) == 0) {
        applied = st.applied_index;
        synod_status_free(&st);
      }
      synod_client_free(cl);
      if (applied < commit) {
        sleep_ms(50);
      }
    }
    if (commit == 0 || applied < commit) {
      snprintf(err, len, "synod-%d applied %" PRIu64 " of %" PRIu64, i, applied,
               commit);
      return -1;
    }
  }
  return 0;
}

/* synod: the entry bytes each replica's Raft log holds in memory
 * (synod_log_memory_bytes: those not yet applied, durable and in LMDB,
 * and the newest 4 MiB), for the report: part of what the fill's VmRSS
 * growth is. */
static void synod_log_bytes(const struct bench_cluster *c, uint64_t *out) {
  CURL *h = curl_easy_init();
  struct buf text = {0};
  for (int i = 0; i < BENCH_REPLICAS; i++) {
    char url[64];
    const char *name = "\nsynod_log_memory_bytes ";
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", c->http_port[i]);
    out[i] = 0;
    const char *at = h != NULL && http_do(h, url, NULL, &text) == 0
                         ? strstr(text.p, name)
                         : NULL;
    if (at != NULL) {
      out[i] = strtoull(at + strlen(name), NULL, 10);
    }
  }
  free(text.p);
  if (h != NULL) {
    curl_easy_cleanup(h);
  }
}

/* Every etcd member holds every key (a serializable count on each). */
static int settle_etcd(const struct bench_cluster *c, uint64_t keys, char *err,
                       size_t len) {
  uint64_t until = bench_now_ns() + SETTLE_MS * 1000000ull;
  CURL *h = curl_easy_init();
  struct buf out = {0};
  char body[160], k64[16], e64[16];
  int rv = 0;

  etcd_b64_encode(KEY_PREFIX, 2, k64, sizeof k64);
  etcd_b64_encode("k0", 2, e64, sizeof e64); /* '/' + 1 */
  snprintf(body, sizeof body,
           "{\"key\":\"%s\",\"range_end\":\"%s\",\"count_only\":true,"
           "\"serializable\":true}",
           k64, e64);
  for (int i = 0; i < BENCH_REPLICAS && rv == 0; i++) {
    char url[64];
    int64_t count = 0;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v3/kv/range",
             c->client_port[i]);
    while ((uint64_t)count < keys && bench_now_ns() < until &&
           !bench_interrupted) {
      json_t *j;
      if (h != NULL && http_do(h, url, body, &out) == 0 &&
          (j = json_loads(out.p, 0, NULL)) != NULL) {
        etcd_json_i64(json_object_get(j, "count"), &count);
        json_decref(j);
      }
      if ((uint64_t)count < keys) {
        sleep_ms(50);
      }
    }
    if ((uint64_t)count < keys) {
      snprintf(err, len, "etcd member e%d holds %" PRId64 " of %" PRIu64, i,
               count, keys);
      rv = -1;
    }
  }
  curl_easy_cleanup(h);
  free(out.p);
  return rv;
}

/* ------------------------------------------------------------- list */

/* Pages through every key under KEY_PREFIX, keys only, LIST_PAGE a page,
 * linearizable (each system's default). Returns the keys seen. */
static uint64_t list_synod(const struct bench_cluster *c, char *err,
                           size_t len) {
  struct synod_options o;
  struct synod_client *cl = NULL;
  char after[SYNOD_KEY_BYTES_MAX + 1] = "";
  uint64_t seen = 0;
  bool more = true;
  int rv;

  synod_options_init(&o);
  o.endpoints = c->endpoints;
  if ((rv = synod_client_new(&o, &cl)) != 0) {
    snprintf(err, len, "synod list: %s", synod_errname(rv));
    return 0;
  }
  while (more && !bench_interrupted) {
    struct synod_key_list l;
    rv = synod_key_list(cl, KEY_PREFIX, after, LIST_PAGE, SYNOD_KEY_KEYS_ONLY,
                        TIMEOUT_MS, &l);
    if (rv != 0) {
      snprintf(err, len, "synod list: %s: %s", synod_errname(rv),
               synod_client_errmsg());
      break;
    }
    seen += l.count;
    more = l.more && l.count > 0;
    if (l.count > 0) {
      snprintf(after, sizeof after, "%s", l.kvs[l.count - 1].key);
    }
    synod_key_list_free(&l);
  }
  synod_client_free(cl);
  return seen;
}

static uint64_t list_etcd(const struct bench_cluster *c, char *err,
                          size_t len) {
  CURL *h = curl_easy_init();
  struct buf out = {0};
  char url[64], body[256], from64[64], end64[16], last[64];
  uint64_t seen = 0;
  bool more = true;

  snprintf(url, sizeof url, "http://127.0.0.1:%d/v3/kv/range",
           c->client_port[c->leader]);
  etcd_b64_encode(KEY_PREFIX, 2, from64, sizeof from64);
  etcd_b64_encode("k0", 2, end64, sizeof end64);
  while (h != NULL && more && !bench_interrupted) {
    json_t *j, *kvs;
    size_t n;
    snprintf(body, sizeof body,
             "{\"key\":\"%s\",\"range_end\":\"%s\",\"limit\":%d,"
             "\"keys_only\":true}",
             from64, end64, LIST_PAGE);
    if (http_do(h, url, body, &out) != 0 ||
        (j = json_loads(out.p, 0, NULL)) == NULL) {
      snprintf(err, len, "etcd list: %.200s", out.p ? out.p : "no answer");
      break;
    }
    kvs = json_object_get(j, "kvs");
    n = json_array_size(kvs);
    seen += n;
    more = json_is_true(json_object_get(j, "more")) && n > 0;
    if (n > 0) {
      const char *k64 =
          json_string_value(json_object_get(json_array_get(kvs, n - 1), "key"));
      int k = k64 ? etcd_b64_decode(k64, last, sizeof last - 1) : -1;
      if (k < 0) {
        more = false;
      } else { /* the next page starts just after: key + "\0" */
        etcd_b64_encode(last, (size_t)k + 1, from64, sizeof from64);
      }
    }
    json_decref(j);
  }
  curl_easy_cleanup(h);
  free(out.p);
  return seen;
}

/* ----------------------------------------------------------- scale */

static void scale_one(const struct bench_cluster *c, enum bench_system sys,
                      struct bench_keys_result *res) {
  struct bench_keys_system *s = &res->sys[sys];
  uint64_t before[BENCH_REPLICAS], before_file[BENCH_REPLICAS], t0;
  char err[BENCH_ERRMSG_BYTES] = "";

  for (int i = 0; i < BENCH_REPLICAS; i++) {
    before[i] = proc_rss_file(c->procs[i].pid, &before_file[i]);
  }
  fprintf(stderr, "synod-bench: keys: filling %" PRIu64 " keys into %s ...\n",
          res->keys, c->system);
  t0 = bench_now_ns();
  if (fill_keys(c, sys, res->keys, false, err, sizeof err) != 0 ||
      (sys == BENCH_SYNOD ? settle_synod(c, err, sizeof err)
                          : settle_etcd(c, res->keys, err, sizeof err)) != 0) {
    snprintf(s->note, sizeof s->note, "%s", err);
    s->failed = true;
    return;
  }
  s->fill_s = since_s(t0);
  sleep_ms(1000);
  for (int i = 0; i < BENCH_REPLICAS; i++) {
    uint64_t file = 0, after = proc_rss_file(c->procs[i].pid, &file);
    s->rss_file_per_key[i] =
        ((double)file - (double)before_file[i]) / (double)res->keys;
    s->rss_per_key[i] = ((double)after - (double)before[i]) / (double)res->keys;
  }
  if (sys == BENCH_SYNOD) {
    synod_log_bytes(c, s->log_bytes);
  }
  s->scale_ran = true;
  t0 = bench_now_ns();
  s->listed = sys == BENCH_SYNOD ? list_synod(c, err, sizeof err)
                                 : list_etcd(c, err, sizeof err);
  s->list_s = since_s(t0);
  if (s->listed != res->keys) {
    snprintf(s->note, sizeof s->note,
             "listed %" PRIu64 " of %" PRIu64 "%s%.150s", s->listed, res->keys,
             err[0] ? ": " : "", err);
    s->failed = true;
  }
  fprintf(stderr,
          "synod-bench: keys: %s filled in %.1f s, listed %" PRIu64
          " in %.2f s\n",
          c->system, s->fill_s, s->listed, s->list_s);
}

/* ----------------------------------------------------------- expiry */

/* What one replica's /metrics says of its applies. */
#define APPLY_BOUNDS 19 /* finite buckets: server/util/histogram.c */
static const char *const apply_le[APPLY_BOUNDS] = {
    "0.00001", "0.000025", "0.00005", "0.0001", "0.00025", "0.0005", "0.001",
    "0.0025",  "0.005",    "0.01",    "0.025",  "0.05",    "0.1",    "0.25",
    "0.5",     "1",        "2.5",     "5",      "10"};

struct apply_stats {
  double max_s;              /* synod_apply_duration_max_seconds */
  uint64_t count;            /* batches applied */
  uint64_t le[APPLY_BOUNDS]; /* ... cumulative, by bucket */
  uint64_t le_10ms;          /* ... of which took at most 10 ms */
  uint64_t work_keys;
  uint64_t snapshots; /* taken since start, each encoded on the loop */
};

static double metric(const char *text, const char *series) {
  size_t n = strlen(series);
  for (const char *p = text; p != NULL; p = strchr(p, '\n')) {
    p += *p == '\n';
    if (strncmp(p, series, n) == 0 && p[n] == ' ') {
      return strtod(p + n + 1, NULL);
    }
  }
  return -1;
}

static int apply_stats_get(const struct bench_cluster *c, int i,
                           struct apply_stats *st) {
  CURL *h = curl_easy_init();
  struct buf out = {0};
  char url[64];
  int rv = -1;

  snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", c->http_port[i]);
  if (h != NULL && http_do(h, url, NULL, &out) == 0) {
    st->max_s = metric(out.p, "synod_apply_duration_max_seconds");
    st->count = (uint64_t)metric(out.p, "synod_apply_duration_seconds_count");
    for (int b = 0; b < APPLY_BOUNDS; b++) {
      char series[96];
      snprintf(series, sizeof series,
               "synod_apply_duration_seconds_bucket{le=\"%s\"}", apply_le[b]);
      st->le[b] = (uint64_t)metric(out.p, series);
    }
    st->le_10ms = st->le[9];
    st->work_keys = (uint64_t)metric(out.p, "synod_key_work_keys");
    st->snapshots =
        (uint64_t)metric(out.p, "synod_snapshot_save_duration_seconds_count");
    rv = st->max_s < 0 ? -1 : 0;
  }
  curl_easy_cleanup(h);
  free(out.p);
  return rv;
}

/* The upper bound of the highest bucket that gained a batch between two
 * scrapes: the longest apply in between took at most that. 0: none
 * applied; -1: one took over 10 s. */
static double apply_longest(const struct apply_stats *a,
                            const struct apply_stats *b) {
  uint64_t below = b->count - a->count; /* batches at most the bound */
  if (below == 0) {
    return 0;
  }
  for (int i = APPLY_BOUNDS - 1; i >= 0; i--) {
    uint64_t n = b->le[i] - a->le[i];
    if (n < below) {
      return i == APPLY_BOUNDS - 1 ? -1 : strtod(apply_le[i + 1], NULL);
    }
  }
  return strtod(apply_le[0], NULL);
}

/* The watcher thread: counts deletes until `want`, bounded. */
struct watcher {
  uint64_t want;
  uint64_t deletes;
  uint64_t t_last_ns; /* when the last delete wanted came */
  int rv;
  char err[BENCH_ERRMSG_BYTES];
  struct synod_key_watch *w; /* owned by expiry_synod */
};

static void *watch_main(void *arg) {
  struct watcher *wa = arg;
  uint64_t until = bench_now_ns() + WATCH_WAIT_MS * 1000000ull;
  while (wa->deletes < wa->want && bench_now_ns() < until &&
         !bench_interrupted) {
    struct synod_key_event ev;
    int rv = synod_key_watch_next(wa->w, 500, &ev);
    if (rv == SYNOD_ETIMEDOUT) {
      continue;
    }
    if (rv != 0) {
      snprintf(wa->err, sizeof wa->err, "watch: %s", synod_errname(rv));
      wa->rv = -1;
      break;
    }
    if (ev.deleted && ++wa->deletes == wa->want) {
      wa->t_last_ns = bench_now_ns();
    }
  }
  return NULL;
}

/* Binds n keys under EXPIRY_PREFIX to one client's session. */
static int bind_keys(struct synod_client *cl, uint64_t n, char *err,
                     size_t len) {
  struct synod_key_op ops[SYNOD_TXN_OPS];
  char names[SYNOD_TXN_OPS][24], value[BENCH_KEY_VALUE_BYTES + 1];
  for (uint64_t first = 0; first < n && !bench_interrupted;
       first += SYNOD_TXN_OPS) {
    uint64_t k = n - first < SYNOD_TXN_OPS ? n - first : SYNOD_TXN_OPS;
    struct synod_key_txn txn = {.success = ops, .success_n = k};
    int rv;
    bench_key_value(value, first); /* one value for the transaction */
    for (uint64_t i = 0; i < k; i++) {
      key_name(names[i], sizeof names[i], EXPIRY_PREFIX, first + i);
      ops[i] =
          (struct synod_key_op){SYNOD_KEY_OP_PUT, names[i], value,
                                BENCH_KEY_VALUE_BYTES, SYNOD_KEY_SESSION_BOUND};
    }
    if ((rv = synod_key_txn(cl, &txn, TIMEOUT_MS, NULL)) != 0) {
      snprintf(err, len, "bind: %s: %s", synod_errname(rv),
               synod_client_errmsg());
      return -1;
    }
  }
  return bench_interrupted ? -1 : 0;
}

/* After the close: writes a key every 10 ms (the store takes ended
 * sessions' keys out over the entries that follow, a bounded number per
 * entry) until the leader's work list is empty, at most SETTLE_MS. */
static void expiry_drain(const struct bench_cluster *c, int leader,
                         struct synod_client *cl, const char *key) {
  uint64_t until = bench_now_ns() + SETTLE_MS * 1000000ull;
  struct apply_stats st = {.work_keys = 1};
  char value[BENCH_KEY_VALUE_BYTES + 1];
  bench_key_value(value, 0);
  while (st.work_keys > 0 && bench_now_ns() < until && !bench_interrupted) {
    synod_key_put(cl, key, value, BENCH_KEY_VALUE_BYTES, 0, NULL, 0, TIMEOUT_MS,
                  NULL);
    sleep_ms(10);
    if (apply_stats_get(c, leader, &st) != 0) {
      st.work_keys = 1;
    }
  }
}

static int leader_index(const struct bench_cluster *c,
                        struct synod_client *cl) {
  struct synod_status st;
  int leader = c->leader;
  if (synod_status(cl, TIMEOUT_MS, &st) == 0) {
    for (int i = 0; i < BENCH_REPLICAS; i++) {
      if (strcmp(st.leader_name ? st.leader_name : "", c->procs[i].name) == 0) {
        leader = i;
      }
    }
    synod_status_free(&st);
  }
  return leader;
}

static void expiry_synod(const struct bench_cluster *c,
                         struct bench_keys_result *res) {
  struct bench_keys_expiry *x = &res->expiry;
  struct synod_options o;
  struct synod_client *owner = NULL, *other = NULL;
  struct watcher wa = {.want = res->expiry_keys};
  struct synod_key_watch_options wo = {.key = EXPIRY_PREFIX, .prefix = true};
  struct apply_stats before[BENCH_REPLICAS], after[BENCH_REPLICAS];
  pthread_t t;
  uint64_t t0;
  char drain[24];
  int leader, rv;

  synod_options_init(&o);
  o.endpoints = c->endpoints;
  o.client_name = "synod-bench expiry";
  if ((rv = synod_client_new(&o, &owner)) != 0 ||
      (rv = synod_client_new(&o, &other)) != 0) {
    snprintf(x->note, sizeof x->note, "client: %s", synod_errname(rv));
    goto fail;
  }
  fprintf(stderr,
          "synod-bench: keys: binding %" PRIu64 " keys to one session ...\n",
          res->expiry_keys);
  if (bind_keys(owner, res->expiry_keys, x->note, sizeof x->note) != 0) {
    goto fail;
  }
  if ((rv = synod_key_watch(other, &wo, TIMEOUT_MS, &wa.w, NULL)) != 0) {
    snprintf(x->note, sizeof x->note, "watch: %s: %s", synod_errname(rv),
             synod_client_errmsg());
    goto fail;
  }
  leader = leader_index(c, other);
  x->leader = leader;
  for (int i = 0; i < BENCH_REPLICAS; i++) {
    if (apply_stats_get(c, i, &before[i]) != 0) {
      snprintf(x->note, sizeof x->note, "synod-%d: no apply metrics", i);
      goto fail;
    }
  }
  if (pthread_create(&t, NULL, watch_main, &wa) != 0) {
    snprintf(x->note, sizeof x->note, "cannot start the watcher");
    goto fail;
  }
  t0 = bench_now_ns();
  synod_client_free(owner); /* closes the session: its keys go */
  owner = NULL;
  x->close_s = since_s(t0);
  pthread_join(t, NULL);
  x->watch_deletes = wa.deletes;
  x->watch_all_s = wa.t_last_ns ? (double)(wa.t_last_ns - t0) / 1e9 : -1;
  key_name(drain, sizeof drain, KEY_PREFIX, res->keys - 1);
  expiry_drain(c, leader, other, drain);
  for (int i = 0; i < BENCH_REPLICAS; i++) {
    if (apply_stats_get(c, i, &after[i]) != 0) {
      snprintf(x->note, sizeof x->note, "synod-%d: no apply metrics", i);
      goto fail;
    }
    x->max_before_s[i] = before[i].max_s;
    x->max_after_s[i] = after[i].max_s;
    x->batches[i] = after[i].count - before[i].count;
    x->over_10ms[i] = (after[i].count - after[i].le_10ms) -
                      (before[i].count - before[i].le_10ms);
    x->work_left[i] = after[i].work_keys;
    x->snapshots[i] = after[i].snapshots - before[i].snapshots;
    x->longest_le_s[i] = apply_longest(&before[i], &after[i]);
  }
  x->ran = true;
  if (wa.deletes != res->expiry_keys) {
    snprintf(x->note, sizeof x->note,
             "the watcher saw %" PRIu64 " of %" PRIu64 " deletes%s%.150s",
             wa.deletes, res->expiry_keys, wa.err[0] ? ": " : "", wa.err);
    x->failed = true;
  }
  synod_key_watch_close(wa.w);
  synod_client_free(other);
  return;
fail:
  x->failed = true;
  synod_key_watch_close(wa.w);
  synod_client_free(owner);
  synod_client_free(other);
}

/* ------------------------------------------------------------ redis */

#define REDIS_PIPELINE 1000

static int redis_connect(int port) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    close(fd);
    fd = -1;
  }
  return fd;
}

/* Sends n SETs of keys first.. and reads their n replies (lines). */
static int redis_batch(int fd, uint64_t first, uint64_t n) {
  static char req[REDIS_PIPELINE * 160], resp[65536];
  char name[24], value[BENCH_KEY_VALUE_BYTES + 1];
  size_t at = 0, lines = 0;
  for (uint64_t i = 0; i < n; i++) {
    key_name(name, sizeof name, KEY_PREFIX, first + i);
    bench_key_value(value, first + i);
    at += (size_t)snprintf(req + at, sizeof req - at,
                           "*3\r\n$3\r\nSET\r\n$%zu\r\n%s\r\n$%d\r\n%s\r\n",
                           strlen(name), name, BENCH_KEY_VALUE_BYTES, value);
  }
  for (size_t sent = 0; sent < at;) {
    ssize_t w = write(fd, req + sent, at - sent);
    if (w <= 0) {
      return -1;
    }
    sent += (size_t)w;
  }
  while (lines < n) {
    ssize_t r = read(fd, resp, sizeof resp);
    if (r <= 0 || resp[0] == '-') {
      return -1;
    }
    for (ssize_t i = 0; i < r; i++) {
      lines += resp[i] == '\n';
    }
  }
  return 0;
}

/* One redis-server, the same keys and values: its VmRSS growth per key
 * (issue 22 quotes Redis 7's ~56 B per small key). */
static void redis_scale(const char *redis, const char *dir,
                        struct bench_keys_result *res) {
  struct bench_proc p;
  uint64_t until, before;
  int port, fd = -1;

  if (bench_redis_start(&p, redis, dir, &port, res->redis_note,
                        sizeof res->redis_note) != 0) {
    return;
  }
  until = bench_now_ns() + 10000000000ull;
  while ((fd = redis_connect(port)) < 0 && bench_now_ns() < until) {
    sleep_ms(50);
  }
  before = proc_rss(p.pid);
  fprintf(stderr, "synod-bench: keys: filling %" PRIu64 " keys into redis\n",
          res->keys);
  for (uint64_t first = 0; fd >= 0 && first < res->keys && !bench_interrupted;
       first += REDIS_PIPELINE) {
    uint64_t n =
        res->keys - first < REDIS_PIPELINE ? res->keys - first : REDIS_PIPELINE;
    if (redis_batch(fd, first, n) != 0) {
      snprintf(res->redis_note, sizeof res->redis_note, "redis SET failed");
      close(fd);
      fd = -1;
    }
  }
  if (fd >= 0 && !bench_interrupted) {
    sleep_ms(1000);
    res->redis_per_key =
        ((double)proc_rss(p.pid) - (double)before) / (double)res->keys;
    res->redis_ran = true;
  } else if (res->redis_note[0] == '\0') {
    snprintf(res->redis_note, sizeof res->redis_note, "cannot connect");
  }
  if (fd >= 0) {
    close(fd);
  }
  bench_proc_stop(&p);
}

/* ------------------------------------------------------------- main */

/* synodd holds at most 1,000,000 live keys (fsm keys_max): before the
 * fill, the keys of the key-put and key-get runs go, so that the fill
 * can reach a million. */
static void synod_clean(const struct bench_cluster *c) {
  struct synod_options o;
  struct synod_client *cl = NULL;
  synod_options_init(&o);
  o.endpoints = c->endpoints;
  if (synod_client_new(&o, &cl) == 0 &&
      synod_key_delete(cl, "bench-", SYNOD_KEY_PREFIX, NULL, 0, TIMEOUT_MS,
                       NULL) != 0) {
    fprintf(stderr, "synod-bench: keys: cannot delete bench-*: %s\n",
            synod_client_errmsg());
  }
  synod_client_free(cl);
}

/* The fill first, on stores that hold only the key-put and key-get keys
 * (deleted before it), so that no memory freed earlier is reused by it
 * unseen. Then the expiry, on the filled store: synodd holds at most
 * 1,000,000 live keys (fsm keys_max), so the first --expiry-keys of the
 * fill go to make room for the session's keys. */
void bench_keys_run(const struct bench_cluster *clusters, const bool *run,
                    bool scale, bool expiry, const char *redis, const char *dir,
                    struct bench_keys_result *res) {
  const struct bench_cluster *sc = &clusters[BENCH_SYNOD];
  char err[BENCH_ERRMSG_BYTES];
  if (scale && run[BENCH_SYNOD]) {
    synod_clean(sc);
  }
  for (int sys = 0; scale && sys < BENCH_SYSTEMS; sys++) {
    if (run[sys] && !bench_interrupted) {
      scale_one(&clusters[sys], sys, res);
    }
  }
  if (scale && redis != NULL && !bench_interrupted) {
    redis_scale(redis, dir, res);
  }
  if (!expiry || !run[BENCH_SYNOD] || bench_interrupted) {
    return;
  }
  if (res->sys[BENCH_SYNOD].scale_ran &&
      res->keys + res->expiry_keys > SYNOD_KEYS_MAX &&
      fill_keys(sc, BENCH_SYNOD,
                res->expiry_keys < res->keys ? res->expiry_keys : res->keys,
                true, err, sizeof err) != 0) {
    fprintf(stderr, "synod-bench: keys: cannot make room: %s\n", err);
  }
  expiry_synod(sc, res);
}
