/* synod-bench: the synod load generator. N libsynod async clients (one
 * connection and session each) on one libuv loop, each with exactly one
 * operation in flight, started again from its own callback. The harness
 * runs one generator per --threads, each with its share of the clients. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "synod.h"
#include "synod_bench.h"

#define LOCK_OWNER 1
#define LOCK_TIMEOUT_MS 10000
#define READ_BACK_TIMEOUT_MS 10000
#define TICK_MS 50

enum phase {
  PHASE_RUN,    /* warm-up and measured window: clients loop */
  PHASE_DRAIN,  /* window over: wait for in-flight ops to finish */
  PHASE_VERIFY, /* counter-own: read the counters back */
  PHASE_CLOSE,  /* sessions closing */
  PHASE_DONE
};

struct sbench;

struct sclient {
  struct sbench *b;
  struct synod_async *a;
  char name[96];          /* this client's counter or lock name */
  uint64_t op_start_ns;   /* when the op in flight started */
  uint64_t ok;            /* successful ops, whole run */
  uint64_t last_token;    /* lock: fencing tokens must grow */
  uint64_t last_revision; /* key-put: revisions must grow */
  bool key_ready;         /* key-get: the key was put (uncounted) */
  int errors_in_a_row;
  bool busy; /* an op (or the verify read) is in flight */
};

struct sbench {
  uv_loop_t loop;
  uv_timer_t tick;
  struct bench_run *r;
  struct sclient *clients;
  char shared[96];      /* counter-shared's counter (checked by the harness) */
  uint64_t t_start_ns;  /* busy clients started */
  uint64_t t_window_ns; /* measured window: [t_window, t_end) */
  uint64_t t_end_ns;
  enum phase phase;
  int busy; /* clients with an op in flight */
  int open; /* synod_async instances not yet closed */
};

static void client_next(struct sclient *c);
static void bench_verify(struct sbench *b);

/* Counts one finished operation (status 0 = success) and records its
 * latency if it completed inside the measured window. */
static void op_done(struct sclient *c, int status) {
  struct sbench *b = c->b;
  uint64_t now = bench_now_ns();

  if (status != 0) {
    b->r->errors++;
    c->errors_in_a_row++;
    if (status == SYNOD_ETIMEDOUT || status == SYNOD_ESESSION) {
      b->r->unknown++;
    }
    bench_run_error(b->r, "%s: %s", synod_errname(status),
                    synod_async_last_errmsg(c->a));
    return;
  }
  c->ok++;
  c->errors_in_a_row = 0;
  b->r->ops_total++;
  if (now >= b->t_window_ns && now < b->t_end_ns) {
    b->r->ops++;
    bench_hist_record(&b->r->hist, (now - c->op_start_ns) / 1000);
  }
}

static void counter_cb(void *arg, int status, const int64_t *value) {
  struct sclient *c = arg;
  (void)value;
  op_done(c, status);
  client_next(c);
}

static void release_cb(void *arg, int status, const uint32_t *hold_count) {
  struct sclient *c = arg;
  if (status == 0 && *hold_count != 0) {
    snprintf(c->b->r->verify_msg, sizeof c->b->r->verify_msg,
             "lock %s: %u holds left after release", c->name, *hold_count);
    c->b->r->verify = BENCH_VERIFY_FAIL;
  }
  op_done(c, status);
  client_next(c);
}

static void acquire_cb(void *arg, int status,
                       const struct synod_lock_grant *grant) {
  struct sclient *c = arg;
  int rv;

  if (status != 0 || c->b->phase >= PHASE_CLOSE) {
    op_done(c, status ? status : SYNOD_ESHUTDOWN); /* no calls after close */
    client_next(c);
    return;
  }
  if (grant->hold_count != 1 || grant->token <= c->last_token) {
    snprintf(c->b->r->verify_msg, sizeof c->b->r->verify_msg,
             "lock %s: grant token %llu hold %u after token %llu", c->name,
             (unsigned long long)grant->token, grant->hold_count,
             (unsigned long long)c->last_token);
    c->b->r->verify = BENCH_VERIFY_FAIL;
  }
  c->last_token = grant->token;
  rv = synod_async_lock_release(c->a, c->name, LOCK_OWNER, release_cb, c);
  if (rv != 0) {
    op_done(c, rv);
    client_next(c);
  }
}

static void key_fail(struct sclient *c, const char *fmt, const char *what,
                     unsigned long long n) {
  snprintf(c->b->r->verify_msg, sizeof c->b->r->verify_msg, fmt, c->name, what,
           n);
  c->b->r->verify = BENCH_VERIFY_FAIL;
}

/* key-put: every put succeeds (no compare) at a revision above the
 * client's previous one. key-get's first put, which readies the key, is
 * not counted. */
static void key_put_cb(void *arg, int status,
                       const struct synod_key_put_result *res) {
  struct sclient *c = arg;
  if (status == 0 && (!res->succeeded || res->revision <= c->last_revision)) {
    key_fail(c, "key %s: put %s at revision %llu",
             res->succeeded ? "succeeded" : "failed",
             (unsigned long long)res->revision);
  }
  if (status == 0) {
    c->last_revision = res->revision;
  }
  if (c->b->r->workload == BENCH_KEY_GET && status == 0 && !c->key_ready) {
    c->key_ready = true;
  } else {
    op_done(c, status);
  }
  client_next(c);
}

/* key-get: the key holds what the client put before the run. */
static void key_get_cb(void *arg, int status,
                       const struct synod_key_get_result *res) {
  struct sclient *c = arg;
  char want[BENCH_KEY_VALUE_BYTES + 1];
  bench_key_value(want, 0);
  if (status == 0 &&
      (!res->found || res->kv.value_len != BENCH_KEY_VALUE_BYTES ||
       memcmp(res->kv.value, want, BENCH_KEY_VALUE_BYTES) != 0)) {
    key_fail(c, "key %s: get read %s%llu bytes", res->found ? "" : "no key, ",
             (unsigned long long)res->kv.value_len);
  }
  op_done(c, status);
  client_next(c);
}

static int key_op_start(struct sclient *c) {
  char value[BENCH_KEY_VALUE_BYTES + 1];
  if (c->b->r->workload == BENCH_KEY_GET && c->key_ready) {
    return synod_async_key_get(c->a, c->name, 0, key_get_cb, c);
  }
  bench_key_value(value, c->b->r->workload == BENCH_KEY_GET ? 0 : c->ok + 1);
  return synod_async_key_put(c->a, c->name, value, BENCH_KEY_VALUE_BYTES, 0,
                             NULL, 0, key_put_cb, c);
}

/* Starts the client's next operation; returns a synod error if the
 * library refused it (the callback will then not run). */
static int op_start(struct sclient *c) {
  struct sbench *b = c->b;
  c->op_start_ns = bench_now_ns();
  switch (b->r->workload) {
  case BENCH_COUNTER_SHARED:
    return synod_async_counter_add(c->a, b->shared, 1, counter_cb, c);
  case BENCH_COUNTER_OWN:
    return synod_async_counter_add(c->a, c->name, 1, counter_cb, c);
  case BENCH_LOCK:
    return synod_async_lock_acquire(c->a, c->name, LOCK_OWNER, LOCK_TIMEOUT_MS,
                                    acquire_cb, c);
  case BENCH_KEY_PUT:
  case BENCH_KEY_GET:
    return key_op_start(c);
  default:
    return SYNOD_EINVAL;
  }
}

/* The closed loop: called when the client's previous op has finished.
 * Starts the next one while the run lasts, else goes idle. */
static void client_next(struct sclient *c) {
  struct sbench *b = c->b;
  int rv;

  while (b->phase == PHASE_RUN && !bench_interrupted &&
         c->errors_in_a_row < BENCH_ERRORS_IN_A_ROW_MAX) {
    rv = op_start(c);
    if (rv == 0) {
      return;
    }
    op_done(c, rv);
  }
  c->busy = false;
  b->busy--;
  if (b->busy == 0 && b->phase == PHASE_DRAIN) {
    bench_verify(b);
  }
}

/* ------------------------------------------------------------ end of run */

static void close_cb(void *arg) {
  struct sbench *b = arg;
  if (--b->open == 0) {
    b->phase = PHASE_DONE;
    uv_close((uv_handle_t *)&b->tick, NULL);
  }
}

static void bench_close(struct sbench *b) {
  b->phase = PHASE_CLOSE;
  b->open = b->r->clients;
  for (int i = 0; i < b->r->clients; i++) {
    synod_async_close(b->clients[i].a, close_cb, b);
  }
}

/* Compares a client's own counter read back with the adds it saw succeed;
 * an add that timed out may or may not have been applied. */
static void verify_cb(void *arg, int status, const int64_t *value) {
  struct sclient *c = arg;
  struct sbench *b = c->b;
  uint64_t want = c->ok;
  const char *name = c->name;

  c->busy = false;
  if (status != 0) {
    b->r->verify = BENCH_VERIFY_FAIL;
    snprintf(b->r->verify_msg, sizeof b->r->verify_msg,
             "cannot read counter %s back: %s: %s", name, synod_errname(status),
             synod_async_last_errmsg(c->a));
  } else if (*value < 0 || (uint64_t)*value < want ||
             (uint64_t)*value > want + b->r->unknown) {
    b->r->verify = BENCH_VERIFY_FAIL;
    snprintf(b->r->verify_msg, sizeof b->r->verify_msg,
             "counter %s = %lld but %llu adds succeeded (%llu unknown)", name,
             (long long)*value, (unsigned long long)want,
             (unsigned long long)b->r->unknown);
  } else if (b->r->verify == BENCH_VERIFY_NONE) {
    b->r->verify = BENCH_VERIFY_OK;
  }
  if (--b->busy == 0) {
    bench_close(b);
  }
}

/* After the drain: counter-own reads every client's counter back (the
 * harness reads counter-shared's once every generator is done); then
 * closes the sessions. */
static void bench_verify(struct sbench *b) {
  b->phase = PHASE_VERIFY;
  if ((b->r->workload == BENCH_LOCK || b->r->workload == BENCH_KEY_PUT ||
       b->r->workload == BENCH_KEY_GET) &&
      b->r->verify == BENCH_VERIFY_NONE) {
    b->r->verify = BENCH_VERIFY_OK; /* every answer checked as it came */
  }
  if (b->r->workload != BENCH_COUNTER_OWN || b->r->aborted) {
    bench_close(b);
    return;
  }
  for (int i = 0; i < b->r->clients; i++) {
    struct sclient *c = &b->clients[i];
    if (synod_async_counter_get(c->a, c->name, 0, verify_cb, c) == 0) {
      c->busy = true;
      b->busy++;
    }
  }
  if (b->busy == 0) {
    bench_close(b);
  }
}

/* Every TICK_MS: ends the window, bounds the drain, notices ^C. */
static void tick_cb(uv_timer_t *t) {
  struct sbench *b = t->data;
  uint64_t now = bench_now_ns();

  if (b->phase == PHASE_RUN && (now >= b->t_end_ns || bench_interrupted)) {
    b->phase = PHASE_DRAIN;
    b->r->aborted = bench_interrupted;
    if (bench_interrupted) {
      bench_run_error(b->r, "interrupted");
    }
    if (b->busy == 0) {
      bench_verify(b);
    }
  } else if (b->phase == PHASE_DRAIN &&
             (now >= b->t_end_ns + BENCH_DRAIN_MS * 1000000ull ||
              bench_interrupted)) {
    bench_run_error(b->r, "%d operations still in flight %d ms after the run",
                    b->busy, BENCH_DRAIN_MS);
    b->r->aborted = true;
    bench_close(b); /* fails what is in flight with SYNOD_ESHUTDOWN */
  }
}

/* ------------------------------------------------------------------ run */

static int clients_new(struct sbench *b, const struct bench_cluster *cl) {
  struct synod_options o;
  synod_options_init(&o);
  o.endpoints = cl->endpoints;
  o.client_name = "synod-bench";
  for (int i = 0; i < b->r->clients; i++) {
    struct sclient *c = &b->clients[i];
    int rv = synod_async_new(&b->loop, &o, &c->a);
    if (rv != 0) {
      bench_run_error(b->r, "synod_async_new: %s", synod_errname(rv));
      while (i-- > 0) {
        synod_async_close(b->clients[i].a, NULL, NULL);
      }
      return -1;
    }
    c->b = b;
    bench_client_name(c->name, sizeof c->name, b->r, i);
  }
  return 0;
}

static void clients_start(struct sbench *b) {
  b->phase = PHASE_RUN;
  b->t_start_ns = b->r->start_ns;
  b->t_window_ns = b->t_start_ns + b->r->warmup_ns;
  b->t_end_ns = b->t_window_ns + b->r->measure_ns;
  for (int i = 0; i < b->r->clients; i++) {
    b->clients[i].busy = true;
    b->busy++;
  }
  for (int i = 0; i < b->r->clients; i++) {
    client_next(&b->clients[i]);
  }
}

int bench_synod_run(const struct bench_cluster *cl, struct bench_run *r) {
  struct sbench b = {.r = r};
  int rv = 0;

  b.clients = calloc((size_t)r->clients, sizeof *b.clients);
  if (b.clients == NULL || uv_loop_init(&b.loop) != 0) {
    bench_run_error(r, "out of memory");
    free(b.clients);
    return -1;
  }
  bench_shared_name(b.shared, sizeof b.shared, r->run_id);
  if (clients_new(&b, cl) != 0) {
    rv = -1;
  } else {
    uv_timer_init(&b.loop, &b.tick);
    b.tick.data = &b;
    uv_timer_start(&b.tick, tick_cb, TICK_MS, TICK_MS);
    clients_start(&b);
  }
  uv_run(&b.loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&b.loop) != 0) {
    fprintf(stderr, "synod-bench: libsynod left handles open on the loop\n");
  }
  free(b.clients);
  return rv;
}

int bench_synod_counter_read(const struct bench_cluster *cl, const char *name,
                             int64_t *value, char *err, size_t len) {
  struct synod_options o;
  struct synod_client *c = NULL;
  int rv;

  synod_options_init(&o);
  o.endpoints = cl->endpoints;
  o.client_name = "synod-bench";
  rv = synod_client_new(&o, &c);
  if (rv == 0) {
    rv = synod_counter_get(c, name, 0, READ_BACK_TIMEOUT_MS, value);
  }
  if (rv != 0) {
    snprintf(err, len, "%s: %s", synod_errname(rv), synod_client_errmsg());
  }
  synod_client_free(c);
  return rv == 0 ? 0 : -1;
}
