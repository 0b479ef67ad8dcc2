/* Groups over HTTP (README.md "HTTP groups"): the list and a group's
 * current view (linearizable reads through node_read, ?stale for this
 * replica's own state), sends (POST, through node_write, deduplicated by
 * a message id without a session), joins and leaves under a session
 * (PUT and DELETE of /members/MEMBER, with the session's own sequence),
 * and the group's stream as Server-Sent Events, served by the replica the
 * client reached through the one subscription machinery
 * (node_group_subscribe with this file's sink; the stream state, start,
 * end and bound on a slow reader are api_stream.c's).
 *
 * Full views in the stream. A view item carries only its change (who
 * joined, who left, how many are left); the state machine keeps the
 * current view alone. The stream gives each view event the full member
 * list after it: it starts from the view in effect just before its first
 * offset and applies each change as it delivers it (views are delivered
 * to every member, so a filtered stream sees them all). That starting
 * view is rebuilt exactly by the state machine (fsm_group_view_at: the
 * current view undone by the retained view items after the start; a
 * leave records the whole member). Only a view item restored from an
 * image of an older server, whose leaves name the member alone, can
 * leave it unknown (a member that joined before the retained window and
 * left after the start): the stream then says "members": null until the
 * end. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_int.h"
#include "err.h"
#include "fsm.h"
#include "sse.h"
#include "synod.h"
#include "window.h"

#define API_WRITE_TIMEOUT_MS 5000
#define API_READ_TIMEOUT_MS 3000
#define API_MEMBER_MAX 256

enum group_op { G_VIEW, G_LIST, G_SEND, G_JOIN, G_LEAVE };

/* A read or write in flight, counted in api->calls_pending. */
struct group_call {
  struct http_api *api;
  uint64_t request_id;
  enum group_op op;
  char member[API_MEMBER_MAX + 1]; /* join, leave; send: to */
  char message_id[API_MESSAGE_ID_MAX + 1];
  char name[API_NAME_MAX]; /* the group (a list: after) */
};

static struct group_call *group_call_new(struct http_api *api, uint64_t id,
                                         enum group_op op, const char *name) {
  struct group_call *c = calloc(1, sizeof *c);
  if (c == NULL) {
    httpd_respond_error(api->httpd, id, 500, "out of memory");
    return NULL;
  }
  c->api = api;
  c->request_id = id;
  c->op = op;
  snprintf(c->name, sizeof c->name, "%s", name);
  api->calls_pending++;
  return c;
}

/* ------------------------------------------------------------ JSON */

static json_t *member_json(const char *name, const uint8_t *data,
                           size_t data_len, uint64_t session,
                           uint64_t joined_offset) {
  json_t *j = json_pack("{s:s}", "name", name);
  if (j == NULL) {
    return NULL;
  }
  api_json_set_bytes(j, "data", "encoding", data, data_len);
  json_object_set_new(j, "session", json_integer((json_int_t)session));
  json_object_set_new(j, "joined_offset",
                      json_integer((json_int_t)joined_offset));
  return j;
}

static json_t *members_json(Synod__GroupMember *const *m, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++) {
    json_array_append_new(a, member_json(m[i]->name, m[i]->data.data,
                                         m[i]->data.len, m[i]->session_id,
                                         m[i]->joined_offset));
  }
  return a;
}

/* The coordinator of a member array: its first member's name, or null. */
static json_t *coordinator_json(const json_t *members) {
  json_t *first = json_array_get(members, 0);
  json_t *name = first != NULL ? json_object_get(first, "name") : NULL;
  return name != NULL ? json_incref(name) : json_null();
}

static json_t *checkpoint_json(const Synod__GroupCheckpointInfo *c,
                               bool usable) {
  if (c == NULL) {
    return json_null();
  }
  return json_pack("{s:I, s:I, s:I, s:I, s:s, s:b}", "offset",
                   (json_int_t)c->offset, "bytes", (json_int_t)c->bytes,
                   "index", (json_int_t)c->index, "time_ms",
                   (json_int_t)c->time_ms, "member",
                   c->member != NULL ? c->member : "", "usable", usable);
}

/* A GroupInfo; with its members when `members` (a view) and not in a
 * list, which names none. */
static json_t *group_json(const Synod__GroupInfo *gi, bool members) {
  const Synod__GroupView *v = gi->view;
  json_t *j = json_pack(
      "{s:s, s:I, s:I, s:i, s:I, s:I, s:I, s:o, s:i, s:I}", "group", gi->name,
      "view_id", (json_int_t)(v != NULL ? v->view_id : 0), "offset",
      (json_int_t)(v != NULL ? v->offset : 0), "member_count", (int)gi->members,
      "first_offset", (json_int_t)gi->first_offset, "next_offset",
      (json_int_t)gi->next_offset, "bytes", (json_int_t)gi->bytes, "checkpoint",
      checkpoint_json(gi->checkpoint, gi->checkpoint_usable), "state_requests",
      (int)gi->state_requests, "created_index", (json_int_t)gi->created_index);
  if (j != NULL && members && v != NULL) {
    json_t *m = members_json(v->members, v->n_members);
    json_object_set_new(j, "coordinator", coordinator_json(m));
    json_object_set_new(j, "members", m);
  }
  return j;
}

/* ------------------------------------------------------------ answers */

/* The answer's JSON for c's operation, or NULL if the body is not it. */
static json_t *group_answer_json(const struct group_call *c,
                                 const Synod__Response *pb) {
  switch (c->op) {
  case G_VIEW:
    return pb->body_case == SYNOD__RESPONSE__BODY_GROUP_INFO
               ? group_json(pb->group_info, true)
               : NULL;
  case G_LIST: {
    if (pb->body_case != SYNOD__RESPONSE__BODY_GROUP_LIST) {
      return NULL;
    }
    json_t *a = json_array();
    for (size_t i = 0; i < pb->group_list->n_groups; i++) {
      json_array_append_new(a, group_json(pb->group_list->groups[i], false));
    }
    return json_pack("{s:o, s:b}", "groups", a, "more", pb->group_list->more);
  }
  case G_SEND:
    return pb->body_case != SYNOD__RESPONSE__BODY_GROUP_SEND
               ? NULL
               : json_pack("{s:s, s:I, s:I, s:b}", "group", c->name, "offset",
                           (json_int_t)pb->group_send->offset, "index",
                           (json_int_t)pb->group_send->index, "duplicate",
                           pb->group_send->duplicate);
  case G_JOIN: {
    const Synod__GroupJoinReply *r = pb->group_join;
    if (pb->body_case != SYNOD__RESPONSE__BODY_GROUP_JOIN || r->view == NULL) {
      return NULL;
    }
    json_t *m = members_json(r->view->members, r->view->n_members);
    return json_pack("{s:s, s:s, s:I, s:I, s:I, s:o, s:o}", "group", c->name,
                     "member", c->member, "view_id",
                     (json_int_t)r->view->view_id, "offset",
                     (json_int_t)r->view->offset, "index", (json_int_t)r->index,
                     "coordinator", coordinator_json(m), "members", m);
  }
  case G_LEAVE:
    return pb->body_case != SYNOD__RESPONSE__BODY_GROUP_LEAVE
               ? NULL
               : json_pack("{s:s, s:s, s:I, s:I}", "group", c->name, "member",
                           c->member, "view_id",
                           (json_int_t)pb->group_leave->view_id, "offset",
                           (json_int_t)pb->group_leave->offset);
  }
  return NULL;
}

static void group_answer(void *arg, int err, const char *errmsg,
                         const uint8_t *resp, size_t len) {
  struct group_call *c = arg;
  struct http_api *api = c->api;
  Synod__Response *pb = NULL;
  if (!api->stopping && (pb = api_response_of(c->api, c->request_id, err,
                                              errmsg, resp, len)) != NULL) {
    json_t *j = group_answer_json(c, pb);
    if (j == NULL) {
      api_respond_code(api, c->request_id, SYNOD_EINTERNAL, 0,
                       "the answer is not the group operation's");
    } else {
      api_respond_json(api, c->request_id, 200, j);
    }
    synod__response__free_unpacked(pb, NULL);
  }
  free(c);
  api_call_done(api);
}

/* ----------------------------------------------------- query arguments */

/* A decimal u64 from 1 (at most 19 digits). */
static bool parse_u64(const char *s, uint64_t *out) {
  return sse_u64(s, strlen(s), out) && *out > 0;
}

/* ?key=N when present: false after answering 400. */
static bool query_u64(struct http_api *api, const struct httpd_request *req,
                      const char *key, uint64_t *out) {
  char arg[32];
  bool present;
  if (!api_query_arg(api, req, key, arg, sizeof arg, &present)) {
    return false;
  }
  if (present && !parse_u64(arg, out)) {
    api_respond_code(api, req->id, SYNOD_EINVAL, 0,
                     "%s='%s' is not a number from 1", key, arg);
    return false;
  }
  return true;
}

/* ?key=NAME (a member name, 1 to 256 bytes) into out when present (""
 * when absent): false after answering 400. A bad one must never read as
 * absent: a send ?to=%zz would go to every member. */
static bool query_member(struct http_api *api, const struct httpd_request *req,
                         const char *key, char *out) {
  bool present;
  if (!api_query_arg(api, req, key, out, API_MEMBER_MAX + 1, &present)) {
    return false;
  }
  if (present && out[0] == '\0') {
    api_respond_code(api, req->id, SYNOD_EINVAL, 0,
                     "%s is empty: give a member name of 1 to %d bytes", key,
                     API_MEMBER_MAX);
    return false;
  }
  return true;
}

/* The session and sequence of a write in a session (?session=ID
 * &sequence=N): both or neither (false after answering 400), both
 * needed with `need`. */
static bool query_session(struct http_api *api, const struct httpd_request *req,
                          bool need, Synod__Request *r) {
  if (!query_u64(api, req, "session", &r->session_id) ||
      !query_u64(api, req, "sequence", &r->sequence)) {
    return false;
  }
  if ((r->session_id == 0) != (r->sequence == 0) ||
      (need && r->session_id == 0)) {
    api_respond_code(api, req->id, SYNOD_EINVAL, 0,
                     "give session=ID and sequence=N together%s (N from 1, "
                     "new for each write of the session; a retry with the "
                     "same N is answered once)",
                     need ? ": a membership is held by a session" : "");
    return false;
  }
  return true;
}

/* ------------------------------------------------------- reads, writes */

/* GET /v1/groups[?after=NAME&limit=N][&stale]. */
static void api_group_list(struct http_api *api,
                           const struct httpd_request *req) {
  char after[API_NAME_MAX];
  uint32_t limit;
  bool stale;
  if (!api_page_args(api, req, after, &limit) ||
      !api_query_flag(api, req, "stale", &stale)) {
    return;
  }
  struct group_call *c = group_call_new(api, req->id, G_LIST, after);
  if (c == NULL) {
    return;
  }
  Synod__Request q = SYNOD__REQUEST__INIT;
  Synod__GroupList l = SYNOD__GROUP_LIST__INIT;
  l.after = c->name;
  l.limit = limit;
  q.body_case = SYNOD__REQUEST__BODY_GROUP_LIST;
  q.group_list = &l;
  node_read(api->node, &q, stale, API_READ_TIMEOUT_MS, group_answer, c);
}

/* GET /v1/groups/NAME[?stale]. */
static void api_group_view(struct http_api *api,
                           const struct httpd_request *req, const char *name) {
  bool stale;
  if (!api_query_flag(api, req, "stale", &stale)) {
    return;
  }
  struct group_call *c = group_call_new(api, req->id, G_VIEW, name);
  if (c == NULL) {
    return;
  }
  Synod__Request q = SYNOD__REQUEST__INIT;
  Synod__GroupViewGet g = SYNOD__GROUP_VIEW_GET__INIT;
  g.group = c->name;
  q.body_case = SYNOD__REQUEST__BODY_GROUP_VIEW;
  q.group_view = &g;
  node_read(api->node, &q, stale, API_READ_TIMEOUT_MS, group_answer, c);
}

/* The message id of a send: the Synod-Message-Id or Idempotency-Key
 * header, or ?message_id (not both: which one would count?). False after
 * answering 400. */
static bool send_message_id(struct http_api *api,
                            const struct httpd_request *req, char *out) {
  bool in_header, in_query;
  if (!api_message_id_header(api, req, out, &in_header)) {
    return false;
  }
  char query[API_MESSAGE_ID_MAX + 1];
  if (!api_query_arg(api, req, "message_id", query, sizeof query, &in_query)) {
    return false;
  }
  if (in_header && in_query) {
    api_respond_code(api, req->id, SYNOD_EINVAL, 0,
                     "message id given both as a header and as ?message_id: "
                     "give one");
    return false;
  }
  if (in_query) {
    memcpy(out, query, sizeof query);
  }
  return true;
}

/* POST /v1/groups/NAME/messages[?to=MEMBER][&session=ID&sequence=N
 * [&from=MEMBER]]: the body is the message. */
static void api_group_send(struct http_api *api,
                           const struct httpd_request *req, const char *name) {
  Synod__Request q = SYNOD__REQUEST__INIT;
  Synod__GroupSend s = SYNOD__GROUP_SEND__INIT;
  char from[API_MEMBER_MAX + 1];
  struct group_call *c = group_call_new(api, req->id, G_SEND, name);
  if (c == NULL) {
    return;
  }
  if (!query_member(api, req, "to", c->member) ||
      !query_member(api, req, "from", from) ||
      !send_message_id(api, req, c->message_id) ||
      !query_session(api, req, false, &q)) {
    free(c);
    api_call_done(api);
    return;
  }
  s.group = c->name;
  s.to = c->member;
  s.from = from;
  s.data = (ProtobufCBinaryData){req->body_len, (uint8_t *)req->body};
  s.message_id = c->message_id;
  q.body_case = SYNOD__REQUEST__BODY_GROUP_SEND;
  q.group_send = &s;
  node_write(api->node, &q, API_WRITE_TIMEOUT_MS, group_answer, c);
}

/* PUT (join, the body is the member's data) or DELETE (leave)
 * /v1/groups/NAME/members/MEMBER?session=ID&sequence=N. */
static void group_membership(struct http_api *api,
                             const struct httpd_request *req, const char *name,
                             const char *member, bool join) {
  Synod__Request q = SYNOD__REQUEST__INIT;
  Synod__GroupJoin j = SYNOD__GROUP_JOIN__INIT;
  Synod__GroupLeave l = SYNOD__GROUP_LEAVE__INIT;
  if (!query_session(api, req, true, &q)) {
    return;
  }
  struct group_call *c =
      group_call_new(api, req->id, join ? G_JOIN : G_LEAVE, name);
  if (c == NULL) {
    return;
  }
  snprintf(c->member, sizeof c->member, "%s", member);
  if (join) {
    j.group = c->name;
    j.member = c->member;
    j.data = (ProtobufCBinaryData){req->body_len, (uint8_t *)req->body};
    q.body_case = SYNOD__REQUEST__BODY_GROUP_JOIN;
    q.group_join = &j;
  } else {
    l.group = c->name;
    l.member = c->member;
    q.body_case = SYNOD__REQUEST__BODY_GROUP_LEAVE;
    q.group_leave = &l;
  }
  node_write(api->node, &q, API_WRITE_TIMEOUT_MS, group_answer, c);
}

/* ---------------------------------------------------- the view at a start */

static void view_member_cb(void *arg, const struct fsm_group_member_view *m) {
  json_array_append_new(arg, member_json(m->name, m->data, m->data_len,
                                         m->session_id, m->joined_offset));
}

/* The members of group `name` in the view in effect just before offset
 * `at` (a JSON array in join order; fsm_group_view_at), or NULL if that
 * cannot be known (an image of an older server, see the top of this
 * file) or there is no group. Reads this replica's applied state as it
 * is now, which the subscription starts from. */
static json_t *group_view_at(struct http_api *api, const char *name,
                             uint64_t at) {
  uint64_t view_id;
  json_t *members = json_array();
  if (members == NULL ||
      fsm_group_view_at(node_fsm(api->node), name, strlen(name), at, &view_id,
                        view_member_cb, members) != 0) {
    json_decref(members);
    return NULL;
  }
  return members;
}

/* ------------------------------------------------------------- streams */

/* A growing buffer of SSE text. */
struct sse_buf {
  char *p;
  size_t len;
  size_t cap;
};

static bool sse_buf_event(struct sse_buf *b, const char *event, const char *id,
                          json_t *data) {
  char *text = data != NULL ? json_dumps(data, JSON_COMPACT) : NULL;
  json_decref(data);
  if (text == NULL && data != NULL) {
    return false;
  }
  size_t need = sse_event_id(NULL, 0, event, id, text);
  if (b->len + need + 1 > b->cap) {
    size_t cap = (b->len + need + 1) * 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
      free(text);
      return false;
    }
    b->p = p;
    b->cap = cap;
  }
  sse_event_id(b->p + b->len, b->cap - b->len, event, id, text);
  b->len += need;
  free(text);
  return true;
}

/* Applies a view change to the stream's members; returns the members
 * after it (a new reference), or JSON null if unknown. */
static json_t *stream_view_apply(struct api_stream *st,
                                 const Synod__GroupItem *it) {
  const Synod__GroupViewChange *v = it->view;
  if (st->members == NULL) {
    return json_null();
  }
  for (size_t k = 0; k < v->n_left; k++) {
    size_t i;
    json_t *m;
    json_array_foreach(st->members, i, m) {
      if (strcmp(json_string_value(json_object_get(m, "name")), v->left[k]) ==
          0) {
        json_array_remove(st->members, i);
        break;
      }
    }
  }
  for (size_t k = 0; k < v->n_joined; k++) {
    const Synod__GroupMember *m = v->joined[k];
    json_array_append_new(
        st->members,
        member_json(m->name, m->data.data, m->data.len, m->session_id,
                    m->joined_offset != 0 ? m->joined_offset : it->offset));
  }
  return json_deep_copy(st->members);
}

/* One item's event type and data. */
static json_t *item_json(struct api_stream *st, const Synod__GroupItem *it,
                         const char **type) {
  json_t *j =
      json_pack("{s:I, s:I, s:I}", "offset", (json_int_t)it->offset, "index",
                (json_int_t)it->index, "time_ms", (json_int_t)it->time_ms);
  if (j == NULL) {
    return NULL;
  }
  switch (it->body_case) {
  case SYNOD__GROUP_ITEM__BODY_VIEW: {
    const Synod__GroupViewChange *v = it->view;
    json_t *left = json_array();
    for (size_t k = 0; k < v->n_left; k++) {
      json_array_append_new(left, json_string(v->left[k]));
    }
    json_t *members = stream_view_apply(st, it);
    *type = "view";
    json_object_set_new(j, "view_id", json_integer((json_int_t)v->view_id));
    json_object_set_new(j, "joined", members_json(v->joined, v->n_joined));
    json_object_set_new(j, "left", left);
    json_object_set_new(j, "member_count", json_integer(v->members));
    json_object_set_new(j, "coordinator", coordinator_json(members));
    json_object_set_new(j, "members", members);
    break;
  }
  case SYNOD__GROUP_ITEM__BODY_MESSAGE:
    *type = "message";
    json_object_set_new(j, "from", json_string(it->message->from));
    json_object_set_new(j, "to", json_string(it->message->to));
    api_json_set_bytes(j, "data", "encoding", it->message->data.data,
                       it->message->data.len);
    break;
  case SYNOD__GROUP_ITEM__BODY_STATE_REQUEST:
    *type = "state_request";
    json_object_set_new(j, "to", json_string(it->state_request->to));
    json_object_set_new(j, "member", json_string(it->state_request->member));
    json_object_set_new(j, "empty", json_boolean(it->state_request->empty));
    break;
  case SYNOD__GROUP_ITEM__BODY_CHECKPOINT:
    *type = "checkpoint";
    json_object_set_new(j, "checkpoint", checkpoint_json(it->checkpoint, true));
    json_object_del(json_object_get(j, "checkpoint"), "usable");
    break;
  default:
    json_decref(j);
    return NULL;
  }
  return j;
}

static void stream_started(void *arg, int err, const char *msg,
                           uint64_t first_available,
                           const Synod__GroupSubscribeReply *r) {
  struct api_stream *st = arg;
  if (!api_stream_started(st, err, msg, first_available)) {
    return;
  }
  char text[200];
  snprintf(text, sizeof text,
           "group %.64s from offset %" PRIu64 " (retained %" PRIu64 "..%" PRIu64
           " here)",
           st->name, r->offset, r->first_offset,
           r->next_offset ? r->next_offset - 1 : 0);
  api_stream_comment(st, text);
  st->members = group_view_at(st->api, st->name, r->offset);
  st->id_rev = r->offset - 1;
  json_t *members =
      st->members != NULL ? json_deep_copy(st->members) : json_null();
  json_t *j =
      json_pack("{s:I, s:I, s:I, s:o, s:o}", "from", (json_int_t)r->offset,
                "first_offset", (json_int_t)r->first_offset, "next_offset",
                (json_int_t)r->next_offset, "coordinator",
                coordinator_json(members), "members", members);
  struct sse_buf b = {0};
  if (sse_buf_event(&b, "start", NULL, j)) {
    httpd_stream_write(st->api->httpd, st->request_id, b.p, b.len);
  }
  free(b.p);
}

static int stream_deliver(void *arg, Synod__GroupItem *const *items, size_t n,
                          size_t bytes, uint64_t progress_offset) {
  struct api_stream *st = arg;
  struct sse_buf b = {0};
  char id[24];
  (void)bytes;
  for (size_t i = 0; i < n; i++) {
    const char *type = NULL;
    json_t *j = item_json(st, items[i], &type);
    snprintf(id, sizeof id, "%" PRIu64, items[i]->offset);
    if (j == NULL || !sse_buf_event(&b, type, id, j)) {
      free(b.p);
      return SYNOD_ENOMEM; /* ends the stream: a resume sees no gap */
    }
    st->id_rev = items[i]->offset;
  }
  /* Past items for other members: an id alone, so a resume starts after
   * them (as a key watch's progress). */
  if (progress_offset > st->id_rev) {
    snprintf(id, sizeof id, "%" PRIu64, progress_offset);
    if (!sse_buf_event(&b, "progress", id, NULL)) {
      free(b.p);
      return SYNOD_ENOMEM;
    }
    st->id_rev = progress_offset;
  }
  int rv = b.len > 0
               ? httpd_stream_write(st->api->httpd, st->request_id, b.p, b.len)
               : 0;
  free(b.p);
  return rv;
}

static const struct node_sub_sink group_sink = {
    .ended = api_stream_ended,
    .queued_bytes = api_stream_queued_bytes,
    .want_drain = api_stream_want_drain,
    .group_started = stream_started,
    .group_deliver = stream_deliver,
};

/* GET /v1/groups/NAME?watch[&from=OFFSET][&member=M][&known=INDEX], or
 * after the request's Last-Event-ID; known (the group's created_index)
 * pins the stream to that group, as for channels. */
static void group_watch(struct http_api *api, const struct httpd_request *req,
                        const char *name) {
  Synod__GroupSubscribe q = SYNOD__GROUP_SUBSCRIBE__INIT;
  char member[API_MEMBER_MAX + 1];
  size_t len;
  if (!query_u64(api, req, "from", &q.from)) {
    return;
  }
  /* Last-Event-ID wins over from: a reconnecting EventSource sends the
   * URL it first used. */
  const char *last = httpd_header(req, "Last-Event-ID", &len);
  if (last != NULL) {
    if (!sse_u64(last, len, &q.from) || q.from == UINT64_MAX) {
      api_respond_code(api, req->id, SYNOD_EINVAL, 0,
                       "Last-Event-ID '%.*s' is not an offset",
                       (int)(len < 40 ? len : 40), last);
      return;
    }
    q.from++;
  }
  if (!query_u64(api, req, "known", &q.known_index) ||
      !query_member(api, req, "member", member) || api_stream_head(api, req)) {
    return;
  }
  struct api_stream *st = api_stream_new(api, req->id, name);
  if (st == NULL) {
    return;
  }
  q.group = st->name;
  q.member = member;
  char errmsg[SYNOD_ERRMSG_MAX];
  int rv =
      node_group_subscribe(api->node, &q, &group_sink, st, &st->handle, errmsg);
  if (rv != 0) {
    api_stream_free(st);
    api_respond_code(api, req->id, rv, 0, "%s", errmsg);
  }
}

/* ------------------------------------------------------------- routing */

/* Whether a GET asks for the stream (Accept: text/event-stream, or
 * ?watch) into *stream. False after answering 400 for a bad ?watch. */
static bool wants_stream(struct http_api *api, const struct httpd_request *req,
                         bool *stream) {
  size_t len;
  const char *accept = httpd_header(req, "Accept", &len);
  static const char sse[] = "text/event-stream";
  if (!api_query_flag(api, req, "watch", stream)) {
    return false;
  }
  for (size_t i = 0; accept != NULL && i + sizeof sse - 1 <= len; i++) {
    if (strncasecmp(accept + i, sse, sizeof sse - 1) == 0) {
      *stream = true;
    }
  }
  return true;
}

/* Decodes one path segment (a group or member name) into out: false
 * after answering 400. */
static bool segment(struct http_api *api, const struct httpd_request *req,
                    const char *what, const char *raw, size_t len, char *out,
                    size_t cap) {
  if (len == 0 || !httpd_url_decode(raw, len, out, cap)) {
    api_respond_code(api, req->id, SYNOD_EINVAL, 0,
                     "%s '%.*s' is empty, too long or badly escaped", what,
                     (int)(len < 200 ? len : 200), raw);
    return false;
  }
  return true;
}

/* The query parameters of each route: any other is a 400. */
static const char *const list_params[] = {"after", "limit", "stale", NULL};
static const char *const view_params[] = {"stale", "watch", NULL};
static const char *const watch_params[] = {"watch", "from", "known", "member",
                                           NULL};
static const char *const send_params[] = {"to",      "from",     "message_id",
                                          "session", "sequence", NULL};
static const char *const member_params[] = {"session", "sequence", NULL};

void api_groups_request(struct http_api *api, const struct httpd_request *req) {
  const char *raw;
  size_t raw_len;
  char name[API_NAME_MAX], member[API_MEMBER_MAX + 1];
  if (api_path_is(req, "/v1/groups")) {
    if (httpd_method_is(req, "GET")) {
      if (api_query_only(api, req, list_params)) {
        api_group_list(api, req);
      }
    } else {
      api_respond_not_allowed(api, req, "GET, HEAD");
    }
    return;
  }
  api_prefix(req, "/v1/groups/", &raw, &raw_len);
  const char *slash = memchr(raw, '/', raw_len);
  size_t name_len = slash != NULL ? (size_t)(slash - raw) : raw_len;
  if (!segment(api, req, "group name", raw, name_len, name, sizeof name)) {
    return;
  }
  const char *rest = slash != NULL ? slash : raw + raw_len;
  size_t rest_len = raw_len - name_len;
  static const char members[] = "/members/";
  bool stream;
  if (rest_len == 0) {
    if (httpd_method_is(req, "GET") && !wants_stream(api, req, &stream)) {
      return;
    } else if (httpd_method_is(req, "GET") && stream) {
      if (api_query_only(api, req, watch_params)) {
        group_watch(api, req, name);
      }
    } else if (httpd_method_is(req, "GET")) {
      if (api_query_only(api, req, view_params)) {
        api_group_view(api, req, name);
      }
    } else {
      api_respond_not_allowed(api, req, "GET, HEAD");
    }
  } else if (rest_len == 9 && memcmp(rest, "/messages", 9) == 0) {
    if (httpd_method_is(req, "POST")) {
      if (api_query_only(api, req, send_params)) {
        api_group_send(api, req, name);
      }
    } else {
      api_respond_not_allowed(api, req, "POST");
    }
  } else if (rest_len > sizeof members - 1 &&
             memcmp(rest, members, sizeof members - 1) == 0) {
    if (!segment(api, req, "member name", rest + sizeof members - 1,
                 rest_len - (sizeof members - 1), member, sizeof member)) {
      return;
    }
    if ((httpd_method_is(req, "PUT") || httpd_method_is(req, "DELETE")) &&
        api_query_only(api, req, member_params)) {
      group_membership(api, req, name, member, httpd_method_is(req, "PUT"));
    } else if (httpd_method_is(req, "PUT") || httpd_method_is(req, "DELETE")) {
      return;
    } else {
      api_respond_not_allowed(api, req, "PUT, DELETE");
    }
  } else {
    api_respond_code(api, req->id, SYNOD_ENOTFOUND, 0,
                     "no such group resource '%.*s' (a '/' in a group name "
                     "is written %%2F)",
                     (int)(rest_len < 200 ? rest_len : 200), rest);
  }
}
