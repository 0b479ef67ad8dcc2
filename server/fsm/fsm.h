/* The replicated state machine: sessions, locks, counters and elections,
 * applied by every replica in log order (DESIGN.md, "The replicated state
 * machine").
 *
 * Pure: no clock, no I/O, no randomness, no hash-table order. Time enters
 * only as the leader's stamp on each Command; every container is ordered by
 * id or name. Two replicas fed the same entries produce the same outputs
 * and the same snapshot bytes.
 *
 * Threading: a struct fsm is not thread-safe; one thread applies and
 * queries (queries take a const pointer but must not race with apply).
 *
 * Memory: allocation failure inside the fsm aborts the process. A replica
 * that cannot finish applying an entry must not continue with a state that
 * differs from its peers' (Redis's zmalloc makes the same choice).
 *
 * Semantics the shell and clients rely on:
 *
 * - Time. Each Command carries the leader's stamp; time is the maximum
 *   stamp seen. A session lives while time <= last keepalive + ttl and
 *   expires at the first millisecond past it. Keepalives come in Tick
 *   entries or as SessionKeepalive requests; one that arrives after the
 *   deadline (due timers run before the entry's body) never revives.
 *
 * - Exactly-once. A mutating request in a session (locks, elections,
 *   counter writes) needs sequence >= 1. Each session records the answers
 *   to its last results_per_session_max sequences: a sequence in that
 *   window is answered from the record, byte for byte, and not applied
 *   again (a queued acquire stays queued, answered later by its event); a
 *   sequence at or below the highest one forgotten is SYNOD_ESEQUENCE, but
 *   for an acquire still queued (its record pushed out while the session
 *   went on writing: pending, answered by its event as in the window); any
 *   other is new and applied, even below the newest (pipelined requests
 *   may commit out of order). Errors are recorded too. Keepalive and close
 *   are idempotent and not recorded; SessionOpen (session 0) is never
 *   deduplicated: a retried open makes a second session, which expires
 *   unused. Counter writes with session 0 are allowed and applied every
 *   time: at-least-once, for tools such as synodctl that hold no session.
 *   Those same writes (counters, channels, keys: the ones that work
 *   without a session) may also name a session with sequence 0: applied
 *   every time and not recorded, but in that session (a session-bound
 *   key put). The HTTP API sends these: its clients hold a session across
 *   requests on any replica but number nothing, and two replicas could
 *   not agree on a sequence without a round trip.
 *
 * - Locks. The fencing token of a grant is the index of the granting
 *   entry, or one more than the last token issued on any lock if that is
 *   higher (two grants in one entry), so tokens strictly grow across all
 *   names and survive the deletion of an idle lock. A reentrant acquire
 *   returns the same token. Lock-delay (Chubby) applies only when the
 *   holder's session expires, counted from the expiry deadline, with the
 *   delay given by the holder's acquire: a release or a session close is
 *   the holder saying it is done. During the delay the lock has no holder,
 *   try-acquires get SYNOD_ELOCKED and others queue. When a session ends,
 *   its queued acquires are answered with SYNOD_ESESSION first, then its
 *   candidacies are withdrawn and its locks released, each group in name
 *   order.
 *
 * - Elections. ElectionChanged is emitted when the leader changes, or the
 *   leader re-campaigns with a new value; not when a follower joins or
 *   leaves. revision is the index at which the current leader took office.
 *
 * - Keys (kv.c, kv_history.c). Every change gets the next revision,
 *   dense from 1: a put, a delete that deleted something, a transaction
 *   that changed something, and the end of a session that held bound keys
 *   (one revision per session, in the order the sessions end, before the
 *   entry's own request). A session's end deletes all its keys at that
 *   revision at once: from then on no read, compare, list or write sees
 *   them, and the history holds all their deletes at that revision. The
 *   physical removal from the store, and the history's drop of old
 *   revisions past its bounds, are spread over the entries that follow
 *   (key_work_per_entry units each), so an expiry of a session holding
 *   100,000 keys never holds one apply for long; what is still to remove
 *   is invisible and not in the image.
 *
 * - Groups (group.c). A group exists while it has members; each join,
 *   leave, or end of a session holding memberships (one view per group,
 *   in group name order, after the session's keys) makes the next view.
 *   Views, messages, state requests and checkpoint notices are items of
 *   ONE window per group, offsets dense from 1. A view item holds the
 *   change (joined, left) and the member count; the full view is state
 *   (fsm_group_view). Retention: the oldest items go when a group passes
 *   group_items_max or group_bytes_max, or all groups groups_bytes_max;
 *   items before the latest checkpoint stay while within them, so a
 *   member a little behind needs no state transfer. A checkpoint is
 *   usable while every item after its offset is retained; a state
 *   request with none usable is an item addressed to the coordinator,
 *   sent again to each new coordinator until a checkpoint commits.
 *
 * - Names are C strings: protobuf-c hands strings over NUL-terminated, so
 *   a name with an embedded NUL byte is cut at it (identically on every
 *   replica). */
#ifndef SYNOD_FSM_H
#define SYNOD_FSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "histogram.h"
#include "synod.pb-c.h"
#include "window.h"

/* Limits; a zero field takes the default in brackets. Every replica of a
 * cluster must run with the same options, as they shape replies. */
struct fsm_options {
  uint32_t name_bytes_max;              /* [256] lock/counter/election */
  uint32_t sessions_max;                /* [65536] live sessions */
  uint32_t locks_max;                   /* [100000] held or waited on */
  uint32_t counters_max;                /* [1000000] */
  uint32_t elections_max;               /* [10000] */
  uint32_t waiters_per_lock_max;        /* [1024] */
  uint32_t candidates_per_election_max; /* [1024] */
  uint32_t results_per_session_max;     /* [32] exactly-once window */
  uint32_t value_bytes_max;             /* [1024] election value */
  uint32_t ttl_min_ms;                  /* [1000] */
  uint32_t ttl_max_ms;                  /* [300000] */
  uint32_t ttl_default_ms;              /* [10000] for SessionOpen ttl 0 */
  uint32_t lock_delay_max_ms;           /* [60000] */
  uint32_t list_limit_max;              /* [1000] CounterList page */
  /* Channels. Defaults for a channel created by its first publish, and
   * the caps on what a ChannelCreate may ask for. */
  uint32_t channels_max;                  /* [10000] */
  uint64_t channel_messages_default;      /* [1000000] retained */
  uint64_t channel_bytes_default;         /* [64 MiB] retained payload */
  uint32_t channel_message_bytes_default; /* [256 KiB] */
  uint32_t channel_message_bytes_cap;     /* [1000000]: a frame's worth */
  /* Server-wide cap on retained payload over every channel: a publish
   * that would pass it drops its channel's oldest messages, or is
   * refused when that is not enough or the channel refuses when full. */
  /* [64 MiB] The default of the server-wide cap; the replicated setting
   * (fsm_command_encode_settings) overrides it. */
  uint64_t channels_bytes_max;
  uint32_t channel_ids_max;      /* [4096] message ids deduplicated */
  uint32_t channel_id_window_ms; /* [600000] ... for this long */
  /* Keys (kv.c). A key is at most FSM_KEY_BYTES_MAX bytes: a contract,
   * not an option. */
  uint32_t keys_max;              /* [1000000] live keys */
  uint64_t keys_bytes_max;        /* [1 GiB] their names and values */
  uint32_t key_value_bytes_max;   /* [65536] */
  uint32_t key_txn_ops_max;       /* [64] compares, and ops per branch */
  uint32_t key_list_max;          /* [10000] keys in a KeyList page */
  uint32_t key_reply_bytes_max;   /* [512 KiB] values in one answer */
  uint64_t key_history_max;       /* [100000] events retained */
  uint64_t key_history_bytes_max; /* [64 MiB] ... and their bytes */
  /* [2048] Keys of ended sessions taken out of the store, and as many
   * revisions dropped from the history, per applied entry (see "Keys"
   * above): bounds the apply time an expiry adds. */
  uint32_t key_work_per_entry;
  /* Groups (group.c). */
  uint32_t groups_max;                  /* [10000] */
  uint32_t group_members_max;           /* [256] per group */
  uint32_t group_member_data_bytes_max; /* [1024] a member's data */
  uint32_t group_message_bytes_max;     /* [256 KiB] one send's data */
  uint64_t group_items_max;             /* [100000] retained per group */
  uint64_t group_bytes_max;             /* [64 MiB] ... and their bytes */
  uint64_t group_checkpoint_bytes_max;  /* [16 MiB] one checkpoint */
  uint32_t group_chunk_bytes_max;       /* [1000000] one checkpoint chunk */
  uint32_t group_uploads_max;           /* [4] open uploads per group */
  /* [256 MiB] Retained items, checkpoints and open uploads over every
   * group: a send or an upload that would pass it is SYNOD_ELIMIT (after
   * dropping its own group's oldest items does not make room). */
  uint64_t groups_bytes_max;
};

/* The longest key, in bytes. */
#define FSM_KEY_BYTES_MAX 512

enum fsm_event_type {
  /* A queued acquire got the lock. `response` answers the pending
   * (session_id, sequence) with LockAcquireReply; `event` is a packed
   * synod.Event LockGranted. */
  FSM_EVENT_LOCK_GRANTED = 1,
  /* A queued acquire waited timeout_ms: `response` is SYNOD_ETIMEDOUT. */
  FSM_EVENT_LOCK_TIMEOUT,
  /* A queued acquire was dropped because its session expired or closed:
   * `response` is SYNOD_ESESSION. */
  FSM_EVENT_LOCK_CANCELED,
  /* `session_id` expired; `event` is a packed synod.Event SessionExpired. */
  FSM_EVENT_SESSION_EXPIRED,
  /* The leader of election `name` changed (or its value did); `event` is
   * a packed synod.Event ElectionChanged. */
  FSM_EVENT_ELECTION_CHANGED,
  /* Messages were appended to channel `name` (subscriptions may push). */
  FSM_EVENT_CHANNEL_APPENDED,
  /* Channel `name` was deleted (its subscriptions end). */
  FSM_EVENT_CHANNEL_DELETED,
  /* The key history gained `revision` (watches may push); one event per
   * revision, in order. */
  FSM_EVENT_KEYS_CHANGED,
  /* Items were appended to group `name`, the last at `last_offset` (one
   * event per group per entry; subscriptions may push). */
  FSM_EVENT_GROUP_APPENDED,
  /* Group `name` was deleted: its last member left. last_index and
   * last_offset are its newest item's; its subscriptions end. A group of
   * the same name created later starts again at offset 1 (its
   * created_index differs). */
  FSM_EVENT_GROUP_DELETED,
};

/* Something the entry caused besides answering its own request. Fields not
 * listed for a type are 0 / NULL. */
struct window;

struct fsm_event {
  enum fsm_event_type type;
  uint64_t session_id;
  uint64_t sequence;       /* the queued acquire's sequence (LOCK_*) */
  const char *name;        /* lock, election or channel name, NUL-terminated */
  const uint8_t *response; /* packed synod.Response, or NULL */
  size_t response_len;
  const uint8_t *event; /* packed synod.Event, or NULL */
  size_t event_len;
  /* CHANNEL_DELETED: the log index and offset of the channel's newest
   * message (0 if it never had one). */
  uint64_t last_index;
  uint64_t last_offset;
  uint64_t revision; /* KEYS_CHANGED */
  /* CHANNEL_DELETED, GROUP_DELETED: the stream's retained items as they
   * were at the deletion (every item up to last_offset that was still
   * retained), so that a subscription still behind delivers them before
   * it ends. Owned by the output until the next fsm_apply, unless taken
   * with fsm_event_window_take. */
  struct window *window;
};

/* The answer to the request in the entry at `index`. The replica that
 * proposed it routes it by (session_id, sequence, index); for session 0
 * (SessionOpen, sessionless counters) by index alone. */
struct fsm_response {
  uint64_t session_id;
  uint64_t sequence;
  uint64_t index;
  /* A queued acquire (or a retry of one still queued): no answer yet; a
   * LOCK_GRANTED, LOCK_TIMEOUT or LOCK_CANCELED event for (session_id,
   * sequence) will answer it. `data` is NULL. */
  bool pending;
  const uint8_t *data; /* packed synod.Response */
  size_t len;
};

/* What one fsm_apply produced. Points into memory the fsm owns until the
 * next fsm_apply, fsm_snapshot_decode or fsm_free. */
struct fsm_output {
  bool has_response; /* false for Tick entries */
  struct fsm_response response;
  const struct fsm_event *events; /* in the order they happened */
  size_t events_len;
};

struct fsm;

/* Takes the window that event `e` of the last output carries (see
 * fsm_event.window): the caller owns it from then on and frees it with
 * window_close and free. NULL if the event carries none, or it was
 * taken. */
struct window *fsm_event_window_take(struct fsm *f, const struct fsm_event *e);

/* Allocates an empty state machine (time 0, nothing applied). opts may be
 * NULL for all defaults; it is copied. Returns NULL only if opts are
 * inconsistent (ttl_min_ms > ttl_default_ms or ttl_default_ms > ttl_max_ms,
 * name_bytes_max above 65535). */
struct fsm *fsm_new(const struct fsm_options *opts);

/* Frees f and everything it owns, including the last output. NULL is
 * fine. */
void fsm_free(struct fsm *f);

/* Applies one committed NORMAL entry: `data`/`len` are the bytes of a
 * fsm.Command, `index` its log index, which must exceed every index passed
 * before (to fsm_apply or fsm_index_advance).
 *
 * First advances cluster time to max(time, Command.time_ms) and processes
 * everything due, in (deadline, kind, id) order: session expiries, acquire
 * timeouts, lock-delays that ended. Then applies the body.
 *
 * Never fails on what a client sent: a malformed entry or a refused request
 * is answered by an error Response in *out, identical on every replica (a
 * Command that does not decode gets SYNOD_EMALFORMED, routed by index, and
 * changes nothing but the applied index). Returns 0, or SYNOD_EINVAL for a
 * programmer error (index not increasing), in which case nothing changed.
 * *out borrows fsm memory until the next call (see struct fsm_output).
 *
 * Returns SYNOD_EPROTO, with nothing changed (not even the applied index),
 * for a Command of a format above this build's, or of format 1 or more
 * that carries a field, a body or an enum value this build does not know
 * (fsm_unknown_field says which): a newer build wrote it, and this one
 * would apply it otherwise than the replicas that know it. The replica
 * must not go on past it (the leaders of this build never propose such an
 * entry: requests_propose_from refuses a client's write that carries
 * one). A Command of format 0 (a build before the format) is applied with
 * the fields this build does not know ignored, as builds of that time
 * applied them.
 *
 * Response.id is always 0 in fsm output: the shell sets it, for example by
 * prepending field 1 to the packed bytes (protobuf merges the two). */
int fsm_apply(struct fsm *f, uint64_t index, const uint8_t *data, size_t len,
              struct fsm_output *out);
/* After fsm_apply's SYNOD_EPROTO: "field 57 of synod.KeyPut". */
const char *fsm_unknown_field(const struct fsm *f);

/* Records that entry `index`, not a NORMAL entry (a no-op or a
 * configuration), was applied, so the image's applied index follows the
 * log. Same precondition and return as fsm_apply; changes nothing else. */
int fsm_index_advance(struct fsm *f, uint64_t index);

/* The earliest cluster time at which something is due (a session expiry,
 * an acquire timeout, the end of a lock-delay), or UINT64_MAX. The leader
 * emits a Tick stamped at or after it. While keys of ended sessions are
 * still to be taken out of the store, or the key history is over its
 * bounds (see "Keys"), it is the current cluster time: every applied
 * entry does a bounded share of that work, and Ticks carry it on when no
 * other entry comes. */
uint64_t fsm_next_deadline(const struct fsm *f);

/* Cluster time and the last applied index, as of the last apply. */
uint64_t fsm_time_ms(const struct fsm *f);
uint64_t fsm_applied_index(const struct fsm *f);

/* The TTL of a live session, or 0 if no session has that id (never opened,
 * expired or closed). The shell answers keepalives with it once the Tick
 * that carried them is applied. */
uint32_t fsm_session_ttl_ms(const struct fsm *f, uint64_t session_id);

/* The rule of a SessionOpen's ttl_ms, so that a shell can refuse a bad
 * one before proposing it: 0 (the default, ttl_default_ms) or
 * ttl_min_ms..ttl_max_ms. Returns 0, or SYNOD_ERANGE with errmsg
 * (SYNOD_ERRMSG_MAX bytes) naming the value and the bounds. */
int fsm_session_ttl_check(const struct fsm *f, uint32_t ttl_ms, char *errmsg);

/* Bounds a leader checks before proposing a write, which apply has no
 * rule for (adding one would change what replicas of older builds apply
 * the same way): a channel's max_messages at most
 * FSM_CHANNEL_MESSAGES_CAP (what the README promises a window holds),
 * and its max_age_ms at most FSM_CHANNEL_AGE_MAX_MS (beyond it the
 * expiry's sum wraps and every message would expire at once); a
 * publish of at most FSM_CHANNEL_BATCH_MAX messages. Returns 0, or
 * SYNOD_ERANGE with errmsg (SYNOD_ERRMSG_MAX bytes). */
#define FSM_CHANNEL_MESSAGES_CAP 1000000u
#define FSM_CHANNEL_BATCH_MAX 1000u
#define FSM_CHANNEL_AGE_MAX_MS (100ull * 366 * 24 * 3600 * 1000) /* 100 y */
int fsm_request_bounds_check(const Synod__Request *req, char *errmsg);

/* True for the bodies fsm_query answers: lock_query, lock_check,
 * counter_get, counter_list, election_leader, election_observe, the
 * channel reads, key_get, key_list and the group reads (view, list,
 * checkpoint read, read). */
bool fsm_request_is_read(const Synod__Request *req);

/* True for the bodies fsm_apply applies as a command (every one it knows
 * that is not a read), with the body's message present. */
bool fsm_request_is_write(const Synod__Request *req);

/* Answers a read-only request from the applied state (the shell calls it
 * after ReadIndex, or at once for a stale read). Never mutates. On success
 * *data is a packed synod.Response (possibly carrying an error such as
 * SYNOD_EINVAL for a bad name), malloc'ed: the caller frees it with
 * free(). Returns 0, or SYNOD_EINVAL (and no output) if req is not a read
 * (see fsm_request_is_read). */
int fsm_query(const struct fsm *f, const Synod__Request *req, uint8_t **data,
              size_t *len);

/* Serialises the whole state as a fsm.Image in canonical order: two
 * replicas at the same applied index produce identical bytes. *data is
 * malloc'ed; the caller frees it. Returns 0. */
int fsm_snapshot_encode(const struct fsm *f, uint8_t **data, size_t *len);

/* Replaces f's state by the image in data (borrowed for the call). The
 * image is validated completely first: on SYNOD_ECORRUPT (it does not
 * decode, or breaks an invariant: order, references, counts) f is
 * unchanged. Invalidates the last output. */
int fsm_snapshot_decode(struct fsm *f, const uint8_t *data, size_t len);

/* A 64-bit FNV-1a of the encoded image, for comparing replicas; the
 * record of deleted channels (fsm_channels_gone) is left out of it (see
 * snapshot.c). */
uint64_t fsm_digest(const struct fsm *f);

/* ------------------------------------------------------------- settings */

/* Server-wide limits that are part of the replicated state (fsm.Settings).
 * 0 in a field: the fsm_options default. */
struct fsm_settings {
  uint64_t channels_bytes_max;
  /* At most FSM_GROUP_CHECKPOINT_BYTES_CAP; a checkpoint stored under a
   * larger setting stays when it is lowered. */
  uint64_t group_checkpoint_bytes_max;
  /* The key history's bounds (what watches can resume from): replicated,
   * as the history is part of the state every replica must agree on. */
  uint64_t key_history_max;
  uint64_t key_history_bytes_max;
  /* One key's value, at most FSM_KEY_VALUE_BYTES_CAP; values stored under
   * a larger setting stay when it is lowered. */
  uint64_t key_value_bytes_max;
};

/* The largest group checkpoint any setting may allow (an image holding a
 * larger one is corrupt). */
#define FSM_GROUP_CHECKPOINT_BYTES_CAP (1ull << 30)

/* The largest key value any setting may allow: a watch event carries a
 * value and its previous one in one frame (1 MiB), and a transaction's
 * answer with a get of it must fit key_reply_bytes_max (512 KiB). */
#define FSM_KEY_VALUE_BYTES_CAP (256u << 10)

/* The settings as applied (0 fields: never set). */
void fsm_settings_get(const struct fsm *f, struct fsm_settings *out);

/* The server-wide cap on retained channel bytes in force. */
uint64_t fsm_channels_bytes_max(const struct fsm *f);

/* The bytes of what the state holds in bulk (channels' retained messages,
 * keys with their values and history, groups' items and checkpoints),
 * kept as it changes: an O(1) estimate of how large a snapshot image of
 * it would be at least, for a state that grew since its last one. */
uint64_t fsm_bulk_bytes(const struct fsm *f);

/* The bound on one group checkpoint in force (the setting, else the
 * option). */
uint64_t fsm_group_checkpoint_bytes_max(const struct fsm *f);

/* The key history's bounds in force (the settings, else the options). */
uint64_t fsm_key_history_max(const struct fsm *f);
uint64_t fsm_key_history_bytes_max(const struct fsm *f);

/* The bound on one key's value in force. */
uint64_t fsm_key_value_bytes_max(const struct fsm *f);

/* Builds a Settings command (the leader writes its flags' values). Same
 * contract as fsm_command_encode_request. */
size_t fsm_command_encode_settings(uint64_t time_ms,
                                   const struct fsm_settings *s, uint8_t *buf,
                                   size_t cap);

/* -------------------------------------------------------------- streams */

/* What subscriptions read (node/subscribe.c): retained windows as this
 * replica has applied them. Everything returned borrows fsm memory until
 * the next fsm_apply or fsm_snapshot_decode. */
struct window;

/* A channel as a subscription sees it: its window, the first offset a
 * reader may have (messages past max_age count as gone even before a
 * publish evicts them) and the log index of the newest evicted message
 * (0 if none). */
struct fsm_stream {
  const char *name; /* NUL-terminated */
  size_t name_len;
  const struct window *window;
  uint64_t first;
  uint64_t evicted_index;
  /* The log index that created the channel (0 if unknown: restored from
   * an older image): a channel deleted and created again differs. */
  uint64_t created_index;
};

/* A channel deleted lately: what a subscription that never applied the
 * deletion (resumed on another replica, or on one that installed a
 * snapshot since) needs to tell that it missed messages. */
struct fsm_channel_gone {
  char *name;
  size_t name_len;
  uint64_t last_index;  /* its last message's log index (0: it had none) */
  uint64_t last_offset; /* that message's offset */
  uint64_t deleted_index;
};

/* The record keeps the last FSM_CHANNELS_GONE_MAX deletions. */
#define FSM_CHANNELS_GONE_MAX 1024

/* The deletions kept, oldest first (*n of them), and in *forgotten the
 * newest deletion index dropped from the record (0: none): a deletion
 * after an index below it may be missing from the record. */
const struct fsm_channel_gone *fsm_channels_gone(const struct fsm *f, size_t *n,
                                                 uint64_t *forgotten);

/* A read that names an item the reader has of a stream (known_index,
 * the log index that appended it; 0: none): the stream of that name must
 * be the one the item is in, i.e. exist (created_index not NULL) and
 * have been created at or before it. Otherwise the stream read before was
 * deleted, and maybe created again: SYNOD_ENOTFOUND with msg, never a
 * silent read of another stream at the reader's offset. A replica that
 * has not applied known_index yet (a stale read) cannot tell:
 * SYNOD_EUNAVAILABLE. */
int fsm_known_check(const struct fsm *f, const char *what, const char *name,
                    const uint64_t *created_index, uint64_t known_index,
                    char *msg);

/* Channel `name` into *out; false if there is none. */
bool fsm_channel_stream(const struct fsm *f, const char *name, size_t len,
                        struct fsm_stream *out);

/* Calls cb for each channel whose name starts with prefix ("" = all), in
 * name order. */
void fsm_channel_streams(const struct fsm *f, const char *prefix, size_t len,
                         void (*cb)(void *arg, const struct fsm_stream *st),
                         void *arg);

/* Checks a channel name (or with `prefix`, a prefix, which may be ""):
 * UTF-8, at most the name limit. Returns 0 or SYNOD_EINVAL with why in
 * msg (SYNOD_ERRMSG_MAX bytes). */
int fsm_channel_name_check(const struct fsm *f, const char *name, size_t len,
                           bool prefix, char *msg);

/* The offset durable cursor `cursor` of channel `name` holds; false if
 * the channel or the cursor does not exist. */
bool fsm_channel_cursor(const struct fsm *f, const char *name, size_t len,
                        const char *cursor, uint64_t *offset);

/* ---------------------------------------------------------- key history */

/* The key history as watches read it: one retained item per revision, at
 * window position == revision, so "watch from revision R" is a seek to R,
 * and R below `first` is SYNOD_ECOMPACTED with `first` as the oldest
 * available revision. Bounded by key_history_max events and
 * key_history_bytes_max bytes; the newest revision is always kept. An
 * item is opaque: read the events with fsm_key_iter. */
void fsm_key_stream(const struct fsm *f, struct fsm_stream *out);

/* The last revision issued (0: none yet). */
uint64_t fsm_key_revision(const struct fsm *f);

/* A key as the history records it. Pointers borrow fsm memory until the
 * next fsm_apply or fsm_snapshot_decode. */
struct fsm_kv {
  const uint8_t *key; /* not NUL-terminated in general */
  size_t key_len;
  const uint8_t *value;
  size_t value_len;
  uint64_t create_revision;
  uint64_t mod_revision;
  uint64_t version;
  uint64_t session_id; /* bound to; 0 = none */
};

/* One change: a put (kv is the key as written, its mod_revision the
 * revision) or a delete (kv holds only the key). prev is the key before
 * the change: always there for a delete, for a put when the key existed
 * (so a watcher can ask for previous values). index and time_ms are the
 * log index and cluster time of the entry that made the revision. */
struct fsm_key_event {
  uint64_t revision;
  uint64_t index;
  uint64_t time_ms;
  bool deleted;
  struct fsm_kv kv;
  bool has_prev;
  struct fsm_kv prev;
};

/* Reads events in revision order (a revision's events in the order they
 * were made; a session end's in the order the session bound its keys).
 * Fields are private. Invalidated by the next fsm_apply or
 * fsm_snapshot_decode. */
struct fsm_key_iter {
  const struct fsm *f;
  struct window_iter wit;
  uint64_t revision, index, time_ms;
  const uint8_t *p, *end; /* the encoded events left of the revision */
  uint64_t left;          /* events left of the revision */
  const void *grave;      /* a session end's keys: the next one */
};

/* Positions it at the first event of max(revision, first retained). */
void fsm_key_iter_seek(const struct fsm *f, uint64_t revision,
                       struct fsm_key_iter *it);

/* The next event; false past the newest. */
bool fsm_key_iter_next(struct fsm_key_iter *it, struct fsm_key_event *out);

/* Checks a key (or with `prefix`, a prefix, which may be empty): UTF-8,
 * no NUL byte, at most FSM_KEY_BYTES_MAX bytes. Returns 0 or SYNOD_EINVAL
 * with why in msg (SYNOD_ERRMSG_MAX bytes). */
int fsm_key_check(const uint8_t *key, size_t len, bool prefix, char *msg);

/* --------------------------------------------------------------- groups */

/* A group's stream as a subscription sees it (fsm_stream: window, first
 * retained offset, evicted and created index); items are opaque bytes:
 * read them with fsm_group_item_decode. false if there is no group. */
bool fsm_group_stream(const struct fsm *f, const char *name, size_t len,
                      struct fsm_stream *out);

enum fsm_group_item_kind {
  FSM_GROUP_VIEW = 1,          /* a view change */
  FSM_GROUP_MESSAGE = 2,       /* a message, to all or to one member */
  FSM_GROUP_STATE_REQUEST = 3, /* to the coordinator: a member asks */
  FSM_GROUP_CHECKPOINT = 4,    /* a new checkpoint was stored */
};

/* One group item, decoded. Strings are not NUL-terminated and, like
 * data, point into the window: valid while the window_item was. */
struct fsm_group_item {
  enum fsm_group_item_kind kind;
  uint64_t offset, index, time_ms;
  /* MESSAGE: the target member ("" = every member). STATE_REQUEST: the
   * coordinator asked (== from when no one else is left to ask). */
  const char *to;
  size_t to_len;
  /* MESSAGE: the sending member ("" = none named). STATE_REQUEST: the
   * member asking. CHECKPOINT: the member that stored it. */
  const char *from;
  size_t from_len;
  const uint8_t *data; /* MESSAGE */
  size_t len;
  /* VIEW: its id, its member count, and the changes from the view
   * before (read them with fsm_group_change_next). */
  uint64_t view_id;
  uint32_t members, joined, left;
  bool left_full; /* left members carry data, session and joined offset */
  const uint8_t *changes, *changes_end;
  uint64_t checkpoint_offset, checkpoint_bytes; /* CHECKPOINT */
};

/* Decodes the item `wi` of a group window into *out. Returns 0, or -1 if
 * the bytes are not a group item (never for a live group's window). */
int fsm_group_item_decode(const struct window_item *wi,
                          struct fsm_group_item *out);

/* True if the item is a state request addressed to its own requester:
 * the EMPTY answer (it became the coordinator while it waited). */
bool fsm_group_item_empty(const struct fsm_group_item *it);

/* True if a subscription of `member` delivers the item: everything but
 * messages and state requests addressed to another member. */
bool fsm_group_item_for(const struct fsm_group_item *it, const char *member,
                        size_t len);

/* One change of a VIEW item: a member that joined (with its data and
 * session) or, with left, one that left (name only). */
struct fsm_group_change {
  bool left;
  /* A join, or a leave recorded in full (fsm_group_item.left_full): data,
   * session_id and joined_offset are the member's. */
  bool full;
  const char *name;
  size_t name_len;
  const uint8_t *data;
  size_t data_len;
  uint64_t session_id;
  uint64_t joined_offset; /* of the view that added it */
};

/* Reads the changes of a VIEW item: joined ones first, in join order,
 * then left ones. Fields are private. */
struct fsm_group_change_iter {
  const uint8_t *p, *end;
  uint32_t i, joined, n;
  bool left_full;
  uint64_t offset;
};
void fsm_group_changes(const struct fsm_group_item *it,
                       struct fsm_group_change_iter *ci);
/* The next change; false at the end. */
bool fsm_group_change_next(struct fsm_group_change_iter *ci,
                           struct fsm_group_change *out);

/* The item as a synod.GroupItem, malloc'ed (its strings and data borrow
 * the window like the item); free it with fsm_group_item_pb_free. */
Synod__GroupItem *fsm_group_item_pb(const struct fsm_group_item *it);
void fsm_group_item_pb_free(Synod__GroupItem *pb);

/* A current member, in join order (the first is the coordinator). */
struct fsm_group_member_view {
  const char *name; /* NUL-terminated */
  const uint8_t *data;
  size_t data_len;
  uint64_t session_id;
  uint64_t joined_offset;
};

/* The current view of group `name`: calls fn for each member in join
 * order, sets *view_id and *view_offset (its item), returns the member
 * count; 0 if there is no group. */
uint32_t fsm_group_view(const struct fsm *f, const char *name, size_t len,
                        uint64_t *view_id, uint64_t *view_offset,
                        void (*fn)(void *arg,
                                   const struct fsm_group_member_view *m),
                        void *arg);

/* The members of group `name` in the view in effect just before offset
 * `at` (after every item below it), in join order, through fn (borrowing
 * the state machine's memory until the next apply), and that view's id
 * in *view_id: the current view undone, newest first, by the retained
 * view items at or after `at`. Exact for every `at` from the first
 * retained offset to the next one. Returns 0, or SYNOD_ENOTFOUND (no
 * group), SYNOD_ERANGE (`at` past the next offset), SYNOD_ECOMPACTED
 * (`at` below the first retained offset: a change between them is gone),
 * SYNOD_EUNAVAILABLE (a view item from an image of an older server names
 * a member that left by its name alone, and it joined before the retained
 * window), SYNOD_ENOMEM. */
int fsm_group_view_at(const struct fsm *f, const char *name, size_t len,
                      uint64_t at, uint64_t *view_id,
                      void (*fn)(void *arg,
                                 const struct fsm_group_member_view *m),
                      void *arg);

/* The group's latest checkpoint; false if none. data points into the
 * fsm until the next apply. */
struct fsm_group_checkpoint {
  uint64_t offset; /* the item it reflects */
  const uint8_t *data;
  size_t len;
  uint64_t index, time_ms;
  const char *member;
  bool usable; /* every item after offset is retained */
};
bool fsm_group_checkpoint_get(const struct fsm *f, const char *name, size_t len,
                              struct fsm_group_checkpoint *out);

/* ---------------------------------------------------------------- stats */

/* Counts for metrics. None of them is in the image or shapes an answer:
 * apply keeps them in O(1) per change and fsm_snapshot_decode rebuilds the
 * gauges, so reading them never walks the state. */
struct fsm_stats {
  /* Gauges: the state now. */
  uint64_t sessions;     /* open */
  uint64_t locks_held;   /* locks with a holder */
  uint64_t lock_waiters; /* queued acquires, over all locks */
  uint64_t counters;
  uint64_t elections;     /* each has a leader: one exists while it has
                             candidates, and the first of them leads */
  uint64_t keys;          /* live */
  uint64_t keys_bytes;    /* their names and values */
  uint64_t key_work_keys; /* keys of ended sessions still to take out */
  uint64_t groups;        /* each has at least one member */
  uint64_t group_members; /* memberships over every group */
  uint64_t groups_bytes;  /* items, checkpoints and uploads retained */
  /* Totals since fsm_new on this replica, kept across restores (they
   * count what this replica applied, so they never go down). */
  uint64_t sessions_opened;
  uint64_t sessions_expired;
  uint64_t lock_grants; /* new holders: immediate and queued acquires */
  /* How long each queued acquire waited until its grant, in cluster time
   * (entry stamps, ms resolution). Acquires queued before a restore from
   * a snapshot are not observed: the image does not keep when they
   * queued. */
  struct histogram lock_wait;
};

/* Fills *out. O(1). */
void fsm_stats_get(const struct fsm *f, struct fsm_stats *out);

/* ------------------------------------------------------------ directory */

#define FSM_MEMBER_NAME_MAX 63
#define FSM_MEMBER_ADDRESS_MAX 127

/* A replica as the replicated directory knows it. Strings point into the
 * fsm; valid until the next fsm_apply or fsm_snapshot_decode. */
struct fsm_member_info {
  uint64_t id;
  const char *name;
  const char *peer_address;
  const char *client_address;
};

/* Looks up a replica by core id. Returns true and fills *out if known. */
bool fsm_member_get(const struct fsm *f, uint64_t id,
                    struct fsm_member_info *out);

/* Calls fn for each replica in the directory, in id order; fn must not
 * change the fsm. */
void fsm_members_each(const struct fsm *f,
                      void (*fn)(void *arg, const struct fsm_member_info *m),
                      void *arg);

/* Read-only views of the state for status pages (never for decisions:
 * they are local reads of this replica's applied state). Each calls fn for
 * at most `max` items, in name (sessions: id) order, and returns how many
 * there are in all. The pointers borrow fsm memory until the next apply;
 * fn must not change the fsm. */
struct fsm_lock_view {
  const char *name;
  size_t name_len;
  bool held; /* false while only in lock-delay */
  uint64_t session_id;
  uint64_t owner_id;
  uint64_t token;
  uint32_t hold_count;
  uint32_t waiters;
};
size_t fsm_locks_view(const struct fsm *f, size_t max,
                      void (*fn)(void *arg, const struct fsm_lock_view *v),
                      void *arg);

struct fsm_session_view {
  uint64_t id;
  const char *client_name; /* "" if none */
  uint32_t ttl_ms;
  uint64_t expires_ms; /* cluster time, if not kept alive before */
  uint32_t locks_held;
};
size_t fsm_sessions_view(const struct fsm *f, size_t max,
                         void (*fn)(void *arg,
                                    const struct fsm_session_view *v),
                         void *arg);
/* One session as fsm_sessions_view shows it (client_name points into the
 * fsm: valid until the next fsm_apply); false if it is unknown or ended.
 * A lookup, not a walk: the HTTP API's GET /v1/sessions/ID. */
bool fsm_session_view_get(const struct fsm *f, uint64_t id,
                          struct fsm_session_view *out);

struct fsm_election_view {
  const char *name;
  size_t name_len;
  const uint8_t *value; /* the leader's */
  size_t value_len;
  uint64_t session_id; /* the leader's */
  uint64_t revision;   /* index at which it took office */
  uint64_t since_ms;   /* cluster time then; 0 if unknown */
  uint32_t candidates;
};
size_t fsm_elections_view(const struct fsm *f, size_t max,
                          void (*fn)(void *arg,
                                     const struct fsm_election_view *v),
                          void *arg);

/* A Command that records (or with remove, forgets) a replica in the
 * directory. Oversized names or addresses are cut to the maxima above.
 * Same buffer contract as the encoders below. */
size_t fsm_command_encode_member(uint64_t time_ms,
                                 const struct fsm_member_info *m, bool remove,
                                 uint8_t *buf, size_t cap);

/* Encode helpers for the shell and the simulator: a Command stamped
 * time_ms carrying req, or a Tick with n session ids. Each writes into buf
 * if it fits in cap bytes and returns the encoded length, which may exceed
 * cap (then nothing is written; call again with a larger buffer). */
size_t fsm_command_encode_request(uint64_t time_ms, const Synod__Request *req,
                                  uint8_t *buf, size_t cap);
size_t fsm_command_encode_tick(uint64_t time_ms, const uint64_t *session_ids,
                               size_t n, uint8_t *buf, size_t cap);

#endif
