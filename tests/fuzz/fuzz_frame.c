/* Fuzz harness: the frame decoder (server/net/frame.c) on a byte stream
 * arriving in arbitrary pieces.
 *
 * Input: a byte choosing the frame maximum, a byte seeding the sizes of
 * the pieces the stream is fed in, then the stream.
 * Invariants: every frame handed out is exactly the bytes that follow its
 * header in the stream, whatever the split; it re-encodes (frame_buf) to
 * the same header and bytes; a declared length over the maximum is
 * refused with that length; what is left at the end is an incomplete
 * frame; a payload that decodes as a Request packs back to bytes that
 * decode to the same packing (protobuf-c canonical form is stable), unless
 * it carries unknown fields (see fuzz_pb_has_unknown). */
#include "fuzz.h"

#include "frame.h"
#include "synod.h"
#include "synod.pb-c.h"

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

/* A payload that decodes as a Request must survive pack/unpack/pack. */
static void check_request_roundtrip(const uint8_t *p, size_t n) {
  Synod__Request *r = synod__request__unpack(NULL, n, p);
  if (r == NULL) {
    return;
  }
  struct frame_buf b;
  frame_buf_init(&b);
  size_t len = synod__request__get_packed_size(r);
  int rv = frame_buf_append_msg(&b, &r->base, UINT32_MAX);
  FUZZ_CHECK(rv == 0, "append_msg: %d", rv);
  FUZZ_CHECK(b.len == FRAME_HEADER_BYTES + len && be32(b.data) == len,
             "frame of %zu bytes for a %zu-byte message", b.len, len);
  Synod__Request *again =
      synod__request__unpack(NULL, len, b.data + FRAME_HEADER_BYTES);
  if (again == NULL) {
    FUZZ_CHECK(fuzz_pb_has_unknown(&r->base),
               "a packed request without unknown fields does not decode");
    synod__request__free_unpacked(r, NULL);
    frame_buf_close(&b);
    return;
  }
  size_t len2 = synod__request__get_packed_size(again);
  FUZZ_CHECK(len2 == len, "repacked %zu bytes, first %zu", len2, len);
  uint8_t *buf = malloc(len2 ? len2 : 1);
  synod__request__pack(again, buf);
  FUZZ_CHECK(memcmp(buf, b.data + FRAME_HEADER_BYTES, len) == 0,
             "packing is not stable");
  free(buf);
  synod__request__free_unpacked(again, NULL);
  synod__request__free_unpacked(r, NULL);
  frame_buf_close(&b);
}

/* Re-encodes one frame and compares it with the stream at its place. */
static void check_reencode(const uint8_t *at, const uint8_t *payload,
                           size_t n) {
  struct frame_buf b;
  frame_buf_init(&b);
  int rv = frame_buf_append(&b, payload, n, UINT32_MAX);
  FUZZ_CHECK(rv == 0, "frame_buf_append: %d", rv);
  FUZZ_CHECK(b.len == FRAME_HEADER_BYTES + n && memcmp(b.data, at, b.len) == 0,
             "frame of %zu bytes does not re-encode to its stream bytes", n);
  frame_buf_close(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct fuzz_in in = {data, size};
  uint8_t max_sel = fuzz_u8(&in);
  uint32_t rng = fuzz_u8(&in) * 2654435761u + 1;
  /* 0: the default (1 MiB); else small maxima that inputs can exceed. */
  uint32_t max = max_sel == 0 ? 0 : (uint32_t)max_sel * 16;
  uint32_t eff_max = max ? max : FRAME_MAX_BYTES_DEFAULT;
  const uint8_t *stream = in.p;
  size_t len = in.n, fed = 0, pos = 0; /* pos: next frame in stream */
  struct frame_reader r;
  frame_reader_init(&r, max);
  bool too_big = false;

  while (!too_big && fed < len) {
    rng = rng * 1103515245u + 12345u;
    size_t piece = 1 + (rng >> 16) % 300;
    piece = piece < len - fed ? piece : len - fed;
    FUZZ_CHECK(frame_reader_feed(&r, stream + fed, piece) == 0, "feed");
    fed += piece;
    for (;;) {
      const uint8_t *p = NULL;
      size_t n = 0;
      int rv = frame_reader_next(&r, &p, &n);
      if (rv == SYNOD_EUNAVAILABLE) {
        break;
      }
      FUZZ_CHECK(len - pos >= FRAME_HEADER_BYTES, "a frame without header");
      uint32_t declared = be32(stream + pos);
      if (rv == SYNOD_ETOOBIG) {
        FUZZ_CHECK(declared > eff_max && n == declared,
                   "refused %zu, declared %u, max %u", n, declared, eff_max);
        too_big = true;
        break;
      }
      FUZZ_CHECK(rv == 0, "frame_reader_next: %d", rv);
      FUZZ_CHECK(declared <= eff_max && n == declared &&
                     pos + FRAME_HEADER_BYTES + n <= fed,
                 "frame of %zu at %zu, declared %u, fed %zu", n, pos, declared,
                 fed);
      FUZZ_CHECK(n == 0 || memcmp(p, stream + pos + FRAME_HEADER_BYTES, n) == 0,
                 "frame at %zu differs from the stream", pos);
      check_reencode(stream + pos, p, n);
      check_request_roundtrip(p, n);
      pos += FRAME_HEADER_BYTES + n;
    }
  }
  if (!too_big) {
    size_t rest = len - pos;
    FUZZ_CHECK(rest < FRAME_HEADER_BYTES ||
                   rest < FRAME_HEADER_BYTES + (size_t)be32(stream + pos),
               "%zu bytes left unread hold a whole frame", rest);
  }
  frame_reader_close(&r);
  return 0;
}
