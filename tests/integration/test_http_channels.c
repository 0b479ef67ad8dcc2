/* Channels over HTTP on 3 real synodd processes, with libcurl (and raw
 * sockets where a client must misbehave): POST to a follower (forwarded
 * to the leader) and to the leader, a message id answered once, an
 * oversized body 413; Server-Sent Events read with curl, in order with
 * their offsets as ids; a reconnect with Last-Event-ID on another replica
 * resumes with no gap and no duplicate, also across a SIGKILL of the
 * leader the stream was on; ECOMPACTED at the start and mid-stream, and a
 * deleted channel, as error events; a reader that stops reading leaves at
 * most the subscription bound queued in the server, then gets everything;
 * keep-alive pings on a quiet stream. Exit 77 (skipped) while synodd has
 * no --http. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cluster.h"
#include "http_client.h"
#include "synod.h"

#define OK(call) CHECK((call) == 0, "%s", synod_client_errmsg())

/* The server's bound on what a subscription leaves queued to a slow
 * connection (SUB_OUT_BYTES in server/node/subscribe.c), plus one batch
 * (256 KiB of payload, SSE-framed) that may go out past it. */
#define SUB_QUEUED_BOUND ((4u << 20) + (512u << 10))

static struct cluster c;

/* ------------------------------------------------------------- plain HTTP */

/* POST one message to replica i; the answer (200 required). */
static json_t *publish(int i, const char *channel, const char *id,
                       const char *data) {
  char path[256], header[300];
  snprintf(path, sizeof path, "/v1/channels/%s", channel);
  snprintf(header, sizeof header, "Synod-Message-Id: %s", id);
  return http_json("POST", c.nodes[i].http, path, id ? header : NULL, data,
                   strlen(data), 200);
}

/* POST until some running replica answers 200, retrying with the same
 * message id after an error that leaves the outcome open (no answer, 503,
 * 504): the id makes the retry safe. Returns the offset. */
static int64_t publish_retry(const char *channel, const char *id,
                             const char *data, uint32_t within_ms) {
  uint64_t deadline = test_now_ms() + within_ms;
  char path[256], header[300];
  snprintf(path, sizeof path, "/v1/channels/%s", channel);
  snprintf(header, sizeof header, "Synod-Message-Id: %s", id);
  for (int k = 0;; k++) {
    int i = k % c.n;
    if (c.nodes[i].pid == 0) {
      continue;
    }
    struct buf b;
    long status =
        http_do("POST", c.nodes[i].http, path, header, data, strlen(data), &b);
    if (status == 200) {
      json_t *j = json_of(&b, "publish");
      int64_t offset = jint(j, "offset");
      json_decref(j);
      free(b.p);
      return offset;
    }
    CHECK(status == 0 || status == 503 || status == 504,
          "publish %s to %s: %ld %s", id, c.nodes[i].name, status, b.p);
    free(b.p);
    CHECK(test_now_ms() < deadline, "publish %s: no replica took it in %u ms",
          id, within_ms);
    usleep(50 * 1000); /* a new leader is being elected */
  }
}

/* ------------------------------------------------------- an SSE parser */

struct event {
  uint64_t id; /* 0: none */
  char type[16];
  char *data;
  size_t len;
};

struct sse_parser {
  struct buf line;
  char id[32];
  char type[16];
  struct buf data;
  bool has_data;
  struct event *evs;
  size_t n;
  size_t cap;
  unsigned pings;
};

static void parser_dispatch(struct sse_parser *p) {
  if (p->has_data) {
    if (p->n == p->cap) {
      p->cap = p->cap ? 2 * p->cap : 64;
      p->evs = realloc(p->evs, p->cap * sizeof *p->evs);
    }
    struct event *e = &p->evs[p->n++];
    e->id = strtoull(p->id, NULL, 10);
    snprintf(e->type, sizeof e->type, "%s", p->type[0] ? p->type : "message");
    e->len = p->data.len ? p->data.len - 1 : 0; /* the last LF goes */
    e->data = malloc(e->len + 1);
    memcpy(e->data, p->data.p, e->len);
    e->data[e->len] = '\0';
  }
  p->id[0] = p->type[0] = '\0';
  p->data.len = 0;
  p->has_data = false;
}

static void parser_line(struct sse_parser *p, const char *l, size_t n) {
  if (n == 0) {
    parser_dispatch(p);
    return;
  }
  if (l[0] == ':') {
    p->pings += n >= 6 && memcmp(l, ": ping", 6) == 0;
    return;
  }
  const char *colon = memchr(l, ':', n);
  size_t fl = colon ? (size_t)(colon - l) : n;
  const char *v = colon ? colon + 1 : l + n;
  if (v < l + n && *v == ' ') {
    v++;
  }
  size_t vl = (size_t)(l + n - v);
  if (fl == 4 && memcmp(l, "data", 4) == 0) {
    buf_add(&p->data, v, vl);
    buf_add(&p->data, "\n", 1);
    p->has_data = true;
  } else if (fl == 2 && memcmp(l, "id", 2) == 0) {
    snprintf(p->id, sizeof p->id, "%.*s", (int)vl, v);
  } else if (fl == 5 && memcmp(l, "event", 5) == 0) {
    snprintf(p->type, sizeof p->type, "%.*s", (int)vl, v);
  }
}

static void parser_feed(struct sse_parser *p, const char *d, size_t n) {
  buf_add(&p->line, d, n);
  size_t start = 0;
  for (size_t i = 0; i < p->line.len; i++) {
    if (p->line.p[i] == '\n') {
      parser_line(p, p->line.p + start, i - start);
      start = i + 1;
    }
  }
  memmove(p->line.p, p->line.p + start, p->line.len - start);
  p->line.len -= start;
}

static void parser_free(struct sse_parser *p) {
  for (size_t i = 0; i < p->n; i++) {
    free(p->evs[i].data);
  }
  free(p->evs);
  free(p->line.p);
  free(p->data.p);
  memset(p, 0, sizeof *p);
}

/* ------------------------------------------------ SSE with libcurl multi */

struct sse {
  CURLM *multi;
  CURL *easy;
  struct curl_slist *hs;
  struct sse_parser p;
  bool done;
  CURLcode result;
  long status;
  const char *where;
};

static size_t sse_write_cb(char *d, size_t size, size_t n, void *arg) {
  struct sse *s = arg;
  parser_feed(&s->p, d, size * n);
  return size * n;
}

/* Opens a stream of `channel` on replica i; `query` ("?from=first") may
 * be ""; last_id > 0 sends Last-Event-ID. */
static void sse_open(struct sse *s, int i, const char *channel,
                     const char *query, uint64_t last_id) {
  char url[512], h[64];
  memset(s, 0, sizeof *s);
  snprintf(url, sizeof url, "http://%s/v1/channels/%s%s", c.nodes[i].http,
           channel, query);
  s->where = c.nodes[i].name;
  s->hs = curl_slist_append(NULL, "Accept: text/event-stream");
  if (last_id > 0) {
    snprintf(h, sizeof h, "Last-Event-ID: %" PRIu64, last_id);
    s->hs = curl_slist_append(s->hs, h);
  }
  s->easy = curl_easy_init();
  curl_easy_setopt(s->easy, CURLOPT_URL, url);
  curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->hs);
  curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, sse_write_cb);
  curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, s);
  curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
  s->multi = curl_multi_init();
  curl_multi_add_handle(s->multi, s->easy);
}

/* Runs the transfer for up to ms. */
static void sse_pump(struct sse *s, int ms) {
  int running = 0;
  curl_multi_perform(s->multi, &running);
  if (!s->done && running > 0) {
    curl_multi_poll(s->multi, NULL, 0, ms, NULL);
    curl_multi_perform(s->multi, &running);
  }
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(s->multi, &left)) != NULL) {
    if (m->msg == CURLMSG_DONE) {
      s->done = true;
      s->result = m->data.result;
      curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &s->status);
    }
  }
}

/* Until n events arrived (or the stream ended, if `or_end`). */
static void sse_wait(struct sse *s, size_t n, bool or_end, uint32_t ms,
                     const char *what) {
  uint64_t deadline = test_now_ms() + ms;
  while (s->p.n < n && !(or_end && s->done)) {
    CHECK(!s->done,
          "%s: the stream from %s ended (%s, HTTP %ld) after %zu "
          "of %zu events",
          what, s->where, curl_easy_strerror(s->result), s->status, s->p.n, n);
    CHECK(test_now_ms() < deadline, "%s: %zu of %zu events from %s in %u ms",
          what, s->p.n, n, s->where, ms);
    sse_pump(s, 50);
  }
}

static void sse_close(struct sse *s) {
  curl_multi_remove_handle(s->multi, s->easy);
  curl_easy_cleanup(s->easy);
  curl_multi_cleanup(s->multi);
  curl_slist_free_all(s->hs);
  parser_free(&s->p);
}

/* The events from..from+count-1 of p, starting at index k, must be the
 * messages "<prefix><offset>" at those offsets. */
static void check_run(const struct sse_parser *p, size_t k, uint64_t from,
                      size_t count, const char *prefix, const char *what) {
  for (size_t i = 0; i < count; i++) {
    const struct event *e = &p->evs[k + i];
    char want[64];
    snprintf(want, sizeof want, "%s%" PRIu64, prefix, from + i);
    CHECK(e->id == from + i && strcmp(e->type, "message") == 0 &&
              strcmp(e->data, want) == 0,
          "%s: event %zu is id %" PRIu64 " %s '%s', want id %" PRIu64 " '%s'",
          what, k + i, e->id, e->type, e->data, from + i, want);
  }
}

/* ------------------------------------------- SSE on a raw socket (1.0) */

/* An HTTP/1.0 stream (no chunking: the body is the event stream) on a
 * socket the test reads only when it wants to. */
struct raw_sse {
  int fd;
  bool head_done;
  struct buf head;
  struct sse_parser p;
  bool eof;
};

static void raw_sse_open(struct raw_sse *r, int i, const char *path,
                         int rcvbuf) {
  memset(r, 0, sizeof *r);
  const char *address = c.nodes[i].http;
  const char *colon = strrchr(address, ':');
  char host[64];
  snprintf(host, sizeof host, "%.*s", (int)(colon - address), address);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)atoi(colon + 1))};
  inet_pton(AF_INET, host, &sa.sin_addr);
  r->fd = socket(AF_INET, SOCK_STREAM, 0);
  if (rcvbuf > 0) {
    setsockopt(r->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  }
  CHECK(connect(r->fd, (struct sockaddr *)&sa, sizeof sa) == 0,
        "connect %s: %s", address, strerror(errno));
  char req[512];
  int n =
      snprintf(req, sizeof req,
               "GET %s HTTP/1.0\r\nAccept: text/event-stream\r\n\r\n", path);
  CHECK(send(r->fd, req, (size_t)n, MSG_NOSIGNAL) == n, "send: %s",
        strerror(errno));
}

/* Reads what is there within ms (at most `max` bytes: 0 = no limit). */
static void raw_sse_read(struct raw_sse *r, int ms) {
  struct pollfd pf = {.fd = r->fd, .events = POLLIN};
  char buf[65536];
  while (!r->eof && poll(&pf, 1, ms) > 0) {
    ssize_t k = recv(r->fd, buf, sizeof buf, MSG_DONTWAIT);
    if (k <= 0) {
      r->eof = k == 0 || (errno != EAGAIN && errno != EINTR);
      break;
    }
    size_t off = 0;
    if (!r->head_done) {
      buf_add(&r->head, buf, (size_t)k);
      char *end = strstr(r->head.p, "\r\n\r\n");
      if (end == NULL) {
        continue;
      }
      r->head_done = true;
      CHECK(strncmp(r->head.p, "HTTP/1.1 200", 12) == 0, "stream head: %s",
            r->head.p);
      size_t hl = (size_t)(end + 4 - r->head.p);
      parser_feed(&r->p, r->head.p + hl, r->head.len - hl);
      off = (size_t)k; /* all of it went through the head buffer */
    }
    parser_feed(&r->p, buf + off, (size_t)k - off);
    ms = 0;
  }
}

static void raw_sse_close(struct raw_sse *r) {
  close(r->fd);
  free(r->head.p);
  parser_free(&r->p);
}

/* ------------------------------------------------------------- helpers */

static int leader_of(void) {
  return cluster_wait_leader(&c, 20000);
}

static json_t *status_http(int i) {
  return http_json("GET", c.nodes[i].http, "/v1/status", NULL, NULL, 0, 200);
}

static struct synod_client *client_new(void) {
  struct synod_options o;
  struct synod_client *cl;
  synod_options_init(&o);
  o.endpoints = c.endpoints;
  o.client_name = "http channels test";
  CHECK(synod_client_new(&o, &cl) == 0, "%s", synod_client_errmsg());
  return cl;
}

/* Waits until replica i has applied everything the leader has. */
static void settle(int i) {
  uint64_t deadline = test_now_ms() + 20000;
  int l = leader_of();
  json_t *ls = status_http(l);
  int64_t commit = jint(ls, "commit_index");
  json_decref(ls);
  for (;;) {
    json_t *s = status_http(i);
    int64_t applied = jint(s, "applied_index");
    json_decref(s);
    if (applied >= commit) {
      return;
    }
    CHECK(test_now_ms() < deadline, "%s did not apply %" PRId64 " in 20 s",
          c.nodes[i].name, commit);
    usleep(10000);
  }
}

static int64_t queued_bytes(int i) {
  json_t *s = status_http(i);
  int64_t q = jint(json_object_get(s, "http"), "queued_bytes");
  json_decref(s);
  return q;
}

/* ------------------------------------------------------------ scenarios */

static void scenario_publish(void) {
  int l = leader_of(), f = (l + 1) % c.n;
  json_t *a = publish(f, "orders", "o-1", "first");
  CHECK(strcmp(jstr(a, "channel"), "orders") == 0 && jint(a, "offset") == 1 &&
            !json_is_true(json_object_get(a, "duplicate")),
        "publish to follower %s", c.nodes[f].name);
  json_t *b = publish(l, "orders", "o-2", "second");
  CHECK(jint(b, "offset") == 2 && jint(b, "index") > jint(a, "index"),
        "publish to the leader: offset %" PRId64 ", index %" PRId64,
        jint(b, "offset"), jint(b, "index"));
  /* The same id again, to another follower and under the other header:
   * answered with the first publish's offset, appended once. */
  json_t *d =
      http_json("POST", c.nodes[(l + 2) % c.n].http, "/v1/channels/orders",
                "Idempotency-Key: o-1", "again", 5, 200);
  CHECK(jint(d, "offset") == 1 && jint(d, "index") == jint(a, "index") &&
            json_is_true(json_object_get(d, "duplicate")),
        "a repeated message id: offset %" PRId64 ", duplicate %d",
        jint(d, "offset"), json_is_true(json_object_get(d, "duplicate")));
  /* Two message ids (which would count?): refused, nothing appended. */
  json_t *two =
      http_json("POST", c.nodes[l].http, "/v1/channels/orders",
                "Idempotency-Key: o-3\nSynod-Message-Id: o-4", "third", 5, 400);
  CHECK(strstr(jstr(two, "message"), "given twice") != NULL,
        "two message ids: %s", jstr(two, "message"));
  json_decref(two);
  /* An empty one would be no id at all: no deduplication. */
  json_t *empty = http_json("POST", c.nodes[l].http, "/v1/channels/orders",
                            "Synod-Message-Id;", "third", 5, 400);
  CHECK(strstr(jstr(empty, "message"), "message id of 0 bytes") != NULL,
        "an empty message id: %s", jstr(empty, "message"));
  json_decref(empty);
  json_t *info = http_json("GET", c.nodes[f].http, "/v1/channels/orders", NULL,
                           NULL, 0, 200);
  CHECK(jint(info, "messages") == 2 && jint(info, "next_offset") == 3 &&
            jint(info, "first_offset") == 1,
        "info after a duplicate: %" PRId64 " messages", jint(info, "messages"));
  json_t *list =
      http_json("GET", c.nodes[l].http, "/v1/channels", NULL, NULL, 0, 200);
  json_t *first = json_array_get(json_object_get(list, "channels"), 0);
  CHECK(first != NULL && strcmp(jstr(first, "channel"), "orders") == 0,
        "the list names orders");
  /* Over the channel's max_message_bytes (256 KiB), through a follower. */
  size_t big_len = 300000;
  char *big = malloc(big_len);
  memset(big, 'x', big_len);
  json_t *e = http_json("POST", c.nodes[f].http, "/v1/channels/orders", NULL,
                        big, big_len, 413);
  CHECK(strcmp(jstr(e, "error"), "SYNOD_ETOOBIG") == 0 &&
            strstr(jstr(e, "message"), "max_message_bytes") != NULL,
        "oversized: %s", jstr(e, "message"));
  free(big);
  json_t *g = http_json("GET", c.nodes[f].http, "/v1/channels/nothing", NULL,
                        NULL, 0, 404);
  CHECK(strcmp(jstr(g, "error"), "SYNOD_ENOTFOUND") == 0, "no channel");
  json_t *h =
      http_json("POST", c.nodes[f].http, "/v1/channels/", NULL, "x", 1, 400);
  json_t *k =
      http_json("GET", c.nodes[f].http,
                "/v1/channels/orders?stream=1&from=zero", NULL, NULL, 0, 400);
  json_decref(a), json_decref(b), json_decref(d), json_decref(info);
  json_decref(list), json_decref(e), json_decref(g), json_decref(h);
  json_decref(k);
  printf("ok publish: to a follower and the leader, a message id once, 413, "
         "info, list\n");
}

/* Events in order with their offsets as ids, a multi-line message and a
 * binary one; then a reconnect elsewhere with Last-Event-ID. */
static void scenario_stream_and_resume(void) {
  int l = leader_of(), f1 = (l + 1) % c.n, f2 = (l + 2) % c.n;
  struct sse a;
  sse_open(&a, f1, "feed", "?from=first", 0);
  char id[32], data[64];
  for (int k = 1; k <= 10; k++) {
    snprintf(id, sizeof id, "f-%d", k);
    snprintf(data, sizeof data, "m%d", k);
    json_decref(publish(k % 2 ? f1 : f2, "feed", id, data));
  }
  sse_wait(&a, 10, false, 10000, "feed 1..10");
  check_run(&a.p, 0, 1, 10, "m", "feed from first");
  sse_close(&a);
  for (int k = 11; k <= 20; k++) {
    snprintf(id, sizeof id, "f-%d", k);
    snprintf(data, sizeof data, "m%d", k);
    json_decref(publish(l, "feed", id, data));
  }
  struct sse b;
  sse_open(&b, f2, "feed", "", 10);
  sse_wait(&b, 10, false, 10000, "feed resumed after 10");
  check_run(&b.p, 0, 11, 10, "m", "resumed with Last-Event-ID 10");
  /* Then exactly the next one: nothing twice. */
  json_decref(publish(f1, "feed", "f-21", "line one\nline two"));
  const uint8_t bin[] = {0xff, 0x00, 'b'};
  char path[] = "/v1/channels/feed";
  json_decref(
      http_json("POST", c.nodes[f1].http, path, NULL, bin, sizeof bin, 200));
  sse_wait(&b, 12, false, 10000, "feed 21, 22");
  CHECK(b.p.n == 12 && b.p.evs[10].id == 21 &&
            strcmp(b.p.evs[10].data, "line one\nline two") == 0,
        "a two-line message: %zu events, '%s'", b.p.n, b.p.evs[10].data);
  CHECK(b.p.evs[11].id == 22 && strcmp(b.p.evs[11].type, "base64") == 0 &&
            strcmp(b.p.evs[11].data, "/wBi") == 0,
        "a binary message: %s '%s'", b.p.evs[11].type, b.p.evs[11].data);
  sse_close(&b);
  printf("ok stream: events in order, offsets as ids; resumed on another "
         "replica with Last-Event-ID, no gap, no duplicate\n");
}

/* GET /v1/channels/NAME's created_index, from replica i. */
static json_int_t created_index_of(int i, const char *channel) {
  char path[256];
  snprintf(path, sizeof path, "/v1/channels/%s", channel);
  json_t *info = http_json("GET", c.nodes[i].http, path, NULL, NULL, 0, 200);
  json_int_t v = json_integer_value(json_object_get(info, "created_index"));
  json_decref(info);
  return v;
}

/* A stream of `channel` on replica i from the first, pinned to `known`:
 * its n messages "<prefix><offset>" from offset 1. */
static void read_pinned(int i, const char *channel, json_int_t known, size_t n,
                        const char *prefix, const char *what) {
  char query[64];
  snprintf(query, sizeof query, "?from=first&known=%" JSON_INTEGER_FORMAT,
           known);
  struct sse s;
  sse_open(&s, i, channel, query, 0);
  sse_wait(&s, n, false, 10000, what);
  check_run(&s.p, 0, 1, n, prefix, what);
  sse_close(&s);
}

/* ?known=created_index pins a stream to one channel: after the channel
 * is deleted and created again, a reconnect with Last-Event-ID gets 404
 * instead of the new channel's offsets after the id. */
static void scenario_recreated(struct synod_client *cl) {
  int l = leader_of(), f = (l + 1) % c.n;
  char id[32], data[32], query[64];
  for (int k = 1; k <= 3; k++) {
    snprintf(id, sizeof id, "again-%d", k);
    snprintf(data, sizeof data, "a%d", k);
    json_decref(publish(l, "again", id, data));
  }
  json_int_t created = created_index_of(l, "again");
  CHECK(created > 0, "the channel's info has no created_index");
  read_pinned(f, "again", created, 3, "a", "again from first, pinned");

  CHECK(synod_channel_delete(cl, "again", 10000, NULL) == 0, "delete: %s",
        synod_client_errmsg());
  for (int k = 1; k <= 5; k++) {
    snprintf(id, sizeof id, "again-new-%d", k);
    snprintf(data, sizeof data, "b%d", k);
    json_decref(publish(l, "again", id, data));
  }
  /* The same URL and the last id seen, as an EventSource reconnects. */
  snprintf(query, sizeof query, "?known=%" JSON_INTEGER_FORMAT, created);
  struct sse b;
  sse_open(&b, f, "again", query, 3);
  sse_wait(&b, 1, true, 10000, "again resumed after its deletion");
  CHECK(b.done && b.status == 404 && b.p.n == 0,
        "a pinned stream resumed in the channel created again: HTTP %ld, "
        "%zu events",
        b.status, b.p.n);
  sse_close(&b);
  /* Pinned to the new one, it reads the new one. */
  json_int_t again = created_index_of(l, "again");
  CHECK(again > created,
        "created again at %" JSON_INTEGER_FORMAT
        ", first at %" JSON_INTEGER_FORMAT,
        again, created);
  read_pinned(f, "again", again, 5, "b", "the new channel from first, pinned");
  json_decref(http_json("GET", c.nodes[f].http,
                        "/v1/channels/again?stream=1&known=x", NULL, NULL, 0,
                        400));
  json_decref(http_json("GET", c.nodes[f].http,
                        "/v1/channels/again?stream=1&known=%zz", NULL, NULL, 0,
                        400));
  json_decref(http_json("GET", c.nodes[f].http,
                        "/v1/channels/again?stream=1&from=%zz", NULL, NULL, 0,
                        400));
  /* Given but not decoded is never read as absent (which would be the
   * channel's info, the default page, or an unpinned stream): 400 naming
   * the parameter. */
  static const struct {
    const char *path, *param;
  } undecoded[] = {
      {"/v1/channels/again?stream=%zz", "stream"},
      {"/v1/channels/again?stream=maybe", "stream"},
      {"/v1/channels/again?stale=%zz", "stale"},
      {"/v1/channels/again?stream=1&known=%00", "known"},
      {"/v1/channels/again?stream=1&known=1&known=2", "known"},
      {"/v1/channels?limit=%zz", "limit"},
      {"/v1/channels?after=%zz", "after"},
      {"/v1/channels?stale=%zz", "stale"},
      {"/v1/channels?limit=%2B5", "1 to 100000"},
      {"/v1/channels?limit=+5", "1 to 100000"},
      {"/v1/channels?limit=0x10", "1 to 100000"},
      /* A parameter the route does not take is refused, not ignored. */
      {"/v1/channels/again?stream=1&frm=3", "'frm' is unknown"},
      {"/v1/channels/again?stael=1", "'stael' is unknown"},
      {"/v1/channels?limt=5", "'limt' is unknown"},
  };
  for (size_t k = 0; k < sizeof undecoded / sizeof undecoded[0]; k++) {
    json_t *j = http_json("GET", c.nodes[f].http, undecoded[k].path, NULL, NULL,
                          0, 400);
    CHECK(strcmp(jstr(j, "error"), "SYNOD_EINVAL") == 0 &&
              strstr(jstr(j, "message"), undecoded[k].param) != NULL,
          "%s: the message names %s: %s", undecoded[k].path, undecoded[k].param,
          jstr(j, "message"));
    json_decref(j);
  }
  /* A message id given as ?message_id (the header's place) would be
   * ignored, and a retry append twice: refused, nothing appended. */
  json_t *before = http_json("GET", c.nodes[f].http, "/v1/channels/again", NULL,
                             NULL, 0, 200);
  json_t *j = http_json("POST", c.nodes[f].http,
                        "/v1/channels/again?message_id=m1", NULL, "x", 1, 400);
  CHECK(strstr(jstr(j, "message"), "'message_id' is unknown") != NULL,
        "a publish with ?message_id: %s", jstr(j, "message"));
  json_decref(j);
  json_t *after = http_json("GET", c.nodes[f].http, "/v1/channels/again", NULL,
                            NULL, 0, 200);
  CHECK(jint(after, "next_offset") == jint(before, "next_offset"),
        "a refused publish appended");
  json_decref(before);
  json_decref(after);
  printf("ok known: a pinned stream is refused (404) after its channel was "
         "created again, reads the new one pinned to it\n");
}

static void scenario_errors(struct synod_client *cl) {
  int f = (leader_of() + 1) % c.n;
  struct synod_channel_limits lim = {.max_messages = 5};
  OK(synod_channel_create(cl, "small", &lim, 0, NULL));
  char id[32];
  for (int k = 1; k <= 10; k++) {
    snprintf(id, sizeof id, "s-%d", k);
    json_decref(publish(f, "small", id, "s"));
  }
  /* Below the window at the start: an error event, then the end. An
   * offset is served from the replica's own state at once (no ReadIndex),
   * so first let it apply the publishes. */
  settle(f);
  struct sse s;
  sse_open(&s, f, "small", "?from=2", 0);
  sse_wait(&s, 1, true, 10000, "ECOMPACTED at the start");
  while (!s.done) {
    sse_pump(&s, 50); /* the server ends the stream after the event */
  }
  CHECK(s.p.n == 1 && strcmp(s.p.evs[0].type, "error") == 0 && s.status == 200,
        "from 2 of 6..10: %zu events, %s, HTTP %ld", s.p.n,
        s.p.n ? s.p.evs[0].type : "-", s.status);
  json_error_t jerr;
  json_t *j = json_loads(s.p.evs[0].data, 0, &jerr);
  CHECK(j != NULL && strcmp(jstr(j, "error"), "SYNOD_ECOMPACTED") == 0 &&
            jint(j, "first_available") == 6,
        "error event: %s", s.p.evs[0].data);
  json_decref(j);
  sse_close(&s);
  /* A deleted channel ends its streams. */
  sse_open(&s, f, "small", "?from=first", 0);
  sse_wait(&s, 5, false, 10000, "small 6..10");
  OK(synod_channel_delete(cl, "small", 0, NULL));
  sse_wait(&s, 6, true, 10000, "the end of a deleted channel");
  while (!s.done) {
    sse_pump(&s, 50);
  }
  j = json_loads(s.p.evs[5].data, 0, &jerr);
  CHECK(s.p.n == 6 && strcmp(s.p.evs[5].type, "error") == 0 && j != NULL &&
            strcmp(jstr(j, "error"), "SYNOD_ENOTFOUND") == 0,
        "deleted: %zu events, last %s", s.p.n, s.p.evs[s.p.n - 1].data);
  json_decref(j);
  sse_close(&s);
  printf("ok errors: ECOMPACTED at the start and a deleted channel as error "
         "events\n");
}

/* A reader that stops reading: the replica stops at its bound instead of
 * buffering 48 MB for it, and the reader later gets all of it, in order.
 * A reader behind a window that moves on gets ECOMPACTED when it reads
 * again, never a silent skip. */
static void scenario_slow_reader(struct synod_client *cl) {
  int f = (leader_of() + 1) % c.n;
  struct synod_channel_limits bulk = {.max_bytes = 100u << 20};
  struct synod_channel_limits lag = {.max_bytes = 2u << 20};
  OK(synod_channel_create(cl, "bulk", &bulk, 0, NULL));
  OK(synod_channel_create(cl, "lag", &lag, 0, NULL));
  struct raw_sse r, g;
  raw_sse_open(&r, f, "/v1/channels/bulk?from=first", 32 << 10);
  raw_sse_open(&g, f, "/v1/channels/lag?from=first", 32 << 10);
  static char big[200000];
  memset(big, 'b', sizeof big);
  const void *ptrs[4] = {big, big, big, big};
  size_t lens[4] = {sizeof big, sizeof big, sizeof big, sizeof big};
  int publishes = 60; /* 240 messages, 48 MB, in each channel */
  for (int k = 0; k < publishes; k++) {
    OK(synod_channel_publish(cl, "bulk", ptrs, lens, 4, NULL, 0, NULL));
    OK(synod_channel_publish(cl, "lag", ptrs, lens, 4, NULL, 0, NULL));
  }
  settle(f);
  int64_t q = queued_bytes(f);
  CHECK(q <= 2 * (int64_t)SUB_QUEUED_BOUND && q >= (1 << 20),
        "%s queues %" PRId64 " bytes for its two stalled readers (bound %u "
        "each)",
        c.nodes[f].name, q, SUB_QUEUED_BOUND);
  printf("  %s: %.1f MB queued for 2 readers that stopped, of 96 MB "
         "published\n",
         c.nodes[f].name, (double)q / 1e6);
  uint64_t deadline = test_now_ms() + 60000;
  while (r.p.n < (size_t)publishes * 4) {
    CHECK(!r.eof && test_now_ms() < deadline, "bulk: %zu of %d events (%s)",
          r.p.n, publishes * 4, r.eof ? "closed" : "60 s");
    raw_sse_read(&r, 100);
  }
  for (size_t i = 0; i < r.p.n; i++) {
    CHECK(r.p.evs[i].id == i + 1 && r.p.evs[i].len == sizeof big,
          "bulk event %zu: id %" PRIu64 ", %zu bytes", i, r.p.evs[i].id,
          r.p.evs[i].len);
  }
  while (!g.eof) {
    CHECK(test_now_ms() < deadline, "lag: no end in 60 s (%zu events)", g.p.n);
    raw_sse_read(&g, 100);
  }
  CHECK(g.p.n >= 2, "lag: %zu events", g.p.n);
  const struct event *last = &g.p.evs[g.p.n - 1];
  for (size_t i = 0; i + 1 < g.p.n; i++) {
    CHECK(g.p.evs[i].id == i + 1, "lag event %zu: id %" PRIu64, i,
          g.p.evs[i].id);
  }
  json_error_t jerr;
  json_t *j = json_loads(last->data, 0, &jerr);
  CHECK(strcmp(last->type, "error") == 0 && j != NULL &&
            strcmp(jstr(j, "error"), "SYNOD_ECOMPACTED") == 0 &&
            jint(j, "first_available") > (int64_t)g.p.n,
        "lag: the last event is %s %s", last->type, last->data);
  printf("ok slow reader: all 240 events after the stall, in order; the one "
         "behind a moving window: %zu events, then ECOMPACTED (first "
         "available %" PRId64 ")\n",
         g.p.n - 1, jint(j, "first_available"));
  json_decref(j);
  raw_sse_close(&r);
  raw_sse_close(&g);
  OK(synod_channel_delete(cl, "bulk", 0, NULL));
  OK(synod_channel_delete(cl, "lag", 0, NULL));
}

/* The stream this replica serves outlives its leader: on a SIGKILL of
 * the leader the stream was on, the reader reconnects to a survivor with
 * Last-Event-ID while publishers retry (same message ids) until a new
 * leader takes them; every message arrives once, in order. */
static void scenario_leader_killed(void) {
  int l = leader_of();
  struct sse s;
  sse_open(&s, l, "events", "?from=first", 0);
  char id[32], data[32];
  for (int k = 1; k <= 20; k++) {
    snprintf(id, sizeof id, "e-%d", k);
    snprintf(data, sizeof data, "msg-%d", k);
    publish_retry("events", id, data, 10000);
  }
  sse_wait(&s, 20, false, 10000, "events 1..20 from the leader");
  check_run(&s.p, 0, 1, 20, "msg-", "events before the kill");
  uint64_t last = s.p.evs[s.p.n - 1].id;
  cluster_signal(&c, l, SIGKILL);
  uint64_t t0 = test_now_ms();
  while (!s.done) {
    CHECK(test_now_ms() - t0 < 10000, "the stream from the killed leader "
                                      "did not end in 10 s");
    sse_pump(&s, 50);
  }
  sse_close(&s);
  int survivor = (l + 1) % c.n;
  sse_open(&s, survivor, "events", "", last);
  for (int k = 21; k <= 40; k++) {
    snprintf(id, sizeof id, "e-%d", k);
    snprintf(data, sizeof data, "msg-%d", k);
    publish_retry("events", id, data, 30000);
  }
  sse_wait(&s, 20, false, 20000, "events 21..40 after the kill");
  check_run(&s.p, 0, 21, 20, "msg-", "events resumed on a survivor");
  json_t *info = http_json("GET", c.nodes[survivor].http, "/v1/channels/events",
                           NULL, NULL, 0, 200);
  CHECK(jint(info, "next_offset") == 41,
        "retried publishes appended once: next offset %" PRId64,
        jint(info, "next_offset"));
  json_decref(info);
  sse_close(&s);
  printf("ok leader SIGKILL: stream resumed on %s with Last-Event-ID %" PRIu64
         " (%" PRIu64 " ms after the kill), 40 messages once each\n",
         c.nodes[survivor].name, last, test_now_ms() - t0);
}

int main(void) {
  char synodd[PATH_MAX];
  cluster_synodd_or_skip(synodd, sizeof synodd);
  uint64_t t0 = test_now_ms();
  curl_global_init(CURL_GLOBAL_DEFAULT);
  cluster_init(&c, 3, synodd);
  c.extra_args[0] = "--channels-max-bytes"; /* the stalled readers' 96 MB */
  c.extra_args[1] = "256MiB";
  for (int i = 0; i < c.n; i++) {
    cluster_restart(&c, i);
  }
  int l = leader_of();
  CHECK(c.nodes[l].http[0] != '\0', "synodd has no --http");
  /* A quiet stream, checked for keep-alive pings at the end. */
  struct raw_sse quiet;
  int q = (l + 2) % c.n;
  raw_sse_open(&quiet, q, "/v1/channels/quiet", 0);
  uint64_t quiet_since = test_now_ms();
  struct synod_client *cl = client_new();
  scenario_publish();
  scenario_stream_and_resume();
  scenario_errors(cl);
  scenario_recreated(cl);
  scenario_slow_reader(cl);
  /* Pings every 15 s: the stream was quiet all along (no publish to it),
   * and neither idle timeouts nor the cap closed it. */
  while (quiet.p.pings == 0) {
    CHECK(!quiet.eof, "the quiet stream was closed");
    CHECK(test_now_ms() - quiet_since < 20000, "no ping in 20 s");
    raw_sse_read(&quiet, 200);
  }
  printf("ok ping: \": ping\" on a quiet stream after %.1f s\n",
         (double)(test_now_ms() - quiet_since) / 1000.0);
  raw_sse_close(&quiet);
  synod_client_free(cl);
  scenario_leader_killed();
  cluster_stop(&c);
  curl_global_cleanup();
  printf("ok (%.1f s)\n", (double)(test_now_ms() - t0) / 1000.0);
  return 0;
}
