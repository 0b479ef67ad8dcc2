/* Framed streams: a TCP connection that reads length-prefixed frames and
 * writes queued frames in one write per loop turn. Peer links and client
 * connections both embed one. */
#ifndef SYNOD_STREAM_H
#define SYNOD_STREAM_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "frame.h"

#define STREAM_REMOTE_MAX 128

struct stream;

/* One whole frame arrived; `p` is borrowed until the callback returns.
 * Returns false if the callback closed the stream (stop reading). */
typedef bool (*stream_frame_cb)(struct stream *s, const uint8_t *p, size_t n);

/* The stream is closed: libuv is done with it and the owner may free the
 * memory it is embedded in. */
typedef void (*stream_close_cb)(struct stream *s);

/* Invariant: a stream is in its owner's list from stream_init until its
 * close_cb runs; `closing` is set from stream_close on. */
struct stream {
  uv_tcp_t tcp; /* tcp.data = this */
  char remote[STREAM_REMOTE_MAX];
  struct frame_reader in;
  struct frame_buf out;      /* queued this loop turn */
  struct frame_buf inflight; /* borrowed by write_req until write_cb */
  uv_write_t write_req;
  bool writing;
  bool closing;
  bool close_after_flush; /* close once `out` and `inflight` are written */
  char close_reason[128];
  stream_frame_cb frame_cb;
  stream_close_cb close_cb;
  /* Called with the reason when the stream starts closing (I/O error,
   * EOF, an oversized frame, or the owner's stream_close). Optional. */
  void (*closing_cb)(struct stream *s, const char *why, bool refused);
  /* Called instead of closing at once when a frame declares a length over
   * the maximum, so the owner can answer with an error first; it must
   * close the stream (stream_close_after_flush). Optional. */
  void (*too_big_cb)(struct stream *s, size_t declared_bytes);
  /* Called when a write the socket could not take at once has completed:
   * the peer is reading again. Optional. */
  void (*written_cb)(struct stream *s);
  void *data; /* the owner */
};

/* Prepares a stream on `loop` for frames up to frame_max_bytes. Then
 * either accept into s->tcp or connect it, and call stream_start. */
void stream_init(struct stream *s, uv_loop_t *loop, uint32_t frame_max_bytes);

/* Starts reading; fills `remote` from the socket if empty. Returns 0 or a
 * libuv error (the stream is then closing). */
int stream_start(struct stream *s);

/* Appends a frame holding msg; it leaves on the next stream_flush. Returns
 * 0, SYNOD_ETOOBIG or SYNOD_ENOMEM (nothing appended). */
int stream_send(struct stream *s, const ProtobufCMessage *msg);

/* Appends a frame holding n bytes already encoded. Same errors. */
int stream_send_bytes(struct stream *s, const uint8_t *payload, size_t n);

/* Bytes queued or being written. */
size_t stream_queued_bytes(const struct stream *s);

/* Writes everything queued in one write, unless a write is in flight
 * (then the queue leaves when it completes). True if it wrote. */
bool stream_flush(struct stream *s);

/* Starts closing. The reason is logged by closing_cb. refused = the peer
 * sent something we do not accept. Idempotent. */
void stream_close(struct stream *s, const char *why, bool refused);

/* Parses "host:port" into host (STREAM_REMOTE_MAX bytes) and port; "[::1]:7701"
 * is accepted for IPv6. Returns 0 or SYNOD_EINVAL. */
int stream_address_parse(const char *address, char *host, uint16_t *port);

/* Binds `listener` to address (an IP and port; port 0 picks one) and
 * listens with cb. Returns 0 with the bound "ip:port" in bound, or
 * SYNOD_EINVAL (not ip:port; the handle was not initialised) or SYNOD_EIO
 * (bind or listen failed; the handle is initialised and must be closed);
 * errmsg (SYNOD_ERRMSG_MAX bytes) says which, prefixed with `what`. */
int stream_listen(uv_loop_t *loop, uv_tcp_t *listener, const char *what,
                  const char *address, int backlog, uv_connection_cb cb,
                  char *bound, size_t bound_len, char *errmsg);

/* Formats an IPv4 or IPv6 socket address as "ip:port" or "[ip]:port". */
void stream_sockaddr_format(const struct sockaddr_storage *sa, char *out,
                            size_t len);

/* Flushes what is queued, then closes: for answering bad input with an
 * error before hanging up. */
void stream_close_after_flush(struct stream *s, const char *why);

#endif /* SYNOD_STREAM_H */
