/* Groups over HTTP on 3 real synodd processes, with libcurl: members
 * join under HTTP sessions on different replicas and the view (GET
 * /v1/groups/NAME, linearizable and ?stale, and the list) shows them in
 * join order with their data, sessions and join offsets; the group's
 * stream as Server-Sent Events on a follower delivers views (each with
 * the full member list after it), messages to all and to one member in
 * offset order, with ids = offsets; a stream opened at every offset
 * starts from the right view; &member= leaves out what is sent to
 * another member; Last-Event-ID resumes on another replica with no gap
 * and no duplicate; a send with an Idempotency-Key retried is appended
 * once; the group's deletion ends the stream with a clear event; bad
 * input (bad names, an unknown group, bad offsets, a membership of
 * another session) is answered 4xx and changes nothing. Exit 77
 * (skipped) while synodd has no --http. */
#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "http_client.h"
#include "http_sse.h"

static struct cluster c;

static int leader_of(void) {
  return cluster_wait_leader(&c, 20000);
}

/* ------------------------------------------------------------ helpers */

/* Opens an HTTP session on replica i; its id. */
static uint64_t session_open(int i) {
  json_t *j = http_req(&c, "POST", i, "/v1/sessions?ttl=60s", NULL, NULL, 200);
  uint64_t id = (uint64_t)jint(j, "id");
  json_decref(j);
  return id;
}

/* Joins (PUT) or leaves (DELETE) `member` of group g under session s
 * with sequence seq on replica i, expecting `want`; the answer. */
static json_t *membership(const char *method, int i, const char *g,
                          const char *member, uint64_t s, uint64_t seq,
                          const char *data, long want) {
  char path[512];
  snprintf(path, sizeof path,
           "/v1/groups/%s/members/%s?session=%" PRIu64 "&sequence=%" PRIu64, g,
           member, s, seq);
  return http_req(&c, method, i, path, NULL, data, want);
}

/* Sends data to g (to: NULL for every member) on replica i; its offset. */
static uint64_t send_msg(int i, const char *g, const char *to,
                         const char *data) {
  char path[512];
  snprintf(path, sizeof path, "/v1/groups/%s/messages%s%s", g,
           to != NULL ? "?to=" : "", to != NULL ? to : "");
  json_t *j = http_req(&c, "POST", i, path, NULL, data, 200);
  uint64_t off = (uint64_t)jint(j, "offset");
  CHECK(!jbool(j, "duplicate"), "a first send is no duplicate");
  json_decref(j);
  return off;
}

/* The names of a member array, "a,b,c" (JSON null: "?"). */
static void names_of(json_t *members, char *out, size_t cap) {
  size_t i, k = 0;
  json_t *m;
  out[0] = '\0';
  if (json_is_null(members)) {
    snprintf(out, cap, "?");
    return;
  }
  CHECK(json_is_array(members), "members is no array");
  json_array_foreach(members, i, m) {
    k += (size_t)snprintf(out + k, cap - k, "%s%s", i ? "," : "",
                          jstr(m, "name"));
  }
}

static void check_names(json_t *members, const char *want, const char *what) {
  char got[512];
  names_of(members, got, sizeof got);
  CHECK(strcmp(got, want) == 0, "%s: members %s, want %s", what, got, want);
}

/* ----------------------------------------------------------- scenarios */

/* What the scenarios wrote to group "g", in offset order: the type of
 * each item and, for views, the members after it. */
struct expect {
  char type[16];
  char members[128]; /* views */
  char data[32];     /* messages */
  char to[16];
};
static struct expect want[32];
static uint64_t want_n; /* offsets 1..want_n */
static uint64_t sess_a, sess_b, seq_a, seq_b;

static void expect_view(uint64_t off, const char *members) {
  CHECK(off == want_n + 1, "view at offset %" PRIu64 ", want %" PRIu64, off,
        want_n + 1);
  want_n = off;
  snprintf(want[off].type, sizeof want[off].type, "view");
  snprintf(want[off].members, sizeof want[off].members, "%s", members);
}

static void expect_msg(uint64_t off, const char *to, const char *data) {
  CHECK(off == want_n + 1, "message at offset %" PRIu64 ", want %" PRIu64, off,
        want_n + 1);
  want_n = off;
  snprintf(want[off].type, sizeof want[off].type, "message");
  snprintf(want[off].to, sizeof want[off].to, "%s", to != NULL ? to : "");
  snprintf(want[off].data, sizeof want[off].data, "%s", data);
}

/* The members in the view in effect before offset `off`. */
static const char *members_before(uint64_t off) {
  for (uint64_t k = off - 1; k >= 1; k--) {
    if (strcmp(want[k].type, "view") == 0) {
      return want[k].members;
    }
  }
  return "";
}

/* Checks the events of s (from its first item on) against want[] from
 * offset `from` for member `member` (NULL: every item), up to offset
 * `to`: same order, ids = offsets, no gap and no duplicate. */
static void check_stream(struct sse *s, uint64_t from, uint64_t to,
                         const char *member, const char *what) {
  size_t k = 0;
  for (uint64_t off = from; off <= to; off++) {
    const struct expect *e = &want[off];
    if (member != NULL && e->to[0] != '\0' && strcmp(e->to, member) != 0) {
      continue;
    }
    while (k < s->n && (strcmp(s->evs[k].type, "progress") == 0 ||
                        strcmp(s->evs[k].type, "start") == 0)) {
      k++;
    }
    CHECK(k < s->n, "%s: no event for offset %" PRIu64, what, off);
    struct sse_ev *ev = &s->evs[k++];
    char id[32];
    snprintf(id, sizeof id, "%" PRIu64, off);
    CHECK(strcmp(ev->type, e->type) == 0 && strcmp(ev->id, id) == 0,
          "%s: event %s id %s, want %s id %s", what, ev->type, ev->id, e->type,
          id);
    CHECK(jint(ev->data, "offset") == (int64_t)off, "%s: data offset", what);
    if (strcmp(e->type, "view") == 0) {
      check_names(json_object_get(ev->data, "members"), e->members, what);
    } else {
      CHECK(strcmp(jstr(ev->data, "data"), e->data) == 0 &&
                strcmp(jstr(ev->data, "to"), e->to) == 0,
            "%s: message at %" PRIu64 ": %s to '%s'", what, off,
            jstr(ev->data, "data"), jstr(ev->data, "to"));
    }
  }
  for (; k < s->n; k++) {
    CHECK(strcmp(s->evs[k].type, "progress") == 0 ||
              strcmp(s->evs[k].type, "start") == 0,
          "%s: extra event %s id %s", what, s->evs[k].type, s->evs[k].id);
  }
}

/* The events of s that are items (not start or progress). */
static size_t items_of(const struct sse *s) {
  size_t k = 0;
  for (size_t i = 0; i < s->n; i++) {
    k += strcmp(s->evs[i].type, "progress") != 0 &&
         strcmp(s->evs[i].type, "start") != 0;
  }
  return k;
}

static size_t wait_items(struct sse *s, size_t n, uint32_t timeout_ms) {
  uint64_t deadline = test_now_ms() + timeout_ms;
  while (items_of(s) < n && !s->done && test_now_ms() < deadline) {
    int running;
    curl_multi_perform(s->m, &running);
    s->done = running == 0;
    curl_multi_poll(s->m, NULL, 0, 50, NULL);
  }
  return items_of(s);
}

/* Two sessions on two followers join g; the view everywhere. */
static void scenario_view(void) {
  int l = leader_of(), f1 = (l + 1) % c.n, f2 = (l + 2) % c.n;
  sess_a = session_open(f1);
  sess_b = session_open(f2);
  json_t *j =
      membership("PUT", f1, "g", "alice", sess_a, ++seq_a, "a-data", 200);
  expect_view((uint64_t)jint(j, "offset"), "alice");
  CHECK(jint(j, "view_id") == 1, "view 1");
  json_decref(j);
  j = membership("PUT", f2, "g", "bob", sess_b, ++seq_b, "\xff\x01", 200);
  expect_view((uint64_t)jint(j, "offset"), "alice,bob");
  check_names(json_object_get(j, "members"), "alice,bob", "join answer");
  json_decref(j);
  for (int i = 0; i < c.n; i++) {
    for (int stale = 0; stale < 2; stale++) {
      j = http_req(&c, "GET", i, stale ? "/v1/groups/g?stale" : "/v1/groups/g",
                   NULL, NULL, 200);
      if (stale && jint(j, "view_id") != 2) {
        json_decref(j); /* a stale read may lag: the next loop turn */
        continue;
      }
      CHECK(jint(j, "view_id") == 2 && jint(j, "offset") == 2 &&
                jint(j, "member_count") == 2 && jint(j, "next_offset") == 3 &&
                jint(j, "first_offset") == 1,
            "view on %s", c.nodes[i].name);
      CHECK(strcmp(jstr(j, "coordinator"), "alice") == 0, "coordinator");
      CHECK(json_is_null(json_object_get(j, "checkpoint")), "no checkpoint");
      json_t *ms = json_object_get(j, "members");
      check_names(ms, "alice,bob", "view");
      json_t *a = json_array_get(ms, 0), *b = json_array_get(ms, 1);
      CHECK(strcmp(jstr(a, "data"), "a-data") == 0 &&
                json_object_get(a, "encoding") == NULL &&
                jint(a, "session") == (int64_t)sess_a &&
                jint(a, "joined_offset") == 1,
            "alice's entry");
      CHECK(strcmp(jstr(b, "data"), "/wE=") == 0 &&
                strcmp(jstr(b, "encoding"), "base64") == 0 &&
                jint(b, "session") == (int64_t)sess_b &&
                jint(b, "joined_offset") == 2,
            "bob's entry (base64 data)");
      json_decref(j);
    }
  }
  /* The list, in pages. */
  json_decref(membership("PUT", f1, "h", "x", sess_a, ++seq_a, "", 200));
  j = http_req(&c, "GET", l, "/v1/groups?limit=1", NULL, NULL, 200);
  json_t *gs = json_object_get(j, "groups");
  CHECK(json_array_size(gs) == 1 && jbool(j, "more") &&
            strcmp(jstr(json_array_get(gs, 0), "group"), "g") == 0 &&
            jint(json_array_get(gs, 0), "member_count") == 2 &&
            json_object_get(json_array_get(gs, 0), "members") == NULL,
        "first page");
  json_decref(j);
  j = http_req(&c, "GET", f2, "/v1/groups?after=g", NULL, NULL, 200);
  gs = json_object_get(j, "groups");
  CHECK(json_array_size(gs) == 1 && !jbool(j, "more") &&
            strcmp(jstr(json_array_get(gs, 0), "group"), "h") == 0,
        "second page");
  json_decref(j);
  printf("  view: 2 members on every replica, list in pages\n");
}

/* The stream of g on a follower while messages, joins and leaves go in
 * through the others; then streams from every offset, for one member,
 * and resumed. */
static void scenario_stream(void) {
  int l = leader_of(), f1 = (l + 1) % c.n, f2 = (l + 2) % c.n;
  struct sse all, bob;
  sse_open(&all, &c, f1, "/v1/groups/g?watch&from=1", NULL);
  sse_open(&bob, &c, f2, "/v1/groups/g?watch&member=bob&from=1", NULL);
  expect_msg(send_msg(l, "g", NULL, "m1"), NULL, "m1");
  expect_msg(send_msg(f2, "g", "bob", "to-bob"), "bob", "to-bob");
  expect_msg(send_msg(f1, "g", "alice", "to-alice"), "alice", "to-alice");
  json_t *j = membership("PUT", l, "g", "carol", sess_a, ++seq_a, "c", 200);
  expect_view((uint64_t)jint(j, "offset"), "alice,bob,carol");
  json_decref(j);
  j = membership("DELETE", f2, "g", "alice", sess_a, ++seq_a, NULL, 200);
  expect_view((uint64_t)jint(j, "offset"), "bob,carol");
  json_decref(j);
  expect_msg(send_msg(f1, "g", NULL, "m2"), NULL, "m2");
  CHECK(wait_items(&all, want_n, 10000) == want_n,
        "stream: %zu items of %" PRIu64, items_of(&all), want_n);
  check_stream(&all, 1, want_n, NULL, "full stream");
  CHECK(strcmp(all.evs[0].type, "start") == 0, "opens with start");
  check_names(json_object_get(all.evs[0].data, "members"), "", "start at 1");
  CHECK(wait_items(&bob, want_n - 1, 10000) == want_n - 1, "bob: %zu items",
        items_of(&bob));
  check_stream(&bob, 1, want_n, "bob", "bob's stream");
  sse_close(&bob);
  /* A stream from each offset starts from the view before it. */
  for (uint64_t from = 1; from <= want_n + 1; from++) {
    char path[128];
    struct sse s;
    snprintf(path, sizeof path, "/v1/groups/g?watch&from=%" PRIu64, from);
    sse_open(&s, &c, (int)(from % (uint64_t)c.n), path, NULL);
    CHECK(sse_wait(&s, 1, true, 5000) >= 1 &&
              strcmp(s.evs[0].type, "start") == 0,
          "from %" PRIu64 ": no start", from);
    CHECK(jint(s.evs[0].data, "from") == (int64_t)from, "start's from");
    check_names(json_object_get(s.evs[0].data, "members"), members_before(from),
                path);
    CHECK(wait_items(&s, want_n + 1 - from, 10000) == want_n + 1 - from,
          "%s: %zu items", path, items_of(&s));
    check_stream(&s, from, want_n, NULL, path);
    sse_close(&s);
  }
  /* Resume after the 4th item on another replica, while more is sent:
   * no gap, no duplicate. */
  char last[32];
  snprintf(last, sizeof last, "%s", all.evs[4].id); /* evs[0] is start */
  CHECK(strcmp(last, "4") == 0, "the 4th item's id: %s", last);
  sse_close(&all);
  expect_msg(send_msg(l, "g", NULL, "m3"), NULL, "m3");
  sse_open(&all, &c, f2, "/v1/groups/g?watch&from=1", last);
  expect_msg(send_msg(f1, "g", "carol", "m4"), "carol", "m4");
  CHECK(wait_items(&all, want_n - 4, 10000) == want_n - 4, "resumed: %zu",
        items_of(&all));
  check_stream(&all, 5, want_n, NULL, "resumed stream");
  check_names(json_object_get(all.evs[0].data, "members"), members_before(5),
              "resumed start");
  sse_close(&all);
  /* An Idempotency-Key retried: appended once. */
  json_t *a = http_req(&c, "POST", f1, "/v1/groups/g/messages",
                       "Idempotency-Key: k1", "once", 200);
  json_t *b = http_req(&c, "POST", f2, "/v1/groups/g/messages",
                       "Idempotency-Key: k1", "once", 200);
  CHECK(jint(a, "offset") == jint(b, "offset") && !jbool(a, "duplicate") &&
            jbool(b, "duplicate"),
        "a retried send is appended once");
  json_t *q = http_req(&c, "POST", l, "/v1/groups/g/messages?message_id=k1",
                       NULL, "once", 200);
  CHECK(jint(q, "offset") == jint(a, "offset") && jbool(q, "duplicate"),
        "?message_id is the same id");
  expect_msg((uint64_t)jint(a, "offset"), NULL, "once");
  json_decref(a);
  json_decref(b);
  json_decref(q);
  printf("  stream: %" PRIu64 " items in order on every start, for bob, "
         "resumed\n",
         want_n);
}

/* Bad input: 4xx and nothing changes. */
static void scenario_bad_input(void) {
  int l = leader_of(), f1 = (l + 1) % c.n;
  json_t *before = http_req(&c, "GET", l, "/v1/groups/g", NULL, NULL, 200);
  char longname[400], path[600];
  memset(longname, 'x', 300);
  longname[300] = '\0';
  struct {
    const char *method, *path, *header, *body;
    long status;
  } cases[] = {
      {"GET", "/v1/groups/nosuch", NULL, NULL, 404},
      {"GET", "/v1/groups/nosuch?watch", NULL, NULL, 404},
      {"GET", "/v1/groups/g?watch&from=abc", NULL, NULL, 400},
      {"GET", "/v1/groups/g?watch&from=0", NULL, NULL, 400},
      {"GET", "/v1/groups/g?watch&from=100000", NULL, NULL, 400},
      {"GET", "/v1/groups/g?watch", "Last-Event-ID: x1", NULL, 400},
      {"GET", "/v1/groups/g?watch&known=x", NULL, NULL, 400},
      {"GET", "/v1/groups/g?watch&known=%zz", NULL, NULL, 400},
      {"GET", "/v1/groups/g%zz", NULL, NULL, 400},
      {"GET", "/v1/groups/g/other", NULL, NULL, 404},
      {"POST", "/v1/groups/g", NULL, "x", 405},
      {"POST", "/v1/groups//messages", NULL, "x", 400},
      {"POST", "/v1/groups/nosuch/messages", NULL, "x", 404},
      {"POST", "/v1/groups/g/messages?to=nobody", NULL, "x", 404},
      {"POST", "/v1/groups/g/messages?session=1", NULL, "x", 400},
      {"PUT", "/v1/groups/g/members/dave", NULL, "x", 400},
      {"PUT", "/v1/groups/g/members/dave?session=999999&sequence=1", NULL, "x",
       404},
      {"GET", "/v1/groups?limit=x", NULL, NULL, 400},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    json_t *j = http_req(&c, cases[k].method, (int)k % c.n, cases[k].path,
                         cases[k].header, cases[k].body, cases[k].status);
    CHECK(strncmp(jstr(j, "error"), "SYNOD_E", 7) == 0 &&
              strlen(jstr(j, "message")) > 0,
          "%s %s: a clear error", cases[k].method, cases[k].path);
    json_decref(j);
  }
  snprintf(path, sizeof path, "/v1/groups/%s/messages", longname);
  json_decref(http_req(&c, "POST", l, path, NULL, "x", 400));
  /* A query parameter that is given but does not decode (a bad escape,
   * %00, too long, given twice) is a 400 naming it, never read as absent:
   * ?to=%zz would otherwise be a message to every member. */
  char to_long[sizeof longname + 32], in_session[160];
  snprintf(to_long, sizeof to_long, "/v1/groups/g/messages?to=%s", longname);
  snprintf(in_session, sizeof in_session,
           "/v1/groups/g/messages?session=%" PRIu64 "&sequence=%" PRIu64
           "&from=%%zz",
           sess_a, seq_a + 1);
  struct {
    const char *method, *path, *header, *param;
  } undecoded[] = {
      {"POST", "/v1/groups/g/messages?to=%zz", NULL, "to"},
      {"POST", "/v1/groups/g/messages?to=%00", NULL, "to"},
      {"POST", "/v1/groups/g/messages?to=bo%2", NULL, "to"},
      {"POST", to_long, NULL, "to"},
      {"POST", "/v1/groups/g/messages?to=bob&to=carol", NULL, "to"},
      {"POST", in_session, NULL, "from"},
      {"POST", "/v1/groups/g/messages?message_id=id%zz", NULL, "message_id"},
      {"POST", "/v1/groups/g/messages?message_id=m9", "Idempotency-Key: m9",
       "message_id"},
      /* Two message ids: which one would count? */
      {"POST", "/v1/groups/g/messages",
       "Idempotency-Key: m9\nSynod-Message-Id: m10", "given twice"},
      {"POST", "/v1/groups/g/messages", "Idempotency-Key;",
       "message id of 0 bytes"},
      {"POST", "/v1/groups/g/messages",
       "Idempotency-Key: m9\nIdempotency-Key: m9", "given twice"},
      /* A parameter a route does not take is refused, not ignored: ?To=
       * (misspelt) would otherwise send to every member. */
      {"POST", "/v1/groups/g/messages?To=bob", NULL, "'To' is unknown"},
      {"POST", "/v1/groups/g/messages?to=bob&ttl=5", NULL, "'ttl' is unknown"},
      {"GET", "/v1/groups/g?watch&frm=3", NULL, "'frm' is unknown"},
      {"GET", "/v1/groups?limt=5", NULL, "'limt' is unknown"},
      {"GET", "/v1/groups/g?watch&member=%zz", NULL, "member"},
      {"GET", "/v1/groups/g?watch&from=%zz", NULL, "from"},
      {"GET", "/v1/groups/g?watch=%zz", NULL, "watch"},
      {"GET", "/v1/groups/g?watch=maybe", NULL, "watch"},
      {"GET", "/v1/groups/g?stale=%zz", NULL, "stale"},
      {"GET", "/v1/groups?limit=%zz", NULL, "limit"},
      {"GET", "/v1/groups?after=%zz", NULL, "after"},
      {"GET", "/v1/groups?stale=%00", NULL, "stale"},
      /* A limit is digits only, 1 to 100000, the range in the message. */
      {"GET", "/v1/groups?limit=%2B5", NULL, "1 to 100000"},
      {"GET", "/v1/groups?limit=+5", NULL, "1 to 100000"}, /* " 5" */
      {"GET", "/v1/groups?limit=5%20", NULL, "1 to 100000"},
      {"GET", "/v1/groups?limit=-1", NULL, "1 to 100000"},
      {"GET", "/v1/groups?limit=0", NULL, "1 to 100000"},
      {"GET", "/v1/groups?limit=100001", NULL, "1 to 100000"},
      {"GET", "/v1/groups?limit=", NULL, "1 to 100000"},
  };
  for (size_t k = 0; k < sizeof undecoded / sizeof undecoded[0]; k++) {
    json_t *j = http_req(&c, undecoded[k].method, (int)k % c.n,
                         undecoded[k].path, undecoded[k].header, "x", 400);
    CHECK(strcmp(jstr(j, "error"), "SYNOD_EINVAL") == 0 &&
              strstr(jstr(j, "message"), undecoded[k].param) != NULL,
          "%s %.60s: the message names %s: %s", undecoded[k].method,
          undecoded[k].path, undecoded[k].param, jstr(j, "message"));
    json_decref(j);
  }
  snprintf(path, sizeof path,
           "/v1/groups/g/members/%s?session=%" PRIu64 "&sequence=%" PRIu64,
           longname, sess_a, ++seq_a);
  json_decref(http_req(&c, "PUT", f1, path, NULL, "x", 400));
  /* bob is session B's: session A may not make him leave. */
  json_decref(membership("DELETE", l, "g", "bob", sess_a, ++seq_a, NULL, 403));
  /* bob's name is taken. */
  json_decref(membership("PUT", l, "g", "bob", sess_a, ++seq_a, NULL, 409));
  json_t *after = http_req(&c, "GET", f1, "/v1/groups/g", NULL, NULL, 200);
  CHECK(jint(after, "next_offset") == jint(before, "next_offset") &&
            jint(after, "view_id") == jint(before, "view_id"),
        "bad input changed the group");
  json_decref(before);
  json_decref(after);
  printf("  bad input: %zu cases answered 4xx, nothing changed\n",
         sizeof cases / sizeof cases[0] +
             sizeof undecoded / sizeof undecoded[0] + 4);
}

/* The last members leave: the stream ends with a clear event. */
static void scenario_deleted(void) {
  int l = leader_of(), f1 = (l + 1) % c.n;
  json_t *info = http_req(&c, "GET", l, "/v1/groups/g", NULL, NULL, 200);
  int64_t created = jint(info, "created_index");
  json_decref(info);
  CHECK(created > 0, "the group's info has no created_index");
  struct sse s;
  sse_open(&s, &c, f1, "/v1/groups/g?watch", NULL);
  CHECK(sse_wait(&s, 1, true, 5000) >= 1, "start");
  check_names(json_object_get(s.evs[0].data, "members"), "bob,carol",
              "start from now");
  json_decref(
      membership("DELETE", l, "g", "carol", sess_a, ++seq_a, NULL, 200));
  json_decref(membership("DELETE", l, "g", "bob", sess_b, ++seq_b, NULL, 200));
  uint64_t deadline = test_now_ms() + 10000;
  while (!s.done && test_now_ms() < deadline) {
    sse_wait(&s, s.n + 1, true, 1000);
  }
  CHECK(s.done, "the stream did not end");
  struct sse_ev *e = &s.evs[s.n - 1];
  CHECK(strcmp(e->type, "error") == 0 &&
            strcmp(jstr(e->data, "error"), "SYNOD_ENOTFOUND") == 0 &&
            strstr(jstr(e->data, "message"), "deleted") != NULL,
        "the last event: %s", e->type);
  /* Items not yet pushed when the group went (carol's leave, if applied
   * in the same batch) go with it: only the end is certain. */
  sse_close(&s);
  json_decref(http_req(&c, "GET", l, "/v1/groups/g", NULL, NULL, 404));
  printf("  deletion ends the stream with SYNOD_ENOTFOUND\n");

  /* Created again: a stream pinned to the first group (?known=its
   * created_index) that reconnects with Last-Event-ID gets 404, not the
   * new group's items after that offset; pinned to the new one it reads. */
  json_decref(membership("PUT", l, "g", "dora", sess_a, ++seq_a, "d", 200));
  info = http_req(&c, "GET", l, "/v1/groups/g", NULL, NULL, 200);
  int64_t again = jint(info, "created_index");
  json_decref(info);
  CHECK(again > created, "created again at %" PRId64 ", first at %" PRId64,
        again, created);
  char path[96], last[48];
  snprintf(path, sizeof path, "/v1/groups/g?watch&known=%" PRId64, created);
  snprintf(last, sizeof last, "Last-Event-ID: 1");
  json_t *gone = http_req(&c, "GET", f1, path, last, NULL, 404);
  CHECK(strstr(jstr(gone, "message"), "created again") != NULL,
        "pinned to the first group: %s", jstr(gone, "message"));
  json_decref(gone);
  snprintf(path, sizeof path, "/v1/groups/g?watch&from=1&known=%" PRId64,
           again);
  sse_open(&s, &c, f1, path, NULL);
  CHECK(sse_wait(&s, 1, true, 5000) >= 1 && strcmp(s.evs[0].type, "start") == 0,
        "the new group, pinned: no start");
  sse_close(&s);
  json_decref(membership("DELETE", l, "g", "dora", sess_a, ++seq_a, NULL, 200));
  printf("  created again: a stream pinned to the first (known) is 404\n");
}

int main(void) {
  char synodd[PATH_MAX];
  cluster_synodd_or_skip(synodd, sizeof synodd);
  uint64_t t0 = test_now_ms();
  curl_global_init(CURL_GLOBAL_DEFAULT);
  cluster_start(&c, 3, synodd);
  int l = leader_of();
  CHECK(c.nodes[l].http[0] != '\0', "synodd has no --http");
  scenario_view();
  scenario_stream();
  scenario_bad_input();
  scenario_deleted();
  cluster_stop(&c);
  curl_global_cleanup();
  printf("ok (%.1f s)\n", (double)(test_now_ms() - t0) / 1000.0);
  return 0;
}
