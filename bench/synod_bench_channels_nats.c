/* synod-bench-channels: NATS JetStream. Three nats-server processes
 * (Debian's, 2.9) in one cluster with JetStream on, each with its own
 * store directory; R3 file streams; driven by cnats (libnats 3.4), whose
 * connections run their own threads: closed-loop publishers with
 * js_PublishAsync (the next publish from the ack handler), ordered push
 * consumers for fan-out and catch-up. */
#include <inttypes.h>
#include <limits.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "synod_bench_channels.h"

#define NODES 3
#define ADMIN_WAIT_MS 10000
#define READY_BOUND_MS 30000
#define START_BOUND_MS 10000
#define DELIVER_BOUND_MS 5000
#define CATCHUP_BOUND_MS 120000
#define FILL_PENDING 8192

struct nats_impl {
  char bin[PATH_MAX];
  char urls[NODES][64];
  const char *url_ptrs[NODES];
  natsConnection *admin;
  jsCtx *admin_js;
  bool fill_made;
};

static struct nats_impl *impl_of(struct chb_system *s) {
  return s->impl;
}

/* Connects to the given servers (all, or one). pool: callbacks on the
 * library's shared delivery pool, else on each subscription's thread.
 * asap: every publish is written at once, else buffered and flushed by
 * the connection's flusher thread (cnats' default). */
static natsStatus nats_connect(const char **urls, int n, bool pool, bool asap,
                               const char *name, natsConnection **out) {
  natsOptions *opts = NULL;
  natsStatus st = natsOptions_Create(&opts);
  if (st == NATS_OK) {
    st = natsOptions_SetServers(opts, urls, n);
  }
  if (st == NATS_OK) {
    st = natsOptions_SetNoRandomize(opts, n == 1);
  }
  if (st == NATS_OK) {
    st = natsOptions_SetSendAsap(opts, asap);
  }
  if (st == NATS_OK) {
    st = natsOptions_UseGlobalMessageDelivery(opts, pool);
  }
  if (st == NATS_OK) {
    st = natsOptions_SetName(opts, name);
  }
  if (st == NATS_OK) {
    st = natsOptions_SetMaxPendingMsgs(opts, 1000000);
  }
  if (st == NATS_OK) {
    st = natsConnection_Connect(out, opts);
  }
  natsOptions_Destroy(opts);
  return st;
}

static natsStatus stream_add(jsCtx *js, const char *name, const char *subject,
                             char *err, size_t len) {
  jsStreamConfig sc;
  jsStreamInfo *si = NULL;
  jsErrCode jerr = 0;
  const char *subjects[1] = {subject};
  natsStatus st;
  jsStreamConfig_Init(&sc);
  sc.Name = name;
  sc.Subjects = subjects;
  sc.SubjectsLen = 1;
  sc.Storage = js_FileStorage;
  sc.Replicas = NODES;
  st = js_AddStream(&si, js, &sc, NULL, &jerr);
  if (st != NATS_OK) {
    snprintf(err, len, "add stream %s: %s (%d): %s", name,
             natsStatus_GetText(st), (int)jerr, nats_GetLastError(NULL));
  }
  jsStreamInfo_Destroy(si);
  return st;
}

static void stream_delete(struct nats_impl *im, const char *name) {
  jsErrCode jerr = 0;
  natsStatus st = js_DeleteStream(im->admin_js, name, NULL, &jerr);
  if (st != NATS_OK) {
    fprintf(stderr, "nats: delete stream %s: %s (%d)\n", name,
            natsStatus_GetText(st), (int)jerr);
  }
}

/* ================================================================ start */

/* "2.9.10" from "nats-server: v2.9.10"; major*100+minor, or 0. */
static int version_read(struct nats_impl *im, char *out, size_t len) {
  char cmd[PATH_MAX + 32], line[128];
  const char *v;
  int major = 0, minor = 0;
  snprintf(cmd, sizeof cmd, "'%s' --version 2>&1", im->bin);
  chb_command_line(cmd, line, sizeof line);
  v = strstr(line, " v");
  v = v != NULL ? v + 2 : line;
  snprintf(out, len, "%.40s", v);
  if (sscanf(v, "%d.%d", &major, &minor) != 2) {
    return 0;
  }
  return major * 100 + minor;
}

static int config_write(const char *path, int i, const int *ports,
                        const char *dir, const char *sync) {
  FILE *f = fopen(path, "w");
  if (f == NULL) {
    return -1;
  }
  fprintf(f, "server_name: \"nats-%d\"\nlisten: \"127.0.0.1:%d\"\n", i,
          ports[i]);
  fprintf(f, "jetstream {\n  store_dir: \"%s/nats-%d\"\n", dir, i);
  if (sync != NULL) {
    fprintf(f, "  sync_interval: \"%s\"\n", sync);
  }
  fprintf(f, "}\ncluster {\n  name: \"bench\"\n  listen: \"127.0.0.1:%d\"\n",
          ports[NODES + i]);
  fprintf(f, "  routes: [");
  for (int j = 0; j < NODES; j++) {
    fprintf(f, "%s\"nats-route://127.0.0.1:%d\"", j ? ", " : "",
            ports[NODES + j]);
  }
  fprintf(f, "]\n}\n");
  return fclose(f) == 0 ? 0 : -1;
}

/* Ready when a client can add an R3 stream (the meta group has a
 * leader and every server has joined). */
static int nats_ready(struct chb_system *s, struct nats_impl *im) {
  uint64_t until = chb_now_ns() + READY_BOUND_MS * 1000000ull;
  jsOptions jo;
  natsStatus st = NATS_ERR;
  char err[CHB_ERRMSG_BYTES] = "";
  while (chb_now_ns() < until) {
    for (int i = 0; i < s->nprocs; i++) {
      if (chb_exited(s->pids[i])) {
        snprintf(s->why, sizeof s->why, "%s exited during start-up",
                 s->proc_names[i]);
        s->pids[i] = 0;
        return -1;
      }
    }
    if (im->admin == NULL &&
        nats_connect(im->url_ptrs, NODES, false, true, "bench admin",
                     &im->admin) != NATS_OK) {
      im->admin = NULL;
      chb_sleep_ms(100);
      continue;
    }
    if (im->admin_js == NULL) {
      jsOptions_Init(&jo);
      jo.Wait = ADMIN_WAIT_MS;
      natsConnection_JetStream(&im->admin_js, im->admin, &jo);
    }
    st = stream_add(im->admin_js, "READY", "ready", err, sizeof err);
    if (st == NATS_OK) {
      stream_delete(im, "READY");
      return 0;
    }
    chb_sleep_ms(200);
  }
  snprintf(s->why, sizeof s->why, "JetStream not ready in %d s: %.200s",
           READY_BOUND_MS / 1000, err);
  return -1;
}

static void durability_write(struct chb_system *s, int version,
                             const char *sync) {
  if (sync != NULL) {
    snprintf(s->durability, sizeof s->durability,
             "acknowledged once the stream's Raft group (R3) has it in the "
             "logs of a majority; sync_interval: %s in the configuration",
             sync);
  } else if (version < 210) {
    snprintf(s->durability, sizeof s->durability,
             "acknowledged once the stream's Raft group (R3) has it in the "
             "logs of a majority: written to each server's page cache, NOT "
             "fsynced. nats-server %s fsyncs a stream's files every 2 min and "
             "its Raft log every 5 min (server/stream.go, "
             "jetstream_cluster.go), and has no option to fsync every write "
             "(sync_interval, with \"always\", came in 2.10). A crash of the "
             "processes loses nothing acknowledged; a power loss of a "
             "majority of machines may",
             s->version);
  } else {
    snprintf(s->durability, sizeof s->durability,
             "acknowledged once the stream's Raft group (R3) has it in the "
             "logs of a majority, not fsynced per write: the default "
             "sync_interval (2 min); --nats-sync always would fsync each");
  }
}

static int nats_start(struct chb_system *s, const struct chb_opts *o,
                      const char *dir) {
  struct nats_impl *im = calloc(1, sizeof *im);
  int ports[2 * NODES], version;
  const char *env = getenv("NATS_SERVER");
  s->impl = im;
  if (env != NULL && env[0] != '\0') {
    snprintf(im->bin, sizeof im->bin, "%s", env);
  } else {
    chb_command_line("command -v nats-server 2>/dev/null", im->bin,
                     sizeof im->bin);
  }
  if (im->bin[0] == '\0' || access(im->bin, X_OK) != 0) {
    snprintf(s->why, sizeof s->why,
             "nats-server not found (Debian: apt-get install nats-server; "
             "make bench-channels installs it)");
    return -1;
  }
  version = version_read(im, s->version, sizeof s->version);
  if (o->nats_sync != NULL && version < 210) {
    snprintf(s->why, sizeof s->why,
             "--nats-sync needs nats-server 2.10 or later; %s has no "
             "sync_interval option",
             s->version);
    return -1;
  }
  if (chb_free_ports(ports, 2 * NODES) != 0) {
    snprintf(s->why, sizeof s->why, "no free ports");
    return -1;
  }
  for (int i = 0; i < NODES; i++) {
    char conf[PATH_MAX], log[PATH_MAX];
    snprintf(conf, sizeof conf, "%.4000s/nats-%d.conf", dir, i);
    snprintf(log, sizeof log, "%.4000s/nats-%d.log", dir, i);
    snprintf(im->urls[i], sizeof im->urls[i], "nats://127.0.0.1:%d", ports[i]);
    im->url_ptrs[i] = im->urls[i];
    if (config_write(conf, i, ports, dir, o->nats_sync) != 0) {
      snprintf(s->why, sizeof s->why, "cannot write %.200s", conf);
      return -1;
    }
    char *argv[] = {im->bin, "-c", conf, NULL};
    s->pids[i] = chb_spawn(argv, log);
    snprintf(s->proc_names[i], sizeof s->proc_names[i], "nats-%d", i);
    s->nprocs = i + 1;
    if (s->pids[i] < 0) {
      snprintf(s->why, sizeof s->why, "cannot start %.200s", im->bin);
      return -1;
    }
  }
  nats_SetMessageDeliveryPoolSize(o->threads > 0 ? o->threads : 1);
  if (nats_ready(s, im) != 0) {
    return -1;
  }
  snprintf(s->setup, sizeof s->setup,
           "3 nats-server %s in one cluster (routes), JetStream on, own "
           "store dirs; R3 file streams; client cnats %s",
           s->version, nats_GetVersion());
  durability_write(s, version, o->nats_sync);
  return 0;
}

static void nats_stop(struct chb_system *s) {
  struct nats_impl *im = impl_of(s);
  if (im != NULL) {
    jsCtx_Destroy(im->admin_js);
    natsConnection_Destroy(im->admin);
  }
  for (int i = 0; i < s->nprocs; i++) {
    chb_stop_pid(s->pids[i], 10000);
    s->pids[i] = 0;
  }
  nats_CloseAndWait(5000);
  free(im);
  s->impl = NULL;
}

/* ============================================================ publish */

struct nrun;

struct npub {
  struct nrun *run;
  jsCtx *js;
  int index;
  pthread_mutex_t mu;
  int acked; /* of the batch in flight: acks, and sends that failed */
  bool batch_failed;
  uint64_t start_ns;
  int errors_in_a_row;
  uint64_t msgs, publishes, errors;
  struct chb_hist hist;
  char first_error[CHB_ERRMSG_BYTES];
};

struct nconn {
  natsConnection *nc;
  jsCtx *js;
};

struct nrun {
  const char *subject;
  int batch;
  uint64_t window_ns, end_ns;
  _Atomic int active;
  struct npub *pubs;
  uint8_t payload[CHB_MSG_BYTES * 1]; /* template; the index goes in front */
};

static void npub_batch(struct npub *p);

/* One more of the batch is accounted for (acked, or failed to send). The
 * caller that completes the batch starts the next one. */
static void npub_account(struct npub *p, bool failed) {
  struct nrun *run = p->run;
  bool done;
  pthread_mutex_lock(&p->mu);
  p->batch_failed |= failed;
  done = ++p->acked == run->batch;
  pthread_mutex_unlock(&p->mu);
  if (!done) {
    return;
  }
  uint64_t now = chb_now_ns();
  if (p->batch_failed) {
    p->errors_in_a_row++;
  } else {
    p->errors_in_a_row = 0;
    if (now >= run->window_ns && now < run->end_ns) {
      p->msgs += (uint64_t)run->batch;
      p->publishes++;
      chb_hist_record(&p->hist, (now - p->start_ns) / 1000);
    }
  }
  if (now < run->end_ns && p->errors_in_a_row < CHB_ERRORS_IN_A_ROW_MAX) {
    npub_batch(p);
  } else {
    atomic_fetch_sub(&run->active, 1);
  }
}

static void npub_batch(struct npub *p) {
  struct nrun *run = p->run;
  uint8_t msg[CHB_MSG_BYTES];
  chb_payload_fill(msg, 0, (uint64_t)p->index);
  pthread_mutex_lock(&p->mu);
  p->acked = 0;
  p->batch_failed = false;
  p->start_ns = chb_now_ns();
  pthread_mutex_unlock(&p->mu);
  for (int k = 0; k < run->batch; k++) {
    natsStatus st =
        js_PublishAsync(p->js, run->subject, msg, CHB_MSG_BYTES, NULL);
    if (st != NATS_OK) {
      chb_error(p->first_error, &p->errors, "js_PublishAsync: %s",
                natsStatus_GetText(st));
      npub_account(p, true);
    }
  }
}

static void npub_ack_cb(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae,
                        void *closure) {
  struct nrun *run = closure;
  uint64_t send_ns, index;
  (void)js;
  chb_payload_read((const uint8_t *)natsMsg_GetData(msg),
                   (size_t)natsMsg_GetDataLength(msg), &send_ns, &index);
  natsMsg_Destroy(msg);
  if (index >= (uint64_t)INT_MAX || run->pubs == NULL) {
    return;
  }
  struct npub *p = &run->pubs[index];
  if (pa == NULL) {
    chb_error(p->first_error, &p->errors, "publish ack: %s: %s",
              pae ? natsStatus_GetText(pae->Err) : "none",
              pae && pae->ErrText ? pae->ErrText : "");
  }
  npub_account(p, pa == NULL);
}

static void nrun_merge(struct nrun *run, int n, struct chb_pub *r) {
  for (int i = 0; i < n; i++) {
    struct npub *p = &run->pubs[i];
    r->msgs += p->msgs;
    r->publishes += p->publishes;
    chb_hist_merge(&r->hist, &p->hist);
    if (p->errors > 0 && r->errors == 0) {
      snprintf(r->first_error, sizeof r->first_error, "%s", p->first_error);
    }
    r->errors += p->errors;
    pthread_mutex_destroy(&p->mu);
  }
}

static int nats_publish(struct chb_system *s, const struct chb_opts *o,
                        struct chb_pub *r) {
  struct nats_impl *im = impl_of(s);
  int conns = o->conns > 0 ? o->conns : o->publishers;
  int per_conn = (o->publishers + conns - 1) / conns;
  struct nconn *cs = calloc((size_t)conns, sizeof *cs);
  struct nrun run = {.batch = r->batch};
  struct chb_sampler smp;
  char stream[64], subject[64];
  uint64_t start;
  snprintf(stream, sizeof stream, "PUB%u", r->run_id);
  snprintf(subject, sizeof subject, "pub.%u", r->run_id);
  run.subject = subject;
  if (stream_add(im->admin_js, stream, subject, r->first_error,
                 sizeof r->first_error) != NATS_OK) {
    r->errors++;
    free(cs);
    return -1;
  }
  run.pubs = calloc((size_t)o->publishers, sizeof *run.pubs);
  for (int j = 0; j < conns; j++) {
    jsOptions jo;
    natsStatus st = nats_connect(im->url_ptrs, NODES, true, false,
                                 "bench publisher", &cs[j].nc);
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = (int64_t)per_conn * r->batch + 64;
    jo.PublishAsync.AckHandler = npub_ack_cb;
    jo.PublishAsync.AckHandlerClosure = &run;
    if (st == NATS_OK) {
      st = natsConnection_JetStream(&cs[j].js, cs[j].nc, &jo);
    }
    if (st != NATS_OK) {
      chb_error(r->first_error, &r->errors, "connect: %s",
                natsStatus_GetText(st));
      r->aborted = true;
      break;
    }
  }
  for (int i = 0; i < o->publishers; i++) {
    run.pubs[i].run = &run;
    run.pubs[i].index = i;
    run.pubs[i].js = cs[i % conns].js;
    pthread_mutex_init(&run.pubs[i].mu, NULL);
  }
  start = chb_now_ns();
  run.window_ns = start + (uint64_t)(o->warmup_s * 1e9);
  run.end_ns = run.window_ns + (uint64_t)(o->seconds * 1e9);
  chb_sampler_start(&smp, s, run.window_ns, run.end_ns);
  if (!r->aborted) {
    atomic_store(&run.active, o->publishers);
    for (int i = 0; i < o->publishers; i++) {
      npub_batch(&run.pubs[i]);
    }
    while (atomic_load(&run.active) > 0 &&
           chb_now_ns() < run.end_ns + CHB_DRAIN_MS * 1000000ull) {
      chb_sleep_ms(CHB_TICK_MS);
    }
    if (atomic_load(&run.active) > 0) {
      chb_error(r->first_error, &r->errors,
                "%d publishers still waiting %d ms after the run",
                atomic_load(&run.active), CHB_DRAIN_MS);
      r->aborted = true;
    }
  }
  chb_sampler_finish(&smp, &r->client_cpu, r->server_cpu);
  for (int j = 0; j < conns; j++) {
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 5000;
    if (cs[j].js != NULL) {
      js_PublishAsyncComplete(cs[j].js, &po);
    }
    natsConnection_Close(cs[j].nc);
  }
  for (int j = 0; j < conns; j++) {
    jsCtx_Destroy(cs[j].js);
    natsConnection_Destroy(cs[j].nc);
  }
  nrun_merge(&run, o->publishers, r);
  free(run.pubs);
  free(cs);
  stream_delete(im, stream);
  return 0;
}

/* ============================================================= fan-out */

struct nfan;

struct nsub {
  struct nfan *f;
  natsConnection *nc;
  jsCtx *js;
  natsSubscription *sub;
  uint8_t *seen;
  _Atomic uint64_t distinct;
  uint64_t deliveries, duplicates, unordered, last_seq;
  bool any;
  struct chb_hist hist;
  uint64_t errors;
  char first_error[CHB_ERRMSG_BYTES];
};

struct nfan {
  uint64_t n, warm_seq;
  _Atomic uint64_t acked, pub_errors;
  uint8_t *acked_seq;
  char pub_error[CHB_ERRMSG_BYTES];
  pthread_mutex_t mu; /* pub_error */
  struct nsub *subs;
};

static void nsub_msg_cb(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
                        void *closure) {
  struct nsub *x = closure;
  struct nfan *f = x->f;
  uint64_t now = chb_now_ns(), send_ns, seq;
  (void)nc;
  (void)sub;
  chb_payload_read((const uint8_t *)natsMsg_GetData(msg),
                   (size_t)natsMsg_GetDataLength(msg), &send_ns, &seq);
  natsMsg_Destroy(msg);
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

static void nfan_ack_cb(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae,
                        void *closure) {
  struct nfan *f = closure;
  uint64_t send_ns, seq;
  (void)js;
  chb_payload_read((const uint8_t *)natsMsg_GetData(msg),
                   (size_t)natsMsg_GetDataLength(msg), &send_ns, &seq);
  natsMsg_Destroy(msg);
  if (pa != NULL && seq < f->n) {
    f->acked_seq[seq] = 1;
    atomic_fetch_add(&f->acked, 1);
    return;
  }
  pthread_mutex_lock(&f->mu);
  uint64_t errors = atomic_load(&f->pub_errors);
  chb_error(f->pub_error, &errors, "publish ack: %s",
            pae ? natsStatus_GetText(pae->Err) : "none");
  atomic_store(&f->pub_errors, errors);
  pthread_mutex_unlock(&f->mu);
}

static int nfan_subscribe(struct nats_impl *im, struct nfan *f, int i,
                          const char *stream, const char *subject) {
  struct nsub *x = &f->subs[i];
  jsSubOptions so;
  jsErrCode jerr = 0;
  natsStatus st;
  /* One server each, spread over the three. */
  st = nats_connect(&im->url_ptrs[i % NODES], 1, false, true,
                    "bench subscriber", &x->nc);
  if (st == NATS_OK) {
    st = natsConnection_JetStream(&x->js, x->nc, NULL);
  }
  jsSubOptions_Init(&so);
  so.Stream = stream;
  so.Ordered = true;
  if (st == NATS_OK) {
    st =
        js_Subscribe(&x->sub, x->js, subject, nsub_msg_cb, x, NULL, &so, &jerr);
  }
  if (st != NATS_OK) {
    chb_error(x->first_error, &x->errors, "subscribe on %s: %s (%d)",
              im->urls[i % NODES], natsStatus_GetText(st), (int)jerr);
    return -1;
  }
  return 0;
}

/* Paced: every millisecond, the messages due by then at the rate. */
static void nfan_publish(struct nfan *f, jsCtx *js, const char *subject,
                         int rate) {
  uint64_t t0 = chb_now_ns(), sent = 0;
  while (sent < f->n) {
    uint64_t now = chb_now_ns();
    uint64_t due = (uint64_t)((double)(now - t0) / 1e9 * rate);
    due = due < f->n ? due : f->n;
    while (sent < due) {
      uint8_t msg[CHB_MSG_BYTES];
      natsStatus st;
      chb_payload_fill(msg, chb_now_ns(), sent);
      st = js_PublishAsync(js, subject, msg, CHB_MSG_BYTES, NULL);
      sent++;
      if (st != NATS_OK) {
        pthread_mutex_lock(&f->mu);
        uint64_t errors = atomic_load(&f->pub_errors);
        chb_error(f->pub_error, &errors, "js_PublishAsync: %s",
                  natsStatus_GetText(st));
        atomic_store(&f->pub_errors, errors);
        pthread_mutex_unlock(&f->mu);
      }
    }
    chb_sleep_until(t0 + ((now - t0) / 1000000 + 1) * 1000000);
  }
}

static void nfan_collect(struct nfan *f, int subs, struct chb_fanout *r) {
  r->acked = atomic_load(&f->acked);
  r->errors = atomic_load(&f->pub_errors);
  snprintf(r->first_error, sizeof r->first_error, "%s", f->pub_error);
  for (int i = 0; i < subs; i++) {
    struct nsub *x = &f->subs[i];
    r->delivered += x->deliveries;
    r->duplicates += x->duplicates;
    r->unordered += x->unordered;
    for (uint64_t q = 0; q < f->n; q++) {
      r->missing += f->acked_seq[q] && !x->seen[q];
    }
    chb_hist_merge(&r->hist, &x->hist);
    chb_hist_merge(&r->hist_by_proc[i % NODES], &x->hist);
    if (x->errors > 0 && r->errors == 0) {
      snprintf(r->first_error, sizeof r->first_error, "subscriber %d: %.200s",
               i, x->first_error);
    }
    r->errors += x->errors;
  }
}

static bool nfan_delivered(struct nfan *f, int subs) {
  uint64_t acked = atomic_load(&f->acked);
  for (int i = 0; i < subs; i++) {
    if (f->subs[i].sub != NULL && atomic_load(&f->subs[i].distinct) < acked) {
      return false;
    }
  }
  return true;
}

static int nats_fanout(struct chb_system *s, const struct chb_opts *o,
                       struct chb_fanout *r) {
  struct nats_impl *im = impl_of(s);
  struct nfan f = {0};
  natsConnection *pc = NULL;
  jsCtx *pjs = NULL;
  jsOptions jo;
  jsPubOptions po;
  struct chb_sampler smp;
  char stream[64], subject[64];
  bool ok = true;
  uint64_t t_done;
  snprintf(stream, sizeof stream, "FAN%u", r->run_id);
  snprintf(subject, sizeof subject, "fan.%u", r->run_id);
  if (stream_add(im->admin_js, stream, subject, r->first_error,
                 sizeof r->first_error) != NATS_OK) {
    r->errors++;
    return -1;
  }
  f.n = (uint64_t)(o->fanout_rate * o->fanout_s);
  f.warm_seq = (uint64_t)(o->fanout_rate * o->warmup_s);
  f.acked_seq = calloc(f.n + 1, 1);
  f.subs = calloc((size_t)o->subscribers, sizeof *f.subs);
  pthread_mutex_init(&f.mu, NULL);
  for (int i = 0; i < o->subscribers; i++) {
    f.subs[i].f = &f;
    f.subs[i].seen = calloc(f.n + 1, 1);
    ok = ok && nfan_subscribe(im, &f, i, stream, subject) == 0;
  }
  jsOptions_Init(&jo);
  jo.PublishAsync.MaxPending = 100000;
  jo.PublishAsync.AckHandler = nfan_ack_cb;
  jo.PublishAsync.AckHandlerClosure = &f;
  ok = ok &&
       nats_connect(im->url_ptrs, NODES, false, true, "bench fan-out publisher",
                    &pc) == NATS_OK &&
       natsConnection_JetStream(&pjs, pc, &jo) == NATS_OK;
  chb_sampler_start(&smp, s, chb_now_ns() + 200000000ull,
                    chb_now_ns() + (uint64_t)(o->fanout_s * 1e9));
  if (ok) {
    nfan_publish(&f, pjs, subject, o->fanout_rate);
    r->sent = f.n;
    jsPubOptions_Init(&po);
    po.MaxWait = 10000;
    js_PublishAsyncComplete(pjs, &po);
    t_done = chb_now_ns();
    while (!nfan_delivered(&f, o->subscribers) &&
           chb_now_ns() < t_done + DELIVER_BOUND_MS * 1000000ull) {
      chb_sleep_ms(5);
    }
  } else if (r->errors == 0) {
    chb_error(r->first_error, &r->errors, "could not set the run up");
  }
  chb_sampler_finish(&smp, &r->client_cpu, r->server_cpu);
  for (int i = 0; i < o->subscribers; i++) {
    if (f.subs[i].sub != NULL) {
      natsSubscription_Unsubscribe(f.subs[i].sub);
    }
    natsConnection_Close(f.subs[i].nc);
    natsSubscription_Destroy(f.subs[i].sub);
    jsCtx_Destroy(f.subs[i].js);
    natsConnection_Destroy(f.subs[i].nc);
  }
  natsConnection_Close(pc);
  jsCtx_Destroy(pjs);
  natsConnection_Destroy(pc);
  nfan_collect(&f, o->subscribers, r);
  for (int i = 0; i < o->subscribers; i++) {
    free(f.subs[i].seen);
  }
  pthread_mutex_destroy(&f.mu);
  free(f.subs);
  free(f.acked_seq);
  stream_delete(im, stream);
  return 0;
}

/* ======================================================= fill, catch-up */

struct nfill {
  _Atomic uint64_t acked, errors;
  char first_error[CHB_ERRMSG_BYTES];
};

static void nfill_ack_cb(jsCtx *js, natsMsg *msg, jsPubAck *pa,
                         jsPubAckErr *pae, void *closure) {
  struct nfill *fl = closure;
  (void)js;
  natsMsg_Destroy(msg);
  if (pa != NULL) {
    atomic_fetch_add(&fl->acked, 1);
  } else if (atomic_fetch_add(&fl->errors, 1) == 0) {
    snprintf(fl->first_error, sizeof fl->first_error, "publish ack: %s",
             pae ? natsStatus_GetText(pae->Err) : "none");
  }
}

/* Until the stream holds n messages and every replica is current. */
static int nfill_settle(struct nats_impl *im, uint64_t n, char *err,
                        size_t len) {
  uint64_t until = chb_now_ns() + 60000000000ull;
  for (;;) {
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    bool settled = false;
    if (js_GetStreamInfo(&si, im->admin_js, "FILL", NULL, &jerr) == NATS_OK) {
      settled = si->State.Msgs == n && si->Cluster != NULL;
      for (int i = 0; settled && i < si->Cluster->ReplicasLen; i++) {
        settled = si->Cluster->Replicas[i]->Current &&
                  si->Cluster->Replicas[i]->Lag == 0;
      }
      jsStreamInfo_Destroy(si);
    }
    if (settled) {
      return 0;
    }
    if (chb_now_ns() > until) {
      snprintf(err, len, "the stream's replicas did not catch up in 60 s");
      return -1;
    }
    chb_sleep_ms(100);
  }
}

static int nats_fill(struct chb_system *s, const struct chb_opts *o,
                     struct chb_fill *r) {
  struct nats_impl *im = impl_of(s);
  struct nfill fl = {0};
  natsConnection *nc = NULL;
  jsCtx *js = NULL;
  jsOptions jo;
  jsPubOptions po;
  uint64_t t0 = chb_now_ns();
  if (stream_add(im->admin_js, "FILL", "fill", r->first_error,
                 sizeof r->first_error) != NATS_OK) {
    r->errors++;
    return -1;
  }
  im->fill_made = true;
  jsOptions_Init(&jo);
  jo.PublishAsync.MaxPending = FILL_PENDING;
  jo.PublishAsync.AckHandler = nfill_ack_cb;
  jo.PublishAsync.AckHandlerClosure = &fl;
  if (nats_connect(im->url_ptrs, NODES, false, false, "bench fill", &nc) !=
          NATS_OK ||
      natsConnection_JetStream(&js, nc, &jo) != NATS_OK) {
    chb_error(r->first_error, &r->errors, "connect: %s",
              nats_GetLastError(NULL));
    natsConnection_Destroy(nc);
    return -1;
  }
  for (uint64_t i = 0; i < o->retained && r->errors < 100;) {
    uint8_t msg[CHB_MSG_BYTES];
    natsStatus st;
    chb_payload_fill(msg, 0, i + 1); /* seq = the stream sequence */
    st = js_PublishAsync(js, "fill", msg, CHB_MSG_BYTES, NULL);
    if (st == NATS_OK) {
      i++;
    } else if (st != NATS_TIMEOUT) { /* a stall at MaxPending is retried */
      chb_error(r->first_error, &r->errors, "js_PublishAsync: %s",
                natsStatus_GetText(st));
    }
  }
  jsPubOptions_Init(&po);
  po.MaxWait = 120000;
  js_PublishAsyncComplete(js, &po);
  natsConnection_Close(nc);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  r->n = atomic_load(&fl.acked);
  if (atomic_load(&fl.errors) > 0) {
    r->errors += atomic_load(&fl.errors);
    snprintf(r->first_error, sizeof r->first_error, "%s", fl.first_error);
  }
  if (r->errors == 0 && nfill_settle(im, o->retained, r->first_error,
                                     sizeof r->first_error) != 0) {
    r->errors++;
  }
  r->seconds = (double)(chb_now_ns() - t0) / 1e9;
  return r->errors == 0 ? 0 : -1;
}

struct nreader {
  uint64_t n, next;
  _Atomic uint64_t received;
  uint64_t unordered;
  _Atomic uint64_t t_last;
};

static void nreader_cb(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
                       void *closure) {
  struct nreader *rd = closure;
  uint64_t send_ns, seq;
  (void)nc;
  (void)sub;
  chb_payload_read((const uint8_t *)natsMsg_GetData(msg),
                   (size_t)natsMsg_GetDataLength(msg), &send_ns, &seq);
  natsMsg_Destroy(msg);
  if (seq != rd->next) {
    rd->unordered++;
  }
  rd->next = seq + 1;
  if (atomic_fetch_add(&rd->received, 1) + 1 == rd->n) {
    atomic_store(&rd->t_last, chb_now_ns());
  }
}

static int nats_catchup(struct chb_system *s, const struct chb_opts *o,
                        struct chb_catchup *r) {
  struct nats_impl *im = impl_of(s);
  struct nreader rd = {.n = r->n, .next = 1};
  natsConnection *nc = NULL;
  jsCtx *js = NULL;
  natsSubscription *sub = NULL;
  jsSubOptions so;
  jsErrCode jerr = 0;
  natsStatus st;
  int node = r->rep % NODES;
  uint64_t t0;
  (void)o;
  snprintf(r->where, sizeof r->where, "nats-%d", node);
  st = nats_connect(&im->url_ptrs[node], 1, false, true, "bench catch-up", &nc);
  if (st == NATS_OK) {
    st = natsConnection_JetStream(&js, nc, NULL);
  }
  jsSubOptions_Init(&so);
  so.Stream = "FILL";
  so.Ordered = true;
  t0 = chb_now_ns();
  if (st == NATS_OK) {
    st = js_Subscribe(&sub, js, "fill", nreader_cb, &rd, NULL, &so, &jerr);
  }
  if (st != NATS_OK) {
    snprintf(r->first_error, sizeof r->first_error, "subscribe: %s (%d)",
             natsStatus_GetText(st), (int)jerr);
  } else {
    while (atomic_load(&rd.t_last) == 0 &&
           chb_now_ns() < t0 + CATCHUP_BOUND_MS * 1000000ull) {
      chb_sleep_ms(1);
    }
    natsSubscription_Unsubscribe(sub);
  }
  natsConnection_Close(nc);
  natsSubscription_Destroy(sub);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  r->received = atomic_load(&rd.received);
  r->unordered = rd.unordered;
  if (atomic_load(&rd.t_last) != 0) {
    r->seconds = (double)(atomic_load(&rd.t_last) - t0) / 1e9;
  } else if (r->first_error[0] == '\0') {
    snprintf(r->first_error, sizeof r->first_error,
             "%" PRIu64 " of %" PRIu64 " messages in %d s", r->received, r->n,
             CATCHUP_BOUND_MS / 1000);
  }
  return r->received >= r->n ? 0 : -1;
}

static void nats_unfill(struct chb_system *s) {
  struct nats_impl *im = impl_of(s);
  if (im->fill_made) {
    stream_delete(im, "FILL");
    im->fill_made = false;
  }
}

static const struct chb_system_ops nats_ops = {
    .start = nats_start,
    .publish = nats_publish,
    .fanout = nats_fanout,
    .fill = nats_fill,
    .catchup = nats_catchup,
    .unfill = nats_unfill,
    .stop = nats_stop,
};

void chb_nats_init(struct chb_system *s) {
  memset(s, 0, sizeof *s);
  s->name = "nats";
  s->ops = &nats_ops;
}
