/* Reading the store back: log ranges and terms, hard state, configuration,
 * and the full consistency check. */
#include "store_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "synod.h"

uint64_t store_log_first_index(const struct store *s) {
  return s->first_index;
}

uint64_t store_log_last_index(const struct store *s) {
  return s->last_index;
}

uint64_t store_log_last_term(const struct store *s) {
  return s->last_term;
}

struct store_term_ctx {
  uint64_t index;
  uint64_t term;
};

static int store_term_txn(struct store *s, MDB_txn *txn, void *arg) {
  struct store_term_ctx *c = arg;
  return store_term_at(s, txn, c->index, s->first_index, s->last_index,
                       &c->term);
}

int store_log_term(struct store *s, uint64_t index, uint64_t *term) {
  struct store_term_ctx c = {.index = index};
  int rv = store_txn_read(s, store_term_txn, &c);

  if (rv != 0) {
    errmsg_wrap(s->errmsg, "store: term of %" PRIu64, index);
    return rv;
  }
  *term = c.term;
  return 0;
}

/* A range read: entries found in the transaction (pointing into the map)
 * are gathered in scratch, then copied into one heap block. */
struct store_read_ctx {
  uint64_t lo;
  uint64_t hi;
  size_t bytes_max;
  char *errmsg; /* the store's, or the caller's of store_log_read_at */
  bool at;      /* store_log_read_at: bounds not checked beforehand */
  struct store_entry *scratch; /* heap; pointers into the map */
  size_t scratch_cap;
  size_t count;
  size_t bytes;
  struct store_entry *out; /* the caller's block */
};

static int store_read_gather(struct store_read_ctx *c,
                             const struct store_entry *e) {
  if (c->count > 0 && c->bytes + e->len > c->bytes_max) {
    return 1; /* the byte cap is reached */
  }
  if (c->count == c->scratch_cap) {
    size_t cap = c->scratch_cap ? c->scratch_cap * 2 : 64;
    struct store_entry *v = realloc(c->scratch, cap * sizeof *v);
    if (v == NULL) {
      errmsg_set(c->errmsg, "out of memory for %zu entries", cap);
      return SYNOD_ENOMEM;
    }
    c->scratch = v;
    c->scratch_cap = cap;
  }
  c->scratch[c->count++] = *e;
  c->bytes += e->len;
  return 0;
}

/* Copies the gathered entries into one block: the array, then payloads. */
static int store_read_copy(struct store_read_ctx *c) {
  size_t array_bytes = c->count * sizeof(struct store_entry);
  uint8_t *data;

  c->out = malloc(array_bytes + c->bytes);
  if (c->out == NULL) {
    errmsg_set(c->errmsg, "out of memory for %zu bytes",
               array_bytes + c->bytes);
    return SYNOD_ENOMEM;
  }
  data = (uint8_t *)c->out + array_bytes;
  uintptr_t lo = UINTPTR_MAX, hi = 0; /* the span of the map read */
  for (size_t i = 0; i < c->count; i++) {
    c->out[i] = c->scratch[i];
    c->out[i].data = c->scratch[i].len > 0 ? data : NULL;
    if (c->scratch[i].len > 0) {
      uintptr_t p = (uintptr_t)c->scratch[i].data;
      memcpy(data, c->scratch[i].data, c->scratch[i].len);
      lo = p < lo ? p : lo;
      hi = p + c->scratch[i].len > hi ? p + c->scratch[i].len : hi;
    }
    data += c->scratch[i].len;
  }
  if (hi > lo) { /* one call: small entries share pages */
    store_map_drop((const void *)lo, hi - lo);
  }
  return 0;
}

/* A key missing from a read of [lo, hi] that store_log_read_at made
 * without the store's bounds: below the log's first key it was compacted,
 * else it is not in LMDB yet (still in the write-ahead file) or never was. */
static int store_read_missing(struct store_read_ctx *c, MDB_cursor *cur,
                              uint64_t index) {
  MDB_val k, v;
  int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
  if (rc == 0 && k.mv_size == 8 && index < store_get_be64(k.mv_data)) {
    errmsg_set(c->errmsg, "entry %" PRIu64 " compacted (first %" PRIu64 ")",
               index, store_get_be64(k.mv_data));
    return SYNOD_ECOMPACTED;
  }
  errmsg_set(c->errmsg, "entry %" PRIu64 " not in LMDB", index);
  return SYNOD_EUNAVAILABLE;
}

static int store_read_txn(struct store *s, MDB_txn *txn, void *arg) {
  struct store_read_ctx *c = arg;
  MDB_cursor *cur;
  struct store_entry e;
  uint8_t kb[8];
  MDB_val k = {sizeof kb, kb};
  MDB_val v;
  int rc;
  int rv = 0;

  c->count = 0;
  c->bytes = 0;
  rc = mdb_cursor_open(txn, s->dbi_log, &cur);
  if (rc != 0) {
    return store_mdb_fail(c->errmsg, rc, "mdb_cursor_open");
  }
  store_put_be64(kb, c->lo);
  rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
  for (uint64_t i = c->lo; rv == 0 && i <= c->hi; i++) {
    if (rc == 0 && (k.mv_size != 8 || store_get_be64(k.mv_data) != i)) {
      rc = MDB_NOTFOUND;
    }
    if (rc == MDB_NOTFOUND && c->at) {
      rv = store_read_missing(c, cur, i);
    } else if (rc == MDB_NOTFOUND) {
      errmsg_set(c->errmsg, "entry %" PRIu64 " missing inside the log", i);
      rv = SYNOD_ECORRUPT;
    } else if (rc != 0) {
      rv = store_mdb_fail(c->errmsg, rc, "mdb_cursor_get");
    } else if ((rv = store_log_decode(c->errmsg, i, &v, &e)) == 0) {
      rv = store_read_gather(c, &e);
    }
    if (rv == 1) {
      rv = 0;
      break;
    }
    if (i < c->hi) {
      rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
  }
  if (rv == 0) {
    rv = store_read_copy(c);
  }
  mdb_cursor_close(cur);
  return rv;
}

int store_log_read(struct store *s, uint64_t lo, uint64_t hi, size_t bytes_max,
                   struct store_entry **entries, size_t *count) {
  struct store_read_ctx c = {
      .lo = lo, .hi = hi, .bytes_max = bytes_max, .errmsg = s->errmsg};
  int rv;

  *entries = NULL;
  *count = 0;
  if (lo > hi) {
    errmsg_set(s->errmsg, "inverted range");
    rv = SYNOD_EINVAL;
  } else if (lo < s->first_index) {
    errmsg_set(s->errmsg, "compacted (first %" PRIu64 ")", s->first_index);
    rv = SYNOD_ECOMPACTED;
  } else if (hi > s->last_index) {
    errmsg_set(s->errmsg, "not there yet (last %" PRIu64 ")", s->last_index);
    rv = SYNOD_EUNAVAILABLE;
  } else {
    rv = store_txn_read(s, store_read_txn, &c);
  }
  free(c.scratch);
  if (rv != 0) {
    errmsg_wrap(s->errmsg, "store: read %" PRIu64 "..%" PRIu64, lo, hi);
    return rv;
  }
  *entries = c.out;
  *count = c.count;
  return 0;
}

uint64_t store_log_readable_last(const struct store *s) {
  /* LMDB holds the state wal_base while records wait in the file. */
  return s->wal_off > 0 ? s->wal_base.last_index : s->last_index;
}

int store_log_read_at(struct store *s, uint64_t lo, uint64_t hi,
                      struct store_entry **entries, size_t *count,
                      char *errmsg) {
  struct store_read_ctx c = {
      .lo = lo, .hi = hi, .bytes_max = SIZE_MAX, .errmsg = errmsg, .at = true};
  MDB_txn *txn = NULL;
  int rv = 0;

  *entries = NULL;
  *count = 0;
  if (lo > hi) {
    errmsg_set(errmsg, "inverted range");
    rv = SYNOD_EINVAL;
  }
  pthread_rwlock_rdlock(&s->remap_lock);
  int rc = rv == 0 ? mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) : 0;
  if (rc != 0) {
    rv = store_mdb_fail(errmsg, rc, "mdb_txn_begin (read)");
  } else if (rv == 0) {
    rv = store_read_txn(s, txn, &c);
    mdb_txn_abort(txn);
  }
  pthread_rwlock_unlock(&s->remap_lock);
  free(c.scratch);
  if (rv != 0) {
    errmsg_wrap(errmsg, "store: read %" PRIu64 "..%" PRIu64, lo, hi);
    return rv;
  }
  *entries = c.out;
  *count = c.count;
  return 0;
}

void store_entries_free(struct store_entry *entries) {
  free(entries);
}

static int store_hard_state_txn(struct store *s, MDB_txn *txn, void *arg) {
  return store_hard_state_get(s, txn, arg);
}

int store_hard_state_load(struct store *s, struct store_hard_state *hs) {
  int rv = store_txn_read(s, store_hard_state_txn, hs);

  if (rv != 0) {
    errmsg_wrap(s->errmsg, "store: load hard state");
  }
  return rv;
}

struct store_config_ctx {
  uint64_t index;
  uint8_t *data;
  size_t len;
};

static int store_config_txn(struct store *s, MDB_txn *txn, void *arg) {
  struct store_config_ctx *c = arg;
  MDB_val key = {strlen(STORE_KEY_CONFIG), STORE_KEY_CONFIG};
  MDB_val v;
  int rv = store_rec_get(s->errmsg, txn, s->dbi_meta, &key, &v);

  if (rv == 0 && v.mv_size < 8) {
    errmsg_set(s->errmsg, "config of %zu bytes", v.mv_size);
    rv = SYNOD_ECORRUPT;
  }
  if (rv != 0) {
    return rv;
  }
  c->index = store_get_be64(v.mv_data);
  c->len = v.mv_size - 8;
  if (c->len > 0) {
    c->data = malloc(c->len);
    if (c->data == NULL) {
      errmsg_set(s->errmsg, "out of memory for %zu bytes", c->len);
      return SYNOD_ENOMEM;
    }
    memcpy(c->data, (const uint8_t *)v.mv_data + 8, c->len);
  }
  return 0;
}

int store_config_load(struct store *s, uint64_t *index, uint8_t **data,
                      size_t *len) {
  struct store_config_ctx c = {0};
  int rv = store_txn_read(s, store_config_txn, &c);

  if (rv != 0) {
    errmsg_wrap(s->errmsg, "store: load config");
    return rv;
  }
  *index = c.index;
  *data = c.data;
  *len = c.len;
  return 0;
}

/* Walks the whole log: keys contiguous, values valid, terms not going
 * back, bounds equal to the cached ones. */
static int store_verify_log(struct store *s, MDB_txn *txn) {
  MDB_cursor *cur;
  MDB_val k;
  MDB_val v;
  struct store_entry e = {0};
  uint64_t first = s->snap_index + 1;
  uint64_t next = 0;
  uint64_t term = 0;
  int rc;
  int rv = 0;

  rc = mdb_cursor_open(txn, s->dbi_log, &cur);
  if (rc != 0) {
    return store_mdb_fail(s->errmsg, rc, "mdb_cursor_open");
  }
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && rv == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    uint64_t index = k.mv_size == 8 ? store_get_be64(k.mv_data) : 0;
    if (next == 0) {
      first = next = index;
    }
    if (index == 0 || index != next) {
      errmsg_set(s->errmsg, "log key %" PRIu64 " where %" PRIu64 " belongs",
                 index, next);
      rv = SYNOD_ECORRUPT;
    } else if ((rv = store_log_decode(s->errmsg, index, &v, &e)) == 0 &&
               (e.term < term ||
                (index == s->snap_index && e.term != s->snap_term))) {
      errmsg_set(s->errmsg, "entry %" PRIu64 ": term %" PRIu64 " out of order",
                 index, e.term);
      rv = SYNOD_ECORRUPT;
    }
    term = e.term;
    next++;
  }
  if (rv == 0 && rc != MDB_NOTFOUND) {
    rv = store_mdb_fail(s->errmsg, rc, "mdb_cursor_get");
  }
  if (rv == 0 && (first != s->first_index ||
                  (next != 0 ? next - 1 : s->snap_index) != s->last_index)) {
    errmsg_set(s->errmsg,
               "log %" PRIu64 "..%" PRIu64 " on disk, %" PRIu64 "..%" PRIu64
               " cached",
               first, next != 0 ? next - 1 : s->snap_index, s->first_index,
               s->last_index);
    rv = SYNOD_ECORRUPT;
  }
  mdb_cursor_close(cur);
  return rv;
}

static int store_verify_meta(struct store *s, MDB_txn *txn) {
  static const char *const keys[] = {STORE_KEY_FORMAT, STORE_KEY_INCARNATION,
                                     STORE_KEY_HARD_STATE, STORE_KEY_CONFIG};
  MDB_val v;
  int rv;

  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    MDB_val key = {strlen(keys[i]), (void *)keys[i]};
    rv = store_rec_get(s->errmsg, txn, s->dbi_meta, &key, &v);
    if (rv == SYNOD_ENOTFOUND && i >= 2) {
      continue; /* hard state and config are optional */
    }
    if (rv != 0) {
      return rv == SYNOD_ENOTFOUND ? SYNOD_ECORRUPT : rv;
    }
    if (i == 1 && (v.mv_size != STORE_INCARNATION_BYTES ||
                   memcmp(v.mv_data, s->incarnation, v.mv_size) != 0)) {
      errmsg_set(s->errmsg, "incarnation id changed under the store");
      return SYNOD_ECORRUPT;
    }
  }
  return 0;
}

static int store_verify_txn(struct store *s, MDB_txn *txn, void *arg) {
  int rv;

  (void)arg;
  rv = store_verify_log(s, txn);
  if (rv == 0) {
    rv = store_verify_meta(s, txn);
  }
  if (rv == 0) {
    rv = store_snap_verify(s, txn);
  }
  return rv;
}

int store_verify(struct store *s) {
  int rv = store_txn_read(s, store_verify_txn, NULL);

  if (rv != 0) {
    errmsg_wrap(s->errmsg, "store: verify");
  }
  return rv;
}
