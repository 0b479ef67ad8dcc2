/* Storage of one replica: the Raft log, hard state, configuration and the
 * latest snapshot, in one LMDB environment per data directory, with a
 * write-ahead file in front of it for log writes (wal.c): a log write
 * costs one flush of that file, and reaches LMDB at the next checkpoint.
 * Reads and every other write checkpoint first, so they see it all. */
#ifndef SYNOD_STORE_H
#define SYNOD_STORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "histogram.h"

/* The on-disk layout this build reads and writes; kept in `meta`.
 * Version 2 added the write-ahead file; a version 1 store is upgraded when
 * opened (it has no file yet), and a build that reads only 1 refuses a 2,
 * which may hold writes in its file that such a build would not see. */
#define STORE_FORMAT_VERSION 2
#define STORE_INCARNATION_BYTES 16
/* Largest entry payload; bigger entries are refused with SYNOD_ETOOBIG. */
#define STORE_ENTRY_BYTES_MAX ((size_t)1 << 30)

/* Defaults applied when an option is 0. The map is address space, not disk:
 * LMDB only writes the pages it uses. */
#define STORE_MAP_SIZE_BYTES_DEFAULT ((size_t)64 << 20)
#define STORE_MAP_SIZE_MAX_BYTES_DEFAULT ((size_t)64 << 30)
#define STORE_SNAPSHOT_CHUNK_BYTES_DEFAULT ((size_t)1 << 20)
/* The write-ahead file (see wal.c): its size bounds the log writes that
 * wait in it for a checkpoint into LMDB. The store keeps a copy of it in
 * memory, so it costs as much memory as disk. */
#define STORE_WAL_BYTES_DEFAULT ((size_t)2 << 20)
#define STORE_WAL_BYTES_MAX ((size_t)256 << 20)

struct MDB_env;
struct store_snapshot_reader;

struct store_options {
  /* Initial LMDB map size; rounded up to the page size. A store that was
   * bigger when last closed keeps its size. */
  size_t map_size_bytes;
  /* When the map fills, it doubles, up to this size; then writes fail
   * with SYNOD_ENOSPACE. Values below map_size_bytes mean map_size_bytes. */
  size_t map_size_max_bytes;
  /* store_snapshot_write() splits its input into values of this size. */
  size_t snapshot_chunk_bytes;
  /* Size of the write-ahead file (rounded up to 4 KiB), filled with zeros
   * when created and also held in memory; a bigger existing file keeps its
   * size until its records are checkpointed. Log writes that do not fit
   * in it (or that truncate) go straight to LMDB. */
  size_t wal_bytes;
};

/* One log entry. The store treats type and data as opaque. When the caller
 * passes entries in, data is borrowed for the duration of the call only.
 * Entries returned by store_log_read() point into the same heap block as the
 * array, and live until store_entries_free(). */
struct store_entry {
  uint64_t index;
  uint64_t term;
  uint8_t type;
  const uint8_t *data; /* may be NULL when len == 0 */
  size_t len;
};

/* Raft's persistent state (Figure 2), plus the commit index. A store that
 * never saved one reads {0, 0, 0}. */
struct store_hard_state {
  uint64_t term;   /* currentTerm; never decreases */
  uint64_t vote;   /* votedFor in term; 0: none; set at most once a term */
  uint64_t commit; /* never decreases; commit <= last index */
};

/* The latest configuration as opaque bytes and the index of the log entry
 * (or snapshot) it comes from. data is borrowed for the call only. */
struct store_config {
  uint64_t index;
  const uint8_t *data;
  size_t len;
};

/* What the shell persists in one go: applied in the order truncate,
 * append, config, hard state, in ONE write transaction with ONE sync. */
struct store_batch {
  const struct store_hard_state *hard_state; /* NULL: unchanged */
  const struct store_config *config;         /* NULL: unchanged */
  uint64_t truncate_from;                    /* 0: none; else drop >= it */
  const struct store_entry *entries;         /* borrowed for the call */
  size_t entries_count;
};

/* The header of a committed snapshot. config is owned by the reader that
 * returned it and lives until store_snapshot_reader_free(). */
struct store_snapshot_meta {
  uint64_t index;
  uint64_t term;
  uint64_t size_bytes;
  const uint8_t *config;
  size_t config_len;
};

/* A snapshot being written: begun, fed chunks, not yet committed. Lives in
 * memory only; its chunks on disk are garbage until the commit. */
struct store_snapshot_pending {
  bool active;
  uint64_t gen; /* chunk key prefix; snap_gen + 1 */
  uint64_t index;
  uint64_t term;
  uint64_t size_bytes;
  uint64_t chunks_count;
  uint8_t *config; /* owned; freed at commit or abort */
  size_t config_len;
};

/* The log's end and the hard state, as of some point in the writes. */
struct store_log_view {
  uint64_t last_index;
  uint64_t last_term;
  struct store_hard_state hard_state;
};

/* One replica's store. The caller owns the memory (embed it, or zero it);
 * store_open() fills it, store_close() empties it. All functions must be
 * called from one thread at a time, except snapshot readers (see there). */
struct store {
  struct MDB_env *env;
  unsigned int dbi_log;
  unsigned int dbi_meta;
  unsigned int dbi_snap;
  int lock_fd;
  bool lock_held;

  size_t map_size_bytes;     /* map_size_bytes <= map_size_max_bytes */
  size_t map_size_max_bytes; /* or the size found on disk, if bigger */
  /* Where LMDB mapped data.mdb, as found in /proc/self/maps for a map of
   * map_addr_bytes (found again when the map grew); NULL: not found. */
  void *map_addr;
  size_t map_addr_bytes;
  size_t snapshot_chunk_bytes;

  /* Cached from disk; updated only after a transaction commits.
   * first_index <= snap_index + 1, snap_index <= last_index, and an empty
   * log has first_index == last_index + 1, last_term == snap_term. */
  uint64_t first_index;
  uint64_t last_index;
  uint64_t last_term;
  uint64_t snap_index; /* 0: no snapshot */
  uint64_t snap_term;
  uint64_t snap_gen;
  uint64_t snap_size_bytes;
  bool snap_stale; /* chunks of an aborted snapshot may remain */
  struct store_hard_state hard_state;
  uint8_t incarnation[STORE_INCARNATION_BYTES];

  /* The write-ahead file: records [0, wal_off) are durable and not yet in
   * LMDB, which holds the state wal_base and every record through seq
   * wal_ckpt_seq. wal_fd is open while wal_held. */
  int wal_fd;
  bool wal_held;
  size_t wal_bytes;
  size_t wal_off;
  uint64_t wal_seq; /* of the last record written */
  uint64_t wal_ckpt_seq;
  struct store_log_view wal_base;
  size_t wal_limit; /* a record past it checkpoints first (wal_bytes/2..) */
  uint64_t wal_rng;
  uint8_t *wal_mem; /* the file's bytes [0, wal_off), 4 KiB aligned */
  bool wal_direct;  /* written with O_DIRECT */

  struct store_snapshot_pending pending;
  /* Since open: how long each checkpoint took (the write-ahead records
   * into LMDB, with the write it rides in), for metrics. Read it like the
   * rest of the store: never while another thread is inside a call. */
  struct histogram checkpoint_durations;
  atomic_int readers_open; /* the map cannot grow while > 0 */
  /* Held shared by store_snapshot_read_at (any thread) for its read
   * transaction, exclusively by the map's growth (the writer's thread). */
  pthread_rwlock_t remap_lock;
  char errmsg[SYNOD_ERRMSG_MAX];
};

/* Opens (creating if needed) the store in directory dir, which is created
 * if missing (its parent must exist). opts may be NULL for defaults.
 * On a new store, writes the format version and a fresh 128-bit incarnation
 * id from getrandom(2). Takes an exclusive flock on dir/synod.lock, so a
 * second open of the same directory (any process) fails with SYNOD_EBUSY.
 * Removes chunks of a snapshot that was never committed. Replays into
 * LMDB the write-ahead records that were not checkpointed yet.
 * Returns 0, or SYNOD_EBUSY, SYNOD_EPROTO (format version), SYNOD_ECORRUPT,
 * SYNOD_ENOSPACE, SYNOD_EIO, SYNOD_ENOMEM. On error s holds only the
 * message (store_errmsg()) and may be passed to store_close(). */
int store_open(struct store *s, const char *dir,
               const struct store_options *opts);

/* Checkpoints the write-ahead file (a failure is logged: the next open
 * replays it), then releases everything s holds, including a pending
 * snapshot. Accepts a zeroed store and one whose open failed. All
 * snapshot readers must have been freed. Never fails; s may be opened
 * again afterwards. */
void store_close(struct store *s);

/* The message of the last failure, with context, e.g.
 * "store: append 12..40: map full at 1048576 bytes, the maximum: mdb_put:
 * MDB_MAP_FULL: ...". Owned by s; valid until the next call on s. */
const char *store_errmsg(const struct store *s);

/* Copies the incarnation id, fixed when the store was first created. */
void store_incarnation(const struct store *s,
                       uint8_t out[STORE_INCARNATION_BYTES]);

/* The current LMDB map size (grows when the map fills). */
size_t store_map_size_bytes(const struct store *s);

/* First index in the log (snapshot index + 1 when nothing below it is
 * kept), last index and its term (the snapshot's when the log is empty).
 * An empty new store has first 1, last 0, last term 0. Never fail. */
uint64_t store_log_first_index(const struct store *s);
uint64_t store_log_last_index(const struct store *s);
uint64_t store_log_last_term(const struct store *s);

/* Sets *term to the term of entry index. The snapshot index and index 0
 * (term 0) are answered too. Returns 0, SYNOD_ECOMPACTED (below the first
 * index and not the snapshot index), SYNOD_EUNAVAILABLE (past the last),
 * SYNOD_ECORRUPT (checksum or length mismatch), or a disk error of the
 * checkpoint that every read starts with (see store_log_append()). */
int store_log_term(struct store *s, uint64_t index, uint64_t *term);

/* Appends count entries with one sync (group commit): one record of the
 * write-ahead file, or, when it does not fit there, one LMDB transaction.
 * entries[0].index must be last index + 1, indexes contiguous, terms not
 * decreasing (and not below the last term). All or nothing. Borrows entries
 * for the call. Returns 0, SYNOD_EINVAL (not contiguous, term going back,
 * data NULL with len > 0), SYNOD_ETOOBIG (len > STORE_ENTRY_BYTES_MAX),
 * SYNOD_ENOSPACE (map at its maximum, disk full), SYNOD_EBUSY (map full
 * and cannot grow while snapshot readers are open), SYNOD_EIO. The map
 * errors come from a checkpoint, when the write-ahead file is full. After
 * a disk error the store goes on without the entries, but they may have
 * reached the disk and come back after a restart (as when a write
 * succeeds and the process dies before reporting it). */
int store_log_append(struct store *s, const struct store_entry *entries,
                     size_t count);

/* The shell's write: optional hard state, optional configuration, optional
 * truncation of a conflicting suffix, then entries, with one sync (a
 * write-ahead record; a batch that truncates is one LMDB transaction after
 * a checkpoint); all or nothing. truncate_from must be above the snapshot index
 * and above the commit index (old and new), and at most last index + 1.
 * Entries then follow the (truncated) last index as for store_log_append().
 * The hard state must not move back: term >= the saved term; in the same
 * term, a vote once cast cannot change; commit >= the saved commit and
 * commit <= the last index after the batch. Returns as store_log_append(),
 * with SYNOD_EINVAL for any of these violations. */
int store_batch_write(struct store *s, const struct store_batch *b);

/* store_batch_write() without the write-ahead file's sync, so that the
 * next batch can be written while this one syncs (syncs of one file
 * overlap: on this kind of disk two or three at once complete several
 * times as many per second as one at a time). When *sync_needed is set on
 * return, the batch is durable once a store_wal_sync() that started after
 * this call returned has returned 0; such a sync also makes every batch
 * written before it durable, since each record's pwrite is done when it
 * returns. Otherwise (a batch that went to LMDB) it is durable on return.
 * A failed sync leaves the store unusable: the caller must stop. */
int store_batch_write_unsynced(struct store *s, const struct store_batch *b,
                               bool *sync_needed);

/* Whether a write of `entries` entries holding `bytes` of data would
 * first checkpoint the write-ahead file into LMDB (milliseconds: a shell
 * that writes on its event loop may hand that write to another thread
 * instead), or go to LMDB for want of room. Read it only while no other
 * thread writes. */
bool store_wal_would_checkpoint(const struct store *s, size_t entries,
                                size_t bytes);

/* The write-ahead file's fdatasync, the one call that may run on any
 * thread while another writes (it touches no state of s). The message of
 * a failure goes to errmsg (SYNOD_ERRMSG_MAX bytes), not to s. */
int store_wal_sync(struct store *s, char *errmsg);

/* Reads entries lo..hi inclusive, stopping early so that the payload bytes
 * returned stay <= bytes_max, but always returns at least one entry. On 0,
 * *entries is one heap block (array and payloads) owned by the caller,
 * freed with store_entries_free(), and *count >= 1. Returns SYNOD_EINVAL
 * (lo > hi), SYNOD_ECOMPACTED (lo below the first index),
 * SYNOD_EUNAVAILABLE (hi past the last index), SYNOD_ECORRUPT (checksum,
 * length or missing entry), SYNOD_ENOMEM, or a disk error of the checkpoint
 * (as store_log_term()). On error *entries is NULL. */
int store_log_read(struct store *s, uint64_t lo, uint64_t hi, size_t bytes_max,
                   struct store_entry **entries, size_t *count);

/* The highest index store_log_read_at() can read now: what LMDB holds,
 * without the writes still waiting in the write-ahead file. Called on the
 * writer's thread, like the rest of the store. */
uint64_t store_log_readable_last(const struct store *s);

/* Reads entries lo..hi inclusive from LMDB in a read transaction of its
 * own, without a checkpoint: callable from any thread while another
 * writes (a leader fills the appends of entries its core released from
 * here), as store_snapshot_read_at(). It sees only what was checkpointed:
 * through store_log_readable_last() as of some write before the call.
 * *entries is as for store_log_read(); messages go to errmsg
 * (SYNOD_ERRMSG_MAX bytes), never to the store's. Returns 0,
 * SYNOD_EINVAL (lo > hi), SYNOD_ECOMPACTED (below the log's first entry),
 * SYNOD_EUNAVAILABLE (not in LMDB), SYNOD_ECORRUPT, SYNOD_ENOMEM, or an
 * LMDB error's code. */
int store_log_read_at(struct store *s, uint64_t lo, uint64_t hi,
                      struct store_entry **entries, size_t *count,
                      char *errmsg);

/* Frees what store_log_read() returned; accepts NULL. */
void store_entries_free(struct store_entry *entries);

/* Drops the entries from index from_index onward (a conflicting suffix,
 * Raft §5.3). from_index must be above the snapshot index and the commit
 * index and at most last index + 1. Returns 0, SYNOD_EINVAL, or a disk
 * error as store_log_append(). */
int store_log_truncate(struct store *s, uint64_t from_index);

/* Drops the entries below first_kept_index (log compaction, Raft §7).
 * first_kept_index must be <= snapshot index + 1, so that nothing not in the
 * snapshot is lost; at or below the first index it does nothing. Returns 0,
 * SYNOD_EINVAL, or a disk error as store_log_append(). */
int store_log_compact(struct store *s, uint64_t first_kept_index);

/* Saves the hard state alone (one transaction, one sync), under the rules
 * of store_batch_write(). Returns 0, SYNOD_EINVAL, or a disk error. */
int store_hard_state_save(struct store *s, const struct store_hard_state *hs);

/* Reads the hard state back from disk (checksum verified). Returns 0 (with
 * {0, 0, 0} if never saved) or SYNOD_ECORRUPT. */
int store_hard_state_load(struct store *s, struct store_hard_state *hs);

/* Saves the latest configuration (opaque bytes) and its log index; the
 * index may go back after a truncation. Borrows data for the call.
 * Returns 0, SYNOD_EINVAL (data NULL with len > 0), SYNOD_ETOOBIG, or a
 * disk error. */
int store_config_save(struct store *s, uint64_t index, const uint8_t *data,
                      size_t len);

/* Loads the configuration: *data is a heap copy the caller frees with
 * free() (NULL when *len is 0). Returns 0, SYNOD_ENOTFOUND (never saved),
 * SYNOD_ECORRUPT, SYNOD_ENOMEM. */
int store_config_load(struct store *s, uint64_t *index, uint8_t **data,
                      size_t *len);

/* The committed snapshot's index and term; both 0 when there is none. */
void store_snapshot_last(const struct store *s, uint64_t *index,
                         uint64_t *term);

/* Starts writing a new snapshot that covers the log through index (term is
 * that entry's term), with the configuration as of index. Copies config.
 * Nothing is visible until store_snapshot_commit(); the current snapshot
 * stays readable. Returns 0, SYNOD_EBUSY (a snapshot is already being
 * written: commit or abort it first), SYNOD_EINVAL (index 0, term 0, or
 * index <= the current snapshot index), SYNOD_ENOMEM, or a disk error. */
int store_snapshot_begin(struct store *s, uint64_t index, uint64_t term,
                         const uint8_t *config, size_t config_len);

/* Appends len bytes to the image of the pending snapshot, in order, in one
 * transaction with one sync, split into snapshot_chunk_bytes values.
 * Borrows data for the call. On error nothing of this call was written and
 * the snapshot stays pending (retry, or abort). Returns 0, SYNOD_EINVAL (no
 * pending snapshot), or a disk error as store_log_append(). */
int store_snapshot_write(struct store *s, const uint8_t *data, size_t len);

/* Makes the pending snapshot the current one, atomically with the log
 * compaction that goes with it (one transaction, one sync), and deletes the
 * old snapshot. Raft §7: if the log holds the entry at the snapshot index
 * with the snapshot's term, entries after it are kept, and so are the
 * trailing_count entries at and below it; otherwise the whole log is
 * discarded and the log continues at index + 1. On error the old snapshot
 * and log are intact and the snapshot stays pending. Returns 0,
 * SYNOD_EINVAL (none pending), or a disk error. */
int store_snapshot_commit(struct store *s, uint64_t trailing_count);

/* store_snapshot_begin(), store_snapshot_write() of the whole image and
 * store_snapshot_commit() in one transaction, with one sync: what a
 * replica that holds the image whole does. On error nothing was written and
 * nothing is pending. Returns what those return. */
int store_snapshot_save(struct store *s, uint64_t index, uint64_t term,
                        const uint8_t *config, size_t config_len,
                        const uint8_t *data, size_t len,
                        uint64_t trailing_count);

/* Whether a snapshot is pending (begun, not committed or aborted). */
bool store_snapshot_pending(const struct store *s);

/* Drops the pending snapshot: frees it and deletes its chunks. The pending
 * state is gone whatever this returns; if deleting fails (the error is
 * returned), the next begin or open deletes the chunks. A no-op returning 0
 * when nothing is pending. */
int store_snapshot_abort(struct store *s);

/* Opens a reader of the current snapshot in its own LMDB read transaction:
 * it sees that snapshot whole even if a new one is committed meanwhile,
 * and writes continue. The reader may be used, and freed, on another thread
 * (one thread at a time); it must be freed before store_close(). While any
 * reader is open the map cannot grow (writes that need it fail with
 * SYNOD_EBUSY), so do not keep readers open longer than a transfer.
 * Returns 0, SYNOD_ENOTFOUND (no snapshot), SYNOD_ECORRUPT, SYNOD_ELIMIT
 * (LMDB reader slots exhausted), SYNOD_ENOMEM. */
int store_snapshot_reader_new(struct store *s,
                              struct store_snapshot_reader **reader);

/* The snapshot's header; owned by r, valid until r is freed. */
const struct store_snapshot_meta *
store_snapshot_reader_meta(const struct store_snapshot_reader *r);

/* Copies up to cap bytes of the image into buf, continuing where the last
 * call stopped; *len == 0 means the end. Each chunk's checksum is verified
 * and the total size checked at the end. Returns 0 or SYNOD_ECORRUPT, with
 * the message in store_snapshot_reader_errmsg(r) (not in the store's,
 * because the reader may live on another thread). */
int store_snapshot_reader_read(struct store_snapshot_reader *r, uint8_t *buf,
                               size_t cap, size_t *len);

/* The message of the reader's last failure; owned by r. */
const char *store_snapshot_reader_errmsg(const struct store_snapshot_reader *r);

/* Ends the read transaction and frees r. Accepts NULL. */
void store_snapshot_reader_free(struct store_snapshot_reader *r);

/* Copies bytes [offset, offset + len) of snapshot `index`'s image into
 * buf, verifying each chunk it copies from, in a read transaction of its
 * own: callable from any thread while another writes (a leader sends a
 * lagging follower chunks of the image from here instead of holding the
 * image in memory). Messages go to errmsg (SYNOD_ERRMSG_MAX bytes), never
 * to the store's. Returns 0, SYNOD_ENOTFOUND if the store holds another
 * snapshot (or none) now, SYNOD_EINVAL for a range past the image,
 * SYNOD_ECORRUPT, or an LMDB error's code. */
int store_snapshot_read_at(struct store *s, uint64_t index, uint64_t offset,
                           uint8_t *buf, size_t len, char *errmsg);

/* Checks everything on disk in one read transaction: every log entry's
 * checksum and length, contiguous indexes, terms not decreasing, the
 * cached bounds, the meta records, and every chunk of the current snapshot
 * with its total size. Returns 0, SYNOD_ECORRUPT (message says where) or
 * SYNOD_ENOMEM. Slow: for tests, tools and startup checks. */
int store_verify(struct store *s);

#endif
