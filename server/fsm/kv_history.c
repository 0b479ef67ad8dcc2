/* The key history: revisions, their events in a retained window
 * (window.c) at position == revision, the end of a session's keys as one
 * revision, and the bounded work that takes ended sessions' keys out of
 * the store afterwards.
 *
 * Why one window item per revision: a watch from revision R is a seek to
 * position R, the oldest available revision is the window's first
 * position (SYNOD_ECOMPACTED names it), and a revision is delivered
 * whole or not at all, so a client that resumes "after revision R" can
 * never see half of a transaction twice or miss the other half.
 *
 * An item is one of:
 *
 *   0x00 varint(n) event{n}     the events of a write, encoded below
 *   0x01                        a session's end: its events are the keys
 *                               of the grave (struct fsm_key_lease) whose
 *                               ended_revision is the item's position
 *
 *   event := flags (bit 0: delete, bit 1: has prev)
 *            varint(key length) key
 *            put:  varint(create_revision) varint(version)
 *                  varint(session) varint(value length) value
 *            prev: varint(create_revision) varint(mod_revision)
 *                  varint(version) varint(session) varint(value length)
 *                  value
 *
 * A put's mod_revision is the item's revision; a delete always has prev.
 *
 * Why a session's end is not encoded like other writes: encoding 100,000
 * deletes means touching 100,000 keys in one apply, tens of
 * milliseconds. Instead the session's lease (its keys, already in the
 * order it bound them) becomes the revision's events as it is, in O(1):
 * reads hide its keys at once (fsm_key_live), and the work list takes
 * them out of the store over the next entries. The revision is complete
 * at once, so watches never wait.
 *
 * Each applied entry drops at most key_work_per_entry revisions past the
 * history's bounds, and takes out or frees at most as many keys of the
 * work list, so what an entry spends on them is bounded whatever came
 * before. The two budgets are apart because they differ in kind: which
 * revisions the history keeps is state (in the image, the same on every
 * replica, restored or not), while the work list is not, so the work
 * must never decide what the history drops. Both may lag the entries
 * that caused them; nothing a client sees depends on it but how far back
 * the history reaches. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "fsm_int.h"

#define ITEM_EVENTS FSM_KEY_ITEM_EVENTS
#define ITEM_GRAVE FSM_KEY_ITEM_GRAVE
#define EVENT_DELETE 0x01
#define EVENT_PREV 0x02

/* What a grave's event counts for in the history's bytes: about its
 * encoding's overhead over the key and value. */
#define GRAVE_EVENT_BYTES 16

/* Room for the item header in front of the events being built. */
#define REV_HEAD 11

/* ------------------------------------------------------------- encoding */

static void rev_reserve(struct fsm_key_rev *r, size_t n) {
  if (r->len + n > r->cap) {
    r->cap = (r->len + n) * 2 + 256;
    r->buf = fsm_xrealloc(r->buf, r->cap);
  }
}

static void rev_varint(struct fsm_key_rev *r, uint64_t v) {
  rev_reserve(r, 10);
  do {
    uint8_t b = (uint8_t)(v & 0x7f);
    v >>= 7;
    r->buf[r->len++] = b | (v ? 0x80 : 0);
  } while (v);
}

static void rev_bytes(struct fsm_key_rev *r, const uint8_t *p, size_t n) {
  rev_varint(r, n);
  rev_reserve(r, n);
  if (n > 0) {
    memcpy(r->buf + r->len, p, n);
  }
  r->len += n;
}

static uint64_t key_session(const struct fsm_key *k) {
  return fsm_key_lease(k) ? fsm_key_lease(k)->session_id : 0;
}

void fsm_key_rev_begin(struct fsm *f) {
  struct fsm_key_rev *r = &f->key_rev;
  r->len = 0;
  r->events = 0;
  rev_reserve(r, REV_HEAD);
  r->len = REV_HEAD;
}

void fsm_key_rev_event(struct fsm *f, const struct fsm_key *k,
                       const struct fsm_key *prev) {
  struct fsm_key_rev *r = &f->key_rev;
  const struct fsm_key *named = k ? k : prev;
  rev_reserve(r, 1);
  r->buf[r->len++] =
      (uint8_t)((k ? 0 : EVENT_DELETE) | (prev ? EVENT_PREV : 0));
  rev_bytes(r, named->data, named->key_len);
  if (k != NULL) {
    rev_varint(r, k->create_revision);
    rev_varint(r, k->version);
    rev_varint(r, key_session(k));
    rev_bytes(r, fsm_key_value(k), k->value_len);
  }
  if (prev != NULL) {
    rev_varint(r, prev->create_revision);
    rev_varint(r, prev->mod_revision);
    rev_varint(r, prev->version);
    rev_varint(r, key_session(prev));
    rev_bytes(r, fsm_key_value(prev), prev->value_len);
  }
  r->events++;
}

/* Appends the item of the revision just issued and keeps the bounds. */
static void history_push(struct fsm *f, uint64_t rev, const uint8_t *data,
                         size_t len, uint64_t events, uint64_t bytes) {
  assert(f->key_history.next == rev);
  window_append(&f->key_history, f->index, f->time_ms, data, len);
  f->key_history_events += events;
  f->key_history_bytes += bytes;
  fsm_key_history_trim(f);
  fsm_event_push(f, FSM_EVENT_KEYS_CHANGED)->revision = rev;
}

uint64_t fsm_key_rev_finish(struct fsm *f) {
  struct fsm_key_rev *r = &f->key_rev;
  uint8_t head[REV_HEAD];
  size_t h = 0;
  if (r->events == 0) {
    return 0;
  }
  uint64_t rev = ++f->key_revision;
  head[h++] = ITEM_EVENTS;
  uint64_t v = r->events;
  do { /* varint(events) */
    head[h] = (uint8_t)(v & 0x7f);
    v >>= 7;
    head[h++] |= v ? 0x80 : 0;
  } while (v);
  uint8_t *start = r->buf + REV_HEAD - h;
  memcpy(start, head, h);
  size_t len = r->len - (REV_HEAD - h);
  history_push(f, rev, start, len, r->events, len);
  return rev;
}

/* ------------------------------------------------------------- decoding */

struct reader {
  const uint8_t *p, *end;
};

static int read_varint(struct reader *rd, uint64_t *v) {
  *v = 0;
  for (unsigned shift = 0; shift < 64; shift += 7) {
    if (rd->p == rd->end) {
      return -1;
    }
    uint8_t b = *rd->p++;
    if (shift == 63 && b > 1) {
      return -1;
    }
    *v |= (uint64_t)(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      return 0;
    }
  }
  return -1;
}

static int read_bytes(struct reader *rd, const uint8_t **p, size_t *n) {
  uint64_t len;
  if (read_varint(rd, &len) != 0 || len > (uint64_t)(rd->end - rd->p)) {
    return -1;
  }
  *p = rd->p;
  *n = (size_t)len;
  rd->p += len;
  return 0;
}

/* Decodes one event of revision rev; -1 if it is malformed or breaks the
 * rules an event of that revision keeps. */
static int event_read(struct reader *rd, uint64_t rev, bool strict,
                      struct fsm_key_event *out) {
  char msg[SYNOD_ERRMSG_MAX];
  struct fsm_kv *kv = &out->kv, *pv = &out->prev;
  memset(out, 0, sizeof *out);
  out->revision = rev;
  if (rd->p == rd->end || (*rd->p & ~(EVENT_DELETE | EVENT_PREV)) != 0) {
    return -1;
  }
  uint8_t flags = *rd->p++;
  out->deleted = flags & EVENT_DELETE;
  out->has_prev = flags & EVENT_PREV;
  if ((out->deleted && !out->has_prev) ||
      read_bytes(rd, &kv->key, &kv->key_len) != 0 ||
      (strict && fsm_key_check(kv->key, kv->key_len, false, msg) != 0)) {
    return -1;
  }
  if (!out->deleted &&
      (read_varint(rd, &kv->create_revision) || read_varint(rd, &kv->version) ||
       read_varint(rd, &kv->session_id) ||
       read_bytes(rd, &kv->value, &kv->value_len))) {
    return -1;
  }
  kv->mod_revision = out->deleted ? 0 : rev;
  if (out->has_prev) {
    pv->key = kv->key;
    pv->key_len = kv->key_len;
    if (read_varint(rd, &pv->create_revision) ||
        read_varint(rd, &pv->mod_revision) || read_varint(rd, &pv->version) ||
        read_varint(rd, &pv->session_id) ||
        read_bytes(rd, &pv->value, &pv->value_len) ||
        pv->create_revision == 0 || pv->create_revision > pv->mod_revision ||
        pv->mod_revision >= rev || pv->version == 0) {
      return -1;
    }
  }
  if (out->deleted) {
    return 0;
  }
  if (out->has_prev) { /* a put over an existing key */
    return kv->create_revision == pv->create_revision &&
                   kv->version == pv->version + 1
               ? 0
               : -1;
  }
  return kv->create_revision == rev && kv->version == 1 ? 0 : -1;
}

int64_t fsm_key_events_check(const uint8_t *p, size_t len, uint64_t revision) {
  if (len == 0) { /* p may be NULL */
    return -1;
  }
  struct reader rd = {p, p + len};
  struct fsm_key_event ev;
  uint64_t n;
  if (*rd.p++ != ITEM_EVENTS || read_varint(&rd, &n) != 0 || n == 0 ||
      n > len) {
    return -1;
  }
  for (uint64_t i = 0; i < n; i++) {
    if (event_read(&rd, revision, true, &ev) != 0) {
      return -1;
    }
  }
  return rd.p == rd.end ? (int64_t)n : -1;
}

/* ----------------------------------------------------------------- graves */

int fsm_key_grave_cmp(const void *key, const struct otree_node *n) {
  uint64_t a = *(const uint64_t *)key;
  uint64_t b =
      FSM_CONTAINER(n, struct fsm_key_lease, by_revision)->ended_revision;
  return a < b ? -1 : a > b;
}

static struct fsm_key_lease *grave_find(const struct fsm *f, uint64_t rev) {
  struct otree_node *n = otree_find(&f->key_graves, &rev);
  return n ? FSM_CONTAINER(n, struct fsm_key_lease, by_revision) : NULL;
}

static uint64_t grave_bytes(const struct fsm_key_lease *l) {
  return l->bytes + GRAVE_EVENT_BYTES * l->keys_n;
}

void fsm_key_lease_free(struct fsm_key_lease *l) {
  free(l);
}

/* Puts l on the work list with `left` units to do. */
static void work_set(struct fsm *f, struct fsm_key_lease *l, uint64_t left) {
  if (!l->in_work) {
    fsm_list_push_back(&f->key_work, &l->work_link);
    l->in_work = 1;
    l->work_left = 0;
  }
  f->key_work_keys += left - l->work_left;
  l->work_left = left;
}

static void work_done(struct fsm *f, struct fsm_key_lease *l) {
  fsm_list_remove(&l->work_link);
  l->in_work = 0;
  f->key_work_keys -= l->work_left;
  l->work_left = 0;
}

void fsm_keys_session_end(struct fsm *f, struct fsm_session *s) {
  struct fsm_key_lease *l = s->lease;
  s->lease = NULL;
  if (l == NULL || l->keys_n == 0) {
    fsm_key_lease_free(l);
    return;
  }
  uint64_t rev = ++f->key_revision;
  l->ended_revision = rev;
  f->keys_live -= l->keys_n;
  f->keys_bytes -= l->bytes;
  otree_insert(&f->key_graves, &l->by_revision, &l->ended_revision);
  l->retained = 1;
  l->cursor = l->keys.next;
  work_set(f, l, l->keys_n);
  uint8_t item = ITEM_GRAVE;
  history_push(f, rev, &item, 1, l->keys_n, grave_bytes(l));
}

void fsm_key_history_grave(struct fsm *f, struct fsm_key_lease *l,
                           uint64_t index, uint64_t time_ms) {
  uint8_t item = ITEM_GRAVE;
  assert(f->key_history.next == l->ended_revision);
  l->retained = 1;
  window_append(&f->key_history, index, time_ms, &item, 1);
  f->key_history_events += l->keys_n;
  f->key_history_bytes += grave_bytes(l);
}

/* The history dropped l's revision: its keys are to be freed (those still
 * in the store taken out first). */
static void grave_drop(struct fsm *f, struct fsm_key_lease *l) {
  otree_remove(&f->key_graves, &l->by_revision);
  l->retained = 0;
  work_set(f, l, l->keys_n);
}

/* ------------------------------------------------------------------ work */

/* A retained grave: takes keys out of the store within the budget. */
static void work_take_out(struct fsm *f, struct fsm_key_lease *l,
                          uint64_t *budget) {
  while (*budget > 0 && l->cursor != &l->keys) {
    struct fsm_key *k = fsm_key_of_link(l->cursor);
    l->cursor = l->cursor->next;
    if (k->in_tree) {
      otree_remove(&f->keys, &k->by_key);
      k->in_tree = 0;
    }
    (*budget)--;
    l->work_left--;
    f->key_work_keys--;
  }
  if (l->cursor == &l->keys) {
    work_done(f, l);
  }
}

/* A dropped grave: frees keys within the budget, then the grave. */
static void work_free(struct fsm *f, struct fsm_key_lease *l,
                      uint64_t *budget) {
  while (*budget > 0 && !fsm_list_empty(&l->keys)) {
    struct fsm_key *k = fsm_key_of_link(l->keys.next);
    fsm_list_remove(l->keys.next);
    if (k->in_tree) {
      otree_remove(&f->keys, &k->by_key);
    }
    fsm_key_free(k);
    (*budget)--;
    l->work_left--;
    f->key_work_keys--;
  }
  if (fsm_list_empty(&l->keys)) {
    work_done(f, l);
    fsm_key_lease_free(l);
  }
}

void fsm_keys_work(struct fsm *f) {
  uint64_t budget = f->opt.key_work_per_entry;
  f->key_trim_budget = f->opt.key_work_per_entry;
  fsm_key_history_trim(f);
  while (budget > 0 && !fsm_list_empty(&f->key_work)) {
    struct fsm_key_lease *l =
        FSM_CONTAINER(f->key_work.next, struct fsm_key_lease, work_link);
    if (l->retained) {
      work_take_out(f, l, &budget);
    } else {
      work_free(f, l, &budget);
    }
  }
}

/* ---------------------------------------------------------------- bounds */

void fsm_key_item_measure(const struct fsm *f, const struct window_item *it,
                          uint64_t *events, uint64_t *bytes) {
  if (it->data[0] == ITEM_GRAVE) {
    const struct fsm_key_lease *l = grave_find(f, it->pos);
    assert(l != NULL);
    *events = l->keys_n;
    *bytes = grave_bytes(l);
    return;
  }
  struct reader rd = {it->data + 1, it->data + it->len};
  int rv = read_varint(&rd, events);
  assert(rv == 0);
  (void)rv;
  *bytes = it->len;
}

/* Over the bounds, with more than the newest revision to drop. */
static bool history_over(const struct fsm *f) {
  const struct window *w = &f->key_history;
  return w->next - w->first > 1 &&
         (f->key_history_events > fsm_key_history_max(f) ||
          f->key_history_bytes > fsm_key_history_bytes_max(f));
}

bool fsm_keys_busy(const struct fsm *f) {
  return !fsm_list_empty(&f->key_work) || history_over(f);
}

/* Drops the oldest revisions while over the bounds and the entry's
 * budget lasts: a session end of 100,000 keys may push out 100,000
 * revisions of one put, and that is spread over entries too. */
void fsm_key_history_trim(struct fsm *f) {
  struct window *w = &f->key_history;
  struct window_item it;
  while (f->key_trim_budget > 0 && history_over(f)) {
    uint64_t events, bytes;
    window_front(w, &it);
    fsm_key_item_measure(f, &it, &events, &bytes);
    if (it.data[0] == ITEM_GRAVE) {
      grave_drop(f, grave_find(f, it.pos));
    }
    window_evict(w);
    f->key_history_events -= events;
    f->key_history_bytes -= bytes;
    f->key_trim_budget--;
  }
}

/* ----------------------------------------------------------------- reading */

void fsm_key_stream(const struct fsm *f, struct fsm_stream *out) {
  out->name = "";
  out->name_len = 0;
  out->window = &f->key_history;
  out->first = f->key_history.first;
  out->evicted_index = f->key_history.evicted_index;
}

uint64_t fsm_key_revision(const struct fsm *f) {
  return f->key_revision;
}

void fsm_key_iter_seek(const struct fsm *f, uint64_t revision,
                       struct fsm_key_iter *it) {
  memset(it, 0, sizeof *it);
  it->f = f;
  window_iter_seek(&f->key_history, revision, &it->wit);
}

static void kv_of_key(const struct fsm_key *k, struct fsm_kv *kv) {
  kv->key = k->data;
  kv->key_len = k->key_len;
  kv->value = fsm_key_value(k);
  kv->value_len = k->value_len;
  kv->create_revision = k->create_revision;
  kv->mod_revision = k->mod_revision;
  kv->version = k->version;
  kv->session_id = key_session(k);
}

/* Opens the next revision; false past the newest. */
static bool iter_open(struct fsm_key_iter *it) {
  struct window_item item;
  if (!window_iter_next(&it->wit, &item)) {
    return false;
  }
  it->revision = item.pos;
  it->index = item.index;
  it->time_ms = item.time_ms;
  if (item.data[0] == ITEM_GRAVE) {
    const struct fsm_key_lease *l = grave_find(it->f, item.pos);
    assert(l != NULL);
    it->grave = l->keys.next;
    it->left = l->keys_n;
    return true;
  }
  struct reader rd = {item.data + 1, item.data + item.len};
  int rv = read_varint(&rd, &it->left);
  assert(rv == 0);
  (void)rv;
  it->p = rd.p;
  it->end = rd.end;
  it->grave = NULL;
  return true;
}

bool fsm_key_iter_next(struct fsm_key_iter *it, struct fsm_key_event *out) {
  while (it->left == 0) {
    if (!iter_open(it)) {
      return false;
    }
  }
  it->left--;
  if (it->grave != NULL) {
    const struct fsm_list *x = it->grave;
    const struct fsm_key *k = fsm_key_of_link(x);
    it->grave = x->next;
    memset(out, 0, sizeof *out);
    out->revision = it->revision;
    out->deleted = true;
    out->has_prev = true;
    kv_of_key(k, &out->prev);
    out->kv.key = out->prev.key;
    out->kv.key_len = out->prev.key_len;
  } else {
    struct reader rd = {it->p, it->end};
    int rv = event_read(&rd, it->revision, false, out);
    assert(rv == 0);
    (void)rv;
    it->p = rd.p;
  }
  out->index = it->index;
  out->time_ms = it->time_ms;
  return true;
}

/* ----------------------------------------------------------------- clear */

static void lease_free_keys(struct fsm *f, struct fsm_key_lease *l) {
  while (!fsm_list_empty(&l->keys)) {
    struct fsm_key *k = fsm_key_of_link(l->keys.next);
    fsm_list_remove(l->keys.next);
    if (k->in_tree) {
      otree_remove(&f->keys, &k->by_key);
    }
    fsm_key_free(k);
  }
  fsm_key_lease_free(l);
}

/* Live keys go with the tree; dead ones with their graves, retained or
 * on the work list. Live leases go with their sessions. */
void fsm_keys_clear(struct fsm *f) {
  struct otree_node *n;
  while ((n = otree_first(&f->key_graves)) != NULL) {
    struct fsm_key_lease *l =
        FSM_CONTAINER(n, struct fsm_key_lease, by_revision);
    otree_remove(&f->key_graves, n);
    if (l->in_work) {
      fsm_list_remove(&l->work_link);
    }
    lease_free_keys(f, l);
  }
  while (!fsm_list_empty(&f->key_work)) {
    struct fsm_key_lease *l =
        FSM_CONTAINER(f->key_work.next, struct fsm_key_lease, work_link);
    fsm_list_remove(&l->work_link);
    lease_free_keys(f, l);
  }
  while ((n = otree_first(&f->keys)) != NULL) {
    otree_remove(&f->keys, n);
    fsm_key_free(FSM_CONTAINER(n, struct fsm_key, by_key));
  }
  window_close(&f->key_history);
}
