/* Sessions: open, keepalive, close, expiry, and each session's
 * exactly-once window of recorded results. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "fsm_int.h"
#include "utf8.h"

int fsm_session_cmp(const void *key, const struct otree_node *n) {
  uint64_t a = *(const uint64_t *)key;
  uint64_t b = FSM_CONTAINER(n, struct fsm_session, by_id)->id;
  return a < b ? -1 : a > b;
}

struct fsm_session *fsm_session_find(const struct fsm *f, uint64_t id) {
  struct otree_node *n = otree_find(&f->sessions, &id);
  return n ? FSM_CONTAINER(n, struct fsm_session, by_id) : NULL;
}

/* Arms the expiry: a session lives while time <= keepalive + ttl, so it
 * expires at the first millisecond past that. */
static void session_arm(struct fsm *f, struct fsm_session *s) {
  int rv = fsm_timer_arm(f, &s->expiry, FSM_TIMER_SESSION,
                         s->keepalive_ms + s->ttl_ms + 1);
  assert(rv == 0); /* session ids are unique */
  (void)rv;
}

struct fsm_session *fsm_session_insert(struct fsm *f, uint64_t id,
                                       uint32_t ttl_ms, uint64_t keepalive_ms,
                                       const char *name, size_t name_len) {
  struct fsm_session *s = fsm_xcalloc(1, sizeof *s);
  s->id = id;
  s->ttl_ms = ttl_ms;
  s->keepalive_ms = keepalive_ms;
  s->client_name = fsm_xstrndup(name, name_len);
  fsm_list_init(&s->locks);
  fsm_list_init(&s->waiters);
  fsm_list_init(&s->candidacies);
  fsm_list_init(&s->groups);
  if (otree_insert(&f->sessions, &s->by_id, &s->id) != NULL) {
    fsm_session_free(s);
    return NULL;
  }
  session_arm(f, s);
  return s;
}

void fsm_session_free(struct fsm_session *s) {
  if (s == NULL) {
    return;
  }
  for (uint32_t i = 0; i < s->results_len; i++) {
    free(s->results[i].data);
  }
  free(s->results);
  free(s->client_name);
  fsm_key_lease_free(s->lease); /* its keys go with the store */
  free(s);
}

void fsm_session_keepalive(struct fsm *f, struct fsm_session *s) {
  s->keepalive_ms = f->time_ms;
  session_arm(f, s);
}

/* ------------------------------------------------------------ results */

struct fsm_result *fsm_session_result(struct fsm_session *s, uint64_t seq) {
  uint32_t lo = 0, hi = s->results_len;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (s->results[mid].sequence == seq) {
      return &s->results[mid];
    }
    if (s->results[mid].sequence < seq) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return NULL;
}

/* Keeps results sorted; sequences normally arrive in order, so the insert
 * is an append. Past the window's size the lowest sequence is forgotten
 * and becomes the floor. */
void fsm_session_record(struct fsm *f, struct fsm_session *s, uint64_t seq,
                        uint8_t *data, size_t len, int pending) {
  assert(seq > s->sequence_floor && fsm_session_result(s, seq) == NULL);
  if (s->results_len == s->results_cap) {
    s->results_cap = s->results_cap ? 2 * s->results_cap : 4;
    s->results = fsm_xrealloc(s->results, s->results_cap * sizeof *s->results);
  }
  uint32_t i = s->results_len;
  while (i > 0 && s->results[i - 1].sequence > seq) {
    i--;
  }
  memmove(&s->results[i + 1], &s->results[i],
          (s->results_len - i) * sizeof *s->results);
  s->results[i] = (struct fsm_result){seq, data, len, pending};
  s->results_len++;
  if (s->results_len > f->opt.results_per_session_max) {
    s->sequence_floor = s->results[0].sequence;
    free(s->results[0].data);
    s->results_len--;
    memmove(&s->results[0], &s->results[1],
            s->results_len * sizeof *s->results);
  }
}

/* ------------------------------------------------------------ ending */

static int waiter_order(const void *a, const void *b) {
  const struct fsm_waiter *x = *(struct fsm_waiter *const *)a;
  const struct fsm_waiter *y = *(struct fsm_waiter *const *)b;
  struct fsm_name k = {x->lock->name, x->lock->name_len};
  int c = fsm_name_cmp(&k, y->lock->name, y->lock->name_len);
  if (c != 0) {
    return c;
  }
  return x->sequence < y->sequence ? -1 : x->sequence > y->sequence;
}

static int candidate_order(const void *a, const void *b) {
  const struct fsm_election *x = (*(struct fsm_candidate *const *)a)->election;
  const struct fsm_election *y = (*(struct fsm_candidate *const *)b)->election;
  struct fsm_name k = {x->name, x->name_len};
  return fsm_name_cmp(&k, y->name, y->name_len);
}

static int lock_order(const void *a, const void *b) {
  const struct fsm_lock *x = *(struct fsm_lock *const *)a;
  const struct fsm_lock *y = *(struct fsm_lock *const *)b;
  struct fsm_name k = {x->name, x->name_len};
  return fsm_name_cmp(&k, y->name, y->name_len);
}

/* Copies the objects of an intrusive list into a sorted array: the lists'
 * order depends on history (a restored replica rebuilds them in name
 * order), so everything done for each element goes in name order. */
static void **list_sorted(struct fsm_list *head, size_t link_offset,
                          int (*order)(const void *, const void *), size_t *n) {
  size_t len = 0;
  for (struct fsm_list *l = head->next; l != head; l = l->next) {
    len++;
  }
  void **v = fsm_xcalloc(len, sizeof *v);
  size_t i = 0;
  for (struct fsm_list *l = head->next; l != head; l = l->next) {
    v[i++] = (char *)l - link_offset;
  }
  qsort(v, len, sizeof *v, order);
  *n = len;
  return v;
}

/* Expiry or close: the session's queued acquires are answered with
 * SYNOD_ESESSION first (so none of them is granted one of the session's own
 * locks), then its candidacies are withdrawn, its locks released and its
 * bound keys deleted (one revision), then its group memberships end (one
 * view per group). Only an
 * expiry applies the lock-delay, measured from the expiry deadline: a
 * clean close or release means the holder is done with the resource. */
void fsm_session_end(struct fsm *f, struct fsm_session *s, int expired,
                     uint64_t at_ms) {
  size_t n;
  void **v;
  if (expired) {
    f->stats.sessions_expired++;
    Synod__Event ev = SYNOD__EVENT__INIT;
    Synod__SessionExpired se = SYNOD__SESSION_EXPIRED__INIT;
    se.session_id = s->id;
    ev.body_case = SYNOD__EVENT__BODY_SESSION_EXPIRED;
    ev.session_expired = &se;
    struct fsm_event *e = fsm_event_push(f, FSM_EVENT_SESSION_EXPIRED);
    e->session_id = s->id;
    e->event = fsm_event_pack(f, &ev, &e->event_len);
  }
  v = list_sorted(&s->waiters, offsetof(struct fsm_waiter, session_link),
                  waiter_order, &n);
  for (size_t i = 0; i < n; i++) {
    fsm_waiter_drop(f, v[i], SYNOD_ESESSION);
  }
  free(v);
  v = list_sorted(&s->candidacies, offsetof(struct fsm_candidate, session_link),
                  candidate_order, &n);
  for (size_t i = 0; i < n; i++) {
    fsm_candidate_withdraw(f, v[i]);
  }
  free(v);
  v = list_sorted(&s->locks, offsetof(struct fsm_lock, holder_link), lock_order,
                  &n);
  for (size_t i = 0; i < n; i++) {
    fsm_lock_unhold(f, v[i], expired ? at_ms : UINT64_MAX);
  }
  free(v);
  fsm_keys_session_end(f, s);
  fsm_groups_session_end(f, s);
  fsm_timer_disarm(f, &s->expiry);
  otree_remove(&f->sessions, &s->by_id);
  fsm_session_free(s);
}

/* ------------------------------------------------------------ requests */

int fsm_session_ttl_check(const struct fsm *f, uint32_t ttl_ms, char *errmsg) {
  if (ttl_ms != 0 &&
      (ttl_ms < f->opt.ttl_min_ms || ttl_ms > f->opt.ttl_max_ms)) {
    errmsg_set(errmsg, "session open: ttl_ms %u outside %u..%u", ttl_ms,
               f->opt.ttl_min_ms, f->opt.ttl_max_ms);
    return SYNOD_ERANGE;
  }
  return 0;
}

int fsm_session_open(struct fsm *f, struct fsm_session *s,
                     const Synod__Request *req, struct fsm_reply *r) {
  const Synod__SessionOpen *o = req->session_open;
  const char *name = fsm_str(o->client_name);
  size_t name_len = strlen(name);
  uint32_t ttl = o->ttl_ms ? o->ttl_ms : f->opt.ttl_default_ms;
  int rv = fsm_session_ttl_check(f, o->ttl_ms, r->msg);
  (void)s;
  if (rv != 0) {
    return rv;
  }
  if (name_len > f->opt.name_bytes_max || !utf8_valid(name, name_len, NULL)) {
    errmsg_set(r->msg,
               "session open: client_name (%zu bytes) is longer than %u "
               "or not UTF-8",
               name_len, f->opt.name_bytes_max);
    return SYNOD_EINVAL;
  }
  if (f->sessions.count >= f->opt.sessions_max) {
    errmsg_set(r->msg, "session open: sessions_max %u reached",
               f->opt.sessions_max);
    return SYNOD_ELIMIT;
  }
  struct fsm_session *ns =
      fsm_session_insert(f, f->index, ttl, f->time_ms, name, name_len);
  assert(ns != NULL); /* ids are log indexes, which never repeat */
  f->stats.sessions_opened++;
  synod__session_open_reply__init(&r->u.open);
  r->u.open.session_id = ns->id;
  r->u.open.ttl_ms = ttl;
  r->resp.body_case = SYNOD__RESPONSE__BODY_SESSION_OPEN;
  r->resp.session_open = &r->u.open;
  return 0;
}

int fsm_session_keepalive_req(struct fsm *f, struct fsm_session *s,
                              const Synod__Request *req, struct fsm_reply *r) {
  (void)req;
  fsm_session_keepalive(f, s);
  synod__session_keepalive_reply__init(&r->u.keepalive);
  r->u.keepalive.ttl_ms = s->ttl_ms;
  r->resp.body_case = SYNOD__RESPONSE__BODY_SESSION_KEEPALIVE;
  r->resp.session_keepalive = &r->u.keepalive;
  return 0;
}

int fsm_session_close(struct fsm *f, struct fsm_session *s,
                      const Synod__Request *req, struct fsm_reply *r) {
  (void)req;
  (void)r;
  fsm_session_end(f, s, 0, f->time_ms);
  return 0;
}

/* Keepalives for sessions that are unknown or already expired (their
 * deadline passed before this tick's stamp) are ignored: a late keepalive
 * never revives a session. */
void fsm_session_tick(struct fsm *f, const Synod__Fsm__Tick *tick) {
  for (size_t i = 0; i < tick->n_session_ids; i++) {
    struct fsm_session *s = fsm_session_find(f, tick->session_ids[i]);
    if (s) {
      fsm_session_keepalive(f, s);
    }
  }
}
