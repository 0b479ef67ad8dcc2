/* Locks (CENTRAL_LOCK-style): reentrant owners, FIFO waiters, fencing
 * tokens, lock-delay after a holder's session expires. */
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "fsm_int.h"

int fsm_lock_cmp(const void *key, const struct otree_node *n) {
  const struct fsm_lock *l = FSM_CONTAINER(n, struct fsm_lock, by_name);
  return fsm_name_cmp(key, l->name, l->name_len);
}

static struct fsm_lock *lock_find(const struct fsm *f, const char *name,
                                  size_t len) {
  struct fsm_name k = {name, len};
  struct otree_node *n = otree_find(&f->locks, &k);
  return n ? FSM_CONTAINER(n, struct fsm_lock, by_name) : NULL;
}

struct fsm_lock *fsm_lock_new(const char *name, size_t len) {
  struct fsm_lock *l = fsm_xcalloc(1, sizeof *l);
  l->name = fsm_xstrndup(name, len);
  l->name_len = len;
  fsm_list_init(&l->holder_link);
  fsm_list_init(&l->waiters);
  return l;
}

/* Frees l and its waiters without answering anyone: for teardown. */
void fsm_lock_free(struct fsm_lock *l) {
  if (l == NULL) {
    return;
  }
  while (!fsm_list_empty(&l->waiters)) {
    struct fsm_list *n = l->waiters.next;
    fsm_list_remove(n);
    free(FSM_CONTAINER(n, struct fsm_waiter, lock_link));
  }
  free(l->name);
  free(l);
}

/* Tokens strictly grow across all locks: the index of the granting entry,
 * or one more than the last token when one entry grants twice (an expiry
 * and a release in the same entry). They survive the lock's deletion. */
void fsm_lock_grant(struct fsm *f, struct fsm_lock *l, struct fsm_session *s,
                    uint64_t owner_id, uint32_t lock_delay_ms) {
  assert(l->holder == NULL && !l->delay.armed);
  f->token_last = f->index > f->token_last ? f->index : f->token_last + 1;
  l->holder = s;
  l->owner_id = owner_id;
  l->hold_count = 1;
  l->lock_delay_ms = lock_delay_ms;
  l->token = f->token_last;
  fsm_list_push_back(&s->locks, &l->holder_link);
  f->stats.locks_held++;
  f->stats.lock_grants++;
}

void fsm_lock_delete_if_idle(struct fsm *f, struct fsm_lock *l) {
  if (l->holder == NULL && !l->delay.armed && l->waiters_len == 0) {
    otree_remove(&f->locks, &l->by_name);
    fsm_lock_free(l);
  }
}

static void waiter_unlink(struct fsm *f, struct fsm_waiter *w) {
  fsm_list_remove(&w->lock_link);
  fsm_list_remove(&w->session_link);
  fsm_timer_disarm(f, &w->timeout);
  w->lock->waiters_len--;
  f->stats.lock_waiters--;
}

/* Answers a queued acquire: an event carrying its Response, which is also
 * recorded for a retry if the window still holds the pending sequence. */
static struct fsm_event *waiter_answer(struct fsm *f, struct fsm_waiter *w,
                                       enum fsm_event_type type,
                                       const Synod__Response *resp) {
  size_t len;
  uint8_t *data = fsm_response_pack(resp, &len);
  struct fsm_event *e = fsm_event_push(f, type);
  e->session_id = w->session->id;
  e->sequence = w->sequence;
  e->name = fsm_output_strdup(f, w->lock->name, w->lock->name_len);
  uint8_t *copy = fsm_output_alloc(f, len);
  memcpy(copy, data, len);
  e->response = copy;
  e->response_len = len;
  struct fsm_result *res = fsm_session_result(w->session, w->sequence);
  if (res && res->pending) {
    res->data = data;
    res->len = len;
    res->pending = 0;
  } else {
    free(data);
  }
  return e;
}

bool fsm_lock_waiting(const struct fsm_session *s, uint64_t sequence) {
  for (const struct fsm_list *x = s->waiters.next; x != &s->waiters;
       x = x->next) {
    if (FSM_CONTAINER(x, struct fsm_waiter, session_link)->sequence ==
        sequence) {
      return true;
    }
  }
  return false;
}

/* Grants l to its first waiter, or deletes l when none is left. */
static void lock_grant_next(struct fsm *f, struct fsm_lock *l) {
  if (l->waiters_len == 0) {
    fsm_lock_delete_if_idle(f, l);
    return;
  }
  struct fsm_waiter *w =
      FSM_CONTAINER(l->waiters.next, struct fsm_waiter, lock_link);
  waiter_unlink(f, w);
  fsm_lock_grant(f, l, w->session, w->owner_id, w->lock_delay_ms);
  if (w->queued_ms != UINT64_MAX) {
    histogram_observe(&f->stats.lock_wait, (f->time_ms - w->queued_ms) * 1000);
  }

  Synod__Response resp = SYNOD__RESPONSE__INIT;
  Synod__LockAcquireReply ar = SYNOD__LOCK_ACQUIRE_REPLY__INIT;
  ar.token = l->token;
  ar.hold_count = 1;
  resp.body_case = SYNOD__RESPONSE__BODY_LOCK_ACQUIRE;
  resp.lock_acquire = &ar;
  struct fsm_event *e = waiter_answer(f, w, FSM_EVENT_LOCK_GRANTED, &resp);

  Synod__Event ev = SYNOD__EVENT__INIT;
  Synod__LockGranted lg = SYNOD__LOCK_GRANTED__INIT;
  lg.name = l->name;
  lg.session_id = w->session->id;
  lg.owner_id = w->owner_id;
  lg.token = l->token;
  ev.body_case = SYNOD__EVENT__BODY_LOCK_GRANTED;
  ev.lock_granted = &lg;
  e->event = fsm_event_pack(f, &ev, &e->event_len);
  free(w);
}

void fsm_lock_unhold(struct fsm *f, struct fsm_lock *l,
                     uint64_t delay_from_ms) {
  uint32_t delay = l->lock_delay_ms;
  int rv;
  assert(l->holder != NULL);
  fsm_list_remove(&l->holder_link);
  f->stats.locks_held--;
  l->holder = NULL;
  l->owner_id = 0;
  l->hold_count = 0;
  l->token = 0;
  l->lock_delay_ms = 0;
  if (delay_from_ms != UINT64_MAX && delay > 0) {
    rv = fsm_timer_arm(f, &l->delay, FSM_TIMER_DELAY, delay_from_ms + delay);
    assert(rv == 0); /* one delay timer per lock name */
    (void)rv;
    return;
  }
  lock_grant_next(f, l);
}

void fsm_lock_delay_end(struct fsm *f, struct fsm_lock *l) {
  fsm_timer_disarm(f, &l->delay);
  lock_grant_next(f, l);
}

void fsm_waiter_drop(struct fsm *f, struct fsm_waiter *w, int code) {
  struct fsm_lock *l = w->lock;
  struct fsm_reply r;
  waiter_unlink(f, w);
  fsm_reply_init(&r);
  if (code == SYNOD_ETIMEDOUT) {
    errmsg_set(r.msg, "lock acquire: \"%.64s\" not granted by %" PRIu64 " ms",
               l->name, w->timeout.due_ms);
  } else {
    errmsg_set(r.msg,
               "lock acquire: \"%.64s\": session %" PRIu64
               " ended while waiting",
               l->name, w->session->id);
  }
  fsm_reply_finish(&r, code);
  waiter_answer(f, w,
                code == SYNOD_ETIMEDOUT ? FSM_EVENT_LOCK_TIMEOUT
                                        : FSM_EVENT_LOCK_CANCELED,
                &r.resp);
  free(w);
  fsm_lock_delete_if_idle(f, l);
}

/* ------------------------------------------------------------ requests */

static void reply_acquired(struct fsm_reply *r, const struct fsm_lock *l) {
  synod__lock_acquire_reply__init(&r->u.acquire);
  r->u.acquire.token = l->token;
  r->u.acquire.hold_count = l->hold_count;
  r->resp.body_case = SYNOD__RESPONSE__BODY_LOCK_ACQUIRE;
  r->resp.lock_acquire = &r->u.acquire;
}

/* The lock is taken (or in lock-delay): try-lock fails, others queue. */
static int lock_enqueue(struct fsm *f, struct fsm_lock *l,
                        struct fsm_session *s, const Synod__Request *req,
                        struct fsm_reply *r) {
  const Synod__LockAcquire *a = req->lock_acquire;
  struct fsm_list *n;
  for (n = l->waiters.next; n != &l->waiters; n = n->next) {
    struct fsm_waiter *w = FSM_CONTAINER(n, struct fsm_waiter, lock_link);
    if (w->session == s && w->owner_id == a->owner_id) {
      errmsg_set(r->msg,
                 "lock acquire: \"%.64s\": owner %" PRIu64
                 " already waits (sequence %" PRIu64 ")",
                 l->name, a->owner_id, w->sequence);
      return SYNOD_EBUSY;
    }
  }
  if (a->timeout_ms == 0) {
    if (l->holder) {
      errmsg_set(r->msg,
                 "lock acquire: \"%.64s\" held by session %" PRIu64
                 " owner %" PRIu64,
                 l->name, l->holder->id, l->owner_id);
    } else {
      errmsg_set(r->msg,
                 "lock acquire: \"%.64s\" in lock-delay until %" PRIu64 " ms",
                 l->name, l->delay.due_ms);
    }
    return SYNOD_ELOCKED;
  }
  if (l->waiters_len >= f->opt.waiters_per_lock_max) {
    errmsg_set(r->msg,
               "lock acquire: \"%.64s\": waiters_per_lock_max %u "
               "reached",
               l->name, f->opt.waiters_per_lock_max);
    return SYNOD_ELIMIT;
  }
  struct fsm_waiter *w = fsm_xcalloc(1, sizeof *w);
  w->lock = l;
  w->session = s;
  w->owner_id = a->owner_id;
  w->sequence = req->sequence;
  w->lock_delay_ms = a->lock_delay_ms;
  w->queued_ms = f->time_ms;
  fsm_list_push_back(&l->waiters, &w->lock_link);
  fsm_list_push_back(&s->waiters, &w->session_link);
  l->waiters_len++;
  f->stats.lock_waiters++;
  int rv = fsm_timer_arm(f, &w->timeout, FSM_TIMER_WAITER,
                         f->time_ms + a->timeout_ms);
  assert(rv == 0); /* (session, sequence) is unique among waiters */
  (void)rv;
  r->pending = 1;
  return 0;
}

int fsm_lock_acquire(struct fsm *f, struct fsm_session *s,
                     const Synod__Request *req, struct fsm_reply *r) {
  const Synod__LockAcquire *a = req->lock_acquire;
  const char *name = fsm_str(a->name);
  size_t len = strlen(name);
  int rv = fsm_name_check(f, "lock acquire", name, len, r->msg);
  if (rv != 0) {
    return rv;
  }
  if (a->lock_delay_ms > f->opt.lock_delay_max_ms) {
    errmsg_set(r->msg, "lock acquire: lock_delay_ms %u exceeds %u",
               a->lock_delay_ms, f->opt.lock_delay_max_ms);
    return SYNOD_ERANGE;
  }
  struct fsm_lock *l = lock_find(f, name, len);
  if (l == NULL) {
    if (f->locks.count >= f->opt.locks_max) {
      errmsg_set(r->msg, "lock acquire: locks_max %u reached",
                 f->opt.locks_max);
      return SYNOD_ELIMIT;
    }
    l = fsm_lock_new(name, len);
    otree_insert(&f->locks, &l->by_name, &(struct fsm_name){name, len});
    fsm_lock_grant(f, l, s, a->owner_id, a->lock_delay_ms);
  } else if (l->holder == s && l->owner_id == a->owner_id) {
    if (l->hold_count == UINT32_MAX) {
      errmsg_set(r->msg, "lock acquire: \"%.64s\" hold count %u at maximum",
                 l->name, l->hold_count);
      return SYNOD_EOVERFLOW;
    }
    l->hold_count++;
  } else {
    return lock_enqueue(f, l, s, req, r);
  }
  reply_acquired(r, l);
  return 0;
}

int fsm_lock_release(struct fsm *f, struct fsm_session *s,
                     const Synod__Request *req, struct fsm_reply *r) {
  const Synod__LockRelease *a = req->lock_release;
  const char *name = fsm_str(a->name);
  size_t len = strlen(name);
  int rv = fsm_name_check(f, "lock release", name, len, r->msg);
  if (rv != 0) {
    return rv;
  }
  struct fsm_lock *l = lock_find(f, name, len);
  if (l == NULL || l->holder == NULL) {
    errmsg_set(r->msg, "lock release: \"%.64s\" is not held", name);
    return SYNOD_ENOTHOLDER;
  }
  if (l->holder != s || l->owner_id != a->owner_id) {
    errmsg_set(r->msg,
               "lock release: \"%.64s\" is held by session %" PRIu64
               " owner %" PRIu64 ", not session %" PRIu64 " owner %" PRIu64,
               name, l->holder->id, l->owner_id, s->id, a->owner_id);
    return SYNOD_ENOTHOLDER;
  }
  uint32_t left = --l->hold_count;
  if (left == 0) {
    fsm_lock_unhold(f, l, UINT64_MAX);
  }
  synod__lock_release_reply__init(&r->u.release);
  r->u.release.hold_count = left;
  r->resp.body_case = SYNOD__RESPONSE__BODY_LOCK_RELEASE;
  r->resp.lock_release = &r->u.release;
  return 0;
}

int fsm_lock_query(struct fsm *f, struct fsm_session *s,
                   const Synod__Request *req, struct fsm_reply *r) {
  const char *name = fsm_str(req->lock_query->name);
  size_t len = strlen(name);
  (void)s;
  int rv = fsm_name_check(f, "lock query", name, len, r->msg);
  if (rv != 0) {
    return rv;
  }
  const struct fsm_lock *l = lock_find(f, name, len);
  synod__lock_info__init(&r->u.lock_info);
  if (l) {
    r->u.lock_info.held = l->holder != NULL;
    r->u.lock_info.session_id = l->holder ? l->holder->id : 0;
    r->u.lock_info.owner_id = l->owner_id;
    r->u.lock_info.token = l->token;
    r->u.lock_info.hold_count = l->hold_count;
    r->u.lock_info.waiters = l->waiters_len;
  }
  r->resp.body_case = SYNOD__RESPONSE__BODY_LOCK_QUERY;
  r->resp.lock_query = &r->u.lock_info;
  return 0;
}

int fsm_lock_check(struct fsm *f, struct fsm_session *s,
                   const Synod__Request *req, struct fsm_reply *r) {
  const char *name = fsm_str(req->lock_check->name);
  size_t len = strlen(name);
  (void)s;
  int rv = fsm_name_check(f, "lock check", name, len, r->msg);
  if (rv != 0) {
    return rv;
  }
  const struct fsm_lock *l = lock_find(f, name, len);
  uint64_t current = l && l->holder ? l->token : 0;
  synod__lock_check_reply__init(&r->u.check);
  r->u.check.current = current != 0 && current == req->lock_check->token;
  r->u.check.current_token = current;
  r->resp.body_case = SYNOD__RESPONSE__BODY_LOCK_CHECK;
  r->resp.lock_check = &r->u.check;
  return 0;
}
