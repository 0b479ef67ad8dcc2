/* HTTP on 3 real synodd processes: /healthz and /readyz on every replica;
 * /leader/NAME in the leader-elector sidecar's shape and /v1/elections/NAME
 * answered by every replica, followers included (their reads ask the
 * leader for a read index over the peer link); /v1/status; and bad input
 * (malformed requests, oversized heads, 1,000 connections at once, a
 * client sending a byte at a time) while libsynod clients keep adding on
 * the same replica. Exit 77 (skipped) while synodd has no --http. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cluster.h"
#include "synod.h"

#define OK(call) CHECK((call) == 0, "%s", synod_client_errmsg())

/* ------------------------------------------------------- a tiny client */

static int tcp_connect(const char *address, int timeout_s) {
  char host[64];
  snprintf(host, sizeof host, "%s", address);
  char *colon = strrchr(host, ':');
  *colon = '\0';
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)atoi(colon + 1))};
  inet_pton(AF_INET, host, &sa.sin_addr);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(fd >= 0, "socket: %s", strerror(errno));
  struct timeval tv = {.tv_sec = timeout_s};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Sends `request` on a new connection and reads the answer until the
 * server closes or Content-Length bytes arrived. Returns the status (0:
 * closed without an answer); the body goes to body (cap bytes). */
static int http_raw(const char *address, const char *request, char *body,
                    size_t cap) {
  int fd = tcp_connect(address, 5);
  CHECK(fd >= 0, "connect %s: %s", address, strerror(errno));
  CHECK(send(fd, request, strlen(request), MSG_NOSIGNAL) ==
            (ssize_t)strlen(request),
        "send to %s", address);
  static char buf[1 << 20];
  size_t len = 0;
  int status = 0;
  for (;;) {
    ssize_t r = recv(fd, buf + len, sizeof buf - 1 - len, 0);
    CHECK(r >= 0, "no answer from %s within 5 s: %s", address, strerror(errno));
    len += (size_t)r;
    buf[len] = '\0';
    char *end = strstr(buf, "\r\n\r\n");
    const char *cl = strcasestr(buf, "content-length:");
    if (r == 0 ||
        (end != NULL && cl != NULL &&
         len >= (size_t)(end + 4 - buf) + strtoul(cl + 15, NULL, 10))) {
      if (end != NULL) {
        sscanf(buf, "HTTP/1.1 %d", &status);
        snprintf(body, cap, "%s", end + 4);
      }
      break;
    }
  }
  close(fd);
  return status;
}

static int http_get(const char *address, const char *path, char *body,
                    size_t cap) {
  char req[512];
  snprintf(req, sizeof req,
           "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path,
           address);
  return http_raw(address, req, body, cap);
}

static json_t *http_json(const char *address, const char *path, int want) {
  static char body[1 << 20];
  int status = http_get(address, path, body, sizeof body);
  CHECK(status == want, "GET %s%s: %d, want %d: %s", address, path, status,
        want, body);
  json_error_t e;
  json_t *j = json_loads(body, 0, &e);
  CHECK(j != NULL, "GET %s%s: not JSON (%s): %s", address, path, e.text, body);
  return j;
}

/* ------------------------------------------------------------- checks */

static void check_probes(struct cluster *c) {
  for (int i = 0; i < c->n; i++) {
    json_t *j = http_json(c->nodes[i].http, "/healthz", 200);
    CHECK(strcmp(json_string_value(json_object_get(j, "name")),
                 c->nodes[i].name) == 0,
          "healthz of %s names %s", c->nodes[i].name,
          json_string_value(json_object_get(j, "name")));
    json_decref(j);
    /* Ready once it has applied what the leader committed. */
    uint64_t deadline = test_now_ms() + 10000;
    char body[4096];
    int status;
    while ((status = http_get(c->nodes[i].http, "/readyz", body,
                              sizeof body)) != 200 &&
           test_now_ms() < deadline) {
      usleep(50 * 1000);
    }
    CHECK(status == 200, "readyz of %s: %d %s", c->nodes[i].name, status, body);
  }
  printf("ok probes\n");
}

static void check_status(struct cluster *c, int leader) {
  json_t *j = http_json(c->nodes[leader].http, "/v1/status", 200);
  json_t *members = json_object_get(j, "members");
  CHECK(json_array_size(members) == 3, "%zu members", json_array_size(members));
  int leaders = 0;
  for (size_t i = 0; i < 3; i++) {
    json_t *m = json_array_get(members, i);
    leaders +=
        strcmp(json_string_value(json_object_get(m, "role")), "leader") == 0;
    CHECK(json_integer_value(json_object_get(m, "last_contact_ms")) < 5000,
          "member %zu last heard %" JSON_INTEGER_FORMAT " ms ago", i,
          json_integer_value(json_object_get(m, "last_contact_ms")));
  }
  CHECK(leaders == 1, "%d leaders in /v1/status", leaders);
  json_decref(j);
  /* Every replica's own figures, from a follower: the same term. */
  j = http_json(c->nodes[(leader + 1) % 3].http, "/v1/status?cluster=1", 200);
  json_t *replicas = json_object_get(j, "replicas");
  CHECK(json_array_size(replicas) == 3, "%zu replicas",
        json_array_size(replicas));
  json_int_t term = json_integer_value(json_object_get(j, "term"));
  for (size_t i = 0; i < 3; i++) {
    json_t *r = json_array_get(replicas, i);
    CHECK(json_is_true(json_object_get(r, "reachable")) &&
              json_integer_value(json_object_get(r, "term")) == term,
          "replica %s: reachable %d, term %" JSON_INTEGER_FORMAT
          " (want %" JSON_INTEGER_FORMAT ")",
          json_string_value(json_object_get(r, "name")),
          json_is_true(json_object_get(r, "reachable")),
          json_integer_value(json_object_get(r, "term")), term);
  }
  json_decref(j);
  /* A stopped replica is reported as not answering, within the bound. */
  int stopped = (leader + 2) % 3;
  cluster_signal(c, stopped, SIGSTOP);
  uint64_t t0 = test_now_ms();
  j = http_json(c->nodes[leader].http, "/v1/status?cluster=1", 200);
  uint64_t took = test_now_ms() - t0;
  cluster_signal(c, stopped, SIGCONT);
  replicas = json_object_get(j, "replicas");
  int silent = 0;
  for (size_t i = 0; i < json_array_size(replicas); i++) {
    json_t *r = json_array_get(replicas, i);
    const char *err = json_string_value(json_object_get(r, "error"));
    silent += !json_is_true(json_object_get(r, "reachable")) && err != NULL &&
              strstr(err, "no answer in") != NULL;
  }
  CHECK(silent == 1 && took < 1500,
        "%d replicas not answering after %" PRIu64 " ms, want 1 (%s stopped)",
        silent, took, c->nodes[stopped].name);
  json_decref(j);
  j = http_json(c->nodes[leader].http, "/v1/status", 200);
  CHECK(strcmp(json_string_value(json_object_get(j, "role")), "leader") == 0,
        "the leader's status says role %s",
        json_string_value(json_object_get(j, "role")));
  json_decref(j);
  printf("ok status\n");
}

/* Every replica names the same election leader, linearizably. */
static void check_leader_everywhere(struct cluster *c, const char *want) {
  char body[4096];
  for (int i = 0; i < c->n; i++) {
    uint64_t deadline = test_now_ms() + 10000;
    char expect[256];
    snprintf(expect, sizeof expect, "{\"name\":\"%s\"}\n", want);
    int status;
    while (((status = http_get(c->nodes[i].http, "/leader/sched", body,
                               sizeof body)) != 200 ||
            strcmp(body, expect) != 0) &&
           test_now_ms() < deadline) {
      usleep(50 * 1000);
    }
    CHECK(status == 200 && strcmp(body, expect) == 0,
          "/leader/sched on %s: %d %s, want %s", c->nodes[i].name, status, body,
          expect);
    json_t *j = http_json(c->nodes[i].http, "/v1/elections/sched", 200);
    CHECK((json_integer_value(json_object_get(j, "token")) > 0) ==
              (want[0] != '\0'),
          "token %" JSON_INTEGER_FORMAT " on %s with leader '%s'",
          json_integer_value(json_object_get(j, "token")), c->nodes[i].name,
          want);
    json_decref(j);
  }
}

static void check_elections(struct cluster *c) {
  char out[PATH_MAX + 16], ctl[PATH_MAX];
  test_binary("SYNODCTL", "synodctl", ctl, sizeof ctl);
  snprintf(out, sizeof out, "%s/elect.out", c->dir);
  char *argv[] = {ctl,     "--endpoints", c->endpoints, "elect",
                  "sched", "pod-a",       NULL};
  pid_t pid = test_spawn(argv, out);
  check_leader_everywhere(c, "pod-a");
  char body[4096];
  CHECK(http_get(c->nodes[0].http, "/leader/sched?stale=1", body,
                 sizeof body) == 200 &&
            strstr(body, "pod-a") != NULL,
        "stale read: %s", body);
  CHECK(http_get(c->nodes[0].http, "/leader/nobody", body, sizeof body) ==
                200 &&
            strcmp(body, "{\"name\":\"\"}\n") == 0,
        "no leader: %s", body);
  CHECK(http_get(c->nodes[0].http, "/leader/a%zz", body, sizeof body) == 400,
        "bad escape: %s", body);
  /* A query parameter given but not decoded is a 400 naming it, never
   * read as absent (a linearizable read instead of ?stale, no cluster). */
  static const struct {
    const char *path, *param;
  } undecoded[] = {
      {"/leader/sched?stale=%zz", "stale"},
      {"/v1/elections/sched?stale=%00", "stale"},
      {"/leader/sched?stale=maybe", "stale"},
      {"/v1/status?limit=%zz", "limit"},
      {"/v1/status?cluster=%zz", "cluster"},
      {"/v1/status?limit=1&limit=2", "limit"},
      {"/v1/status?limit=%2B5", "0 to 10000"},
      {"/v1/status?limit=+5", "0 to 10000"},
      {"/v1/status?limit=10001", "0 to 10000"},
  };
  for (size_t k = 0; k < sizeof undecoded / sizeof undecoded[0]; k++) {
    json_t *j = http_json(c->nodes[k % 3].http, undecoded[k].path, 400);
    const char *msg = json_string_value(json_object_get(j, "message"));
    CHECK(msg != NULL && strstr(msg, undecoded[k].param) != NULL,
          "%s: the message names %s", undecoded[k].path, undecoded[k].param);
    json_decref(j);
  }
  kill(pid, SIGTERM);
  test_wait(pid, 10000, "synodctl elect");
  check_leader_everywhere(c, "");
  printf("ok elections\n");
}

/* ------------------------------------------------- messages as UTF-8 */

/* `request` on a new connection must answer `want` with a JSON body
 * (jansson refuses one that is not UTF-8) that has "error" and, unless it
 * is the server's own, "message". */
static void check_json_error(const char *address, const char *request, int want,
                             const char *what) {
  static char body[1 << 16];
  int status = http_raw(address, request, body, sizeof body);
  json_error_t e;
  json_t *j = json_loads(body, 0, &e);
  CHECK(status == want, "%s: %d, want %d: %s", what, status, want, body);
  CHECK(j != NULL && json_is_string(json_object_get(j, "error")),
        "%s: not a JSON error (%s): %s", what, j == NULL ? e.text : "", body);
  json_decref(j);
}

/* Error messages quote names and bytes that clients sent, cut by byte
 * counts ("%.64s" of a name in the state machine, "%.*s" at 128 bytes
 * of a key): a character cut in two, or a byte that is not UTF-8, must
 * still give the error (JSON is UTF-8), not 500 "out of memory", and an
 * error event of a stream must keep its JSON. */
static void check_utf8_messages(struct cluster *c, int leader) {
  const char *http = c->nodes[leader].http;
  char key[700] = "a", chan[300] = "a", req[2048];
  for (int i = 0; i < 100; i++) {
    strcat(key, "%C3%A9"); /* é */
  }
  for (int i = 0; i < 40; i++) {
    strcat(chan, "%C3%A9");
  }
  snprintf(req, sizeof req, "GET /v1/keys/%s HTTP/1.1\r\n\r\n", key);
  check_json_error(http, req, 404, "a missing key of 201 bytes");
  snprintf(req, sizeof req,
           "PUT /v1/keys/%s HTTP/1.1\r\nContent-Length: 1\r\n"
           "Connection: close\r\n\r\nv",
           key);
  char body[4096];
  CHECK(http_raw(http, req, body, sizeof body) == 200, "put: %s", body);
  snprintf(req, sizeof req,
           "PUT /v1/keys/%s?if_version=0 HTTP/1.1\r\nContent-Length: 1\r\n"
           "\r\nv",
           key);
  check_json_error(http, req, 412, "a create-only put of a key that exists");
  static const char *const paths[] = {
      "GET /v1/channels/%s", "GET /v1/groups/%s", "POST /v1/groups/%s/messages",
      "GET /v1/channels/%s?stream=1&known=1"};
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
    char line[512];
    snprintf(line, sizeof line, paths[i], chan);
    snprintf(req, sizeof req, "%s HTTP/1.1\r\nContent-Length: 1\r\n\r\nx",
             line);
    check_json_error(http, req, 404, paths[i]);
  }
  static const struct {
    const char *request;
    int want;
  } raw[] = {
      {"GET /v1/channels/x?stream=1 HTTP/1.1\r\nLast-Event-ID: \xff\r\n\r\n",
       400},
      {"PUT /v1/keys/k HTTP/1.1\r\nIf-Match: \xff\r\nContent-Length: "
       "1\r\n\r\nv",
       400},
      {"GET /v1/keys/k?\xff=1 HTTP/1.1\r\n\r\n", 400},
      {"GET /v1/channels/\xff%zz HTTP/1.1\r\n\r\n", 400},
      {"GET /nosuch\xff HTTP/1.1\r\n\r\n", 404},
  };
  for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++) {
    check_json_error(http, raw[i].request, raw[i].want, raw[i].request);
  }
  /* A stream from below the window of a channel whose name the message
   * cuts: an `event: error` with the error as JSON. */
  struct synod_options o;
  struct synod_client *cl;
  struct synod_channel_limits lim = {.max_messages = 1};
  char name[128] = "a";
  for (int i = 0; i < 40; i++) {
    strcat(name, "\xc3\xa9");
  }
  synod_options_init(&o);
  o.endpoints = c->endpoints;
  OK(synod_client_new(&o, &cl));
  OK(synod_channel_create(cl, name, &lim, 0, NULL));
  synod_client_free(cl);
  for (int i = 0; i < 3; i++) {
    snprintf(req, sizeof req,
             "POST /v1/channels/%s HTTP/1.1\r\nContent-Length: 1\r\n"
             "Connection: close\r\n\r\nm",
             chan);
    CHECK(http_raw(http, req, body, sizeof body) == 200, "publish: %s", body);
  }
  snprintf(req, sizeof req,
           "GET /v1/channels/%s?stream=1&from=1 HTTP/1.1\r\n"
           "Connection: close\r\n\r\n",
           chan);
  CHECK(
      http_raw(http, req, body, sizeof body) == 200 &&
          strstr(body, "event: error\ndata: {\"error\":\"SYNOD_ECOMPACTED\"") !=
              NULL,
      "a stream below the window: %s", body);
  printf("ok error messages are UTF-8 JSON whatever they quote\n");
}

/* A method a route does not take is 405 with a JSON error on every
 * route, whatever bytes the method holds (it is quoted in the message). */
static void check_not_allowed(struct cluster *c) {
  static const char *const paths[] = {
      "/v1/channels/x", "/v1/channels",   "/v1/groups/g",
      "/v1/groups",     "/v1/keys/k",     "/v1/txn",
      "/v1/sessions",   "/v1/sessions/1", "/healthz"};
  static const char *const methods[] = {"G\"E\\T", "PATCH", "\xff\xfe"};
  char req[256];
  for (size_t m = 0; m < sizeof methods / sizeof methods[0]; m++) {
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
      snprintf(req, sizeof req, "%s %s HTTP/1.1\r\n\r\n", methods[m], paths[i]);
      check_json_error(c->nodes[i % 3].http, req, 405, req);
    }
  }
  printf("ok 405 on every route, as JSON\n");
}

/* Event streams are never evicted, so 256 idle ones used to take every
 * connection and leave /healthz (the liveness probe) a 503. They may
 * take 224 of the 256 now: the rest are refused with a 503 naming the
 * limit, and /healthz and plain requests are still answered. */
static void check_streams_leave_room(struct cluster *c, int target) {
  const char *http = c->nodes[target].http;
  char body[4096];
  CHECK(http_raw(http,
                 "POST /v1/channels/ticks HTTP/1.1\r\nContent-Length: 1\r\n"
                 "Connection: close\r\n\r\nt",
                 body, sizeof body) == 200,
        "publish: %s", body);
  static int fds[256];
  int ok = 0, refused = 0;
  for (int i = 0; i < 256; i++) {
    static const char req[] = "GET /v1/channels/ticks?stream=1 HTTP/1.1\r\n"
                              "Host: x\r\n\r\n";
    fds[i] = tcp_connect(http, 5);
    CHECK(fds[i] >= 0, "connect %d: %s", i, strerror(errno));
    CHECK(send(fds[i], req, sizeof req - 1, MSG_NOSIGNAL) ==
              (ssize_t)sizeof req - 1,
          "send");
    char head[4096];
    size_t len = 0;
    while (len < sizeof head - 1) {
      ssize_t r = recv(fds[i], head + len, sizeof head - 1 - len, 0);
      CHECK(r > 0, "stream %d: no answer", i);
      len += (size_t)r;
      head[len] = '\0';
      if (strstr(head, "\r\n\r\n") != NULL &&
          (strncmp(head, "HTTP/1.1 200", 12) == 0 ||
           strstr(head, "streams_max") != NULL)) {
        break;
      }
    }
    ok += strncmp(head, "HTTP/1.1 200", 12) == 0;
    refused += strncmp(head, "HTTP/1.1 503", 12) == 0 &&
               strstr(head, "at most 224") != NULL;
  }
  CHECK(ok == 224 && refused == 32, "256 streams: %d opened, %d refused", ok,
        refused);
  static char metrics[1 << 20];
  for (int i = 0; i < 20; i++) {
    json_decref(http_json(http, "/healthz", 200));
    json_decref(http_json(http, "/readyz", 200));
    CHECK(http_get(http, "/metrics", metrics, sizeof metrics) == 200,
          "/metrics beside 224 streams");
  }
  for (int i = 0; i < 256; i++) {
    close(fds[i]);
  }
  printf("ok 256 streams: 224 opened, 32 refused; /healthz answered\n");
}

/* ----------------------------------------------------------- bad input */

struct adder {
  const struct cluster *c;
  const char *endpoint;
  atomic_bool stop;
  atomic_int ok;
  atomic_int failed;
};

static void *adder_main(void *arg) {
  struct adder *a = arg;
  struct synod_options o;
  struct synod_client *cl;
  synod_options_init(&o);
  o.endpoints = a->endpoint;
  o.client_name = "http bad input";
  o.request_timeout_ms = 5000;
  if (synod_client_new(&o, &cl) != 0) {
    atomic_fetch_add(&a->failed, 1);
    return NULL;
  }
  while (!atomic_load(&a->stop)) {
    if (synod_counter_add(cl, "during-bad-http", 1, 0, NULL) == 0) {
      atomic_fetch_add(&a->ok, 1);
    } else {
      atomic_fetch_add(&a->failed, 1);
    }
  }
  synod_client_free(cl);
  return NULL;
}

static void check_bad_input(struct cluster *c, int target) {
  const char *http = c->nodes[target].http;
  char body[4096], big[40000];
  struct adder a = {.c = c, .endpoint = c->nodes[target].client};
  pthread_t t;
  CHECK(pthread_create(&t, NULL, adder_main, &a) == 0, "thread");
  CHECK(http_raw(http, "NOT HTTP AT ALL\r\n\r\n", body, sizeof body) == 400,
        "garbage: %s", body);
  snprintf(big, sizeof big, "GET /healthz HTTP/1.1\r\nX-Big: %030000d\r\n\r\n",
           0);
  CHECK(http_raw(http, big, body, sizeof body) == 431, "big head: %s", body);
  snprintf(big, sizeof big, "GET /%08000d HTTP/1.1\r\n\r\n", 0);
  CHECK(http_raw(http, big, body, sizeof body) == 414, "long line: %s", body);
  CHECK(http_raw(http,
                 "POST /healthz HTTP/1.1\r\nContent-Length: 99999999\r\n"
                 "\r\n",
                 body, sizeof body) == 413,
        "big body: %s", body);
  /* 1,000 connections at once, each sending half a request. */
  static int fds[1000];
  int opened = 0;
  for (int i = 0; i < 1000; i++) {
    fds[i] = tcp_connect(http, 5);
    if (fds[i] >= 0) {
      send(fds[i], "GET /heal", 9, MSG_NOSIGNAL);
      opened++;
    }
  }
  uint64_t t0 = test_now_ms();
  json_decref(http_json(http, "/healthz", 200));
  printf("1000 connections: %d opened; /healthz answered in %" PRIu64
         " ms meanwhile\n",
         opened, test_now_ms() - t0);
  /* A client sending a byte every 200 ms is cut off (408) within the
   * request timeout, and never holds anyone up meanwhile. */
  int slow = tcp_connect(http, 10);
  const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  uint64_t start = test_now_ms();
  ssize_t got = 0;
  for (size_t i = 0; i < strlen(req) - 1 && got <= 0; i++) {
    if (send(slow, req + i, 1, MSG_NOSIGNAL) != 1) {
      break;
    }
    json_decref(http_json(http, "/healthz", 200));
    usleep(200 * 1000);
    got = recv(slow, body, sizeof body - 1, MSG_DONTWAIT);
  }
  if (got <= 0) {
    got = recv(slow, body, sizeof body - 1, 0);
  }
  body[got > 0 ? got : 0] = '\0';
  struct sockaddr_in me;
  socklen_t mel = sizeof me;
  getsockname(slow, (struct sockaddr *)&me, &mel);
  CHECK(strstr(body, "408") != NULL, "slow client (port %d) got: %s",
        ntohs(me.sin_port), body);
  CHECK(test_now_ms() - start < 9000, "slow client held %" PRIu64 " ms",
        test_now_ms() - start);
  close(slow);
  for (int i = 0; i < 1000; i++) {
    if (fds[i] >= 0) {
      close(fds[i]);
    }
  }
  int before = atomic_load(&a.ok);
  uint64_t deadline = test_now_ms() + 5000;
  while (atomic_load(&a.ok) < before + 50 && test_now_ms() < deadline) {
    usleep(10 * 1000);
  }
  atomic_store(&a.stop, true);
  pthread_join(t, NULL);
  CHECK(atomic_load(&a.failed) == 0 && atomic_load(&a.ok) >= before + 50,
        "adds on %s during bad HTTP: %d ok, %d failed", c->nodes[target].name,
        atomic_load(&a.ok), atomic_load(&a.failed));
  char *log = test_slurp(c->nodes[target].log);
  CHECK(strstr(log, "400 Bad Request from 127.0.0.1:") != NULL,
        "no log line for the malformed request in %s", c->nodes[target].log);
  free(log);
  printf("ok bad input: %d adds meanwhile\n", atomic_load(&a.ok));
}

int main(void) {
  char synodd[PATH_MAX];
  cluster_synodd_or_skip(synodd, sizeof synodd);
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096) {
    rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  struct cluster c;
  cluster_start(&c, 3, synodd);
  int leader = cluster_wait_leader(&c, 20000);
  check_probes(&c);
  check_status(&c, leader);
  check_elections(&c);
  check_utf8_messages(&c, leader);
  check_not_allowed(&c);
  check_streams_leave_room(&c, leader);
  check_bad_input(&c, (leader + 1) % 3);
  cluster_stop(&c);
  printf("ok http\n");
  return 0;
}
