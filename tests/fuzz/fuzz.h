/* Fuzz harnesses: one LLVMFuzzerTestOneInput per kind of input that comes
 * from outside (tests/fuzz/README.md). The same files build as libFuzzer
 * targets under clang (-DSYNOD_FUZZ=ON) and as plain functions that
 * replay.c calls on every kept input in the normal build, so CI replays
 * the regressions with gcc.
 *
 * A harness never trusts its input and checks invariants after each step
 * with FUZZ_CHECK, which aborts: libFuzzer saves the input as a crash, and
 * replay.c fails the unit test. */
#ifndef SYNOD_FUZZ_H
#define SYNOD_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "pb_unknown.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, ...)                                                  \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "fuzz: invariant broken at %s:%d: %s: ", __FILE__,       \
              __LINE__, #cond);                                                \
      fprintf(stderr, __VA_ARGS__);                                            \
      fputc('\n', stderr);                                                     \
      abort();                                                                 \
    }                                                                          \
  } while (0)

/* A cursor over the input, for harnesses that draw several values from
 * it. Reading past the end yields zeros and empty slices, never a fault. */
struct fuzz_in {
  const uint8_t *p;
  size_t n;
};

static inline uint8_t fuzz_u8(struct fuzz_in *in) {
  if (in->n == 0) {
    return 0;
  }
  in->n--;
  return *in->p++;
}

static inline uint16_t fuzz_u16(struct fuzz_in *in) {
  uint16_t hi = fuzz_u8(in);
  return (uint16_t)(hi << 8 | fuzz_u8(in));
}

/* The next `len` bytes (fewer at the end), borrowed from the input. */
static inline const uint8_t *fuzz_bytes(struct fuzz_in *in, size_t len,
                                        size_t *got) {
  const uint8_t *p = in->p;
  *got = len < in->n ? len : in->n;
  in->p += *got;
  in->n -= *got;
  return p;
}

/* A slice prefixed by its 16-bit big-endian length: the layout
 * make_corpus.c writes for harnesses that take a sequence of items. */
static inline const uint8_t *fuzz_item(struct fuzz_in *in, size_t *len) {
  return fuzz_bytes(in, fuzz_u16(in), len);
}

/* True if m or a message inside it carries unknown fields. protobuf-c
 * keeps them and packs them back as they came, including field number 0,
 * which it accepts in a non-canonical tag (0x82 0x00) but refuses in the
 * canonical one it writes (0x02): such a message decodes, and its
 * re-encoding does not. A re-encoding check excuses those. */
static inline bool fuzz_pb_has_unknown(const ProtobufCMessage *m) {
  return pb_unknown_field(m, NULL, 0);
}

#endif /* SYNOD_FUZZ_H */
