/* Internals of server/store shared by its files: record encoding,
 * checksums, error mapping and the transaction runner. */
#ifndef SYNOD_STORE_INT_H
#define SYNOD_STORE_INT_H

#include <lmdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "store.h"

/* A transaction body asked for more map than there is. Never leaves the
 * store: store_txn_write() grows the map and runs the body again. */
#define STORE_MAPFULL (-1)

/* Log value: crc32 (4) | data length (4) | term (8) | type (1) | data.
 * The checksum covers the key, then everything after itself, so an entry
 * moved to another key is caught as well as a flipped bit. */
#define STORE_LOG_HEADER_BYTES 17
/* Records in meta and snap: crc32 (4) | payload; crc over key, payload. */
#define STORE_REC_HEADER_BYTES 4
/* Snapshot chunk key: STORE_CHUNK_TAG | generation (8) | sequence (8). */
#define STORE_CHUNK_TAG 0x01
#define STORE_CHUNK_KEY_BYTES 17
/* Snapshot header payload: gen, index, term, size, chunks (8 each),
 * config length (4), config. */
#define STORE_SNAP_HEAD_BYTES 44

#define STORE_KEY_FORMAT "format"
#define STORE_KEY_INCARNATION "incarnation"
#define STORE_KEY_HARD_STATE "hard_state"
#define STORE_KEY_CONFIG "config"
#define STORE_KEY_SNAP_HEAD "head"
#define STORE_KEY_WAL_SEQ "wal_seq"

static inline void store_put_be64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--) {
    p[i] = (uint8_t)v;
    v >>= 8;
  }
}

static inline uint64_t store_get_be64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) {
    v = (v << 8) | p[i];
  }
  return v;
}

static inline void store_put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static inline uint32_t store_get_be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         (uint32_t)p[3];
}

/* crc32 of key followed by data (zlib's polynomial). */
uint32_t store_crc(const void *key, size_t key_len, const void *data,
                   size_t len);

/* Sets errmsg to "<what>: <mdb_strerror(rc)>" and returns the SYNOD_E*
 * code for rc, or STORE_MAPFULL for MDB_MAP_FULL. */
int store_mdb_fail(char *errmsg, int rc, const char *what);
/* rv, or SYNOD_ENOSPACE with the message saying so when the data
 * directory's filesystem is (nearly) full. */
int store_disk_full_check(struct store *s, int rv);

/* The SYNOD_E* code for an LMDB or errno value. */
int store_code_from_mdb(int rc);

/* A transaction body: returns 0, a SYNOD_E* code with errmsg set, or
 * STORE_MAPFULL. Runs again from scratch after the map grows, so it must
 * write its results only into arg, never into the store, which the
 * caller updates after the commit. */
typedef int (*store_txn_fn)(struct store *s, MDB_txn *txn, void *arg);

/* Runs fn in a write transaction and commits (one sync). On MDB_MAP_FULL,
 * aborts, doubles the map (up to the maximum) and runs fn again. */
int store_txn_run(struct store *s, store_txn_fn fn, void *arg);

/* store_txn_run() with a checkpoint of the write-ahead file first, in the
 * same transaction, so that fn sees in LMDB everything written and one
 * commit (two flushes) covers both. Every LMDB write goes through here. */
int store_txn_write(struct store *s, store_txn_fn fn, void *arg);

/* Runs fn in a read transaction, then ends it; checkpoints first, like
 * store_txn_write(), so reads may fail as writes do. */
int store_txn_read(struct store *s, store_txn_fn fn, void *arg);

/* Checks a batch without truncation against the state v (entries continue
 * it, configuration size, hard state rules) and computes the state after
 * it into *after (which may be v). Pure. */
int store_batch_check(char *errmsg, const struct store_log_view *v,
                      const struct store_batch *b,
                      struct store_log_view *after);

/* Writes a checked batch's entries, configuration and hard state. */
int store_batch_put(struct store *s, MDB_txn *txn, const struct store_batch *b);

/* Unmaps the pages of LMDB's map that hold [p, p + len) from this
 * process (see store.c, "map pages"). p must come from a read-only
 * transaction, whose data always lies in the map (a write transaction's
 * may be its own heap pages, which this would zero), and the map must not
 * move meanwhile (the writer's thread, or under remap_lock). */
void store_map_drop(const void *p, size_t len);

/* The write-ahead file (wal.c). store_wal_open() runs after LMDB's open
 * transaction loaded the cached state and wal_ckpt_seq; it replays what
 * the file holds past the checkpoint into LMDB. */
int store_wal_open(struct store *s, const char *dir, size_t wal_bytes);
void store_wal_close(struct store *s);
/* Whether a batch can go through the file: no truncation, and it fits. */
bool store_wal_takes(const struct store *s, const struct store_batch *b);
/* Writes a checked batch as one record: one pwrite, and with `sync` one
 * fdatasync (without, store_wal_sync() must follow; see
 * store_batch_write_unsynced()). Checkpoints first when the file is full.
 * On error the store goes on as if the batch was not written (the next
 * record overwrites it), but its bytes may have reached the disk: a
 * restart before that replays it. */
int store_wal_write(struct store *s, const struct store_batch *b, bool sync);
/* Moves the records into LMDB in one transaction; the file then starts
 * over. A no-op when it holds none. */
int store_wal_checkpoint(struct store *s);
/* The same, with fn run after the records in that transaction (fn may be
 * NULL); on error neither is written. Entries below put_from are checked
 * but not copied, for an fn that deletes them anyway (a snapshot's
 * compaction). store_txn_write() is this with put_from 0. */
int store_wal_checkpoint_with(struct store *s, uint64_t put_from,
                              store_txn_fn fn, void *arg);

/* Reserves a record of len payload bytes under key; *payload points into
 * the map until the transaction ends. Fill it, then call store_rec_seal(). */
int store_rec_reserve(char *errmsg, MDB_txn *txn, MDB_dbi dbi, MDB_val *key,
                      size_t len, uint8_t **payload);

/* Writes the checksum of a record filled after store_rec_reserve(). */
void store_rec_seal(const MDB_val *key, uint8_t *payload, size_t len);

/* Reads and verifies the record under key; *payload points into the map
 * until the transaction ends. Returns 0, SYNOD_ENOTFOUND (with errmsg),
 * SYNOD_ECORRUPT, or an LMDB error. */
int store_rec_get(char *errmsg, MDB_txn *txn, MDB_dbi dbi, MDB_val *key,
                  MDB_val *payload);

/* Verifies and decodes a log value stored under index. out->data points
 * into v (the map). Returns 0 or SYNOD_ECORRUPT with errmsg set. */
int store_log_decode(char *errmsg, uint64_t index, const MDB_val *v,
                     struct store_entry *out);

/* Reads and verifies entry index, which must lie inside the log: a
 * missing one is SYNOD_ECORRUPT. e->data points into the map. */
int store_log_get(struct store *s, MDB_txn *txn, uint64_t index,
                  struct store_entry *e);

/* The term of entry index, given the log bounds first..last: 0 for index
 * 0, the snapshot's for its index, else SYNOD_ECOMPACTED below first,
 * SYNOD_EUNAVAILABLE past last, or the entry's (verified). */
int store_term_at(struct store *s, MDB_txn *txn, uint64_t index, uint64_t first,
                  uint64_t last, uint64_t *term);

/* Reads the saved hard state ({0, 0, 0} if none) in txn. */
int store_hard_state_get(struct store *s, MDB_txn *txn,
                         struct store_hard_state *hs);

/* Deletes every key of dbi from *from (inclusive; NULL: the first key)
 * while keep_going(key, arg) says so. */
int store_del_range(char *errmsg, MDB_txn *txn, MDB_dbi dbi, MDB_val *from,
                    int (*keep_going)(const MDB_val *key, const void *arg),
                    const void *arg);

/* The snapshot header and the loading of it, shared with the store's open
 * and verify. head->config points into the map. */
int store_snap_head_get(char *errmsg, MDB_txn *txn, MDB_dbi dbi, uint64_t *gen,
                        struct store_snapshot_meta *head,
                        uint64_t *chunks_count);

/* Deletes the chunks of every generation but keep_gen. */
int store_snap_chunks_clean(char *errmsg, MDB_txn *txn, MDB_dbi dbi,
                            uint64_t keep_gen);

/* Verifies every chunk of the current snapshot in txn. */
int store_snap_verify(struct store *s, MDB_txn *txn);

#endif
