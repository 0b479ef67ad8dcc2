/* The engine behind synod_async: one connection at a time, requests in
 * submit order, leader following, reconnects with backoff, deadlines. */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"

/* Room left in a frame for the Request's own fields. */
#define REQUEST_OVERHEAD_BYTES 64

uint64_t engine_now(struct synod_async *a) {
  return uv_now(a->loop);
}

/* ------------------------------------------------------------ the list */

/* A sequenced op that has no sequence yet: it waits for a window slot. */
static bool op_unsequenced(const struct op *op) {
  return op_kind_sequenced(op->kind) && op->sequence == 0;
}

static void op_link_tail(struct synod_async *a, struct op *op) {
  op->prev = a->ops.prev;
  op->next = &a->ops;
  a->ops.prev->next = op;
  a->ops.prev = op;
  a->ops_n++;
  a->ops_unsequenced += op_unsequenced(op);
}

static void op_unlink(struct synod_async *a, struct op *op) {
  op->prev->next = op->next;
  op->next->prev = op->prev;
  op->next = op->prev = NULL;
  assert(a->ops_n > 0);
  a->ops_n--;
  if (op_unsequenced(op)) {
    assert(a->ops_unsequenced > 0);
    a->ops_unsequenced--;
  }
  if (op->sequence != 0 && op->session_id == a->session_id) {
    assert(a->inflight_sequenced > 0);
    a->inflight_sequenced--;
  }
}

static bool ops_empty(const struct synod_async *a) {
  return a->ops.next == &a->ops;
}

void engine_complete(struct synod_async *a, struct op *op, int status,
                     const Synod__Response *resp, const char *errmsg) {
  op_unlink(a, op);
  if (!op->zombie && op->done != NULL) {
    snprintf(a->errmsg, sizeof a->errmsg, "%s", errmsg ? errmsg : "");
    op->done(op, status, resp, a->errmsg);
  }
  op_free(op);
}

void engine_enqueue(struct synod_async *a, struct op *op, uint32_t timeout_ms) {
  op->id = a->next_id++;
  /* uv_now() is the time the loop last looked: a call made after the loop
   * sat idle longer than the timeout (an application that runs its loop
   * now and then) would otherwise be past its deadline as it starts. */
  uv_update_time(a->loop);
  op->deadline_ms =
      engine_now(a) + (timeout_ms ? timeout_ms : a->opts.request_timeout_ms);
  op_link_tail(a, op);
}

int engine_submit(struct synod_async *a, struct op *op, uint32_t timeout_ms) {
  if (a->closing) {
    errmsg_printf(a->errmsg, "the client is closing");
    return SYNOD_ESHUTDOWN;
  }
  if (op->kind == OP_LOCK_RELEASE &&
      session_lock_was_lost(a, op->name, op->owner_id)) {
    errmsg_printf(a->errmsg,
                  "lock '%s' (owner %" PRIu64 ") was lost with its session",
                  op->name, op->owner_id);
    return SYNOD_ELOST;
  }
  if (protobuf_c_message_get_packed_size(&op->req.base) >
      FRAME_MAX_BYTES_DEFAULT - REQUEST_OVERHEAD_BYTES) {
    errmsg_printf(a->errmsg, "%s request over the frame maximum",
                  op_kind_name(op->kind));
    return SYNOD_ETOOBIG;
  }
  engine_enqueue(a, op, timeout_ms);
  engine_flush(a);
  return 0;
}

/* ------------------------------------------------------------- sending */

static bool session_usable(const struct synod_async *a) {
  return a->session_id != 0;
}

/* A session close waits behind the writes queued before it, but not for
 * a window slot once they are all out: the server records no answer for
 * it, and a window full of acquires waiting on locks would otherwise
 * hold it until its timeout, leaving the session (its locks, its queued
 * acquires) until the TTL. */
static bool close_may_pass(const struct synod_async *a, const struct op *op) {
  return op->kind == OP_SESSION_CLOSE && a->ops_unsequenced == 1;
}

/* Writes op on the current connection if nothing holds it back. */
static void op_try_send(struct synod_async *a, struct op *op) {
  if (op->sent || op->kind == OP_SESSION_WAIT) {
    return;
  }
  if (op_kind_needs_session(op->kind) && !session_usable(a)) {
    return;
  }
  if (op_kind_sequenced(op->kind) && op->sequence == 0) {
    if (a->inflight_sequenced >= SYNOD_INFLIGHT_MAX && !close_may_pass(a, op)) {
      return;
    }
    op->sequence = ++a->last_sequence;
    op->session_id = a->session_id;
    a->inflight_sequenced++;
    assert(a->ops_unsequenced > 0);
    a->ops_unsequenced--;
  }
  op->req.id = op->id;
  op->req.forward = a->opts.stay_on_replica;
  op->req.sequence = op->sequence;
  op->req.session_id = 0;
  if (op_kind_needs_session(op->kind)) {
    op->req.session_id = op->sequence ? op->session_id : a->session_id;
  }
  if (stream_send(&a->conn->s, &op->req.base) != 0) {
    return; /* out of memory: stays queued, bounded by its deadline */
  }
  op->sent = true;
  op->sent_ms = engine_now(a);
  if (op->kind == OP_SESSION_KEEPALIVE) {
    a->keepalive_sent_ms = op->sent_ms;
  }
}

static bool has_work(const struct synod_async *a) {
  return !ops_empty(a) || a->session_id != 0 || a->observers != NULL ||
         a->subs != NULL;
}

void engine_flush(struct synod_async *a) {
  if (a->close_finishing) {
    return;
  }
  if (a->conn == NULL) {
    if (!a->round.active && !uv_is_active((uv_handle_t *)&a->backoff_timer) &&
        has_work(a)) {
      conn_round_start(a);
    }
    return;
  }
  session_open_if_needed(a);
  /* left: ops not looked at yet; waiting: those of them unsequenced. */
  size_t left = a->ops_n, waiting = a->ops_unsequenced;
  for (struct op *op = a->ops.next; op != &a->ops; op = op->next) {
    if (left == waiting && a->inflight_sequenced >= SYNOD_INFLIGHT_MAX &&
        !close_may_pass(a, op)) {
      break; /* the rest wait for a slot, and none is free */
    }
    waiting -= op_unsequenced(op);
    left--;
    a->flush_visits++;
    op_try_send(a, op);
  }
  stream_flush(&a->conn->s);
}

/* ---------------------------------------------------------- connection */

static void backoff_cb(uv_timer_t *t) {
  engine_flush(t->data);
}

void engine_backoff(struct synod_async *a, uint32_t delay_ms) {
  uv_timer_start(&a->backoff_timer, backoff_cb, delay_ms, 0);
}

/* Fails the ops that were written on the connection just lost and may
 * not be sent again (rescanning: callbacks may change the list). */
static void ops_fail_unretryable(struct synod_async *a, const char *why) {
  char msg[SYNOD_ERRMSG_BYTES];
  struct op *op = a->ops.next;
  while (op != &a->ops) {
    if (op->sent && !op_kind_retry_safe(op->kind)) {
      errmsg_printf(msg,
                    "%s: the connection failed after it was sent "
                    "(%s); the outcome is unknown",
                    op_kind_name(op->kind), why);
      engine_complete(a, op, SYNOD_ETIMEDOUT, NULL, msg);
      op = a->ops.next;
    } else {
      op = op->next;
    }
  }
}

/* Completes the requests bound to the connection just lost (subscribe,
 * credit, unsubscribe: their subscription ids mean nothing on another),
 * sent or not (rescanning: callbacks may change the list). */
static void ops_drop_conn_bound(struct synod_async *a) {
  struct op *op = a->ops.next;
  while (op != &a->ops) {
    if (op_kind_conn_bound(op->kind)) {
      engine_complete(a, op, SYNOD_ECLOSED, NULL, "the connection was lost");
      op = a->ops.next;
    } else {
      op = op->next;
    }
  }
}

/* Forgets the live connection: its unanswered requests will go out
 * again, with the same ids and sequences, on the next one (or fail, see
 * ops_fail_unretryable); subscriptions subscribe again once the next one
 * is ready. */
void engine_reconnect(struct synod_async *a, const char *why,
                      uint32_t delay_ms) {
  char reason[SYNOD_ERRMSG_BYTES];
  snprintf(reason, sizeof reason, "%s", why);
  if (a->conn != NULL) {
    errmsg_printf(a->conn_error, "%s: %s", a->conn->address, why);
  }
  conn_drop_live(a);
  if (a->close_finishing) {
    return;
  }
  engine_backoff(a, delay_ms);
  subs_on_conn_lost(a);
  ops_drop_conn_bound(a);
  ops_fail_unretryable(a, reason);
  for (struct op *op = a->ops.next; op != &a->ops; op = op->next) {
    op->sent = false;
  }
}

void engine_fail_unreachable(struct synod_async *a, uint64_t next_ready_ms) {
  char why[SYNOD_ERRMSG_BYTES];
  struct op *op = a->ops.next;
  while (op != &a->ops) {
    if (op->sequence == 0 && !op->zombie && op->deadline_ms < next_ready_ms) {
      errmsg_printf(why, "%s: cannot connect to any endpoint (last: %s)",
                    op_kind_name(op->kind), a->conn_error);
      engine_complete(a, op, SYNOD_ECONNECT, NULL, why);
      op = a->ops.next;
    } else {
      op = op->next;
    }
  }
}

void engine_leader_seen(struct synod_async *a, const char *address) {
  if (address != NULL && address[0] != '\0') {
    snprintf(a->leader_address, sizeof a->leader_address, "%s", address);
  }
}

/* ------------------------------------------------------------ answers */

static void on_hello(struct synod_async *a, struct conn *conn,
                     const Synod__Response *resp) {
  char why[SYNOD_ERRMSG_BYTES];
  if (resp->error != NULL && resp->error->code != 0) {
    snprintf(why, sizeof why, "Hello refused: %s: %s",
             synod_errname(resp->error->code), resp->error->message);
    conn_fail(conn, why);
    return;
  }
  if (resp->body_case != SYNOD__RESPONSE__BODY_HELLO) {
    conn_fail(conn, "the answer to Hello is not a HelloReply");
    return;
  }
  conn_attempt_won(conn);
  engine_on_ready(a, conn, resp->hello);
}

/* A HelloReply (the winning attempt's, or a probe's): what it says of
 * the leader. */
static void on_hello_reply(struct synod_async *a, const Synod__HelloReply *h) {
  if (h->leader_name[0] == '\0') {
    return;
  }
  engine_leader_seen(a, h->leader_address);
  if (strcmp(h->leader_name, a->leader_name) != 0 || h->term > a->leader_term) {
    snprintf(a->leader_name, sizeof a->leader_name, "%s", h->leader_name);
    a->leader_term = h->term > a->leader_term ? h->term : a->leader_term;
    if (a->opts.leader_cb != NULL) {
      a->opts.leader_cb(a->opts.cb_arg, h->leader_name, h->leader_address,
                        a->leader_term);
    }
  }
}

void engine_on_ready(struct synod_async *a, struct conn *conn,
                     const Synod__HelloReply *h) {
  (void)conn;
  a->ever_connected = true;
  a->conn_error[0] = '\0';
  on_hello_reply(a, h);
  session_on_ready(a);
  observers_on_ready(a);
  subs_on_ready(a);
  engine_flush(a);
}

static struct op *op_find_sent(struct synod_async *a, uint64_t id) {
  for (struct op *op = a->ops.next; op != &a->ops; op = op->next) {
    if (op->id == id && op->sent) {
      return op;
    }
  }
  return NULL;
}

/* ENOTLEADER/ENOLEADER: go where the server says, or wait out the
 * election; the op stays queued and goes out again. */
static void on_not_leader(struct synod_async *a, const Synod__Error *e) {
  char why[SYNOD_ERRMSG_BYTES];
  uint32_t delay_ms;
  uint64_t age;
  if (e->leader_address[0] == '\0') {
    /* This replica knows no leader. It may be a leader cut off from the
     * others, which steps down and answers at once: never prefer it as
     * "the leader" again, and try the others first for a while. */
    const char *here = a->conn != NULL ? a->conn->address : "";
    if (here[0] != '\0') {
      if (strcmp(a->leader_address, here) == 0) {
        a->leader_address[0] = '\0';
      }
      if (strcmp(a->leader_hint, here) == 0) {
        a->leader_hint[0] = '\0';
      }
      snprintf(a->leaderless, sizeof a->leaderless, "%s", here);
      a->leaderless_ms = engine_now(a);
    }
    /* Another replica may know one: ask each at once before waiting for
     * an election. */
    snprintf(why, sizeof why, "no leader (%s)", e->message);
    engine_reconnect(a, why,
                     ++a->leaderless_n < a->endpoints_n
                         ? 0
                         : backoff_no_leader_ms(prng_next(&a->prng)));
    return;
  }
  snprintf(a->leader_name, sizeof a->leader_name, "%s", e->leader_name);
  if (a->opts.leader_cb != NULL) {
    a->opts.leader_cb(a->opts.cb_arg, e->leader_name, e->leader_address,
                      a->leader_term);
  }
  /* A follower names its leader until its own election timeout runs out
   * (at most stall_ms, the longest default). Naming one that went silent
   * more recently than that is no news: wait for the election, the
   * silent one tried last. Naming it later means the follower still
   * hears from it: it is back. */
  age = conn_silent_age_ms(a, e->leader_address);
  if (age < a->stall_ms) {
    snprintf(why, sizeof why,
             "not the leader; the leader %s at %s was silent %" PRIu64
             " ms ago",
             e->leader_name, e->leader_address, age);
    engine_reconnect(a, why, backoff_no_leader_ms(prng_next(&a->prng)));
    return;
  }
  conn_silent_clear(a, e->leader_address);
  snprintf(a->leader_hint, sizeof a->leader_hint, "%s", e->leader_address);
  engine_leader_seen(a, e->leader_address);
  a->redirects++;
  delay_ms = a->redirects > REDIRECTS_MAX
                 ? backoff_no_leader_ms(prng_next(&a->prng))
                 : 0;
  snprintf(why, sizeof why, "not the leader; the leader is %s at %s",
           e->leader_name, e->leader_address);
  engine_reconnect(a, why, delay_ms);
}

static void on_error(struct synod_async *a, struct op *op,
                     const Synod__Response *resp) {
  const Synod__Error *e = resp->error;
  int code = (int)e->code;
  char why[SYNOD_ERRMSG_BYTES];
  if (code == SYNOD_ENOTLEADER || code == SYNOD_ENOLEADER) {
    on_not_leader(a, e);
    return;
  }
  if (code == SYNOD_ESESSION && op_kind_needs_session(op->kind) &&
      a->session_id != 0 &&
      (op->sequence == 0 || op->session_id == a->session_id)) {
    snprintf(why, sizeof why,
             "the server does not know session %" PRIu64 ": %s", a->session_id,
             e->message);
    session_lost(a, why); /* fails op too */
    return;
  }
  session_on_result(a, op, code, resp);
  engine_complete(a, op, code, resp, e->message);
}

static void on_response(struct synod_async *a, struct conn *conn,
                        const Synod__Response *resp) {
  struct op *op;
  if (!conn->ready) {
    if (resp->id == conn->hello_id) {
      on_hello(a, conn, resp);
    }
    return;
  }
  if (resp->id == conn->probe_id) {
    if (resp->body_case == SYNOD__RESPONSE__BODY_HELLO) {
      on_hello_reply(a, resp->hello);
    }
    return;
  }
  op = op_find_sent(a, resp->id);
  if (op == NULL) {
    return; /* the answer to a request that timed out */
  }
  op->sent = false;
  a->live_failures = 0;
  if (resp->error != NULL && resp->error->code != 0) {
    on_error(a, op, resp);
    return;
  }
  a->redirects = 0;
  a->leaderless_n = 0;
  session_on_result(a, op, 0, resp);
  engine_complete(a, op, 0, resp, "");
  engine_flush(a); /* a window slot or a session may have freed up */
}

static void on_event(struct synod_async *a, const Synod__Event *ev) {
  char why[96];
  switch (ev->body_case) {
  case SYNOD__EVENT__BODY_LEADER_CHANGED: {
    const Synod__LeaderChanged *lc = ev->leader_changed;
    snprintf(a->leader_name, sizeof a->leader_name, "%s", lc->leader_name);
    a->leader_term = lc->term;
    engine_leader_seen(a, lc->leader_address);
    if (a->opts.leader_cb != NULL) {
      a->opts.leader_cb(a->opts.cb_arg, lc->leader_name, lc->leader_address,
                        lc->term);
    }
    break;
  }
  case SYNOD__EVENT__BODY_SESSION_EXPIRED:
    if (ev->session_expired->session_id == a->session_id &&
        a->session_id != 0) {
      snprintf(why, sizeof why, "the server expired session %" PRIu64,
               a->session_id);
      session_lost(a, why);
    }
    break;
  case SYNOD__EVENT__BODY_ELECTION_CHANGED:
    observers_report(a, ev->election_changed->info);
    break;
  case SYNOD__EVENT__BODY_CHANNEL_DELIVERY:
    subs_on_delivery(a, ev->channel_delivery);
    break;
  case SYNOD__EVENT__BODY_KEY_WATCH_DELIVERY:
    subs_on_key_delivery(a, ev->key_watch_delivery);
    break;
  case SYNOD__EVENT__BODY_GROUP_DELIVERY:
    subs_on_group_delivery(a, ev->group_delivery);
    break;
  case SYNOD__EVENT__BODY_SUBSCRIPTION_ENDED:
    subs_on_ended(a, ev->subscription_ended);
    break;
  default: /* LockGranted: the Response carries the same grant */
    break;
  }
}

bool engine_frame_cb(struct stream *s, const uint8_t *p, size_t n) {
  struct conn *conn = s->data;
  struct synod_async *a = conn->a;
  Synod__ServerMessage *msg = synod__server_message__unpack(NULL, n, p);
  if (msg == NULL) {
    conn_fail(conn, "a frame from the server does not decode");
    return false;
  }
  conn->last_rx_ms = engine_now(a);
  conn->probe_sent_ms = 0; /* any frame proves the server alive */
  if (msg->body_case == SYNOD__SERVER_MESSAGE__BODY_RESPONSE) {
    on_response(a, conn, msg->response);
  } else if (msg->body_case == SYNOD__SERVER_MESSAGE__BODY_EVENT &&
             conn->ready) {
    on_event(a, msg->event);
  }
  synod__server_message__free_unpacked(msg, NULL);
  return !conn->dead;
}

/* ----------------------------------------------------------- deadlines */

/* An op ran out of time. A lock acquire that the server may still grant
 * stays as a zombie, so a late grant is released, not leaked. */
static void op_expire(struct synod_async *a, struct op *op, uint64_t now) {
  char why[SYNOD_ERRMSG_BYTES];
  bool connected = a->conn != NULL;
  int status = SYNOD_ETIMEDOUT;
  if (op->zombie) {
    engine_complete(a, op, SYNOD_ETIMEDOUT, NULL, "");
    return;
  }
  if (!connected && op->sequence == 0 && a->conn_error[0] != '\0') {
    status = SYNOD_ECONNECT;
    errmsg_printf(why, "%s: cannot connect to any endpoint (last: %s)",
                  op_kind_name(op->kind), a->conn_error);
  } else {
    errmsg_printf(why, "%s: no answer in time%s%s", op_kind_name(op->kind),
                  connected ? " from " : "",
                  connected ? a->conn->address : " (not connected)");
  }
  /* The op is answered (or made a zombie) before the reconnect, which
   * would complete it too (a conn-bound op, or one not safe to send
   * again), and before its callback runs; nothing touches it after that
   * callback, which may close the client and with it free the op. */
  bool stalled = connected && op->sent && a->conn->last_rx_ms < op->sent_ms;
  if (op->kind == OP_LOCK_ACQUIRE && op->sequence != 0) {
    op->zombie = true; /* a close from the callback frees it, silently */
    op->deadline_ms = now + a->opts.request_timeout_ms;
    snprintf(a->errmsg, sizeof a->errmsg, "%s", why);
    if (op->done != NULL) {
      op->done(op, status, NULL, a->errmsg);
    }
  } else {
    engine_complete(a, op, status, NULL, why);
  }
  if (stalled && a->conn != NULL) {
    engine_reconnect(a, "the server stopped answering", 0);
  }
}

static void sweep_cb(uv_timer_t *t) {
  struct synod_async *a = t->data;
  uint64_t now = engine_now(a);
  bool again = true;
  conn_watch(a, now);
  subs_sweep(a, now);
  groups_sweep(a, now);
  /* Restart the scan after each one: a callback may change the list. An
   * expired op leaves the list or becomes a zombie with a later deadline,
   * so this ends. */
  while (again) {
    again = false;
    for (struct op *op = a->ops.next; op != &a->ops; op = op->next) {
      if (op->deadline_ms <= now) {
        op_expire(a, op, now);
        again = true;
        break;
      }
      if (op->kind == OP_SESSION_WAIT && a->session_id != 0) {
        engine_complete(a, op, 0, NULL, "");
        again = true;
        break;
      }
    }
  }
}

/* -------------------------------------------------------- life cycle */

static _Thread_local char new_errmsg[SYNOD_ERRMSG_BYTES];

void synod_options_init(struct synod_options *opts) {
  memset(opts, 0, sizeof *opts);
}

static uint32_t min_u32(uint32_t x, uint32_t y) {
  return x < y ? x : y;
}

/* Fills in the defaults and derives the bounds the engine uses: an
 * attempt's phase never takes more than a third of the request timeout
 * (so a silent replica leaves time to try the others), the next attempt
 * starts no later than the first one's bound, and a live connection is
 * declared dead before half the request timeout and before a quarter of
 * the session's TTL, so a renewal moves in time. */
static void async_bounds(struct synod_async *a) {
  struct synod_options *o = &a->opts;
  if (o->connect_timeout_ms == 0) {
    o->connect_timeout_ms = SYNOD_CONNECT_TIMEOUT_DEFAULT_MS;
  }
  if (o->attempt_delay_ms == 0) {
    o->attempt_delay_ms = SYNOD_ATTEMPT_DELAY_DEFAULT_MS;
  }
  if (o->stall_timeout_ms == 0) {
    o->stall_timeout_ms = SYNOD_STALL_TIMEOUT_DEFAULT_MS;
  }
  if (o->request_timeout_ms == 0) {
    o->request_timeout_ms = SYNOD_REQUEST_TIMEOUT_DEFAULT_MS;
  }
  a->connect_bound_ms =
      min_u32(o->connect_timeout_ms, o->request_timeout_ms / 3 + 1);
  a->attempt_delay_ms = min_u32(o->attempt_delay_ms, a->connect_bound_ms);
  a->stall_ms = min_u32(o->stall_timeout_ms, o->request_timeout_ms / 2 + 1);
  a->stall_ms = min_u32(a->stall_ms, o->session_ttl_ms / 4);
}

/* Copies opts into a with defaults filled in and checks them. */
static int async_configure(struct synod_async *a,
                           const struct synod_options *opts, char *errmsg) {
  const char *endpoints = opts->endpoints;
  a->opts = *opts;
  if (endpoints == NULL) {
    endpoints = getenv("SYNOD_ENDPOINTS");
  }
  if (endpoints == NULL || endpoints[0] == '\0') {
    endpoints = SYNOD_ENDPOINTS_DEFAULT;
  }
  a->opts.endpoints = NULL; /* not kept: parsed below */
  a->client_name = strdup(opts->client_name ? opts->client_name : "libsynod");
  if (a->client_name == NULL) {
    return SYNOD_ENOMEM;
  }
  a->opts.client_name = a->client_name;
  if (a->opts.session_ttl_ms == 0) {
    a->opts.session_ttl_ms = SYNOD_SESSION_TTL_DEFAULT_MS;
  }
  if (a->opts.session_ttl_ms < SYNOD_SESSION_TTL_MIN_MS ||
      a->opts.session_ttl_ms > SYNOD_SESSION_TTL_MAX_MS) {
    errmsg_printf(errmsg, "session TTL %u ms outside %d..%d ms",
                  a->opts.session_ttl_ms, SYNOD_SESSION_TTL_MIN_MS,
                  SYNOD_SESSION_TTL_MAX_MS);
    return SYNOD_EINVAL;
  }
  async_bounds(a);
  a->ttl_ms = a->opts.session_ttl_ms;
  return endpoints_parse(endpoints, a->endpoints, ENDPOINTS_MAX,
                         &a->endpoints_n, errmsg);
}

int synod_async_new(struct uv_loop_s *loop, const struct synod_options *opts,
                    struct synod_async **out) {
  struct synod_options defaults;
  struct synod_async *a;
  uv_timer_t *timers[ASYNC_TIMERS];
  int rv;
  new_errmsg[0] = '\0';
  if (opts == NULL) {
    synod_options_init(&defaults);
    opts = &defaults;
  }
  a = calloc(1, sizeof *a);
  if (a == NULL) {
    return SYNOD_ENOMEM;
  }
  rv = async_configure(a, opts, new_errmsg);
  if (rv != 0) {
    free(a->client_name);
    free(a);
    return rv;
  }
  a->loop = loop;
  a->ops.next = a->ops.prev = &a->ops;
  a->next_id = 1;
  a->prng = uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)a;
  a->next_endpoint = (size_t)(prng_next(&a->prng) % a->endpoints_n);
  timers[0] = &a->backoff_timer;
  timers[1] = &a->attempt_timer;
  timers[2] = &a->keepalive_timer;
  timers[3] = &a->session_timer;
  timers[4] = &a->sweep_timer;
  for (int i = 0; i < ASYNC_TIMERS; i++) {
    uv_timer_init(loop, timers[i]);
    timers[i]->data = a;
    a->handles_open++;
  }
  uv_timer_start(&a->sweep_timer, sweep_cb, SWEEP_INTERVAL_MS,
                 SWEEP_INTERVAL_MS);
  uv_unref((uv_handle_t *)&a->sweep_timer);
  *out = a;
  return 0;
}

uint64_t synod_async_session_id(const struct synod_async *a) {
  return atomic_load(&a->session_id);
}

enum synod_session_state
synod_async_session_state(const struct synod_async *a) {
  return a->session_state;
}

const char *synod_async_last_errmsg(const struct synod_async *a) {
  return a != NULL ? a->errmsg : new_errmsg;
}

static void async_handle_closed(uv_handle_t *h) {
  struct synod_async *a = h->data;
  synod_async_close_cb cb;
  void *arg;
  if (--a->handles_open > 0) {
    return;
  }
  cb = a->close_cb;
  arg = a->close_arg;
  free(a->client_name);
  free(a);
  if (cb != NULL) {
    cb(arg);
  }
}

/* The session is closed (or could not be): fail what is left, close the
 * connection and the timers; async_handle_closed frees the rest. */
static void async_close_finish(struct synod_async *a) {
  uv_timer_t *timers[ASYNC_TIMERS] = {&a->backoff_timer, &a->attempt_timer,
                                      &a->keepalive_timer, &a->session_timer,
                                      &a->sweep_timer};
  if (a->close_finishing) {
    return;
  }
  a->close_finishing = true;
  while (!ops_empty(a)) {
    engine_complete(a, a->ops.next, SYNOD_ESHUTDOWN, NULL,
                    "the client is closing");
  }
  observers_shutdown(a);
  groups_shutdown(a);
  subs_shutdown(a);
  session_on_closed(a);
  session_free_tables(a);
  conn_attempts_abort(a);
  conn_drop_live(a);
  for (int i = 0; i < ASYNC_TIMERS; i++) {
    uv_timer_stop(timers[i]);
    uv_close((uv_handle_t *)timers[i], async_handle_closed);
  }
}

static void session_close_done(struct op *op, int status,
                               const Synod__Response *resp,
                               const char *errmsg) {
  (void)status;
  (void)resp;
  (void)errmsg;
  async_close_finish(op->arg);
}

void synod_async_close(struct synod_async *a, synod_async_close_cb cb,
                       void *arg) {
  struct op *op;
  struct op_args args = {0};
  assert(!a->closing);
  a->closing = true;
  a->close_cb = cb;
  a->close_arg = arg;
  if (a->session_id == 0 || a->conn == NULL ||
      op_build(OP_SESSION_CLOSE, &args, &op, a->errmsg) != 0) {
    async_close_finish(a);
    return;
  }
  op->done = session_close_done;
  op->arg = a;
  engine_enqueue(a, op, SESSION_CLOSE_TIMEOUT_MS);
  engine_flush(a);
}
