/* Group items: the packed format group.c writes into a group's window
 * (its header comment describes it), read back strictly, and converted
 * to synod.GroupItem for reads and subscriptions. */
#include <stdlib.h>
#include <string.h>

#include "fsm_int.h"
#include "utf8.h"

/* Reads a varint; false past `end` or over 64 bits. */
static bool rd_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  *v = 0;
  for (unsigned shift = 0; shift < 64; shift += 7) {
    if (*p >= end) {
      return false;
    }
    uint8_t c = *(*p)++;
    *v |= (uint64_t)(c & 0x7f) << shift;
    if ((c & 0x80) == 0) {
      return true;
    }
  }
  return false;
}

static bool rd_str(const uint8_t **p, const uint8_t *end, const uint8_t **s,
                   size_t *n) {
  uint64_t len;
  if (!rd_varint(p, end, &len) || len > (uint64_t)(end - *p)) {
    return false;
  }
  *s = *p;
  *n = (size_t)len;
  *p += len;
  return true;
}

/* A name inside an item: empty allowed where `empty`, else 1..65535 bytes
 * of UTF-8 without a NUL (what a request's C string can carry). */
static bool rd_name(const uint8_t **p, const uint8_t *end, const char **s,
                    size_t *n, bool empty) {
  const uint8_t *x;
  if (!rd_str(p, end, &x, n) || (*n == 0 && !empty) || *n > 65535 ||
      memchr(x, 0, *n) != NULL || !utf8_valid((const char *)x, *n, NULL)) {
    return false;
  }
  *s = (const char *)x;
  return true;
}

int fsm_group_item_decode(const struct window_item *wi,
                          struct fsm_group_item *out) {
  uint64_t a, b;
  memset(out, 0, sizeof *out);
  out->offset = wi->pos;
  out->index = wi->index;
  out->time_ms = wi->time_ms;
  out->to = out->from = "";
  if (wi->len == 0) { /* an image's empty bytes may come as NULL */
    return -1;
  }
  const uint8_t *p = wi->data, *end = wi->data + wi->len;
  out->kind = (enum fsm_group_item_kind) * p++;
  if (out->kind == FSM_GROUP_ITEM_VIEW_FULL) {
    out->kind = FSM_GROUP_VIEW;
    out->left_full = true;
  }
  switch (out->kind) {
  case FSM_GROUP_VIEW: {
    uint64_t members, joined, left;
    if (!rd_varint(&p, end, &out->view_id) || out->view_id == 0 ||
        !rd_varint(&p, end, &members) || !rd_varint(&p, end, &joined) ||
        !rd_varint(&p, end, &left) || members > UINT32_MAX ||
        joined > members || left > UINT32_MAX || joined + left == 0) {
      return -1;
    }
    out->members = (uint32_t)members;
    out->joined = (uint32_t)joined;
    out->left = (uint32_t)left;
    out->changes = p;
    out->changes_end = end;
    struct fsm_group_change_iter ci;
    struct fsm_group_change c;
    uint64_t n = 0;
    fsm_group_changes(out, &ci);
    while (fsm_group_change_next(&ci, &c)) {
      n++;
    }
    return n == joined + left && ci.p == end ? 0 : -1;
  }
  case FSM_GROUP_MESSAGE:
    if (!rd_name(&p, end, &out->to, &out->to_len, true) ||
        !rd_name(&p, end, &out->from, &out->from_len, true)) {
      return -1;
    }
    out->data = p;
    out->len = (size_t)(end - p);
    return 0;
  case FSM_GROUP_STATE_REQUEST: /* from nobody: the replicas ask */
    return rd_name(&p, end, &out->to, &out->to_len, false) &&
                   rd_name(&p, end, &out->from, &out->from_len, true) &&
                   p == end
               ? 0
               : -1;
  case FSM_GROUP_CHECKPOINT:
    if (!rd_varint(&p, end, &a) || !rd_varint(&p, end, &b) || a >= wi->pos ||
        !rd_name(&p, end, &out->from, &out->from_len, false) || p != end) {
      return -1;
    }
    out->checkpoint_offset = a;
    out->checkpoint_bytes = b;
    return 0;
  }
  return -1;
}

void fsm_group_changes(const struct fsm_group_item *it,
                       struct fsm_group_change_iter *ci) {
  ci->p = it->changes;
  ci->end = it->changes_end;
  ci->i = 0;
  ci->joined = it->joined;
  ci->n = it->kind == FSM_GROUP_VIEW ? it->joined + it->left : 0;
  ci->left_full = it->left_full;
  ci->offset = it->offset;
}

bool fsm_group_change_next(struct fsm_group_change_iter *ci,
                           struct fsm_group_change *out) {
  if (ci->i >= ci->n) {
    return false;
  }
  memset(out, 0, sizeof *out);
  out->left = ci->i >= ci->joined;
  if (!rd_name(&ci->p, ci->end, &out->name, &out->name_len, false)) {
    ci->n = 0; /* malformed: stop */
    return false;
  }
  out->full = !out->left || ci->left_full;
  out->joined_offset = out->left ? 0 : ci->offset;
  if (out->full &&
      (!rd_str(&ci->p, ci->end, &out->data, &out->data_len) ||
       !rd_varint(&ci->p, ci->end, &out->session_id) ||
       (out->left &&
        (!rd_varint(&ci->p, ci->end, &out->joined_offset) ||
         out->joined_offset == 0 || out->joined_offset >= ci->offset)))) {
    ci->n = 0;
    return false;
  }
  ci->i++;
  return true;
}

bool fsm_group_item_empty(const struct fsm_group_item *it) {
  return it->kind == FSM_GROUP_STATE_REQUEST && it->to_len == it->from_len &&
         memcmp(it->to, it->from, it->to_len) == 0;
}

bool fsm_group_item_for(const struct fsm_group_item *it, const char *member,
                        size_t len) {
  if (it->kind != FSM_GROUP_MESSAGE && it->kind != FSM_GROUP_STATE_REQUEST) {
    return true;
  }
  return it->to_len == 0 ||
         (it->to_len == len && memcmp(it->to, member, len) == 0);
}

static char *arena_str(struct fsm_arena *a, const char *s, size_t n) {
  char *p = fsm_arena_calloc(a, n + 1, 1);
  memcpy(p, s, n);
  return p;
}

/* Fills x from it with arena memory (strings copied to be NUL-ended;
 * data borrowed). */
void fsm_group_item_to_pb(const struct fsm_group_item *it, struct fsm_arena *a,
                          Synod__GroupItem *x) {
  synod__group_item__init(x);
  x->offset = it->offset;
  x->index = it->index;
  x->time_ms = it->time_ms;
  switch (it->kind) {
  case FSM_GROUP_VIEW: {
    Synod__GroupViewChange *v = fsm_arena_calloc(a, 1, sizeof *v);
    synod__group_view_change__init(v);
    v->view_id = it->view_id;
    v->members = it->members;
    v->joined = fsm_arena_calloc(a, it->joined, sizeof *v->joined);
    Synod__GroupMember *ms = fsm_arena_calloc(a, it->joined, sizeof *ms);
    v->left = fsm_arena_calloc(a, it->left, sizeof *v->left);
    v->left_members = fsm_arena_calloc(a, it->left_full ? it->left : 0,
                                       sizeof *v->left_members);
    Synod__GroupMember *ls =
        fsm_arena_calloc(a, it->left_full ? it->left : 0, sizeof *ls);
    struct fsm_group_change_iter ci;
    struct fsm_group_change c;
    fsm_group_changes(it, &ci);
    while (fsm_group_change_next(&ci, &c)) {
      if (c.left) {
        v->left[v->n_left++] = arena_str(a, c.name, c.name_len);
        if (c.full) {
          Synod__GroupMember *m = &ls[v->n_left_members];
          synod__group_member__init(m);
          m->name = v->left[v->n_left - 1];
          m->data.data = (uint8_t *)c.data;
          m->data.len = c.data_len;
          m->session_id = c.session_id;
          m->joined_offset = c.joined_offset;
          v->left_members[v->n_left_members++] = m;
        }
        continue;
      }
      Synod__GroupMember *m = &ms[v->n_joined];
      synod__group_member__init(m);
      m->name = arena_str(a, c.name, c.name_len);
      m->data.data = (uint8_t *)c.data;
      m->data.len = c.data_len;
      m->session_id = c.session_id;
      m->joined_offset = it->offset;
      v->joined[v->n_joined++] = m;
    }
    x->body_case = SYNOD__GROUP_ITEM__BODY_VIEW;
    x->view = v;
    break;
  }
  case FSM_GROUP_MESSAGE: {
    Synod__GroupMessage *m = fsm_arena_calloc(a, 1, sizeof *m);
    synod__group_message__init(m);
    m->from = arena_str(a, it->from, it->from_len);
    m->to = arena_str(a, it->to, it->to_len);
    m->data.data = (uint8_t *)it->data;
    m->data.len = it->len;
    x->body_case = SYNOD__GROUP_ITEM__BODY_MESSAGE;
    x->message = m;
    break;
  }
  case FSM_GROUP_STATE_REQUEST: {
    Synod__GroupStateRequested *q = fsm_arena_calloc(a, 1, sizeof *q);
    synod__group_state_requested__init(q);
    q->to = arena_str(a, it->to, it->to_len);
    q->member = arena_str(a, it->from, it->from_len);
    q->empty = fsm_group_item_empty(it);
    x->body_case = SYNOD__GROUP_ITEM__BODY_STATE_REQUEST;
    x->state_request = q;
    break;
  }
  case FSM_GROUP_CHECKPOINT: {
    Synod__GroupCheckpointInfo *c = fsm_arena_calloc(a, 1, sizeof *c);
    synod__group_checkpoint_info__init(c);
    c->offset = it->checkpoint_offset;
    c->bytes = it->checkpoint_bytes;
    c->index = it->index;
    c->time_ms = it->time_ms;
    c->member = arena_str(a, it->from, it->from_len);
    x->body_case = SYNOD__GROUP_ITEM__BODY_CHECKPOINT;
    x->checkpoint = c;
    break;
  }
  }
}

/* The pb and its arena in one allocation. */
struct group_item_pb {
  Synod__GroupItem item;
  struct fsm_arena *arena;
};

Synod__GroupItem *fsm_group_item_pb(const struct fsm_group_item *it) {
  struct group_item_pb *x = fsm_xcalloc(1, sizeof *x);
  x->arena = fsm_arena_new();
  fsm_group_item_to_pb(it, x->arena, &x->item);
  return &x->item;
}

void fsm_group_item_pb_free(Synod__GroupItem *pb) {
  if (pb != NULL) {
    struct group_item_pb *x = FSM_CONTAINER(pb, struct group_item_pb, item);
    fsm_arena_free(x->arena);
    free(x);
  }
}
