/* synod-bench-channels: Redis Streams. One redis-server (Debian's, 7.0)
 * with appendonly yes and appendfsync always, its own dir and port;
 * driven by hiredis: async contexts on one libuv loop per load generator
 * thread for the publishers (XADD, a batch being a pipeline of XADDs),
 * blocking contexts on threads of their own for XREAD BLOCK subscribers
 * and the catch-up reader. One server, no replica: a ceiling of what one
 * node does, not a replicated system. */
#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "synod_bench_channels.h"

#define THREADS_MAX 16
#define READY_BOUND_MS 20000
#define DELIVER_BOUND_MS 5000
#define START_BOUND_MS 10000
#define CATCHUP_BOUND_MS 120000
#define FILL_PIPELINE 1000
#define READ_COUNT "1000"

struct redis_impl {
  char bin[PATH_MAX];
  int port;
  redisContext *admin;
};

static struct redis_impl *impl_of(struct chb_system *s) {
  return s->impl;
}

static redisContext *redis_connect(int port) {
  struct timeval tv = {2, 0};
  redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
  if (c != NULL && c->err != 0) {
    redisFree(c);
    return NULL;
  }
  return c;
}

/* Runs a command that answers a status or an integer; 0 or -1. */
static int redis_simple(redisContext *c, const char *fmt, const char *arg,
                        char *err, size_t len) {
  redisReply *rep = redisCommand(c, fmt, arg);
  int rv = 0;
  if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
    snprintf(err, len, "%s: %s", fmt,
             rep ? rep->str : (c->errstr[0] ? c->errstr : "no reply"));
    rv = -1;
  }
  freeReplyObject(rep);
  return rv;
}

static void key_delete(struct redis_impl *im, const char *key) {
  char err[CHB_ERRMSG_BYTES];
  if (redis_simple(im->admin, "DEL %s", key, err, sizeof err) != 0) {
    fprintf(stderr, "redis: %s\n", err);
  }
}

/* ================================================================ start */

static int redis_start(struct chb_system *s, const struct chb_opts *o,
                       const char *dir) {
  struct redis_impl *im = calloc(1, sizeof *im);
  char rdir[PATH_MAX], log[PATH_MAX], port[16], line[256], cmd[PATH_MAX + 32];
  const char *env = getenv("REDIS_SERVER");
  uint64_t until;
  (void)o;
  s->impl = im;
  if (env != NULL && env[0] != '\0') {
    snprintf(im->bin, sizeof im->bin, "%s", env);
  } else {
    chb_command_line("command -v redis-server 2>/dev/null", im->bin,
                     sizeof im->bin);
  }
  if (im->bin[0] == '\0' || access(im->bin, X_OK) != 0) {
    snprintf(s->why, sizeof s->why,
             "redis-server not found (Debian: apt-get install redis-server; "
             "make bench-channels installs it)");
    return -1;
  }
  snprintf(cmd, sizeof cmd, "'%s' --version", im->bin);
  chb_command_line(cmd, line, sizeof line);
  const char *v = strstr(line, "v=");
  snprintf(s->version, sizeof s->version, "%.*s",
           v ? (int)strcspn(v + 2, " ") : 0, v ? v + 2 : "");
  if (chb_free_ports(&im->port, 1) != 0) {
    snprintf(s->why, sizeof s->why, "no free port");
    return -1;
  }
  snprintf(rdir, sizeof rdir, "%.4000s/redis", dir);
  snprintf(log, sizeof log, "%.4000s/redis.log", dir);
  snprintf(port, sizeof port, "%d", im->port);
  snprintf(cmd, sizeof cmd, "mkdir -p '%.4000s'", rdir);
  if (system(cmd) != 0) {
    snprintf(s->why, sizeof s->why, "cannot make %.200s", rdir);
    return -1;
  }
  char *argv[] = {im->bin,     "--port",        port,      "--bind",
                  "127.0.0.1", "--dir",         rdir,      "--appendonly",
                  "yes",       "--appendfsync", "always",  "--save",
                  "",          "--daemonize",   "no",      "--protected-mode",
                  "no",        "--loglevel",    "warning", NULL};
  s->pids[0] = chb_spawn(argv, log);
  snprintf(s->proc_names[0], sizeof s->proc_names[0], "redis");
  s->nprocs = 1;
  if (s->pids[0] < 0) {
    snprintf(s->why, sizeof s->why, "cannot start %.200s", im->bin);
    return -1;
  }
  until = chb_now_ns() + READY_BOUND_MS * 1000000ull;
  while (im->admin == NULL && chb_now_ns() < until) {
    if (chb_exited(s->pids[0])) {
      s->pids[0] = 0;
      snprintf(s->why, sizeof s->why, "redis-server exited; see %.200s", log);
      return -1;
    }
    im->admin = redis_connect(im->port);
    if (im->admin == NULL ||
        redis_simple(im->admin, "PING", NULL, s->why, sizeof s->why) != 0) {
      redisFree(im->admin);
      im->admin = NULL;
      chb_sleep_ms(50);
    }
  }
  if (im->admin == NULL) {
    snprintf(s->why, sizeof s->why, "redis-server does not answer PING");
    return -1;
  }
  snprintf(s->setup, sizeof s->setup,
           "1 redis-server %s, appendonly yes, appendfsync always, save \"\", "
           "own dir and port; client hiredis %d.%d",
           s->version, HIREDIS_MAJOR, HIREDIS_MINOR);
  snprintf(s->durability, sizeof s->durability,
           "ONE server, no replica (a ceiling of what one node does, not a "
           "replicated system): every write is appended to the AOF and "
           "fsynced before the reply (appendfsync always; Redis writes and "
           "fsyncs once per event loop turn, before it answers the clients "
           "of that turn)");
  return 0;
}

static void redis_stop(struct chb_system *s) {
  struct redis_impl *im = impl_of(s);
  if (im != NULL) {
    redisFree(im->admin);
  }
  if (s->nprocs > 0) {
    chb_stop_pid(s->pids[0], 10000);
    s->pids[0] = 0;
  }
  free(im);
  s->impl = NULL;
}

/* ============================================================ publish */

enum phase { PHASE_RUN, PHASE_DRAIN, PHASE_CLOSE, PHASE_DONE };

struct rgen;

struct rconn {
  struct rgen *g;
  redisAsyncContext *ac;
  bool closed;
};

struct rpub {
  struct rgen *g;
  struct rconn *c;
  uint64_t start_ns;
  int acked;
  bool batch_failed;
  int errors_in_a_row;
};

struct rgen {
  uv_loop_t loop;
  uv_timer_t tick;
  int port, batch;
  uint64_t window_ns, end_ns;
  struct rconn *conns;
  int nconns;
  struct rpub *pubs;
  int npubs;
  enum phase phase;
  int busy, open;
  const char *argv[5];
  size_t lens[5];
  uint8_t payload[CHB_MSG_BYTES];
  struct chb_pub out;
};

static void rgen_disconnect_cb(const redisAsyncContext *ac, int status) {
  struct rconn *c = ac->data;
  (void)status;
  c->closed = true;
  c->ac = NULL;
  if (--c->g->open == 0) {
    c->g->phase = PHASE_DONE;
    uv_close((uv_handle_t *)&c->g->tick, NULL);
  }
}

static void rgen_close(struct rgen *g) {
  g->phase = PHASE_CLOSE;
  g->open = 1;
  for (int i = 0; i < g->nconns; i++) {
    if (g->conns[i].ac != NULL && !g->conns[i].closed) {
      g->open++;
      redisAsyncDisconnect(g->conns[i].ac); /* after pending replies */
    }
  }
  if (--g->open == 0) {
    g->phase = PHASE_DONE;
    uv_close((uv_handle_t *)&g->tick, NULL);
  }
}

static void rpub_batch(struct rpub *p);

static void rpub_cb(redisAsyncContext *ac, void *reply, void *privdata) {
  struct rpub *p = privdata;
  struct rgen *g = p->g;
  redisReply *rep = reply;
  uint64_t now;
  (void)ac;
  if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
    p->batch_failed = true;
    if (g->phase < PHASE_CLOSE) {
      chb_error(g->out.first_error, &g->out.errors, "XADD: %s",
                rep ? rep->str : "no reply (disconnected)");
    }
  }
  if (++p->acked < g->batch) {
    return;
  }
  now = chb_now_ns();
  if (p->batch_failed) {
    p->errors_in_a_row++;
  } else {
    p->errors_in_a_row = 0;
    if (now >= g->window_ns && now < g->end_ns) {
      g->out.msgs += (uint64_t)g->batch;
      g->out.publishes++;
      chb_hist_record(&g->out.hist, (now - p->start_ns) / 1000);
    }
  }
  rpub_batch(p);
}

/* The closed loop: a pipeline of `batch` XADDs, the next when all are
 * answered. */
static void rpub_batch(struct rpub *p) {
  struct rgen *g = p->g;
  if (g->phase == PHASE_RUN && p->errors_in_a_row < CHB_ERRORS_IN_A_ROW_MAX &&
      p->c->ac != NULL && !p->c->closed) {
    p->acked = 0;
    p->batch_failed = false;
    p->start_ns = chb_now_ns();
    for (int k = 0; k < g->batch; k++) {
      if (redisAsyncCommandArgv(p->c->ac, rpub_cb, p, 5, g->argv, g->lens) !=
          REDIS_OK) {
        chb_error(g->out.first_error, &g->out.errors, "redisAsyncCommand");
        p->batch_failed = true;
        p->acked++;
      }
    }
    if (p->acked < g->batch) {
      return;
    }
  }
  if (--g->busy == 0 && g->phase == PHASE_DRAIN) {
    rgen_close(g);
  }
}

static void rgen_tick(uv_timer_t *t) {
  struct rgen *g = t->data;
  uint64_t now = chb_now_ns();
  if (g->phase == PHASE_RUN && now >= g->end_ns) {
    g->phase = PHASE_DRAIN;
    if (g->busy == 0) {
      rgen_close(g);
    }
  } else if (g->phase == PHASE_DRAIN &&
             now >= g->end_ns + CHB_DRAIN_MS * 1000000ull) {
    chb_error(g->out.first_error, &g->out.errors,
              "%d publishers still waiting %d ms after the run", g->busy,
              CHB_DRAIN_MS);
    g->out.aborted = true;
    rgen_close(g);
  }
}

static void *rgen_main(void *arg) {
  struct rgen *g = arg;
  uv_loop_init(&g->loop);
  uv_timer_init(&g->loop, &g->tick);
  g->tick.data = g;
  for (int i = 0; i < g->nconns; i++) {
    struct rconn *c = &g->conns[i];
    c->g = g;
    c->ac = redisAsyncConnect("127.0.0.1", g->port);
    if (c->ac == NULL || c->ac->err != 0) {
      chb_error(g->out.first_error, &g->out.errors, "redisAsyncConnect: %s",
                c->ac ? c->ac->errstr : "no memory");
      c->closed = true;
      continue;
    }
    c->ac->data = c;
    redisLibuvAttach(c->ac, &g->loop);
    redisAsyncSetDisconnectCallback(c->ac, rgen_disconnect_cb);
  }
  uv_timer_start(&g->tick, rgen_tick, CHB_TICK_MS, CHB_TICK_MS);
  g->phase = PHASE_RUN;
  g->busy = g->npubs;
  for (int i = 0; i < g->npubs; i++) {
    rpub_batch(&g->pubs[i]);
  }
  uv_run(&g->loop, UV_RUN_DEFAULT);
  uv_loop_close(&g->loop);
  return NULL;
}

static int redis_publish(struct chb_system *s, const struct chb_opts *o,
                         struct chb_pub *r) {
  struct redis_impl *im = impl_of(s);
  int threads = o->threads < THREADS_MAX ? o->threads : THREADS_MAX;
  int conns = o->conns > 0 ? o->conns : o->publishers;
  struct rgen *gens = calloc((size_t)threads, sizeof *gens);
  struct chb_sampler smp;
  char key[64];
  uint64_t start = chb_now_ns();
  snprintf(key, sizeof key, "pub:%u", r->run_id);
  for (int t = 0; t < threads; t++) {
    struct rgen *g = &gens[t];
    int c = 0, p = 0;
    g->port = im->port;
    g->batch = r->batch;
    g->window_ns = start + (uint64_t)(o->warmup_s * 1e9);
    g->end_ns = g->window_ns + (uint64_t)(o->seconds * 1e9);
    /* As for synod: connection j on thread j % threads, publisher i on
     * connection i % conns. */
    g->nconns = conns / threads + (t < conns % threads);
    g->conns = calloc((size_t)g->nconns + 1, sizeof *g->conns);
    for (int i = 0; i < o->publishers; i++) {
      g->npubs += (i % conns) % threads == t;
    }
    g->pubs = calloc((size_t)g->npubs + 1, sizeof *g->pubs);
    for (int i = 0; i < o->publishers; i++) {
      if ((i % conns) % threads == t) {
        g->pubs[p].g = g;
        g->pubs[p].c = &g->conns[((i % conns) / threads) % g->nconns];
        p++;
      }
    }
    (void)c;
    chb_payload_fill(g->payload, 0, 0);
    g->argv[0] = "XADD";
    g->argv[1] = key;
    g->argv[2] = "*";
    g->argv[3] = "d";
    g->argv[4] = (const char *)g->payload;
    for (int k = 0; k < 4; k++) {
      g->lens[k] = strlen(g->argv[k]);
    }
    g->lens[4] = CHB_MSG_BYTES;
  }
  chb_sampler_start(&smp, s, gens[0].window_ns, gens[0].end_ns);
  chb_threads_run(threads, rgen_main, gens, sizeof *gens);
  chb_sampler_finish(&smp, &r->client_cpu, r->server_cpu);
  for (int t = 0; t < threads; t++) {
    struct rgen *g = &gens[t];
    r->msgs += g->out.msgs;
    r->publishes += g->out.publishes;
    chb_hist_merge(&r->hist, &g->out.hist);
    if (g->out.errors > 0 && r->errors == 0) {
      snprintf(r->first_error, sizeof r->first_error, "%s", g->out.first_error);
    }
    r->errors += g->out.errors;
    r->aborted |= g->out.aborted;
    free(g->conns);
    free(g->pubs);
  }
  free(gens);
  key_delete(im, key);
  return 0;
}

/* ============================================================= fan-out */

struct rfan;

struct rsub {
  struct rfan *f;
  pthread_t thread;
  uint8_t *seen;
  _Atomic uint64_t distinct;
  uint64_t deliveries, duplicates, unordered, last_seq;
  bool any;
  struct chb_hist hist;
  uint64_t errors;
  char first_error[CHB_ERRMSG_BYTES];
};

struct rack {
  struct rfan *f;
  uint64_t seq;
};

struct rfan {
  int port;
  const char *key;
  uint64_t n, warm_seq;
  int subscribers;
  _Atomic int started;
  _Atomic bool pub_done, abort;
  _Atomic uint64_t pub_done_ns, acked;
  /* the publisher (this thread) only */
  int rate;
  bool ended;
  uv_loop_t loop;
  uv_timer_t pace;
  redisAsyncContext *ac;
  uint64_t t0, start_ns, sent, answered, pub_errors;
  char pub_error[CHB_ERRMSG_BYTES];
  uint8_t *acked_seq;
  struct rack *acks;
  struct rsub *subs;
};

/* One XREAD reply: [[key, [[id, [field, value]], ...]]]. */
static void rsub_entries(struct rsub *x, const redisReply *rep, char *last_id,
                         size_t len) {
  struct rfan *f = x->f;
  uint64_t now = chb_now_ns();
  if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
      rep->element[0]->elements < 2) {
    return;
  }
  const redisReply *entries = rep->element[0]->element[1];
  for (size_t i = 0; i < entries->elements; i++) {
    const redisReply *e = entries->element[i];
    uint64_t send_ns, seq;
    if (e->elements < 2 || e->element[1]->elements < 2) {
      continue;
    }
    snprintf(last_id, len, "%s", e->element[0]->str);
    const redisReply *v = e->element[1]->element[1];
    chb_payload_read((const uint8_t *)v->str, v->len, &send_ns, &seq);
    x->deliveries++;
    if (seq >= f->n) {
      chb_error(x->first_error, &x->errors, "a message with sequence %" PRIu64,
                seq);
      continue;
    }
    if (x->seen[seq]) {
      x->duplicates++;
      continue;
    }
    x->seen[seq] = 1;
    if (x->any && seq < x->last_seq) {
      x->unordered++;
    }
    x->any = true;
    x->last_seq = seq;
    if (seq >= f->warm_seq) {
      chb_hist_record(&x->hist, (now - send_ns) / 1000);
    }
    atomic_fetch_add(&x->distinct, 1);
  }
}

static bool rsub_finished(struct rsub *x) {
  struct rfan *f = x->f;
  if (atomic_load(&f->abort)) {
    return true;
  }
  if (!atomic_load(&f->pub_done)) {
    return false;
  }
  return atomic_load(&x->distinct) >= atomic_load(&f->acked) ||
         chb_now_ns() >
             atomic_load(&f->pub_done_ns) + DELIVER_BOUND_MS * 1000000ull;
}

static void *rsub_main(void *arg) {
  struct rsub *x = arg;
  struct rfan *f = x->f;
  char last_id[64] = "0";
  redisContext *c = redis_connect(f->port);
  if (c == NULL) {
    chb_error(x->first_error, &x->errors, "cannot connect");
    atomic_store(&f->abort, true);
    return NULL;
  }
  atomic_fetch_add(&f->started, 1);
  while (!rsub_finished(x)) {
    redisReply *rep = redisCommand(
        c, "XREAD BLOCK 100 COUNT 1000 STREAMS %s %s", f->key, last_id);
    if (rep == NULL) {
      chb_error(x->first_error, &x->errors, "XREAD: %s", c->errstr);
      break;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
      chb_error(x->first_error, &x->errors, "XREAD: %s", rep->str);
    } else if (rep->type == REDIS_REPLY_ARRAY) {
      rsub_entries(x, rep, last_id, sizeof last_id);
    }
    freeReplyObject(rep);
  }
  redisFree(c);
  return NULL;
}

/* The publisher is done (or gave up): the subscribers may finish. */
static void rfan_pub_end(struct rfan *f) {
  if (f->ended) {
    return;
  }
  f->ended = true;
  atomic_store(&f->pub_done_ns, chb_now_ns());
  atomic_store(&f->pub_done, true);
  uv_close((uv_handle_t *)&f->pace, NULL);
  if (f->ac != NULL) {
    redisAsyncDisconnect(f->ac); /* after the replies still pending */
  }
}

static void rfan_check_done(struct rfan *f) {
  if (f->sent == f->n && f->answered == f->n) {
    rfan_pub_end(f);
  }
}

static void rfan_ack_cb(redisAsyncContext *ac, void *reply, void *privdata) {
  struct rack *k = privdata;
  struct rfan *f = k->f;
  redisReply *rep = reply;
  (void)ac;
  f->answered++;
  if (rep != NULL && rep->type != REDIS_REPLY_ERROR) {
    f->acked_seq[k->seq] = 1;
    atomic_fetch_add(&f->acked, 1);
  } else {
    chb_error(f->pub_error, &f->pub_errors, "XADD: %s",
              rep ? rep->str : "no reply");
  }
  rfan_check_done(f);
}

/* Every millisecond: the messages due by now at the rate, each its own
 * XADD carrying its send time. */
static void rfan_pace(uv_timer_t *t) {
  struct rfan *f = t->data;
  uint64_t now = chb_now_ns(), due;
  if (f->t0 == 0) {
    if (atomic_load(&f->started) < f->subscribers) {
      if (now > f->start_ns + START_BOUND_MS * 1000000ull ||
          atomic_load(&f->abort)) {
        chb_error(f->pub_error, &f->pub_errors, "%d of %d subscribers started",
                  atomic_load(&f->started), f->subscribers);
        atomic_store(&f->abort, true);
        rfan_pub_end(f);
      }
      return;
    }
    f->t0 = now;
  }
  due = (uint64_t)((double)(now - f->t0) / 1e9 * f->rate);
  due = due < f->n ? due : f->n;
  while (f->sent < due && f->ac != NULL) {
    uint8_t msg[CHB_MSG_BYTES];
    const char *argv[5] = {"XADD", f->key, "*", "d", (const char *)msg};
    size_t lens[5] = {4, strlen(f->key), 1, 1, CHB_MSG_BYTES};
    struct rack *k = &f->acks[f->sent];
    k->f = f;
    k->seq = f->sent;
    chb_payload_fill(msg, chb_now_ns(), f->sent);
    f->sent++;
    if (redisAsyncCommandArgv(f->ac, rfan_ack_cb, k, 5, argv, lens) !=
        REDIS_OK) {
      f->answered++;
      chb_error(f->pub_error, &f->pub_errors, "redisAsyncCommand");
    }
  }
  if (f->sent == f->n) {
    uv_timer_stop(t);
    rfan_check_done(f);
  }
}

static void rfan_disconnect_cb(const redisAsyncContext *ac, int status) {
  struct rfan *f = ac->data;
  (void)status;
  f->ac = NULL;
  if (!f->ended) {
    chb_error(f->pub_error, &f->pub_errors, "publisher disconnected");
    atomic_store(&f->abort, true);
    rfan_pub_end(f);
  }
}

static void rfan_pub_run(struct rfan *f) {
  uv_loop_init(&f->loop);
  uv_timer_init(&f->loop, &f->pace);
  f->pace.data = f;
  f->ac = redisAsyncConnect("127.0.0.1", f->port);
  if (f->ac == NULL || f->ac->err != 0) {
    chb_error(f->pub_error, &f->pub_errors, "redisAsyncConnect failed");
    if (f->ac != NULL) {
      redisAsyncFree(f->ac);
      f->ac = NULL;
    }
    atomic_store(&f->abort, true);
    rfan_pub_end(f);
  } else {
    f->ac->data = f;
    redisLibuvAttach(f->ac, &f->loop);
    redisAsyncSetDisconnectCallback(f->ac, rfan_disconnect_cb);
    uv_timer_start(&f->pace, rfan_pace, 1, 1);
  }
  uv_run(&f->loop, UV_RUN_DEFAULT);
  uv_loop_close(&f->loop);
}

static int redis_fanout(struct chb_system *s, const struct chb_opts *o,
                        struct chb_fanout *r) {
  struct redis_impl *im = impl_of(s);
  struct rfan *f = calloc(1, sizeof *f);
  struct chb_sampler smp;
  char key[64];
  snprintf(key, sizeof key, "fan:%u", r->run_id);
  key_delete(im, key);
  f->port = im->port;
  f->key = key;
  f->n = (uint64_t)(o->fanout_rate * o->fanout_s);
  f->warm_seq = (uint64_t)(o->fanout_rate * o->warmup_s);
  f->subscribers = o->subscribers;
  f->acked_seq = calloc(f->n + 1, 1);
  f->acks = calloc(f->n + 1, sizeof *f->acks);
  f->subs = calloc((size_t)o->subscribers, sizeof *f->subs);
  f->start_ns = chb_now_ns();
  for (int i = 0; i < o->subscribers; i++) {
    f->subs[i].f = f;
    f->subs[i].seen = calloc(f->n + 1, 1);
  }
  chb_sampler_start(&smp, s, chb_now_ns() + 200000000ull,
                    chb_now_ns() + (uint64_t)(o->fanout_s * 1e9));
  for (int i = 0; i < o->subscribers; i++) {
    if (pthread_create(&f->subs[i].thread, NULL, rsub_main, &f->subs[i]) != 0) {
      atomic_store(&f->abort, true);
      f->subs[i].thread = 0;
    }
  }
  f->rate = o->fanout_rate;
  rfan_pub_run(f);
  for (int i = 0; i < o->subscribers; i++) {
    if (f->subs[i].thread != 0) {
      pthread_join(f->subs[i].thread, NULL);
    }
  }
  chb_sampler_finish(&smp, &r->client_cpu, r->server_cpu);
  r->sent = f->sent;
  r->acked = atomic_load(&f->acked);
  r->errors = f->pub_errors;
  snprintf(r->first_error, sizeof r->first_error, "%s", f->pub_error);
  for (int i = 0; i < o->subscribers; i++) {
    struct rsub *x = &f->subs[i];
    r->delivered += x->deliveries;
    r->duplicates += x->duplicates;
    r->unordered += x->unordered;
    for (uint64_t q = 0; q < f->n; q++) {
      r->missing += f->acked_seq[q] && !x->seen[q];
    }
    chb_hist_merge(&r->hist, &x->hist);
    if (x->errors > 0 && r->errors == 0) {
      snprintf(r->first_error, sizeof r->first_error, "subscriber %d: %.200s",
               i, x->first_error);
    }
    r->errors += x->errors;
    free(x->seen);
  }
  free(f->subs);
  free(f->acks);
  free(f->acked_seq);
  free(f);
  key_delete(im, key);
  return 0;
}

/* ======================================================= fill, catch-up */

static int redis_fill(struct chb_system *s, const struct chb_opts *o,
                      struct chb_fill *r) {
  struct redis_impl *im = impl_of(s);
  redisContext *c = redis_connect(im->port);
  uint64_t t0 = chb_now_ns();
  if (c == NULL) {
    chb_error(r->first_error, &r->errors, "cannot connect");
    return -1;
  }
  key_delete(im, "fill");
  /* Pipelines of FILL_PIPELINE XADDs: one write, one fsync per turn. */
  for (uint64_t i = 0; i < o->retained && r->errors == 0;) {
    uint64_t k =
        o->retained - i < FILL_PIPELINE ? o->retained - i : FILL_PIPELINE;
    uint8_t msg[CHB_MSG_BYTES];
    const char *argv[5] = {"XADD", "fill", "*", "d", (const char *)msg};
    size_t lens[5] = {4, 4, 1, 1, CHB_MSG_BYTES};
    for (uint64_t j = 0; j < k; j++) {
      chb_payload_fill(msg, 0, i + j + 1); /* seq: 1, 2, ... */
      redisAppendCommandArgv(c, 5, argv, lens);
    }
    for (uint64_t j = 0; j < k; j++) {
      redisReply *rep = NULL;
      if (redisGetReply(c, (void **)&rep) != REDIS_OK ||
          rep->type == REDIS_REPLY_ERROR) {
        chb_error(r->first_error, &r->errors, "XADD: %s",
                  rep ? rep->str : c->errstr);
      } else {
        r->n++;
      }
      freeReplyObject(rep);
      if (c->err != 0) {
        break;
      }
    }
    i += k;
  }
  redisFree(c);
  r->seconds = (double)(chb_now_ns() - t0) / 1e9;
  return r->errors == 0 ? 0 : -1;
}

static int redis_catchup(struct chb_system *s, const struct chb_opts *o,
                         struct chb_catchup *r) {
  struct redis_impl *im = impl_of(s);
  redisContext *c = redis_connect(im->port);
  char last_id[64] = "0";
  uint64_t t0 = chb_now_ns(), next = 1;
  (void)o;
  snprintf(r->where, sizeof r->where, "redis");
  if (c == NULL) {
    snprintf(r->first_error, sizeof r->first_error, "cannot connect");
    return -1;
  }
  while (r->received < r->n &&
         chb_now_ns() < t0 + CATCHUP_BOUND_MS * 1000000ull) {
    redisReply *rep =
        redisCommand(c, "XREAD COUNT " READ_COUNT " STREAMS fill %s", last_id);
    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        rep->element[0]->elements < 2) {
      snprintf(r->first_error, sizeof r->first_error, "XREAD: %s",
               rep == NULL                      ? c->errstr
               : rep->type == REDIS_REPLY_ERROR ? rep->str
                                                : "no more entries");
      freeReplyObject(rep);
      break;
    }
    const redisReply *entries = rep->element[0]->element[1];
    for (size_t i = 0; i < entries->elements; i++) {
      const redisReply *e = entries->element[i];
      uint64_t send_ns, seq;
      if (e->elements < 2 || e->element[1]->elements < 2) {
        continue;
      }
      const redisReply *v = e->element[1]->element[1];
      chb_payload_read((const uint8_t *)v->str, v->len, &send_ns, &seq);
      r->unordered += seq != next;
      next = seq + 1;
      r->received++;
      if (i + 1 == entries->elements) {
        snprintf(last_id, sizeof last_id, "%s", e->element[0]->str);
      }
    }
    freeReplyObject(rep);
  }
  r->seconds = (double)(chb_now_ns() - t0) / 1e9;
  redisFree(c);
  return r->received >= r->n ? 0 : -1;
}

static void redis_unfill(struct chb_system *s) {
  key_delete(impl_of(s), "fill");
}

static const struct chb_system_ops redis_ops = {
    .start = redis_start,
    .publish = redis_publish,
    .fanout = redis_fanout,
    .fill = redis_fill,
    .catchup = redis_catchup,
    .unfill = redis_unfill,
    .stop = redis_stop,
};

void chb_redis_init(struct chb_system *s) {
  memset(s, 0, sizeof *s);
  s->name = "redis";
  s->ops = &redis_ops;
}
