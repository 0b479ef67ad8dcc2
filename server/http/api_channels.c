/* Channels over HTTP (README.md "HTTP"): publish (POST, through
 * node_write, so any replica accepts it and a follower forwards it), the
 * channel's figures and the list (linearizable reads), and subscriptions
 * as Server-Sent Events, served by the replica the client reached through
 * the same subscription machinery as the binary protocol (node_subscribe
 * with this file's sink): one event per message, its offset as the event
 * id, resumed from Last-Event-ID. The stream state, its start and end
 * and the bound on a slow reader are api_stream.c's, shared with key
 * watches. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_int.h"
#include "err.h"
#include "log.h"
#include "sse.h"
#include "synod.h"

/* A publish waits this long for its commit: the leader's, or the
 * forwarding follower's wait for the leader's answer. */
#define API_WRITE_TIMEOUT_MS 5000
#define API_READ_TIMEOUT_MS 3000

/* A publish, info or list in flight. */
struct api_call {
  struct http_api *api;
  uint64_t request_id;
  char name[]; /* the channel */
};

static struct api_call *api_call_new(struct http_api *api, uint64_t id,
                                     const char *name) {
  size_t len = strlen(name);
  struct api_call *c = malloc(sizeof *c + len + 1);
  if (c == NULL) {
    httpd_respond_error(api->httpd, id, 500, "out of memory");
    return NULL;
  }
  c->api = api;
  c->request_id = id;
  memcpy(c->name, name, len + 1);
  api->calls_pending++;
  return c;
}

static void api_call_free(struct api_call *c) {
  struct http_api *api = c->api;
  free(c);
  api_call_done(api);
}

/* ------------------------------------------------------------- publish */

static void api_publish_answer(void *arg, int err, const char *errmsg,
                               const uint8_t *resp, size_t len) {
  struct api_call *c = arg;
  Synod__Response *pb = NULL;
  if (!c->api->stopping && (pb = api_response_of(c->api, c->request_id, err,
                                                 errmsg, resp, len)) != NULL) {
    const Synod__ChannelPublishReply *r = pb->channel_publish;
    if (r == NULL) {
      api_respond_code(c->api, c->request_id, SYNOD_EINTERNAL, 0,
                       "no publish reply in the answer");
    } else {
      api_respond_json(c->api, c->request_id, 200,
                       json_pack("{s:s, s:I, s:I, s:b}", "channel", c->name,
                                 "offset", (json_int_t)r->first_offset, "index",
                                 (json_int_t)r->index, "duplicate",
                                 r->duplicate));
    }
    synod__response__free_unpacked(pb, NULL);
  }
  api_call_free(c);
}

/* POST /v1/channels/NAME: the body is one message. A message id
 * (Synod-Message-Id, or Idempotency-Key) makes a retry safe: the state
 * machine answers a repeated id with the first publish's offset
 * (duplicate: true). Without one, a publish retried after an unknown
 * outcome (504, 503 with "outcome unknown") may be appended twice. */
static void api_publish(struct http_api *api, const struct httpd_request *req,
                        const char *name) {
  char id[API_MESSAGE_ID_MAX + 1];
  bool present;
  if (!api_message_id_header(api, req, id, &present)) {
    return;
  }
  struct api_call *c = api_call_new(api, req->id, name);
  if (c == NULL) {
    return;
  }
  Synod__Request q = SYNOD__REQUEST__INIT;
  Synod__ChannelPublish p = SYNOD__CHANNEL_PUBLISH__INIT;
  ProtobufCBinaryData msg = {req->body_len, (uint8_t *)req->body};
  p.name = c->name;
  p.n_messages = 1;
  p.messages = &msg;
  p.message_id = id;
  q.body_case = SYNOD__REQUEST__BODY_CHANNEL_PUBLISH;
  q.channel_publish = &p;
  node_write(api->node, &q, API_WRITE_TIMEOUT_MS, api_publish_answer, c);
}

/* ------------------------------------------------------- info and list */

static json_t *api_channel_json(struct http_api *api,
                                const Synod__ChannelInfo *ci) {
  const Synod__ChannelLimits *l = ci->limits;
  json_t *limits =
      l == NULL ? json_object()
                : json_pack("{s:I, s:I, s:I, s:I, s:b}", "max_messages",
                            (json_int_t)l->max_messages, "max_bytes",
                            (json_int_t)l->max_bytes, "max_age_ms",
                            (json_int_t)l->max_age_ms, "max_message_bytes",
                            (json_int_t)l->max_message_bytes,
                            "refuse_when_full", l->refuse_when_full);
  return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:i, s:I, s:o}", "channel",
                   ci->name, "first_offset", (json_int_t)ci->first_offset,
                   "next_offset", (json_int_t)ci->next_offset, "messages",
                   (json_int_t)ci->messages, "bytes", (json_int_t)ci->bytes,
                   "subscribers",
                   (json_int_t)node_channel_subscribers(api->node, ci->name),
                   "cursors", (int)ci->cursors, "created_index",
                   (json_int_t)ci->created_index, "limits", limits);
}

static void api_info_answer(void *arg, int err, const char *errmsg,
                            const uint8_t *resp, size_t len) {
  struct api_call *c = arg;
  Synod__Response *pb = NULL;
  if (!c->api->stopping && (pb = api_response_of(c->api, c->request_id, err,
                                                 errmsg, resp, len)) != NULL) {
    if (pb->body_case == SYNOD__RESPONSE__BODY_CHANNEL_INFO) {
      api_respond_json(c->api, c->request_id, 200,
                       api_channel_json(c->api, pb->channel_info));
    } else if (pb->body_case == SYNOD__RESPONSE__BODY_CHANNEL_LIST) {
      const Synod__ChannelListReply *l = pb->channel_list;
      json_t *a = json_array();
      for (size_t i = 0; i < l->n_channels; i++) {
        json_array_append_new(a, api_channel_json(c->api, l->channels[i]));
      }
      api_respond_json(c->api, c->request_id, 200,
                       json_pack("{s:o, s:b}", "channels", a, "more", l->more));
    } else {
      api_respond_code(c->api, c->request_id, SYNOD_EINTERNAL, 0,
                       "no channel in the answer");
    }
    synod__response__free_unpacked(pb, NULL);
  }
  api_call_free(c);
}

/* GET /v1/channels/NAME: {"channel", "first_offset", "next_offset",
 * "messages", "bytes", "subscribers" (on this replica), "cursors",
 * "limits"}. */
static void api_info(struct http_api *api, const struct httpd_request *req,
                     const char *name) {
  bool stale;
  if (!api_query_flag(api, req, "stale", &stale)) {
    return;
  }
  struct api_call *c = api_call_new(api, req->id, name);
  if (c == NULL) {
    return;
  }
  Synod__Request q = SYNOD__REQUEST__INIT;
  Synod__ChannelInfoGet g = SYNOD__CHANNEL_INFO_GET__INIT;
  g.name = c->name;
  q.body_case = SYNOD__REQUEST__BODY_CHANNEL_INFO;
  q.channel_info = &g;
  node_read(api->node, &q, stale, API_READ_TIMEOUT_MS, api_info_answer, c);
}

/* GET /v1/channels[?after=NAME&limit=N]: {"channels": [...], "more"}. */
static void api_list(struct http_api *api, const struct httpd_request *req) {
  char after[API_NAME_MAX];
  uint32_t limit;
  bool stale;
  if (!api_page_args(api, req, after, &limit) ||
      !api_query_flag(api, req, "stale", &stale)) {
    return;
  }
  struct api_call *c = api_call_new(api, req->id, after);
  if (c == NULL) {
    return;
  }
  Synod__Request q = SYNOD__REQUEST__INIT;
  Synod__ChannelList l = SYNOD__CHANNEL_LIST__INIT;
  l.after = c->name;
  l.limit = limit;
  q.body_case = SYNOD__REQUEST__BODY_CHANNEL_LIST;
  q.channel_list = &l;
  node_read(api->node, &q, stale, API_READ_TIMEOUT_MS, api_info_answer, c);
}

/* -------------------------------------------------------- event streams */

static void sink_started(void *arg, int err, const char *msg,
                         uint64_t first_available,
                         const Synod__ChannelSubscribeReply *r) {
  struct api_stream *st = arg;
  if (!api_stream_started(st, err, msg, first_available)) {
    return;
  }
  char text[200];
  snprintf(text, sizeof text,
           "channel %.64s from offset %" PRIu64 " (retained %" PRIu64
           "..%" PRIu64 " here)",
           st->name, r->offset, r->first_offset,
           r->next_offset ? r->next_offset - 1 : 0);
  api_stream_comment(st, text);
}

static int sink_deliver(void *arg, Synod__ChannelMessage *const *msgs, size_t n,
                        size_t bytes) {
  struct api_stream *st = arg;
  (void)bytes;
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    total += sse_message_size(msgs[i]->offset, msgs[i]->data.data,
                              msgs[i]->data.len);
  }
  char *buf = malloc(total ? total : 1);
  if (buf == NULL) {
    return SYNOD_ENOMEM;
  }
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    k += sse_message(buf + k, msgs[i]->offset, msgs[i]->data.data,
                     msgs[i]->data.len);
  }
  int rv = httpd_stream_write(st->api->httpd, st->request_id, buf, k);
  free(buf);
  return rv;
}

static const struct node_sub_sink api_sink = {
    .started = sink_started,
    .deliver = sink_deliver,
    .ended = api_stream_ended,
    .queued_bytes = api_stream_queued_bytes,
    .want_drain = api_stream_want_drain,
};

/* Where a stream starts: after Last-Event-ID (what an SSE client sends
 * when it reconnects), else ?from=N|first|next (default next); and
 * ?known=INDEX, the channel's created_index (GET /v1/channels/NAME), pins
 * the stream to that channel: a reconnect after the channel was deleted
 * and created again gets 404 instead of the new channel's offsets.
 * Returns false after answering 400. */
static bool api_subscribe_from(struct http_api *api,
                               const struct httpd_request *req,
                               Synod__ChannelSubscribe *q) {
  size_t len;
  char arg[32];
  uint64_t v;
  bool known, from;
  if (!api_query_arg(api, req, "known", arg, sizeof arg, &known)) {
    return false;
  }
  if (known) {
    /* 0: a channel restored from an image of a build before
     * created_index: nothing to pin it by. */
    if (!sse_u64(arg, strlen(arg), &v)) {
      api_respond_code(api, req->id, SYNOD_EINVAL, 0,
                       "known='%s': give the channel's created_index, a "
                       "number",
                       arg);
      return false;
    }
    q->known_index = v;
  }
  if (!api_query_arg(api, req, "from", arg, sizeof arg, &from)) {
    return false;
  }
  if (!from || strcmp(arg, "next") == 0) {
    q->from = SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_NEXT;
  } else if (strcmp(arg, "first") == 0) {
    q->from = SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_FIRST;
  } else if (sse_u64(arg, strlen(arg), &v) && v > 0) {
    q->from = SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_OFFSET;
    q->offset = v;
  } else {
    api_respond_code(api, req->id, SYNOD_EINVAL, 0,
                     "from '%s': give an offset (from 1), first or next", arg);
    return false;
  }
  /* A reconnecting EventSource sends the URL it first used (with its
   * from) and the last id it saw: the id wins. */
  const char *last = httpd_header(req, "Last-Event-ID", &len);
  if (last != NULL) {
    if (!sse_u64(last, len, &v) || v == UINT64_MAX) {
      api_respond_code(api, req->id, SYNOD_EINVAL, 0,
                       "Last-Event-ID '%.*s' is not an offset",
                       (int)(len < 40 ? len : 40), last);
      return false;
    }
    q->from = SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_OFFSET;
    q->offset = v + 1;
  }
  return true;
}

/* GET /v1/channels/NAME as text/event-stream. */
static void api_subscribe(struct http_api *api, const struct httpd_request *req,
                          const char *name) {
  Synod__ChannelSubscribe q = SYNOD__CHANNEL_SUBSCRIBE__INIT;
  if (!api_subscribe_from(api, req, &q)) {
    return;
  }
  if (api_stream_head(api, req)) {
    return;
  }
  struct api_stream *st = api_stream_new(api, req->id, name);
  if (st == NULL) {
    return;
  }
  q.channel = st->name;
  char errmsg[SYNOD_ERRMSG_MAX];
  int rv = node_subscribe(api->node, &q, &api_sink, st, &st->handle, errmsg);
  if (rv != 0) {
    api_stream_free(st);
    api_respond_code(api, req->id, rv, 0, "%s", errmsg);
  }
}

/* ------------------------------------------------------------- routing */

/* Whether a GET asks for the stream (Accept: text/event-stream, or
 * ?stream=1) into *stream. False after answering 400 for a bad ?stream. */
static bool api_wants_stream(struct http_api *api,
                             const struct httpd_request *req, bool *stream) {
  size_t len;
  const char *accept = httpd_header(req, "Accept", &len);
  static const char sse[] = "text/event-stream";
  if (!api_query_flag(api, req, "stream", stream)) {
    return false;
  }
  for (size_t i = 0; accept != NULL && i + sizeof sse - 1 <= len; i++) {
    if (strncasecmp(accept + i, sse, sizeof sse - 1) == 0) {
      *stream = true;
    }
  }
  return true;
}

/* The query parameters of each route: any other is a 400 (a message id
 * given as ?message_id to a publish would otherwise be ignored, and a
 * retry append twice). */
static const char *const list_params[] = {"after", "limit", "stale", NULL};
static const char *const info_params[] = {"stale", "stream", NULL};
static const char *const stream_params[] = {"stream", "from", "known", NULL};
static const char *const no_params[] = {NULL};

void api_channels_request(struct http_api *api,
                          const struct httpd_request *req) {
  const char *raw;
  size_t raw_len;
  char name[API_NAME_MAX];
  if (api_path_is(req, "/v1/channels")) {
    if (httpd_method_is(req, "GET")) {
      if (api_query_only(api, req, list_params)) {
        api_list(api, req);
      }
    } else {
      api_respond_not_allowed(api, req, "GET, HEAD");
    }
    return;
  }
  api_prefix(req, "/v1/channels/", &raw, &raw_len);
  if (raw_len == 0 || !httpd_url_decode(raw, raw_len, name, sizeof name)) {
    api_respond_code(api, req->id, SYNOD_EINVAL, 0,
                     "channel name '%.*s' is empty, too long or badly "
                     "escaped",
                     (int)(raw_len < 200 ? raw_len : 200), raw);
    return;
  }
  bool stream;
  if (httpd_method_is(req, "POST")) {
    if (api_query_only(api, req, no_params)) {
      api_publish(api, req, name);
    }
  } else if (httpd_method_is(req, "GET") &&
             !api_wants_stream(api, req, &stream)) {
    return;
  } else if (httpd_method_is(req, "GET") && stream) {
    if (api_query_only(api, req, stream_params)) {
      api_subscribe(api, req, name);
    }
  } else if (httpd_method_is(req, "GET")) {
    if (api_query_only(api, req, info_params)) {
      api_info(api, req, name);
    }
  } else {
    api_respond_not_allowed(api, req, "GET, HEAD, POST");
  }
}
