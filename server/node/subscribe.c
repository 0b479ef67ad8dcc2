/* Subscriptions (DESIGN.md "Streams"): channel subscriptions, key
 * watches and group subscriptions. A cursor on this replica
 * that pushes committed, applied messages from the state machine's
 * retained windows to one client connection, in order, on the credits the
 * client grants, never queueing more than out_bytes_max to a connection.
 * A subscriber that falls behind is not buffered for: it catches up from
 * the window when there is room, or ends with SYNOD_ECOMPACTED once its
 * next message was evicted. Any replica serves subscriptions; positions
 * are the same on every replica, so the client resumes anywhere.
 *
 * Which subscriptions to push to is found from the state machine's
 * CHANNEL_APPENDED events (subs_on_event): subscriptions of one channel
 * by a hash of its name, prefix subscriptions by a walk over them. They
 * are marked dirty and pushed to once the batch of entries is applied
 * (subs_pump), so a batch of publishes leaves in one frame.
 *
 * The engine (struct subs, subs.h) reaches the rest of the replica only
 * through its host: the node (subs_host.c) or the simulator
 * (tests/sim/sim_subs.c), which runs this file under its faults.
 *
 * Where the messages go is a sink (struct node_sub_sink): a client
 * connection's (client_sink below: frames, credits, the connection's
 * queue) or an in-process consumer's (node_subscribe: the HTTP API's
 * Server-Sent Events, with the HTTP connection's queue). Everything else,
 * positions, windows, bounds, ends, is one mechanism for both.
 *
 * A subscription reads one of three streams (enum sub_kind): one
 * channel, the channels under a prefix, or the key history (a key watch,
 * KeyWatch in synod.proto, filtered to one key or a key prefix). Sinks,
 * credits, the bound on queued bytes, the pump, the leaderless end, the
 * ReadIndex start, the limits and unsubscribe are the same code for all
 * three. Where keys made the mechanism bend, it bent for every kind:
 *  - the request that starts a subscription is kept as a Synod__Request
 *    (ChannelSubscribe or KeyWatch in its body), for the ReadIndex wait
 *    and node_subscribe's deferred start alike;
 *  - a sink has a started/deliver pair per kind (channel messages or key
 *    events): the frames differ, the flow control does not;
 *  - a key watch's position is (revision, events of it passed), as a
 *    prefix subscription's is (log index, offset): a session's end is
 *    one revision of up to 100,000 deletes, and a frame or the credits
 *    may end among them;
 *  - a key watch skips the events it does not match, so the position it
 *    reached can be far past its last event: its frames carry that
 *    progress, and subs_tick sends it alone (once a second at most) to a
 *    watch that moved without delivering, so that its client resumes
 *    there and not below the history (etcd's progress notify);
 *  - key watches are found on FSM_EVENT_KEYS_CHANGED by a walk over all
 *    of them (at most SUBS_KEYS_MAX per replica, like prefix
 *    subscriptions), each then reading only the revisions past its
 *    position and filtering by key.
 *
 * A group subscription (GroupSubscribe, kind SUB_GROUP) reads one group's
 * stream as one member, or all of it: a dense offset like a channel's, filtered
 * like a key watch's (fsm_group_item_for). It reuses the channel's start,
 * ECOMPACTED and end on deletion (created_index tells a group deleted and
 * created again) and the key watch's progress (GroupDelivery.
 * progress_offset, sent alone by subs_tick). Where it bent the mechanism:
 *  - subs_by_name holds channel and group subscriptions alike (a channel
 *    and a group may share a name): every walk of it checks the kind;
 *  - a sink has a third started/deliver pair (group_started and
 *    group_deliver), filled by the client sink and by in-process
 *    consumers of node_group_subscribe (the HTTP API's Server-Sent
 *    Events);
 *  - a subscription may name no member: an observer (a client's group
 *    watch, the HTTP API's stream), which is delivered every item,
 *    messages and state requests to any one member included;
 *  - a frame's items are malloc'ed (fsm_group_item_pb) and freed once
 *    the frame is sent, and cost their packed size;
 *  - group subscriptions are also on a list of their own (subs_groups),
 *    for the progress walk.
 *
 * A deletion (a channel's, or a group's when its last member leaves)
 * ends one-stream subscriptions only once they have delivered every item
 * up to it: the deletion event hands over the deleted window, which the
 * subscriptions still behind share as a tomb (struct sub_tomb) and read
 * as they read a live stream, credits and bounds included. Before, the
 * items applied in the same batch as the deletion were never delivered
 * (the last views of a group whose last two members left at once). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "subs.h"
#include "synod.h"
#include "window.h"

/* Stop pushing to a connection with this much queued; go on below half
 * (struct subs' out_bytes_max, set by subs_init). */
#define SUB_OUT_BYTES (4u << 20)
/* A delivery frame carries at most this many bytes of messages, each
 * counted with its channel name and SUB_MESSAGE_OVERHEAD (one message
 * alone may be larger: up to the channel's max_message_bytes). */
#define SUB_FRAME_BYTES (256u << 10)
/* A ChannelMessage's bytes beyond its data and channel name, at most:
 * its tag and length in the delivery, offset, index, time_ms, and the
 * tags and lengths of data and channel. */
#define SUB_MESSAGE_OVERHEAD 48
#define SUB_FRAME_MESSAGES 4096
#define SUB_CREDITS_DEFAULT 1000
#define SUB_CREDITS_MAX 1000000
#define SUBS_PER_CONN_MAX 1024
#define SUBS_MAX 100000
/* Prefix subscriptions per replica: each one is looked at on every
 * publish, and merges its channels on every frame. */
#define SUBS_PREFIX_MAX 1024
/* Key watches per replica: each one is looked at on every new revision. */
#define SUBS_KEYS_MAX 1024
/* A key watch that moved past events it does not match says so this
 * often at most (KeyWatchDelivery.progress_revision). */
#define SUB_PROGRESS_MS 1000
/* A KeyWatchEvent's bytes beyond its keys and values, at most: its tag
 * and length in the delivery, type, revision, event, index, time_ms, and
 * two KeyValues' tags, lengths and revisions. */
#define SUB_KEY_EVENT_OVERHEAD 128
/* A cursor or FROM_NEXT start waits this long for its ReadIndex round. */
#define SUB_START_TIMEOUT_MS 5000
/* A replica that has known no leader for this long (longer than an
 * election takes) may be cut off from the majority: it ends its
 * subscriptions and refuses new ones, and their clients go elsewhere. */
#define SUBS_LEADERLESS_MS 2000
/* A prefix subscription merges at most this many channels. */
#define PREFIX_STREAMS_MAX 1024
/* Items of deleted streams kept for subscriptions still behind, at most
 * (past it, a deletion ends them at once, as it did before tombs). */
#define SUBS_TOMB_BYTES_MAX (256u << 20)

/* A deleted channel's or group's items (the window its deletion event
 * carried: every item up to the deletion that was still retained),
 * shared by the one-stream subscriptions that had not passed them all
 * when it was applied: they deliver them, then end with
 * SYNOD_ENOTFOUND. Freed with the last one. */
struct sub_tomb {
  struct window *window; /* owned */
  unsigned refs;
};

/* What a subscription reads. */
enum sub_kind {
  SUB_CHANNEL, /* one channel */
  SUB_PREFIX,  /* the channels under a prefix, merged by log index */
  SUB_KEYS,    /* the key history, filtered to a key or a key prefix */
  SUB_GROUP,   /* one group's stream, all of it or one member's */
};

struct sub {
  uint64_t key;        /* unique, never reused: node_subscribe's handle */
  struct subs *ss;     /* for the client sink */
  uint64_t conn_id;    /* a client's subscription; 0 for an in-process one */
  uint64_t id;         /* the client's subscription id */
  uint64_t request_id; /* the client's request, until started */
  const struct node_sub_sink *sink;
  void *sink_arg;
  /* In-process: a copy of the request until its start runs, at the end
   * of the loop turn (so no callback runs inside node_subscribe). */
  Synod__Request *start_q;
  enum sub_kind kind;
  char *name; /* channel name or prefix; key or key prefix (NUL added) */
  size_t name_len;
  char *member; /* SUB_GROUP: the member whose items it delivers (NUL
                 * added); "" for an observer of every item */
  size_t member_len;
  bool key_prefix; /* SUB_KEYS: name is a prefix */
  bool prev_kv;    /* SUB_KEYS: deliver previous values */
  bool credited;   /* a client's: pushes spend credits */
  bool started;    /* position resolved; false while a ReadIndex runs */
  bool dirty;      /* in node.subs_dirty */
  bool blocked;    /* waiting for the sink to drain */
  uint64_t next;   /* one channel, a group: the next offset to look at */
  /* One channel: the log index that created the channel it reads, once
   * seen (0 before, or if unknown). A channel of that name with another
   * one, or none, means it was deleted: a replica that installs a
   * snapshot never applies the deletion (subs_on_event does not see it). */
  uint64_t created_index;
  /* Prefix: the last message delivered, as (log index, its channel
   * offset); after_offset 0 = every message at after_index. A batch
   * publish puts several messages at one index, and a frame or the
   * credits may end among them. */
  uint64_t after_index;
  uint64_t after_offset;
  /* Prefix, one channel: the applied index its scope begins at (a
   * resume's known_index; else the index applied at its start): a
   * deletion after it is one s may have to account for. The installs it
   * has checked the record of deletions for, and the applied index
   * before the first install it has not checked (deletions up to there
   * it applied in order, through subs_on_event). */
  uint64_t start_index;
  uint64_t installs_seen;
  uint64_t install_from;
  /* Keys: the next event to look at is event rev_event + 1 of revision
   * rev (events numbered from 1 within a revision, matching or not). */
  uint64_t rev;
  uint32_t rev_event;
  /* Keys: the progress last sent to the sink, and when (loop time); a
   * group's uses told_rev for the offset. */
  uint64_t told_rev;
  uint32_t told_event;
  uint64_t told_ms;
  uint64_t credits;
  /* One channel, a group: its stream was deleted before s passed its
   * last item; s reads the rest from here (shared), then ends. */
  struct sub_tomb *tomb;
  struct sub *conn_next;  /* the connection's subscriptions */
  struct sub *name_next;  /* same name hash, or the prefix or keys list */
  struct sub *dirty_next; /* node.subs_dirty */
  struct sub *start_next; /* node.subs_starting */
  struct sub *group_next; /* node.subs_groups */
};

/* FNV-1a, 64 bits: the key of a channel name in subs_by_name. */
static uint64_t name_hash(const char *s, size_t len) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < len; i++) {
    h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
  }
  return h;
}

static struct sub *sub_find(struct subs *ss, uint64_t conn_id, uint64_t id) {
  for (struct sub *s = u64map_get(&ss->by_conn, conn_id); s != NULL;
       s = s->conn_next) {
    if (s->id == id) {
      return s;
    }
  }
  return NULL;
}

static void sub_mark(struct subs *ss, struct sub *s) {
  if (!s->dirty && s->started) {
    s->dirty = true;
    s->dirty_next = ss->dirty;
    ss->dirty = s;
  }
}

/* Unlinks s from the list at *head (linked through `field`). */
#define SUB_UNLINK(head, s, field)                                             \
  do {                                                                         \
    for (struct sub **pp_ = (head); *pp_ != NULL; pp_ = &(*pp_)->field) {      \
      if (*pp_ == (s)) {                                                       \
        *pp_ = (s)->field;                                                     \
        break;                                                                 \
      }                                                                        \
    }                                                                          \
  } while (0)

static void tomb_release(struct subs *ss, struct sub *s) {
  struct sub_tomb *t = s->tomb;
  s->tomb = NULL;
  if (t != NULL && --t->refs == 0) {
    ss->tomb_bytes -= window_memory_bytes(t->window);
    window_close(t->window);
    free(t->window);
    free(t);
  }
}

static void sub_release(struct sub *s) {
  if (s->start_q != NULL) {
    synod__request__free_unpacked(s->start_q, NULL);
  }
  free(s->name);
  free(s->member);
  free(s);
}

/* Removes s from every index and frees it. */
static void sub_free(struct subs *ss, struct sub *s) {
  struct sub *head;
  u64map_del(&ss->by_key, s->key);
  if (s->conn_id != 0) {
    head = u64map_get(&ss->by_conn, s->conn_id);
    SUB_UNLINK(&head, s, conn_next);
    if (head != NULL) {
      u64map_put(&ss->by_conn, s->conn_id, head);
    } else {
      u64map_del(&ss->by_conn, s->conn_id);
    }
  }
  if (s->start_q != NULL) {
    SUB_UNLINK(&ss->starting, s, start_next);
  }
  if (s->kind == SUB_PREFIX) {
    SUB_UNLINK(&ss->prefix, s, name_next);
  } else if (s->kind == SUB_KEYS) {
    SUB_UNLINK(&ss->keys, s, name_next);
  } else {
    if (s->kind == SUB_GROUP) {
      SUB_UNLINK(&ss->groups, s, group_next);
    }
    uint64_t h = name_hash(s->name, s->name_len);
    head = u64map_get(&ss->by_name, h);
    SUB_UNLINK(&head, s, name_next);
    if (head != NULL) {
      u64map_put(&ss->by_name, h, head);
    } else {
      u64map_del(&ss->by_name, h);
    }
  }
  if (s->dirty) {
    SUB_UNLINK(&ss->dirty, s, dirty_next);
  }
  ss->n--;
  tomb_release(ss, s);
  sub_release(s);
}

/* Ends s with an error event and frees it. */
static void sub_end(struct subs *ss, struct sub *s, int code,
                    uint64_t first_available, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void sub_end(struct subs *ss, struct sub *s, int code,
                    uint64_t first_available, const char *fmt, ...) {
  char msg[SYNOD_ERRMSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (s->conn_id != 0) {
    log_info("subscribe", "%s: subscription %" PRIu64 " ended: %s",
             ss->host.remote(ss->host.arg, s->conn_id), s->id, msg);
  } else {
    log_info("subscribe", "in-process subscription %" PRIu64 " ended: %s",
             s->key, msg);
  }
  s->sink->ended(s->sink_arg, code, msg, first_available);
  sub_free(ss, s);
}

/* ---------------------------------------------------------- client sink */

/* A client connection's subscription: frames on the connection, its
 * queue, its drain callback (subs_on_drain). arg is the struct sub. */

/* Answers the subscribe request of s with `resp` (body set), or with the
 * error. */
static void client_answer(struct sub *s, int err, const char *msg,
                          uint64_t first_available, Synod__Response *resp) {
  if (err != 0) {
    s->ss->host.send_error(s->ss->host.arg, s->conn_id, s->request_id, err,
                           first_available, msg);
    return;
  }
  Synod__ServerMessage sm = SYNOD__SERVER_MESSAGE__INIT;
  resp->id = s->request_id;
  sm.body_case = SYNOD__SERVER_MESSAGE__BODY_RESPONSE;
  sm.response = resp;
  s->ss->host.send(s->ss->host.arg, s->conn_id, &sm);
}

static void client_started(void *arg, int err, const char *msg,
                           uint64_t first_available,
                           const Synod__ChannelSubscribeReply *r) {
  Synod__Response resp = SYNOD__RESPONSE__INIT;
  resp.body_case = SYNOD__RESPONSE__BODY_CHANNEL_SUBSCRIBE;
  resp.channel_subscribe = (Synod__ChannelSubscribeReply *)r;
  client_answer(arg, err, msg, first_available, &resp);
}

static void client_key_started(void *arg, int err, const char *msg,
                               uint64_t first_available,
                               const Synod__KeyWatchReply *r) {
  Synod__Response resp = SYNOD__RESPONSE__INIT;
  resp.body_case = SYNOD__RESPONSE__BODY_KEY_WATCH;
  resp.key_watch = (Synod__KeyWatchReply *)r;
  client_answer(arg, err, msg, first_available, &resp);
}

static void client_group_started(void *arg, int err, const char *msg,
                                 uint64_t first_available,
                                 const Synod__GroupSubscribeReply *r) {
  Synod__Response resp = SYNOD__RESPONSE__INIT;
  resp.body_case = SYNOD__RESPONSE__BODY_GROUP_SUBSCRIBE;
  resp.group_subscribe = (Synod__GroupSubscribeReply *)r;
  client_answer(arg, err, msg, first_available, &resp);
}

/* Sends event `ev` (body set) of s. */
static int client_event(struct sub *s, Synod__Event *ev) {
  Synod__ServerMessage sm = SYNOD__SERVER_MESSAGE__INIT;
  sm.body_case = SYNOD__SERVER_MESSAGE__BODY_EVENT;
  sm.event = ev;
  return s->ss->host.send(s->ss->host.arg, s->conn_id, &sm);
}

static int client_deliver(void *arg, Synod__ChannelMessage *const *msgs,
                          size_t n, size_t bytes) {
  struct sub *s = arg;
  (void)bytes;
  Synod__Event ev = SYNOD__EVENT__INIT;
  Synod__ChannelDelivery d = SYNOD__CHANNEL_DELIVERY__INIT;
  d.subscription_id = s->id;
  d.n_messages = n;
  d.messages = (Synod__ChannelMessage **)msgs;
  ev.body_case = SYNOD__EVENT__BODY_CHANNEL_DELIVERY;
  ev.channel_delivery = &d;
  return client_event(s, &ev);
}

static int client_key_deliver(void *arg, Synod__KeyWatchEvent *const *evs,
                              size_t n, size_t bytes, uint64_t progress_rev,
                              uint32_t progress_event) {
  struct sub *s = arg;
  (void)bytes;
  Synod__Event ev = SYNOD__EVENT__INIT;
  Synod__KeyWatchDelivery d = SYNOD__KEY_WATCH_DELIVERY__INIT;
  d.subscription_id = s->id;
  d.n_events = n;
  d.events = (Synod__KeyWatchEvent **)evs;
  d.progress_revision = progress_rev;
  d.progress_event = progress_event;
  ev.body_case = SYNOD__EVENT__BODY_KEY_WATCH_DELIVERY;
  ev.key_watch_delivery = &d;
  return client_event(s, &ev);
}

static int client_group_deliver(void *arg, Synod__GroupItem *const *items,
                                size_t n, size_t bytes,
                                uint64_t progress_offset) {
  struct sub *s = arg;
  (void)bytes;
  Synod__Event ev = SYNOD__EVENT__INIT;
  Synod__GroupDelivery d = SYNOD__GROUP_DELIVERY__INIT;
  d.subscription_id = s->id;
  d.n_items = n;
  d.items = (Synod__GroupItem **)items;
  d.progress_offset = progress_offset;
  ev.body_case = SYNOD__EVENT__BODY_GROUP_DELIVERY;
  ev.group_delivery = &d;
  return client_event(s, &ev);
}

static void client_ended(void *arg, int code, const char *msg,
                         uint64_t first_available) {
  struct sub *s = arg;
  Synod__Event ev = SYNOD__EVENT__INIT;
  Synod__SubscriptionEnded end = SYNOD__SUBSCRIPTION_ENDED__INIT;
  Synod__Error err = SYNOD__ERROR__INIT;
  err.code = (Synod__ErrorCode)code;
  err.message = (char *)msg;
  err.first_available = first_available;
  end.subscription_id = s->id;
  end.error = &err;
  ev.body_case = SYNOD__EVENT__BODY_SUBSCRIPTION_ENDED;
  ev.subscription_ended = &end;
  client_event(s, &ev);
}

static size_t client_queued_bytes(void *arg) {
  struct sub *s = arg;
  return s->ss->host.queued_bytes(s->ss->host.arg, s->conn_id);
}

static void client_want_drain(void *arg, size_t below) {
  struct sub *s = arg;
  s->ss->host.want_drain(s->ss->host.arg, s->conn_id, below);
}

static const struct node_sub_sink client_sink = {
    .started = client_started,
    .deliver = client_deliver,
    .ended = client_ended,
    .queued_bytes = client_queued_bytes,
    .want_drain = client_want_drain,
    .key_started = client_key_started,
    .key_deliver = client_key_deliver,
    .group_started = client_group_started,
    .group_deliver = client_group_deliver,
};

/* ------------------------------------------------------------- delivery */

/* One ChannelDelivery or KeyWatchDelivery frame being filled
 * (node.subs_batch): msgs for channels, evs for keys. */
struct subs_batch {
  Synod__ChannelMessage msgs[SUB_FRAME_MESSAGES];
  Synod__ChannelMessage *ptrs[SUB_FRAME_MESSAGES];
  Synod__KeyWatchEvent evs[SUB_FRAME_MESSAGES];
  Synod__KeyValue kvs[SUB_FRAME_MESSAGES];
  Synod__KeyValue prevs[SUB_FRAME_MESSAGES];
  Synod__KeyWatchEvent *ev_ptrs[SUB_FRAME_MESSAGES];
  Synod__GroupItem *items[SUB_FRAME_MESSAGES]; /* malloc'ed: batch_send frees */
  size_t n;
  size_t bytes; /* payload */
  size_t wire;  /* payload, names and overheads: what the frame costs */
};

/* What a message of len bytes costs a frame of s. */
static size_t batch_cost(const struct sub *s, const struct fsm_stream *st,
                         size_t len) {
  return len + SUB_MESSAGE_OVERHEAD +
         (s->kind == SUB_PREFIX ? st->name_len : 0);
}

/* Whether another message costing `cost` fits the frame (the first always
 * does) and the credits. */
static bool batch_room(const struct subs_batch *b, const struct sub *s,
                       size_t cost) {
  return b->n < s->credits && b->n < SUB_FRAME_MESSAGES &&
         (b->n == 0 || b->wire + cost <= SUB_FRAME_BYTES);
}

static void batch_add(struct subs_batch *b, const struct fsm_stream *st,
                      const struct window_item *it, bool named) {
  Synod__ChannelMessage *m = &b->msgs[b->n];
  synod__channel_message__init(m);
  m->offset = it->pos;
  m->index = it->index;
  m->time_ms = it->time_ms;
  m->data.data = (uint8_t *)it->data;
  m->data.len = it->len;
  m->channel = named ? (char *)st->name : (char *)"";
  b->ptrs[b->n++] = m;
  b->bytes += it->len;
  b->wire += it->len + SUB_MESSAGE_OVERHEAD + (named ? st->name_len : 0);
}

/* Where key watch s has looked, as the last event looked at. */
static void key_progress(const struct sub *s, uint64_t *rev, uint32_t *event) {
  *rev = s->rev_event != 0 ? s->rev : s->rev - 1;
  *event = s->rev_event;
}

/* Hands a key watch's frame (possibly of no events) to its sink, with
 * its progress. */
static int key_send(struct subs *ss, struct sub *s, struct subs_batch *b) {
  key_progress(s, &s->told_rev, &s->told_event);
  s->told_ms = ss->host.now_ms(ss->host.arg);
  return s->sink->key_deliver(s->sink_arg, b->ev_ptrs, b->n, b->bytes,
                              s->told_rev, s->told_event);
}

/* Hands a group subscription's frame (possibly of no items) to its
 * sink, with its progress, and frees the items. */
static int group_send(struct subs *ss, struct sub *s, struct subs_batch *b) {
  s->told_rev = s->next - 1;
  s->told_ms = ss->host.now_ms(ss->host.arg);
  int rv = s->sink->group_deliver(s->sink_arg, b->items, b->n, b->bytes,
                                  s->told_rev);
  for (size_t i = 0; i < b->n; i++) {
    fsm_group_item_pb_free(b->items[i]);
  }
  return rv;
}

/* Hands the batch to the sink. The position has moved past it already,
 * so a sink that refuses it ends the subscription (a consumer that
 * resumes from its last message sees no gap). Returns false then. */
static bool batch_send(struct subs *ss, struct sub *s, struct subs_batch *b) {
  bool keys = s->kind == SUB_KEYS;
  size_t count = b->n;
  int rv = keys ? key_send(ss, s, b)
           : s->kind == SUB_GROUP
               ? group_send(ss, s, b)
               : s->sink->deliver(s->sink_arg, b->ptrs, b->n, b->bytes);
  if (rv != 0) {
    sub_end(ss, s, rv, 0,
            "delivery of %zu %s (%zu bytes) of \"%.64s\" failed: %s", count,
            keys                   ? "key events"
            : s->kind == SUB_GROUP ? "group items"
                                   : "messages",
            b->bytes, s->name, synod_strerror(rv));
    return false;
  }
  if (s->credited) {
    s->credits -= count;
  }
  if (!keys && s->kind != SUB_GROUP) {
    ss->deliveries += b->n;
    ss->delivery_bytes += b->bytes;
  }
  return true;
}

/* The stream one-channel or group subscription s reads: its tomb once
 * the stream was deleted, else the state machine's. False if there is
 * none (a channel not created yet; a group deleted: sub_channel_same
 * ends it). */
static bool sub_stream(struct subs *ss, const struct sub *s,
                       struct fsm_stream *st) {
  if (s->tomb == NULL) {
    return s->kind == SUB_GROUP
               ? fsm_group_stream(ss->fsm, s->name, s->name_len, st)
               : fsm_channel_stream(ss->fsm, s->name, s->name_len, st);
  }
  memset(st, 0, sizeof *st);
  st->name = s->name;
  st->name_len = s->name_len;
  st->window = s->tomb->window;
  st->first = s->tomb->window->first;
  st->evicted_index = s->tomb->window->evicted_index;
  st->created_index = s->created_index;
  return true;
}

/* Fills one frame of a one-channel subscription. Returns false when s
 * ended (and was freed). */
static bool fill_channel(struct subs *ss, struct sub *s, struct subs_batch *b) {
  struct fsm_stream st;
  if (!sub_stream(ss, s, &st)) {
    return true; /* not created yet: waits */
  }
  if (s->next < st.first) {
    sub_end(ss, s, SYNOD_ECOMPACTED, st.first,
            "channel \"%.64s\": offset %" PRIu64
            " is no longer retained; the first retained is %" PRIu64,
            s->name, s->next, st.first);
    return false;
  }
  struct window_iter iter;
  struct window_item it;
  window_iter_seek(st.window, s->next, &iter);
  while (batch_room(b, s, 0) && window_iter_next(&iter, &it) &&
         batch_room(b, s, batch_cost(s, &st, it.len))) {
    batch_add(b, &st, &it, false);
    s->next = it.pos + 1;
  }
  return true;
}

/* The channels under a prefix, each at its first message after the
 * subscription's position, merged by log index. */
struct subs_merge {
  struct fsm_stream st[PREFIX_STREAMS_MAX];
  struct window_iter it[PREFIX_STREAMS_MAX];
  struct window_item head[PREFIX_STREAMS_MAX];
  bool has[PREFIX_STREAMS_MAX];
  size_t n;
  uint64_t after_index, after_offset;
  bool compacted; /* a message after the position was evicted */
  uint64_t resume_index;
  bool truncated; /* more channels than PREFIX_STREAMS_MAX */
};

static void merge_add(void *arg, const struct fsm_stream *st) {
  struct subs_merge *m = arg;
  if (m->n == PREFIX_STREAMS_MAX) {
    m->truncated = true;
    return;
  }
  size_t i = m->n++;
  m->st[i] = *st;
  /* Evicted: everything up to evicted_index, and at that index the
   * offsets below the window's first. */
  if (st->evicted_index > m->after_index ||
      (st->evicted_index == m->after_index && m->after_offset != 0 &&
       st->window->first > m->after_offset + 1)) {
    m->compacted = true;
    if (st->evicted_index > m->resume_index) {
      m->resume_index = st->evicted_index;
    }
  }
  window_iter_seek_index(st->window,
                         m->after_offset ? m->after_index - 1 : m->after_index,
                         &m->it[i]);
  while ((m->has[i] = window_iter_next(&m->it[i], &m->head[i])) &&
         m->head[i].index == m->after_index &&
         m->head[i].pos <= m->after_offset) {
  }
}

static bool fill_prefix(struct subs *ss, struct sub *s, struct subs_batch *b,
                        struct subs_merge *m) {
  m->n = 0;
  m->after_index = s->after_index;
  m->after_offset = s->after_offset;
  m->compacted = m->truncated = false;
  m->resume_index = 0;
  fsm_channel_streams(ss->fsm, s->name, s->name_len, merge_add, m);
  if (m->truncated) {
    sub_end(ss, s, SYNOD_ELIMIT, 0,
            "prefix \"%.64s\" matches more than %d channels", s->name,
            PREFIX_STREAMS_MAX);
    return false;
  }
  if (m->compacted) {
    sub_end(ss, s, SYNOD_ECOMPACTED, m->resume_index,
            "prefix \"%.64s\": messages after index %" PRIu64
            " are no longer retained; resume after index %" PRIu64,
            s->name, s->after_index, m->resume_index);
    return false;
  }
  while (batch_room(b, s, 0)) {
    size_t best = m->n;
    for (size_t i = 0; i < m->n; i++) {
      if (m->has[i] &&
          (best == m->n || m->head[i].index < m->head[best].index)) {
        best = i;
      }
    }
    if (best == m->n ||
        !batch_room(b, s, batch_cost(s, &m->st[best], m->head[best].len))) {
      break;
    }
    batch_add(b, &m->st[best], &m->head[best], true);
    s->after_index = m->head[best].index;
    s->after_offset = m->head[best].pos;
    m->has[best] = window_iter_next(&m->it[best], &m->head[best]);
  }
  return true;
}

/* Whether a key watch wants event e. */
static bool key_matches(const struct sub *s, const struct fsm_key_event *e) {
  return s->key_prefix ? e->kv.key_len >= s->name_len &&
                             memcmp(e->kv.key, s->name, s->name_len) == 0
                       : e->kv.key_len == s->name_len &&
                             memcmp(e->kv.key, s->name, s->name_len) == 0;
}

/* What event e costs a frame of s. */
static size_t key_cost(const struct sub *s, const struct fsm_key_event *e) {
  size_t len = e->kv.key_len + e->kv.value_len;
  if (s->prev_kv && e->has_prev) {
    len += e->prev.key_len + e->prev.value_len;
  }
  return len + SUB_KEY_EVENT_OVERHEAD;
}

static void kv_fill(Synod__KeyValue *m, const struct fsm_kv *kv) {
  synod__key_value__init(m);
  m->key.data = (uint8_t *)kv->key;
  m->key.len = kv->key_len;
  m->value.data = (uint8_t *)kv->value;
  m->value.len = kv->value_len;
  m->create_revision = kv->create_revision;
  m->mod_revision = kv->mod_revision;
  m->version = kv->version;
  m->session_id = kv->session_id;
}

static void key_batch_add(struct subs_batch *b, const struct sub *s,
                          const struct fsm_key_event *e, uint32_t num) {
  size_t i = b->n++;
  Synod__KeyWatchEvent *m = &b->evs[i];
  synod__key_watch_event__init(m);
  m->type = e->deleted ? SYNOD__KEY_WATCH_EVENT__TYPE__DELETE
                       : SYNOD__KEY_WATCH_EVENT__TYPE__PUT;
  kv_fill(&b->kvs[i], &e->kv);
  m->kv = &b->kvs[i];
  if (s->prev_kv && e->has_prev) {
    kv_fill(&b->prevs[i], &e->prev);
    m->prev_kv = &b->prevs[i];
  }
  m->revision = e->revision;
  m->event = num;
  m->index = e->index;
  m->time_ms = e->time_ms;
  b->ev_ptrs[i] = m;
  b->bytes += key_cost(s, e) - SUB_KEY_EVENT_OVERHEAD;
  b->wire += key_cost(s, e);
}

/* Fills one frame of a key watch from its position (s->rev, s->rev_event)
 * on, skipping the events it does not match (its position moves past
 * them too, so they are looked at once). Returns false when s ended. */
static bool fill_keys(struct subs *ss, struct sub *s, struct subs_batch *b) {
  struct fsm_stream st;
  fsm_key_stream(ss->fsm, &st);
  if (s->rev < st.first) {
    sub_end(ss, s, SYNOD_ECOMPACTED, st.first,
            "key watch \"%.64s\": revision %" PRIu64
            " is no longer retained; the oldest retained is %" PRIu64,
            s->name, s->rev, st.first);
    return false;
  }
  struct fsm_key_iter it;
  struct fsm_key_event e;
  uint64_t rev = 0;
  uint32_t num = 0;
  fsm_key_iter_seek(ss->fsm, s->rev, &it);
  for (;;) {
    if (!fsm_key_iter_next(&it, &e)) {
      /* Every retained revision is complete: past the newest, the next
       * event to look at is the first of the next revision. */
      if (s->rev < st.window->next) {
        s->rev = st.window->next;
        s->rev_event = 0;
      }
      break;
    }
    if (e.revision != rev) {
      rev = e.revision;
      num = 0;
    }
    num++;
    if (rev == s->rev && num <= s->rev_event) {
      continue; /* passed before */
    }
    bool match = key_matches(s, &e);
    if (!batch_room(b, s, match ? key_cost(s, &e) : 0)) {
      /* The frame (or the credit) ends here. If the next event opens a
       * revision, the position becomes that revision's start: "after the
       * last event of R" would end the watch with SYNOD_ECOMPACTED once R
       * alone is evicted, though nothing after it was missed. */
      if (rev > s->rev) {
        s->rev = rev;
        s->rev_event = 0;
      }
      break;
    }
    if (match) {
      key_batch_add(b, s, &e, num);
    }
    s->rev = rev;
    s->rev_event = num;
  }
  return true;
}

/* Fills one frame of a group subscription from offset s->next on,
 * skipping the items not addressed to its member (its position moves past
 * them too, as a key watch's does). Returns false when s ended. */
static bool fill_group(struct subs *ss, struct sub *s, struct subs_batch *b) {
  struct fsm_stream st;
  if (!sub_stream(ss, s, &st)) {
    return true; /* deleted: sub_channel_same ends it */
  }
  if (s->next < st.first) {
    sub_end(ss, s, SYNOD_ECOMPACTED, st.first,
            "group \"%.64s\": offset %" PRIu64
            " is no longer retained; the first retained is %" PRIu64,
            s->name, s->next, st.first);
    return false;
  }
  struct window_iter iter;
  struct window_item wi;
  struct fsm_group_item it;
  window_iter_seek(st.window, s->next, &iter);
  while (batch_room(b, s, 0) && window_iter_next(&iter, &wi)) {
    if (fsm_group_item_decode(&wi, &it) != 0 ||
        (s->member_len != 0 &&
         !fsm_group_item_for(&it, s->member, s->member_len))) {
      s->next = wi.pos + 1; /* not for this member: passed */
      continue;
    }
    Synod__GroupItem *pb = fsm_group_item_pb(&it);
    if (pb == NULL) {
      break; /* out of memory: the next pump tries again */
    }
    size_t cost = synod__group_item__get_packed_size(pb) + 8;
    if (!batch_room(b, s, cost)) {
      fsm_group_item_pb_free(pb);
      break;
    }
    b->items[b->n++] = pb;
    b->bytes += it.len;
    b->wire += cost;
    s->next = wi.pos + 1;
  }
  return true;
}

int subs_init(struct subs *ss, const struct subs_host *host, const char *name) {
  memset(ss, 0, sizeof *ss);
  ss->host = *host;
  ss->name = name;
  ss->out_bytes_max = SUB_OUT_BYTES;
  u64map_init(&ss->by_key);
  u64map_init(&ss->by_conn);
  u64map_init(&ss->by_name);
  ss->prefix = NULL;
  ss->keys = NULL;
  ss->groups = NULL;
  ss->dirty = NULL;
  ss->starting = NULL;
  ss->key_next = 0;
  ss->n = 0;
  ss->batch = malloc(sizeof *ss->batch);
  ss->merge = malloc(sizeof *ss->merge);
  return ss->batch != NULL && ss->merge != NULL ? 0 : SYNOD_ENOMEM;
}

/* Whether channel `name` is under prefix subscription s's prefix. */
static bool prefix_matches(const struct sub *s, const char *name, size_t len) {
  return len >= s->name_len && memcmp(name, s->name, s->name_len) == 0;
}

/* Whether prefix subscription s has not delivered all of a channel's
 * messages up to (last_index, last_offset). */
static bool prefix_behind(const struct sub *s, uint64_t last_index,
                          uint64_t last_offset) {
  return s->after_index < last_index ||
         (s->after_index == last_index && s->after_offset != 0 &&
          s->after_offset < last_offset);
}

/* A channel deletion s never applied (it resumed after it, on any
 * replica, or its replica installed a snapshot since) may have taken
 * messages s had to deliver, or, for a channel subscription that started
 * before its channel existed, a whole channel of the name: the state
 * machine's record of deletions (fsm_channels_gone) says, for the
 * deletions after index `from`. 0, or SYNOD_ENOTFOUND with msg: never a
 * silent skip, except on a resume (`resume`) from before every deletion
 * the record keeps, which cannot be checked. */
static int sub_gone_check(const struct subs *ss, const struct sub *s,
                          uint64_t from, bool resume, char *msg) {
  size_t n;
  uint64_t forgotten;
  const struct fsm_channel_gone *g = fsm_channels_gone(ss->fsm, &n, &forgotten);
  bool prefix = s->kind == SUB_PREFIX;
  uint64_t since = prefix && s->after_index > from ? s->after_index : from;
  for (size_t i = 0; i < n; i++) {
    if (g[i].deleted_index <= from) {
      continue;
    }
    if (prefix && prefix_matches(s, g[i].name, g[i].name_len) &&
        prefix_behind(s, g[i].last_index, g[i].last_offset)) {
      errmsg_set(msg,
                 "channel \"%.64s\" under prefix \"%.64s\" was deleted (at "
                 "index %" PRIu64 ") before its messages up to offset %" PRIu64
                 " were delivered",
                 g[i].name, s->name, g[i].deleted_index, g[i].last_offset);
      return SYNOD_ENOTFOUND;
    }
    if (!prefix && g[i].name_len == s->name_len &&
        memcmp(g[i].name, s->name, s->name_len) == 0) {
      errmsg_set(msg,
                 "channel \"%.64s\" was created and deleted (at index "
                 "%" PRIu64 ") after this subscription began (at index "
                 "%" PRIu64 ")",
                 s->name, g[i].deleted_index, from);
      return SYNOD_ENOTFOUND;
    }
  }
  if (forgotten > since && resume) {
    /* A resume after more deletions than the record keeps (since its
     * last message, or its scope's start when idle: no position advances
     * an idle prefix subscription) cannot be checked. Refusing would end
     * every idle subscription of a cluster that deletes channels often,
     * on its next reconnect; it goes on, as resumes did before the
     * record. */
    log_info("subscribe",
             "%s \"%.64s\" resumes after index %" PRIu64 ", before the %d "
             "channel deletions kept: those before them are not checked",
             prefix ? "prefix" : "channel", s->name, since,
             FSM_CHANNELS_GONE_MAX);
  } else if (forgotten > since) {
    /* An install hid more deletions than the record keeps. */
    errmsg_set(msg,
               "%s \"%.64s\": more than %d channels were deleted since index "
               "%" PRIu64 ", so whether one of them had messages for it is no "
               "longer known",
               prefix ? "prefix" : "channel", s->name, FSM_CHANNELS_GONE_MAX,
               since);
    return SYNOD_ENOTFOUND;
  }
  return 0;
}

/* After a snapshot installed since s last looked: sub_gone_check, and
 * ends s if it missed something. False if s ended. */
static bool sub_gone_after_install(struct subs *ss, struct sub *s) {
  char msg[SYNOD_ERRMSG_MAX];
  if (s->installs_seen == ss->installs) {
    return true;
  }
  s->installs_seen = ss->installs;
  uint64_t from =
      s->install_from > s->start_index ? s->install_from : s->start_index;
  if (sub_gone_check(ss, s, from, false, msg) != 0) {
    sub_end(ss, s, SYNOD_ENOTFOUND, 0, "%s", msg);
    return false;
  }
  return true;
}

/* Whether the channel (or group) of one-channel (or group) subscription
 * s is still the one it read (records which one it is the first time);
 * else ends s (freed) and returns false. */
static bool sub_channel_same(struct subs *ss, struct sub *s) {
  struct fsm_stream st;
  bool group = s->kind == SUB_GROUP;
  const char *what = group ? "group" : "channel";
  if (s->tomb != NULL) {
    if (s->next < s->tomb->window->next) {
      return true; /* delivers the rest first */
    }
    sub_end(ss, s, SYNOD_ENOTFOUND, 0,
            "%s \"%.64s\" was deleted after offset %" PRIu64
            ", the last one delivered",
            what, s->name, s->tomb->window->next - 1);
    return false;
  }
  if (!(group ? fsm_group_stream(ss->fsm, s->name, s->name_len, &st)
              : fsm_channel_stream(ss->fsm, s->name, s->name_len, &st))) {
    if (s->created_index == 0 && !group) {
      /* Not created yet: waits, unless an install hid a whole channel of
       * the name, created and deleted since it began. */
      return sub_gone_after_install(ss, s);
    }
    sub_end(ss, s, SYNOD_ENOTFOUND, 0,
            "%s \"%.64s\" was deleted (before index %" PRIu64 ")", what,
            s->name, fsm_applied_index(ss->fsm));
    return false;
  }
  if (s->created_index == 0) {
    /* Applied in order, a deletion before it saw the channel would have
     * ended s (stream_deleted); only an install can hide one. */
    if (!group && !sub_gone_after_install(ss, s)) {
      return false;
    }
    s->created_index = st.created_index;
  } else if (st.created_index != 0 && st.created_index != s->created_index) {
    sub_end(ss, s, SYNOD_ENOTFOUND, 0,
            "%s \"%.64s\" was deleted and created again (at index "
            "%" PRIu64 ")",
            what, s->name, st.created_index);
    return false;
  }
  return true;
}

/* Pushes what s may have now. Returns false when s ended. */
static bool sub_push(struct subs *ss, struct sub *s) {
  struct subs_batch *b = ss->batch;
  struct subs_merge *m = ss->merge;
  if ((s->kind == SUB_CHANNEL || s->kind == SUB_GROUP) &&
      !sub_channel_same(ss, s)) {
    return false;
  }
  if (s->kind == SUB_PREFIX && !sub_gone_after_install(ss, s)) {
    return false;
  }
  while (s->credits > 0 && !s->blocked) {
    size_t queued = s->sink->queued_bytes(s->sink_arg);
    if (queued == SIZE_MAX) {
      return true; /* gone: its close frees it */
    }
    if (queued >= ss->out_bytes_max) {
      s->blocked = true;
      s->sink->want_drain(s->sink_arg, ss->out_bytes_max / 2);
      return true;
    }
    b->n = b->bytes = b->wire = 0;
    bool alive = s->kind == SUB_KEYS     ? fill_keys(ss, s, b)
                 : s->kind == SUB_PREFIX ? fill_prefix(ss, s, b, m)
                 : s->kind == SUB_GROUP  ? fill_group(ss, s, b)
                                         : fill_channel(ss, s, b);
    if (!alive) {
      return false;
    }
    if (b->n == 0) { /* a tomb's last items may all be for others */
      return s->tomb == NULL || sub_channel_same(ss, s);
    }
    if (!batch_send(ss, s, b) ||
        (s->tomb != NULL && !sub_channel_same(ss, s))) {
      return false;
    }
  }
  return true;
}

void subs_pump(struct subs *ss) {
  ss->pumped_index = fsm_applied_index(ss->fsm);
  while (ss->dirty != NULL) {
    struct sub *s = ss->dirty;
    ss->dirty = s->dirty_next;
    s->dirty = false;
    sub_push(ss, s);
  }
}

/* ---------------------------------------------------------- apply hooks */

/* Stream e->name (of `kind`) was deleted: its offsets would start again
 * at 1, so its started one-stream subscriptions cannot go on. Those that
 * passed its last item end now; those behind get the deleted items (the
 * event's window, as a tomb they share) and end once they delivered
 * them, so that no item before the deletion is skipped: items applied in
 * the same batch as the deletion, or held back by credits, included.
 * One still starting resolves its start against the state after the
 * deletion (its sink hears `started` first, then any end). */
static void stream_deleted(struct subs *ss, const struct fsm_event *e,
                           size_t len, enum sub_kind kind) {
  const char *what = kind == SUB_GROUP ? "group" : "channel";
  struct sub_tomb *t = NULL;
  struct sub *s = u64map_get(&ss->by_name, name_hash(e->name, len));
  while (s != NULL) {
    struct sub *next = s->name_next;
    if (s->kind != kind || !s->started || s->tomb != NULL ||
        s->name_len != len || memcmp(s->name, e->name, len) != 0) {
      s = next;
      continue;
    }
    if (t == NULL && s->next <= e->last_offset && e->window != NULL &&
        ss->tomb_bytes + window_memory_bytes(e->window) <=
            SUBS_TOMB_BYTES_MAX &&
        (t = calloc(1, sizeof *t)) != NULL) {
      t->window = fsm_event_window_take(ss->fsm, e);
      ss->tomb_bytes += window_memory_bytes(t->window);
    }
    if (t != NULL && s->next <= e->last_offset) {
      s->tomb = t;
      t->refs++;
      sub_mark(ss, s);
    } else {
      sub_end(ss, s, SYNOD_ENOTFOUND, 0,
              "%s \"%.64s\" was deleted (at index %" PRIu64 ")%s", what,
              s->name, fsm_applied_index(ss->fsm),
              s->next <= e->last_offset
                  ? " before its items were delivered (no room to keep them)"
                  : "");
    }
    s = next;
  }
}

/* A group's subscriptions share subs_by_name with channels' (the hash of
 * the name), told apart by kind. */
static void group_on_event(struct subs *ss, const struct fsm_event *e,
                           size_t len) {
  if (e->type == FSM_EVENT_GROUP_DELETED) {
    stream_deleted(ss, e, len, SUB_GROUP);
    return;
  }
  for (struct sub *s = u64map_get(&ss->by_name, name_hash(e->name, len));
       s != NULL; s = s->name_next) {
    if (s->kind == SUB_GROUP && s->name_len == len &&
        memcmp(s->name, e->name, len) == 0) {
      sub_mark(ss, s);
    }
  }
}

void subs_on_event(struct subs *ss, const struct fsm_event *e) {
  if (e->type == FSM_EVENT_KEYS_CHANGED) {
    /* The event names no key (a revision may touch 100,000): every
     * watch looks, and reads only the revisions past its position. */
    for (struct sub *s = ss->keys; s != NULL; s = s->name_next) {
      sub_mark(ss, s);
    }
    return;
  }
  size_t len = strlen(e->name);
  if (e->type == FSM_EVENT_GROUP_APPENDED ||
      e->type == FSM_EVENT_GROUP_DELETED) {
    group_on_event(ss, e, len);
    return;
  }
  if (e->type == FSM_EVENT_CHANNEL_APPENDED) {
    for (struct sub *s = u64map_get(&ss->by_name, name_hash(e->name, len));
         s != NULL; s = s->name_next) {
      if (s->kind == SUB_CHANNEL && s->name_len == len &&
          memcmp(s->name, e->name, len) == 0) {
        sub_mark(ss, s);
      }
    }
    for (struct sub *s = ss->prefix; s != NULL; s = s->name_next) {
      if (prefix_matches(s, e->name, len)) {
        sub_mark(ss, s);
      }
    }
    return;
  }
  if (e->type != FSM_EVENT_CHANNEL_DELETED) {
    return;
  }
  stream_deleted(ss, e, len, SUB_CHANNEL);
  /* A prefix subscriber that had not delivered all of the channel's
   * messages would never get them: never a silent skip. */
  for (struct sub *s = ss->prefix; s != NULL;) {
    struct sub *next = s->name_next;
    if (s->started && prefix_matches(s, e->name, len) &&
        prefix_behind(s, e->last_index, e->last_offset)) {
      sub_end(ss, s, SYNOD_ENOTFOUND, 0,
              "channel \"%.64s\" under prefix \"%.64s\" was deleted (at "
              "index %" PRIu64 ") before its messages up to offset %" PRIu64
              " were delivered",
              e->name, s->name, fsm_applied_index(ss->fsm), e->last_offset);
    }
    s = next;
  }
}

/* Before an install: deletions up to the index last pumped, s applied
 * in order; the first install it has not checked since counts. */
static void install_cb(void *arg, uint64_t key, void *value) {
  struct subs *ss = arg;
  struct sub *s = value;
  (void)key;
  if (s->installs_seen == ss->installs || ss->pumped_index < s->install_from) {
    s->install_from = ss->pumped_index;
  }
  sub_mark(ss, s);
}

void subs_on_install(struct subs *ss) {
  u64map_each(&ss->by_key, install_cb, ss);
  ss->installs++;
}

void subs_on_drain(struct subs *ss, uint64_t conn_id) {
  for (struct sub *s = u64map_get(&ss->by_conn, conn_id); s != NULL;
       s = s->conn_next) {
    s->blocked = false;
    sub_mark(ss, s);
  }
  subs_pump(ss);
}

void subs_drained(struct subs *ss, uint64_t handle) {
  struct sub *s = u64map_get(&ss->by_key, handle);
  if (s != NULL) {
    s->blocked = false;
    sub_mark(ss, s);
    subs_pump(ss);
  }
}

/* ------------------------------------------------------------- requests */

/* Where s starts, for its sink's `started`. */
static void reply_fill(struct subs *ss, const struct sub *s,
                       Synod__ChannelSubscribeReply *r) {
  struct fsm_stream st;
  r->subscription_id = s->id;
  r->scope_index = s->start_index;
  if (s->kind == SUB_PREFIX) {
    r->after_index = s->after_index;
    r->after_offset = s->after_offset;
  } else {
    r->offset = s->next;
    if (fsm_channel_stream(ss->fsm, s->name, s->name_len, &st)) {
      r->first_offset = st.first;
      r->next_offset = st.window->next;
      r->created_index = st.created_index;
    }
  }
}

struct prefix_start {
  uint64_t evicted_index;
};

static void prefix_start_cb(void *arg, const struct fsm_stream *st) {
  struct prefix_start *p = arg;
  if (st->evicted_index > p->evicted_index) {
    p->evicted_index = st->evicted_index;
  }
}

/* 0 if s may start at `from` (`what`: "subscribe: offset" and the like)
 * of a stream whose first retained position is `first`; else
 * SYNOD_ECOMPACTED with msg. Never a silent skip to `first`. */
static int sub_retained(const struct sub *s, const char *what, uint64_t from,
                        uint64_t first, char *msg) {
  if (from >= first) {
    return 0;
  }
  errmsg_set(msg,
             "%s %" PRIu64 " of \"%.64s\" is no longer retained; the first "
             "retained is %" PRIu64,
             what, from, s->name, first);
  return SYNOD_ECOMPACTED;
}

/* A start that names an item the client has of the stream (known_index)
 * must find the stream that item is in (fsm_known_check). */
static int known_check(const struct subs *ss, const char *what,
                       const struct sub *s, bool exists,
                       const struct fsm_stream *st, uint64_t known, char *msg) {
  return fsm_known_check(ss->fsm, what, s->name,
                         exists ? &st->created_index : NULL, known, msg);
}

/* Resolves where s starts from the applied state; answers the request.
 * Returns 0 or an error code (with msg) for the request's answer, in
 * which case the caller frees s. */

static int sub_resolve(struct subs *ss, struct sub *s,
                       const Synod__ChannelSubscribe *q, char *msg) {
  struct fsm_stream st;
  bool exists = s->kind == SUB_CHANNEL &&
                fsm_channel_stream(ss->fsm, s->name, s->name_len, &st);
  uint64_t first = exists ? st.first : 1, next = exists ? st.window->next : 1;
  Synod__ChannelSubscribe__From from = q->from;
  int rv;
  if (s->kind == SUB_CHANNEL &&
      (rv = known_check(ss, "subscribe", s, exists, &st, q->known_index,
                        msg)) != 0) {
    return rv;
  }
  if (exists && q->known_index != 0) {
    s->created_index = st.created_index; /* sub_channel_same's record */
  }
  if (q->cursor != NULL && q->cursor[0] != '\0') {
    uint64_t at;
    if (fsm_channel_cursor(ss->fsm, s->name, s->name_len, q->cursor, &at)) {
      s->next = at + 1;
      from = SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_DEFAULT;
    } else if (from == SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_DEFAULT) {
      errmsg_set(msg, "subscribe: channel \"%.64s\" has no cursor \"%.64s\"",
                 s->name, q->cursor);
      return SYNOD_ENOTFOUND;
    }
  } else if (from == SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_DEFAULT) {
    from = SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_NEXT;
  }
  s->start_index = fsm_applied_index(ss->fsm);
  s->installs_seen = ss->installs;
  if (s->kind == SUB_CHANNEL && q->known_index == 0 && q->scope_index != 0 &&
      q->from == SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_OFFSET) {
    /* A resume before its first message: a whole channel of the name,
     * created and deleted since its scope began, was missed. */
    s->start_index =
        q->scope_index < s->start_index ? q->scope_index : s->start_index;
    if ((rv = sub_gone_check(ss, s, s->start_index, true, msg)) != 0) {
      return rv;
    }
  }
  if (s->kind == SUB_PREFIX) {
    struct prefix_start p = {0};
    switch (from) {
    case SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_OFFSET: {
      /* A resume names the index its scope began at (the reply's
       * created_index); a start at a position of the caller's own has
       * its scope there. A deletion after the scope that took messages
       * past the position was missed (sub_gone_check); one before it,
       * such as a channel deleted before a FROM_FIRST start whose
       * position is the oldest retained, is no concern of s. */
      uint64_t scope = q->scope_index != 0 ? q->scope_index : q->after_index;
      s->after_index = q->after_index;
      s->after_offset = q->after_offset;
      s->start_index = scope < s->start_index ? scope : s->start_index;
      return sub_gone_check(ss, s, s->start_index, true, msg);
    }
    case SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_FIRST:
      fsm_channel_streams(ss->fsm, s->name, s->name_len, prefix_start_cb, &p);
      s->after_index = p.evicted_index;
      break;
    default:
      s->after_index = fsm_applied_index(ss->fsm);
      break;
    }
    return 0;
  }
  switch (from) {
  case SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_OFFSET:
    s->next = q->offset;
    break;
  case SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_FIRST:
    s->next = first;
    break;
  case SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_NEXT:
    s->next = next;
    break;
  default: /* from the cursor */
    break;
  }
  return sub_retained(s, "subscribe: offset", s->next, first, msg);
}

/* Where key watch s starts (q is its KeyWatch): from_revision, or after
 * the newest revision applied (after a ReadIndex round, see sub_begin).
 * Returns 0 or SYNOD_ECOMPACTED with msg and the oldest revision
 * retained in *first. */
static int key_resolve(struct subs *ss, struct sub *s, const Synod__KeyWatch *q,
                       char *msg, uint64_t *first) {
  struct fsm_stream st;
  fsm_key_stream(ss->fsm, &st);
  if (q->from_revision == 0) {
    s->rev = fsm_key_revision(ss->fsm) + 1;
    s->rev_event = 0;
    return 0;
  }
  s->rev = q->from_revision;
  s->rev_event = q->after_event;
  *first = st.first;
  return sub_retained(s, "watch: revision", s->rev, st.first, msg);
}

static void key_reply_fill(struct subs *ss, const struct sub *s,
                           Synod__KeyWatchReply *r) {
  struct fsm_stream st;
  fsm_key_stream(ss->fsm, &st);
  r->subscription_id = s->id;
  r->revision = s->rev;
  r->after_event = s->rev_event;
  r->first_revision = st.first;
  r->last_revision = fsm_key_revision(ss->fsm);
}

/* Where group subscription s starts (q is its GroupSubscribe): `from`,
 * or the group's next offset (after a ReadIndex round, see sub_begin).
 * Returns 0, or an error with msg (and the first retained offset in
 * *first for SYNOD_ECOMPACTED). */
static int group_resolve(struct subs *ss, struct sub *s,
                         const Synod__GroupSubscribe *q, char *msg,
                         uint64_t *first) {
  struct fsm_stream st;
  bool exists = fsm_group_stream(ss->fsm, s->name, s->name_len, &st);
  int rv =
      known_check(ss, "group subscribe", s, exists, &st, q->known_index, msg);
  if (rv != 0) {
    return rv;
  }
  if (!exists) {
    errmsg_set(msg, "group subscribe: no group \"%.64s\"", s->name);
    return SYNOD_ENOTFOUND;
  }
  s->created_index = st.created_index;
  s->next = q->from != 0 ? q->from : st.window->next;
  if (s->next > st.window->next) {
    errmsg_set(msg,
               "group subscribe: offset %" PRIu64 " of \"%.64s\" is past "
               "its next offset %" PRIu64,
               s->next, s->name, st.window->next);
    return SYNOD_ERANGE;
  }
  *first = st.first;
  return sub_retained(s, "group subscribe: offset", s->next, st.first, msg);
}

static void group_reply_fill(struct subs *ss, const struct sub *s,
                             Synod__GroupSubscribeReply *r) {
  struct fsm_stream st;
  r->subscription_id = s->id;
  r->offset = s->next;
  if (fsm_group_stream(ss->fsm, s->name, s->name_len, &st)) {
    r->first_offset = st.first;
    r->next_offset = st.window->next;
    r->created_index = st.created_index;
  }
}

/* Tells the sink of s how its start went (r: the kind's reply, or NULL
 * with an error). */
static void sink_started(struct sub *s, int err, const char *msg,
                         uint64_t first_available, const void *r) {
  if (s->kind == SUB_GROUP) {
    s->sink->group_started(s->sink_arg, err, msg, first_available, r);
  } else if (s->kind == SUB_KEYS) {
    s->sink->key_started(s->sink_arg, err, msg, first_available, r);
  } else {
    s->sink->started(s->sink_arg, err, msg, first_available, r);
  }
}

/* The start failed: tells the sink, frees s. */
static void sub_start_fail(struct subs *ss, struct sub *s, int code,
                           uint64_t first_available, const char *msg) {
  sink_started(s, code, msg, first_available, NULL);
  sub_free(ss, s);
}

/* The subscription starts (or fails) now; req holds its ChannelSubscribe
 * or KeyWatch. */
static void sub_start(struct subs *ss, struct sub *s,
                      const Synod__Request *req) {
  char msg[SYNOD_ERRMSG_MAX];
  uint64_t first = 0;
  struct fsm_stream st;
  int rv;
  if (s->kind == SUB_KEYS) {
    rv = key_resolve(ss, s, req->key_watch, msg, &first);
  } else if (s->kind == SUB_GROUP) {
    rv = group_resolve(ss, s, req->group_subscribe, msg, &first);
  } else {
    rv = sub_resolve(ss, s, req->channel_subscribe, msg);
    if (rv == SYNOD_ECOMPACTED &&
        fsm_channel_stream(ss->fsm, s->name, s->name_len, &st)) {
      first = st.first;
    }
  }
  if (rv != 0) {
    sub_start_fail(ss, s, rv, first, msg);
    return;
  }
  Synod__ChannelSubscribeReply r = SYNOD__CHANNEL_SUBSCRIBE_REPLY__INIT;
  Synod__KeyWatchReply kr = SYNOD__KEY_WATCH_REPLY__INIT;
  Synod__GroupSubscribeReply gr = SYNOD__GROUP_SUBSCRIBE_REPLY__INIT;
  s->started = true;
  if (s->kind == SUB_GROUP) {
    s->told_rev = s->next - 1; /* the reply says so */
    s->told_ms = ss->host.now_ms(ss->host.arg);
    group_reply_fill(ss, s, &gr);
    sink_started(s, 0, NULL, 0, &gr);
  } else if (s->kind == SUB_KEYS) {
    key_progress(s, &s->told_rev, &s->told_event); /* the reply says so */
    s->told_ms = ss->host.now_ms(ss->host.arg);
    key_reply_fill(ss, s, &kr);
    sink_started(s, 0, NULL, 0, &kr);
  } else {
    reply_fill(ss, s, &r);
    sink_started(s, 0, NULL, 0, &r);
  }
  sub_mark(ss, s);
  subs_pump(ss);
}

/* An unpacked copy of req (free with ..._free_unpacked), or NULL. */
static Synod__Request *request_copy(const Synod__Request *req) {
  size_t len = synod__request__get_packed_size(req);
  uint8_t *buf = malloc(len ? len : 1);
  if (buf == NULL) {
    return NULL;
  }
  synod__request__pack(req, buf);
  Synod__Request *copy = synod__request__unpack(NULL, len, buf);
  free(buf);
  return copy;
}

/* A start that waits for a ReadIndex round: by key, since the
 * subscription may end (its connection close) meanwhile. */
struct pending_start {
  struct subs *ss;
  uint64_t key;
  Synod__Request *q; /* unpacked copy */
};

static void pending_start_cb(void *arg, int err, const char *errmsg,
                             const uint8_t *resp, size_t len) {
  struct pending_start *p = arg;
  (void)resp;
  (void)len;
  struct sub *s = u64map_get(&p->ss->by_key, p->key);
  if (s != NULL && err != 0) {
    sub_start_fail(p->ss, s, err, 0,
                   errmsg != NULL ? errmsg : synod_strerror(err));
  } else if (s != NULL) {
    sub_start(p->ss, s, p->q);
  }
  synod__request__free_unpacked(p->q, NULL);
  free(p);
}

/* Starts after a ReadIndex round: the position then includes every write
 * acknowledged before the subscribe (a cursor committed, a publish, a
 * key put, a group join), and so does the stream it resolves against. */
static int sub_start_linearizable(struct subs *ss, struct sub *s,
                                  const Synod__Request *q) {
  struct pending_start *p = calloc(1, sizeof *p);
  if (p == NULL || (p->q = request_copy(q)) == NULL) {
    free(p);
    return SYNOD_ENOMEM;
  }
  p->ss = ss;
  p->key = s->key;
  ss->host.read_index(ss->host.arg, SUB_START_TIMEOUT_MS, pending_start_cb, p);
  return 0;
}

/* Puts s in the indexes (key, connection, name or prefix list). Returns
 * 0, or SYNOD_ENOMEM with nothing changed. */
static int sub_link(struct subs *ss, struct sub *s) {
  uint64_t h = name_hash(s->name, s->name_len);
  bool hashed = s->kind == SUB_CHANNEL || s->kind == SUB_GROUP;
  struct sub *by_conn =
      s->conn_id != 0 ? u64map_get(&ss->by_conn, s->conn_id) : NULL;
  struct sub *by_name = hashed ? u64map_get(&ss->by_name, h) : NULL;
  s->key = ++ss->key_next;
  if (u64map_put(&ss->by_key, s->key, s) != 0) {
    return SYNOD_ENOMEM;
  }
  if (s->conn_id != 0 && u64map_put(&ss->by_conn, s->conn_id, s) != 0) {
    u64map_del(&ss->by_key, s->key);
    return SYNOD_ENOMEM;
  }
  if (hashed && u64map_put(&ss->by_name, h, s) != 0) {
    if (by_conn != NULL) {
      u64map_put(&ss->by_conn, s->conn_id, by_conn); /* replaces */
    } else if (s->conn_id != 0) {
      u64map_del(&ss->by_conn, s->conn_id);
    }
    u64map_del(&ss->by_key, s->key);
    return SYNOD_ENOMEM;
  }
  s->conn_next = by_conn;
  if (s->kind == SUB_PREFIX) {
    s->name_next = ss->prefix;
    ss->prefix = s;
  } else if (s->kind == SUB_KEYS) {
    s->name_next = ss->keys;
    ss->keys = s;
  } else {
    s->name_next = by_name;
  }
  if (s->kind == SUB_GROUP) {
    s->group_next = ss->groups;
    ss->groups = s;
  }
  ss->n++;
  return 0;
}

/* How long this replica has known no leader; 0 if it knows one. */
static uint64_t leaderless_ms(struct subs *ss) {
  return ss->host.leaderless_ms(ss->host.arg);
}

static void end_all_cb(void *arg, uint64_t key, void *value) {
  struct sub **list = arg;
  struct sub *s = value;
  (void)key;
  if (s->started) {        /* a start waiting for ReadIndex fails by itself */
    s->dirty_next = *list; /* borrowed: the dirty list is dropped */
    *list = s;
  }
}

/* Tells key watches that moved past events they do not match where they
 * are (an empty frame with the progress), once a second at most, so a
 * client resumes after it and not below the history. */
static void keys_progress(struct subs *ss) {
  uint64_t now = ss->host.now_ms(ss->host.arg), rev;
  uint32_t event;
  for (struct sub *s = ss->keys, *next; s != NULL; s = next) {
    next = s->name_next;
    key_progress(s, &rev, &event);
    if (!s->started || s->blocked || now - s->told_ms < SUB_PROGRESS_MS ||
        (rev == s->told_rev && event == s->told_event)) {
      continue;
    }
    size_t queued = s->sink->queued_bytes(s->sink_arg);
    if (queued == SIZE_MAX || queued >= ss->out_bytes_max) {
      continue; /* gone, or full: the next frame will carry it */
    }
    ss->batch->n = ss->batch->bytes = 0;
    int rv = key_send(ss, s, ss->batch);
    if (rv != 0) {
      sub_end(ss, s, rv, 0, "progress of key watch \"%.64s\" failed: %s",
              s->name, synod_strerror(rv));
    }
  }
}

/* The same for group subscriptions that moved past items for other
 * members. */
static void groups_progress(struct subs *ss) {
  uint64_t now = ss->host.now_ms(ss->host.arg);
  for (struct sub *s = ss->groups, *next; s != NULL; s = next) {
    next = s->group_next;
    if (!s->started || s->blocked || now - s->told_ms < SUB_PROGRESS_MS ||
        s->next - 1 == s->told_rev) {
      continue;
    }
    size_t queued = s->sink->queued_bytes(s->sink_arg);
    if (queued == SIZE_MAX || queued >= ss->out_bytes_max) {
      continue; /* gone, or full: the next frame will carry it */
    }
    ss->batch->n = ss->batch->bytes = 0;
    int rv = group_send(ss, s, ss->batch);
    if (rv != 0) {
      sub_end(ss, s, rv, 0, "progress of group \"%.64s\" failed: %s", s->name,
              synod_strerror(rv));
    }
  }
}

void subs_tick(struct subs *ss) {
  keys_progress(ss);
  groups_progress(ss);
  uint64_t ms = leaderless_ms(ss);
  if (ss->n == 0 || ms < SUBS_LEADERLESS_MS) {
    return;
  }
  /* Collected first: ending changes the maps being walked. */
  struct sub *list = NULL;
  for (struct sub *s = ss->dirty; s != NULL; s = s->dirty_next) {
    s->dirty = false;
  }
  ss->dirty = NULL;
  u64map_each(&ss->by_key, end_all_cb, &list);
  for (struct sub *s = list, *next; s != NULL; s = next) {
    next = s->dirty_next;
    sub_end(ss, s, SYNOD_ENOLEADER, 0,
            "replica %s has known no leader for %" PRIu64
            " ms; resume on another replica",
            ss->name, ms);
  }
}

/* What every subscription is checked for: a leader known lately, a free
 * id, the limits, the credits. */
static int sub_check_common(struct subs *ss, uint64_t conn_id, uint64_t id,
                            uint32_t credits, char *msg) {
  unsigned per_conn = 0;
  if (leaderless_ms(ss) >= SUBS_LEADERLESS_MS) {
    errmsg_set(msg,
               "subscribe: replica %s has known no leader for %" PRIu64
               " ms; subscribe on another replica",
               ss->name, leaderless_ms(ss));
    return SYNOD_ENOLEADER;
  }
  for (struct sub *s = conn_id != 0 ? u64map_get(&ss->by_conn, conn_id) : NULL;
       s != NULL; s = s->conn_next) {
    if (s->id == id) {
      errmsg_set(msg, "subscribe: subscription %" PRIu64 " exists", id);
      return SYNOD_EEXIST;
    }
    per_conn++;
  }
  if (per_conn >= SUBS_PER_CONN_MAX || ss->n >= SUBS_MAX) {
    errmsg_set(msg,
               "subscribe: %u subscriptions on this connection, %" PRIu64
               " on this replica (at most %d and %d)",
               per_conn, ss->n, SUBS_PER_CONN_MAX, SUBS_MAX);
    return SYNOD_ELIMIT;
  }
  if (credits > SUB_CREDITS_MAX) {
    errmsg_set(msg, "subscribe: %u credits, over %d", credits, SUB_CREDITS_MAX);
    return SYNOD_ERANGE;
  }
  return 0;
}

/* Subscriptions in a list linked through name_next. */
static unsigned list_count(const struct sub *s) {
  unsigned count = 0;
  for (; s != NULL; s = s->name_next) {
    count++;
  }
  return count;
}

static int subscribe_check(struct subs *ss, const Synod__ChannelSubscribe *q,
                           char *msg) {
  const char *name = q->channel != NULL ? q->channel : "";
  size_t len = strlen(name);
  bool cursor = q->cursor != NULL && q->cursor[0] != '\0';
  int rv = fsm_channel_name_check(ss->fsm, name, len, q->prefix, msg);
  if (rv != 0) {
    return rv;
  }
  if (q->prefix && cursor) {
    errmsg_set(msg,
               "subscribe: a prefix subscription (\"%.64s\") cannot "
               "start from a cursor",
               name);
    return SYNOD_EINVAL;
  }
  if (cursor) {
    rv = fsm_channel_name_check(ss->fsm, q->cursor, strlen(q->cursor), false,
                                msg);
    if (rv != 0) {
      return rv;
    }
  }
  if ((unsigned)q->from > SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_NEXT) {
    errmsg_set(msg, "subscribe: unknown start %d", (int)q->from);
    return SYNOD_EINVAL;
  }
  if (q->from == SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_OFFSET && !q->prefix &&
      q->offset == 0) {
    errmsg_set(msg, "subscribe: offset 0 of \"%.64s\": offsets start at 1",
               name);
    return SYNOD_EINVAL;
  }
  if (q->from == SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_OFFSET && q->prefix &&
      q->after_index == 0 && q->after_offset != 0) {
    errmsg_set(msg,
               "subscribe: after_offset %" PRIu64 " with after_index 0 of "
               "prefix \"%.64s\": no message is at index 0",
               q->after_offset, name);
    return SYNOD_EINVAL;
  }
  /* Each costs a walk over its channels per publish. */
  if (q->prefix && list_count(ss->prefix) >= SUBS_PREFIX_MAX) {
    errmsg_set(msg,
               "subscribe: %u prefix subscriptions on this replica (at "
               "most %d)",
               list_count(ss->prefix), SUBS_PREFIX_MAX);
    return SYNOD_ELIMIT;
  }
  return 0;
}

static int key_watch_check(struct subs *ss, const Synod__KeyWatch *q,
                           char *msg) {
  char why[SYNOD_ERRMSG_MAX];
  if (fsm_key_check(q->key.data, q->key.len, q->prefix, why) != 0) {
    errmsg_set(msg, "watch: %s", why);
    return SYNOD_EINVAL;
  }
  if (q->from_revision == 0 && q->after_event != 0) {
    errmsg_set(msg,
               "watch: after_event %u without from_revision: it counts "
               "events of from_revision",
               q->after_event);
    return SYNOD_EINVAL;
  }
  /* Each one is looked at on every new revision. */
  if (list_count(ss->keys) >= SUBS_KEYS_MAX) {
    errmsg_set(msg, "watch: %u key watches on this replica (at most %d)",
               list_count(ss->keys), SUBS_KEYS_MAX);
    return SYNOD_ELIMIT;
  }
  return 0;
}

/* A group's name is checked as a channel's; whether it exists is for
 * the start (group_resolve). A subscription that names no member is an
 * observer of every item (a client's synod_group_watch, or the HTTP
 * API's stream): nothing it reads is not already open to GroupRead. */
static int group_subscribe_check(struct subs *ss,
                                 const Synod__GroupSubscribe *q, char *msg) {
  const char *name = q->group != NULL ? q->group : "";
  size_t member_len = q->member != NULL ? strlen(q->member) : 0;
  int rv = fsm_channel_name_check(ss->fsm, name, strlen(name), false, msg);
  if (rv != 0) {
    return rv;
  }
  if (member_len > 256) {
    errmsg_set(msg,
               "group subscribe: member name of %zu bytes (at most 256) in "
               "\"%.64s\"",
               member_len, name);
    return SYNOD_EINVAL;
  }
  return 0;
}

/* Checks req (a ChannelSubscribe, a KeyWatch or a GroupSubscribe). */
static int sub_check(struct subs *ss, uint64_t conn_id,
                     const Synod__Request *req, char *msg) {
  int rv;
  switch (req->body_case) {
  case SYNOD__REQUEST__BODY_KEY_WATCH:
    rv = sub_check_common(ss, conn_id, req->key_watch->subscription_id,
                          req->key_watch->credits, msg);
    return rv != 0 ? rv : key_watch_check(ss, req->key_watch, msg);
  case SYNOD__REQUEST__BODY_GROUP_SUBSCRIBE:
    rv = sub_check_common(ss, conn_id, req->group_subscribe->subscription_id,
                          req->group_subscribe->credits, msg);
    return rv != 0 ? rv : group_subscribe_check(ss, req->group_subscribe, msg);
  default:
    rv = sub_check_common(ss, conn_id, req->channel_subscribe->subscription_id,
                          req->channel_subscribe->credits, msg);
    return rv != 0 ? rv : subscribe_check(ss, req->channel_subscribe, msg);
  }
}

/* Fills the kind, name and flags of s from req. Returns false if out of
 * memory. */
static bool sub_fill(struct sub *s, const Synod__Request *req,
                     uint32_t *credits) {
  if (req->body_case == SYNOD__REQUEST__BODY_KEY_WATCH) {
    const Synod__KeyWatch *q = req->key_watch;
    s->kind = SUB_KEYS;
    s->id = q->subscription_id;
    s->key_prefix = q->prefix;
    s->prev_kv = q->prev_kv;
    s->name_len = q->key.len;
    s->name = malloc(q->key.len + 1);
    if (s->name != NULL && q->key.len > 0) {
      memcpy(s->name, q->key.data, q->key.len);
    }
    if (s->name != NULL) {
      s->name[q->key.len] = '\0';
    }
    *credits = q->credits;
  } else if (req->body_case == SYNOD__REQUEST__BODY_GROUP_SUBSCRIBE) {
    const Synod__GroupSubscribe *q = req->group_subscribe;
    s->kind = SUB_GROUP;
    s->id = q->subscription_id;
    s->name = strdup(q->group);
    s->name_len = strlen(q->group);
    s->member = strdup(q->member != NULL ? q->member : "");
    s->member_len = strlen(s->member != NULL ? s->member : "");
    *credits = q->credits;
    return s->name != NULL && s->member != NULL;
  } else {
    const Synod__ChannelSubscribe *q = req->channel_subscribe;
    const char *name = q->channel != NULL ? q->channel : "";
    s->kind = q->prefix ? SUB_PREFIX : SUB_CHANNEL;
    s->id = q->subscription_id;
    s->name_len = strlen(name);
    s->name = strdup(name);
    *credits = q->credits;
  }
  return s->name != NULL;
}

/* A checked, linked, not yet started subscription of req (its
 * ChannelSubscribe or KeyWatch) to `sink`, or NULL with the code in *rv
 * and why in msg. */
static struct sub *sub_new(struct subs *ss, uint64_t conn_id,
                           const Synod__Request *req,
                           const struct node_sub_sink *sink, void *sink_arg,
                           int *rv, char *msg) {
  uint32_t credits = 0;
  *rv = sub_check(ss, conn_id, req, msg);
  if (*rv != 0) {
    return NULL;
  }
  struct sub *s = calloc(1, sizeof *s);
  if (s != NULL) {
    s->ss = ss;
    s->conn_id = conn_id;
    s->sink = sink;
    s->sink_arg = sink_arg;
    s->credited = conn_id != 0;
  }
  if (s == NULL || !sub_fill(s, req, &credits) || sub_link(ss, s) != 0) {
    if (s != NULL) {
      free(s->name);
      free(s->member);
    }
    free(s);
    *rv = SYNOD_ENOMEM;
    errmsg_set(msg, "subscribe: out of memory");
    return NULL;
  }
  s->credits = !s->credited ? UINT64_MAX
               : credits    ? credits
                            : SUB_CREDITS_DEFAULT;
  return s;
}

/* Starts s after a ReadIndex round, so that this replica has applied
 * every write acknowledged before the subscribe when it resolves the
 * start: a cursor, FROM_NEXT and a key watch from revision 0 depend on
 * them, and so does any start on a stream that must exist (a group: a
 * lagging replica would answer SYNOD_ENOTFOUND or SYNOD_ERANGE for a
 * group or offset acknowledged elsewhere) or that may have been deleted
 * and created again (a channel at an offset or from its first message:
 * a lagging replica would deliver the old channel's messages under the
 * new one's offsets). Only a key watch from an explicit revision starts
 * at once: revisions are never reused, a revision not applied yet is
 * waited for, and a lagging replica retains at least what the leader
 * does, so it can neither answer wrongly nor deliver another stream. */
static void sub_begin(struct subs *ss, struct sub *s,
                      const Synod__Request *req) {
  bool now = s->kind == SUB_KEYS && req->key_watch->from_revision != 0;
  if (now) {
    sub_start(ss, s, req);
  } else if (sub_start_linearizable(ss, s, req) != 0) {
    sub_start_fail(ss, s, SYNOD_ENOMEM, 0, "subscribe: out of memory");
  }
}

/* A client's subscribe request (ChannelSubscribe or KeyWatch). */
static void subs_client_begin(struct subs *ss, uint64_t conn_id,
                              uint64_t request_id, const Synod__Request *req) {
  char msg[SYNOD_ERRMSG_MAX];
  int rv;
  struct sub *s = sub_new(ss, conn_id, req, &client_sink, NULL, &rv, msg);
  if (s == NULL) {
    ss->host.send_error(ss->host.arg, conn_id, request_id, rv, 0, msg);
    return;
  }
  s->sink_arg = s;
  s->request_id = request_id;
  sub_begin(ss, s, req);
}

void subs_subscribe(struct subs *ss, uint64_t conn_id, uint64_t request_id,
                    const Synod__ChannelSubscribe *q) {
  Synod__Request req = SYNOD__REQUEST__INIT;
  req.body_case = SYNOD__REQUEST__BODY_CHANNEL_SUBSCRIBE;
  req.channel_subscribe = (Synod__ChannelSubscribe *)q;
  subs_client_begin(ss, conn_id, request_id, &req);
}

void subs_key_watch(struct subs *ss, uint64_t conn_id, uint64_t request_id,
                    const Synod__KeyWatch *q) {
  Synod__Request req = SYNOD__REQUEST__INIT;
  req.body_case = SYNOD__REQUEST__BODY_KEY_WATCH;
  req.key_watch = (Synod__KeyWatch *)q;
  subs_client_begin(ss, conn_id, request_id, &req);
}

void subs_group_subscribe(struct subs *ss, uint64_t conn_id,
                          uint64_t request_id, const Synod__GroupSubscribe *q) {
  Synod__Request req = SYNOD__REQUEST__INIT;
  req.body_case = SYNOD__REQUEST__BODY_GROUP_SUBSCRIBE;
  req.group_subscribe = (Synod__GroupSubscribe *)q;
  subs_client_begin(ss, conn_id, request_id, &req);
}

/* An in-process subscription of req: started at the end of the loop
 * turn (subs_start_queued). */
int subs_sub_request(struct subs *ss, const Synod__Request *req,
                     const struct node_sub_sink *sink, void *arg,
                     uint64_t *handle, char *errmsg) {
  int rv;
  Synod__Request *copy = request_copy(req);
  struct sub *s =
      copy != NULL ? sub_new(ss, 0, req, sink, arg, &rv, errmsg) : NULL;
  if (copy == NULL) {
    rv = SYNOD_ENOMEM;
    errmsg_set(errmsg, "subscribe: out of memory");
  }
  if (s == NULL) {
    if (copy != NULL) {
      synod__request__free_unpacked(copy, NULL);
    }
    return rv;
  }
  s->start_q = copy;
  s->start_next = ss->starting;
  ss->starting = s;
  *handle = s->key;
  return 0;
}

void subs_start_queued(struct subs *ss) {
  while (ss->starting != NULL) {
    struct sub *s = ss->starting;
    Synod__Request *q = s->start_q;
    ss->starting = s->start_next;
    s->start_q = NULL;
    sub_begin(ss, s, q);
    synod__request__free_unpacked(q, NULL);
  }
}

void subs_cancel(struct subs *ss, uint64_t handle) {
  struct sub *s = u64map_get(&ss->by_key, handle);
  if (s != NULL) {
    sub_free(ss, s);
  }
}

void subs_credit(struct subs *ss, uint64_t conn_id, uint64_t request_id,
                 const Synod__ChannelCredit *q) {
  struct sub *s = sub_find(ss, conn_id, q->subscription_id);
  if (s == NULL) {
    char msg[SYNOD_ERRMSG_MAX];
    errmsg_set(msg, "credit: no subscription %" PRIu64 " on this connection",
               q->subscription_id);
    ss->host.send_error(ss->host.arg, conn_id, request_id, SYNOD_ENOTFOUND, 0,
                        msg);
    return;
  }
  s->credits += q->credits;
  if (s->credits > SUB_CREDITS_MAX) {
    s->credits = SUB_CREDITS_MAX;
  }
  ss->host.send_ok(ss->host.arg, conn_id, request_id);
  sub_mark(ss, s);
  subs_pump(ss);
}

void subs_unsubscribe(struct subs *ss, uint64_t conn_id, uint64_t request_id,
                      const Synod__ChannelUnsubscribe *q) {
  struct sub *s = sub_find(ss, conn_id, q->subscription_id);
  if (s == NULL) {
    char msg[SYNOD_ERRMSG_MAX];
    errmsg_set(msg,
               "unsubscribe: no subscription %" PRIu64 " on this connection",
               q->subscription_id);
    ss->host.send_error(ss->host.arg, conn_id, request_id, SYNOD_ENOTFOUND, 0,
                        msg);
    return;
  }
  if (!s->started) { /* its start waits for ReadIndex: answer it now */
    sub_start_fail(ss, s, SYNOD_ECANCELED, 0,
                   "subscribe: unsubscribed before it started");
  } else {
    sub_free(ss, s);
  }
  ss->host.send_ok(ss->host.arg, conn_id, request_id);
}

uint64_t subs_count(struct subs *ss, const char *name) {
  size_t len = strlen(name);
  uint64_t count = 0;
  for (struct sub *s = u64map_get(&ss->by_name, name_hash(name, len));
       s != NULL; s = s->name_next) {
    count += s->kind == SUB_CHANNEL && s->name_len == len &&
             memcmp(s->name, name, len) == 0;
  }
  for (struct sub *s = ss->prefix; s != NULL; s = s->name_next) {
    count += prefix_matches(s, name, len);
  }
  return count;
}

uint64_t subs_key_watches(struct subs *ss) {
  return list_count(ss->keys);
}

uint64_t subs_group_subscriptions(struct subs *ss) {
  uint64_t count = 0;
  for (const struct sub *s = ss->groups; s != NULL; s = s->group_next) {
    count++;
  }
  return count;
}

void subs_on_close(struct subs *ss, uint64_t conn_id) {
  struct sub *s;
  while ((s = u64map_get(&ss->by_conn, conn_id)) != NULL) {
    sub_free(ss, s);
  }
}

static void free_cb(void *arg, uint64_t key, void *value) {
  (void)key;
  tomb_release(arg, value); /* the last one frees a deleted stream's items */
  sub_release(value);
}

void subs_close(struct subs *ss) {
  u64map_each(&ss->by_key, free_cb, ss);
  u64map_close(&ss->by_key);
  u64map_close(&ss->by_conn);
  u64map_close(&ss->by_name);
  ss->prefix = ss->keys = ss->dirty = ss->starting = NULL;
  ss->groups = NULL;
  ss->n = 0;
  free(ss->batch);
  free(ss->merge);
  ss->batch = NULL;
  ss->merge = NULL;
}
