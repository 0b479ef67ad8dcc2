/* Groups in the snapshot image: members, the retained items (packed as
 * group.c packs them, validated item by item), the checkpoint, open
 * uploads, pending state requests and message ids. */
#include <stdlib.h>
#include <string.h>

#include "fsm_int.h"

/* ------------------------------------------------------------ encode */

static void members_encode(const struct fsm_group *g, struct fsm_arena *a,
                           Synod__Fsm__Group *m) {
  m->members = fsm_arena_calloc(a, g->members_n, sizeof *m->members);
  Synod__GroupMember *ms = fsm_arena_calloc(a, g->members_n, sizeof *ms);
  for (struct fsm_list *n = g->members.next; n != &g->members; n = n->next) {
    const struct fsm_group_member *x =
        FSM_CONTAINER(n, struct fsm_group_member, group_link);
    Synod__GroupMember *y = &ms[m->n_members];
    synod__group_member__init(y);
    y->name = x->name;
    y->data.data = x->data;
    y->data.len = x->data_len;
    y->session_id = x->session->id;
    y->joined_offset = x->joined_offset;
    m->members[m->n_members++] = y;
  }
  size_t nreq = 0;
  for (struct fsm_list *n = g->requests.next; n != &g->requests; n = n->next) {
    nreq++;
  }
  m->state_requests = fsm_arena_calloc(a, nreq, sizeof *m->state_requests);
  Synod__Fsm__GroupRequest *rs = fsm_arena_calloc(a, nreq, sizeof *rs);
  for (struct fsm_list *n = g->requests.next; n != &g->requests; n = n->next) {
    const struct fsm_group_member *x =
        FSM_CONTAINER(n, struct fsm_group_member, request_link);
    Synod__Fsm__GroupRequest *y = &rs[m->n_state_requests];
    synod__fsm__group_request__init(y);
    y->member = x->name;
    y->offset = x->request_offset;
    m->state_requests[m->n_state_requests++] = y;
  }
}

static void items_encode(const struct fsm_group *g, struct fsm_arena *a,
                         Synod__Fsm__Group *m) {
  size_t n = (size_t)(g->window.next - g->window.first);
  m->first_offset = g->window.first;
  m->items = fsm_arena_calloc(a, n, sizeof *m->items);
  Synod__Fsm__ChannelItem *items = fsm_arena_calloc(a, n, sizeof *items);
  struct window_iter iter;
  struct window_item it;
  window_iter_seek(&g->window, g->window.first, &iter);
  while (m->n_items < n && window_iter_next(&iter, &it)) {
    Synod__Fsm__ChannelItem *x = &items[m->n_items];
    synod__fsm__channel_item__init(x);
    x->index = it.index;
    x->time_ms = it.time_ms;
    x->data.data = (uint8_t *)it.data; /* valid until packed */
    x->data.len = it.len;
    m->items[m->n_items++] = x;
  }
  m->evicted_index = g->window.evicted_index;
}

static void extras_encode(const struct fsm_group *g, struct fsm_arena *a,
                          Synod__Fsm__Group *m) {
  if (g->has_ckpt) {
    m->checkpoint = fsm_arena_calloc(a, 1, sizeof *m->checkpoint);
    synod__fsm__group_checkpoint__init(m->checkpoint);
    m->checkpoint->offset = g->ckpt_offset;
    m->checkpoint->data.data = g->ckpt;
    m->checkpoint->data.len = g->ckpt_len;
    m->checkpoint->index = g->ckpt_index;
    m->checkpoint->time_ms = g->ckpt_time_ms;
    m->checkpoint->member = g->ckpt_member;
  }
  m->n_uploads = g->uploads_n;
  m->uploads = fsm_arena_calloc(a, g->uploads_n, sizeof *m->uploads);
  Synod__Fsm__GroupUpload *us = fsm_arena_calloc(a, g->uploads_n, sizeof *us);
  for (uint32_t i = 0; i < g->uploads_n; i++) {
    const struct fsm_group_upload *u = &g->uploads[i];
    synod__fsm__group_upload__init(&us[i]);
    us[i].session_id = u->session_id;
    us[i].member = u->member;
    us[i].offset = u->offset;
    us[i].total_bytes = u->total;
    us[i].data.data = u->data;
    us[i].data.len = u->received;
    m->uploads[i] = &us[i];
  }
  m->n_ids = g->ids_n;
  m->ids = fsm_arena_calloc(a, g->ids_n, sizeof *m->ids);
  Synod__Fsm__ChannelMessageId *ids =
      fsm_arena_calloc(a, g->ids_n, sizeof *ids);
  for (uint32_t i = 0; i < g->ids_n; i++) {
    const struct fsm_channel_id *x = &g->ids[(g->ids_head + i) % g->ids_cap];
    synod__fsm__channel_message_id__init(&ids[i]);
    ids[i].id = x->id;
    ids[i].first_offset = x->first_offset;
    ids[i].last_offset = x->last_offset;
    ids[i].index = x->index;
    ids[i].time_ms = x->time_ms;
    m->ids[i] = &ids[i];
  }
}

void fsm_groups_image_encode(const struct fsm *f, struct fsm_arena *a,
                             Synod__Fsm__Image *img) {
  img->n_groups = f->groups.count;
  img->groups = fsm_arena_calloc(a, f->groups.count, sizeof *img->groups);
  Synod__Fsm__Group *gs = fsm_arena_calloc(a, f->groups.count, sizeof *gs);
  size_t i = 0;
  for (struct otree_node *n = otree_first(&f->groups); n; n = otree_next(n)) {
    const struct fsm_group *g = FSM_CONTAINER(n, struct fsm_group, by_name);
    Synod__Fsm__Group *m = &gs[i];
    synod__fsm__group__init(m);
    m->name = g->name;
    m->view_id = g->view_id;
    m->view_offset = g->view_offset;
    m->created_index = g->created_index;
    members_encode(g, a, m);
    items_encode(g, a, m);
    extras_encode(g, a, m);
    img->groups[i++] = m;
  }
}

/* ------------------------------------------------------------ decode */

static int name_ok(const struct fsm *t, const char *s) {
  char msg[SYNOD_ERRMSG_MAX];
  return fsm_name_check(t, "image", s, strlen(s), msg) == 0;
}

/* Items in log order up to the image's index and time, each one a
 * well-formed group item. */
static int items_load(struct fsm *t, struct fsm_group *g,
                      const Synod__Fsm__Group *m,
                      const Synod__Fsm__Image *img) {
  uint64_t index = 0, time = 0;
  if (m->first_offset == 0 ||
      (m->n_items > 0 && m->evicted_index > m->items[0]->index) ||
      m->evicted_index > img->applied_index) {
    return -1;
  }
  window_init_at(&g->window, m->first_offset);
  for (size_t i = 0; i < m->n_items; i++) {
    const Synod__Fsm__ChannelItem *it = m->items[i];
    struct window_item wi = {g->window.next, it->index, it->time_ms,
                             it->data.data, it->data.len};
    struct fsm_group_item gi;
    if (it->index < index || it->index > img->applied_index ||
        it->time_ms < time || it->time_ms > img->time_ms ||
        fsm_group_item_decode(&wi, &gi) != 0) {
      return -1;
    }
    index = it->index;
    time = it->time_ms;
    window_append(&g->window, it->index, it->time_ms, it->data.data,
                  it->data.len);
  }
  g->window.evicted_index = m->evicted_index;
  t->groups_bytes += g->window.bytes;
  return 0;
}

/* Members in join order: unique names, live sessions, joined at views
 * in the stream's past, in increasing order. */
static int members_load(struct fsm *t, struct fsm_group *g,
                        const Synod__Fsm__Group *m) {
  uint64_t prev = 0;
  if (m->n_members == 0 || m->view_id == 0 || m->view_offset == 0 ||
      m->view_offset >= g->window.next) {
    return -1;
  }
  for (size_t i = 0; i < m->n_members; i++) {
    const Synod__GroupMember *x = m->members[i];
    struct fsm_session *s = fsm_session_find(t, x->session_id);
    if (!name_ok(t, x->name) || s == NULL ||
        x->data.len > t->opt.group_member_data_bytes_max ||
        x->joined_offset <= prev || x->joined_offset > m->view_offset ||
        fsm_group_member_add(t, g, s, x->name, strlen(x->name), x->data.data,
                             x->data.len) == NULL) {
      return -1;
    }
    FSM_CONTAINER(g->members.prev, struct fsm_group_member, group_link)
        ->joined_offset = x->joined_offset;
    prev = x->joined_offset;
  }
  return 0;
}

static struct fsm_group_member *member_named(struct fsm_group *g,
                                             const char *name) {
  for (struct fsm_list *n = g->members.next; n != &g->members; n = n->next) {
    struct fsm_group_member *x =
        FSM_CONTAINER(n, struct fsm_group_member, group_link);
    if (strcmp(x->name, name) == 0) {
      return x;
    }
  }
  return NULL;
}

/* Pending requests: of members not the coordinator, each once, at an
 * offset in the stream's past. */
static int requests_load(struct fsm_group *g, const Synod__Fsm__Group *m) {
  for (size_t i = 0; i < m->n_state_requests; i++) {
    const Synod__Fsm__GroupRequest *q = m->state_requests[i];
    struct fsm_group_member *x = member_named(g, q->member);
    if (x == NULL || x->request_offset != 0 || q->offset == 0 ||
        q->offset >= g->window.next || g->members.next == &x->group_link) {
      return -1;
    }
    x->request_offset = q->offset;
    fsm_list_push_back(&g->requests, &x->request_link);
  }
  return 0;
}

static int ckpt_load(struct fsm *t, struct fsm_group *g,
                     const Synod__Fsm__Group *m, const Synod__Fsm__Image *img) {
  const Synod__Fsm__GroupCheckpoint *c = m->checkpoint;
  if (c == NULL) {
    return 0;
  }
  if (c->offset >= g->window.next || !name_ok(t, c->member) ||
      c->data.len > FSM_GROUP_CHECKPOINT_BYTES_CAP ||
      c->index > img->applied_index || c->time_ms > img->time_ms) {
    return -1;
  }
  g->has_ckpt = true;
  g->ckpt_offset = c->offset;
  g->ckpt = fsm_xmalloc(c->data.len);
  if (c->data.len) {
    memcpy(g->ckpt, c->data.data, c->data.len);
  }
  g->ckpt_len = c->data.len;
  g->ckpt_index = c->index;
  g->ckpt_time_ms = c->time_ms;
  g->ckpt_member = fsm_xstrndup(c->member, strlen(c->member));
  t->groups_bytes += g->ckpt_len;
  return 0;
}

/* Uploads by increasing session, each of one of that session's members,
 * with fewer bytes than its total (a complete one would have committed). */
static int uploads_load(struct fsm *t, struct fsm_group *g,
                        const Synod__Fsm__Group *m) {
  if (m->n_uploads > t->opt.group_uploads_max) {
    return -1;
  }
  g->uploads = fsm_xcalloc(m->n_uploads, sizeof *g->uploads);
  for (size_t i = 0; i < m->n_uploads; i++) {
    const Synod__Fsm__GroupUpload *u = m->uploads[i];
    struct fsm_group_member *x = member_named(g, u->member);
    /* An upload below the checkpoint is legal state: one opened before
     * another member's later checkpoint committed (it can no longer
     * commit, and is held until its member leaves or opens another). */
    if (x == NULL || x->session->id != u->session_id ||
        (i > 0 && u->session_id <= m->uploads[i - 1]->session_id) ||
        u->total_bytes > FSM_GROUP_CHECKPOINT_BYTES_CAP ||
        u->data.len >= u->total_bytes || u->offset >= g->window.next) {
      return -1;
    }
    struct fsm_group_upload *d = &g->uploads[g->uploads_n++];
    *d = (struct fsm_group_upload){
        u->session_id, fsm_xstrndup(u->member, strlen(u->member)),
        u->offset,     u->total_bytes,
        u->data.len,   fsm_xmalloc(u->total_bytes)};
    if (u->data.len) {
      memcpy(d->data, u->data.data, u->data.len);
    }
    t->groups_bytes += u->total_bytes;
  }
  return 0;
}

static int ids_load(const struct fsm *t, struct fsm_group *g,
                    const Synod__Fsm__Group *m) {
  if (m->n_ids > t->opt.channel_ids_max) {
    return -1;
  }
  for (size_t i = 0; i < m->n_ids; i++) {
    const Synod__Fsm__ChannelMessageId *x = m->ids[i];
    if (x->id[0] == '\0' || x->first_offset == 0 ||
        x->last_offset != x->first_offset || x->last_offset >= g->window.next) {
      return -1;
    }
    struct fsm_channel_id *d = &g->ids[(g->ids_head + g->ids_n++) % g->ids_cap];
    *d = (struct fsm_channel_id){fsm_xstrndup(x->id, strlen(x->id)),
                                 x->first_offset, x->last_offset, x->index,
                                 x->time_ms};
  }
  return 0;
}

int fsm_groups_image_load(struct fsm *t, const Synod__Fsm__Image *img) {
  struct fsm_name prev = {NULL, 0};
  for (size_t i = 0; i < img->n_groups; i++) {
    const Synod__Fsm__Group *m = img->groups[i];
    size_t len = strlen(m->name);
    if (!name_ok(t, m->name) ||
        (prev.s && fsm_name_cmp(&prev, m->name, len) >= 0) ||
        m->created_index > img->applied_index) {
      return -1;
    }
    struct fsm_group *g = fsm_group_new(t, m->name, len);
    otree_insert(&t->groups, &g->by_name, &(struct fsm_name){g->name, len});
    g->created_index = m->created_index;
    g->view_id = m->view_id;
    g->view_offset = m->view_offset;
    if (items_load(t, g, m, img) || members_load(t, g, m) ||
        requests_load(g, m) || ckpt_load(t, g, m, img) ||
        uploads_load(t, g, m) || ids_load(t, g, m)) {
      return -1;
    }
    fsm_group_after_ckpt_count(g);
    prev = (struct fsm_name){g->name, len};
  }
  return 0;
}
