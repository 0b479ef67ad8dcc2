/* The unpack arena (pb_arena.h). */
#include "pb_arena.h"

#include <stdio.h>
#include <stdlib.h>

#define PB_ARENA_ALIGN ((size_t)16)
#define PB_ARENA_FIRST ((size_t)16 << 10)

/* Under AddressSanitizer every allocation is a block of its own, freed at
 * the reset, so that a pointer kept past it is still caught. */
#ifdef __SANITIZE_ADDRESS__
#define PB_ARENA_BUFFERED 0
#else
#define PB_ARENA_BUFFERED 1
#endif

/* Out of memory aborts, as it does in the state machine (fsm.h): an
 * unpack that failed for want of memory would read as a malformed
 * message, and a replica must not apply an entry differently from the
 * others. */
static void *xmalloc(size_t n) {
  void *p = malloc(n);
  if (p == NULL) {
    fprintf(stderr, "pb_arena: out of memory for %zu bytes\n", n);
    abort();
  }
  return p;
}

struct pb_arena_block {
  struct pb_arena_block *next;
  _Alignas(16) uint8_t data[];
};

static void *arena_alloc(void *data, size_t size) {
  struct pb_arena *a = data;
  size_t at = (a->used + PB_ARENA_ALIGN - 1) & ~(PB_ARENA_ALIGN - 1);
  if (PB_ARENA_BUFFERED && a->buf == NULL && size <= PB_ARENA_FIRST) {
    a->buf = xmalloc(PB_ARENA_FIRST);
    a->cap = PB_ARENA_FIRST;
  }
  if (a->buf != NULL && size <= a->cap && at <= a->cap - size) {
    a->used = at + size;
    return a->buf + at;
  }
  struct pb_arena_block *b = xmalloc(sizeof *b + size);
  b->next = a->extra;
  a->extra = b;
  a->extra_bytes += size + PB_ARENA_ALIGN;
  return b->data;
}

static void arena_free(void *data, void *p) {
  (void)data;
  (void)p; /* all at once, in pb_arena_reset() */
}

void pb_arena_init(struct pb_arena *a) {
  *a = (struct pb_arena){.allocator = {arena_alloc, arena_free, a}};
}

void pb_arena_reset(struct pb_arena *a) {
  while (a->extra != NULL) {
    struct pb_arena_block *b = a->extra;
    a->extra = b->next;
    free(b);
  }
  /* Next time, room for what this message needed, within the bound. */
  size_t want = a->used + a->extra_bytes;
  if (PB_ARENA_BUFFERED && a->extra_bytes > 0 && a->cap < PB_ARENA_KEEP_MAX) {
    size_t cap = a->cap ? a->cap : PB_ARENA_FIRST;
    while (cap < want && cap < PB_ARENA_KEEP_MAX) {
      cap *= 2;
    }
    free(a->buf);
    a->buf = xmalloc(cap);
    a->cap = cap;
  }
  a->used = 0;
  a->extra_bytes = 0;
}

void pb_arena_close(struct pb_arena *a) {
  pb_arena_reset(a);
  free(a->buf);
  pb_arena_init(a);
}
