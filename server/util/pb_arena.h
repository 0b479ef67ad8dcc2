/* A protobuf-c allocator for a message that lives a short while: the
 * command the state machine applies, a peer's frame, a client's request,
 * each freed before the next is unpacked. protobuf-c allocates every
 * sub-message, string and repeated field of an unpack on its own (a
 * transaction of 64 puts takes about 200 allocations); from the heap,
 * each costs a malloc and a free, and freed in between the state
 * machine's long-lived allocations (keys, sessions' results) they leave
 * holes the heap cannot give back. The arena serves them from one buffer
 * it reuses, and frees nothing until pb_arena_reset(). */
#ifndef SYNOD_PB_ARENA_H
#define SYNOD_PB_ARENA_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

/* The buffer kept between messages grows to what a message needed, up to
 * this; a bigger message's overflow is freed at its reset. */
#define PB_ARENA_KEEP_MAX ((size_t)256 << 10)

struct pb_arena_block;

struct pb_arena {
  ProtobufCAllocator allocator; /* pass &a->allocator to protobuf-c */
  uint8_t *buf;
  size_t cap;
  size_t used;
  struct pb_arena_block *extra; /* what did not fit in buf */
  size_t extra_bytes;
};

void pb_arena_init(struct pb_arena *a);

/* Frees everything allocated since the last reset, at once. */
void pb_arena_reset(struct pb_arena *a);

void pb_arena_close(struct pb_arena *a);

#endif
