/* Snapshots in LMDB: written in chunks under a new generation, switched in
 * atomically with the log compaction, read back from one read txn. */
#include "store_int.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "synod.h"

/* A reader holds one LMDB read transaction for its whole life, so it sees
 * one snapshot whole while the store moves on. */
struct store_snapshot_reader {
  struct store *s; /* only for readers_open, an atomic */
  MDB_txn *txn;
  MDB_dbi dbi;
  uint64_t gen;
  uint64_t chunks_count;
  uint64_t seq;         /* next chunk to load */
  const uint8_t *chunk; /* points into the map while txn is open */
  size_t chunk_len;
  size_t chunk_off;
  uint64_t bytes_read; /* bytes_read <= meta.size_bytes */
  struct store_snapshot_meta meta;
  uint8_t *config; /* owned; meta.config points here */
  char errmsg[SYNOD_ERRMSG_MAX];
};

static void store_chunk_key(uint8_t kb[STORE_CHUNK_KEY_BYTES], uint64_t gen,
                            uint64_t seq) {
  kb[0] = STORE_CHUNK_TAG;
  store_put_be64(kb + 1, gen);
  store_put_be64(kb + 9, seq);
}

int store_snap_head_get(char *errmsg, MDB_txn *txn, MDB_dbi dbi, uint64_t *gen,
                        struct store_snapshot_meta *head,
                        uint64_t *chunks_count) {
  MDB_val key = {strlen(STORE_KEY_SNAP_HEAD), STORE_KEY_SNAP_HEAD};
  MDB_val v;
  const uint8_t *p;
  int rv = store_rec_get(errmsg, txn, dbi, &key, &v);

  if (rv != 0) {
    return rv;
  }
  p = v.mv_data;
  if (v.mv_size < STORE_SNAP_HEAD_BYTES ||
      v.mv_size - STORE_SNAP_HEAD_BYTES != store_get_be32(p + 40)) {
    errmsg_set(errmsg, "snapshot header of %zu bytes", v.mv_size);
    return SYNOD_ECORRUPT;
  }
  *gen = store_get_be64(p);
  head->index = store_get_be64(p + 8);
  head->term = store_get_be64(p + 16);
  head->size_bytes = store_get_be64(p + 24);
  *chunks_count = store_get_be64(p + 32);
  head->config_len = store_get_be32(p + 40);
  head->config = p + STORE_SNAP_HEAD_BYTES;
  return 0;
}

static int store_chunk_other_gen(const MDB_val *key, const void *arg) {
  const uint8_t *k = key->mv_data;
  return key->mv_size == STORE_CHUNK_KEY_BYTES && k[0] == STORE_CHUNK_TAG &&
         store_get_be64(k + 1) < *(const uint64_t *)arg;
}

static int store_chunk_any(const MDB_val *key, const void *arg) {
  (void)arg;
  return key->mv_size == STORE_CHUNK_KEY_BYTES &&
         ((const uint8_t *)key->mv_data)[0] == STORE_CHUNK_TAG;
}

int store_snap_chunks_clean(char *errmsg, MDB_txn *txn, MDB_dbi dbi,
                            uint64_t keep_gen) {
  uint8_t kb[STORE_CHUNK_KEY_BYTES];
  MDB_val k = {sizeof kb, kb};
  int rv;

  /* Chunk keys sort by generation: delete those below keep_gen, then all
   * of those above it. */
  store_chunk_key(kb, 0, 0);
  rv = store_del_range(errmsg, txn, dbi, &k, store_chunk_other_gen, &keep_gen);
  if (rv != 0 || keep_gen == UINT64_MAX) {
    return rv;
  }
  store_chunk_key(kb, keep_gen + 1, 0);
  k.mv_size = sizeof kb;
  k.mv_data = kb;
  return store_del_range(errmsg, txn, dbi, &k, store_chunk_any, NULL);
}

int store_snap_verify(struct store *s, MDB_txn *txn) {
  struct store_snapshot_meta head;
  uint64_t gen;
  uint64_t chunks;
  uint64_t total = 0;
  uint8_t kb[STORE_CHUNK_KEY_BYTES];
  MDB_val k = {sizeof kb, kb};
  MDB_val v;
  int rv;

  rv = store_snap_head_get(s->errmsg, txn, s->dbi_snap, &gen, &head, &chunks);
  if (rv == SYNOD_ENOTFOUND && s->snap_index == 0) {
    return 0;
  }
  if (rv == 0 && (head.index != s->snap_index || gen != s->snap_gen)) {
    errmsg_set(s->errmsg, "snapshot %" PRIu64 " on disk, %" PRIu64 " cached",
               head.index, s->snap_index);
    rv = SYNOD_ECORRUPT;
  }
  for (uint64_t i = 0; rv == 0 && i < chunks; i++) {
    store_chunk_key(kb, gen, i);
    rv = store_rec_get(s->errmsg, txn, s->dbi_snap, &k, &v);
    total += rv == 0 ? v.mv_size : 0;
  }
  if (rv == 0 && total != head.size_bytes) {
    errmsg_set(s->errmsg,
               "snapshot image of %" PRIu64 " bytes, header says %" PRIu64,
               total, head.size_bytes);
    rv = SYNOD_ECORRUPT;
  }
  if (rv != 0) {
    errmsg_wrap(s->errmsg, "snapshot %" PRIu64, s->snap_index);
  }
  return rv == SYNOD_ENOTFOUND ? SYNOD_ECORRUPT : rv;
}

void store_snapshot_last(const struct store *s, uint64_t *index,
                         uint64_t *term) {
  *index = s->snap_index;
  *term = s->snap_term;
}

static int store_snap_clean_txn(struct store *s, MDB_txn *txn, void *arg) {
  (void)arg;
  return store_snap_chunks_clean(s->errmsg, txn, s->dbi_snap, s->snap_gen);
}

int store_snapshot_begin(struct store *s, uint64_t index, uint64_t term,
                         const uint8_t *config, size_t config_len) {
  uint8_t *copy = NULL;
  int rv;

  if (s->pending.active) {
    errmsg_set(s->errmsg, "snapshot %" PRIu64 " is being written",
               s->pending.index);
    rv = SYNOD_EBUSY;
  } else if (index == 0 || term == 0 || index <= s->snap_index ||
             (config_len > 0 && config == NULL) ||
             config_len > STORE_ENTRY_BYTES_MAX) {
    errmsg_set(s->errmsg,
               "index %" PRIu64 " term %" PRIu64 " config %zu bytes: not "
               "after snapshot %" PRIu64 " or invalid",
               index, term, config_len, s->snap_index);
    rv = SYNOD_EINVAL;
  } else if (config_len > 0 && (copy = malloc(config_len)) == NULL) {
    errmsg_set(s->errmsg, "out of memory for %zu bytes", config_len);
    rv = SYNOD_ENOMEM;
  } else if (s->snap_stale &&
             (rv = store_txn_write(s, store_snap_clean_txn, NULL)) != 0) {
    free(copy);
  } else {
    s->snap_stale = false;
    if (config_len > 0) {
      memcpy(copy, config, config_len);
    }
    s->pending = (struct store_snapshot_pending){.active = true,
                                                 .gen = s->snap_gen + 1,
                                                 .index = index,
                                                 .term = term,
                                                 .config = copy,
                                                 .config_len = config_len};
    return 0;
  }
  errmsg_wrap(s->errmsg, "store: snapshot %" PRIu64 " begin", index);
  return rv;
}

struct store_chunk_ctx {
  const uint8_t *data;
  size_t len;
  uint64_t chunks_count; /* after the write */
};

static int store_snapshot_write_txn(struct store *s, MDB_txn *txn, void *arg) {
  struct store_chunk_ctx *c = arg;
  uint8_t kb[STORE_CHUNK_KEY_BYTES];
  MDB_val k = {sizeof kb, kb};
  uint64_t seq = s->pending.chunks_count;
  uint8_t *p = NULL;
  int rv;

  for (size_t off = 0; off < c->len; seq++) {
    size_t n = c->len - off;
    if (n > s->snapshot_chunk_bytes) {
      n = s->snapshot_chunk_bytes;
    }
    store_chunk_key(kb, s->pending.gen, seq);
    rv = store_rec_reserve(s->errmsg, txn, s->dbi_snap, &k, n, &p);
    if (rv != 0) {
      return rv;
    }
    memcpy(p, c->data + off, n);
    store_rec_seal(&k, p, n);
    off += n;
  }
  c->chunks_count = seq;
  return 0;
}

int store_snapshot_write(struct store *s, const uint8_t *data, size_t len) {
  struct store_chunk_ctx c = {.data = data, .len = len};
  int rv;

  if (!s->pending.active || (len > 0 && data == NULL)) {
    errmsg_set(s->errmsg, "store: snapshot write: %s",
               s->pending.active ? "NULL data" : "no snapshot begun");
    return SYNOD_EINVAL;
  }
  if (len == 0) {
    return 0;
  }
  rv = store_txn_write(s, store_snapshot_write_txn, &c);
  if (rv != 0) {
    errmsg_wrap(s->errmsg,
                "store: snapshot %" PRIu64 " write %zu bytes at %" PRIu64,
                s->pending.index, len, s->pending.size_bytes);
    return rv;
  }
  s->pending.chunks_count = c.chunks_count;
  s->pending.size_bytes += len;
  return 0;
}

/* The log as the commit leaves it. */
struct store_commit_ctx {
  uint64_t trailing_count;
  uint64_t first_index;
  uint64_t last_index;
  uint64_t last_term;
};

/* The pending snapshot's header, for an image of size_bytes in
 * chunks_count chunks. */
static int store_snap_head_put(struct store *s, MDB_txn *txn,
                               uint64_t size_bytes, uint64_t chunks_count) {
  const struct store_snapshot_pending *p = &s->pending;
  MDB_val key = {strlen(STORE_KEY_SNAP_HEAD), STORE_KEY_SNAP_HEAD};
  size_t len = STORE_SNAP_HEAD_BYTES + p->config_len;
  uint8_t *b = NULL;
  int rv = store_rec_reserve(s->errmsg, txn, s->dbi_snap, &key, len, &b);

  if (rv != 0) {
    return rv;
  }
  store_put_be64(b, p->gen);
  store_put_be64(b + 8, p->index);
  store_put_be64(b + 16, p->term);
  store_put_be64(b + 24, size_bytes);
  store_put_be64(b + 32, chunks_count);
  store_put_be32(b + 40, (uint32_t)p->config_len);
  if (p->config_len > 0) {
    memcpy(b + STORE_SNAP_HEAD_BYTES, p->config, p->config_len);
  }
  store_rec_seal(&key, b, len);
  return 0;
}

static int store_key_before(const MDB_val *key, const void *arg) {
  return key->mv_size == 8 &&
         store_get_be64(key->mv_data) < *(const uint64_t *)arg;
}

/* Raft §7: "If existing log entry has same index and term as snapshot's
 * last included entry, retain log entries following it [...]. Discard the
 * entire log" otherwise. */
static int store_snap_compact(struct store *s, MDB_txn *txn,
                              struct store_commit_ctx *c) {
  const struct store_snapshot_pending *p = &s->pending;
  uint64_t term = 0;
  uint64_t keep_from = UINT64_MAX;
  int rv;

  c->first_index = s->first_index;
  c->last_index = s->last_index;
  c->last_term = s->last_term;
  if (p->index <= s->last_index) {
    rv = store_term_at(s, txn, p->index, s->first_index, s->last_index, &term);
    if (rv != 0) {
      return rv;
    }
  }
  if (term == p->term) {
    uint64_t t = c->trailing_count < p->index ? c->trailing_count : p->index;
    keep_from = p->index + 1 - t;
    if (keep_from < s->first_index) {
      keep_from = s->first_index;
    }
    c->first_index = keep_from;
  } else {
    c->first_index = p->index + 1;
    c->last_index = p->index;
    c->last_term = p->term;
  }
  return store_del_range(s->errmsg, txn, s->dbi_log, NULL, store_key_before,
                         &keep_from);
}

/* Makes the pending snapshot, of size_bytes in chunks_count chunks, the
 * current one: its header, the old chunks deleted, the log compacted. */
static int store_snap_finish(struct store *s, MDB_txn *txn, uint64_t size_bytes,
                             uint64_t chunks_count,
                             struct store_commit_ctx *c) {
  int rv = store_snap_head_put(s, txn, size_bytes, chunks_count);

  if (rv == 0) {
    rv = store_snap_chunks_clean(s->errmsg, txn, s->dbi_snap, s->pending.gen);
  }
  if (rv == 0) {
    rv = store_snap_compact(s, txn, c);
  }
  return rv;
}

static int store_snapshot_commit_txn(struct store *s, MDB_txn *txn, void *arg) {
  return store_snap_finish(s, txn, s->pending.size_bytes,
                           s->pending.chunks_count, arg);
}

/* The pending snapshot was committed with the log as c leaves it. */
static void store_snapshot_committed(struct store *s,
                                     const struct store_commit_ctx *c) {
  s->snap_index = s->pending.index;
  s->snap_term = s->pending.term;
  s->snap_gen = s->pending.gen;
  s->snap_size_bytes = s->pending.size_bytes;
  s->first_index = c->first_index;
  s->last_index = c->last_index;
  s->last_term = c->last_term;
  free(s->pending.config);
  memset(&s->pending, 0, sizeof s->pending);
}

/* The first index a checkpoint before the commit of a snapshot at index
 * need copy into LMDB: the compaction deletes every entry below index + 1
 * - trailing (or the whole log); the entry at the snapshot index is
 * copied, for the compaction's term check. */
static uint64_t store_snap_put_from(uint64_t index, uint64_t trailing_count) {
  return index - (trailing_count < index ? trailing_count : index);
}

int store_snapshot_commit(struct store *s, uint64_t trailing_count) {
  struct store_commit_ctx c = {.trailing_count = trailing_count};
  int rv;

  if (!s->pending.active) {
    errmsg_set(s->errmsg, "store: snapshot commit: no snapshot begun");
    return SYNOD_EINVAL;
  }
  rv = store_wal_checkpoint_with(
      s, store_snap_put_from(s->pending.index, trailing_count),
      store_snapshot_commit_txn, &c);
  if (rv != 0) {
    errmsg_wrap(s->errmsg, "store: snapshot %" PRIu64 " commit",
                s->pending.index);
    return rv;
  }
  store_snapshot_committed(s, &c);
  return 0;
}

/* The whole image and the commit in one transaction. */
struct store_save_ctx {
  struct store_chunk_ctx chunks;
  struct store_commit_ctx commit;
};

static int store_snapshot_save_txn(struct store *s, MDB_txn *txn, void *arg) {
  struct store_save_ctx *c = arg;
  int rv = store_snapshot_write_txn(s, txn, &c->chunks);

  return rv != 0 ? rv
                 : store_snap_finish(s, txn, c->chunks.len,
                                     c->chunks.chunks_count, &c->commit);
}

int store_snapshot_save(struct store *s, uint64_t index, uint64_t term,
                        const uint8_t *config, size_t config_len,
                        const uint8_t *data, size_t len,
                        uint64_t trailing_count) {
  struct store_save_ctx c = {.chunks = {.data = data, .len = len},
                             .commit = {.trailing_count = trailing_count}};
  int rv;

  if (len > 0 && data == NULL) {
    errmsg_set(s->errmsg, "store: snapshot %" PRIu64 " save: NULL data", index);
    return SYNOD_EINVAL;
  }
  rv = store_snapshot_begin(s, index, term, config, config_len);
  if (rv != 0) {
    return rv;
  }
  rv = store_wal_checkpoint_with(s, store_snap_put_from(index, trailing_count),
                                 store_snapshot_save_txn, &c);
  if (rv != 0) {
    errmsg_wrap(s->errmsg, "store: snapshot %" PRIu64 " save of %zu bytes",
                index, len);
    store_snapshot_abort(s); /* no chunk was written: frees, no txn */
    return rv;
  }
  s->pending.size_bytes = len;
  store_snapshot_committed(s, &c.commit);
  return 0;
}

bool store_snapshot_pending(const struct store *s) {
  return s->pending.active;
}

int store_snapshot_abort(struct store *s) {
  uint64_t index = s->pending.index;
  bool written = s->pending.chunks_count > 0;
  int rv;

  free(s->pending.config);
  memset(&s->pending, 0, sizeof s->pending);
  if (!written) {
    return 0;
  }
  rv = store_txn_write(s, store_snap_clean_txn, NULL);
  if (rv != 0) {
    s->snap_stale = true;
    errmsg_wrap(s->errmsg, "store: snapshot %" PRIu64 " abort", index);
  }
  return rv;
}

/* Loads the header in the reader's transaction and copies the config. */
static int store_reader_load(struct store_snapshot_reader *r) {
  struct store_snapshot_meta head;
  int rv = store_snap_head_get(r->errmsg, r->txn, r->dbi, &r->gen, &head,
                               &r->chunks_count);

  if (rv != 0) {
    return rv == SYNOD_ENOTFOUND ? SYNOD_ECORRUPT : rv;
  }
  r->meta = head;
  if (head.config_len > 0) {
    r->config = malloc(head.config_len);
    if (r->config == NULL) {
      errmsg_set(r->errmsg, "out of memory for %zu bytes", head.config_len);
      return SYNOD_ENOMEM;
    }
    memcpy(r->config, head.config, head.config_len);
  }
  r->meta.config = r->config;
  return 0;
}

int store_snapshot_reader_new(struct store *s,
                              struct store_snapshot_reader **reader) {
  struct store_snapshot_reader *r = NULL;
  int rc;
  int rv;

  *reader = NULL;
  if (s->snap_index == 0) {
    errmsg_set(s->errmsg, "no snapshot");
    rv = SYNOD_ENOTFOUND;
    goto fail;
  }
  r = calloc(1, sizeof *r);
  if (r == NULL) {
    errmsg_set(s->errmsg, "out of memory");
    rv = SYNOD_ENOMEM;
    goto fail;
  }
  r->dbi = s->dbi_snap;
  rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &r->txn);
  if (rc != 0) {
    rv = store_mdb_fail(s->errmsg, rc, "mdb_txn_begin (read)");
    goto fail;
  }
  rv = store_reader_load(r);
  if (rv != 0) {
    memcpy(s->errmsg, r->errmsg, sizeof s->errmsg);
    goto fail;
  }
  r->s = s;
  atomic_fetch_add(&s->readers_open, 1);
  *reader = r;
  return 0;
fail:
  store_snapshot_reader_free(r);
  errmsg_wrap(s->errmsg, "store: snapshot reader");
  return rv;
}

const struct store_snapshot_meta *
store_snapshot_reader_meta(const struct store_snapshot_reader *r) {
  return &r->meta;
}

/* Loads chunk r->seq, verified, as the current one. */
static int store_reader_next_chunk(struct store_snapshot_reader *r) {
  uint8_t kb[STORE_CHUNK_KEY_BYTES];
  MDB_val k = {sizeof kb, kb};
  MDB_val v;
  int rv;

  store_chunk_key(kb, r->gen, r->seq);
  rv = store_rec_get(r->errmsg, r->txn, r->dbi, &k, &v);
  if (rv == 0 && r->bytes_read + v.mv_size > r->meta.size_bytes) {
    errmsg_set(r->errmsg, "image longer than %" PRIu64 " bytes",
               r->meta.size_bytes);
    rv = SYNOD_ECORRUPT;
  }
  if (rv != 0) {
    errmsg_wrap(r->errmsg, "chunk %" PRIu64 " of %" PRIu64, r->seq,
                r->chunks_count);
    return rv == SYNOD_ENOTFOUND ? SYNOD_ECORRUPT : rv;
  }
  r->chunk = v.mv_data;
  r->chunk_len = v.mv_size;
  r->chunk_off = 0;
  r->seq++;
  return 0;
}

int store_snapshot_reader_read(struct store_snapshot_reader *r, uint8_t *buf,
                               size_t cap, size_t *len) {
  int rv = 0;

  assert(cap > 0);
  *len = 0;
  while (*len < cap && rv == 0) {
    if (r->chunk_off < r->chunk_len) {
      size_t n = r->chunk_len - r->chunk_off;
      n = n < cap - *len ? n : cap - *len;
      memcpy(buf + *len, r->chunk + r->chunk_off, n);
      store_map_drop(r->chunk + r->chunk_off, n);
      r->chunk_off += n;
      r->bytes_read += n;
      *len += n;
    } else if (r->seq < r->chunks_count) {
      rv = store_reader_next_chunk(r);
    } else {
      if (r->bytes_read != r->meta.size_bytes) {
        errmsg_set(r->errmsg,
                   "image of %" PRIu64 " bytes, header says %" PRIu64,
                   r->bytes_read, r->meta.size_bytes);
        rv = SYNOD_ECORRUPT;
      }
      break;
    }
  }
  if (rv != 0) {
    errmsg_wrap(r->errmsg, "store: snapshot %" PRIu64 " read", r->meta.index);
  }
  return rv;
}

const char *
store_snapshot_reader_errmsg(const struct store_snapshot_reader *r) {
  return r->errmsg;
}

void store_snapshot_reader_free(struct store_snapshot_reader *r) {
  if (r == NULL) {
    return;
  }
  if (r->txn != NULL) {
    mdb_txn_abort(r->txn);
  }
  if (r->s != NULL) {
    atomic_fetch_sub(&r->s->readers_open, 1);
  }
  free(r->config);
  free(r);
}

/* Copies what [offset, offset + len) needs from the chunks of generation
 * gen, walking them from the first by their sizes (no checksum) and
 * verifying those it copies from. */
static int store_read_chunks_at(char *errmsg, MDB_txn *txn, MDB_dbi dbi,
                                uint64_t gen, uint64_t offset, uint8_t *buf,
                                size_t len) {
  uint8_t kb[STORE_CHUNK_KEY_BYTES];
  MDB_val k = {sizeof kb, kb};
  MDB_val v;
  MDB_cursor *cur;
  uint64_t pos = 0; /* the image's offset of the chunk at the cursor */
  size_t done = 0;
  int rv = 0;
  int rc = mdb_cursor_open(txn, dbi, &cur);

  if (rc != 0) {
    return store_mdb_fail(errmsg, rc, "mdb_cursor_open");
  }
  store_chunk_key(kb, gen, 0);
  rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
  while (rv == 0 && done < len) {
    const uint8_t *key = k.mv_data;
    if (rc != 0 || k.mv_size != STORE_CHUNK_KEY_BYTES ||
        key[0] != STORE_CHUNK_TAG || store_get_be64(key + 1) != gen ||
        v.mv_size < STORE_REC_HEADER_BYTES) {
      errmsg_set(errmsg, "chunks end at %" PRIu64 ", before %" PRIu64, pos,
                 offset + len);
      rv = rc != 0 && rc != MDB_NOTFOUND
               ? store_mdb_fail(errmsg, rc, "mdb_cursor_get")
               : SYNOD_ECORRUPT;
      break;
    }
    uint64_t size = v.mv_size - STORE_REC_HEADER_BYTES;
    uint64_t at = offset + done;
    if (at < pos + size) {
      MDB_val payload;
      rv = store_rec_get(errmsg, txn, dbi, &k, &payload);
      if (rv == 0) {
        size_t n = (size_t)(pos + size - at);
        n = n < len - done ? n : len - done;
        memcpy(buf + done, (const uint8_t *)payload.mv_data + (at - pos), n);
        store_map_drop(payload.mv_data, payload.mv_size); /* its crc read all */
        done += n;
      }
    }
    pos += size;
    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(cur);
  return rv;
}

int store_snapshot_read_at(struct store *s, uint64_t index, uint64_t offset,
                           uint8_t *buf, size_t len, char *errmsg) {
  struct store_snapshot_meta head;
  uint64_t gen = 0, chunks = 0;
  MDB_txn *txn = NULL;
  int rv;

  pthread_rwlock_rdlock(&s->remap_lock);
  int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
  if (rc != 0) {
    rv = store_mdb_fail(errmsg, rc, "mdb_txn_begin (read)");
    goto done;
  }
  rv = store_snap_head_get(errmsg, txn, s->dbi_snap, &gen, &head, &chunks);
  if (rv == SYNOD_ENOTFOUND || (rv == 0 && head.index != index)) {
    errmsg_set(errmsg,
               "snapshot %" PRIu64 " is gone (the store holds %" PRIu64 ")",
               index, rv == 0 ? head.index : 0);
    rv = SYNOD_ENOTFOUND;
    goto done;
  }
  if (rv == 0 && (offset > head.size_bytes || len > head.size_bytes - offset)) {
    errmsg_set(errmsg, "%zu bytes at %" PRIu64 ": past the image's %" PRIu64,
               len, offset, head.size_bytes);
    rv = SYNOD_EINVAL;
  }
  if (rv == 0) {
    rv = store_read_chunks_at(errmsg, txn, s->dbi_snap, gen, offset, buf, len);
  }
done:
  if (txn != NULL) {
    mdb_txn_abort(txn);
  }
  pthread_rwlock_unlock(&s->remap_lock);
  if (rv != 0) {
    errmsg_wrap(errmsg, "store: snapshot %" PRIu64 " read at %" PRIu64, index,
                offset);
  }
  return rv;
}
