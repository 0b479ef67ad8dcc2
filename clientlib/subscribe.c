/* Subscriptions, the client's side (DESIGN.md "Streams"), for channels,
 * key watches and group streams (watch.c and group_sub_start below start
 * the latter two, for group_member.c; everything after the start is
 * here, one mechanism for all three): subscribe on
 * the live connection, deliver each message once and in order, grant
 * credit back as messages are consumed, and after any loss of the
 * connection subscribe again from just after the last message delivered.
 *
 * Why the position is kept here and not left to the server: a
 * subscription lives on one replica and dies with its connection; the
 * next one may be on another replica, which knows nothing of it. Offsets
 * and log indexes are the same on every replica, so "just after what the
 * application has seen" means the same everywhere, and whatever comes
 * twice (a batch cut by the disconnect, a replica that starts early) is
 * recognised and dropped. A gap cannot be repaired here and would be a
 * server bug: the subscription ends with SYNOD_EINTERNAL rather than
 * hide it.
 *
 * Credits: the subscribe carries window - held, where held is what the
 * application was given and has not consumed yet (blocking interface:
 * its queue); each consumed message adds one to `ungranted`, given back
 * in one ChannelCredit once half the window has gathered. So held +
 * ungranted + what the server may still send == window, and a slow
 * application never holds more than the window. */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

static uint32_t sub_grant_at(const struct synod_async_subscription *s) {
  return s->window / 2 > 0 ? s->window / 2 : 1;
}

static void sub_free(struct synod_async_subscription *s) {
  free(s->member);
  free(s->channel);
  free(s->cursor);
  free(s);
}

static void sub_unlink(struct synod_async *a,
                       struct synod_async_subscription *s) {
  for (struct synod_async_subscription **p = &a->subs; *p != NULL;
       p = &(*p)->next) {
    if (*p == s) {
      *p = s->next;
      s->next = NULL;
      return;
    }
  }
}

/* Frees s once it is gone and no callback of it is running. */
static void sub_release(struct synod_async_subscription *s) {
  if (s->gone && s->busy == 0) {
    sub_free(s);
  }
}

static struct synod_async_subscription *sub_find_wire(struct synod_async *a,
                                                      uint64_t wire_id) {
  for (struct synod_async_subscription *s = a->subs; s != NULL && wire_id;
       s = s->next) {
    if (s->wire_id == wire_id) {
      return s;
    }
  }
  return NULL;
}

/* Queues a credit or unsubscribe on the live connection; nothing waits
 * for its empty answer. Returns false if it could not be queued. */
static bool sub_send(struct synod_async *a, enum op_kind kind, uint64_t wire_id,
                     uint32_t credits) {
  struct op_args args = {.subscription_id = wire_id, .credits = credits};
  struct op *op;
  if (a->conn == NULL || a->closing || op_build(kind, &args, &op, NULL) != 0) {
    return false;
  }
  engine_enqueue(a, op, 0);
  engine_flush(a);
  return true;
}

/* What s is, for messages. */
static const char *sub_what(const struct synod_async_subscription *s) {
  return s->keys    ? "key watch"
         : s->group ? "group subscribe"
                    : "channel subscribe";
}

/* Where s would resume, for messages. */
static void sub_where(const struct synod_async_subscription *s, char *out,
                      size_t len) {
  if (!s->positioned) {
    snprintf(out, len, "its start");
  } else if (s->keys) {
    snprintf(out, len, "after revision %" PRIu64 " event %" PRIu64,
             s->after_index, s->after_offset);
  } else if (s->group && s->member[0] == '\0') {
    snprintf(out, len, "offset %" PRIu64 " (every item)", s->next_offset);
  } else if (s->group) {
    snprintf(out, len, "offset %" PRIu64 " as member '%s'", s->next_offset,
             s->member);
  } else if (s->prefix) {
    snprintf(out, len, "after index %" PRIu64 " offset %" PRIu64,
             s->after_index, s->after_offset);
  } else {
    snprintf(out, len, "offset %" PRIu64, s->next_offset);
  }
}

/* Ends s: no more calls but this one to end_cb. */
static void sub_end(struct synod_async *a, struct synod_async_subscription *s,
                    int status, const char *why, uint64_t first_available) {
  char msg[SYNOD_ERRMSG_BYTES];
  if (s->gone) {
    return;
  }
  snprintf(msg, sizeof msg, "%s", why); /* why may be a->errmsg */
  s->gone = true;
  sub_unlink(a, s);
  if (s->wire_id != 0) {
    sub_send(a, OP_CHANNEL_UNSUBSCRIBE, s->wire_id, 0);
    s->wire_id = 0;
  }
  if (s->end_cb != NULL) {
    s->busy++;
    s->end_cb(s->arg, status, msg, first_available);
    s->busy--;
  }
  sub_release(s);
}

/* sub_end, saying with SYNOD_ECOMPACTED where the application could go
 * on from, if it wants to (never the library's decision). */
static void sub_end_compacted(struct synod_async *a,
                              struct synod_async_subscription *s, int status,
                              const char *why, uint64_t first_available) {
  char msg[SYNOD_ERRMSG_BYTES];
  if (status != SYNOD_ECOMPACTED) {
    sub_end(a, s, status, why, first_available);
    return;
  }
  if (s->keys) {
    errmsg_printf(msg, "%s; the oldest revision retained is %" PRIu64, why,
                  first_available);
  } else if (s->prefix) {
    errmsg_printf(msg, "%s; what is retained comes after index %" PRIu64, why,
                  first_available);
  } else {
    errmsg_printf(msg, "%s; the first available is offset %" PRIu64, why,
                  first_available);
  }
  sub_end(a, s, status, msg, first_available);
}

/* Errors that say "not here, not now" rather than "never": the
 * subscription moves to another replica instead of ending. */
static bool sub_transient(int code) {
  switch (code) {
  case SYNOD_OK: /* an end without a reason */
  case SYNOD_ENOTLEADER:
  case SYNOD_ENOLEADER:
  case SYNOD_ESHUTDOWN:
  case SYNOD_EUNAVAILABLE:
  case SYNOD_EBUSY:
  case SYNOD_ETIMEDOUT:
    return true;
  default:
    return false;
  }
}

/* The replica cannot serve a subscription now (stopping, cut off from the
 * leader, no answer): leave it as if the connection had failed, and try
 * it last for a while. Every subscription resumes on the next one. */
static void sub_move(struct synod_async *a, const char *why) {
  char reason[SYNOD_ERRMSG_BYTES];
  uint32_t delay_ms = 0;
  if (a->conn == NULL || a->closing) {
    return;
  }
  snprintf(reason, sizeof reason, "subscription: %s", why);
  conn_silent_mark(a, a->conn->address);
  /* Every endpoint once at once; then back off, so a cluster where no
   * replica can serve is not asked in a tight loop. */
  if (++a->sub_failures > a->endpoints_n) {
    delay_ms = backoff_connect_ms(a->sub_failures - (unsigned)a->endpoints_n,
                                  prng_next(&a->prng));
  }
  engine_reconnect(a, reason, delay_ms);
}

/* ------------------------------------------------------------- subscribe */

static void sub_subscribe_done(struct op *op, int status,
                               const Synod__Response *resp, const char *errmsg);

/* Subscribes s on the live connection: where it was asked to start, or
 * once positioned, just after what it delivered. */
static void sub_subscribe(struct synod_async *a,
                          struct synod_async_subscription *s) {
  struct op_args args = {
      .name = s->channel, .prefix = s->prefix, .prev_kv = s->prev_kv};
  char err[SYNOD_ERRMSG_BYTES];
  struct op *op;
  assert(a->conn != NULL && s->wire_id == 0 && !s->gone);
  /* held > window only if a server sent more than its credits. */
  args.credits = s->held < s->window ? s->window - s->held : 0;
  s->paused = args.credits == 0;
  if (s->paused) {
    return; /* sub_consumed subscribes once there is room */
  }
  if (s->keys && s->positioned) {
    /* After (revision, event); event 0: after the whole revision. */
    args.from = s->after_offset ? s->after_index : s->after_index + 1;
    args.after_offset = s->after_offset;
  } else if (s->keys) {
    args.from = s->offset;
    args.after_offset = s->after_index_asked;
  } else if (s->positioned) {
    args.sub_from = SYNOD_FROM_OFFSET;
    args.from = s->next_offset;
    args.after_index = s->after_index;
    args.after_offset = s->after_offset;
    args.known_index = s->known_index; /* one channel's */
    args.scope_index = s->scope_index;
  } else {
    args.sub_from = s->from;
    args.from = s->offset;
    args.after_index = s->after_index_asked;
    args.name2 = s->cursor;
  }
  if (s->group) {
    struct group_args g = {.group = s->channel,
                           .member = s->member,
                           .from = s->positioned ? s->next_offset : s->offset,
                           .known_index = s->known_index,
                           .credits = args.credits};
    struct op_args ga = {.group = &g};
    if (op_build(OP_GROUP_SUBSCRIBE, &ga, &op, err) != 0) {
      return; /* out of memory: the sweep tries again */
    }
  } else if (op_build(s->keys ? OP_KEY_WATCH : OP_CHANNEL_SUBSCRIBE, &args, &op,
                      err) != 0) {
    return; /* out of memory: the sweep tries again */
  }
  op->done = sub_subscribe_done;
  op->arg = a;
  engine_enqueue(a, op, 0);
  if (s->group) {
    op->req.group_subscribe->subscription_id = op->id;
  } else if (s->keys) {
    op->body.key_watch.subscription_id = op->id;
  } else {
    op->body.channel_subscribe.subscription_id = op->id;
  }
  s->wire_id = op->id;
  s->ungranted = 0; /* the credits above count it */
}

/* The server confirmed key watch s: as sub_confirmed. */
static void key_confirmed(struct synod_async *a,
                          struct synod_async_subscription *s,
                          const Synod__KeyWatchReply *r) {
  struct synod_key_watch_start start = {.revision = r->revision,
                                        .after_event = r->after_event,
                                        .first_revision = r->first_revision,
                                        .last_revision = r->last_revision};
  a->sub_failures = 0;
  if (!s->positioned) {
    s->positioned = true;
    /* The last event delivered, as if: (revision - 1, all of it) or
     * (revision, after_event). */
    s->after_index = r->after_event ? r->revision
                     : r->revision  ? r->revision - 1
                                    : 0;
    s->after_offset = r->after_event;
  }
  if (s->started) {
    return;
  }
  s->started = true;
  if (s->key_start_cb != NULL) {
    s->busy++;
    s->key_start_cb(s->arg, &start);
    s->busy--;
    sub_release(s);
  }
}

/* The server confirmed s: remember where it starts if nothing told us
 * yet, and tell the application the first time. */
static void sub_confirmed(struct synod_async *a,
                          struct synod_async_subscription *s,
                          const Synod__ChannelSubscribeReply *r) {
  struct synod_subscription_start start = {.offset = r->offset,
                                           .after_index = r->after_index,
                                           .after_offset = r->after_offset,
                                           .first_offset = r->first_offset,
                                           .next_offset = r->next_offset};
  a->sub_failures = 0;
  if (!s->positioned) {
    s->positioned = true;
    /* Offsets start at 1: an offset 0 can only mean "from the first". */
    s->next_offset = r->offset > 0 ? r->offset : 1;
    s->after_index = r->after_index;
    s->after_offset = r->after_offset;
  }
  if (s->known_index == 0 && !s->prefix) {
    s->known_index = r->created_index; /* the channel it reads, no other */
  }
  if (s->scope_index == 0) {
    s->scope_index = r->scope_index;
  }
  if (s->started) {
    return;
  }
  s->started = true;
  if (s->start_cb != NULL) {
    s->busy++;
    s->start_cb(s->arg, &start);
    s->busy--;
    sub_release(s);
  }
}

/* The server confirmed group subscription s: as sub_confirmed. */
static void group_confirmed(struct synod_async *a,
                            struct synod_async_subscription *s,
                            const Synod__GroupSubscribeReply *r) {
  a->sub_failures = 0;
  if (!s->positioned) {
    s->positioned = true;
    s->next_offset = r->offset > 0 ? r->offset : 1;
  }
  if (s->known_index == 0) {
    s->known_index = r->created_index; /* the group it reads, no other */
  }
  if (s->started) {
    return;
  }
  s->started = true;
  if (s->group_start != NULL) {
    s->busy++;
    s->group_start(s->arg, r->offset);
    s->busy--;
    sub_release(s);
  }
}

static Synod__Response__BodyCase
sub_reply_case(const struct synod_async_subscription *s) {
  return s->group  ? SYNOD__RESPONSE__BODY_GROUP_SUBSCRIBE
         : s->keys ? SYNOD__RESPONSE__BODY_KEY_WATCH
                   : SYNOD__RESPONSE__BODY_CHANNEL_SUBSCRIBE;
}

static void sub_subscribe_done(struct op *op, int status,
                               const Synod__Response *resp,
                               const char *errmsg) {
  struct synod_async *a = op->arg;
  struct synod_async_subscription *s = sub_find_wire(a, op->id);
  char why[SYNOD_ERRMSG_BYTES], where[64];
  uint64_t first = 0;
  if (s == NULL || a->closing || status == SYNOD_ECLOSED) {
    return; /* gone, or the connection went: subs_on_ready resubscribes */
  }
  if (status == 0 && resp->body_case != sub_reply_case(s)) {
    status = SYNOD_EMALFORMED;
    errmsg = "the answer to the subscribe is not its reply";
  }
  if (status == 0 && s->group) {
    group_confirmed(a, s, resp->group_subscribe);
    return;
  }
  if (status == 0 && s->keys) {
    key_confirmed(a, s, resp->key_watch);
    return;
  }
  if (status == 0) {
    sub_confirmed(a, s, resp->channel_subscribe);
    return;
  }
  s->wire_id = 0; /* the server did not create it */
  sub_where(s, where, sizeof where);
  errmsg_printf(why, "%s '%s' from %s: %s", sub_what(s), s->channel, where,
                errmsg);
  /* A resume past the end of this replica's channel: it lags behind the
   * one that delivered the messages before. Another (or it, later) will
   * have them. A group's SYNOD_ENOTFOUND with a known index is final:
   * the group it names was deleted (the start follows a ReadIndex round,
   * so no replica lags behind it). */
  bool lagging = (status == SYNOD_ERANGE && s->started) ||
                 (s->group && !s->started &&
                  (status == SYNOD_ERANGE ||
                   (status == SYNOD_ENOTFOUND && s->known_index == 0)));
  if ((sub_transient(status) || lagging) &&
      (s->started || engine_now(a) < s->start_deadline_ms)) {
    if (!s->started) {
      s->refused_rv = status;
      snprintf(s->refused_why, sizeof s->refused_why, "%s", why);
    }
    sub_move(a, why);
    return;
  }
  if (resp != NULL && resp->error != NULL) {
    first = resp->error->first_available;
  }
  sub_end_compacted(a, s, status, why, first);
}

/* ------------------------------------------------------------ deliveries */

enum sub_verdict { SUB_DELIVER, SUB_DROP, SUB_GAP };

/* Whether m comes next, came already, or comes after a gap. */
static enum sub_verdict sub_judge(struct synod_async_subscription *s,
                                  const Synod__ChannelMessage *m) {
  if (!s->positioned) { /* a delivery before the reply: it is the start */
    s->positioned = true;
    s->next_offset = m->offset;
    s->after_index = m->index > 0 ? m->index - 1 : 0;
    s->after_offset = 0;
  }
  if (!s->prefix) {
    return m->offset < s->next_offset   ? SUB_DROP
           : m->offset > s->next_offset ? SUB_GAP
                                        : SUB_DELIVER;
  }
  if (m->index < s->after_index ||
      (m->index == s->after_index && s->after_offset == 0)) {
    return SUB_DROP;
  }
  if (m->index == s->after_index) { /* the rest of an entry's batch */
    return m->offset <= s->after_offset       ? SUB_DROP
           : m->offset != s->after_offset + 1 ? SUB_GAP
                                              : SUB_DELIVER;
  }
  return SUB_DELIVER;
}

/* m was delivered: the position moves past it. */
static void sub_advance(struct synod_async_subscription *s,
                        const Synod__ChannelMessage *m) {
  if (!s->prefix) {
    s->next_offset = m->offset + 1;
    s->known_index = m->index;
    return;
  }
  s->after_index = m->index;
  s->after_offset = m->offset;
}

static void sub_gap(struct synod_async *a, struct synod_async_subscription *s,
                    const Synod__ChannelMessage *m) {
  char why[SYNOD_ERRMSG_BYTES], where[64];
  sub_where(s, where, sizeof where);
  errmsg_printf(why,
                "subscription to '%s': the server delivered offset %" PRIu64
                " (index %" PRIu64 ") when the next was %s%s: a gap, which "
                "the library does not pass on",
                s->channel, m->offset, m->index, where,
                s->prefix ? " (within one entry)" : "");
  sub_end(a, s, SYNOD_EINTERNAL, why, 0);
}

/* Gives credit back once half the window was consumed. */
static void sub_grant(struct synod_async *a,
                      struct synod_async_subscription *s) {
  if (s->wire_id != 0 && s->ungranted >= sub_grant_at(s) &&
      sub_send(a, OP_CHANNEL_CREDIT, s->wire_id, s->ungranted)) {
    s->ungranted = 0;
  }
}

/* n items of delivery `wire` were given to the application: they are
 * consumed now (async), or when it reports so (manual); credit goes back
 * once half the window was. */
static void sub_delivered(struct synod_async *a,
                          struct synod_async_subscription *s, uint64_t wire,
                          uint32_t n) {
  if (s->manual) {
    s->held += n;
  } else if (s->wire_id == wire) {
    s->ungranted += n;
  }
  if (!s->gone && s->wire_id == wire) {
    sub_grant(a, s);
  }
}

static void sub_deliver(struct synod_async_subscription *s,
                        const Synod__ChannelMessage *m) {
  struct synod_channel_message msg = {
      .offset = m->offset,
      .index = m->index,
      .time_ms = m->time_ms,
      .data = m->data.data,
      .len = m->data.len,
      .channel = s->prefix && m->channel != NULL ? m->channel : s->channel};
  s->msg_cb(s->arg, &msg);
}

/* One delivery of subscription d->subscription_id. Credit goes back as
 * soon as half the window was consumed, mid-delivery too, so the server
 * can go on sending while the application works through the rest. */
void subs_on_delivery(struct synod_async *a, const Synod__ChannelDelivery *d) {
  struct synod_async_subscription *s = sub_find_wire(a, d->subscription_id);
  if (s == NULL) {
    return; /* ended or unsubscribed meanwhile */
  }
  a->sub_failures = 0;
  s->busy++;
  for (size_t i = 0;
       i < d->n_messages && !s->gone && s->wire_id == d->subscription_id; i++) {
    const Synod__ChannelMessage *m = d->messages[i];
    switch (sub_judge(s, m)) {
    case SUB_DROP: /* it used a credit all the same */
      s->ungranted++;
      sub_grant(a, s);
      break;
    case SUB_GAP:
      sub_gap(a, s, m);
      continue;
    case SUB_DELIVER:
      sub_advance(s, m);
      sub_deliver(s, m); /* may unsubscribe s, or anything */
      sub_delivered(a, s, d->subscription_id, 1);
      break;
    }
  }
  s->busy--;
  sub_release(s);
}

/* Whether key event e comes after the last one delivered (no gap can be
 * seen: a watch skips the events it does not match). */
static bool key_new(struct synod_async_subscription *s,
                    const Synod__KeyWatchEvent *e) {
  if (!s->positioned) { /* a delivery before the reply: it is the start */
    s->positioned = true;
    s->after_index = e->event > 1 ? e->revision : e->revision - 1;
    s->after_offset = e->event > 1 ? e->event - 1 : 0;
  }
  return e->revision > s->after_index ||
         (e->revision == s->after_index && s->after_offset != 0 &&
          e->event > s->after_offset);
}

/* One delivery of key watch d->subscription_id: what is new goes to the
 * application in one call, and the position moves past it. */
void subs_on_key_delivery(struct synod_async *a,
                          const Synod__KeyWatchDelivery *d) {
  struct synod_async_subscription *s = sub_find_wire(a, d->subscription_id);
  struct synod_key_event *evs;
  uint32_t n = 0;
  if (s == NULL || !s->keys) {
    return; /* ended or unsubscribed meanwhile */
  }
  a->sub_failures = 0;
  evs = malloc((d->n_events ? d->n_events : 1) * sizeof *evs);
  if (evs == NULL) {
    /* Skipping them would be a gap: end here. */
    sub_end(a, s, SYNOD_ENOMEM, "key watch: out of memory for a delivery", 0);
    return;
  }
  for (size_t i = 0; i < d->n_events; i++) {
    const Synod__KeyWatchEvent *e = d->events[i];
    if (!key_new(s, e)) {
      s->ungranted++; /* it used a credit all the same */
      continue;
    }
    key_event_from_pb(e, &evs[n++]);
    s->after_index = e->revision;
    s->after_offset = e->event;
  }
  /* Past events it does not match too: resume from there. */
  if (s->positioned &&
      (d->progress_revision > s->after_index ||
       (d->progress_revision == s->after_index && s->after_offset != 0 &&
        (d->progress_event == 0 || d->progress_event > s->after_offset)))) {
    s->after_index = d->progress_revision;
    s->after_offset = d->progress_event;
  }
  s->busy++;
  if (n > 0) {
    s->key_cb(s->arg, evs, n); /* may unsubscribe s, or anything */
  }
  free(evs);
  if (!s->gone) {
    sub_delivered(a, s, d->subscription_id, n);
  }
  s->busy--;
  sub_release(s);
}

/* One delivery of group subscription d->subscription_id: the items at
 * or past the position go to the consumer in one call, and the position
 * moves past them, and past the progress. */
void subs_on_group_delivery(struct synod_async *a,
                            const Synod__GroupDelivery *d) {
  struct synod_async_subscription *s = sub_find_wire(a, d->subscription_id);
  struct synod_group_item *its;
  uint32_t n = 0;
  if (s == NULL || !s->group) {
    return; /* ended or unsubscribed meanwhile */
  }
  a->sub_failures = 0;
  its = calloc(d->n_items ? d->n_items : 1, sizeof *its);
  if (its == NULL) {
    sub_end(a, s, SYNOD_ENOMEM, "group subscribe: out of memory", 0);
    return;
  }
  for (size_t i = 0; i < d->n_items; i++) {
    const Synod__GroupItem *it = d->items[i];
    if (s->positioned && it->offset < s->next_offset) {
      s->ungranted++; /* came already; it used a credit all the same */
      continue;
    }
    if (group_item_from_pb(it, &its[n]) != 0) {
      for (uint32_t j = 0; j < n; j++) {
        group_item_clear(&its[j]);
      }
      free(its);
      /* Skipping it would be a gap: end here. */
      sub_end(a, s, SYNOD_ENOMEM, "group subscribe: an item it cannot read", 0);
      return;
    }
    n++;
    s->positioned = true;
    s->next_offset = it->offset + 1;
    s->known_index = it->index;
  }
  if (s->positioned && d->progress_offset >= s->next_offset) {
    s->next_offset = d->progress_offset + 1; /* past items for others */
  }
  s->busy++;
  /* Counted before the call: the consumer may report some of them
   * consumed at once (items it does not pass on). */
  sub_delivered(a, s, d->subscription_id, n);
  if (n > 0 && !s->gone) {
    s->group_cb(s->arg, its, n); /* may unsubscribe s, or anything */
  }
  for (uint32_t j = 0; j < n; j++) {
    group_item_clear(&its[j]);
  }
  free(its);
  s->busy--;
  sub_release(s);
}

void subs_on_ended(struct synod_async *a, const Synod__SubscriptionEnded *e) {
  struct synod_async_subscription *s = sub_find_wire(a, e->subscription_id);
  char why[SYNOD_ERRMSG_BYTES], where[64];
  int code = e->error != NULL ? (int)e->error->code : SYNOD_OK;
  if (s == NULL) {
    return;
  }
  s->wire_id = 0; /* the server ended it: nothing to unsubscribe */
  sub_where(s, where, sizeof where);
  errmsg_printf(why, "subscription to '%s' at %s ended by the server: %s",
                s->channel, where,
                e->error != NULL && e->error->message[0] != '\0'
                    ? e->error->message
                    : synod_strerror(code));
  if (sub_transient(code)) {
    sub_move(a, why);
    return;
  }
  sub_end_compacted(a, s, code, why, e->error->first_available);
}

/* ------------------------------------------------------- the engine's hooks */

void subs_on_ready(struct synod_async *a) {
  for (struct synod_async_subscription *s = a->subs; s != NULL; s = s->next) {
    if (s->wire_id == 0) {
      sub_subscribe(a, s);
    }
  }
}

void subs_on_conn_lost(struct synod_async *a) {
  for (struct synod_async_subscription *s = a->subs; s != NULL; s = s->next) {
    s->wire_id = 0;
    s->paused = false;
  }
}

void subs_sweep(struct synod_async *a, uint64_t now) {
  char why[SYNOD_ERRMSG_BYTES];
  bool again = true, sent = false;
  /* Rescan after each end: end_cb may change the list. */
  while (again) {
    again = false;
    for (struct synod_async_subscription *s = a->subs; s != NULL; s = s->next) {
      if (!s->started && now >= s->start_deadline_ms) {
        int status = SYNOD_ETIMEDOUT;
        if (s->refused_rv != 0) { /* what the replicas said */
          status = s->refused_rv;
          errmsg_printf(why, "%s (not started in time)", s->refused_why);
        } else if (a->conn == NULL && a->conn_error[0] != '\0') {
          status = SYNOD_ECONNECT;
          errmsg_printf(why,
                        "%s '%s': cannot connect to any "
                        "endpoint (last: %s)",
                        sub_what(s), s->channel, a->conn_error);
        } else {
          errmsg_printf(why, "%s '%s': not started in time%s%s", sub_what(s),
                        s->channel, a->conn ? " on " : " (not connected)",
                        a->conn ? a->conn->address : "");
        }
        sub_end(a, s, status, why, 0);
        again = true;
        break;
      }
    }
  }
  /* One whose subscribe could not be built (out of memory) tries again. */
  for (struct synod_async_subscription *s = a->subs;
       s != NULL && a->conn != NULL; s = s->next) {
    if (s->wire_id == 0 && !s->paused) {
      sub_subscribe(a, s);
      sent = sent || s->wire_id != 0;
    }
  }
  if (sent) {
    engine_flush(a);
  }
}

void subs_shutdown(struct synod_async *a) {
  struct synod_async_subscription *s;
  while ((s = a->subs) != NULL) {
    s->wire_id = 0;
    sub_end(a, s, SYNOD_ESHUTDOWN, "the client is closing", 0);
  }
}

void sub_consumed(struct synod_async *a, struct synod_async_subscription *s,
                  uint32_t n) {
  assert(s->manual && n <= s->held);
  s->held -= n;
  if (s->gone) {
    return;
  }
  s->ungranted += n;
  if (s->wire_id != 0) {
    sub_grant(a, s);
  } else if (s->paused && a->conn != NULL) {
    sub_subscribe(a, s);
    engine_flush(a);
  }
}

/* ---------------------------------------------------------------- the API */

int sub_start(struct synod_async *a, const struct synod_subscribe_options *o,
              synod_channel_message_cb msg_cb, synod_subscription_end_cb end_cb,
              synod_subscription_start_cb start_cb, void *arg, bool manual,
              uint32_t start_timeout_ms,
              struct synod_async_subscription **out) {
  struct op_args args = {.name = o->channel,
                         .name2 = o->cursor,
                         .prefix = o->prefix,
                         .sub_from = (int)o->from,
                         .from = o->offset,
                         .after_index = o->after_index,
                         .credits = o->window};
  struct synod_async_subscription *s;
  struct op *op;
  int rv;
  if (a->closing) {
    errmsg_printf(a->errmsg, "the client is closing");
    return SYNOD_ESHUTDOWN;
  }
  if (msg_cb == NULL) {
    errmsg_printf(a->errmsg, "channel subscribe: no message callback");
    return SYNOD_EINVAL;
  }
  rv = op_build(OP_CHANNEL_SUBSCRIBE, &args, &op, a->errmsg); /* checks */
  if (rv != 0) {
    return rv;
  }
  op_free(op);
  s = calloc(1, sizeof *s);
  if (s == NULL ||
      (s->channel = strdup(o->channel ? o->channel : "")) == NULL ||
      (s->cursor = strdup(o->cursor ? o->cursor : "")) == NULL) {
    if (s != NULL) {
      sub_free(s);
    }
    return SYNOD_ENOMEM;
  }
  s->prefix = o->prefix;
  s->from = (int)o->from;
  s->offset = o->offset;
  s->after_index_asked = o->after_index;
  s->window = o->window;
  s->msg_cb = msg_cb;
  s->start_cb = start_cb;
  sub_add(a, s, manual, end_cb, arg, start_timeout_ms);
  *out = s;
  return 0;
}

void sub_add(struct synod_async *a, struct synod_async_subscription *s,
             bool manual, synod_subscription_end_cb end_cb, void *arg,
             uint32_t start_timeout_ms) {
  struct synod_async_subscription **tail;
  s->manual = manual;
  s->end_cb = end_cb;
  s->arg = arg;
  if (s->window == 0) {
    s->window = SYNOD_SUBSCRIBE_WINDOW_DEFAULT;
  }
  s->start_deadline_ms =
      engine_now(a) +
      (start_timeout_ms ? start_timeout_ms : a->opts.request_timeout_ms);
  for (tail = &a->subs; *tail != NULL; tail = &(*tail)->next) {
  }
  *tail = s;
  if (a->conn != NULL) {
    sub_subscribe(a, s);
  }
  engine_flush(a); /* sends it, or connects */
}

int group_sub_start(struct synod_async *a, const char *group,
                    const char *member, uint64_t from, uint64_t known_index,
                    uint32_t window, group_items_cb items_cb,
                    synod_subscription_end_cb end_cb, group_start_cb start,
                    void *arg, bool manual, uint32_t start_timeout_ms,
                    struct synod_async_subscription **out) {
  struct synod_async_subscription *s;
  assert(items_cb != NULL);
  if (a->closing) {
    errmsg_printf(a->errmsg, "the client is closing");
    return SYNOD_ESHUTDOWN;
  }
  s = calloc(1, sizeof *s);
  if (s == NULL || (s->channel = strdup(group)) == NULL ||
      (s->member = strdup(member)) == NULL ||
      (s->cursor = strdup("")) == NULL) {
    if (s != NULL) {
      sub_free(s);
    }
    errmsg_printf(a->errmsg, "group subscribe: out of memory");
    return SYNOD_ENOMEM;
  }
  s->group = true;
  s->offset = from;
  s->known_index = known_index;
  s->window = window;
  s->group_cb = items_cb;
  s->group_start = start;
  sub_add(a, s, manual, end_cb, arg, start_timeout_ms);
  *out = s;
  return 0;
}

int group_watch_check(const char *group, const char *member, uint32_t window,
                      char *errmsg) {
  int rv = name_check("group watch", group, errmsg);
  if (rv == 0 && member != NULL && strlen(member) > SYNOD_GROUP_MEMBER_MAX) {
    errmsg_printf(errmsg, "group watch: a member name of %zu bytes; at most %d",
                  strlen(member), SYNOD_GROUP_MEMBER_MAX);
    rv = SYNOD_EINVAL;
  }
  if (rv == 0 && window > SYNOD_SUBSCRIBE_WINDOW_MAX) {
    errmsg_printf(errmsg, "group watch: a window of %u; at most %d", window,
                  SYNOD_SUBSCRIBE_WINDOW_MAX);
    rv = SYNOD_EINVAL;
  }
  return rv;
}

int synod_async_group_watch(struct synod_async *a, const char *group,
                            const char *member, uint64_t from, uint32_t window,
                            synod_group_watch_cb items_cb,
                            synod_subscription_end_cb end_cb,
                            synod_group_watch_start_cb start_cb, void *arg,
                            struct synod_async_subscription **out) {
  int rv = group_watch_check(group, member, window, a->errmsg);
  if (rv != 0) {
    return rv;
  }
  if (items_cb == NULL || out == NULL) {
    errmsg_printf(a->errmsg, "group watch: no items callback or no handle");
    return SYNOD_EINVAL;
  }
  return group_sub_start(a, group, member != NULL ? member : "", from, 0,
                         window, items_cb, end_cb, start_cb, arg, false, 0,
                         out);
}

int synod_async_subscribe(struct synod_async *a,
                          const struct synod_subscribe_options *o,
                          synod_channel_message_cb message_cb,
                          synod_subscription_end_cb end_cb,
                          synod_subscription_start_cb start_cb, void *arg,
                          struct synod_async_subscription **out) {
  if (o == NULL) {
    errmsg_printf(a->errmsg, "channel subscribe: no options");
    return SYNOD_EINVAL;
  }
  return sub_start(a, o, message_cb, end_cb, start_cb, arg, false, 0, out);
}

void synod_async_unsubscribe(struct synod_async *a,
                             struct synod_async_subscription *s) {
  if (s == NULL || s->gone) {
    return;
  }
  s->gone = true;
  sub_unlink(a, s);
  if (s->wire_id != 0) {
    sub_send(a, OP_CHANNEL_UNSUBSCRIBE, s->wire_id, 0);
    s->wire_id = 0;
  }
  sub_release(s);
}
