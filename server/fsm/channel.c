/* Channels: ordered, durable messages at dense offsets per channel, kept
 * in a retained window (window.c) under per-channel limits (count, bytes,
 * age) and a server-wide cap on retained bytes; exactly-once publishes in
 * a session through the session's results, and for session-less
 * publishers through a window of recent message ids. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "fsm_int.h"

int fsm_channel_cmp(const void *key, const struct otree_node *n) {
  const struct fsm_channel *c = FSM_CONTAINER(n, struct fsm_channel, by_name);
  return fsm_name_cmp(key, c->name, c->name_len);
}

struct fsm_channel *fsm_channel_new(struct fsm *f, const char *name, size_t len,
                                    const struct fsm_channel_limits *lim) {
  struct fsm_channel *c = fsm_xcalloc(1, sizeof *c);
  c->name = fsm_xstrndup(name, len);
  c->name_len = len;
  c->limits = *lim;
  c->created_index = f->index;
  window_init(&c->window);
  c->ids_cap = f->opt.channel_ids_max;
  c->ids = fsm_xcalloc(c->ids_cap, sizeof *c->ids);
  return c;
}

void fsm_channel_free(struct fsm_channel *c) {
  if (c == NULL) {
    return;
  }
  window_close(&c->window);
  for (uint32_t i = 0; c->ids != NULL && i < c->ids_n; i++) {
    free(c->ids[(c->ids_head + i) % c->ids_cap].id);
  }
  free(c->ids);
  for (uint32_t i = 0; i < c->cursors_n; i++) {
    free(c->cursors[i].name);
  }
  free(c->cursors);
  free(c->name);
  free(c);
}

static struct fsm_channel *channel_find(const struct fsm *f, const char *name,
                                        size_t len) {
  struct fsm_name k = {name, len};
  struct otree_node *n = otree_find(&f->channels, &k);
  return n ? FSM_CONTAINER(n, struct fsm_channel, by_name) : NULL;
}

/* ------------------------------------------------------------- limits */

/* The defaults; max_bytes never above the server-wide cap in force. */
static void limits_default(const struct fsm *f, struct fsm_channel_limits *l) {
  uint64_t cap = fsm_channels_bytes_max(f);
  *l = (struct fsm_channel_limits){
      .max_messages = f->opt.channel_messages_default,
      .max_bytes = f->opt.channel_bytes_default < cap
                       ? f->opt.channel_bytes_default
                       : cap,
      .max_message_bytes = f->opt.channel_message_bytes_default};
}

int fsm_request_bounds_check(const Synod__Request *req, char *msg) {
  if (req->body_case == SYNOD__REQUEST__BODY_CHANNEL_PUBLISH &&
      req->channel_publish != NULL &&
      req->channel_publish->n_messages > FSM_CHANNEL_BATCH_MAX) {
    errmsg_set(msg, "channel publish: %zu messages in one batch, over %u",
               req->channel_publish->n_messages, FSM_CHANNEL_BATCH_MAX);
    return SYNOD_ERANGE;
  }
  const Synod__ChannelLimits *l =
      req->body_case == SYNOD__REQUEST__BODY_CHANNEL_CREATE &&
              req->channel_create != NULL
          ? req->channel_create->limits
          : NULL;
  if (l != NULL && l->max_messages > FSM_CHANNEL_MESSAGES_CAP) {
    errmsg_set(msg, "channel limits: max_messages %" PRIu64 " is over %u",
               l->max_messages, FSM_CHANNEL_MESSAGES_CAP);
    return SYNOD_ERANGE;
  }
  if (l != NULL && l->max_age_ms > FSM_CHANNEL_AGE_MAX_MS) {
    errmsg_set(msg,
               "channel limits: max_age_ms %" PRIu64
               " is over %llu (100 years; 0 is no limit)",
               l->max_age_ms, FSM_CHANNEL_AGE_MAX_MS);
    return SYNOD_ERANGE;
  }
  return 0;
}

/* Resolves requested limits (zero fields take the defaults) and checks
 * them against the caps. */
static int limits_resolve(const struct fsm *f, const Synod__ChannelLimits *in,
                          struct fsm_channel_limits *out, char *msg) {
  limits_default(f, out);
  if (in == NULL) {
    return 0;
  }
  out->max_messages = in->max_messages ? in->max_messages : out->max_messages;
  out->max_bytes = in->max_bytes ? in->max_bytes : out->max_bytes;
  out->max_age_ms = in->max_age_ms;
  out->max_message_bytes =
      in->max_message_bytes ? in->max_message_bytes : out->max_message_bytes;
  out->refuse_when_full = in->refuse_when_full;
  if (out->max_message_bytes > f->opt.channel_message_bytes_cap) {
    errmsg_set(msg, "channel limits: max_message_bytes %u is over %u",
               out->max_message_bytes, f->opt.channel_message_bytes_cap);
    return SYNOD_ERANGE;
  }
  if (out->max_bytes > fsm_channels_bytes_max(f)) {
    errmsg_set(msg,
               "channel limits: max_bytes %" PRIu64
               " is over the server's %" PRIu64,
               out->max_bytes, fsm_channels_bytes_max(f));
    return SYNOD_ERANGE;
  }
  return 0;
}

/* Field by field: the struct's padding bytes are whatever the stack or
 * the heap held, so memcmp would refuse equal limits at random, and
 * differently on each replica. */
static bool limits_equal(const struct fsm_channel_limits *a,
                         const struct fsm_channel_limits *b) {
  return a->max_messages == b->max_messages && a->max_bytes == b->max_bytes &&
         a->max_age_ms == b->max_age_ms &&
         a->max_message_bytes == b->max_message_bytes &&
         a->refuse_when_full == b->refuse_when_full;
}

static void limits_to_pb(const struct fsm_channel_limits *l,
                         Synod__ChannelLimits *pb) {
  synod__channel_limits__init(pb);
  pb->max_messages = l->max_messages;
  pb->max_bytes = l->max_bytes;
  pb->max_age_ms = l->max_age_ms;
  pb->max_message_bytes = l->max_message_bytes;
  pb->refuse_when_full = l->refuse_when_full;
}

/* -------------------------------------------------------------- window */

static void channel_evict(struct fsm *f, struct fsm_channel *c) {
  uint64_t before = c->window.bytes;
  window_evict(&c->window);
  f->channels_bytes -= before - c->window.bytes;
}

static bool channel_expired(const struct fsm *f, const struct fsm_channel *c,
                            const struct window_item *it) {
  return c->limits.max_age_ms != 0 &&
         it->time_ms + c->limits.max_age_ms <= f->time_ms;
}

/* Drops the messages older than max_age in cluster time. */
static void channel_expire(struct fsm *f, struct fsm_channel *c) {
  struct window_item it;
  while (window_front(&c->window, &it) && channel_expired(f, c, &it)) {
    channel_evict(f, c);
  }
}

/* The first offset a reader can have: expired messages still in the
 * window (until the next publish drops them) count as gone. */
static uint64_t channel_first(const struct fsm *f,
                              const struct fsm_channel *c) {
  struct window_iter iter;
  struct window_item it;
  window_iter_seek(&c->window, c->window.first, &iter);
  while (window_iter_next(&iter, &it)) {
    if (!channel_expired(f, c, &it)) {
      return it.pos;
    }
  }
  return c->window.next;
}

/* Makes room for n messages of `bytes` in all: drops the oldest, or
 * refuses, as the channel's policy says. Changes nothing when refusing. */
static int channel_room(struct fsm *f, struct fsm_channel *c, uint64_t n,
                        uint64_t bytes, char *msg) {
  const struct fsm_channel_limits *l = &c->limits;
  uint64_t count = c->window.next - c->window.first;
  uint64_t mine = c->window.bytes, others = f->channels_bytes - mine;
  if (n > l->max_messages || bytes > l->max_bytes ||
      others + bytes > fsm_channels_bytes_max(f)) {
    errmsg_set(msg,
               "channel publish: %" PRIu64 " messages of %" PRIu64
               " bytes do not fit in \"%.64s\" (at most %" PRIu64
               " messages, %" PRIu64 " bytes; %" PRIu64
               " bytes retained by other channels of %" PRIu64 ")",
               n, bytes, c->name, l->max_messages, l->max_bytes, others,
               fsm_channels_bytes_max(f));
    return SYNOD_ELIMIT;
  }
  bool full = count + n > l->max_messages || mine + bytes > l->max_bytes ||
              f->channels_bytes + bytes > fsm_channels_bytes_max(f);
  if (full && l->refuse_when_full) {
    errmsg_set(msg,
               "channel publish: \"%.64s\" is full (%" PRIu64
               " messages, %" PRIu64 " bytes; its limits %" PRIu64 ", %" PRIu64
               "; server %" PRIu64 " of %" PRIu64 " bytes)",
               c->name, count, mine, l->max_messages, l->max_bytes,
               f->channels_bytes, fsm_channels_bytes_max(f));
    return SYNOD_ELIMIT;
  }
  while (c->window.next - c->window.first + n > l->max_messages ||
         c->window.bytes + bytes > l->max_bytes ||
         f->channels_bytes + bytes > fsm_channels_bytes_max(f)) {
    channel_evict(f, c);
  }
  return 0;
}

/* ------------------------------------------------------------ message ids */

static struct fsm_channel_id *id_at(const struct fsm_channel *c, uint32_t i) {
  return &c->ids[(c->ids_head + i) % c->ids_cap];
}

/* Forgets ids older than the window. */
static void ids_expire(const struct fsm *f, struct fsm_channel *c) {
  while (c->ids_n > 0 &&
         id_at(c, 0)->time_ms + f->opt.channel_id_window_ms <= f->time_ms) {
    free(id_at(c, 0)->id);
    c->ids_head = (c->ids_head + 1) % c->ids_cap;
    c->ids_n--;
  }
}

static const struct fsm_channel_id *ids_find(const struct fsm_channel *c,
                                             const char *id) {
  for (uint32_t i = 0; i < c->ids_n; i++) {
    const struct fsm_channel_id *x = id_at(c, i);
    if (strcmp(x->id, id) == 0) {
      return x;
    }
  }
  return NULL;
}

void fsm_channel_id_push(struct fsm_channel *c, const char *id, uint64_t first,
                         uint64_t last, uint64_t index, uint64_t time_ms) {
  if (c->ids_n == c->ids_cap) {
    free(id_at(c, 0)->id);
    c->ids_head = (c->ids_head + 1) % c->ids_cap;
    c->ids_n--;
  }
  struct fsm_channel_id *x = id_at(c, c->ids_n++);
  *x = (struct fsm_channel_id){fsm_xstrndup(id, strlen(id)), first, last, index,
                               time_ms};
}

/* ------------------------------------------------------------ requests */

/* Validates the channel name of a request: name and length out. */
#define CHANNEL_NAME(field, what)                                              \
  const char *name = fsm_str(req->field->name);                                \
  size_t len = strlen(name);                                                   \
  int rv = fsm_name_check(f, what, name, len, r->msg);                         \
  if (rv != 0) {                                                               \
    return rv;                                                                 \
  }

static int channel_get_or_create(struct fsm *f, const char *what,
                                 const char *name, size_t len,
                                 const struct fsm_channel_limits *lim,
                                 struct fsm_channel **out, char *msg) {
  struct fsm_channel *c = channel_find(f, name, len);
  if (c == NULL) {
    if (f->channels.count >= f->opt.channels_max) {
      errmsg_set(msg, "%s: channels_max %u reached", what, f->opt.channels_max);
      return SYNOD_ELIMIT;
    }
    c = fsm_channel_new(f, name, len, lim);
    otree_insert(&f->channels, &c->by_name, &(struct fsm_name){name, len});
  }
  *out = c;
  return 0;
}

/* Fills ci (and its limits, lp) with what c is. */
static void info_fill(const struct fsm *f, const struct fsm_channel *c,
                      Synod__ChannelInfo *ci, Synod__ChannelLimits *lp) {
  synod__channel_info__init(ci);
  limits_to_pb(&c->limits, lp);
  ci->name = c->name;
  ci->limits = lp;
  ci->first_offset = channel_first(f, c);
  ci->next_offset = c->window.next;
  ci->messages = c->window.next - ci->first_offset;
  ci->bytes = c->window.bytes;
  ci->cursors = c->cursors_n;
  ci->created_index = c->created_index;
}

/* Fills the info reply of c. */
static void reply_info(const struct fsm *f, struct fsm_reply *r,
                       const struct fsm_channel *c) {
  Synod__ChannelInfo *ci = &r->u.channel;
  info_fill(f, c, ci, &r->limits);
  r->resp.body_case = SYNOD__RESPONSE__BODY_CHANNEL_INFO;
  r->resp.channel_info = ci;
}

/* Creating a channel that exists succeeds if it asks for the same
 * limits, and is refused otherwise. */
int fsm_channel_create(struct fsm *f, struct fsm_session *s,
                       const Synod__Request *req, struct fsm_reply *r) {
  struct fsm_channel_limits lim;
  struct fsm_channel *c;
  (void)s;
  CHANNEL_NAME(channel_create, "channel create");
  rv = limits_resolve(f, req->channel_create->limits, &lim, r->msg);
  if (rv != 0) {
    return rv;
  }
  c = channel_find(f, name, len);
  if (c != NULL && !limits_equal(&c->limits, &lim)) {
    errmsg_set(r->msg, "channel create: \"%.64s\" exists with other limits",
               name);
    return SYNOD_EEXIST;
  }
  rv = channel_get_or_create(f, "channel create", name, len, &lim, &c, r->msg);
  if (rv == 0) {
    reply_info(f, r, c);
  }
  return rv;
}

static int publish_check(const struct fsm_channel_limits *l,
                         const Synod__ChannelPublish *p, uint64_t *bytes,
                         char *msg) {
  *bytes = 0;
  if (p->n_messages == 0) {
    errmsg_set(msg, "channel publish: no messages");
    return SYNOD_EINVAL;
  }
  for (size_t i = 0; i < p->n_messages; i++) {
    if (p->messages[i].len > l->max_message_bytes) {
      errmsg_set(msg,
                 "channel publish: message %zu is %zu bytes, over the "
                 "channel's max_message_bytes %u",
                 i, p->messages[i].len, l->max_message_bytes);
      return SYNOD_ETOOBIG;
    }
    *bytes += p->messages[i].len;
  }
  return 0;
}

static void reply_published(struct fsm_reply *r, uint64_t first, uint64_t last,
                            uint64_t index, bool duplicate) {
  Synod__ChannelPublishReply *pr = &r->u.publish;
  synod__channel_publish_reply__init(pr);
  pr->first_offset = first;
  pr->last_offset = last;
  pr->index = index;
  pr->duplicate = duplicate;
  r->resp.body_case = SYNOD__RESPONSE__BODY_CHANNEL_PUBLISH;
  r->resp.channel_publish = pr;
}

int fsm_channel_publish(struct fsm *f, struct fsm_session *s,
                        const Synod__Request *req, struct fsm_reply *r) {
  const Synod__ChannelPublish *p = req->channel_publish;
  const char *id = fsm_str(p->message_id);
  struct fsm_channel_limits lim;
  struct fsm_channel *c;
  uint64_t bytes;
  (void)s;
  CHANNEL_NAME(channel_publish, "channel publish");
  c = channel_find(f, name, len);
  limits_default(f, &lim);
  rv = publish_check(c ? &c->limits : &lim, p, &bytes, r->msg);
  if (rv == 0 && strlen(id) > f->opt.name_bytes_max) {
    errmsg_set(r->msg, "channel publish: message_id of %zu bytes, over %u",
               strlen(id), f->opt.name_bytes_max);
    rv = SYNOD_EINVAL;
  }
  if (rv == 0 && c == NULL) {
    rv = channel_get_or_create(f, "channel publish", name, len, &lim, &c,
                               r->msg);
  }
  if (rv != 0) {
    return rv;
  }
  ids_expire(f, c);
  const struct fsm_channel_id *seen = id[0] ? ids_find(c, id) : NULL;
  if (seen != NULL) {
    reply_published(r, seen->first_offset, seen->last_offset, seen->index,
                    true);
    return 0;
  }
  channel_expire(f, c);
  rv = channel_room(f, c, p->n_messages, bytes, r->msg);
  if (rv != 0) {
    return rv;
  }
  uint64_t first = c->window.next;
  for (size_t i = 0; i < p->n_messages; i++) {
    window_append(&c->window, f->index, f->time_ms, p->messages[i].data,
                  p->messages[i].len);
  }
  f->channels_bytes += bytes;
  if (id[0]) {
    fsm_channel_id_push(c, id, first, c->window.next - 1, f->index, f->time_ms);
  }
  reply_published(r, first, c->window.next - 1, f->index, false);
  fsm_event_push(f, FSM_EVENT_CHANNEL_APPENDED)->name = c->name;
  return 0;
}

#define CHANNEL_READ_MAX_DEFAULT 1000
#define CHANNEL_READ_BYTES_DEFAULT (1u << 20)

/* A read of a channel that does not exist sees an empty one: offsets
 * start at 1, so a subscriber can wait for the first publish. Unless the
 * reader names a message it read (known_index): then the channel must be
 * the one that message is in, created at or before it. */
int fsm_channel_read(struct fsm *f, struct fsm_session *s,
                     const Synod__Request *req, struct fsm_reply *r) {
  const Synod__ChannelRead *q = req->channel_read;
  (void)s;
  CHANNEL_NAME(channel_read, "channel read");
  const struct fsm_channel *c = channel_find(f, name, len);
  if ((rv = fsm_known_check(f, "channel read", name,
                            c ? &c->created_index : NULL, q->known_index,
                            r->msg)) != 0) {
    return rv;
  }
  uint64_t first = c ? channel_first(f, c) : 1, next = c ? c->window.next : 1;
  uint64_t from = q->from ? q->from : first;
  uint32_t max = q->max && q->max < CHANNEL_READ_MAX_DEFAULT
                     ? q->max
                     : CHANNEL_READ_MAX_DEFAULT;
  uint64_t max_bytes = q->max_bytes ? q->max_bytes : CHANNEL_READ_BYTES_DEFAULT;
  if (from < first) {
    errmsg_set(r->msg,
               "channel read: offset %" PRIu64 " of \"%.64s\" is compacted; "
               "the first retained is %" PRIu64,
               from, name, first);
    r->error.first_available = first;
    return SYNOD_ECOMPACTED;
  }
  if (from > next) {
    errmsg_set(r->msg,
               "channel read: offset %" PRIu64 " of \"%.64s\" is past its "
               "next offset %" PRIu64,
               from, name, next);
    return SYNOD_ERANGE;
  }
  Synod__ChannelMessages *m = &r->u.messages;
  synod__channel_messages__init(m);
  m->first_offset = first;
  m->next_offset = next;
  size_t cap = next - from < max ? (size_t)(next - from) : max;
  m->messages = fsm_xcalloc(cap ? cap : 1, sizeof *m->messages +
                                               sizeof(Synod__ChannelMessage));
  Synod__ChannelMessage *ms = (Synod__ChannelMessage *)(m->messages + cap);
  r->scratch = m->messages;
  struct window_iter iter;
  struct window_item it;
  uint64_t bytes = 0;
  if (c != NULL) {
    window_iter_seek(&c->window, from, &iter);
  }
  while (c != NULL && m->n_messages < cap && window_iter_next(&iter, &it) &&
         (m->n_messages == 0 || bytes + it.len <= max_bytes)) {
    Synod__ChannelMessage *x = &ms[m->n_messages];
    synod__channel_message__init(x);
    x->offset = it.pos;
    x->index = it.index;
    x->time_ms = it.time_ms;
    x->data.data = (uint8_t *)it.data;
    x->data.len = it.len;
    m->messages[m->n_messages++] = x;
    bytes += it.len;
  }
  r->resp.body_case = SYNOD__RESPONSE__BODY_CHANNEL_MESSAGES;
  r->resp.channel_messages = m;
  return 0;
}

int fsm_channel_info(struct fsm *f, struct fsm_session *s,
                     const Synod__Request *req, struct fsm_reply *r) {
  (void)s;
  CHANNEL_NAME(channel_info, "channel info");
  const struct fsm_channel *c = channel_find(f, name, len);
  if (c == NULL) {
    errmsg_set(r->msg, "channel info: no channel \"%.64s\"", name);
    return SYNOD_ENOTFOUND;
  }
  reply_info(f, r, c);
  return 0;
}

int fsm_channel_list(struct fsm *f, struct fsm_session *s,
                     const Synod__Request *req, struct fsm_reply *r) {
  const Synod__ChannelList *q = req->channel_list;
  const char *after = fsm_str(q->after);
  uint32_t limit = q->limit && q->limit < f->opt.list_limit_max
                       ? q->limit
                       : f->opt.list_limit_max;
  (void)s;
  Synod__ChannelListReply *lr = &r->u.channels;
  synod__channel_list_reply__init(lr);
  /* One block: the pointers, the infos, their limits. */
  size_t one = sizeof *lr->channels + sizeof(Synod__ChannelInfo) +
               sizeof(Synod__ChannelLimits);
  lr->channels = fsm_xcalloc(limit, one);
  Synod__ChannelInfo *infos = (Synod__ChannelInfo *)(lr->channels + limit);
  Synod__ChannelLimits *lims = (Synod__ChannelLimits *)(infos + limit);
  r->scratch = lr->channels;
  struct fsm_name k = {after, strlen(after)};
  struct otree_node *n = k.len ? otree_lower_bound(&f->channels, &k, true)
                               : otree_first(&f->channels);
  for (; n != NULL; n = otree_next(n)) {
    const struct fsm_channel *c = FSM_CONTAINER(n, struct fsm_channel, by_name);
    if (lr->n_channels == limit) {
      lr->more = 1;
      break;
    }
    Synod__ChannelInfo *ci = &infos[lr->n_channels];
    info_fill(f, c, ci, &lims[lr->n_channels]);
    lr->channels[lr->n_channels++] = ci;
  }
  r->resp.body_case = SYNOD__RESPONSE__BODY_CHANNEL_LIST;
  r->resp.channel_list = lr;
  return 0;
}

/* Answers with the channel as it was; its messages and ids go. */
/* Records a deletion at the end of f->channels_gone, dropping the oldest
 * past FSM_CHANNELS_GONE_MAX (its index becomes the forgotten one). */
void fsm_channel_gone_push(struct fsm *f, const char *name, size_t len,
                           uint64_t last_index, uint64_t last_offset,
                           uint64_t deleted_index) {
  if (f->channels_gone == NULL) {
    f->channels_gone =
        fsm_xcalloc(FSM_CHANNELS_GONE_MAX, sizeof *f->channels_gone);
  }
  if (f->channels_gone_n == FSM_CHANNELS_GONE_MAX) {
    f->channels_gone_forgotten = f->channels_gone[0].deleted_index;
    free(f->channels_gone[0].name);
    memmove(&f->channels_gone[0], &f->channels_gone[1],
            (FSM_CHANNELS_GONE_MAX - 1) * sizeof *f->channels_gone);
    f->channels_gone_n--;
  }
  f->channels_gone[f->channels_gone_n++] =
      (struct fsm_channel_gone){.name = fsm_xstrndup(name, len),
                                .name_len = len,
                                .last_index = last_index,
                                .last_offset = last_offset,
                                .deleted_index = deleted_index};
}

int fsm_channel_delete(struct fsm *f, struct fsm_session *s,
                       const Synod__Request *req, struct fsm_reply *r) {
  (void)s;
  CHANNEL_NAME(channel_delete, "channel delete");
  struct fsm_channel *c = channel_find(f, name, len);
  if (c == NULL) {
    errmsg_set(r->msg, "channel delete: no channel \"%.64s\"", name);
    return SYNOD_ENOTFOUND;
  }
  reply_info(f, r, c);
  /* The reply points at the channel's name: keep it in output memory. */
  r->u.channel.name = (char *)fsm_output_strdup(f, c->name, c->name_len);
  otree_remove(&f->channels, &c->by_name);
  f->channels_bytes -= c->window.bytes;
  /* The last message's index as every replica knows it: one restored
   * from an image without the channel's items has only evicted_index. */
  uint64_t last = c->window.last_index > c->window.evicted_index
                      ? c->window.last_index
                      : c->window.evicted_index;
  struct fsm_event *e = fsm_event_push(f, FSM_EVENT_CHANNEL_DELETED);
  e->name = r->u.channel.name;
  e->last_index = last;
  e->last_offset = c->window.next - 1;
  fsm_channel_gone_push(f, c->name, c->name_len, last, e->last_offset,
                        f->index);
  fsm_event_window_keep(e, &c->window);
  fsm_channel_free(c);
  return 0;
}

const struct fsm_channel_gone *fsm_channels_gone(const struct fsm *f, size_t *n,
                                                 uint64_t *forgotten) {
  *n = f->channels_gone_n;
  *forgotten = f->channels_gone_forgotten;
  return f->channels_gone;
}

/* ------------------------------------------------------------- cursors */

/* The slot of cursor `name`, or where it would go; *found says which. */
static uint32_t cursor_slot(const struct fsm_channel *c, const char *name,
                            bool *found) {
  uint32_t lo = 0, hi = c->cursors_n;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    int cmp = strcmp(c->cursors[mid].name, name);
    if (cmp == 0) {
      *found = true;
      return mid;
    }
    if (cmp < 0) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  *found = false;
  return lo;
}

void fsm_channel_cursor_put(struct fsm_channel *c, const char *name,
                            uint64_t offset, uint64_t index) {
  bool found;
  uint32_t i = cursor_slot(c, name, &found);
  if (!found) {
    c->cursors =
        fsm_xrealloc(c->cursors, (c->cursors_n + 1) * sizeof *c->cursors);
    memmove(&c->cursors[i + 1], &c->cursors[i],
            (c->cursors_n - i) * sizeof *c->cursors);
    c->cursors[i].name = fsm_xstrndup(name, strlen(name));
    c->cursors_n++;
  }
  c->cursors[i].offset = offset;
  c->cursors[i].index = index;
}

static void reply_cursor(struct fsm_reply *r, const char *channel,
                         const struct fsm_channel_cursor *k) {
  Synod__ChannelCursor *m = &r->u.cursor;
  synod__channel_cursor__init(m);
  m->channel = (char *)channel;
  m->cursor = k->name;
  m->offset = k->offset;
  m->index = k->index;
  r->resp.body_case = SYNOD__RESPONSE__BODY_CHANNEL_CURSOR;
  r->resp.channel_cursor = m;
}

#define CURSOR_NAME(field, what)                                               \
  const char *name = fsm_str(req->field->channel);                             \
  size_t len = strlen(name);                                                   \
  int rv = fsm_name_check(f, what, name, len, r->msg);                         \
  if (rv != 0) {                                                               \
    return rv;                                                                 \
  }                                                                            \
  const char *cursor = fsm_str(req->field->cursor);                            \
  rv = fsm_name_check(f, what " (cursor)", cursor, strlen(cursor), r->msg);    \
  if (rv != 0) {                                                               \
    return rv;                                                                 \
  }                                                                            \
  struct fsm_channel *c = channel_find(f, name, len);                          \
  if (c == NULL) {                                                             \
    errmsg_set(r->msg, what ": no channel \"%.64s\"", name);                   \
    return SYNOD_ENOTFOUND;                                                    \
  }

/* A cursor may move back (a consumer replays) but not past the last
 * offset: it names a message that exists or existed. */
int fsm_channel_cursor_commit(struct fsm *f, struct fsm_session *s,
                              const Synod__Request *req, struct fsm_reply *r) {
  (void)s;
  CURSOR_NAME(channel_cursor_commit, "channel cursor commit");
  uint64_t offset = req->channel_cursor_commit->offset;
  bool found;
  (void)cursor_slot(c, cursor, &found);
  if (offset >= c->window.next) {
    errmsg_set(r->msg,
               "channel cursor commit: offset %" PRIu64 " of \"%.64s\" is "
               "past its last offset %" PRIu64,
               offset, name, c->window.next - 1);
    return SYNOD_ERANGE;
  }
  if (!found && c->cursors_n >= FSM_CHANNEL_CURSORS_MAX) {
    errmsg_set(r->msg, "channel cursor commit: \"%.64s\" has %u cursors", name,
               c->cursors_n);
    return SYNOD_ELIMIT;
  }
  fsm_channel_cursor_put(c, cursor, offset, f->index);
  reply_cursor(r, c->name, &c->cursors[cursor_slot(c, cursor, &found)]);
  return 0;
}

int fsm_channel_cursor_get(struct fsm *f, struct fsm_session *s,
                           const Synod__Request *req, struct fsm_reply *r) {
  (void)s;
  CURSOR_NAME(channel_cursor_get, "channel cursor get");
  bool found;
  uint32_t i = cursor_slot(c, cursor, &found);
  if (!found) {
    errmsg_set(r->msg, "channel cursor get: \"%.64s\" has no cursor \"%.64s\"",
               name, cursor);
    return SYNOD_ENOTFOUND;
  }
  reply_cursor(r, c->name, &c->cursors[i]);
  return 0;
}

/* ------------------------------------------------------------- streams */

static void stream_of(const struct fsm *f, const struct fsm_channel *c,
                      struct fsm_stream *out) {
  out->name = c->name;
  out->name_len = c->name_len;
  out->window = &c->window;
  out->first = channel_first(f, c);
  out->evicted_index = c->window.evicted_index;
  out->created_index = c->created_index;
}

bool fsm_channel_stream(const struct fsm *f, const char *name, size_t len,
                        struct fsm_stream *out) {
  const struct fsm_channel *c = channel_find(f, name, len);
  if (c != NULL) {
    stream_of(f, c, out);
  }
  return c != NULL;
}

void fsm_channel_streams(const struct fsm *f, const char *prefix, size_t len,
                         void (*cb)(void *arg, const struct fsm_stream *st),
                         void *arg) {
  struct fsm_name k = {prefix, len};
  struct otree_node *n = len ? otree_lower_bound(&f->channels, &k, false)
                             : otree_first(&f->channels);
  for (; n != NULL; n = otree_next(n)) {
    const struct fsm_channel *c = FSM_CONTAINER(n, struct fsm_channel, by_name);
    if (c->name_len < len || memcmp(c->name, prefix, len) != 0) {
      return;
    }
    struct fsm_stream st;
    stream_of(f, c, &st);
    cb(arg, &st);
  }
}

int fsm_channel_name_check(const struct fsm *f, const char *name, size_t len,
                           bool prefix, char *msg) {
  if (prefix && len == 0) {
    return 0;
  }
  return fsm_name_check(f, prefix ? "prefix" : "channel", name, len, msg);
}

bool fsm_channel_cursor(const struct fsm *f, const char *name, size_t len,
                        const char *cursor, uint64_t *offset) {
  const struct fsm_channel *c = channel_find(f, name, len);
  bool found = false;
  uint32_t i = c ? cursor_slot(c, cursor, &found) : 0;
  if (found) {
    *offset = c->cursors[i].offset;
  }
  return found;
}
