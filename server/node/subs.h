/* The subscription engine (subscribe.c; DESIGN.md "Streams"): channel
 * subscriptions, key watches and group subscriptions on one replica,
 * pushed from its applied state machine. It knows nothing of the node
 * that hosts it: it reads the state machine and reaches the rest of the
 * world through struct subs_host (time, whether a leader is known, a
 * ReadIndex round, client connections). server/node hosts one per
 * replica over libuv and client_net; the simulator (tests/sim) hosts one
 * per simulated replica, so the same code runs under its faults. */
#ifndef SYNOD_SUBS_H
#define SYNOD_SUBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fsm.h"
#include "synod.pb-c.h"
#include "u64map.h"

/* Where an in-process subscription (node_subscribe, node_key_watch)
 * sends its messages or key events:
 * the machinery of a client's ChannelSubscribe (positions, the retained
 * window, ECOMPACTED, deletion, the bound on queued bytes), with the
 * consumer's own queue in place of a client connection's. There are no
 * credits: the consumer is paced by its queued bytes alone. Callbacks
 * run on the loop thread, never before node_subscribe returns, and must
 * not call node_unsubscribe (after `ended`, or `started` with an error,
 * the subscription is gone anyway). `arg` is node_subscribe's. */
struct node_sub_sink {
  /* Once. err 0: the subscription runs from r->offset (the first offset
   * it will deliver; r->first_offset and next_offset are the channel's on
   * this replica, 0 while it does not exist here). Otherwise the start
   * failed (SYNOD_ECOMPACTED with the first available offset,
   * SYNOD_ENOTFOUND for an unknown cursor, SYNOD_ENOLEADER or
   * SYNOD_ETIMEDOUT for the ReadIndex round of FROM_NEXT or a cursor)
   * and the subscription is gone. */
  void (*started)(void *arg, int err, const char *msg, uint64_t first_available,
                  const Synod__ChannelSubscribeReply *r);
  /* Messages in the subscription's order, none skipped and none twice,
   * borrowed until the callback returns; `bytes` is their payload.
   * Returns 0, or a SYNOD_E* code if the consumer cannot take them: the
   * subscription then ends (`ended` with that code), so a consumer that
   * resumes after its last message sees no gap. */
  int (*deliver)(void *arg, Synod__ChannelMessage *const *msgs, size_t n,
                 size_t bytes);
  /* The server ended the subscription: SYNOD_ECOMPACTED (its next
   * message was evicted; first_available is the first retained offset),
   * SYNOD_ENOTFOUND (the channel was deleted), SYNOD_ELIMIT (a prefix over
   * 1,024 channels), or deliver's code. The handle is dead after it. */
  void (*ended)(void *arg, int err, const char *msg, uint64_t first_available);
  /* Bytes given to the consumer and not yet taken by it; SIZE_MAX if it
   * is gone (the subscription then waits for node_unsubscribe). */
  size_t (*queued_bytes)(void *arg);
  /* Asks for one node_sub_drained() once fewer than `below` bytes are
   * queued; called only with more than that queued. */
  void (*want_drain)(void *arg, size_t below);
  /* Key watches (node_key_watch) call these in place of started and
   * deliver; a sink used for channels only leaves them NULL (and one for
   * key watches only leaves started and deliver NULL). Once, as
   * `started`: err 0, the watch runs from event r->after_event + 1 of
   * revision r->revision; or SYNOD_ECOMPACTED with the oldest revision
   * retained, SYNOD_ENOLEADER or SYNOD_ETIMEDOUT (the ReadIndex round of
   * a watch from revision 0), and the watch is gone. */
  void (*key_started)(void *arg, int err, const char *msg,
                      uint64_t first_available, const Synod__KeyWatchReply *r);
  /* Events in (revision, event) order, none skipped and none twice,
   * borrowed until the callback returns; `bytes` is their keys' and
   * values' bytes. As deliver otherwise. The watch has looked at every
   * event up to event progress_event of progress_revision (0: all of
   * it): where a consumer that resumes should resume after. n may be 0:
   * the position moved past events the watch does not match (at most
   * about once a second). */
  int (*key_deliver)(void *arg, Synod__KeyWatchEvent *const *events, size_t n,
                     size_t bytes, uint64_t progress_revision,
                     uint32_t progress_event);
  /* Group subscriptions (a client's GroupSubscribe, node_group_subscribe)
   * call these in place of started and deliver; a sink used for no group
   * leaves them NULL. Once, as
   * `started`: err 0, the subscription runs from offset r->offset. Items
   * as key_deliver's events; progress_offset: every offset up to it was
   * looked at (n may be 0, as for key watches). */
  void (*group_started)(void *arg, int err, const char *msg,
                        uint64_t first_available,
                        const Synod__GroupSubscribeReply *r);
  int (*group_deliver)(void *arg, Synod__GroupItem *const *items, size_t n,
                       size_t bytes, uint64_t progress_offset);
};

/* A ReadIndex round's end (the node's read callback): err 0 once this
 * replica has applied every write acknowledged before the round began. */
typedef void (*subs_read_cb)(void *arg, int err, const char *errmsg,
                             const uint8_t *resp, size_t len);

/* What the engine needs of its host. Every call is made on the host's
 * one thread; none may call back into the engine before it returns. */
struct subs_host {
  void *arg; /* every callback's first argument */
  /* Milliseconds of a monotonic clock. */
  uint64_t (*now_ms)(void *arg);
  /* How long this replica has known no leader, or not heard from the
   * one it knows (0 on the leader itself). */
  uint64_t (*leaderless_ms)(void *arg);
  /* Starts a ReadIndex round; calls cb exactly once, never before
   * returning, within about timeout_ms. */
  void (*read_index)(void *arg, uint32_t timeout_ms, subs_read_cb cb,
                     void *cb_arg);
  /* Client connections (conn_id != 0): a frame to send (0, or an error
   * once the connection is gone), an error or an empty answer to a
   * request, the bytes queued to it (SIZE_MAX if it is gone), one
   * subs_on_drain once fewer than `below` are queued, and its name for
   * the log. */
  int (*send)(void *arg, uint64_t conn_id, const Synod__ServerMessage *sm);
  void (*send_error)(void *arg, uint64_t conn_id, uint64_t request_id, int code,
                     uint64_t first_available, const char *msg);
  void (*send_ok)(void *arg, uint64_t conn_id, uint64_t request_id);
  size_t (*queued_bytes)(void *arg, uint64_t conn_id);
  void (*want_drain)(void *arg, uint64_t conn_id, size_t below);
  const char *(*remote)(void *arg, uint64_t conn_id);
};

struct sub;
struct subs_batch;
struct subs_merge;

struct subs {
  struct fsm *fsm;  /* set by the host before any subscription */
  const char *name; /* this replica's, in messages */
  /* Stop pushing to a sink with this many bytes queued; go on below
   * half (4 MiB; the simulator makes it small). */
  size_t out_bytes_max;
  struct subs_host host;
  struct u64map by_key; /* key -> struct sub: every subscription */
  uint64_t key_next;
  struct u64map by_conn; /* conn id -> struct sub list (clients') */
  struct u64map by_name; /* hash of a channel name -> struct sub list */
  struct sub *prefix;    /* prefix subscriptions */
  struct sub *keys;      /* key watches */
  struct sub *groups;    /* group subscriptions (also by name) */
  struct sub *dirty;     /* to push to after this batch */
  struct sub *starting;  /* in-process ones, to start at the turn's end */
  uint64_t n;
  uint64_t tomb_bytes; /* held by deleted streams' tombs */
  /* Snapshots installed (subs_on_install): a subscription that saw fewer
   * checks the state machine's record of deleted channels for what it
   * may have missed (see sub_gone_check). */
  uint64_t installs;
  uint64_t pumped_index;    /* the applied index at the last subs_pump */
  struct subs_batch *batch; /* the frame being filled */
  struct subs_merge *merge; /* a prefix subscription's channels */
  /* Channel messages pushed to subscribers, and their payload bytes. */
  uint64_t deliveries;
  uint64_t delivery_bytes;
};

int subs_init(struct subs *ss, const struct subs_host *host, const char *name);
void subs_close(struct subs *ss);

/* A client's requests on connection conn_id; each is answered through
 * the host (send, send_error, send_ok). */
void subs_subscribe(struct subs *ss, uint64_t conn_id, uint64_t request_id,
                    const Synod__ChannelSubscribe *q);
void subs_key_watch(struct subs *ss, uint64_t conn_id, uint64_t request_id,
                    const Synod__KeyWatch *q);
void subs_group_subscribe(struct subs *ss, uint64_t conn_id,
                          uint64_t request_id, const Synod__GroupSubscribe *q);
void subs_credit(struct subs *ss, uint64_t conn_id, uint64_t request_id,
                 const Synod__ChannelCredit *q);
void subs_unsubscribe(struct subs *ss, uint64_t conn_id, uint64_t request_id,
                      const Synod__ChannelUnsubscribe *q);
/* The connection has room again (after the host's want_drain). */
void subs_on_drain(struct subs *ss, uint64_t conn_id);
/* The connection is gone: its subscriptions end without a word. */
void subs_on_close(struct subs *ss, uint64_t conn_id);

/* In-process subscriptions (node_subscribe, node_key_watch and
 * node_group_subscribe in node.h say what they do): conn_id 0, a sink
 * of the caller's, no credits. Started by subs_start_queued. */
int subs_sub_request(struct subs *ss, const Synod__Request *req,
                     const struct node_sub_sink *sink, void *arg,
                     uint64_t *handle, char *errmsg);
/* Starts the in-process subscriptions made since the last call (the
 * host calls it at the end of its loop turn). */
void subs_start_queued(struct subs *ss);
void subs_drained(struct subs *ss, uint64_t handle);
void subs_cancel(struct subs *ss, uint64_t handle);

/* A channel or key event of the entry being applied: marks the
 * subscriptions to push to (CHANNEL_APPENDED, KEYS_CHANGED) or ends them
 * (CHANNEL_DELETED). */
void subs_on_event(struct subs *ss, const struct fsm_event *e);
/* The state was replaced by a snapshot: every subscription looks again. */
void subs_on_install(struct subs *ss);
/* Pushes to the subscriptions marked since the last pump (the host
 * calls it once a batch of entries is applied). */
void subs_pump(struct subs *ss);
/* On every tick: progress to key watches and group subscriptions that
 * moved without delivering; a replica that has known no leader for a
 * while ends its subscriptions (SYNOD_ENOLEADER) so their clients resume
 * elsewhere. */
void subs_tick(struct subs *ss);

/* Subscriptions on this replica that receive channel `name`. */
uint64_t subs_count(struct subs *ss, const char *name);
/* Key watches on this replica (a walk over at most SUBS_KEYS_MAX). */
uint64_t subs_key_watches(struct subs *ss);
/* Group subscriptions on this replica. */
uint64_t subs_group_subscriptions(struct subs *ss);

#endif /* SYNOD_SUBS_H */
