/* Retained stream windows: items packed into blocks, evicted from the
 * front, found by position. */
#include "window.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm_int.h"

/* A run of items, each encoded as varint(index delta), varint(time
 * delta), varint(len), then len bytes; deltas from the item before. The
 * first `count - live` items were evicted. */
struct window_block {
  uint8_t *buf;
  uint32_t used;
  uint32_t cap;
  uint32_t count;     /* items encoded */
  uint32_t live;      /* the last `live` of them are retained */
  uint32_t live_off;  /* byte offset of the first retained item */
  uint64_t first_pos; /* position of the first retained item */
  /* Index and time of the item before the first retained one (the delta
   * base to decode it), and of the last item (the base for appends). */
  uint64_t live_index, live_time;
  uint64_t tail_index, tail_time;
};

#define WINDOW_VARINT_MAX 10

static size_t varint_put(uint8_t *p, uint64_t v) {
  size_t n = 0;
  do {
    p[n] = (uint8_t)(v & 0x7f);
    v >>= 7;
    p[n++] |= v ? 0x80 : 0;
  } while (v);
  return n;
}

/* Decodes a varint at buf[*off]; the block's own bytes, always valid. */
static uint64_t varint_get(const uint8_t *buf, uint32_t *off) {
  uint64_t v = 0;
  for (unsigned shift = 0;; shift += 7) {
    uint8_t b = buf[(*off)++];
    v |= (uint64_t)(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      return v;
    }
  }
}

/* Decodes the item at *off whose predecessor had (*index, *time); advances
 * all three. */
static void block_decode(const struct window_block *b, uint32_t *off,
                         uint64_t *index, uint64_t *time,
                         struct window_item *out) {
  *index += varint_get(b->buf, off);
  *time += varint_get(b->buf, off);
  uint64_t len = varint_get(b->buf, off);
  out->index = *index;
  out->time_ms = *time;
  out->data = b->buf + *off;
  out->len = (size_t)len;
  *off += (uint32_t)len;
}

void window_init_at(struct window *s, uint64_t first) {
  memset(s, 0, sizeof *s);
  s->first = s->next = first;
}

void window_init(struct window *s) {
  window_init_at(s, 1);
}

void window_close(struct window *s) {
  for (size_t i = s->head; i < s->blocks_n; i++) {
    free(s->blocks[i].buf);
  }
  free(s->blocks);
  uint64_t next = s->next;
  window_init_at(s, next);
}

/* A new last block with room for `need` bytes, its delta base the newest
 * item. */
static struct window_block *window_block_add(struct window *s, size_t need) {
  if (s->head > 0 && s->head * 2 >= s->blocks_n) { /* reuse the front */
    memmove(s->blocks, s->blocks + s->head,
            (s->blocks_n - s->head) * sizeof *s->blocks);
    s->blocks_n -= s->head;
    s->head = 0;
  }
  if (s->blocks_n == s->blocks_cap) {
    s->blocks_cap = s->blocks_cap ? 2 * s->blocks_cap : 4;
    s->blocks = fsm_xrealloc(s->blocks, s->blocks_cap * sizeof *s->blocks);
  }
  struct window_block *b = &s->blocks[s->blocks_n++];
  memset(b, 0, sizeof *b);
  b->cap = (uint32_t)(need > WINDOW_BLOCK_BYTES ? need : WINDOW_BLOCK_BYTES);
  b->buf = fsm_xmalloc(b->cap);
  b->first_pos = s->next;
  b->live_index = b->tail_index = s->last_index;
  b->live_time = b->tail_time = s->last_time_ms;
  return b;
}

void window_append(struct window *s, uint64_t index, uint64_t time_ms,
                   const uint8_t *data, size_t len) {
  uint8_t head[3 * WINDOW_VARINT_MAX];
  struct window_block *b =
      s->blocks_n > s->head ? &s->blocks[s->blocks_n - 1] : NULL;
  /* Deltas from the newest item (every block's tail is it). */
  size_t h = varint_put(head, index - s->last_index);
  h += varint_put(head + h, time_ms - s->last_time_ms);
  h += varint_put(head + h, len);
  if (b == NULL || b->cap - b->used < h + len) {
    b = window_block_add(s, h + len);
  }
  memcpy(b->buf + b->used, head, h);
  if (len > 0) {
    memcpy(b->buf + b->used + h, data, len);
  }
  b->used += (uint32_t)(h + len);
  b->count++;
  b->live++;
  b->tail_index = s->last_index = index;
  b->tail_time = s->last_time_ms = time_ms;
  s->next++;
  s->bytes += len;
}

void window_evict(struct window *s) {
  struct window_block *b = &s->blocks[s->head];
  struct window_item it;
  block_decode(b, &b->live_off, &b->live_index, &b->live_time, &it);
  s->bytes -= it.len;
  s->evicted_index = it.index;
  s->first++;
  b->first_pos++;
  if (--b->live == 0) {
    free(b->buf);
    s->head++;
  }
}

/* The block holding pos (in the window). */
static size_t window_block_of(const struct window *s, uint64_t pos) {
  size_t lo = s->head, hi = s->blocks_n - 1;
  while (lo < hi) { /* the last block whose first_pos <= pos */
    size_t mid = lo + (hi - lo + 1) / 2;
    if (s->blocks[mid].first_pos <= pos) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

void window_iter_seek(const struct window *s, uint64_t pos,
                      struct window_iter *it) {
  memset(it, 0, sizeof *it);
  it->s = s;
  it->pos = pos < s->first ? s->first : pos;
  if (it->pos >= s->next) {
    it->block = s->blocks_n;
    return;
  }
  it->block = window_block_of(s, it->pos);
  const struct window_block *b = &s->blocks[it->block];
  uint32_t off = b->live_off;
  uint64_t index = b->live_index, time = b->live_time;
  struct window_item skip;
  for (uint64_t p = b->first_pos; p < it->pos; p++) {
    block_decode(b, &off, &index, &time, &skip);
  }
  it->off = off;
  it->index = index;
  it->time_ms = time;
}

void window_iter_seek_index(const struct window *s, uint64_t after_index,
                            struct window_iter *it) {
  if (s->blocks_n == s->head || s->last_index <= after_index) {
    window_iter_seek(s, s->next, it);
    return;
  }
  size_t lo = s->head, hi = s->blocks_n - 1;
  while (lo < hi) { /* the first block whose newest item is above it */
    size_t mid = lo + (hi - lo) / 2;
    if (s->blocks[mid].tail_index > after_index) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  const struct window_block *b = &s->blocks[lo];
  uint32_t off = b->live_off;
  uint64_t pos = b->first_pos, index = b->live_index, time = b->live_time;
  struct window_item item;
  for (;;) { /* the block's newest item is above after_index: stops */
    uint32_t at = off;
    uint64_t at_index = index, at_time = time;
    block_decode(b, &off, &index, &time, &item);
    if (item.index > after_index) {
      memset(it, 0, sizeof *it);
      it->s = s;
      it->block = lo;
      it->off = at;
      it->pos = pos;
      it->index = at_index;
      it->time_ms = at_time;
      return;
    }
    pos++;
  }
}

bool window_iter_next(struct window_iter *it, struct window_item *out) {
  const struct window *s = it->s;
  if (it->pos >= s->next || it->block >= s->blocks_n) {
    return false;
  }
  const struct window_block *b = &s->blocks[it->block];
  if (it->off >= b->used) { /* on to the next block */
    it->block++;
    if (it->block >= s->blocks_n) {
      return false;
    }
    b = &s->blocks[it->block];
    it->off = b->live_off;
    it->index = b->live_index;
    it->time_ms = b->live_time;
  }
  uint32_t off = (uint32_t)it->off;
  block_decode(b, &off, &it->index, &it->time_ms, out);
  it->off = off;
  out->pos = it->pos++;
  return true;
}

bool window_get(const struct window *s, uint64_t pos, struct window_item *out) {
  struct window_iter it;
  if (pos < s->first || pos >= s->next) {
    return false;
  }
  window_iter_seek(s, pos, &it);
  return window_iter_next(&it, out);
}

bool window_front(const struct window *s, struct window_item *out) {
  return window_get(s, s->first, out);
}

uint64_t window_memory_bytes(const struct window *s) {
  uint64_t m = s->blocks_cap * sizeof *s->blocks;
  for (size_t i = s->head; i < s->blocks_n; i++) {
    m += s->blocks[i].cap;
  }
  return m;
}

int window_check(const struct window *s, char *msg) {
  uint64_t pos = s->first, bytes = 0, index = 0;
  if (s->first > s->next || s->head > s->blocks_n) {
    snprintf(msg, 128, "window [%llu, %llu), blocks %zu..%zu",
             (unsigned long long)s->first, (unsigned long long)s->next, s->head,
             s->blocks_n);
    return -1;
  }
  struct window_iter it;
  struct window_item item;
  window_iter_seek(s, s->first, &it);
  while (window_iter_next(&it, &item)) {
    if (item.pos != pos || item.index < index) {
      snprintf(msg, 128, "item at %llu says %llu, index %llu after %llu",
               (unsigned long long)pos, (unsigned long long)item.pos,
               (unsigned long long)item.index, (unsigned long long)index);
      return -1;
    }
    pos++;
    index = item.index;
    bytes += item.len;
  }
  if (pos != s->next || bytes != s->bytes) {
    snprintf(msg, 128, "%llu items and %llu bytes, window says %llu and %llu",
             (unsigned long long)(pos - s->first), (unsigned long long)bytes,
             (unsigned long long)(s->next - s->first),
             (unsigned long long)s->bytes);
    return -1;
  }
  return 0;
}
