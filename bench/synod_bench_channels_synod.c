/* synod-bench-channels: synod. Three synodd replicas started through the
 * integration harness's cluster (tests/integration/cluster.h), driven by
 * libsynod's async API on one libuv loop per load generator thread:
 * closed-loop publishers (synod_async_channel_publish), a paced
 * publisher with subscribers spread over the replicas (and, for
 * fanout-stalled, raw-frame subscribers that never read), a fill and a
 * subscriber that reads it all back. */
#include <inttypes.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "cluster.h"
#include "raw_client.h"
#include "synod.h"
#include "synod_bench_channels.h"

#define CHANNELS_MAX_BYTES "512MiB"
#define ADMIN_TIMEOUT_MS 30000
#define FILL_BATCH 1000
#define FILL_INFLIGHT SYNOD_INFLIGHT_MAX
#define THREADS_MAX 16
#define START_BOUND_MS 10000  /* subscriptions must start within this */
#define DELIVER_BOUND_MS 5000 /* after the last ack, for the last delivery */
#define CATCHUP_BOUND_MS 120000
/* A subscriber that never reads: a large grant, a small receive buffer. */
#define STALLED_CREDITS 1000000
#define STALLED_RCVBUF (64 << 10)

struct synod_impl {
  struct cluster c;
  struct synod_client *admin; /* create, delete, status */
  char fill_channel[64];
};

static struct synod_impl *impl_of(struct chb_system *s) {
  return s->impl;
}

static int async_new(uv_loop_t *loop, const char *endpoints,
                     struct synod_async **out) {
  struct synod_options o;
  synod_options_init(&o);
  o.endpoints = endpoints;
  o.endpoints_in_order = true;
  o.client_name = "synod-bench-channels";
  return synod_async_new(loop, &o, out);
}

/* ================================================================ start */

static void node_spawn(struct cluster *c, int i) {
  struct cluster_node *nd = &c->nodes[i];
  char *argv[] = {
      c->synodd,          "--name",      nd->name,   "--data",
      nd->data,           "--client",    nd->client, "--peer",
      nd->peer,           "--peers",     c->peers,   "--http",
      nd->http,           "--log-level", "warn",     "--channels-max-bytes",
      CHANNELS_MAX_BYTES, NULL};
  nd->pid = chb_spawn(argv, nd->log);
}

static int synod_start(struct chb_system *s, const struct chb_opts *o,
                       const char *dir) {
  struct synod_impl *im = calloc(1, sizeof *im);
  char synodd[PATH_MAX];
  struct synod_options so;
  struct synod_status st;
  (void)o;
  (void)dir;
  s->impl = im;
  test_binary("SYNODD", "synodd", synodd, sizeof synodd);
  if (im == NULL || access(synodd, X_OK) != 0) {
    snprintf(s->why, sizeof s->why, "%.200s is not built", synodd);
    return -1;
  }
  cluster_init(&im->c, 3, synodd);
  for (int i = 0; i < 3; i++) {
    node_spawn(&im->c, i);
    if (im->c.nodes[i].pid < 0) {
      snprintf(s->why, sizeof s->why, "cannot start %.200s", synodd);
      return -1;
    }
    s->pids[i] = im->c.nodes[i].pid;
    snprintf(s->proc_names[i], sizeof s->proc_names[i], "%s",
             im->c.nodes[i].name);
  }
  s->nprocs = 3;
  cluster_wait_leader(&im->c, 30000); /* fails the run if none */
  synod_options_init(&so);
  so.endpoints = im->c.endpoints;
  so.client_name = "synod-bench-channels admin";
  if (synod_client_new(&so, &im->admin) != 0 ||
      synod_status(im->admin, ADMIN_TIMEOUT_MS, &st) != 0) {
    snprintf(s->why, sizeof s->why, "synod does not answer: %s",
             synod_client_errmsg());
    return -1;
  }
  snprintf(s->version, sizeof s->version, "%s", st.version);
  synod_status_free(&st);
  snprintf(s->setup, sizeof s->setup,
           "3 synodd replicas on 127.0.0.1 (the synodd built beside this "
           "program), --channels-max-bytes %s, otherwise defaults",
           CHANNELS_MAX_BYTES);
  snprintf(s->durability, sizeof s->durability,
           "a publish is acknowledged once committed: in the log of a "
           "majority of the 3 replicas, each having written it with "
           "fdatasync (one flush per group of log entries); the default, "
           "not an option");
  return 0;
}

static void synod_stop(struct chb_system *s) {
  struct synod_impl *im = impl_of(s);
  if (im == NULL) {
    return;
  }
  synod_client_free(im->admin);
  im->admin = NULL;
  cluster_stop(&im->c);
  free(im);
  s->impl = NULL;
}

static void channel_delete(struct synod_impl *im, const char *name) {
  int rv = synod_channel_delete(im->admin, name, ADMIN_TIMEOUT_MS, NULL);
  if (rv != 0 && rv != SYNOD_ENOTFOUND) {
    fprintf(stderr, "synod: delete channel %s: %s: %s\n", name,
            synod_errname(rv), synod_client_errmsg());
  }
}

/* ========================================================= metrics */

/* What the replicas count, read from GET /metrics on each one's --http
 * port around a run. */
struct counters {
  double syncs, synced_entries, snapshots, snapshot_bytes;
  double sync_s, sync_n;     /* synod_log_sync_duration_seconds sum, count */
  double ckpt_s, ckpt_n;     /* synod_store_checkpoint_duration_seconds */
  double commit_s, commit_n; /* synod_commit_latency_seconds (leader) */
  double apply_s, apply_n;   /* synod_apply_duration_seconds */
  double queued_bytes;       /* synod_client_queued_bytes, a gauge */
};

static double metric(const char *text, const char *name) {
  size_t n = strlen(name);
  for (const char *p = strstr(text, name); p != NULL; p = strstr(p + 1, name)) {
    if ((p == text || p[-1] == '\n') && p[n] == ' ') {
      return strtod(p + n + 1, NULL);
    }
  }
  return 0;
}

static void counters_read(const struct cluster_node *nd, struct counters *c) {
  char cmd[128], *text = malloc(1 << 20);
  size_t len = 0;
  FILE *p;
  memset(c, 0, sizeof *c);
  if (text == NULL) {
    return;
  }
  /* A plain HTTP/1.0 GET; bash's /dev/tcp keeps this free of curl. */
  snprintf(cmd, sizeof cmd,
           "exec 3<>/dev/tcp/%.*s/%s; printf 'GET /metrics HTTP/1.0\r\n\r\n' "
           ">&3; cat <&3",
           (int)strcspn(nd->http, ":"), nd->http, strchr(nd->http, ':') + 1);
  char full[256];
  snprintf(full, sizeof full, "bash -c \"%s\" 2>/dev/null", cmd);
  if ((p = popen(full, "r")) != NULL) {
    len = fread(text, 1, (1 << 20) - 1, p);
    pclose(p);
  }
  text[len] = '\0';
  c->syncs = metric(text, "synod_log_syncs_total");
  c->synced_entries = metric(text, "synod_log_synced_entries_total");
  c->snapshots = metric(text, "synod_snapshots_taken_total");
  c->snapshot_bytes = metric(text, "synod_snapshot_taken_bytes_total");
  c->sync_s = metric(text, "synod_log_sync_duration_seconds_sum");
  c->sync_n = metric(text, "synod_log_sync_duration_seconds_count");
  c->ckpt_s = metric(text, "synod_store_checkpoint_duration_seconds_sum");
  c->ckpt_n = metric(text, "synod_store_checkpoint_duration_seconds_count");
  c->commit_s = metric(text, "synod_commit_latency_seconds_sum");
  c->commit_n = metric(text, "synod_commit_latency_seconds_count");
  c->apply_s = metric(text, "synod_apply_duration_seconds_sum");
  c->apply_n = metric(text, "synod_apply_duration_seconds_count");
  c->queued_bytes = metric(text, "synod_client_queued_bytes");
  free(text);
}

static void counters_all(struct synod_impl *im, struct counters *c) {
  for (int i = 0; i < 3; i++) {
    counters_read(&im->c.nodes[i], &c[i]);
  }
}

/* Per replica during the run: syncs (entries per sync) and snapshots. */
static void counters_note(struct synod_impl *im, const struct counters *a,
                          const struct counters *b, char *out, size_t len) {
  size_t at = 0;
  for (int i = 0; i < 3 && at < len; i++) {
    double syncs = b[i].syncs - a[i].syncs;
    double ents = b[i].synced_entries - a[i].synced_entries;
    double sync_n = b[i].sync_n - a[i].sync_n;
    double ckpt_n = b[i].ckpt_n - a[i].ckpt_n;
    double commit_n = b[i].commit_n - a[i].commit_n;
    double apply_n = b[i].apply_n - a[i].apply_n;
    if (commit_n > 0) { /* the leader: proposal to commit, on average */
      at += (size_t)snprintf(out + at, len - at, "%scommit %.2f ms; ",
                             i ? "; " : "",
                             (b[i].commit_s - a[i].commit_s) / commit_n * 1000);
    }
    at += (size_t)snprintf(
        out + at, len - at,
        "%s%s: %.0f syncs of %.1f entries taking %.2f ms on average, %.0f "
        "checkpoints of %.1f ms, %.0f applies of %.3f ms, %.0f snapshots of "
        "%.0f MiB",
        i && commit_n <= 0 ? "; " : "", im->c.nodes[i].name, syncs,
        syncs > 0 ? ents / syncs : 0,
        sync_n > 0 ? (b[i].sync_s - a[i].sync_s) / sync_n * 1000 : 0, ckpt_n,
        ckpt_n > 0 ? (b[i].ckpt_s - a[i].ckpt_s) / ckpt_n * 1000 : 0, apply_n,
        apply_n > 0 ? (b[i].apply_s - a[i].apply_s) / apply_n * 1000 : 0,
        b[i].snapshots - a[i].snapshots,
        b[i].snapshots > a[i].snapshots
            ? (b[i].snapshot_bytes - a[i].snapshot_bytes) /
                  (b[i].snapshots - a[i].snapshots) / 1048576.0
            : 0);
  }
}

/* ============================================================ publish */

enum phase { PHASE_RUN, PHASE_DRAIN, PHASE_CLOSE, PHASE_DONE };

struct pgen;

struct ppub {
  struct pgen *g;
  struct synod_async *a;
  uint64_t start_ns;
  int errors_in_a_row;
  bool busy;
};

/* One load generator thread: its clients and publishers on its loop. */
struct pgen {
  uv_loop_t loop;
  uv_timer_t tick;
  const struct chb_opts *o;
  const char *endpoints;
  const char *channel;
  int batch;
  uint64_t window_ns, end_ns;
  struct synod_async **clients;
  int nclients;
  struct ppub *pubs;
  int npubs;
  enum phase phase;
  int busy, open;
  uint8_t payload[CHB_MSG_BYTES];
  const void *ptrs[1000];
  size_t lens[1000];
  struct chb_pub out; /* this thread's share of the outputs */
};

static void pgen_close_cb(void *arg) {
  struct pgen *g = arg;
  if (--g->open == 0) {
    g->phase = PHASE_DONE;
    uv_close((uv_handle_t *)&g->tick, NULL);
  }
}

static void pgen_close(struct pgen *g) {
  g->phase = PHASE_CLOSE;
  g->open = g->nclients;
  for (int i = 0; i < g->nclients; i++) {
    synod_async_close(g->clients[i], pgen_close_cb, g);
  }
  if (g->nclients == 0) {
    g->phase = PHASE_DONE;
    uv_close((uv_handle_t *)&g->tick, NULL);
  }
}

static void ppub_next(struct ppub *p);

static void ppub_cb(void *arg, int status,
                    const struct synod_channel_published *res) {
  struct ppub *p = arg;
  struct pgen *g = p->g;
  uint64_t now = chb_now_ns();
  (void)res;
  if (status != 0) {
    if (g->phase < PHASE_CLOSE) {
      p->errors_in_a_row++;
      chb_error(g->out.first_error, &g->out.errors, "publish: %s: %s",
                synod_errname(status), synod_async_last_errmsg(p->a));
    }
  } else {
    p->errors_in_a_row = 0;
    if (now >= g->window_ns && now < g->end_ns) {
      g->out.msgs += (uint64_t)g->batch;
      g->out.publishes++;
      chb_hist_record(&g->out.hist, (now - p->start_ns) / 1000);
    }
  }
  ppub_next(p);
}

/* The closed loop: the next publish while the run lasts, else idle. */
static void ppub_next(struct ppub *p) {
  struct pgen *g = p->g;
  while (g->phase == PHASE_RUN &&
         p->errors_in_a_row < CHB_ERRORS_IN_A_ROW_MAX) {
    int rv;
    p->start_ns = chb_now_ns();
    rv = synod_async_channel_publish(p->a, g->channel, g->ptrs, g->lens,
                                     (size_t)g->batch, NULL, ppub_cb, p);
    if (rv == 0) {
      return;
    }
    p->errors_in_a_row++;
    chb_error(g->out.first_error, &g->out.errors, "publish refused: %s",
              synod_errname(rv));
  }
  p->busy = false;
  if (--g->busy == 0 && g->phase == PHASE_DRAIN) {
    pgen_close(g);
  }
}

static void pgen_tick(uv_timer_t *t) {
  struct pgen *g = t->data;
  uint64_t now = chb_now_ns();
  if (g->phase == PHASE_RUN && now >= g->end_ns) {
    g->phase = PHASE_DRAIN;
    if (g->busy == 0) {
      pgen_close(g);
    }
  } else if (g->phase == PHASE_DRAIN &&
             now >= g->end_ns + CHB_DRAIN_MS * 1000000ull) {
    chb_error(g->out.first_error, &g->out.errors,
              "%d publishes still in flight %d ms after the run", g->busy,
              CHB_DRAIN_MS);
    g->out.aborted = true;
    pgen_close(g); /* fails what is in flight with SYNOD_ESHUTDOWN */
  }
}

static void *pgen_main(void *arg) {
  struct pgen *g = arg;
  uv_loop_init(&g->loop);
  for (int i = 0; i < g->nclients; i++) {
    if (async_new(&g->loop, g->endpoints, &g->clients[i]) != 0) {
      chb_error(g->out.first_error, &g->out.errors, "synod_async_new failed");
      g->out.aborted = true;
      g->nclients = i;
      break;
    }
  }
  uv_timer_init(&g->loop, &g->tick);
  g->tick.data = g;
  uv_timer_start(&g->tick, pgen_tick, CHB_TICK_MS, CHB_TICK_MS);
  g->phase = g->out.aborted ? PHASE_DRAIN : PHASE_RUN;
  g->busy = g->npubs;
  for (int i = 0; i < g->npubs; i++) {
    g->pubs[i].busy = true;
    g->pubs[i].a = g->clients[i % (g->nclients ? g->nclients : 1)];
    ppub_next(&g->pubs[i]);
  }
  uv_run(&g->loop, UV_RUN_DEFAULT);
  uv_loop_close(&g->loop);
  return NULL;
}

static int synod_publish(struct chb_system *s, const struct chb_opts *o,
                         struct chb_pub *r) {
  struct synod_impl *im = impl_of(s);
  int threads = o->threads < THREADS_MAX ? o->threads : THREADS_MAX;
  int conns = o->conns > 0 ? o->conns : o->publishers;
  struct pgen *gens = calloc((size_t)threads, sizeof *gens);
  struct chb_sampler smp;
  char channel[64];
  uint64_t start;
  snprintf(channel, sizeof channel, "pub-%u", r->run_id);
  start = chb_now_ns(); /* the clients connect during the warm-up */
  for (int t = 0; t < threads; t++) {
    struct pgen *g = &gens[t];
    g->o = o;
    g->endpoints = im->c.endpoints;
    g->channel = channel;
    g->batch = r->batch;
    g->window_ns = start + (uint64_t)(o->warmup_s * 1e9);
    g->end_ns = g->window_ns + (uint64_t)(o->seconds * 1e9);
    /* Client j runs on thread j % threads; publisher i uses client
     * i % conns, so a thread's publishers share its clients evenly. */
    g->nclients = conns / threads + (t < conns % threads);
    g->npubs = 0;
    for (int i = 0; i < o->publishers; i++) {
      g->npubs += (i % conns) % threads == t;
    }
    g->clients = calloc((size_t)g->nclients + 1, sizeof *g->clients);
    g->pubs = calloc((size_t)g->npubs + 1, sizeof *g->pubs);
    for (int i = 0; i < g->npubs; i++) {
      g->pubs[i].g = g;
    }
    chb_payload_fill(g->payload, 0, 0);
    for (int k = 0; k < r->batch; k++) {
      g->ptrs[k] = g->payload;
      g->lens[k] = CHB_MSG_BYTES;
    }
  }
  struct counters c0[3], c1[3];
  counters_all(im, c0);
  chb_sampler_start(&smp, s, gens[0].window_ns, gens[0].end_ns);
  chb_threads_run(threads, pgen_main, gens, sizeof *gens);
  chb_sampler_finish(&smp, &r->client_cpu, r->server_cpu);
  counters_all(im, c1);
  counters_note(im, c0, c1, r->note, sizeof r->note);
  for (int t = 0; t < threads; t++) {
    struct pgen *g = &gens[t];
    r->msgs += g->out.msgs;
    r->publishes += g->out.publishes;
    chb_hist_merge(&r->hist, &g->out.hist);
    if (g->out.errors > 0 && r->errors == 0) {
      snprintf(r->first_error, sizeof r->first_error, "%s", g->out.first_error);
    }
    r->errors += g->out.errors;
    r->aborted |= g->out.aborted;
    free(g->clients);
    free(g->pubs);
  }
  free(gens);
  channel_delete(im, channel);
  return 0;
}

/* ============================================================= fan-out */

struct fan;

struct fsub {
  struct fan *f;
  int index;
  struct synod_async *a;
  struct synod_async_subscription *sub;
  uint8_t *seen; /* one byte per sequence number */
  uint64_t distinct, deliveries, duplicates, unordered, last_seq;
  bool any;
  bool ended;
  struct chb_hist hist;
  uint64_t errors;
  char first_error[CHB_ERRMSG_BYTES];
};

struct fack {
  struct fan *f;
  uint64_t seq;
};

/* The run, shared by the threads. Atomics cross threads; the rest is
 * written before the threads start or by one thread only. */
struct fan {
  const struct chb_opts *o;
  struct synod_impl *im;
  char channel[64];
  uint64_t n;        /* messages to publish */
  uint64_t warm_seq; /* latencies count from this sequence number on */
  uint64_t start_ns; /* the subscriptions were asked for */
  _Atomic int started;
  _Atomic bool pub_done;
  _Atomic uint64_t pub_done_ns;
  _Atomic bool abort;
  /* publisher (thread 0) */
  struct synod_async *pub;
  uint64_t t0, sent, acked, pub_errors;
  char pub_error[CHB_ERRMSG_BYTES];
  uint8_t *acked_seq;
  struct fack *acks;
  struct fsub *subs;
  /* subscribers that never read (fanout-stalled), opened before the
   * threads start and closed after they end */
  struct raw stalled[CHB_STALLED_SUBS];
  int nstalled;
  struct seen stalled_seen; /* what came before their subscribe's answer */
};

struct fgen {
  struct fan *f;
  int t, threads;
  uv_loop_t loop;
  uv_timer_t tick, pace;
  bool closing;
  int open;
};

static void fsub_msg_cb(void *arg, const struct synod_channel_message *m) {
  struct fsub *x = arg;
  struct fan *f = x->f;
  uint64_t now = chb_now_ns(), send_ns, seq;
  chb_payload_read(m->data, m->len, &send_ns, &seq);
  x->deliveries++;
  if (seq >= f->n) {
    chb_error(x->first_error, &x->errors, "a message with sequence %" PRIu64,
              seq);
    return;
  }
  if (x->seen[seq]) {
    x->duplicates++;
    return;
  }
  x->seen[seq] = 1;
  x->distinct++;
  if (x->any && seq < x->last_seq) {
    x->unordered++;
  }
  x->any = true;
  x->last_seq = seq;
  if (seq >= f->warm_seq) {
    chb_hist_record(&x->hist, (now - send_ns) / 1000);
  }
}

static void fsub_end_cb(void *arg, int status, const char *errmsg,
                        uint64_t first_available) {
  struct fsub *x = arg;
  (void)first_available;
  x->ended = true;
  x->sub = NULL;
  chb_error(x->first_error, &x->errors, "subscription ended: %s: %s",
            synod_errname(status), errmsg);
}

static void fsub_start_cb(void *arg,
                          const struct synod_subscription_start *start) {
  struct fsub *x = arg;
  (void)start;
  atomic_fetch_add(&x->f->started, 1);
}

static void fack_cb(void *arg, int status,
                    const struct synod_channel_published *res) {
  struct fack *k = arg;
  struct fan *f = k->f;
  (void)res;
  if (status == 0) {
    f->acked++;
    f->acked_seq[k->seq] = 1;
  } else {
    chb_error(f->pub_error, &f->pub_errors, "publish: %s: %s",
              synod_errname(status), synod_async_last_errmsg(f->pub));
  }
  if (f->sent == f->n && f->acked + f->pub_errors == f->n) {
    atomic_store(&f->pub_done_ns, chb_now_ns());
    atomic_store(&f->pub_done, true);
  }
}

/* Every millisecond: the messages due by now at the rate, each its own
 * publish carrying its send time. */
static void fgen_pace(uv_timer_t *t) {
  struct fgen *g = t->data;
  struct fan *f = g->f;
  uint64_t now = chb_now_ns(), due;
  if (f->t0 == 0) {
    if (atomic_load(&f->started) < f->o->subscribers) {
      return;
    }
    f->t0 = now;
  }
  due = (uint64_t)((double)(now - f->t0) / 1e9 * f->o->fanout_rate);
  due = due < f->n ? due : f->n;
  while (f->sent < due) {
    uint8_t msg[CHB_MSG_BYTES];
    const void *ptr = msg;
    size_t len = sizeof msg;
    struct fack *k = &f->acks[f->sent];
    int rv;
    k->f = f;
    k->seq = f->sent;
    chb_payload_fill(msg, chb_now_ns(), f->sent);
    rv = synod_async_channel_publish(f->pub, f->channel, &ptr, &len, 1, NULL,
                                     fack_cb, k);
    f->sent++;
    if (rv != 0) {
      chb_error(f->pub_error, &f->pub_errors, "publish refused: %s",
                synod_errname(rv));
    }
  }
  if (f->sent == f->n) {
    uv_timer_stop(t);
    if (f->acked + f->pub_errors == f->n) {
      atomic_store(&f->pub_done_ns, chb_now_ns());
      atomic_store(&f->pub_done, true);
    }
  }
}

static void fgen_close_cb(void *arg) {
  struct fgen *g = arg;
  if (--g->open == 0) {
    uv_close((uv_handle_t *)&g->tick, NULL);
    uv_close((uv_handle_t *)&g->pace, NULL);
  }
}

static void fgen_close(struct fgen *g) {
  struct fan *f = g->f;
  g->closing = true;
  g->open = 1; /* held until every close was asked */
  if (g->t == 0 && f->pub != NULL) {
    g->open++;
    synod_async_close(f->pub, fgen_close_cb, g);
  }
  for (int i = g->t; i < f->o->subscribers; i += g->threads) {
    struct fsub *x = &f->subs[i];
    if (x->a == NULL) {
      continue;
    }
    if (x->sub != NULL) {
      synod_async_unsubscribe(x->a, x->sub);
      x->sub = NULL;
    }
    g->open++;
    synod_async_close(x->a, fgen_close_cb, g);
  }
  fgen_close_cb(g);
}

/* Whether this thread's subscribers have every acknowledged message. */
static bool fgen_all_delivered(struct fgen *g) {
  struct fan *f = g->f;
  for (int i = g->t; i < f->o->subscribers; i += g->threads) {
    if (!f->subs[i].ended && f->subs[i].distinct < f->acked) {
      return false;
    }
  }
  return true;
}

static void fgen_tick(uv_timer_t *t) {
  struct fgen *g = t->data;
  struct fan *f = g->f;
  uint64_t now = chb_now_ns();
  if (g->closing) {
    return;
  }
  if (f->t0 == 0 && g->t == 0 &&
      now > f->start_ns + START_BOUND_MS * 1000000ull) {
    chb_error(f->pub_error, &f->pub_errors,
              "%d of %d subscriptions started within %d ms",
              atomic_load(&f->started), f->o->subscribers, START_BOUND_MS);
    atomic_store(&f->abort, true);
  }
  if (atomic_load(&f->abort)) {
    fgen_close(g);
    return;
  }
  if (!atomic_load(&f->pub_done)) {
    return;
  }
  if (fgen_all_delivered(g) ||
      now > atomic_load(&f->pub_done_ns) + DELIVER_BOUND_MS * 1000000ull) {
    fgen_close(g);
  }
}

static void *fgen_main(void *arg) {
  struct fgen *g = arg;
  struct fan *f = g->f;
  uv_loop_init(&g->loop);
  uv_timer_init(&g->loop, &g->tick);
  uv_timer_init(&g->loop, &g->pace);
  g->tick.data = g->pace.data = g;
  for (int i = g->t; i < f->o->subscribers; i += g->threads) {
    struct fsub *x = &f->subs[i];
    struct synod_subscribe_options so = {
        .channel = f->channel, .from = SYNOD_FROM_NEXT, .window = f->o->window};
    /* One address each: a subscriber stays on its replica. */
    if (async_new(&g->loop, f->im->c.nodes[i % 3].client, &x->a) != 0 ||
        synod_async_subscribe(x->a, &so, fsub_msg_cb, fsub_end_cb,
                              fsub_start_cb, x, &x->sub) != 0) {
      chb_error(x->first_error, &x->errors, "cannot subscribe");
      atomic_store(&f->abort, true);
    }
  }
  if (g->t == 0) {
    if (async_new(&g->loop, f->im->c.endpoints, &f->pub) != 0) {
      atomic_store(&f->abort, true);
    }
    uv_timer_start(&g->pace, fgen_pace, 1, 1);
  }
  uv_timer_start(&g->tick, fgen_tick, CHB_TICK_MS, CHB_TICK_MS);
  uv_run(&g->loop, UV_RUN_DEFAULT);
  uv_loop_close(&g->loop);
  return NULL;
}

static void fan_collect(struct fan *f, struct chb_fanout *r) {
  r->sent = f->sent;
  r->acked = f->acked;
  r->errors = f->pub_errors;
  snprintf(r->first_error, sizeof r->first_error, "%s", f->pub_error);
  for (int i = 0; i < f->o->subscribers; i++) {
    struct fsub *x = &f->subs[i];
    r->delivered += x->deliveries;
    r->duplicates += x->duplicates;
    r->unordered += x->unordered;
    for (uint64_t q = 0; q < f->n; q++) {
      r->missing += f->acked_seq[q] && !x->seen[q];
    }
    chb_hist_merge(&r->hist, &x->hist);
    chb_hist_merge(&r->hist_by_proc[i % 3], &x->hist);
    if (x->errors > 0 && r->errors == 0) {
      snprintf(r->first_error, sizeof r->first_error, "subscriber %d: %.200s",
               i, x->first_error);
    }
    r->errors += x->errors;
    free(x->seen);
  }
}

/* Opens n subscribers that never read, subscriber i on replica i mod 3:
 * from the next message, with a grant far beyond the run and a small
 * receive buffer, so that what the replica sends them piles up in it
 * (tests/integration/test_subscribe.c, scenario_never_reads). Before the
 * publisher starts. A refusal is a CHECK: it ends the bench. */
static void fan_stall(struct fan *f, int n) {
  int rcvbuf = STALLED_RCVBUF;
  for (int i = 0; i < n; i++) {
    struct raw *x = &f->stalled[i];
    *x = raw_open(f->im->c.nodes[i % 3].client);
    setsockopt(x->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    subscribe(x, 1, f->channel, false,
              SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_NEXT, 0, STALLED_CREDITS,
              NULL, &f->stalled_seen, 0, "a subscriber that never reads");
    f->nstalled++;
  }
}

/* At the end of a run, before the subscribers close: each replica's
 * VmRSS and the bytes it holds queued to its clients, and what its
 * counters say since c0. */
static void fan_measure_end(struct chb_system *s, struct fan *f,
                            const struct counters *c0, struct chb_fanout *r) {
  struct counters c1[3];
  counters_all(f->im, c1);
  counters_note(f->im, c0, c1, r->note, sizeof r->note);
  for (int i = 0; i < 3; i++) {
    r->rss1[i] = chb_proc_rss(s->pids[i], NULL);
    r->queued[i] = (uint64_t)c1[i].queued_bytes;
  }
  r->mem = true;
  for (int i = 0; i < f->nstalled; i++) {
    close(f->stalled[i].fd);
  }
}

static int synod_fanout(struct chb_system *s, const struct chb_opts *o,
                        struct chb_fanout *r) {
  struct synod_impl *im = impl_of(s);
  int threads = o->threads < THREADS_MAX ? o->threads : THREADS_MAX;
  struct fan *f = calloc(1, sizeof *f);
  struct fgen *gens = calloc((size_t)threads, sizeof *gens);
  struct chb_sampler smp;
  struct counters c0[3];
  int rv;
  f->o = o;
  f->im = im;
  f->n = (uint64_t)(o->fanout_rate * o->fanout_s);
  f->warm_seq = (uint64_t)(o->fanout_rate * o->warmup_s);
  snprintf(f->channel, sizeof f->channel, "fan-%u", r->run_id);
  rv =
      synod_channel_create(im->admin, f->channel, NULL, ADMIN_TIMEOUT_MS, NULL);
  if (rv != 0) {
    chb_error(r->first_error, &r->errors, "create %s: %s: %s", f->channel,
              synod_errname(rv), synod_client_errmsg());
    free(f);
    free(gens);
    return -1;
  }
  f->acked_seq = calloc(f->n + 1, 1);
  f->acks = calloc(f->n + 1, sizeof *f->acks);
  f->subs = calloc((size_t)o->subscribers, sizeof *f->subs);
  for (int i = 0; i < o->subscribers; i++) {
    f->subs[i].f = f;
    f->subs[i].index = i;
    f->subs[i].seen = calloc(f->n + 1, 1);
  }
  counters_all(im, c0);
  for (int i = 0; i < 3; i++) {
    r->rss0[i] = chb_proc_rss(s->pids[i], NULL);
  }
  fan_stall(f, r->stalled < CHB_STALLED_SUBS ? r->stalled : CHB_STALLED_SUBS);
  f->start_ns = chb_now_ns();
  for (int t = 0; t < threads; t++) {
    gens[t] = (struct fgen){.f = f, .t = t, .threads = threads};
  }
  /* The CPU of the whole run: subscriptions start within milliseconds. */
  chb_sampler_start(&smp, s, chb_now_ns() + 200000000ull,
                    chb_now_ns() + (uint64_t)(o->fanout_s * 1e9));
  chb_threads_run(threads, fgen_main, gens, sizeof *gens);
  chb_sampler_finish(&smp, &r->client_cpu, r->server_cpu);
  fan_measure_end(s, f, c0, r);
  fan_collect(f, r);
  channel_delete(im, f->channel);
  free(f->subs);
  free(f->acks);
  free(f->acked_seq);
  free(f);
  free(gens);
  return 0;
}

/* ======================================================= fill, catch-up */

struct filler {
  struct synod_async *a;
  uv_loop_t loop;
  const char *channel;
  uint64_t n, sent, done;
  int inflight;
  struct chb_fill *r;
  uint8_t buf[FILL_BATCH][CHB_MSG_BYTES];
  const void *ptrs[FILL_BATCH];
  size_t lens[FILL_BATCH];
};

static void filler_next(struct filler *fl);

static void filler_cb(void *arg, int status,
                      const struct synod_channel_published *res) {
  struct filler *fl = arg;
  (void)res;
  fl->inflight--;
  if (status != 0) {
    chb_error(fl->r->first_error, &fl->r->errors, "publish: %s: %s",
              synod_errname(status), synod_async_last_errmsg(fl->a));
    fl->n = fl->sent; /* stop: a gap would spoil the catch-up check */
  }
  filler_next(fl);
}

static void filler_closed(void *arg) {
  (void)arg;
}

static void filler_next(struct filler *fl) {
  while (fl->inflight < FILL_INFLIGHT && fl->sent < fl->n) {
    size_t k =
        (size_t)(fl->n - fl->sent < FILL_BATCH ? fl->n - fl->sent : FILL_BATCH);
    for (size_t i = 0; i < k; i++) {
      chb_payload_fill(fl->buf[i], 0, fl->sent + i + 1); /* seq = offset */
    }
    if (synod_async_channel_publish(fl->a, fl->channel, fl->ptrs, fl->lens, k,
                                    NULL, filler_cb, fl) != 0) {
      chb_error(fl->r->first_error, &fl->r->errors, "publish refused");
      fl->n = fl->sent;
      break;
    }
    fl->sent += k;
    fl->inflight++;
  }
  if (fl->inflight == 0 && fl->sent == fl->n && fl->a != NULL) {
    synod_async_close(fl->a, filler_closed, fl);
    fl->a = NULL;
  }
}

/* Waits until every replica has applied what the leader has committed. */
static int settle_all(struct synod_impl *im, char *err, size_t len) {
  struct synod_status st;
  uint64_t commit, until = chb_now_ns() + 60000000000ull;
  if (synod_status(im->admin, ADMIN_TIMEOUT_MS, &st) != 0) {
    snprintf(err, len, "status: %s", synod_client_errmsg());
    return -1;
  }
  commit = st.commit_index;
  synod_status_free(&st);
  for (int i = 0; i < 3; i++) {
    uint64_t applied = 0;
    while (applied < commit && chb_now_ns() < until) {
      if (cluster_status(&im->c, i, 0, 2000, &st) == 0) {
        applied = st.applied_index;
        synod_status_free(&st);
      }
      if (applied < commit) {
        chb_sleep_ms(50);
      }
    }
    if (applied < commit) {
      snprintf(err, len, "%s applied %" PRIu64 " of %" PRIu64 " in 60 s",
               im->c.nodes[i].name, applied, commit);
      return -1;
    }
  }
  return 0;
}

/* Each replica's log and snapshot: the log entries after the snapshot
 * are held in memory (server/core/core_log.h) as well as applied. */
static void fill_note(struct synod_impl *im, char *out, size_t len) {
  size_t at = 0;
  out[0] = '\0';
  for (int i = 0; i < 3 && at < len; i++) {
    struct synod_status st;
    if (cluster_status(&im->c, i, 0, 2000, &st) != 0) {
      continue;
    }
    at += (size_t)snprintf(out + at, len - at,
                           "%s%s: log %" PRIu64 "..%" PRIu64
                           " after a snapshot at %" PRIu64 " of %.1f MiB",
                           i ? "; " : "", st.name, st.snapshot_index + 1,
                           st.last_index, st.snapshot_index,
                           (double)st.snapshot_bytes / 1048576.0);
    synod_status_free(&st);
  }
}

static int synod_fill(struct chb_system *s, const struct chb_opts *o,
                      struct chb_fill *r) {
  struct synod_impl *im = impl_of(s);
  struct filler *fl = calloc(1, sizeof *fl);
  uint64_t bytes = o->retained * CHB_MSG_BYTES;
  struct synod_channel_limits lim = {
      .max_messages = o->retained,
      .max_bytes = bytes + bytes / 4 > (64ull << 20) ? bytes + bytes / 4
                                                     : (64ull << 20)};
  uint64_t t0;
  int rv;
  snprintf(im->fill_channel, sizeof im->fill_channel, "fill");
  rv = synod_channel_create(im->admin, im->fill_channel, &lim, ADMIN_TIMEOUT_MS,
                            NULL);
  if (rv != 0) {
    chb_error(r->first_error, &r->errors, "create: %s: %s", synod_errname(rv),
              synod_client_errmsg());
    free(fl);
    return -1;
  }
  fl->r = r;
  fl->n = o->retained;
  fl->channel = im->fill_channel;
  for (int i = 0; i < FILL_BATCH; i++) {
    fl->ptrs[i] = fl->buf[i];
    fl->lens[i] = CHB_MSG_BYTES;
  }
  uv_loop_init(&fl->loop);
  t0 = chb_now_ns();
  if (async_new(&fl->loop, im->c.endpoints, &fl->a) != 0) {
    uv_loop_close(&fl->loop);
    free(fl);
    return -1;
  }
  filler_next(fl);
  uv_run(&fl->loop, UV_RUN_DEFAULT);
  uv_loop_close(&fl->loop);
  r->n = fl->sent;
  free(fl);
  if (settle_all(im, r->first_error, sizeof r->first_error) != 0) {
    r->errors++;
    return -1;
  }
  r->seconds = (double)(chb_now_ns() - t0) / 1e9;
  fill_note(im, r->note, sizeof r->note);
  return r->errors == 0 ? 0 : -1;
}

struct reader {
  uv_loop_t loop;
  uv_timer_t tick;
  struct synod_async *a;
  struct synod_async_subscription *sub;
  struct chb_catchup *r;
  uint64_t next, t0, t_last, deadline;
  bool done;
};

static void reader_done(struct reader *rd) {
  if (rd->done) {
    return;
  }
  rd->done = true;
  if (rd->sub != NULL) {
    synod_async_unsubscribe(rd->a, rd->sub);
    rd->sub = NULL;
  }
  synod_async_close(rd->a, NULL, NULL);
  uv_close((uv_handle_t *)&rd->tick, NULL);
}

static void reader_msg_cb(void *arg, const struct synod_channel_message *m) {
  struct reader *rd = arg;
  uint64_t send_ns, seq;
  chb_payload_read(m->data, m->len, &send_ns, &seq);
  if (m->offset != rd->next || seq != m->offset) {
    rd->r->unordered++;
  }
  rd->next = m->offset + 1;
  if (++rd->r->received == rd->r->n) {
    rd->t_last = chb_now_ns();
    reader_done(rd);
  }
}

static void reader_end_cb(void *arg, int status, const char *errmsg,
                          uint64_t first_available) {
  struct reader *rd = arg;
  (void)first_available;
  snprintf(rd->r->first_error, sizeof rd->r->first_error, "%s: %s",
           synod_errname(status), errmsg);
  rd->sub = NULL;
  reader_done(rd);
}

static void reader_tick(uv_timer_t *t) {
  struct reader *rd = t->data;
  if (chb_now_ns() > rd->deadline) {
    snprintf(rd->r->first_error, sizeof rd->r->first_error,
             "%" PRIu64 " of %" PRIu64 " messages in %d s", rd->r->received,
             rd->r->n, CATCHUP_BOUND_MS / 1000);
    reader_done(rd);
  }
}

static int synod_catchup(struct chb_system *s, const struct chb_opts *o,
                         struct chb_catchup *r) {
  struct synod_impl *im = impl_of(s);
  struct reader rd = {.r = r, .next = 1};
  int node = r->rep % 3;
  struct synod_subscribe_options so = {.channel = im->fill_channel,
                                       .from = SYNOD_FROM_OFFSET,
                                       .offset = 1,
                                       .window = o->window};
  snprintf(r->where, sizeof r->where, "%s", im->c.nodes[node].name);
  uv_loop_init(&rd.loop);
  uv_timer_init(&rd.loop, &rd.tick);
  rd.tick.data = &rd;
  rd.t0 = chb_now_ns();
  rd.deadline = rd.t0 + CATCHUP_BOUND_MS * 1000000ull;
  if (async_new(&rd.loop, im->c.nodes[node].client, &rd.a) != 0 ||
      synod_async_subscribe(rd.a, &so, reader_msg_cb, reader_end_cb, NULL, &rd,
                            &rd.sub) != 0) {
    snprintf(r->first_error, sizeof r->first_error, "cannot subscribe");
    uv_close((uv_handle_t *)&rd.tick, NULL);
    if (rd.a != NULL) {
      synod_async_close(rd.a, NULL, NULL);
    }
  } else {
    uv_timer_start(&rd.tick, reader_tick, 100, 100);
  }
  uv_run(&rd.loop, UV_RUN_DEFAULT);
  uv_loop_close(&rd.loop);
  r->seconds = rd.t_last > 0 ? (double)(rd.t_last - rd.t0) / 1e9 : 0;
  return r->received == r->n ? 0 : -1;
}

static void synod_unfill(struct chb_system *s) {
  struct synod_impl *im = impl_of(s);
  if (im->fill_channel[0] != '\0') {
    channel_delete(im, im->fill_channel);
  }
}

static const struct chb_system_ops synod_ops = {
    .start = synod_start,
    .publish = synod_publish,
    .fanout = synod_fanout,
    .fanout_stalls = true,
    .fill = synod_fill,
    .catchup = synod_catchup,
    .unfill = synod_unfill,
    .stop = synod_stop,
};

void chb_synod_init(struct chb_system *s) {
  memset(s, 0, sizeof *s);
  s->name = "synod";
  s->ops = &synod_ops;
}
