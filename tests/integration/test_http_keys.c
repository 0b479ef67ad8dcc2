/* Keys and sessions over HTTP on 3 real synodd processes, with libcurl:
 * put on a follower (forwarded) and read on the others, linearizable and
 * stale; a prefix listed in pages at one revision; deletes of a key and
 * a prefix; a create-only race over every replica that exactly one
 * request wins (the rest 412); compare-and-put on version, mod revision
 * (If-Match), value; a transaction that moves a device from gateway A to
 * gateway B, after which A's stale re-registration fails; a session
 * opened, renewed and used on different replicas, whose bound key goes
 * on DELETE of the session, and on expiry once renewals stop, not
 * before; bad input (bad escapes, keys too long or not UTF-8, a value
 * over the limit, malformed JSON, an unknown session, unknown
 * parameters) answered 4xx with nothing changed; a leader SIGKILL
 * survived by a session renewed on the others, and by a create-only put
 * retried across it. Watches as Server-Sent Events on followers: a key
 * and a prefix, puts and deletes in order with ids and prev values,
 * progress, a resume by Last-Event-ID after closing (no gap, no
 * duplicate), from a revision, a session's end as several deletes at one
 * revision resumed in their middle, ECOMPACTED below --keys-history.
 * Exit 77 (skipped)
 * while synodd has no --http. */
#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "http_client.h"
#include "http_sse.h"

/* synodd --keys-history: the events a watch can start from. */
#define HISTORY 300

static struct cluster c;

/* A transaction of n puts, of the keys PREFIX0, PREFIX1, ...; free t.p. */
static struct buf txn_puts(const char *prefix, int n) {
  struct buf t = {0};
  buf_add(&t, "{\"success\": [", 13);
  for (int i = 0; i < n; i++) {
    char op[80];
    int k = snprintf(op, sizeof op, "%s{\"op\": \"put\", \"key\": \"%s%d\"}",
                     i ? ", " : "", prefix, i);
    buf_add(&t, op, (size_t)k);
  }
  buf_add(&t, "]}", 2);
  return t;
}

/* The value of key on replica i (NULL if 404); free it. */
static char *get_value(int i, const char *key, bool stale) {
  char path[600];
  struct buf b;
  snprintf(path, sizeof path, "/v1/keys/%s%s", key, stale ? "?stale" : "");
  long status = http_do("GET", c.nodes[i].http, path, NULL, NULL, 0, &b);
  CHECK(status == 200 || status == 404, "GET %s: %ld %s", path, status, b.p);
  char *v = NULL;
  if (status == 200) {
    json_t *j = json_of(&b, path);
    v = strdup(jstr(j, "value"));
    json_decref(j);
  }
  free(b.p);
  return v;
}

/* The store's revision as replica i answers it (linearizable). */
static int64_t revision(int i) {
  json_t *j = http_req(&c, "GET", i, "/v1/keys/?prefix&keys_only&limit=1", NULL,
                       NULL, 200);
  int64_t r = jint(j, "revision");
  json_decref(j);
  return r;
}

static int leader_of(void) {
  return cluster_wait_leader(&c, 20000);
}

/* ------------------------------------------------------------ scenarios */

/* Put on a follower, read everywhere; list in pages at one revision;
 * delete a key and a prefix. */
static void scenario_basics(void) {
  int l = leader_of(), f1 = (l + 1) % c.n, f2 = (l + 2) % c.n;
  json_t *j = http_req(&c, "PUT", f1, "/v1/keys/cfg/flag", NULL, "on", 200);
  CHECK(jbool(j, "succeeded"), "put");
  int64_t rev = jint(j, "revision");
  CHECK(jint(json_object_get(j, "kv"), "version") == 1, "version 1");
  json_decref(j);
  /* Linearizable on every replica: the put is seen at once. */
  for (int i = 0; i < c.n; i++) {
    j = http_req(&c, "GET", i, "/v1/keys/cfg/flag", NULL, NULL, 200);
    CHECK(strcmp(jstr(j, "value"), "on") == 0, "value on %s", c.nodes[i].name);
    CHECK(jint(j, "mod_revision") == rev && jint(j, "revision") >= rev,
          "revisions");
    CHECK(jint(j, "session") == 0 && jint(j, "create_revision") == rev,
          "session 0, created at %" PRId64, rev);
    json_decref(j);
  }
  j = http_req(&c, "PUT", f2, "/v1/keys/cfg/flag?prev", NULL, "off", 200);
  CHECK(jint(json_object_get(j, "kv"), "version") == 2, "version 2");
  CHECK(strcmp(jstr(json_object_get(j, "prev"), "value"), "on") == 0, "prev");
  json_decref(j);
  /* A stale read answers from the replica's own state: eventually. */
  uint64_t deadline = test_now_ms() + 10000;
  for (;;) {
    char *v = get_value(f2, "cfg/flag", true);
    bool off = v != NULL && strcmp(v, "off") == 0;
    free(v);
    if (off) {
      break;
    }
    CHECK(test_now_ms() < deadline, "stale read never saw off");
    usleep(10000);
  }
  /* Keys with '/' and escapes: the path after /v1/keys/ is the key. */
  j = http_req(&c, "PUT", l, "/v1/keys/cfg/a%20b%2Fc", NULL, "x", 200);
  CHECK(strcmp(jstr(json_object_get(j, "kv"), "key"), "cfg/a b/c") == 0,
        "decoded key");
  json_decref(j);
  for (int k = 0; k < 5; k++) {
    char path[64];
    snprintf(path, sizeof path, "/v1/keys/list/k%d", k);
    json_decref(http_req(&c, "PUT", k % c.n, path, NULL, "v", 200));
  }
  /* Pages of 2 at one revision each, following next_after. */
  char after[64] = "";
  int seen = 0;
  int64_t listed_at = 0;
  for (int page = 0;; page++) {
    char path[160];
    snprintf(path, sizeof path, "/v1/keys/list/?prefix&limit=2%s%s",
             after[0] ? "&after=" : "", after);
    j = http_req(&c, "GET", (l + page) % c.n, path, NULL, NULL, 200);
    json_t *kvs = json_object_get(j, "kvs");
    for (size_t i = 0; i < json_array_size(kvs); i++) {
      char want[32];
      snprintf(want, sizeof want, "list/k%d", seen++);
      CHECK(strcmp(jstr(json_array_get(kvs, i), "key"), want) == 0,
            "page %d item %zu is not %s", page, i, want);
    }
    CHECK(jint(j, "revision") > 0, "a list answers its revision");
    listed_at = listed_at ? listed_at : jint(j, "revision");
    if (!jbool(j, "more")) {
      json_decref(j);
      break;
    }
    snprintf(after, sizeof after, "%s", jstr(j, "next_after"));
    json_decref(j);
  }
  CHECK(seen == 5, "listed %d of 5", seen);
  j = http_req(&c, "GET", f1, "/v1/keys/list/?prefix&keys_only", NULL, NULL,
               200);
  CHECK(json_object_get(json_array_get(json_object_get(j, "kvs"), 0),
                        "value") == NULL,
        "keys_only has no values");
  json_decref(j);
  j = http_req(&c, "DELETE", f1, "/v1/keys/list/k0", NULL, NULL, 200);
  CHECK(jint(j, "deleted") == 1, "one deleted");
  json_decref(j);
  j = http_req(&c, "DELETE", f2, "/v1/keys/list/?prefix", NULL, NULL, 200);
  CHECK(jint(j, "deleted") == 4, "four deleted by prefix");
  json_decref(j);
  json_decref(http_req(&c, "GET", l, "/v1/keys/list/k3", NULL, NULL, 404));
  /* The keys as they were when listed: &revision=R. */
  char path[128];
  snprintf(path, sizeof path,
           "/v1/keys/list/?prefix&keys_only&revision=%" PRId64, listed_at);
  j = http_req(&c, "GET", f2, path, NULL, NULL, 200);
  CHECK(json_array_size(json_object_get(j, "kvs")) == 5 &&
            jint(j, "revision") == listed_at,
        "%zu keys at revision %" PRId64,
        json_array_size(json_object_get(j, "kvs")), listed_at);
  json_decref(j);
  json_decref(
      http_req(&c, "GET", f2, "/v1/keys/list/k1?revision=3", NULL, NULL, 400));
  j = http_req(&c, "DELETE", l, "/v1/keys/list/k3", NULL, NULL, 200);
  CHECK(jint(j, "deleted") == 0, "a delete of nothing deletes nothing");
  json_decref(j);
  printf("ok basics: put via a follower read linearizably everywhere, pages "
         "of a prefix, deletes\n");
}

/* Create-only puts of one key from 12 clients at once over the three
 * replicas: exactly one wins, the others get 412 with the winner's
 * version. Then compare-and-put on version, If-Match and value. */
static void scenario_compares(void) {
  enum { N = 12 };
  CURLM *m = curl_multi_init();
  CURL *es[N];
  struct buf bs[N];
  char vals[N][16];
  struct curl_slist *hs = curl_slist_append(NULL, "Expect:");
  for (int i = 0; i < N; i++) {
    snprintf(vals[i], sizeof vals[i], "owner-%d", i);
    es[i] = http_easy("PUT", c.nodes[i % c.n].http,
                      "/v1/keys/race/lock?if_version=0", hs, vals[i],
                      strlen(vals[i]), &bs[i]);
    curl_multi_add_handle(m, es[i]);
  }
  int running = 1;
  while (running) {
    curl_multi_perform(m, &running);
    curl_multi_poll(m, NULL, 0, 100, NULL);
  }
  int won = -1, lost = 0;
  for (int i = 0; i < N; i++) {
    long status = 0;
    curl_easy_getinfo(es[i], CURLINFO_RESPONSE_CODE, &status);
    CHECK(status == 200 || status == 412, "racer %d: %ld %s", i, status,
          bs[i].p);
    if (status == 200) {
      CHECK(won < 0, "racers %d and %d both created the key", won, i);
      won = i;
    } else {
      json_t *j = json_of(&bs[i], "412");
      CHECK(strcmp(jstr(j, "error"), "compare_failed") == 0, "412 error");
      CHECK(!jbool(j, "succeeded"), "412 succeeded false");
      json_decref(j);
      lost++;
    }
    curl_multi_remove_handle(m, es[i]);
    curl_easy_cleanup(es[i]);
    free(bs[i].p);
  }
  curl_multi_cleanup(m);
  curl_slist_free_all(hs);
  CHECK(won >= 0 && lost == N - 1, "won %d, lost %d", won, lost);
  char *v = get_value(0, "race/lock", false);
  CHECK(v != NULL && strcmp(v, vals[won]) == 0, "the winner's value");
  free(v);
  /* Compare-and-put on version, If-Match (the ETag) and value. */
  json_decref(http_req(&c, "PUT", 1, "/v1/keys/race/lock?if_version=2", NULL,
                       "x", 412));
  json_t *j = http_req(&c, "PUT", 2, "/v1/keys/race/lock?if_version=1", NULL,
                       "v2", 200);
  int64_t mod = jint(json_object_get(j, "kv"), "mod_revision");
  json_decref(j);
  char header[64];
  snprintf(header, sizeof header, "If-Match: \"%" PRId64 "\"", mod - 1);
  json_decref(http_req(&c, "PUT", 0, "/v1/keys/race/lock", header, "v3", 412));
  snprintf(header, sizeof header, "If-Match: \"%" PRId64 "\"", mod);
  json_decref(http_req(&c, "PUT", 0, "/v1/keys/race/lock", header, "v3", 200));
  json_decref(http_req(&c, "PUT", 1, "/v1/keys/race/lock?if_value=v2", NULL,
                       "v4", 412));
  json_decref(http_req(&c, "PUT", 1, "/v1/keys/race/lock?if_value=v3", NULL,
                       "v4", 200));
  json_decref(http_req(&c, "PUT", 1, "/v1/keys/race/lock", "If-None-Match: *",
                       "v", 412));
  json_decref(http_req(&c, "DELETE", 2, "/v1/keys/race/lock?if_value=v3", NULL,
                       NULL, 412));
  json_decref(http_req(&c, "DELETE", 2, "/v1/keys/race/lock?if_value=v4", NULL,
                       NULL, 200));
  printf("ok compares: 1 of %d create-only racers won, %d got 412; "
         "version, If-Match, value compares\n",
         N, lost);
}

static int64_t session_open(int i, const char *ttl) {
  char path[64];
  snprintf(path, sizeof path, "/v1/sessions?ttl=%s", ttl);
  json_t *j = http_req(&c, "POST", i, path, NULL, NULL, 200);
  int64_t id = jint(j, "id");
  CHECK(id > 0 && jint(j, "ttl_ms") > 0, "session id and ttl");
  json_decref(j);
  return id;
}

/* The device registry: gateways A and B hold sessions; device 42 moves
 * from A to B in one transaction; A's stale registration fails. */
static void scenario_txn_move(void) {
  int l = leader_of();
  int64_t a = session_open(l, "30s"), b = session_open((l + 1) % c.n, "30s");
  char path[128], body[1024];
  snprintf(path, sizeof path, "/v1/keys/devices/42?session=%" PRId64, a);
  json_t *j =
      http_req(&c, "PUT", (l + 2) % c.n, path, "If-None-Match: *", "gw-a", 200);
  CHECK(jint(json_object_get(j, "kv"), "session") == a, "bound to A");
  json_decref(j);
  snprintf(body, sizeof body,
           "{\"compares\": [{\"key\": \"devices/42\", \"value\": \"gw-a\"}],"
           " \"success\": [{\"op\": \"put\", \"key\": \"devices/42\","
           " \"value\": \"gw-b\", \"session\": %" PRId64 ", \"prev\": true},"
           " {\"op\": \"put\", \"key\": \"moves/42\", \"value\": \"a->b\"}],"
           " \"failure\": [{\"op\": \"get\", \"key\": \"devices/42\"}]}",
           b);
  j = http_req(&c, "POST", (l + 1) % c.n, "/v1/txn", NULL, body, 200);
  CHECK(jbool(j, "succeeded"), "the move happened");
  json_t *r0 = json_array_get(json_object_get(j, "results"), 0);
  CHECK(strcmp(jstr(json_object_get(r0, "prev"), "value"), "gw-a") == 0,
        "prev gw-a");
  CHECK(jint(json_object_get(r0, "kv"), "session") == b, "bound to B");
  json_decref(j);
  /* A, stale, tries to re-register as if it still held the device. */
  snprintf(body, sizeof body,
           "{\"compares\": [{\"key\": \"devices/42\", \"value\": \"gw-a\"}],"
           " \"success\": [{\"op\": \"put\", \"key\": \"devices/42\","
           " \"value\": \"gw-a\", \"session\": %" PRId64 "}],"
           " \"failure\": [{\"op\": \"get\", \"key\": \"devices/42\"}]}",
           a);
  j = http_req(&c, "POST", l, "/v1/txn", NULL, body, 200);
  CHECK(!jbool(j, "succeeded"), "a stale gateway's move failed");
  json_t *g =
      json_object_get(json_array_get(json_object_get(j, "results"), 0), "kv");
  CHECK(strcmp(jstr(g, "value"), "gw-b") == 0, "the failure branch's get");
  json_decref(j);
  /* Closing A leaves the device with B. */
  snprintf(path, sizeof path, "/v1/sessions/%" PRId64, a);
  json_decref(http_req(&c, "DELETE", (l + 2) % c.n, path, NULL, NULL, 200));
  char *v = get_value(l, "devices/42", false);
  CHECK(v != NULL && strcmp(v, "gw-b") == 0, "still with B");
  free(v);
  snprintf(path, sizeof path, "/v1/sessions/%" PRId64, b);
  json_decref(http_req(&c, "DELETE", l, path, NULL, NULL, 200));
  printf("ok txn: device 42 moved from A to B at once; A's stale write "
         "failed\n");
}

/* A session opened on one replica, renewed on the others, bound keys
 * put through a third: they stay while it is renewed, and go when it is
 * closed, or expire once renewals stop (TTL 2 s), not before. */
static void scenario_sessions(void) {
  int l = leader_of(), f1 = (l + 1) % c.n, f2 = (l + 2) % c.n;
  char path[128];
  int64_t s = session_open(f1, "10s");
  snprintf(path, sizeof path, "/v1/keys/gw/1/dev/%d?session=%" PRId64, 1, s);
  json_decref(http_req(&c, "PUT", f2, path, NULL, "gw-1", 200));
  snprintf(path, sizeof path, "/v1/sessions/%" PRId64, s);
  json_t *j = http_req(&c, "GET", f1, path, NULL, NULL, 200);
  CHECK(jint(j, "ttl_ms") == 10000, "ttl 10 s");
  json_decref(j);
  json_decref(http_req(&c, "DELETE", l, path, NULL, NULL, 200));
  char *v = get_value(f2, "gw/1/dev/1", false);
  CHECK(v == NULL, "the bound key went with its session's DELETE");
  json_decref(
      http_req(&c, "PUT", f2, path, NULL, NULL, 404)); /* renew: ended */
  /* Expiry: renewed on every replica in turn for 4 s (twice the TTL),
   * then left alone. */
  int64_t e = session_open(l, "2s");
  snprintf(path, sizeof path, "/v1/keys/gw/2/dev/1?session=%" PRId64, e);
  json_decref(http_req(&c, "PUT", f1, path, NULL, "gw-2", 200));
  snprintf(path, sizeof path, "/v1/sessions/%" PRId64, e);
  uint64_t t0 = test_now_ms(), last = 0;
  for (int k = 0; test_now_ms() - t0 < 4000; k++) {
    j = http_req(&c, "PUT", k % c.n, path, NULL, NULL, 200);
    CHECK(jint(j, "ttl_ms") == 2000, "renewal answers the ttl");
    json_decref(j);
    last = test_now_ms();
    v = get_value(k % c.n, "gw/2/dev/1", false);
    CHECK(v != NULL, "the key went while its session was renewed");
    free(v);
    usleep(500 * 1000);
  }
  for (;;) {
    v = get_value(l, "gw/2/dev/1", false);
    uint64_t now = test_now_ms();
    if (v == NULL) {
      /* Cluster time runs on the leader's clock: not before the TTL
       * since the last renewal was answered, minus the request's trip. */
      CHECK(now - last >= 1500, "gone %" PRIu64 " ms after the last renewal",
            now - last);
      printf("ok sessions: the key went at DELETE, and %" PRIu64
             " ms after the last renewal of a 2 s session\n",
             now - last);
      break;
    }
    free(v);
    CHECK(now - last < 6000, "still there %" PRIu64 " ms after renewals",
          now - last);
    usleep(50 * 1000);
  }
  json_decref(http_req(&c, "PUT", f2, path, NULL, NULL, 404));
}

/* --------------------------------------------------------- SSE watches */

/* The k-th event (from 0) that is not a progress. */
static struct sse_ev *sse_ev(struct sse *s, size_t k) {
  for (size_t i = 0; i < s->n; i++) {
    if (strcmp(s->evs[i].type, "progress") != 0 && k-- == 0) {
      return &s->evs[i];
    }
  }
  CHECK(0, "no event %zu", k);
  return NULL;
}

/* Checks event k of s: its type, its id ("R.E", or "R" for the rest of
 * revision R), and for a put or a
 * delete its key, value (NULL: none) and prev value (NULL: no prev). */
static void sse_check(struct sse *s, size_t k, const char *type,
                      int64_t revision, const char *key, const char *value,
                      const char *prev) {
  struct sse_ev *ev = sse_ev(s, k);
  CHECK(strcmp(ev->type, type) == 0, "event %zu: %s, want %s", k, ev->type,
        type);
  char want_id[32];
  int n = snprintf(want_id, sizeof want_id, "%" PRId64, revision);
  CHECK(strncmp(ev->id, want_id, (size_t)n) == 0 &&
            (ev->id[n] == '\0' || ev->id[n] == '.'),
        "event %zu: id %s, want %s or %s.*", k, ev->id, want_id, want_id);
  CHECK(ev->data != NULL, "event %zu: no data", k);
  CHECK(strcmp(jstr(ev->data, "key"), key) == 0, "event %zu: key %s, want %s",
        k, jstr(ev->data, "key"), key);
  CHECK(jint(ev->data, "revision") == revision, "event %zu: revision", k);
  if (value != NULL) {
    CHECK(strcmp(jstr(ev->data, "value"), value) == 0,
          "event %zu: value %s, want %s", k, jstr(ev->data, "value"), value);
    CHECK(jint(ev->data, "mod_revision") == revision, "event %zu: mod", k);
  } else {
    CHECK(json_object_get(ev->data, "value") == NULL, "event %zu: a value", k);
  }
  json_t *p = json_object_get(ev->data, "prev");
  if (prev != NULL) {
    CHECK(p != NULL && strcmp(jstr(p, "value"), prev) == 0,
          "event %zu: prev, want %s", k, prev);
  } else {
    CHECK(p == NULL, "event %zu: a prev not asked for", k);
  }
}

/* The revision a write answered. */
static int64_t write_rev(const char *method, int i, const char *path,
                         const char *body) {
  json_t *j = http_req(&c, method, i, path, NULL, body, 200);
  int64_t r = jint(j, "revision");
  json_decref(j);
  return r;
}

/* A key and a prefix watched over SSE on two followers while a third
 * replica writes: puts and deletes in order with their ids and prev
 * values; a resume from an event's id after the connection closed; a
 * watch from a revision; a value that is not UTF-8. */
static void scenario_watch(void) {
  int l = leader_of(), f1 = (l + 1) % c.n, f2 = (l + 2) % c.n;
  struct sse k, p;
  sse_open(&k, &c, f1, "/v1/keys/w/a?watch", NULL);
  sse_open(&p, &c, f2, "/v1/keys/w/?prefix&watch&prev", NULL);
  /* Each opens with its position, the revision it watches after. */
  CHECK(sse_wait(&k, 1, true, 5000) >= 1 && sse_wait(&p, 1, true, 5000) >= 1,
        "no opening progress");
  CHECK(strcmp(k.evs[0].type, "progress") == 0 && k.evs[0].id[0] != '\0',
        "the stream opens with its position");
  int64_t r1 = write_rev("PUT", l, "/v1/keys/w/a", "1");
  int64_t r2 = write_rev("PUT", f1, "/v1/keys/w/b", "x");
  int64_t r3 = write_rev("PUT", f2, "/v1/keys/w/a", "2");
  int64_t r4 = write_rev("DELETE", l, "/v1/keys/w/a", NULL);
  int64_t r5 = write_rev("PUT", l, "/v1/keys/other", "o"); /* not matched */
  CHECK(sse_wait(&k, 3, false, 10000) == 3, "key watch: %zu events",
        sse_count(&k, false));
  sse_check(&k, 0, "put", r1, "w/a", "1", NULL);
  sse_check(&k, 1, "put", r3, "w/a", "2", NULL);
  sse_check(&k, 2, "delete", r4, "w/a", NULL, NULL);
  CHECK(sse_wait(&p, 4, false, 10000) == 4, "prefix watch: %zu events",
        sse_count(&p, false));
  sse_check(&p, 0, "put", r1, "w/a", "1", NULL);
  sse_check(&p, 1, "put", r2, "w/b", "x", NULL);
  sse_check(&p, 2, "put", r3, "w/a", "2", "1");
  sse_check(&p, 3, "delete", r4, "w/a", NULL, "2");
  /* The key watch moves past r5 with a progress (about once a second):
   * its id, and nothing else. */
  uint64_t deadline = test_now_ms() + 5000;
  while (strtoll(k.evs[k.n - 1].id, NULL, 10) < r5) {
    CHECK(test_now_ms() < deadline, "no progress past %" PRId64 ": last id %s",
          r5, k.evs[k.n - 1].id);
    sse_wait(&k, k.n + 1, true, 1000);
  }
  CHECK(strcmp(k.evs[k.n - 1].type, "progress") == 0 &&
            k.evs[k.n - 1].data == NULL,
        "a progress carries only its id");
  char resume[32], quiet[32];
  snprintf(resume, sizeof resume, "%s", sse_ev(&p, 1)->id);
  snprintf(quiet, sizeof quiet, "%s", k.evs[k.n - 1].id);
  sse_close(&k);
  sse_close(&p);

  /* Resume the key watch from its progress: it opens there, and the next
   * put is its first event. */
  sse_open(&k, &c, f2, "/v1/keys/w/a?watch", quiet);
  CHECK(sse_wait(&k, 1, true, 5000) >= 1 &&
            strcmp(k.evs[0].type, "progress") == 0 &&
            strcmp(k.evs[0].id, quiet) == 0,
        "resumed from progress %s: opens at %s", quiet,
        k.n ? k.evs[0].id : "nothing");
  int64_t r6 = write_rev("PUT", l, "/v1/keys/w/a", "3");
  CHECK(sse_wait(&k, 1, false, 10000) == 1, "after the progress: %zu events",
        sse_count(&k, false));
  sse_check(&k, 0, "put", r6, "w/a", "3", NULL);
  sse_close(&k);

  /* Resume after the second event on another replica: the third is
   * next, nothing repeated, nothing skipped. */
  sse_open(&p, &c, l, "/v1/keys/w/?prefix&watch&prev", resume);
  CHECK(sse_wait(&p, 3, false, 10000) == 3, "resumed: %zu events",
        sse_count(&p, false));
  sse_check(&p, 0, "put", r3, "w/a", "2", "1");
  sse_check(&p, 1, "delete", r4, "w/a", NULL, "2");
  sse_check(&p, 2, "put", r6, "w/a", "3", NULL);
  sse_close(&p);

  /* From a revision, without prev. */
  char path[128];
  snprintf(path, sizeof path, "/v1/keys/w/a?watch&from=%" PRId64, r3);
  sse_open(&k, &c, f2, path, NULL);
  CHECK(sse_wait(&k, 3, false, 10000) == 3, "from r3: %zu events",
        sse_count(&k, false));
  sse_check(&k, 0, "put", r3, "w/a", "2", NULL);
  sse_check(&k, 1, "delete", r4, "w/a", NULL, NULL);
  sse_check(&k, 2, "put", r6, "w/a", "3", NULL);
  CHECK(strcmp(k.evs[0].type, "progress") == 0 &&
            strtoll(k.evs[0].id, NULL, 10) == r3 - 1 &&
            strchr(k.evs[0].id, '.') == NULL,
        "the stream opens after revision r3 - 1: %s", k.evs[0].id);
  sse_close(&k);

  /* A value that is not UTF-8 comes base64-encoded. */
  int64_t rb;
  {
    json_t *j = http_req(&c, "POST", l, "/v1/txn", NULL,
                         "{\"success\": [{\"op\": \"put\", \"key\": \"w/bin\", "
                         "\"value_base64\": \"//4A\"}]}",
                         200);
    rb = jint(j, "revision");
    json_decref(j);
  }
  snprintf(path, sizeof path, "/v1/keys/w/bin?watch&from=%" PRId64, rb);
  sse_open(&k, &c, f1, path, NULL);
  CHECK(sse_wait(&k, 1, false, 10000) == 1, "binary value: no event");
  json_t *d = sse_ev(&k, 0)->data;
  CHECK(strcmp(jstr(d, "value"), "//4A") == 0 &&
            strcmp(jstr(d, "encoding"), "base64") == 0,
        "a binary value as base64");
  sse_close(&k);

  /* A key with a line break: the opening comment stays one line, and the
   * event's JSON escapes it. */
  sse_open(&k, &c, f2, "/v1/keys/w/x%0Ay?watch", NULL);
  int64_t rl = write_rev("PUT", l, "/v1/keys/w/x%0Ay", "v");
  CHECK(sse_wait(&k, 1, false, 10000) == 1, "key with LF: no event");
  sse_check(&k, 0, "put", rl, "w/x\ny", "v", NULL);
  CHECK(strcmp(k.evs[0].type, "progress") == 0, "opening: %s", k.evs[0].type);
  sse_close(&k);
  printf("ok watch: a key and a prefix over SSE on followers, puts and "
         "deletes in order with ids and prev, progress, resumed by "
         "Last-Event-ID on another replica (after an event, after a "
         "progress), from a revision, base64\n");
}

/* A session's end deletes its keys at one revision: one event each,
 * with distinct ids, and a resume in the middle of them neither repeats
 * nor skips one. */
static void scenario_watch_session_end(void) {
  int l = leader_of(), f = (l + 1) % c.n;
  int64_t s = session_open(f, "10s");
  char path[128];
  for (int i = 0; i < 5; i++) {
    snprintf(path, sizeof path, "/v1/keys/sess/k%d?session=%" PRId64, i, s);
    json_decref(http_req(&c, "PUT", l, path, NULL, "gw", 200));
  }
  snprintf(path, sizeof path, "/v1/sessions/%" PRId64, s);
  json_decref(http_req(&c, "DELETE", f, path, NULL, NULL, 200));
  int64_t r = revision(l);
  struct sse w;
  snprintf(path, sizeof path, "/v1/keys/sess/?prefix&watch&prev&from=%" PRId64,
           r);
  sse_open(&w, &c, f, path, NULL);
  CHECK(sse_wait(&w, 5, false, 10000) == 5, "session end: %zu events",
        sse_count(&w, false));
  char ids[5][32];
  for (int i = 0; i < 5; i++) {
    char key[16];
    snprintf(key, sizeof key, "sess/k%d", i);
    sse_check(&w, (size_t)i, "delete", r, key, NULL, "gw");
    snprintf(ids[i], sizeof ids[i], "%s", sse_ev(&w, (size_t)i)->id);
    CHECK(i == 0 || strcmp(ids[i], ids[i - 1]) != 0, "distinct ids: %s",
          ids[i]);
  }
  sse_close(&w);
  /* Resume after the second delete, on another replica. */
  sse_open(&w, &c, l, "/v1/keys/sess/?prefix&watch", ids[1]);
  CHECK(sse_wait(&w, 4, false, 3000) == 3, "resumed in the revision: %zu",
        sse_count(&w, false));
  for (int i = 0; i < 3; i++) {
    CHECK(strcmp(sse_ev(&w, (size_t)i)->id, ids[i + 2]) == 0,
          "resumed event %d: %s, want %s", i, sse_ev(&w, (size_t)i)->id,
          ids[i + 2]);
  }
  sse_close(&w);
  printf("ok watch session end: 5 deletes at revision %" PRId64
         " (%s..%s), resumed after %s with the other 3\n",
         r, ids[0], ids[4], ids[1]);
}

/* A watch from below the history (synodd --keys-history HISTORY): the
 * stream opens and says SYNOD_ECOMPACTED with the oldest revision kept
 * in an `event: error`, then ends; a watch from there works. */
static void scenario_watch_compacted(void) {
  int l = leader_of(), f = (l + 1) % c.n;
  for (int k = 0; k * 64 <= HISTORY; k++) {
    struct buf t = txn_puts("h/", 64);
    json_decref(http_req(&c, "POST", l, "/v1/txn", NULL, t.p, 200));
    free(t.p);
  }
  /* A watch from a revision starts at once on what its replica has
   * applied: a linearizable read through f first, so that f has applied
   * the puts and dropped revision 1 from its history too (without it, a
   * follower still behind delivered revision 1: a CI run). */
  json_decref(http_req(&c, "GET", f, "/v1/keys/h/?prefix&keys_only&limit=1",
                       NULL, NULL, 200));
  struct sse w;
  sse_open(&w, &c, f, "/v1/keys/h/?prefix&watch&from=1", NULL);
  sse_wait(&w, 1, false, 10000);
  CHECK(w.n >= 1, "no event");
  struct sse_ev *ev = sse_ev(&w, 0);
  CHECK(strcmp(ev->type, "error") == 0, "an error event, not %s", ev->type);
  CHECK(strcmp(jstr(ev->data, "error"), "SYNOD_ECOMPACTED") == 0, "%s",
        jstr(ev->data, "error"));
  int64_t first = jint(ev->data, "first_available");
  CHECK(first > 1, "first_available %" PRId64, first);
  sse_wait(&w, 2, false, 5000);
  CHECK(w.done, "the stream ends after the error");
  sse_close(&w);
  char path[128];
  snprintf(path, sizeof path, "/v1/keys/h/?prefix&watch&from=%" PRId64, first);
  sse_open(&w, &c, f, path, NULL);
  CHECK(sse_wait(&w, 1, false, 10000) >= 1 &&
            strcmp(sse_ev(&w, 0)->type, "put") == 0 &&
            strtoll(sse_ev(&w, 0)->id, NULL, 10) == first,
        "a watch from first_available delivers from it: %zu events", w.n);
  sse_close(&w);
  printf("ok watch compacted: from 1 below a history of %d events: "
         "event: error SYNOD_ECOMPACTED, first_available %" PRId64 "\n",
         HISTORY, first);
}

/* An event that is the whole of its revision has the id "R", so a
 * reconnect with it resumes at R + 1: after R alone was evicted from the
 * history (exactly HISTORY newer events: R + 1 is kept), the watch goes
 * on. (A review found the id "R.1", and the resume asking for R again:
 * SYNOD_ECOMPACTED although nothing was missed.) */
static void scenario_watch_resume_after_eviction(void) {
  int l = leader_of(), f = (l + 1) % c.n;
  struct sse w;
  sse_open(&w, &c, f, "/v1/keys/ev/a?watch", NULL);
  CHECK(sse_wait(&w, 1, true, 5000) >= 1, "no opening progress");
  int64_t r = write_rev("PUT", l, "/v1/keys/ev/a", "1");
  CHECK(sse_wait(&w, 1, false, 10000) == 1, "no put");
  char id[32], want[32];
  snprintf(id, sizeof id, "%s", sse_ev(&w, 0)->id);
  snprintf(want, sizeof want, "%" PRId64, r);
  CHECK(strcmp(id, want) == 0, "the put's id %s, not %s", id, want);
  sse_close(&w);
  for (int k = 0; k < 5; k++) { /* 4 x 64 + 44 = HISTORY newer events */
    struct buf t = txn_puts("evb/", k < 4 ? 64 : HISTORY - 4 * 64);
    json_decref(http_req(&c, "POST", l, "/v1/txn", NULL, t.p, 200));
    free(t.p);
  }
  /* f has applied them (a linearizable read), and dropped R alone. */
  json_decref(http_req(&c, "GET", f, "/v1/keys/evb/?prefix&keys_only&limit=1",
                       NULL, NULL, 200));
  char path[128];
  snprintf(path, sizeof path, "/v1/keys/ev/a?watch&from=%" PRId64, r);
  sse_open(&w, &c, f, path, NULL);
  CHECK(sse_wait(&w, 1, false, 10000) >= 1 &&
            strcmp(sse_ev(&w, 0)->type, "error") == 0 &&
            jint(sse_ev(&w, 0)->data, "first_available") == r + 1,
        "revision %" PRId64 " alone evicted: %s", r,
        w.n ? sse_ev(&w, 0)->type : "nothing");
  sse_close(&w);
  sse_open(&w, &c, f, "/v1/keys/ev/a?watch", id);
  int64_t r2 = write_rev("PUT", l, "/v1/keys/ev/a", "2");
  CHECK(sse_wait(&w, 1, false, 10000) == 1, "resumed from %s: %zu events", id,
        sse_count(&w, false));
  sse_check(&w, 0, "put", r2, "ev/a", "2", NULL);
  sse_close(&w);
  printf("ok watch resume after eviction: id %s, resumed past the evicted "
         "revision\n",
         id);
}

/* Bad input: 4xx, a clear message, and the store's revision unchanged. */
static void scenario_bad_input(void) {
  int l = leader_of(), f = (l + 1) % c.n;
  int64_t rev = revision(l);
  static const struct {
    const char *method, *path, *header, *body;
    long want;
  } cases[] = {
      {"GET", "/v1/keys/a%2", NULL, NULL, 400},
      {"PUT", "/v1/keys/a%zz", NULL, "x", 400},
      {"PUT", "/v1/keys/%ff%fe", NULL, "x", 400}, /* not UTF-8 */
      {"PUT", "/v1/keys/a%00b", NULL, "x", 400},  /* NUL */
      {"PUT", "/v1/keys/", NULL, "x", 400},       /* empty */
      {"PUT", "/v1/keys/a?if_verison=0", NULL, "x", 400},
      {"PUT", "/v1/keys/a?if_version=x", NULL, "x", 400},
      {"PUT", "/v1/keys/a?if_version=1&if_version=2", NULL, "x", 400},
      {"PUT", "/v1/keys/a?if_value=%4", NULL, "x", 400},
      {"PUT", "/v1/keys/a?session=abc", NULL, "x", 400},
      {"PUT", "/v1/keys/a?session=0", NULL, "x", 400},
      {"PUT", "/v1/keys/a?session=999999999", NULL, "x", 404},
      {"PUT", "/v1/keys/a", "If-Match: 12", "x", 400},
      {"PUT", "/v1/keys/a", "If-None-Match: \"3\"", "x", 400},
      {"DELETE", "/v1/keys/?prefix", NULL, NULL, 400},
      {"DELETE", "/v1/keys/a?prefix&if_version=1", NULL, NULL, 400},
      {"GET", "/v1/keys/a?limit=3", NULL, NULL, 400},
      {"GET", "/v1/keys/a?prefix&limit=-1", NULL, NULL, 400},
      {"GET", "/v1/keys/a?stale=maybe", NULL, NULL, 400},
      {"PATCH", "/v1/keys/a", NULL, "x", 405},
      {"GET", "/v1/keys/a?watch&from=0", NULL, NULL, 400},
      {"GET", "/v1/keys/a?watch&from=x", NULL, NULL, 400},
      {"GET", "/v1/keys/a?watch&limit=3", NULL, NULL, 400},
      {"GET", "/v1/keys/?watch", NULL, NULL, 400}, /* no key, no prefix */
      {"GET", "/v1/keys/%ff?watch", NULL, NULL, 400},
      {"GET", "/v1/keys/a?watch", "Last-Event-ID: 3.x", NULL, 400},
      {"GET", "/v1/keys/a?watch", "Last-Event-ID: 0.2", NULL, 400},
      {"POST", "/v1/txn", NULL, "{", 400},
      {"POST", "/v1/txn", NULL, "[]", 400},
      {"POST", "/v1/txn", NULL, "{\"succes\": []}", 400},
      {"POST", "/v1/txn", NULL,
       "{\"success\": [{\"op\": \"put\", \"key\": \"a\", \"value\": 3}]}", 400},
      {"POST", "/v1/txn", NULL,
       "{\"success\": [{\"op\": \"put\", \"key\": \"a\", \"session\": "
       "99999999}]}",
       404},
      {"POST", "/v1/txn", NULL,
       "{\"compares\": [{\"key\": \"a\", \"version\": 1, \"value\": \"x\"}]}",
       400},
      {"POST", "/v1/txn", NULL,
       "{\"success\": [{\"op\": \"put\", \"key\": \"a\"},"
       " {\"op\": \"delete\", \"key\": \"a\"}]}",
       400}, /* one key written twice */
      {"POST", "/v1/sessions?ttl=500ms", NULL, NULL, 400},
      {"POST", "/v1/sessions?ttl=forever", NULL, NULL, 400},
      {"POST", "/v1/sessions", NULL, "{\"ttl\": \"10s\", \"x\": 1}", 400},
      {"PUT", "/v1/sessions/abc", NULL, NULL, 400},
      {"PUT", "/v1/sessions/999999999", NULL, NULL, 404},
      {"DELETE", "/v1/sessions/999999999", NULL, NULL, 404},
      {"GET", "/v1/sessions/999999999", NULL, NULL, 404},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    json_t *j = http_req(&c, cases[i].method, (int)(i % c.n), cases[i].path,
                         cases[i].header, cases[i].body, cases[i].want);
    CHECK(strlen(jstr(j, "message")) > 10, "%s %s: a message", cases[i].method,
          cases[i].path);
    CHECK(strncmp(jstr(j, "error"), "SYNOD_E", 7) == 0, "%s %s: a code",
          cases[i].method, cases[i].path);
    json_decref(j);
  }
  /* A session's ttl or name that is given but bad is a 400 naming it,
   * never the default (ttl 0 included: 1 s to 5 min, as libsynod's
   * SessionOpen is refused outside it; leaving ttl out is the default). */
  char digits70[128], name300[400];
  snprintf(digits70, sizeof digits70, "/v1/sessions?ttl=%070d", 7);
  snprintf(name300, sizeof name300, "/v1/sessions?ttl=5s&name=%0300d", 7);
  json_t *st = http_req(&c, "GET", l, "/v1/status", NULL, NULL, 200);
  int64_t sessions = jint(json_object_get(st, "sessions"), "total");
  json_decref(st);
  static const struct {
    const char *path, *body, *error, *field;
  } bad_open[] = {
      {"/v1/sessions?ttl=%zz", NULL, "SYNOD_EINVAL", "ttl"},
      {"/v1/sessions?ttl=1%", NULL, "SYNOD_EINVAL", "ttl"},
      {NULL, NULL, "SYNOD_EINVAL", "ttl"}, /* digits70 */
      {"/v1/sessions?ttl=0", NULL, "SYNOD_ERANGE", "ttl"},
      {"/v1/sessions?ttl=0s", NULL, "SYNOD_ERANGE", "ttl"},
      {"/v1/sessions?ttl=10m", NULL, "SYNOD_ERANGE", "ttl"},
      {"/v1/sessions?ttl=999ms", NULL, "SYNOD_ERANGE", "ttl"},
      {"/v1/sessions?ttl=+5s", NULL, "SYNOD_EINVAL", "ttl"},
      {"/v1/sessions?ttl=5s&ttl=6s", NULL, "SYNOD_EINVAL", "ttl"},
      {"/v1/sessions?ttl=5s&name=%00x", NULL, "SYNOD_EINVAL", "name"},
      {"/v1/sessions?ttl=5s&name=%zz", NULL, "SYNOD_EINVAL", "name"},
      {"/v1/sessions?ttl=5s&name=", NULL, "SYNOD_EINVAL", "name"},
      {NULL, NULL, "SYNOD_EINVAL", "name"}, /* name300 */
      {"/v1/sessions", "{\"ttl\": 0}", "SYNOD_ERANGE", "ttl"},
      {"/v1/sessions", "{\"ttl\": \"0ms\"}", "SYNOD_ERANGE", "ttl"},
      {"/v1/sessions", "{\"ttl_ms\": 0}", "SYNOD_ERANGE", "ttl"},
      {"/v1/sessions", "{\"ttl_ms\": 300001}", "SYNOD_ERANGE", "ttl"},
      {"/v1/sessions", "{\"name\": \"\"}", "SYNOD_EINVAL", "name"},
      {"/v1/sessions?name=a", "{\"name\": \"b\"}", "SYNOD_EINVAL", "name"},
  };
  for (size_t i = 0; i < sizeof bad_open / sizeof bad_open[0]; i++) {
    const char *p = bad_open[i].path != NULL ? bad_open[i].path
                    : i == 2                 ? digits70
                                             : name300;
    json_t *j =
        http_req(&c, "POST", (int)(i % c.n), p, NULL, bad_open[i].body, 400);
    CHECK(strcmp(jstr(j, "error"), bad_open[i].error) == 0 &&
              strstr(jstr(j, "message"), bad_open[i].field) != NULL,
          "POST %.60s %s: %s %s, want %s naming %s", p,
          bad_open[i].body != NULL ? bad_open[i].body : "", jstr(j, "error"),
          jstr(j, "message"), bad_open[i].error, bad_open[i].field);
    json_decref(j);
  }
  st = http_req(&c, "GET", l, "/v1/status", NULL, NULL, 200);
  CHECK(jint(json_object_get(st, "sessions"), "total") <= sessions,
        "a refused open opened a session: %" PRId64 " then %" PRId64, sessions,
        jint(json_object_get(st, "sessions"), "total"));
  json_decref(st);
  /* A key of 513 bytes, and a value over 64 KiB. */
  char path[700] = "/v1/keys/";
  memset(path + strlen(path), 'k', 513);
  json_decref(http_req(&c, "PUT", f, path, NULL, "x", 400));
  size_t big_len = (64u << 10) + 1;
  char *big = malloc(big_len + 1);
  memset(big, 'v', big_len);
  big[big_len] = '\0';
  json_t *j = http_req(&c, "PUT", f, "/v1/keys/big", NULL, big, 413);
  CHECK(strstr(jstr(j, "message"), "65537") != NULL, "the size in the message");
  json_decref(j);
  free(big);
  /* A transaction over the bound of 64 operations. */
  struct buf t = txn_puts("t/", 65);
  j = http_req(&c, "POST", l, "/v1/txn", NULL, t.p, 409);
  CHECK(strcmp(jstr(j, "error"), "SYNOD_ELIMIT") == 0, "over the bound");
  json_decref(j);
  free(t.p);
  CHECK(revision(l) == rev,
        "bad input changed the store: revision %" PRId64 " then %" PRId64, rev,
        revision(l));
  printf("ok bad input: %zu bad requests answered 4xx, nothing changed\n",
         sizeof cases / sizeof cases[0] + sizeof bad_open / sizeof bad_open[0] +
             3);
}

/* A request to the running replicas in turn until one answers other
 * than "no answer", 503 or 504 (an election, an unknown outcome); the
 * status, and the JSON in *out. */
static long req_retry(const char *method, const char *path, const char *body,
                      json_t **out) {
  uint64_t deadline = test_now_ms() + 20000;
  for (int k = 0;; k++) {
    int i = k % c.n;
    if (c.nodes[i].pid == 0) {
      continue;
    }
    struct buf b;
    long status = http_do(method, c.nodes[i].http, path, NULL, body,
                          body != NULL ? strlen(body) : 0, &b);
    if (status != 0 && status != 503 && status != 504) {
      *out = json_of(&b, path);
      free(b.p);
      return status;
    }
    free(b.p);
    CHECK(test_now_ms() < deadline, "%s %s: no answer in 20 s", method, path);
    usleep(50 * 1000);
  }
}

/* The leader SIGKILLed: a session renewed on the survivors keeps its
 * bound key across the election; a create-only put retried over the
 * failover lands once (412 on a retry whose first attempt applied); the
 * old leader restarted reads it all. */
static void scenario_failover(void) {
  int l = leader_of(), f1 = (l + 1) % c.n, f2 = (l + 2) % c.n;
  char path[128], spath[64];
  int64_t s = session_open(f1, "4s");
  snprintf(path, sizeof path, "/v1/keys/failover/dev?session=%" PRId64, s);
  json_decref(http_req(&c, "PUT", f2, path, NULL, "gw-1", 200));
  snprintf(spath, sizeof spath, "/v1/sessions/%" PRId64, s);
  cluster_signal(&c, l, SIGKILL);
  uint64_t t0 = test_now_ms();
  json_t *j;
  long status;
  /* Renew every second for 6 s (longer than the TTL), across the
   * election. */
  while (test_now_ms() - t0 < 6000) {
    status = req_retry("PUT", spath, NULL, &j);
    CHECK(status == 200, "renewal after the leader died: %ld", status);
    json_decref(j);
    usleep(1000 * 1000);
  }
  status = req_retry("PUT", "/v1/keys/failover/once?if_version=0", "mine", &j);
  CHECK(status == 200 || status == 412, "create-only: %ld", status);
  json_decref(j);
  int nl = leader_of();
  CHECK(nl != l, "a new leader");
  char *v = get_value(nl, "failover/dev", false);
  CHECK(v != NULL && strcmp(v, "gw-1") == 0,
        "the bound key of a renewed session survived the failover");
  free(v);
  cluster_restart(&c, l);
  uint64_t deadline = test_now_ms() + 20000;
  for (;;) { /* linearizable on the restarted replica once it serves */
    struct buf b;
    status = http_do("GET", c.nodes[l].http, "/v1/keys/failover/once", NULL,
                     NULL, 0, &b);
    if (status == 200) {
      j = json_of(&b, "once");
      CHECK(strcmp(jstr(j, "value"), "mine") == 0 && jint(j, "version") == 1,
            "written once");
      json_decref(j);
      free(b.p);
      break;
    }
    free(b.p);
    CHECK(test_now_ms() < deadline, "restarted %s: %ld", c.nodes[l].name,
          status);
    usleep(50 * 1000);
  }
  status = req_retry("DELETE", spath, NULL, &j);
  CHECK(status == 200, "close: %ld", status);
  json_decref(j);
  v = get_value(l, "failover/dev", false);
  CHECK(v == NULL, "the key went with the session");
  printf("ok failover: leader SIGKILLed; the session renewed on the others "
         "kept its key, a create-only put landed once, the old leader read "
         "both\n");
}

int main(void) {
  char synodd[PATH_MAX];
  cluster_synodd_or_skip(synodd, sizeof synodd);
  uint64_t t0 = test_now_ms();
  curl_global_init(CURL_GLOBAL_DEFAULT);
  char history[16];
  snprintf(history, sizeof history, "%d", HISTORY);
  const char *args[] = {"--keys-history", history, NULL};
  cluster_start_args(&c, 3, synodd, args);
  int l = leader_of();
  CHECK(c.nodes[l].http[0] != '\0', "synodd has no --http");
  scenario_basics();
  scenario_watch();
  scenario_watch_session_end();
  scenario_watch_compacted();
  scenario_watch_resume_after_eviction();
  scenario_compares();
  scenario_txn_move();
  scenario_sessions();
  scenario_bad_input();
  scenario_failover();
  cluster_stop(&c);
  curl_global_cleanup();
  printf("ok (%.1f s)\n", (double)(test_now_ms() - t0) / 1000.0);
  return 0;
}
