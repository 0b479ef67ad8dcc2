/* Fuzz harness: the HTTP server's request handling (server/http/httpd.c)
 * on a real libuv loop: a server on 127.0.0.1 with small limits, and for
 * each input one TCP connection that sends the bytes and then closes its
 * side, as a client at the --http port could.
 *
 * Input: a byte of flags (bit 0: answer each request on the next loop
 * turn instead of from the callback, as after a ReadIndex round; bit 1:
 * answer with an error body), then the bytes to send.
 * Invariants: each request handed over lies inside the limits (method,
 * target, headers and body within the head and body maxima, at most
 * headers_max headers), its query helpers terminate their output; a
 * request is answered once (a second answer finds nothing); the server
 * only ever writes "HTTP/1.1 " answers; the connection is closed by the
 * server within 10 s of the client's end of input, and nothing is left
 * open afterwards. */
#include "fuzz.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "httpd.h"
#include "log.h"
#include "synod.h"

#define HEAD_MAX 1024
#define BODY_MAX 4096
#define HEADERS_MAX 8
#define DEFERRED_MAX 64

static uv_loop_t loop;
static struct httpd *server;
static struct sockaddr_in server_addr;
static uint8_t flags;
static uint64_t deferred[DEFERRED_MAX];
static size_t deferred_n;

static void answer(uint64_t id) {
  int rv;
  if (flags & 2) {
    rv = httpd_respond_error(server, id, 404, "no %s here", "\"thing\"\n");
  } else {
    rv = httpd_respond(server, id, 200, "text/plain", "X-Fuzz: 1\r\n", "ok", 2);
  }
  FUZZ_CHECK(rv == 0 || rv == SYNOD_ENOTFOUND || rv == SYNOD_ENOMEM,
             "respond: %d", rv);
  FUZZ_CHECK(httpd_respond(server, id, 200, "text/plain", NULL, "", 0) ==
                 SYNOD_ENOTFOUND,
             "request %llu answered twice", (unsigned long long)id);
}

static void request_cb(void *arg, const struct httpd_request *r) {
  (void)arg;
  FUZZ_CHECK(r->method != NULL && r->path != NULL && r->query != NULL,
             "NULL field");
  FUZZ_CHECK(r->method_len + r->path_len + r->query_len < HEAD_MAX,
             "request line of %zu bytes",
             r->method_len + r->path_len + r->query_len);
  FUZZ_CHECK(r->headers_n <= HEADERS_MAX, "%zu headers", r->headers_n);
  FUZZ_CHECK(r->body_len <= BODY_MAX, "body of %zu bytes", r->body_len);
  for (size_t i = 0; i < r->headers_n; i++) {
    FUZZ_CHECK(r->headers[i].name_len + r->headers[i].value_len < HEAD_MAX,
               "header %zu", i);
  }
  /* Touch every byte: ASan catches a pointer past the buffer. */
  volatile uint8_t sum = 0;
  for (size_t i = 0; i < r->body_len; i++) {
    sum += r->body[i];
  }
  for (size_t i = 0; i < r->path_len; i++) {
    sum += (uint8_t)r->path[i];
  }
  (void)sum;
  char out[64], dec[64];
  memset(out, 'x', sizeof out);
  if (httpd_query_get(r, "name", out, sizeof out)) {
    FUZZ_CHECK(memchr(out, 0, sizeof out) != NULL, "query not terminated");
  }
  memset(dec, 'x', sizeof dec);
  if (httpd_url_decode(r->path, r->path_len, dec, sizeof dec)) {
    FUZZ_CHECK(memchr(dec, 0, sizeof dec) != NULL, "path not terminated");
  }
  size_t len;
  const char *host = httpd_header(r, "host", &len);
  FUZZ_CHECK(host == NULL || len < HEAD_MAX, "host of %zu bytes", len);
  (void)httpd_method_is(r, "GET");
  if ((flags & 1) && deferred_n < DEFERRED_MAX) {
    deferred[deferred_n++] = r->id;
  } else {
    answer(r->id);
  }
}

static void setup(void) {
  char errmsg[SYNOD_ERRMSG_MAX];
  log_init("fuzz", LOG_ERROR);
  FUZZ_CHECK(uv_loop_init(&loop) == 0, "loop");
  struct httpd_options o = {.loop = &loop,
                            .listen_address = "127.0.0.1:0",
                            .connections_max = 4,
                            .line_bytes_max = 256,
                            .head_bytes_max = HEAD_MAX,
                            .headers_max = HEADERS_MAX,
                            .body_bytes_max = BODY_MAX,
                            .request_timeout_ms = 5000,
                            .idle_timeout_ms = 5000,
                            .out_bytes_max = 1 << 20,
                            .request_cb = request_cb};
  FUZZ_CHECK(httpd_start(&o, &server, errmsg) == 0, "%s", errmsg);
  const char *a = httpd_listen_address(server);
  const char *colon = strrchr(a, ':');
  server_addr.sin_family = AF_INET;
  server_addr.sin_port = htons((uint16_t)atoi(colon + 1));
  server_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* One loop turn, then the deferred answers. */
static void turn(void) {
  uv_run(&loop, UV_RUN_NOWAIT);
  size_t n = deferred_n;
  deferred_n = 0;
  for (size_t i = 0; i < n; i++) {
    answer(deferred[i]);
  }
}

/* connect(2), which a signal (libFuzzer's timers) may interrupt: the
 * connection then goes on in the background; wait for its outcome. */
static int connect_to_server(int fd) {
  if (connect(fd, (struct sockaddr *)&server_addr, sizeof server_addr) == 0) {
    return 0;
  }
  if (errno != EINTR && errno != EINPROGRESS) {
    return -1;
  }
  struct pollfd p = {.fd = fd, .events = POLLOUT};
  while (poll(&p, 1, 10000) < 0 && errno == EINTR) {
  }
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  errno = err;
  return err == 0 ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (server == NULL) {
    setup();
  }
  struct fuzz_in in = {data, size};
  flags = fuzz_u8(&in);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  FUZZ_CHECK(fd >= 0, "socket: %s", strerror(errno));
  FUZZ_CHECK(connect_to_server(fd) == 0, "connect: %s", strerror(errno));
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  size_t sent = 0, got = 0;
  bool shut = false, eof = false;
  char head[9];
  uint64_t deadline = now_ms() + 10000;
  while (!eof) {
    FUZZ_CHECK(now_ms() < deadline, "connection still open after 10 s");
    if (sent < in.n) {
      ssize_t w = send(fd, in.p + sent, in.n - sent, MSG_NOSIGNAL);
      if (w > 0) {
        sent += (size_t)w;
      } else if (w < 0 && errno != EAGAIN) {
        sent = in.n; /* the server closed: it refused the request */
      }
    }
    if (sent == in.n && !shut) {
      shutdown(fd, SHUT_WR);
      shut = true;
    }
    turn();
    char buf[4096];
    ssize_t r = recv(fd, buf, sizeof buf, 0);
    if (r == 0 || (r < 0 && errno != EAGAIN)) {
      eof = true;
    }
    for (ssize_t i = 0; r > 0 && i < r && got < sizeof head; i++) {
      head[got++] = buf[i];
    }
    if (r <= 0 && !eof) {
      struct pollfd p = {.fd = fd, .events = POLLIN};
      poll(&p, 1, 1);
    }
  }
  close(fd);
  FUZZ_CHECK(got == 0 || memcmp(head, "HTTP/1.1 ", got < 9 ? got : 9) == 0,
             "the server wrote something that is not an HTTP/1.1 answer");
  struct httpd_stats st;
  for (int i = 0; i < 1000; i++) {
    turn();
    httpd_stats(server, &st);
    if (st.connections == 0) {
      break;
    }
    usleep(100);
  }
  FUZZ_CHECK(st.connections == 0, "%llu connections left open",
             (unsigned long long)st.connections);
  return 0;
}
