/* The state machine's internal objects and the functions its files share.
 * Not for use outside server/fsm (tests excepted). */
#ifndef SYNOD_FSM_INT_H
#define SYNOD_FSM_INT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "fsm.h"
#include "fsm.pb-c.h"
#include "otree.h"
#include "pb_arena.h"
#include "window.h"
#include "synod.h"

#define FSM_CONTAINER(ptr, type, member)                                       \
  ((type *)((char *)(ptr)-offsetof(type, member)))

/* A circular doubly linked list; an empty head points at itself. */
struct fsm_list {
  struct fsm_list *prev;
  struct fsm_list *next;
};

void fsm_list_init(struct fsm_list *head);
void fsm_list_push_back(struct fsm_list *head, struct fsm_list *n);
void fsm_list_remove(struct fsm_list *n);
static inline int fsm_list_empty(const struct fsm_list *head) {
  return head->next == head;
}

/* Something due at a cluster time. Timers sort by (due_ms, kind, id of the
 * owner), which is the order fsm_apply processes them in. */
enum fsm_timer_kind {
  FSM_TIMER_SESSION = 0, /* session expiry */
  FSM_TIMER_WAITER = 1,  /* acquire timeout */
  FSM_TIMER_DELAY = 2,   /* end of a lock-delay */
};

struct fsm_timer {
  struct otree_node node; /* in fsm->timers while armed */
  uint64_t due_ms;
  uint8_t kind; /* enum fsm_timer_kind */
  uint8_t armed;
};

/* A recorded answer: packed synod.Response, or pending (data NULL). */
struct fsm_result {
  uint64_t sequence;
  uint8_t *data;
  size_t len;
  int pending;
};

struct fsm_session {
  struct otree_node by_id;
  struct fsm_timer expiry; /* due = keepalive_ms + ttl_ms + 1 */
  uint64_t id;             /* the log index of its SessionOpen */
  uint32_t ttl_ms;
  uint64_t keepalive_ms; /* <= fsm time */
  char *client_name;
  /* Exactly-once window: results ascending by sequence, every one above
   * sequence_floor; sequences <= sequence_floor are forgotten. */
  uint64_t sequence_floor;
  struct fsm_result *results;
  uint32_t results_len; /* <= results_per_session_max */
  uint32_t results_cap;
  struct fsm_list locks;       /* fsm_lock.holder_link, unordered */
  struct fsm_list waiters;     /* fsm_waiter.session_link, unordered */
  struct fsm_list candidacies; /* fsm_candidate.session_link, unordered */
  struct fsm_key_lease *lease; /* its bound keys; NULL if it never bound */
  struct fsm_list groups;      /* fsm_group_member.session_link, unordered */
};

struct fsm_waiter {
  struct fsm_list lock_link;    /* in lock->waiters, FIFO */
  struct fsm_list session_link; /* in session->waiters */
  struct fsm_timer timeout;     /* due = deadline_ms */
  struct fsm_lock *lock;
  struct fsm_session *session;
  uint64_t owner_id;
  uint64_t sequence; /* of its LockAcquire: answers go to it */
  uint32_t lock_delay_ms;
  /* Cluster time it queued at, for fsm_stats only (not in the image);
   * UINT64_MAX when restored from one. */
  uint64_t queued_ms;
};

/* Invariants: holder != NULL <=> hold_count > 0; holder == NULL with no
 * waiters only while in lock-delay (delay.armed); otherwise deleted. */
struct fsm_lock {
  struct otree_node by_name;
  struct fsm_timer delay; /* armed: free until delay.due_ms */
  char *name;
  size_t name_len;
  struct fsm_session *holder;
  struct fsm_list holder_link; /* in holder->locks */
  uint64_t owner_id;
  uint64_t token; /* of the current grant; 0 when free */
  uint32_t hold_count;
  uint32_t lock_delay_ms;  /* the holder's, applied when its session expires */
  struct fsm_list waiters; /* fsm_waiter.lock_link, FIFO */
  uint32_t waiters_len;
};

/* A replica in the directory. Strings owned. */
struct fsm_member {
  struct otree_node by_id;
  uint64_t id;
  char *name;
  char *peer_address;
  char *client_address;
};

struct fsm_counter {
  struct otree_node by_name;
  char *name;
  size_t name_len;
  int64_t value;
};

struct fsm_candidate {
  struct fsm_list election_link; /* FIFO: the first leads */
  struct fsm_list session_link;
  struct fsm_election *election;
  struct fsm_session *session;
  uint8_t *value;
  size_t value_len;
};

/* Exists while it has candidates. */
struct fsm_election {
  struct otree_node by_name;
  char *name;
  size_t name_len;
  uint64_t revision; /* index at which the current leader took office */
  uint64_t since_ms; /* cluster time then; 0 if unknown (older images) */
  struct fsm_list candidates;
  uint32_t candidates_len;
};

/* A key history item's first byte (kv_history.c). */
#define FSM_KEY_ITEM_EVENTS 0x00
#define FSM_KEY_ITEM_GRAVE 0x01

/* The revision a write is building: its events, encoded (kv_history.c). */
struct fsm_key_rev {
  uint8_t *buf;
  size_t len, cap;
  uint64_t events;
};

struct fsm {
  struct fsm_options opt; /* resolved: no zero field */
  uint64_t applied_index;
  uint64_t time_ms;       /* never decreases */
  uint64_t token_last;    /* every fencing token issued is <= token_last */
  uint64_t index;         /* the entry being applied */
  struct otree sessions;  /* fsm_session by id */
  struct otree locks;     /* fsm_lock by name */
  struct otree counters;  /* fsm_counter by name */
  struct otree elections; /* fsm_election by name */
  struct otree members;   /* fsm_member by id */
  struct otree channels;  /* fsm_channel by name */
  struct fsm_settings settings; /* replicated; 0 fields: the options' */
  uint64_t channels_bytes;      /* payload retained over every channel */
  /* Channels deleted lately, oldest first (fsm_channels_gone). */
  struct fsm_channel_gone *channels_gone;
  uint32_t channels_gone_n;
  uint64_t channels_gone_forgotten;
  /* Keys: every live key, and dead ones not yet taken out (see struct
   * fsm_key), by key bytes. keys_live and keys_bytes count live keys. */
  struct otree keys;
  uint64_t keys_live;
  uint64_t keys_bytes;
  uint64_t key_revision; /* the last issued; 0 = none */
  /* One item per revision, position == revision; events and bytes are
   * the retained revisions' (kv_history.c's measure, the same on every
   * replica whatever is in memory). */
  struct window key_history;
  uint64_t key_history_events;
  uint64_t key_history_bytes;
  struct otree key_graves;    /* fsm_key_lease by ended_revision */
  struct fsm_list key_work;   /* fsm_key_lease.work_link, FIFO */
  uint64_t key_work_keys;     /* keys the work list still holds */
  uint64_t key_trim_budget;   /* revisions the entry may still drop */
  struct fsm_key_rev key_rev; /* scratch of the write being applied */
  struct otree groups;        /* fsm_group by name */
  uint64_t group_members;     /* memberships over every group */
  /* Retained item bytes, checkpoints and open uploads (their total_bytes)
   * over every group: at most groups_bytes_max, but for views, state
   * requests and notices, which are never refused. */
  uint64_t groups_bytes;
  struct otree timers; /* armed fsm_timer by (due, kind, id) */
  /* Derived, for metrics: the tree-count fields are filled when read;
   * locks_held and lock_waiters are kept by lock.c (reset by
   * fsm_state_init, rebuilt by the snapshot loaders); totals only grow. */
  struct fsm_stats stats;
  /* Output of the current apply: events and the blocks they point into,
   * freed at the start of the next apply. */
  struct fsm_event *events;
  size_t events_len, events_cap;
  void **blocks;
  size_t blocks_len, blocks_cap;
  /* The command being applied is unpacked into this, reset after it. */
  struct pb_arena unpack;
  /* fsm_apply's SYNOD_EPROTO: the field this build does not know. */
  char unknown[128];
};

/* The format of the Commands this build writes (fsm.proto, Command). */
#define FSM_COMMAND_FORMAT 1

/* Packs c with this build's format into buf if it fits in cap bytes;
 * returns the packed length either way. */
size_t fsm_command_pack(const Synod__Fsm__Command *c, uint8_t *buf, size_t cap);

/* A name as a key for the name-ordered trees. */
struct fsm_name {
  const char *s;
  size_t len;
};

/* A channel's limits, resolved: no zero that means a default. */
struct fsm_channel_limits {
  uint64_t max_messages;
  uint64_t max_bytes;
  uint64_t max_age_ms; /* 0 = none */
  uint32_t max_message_bytes;
  bool refuse_when_full;
};

/* A message id a session-less publisher gave, deduplicated for a while. */
struct fsm_channel_id {
  char *id;
  uint64_t first_offset, last_offset, index, time_ms;
};

/* A durable cursor: a consumer's committed offset. */
struct fsm_channel_cursor {
  char *name;
  uint64_t offset;
  uint64_t index; /* of the commit that set it */
};

/* Invariant: window.bytes is part of fsm.channels_bytes; ids hold the
 * ids_n most recent message ids, oldest at ids_head; cursors are sorted
 * by name, offsets below window.next. */
struct fsm_channel {
  struct otree_node by_name;
  char *name;
  size_t name_len;
  struct fsm_channel_limits limits;
  struct window window;       /* offsets are its positions */
  struct fsm_channel_id *ids; /* ring of ids_cap (channel_ids_max) */
  uint32_t ids_cap;
  uint32_t ids_head;
  uint32_t ids_n;
  struct fsm_channel_cursor *cursors;
  uint32_t cursors_n;
  uint64_t created_index; /* the entry that created it; 0 if unknown */
};

#define FSM_CHANNEL_CURSORS_MAX 1024

/* ----- keys */

struct fsm_key_lease;

/* A key, its name and value in one allocation: data holds the key, a NUL
 * (keys have none of their own), then the value.
 *
 * Live: lease == NULL or lease->ended_revision == 0; then it is in
 * f->keys. Dead: its lease ended, so it is one of the deletes of that
 * revision, owned by the lease; it stays in f->keys (hidden from every
 * read and write) until the work list takes it out, or a write of the
 * same key does. */
struct fsm_key {
  struct otree_node by_key; /* in f->keys while in_tree */
  uint64_t create_revision; /* <= mod_revision */
  uint64_t mod_revision;    /* <= f->key_revision */
  uint64_t version;         /* >= 1 */
  uint32_t value_len;
  uint16_t key_len; /* 1..FSM_KEY_BYTES_MAX */
  uint8_t in_tree : 1;
  uint8_t bound : 1; /* allocated behind a struct fsm_key_binding */
  /* At offset 55: a key of 12 bytes with a value of 100 takes a 176-byte
   * chunk of glibc's (55 + 12 + NUL + 100 + its 8-byte header, in 16s);
   * one byte more and it would take 192. */
  uint8_t data[];
};
_Static_assert(FSM_KEY_BYTES_MAX <= UINT16_MAX, "a key's length fits key_len");
_Static_assert(offsetof(struct fsm_key, data) == 55,
               "struct fsm_key's fields end where its comment says");

/* What a key bound to a session (and then its grave) carries besides,
 * allocated right in front of its struct fsm_key: 24 bytes that most
 * keys, bound to nothing, do without. */
struct fsm_key_binding {
  struct fsm_list lease_link; /* in lease->keys */
  struct fsm_key_lease *lease;
};
/* The key right behind it stays aligned. */
_Static_assert(sizeof(struct fsm_key_binding) % _Alignof(struct fsm_key) == 0,
               "struct fsm_key_binding keeps struct fsm_key aligned");

static inline struct fsm_key_binding *fsm_key_binding(const struct fsm_key *k) {
  return k->bound ? (struct fsm_key_binding *)((uintptr_t)k -
                                               sizeof(struct fsm_key_binding))
                  : NULL;
}

/* The lease of a bound key (its session's, or its grave), or NULL. */
static inline struct fsm_key_lease *fsm_key_lease(const struct fsm_key *k) {
  return k->bound ? fsm_key_binding(k)->lease : NULL;
}

/* The key of a lease_link in a lease's list. */
static inline struct fsm_key *fsm_key_of_link(const struct fsm_list *x) {
  return (struct fsm_key *)((uintptr_t)FSM_CONTAINER(x, struct fsm_key_binding,
                                                     lease_link) +
                            sizeof(struct fsm_key_binding));
}

static inline const uint8_t *fsm_key_value(const struct fsm_key *k) {
  return k->data + k->key_len + 1;
}

/* The keys bound to one session, in (mod_revision, key) order: the
 * order the session bound them, and the order of their deletes when it
 * ends.
 *
 * While the session lives (ended_revision == 0) the session owns it.
 * When it ends, it becomes a grave: its keys are the deletes of revision
 * ended_revision, retained (in f->key_graves) while the history keeps
 * that revision, and on f->key_work while keys remain to take out of
 * f->keys (those before `cursor` are out) or, once the history dropped
 * the revision, to free. */
struct fsm_key_lease {
  struct otree_node by_revision; /* in f->key_graves while retained */
  struct fsm_list work_link;     /* in f->key_work while in_work */
  struct fsm_list keys;          /* fsm_key_binding.lease_link */
  struct fsm_list *cursor;       /* the next key to take out of f->keys */
  uint64_t session_id;
  uint64_t ended_revision; /* 0 while the session lives */
  uint64_t keys_n;
  uint64_t bytes;     /* their key and value lengths */
  uint64_t work_left; /* keys the work list still steps over or frees */
  uint8_t retained, in_work;
};

struct fsm_arena;

/* ----- groups (group.c) */

/* A membership: a member name in one group, held by one session. */
struct fsm_group_member {
  struct fsm_list group_link;   /* in group->members, join order */
  struct fsm_list session_link; /* in session->groups */
  struct fsm_list request_link; /* in group->requests while requesting */
  struct fsm_group *group;
  struct fsm_session *session;
  char *name;
  size_t name_len;
  uint8_t *data;
  size_t data_len;
  uint64_t joined_offset;  /* of the view that added it */
  uint64_t request_offset; /* of its pending state request; 0 = none */
};

/* A checkpoint upload in progress: one per (group, session). Its
 * total_bytes are counted in fsm.groups_bytes from the first chunk. */
struct fsm_group_upload {
  uint64_t session_id;
  char *member;
  uint64_t offset;
  uint64_t total;
  uint64_t received; /* <= total */
  uint8_t *data;     /* total bytes, the first `received` written */
};

/* Invariants: members non-empty (an empty group is deleted); view_id
 * >= 1; window.bytes + ckpt_len + the uploads' totals are part of
 * fsm.groups_bytes; uploads sorted by session id; requests hold exactly
 * the members with request_offset != 0, in request order. */
struct fsm_group {
  struct otree_node by_name;
  char *name;
  size_t name_len;
  uint64_t view_id;
  uint64_t view_offset; /* the current view's item */
  struct fsm_list members;
  uint32_t members_n;
  struct window window;
  uint64_t created_index;
  bool has_ckpt;
  uint64_t ckpt_offset, ckpt_index, ckpt_time_ms;
  /* Payload bytes of the retained items after ckpt_offset (derived:
   * counted again at each new checkpoint and when an image loads). */
  uint64_t after_ckpt_bytes;
  /* An eviction just made the checkpoint stale (set by group_room, taken
   * by ckpt_refresh within the same request: never across entries). */
  bool ckpt_went_stale;
  uint8_t *ckpt;
  size_t ckpt_len;
  char *ckpt_member;
  struct fsm_group_upload *uploads;
  uint32_t uploads_n;
  struct fsm_list requests;   /* fsm_group_member.request_link, FIFO */
  struct fsm_channel_id *ids; /* ring of ids_cap (channel_ids_max) */
  uint32_t ids_cap, ids_head, ids_n;
};

/* Item kinds: an item's first byte (group.c packs the rest). */
#define FSM_GROUP_ITEM_VIEW 1
#define FSM_GROUP_ITEM_MESSAGE 2
#define FSM_GROUP_ITEM_STATE_REQUEST 3
#define FSM_GROUP_ITEM_CHECKPOINT 4
/* A VIEW whose left members carry their whole record (group.c's header);
 * what group.c writes since; kind 1 items, from older images, decode
 * too. */
#define FSM_GROUP_ITEM_VIEW_FULL 5

/* The reply a handler builds: resp and the body message it points at. */
struct fsm_reply {
  Synod__Response resp;
  Synod__Error error;
  char msg[SYNOD_ERRMSG_MAX];
  int pending; /* a queued acquire: no answer yet */
  union {
    Synod__SessionOpenReply open;
    Synod__SessionKeepaliveReply keepalive;
    Synod__LockAcquireReply acquire;
    Synod__LockReleaseReply release;
    Synod__LockInfo lock_info;
    Synod__LockCheckReply check;
    Synod__CounterValue value;
    Synod__CounterCasReply cas;
    Synod__CounterDeleteReply del;
    Synod__CounterListReply list;
    Synod__ElectionCampaignReply campaign;
    Synod__ChannelPublishReply publish;
    Synod__ChannelMessages messages;
    Synod__ChannelInfo channel;
    Synod__ChannelListReply channels;
    Synod__ChannelCursor cursor;
    Synod__KeyPutReply key_put;
    Synod__KeyGetReply key_get;
    Synod__KeyDeleteReply key_del;
    Synod__KeyListReply key_list;
    Synod__KeyTxnReply key_txn;
    Synod__GroupJoinReply group_join;
    Synod__GroupLeaveReply group_leave;
    Synod__GroupSendReply group_send;
    Synod__GroupCheckpointReply group_ckpt;
    Synod__GroupInfo group_info;
    Synod__GroupListReply group_list;
    Synod__GroupCheckpointChunk group_chunk;
    Synod__GroupItems group_items;
  } u;
  Synod__GroupView gview;
  Synod__GroupState gstate;
  Synod__GroupCheckpointInfo gckpt;
  Synod__KeyValue kv, prev; /* the key replies' */
  Synod__ElectionInfo info;
  Synod__ChannelLimits limits; /* ChannelInfo's */
  void *scratch;               /* freed after packing */
  void *scratch2;              /* too */
  struct fsm_arena *arena;     /* freed with its allocations, too */
};

typedef int (*fsm_handler_fn)(struct fsm *f, struct fsm_session *s,
                              const Synod__Request *req, struct fsm_reply *r);

/* ----- memory: allocation failure aborts (see fsm.h) */
void *fsm_xmalloc(size_t n);
void *fsm_xcalloc(size_t n, size_t size);
void *fsm_xrealloc(void *p, size_t n);
char *fsm_xstrndup(const char *s, size_t n);

/* Records the deletion of channel `name` (channel.c). */
void fsm_channel_gone_push(struct fsm *f, const char *name, size_t len,
                           uint64_t last_index, uint64_t last_offset,
                           uint64_t deleted_index);

/* ----- names (name.c) */
int fsm_name_cmp(const struct fsm_name *a, const char *s, size_t len);
/* Validates a lock/counter/election name: 1..name_bytes_max bytes of
 * UTF-8. On failure writes "<what>: ..." into msg; returns SYNOD_EINVAL. */
int fsm_name_check(const struct fsm *f, const char *what, const char *s,
                   size_t len, char *msg);
static inline const char *fsm_str(const char *s) {
  return s ? s : "";
}

/* ----- output (output.c) */
void fsm_output_reset(struct fsm *f);
/* Moves the window of a stream being deleted into event e (output
 * memory); w is left empty, with its positions. */
void fsm_event_window_keep(struct fsm_event *e, struct window *w);
void *fsm_output_alloc(struct fsm *f, size_t n);
const char *fsm_output_strdup(struct fsm *f, const char *s, size_t n);
/* Packs a Response into malloc'ed memory the caller owns. */
uint8_t *fsm_response_pack(const Synod__Response *resp, size_t *len);
/* Packs an Event into output memory. */
const uint8_t *fsm_event_pack(struct fsm *f, const Synod__Event *ev,
                              size_t *len);
struct fsm_event *fsm_event_push(struct fsm *f, enum fsm_event_type type);
/* Finishes r: an error code (if rv != 0) clears the body. */
void fsm_reply_finish(struct fsm_reply *r, int rv);
void fsm_reply_init(struct fsm_reply *r);

/* ----- timers (timer.c) */
/* Returns 0, or -1 (not armed) if a timer with the same key is armed:
 * impossible at run time, a sign of a corrupt image when loading one. */
int fsm_timer_arm(struct fsm *f, struct fsm_timer *t, uint8_t kind,
                  uint64_t due_ms);
void fsm_timer_disarm(struct fsm *f, struct fsm_timer *t);
int fsm_timer_cmp(const void *key, const struct otree_node *n);
/* Processes every timer due at or before f->time_ms, in order. */
void fsm_timers_run(struct fsm *f);

/* ----- sessions (session.c) */
int fsm_session_cmp(const void *key, const struct otree_node *n);
struct fsm_session *fsm_session_find(const struct fsm *f, uint64_t id);
struct fsm_session *fsm_session_insert(struct fsm *f, uint64_t id,
                                       uint32_t ttl_ms, uint64_t keepalive_ms,
                                       const char *name, size_t name_len);
void fsm_session_keepalive(struct fsm *f, struct fsm_session *s);
/* Ends a session: cancels its waits, withdraws its candidacies, releases
 * its locks (with lock-delay when expired), frees it. */
void fsm_session_end(struct fsm *f, struct fsm_session *s, int expired,
                     uint64_t at_ms);
void fsm_session_free(struct fsm_session *s);
/* The recorded result for sequence, or NULL. */
struct fsm_result *fsm_session_result(struct fsm_session *s, uint64_t seq);
/* Records (takes ownership of data; NULL with pending). */
void fsm_session_record(struct fsm *f, struct fsm_session *s, uint64_t seq,
                        uint8_t *data, size_t len, int pending);
int fsm_session_open(struct fsm *f, struct fsm_session *s,
                     const Synod__Request *req, struct fsm_reply *r);
int fsm_session_keepalive_req(struct fsm *f, struct fsm_session *s,
                              const Synod__Request *req, struct fsm_reply *r);
int fsm_session_close(struct fsm *f, struct fsm_session *s,
                      const Synod__Request *req, struct fsm_reply *r);
void fsm_session_tick(struct fsm *f, const Synod__Fsm__Tick *tick);

/* ----- locks (lock.c) */
int fsm_lock_cmp(const void *key, const struct otree_node *n);
int fsm_lock_acquire(struct fsm *f, struct fsm_session *s,
                     const Synod__Request *req, struct fsm_reply *r);
int fsm_lock_release(struct fsm *f, struct fsm_session *s,
                     const Synod__Request *req, struct fsm_reply *r);
int fsm_lock_query(struct fsm *f, struct fsm_session *s,
                   const Synod__Request *req, struct fsm_reply *r);
int fsm_lock_check(struct fsm *f, struct fsm_session *s,
                   const Synod__Request *req, struct fsm_reply *r);
/* Drops l's holder; with delay_from_ms != UINT64_MAX the lock stays free
 * until delay_from_ms + the holder's lock_delay_ms. */
void fsm_lock_unhold(struct fsm *f, struct fsm_lock *l, uint64_t delay_from_ms);
void fsm_lock_delay_end(struct fsm *f, struct fsm_lock *l);
/* Removes a waiter and answers its acquire with code (ETIMEDOUT or
 * ESESSION), then deletes the lock if nothing is left. */
void fsm_waiter_drop(struct fsm *f, struct fsm_waiter *w, int code);
void fsm_lock_free(struct fsm_lock *l);
struct fsm_lock *fsm_lock_new(const char *name, size_t len);
void fsm_lock_grant(struct fsm *f, struct fsm_lock *l, struct fsm_session *s,
                    uint64_t owner_id, uint32_t lock_delay_ms);
void fsm_lock_delete_if_idle(struct fsm *f, struct fsm_lock *l);
/* Whether s has an acquire queued on a lock under `sequence`. */
bool fsm_lock_waiting(const struct fsm_session *s, uint64_t sequence);

/* ----- counters (counter.c) */
int fsm_counter_cmp(const void *key, const struct otree_node *n);
int fsm_member_cmp(const void *key, const struct otree_node *n);
void fsm_member_apply(struct fsm *f, const Synod__Fsm__Member *m);
void fsm_member_free(struct fsm_member *m);
struct fsm_member *fsm_member_put(struct fsm *f, uint64_t id, const char *name,
                                  const char *peer, const char *client);
int fsm_counter_get(struct fsm *f, struct fsm_session *s,
                    const Synod__Request *req, struct fsm_reply *r);
int fsm_counter_set(struct fsm *f, struct fsm_session *s,
                    const Synod__Request *req, struct fsm_reply *r);
int fsm_counter_cas(struct fsm *f, struct fsm_session *s,
                    const Synod__Request *req, struct fsm_reply *r);
int fsm_counter_add(struct fsm *f, struct fsm_session *s,
                    const Synod__Request *req, struct fsm_reply *r);
int fsm_counter_delete(struct fsm *f, struct fsm_session *s,
                       const Synod__Request *req, struct fsm_reply *r);
int fsm_counter_list(struct fsm *f, struct fsm_session *s,
                     const Synod__Request *req, struct fsm_reply *r);
struct fsm_counter *fsm_counter_new(const char *name, size_t len,
                                    int64_t value);
void fsm_counter_free(struct fsm_counter *c);

/* ----- elections (election.c) */
int fsm_election_cmp(const void *key, const struct otree_node *n);
int fsm_election_campaign(struct fsm *f, struct fsm_session *s,
                          const Synod__Request *req, struct fsm_reply *r);
int fsm_election_resign(struct fsm *f, struct fsm_session *s,
                        const Synod__Request *req, struct fsm_reply *r);
int fsm_election_leader(struct fsm *f, struct fsm_session *s,
                        const Synod__Request *req, struct fsm_reply *r);
/* Removes a candidacy; a leader's departure hands office to the next. */
void fsm_candidate_withdraw(struct fsm *f, struct fsm_candidate *c);
void fsm_election_free(struct fsm_election *e);
struct fsm_election *fsm_election_new(const char *name, size_t len);
struct fsm_candidate *fsm_candidate_add(struct fsm_election *e,
                                        struct fsm_session *s,
                                        const uint8_t *value, size_t len);

/* ----- channels (channel.c) */
int fsm_channel_cmp(const void *key, const struct otree_node *n);
struct fsm_channel *fsm_channel_new(struct fsm *f, const char *name, size_t len,
                                    const struct fsm_channel_limits *lim);
void fsm_channel_free(struct fsm_channel *c);
/* Records a message id (the ring's oldest gives way when full). */
void fsm_channel_id_push(struct fsm_channel *c, const char *id, uint64_t first,
                         uint64_t last, uint64_t index, uint64_t time_ms);
int fsm_channel_create(struct fsm *f, struct fsm_session *s,
                       const Synod__Request *req, struct fsm_reply *r);
int fsm_channel_publish(struct fsm *f, struct fsm_session *s,
                        const Synod__Request *req, struct fsm_reply *r);
int fsm_channel_read(struct fsm *f, struct fsm_session *s,
                     const Synod__Request *req, struct fsm_reply *r);
int fsm_channel_info(struct fsm *f, struct fsm_session *s,
                     const Synod__Request *req, struct fsm_reply *r);
int fsm_channel_list(struct fsm *f, struct fsm_session *s,
                     const Synod__Request *req, struct fsm_reply *r);
int fsm_channel_delete(struct fsm *f, struct fsm_session *s,
                       const Synod__Request *req, struct fsm_reply *r);
int fsm_channel_cursor_commit(struct fsm *f, struct fsm_session *s,
                              const Synod__Request *req, struct fsm_reply *r);
int fsm_channel_cursor_get(struct fsm *f, struct fsm_session *s,
                           const Synod__Request *req, struct fsm_reply *r);
/* Sets a cursor (adds it if new; the caller checks the cap). */
void fsm_channel_cursor_put(struct fsm_channel *c, const char *name,
                            uint64_t offset, uint64_t index);

/* ----- keys (kv.c) */
int fsm_key_cmp(const void *key, const struct otree_node *n);
int fsm_key_put(struct fsm *f, struct fsm_session *s, const Synod__Request *req,
                struct fsm_reply *r);
int fsm_key_get(struct fsm *f, struct fsm_session *s, const Synod__Request *req,
                struct fsm_reply *r);
int fsm_key_delete(struct fsm *f, struct fsm_session *s,
                   const Synod__Request *req, struct fsm_reply *r);
int fsm_key_list(struct fsm *f, struct fsm_session *s,
                 const Synod__Request *req, struct fsm_reply *r);
int fsm_key_txn(struct fsm *f, struct fsm_session *s, const Synod__Request *req,
                struct fsm_reply *r);
static inline bool fsm_key_live(const struct fsm_key *k) {
  struct fsm_key_lease *l = fsm_key_lease(k);
  return l == NULL || l->ended_revision == 0;
}
/* The live key, or NULL. */
struct fsm_key *fsm_key_find(const struct fsm *f, const uint8_t *key,
                             size_t len);
/* A key not in any tree or lease yet; `bound` if it will be bound to a
 * session or a grave (fsm_key_bind, or a grave's restore). */
struct fsm_key *fsm_key_new(const uint8_t *key, size_t key_len,
                            const uint8_t *value, size_t value_len, bool bound);
/* Frees k (and its binding, in front of it when bound); k is out of the
 * tree and of its lease's list. Accepts NULL. */
void fsm_key_free(struct fsm_key *k);
/* Adds k to a session's lease (made on first use), in (mod_revision,
 * key) order, or with !ordered at the tail (an image's keys, sorted with
 * fsm_key_lease_sort once all are in). */
void fsm_key_bind(struct fsm_key_lease **lease, uint64_t session_id,
                  struct fsm_key *k, bool ordered);
void fsm_key_lease_sort(struct fsm_key_lease *l);
/* Ends s's keys: all deleted at one new revision (kv_history.c). */
void fsm_keys_session_end(struct fsm *f, struct fsm_session *s);

/* ----- key history (kv_history.c) */
void fsm_key_rev_begin(struct fsm *f);
/* Appends one event to the revision being built: a put of k (prev: the
 * key it replaced, or NULL), or with k == NULL a delete of prev. */
void fsm_key_rev_event(struct fsm *f, const struct fsm_key *k,
                       const struct fsm_key *prev);
/* Issues the revision if it has events; returns it, or 0. */
uint64_t fsm_key_rev_finish(struct fsm *f);
/* An image's session end: appends grave l's revision (its
 * ended_revision, the window's next position); l is in f->key_graves. */
void fsm_key_history_grave(struct fsm *f, struct fsm_key_lease *l,
                           uint64_t index, uint64_t time_ms);
/* At the start of each entry: drops revisions past the history's
 * bounds, and does work-list units, up to key_work_per_entry of each. */
void fsm_keys_work(struct fsm *f);
/* Work remains, or the history is over its bounds: the leader should
 * send Ticks. */
bool fsm_keys_busy(const struct fsm *f);
int fsm_key_grave_cmp(const void *key, const struct otree_node *n);
void fsm_key_lease_free(struct fsm_key_lease *l);
/* Frees every key, lease and the history. */
void fsm_keys_clear(struct fsm *f);
/* Strictly decodes one revision's encoded events (an image's); returns
 * the count, or -1. */
int64_t fsm_key_events_check(const uint8_t *p, size_t len, uint64_t revision);
/* The history measure of a revision: its events and bytes. */
void fsm_key_item_measure(const struct fsm *f, const struct window_item *it,
                          uint64_t *events, uint64_t *bytes);
/* Drops the oldest revisions while over the bounds (keeping the newest)
 * and the entry's budget lasts. */
void fsm_key_history_trim(struct fsm *f);

/* ----- groups (group.c, group_image.c) */
int fsm_group_cmp(const void *key, const struct otree_node *n);
int fsm_group_join(struct fsm *f, struct fsm_session *s,
                   const Synod__Request *req, struct fsm_reply *r);
int fsm_group_leave(struct fsm *f, struct fsm_session *s,
                    const Synod__Request *req, struct fsm_reply *r);
int fsm_group_send(struct fsm *f, struct fsm_session *s,
                   const Synod__Request *req, struct fsm_reply *r);
int fsm_group_checkpoint(struct fsm *f, struct fsm_session *s,
                         const Synod__Request *req, struct fsm_reply *r);
int fsm_group_state_request(struct fsm *f, struct fsm_session *s,
                            const Synod__Request *req, struct fsm_reply *r);
int fsm_group_view_get(struct fsm *f, struct fsm_session *s,
                       const Synod__Request *req, struct fsm_reply *r);
int fsm_group_list(struct fsm *f, struct fsm_session *s,
                   const Synod__Request *req, struct fsm_reply *r);
int fsm_group_checkpoint_read(struct fsm *f, struct fsm_session *s,
                              const Synod__Request *req, struct fsm_reply *r);
int fsm_group_read(struct fsm *f, struct fsm_session *s,
                   const Synod__Request *req, struct fsm_reply *r);
/* Shared by group.c, group_item.c and group_read.c. */
struct fsm_group *fsm_group_find(const struct fsm *f, const char *name,
                                 size_t len);
/* Every item after the checkpoint's offset is retained. */
bool fsm_group_ckpt_usable(const struct fsm_group *g);

/* Counts g->after_ckpt_bytes from the window. */
void fsm_group_after_ckpt_count(struct fsm_group *g);
/* The view of g into v; with an arena, the full member list (borrowing
 * the members' strings). */
void fsm_group_view_fill(const struct fsm_group *g, struct fsm_arena *a,
                         Synod__GroupView *v);
void fsm_group_ckpt_fill(const struct fsm_group *g,
                         Synod__GroupCheckpointInfo *c);
/* Checks a member name; on failure "<what>: member: ..." in msg. */
int fsm_group_member_check(const struct fsm *f, const char *what,
                           const char *member, char *msg);
/* r's arena, made on first use. */
struct fsm_arena *fsm_reply_arena(struct fsm_reply *r);
/* Fills x from it with arena memory (strings copied to be NUL-ended;
 * data borrowed from the window). */
void fsm_group_item_to_pb(const struct fsm_group_item *it, struct fsm_arena *a,
                          Synod__GroupItem *x);
/* Validates the group name of a request (what: its name for messages)
 * into name and len; returns the error from the handler. */
#define FSM_GROUP_NAME(field, what)                                            \
  const char *name = fsm_str(req->field->group);                               \
  size_t len = strlen(name);                                                   \
  int rv = fsm_name_check(f, what, name, len, r->msg);                         \
  if (rv != 0) {                                                               \
    return rv;                                                                 \
  }

/* Ends s's memberships: one new view per group (in name order) without
 * them; groups left empty are deleted. */
void fsm_groups_session_end(struct fsm *f, struct fsm_session *s);
struct fsm_group *fsm_group_new(struct fsm *f, const char *name, size_t len);
void fsm_group_free(struct fsm_group *g);
struct fsm_group_member *
fsm_group_member_add(struct fsm *f, struct fsm_group *g, struct fsm_session *s,
                     const char *name, size_t len, const uint8_t *data,
                     size_t data_len);
void fsm_groups_clear(struct fsm *f);
void fsm_groups_image_encode(const struct fsm *f, struct fsm_arena *a,
                             Synod__Fsm__Image *img);
/* Loads the groups into t (sessions loaded); 0 or -1. */
int fsm_groups_image_load(struct fsm *t, const Synod__Fsm__Image *img);

/* ----- snapshot (snapshot.c, kv_image.c) */
/* Allocations that live until the image is packed. */
struct fsm_arena {
  void **p;
  size_t n, cap;
};
void *fsm_arena_calloc(struct fsm_arena *a, size_t n, size_t size);
/* Frees every allocation and a itself (a may be NULL): for a reply's
 * arena, which fsm_arena_new made. */
struct fsm_arena *fsm_arena_new(void);
void fsm_arena_free(struct fsm_arena *a);
void fsm_keys_image_encode(const struct fsm *f, struct fsm_arena *a,
                           Synod__Fsm__Image *img);
/* Loads keys and their history into t (sessions loaded); 0 or -1. */
int fsm_keys_image_load(struct fsm *t, const Synod__Fsm__Image *img);

/* ----- the whole state (fsm.c) */
void fsm_state_init(struct fsm *f);
void fsm_state_clear(struct fsm *f);

#endif
