/* The in-memory log: entries with owned copies of their data, the entry
 * just before the first one (a snapshot or compaction point), and the
 * configuration in effect at every index it covers. The oldest entries may
 * have given their data back (core_log_release): the shell's store holds
 * them, and fills them in where an append carries them. */
#ifndef SYNOD_CORE_LOG_H
#define SYNOD_CORE_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "core.h"

/* A configuration and the index of the entry that carried it. */
struct core_log_config {
  uint64_t index;
  struct core_config config;
};

struct core_log {
  /* ents[i].index == prev_index + 1 + i; terms never decrease. Each
   * ents[i].data is a malloc'd copy owned by the log, or NULL for an entry
   * through `released` (its len stays). */
  struct core_entry *ents;
  size_t n;
  size_t cap;
  /* The entry before ents[0]: in a snapshot or compacted (0/0 = none). */
  uint64_t prev_index;
  uint64_t prev_term;
  uint64_t bytes;      /* sum of ents[i].len */
  uint64_t held_bytes; /* the same, of the entries that hold their data */
  /* Entries through `durable` are durable as this log holds them (the
   * shell said so with PERSISTED, and no truncation came since); through
   * `readable` (<= durable) the shell's store can read them back as this
   * log holds them (RELEASE). Entries through `released` (>= prev_index)
   * hold no data. A truncation lowers both durable and readable: a store
   * that read back the old suffix holds none of the new one yet. */
  uint64_t durable;
  uint64_t readable;
  uint64_t released;
  /* Ascending by index; cfgs[0] is the configuration at prev_index (from
   * the snapshot or a compacted entry), the rest are CONFIG entries of
   * ents[]. cfgs_n >= 1. */
  struct core_log_config *cfgs;
  size_t cfgs_n;
  size_t cfgs_cap;
  /* Data of dropped entries: freed by core_log_gc, because updates handed
   * out in the current step may still point to it. */
  void **garbage;
  size_t garbage_n;
  size_t garbage_cap;
};

/* Starts an empty log after (prev_index, prev_term) with the configuration
 * `base` in effect there. Aborts if out of memory (as every log function
 * that grows the log). */
void core_log_init(struct core_log *l, uint64_t prev_index, uint64_t prev_term,
                   const struct core_config *base);

/* Frees everything, garbage included. Accepts a zeroed log. */
void core_log_close(struct core_log *l);

/* Frees the data of entries dropped since the last call. */
void core_log_gc(struct core_log *l);

static inline uint64_t core_log_first(const struct core_log *l) {
  return l->prev_index + 1;
}

static inline uint64_t core_log_last(const struct core_log *l) {
  return l->prev_index + l->n;
}

static inline uint64_t core_log_last_term(const struct core_log *l) {
  return l->n > 0 ? l->ents[l->n - 1].term : l->prev_term;
}

/* Sets *term to the term of `index` if it is known: prev_index <= index <=
 * last (index 0 has term 0). Returns false otherwise. */
bool core_log_term(const struct core_log *l, uint64_t index, uint64_t *term);

/* The entry at index; first <= index <= last. Valid until the log changes. */
const struct core_entry *core_log_get(const struct core_log *l, uint64_t index);

/* Appends an entry at last + 1, copying `data`. A CONFIG entry's data must
 * decode (the caller validated it). */
void core_log_append(struct core_log *l, uint64_t term, uint8_t type,
                     const uint8_t *data, size_t len);

/* Drops the entries from `from` on; prev_index < from <= last + 1. */
void core_log_truncate(struct core_log *l, uint64_t from);

/* Drops the entries through `through`, keeping its term as prev_term;
 * prev_index < through <= last. */
void core_log_compact(struct core_log *l, uint64_t through);

/* Drops every entry and restarts after (index, term) with config `cfg`. */
void core_log_reset(struct core_log *l, uint64_t index, uint64_t term,
                    const struct core_config *cfg);

/* The writes that produced the entry (index, term) are durable: if the
 * log still holds that entry, it and everything before it are. */
void core_log_persisted(struct core_log *l, uint64_t index, uint64_t term);

/* The shell's store can read entries through `index` back (RELEASE):
 * trusted only as far as the log is durable now. */
void core_log_readable(struct core_log *l, uint64_t index);

/* Drops the data of the oldest entries through `through` (clamped to
 * `readable`) while at least `keep_bytes` of newer entries keep theirs.
 * The data goes to the garbage list (freed at the next core_log_gc). */
void core_log_release(struct core_log *l, uint64_t through,
                      uint64_t keep_bytes);

/* The configuration in effect at `index` (>= prev_index) and the index of
 * the entry that carried it. */
const struct core_log_config *core_log_config_at(const struct core_log *l,
                                                 uint64_t index);

/* etcd raft's findConflictByTerm: the largest index <= `index` whose term
 * is <= `term`, searching down to prev_index; *found_term gets its term. An
 * index beyond the last is first lowered to the last. */
uint64_t core_log_find_by_term(const struct core_log *l, uint64_t index,
                               uint64_t term, uint64_t *found_term);

#endif
