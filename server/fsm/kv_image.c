/* Keys in the snapshot image: the live keys in key order, the revision
 * counter and the retained history, each session end as its session and
 * the keys it deleted. What the work list still has to take out of the
 * store or free is no part of the state (every read already treats it as
 * gone), so it is not in the image: a replica restored from one starts
 * with nothing to do and the same state. */
#include <string.h>

#include "fsm_int.h"

/* ------------------------------------------------------------- encode */

static void key_encode(const struct fsm_key *k, bool session,
                       Synod__Fsm__Key *m) {
  synod__fsm__key__init(m);
  m->key.data = (uint8_t *)k->data;
  m->key.len = k->key_len;
  m->value.data = (uint8_t *)fsm_key_value(k);
  m->value.len = k->value_len;
  m->create_revision = k->create_revision;
  m->mod_revision = k->mod_revision;
  m->version = k->version;
  m->session_id =
      session && fsm_key_lease(k) ? fsm_key_lease(k)->session_id : 0;
}

static void keys_encode(const struct fsm *f, struct fsm_arena *a,
                        Synod__Fsm__Image *img) {
  size_t i = 0;
  img->n_keys = f->keys_live;
  img->keys = fsm_arena_calloc(a, f->keys_live, sizeof *img->keys);
  Synod__Fsm__Key *ms = fsm_arena_calloc(a, f->keys_live, sizeof *ms);
  for (struct otree_node *n = otree_first(&f->keys); n; n = otree_next(n)) {
    const struct fsm_key *k = FSM_CONTAINER(n, struct fsm_key, by_key);
    if (fsm_key_live(k)) {
      key_encode(k, true, &ms[i]);
      img->keys[i] = &ms[i];
      i++;
    }
  }
}

/* A session end: its session and the keys it deleted, in lease order. */
static void grave_encode(const struct fsm *f, struct fsm_arena *a, uint64_t rev,
                         Synod__Fsm__KeyRevision *m) {
  struct otree_node *n = otree_find(&f->key_graves, &rev);
  const struct fsm_key_lease *l =
      FSM_CONTAINER(n, struct fsm_key_lease, by_revision);
  size_t i = 0;
  m->session_id = l->session_id;
  m->n_deleted = l->keys_n;
  m->deleted = fsm_arena_calloc(a, l->keys_n, sizeof *m->deleted);
  Synod__Fsm__Key *ms = fsm_arena_calloc(a, l->keys_n, sizeof *ms);
  for (const struct fsm_list *x = l->keys.next; x != &l->keys; x = x->next) {
    key_encode(fsm_key_of_link(x), false, &ms[i]);
    m->deleted[i] = &ms[i];
    i++;
  }
}

static void history_encode(const struct fsm *f, struct fsm_arena *a,
                           Synod__Fsm__Image *img) {
  const struct window *w = &f->key_history;
  Synod__Fsm__KeyHistory *h = fsm_arena_calloc(a, 1, sizeof *h);
  synod__fsm__key_history__init(h);
  size_t n = (size_t)(w->next - w->first), i = 0;
  h->first_revision = w->first;
  h->n_revisions = n;
  h->revisions = fsm_arena_calloc(a, n, sizeof *h->revisions);
  Synod__Fsm__KeyRevision *ms = fsm_arena_calloc(a, n, sizeof *ms);
  struct window_iter iter;
  struct window_item it;
  window_iter_seek(w, w->first, &iter);
  while (i < n && window_iter_next(&iter, &it)) {
    Synod__Fsm__KeyRevision *m = &ms[i];
    synod__fsm__key_revision__init(m);
    m->index = it.index;
    m->time_ms = it.time_ms;
    if (it.data[0] == FSM_KEY_ITEM_GRAVE) {
      grave_encode(f, a, it.pos, m);
    } else {
      m->events.data = (uint8_t *)it.data; /* valid until packed */
      m->events.len = it.len;
    }
    h->revisions[i++] = m;
  }
  img->key_history = h;
}

void fsm_keys_image_encode(const struct fsm *f, struct fsm_arena *a,
                           Synod__Fsm__Image *img) {
  img->key_revision = f->key_revision;
  keys_encode(f, a, img);
  if (f->key_revision > 0) {
    history_encode(f, a, img);
  }
}

/* --------------------------------------------------------------- load */

/* A key as an image may hold it: valid, with revisions up to `max`. */
static bool key_ok(const Synod__Fsm__Key *m, uint64_t max) {
  char msg[SYNOD_ERRMSG_MAX];
  return fsm_key_check(m->key.data, m->key.len, false, msg) == 0 &&
         m->value.len <= UINT32_MAX && m->create_revision >= 1 &&
         m->create_revision <= m->mod_revision && m->mod_revision <= max &&
         m->version >= 1;
}

static struct fsm_key *key_from(const Synod__Fsm__Key *m, bool bound) {
  struct fsm_key *k =
      fsm_key_new(m->key.data, m->key.len, m->value.data, m->value.len, bound);
  k->create_revision = m->create_revision;
  k->mod_revision = m->mod_revision;
  k->version = m->version;
  return k;
}

static int bytes_cmp(const ProtobufCBinaryData *a,
                     const ProtobufCBinaryData *b) {
  struct fsm_name x = {(const char *)a->data, a->len};
  return fsm_name_cmp(&x, (const char *)b->data, b->len);
}

/* Live keys in strictly increasing order, bound to live sessions. */
static int keys_load(struct fsm *t, const Synod__Fsm__Image *img) {
  for (size_t i = 0; i < img->n_keys; i++) {
    const Synod__Fsm__Key *m = img->keys[i];
    struct fsm_session *s = NULL;
    if (!key_ok(m, img->key_revision) ||
        (i > 0 && bytes_cmp(&img->keys[i - 1]->key, &m->key) >= 0) ||
        (m->session_id != 0 &&
         (s = fsm_session_find(t, m->session_id)) == NULL)) {
      return -1;
    }
    struct fsm_key *k = key_from(m, s != NULL);
    struct fsm_name n = {(const char *)k->data, k->key_len};
    otree_insert(&t->keys, &k->by_key, &n);
    k->in_tree = 1;
    t->keys_live++;
    t->keys_bytes += (uint64_t)k->key_len + k->value_len;
    if (s != NULL) {
      fsm_key_bind(&s->lease, s->id, k, false);
    }
  }
  for (struct otree_node *n = otree_first(&t->sessions); n; n = otree_next(n)) {
    struct fsm_session *s = FSM_CONTAINER(n, struct fsm_session, by_id);
    if (s->lease != NULL) {
      fsm_key_lease_sort(s->lease);
    }
  }
  return 0;
}

/* (mod_revision, key) strictly increasing: the order a lease keeps. */
static bool lease_ordered(const Synod__Fsm__Key *a, const Synod__Fsm__Key *b) {
  if (a->mod_revision != b->mod_revision) {
    return a->mod_revision < b->mod_revision;
  }
  return bytes_cmp(&a->key, &b->key) < 0;
}

/* A session end: a session that no longer lives, and the keys it
 * deleted, none put at or after the revision. */
static int grave_load(struct fsm *t, uint64_t rev,
                      const Synod__Fsm__KeyRevision *m) {
  if (m->events.len != 0 || m->n_deleted == 0 ||
      fsm_session_find(t, m->session_id) != NULL) {
    return -1;
  }
  struct fsm_key_lease *l = fsm_xcalloc(1, sizeof *l);
  fsm_list_init(&l->keys);
  fsm_list_init(&l->work_link);
  l->session_id = m->session_id;
  l->ended_revision = rev;
  otree_insert(&t->key_graves, &l->by_revision, &l->ended_revision);
  for (size_t i = 0; i < m->n_deleted; i++) {
    const Synod__Fsm__Key *km = m->deleted[i];
    if (!key_ok(km, rev - 1) || km->session_id != 0 ||
        (i > 0 && !lease_ordered(m->deleted[i - 1], km))) {
      return -1;
    }
    struct fsm_key *k = key_from(km, true);
    struct fsm_key_binding *b = fsm_key_binding(k);
    fsm_list_push_back(&l->keys, &b->lease_link);
    b->lease = l;
    l->keys_n++;
    l->bytes += (uint64_t)k->key_len + k->value_len;
  }
  fsm_key_history_grave(t, l, m->index, m->time_ms);
  return 0;
}

static int history_load(struct fsm *t, const Synod__Fsm__Image *img) {
  const Synod__Fsm__KeyHistory *h = img->key_history;
  uint64_t index = 0, time = 0;
  if (img->key_revision == 0) {
    return h == NULL ? 0 : -1;
  }
  if (h == NULL || h->first_revision == 0 ||
      h->first_revision > img->key_revision ||
      h->n_revisions != img->key_revision - h->first_revision + 1) {
    return -1;
  }
  window_init_at(&t->key_history, h->first_revision);
  for (size_t i = 0; i < h->n_revisions; i++) {
    const Synod__Fsm__KeyRevision *m = h->revisions[i];
    uint64_t rev = h->first_revision + i;
    if (m->index < index || m->index > img->applied_index ||
        m->time_ms < time || m->time_ms > img->time_ms) {
      return -1;
    }
    index = m->index;
    time = m->time_ms;
    if (m->session_id != 0) {
      if (grave_load(t, rev, m) != 0) {
        return -1;
      }
      continue;
    }
    int64_t n = fsm_key_events_check(m->events.data, m->events.len, rev);
    if (n < 1 || m->n_deleted != 0) {
      return -1;
    }
    window_append(&t->key_history, m->index, m->time_ms, m->events.data,
                  m->events.len);
    t->key_history_events += (uint64_t)n;
    t->key_history_bytes += m->events.len;
  }
  return 0;
}

int fsm_keys_image_load(struct fsm *t, const Synod__Fsm__Image *img) {
  t->key_revision = img->key_revision;
  return keys_load(t, img) || history_load(t, img) ? -1 : 0;
}
