/* Cluster time: the deadlines of sessions, queued acquires and
 * lock-delays, kept in one tree and processed in (due, kind, id) order. */
#include "fsm_int.h"

/* The id that breaks ties between timers of one kind due at one time. */
static int timer_owner_cmp(const struct fsm_timer *a,
                           const struct fsm_timer *b) {
  switch (a->kind) {
  case FSM_TIMER_SESSION: {
    uint64_t x = FSM_CONTAINER(a, struct fsm_session, expiry)->id;
    uint64_t y = FSM_CONTAINER(b, struct fsm_session, expiry)->id;
    return x < y ? -1 : x > y;
  }
  case FSM_TIMER_WAITER: {
    const struct fsm_waiter *x = FSM_CONTAINER(a, struct fsm_waiter, timeout);
    const struct fsm_waiter *y = FSM_CONTAINER(b, struct fsm_waiter, timeout);
    if (x->session->id != y->session->id) {
      return x->session->id < y->session->id ? -1 : 1;
    }
    return x->sequence < y->sequence ? -1 : x->sequence > y->sequence;
  }
  default: {
    const struct fsm_lock *x = FSM_CONTAINER(a, struct fsm_lock, delay);
    const struct fsm_lock *y = FSM_CONTAINER(b, struct fsm_lock, delay);
    struct fsm_name k = {x->name, x->name_len};
    return fsm_name_cmp(&k, y->name, y->name_len);
  }
  }
}

int fsm_timer_cmp(const void *key, const struct otree_node *n) {
  const struct fsm_timer *a = key;
  const struct fsm_timer *b = FSM_CONTAINER(n, struct fsm_timer, node);
  if (a->due_ms != b->due_ms) {
    return a->due_ms < b->due_ms ? -1 : 1;
  }
  if (a->kind != b->kind) {
    return a->kind < b->kind ? -1 : 1;
  }
  return timer_owner_cmp(a, b);
}

int fsm_timer_arm(struct fsm *f, struct fsm_timer *t, uint8_t kind,
                  uint64_t due_ms) {
  fsm_timer_disarm(f, t);
  t->kind = kind;
  t->due_ms = due_ms;
  if (otree_insert(&f->timers, &t->node, t) != NULL) {
    return -1;
  }
  t->armed = 1;
  return 0;
}

void fsm_timer_disarm(struct fsm *f, struct fsm_timer *t) {
  if (t->armed) {
    otree_remove(&f->timers, &t->node);
    t->armed = 0;
  }
}

/* Fires one timer. Each handler disarms it or frees its owner. */
static void timer_fire(struct fsm *f, struct fsm_timer *t) {
  fsm_timer_disarm(f, t);
  switch (t->kind) {
  case FSM_TIMER_SESSION: {
    struct fsm_session *s = FSM_CONTAINER(t, struct fsm_session, expiry);
    fsm_session_end(f, s, 1, t->due_ms);
    break;
  }
  case FSM_TIMER_WAITER:
    fsm_waiter_drop(f, FSM_CONTAINER(t, struct fsm_waiter, timeout),
                    SYNOD_ETIMEDOUT);
    break;
  case FSM_TIMER_DELAY:
    fsm_lock_delay_end(f, FSM_CONTAINER(t, struct fsm_lock, delay));
    break;
  }
}

/* Firing a timer may arm others (a lock-delay after an expiry), possibly
 * already due; taking the first timer afresh each round handles that in
 * order. */
void fsm_timers_run(struct fsm *f) {
  for (;;) {
    struct otree_node *n = otree_first(&f->timers);
    if (n == NULL) {
      return;
    }
    struct fsm_timer *t = FSM_CONTAINER(n, struct fsm_timer, node);
    if (t->due_ms > f->time_ms) {
      return;
    }
    timer_fire(f, t);
  }
}

uint64_t fsm_next_deadline(const struct fsm *f) {
  struct otree_node *n = otree_first(&f->timers);
  if (fsm_keys_busy(f)) {
    return f->time_ms; /* timers run before apply returns: none is due */
  }
  return n ? FSM_CONTAINER(n, struct fsm_timer, node)->due_ms : UINT64_MAX;
}
