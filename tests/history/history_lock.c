/* Lock and session rules over apply-order events: a small model of
 * sessions (deadlines), holders, FIFO queues and lock-delays that refuses
 * the first event a correct state machine could not have produced. */
#include "history.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hl_session {
  uint64_t id;
  uint32_t ttl_ms;
  uint64_t keepalive_ms;
  bool live;
};

struct hl_waiter {
  uint64_t session;
  uint64_t owner;
  uint64_t sequence;
  uint64_t due_ms;
  uint64_t index; /* where it queued */
};

struct hl_lock {
  bool touched;
  bool held;
  uint64_t session;
  uint64_t owner;
  uint64_t token;
  uint32_t hold;
  uint32_t delay_ms;    /* the holder's lock-delay */
  uint64_t delay_until; /* no holder until then; 0 = no delay */
  uint64_t token_max;   /* highest token ever issued on this lock */
  struct hl_waiter *w;
  size_t wn;
  size_t wcap;
};

struct hl_grant {
  uint64_t token;
  uint32_t lock;
  uint64_t session;
  uint64_t owner;
};

struct history_locks {
  struct hl_session *s; /* ascending id */
  size_t sn, scap;
  struct hl_lock *l; /* by lock number */
  size_t ln;
  struct hl_grant *g; /* ascending token */
  size_t gn, gcap;
  uint64_t token_last;
  uint64_t time_ms;
};

static void *grow(void *p, size_t *cap, size_t need, size_t size) {
  if (need <= *cap) {
    return p;
  }
  size_t c = *cap ? *cap : 16;
  while (c < need) {
    c *= 2;
  }
  p = realloc(p, c * size);
  if (p == NULL) {
    abort();
  }
  memset((char *)p + *cap * size, 0, (c - *cap) * size);
  *cap = c;
  return p;
}

struct history_locks *history_locks_new(void) {
  struct history_locks *h = calloc(1, sizeof *h);
  if (h == NULL) {
    abort();
  }
  return h;
}

void history_locks_free(struct history_locks *h) {
  if (h == NULL) {
    return;
  }
  for (size_t i = 0; i < h->ln; i++) {
    free(h->l[i].w);
  }
  free(h->l);
  free(h->s);
  free(h->g);
  free(h);
}

static bool fail(char *why, size_t len, const struct history_lock_event *ev,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static bool fail(char *why, size_t len, const struct history_lock_event *ev,
                 const char *fmt, ...) {
  int n =
      snprintf(why, len, "entry %" PRIu64 " (time %" PRIu64 " ms): ", ev->index,
               ev->time_ms);
  if (n >= 0 && (size_t)n < len) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why + n, len - (size_t)n, fmt, ap);
    va_end(ap);
  }
  return false;
}

static struct hl_session *session_find(const struct history_locks *h,
                                       uint64_t id) {
  size_t lo = 0, hi = h->sn;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (h->s[mid].id == id) {
      return &h->s[mid];
    }
    if (h->s[mid].id < id) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return NULL;
}

bool history_locks_holder(const struct history_locks *h, uint32_t lock,
                          uint64_t *session, uint64_t *owner) {
  if (lock >= h->ln || !h->l[lock].held) {
    return false;
  }
  *session = h->l[lock].session;
  *owner = h->l[lock].owner;
  return true;
}

int history_locks_session(const struct history_locks *h, uint64_t session) {
  const struct hl_session *s = session_find(h, session);
  return s == NULL ? -1 : s->live ? 1 : 0;
}

static struct hl_lock *lock_get(struct history_locks *h, uint32_t lock) {
  if (lock >= h->ln) {
    size_t cap = h->ln;
    h->l = grow(h->l, &cap, (size_t)lock + 1, sizeof *h->l);
    h->ln = cap;
  }
  h->l[lock].touched = true;
  return &h->l[lock];
}

static uint64_t session_due(const struct hl_session *s) {
  return s->keepalive_ms + s->ttl_ms + 1;
}

static size_t waiter_find(const struct hl_lock *l, uint64_t session,
                          uint64_t owner, uint64_t sequence, bool by_seq) {
  for (size_t i = 0; i < l->wn; i++) {
    if (l->w[i].session == session &&
        (by_seq ? l->w[i].sequence == sequence : l->w[i].owner == owner)) {
      return i;
    }
  }
  return SIZE_MAX;
}

static void waiter_remove(struct hl_lock *l, size_t i) {
  memmove(&l->w[i], &l->w[i + 1], (l->wn - i - 1) * sizeof l->w[0]);
  l->wn--;
}

/* A session's end: its holds go (with the lock-delay on expiry, counted
 * from the expiry deadline); its waiters must be canceled by the events
 * that follow, which END verifies. */
static void session_end(struct history_locks *h, struct hl_session *s,
                        bool expired) {
  uint64_t due = session_due(s);
  s->live = false;
  for (size_t i = 0; i < h->ln; i++) {
    struct hl_lock *l = &h->l[i];
    if (l->held && l->session == s->id) {
      l->held = false;
      l->hold = 0;
      l->delay_until = expired && l->delay_ms > 0 ? due + l->delay_ms : 0;
    }
  }
}

static bool on_open(struct history_locks *h,
                    const struct history_lock_event *ev, char *why,
                    size_t len) {
  if (h->sn > 0 && h->s[h->sn - 1].id >= ev->session) {
    return fail(why, len, ev,
                "session %" PRIu64 " opened after session %" PRIu64
                " (ids must be new and growing)",
                ev->session, h->s[h->sn - 1].id);
  }
  h->s = grow(h->s, &h->scap, h->sn + 1, sizeof *h->s);
  h->s[h->sn++] = (struct hl_session){.id = ev->session,
                                      .ttl_ms = ev->arg,
                                      .keepalive_ms = ev->time_ms,
                                      .live = true};
  return true;
}

static bool on_end_session(struct history_locks *h,
                           const struct history_lock_event *ev, char *why,
                           size_t len) {
  bool expire = ev->kind == HISTORY_LOCK_EXPIRE;
  struct hl_session *s = session_find(h, ev->session);
  if (s == NULL || !s->live) {
    return fail(why, len, ev, "session %" PRIu64 " %s but it is %s",
                ev->session, expire ? "expires" : "closes",
                s == NULL ? "unknown" : "already gone");
  }
  if (expire && ev->time_ms < session_due(s)) {
    return fail(why, len, ev,
                "session %" PRIu64 " expires early: keepalive %" PRIu64
                " + ttl %" PRIu32 " ms, deadline %" PRIu64,
                s->id, s->keepalive_ms, s->ttl_ms, session_due(s));
  }
  session_end(h, s, expire);
  return true;
}

/* FIFO: a grant goes to the head of the queue, or to a new acquirer only
 * when nobody waits. */
static bool grant_fifo(struct hl_lock *l, const struct history_lock_event *ev,
                       char *why, size_t len) {
  if (l->wn == 0) {
    return true;
  }
  size_t i = waiter_find(l, ev->session, ev->owner, 0, false);
  if (i == 0) {
    waiter_remove(l, 0);
    return true;
  }
  const struct hl_waiter *head = &l->w[0];
  if (i == SIZE_MAX) {
    return fail(why, len, ev,
                "FIFO: lock %" PRIu32 " granted to session %" PRIu64
                " owner %" PRIu64 ", who never queued, ahead of %zu waiter(s) "
                "(first: session %" PRIu64 " owner %" PRIu64
                " queued at entry %" PRIu64 ")",
                ev->lock, ev->session, ev->owner, l->wn, head->session,
                head->owner, head->index);
  }
  return fail(why, len, ev,
              "FIFO: lock %" PRIu32 " granted to session %" PRIu64
              " owner %" PRIu64 " (queued at entry %" PRIu64
              ") before session %" PRIu64 " owner %" PRIu64
              " (queued earlier, at entry %" PRIu64 ")",
              ev->lock, ev->session, ev->owner, l->w[i].index, head->session,
              head->owner, head->index);
}

static bool on_grant(struct history_locks *h,
                     const struct history_lock_event *ev, char *why,
                     size_t len) {
  struct hl_lock *l = lock_get(h, ev->lock);
  const struct hl_session *s = session_find(h, ev->session);
  if (s == NULL || !s->live) {
    return fail(why, len, ev,
                "lock %" PRIu32 " granted (token %" PRIu64
                ") to session %" PRIu64 ", which %s",
                ev->lock, ev->token, ev->session,
                s == NULL ? "was never opened" : "has expired or closed");
  }
  if (l->held) {
    return fail(why, len, ev,
                "two holders: lock %" PRIu32 " granted to session %" PRIu64
                " owner %" PRIu64 " (token %" PRIu64 ") while session %" PRIu64
                " owner %" PRIu64 " holds it (token %" PRIu64 ")",
                ev->lock, ev->session, ev->owner, ev->token, l->session,
                l->owner, l->token);
  }
  if (ev->token <= l->token_max) {
    return fail(why, len, ev,
                "fencing token of lock %" PRIu32 " does not grow: %" PRIu64
                " granted after %" PRIu64,
                ev->lock, ev->token, l->token_max);
  }
  if (ev->token <= h->token_last) {
    return fail(why, len, ev,
                "fencing tokens do not grow across locks: %" PRIu64
                " on lock %" PRIu32 " after %" PRIu64,
                ev->token, ev->lock, h->token_last);
  }
  if (l->delay_until != 0 && ev->time_ms < l->delay_until) {
    return fail(why, len, ev,
                "lock %" PRIu32 " granted during its lock-delay (until %" PRIu64
                " ms)",
                ev->lock, l->delay_until);
  }
  if (!grant_fifo(l, ev, why, len)) {
    return false;
  }
  l->held = true;
  l->session = ev->session;
  l->owner = ev->owner;
  l->token = ev->token;
  l->token_max = ev->token;
  l->hold = 1;
  l->delay_ms = ev->arg;
  l->delay_until = 0;
  h->token_last = ev->token;
  h->g = grow(h->g, &h->gcap, h->gn + 1, sizeof *h->g);
  h->g[h->gn++] =
      (struct hl_grant){ev->token, ev->lock, ev->session, ev->owner};
  return true;
}

static bool holder_is(const struct hl_lock *l,
                      const struct history_lock_event *ev) {
  return l->held && l->session == ev->session && l->owner == ev->owner;
}

static bool on_reenter(struct history_locks *h,
                       const struct history_lock_event *ev, char *why,
                       size_t len) {
  struct hl_lock *l = lock_get(h, ev->lock);
  if (!holder_is(l, ev) || ev->token != l->token || ev->arg != l->hold + 1) {
    return fail(why, len, ev,
                "%sreentrant acquire of lock %" PRIu32 " by session %" PRIu64
                " owner %" PRIu64 " (token %" PRIu64 ", hold %" PRIu32
                ") but the holder is %s session %" PRIu64 " owner %" PRIu64
                " token %" PRIu64 " hold %" PRIu32,
                l->held && !holder_is(l, ev) ? "two holders: " : "", ev->lock,
                ev->session, ev->owner, ev->token, ev->arg,
                l->held ? "" : "(none)", l->session, l->owner, l->token,
                l->hold);
  }
  l->hold++;
  return true;
}

static bool on_release(struct history_locks *h,
                       const struct history_lock_event *ev, char *why,
                       size_t len) {
  struct hl_lock *l = lock_get(h, ev->lock);
  if (!holder_is(l, ev) || ev->arg + 1 != l->hold) {
    return fail(why, len, ev,
                "release of lock %" PRIu32 " by session %" PRIu64
                " owner %" PRIu64 " (hold left %" PRIu32
                ") but the holder is %s session %" PRIu64 " owner %" PRIu64
                " hold %" PRIu32,
                ev->lock, ev->session, ev->owner, ev->arg,
                l->held ? "" : "(none)", l->session, l->owner, l->hold);
  }
  l->hold--;
  if (l->hold == 0) {
    l->held = false;
    l->delay_until = 0;
  }
  return true;
}

static bool on_enqueue(struct history_locks *h,
                       const struct history_lock_event *ev, char *why,
                       size_t len) {
  struct hl_lock *l = lock_get(h, ev->lock);
  const struct hl_session *s = session_find(h, ev->session);
  if (s == NULL || !s->live) {
    return fail(why, len, ev,
                "session %" PRIu64 " queues on lock %" PRIu32
                " but it is not live",
                ev->session, ev->lock);
  }
  if (!l->held && l->delay_until == 0) {
    return fail(why, len, ev,
                "session %" PRIu64 " owner %" PRIu64 " queues on lock %" PRIu32
                ", which is free (it should have been granted)",
                ev->session, ev->owner, ev->lock);
  }
  if (holder_is(l, ev) ||
      waiter_find(l, ev->session, ev->owner, 0, false) != SIZE_MAX) {
    return fail(why, len, ev,
                "session %" PRIu64 " owner %" PRIu64 " queues on lock %" PRIu32
                " which it already %s",
                ev->session, ev->owner, ev->lock,
                holder_is(l, ev) ? "holds" : "waits for");
  }
  if (l->wn == l->wcap) {
    l->w = grow(l->w, &l->wcap, l->wn + 1, sizeof *l->w);
  }
  l->w[l->wn++] = (struct hl_waiter){.session = ev->session,
                                     .owner = ev->owner,
                                     .sequence = ev->sequence,
                                     .due_ms = ev->time_ms + ev->arg,
                                     .index = ev->index};
  return true;
}

static bool on_dequeue(struct history_locks *h,
                       const struct history_lock_event *ev, char *why,
                       size_t len) {
  bool timeout = ev->kind == HISTORY_LOCK_TIMEOUT;
  struct hl_lock *l = lock_get(h, ev->lock);
  size_t i = waiter_find(l, ev->session, 0, ev->sequence, true);
  if (i == SIZE_MAX) {
    return fail(why, len, ev,
                "%s of session %" PRIu64 " sequence %" PRIu64
                " on lock %" PRIu32 ", which does not wait",
                timeout ? "timeout" : "cancel", ev->session, ev->sequence,
                ev->lock);
  }
  if (timeout && ev->time_ms < l->w[i].due_ms) {
    return fail(why, len, ev,
                "acquire of session %" PRIu64 " sequence %" PRIu64
                " on lock %" PRIu32 " times out early (due %" PRIu64 ")",
                ev->session, ev->sequence, ev->lock, l->w[i].due_ms);
  }
  if (!timeout && history_locks_session(h, ev->session) == 1) {
    return fail(why, len, ev,
                "acquire of session %" PRIu64 " sequence %" PRIu64
                " on lock %" PRIu32 " canceled while its session lives",
                ev->session, ev->sequence, ev->lock);
  }
  waiter_remove(l, i);
  return true;
}

/* Whatever was due by the entry's time has happened. */
static bool on_end(struct history_locks *h, const struct history_lock_event *ev,
                   char *why, size_t len) {
  for (size_t i = 0; i < h->sn; i++) {
    const struct hl_session *s = &h->s[i];
    if (s->live && session_due(s) <= ev->time_ms) {
      return fail(why, len, ev,
                  "session %" PRIu64 " outlives its deadline %" PRIu64
                  " (keepalive %" PRIu64 " + ttl %" PRIu32 ")",
                  s->id, session_due(s), s->keepalive_ms, s->ttl_ms);
    }
  }
  for (size_t i = 0; i < h->ln; i++) {
    struct hl_lock *l = &h->l[i];
    for (size_t k = 0; k < l->wn; k++) {
      const struct hl_waiter *w = &l->w[k];
      if (w->due_ms <= ev->time_ms) {
        return fail(why, len, ev,
                    "acquire of session %" PRIu64 " sequence %" PRIu64
                    " on lock %zu outlives its timeout (due %" PRIu64 ")",
                    w->session, w->sequence, i, w->due_ms);
      }
      if (history_locks_session(h, w->session) != 1) {
        return fail(why, len, ev,
                    "session %" PRIu64 " has ended but still waits on lock "
                    "%zu (sequence %" PRIu64 ")",
                    w->session, i, w->sequence);
      }
    }
    if (l->held || (l->delay_until != 0 && l->delay_until > ev->time_ms)) {
      continue;
    }
    if (l->wn > 0) {
      return fail(why, len, ev,
                  "lock %zu is free%s but %zu waiter(s) were not granted "
                  "(first: session %" PRIu64 " owner %" PRIu64 ")",
                  i, l->delay_until ? " (its lock-delay ended)" : "", l->wn,
                  l->w[0].session, l->w[0].owner);
    }
    l->delay_until = 0;
  }
  return true;
}

bool history_locks_feed(struct history_locks *h,
                        const struct history_lock_event *ev, char *why,
                        size_t why_len) {
  if (ev->time_ms < h->time_ms) {
    return fail(why, why_len, ev, "cluster time goes back from %" PRIu64,
                h->time_ms);
  }
  h->time_ms = ev->time_ms;
  switch (ev->kind) {
  case HISTORY_LOCK_OPEN:
    return on_open(h, ev, why, why_len);
  case HISTORY_LOCK_KEEPALIVE: {
    struct hl_session *s = session_find(h, ev->session);
    if (s != NULL && s->live) {
      s->keepalive_ms = ev->time_ms;
    }
    return true;
  }
  case HISTORY_LOCK_EXPIRE:
  case HISTORY_LOCK_CLOSE:
    return on_end_session(h, ev, why, why_len);
  case HISTORY_LOCK_GRANT:
    return on_grant(h, ev, why, why_len);
  case HISTORY_LOCK_REENTER:
    return on_reenter(h, ev, why, why_len);
  case HISTORY_LOCK_RELEASE:
    return on_release(h, ev, why, why_len);
  case HISTORY_LOCK_ENQUEUE:
    return on_enqueue(h, ev, why, why_len);
  case HISTORY_LOCK_TIMEOUT:
  case HISTORY_LOCK_CANCEL:
    return on_dequeue(h, ev, why, why_len);
  case HISTORY_LOCK_END:
    return on_end(h, ev, why, why_len);
  }
  return fail(why, why_len, ev, "unknown event kind %d", (int)ev->kind);
}

bool history_locks_final(const struct history_locks *h,
                         const struct history_lock_final *fin, size_t n,
                         char *why, size_t why_len) {
  for (size_t k = 0; k < n; k++) {
    if (fin[k].lock >= h->ln && (fin[k].held || fin[k].waiters > 0)) {
      snprintf(why, why_len,
               "final state: lock %" PRIu32 " is held or waited for (session "
               "%" PRIu64 " token %" PRIu64 ") but the history never "
               "touched it",
               fin[k].lock, fin[k].session, fin[k].token);
      return false;
    }
  }
  for (size_t i = 0; i < h->ln; i++) {
    const struct hl_lock *l = &h->l[i];
    struct history_lock_final want = {.lock = (uint32_t)i};
    if (l->held) {
      want = (struct history_lock_final){.lock = (uint32_t)i,
                                         .held = true,
                                         .session = l->session,
                                         .owner = l->owner,
                                         .token = l->token,
                                         .hold_count = l->hold};
    }
    want.waiters = (uint32_t)l->wn;
    struct history_lock_final got = {.lock = (uint32_t)i};
    for (size_t k = 0; k < n; k++) {
      if (fin[k].lock == i) {
        got = fin[k];
      }
    }
    if (got.held != want.held || got.session != want.session ||
        got.owner != want.owner || got.token != want.token ||
        got.hold_count != want.hold_count || got.waiters != want.waiters) {
      snprintf(why, why_len,
               "final state of lock %zu: held %d by session %" PRIu64
               " owner %" PRIu64 " token %" PRIu64 " hold %" PRIu32
               " waiters %" PRIu32 "; the history says held %d by session "
               "%" PRIu64 " owner %" PRIu64 " token %" PRIu64 " hold %" PRIu32
               " waiters %" PRIu32,
               i, got.held, got.session, got.owner, got.token, got.hold_count,
               got.waiters, want.held, want.session, want.owner, want.token,
               want.hold_count, want.waiters);
      return false;
    }
  }
  return true;
}

bool history_locks_token(const struct history_locks *h, uint64_t token,
                         uint32_t *lock, uint64_t *session, uint64_t *owner) {
  size_t lo = 0, hi = h->gn;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (h->g[mid].token == token) {
      *lock = h->g[mid].lock;
      *session = h->g[mid].session;
      *owner = h->g[mid].owner;
      return true;
    }
    if (h->g[mid].token < token) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return false;
}
