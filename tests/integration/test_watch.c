/* Key watches, the server's side, on 3 real synodd processes spoken to in
 * raw frames: a key and a prefix watched from a revision on a follower
 * (every put and delete in (revision, event) order, previous values when
 * asked), live pushes, credits honoured exactly and a revision split by
 * them, a resume inside a revision, ECOMPACTED at the start and for a
 * watch that fell behind (synodd --keys-history), 100,000 session-bound
 * keys whose session is closed delivered as 100,000 deletes of one
 * revision, and bad input that changes nothing. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "raw_client.h"
#include "synod.h"
#include "synod.pb-c.h"

#define HISTORY 1000 /* synodd --keys-history */
#define BULK_KEYS 100000
#define EVENTS_MAX 1024

/* One delivered event, as the tests look at it. */
struct got {
  uint64_t revision;
  uint32_t event;
  bool deleted;
  char key[32];
  char value[16];
  bool has_prev;
  char prev[16];
};

/* What a watcher's connection received: the first EVENTS_MAX events in
 * full, and for every event its order and kind. */
struct watcher {
  struct seen s;
  struct got ev[EVENTS_MAX];
  size_t n;
  uint64_t last_rev;
  uint32_t last_event;
  uint64_t deletes;
  bool out_of_order;
  uint64_t progress;  /* the highest progress_revision seen */
  size_t empty;       /* deliveries of no events: progress only */
  uint8_t *bulk_seen; /* BULK_KEYS flags, for the bulk scenario */
};

static void copy_bytes(char *out, size_t cap, ProtobufCBinaryData b) {
  size_t len = b.len < cap - 1 ? b.len : cap - 1;
  if (len > 0) {
    memcpy(out, b.data, len);
  }
  out[len] = '\0';
}

/* The watchers of the scenario running, by subscription id: several
 * watches share a connection, and raw_call hands its events to one. */
#define WATCHERS_MAX 8
static struct watcher *by_id[WATCHERS_MAX];

static void on_keys(struct seen *s, const Synod__KeyWatchDelivery *d) {
  (void)s;
  CHECK(d->subscription_id < WATCHERS_MAX && by_id[d->subscription_id],
        "a delivery of watch %" PRIu64 ", which is not running",
        d->subscription_id);
  struct watcher *w = by_id[d->subscription_id];
  if (d->progress_revision > w->progress) {
    w->progress = d->progress_revision;
  }
  w->empty += d->n_events == 0;
  for (size_t i = 0; i < d->n_events; i++) {
    const Synod__KeyWatchEvent *e = d->events[i];
    if (e->revision < w->last_rev ||
        (e->revision == w->last_rev && e->event <= w->last_event)) {
      w->out_of_order = true;
    }
    w->last_rev = e->revision;
    w->last_event = e->event;
    bool deleted = e->type == SYNOD__KEY_WATCH_EVENT__TYPE__DELETE;
    w->deletes += deleted;
    if (w->bulk_seen != NULL && deleted) {
      char key[32];
      unsigned k;
      copy_bytes(key, sizeof key, e->kv->key);
      if (sscanf(key, "gw/%u", &k) == 1 && k < BULK_KEYS) {
        w->bulk_seen[k]++;
      }
    }
    if (w->n < EVENTS_MAX) {
      struct got *g = &w->ev[w->n];
      g->revision = e->revision;
      g->event = e->event;
      g->deleted = deleted;
      copy_bytes(g->key, sizeof g->key, e->kv->key);
      copy_bytes(g->value, sizeof g->value, e->kv->value);
      g->has_prev = e->prev_kv != NULL;
      if (g->has_prev) {
        copy_bytes(g->prev, sizeof g->prev, e->prev_kv->value);
      }
    }
    w->n++;
  }
}

/* Clears w and makes it the receiver of watch `id`'s events. */
static void watcher_init(struct watcher *w, uint64_t id) {
  memset(w, 0, sizeof *w);
  by_id[id] = w;
  w->s.ended = -1;
  w->s.key_cb = on_keys;
  w->s.key_arg = w;
}

/* Sends a KeyWatch; returns its reply's revision (0 on an error, which
 * must be `code`). *first gets Error.first_available or the reply's
 * first_revision. */
static uint64_t watch(struct raw *r, struct watcher *w, uint64_t id,
                      const char *key, size_t key_len, bool prefix,
                      uint64_t from, uint32_t after_event, bool prev,
                      uint32_t credits, int code, uint64_t *first) {
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__KeyWatch q = SYNOD__KEY_WATCH__INIT;
  q.subscription_id = id;
  q.key.data = (uint8_t *)key;
  q.key.len = key_len;
  q.prefix = prefix;
  q.from_revision = from;
  q.after_event = after_event;
  q.prev_kv = prev;
  q.credits = credits;
  req.body_case = SYNOD__REQUEST__BODY_KEY_WATCH;
  req.key_watch = &q;
  Synod__ServerMessage *sm = raw_call(r, &req, &w->s);
  const Synod__Response *resp = sm->response;
  int got = resp->error ? (int)resp->error->code : 0;
  CHECK(got == code, "watch %" PRIu64 " \"%.40s\": code %d (%s), want %d", id,
        key, got, resp->error ? resp->error->message : "", code);
  uint64_t rev = 0;
  if (got != 0) {
    printf("  watch \"%.40s\": %s\n", key, resp->error->message);
    if (first != NULL) {
      *first = resp->error->first_available;
    }
  } else {
    CHECK(resp->body_case == SYNOD__RESPONSE__BODY_KEY_WATCH &&
              resp->key_watch->subscription_id == id,
          "watch %" PRIu64 ": no KeyWatchReply", id);
    rev = resp->key_watch->revision;
    if (first != NULL) {
      *first = resp->key_watch->first_revision;
    }
  }
  synod__server_message__free_unpacked(sm, NULL);
  return rev;
}

static void unwatch(struct raw *r, struct seen *s, uint64_t id, int code) {
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__ChannelUnsubscribe q = SYNOD__CHANNEL_UNSUBSCRIBE__INIT;
  q.subscription_id = id;
  req.body_case = SYNOD__REQUEST__BODY_CHANNEL_UNSUBSCRIBE;
  req.channel_unsubscribe = &q;
  raw_expect(r, &req, s, code, "cancel");
}

/* Reads events until the watcher has `n` (or its watch ended), at most
 * wait_ms. */
static void wait_events(struct raw *r, struct watcher *w, size_t n,
                        uint32_t wait_ms, const char *what) {
  uint64_t deadline = test_now_ms() + wait_ms;
  while (w->n < n && w->s.ended < 0) {
    CHECK(test_now_ms() < deadline, "%s: %zu events of %zu in %u ms", what,
          w->n, n, wait_ms);
    Synod__ServerMessage *sm = raw_recv(r, wait_ms);
    CHECK(sm->body_case == SYNOD__SERVER_MESSAGE__BODY_EVENT,
          "%s: an answer to nothing", what);
    seen_event(&w->s, sm->event);
    synod__server_message__free_unpacked(sm, NULL);
  }
}

/* ------------------------------------------------------------- writes */

static uint64_t session_open(struct raw *r) {
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__SessionOpen q = SYNOD__SESSION_OPEN__INIT;
  q.ttl_ms = 120000;
  req.body_case = SYNOD__REQUEST__BODY_SESSION_OPEN;
  req.session_open = &q;
  Synod__ServerMessage *sm = raw_call(r, &req, NULL);
  CHECK(sm->response->error == NULL && sm->response->session_open != NULL,
        "session open refused");
  uint64_t id = sm->response->session_open->session_id;
  synod__server_message__free_unpacked(sm, NULL);
  return id;
}

/* Answers a write: its revision. */
static uint64_t write_answer(Synod__ServerMessage *sm, const char *what) {
  const Synod__Response *resp = sm->response;
  CHECK(resp->error == NULL, "%s: %s", what, resp->error->message);
  uint64_t rev = resp->body_case == SYNOD__RESPONSE__BODY_KEY_PUT
                     ? resp->key_put->revision
                 : resp->body_case == SYNOD__RESPONSE__BODY_KEY_DELETE
                     ? resp->key_delete->revision
                     : resp->key_txn->revision;
  synod__server_message__free_unpacked(sm, NULL);
  return rev;
}

static uint64_t put(struct raw *r, const char *key, const char *value) {
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__KeyPut q = SYNOD__KEY_PUT__INIT;
  q.key.data = (uint8_t *)key;
  q.key.len = strlen(key);
  q.value.data = (uint8_t *)value;
  q.value.len = strlen(value);
  req.body_case = SYNOD__REQUEST__BODY_KEY_PUT;
  req.key_put = &q;
  return write_answer(raw_call(r, &req, NULL), key);
}

static uint64_t del(struct raw *r, const char *key) {
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__KeyDelete q = SYNOD__KEY_DELETE__INIT;
  q.key.data = (uint8_t *)key;
  q.key.len = strlen(key);
  req.body_case = SYNOD__REQUEST__BODY_KEY_DELETE;
  req.key_delete = &q;
  return write_answer(raw_call(r, &req, NULL), key);
}

#define TXN_OPS 64

/* Puts keys fmt % [from, to) in transactions of TXN_OPS, bound to
 * `session` (0: none), `pipeline` transactions in flight. Returns the
 * last revision. */
static uint64_t put_many(struct raw *r, uint64_t session, const char *fmt,
                         unsigned from, unsigned to, unsigned pipeline) {
  static char keys[TXN_OPS][32];
  Synod__KeyPut puts[TXN_OPS];
  Synod__KeyOp ops[TXN_OPS], *op_ptrs[TXN_OPS];
  unsigned sent = 0, answered = 0, txns = (to - from + TXN_OPS - 1) / TXN_OPS;
  uint64_t seq = 0, rev = 0;
  while (answered < txns) {
    while (sent < txns && sent - answered < pipeline) {
      Synod__Request req = SYNOD__REQUEST__INIT;
      Synod__KeyTxn t = SYNOD__KEY_TXN__INIT;
      size_t k = 0;
      for (unsigned i = from + sent * TXN_OPS; i < to && k < TXN_OPS; i++) {
        snprintf(keys[k], sizeof keys[k], fmt, i);
        synod__key_put__init(&puts[k]);
        puts[k].key.data = (uint8_t *)keys[k];
        puts[k].key.len = strlen(keys[k]);
        puts[k].value.data = (uint8_t *)"gateway-7";
        puts[k].value.len = 9;
        puts[k].session_bound = session != 0;
        synod__key_op__init(&ops[k]);
        ops[k].op_case = SYNOD__KEY_OP__OP_PUT;
        ops[k].put = &puts[k];
        op_ptrs[k] = &ops[k];
        k++;
      }
      t.n_success = k;
      t.success = op_ptrs;
      req.session_id = session;
      req.sequence = session != 0 ? ++seq : 0;
      req.body_case = SYNOD__REQUEST__BODY_KEY_TXN;
      req.key_txn = &t;
      raw_send(r, &req);
      sent++;
    }
    Synod__ServerMessage *sm = raw_recv(r, 20000);
    if (sm->body_case != SYNOD__SERVER_MESSAGE__BODY_RESPONSE) {
      synod__server_message__free_unpacked(sm, NULL);
      continue;
    }
    rev = write_answer(sm, "bulk put");
    answered++;
  }
  return rev;
}

/* ------------------------------------------------------------- scenarios */

static void expect(const struct watcher *w, size_t i, uint64_t rev,
                   uint32_t event, bool deleted, const char *key,
                   const char *value, const char *prev) {
  CHECK(i < w->n, "event %zu missing (%zu delivered)", i, w->n);
  const struct got *g = &w->ev[i];
  CHECK(g->revision == rev && g->event == event && g->deleted == deleted &&
            strcmp(g->key, key) == 0 && strcmp(g->value, value) == 0,
        "event %zu: %s %s=%s at (%" PRIu64 ", %u), want %s %s=%s at (%" PRIu64
        ", %u)",
        i, g->deleted ? "delete" : "put", g->key, g->value, g->revision,
        g->event, deleted ? "delete" : "put", key, value, rev, event);
  CHECK(prev == NULL ? !g->has_prev : g->has_prev && !strcmp(g->prev, prev),
        "event %zu (%s at %" PRIu64 "): previous value %s, want %s", i, key,
        rev, g->has_prev ? g->prev : "(none)", prev ? prev : "(none)");
}

/* Puts and deletes, then watches of a key and a prefix from the first
 * revision on a follower, a live one, credits, a resume inside a
 * revision. */
static void scenario_history(struct cluster *c, struct raw *wr) {
  int f = follower_of(c);
  struct raw r = raw_open(c->nodes[f].client);
  static struct watcher w1, w2, w3, w4, w5, w6;
  uint64_t r1 = put(wr, "k/a", "1");
  uint64_t r2 = put(wr, "k/b", "1");
  uint64_t r3 = put(wr, "k/a", "2");
  put(wr, "other/x", "1");
  uint64_t r5 = del(wr, "k/a");
  uint64_t r6 = put_many(wr, 0, "k/t%u", 0, 2, 1); /* k/t0 and k/t1 */
  CHECK(r2 == r1 + 1 && r3 == r1 + 2 && r5 == r1 + 4 && r6 == r1 + 5,
        "revisions %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64,
        r1, r2, r3, r5, r6);

  watcher_init(&w1, 1);
  watch(&r, &w1, 1, "k/a", 3, false, r1, 0, true, 0, 0, NULL);
  wait_events(&r, &w1, 3, 10000, "watch k/a");
  expect(&w1, 0, r1, 1, false, "k/a", "1", NULL);
  expect(&w1, 1, r3, 1, false, "k/a", "2", "1");
  expect(&w1, 2, r5, 1, true, "k/a", "", "2");

  watcher_init(&w2, 2);
  watch(&r, &w2, 2, "k/", 2, true, r1, 0, false, 0, 0, NULL);
  wait_events(&r, &w2, 6, 10000, "watch prefix k/");
  expect(&w2, 0, r1, 1, false, "k/a", "1", NULL);
  expect(&w2, 1, r2, 1, false, "k/b", "1", NULL);
  expect(&w2, 2, r3, 1, false, "k/a", "2", NULL);
  expect(&w2, 3, r5, 1, true, "k/a", "", NULL);
  expect(&w2, 4, r6, 1, false, "k/t0", "gateway-7", NULL);
  expect(&w2, 5, r6, 2, false, "k/t1", "gateway-7", NULL);

  /* Live: from now, then pushed as it happens. */
  watcher_init(&w3, 3);
  uint64_t start = watch(&r, &w3, 3, "k/", 2, true, 0, 0, true, 0, 0, NULL);
  CHECK(start == r6 + 1,
        "a watch from now starts at %" PRIu64 ", want %" PRIu64, start, r6 + 1);
  CHECK(w2.n == 6, "watch 2 has %zu events before the live put", w2.n);
  /* Every key, from now: its ReadIndex barrier reads the empty key. */
  watcher_init(&w6, 6);
  watch(&r, &w6, 6, "", 0, true, 0, 0, false, 0, 0, NULL);
  uint64_t r7 = put(wr, "k/b", "2");
  wait_events(&r, &w3, 1, 10000, "live watch");
  expect(&w3, 0, r7, 1, false, "k/b", "2", "1");
  wait_events(&r, &w6, 1, 10000, "watch of every key");
  expect(&w6, 0, r7, 1, false, "k/b", "2", NULL);
  wait_events(&r, &w2, 7, 10000, "watch prefix k/ goes on live");
  expect(&w2, 6, r7, 1, false, "k/b", "2", NULL);

  /* Credits: exactly as many as granted, a revision split between two
   * grants, and nothing lost or repeated at the seam. */
  watcher_init(&w4, 4);
  watch(&r, &w4, 4, "k/", 2, true, r1, 0, false, 5, 0, NULL);
  wait_events(&r, &w4, 5, 10000, "watch with 5 credits");
  barrier(&r, &w4.s);
  CHECK(w4.n == 5, "%zu events on 5 credits", w4.n);
  expect(&w4, 4, r6, 1, false, "k/t0", "gateway-7", NULL);
  credit(&r, 4, 10, &w4.s, 0);
  wait_events(&r, &w4, 7, 10000, "watch after more credit");
  expect(&w4, 5, r6, 2, false, "k/t1", "gateway-7", NULL);
  expect(&w4, 6, r7, 1, false, "k/b", "2", NULL);
  CHECK(!w4.out_of_order, "watch 4 went back");

  /* Resume inside a revision: after (r6, 1) comes (r6, 2). */
  watcher_init(&w5, 5);
  watch(&r, &w5, 5, "k/", 2, true, r6, 1, false, 0, 0, NULL);
  wait_events(&r, &w5, 2, 10000, "watch resumed inside a revision");
  expect(&w5, 0, r6, 2, false, "k/t1", "gateway-7", NULL);
  expect(&w5, 1, r7, 1, false, "k/b", "2", NULL);

  /* Cancelled: nothing more of it. */
  unwatch(&r, &w5.s, 5, 0);
  put(wr, "k/c", "1");
  wait_events(&r, &w2, 8, 10000, "watch 2 after a cancel of 5");
  barrier(&r, &w5.s);
  CHECK(w5.n == 2, "a cancelled watch delivered %zu", w5.n);
  close(r.fd);
  printf("history: key, prefix, live, credits, resume: ok\n");
}

/* Bad input: clear errors, and nothing taken (the ids stay free). */
static void scenario_bad_input(struct cluster *c) {
  struct raw r = raw_open(c->nodes[follower_of(c)].client);
  static struct watcher w;
  char long_key[600];
  watcher_init(&w, 1);
  memset(long_key, 'k', sizeof long_key);
  watch(&r, &w, 1, long_key, 513, false, 0, 0, false, 0, SYNOD_EINVAL, NULL);
  watch(&r, &w, 1, "\xff\xfe", 2, true, 0, 0, false, 0, SYNOD_EINVAL, NULL);
  watch(&r, &w, 1, "a\0b", 3, true, 0, 0, false, 0, SYNOD_EINVAL, NULL);
  watch(&r, &w, 1, "", 0, false, 0, 0, false, 0, SYNOD_EINVAL, NULL);
  watch(&r, &w, 1, "k", 1, false, 1, 0, false, 1000001, SYNOD_ERANGE, NULL);
  watch(&r, &w, 1, "k", 1, false, 0, 3, false, 0, SYNOD_EINVAL, NULL);
  credit(&r, 1, 5, &w.s, SYNOD_ENOTFOUND);
  unwatch(&r, &w.s, 1, SYNOD_ENOTFOUND);
  /* Id 1 is free: none of the above took it. */
  watch(&r, &w, 1, "k", 1, false, 0, 0, false, 0, 0, NULL);
  watch(&r, &w, 1, "k", 1, false, 0, 0, false, 0, SYNOD_EEXIST, NULL);
  /* A channel subscription shares the id space. */
  subscribe(&r, 1, "ch", false, SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_NEXT, 0, 0,
            NULL, &w.s, SYNOD_EEXIST, "subscribe with a watch's id");
  unwatch(&r, &w.s, 1, 0);
  unwatch(&r, &w.s, 1, SYNOD_ENOTFOUND);
  CHECK(w.n == 0 && w.s.ended < 0, "bad input delivered or ended something");
  close(r.fd);
  printf("bad input: ok\n");
}

/* 100,000 keys bound to a session, watched by prefix from now on two
 * followers (one with credits granted as it goes); the session closes:
 * each watcher gets every key's delete, once, at one revision. */
static void scenario_bulk(struct cluster *c, struct raw *wr) {
  int f = follower_of(c);
  int g = (cluster_wait_leader(c, 20000) + 2) % c->n; /* the other one */
  struct raw ra = raw_open(c->nodes[f].client);
  struct raw rb = raw_open(c->nodes[g].client);
  static struct watcher wa, wb;
  uint64_t session = session_open(wr);
  uint64_t t0 = test_now_ms();
  uint64_t last = put_many(wr, session, "gw/%u", 0, BULK_KEYS, 64);
  printf("bulk: %d session-bound puts in %" PRIu64 " ms (revision %" PRIu64
         ")\n",
         BULK_KEYS, test_now_ms() - t0, last);
  watcher_init(&wa, 1);
  watcher_init(&wb, 2);
  wa.bulk_seen = calloc(BULK_KEYS, 1);
  wb.bulk_seen = calloc(BULK_KEYS, 1);
  watch(&ra, &wa, 1, "gw/", 3, true, 0, 0, false, 1000000, 0, NULL);
  watch(&rb, &wb, 2, "gw/", 3, true, 0, 0, true, 2000, 0, NULL);

  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__SessionClose q = SYNOD__SESSION_CLOSE__INIT;
  req.session_id = session;
  req.body_case = SYNOD__REQUEST__BODY_SESSION_CLOSE;
  req.session_close = &q;
  Synod__ServerMessage *sm = raw_call(wr, &req, NULL);
  CHECK(sm->response->error == NULL, "session close: %s",
        sm->response->error->message);
  synod__server_message__free_unpacked(sm, NULL);

  t0 = test_now_ms();
  wait_events(&ra, &wa, BULK_KEYS, 60000, "bulk deletes, 1,000,000 credits");
  uint64_t granted = 2000;
  while (wb.n < BULK_KEYS && wb.s.ended < 0) {
    CHECK(test_now_ms() - t0 < 60000,
          "bulk deletes with credits: %zu of %d in 60 s", wb.n, BULK_KEYS);
    wait_events(&rb, &wb, wb.n + 1, 20000, "bulk deletes with credits");
    if (granted - wb.n < 1000) {
      credit(&rb, 2, 2000, &wb.s, 0);
      granted += 2000;
    }
  }
  printf("bulk: %d deletes to two watchers in %" PRIu64 " ms\n", BULK_KEYS,
         test_now_ms() - t0);
  struct watcher *ws[2] = {&wa, &wb};
  for (int k = 0; k < 2; k++) {
    struct watcher *w = ws[k];
    CHECK(w->s.ended < 0, "watcher %d ended: %d", k, w->s.ended);
    CHECK(w->n == BULK_KEYS && w->deletes == BULK_KEYS && !w->out_of_order,
          "watcher %d: %zu events, %" PRIu64 " deletes%s", k, w->n, w->deletes,
          w->out_of_order ? ", out of order" : "");
    CHECK(w->ev[0].revision == last + 1 && w->last_rev == last + 1 &&
              w->ev[0].event == 1 && w->last_event == BULK_KEYS,
          "watcher %d: deletes from (%" PRIu64 ", %u) to (%" PRIu64
          ", %u), want one revision %" PRIu64,
          k, w->ev[0].revision, w->ev[0].event, w->last_rev, w->last_event,
          last + 1);
    for (unsigned i = 0; i < BULK_KEYS; i++) {
      CHECK(w->bulk_seen[i] == 1, "watcher %d: gw/%u deleted %u times", k, i,
            w->bulk_seen[i]);
    }
  }
  CHECK(wb.ev[0].has_prev && strcmp(wb.ev[0].prev, "gateway-7") == 0,
        "a delete's previous value: %s", wb.ev[0].prev);
  free(wa.bulk_seen);
  free(wb.bulk_seen);
  close(ra.fd);
  close(rb.fd);
}

/* The history keeps HISTORY events: a watch from revision 1 is refused
 * with the oldest revision; one that falls behind ends with it. */
static void scenario_compacted(struct cluster *c, struct raw *wr) {
  struct raw r = raw_open(c->nodes[follower_of(c)].client);
  static struct watcher w, w2;
  uint64_t first = 0, oldest = 0;
  watcher_init(&w, 1);
  watch(&r, &w, 1, "gw/", 3, true, 0, 0, false, 0, 0, &oldest);
  CHECK(oldest > 1, "the history reaches back to %" PRIu64, oldest);
  watch(&r, &w, 2, "", 0, true, 1, 0, false, 0, SYNOD_ECOMPACTED, &first);
  /* Taking out old revisions goes on over entries: it may have gone on. */
  CHECK(first >= oldest,
        "ECOMPACTED names %" PRIu64 ", the oldest was %" PRIu64, first, oldest);
  by_id[2] = &w;
  watch(&r, &w, 2, "", 0, true, first, 0, false, 0, 0, NULL);
  unwatch(&r, &w.s, 1, 0);
  unwatch(&r, &w.s, 2, 0);

  /* One credit, then more than the history holds is written past it. */
  watcher_init(&w2, 3);
  uint64_t from = put(wr, "slow/a", "1");
  watch(&r, &w2, 3, "slow/", 5, true, from, 0, false, 1, 0, NULL);
  wait_events(&r, &w2, 1, 10000, "slow watcher's first event");
  uint64_t last = put_many(wr, 0, "slow/%u", 0, 2 * HISTORY, 8);
  for (int i = 0; i < 8; i++) {
    put(wr, "tick", "x"); /* entries that carry the trimming on */
  }
  credit(&r, 3, 100000, &w2.s, 0);
  uint64_t deadline = test_now_ms() + 10000;
  while (w2.s.ended < 0) {
    CHECK(test_now_ms() < deadline, "the slow watch did not end (%zu events)",
          w2.n);
    wait_events(&r, &w2, w2.n + 1, 10000, "slow watcher");
  }
  CHECK(w2.s.ended == SYNOD_ECOMPACTED && w2.s.first_available > from + 1 &&
            w2.s.first_available <= last,
        "slow watcher ended with %d, first available %" PRIu64, w2.s.ended,
        w2.s.first_available);
  CHECK(w2.n == 1, "the slow watcher got %zu events past its credit", w2.n);
  close(r.fd);
  printf("compacted: ok (oldest %" PRIu64 ")\n", oldest);
}

/* A watch of a key that does not change while more than the history
 * holds is written elsewhere hears where it is (a delivery of no events,
 * costing no credit), and resumes from there where resuming after its
 * last event would be ECOMPACTED. */
static void scenario_progress(struct cluster *c, struct raw *wr) {
  struct raw r = raw_open(c->nodes[follower_of(c)].client);
  static struct watcher w, w2;
  uint64_t first = 0;
  watcher_init(&w, 1);
  watch(&r, &w, 1, "rare", 4, false, 0, 0, false, 2, 0, NULL);
  uint64_t rare = put(wr, "rare", "1");
  wait_events(&r, &w, 1, 10000, "the rare key's put");
  uint64_t last = put_many(wr, 0, "busy/%u", 0, 2 * HISTORY, 8);
  uint64_t deadline = test_now_ms() + 10000;
  while (w.progress < last) {
    CHECK(test_now_ms() < deadline,
          "no progress past %" PRIu64 " in 10 s (at %" PRIu64 ")", last,
          w.progress);
    Synod__ServerMessage *sm = raw_recv(&r, 10000);
    seen_event(&w.s, sm->event);
    synod__server_message__free_unpacked(sm, NULL);
  }
  CHECK(w.n == 1 && w.empty > 0 && w.s.ended < 0,
        "%zu events, %zu progress reports, ended %d", w.n, w.empty, w.s.ended);
  watcher_init(&w2, 2);
  watch(&r, &w2, 2, "rare", 4, false, rare + 1, 0, false, 0, SYNOD_ECOMPACTED,
        &first);
  watch(&r, &w2, 2, "rare", 4, false, w.progress + 1, 0, false, 0, 0, NULL);
  uint64_t again = put(wr, "rare", "2");
  wait_events(&r, &w2, 1, 10000, "the watch resumed from its progress");
  CHECK(w2.ev[0].revision == again, "resumed at %" PRIu64 ", want %" PRIu64,
        w2.ev[0].revision, again);
  close(r.fd);
  printf("progress: ok (reported %" PRIu64 ", oldest %" PRIu64 ")\n",
         w.progress, first);
}

/* The oldest revision this watch connection's replica retains, once it
 * has not moved for 300 ms (the history's trimming goes on over entries
 * after a burst of writes, Ticks carrying it when no write comes). */
static uint64_t oldest_settled(struct raw *r) {
  static struct watcher probe;
  uint64_t first = 0, last = UINT64_MAX;
  uint64_t deadline = test_now_ms() + 30000;
  for (;;) {
    CHECK(test_now_ms() < deadline, "the oldest revision kept moving for 30 s");
    watcher_init(&probe, 2);
    watch(r, &probe, 2, "", 0, true, 1, 0, false, 0, SYNOD_ECOMPACTED, &first);
    if (first == last) {
      return first;
    }
    last = first;
    usleep(300 * 1000);
  }
}

/* n puts of one key each (one revision, one event each), `pipeline` in
 * flight. */
static void put_singles(struct raw *r, const char *fmt, unsigned n,
                        unsigned pipeline) {
  char key[32];
  unsigned sent = 0, answered = 0;
  while (answered < n) {
    while (sent < n && sent - answered < pipeline) {
      Synod__Request req = SYNOD__REQUEST__INIT;
      Synod__KeyPut q = SYNOD__KEY_PUT__INIT;
      snprintf(key, sizeof key, fmt, sent);
      q.key.data = (uint8_t *)key;
      q.key.len = strlen(key);
      q.value.data = (uint8_t *)"x";
      q.value.len = 1;
      req.body_case = SYNOD__REQUEST__BODY_KEY_PUT;
      req.key_put = &q;
      raw_send(r, &req);
      sent++;
    }
    Synod__ServerMessage *sm = raw_recv(r, 20000);
    if (sm->body_case != SYNOD__SERVER_MESSAGE__BODY_RESPONSE) {
      synod__server_message__free_unpacked(sm, NULL);
      continue;
    }
    write_answer(sm, "pad");
    answered++;
  }
}

/* A watch whose credit runs out exactly at the end of a revision, with
 * more events waiting, is positioned at the next revision's start: once
 * that revision alone is evicted it resumes, where "after the last event
 * of the evicted revision" ended it with SYNOD_ECOMPACTED. The history
 * is filled with revisions of one event each, so that each put evicts
 * exactly one; the scenario retries with new keys if the oldest revision
 * passes the edge anyway. */
static bool credit_edge_once(struct cluster *c, struct raw *wr, int attempt) {
  struct raw r = raw_open(c->nodes[follower_of(c)].client);
  static struct watcher w;
  char ka[32], kb[32], prefix[16];
  snprintf(prefix, sizeof prefix, "edge%d/", attempt);
  snprintf(ka, sizeof ka, "%sa", prefix);
  snprintf(kb, sizeof kb, "%sb", prefix);
  put_singles(wr, "fill/%u", HISTORY, 8);
  oldest_settled(&r);
  uint64_t ra = put(wr, ka, "1");
  uint64_t rb = put(wr, kb, "2");
  CHECK(rb == ra + 1, "puts at %" PRIu64 " and %" PRIu64, ra, rb);
  watcher_init(&w, 1);
  watch(&r, &w, 1, prefix, strlen(prefix), true, ra, 0, false, 1, 0, NULL);
  wait_events(&r, &w, 1, 10000, "the edge's first event");
  put_singles(wr, "pad/%u", HISTORY - 4, 8); /* ra is two puts away */
  uint64_t first = oldest_settled(&r);
  while (first <= ra) {
    put(wr, "pad", "x");
    first = oldest_settled(&r);
  }
  bool exact = first == rb;
  if (exact) {
    credit(&r, 1, 10, &w.s, 0);
    wait_events(&r, &w, 2, 10000, "the event after the edge");
    CHECK(w.s.ended < 0 && w.n == 2 && w.ev[1].revision == rb,
          "after the edge: %zu events, ended %d (first available %" PRIu64 ")",
          w.n, w.s.ended, w.s.first_available);
    unwatch(&r, &w.s, 1, 0);
  } else {
    printf("credit edge: the oldest jumped from %" PRIu64 " to %" PRIu64
           "; again\n",
           ra, first);
  }
  close(r.fd);
  return exact;
}

static void scenario_credit_edge(struct cluster *c, struct raw *wr) {
  for (int attempt = 0; attempt < 5; attempt++) {
    if (credit_edge_once(c, wr, attempt)) {
      printf("credit edge: ok (attempt %d)\n", attempt + 1);
      return;
    }
  }
  CHECK(false, "the oldest revision never stopped exactly at the edge");
}

int main(void) {
  char synodd[PATH_MAX];
  cluster_synodd_or_skip(synodd, sizeof synodd);
  struct cluster c;
  char history[16];
  snprintf(history, sizeof history, "%d", HISTORY);
  const char *args[] = {"--keys-history", history, NULL};
  cluster_start_args(&c, 3, synodd, args);
  int leader = cluster_wait_leader(&c, 20000);
  struct raw wr = raw_open(c.nodes[leader].client);
  scenario_bad_input(&c);
  scenario_history(&c, &wr);
  scenario_bulk(&c, &wr);
  scenario_compacted(&c, &wr);
  scenario_progress(&c, &wr);
  scenario_credit_edge(&c, &wr);
  close(wr.fd);
  cluster_stop(&c);
  printf("ok\n");
  return 0;
}
