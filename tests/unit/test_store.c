/* Unit tests of server/store: log, hard state, configuration, snapshots,
 * map growth, corruption and disk faults, against a real LMDB. */
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "log.h"
#include "store.h"
#include "store_int.h"
#include "synod.h"

/* ---- Disk fault hooks: this binary's definitions of pwrite, writev and
 * fdatasync take precedence over libc's for liblmdb, so a test can make
 * the disk report ENOSPC or EIO. Exist only in this test binary. */

static atomic_int fault_write_errno;
static atomic_bool fault_write_once; /* only the next write fails */
static atomic_int fault_sync_errno;
static atomic_int syncs; /* fdatasync calls that succeeded */

static bool write_faults(void) {
  int err = atomic_load(&fault_write_errno);
  if (err != 0 && atomic_exchange(&fault_write_once, false)) {
    atomic_store(&fault_write_errno, 0);
  }
  errno = err != 0 ? err : errno;
  return err != 0;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
  static ssize_t (*real)(int, const void *, size_t, off_t);
  if (write_faults()) {
    return -1;
  }
  if (real == NULL) {
    *(void **)&real = dlsym(RTLD_NEXT, "pwrite");
  }
  return real(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int n) {
  static ssize_t (*real)(int, const struct iovec *, int);
  if (write_faults()) {
    return -1;
  }
  if (real == NULL) {
    *(void **)&real = dlsym(RTLD_NEXT, "writev");
  }
  return real(fd, iov, n);
}

/* Reads that reach past this offset fail with fault_read_errno (LMDB
 * reads its two meta pages below it; the write-ahead file is read with
 * pread too). */
static atomic_int fault_read_errno;
static atomic_long fault_read_from;

ssize_t pread(int fd, void *buf, size_t n, off_t off) {
  static ssize_t (*real)(int, void *, size_t, off_t);
  if (atomic_load(&fault_read_errno) != 0 &&
      off + (off_t)n > atomic_load(&fault_read_from)) {
    errno = atomic_load(&fault_read_errno);
    return -1;
  }
  if (real == NULL) {
    *(void **)&real = dlsym(RTLD_NEXT, "pread");
  }
  return real(fd, buf, n, off);
}

int fdatasync(int fd) {
  static int (*real)(int);
  if (atomic_load(&fault_sync_errno) != 0) {
    errno = atomic_load(&fault_sync_errno);
    return -1;
  }
  if (real == NULL) {
    *(void **)&real = dlsym(RTLD_NEXT, "fdatasync");
  }
  int rv = real(fd);
  if (rv == 0) {
    atomic_fetch_add(&syncs, 1);
  }
  return rv;
}

/* ---- Fixture: a fresh directory and an open store per test. */

static char *dir;
static struct store st;

static int rm_one(const char *path, const struct stat *sb, int flag,
                  struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static void setup(void) {
  const char *parent = getenv("SYNOD_TEST_TMP");
  char tmpl[4096];
  if (parent == NULL) {
    parent = "/tmp";
  }
  mkdir(parent, 0700); /* ctest's build/tmp may not exist yet */
  snprintf(tmpl, sizeof tmpl, "%s/store-XXXXXX", parent);
  ck_assert_ptr_nonnull(mkdtemp(tmpl));
  dir = strdup(tmpl);
  ck_assert_int_eq(store_open(&st, dir, NULL), 0);
}

static void teardown(void) {
  atomic_store(&fault_write_errno, 0);
  atomic_store(&fault_write_once, false);
  atomic_store(&fault_sync_errno, 0);
  atomic_store(&fault_read_errno, 0);
  store_close(&st);
  nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  free(dir);
  dir = NULL;
}

static void reopen(const struct store_options *opts) {
  store_close(&st);
  ck_assert_msg(store_open(&st, dir, opts) == 0, "%s", store_errmsg(&st));
}

/* ---- Entries whose bytes derive from (index, term), so any read can be
 * checked. */

static uint8_t pattern(uint64_t index, uint64_t term, size_t i) {
  return (uint8_t)(index * 131 + term * 7 + i);
}

static size_t len_of(uint64_t index) {
  return (size_t)(index * 37 % 300);
}

/* Appends lo..hi with term and len_of(index) bytes each; returns rv. */
static int append_range(uint64_t lo, uint64_t hi, uint64_t term) {
  size_t n = (size_t)(hi - lo + 1);
  struct store_entry *v = calloc(n, sizeof *v);
  uint8_t *buf = malloc(n * 300);
  int rv;
  for (size_t i = 0; i < n; i++) {
    uint8_t *d = buf + i * 300;
    v[i].index = lo + i;
    v[i].term = term;
    v[i].type = (uint8_t)(lo + i);
    v[i].len = len_of(lo + i);
    v[i].data = d;
    for (size_t j = 0; j < v[i].len; j++) {
      d[j] = pattern(lo + i, term, j);
    }
  }
  rv = store_log_append(&st, v, n);
  free(v);
  free(buf);
  return rv;
}

static void check_entry(const struct store_entry *e, uint64_t index,
                        uint64_t term) {
  ck_assert_uint_eq(e->index, index);
  ck_assert_uint_eq(e->term, term);
  ck_assert_uint_eq(e->type, (uint8_t)index);
  ck_assert_uint_eq(e->len, len_of(index));
  for (size_t j = 0; j < e->len; j++) {
    ck_assert_uint_eq(e->data[j], pattern(index, term, j));
  }
}

/* Reads lo..hi and checks every entry has the given term. */
static void check_range(uint64_t lo, uint64_t hi, uint64_t term) {
  struct store_entry *v;
  size_t n;
  int rv = store_log_read(&st, lo, hi, SIZE_MAX, &v, &n);
  ck_assert_msg(rv == 0, "%s", store_errmsg(&st));
  ck_assert_uint_eq(n, hi - lo + 1);
  for (size_t i = 0; i < n; i++) {
    check_entry(&v[i], lo + i, term);
  }
  store_entries_free(v);
}

/* ---- Raw LMDB access, to corrupt what the store wrote. The store must be
 * closed. */

static MDB_env *raw_open(MDB_txn **txn, MDB_dbi *dbi, const char *db) {
  MDB_env *env;
  ck_assert_int_eq(mdb_env_create(&env), 0);
  ck_assert_int_eq(mdb_env_set_maxdbs(env, 3), 0);
  ck_assert_int_eq(mdb_env_set_mapsize(env, (size_t)1 << 30), 0);
  ck_assert_int_eq(mdb_env_open(env, dir, 0, 0600), 0);
  ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, txn), 0);
  ck_assert_int_eq(mdb_dbi_open(*txn, db, 0, dbi), 0);
  return env;
}

static void raw_close(MDB_env *env, MDB_txn *txn) {
  ck_assert_int_eq(mdb_txn_commit(txn), 0);
  mdb_env_close(env);
}

enum raw_op { RAW_FLIP_LAST_BYTE, RAW_SHORTEN, RAW_DELETE };

/* Applies op to the value under key in sub-database db. */
static void raw_edit(const char *db, const void *key, size_t key_len,
                     enum raw_op op) {
  MDB_txn *txn;
  MDB_dbi dbi;
  MDB_env *env = raw_open(&txn, &dbi, db);
  MDB_val k = {key_len, (void *)key};
  MDB_val v;
  ck_assert_int_eq(mdb_get(txn, dbi, &k, &v), 0);
  uint8_t *copy = malloc(v.mv_size);
  memcpy(copy, v.mv_data, v.mv_size);
  if (op == RAW_DELETE) {
    ck_assert_int_eq(mdb_del(txn, dbi, &k, NULL), 0);
  } else {
    if (op == RAW_FLIP_LAST_BYTE) {
      copy[v.mv_size - 1] ^= 0x40;
    } else {
      v.mv_size--;
    }
    v.mv_data = copy;
    ck_assert_int_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
  }
  free(copy);
  raw_close(env, txn);
}

static void raw_edit_log(uint64_t index, enum raw_op op) {
  uint8_t kb[8];
  for (int i = 7; i >= 0; i--, index >>= 8) {
    kb[i] = (uint8_t)index;
  }
  raw_edit("log", kb, sizeof kb, op);
}

/* Number of keys in a sub-database. */
static size_t raw_count(const char *db) {
  MDB_txn *txn;
  MDB_dbi dbi;
  MDB_stat stat;
  MDB_env *env = raw_open(&txn, &dbi, db);
  ck_assert_int_eq(mdb_stat(txn, dbi, &stat), 0);
  raw_close(env, txn);
  return stat.ms_entries;
}

/* ---- Snapshots whose image bytes derive from the index. */

static uint8_t image_byte(uint64_t index, uint64_t off) {
  return (uint8_t)(index * 13 + off * 7 + off / 251);
}

/* Snapshot index's image of size bytes (free it), and its config. */
static uint8_t *image_new(uint64_t index, size_t size, uint8_t conf[8]) {
  uint8_t *img = malloc(size + 1);
  for (size_t i = 0; i < size; i++) {
    img[i] = image_byte(index, i);
  }
  memset(conf, (int)index, 8);
  return img;
}

static void snapshot_make(uint64_t index, uint64_t term, size_t size,
                          uint64_t trailing) {
  uint8_t conf[8];
  uint8_t *img = image_new(index, size, conf);
  ck_assert_int_eq(store_snapshot_begin(&st, index, term, conf, sizeof conf),
                   0);
  /* In three uneven writes, to cross chunk boundaries. */
  ck_assert_int_eq(store_snapshot_write(&st, img, size / 3), 0);
  ck_assert_int_eq(store_snapshot_write(&st, img + size / 3, size / 2), 0);
  ck_assert_int_eq(store_snapshot_write(&st, img + size / 3 + size / 2,
                                        size - size / 3 - size / 2),
                   0);
  int rv = store_snapshot_commit(&st, trailing);
  ck_assert_msg(rv == 0, "%s", store_errmsg(&st));
  free(img);
}

/* Reads the whole image with reader r in pieces of step bytes and checks
 * it against snapshot index; returns the reader's rv. */
static int reader_check(struct store_snapshot_reader *r, uint64_t index,
                        size_t step) {
  const struct store_snapshot_meta *m = store_snapshot_reader_meta(r);
  uint8_t *buf = malloc(step);
  uint64_t off = 0;
  size_t len;
  int rv;
  if (m->index != index || m->config_len != 8 ||
      m->config[7] != (uint8_t)index) {
    free(buf);
    return -1;
  }
  while ((rv = store_snapshot_reader_read(r, buf, step, &len)) == 0 &&
         len > 0) {
    for (size_t i = 0; i < len; i++, off++) {
      if (buf[i] != image_byte(index, off)) {
        free(buf);
        return -2;
      }
    }
  }
  free(buf);
  if (rv == 0 && off != m->size_bytes) {
    return -3;
  }
  return rv;
}

static void snapshot_check(uint64_t index, size_t size) {
  struct store_snapshot_reader *r;
  ck_assert_int_eq(store_snapshot_reader_new(&st, &r), 0);
  ck_assert_uint_eq(store_snapshot_reader_meta(r)->size_bytes, size);
  ck_assert_int_eq(reader_check(r, index, 1000), 0);
  store_snapshot_reader_free(r);
}

/* store_snapshot_save() of an image like snapshot_make()'s. */
static int snapshot_save(uint64_t index, uint64_t term, size_t size,
                         uint64_t trailing) {
  uint8_t conf[8];
  uint8_t *img = image_new(index, size, conf);
  int rv = store_snapshot_save(&st, index, term, conf, sizeof conf, img, size,
                               trailing);
  free(img);
  return rv;
}

/* ================= open, close, incarnation ================= */

START_TEST(open_new_store_is_empty) {
  uint64_t t = 99;
  uint64_t si;
  uint64_t stm;
  ck_assert_uint_eq(store_log_first_index(&st), 1);
  ck_assert_uint_eq(store_log_last_index(&st), 0);
  ck_assert_uint_eq(store_log_last_term(&st), 0);
  ck_assert_int_eq(store_log_term(&st, 0, &t), 0);
  ck_assert_uint_eq(t, 0);
  store_snapshot_last(&st, &si, &stm);
  ck_assert_uint_eq(si, 0);
  ck_assert_int_eq(store_verify(&st), 0);
}
END_TEST

START_TEST(open_twice_same_directory_returns_ebusy) {
  struct store other;
  ck_assert_int_eq(store_open(&other, dir, NULL), SYNOD_EBUSY);
  ck_assert_ptr_nonnull(strstr(store_errmsg(&other), "store: open"));
  store_close(&other);
  /* The first store is unaffected. */
  ck_assert_int_eq(append_range(1, 3, 1), 0);
}
END_TEST

START_TEST(open_creates_missing_directory_but_not_parents) {
  char path[4200];
  struct store other;
  snprintf(path, sizeof path, "%s/sub", dir);
  ck_assert_int_eq(store_open(&other, path, NULL), 0);
  store_close(&other);
  snprintf(path, sizeof path, "%s/no/such", dir);
  ck_assert_int_ne(store_open(&other, path, NULL), 0);
  ck_assert_ptr_nonnull(strstr(store_errmsg(&other), "mkdir"));
  store_close(&other); /* a failed open is closeable */
}
END_TEST

START_TEST(close_accepts_zeroed_and_closed_store) {
  struct store z;
  memset(&z, 0, sizeof z);
  store_close(&z);
  store_close(&z);
  store_close(&st);
  store_close(&st);
  ck_assert_ptr_null(st.env);
}
END_TEST

START_TEST(incarnation_id_is_stable_across_reopen_and_unique) {
  uint8_t a[STORE_INCARNATION_BYTES];
  uint8_t b[STORE_INCARNATION_BYTES];
  uint8_t zero[STORE_INCARNATION_BYTES] = {0};
  char path[4200];
  struct store other;
  store_incarnation(&st, a);
  ck_assert_int_ne(memcmp(a, zero, sizeof a), 0);
  reopen(NULL);
  store_incarnation(&st, b);
  ck_assert_int_eq(memcmp(a, b, sizeof a), 0);
  snprintf(path, sizeof path, "%s/other", dir);
  ck_assert_int_eq(store_open(&other, path, NULL), 0);
  store_incarnation(&other, b);
  store_close(&other);
  ck_assert_int_ne(memcmp(a, b, sizeof a), 0);
}
END_TEST

/* Writes a well-formed record (checksum | payload) under key in db. */
static void raw_put_record(const char *db, const char *key,
                           const uint8_t *payload, size_t len) {
  MDB_txn *txn;
  MDB_dbi dbi;
  MDB_env *env = raw_open(&txn, &dbi, db);
  uint8_t *rec = malloc(4 + len);
  uLong crc = crc32(crc32(0L, Z_NULL, 0), (const Bytef *)key, strlen(key));
  crc = crc32(crc, payload, (uInt)len);
  rec[0] = (uint8_t)(crc >> 24);
  rec[1] = (uint8_t)(crc >> 16);
  rec[2] = (uint8_t)(crc >> 8);
  rec[3] = (uint8_t)crc;
  memcpy(rec + 4, payload, len);
  MDB_val k = {strlen(key), (void *)key};
  MDB_val v = {4 + len, rec};
  ck_assert_int_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
  free(rec);
  raw_close(env, txn);
}

START_TEST(open_rejects_other_format_version_and_corrupt_meta) {
  uint8_t v3[4] = {0, 0, 0, 3};
  store_close(&st);
  raw_put_record("meta", "format", v3, sizeof v3);
  ck_assert_int_eq(store_open(&st, dir, NULL), SYNOD_EPROTO);
  ck_assert_ptr_nonnull(strstr(store_errmsg(&st), "format version 3"));
  raw_edit("meta", "format", 6, RAW_FLIP_LAST_BYTE);
  ck_assert_int_eq(store_open(&st, dir, NULL), SYNOD_ECORRUPT);
  ck_assert_ptr_nonnull(strstr(store_errmsg(&st), "checksum"));
}
END_TEST

/* Version 1 had no write-ahead file: it opens as it is and becomes 2, so
 * that a build reading only 1 will not open it again. */
START_TEST(open_upgrades_format_version_1) {
  uint8_t v1[4] = {0, 0, 0, 1};
  ck_assert_int_eq(append_range(1, 5, 1), 0);
  store_close(&st);
  raw_put_record("meta", "format", v1, sizeof v1);
  ck_assert_msg(store_open(&st, dir, NULL) == 0, "%s", store_errmsg(&st));
  check_range(1, 5, 1);
  store_close(&st);
  MDB_txn *txn;
  MDB_dbi dbi;
  MDB_env *env = raw_open(&txn, &dbi, "meta");
  MDB_val k = {6, "format"};
  MDB_val v;
  ck_assert_int_eq(mdb_get(txn, dbi, &k, &v), 0);
  ck_assert_uint_eq(v.mv_size, 8);
  ck_assert_uint_eq(((const uint8_t *)v.mv_data)[7], STORE_FORMAT_VERSION);
  raw_close(env, txn);
  ck_assert_int_eq(store_open(&st, dir, NULL), 0);
}
END_TEST

/* ================= log ================= */

START_TEST(log_append_then_read_returns_same_bytes) {
  ck_assert_int_eq(append_range(1, 50, 3), 0);
  ck_assert_uint_eq(store_log_last_index(&st), 50);
  ck_assert_uint_eq(store_log_last_term(&st), 3);
  check_range(1, 50, 3);
  check_range(17, 17, 3);
  ck_assert_int_eq(store_verify(&st), 0);
}
END_TEST

START_TEST(log_append_of_empty_batch_changes_nothing) {
  ck_assert_int_eq(store_log_append(&st, NULL, 0), 0);
  ck_assert_uint_eq(store_log_last_index(&st), 0);
}
END_TEST

START_TEST(log_append_rejects_gap_and_overlap) {
  ck_assert_int_eq(append_range(1, 5, 1), 0);
  ck_assert_int_eq(append_range(7, 8, 1), SYNOD_EINVAL);
  ck_assert_ptr_nonnull(strstr(store_errmsg(&st), "store: write append 7..8"));
  ck_assert_ptr_nonnull(strstr(store_errmsg(&st), "not contiguous"));
  ck_assert_int_eq(append_range(5, 6, 1), SYNOD_EINVAL);
  ck_assert_uint_eq(store_log_last_index(&st), 5);
}
END_TEST

START_TEST(log_append_rejects_term_going_back) {
  ck_assert_int_eq(append_range(1, 5, 4), 0);
  ck_assert_int_eq(append_range(6, 7, 3), SYNOD_EINVAL);
  ck_assert_ptr_nonnull(strstr(store_errmsg(&st), "term 3 below 4"));
  ck_assert_uint_eq(store_log_last_index(&st), 5);
}
END_TEST

START_TEST(log_append_rejects_null_data_and_oversized_entry) {
  uint8_t b = 1;
  struct store_entry e = {.index = 1, .term = 1, .data = NULL, .len = 3};
  ck_assert_int_eq(store_log_append(&st, &e, 1), SYNOD_EINVAL);
  e.data = &b;
  e.len = STORE_ENTRY_BYTES_MAX + 1; /* checked before any byte is read */
  ck_assert_int_eq(store_log_append(&st, &e, 1), SYNOD_ETOOBIG);
  ck_assert_uint_eq(store_log_last_index(&st), 0);
}
END_TEST

START_TEST(log_append_batch_is_all_or_nothing) {
  uint8_t d[4] = {1, 2, 3, 4};
  struct store_entry v[3] = {
      {.index = 1, .term = 1, .data = d, .len = 4},
      {.index = 2, .term = 1, .data = d, .len = 4},
      {.index = 4, .term = 1, .data = d, .len = 4},
  };
  ck_assert_int_eq(store_log_append(&st, v, 3), SYNOD_EINVAL);
  ck_assert_uint_eq(store_log_last_index(&st), 0);
  reopen(NULL);
  ck_assert_uint_eq(store_log_last_index(&st), 0);
  ck_assert_int_eq(store_verify(&st), 0);
}
END_TEST

START_TEST(log_read_below_first_returns_ecompacted) {
  struct store_entry *v = (void *)1;
  size_t n = 7;
  ck_assert_int_eq(append_range(1, 20, 1), 0);
  snapshot_make(10, 1, 100, 0);
  ck_assert_int_eq(store_log_read(&st, 9, 12, SIZE_MAX, &v, &n),
                   SYNOD_ECOMPACTED);
  ck_assert_ptr_null(v);
  ck_assert_uint_eq(n, 0);
  ck_assert_ptr_nonnull(strstr(store_errmsg(&st), "store: read 9..12"));
  check_range(11, 20, 1);
}
END_TEST

START_TEST(log_read_past_last_returns_eunavailable) {
  struct store_entry *v;
  size_t n;
  ck_assert_int_eq(append_range(1, 5, 1), 0);
  ck_assert_int_eq(store_log_read(&st, 4, 6, SIZE_MAX, &v, &n),
                   SYNOD_EUNAVAILABLE);
  ck_assert_int_eq(store_log_read(&st, 1, 1, SIZE_MAX, &v, &n), 0);
  store_entries_free(v);
}
END_TEST

START_TEST(log_read_rejects_inverted_range) {
  struct store_entry *v;
  size_t n;
  ck_assert_int_eq(append_range(1, 5, 1), 0);
  ck_assert_int_eq(store_log_read(&st, 4, 3, SIZE_MAX, &v, &n), SYNOD_EINVAL);
}
END_TEST

START_TEST(log_read_stops_at_byte_cap_but_returns_at_least_one) {
  struct store_entry *v;
  size_t n;
  /* len_of(i) = i*37 % 300: entries 1..3 hold 37, 74, 111 bytes. */
  ck_assert_int_eq(append_range(1, 10, 1), 0);
  ck_assert_int_eq(store_log_read(&st, 1, 10, 111, &v, &n), 0);
  ck_assert_uint_eq(n, 2);
  check_entry(&v[1], 2, 1);
  store_entries_free(v);
  ck_assert_int_eq(store_log_read(&st, 3, 10, 0, &v, &n), 0);
  ck_assert_uint_eq(n, 1);
  check_entry(&v[0], 3, 1);
  store_entries_free(v);
}
END_TEST

START_TEST(log_term_answers_snapshot_index_and_rejects_out_of_range) {
  uint64_t t = 0;
  ck_assert_int_eq(append_range(1, 10, 2), 0);
  ck_assert_int_eq(append_range(11, 20, 5), 0);
  ck_assert_int_eq(store_log_term(&st, 11, &t), 0);
  ck_assert_uint_eq(t, 5);
  snapshot_make(15, 5, 10, 0);
  ck_assert_int_eq(store_log_term(&st, 15, &t), 0);
  ck_assert_uint_eq(t, 5);
  ck_assert_int_eq(store_log_term(&st, 14, &t), SYNOD_ECOMPACTED);
  ck_assert_int_eq(store_log_term(&st, 21, &t), SYNOD_EUNAVAILABLE);
  ck_assert_int_eq(store_log_term(&st, 20, &t), 0);
}
END_TEST

START_TEST(log_truncate_drops_uncommitted_tail) {
  ck_assert_int_eq(append_range(1, 10, 1), 0);
  ck_assert_int_eq(append_range(11, 20, 2), 0);
  ck_assert_int_eq(store_log_truncate(&st, 12), 0);
  ck_assert_uint_eq(store_log_last_index(&st), 11);
  ck_assert_uint_eq(store_log_last_term(&st), 2);
  ck_assert_int_eq(store_log_truncate(&st, 11), 0);
  ck_assert_uint_eq(store_log_last_term(&st), 1);
  /* The log continues from the truncation point, and the tail is gone on
   * disk too. */
  ck_assert_int_eq(append_range(11, 13, 3), 0);
  reopen(NULL);
  ck_assert_uint_eq(store_log_last_index(&st), 13);
  check_range(1, 10, 1);
  check_range(11, 13, 3);
  ck_assert_int_eq(store_verify(&st), 0);
}
END_TEST

START_TEST(log_truncate_at_or_below_commit_returns_einval) {
  struct store_hard_state hs = {.term = 1, .vote = 0, .commit = 6};
  ck_assert_int_eq(append_range(1, 10, 1), 0);
  ck_assert_int_eq(store_hard_state_save(&st, &hs), 0);
  ck_assert_int_eq(store_log_truncate(&st, 6), SYNOD_EINVAL);
  ck_assert_int_eq(store_log_truncate(&st, 5), SYNOD_EINVAL);
  ck_assert_ptr_nonnull(strstr(store_errmsg(&st), "commit (6)"));
  ck_assert_uint_eq(store_log_last_index(&st), 10);
  ck_assert_int_eq(store_log_truncate(&st, 7), 0);
  ck_assert_uint_eq(store_log_last_index(&st), 6);
}
END_TEST

START_TEST(log_truncate_at_or_below_snapshot_returns_einval) {
  ck_assert_int_eq(append_range(1, 10, 1), 0);
  snapshot_make(5, 1, 10, 3);
  ck_assert_int_eq(store_log_truncate(&st, 5), SYNOD_EINVAL);
  ck_assert_int_eq(store_log_truncate(&st, 3), SYNOD_EINVAL);
  ck_assert_int_eq(store_log_truncate(&st, 0), SYNOD_EINVAL);
  ck_assert_uint_eq(store_log_last_index(&st), 10);
  ck_assert_int_eq(store_log_truncate(&st, 6), 0);
  ck_assert_uint_eq(store_log_last_index(&st), 5);
  ck_assert_uint_eq(store_log_first_index(&st), 3);
  check_range(3, 5, 1);
}
END_TEST

START_TEST(log_truncate_past_last_plus_one_returns_einval) {
  ck_assert_int_eq(append_range(1, 10, 1), 0);
  ck_assert_int_eq(store_log_truncate(&st, 12), SYNOD_EINVAL);
  ck_assert_int_eq(store_log_truncate(&st, 11), 0); /* nothing to drop */
  ck_assert_uint_eq(store_log_last_index(&st), 10);
}
END_TEST

START_TEST(log_compact_drops_prefix_up_to_snapshot) {
  ck_assert_int_eq(append_range(1, 30, 1), 0);
  snapshot_make(20, 1, 10, 100); /* keeps everything */
  ck_assert_uint_eq(store_log_first_index(&st), 1);
  ck_assert_int_eq(store_log_compact(&st, 8), 0);
  ck_assert_uint_eq(store_log_first_index(&st), 8);
  ck_assert_int_eq(store_log_compact(&st, 5), 0); /* already gone: no-op */
  ck_assert_uint_eq(store_log_first_index(&st), 8);
  ck_assert_int_eq(store_log_compact(&st, 21), 0);
  ck_assert_uint_eq(store_log_first_index(&st), 21);
  reopen(NULL);
  ck_assert_uint_eq(store_log_first_index(&st), 21);
  check_range(21, 30, 1);
  ck_assert_int_eq(store_verify(&st), 0);
}
END_TEST

START_TEST(log_compact_past_snapshot_returns_einval) {
  ck_assert_int_eq(append_range(1, 30, 1), 0);
  ck_assert_int_eq(store_log_compact(&st, 2), SYNOD_EINVAL);
  snapshot_make(20, 1, 10, 100);
  ck_assert_int_eq(store_log_compact(&st, 22), SYNOD_EINVAL);
  ck_assert_ptr_nonnull(strstr(store_errmsg(&st), "after the snapshot (20)"));
  ck_assert_uint_eq(store_log_first_index(&st), 1);
}
END_TEST

START_TEST(log_survives_close_and_reopen) {
  for (uint64_t i = 0; i < 20; i++) {
    ck_assert_int_eq(append_range(i * 100 + 1, i * 100 + 100, i + 1), 0);
  }
  reopen(NULL);
  ck_assert_uint_eq(store_log_first_index(&st), 1);
  ck_assert_uint_eq(store_log_last_index(&st), 2000);
  ck_assert_uint_eq(store_log_last_term(&st), 20);
  for (uint64_t i = 0; i < 20; i++) {
    check_range(i * 100 + 1, i * 100 + 100, i + 1);
  }
  ck_assert_int_eq(store_verify(&st), 0);
}
END_TEST

/* Truncation and compaction delete key ranges spanning many B-tree pages;
 * the boundaries must be exact. */
START_TEST(log_deletes_span_many_pages_exactly) {
  for (uint64_t i = 0; i < 10; i++) {
    ck_assert_int_eq(append_range(i * 500 + 1, i * 500 + 500, 1), 0);
  }
  ck_assert_int_eq(store_log_truncate(&st, 3777), 0);
  snapshot_make(1234, 1, 10, 0);
  ck_assert_uint_eq(store_log_first_index(&st), 1235);
  ck_assert_uint_eq(store_log_last_index(&st), 3776);
  reopen(NULL);
  ck_assert_uint_eq(store_log_first_index(&st), 1235);
  ck_assert_uint_eq(store_log_last_index(&st), 3776);
  check_range(1235, 3776, 1);
  ck_assert_int_eq(store_verify(&st), 0);
}
END_TEST

/* ================= batch, hard state, config ================= */

START_TEST(batch_write_truncates_appends_and_saves_state_in_one_go) {
  ck_assert_int_eq(append_range(1, 10, 1), 0);
  uint8_t d[3] = {9, 9, 9};
  struct store_entry v[2] = {{.index = 8, .term = 2, .data = d, .len = 3},
                             {.index = 9, .term = 2, .data = d, .len = 3}};
  struct store_hard_state hs = {.term = 2, .vote = 3, .commit = 7};
  uint8_t conf[2] = {7, 7};
  struct store_config cf = {.index = 9, .data = conf, .len = 2};
  struct store_batch b = {.hard_state = &hs,
                          .config = &cf,
                          .truncate_from = 8,
                          .entries = v,
                          .entries_count = 2};
  ck_assert_int_eq(store_batch_write(&st, &b), 0);
  reopen(NULL);
  ck_assert_uint_eq(store_log_last_index(&st), 9);
  ck_assert_uint_eq(store_log_last_term(&st), 2);
  struct store_hard_state back;
  ck_assert_int_eq(store_hard_state_load(&st, &back), 0);
  ck_assert_uint_eq(back.term, 2);
  ck_assert_uint_eq(back.vote, 3);
  ck_assert_uint_eq(back.commit, 7);
  uint64_t ci;
  uint8_t *cd;
  size_t cl;
  ck_assert_int_eq(store_config_load(&st, &ci, &cd, &cl), 0);
  ck_assert_uint_eq(ci, 9);
  ck_assert_uint_eq(cl, 2);
  free(cd);
  check_range(1, 7, 1);
  ck_assert_int_eq(store_verify(&st), 0);
}
END_TEST

START_TEST(batch_write_failure_changes_nothing) {
  ck_assert_int_eq(append_range(1, 10, 1), 0);
  uint8_t d[3] = {9, 9, 9};
  struct store_entry gap = {.index = 9, .term = 2, .data = d, .len = 3};
  struct store_hard_state hs = {.term = 2, .vote = 3, .commit = 5};
  struct store_batch b = {.hard_state = &hs,
                          .truncate_from = 7,
                          .entries = &gap,
                          .entries_count = 1};
  ck_assert_int_eq(store_batch_write(&st, &b), SYNOD_EINVAL);
  ck_assert_ptr_nonnull(strstr(store_errmsg(&st), "not contiguous"));
  /* A valid log part with an invalid hard state fails whole, too. */
  struct store_entry ok = {.index = 11, .term = 2, .data = d, .len = 3};
  struct store_hard_state bad = {.term = 2, .vote = 3, .commit = 12};
  struct store_batch b2 = {
      .hard_state = &bad, .entries = &ok, .entries_count = 1};
  ck_assert_int_eq(store_batch_write(&st, &b2), SYNOD_EINVAL);
  ck_assert_ptr_nonnull(strstr(store_errmsg(&st), "commit 12"));
  reopen(NULL);
  ck_assert_uint_eq(store_log_last_index(&st), 10);
  check_range(1, 10, 1);
  struct store_hard_state back;
  ck_assert_int_eq(store_hard_state_load(&st, &back), 0);
  ck_assert_uint_eq(back.term, 0);
}
END_TEST

START_TEST(hard_state_survives_reopen) {
  struct store_hard_state hs = {.term = 7, .vote = 2, .commit = 0};
  struct store_hard_state back = {1, 1, 1};
  ck_assert_int_eq(store_hard_state_load(&st, &back), 0);
  ck_assert_uint_eq(back.term + back.vote + back.commit, 0);
  ck_assert_int_eq(store_hard_state_save(&st, &hs), 0);
  reopen(NULL);
  ck_assert_int_eq(store_hard_state_load(&st, &back), 0);
  ck_assert_uint_eq(back.term, 7);
  ck_assert_uint_eq(back.vote, 2);
  ck_assert_uint_eq(back.commit, 0);
}
END_TEST

START_TEST(hard_state_rejects_term_going_back) {
  struct store_hard_state hs = {.term = 7};
  ck_assert_int_eq(store_hard_state_save(&st, &hs), 0);
  hs.term = 6;
  ck_assert_int_eq(store_hard_state_save(&st, &hs), SYNOD_EINVAL);
  ck_assert_ptr_nonnull(strstr(store_errmsg(&st), "term 6 below the saved 7"));
}
END_TEST

START_TEST(hard_state_rejects_second_vote_in_same_term) {
  struct store_hard_state hs = {.term = 5, .vote = 0};
  ck_assert_int_eq(store_hard_state_save(&st, &hs), 0);
  hs.vote = 2;
  ck_assert_int_eq(store_hard_state_save(&st, &hs), 0);
  ck_assert_int_eq(store_hard_state_save(&st, &hs), 0); /* same vote again */
  hs.vote = 3;
  ck_assert_int_eq(store_hard_state_save(&st, &hs), SYNOD_EINVAL);
  hs.vote = 0;
  ck_assert_int_eq(store_hard_state_save(&st, &hs), SYNOD_EINVAL);
  hs.term = 6;
  hs.vote = 3;
  ck_assert_int_eq(store_hard_state_save(&st, &hs), 0);
}
END_TEST

START_TEST(hard_state_rejects_commit_going_back_or_past_log) {
  struct store_hard_state hs = {.term = 1, .commit = 4};
  ck_assert_int_eq(store_hard_state_save(&st, &hs), SYNOD_EINVAL);
  ck_assert_int_eq(append_range(1, 5, 1), 0);
  ck_assert_int_eq(store_hard_state_save(&st, &hs), 0);
  hs.commit = 3;
  ck_assert_int_eq(store_hard_state_save(&st, &hs), SYNOD_EINVAL);
}
END_TEST

START_TEST(config_load_before_save_returns_enotfound) {
  uint64_t i;
  uint8_t *d;
  size_t l;
  ck_assert_int_eq(store_config_load(&st, &i, &d, &l), SYNOD_ENOTFOUND);
  ck_assert_ptr_nonnull(strstr(store_errmsg(&st), "store: load config"));
}
END_TEST

START_TEST(config_survives_reopen_and_may_move_back) {
  uint8_t a[5] = {1, 2, 3, 4, 5};
  uint64_t i;
  uint8_t *d;
  size_t l;
  ck_assert_int_eq(store_config_save(&st, 12, a, sizeof a), 0);
  reopen(NULL);
  ck_assert_int_eq(store_config_load(&st, &i, &d, &l), 0);
  ck_assert_uint_eq(i, 12);
  ck_assert_uint_eq(l, 5);
  ck_assert_int_eq(memcmp(d, a, 5), 0);
  free(d);
  ck_assert_int_eq(store_config_save(&st, 4, NULL, 0), 0);
  ck_assert_int_eq(store_config_load(&st, &i, &d, &l), 0);
  ck_assert_uint_eq(i, 4);
  ck_assert_uint_eq(l, 0);
  ck_assert_ptr_null(d);
  ck_assert_int_eq(store_config_save(&st, 5, NULL, 3), SYNOD_EINVAL);
}
END_TEST

/* ================= corruption ================= */

START_TEST(corrupt_entry_checksum_returns_ecorrupt) {
  struct store_entry *v;
  size_t n;
  uint64_t t;
  ck_assert_int_eq(append_range(1, 5, 1), 0);
  store_close(&st);
  raw_edit_log(3, RAW_FLIP_LAST_BYTE);
  ck_assert_int_eq(store_open(&st, dir, NULL), 0);
  ck_assert_int_eq(store_log_read(&st, 1, 5, SIZE_MAX, &v, &n), SYNOD_ECORRUPT);
  ck_assert_ptr_nonnull(strstr(store_errmsg(&st), "entry 3: checksum"));
  ck_assert_int_eq(store_log_term(&st, 3, &t), SYNOD_ECORRUPT);
  ck_assert_int_eq(store_verify(&st), SYNOD_ECORRUPT);
  check_range(4, 5, 1); /* the rest stays readable */
}
END_TEST

START_TEST(corrupt_entry_length_returns_ecorrupt) {
  struct store_entry *v;
  size_t n;
  ck_assert_int_eq(append_range(1, 5, 1), 0);
  store_close(&st);
  raw_edit_log(2, RAW_SHORTEN);
  ck_assert_int_eq(store_open(&st, dir, NULL), 0);
  ck_assert_int_eq(store_log_read(&st, 2, 2, SIZE_MAX, &v, &n), SYNOD_ECORRUPT);
  ck_assert_ptr_nonnull(strstr(store_errmsg(&st), "entry 2: length"));
}
END_TEST

START_TEST(missing_entry_inside_log_returns_ecorrupt) {
  struct store_entry *v;
  size_t n;
  ck_assert_int_eq(append_range(1, 5, 1), 0);
  store_close(&st);
  raw_edit_log(3, RAW_DELETE);
  ck_assert_int_eq(store_open(&st, dir, NULL), 0);
  ck_assert_int_eq(store_log_read(&st, 2, 4, SIZE_MAX, &v, &n), SYNOD_ECORRUPT);
  ck_assert_ptr_nonnull(strstr(store_errmsg(&st), "entry 3 missing"));
  ck_assert_int_eq(store_verify(&st), SYNOD_ECORRUPT);
}
END_TEST

START_TEST(open_reports_corrupt_last_entry_and_hard_state) {
  struct store_hard_state hs = {.term = 3};
  ck_assert_int_eq(append_range(1, 5, 1), 0);
  store_close(&st);
  raw_edit_log(5, RAW_FLIP_LAST_BYTE);
  ck_assert_int_eq(store_open(&st, dir, NULL), SYNOD_ECORRUPT);
  ck_assert_ptr_nonnull(strstr(store_errmsg(&st), "entry 5"));
  raw_edit_log(5, RAW_DELETE);
  ck_assert_int_eq(store_open(&st, dir, NULL), 0);
  ck_assert_int_eq(store_hard_state_save(&st, &hs), 0);
  store_close(&st);
  raw_edit("meta", "hard_state", 10, RAW_FLIP_LAST_BYTE);
  ck_assert_int_eq(store_open(&st, dir, NULL), SYNOD_ECORRUPT);
  ck_assert_ptr_nonnull(strstr(store_errmsg(&st), "hard_state"));
}
END_TEST

/* ================= snapshots ================= */

START_TEST(snapshot_commit_switches_and_compacts_log) {
  uint64_t si;
  uint64_t stm;
  ck_assert_int_eq(append_range(1, 100, 2), 0);
  snapshot_make(60, 2, 5000, 0);
  store_snapshot_last(&st, &si, &stm);
  ck_assert_uint_eq(si, 60);
  ck_assert_uint_eq(stm, 2);
  ck_assert_uint_eq(store_log_first_index(&st), 61);
  ck_assert_uint_eq(store_log_last_index(&st), 100);
  snapshot_check(60, 5000);
  check_range(61, 100, 2);
  reopen(NULL);
  store_snapshot_last(&st, &si, &stm);
  ck_assert_uint_eq(si, 60);
  ck_assert_uint_eq(store_log_first_index(&st), 61);
  snapshot_check(60, 5000);
  ck_assert_int_eq(store_verify(&st), 0);
}
END_TEST

START_TEST(snapshot_commit_keeps_trailing_entries) {
  ck_assert_int_eq(append_range(1, 100, 2), 0);
  snapshot_make(60, 2, 100, 10);
  ck_assert_uint_eq(store_log_first_index(&st), 51);
  check_range(51, 100, 2);
  snapshot_make(99, 2, 100, 1000); /* more than there is: keeps all */
  ck_assert_uint_eq(store_log_first_index(&st), 51);
  ck_assert_int_eq(store_verify(&st), 0);
}
END_TEST

START_TEST(snapshot_with_other_term_discards_whole_log) {
  uint64_t t;
  ck_assert_int_eq(append_range(1, 20, 1), 0);
  snapshot_make(15, 2, 100, 5);
  ck_assert_uint_eq(store_log_first_index(&st), 16);
  ck_assert_uint_eq(store_log_last_index(&st), 15);
  ck_assert_uint_eq(store_log_last_term(&st), 2);
  ck_assert_int_eq(store_log_term(&st, 15, &t), 0);
  ck_assert_uint_eq(t, 2);
  ck_assert_int_eq(append_range(16, 18, 2), 0);
  reopen(NULL);
  check_range(16, 18, 2);
  ck_assert_int_eq(store_verify(&st), 0);
}
END_TEST

START_TEST(snapshot_past_last_index_discards_log) {
  ck_assert_int_eq(append_range(1, 10, 1), 0);
  snapshot_make(50, 3, 100, 5);
  ck_assert_uint_eq(store_log_first_index(&st), 51);
  ck_assert_uint_eq(store_log_last_index(&st), 50);
  ck_assert_uint_eq(store_log_last_term(&st), 3);
  ck_assert_int_eq(append_range(51, 52, 3), 0);
  reopen(NULL);
  ck_assert_uint_eq(store_log_last_index(&st), 52);
  ck_assert_int_eq(store_verify(&st), 0);
}
END_TEST

START_TEST(snapshot_old_stays_readable_until_commit) {
  struct store_snapshot_reader *before;
  struct store_snapshot_reader *during;
  uint8_t img[3000];
  ck_assert_int_eq(append_range(1, 30, 1), 0);
  snapshot_make(10, 1, 2000, 0);
  ck_assert_int_eq(store_snapshot_reader_new(&st, &before), 0);
  ck_assert_int_eq(store_snapshot_begin(&st, 20, 1, NULL, 0), 0);
  for (size_t i = 0; i < sizeof img; i++) {
    img[i] = image_byte(20, i);
  }
  ck_assert_int_eq(store_snapshot_write(&st, img, sizeof img), 0);
  ck_assert_int_eq(store_snapshot_reader_new(&st, &during), 0);
  ck_assert_uint_eq(store_snapshot_reader_meta(during)->index, 10);
  ck_assert_int_eq(store_snapshot_commit(&st, 0), 0);
  /* Readers opened before the switch still read the old image whole,
   * although its chunks are deleted in the current version. */
  ck_assert_int_eq(reader_check(before, 10, 333), 0);
  ck_assert_int_eq(reader_check(during, 10, 4096), 0);
  store_snapshot_reader_free(before);
  store_snapshot_reader_free(during);
  struct store_snapshot_reader *after;
  ck_assert_int_eq(store_snapshot_reader_new(&st, &after), 0);
  ck_assert_uint_eq(store_snapshot_reader_meta(after)->index, 20);
  ck_assert_uint_eq(store_snapshot_reader_meta(after)->config_len, 0);
  store_snapshot_reader_free(after);
}
END_TEST

/* Checks store_snapshot_read_at(index, off, len) against the image. */
static void read_at_check(uint64_t index, uint64_t off, size_t len) {
  uint8_t *buf = malloc(len + 1);
  char why[SYNOD_ERRMSG_MAX];
  int rv = store_snapshot_read_at(&st, index, off, buf, len, why);
  ck_assert_msg(rv == 0, "%zu at %llu: %s", len, (unsigned long long)off, why);
  for (size_t i = 0; i < len; i++) {
    ck_assert_uint_eq(buf[i], image_byte(index, off + i));
  }
  free(buf);
}

/* A leader sends a follower chunks of the image read from the store at
 * any offset, whatever the store's own chunks (here 100 bytes at most,
 * written in three pieces, so of several sizes). */
START_TEST(snapshot_read_at_any_range) {
  struct store_options o = {.snapshot_chunk_bytes = 100};
  char why[SYNOD_ERRMSG_MAX];
  uint8_t b[4];
  reopen(&o);
  ck_assert_int_eq(store_snapshot_read_at(&st, 10, 0, b, 1, why),
                   SYNOD_ENOTFOUND);
  ck_assert_int_eq(append_range(1, 30, 1), 0);
  snapshot_make(10, 1, 2000, 0);
  read_at_check(10, 0, 1);
  read_at_check(10, 0, 2000);
  read_at_check(10, 99, 2);
  read_at_check(10, 666, 700);
  read_at_check(10, 1999, 1);
  read_at_check(10, 2000, 0);
  ck_assert_int_eq(store_snapshot_read_at(&st, 9, 0, b, 1, why),
                   SYNOD_ENOTFOUND);
  ck_assert_ptr_nonnull(strstr(why, "is gone"));
  ck_assert_int_eq(store_snapshot_read_at(&st, 10, 1999, b, 2, why),
                   SYNOD_EINVAL);
  ck_assert_int_eq(store_snapshot_read_at(&st, 10, 2001, b, 0, why),
                   SYNOD_EINVAL);
  snapshot_make(20, 1, 3000, 0);
  ck_assert_int_eq(store_snapshot_read_at(&st, 10, 0, b, 1, why),
                   SYNOD_ENOTFOUND);
  read_at_check(20, 1234, 1766);
  ck_assert_int_eq(atomic_load(&st.readers_open), 0);
}
END_TEST

START_TEST(snapshot_abort_keeps_old_and_drops_chunks) {
  struct store_options o = {.snapshot_chunk_bytes = 100};
  uint8_t img[1000] = {0};
  uint64_t si;
  uint64_t stm;
  reopen(&o);
  ck_assert_int_eq(append_range(1, 30, 1), 0);
  snapshot_make(10, 1, 250, 0); /* writes of 83, 125, 42: 4 chunks */
  ck_assert_int_eq(store_snapshot_begin(&st, 20, 1, NULL, 0), 0);
  ck_assert_int_eq(store_snapshot_write(&st, img, sizeof img), 0);
  ck_assert_int_eq(store_snapshot_abort(&st), 0);
  ck_assert_int_eq(store_snapshot_abort(&st), 0); /* nothing pending */
  store_snapshot_last(&st, &si, &stm);
  ck_assert_uint_eq(si, 10);
  ck_assert_uint_eq(store_log_first_index(&st), 11);
  snapshot_check(10, 250);
  store_close(&st);
  ck_assert_uint_eq(raw_count("snap"), 1 + 4);
}
END_TEST

START_TEST(snapshot_uncommitted_is_dropped_on_reopen) {
  struct store_options o = {.snapshot_chunk_bytes = 100};
  uint8_t img[1000] = {0};
  uint64_t si;
  uint64_t stm;
  reopen(&o);
  ck_assert_int_eq(append_range(1, 30, 1), 0);
  snapshot_make(10, 1, 250, 0);
  ck_assert_int_eq(store_snapshot_begin(&st, 20, 1, NULL, 0), 0);
  ck_assert_int_eq(store_snapshot_write(&st, img, sizeof img), 0);
  store_close(&st); /* a crash before the commit */
  ck_assert_uint_eq(raw_count("snap"), 1 + 4 + 10);
  ck_assert_int_eq(store_open(&st, dir, &o), 0);
  store_snapshot_last(&st, &si, &stm);
  ck_assert_uint_eq(si, 10);
  ck_assert_uint_eq(store_log_first_index(&st), 11);
  snapshot_check(10, 250);
  store_close(&st);
  ck_assert_uint_eq(raw_count("snap"), 1 + 4);
}
END_TEST

START_TEST(snapshot_begin_rejects_stale_index_and_second_begin) {
  ck_assert_int_eq(append_range(1, 30, 1), 0);
  snapshot_make(10, 1, 10, 0);
  ck_assert_int_eq(store_snapshot_begin(&st, 10, 1, NULL, 0), SYNOD_EINVAL);
  ck_assert_int_eq(store_snapshot_begin(&st, 5, 1, NULL, 0), SYNOD_EINVAL);
  ck_assert_int_eq(store_snapshot_begin(&st, 12, 0, NULL, 0), SYNOD_EINVAL);
  ck_assert_int_eq(store_snapshot_begin(&st, 12, 1, NULL, 0), 0);
  ck_assert_int_eq(store_snapshot_begin(&st, 13, 1, NULL, 0), SYNOD_EBUSY);
  ck_assert_ptr_nonnull(strstr(store_errmsg(&st), "snapshot 12 is being"));
  ck_assert_int_eq(store_snapshot_abort(&st), 0);
  ck_assert_int_eq(store_snapshot_begin(&st, 13, 1, NULL, 0), 0);
}
END_TEST

/* The records still in the write-ahead file, the image and the commit go
 * into LMDB in one transaction: one flush (LMDB writes its meta page with
 * O_DSYNC) where begin, write and commit take three. */
START_TEST(snapshot_save_is_one_transaction_with_the_checkpoint) {
  struct store_options o = {.snapshot_chunk_bytes = 1000};
  uint64_t si;
  uint64_t stm;
  reopen(&o);
  ck_assert_int_eq(append_range(1, 100, 2), 0);
  ck_assert_uint_gt(st.wal_off, 0);
  int before = atomic_load(&syncs);
  int rv = snapshot_save(60, 2, 5000, 10);
  ck_assert_msg(rv == 0, "%s", store_errmsg(&st));
  ck_assert_int_eq(atomic_load(&syncs) - before, 1);
  ck_assert_uint_eq(st.wal_off, 0);
  store_snapshot_last(&st, &si, &stm);
  ck_assert_uint_eq(si, 60);
  ck_assert_uint_eq(stm, 2);
  ck_assert_uint_eq(store_log_first_index(&st), 51);
  ck_assert_uint_eq(store_log_last_index(&st), 100);
  snapshot_check(60, 5000);
  check_range(51, 100, 2);
  ck_assert_int_eq(store_snapshot_begin(&st, 61, 2, NULL, 0), 0); /* none */
  ck_assert_int_eq(store_snapshot_abort(&st), 0);
  reopen(&o);
  snapshot_check(60, 5000);
  check_range(51, 100, 2);
  ck_assert_int_eq(store_verify(&st), 0);
}
END_TEST

/* Each checkpoint is counted once in checkpoint_durations; one with
 * nothing waiting in the file is no checkpoint. */
START_TEST(checkpoint_durations_count_each_checkpoint) {
  uint64_t before = st.checkpoint_durations.count;
  ck_assert_int_eq(store_wal_checkpoint(&st), 0);
  ck_assert_uint_eq(st.checkpoint_durations.count, before);
  ck_assert_int_eq(append_range(1, 10, 1), 0);
  ck_assert_int_eq(store_wal_checkpoint(&st), 0);
  ck_assert_uint_eq(st.checkpoint_durations.count, before + 1);
  ck_assert_int_eq(append_range(11, 20, 1), 0);
  check_range(1, 20, 1); /* a read checkpoints first */
  ck_assert_uint_eq(st.checkpoint_durations.count, before + 2);
  ck_assert_uint_ge(st.checkpoint_durations.sum_us, 1);
}
END_TEST

/* A follower writes on its loop unless the write would checkpoint first:
 * store_wal_would_checkpoint says so exactly when the next record would
 * not fit under the file's limit, and again not once checkpointed. */
START_TEST(wal_would_checkpoint_when_the_next_record_passes_the_limit) {
  ck_assert(!store_wal_would_checkpoint(&st, 1, 300));
  uint64_t index = 1;
  uint64_t ckpts = st.checkpoint_durations.count;
  while (!store_wal_would_checkpoint(&st, 1, 300)) {
    ck_assert_int_eq(append_range(index, index, 1), 0); /* one record */
    index++;
    ck_assert_uint_eq(st.checkpoint_durations.count, ckpts); /* none yet */
  }
  ck_assert_uint_gt(index, 100); /* 4 KiB records, a limit of 1-2 MiB */
  ck_assert_int_eq(append_range(index, index, 1), 0);
  ck_assert_uint_eq(st.checkpoint_durations.count, ckpts + 1);
  ck_assert(!store_wal_would_checkpoint(&st, 1, 300));
  ck_assert(store_wal_would_checkpoint(&st, 1, (size_t)64 << 20)); /* too big */
}
END_TEST

/* The records waiting in the file skip copying the entries that the
 * snapshot's compaction deletes: the log that remains is the same as after
 * begin, write and commit, whatever part of it LMDB held before. */
/* store_log_read_at: what LMDB holds, without a checkpoint; the writes
 * still in the write-ahead file are not there yet (EUNAVAILABLE), and
 * store_log_readable_last says how far it can read. */
START_TEST(log_read_at_sees_only_checkpointed_entries) {
  char why[SYNOD_ERRMSG_MAX];
  struct store_entry *v = (void *)1;
  size_t n = 7;
  ck_assert_int_eq(append_range(1, 20, 1), 0);
  ck_assert_uint_eq(store_log_readable_last(&st), 0);
  ck_assert_int_eq(store_log_read_at(&st, 1, 5, &v, &n, why),
                   SYNOD_EUNAVAILABLE);
  ck_assert_ptr_null(v);
  ck_assert_uint_eq(n, 0);
  ck_assert_msg(strstr(why, "store: read 1..5") != NULL, "%s", why);
  ck_assert_int_eq(store_wal_checkpoint(&st), 0);
  ck_assert_uint_eq(store_log_readable_last(&st), 20);
  ck_assert_int_eq(append_range(21, 30, 1), 0);
  ck_assert_uint_eq(store_log_readable_last(&st), 20);
  int rv = store_log_read_at(&st, 3, 12, &v, &n, why);
  ck_assert_msg(rv == 0, "%s", why);
  ck_assert_uint_eq(n, 10);
  for (size_t i = 0; i < n; i++) {
    check_entry(&v[i], 3 + i, 1);
  }
  store_entries_free(v);
  ck_assert_int_eq(store_log_read_at(&st, 18, 22, &v, &n, why),
                   SYNOD_EUNAVAILABLE);
  ck_assert_int_eq(store_log_read_at(&st, 5, 4, &v, &n, why), SYNOD_EINVAL);
  snapshot_make(10, 1, 100, 0); /* compacts 1..10 */
  ck_assert_int_eq(store_log_read_at(&st, 9, 12, &v, &n, why),
                   SYNOD_ECOMPACTED);
  ck_assert_msg(strstr(why, "compacted") != NULL, "%s", why);
  rv = store_log_read_at(&st, 11, 30, &v, &n, why);
  ck_assert_msg(rv == 0, "%s", why);
  ck_assert_uint_eq(n, 20);
  store_entries_free(v);
}
END_TEST

/* ---- Pages of LMDB's map a read touched are not kept resident: a
 * compaction, a read of old entries or of a snapshot maps megabytes of
 * the page cache into the process (a fault maps a whole folio), which
 * would count in the replica's memory for nothing (store.c, "map
 * pages"). */

/* KiB of this store's data.mdb mapping resident in this process. */
static long map_rss_kib(void) {
  char want[4200], line[4400];
  snprintf(want, sizeof want, "%s/data.mdb", dir);
  FILE *f = fopen("/proc/self/smaps", "r");
  ck_assert_ptr_nonnull(f);
  long kib = -1;
  bool in = false;
  while (fgets(line, sizeof line, f) != NULL) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
      line[strcspn(line, "\n")] = '\0';
      size_t n = strlen(line), w = strlen(want);
      in = n >= w && strcmp(line + n - w, want) == 0;
    } else if (in && strncmp(line, "Rss:", 4) == 0) {
      kib = (kib < 0 ? 0 : kib) + atol(line + 4);
    }
  }
  fclose(f);
  ck_assert_msg(kib >= 0, "no mapping of %s", want);
  return kib;
}

START_TEST(map_pages_read_are_not_kept_resident) {
  enum { ENTRIES = 1200, ENTRY_BYTES = 5000, BATCH = 100 };
  const long bound_kib = 1024; /* the data read is 6 MB */
  uint8_t *data = malloc(ENTRY_BYTES);
  struct store_entry *v = calloc(BATCH, sizeof *v);
  for (uint64_t lo = 1; lo <= ENTRIES; lo += BATCH) {
    for (int i = 0; i < BATCH; i++) {
      memset(data, (int)(lo + (uint64_t)i), ENTRY_BYTES);
      v[i] = (struct store_entry){lo + (uint64_t)i, 1, 0, data, ENTRY_BYTES};
    }
    ck_assert_int_eq(store_log_append(&st, v, BATCH), 0);
  }
  ck_assert_int_eq(store_wal_checkpoint(&st), 0);
  ck_assert_int_le(map_rss_kib(), bound_kib);

  char why[SYNOD_ERRMSG_MAX];
  struct store_entry *got;
  size_t n;
  int rv = store_log_read_at(&st, 1, ENTRIES, &got, &n, why);
  ck_assert_msg(rv == 0, "%s", why);
  ck_assert_uint_eq(n, ENTRIES);
  ck_assert_uint_eq(got[ENTRIES - 1].data[ENTRY_BYTES - 1], (uint8_t)ENTRIES);
  store_entries_free(got);
  long kib = map_rss_kib();
  ck_assert_msg(kib <= bound_kib,
                "%ld KiB of the map resident after reading back the log", kib);

  /* A snapshot compacts every entry: its delete reads each one's first
   * overflow page. Then the image is read back, as for a follower. */
  size_t img_bytes = (size_t)6 << 20;
  uint8_t conf[8];
  uint8_t *img = image_new(ENTRIES, img_bytes, conf);
  rv = store_snapshot_save(&st, ENTRIES, 1, conf, sizeof conf, img, img_bytes,
                           0);
  ck_assert_msg(rv == 0, "%s", store_errmsg(&st));
  free(img);
  kib = map_rss_kib();
  ck_assert_msg(kib <= bound_kib,
                "%ld KiB of the map resident after a compacting snapshot", kib);
  uint8_t *buf = malloc(img_bytes);
  rv = store_snapshot_read_at(&st, ENTRIES, 0, buf, img_bytes, why);
  ck_assert_msg(rv == 0, "%s", why);
  ck_assert_uint_eq(buf[img_bytes - 1], image_byte(ENTRIES, img_bytes - 1));
  kib = map_rss_kib();
  ck_assert_msg(kib <= bound_kib,
                "%ld KiB of the map resident after reading the image", kib);
  free(buf);
  free(v);
  free(data);
}
END_TEST

/* One thread writes (appends, checkpoints, grows the map) while another
 * reads back what the writer said LMDB holds: every read finds the
 * entries it asked for, byte for byte. */
struct read_at_race {
  atomic_uint_least64_t readable;
  atomic_bool done;
  int rv;
};

static void *read_at_writer(void *arg) {
  struct read_at_race *r = arg;
  for (uint64_t lo = 1; lo <= 4000 && r->rv == 0; lo += 20) {
    r->rv = append_range(lo, lo + 19, 1);
    if (r->rv == 0 && lo % 200 == 1) {
      r->rv = store_wal_checkpoint(&st);
    }
    atomic_store(&r->readable, store_log_readable_last(&st));
  }
  atomic_store(&r->done, true);
  return NULL;
}

START_TEST(log_read_at_while_another_thread_writes) {
  struct store_options o = {.map_size_bytes = 64 << 10, .wal_bytes = 64 << 10};
  reopen(&o);
  struct read_at_race r = {0};
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, read_at_writer, &r), 0);
  char why[SYNOD_ERRMSG_MAX];
  for (bool done = false; !done;) {
    done = atomic_load(&r.done); /* one more read after the last write */
    uint64_t last = atomic_load(&r.readable);
    if (last == 0) {
      continue;
    }
    uint64_t lo = last > 50 ? last - 50 : 1;
    struct store_entry *v;
    size_t n;
    int rv = store_log_read_at(&st, lo, last, &v, &n, why);
    ck_assert_msg(rv == 0, "read %llu..%llu: %s", (unsigned long long)lo,
                  (unsigned long long)last, why);
    ck_assert_uint_eq(n, last - lo + 1);
    for (size_t i = 0; i < n; i++) {
      check_entry(&v[i], lo + i, 1);
    }
    store_entries_free(v);
  }
  pthread_join(t, NULL);
  ck_assert_int_eq(r.rv, 0);
  ck_assert_uint_gt(store_map_size_bytes(&st), 64 << 10); /* it grew */
}
END_TEST

START_TEST(snapshot_save_compacts_like_commit_whatever_the_file_holds) {
  struct {
    uint64_t index, term, trailing, first, last, last_term;
  } cases[] = {
      {60, 2, 10, 51, 100, 2},  /* keeps the trailing entries */
      {60, 2, 0, 61, 100, 2},   /* keeps none */
      {60, 2, 1000, 1, 100, 2}, /* more than there is: keeps all */
      {60, 3, 5, 61, 60, 3},    /* other term: the whole log goes */
      {150, 3, 5, 151, 150, 3}, /* past the last entry: same */
      {100, 2, 30, 71, 100, 2}, /* at the last entry */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    for (int checkpointed = 0; checkpointed <= 40; checkpointed += 40) {
      teardown();
      setup();
      ck_assert_int_eq(append_range(1, checkpointed ? checkpointed : 1, 2), 0);
      if (checkpointed) {
        ck_assert_int_eq(store_wal_checkpoint(&st), 0); /* 1..40 in LMDB */
      }
      ck_assert_int_eq(
          append_range(checkpointed ? checkpointed + 1 : 2, 100, 2), 0);
      int rv =
          snapshot_save(cases[i].index, cases[i].term, 700, cases[i].trailing);
      ck_assert_msg(rv == 0, "case %zu: %s", i, store_errmsg(&st));
      ck_assert_uint_eq(store_log_first_index(&st), cases[i].first);
      ck_assert_uint_eq(store_log_last_index(&st), cases[i].last);
      ck_assert_uint_eq(store_log_last_term(&st), cases[i].last_term);
      rv = store_verify(&st);
      ck_assert_msg(rv == 0, "case %zu, %d in LMDB: %s", i, checkpointed,
                    store_errmsg(&st));
      if (cases[i].last >= cases[i].first) {
        check_range(cases[i].first, cases[i].last, 2);
      }
      reopen(NULL);
      snapshot_check(cases[i].index, 700);
      ck_assert_uint_eq(store_log_first_index(&st), cases[i].first);
      ck_assert_int_eq(store_verify(&st), 0);
    }
  }
}
END_TEST

/* A save that fails writes nothing, leaves nothing pending, and loses
 * none of the records that were waiting for a checkpoint. */
START_TEST(snapshot_save_failure_changes_nothing) {
  uint64_t si;
  uint64_t stm;
  ck_assert_int_eq(append_range(1, 30, 1), 0);
  ck_assert_int_eq(snapshot_save(10, 1, 300, 0), 0);
  ck_assert_int_eq(append_range(31, 40, 1), 0);
  ck_assert_int_eq(snapshot_save(10, 1, 300, 0), SYNOD_EINVAL);
  ck_assert_int_eq(store_snapshot_save(&st, 20, 1, NULL, 0, NULL, 5, 0),
                   SYNOD_EINVAL);
  atomic_store(&fault_sync_errno, EIO);
  ck_assert_int_eq(snapshot_save(20, 1, 3000, 0), SYNOD_EIO);
  atomic_store(&fault_sync_errno, 0);
  ck_assert_ptr_nonnull(strstr(store_errmsg(&st), "snapshot 20 save"));
  ck_assert_uint_gt(st.wal_off, 0); /* records 31..40 still wait */
  store_snapshot_last(&st, &si, &stm);
  ck_assert_uint_eq(si, 10);
  ck_assert_uint_eq(store_log_first_index(&st), 11);
  snapshot_check(10, 300);
  check_range(11, 40, 1);
  reopen(NULL);
  check_range(11, 40, 1);
  ck_assert_int_eq(snapshot_save(20, 1, 3000, 5), 0);
  ck_assert_uint_eq(store_log_first_index(&st), 16);
  snapshot_check(20, 3000);
  ck_assert_int_eq(store_verify(&st), 0);
}
END_TEST

/* A write that goes straight to LMDB (a truncation) takes the records
 * waiting in the file with it: one transaction, one flush; when it fails,
 * neither happened. */
START_TEST(direct_write_carries_the_checkpoint_in_its_transaction) {
  ck_assert_int_eq(append_range(1, 20, 1), 0);
  ck_assert_uint_gt(st.wal_off, 0);
  atomic_store(&fault_sync_errno, EIO);
  ck_assert_int_eq(store_log_truncate(&st, 15), SYNOD_EIO);
  atomic_store(&fault_sync_errno, 0);
  ck_assert_uint_gt(st.wal_off, 0);
  ck_assert_uint_eq(store_log_last_index(&st), 20);
  check_range(1, 20, 1);
  int before = atomic_load(&syncs);
  ck_assert_int_eq(store_log_truncate(&st, 15), 0);
  ck_assert_int_eq(atomic_load(&syncs) - before, 1);
  ck_assert_uint_eq(st.wal_off, 0);
  ck_assert_uint_eq(store_log_last_index(&st), 14);
  ck_assert_int_eq(append_range(15, 16, 2), 0);
  reopen(NULL);
  check_range(1, 14, 1);
  check_range(15, 16, 2);
  ck_assert_int_eq(store_verify(&st), 0);
}
END_TEST

START_TEST(snapshot_write_and_commit_without_begin_return_einval) {
  uint8_t b[4] = {0};
  ck_assert_int_eq(store_snapshot_write(&st, b, 4), SYNOD_EINVAL);
  ck_assert_int_eq(store_snapshot_commit(&st, 0), SYNOD_EINVAL);
  ck_assert_ptr_nonnull(strstr(store_errmsg(&st), "no snapshot begun"));
}
END_TEST

START_TEST(snapshot_reader_without_snapshot_returns_enotfound) {
  struct store_snapshot_reader *r = (void *)1;
  ck_assert_int_eq(store_snapshot_reader_new(&st, &r), SYNOD_ENOTFOUND);
  ck_assert_ptr_null(r);
  ck_assert_int_eq(atomic_load(&st.readers_open), 0);
}
END_TEST

START_TEST(snapshot_of_empty_image_reads_as_empty) {
  struct store_snapshot_reader *r;
  uint8_t buf[16];
  size_t len = 99;
  ck_assert_int_eq(append_range(1, 5, 1), 0);
  ck_assert_int_eq(store_snapshot_begin(&st, 5, 1, NULL, 0), 0);
  ck_assert_int_eq(store_snapshot_commit(&st, 0), 0);
  ck_assert_int_eq(store_snapshot_reader_new(&st, &r), 0);
  ck_assert_int_eq(store_snapshot_reader_read(r, buf, sizeof buf, &len), 0);
  ck_assert_uint_eq(len, 0);
  store_snapshot_reader_free(r);
}
END_TEST

START_TEST(snapshot_corrupt_chunk_returns_ecorrupt) {
  struct store_options o = {.snapshot_chunk_bytes = 100};
  struct store_snapshot_reader *r;
  uint8_t key[17] = {1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1};
  reopen(&o);
  ck_assert_int_eq(append_range(1, 5, 1), 0);
  snapshot_make(5, 1, 250, 0); /* generation 1, chunks 0..3 */
  store_close(&st);
  raw_edit("snap", key, sizeof key, RAW_FLIP_LAST_BYTE);
  ck_assert_int_eq(store_open(&st, dir, &o), 0);
  ck_assert_int_eq(store_snapshot_reader_new(&st, &r), 0);
  ck_assert_int_eq(reader_check(r, 5, 64), SYNOD_ECORRUPT);
  ck_assert_ptr_nonnull(
      strstr(store_snapshot_reader_errmsg(r), "chunk 1 of 4"));
  store_snapshot_reader_free(r);
  ck_assert_int_eq(store_verify(&st), SYNOD_ECORRUPT);
}
END_TEST

struct reader_thread {
  struct store_snapshot_reader *r;
  uint64_t index;
  int rv;
};

static void *reader_thread_main(void *arg) {
  struct reader_thread *t = arg;
  t->rv = reader_check(t->r, t->index, 777);
  store_snapshot_reader_free(t->r);
  return NULL;
}

START_TEST(
    snapshot_reader_on_another_thread_sees_one_image_while_writes_go_on) {
  struct reader_thread t = {.index = 100};
  pthread_t th;
  ck_assert_int_eq(append_range(1, 100, 1), 0);
  snapshot_make(100, 1, 300000, 0);
  ck_assert_int_eq(store_snapshot_reader_new(&st, &t.r), 0);
  ck_assert_int_eq(pthread_create(&th, NULL, reader_thread_main, &t), 0);
  for (uint64_t i = 0; i < 5; i++) {
    ck_assert_int_eq(append_range(101 + i * 100, 200 + i * 100, 1), 0);
    snapshot_make(200 + i * 100, 1, 50000, 0);
  }
  ck_assert_int_eq(pthread_join(th, NULL), 0);
  ck_assert_int_eq(t.rv, 0);
  ck_assert_int_eq(atomic_load(&st.readers_open), 0);
  snapshot_check(600, 50000);
}
END_TEST

/* ================= map growth, full map, disk faults ================= */

/* A small write-ahead file makes checkpoints, which fill the map, come
 * often. */
START_TEST(map_grows_when_full_and_keeps_data) {
  struct store_options o = {.map_size_bytes = 64 << 10, .wal_bytes = 16 << 10};
  reopen(&o);
  size_t initial = store_map_size_bytes(&st);
  /* Until two more batches after the map first grew (each growth remaps,
   * which is slow under valgrind: 55 s for all 40 batches). */
  uint64_t n = 40;
  for (uint64_t i = 0; i < n; i++) {
    int rv = append_range(i * 100 + 1, i * 100 + 100, 1);
    ck_assert_msg(rv == 0, "%s", store_errmsg(&st));
    if (n == 40 && store_map_size_bytes(&st) > initial) {
      n = i + 3;
    }
  }
  ck_assert_uint_gt(store_map_size_bytes(&st), initial);
  check_range(1, n * 100, 1);
  reopen(&o); /* the file keeps its bigger map */
  ck_assert_uint_gt(store_map_size_bytes(&st), initial);
  check_range(1, n * 100, 1);
}
END_TEST

/* The map reaches its maximum in a checkpoint: the write that needed the
 * room fails, reads (which checkpoint first) fail too, and nothing that
 * was acknowledged is lost: it is all there once the map may grow. */
START_TEST(map_full_at_maximum_returns_enospace_and_loses_nothing) {
  struct store_options o = {.map_size_bytes = 64 << 10,
                            .map_size_max_bytes = 256 << 10,
                            .wal_bytes = 16 << 10};
  struct store_options bigger = {.map_size_max_bytes = 4 << 20,
                                 .wal_bytes = 16 << 10};
  struct store_hard_state hs = {.term = 1, .commit = 1};
  struct store_hard_state back;
  uint64_t last = 0;
  int rv = 0;
  reopen(&o);
  ck_assert_int_eq(append_range(1, 1, 1), 0);
  ck_assert_int_eq(store_hard_state_save(&st, &hs), 0);
  last = 1;
  for (int i = 0; i < 1000 && rv == 0; i++) {
    rv = append_range(last + 1, last + 20, 1);
    if (rv == 0) {
      last += 20;
    }
  }
  ck_assert_int_eq(rv, SYNOD_ENOSPACE);
  ck_assert_ptr_nonnull(strstr(store_errmsg(&st), "MDB_MAP_FULL"));
  ck_assert_ptr_nonnull(strstr(store_errmsg(&st), "the maximum"));
  ck_assert_uint_eq(store_map_size_bytes(&st), 256 << 10);
  ck_assert_uint_eq(store_log_last_index(&st), last);
  ck_assert_int_eq(store_hard_state_load(&st, &back), SYNOD_ENOSPACE);
  reopen(&bigger);
  ck_assert_uint_eq(store_log_last_index(&st), last);
  check_range(1, last, 1);
  ck_assert_int_eq(store_verify(&st), 0);
  ck_assert_int_eq(store_hard_state_load(&st, &back), 0);
  ck_assert_uint_eq(back.commit, 1);
}
END_TEST

START_TEST(map_cannot_grow_while_a_reader_is_open) {
  struct store_options o = {.map_size_bytes = 64 << 10, .wal_bytes = 16 << 10};
  struct store_snapshot_reader *r;
  uint64_t last = 1;
  int rv = 0;
  reopen(&o);
  ck_assert_int_eq(append_range(1, 1, 1), 0);
  snapshot_make(1, 1, 100, 0);
  ck_assert_int_eq(store_snapshot_reader_new(&st, &r), 0);
  for (int i = 0; i < 1000 && rv == 0; i++) {
    rv = append_range(last + 1, last + 20, 1);
    last += rv == 0 ? 20 : 0;
  }
  ck_assert_int_eq(rv, SYNOD_EBUSY);
  ck_assert_ptr_nonnull(strstr(store_errmsg(&st), "snapshot readers"));
  ck_assert_int_eq(reader_check(r, 1, 50), 0);
  store_snapshot_reader_free(r);
  ck_assert_int_eq(append_range(last + 1, last + 20, 1), 0);
  check_range(2, last + 20, 1);
}
END_TEST

START_TEST(disk_full_on_write_returns_enospace_and_store_recovers) {
  ck_assert_int_eq(append_range(1, 10, 1), 0);
  atomic_store(&fault_write_errno, ENOSPC);
  ck_assert_int_eq(append_range(11, 20, 1), SYNOD_ENOSPACE);
  atomic_store(&fault_write_errno, 0);
  ck_assert_ptr_nonnull(strstr(store_errmsg(&st), "No space left"));
  ck_assert_uint_eq(store_log_last_index(&st), 10);
  check_range(1, 10, 1);
  ck_assert_int_eq(append_range(11, 20, 1), 0);
  reopen(NULL);
  check_range(1, 20, 1);
  ck_assert_int_eq(store_verify(&st), 0);
}
END_TEST

START_TEST(sync_failure_returns_eio_and_store_recovers) {
  struct store_hard_state hs = {.term = 2};
  ck_assert_int_eq(append_range(1, 10, 1), 0);
  atomic_store(&fault_sync_errno, EIO);
  ck_assert_int_eq(append_range(11, 20, 1), SYNOD_EIO);
  ck_assert_int_eq(store_hard_state_save(&st, &hs), SYNOD_EIO);
  atomic_store(&fault_sync_errno, 0);
  ck_assert_uint_eq(store_log_last_index(&st), 10);
  ck_assert_int_eq(append_range(11, 20, 1), 0);
  reopen(NULL);
  check_range(1, 20, 1);
  struct store_hard_state back;
  ck_assert_int_eq(store_hard_state_load(&st, &back), 0);
  ck_assert_uint_eq(back.term, 0);
}
END_TEST

/* ================= the write-ahead file ================= */

/* What a child reports at its end. */
struct child_end {
  size_t wal_off;
  uint64_t last_index;
  uint8_t incarnation[STORE_INCARNATION_BYTES];
};

/* Runs body in a child that opens the store with opts, then exits without
 * closing it (as a SIGKILL would: nothing is checkpointed), and returns
 * what it reports at its end. The parent's store is closed meanwhile. */
static struct child_end die_in_child(void (*body)(void),
                                     const struct store_options *opts) {
  int fds[2];
  struct child_end end = {0};
  int status;
  store_close(&st);
  ck_assert_int_eq(pipe(fds), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    if (store_open(&st, dir, opts) != 0) {
      _exit(2);
    }
    body();
    end.wal_off = st.wal_off;
    end.last_index = store_log_last_index(&st);
    memcpy(end.incarnation, st.incarnation, sizeof end.incarnation);
    ssize_t n = write(fds[1], &end, sizeof end);
    _exit(n == (ssize_t)sizeof end ? 0 : 3);
  }
  close(fds[1]);
  ck_assert_int_eq(read(fds[0], &end, sizeof end), (ssize_t)sizeof end);
  close(fds[0]);
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "child status %d", status);
  return end;
}

/* die_in_child(), then reopens with opts; returns the child's offset. */
static size_t die_after(void (*body)(void), const struct store_options *opts) {
  size_t off = die_in_child(body, opts).wal_off;
  ck_assert_msg(store_open(&st, dir, opts) == 0, "%s", store_errmsg(&st));
  return off;
}

static void write_log_hard_state_and_config(void) {
  struct store_hard_state hs = {.term = 3, .vote = 7, .commit = 15};
  const uint8_t cfg[] = {1, 2, 3, 4};
  for (uint64_t i = 0; i < 20; i++) {
    if (append_range(i * 10 + 1, i * 10 + 10, 3) != 0) {
      _exit(4);
    }
  }
  if (store_hard_state_save(&st, &hs) != 0 ||
      store_config_save(&st, 12, cfg, sizeof cfg) != 0) {
    _exit(5);
  }
}

static void check_log_hard_state_and_config(void) {
  struct store_hard_state hs;
  uint64_t ci;
  uint8_t *cd;
  size_t cl;
  ck_assert_uint_eq(store_log_last_index(&st), 200);
  ck_assert_uint_eq(store_log_last_term(&st), 3);
  check_range(1, 200, 3);
  ck_assert_int_eq(store_hard_state_load(&st, &hs), 0);
  ck_assert_uint_eq(hs.term, 3);
  ck_assert_uint_eq(hs.vote, 7);
  ck_assert_uint_eq(hs.commit, 15);
  ck_assert_int_eq(store_config_load(&st, &ci, &cd, &cl), 0);
  ck_assert_uint_eq(ci, 12);
  ck_assert_uint_eq(cl, 4);
  ck_assert_uint_eq(cd[3], 4);
  free(cd);
  ck_assert_int_eq(store_verify(&st), 0);
}

/* Whether the file is open with O_DIRECT, as the store believes. */
static bool wal_fd_direct(void) {
  int flags = fcntl(st.wal_fd, F_GETFL);
  ck_assert_int_ge(flags, 0);
  ck_assert_int_eq((flags & O_DIRECT) != 0, st.wal_direct);
  return st.wal_direct;
}

START_TEST(wal_records_are_replayed_after_a_crash) {
  size_t off = die_after(write_log_hard_state_and_config, NULL);
  ck_assert_uint_gt(off, 0);        /* the writes were in the file, not LMDB */
  ck_assert_uint_eq(off % 4096, 0); /* records fill whole blocks */
  ck_assert_uint_eq(st.wal_off, 0);
  wal_fd_direct();
  check_log_hard_state_and_config();
  reopen(NULL); /* replayed once: a second open finds nothing new */
  check_log_hard_state_and_config();
}
END_TEST

/* A small file (3 records of one 4 KiB block) fills many times over: each
 * round starts at offset 0 over the records of the round before, which
 * must not be replayed again. */
START_TEST(wal_wraps_and_skips_records_of_earlier_rounds) {
  struct store_options o = {.wal_bytes = 3 * 4096};
  reopen(&o);
  size_t off = die_after(write_log_hard_state_and_config, &o);
  ck_assert_uint_gt(off, 0);
  ck_assert_uint_lt(off, 3 * 4096); /* records of the round before follow */
  check_log_hard_state_and_config();
  ck_assert_int_eq(append_range(201, 205, 4), 0);
  reopen(&o);
  check_range(201, 205, 4);
  ck_assert_uint_eq(store_log_last_index(&st), 205);
}
END_TEST

/* What persist does with several batches in flight: each written without
 * its sync, in order, while syncs run on other threads; a sync that
 * starts after a write returns makes it durable. Here a second thread
 * syncs in a loop throughout (the store must allow it), the checkpoints
 * of a small file come and go under it, and after the last write's own
 * sync the child dies: every batch must come back. */
static atomic_bool syncer_stop;
static atomic_int syncer_failures;

static void *syncer_main(void *arg) {
  (void)arg;
  char why[SYNOD_ERRMSG_MAX];
  while (!atomic_load(&syncer_stop)) {
    if (store_wal_sync(&st, why) != 0) {
      atomic_fetch_add(&syncer_failures, 1);
    }
  }
  return NULL;
}

static void write_unsynced_with_a_syncer(void) {
  pthread_t t;
  char why[SYNOD_ERRMSG_MAX];
  if (pthread_create(&t, NULL, syncer_main, NULL) != 0) {
    _exit(7);
  }
  uint8_t data[100];
  memset(data, 0xab, sizeof data);
  for (uint64_t i = 1; i <= 400; i++) {
    struct store_entry e = {i, 2, 0, data, sizeof data};
    struct store_batch b = {.entries = &e, .entries_count = 1};
    bool sync_needed = false;
    if (store_batch_write_unsynced(&st, &b, &sync_needed) != 0 ||
        !sync_needed) {
      _exit(8);
    }
  }
  atomic_store(&syncer_stop, true);
  pthread_join(t, NULL);
  if (atomic_load(&syncer_failures) != 0 || store_wal_sync(&st, why) != 0) {
    _exit(9);
  }
}

START_TEST(wal_unsynced_writes_with_syncs_on_another_thread) {
  struct store_options o = {.wal_bytes = 16 * 4096};
  reopen(&o);
  die_after(write_unsynced_with_a_syncer, &o);
  ck_assert_uint_eq(store_log_last_index(&st), 400);
  ck_assert_uint_eq(store_log_last_term(&st), 2);
  struct store_entry *es = NULL;
  size_t n = 0;
  ck_assert_int_eq(store_log_read(&st, 1, 400, SIZE_MAX, &es, &n), 0);
  ck_assert_uint_eq(n, 400);
  for (size_t i = 0; i < n; i++) {
    ck_assert_uint_eq(es[i].index, i + 1);
    ck_assert_uint_eq(es[i].len, 100);
    ck_assert_uint_eq(((const uint8_t *)es[i].data)[99], 0xab);
  }
  store_entries_free(es);
  ck_assert_int_eq(store_verify(&st), 0);
}
END_TEST

/* The point where a round of records ends in a checkpoint is drawn in
 * the file's second half (so that replicas do not all checkpoint at
 * once), and a record still fills the file when it is the first. */
START_TEST(wal_checkpoint_point_is_in_the_second_half) {
  struct store_options o = {.wal_bytes = 64 * 4096};
  reopen(&o);
  size_t first = st.wal_limit;
  bool moved = false;
  for (uint64_t i = 1; i <= 50; i++) {
    ck_assert_uint_ge(st.wal_limit, st.wal_bytes / 2);
    ck_assert_uint_le(st.wal_limit, st.wal_bytes);
    moved = moved || st.wal_limit != first;
    ck_assert_int_eq(append_range(i, i, 1), 0);
    ck_assert_uint_gt(st.wal_off, 0);
    ck_assert_int_eq(store_wal_checkpoint(&st), 0);
  }
  ck_assert_msg(moved, "50 checkpoints all drew %zu", first);
  /* A first record as big as the file still goes through it. */
  struct store_options big = {.wal_bytes = 2 * 4096};
  reopen(&big);
  uint8_t data[6000] = {0};
  struct store_entry e = {51, 1, 0, data, sizeof data};
  ck_assert_int_eq(store_log_append(&st, &e, 1), 0);
  ck_assert_uint_eq(st.wal_off, 2 * 4096);
}
END_TEST

static size_t torn_at;

static void write_then_tear_last(void) {
  char path[4096];
  if (append_range(1, 10, 1) != 0) {
    _exit(4);
  }
  torn_at = st.wal_off;
  if (append_range(11, 20, 1) != 0) {
    _exit(4);
  }
  /* Half a record reached the disk: flip a byte in its second half. */
  snprintf(path, sizeof path, "%s/wal", dir);
  int fd = open(path, O_RDWR);
  uint8_t b;
  off_t at = (off_t)(torn_at + (st.wal_off - torn_at) * 3 / 4);
  if (fd < 0 || pread(fd, &b, 1, at) != 1) {
    _exit(6);
  }
  b ^= 0x5a;
  if (pwrite(fd, &b, 1, at) != 1) {
    _exit(6);
  }
  close(fd);
}

START_TEST(wal_torn_last_record_is_dropped) {
  die_after(write_then_tear_last, NULL);
  ck_assert_uint_eq(store_log_last_index(&st), 10);
  check_range(1, 10, 1);
  ck_assert_int_eq(append_range(11, 12, 2), 0);
  reopen(NULL);
  check_range(1, 10, 1);
  check_range(11, 12, 2);
}
END_TEST

/* Records carry the store's incarnation in their checksum: a file copied
 * from another store is not replayed into this one. */
START_TEST(wal_of_another_store_is_ignored) {
  char other[4096];
  char from[4200];
  char to[4200];
  die_after(write_log_hard_state_and_config, NULL);
  store_close(&st);
  snprintf(other, sizeof other, "%s.other", dir);
  ck_assert_int_eq(store_open(&st, other, NULL), 0);
  store_close(&st);
  /* The first store's file still holds its records (a checkpoint does
   * not clear it); put it under the new store. */
  snprintf(from, sizeof from, "%s/wal", dir);
  snprintf(to, sizeof to, "%s/wal", other);
  ck_assert_int_eq(rename(from, to), 0);
  ck_assert_int_eq(store_open(&st, other, NULL), 0);
  ck_assert_uint_eq(store_log_last_index(&st), 0);
  store_close(&st);
  ck_assert_int_eq(store_open(&st, dir, NULL), 0); /* makes a fresh file */
  check_log_hard_state_and_config();
  char cmd[8300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", other);
  ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* The bytes of a record's payload before its padding (wal.c's layout). */
static size_t unpadded_payload_bytes(const uint8_t *payload) {
  const uint8_t *p = payload + 9;
  if (payload[8] & 0x01) {
    p += 24;
  }
  if (payload[8] & 0x02) {
    p += 12 + store_get_be32(p + 8);
  }
  uint32_t count = store_get_be32(p);
  p += 4;
  for (uint32_t i = 0; i < count; i++) {
    p += 21 + store_get_be32(p + 17);
  }
  return (size_t)(p - payload);
}

/* Files written before records were padded to 4 KiB blocks hold them back
 * to back; open replays them all the same. The test rewrites a padded file
 * that way, with the checksums such a file would carry. */
START_TEST(wal_of_unpadded_records_is_replayed) {
  struct child_end end = die_in_child(write_log_hard_state_and_config, NULL);
  char path[4200];
  snprintf(path, sizeof path, "%s/wal", dir);
  int fd = open(path, O_RDWR);
  ck_assert_int_ge(fd, 0);
  uint8_t *in = malloc(end.wal_off);
  uint8_t *out = calloc(1, end.wal_off);
  ck_assert_int_eq(pread(fd, in, end.wal_off, 0), (ssize_t)end.wal_off);
  size_t out_len = 0;
  int records = 0;
  for (size_t off = 0; off < end.wal_off; records++) {
    size_t padded = store_get_be32(in + off + 4);
    size_t payload = unpadded_payload_bytes(in + off + 8);
    uint8_t *rec = out + out_len;
    ck_assert_uint_lt(payload, padded);
    store_put_be32(rec + 4, (uint32_t)payload);
    memcpy(rec + 8, in + off + 8, payload);
    store_put_be32(rec, store_crc(end.incarnation, sizeof end.incarnation,
                                  rec + 4, 4 + payload));
    out_len += 8 + payload;
    off += 8 + padded;
  }
  ck_assert_int_eq(records, 22);
  ck_assert_uint_lt(out_len, end.wal_off / 2);
  ck_assert_int_eq(pwrite(fd, out, end.wal_off, 0), (ssize_t)end.wal_off);
  close(fd);
  free(in);
  free(out);
  ck_assert_msg(store_open(&st, dir, NULL) == 0, "%s", store_errmsg(&st));
  check_log_hard_state_and_config();
  ck_assert_int_eq(append_range(201, 205, 4), 0); /* padded from here on */
  reopen(NULL);
  check_range(201, 205, 4);
}
END_TEST

static void write_one_record(void) {
  if (append_range(1, 10, 1) != 0) {
    _exit(4);
  }
}

/* A file cut inside a record's zero padding (a shorter file than the
 * option: an interrupted fill, a grown option, a forger) holds that record
 * whole once the open fills the file with zeros. The open that found the
 * chain without it must leave the file so that every later open finds
 * the same chain (found by fuzz_wal: a second open replayed a record the
 * first had not, and refused it). */
START_TEST(wal_cut_record_stays_cut_after_the_fill) {
  struct child_end end = die_in_child(write_one_record, NULL);
  ck_assert_uint_eq(end.last_index, 10);
  char path[4200];
  snprintf(path, sizeof path, "%s/wal", dir);
  int fd = open(path, O_RDWR);
  ck_assert_int_ge(fd, 0);
  uint8_t *rec = malloc(end.wal_off);
  ck_assert_int_eq(pread(fd, rec, end.wal_off, 0), (ssize_t)end.wal_off);
  size_t whole = 8 + unpadded_payload_bytes(rec + 8);
  free(rec);
  ck_assert_uint_lt(whole + 16, end.wal_off); /* the cut is in the padding */
  ck_assert_int_eq(ftruncate(fd, (off_t)(whole + 16)), 0);
  close(fd);
  ck_assert_msg(store_open(&st, dir, NULL) == 0, "%s", store_errmsg(&st));
  ck_assert_uint_eq(store_log_last_index(&st), 0);
  reopen(NULL);
  ck_assert_uint_eq(store_log_last_index(&st), 0);
  ck_assert_int_eq(append_range(1, 5, 2), 0);
  reopen(NULL);
  ck_assert_uint_eq(store_log_last_index(&st), 5);
  check_range(1, 5, 2);
}
END_TEST

/* A filesystem may take the O_DIRECT flag and then refuse a direct write
 * (EINVAL): the write is retried through the page cache, and so are the
 * ones after it. */
START_TEST(wal_write_refused_direct_goes_through_the_page_cache) {
  ck_assert_int_eq(append_range(1, 10, 1), 0);
  if (!wal_fd_direct()) {
    fprintf(stderr,
            "wal_write_refused_direct_goes_through_the_page_cache: "
            "skipped, %s takes no O_DIRECT\n",
            dir);
    return;
  }
  atomic_store(&fault_write_once, true);
  atomic_store(&fault_write_errno, EINVAL);
  ck_assert_msg(append_range(11, 20, 1) == 0, "%s", store_errmsg(&st));
  ck_assert(!wal_fd_direct());
  ck_assert_int_eq(atomic_load(&fault_write_errno), 0);
  ck_assert_int_eq(append_range(21, 30, 1), 0);
  ck_assert_uint_gt(st.wal_off, 0);
  reopen(NULL);
  check_range(1, 30, 1);
}
END_TEST

static void write_truncate_and_big_entries(void) {
  uint8_t *big = calloc(1, 20000);
  struct store_entry e = {.index = 8, .term = 2, .data = big, .len = 20000};
  if (big == NULL || append_range(1, 10, 1) != 0 ||
      store_log_truncate(&st, 6) != 0 || append_range(6, 7, 2) != 0 ||
      store_log_append(&st, &e, 1) != 0 || append_range(9, 12, 2) != 0) {
    _exit(4);
  }
  free(big);
}

/* Truncations and entries bigger than the file go straight to LMDB,
 * between records that go through the file. */
START_TEST(wal_and_direct_writes_interleave) {
  struct store_options o = {.wal_bytes = 8192};
  struct store_entry *v;
  size_t n;
  reopen(&o);
  die_after(write_truncate_and_big_entries, &o);
  ck_assert_uint_eq(store_log_last_index(&st), 12);
  check_range(1, 5, 1);
  check_range(6, 7, 2);
  ck_assert_int_eq(store_log_read(&st, 8, 8, SIZE_MAX, &v, &n), 0);
  ck_assert_uint_eq(v[0].len, 20000);
  ck_assert_uint_eq(v[0].term, 2);
  store_entries_free(v);
  check_range(9, 12, 2);
  ck_assert_int_eq(store_verify(&st), 0);
}
END_TEST

/* A read error while looking for the end of the records is not their
 * end: open fails rather than writing over acknowledged records. */
START_TEST(wal_read_error_at_open_fails_the_open) {
  die_in_child(write_log_hard_state_and_config, NULL);
  atomic_store(&fault_read_from, 8192);
  atomic_store(&fault_read_errno, EIO);
  ck_assert_int_eq(store_open(&st, dir, NULL), SYNOD_EIO);
  ck_assert_ptr_nonnull(strstr(store_errmsg(&st), "wal: read at"));
  atomic_store(&fault_read_errno, 0);
  ck_assert_msg(store_open(&st, dir, NULL) == 0, "%s", store_errmsg(&st));
  check_log_hard_state_and_config();
}
END_TEST

static void fill_the_map(void) {
  uint64_t last = store_log_last_index(&st);
  int rv = 0;
  for (int i = 0; i < 2000 && rv == 0; i++) {
    rv = append_range(last + 1, last + 20, 1);
    last += rv == 0 ? 20 : 0;
  }
  if (rv != SYNOD_ENOSPACE) {
    _exit(7);
  }
}

/* Records acknowledged while the map was at its maximum (the file took
 * them; the checkpoint could not) are replayed at open all the same: the
 * map grows past its maximum for them. */
START_TEST(wal_replay_at_open_may_grow_the_map_past_its_maximum) {
  struct store_options o = {.map_size_bytes = 64 << 10,
                            .map_size_max_bytes = 256 << 10,
                            .wal_bytes = 64 << 10};
  reopen(&o);
  struct child_end end = die_in_child(fill_the_map, &o);
  ck_assert_uint_gt(end.wal_off, 0);
  ck_assert_msg(store_open(&st, dir, &o) == 0, "%s", store_errmsg(&st));
  ck_assert_uint_gt(store_map_size_bytes(&st), 256 << 10);
  ck_assert_uint_eq(store_log_last_index(&st), end.last_index);
  check_range(1, end.last_index, 1);
  ck_assert_int_eq(store_verify(&st), 0);
}
END_TEST

/* A write that goes straight to LMDB (a truncation) and is invalid is
 * refused before the checkpoint it would start with: nothing moves, and
 * the error is the batch's, not a disk's. */
START_TEST(invalid_direct_write_is_refused_before_any_checkpoint) {
  struct store_hard_state hs = {.term = 1, .commit = 5};
  ck_assert_int_eq(append_range(1, 10, 1), 0);
  ck_assert_int_eq(store_hard_state_save(&st, &hs), 0);
  size_t off = st.wal_off;
  ck_assert_uint_gt(off, 0);
  atomic_store(&fault_sync_errno, EIO); /* a checkpoint would fail */
  ck_assert_int_eq(store_log_truncate(&st, 5), SYNOD_EINVAL);
  ck_assert_ptr_nonnull(strstr(store_errmsg(&st), "commit (5)"));
  ck_assert_int_eq(store_log_truncate(&st, 12), SYNOD_EINVAL);
  atomic_store(&fault_sync_errno, 0);
  ck_assert_uint_eq(st.wal_off, off);
  ck_assert_int_eq(store_log_truncate(&st, 6), 0);
  ck_assert_uint_eq(st.wal_off, 0);
  ck_assert_uint_eq(store_log_last_index(&st), 5);
  reopen(NULL);
  check_range(1, 5, 1);
}
END_TEST

static Suite *store_suite(void) {
  Suite *s = suite_create("store");
  TCase *tc = tcase_create("store");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, open_new_store_is_empty);
  tcase_add_test(tc, open_twice_same_directory_returns_ebusy);
  tcase_add_test(tc, open_creates_missing_directory_but_not_parents);
  tcase_add_test(tc, close_accepts_zeroed_and_closed_store);
  tcase_add_test(tc, incarnation_id_is_stable_across_reopen_and_unique);
  tcase_add_test(tc, open_rejects_other_format_version_and_corrupt_meta);
  tcase_add_test(tc, open_upgrades_format_version_1);
  tcase_add_test(tc, log_append_then_read_returns_same_bytes);
  tcase_add_test(tc, log_append_of_empty_batch_changes_nothing);
  tcase_add_test(tc, log_append_rejects_gap_and_overlap);
  tcase_add_test(tc, log_append_rejects_term_going_back);
  tcase_add_test(tc, log_append_rejects_null_data_and_oversized_entry);
  tcase_add_test(tc, log_append_batch_is_all_or_nothing);
  tcase_add_test(tc, log_read_below_first_returns_ecompacted);
  tcase_add_test(tc, log_read_past_last_returns_eunavailable);
  tcase_add_test(tc, log_read_rejects_inverted_range);
  tcase_add_test(tc, log_read_stops_at_byte_cap_but_returns_at_least_one);
  tcase_add_test(tc, log_term_answers_snapshot_index_and_rejects_out_of_range);
  tcase_add_test(tc, log_truncate_drops_uncommitted_tail);
  tcase_add_test(tc, log_truncate_at_or_below_commit_returns_einval);
  tcase_add_test(tc, log_truncate_at_or_below_snapshot_returns_einval);
  tcase_add_test(tc, log_truncate_past_last_plus_one_returns_einval);
  tcase_add_test(tc, log_compact_drops_prefix_up_to_snapshot);
  tcase_add_test(tc, log_compact_past_snapshot_returns_einval);
  tcase_add_test(tc, log_survives_close_and_reopen);
  tcase_add_test(tc, log_deletes_span_many_pages_exactly);
  tcase_add_test(tc, batch_write_truncates_appends_and_saves_state_in_one_go);
  tcase_add_test(tc, batch_write_failure_changes_nothing);
  tcase_add_test(tc, hard_state_survives_reopen);
  tcase_add_test(tc, hard_state_rejects_term_going_back);
  tcase_add_test(tc, hard_state_rejects_second_vote_in_same_term);
  tcase_add_test(tc, hard_state_rejects_commit_going_back_or_past_log);
  tcase_add_test(tc, config_load_before_save_returns_enotfound);
  tcase_add_test(tc, config_survives_reopen_and_may_move_back);
  tcase_add_test(tc, corrupt_entry_checksum_returns_ecorrupt);
  tcase_add_test(tc, corrupt_entry_length_returns_ecorrupt);
  tcase_add_test(tc, missing_entry_inside_log_returns_ecorrupt);
  tcase_add_test(tc, open_reports_corrupt_last_entry_and_hard_state);
  tcase_add_test(tc, snapshot_commit_switches_and_compacts_log);
  tcase_add_test(tc, snapshot_commit_keeps_trailing_entries);
  tcase_add_test(tc, snapshot_with_other_term_discards_whole_log);
  tcase_add_test(tc, snapshot_past_last_index_discards_log);
  tcase_add_test(tc, snapshot_old_stays_readable_until_commit);
  tcase_add_test(tc, snapshot_abort_keeps_old_and_drops_chunks);
  tcase_add_test(tc, snapshot_read_at_any_range);
  tcase_add_test(tc, log_read_at_sees_only_checkpointed_entries);
  tcase_add_test(tc, log_read_at_while_another_thread_writes);
  tcase_add_test(tc, map_pages_read_are_not_kept_resident);
  tcase_add_test(tc,
                 wal_would_checkpoint_when_the_next_record_passes_the_limit);
  tcase_add_test(tc, snapshot_uncommitted_is_dropped_on_reopen);
  tcase_add_test(tc, snapshot_begin_rejects_stale_index_and_second_begin);
  tcase_add_test(tc, snapshot_save_is_one_transaction_with_the_checkpoint);
  tcase_add_test(tc,
                 snapshot_save_compacts_like_commit_whatever_the_file_holds);
  tcase_add_test(tc, snapshot_save_failure_changes_nothing);
  tcase_add_test(tc, checkpoint_durations_count_each_checkpoint);
  tcase_add_test(tc, direct_write_carries_the_checkpoint_in_its_transaction);
  tcase_add_test(tc, snapshot_write_and_commit_without_begin_return_einval);
  tcase_add_test(tc, snapshot_reader_without_snapshot_returns_enotfound);
  tcase_add_test(tc, snapshot_of_empty_image_reads_as_empty);
  tcase_add_test(tc, snapshot_corrupt_chunk_returns_ecorrupt);
  tcase_add_test(
      tc, snapshot_reader_on_another_thread_sees_one_image_while_writes_go_on);
  tcase_add_test(tc, map_grows_when_full_and_keeps_data);
  tcase_add_test(tc, map_full_at_maximum_returns_enospace_and_loses_nothing);
  tcase_add_test(tc, map_cannot_grow_while_a_reader_is_open);
  tcase_add_test(tc, disk_full_on_write_returns_enospace_and_store_recovers);
  tcase_add_test(tc, sync_failure_returns_eio_and_store_recovers);
  tcase_add_test(tc, wal_records_are_replayed_after_a_crash);
  tcase_add_test(tc, wal_wraps_and_skips_records_of_earlier_rounds);
  tcase_add_test(tc, wal_torn_last_record_is_dropped);
  tcase_add_test(tc, wal_cut_record_stays_cut_after_the_fill);
  tcase_add_test(tc, wal_unsynced_writes_with_syncs_on_another_thread);
  tcase_add_test(tc, wal_checkpoint_point_is_in_the_second_half);
  tcase_add_test(tc, wal_of_another_store_is_ignored);
  tcase_add_test(tc, wal_of_unpadded_records_is_replayed);
  tcase_add_test(tc, wal_write_refused_direct_goes_through_the_page_cache);
  tcase_add_test(tc, wal_and_direct_writes_interleave);
  tcase_add_test(tc, wal_read_error_at_open_fails_the_open);
  tcase_add_test(tc, wal_replay_at_open_may_grow_the_map_past_its_maximum);
  tcase_add_test(tc, invalid_direct_write_is_refused_before_any_checkpoint);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  log_init("test_store", LOG_WARN);
  SRunner *sr = srunner_create(store_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
