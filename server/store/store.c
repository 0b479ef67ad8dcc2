/* The store's environment: open and close, the write-transaction runner
 * that grows the map, error mapping, checksummed records, meta. */
#include "store_int.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <zlib.h>

#include "log.h"
#include "synod.h"

uint32_t store_crc(const void *key, size_t key_len, const void *data,
                   size_t len) {
  uLong crc = crc32_z(0L, Z_NULL, 0);
  crc = crc32_z(crc, key, key_len);
  if (len > 0) {
    crc = crc32_z(crc, data, len);
  }
  return (uint32_t)crc;
}

int store_code_from_mdb(int rc) {
  switch (rc) {
  case MDB_NOTFOUND:
    return SYNOD_ENOTFOUND;
  case MDB_MAP_FULL:
  case ENOSPC:
  case EDQUOT:
  case EFBIG:
    return SYNOD_ENOSPACE;
  case ENOMEM:
    return SYNOD_ENOMEM;
  case MDB_CORRUPTED:
  case MDB_PAGE_NOTFOUND:
  case MDB_INVALID:
    return SYNOD_ECORRUPT;
  case MDB_VERSION_MISMATCH:
    return SYNOD_EPROTO;
  case MDB_TXN_FULL:
  case MDB_READERS_FULL:
  case MDB_DBS_FULL:
  case MDB_CURSOR_FULL:
  case MDB_TLS_FULL:
  case MDB_PAGE_FULL:
    return SYNOD_ELIMIT;
  case MDB_BAD_VALSIZE:
    return SYNOD_ETOOBIG;
  case EAGAIN:
  case EBUSY:
    return SYNOD_EBUSY;
  case EINVAL:
  case MDB_BAD_DBI:
  case MDB_BAD_TXN:
  case MDB_BAD_RSLOT:
  case MDB_INCOMPATIBLE:
  case MDB_MAP_RESIZED:
    return SYNOD_EINTERNAL;
  default: /* EIO, EACCES, EROFS, MDB_PANIC, ... */
    return SYNOD_EIO;
  }
}

int store_mdb_fail(char *errmsg, int rc, const char *what) {
  errmsg_set(errmsg, "%s: %s", what, mdb_strerror(rc));
  if (rc == MDB_MAP_FULL) {
    return STORE_MAPFULL;
  }
  return store_code_from_mdb(rc);
}

/* LMDB turns a write cut short by a full filesystem into EIO: when the
 * filesystem of the data directory is (nearly) full, say so, with
 * SYNOD_ENOSPACE, instead of an I/O error. */
#define STORE_DISK_FULL_BYTES (4u << 20)
int store_disk_full_check(struct store *s, int rv) {
  struct statvfs st;
  /* The directory's lock file, open from the start (the write-ahead
   * file is not open yet while the store opens). */
  if (!s->lock_held || fstatvfs(s->lock_fd, &st) != 0) {
    return rv;
  }
  uint64_t avail = (uint64_t)st.f_bavail * st.f_frsize;
  if (avail >= STORE_DISK_FULL_BYTES) {
    return rv;
  }
  errmsg_wrap(s->errmsg, "storage full: %llu KiB free on the disk",
              (unsigned long long)(avail / 1024));
  return SYNOD_ENOSPACE;
}

/* Doubles the map, up to the maximum. LMDB may only remap while no
 * transaction of this process is open, hence the refusal while snapshot
 * readers (read transactions, maybe on other threads) exist.
 * store_snapshot_read_at's short transactions wait on remap_lock instead. */
static int store_map_grow_locked(struct store *s) {
  int rc;
  int readers = atomic_load(&s->readers_open);
  size_t next;

  if (s->map_size_bytes >= s->map_size_max_bytes) {
    errmsg_wrap(s->errmsg, "map full at %zu bytes, the maximum",
                s->map_size_bytes);
    return SYNOD_ENOSPACE;
  }
  if (readers > 0) {
    errmsg_wrap(s->errmsg,
                "map full at %zu bytes and cannot grow while %d snapshot "
                "readers are open",
                s->map_size_bytes, readers);
    return SYNOD_EBUSY;
  }
  next = s->map_size_bytes > s->map_size_max_bytes / 2 ? s->map_size_max_bytes
                                                       : s->map_size_bytes * 2;
  s->map_addr = NULL; /* LMDB unmaps it first, even if the new map fails */
  s->map_addr_bytes = 0;
  rc = mdb_env_set_mapsize(s->env, next);
  if (rc != 0) {
    errmsg_wrap(s->errmsg, "map full at %zu bytes", s->map_size_bytes);
    errmsg_wrap(s->errmsg, "mdb_env_set_mapsize %zu: %s", next,
                mdb_strerror(rc));
    return store_code_from_mdb(rc);
  }
  log_info("store", "map grown from %zu to %zu bytes", s->map_size_bytes, next);
  s->map_size_bytes = next;
  return 0;
}

static int store_map_grow(struct store *s) {
  pthread_rwlock_wrlock(&s->remap_lock);
  int rv = store_map_grow_locked(s);
  pthread_rwlock_unlock(&s->remap_lock);
  return rv;
}

/* ----------------------------------------------------------- map pages
 *
 * A page of LMDB's map that a read touches stays mapped into this process,
 * and counts in its resident memory, until it is unmapped; and a fault
 * maps the whole folio the page cache holds it in (tens to hundreds of KB
 * each here, written by LMDB's large writes). A snapshot's compaction
 * reads the first page of every overflow entry it frees: in the 1,000,000
 * key fill of synod-bench's key-scale, one compaction's 536 faults mapped
 * 75 MB, 75 B per key of "file-backed" memory that nothing needed again.
 * So every write transaction unmaps the map's pages when it commits, and
 * reads of old entries and snapshot chunks unmap what they copied out.
 * The bytes stay in the page cache (clean, reclaimable by the kernel), and
 * a later read maps them back with a minor fault. MADV_DONTNEED on a
 * shared file mapping only drops this process's page table entries: no
 * data is lost and concurrent readers just fault again. */

void store_map_drop(const void *p, size_t len) {
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t lo = (uintptr_t)p & ~(page - 1);
  uintptr_t hi = ((uintptr_t)p + len + page - 1) & ~(page - 1);
  if (len > 0) {
    (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
  }
}

/* Finds the map: the mapping in /proc/self/maps that holds a record LMDB
 * reads for us (the format record), if it is the map's size. By address,
 * not by data.mdb's device and inode, which /proc/self/maps may give
 * otherwise than stat() (btrfs subvolumes, overlayfs). Looked up once per
 * map size: a miss is remembered (the pages then stay mapped). */
static void store_map_find(struct store *s) {
  MDB_txn *txn;
  MDB_val k = {strlen(STORE_KEY_FORMAT), STORE_KEY_FORMAT}, v;
  uintptr_t at = 0;
  s->map_addr = NULL;
  s->map_addr_bytes = s->map_size_bytes;
  if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0) {
    return;
  }
  if (mdb_get(txn, s->dbi_meta, &k, &v) == 0) {
    at = (uintptr_t)v.mv_data;
  }
  mdb_txn_abort(txn);
  FILE *f = at != 0 ? fopen("/proc/self/maps", "re") : NULL;
  if (f == NULL) {
    return;
  }
  char line[512];
  while (fgets(line, sizeof line, f) != NULL) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo <= at && at < hi) {
      if (hi - lo == s->map_size_bytes) {
        s->map_addr = (void *)lo;
      }
      break;
    }
  }
  fclose(f);
  if (s->map_addr == NULL) {
    log_info("store", "LMDB's map not found in /proc/self/maps: its pages "
                      "stay mapped after reads");
  }
}

/* After a commit, on the thread that wrote it: writers take turns (the
 * node's write lock, or its loop with nothing in flight), and only a
 * write moves the map (store_map_grow()), so it cannot move between
 * finding it and unmapping its pages. */
static void store_map_drop_all(struct store *s) {
  if (s->map_addr_bytes != s->map_size_bytes) {
    store_map_find(s);
  }
  if (s->map_addr != NULL) {
    store_map_drop(s->map_addr, s->map_size_bytes);
  }
}

int store_txn_run(struct store *s, store_txn_fn fn, void *arg) {
  MDB_txn *txn;
  int rv;
  int rc;

  for (;;) {
    rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc != 0) {
      rv = store_mdb_fail(s->errmsg, rc, "mdb_txn_begin");
      return rv == STORE_MAPFULL ? SYNOD_ENOSPACE : rv;
    }
    rv = fn(s, txn, arg);
    if (rv != 0) {
      mdb_txn_abort(txn);
    } else {
      rc = mdb_txn_commit(txn); /* frees txn, even on failure */
      if (rc == 0) {
        store_map_drop_all(s);
        return 0;
      }
      rv = store_mdb_fail(s->errmsg, rc, "mdb_txn_commit");
      rv = rv == SYNOD_EIO ? store_disk_full_check(s, rv) : rv;
    }
    if (rv != STORE_MAPFULL) {
      return rv;
    }
    rv = store_map_grow(s);
    if (rv != 0) {
      return rv;
    }
  }
}

int store_txn_write(struct store *s, store_txn_fn fn, void *arg) {
  return store_wal_checkpoint_with(s, 0, fn, arg);
}

int store_txn_read(struct store *s, store_txn_fn fn, void *arg) {
  MDB_txn *txn;
  int rv;
  int rc;

  if ((rv = store_wal_checkpoint(s)) != 0) {
    return rv;
  }
  rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
  if (rc != 0) {
    return store_mdb_fail(s->errmsg, rc, "mdb_txn_begin (read)");
  }
  rv = fn(s, txn, arg);
  mdb_txn_abort(txn);
  /* A read cannot fill the map; keep the internal code from escaping. */
  return rv == STORE_MAPFULL ? SYNOD_EINTERNAL : rv;
}

int store_rec_reserve(char *errmsg, MDB_txn *txn, MDB_dbi dbi, MDB_val *key,
                      size_t len, uint8_t **payload) {
  MDB_val v = {.mv_size = STORE_REC_HEADER_BYTES + len, .mv_data = NULL};
  int rc = mdb_put(txn, dbi, key, &v, MDB_RESERVE);

  if (rc != 0) {
    return store_mdb_fail(errmsg, rc, "mdb_put");
  }
  *payload = (uint8_t *)v.mv_data + STORE_REC_HEADER_BYTES;
  return 0;
}

void store_rec_seal(const MDB_val *key, uint8_t *payload, size_t len) {
  uint32_t crc = store_crc(key->mv_data, key->mv_size, payload, len);
  store_put_be32(payload - STORE_REC_HEADER_BYTES, crc);
}

int store_rec_get(char *errmsg, MDB_txn *txn, MDB_dbi dbi, MDB_val *key,
                  MDB_val *payload) {
  MDB_val v;
  const uint8_t *p;
  uint32_t crc;
  int rc = mdb_get(txn, dbi, key, &v);

  if (rc == MDB_NOTFOUND) {
    errmsg_set(errmsg, "record %.*s not found", (int)key->mv_size,
               (const char *)key->mv_data);
    return SYNOD_ENOTFOUND;
  }
  if (rc != 0) {
    return store_mdb_fail(errmsg, rc, "mdb_get");
  }
  if (v.mv_size < STORE_REC_HEADER_BYTES) {
    errmsg_set(errmsg, "record %.*s: %zu bytes, too short", (int)key->mv_size,
               (const char *)key->mv_data, v.mv_size);
    return SYNOD_ECORRUPT;
  }
  p = v.mv_data;
  payload->mv_data = (void *)(p + STORE_REC_HEADER_BYTES);
  payload->mv_size = v.mv_size - STORE_REC_HEADER_BYTES;
  crc =
      store_crc(key->mv_data, key->mv_size, payload->mv_data, payload->mv_size);
  if (crc != store_get_be32(p)) {
    errmsg_set(
        errmsg, "record %.*s: checksum %08" PRIx32 ", expected %08" PRIx32,
        (int)key->mv_size, (const char *)key->mv_data, crc, store_get_be32(p));
    return SYNOD_ECORRUPT;
  }
  return 0;
}

int store_del_range(char *errmsg, MDB_txn *txn, MDB_dbi dbi, MDB_val *from,
                    int (*keep_going)(const MDB_val *key, const void *arg),
                    const void *arg) {
  MDB_cursor *cur;
  MDB_val k;
  MDB_val v;
  int rc;
  int rv = 0;

  rc = mdb_cursor_open(txn, dbi, &cur);
  if (rc != 0) {
    return store_mdb_fail(errmsg, rc, "mdb_cursor_open");
  }
  if (from != NULL) {
    k = *from;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
  } else {
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
  }
  while (rc == 0 && keep_going(&k, arg)) {
    rc = mdb_cursor_del(cur, 0);
    if (rc != 0) {
      rv = store_mdb_fail(errmsg, rc, "mdb_cursor_del");
      goto cleanup;
    }
    /* After a delete, MDB_NEXT yields the key that followed it. */
    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
  }
  if (rc != 0 && rc != MDB_NOTFOUND) {
    rv = store_mdb_fail(errmsg, rc, "mdb_cursor_get");
  }
cleanup:
  mdb_cursor_close(cur);
  return rv;
}

/* Creates the directory if missing and takes the store's lock file, so
 * that two processes (or two opens) never share one environment: LMDB's
 * own locks do not protect a process from itself. */
static int store_dir_lock(struct store *s, const char *dir) {
  char path[4096];
  int rv;

  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    rv = store_code_from_mdb(errno);
    errmsg_set(s->errmsg, "mkdir: %s", strerror(errno));
    return rv;
  }
  if (snprintf(path, sizeof path, "%s/synod.lock", dir) >= (int)sizeof path) {
    errmsg_set(s->errmsg, "path too long");
    return SYNOD_EINVAL;
  }
  s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (s->lock_fd < 0) {
    rv = store_code_from_mdb(errno);
    errmsg_set(s->errmsg, "open %s: %s", path, strerror(errno));
    return rv;
  }
  s->lock_held = true;
  if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
    rv = errno == EWOULDBLOCK ? SYNOD_EBUSY : store_code_from_mdb(errno);
    errmsg_set(s->errmsg, "flock %s: %s (open elsewhere?)", path,
               strerror(errno));
    return rv;
  }
  return 0;
}

static size_t store_round_up(size_t n, size_t unit) {
  if (n % unit != 0 && n <= SIZE_MAX - unit) {
    n += unit - n % unit;
  }
  return n;
}

/* Creates and opens the LMDB environment with the configured sizes. */
static int store_env_open(struct store *s, const char *dir,
                          const struct store_options *opts) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  MDB_envinfo info;
  int rc;
  int dead;

  s->map_size_bytes = opts->map_size_bytes ? opts->map_size_bytes
                                           : STORE_MAP_SIZE_BYTES_DEFAULT;
  s->map_size_bytes = store_round_up(s->map_size_bytes, page);
  s->map_size_max_bytes = opts->map_size_max_bytes
                              ? opts->map_size_max_bytes
                              : STORE_MAP_SIZE_MAX_BYTES_DEFAULT;
  s->snapshot_chunk_bytes = opts->snapshot_chunk_bytes
                                ? opts->snapshot_chunk_bytes
                                : STORE_SNAPSHOT_CHUNK_BYTES_DEFAULT;
  rc = mdb_env_create(&s->env);
  if (rc != 0) {
    return store_mdb_fail(s->errmsg, rc, "mdb_env_create");
  }
  rc = mdb_env_set_maxdbs(s->env, 3);
  if (rc == 0) {
    rc = mdb_env_set_mapsize(s->env, s->map_size_bytes);
  }
  if (rc == 0) {
    /* NOTLS: a snapshot reader's read transaction may move to another
     * thread, and one thread may hold several. */
    rc = mdb_env_open(s->env, dir, MDB_NOTLS, 0600);
  }
  if (rc == 0) {
    rc = mdb_reader_check(s->env, &dead); /* slots of killed processes */
  }
  if (rc == 0) {
    rc = mdb_env_info(s->env, &info);
  }
  if (rc != 0) {
    return store_mdb_fail(s->errmsg, rc, "mdb_env_open");
  }
  s->map_size_bytes = info.me_mapsize; /* bigger if the file was */
  s->map_size_max_bytes = s->map_size_max_bytes < s->map_size_bytes
                              ? s->map_size_bytes
                              : store_round_up(s->map_size_max_bytes, page);
  return 0;
}

/* Writes the format version and a new incarnation id into an empty meta,
 * or checks the version of an existing one, then loads the id. */
static int store_meta_init(struct store *s, MDB_txn *txn) {
  MDB_val key = {strlen(STORE_KEY_FORMAT), STORE_KEY_FORMAT};
  MDB_val ikey = {strlen(STORE_KEY_INCARNATION), STORE_KEY_INCARNATION};
  MDB_val v;
  uint8_t *p = NULL;
  uint32_t version;
  int rv;

  rv = store_rec_get(s->errmsg, txn, s->dbi_meta, &key, &v);
  if (rv == SYNOD_ENOTFOUND) {
    uint8_t id[STORE_INCARNATION_BYTES];
    if (getrandom(id, sizeof id, 0) != (ssize_t)sizeof id) {
      errmsg_set(s->errmsg, "getrandom: %s", strerror(errno));
      return SYNOD_EIO;
    }
    rv = store_rec_reserve(s->errmsg, txn, s->dbi_meta, &key, 4, &p);
    if (rv != 0) {
      return rv;
    }
    store_put_be32(p, STORE_FORMAT_VERSION);
    store_rec_seal(&key, p, 4);
    rv = store_rec_reserve(s->errmsg, txn, s->dbi_meta, &ikey, sizeof id, &p);
    if (rv != 0) {
      return rv;
    }
    memcpy(p, id, sizeof id);
    store_rec_seal(&ikey, p, sizeof id);
  } else if (rv != 0) {
    return rv;
  } else {
    version = v.mv_size == 4 ? store_get_be32(v.mv_data) : 0;
    if (version == 1) { /* upgrade: nothing to convert */
      rv = store_rec_reserve(s->errmsg, txn, s->dbi_meta, &key, 4, &p);
      if (rv != 0) {
        return rv;
      }
      store_put_be32(p, STORE_FORMAT_VERSION);
      store_rec_seal(&key, p, 4);
      log_info("store", "format upgraded from 1 to %d", STORE_FORMAT_VERSION);
      version = STORE_FORMAT_VERSION;
    }
    if (version != STORE_FORMAT_VERSION) {
      errmsg_set(s->errmsg, "format version %" PRIu32 ", this build reads %d",
                 version, STORE_FORMAT_VERSION);
      return SYNOD_EPROTO;
    }
  }
  rv = store_rec_get(s->errmsg, txn, s->dbi_meta, &ikey, &v);
  if (rv == 0 && v.mv_size != STORE_INCARNATION_BYTES) {
    errmsg_set(s->errmsg, "incarnation id of %zu bytes", v.mv_size);
    rv = SYNOD_ECORRUPT;
  }
  if (rv != 0) {
    return rv == SYNOD_ENOTFOUND ? SYNOD_ECORRUPT : rv;
  }
  memcpy(s->incarnation, v.mv_data, STORE_INCARNATION_BYTES);
  return 0;
}

int store_hard_state_get(struct store *s, MDB_txn *txn,
                         struct store_hard_state *hs) {
  MDB_val key = {strlen(STORE_KEY_HARD_STATE), STORE_KEY_HARD_STATE};
  MDB_val v;
  int rv = store_rec_get(s->errmsg, txn, s->dbi_meta, &key, &v);

  memset(hs, 0, sizeof *hs);
  if (rv == SYNOD_ENOTFOUND) {
    return 0;
  }
  if (rv == 0 && v.mv_size != 24) {
    errmsg_set(s->errmsg, "hard state of %zu bytes", v.mv_size);
    rv = SYNOD_ECORRUPT;
  }
  if (rv != 0) {
    return rv;
  }
  hs->term = store_get_be64(v.mv_data);
  hs->vote = store_get_be64((const uint8_t *)v.mv_data + 8);
  hs->commit = store_get_be64((const uint8_t *)v.mv_data + 16);
  return 0;
}

/* The seq of the last write-ahead record in LMDB (0: none yet). */
static int store_wal_seq_get(struct store *s, MDB_txn *txn) {
  MDB_val key = {strlen(STORE_KEY_WAL_SEQ), STORE_KEY_WAL_SEQ};
  MDB_val v;
  int rv = store_rec_get(s->errmsg, txn, s->dbi_meta, &key, &v);

  s->wal_ckpt_seq = 0;
  if (rv == SYNOD_ENOTFOUND) {
    return 0;
  }
  if (rv == 0 && v.mv_size != 8) {
    errmsg_set(s->errmsg, "wal seq of %zu bytes", v.mv_size);
    rv = SYNOD_ECORRUPT;
  }
  if (rv == 0) {
    s->wal_ckpt_seq = store_get_be64(v.mv_data);
  }
  return rv;
}

/* Finds the first and last log entries and the last term, and checks
 * that they fit around the snapshot. */
static int store_log_bounds(struct store *s, MDB_txn *txn) {
  MDB_cursor *cur;
  MDB_val k;
  MDB_val v;
  struct store_entry e;
  int rc;
  int rv = 0;

  s->first_index = s->snap_index + 1;
  s->last_index = s->snap_index;
  s->last_term = s->snap_term;
  rc = mdb_cursor_open(txn, s->dbi_log, &cur);
  if (rc != 0) {
    return store_mdb_fail(s->errmsg, rc, "mdb_cursor_open");
  }
  rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
  if (rc == MDB_NOTFOUND) {
    goto cleanup;
  }
  if (rc == 0 && k.mv_size == 8) {
    s->first_index = store_get_be64(k.mv_data);
    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
  }
  if (rc != 0 || k.mv_size != 8) {
    rv = rc != 0 ? store_mdb_fail(s->errmsg, rc, "mdb_cursor_get")
                 : SYNOD_ECORRUPT;
    if (rc == 0) {
      errmsg_set(s->errmsg, "log key of %zu bytes", k.mv_size);
    }
    goto cleanup;
  }
  s->last_index = store_get_be64(k.mv_data);
  rv = store_log_decode(s->errmsg, s->last_index, &v, &e);
  if (rv != 0) {
    goto cleanup;
  }
  s->last_term = e.term;
  if (s->first_index > s->snap_index + 1 || s->last_index < s->snap_index) {
    errmsg_set(s->errmsg,
               "log %" PRIu64 "..%" PRIu64 " does not meet snapshot %" PRIu64,
               s->first_index, s->last_index, s->snap_index);
    rv = SYNOD_ECORRUPT;
  }
cleanup:
  mdb_cursor_close(cur);
  return rv;
}

/* The body of the open transaction: creates the sub-databases, the meta
 * records of a new store, removes chunks of uncommitted snapshots, and
 * loads the cached state. Writes into s, which is not open yet. */
static int store_open_txn(struct store *s, MDB_txn *txn, void *arg) {
  struct store_snapshot_meta head;
  uint64_t chunks;
  int rc;
  int rv;

  (void)arg;
  rc = mdb_dbi_open(txn, "log", MDB_CREATE, &s->dbi_log);
  if (rc == 0) {
    rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &s->dbi_meta);
  }
  if (rc == 0) {
    rc = mdb_dbi_open(txn, "snap", MDB_CREATE, &s->dbi_snap);
  }
  if (rc != 0) {
    return store_mdb_fail(s->errmsg, rc, "mdb_dbi_open");
  }
  rv = store_meta_init(s, txn);
  if (rv != 0) {
    return rv;
  }
  rv = store_snap_head_get(s->errmsg, txn, s->dbi_snap, &s->snap_gen, &head,
                           &chunks);
  if (rv != 0 && rv != SYNOD_ENOTFOUND) {
    return rv;
  }
  s->snap_index = rv == 0 ? head.index : 0;
  s->snap_term = rv == 0 ? head.term : 0;
  s->snap_size_bytes = rv == 0 ? head.size_bytes : 0;
  s->snap_gen = rv == 0 ? s->snap_gen : 0;
  rv = store_snap_chunks_clean(s->errmsg, txn, s->dbi_snap, s->snap_gen);
  if (rv != 0) {
    return rv;
  }
  rv = store_hard_state_get(s, txn, &s->hard_state);
  if (rv != 0) {
    return rv;
  }
  rv = store_wal_seq_get(s, txn);
  if (rv != 0) {
    return rv;
  }
  return store_log_bounds(s, txn);
}

/* Frees what s holds but keeps its error message. */
static void store_release(struct store *s) {
  store_wal_close(s);
  if (s->env != NULL) {
    mdb_env_close(s->env);
    s->env = NULL;
  }
  if (s->lock_held) {
    close(s->lock_fd); /* releases the flock */
    s->lock_held = false;
  }
  free(s->pending.config);
  memset(&s->pending, 0, sizeof s->pending);
  pthread_rwlock_destroy(&s->remap_lock);
}

int store_open(struct store *s, const char *dir,
               const struct store_options *opts) {
  struct store_options defaults = {0};
  int rv;

  memset(s, 0, sizeof *s);
  atomic_init(&s->readers_open, 0);
  pthread_rwlock_init(&s->remap_lock, NULL);
  rv = store_dir_lock(s, dir);
  if (rv != 0) {
    goto fail;
  }
  rv = store_env_open(s, dir, opts != NULL ? opts : &defaults);
  if (rv != 0) {
    goto fail;
  }
  rv = store_txn_run(s, store_open_txn, NULL);
  if (rv != 0) {
    goto fail;
  }
  rv = store_wal_open(s, dir, opts != NULL ? opts->wal_bytes : 0);
  if (rv != 0) {
    goto fail;
  }
  log_info("store",
           "opened %s (log %" PRIu64 "..%" PRIu64 ", snapshot %" PRIu64
           ", map %zu bytes)",
           dir, s->first_index, s->last_index, s->snap_index,
           s->map_size_bytes);
  return 0;
fail:
  errmsg_wrap(s->errmsg, "store: open %s", dir);
  store_release(s);
  return rv;
}

void store_close(struct store *s) {
  /* A reader's transaction would outlive its environment. */
  assert(atomic_load(&s->readers_open) == 0);
  /* Leaves LMDB whole for tools that read it alone. Failing is harmless:
   * the records stay in the file and the next open replays them. */
  if (s->wal_held && store_wal_checkpoint(s) != 0) {
    log_warn("store", "close: %s", s->errmsg);
  }
  store_release(s);
  memset(s, 0, sizeof *s);
}

const char *store_errmsg(const struct store *s) {
  return s->errmsg;
}

void store_incarnation(const struct store *s,
                       uint8_t out[STORE_INCARNATION_BYTES]) {
  memcpy(out, s->incarnation, STORE_INCARNATION_BYTES);
}

size_t store_map_size_bytes(const struct store *s) {
  return s->map_size_bytes;
}
