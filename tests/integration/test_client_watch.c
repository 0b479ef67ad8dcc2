/* Key watches through libsynod on 3 real synodd processes: a blocking
 * watch and an async one, both on a follower (endpoints in order) with a
 * small window so that deliveries split revisions, follow a prefix while
 * a writer puts single keys and 3-key transactions; the follower they are
 * on is SIGKILLed in the middle. Each must see exactly the written
 * (revision, event) sequence: no gap, no duplicate, previous values
 * where asked. Then a blocking watch from revision 1 under a small history
 * (synodd --keys-history) is refused with SYNOD_ECOMPACTED and the oldest
 * revision, and bad options are refused by the library. */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "cluster.h"
#include "raw_client.h"
#include "synod.h"
#include "synod.pb-c.h"

#define HISTORY 5000 /* synodd --keys-history */
#define ROUNDS 150   /* per phase: a put, and every third round a txn */
#define EVENTS_MAX 4096
#define WINDOW 4

#define OK(call) CHECK((call) == 0, "%s", synod_client_errmsg())

/* What was written (expected) or seen: (revision, event) and the key. */
struct ev {
  uint64_t revision;
  uint32_t event;
  char key[24];
  bool has_prev;
};

static struct ev written[EVENTS_MAX];
static size_t written_n;

/* ---------------------------------------------------------------- writes */

/* A put of one key, or a transaction of `n` keys, on the leader; records
 * the events it made. */
static void write_keys(struct raw *r, unsigned round, int n) {
  char keys[3][24];
  Synod__KeyPut puts[3];
  Synod__KeyOp ops[3], *ptrs[3];
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__KeyTxn t = SYNOD__KEY_TXN__INIT;
  for (int i = 0; i < n; i++) {
    /* Every key twice over the test: the second put has a previous. */
    snprintf(keys[i], sizeof keys[i], "w/%u", (round * 3 + (unsigned)i) % 500);
    synod__key_put__init(&puts[i]);
    puts[i].key.data = (uint8_t *)keys[i];
    puts[i].key.len = strlen(keys[i]);
    puts[i].value.data = (uint8_t *)"v";
    puts[i].value.len = 1;
    synod__key_op__init(&ops[i]);
    ops[i].op_case = SYNOD__KEY_OP__OP_PUT;
    ops[i].put = &puts[i];
    ptrs[i] = &ops[i];
  }
  t.n_success = (size_t)n;
  t.success = ptrs;
  req.body_case = SYNOD__REQUEST__BODY_KEY_TXN;
  req.key_txn = &t;
  Synod__ServerMessage *sm = raw_call(r, &req, NULL);
  CHECK(sm->response->error == NULL, "txn: %s", sm->response->error->message);
  uint64_t rev = sm->response->key_txn->revision;
  synod__server_message__free_unpacked(sm, NULL);
  for (int i = 0; i < n; i++) {
    CHECK(written_n < EVENTS_MAX, "too many writes");
    struct ev *e = &written[written_n++];
    e->revision = rev;
    e->event = (uint32_t)i + 1;
    memcpy(e->key, keys[i], sizeof e->key);
  }
}

static void write_phase(struct raw *r, unsigned first_round) {
  for (unsigned k = first_round; k < first_round + ROUNDS; k++) {
    write_keys(r, k, k % 3 == 0 ? 3 : 1);
  }
}

/* ---------------------------------------------------------------- checks */

static void check_seen(const char *who, const struct ev *seen, size_t n) {
  CHECK(n == written_n, "%s saw %zu events, %zu were written", who, n,
        written_n);
  for (size_t i = 0; i < n; i++) {
    CHECK(seen[i].revision == written[i].revision &&
              seen[i].event == written[i].event &&
              strcmp(seen[i].key, written[i].key) == 0,
          "%s: event %zu is %s at (%" PRIu64 ", %u), written was %s at "
          "(%" PRIu64 ", %u): a gap or a duplicate",
          who, i, seen[i].key, seen[i].revision, seen[i].event, written[i].key,
          written[i].revision, written[i].event);
  }
}

static void ev_of(struct ev *out, const struct synod_key_event *e) {
  out->revision = e->revision;
  out->event = e->event;
  size_t len =
      e->kv.key_len < sizeof out->key - 1 ? e->kv.key_len : sizeof out->key - 1;
  memcpy(out->key, e->kv.key, len);
  out->key[len] = 0;
  out->has_prev = e->has_prev;
}

/* ------------------------------------------------------------ async watch */

struct async_watcher {
  uv_loop_t loop;
  uv_async_t stop;
  pthread_t thread;
  struct synod_async *a;
  struct synod_async_subscription *sub;
  pthread_mutex_t mu;
  struct ev seen[EVENTS_MAX];
  size_t n;
  int ended; /* -1 while it runs */
  bool started;
  bool out_of_order_batch;
};

static void aw_events(void *arg, const struct synod_key_event *evs, size_t n) {
  struct async_watcher *w = arg;
  pthread_mutex_lock(&w->mu);
  for (size_t i = 0; i < n && w->n < EVENTS_MAX; i++) {
    ev_of(&w->seen[w->n++], &evs[i]);
  }
  pthread_mutex_unlock(&w->mu);
  usleep(5000); /* a slow consumer: the replica dies while it is behind */
}

static void aw_end(void *arg, int status, const char *errmsg,
                   uint64_t first_available) {
  struct async_watcher *w = arg;
  (void)first_available;
  printf("async watch ended: %s\n", errmsg);
  pthread_mutex_lock(&w->mu);
  w->ended = status;
  pthread_mutex_unlock(&w->mu);
}

static void aw_start(void *arg, const struct synod_key_watch_start *start) {
  struct async_watcher *w = arg;
  (void)start;
  pthread_mutex_lock(&w->mu);
  w->started = true;
  pthread_mutex_unlock(&w->mu);
}

static void aw_stop_cb(uv_async_t *h) {
  struct async_watcher *w = h->data;
  if (w->ended < 0) {
    synod_async_unsubscribe(w->a, w->sub);
  }
  synod_async_close(w->a, NULL, NULL);
  uv_close((uv_handle_t *)&w->stop, NULL);
}

static void *aw_main(void *arg) {
  struct async_watcher *w = arg;
  uv_run(&w->loop, UV_RUN_DEFAULT);
  return NULL;
}

static void aw_begin(struct async_watcher *w, const char *endpoints,
                     uint64_t from) {
  struct synod_options o;
  struct synod_key_watch_options ko = {
      .key = "w/", .prefix = true, .from_revision = from, .window = WINDOW};
  memset(w, 0, sizeof *w);
  w->ended = -1;
  pthread_mutex_init(&w->mu, NULL);
  CHECK(uv_loop_init(&w->loop) == 0, "uv_loop_init");
  uv_async_init(&w->loop, &w->stop, aw_stop_cb);
  w->stop.data = w;
  synod_options_init(&o);
  o.endpoints = endpoints;
  o.endpoints_in_order = true;
  o.client_name = "async watcher";
  CHECK(synod_async_new(&w->loop, &o, &w->a) == 0, "synod_async_new");
  CHECK(synod_async_key_watch(w->a, &ko, aw_events, aw_end, aw_start, w,
                              &w->sub) == 0,
        "synod_async_key_watch: %s", synod_async_last_errmsg(w->a));
  CHECK(pthread_create(&w->thread, NULL, aw_main, w) == 0, "pthread_create");
}

static size_t aw_count(struct async_watcher *w) {
  pthread_mutex_lock(&w->mu);
  size_t n = w->n;
  CHECK(w->ended < 0, "the async watch ended with %d", w->ended);
  pthread_mutex_unlock(&w->mu);
  return n;
}

static void aw_finish(struct async_watcher *w) {
  uv_async_send(&w->stop);
  pthread_join(w->thread, NULL);
  uv_loop_close(&w->loop);
}

/* ------------------------------------------------------------- scenarios */

/* Endpoints with replica `first` first. */
static void endpoints_from(const struct cluster *c, int first, char *out,
                           size_t len) {
  size_t off = 0;
  for (int k = 0; k < c->n; k++) {
    int i = (first + k) % c->n;
    off += (size_t)snprintf(out + off, len - off, "%s%s", k ? "," : "",
                            c->nodes[i].client);
  }
}

static struct ev bseen[EVENTS_MAX];

/* Takes events from the blocking watch until it has `until`. */
static size_t take(struct synod_key_watch *w, size_t n, size_t until) {
  uint64_t deadline = test_now_ms() + 60000;
  while (n < until) {
    struct synod_key_event e;
    CHECK(test_now_ms() < deadline, "blocking watch: %zu of %zu events", n,
          until);
    int rv = synod_key_watch_next(w, 5000, &e);
    if (rv == SYNOD_ETIMEDOUT) {
      continue;
    }
    CHECK(rv == 0, "synod_key_watch_next: %s", synod_client_errmsg());
    CHECK(n < EVENTS_MAX, "too many events");
    CHECK(e.kv.key[e.kv.key_len] == '\0', "the key is not NUL-terminated");
    ev_of(&bseen[n++], &e);
  }
  return n;
}

static void scenario_failover(struct cluster *c) {
  int leader = cluster_wait_leader(c, 20000);
  int f = (leader + 1) % c->n;
  char endpoints[CLUSTER_NODES_MAX * 32];
  struct raw wr = raw_open(c->nodes[leader].client);
  static struct async_watcher aw;
  endpoints_from(c, f, endpoints, sizeof endpoints);

  /* Both start at the revision after a first put. */
  write_keys(&wr, 1000, 1);
  uint64_t from = written[0].revision + 1;
  written_n = 0;

  struct synod_options o;
  struct synod_client *cl;
  struct synod_key_watch *w;
  struct synod_key_watch_start start;
  struct synod_key_watch_options ko = {.key = "w/",
                                       .prefix = true,
                                       .from_revision = from,
                                       .prev_kv = true,
                                       .window = WINDOW};
  synod_options_init(&o);
  o.endpoints = endpoints;
  o.endpoints_in_order = true;
  o.client_name = "blocking watcher";
  CHECK(synod_client_new(&o, &cl) == 0, "%s", synod_client_errmsg());
  OK(synod_key_watch(cl, &ko, 10000, &w, &start));
  CHECK(start.revision == from && start.after_event == 0,
        "the watch starts at (%" PRIu64 ", %u), asked %" PRIu64, start.revision,
        start.after_event, from);
  aw_begin(&aw, endpoints, from);

  write_phase(&wr, 0);
  size_t n = take(w, 0, written_n / 2);
  uint64_t deadline = test_now_ms() + 30000;
  while (aw_count(&aw) < written_n / 3) {
    CHECK(test_now_ms() < deadline, "the async watch has %zu of %zu events",
          aw_count(&aw), written_n / 3);
    usleep(10000);
  }
  cluster_signal(c, f, SIGKILL);
  printf("SIGKILLed %s, the watches' replica, at %zu (blocking) and %zu "
         "(async) of %zu events\n",
         c->nodes[f].name, n, aw_count(&aw), written_n);
  write_phase(&wr, ROUNDS);
  n = take(w, n, written_n);
  check_seen("the blocking watch", bseen, n);
  /* Nothing more than was written. */
  struct synod_key_event extra;
  int rv = synod_key_watch_next(w, 300, &extra);
  CHECK(rv == SYNOD_ETIMEDOUT, "an event past the last write: %d", rv);
  /* Every key was written twice in all: the second put has a previous. */
  size_t with_prev = 0;
  for (size_t i = 0; i < n; i++) {
    with_prev += bseen[i].has_prev;
  }
  CHECK(with_prev > 0 && with_prev < n, "%zu of %zu puts with a previous",
        with_prev, n);

  deadline = test_now_ms() + 60000;
  while (aw_count(&aw) < written_n) {
    CHECK(test_now_ms() < deadline, "the async watch has %zu of %zu events",
          aw_count(&aw), written_n);
    usleep(10000);
  }
  usleep(300000);
  pthread_mutex_lock(&aw.mu);
  check_seen("the async watch", aw.seen, aw.n);
  CHECK(aw.started, "the async watch's start callback did not run");
  pthread_mutex_unlock(&aw.mu);
  aw_finish(&aw);
  synod_key_watch_close(w);
  synod_client_free(cl);
  cluster_restart(c, f);
  close(wr.fd);
  printf("failover: %zu events to both watches, in order, once each\n", n);
}

/* A blocking watch of one key on a follower; the key does not change
 * while more than the history holds is written elsewhere; the follower
 * is SIGKILLed. The library resumes from the progress the server
 * reported, not after the key's last event (long evicted): the next put
 * of the key arrives, with no ECOMPACTED. */
static void scenario_sparse(struct cluster *c) {
  int leader = cluster_wait_leader(c, 20000);
  int f = (leader + 1) % c->n;
  char endpoints[CLUSTER_NODES_MAX * 32];
  struct raw wr = raw_open(c->nodes[leader].client);
  struct synod_options o;
  struct synod_client *cl;
  struct synod_key_watch *w;
  struct synod_key_event e;
  struct synod_key_watch_options ko = {.key = "rare"};
  endpoints_from(c, f, endpoints, sizeof endpoints);
  synod_options_init(&o);
  o.endpoints = endpoints;
  o.endpoints_in_order = true;
  CHECK(synod_client_new(&o, &cl) == 0, "%s", synod_client_errmsg());
  OK(synod_key_watch(cl, &ko, 10000, &w, NULL));
  written_n = 0;
  /* "rare" is not under "w/": write_keys names keys w/N; put it alone. */
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__KeyPut put = SYNOD__KEY_PUT__INIT;
  put.key.data = (uint8_t *)"rare";
  put.key.len = 4;
  req.body_case = SYNOD__REQUEST__BODY_KEY_PUT;
  req.key_put = &put;
  Synod__ServerMessage *sm = raw_call(&wr, &req, NULL);
  CHECK(sm->response->error == NULL, "put rare");
  uint64_t rare = sm->response->key_put->revision;
  synod__server_message__free_unpacked(sm, NULL);
  OK(synod_key_watch_next(w, 10000, &e));
  CHECK(e.revision == rare, "rare at %" PRIu64, e.revision);
  for (unsigned k = 0; k < HISTORY / 3 + 10; k++) {
    write_keys(&wr, k, 3);
    written_n = 0;
  }
  /* The server reports progress once a second at most: let it. */
  usleep(2500000);
  cluster_signal(c, f, SIGKILL);
  sm = raw_call(&wr, &req, NULL);
  CHECK(sm->response->error == NULL, "put rare again");
  uint64_t again = sm->response->key_put->revision;
  synod__server_message__free_unpacked(sm, NULL);
  int rv = synod_key_watch_next(w, 20000, &e);
  CHECK(rv == 0 && e.revision == again,
        "after the kill: %d (%s), revision %" PRIu64 ", want %" PRIu64, rv,
        rv ? synod_client_errmsg() : "", rv ? 0 : e.revision, again);
  synod_key_watch_close(w);
  synod_client_free(cl);
  cluster_restart(c, f);
  close(wr.fd);
  printf("sparse: resumed from the reported progress past %" PRIu64
         " evicted revisions\n",
         again - rare - 1);
}

/* More than HISTORY events: a watch from revision 1 is refused with the
 * oldest revision, from which it starts; bad options are refused. */
static void scenario_compacted(struct cluster *c) {
  int leader = cluster_wait_leader(c, 20000);
  struct raw wr = raw_open(c->nodes[leader].client);
  for (unsigned k = 0; k < HISTORY / 3 + 10; k++) {
    write_keys(&wr, k, 3);
    written_n = 0; /* not checked here */
  }
  close(wr.fd);
  struct synod_options o;
  struct synod_client *cl;
  struct synod_key_watch *w;
  struct synod_key_watch_start start;
  struct synod_key_watch_options ko = {
      .key = "w/", .prefix = true, .from_revision = 1};
  synod_options_init(&o);
  o.endpoints = c->endpoints;
  CHECK(synod_client_new(&o, &cl) == 0, "%s", synod_client_errmsg());
  int rv = synod_key_watch(cl, &ko, 10000, &w, &start);
  CHECK(rv == SYNOD_ECOMPACTED, "a watch from revision 1: %d (%s)", rv,
        synod_client_errmsg());
  printf("from revision 1: %s\n", synod_client_errmsg());
  ko.from_revision = 0;
  OK(synod_key_watch(cl, &ko, 10000, &w, &start));
  CHECK(start.first_revision > 1, "the oldest revision is %" PRIu64,
        start.first_revision);
  synod_key_watch_close(w);
  ko.from_revision = start.first_revision;
  OK(synod_key_watch(cl, &ko, 10000, &w, &start));
  struct synod_key_event e;
  OK(synod_key_watch_next(w, 10000, &e));
  CHECK(e.revision >= ko.from_revision, "first event at %" PRIu64, e.revision);
  synod_key_watch_close(w);

  struct synod_key_watch_options bad = {.key = ""};
  CHECK(synod_key_watch(cl, &bad, 1000, &w, NULL) == SYNOD_EINVAL,
        "an empty key");
  bad = (struct synod_key_watch_options){.key = "k", .after_event = 2};
  CHECK(synod_key_watch(cl, &bad, 1000, &w, NULL) == SYNOD_EINVAL,
        "after_event without from_revision");
  bad = (struct synod_key_watch_options){.key = "k", .window = 2000000};
  CHECK(synod_key_watch(cl, &bad, 1000, &w, NULL) == SYNOD_EINVAL,
        "a window over the maximum");
  printf("bad options: %s\n", synod_client_errmsg());
  synod_client_free(cl);
  printf("compacted: ok (oldest %" PRIu64 ")\n", start.first_revision);
}

int main(void) {
  char synodd[PATH_MAX];
  cluster_synodd_or_skip(synodd, sizeof synodd);
  struct cluster c;
  char history[16];
  /* The async watcher's loop writes to replicas that this test kills. */
  signal(SIGPIPE, SIG_IGN);
  snprintf(history, sizeof history, "%d", HISTORY);
  const char *args[] = {"--keys-history", history, NULL};
  cluster_start_args(&c, 3, synodd, args);
  cluster_wait_leader(&c, 20000);
  scenario_failover(&c);
  scenario_sparse(&c);
  scenario_compacted(&c);
  cluster_stop(&c);
  printf("ok\n");
  return 0;
}
