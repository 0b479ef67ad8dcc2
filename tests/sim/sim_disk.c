/* The simulated disk: each replica's durable state (hard state, log,
 * snapshot) and its FIFO of updates whose writes are not yet durable. An
 * update's messages leave, and its committed entries are applied, only
 * once its writes and all earlier ones are durable; a crash loses the
 * whole queue. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

#include "synod.h"

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (p == NULL) {
    abort();
  }
  return p;
}

void sim_durable_init(struct sim_durable *d) {
  memset(d, 0, sizeof(*d));
  sim_log_init(&d->log, 1, true);
}

void sim_durable_close(struct sim_durable *d) {
  sim_log_close(&d->log);
  free(d->in_bytes);
  for (uint32_t i = 0; i < d->images_n; i++) {
    free(d->images[i].bytes);
  }
  d->images_n = 0;
}

const struct sim_image *sim_image_find(const struct sim_durable *d,
                                       uint64_t index) {
  for (uint32_t i = d->images_n; i > 0; i--) {
    if (d->images[i - 1].index == index) {
      return &d->images[i - 1];
    }
  }
  return NULL;
}

void sim_image_add(struct sim_durable *d, uint64_t index, uint64_t term,
                   uint8_t *bytes, uint32_t len) {
  if (d->images_n == SIM_IMAGES_MAX) {
    free(d->images[0].bytes);
    memmove(d->images, d->images + 1,
            (SIM_IMAGES_MAX - 1) * sizeof(d->images[0]));
    d->images_n--;
  }
  d->images[d->images_n++] = (struct sim_image){
      .index = index, .term = term, .len = len, .bytes = bytes};
}

/* ------------------------------------------------------- update copies */

static void copy_entries(struct sim_update *u, const struct core_update *up) {
  size_t bytes = 0;
  for (uint32_t i = 0; i < up->entries_n; i++) {
    bytes += up->entries[i].len;
  }
  u->entries_n = up->entries_n;
  u->entries = xmalloc(up->entries_n * sizeof(*u->entries) + bytes);
  uint8_t *p = (uint8_t *)(u->entries + up->entries_n);
  for (uint32_t i = 0; i < up->entries_n; i++) {
    u->entries[i] = up->entries[i];
    if (up->entries[i].len > 0) {
      memcpy(p, up->entries[i].data, up->entries[i].len);
    }
    u->entries[i].data = p;
    p += up->entries[i].len;
  }
}

/* With keep_data, NORMAL entries' bytes follow the array, for the real
 * state machine. */
static void copy_committed(struct sim_update *u, const struct core_update *up,
                           bool keep_data) {
  size_t bytes = 0;
  for (uint32_t i = 0; keep_data && i < up->committed_n; i++) {
    if (up->committed[i].type == CORE_ENTRY_NORMAL) {
      bytes += up->committed[i].len;
    }
  }
  u->committed_n = up->committed_n;
  u->committed = xmalloc(up->committed_n * sizeof(*u->committed) + bytes);
  uint8_t *p = (uint8_t *)(u->committed + up->committed_n);
  for (uint32_t i = 0; i < up->committed_n; i++) {
    const struct core_entry *e = &up->committed[i];
    struct sim_commit *c = &u->committed[i];
    memset(c, 0, sizeof(*c));
    c->index = e->index;
    c->term = e->term;
    c->type = e->type;
    c->hash = sim_entry_hash(e->type, e->data, e->len);
    if (e->type == CORE_ENTRY_CONFIG) {
      c->config_ok = core_config_decode(e->data, e->len, &c->config) == 0;
    }
    if (keep_data && e->type == CORE_ENTRY_NORMAL) {
      if (e->len > 0) {
        memcpy(p, e->data, e->len);
      }
      c->data = p;
      c->len = (uint32_t)e->len;
      p += e->len;
    }
  }
}

static void copy_chunk(struct sim_update *u, const struct core_update *up) {
  u->chunk_present = true;
  u->chunk_meta = up->snapshot_chunk.meta;
  u->chunk_offset = up->snapshot_chunk.offset;
  u->chunk_len = up->snapshot_chunk.len;
  u->chunk_last = up->snapshot_chunk.last;
  u->chunk_data = xmalloc(u->chunk_len);
  if (u->chunk_len > 0) {
    memcpy(u->chunk_data, up->snapshot_chunk.data, u->chunk_len);
  }
}

/* An append with entries the core released (data NULL) gets them from
 * the durable log, as the node fills them from its store; NULL
 * (the message is dropped, as the node drops it) if the log no longer
 * holds one. A durable entry of another term is a bug of the release
 * rule: the core released data it could not get back. */
static struct sim_msg *msg_copy(struct sim *s, struct sim_replica *rep,
                                const struct core_msg *m) {
  uint32_t n = m->type == CORE_MSG_APPEND ? m->append.entries_n : 0;
  uint32_t released = 0;
  for (uint32_t i = 0; i < n; i++) {
    released += core_entry_released(&m->append.entries[i]);
  }
  if (released == 0) {
    return sim_msg_clone(m, NULL);
  }
  struct core_entry *es = xmalloc(n * sizeof(*es));
  memcpy(es, m->append.entries, n * sizeof(*es));
  for (uint32_t i = 0; i < n; i++) {
    if (!core_entry_released(&es[i])) {
      continue;
    }
    const struct sim_entry *d = sim_log_get(&rep->dur.log, es[i].index);
    if (es[i].index > rep->store_readable ||
        (d == NULL && es[i].index >= rep->dur.log.first)) {
      sim_fail(s,
               "r%" PRIu64 ": entry %" PRIu64 " released, but the store "
               "reads back only through %" PRIu64 " (durable through %" PRIu64
               ")",
               rep->id, es[i].index, rep->store_readable,
               sim_log_last(&rep->dur.log));
      free(es);
      return NULL;
    }
    if (d == NULL) { /* compacted by a snapshot since: the node drops it */
      sim_trace(s, rep->id,
                "drop append to r%" PRIu64 ": entry %" PRIu64
                " released and compacted",
                m->to, es[i].index);
      s->stats.appends_unfilled++;
      free(es);
      return NULL;
    }
    if (d->term != es[i].term || d->len != es[i].len) {
      sim_fail(s,
               "r%" PRIu64 ": released entry %" PRIu64 "/%" PRIu64
               " (%zu bytes) is %" PRIu64 "/%" PRIu32 " bytes on disk",
               rep->id, es[i].index, es[i].term, es[i].len, d->term, d->len);
      free(es);
      return NULL;
    }
    es[i].data = d->data;
    s->stats.entries_filled++;
  }
  struct core_msg filled = *m;
  filled.append.entries = es;
  struct sim_msg *c = sim_msg_clone(&filled, NULL);
  free(es);
  return c;
}

struct sim_update *sim_update_copy(struct sim *s, struct sim_replica *rep,
                                   const struct core_update *up,
                                   bool keep_data) {
  struct sim_update *u = xmalloc(sizeof(*u));
  memset(u, 0, sizeof(*u));
  u->hs_changed = up->hard_state_changed;
  u->hs = up->hard_state;
  u->truncate_from = up->truncate_from;
  if (up->entries_n > 0) {
    copy_entries(u, up);
  }
  if (up->snapshot_chunk_present) {
    copy_chunk(u, up);
  }
  if (up->msgs_n > 0) {
    u->msgs_n = up->msgs_n;
    u->msgs = xmalloc(up->msgs_n * sizeof(*u->msgs));
    for (uint32_t i = 0; i < up->msgs_n; i++) {
      u->msgs[i] = msg_copy(s, rep, &up->msgs[i]);
    }
  }
  u->install_present = up->snapshot_install_present;
  u->install = up->snapshot_install;
  if (up->committed_n > 0) {
    copy_committed(u, up, keep_data);
  }
  if (up->reads_n > 0) {
    u->reads_n = up->reads_n;
    u->reads = xmalloc(up->reads_n * sizeof(*u->reads));
    memcpy(u->reads, up->reads, up->reads_n * sizeof(*u->reads));
  }
  u->snapshot_wanted = up->snapshot_wanted;
  return u;
}

void sim_disk_checkpoint(struct sim_replica *rep) {
  uint64_t last = sim_log_last(&rep->dur.log);
  rep->store_readable = last > rep->dur.snap.index ? last : rep->dur.snap.index;
}

void sim_update_free(struct sim_update *u) {
  for (uint32_t i = 0; i < u->msgs_n; i++) {
    free(u->msgs[i]); /* NULL once handed to the network */
  }
  free(u->msgs);
  free(u->entries);
  free(u->chunk_data);
  free(u->committed);
  free(u->reads);
  free(u);
}

/* ------------------------------------------------------------ the queue */

static bool has_writes(const struct sim_update *u) {
  return u->hs_changed || u->truncate_from != 0 || u->entries_n > 0 ||
         u->chunk_present;
}

void sim_disk_enqueue(struct sim *s, struct sim_replica *rep,
                      struct sim_update *u) {
  uint64_t done = s->now_ms;
  if (has_writes(u)) {
    uint64_t lat = sim_rand_range(&s->rand, s->f.disk_min_ms, s->f.disk_max_ms);
    if (sim_rand_ppm(&s->rand, s->f.disk_slow_ppm)) {
      lat = lat * 20 + 20;
    }
    done += lat;
  }
  if (done < rep->q_done_ms) {
    done = rep->q_done_ms; /* FIFO: never durable before earlier writes */
  }
  rep->q_done_ms = done;
  u->done_ms = done;
  if (rep->q_tail != NULL) {
    rep->q_tail->next = u;
  } else {
    rep->q_head = u;
  }
  rep->q_tail = u;
  sim_schedule(s, done, SIM_EV_DISK, rep->id, NULL);
}

void sim_disk_drop(struct sim_replica *rep) {
  while (rep->q_head != NULL) {
    struct sim_update *u = rep->q_head;
    rep->q_head = u->next;
    sim_update_free(u);
  }
  rep->q_tail = NULL;
  rep->q_done_ms = 0;
}

/* ---------------------------------------------------- durable writes */

static uint64_t term_at(const struct sim_durable *d, uint64_t index) {
  if (index == d->snap.index) {
    return d->snap.term;
  }
  const struct sim_entry *e = sim_log_get(&d->log, index);
  return e != NULL ? e->term : 0;
}

/* Checks a batch of entries before it is written: contiguous, terms not
 * decreasing, nothing below the snapshot, no gap after the log. */
static bool entries_ok(struct sim *s, struct sim_replica *rep,
                       const struct sim_update *u) {
  const struct sim_durable *d = &rep->dur;
  const struct core_entry *es = u->entries;
  for (uint32_t i = 1; i < u->entries_n; i++) {
    if (es[i].index != es[0].index + i || es[i].term < es[i - 1].term) {
      sim_fail(s,
               "r%" PRIu64 ": update entries out of order at %" PRIu64
               "/%" PRIu64 " after %" PRIu64 "/%" PRIu64,
               rep->id, es[i].index, es[i].term, es[i - 1].index,
               es[i - 1].term);
      return false;
    }
  }
  if (es[0].index <= d->snap.index) {
    sim_fail(s,
             "r%" PRIu64 " writes entry %" PRIu64 "/%" PRIu64
             " at or below its durable snapshot %" PRIu64,
             rep->id, es[0].index, es[0].term, d->snap.index);
    return false;
  }
  if (es[0].index > sim_log_last(&d->log) + 1) {
    sim_fail(s,
             "r%" PRIu64 " writes entries from %" PRIu64
             " but its durable log ends at %" PRIu64 " (a gap)",
             rep->id, es[0].index, sim_log_last(&d->log));
    return false;
  }
  return true;
}

static void write_log(struct sim *s, struct sim_replica *rep,
                      const struct sim_update *u) {
  struct sim_durable *d = &rep->dur;
  if (u->truncate_from != 0) {
    if (u->truncate_from <= d->snap.index) {
      sim_fail(s,
               "r%" PRIu64 " truncates its log from %" PRIu64
               ", inside its durable snapshot through %" PRIu64,
               rep->id, u->truncate_from, d->snap.index);
      return;
    }
    sim_log_truncate(&d->log, u->truncate_from);
  }
  if (u->entries_n == 0 || !entries_ok(s, rep, u)) {
    return;
  }
  const struct core_entry *first = &u->entries[0];
  const struct core_entry *last = &u->entries[u->entries_n - 1];
  uint64_t before = term_at(d, first->index - 1);
  if (before > first->term) {
    sim_fail(s,
             "r%" PRIu64 " writes %" PRIu64 "/%" PRIu64
             " after a durable entry of term %" PRIu64,
             rep->id, first->index, first->term, before);
    return;
  }
  sim_log_put(&d->log, u->entries, u->entries_n);
  const struct sim_entry *after = sim_log_get(&d->log, last->index + 1);
  if (after != NULL && after->term < last->term) {
    sim_fail(s,
             "r%" PRIu64 " overwrote %" PRIu64 "..%" PRIu64
             " without truncating: a stale entry of term %" PRIu64
             " follows term %" PRIu64,
             rep->id, first->index, last->index, after->term, last->term);
  }
}

static void write_chunk(struct sim *s, struct sim_replica *rep,
                        const struct sim_update *u) {
  struct sim_durable *d = &rep->dur;
  const struct core_snapshot_meta *m = &u->chunk_meta;
  if (m->size_bytes > (64u << 20)) {
    sim_fail(s, "r%" PRIu64 ": snapshot chunk claims %" PRIu64 " bytes",
             rep->id, m->size_bytes);
    return;
  }
  if (d->in_bytes == NULL || d->in_meta.index != m->index ||
      d->in_meta.term != m->term || u->chunk_offset == 0) {
    free(d->in_bytes);
    d->in_meta = *m;
    d->in_bytes = calloc(1, m->size_bytes ? m->size_bytes : 1);
  }
  if (u->chunk_offset + u->chunk_len > d->in_meta.size_bytes) {
    sim_fail(s,
             "r%" PRIu64 ": snapshot chunk %" PRIu64 "+%" PRIu32
             " beyond its size %" PRIu64,
             rep->id, u->chunk_offset, u->chunk_len, d->in_meta.size_bytes);
    return;
  }
  memcpy(d->in_bytes + u->chunk_offset, u->chunk_data, u->chunk_len);
}

void sim_disk_done(struct sim *s, struct sim_replica *rep) {
  struct sim_update *u = rep->q_head;
  if (u == NULL) {
    return;
  }
  rep->q_head = u->next;
  if (rep->q_head == NULL) {
    rep->q_tail = NULL;
  }
  uint32_t gen = rep->gen;
  if (u->hs_changed) {
    sim_check_hard_state(s, rep, &u->hs);
    rep->dur.hs = u->hs;
  }
  write_log(s, rep, u);
  if (u->truncate_from != 0 ||
      (s->release_keep > 0 && sim_rand_ppm(&s->ckpt_rand, 250000))) {
    sim_disk_checkpoint(rep); /* a truncation goes to LMDB directly */
  }
  if (u->truncate_from != 0 || u->install_present) {
    rep->release_sent = UINT64_MAX; /* the core lowered its mark: again */
  }
  if (u->chunk_present) {
    write_chunk(s, rep, u);
  }
  for (uint32_t i = 0; i < u->msgs_n; i++) {
    if (u->msgs[i] == NULL) {
      continue; /* an append that could not be filled */
    }
    sim_check_sent(s, rep, &u->msgs[i]->m);
    sim_net_send(s, rep, u->msgs[i]);
    u->msgs[i] = NULL;
  }
  sim_apply_update(s, rep, u);
  if (u->entries_n > 0 && rep->up && rep->gen == gen && !s->failed) {
    const struct core_entry *last = &u->entries[u->entries_n - 1];
    struct core_event ev = {.type = CORE_EVENT_PERSISTED,
                            .persisted = {last->index, last->term}};
    int rv = sim_step_core(s, rep, &ev);
    if (rv != 0) {
      sim_fail(s, "r%" PRIu64 ": PERSISTED %" PRIu64 "/%" PRIu64 " returned %s",
               rep->id, last->index, last->term, s->errmsg);
    }
  }

  sim_update_free(u);
}
