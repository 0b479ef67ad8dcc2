/* The ordered multicast core: Raft as a pure state machine (no I/O, no
 * clock, no global randomness). The shell feeds it events and does the work
 * it hands back.
 *
 * The contract, in the shape of etcd raft's Ready/Advance:
 *
 *   struct core_update up;
 *   rv = core_step(c, &ev, &up);
 *   1. persist: up.hard_state (if changed), up.truncate_from and
 *      up.entries (one write transaction, one sync), up.snapshot_chunk;
 *   2. then send up.msgs;
 *   3. apply up.committed in order; install up.snapshot_install;
 *      answer up.reads.
 *   When the writes of step 1 are durable, feed CORE_EVENT_PERSISTED.
 *
 * Updates must be carried out in the order core_step produced them: the
 * messages of an update are sent only after that update's writes and all
 * earlier updates' writes are durable ("persist before send"). A shell that
 * persists asynchronously queues updates in FIFO order and keeps calling
 * core_step meanwhile; the core never counts its own unpersisted entries
 * towards a commit, and a follower's acknowledgement leaves only with the
 * update that made it durable.
 *
 * Everything an update points to is owned by the core and valid until the
 * next call into the core (core_step, core_close). The shell copies what it
 * keeps longer.
 *
 * Rules (Raft paper Figure 2 and the Raft thesis): at most one leader per
 * term; a vote only for a log at least as up to date as one's own; an entry
 * commits only by counting replicas for an entry of the leader's current
 * term; PreVote (thesis 9.6); CheckQuorum (thesis 6.2); ReadIndex (thesis
 * 6.4); one-at-a-time membership changes with learners (thesis 4.1-4.2);
 * leadership transfer (thesis 3.10). */
#ifndef SYNOD_CORE_H
#define SYNOD_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CORE_MEMBERS_MAX 16

/* Replica ids are non-zero; 0 means "none" (no vote, no leader). The shell
 * maps ids to names and addresses. */

enum core_role {
  CORE_FOLLOWER,
  CORE_PRE_CANDIDATE,
  CORE_CANDIDATE,
  CORE_LEADER,
};

enum core_entry_type {
  CORE_ENTRY_NORMAL = 0, /* opaque bytes for the state machine */
  CORE_ENTRY_CONFIG = 1, /* a configuration, encoded by core_config_encode */
  CORE_ENTRY_NOOP = 2,   /* a new leader's first entry of its term */
};

/* A log entry. `data` is owned by whoever produced the struct; see the
 * function or field that hands it over. */
struct core_entry {
  uint64_t term;
  uint64_t index;
  uint8_t type; /* enum core_entry_type */
  const uint8_t *data;
  size_t len;
};

/* An entry of an APPEND whose data the core released (RELEASE, below):
 * the shell fills it from its store before sending. */
static inline bool core_entry_released(const struct core_entry *e) {
  return e->data == NULL && e->len > 0;
}

/* A membership configuration: voters and learners, disjoint, ids sorted. */
struct core_config {
  uint32_t voters_n;
  uint32_t learners_n;
  uint64_t voters[CORE_MEMBERS_MAX];
  uint64_t learners[CORE_MEMBERS_MAX];
};

/* What must be durable before any message that depends on it is sent. */
struct core_hard_state {
  uint64_t term;
  uint64_t vote; /* 0 = none in this term */
  uint64_t commit;
};

/* The latest snapshot a replica holds: its last included entry and the
 * configuration as of that entry. The image itself stays in the shell. */
struct core_snapshot_meta {
  uint64_t index;
  uint64_t term;
  uint64_t size_bytes;
  struct core_config config;
};

/* ---------------------------------------------------------------- messages */

enum core_msg_type {
  CORE_MSG_APPEND, /* AppendEntries (also the heartbeat's job) */
  CORE_MSG_APPEND_REPLY,
  CORE_MSG_VOTE, /* RequestVote */
  CORE_MSG_VOTE_REPLY,
  CORE_MSG_PRE_VOTE, /* thesis 9.6: would you vote for me? */
  CORE_MSG_PRE_VOTE_REPLY,
  CORE_MSG_HEARTBEAT, /* leader liveness, commit, ReadIndex round */
  CORE_MSG_HEARTBEAT_REPLY,
  CORE_MSG_SNAPSHOT, /* one chunk of InstallSnapshot */
  CORE_MSG_SNAPSHOT_REPLY,
  CORE_MSG_TIMEOUT_NOW, /* leadership transfer: campaign now */
  CORE_MSG_TYPE_COUNT,
};

struct core_msg {
  enum core_msg_type type;
  uint64_t from;
  uint64_t to;
  /* The sender's term; a PRE_VOTE carries the term it would campaign in,
   * a granted PRE_VOTE_REPLY the term of the request it answers, and a
   * refused one the replier's own term (as in etcd raft), so that a
   * pre-candidate behind in terms learns the current one. */
  uint64_t term;
  union {
    struct {
      uint64_t prev_index;
      uint64_t prev_term;
      uint64_t commit;
      uint32_t entries_n;
      const struct core_entry *entries;
    } append;
    struct {
      bool reject;
      /* accepted: the index the follower now matches through;
       * rejected: the prev_index of the append that was rejected. */
      uint64_t index;
      /* rejected: the follower's hint for fast backtracking (etcd raft's
       * findConflictByTerm): the largest index <= min(prev_index, its last
       * index) whose term is <= the append's prev_term, and that term (0
       * if unknown). The leader resumes after the largest index of its own
       * log at or below hint_index with a term <= hint_term. */
      uint64_t hint_index;
      uint64_t hint_term;
    } append_reply;
    struct {
      uint64_t last_index;
      uint64_t last_term;
      /* Sent because of TIMEOUT_NOW: disregards leader stickiness. */
      bool transfer;
    } vote; /* VOTE and PRE_VOTE */
    struct {
      bool granted;
    } vote_reply; /* VOTE_REPLY and PRE_VOTE_REPLY */
    struct {
      uint64_t commit;
      uint64_t read_ctx; /* 0 = no ReadIndex round */
    } heartbeat;
    struct {
      uint64_t read_ctx;
    } heartbeat_reply;
    struct {
      struct core_snapshot_meta meta;
      uint64_t offset;
      /* Leader side: the core emits data = NULL and len = the chunk size;
       * the shell fills data with the image bytes [offset, offset+len) of
       * the snapshot meta.index before sending. Receiver side: the bytes,
       * borrowed from the event until core_step returns. */
      const uint8_t *data;
      uint32_t len;
      bool last;
    } snapshot;
    struct {
      uint64_t index;  /* the snapshot index this answers */
      uint64_t offset; /* next offset wanted; meta.size_bytes = complete */
      bool reject;     /* restart from offset 0 */
    } snapshot_reply;
  };
};

/* ------------------------------------------------------------------ events */

enum core_event_type {
  CORE_EVENT_RECEIVE,        /* a message from a peer */
  CORE_EVENT_TICK,           /* one tick of logical time has passed */
  CORE_EVENT_PROPOSE,        /* leader: append entries to the log */
  CORE_EVENT_PERSISTED,      /* the writes of earlier updates are durable */
  CORE_EVENT_READ_INDEX,     /* leader: a linearizable read point */
  CORE_EVENT_SNAPSHOT_TAKEN, /* the shell stored a snapshot of its state */
  CORE_EVENT_ADD_MEMBER,     /* leader: add a learner, promote when caught up */
  CORE_EVENT_REMOVE_MEMBER,  /* leader: remove a voter or learner */
  CORE_EVENT_TRANSFER,       /* leader: hand leadership to a voter */
  CORE_EVENT_UNREACHABLE,    /* the link to a peer broke */
  CORE_EVENT_PEER_GONE,      /* a peer's process is gone (see below) */
  CORE_EVENT_RELEASE,        /* the store can read entries back (below) */
};

struct core_event {
  enum core_event_type type;
  union {
    /* RECEIVE: borrowed until core_step returns. */
    const struct core_msg *msg;
    /* PROPOSE: type and data of each entry; term and index are assigned by
     * the core (the fields are ignored). Borrowed; the core copies. */
    struct {
      const struct core_entry *entries;
      uint32_t entries_n;
    } propose;
    /* PERSISTED: every update up to and including the one that produced
     * the entry (index, term) is durable. */
    struct {
      uint64_t index;
      uint64_t term;
    } persisted;
    /* READ_INDEX: ctx is chosen by the shell (non-zero, unique among reads
     * in flight) and comes back in core_update.reads. */
    uint64_t read_ctx;
    /* SNAPSHOT_TAKEN: the shell's image covers entries through
     * meta.index (<= the last applied index); meta.config is ignored (the
     * core knows the configuration at every index it has). The shell
     * stores the configuration as of meta.index with its snapshot: from
     * core_config_at(meta.index) before this step, or by tracking the
     * CONFIG entries it applied. */
    struct core_snapshot_meta snapshot;
    /* ADD_MEMBER, REMOVE_MEMBER, TRANSFER, UNREACHABLE, PEER_GONE.
     * PEER_GONE: the shell has evidence that replica `id`'s process is
     * gone, not merely unreachable: its connection was closed and its
     * port refused a new one (a crashed process's kernel does both; a
     * partition does neither). If it is our leader, we stop defending its
     * lease and campaign (PreVote first) at once instead of waiting out
     * the election timeout. A false report costs at most a refused
     * pre-vote: it changes no term, vote or log rule. */
    uint64_t id;
    /* RELEASE: the shell's store can read entries through `release` back,
     * as they were handed out to persist: the highest index it can read
     * without waiting on a write, as the latest completed write left it,
     * sent after that write's PERSISTED (it may go down after a
     * truncation; the core trusts it only as far as PERSISTED has told
     * it the log is durable at the time of the RELEASE). From then on the
     * core keeps in memory only the data of entries that are not applied
     * yet, not durable yet (PERSISTED) or among the newest
     * held_bytes_min: the data of the others is dropped, and an APPEND
     * that carries such an entry carries it with data NULL (len as it
     * was). The shell fills those entries from its store before sending,
     * as it fills snapshot chunks; one it cannot fill (compacted from the
     * store since) it drops with its message, which Raft tolerates: the
     * follower rejects the next append and is probed again. A received
     * APPEND with such an entry is malformed. */
    uint64_t release;
  };
};

/* ----------------------------------------------------------------- updates */

struct core_read {
  uint64_t ctx;
  uint64_t index; /* apply through this index, then read */
  int error;      /* 0, or SYNOD_ENOTLEADER if leadership was lost */
};

struct core_update {
  /* 1. Persist, in this order, in one transaction with one sync. */
  bool hard_state_changed;
  struct core_hard_state hard_state;
  /* Non-zero: delete the log from this index on (a conflicting suffix)
   * before appending `entries`. */
  uint64_t truncate_from;
  uint32_t entries_n;
  const struct core_entry *entries; /* contiguous, ascending */
  /* A received snapshot chunk to store at `offset` of the image being
   * received for meta.index; `data` is borrowed from the RECEIVE event. */
  bool snapshot_chunk_present;
  struct {
    struct core_snapshot_meta meta;
    uint64_t offset;
    const uint8_t *data;
    uint32_t len;
    bool last;
  } snapshot_chunk;

  /* 2. Then send. */
  uint32_t msgs_n;
  const struct core_msg *msgs;

  /* 3. Then apply, in this order: first install a snapshot (once its last
   * chunk is durable, make it the current snapshot, drop the log through
   * its index, and restore the state machine from it; entries after its
   * index that did not match were deleted by truncate_from in step 1, the
   * others are kept), then apply committed entries. A chunk at offset 0
   * starts a new image, replacing any partial one. */
  bool snapshot_install_present;
  struct core_snapshot_meta snapshot_install;
  uint32_t committed_n;
  const struct core_entry *committed;
  uint32_t reads_n;
  const struct core_read *reads;

  /* PROPOSE (and ADD/REMOVE_MEMBER): the indexes assigned to the
   * proposed entries (the configuration entry). */
  uint64_t proposed_first;
  uint64_t proposed_last;

  /* The core would like a snapshot: enough entries were applied since the
   * last one (options.snapshot_entries, plus the spread). Advisory. */
  bool snapshot_wanted;

  /* Role, term or known leader changed in this step. */
  bool soft_state_changed;
  enum core_role role;
  uint64_t term;
  uint64_t leader; /* 0 = unknown */
  /* The configuration changed (appended, not necessarily committed). */
  bool config_changed;
  struct core_config config;
};

/* ----------------------------------------------------------------- options */

/* Zero in any field means its default. */
struct core_options {
  uint64_t id;   /* this replica, non-zero */
  uint64_t seed; /* seeds the core's own PRNG (election timeouts) */
  /* The election timeout is random in [election_ticks, 2*election_ticks).
   * Defaults: 10 and 1. */
  uint32_t election_ticks;
  uint32_t heartbeat_ticks;
  /* PreVote and CheckQuorum are on unless disabled (for tests only). */
  bool disable_pre_vote;
  bool disable_check_quorum;
  /* Flow control per follower. Defaults: 64 entries and 1 MiB per append,
   * 16 appends and 8 MiB in flight. */
  uint32_t append_entries_max;
  uint32_t append_bytes_max;
  uint32_t inflight_appends_max;
  uint64_t inflight_bytes_max;
  /* Proposals are refused (SYNOD_EBUSY) while the in-memory log holds more
   * than this many bytes. Default 256 MiB. So that the log always comes
   * back under it once entries commit, snapshot_wanted is set whenever a
   * quarter of it has been applied since the last snapshot (streaming to a
   * follower or not), and a snapshot keeps at most snapshot_keep_bytes. */
  uint64_t log_bytes_max;
  /* Proposals are refused (SYNOD_EBUSY) while this many entries are
   * appended but not committed: when a majority cannot keep up, clients
   * are told to back off instead of the backlog growing without bound.
   * Default 8192. */
  uint64_t uncommitted_entries_max;
  uint32_t snapshot_chunk_bytes; /* default 256 KiB */
  uint64_t snapshot_entries;     /* snapshot_wanted threshold; default 8192 */
  /* Up to this percentage of snapshot_entries more, different on every
   * replica and for every snapshot, so that replicas do not all stop to
   * write a snapshot at the same index: a commit needs only a majority,
   * so one replica writing its snapshot then holds nobody up. Default 0. */
  uint32_t snapshot_spread_percent;
  /* Snapshots only at this replica's own points of the log: a voter, the
   * k-th of n by id, takes one (once due) only as its applied index
   * crosses k * snapshot_entries / n, modulo snapshot_entries. Replicas
   * apply the same indexes at about the same moment, so no two voters
   * start a snapshot within snapshot_entries / n entries of each other;
   * a spread alone let two followers save theirs at once (0.3-0.5% of
   * the threshold apart) and stop every commit meanwhile. The threshold
   * of a quarter of log_bytes_max does not wait. Default false. */
  bool snapshot_slots;
  uint64_t snapshot_keep_entries; /* kept behind a snapshot; default 1024 */
  /* ... and at most this many bytes of them; default log_bytes_max / 16. */
  uint64_t snapshot_keep_bytes;
  /* After RELEASE, the newest entries, at least this many bytes of them,
   * keep their data in memory (appends to followers that keep up never
   * read the store). Default 4 MiB. */
  uint64_t held_bytes_min;
  /* A learner is promoted once it is within this many entries of the
   * leader's last index. Default 64. */
  uint64_t promote_lag_entries;
  /* Optional: a line of trace for each notable transition (the simulator
   * prints the tail of these on failure). */
  void (*trace_cb)(void *arg, uint64_t id, const char *line);
  void *trace_arg;
};

/* What the store held when the replica started. */
struct core_restore {
  struct core_hard_state hard_state;
  struct core_snapshot_meta snapshot; /* index 0 = no snapshot */
  /* The log after the snapshot, ascending and contiguous from
   * snapshot.index + 1. Borrowed during core_new; the core copies. A fresh
   * cluster's replicas all start with the same bootstrap entry at index 1
   * (term 1, CORE_ENTRY_CONFIG, from core_config_encode). */
  const struct core_entry *entries;
  uint32_t entries_n;
};

struct core;

/* Allocates a core for replica opts->id from its durable state. The
 * configuration is the latest CONFIG entry in the log, or the snapshot's.
 * Returns NULL if out of memory or if `restore` is inconsistent (entries not
 * contiguous from the snapshot, terms decreasing, an invalid entry or
 * snapshot config); `errmsg` (SYNOD_ERRMSG_MAX bytes) then says why. A
 * commit beyond the last index (a crash after storing a received snapshot's
 * last chunk but before installing it) is lowered to the last index; a term
 * below the last entry's (a bootstrap log with a zero hard state) is raised
 * to it. */
struct core *core_new(const struct core_options *opts,
                      const struct core_restore *restore, char *errmsg);

/* Frees the core and everything its updates pointed to. NULL is fine. */
void core_free(struct core *c);

/* Feeds one event. Clears *out, then fills it with the work to do.
 * Returns 0, or:
 *   SYNOD_ENOTLEADER  PROPOSE, READ_INDEX, ADD/REMOVE_MEMBER or TRANSFER
 *                     on a replica that is not the leader
 *   SYNOD_EBUSY       PROPOSE while the log is full or a transfer is on,
 *                     ADD/REMOVE_MEMBER while a transfer is on, READ_INDEX
 *                     with 4096 reads already waiting
 *   SYNOD_ECONFIG     a membership change while another is uncommitted or
 *                     before the leader committed an entry of its term, or
 *                     one that is not allowed (remove the last voter or a
 *                     non-member, add a member twice, more than
 *                     CORE_MEMBERS_MAX members)
 *   SYNOD_EMALFORMED  a RECEIVE whose message is inconsistent (entries not
 *                     contiguous from prev_index+1 or with bad terms, types
 *                     or CONFIG data, unknown type, term 0, from 0 or our
 *                     own id, `to` not our id, a snapshot chunk outside its
 *                     image, an append from a current term that conflicts
 *                     with our committed entries); nothing changes
 *   SYNOD_EINVAL      an event the core cannot take (PERSISTED beyond what
 *                     was handed out, a zero read ctx, PROPOSE of nothing
 *                     or of a CONFIG entry, SNAPSHOT_TAKEN beyond the
 *                     applied index or with the wrong term, TRANSFER to a
 *                     non-voter)
 * On error *out is empty and the core is unchanged (core_errmsg says why).
 * Out of memory aborts: a step cannot be half undone.
 *
 * Elections: a replica campaigns only if it is a voter of its latest
 * configuration, or if that configuration (uncommitted) just removed it
 * while it was a voter before, since it may hold the only up-to-date log
 * the old configuration needs (it then leads without counting itself and
 * steps down once the change commits). Any replica answers vote requests,
 * learners included; only voters' answers count. A candidate whose own
 * vote is a quorum (a single voter) appends its noop in the update that
 * carries its vote and becomes leader at that noop's PERSISTED, so a
 * crash before its vote is durable never leaves two leaders in a term.
 *
 * Restart: the core starts as a follower with the restored term and vote.
 * The shell restores its state machine from the snapshot, so the core
 * hands out committed entries again from snapshot.index + 1 (applied
 * starts at the snapshot index), in the update of the first step. */
int core_step(struct core *c, const struct core_event *ev,
              struct core_update *out);

/* Read-only views, for status pages and tests. */
enum core_role core_role(const struct core *c);
uint64_t core_term(const struct core *c);
uint64_t core_leader(const struct core *c);
uint64_t core_commit_index(const struct core *c);
uint64_t core_last_index(const struct core *c);
uint64_t core_first_index(const struct core *c); /* first in memory */
/* Entry bytes the log holds in memory (not those released). */
uint64_t core_log_memory_bytes(const struct core *c);
/* The entries through this index hold no data in memory: released after
 * RELEASE, or compacted (then it is core_first_index - 1). */
uint64_t core_released_index(const struct core *c);
const struct core_config *core_config(const struct core *c);

/* The configuration in effect at `index` (the latest CONFIG entry at or
 * before it, or the snapshot's), for a snapshot's metadata. Returns 0, or
 * SYNOD_ECOMPACTED if index is below the first index the core still knows
 * (first index - 1), SYNOD_EUNAVAILABLE if beyond the last index. */
int core_config_at(const struct core *c, uint64_t index,
                   struct core_config *cfg);

/* A snapshot threshold of this replica: base plus up to
 * snapshot_spread_percent of it again, drawn from its id, the last
 * snapshot's index `since` and a salt per threshold, so that replicas
 * applying the same entries do not all save their images at one index.
 * The shell's own thresholds (bytes applied) use it too. */
uint64_t core_snapshot_spread(const struct core *c, uint64_t since,
                              uint64_t base, uint64_t salt);

/* Leader: is a snapshot streaming to some follower? While one is, the core
 * holds off snapshot_wanted (a newer image would restart the transfer);
 * a shell with thresholds of its own should hold off too. */
bool core_snapshot_streaming(const struct core *c);

/* Per-follower progress, leader only: match index, or 0 if unknown. */
uint64_t core_match_index(const struct core *c, uint64_t id);

/* Why the last core_step failed ("" after a success). Owned by the core. */
const char *core_errmsg(const struct core *c);

/* Encodes a configuration as entry bytes into buf (size at least
 * CORE_CONFIG_ENCODED_MAX); returns the length. */
#define CORE_CONFIG_ENCODED_MAX (8 + 16 * CORE_MEMBERS_MAX)
size_t core_config_encode(const struct core_config *cfg, uint8_t *buf);

/* Decodes entry bytes into *cfg. Returns 0 or SYNOD_EMALFORMED. */
int core_config_decode(const uint8_t *buf, size_t len, struct core_config *cfg);

const char *core_role_name(enum core_role role);
const char *core_msg_type_name(enum core_msg_type type);

#endif /* SYNOD_CORE_H */
