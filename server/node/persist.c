/* Persistence: the core's writes, merged per batch into one store write
 * and one sync (group commit); then the messages that waited for them
 * ("persist before send").
 *
 * Where the sync runs depends on the role. A leader's runs on libuv's
 * thread pool: its loop keeps serving clients meanwhile, and what arrives
 * during one write goes to disk in the next, so the batch grows with the
 * load. Up to PERSIST_INFLIGHT_MAX batches are in flight: each is written
 * in its turn and synced outside the lock, so a batch never waits for the
 * sync of the one before it (see struct persist). A follower's runs on
 * its loop (when nothing is in flight on the pool), once per loop turn
 * (an idle handle): it has nothing else to serve, the appends that arrive
 * during a sync wait in the socket and go to disk together in the next
 * turn, and each batch saves two thread handoffs (a wakeup each way, tens
 * of microseconds on a VM) on the path of every write. Snapshots, which
 * take longer, still go to the pool. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "node_int.h"
#include "synod.h"

#define container_of(ptr, type, member)                                        \
  ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

int persist_init(struct node *n) {
  struct persist *p = &n->persist;
  memset(p, 0, sizeof *p);
  p->idle.data = n;
  if (uv_mutex_init(&p->write_lock) != 0) {
    return SYNOD_ENOMEM;
  }
  if (uv_cond_init(&p->write_cond) != 0) {
    uv_mutex_destroy(&p->write_lock);
    return SYNOD_ENOMEM;
  }
  p->lock_open = true;
  return 0;
}

void persist_start_loop(struct node *n) {
  uv_idle_init(n->loop, &n->persist.idle);
  n->persist.idle_open = true;
}

void persist_stop_loop(struct node *n) {
  if (n->persist.idle_open) {
    uv_close((uv_handle_t *)&n->persist.idle, NULL);
    n->persist.idle_open = false;
  }
}

static void batch_free(struct persist_batch *b) {
  if (b == NULL) {
    return;
  }
  free(b->arena);
  free(b->entries);
  free(b->msgs);
  free(b->snapshot.image);
  free(b);
}

void persist_close(struct node *n) {
  struct persist *p = &n->persist;
  struct persist_batch *b = p->head;
  while (b != NULL) {
    struct persist_batch *next = b->next;
    batch_free(b);
    b = next;
  }
  p->head = p->tail = NULL;
  free(p->stage.image);
  memset(&p->stage, 0, sizeof p->stage);
  free(p->fill_ents);
  p->fill_ents = NULL;
  p->fill_cap = 0;
  if (p->lock_open) {
    uv_cond_destroy(&p->write_cond);
    uv_mutex_destroy(&p->write_lock);
    p->lock_open = false;
  }
}

/* A new batch at the tail. */
static struct persist_batch *batch_new(struct node *n) {
  struct persist *p = &n->persist;
  struct persist_batch *b = calloc(1, sizeof *b);
  if (b == NULL) {
    return NULL;
  }
  b->work.data = n;
  if (p->tail == NULL) {
    p->head = b;
  } else {
    p->tail->next = b;
  }
  p->tail = b;
  return b;
}

/* The batch that takes new writes: the tail unless it has started or
 * holds a snapshot or a step of one (which close a batch). */
static struct persist_batch *batch_open(struct node *n) {
  struct persist_batch *t = n->persist.tail;
  if (t != NULL && !t->started && !t->snapshot.present && !t->stage_step) {
    return t;
  }
  return batch_new(n);
}

/* Applies a truncation to the batch: entries at or after `from` that the
 * batch holds are dropped; if that reaches the batch's first entry, the
 * truncation also applies to what is on disk or in flight. */
static void batch_truncate(struct persist_batch *b, uint64_t from) {
  while (b->entries_n > 0 && b->entries[b->entries_n - 1].index >= from) {
    const struct core_entry *e = &b->entries[--b->entries_n];
    if (e->len > 0) {
      b->arena_len = (size_t)(e->data - b->arena);
    }
  }
  if (b->entries_n == 0 && (b->truncate_from == 0 || from < b->truncate_from)) {
    b->truncate_from = from;
  }
}

/* Copies the entries into the batch: their payloads go into one buffer,
 * the batch's arena (one allocation for the batch rather than one per
 * entry); when it grows, the copies already made are pointed at its new
 * place. */
static int batch_add_entries(struct persist_batch *b,
                             const struct core_entry *es, uint32_t n) {
  if (b->entries_n + n > b->entries_cap) {
    uint32_t cap = b->entries_cap ? b->entries_cap : 64;
    while (cap < b->entries_n + n) {
      cap *= 2;
    }
    struct core_entry *e = realloc(b->entries, cap * sizeof *e);
    if (e == NULL) {
      return SYNOD_ENOMEM;
    }
    b->entries = e;
    b->entries_cap = cap;
  }
  size_t bytes = 0;
  for (uint32_t i = 0; i < n; i++) {
    bytes += es[i].len;
  }
  if (b->arena_len + bytes > b->arena_cap) {
    size_t cap = b->arena_cap ? b->arena_cap : 4096;
    while (cap < b->arena_len + bytes) {
      cap *= 2;
    }
    uint8_t *a = realloc(b->arena, cap);
    if (a == NULL) {
      return SYNOD_ENOMEM;
    }
    for (uint32_t i = 0; a != b->arena && i < b->entries_n; i++) {
      struct core_entry *e = &b->entries[i];
      e->data = e->len > 0 ? a + (e->data - b->arena) : NULL;
    }
    b->arena = a;
    b->arena_cap = cap;
  }
  for (uint32_t i = 0; i < n; i++) {
    struct core_entry e = es[i];
    e.data = NULL;
    if (e.len > 0) {
      e.data = b->arena + b->arena_len;
      memcpy(b->arena + b->arena_len, es[i].data, e.len);
      b->arena_len += e.len;
    }
    b->entries[b->entries_n++] = e;
  }
  return 0;
}

static int batch_add_msg(struct persist_batch *b, const struct core_msg *m) {
  /* An append's entries point into the core's buffers, which the next
   * step reuses: appends are always eager (a leader's term is durable
   * before it can win). Never keep one for later; Raft tolerates the
   * loss if that ever changes. */
  assert(m->type != CORE_MSG_APPEND || m->append.entries_n == 0);
  if (m->type == CORE_MSG_APPEND && m->append.entries_n > 0) {
    log_error("node", "append to %llu deferred behind a write: dropped",
              (unsigned long long)m->to);
    return 0;
  }
  if (b->msgs_n == b->msgs_cap) {
    uint32_t cap = b->msgs_cap ? b->msgs_cap * 2 : 16;
    struct core_msg *msgs = realloc(b->msgs, cap * sizeof *msgs);
    if (msgs == NULL) {
      return SYNOD_ENOMEM;
    }
    b->msgs = msgs;
    b->msgs_cap = cap;
  }
  b->msgs[b->msgs_n++] = *m;
  return 0;
}

/* ---------------------------------------------------------------- send */

/* Fills a snapshot chunk's bytes from the store (a short read transaction
 * on this thread while the persist thread may write: the store allows it);
 * false if the store no longer holds that snapshot (the core will retry
 * with the newer one). */
static bool persist_fill_chunk(struct node *n, struct core_msg *m) {
  char why[SYNOD_ERRMSG_MAX];
  size_t len = m->snapshot.len;
  if (m->snapshot.meta.index != n->snap_meta.index) {
    log_debug("node", "snapshot chunk %llu@%llu to %llu: not the latest",
              (unsigned long long)m->snapshot.meta.index,
              (unsigned long long)m->snapshot.offset,
              (unsigned long long)m->to);
    return false;
  }
  if (len > n->snap_chunk_cap) {
    uint8_t *p = realloc(n->snap_chunk, len);
    if (p == NULL) {
      log_warn("node", "snapshot chunk of %zu bytes: out of memory", len);
      return false;
    }
    n->snap_chunk = p;
    n->snap_chunk_cap = len;
  }
  int rv = store_snapshot_read_at(&n->store, m->snapshot.meta.index,
                                  m->snapshot.offset, n->snap_chunk, len, why);
  if (rv != 0) {
    log_warn("node", "snapshot chunk to %llu: %s", (unsigned long long)m->to,
             why);
    return false;
  }
  m->snapshot.data = n->snap_chunk;
  return true;
}

/* Fills the entries of an append that the core released (data NULL) from
 * the store, in a read transaction of this thread (the store allows it
 * while the persist thread writes). *block gets the store's block the
 * entries then point into. False if the store no longer holds one of them
 * (a snapshot compacted it since: the core moves on to the snapshot) or
 * holds another entry there (a bug: said loudly); the message is then
 * dropped, which Raft tolerates (the follower asks again). */
static bool persist_fill_entries(struct node *n, struct core_msg *m,
                                 struct store_entry **block) {
  struct persist *p = &n->persist;
  const uint32_t count = m->append.entries_n;
  uint32_t first = count, last = 0;
  for (uint32_t i = 0; i < count; i++) {
    if (core_entry_released(&m->append.entries[i])) {
      first = first < i ? first : i;
      last = i;
    }
  }
  if (first == count) {
    return true;
  }
  if (count > p->fill_cap) {
    struct core_entry *es = realloc(p->fill_ents, count * sizeof *es);
    if (es == NULL) {
      log_warn("node", "append to %llu: no memory to fill %u entries",
               (unsigned long long)m->to, count);
      return false;
    }
    p->fill_ents = es;
    p->fill_cap = count;
  }
  const struct core_entry *in = m->append.entries;
  char why[SYNOD_ERRMSG_MAX];
  size_t got = 0;
  int rv = store_log_read_at(&n->store, in[first].index, in[last].index, block,
                             &got, why);
  if (rv != 0) {
    /* Compacted: a snapshot since, and the core moves on to it. Anything
     * else breaks what RELEASE promised: said, once a second at most. */
    uint64_t now = node_now_ms(n);
    p->appends_unfilled++;
    if (rv == SYNOD_ECOMPACTED) {
      log_debug("node", "append to %llu: %s", (unsigned long long)m->to, why);
    } else if (now - p->unfilled_warned_ms >= 1000) {
      p->unfilled_warned_ms = now;
      log_warn("node", "append to %llu not sent: %s", (unsigned long long)m->to,
               why);
    }
    return false;
  }
  memcpy(p->fill_ents, in, count * sizeof *in);
  for (uint32_t i = first; i <= last; i++) {
    const struct store_entry *e = &(*block)[i - first];
    struct core_entry *f = &p->fill_ents[i];
    if (i - first >= got || e->index != f->index || e->term != f->term ||
        e->len != f->len) {
      log_error("node",
                "append to %llu: entry %llu (term %llu, %zu bytes) released "
                "by the core is %s in the store; message dropped",
                (unsigned long long)m->to, (unsigned long long)f->index,
                (unsigned long long)f->term, f->len,
                i - first >= got ? "missing" : "another");
      store_entries_free(*block);
      *block = NULL;
      p->appends_unfilled++;
      return false;
    }
    f->data = e->data;
  }
  m->append.entries = p->fill_ents;
  p->appends_filled++;
  return true;
}

static void persist_send(struct node *n, const struct core_msg *msg) {
  struct core_msg m = *msg;
  struct store_entry *block = NULL;
  if (m.type == CORE_MSG_SNAPSHOT && !persist_fill_chunk(n, &m)) {
    return;
  }
  if (m.type == CORE_MSG_APPEND && peer_net_is_up(n->peer_net, m.to) &&
      !persist_fill_entries(n, &m, &block)) {
    return;
  }
  int rv = peer_net_send(n->peer_net, &m);
  store_entries_free(block);
  metrics_msg_sent(n, &m);
  if (rv != 0) {
    log_warn("node", "send %s to %llu: %s", core_msg_type_name(m.type),
             (unsigned long long)m.to, synod_strerror(rv));
  }
}

/* Messages a leader or pre-candidate may send before its writes are
 * durable (Raft thesis 10.2.1: the leader writes its log in parallel with
 * replicating it), provided its term is already durable: a replica that
 * restarts must never find itself in an older term than messages it sent. */
static bool persist_msg_is_eager(const struct node *n,
                                 const struct core_msg *m) {
  switch (m->type) {
  case CORE_MSG_APPEND:
  case CORE_MSG_HEARTBEAT:
  case CORE_MSG_SNAPSHOT:
  case CORE_MSG_TIMEOUT_NOW:
  case CORE_MSG_PRE_VOTE:
    return core_term(n->core) == n->persist.durable_term;
  default:
    return false;
  }
}

/* ------------------------------------------------------------- receive */

/* Logs a transfer's progress about once a second, and at its end. */
static void persist_chunk_progress(struct node *n,
                                   const struct core_snapshot_meta *meta,
                                   bool last) {
  uint64_t now = node_now_ms(n);
  if (n->recv_len == 0 || n->recv_started_ms == 0 ||
      n->recv_len <= n->recv_last_len) {
    n->recv_started_ms = n->recv_logged_ms = now;
  }
  n->recv_last_len = n->recv_len;
  if (!last && now - n->recv_logged_ms < 1000) {
    return;
  }
  double secs = (double)(now - n->recv_started_ms) / 1000.0;
  double total = meta->size_bytes ? (double)meta->size_bytes : 1.0;
  log_info("node",
           "snapshot %llu from the leader: %zu of %llu bytes (%.0f%%)"
           ", %.1f MB/s%s",
           (unsigned long long)meta->index, n->recv_len,
           (unsigned long long)meta->size_bytes,
           100.0 * (double)n->recv_len / total,
           secs > 0 ? (double)n->recv_len / 1e6 / secs : 0.0,
           last ? ", complete" : "");
  n->recv_logged_ms = now;
  if (last) {
    n->recv_started_ms = 0;
  }
}

/* Assembles a received image; on the last chunk the batch gets the
 * snapshot write. Chunks arrive in order (the core checks offsets). */
static int persist_chunk(struct node *n, struct persist_batch *b,
                         const struct core_update *up) {
  const uint8_t *data = up->snapshot_chunk.data;
  uint64_t off = up->snapshot_chunk.offset;
  size_t len = up->snapshot_chunk.len;
  if (off == 0) {
    n->recv_len = 0;
  }
  if (off != n->recv_len) {
    log_warn("node", "snapshot chunk at %llu, have %zu bytes: dropped",
             (unsigned long long)off, n->recv_len);
    return 0;
  }
  if (n->recv_len + len > n->recv_cap) {
    size_t cap = n->recv_cap ? n->recv_cap : 1 << 16;
    while (cap < n->recv_len + len) {
      cap *= 2;
    }
    uint8_t *img = realloc(n->recv_image, cap);
    if (img == NULL) {
      return SYNOD_ENOMEM;
    }
    n->recv_image = img;
    n->recv_cap = cap;
  }
  memcpy(n->recv_image + n->recv_len, data, len);
  n->recv_len += len;
  persist_chunk_progress(n, &up->snapshot_chunk.meta, up->snapshot_chunk.last);
  if (up->snapshot_chunk.last) {
    b->snapshot.present = true;
    b->snapshot.received = true;
    b->snapshot.meta = up->snapshot_chunk.meta;
    b->snapshot.image = n->recv_image;
    b->snapshot.len = n->recv_len;
    n->recv_image = NULL;
    n->recv_len = n->recv_cap = 0;
  }
  return 0;
}

/* -------------------------------------------------------------- worker */

/* Drops a snapshot pending in the store, if any: a staged one of ours
 * that a snapshot saved whole replaces, or one left by a step that was
 * never queued. If its chunks cannot be deleted now, the next begin or
 * open deletes them. */
static void persist_store_abort(struct store *s) {
  if (store_snapshot_pending(s)) {
    (void)store_snapshot_abort(s);
  }
}

/* Whether the store holds a snapshot at or after index: one received from
 * the leader meanwhile; a snapshot of ours there would be refused. */
static bool persist_store_has(const struct store *s, uint64_t index) {
  uint64_t last, term;
  store_snapshot_last(s, &last, &term);
  return index <= last;
}

/* One step of the staged snapshot st, on the worker: begin it, write the
 * next PERSIST_STAGE_STEP_BYTES of its image (one transaction), and make
 * it current after the last; or drop it. */
static int persist_stage_write(struct store *s, struct persist_stage *st,
                               bool abort) {
  int rv = 0;
  if (abort || st->lost) {
    persist_store_abort(s);
    return 0;
  }
  if (st->written == 0) {
    uint8_t cfg[CORE_CONFIG_ENCODED_MAX];
    size_t cfg_len = core_config_encode(&st->meta.config, cfg);
    persist_store_abort(s); /* one left by a step that was never queued */
    if (persist_store_has(s, st->meta.index)) {
      st->lost = true;
      return 0;
    }
    rv = store_snapshot_begin(s, st->meta.index, st->meta.term, cfg, cfg_len);
  } else if (!store_snapshot_pending(s)) {
    st->lost = true; /* the save of one received from the leader dropped it */
    return 0;
  }
  size_t len =
      st->len - st->written < st->step ? st->len - st->written : st->step;
  if (rv == 0 &&
      (rv = store_snapshot_write(s, st->image + st->written, len)) == 0) {
    st->written += len;
  }
  if (rv == 0 && st->written == st->len) {
    rv = store_snapshot_commit(s, NODE_SNAPSHOT_KEEP_ENTRIES);
    st->committed = rv == 0;
    malloc_trim(0); /* as after a whole image's write, below */
  }
  return rv;
}

/* Writes the batch; a write-ahead record is left for persist_sync(). The
 * only code that writes the store while the node runs: on a pool thread
 * under the write lock, or on the loop with nothing in flight. */
static int persist_write(struct store *s, struct persist_batch *b,
                         struct persist_stage *st, bool *sync_needed) {
  struct store_hard_state hs = {b->hard_state.term, b->hard_state.vote,
                                b->hard_state.commit};
  struct store_batch sb = {
      .hard_state = b->hard_state_set && !b->snapshot.present ? &hs : NULL,
      .truncate_from = b->truncate_from,
      .entries = (const struct store_entry *)NULL,
      .entries_count = b->entries_n};
  struct store_entry *es = calloc(b->entries_n ? b->entries_n : 1, sizeof *es);
  int rv;
  *sync_needed = false;
  if (es == NULL) {
    errmsg_set(b->errmsg, "persist: out of memory");
    return SYNOD_ENOMEM;
  }
  for (uint32_t i = 0; i < b->entries_n; i++) {
    const struct core_entry *e = &b->entries[i];
    es[i] = (struct store_entry){e->index, e->term, e->type, e->data, e->len};
  }
  sb.entries = es;
  rv = store_batch_write_unsynced(s, &sb, sync_needed);
  free(es);
  if (rv == 0 && b->stage_step) {
    rv = persist_stage_write(s, st, b->stage_abort);
  }
  if (rv == 0 && b->snapshot.present) {
    persist_store_abort(s);
    b->snapshot.stale =
        !b->snapshot.received && persist_store_has(s, b->snapshot.meta.index);
  }
  if (rv == 0 && b->snapshot.present && !b->snapshot.stale) {
    uint8_t cfg[CORE_CONFIG_ENCODED_MAX];
    size_t cfg_len = core_config_encode(&b->snapshot.meta.config, cfg);
    rv = store_snapshot_save(s, b->snapshot.meta.index, b->snapshot.meta.term,
                             cfg, cfg_len, b->snapshot.image, b->snapshot.len,
                             b->snapshot.received ? 0
                                                  : NODE_SNAPSHOT_KEEP_ENTRIES);
    if (rv == 0 && b->hard_state_set) {
      rv = store_hard_state_save(s, &hs);
    }
    /* LMDB's dirty pages for the image (4 KiB each, as many as the image
     * has) were malloc'd on this thread and are free now: give them back,
     * or this thread's arena keeps the image's size for good. */
    malloc_trim(0);
  }
  if (rv != 0) {
    errmsg_set(b->errmsg, "%s", store_errmsg(s));
  }
  b->checkpoint_durations = s->checkpoint_durations;
  b->readable = store_log_readable_last(s);
  return rv;
}

/* Writes and syncs b where it runs: the write in its ticket's turn, the
 * sync outside the lock (a sync that starts after a write covers it and
 * every write before it, so a later batch's sync never leaves an earlier
 * one behind: completion in list order stays true). */
static void persist_write_sync(struct node *n, struct persist_batch *b) {
  struct persist *p = &n->persist;
  uint64_t start_us = metrics_now_us();
  bool sync_needed = false;
  uv_mutex_lock(&p->write_lock);
  while (p->write_turn != b->ticket) {
    uv_cond_wait(&p->write_cond, &p->write_lock);
  }
  if (p->write_failed) {
    b->rv = SYNOD_EIO;
    errmsg_set(b->errmsg, "not written after an earlier write failed: %s",
               p->write_errmsg);
  } else if ((b->rv = persist_write(&n->store, b, &p->stage, &sync_needed)) !=
             0) {
    p->write_failed = true;
    snprintf(p->write_errmsg, sizeof p->write_errmsg, "%s", b->errmsg);
  }
  p->write_turn++;
  uv_cond_broadcast(&p->write_cond);
  uv_mutex_unlock(&p->write_lock);
  if (b->rv == 0 && sync_needed) {
    b->rv = store_wal_sync(&n->store, b->errmsg);
  }
  b->write_us = metrics_now_us() - start_us;
}

static void persist_work_cb(uv_work_t *w) {
  struct persist_batch *b = container_of(w, struct persist_batch, work);
  persist_write_sync(w->data, b);
}

/* A snapshot of len bytes is durable: it becomes the one we serve and, if
 * we took it, the core may compact its log. */
static void persist_snapshot_current(struct node *n,
                                     const struct core_snapshot_meta *meta,
                                     size_t len, bool taken) {
  n->snap_len = len;
  n->snap_meta = *meta;
  if (taken) {
    struct core_event ev = {.type = CORE_EVENT_SNAPSHOT_TAKEN};
    ev.snapshot = n->snap_meta;
    n->snapshot_in_progress = false;
    node_step(n, &ev);
  }
}

/* The latest batch holding a snapshot received from the leader, waiting
 * to be written (steps of a staged snapshot may follow it); NULL if none. */
static const struct persist_batch *persist_received(const struct persist *p) {
  const struct persist_batch *r = NULL;
  for (const struct persist_batch *b = p->head; b != NULL; b = b->next) {
    if (b->snapshot.present && b->snapshot.received) {
      r = b;
    }
  }
  return r;
}

/* Queues the next step of the staged snapshot behind what is queued now;
 * an abort if the state it was taken from is gone (a snapshot received
 * since, or coming) or the replica is stopping. */
static int persist_stage_queue(struct node *n) {
  struct persist *p = &n->persist;
  struct persist_batch *b = batch_new(n);
  if (b == NULL) {
    return SYNOD_ENOMEM;
  }
  b->stage_step = true;
  b->stage_abort = p->stage.generation != n->fsm_generation ||
                   n->shutting_down || persist_received(p) != NULL;
  return 0;
}

/* A step of the staged snapshot is durable: the snapshot is current, or
 * its next step is queued, or it was dropped. */
static void persist_stage_done(struct node *n, const struct persist_batch *b) {
  struct persist_stage *st = &n->persist.stage;
  struct core_snapshot_meta meta = st->meta;
  size_t len = st->len;
  bool committed = st->committed;
  st->write_us += b->write_us;
  if (committed) {
    metrics_snapshot_taken(n, len, st->write_us);
  }
  if (!committed && !b->stage_abort && !st->lost &&
      persist_stage_queue(n) == 0) {
    return;
  }
  if (!committed) {
    log_info("node", "snapshot at %llu: dropped after %zu of %zu bytes (%s)",
             (unsigned long long)meta.index, st->written, len,
             n->shutting_down             ? "stopping"
             : b->stage_abort || st->lost ? "one from the leader replaces it"
                                          : "out of memory");
  }
  free(st->image);
  memset(st, 0, sizeof *st);
  if (committed) {
    persist_snapshot_current(n, &meta, len, true);
  } else {
    n->snapshot_in_progress = false;
  }
}

static bool batch_has_writes(const struct persist_batch *b) {
  return b->hard_state_set || b->truncate_from != 0 || b->entries_n > 0 ||
         b->snapshot.present || b->stage_step;
}

/* The head batch is durable: send what waited for it, tell the core. */
static void persist_complete(struct node *n) {
  struct persist *p = &n->persist;
  struct persist_batch *b = p->head;
  p->head = b->next;
  if (p->head == NULL) {
    p->tail = NULL;
  }
  if (b->hard_state_set) {
    p->durable_term = b->hard_state.term;
    p->durable_vote = b->hard_state.vote;
  }
  if (batch_has_writes(b)) {
    p->syncs++;
    p->synced_entries += b->entries_n;
    metrics_batch_done(n, b);
  }
  for (uint32_t i = 0; i < b->msgs_n; i++) {
    persist_send(n, &b->msgs[i]);
  }
  if (b->snapshot.present && b->snapshot.stale) {
    log_info("node", "snapshot at %llu: dropped (one from the leader is newer)",
             (unsigned long long)b->snapshot.meta.index);
    n->snapshot_in_progress = false;
  } else if (b->snapshot.present) {
    persist_snapshot_current(n, &b->snapshot.meta, b->snapshot.len,
                             !b->snapshot.received);
  }
  if (b->stage_step) {
    persist_stage_done(n, b);
  }
  if (b->entries_n > 0) {
    struct core_event ev = {.type = CORE_EVENT_PERSISTED};
    ev.persisted.index = b->entries[b->entries_n - 1].index;
    ev.persisted.term = b->entries[b->entries_n - 1].term;
    node_step(n, &ev);
  }
  if (batch_has_writes(b)) {
    p->release_due = b->readable; /* after its PERSISTED, as RELEASE asks */
  }
  if (b->truncate_from != 0 || b->snapshot.present) {
    /* The core lowered what it trusts the store to read back (a
     * truncation, an installed snapshot): say it again, even unchanged. */
    p->release_sent = UINT64_MAX;
  }
  batch_free(b);
}

void persist_release(struct node *n) {
  struct persist *p = &n->persist;
  if (p->release_due == p->release_sent || n->core == NULL) {
    return;
  }
  struct core_event ev = {.type = CORE_EVENT_RELEASE,
                          .release = p->release_due};
  p->release_sent = p->release_due;
  node_step(n, &ev);
}

/* Completes the batches at the head that are durable, in order. Not
 * again from inside a completion: each completion steps the core
 * (PERSISTED, SNAPSHOT_TAKEN), whose update may queue writes and so come
 * back here from persist_update() before that update is applied; a
 * second core step there would reuse the core's output (the committed
 * entries the first update has yet to apply) and apply them twice. The
 * outer loop completes what the inner call would have. */
static void persist_complete_ready(struct node *n) {
  struct persist *p = &n->persist;
  if (p->completing) {
    return;
  }
  p->completing = true;
  while (p->head != NULL && p->head->synced) {
    persist_complete(n);
  }
  p->completing = false;
}

static void persist_start(struct node *n);

static void persist_after_cb(uv_work_t *w, int status) {
  struct node *n = w->data;
  struct persist_batch *b = container_of(w, struct persist_batch, work);
  n->persist.inflight--;
  n->handles_open--;
  if (status != 0 || b->rv != 0) {
    /* The core believes these writes will last; it cannot be told
     * otherwise. Stop here: nothing that depended on them was sent, so no
     * acknowledged write is lost, and a restart starts from the disk. */
    log_error("node", "persist to %s: %s; stopping the replica",
              n->opts.data_dir, status != 0 ? uv_strerror(status) : b->errmsg);
    node_die();
  }
  b->synced = true;
  persist_start(n);
}

/* Whether the next batch is written on the loop: a follower's, unless it
 * holds a snapshot (megabytes: the loop would stop answering meanwhile)
 * or would checkpoint the write-ahead file first (8-16 ms here, in which
 * the follower would neither acknowledge nor deliver to its
 * subscribers: most of the fan-out's p99 in the 2026-12-06 runs), and
 * only with nothing in flight on the pool (writes go in order; the store
 * is then the loop's to read). */
static bool persist_on_loop(const struct node *n,
                            const struct persist_batch *b) {
  const struct persist *p = &n->persist;
  return n->role != CORE_LEADER && p->idle_open && p->inflight == 0 &&
         !b->snapshot.present && !b->stage_step &&
         !store_wal_would_checkpoint(&n->store, b->entries_n, b->arena_len);
}

/* The first batch not started yet, if any. */
static struct persist_batch *persist_next(struct persist *p) {
  struct persist_batch *b = p->head;
  while (b != NULL && b->started) {
    b = b->next;
  }
  return b;
}

/* Runs the batches on the loop, while persist_on_loop() says so. */
static void persist_idle_cb(uv_idle_t *h) {
  struct node *n = h->data;
  struct persist *p = &n->persist;
  struct persist_batch *b;
  uv_idle_stop(h);
  /* The sync below stops the loop for a disk flush; what this turn queued
   * (answers, deliveries to subscribers, requests forwarded to the
   * leader) leaves first instead of after it. libuv runs idle handles
   * before the prepare handles that would write them. */
  if (n->peer_net != NULL) {
    peer_net_flush(n->peer_net);
  }
  if (n->client_net != NULL) {
    client_net_flush(n->client_net);
  }
  while (!p->on_loop && (b = persist_next(p)) != NULL &&
         persist_on_loop(n, b)) {
    b->started = true; /* closes the batch to new writes */
    if (batch_has_writes(b)) {
      b->ticket = p->next_ticket++;
      p->on_loop = true;
      persist_write_sync(n, b);
      p->on_loop = false;
      if (b->rv != 0) {
        log_error("node", "persist to %s: %s; stopping the replica",
                  n->opts.data_dir, b->errmsg);
        node_die();
      }
    }
    b->synced = true;
    persist_complete_ready(n);
  }
  persist_start(n); /* a snapshot, or the leader's way if we became one */
}

static void persist_start(struct node *n) {
  struct persist *p = &n->persist;
  struct persist_batch *b;
  persist_complete_ready(n);
  if (p->on_loop) {
    return; /* persist_idle_cb goes on when its write is done */
  }
  bool queued = false;
  while ((b = persist_next(p)) != NULL) {
    if (!batch_has_writes(b)) {
      /* Messages only (their writes went with an earlier batch): no
       * trip to the disk; they leave when the batches before them are
       * durable. */
      b->started = b->synced = true;
      continue;
    }
    if (persist_on_loop(n, b)) {
      uv_idle_start(&p->idle, persist_idle_cb); /* keeps poll from blocking */
      break;
    }
    if (p->inflight >= PERSIST_INFLIGHT_MAX) {
      break;
    }
    /* The appends sent ahead of the write go out before the thread
     * handoff, whose wakeup would otherwise delay them. */
    if (!queued && n->peer_net != NULL) {
      peer_net_flush(n->peer_net);
    }
    b->started = true;
    b->ticket = p->next_ticket++;
    if (uv_queue_work(n->loop, &b->work, persist_work_cb, persist_after_cb)) {
      log_error("node", "persist: cannot queue work; stopping the replica");
      node_die();
    }
    p->inflight++;
    n->handles_open++;
    queued = true;
  }
  persist_complete_ready(n);
}

/* ----------------------------------------------------------------- api */

static int persist_queue(struct node *n, struct persist_batch *b,
                         const struct core_update *up, bool writes) {
  struct persist *p = &n->persist;
  int rv = 0;
  if (writes && p->latest_unsaved) {
    b->hard_state_set = true;
    b->hard_state = p->latest;
    p->latest_unsaved = false;
  }
  if (up->truncate_from != 0) {
    batch_truncate(b, up->truncate_from);
  }
  if (up->entries_n > 0) {
    rv = batch_add_entries(b, up->entries, up->entries_n);
  }
  if (rv == 0 && up->snapshot_chunk_present) {
    rv = persist_chunk(n, b, up);
  }
  for (uint32_t i = 0; rv == 0 && i < up->msgs_n; i++) {
    if (persist_msg_is_eager(n, &up->msgs[i])) {
      persist_send(n, &up->msgs[i]);
    } else {
      rv = batch_add_msg(b, &up->msgs[i]);
    }
  }
  return rv;
}

int persist_update(struct node *n, const struct core_update *up) {
  struct persist *p = &n->persist;
  bool vote_changed = false;
  if (up->hard_state_changed) {
    /* A new commit index alone need not be durable before anything (Raft
     * keeps it in volatile state): it rides with the next write instead
     * of costing a sync of its own. Term and vote must be durable. */
    vote_changed = up->hard_state.term != p->latest.term ||
                   up->hard_state.vote != p->latest.vote;
    p->latest = up->hard_state;
    p->latest_unsaved = true;
  }
  bool writes = vote_changed || up->truncate_from != 0 || up->entries_n > 0 ||
                up->snapshot_chunk_present;
  bool deferred = false;
  for (uint32_t i = 0; i < up->msgs_n && !deferred; i++) {
    deferred = !persist_msg_is_eager(n, &up->msgs[i]);
  }
  if (!writes && !deferred) {
    /* Nothing to wait for: send now. */
    for (uint32_t i = 0; i < up->msgs_n; i++) {
      persist_send(n, &up->msgs[i]);
    }
    return 0;
  }
  struct persist_batch *b = batch_open(n);
  if (b == NULL) {
    return SYNOD_ENOMEM;
  }
  int rv = persist_queue(n, b, up, writes);
  if (rv == 0) {
    persist_start(n);
  }
  return rv;
}

/* The image being installed by the update just queued, if any. */
const uint8_t *persist_installing(const struct node *n, uint64_t index,
                                  size_t *len) {
  const struct persist_batch *r = persist_received(&n->persist);
  if (r == NULL || r->snapshot.meta.index != index) {
    return NULL;
  }
  *len = r->snapshot.len;
  return r->snapshot.image;
}

/* ------------------------------------------------------------ snapshot */

/* The image bytes per step of a staged image of len bytes: at least
 * PERSIST_STAGE_STEP_BYTES, and few enough for PERSIST_STAGE_STEPS_MAX
 * steps, in whole values of half that (the store's 256 KiB). */
static size_t stage_step_bytes(size_t len) {
  const size_t unit = PERSIST_STAGE_STEP_BYTES / 2;
  size_t step = (len + PERSIST_STAGE_STEPS_MAX - 1) / PERSIST_STAGE_STEPS_MAX;
  step = (step + unit - 1) / unit * unit;
  return step > PERSIST_STAGE_STEP_BYTES ? step : PERSIST_STAGE_STEP_BYTES;
}

/* Queues a snapshot write of image (owned) at index: with the log writes
 * queued before it, or, above PERSIST_STAGE_STEP_BYTES, a step at a time
 * (struct persist_stage). */
static int snapshot_queue(struct node *n, uint64_t index, uint64_t term,
                          const struct core_config *config, uint8_t *image,
                          size_t len) {
  struct persist *p = &n->persist;
  struct core_snapshot_meta meta = {
      .index = index, .term = term, .size_bytes = len, .config = *config};
  int rv = 0;
  if (len > PERSIST_STAGE_STEP_BYTES) {
    p->stage = (struct persist_stage){.meta = meta,
                                      .image = image,
                                      .len = len,
                                      .generation = n->fsm_generation,
                                      .step = stage_step_bytes(len)};
    if ((rv = persist_stage_queue(n)) != 0) {
      memset(&p->stage, 0, sizeof p->stage);
    }
  } else {
    struct persist_batch *b = batch_open(n);
    if (b == NULL) {
      rv = SYNOD_ENOMEM;
    } else {
      b->snapshot.present = true;
      b->snapshot.meta = meta;
      b->snapshot.image = image;
      b->snapshot.len = len;
    }
  }
  if (rv != 0) {
    free(image);
    return rv;
  }
  log_info("node", "snapshot at %llu (term %llu): %zu bytes",
           (unsigned long long)index, (unsigned long long)term, len);
  persist_start(n);
  return 0;
}

/* Encoding a large state stops the loop for as long as it takes (0.35 to
 * 0.78 s for a million keys here), on every replica, every snapshot. So
 * above PERSIST_FORK_BYTES (the last image's size, or the bulk the state
 * holds now: a state's first snapshot, or the first after it grew fast,
 * has no image to go by) the image is encoded
 * by a child process, as Redis does: fork() gives it the state as it is
 * now, copy-on-write, and the loop goes on applying while it encodes.
 * The bound was 4 MiB: channels fanning out 10,000 msg/s then had images
 * of 1-4 MiB encoded on the loop every second or so, 20-45 ms each, and
 * their p99 at 20-21 ms; with 256 KiB (a fraction of a millisecond to
 * encode) 8.6-12 ms, publish rates unchanged (2026-12-06).
 * A pool thread reads the image from a pipe and reaps the child. An
 * image that comes back after the state was replaced (a snapshot
 * installed from the leader meanwhile) is dropped. */
#define PERSIST_FORK_BYTES ((size_t)256 << 10)

struct snapshot_fork {
  uv_work_t work; /* work.data = node */
  pid_t pid;
  int fd; /* the pipe's read end */
  uint64_t index, term;
  struct core_config config;
  uint64_t generation; /* n->fsm_generation when forked */
  uint8_t *image;
  size_t len;
  int status; /* the child's, from waitpid */
  char errmsg[SYNOD_ERRMSG_MAX];
};

/* The child's image is followed by its length, 8 bytes little-endian. */
#define SNAPSHOT_TRAILER_BYTES 8

/* Writes all of p to fd (a pipe); false on an error. */
static bool write_all(int fd, const uint8_t *p, size_t len) {
  for (size_t off = 0; off < len;) {
    ssize_t w = write(fd, p + off, len - off);
    if (w < 0 && errno == EINTR) {
      continue;
    }
    if (w <= 0) {
      return false;
    }
    off += (size_t)w;
  }
  return true;
}

/* The child: encode, write, exit, touching nothing else it inherited. */
static void snapshot_child(struct node *n, int fd, pid_t parent) {
  static const int sigs[] = {SIGTERM, SIGINT,  SIGHUP,
                             SIGQUIT, SIGUSR1, SIGUSR2};
  uint8_t *image;
  size_t len;
  /* Dies with the replica; a signal meant for the replica (whose handlers
   * would wake the parent's loop through the pipe they share) just ends
   * the child. */
  (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) {
    _exit(4);
  }
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
    signal(sigs[i], SIG_DFL);
  }
  if (fsm_snapshot_encode(n->fsm, &image, &len) != 0) {
    _exit(2);
  }
  /* Then the image's length: what proves to the parent that it has all
   * of it (a child killed midway ends the pipe early, without it). */
  uint8_t trailer[SNAPSHOT_TRAILER_BYTES];
  for (int i = 0; i < SNAPSHOT_TRAILER_BYTES; i++) {
    trailer[i] = (uint8_t)((uint64_t)len >> (8 * i));
  }
  if (!write_all(fd, image, len) || !write_all(fd, trailer, sizeof trailer)) {
    _exit(3);
  }
  _exit(0);
}

/* Whether the bytes read from a child end with the trailer of an image
 * of exactly the bytes before it; if so, drops the trailer from len. */
static bool snapshot_trailer_take(const uint8_t *p, size_t *len) {
  uint64_t n = 0;
  if (*len < SNAPSHOT_TRAILER_BYTES) {
    return false;
  }
  for (int i = 0; i < SNAPSHOT_TRAILER_BYTES; i++) {
    n |= (uint64_t)p[*len - SNAPSHOT_TRAILER_BYTES + (size_t)i] << (8 * i);
  }
  if (n == 0 || n != *len - SNAPSHOT_TRAILER_BYTES) {
    return false;
  }
  *len = (size_t)n;
  return true;
}

static void snapshot_fork_work_cb(uv_work_t *w) {
  struct snapshot_fork *f = container_of(w, struct snapshot_fork, work);
  size_t cap = 1 << 20;
  f->image = malloc(cap);
  f->len = 0;
  for (;;) {
    if (f->image == NULL) {
      errmsg_set(f->errmsg, "out of memory for %zu bytes of image", cap);
      break;
    }
    if (f->len == cap) {
      uint8_t *p = realloc(f->image, cap *= 2);
      if (p == NULL) {
        free(f->image);
        f->image = NULL;
        continue;
      }
      f->image = p;
    }
    ssize_t r = read(f->fd, f->image + f->len, cap - f->len);
    if (r < 0 && errno == EINTR) {
      continue;
    }
    if (r < 0) {
      errmsg_set(f->errmsg, "read from the child: %s", strerror(errno));
      break;
    }
    if (r == 0) {
      break;
    }
    f->len += (size_t)r;
  }
  close(f->fd);
  if (f->image == NULL || f->errmsg[0] != '\0') {
    kill(f->pid, SIGKILL);
  } else if (!snapshot_trailer_take(f->image, &f->len)) {
    errmsg_set(f->errmsg,
               "the image ended after %zu bytes without its length: the "
               "child did not finish",
               f->len);
  }
  pid_t got;
  while ((got = waitpid(f->pid, &f->status, 0)) < 0 && errno == EINTR) {
  }
  if (got < 0 && f->errmsg[0] == '\0') {
    errmsg_set(f->errmsg, "waitpid(%d): %s", (int)f->pid, strerror(errno));
  }
}

static void snapshot_fork_after_cb(uv_work_t *w, int status) {
  struct node *n = w->data;
  struct snapshot_fork *f = container_of(w, struct snapshot_fork, work);
  n->handles_open--;
  n->snapshot_forked = false;
  bool ok = status == 0 && f->image != NULL && f->errmsg[0] == '\0' &&
            WIFEXITED(f->status) && WEXITSTATUS(f->status) == 0;
  if (!ok) {
    log_warn("node", "snapshot at %llu: the child encoding it failed (%s)",
             (unsigned long long)f->index,
             f->errmsg[0] != '\0'    ? f->errmsg
             : !WIFEXITED(f->status) ? "killed by a signal"
                                     : "exit status not 0");
  } else if (f->generation != n->fsm_generation || n->shutting_down) {
    log_info("node", "snapshot at %llu: dropped (%s)",
             (unsigned long long)f->index,
             n->shutting_down ? "stopping" : "a snapshot was installed since");
  } else {
    int rv = snapshot_queue(n, f->index, f->term, &f->config, f->image, f->len);
    f->image = NULL; /* the batch's, or freed */
    if (rv == 0) {
      free(f);
      return;
    }
    log_warn("node", "snapshot at %llu: %s", (unsigned long long)f->index,
             synod_strerror(rv));
  }
  free(f->image);
  free(f);
  n->snapshot_in_progress = false;
}

static int snapshot_fork(struct node *n, uint64_t index, uint64_t term,
                         const struct core_config *config) {
  struct snapshot_fork *f = calloc(1, sizeof *f);
  int fds[2];
  if (f == NULL) {
    return SYNOD_ENOMEM;
  }
  if (pipe2(fds, O_CLOEXEC) != 0) {
    log_warn("node", "snapshot at %llu: pipe: %s", (unsigned long long)index,
             strerror(errno));
    free(f);
    return SYNOD_EIO;
  }
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    snapshot_child(n, fds[1], parent);
  }
  close(fds[1]);
  if (pid < 0) {
    log_warn("node", "snapshot at %llu: fork: %s", (unsigned long long)index,
             strerror(errno));
    close(fds[0]);
    free(f);
    return SYNOD_EIO;
  }
  f->work.data = n;
  f->pid = pid;
  f->fd = fds[0];
  f->index = index;
  f->term = term;
  f->config = *config;
  f->generation = n->fsm_generation;
  if (uv_queue_work(n->loop, &f->work, snapshot_fork_work_cb,
                    snapshot_fork_after_cb) != 0) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(fds[0]);
    free(f);
    return SYNOD_EIO;
  }
  n->handles_open++;
  n->snapshot_forked = true;
  log_debug("node", "snapshot at %llu: encoding in child %d",
            (unsigned long long)index, (int)pid);
  return 0;
}

int persist_snapshot_take(struct node *n, uint64_t index, uint64_t term,
                          const struct core_config *config) {
  uint8_t *image;
  size_t len;
  if (n->snapshot_in_progress || persist_received(&n->persist) != NULL) {
    return 0; /* one received from the leader is newer: it comes first */
  }
  n->snapshot_in_progress = true;
  n->bytes_since_snapshot = 0;
  bool fork_it = n->opts.snapshot_fork == NODE_SNAPSHOT_FORK_ALWAYS ||
                 (n->opts.snapshot_fork == NODE_SNAPSHOT_FORK_AUTO &&
                  (n->snap_len >= PERSIST_FORK_BYTES ||
                   fsm_bulk_bytes(n->fsm) >= PERSIST_FORK_BYTES));
  if (fork_it && snapshot_fork(n, index, term, config) == 0) {
    n->metrics.snapshots_encoded_child++;
    return 0;
  }
  n->metrics.snapshots_encoded_loop++;
  if (fsm_snapshot_encode(n->fsm, &image, &len) != 0) {
    n->snapshot_in_progress = false;
    return SYNOD_ENOMEM;
  }
  int rv = snapshot_queue(n, index, term, config, image, len);
  if (rv != 0) {
    n->snapshot_in_progress = false;
  }
  return rv;
}
