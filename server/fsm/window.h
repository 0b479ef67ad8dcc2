/* Retained stream windows (DESIGN.md "Streams"): the items of one stream
 * (a channel's messages, a key prefix's history, a group's views and
 * messages) at dense positions from 1, of which a window [first, next) is
 * kept. Items are packed many to a block, each stored as its payload and
 * three varints (the log index and cluster time as deltas from the item
 * before it, and the length), so a small item costs a few bytes beyond
 * its payload instead of a malloc (Redis Streams' listpacks, in spirit).
 *
 * Pure and deterministic: no clock, no I/O. The window's content, never
 * its block layout, is what the snapshot encodes, so every replica writes
 * the same bytes. */
#ifndef SYNOD_FSM_WINDOW_H
#define SYNOD_FSM_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Items of up to this many payload bytes share a block of this size; a
 * larger item gets a block of its own. */
#define WINDOW_BLOCK_BYTES 4096

/* One retained item. `data` points into the stream's memory: valid until
 * the next append or evict on the stream. */
struct window_item {
  uint64_t pos;     /* dense, from 1 */
  uint64_t index;   /* the log index that appended it: the total order */
  uint64_t time_ms; /* cluster time then */
  const uint8_t *data;
  size_t len;
};

struct window_block;

/* Invariant: first <= next; next - first == items; the blocks hold exactly
 * the items [first, next) in order, blocks[head..blocks_n) in use. */
struct window {
  struct window_block *blocks;
  size_t head;     /* first block in use */
  size_t blocks_n; /* one past the last block in use */
  size_t blocks_cap;
  uint64_t first;      /* position of the oldest retained item */
  uint64_t next;       /* position the next append gets */
  uint64_t bytes;      /* payload bytes retained */
  uint64_t last_index; /* of the newest item ever appended; 0 if none */
  uint64_t last_time_ms;
  /* Of the newest evicted item; 0 if none was. A reader that resumes
   * after a log index below it (a prefix subscription) missed items. */
  uint64_t evicted_index;
};

/* An empty stream whose first item will be at position 1. */
void window_init(struct window *s);

/* An empty stream whose first item will be at position `first` (>= 1): a
 * window restored from a snapshot, whose older items were evicted. */
void window_init_at(struct window *s, uint64_t first);

/* Frees every block. The stream is then empty, as after window_init, but
 * keeps its positions (next stays). */
void window_close(struct window *s);

/* Appends one item at position s->next. index and time_ms must not be
 * below the newest item's (the log order). Copies data. Aborts only on
 * out of memory, as the rest of fsm/ does. */
void window_append(struct window *s, uint64_t index, uint64_t time_ms,
                   const uint8_t *data, size_t len);

/* Forgets the oldest retained item. Precondition: the window is not
 * empty. */
void window_evict(struct window *s);

/* The item at position pos into *out; false if pos is outside the window
 * [first, next). O(log blocks + items per block). */
bool window_get(const struct window *s, uint64_t pos, struct window_item *out);

/* The oldest retained item; false if the window is empty. */
bool window_front(const struct window *s, struct window_item *out);

/* Reads items in order from a position. */
struct window_iter {
  const struct window *s;
  size_t block;
  size_t off; /* next item's byte offset in the block */
  uint64_t pos;
  uint64_t index;
  uint64_t time_ms;
};

/* Positions it at max(pos, first); window_iter_next then yields items
 * from there to the newest. */
void window_iter_seek(const struct window *s, uint64_t pos,
                      struct window_iter *it);

/* Positions it at the oldest retained item whose log index is above
 * after_index; O(log blocks + items per block). */
void window_iter_seek_index(const struct window *s, uint64_t after_index,
                            struct window_iter *it);

/* The next item; false past the newest. Appends and evictions on the
 * stream invalidate the iterator. */
bool window_iter_next(struct window_iter *it, struct window_item *out);

/* Memory the stream holds (blocks and their table), for the budget. */
uint64_t window_memory_bytes(const struct window *s);

/* Checks the invariant; returns 0 or -1 (and why in msg, 128 bytes).
 * For tests and the simulator. */
int window_check(const struct window *s, char *msg);

#endif /* SYNOD_FSM_WINDOW_H */
