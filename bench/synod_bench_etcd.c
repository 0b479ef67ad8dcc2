/* synod-bench: the etcd load generator. N HTTP/1.1 keep-alive clients of
 * etcd's v3 JSON gateway on one libcurl multi handle, driven from one
 * thread, each with exactly one operation in flight.
 *
 * An operation is what a client of etcd has to do for the same job:
 *  - counter add: range the key, then a txn that puts value+1 if the key's
 *    mod_revision is unchanged and else ranges it again (so a retry needs
 *    no extra read); repeated until a txn succeeds;
 *  - lock + unlock: /v3/lock/lock with a lease granted once per client,
 *    then /v3/lock/unlock, as `etcdctl lock` does;
 *  - key put: /v3/kv/put of 100 bytes to the client's own key;
 *  - key get: /v3/kv/range of that key (linearizable, etcd's default),
 *    after one uncounted put that creates it. */
#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "synod_bench.h"
#include "synod_bench_etcd.h"

#define LEASE_TTL_S 60
#define REQUEST_TIMEOUT_MS 15000L
#define POLL_MS 10

enum phase { PHASE_RUN, PHASE_DRAIN, PHASE_FINISH, PHASE_DONE };

enum step {
  STEP_GRANT,  /* lease for the lock workload, once per client */
  STEP_RANGE,  /* counter: read value and mod_revision */
  STEP_TXN,    /* counter: compare mod_revision, put value+1 */
  STEP_LOCK,   /* lock: acquire, returns the owner key */
  STEP_UNLOCK, /* lock: release the owner key */
  STEP_VERIFY, /* after the run: counter-own reads its counter back */
  STEP_REVOKE, /* after the run: revoke the lease */
  STEP_PUT,    /* key-put, and key-get's first (uncounted) put */
  STEP_GET     /* key-get: range the client's key */
};

struct ebench;

struct eclient {
  struct ebench *b;
  CURL *easy;
  int port;          /* the member this client talks to */
  char key64[160];   /* base64 counter key or lock name */
  char lease[24];    /* decimal lease id, "" before the grant */
  char owner64[512]; /* base64 key /v3/lock/lock returned */
  char *body;        /* request in flight; owned, freed on reuse */
  char resp[ETCD_RESPONSE_MAX];
  size_t resp_len;
  int64_t value;        /* counter value read */
  int64_t mod_revision; /* ... and its mod_revision */
  uint64_t op_start_ns;
  uint64_t ok;           /* successful ops, whole run */
  int64_t last_revision; /* key-put: revisions must grow */
  bool key_ready;        /* key-get: the key was put */
  int errors_in_a_row;
  enum step step;
};

struct ebench {
  CURLM *multi;
  struct curl_slist *headers;
  struct bench_run *r;
  struct eclient *clients;
  char shared64[160];   /* counter-shared's key, base64 */
  uint64_t t_window_ns; /* measured window: [t_window, t_end) */
  uint64_t t_end_ns;
  enum phase phase;
  int busy; /* clients with an op (or finish step) out */
};

static void client_next(struct eclient *c);

/* -------------------------------------------------------------- requests */

/* Sends `body` (consumed) to path on the client's member. Returns 0, or
 * -1 if it could not be queued. */
static int send_req(struct eclient *c, enum step step, const char *path,
                    json_t *body) {
  char url[96];

  free(c->body);
  c->body = body ? json_dumps(body, JSON_COMPACT) : NULL;
  json_decref(body);
  if (c->body == NULL) {
    return -1;
  }
  c->step = step;
  c->resp_len = 0;
  c->resp[0] = '\0';
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", c->port, path);
  curl_easy_setopt(c->easy, CURLOPT_URL, url);
  curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, c->body);
  curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(c->body));
  return curl_multi_add_handle(c->b->multi, c->easy) == CURLM_OK ? 0 : -1;
}

static const char *op_key(const struct eclient *c) {
  return c->b->r->workload == BENCH_COUNTER_SHARED ? c->b->shared64 : c->key64;
}

static int send_range(struct eclient *c, enum step step) {
  return send_req(c, step, "/v3/kv/range",
                  json_pack("{s:s}", "key", op_key(c)));
}

static int send_txn(struct eclient *c) {
  const char *k = op_key(c);
  char rev[24], text[24], v64[40];

  snprintf(rev, sizeof rev, "%" PRId64, c->mod_revision);
  snprintf(text, sizeof text, "%" PRId64, c->value + 1);
  etcd_b64_encode(text, strlen(text), v64, sizeof v64);
  return send_req(
      c, STEP_TXN, "/v3/kv/txn",
      json_pack("{s:[{s:s,s:s,s:s,s:s}],s:[{s:{s:s,s:s}}],s:[{s:{s:s}}]}",
                "compare", "key", k, "result", "EQUAL", "target", "MOD",
                "mod_revision", rev, "success", "request_put", "key", k,
                "value", v64, "failure", "request_range", "key", k));
}

static int send_lock(struct eclient *c) {
  return send_req(c, STEP_LOCK, "/v3/lock/lock",
                  json_pack("{s:s,s:s}", "name", c->key64, "lease", c->lease));
}

static int send_key_op(struct eclient *c) {
  char value[BENCH_KEY_VALUE_BYTES + 1], v64[4 * BENCH_KEY_VALUE_BYTES / 3 + 8];
  if (c->b->r->workload == BENCH_KEY_GET && c->key_ready) {
    return send_range(c, STEP_GET);
  }
  bench_key_value(value, c->b->r->workload == BENCH_KEY_GET ? 0 : c->ok + 1);
  etcd_b64_encode(value, BENCH_KEY_VALUE_BYTES, v64, sizeof v64);
  return send_req(c, STEP_PUT, "/v3/kv/put",
                  json_pack("{s:s,s:s}", "key", c->key64, "value", v64));
}

static int op_start(struct eclient *c) {
  c->op_start_ns = bench_now_ns();
  if (c->b->r->workload == BENCH_KEY_PUT ||
      c->b->r->workload == BENCH_KEY_GET) {
    return send_key_op(c);
  }
  if (c->b->r->workload != BENCH_LOCK) {
    return send_range(c, STEP_RANGE);
  }
  if (c->lease[0] == '\0') {
    return send_req(c, STEP_GRANT, "/v3/lease/grant",
                    json_pack("{s:i}", "TTL", LEASE_TTL_S));
  }
  return send_lock(c);
}

/* ------------------------------------------------------------- results */

/* Counts one finished operation and records its latency if it completed
 * in the measured window; then starts the next one. */
static void op_done(struct eclient *c) {
  struct ebench *b = c->b;
  uint64_t now = bench_now_ns();

  c->ok++;
  c->errors_in_a_row = 0;
  b->r->ops_total++;
  if (now >= b->t_window_ns && now < b->t_end_ns) {
    b->r->ops++;
    bench_hist_record(&b->r->hist, (now - c->op_start_ns) / 1000);
  }
  client_next(c);
}

/* A step failed: counts it and starts the operation over (a new range,
 * or a new lock call). */
static void op_failed(struct eclient *c, const char *what) {
  c->b->r->errors++;
  c->errors_in_a_row++;
  if (c->step == STEP_TXN) {
    c->b->r->unknown++;
  }
  bench_run_error(c->b->r, "etcd %s: %.200s", what, c->resp);
  client_next(c);
}

static void on_txn(struct eclient *c, const json_t *j) {
  const json_t *range;
  uint64_t now = bench_now_ns();

  if (json_is_true(json_object_get(j, "succeeded"))) {
    op_done(c);
    return;
  }
  if (now >= c->b->t_window_ns && now < c->b->t_end_ns) {
    c->b->r->conflicts++;
  }
  range = json_object_get(json_array_get(json_object_get(j, "responses"), 0),
                          "response_range");
  if (etcd_kv_read(range, &c->value, &c->mod_revision) != 0 ||
      send_txn(c) != 0) {
    op_failed(c, "txn failure branch");
  }
}

static void key_fail(struct eclient *c, const char *what) {
  snprintf(c->b->r->verify_msg, sizeof c->b->r->verify_msg,
           "etcd key-%s: %.200s", what, c->resp);
  c->b->r->verify = BENCH_VERIFY_FAIL;
}

/* A put's header carries the store's revision after it: it must grow. */
static void on_put(struct eclient *c, const json_t *j) {
  int64_t rev = 0;
  if (etcd_json_i64(json_object_get(json_object_get(j, "header"), "revision"),
                    &rev) != 0 ||
      rev <= c->last_revision) {
    key_fail(c, "put revision");
  }
  c->last_revision = rev;
  if (c->b->r->workload == BENCH_KEY_GET && !c->key_ready) {
    c->key_ready = true;
    client_next(c);
    return;
  }
  op_done(c);
}

/* The key holds what the client put before the run. */
static void on_get(struct eclient *c, const json_t *j) {
  const json_t *kv = json_array_get(json_object_get(j, "kvs"), 0);
  const char *v64 = json_string_value(json_object_get(kv, "value"));
  char want[BENCH_KEY_VALUE_BYTES + 1], got[2 * BENCH_KEY_VALUE_BYTES];
  bench_key_value(want, 0);
  if (v64 == NULL ||
      etcd_b64_decode(v64, got, sizeof got) != BENCH_KEY_VALUE_BYTES ||
      memcmp(got, want, BENCH_KEY_VALUE_BYTES) != 0) {
    key_fail(c, "get value");
  }
  op_done(c);
}

static void on_step(struct eclient *c, const json_t *j) {
  const char *s;
  switch (c->step) {
  case STEP_PUT:
    on_put(c, j);
    break;
  case STEP_GET:
    on_get(c, j);
    break;
  case STEP_RANGE:
    if (etcd_kv_read(j, &c->value, &c->mod_revision) != 0 || send_txn(c) != 0) {
      op_failed(c, "range");
    }
    break;
  case STEP_TXN:
    on_txn(c, j);
    break;
  case STEP_GRANT:
    s = json_string_value(json_object_get(j, "ID"));
    snprintf(c->lease, sizeof c->lease, "%s", s ? s : "");
    if (s == NULL || send_lock(c) != 0) {
      op_failed(c, "lease grant");
    }
    break;
  case STEP_LOCK:
    s = json_string_value(json_object_get(j, "key"));
    snprintf(c->owner64, sizeof c->owner64, "%s", s ? s : "");
    if (s == NULL || send_req(c, STEP_UNLOCK, "/v3/lock/unlock",
                              json_pack("{s:s}", "key", c->owner64)) != 0) {
      op_failed(c, "lock");
    }
    break;
  case STEP_UNLOCK:
    op_done(c);
    break;
  default:
    break;
  }
}

/* -------------------------------------------------------- end of a run */

static void finish_done(struct eclient *c) {
  if (--c->b->busy == 0) {
    c->b->phase = PHASE_DONE;
  }
}

/* Compares a client's own counter read back with the adds it saw
 * succeed; a txn that failed in transport may or may not have been
 * applied. */
static void on_verify(struct eclient *c, const json_t *j) {
  struct bench_run *r = c->b->r;
  uint64_t want = c->ok;
  int64_t value, rev;

  if (j == NULL || etcd_kv_read(j, &value, &rev) != 0) {
    r->verify = BENCH_VERIFY_FAIL;
    snprintf(r->verify_msg, sizeof r->verify_msg,
             "cannot read the counter back: %.200s", c->resp);
  } else if (value < 0 || (uint64_t)value < want ||
             (uint64_t)value > want + r->unknown) {
    r->verify = BENCH_VERIFY_FAIL;
    snprintf(r->verify_msg, sizeof r->verify_msg,
             "etcd counter = %" PRId64 " but %" PRIu64 " updates succeeded",
             value, want);
  } else if (r->verify == BENCH_VERIFY_NONE) {
    r->verify = BENCH_VERIFY_OK;
  }
  finish_done(c);
}

/* After the drain: counter-own reads each client's counter back (the
 * harness reads counter-shared's once every generator is done); the lock
 * workload revokes each client's lease. */
static void bench_finish(struct ebench *b) {
  b->phase = PHASE_FINISH;
  for (int i = 0; i < b->r->clients && !b->r->aborted; i++) {
    struct eclient *c = &b->clients[i];
    int rv = 0;
    if (b->r->workload == BENCH_LOCK && c->lease[0] != '\0') {
      rv = send_req(c, STEP_REVOKE, "/v3/lease/revoke",
                    json_pack("{s:s}", "ID", c->lease));
    } else if (b->r->workload == BENCH_COUNTER_OWN) {
      rv = send_range(c, STEP_VERIFY);
    } else {
      continue;
    }
    b->busy += rv == 0;
  }
  if ((b->r->workload == BENCH_KEY_PUT || b->r->workload == BENCH_KEY_GET) &&
      b->r->verify == BENCH_VERIFY_NONE) {
    b->r->verify = BENCH_VERIFY_OK; /* every answer checked as it came */
  }
  if (b->busy == 0) {
    b->phase = PHASE_DONE;
  }
}

/* The closed loop: the client's previous op finished (or failed); start
 * the next one while the run lasts, else go idle. */
static void client_next(struct eclient *c) {
  struct ebench *b = c->b;
  while (b->phase == PHASE_RUN && !bench_interrupted &&
         c->errors_in_a_row < BENCH_ERRORS_IN_A_ROW_MAX) {
    if (op_start(c) == 0) {
      return;
    }
    b->r->errors++;
    c->errors_in_a_row++;
    bench_run_error(b->r, "cannot queue an etcd request");
  }
  if (--b->busy == 0 && b->phase == PHASE_DRAIN) {
    bench_finish(b);
  }
}

/* ------------------------------------------------------------ the loop */

static const char *const step_names[] = {"lease grant",  "range",   "txn",
                                         "lock",         "unlock",  "verify",
                                         "lease revoke", "key put", "key get"};

/* One HTTP exchange finished: turn transport and HTTP errors into a
 * message in c->resp, else parse the reply, and hand it to its step. */
static void on_transfer(struct eclient *c, CURLcode res) {
  char msg[ETCD_RESPONSE_MAX];
  long code = 0;
  json_t *j = NULL;

  curl_multi_remove_handle(c->b->multi, c->easy);
  if (res != CURLE_OK) {
    snprintf(c->resp, sizeof c->resp, "%s", curl_easy_strerror(res));
  } else if (curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &code),
             code != 200) {
    snprintf(msg, sizeof msg, "HTTP %ld: %.1000s", code, c->resp);
    memcpy(c->resp, msg, sizeof c->resp);
  } else if ((j = json_loadb(c->resp, c->resp_len, 0, NULL)) == NULL) {
    snprintf(msg, sizeof msg, "bad JSON: %.200s", c->resp);
    memcpy(c->resp, msg, sizeof c->resp);
  }
  if (c->step == STEP_VERIFY) {
    on_verify(c, j);
  } else if (c->step == STEP_REVOKE) {
    finish_done(c);
  } else if (j == NULL) {
    op_failed(c, step_names[c->step]);
  } else {
    on_step(c, j);
  }
  json_decref(j);
}

/* Ends the window, then bounds the drain and the finishing steps. */
static void bench_tick(struct ebench *b) {
  uint64_t now = bench_now_ns();

  if (b->phase == PHASE_RUN && (now >= b->t_end_ns || bench_interrupted)) {
    b->phase = PHASE_DRAIN;
    b->r->aborted = bench_interrupted;
    if (bench_interrupted) {
      bench_run_error(b->r, "interrupted");
    }
    if (b->busy == 0) {
      bench_finish(b);
    }
  } else if (b->phase != PHASE_RUN && b->phase != PHASE_DONE &&
             (now >= b->t_end_ns + BENCH_DRAIN_MS * 1000000ull ||
              bench_interrupted)) {
    bench_run_error(b->r,
                    "%d etcd requests still in flight %d ms after the "
                    "run",
                    b->busy, BENCH_DRAIN_MS);
    b->r->aborted = true;
    b->phase = PHASE_DONE;
  }
}

static void bench_loop(struct ebench *b) {
  while (b->phase != PHASE_DONE) {
    CURLMsg *m;
    int running, left;
    curl_multi_perform(b->multi, &running);
    while ((m = curl_multi_info_read(b->multi, &left)) != NULL) {
      struct eclient *c = NULL;
      CURLcode res = m->data.result;
      if (m->msg != CURLMSG_DONE) {
        continue;
      }
      curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
      on_transfer(c, res);
    }
    bench_tick(b);
    if (b->phase != PHASE_DONE) {
      curl_multi_poll(b->multi, NULL, 0, POLL_MS, NULL);
    }
  }
}

/* ----------------------------------------------------------------- run */

static size_t write_cb(char *p, size_t size, size_t n, void *arg) {
  struct eclient *c = arg;
  size_t len = size * n;
  if (c->resp_len + len >= sizeof c->resp) {
    return 0; /* the transfer fails with CURLE_WRITE_ERROR */
  }
  memcpy(c->resp + c->resp_len, p, len);
  c->resp_len += len;
  c->resp[c->resp_len] = '\0';
  return len;
}

static int client_init(struct ebench *b, struct eclient *c, int i, int port) {
  char name[96];

  c->b = b;
  c->port = port;
  bench_client_name(name, sizeof name, b->r, i);
  etcd_b64_encode(name, strlen(name), c->key64, sizeof c->key64);
  c->easy = curl_easy_init();
  if (c->easy == NULL) {
    return -1;
  }
  curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, b->headers);
  curl_easy_setopt(c->easy, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
  curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c);
  curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
  curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c->easy, CURLOPT_TCP_NODELAY, 1L);
  return 0;
}

static void bench_free(struct ebench *b) {
  for (int i = 0; b->clients && i < b->r->clients; i++) {
    struct eclient *c = &b->clients[i];
    if (c->easy != NULL) {
      curl_multi_remove_handle(b->multi, c->easy);
      curl_easy_cleanup(c->easy);
    }
    free(c->body);
  }
  curl_multi_cleanup(b->multi);
  curl_slist_free_all(b->headers);
  free(b->clients);
}

static int bench_init(struct ebench *b, const struct bench_cluster *cl,
                      const int *target) {
  char name[96];

  b->clients = calloc((size_t)b->r->clients, sizeof *b->clients);
  b->multi = curl_multi_init();
  b->headers = curl_slist_append(NULL, "Content-Type: application/json");
  b->headers = curl_slist_append(b->headers, "Expect:");
  if (b->clients == NULL || b->multi == NULL || b->headers == NULL) {
    return -1;
  }
  curl_multi_setopt(b->multi, CURLMOPT_MAXCONNECTS, (long)b->r->clients + 8);
  bench_shared_name(name, sizeof name, b->r->run_id);
  etcd_b64_encode(name, strlen(name), b->shared64, sizeof b->shared64);
  for (int i = 0; i < b->r->clients; i++) {
    int port =
        cl->client_port[target[(b->r->client_first + i) % BENCH_REPLICAS]];
    if (client_init(b, &b->clients[i], i, port) != 0) {
      return -1;
    }
  }
  return 0;
}

int bench_etcd_run(const struct bench_cluster *cl, const int *target,
                   struct bench_run *r) {
  struct ebench b = {.r = r};
  uint64_t start = r->start_ns;

  if (bench_init(&b, cl, target) != 0) {
    bench_run_error(r, "cannot set up libcurl (out of memory?)");
    bench_free(&b);
    return -1;
  }
  b.phase = PHASE_RUN;
  b.t_window_ns = start + r->warmup_ns;
  b.t_end_ns = b.t_window_ns + r->measure_ns;
  b.busy = r->clients;
  for (int i = 0; i < r->clients; i++) {
    client_next(&b.clients[i]);
  }
  bench_loop(&b);
  bench_free(&b);
  return 0;
}
