/* Groups (issue 23): members in join order under their sessions, views
 * dense from 1, messages to the group or to one member, state requests to
 * the coordinator and checkpoints, all as items of ONE retained window
 * (window.c) per group, in the cluster's total order.
 *
 * An item is packed into the window as its kind byte and then:
 *   VIEW_FULL      view_id, members, joined, left (varints), then each
 *                  joined member as str(name) str(data) varint(session),
 *                  then each left member as str(name) str(data)
 *                  varint(session) varint(joined_offset)
 *   VIEW           (older images only) the same, each left member as
 *                  str(name) alone
 *   MESSAGE        str(to) str(from), then the data to the end
 *   STATE_REQUEST  str(to) str(from); to == from is the EMPTY answer
 *                  (the requester became the coordinator)
 *   CHECKPOINT     varint(offset) varint(bytes) str(from)
 * where str(s) is varint(length) and the bytes. A view item holds the
 * change from the view before, not the whole view, so a join storm costs
 * O(members) and not O(members^2); the full view is state (GroupViewGet,
 * the join's answer), and a subscriber keeps it from its own join on.
 * Because a leave records the whole member, the view in effect at any
 * retained offset is exact: the current one undone by the view items
 * after it (fsm_group_view_at), even for a member that joined before the
 * retained window. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "fsm_int.h"

int fsm_group_cmp(const void *key, const struct otree_node *n) {
  const struct fsm_group *g = FSM_CONTAINER(n, struct fsm_group, by_name);
  return fsm_name_cmp(key, g->name, g->name_len);
}

struct fsm_group *fsm_group_find(const struct fsm *f, const char *name,
                                 size_t len) {
  struct fsm_name k = {name, len};
  struct otree_node *n = otree_find(&f->groups, &k);
  return n ? FSM_CONTAINER(n, struct fsm_group, by_name) : NULL;
}

struct fsm_group *fsm_group_new(struct fsm *f, const char *name, size_t len) {
  struct fsm_group *g = fsm_xcalloc(1, sizeof *g);
  g->name = fsm_xstrndup(name, len);
  g->name_len = len;
  g->created_index = f->index;
  fsm_list_init(&g->members);
  fsm_list_init(&g->requests);
  window_init(&g->window);
  g->ids_cap = f->opt.channel_ids_max;
  g->ids = fsm_xcalloc(g->ids_cap, sizeof *g->ids);
  return g;
}

static void member_free(struct fsm_group_member *m) {
  free(m->name);
  free(m->data);
  free(m);
}

static void upload_free(struct fsm_group_upload *u) {
  free(u->member);
  free(u->data);
}

/* Frees g with its members (unlinking them from nothing else): for
 * teardown and for a group deleted after its members are gone. */
void fsm_group_free(struct fsm_group *g) {
  if (g == NULL) {
    return;
  }
  while (!fsm_list_empty(&g->members)) {
    struct fsm_list *n = g->members.next;
    fsm_list_remove(n);
    member_free(FSM_CONTAINER(n, struct fsm_group_member, group_link));
  }
  window_close(&g->window);
  for (uint32_t i = 0; g->ids != NULL && i < g->ids_n; i++) {
    free(g->ids[(g->ids_head + i) % g->ids_cap].id);
  }
  free(g->ids);
  for (uint32_t i = 0; i < g->uploads_n; i++) {
    upload_free(&g->uploads[i]);
  }
  free(g->uploads);
  free(g->ckpt);
  free(g->ckpt_member);
  free(g->name);
  free(g);
}

void fsm_groups_clear(struct fsm *f) {
  struct otree_node *n;
  while ((n = otree_first(&f->groups))) {
    otree_remove(&f->groups, n);
    fsm_group_free(FSM_CONTAINER(n, struct fsm_group, by_name));
  }
  f->group_members = f->groups_bytes = 0;
}

struct fsm_group_member *
fsm_group_member_add(struct fsm *f, struct fsm_group *g, struct fsm_session *s,
                     const char *name, size_t len, const uint8_t *data,
                     size_t data_len) {
  struct fsm_group_member *m = fsm_xcalloc(1, sizeof *m);
  m->group = g;
  m->session = s;
  m->name = fsm_xstrndup(name, len);
  m->name_len = len;
  m->data = fsm_xmalloc(data_len);
  if (data_len) {
    memcpy(m->data, data, data_len);
  }
  m->data_len = data_len;
  fsm_list_init(&m->request_link);
  fsm_list_push_back(&g->members, &m->group_link);
  fsm_list_push_back(&s->groups, &m->session_link);
  g->members_n++;
  f->group_members++;
  return m;
}

static struct fsm_group_member *member_find(const struct fsm_group *g,
                                            const char *name, size_t len) {
  for (struct fsm_list *n = g->members.next; n != &g->members; n = n->next) {
    struct fsm_group_member *m =
        FSM_CONTAINER(n, struct fsm_group_member, group_link);
    if (m->name_len == len && memcmp(m->name, name, len) == 0) {
      return m;
    }
  }
  return NULL;
}

static struct fsm_group_member *group_coordinator(const struct fsm_group *g) {
  return fsm_list_empty(&g->members)
             ? NULL
             : FSM_CONTAINER(g->members.next, struct fsm_group_member,
                             group_link);
}

bool fsm_group_ckpt_usable(const struct fsm_group *g) {
  return g->has_ckpt && g->ckpt_offset + 1 >= g->window.first;
}

void fsm_group_after_ckpt_count(struct fsm_group *g) {
  struct window_iter it;
  struct window_item x;
  g->after_ckpt_bytes = 0;
  if (!g->has_ckpt) {
    return;
  }
  window_iter_seek(&g->window, g->ckpt_offset + 1, &it);
  while (window_iter_next(&it, &x)) {
    g->after_ckpt_bytes += x.len;
  }
}

/* ------------------------------------------------------------ uploads */

/* The slot of session_id's upload, or where it would go. */
static uint32_t upload_slot(const struct fsm_group *g, uint64_t session_id,
                            bool *found) {
  uint32_t i = 0;
  while (i < g->uploads_n && g->uploads[i].session_id < session_id) {
    i++;
  }
  *found = i < g->uploads_n && g->uploads[i].session_id == session_id;
  return i;
}

static void upload_drop(struct fsm *f, struct fsm_group *g, uint32_t i) {
  f->groups_bytes -= g->uploads[i].total;
  upload_free(&g->uploads[i]);
  memmove(&g->uploads[i], &g->uploads[i + 1],
          (g->uploads_n - i - 1) * sizeof *g->uploads);
  g->uploads_n--;
}

/* Opens an upload at slot i (the caller checked the caps). */
static struct fsm_group_upload *upload_open(struct fsm *f, struct fsm_group *g,
                                            uint32_t i, uint64_t session_id,
                                            const char *member, uint64_t offset,
                                            uint64_t total) {
  g->uploads =
      fsm_xrealloc(g->uploads, (g->uploads_n + 1) * sizeof *g->uploads);
  memmove(&g->uploads[i + 1], &g->uploads[i],
          (g->uploads_n - i) * sizeof *g->uploads);
  g->uploads_n++;
  struct fsm_group_upload *u = &g->uploads[i];
  *u = (struct fsm_group_upload){
      session_id,        fsm_xstrndup(member, strlen(member)), offset, total, 0,
      fsm_xmalloc(total)};
  f->groups_bytes += total;
  return u;
}

/* -------------------------------------------------------------- items */

/* A growable buffer for packing one item. */
struct gbuf {
  uint8_t *p;
  size_t len, cap;
};

static void gb_put(struct gbuf *b, const void *data, size_t n) {
  if (b->len + n > b->cap) {
    b->cap = (b->len + n) * 2 + 32;
    b->p = fsm_xrealloc(b->p, b->cap);
  }
  if (n) {
    memcpy(b->p + b->len, data, n);
  }
  b->len += n;
}

static void gb_varint(struct gbuf *b, uint64_t v) {
  uint8_t tmp[10];
  size_t n = 0;
  do {
    tmp[n] = (uint8_t)(v & 0x7f);
    v >>= 7;
    tmp[n++] |= v ? 0x80 : 0;
  } while (v);
  gb_put(b, tmp, n);
}

static void gb_str(struct gbuf *b, const void *s, size_t n) {
  gb_varint(b, n);
  gb_put(b, s, n);
}

static void gb_kind(struct gbuf *b, uint8_t kind) {
  gb_put(b, &kind, 1);
}

/* Makes room for an item of `bytes` in g: drops its oldest items while a
 * limit would be passed. A strict (send) item that cannot fit even in an
 * empty window is refused, with nothing changed; the others (views,
 * state requests, notices: small, and never refused) always go in. */
static int group_room(struct fsm *f, struct fsm_group *g, uint64_t bytes,
                      bool strict, char *msg) {
  const struct fsm_options *o = &f->opt;
  uint64_t others = f->groups_bytes - g->window.bytes;
  if (strict &&
      (bytes > o->group_bytes_max || others + bytes > o->groups_bytes_max)) {
    errmsg_set(msg,
               "group send: %" PRIu64 " bytes do not fit in \"%.64s\" (at "
               "most %" PRIu64 "; %" PRIu64 " of the server's %" PRIu64
               " retained elsewhere)",
               bytes, g->name, o->group_bytes_max, others, o->groups_bytes_max);
    return SYNOD_ELIMIT;
  }
  while (g->window.next > g->window.first &&
         (g->window.next - g->window.first + 1 > o->group_items_max ||
          g->window.bytes + bytes > o->group_bytes_max ||
          f->groups_bytes + bytes > o->groups_bytes_max)) {
    uint64_t before = g->window.bytes;
    bool after_ckpt = g->has_ckpt && g->window.first > g->ckpt_offset;
    g->ckpt_went_stale |= g->has_ckpt && g->window.first == g->ckpt_offset + 1;
    window_evict(&g->window);
    f->groups_bytes -= before - g->window.bytes;
    if (after_ckpt) {
      g->after_ckpt_bytes -= before - g->window.bytes;
    }
  }
  return 0;
}

/* Appends the packed item (taking b's memory) and says so in one
 * GROUP_APPENDED event per group per entry. Returns its offset. */
static uint64_t group_put(struct fsm *f, struct fsm_group *g, struct gbuf *b) {
  (void)group_room(f, g, b->len, false, NULL);
  uint64_t offset = g->window.next;
  window_append(&g->window, f->index, f->time_ms, b->p, b->len);
  f->groups_bytes += b->len;
  if (g->has_ckpt) {
    g->after_ckpt_bytes += b->len;
  }
  free(b->p);
  *b = (struct gbuf){0};
  struct fsm_event *e = f->events_len ? &f->events[f->events_len - 1] : NULL;
  if (e == NULL || e->type != FSM_EVENT_GROUP_APPENDED ||
      strcmp(e->name, g->name) != 0) {
    e = fsm_event_push(f, FSM_EVENT_GROUP_APPENDED);
    e->name = fsm_output_strdup(f, g->name, g->name_len);
  }
  e->last_index = f->index;
  e->last_offset = offset;
  return offset;
}

/* A state request to `to` from `from`, or from nobody (NULL: the
 * replicas ask, see ckpt_refresh). */
static uint64_t state_request_put(struct fsm *f, struct fsm_group *g,
                                  const struct fsm_group_member *to,
                                  const struct fsm_group_member *from) {
  struct gbuf b = {0};
  gb_kind(&b, FSM_GROUP_ITEM_STATE_REQUEST);
  gb_str(&b, to->name, to->name_len);
  gb_str(&b, from ? from->name : "", from ? from->name_len : 0);
  return group_put(f, g, &b);
}

/* Whether `items` of `bytes` after a group's checkpoint fill at least
 * `quarters` / 4 of its window, in items or in bytes. */
static bool ckpt_behind(const struct fsm *f, uint64_t items, uint64_t bytes,
                        unsigned quarters) {
  return items >= f->opt.group_items_max / 4 * quarters ||
         bytes >= f->opt.group_bytes_max / 4 * quarters;
}

/* The group keeps every item back to its latest checkpoint, so that a
 * joiner gets the checkpoint and the items after it with no other member
 * alive. The window is bounded, though: when the items after the
 * checkpoint come to fill half of it, and again three quarters (each
 * once: crossed by the item just appended, of `added` bytes), or the
 * coordinator changes while they fill half or more, the replicas ask the
 * coordinator for a newer checkpoint: a state request from nobody (member
 * ""), which it answers like any other. If none comes before the window
 * is full, the oldest items go as before, and a joiner's request goes to
 * the coordinator; the coordinator is asked then too, as the checkpoint
 * goes stale (as it does before half the window when the server-wide
 * bound on groups' bytes binds first). Without a checkpoint nothing is
 * asked: the group does not use them. */
static void ckpt_refresh(struct fsm *f, struct fsm_group *g, uint64_t added,
                         bool new_coordinator) {
  struct fsm_group_member *c = group_coordinator(g);
  bool went_stale = g->ckpt_went_stale;
  g->ckpt_went_stale = false;
  if (went_stale && c != NULL) {
    (void)state_request_put(f, g, c, NULL);
    g->ckpt_went_stale = false; /* asked already */
    return;
  }
  if (!g->has_ckpt || c == NULL || !fsm_group_ckpt_usable(g)) {
    return;
  }
  uint64_t items = g->window.next - 1 - g->ckpt_offset;
  uint64_t bytes = g->after_ckpt_bytes;
  bool ask = new_coordinator && ckpt_behind(f, items, bytes, 2);
  for (unsigned q = 2; q <= 3 && !ask && added > 0; q++) {
    ask = ckpt_behind(f, items, bytes, q) &&
          !ckpt_behind(f, items - 1, bytes - added, q);
  }
  if (ask) {
    (void)state_request_put(f, g, c, NULL);
    g->ckpt_went_stale = false; /* asked already */
  }
}

static uint64_t group_append(struct fsm *f, struct fsm_group *g,
                             struct gbuf *b) {
  uint64_t len = b->len;
  uint64_t offset = group_put(f, g, b);
  ckpt_refresh(f, g, len, false);
  return offset;
}

static uint64_t append_state_request(struct fsm *f, struct fsm_group *g,
                                     const struct fsm_group_member *to,
                                     const struct fsm_group_member *from) {
  uint64_t offset = state_request_put(f, g, to, from);
  ckpt_refresh(f, g, 0, false);
  return offset;
}

/* Appends the next view: `joined` (already in the member list, at its
 * end) and `left` (still in it, about to go); members is the count
 * after. */
static uint64_t view_append(struct fsm *f, struct fsm_group *g,
                            struct fsm_group_member **joined, size_t nj,
                            struct fsm_group_member **left, size_t nl,
                            uint32_t members) {
  struct gbuf b = {0};
  gb_kind(&b, FSM_GROUP_ITEM_VIEW_FULL);
  gb_varint(&b, ++g->view_id);
  gb_varint(&b, members);
  gb_varint(&b, nj);
  gb_varint(&b, nl);
  for (size_t i = 0; i < nj; i++) {
    gb_str(&b, joined[i]->name, joined[i]->name_len);
    gb_str(&b, joined[i]->data, joined[i]->data_len);
    gb_varint(&b, joined[i]->session->id);
  }
  for (size_t i = 0; i < nl; i++) {
    gb_str(&b, left[i]->name, left[i]->name_len);
    gb_str(&b, left[i]->data, left[i]->data_len);
    gb_varint(&b, left[i]->session->id);
    gb_varint(&b, left[i]->joined_offset);
  }
  g->view_offset = group_append(f, g, &b);
  for (size_t i = 0; i < nj; i++) {
    joined[i]->joined_offset = g->view_offset;
  }
  return g->view_offset;
}

/* After a view change: pending state requests follow a new coordinator
 * (sent again to it, in request order). A requester that is now the
 * coordinator itself is answered EMPTY: its request addressed to itself
 * (GroupStateRequested.empty, fsm_group_item_empty), which tells it that
 * no one is left to ask, so it starts from nothing; it is no longer
 * pending. Its own request would otherwise reach a member that waits for
 * the state, not one that gives it: nobody would answer. */
static void requests_follow(struct fsm *f, struct fsm_group *g,
                            uint64_t old_coord_joined) {
  struct fsm_group_member *c = group_coordinator(g);
  if (c == NULL || c->joined_offset == old_coord_joined) {
    return;
  }
  ckpt_refresh(f, g, 0, true);
  struct fsm_list *n = g->requests.next;
  while (n != &g->requests) {
    struct fsm_group_member *m =
        FSM_CONTAINER(n, struct fsm_group_member, request_link);
    n = n->next;
    uint64_t at = append_state_request(f, g, c, m);
    if (m == c) {
      m->request_offset = 0;
      fsm_list_remove(&m->request_link);
    } else {
      m->request_offset = at;
    }
  }
}

/* Unlinks and frees m; its uploads and pending request go with it. */
static void member_remove(struct fsm *f, struct fsm_group *g,
                          struct fsm_group_member *m) {
  for (uint32_t i = 0; i < g->uploads_n;) {
    if (g->uploads[i].session_id == m->session->id &&
        strcmp(g->uploads[i].member, m->name) == 0) {
      upload_drop(f, g, i);
    } else {
      i++;
    }
  }
  fsm_list_remove(&m->group_link);
  fsm_list_remove(&m->session_link);
  fsm_list_remove(&m->request_link);
  g->members_n--;
  f->group_members--;
  member_free(m);
}

/* Deletes an empty group: its items, checkpoint and ids go (the items
 * into the event, for subscriptions still behind). */
static void group_delete(struct fsm *f, struct fsm_group *g) {
  struct fsm_event *e = fsm_event_push(f, FSM_EVENT_GROUP_DELETED);
  e->name = fsm_output_strdup(f, g->name, g->name_len);
  e->last_index = g->window.last_index;
  e->last_offset = g->window.next - 1;
  for (uint32_t i = g->uploads_n; i > 0; i--) {
    upload_drop(f, g, i - 1);
  }
  f->groups_bytes -= g->window.bytes + g->ckpt_len;
  fsm_event_window_keep(e, &g->window); /* its last views go to readers */
  otree_remove(&f->groups, &g->by_name);
  fsm_group_free(g);
}

/* Removes `left` (all members of g) in one new view. */
static void members_leave(struct fsm *f, struct fsm_group *g,
                          struct fsm_group_member **left, size_t n) {
  uint64_t coord = group_coordinator(g)->joined_offset;
  view_append(f, g, NULL, 0, left, n, g->members_n - (uint32_t)n);
  for (size_t i = 0; i < n; i++) {
    member_remove(f, g, left[i]);
  }
  if (g->members_n == 0) {
    group_delete(f, g);
  } else {
    requests_follow(f, g, coord);
  }
}

/* ------------------------------------------------------------ ids */

static struct fsm_channel_id *id_at(const struct fsm_group *g, uint32_t i) {
  return &g->ids[(g->ids_head + i) % g->ids_cap];
}

static void ids_expire(const struct fsm *f, struct fsm_group *g) {
  while (g->ids_n > 0 &&
         id_at(g, 0)->time_ms + f->opt.channel_id_window_ms <= f->time_ms) {
    free(id_at(g, 0)->id);
    g->ids_head = (g->ids_head + 1) % g->ids_cap;
    g->ids_n--;
  }
}

/* A message id still in the window (one past it counts as gone even
 * before ids_expire drops it: a refused send must change nothing). */
static const struct fsm_channel_id *
ids_find(const struct fsm *f, const struct fsm_group *g, const char *id) {
  for (uint32_t i = 0; i < g->ids_n; i++) {
    const struct fsm_channel_id *x = id_at(g, i);
    if (x->time_ms + f->opt.channel_id_window_ms > f->time_ms &&
        strcmp(x->id, id) == 0) {
      return x;
    }
  }
  return NULL;
}

static void ids_push(struct fsm_group *g, const char *id, uint64_t offset,
                     uint64_t index, uint64_t time_ms) {
  if (g->ids_n == g->ids_cap) {
    free(id_at(g, 0)->id);
    g->ids_head = (g->ids_head + 1) % g->ids_cap;
    g->ids_n--;
  }
  *id_at(g, g->ids_n++) = (struct fsm_channel_id){
      fsm_xstrndup(id, strlen(id)), offset, offset, index, time_ms};
}

/* ------------------------------------------------------------ replies */

struct fsm_arena *fsm_reply_arena(struct fsm_reply *r) {
  if (r->arena == NULL) {
    r->arena = fsm_arena_new();
  }
  return r->arena;
}

/* The view of g into v; with members, the full list (arena memory,
 * borrowing the members' strings). */
void fsm_group_view_fill(const struct fsm_group *g, struct fsm_arena *a,
                         Synod__GroupView *v) {
  synod__group_view__init(v);
  v->view_id = g->view_id;
  v->offset = g->view_offset;
  if (a == NULL) {
    return;
  }
  v->members = fsm_arena_calloc(a, g->members_n, sizeof *v->members);
  Synod__GroupMember *ms = fsm_arena_calloc(a, g->members_n, sizeof *ms);
  for (struct fsm_list *n = g->members.next; n != &g->members; n = n->next) {
    const struct fsm_group_member *m =
        FSM_CONTAINER(n, struct fsm_group_member, group_link);
    Synod__GroupMember *x = &ms[v->n_members];
    synod__group_member__init(x);
    x->name = m->name;
    x->data.data = m->data;
    x->data.len = m->data_len;
    x->session_id = m->session->id;
    x->joined_offset = m->joined_offset;
    v->members[v->n_members++] = x;
  }
}

void fsm_group_ckpt_fill(const struct fsm_group *g,
                         Synod__GroupCheckpointInfo *c) {
  synod__group_checkpoint_info__init(c);
  c->offset = g->ckpt_offset;
  c->bytes = g->ckpt_len;
  c->index = g->ckpt_index;
  c->time_ms = g->ckpt_time_ms;
  c->member = g->ckpt_member;
}

/* Answers a state request of m (see GroupStateRequest in synod.proto). */
static void state_ask(struct fsm *f, struct fsm_group *g,
                      struct fsm_group_member *m, Synod__GroupState *st) {
  struct fsm_group_member *c = group_coordinator(g);
  synod__group_state__init(st);
  if (fsm_group_ckpt_usable(g)) {
    st->source = SYNOD__GROUP_STATE__SOURCE__CHECKPOINT;
    st->checkpoint_offset = g->ckpt_offset;
    st->checkpoint_bytes = g->ckpt_len;
    return;
  }
  if (c == m) {
    st->source = SYNOD__GROUP_STATE__SOURCE__EMPTY;
    return;
  }
  if (m->request_offset == 0) {
    m->request_offset = append_state_request(f, g, c, m);
    fsm_list_push_back(&g->requests, &m->request_link);
  }
  st->source = SYNOD__GROUP_STATE__SOURCE__REQUESTED;
  st->request_offset = m->request_offset;
  st->coordinator = c->name;
}

/* ------------------------------------------------------------ requests */

int fsm_group_member_check(const struct fsm *f, const char *what,
                           const char *member, char *msg) {
  char inner[SYNOD_ERRMSG_MAX];
  int rv = fsm_name_check(f, "member", member, strlen(member), inner);
  if (rv != 0) {
    errmsg_set(msg, "%s: %s", what, inner);
  }
  return rv;
}

/* The member `member` of g held by s, or an error. */
static int member_of_session(struct fsm_group *g, struct fsm_session *s,
                             const char *what, const char *member,
                             struct fsm_group_member **out, char *msg) {
  struct fsm_group_member *m =
      g ? member_find(g, member, strlen(member)) : NULL;
  if (m == NULL) {
    errmsg_set(msg, "%s: no member \"%.64s\" in group \"%.64s\"", what, member,
               g ? g->name : "");
    return SYNOD_ENOTFOUND;
  }
  if (s == NULL || m->session != s) {
    errmsg_set(msg, "%s: member \"%.64s\" is held by session %" PRIu64, what,
               member, m->session->id);
    return SYNOD_ENOTHOLDER;
  }
  *out = m;
  return 0;
}

static int join_check(const struct fsm *f, const struct fsm_group *g,
                      const Synod__GroupJoin *j, char *msg) {
  int rv = fsm_group_member_check(f, "group join", fsm_str(j->member), msg);
  if (rv != 0) {
    return rv;
  }
  if (j->data.len > f->opt.group_member_data_bytes_max) {
    errmsg_set(msg, "group join: data of %zu bytes, over %u", j->data.len,
               f->opt.group_member_data_bytes_max);
    return SYNOD_ETOOBIG;
  }
  if (g == NULL && f->groups.count >= f->opt.groups_max) {
    errmsg_set(msg, "group join: groups_max %u reached", f->opt.groups_max);
    return SYNOD_ELIMIT;
  }
  const struct fsm_group_member *m =
      g ? member_find(g, j->member, strlen(j->member)) : NULL;
  if (m != NULL) {
    /* The session tells a join of its own whose answer was lost (retried
     * under a new sequence) from a name another holder took. */
    errmsg_set(msg,
               "group join: \"%.64s\" already has a member \"%.64s\" "
               "(session %" PRIu64 ")",
               g->name, j->member, m->session->id);
    return SYNOD_EEXIST;
  }
  if (g != NULL && g->members_n >= f->opt.group_members_max) {
    errmsg_set(msg, "group join: \"%.64s\" has group_members_max %u members",
               g->name, f->opt.group_members_max);
    return SYNOD_ELIMIT;
  }
  return 0;
}

int fsm_group_join(struct fsm *f, struct fsm_session *s,
                   const Synod__Request *req, struct fsm_reply *r) {
  const Synod__GroupJoin *j = req->group_join;
  FSM_GROUP_NAME(group_join, "group join");
  struct fsm_group *g = fsm_group_find(f, name, len);
  rv = join_check(f, g, j, r->msg);
  if (rv != 0) {
    return rv;
  }
  if (g == NULL) {
    g = fsm_group_new(f, name, len);
    otree_insert(&f->groups, &g->by_name, &(struct fsm_name){g->name, len});
  }
  struct fsm_group_member *m = fsm_group_member_add(
      f, g, s, j->member, strlen(j->member), j->data.data, j->data.len);
  view_append(f, g, &m, 1, NULL, 0, g->members_n);
  Synod__GroupJoinReply *jr = &r->u.group_join;
  synod__group_join_reply__init(jr);
  synod__group_state__init(&r->gstate);
  if (j->want_state) {
    state_ask(f, g, m, &r->gstate);
  }
  fsm_group_view_fill(g, fsm_reply_arena(r), &r->gview);
  jr->view = &r->gview;
  jr->index = f->index;
  jr->state = &r->gstate;
  r->resp.body_case = SYNOD__RESPONSE__BODY_GROUP_JOIN;
  r->resp.group_join = jr;
  return 0;
}

int fsm_group_leave(struct fsm *f, struct fsm_session *s,
                    const Synod__Request *req, struct fsm_reply *r) {
  FSM_GROUP_NAME(group_leave, "group leave");
  struct fsm_group_member *m;
  const char *member = fsm_str(req->group_leave->member);
  struct fsm_group *g = fsm_group_find(f, name, len);
  rv = fsm_group_member_check(f, "group leave", member, r->msg);
  if (rv == 0) {
    rv = member_of_session(g, s, "group leave", member, &m, r->msg);
  }
  if (rv != 0) {
    return rv;
  }
  Synod__GroupLeaveReply *lr = &r->u.group_leave;
  synod__group_leave_reply__init(lr);
  lr->view_id = g->view_id + 1;
  lr->offset = g->window.next;
  members_leave(f, g, &m, 1);
  r->resp.body_case = SYNOD__RESPONSE__BODY_GROUP_LEAVE;
  r->resp.group_leave = lr;
  return 0;
}

static int memberships_order(const void *a, const void *b) {
  const struct fsm_group_member *x = *(struct fsm_group_member *const *)a;
  const struct fsm_group_member *y = *(struct fsm_group_member *const *)b;
  struct fsm_name k = {x->group->name, x->group->name_len};
  int c = fsm_name_cmp(&k, y->group->name, y->group->name_len);
  if (c != 0) {
    return c;
  }
  return x->joined_offset < y->joined_offset
             ? -1
             : x->joined_offset > y->joined_offset;
}

/* The session list's order depends on history (a restored replica
 * rebuilds it in image order), so the ends go in (group name, join
 * order): the same on every replica. */
void fsm_groups_session_end(struct fsm *f, struct fsm_session *s) {
  size_t n = 0;
  for (struct fsm_list *l = s->groups.next; l != &s->groups; l = l->next) {
    n++;
  }
  if (n == 0) {
    return;
  }
  struct fsm_group_member **v = fsm_xcalloc(n, sizeof *v);
  size_t i = 0;
  for (struct fsm_list *l = s->groups.next; l != &s->groups; l = l->next) {
    v[i++] = FSM_CONTAINER(l, struct fsm_group_member, session_link);
  }
  qsort(v, n, sizeof *v, memberships_order);
  for (i = 0; i < n;) {
    size_t k = i + 1;
    while (k < n && v[k]->group == v[i]->group) {
      k++;
    }
    members_leave(f, v[i]->group, &v[i], k - i);
    i = k;
  }
  free(v);
}

static int send_check(const struct fsm *f, struct fsm_group *g,
                      struct fsm_session *s, const Synod__GroupSend *q,
                      char *msg) {
  const char *to = fsm_str(q->to), *from = fsm_str(q->from);
  const char *id = fsm_str(q->message_id);
  struct fsm_group_member *m;
  int rv;
  if (q->data.len > f->opt.group_message_bytes_max) {
    errmsg_set(msg, "group send: data of %zu bytes, over %u", q->data.len,
               f->opt.group_message_bytes_max);
    return SYNOD_ETOOBIG;
  }
  if (strlen(id) > f->opt.name_bytes_max) {
    errmsg_set(msg, "group send: message_id of %zu bytes, over %u", strlen(id),
               f->opt.name_bytes_max);
    return SYNOD_EINVAL;
  }
  if ((to[0] &&
       (rv = fsm_group_member_check(f, "group send (to)", to, msg)) != 0) ||
      (from[0] &&
       (rv = fsm_group_member_check(f, "group send (from)", from, msg)) != 0)) {
    return rv;
  }
  if (g == NULL) {
    errmsg_set(msg, "group send: no group \"%.64s\"", q->group);
    return SYNOD_ENOTFOUND;
  }
  if (to[0] && member_find(g, to, strlen(to)) == NULL) {
    errmsg_set(msg, "group send: no member \"%.64s\" in \"%.64s\"", to,
               g->name);
    return SYNOD_ENOTFOUND;
  }
  if (from[0]) {
    return member_of_session(g, s, "group send (from)", from, &m, msg);
  }
  return 0;
}

static void reply_sent(struct fsm_reply *r, uint64_t offset, uint64_t index,
                       bool duplicate) {
  Synod__GroupSendReply *sr = &r->u.group_send;
  synod__group_send_reply__init(sr);
  sr->offset = offset;
  sr->index = index;
  sr->duplicate = duplicate;
  r->resp.body_case = SYNOD__RESPONSE__BODY_GROUP_SEND;
  r->resp.group_send = sr;
}

int fsm_group_send(struct fsm *f, struct fsm_session *s,
                   const Synod__Request *req, struct fsm_reply *r) {
  const Synod__GroupSend *q = req->group_send;
  const char *id = fsm_str(q->message_id);
  FSM_GROUP_NAME(group_send, "group send");
  struct fsm_group *g = fsm_group_find(f, name, len);
  rv = send_check(f, g, s, q, r->msg);
  if (rv != 0) {
    return rv;
  }
  const struct fsm_channel_id *seen = id[0] ? ids_find(f, g, id) : NULL;
  if (seen != NULL) {
    reply_sent(r, seen->first_offset, seen->index, true);
    return 0;
  }
  struct gbuf b = {0};
  gb_kind(&b, FSM_GROUP_ITEM_MESSAGE);
  gb_str(&b, fsm_str(q->to), strlen(fsm_str(q->to)));
  gb_str(&b, fsm_str(q->from), strlen(fsm_str(q->from)));
  gb_put(&b, q->data.data, q->data.len);
  rv = group_room(f, g, b.len, true, r->msg);
  if (rv != 0) {
    free(b.p);
    return rv;
  }
  ids_expire(f, g);
  uint64_t offset = group_append(f, g, &b);
  if (id[0]) {
    ids_push(g, id, offset, f->index, f->time_ms);
  }
  reply_sent(r, offset, f->index, false);
  return 0;
}

/* Checks a chunk against the group, the upload it continues (or opens,
 * at chunk_offset 0) and the caps. */
static int chunk_check(const struct fsm *f, const struct fsm_group *g,
                       const struct fsm_group_upload *u, bool found,
                       const Synod__GroupCheckpoint *c, char *msg) {
  const struct fsm_options *o = &f->opt;
  if (c->total_bytes > fsm_group_checkpoint_bytes_max(f)) {
    errmsg_set(msg, "group checkpoint: %" PRIu64 " bytes, over %" PRIu64,
               c->total_bytes, fsm_group_checkpoint_bytes_max(f));
    return SYNOD_ETOOBIG;
  }
  if (c->chunk.len > o->group_chunk_bytes_max) {
    errmsg_set(msg, "group checkpoint: a chunk of %zu bytes, over %u",
               c->chunk.len, o->group_chunk_bytes_max);
    return SYNOD_ETOOBIG;
  }
  if (c->offset >= g->window.next ||
      (g->has_ckpt && c->offset < g->ckpt_offset)) {
    errmsg_set(msg,
               "group checkpoint: offset %" PRIu64 " of \"%.64s\" is past "
               "its last %" PRIu64 " or before its checkpoint's",
               c->offset, g->name, g->window.next - 1);
    return SYNOD_ERANGE;
  }
  if (c->chunk_offset > c->total_bytes ||
      c->chunk.len > c->total_bytes - c->chunk_offset) {
    errmsg_set(msg,
               "group checkpoint: chunk [%" PRIu64 ", +%zu) outside %" PRIu64
               " bytes",
               c->chunk_offset, c->chunk.len, c->total_bytes);
    return SYNOD_ERANGE;
  }
  if (c->chunk_offset == 0) {
    uint64_t freed = found ? u->total : 0;
    if (!found && g->uploads_n >= o->group_uploads_max) {
      errmsg_set(msg, "group checkpoint: \"%.64s\" has %u uploads open",
                 g->name, g->uploads_n);
      return SYNOD_ELIMIT;
    }
    if (f->groups_bytes - freed + c->total_bytes > o->groups_bytes_max) {
      errmsg_set(msg,
                 "group checkpoint: %" PRIu64 " bytes over the server's "
                 "groups_bytes_max %" PRIu64 " (%" PRIu64 " retained)",
                 c->total_bytes, o->groups_bytes_max, f->groups_bytes);
      return SYNOD_ELIMIT;
    }
    return 0;
  }
  if (!found || u->received != c->chunk_offset || u->offset != c->offset ||
      u->total != c->total_bytes || strcmp(u->member, c->member) != 0) {
    errmsg_set(msg,
               "group checkpoint: chunk at %" PRIu64 " continues no upload "
               "of this session and member (received %" PRIu64 ")",
               c->chunk_offset, found ? u->received : 0);
    return SYNOD_ERANGE;
  }
  return 0;
}

/* The upload is complete: it becomes g's checkpoint, pending state
 * requests are answered by it, and a notice goes into the stream. */
static uint64_t ckpt_commit(struct fsm *f, struct fsm_group *g, uint32_t i) {
  struct fsm_group_upload *u = &g->uploads[i];
  f->groups_bytes -= g->ckpt_len; /* the upload's total is counted */
  free(g->ckpt);
  free(g->ckpt_member);
  g->has_ckpt = true;
  g->ckpt = u->data;
  g->ckpt_len = u->total;
  g->ckpt_member = u->member;
  g->ckpt_offset = u->offset;
  g->ckpt_index = f->index;
  g->ckpt_time_ms = f->time_ms;
  fsm_group_after_ckpt_count(g);
  memmove(&g->uploads[i], &g->uploads[i + 1],
          (g->uploads_n - i - 1) * sizeof *g->uploads);
  g->uploads_n--;
  while (!fsm_list_empty(&g->requests)) {
    struct fsm_list *n = g->requests.next;
    FSM_CONTAINER(n, struct fsm_group_member, request_link)->request_offset = 0;
    fsm_list_remove(n);
  }
  struct gbuf b = {0};
  gb_kind(&b, FSM_GROUP_ITEM_CHECKPOINT);
  gb_varint(&b, g->ckpt_offset);
  gb_varint(&b, g->ckpt_len);
  gb_str(&b, g->ckpt_member, strlen(g->ckpt_member));
  return group_append(f, g, &b);
}

int fsm_group_checkpoint(struct fsm *f, struct fsm_session *s,
                         const Synod__Request *req, struct fsm_reply *r) {
  const Synod__GroupCheckpoint *c = req->group_checkpoint;
  const char *member = fsm_str(c->member);
  struct fsm_group_member *m;
  bool found;
  FSM_GROUP_NAME(group_checkpoint, "group checkpoint");
  struct fsm_group *g = fsm_group_find(f, name, len);
  rv = fsm_group_member_check(f, "group checkpoint", member, r->msg);
  if (rv == 0) {
    rv = member_of_session(g, s, "group checkpoint", member, &m, r->msg);
  }
  if (rv != 0) {
    return rv;
  }
  uint32_t i = upload_slot(g, s->id, &found);
  rv = chunk_check(f, g, found ? &g->uploads[i] : NULL, found, c, r->msg);
  if (rv != 0) {
    return rv;
  }
  if (c->chunk_offset == 0) {
    if (found) {
      upload_drop(f, g, i);
    }
    upload_open(f, g, i, s->id, member, c->offset, c->total_bytes);
  }
  struct fsm_group_upload *u = &g->uploads[i];
  if (c->chunk.len) {
    memcpy(u->data + u->received, c->chunk.data, c->chunk.len);
  }
  u->received += c->chunk.len;
  Synod__GroupCheckpointReply *cr = &r->u.group_ckpt;
  synod__group_checkpoint_reply__init(cr);
  cr->received = u->received;
  cr->total_bytes = u->total;
  if (u->received == u->total) {
    cr->committed = true;
    cr->notice_offset = ckpt_commit(f, g, i);
  }
  r->resp.body_case = SYNOD__RESPONSE__BODY_GROUP_CHECKPOINT;
  r->resp.group_checkpoint = cr;
  return 0;
}

int fsm_group_state_request(struct fsm *f, struct fsm_session *s,
                            const Synod__Request *req, struct fsm_reply *r) {
  const char *member = fsm_str(req->group_state_request->member);
  struct fsm_group_member *m;
  FSM_GROUP_NAME(group_state_request, "group state request");
  struct fsm_group *g = fsm_group_find(f, name, len);
  rv = fsm_group_member_check(f, "group state request", member, r->msg);
  if (rv == 0) {
    rv = member_of_session(g, s, "group state request", member, &m, r->msg);
  }
  if (rv != 0) {
    return rv;
  }
  state_ask(f, g, m, &r->gstate);
  r->resp.body_case = SYNOD__RESPONSE__BODY_GROUP_STATE;
  r->resp.group_state = &r->gstate;
  return 0;
}
