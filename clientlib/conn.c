/* Connections: rounds of bounded attempts over the endpoints, started in
 * parallel after a short delay with the first HelloReply winning (happy
 * eyeballs, RFC 8305); endpoints that went silent are tried last for a
 * while; the live connection is probed when quiet and dropped when it
 * stays silent, so its requests go to another replica.
 *
 * Why these bounds. A stopped replica's kernel still completes the TCP
 * handshake and queues what we send, so a connect that succeeds proves
 * nothing: only a frame from the server does. A healthy replica answers
 * Hello and the probe (also a Hello) from its loop, without the log or
 * the disk, in well under a millisecond on a LAN; so a few hundred
 * milliseconds per phase is generous, and a second attempt 50 ms after
 * the first costs a healthy cluster nothing but bounds what one silent
 * replica costs a new client. A live connection is declared dead only
 * after stall_ms (1 s: the server's longest default election timeout)
 * with nothing received while a request waits, and a probe at half of
 * that keeps a slow but alive replica (a lock wait, an election) from
 * being mistaken for a silent one. */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

/* ------------------------------------------------------ silent marks */

static struct silent_mark *silent_find(struct synod_async *a,
                                       const char *address) {
  for (size_t i = 0; i < SILENT_MAX; i++) {
    if (a->silent[i].address[0] != '\0' &&
        strcmp(a->silent[i].address, address) == 0) {
      return &a->silent[i];
    }
  }
  return NULL;
}

uint64_t conn_silent_age_ms(struct synod_async *a, const char *address) {
  struct silent_mark *m = silent_find(a, address);
  uint64_t now = engine_now(a);
  if (m == NULL) {
    return UINT64_MAX;
  }
  if (now - m->since_ms >= SILENT_EXPIRE_MS) {
    m->address[0] = '\0';
    return UINT64_MAX;
  }
  return now - m->since_ms;
}

/* Marks address silent now (refreshing an older mark); when every slot is
 * taken, the oldest mark gives way. */
void conn_silent_mark(struct synod_async *a, const char *address) {
  struct silent_mark *m = silent_find(a, address);
  for (size_t i = 0; m == NULL && i < SILENT_MAX; i++) {
    if (a->silent[i].address[0] == '\0') {
      m = &a->silent[i];
    }
  }
  for (size_t i = 0; m == NULL && i < SILENT_MAX; i++) {
    if (m == NULL || a->silent[i].since_ms < m->since_ms) {
      m = &a->silent[i];
    }
  }
  snprintf(m->address, sizeof m->address, "%s", address);
  m->since_ms = engine_now(a);
}

void conn_silent_clear(struct synod_async *a, const char *address) {
  struct silent_mark *m = silent_find(a, address);
  if (m != NULL) {
    m->address[0] = '\0';
  }
}

/* ------------------------------------------------------ planning */

/* Appends the endpoint parsed from address (if it parses and is not
 * already planned). */
static void round_add_address(struct synod_async *a, const char *address) {
  struct endpoint e;
  if (address[0] != '\0' &&
      endpoint_parse(address, strlen(address), &e, NULL) == 0) {
    struct round *r = &a->round;
    char have[ENDPOINT_HOST_MAX + 16], want[ENDPOINT_HOST_MAX + 16];
    endpoint_format(&e, want, sizeof want);
    for (size_t i = 0; i < r->n; i++) {
      endpoint_format(&r->cands[i], have, sizeof have);
      if (strcmp(have, want) == 0) {
        return;
      }
    }
    if (r->n < ROUND_MAX) {
      r->cands[r->n++] = e;
    }
  }
}

/* The order of one round: the leader named by the last redirect, then
 * the leader last reported (not with stay_on_replica: such a client goes
 * where its endpoints say, unless a redirect asked otherwise, so that the
 * clients stay spread over the replicas), then the endpoints from a
 * rotating start (the first one when endpoints_in_order); endpoints
 * marked silent, and the one that last said it knows no leader, move to
 * the end, keeping their order. */
static void round_plan(struct synod_async *a) {
  struct round *r = &a->round;
  struct endpoint loud[ROUND_MAX], quiet[ROUND_MAX];
  size_t nl = 0, nq = 0, start = 0;
  char address[ENDPOINT_HOST_MAX + 16];
  r->n = 0;
  r->next = 0;
  round_add_address(a, a->leader_hint);
  if (!a->opts.stay_on_replica) {
    round_add_address(a, a->leader_address);
  }
  if (!a->opts.endpoints_in_order) {
    start = a->next_endpoint++ % a->endpoints_n;
  }
  for (size_t i = 0; i < a->endpoints_n; i++) {
    endpoint_format(&a->endpoints[(start + i) % a->endpoints_n], address,
                    sizeof address);
    round_add_address(a, address);
  }
  bool leaderless = a->leaderless[0] != '\0' &&
                    engine_now(a) - a->leaderless_ms < LEADERLESS_MS;
  for (size_t i = 0; i < r->n; i++) {
    endpoint_format(&r->cands[i], address, sizeof address);
    if (conn_silent_age_ms(a, address) == UINT64_MAX &&
        !(leaderless && strcmp(address, a->leaderless) == 0)) {
      loud[nl++] = r->cands[i];
    } else {
      quiet[nq++] = r->cands[i];
    }
  }
  memcpy(r->cands, loud, nl * sizeof loud[0]);
  memcpy(r->cands + nl, quiet, nq * sizeof quiet[0]);
}

/* ------------------------------------------------------ conn life */

static void conn_unref(struct conn *conn) {
  if (--conn->refs == 0) {
    free(conn);
  }
}

static void conn_closed_cb(struct stream *s) {
  conn_unref(s->data);
}

static void conn_closing_cb(struct stream *s, const char *why, bool refused) {
  (void)refused;
  conn_fail(s->data, why);
}

/* Abandons conn: nothing more is done with it; libuv frees it. */
static void conn_abandon(struct conn *conn, const char *why) {
  conn->dead = true;
  if (conn->has_tcp) {
    stream_close(&conn->s, why, false);
  }
}

static void attempts_unlink(struct synod_async *a, struct conn *conn) {
  for (struct conn **p = &a->attempts; *p != NULL; p = &(*p)->next) {
    if (*p == conn) {
      *p = conn->next;
      conn->next = NULL;
      return;
    }
  }
}

static void attempt_timer_arm(struct synod_async *a);
static void round_next(struct synod_async *a);

/* The round ended without a HelloReply: back off, then start another. */
static void round_failed(struct synod_async *a) {
  uint32_t delay_ms;
  a->round.active = false;
  uv_timer_stop(&a->attempt_timer);
  a->rounds_failed++;
  delay_ms = backoff_connect_ms(a->rounds_failed, prng_next(&a->prng));
  engine_backoff(a, delay_ms);
  engine_fail_unreachable(a, engine_now(a) + delay_ms +
                                 2 * (uint64_t)a->connect_bound_ms);
}

/* After an attempt failed: start the next candidate at once, or wait for
 * the attempts still running, or give the round up. */
static void round_continue(struct synod_async *a) {
  struct round *r = &a->round;
  if (!r->active || a->conn != NULL || a->close_finishing) {
    return;
  }
  if (r->next < r->n) {
    round_next(a);
  } else if (a->attempts == NULL) {
    round_failed(a);
    return;
  }
  attempt_timer_arm(a);
}

static void attempt_failed(struct conn *conn, const char *why, bool silent) {
  struct synod_async *a = conn->a;
  attempts_unlink(a, conn);
  conn_abandon(conn, why);
  if (silent) {
    conn_silent_mark(a, conn->address);
  }
  errmsg_printf(a->conn_error, "%s: %s", conn->address, why);
  round_continue(a);
}

void conn_fail(struct conn *conn, const char *why) {
  struct synod_async *a = conn->a;
  uint32_t delay_ms = 0;
  if (conn->dead) {
    return;
  }
  if (conn != a->conn) {
    attempt_failed(conn, why, false);
    return;
  }
  /* A live connection lost again before any request was answered (a
   * replica that accepts, greets and hangs up) backs off. */
  if (a->live_failures++ > 0) {
    delay_ms = backoff_connect_ms(a->live_failures - 1, prng_next(&a->prng));
  }
  engine_reconnect(a, why, delay_ms);
}

void conn_drop_live(struct synod_async *a) {
  struct conn *conn = a->conn;
  if (conn != NULL) {
    a->conn = NULL;
    conn_abandon(conn, "dropped by the client");
  }
}

void conn_attempts_abort(struct synod_async *a) {
  struct conn *conn;
  a->round.active = false;
  uv_timer_stop(&a->attempt_timer);
  while ((conn = a->attempts) != NULL) {
    a->attempts = conn->next;
    conn->next = NULL;
    conn_abandon(conn, "the client is closing");
  }
}

void conn_attempt_won(struct conn *conn) {
  struct synod_async *a = conn->a;
  uint64_t now = engine_now(a);
  struct conn *other;
  attempts_unlink(a, conn);
  while ((other = a->attempts) != NULL) {
    a->attempts = other->next;
    other->next = NULL;
    /* It had its delay and did not answer: try it last for a while. */
    if (now - other->started_ms >= a->attempt_delay_ms) {
      conn_silent_mark(a, other->address);
    }
    conn_abandon(other, "another endpoint answered first");
  }
  a->round.active = false;
  uv_timer_stop(&a->attempt_timer);
  conn_silent_clear(a, conn->address);
  conn->ready = true;
  conn->last_rx_ms = now;
  a->conn = conn;
  a->rounds_failed = 0;
}

/* ------------------------------------------------------ one attempt */

static void conn_send_hello(struct conn *conn, uint64_t *id) {
  struct synod_async *a = conn->a;
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__Hello hello = SYNOD__HELLO__INIT;
  hello.protocol_version = SYNOD__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
  hello.client_name = a->client_name;
  req.id = *id = a->next_id++;
  req.body_case = SYNOD__REQUEST__BODY_HELLO;
  req.hello = &hello;
  if (stream_send(&conn->s, &req.base) != 0) {
    conn_fail(conn, "out of memory");
    return;
  }
  stream_flush(&conn->s);
}

static void conn_connect_cb(uv_connect_t *req, int status) {
  struct conn *conn = req->data;
  char why[128];
  if (conn->dead) {
    return;
  }
  if (status < 0) {
    snprintf(why, sizeof why, "connect: %s", uv_strerror(status));
    conn_fail(conn, why);
    return;
  }
  if (stream_start(&conn->s) != 0) {
    return; /* the stream is closing; closing_cb reported it */
  }
  /* The Hello phase gets a bound of its own. */
  conn->connected = true;
  conn->deadline_ms = engine_now(conn->a) + conn->a->connect_bound_ms;
  attempt_timer_arm(conn->a);
  conn_send_hello(conn, &conn->hello_id);
}

static void conn_connect(struct conn *conn, const struct sockaddr *sa) {
  struct synod_async *a = conn->a;
  char why[128];
  int rv;
  stream_init(&conn->s, a->loop, 0);
  conn->has_tcp = true;
  conn->refs++;
  conn->s.data = conn;
  conn->s.frame_cb = engine_frame_cb;
  conn->s.close_cb = conn_closed_cb;
  conn->s.closing_cb = conn_closing_cb;
  snprintf(conn->s.remote, sizeof conn->s.remote, "%.120s", conn->address);
  conn->connect.data = conn;
  rv = uv_tcp_connect(&conn->connect, &conn->s.tcp, sa, conn_connect_cb);
  if (rv != 0) {
    snprintf(why, sizeof why, "connect: %s", uv_strerror(rv));
    conn_fail(conn, why);
  }
}

static void conn_resolved_cb(uv_getaddrinfo_t *req, int status,
                             struct addrinfo *res) {
  struct conn *conn = req->data;
  char why[128];
  if (conn->dead) {
    uv_freeaddrinfo(res);
  } else if (status < 0 || res == NULL) {
    snprintf(why, sizeof why, "resolve: %s", uv_strerror(status));
    uv_freeaddrinfo(res);
    conn_fail(conn, why);
  } else {
    conn_connect(conn, res->ai_addr);
    uv_freeaddrinfo(res);
  }
  conn_unref(conn); /* the getaddrinfo's reference */
}

/* Starts resolving (names) or connecting (addresses). */
static void conn_begin(struct conn *conn) {
  struct synod_async *a = conn->a;
  struct sockaddr_in6 sa6;
  struct sockaddr_in sa4;
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  char port[8];
  char why[128];
  int rv;
  if (uv_ip4_addr(conn->ep.host, conn->ep.port, &sa4) == 0) {
    conn_connect(conn, (const struct sockaddr *)&sa4);
    return;
  }
  if (uv_ip6_addr(conn->ep.host, conn->ep.port, &sa6) == 0) {
    conn_connect(conn, (const struct sockaddr *)&sa6);
    return;
  }
  snprintf(port, sizeof port, "%u", (unsigned)conn->ep.port);
  conn->gai.data = conn;
  conn->refs++;
  rv = uv_getaddrinfo(a->loop, &conn->gai, conn_resolved_cb, conn->ep.host,
                      port, &hints);
  if (rv != 0) {
    conn->refs--;
    snprintf(why, sizeof why, "resolve: %s", uv_strerror(rv));
    conn_fail(conn, why);
  }
}

/* Starts an attempt to the round's next candidate. */
static void round_next(struct synod_async *a) {
  struct round *r = &a->round;
  struct conn *conn;
  uint64_t now = engine_now(a);
  assert(r->next < r->n);
  r->next_start_ms =
      now + (r->fresh && a->attempt_delay_ms > FRESH_ATTEMPT_DELAY_MS
                 ? FRESH_ATTEMPT_DELAY_MS
                 : a->attempt_delay_ms);
  conn = calloc(1, sizeof *conn);
  if (conn == NULL) {
    r->next = r->n; /* give the round up; the backoff retries */
    round_continue(a);
    return;
  }
  conn->a = a;
  conn->ep = r->cands[r->next++];
  endpoint_format(&conn->ep, conn->address, sizeof conn->address);
  conn->started_ms = now;
  conn->deadline_ms = now + a->connect_bound_ms;
  conn->next = a->attempts;
  a->attempts = conn;
  conn->refs = 1; /* held while starting: a failure may end it at once */
  conn_begin(conn);
  conn_unref(conn);
}

void conn_round_start(struct synod_async *a) {
  assert(a->conn == NULL && !a->round.active);
  /* A client that never connected and knows no leader (a fresh synodctl)
   * starts its second attempt after FRESH_ATTEMPT_DELAY_MS at most: one
   * stopped replica among the endpoints would otherwise cost a third of
   * them the whole attempt delay, and a live replica answers Hello well
   * within it. Not with endpoints_in_order, which asks for the first
   * endpoint first. */
  a->round.fresh = !a->ever_connected && !a->opts.endpoints_in_order &&
                   a->leader_address[0] == '\0' && a->leader_hint[0] == '\0';
  round_plan(a);
  a->leader_hint[0] = '\0';
  a->round.active = true;
  round_next(a);
  if (a->round.active) {
    attempt_timer_arm(a);
  }
}

/* ------------------------------------------------------ the timer */

/* Wakes up at the earliest attempt bound or the next attempt's start. */
static void attempt_timer_arm(struct synod_async *a) {
  struct round *r = &a->round;
  uint64_t now = engine_now(a), at = UINT64_MAX;
  if (!r->active) {
    uv_timer_stop(&a->attempt_timer);
    return;
  }
  for (struct conn *c = a->attempts; c != NULL; c = c->next) {
    at = c->deadline_ms < at ? c->deadline_ms : at;
  }
  if (r->next < r->n && r->next_start_ms < at) {
    at = r->next_start_ms;
  }
  if (at == UINT64_MAX) {
    uv_timer_stop(&a->attempt_timer);
    return;
  }
  uv_timer_start(&a->attempt_timer, attempt_timer_cb, at > now ? at - now : 0,
                 0);
}

void attempt_timer_cb(uv_timer_t *t) {
  struct synod_async *a = t->data;
  uint64_t now = engine_now(a);
  char why[128];
  bool again = true;
  /* Rescan after each failure: it changes the list. */
  while (again && a->round.active) {
    again = false;
    for (struct conn *c = a->attempts; c != NULL; c = c->next) {
      if (c->deadline_ms <= now) {
        snprintf(why, sizeof why, "no answer in %u ms (%s)",
                 a->connect_bound_ms,
                 c->connected ? "connected; Hello unanswered"
                              : "TCP connect unanswered");
        attempt_failed(c, why, true);
        again = true;
        break;
      }
    }
  }
  if (a->round.active && a->conn == NULL && a->round.next < a->round.n &&
      a->round.next_start_ms <= now) {
    round_next(a);
  }
  attempt_timer_arm(a);
}

/* ------------------------------------------------------ the watch */

static void conn_probe(struct conn *conn, uint64_t now) {
  conn->probe_sent_ms = now;
  conn_send_hello(conn, &conn->probe_id);
}

/* Since when we have waited for a frame on the live connection with a
 * request (or a probe) outstanding; 0 if nothing is outstanding. */
static uint64_t conn_waiting_since(struct synod_async *a, struct conn *conn) {
  uint64_t since = conn->probe_sent_ms;
  for (struct op *op = a->ops.next; op != &a->ops; op = op->next) {
    if (op->sent) {
      uint64_t s =
          op->sent_ms > conn->last_rx_ms ? op->sent_ms : conn->last_rx_ms;
      since = since == 0 || s < since ? s : since;
    }
  }
  return since;
}

void conn_watch(struct synod_async *a, uint64_t now) {
  struct conn *conn = a->conn;
  uint64_t since;
  char why[160];
  if (conn == NULL || conn->dead) {
    return;
  }
  since = conn_waiting_since(a, conn);
  if (since == 0) {
    /* Idle: a session, an observer or a subscription needs it alive
     * (a subscriber on a dead replica would wait forever for events);
     * a probe now and then tells. */
    if (now - conn->last_rx_ms >= (uint64_t)a->stall_ms * IDLE_PROBE_STALLS &&
        (a->session_id != 0 || a->observers != NULL || a->subs != NULL)) {
      conn_probe(conn, now);
    }
    return;
  }
  if (now - since >= a->stall_ms) {
    snprintf(why, sizeof why,
             "nothing received for %" PRIu64 " ms while a request waited "
             "(bound %u ms): trying another replica",
             now - since, a->stall_ms);
    conn_silent_mark(a, conn->address);
    engine_reconnect(a, why, 0);
    return;
  }
  if (now - since >= a->stall_ms / 2 && conn->probe_sent_ms == 0) {
    conn_probe(conn, now);
  }
}
