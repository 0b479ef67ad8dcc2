/* Group reads (GroupViewGet, GroupList, GroupCheckpointRead, GroupRead)
 * and the functions the node reads groups with. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "fsm_int.h"

/* ------------------------------------------------------------ reads */

static void info_fill(const struct fsm_group *g, struct fsm_arena *a,
                      Synod__GroupInfo *gi, Synod__GroupView *v,
                      Synod__GroupCheckpointInfo *c) {
  synod__group_info__init(gi);
  gi->name = g->name;
  fsm_group_view_fill(g, a, v);
  gi->view = v;
  gi->members = g->members_n;
  gi->first_offset = g->window.first;
  gi->next_offset = g->window.next;
  gi->bytes = g->window.bytes;
  gi->created_index = g->created_index;
  if (g->has_ckpt) {
    fsm_group_ckpt_fill(g, c);
    gi->checkpoint = c;
    gi->checkpoint_usable = fsm_group_ckpt_usable(g);
  }
  for (struct fsm_list *n = g->requests.next; n != &g->requests; n = n->next) {
    gi->state_requests++;
  }
}

int fsm_group_view_get(struct fsm *f, struct fsm_session *s,
                       const Synod__Request *req, struct fsm_reply *r) {
  (void)s;
  FSM_GROUP_NAME(group_view, "group view");
  const struct fsm_group *g = fsm_group_find(f, name, len);
  if (g == NULL) {
    errmsg_set(r->msg, "group view: no group \"%.64s\"", name);
    return SYNOD_ENOTFOUND;
  }
  info_fill(g, fsm_reply_arena(r), &r->u.group_info, &r->gview, &r->gckpt);
  r->resp.body_case = SYNOD__RESPONSE__BODY_GROUP_INFO;
  r->resp.group_info = &r->u.group_info;
  return 0;
}

int fsm_group_list(struct fsm *f, struct fsm_session *s,
                   const Synod__Request *req, struct fsm_reply *r) {
  const Synod__GroupList *q = req->group_list;
  const char *after = fsm_str(q->after);
  uint32_t limit = q->limit && q->limit < f->opt.list_limit_max
                       ? q->limit
                       : f->opt.list_limit_max;
  struct fsm_arena *a = fsm_reply_arena(r);
  (void)s;
  Synod__GroupListReply *lr = &r->u.group_list;
  synod__group_list_reply__init(lr);
  lr->groups = fsm_arena_calloc(a, limit, sizeof *lr->groups);
  Synod__GroupInfo *infos = fsm_arena_calloc(a, limit, sizeof *infos);
  Synod__GroupView *views = fsm_arena_calloc(a, limit, sizeof *views);
  Synod__GroupCheckpointInfo *cks = fsm_arena_calloc(a, limit, sizeof *cks);
  struct fsm_name k = {after, strlen(after)};
  struct otree_node *n =
      k.len ? otree_lower_bound(&f->groups, &k, true) : otree_first(&f->groups);
  for (; n != NULL; n = otree_next(n)) {
    if (lr->n_groups == limit) {
      lr->more = 1;
      break;
    }
    size_t i = lr->n_groups++;
    info_fill(FSM_CONTAINER(n, struct fsm_group, by_name), NULL, &infos[i],
              &views[i], &cks[i]);
    lr->groups[i] = &infos[i];
  }
  r->resp.body_case = SYNOD__RESPONSE__BODY_GROUP_LIST;
  r->resp.group_list = lr;
  return 0;
}

/* 1 MiB less room for the framing around the chunk. */
#define GROUP_CHUNK_READ_DEFAULT ((1u << 20) - 4096)

int fsm_group_checkpoint_read(struct fsm *f, struct fsm_session *s,
                              const Synod__Request *req, struct fsm_reply *r) {
  const Synod__GroupCheckpointRead *q = req->group_checkpoint_read;
  (void)s;
  FSM_GROUP_NAME(group_checkpoint_read, "group checkpoint read");
  const struct fsm_group *g = fsm_group_find(f, name, len);
  if ((rv = fsm_known_check(f, "group checkpoint read", name,
                            g ? &g->created_index : NULL, q->known_index,
                            r->msg)) != 0) {
    return rv;
  }
  if (g == NULL || !g->has_ckpt) {
    errmsg_set(r->msg, "group checkpoint read: \"%.64s\" has no checkpoint",
               name);
    return SYNOD_ENOTFOUND;
  }
  if (q->offset != 0 && q->offset != g->ckpt_offset) {
    errmsg_set(r->msg,
               "group checkpoint read: the checkpoint of \"%.64s\" at %" PRIu64
               " was replaced by one at %" PRIu64,
               name, q->offset, g->ckpt_offset);
    r->error.first_available = g->ckpt_offset;
    return SYNOD_ECOMPACTED;
  }
  if (q->from > g->ckpt_len) {
    errmsg_set(r->msg,
               "group checkpoint read: from %" PRIu64 " past its %zu bytes",
               q->from, g->ckpt_len);
    return SYNOD_ERANGE;
  }
  uint32_t max = q->max_bytes && q->max_bytes < GROUP_CHUNK_READ_DEFAULT
                     ? q->max_bytes
                     : GROUP_CHUNK_READ_DEFAULT;
  size_t n = g->ckpt_len - q->from < max ? g->ckpt_len - q->from : max;
  Synod__GroupCheckpointChunk *c = &r->u.group_chunk;
  synod__group_checkpoint_chunk__init(c);
  fsm_group_ckpt_fill(g, &r->gckpt);
  c->checkpoint = &r->gckpt;
  c->from = q->from;
  c->data.data = g->ckpt + q->from;
  c->data.len = n;
  c->last = q->from + n == g->ckpt_len;
  r->resp.body_case = SYNOD__RESPONSE__BODY_GROUP_CHECKPOINT_CHUNK;
  r->resp.group_checkpoint_chunk = c;
  return 0;
}

#define GROUP_READ_MAX_DEFAULT 1000
#define GROUP_READ_BYTES_DEFAULT (1u << 20)

int fsm_group_read(struct fsm *f, struct fsm_session *s,
                   const Synod__Request *req, struct fsm_reply *r) {
  const Synod__GroupRead *q = req->group_read;
  const char *member = fsm_str(q->member);
  (void)s;
  FSM_GROUP_NAME(group_read, "group read");
  if (member[0] &&
      (rv = fsm_group_member_check(f, "group read", member, r->msg)) != 0) {
    return rv;
  }
  const struct fsm_group *g = fsm_group_find(f, name, len);
  if ((rv = fsm_known_check(f, "group read", name, g ? &g->created_index : NULL,
                            q->known_index, r->msg)) != 0) {
    return rv;
  }
  if (g == NULL) {
    errmsg_set(r->msg, "group read: no group \"%.64s\"", name);
    return SYNOD_ENOTFOUND;
  }
  uint64_t first = g->window.first, next = g->window.next;
  uint64_t from = q->from ? q->from : first;
  uint32_t max = q->max && q->max < GROUP_READ_MAX_DEFAULT
                     ? q->max
                     : GROUP_READ_MAX_DEFAULT;
  uint64_t max_bytes = q->max_bytes ? q->max_bytes : GROUP_READ_BYTES_DEFAULT;
  if (from < first) {
    errmsg_set(r->msg,
               "group read: offset %" PRIu64 " of \"%.64s\" is compacted; the "
               "first retained is %" PRIu64,
               from, name, first);
    r->error.first_available = first;
    return SYNOD_ECOMPACTED;
  }
  if (from > next) {
    errmsg_set(r->msg,
               "group read: offset %" PRIu64 " of \"%.64s\" is past its next "
               "offset %" PRIu64,
               from, name, next);
    return SYNOD_ERANGE;
  }
  struct fsm_arena *a = fsm_reply_arena(r);
  Synod__GroupItems *m = &r->u.group_items;
  synod__group_items__init(m);
  m->first_offset = first;
  m->next_offset = next;
  m->items = fsm_arena_calloc(a, max, sizeof *m->items);
  struct window_iter iter;
  struct window_item wi;
  uint64_t bytes = 0;
  window_iter_seek(&g->window, from, &iter);
  while (m->n_items < max && window_iter_next(&iter, &wi) &&
         (m->n_items == 0 || bytes + wi.len <= max_bytes)) {
    struct fsm_group_item it;
    if (fsm_group_item_decode(&wi, &it) != 0 ||
        (member[0] && !fsm_group_item_for(&it, member, strlen(member)))) {
      continue;
    }
    Synod__GroupItem *x = fsm_arena_calloc(a, 1, sizeof *x);
    fsm_group_item_to_pb(&it, a, x);
    m->items[m->n_items++] = x;
    bytes += wi.len;
  }
  r->resp.body_case = SYNOD__RESPONSE__BODY_GROUP_ITEMS;
  r->resp.group_items = m;
  return 0;
}

/* ------------------------------------------------------------ the API */

bool fsm_group_stream(const struct fsm *f, const char *name, size_t len,
                      struct fsm_stream *out) {
  const struct fsm_group *g = fsm_group_find(f, name, len);
  if (g == NULL) {
    return false;
  }
  out->name = g->name;
  out->name_len = g->name_len;
  out->window = &g->window;
  out->first = g->window.first;
  out->evicted_index = g->window.evicted_index;
  out->created_index = g->created_index;
  return true;
}

uint32_t fsm_group_view(const struct fsm *f, const char *name, size_t len,
                        uint64_t *view_id, uint64_t *view_offset,
                        void (*fn)(void *arg,
                                   const struct fsm_group_member_view *m),
                        void *arg) {
  const struct fsm_group *g = fsm_group_find(f, name, len);
  *view_id = g ? g->view_id : 0;
  *view_offset = g ? g->view_offset : 0;
  if (g == NULL) {
    return 0;
  }
  for (struct fsm_list *n = g->members.next; fn && n != &g->members;
       n = n->next) {
    const struct fsm_group_member *m =
        FSM_CONTAINER(n, struct fsm_group_member, group_link);
    struct fsm_group_member_view v = {m->name, m->data, m->data_len,
                                      m->session->id, m->joined_offset};
    fn(arg, &v);
  }
  return g->members_n;
}

bool fsm_group_checkpoint_get(const struct fsm *f, const char *name, size_t len,
                              struct fsm_group_checkpoint *out) {
  const struct fsm_group *g = fsm_group_find(f, name, len);
  if (g == NULL || !g->has_ckpt) {
    return false;
  }
  *out = (struct fsm_group_checkpoint){
      g->ckpt_offset,          g->ckpt,         g->ckpt_len,
      g->ckpt_index,           g->ckpt_time_ms, g->ckpt_member,
      fsm_group_ckpt_usable(g)};
  return true;
}

/* ------------------------------------------------------- view at offset */

/* A member of a view being rebuilt (fsm_group_view_at). */
struct view_rec {
  struct fsm_group_member_view v; /* v.name malloc'ed */
  bool gone;                      /* joined after the view rebuilt */
};

static int rec_order(const void *a, const void *b) {
  const struct view_rec *x = a, *y = b;
  return x->v.joined_offset < y->v.joined_offset
             ? -1
             : x->v.joined_offset > y->v.joined_offset;
}

/* The latest join of `name` below offset `at` in g's window into *out
 * (for a view item of an older image, whose leaves name the member
 * alone); false if it is not retained. */
static bool join_before(const struct fsm_group *g, uint64_t at,
                        const char *name, size_t len,
                        struct fsm_group_change *out) {
  struct window_iter it;
  struct window_item wi;
  struct fsm_group_item gi;
  bool found = false;
  window_iter_seek(&g->window, g->window.first, &it);
  while (window_iter_next(&it, &wi) && wi.pos < at) {
    struct fsm_group_change_iter ci;
    struct fsm_group_change c;
    if (fsm_group_item_decode(&wi, &gi) != 0 || gi.kind != FSM_GROUP_VIEW) {
      continue;
    }
    fsm_group_changes(&gi, &ci);
    while (fsm_group_change_next(&ci, &c)) {
      if (!c.left && c.name_len == len && memcmp(c.name, name, len) == 0) {
        *out = c;
        found = true;
      }
    }
  }
  return found;
}

/* Adds a record of c (a member that left) to recs. */
static bool rec_add(struct view_rec *recs, size_t *n,
                    const struct fsm_group_change *c) {
  char *name = malloc(c->name_len + 1);
  if (name == NULL) {
    return false;
  }
  memcpy(name, c->name, c->name_len);
  name[c->name_len] = '\0';
  recs[(*n)++] = (struct view_rec){
      {name, c->data, c->data_len, c->session_id, c->joined_offset}, false};
  return true;
}

/* Undoes view item `it` on recs: its joins go, its leaves come back. */
static int view_undo(const struct fsm_group *g, uint64_t at,
                     const struct fsm_group_item *it, struct view_rec *recs,
                     size_t *n) {
  struct fsm_group_change_iter ci;
  struct fsm_group_change c;
  fsm_group_changes(it, &ci);
  while (fsm_group_change_next(&ci, &c)) {
    if (!c.left) {
      size_t i = 0;
      while (i < *n && (recs[i].gone || recs[i].v.joined_offset != it->offset ||
                        strlen(recs[i].v.name) != c.name_len ||
                        memcmp(recs[i].v.name, c.name, c.name_len) != 0)) {
        i++;
      }
      if (i == *n) {
        return SYNOD_EINTERNAL; /* a join the view after it lacks */
      }
      recs[i].gone = true;
      continue;
    }
    if (!c.full && !join_before(g, at, c.name, c.name_len, &c)) {
      return SYNOD_EUNAVAILABLE;
    }
    if (!rec_add(recs, n, &c)) {
      return SYNOD_ENOMEM;
    }
  }
  return 0;
}

/* The view items of g at or after `at`, oldest first (malloc'ed; they
 * borrow the window), their count in *n; NULL with *n 0 if none. */
static struct fsm_group_item *views_from(const struct fsm_group *g, uint64_t at,
                                         size_t *n, size_t *left) {
  struct fsm_group_item *v = NULL, gi;
  size_t cap = 0;
  struct window_iter it;
  struct window_item wi;
  *n = *left = 0;
  window_iter_seek(&g->window, at, &it);
  while (window_iter_next(&it, &wi)) {
    if (fsm_group_item_decode(&wi, &gi) != 0 || gi.kind != FSM_GROUP_VIEW) {
      continue;
    }
    if (*n == cap) {
      cap = cap ? 2 * cap : 16;
      v = fsm_xrealloc(v, cap * sizeof *v);
    }
    v[(*n)++] = gi;
    *left += gi.left;
  }
  return v;
}

int fsm_group_view_at(const struct fsm *f, const char *name, size_t len,
                      uint64_t at, uint64_t *view_id,
                      void (*fn)(void *arg,
                                 const struct fsm_group_member_view *m),
                      void *arg) {
  const struct fsm_group *g = fsm_group_find(f, name, len);
  size_t nv, left, n = 0;
  int rv = 0;
  if (g == NULL) {
    return SYNOD_ENOTFOUND;
  }
  if (at > g->window.next) {
    return SYNOD_ERANGE;
  }
  if (at < g->window.first) {
    return SYNOD_ECOMPACTED;
  }
  struct fsm_group_item *views = views_from(g, at, &nv, &left);
  struct view_rec *recs = fsm_xcalloc(g->members_n + left + 1, sizeof *recs);
  for (struct fsm_list *l = g->members.next; l != &g->members; l = l->next) {
    const struct fsm_group_member *m =
        FSM_CONTAINER(l, struct fsm_group_member, group_link);
    recs[n++] =
        (struct view_rec){{fsm_xstrndup(m->name, m->name_len), m->data,
                           m->data_len, m->session->id, m->joined_offset},
                          false};
  }
  for (size_t i = nv; i > 0 && rv == 0; i--) {
    rv = view_undo(g, at, &views[i - 1], recs, &n);
  }
  *view_id = g->view_id - nv;
  if (rv == 0) {
    qsort(recs, n, sizeof *recs, rec_order);
  }
  for (size_t i = 0; i < n; i++) {
    if (rv == 0 && !recs[i].gone && fn != NULL) {
      fn(arg, &recs[i].v);
    }
    free((char *)recs[i].v.name);
  }
  free(recs);
  free(views);
  return rv;
}
