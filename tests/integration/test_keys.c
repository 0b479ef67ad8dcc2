/* Keys end to end on 3 real synodd processes.
 *
 *   test_keys lib      libsynod: put/get/delete/list/txn through the
 *                      leader and through a follower (stale and
 *                      linearizable reads), compare-and-put races (one
 *                      creator wins), session-bound keys gone with a closed
 *                      client and with an expired session, a device moved
 *                      A -> B by a transaction and the stale gateway
 *                      refused, list pages consistent at one revision, bad
 *                      input refused with nothing changed, create-only puts
 *                      through a leader SIGKILL applied once each, stale
 *                      reads from a follower while the leader is stopped;
 *                      the async calls chained on a caller's loop.
 *   test_keys synodctl synodctl key put/get/del/list/txn, text and --json,
 *                      values from stdin, a session-bound put held while
 *                      synodctl runs and gone when it exits, txn JSON
 *                      (the move, a failed compare: exit 75), bad input
 *                      (key too long, value too big, bad JSON): a clear
 *                      error, a nonzero exit, nothing changed; a held put
 *                      whose session cannot be renewed exits 76;
 *                      key watch: a prefix live (--json, --count) while
 *                      other runs write, history replayed (--prev), TERM,
 *                      exit 77 below --keys-history, usage errors (exit 2,
 *                      nothing sent), every replica SIGKILLed in turn
 *                      under a watch (each put printed once, in order).
 *   test_keys expiry   100,000 keys bound to one session; the session
 *                      closes and, with no other traffic, the leader's
 *                      ticks carry the removal to its end within a bound
 *                      without pinning its CPU.
 * Exit 77 (skipped) while synodd does not accept --peers. */
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
#include "synod.h"

/* synodd --keys-history: events retained for watches. synodctl's
 * scenario writes more than this before its watch from revision 1. */
#define HISTORY 2000

#define OK(call) CHECK((call) == 0, "%s", synod_client_errmsg())

static struct synod_client *client_at(const char *endpoints, uint32_t ttl_ms) {
  struct synod_options o;
  struct synod_client *cl;
  synod_options_init(&o);
  o.endpoints = endpoints;
  o.client_name = "test_keys";
  o.request_timeout_ms = 10000;
  o.session_ttl_ms = ttl_ms;
  o.endpoints_in_order = true;
  CHECK(synod_client_new(&o, &cl) == 0, "%s", synod_client_errmsg());
  return cl;
}

/* Any replica but the leader. */
static int follower_of(const struct cluster *c, int leader) {
  return (leader + 1) % c->n;
}

static bool key_exists(struct synod_client *cl, const char *key) {
  struct synod_key_get_result g;
  OK(synod_key_get(cl, key, 0, 0, &g));
  bool found = g.found;
  synod_key_get_result_free(&g);
  return found;
}

/* ------------------------------------------------------------ basics */

static void scenario_basics(const struct cluster *c, int leader) {
  const char *fol = c->nodes[follower_of(c, leader)].client;
  struct synod_client *a = client_at(c->nodes[leader].client, 0);
  struct synod_client *b = client_at(fol, 0); /* starts at a follower */
  struct synod_key_put_result p;
  struct synod_key_get_result g;
  struct synod_key_delete_result d;
  OK(synod_key_put(b, "basics/x", "one", 3, SYNOD_KEY_PREV, NULL, 0, 0, &p));
  CHECK(p.succeeded && p.has_kv && !p.has_prev, "first put");
  CHECK(p.kv.version == 1 && p.kv.create_revision == p.revision &&
            p.kv.mod_revision == p.revision,
        "first put's kv: v%" PRIu64, p.kv.version);
  uint64_t rev1 = p.revision;
  synod_key_put_result_free(&p);
  OK(synod_key_put(a, "basics/x", "two", 3, SYNOD_KEY_PREV, NULL, 0, 0, &p));
  CHECK(p.succeeded && p.has_prev && p.prev.value_len == 3 &&
            strcmp((char *)p.prev.value, "one") == 0 && p.kv.version == 2 &&
            p.revision > rev1,
        "second put: prev and version");
  uint64_t rev2 = p.revision;
  synod_key_put_result_free(&p);
  /* A linearizable read through the follower sees the leader's write. */
  OK(synod_key_get(b, "basics/x", 0, 0, &g));
  CHECK(g.found && strcmp((char *)g.kv.value, "two") == 0 &&
            g.kv.mod_revision == rev2 && g.kv.create_revision == rev1 &&
            g.revision >= rev2,
        "get via the follower");
  synod_key_get_result_free(&g);
  /* A stale read from a client that only knows the follower: served by
   * it, and it has applied rev2 within a bound. */
  struct synod_client *s = client_at(fol, 0);
  uint64_t until = test_now_ms() + 5000;
  do {
    OK(synod_key_get(s, "basics/x", SYNOD_READ_STALE, 0, &g));
    bool seen = g.found && g.kv.mod_revision == rev2;
    synod_key_get_result_free(&g);
    if (seen) {
      break;
    }
    CHECK(test_now_ms() < until, "stale read never saw revision %" PRIu64,
          rev2);
    usleep(10000);
  } while (true);
  synod_client_free(s);
  /* A missing key is found = false, not an error. */
  OK(synod_key_get(a, "basics/none", 0, 0, &g));
  CHECK(!g.found, "missing key");
  synod_key_get_result_free(&g);
  /* Delete with prev; then deleting again deletes nothing. */
  OK(synod_key_delete(b, "basics/x", SYNOD_KEY_PREV, NULL, 0, 0, &d));
  CHECK(d.succeeded && d.deleted == 1 && d.has_prev &&
            strcmp((char *)d.prev.value, "two") == 0,
        "delete");
  synod_key_delete_result_free(&d);
  OK(synod_key_delete(a, "basics/x", 0, NULL, 0, 0, &d));
  CHECK(d.succeeded && d.deleted == 0, "second delete deleted %" PRIu64,
        d.deleted);
  /* Prefix delete. */
  for (int i = 0; i < 5; i++) {
    char k[32];
    snprintf(k, sizeof k, "basics/p/%d", i);
    OK(synod_key_put(a, k, "v", 1, 0, NULL, 0, 0, NULL));
  }
  OK(synod_key_put(a, "basics/q", "v", 1, 0, NULL, 0, 0, NULL));
  OK(synod_key_delete(b, "basics/p/", SYNOD_KEY_PREFIX, NULL, 0, 0, &d));
  CHECK(d.deleted == 5, "prefix delete deleted %" PRIu64, d.deleted);
  CHECK(key_exists(a, "basics/q"), "a key outside the prefix stayed");
  /* Compare-and-delete on the value. */
  struct synod_key_compare cv = {.target = SYNOD_KEY_VALUE,
                                 .op = SYNOD_KEY_EQUAL,
                                 .value = "w",
                                 .value_len = 1};
  OK(synod_key_delete(a, "basics/q", 0, &cv, 1, 0, &d));
  CHECK(!d.succeeded && d.deleted == 0, "compare-and-delete: wrong value");
  cv.value = "v";
  OK(synod_key_delete(a, "basics/q", 0, &cv, 1, 0, &d));
  CHECK(d.succeeded && d.deleted == 1, "compare-and-delete: right value");
  synod_client_free(a);
  synod_client_free(b);
  printf("ok basics (through a follower, stale and linearizable reads)\n");
}

/* ---------------------------------------------------- create-only race */

struct racer {
  const struct cluster *c;
  int i;
  int round;
  bool created;
  pthread_barrier_t *go;
};

static void *racer_main(void *arg) {
  struct racer *r = arg;
  struct synod_client *cl = client_at(r->c->nodes[r->i % r->c->n].client, 0);
  char key[64], val[16];
  OK(synod_session_open(cl, 0, NULL));
  snprintf(key, sizeof key, "race/%d", r->round);
  snprintf(val, sizeof val, "racer%d", r->i);
  pthread_barrier_wait(r->go);
  OK(synod_key_create(cl, key, val, strlen(val), 0, 0, &r->created));
  synod_client_free(cl);
  return NULL;
}

static void scenario_create_race(const struct cluster *c) {
  enum { RACERS = 4, ROUNDS = 10 };
  for (int round = 0; round < ROUNDS; round++) {
    pthread_barrier_t go;
    pthread_t th[RACERS];
    struct racer r[RACERS];
    pthread_barrier_init(&go, NULL, RACERS);
    for (int i = 0; i < RACERS; i++) {
      r[i] = (struct racer){.c = c, .i = i, .round = round, .go = &go};
      CHECK(pthread_create(&th[i], NULL, racer_main, &r[i]) == 0, "thread");
    }
    int winners = 0, winner = -1;
    for (int i = 0; i < RACERS; i++) {
      pthread_join(th[i], NULL);
      if (r[i].created) {
        winners++;
        winner = i;
      }
    }
    pthread_barrier_destroy(&go);
    CHECK(winners == 1, "round %d: %d creators won", round, winners);
    struct synod_client *cl = client_at(c->endpoints, 0);
    struct synod_key_get_result g;
    char key[64], want[16];
    snprintf(key, sizeof key, "race/%d", round);
    snprintf(want, sizeof want, "racer%d", winner);
    OK(synod_key_get(cl, key, 0, 0, &g));
    CHECK(g.found && strcmp((char *)g.kv.value, want) == 0 && g.kv.version == 1,
          "round %d: the winner's value", round);
    synod_key_get_result_free(&g);
    synod_client_free(cl);
  }
  printf("ok create-only race: exactly one of 4 wins, %d rounds\n", ROUNDS);
}

/* --------------------------------------------------- session-bound keys */

static void scenario_session_bound(const struct cluster *c) {
  struct synod_client *obs = client_at(c->endpoints, 0);
  struct synod_client *g = client_at(c->endpoints, 0);
  struct synod_key_put_result p;
  OK(synod_key_put(g, "bound/closed", "gw", 2, SYNOD_KEY_SESSION_BOUND, NULL, 0,
                   0, &p));
  CHECK(p.succeeded && p.kv.session_id == synod_session_id(g) &&
            p.kv.session_id != 0,
        "bound to the client's session");
  synod_key_put_result_free(&p);
  OK(synod_key_put(g, "bound/unbound", "gw", 2, 0, NULL, 0, 0, NULL));
  CHECK(key_exists(obs, "bound/closed"), "bound key there while open");
  synod_client_free(g); /* closes the session */
  CHECK(!key_exists(obs, "bound/closed"), "bound key gone after close");
  CHECK(key_exists(obs, "bound/unbound"), "unbound key stays");

  /* Expiry: a client whose process stops renewing (SIGSTOP in a child). */
  int pipefd[2];
  CHECK(pipe(pipefd) == 0, "pipe");
  pid_t pid = fork();
  CHECK(pid >= 0, "fork");
  if (pid == 0) {
    struct synod_client *x = client_at(c->endpoints, 1000);
    int rv = synod_key_put(x, "bound/expired", "gw", 2, SYNOD_KEY_SESSION_BOUND,
                           NULL, 0, 0, NULL);
    char ch = rv == 0 ? 'k' : 'e';
    CHECK(write(pipefd[1], &ch, 1) == 1, "write");
    raise(SIGSTOP); /* no more keepalives */
    _exit(0);
  }
  test_track(pid);
  char ch = 0;
  CHECK(read(pipefd[0], &ch, 1) == 1 && ch == 'k', "child put");
  close(pipefd[0]);
  close(pipefd[1]);
  uint64_t t0 = test_now_ms();
  CHECK(key_exists(obs, "bound/expired"), "bound key there");
  while (key_exists(obs, "bound/expired")) {
    CHECK(test_now_ms() - t0 < 10000, "bound key outlived its 1 s TTL by 9 s");
    usleep(20000);
  }
  uint64_t gone_ms = test_now_ms() - t0;
  kill(pid, SIGKILL);
  test_wait(pid, 5000, "stopped client");
  synod_client_free(obs);
  printf("ok session-bound keys: gone on close, and %" PRIu64
         " ms after a 1 s TTL client stopped\n",
         gone_ms);
}

/* The gateway: a process that registered 10,000 devices bound
 * to its session (TTL 3 s, renewed every second) is SIGKILLed. Its
 * entries are all still there 500 ms later (the session cannot expire
 * before 3 s after its last renewal, at least 2 s after the kill), and
 * gone within 12 s; a watcher on the prefix, started before the
 * registrations, sees every put and then every delete, once each. */
static void scenario_gateway_killed(const struct cluster *c) {
  enum { DEVICES = 10000, PER_TXN = 64, TTL_MS = 3000 };
  struct synod_client *obs = client_at(c->endpoints, 0);
  struct synod_key_watch *w;
  struct synod_key_watch_options wo = {.key = "gwk/", .prefix = true};
  OK(synod_key_watch(obs, &wo, 10000, &w, NULL));
  int pipefd[2];
  CHECK(pipe(pipefd) == 0, "pipe");
  pid_t pid = fork();
  CHECK(pid >= 0, "fork");
  if (pid == 0) {
    struct synod_client *x = client_at(c->endpoints, TTL_MS);
    int rv = 0;
    for (int i = 0; rv == 0 && i < DEVICES; i += PER_TXN) {
      struct synod_key_op ops[PER_TXN];
      char keys[PER_TXN][32];
      int n = DEVICES - i < PER_TXN ? DEVICES - i : PER_TXN;
      for (int j = 0; j < n; j++) {
        snprintf(keys[j], sizeof keys[j], "gwk/dev%05d", i + j);
        ops[j] = (struct synod_key_op){.type = SYNOD_KEY_OP_PUT,
                                       .key = keys[j],
                                       .value = "gw-7:7000",
                                       .value_len = 9,
                                       .flags = SYNOD_KEY_SESSION_BOUND};
      }
      struct synod_key_txn txn = {.success = ops, .success_n = (size_t)n};
      rv = synod_key_txn(x, &txn, 0, NULL);
    }
    char ch = rv == 0 ? 'k' : 'e';
    CHECK(write(pipefd[1], &ch, 1) == 1, "write");
    for (;;) {
      pause(); /* its library renews the session until the SIGKILL */
    }
  }
  test_track(pid);
  char ch = 0;
  CHECK(read(pipefd[0], &ch, 1) == 1 && ch == 'k', "the gateway's puts");
  close(pipefd[0]);
  close(pipefd[1]);
  CHECK(kill(pid, SIGKILL) == 0, "kill the gateway");
  uint64_t killed = test_now_ms();
  test_wait(pid, 5000, "gateway");
  usleep(500000);
  struct synod_key_list l;
  OK(synod_key_list(obs, "gwk/", NULL, DEVICES, SYNOD_KEY_KEYS_ONLY, 0, &l));
  uint64_t listed_ms = test_now_ms() - killed;
  CHECK(l.count == DEVICES && !l.more,
        "%zu of %d entries listed %" PRIu64 " ms after the SIGKILL", l.count,
        DEVICES, listed_ms);
  synod_key_list_free(&l);
  static uint8_t put[DEVICES], del[DEVICES];
  int puts = 0, dels = 0;
  uint64_t first_delete_ms = 0;
  while (dels < DEVICES) {
    struct synod_key_event ev;
    int rv = synod_key_watch_next(w, 1000, &ev);
    CHECK(rv == 0 || rv == SYNOD_ETIMEDOUT, "watch: %s", synod_errname(rv));
    CHECK(test_now_ms() - killed < 12000,
          "%d of %d deletes seen 12 s after the SIGKILL", dels, DEVICES);
    if (rv != 0) {
      continue;
    }
    unsigned d;
    CHECK(sscanf(ev.kv.key, "gwk/dev%05u", &d) == 1 && d < DEVICES, "key %s",
          ev.kv.key);
    if (!ev.deleted) {
      CHECK(put[d]++ == 0 && dels == 0, "put of %s twice or after a delete",
            ev.kv.key);
      puts++;
    } else {
      CHECK(put[d] == 1 && del[d]++ == 0, "delete of %s: put %d, deleted",
            ev.kv.key, put[d]);
      first_delete_ms = first_delete_ms ? first_delete_ms : test_now_ms();
      dels++;
    }
  }
  CHECK(puts == DEVICES, "%d puts seen", puts);
  OK(synod_key_list(obs, "gwk/", NULL, 1, SYNOD_KEY_KEYS_ONLY, 0, &l));
  CHECK(l.count == 0, "entries left after every delete");
  synod_key_list_free(&l);
  synod_key_watch_close(w);
  synod_client_free(obs);
  printf("ok a gateway with %d session-bound entries SIGKILLed: all there "
         "%" PRIu64 " ms after, the first delete read at %" PRIu64
         " ms (TTL %d ms), the watcher saw every put and delete once\n",
         DEVICES, listed_ms, first_delete_ms - killed, TTL_MS);
}

/* ------------------------------------------- device moved by a txn */

/* The registry's move: B takes devices/d1 only if it is still as read
 * (mod revision), and in one step. A stale gateway's overwrite, guarded
 * by the mod revision it last saw, is refused. */
static void scenario_txn_move(const struct cluster *c) {
  struct synod_client *ga = client_at(c->endpoints, 0);
  struct synod_client *gb = client_at(c->endpoints, 0);
  struct synod_key_put_result p;
  struct synod_key_txn_result t;
  OK(synod_key_put(ga, "devices/d1", "gw-a", 4, SYNOD_KEY_SESSION_BOUND, NULL,
                   0, 0, &p));
  uint64_t seen = p.kv.mod_revision;
  synod_key_put_result_free(&p);
  struct synod_key_compare cmp = {.key = "devices/d1",
                                  .target = SYNOD_KEY_MOD_REVISION,
                                  .op = SYNOD_KEY_EQUAL,
                                  .number = seen};
  struct synod_key_op ops[] = {
      {.type = SYNOD_KEY_OP_PUT,
       .key = "devices/d1",
       .value = "gw-b",
       .value_len = 4,
       .flags = SYNOD_KEY_SESSION_BOUND | SYNOD_KEY_PREV},
      {.type = SYNOD_KEY_OP_PUT,
       .key = "moves/d1",
       .value = "a->b",
       .value_len = 4},
      {.type = SYNOD_KEY_OP_GET, .key = "devices/d1"}};
  struct synod_key_op fail[] = {
      {.type = SYNOD_KEY_OP_GET, .key = "devices/d1"}};
  struct synod_key_txn txn = {.compares = &cmp,
                              .compares_n = 1,
                              .success = ops,
                              .success_n = 3,
                              .failure = fail,
                              .failure_n = 1};
  OK(synod_key_txn(gb, &txn, 0, &t));
  CHECK(t.succeeded && t.count == 3, "move: succeeded with 3 results");
  CHECK(t.results[0].type == SYNOD_KEY_OP_PUT && t.results[0].u.put.has_prev &&
            strcmp((char *)t.results[0].u.put.prev.value, "gw-a") == 0,
        "move: prev was gw-a");
  CHECK(t.results[2].type == SYNOD_KEY_OP_GET && t.results[2].u.get.found &&
            strcmp((char *)t.results[2].u.get.kv.value, "gw-b") == 0 &&
            t.results[2].u.get.kv.session_id == synod_session_id(gb),
        "move: the get sees the put, bound to B");
  CHECK(t.results[0].u.put.revision == t.revision &&
            t.results[2].u.get.kv.mod_revision == t.revision,
        "move: one revision");
  synod_key_txn_result_free(&t);
  /* A's closing must not take the moved key with it. The stale A tries
   * to write with what it saw: refused, and the failure branch runs. */
  OK(synod_key_txn(ga, &txn, 0, &t));
  CHECK(!t.succeeded && t.count == 1 && t.results[0].u.get.found &&
            strcmp((char *)t.results[0].u.get.kv.value, "gw-b") == 0,
        "stale gateway: refused, sees gw-b");
  synod_key_txn_result_free(&t);
  OK(synod_key_put(ga, "devices/d1", "gw-a", 4, 0, &cmp, 1, 0, &p));
  CHECK(!p.succeeded && p.has_kv && p.kv.session_id == synod_session_id(gb),
        "stale gateway's compare-and-put refused");
  synod_key_put_result_free(&p);
  synod_client_free(ga);
  CHECK(key_exists(gb, "devices/d1"), "the moved key outlives A's session");
  synod_client_free(gb);
  struct synod_client *obs = client_at(c->endpoints, 0);
  CHECK(!key_exists(obs, "devices/d1"), "gone with B's session");
  CHECK(key_exists(obs, "moves/d1"), "the unbound record stays");
  synod_client_free(obs);
  printf("ok txn move A -> B; stale gateway refused\n");
}

/* ------------------------------------------------------ list paging */

static void scenario_list_pages(const struct cluster *c) {
  enum { KEYS = 2500 };
  struct synod_client *cl = client_at(c->endpoints, 0);
  for (int i = 0; i < KEYS; i += 50) { /* 50 puts per transaction */
    struct synod_key_op ops[50];
    char keys[50][32];
    for (int j = 0; j < 50; j++) {
      snprintf(keys[j], sizeof keys[j], "list/%05d", i + j);
      ops[j] = (struct synod_key_op){.type = SYNOD_KEY_OP_PUT,
                                     .key = keys[j],
                                     .value = keys[j],
                                     .value_len = strlen(keys[j])};
    }
    struct synod_key_txn txn = {.success = ops, .success_n = 50};
    OK(synod_key_txn(cl, &txn, 0, NULL));
  }
  OK(synod_key_put(cl, "lisu", "outside", 7, 0, NULL, 0, 0, NULL));
  char after[64] = "";
  int seen = 0, pages = 0;
  uint64_t first_rev = 0;
  bool more = true;
  while (more) {
    struct synod_key_list l;
    OK(synod_key_list(cl, "list/", after, 1000,
                      pages % 2 ? 0 : SYNOD_KEY_KEYS_ONLY, 0, &l));
    first_rev = first_rev ? first_rev : l.revision;
    CHECK(l.revision >= first_rev, "revisions go forward");
    for (size_t i = 0; i < l.count; i++) {
      char want[32];
      snprintf(want, sizeof want, "list/%05d", seen);
      CHECK(strcmp(l.kvs[i].key, want) == 0, "page %d: %s, want %s", pages,
            l.kvs[i].key, want);
      CHECK(pages % 2 ? strcmp((char *)l.kvs[i].value, want) == 0
                      : l.kvs[i].value_len == 0,
            "values / keys only");
      CHECK(l.kvs[i].mod_revision <= l.revision, "kv newer than its page");
      seen++;
    }
    more = l.more;
    if (l.count > 0) {
      snprintf(after, sizeof after, "%s", l.kvs[l.count - 1].key);
    }
    pages++;
    synod_key_list_free(&l);
  }
  CHECK(seen == KEYS && pages == 3, "%d keys in %d pages", seen, pages);
  /* A page answers with values when asked. Then one page read while
   * another client deletes: a page is one revision's view. */
  struct synod_key_list l;
  OK(synod_key_list(cl, "list/", NULL, 10, SYNOD_READ_STALE, 0, &l));
  CHECK(l.count == 10 && l.more, "stale page");
  synod_key_list_free(&l);
  struct synod_key_delete_result d;
  OK(synod_key_delete(cl, "list/", SYNOD_KEY_PREFIX, NULL, 0, 0, &d));
  CHECK(d.deleted == KEYS, "deleted %" PRIu64, d.deleted);
  OK(synod_key_list(cl, "list/", NULL, 0, 0, 0, &l));
  CHECK(l.count == 0 && !l.more && l.revision == d.revision, "empty after");
  synod_key_list_free(&l);
  /* The keys as they were at the first listing's revision, deleted
   * since: every page at that revision shows them all, with values. */
  after[0] = '\0';
  seen = 0;
  for (more = true; more;) {
    OK(synod_key_list_at(cl, "list/", after, 1000, 0, first_rev, 0, &l));
    CHECK(l.revision == first_rev, "a page at %" PRIu64 ", asked %" PRIu64,
          l.revision, first_rev);
    for (size_t i = 0; i < l.count; i++, seen++) {
      char want[32];
      snprintf(want, sizeof want, "list/%05d", seen);
      CHECK(strcmp(l.kvs[i].key, want) == 0 &&
                strcmp((char *)l.kvs[i].value, want) == 0,
            "at %" PRIu64 ": %s, want %s", first_rev, l.kvs[i].key, want);
    }
    more = l.more;
    if (l.count > 0) {
      snprintf(after, sizeof after, "%s", l.kvs[l.count - 1].key);
    }
    synod_key_list_free(&l);
  }
  CHECK(seen == KEYS, "%d keys at revision %" PRIu64, seen, first_rev);
  int rv = synod_key_list_at(cl, "list/", NULL, 1, 0, d.revision + 1000, 0, &l);
  CHECK(rv == SYNOD_EINVAL, "a revision after the newest: %s",
        synod_errname(rv));
  synod_client_free(cl);
  printf("ok list: %d keys in 3 pages of 1,000, in order; the same at the "
         "first page's revision after they were deleted\n",
         KEYS);
}

/* ------------------------------------------------------------- async */

/* A chain on the caller's loop: put (bound) -> get -> txn -> list ->
 * delete, each started from the previous one's callback. */
struct chain {
  struct synod_async *a;
  int step; /* callbacks run, in order */
  uint64_t put_rev;
  bool closed;
};

static void chain_delete_cb(void *arg, int status,
                            const struct synod_key_delete_result *r) {
  struct chain *ch = arg;
  CHECK(status == 0 && r->deleted == 2, "async delete: %s",
        synod_strerror(status));
  ch->step++;
}

static void chain_list_cb(void *arg, int status,
                          const struct synod_key_list *l) {
  struct chain *ch = arg;
  CHECK(status == 0 && l->count == 2 && !l->more &&
            strcmp(l->kvs[1].key, "async/b") == 0 && l->kvs[1].value_len == 0,
        "async list");
  ch->step++;
  CHECK(synod_async_key_delete(ch->a, "async/", SYNOD_KEY_PREFIX, NULL, 0,
                               chain_delete_cb, ch) == 0,
        "delete");
}

static void chain_txn_cb(void *arg, int status,
                         const struct synod_key_txn_result *r) {
  struct chain *ch = arg;
  CHECK(status == 0 && r->succeeded && r->count == 1, "async txn");
  ch->step++;
  CHECK(synod_async_key_list(ch->a, "async/", NULL, 0, SYNOD_KEY_KEYS_ONLY,
                             chain_list_cb, ch) == 0,
        "list");
}

static void chain_get_cb(void *arg, int status,
                         const struct synod_key_get_result *g) {
  struct chain *ch = arg;
  CHECK(status == 0 && g->found && g->kv.mod_revision == ch->put_rev &&
            g->kv.session_id == synod_async_session_id(ch->a),
        "async get");
  ch->step++;
  struct synod_key_compare cmp = {.key = "async/a",
                                  .target = SYNOD_KEY_MOD_REVISION,
                                  .number = ch->put_rev};
  struct synod_key_op op = {
      .type = SYNOD_KEY_OP_PUT, .key = "async/b", .value = "b", .value_len = 1};
  struct synod_key_txn txn = {
      .compares = &cmp, .compares_n = 1, .success = &op, .success_n = 1};
  /* The call copies everything: cmp, op and txn may go at once. */
  CHECK(synod_async_key_txn(ch->a, &txn, chain_txn_cb, ch) == 0, "txn");
}

static void chain_put_cb(void *arg, int status,
                         const struct synod_key_put_result *r) {
  struct chain *ch = arg;
  CHECK(status == 0 && r->succeeded, "async put: %s", synod_strerror(status));
  ch->step++;
  ch->put_rev = r->revision;
  CHECK(synod_async_key_get(ch->a, "async/a", 0, chain_get_cb, ch) == 0, "get");
}

static void chain_closed_cb(void *arg) {
  ((struct chain *)arg)->closed = true;
}

static void scenario_async(const struct cluster *c) {
  uv_loop_t loop;
  struct synod_options o;
  struct chain ch = {0};
  uv_loop_init(&loop);
  synod_options_init(&o);
  o.endpoints = c->endpoints;
  CHECK(synod_async_new(&loop, &o, &ch.a) == 0, "async new");
  CHECK(synod_async_key_put(ch.a, "", "v", 1, 0, NULL, 0, chain_put_cb, &ch) ==
            SYNOD_EINVAL,
        "an empty key refused at once");
  CHECK(synod_async_key_put(ch.a, "async/a", "a", 1, SYNOD_KEY_SESSION_BOUND,
                            NULL, 0, chain_put_cb, &ch) == 0,
        "put");
  uint64_t until = test_now_ms() + 20000;
  while (ch.step < 5 && test_now_ms() < until) {
    uv_run(&loop, UV_RUN_ONCE);
  }
  CHECK(ch.step == 5, "the chain stopped at step %d", ch.step);
  synod_async_close(ch.a, chain_closed_cb, &ch);
  while (!ch.closed) {
    uv_run(&loop, UV_RUN_ONCE);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0, "loop close");
  printf("ok async: put, get, txn, list, delete chained on the caller's "
         "loop\n");
}

/* ---------------------------------------------------------- failover */

struct creator {
  const struct cluster *c;
  atomic_int done; /* read by the main thread */
  int refused, failed;
};

/* Create-only puts in one session: a retry applied twice would find its
 * own key and answer succeeded = false. */
static void *creator_main(void *arg) {
  struct creator *cr = arg;
  struct synod_client *cl = client_at(cr->c->endpoints, 0);
  for (int i = 0; i < 300; i++) {
    char key[32];
    bool created = false;
    snprintf(key, sizeof key, "failover/%03d", i);
    int rv = synod_key_create(cl, key, "v", 1, 0, 30000, &created);
    cr->failed += rv != 0;
    cr->refused += rv == 0 && !created;
    cr->done++;
    if (rv != 0) {
      fprintf(stderr, "create %s: %s\n", key, synod_client_errmsg());
    }
  }
  synod_client_free(cl);
  return NULL;
}

/* Writes retried over a leader SIGKILL apply once; a stale read is served
 * by a follower while the leader is stopped. */
static void scenario_failover(struct cluster *c, int leader) {
  struct creator cr = {.c = c};
  pthread_t th;
  CHECK(pthread_create(&th, NULL, creator_main, &cr) == 0, "thread");
  while (cr.done < 100) {
    usleep(5000);
  }
  cluster_signal(c, leader, SIGKILL);
  cluster_restart(c, leader);
  pthread_join(th, NULL);
  CHECK(cr.failed == 0 && cr.refused == 0,
        "%d creates failed, %d found their own key (applied twice)", cr.failed,
        cr.refused);
  leader = cluster_wait_leader(c, 30000);
  struct synod_client *cl = client_at(c->endpoints, 0);
  struct synod_key_list l;
  OK(synod_key_list(cl, "failover/", NULL, 0, 0, 0, &l));
  CHECK(l.count == 300, "%zu keys", l.count);
  for (size_t i = 0; i < l.count; i++) {
    CHECK(l.kvs[i].version == 1, "%s at version %" PRIu64, l.kvs[i].key,
          l.kvs[i].version);
  }
  synod_key_list_free(&l);
  synod_client_free(cl);
  /* The leader stopped: a follower answers a stale read from its state. */
  int f = follower_of(c, leader);
  struct synod_client *s = client_at(c->nodes[f].client, 0);
  struct synod_key_get_result g;
  OK(synod_key_get(s, "failover/299", SYNOD_READ_STALE, 0, &g)); /* connect */
  synod_key_get_result_free(&g);
  cluster_signal(c, leader, SIGSTOP);
  OK(synod_key_get(s, "failover/299", SYNOD_READ_STALE, 2000, &g));
  CHECK(g.found, "stale read on a follower with the leader stopped");
  synod_key_get_result_free(&g);
  cluster_signal(c, leader, SIGCONT);
  synod_client_free(s);
  printf("ok failover: 300 create-only puts through a leader SIGKILL, each "
         "applied once; a follower serves stale reads alone\n");
}

/* ------------------------------------------ transactions, failover */

enum { BANK_ACCOUNTS = 8, BANK_TELLERS = 4, BANK_START = 1000 };

struct teller {
  const struct cluster *c;
  int id;
  atomic_bool *stop;
  atomic_int done; /* transfers applied, as this teller was told */
  int conflicts;   /* compares that failed: read again */
  int unknown;     /* errors: applied or not */
  char first_error[160];
};

/* A key's balance and mod revision (0, 0 if absent). */
static void bank_read(struct synod_client *cl, const char *key, long *balance,
                      uint64_t *rev, int *rv) {
  struct synod_key_get_result g = {0}; /* untouched on an error */
  *balance = 0;
  *rev = 0;
  *rv = synod_key_get(cl, key, 0, 30000, &g);
  if (*rv == 0 && g.found) {
    *balance = strtol((const char *)g.kv.value, NULL, 10);
    *rev = g.kv.mod_revision;
  }
  synod_key_get_result_free(&g);
}

/* Moves money between two accounts in one transaction guarded by both
 * accounts' mod revisions, and puts the teller's own key in the same
 * transaction: one half applied shows in the sum of the balances, one
 * applied but told otherwise in that key's version. */
static void *teller_main(void *arg) {
  struct teller *t = arg;
  struct synod_client *cl = client_at(t->c->endpoints, 0);
  uint64_t seed = 0x9e3779b97f4a7c15ull * (uint64_t)(t->id + 1);
  while (!atomic_load(t->stop)) {
    seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
    int a = (int)(seed % BANK_ACCOUNTS), b = (int)((seed >> 8) % BANK_ACCOUNTS);
    if (a == b) {
      continue;
    }
    char ka[32], kb[32], kt[32], va[24], vb[24], vt[24];
    snprintf(ka, sizeof ka, "bank/acct%d", a);
    snprintf(kb, sizeof kb, "bank/acct%d", b);
    snprintf(kt, sizeof kt, "bank/teller%d", t->id);
    long ba, bb;
    uint64_t ra, rb;
    int rv1, rv2;
    bank_read(cl, ka, &ba, &ra, &rv1);
    bank_read(cl, kb, &bb, &rb, &rv2);
    if (rv1 != 0 || rv2 != 0) {
      continue; /* a read failed: nothing written */
    }
    long amount = (long)(seed >> 16) % 50 + 1;
    snprintf(va, sizeof va, "%ld", ba - amount);
    snprintf(vb, sizeof vb, "%ld", bb + amount);
    snprintf(vt, sizeof vt, "%d", atomic_load(&t->done) + 1);
    struct synod_key_compare cmp[2] = {
        {.key = ka, .target = SYNOD_KEY_MOD_REVISION, .number = ra},
        {.key = kb, .target = SYNOD_KEY_MOD_REVISION, .number = rb}};
    struct synod_key_op ops[3] = {{.type = SYNOD_KEY_OP_PUT,
                                   .key = ka,
                                   .value = va,
                                   .value_len = strlen(va)},
                                  {.type = SYNOD_KEY_OP_PUT,
                                   .key = kb,
                                   .value = vb,
                                   .value_len = strlen(vb)},
                                  {.type = SYNOD_KEY_OP_PUT,
                                   .key = kt,
                                   .value = vt,
                                   .value_len = strlen(vt)}};
    struct synod_key_txn txn = {
        .compares = cmp, .compares_n = 2, .success = ops, .success_n = 3};
    struct synod_key_txn_result r = {0}; /* untouched on an error */
    int rv = synod_key_txn(cl, &txn, 30000, &r);
    if (rv != 0) {
      if (t->unknown++ == 0) {
        snprintf(t->first_error, sizeof t->first_error, "%s",
                 synod_client_errmsg());
      }
    } else if (r.succeeded) {
      atomic_fetch_add(&t->done, 1);
    } else {
      t->conflicts++;
    }
    synod_key_txn_result_free(&r);
  }
  synod_client_free(cl);
  return NULL;
}

static int bank_done(struct teller *t) {
  int n = 0;
  for (int i = 0; i < BANK_TELLERS; i++) {
    n += atomic_load(&t[i].done);
  }
  return n;
}

/* Waits until the tellers applied `n` more transfers (bounded). */
static void bank_wait(struct teller *t, int n) {
  int goal = bank_done(t) + n;
  uint64_t t0 = test_now_ms();
  while (bank_done(t) < goal) {
    CHECK(test_now_ms() - t0 < 30000, "%d of %d transfers in 30 s",
          bank_done(t) - (goal - n), n);
    usleep(5000);
  }
}

/* Transfers between accounts by four tellers, each a transaction of two
 * compares and three puts, through two leader SIGKILLs: the balances
 * still add up (no transaction half applied) and each teller's count key
 * equals the transfers it was told were applied (none applied but told
 * otherwise, none lost). */
static void scenario_bank(struct cluster *c) {
  struct synod_client *cl = client_at(c->endpoints, 0);
  for (int i = 0; i < BANK_ACCOUNTS; i++) {
    char k[32], v[24];
    snprintf(k, sizeof k, "bank/acct%d", i);
    snprintf(v, sizeof v, "%d", BANK_START);
    OK(synod_key_put(cl, k, v, strlen(v), 0, NULL, 0, 0, NULL));
  }
  atomic_bool stop = false;
  static struct teller t[BANK_TELLERS];
  pthread_t th[BANK_TELLERS];
  for (int i = 0; i < BANK_TELLERS; i++) {
    t[i] = (struct teller){.c = c, .id = i, .stop = &stop};
    CHECK(pthread_create(&th[i], NULL, teller_main, &t[i]) == 0, "thread");
  }
  for (int kill = 0; kill < 2; kill++) {
    bank_wait(t, 100);
    int leader = cluster_wait_leader(c, 30000);
    cluster_signal(c, leader, SIGKILL);
    cluster_restart(c, leader);
  }
  bank_wait(t, 100);
  atomic_store(&stop, true);
  int conflicts = 0;
  for (int i = 0; i < BANK_TELLERS; i++) {
    pthread_join(th[i], NULL);
    conflicts += t[i].conflicts;
  }
  cluster_wait_leader(c, 30000);
  struct synod_key_list l;
  OK(synod_key_list(cl, "bank/", NULL, 0, 0, 0, &l));
  long sum = 0;
  int tellers = 0;
  for (size_t i = 0; i < l.count; i++) {
    if (strncmp(l.kvs[i].key, "bank/acct", 9) == 0) {
      sum += strtol((const char *)l.kvs[i].value, NULL, 10);
      continue;
    }
    int id = atoi(l.kvs[i].key + strlen("bank/teller"));
    CHECK(id >= 0 && id < BANK_TELLERS, "key %s", l.kvs[i].key);
    int told = atomic_load(&t[id].done);
    /* The teller's key is put once per transfer applied: its version
     * counts them. A retry applied again would fail its compares and be
     * told "not applied"; an answer lost to an error may hide one. */
    uint64_t applied = l.kvs[i].version;
    CHECK(applied >= (uint64_t)told &&
              applied <= (uint64_t)(told + t[id].unknown),
          "teller %d: %" PRIu64 " transfers applied, told %d (%d unknown: %s)",
          id, applied, told, t[id].unknown, t[id].first_error);
    tellers++;
  }
  synod_key_list_free(&l);
  CHECK(sum == (long)BANK_ACCOUNTS * BANK_START,
        "the balances add up to %ld, not %d", sum, BANK_ACCOUNTS * BANK_START);
  CHECK(tellers == BANK_TELLERS, "%d teller keys", tellers);
  synod_client_free(cl);
  printf("ok %d transfers by %d tellers (%d compares failed and were read "
         "again) through 2 leader SIGKILLs: balances add up, each applied "
         "once\n",
         bank_done(t), BANK_TELLERS, conflicts);
}

/* --------------------------------------------------------- bad input */

static void scenario_bad_input(const struct cluster *c) {
  struct synod_client *cl = client_at(c->endpoints, 0);
  char longkey[SYNOD_KEY_BYTES_MAX + 2];
  memset(longkey, 'k', sizeof longkey - 1);
  longkey[sizeof longkey - 1] = '\0';
  CHECK(synod_key_put(cl, longkey, "v", 1, 0, NULL, 0, 0, NULL) == SYNOD_EINVAL,
        "a key over 512 bytes");
  CHECK(strstr(synod_client_errmsg(), "513 bytes") != NULL, "message: %s",
        synod_client_errmsg());
  CHECK(synod_key_put(cl, "", "v", 1, 0, NULL, 0, 0, NULL) == SYNOD_EINVAL,
        "an empty key");
  size_t big = 64 * 1024 + 1;
  char *v = calloc(1, big);
  CHECK(v != NULL, "calloc");
  int rv = synod_key_put(cl, "bad/big", v, big, 0, NULL, 0, 0, NULL);
  CHECK(rv == SYNOD_ETOOBIG, "a value over 64 KiB: %s", synod_errname(rv));
  free(v);
  CHECK(!key_exists(cl, "bad/big"), "nothing changed");
  struct synod_key_op ops[SYNOD_KEY_TXN_OPS_MAX + 1];
  for (size_t i = 0; i < SYNOD_KEY_TXN_OPS_MAX + 1; i++) {
    ops[i] = (struct synod_key_op){.type = SYNOD_KEY_OP_GET, .key = "bad/x"};
  }
  struct synod_key_txn txn = {.success = ops,
                              .success_n = SYNOD_KEY_TXN_OPS_MAX + 1};
  CHECK(synod_key_txn(cl, &txn, 0, NULL) == SYNOD_ELIMIT, "txn over the bound");
  /* One key twice in a branch: the server refuses the whole txn. */
  struct synod_key_op twice[] = {
      {.type = SYNOD_KEY_OP_PUT, .key = "bad/t", .value = "1", .value_len = 1},
      {.type = SYNOD_KEY_OP_PUT, .key = "bad/t", .value = "2", .value_len = 1}};
  struct synod_key_txn t2 = {.success = twice, .success_n = 2};
  rv = synod_key_txn(cl, &t2, 0, NULL);
  CHECK(rv == SYNOD_EINVAL, "one key twice: %s", synod_errname(rv));
  CHECK(!key_exists(cl, "bad/t"), "nothing changed");
  CHECK(synod_key_delete(cl, "bad/", SYNOD_KEY_PREFIX | SYNOD_KEY_PREV, NULL, 0,
                         0, NULL) == SYNOD_EINVAL,
        "prev with a prefix");
  CHECK(synod_key_list(cl, NULL, NULL, SYNOD_KEY_LIST_LIMIT_MAX + 1, 0, 0,
                       NULL) == SYNOD_EINVAL,
        "a list limit over the maximum");
  synod_client_free(cl);
  printf("ok bad input refused, nothing changed\n");
}

/* ---------------------------------------------------------- synodctl */

static char synodctl[PATH_MAX];
static char ctl_dir[PATH_MAX];
static const char *ctl_endpoints;

/* Runs `synodctl --endpoints E ARGS` (a shell fragment, which may pipe
 * into or out of it); returns its exit code, *out its output. */
static int ctl(const char *args, char **out) {
  char cmd[8192], path[PATH_MAX + 16];
  snprintf(path, sizeof path, "%s/ctl.out", ctl_dir);
  unlink(path);
  int n = snprintf(cmd, sizeof cmd, args, synodctl, ctl_endpoints);
  CHECK(n > 0 && (size_t)n < sizeof cmd, "command too long");
  int rv = test_sh(cmd, path, 30000);
  char *text = test_slurp(path);
  if (out != NULL) {
    *out = text;
  } else {
    free(text);
  }
  return rv;
}

/* ctl() that must exit with `code` and print `want` (NULL: anything). */
static void ctl_expect(const char *args, int code, const char *want) {
  char *out;
  int rv = ctl(args, &out);
  CHECK(rv == code && (want == NULL || strstr(out, want) != NULL),
        "%s: exit %d, want %d; output:\n%s\nwanted: %s", args, rv, code, out,
        want ? want : "(anything)");
  free(out);
}

#define CTL "'%s' --endpoints %s key "

/* synodd --keys-value-max-bytes 100KiB reaches the state through the
 * leader's settings entry: a value over the default 64 KiB is taken, one
 * byte over 100 KiB refused with SYNOD_ETOOBIG and nothing written. */
static void scenario_value_bound(void) {
  ctl_expect("head -c 102400 /dev/zero | tr '\\0' v | " CTL "put big/ok -", 0,
             NULL);
  ctl_expect(CTL "get big/ok --json", 0, "\"version\":1");
  ctl_expect("head -c 102401 /dev/zero | tr '\\0' v | " CTL "put big/no -", 1,
             "SYNOD_ETOOBIG");
  ctl_expect(CTL "get big/no", 1, "big/no not found");
  printf("ok --keys-value-max-bytes 100KiB: 102,400 bytes taken, 102,401 "
         "refused\n");
}

static void scenario_synodctl(const struct cluster *c) {
  struct synod_client *cl = client_at(c->endpoints, 0);
  ctl_expect(CTL "put ctl/a hello", 0, "revision ");
  ctl_expect(CTL "get ctl/a", 0, "hello\n");
  ctl_expect(CTL "get ctl/a --json", 0, "\"value\":\"hello\"");
  ctl_expect(CTL "get ctl/a --stale", 0, "hello");
  ctl_expect(CTL "put ctl/a other --if-version 0", 75, "not put");
  ctl_expect(CTL "get ctl/a", 0, "hello");
  ctl_expect(CTL "put ctl/a world --if-version 1 --prev", 0, "hello");
  ctl_expect(CTL "put ctl/a x --if-value nope --json", 75,
             "\"succeeded\":false");
  ctl_expect("printf 'line1\\nline2' | " CTL "put ctl/b -", 0, "revision");
  struct synod_key_get_result g;
  OK(synod_key_get(cl, "ctl/b", 0, 0, &g));
  CHECK(g.found && strcmp((char *)g.kv.value, "line1\nline2") == 0,
        "stdin value: '%s'", (char *)g.kv.value);
  synod_key_get_result_free(&g);
  ctl_expect(CTL "get ctl/none", 1, "not found");
  ctl_expect(CTL "put ctl/neg -5", 2, "usage");
  ctl_expect(CTL "put --prev -- ctl/neg -5", 0, "revision");
  ctl_expect(CTL "get ctl/neg", 0, "-5\n");
  ctl_expect(CTL "del ctl/b --prev", 0, "deleted 1");
  ctl_expect(CTL "del ctl/a --if-mod-rev 1", 75, "not deleted");

  /* list pages through everything; --limit stops early. */
  for (int i = 0; i < 2100; i += 60) {
    struct synod_key_op ops[60];
    char keys[60][32];
    for (int j = 0; j < 60; j++) {
      snprintf(keys[j], sizeof keys[j], "ctl/l/%05d", i + j);
      ops[j] = (struct synod_key_op){.type = SYNOD_KEY_OP_PUT,
                                     .key = keys[j],
                                     .value = "v",
                                     .value_len = 1};
    }
    struct synod_key_txn txn = {.success = ops, .success_n = 60};
    OK(synod_key_txn(cl, &txn, 0, NULL));
  }
  ctl_expect(CTL "list ctl/l/ --keys-only | wc -l", 0, "2100");
  ctl_expect(CTL "list ctl/l/ --limit 1001 | tail -1", 0, "ctl/l/01000\tv");
  ctl_expect(CTL "list ctl/l/ --json --keys-only | grep -o '\"key\"' | wc -l",
             0, "2100");
  ctl_expect(CTL "del ctl/l/ --prefix", 0, "deleted 2100");

  /* A session-bound put is held while synodctl runs. */
  char cmd[PATH_MAX * 2], out[PATH_MAX + 16];
  snprintf(out, sizeof out, "%s/held.out", ctl_dir);
  snprintf(cmd, sizeof cmd,
           "exec '%s' --endpoints %s key put ctl/dev gw-a --session-bound "
           "--ttl 2s",
           synodctl, ctl_endpoints);
  char *argv[] = {"sh", "-c", cmd, NULL};
  pid_t held = test_spawn(argv, out);
  test_wait_file(out, "holding ctl/dev", 10000);
  CHECK(key_exists(cl, "ctl/dev"), "held key there");
  kill(held, SIGTERM);
  CHECK(test_wait(held, 10000, "held put") == 0, "held put exit 0");
  CHECK(!key_exists(cl, "ctl/dev"), "held key gone when synodctl exited");

  /* txn: the registry's move, then the stale one. */
  struct synod_key_put_result p;
  OK(synod_key_put(cl, "ctl/devices/d1", "gw-a", 4, 0, NULL, 0, 0, &p));
  char txn[1024];
  snprintf(txn, sizeof txn,
           "echo '{\"compare\":[{\"key\":\"ctl/devices/d1\",\"mod_revision\":"
           "%" PRIu64 "}],\"success\":[{\"put\":\"ctl/devices/d1\",\"value\":"
           "\"gw-b\"},{\"get\":\"ctl/devices/d1\"}],\"failure\":[{\"get\":"
           "\"ctl/devices/d1\"}]}' | " CTL "txn",
           p.revision, "%s", "%s");
  synod_key_put_result_free(&p);
  ctl_expect(txn, 0, "get ctl/devices/d1\tgw-b");
  strcat(txn, " --json");
  ctl_expect(txn, 75, "\"succeeded\":false");

  /* Bad input: a clear message, nonzero, nothing changed. */
  char longkey[SYNOD_KEY_BYTES_MAX + 2];
  memset(longkey, 'k', sizeof longkey - 1);
  longkey[sizeof longkey - 1] = '\0';
  snprintf(cmd, sizeof cmd, CTL "put %s v", "%s", "%s", longkey);
  ctl_expect(cmd, 1, "513 bytes; at most 512");
  ctl_expect("head -c 110000 /dev/zero | tr '\\0' v | " CTL "put ctl/big -", 1,
             "SYNOD_ETOOBIG");
  CHECK(!key_exists(cl, "ctl/big"), "big value not stored");
  ctl_expect("echo '{\"success\":[{\"put\":\"ctl/j\",\"value\":1}]}' | " CTL
             "txn",
             2, "success[0]: \"value\" must be a string");
  ctl_expect("echo '{\"success\":[' | " CTL "txn", 2, "bad transaction");
  ctl_expect("echo '{\"succes\":[]}' | " CTL "txn", 2, "unknown field");
  CHECK(!key_exists(cl, "ctl/j"), "bad txn changed nothing");
  ctl_expect(CTL "put", 2, "usage");
  ctl_expect(CTL "--help", 0, "session_bound");
  synod_client_free(cl);
  printf("ok synodctl key: put/get/del/list/txn, --json, stdin, held "
         "session-bound put, bad input\n");
}

/* A held session-bound put whose session cannot be renewed (every
 * replica stopped) says so and exits 76; the key is gone once the cluster
 * runs again and the session expires. */
static void scenario_synodctl_lost(struct cluster *c) {
  char cmd[PATH_MAX * 2], out[PATH_MAX + 16];
  snprintf(out, sizeof out, "%s/lost.out", ctl_dir);
  snprintf(cmd, sizeof cmd,
           "exec '%s' --endpoints %s key put ctl/lost gw-a --session-bound "
           "--ttl 1s",
           synodctl, ctl_endpoints);
  char *argv[] = {"sh", "-c", cmd, NULL};
  pid_t held = test_spawn(argv, out);
  test_wait_file(out, "holding ctl/lost", 10000);
  for (int i = 0; i < c->n; i++) {
    cluster_signal(c, i, SIGSTOP);
  }
  int code = test_wait(held, 10000, "held put with the cluster stopped");
  for (int i = 0; i < c->n; i++) {
    cluster_signal(c, i, SIGCONT);
  }
  CHECK(code == 76, "exit %d, want 76", code);
  test_wait_file(out, "session lost: ctl/lost is gone", 1000);
  cluster_wait_leader(c, 30000);
  struct synod_client *cl = client_at(c->endpoints, 0);
  uint64_t t0 = test_now_ms();
  while (key_exists(cl, "ctl/lost")) {
    CHECK(test_now_ms() - t0 < 10000, "ctl/lost still there");
    usleep(50000);
  }
  synod_client_free(cl);
  printf("ok synodctl key put --session-bound: exit 76 when the session "
         "could not be renewed, key gone\n");
}

/* synodctl key watch on a prefix: the revision to start from, as a
 * script gets it (key list --json). */
static uint64_t ctl_list_revision(const char *prefix) {
  char args[256], *out;
  snprintf(args, sizeof args, CTL "list %s --json --keys-only", "%s", "%s",
           prefix);
  CHECK(ctl(args, &out) == 0, "list: %s", out);
  const char *r = strstr(out, "\"revision\":");
  CHECK(r != NULL, "no revision in %s", out);
  uint64_t rev = strtoull(r + 11, NULL, 10);
  free(out);
  return rev;
}

/* Spawns `synodctl key watch ARGS`, output to out_path. */
static pid_t ctl_watch_spawn(const char *args, const char *out_path) {
  char cmd[PATH_MAX * 2];
  snprintf(cmd, sizeof cmd, "exec '%s' --endpoints %s key watch %s", synodctl,
           ctl_endpoints, args);
  char *argv[] = {"sh", "-c", cmd, NULL};
  return test_spawn(argv, out_path);
}

/* A prefix watched from the list's revision while other synodctl runs
 * put and delete, live and --json, ending after --count events; the same
 * history replayed later from that revision in text, with --prev; a
 * watch ended by TERM exits 0; a revision below the history (synodd
 * --keys-history) exits 77 naming the oldest one held; bad arguments
 * exit 2 at once, with nothing sent (the endpoint is unreachable). */
static void scenario_synodctl_watch(void) {
  char args[512], out[PATH_MAX + 16], *text;
  uint64_t from = ctl_list_revision("ctl/w/") + 1;
  snprintf(out, sizeof out, "%s/watch.json", ctl_dir);
  snprintf(args, sizeof args,
           "ctl/w/ --prefix --from %" PRIu64 " --count 4 --json", from);
  pid_t w = ctl_watch_spawn(args, out);
  ctl_expect(CTL "put ctl/w/a 1", 0, "revision");
  ctl_expect(CTL "put ctl/x outside", 0, "revision");
  ctl_expect(CTL "put ctl/w/b 'two words'", 0, "revision");
  ctl_expect(CTL "del ctl/w/a", 0, "deleted 1");
  ctl_expect("printf 'a\\tb\\377' | " CTL "put ctl/w/c -", 0, "revision");
  CHECK(test_wait(w, 20000, "key watch --count 4") == 0, "watch exit");
  text = test_slurp(out);
  char want[1024];
  snprintf(want, sizeof want,
           "{\"revision\":%" PRIu64 ",\"event\":1,\"type\":\"put\",\"key\":"
           "\"ctl/w/a\",\"value\":\"1\",\"create_revision\":%" PRIu64
           ",\"mod_revision\":%" PRIu64 ",\"version\":1,\"session_id\":0}\n"
           "{\"revision\":%" PRIu64 ",\"event\":1,\"type\":\"put\",\"key\":"
           "\"ctl/w/b\",\"value\":\"two words\",\"create_revision\":%" PRIu64
           ",\"mod_revision\":%" PRIu64 ",\"version\":1,\"session_id\":0}\n"
           "{\"revision\":%" PRIu64 ",\"event\":1,\"type\":\"delete\","
           "\"key\":\"ctl/w/a\"}\n"
           "{\"revision\":%" PRIu64 ",\"event\":1,\"type\":\"put\",\"key\":"
           "\"ctl/w/c\",\"value_base64\":\"YQli/w==\",\"create_revision\":"
           "%" PRIu64 ",\"mod_revision\":%" PRIu64 ",\"version\":1,"
           "\"session_id\":0}\n",
           from, from, from, from + 2, from + 2, from + 2, from + 3, from + 4,
           from + 4, from + 4);
  CHECK(strcmp(text, want) == 0, "watch --json printed:\n%s\nwant:\n%s", text,
        want);
  free(text);

  /* The same from history, as text, with the previous values. */
  snprintf(args, sizeof args,
           CTL "watch ctl/w/ --prefix --from %" PRIu64 " --count 4 --prev",
           "%s", "%s", from);
  snprintf(want, sizeof want,
           "%" PRIu64 " put ctl/w/a 1\n%" PRIu64 " put ctl/w/b two words\n"
           "%" PRIu64 " delete ctl/w/a (was 1)\n%" PRIu64
           " put ctl/w/c a\\tb\\xff\n",
           from, from + 2, from + 3, from + 4);
  CHECK(ctl(args, &text) == 0 && strcmp(text, want) == 0,
        "watch from history printed:\n%s\nwant:\n%s", text, want);
  free(text);

  /* No --count: live until TERM, which ends it with exit 0. */
  snprintf(out, sizeof out, "%s/watch.txt", ctl_dir);
  snprintf(args, sizeof args, "ctl/w/c --from %" PRIu64, from);
  w = ctl_watch_spawn(args, out);
  test_wait_file(out, " put ctl/w/c ", 10000);
  kill(w, SIGTERM);
  CHECK(test_wait(w, 10000, "key watch and TERM") == 0, "TERM: exit 0");

  /* Revision 1 is long gone from a history of HISTORY events. */
  ctl_expect(CTL "watch ctl/ --prefix --from 1 2>&1", 77,
             "the oldest revision retained is");
  ctl_expect(CTL "watch ctl/ --prefix --from 1 2>&1", 77,
             "then watch --from R+1");

  /* Usage errors: exit 2 at once, without trying the (closed) port. */
  static const char *const bad[] = {
      "",         "--count 0 k", "--count k", "--from 0 k", "--from -1 k",
      "k --from", "k j",         "k --bogus", "''",         "--prev",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char cmd[PATH_MAX * 2];
    snprintf(cmd, sizeof cmd,
             "'%s' --endpoints 127.0.0.1:1 --timeout 30s key watch %s 2>&1",
             synodctl, bad[i]);
    snprintf(out, sizeof out, "%s/bad.out", ctl_dir);
    unlink(out);
    uint64_t t0 = test_now_ms();
    int code = test_sh(cmd, out, 30000);
    text = test_slurp(out);
    CHECK(code == 2 && strstr(text, "usage") != NULL &&
              test_now_ms() - t0 < 5000,
          "key watch %s: exit %d after %" PRIu64 " ms:\n%s", bad[i], code,
          test_now_ms() - t0, text);
    free(text);
  }
  printf("ok synodctl key watch: a prefix live with --json and --count, "
         "history replayed with --prev, TERM, exit 77 below the history, "
         "usage errors\n");
}

/* A watch that falls behind the history while it runs (synodctl
 * stopped while twice HISTORY events are written under its prefix)
 * prints what was delivered before, then exits 77 naming the oldest
 * revision held. */
static void scenario_synodctl_watch_behind(const struct cluster *c) {
  enum { PER_TXN = 64 };
  char args[256], out[PATH_MAX + 16];
  struct synod_client *cl = client_at(c->endpoints, 0);
  uint64_t from = ctl_list_revision("ctl/c/") + 1;
  snprintf(out, sizeof out, "%s/behind.txt", ctl_dir);
  snprintf(args, sizeof args, "ctl/c/ --prefix --from %" PRIu64 " 2>&1", from);
  pid_t w = ctl_watch_spawn(args, out);
  OK(synod_key_put(cl, "ctl/c/first", "v", 1, 0, NULL, 0, 0, NULL));
  test_wait_file(out, " put ctl/c/first v\n", 10000);
  kill(w, SIGSTOP);
  for (int i = 0; i < 2 * HISTORY; i += PER_TXN) {
    struct synod_key_op ops[PER_TXN];
    char keys[PER_TXN][32];
    for (int j = 0; j < PER_TXN; j++) {
      snprintf(keys[j], sizeof keys[j], "ctl/c/%05d", i + j);
      ops[j] = (struct synod_key_op){.type = SYNOD_KEY_OP_PUT,
                                     .key = keys[j],
                                     .value = "v",
                                     .value_len = 1};
    }
    struct synod_key_txn txn = {.success = ops, .success_n = PER_TXN};
    OK(synod_key_txn(cl, &txn, 0, NULL));
  }
  kill(w, SIGCONT);
  CHECK(test_wait(w, 30000, "key watch behind the history") == 77, "exit 77");
  char *text = test_slurp(out);
  CHECK(strstr(text, "SYNOD_ECOMPACTED") != NULL &&
            strstr(text, "the oldest revision still held is ") != NULL,
        "the watch printed:\n%.2000s", text);
  printf("behind the history: %s",
         strstr(text, "the oldest revision still held is "));
  free(text);
  synod_client_free(cl);
  printf("ok synodctl key watch: behind the history while running, exit "
         "77\n");
}

/* A prefix watch from a revision while every replica in turn (the one it
 * reads from among them, and the leader) is SIGKILLed and restarted
 * after it printed what was written so far: it prints every put once,
 * in revision order, and exits 0 after --count. */
static void scenario_synodctl_watch_failover(struct cluster *c) {
  enum { PER_ROUND = 10 };
  char args[256], out[PATH_MAX + 16], key[64], line[128];
  char *want = calloc(1, (size_t)(c->n + 1) * PER_ROUND * sizeof line);
  struct synod_client *cl = client_at(c->endpoints, 0);
  uint64_t from = ctl_list_revision("ctl/f/") + 1;
  snprintf(out, sizeof out, "%s/failover.txt", ctl_dir);
  snprintf(args, sizeof args, "ctl/f/ --prefix --from %" PRIu64 " --count %d",
           from, (c->n + 1) * PER_ROUND);
  pid_t w = ctl_watch_spawn(args, out);
  for (int round = 0; round <= c->n; round++) {
    for (int j = 0; j < PER_ROUND; j++) {
      struct synod_key_put_result p;
      snprintf(key, sizeof key, "ctl/f/%d-%d", round, j);
      OK(synod_key_put(cl, key, "v", 1, 0, NULL, 0, 0, &p));
      snprintf(line, sizeof line, "%" PRIu64 " put %s v\n", p.revision, key);
      strcat(want, line);
      synod_key_put_result_free(&p);
    }
    test_wait_file(out, line, 20000); /* printed, then its replica dies */
    if (round < c->n) {
      cluster_signal(c, round, SIGKILL);
      cluster_restart(c, round);
      cluster_wait_leader(c, 30000);
    }
  }
  CHECK(test_wait(w, 30000, "key watch across failovers") == 0, "exit 0");
  char *text = test_slurp(out);
  CHECK(strcmp(text, want) == 0, "printed:\n%s\nwant:\n%s", text, want);
  free(text);
  free(want);
  synod_client_free(cl);
  printf("ok synodctl key watch: every replica SIGKILLed in turn, each put "
         "printed once, in order\n");
}

/* ------------------------------------------------------------ expiry */

/* The leader's CPU time (user + system) in ms, from /proc. */
static uint64_t cpu_ms(pid_t pid) {
  char path[64], buf[1024];
  unsigned long ut = 0, st = 0;
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  CHECK(f != NULL, "open %s", path);
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *p = strrchr(buf, ')');
  CHECK(p != NULL && sscanf(p + 2,
                            "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
                            "%*u %lu %lu",
                            &ut, &st) == 2,
        "parse %s", path);
  return (uint64_t)(ut + st) * 1000 / (uint64_t)sysconf(_SC_CLK_TCK);
}

static void expiry_main(struct cluster *c, int leader) {
  enum { KEYS = 100000, PER_TXN = 64 };
  struct synod_client *g = client_at(c->nodes[leader].client, 30000);
  uint64_t t0 = test_now_ms();
  for (int i = 0; i < KEYS; i += PER_TXN) {
    struct synod_key_op ops[PER_TXN];
    char keys[PER_TXN][32];
    int n = KEYS - i < PER_TXN ? KEYS - i : PER_TXN;
    for (int j = 0; j < n; j++) {
      snprintf(keys[j], sizeof keys[j], "fleet/dev%06d", i + j);
      ops[j] = (struct synod_key_op){.type = SYNOD_KEY_OP_PUT,
                                     .key = keys[j],
                                     .value = "gw-1:7000",
                                     .value_len = 9,
                                     .flags = SYNOD_KEY_SESSION_BOUND};
    }
    struct synod_key_txn txn = {.success = ops, .success_n = (size_t)n};
    OK(synod_key_txn(g, &txn, 0, NULL));
  }
  printf("bound %d keys in %" PRIu64 " ms\n", KEYS, test_now_ms() - t0);
  struct synod_client *obs = client_at(c->nodes[leader].client, 0);
  struct synod_key_list l;
  OK(synod_key_list(obs, "fleet/", NULL, 1, SYNOD_KEY_KEYS_ONLY, 0, &l));
  CHECK(l.count == 1, "keys there");
  synod_key_list_free(&l);
  /* Close the session; then no client traffic at all but the checks. */
  pid_t lp = c->nodes[leader].pid;
  uint64_t cpu0 = cpu_ms(lp), w0 = test_now_ms();
  synod_client_free(g);
  OK(synod_key_list(obs, "fleet/", NULL, 1, SYNOD_KEY_KEYS_ONLY, 0, &l));
  CHECK(l.count == 0, "no key listed once the close is answered");
  synod_key_list_free(&l);
  synod_client_free(obs);
  /* The physical removal goes on from the leader's ticks alone; the
   * metric says when it is done. 100,000 / 2,048 per entry = 49 entries,
   * one per 50 ms tick: about 2.5 s. Bound: 15 s. */
  char url[128], out[PATH_MAX + 32], cmd[512];
  snprintf(url, sizeof url, "http://%s/metrics", c->nodes[leader].http);
  snprintf(out, sizeof out, "%s/metrics.txt", c->dir);
  snprintf(cmd, sizeof cmd,
           "curl -sf %s | grep '^synod_key_work_keys ' | awk '{print $2}'",
           url);
  uint64_t done_ms = 0;
  while (done_ms == 0) {
    unlink(out); /* test_sh appends */
    CHECK(test_sh(cmd, out, 5000) == 0, "curl %s", url);
    char *txt = test_slurp(out);
    long left = strtol(txt, NULL, 10);
    bool empty = txt[0] != '\0' && left == 0;
    free(txt);
    if (empty) {
      done_ms = test_now_ms() - w0;
    } else {
      CHECK(test_now_ms() - w0 < 15000, "%ld keys still to remove after 15 s",
            left);
      usleep(100000);
    }
  }
  uint64_t cpu = cpu_ms(lp) - cpu0;
  /* Idle afterwards: the ticks stop once the work is done. */
  uint64_t cpu1 = cpu_ms(lp);
  sleep(2);
  uint64_t idle = cpu_ms(lp) - cpu1;
  printf("removed %d keys in %" PRIu64 " ms with no other traffic; leader CPU "
         "%" PRIu64 " ms meanwhile, %" PRIu64 " ms in the 2 s after\n",
         KEYS, done_ms, cpu, idle);
  CHECK(cpu < done_ms * 8 / 10 + 200,
        "leader CPU pinned: %" PRIu64 " ms of %" PRIu64, cpu, done_ms);
  CHECK(idle < 500, "leader busy when idle: %" PRIu64 " ms in 2 s", idle);
}

int main(int argc, char **argv) {
  char synodd[PATH_MAX];
  struct cluster c;
  const char *mode = argc > 1 ? argv[1] : "lib";
  setvbuf(stdout, NULL, _IONBF, 0);
  cluster_synodd_or_skip(synodd, sizeof synodd);
  char history[16];
  snprintf(history, sizeof history, "%d", HISTORY);
  cluster_init(&c, 3, synodd);
  if (strcmp(mode, "synodctl") == 0) { /* for key watch's exit 77 */
    c.extra_args[0] = "--keys-history";
    c.extra_args[1] = history;
    c.extra_args[2] = "--keys-value-max-bytes"; /* scenario_value_bound */
    c.extra_args[3] = "100KiB";
  }
  for (int i = 0; i < c.n; i++) {
    cluster_restart(&c, i);
  }
  int leader = cluster_wait_leader(&c, 30000);
  if (strcmp(mode, "expiry") == 0) {
    expiry_main(&c, leader);
  } else if (strcmp(mode, "synodctl") == 0) {
    test_binary("SYNODCTL", "synodctl", synodctl, sizeof synodctl);
    test_tmpdir("keys-ctl", ctl_dir, sizeof ctl_dir);
    ctl_endpoints = c.endpoints;
    scenario_synodctl(&c);
    scenario_value_bound();
    scenario_synodctl_watch();
    scenario_synodctl_watch_behind(&c);
    scenario_synodctl_watch_failover(&c);
    scenario_synodctl_lost(&c);
  } else {
    scenario_basics(&c, leader);
    scenario_create_race(&c);
    scenario_session_bound(&c);
    scenario_gateway_killed(&c);
    scenario_txn_move(&c);
    scenario_list_pages(&c);
    scenario_bad_input(&c);
    scenario_async(&c);
    scenario_failover(&c, leader);
    scenario_bank(&c);
  }
  cluster_stop(&c);
  printf("PASS\n");
  return 0;
}
