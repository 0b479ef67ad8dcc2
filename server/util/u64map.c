/* A hash map from non-zero u64 keys to pointers. */
#include "u64map.h"

#include <assert.h>
#include <stdlib.h>

#include "synod.h"

/* splitmix64's finaliser: spreads sequential keys (indexes, ids). */
static size_t u64map_hash(uint64_t k, size_t cap) {
  k ^= k >> 30;
  k *= 0xbf58476d1ce4e5b9ull;
  k ^= k >> 27;
  k *= 0x94d049bb133111ebull;
  k ^= k >> 31;
  return (size_t)k & (cap - 1);
}

void u64map_init(struct u64map *m) {
  m->slots = NULL;
  m->cap = 0;
  m->len = 0;
}

void u64map_close(struct u64map *m) {
  free(m->slots);
  u64map_init(m);
}

static struct u64map_slot *u64map_find(const struct u64map *m, uint64_t key) {
  if (m->cap == 0) {
    return NULL;
  }
  for (size_t i = u64map_hash(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
    struct u64map_slot *s = &m->slots[i];
    if (s->key == key) {
      return s;
    }
    if (s->key == 0) {
      return NULL;
    }
  }
}

void *u64map_get(const struct u64map *m, uint64_t key) {
  struct u64map_slot *s = u64map_find(m, key);
  return s != NULL ? s->value : NULL;
}

static void u64map_insert(struct u64map_slot *slots, size_t cap, uint64_t key,
                          void *value) {
  size_t i = u64map_hash(key, cap);
  while (slots[i].key != 0 && slots[i].key != key) {
    i = (i + 1) & (cap - 1);
  }
  slots[i].key = key;
  slots[i].value = value;
}

static int u64map_grow(struct u64map *m) {
  size_t cap = m->cap ? m->cap * 2 : 16;
  struct u64map_slot *slots = calloc(cap, sizeof *slots);
  if (slots == NULL) {
    return SYNOD_ENOMEM;
  }
  for (size_t i = 0; i < m->cap; i++) {
    if (m->slots[i].key != 0) {
      u64map_insert(slots, cap, m->slots[i].key, m->slots[i].value);
    }
  }
  free(m->slots);
  m->slots = slots;
  m->cap = cap;
  return 0;
}

int u64map_put(struct u64map *m, uint64_t key, void *value) {
  assert(key != 0 && value != NULL);
  struct u64map_slot *s = u64map_find(m, key);
  if (s != NULL) {
    s->value = value;
    return 0;
  }
  if ((m->len + 1) * 4 > m->cap * 3 && u64map_grow(m) != 0) {
    return SYNOD_ENOMEM;
  }
  u64map_insert(m->slots, m->cap, key, value);
  m->len++;
  return 0;
}

void *u64map_del(struct u64map *m, uint64_t key) {
  struct u64map_slot *s = u64map_find(m, key);
  if (s == NULL) {
    return NULL;
  }
  void *value = s->value;
  size_t mask = m->cap - 1;
  size_t i = (size_t)(s - m->slots);
  /* Backward shift: pull later entries of the probe run into the hole. */
  for (size_t j = (i + 1) & mask; m->slots[j].key != 0; j = (j + 1) & mask) {
    size_t home = u64map_hash(m->slots[j].key, m->cap);
    /* Move j to i if i lies cyclically in [home, j). */
    if (((j - home) & mask) >= ((j - i) & mask)) {
      m->slots[i] = m->slots[j];
      i = j;
    }
  }
  m->slots[i].key = 0;
  m->slots[i].value = NULL;
  m->len--;
  return value;
}

void u64map_each(const struct u64map *m,
                 void (*fn)(void *arg, uint64_t key, void *value), void *arg) {
  for (size_t i = 0; i < m->cap; i++) {
    if (m->slots[i].key != 0) {
      fn(arg, m->slots[i].key, m->slots[i].value);
    }
  }
}
