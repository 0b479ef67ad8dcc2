/* HTTP/1.1 server on a libuv loop: accepts connections, parses requests
 * with picohttpparser (from Debian's libh2o), enforces the limits below,
 * and hands each whole request to one callback. The owner answers it,
 * at once or later (after a ReadIndex round), by its id.
 *
 * Limits, each answered with its status and a log line naming the remote
 * address, after which the connection is closed:
 *   - a request line longer than line_bytes_max: 414;
 *   - a request head (line and headers) longer than head_bytes_max, or
 *     more than headers_max headers: 431;
 *   - a body longer than body_bytes_max: 413; a chunked body: 501;
 *   - bytes that are not HTTP/1.x, or a header line folded onto the one
 *     before it (obs-fold, RFC 9112 5.2): 400;
 *   - a request not complete within request_timeout_ms of its first byte
 *     (a client sending a byte a second): 408;
 *   - no new request within idle_timeout_ms on a keep-alive connection:
 *     closed without an answer;
 *   - a client that does not read its answers (out_bytes_max queued, or
 *     nothing written for request_timeout_ms): closed; and while 1 MiB
 *     of answers is queued to a connection, its next pipelined requests
 *     are neither read nor parsed (a stream is bounded by its owner).
 * At most connections_max connections: when one more arrives, the idle
 * keep-alive connection that waited longest is closed to make room, or
 * else the one whose request has been arriving longest (counted from its
 * accept for a connection that has not sent a whole request yet), so
 * slow clients cannot keep others out, or else one whose client sent EOF
 * while its request was handled; if every other connection has a request
 * being handled, the new one gets 503 and is closed.
 *
 * EOF from a client ends what it sends, not what it reads (it may have
 * half-closed after pipelining): the requests already read are answered
 * and the connection closes once their answers are written (and while
 * the client reads them: a client that stops reading for
 * request_timeout_ms is cut off). A stream's EOF closes it at once (its
 * client went away), also one whose start was still being prepared.
 * (Closing leaves what the kernel still holds for the client to the
 * kernel, which may drop a slow reader's last megabytes.)
 *
 * One request per connection is served at a time; pipelined requests wait
 * in the buffer until the answer to the one before is queued. Every
 * function runs on the loop's thread.
 *
 * Streams (Server-Sent Events): an answer may instead be a stream, opened
 * by httpd_stream_start (at most streams_max at once, fewer than
 * connections_max: see httpd_stream_claim), written piece by piece (chunked
 * transfer coding for HTTP/1.1; for HTTP/1.0 the body runs until the connection
 * closes) and ended by httpd_stream_end. A streaming connection is not idle:
 * neither the keep-alive timeout nor eviction at the cap closes it. It is
 * closed when its client closes or a write fails (close_cb tells the
 * owner), or when bytes have been queued to it and none could be written
 * for idle_timeout_ms (a client that stopped reading). The owner bounds
 * what it queues with httpd_queued_bytes and httpd_want_drain. */
#ifndef SYNOD_HTTPD_H
#define SYNOD_HTTPD_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define HTTPD_REMOTE_MAX 64

struct httpd;

struct httpd_header {
  const char *name; /* not NUL-terminated */
  size_t name_len;
  const char *value; /* not NUL-terminated */
  size_t value_len;
};

/* A whole request. Every pointer borrows the connection's buffer and is
 * valid only until the callback returns: copy what an answer given later
 * needs. `path` and `query` are the target split at '?', not decoded. */
struct httpd_request {
  uint64_t id; /* never reused: answers to a closed connection are dropped */
  const char *method;
  size_t method_len;
  const char *path;
  size_t path_len;
  const char *query; /* after '?', or "" */
  size_t query_len;
  const struct httpd_header *headers;
  size_t headers_n;
  const uint8_t *body;
  size_t body_len;
  const char *remote; /* "ip:port" of the client */
};

/* A request arrived; answer it with httpd_respond (now or later). */
typedef void (*httpd_request_cb)(void *arg, const struct httpd_request *req);

/* Request `id` was not answered (or its stream not ended) when its
 * connection closed: the client went away, a write failed, or a limit
 * closed it. Runs from a libuv close callback, never inside an httpd_*
 * call, and not after httpd_stop. */
typedef void (*httpd_close_cb)(void *arg, uint64_t id);

/* Fewer bytes than httpd_want_drain's mark are queued to request `id`'s
 * connection now. Runs from a libuv write callback. */
typedef void (*httpd_drain_cb)(void *arg, uint64_t id);

struct httpd_options {
  uv_loop_t *loop;
  const char *listen_address; /* "ip:port"; port 0 picks one */
  const char *log_module;     /* log lines' module [http] */
  uint32_t connections_max;   /* [256] */
  /* Streams at once: at most connections_max less a reserve of 16, or
   * of an eighth of connections_max if more (half the cap when it is too
   * small for that) [the most allowed: 224 of 256]. */
  uint32_t streams_max;
  uint32_t line_bytes_max;     /* request line [4096] */
  uint32_t head_bytes_max;     /* request line and headers [16384] */
  uint32_t headers_max;        /* [64] */
  uint32_t body_bytes_max;     /* [1 MiB] */
  uint32_t request_timeout_ms; /* first byte to whole request [5000] */
  uint32_t idle_timeout_ms;    /* keep-alive wait for the next [30000] */
  uint64_t out_bytes_max;      /* queued answers per connection [64 MiB] */
  httpd_request_cb request_cb;
  httpd_close_cb close_cb; /* optional */
  httpd_drain_cb drain_cb; /* optional */
  void *arg;
};

/* Binds and listens. Returns 0, SYNOD_EINVAL (bad address, no callback)
 * or SYNOD_EIO (bind/listen failed); errmsg (SYNOD_ERRMSG_MAX bytes)
 * says why, with the address. */
int httpd_start(const struct httpd_options *opts, struct httpd **out,
                char *errmsg);

/* Closes the listener and every connection; requests not yet answered
 * are dropped. The memory is freed once libuv has closed the handles
 * (run the loop until it is idle). Accepts NULL. */
void httpd_stop(struct httpd *h);

/* The bound "ip:port" (the real port when 0 was asked for). */
const char *httpd_listen_address(const struct httpd *h);

/* Answers request `id` with `status`, a body of `len` bytes (copied) of
 * content_type, and `headers` (extra header lines, each ending in
 * "\r\n", or NULL). Content-Length, Cache-Control: no-store and the
 * Connection header are added. A HEAD request gets the headers only.
 * Returns 0, SYNOD_ENOTFOUND (the request was answered already or its
 * connection is gone: nothing is sent) or SYNOD_ENOMEM (the connection
 * is closed). */
int httpd_respond(struct httpd *h, uint64_t id, int status,
                  const char *content_type, const char *headers,
                  const void *body, size_t len);

/* Answers with a JSON body `{"error":"<message>"}` built from fmt. Same
 * returns as httpd_respond. */
int httpd_respond_error(struct httpd *h, uint64_t id, int status,
                        const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Claims one of the streams_max stream slots for request `id`, before
 * the owner starts the work its stream needs (a subscription): streams
 * are never evicted, so they may not take every connection; the slots
 * left keep room for probes and plain requests. The slot is the
 * request's until it is answered, its stream ends or its connection
 * closes; claiming again is a no-op. Returns 0, SYNOD_ENOTFOUND (no such
 * request) or SYNOD_EBUSY (every slot taken: errmsg, SYNOD_ERRMSG_MAX
 * bytes, names the limit; answer the request, with 503). */
int httpd_stream_claim(struct httpd *h, uint64_t id, char *errmsg);

/* Starts a streamed answer to request `id`: the status line and headers
 * (content_type, `headers` as for httpd_respond, Cache-Control: no-store)
 * without a length. Not for a HEAD request (answer that with
 * httpd_respond). Claims a stream slot if the request has none. Returns
 * 0, SYNOD_ENOTFOUND (answered already, or the connection is gone),
 * SYNOD_EINVAL (a HEAD request, or already streaming), SYNOD_EBUSY (no
 * stream slot: nothing was sent, answer it) or SYNOD_ENOMEM (the
 * connection is closed). */
int httpd_stream_start(struct httpd *h, uint64_t id, int status,
                       const char *content_type, const char *headers);

/* Queues len bytes (copied) of the stream of request `id`; 0 bytes is a
 * no-op. Returns 0, SYNOD_ENOTFOUND (no such stream: ended, or its
 * connection is gone) or SYNOD_ENOMEM (the connection is closed: out of
 * memory, or more than out_bytes_max queued). */
int httpd_stream_write(struct httpd *h, uint64_t id, const void *data,
                       size_t len);

/* Ends the stream of request `id`; the connection then serves its next
 * request (HTTP/1.1 with keep-alive) or closes once the rest is written.
 * Returns 0 or SYNOD_ENOTFOUND. */
int httpd_stream_end(struct httpd *h, uint64_t id);

/* Bytes queued to request `id`'s connection and not yet taken by the
 * socket; SIZE_MAX if the request is answered or its connection gone. */
size_t httpd_queued_bytes(const struct httpd *h, uint64_t id);

/* Asks for one drain_cb once fewer than `below` bytes are queued to
 * request `id`'s connection (checked as each write completes: call it
 * only with more than that queued). Nothing happens if it is gone. */
void httpd_want_drain(struct httpd *h, uint64_t id, size_t below);

/* Counters since start, for metrics. */
struct httpd_stats {
  uint64_t connections;         /* open now */
  uint64_t connections_total;   /* accepted */
  uint64_t connections_refused; /* at the cap with none idle */
  uint64_t requests_total;      /* whole requests handed to the callback */
  uint64_t bad_requests_total;  /* answered 400/408/413/414/431/501 */
  uint64_t streams;             /* streamed answers open now */
  uint64_t queued_bytes;        /* answers queued now, every connection */
};
void httpd_stats(const struct httpd *h, struct httpd_stats *out);

/* Helpers for handlers. The header named `name` (case-insensitive) of
 * req, or NULL; *len gets its value's length. */
const char *httpd_header(const struct httpd_request *req, const char *name,
                         size_t *len);

/* True if the method is `m` (e.g. "GET"); HEAD counts as GET. */
bool httpd_method_is(const struct httpd_request *req, const char *m);

/* What httpd_query_value found for a query parameter. */
enum httpd_query {
  HTTPD_QUERY_ABSENT,   /* the query does not name it */
  HTTPD_QUERY_OK,       /* its value, decoded, is in out */
  HTTPD_QUERY_ESCAPE,   /* a '%' without two hex digits after it */
  HTTPD_QUERY_NUL,      /* it decodes to a NUL byte (%00) */
  HTTPD_QUERY_TOO_LONG, /* it decodes to cap bytes or more */
  HTTPD_QUERY_REPEATED, /* the query names it more than once */
};

/* Copies the query parameter `key`, percent-decoded ('+' is a space),
 * into out (cap bytes, NUL-terminated; "" for a key without '=', and
 * for anything but HTTPD_QUERY_OK). A value that is present but cannot
 * be used says why: a caller must answer it as bad input, never take it
 * for an absent parameter. */
enum httpd_query httpd_query_value(const struct httpd_request *req,
                                   const char *key, char *out, size_t cap);

/* httpd_query_value(...) == HTTPD_QUERY_OK. */
bool httpd_query_get(const struct httpd_request *req, const char *key,
                     char *out, size_t cap);
/* True if the query names `key`, whatever its value. */
bool httpd_query_has(const struct httpd_request *req, const char *key);
/* The first value of `key` as sent (not decoded), in *v and *vl (borrows
 * the request); false if absent. For messages about a bad value. */
bool httpd_query_raw(const struct httpd_request *req, const char *key,
                     const char **v, size_t *vl);

/* Percent-decodes src[0..len) into out (cap bytes, NUL-terminated).
 * Returns false on a bad escape, a NUL byte, or no room. */
bool httpd_url_decode(const char *src, size_t len, char *out, size_t cap);

/* The reason phrase of a status ("Not Found"). */
const char *httpd_status_text(int status);

#endif /* SYNOD_HTTPD_H */
