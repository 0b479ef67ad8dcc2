/* Event streams (Server-Sent Events) of the HTTP API, whatever they
 * carry: the stream state that api_channels.c (channel subscriptions),
 * api_watch.c (key watches) and api_groups.c (group streams) share, the parts
 * of their subscription sinks that do not depend on what is delivered (the
 * start, the end, the bound on queued bytes), and httpd's close and drain
 * callbacks, the pings and the stop for every stream. Each stream is a
 * subscription of the one machinery in server/node/subscribe.c; a slow reader
 * is bounded as a binary subscriber is: the node stops pushing while the HTTP
 * connection has more than its bound queued, and goes on from the retained
 * window when httpd says it drained (api_streams_drain_cb). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "err.h"
#include "sse.h"
#include "synod.h"

/* A ping is written only to a stream with less than this queued: one
 * whose reader is behind has traffic already. */
#define API_PING_QUEUED_MAX (64u << 10)

const char api_sse_type[] = "text/event-stream; charset=utf-8";
const char api_sse_headers[] = "Access-Control-Allow-Origin: *\r\n"
                               "X-Accel-Buffering: no\r\n";

struct api_stream *api_stream_new(struct http_api *api, uint64_t request_id,
                                  const char *name) {
  char errmsg[SYNOD_ERRMSG_MAX];
  size_t len = strlen(name);
  /* The slot first: a stream refused must not have subscribed. */
  int rv = httpd_stream_claim(api->httpd, request_id, errmsg);
  if (rv != 0) {
    api_respond_code(api, request_id, rv, 0,
                     "%s; try again later, or on "
                     "another replica",
                     errmsg);
    return NULL;
  }
  struct api_stream *st = calloc(1, sizeof *st + len + 1);
  if (st == NULL || u64map_put(&api->streams, request_id, st) != 0) {
    free(st);
    httpd_respond_error(api->httpd, request_id, 500, "out of memory");
    return NULL;
  }
  st->api = api;
  st->request_id = request_id;
  memcpy(st->name, name, len + 1);
  return st;
}

void api_stream_free(struct api_stream *st) {
  u64map_del(&st->api->streams, st->request_id);
  json_decref(st->members);
  free(st);
}

bool api_stream_head(struct http_api *api, const struct httpd_request *req) {
  if (!httpd_method_is(req, "HEAD")) {
    return false;
  }
  httpd_respond(api->httpd, req->id, 200, api_sse_type, api_sse_headers, NULL,
                0);
  return true;
}

void api_stream_write(struct api_stream *st, const char *text) {
  httpd_stream_write(st->api->httpd, st->request_id, text, strlen(text));
}

void api_stream_comment(struct api_stream *st, const char *text) {
  char line[256];
  size_t n = sse_comment(line, sizeof line, text);
  if (n >= sizeof line) {
    return;
  }
  /* A key or a channel name may hold a line break; a comment may not. */
  for (size_t i = 1; i + 2 < n; i++) {
    if (line[i] == '\r' || line[i] == '\n') {
      line[i] = ' ';
    }
  }
  api_stream_write(st, line);
}

/* Writes an `event: error` whose data is the error as JSON, and ends the
 * stream. */
static void api_stream_error(struct api_stream *st, int code, const char *msg,
                             uint64_t first_available) {
  struct http_api *api = st->api;
  json_t *j = api_error_json(synod_errname(code), "%s",
                             msg != NULL ? msg : synod_strerror(code));
  if (j != NULL && first_available != 0) {
    json_object_set_new(j, "first_available", json_integer(first_available));
  }
  char *data = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  size_t need = sse_event(NULL, 0, "error", data != NULL ? data : "{}");
  char *ev = malloc(need + 1);
  if (ev != NULL) {
    sse_event(ev, need + 1, "error", data != NULL ? data : "{}");
    httpd_stream_write(api->httpd, st->request_id, ev, need);
  }
  free(ev);
  free(data);
  httpd_stream_end(api->httpd, st->request_id);
}

bool api_stream_started(struct api_stream *st, int err, const char *msg,
                        uint64_t first_available) {
  struct http_api *api = st->api;
  if (err != 0 && err != SYNOD_ECOMPACTED) {
    api_respond_code(api, st->request_id, err, first_available, "%s", msg);
    api_stream_free(st);
    return false;
  }
  if (httpd_stream_start(api->httpd, st->request_id, 200, api_sse_type,
                         api_sse_headers) != 0) {
    return false; /* its connection is gone: close_cb ends the subscription */
  }
  st->open = true;
  if (err == SYNOD_ECOMPACTED) {
    /* An event, not an HTTP error, so that an EventSource sees it. */
    api_stream_error(st, err, msg, first_available);
    api_stream_free(st);
    return false;
  }
  return true;
}

void api_stream_ended(void *arg, int err, const char *msg,
                      uint64_t first_available) {
  struct api_stream *st = arg;
  if (st->open) {
    api_stream_error(st, err, msg, first_available);
  } else {
    api_respond_code(st->api, st->request_id, err, first_available, "%s", msg);
  }
  api_stream_free(st);
}

size_t api_stream_queued_bytes(void *arg) {
  struct api_stream *st = arg;
  return httpd_queued_bytes(st->api->httpd, st->request_id);
}

void api_stream_want_drain(void *arg, size_t below) {
  struct api_stream *st = arg;
  httpd_want_drain(st->api->httpd, st->request_id, below);
}

/* ------------------------------------------------ every stream at once */

void api_streams_close_cb(void *arg, uint64_t id) {
  struct http_api *api = arg;
  struct api_stream *st = u64map_get(&api->streams, id);
  if (st != NULL) {
    node_unsubscribe(api->node, st->handle);
    api_stream_free(st);
  }
}

void api_streams_drain_cb(void *arg, uint64_t id) {
  struct http_api *api = arg;
  struct api_stream *st = u64map_get(&api->streams, id);
  if (st != NULL) {
    node_sub_drained(api->node, st->handle);
  }
}

static void api_ping_one(void *arg, uint64_t id, void *value) {
  struct http_api *api = arg;
  static const char ping[] = ": ping\n\n";
  (void)value;
  if (httpd_queued_bytes(api->httpd, id) < API_PING_QUEUED_MAX) {
    httpd_stream_write(api->httpd, id, ping, sizeof ping - 1);
  }
}

void api_streams_ping(struct http_api *api) {
  u64map_each(&api->streams, api_ping_one, api);
}

static void api_stop_one(void *arg, uint64_t id, void *value) {
  struct http_api *api = arg;
  struct api_stream *st = value;
  (void)id;
  node_unsubscribe(api->node, st->handle);
  json_decref(st->members);
  free(st);
}

void api_streams_stop(struct http_api *api) {
  u64map_each(&api->streams, api_stop_one, api);
  u64map_close(&api->streams);
  u64map_init(&api->streams);
}
