/* HTTP/1.1 server: connections, limits, timeouts, parsing, answers. */
#include "httpd.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "log.h"
#include "picohttpparser.h"
#include "stream.h"
#include "synod.h"
#include "u64map.h"
#include "utf8.h"

#define HTTPD_CONNECTIONS_MAX_DEFAULT 256
/* Connections that streams may not take, so that probes (/healthz is the
 * liveness probe), metrics and plain requests always find room: at least
 * this many, or an eighth of connections_max if more. */
#define HTTPD_STREAMS_RESERVE_MIN 16
#define HTTPD_LINE_MAX_DEFAULT 4096
#define HTTPD_HEAD_MAX_DEFAULT 16384
#define HTTPD_HEADERS_MAX_DEFAULT 64
#define HTTPD_HEADERS_MAX_LIMIT 256
#define HTTPD_BODY_MAX_DEFAULT (1u << 20)
#define HTTPD_REQUEST_TIMEOUT_DEFAULT_MS 5000
#define HTTPD_IDLE_TIMEOUT_DEFAULT_MS 30000
#define HTTPD_OUT_MAX_DEFAULT (64ull << 20)
/* No further pipelined request is read or parsed while a connection has
 * this much queued for its client: a client that sends requests and does
 * not read the answers holds about this much, not out_bytes_max (64 MiB)
 * times the connections. Streams have their own bound (the owner's). */
#define HTTPD_PARSE_PAUSE_BYTES (1u << 20)
#define HTTPD_READ_CHUNK 4096
/* Bad requests logged per second; the rest are counted and summarised. */
#define HTTPD_LOG_PER_SECOND 10

enum conn_state {
  CONN_IDLE,      /* between requests: nothing buffered */
  CONN_READING,   /* part of a request has arrived */
  CONN_HANDLING,  /* handed to the callback, not answered yet */
  CONN_STREAMING, /* answering with a stream (httpd_stream_start) */
  CONN_CLOSING,   /* answered with an error or closing: read nothing */
};

struct conn {
  uv_tcp_t tcp; /* tcp.data = this */
  uv_timer_t timer;
  struct httpd *h;
  enum conn_state state;
  char remote[HTTPD_REMOTE_MAX];
  /* Bytes read and not consumed: the current request, then pipelined
   * ones. in_len <= in_cap <= head_bytes_max + body_bytes_max. */
  char *in;
  size_t in_len;
  size_t in_cap;
  size_t parsed_len;  /* picohttpparser's last_len for the current head */
  size_t request_len; /* head + body of the request being handled */
  uint64_t req_id;    /* the request being handled, or 0 */
  bool keep_alive;    /* the request being handled allows it */
  bool is_head;       /* ... is a HEAD request */
  bool http11;        /* ... is HTTP/1.1 (a stream is chunked) */
  /* A request handled or streaming when the connection closed: told to
   * close_cb once the handles are closed. */
  uint64_t closed_req_id;
  bool want_drain; /* httpd_want_drain: drain_cb below drain_below */
  size_t drain_below;
  uint64_t progress_at; /* uv_now() when a write last completed, or the
                           stream started */
  bool reading;
  bool paused; /* reading and parsing wait: HTTPD_PARSE_PAUSE_BYTES queued */
  bool peer_eof;
  bool close_after_write;
  bool dispatching; /* inside request_cb: httpd_respond must not recurse */
  uint64_t out_bytes;
  uint32_t writes;        /* in flight */
  uint64_t idle_since;    /* uv_now() when it became idle */
  uint64_t request_since; /* uv_now() at the first byte of the request,
                             or at accept until the first request */
  bool served;            /* answered a request: idle means keep-alive */
  bool stream_slot;       /* counted in h->stream_slots (a stream, or a
                             request that claimed one) */
  unsigned handles_open;
  struct conn *prev, *next; /* h->conns */
};

struct httpd {
  struct httpd_options opts;
  char listen_address[128];
  uv_tcp_t listener;
  bool listener_open;
  bool stopping;
  unsigned handles_open;
  struct conn *conns;
  struct u64map requests; /* request id -> conn handling it */
  uint32_t stream_slots;  /* <= opts.streams_max */
  uint64_t request_id_next;
  struct httpd_stats stats;
  uint64_t log_second;
  uint32_t log_count;
  uint64_t log_suppressed;
};

struct write_req {
  uv_write_t req;
  struct conn *c;
  size_t len;
  char data[];
};

static void httpd_maybe_free(struct httpd *h) {
  if (h->stopping && h->handles_open == 0 && h->conns == NULL) {
    u64map_close(&h->requests);
    free(h);
  }
}

/* Logs a refused request, at most HTTPD_LOG_PER_SECOND lines a second: a
 * flood of bad requests must not become a flood of log lines. */
static void httpd_log_refused(struct httpd *h, const struct conn *c, int status,
                              const char *why) {
  uint64_t second = uv_now(h->opts.loop) / 1000;
  if (second != h->log_second) {
    if (h->log_suppressed > 0) {
      log_warn(h->opts.log_module, "%llu more refused requests not logged",
               (unsigned long long)h->log_suppressed);
    }
    h->log_second = second;
    h->log_count = 0;
    h->log_suppressed = 0;
  }
  if (h->log_count++ < HTTPD_LOG_PER_SECOND) {
    log_warn(h->opts.log_module, "%d %s from %s: %s", status,
             httpd_status_text(status), c->remote, why);
  } else {
    h->log_suppressed++;
  }
}

/* ---------------------------------------------------------- connections */

static void conn_handle_closed(uv_handle_t *handle) {
  struct conn *c = handle->data;
  if (--c->handles_open > 0) {
    return;
  }
  struct httpd *h = c->h;
  if (c->closed_req_id != 0 && h->opts.close_cb != NULL && !h->stopping) {
    h->opts.close_cb(h->opts.arg, c->closed_req_id);
  }
  if (c->prev != NULL) {
    c->prev->next = c->next;
  } else {
    h->conns = c->next;
  }
  if (c->next != NULL) {
    c->next->prev = c->prev;
  }
  free(c->in);
  free(c);
  httpd_maybe_free(h);
}

/* The connection's request no longer holds a stream slot. */
static void conn_stream_release(struct conn *c) {
  if (c->stream_slot) {
    c->stream_slot = false;
    c->h->stream_slots--;
  }
}

static void conn_close(struct conn *c) {
  if (uv_is_closing((uv_handle_t *)&c->tcp)) {
    return;
  }
  conn_stream_release(c);
  if (c->req_id != 0) {
    u64map_del(&c->h->requests, c->req_id);
    c->closed_req_id = c->req_id;
    c->req_id = 0;
  }
  if (c->state == CONN_STREAMING) {
    c->h->stats.streams--;
  }
  c->state = CONN_CLOSING;
  c->h->stats.connections--;
  uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
  uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
}

static void conn_timer_cb(uv_timer_t *t);
static void conn_process(struct conn *c);

static void conn_timer_set(struct conn *c, uint32_t ms) {
  uv_timer_start(&c->timer, conn_timer_cb, ms, 0);
}

static void conn_write_cb(uv_write_t *req, int status) {
  struct write_req *w = (struct write_req *)req;
  struct conn *c = w->c;
  struct httpd *h = c->h;
  c->out_bytes -= w->len;
  h->stats.queued_bytes -= w->len;
  c->writes--;
  c->progress_at = uv_now(h->opts.loop);
  free(w);
  if (status != 0 || (c->close_after_write && c->writes == 0)) {
    conn_close(c);
    return;
  }
  if (c->paused && c->out_bytes < HTTPD_PARSE_PAUSE_BYTES && !c->dispatching) {
    c->paused = false;
    conn_process(c); /* goes on with what waited for the answers to drain */
  }
  if (c->want_drain && c->out_bytes < c->drain_below && c->req_id != 0) {
    c->want_drain = false;
    if (h->opts.drain_cb != NULL) {
      h->opts.drain_cb(h->opts.arg, c->req_id);
    }
  }
}

/* Queues the parts (copied, in one write) for the client. Returns 0 or
 * SYNOD_ENOMEM (then the connection is closed). */
static int conn_write_parts(struct conn *c, const uv_buf_t *parts,
                            size_t parts_n) {
  size_t len = 0;
  for (size_t i = 0; i < parts_n; i++) {
    len += parts[i].len;
  }
  struct write_req *w = malloc(sizeof *w + len);
  if (w == NULL || c->out_bytes + len > c->h->opts.out_bytes_max) {
    log_warn(c->h->opts.log_module, "answer to %s: %s; closing", c->remote,
             w == NULL ? "out of memory" : "client does not read its answers");
    free(w);
    conn_close(c);
    return SYNOD_ENOMEM;
  }
  w->c = c;
  w->len = len;
  for (size_t i = 0, at = 0; i < parts_n; at += parts[i].len, i++) {
    if (parts[i].len > 0) {
      memcpy(w->data + at, parts[i].base, parts[i].len);
    }
  }
  uv_buf_t buf = uv_buf_init(w->data, (unsigned)len);
  int rv = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, conn_write_cb);
  if (rv != 0) {
    free(w);
    conn_close(c);
    return SYNOD_ENOMEM;
  }
  c->out_bytes += len;
  c->h->stats.queued_bytes += len;
  c->writes++;
  return 0;
}

static int conn_write(struct conn *c, const char *head, size_t head_len,
                      const void *body, size_t body_len) {
  uv_buf_t parts[2] = {uv_buf_init((char *)head, (unsigned)head_len),
                       uv_buf_init((char *)body, (unsigned)body_len)};
  return conn_write_parts(c, parts, body_len > 0 ? 2 : 1);
}

/* Formats the status line and headers of an answer into out. */
static size_t answer_head(char *out, size_t cap, int status,
                          const char *content_type, const char *headers,
                          size_t len, bool keep_alive) {
  int n = snprintf(out, cap,
                   "HTTP/1.1 %d %s\r\n"
                   "Content-Type: %s\r\n"
                   "Content-Length: %zu\r\n"
                   "Cache-Control: no-store\r\n"
                   "Connection: %s\r\n"
                   "%s\r\n",
                   status, httpd_status_text(status), content_type, len,
                   keep_alive ? "keep-alive" : "close",
                   headers != NULL ? headers : "");
  return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

/* Refuses what the client sent with `status` and closes once the answer
 * is written. */
static void conn_refuse(struct conn *c, int status, const char *why) {
  struct httpd *h = c->h;
  char body[256];
  char head[512];
  int blen = snprintf(body, sizeof body, "{\"error\":\"%s\"}\n", why);
  size_t hlen = answer_head(head, sizeof head, status, "application/json", NULL,
                            (size_t)blen, false);
  h->stats.bad_requests_total++;
  httpd_log_refused(h, c, status, why);
  c->state = CONN_CLOSING;
  c->close_after_write = true;
  uv_read_stop((uv_stream_t *)&c->tcp);
  c->reading = false;
  /* A client that never reads its answer is closed by the timer. */
  conn_timer_set(c, h->opts.request_timeout_ms);
  conn_write(c, head, hlen, body, (size_t)blen);
}

/* A stream's watchdog, every idle_timeout_ms: a client that takes none of
 * the bytes queued to it in that long has stopped reading. */
static void conn_stream_check(struct conn *c) {
  struct httpd *h = c->h;
  uint64_t now = uv_now(h->opts.loop);
  if (c->writes > 0 && now - c->progress_at >= h->opts.idle_timeout_ms) {
    log_warn(h->opts.log_module,
             "stream to %s: %llu bytes queued and none written in %u ms; "
             "closing",
             c->remote, (unsigned long long)c->out_bytes,
             h->opts.idle_timeout_ms);
    conn_close(c);
    return;
  }
  conn_timer_set(c, h->opts.idle_timeout_ms);
}

static void conn_timer_cb(uv_timer_t *t) {
  struct conn *c = t->data;
  switch (c->state) {
  case CONN_IDLE:
    conn_close(c); /* keep-alive ran out; nothing to say */
    return;
  case CONN_READING:
    conn_refuse(c, 408, "request not complete in time");
    return;
  case CONN_HANDLING:
    return; /* the owner answers; no timer runs meanwhile */
  case CONN_STREAMING:
    conn_stream_check(c);
    return;
  case CONN_CLOSING:
    /* After EOF: the answers still queued go out while the client reads
     * them; only one that stopped reading is cut off. */
    if (c->writes > 0 && uv_now(c->h->opts.loop) - c->progress_at <
                             c->h->opts.request_timeout_ms) {
      conn_timer_set(c, c->h->opts.request_timeout_ms);
      return;
    }
    conn_close(c);
    return;
  }
}

/* ------------------------------------------------------------- requests */

static bool token_in(const char *v, size_t len, const char *token) {
  size_t tl = strlen(token);
  for (size_t i = 0; i + tl <= len; i++) {
    bool start = i == 0 || v[i - 1] == ',' || v[i - 1] == ' ';
    bool end = i + tl == len || v[i + tl] == ',' || v[i + tl] == ' ';
    if (start && end && strncasecmp(v + i, token, tl) == 0) {
      return true;
    }
  }
  return false;
}

/* The lines of the head so far, past the request line. */
static size_t head_header_lines(const char *p, size_t len) {
  size_t lines = 0;
  for (const char *end = p + len; (p = memchr(p, '\n', (size_t)(end - p)));
       p++) {
    lines++;
  }
  return lines > 0 ? lines - 1 : 0;
}

/* A head not complete yet: refuses it once it can no longer fit. Returns
 * false if it did. */
static bool conn_check_partial(struct conn *c) {
  const struct httpd_options *o = &c->h->opts;
  const char *nl = memchr(c->in, '\n', c->in_len);
  size_t line = nl != NULL ? (size_t)(nl - c->in) : c->in_len;
  if (line > o->line_bytes_max) {
    conn_refuse(c, 414, "request line too long");
    return false;
  }
  if (c->in_len >= o->head_bytes_max ||
      head_header_lines(c->in, c->in_len) > o->headers_max) {
    conn_refuse(c, 431, "request header fields too large");
    return false;
  }
  return true;
}

/* What the head says about the body and the connection. Returns 0, or
 * the status to refuse the request with (why in *why). */
struct head_info {
  size_t body_len;
  bool keep_alive;
  bool expect_continue;
  bool http11;
};

static int head_inspect(const struct phr_header *hs, size_t n, int minor,
                        struct head_info *hi, const char **why) {
  hi->body_len = 0;
  hi->keep_alive = minor >= 1;
  hi->http11 = minor >= 1;
  hi->expect_continue = false;
  bool have_length = false;
  for (size_t i = 0; i < n; i++) {
    const struct phr_header *x = &hs[i];
    if (x->name == NULL) {
      /* picohttpparser hands a line starting with a space or tab (obs-fold)
       * on as a header without a name. Dropping it would change what the
       * header before it says ("Content-Length: 3" then " 5"); RFC 9112
       * 5.2: reject it with 400. */
      *why = "a header line starts with a space or tab (obsolete line "
             "folding): send each header on one line";
      return 400;
    }
    if (x->name_len == 14 && strncasecmp(x->name, "content-length", 14) == 0) {
      size_t v = 0;
      if (x->value_len == 0 || x->value_len > 18 || have_length) {
        *why = "bad content-length";
        return 400;
      }
      for (size_t k = 0; k < x->value_len; k++) {
        if (!isdigit((unsigned char)x->value[k])) {
          *why = "bad content-length";
          return 400;
        }
        v = v * 10 + (size_t)(x->value[k] - '0');
      }
      hi->body_len = v;
      have_length = true;
    } else if (x->name_len == 17 &&
               strncasecmp(x->name, "transfer-encoding", 17) == 0) {
      *why = "chunked request bodies are not supported; send content-length";
      return 501;
    } else if (x->name_len == 10 &&
               strncasecmp(x->name, "connection", 10) == 0) {
      if (token_in(x->value, x->value_len, "close")) {
        hi->keep_alive = false;
      } else if (token_in(x->value, x->value_len, "keep-alive")) {
        hi->keep_alive = true;
      }
    } else if (x->name_len == 6 && strncasecmp(x->name, "expect", 6) == 0) {
      hi->expect_continue = true;
    }
  }
  return 0;
}

static void conn_dispatch(struct conn *c, const char *method, size_t mlen,
                          const char *target, size_t tlen,
                          const struct phr_header *hs, size_t hn,
                          size_t head_len, const struct head_info *hi) {
  struct httpd *h = c->h;
  uv_timer_stop(&c->timer);
  c->state = CONN_HANDLING;
  c->req_id = ++h->request_id_next;
  if (u64map_put(&h->requests, c->req_id, c) != 0) {
    c->req_id = 0;
    conn_close(c);
    return;
  }
  c->request_len = head_len + hi->body_len;
  c->keep_alive = hi->keep_alive;
  c->http11 = hi->http11;
  c->is_head = mlen == 4 && memcmp(method, "HEAD", 4) == 0;
  struct httpd_request r = {.id = c->req_id,
                            .method = method,
                            .method_len = mlen,
                            .path = target,
                            .path_len = tlen,
                            .query = "",
                            .headers = (const struct httpd_header *)hs,
                            .headers_n = hn,
                            .body = (const uint8_t *)c->in + head_len,
                            .body_len = hi->body_len,
                            .remote = c->remote};
  const char *q = memchr(target, '?', tlen);
  if (q != NULL) {
    r.path_len = (size_t)(q - target);
    r.query = q + 1;
    r.query_len = tlen - r.path_len - 1;
  }
  h->stats.requests_total++;
  c->dispatching = true;
  h->opts.request_cb(h->opts.arg, &r);
  c->dispatching = false;
}

/* Parses the request at the start of the buffer. Returns true if it was
 * handed to the callback, false if more bytes are needed or it was
 * refused. */
static bool conn_parse(struct conn *c) {
  const struct httpd_options *o = &c->h->opts;
  const char *method, *target;
  size_t mlen, tlen;
  int minor;
  struct phr_header hs[HTTPD_HEADERS_MAX_LIMIT];
  size_t hn = o->headers_max;
  int rv = phr_parse_request(c->in, c->in_len, &method, &mlen, &target, &tlen,
                             &minor, hs, &hn, c->parsed_len);
  if (rv == -2) {
    c->parsed_len = c->in_len;
    conn_check_partial(c);
    return false;
  }
  if (rv == -1) {
    bool many = head_header_lines(c->in, c->in_len) > o->headers_max;
    conn_refuse(c, many ? 431 : 400,
                many ? "too many header fields" : "malformed request");
    return false;
  }
  c->parsed_len = 0; /* parsed whole again when the body is in */
  const char *nl = memchr(c->in, '\n', (size_t)rv);
  if (nl != NULL && (size_t)(nl - c->in) > o->line_bytes_max) {
    conn_refuse(c, 414, "request line too long");
    return false;
  }
  if ((size_t)rv > o->head_bytes_max) {
    conn_refuse(c, 431, "request header fields too large");
    return false;
  }
  struct head_info hi;
  const char *why = NULL;
  int status = head_inspect(hs, hn, minor, &hi, &why);
  if (status == 0 && hi.body_len > o->body_bytes_max) {
    status = 413;
    why = "request body too large";
  }
  if (status != 0) {
    conn_refuse(c, status, why);
    return false;
  }
  if (c->in_len < (size_t)rv + hi.body_len) {
    if (hi.expect_continue && c->in_len == (size_t)rv) {
      static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
      conn_write(c, cont, sizeof cont - 1, NULL, 0);
    }
    return false;
  }
  conn_dispatch(c, method, mlen, target, tlen, hs, hn, (size_t)rv, &hi);
  return true;
}

static void conn_go_idle(struct conn *c) {
  c->state = CONN_IDLE;
  c->idle_since = uv_now(c->h->opts.loop);
  conn_timer_set(c, c->h->opts.idle_timeout_ms);
}

static size_t conn_in_max(const struct conn *c) {
  return (size_t)c->h->opts.head_bytes_max + c->h->opts.body_bytes_max;
}

static void conn_alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);
static void conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* Reads while there is room and a reason to: not while the answers
 * queued are over HTTPD_PARSE_PAUSE_BYTES (but a stream reads on, to
 * see its client go). */
static void conn_read_update(struct conn *c) {
  bool full =
      c->state != CONN_STREAMING && c->out_bytes >= HTTPD_PARSE_PAUSE_BYTES;
  bool want = c->state != CONN_CLOSING && !c->peer_eof &&
              c->in_len < conn_in_max(c) && !full;
  c->paused = c->paused || (full && c->state != CONN_CLOSING);
  if (want && !c->reading) {
    c->reading =
        uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb) == 0;
  } else if (!want && c->reading) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
  }
}

/* The client sent its last byte (EOF): closes once the answers queued
 * are written. A client may half-close (shutdown(SHUT_WR)) after
 * pipelining its requests and still read every answer. */
static void conn_finish(struct conn *c) {
  c->state = CONN_CLOSING;
  c->close_after_write = true;
  if (c->writes == 0) {
    conn_close(c);
    return;
  }
  /* A client that never reads what is queued is closed by the timer. */
  conn_timer_set(c, c->h->opts.request_timeout_ms);
}

/* Serves the requests in the buffer, one at a time. */
static void conn_process(struct conn *c) {
  while (c->state == CONN_IDLE || c->state == CONN_READING) {
    if (c->in_len == 0) {
      if (c->peer_eof) {
        conn_finish(c);
        return;
      }
      if (c->state != CONN_IDLE) {
        conn_go_idle(c);
      }
      break;
    }
    if (c->state == CONN_IDLE && c->out_bytes >= HTTPD_PARSE_PAUSE_BYTES) {
      c->paused = true; /* conn_write_cb resumes once the client reads */
      break;
    }
    if (c->state == CONN_IDLE) {
      c->state = CONN_READING;
      c->request_since = c->served ? uv_now(c->h->opts.loop) : c->request_since;
      conn_timer_set(c, c->h->opts.request_timeout_ms);
    }
    if (!conn_parse(c)) {
      if (c->state == CONN_READING && c->peer_eof) {
        conn_finish(c); /* the rest of the request will never come */
        return;
      }
      break;
    }
  }
  conn_read_update(c);
}

static void conn_alloc_cb(uv_handle_t *handle, size_t suggested,
                          uv_buf_t *buf) {
  (void)suggested;
  struct conn *c = handle->data;
  size_t max = conn_in_max(c);
  if (c->in_cap - c->in_len < HTTPD_READ_CHUNK && c->in_cap < max) {
    size_t cap = c->in_cap ? c->in_cap * 2 : HTTPD_READ_CHUNK;
    cap =
        cap < c->in_len + HTTPD_READ_CHUNK ? c->in_len + HTTPD_READ_CHUNK : cap;
    cap = cap > max ? max : cap;
    char *in = realloc(c->in, cap);
    if (in != NULL) {
      c->in = in;
      c->in_cap = cap;
    }
  }
  *buf = uv_buf_init(c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

static void conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  struct conn *c = s->data;
  if (nread == UV_ENOBUFS) {
    uv_read_stop(s); /* full: resumes once a request is consumed */
    c->reading = false;
    return;
  }
  if (nread == UV_EOF) {
    c->peer_eof = true;
    uv_read_stop(s);
    c->reading = false;
    if (c->state == CONN_STREAMING) {
      conn_close(c); /* the client went away: its stream ends at once */
    } else if (c->state == CONN_IDLE || c->state == CONN_READING) {
      conn_process(c);
    }
    /* A request being handled is answered, and the requests read after
     * it too (conn_answered), before the connection closes: the client
     * may have half-closed. One that closed altogether makes the write
     * fail, which closes the connection. */
    return;
  }
  if (nread < 0) {
    conn_close(c);
    return;
  }
  if (c->state == CONN_CLOSING) {
    return;
  }
  c->in_len += (size_t)nread;
  if (c->state == CONN_IDLE || c->state == CONN_READING) {
    conn_process(c);
  } else {
    conn_read_update(c); /* pipelined: waits until this one is answered */
  }
}

/* ------------------------------------------------------------ answering */

/* The request being handled is answered (its answer queued): the
 * connection goes on with the next one, or closes once it is written. */
static void conn_answered(struct conn *c, bool keep) {
  struct httpd *h = c->h;
  u64map_del(&h->requests, c->req_id);
  c->req_id = 0;
  c->want_drain = false;
  conn_stream_release(c);
  memmove(c->in, c->in + c->request_len, c->in_len - c->request_len);
  c->in_len -= c->request_len;
  c->request_len = 0;
  if (!keep) {
    c->state = CONN_CLOSING;
    c->close_after_write = true;
    conn_read_update(c);
    if (c->writes == 0) {
      conn_close(c);
      return;
    }
    conn_timer_set(c, h->opts.request_timeout_ms);
    return;
  }
  c->served = true;
  conn_go_idle(c);
  if (!c->dispatching) {
    conn_process(c);
  }
}

/* After EOF, the request being handled is the last one if no byte of
 * another follows it: its answer says "Connection: close". The ones
 * before it keep the connection, to answer the rest. */
static bool conn_last_request(const struct conn *c) {
  return c->peer_eof && c->in_len <= c->request_len;
}

int httpd_respond(struct httpd *h, uint64_t id, int status,
                  const char *content_type, const char *headers,
                  const void *body, size_t len) {
  struct conn *c = u64map_get(&h->requests, id);
  if (c == NULL || c->state == CONN_STREAMING) {
    return SYNOD_ENOTFOUND;
  }
  bool keep = c->keep_alive && !h->stopping && !conn_last_request(c);
  char head[1024];
  size_t hlen =
      answer_head(head, sizeof head, status, content_type, headers, len, keep);
  if (conn_write(c, head, hlen, c->is_head ? NULL : body,
                 c->is_head ? 0 : len) != 0) {
    return SYNOD_ENOMEM;
  }
  conn_answered(c, keep);
  return 0;
}

/* ------------------------------------------------------------- streams */

int httpd_stream_claim(struct httpd *h, uint64_t id, char *errmsg) {
  struct conn *c = u64map_get(&h->requests, id);
  if (c == NULL) {
    errmsg_set(errmsg, "http: request %llu is answered or gone",
               (unsigned long long)id);
    return SYNOD_ENOTFOUND;
  }
  if (c->stream_slot) {
    return 0;
  }
  if (h->stream_slots >= h->opts.streams_max) {
    errmsg_set(errmsg,
               "%u event streams are open here, at most %u (streams_max: "
               "of %u connections, %u are kept for other requests)",
               h->stream_slots, h->opts.streams_max, h->opts.connections_max,
               h->opts.connections_max - h->opts.streams_max);
    httpd_log_refused(h, c, 503, "event streams at their limit");
    return SYNOD_EBUSY;
  }
  c->stream_slot = true;
  h->stream_slots++;
  return 0;
}

int httpd_stream_start(struct httpd *h, uint64_t id, int status,
                       const char *content_type, const char *headers) {
  char errmsg[SYNOD_ERRMSG_MAX];
  struct conn *c = u64map_get(&h->requests, id);
  if (c == NULL) {
    return SYNOD_ENOTFOUND;
  }
  if (c->is_head || c->state == CONN_STREAMING) {
    return SYNOD_EINVAL;
  }
  if (c->peer_eof) {
    /* Its client left while the start was prepared (a ReadIndex round):
     * a stream nobody reads would hold its slot until a write fails. */
    conn_close(c);
    return SYNOD_ENOTFOUND;
  }
  int rv = httpd_stream_claim(h, id, errmsg);
  if (rv != 0) {
    return rv;
  }
  bool keep = c->http11 && c->keep_alive && !c->peer_eof && !h->stopping;
  char head[1024];
  int n =
      snprintf(head, sizeof head,
               "HTTP/1.1 %d %s\r\n"
               "Content-Type: %s\r\n"
               "Cache-Control: no-store\r\n"
               "%s"
               "Connection: %s\r\n"
               "%s\r\n",
               status, httpd_status_text(status), content_type,
               c->http11 ? "Transfer-Encoding: chunked\r\n" : "",
               keep ? "keep-alive" : "close", headers != NULL ? headers : "");
  size_t hlen = n < 0 ? 0 : (size_t)n < sizeof head ? (size_t)n : 0;
  if (hlen == 0) {
    return SYNOD_EINVAL; /* headers too long for the head */
  }
  c->keep_alive = keep;
  c->state = CONN_STREAMING;
  c->progress_at = uv_now(h->opts.loop);
  h->stats.streams++;
  conn_timer_set(c, h->opts.idle_timeout_ms);
  return conn_write(c, head, hlen, NULL, 0);
}

static struct conn *stream_find(const struct httpd *h, uint64_t id) {
  struct conn *c = u64map_get(&h->requests, id);
  return c != NULL && c->state == CONN_STREAMING ? c : NULL;
}

int httpd_stream_write(struct httpd *h, uint64_t id, const void *data,
                       size_t len) {
  struct conn *c = stream_find(h, id);
  if (c == NULL) {
    return SYNOD_ENOTFOUND;
  }
  if (len == 0) {
    return 0; /* a chunk of 0 bytes would end the stream */
  }
  char size[24];
  int n = snprintf(size, sizeof size, "%zx\r\n", len);
  uv_buf_t parts[3] = {uv_buf_init(size, (unsigned)n),
                       uv_buf_init((char *)data, (unsigned)len),
                       uv_buf_init((char *)"\r\n", 2)};
  return c->http11 ? conn_write_parts(c, parts, 3)
                   : conn_write_parts(c, parts + 1, 1);
}

int httpd_stream_end(struct httpd *h, uint64_t id) {
  struct conn *c = stream_find(h, id);
  if (c == NULL) {
    return SYNOD_ENOTFOUND;
  }
  static const char last[] = "0\r\n\r\n";
  h->stats.streams--;
  c->state = CONN_HANDLING;
  if (c->http11 && conn_write(c, last, sizeof last - 1, NULL, 0) != 0) {
    return 0; /* closed: nothing more to end */
  }
  conn_answered(c, c->keep_alive && !h->stopping && !conn_last_request(c));
  return 0;
}

size_t httpd_queued_bytes(const struct httpd *h, uint64_t id) {
  const struct conn *c = u64map_get(&h->requests, id);
  return c != NULL ? c->out_bytes : SIZE_MAX;
}

void httpd_want_drain(struct httpd *h, uint64_t id, size_t below) {
  struct conn *c = u64map_get(&h->requests, id);
  if (c != NULL) {
    c->want_drain = true;
    c->drain_below = below;
  }
}

/* Escapes s for a JSON string into out (cap bytes, NUL-terminated). */
static void json_escape(const char *s, char *out, size_t cap) {
  size_t k = 0;
  for (; *s != '\0' && k + 7 < cap; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\') {
      out[k++] = '\\';
      out[k++] = (char)ch;
    } else if (ch < 0x20) {
      k += (size_t)snprintf(out + k, cap - k, "\\u%04x", ch);
    } else {
      out[k++] = (char)ch;
    }
  }
  out[k] = '\0';
}

int httpd_respond_error(struct httpd *h, uint64_t id, int status,
                        const char *fmt, ...) {
  char msg[512], esc[1024], body[1100];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  json_escape(msg, esc, sizeof esc);
  /* JSON is UTF-8: msg may quote a client's bytes, or be cut (by
   * vsnprintf, by json_escape) in the middle of a character. */
  utf8_sanitize(esc, strlen(esc));
  int n = snprintf(body, sizeof body, "{\"error\":\"%s\"}\n", esc);
  return httpd_respond(h, id, status, "application/json", NULL, body,
                       (size_t)n < sizeof body ? (size_t)n : sizeof body - 1);
}

/* ---------------------------------------------------------- the listener */

/* At the cap: makes room by closing the connection that has been idle
 * longest, or else the one whose request has been arriving longest (a
 * client that sends slowly must not keep others out). Connections whose
 * request is being handled are kept. Returns false if none could go. */
static bool httpd_evict(struct httpd *h, const struct conn *except) {
  struct conn *idle = NULL, *slow = NULL, *gone = NULL;
  for (struct conn *c = h->conns; c != NULL; c = c->next) {
    if (c == except) {
      continue;
    }
    /* Its client sent EOF while its request was handled: half-closed and
     * waiting for the answer, or gone; the last to go. */
    if (c->state == CONN_HANDLING && c->peer_eof && gone == NULL) {
      gone = c;
    }
    bool fresh = c->state == CONN_IDLE && !c->served;
    if (c->state == CONN_IDLE && c->served && c->in_len == 0 &&
        c->writes == 0 && (idle == NULL || c->idle_since < idle->idle_since)) {
      idle = c;
    } else if ((c->state == CONN_READING || fresh) &&
               (slow == NULL || c->request_since < slow->request_since)) {
      slow = c;
    }
  }
  struct conn *victim = idle != NULL ? idle : slow != NULL ? slow : gone;
  if (victim != NULL) {
    log_debug(h->opts.log_module, "%u connections: closing %s (%s)",
              h->opts.connections_max, victim->remote,
              victim == idle   ? "idle longest"
              : victim == slow ? "slowest request"
                               : "its client sent EOF");
    conn_close(victim);
  }
  return victim != NULL;
}

static void httpd_refuse_full(struct httpd *h, struct conn *c) {
  static const char body[] = "{\"error\":\"too many connections\"}\n";
  char head[256];
  size_t hlen = answer_head(head, sizeof head, 503, "application/json", NULL,
                            sizeof body - 1, false);
  h->stats.connections_refused++;
  httpd_log_refused(h, c, 503, "too many connections");
  c->state = CONN_CLOSING;
  c->close_after_write = true;
  conn_timer_set(c, h->opts.request_timeout_ms);
  conn_write(c, head, hlen, body, sizeof body - 1);
}

static void httpd_accept_cb(uv_stream_t *server, int status) {
  struct httpd *h = server->data;
  if (status != 0) {
    log_warn(h->opts.log_module, "accept on %s: %s", h->listen_address,
             uv_strerror(status));
    return;
  }
  struct conn *c = calloc(1, sizeof *c);
  if (c == NULL) {
    log_error(h->opts.log_module, "accept on %s: out of memory",
              h->listen_address);
    return;
  }
  c->h = h;
  uv_tcp_init(h->opts.loop, &c->tcp);
  uv_timer_init(h->opts.loop, &c->timer);
  c->tcp.data = c->timer.data = c;
  c->handles_open = 2;
  c->next = h->conns;
  if (h->conns != NULL) {
    h->conns->prev = c;
  }
  h->conns = c;
  h->stats.connections++;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    conn_close(c);
    return;
  }
  struct sockaddr_storage sa;
  int salen = sizeof sa;
  snprintf(c->remote, sizeof c->remote, "?");
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&sa, &salen) == 0) {
    stream_sockaddr_format(&sa, c->remote, sizeof c->remote);
  }
  h->stats.connections_total++;
  if (h->stats.connections > h->opts.connections_max && !httpd_evict(h, c)) {
    httpd_refuse_full(h, c);
    return;
  }
  c->request_since = uv_now(h->opts.loop);
  conn_go_idle(c);
  conn_read_update(c);
}

static void httpd_listener_closed(uv_handle_t *handle) {
  struct httpd *h = handle->data;
  h->handles_open--;
  httpd_maybe_free(h);
}

static void httpd_options_default(struct httpd_options *o) {
  if (o->log_module == NULL) {
    o->log_module = "http";
  }
#define HTTPD_DEFAULT(field, value)                                            \
  if (o->field == 0) {                                                         \
    o->field = value;                                                          \
  }
  HTTPD_DEFAULT(connections_max, HTTPD_CONNECTIONS_MAX_DEFAULT);
  HTTPD_DEFAULT(line_bytes_max, HTTPD_LINE_MAX_DEFAULT);
  HTTPD_DEFAULT(head_bytes_max, HTTPD_HEAD_MAX_DEFAULT);
  HTTPD_DEFAULT(headers_max, HTTPD_HEADERS_MAX_DEFAULT);
  HTTPD_DEFAULT(body_bytes_max, HTTPD_BODY_MAX_DEFAULT);
  HTTPD_DEFAULT(request_timeout_ms, HTTPD_REQUEST_TIMEOUT_DEFAULT_MS);
  HTTPD_DEFAULT(idle_timeout_ms, HTTPD_IDLE_TIMEOUT_DEFAULT_MS);
  HTTPD_DEFAULT(out_bytes_max, HTTPD_OUT_MAX_DEFAULT);
#undef HTTPD_DEFAULT
  /* Streams are never evicted: without a reserve, connections_max idle
   * streams would leave every new client a 503, the liveness probe too.
   * A cap too small for the reserve gives streams half of it. */
  uint32_t cap = o->connections_max;
  uint32_t reserve =
      cap / 8 > HTTPD_STREAMS_RESERVE_MIN ? cap / 8 : HTTPD_STREAMS_RESERVE_MIN;
  uint32_t streams = cap > 2 * reserve ? cap - reserve : (cap + 1) / 2;
  if (o->streams_max == 0 || o->streams_max > streams) {
    o->streams_max = streams;
  }
  if (o->headers_max > HTTPD_HEADERS_MAX_LIMIT) {
    o->headers_max = HTTPD_HEADERS_MAX_LIMIT;
  }
}

int httpd_start(const struct httpd_options *opts, struct httpd **out,
                char *errmsg) {
  if (opts->request_cb == NULL || opts->listen_address == NULL) {
    errmsg_set(errmsg, "http: no address or no request callback");
    return SYNOD_EINVAL;
  }
  struct httpd *h = calloc(1, sizeof *h);
  if (h == NULL) {
    errmsg_set(errmsg, "http: out of memory");
    return SYNOD_ENOMEM;
  }
  h->opts = *opts;
  httpd_options_default(&h->opts);
  u64map_init(&h->requests);
  int rv = stream_listen(opts->loop, &h->listener, h->opts.log_module,
                         opts->listen_address, 128, httpd_accept_cb,
                         h->listen_address, sizeof h->listen_address, errmsg);
  h->listener.data = h;
  h->handles_open = 1;
  h->listener_open = true;
  if (rv != 0) {
    httpd_stop(h);
    return rv;
  }
  *out = h;
  return 0;
}

void httpd_stop(struct httpd *h) {
  if (h == NULL || h->stopping) {
    return;
  }
  h->stopping = true;
  for (struct conn *c = h->conns; c != NULL; c = c->next) {
    conn_close(c);
  }
  if (h->listener_open) {
    h->listener_open = false;
    uv_close((uv_handle_t *)&h->listener, httpd_listener_closed);
  }
  httpd_maybe_free(h);
}

const char *httpd_listen_address(const struct httpd *h) {
  return h->listen_address;
}

void httpd_stats(const struct httpd *h, struct httpd_stats *out) {
  *out = h->stats;
}

/* -------------------------------------------------------------- helpers */

const char *httpd_header(const struct httpd_request *req, const char *name,
                         size_t *len) {
  size_t nl = strlen(name);
  for (size_t i = 0; i < req->headers_n; i++) {
    const struct httpd_header *x = &req->headers[i];
    if (x->name != NULL && x->name_len == nl &&
        strncasecmp(x->name, name, nl) == 0) {
      *len = x->value_len;
      return x->value;
    }
  }
  return NULL;
}

bool httpd_method_is(const struct httpd_request *req, const char *m) {
  size_t ml = strlen(m);
  if (req->method_len == ml && memcmp(req->method, m, ml) == 0) {
    return true;
  }
  return strcmp(m, "GET") == 0 && req->method_len == 4 &&
         memcmp(req->method, "HEAD", 4) == 0;
}

static int hex_value(char ch) {
  if (ch >= '0' && ch <= '9') {
    return ch - '0';
  }
  ch = (char)tolower((unsigned char)ch);
  return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Percent-decodes src[0..len) into out (cap bytes, NUL-terminated); with
 * `plus`, '+' is a space (a query's values). A bad escape or a NUL byte
 * is reported before a value too long for out: the whole value is read. */
static enum httpd_query url_decode(const char *src, size_t len, bool plus,
                                   char *out, size_t cap) {
  size_t k = 0;
  bool too_long = cap == 0;
  for (size_t i = 0; i < len; i++) {
    char ch = plus && src[i] == '+' ? ' ' : src[i];
    if (ch == '%') {
      int hi = i + 2 < len ? hex_value(src[i + 1]) : -1;
      int lo = hi >= 0 ? hex_value(src[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        return HTTPD_QUERY_ESCAPE;
      }
      ch = (char)(hi << 4 | lo);
      i += 2;
    }
    if (ch == '\0') {
      return HTTPD_QUERY_NUL;
    }
    if (k + 1 >= cap) {
      too_long = true;
      continue;
    }
    out[k++] = ch;
  }
  if (cap > 0) {
    out[k] = '\0';
  }
  return too_long ? HTTPD_QUERY_TOO_LONG : HTTPD_QUERY_OK;
}

bool httpd_url_decode(const char *src, size_t len, char *out, size_t cap) {
  return url_decode(src, len, false, out, cap) == HTTPD_QUERY_OK;
}

/* The parameter `key` of the query from p on: its value (not decoded) in
 * *v, *vl, and where the parameter ends in *next. False if absent. */
static bool query_find_from(const char *p, const char *end, const char *key,
                            const char **v, size_t *vl, const char **next) {
  size_t kl = strlen(key);
  while (p < end) {
    const char *amp = memchr(p, '&', (size_t)(end - p));
    const char *stop = amp != NULL ? amp : end;
    const char *eq = memchr(p, '=', (size_t)(stop - p));
    const char *kend = eq != NULL ? eq : stop;
    if ((size_t)(kend - p) == kl && memcmp(p, key, kl) == 0) {
      *v = eq != NULL ? eq + 1 : stop;
      *vl = (size_t)(stop - *v);
      *next = stop;
      return true;
    }
    p = stop + 1;
  }
  return false;
}

bool httpd_query_raw(const struct httpd_request *req, const char *key,
                     const char **v, size_t *vl) {
  const char *next;
  return query_find_from(req->query, req->query + req->query_len, key, v, vl,
                         &next);
}

bool httpd_query_has(const struct httpd_request *req, const char *key) {
  const char *v;
  size_t vl;
  return httpd_query_raw(req, key, &v, &vl);
}

enum httpd_query httpd_query_value(const struct httpd_request *req,
                                   const char *key, char *out, size_t cap) {
  const char *v, *next, *v2;
  size_t vl, vl2;
  const char *end = req->query + req->query_len;
  if (cap > 0) {
    out[0] = '\0';
  }
  if (!query_find_from(req->query, end, key, &v, &vl, &next)) {
    return HTTPD_QUERY_ABSENT;
  }
  if (query_find_from(next, end, key, &v2, &vl2, &next)) {
    return HTTPD_QUERY_REPEATED;
  }
  enum httpd_query q = url_decode(v, vl, true, out, cap);
  if (q != HTTPD_QUERY_OK && cap > 0) {
    out[0] = '\0'; /* never half a value */
  }
  return q;
}

bool httpd_query_get(const struct httpd_request *req, const char *key,
                     char *out, size_t cap) {
  return httpd_query_value(req, key, out, cap) == HTTPD_QUERY_OK;
}

const char *httpd_status_text(int status) {
  switch (status) {
  case 100:
    return "Continue";
  case 200:
    return "OK";
  case 204:
    return "No Content";
  case 301:
    return "Moved Permanently";
  case 307:
    return "Temporary Redirect";
  case 400:
    return "Bad Request";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 408:
    return "Request Timeout";
  case 409:
    return "Conflict";
  case 410:
    return "Gone";
  case 412:
    return "Precondition Failed";
  case 413:
    return "Content Too Large";
  case 414:
    return "URI Too Long";
  case 429:
    return "Too Many Requests";
  case 431:
    return "Request Header Fields Too Large";
  case 500:
    return "Internal Server Error";
  case 501:
    return "Not Implemented";
  case 503:
    return "Service Unavailable";
  case 504:
    return "Gateway Timeout";
  default:
    return status < 400 ? "OK" : status < 500 ? "Bad Request" : "Server Error";
  }
}
