/* The in-memory log: owned entry copies, compaction, truncation and the
 * configuration history (thesis 4.1: a server uses the latest configuration
 * in its log, committed or not). */
#include "core_log.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The core cannot undo half a step, so running out of memory is fatal, as
 * it is in etcd raft. */
static void *core_log_realloc(void *p, size_t n, size_t size) {
  void *q = realloc(p, n * size);
  if (q == NULL && n > 0) {
    fprintf(stderr, "synod core: out of memory (%zu x %zu bytes)\n", n, size);
    abort();
  }
  return q;
}

static void core_log_grow(void **p, size_t *cap, size_t need, size_t size) {
  if (need <= *cap) {
    return;
  }
  size_t cap2 = *cap < 16 ? 16 : *cap;
  while (cap2 < need) {
    cap2 *= 2;
  }
  *p = core_log_realloc(*p, cap2, size);
  *cap = cap2;
}

static void core_log_config_push(struct core_log *l, uint64_t index,
                                 const struct core_config *cfg) {
  core_log_grow((void **)&l->cfgs, &l->cfgs_cap, l->cfgs_n + 1,
                sizeof *l->cfgs);
  l->cfgs[l->cfgs_n].index = index;
  l->cfgs[l->cfgs_n].config = *cfg;
  l->cfgs_n++;
}

void core_log_init(struct core_log *l, uint64_t prev_index, uint64_t prev_term,
                   const struct core_config *base) {
  memset(l, 0, sizeof *l);
  l->prev_index = prev_index;
  l->prev_term = prev_term;
  l->durable = l->readable = l->released = prev_index;
  core_log_config_push(l, prev_index, base);
}

void core_log_gc(struct core_log *l) {
  for (size_t i = 0; i < l->garbage_n; i++) {
    free(l->garbage[i]);
  }
  l->garbage_n = 0;
}

void core_log_close(struct core_log *l) {
  core_log_gc(l);
  for (size_t i = 0; i < l->n; i++) {
    free((void *)l->ents[i].data);
  }
  free(l->ents);
  free(l->cfgs);
  free(l->garbage);
  memset(l, 0, sizeof *l);
}

bool core_log_term(const struct core_log *l, uint64_t index, uint64_t *term) {
  if (index < l->prev_index || index > core_log_last(l)) {
    return false;
  }
  *term = index == l->prev_index ? l->prev_term
                                 : l->ents[index - l->prev_index - 1].term;
  return true;
}

const struct core_entry *core_log_get(const struct core_log *l,
                                      uint64_t index) {
  assert(index > l->prev_index && index <= core_log_last(l));
  return &l->ents[index - l->prev_index - 1];
}

void core_log_append(struct core_log *l, uint64_t term, uint8_t type,
                     const uint8_t *data, size_t len) {
  assert(term >= core_log_last_term(l));
  core_log_grow((void **)&l->ents, &l->cap, l->n + 1, sizeof *l->ents);
  uint8_t *copy = NULL;
  if (len > 0) {
    copy = core_log_realloc(NULL, len, 1);
    memcpy(copy, data, len);
  }
  struct core_entry *e = &l->ents[l->n++];
  e->term = term;
  e->index = core_log_last(l);
  e->type = type;
  e->data = copy;
  e->len = len;
  l->bytes += len;
  l->held_bytes += len;
  if (type == CORE_ENTRY_CONFIG) {
    struct core_config cfg;
    int rv = core_config_decode(copy, len, &cfg);
    assert(rv == 0);
    (void)rv;
    core_log_config_push(l, e->index, &cfg);
  }
}

/* Moves the data of ents[from, to) to the garbage list; with `forget`,
 * the entries' lengths leave the byte counts too (they are leaving the
 * log, not only their data). */
static void core_log_drop(struct core_log *l, size_t from, size_t to,
                          bool forget) {
  core_log_grow((void **)&l->garbage, &l->garbage_cap,
                l->garbage_n + (to - from), sizeof *l->garbage);
  for (size_t i = from; i < to; i++) {
    if (l->ents[i].data != NULL) {
      l->garbage[l->garbage_n++] = (void *)l->ents[i].data;
      l->ents[i].data = NULL;
      l->held_bytes -= l->ents[i].len;
    }
    if (forget) {
      l->bytes -= l->ents[i].len;
    }
  }
}

void core_log_truncate(struct core_log *l, uint64_t from) {
  assert(from > l->prev_index && from <= core_log_last(l) + 1);
  assert(from > l->released);
  size_t keep = (size_t)(from - l->prev_index - 1);
  core_log_drop(l, keep, l->n, true);
  l->n = keep;
  if (l->durable >= from) {
    l->durable = from - 1;
  }
  if (l->readable >= from) {
    l->readable = from - 1;
  }
  /* A configuration whose entry is gone no longer applies (thesis 4.1). */
  while (l->cfgs_n > 1 && l->cfgs[l->cfgs_n - 1].index >= from) {
    l->cfgs_n--;
  }
}

void core_log_compact(struct core_log *l, uint64_t through) {
  assert(through > l->prev_index && through <= core_log_last(l));
  size_t drop = (size_t)(through - l->prev_index);
  uint64_t term = l->ents[drop - 1].term;
  core_log_drop(l, 0, drop, true);
  memmove(l->ents, l->ents + drop, (l->n - drop) * sizeof *l->ents);
  l->n -= drop;
  l->prev_index = through;
  l->prev_term = term;
  /* Compaction follows a snapshot, durable too: what went is covered. */
  if (l->durable < through) {
    l->durable = through;
  }
  if (l->readable < through) {
    l->readable = through;
  }
  if (l->released < through) {
    l->released = through;
  }
  /* Keep the configuration in effect at `through` as the base. */
  size_t base = 0;
  while (base + 1 < l->cfgs_n && l->cfgs[base + 1].index <= through) {
    base++;
  }
  memmove(l->cfgs, l->cfgs + base, (l->cfgs_n - base) * sizeof *l->cfgs);
  l->cfgs_n -= base;
}

void core_log_reset(struct core_log *l, uint64_t index, uint64_t term,
                    const struct core_config *cfg) {
  core_log_drop(l, 0, l->n, true);
  l->n = 0;
  l->prev_index = index;
  l->prev_term = term;
  l->durable = l->readable = l->released = index;
  l->cfgs_n = 0;
  core_log_config_push(l, index, cfg);
}

void core_log_persisted(struct core_log *l, uint64_t index, uint64_t term) {
  uint64_t t;
  if (index > l->durable && core_log_term(l, index, &t) && t == term) {
    l->durable = index;
  }
}

void core_log_readable(struct core_log *l, uint64_t index) {
  l->readable = index < l->durable ? index : l->durable;
}

void core_log_release(struct core_log *l, uint64_t through,
                      uint64_t keep_bytes) {
  assert(l->readable <= l->durable);
  if (through > l->readable) {
    through = l->readable;
  }
  if (through <= l->released) {
    return;
  }
  if (through > core_log_last(l)) {
    through = core_log_last(l);
  }
  size_t from = (size_t)(l->released - l->prev_index);
  size_t to = from;
  uint64_t held = l->held_bytes;
  while (to < (size_t)(through - l->prev_index) &&
         held - l->ents[to].len >= keep_bytes) {
    held -= l->ents[to].len;
    to++;
  }
  if (to > from) {
    core_log_drop(l, from, to, false);
    l->released = l->prev_index + to;
  }
}

const struct core_log_config *core_log_config_at(const struct core_log *l,
                                                 uint64_t index) {
  size_t i = l->cfgs_n - 1;
  while (i > 0 && l->cfgs[i].index > index) {
    i--;
  }
  return &l->cfgs[i];
}

uint64_t core_log_find_by_term(const struct core_log *l, uint64_t index,
                               uint64_t term, uint64_t *found_term) {
  uint64_t last = core_log_last(l);
  uint64_t t = 0;
  if (index > last) {
    index = last;
  }
  if (index < l->prev_index) {
    *found_term = 0;
    return index;
  }
  while (core_log_term(l, index, &t) && t > term && index > l->prev_index) {
    index--;
  }
  core_log_term(l, index, &t);
  *found_term = t;
  return index;
}
