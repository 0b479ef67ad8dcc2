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
 * retried across it. Exit 77 (skipped)
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

static struct cluster c;

struct buf {
  char *p;
  size_t len;
  size_t cap;
};

static void buf_add(struct buf *b, const void *p, size_t n) {
  if (b->len + n + 1 > b->cap) {
    b->cap = (b->len + n + 1) * 2;
    b->p = realloc(b->p, b->cap);
    CHECK(b->p != NULL, "out of memory");
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static size_t buf_write_cb(char *p, size_t size, size_t n, void *arg) {
  buf_add(arg, p, size * n);
  return size * n;
}

/* An easy handle for one request; out receives the body. */
static CURL *http_easy(const char *method, int i, const char *path,
                       struct curl_slist *hs, const void *body, size_t len,
                       struct buf *out) {
  char url[2048];
  snprintf(url, sizeof url, "http://%s%s", c.nodes[i].http, path);
  CURL *e = curl_easy_init();
  *out = (struct buf){0};
  buf_add(out, "", 0);
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, hs);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, buf_write_cb);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  if (body != NULL) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  }
  return e;
}

/* One request to replica i; the status (0: no answer) and the body. */
static long http_do(const char *method, int i, const char *path,
                    const char *header, const void *body, size_t len,
                    struct buf *out) {
  struct curl_slist *hs = curl_slist_append(NULL, "Expect:");
  if (header != NULL) {
    hs = curl_slist_append(hs, header);
  }
  CURL *e = http_easy(method, i, path, hs, body, len, out);
  long status = 0;
  if (curl_easy_perform(e) == CURLE_OK) {
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  }
  curl_slist_free_all(hs);
  curl_easy_cleanup(e);
  return status;
}

static json_t *json_of(const struct buf *b, const char *what) {
  json_error_t err;
  json_t *j = json_loads(b->p, 0, &err);
  CHECK(j != NULL, "%s: not JSON (%s): %s", what, err.text, b->p);
  return j;
}

/* A request that must answer `want`, and its JSON. */
static json_t *req(const char *method, int i, const char *path,
                   const char *header, const char *body, long want) {
  struct buf b;
  long status = http_do(method, i, path, header, body,
                        body != NULL ? strlen(body) : 0, &b);
  CHECK(status == want, "%s %s on %s: %ld, want %ld: %s", method, path,
        c.nodes[i].name, status, want, b.p);
  json_t *j = json_of(&b, path);
  free(b.p);
  return j;
}

static int64_t jint(json_t *j, const char *key) {
  json_t *v = json_object_get(j, key);
  CHECK(json_is_integer(v), "no integer \"%s\"", key);
  return json_integer_value(v);
}

static const char *jstr(json_t *j, const char *key) {
  json_t *v = json_object_get(j, key);
  CHECK(json_is_string(v), "no string \"%s\"", key);
  return json_string_value(v);
}

static bool jbool(json_t *j, const char *key) {
  json_t *v = json_object_get(j, key);
  CHECK(json_is_boolean(v), "no boolean \"%s\"", key);
  return json_is_true(v);
}

/* The value of key on replica i (NULL if 404); free it. */
static char *get_value(int i, const char *key, bool stale) {
  char path[600];
  struct buf b;
  snprintf(path, sizeof path, "/v1/keys/%s%s", key, stale ? "?stale" : "");
  long status = http_do("GET", i, path, NULL, NULL, 0, &b);
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
  json_t *j =
      req("GET", i, "/v1/keys/?prefix&keys_only&limit=1", NULL, NULL, 200);
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
  json_t *j = req("PUT", f1, "/v1/keys/cfg/flag", NULL, "on", 200);
  CHECK(jbool(j, "succeeded"), "put");
  int64_t rev = jint(j, "revision");
  CHECK(jint(json_object_get(j, "kv"), "version") == 1, "version 1");
  json_decref(j);
  /* Linearizable on every replica: the put is seen at once. */
  for (int i = 0; i < c.n; i++) {
    j = req("GET", i, "/v1/keys/cfg/flag", NULL, NULL, 200);
    CHECK(strcmp(jstr(j, "value"), "on") == 0, "value on %s", c.nodes[i].name);
    CHECK(jint(j, "mod_revision") == rev && jint(j, "revision") >= rev,
          "revisions");
    CHECK(jint(j, "session") == 0 && jint(j, "create_revision") == rev,
          "session 0, created at %" PRId64, rev);
    json_decref(j);
  }
  j = req("PUT", f2, "/v1/keys/cfg/flag?prev", NULL, "off", 200);
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
  j = req("PUT", l, "/v1/keys/cfg/a%20b%2Fc", NULL, "x", 200);
  CHECK(strcmp(jstr(json_object_get(j, "kv"), "key"), "cfg/a b/c") == 0,
        "decoded key");
  json_decref(j);
  for (int k = 0; k < 5; k++) {
    char path[64];
    snprintf(path, sizeof path, "/v1/keys/list/k%d", k);
    json_decref(req("PUT", k % c.n, path, NULL, "v", 200));
  }
  /* Pages of 2 at one revision each, following next_after. */
  char after[64] = "";
  int seen = 0;
  for (int page = 0;; page++) {
    char path[160];
    snprintf(path, sizeof path, "/v1/keys/list/?prefix&limit=2%s%s",
             after[0] ? "&after=" : "", after);
    j = req("GET", (l + page) % c.n, path, NULL, NULL, 200);
    json_t *kvs = json_object_get(j, "kvs");
    for (size_t i = 0; i < json_array_size(kvs); i++) {
      char want[32];
      snprintf(want, sizeof want, "list/k%d", seen++);
      CHECK(strcmp(jstr(json_array_get(kvs, i), "key"), want) == 0,
            "page %d item %zu is not %s", page, i, want);
    }
    CHECK(jint(j, "revision") > 0, "a list answers its revision");
    if (!jbool(j, "more")) {
      json_decref(j);
      break;
    }
    snprintf(after, sizeof after, "%s", jstr(j, "next_after"));
    json_decref(j);
  }
  CHECK(seen == 5, "listed %d of 5", seen);
  j = req("GET", f1, "/v1/keys/list/?prefix&keys_only", NULL, NULL, 200);
  CHECK(json_object_get(json_array_get(json_object_get(j, "kvs"), 0),
                        "value") == NULL,
        "keys_only has no values");
  json_decref(j);
  j = req("DELETE", f1, "/v1/keys/list/k0", NULL, NULL, 200);
  CHECK(jint(j, "deleted") == 1, "one deleted");
  json_decref(j);
  j = req("DELETE", f2, "/v1/keys/list/?prefix", NULL, NULL, 200);
  CHECK(jint(j, "deleted") == 4, "four deleted by prefix");
  json_decref(j);
  json_decref(req("GET", l, "/v1/keys/list/k3", NULL, NULL, 404));
  j = req("DELETE", l, "/v1/keys/list/k3", NULL, NULL, 200);
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
    es[i] = http_easy("PUT", i % c.n, "/v1/keys/race/lock?if_version=0", hs,
                      vals[i], strlen(vals[i]), &bs[i]);
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
  json_decref(req("PUT", 1, "/v1/keys/race/lock?if_version=2", NULL, "x", 412));
  json_t *j = req("PUT", 2, "/v1/keys/race/lock?if_version=1", NULL, "v2", 200);
  int64_t mod = jint(json_object_get(j, "kv"), "mod_revision");
  json_decref(j);
  char header[64];
  snprintf(header, sizeof header, "If-Match: \"%" PRId64 "\"", mod - 1);
  json_decref(req("PUT", 0, "/v1/keys/race/lock", header, "v3", 412));
  snprintf(header, sizeof header, "If-Match: \"%" PRId64 "\"", mod);
  json_decref(req("PUT", 0, "/v1/keys/race/lock", header, "v3", 200));
  json_decref(req("PUT", 1, "/v1/keys/race/lock?if_value=v2", NULL, "v4", 412));
  json_decref(req("PUT", 1, "/v1/keys/race/lock?if_value=v3", NULL, "v4", 200));
  json_decref(
      req("PUT", 1, "/v1/keys/race/lock", "If-None-Match: *", "v", 412));
  json_decref(
      req("DELETE", 2, "/v1/keys/race/lock?if_value=v3", NULL, NULL, 412));
  json_decref(
      req("DELETE", 2, "/v1/keys/race/lock?if_value=v4", NULL, NULL, 200));
  printf("ok compares: 1 of %d create-only racers won, %d got 412; "
         "version, If-Match, value compares\n",
         N, lost);
}

static int64_t session_open(int i, const char *ttl) {
  char path[64];
  snprintf(path, sizeof path, "/v1/sessions?ttl=%s", ttl);
  json_t *j = req("POST", i, path, NULL, NULL, 200);
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
  json_t *j = req("PUT", (l + 2) % c.n, path, "If-None-Match: *", "gw-a", 200);
  CHECK(jint(json_object_get(j, "kv"), "session") == a, "bound to A");
  json_decref(j);
  snprintf(body, sizeof body,
           "{\"compares\": [{\"key\": \"devices/42\", \"value\": \"gw-a\"}],"
           " \"success\": [{\"op\": \"put\", \"key\": \"devices/42\","
           " \"value\": \"gw-b\", \"session\": %" PRId64 ", \"prev\": true},"
           " {\"op\": \"put\", \"key\": \"moves/42\", \"value\": \"a->b\"}],"
           " \"failure\": [{\"op\": \"get\", \"key\": \"devices/42\"}]}",
           b);
  j = req("POST", (l + 1) % c.n, "/v1/txn", NULL, body, 200);
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
  j = req("POST", l, "/v1/txn", NULL, body, 200);
  CHECK(!jbool(j, "succeeded"), "a stale gateway's move failed");
  json_t *g =
      json_object_get(json_array_get(json_object_get(j, "results"), 0), "kv");
  CHECK(strcmp(jstr(g, "value"), "gw-b") == 0, "the failure branch's get");
  json_decref(j);
  /* Closing A leaves the device with B. */
  snprintf(path, sizeof path, "/v1/sessions/%" PRId64, a);
  json_decref(req("DELETE", (l + 2) % c.n, path, NULL, NULL, 200));
  char *v = get_value(l, "devices/42", false);
  CHECK(v != NULL && strcmp(v, "gw-b") == 0, "still with B");
  free(v);
  snprintf(path, sizeof path, "/v1/sessions/%" PRId64, b);
  json_decref(req("DELETE", l, path, NULL, NULL, 200));
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
  json_decref(req("PUT", f2, path, NULL, "gw-1", 200));
  snprintf(path, sizeof path, "/v1/sessions/%" PRId64, s);
  json_t *j = req("GET", f1, path, NULL, NULL, 200);
  CHECK(jint(j, "ttl_ms") == 10000, "ttl 10 s");
  json_decref(j);
  json_decref(req("DELETE", l, path, NULL, NULL, 200));
  char *v = get_value(f2, "gw/1/dev/1", false);
  CHECK(v == NULL, "the bound key went with its session's DELETE");
  json_decref(req("PUT", f2, path, NULL, NULL, 404)); /* renew: ended */
  /* Expiry: renewed on every replica in turn for 4 s (twice the TTL),
   * then left alone. */
  int64_t e = session_open(l, "2s");
  snprintf(path, sizeof path, "/v1/keys/gw/2/dev/1?session=%" PRId64, e);
  json_decref(req("PUT", f1, path, NULL, "gw-2", 200));
  snprintf(path, sizeof path, "/v1/sessions/%" PRId64, e);
  uint64_t t0 = test_now_ms(), last = 0;
  for (int k = 0; test_now_ms() - t0 < 4000; k++) {
    j = req("PUT", k % c.n, path, NULL, NULL, 200);
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
  json_decref(req("PUT", f2, path, NULL, NULL, 404));
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
      {"GET", "/v1/keys/a?watch&from=1", NULL, NULL, 501}, /* not yet */
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
    json_t *j = req(cases[i].method, (int)(i % c.n), cases[i].path,
                    cases[i].header, cases[i].body, cases[i].want);
    CHECK(strlen(jstr(j, "message")) > 10, "%s %s: a message", cases[i].method,
          cases[i].path);
    CHECK(strncmp(jstr(j, "error"), "SYNOD_E", 7) == 0, "%s %s: a code",
          cases[i].method, cases[i].path);
    json_decref(j);
  }
  /* A key of 513 bytes, and a value over 64 KiB. */
  char path[700] = "/v1/keys/";
  memset(path + strlen(path), 'k', 513);
  json_decref(req("PUT", f, path, NULL, "x", 400));
  size_t big_len = (64u << 10) + 1;
  char *big = malloc(big_len + 1);
  memset(big, 'v', big_len);
  big[big_len] = '\0';
  json_t *j = req("PUT", f, "/v1/keys/big", NULL, big, 413);
  CHECK(strstr(jstr(j, "message"), "65537") != NULL, "the size in the message");
  json_decref(j);
  free(big);
  /* A transaction over the bound of 64 operations. */
  struct buf t = {0};
  buf_add(&t, "{\"success\": [", 13);
  for (int i = 0; i < 65; i++) {
    char op[80];
    int n = snprintf(op, sizeof op, "%s{\"op\": \"put\", \"key\": \"t/%d\"}",
                     i ? ", " : "", i);
    buf_add(&t, op, (size_t)n);
  }
  buf_add(&t, "]}", 2);
  j = req("POST", l, "/v1/txn", NULL, t.p, 409);
  CHECK(strcmp(jstr(j, "error"), "SYNOD_ELIMIT") == 0, "over the bound");
  json_decref(j);
  free(t.p);
  CHECK(revision(l) == rev,
        "bad input changed the store: revision %" PRId64 " then %" PRId64, rev,
        revision(l));
  printf("ok bad input: %zu bad requests answered 4xx, nothing changed\n",
         sizeof cases / sizeof cases[0] + 3);
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
    long status = http_do(method, i, path, NULL, body,
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
  json_decref(req("PUT", f2, path, NULL, "gw-1", 200));
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
    status = http_do("GET", l, "/v1/keys/failover/once", NULL, NULL, 0, &b);
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
  char synodd[PATH_MAX], why[256];
  test_binary("SYNODD", "synodd", synodd, sizeof synodd);
  if (!cluster_synodd_ready(synodd, why, sizeof why)) {
    printf("skipped: %s\n", why);
    return SKIP_EXIT;
  }
  uint64_t t0 = test_now_ms();
  curl_global_init(CURL_GLOBAL_DEFAULT);
  cluster_start(&c, 3, synodd);
  int l = leader_of();
  CHECK(c.nodes[l].http[0] != '\0', "synodd has no --http");
  scenario_basics();
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
