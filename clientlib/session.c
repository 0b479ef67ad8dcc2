/* The session: open on demand, keepalive every TTL/3, the client's own
 * deadline (fail closed), held locks and their jeopardy/lost reports, and
 * election observers. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

/* ---------------------------------------------------------- held locks */

static struct held_lock **held_find(struct held_lock **list, const char *name,
                                    uint64_t owner_id) {
  for (; *list != NULL; list = &(*list)->next) {
    if ((*list)->owner_id == owner_id && strcmp((*list)->name, name) == 0) {
      return list;
    }
  }
  return list;
}

static void held_free(struct held_lock *h) {
  free(h->name);
  free(h);
}

static void held_add(struct synod_async *a, const struct op *op,
                     uint64_t token) {
  struct held_lock **p = held_find(&a->held, op->name, op->owner_id);
  struct held_lock *h = *p;
  if (h == NULL) {
    h = calloc(1, sizeof *h);
    if (h == NULL || (h->name = strdup(op->name)) == NULL) {
      free(h);
      return; /* not tracked: no jeopardy report for it */
    }
    h->owner_id = op->owner_id;
    *p = h;
  }
  h->token = token;
  h->session_id = op->session_id;
}

static void held_remove(struct held_lock **list, const char *name,
                        uint64_t owner_id) {
  struct held_lock **p = held_find(list, name, owner_id);
  struct held_lock *h = *p;
  if (h != NULL) {
    *p = h->next;
    held_free(h);
  }
}

bool session_lock_was_lost(struct synod_async *a, const char *name,
                           uint64_t owner_id) {
  struct held_lock **p;
  if (*held_find(&a->held, name, owner_id) != NULL) {
    return false;
  }
  p = held_find(&a->lost, name, owner_id);
  if (*p == NULL) {
    return false;
  }
  held_remove(&a->lost, name, owner_id);
  a->lost_count--;
  return true;
}

/* Moves every held lock to the lost list (newest first, bounded),
 * reporting each as lost. */
static void held_all_lost(struct synod_async *a) {
  struct held_lock *h;
  while ((h = a->held) != NULL) {
    a->held = h->next;
    if (a->opts.lock_cb != NULL) {
      a->opts.lock_cb(a->opts.cb_arg, SYNOD_LOCK_LOST, h->name, h->owner_id,
                      h->token);
    }
    h->next = a->lost;
    a->lost = h;
    a->lost_count++;
  }
  while (a->lost_count > LOST_LOCKS_MAX) {
    struct held_lock **p = &a->lost;
    while ((*p)->next != NULL) {
      p = &(*p)->next;
    }
    held_free(*p);
    *p = NULL;
    a->lost_count--;
  }
}

static void held_report(struct synod_async *a, enum synod_lock_event ev) {
  if (a->opts.lock_cb == NULL) {
    return;
  }
  for (struct held_lock *h = a->held; h != NULL; h = h->next) {
    a->opts.lock_cb(a->opts.cb_arg, ev, h->name, h->owner_id, h->token);
  }
}

void session_free_tables(struct synod_async *a) {
  struct held_lock *h;
  while ((h = a->held) != NULL) {
    a->held = h->next;
    held_free(h);
  }
  while ((h = a->lost) != NULL) {
    a->lost = h->next;
    held_free(h);
  }
  a->lost_count = 0;
}

/* ------------------------------------------------------------- session */

static void session_notify(struct synod_async *a,
                           enum synod_session_state state, uint64_t id) {
  if (a->opts.session_cb != NULL) {
    a->opts.session_cb(a->opts.cb_arg, state, id);
  }
}

/* Completes every OP_SESSION_WAIT (rescanning: callbacks may change the
 * list). */
static void session_waits_complete(struct synod_async *a, int status,
                                   const char *errmsg) {
  struct op *op = a->ops.next;
  while (op != &a->ops) {
    if (op->kind == OP_SESSION_WAIT) {
      engine_complete(a, op, status, NULL, errmsg);
      op = a->ops.next;
    } else {
      op = op->next;
    }
  }
}

/* Fails the ops that wait for a session which cannot be had (the server
 * refused it for good, e.g. a TTL it does not accept). */
static void session_refused(struct synod_async *a, int status,
                            const char *errmsg) {
  struct op *op = a->ops.next;
  while (op != &a->ops) {
    if (op_kind_needs_session(op->kind) && op->sequence == 0) {
      engine_complete(a, op, status, NULL, errmsg);
      op = a->ops.next;
    } else {
      op = op->next;
    }
  }
}

static void session_opened(struct synod_async *a, const struct op *op,
                           const Synod__SessionOpenReply *r) {
  atomic_store(&a->session_id, r->session_id);
  if (r->ttl_ms != 0) {
    a->ttl_ms = r->ttl_ms;
  }
  a->base_ms = op->sent_ms;
  a->keepalive_sent_ms = op->sent_ms;
  a->last_sequence = 0;
  a->inflight_sequenced = 0;
  a->session_state = SYNOD_SESSION_OPEN;
  uv_timer_start(&a->keepalive_timer, session_keepalive_tick,
                 session_keepalive_interval_ms(a->ttl_ms),
                 session_keepalive_interval_ms(a->ttl_ms));
  session_notify(a, SYNOD_SESSION_OPEN, r->session_id);
  session_check(a);
}

static void session_open_done(struct op *op, int status,
                              const Synod__Response *resp, const char *errmsg) {
  struct synod_async *a = op->arg;
  a->session_opening = false;
  if (a->closing) {
    return;
  }
  if (status == 0 && resp->body_case == SYNOD__RESPONSE__BODY_SESSION_OPEN &&
      resp->session_open->session_id != 0) {
    session_opened(a, op, resp->session_open);
    session_waits_complete(a, 0, "");
    engine_flush(a);
    return;
  }
  if (status == 0) {
    status = SYNOD_EMALFORMED;
    errmsg = "the answer to SessionOpen carries no session";
  }
  if (status != SYNOD_ETIMEDOUT && status != SYNOD_ECONNECT &&
      status != SYNOD_ESHUTDOWN) {
    char why[SYNOD_ERRMSG_BYTES];
    snprintf(why, sizeof why, "session open: %s", errmsg);
    session_refused(a, status, why);
  }
}

void session_open_if_needed(struct synod_async *a) {
  struct op_args args = {0};
  struct op *op;
  bool need = false;
  if (a->session_id != 0 || a->session_opening || a->closing) {
    return;
  }
  for (op = a->ops.next; op != &a->ops && !need; op = op->next) {
    need = op_kind_needs_session(op->kind) && !op->zombie;
  }
  if (!need || op_build(OP_SESSION_OPEN, &args, &op, NULL) != 0) {
    return;
  }
  op->body.session_open.ttl_ms = a->opts.session_ttl_ms;
  op->body.session_open.client_name = a->client_name;
  op->done = session_open_done;
  op->arg = a;
  a->session_opening = true;
  engine_enqueue(a, op, 0);
}

static void keepalive_done(struct op *op, int status,
                           const Synod__Response *resp, const char *errmsg) {
  struct synod_async *a = op->arg;
  (void)errmsg;
  if (a->keepalive == op) {
    a->keepalive = NULL;
  }
  if (status == SYNOD_ESHUTDOWN || a->closing) {
    return;
  }
  /* A deadline passed stays passed: an answer that came (or was read, by
   * a loop held up) after it renews nothing, since the application may
   * have been told meanwhile, by synod_async_session_valid_ms(), that its
   * locks are gone. The server kept the session; it expires unrenewed. */
  session_check(a);
  if (status != 0 || a->session_id == 0 ||
      resp->body_case != SYNOD__RESPONSE__BODY_SESSION_KEEPALIVE) {
    return; /* the session clock decides */
  }
  if (op->sent_ms > a->base_ms) {
    a->base_ms = op->sent_ms;
  }
  if (resp->session_keepalive->ttl_ms != 0) {
    a->ttl_ms = resp->session_keepalive->ttl_ms;
  }
  session_check(a);
}

static void keepalive_send(struct synod_async *a) {
  struct op_args args = {0};
  struct op *op;
  if (a->keepalive != NULL ||
      op_build(OP_SESSION_KEEPALIVE, &args, &op, NULL) != 0) {
    return;
  }
  op->done = keepalive_done;
  op->arg = a;
  a->keepalive = op;
  engine_enqueue(a, op, a->ttl_ms);
  engine_flush(a);
}

void session_keepalive_tick(uv_timer_t *t) {
  struct synod_async *a = t->data;
  uint32_t interval = session_keepalive_interval_ms(a->ttl_ms);
  char why[96];
  if (a->session_id == 0) {
    return;
  }
  if (a->keepalive != NULL) {
    /* Unanswered for a whole interval on a live connection: the server
     * is stopped or cut off. Try another replica. */
    if (a->keepalive->sent &&
        engine_now(a) - a->keepalive->sent_ms >= interval) {
      snprintf(why, sizeof why, "keepalive unanswered for %u ms", interval);
      engine_reconnect(a, why, 0);
    }
    return;
  }
  keepalive_send(a);
}

void session_on_ready(struct synod_async *a) {
  uint32_t interval = session_keepalive_interval_ms(a->ttl_ms);
  if (a->session_id == 0) {
    return;
  }
  /* After a reconnect, renew at once if a renewal was due or failing. */
  if (engine_now(a) - a->keepalive_sent_ms >= interval / 2) {
    keepalive_send(a);
  }
}

void session_timer_cb(uv_timer_t *t) {
  session_check(t->data);
}

void session_check(struct synod_async *a) {
  enum synod_session_state st, old = a->session_state;
  uint64_t now, next;
  char why[128];
  if (a->session_id == 0) {
    return;
  }
  uv_update_time(a->loop);
  now = engine_now(a);
  st = session_state_at(a->base_ms, a->ttl_ms, now);
  if (st == SYNOD_SESSION_LOST) {
    snprintf(why, sizeof why,
             "no keepalive acknowledged for %" PRIu64 " ms (TTL %u ms)",
             now - a->base_ms, a->ttl_ms);
    session_lost(a, why);
    return;
  }
  /* Published before the callbacks, which may ask for it. */
  atomic_store(&a->deadline_ms, session_deadline_ms(a->base_ms, a->ttl_ms));
  if (st != old) {
    a->session_state = st;
    held_report(a, st == SYNOD_SESSION_JEOPARDY ? SYNOD_LOCK_JEOPARDY
                                                : SYNOD_LOCK_SAFE);
    session_notify(a, st, a->session_id);
    if (a->session_id == 0 || a->closing) {
      return; /* a callback closed the session or the client */
    }
  }
  next = session_next_check_ms(a->base_ms, a->ttl_ms, now);
  uv_timer_start(&a->session_timer, session_timer_cb, next - now, 0);
}

/* The loop's clock (uv_now) is the monotonic clock in milliseconds, read
 * at most as late as this one: a deadline it computed is not later than
 * one computed from this read. */
uint64_t synod_async_session_valid_ms(const struct synod_async *a) {
  uint64_t deadline = atomic_load(&a->deadline_ms);
  uint64_t now = uv_hrtime() / 1000000u;
  return deadline > now ? deadline - now : 0;
}

/* Ops that belong to the lost session cannot be retried in a new one
 * without risking a second application. */
static void session_fail_ops(struct synod_async *a, uint64_t old,
                             const char *why) {
  char msg[SYNOD_ERRMSG_BYTES];
  struct op *op = a->ops.next;
  snprintf(msg, sizeof msg,
           "session %" PRIu64 " lost (%s); the outcome is unknown", old, why);
  while (op != &a->ops) {
    bool in_old = op->sequence != 0 && op->session_id == old;
    if (in_old || op->kind == OP_SESSION_KEEPALIVE) {
      engine_complete(a, op, SYNOD_ESESSION, NULL, msg);
      op = a->ops.next;
    } else {
      op = op->next;
    }
  }
}

void session_lost(struct synod_async *a, const char *why) {
  uint64_t old = a->session_id;
  if (old == 0) {
    return;
  }
  uv_timer_stop(&a->keepalive_timer);
  uv_timer_stop(&a->session_timer);
  atomic_store(&a->deadline_ms, 0);
  atomic_store(&a->session_id, 0);
  a->session_state = SYNOD_SESSION_LOST;
  /* Locks first: the application must stop using them before anything
   * else happens. */
  held_all_lost(a);
  session_notify(a, SYNOD_SESSION_LOST, old);
  session_fail_ops(a, old, why);
  groups_on_session_lost(a, old, why);
  a->keepalive = NULL;
  a->last_sequence = 0;
  a->inflight_sequenced = 0;
  engine_flush(a); /* opens a new session for requests that wait */
}

void session_on_closed(struct synod_async *a) {
  uint64_t old = a->session_id;
  uv_timer_stop(&a->keepalive_timer);
  uv_timer_stop(&a->session_timer);
  atomic_store(&a->deadline_ms, 0);
  atomic_store(&a->session_id, 0);
  a->session_state = SYNOD_SESSION_NONE;
  if (old != 0) {
    session_notify(a, SYNOD_SESSION_NONE, old);
  }
}

/* A grant that arrived after its caller gave up: give it back. */
static void zombie_release(struct synod_async *a, const struct op *zombie) {
  struct op_args args = {.name = zombie->name, .owner_id = zombie->owner_id};
  struct op *op;
  if (op_build(OP_LOCK_RELEASE, &args, &op, NULL) == 0) {
    engine_enqueue(a, op, 0);
  }
}

static void observer_record(struct synod_async *a, const char *name,
                            const Synod__ElectionInfo *pb);
static void observe_refresh_done(struct op *op, int status,
                                 const Synod__Response *resp,
                                 const char *errmsg);

void session_on_result(struct synod_async *a, struct op *op, int status,
                       const Synod__Response *resp) {
  switch (op->kind) {
  case OP_LOCK_ACQUIRE:
    if (status == 0 && op->zombie) {
      zombie_release(a, op);
    } else if (status == 0 && op->session_id == a->session_id) {
      held_remove(&a->lost, op->name, op->owner_id);
      held_add(a, op, resp->lock_acquire->token);
    }
    break;
  case OP_LOCK_RELEASE:
    if ((status == 0 && resp->lock_release->hold_count == 0) ||
        status == SYNOD_ENOTHOLDER) {
      held_remove(&a->held, op->name, op->owner_id);
    }
    break;
  case OP_SESSION_CLOSE:
    if (status == 0) {
      session_free_tables(a);
      session_on_closed(a);
    }
    break;
  case OP_ELECTION_OBSERVE:
    /* A refresh reports through observers_report, which compares. */
    if (status == 0 && op->done != observe_refresh_done) {
      observer_record(a, op->name, resp->election_leader);
    }
    break;
  default:
    break;
  }
}

/* ----------------------------------------------------------- observers */

static struct observer **observer_find(struct synod_async *a,
                                       const char *name) {
  struct observer **p = &a->observers;
  while (*p != NULL && strcmp((*p)->name, name) != 0) {
    p = &(*p)->next;
  }
  return p;
}

int observer_add(struct synod_async *a, const char *name, synod_election_cb cb,
                 void *arg) {
  struct observer **p = observer_find(a, name);
  struct observer *o;
  if (*p != NULL) {
    errmsg_printf(a->errmsg, "election '%s' is already observed", name);
    return SYNOD_EEXIST;
  }
  o = calloc(1, sizeof *o);
  if (o == NULL || (o->name = strdup(name)) == NULL) {
    free(o);
    return SYNOD_ENOMEM;
  }
  o->cb = cb;
  o->arg = arg;
  *p = o;
  return 0;
}

bool observer_active(struct synod_async *a, const char *name) {
  return *observer_find(a, name) != NULL;
}

int observer_remove(struct synod_async *a, const char *name) {
  struct observer **p = observer_find(a, name);
  struct observer *o = *p;
  if (o == NULL) {
    errmsg_printf(a->errmsg, "election '%s' is not observed", name);
    return SYNOD_ENOTFOUND;
  }
  *p = o->next;
  free(o->name);
  free(o);
  return 0;
}

/* Remembers what the observer last saw; returns true if pb differs. */
static bool observer_update(struct observer *o, const Synod__ElectionInfo *pb) {
  bool same = o->have && o->last_has_leader == pb->has_leader &&
              o->last_revision == pb->revision &&
              o->last_session_id == pb->session_id;
  o->have = true;
  o->last_has_leader = pb->has_leader;
  o->last_revision = pb->revision;
  o->last_session_id = pb->session_id;
  return !same;
}

static void observer_record(struct synod_async *a, const char *name,
                            const Synod__ElectionInfo *pb) {
  struct observer *o = *observer_find(a, name);
  if (o != NULL && pb != NULL) {
    observer_update(o, pb);
  }
}

static void observer_report(struct synod_async *a, const char *name,
                            const Synod__ElectionInfo *pb) {
  struct synod_election_info info;
  struct observer *o;
  if (pb == NULL || (o = *observer_find(a, name)) == NULL) {
    return;
  }
  if (!observer_update(o, pb) || o->cb == NULL) {
    return;
  }
  if (election_info_from_pb(pb, &info) != 0) {
    return;
  }
  o->cb(o->arg, 0, &info); /* may remove o */
  synod_election_info_free(&info);
}

void observers_report(struct synod_async *a, const Synod__ElectionInfo *pb) {
  if (pb != NULL) {
    observer_report(a, pb->name, pb);
  }
}

static void observe_refresh_done(struct op *op, int status,
                                 const Synod__Response *resp,
                                 const char *errmsg) {
  struct synod_async *a = op->arg;
  (void)errmsg;
  if (status == 0) {
    observer_report(a, op->name, resp->election_leader); /* if changed */
  }
}

void observers_on_ready(struct synod_async *a) {
  struct op_args args = {0};
  struct op *op;
  for (struct observer *o = a->observers; o != NULL; o = o->next) {
    args.name = o->name;
    if (!o->have || op_build(OP_ELECTION_OBSERVE, &args, &op, NULL) != 0) {
      continue; /* the first observe is still queued */
    }
    op->done = observe_refresh_done;
    op->arg = a;
    engine_enqueue(a, op, 0);
  }
}

void observers_shutdown(struct synod_async *a) {
  struct observer *o;
  while ((o = a->observers) != NULL) {
    a->observers = o->next;
    if (o->cb != NULL) {
      o->cb(o->arg, SYNOD_ESHUTDOWN, NULL);
    }
    free(o->name);
    free(o);
  }
}
