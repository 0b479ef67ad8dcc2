/* The Raft log in LMDB: batched appends, truncation, compaction, range
 * reads, and the hard state and configuration written with them. */
#include "store_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "synod.h"

int store_log_decode(char *errmsg, uint64_t index, const MDB_val *v,
                     struct store_entry *out) {
  const uint8_t *p = v->mv_data;
  uint8_t key[8];
  uint32_t len;
  uint32_t crc;

  if (v->mv_size < STORE_LOG_HEADER_BYTES) {
    errmsg_set(errmsg, "entry %" PRIu64 ": %zu bytes, shorter than a header",
               index, v->mv_size);
    return SYNOD_ECORRUPT;
  }
  len = store_get_be32(p + 4);
  if ((size_t)len != v->mv_size - STORE_LOG_HEADER_BYTES) {
    errmsg_set(errmsg,
               "entry %" PRIu64 ": length %" PRIu32 " in a %zu-byte value",
               index, len, v->mv_size);
    return SYNOD_ECORRUPT;
  }
  store_put_be64(key, index);
  crc = store_crc(key, sizeof key, p + 4, v->mv_size - 4);
  if (crc != store_get_be32(p)) {
    errmsg_set(errmsg,
               "entry %" PRIu64 ": checksum %08" PRIx32 ", expected %08" PRIx32,
               index, crc, store_get_be32(p));
    return SYNOD_ECORRUPT;
  }
  out->index = index;
  out->term = store_get_be64(p + 8);
  out->type = p[16];
  out->data = p + STORE_LOG_HEADER_BYTES;
  out->len = len;
  return 0;
}

/* Writes one entry, checksummed, straight into the map. */
static int store_log_put(struct store *s, MDB_txn *txn,
                         const struct store_entry *e) {
  /* Entries only ever go after the last key (a truncation deletes the
   * rest first), which MDB_APPEND both speeds up and checks. */
  uint8_t kb[8];
  MDB_val k = {sizeof kb, kb};
  MDB_val v = {STORE_LOG_HEADER_BYTES + e->len, NULL};
  uint8_t *p = NULL;
  int rc;

  store_put_be64(kb, e->index);
  rc = mdb_put(txn, s->dbi_log, &k, &v, MDB_RESERVE | MDB_APPEND);
  if (rc != 0) {
    return store_mdb_fail(s->errmsg, rc, "mdb_put");
  }
  p = v.mv_data;
  store_put_be32(p + 4, (uint32_t)e->len);
  store_put_be64(p + 8, e->term);
  p[16] = e->type;
  if (e->len > 0) {
    memcpy(p + STORE_LOG_HEADER_BYTES, e->data, e->len);
  }
  store_put_be32(p, store_crc(kb, sizeof kb, p + 4, v.mv_size - 4));
  return 0;
}

/* Reads and verifies entry index, which must be in the log. */
int store_log_get(struct store *s, MDB_txn *txn, uint64_t index,
                  struct store_entry *e) {
  uint8_t kb[8];
  MDB_val k = {sizeof kb, kb};
  MDB_val v;
  int rc;

  store_put_be64(kb, index);
  rc = mdb_get(txn, s->dbi_log, &k, &v);
  if (rc == MDB_NOTFOUND) {
    errmsg_set(s->errmsg, "entry %" PRIu64 " missing inside the log", index);
    return SYNOD_ECORRUPT;
  }
  if (rc != 0) {
    return store_mdb_fail(s->errmsg, rc, "mdb_get");
  }
  return store_log_decode(s->errmsg, index, &v, e);
}

/* The term of entry index given the log bounds first..last. */
int store_term_at(struct store *s, MDB_txn *txn, uint64_t index, uint64_t first,
                  uint64_t last, uint64_t *term) {
  struct store_entry e;
  int rv;

  if (index == 0) {
    *term = 0;
    return 0;
  }
  if (index == s->snap_index) {
    *term = s->snap_term;
    return 0;
  }
  if (index < first) {
    errmsg_set(s->errmsg, "entry %" PRIu64 " compacted (first %" PRIu64 ")",
               index, first);
    return SYNOD_ECOMPACTED;
  }
  if (index > last) {
    errmsg_set(s->errmsg, "entry %" PRIu64 " past the last (%" PRIu64 ")",
               index, last);
    return SYNOD_EUNAVAILABLE;
  }
  rv = store_log_get(s, txn, index, &e);
  if (rv == 0) {
    *term = e.term;
  }
  return rv;
}

/* What a batch does, computed inside the transaction and applied to the
 * store's cache only after the commit. */
struct store_batch_ctx {
  const struct store_batch *b;
  struct store_log_view v;
};

static int store_key_from(const MDB_val *key, const void *arg) {
  (void)key;
  (void)arg;
  return 1;
}

static int store_key_below(const MDB_val *key, const void *arg) {
  return key->mv_size == 8 &&
         store_get_be64(key->mv_data) < *(const uint64_t *)arg;
}

/* Raft §5.3: "If an existing entry conflicts with a new one (same index
 * but different terms), delete the existing entry and all that follow it."
 * Only uncommitted entries above the snapshot may go. */
static int store_truncate_check(struct store *s, const struct store_batch *b,
                                const struct store_log_view *v) {
  uint64_t from = b->truncate_from;
  uint64_t commit = v->hard_state.commit;

  if (b->hard_state != NULL && b->hard_state->commit > commit) {
    commit = b->hard_state->commit;
  }
  if (from <= s->snap_index || from <= commit || from > v->last_index + 1) {
    errmsg_set(s->errmsg,
               "truncate from %" PRIu64 ": must be above the snapshot (%" PRIu64
               ") and commit (%" PRIu64 "), at most last + 1 (%" PRIu64 ")",
               from, s->snap_index, commit, v->last_index + 1);
    return SYNOD_EINVAL;
  }
  return 0;
}

static int store_batch_truncate(struct store *s, MDB_txn *txn,
                                struct store_batch_ctx *c) {
  uint64_t from = c->b->truncate_from;
  uint8_t kb[8];
  MDB_val k = {sizeof kb, kb};
  int rv = store_truncate_check(s, c->b, &c->v);

  if (rv != 0) {
    return rv;
  }
  if (from == c->v.last_index + 1) {
    return 0;
  }
  rv = store_term_at(s, txn, from - 1, s->first_index, c->v.last_index,
                     &c->v.last_term);
  if (rv != 0) {
    return rv;
  }
  store_put_be64(kb, from);
  rv = store_del_range(s->errmsg, txn, s->dbi_log, &k, store_key_from, NULL);
  c->v.last_index = from - 1;
  return rv;
}

/* Checks that entries continue the log at last_index + 1, contiguous and
 * with terms that never go back. Pure. */
static int store_entries_check(char *errmsg, uint64_t last_index,
                               uint64_t last_term, const struct store_entry *v,
                               size_t n) {
  for (size_t i = 0; i < n; i++) {
    uint64_t prev_term = i > 0 ? v[i - 1].term : last_term;
    if (v[i].index != last_index + 1 + i) {
      errmsg_set(errmsg,
                 "entry %zu has index %" PRIu64 ", expected %" PRIu64
                 " (not contiguous)",
                 i, v[i].index, last_index + 1 + i);
      return SYNOD_EINVAL;
    }
    if (v[i].term < prev_term) {
      errmsg_set(errmsg,
                 "entry %" PRIu64 " has term %" PRIu64 " below %" PRIu64,
                 v[i].index, v[i].term, prev_term);
      return SYNOD_EINVAL;
    }
    if (v[i].len > STORE_ENTRY_BYTES_MAX) {
      errmsg_set(errmsg, "entry %" PRIu64 ": %zu bytes, the maximum is %zu",
                 v[i].index, v[i].len, STORE_ENTRY_BYTES_MAX);
      return SYNOD_ETOOBIG;
    }
    if (v[i].len > 0 && v[i].data == NULL) {
      errmsg_set(errmsg, "entry %" PRIu64 ": NULL data", v[i].index);
      return SYNOD_EINVAL;
    }
  }
  return 0;
}

/* Raft's rules for the persistent state: the term never goes back, one
 * vote per term (§5.2), and the commit index only moves forward, never
 * past the log. */
static int store_hard_state_check(char *errmsg,
                                  const struct store_hard_state *old,
                                  const struct store_hard_state *hs,
                                  uint64_t last_index) {
  if (hs->term < old->term) {
    errmsg_set(errmsg, "term %" PRIu64 " below the saved %" PRIu64, hs->term,
               old->term);
    return SYNOD_EINVAL;
  }
  if (hs->term == old->term && old->vote != 0 && hs->vote != old->vote) {
    errmsg_set(errmsg,
               "vote for %" PRIu64 " in term %" PRIu64
               " after voting for %" PRIu64,
               hs->vote, hs->term, old->vote);
    return SYNOD_EINVAL;
  }
  if (hs->commit < old->commit || hs->commit > last_index) {
    errmsg_set(errmsg,
               "commit %" PRIu64 " outside saved %" PRIu64 "..last %" PRIu64,
               hs->commit, old->commit, last_index);
    return SYNOD_EINVAL;
  }
  return 0;
}

static int store_hard_state_put(struct store *s, MDB_txn *txn,
                                const struct store_hard_state *hs) {
  MDB_val key = {strlen(STORE_KEY_HARD_STATE), STORE_KEY_HARD_STATE};
  uint8_t *p = NULL;
  int rv = store_rec_reserve(s->errmsg, txn, s->dbi_meta, &key, 24, &p);

  if (rv != 0) {
    return rv;
  }
  store_put_be64(p, hs->term);
  store_put_be64(p + 8, hs->vote);
  store_put_be64(p + 16, hs->commit);
  store_rec_seal(&key, p, 24);
  return 0;
}

static int store_config_put(struct store *s, MDB_txn *txn,
                            const struct store_config *cf) {
  MDB_val key = {strlen(STORE_KEY_CONFIG), STORE_KEY_CONFIG};
  uint8_t *p = NULL;
  int rv;

  rv = store_rec_reserve(s->errmsg, txn, s->dbi_meta, &key, 8 + cf->len, &p);
  if (rv != 0) {
    return rv;
  }
  store_put_be64(p, cf->index);
  if (cf->len > 0) {
    memcpy(p + 8, cf->data, cf->len);
  }
  store_rec_seal(&key, p, 8 + cf->len);
  return 0;
}

int store_batch_check(char *errmsg, const struct store_log_view *v,
                      const struct store_batch *b,
                      struct store_log_view *after) {
  struct store_log_view out = *v;
  const struct store_config *cf = b->config;
  int rv = store_entries_check(errmsg, v->last_index, v->last_term, b->entries,
                               b->entries_count);

  if (rv != 0) {
    return rv;
  }
  if (b->entries_count > 0) {
    out.last_index = b->entries[b->entries_count - 1].index;
    out.last_term = b->entries[b->entries_count - 1].term;
  }
  if (cf != NULL &&
      (cf->len > STORE_ENTRY_BYTES_MAX || (cf->len > 0 && cf->data == NULL))) {
    errmsg_set(errmsg, "config of %zu bytes at %p", cf->len,
               (const void *)cf->data);
    return cf->len > STORE_ENTRY_BYTES_MAX ? SYNOD_ETOOBIG : SYNOD_EINVAL;
  }
  if (b->hard_state != NULL) {
    rv = store_hard_state_check(errmsg, &v->hard_state, b->hard_state,
                                out.last_index);
    if (rv != 0) {
      return rv;
    }
    out.hard_state = *b->hard_state;
  }
  *after = out;
  return 0;
}

int store_batch_put(struct store *s, MDB_txn *txn,
                    const struct store_batch *b) {
  int rv = 0;

  for (size_t i = 0; rv == 0 && i < b->entries_count; i++) {
    rv = store_log_put(s, txn, &b->entries[i]);
  }
  if (rv == 0 && b->config != NULL) {
    rv = store_config_put(s, txn, b->config);
  }
  if (rv == 0 && b->hard_state != NULL) {
    rv = store_hard_state_put(s, txn, b->hard_state);
  }
  return rv;
}

/* What a write that goes straight to LMDB can be refused for without
 * reading LMDB, checked before the checkpoint it starts with: an invalid
 * batch then changes nothing and reports SYNOD_EINVAL, never a disk error
 * of that checkpoint. Only the terms after a truncation (the term of the
 * entry before it is in LMDB) wait for the transaction. */
static int store_batch_precheck(struct store *s, const struct store_batch *b) {
  struct store_log_view v = {s->last_index, s->last_term, s->hard_state};
  if (b->truncate_from != 0) {
    int rv = store_truncate_check(s, b, &v);
    if (rv != 0) {
      return rv;
    }
    if (b->truncate_from <= v.last_index) {
      v.last_index = b->truncate_from - 1;
      v.last_term = 0;
    }
  }
  return store_batch_check(s->errmsg, &v, b, &v);
}

/* The body of a log write that goes straight to LMDB: truncate, then the
 * rest as store_batch_put(). */
static int store_batch_txn(struct store *s, MDB_txn *txn, void *arg) {
  struct store_batch_ctx *c = arg;
  int rv;

  c->v.last_index = s->last_index;
  c->v.last_term = s->last_term;
  c->v.hard_state = s->hard_state;
  if (c->b->truncate_from != 0) {
    rv = store_batch_truncate(s, txn, c);
    if (rv != 0) {
      return rv;
    }
  }
  rv = store_batch_check(s->errmsg, &c->v, c->b, &c->v);
  return rv != 0 ? rv : store_batch_put(s, txn, c->b);
}

/* Describes a batch for error messages: "truncate 12, append 12..40". */
static void store_batch_describe(const struct store_batch *b, char *buf,
                                 size_t cap) {
  int n = snprintf(buf, cap, "write");
  if (b->truncate_from != 0 && n >= 0 && (size_t)n < cap) {
    n += snprintf(buf + n, cap - (size_t)n, " truncate %" PRIu64,
                  b->truncate_from);
  }
  if (b->entries_count > 0 && n >= 0 && (size_t)n < cap) {
    n += snprintf(buf + n, cap - (size_t)n, " append %" PRIu64 "..%" PRIu64,
                  b->entries[0].index, b->entries[b->entries_count - 1].index);
  }
  if (b->config != NULL && n >= 0 && (size_t)n < cap) {
    n += snprintf(buf + n, cap - (size_t)n, " config %" PRIu64,
                  b->config->index);
  }
  if (b->hard_state != NULL && n >= 0 && (size_t)n < cap) {
    snprintf(buf + n, cap - (size_t)n, " hard state %" PRIu64 "/%" PRIu64,
             b->hard_state->term, b->hard_state->commit);
  }
}

static int store_batch_write_with(struct store *s, const struct store_batch *b,
                                  bool *sync_needed) {
  struct store_batch_ctx c = {.b = b};
  char what[160];
  int rv;

  if (sync_needed != NULL) {
    *sync_needed = false;
  }
  if (b->truncate_from == 0 && b->entries_count == 0 && b->config == NULL &&
      b->hard_state == NULL) {
    return 0;
  }
  if (store_wal_takes(s, b)) {
    c.v.last_index = s->last_index;
    c.v.last_term = s->last_term;
    c.v.hard_state = s->hard_state;
    rv = store_batch_check(s->errmsg, &c.v, b, &c.v);
    if (rv == 0) {
      rv = store_wal_write(s, b, sync_needed == NULL);
    }
    if (rv == 0 && sync_needed != NULL) {
      *sync_needed = true;
    }
  } else {
    rv = store_batch_precheck(s, b);
    if (rv == 0) {
      rv = store_txn_write(s, store_batch_txn, &c);
    }
  }
  if (rv != 0) {
    store_batch_describe(b, what, sizeof what);
    errmsg_wrap(s->errmsg, "store: %s", what);
    return rv;
  }
  s->last_index = c.v.last_index;
  s->last_term = c.v.last_term;
  s->hard_state = c.v.hard_state;
  return 0;
}

int store_batch_write(struct store *s, const struct store_batch *b) {
  return store_batch_write_with(s, b, NULL);
}

int store_batch_write_unsynced(struct store *s, const struct store_batch *b,
                               bool *sync_needed) {
  return store_batch_write_with(s, b, sync_needed);
}

int store_log_append(struct store *s, const struct store_entry *entries,
                     size_t count) {
  struct store_batch b = {.entries = entries, .entries_count = count};
  return store_batch_write(s, &b);
}

int store_log_truncate(struct store *s, uint64_t from_index) {
  struct store_batch b = {.truncate_from = from_index};

  if (from_index == 0) {
    errmsg_set(s->errmsg, "store: write truncate 0: no entry 0");
    return SYNOD_EINVAL;
  }
  return store_batch_write(s, &b);
}

int store_hard_state_save(struct store *s, const struct store_hard_state *hs) {
  struct store_batch b = {.hard_state = hs};
  return store_batch_write(s, &b);
}

int store_config_save(struct store *s, uint64_t index, const uint8_t *data,
                      size_t len) {
  struct store_config cf = {.index = index, .data = data, .len = len};
  struct store_batch b = {.config = &cf};
  return store_batch_write(s, &b);
}

static int store_compact_txn(struct store *s, MDB_txn *txn, void *arg) {
  return store_del_range(s->errmsg, txn, s->dbi_log, NULL, store_key_below,
                         arg);
}

int store_log_compact(struct store *s, uint64_t first_kept_index) {
  int rv;

  if (first_kept_index > s->snap_index + 1) {
    errmsg_set(s->errmsg,
               "store: compact below %" PRIu64
               ": would drop entries after the snapshot (%" PRIu64 ")",
               first_kept_index, s->snap_index);
    return SYNOD_EINVAL;
  }
  if (first_kept_index <= s->first_index) {
    return 0;
  }
  rv = store_txn_write(s, store_compact_txn, &first_kept_index);
  if (rv != 0) {
    errmsg_wrap(s->errmsg, "store: compact below %" PRIu64, first_kept_index);
    return rv;
  }
  s->first_index = first_kept_index;
  return 0;
}
