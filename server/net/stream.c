/* Framed streams on libuv TCP handles. */
#include "stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "synod.h"

#define STREAM_READ_BYTES (64u * 1024)

void stream_init(struct stream *s, uv_loop_t *loop, uint32_t frame_max_bytes) {
  frame_reader_init(&s->in, frame_max_bytes);
  frame_buf_init(&s->out);
  frame_buf_init(&s->inflight);
  uv_tcp_init(loop, &s->tcp);
  s->tcp.data = s;
}

void stream_sockaddr_format(const struct sockaddr_storage *sa, char *out,
                            size_t len) {
  char ip[64] = "?";
  if (sa->ss_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    uv_ip4_name(in, ip, sizeof ip);
    snprintf(out, len, "%s:%d", ip, ntohs(in->sin_port));
  } else if (sa->ss_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    uv_ip6_name(in6, ip, sizeof ip);
    snprintf(out, len, "[%s]:%d", ip, ntohs(in6->sin6_port));
  } else {
    snprintf(out, len, "?");
  }
}

static void stream_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  struct stream *s = h->data;
  uint8_t *p;
  size_t len;
  (void)suggested;
  if (frame_reader_reserve(&s->in, STREAM_READ_BYTES, &p, &len) != 0) {
    *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
    return;
  }
  *buf = uv_buf_init((char *)p, (unsigned)len);
}

static void stream_read_cb(uv_stream_t *h, ssize_t nread, const uv_buf_t *b) {
  struct stream *s = h->data;
  const uint8_t *p;
  size_t n;
  int rv;
  (void)b;
  if (nread < 0) {
    stream_close(
        s, nread == UV_EOF ? "closed by peer" : uv_strerror((int)nread), false);
    return;
  }
  frame_reader_commit(&s->in, (size_t)nread);
  while (!s->closing && (rv = frame_reader_next(&s->in, &p, &n)) == 0) {
    if (!s->frame_cb(s, p, n)) {
      return;
    }
  }
  if (!s->closing && rv == SYNOD_ETOOBIG && s->too_big_cb != NULL) {
    s->too_big_cb(s, n);
  } else if (!s->closing && rv == SYNOD_ETOOBIG) {
    char why[96];
    snprintf(why, sizeof why, "frame of %zu bytes over the maximum %u", n,
             s->in.frame_max_bytes);
    stream_close(s, why, true);
  }
}

int stream_start(struct stream *s) {
  struct sockaddr_storage sa;
  int len = sizeof sa;
  if (s->remote[0] == '\0' &&
      uv_tcp_getpeername(&s->tcp, (struct sockaddr *)&sa, &len) == 0) {
    stream_sockaddr_format(&sa, s->remote, sizeof s->remote);
  }
  uv_tcp_nodelay(&s->tcp, 1);
  uv_tcp_keepalive(&s->tcp, 1, 10);
  int rv =
      uv_read_start((uv_stream_t *)&s->tcp, stream_alloc_cb, stream_read_cb);
  if (rv != 0) {
    stream_close(s, uv_strerror(rv), false);
  }
  return rv;
}

int stream_send(struct stream *s, const ProtobufCMessage *msg) {
  return frame_buf_append_msg(&s->out, msg, s->in.frame_max_bytes);
}

int stream_send_bytes(struct stream *s, const uint8_t *payload, size_t n) {
  return frame_buf_append(&s->out, payload, n, s->in.frame_max_bytes);
}

size_t stream_queued_bytes(const struct stream *s) {
  return s->out.len + s->inflight.len;
}

static void stream_write_cb(uv_write_t *req, int status) {
  struct stream *s = req->data;
  s->writing = false;
  frame_buf_reset(&s->inflight);
  if (status < 0 && status != UV_ECANCELED) {
    stream_close(s, uv_strerror(status), false);
  } else if (s->close_after_flush && !s->closing) {
    if (s->out.len > 0) {
      stream_flush(s);
    } else {
      stream_close(s, s->close_reason, true);
    }
  } else if (status == 0 && s->written_cb != NULL) {
    s->written_cb(s);
  }
}

bool stream_flush(struct stream *s) {
  if (s->writing || s->closing || s->out.len == 0) {
    return false;
  }
  /* The queued frames leave in one write, tried at once: when the socket
   * takes them all (the usual case), no request, callback or change of
   * the poll set follows (libuv's uv_write costs an epoll_ctl each). A
   * stream closing after this write takes the request's way, which closes
   * it from the callback. */
  uv_buf_t buf = uv_buf_init((char *)s->out.data, (unsigned)s->out.len);
  int n = s->close_after_flush ? UV_EAGAIN
                               : uv_try_write((uv_stream_t *)&s->tcp, &buf, 1);
  if (n == (int)s->out.len) {
    frame_buf_reset(&s->out);
    return true;
  }
  if (n < 0 && n != UV_EAGAIN) {
    stream_close(s, uv_strerror(n), false);
    return false;
  }
  size_t done = n > 0 ? (size_t)n : 0;
  /* Swap: the rest leaves with uv_write; new frames queue behind. */
  struct frame_buf t = s->inflight;
  s->inflight = s->out;
  s->out = t;
  buf = uv_buf_init((char *)s->inflight.data + done,
                    (unsigned)(s->inflight.len - done));
  s->write_req.data = s;
  int rv =
      uv_write(&s->write_req, (uv_stream_t *)&s->tcp, &buf, 1, stream_write_cb);
  if (rv != 0) {
    stream_close(s, uv_strerror(rv), false);
    return false;
  }
  s->writing = true;
  return true;
}

static void stream_close_now(uv_handle_t *h) {
  struct stream *s = h->data;
  frame_reader_close(&s->in);
  frame_buf_close(&s->out);
  frame_buf_close(&s->inflight);
  s->close_cb(s);
}

void stream_close(struct stream *s, const char *why, bool refused) {
  if (s->closing) {
    return;
  }
  s->closing = true;
  if (s->closing_cb != NULL) {
    s->closing_cb(s, why, refused);
  }
  uv_close((uv_handle_t *)&s->tcp, stream_close_now);
}

void stream_close_after_flush(struct stream *s, const char *why) {
  if (s->closing || s->close_after_flush) {
    return;
  }
  s->close_after_flush = true;
  snprintf(s->close_reason, sizeof s->close_reason, "%s", why);
  uv_read_stop((uv_stream_t *)&s->tcp);
  if (!s->writing && s->out.len == 0) {
    stream_close(s, why, true);
  } else {
    stream_flush(s);
  }
}

int stream_address_parse(const char *address, char *host, uint16_t *port) {
  const char *colon = strrchr(address, ':');
  const char *h = address;
  size_t hlen;
  if (colon == NULL || colon == address) {
    return SYNOD_EINVAL;
  }
  hlen = (size_t)(colon - address);
  if (address[0] == '[') { /* [v6]:port */
    if (colon[-1] != ']' || hlen < 3) {
      return SYNOD_EINVAL;
    }
    h = address + 1;
    hlen -= 2;
  }
  if (hlen == 0 || hlen >= STREAM_REMOTE_MAX) {
    return SYNOD_EINVAL;
  }
  char *end;
  unsigned long p = strtoul(colon + 1, &end, 10);
  if (*end != '\0' || end == colon + 1 || p > 65535) {
    return SYNOD_EINVAL;
  }
  memcpy(host, h, hlen);
  host[hlen] = '\0';
  *port = (uint16_t)p;
  return 0;
}

int stream_listen(uv_loop_t *loop, uv_tcp_t *listener, const char *what,
                  const char *address, int backlog, uv_connection_cb cb,
                  char *bound, size_t bound_len, char *errmsg) {
  char host[STREAM_REMOTE_MAX];
  uint16_t port;
  struct sockaddr_storage sa;
  if (stream_address_parse(address, host, &port) != 0 ||
      (uv_ip4_addr(host, port, (struct sockaddr_in *)&sa) != 0 &&
       uv_ip6_addr(host, port, (struct sockaddr_in6 *)&sa) != 0)) {
    errmsg_set(errmsg, "%s: listen address '%s' is not ip:port", what, address);
    return SYNOD_EINVAL;
  }
  uv_tcp_init(loop, listener);
  int rv = uv_tcp_bind(listener, (struct sockaddr *)&sa, 0);
  if (rv == 0) {
    rv = uv_listen((uv_stream_t *)listener, backlog, cb);
  }
  if (rv != 0) {
    errmsg_set(errmsg, "%s: listen on %s: %s", what, address, uv_strerror(rv));
    return SYNOD_EIO;
  }
  int len = sizeof sa;
  uv_tcp_getsockname(listener, (struct sockaddr *)&sa, &len);
  stream_sockaddr_format(&sa, bound, bound_len);
  return 0;
}
