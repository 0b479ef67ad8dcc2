/* The write-ahead file in front of LMDB. A log write (entries, hard state,
 * configuration; no truncation) costs one pwrite and one fdatasync of a
 * preallocated file, which on this kind of disk is one device flush; an
 * LMDB commit flushes twice (its pages, then its meta page) and writes
 * several pages. LMDB receives the same writes later, many records in one
 * transaction (a checkpoint), when the file is full or before anything
 * else touches LMDB.
 *
 * Layout: records back to back from offset 0, each
 *   crc32 (4) | payload length (4) | payload
 *   payload: seq (8) | flags (1)
 *            | [term (8) | vote (8) | commit (8)]          flag 1
 *            | [config index (8) | length (4) | bytes]     flag 2
 *            | entry count (4)
 *            | entries: index (8) | term (8) | type (1) | length (4) | bytes
 *            | zeros up to the next multiple of WAL_ALIGN
 * Each record fills whole 4 KiB blocks, so the file is written with
 * O_DIRECT from a block-aligned copy of it in memory: no page cache to
 * fill and write back, which saves ~20 µs of CPU and of latency per write
 * here. A record never shares a block with the one before it, so a torn
 * write cannot damage an acknowledged record. (Files written before the
 * padding have records back to back; the reader takes both, and open
 * replays them before writing anything.)
 * The crc covers the store's incarnation id, the length and the payload,
 * so a torn record, or a file from another store, fails it. seq numbers
 * the records; LMDB's meta keeps the last one checkpointed (`wal_seq`),
 * in the checkpoint's own transaction. After a checkpoint, writing starts
 * again at offset 0 with the next seq: reading from 0 stops at the first
 * record that is torn or whose seq is not the next one (left from an
 * earlier round), so the file never needs clearing.
 *
 * The file is filled with zeros when created, so later writes overwrite
 * allocated blocks and fdatasync has no metadata to commit. Where the
 * filesystem refuses O_DIRECT (tmpfs), writes go through the page cache,
 * same format. */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "synod.h"

#define WAL_HEADER_BYTES 8
#define WAL_FLAG_HARD_STATE 0x01
#define WAL_FLAG_CONFIG 0x02
#define WAL_ENTRY_HEADER_BYTES 21
#define WAL_FILL_CHUNK_BYTES ((size_t)1 << 20)
/* The block size records are padded to, and the memory alignment of the
 * copy O_DIRECT writes from; a multiple of any disk's logical block. */
#define WAL_ALIGN ((size_t)4096)

static size_t wal_align_up(size_t n) {
  return (n + WAL_ALIGN - 1) & ~(WAL_ALIGN - 1);
}

/* ------------------------------------------------------------ encoding */

static size_t wal_payload_bytes(const struct store_batch *b) {
  size_t n = 8 + 1 + 4;
  if (b->hard_state != NULL) {
    n += 24;
  }
  if (b->config != NULL) {
    n += 12 + b->config->len;
  }
  for (size_t i = 0; i < b->entries_count; i++) {
    n += WAL_ENTRY_HEADER_BYTES + b->entries[i].len;
  }
  return n;
}

/* A record's size on disk: header, payload and padding. */
static size_t wal_record_bytes(const struct store_batch *b) {
  return wal_align_up(WAL_HEADER_BYTES + wal_payload_bytes(b));
}

static uint32_t wal_crc(const struct store *s, const uint8_t *rec,
                        size_t payload_len) {
  /* rec + 4: the length, then the payload. */
  return store_crc(s->incarnation, STORE_INCARNATION_BYTES, rec + 4,
                   4 + payload_len);
}

/* Encodes b into rec[0, rec_len), padding included. */
static void wal_encode(const struct store *s, const struct store_batch *b,
                       uint64_t seq, uint8_t *rec, size_t rec_len) {
  size_t payload_len = rec_len - WAL_HEADER_BYTES;
  uint8_t *p = rec + WAL_HEADER_BYTES;
  uint8_t flags = (b->hard_state ? WAL_FLAG_HARD_STATE : 0) |
                  (b->config ? WAL_FLAG_CONFIG : 0);

  store_put_be32(rec + 4, (uint32_t)payload_len);
  store_put_be64(p, seq);
  p[8] = flags;
  p += 9;
  if (b->hard_state != NULL) {
    store_put_be64(p, b->hard_state->term);
    store_put_be64(p + 8, b->hard_state->vote);
    store_put_be64(p + 16, b->hard_state->commit);
    p += 24;
  }
  if (b->config != NULL) {
    store_put_be64(p, b->config->index);
    store_put_be32(p + 8, (uint32_t)b->config->len);
    if (b->config->len > 0) {
      memcpy(p + 12, b->config->data, b->config->len);
    }
    p += 12 + b->config->len;
  }
  store_put_be32(p, (uint32_t)b->entries_count);
  p += 4;
  for (size_t i = 0; i < b->entries_count; i++) {
    const struct store_entry *e = &b->entries[i];
    store_put_be64(p, e->index);
    store_put_be64(p + 8, e->term);
    p[16] = e->type;
    store_put_be32(p + 17, (uint32_t)e->len);
    if (e->len > 0) {
      memcpy(p + WAL_ENTRY_HEADER_BYTES, e->data, e->len);
    }
    p += WAL_ENTRY_HEADER_BYTES + e->len;
  }
  memset(p, 0, (size_t)(rec + rec_len - p));
  store_put_be32(rec, wal_crc(s, rec, payload_len));
}

/* One record decoded; pointers into the buffer it came from. */
struct wal_record {
  uint64_t seq;
  struct store_batch batch;
  struct store_hard_state hard_state;
  struct store_config config;
  struct store_entry *entries; /* owned; freed by the caller */
};

/* The length of the record at buf[off..len) if it is whole, its checksum
 * holds and its seq is `seq`; else 0 (the end of the chain). */
static size_t wal_record_at(const struct store *s, const uint8_t *buf,
                            size_t len, size_t off, uint64_t seq) {
  if (len - off < WAL_HEADER_BYTES + 13) {
    return 0;
  }
  const uint8_t *rec = buf + off;
  size_t payload_len = store_get_be32(rec + 4);
  if (payload_len < 13 || payload_len > len - off - WAL_HEADER_BYTES ||
      store_get_be32(rec) != wal_crc(s, rec, payload_len) ||
      store_get_be64(rec + WAL_HEADER_BYTES) != seq) {
    return 0;
  }
  return WAL_HEADER_BYTES + payload_len;
}

/* Decodes a record that wal_record_at() accepted. The checksum held, so a
 * field that does not fit is a bug or a forged file: SYNOD_ECORRUPT.
 * Bytes past the entries are the padding. */
static int wal_decode(char *errmsg, const uint8_t *rec, size_t rec_len,
                      struct wal_record *r) {
  const uint8_t *p = rec + WAL_HEADER_BYTES;
  const uint8_t *end = rec + rec_len;
  uint32_t count;

  memset(r, 0, sizeof *r);
  r->seq = store_get_be64(p);
  uint8_t flags = p[8];
  p += 9;
  if (flags & WAL_FLAG_HARD_STATE) {
    if (end - p < 24) {
      goto short_record;
    }
    r->hard_state.term = store_get_be64(p);
    r->hard_state.vote = store_get_be64(p + 8);
    r->hard_state.commit = store_get_be64(p + 16);
    r->batch.hard_state = &r->hard_state;
    p += 24;
  }
  if (flags & WAL_FLAG_CONFIG) {
    if (end - p < 12 || (size_t)(end - p - 12) < store_get_be32(p + 8)) {
      goto short_record;
    }
    r->config.index = store_get_be64(p);
    r->config.len = store_get_be32(p + 8);
    r->config.data = p + 12;
    r->batch.config = &r->config;
    p += 12 + r->config.len;
  }
  if (end - p < 4) {
    goto short_record;
  }
  count = store_get_be32(p);
  p += 4;
  if (count > (size_t)(end - p) / WAL_ENTRY_HEADER_BYTES) {
    goto short_record;
  }
  if (count > 0 && (r->entries = calloc(count, sizeof *r->entries)) == NULL) {
    errmsg_set(errmsg, "wal record %" PRIu64 ": out of memory", r->seq);
    return SYNOD_ENOMEM;
  }
  for (uint32_t i = 0; i < count; i++) {
    struct store_entry *e = &r->entries[i];
    if (end - p < WAL_ENTRY_HEADER_BYTES ||
        (size_t)(end - p - WAL_ENTRY_HEADER_BYTES) < store_get_be32(p + 17)) {
      free(r->entries);
      r->entries = NULL;
      goto short_record;
    }
    e->index = store_get_be64(p);
    e->term = store_get_be64(p + 8);
    e->type = p[16];
    e->len = store_get_be32(p + 17);
    e->data = e->len > 0 ? p + WAL_ENTRY_HEADER_BYTES : NULL;
    p += WAL_ENTRY_HEADER_BYTES + e->len;
  }
  r->batch.entries = r->entries;
  r->batch.entries_count = count;
  return 0;
short_record:
  errmsg_set(errmsg, "wal record %" PRIu64 ": fields overrun its %zu bytes",
             r->seq, rec_len);
  return SYNOD_ECORRUPT;
}

static uint64_t wal_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Picks where the next round of records ends in a checkpoint: anywhere in
 * the file's second half. Replicas fill their files at the same rate (the
 * same entries), so with one fixed size they would all checkpoint at
 * about the same moment, and a commit needs a majority that is not in
 * one: the store of a follower that syncs on its loop stops it for the
 * checkpoint (tens of milliseconds). Different points keep a majority
 * writing. */
static void wal_limit_pick(struct store *s) {
  /* xorshift64*, seeded once per store from its address and the clock. */
  if (s->wal_rng == 0) {
    s->wal_rng = (uint64_t)(uintptr_t)s ^ wal_now_us() ^ 0x9e3779b97f4a7c15u;
  }
  s->wal_rng ^= s->wal_rng >> 12;
  s->wal_rng ^= s->wal_rng << 25;
  s->wal_rng ^= s->wal_rng >> 27;
  uint64_t r = s->wal_rng * 0x2545f4914f6cdd1du;
  size_t half = s->wal_bytes / 2;
  s->wal_limit = half + (half > 0 ? (size_t)(r % (half + 1)) : 0);
}

/* Reads up to len bytes from offset 0 into buf; *got says how many (fewer
 * at the end of the file, with errno 0). Returns -1 with errno on error. */
static int wal_pread_all(int fd, uint8_t *buf, size_t len, size_t *got) {
  *got = 0;
  errno = 0;
  while (*got < len) {
    ssize_t n = pread(fd, buf + *got, len - *got, (off_t)*got);
    if (n < 0 && errno == EINTR) {
      errno = 0;
      continue;
    }
    if (n < 0) {
      return -1;
    }
    if (n == 0) {
      break;
    }
    *got += (size_t)n;
  }
  return 0;
}

/* -------------------------------------------------------------- replay */

struct wal_replay_ctx {
  const uint8_t *buf;
  size_t len;
  uint64_t first_seq;
  struct store_log_view base; /* LMDB's state before the records */
  struct store_log_view view; /* after them */
  uint64_t last_seq;
  uint64_t put_from; /* entries below this index are not copied */
};

static int wal_seq_put(struct store *s, MDB_txn *txn, uint64_t seq) {
  MDB_val key = {strlen(STORE_KEY_WAL_SEQ), STORE_KEY_WAL_SEQ};
  uint8_t *p = NULL;
  int rv = store_rec_reserve(s->errmsg, txn, s->dbi_meta, &key, 8, &p);
  if (rv == 0) {
    store_put_be64(p, seq);
    store_rec_seal(&key, p, 8);
  }
  return rv;
}

/* Applies every record of buf to LMDB, in order, with the checks of a
 * direct write. Writes only into the context (it may run twice). */
static int wal_replay_txn(struct store *s, MDB_txn *txn, void *arg) {
  struct wal_replay_ctx *c = arg;
  size_t off = 0;
  uint64_t seq = c->first_seq;
  int rv = 0;

  c->view = c->base;
  c->last_seq = c->first_seq - 1;
  while (rv == 0 && off < c->len) {
    size_t n = wal_record_at(s, c->buf, c->len, off, seq);
    struct wal_record r;
    if (n == 0) {
      errmsg_set(s->errmsg, "wal record %" PRIu64 " at %zu: unreadable", seq,
                 off);
      return SYNOD_ECORRUPT;
    }
    rv = wal_decode(s->errmsg, c->buf + off, n, &r);
    if (rv == 0) {
      rv = store_batch_check(s->errmsg, &c->view, &r.batch, &c->view);
    }
    if (rv == 0) {
      struct store_batch put = r.batch;
      while (put.entries_count > 0 && put.entries[0].index < c->put_from) {
        put.entries++;
        put.entries_count--;
      }
      rv = store_batch_put(s, txn, &put);
    }
    if (rv != 0 && rv != STORE_MAPFULL) {
      errmsg_wrap(s->errmsg, "wal record %" PRIu64 " at %zu", seq, off);
    }
    free(r.entries);
    c->last_seq = seq++;
    off += n;
  }
  if (rv == 0) {
    rv = wal_seq_put(s, txn, c->last_seq);
  }
  return rv;
}

struct wal_checkpoint_ctx {
  struct wal_replay_ctx replay;
  store_txn_fn fn; /* the write that follows in the same transaction */
  void *arg;
  bool fn_failed;
};

static int wal_checkpoint_txn(struct store *s, MDB_txn *txn, void *arg) {
  struct wal_checkpoint_ctx *c = arg;
  int rv = wal_replay_txn(s, txn, &c->replay);
  c->fn_failed = false;
  if (rv == 0 && c->fn != NULL) {
    rv = c->fn(s, txn, c->arg);
    c->fn_failed = rv != 0;
  }
  return rv;
}

int store_wal_checkpoint_with(struct store *s, uint64_t put_from,
                              store_txn_fn fn, void *arg) {
  struct wal_checkpoint_ctx c = {.replay = {.buf = s->wal_mem,
                                            .len = s->wal_off,
                                            .first_seq = s->wal_ckpt_seq + 1,
                                            .base = s->wal_base,
                                            .put_from = put_from},
                                 .fn = fn,
                                 .arg = arg};
  int rv;

  if (s->wal_off == 0) {
    return fn != NULL ? store_txn_run(s, fn, arg) : 0;
  }
  uint64_t t0 = wal_now_us();
  rv = store_txn_run(s, wal_checkpoint_txn, &c);
  if (rv != 0) {
    if (!c.fn_failed) {
      errmsg_wrap(s->errmsg, "wal checkpoint of %zu bytes", s->wal_off);
    }
    return rv;
  }
  uint64_t took_us = wal_now_us() - t0;
  histogram_observe(&s->checkpoint_durations, took_us);
  log_debug("store", "checkpoint of %" PRIu64 " records (%zu bytes) in %.2f ms",
            c.replay.last_seq - s->wal_ckpt_seq, s->wal_off,
            (double)took_us / 1000.0);
  /* Changes s only at open: a record moves these when it is written. */
  s->last_index = c.replay.view.last_index;
  s->last_term = c.replay.view.last_term;
  s->hard_state = c.replay.view.hard_state;
  s->wal_base = c.replay.view;
  s->wal_ckpt_seq = s->wal_seq = c.replay.last_seq;
  s->wal_off = 0;
  wal_limit_pick(s);
  return 0;
}

int store_wal_checkpoint(struct store *s) {
  return store_wal_checkpoint_with(s, 0, NULL, NULL);
}

/* --------------------------------------------------------------- write */

bool store_wal_takes(const struct store *s, const struct store_batch *b) {
  if (!s->wal_held || b->truncate_from != 0 ||
      (b->config != NULL && b->config->len > s->wal_bytes)) {
    return false;
  }
  /* wal_payload_bytes(), stopping as soon as the record cannot fit (each
   * term is below the file's size, at most 1 GiB: no overflow). */
  size_t n = WAL_HEADER_BYTES + 8 + 1 + 4 + (b->hard_state ? 24 : 0) +
             (b->config ? 12 + b->config->len : 0);
  for (size_t i = 0; i < b->entries_count && n <= s->wal_bytes; i++) {
    if (b->entries[i].len > s->wal_bytes) {
      return false;
    }
    n += WAL_ENTRY_HEADER_BYTES + b->entries[i].len;
  }
  return n <= s->wal_bytes && wal_align_up(n) <= s->wal_bytes;
}

bool store_wal_would_checkpoint(const struct store *s, size_t entries,
                                size_t bytes) {
  /* wal_record_bytes() of such a batch, with a hard state. */
  size_t len = wal_align_up(WAL_HEADER_BYTES + 8 + 1 + 4 + 24 +
                            entries * WAL_ENTRY_HEADER_BYTES + bytes);
  return !s->wal_held || s->wal_off + len > s->wal_limit;
}

static int wal_pwrite_all(int fd, const uint8_t *p, size_t len, off_t off) {
  while (len > 0) {
    ssize_t n = pwrite(fd, p, len, off);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      if (n == 0) {
        errno = EIO;
      }
      return -1;
    }
    p += n;
    len -= (size_t)n;
    off += n;
  }
  return 0;
}

/* Writes through the page cache from now on: the filesystem took the
 * O_DIRECT flag but refuses its writes (err). Returns -1 with errno if
 * the flag cannot be cleared. */
static int wal_drop_direct(struct store *s, int err) {
  int flags = fcntl(s->wal_fd, F_GETFL);
  if (flags < 0 || fcntl(s->wal_fd, F_SETFL, flags & ~O_DIRECT) != 0) {
    return -1;
  }
  log_warn("store",
           "wal: direct write refused (%s): writing through the "
           "page cache",
           strerror(err));
  s->wal_direct = false;
  return 0;
}

int store_wal_write(struct store *s, const struct store_batch *b, bool sync) {
  size_t len = wal_record_bytes(b);
  int rv;

  if (s->wal_off > 0 && s->wal_off + len > s->wal_limit &&
      (rv = store_wal_checkpoint(s)) != 0) {
    return rv;
  }
  uint8_t *rec = s->wal_mem + s->wal_off;
  wal_encode(s, b, s->wal_seq + 1, rec, len);
  rv = wal_pwrite_all(s->wal_fd, rec, len, (off_t)s->wal_off);
  if (rv != 0 && errno == EINVAL && s->wal_direct &&
      wal_drop_direct(s, errno) == 0) {
    rv = wal_pwrite_all(s->wal_fd, rec, len, (off_t)s->wal_off);
  }
  if (rv != 0) {
    rv = store_code_from_mdb(errno);
    errmsg_set(s->errmsg, "wal write of %zu bytes at %zu: %s", len, s->wal_off,
               strerror(errno));
    return rv;
  }
  if (sync && (rv = store_wal_sync(s, s->errmsg)) != 0) {
    return rv;
  }
  if (s->wal_off == 0) {
    s->wal_base.last_index = s->last_index;
    s->wal_base.last_term = s->last_term;
    s->wal_base.hard_state = s->hard_state;
  }
  s->wal_off += len;
  s->wal_seq++;
  return 0;
}

int store_wal_sync(struct store *s, char *errmsg) {
  if (fdatasync(s->wal_fd) != 0) {
    int rv = store_code_from_mdb(errno);
    errmsg_set(errmsg, "wal fdatasync: %s", strerror(errno));
    return rv;
  }
  return 0;
}

/* ---------------------------------------------------------------- open */

/* Extends the file with zeros up to wal_bytes, and syncs it. */
static int wal_fill(struct store *s, off_t from) {
  uint8_t *zeros = calloc(1, WAL_FILL_CHUNK_BYTES);
  int rv = 0;

  if (zeros == NULL) {
    errmsg_set(s->errmsg, "wal: out of memory");
    return SYNOD_ENOMEM;
  }
  for (off_t off = from; rv == 0 && (size_t)off < s->wal_bytes;) {
    size_t n = s->wal_bytes - (size_t)off;
    n = n < WAL_FILL_CHUNK_BYTES ? n : WAL_FILL_CHUNK_BYTES;
    if (wal_pwrite_all(s->wal_fd, zeros, n, off) != 0) {
      rv = -1;
    }
    off += (off_t)n;
  }
  free(zeros);
  if (rv == 0 && fsync(s->wal_fd) != 0) {
    rv = -1;
  }
  if (rv != 0) {
    rv = store_code_from_mdb(errno);
    errmsg_set(s->errmsg, "wal: fill to %zu bytes: %s", s->wal_bytes,
               strerror(errno));
  }
  return rv;
}

/* Makes the file's name durable before anything is written to it. Every
 * open does it: the open that created the file may have died before. */
static int wal_sync_dir(struct store *s, const char *dir) {
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int rv = 0;
  if (dfd < 0 || fsync(dfd) != 0) {
    rv = store_code_from_mdb(errno);
    errmsg_set(s->errmsg, "wal: fsync directory %s: %s", dir, strerror(errno));
  }
  if (dfd >= 0) {
    close(dfd);
  }
  return rv;
}

/* Replays what the file holds past the checkpoint. These records were
 * acknowledged: if LMDB's map is at its configured maximum, it may grow
 * past it for them (the store then keeps the bigger size). */
static int wal_replay_at_open(struct store *s) {
  size_t max = s->map_size_max_bytes;
  int rv;

  log_info("store", "replaying %" PRIu64 " wal records (%zu bytes)",
           s->wal_seq - s->wal_ckpt_seq, s->wal_off);
  s->map_size_max_bytes = SIZE_MAX / 4;
  rv = store_wal_checkpoint(s);
  if (s->map_size_bytes > max) {
    log_warn("store",
             "map grown to %zu bytes, past the maximum %zu, to hold "
             "acknowledged writes",
             s->map_size_bytes, max);
    max = s->map_size_bytes;
  }
  s->map_size_max_bytes = max;
  return rv;
}

/* Reads the file into wal_mem and finds the end of the chain of records
 * that follow the checkpoint. */
static int wal_scan(struct store *s) {
  size_t got = 0;
  size_t off = 0;
  uint64_t seq = s->wal_ckpt_seq + 1;

  /* A short file ends the chain at its end; a read error does not (the
   * records past it were acknowledged; writing over them would lose them). */
  if (wal_pread_all(s->wal_fd, s->wal_mem, s->wal_bytes, &got) != 0) {
    int rv = store_code_from_mdb(errno);
    errmsg_set(s->errmsg, "wal: read at %zu: %s", got, strerror(errno));
    return rv;
  }
  for (size_t n; (n = wal_record_at(s, s->wal_mem, got, off, seq)) != 0;
       seq++) {
    off += n;
  }
  s->wal_off = off;
  s->wal_seq = seq - 1;
  return 0;
}

/* (Re)allocates wal_mem for a file of wal_bytes; its contents are lost. */
static int wal_mem_alloc(struct store *s) {
  void *mem = NULL;
  free(s->wal_mem);
  s->wal_mem = NULL;
  int err = posix_memalign(&mem, WAL_ALIGN, s->wal_bytes);
  if (err != 0) {
    errmsg_set(s->errmsg, "wal: out of memory for %zu bytes", s->wal_bytes);
    return SYNOD_ENOMEM;
  }
  s->wal_mem = mem;
  return 0;
}

/* Switches the file to O_DIRECT writes where the filesystem allows it. */
static void wal_try_direct(struct store *s, const char *path) {
  int flags = fcntl(s->wal_fd, F_GETFL);
  s->wal_direct =
      flags >= 0 && fcntl(s->wal_fd, F_SETFL, flags | O_DIRECT) == 0;
  if (!s->wal_direct) {
    log_info("store",
             "wal: %s cannot be written with O_DIRECT (%s): writing "
             "through the page cache",
             path, strerror(errno));
  }
}

int store_wal_open(struct store *s, const char *dir, size_t wal_bytes) {
  char path[4096];
  struct stat st;
  int rv;

  wal_bytes = wal_bytes ? wal_bytes : STORE_WAL_BYTES_DEFAULT;
  wal_bytes = wal_bytes < STORE_WAL_BYTES_MAX ? wal_bytes : STORE_WAL_BYTES_MAX;
  size_t wanted = s->wal_bytes = wal_align_up(wal_bytes);
  if (snprintf(path, sizeof path, "%s/wal", dir) >= (int)sizeof path) {
    errmsg_set(s->errmsg, "wal: path too long");
    return SYNOD_EINVAL;
  }
  s->wal_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  s->wal_held = s->wal_fd >= 0;
  if (!s->wal_held || fstat(s->wal_fd, &st) != 0) {
    rv = store_code_from_mdb(errno);
    errmsg_set(s->errmsg, "wal: open %s: %s", path, strerror(errno));
    return rv;
  }
  if ((size_t)st.st_size > STORE_WAL_BYTES_MAX) {
    errmsg_set(s->errmsg, "wal: %s is %lld bytes, above the maximum %zu", path,
               (long long)st.st_size, STORE_WAL_BYTES_MAX);
    return SYNOD_ECORRUPT;
  }
  if ((size_t)st.st_size > s->wal_bytes) {
    /* records may lie past the option */
    s->wal_bytes = wal_align_up((size_t)st.st_size);
  }
  rv = wal_mem_alloc(s);
  if (rv == 0) {
    rv = wal_scan(s);
  }
  if (rv == 0 && (size_t)st.st_size < s->wal_bytes) {
    /* Zeros from the chain's end, not from the file's: a record cut off by
     * the end of the file would otherwise be completed by the fill's zeros
     * (its padding is zeros) and join the chain at the next open, which
     * would then find more than this one did. What lies past the end was
     * never acknowledged. */
    rv = wal_fill(s, (off_t)s->wal_off < st.st_size ? (off_t)s->wal_off
                                                    : st.st_size);
  }
  if (rv == 0) {
    rv = wal_sync_dir(s, dir);
  }
  s->wal_base.last_index = s->last_index;
  s->wal_base.last_term = s->last_term;
  s->wal_base.hard_state = s->hard_state;
  if (rv == 0 && s->wal_off > 0) {
    rv = wal_replay_at_open(s);
  }
  if (rv == 0 && wanted < s->wal_bytes) {
    /* Everything in it is in LMDB now: the file may shrink. */
    if (ftruncate(s->wal_fd, (off_t)wanted) != 0 || fsync(s->wal_fd) != 0) {
      rv = store_code_from_mdb(errno);
      errmsg_set(s->errmsg, "wal: shrink to %zu bytes: %s", wanted,
                 strerror(errno));
    }
    s->wal_bytes = wanted;
    if (rv == 0) {
      rv = wal_mem_alloc(s);
    }
  }
  if (rv == 0) {
    wal_try_direct(s, path);
    wal_limit_pick(s);
  }
  return rv;
}

void store_wal_close(struct store *s) {
  if (s->wal_held) {
    close(s->wal_fd);
    s->wal_held = false;
  }
  free(s->wal_mem);
  s->wal_mem = NULL;
}
