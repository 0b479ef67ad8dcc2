/* Fuzz harness: the write-ahead file's recovery scan and replay at open
 * (server/store/wal.c), on an arbitrary file in front of a real LMDB
 * store (a template holding entries 1..3, copied for each input).
 *
 * Input: a byte of flags, then the file. With bit 0 set the harness
 * makes the file's records pass their checks, as a forger (or a bug that
 * wrote a bad record with a good checksum) would: walking the records
 * from offset 0 by their length fields, it sets each one's seq to the
 * next expected and recomputes its crc with the store's incarnation; a
 * last record cut by the file's end gets the crc it would have with the
 * zeros the open fills the file with (it must stay cut).
 * Without it the bytes go to disk as they are (torn or foreign files).
 * Invariants: store_open never reads past the file's copy in memory
 * (ASan) and either refuses the store (SYNOD_ECORRUPT, or SYNOD_EINVAL
 * for a record the store's own checks refuse) or opens it, and then
 * store_verify passes, the whole log reads back, and the store closes
 * and reopens with the same log. */
#include "fuzz.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <unistd.h>

#include "log.h"
#include "store.h"
#include "store_int.h"
#include "synod.h"

#define WAL_OPT_BYTES (64 * 1024)

static char base[4096], tmpl[4200], work[4200];
static uint8_t incarnation[STORE_INCARNATION_BYTES];
static uint64_t next_seq;
static uint8_t *tmpl_mdb;
static size_t tmpl_mdb_len;

static void write_file(const char *path, const uint8_t *p, size_t n) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  FUZZ_CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    FUZZ_CHECK(w > 0, "write %s: %s", path, strerror(errno));
    p += w;
    n -= (size_t)w;
  }
  close(fd);
}

static uint8_t *read_file(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  FUZZ_CHECK(f != NULL, "open %s", path);
  fseek(f, 0, SEEK_END);
  *n = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *p = malloc(*n ? *n : 1);
  FUZZ_CHECK(fread(p, 1, *n, f) == *n, "read %s", path);
  fclose(f);
  return p;
}

static int rm_cb(const char *path, const struct stat *st, int flag,
                 struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

static void rm_base(void) {
  nftw(base, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* A store with entries 1..3 (term 1) checkpointed into LMDB. */
static void setup(void) {
  log_init("fuzz", LOG_ERROR);
  const char *parent = getenv("SYNOD_TEST_TMP");
  if (parent == NULL) {
    parent = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  }
  mkdir(parent, 0700);
  snprintf(base, sizeof base, "%s/synod-fuzz-wal-XXXXXX", parent);
  FUZZ_CHECK(mkdtemp(base) != NULL, "mkdtemp %s: %s", base, strerror(errno));
  atexit(rm_base);
  snprintf(tmpl, sizeof tmpl, "%s/template", base);
  snprintf(work, sizeof work, "%s/work", base);
  struct store_options o = {.wal_bytes = WAL_OPT_BYTES};
  struct store s;
  memset(&s, 0, sizeof s);
  FUZZ_CHECK(store_open(&s, tmpl, &o) == 0, "%s", store_errmsg(&s));
  struct store_entry es[3];
  for (int i = 0; i < 3; i++) {
    es[i] = (struct store_entry){.index = (uint64_t)i + 1,
                                 .term = 1,
                                 .data = (const uint8_t *)"abc",
                                 .len = 3};
  }
  FUZZ_CHECK(store_log_append(&s, es, 3) == 0, "%s", store_errmsg(&s));
  store_close(&s);
  memset(&s, 0, sizeof s);
  FUZZ_CHECK(store_open(&s, tmpl, &o) == 0, "%s", store_errmsg(&s));
  store_incarnation(&s, incarnation);
  next_seq = s.wal_ckpt_seq + 1;
  store_close(&s);
  char path[4300];
  snprintf(path, sizeof path, "%s/data.mdb", tmpl);
  tmpl_mdb = read_file(path, &tmpl_mdb_len);
}

/* Gives every record that fits the next seq and a good crc. */
static void forge(uint8_t *f, size_t len) {
  uint64_t seq = next_seq;
  for (size_t off = 0; len - off >= 8 + 13;) {
    uint8_t *rec = f + off;
    size_t payload = store_get_be32(rec + 4);
    if (payload < 13 || payload > WAL_OPT_BYTES - off - 8) {
      break;
    }
    store_put_be64(rec + 8, seq++);
    if (payload > len - off - 8) {
      /* Cut by the file's end: forged as it reads once the open has
       * filled the file with zeros (the end of the chain). */
      uint8_t *whole = calloc(1, 4 + payload);
      memcpy(whole, rec + 4, len - off - 4);
      store_put_be32(
          rec, store_crc(incarnation, sizeof incarnation, whole, 4 + payload));
      free(whole);
      break;
    }
    store_put_be32(
        rec, store_crc(incarnation, sizeof incarnation, rec + 4, 4 + payload));
    off += 8 + payload;
  }
}

/* Opens work/, checks it, closes it; returns the open's code and the last
 * index it found. */
static int open_check(uint64_t *last) {
  struct store_options o = {.wal_bytes = WAL_OPT_BYTES};
  struct store s;
  memset(&s, 0, sizeof s);
  int rv = store_open(&s, work, &o);
  if (rv == 0) {
    FUZZ_CHECK(store_verify(&s) == 0, "verify: %s", store_errmsg(&s));
    uint64_t first = store_log_first_index(&s);
    *last = store_log_last_index(&s);
    FUZZ_CHECK(first <= *last + 1, "first %llu, last %llu",
               (unsigned long long)first, (unsigned long long)*last);
    if (first <= *last) {
      struct store_entry *es = NULL;
      size_t n = 0;
      int r = store_log_read(&s, first, *last, SIZE_MAX, &es, &n);
      FUZZ_CHECK(r == 0, "read %llu..%llu: %s", (unsigned long long)first,
                 (unsigned long long)*last, store_errmsg(&s));
      FUZZ_CHECK(n == *last - first + 1, "read %zu entries", n);
      store_entries_free(es);
    }
  }
  store_close(&s);
  return rv;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (tmpl_mdb == NULL) {
    setup();
  }
  struct fuzz_in in = {data, size};
  uint8_t flags = fuzz_u8(&in);
  uint8_t *file = malloc(in.n ? in.n : 1);
  memcpy(file, in.p, in.n);
  if (flags & 1) {
    forge(file, in.n);
  }
  char path[4300];
  nftw(work, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  FUZZ_CHECK(mkdir(work, 0700) == 0, "mkdir %s: %s", work, strerror(errno));
  snprintf(path, sizeof path, "%s/data.mdb", work);
  write_file(path, tmpl_mdb, tmpl_mdb_len);
  snprintf(path, sizeof path, "%s/wal", work);
  write_file(path, file, in.n);
  free(file);

  uint64_t last = 0, again = 0;
  int rv = open_check(&last);
  if (rv != 0) {
    FUZZ_CHECK(rv == SYNOD_ECORRUPT || rv == SYNOD_EINVAL,
               "open refused with %d", rv);
    return 0;
  }
  FUZZ_CHECK(last >= 3, "lost entries: last %llu", (unsigned long long)last);
  if (getenv("FUZZ_VERBOSE") != NULL) {
    fprintf(stderr, "wal: opened, last index %llu\n", (unsigned long long)last);
  }
  rv = open_check(&again);
  FUZZ_CHECK(rv == 0 && again == last, "reopen: %d, last %llu then %llu", rv,
             (unsigned long long)last, (unsigned long long)again);
  return 0;
}
