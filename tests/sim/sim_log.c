/* A simulated log: a contiguous array of entries [first, first + n) with
 * the put/truncate/compact operations of a key-value store. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (q == NULL) {
    abort();
  }
  return q;
}

uint64_t sim_entry_hash(uint8_t type, const uint8_t *data, size_t len) {
  uint64_t h = sim_hash_u64(SIM_HASH_INIT, type);
  return sim_hash_bytes(h, data, len);
}

void sim_log_init(struct sim_log *l, uint64_t first, bool keep_data) {
  memset(l, 0, sizeof(*l));
  l->first = first;
  l->keep_data = keep_data;
}

static void entry_free(struct sim_entry *e) {
  free(e->data);
  e->data = NULL;
}

void sim_log_close(struct sim_log *l) {
  for (uint64_t i = 0; i < l->n; i++) {
    entry_free(&l->e[i]);
  }
  free(l->e);
  l->e = NULL;
  l->n = 0;
  l->cap = 0;
}

uint64_t sim_log_last(const struct sim_log *l) {
  return l->first + l->n - 1;
}

const struct sim_entry *sim_log_get(const struct sim_log *l, uint64_t index) {
  if (index < l->first || index - l->first >= l->n) {
    return NULL;
  }
  return &l->e[index - l->first];
}

void sim_log_truncate(struct sim_log *l, uint64_t index) {
  if (index < l->first) {
    index = l->first;
  }
  while (l->n > 0 && sim_log_last(l) >= index) {
    entry_free(&l->e[--l->n]);
  }
}

static void entry_set(struct sim_log *l, struct sim_entry *dst,
                      const struct core_entry *src) {
  entry_free(dst);
  dst->term = src->term;
  dst->type = src->type;
  dst->len = (uint32_t)src->len;
  dst->hash = sim_entry_hash(src->type, src->data, src->len);
  if (l->keep_data && src->len > 0) {
    dst->data = xrealloc(NULL, src->len);
    memcpy(dst->data, src->data, src->len);
  }
}

bool sim_log_put(struct sim_log *l, const struct core_entry *es, uint32_t n) {
  if (n == 0) {
    return true;
  }
  if (es[0].index > sim_log_last(l) + 1 || es[0].index < l->first) {
    return false;
  }
  for (uint32_t i = 0; i < n; i++) {
    uint64_t at = es[i].index - l->first;
    if (at == l->n) {
      if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->e = xrealloc(l->e, l->cap * sizeof(*l->e));
      }
      memset(&l->e[l->n], 0, sizeof(l->e[0]));
      l->n++;
    }
    entry_set(l, &l->e[at], &es[i]);
  }
  return true;
}

void sim_log_compact(struct sim_log *l, uint64_t index) {
  if (index < l->first) {
    return;
  }
  uint64_t drop = index - l->first + 1;
  if (drop >= l->n) {
    sim_log_reset(l, index + 1);
    return;
  }
  for (uint64_t i = 0; i < drop; i++) {
    entry_free(&l->e[i]);
  }
  memmove(l->e, l->e + drop, (l->n - drop) * sizeof(*l->e));
  l->n -= drop;
  l->first = index + 1;
}

void sim_log_reset(struct sim_log *l, uint64_t first) {
  sim_log_truncate(l, l->first);
  l->first = first;
}

void sim_log_copy(struct sim_log *dst, const struct sim_log *src) {
  sim_log_reset(dst, src->first);
  if (src->n > dst->cap) {
    dst->cap = src->n;
    dst->e = xrealloc(dst->e, dst->cap * sizeof(*dst->e));
  }
  for (uint64_t i = 0; i < src->n; i++) {
    struct sim_entry *d = &dst->e[i];
    *d = src->e[i];
    d->data = NULL;
    if (dst->keep_data && src->e[i].data != NULL) {
      d->data = xrealloc(NULL, d->len);
      memcpy(d->data, src->e[i].data, d->len);
    }
  }
  dst->n = src->n;
}
