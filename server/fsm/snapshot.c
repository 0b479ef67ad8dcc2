/* Snapshots: the whole state as a fsm.Image in canonical order (identical
 * bytes on every replica at one index), its validated restore, and the
 * digest replicas compare. */
#include <stdlib.h>
#include <string.h>

#include "fsm_int.h"
#include "utf8.h"

void *fsm_arena_calloc(struct fsm_arena *a, size_t n, size_t size) {
  if (a->n == a->cap) {
    a->cap = a->cap ? 2 * a->cap : 64;
    a->p = fsm_xrealloc(a->p, a->cap * sizeof *a->p);
  }
  return a->p[a->n++] = fsm_xcalloc(n, size);
}

static void arena_free(struct fsm_arena *a) {
  for (size_t i = 0; i < a->n; i++) {
    free(a->p[i]);
  }
  free(a->p);
}

struct fsm_arena *fsm_arena_new(void) {
  return fsm_xcalloc(1, sizeof(struct fsm_arena));
}

void fsm_arena_free(struct fsm_arena *a) {
  if (a != NULL) {
    arena_free(a);
    free(a);
  }
}

/* ------------------------------------------------------------ encode */

static void session_encode(struct fsm_arena *a, const struct fsm_session *s,
                           Synod__Fsm__Session *m) {
  synod__fsm__session__init(m);
  m->id = s->id;
  m->ttl_ms = s->ttl_ms;
  m->keepalive_ms = s->keepalive_ms;
  m->client_name = s->client_name;
  m->sequence_floor = s->sequence_floor;
  m->n_results = s->results_len;
  m->results = fsm_arena_calloc(a, s->results_len, sizeof *m->results);
  Synod__Fsm__Result *rs = fsm_arena_calloc(a, s->results_len, sizeof *rs);
  for (uint32_t i = 0; i < s->results_len; i++) {
    synod__fsm__result__init(&rs[i]);
    rs[i].sequence = s->results[i].sequence;
    rs[i].pending = s->results[i].pending;
    rs[i].response.data = s->results[i].data;
    rs[i].response.len = s->results[i].len;
    m->results[i] = &rs[i];
  }
}

static void lock_encode(struct fsm_arena *a, const struct fsm_lock *l,
                        Synod__Fsm__Lock *m) {
  synod__fsm__lock__init(m);
  m->name = l->name;
  m->holder_session = l->holder ? l->holder->id : 0;
  m->owner_id = l->owner_id;
  m->token = l->token;
  m->hold_count = l->hold_count;
  m->lock_delay_ms = l->lock_delay_ms;
  m->delay_until_ms = l->delay.armed ? l->delay.due_ms : 0;
  m->n_waiters = l->waiters_len;
  m->waiters = fsm_arena_calloc(a, l->waiters_len, sizeof *m->waiters);
  Synod__Fsm__Waiter *ws = fsm_arena_calloc(a, l->waiters_len, sizeof *ws);
  size_t i = 0;
  for (struct fsm_list *n = l->waiters.next; n != &l->waiters; n = n->next) {
    const struct fsm_waiter *w = FSM_CONTAINER(n, struct fsm_waiter, lock_link);
    synod__fsm__waiter__init(&ws[i]);
    ws[i].session_id = w->session->id;
    ws[i].owner_id = w->owner_id;
    ws[i].sequence = w->sequence;
    ws[i].deadline_ms = w->timeout.due_ms;
    ws[i].lock_delay_ms = w->lock_delay_ms;
    m->waiters[i] = &ws[i];
    i++;
  }
}

static void election_encode(struct fsm_arena *a, const struct fsm_election *e,
                            Synod__Fsm__Election *m) {
  synod__fsm__election__init(m);
  m->name = e->name;
  m->revision = e->revision;
  m->since_ms = e->since_ms;
  m->n_candidates = e->candidates_len;
  m->candidates = fsm_arena_calloc(a, e->candidates_len, sizeof *m->candidates);
  Synod__Fsm__Candidate *cs =
      fsm_arena_calloc(a, e->candidates_len, sizeof *cs);
  size_t i = 0;
  for (struct fsm_list *n = e->candidates.next; n != &e->candidates;
       n = n->next) {
    const struct fsm_candidate *c =
        FSM_CONTAINER(n, struct fsm_candidate, election_link);
    synod__fsm__candidate__init(&cs[i]);
    cs[i].session_id = c->session->id;
    cs[i].value.data = c->value;
    cs[i].value.len = c->value_len;
    m->candidates[i] = &cs[i];
    i++;
  }
}

/* Fills one repeated field from a tree in order: `item` is the size of one
 * message, `fill` encodes one object into it. */
#define IMAGE_FILL(tree, type, member, msgtype, field, enc)                    \
  do {                                                                         \
    size_t i_ = 0;                                                             \
    img->n_##field = (tree).count;                                             \
    img->field = fsm_arena_calloc(a, (tree).count, sizeof *img->field);        \
    msgtype *ms_ = fsm_arena_calloc(a, (tree).count, sizeof *ms_);             \
    for (struct otree_node *n_ = otree_first(&(tree)); n_;                     \
         n_ = otree_next(n_)) {                                                \
      enc(a, FSM_CONTAINER(n_, type, member), &ms_[i_]);                       \
      img->field[i_] = &ms_[i_];                                               \
      i_++;                                                                    \
    }                                                                          \
  } while (0)

static void counter_encode(struct fsm_arena *a, const struct fsm_counter *c,
                           Synod__Fsm__Counter *m) {
  (void)a;
  synod__fsm__counter__init(m);
  m->name = c->name;
  m->value = c->value;
}

static void member_encode(struct fsm_arena *a, const struct fsm_member *mb,
                          Synod__Fsm__Member *m) {
  (void)a;
  synod__fsm__member__init(m);
  m->id = mb->id;
  m->name = mb->name;
  m->peer_address = mb->peer_address;
  m->client_address = mb->client_address;
}

static void channel_encode(struct fsm_arena *a, const struct fsm_channel *c,
                           Synod__Fsm__Channel *m) {
  synod__fsm__channel__init(m);
  m->name = c->name;
  m->limits = fsm_arena_calloc(a, 1, sizeof *m->limits);
  synod__channel_limits__init(m->limits);
  m->limits->max_messages = c->limits.max_messages;
  m->limits->max_bytes = c->limits.max_bytes;
  m->limits->max_age_ms = c->limits.max_age_ms;
  m->limits->max_message_bytes = c->limits.max_message_bytes;
  m->limits->refuse_when_full = c->limits.refuse_when_full;
  m->first_offset = c->window.first;
  size_t n = (size_t)(c->window.next - c->window.first);
  m->n_items = n;
  m->items = fsm_arena_calloc(a, n, sizeof *m->items);
  Synod__Fsm__ChannelItem *items = fsm_arena_calloc(a, n, sizeof *items);
  struct window_iter iter;
  struct window_item it;
  window_iter_seek(&c->window, c->window.first, &iter);
  for (size_t i = 0; i < n && window_iter_next(&iter, &it); i++) {
    synod__fsm__channel_item__init(&items[i]);
    items[i].index = it.index;
    items[i].time_ms = it.time_ms;
    items[i].data.data = (uint8_t *)it.data; /* valid until packed */
    items[i].data.len = it.len;
    m->items[i] = &items[i];
  }
  m->n_ids = c->ids_n;
  m->ids = fsm_arena_calloc(a, c->ids_n, sizeof *m->ids);
  Synod__Fsm__ChannelMessageId *ids =
      fsm_arena_calloc(a, c->ids_n, sizeof *ids);
  for (uint32_t i = 0; i < c->ids_n; i++) {
    const struct fsm_channel_id *x = &c->ids[(c->ids_head + i) % c->ids_cap];
    synod__fsm__channel_message_id__init(&ids[i]);
    ids[i].id = x->id;
    ids[i].first_offset = x->first_offset;
    ids[i].last_offset = x->last_offset;
    ids[i].index = x->index;
    ids[i].time_ms = x->time_ms;
    m->ids[i] = &ids[i];
  }
  m->evicted_index = c->window.evicted_index;
  m->created_index = c->created_index;
  m->n_cursors = c->cursors_n;
  m->cursors = fsm_arena_calloc(a, c->cursors_n, sizeof *m->cursors);
  Synod__Fsm__ChannelCursor *ks = fsm_arena_calloc(a, c->cursors_n, sizeof *ks);
  for (uint32_t i = 0; i < c->cursors_n; i++) {
    synod__fsm__channel_cursor__init(&ks[i]);
    ks[i].name = c->cursors[i].name;
    ks[i].offset = c->cursors[i].offset;
    ks[i].index = c->cursors[i].index;
    m->cursors[i] = &ks[i];
  }
}

static void channels_gone_encode(const struct fsm *f, struct fsm_arena *a,
                                 Synod__Fsm__Image *img) {
  img->channels_gone_forgotten = f->channels_gone_forgotten;
  img->n_channels_gone = f->channels_gone_n;
  img->channels_gone =
      fsm_arena_calloc(a, f->channels_gone_n, sizeof *img->channels_gone);
  Synod__Fsm__ChannelGone *ms =
      fsm_arena_calloc(a, f->channels_gone_n, sizeof *ms);
  for (uint32_t i = 0; i < f->channels_gone_n; i++) {
    const struct fsm_channel_gone *g = &f->channels_gone[i];
    synod__fsm__channel_gone__init(&ms[i]);
    ms[i].name = g->name;
    ms[i].last_index = g->last_index;
    ms[i].last_offset = g->last_offset;
    ms[i].deleted_index = g->deleted_index;
    img->channels_gone[i] = &ms[i];
  }
}

static void image_build(const struct fsm *f, struct fsm_arena *a,
                        Synod__Fsm__Image *img) {
  synod__fsm__image__init(img);
  img->format = 1;
  img->applied_index = f->applied_index;
  img->time_ms = f->time_ms;
  img->token_last = f->token_last;
  if (f->settings.channels_bytes_max != 0 ||
      f->settings.group_checkpoint_bytes_max != 0 ||
      f->settings.key_history_max != 0 ||
      f->settings.key_history_bytes_max != 0 ||
      f->settings.key_value_bytes_max != 0) { /* absent: default */
    img->settings = fsm_arena_calloc(a, 1, sizeof *img->settings);
    synod__fsm__settings__init(img->settings);
    img->settings->channels_bytes_max = f->settings.channels_bytes_max;
    img->settings->group_checkpoint_bytes_max =
        f->settings.group_checkpoint_bytes_max;
    img->settings->key_history_max = f->settings.key_history_max;
    img->settings->key_history_bytes_max = f->settings.key_history_bytes_max;
    img->settings->key_value_bytes_max = f->settings.key_value_bytes_max;
  }
  IMAGE_FILL(f->sessions, struct fsm_session, by_id, Synod__Fsm__Session,
             sessions, session_encode);
  IMAGE_FILL(f->locks, struct fsm_lock, by_name, Synod__Fsm__Lock, locks,
             lock_encode);
  IMAGE_FILL(f->counters, struct fsm_counter, by_name, Synod__Fsm__Counter,
             counters, counter_encode);
  IMAGE_FILL(f->elections, struct fsm_election, by_name, Synod__Fsm__Election,
             elections, election_encode);
  IMAGE_FILL(f->members, struct fsm_member, by_id, Synod__Fsm__Member, members,
             member_encode);
  IMAGE_FILL(f->channels, struct fsm_channel, by_name, Synod__Fsm__Channel,
             channels, channel_encode);
  channels_gone_encode(f, a, img);
  fsm_keys_image_encode(f, a, img);
  fsm_groups_image_encode(f, a, img);
}

int fsm_snapshot_encode(const struct fsm *f, uint8_t **data, size_t *len) {
  struct fsm_arena a = {0};
  Synod__Fsm__Image img;
  image_build(f, &a, &img);
  *len = synod__fsm__image__get_packed_size(&img);
  *data = fsm_xmalloc(*len);
  synod__fsm__image__pack(&img, *data);
  arena_free(&a);
  return 0;
}

/* The image without the record of deleted channels: replicas agree on
 * everything else, but not on that record after an upgrade from a build
 * without it (each then holds the deletions it replayed from its own
 * older image on; they agree again 1,024 deletions later), and it only
 * decides whether a subscription that missed a deletion is told. */
uint64_t fsm_digest(const struct fsm *f) {
  struct fsm_arena a = {0};
  Synod__Fsm__Image img;
  uint8_t *data;
  size_t len;
  uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64 offset basis */
  image_build(f, &a, &img);
  img.n_channels_gone = 0;
  img.channels_gone_forgotten = 0;
  len = synod__fsm__image__get_packed_size(&img);
  data = fsm_xmalloc(len);
  synod__fsm__image__pack(&img, data);
  arena_free(&a);
  for (size_t i = 0; i < len; i++) {
    h ^= data[i];
    h *= 0x100000001b3ull; /* FNV-1a 64 prime */
  }
  free(data);
  return h;
}

/* ------------------------------------------------------------ decode */

/* Each loader returns 0, or -1 when the image breaks an invariant; what it
 * built so far is freed with the temporary state. */

static int image_name_ok(const struct fsm *t, const char *s, size_t *len) {
  char msg[SYNOD_ERRMSG_MAX];
  *len = strlen(s);
  return fsm_name_check(t, "image", s, *len, msg) == 0;
}

static int results_load(const struct fsm *t, struct fsm_session *s,
                        const Synod__Fsm__Session *m) {
  uint64_t prev = m->sequence_floor;
  if (m->n_results > t->opt.results_per_session_max) {
    return -1;
  }
  s->sequence_floor = m->sequence_floor;
  s->results = fsm_xcalloc(m->n_results, sizeof *s->results);
  s->results_cap = (uint32_t)m->n_results;
  for (size_t i = 0; i < m->n_results; i++) {
    const Synod__Fsm__Result *r = m->results[i];
    if (r->sequence <= prev || r->pending != (r->response.len == 0)) {
      return -1;
    }
    if (!r->pending) {
      Synod__Response *x =
          synod__response__unpack(NULL, r->response.len, r->response.data);
      if (x == NULL) {
        return -1;
      }
      synod__response__free_unpacked(x, NULL);
    }
    struct fsm_result *dst = &s->results[s->results_len++];
    dst->sequence = r->sequence;
    dst->pending = r->pending;
    dst->len = r->response.len;
    dst->data = r->pending ? NULL : fsm_xmalloc(r->response.len);
    if (!r->pending) {
      memcpy(dst->data, r->response.data, r->response.len);
    }
    prev = r->sequence;
  }
  return 0;
}

/* Every armed deadline lies after the image's time: apply fires what is
 * due before it returns, so an image never holds an overdue timer. */
static int sessions_load(struct fsm *t, const Synod__Fsm__Image *img) {
  uint64_t prev = 0;
  for (size_t i = 0; i < img->n_sessions; i++) {
    const Synod__Fsm__Session *m = img->sessions[i];
    size_t len = strlen(m->client_name);
    if (m->id <= prev || m->id > img->applied_index || m->ttl_ms == 0 ||
        m->keepalive_ms > img->time_ms ||
        m->keepalive_ms > UINT64_MAX - m->ttl_ms - 1 ||
        m->keepalive_ms + m->ttl_ms < img->time_ms ||
        len > t->opt.name_bytes_max || !utf8_valid(m->client_name, len, NULL)) {
      return -1;
    }
    struct fsm_session *s = fsm_session_insert(
        t, m->id, m->ttl_ms, m->keepalive_ms, m->client_name, len);
    if (s == NULL || results_load(t, s, m) != 0) {
      return -1;
    }
    prev = m->id;
  }
  return 0;
}

static int waiters_load(struct fsm *t, const Synod__Fsm__Image *img,
                        struct fsm_lock *l, const Synod__Fsm__Lock *m) {
  for (size_t i = 0; i < m->n_waiters; i++) {
    const Synod__Fsm__Waiter *wm = m->waiters[i];
    struct fsm_session *s = fsm_session_find(t, wm->session_id);
    if (s == NULL || wm->sequence == 0 || wm->deadline_ms <= img->time_ms ||
        (l->holder == s && l->owner_id == wm->owner_id)) {
      return -1;
    }
    for (size_t j = 0; j < i; j++) {
      if (m->waiters[j]->session_id == wm->session_id &&
          m->waiters[j]->owner_id == wm->owner_id) {
        return -1;
      }
    }
    struct fsm_waiter *w = fsm_xcalloc(1, sizeof *w);
    w->lock = l;
    w->session = s;
    w->owner_id = wm->owner_id;
    w->sequence = wm->sequence;
    w->lock_delay_ms = wm->lock_delay_ms;
    w->queued_ms = UINT64_MAX; /* not in the image */
    fsm_list_push_back(&l->waiters, &w->lock_link);
    fsm_list_push_back(&s->waiters, &w->session_link);
    l->waiters_len++;
    t->stats.lock_waiters++;
    if (fsm_timer_arm(t, &w->timeout, FSM_TIMER_WAITER, wm->deadline_ms)) {
      return -1;
    }
  }
  return 0;
}

/* A held lock has a token and a hold count and no lock-delay; a free one
 * exists only while in lock-delay. */
static int lock_holder_load(struct fsm *t, const Synod__Fsm__Image *img,
                            struct fsm_lock *l, const Synod__Fsm__Lock *m) {
  if (m->holder_session == 0) {
    if (m->owner_id || m->token || m->hold_count || m->lock_delay_ms ||
        m->delay_until_ms <= img->time_ms) {
      return -1;
    }
    return fsm_timer_arm(t, &l->delay, FSM_TIMER_DELAY, m->delay_until_ms);
  }
  struct fsm_session *s = fsm_session_find(t, m->holder_session);
  if (s == NULL || m->hold_count == 0 || m->token == 0 ||
      m->token > img->token_last || m->delay_until_ms != 0) {
    return -1;
  }
  l->holder = s;
  l->owner_id = m->owner_id;
  l->token = m->token;
  l->hold_count = m->hold_count;
  l->lock_delay_ms = m->lock_delay_ms;
  fsm_list_push_back(&s->locks, &l->holder_link);
  t->stats.locks_held++;
  return 0;
}

static int locks_load(struct fsm *t, const Synod__Fsm__Image *img) {
  struct fsm_name prev = {NULL, 0};
  for (size_t i = 0; i < img->n_locks; i++) {
    const Synod__Fsm__Lock *m = img->locks[i];
    size_t len;
    if (!image_name_ok(t, m->name, &len) ||
        (prev.s && fsm_name_cmp(&prev, m->name, len) >= 0)) {
      return -1;
    }
    struct fsm_lock *l = fsm_lock_new(m->name, len);
    otree_insert(&t->locks, &l->by_name, &(struct fsm_name){l->name, len});
    if (lock_holder_load(t, img, l, m) != 0 ||
        waiters_load(t, img, l, m) != 0) {
      return -1;
    }
    prev = (struct fsm_name){l->name, len};
  }
  return 0;
}

static int counters_load(struct fsm *t, const Synod__Fsm__Image *img) {
  struct fsm_name prev = {NULL, 0};
  for (size_t i = 0; i < img->n_counters; i++) {
    const Synod__Fsm__Counter *m = img->counters[i];
    size_t len;
    if (!image_name_ok(t, m->name, &len) ||
        (prev.s && fsm_name_cmp(&prev, m->name, len) >= 0)) {
      return -1;
    }
    struct fsm_counter *c = fsm_counter_new(m->name, len, m->value);
    otree_insert(&t->counters, &c->by_name, &(struct fsm_name){c->name, len});
    prev = (struct fsm_name){c->name, len};
  }
  return 0;
}

static int candidates_load(struct fsm *t, struct fsm_election *e,
                           const Synod__Fsm__Election *m) {
  for (size_t i = 0; i < m->n_candidates; i++) {
    const Synod__Fsm__Candidate *cm = m->candidates[i];
    struct fsm_session *s = fsm_session_find(t, cm->session_id);
    if (s == NULL || cm->value.len > t->opt.value_bytes_max) {
      return -1;
    }
    for (size_t j = 0; j < i; j++) {
      if (m->candidates[j]->session_id == cm->session_id) {
        return -1;
      }
    }
    fsm_candidate_add(e, s, cm->value.data, cm->value.len);
  }
  return 0;
}

static int elections_load(struct fsm *t, const Synod__Fsm__Image *img) {
  struct fsm_name prev = {NULL, 0};
  for (size_t i = 0; i < img->n_elections; i++) {
    const Synod__Fsm__Election *m = img->elections[i];
    size_t len;
    if (!image_name_ok(t, m->name, &len) ||
        (prev.s && fsm_name_cmp(&prev, m->name, len) >= 0) ||
        m->n_candidates == 0 || m->revision == 0 ||
        m->revision > img->applied_index) {
      return -1;
    }
    struct fsm_election *e = fsm_election_new(m->name, len);
    e->revision = m->revision;
    e->since_ms = m->since_ms;
    otree_insert(&t->elections, &e->by_name, &(struct fsm_name){e->name, len});
    if (candidates_load(t, e, m) != 0) {
      return -1;
    }
    prev = (struct fsm_name){e->name, len};
  }
  return 0;
}

static int members_load(struct fsm *t, const Synod__Fsm__Image *img) {
  uint64_t prev = 0;
  for (size_t i = 0; i < img->n_members; i++) {
    const Synod__Fsm__Member *m = img->members[i];
    if (m->id <= prev || m->remove || m->name[0] == '\0' ||
        strlen(m->name) > FSM_MEMBER_NAME_MAX ||
        strlen(m->peer_address) > FSM_MEMBER_ADDRESS_MAX ||
        strlen(m->client_address) > FSM_MEMBER_ADDRESS_MAX) {
      return -1;
    }
    fsm_member_put(t, m->id, m->name, m->peer_address, m->client_address);
    prev = m->id;
  }
  return 0;
}

static int channel_items_load(struct fsm *t, struct fsm_channel *c,
                              const Synod__Fsm__Channel *m,
                              const Synod__Fsm__Image *img) {
  uint64_t index = 0, time = 0, bytes = 0;
  if (m->n_items > c->limits.max_messages) {
    return -1;
  }
  for (size_t i = 0; i < m->n_items; i++) {
    const Synod__Fsm__ChannelItem *it = m->items[i];
    if (it->index < index || it->index > img->applied_index ||
        it->time_ms < time || it->time_ms > img->time_ms ||
        it->data.len > c->limits.max_message_bytes) {
      return -1;
    }
    index = it->index;
    time = it->time_ms;
    bytes += it->data.len;
    window_append(&c->window, it->index, it->time_ms, it->data.data,
                  it->data.len);
  }
  t->channels_bytes += bytes;
  return bytes <= c->limits.max_bytes ? 0 : -1;
}

static int channel_ids_load(const struct fsm *t, struct fsm_channel *c,
                            const Synod__Fsm__Channel *m) {
  if (m->n_ids > t->opt.channel_ids_max) {
    return -1;
  }
  for (size_t i = 0; i < m->n_ids; i++) {
    const Synod__Fsm__ChannelMessageId *x = m->ids[i];
    if (x->id[0] == '\0' || x->first_offset == 0 ||
        x->last_offset < x->first_offset || x->last_offset >= c->window.next) {
      return -1;
    }
    fsm_channel_id_push(c, x->id, x->first_offset, x->last_offset, x->index,
                        x->time_ms);
  }
  return 0;
}

/* Cursors in strictly increasing name order, below the next offset. */
static int channel_cursors_load(const struct fsm *t, struct fsm_channel *c,
                                const Synod__Fsm__Channel *m,
                                const Synod__Fsm__Image *img) {
  if (m->n_cursors > FSM_CHANNEL_CURSORS_MAX) {
    return -1;
  }
  for (size_t i = 0; i < m->n_cursors; i++) {
    const Synod__Fsm__ChannelCursor *k = m->cursors[i];
    size_t len;
    if (!image_name_ok(t, k->name, &len) || k->offset >= c->window.next ||
        k->index > img->applied_index ||
        (i > 0 && strcmp(m->cursors[i - 1]->name, k->name) >= 0)) {
      return -1;
    }
    fsm_channel_cursor_put(c, k->name, k->offset, k->index);
  }
  return 0;
}

static int channels_load(struct fsm *t, const Synod__Fsm__Image *img) {
  struct fsm_name prev = {NULL, 0};
  for (size_t i = 0; i < img->n_channels; i++) {
    const Synod__Fsm__Channel *m = img->channels[i];
    const Synod__ChannelLimits *l = m->limits;
    size_t len;
    if (!image_name_ok(t, m->name, &len) ||
        (prev.s && fsm_name_cmp(&prev, m->name, len) >= 0) || l == NULL ||
        l->max_messages == 0 || l->max_bytes == 0 ||
        l->max_message_bytes == 0 ||
        l->max_message_bytes > t->opt.channel_message_bytes_cap ||
        m->first_offset == 0) {
      return -1;
    }
    struct fsm_channel_limits lim = {l->max_messages, l->max_bytes,
                                     l->max_age_ms, l->max_message_bytes,
                                     l->refuse_when_full};
    struct fsm_channel *c = fsm_channel_new(t, m->name, len, &lim);
    otree_insert(&t->channels, &c->by_name, &(struct fsm_name){c->name, len});
    window_init_at(&c->window, m->first_offset);
    if (channel_items_load(t, c, m, img) || channel_ids_load(t, c, m) ||
        channel_cursors_load(t, c, m, img) ||
        m->evicted_index > img->applied_index ||
        m->created_index > img->applied_index ||
        (m->n_items > 0 && m->evicted_index > m->items[0]->index)) {
      return -1;
    }
    c->window.evicted_index = m->evicted_index;
    c->created_index = m->created_index;
    prev = (struct fsm_name){c->name, len};
  }
  return 0;
}

/* The deletions in order of their indexes, each after its channel's last
 * message and at most the image's index; the forgotten one before them. */
static int channels_gone_load(struct fsm *t, const Synod__Fsm__Image *img) {
  uint64_t prev = img->channels_gone_forgotten;
  if (img->n_channels_gone > FSM_CHANNELS_GONE_MAX ||
      prev > img->applied_index) {
    return -1;
  }
  t->channels_gone_forgotten = prev;
  for (size_t i = 0; i < img->n_channels_gone; i++) {
    const Synod__Fsm__ChannelGone *m = img->channels_gone[i];
    size_t len;
    if (!image_name_ok(t, m->name, &len) || m->deleted_index <= prev ||
        m->deleted_index > img->applied_index ||
        m->last_index >= m->deleted_index) {
      return -1;
    }
    fsm_channel_gone_push(t, m->name, len, m->last_index, m->last_offset,
                          m->deleted_index);
    prev = m->deleted_index;
  }
  return 0;
}

/* A pending result is a queued acquire's: each must match a waiter. */
static int pending_check(const struct fsm *t) {
  size_t pending = 0, matched = 0;
  for (struct otree_node *n = otree_first(&t->sessions); n; n = otree_next(n)) {
    struct fsm_session *s = FSM_CONTAINER(n, struct fsm_session, by_id);
    for (uint32_t i = 0; i < s->results_len; i++) {
      pending += s->results[i].pending != 0;
    }
    for (struct fsm_list *l = s->waiters.next; l != &s->waiters; l = l->next) {
      struct fsm_waiter *w = FSM_CONTAINER(l, struct fsm_waiter, session_link);
      struct fsm_result *r = fsm_session_result(s, w->sequence);
      matched += r && r->pending;
    }
  }
  return pending == matched ? 0 : -1;
}

/* Loads, then re-encodes and compares: an image that is not in canonical
 * form (order, duplicates, unknown fields) is refused too. */
static int image_load(struct fsm *t, const Synod__Fsm__Image *img,
                      const uint8_t *data, size_t len) {
  if (img->format != 1) {
    return -1;
  }
  t->applied_index = img->applied_index;
  t->time_ms = img->time_ms;
  t->token_last = img->token_last;
  if (img->settings != NULL) {
    if (img->settings->group_checkpoint_bytes_max >
            FSM_GROUP_CHECKPOINT_BYTES_CAP ||
        img->settings->key_value_bytes_max > FSM_KEY_VALUE_BYTES_CAP) {
      return -1;
    }
    t->settings.channels_bytes_max = img->settings->channels_bytes_max;
    t->settings.group_checkpoint_bytes_max =
        img->settings->group_checkpoint_bytes_max;
    t->settings.key_history_max = img->settings->key_history_max;
    t->settings.key_history_bytes_max = img->settings->key_history_bytes_max;
    t->settings.key_value_bytes_max = img->settings->key_value_bytes_max;
  }
  if (sessions_load(t, img) || locks_load(t, img) || counters_load(t, img) ||
      elections_load(t, img) || members_load(t, img) || channels_load(t, img) ||
      channels_gone_load(t, img) || fsm_keys_image_load(t, img) ||
      fsm_groups_image_load(t, img) || pending_check(t)) {
    return -1;
  }
  uint8_t *again;
  size_t again_len;
  fsm_snapshot_encode(t, &again, &again_len);
  int same = again_len == len && memcmp(again, data, len) == 0;
  free(again);
  return same ? 0 : -1;
}

int fsm_snapshot_decode(struct fsm *f, const uint8_t *data, size_t len) {
  Synod__Fsm__Image *img = synod__fsm__image__unpack(NULL, len, data);
  if (img == NULL) {
    return SYNOD_ECORRUPT;
  }
  struct fsm t;
  memset(&t, 0, sizeof t);
  t.opt = f->opt;
  fsm_state_init(&t);
  int bad = image_load(&t, img, data, len);
  synod__fsm__image__free_unpacked(img, NULL);
  if (bad) {
    fsm_state_clear(&t);
    return SYNOD_ECORRUPT;
  }
  /* The trees' nodes never point at the tree heads, so moving the heads
   * moves the state. */
  fsm_output_reset(f);
  fsm_state_clear(f);
  f->applied_index = t.applied_index;
  f->time_ms = t.time_ms;
  f->token_last = t.token_last;
  f->sessions = t.sessions;
  f->locks = t.locks;
  f->counters = t.counters;
  f->elections = t.elections;
  f->members = t.members;
  f->channels = t.channels;
  f->channels_bytes = t.channels_bytes;
  f->channels_gone = t.channels_gone;
  f->channels_gone_n = t.channels_gone_n;
  f->channels_gone_forgotten = t.channels_gone_forgotten;
  f->keys = t.keys;
  f->keys_live = t.keys_live;
  f->keys_bytes = t.keys_bytes;
  f->key_revision = t.key_revision;
  f->key_history = t.key_history;
  f->key_history_events = t.key_history_events;
  f->key_history_bytes = t.key_history_bytes;
  f->key_graves = t.key_graves; /* nothing on t's work list */
  f->settings = t.settings;
  f->groups = t.groups;
  f->group_members = t.group_members;
  f->groups_bytes = t.groups_bytes;
  f->timers = t.timers;
  f->stats.locks_held = t.stats.locks_held;
  f->stats.lock_waiters = t.stats.lock_waiters;
  return 0;
}
