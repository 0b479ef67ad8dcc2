/* Framing: a 4-byte big-endian length, then that many bytes of one encoded
 * protobuf message. Used on both the client and the peer port.
 *
 * frame_reader accumulates bytes as they arrive (in any split) and hands out
 * whole frames; frame_buf collects outgoing frames so that everything queued
 * in one loop turn leaves in one write. Neither does I/O. */
#ifndef SYNOD_FRAME_H
#define SYNOD_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#define FRAME_HEADER_BYTES 4
#define FRAME_MAX_BYTES_DEFAULT (1u << 20) /* 1 MiB */

/* Reads frames out of a byte stream.
 * Invariant: consumed <= len <= cap; bytes [consumed, len) are unread. */
struct frame_reader {
  uint8_t *buf;
  size_t len;
  size_t cap;
  size_t consumed;
  uint32_t frame_max_bytes; /* payloads larger than this are refused */
};

/* Initialises a reader that refuses payloads over frame_max_bytes (0 means
 * FRAME_MAX_BYTES_DEFAULT). Allocates nothing until bytes arrive. */
void frame_reader_init(struct frame_reader *r, uint32_t frame_max_bytes);

/* Frees the reader's buffer. Accepts a zeroed or half-used reader. */
void frame_reader_close(struct frame_reader *r);

/* Gives room for at least `want` more bytes: *out points into the reader's
 * buffer and *out_len says how much may be written there; then call
 * frame_reader_commit with the count actually written (libuv's alloc_cb and
 * read_cb pair). Invalidates payloads handed out earlier. Returns 0 or
 * SYNOD_ENOMEM. */
int frame_reader_reserve(struct frame_reader *r, size_t want, uint8_t **out,
                         size_t *out_len);

/* Records that n bytes were written into the space from reserve.
 * Precondition: n <= the out_len that reserve gave. */
void frame_reader_commit(struct frame_reader *r, size_t n);

/* Copies n bytes in (reserve + memcpy + commit). Returns 0 or SYNOD_ENOMEM. */
int frame_reader_feed(struct frame_reader *r, const uint8_t *data, size_t n);

/* Takes the next whole frame. Returns:
 *   0                   *payload and *len are the frame's bytes (len may be 0),
 *                       borrowed until the next call on this reader
 *   SYNOD_EUNAVAILABLE  no whole frame yet; feed more bytes
 *   SYNOD_ETOOBIG       the next frame declares a length over the maximum;
 *                       the stream cannot be resynchronised: close it.
 *                       *len holds the declared length for the log. */
int frame_reader_next(struct frame_reader *r, const uint8_t **payload,
                      size_t *len);

/* Outgoing frames. Invariant: len <= cap. */
struct frame_buf {
  uint8_t *data;
  size_t len;
  size_t cap;
};

/* True if a decoded message (or one inside it) kept an unknown field that
 * protobuf-c cannot read back once packed again: a field numbered 0,
 * which protobuf-c's unpack accepts but no encoder may write. A receiver
 * refuses such a message as malformed instead of passing it on. */
bool frame_pb_unrepackable(const ProtobufCMessage *m);

void frame_buf_init(struct frame_buf *b);
void frame_buf_close(struct frame_buf *b);

/* Appends one frame holding `msg` packed. Returns 0, SYNOD_ETOOBIG if the
 * packed message is over frame_max_bytes (nothing appended), or
 * SYNOD_ENOMEM. */
int frame_buf_append_msg(struct frame_buf *b, const ProtobufCMessage *msg,
                         uint32_t frame_max_bytes);

/* Appends one frame holding the n bytes at payload. Same errors. */
int frame_buf_append(struct frame_buf *b, const uint8_t *payload, size_t n,
                     uint32_t frame_max_bytes);

/* Forgets the contents, keeps the memory. */
void frame_buf_reset(struct frame_buf *b);

/* Writes the big-endian length header. */
void frame_header_encode(uint8_t header[FRAME_HEADER_BYTES], uint32_t len);

#endif /* SYNOD_FRAME_H */
