/* A hash map from non-zero u64 keys to pointers: open addressing with
 * linear probing and backward-shift deletion, so there are no tombstones.
 * Iteration order is unspecified: never use it where replicas must agree. */
#ifndef SYNOD_U64MAP_H
#define SYNOD_U64MAP_H

#include <stddef.h>
#include <stdint.h>

struct u64map_slot {
  uint64_t key; /* 0 = empty */
  void *value;
};

/* Invariant: len * 4 <= cap * 3 after every insert; cap is 0 or a power
 * of two. */
struct u64map {
  struct u64map_slot *slots;
  size_t cap;
  size_t len;
};

void u64map_init(struct u64map *m);
/* Frees the table (not the values). */
void u64map_close(struct u64map *m);

/* The value for key, or NULL. */
void *u64map_get(const struct u64map *m, uint64_t key);

/* Sets key to value (replacing). Returns 0 or SYNOD_ENOMEM.
 * Precondition: key != 0, value != NULL. */
int u64map_put(struct u64map *m, uint64_t key, void *value);

/* Removes key; returns its value, or NULL if absent. */
void *u64map_del(struct u64map *m, uint64_t key);

/* Calls fn for every entry; fn must not modify the map. */
void u64map_each(const struct u64map *m,
                 void (*fn)(void *arg, uint64_t key, void *value), void *arg);

#endif
