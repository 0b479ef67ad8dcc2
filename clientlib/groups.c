/* Groups: join, leave, send, checkpoints, state requests and reads
 * (synod.h "groups"), as requests of the engine: building their bodies,
 * checking what the client can check before sending, turning the
 * answers into synod_group_* results for both interfaces, and the two
 * calls that take several requests: a checkpoint stored in chunks and a
 * checkpoint read in chunks. The membership handle is group_member.c's. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"

/* The smallest chunk a store falls back to when a server refuses a
 * chunk as too big. */
#define CHUNK_BYTES_MIN (64u * 1024u)

bool op_kind_is_group(enum op_kind kind) {
  return kind >= OP_GROUP_JOIN && kind <= OP_GROUP_SUBSCRIBE;
}

/* ------------------------------------------------------------ checks */

static int member_check(const char *what, const char *member, bool required,
                        char *errmsg) {
  size_t n = member != NULL ? strlen(member) : 0;
  if (n == 0 && required) {
    errmsg_printf(errmsg, "%s: no member name", what);
    return SYNOD_EINVAL;
  }
  if (n > SYNOD_GROUP_MEMBER_MAX) {
    errmsg_printf(errmsg, "%s: a member name of %zu bytes; at most %d", what, n,
                  SYNOD_GROUP_MEMBER_MAX);
    return SYNOD_EINVAL;
  }
  return 0;
}

static int group_args_check(enum op_kind kind, const struct group_args *g,
                            char *errmsg) {
  const char *what = op_kind_name(kind);
  int rv = 0;
  if (kind != OP_GROUP_LIST) {
    rv = name_check(what, g->group, errmsg);
  } else if (g->after != NULL && strlen(g->after) > SYNOD_NAME_MAX) {
    errmsg_printf(errmsg, "%s: `after` of %zu bytes", what, strlen(g->after));
    rv = SYNOD_EINVAL;
  }
  if (rv != 0) {
    return rv;
  }
  switch (kind) {
  case OP_GROUP_JOIN:
  case OP_GROUP_LEAVE:
  case OP_GROUP_CHECKPOINT:
  case OP_GROUP_STATE_REQUEST:
    rv = member_check(what, g->member, true, errmsg);
    break;
  case OP_GROUP_SEND:
    rv = member_check(what, g->to, false, errmsg);
    if (rv == 0) {
      rv = member_check(what, g->sender, false, errmsg);
    }
    break;
  case OP_GROUP_READ:
  case OP_GROUP_SUBSCRIBE: /* no member: an observer */
    rv = member_check(what, g->member, false, errmsg);
    break;
  default:
    break;
  }
  if (rv == 0 && g->data == NULL && g->data_len > 0) {
    errmsg_printf(errmsg, "%s: %zu bytes of data and no pointer", what,
                  g->data_len);
    rv = SYNOD_EINVAL;
  }
  if (rv == 0 && kind == OP_GROUP_SUBSCRIBE &&
      g->credits > SYNOD_SUBSCRIBE_WINDOW_MAX) {
    errmsg_printf(errmsg, "%s: a window of %u; at most %d", what, g->credits,
                  SYNOD_SUBSCRIBE_WINDOW_MAX);
    rv = SYNOD_EINVAL;
  }
  return rv;
}

/* -------------------------------------------------------- building */

/* Every piece is malloc'd and hangs off the body, so that
 * protobuf_c_message_free_unpacked(body, NULL) frees the whole tree. */

static char *str_new(const char *s, bool *failed) {
  char *p = strdup(s != NULL ? s : "");
  *failed = *failed || p == NULL;
  return p;
}

static void bytes_new(ProtobufCBinaryData *b, const void *p, size_t n,
                      bool *failed) {
  b->len = 0;
  b->data = NULL;
  if (n == 0) {
    return;
  }
  b->data = malloc(n);
  if (b->data == NULL) {
    *failed = true;
    return;
  }
  memcpy(b->data, p, n);
  b->len = n;
}

/* Allocates and initialises the body of `kind` and points the request
 * at it; NULL when out of memory. */
static ProtobufCMessage *body_new(struct op *op) {
  Synod__Request *r = &op->req;
#define NEW(field, Type, init, CASE)                                           \
  do {                                                                         \
    r->field = malloc(sizeof *r->field);                                       \
    if (r->field == NULL) {                                                    \
      return NULL;                                                             \
    }                                                                          \
    init(r->field);                                                            \
    r->body_case = SYNOD__REQUEST__BODY_##CASE;                                \
    return &r->field->base;                                                    \
  } while (0)
  switch (op->kind) {
  case OP_GROUP_JOIN:
    NEW(group_join, GroupJoin, synod__group_join__init, GROUP_JOIN);
  case OP_GROUP_LEAVE:
    NEW(group_leave, GroupLeave, synod__group_leave__init, GROUP_LEAVE);
  case OP_GROUP_SEND:
    NEW(group_send, GroupSend, synod__group_send__init, GROUP_SEND);
  case OP_GROUP_CHECKPOINT:
    NEW(group_checkpoint, GroupCheckpoint, synod__group_checkpoint__init,
        GROUP_CHECKPOINT);
  case OP_GROUP_STATE_REQUEST:
    NEW(group_state_request, GroupStateRequest,
        synod__group_state_request__init, GROUP_STATE_REQUEST);
  case OP_GROUP_VIEW_GET:
    NEW(group_view, GroupViewGet, synod__group_view_get__init, GROUP_VIEW);
  case OP_GROUP_LIST:
    NEW(group_list, GroupList, synod__group_list__init, GROUP_LIST);
  case OP_GROUP_CHECKPOINT_READ:
    NEW(group_checkpoint_read, GroupCheckpointRead,
        synod__group_checkpoint_read__init, GROUP_CHECKPOINT_READ);
  case OP_GROUP_READ:
    NEW(group_read, GroupRead, synod__group_read__init, GROUP_READ);
  default:
    NEW(group_subscribe, GroupSubscribe, synod__group_subscribe__init,
        GROUP_SUBSCRIBE);
  }
#undef NEW
}

/* Fills the body body_new made; *failed on an allocation failure. */
static void body_fill(struct op *op, const struct group_args *g, bool *failed) {
  Synod__Request *r = &op->req;
  switch (op->kind) {
  case OP_GROUP_JOIN:
    r->group_join->group = str_new(g->group, failed);
    r->group_join->member = str_new(g->member, failed);
    bytes_new(&r->group_join->data, g->data, g->data_len, failed);
    r->group_join->want_state = g->want_state;
    break;
  case OP_GROUP_LEAVE:
    r->group_leave->group = str_new(g->group, failed);
    r->group_leave->member = str_new(g->member, failed);
    break;
  case OP_GROUP_SEND:
    r->group_send->group = str_new(g->group, failed);
    r->group_send->to = str_new(g->to, failed);
    r->group_send->from = str_new(g->sender, failed);
    r->group_send->message_id = str_new("", failed);
    bytes_new(&r->group_send->data, g->data, g->data_len, failed);
    break;
  case OP_GROUP_CHECKPOINT:
    r->group_checkpoint->group = str_new(g->group, failed);
    r->group_checkpoint->member = str_new(g->member, failed);
    r->group_checkpoint->offset = g->offset;
    r->group_checkpoint->total_bytes = g->total_bytes;
    r->group_checkpoint->chunk_offset = g->chunk_offset;
    bytes_new(&r->group_checkpoint->chunk, g->data, g->data_len, failed);
    break;
  case OP_GROUP_STATE_REQUEST:
    r->group_state_request->group = str_new(g->group, failed);
    r->group_state_request->member = str_new(g->member, failed);
    break;
  case OP_GROUP_VIEW_GET:
    r->group_view->group = str_new(g->group, failed);
    break;
  case OP_GROUP_LIST:
    r->group_list->after = str_new(g->after, failed);
    r->group_list->limit = g->limit;
    break;
  case OP_GROUP_CHECKPOINT_READ:
    r->group_checkpoint_read->group = str_new(g->group, failed);
    r->group_checkpoint_read->offset = g->offset;
    r->group_checkpoint_read->from = g->chunk_offset;
    r->group_checkpoint_read->max_bytes = g->max;
    r->group_checkpoint_read->known_index = g->known_index;
    break;
  case OP_GROUP_READ:
    r->group_read->group = str_new(g->group, failed);
    r->group_read->member = str_new(g->member, failed);
    r->group_read->from = g->from;
    r->group_read->max = g->max;
    r->group_read->known_index = g->known_index;
    break;
  default:
    r->group_subscribe->group = str_new(g->group, failed);
    r->group_subscribe->member = str_new(g->member, failed);
    r->group_subscribe->from = g->from;
    r->group_subscribe->known_index = g->known_index;
    r->group_subscribe->credits = g->credits;
    break;
  }
}

int groups_op_fill(struct op *op, const struct op_args *args, char *errmsg) {
  const struct group_args *g = args->group;
  bool failed = false;
  int rv;
  if (g == NULL) {
    errmsg_printf(errmsg, "%s: no arguments", op_kind_name(op->kind));
    return SYNOD_EINVAL;
  }
  if ((rv = group_args_check(op->kind, g, errmsg)) != 0) {
    return rv;
  }
  op->key_body = body_new(op);
  if (op->key_body == NULL) {
    op->req.body_case = SYNOD__REQUEST__BODY__NOT_SET;
    return SYNOD_ENOMEM;
  }
  body_fill(op, g, &failed);
  if (failed) {
    return SYNOD_ENOMEM; /* op_free frees the tree */
  }
  op->req.stale = (g->flags & SYNOD_READ_STALE) != 0 &&
                  !op_kind_sequenced(op->kind) &&
                  op->kind != OP_GROUP_SUBSCRIBE;
  return 0;
}

/* --------------------------------------------------------- results */

/* n bytes and a NUL. */
static void *text_dup(const void *p, size_t n) {
  uint8_t *out = malloc(n + 1);
  if (out != NULL) {
    if (n > 0) {
      memcpy(out, p, n);
    }
    out[n] = '\0';
  }
  return out;
}

static void member_free(struct synod_group_member *m) {
  free(m->name);
  free(m->data);
  memset(m, 0, sizeof *m);
}

void synod_group_view_free(struct synod_group_view *v) {
  if (v == NULL) {
    return;
  }
  for (size_t i = 0; v->members != NULL && i < v->count; i++) {
    member_free(&v->members[i]);
  }
  free(v->members);
  memset(v, 0, sizeof *v);
}

void synod_group_state_free(struct synod_group_state *st) {
  if (st == NULL) {
    return;
  }
  free(st->coordinator);
  memset(st, 0, sizeof *st);
}

void synod_group_joined_free(struct synod_group_joined *j) {
  if (j == NULL) {
    return;
  }
  synod_group_view_free(&j->view);
  synod_group_state_free(&j->state);
  memset(j, 0, sizeof *j);
}

static void ckpt_info_free(struct synod_group_checkpoint_info *ci) {
  free(ci->member);
  memset(ci, 0, sizeof *ci);
}

void synod_group_info_free(struct synod_group_info *info) {
  if (info == NULL) {
    return;
  }
  free(info->name);
  synod_group_view_free(&info->view);
  ckpt_info_free(&info->checkpoint);
  memset(info, 0, sizeof *info);
}

void synod_group_list_free(struct synod_group_list *l) {
  if (l == NULL) {
    return;
  }
  for (size_t i = 0; l->groups != NULL && i < l->count; i++) {
    synod_group_info_free(&l->groups[i]);
  }
  free(l->groups);
  memset(l, 0, sizeof *l);
}

void synod_group_checkpoint_free(struct synod_group_checkpoint *ck) {
  if (ck == NULL) {
    return;
  }
  ckpt_info_free(&ck->info);
  free(ck->data);
  memset(ck, 0, sizeof *ck);
}

void synod_group_items_free(struct synod_group_items *items) {
  if (items == NULL) {
    return;
  }
  for (size_t i = 0; items->items != NULL && i < items->count; i++) {
    group_item_clear(&items->items[i]);
  }
  free(items->items);
  if (items->internal != NULL) {
    synod__group_items__free_unpacked(items->internal, NULL);
  }
  memset(items, 0, sizeof *items);
}

static int member_from_pb(const Synod__GroupMember *pb,
                          struct synod_group_member *out) {
  memset(out, 0, sizeof *out);
  out->name = text_dup(pb->name, strlen(pb->name));
  out->data = text_dup(pb->data.data, pb->data.len);
  if (out->name == NULL || out->data == NULL) {
    member_free(out);
    return SYNOD_ENOMEM;
  }
  out->data_len = pb->data.len;
  out->session_id = pb->session_id;
  out->joined_offset = pb->joined_offset;
  return 0;
}

int group_view_from_pb(const Synod__GroupView *pb,
                       struct synod_group_view *out) {
  memset(out, 0, sizeof *out);
  if (pb == NULL) {
    return 0;
  }
  out->view_id = pb->view_id;
  out->offset = pb->offset;
  out->members =
      calloc(pb->n_members ? pb->n_members : 1, sizeof *out->members);
  if (out->members == NULL) {
    return SYNOD_ENOMEM;
  }
  for (size_t i = 0; i < pb->n_members; i++) {
    if (member_from_pb(pb->members[i], &out->members[i]) != 0) {
      synod_group_view_free(out);
      return SYNOD_ENOMEM;
    }
    out->count = i + 1;
  }
  return 0;
}

static int state_from_pb(const Synod__GroupState *pb,
                         struct synod_group_state *out) {
  memset(out, 0, sizeof *out);
  if (pb == NULL) {
    out->coordinator = text_dup("", 0);
    return out->coordinator != NULL ? 0 : SYNOD_ENOMEM;
  }
  out->source = (enum synod_group_state_source)pb->source;
  out->checkpoint_offset = pb->checkpoint_offset;
  out->checkpoint_bytes = pb->checkpoint_bytes;
  out->request_offset = pb->request_offset;
  out->coordinator = text_dup(pb->coordinator, strlen(pb->coordinator));
  return out->coordinator != NULL ? 0 : SYNOD_ENOMEM;
}

static int ckpt_info_from_pb(const Synod__GroupCheckpointInfo *pb,
                             struct synod_group_checkpoint_info *out) {
  memset(out, 0, sizeof *out);
  if (pb == NULL) {
    return 0;
  }
  out->offset = pb->offset;
  out->bytes = pb->bytes;
  out->index = pb->index;
  out->time_ms = pb->time_ms;
  out->member = text_dup(pb->member, strlen(pb->member));
  return out->member != NULL ? 0 : SYNOD_ENOMEM;
}

static int info_from_pb(const Synod__GroupInfo *pb,
                        struct synod_group_info *out) {
  int rv;
  memset(out, 0, sizeof *out);
  out->name = text_dup(pb->name, strlen(pb->name));
  if (out->name == NULL) {
    return SYNOD_ENOMEM;
  }
  out->members = pb->members;
  out->first_offset = pb->first_offset;
  out->next_offset = pb->next_offset;
  out->bytes = pb->bytes;
  out->has_checkpoint = pb->checkpoint != NULL;
  out->checkpoint_usable = pb->checkpoint_usable;
  out->state_requests = pb->state_requests;
  rv = group_view_from_pb(pb->view, &out->view);
  if (rv == 0) {
    rv = ckpt_info_from_pb(pb->checkpoint, &out->checkpoint);
  }
  if (rv != 0) {
    synod_group_info_free(out);
  }
  return rv;
}

static int list_from_pb(const Synod__GroupListReply *pb,
                        struct synod_group_list *out) {
  memset(out, 0, sizeof *out);
  out->more = pb->more;
  out->groups = calloc(pb->n_groups ? pb->n_groups : 1, sizeof *out->groups);
  if (out->groups == NULL) {
    return SYNOD_ENOMEM;
  }
  for (size_t i = 0; i < pb->n_groups; i++) {
    if (info_from_pb(pb->groups[i], &out->groups[i]) != 0) {
      synod_group_list_free(out);
      return SYNOD_ENOMEM;
    }
    out->count = i + 1;
  }
  return 0;
}

void group_item_clear(struct synod_group_item *it) {
  free((void *)it->joined);
  it->joined = NULL;
}

int group_item_from_pb(const Synod__GroupItem *pb,
                       struct synod_group_item *out) {
  memset(out, 0, sizeof *out);
  out->offset = pb->offset;
  out->index = pb->index;
  out->time_ms = pb->time_ms;
  out->from = out->to = out->member = "";
  switch (pb->body_case) {
  case SYNOD__GROUP_ITEM__BODY_VIEW: {
    const Synod__GroupViewChange *v = pb->view;
    struct synod_group_member *joined =
        calloc(v->n_joined ? v->n_joined : 1, sizeof *joined);
    if (joined == NULL) {
      return SYNOD_ENOMEM;
    }
    for (size_t i = 0; i < v->n_joined; i++) {
      joined[i].name = v->joined[i]->name;
      joined[i].data = v->joined[i]->data.data;
      joined[i].data_len = v->joined[i]->data.len;
      joined[i].session_id = v->joined[i]->session_id;
      joined[i].joined_offset = v->joined[i]->joined_offset;
    }
    out->type = SYNOD_GROUP_ITEM_VIEW;
    out->view_id = v->view_id;
    out->joined = joined;
    out->joined_n = v->n_joined;
    out->left = v->left;
    out->left_n = v->n_left;
    out->members = v->members;
    return 0;
  }
  case SYNOD__GROUP_ITEM__BODY_MESSAGE:
    out->type = SYNOD_GROUP_ITEM_MESSAGE;
    out->from = pb->message->from;
    out->to = pb->message->to;
    out->data = pb->message->data.data != NULL ? pb->message->data.data
                                               : (const void *)"";
    out->len = pb->message->data.len;
    return 0;
  case SYNOD__GROUP_ITEM__BODY_STATE_REQUEST:
    out->type = SYNOD_GROUP_ITEM_STATE_REQUEST;
    out->to = pb->state_request->to;
    out->member = pb->state_request->member;
    /* A server before the flag says it by the address alone. */
    out->empty = pb->state_request->empty ||
                 strcmp(pb->state_request->to, pb->state_request->member) == 0;
    return 0;
  case SYNOD__GROUP_ITEM__BODY_CHECKPOINT:
    out->type = SYNOD_GROUP_ITEM_CHECKPOINT;
    out->checkpoint.offset = pb->checkpoint->offset;
    out->checkpoint.bytes = pb->checkpoint->bytes;
    out->checkpoint.index = pb->checkpoint->index;
    out->checkpoint.time_ms = pb->checkpoint->time_ms;
    out->checkpoint.member = pb->checkpoint->member;
    return 0;
  default:
    return SYNOD_EMALFORMED;
  }
}

/* A read's items: the message copied whole (packed and unpacked again,
 * so every string is NUL-terminated and owned), the items pointing in. */
static int items_from_pb(const Synod__GroupItems *pb,
                         struct synod_group_items *out) {
  size_t n = synod__group_items__get_packed_size(pb);
  uint8_t *buf = malloc(n ? n : 1);
  Synod__GroupItems *copy;
  memset(out, 0, sizeof *out);
  if (buf == NULL) {
    return SYNOD_ENOMEM;
  }
  synod__group_items__pack(pb, buf);
  copy = synod__group_items__unpack(NULL, n, buf);
  free(buf);
  if (copy == NULL) {
    return SYNOD_ENOMEM;
  }
  out->internal = copy;
  /* Message data followed by a NUL, as promised: the copy's buffers are
   * its own (malloc'd by unpack), so they may grow by one byte. */
  for (size_t i = 0; i < copy->n_items; i++) {
    Synod__GroupItem *it = copy->items[i];
    if (it->body_case == SYNOD__GROUP_ITEM__BODY_MESSAGE) {
      ProtobufCBinaryData *d = &it->message->data;
      uint8_t *p = realloc(d->data, d->len + 1);
      if (p == NULL) {
        synod_group_items_free(out);
        return SYNOD_ENOMEM;
      }
      p[d->len] = '\0';
      d->data = p;
    }
  }
  out->first_offset = copy->first_offset;
  out->next_offset = copy->next_offset;
  out->items = calloc(copy->n_items ? copy->n_items : 1, sizeof *out->items);
  if (out->items == NULL) {
    synod_group_items_free(out);
    return SYNOD_ENOMEM;
  }
  for (size_t i = 0; i < copy->n_items; i++) {
    int rv = group_item_from_pb(copy->items[i], &out->items[i]);
    if (rv != 0) {
      synod_group_items_free(out);
      return rv;
    }
    out->count = i + 1;
  }
  return 0;
}

static int chunk_from_pb(const Synod__GroupCheckpointChunk *pb,
                         struct group_chunk *out) {
  memset(out, 0, sizeof *out);
  out->from = pb->from;
  out->last = pb->last;
  out->len = pb->data.len;
  out->data = text_dup(pb->data.data, pb->data.len);
  if (out->data == NULL || ckpt_info_from_pb(pb->checkpoint, &out->info)) {
    free(out->data);
    ckpt_info_free(&out->info);
    return SYNOD_ENOMEM;
  }
  return 0;
}

static Synod__Response__BodyCase expected_case(enum op_kind kind) {
  switch (kind) {
  case OP_GROUP_JOIN:
    return SYNOD__RESPONSE__BODY_GROUP_JOIN;
  case OP_GROUP_LEAVE:
    return SYNOD__RESPONSE__BODY_GROUP_LEAVE;
  case OP_GROUP_SEND:
    return SYNOD__RESPONSE__BODY_GROUP_SEND;
  case OP_GROUP_CHECKPOINT:
    return SYNOD__RESPONSE__BODY_GROUP_CHECKPOINT;
  case OP_GROUP_STATE_REQUEST:
    return SYNOD__RESPONSE__BODY_GROUP_STATE;
  case OP_GROUP_VIEW_GET:
    return SYNOD__RESPONSE__BODY_GROUP_INFO;
  case OP_GROUP_LIST:
    return SYNOD__RESPONSE__BODY_GROUP_LIST;
  case OP_GROUP_CHECKPOINT_READ:
    return SYNOD__RESPONSE__BODY_GROUP_CHECKPOINT_CHUNK;
  case OP_GROUP_READ:
    return SYNOD__RESPONSE__BODY_GROUP_ITEMS;
  default:
    return SYNOD__RESPONSE__BODY_GROUP_SUBSCRIBE;
  }
}

int groups_result_from_response(enum op_kind kind, const Synod__Response *resp,
                                union synod_result *out, char *errmsg) {
  if (resp->body_case != expected_case(kind) || resp->group_join == NULL) {
    errmsg_printf(errmsg, "%s: the server answered with body %d, not %d",
                  op_kind_name(kind), (int)resp->body_case,
                  (int)expected_case(kind));
    return SYNOD_EMALFORMED;
  }
  switch (kind) {
  case OP_GROUP_JOIN: {
    struct synod_group_joined *j = &out->group_joined;
    int rv = group_view_from_pb(resp->group_join->view, &j->view);
    j->index = resp->group_join->index;
    if (rv == 0) {
      rv = state_from_pb(resp->group_join->state, &j->state);
    }
    if (rv != 0) {
      synod_group_joined_free(j);
    }
    return rv;
  }
  case OP_GROUP_LEAVE:
    out->group_left.view_id = resp->group_leave->view_id;
    out->group_left.offset = resp->group_leave->offset;
    return 0;
  case OP_GROUP_SEND:
    out->group_sent.offset = resp->group_send->offset;
    out->group_sent.index = resp->group_send->index;
    out->group_sent.duplicate = resp->group_send->duplicate;
    return 0;
  case OP_GROUP_CHECKPOINT:
    out->group_chunk_stored.received = resp->group_checkpoint->received;
    out->group_chunk_stored.total_bytes = resp->group_checkpoint->total_bytes;
    out->group_chunk_stored.committed = resp->group_checkpoint->committed;
    out->group_chunk_stored.notice_offset =
        resp->group_checkpoint->notice_offset;
    return 0;
  case OP_GROUP_STATE_REQUEST:
    return state_from_pb(resp->group_state, &out->group_state);
  case OP_GROUP_VIEW_GET:
    return info_from_pb(resp->group_info, &out->group_info);
  case OP_GROUP_LIST:
    return list_from_pb(resp->group_list, &out->group_list);
  case OP_GROUP_CHECKPOINT_READ:
    return chunk_from_pb(resp->group_checkpoint_chunk, &out->group_chunk);
  case OP_GROUP_READ:
    return items_from_pb(resp->group_items, &out->group_items);
  default:
    return 0; /* subscribe: subscribe.c reads the reply itself */
  }
}

void groups_result_free(enum op_kind kind, union synod_result *r) {
  switch (kind) {
  case OP_GROUP_JOIN:
    synod_group_joined_free(&r->group_joined);
    break;
  case OP_GROUP_STATE_REQUEST:
    synod_group_state_free(&r->group_state);
    break;
  case OP_GROUP_VIEW_GET:
    synod_group_info_free(&r->group_info);
    break;
  case OP_GROUP_LIST:
    synod_group_list_free(&r->group_list);
    break;
  case OP_GROUP_CHECKPOINT_READ:
    free(r->group_chunk.data);
    ckpt_info_free(&r->group_chunk.info);
    memset(&r->group_chunk, 0, sizeof r->group_chunk);
    break;
  case OP_GROUP_READ:
    synod_group_items_free(&r->group_items);
    break;
  default:
    break;
  }
}

void groups_deliver(enum op_kind kind, void (*cb)(void), void *arg, int status,
                    const union synod_result *r) {
  bool ok = status == 0;
  switch (kind) {
  case OP_GROUP_JOIN:
    ((synod_group_joined_cb)cb)(arg, status, ok ? &r->group_joined : NULL);
    break;
  case OP_GROUP_LEAVE:
    ((synod_group_left_cb)cb)(arg, status, ok ? &r->group_left : NULL);
    break;
  case OP_GROUP_SEND:
    ((synod_group_sent_cb)cb)(arg, status, ok ? &r->group_sent : NULL);
    break;
  case OP_GROUP_STATE_REQUEST:
    ((synod_group_state_cb)cb)(arg, status, ok ? &r->group_state : NULL);
    break;
  case OP_GROUP_VIEW_GET:
    ((synod_group_info_cb)cb)(arg, status, ok ? &r->group_info : NULL);
    break;
  case OP_GROUP_LIST:
    ((synod_group_list_cb)cb)(arg, status, ok ? &r->group_list : NULL);
    break;
  case OP_GROUP_READ:
    ((synod_group_items_cb)cb)(arg, status, ok ? &r->group_items : NULL);
    break;
  default: /* chunks and subscribe are never submitted with a typed cb */
    break;
  }
}

/* ---------------------------------------------- chunked store and read
 *
 * One state machine per call, on the loop thread: each chunk is an op
 * whose answer submits the next one. A store's chunks are writes in the
 * session (retried exactly once each); a read's are reads. */

struct ckpt_call {
  struct synod_async *a;
  bool read; /* a checkpoint read; else a store */
  char *group, *member;
  unsigned flags;
  uint64_t offset; /* store: the offset it reflects; read: the one read */
  uint8_t *data;   /* store: the copy sent; read: what came so far */
  size_t len;      /* store: all of it; read: the checkpoint's size */
  size_t at;       /* bytes stored or read so far */
  size_t chunk;    /* store: bytes per chunk now */
  unsigned restarts;
  bool first;           /* read: the next chunk is the first one */
  uint64_t known_index; /* read: GroupCheckpointRead.known_index */
  struct synod_group_checkpoint_info info; /* read: the checkpoint's */
  void (*cb)(void);
  void *arg;
};

static void ckpt_call_free(struct ckpt_call *k) {
  free(k->group);
  free(k->member);
  free(k->data);
  ckpt_info_free(&k->info);
  free(k);
}

static int ckpt_next(struct ckpt_call *k);

/* Ends k: its callback once, with the result or the error. */
static void ckpt_finish(struct ckpt_call *k, int status, const char *errmsg,
                        uint64_t notice_offset) {
  struct synod_async *a = k->a;
  if (status != 0 && errmsg != NULL && errmsg != a->errmsg) {
    snprintf(a->errmsg, sizeof a->errmsg, "%s", errmsg);
  }
  if (k->read) {
    struct synod_group_checkpoint ck = {
        .info = k->info, .data = k->data, .len = k->len};
    ((synod_group_checkpoint_cb)k->cb)(k->arg, status,
                                       status == 0 ? &ck : NULL);
  } else {
    struct synod_group_stored st = {.notice_offset = notice_offset,
                                    .bytes = k->len};
    ((synod_group_stored_cb)k->cb)(k->arg, status, status == 0 ? &st : NULL);
  }
  ckpt_call_free(k);
}

/* Submits the next chunk, or finishes k with the error. */
static void ckpt_continue(struct ckpt_call *k) {
  int rv = ckpt_next(k);
  if (rv != 0) {
    ckpt_finish(k, rv, k->a->errmsg, 0);
  }
}

static void ckpt_store_done(struct ckpt_call *k, int status,
                            const Synod__Response *resp, const char *errmsg) {
  const Synod__GroupCheckpointReply *r;
  size_t sent = k->len - k->at < k->chunk ? k->len - k->at : k->chunk;
  if (status == SYNOD_ETOOBIG && k->chunk > CHUNK_BYTES_MIN &&
      sent == k->chunk) {
    k->chunk /= 2; /* a server with a lower chunk bound: smaller pieces */
    ckpt_continue(k);
    return;
  }
  if (status != 0) {
    ckpt_finish(k, status, errmsg, 0);
    return;
  }
  if (resp->body_case != SYNOD__RESPONSE__BODY_GROUP_CHECKPOINT) {
    ckpt_finish(k, SYNOD_EMALFORMED, "group checkpoint: not its reply", 0);
    return;
  }
  r = resp->group_checkpoint;
  k->at += sent;
  if (r->received != k->at) {
    char why[SYNOD_ERRMSG_BYTES];
    errmsg_printf(why,
                  "group checkpoint: the server has %" PRIu64
                  " bytes, the library sent %zu",
                  r->received, k->at);
    ckpt_finish(k, SYNOD_EINTERNAL, why, 0);
    return;
  }
  if (k->at == k->len) {
    ckpt_finish(k, r->committed ? 0 : SYNOD_EINTERNAL,
                "group checkpoint: every byte sent and not committed",
                r->notice_offset);
    return;
  }
  ckpt_continue(k);
}

/* Reads k's checkpoint again from its start (replaced while read), or
 * ends k with SYNOD_ECOMPACTED after SYNOD_GROUP_READ_RESTARTS_MAX. */
static void ckpt_restart(struct ckpt_call *k) {
  if (k->restarts >= SYNOD_GROUP_READ_RESTARTS_MAX) {
    ckpt_finish(k, SYNOD_ECOMPACTED,
                "group checkpoint read: replaced while read, too often", 0);
    return;
  }
  k->restarts++;
  k->first = true;
  k->offset = 0;
  k->at = 0;
  ckpt_continue(k);
}

static void ckpt_read_done(struct ckpt_call *k, int status,
                           const Synod__Response *resp, const char *errmsg) {
  const Synod__GroupCheckpointChunk *r;
  /* After the first chunk: the checkpoint replaced by one at another
   * offset (SYNOD_ECOMPACTED), or by a shorter one (SYNOD_ERANGE). */
  if (!k->first && (status == SYNOD_ECOMPACTED || status == SYNOD_ERANGE)) {
    ckpt_restart(k);
    return;
  }
  if (status != 0) {
    ckpt_finish(k, status, errmsg, 0);
    return;
  }
  r = resp->group_checkpoint_chunk;
  if (resp->body_case != SYNOD__RESPONSE__BODY_GROUP_CHECKPOINT_CHUNK ||
      r->checkpoint == NULL) {
    ckpt_finish(k, SYNOD_EMALFORMED,
                "group checkpoint read: an answer that is not a chunk", 0);
    return;
  }
  if (!k->first && r->checkpoint->index != k->info.index) {
    /* Another checkpoint at the same offset (stored again, or a replica
     * with another incarnation of the group): its chunks are not the
     * first one's. Read it from its start. */
    ckpt_restart(k);
    return;
  }
  if (r->from != k->at || r->data.len > r->checkpoint->bytes - k->at) {
    ckpt_finish(k, SYNOD_EMALFORMED,
                "group checkpoint read: a chunk that does not fit", 0);
    return;
  }
  if (k->first) { /* which checkpoint it is */
    uint8_t *p = realloc(k->data, r->checkpoint->bytes + 1);
    if (p == NULL) {
      ckpt_finish(k, SYNOD_ENOMEM, "group checkpoint read: out of memory", 0);
      return;
    }
    k->data = p;
    k->len = r->checkpoint->bytes;
    k->offset = r->checkpoint->offset;
    if (r->checkpoint->index > k->known_index) {
      /* The group that holds it, and no later one of the name, also
       * after a restart. */
      k->known_index = r->checkpoint->index;
    }
    ckpt_info_free(&k->info);
    if (ckpt_info_from_pb(r->checkpoint, &k->info) != 0) {
      ckpt_finish(k, SYNOD_ENOMEM, "group checkpoint read: out of memory", 0);
      return;
    }
    k->first = false;
  }
  if (r->data.len > 0) {
    memcpy(k->data + k->at, r->data.data, r->data.len);
  }
  k->at += r->data.len;
  if (k->at == k->len) {
    k->data[k->len] = '\0';
    ckpt_finish(k, 0, "", 0);
    return;
  }
  if (r->data.len == 0 || r->last) {
    ckpt_finish(k, SYNOD_EMALFORMED,
                "group checkpoint read: the chunks ended early", 0);
    return;
  }
  ckpt_continue(k);
}

static void ckpt_op_done(struct op *op, int status, const Synod__Response *resp,
                         const char *errmsg) {
  struct ckpt_call *k = op->arg;
  if (k->read) {
    ckpt_read_done(k, status, resp, errmsg);
  } else {
    ckpt_store_done(k, status, resp, errmsg);
  }
}

/* Submits k's next chunk. 0, or an error (with k->a->errmsg). */
static int ckpt_next(struct ckpt_call *k) {
  struct group_args g = {.group = k->group,
                         .member = k->member,
                         .offset = k->offset,
                         .chunk_offset = k->at,
                         .known_index = k->known_index,
                         .flags = k->flags};
  struct op_args args = {.group = &g};
  struct op *op;
  int rv;
  if (!k->read) {
    g.data = k->data + k->at;
    g.data_len = k->len - k->at < k->chunk ? k->len - k->at : k->chunk;
    g.total_bytes = k->len;
  }
  rv = op_build(k->read ? OP_GROUP_CHECKPOINT_READ : OP_GROUP_CHECKPOINT, &args,
                &op, k->a->errmsg);
  if (rv != 0) {
    return rv;
  }
  op->done = ckpt_op_done;
  op->arg = k;
  rv = engine_submit(k->a, op, 0);
  if (rv != 0) {
    op_free(op);
  }
  return rv;
}

/* Starts a checkpoint store (g: group, member, offset, data) or read
 * (g: group, flags, known_index). */
static int ckpt_start(struct synod_async *a, bool read,
                      const struct group_args *g, void (*cb)(void), void *arg) {
  struct ckpt_call *k = calloc(1, sizeof *k);
  size_t len = read ? 0 : g->data_len;
  int rv;
  if (k == NULL) {
    return SYNOD_ENOMEM;
  }
  k->a = a;
  k->read = read;
  k->flags = g->flags;
  k->offset = read ? 0 : g->offset;
  k->len = len;
  k->known_index = read ? g->known_index : 0;
  k->first = true;
  k->chunk = SYNOD_GROUP_CHUNK_BYTES;
  k->cb = cb;
  k->arg = arg;
  k->group = strdup(g->group != NULL ? g->group : "");
  k->member = strdup(g->member != NULL ? g->member : "");
  k->data = malloc(len == 0 ? 1 : len);
  if (k->group == NULL || k->member == NULL || k->data == NULL) {
    ckpt_call_free(k);
    return SYNOD_ENOMEM;
  }
  if (len > 0) {
    if (g->data == NULL) {
      ckpt_call_free(k);
      errmsg_printf(a->errmsg, "group checkpoint: %zu bytes and no pointer",
                    len);
      return SYNOD_EINVAL;
    }
    memcpy(k->data, g->data, len);
  }
  rv = ckpt_next(k);
  if (rv != 0) {
    ckpt_call_free(k);
  }
  return rv;
}

/* ---------------------------------------------------------- async API */

typedef void (*any_cb)(void);

int synod_async_group_join(struct synod_async *a, const char *group,
                           const char *member, const void *data,
                           size_t data_len, bool want_state,
                           synod_group_joined_cb cb, void *arg) {
  struct group_args g = {.group = group,
                         .member = member,
                         .data = data,
                         .data_len = data_len,
                         .want_state = want_state};
  struct op_args args = {.group = &g};
  return async_submit(a, OP_GROUP_JOIN, &args, (any_cb)cb, arg, 0);
}

int synod_async_group_leave(struct synod_async *a, const char *group,
                            const char *member, synod_group_left_cb cb,
                            void *arg) {
  struct group_args g = {.group = group, .member = member};
  struct op_args args = {.group = &g};
  return async_submit(a, OP_GROUP_LEAVE, &args, (any_cb)cb, arg, 0);
}

int synod_async_group_send(struct synod_async *a, const char *group,
                           const char *to, const char *from, const void *data,
                           size_t len, synod_group_sent_cb cb, void *arg) {
  struct group_args g = {
      .group = group, .to = to, .sender = from, .data = data, .data_len = len};
  struct op_args args = {.group = &g};
  return async_submit(a, OP_GROUP_SEND, &args, (any_cb)cb, arg, 0);
}

int synod_async_group_checkpoint_store(struct synod_async *a, const char *group,
                                       const char *member, uint64_t offset,
                                       const void *data, size_t len,
                                       synod_group_stored_cb cb, void *arg) {
  if (cb == NULL) {
    errmsg_printf(a->errmsg, "group checkpoint: no callback");
    return SYNOD_EINVAL;
  }
  struct group_args g = {.group = group,
                         .member = member,
                         .offset = offset,
                         .data = data,
                         .data_len = len};
  return ckpt_start(a, false, &g, (any_cb)cb, arg);
}

int synod_async_group_checkpoint_read(struct synod_async *a, const char *group,
                                      unsigned flags,
                                      synod_group_checkpoint_cb cb, void *arg) {
  if (cb == NULL) {
    errmsg_printf(a->errmsg, "group checkpoint read: no callback");
    return SYNOD_EINVAL;
  }
  struct group_args g = {.group = group, .flags = flags};
  return ckpt_start(a, true, &g, (any_cb)cb, arg);
}

int group_ckpt_read_start(struct synod_async *a, const char *group,
                          uint64_t known_index, synod_group_checkpoint_cb cb,
                          void *arg) {
  struct group_args g = {.group = group, .known_index = known_index};
  return ckpt_start(a, true, &g, (any_cb)cb, arg);
}

int synod_async_group_state_request(struct synod_async *a, const char *group,
                                    const char *member, synod_group_state_cb cb,
                                    void *arg) {
  struct group_args g = {.group = group, .member = member};
  struct op_args args = {.group = &g};
  return async_submit(a, OP_GROUP_STATE_REQUEST, &args, (any_cb)cb, arg, 0);
}

int synod_async_group_view_get(struct synod_async *a, const char *group,
                               unsigned flags, synod_group_info_cb cb,
                               void *arg) {
  struct group_args g = {.group = group, .flags = flags};
  struct op_args args = {.group = &g};
  return async_submit(a, OP_GROUP_VIEW_GET, &args, (any_cb)cb, arg, 0);
}

int synod_async_group_list(struct synod_async *a, const char *after,
                           uint32_t limit, unsigned flags,
                           synod_group_list_cb cb, void *arg) {
  struct group_args g = {.after = after, .limit = limit, .flags = flags};
  struct op_args args = {.group = &g};
  return async_submit(a, OP_GROUP_LIST, &args, (any_cb)cb, arg, 0);
}

int synod_async_group_read(struct synod_async *a, const char *group,
                           uint64_t from, uint32_t max, const char *member,
                           unsigned flags, synod_group_items_cb cb, void *arg) {
  return synod_async_group_read_pinned(a, group, from, max, member, flags, 0,
                                       cb, arg);
}

int synod_async_group_read_pinned(struct synod_async *a, const char *group,
                                  uint64_t from, uint32_t max,
                                  const char *member, unsigned flags,
                                  uint64_t known_index, synod_group_items_cb cb,
                                  void *arg) {
  struct group_args g = {.group = group,
                         .from = from,
                         .max = max,
                         .member = member,
                         .flags = flags,
                         .known_index = known_index};
  struct op_args args = {.group = &g};
  return async_submit(a, OP_GROUP_READ, &args, (any_cb)cb, arg, 0);
}

/* ------------------------------------------------------- blocking API */

/* Runs one group call; *r gets its result on 0. */
static int call(struct synod_client *c, enum op_kind kind,
                const struct group_args *g, uint32_t timeout_ms,
                union synod_result *r) {
  struct op_args args = {.group = g};
  return client_call(c, kind, &args, timeout_ms, r);
}

int synod_group_join(struct synod_client *c, const char *group,
                     const char *member, const void *data, size_t data_len,
                     bool want_state, uint32_t timeout_ms,
                     struct synod_group_joined *out) {
  struct group_args g = {.group = group,
                         .member = member,
                         .data = data,
                         .data_len = data_len,
                         .want_state = want_state};
  union synod_result r;
  int rv = call(c, OP_GROUP_JOIN, &g, timeout_ms, &r);
  if (rv == 0 && out != NULL) {
    *out = r.group_joined;
  } else if (rv == 0) {
    synod_group_joined_free(&r.group_joined);
  }
  return rv;
}

int synod_group_leave(struct synod_client *c, const char *group,
                      const char *member, uint32_t timeout_ms,
                      struct synod_group_left *out) {
  struct group_args g = {.group = group, .member = member};
  union synod_result r;
  int rv = call(c, OP_GROUP_LEAVE, &g, timeout_ms, &r);
  if (rv == 0 && out != NULL) {
    *out = r.group_left;
  }
  return rv;
}

int synod_group_send(struct synod_client *c, const char *group, const char *to,
                     const char *from, const void *data, size_t len,
                     uint32_t timeout_ms, struct synod_group_sent *out) {
  struct group_args g = {
      .group = group, .to = to, .sender = from, .data = data, .data_len = len};
  union synod_result r;
  int rv = call(c, OP_GROUP_SEND, &g, timeout_ms, &r);
  if (rv == 0 && out != NULL) {
    *out = r.group_sent;
  }
  return rv;
}

/* The time left until deadline_ms, at least 1 ms; 0 once it passed. */
static uint32_t time_left_ms(uint64_t deadline_ms) {
  struct timespec ts;
  uint64_t now;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
  return now >= deadline_ms                   ? 0
         : deadline_ms - now > UINT32_MAX - 1 ? UINT32_MAX - 1
                                              : (uint32_t)(deadline_ms - now);
}

static uint64_t deadline_in(struct synod_client *c, uint32_t timeout_ms) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 +
         (timeout_ms ? timeout_ms : client_request_timeout_ms(c));
}

int synod_group_checkpoint_store(struct synod_client *c, const char *group,
                                 const char *member, uint64_t offset,
                                 const void *data, size_t len,
                                 uint32_t timeout_ms,
                                 struct synod_group_stored *out) {
  uint64_t deadline = deadline_in(c, timeout_ms);
  size_t at = 0, chunk = SYNOD_GROUP_CHUNK_BYTES;
  union synod_result r;
  int rv;
  do {
    size_t n = len - at < chunk ? len - at : chunk;
    struct group_args g = {.group = group,
                           .member = member,
                           .offset = offset,
                           .total_bytes = len,
                           .chunk_offset = at,
                           .data = (const uint8_t *)data + at,
                           .data_len = n};
    uint32_t left = time_left_ms(deadline);
    if (left == 0) {
      client_set_errmsg(SYNOD_ETIMEDOUT,
                        "group checkpoint: not stored in time");
      return SYNOD_ETIMEDOUT;
    }
    rv = call(c, OP_GROUP_CHECKPOINT, &g, left, &r);
    if (rv == SYNOD_ETOOBIG && n == chunk && chunk > CHUNK_BYTES_MIN) {
      chunk /= 2; /* a server with a lower chunk bound: smaller pieces */
      continue;
    }
    if (rv != 0) {
      return rv;
    }
    at += n;
    if (r.group_chunk_stored.received != at) {
      client_set_errmsg(SYNOD_EINTERNAL, "group checkpoint: the server has "
                                         "another count of bytes than sent");
      return SYNOD_EINTERNAL;
    }
  } while (at < len);
  if (!r.group_chunk_stored.committed) {
    client_set_errmsg(SYNOD_EINTERNAL,
                      "group checkpoint: every byte sent and not committed");
    return SYNOD_EINTERNAL;
  }
  if (out != NULL) {
    out->notice_offset = r.group_chunk_stored.notice_offset;
    out->bytes = len;
  }
  return 0;
}

/* One pass over the latest checkpoint; SYNOD_ECOMPACTED if it was
 * replaced meanwhile. */
/* One pass of synod_group_checkpoint_read: SYNOD_ECOMPACTED when the
 * checkpoint was replaced while read (read it again). *known: the index
 * of the first checkpoint read, kept across passes (its group, and no
 * later one of the name). */
static int ckpt_read_once(struct synod_client *c, const char *group,
                          unsigned flags, uint64_t deadline, uint64_t *known,
                          struct synod_group_checkpoint *out) {
  struct group_args g = {.group = group, .flags = flags};
  union synod_result r;
  int rv;
  memset(out, 0, sizeof *out);
  for (;;) {
    uint32_t left = time_left_ms(deadline);
    if (left == 0) {
      synod_group_checkpoint_free(out);
      client_set_errmsg(SYNOD_ETIMEDOUT,
                        "group checkpoint read: not read in time");
      return SYNOD_ETIMEDOUT;
    }
    g.chunk_offset = out->len;
    g.offset = out->info.offset;
    g.known_index = *known;
    rv = call(c, OP_GROUP_CHECKPOINT_READ, &g, left, &r);
    if (rv == SYNOD_ERANGE && out->data != NULL) {
      rv = SYNOD_ECOMPACTED; /* replaced by a shorter one: read it again */
    }
    if (rv != 0) {
      synod_group_checkpoint_free(out);
      return rv;
    }
    struct group_chunk *k = &r.group_chunk;
    if (out->data != NULL && k->info.index != out->info.index) {
      /* Another checkpoint at the same offset: not the first chunk's. */
      groups_result_free(OP_GROUP_CHECKPOINT_READ, &r);
      synod_group_checkpoint_free(out);
      client_set_errmsg(SYNOD_ECOMPACTED,
                        "group checkpoint read: replaced while read");
      return SYNOD_ECOMPACTED; /* the caller reads the new one */
    }
    if (out->data == NULL) { /* the first: which checkpoint it is */
      out->info = k->info;
      memset(&k->info, 0, sizeof k->info);
      if (out->info.index > *known) {
        *known = out->info.index;
      }
      out->data = malloc(out->info.bytes + 1);
      if (out->data == NULL) {
        groups_result_free(OP_GROUP_CHECKPOINT_READ, &r);
        synod_group_checkpoint_free(out);
        return SYNOD_ENOMEM;
      }
    }
    bool fits = k->from == out->len && k->len <= out->info.bytes - out->len &&
                (k->len > 0 || out->len == out->info.bytes);
    if (fits && k->len > 0) {
      memcpy(out->data + out->len, k->data, k->len);
      out->len += k->len;
    }
    groups_result_free(OP_GROUP_CHECKPOINT_READ, &r);
    if (!fits) {
      synod_group_checkpoint_free(out);
      client_set_errmsg(SYNOD_EMALFORMED,
                        "group checkpoint read: a chunk that does not fit");
      return SYNOD_EMALFORMED;
    }
    if (out->len == out->info.bytes) {
      out->data[out->len] = '\0';
      return 0;
    }
  }
}

int synod_group_checkpoint_read(struct synod_client *c, const char *group,
                                unsigned flags, uint32_t timeout_ms,
                                struct synod_group_checkpoint *out) {
  uint64_t deadline = deadline_in(c, timeout_ms), known = 0;
  int rv = SYNOD_ECOMPACTED;
  for (unsigned i = 0;
       i <= SYNOD_GROUP_READ_RESTARTS_MAX && rv == SYNOD_ECOMPACTED; i++) {
    rv = ckpt_read_once(c, group, flags, deadline, &known, out);
  }
  return rv;
}

int synod_group_state_request(struct synod_client *c, const char *group,
                              const char *member, uint32_t timeout_ms,
                              struct synod_group_state *out) {
  struct group_args g = {.group = group, .member = member};
  union synod_result r;
  int rv = call(c, OP_GROUP_STATE_REQUEST, &g, timeout_ms, &r);
  if (rv == 0 && out != NULL) {
    *out = r.group_state;
  } else if (rv == 0) {
    synod_group_state_free(&r.group_state);
  }
  return rv;
}

int synod_group_view_get(struct synod_client *c, const char *group,
                         unsigned flags, uint32_t timeout_ms,
                         struct synod_group_info *out) {
  struct group_args g = {.group = group, .flags = flags};
  union synod_result r;
  int rv = call(c, OP_GROUP_VIEW_GET, &g, timeout_ms, &r);
  if (rv == 0 && out != NULL) {
    *out = r.group_info;
  } else if (rv == 0) {
    synod_group_info_free(&r.group_info);
  }
  return rv;
}

int synod_group_list(struct synod_client *c, const char *after, uint32_t limit,
                     unsigned flags, uint32_t timeout_ms,
                     struct synod_group_list *out) {
  struct group_args g = {.after = after, .limit = limit, .flags = flags};
  union synod_result r;
  int rv = call(c, OP_GROUP_LIST, &g, timeout_ms, &r);
  if (rv == 0 && out != NULL) {
    *out = r.group_list;
  } else if (rv == 0) {
    synod_group_list_free(&r.group_list);
  }
  return rv;
}

int synod_group_read(struct synod_client *c, const char *group, uint64_t from,
                     uint32_t max, const char *member, unsigned flags,
                     uint32_t timeout_ms, struct synod_group_items *out) {
  return synod_group_read_pinned(c, group, from, max, member, flags, 0,
                                 timeout_ms, out);
}

int synod_group_read_pinned(struct synod_client *c, const char *group,
                            uint64_t from, uint32_t max, const char *member,
                            unsigned flags, uint64_t known_index,
                            uint32_t timeout_ms,
                            struct synod_group_items *out) {
  struct group_args g = {.group = group,
                         .from = from,
                         .max = max,
                         .member = member,
                         .flags = flags,
                         .known_index = known_index};
  union synod_result r;
  int rv = call(c, OP_GROUP_READ, &g, timeout_ms, &r);
  if (rv == 0 && out != NULL) {
    *out = r.group_items;
  } else if (rv == 0) {
    synod_group_items_free(&r.group_items);
  }
  return rv;
}
