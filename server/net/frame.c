/* Framing: length-prefixed protobuf frames in and out of byte streams. */
#include "frame.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "pb_unknown.h"
#include "synod.h"

/* Reads grow the buffer in steps of at least this much, so a stream of
 * small frames does not reallocate per read. */
#define FRAME_READ_CHUNK_BYTES (64u * 1024)

void frame_header_encode(uint8_t header[FRAME_HEADER_BYTES], uint32_t len) {
  header[0] = (uint8_t)(len >> 24);
  header[1] = (uint8_t)(len >> 16);
  header[2] = (uint8_t)(len >> 8);
  header[3] = (uint8_t)len;
}

static uint32_t frame_header_decode(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         (uint32_t)p[3];
}

void frame_reader_init(struct frame_reader *r, uint32_t frame_max_bytes) {
  memset(r, 0, sizeof *r);
  r->frame_max_bytes =
      frame_max_bytes ? frame_max_bytes : FRAME_MAX_BYTES_DEFAULT;
}

void frame_reader_close(struct frame_reader *r) {
  free(r->buf);
  r->buf = NULL;
  r->len = r->cap = r->consumed = 0;
}

/* Moves unread bytes to the front so the buffer never grows past one
 * maximal frame plus one read. */
static void frame_reader_compact(struct frame_reader *r) {
  if (r->consumed == 0) {
    return;
  }
  memmove(r->buf, r->buf + r->consumed, r->len - r->consumed);
  r->len -= r->consumed;
  r->consumed = 0;
}

int frame_reader_reserve(struct frame_reader *r, size_t want, uint8_t **out,
                         size_t *out_len) {
  frame_reader_compact(r);
  if (want < FRAME_READ_CHUNK_BYTES) {
    want = FRAME_READ_CHUNK_BYTES;
  }
  if (r->cap - r->len < want) {
    size_t cap = r->cap ? r->cap : FRAME_READ_CHUNK_BYTES;
    while (cap - r->len < want) {
      cap *= 2;
    }
    uint8_t *buf = realloc(r->buf, cap);
    if (buf == NULL) {
      return SYNOD_ENOMEM;
    }
    r->buf = buf;
    r->cap = cap;
  }
  *out = r->buf + r->len;
  *out_len = r->cap - r->len;
  return 0;
}

void frame_reader_commit(struct frame_reader *r, size_t n) {
  assert(n <= r->cap - r->len);
  r->len += n;
}

int frame_reader_feed(struct frame_reader *r, const uint8_t *data, size_t n) {
  uint8_t *dst;
  size_t room;
  int rv = frame_reader_reserve(r, n, &dst, &room);
  if (rv != 0) {
    return rv;
  }
  memcpy(dst, data, n);
  frame_reader_commit(r, n);
  return 0;
}

int frame_reader_next(struct frame_reader *r, const uint8_t **payload,
                      size_t *len) {
  size_t avail = r->len - r->consumed;
  if (avail < FRAME_HEADER_BYTES) {
    return SYNOD_EUNAVAILABLE;
  }
  uint32_t n = frame_header_decode(r->buf + r->consumed);
  if (n > r->frame_max_bytes) {
    *len = n;
    return SYNOD_ETOOBIG;
  }
  if (avail - FRAME_HEADER_BYTES < n) {
    return SYNOD_EUNAVAILABLE;
  }
  *payload = r->buf + r->consumed + FRAME_HEADER_BYTES;
  *len = n;
  r->consumed += FRAME_HEADER_BYTES + n;
  return 0;
}

void frame_buf_init(struct frame_buf *b) {
  memset(b, 0, sizeof *b);
}

void frame_buf_close(struct frame_buf *b) {
  free(b->data);
  memset(b, 0, sizeof *b);
}

void frame_buf_reset(struct frame_buf *b) {
  b->len = 0;
}

/* Makes room for n more bytes. */
static int frame_buf_grow(struct frame_buf *b, size_t n) {
  if (b->cap - b->len >= n) {
    return 0;
  }
  size_t cap = b->cap ? b->cap : 4096;
  while (cap - b->len < n) {
    cap *= 2;
  }
  uint8_t *data = realloc(b->data, cap);
  if (data == NULL) {
    return SYNOD_ENOMEM;
  }
  b->data = data;
  b->cap = cap;
  return 0;
}

/* Checks the size, makes room and writes the header of an n-byte frame;
 * *payload is where its bytes go. */
static int frame_buf_begin(struct frame_buf *b, size_t n,
                           uint32_t frame_max_bytes, uint8_t **payload) {
  if (frame_max_bytes == 0) {
    frame_max_bytes = FRAME_MAX_BYTES_DEFAULT;
  }
  if (n > frame_max_bytes) {
    return SYNOD_ETOOBIG;
  }
  int rv = frame_buf_grow(b, FRAME_HEADER_BYTES + n);
  if (rv != 0) {
    return rv;
  }
  frame_header_encode(b->data + b->len, (uint32_t)n);
  *payload = b->data + b->len + FRAME_HEADER_BYTES;
  b->len += FRAME_HEADER_BYTES + n;
  return 0;
}

int frame_buf_append_msg(struct frame_buf *b, const ProtobufCMessage *msg,
                         uint32_t frame_max_bytes) {
  uint8_t *payload;
  size_t n = protobuf_c_message_get_packed_size(msg);
  int rv = frame_buf_begin(b, n, frame_max_bytes, &payload);
  if (rv != 0) {
    return rv;
  }
  size_t packed = protobuf_c_message_pack(msg, payload);
  assert(packed == n);
  (void)packed;
  return 0;
}

int frame_buf_append(struct frame_buf *b, const uint8_t *payload, size_t n,
                     uint32_t frame_max_bytes) {
  uint8_t *dst;
  int rv = frame_buf_begin(b, n, frame_max_bytes, &dst);
  if (rv == 0 && n > 0) {
    memcpy(dst, payload, n);
  }
  return rv;
}

static bool tag_zero(const ProtobufCMessageUnknownField *f) {
  return f->tag == 0;
}

bool frame_pb_unrepackable(const ProtobufCMessage *m) {
  return pb_unknown_field_such(m, tag_zero, NULL, 0);
}
