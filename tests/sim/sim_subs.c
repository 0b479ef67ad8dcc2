/* The real subscription engine (server/node/subscribe.c) on the simulated
 * replicas (opts.push), and the channel subscribers that use it.
 *
 * The host: each replica's engine reads that replica's state machine; its
 * clock is the replica's; it knows a leader as the replica's core does; a
 * ReadIndex round goes to the core of the leader this replica knows (as
 * node_read forwards a follower's), if both links between them are up,
 * and ends once this replica has applied the index the leader confirmed;
 * client connections are the subscribers' (conn id: subscriber number
 * + 1 above 20 bits, the connection's count below), each with a queue of
 * packed frames the subscriber takes from at its pace. A crash ends the
 * engine with its replica, every round it waits for failing first.
 *
 * The subscribers are libsynod's: a subscribe (first, next, or from the
 * offset after the last message taken; a prefix after its last index and
 * offset) on a random serving replica, messages taken from the queue a
 * few frames per poll (slow ones) or many, credits granted as messages are
 * taken, and a new connection elsewhere when the replica goes away, ends
 * the subscription or refuses it, or at random (movers). Frames not yet
 * taken when a connection ends are lost with it, as a socket's are. What
 * they take goes into the same history as sim_channel.c's readers, so
 * the same checks hold them: no gap, no duplicate, offset order, one
 * interleaving for prefix subscribers, every message to those that ran to
 * the end.
 *
 * With opts.sinks about half of them are in-process consumers instead,
 * as the HTTP API's event streams are: subscribed with subs_sub_request
 * (started at the replica's next tick, as synodd starts them at the end
 * of the loop turn), no credits, held back by the bytes they have not
 * taken (want_drain, subs_drained), cancelled when they move. Their sink
 * queues the same frames a connection would, so they are taken and
 * checked alike. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

#include "synod.h"
#include "window.h"

#define SIM_READ_CTX_SUBS (1ULL << 61)
#define CONN_SHIFT 20

/* A frame queued to a client's connection. */
struct sim_frame {
  struct sim_frame *next;
  /* A channel subscriber's: the end of its channel on the replica when
   * the frame was sent (what a SYNOD_ECOMPACTED in it is checked
   * against). */
  uint64_t channel_next;
  size_t len;
  uint8_t data[];
};

/* A ReadIndex round of a replica's engine. */
struct sim_subs_read {
  uint64_t ctx;
  uint32_t owner, owner_gen;   /* the replica whose engine asked */
  uint32_t leader, leader_gen; /* whose core confirms the index; 0: none */
  uint64_t index;              /* 0 until confirmed */
  int err;                     /* the round failed: this code */
  uint64_t deadline_ms;        /* sim time */
  subs_read_cb cb;
  void *cb_arg;
};

static uint64_t pick(struct sim *s, uint64_t lo, uint64_t hi) {
  return sim_rand_range(&s->rand, lo, hi);
}

/* ----------------------------------------------------------------- host */

/* Connection ids: kind, client number, connection count. */
static uint64_t conn_id_make(enum sim_conn_kind kind, uint32_t number,
                             uint32_t count) {
  return (uint64_t)kind << 56 | (uint64_t)number << 24 | (count & 0xffffff);
}

/* The connection of id, if its client still has it open. */
static struct sim_conn *conn_of(struct sim *s, uint64_t id) {
  uint32_t number = (uint32_t)(id >> 24);
  struct sim_conn *c = NULL;
  switch ((enum sim_conn_kind)(id >> 56)) {
  case SIM_CONN_SUB:
    c = number < s->subs_n ? &s->subs[number].c : NULL;
    break;
  case SIM_CONN_WATCH:
    c = sim_keys_conn(s, number);
    break;
  case SIM_CONN_MEMBER:
    c = sim_groups_conn(s, number);
    break;
  }
  return c != NULL && c->id == id ? c : NULL;
}

static void queue_drop(struct sim_conn *c) {
  while (c->q_head != NULL) {
    struct sim_frame *f = c->q_head;
    c->q_head = f->next;
    free(f);
  }
  c->q_tail = NULL;
  c->q_bytes = 0;
  c->drain_below = 0;
}

static uint64_t host_now_ms(void *arg) {
  struct sim_server *v = arg;
  const struct sim_replica *rep = v->rep;
  return v->clock_origin_ms +
         (v->sim->now_ms - rep->tick_base_ms) * rep->clock_permille / 1000;
}

/* subs_host.c's: how long since the replica knew a leader, or heard
 * from the one it knows (in ticks). */
static uint64_t host_leaderless_ms(void *arg) {
  struct sim_server *v = arg;
  if (v->leaderless_since_ms != 0) {
    return host_now_ms(v) - v->leaderless_since_ms + 1;
  }
  return core_leader(v->rep->core) != v->rep->id
             ? (uint64_t)v->leader_unheard_ticks * v->sim->opts.tick_ms
             : 0;
}

void sim_subs_heard(struct sim *s, struct sim_replica *rep, uint64_t from) {
  (void)s;
  if (rep->srv.subs_on && from == core_leader(rep->core)) {
    rep->srv.leader_unheard_ticks = 0;
  }
}

static void host_read_index(void *arg, uint32_t timeout_ms, subs_read_cb cb,
                            void *cb_arg) {
  struct sim_server *v = arg;
  struct sim *s = v->sim;
  struct sim_replica *rep = v->rep;
  uint64_t l = core_leader(rep->core);
  if (s->sub_reads_n == s->sub_reads_cap) {
    s->sub_reads_cap = s->sub_reads_cap ? s->sub_reads_cap * 2 : 16;
    s->sub_reads =
        realloc(s->sub_reads, s->sub_reads_cap * sizeof *s->sub_reads);
    if (s->sub_reads == NULL) {
      abort();
    }
  }
  struct sim_subs_read *r = &s->sub_reads[s->sub_reads_n++];
  *r = (struct sim_subs_read){.ctx = ++s->read_ctx | SIM_READ_CTX_SUBS,
                              .owner = (uint32_t)rep->id,
                              .owner_gen = rep->gen,
                              .deadline_ms = s->now_ms + timeout_ms,
                              .cb = cb,
                              .cb_arg = cb_arg};
  if (l == 0 || !s->r[l].up ||
      (l != rep->id &&
       (!sim_net_link_up(s, rep->id, l) || !sim_net_link_up(s, l, rep->id)))) {
    r->err = SYNOD_ENOLEADER; /* node_read: no leader to ask */
    return;
  }
  r->leader = (uint32_t)l;
  r->leader_gen = s->r[l].gen;
  struct core_event ev = {.type = CORE_EVENT_READ_INDEX, .read_ctx = r->ctx};
  uint64_t ctx = r->ctx;
  int rv = sim_step_core(s, &s->r[l], &ev); /* may grow sub_reads */
  if (rv != 0) {
    for (uint32_t i = 0; i < s->sub_reads_n; i++) {
      if (s->sub_reads[i].ctx == ctx) {
        s->sub_reads[i].err =
            rv == SYNOD_ENOTLEADER ? SYNOD_ENOLEADER : SYNOD_EUNAVAILABLE;
      }
    }
  }
}

/* Queues a packed frame to the client of conn_id. */
static int frame_queue(struct sim *s, uint64_t conn_id,
                       const Synod__ServerMessage *sm) {
  struct sim_conn *c = conn_of(s, conn_id);
  if (c == NULL) {
    return SYNOD_ECLOSED;
  }
  size_t len = synod__server_message__get_packed_size(sm);
  struct sim_frame *f = malloc(sizeof *f + len);
  if (f == NULL) {
    abort();
  }
  f->next = NULL;
  f->len = len;
  f->channel_next = 1;
  uint32_t number = (uint32_t)(conn_id >> 24);
  if ((conn_id >> 56) == SIM_CONN_SUB && !s->subs[number].prefix) {
    char name[8];
    struct fsm_stream st;
    sim_channel_name(s, s->subs[number].channel, name);
    if (fsm_channel_stream(s->r[c->replica].srv.fsm, name, strlen(name), &st)) {
      f->channel_next = st.window->next;
    }
  }
  synod__server_message__pack(sm, f->data);
  if (c->q_tail != NULL) {
    c->q_tail->next = f;
  } else {
    c->q_head = f;
  }
  c->q_tail = f;
  c->q_bytes += len;
  return 0;
}

static int host_send(void *arg, uint64_t conn_id,
                     const Synod__ServerMessage *sm) {
  struct sim_server *v = arg;
  return frame_queue(v->sim, conn_id, sm);
}

static void host_send_error(void *arg, uint64_t conn_id, uint64_t request_id,
                            int code, uint64_t first_available,
                            const char *msg) {
  struct sim_server *v = arg;
  Synod__ServerMessage sm = SYNOD__SERVER_MESSAGE__INIT;
  Synod__Response resp = SYNOD__RESPONSE__INIT;
  Synod__Error err = SYNOD__ERROR__INIT;
  err.code = (Synod__ErrorCode)code;
  err.message = (char *)msg;
  err.first_available = first_available;
  resp.id = request_id;
  resp.error = &err;
  sm.body_case = SYNOD__SERVER_MESSAGE__BODY_RESPONSE;
  sm.response = &resp;
  frame_queue(v->sim, conn_id, &sm);
}

static void host_send_ok(void *arg, uint64_t conn_id, uint64_t request_id) {
  struct sim_server *v = arg;
  Synod__ServerMessage sm = SYNOD__SERVER_MESSAGE__INIT;
  Synod__Response resp = SYNOD__RESPONSE__INIT;
  resp.id = request_id;
  sm.body_case = SYNOD__SERVER_MESSAGE__BODY_RESPONSE;
  sm.response = &resp;
  frame_queue(v->sim, conn_id, &sm);
}

static size_t host_queued_bytes(void *arg, uint64_t conn_id) {
  struct sim_server *v = arg;
  const struct sim_conn *c = conn_of(v->sim, conn_id);
  return c != NULL ? c->q_bytes : SIZE_MAX;
}

static void host_want_drain(void *arg, uint64_t conn_id, size_t below) {
  struct sim_server *v = arg;
  struct sim_conn *c = conn_of(v->sim, conn_id);
  if (c != NULL) {
    c->drain_below = below;
  }
}

static const char *host_remote(void *arg, uint64_t conn_id) {
  (void)arg;
  (void)conn_id;
  return "a simulated subscriber";
}

/* ----------------------------------------------------- in-process sink */

/* The sink of an in-process subscriber (opts.sinks): what it is given
 * goes to its queue as the frames a connection would carry (the
 * subscribe's answer under its request id, deliveries, the end), so
 * psub_take reads both kinds alike. */
static int sink_queue(struct sim_conn *c, const Synod__ServerMessage *sm) {
  return c->handle != 0 && !c->gone ? frame_queue(c->sim, c->id, sm)
                                    : SYNOD_ECLOSED;
}

static void sink_error(struct sim_conn *c, bool ended, int code,
                       uint64_t first_available, const char *msg) {
  Synod__ServerMessage sm = SYNOD__SERVER_MESSAGE__INIT;
  Synod__Response resp = SYNOD__RESPONSE__INIT;
  Synod__Event ev = SYNOD__EVENT__INIT;
  Synod__Error err = SYNOD__ERROR__INIT;
  Synod__SubscriptionEnded end = SYNOD__SUBSCRIPTION_ENDED__INIT;
  err.code = (Synod__ErrorCode)code;
  err.message = (char *)(msg != NULL ? msg : "");
  err.first_available = first_available;
  if (!ended) { /* the start refused */
    resp.id = c->req_next;
    resp.error = &err;
    sm.body_case = SYNOD__SERVER_MESSAGE__BODY_RESPONSE;
    sm.response = &resp;
  } else {
    end.subscription_id = 1;
    end.error = &err;
    ev.body_case = SYNOD__EVENT__BODY_SUBSCRIPTION_ENDED;
    ev.subscription_ended = &end;
    sm.body_case = SYNOD__SERVER_MESSAGE__BODY_EVENT;
    sm.event = &ev;
  }
  sink_queue(c, &sm);
}

static void sink_started(void *arg, int err, const char *msg,
                         uint64_t first_available,
                         const Synod__ChannelSubscribeReply *r) {
  struct sim_conn *c = arg;
  if (err != 0) {
    sink_error(c, false, err, first_available, msg);
    return;
  }
  Synod__ServerMessage sm = SYNOD__SERVER_MESSAGE__INIT;
  Synod__Response resp = SYNOD__RESPONSE__INIT;
  resp.id = c->req_next;
  resp.body_case = SYNOD__RESPONSE__BODY_CHANNEL_SUBSCRIBE;
  resp.channel_subscribe = (Synod__ChannelSubscribeReply *)r;
  sm.body_case = SYNOD__SERVER_MESSAGE__BODY_RESPONSE;
  sm.response = &resp;
  sink_queue(c, &sm);
}

static int sink_deliver(void *arg, Synod__ChannelMessage *const *msgs, size_t n,
                        size_t bytes) {
  struct sim_conn *c = arg;
  Synod__ServerMessage sm = SYNOD__SERVER_MESSAGE__INIT;
  Synod__Event ev = SYNOD__EVENT__INIT;
  Synod__ChannelDelivery d = SYNOD__CHANNEL_DELIVERY__INIT;
  (void)bytes;
  d.subscription_id = 1;
  d.n_messages = n;
  d.messages = (Synod__ChannelMessage **)msgs;
  ev.body_case = SYNOD__EVENT__BODY_CHANNEL_DELIVERY;
  ev.channel_delivery = &d;
  sm.body_case = SYNOD__SERVER_MESSAGE__BODY_EVENT;
  sm.event = &ev;
  return sink_queue(c, &sm);
}

static void sink_ended(void *arg, int err, const char *msg,
                       uint64_t first_available) {
  struct sim_conn *c = arg;
  sink_error(c, true, err, first_available, msg);
  c->handle = 0; /* dead now */
}

static size_t sink_queued_bytes(void *arg) {
  const struct sim_conn *c = arg;
  return c->handle != 0 && !c->gone ? c->q_bytes : SIZE_MAX;
}

static void sink_want_drain(void *arg, size_t below) {
  struct sim_conn *c = arg;
  c->drain_below = below;
}

static const struct node_sub_sink psub_sink = {
    .started = sink_started,
    .deliver = sink_deliver,
    .ended = sink_ended,
    .queued_bytes = sink_queued_bytes,
    .want_drain = sink_want_drain,
};

void sim_subs_start(struct sim *s, struct sim_replica *rep) {
  struct sim_server *v = &rep->srv;
  if (!s->opts.push) {
    return;
  }
  struct subs_host host = {.arg = v,
                           .now_ms = host_now_ms,
                           .leaderless_ms = host_leaderless_ms,
                           .read_index = host_read_index,
                           .send = host_send,
                           .send_error = host_send_error,
                           .send_ok = host_send_ok,
                           .queued_bytes = host_queued_bytes,
                           .want_drain = host_want_drain,
                           .remote = host_remote};
  v->sim = s;
  v->rep = rep;
  if (subs_init(&v->subs, &host, "a simulated replica") != 0) {
    abort();
  }
  v->subs.fsm = v->fsm;
  /* A small bound on a connection's queue in most seeds, so that slow
   * subscribers block on it and resume on drain; a function of the seed
   * (no draw), like release_keep. */
  static const size_t out_bytes[4] = {2, 256, 2048, 4u << 20};
  v->subs.out_bytes_max = out_bytes[sim_mix(s->opts.seed ^ 0x0b17e5ull) % 4];
  sim_trace(s, rep->id, "subs: a connection's queue holds %zu bytes at most",
            v->subs.out_bytes_max);
  v->subs_on = true;
  v->leader_unheard_ticks = 0;
  v->leader = 0;
  v->leaderless_since_ms = host_now_ms(v);
}

/* Takes round i out of the list and ends it with err. */
static void read_end(struct sim *s, uint32_t i, int err) {
  struct sim_subs_read r = s->sub_reads[i];
  s->sub_reads[i] = s->sub_reads[--s->sub_reads_n];
  r.cb(r.cb_arg, err, err != 0 ? synod_strerror(err) : NULL, NULL, 0);
}

void sim_subs_stop(struct sim_replica *rep) {
  struct sim_server *v = &rep->srv;
  struct sim *s = v->sim;
  if (!v->subs_on) {
    return;
  }
  /* node_free: what waits on the replica fails, then the engine goes. */
  for (uint32_t i = 0; i < s->sub_reads_n;) {
    if (s->sub_reads[i].owner == rep->id) {
      read_end(s, i, SYNOD_ESHUTDOWN);
    } else {
      i++;
    }
  }
  /* Its connections are gone with it: their clients see that their
   * replica's incarnation changed (sim_conn_alive) and drop what they
   * had not taken. */
  v->subs_on = false;
  subs_close(&v->subs);
}

void sim_subs_role(struct sim *s, struct sim_replica *rep) {
  struct sim_server *v = &rep->srv;
  (void)s;
  if (!v->subs_on) {
    return;
  }
  uint64_t l = core_leader(rep->core);
  if (l != v->leader) {
    v->leader = l;
    v->leader_unheard_ticks = 0; /* node_leader_changed */
  }
  if (l != 0) {
    v->leaderless_since_ms = 0;
  } else if (v->leaderless_since_ms == 0) {
    v->leaderless_since_ms = host_now_ms(v);
  }
}

bool sim_subs_read(struct sim *s, const struct core_read *rd) {
  if (!(rd->ctx & SIM_READ_CTX_SUBS)) {
    return false;
  }
  for (uint32_t i = 0; i < s->sub_reads_n; i++) {
    struct sim_subs_read *r = &s->sub_reads[i];
    if (r->ctx == rd->ctx && r->err == 0 && r->index == 0) {
      if (rd->error != 0) {
        r->err = SYNOD_ENOLEADER;
      } else {
        r->index = rd->index;
      }
    }
  }
  return true;
}

void sim_subs_reads_serve(struct sim *s) {
  for (uint32_t i = 0; i < s->sub_reads_n;) {
    struct sim_subs_read *r = &s->sub_reads[i];
    const struct sim_replica *owner = &s->r[r->owner];
    const struct sim_replica *leader = &s->r[r->leader];
    if (!owner->up || owner->gen != r->owner_gen || !owner->srv.subs_on) {
      i++; /* sim_subs_stop ends it */
    } else if (r->err != 0) {
      read_end(s, i, r->err);
    } else if (r->index != 0 && fsm_applied_index(owner->srv.fsm) >= r->index) {
      read_end(s, i, 0);
    } else if (r->index == 0 && (!leader->up || leader->gen != r->leader_gen ||
                                 core_role(leader->core) != CORE_LEADER)) {
      read_end(s, i, SYNOD_ENOLEADER); /* the leader crashed or stepped down */
    } else if (s->now_ms >= r->deadline_ms) {
      read_end(s, i, SYNOD_ETIMEDOUT);
    } else {
      i++;
    }
  }
}

void sim_subs_tick(struct sim *s, struct sim_replica *rep) {
  if (rep->srv.subs_on) {
    sim_subs_reads_serve(s);
    rep->srv.leader_unheard_ticks++;
    subs_start_queued(&rep->srv.subs); /* in-process ones (opts.sinks) */
    subs_tick(&rep->srv.subs);
  }
}

/* ----------------------------------------------------------- subscriber */

/* ---------------------------------------------------------- connections */

bool sim_conn_alive(const struct sim *s, const struct sim_conn *c) {
  const struct sim_replica *rep = &s->r[c->replica];
  return c->id != 0 && rep->up && rep->gen == c->gen && rep->srv.subs_on;
}

struct subs *sim_conn_engine(struct sim *s, const struct sim_conn *c) {
  return sim_conn_alive(s, c) ? &s->r[c->replica].srv.subs : NULL;
}

bool sim_conn_open(struct sim *s, struct sim_conn *c, enum sim_conn_kind kind,
                   uint32_t number, uint32_t replica) {
  sim_conn_close(s, c);
  c->sim = s;
  c->replica = replica;
  c->gen = s->r[replica].gen;
  c->id = conn_id_make(kind, number, ++c->count);
  if (!sim_conn_alive(s, c)) {
    c->id = 0;
    return false;
  }
  return true;
}

void sim_conn_close(struct sim *s, struct sim_conn *c) {
  struct subs *ss = sim_conn_engine(s, c);
  if (ss != NULL && c->inproc && c->handle != 0) {
    subs_cancel(ss, c->handle);
  } else if (ss != NULL && !c->inproc) {
    subs_on_close(ss, c->id);
  }
  c->id = 0;
  c->handle = 0;
  c->gone = false;
  queue_drop(c);
}

Synod__ServerMessage *sim_conn_take(struct sim *s, struct sim_conn *c,
                                    uint64_t *channel_next) {
  if (!sim_conn_alive(s, c)) {
    if (c->id != 0) {
      c->id = 0; /* its replica crashed: the connection with it */
      c->handle = 0;
      queue_drop(c);
    }
    return NULL;
  }
  struct sim_frame *f = c->q_head;
  if (f == NULL) {
    return NULL;
  }
  c->q_head = f->next;
  if (c->q_head == NULL) {
    c->q_tail = NULL;
  }
  c->q_bytes -= f->len;
  *channel_next = f->channel_next;
  Synod__ServerMessage *sm =
      synod__server_message__unpack(NULL, f->len, f->data);
  if (sm == NULL) {
    sim_fail(s, "push: a frame from r%" PRIu32 " does not decode", c->replica);
  }
  free(f);
  return sm;
}

void sim_conn_subscribed(struct sim_conn *c) {
  c->taken = 0;
  c->credit_left = c->inproc ? INT64_MAX / 2 : c->window; /* no credits */
}

int64_t sim_conn_delivered(struct sim_conn *c, size_t n) {
  c->taken += (uint32_t)n;
  c->credit_left -= (int64_t)n;
  return c->credit_left < 0 ? -c->credit_left : 0;
}

bool sim_conn_moves_on(int code) {
  return code == SYNOD_ENOLEADER || code == SYNOD_ETIMEDOUT ||
         code == SYNOD_EUNAVAILABLE || code == SYNOD_ESHUTDOWN;
}

void sim_conn_room(struct sim *s, struct sim_conn *c, bool answered) {
  struct subs *ss = sim_conn_engine(s, c);
  if (ss != NULL && !c->inproc && answered && c->taken >= c->window / 2 + 1) {
    Synod__ChannelCredit q = SYNOD__CHANNEL_CREDIT__INIT;
    q.subscription_id = 1;
    q.credits = c->taken;
    c->credit_left += c->taken;
    c->taken = 0;
    subs_credit(ss, c->id, ++c->req_next, &q);
  }
  if (ss != NULL && c->drain_below != 0 && c->q_bytes < c->drain_below) {
    c->drain_below = 0;
    sim_trace(s, c->replica, "connection %" PRIx64 " has room again", c->id);
    if (c->inproc) {
      subs_drained(ss, c->handle);
    } else {
      subs_on_drain(ss, c->id);
    }
  }
}

void sim_conn_free(struct sim_conn *c) {
  queue_drop(c);
}

/* ----------------------------------------------------------- subscriber */

static void psub_leave(struct sim *s, struct sim_sub *sb, const char *why);

/* Subscribes on a new connection to the replica attached, from where
 * the subscriber is. */
static void psub_subscribe(struct sim *s, struct sim_sub *sb) {
  if (!sim_conn_open(s, &sb->c, SIM_CONN_SUB, (uint32_t)(sb - s->subs),
                     sb->replica)) {
    return;
  }
  char name[8];
  Synod__ChannelSubscribe q = SYNOD__CHANNEL_SUBSCRIBE__INIT;
  sb->sub_req = ++sb->c.req_next;
  sim_conn_subscribed(&sb->c);
  q.subscription_id = 1;
  q.credits = sb->c.window;
  if (sb->prefix) {
    q.channel = "ch";
    q.prefix = true;
  } else {
    sim_channel_name(s, sb->channel, name);
    q.channel = name;
  }
  if (!sb->started) {
    q.from = sb->from_next ? SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_NEXT
                           : SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_OFFSET;
    q.offset = 1; /* one channel from the first; a prefix after index 0 */
  } else {
    q.from = SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_OFFSET;
    q.offset = sb->next;
    q.after_index = sb->last_index;
    q.after_offset = sb->last_index != 0 ? sb->after_offset : 0;
    q.known_index = sb->prefix ? 0 : sb->known_index;
    q.scope_index = sb->scope_index;
  }
  sim_trace(s, sb->replica,
            "%s: subscribes (%s) on connection %" PRIx64 " from %s %" PRIu64,
            sb->name, sb->c.inproc ? "in-process" : "push", sb->c.id,
            sb->prefix ? "after index" : "offset",
            sb->prefix ? sb->last_index : sb->next);
  if (!sb->c.inproc) {
    subs_subscribe(sim_conn_engine(s, &sb->c), sb->c.id, sb->sub_req, &q);
    return;
  }
  Synod__Request req = SYNOD__REQUEST__INIT;
  char msg[SYNOD_ERRMSG_MAX];
  q.subscription_id = 0; /* as the HTTP API's: ignored in-process */
  q.credits = 0;
  req.id = sb->sub_req;
  req.body_case = SYNOD__REQUEST__BODY_CHANNEL_SUBSCRIBE;
  req.channel_subscribe = &q;
  int rv = subs_sub_request(sim_conn_engine(s, &sb->c), &req, &psub_sink,
                            &sb->c, &sb->c.handle, msg);
  if (rv != 0) {
    sb->c.handle = 0;
    if (sim_conn_moves_on(rv)) { /* the HTTP API's 503: elsewhere */
      psub_leave(s, sb, msg);
      return;
    }
    sim_fail(s, "channels: %s: r%" PRIu32 " refuses it in-process: %s",
             sb->name, sb->replica, msg);
  }
}

/* Gives up on the replica: closes, and subscribes elsewhere at the next
 * poll at the earliest. */
static void psub_leave(struct sim *s, struct sim_sub *sb, const char *why) {
  sim_trace(s, sb->replica, "%s: leaves (%s)", sb->name, why);
  sim_conn_close(s, &sb->c);
  sb->sub_req = 0;
  sb->retry_ms = s->now_ms + pick(s, 10, 300);
}

static void psub_started(struct sim *s, struct sim_sub *sb,
                         const Synod__ChannelSubscribeReply *r) {
  sb->sub_req = 0;
  if (sb->scope_index == 0) {
    sb->scope_index = r->scope_index; /* libsynod's */
  }
  if (sb->known_index == 0 && !sb->prefix) {
    sb->known_index = r->created_index; /* libsynod's */
  }
  if (!sb->started) {
    sb->started = true;
    if (sb->prefix) {
      sb->start = r->after_index;
      sb->last_index = r->after_index;
      sb->after_offset = r->after_offset;
    } else {
      sb->start = r->offset;
      sb->next = r->offset;
    }
  } else if (!sb->prefix && r->offset != sb->next) {
    sim_fail(s,
             "channels: %s resumes at offset %" PRIu64 " and r%" PRIu32
             " starts it at %" PRIu64,
             sb->name, sb->next, sb->replica, r->offset);
  } else if (sb->prefix && r->after_index != sb->last_index) {
    sim_fail(s,
             "channels: %s resumes after index %" PRIu64 " and r%" PRIu32
             " starts it after %" PRIu64,
             sb->name, sb->last_index, sb->replica, r->after_index);
  }
}

/* An error that ends or refuses the subscription. */
static void psub_error(struct sim *s, struct sim_sub *sb, int code,
                       uint64_t first, uint64_t next, const char *msg) {
  char name[8];
  if (code == SYNOD_ECOMPACTED && !sb->prefix) {
    sim_channel_name(s, sb->channel, name);
    if (!sb->started) {
      sb->started = true;
      sb->start = sb->next = 1;
    }
    sim_sub_compacted(s, sb, name, first, next);
    psub_subscribe(s, sb); /* from the first retained, on the same replica */
    return;
  }
  if (sim_conn_moves_on(code)) {
    psub_leave(s, sb, msg);
    return;
  }
  sim_fail(s, "channels: %s: r%" PRIu32 " ends or refuses it with %s: %s",
           sb->name, sb->replica, synod_strerror(code), msg);
}

static void psub_deliver(struct sim *s, struct sim_sub *sb,
                         const Synod__ChannelDelivery *d) {
  for (size_t i = 0; i < d->n_messages && !s->failed; i++) {
    const Synod__ChannelMessage *m = d->messages[i];
    uint32_t c = sb->prefix ? sim_prefix_channel(s, m->channel) : sb->channel;
    if (c == UINT32_MAX) {
      sim_fail(s, "channels: %s is delivered a message of \"%s\"", sb->name,
               m->channel);
      return;
    }
    sim_sub_deliver(s, sb, c, m);
    sb->next = m->offset + 1;
    sb->after_offset = m->offset;
    sb->known_index = m->index;
  }
  int64_t over = sim_conn_delivered(&sb->c, d->n_messages);
  if (over > 0) {
    sim_fail(s,
             "channels: %s: r%" PRIu32 " delivers %" PRId64
             " messages beyond the credits granted",
             sb->name, sb->replica, over);
  }
}

/* Takes one frame; false if there is none. */
static bool psub_take(struct sim *s, struct sim_sub *sb) {
  uint64_t channel_next = 0;
  Synod__ServerMessage *sm = sim_conn_take(s, &sb->c, &channel_next);
  if (sm == NULL) {
    return false;
  }
  if (sm->body_case == SYNOD__SERVER_MESSAGE__BODY_RESPONSE) {
    const Synod__Response *r = sm->response;
    if (r->id == sb->sub_req && r->error != NULL) {
      psub_error(s, sb, (int)r->error->code, r->error->first_available,
                 channel_next, r->error->message);
    } else if (r->id == sb->sub_req &&
               r->body_case == SYNOD__RESPONSE__BODY_CHANNEL_SUBSCRIBE) {
      psub_started(s, sb, r->channel_subscribe);
    } else if (r->error != NULL) {
      sim_fail(s, "channels: %s: r%" PRIu32 " refuses request %" PRIu64 ": %s",
               sb->name, sb->replica, r->id, r->error->message);
    }
  } else if (sm->body_case == SYNOD__SERVER_MESSAGE__BODY_EVENT &&
             sm->event->body_case == SYNOD__EVENT__BODY_CHANNEL_DELIVERY) {
    psub_deliver(s, sb, sm->event->channel_delivery);
  } else if (sm->body_case == SYNOD__SERVER_MESSAGE__BODY_EVENT &&
             sm->event->body_case == SYNOD__EVENT__BODY_SUBSCRIPTION_ENDED) {
    const Synod__Error *e = sm->event->subscription_ended->error;
    psub_error(s, sb, e != NULL ? (int)e->code : SYNOD_EINTERNAL,
               e != NULL ? e->first_available : 0, channel_next,
               e != NULL && e->message != NULL ? e->message : "no error");
  }
  synod__server_message__free_unpacked(sm, NULL);
  return true;
}

void sim_psub_poll(struct sim *s, struct sim_sub *sb) {
  bool end = s->clients_stopped;
  if (sb->stop_ms != 0 && s->now_ms >= sb->stop_ms && !end) {
    sb->stopped = true;
    sim_conn_close(s, &sb->c);
    sim_trace(s, sb->replica, "%s: unsubscribes", sb->name);
    return;
  }
  if (sb->c.id != 0 && !sim_conn_alive(s, &sb->c)) {
    sim_conn_close(s, &sb->c); /* its replica crashed */
    sb->sub_req = 0;
  }
  if (sb->c.id != 0 && !end && sim_rand_ppm(&s->rand, sb->move_ppm)) {
    psub_leave(s, sb, "moves");
    sb->retry_ms = 0;
  }
  if (sb->c.gone) { /* the API's close callback: cancel, go elsewhere */
    psub_leave(s, sb, "its HTTP connection dropped");
  } else if (sb->c.inproc && sb->c.id != 0 && !end &&
             sim_rand_range(&s->sink_rand, 0, 49) == 0) {
    /* The HTTP connection drops: what it held is lost, deliveries fail
     * (SYNOD_ECLOSED ends the subscription) until the cancel. */
    sb->c.gone = true;
    queue_drop(&sb->c);
    sim_trace(s, sb->replica, "%s: its HTTP connection drops", sb->name);
    return;
  }
  if (sb->c.id == 0) {
    if (s->now_ms < sb->retry_ms || !sim_sub_attach(s, sb, 0, "subscribes")) {
      return;
    }
    psub_subscribe(s, sb);
  }
  /* At the end everyone takes all it has, as a fast subscriber would. */
  uint32_t frames = end ? 1000000 : sb->batch;
  if (end) {
    sb->poll_ms = 10;
  }
  for (uint32_t i = 0; i < frames && sb->c.id != 0 && !s->failed; i++) {
    if (!psub_take(s, sb)) {
      break;
    }
    sim_conn_room(s, &sb->c, sb->sub_req == 0);
  }
}

bool sim_psub_caught_up(struct sim *s, const struct sim_sub *sb,
                        uint32_t leader) {
  const struct fsm *f = s->r[leader].srv.fsm;
  /* The clients have stopped: the leader's channels hold every message
   * there will be (the replicas go on applying ticks). */
  if (!sim_conn_alive(s, &sb->c) || sb->sub_req != 0 || sb->c.q_head != NULL) {
    return false;
  }
  struct fsm_stream st;
  char name[8];
  if (!sb->prefix) {
    sim_channel_name(s, sb->channel, name);
    return !fsm_channel_stream(f, name, strlen(name), &st) ||
           sb->next >= st.window->next;
  }
  for (uint32_t c = 0; c < s->chan_n; c++) {
    sim_channel_name(s, c, name);
    struct window_item last;
    if (fsm_channel_stream(f, name, strlen(name), &st) &&
        window_get(st.window, st.window->next - 1, &last) &&
        (last.index > sb->last_index ||
         (last.index == sb->last_index && sb->after_offset != 0 &&
          last.pos > sb->after_offset))) {
      return false;
    }
  }
  return true;
}

void sim_psub_free(struct sim_sub *sb) {
  sim_conn_free(&sb->c);
}

bool sim_psubs_caught_up(struct sim *s, void *arg) {
  uint32_t leader = (uint32_t)sim_leader(s);
  (void)arg;
  if (leader == 0 || !sim_keys_watchers_caught_up(s, NULL, 0) ||
      !sim_groups_members_caught_up(s, NULL, 0)) {
    return false;
  }
  for (uint32_t i = 0; i < s->subs_n; i++) {
    const struct sim_sub *sb = &s->subs[i];
    if (sb->push && sb->started && !sb->stopped &&
        !sim_psub_caught_up(s, sb, leader)) {
      return false;
    }
  }
  return true;
}

void sim_psubs_describe(struct sim *s, char *buf, size_t len) {
  uint32_t leader = (uint32_t)sim_leader(s);
  snprintf(buf, len, "none behind");
  if (!sim_keys_watchers_caught_up(s, buf, len) ||
      !sim_groups_members_caught_up(s, buf, len)) {
    return;
  }
  for (uint32_t i = 0; i < s->subs_n && leader != 0; i++) {
    const struct sim_sub *sb = &s->subs[i];
    if (sb->push && sb->started && !sb->stopped &&
        !sim_psub_caught_up(s, sb, leader)) {
      snprintf(buf, len,
               "%s on r%" PRIu32 " (applied %" PRIu64 ", leader r%" PRIu32
               " %" PRIu64 "), connection %" PRIu64 ", subscribe %" PRIu64
               " unanswered, %zu bytes queued, next %" PRIu64
               ", last index %" PRIu64 "/%" PRIu64,
               sb->name, sb->replica,
               s->r[sb->replica].srv.fsm != NULL
                   ? fsm_applied_index(s->r[sb->replica].srv.fsm)
                   : 0,
               leader, fsm_applied_index(s->r[leader].srv.fsm), sb->c.id,
               sb->sub_req, sb->c.q_bytes, sb->next, sb->last_index,
               sb->after_offset);
      return;
    }
  }
}
