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
