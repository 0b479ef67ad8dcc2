/* The HTTP API's internals, shared by api.c (probes, status, metrics,
 * elections, routing), api_stream.c (event streams), api_channels.c
 * (publish, channel info, subscriptions), api_keys.c, api_watch.c and
 * api_txn.c (keys, watches, transactions; their own internals in
 * api_keys_int.h), api_sessions.c and api_groups.c. */
#ifndef SYNOD_HTTP_API_INT_H
#define SYNOD_HTTP_API_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "httpd.h"
#include "node.h"
#include "u64map.h"

#define API_NAME_MAX 1024

struct http_api {
  uv_loop_t *loop;
  struct node *node;
  struct httpd *httpd;
  bool stopping;
  /* node_read, node_write and node_cluster_status callbacks still to
   * come: a stopped API is freed once none is left. */
  unsigned calls_pending;
  uv_timer_t ping; /* keep-alive comments on every event stream */
  bool ping_open;
  struct u64map streams; /* request id -> struct api_stream (api_stream.c) */
};

/* Answers with the JSON of j (and frees it). NULL answers 500 saying
 * the answer could not be built (a json_pack that refused its input). */
void api_respond_json(struct http_api *api, uint64_t id, int status, json_t *j);
/* The same with `headers` (lines each ending in CRLF) in place of the
 * default CORS line. */
void api_respond_json_headers(struct http_api *api, uint64_t id, int status,
                              const char *headers, json_t *j);

/* Sets `field` of j to the bytes: a string when they are UTF-8, else
 * base64 (RFC 4648, padded) with `encoding_field` = "base64" (the keys
 * API's encoding of values, used for every byte field). */
void api_json_set_bytes(json_t *j, const char *field,
                        const char *encoding_field, const uint8_t *p,
                        size_t len);

/* The HTTP status for a SYNOD_E* code. */
int api_status_of(int code);

/* An error answer's message holds at most this, its NUL included. */
#define API_MESSAGE_MAX 512

/* {"error": error, "message": the formatted message}, the message made
 * valid UTF-8 first (utf8_sanitize: it may quote bytes a client sent, or
 * be cut in the middle of a character), as every error answer and error
 * event builds it; NULL only when out of memory. */
json_t *api_error_json(const char *error, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Answers with the error `code`: {"error":"SYNOD_E...","message":...},
 * with "first_available" when it is not 0, at api_status_of(code), and
 * Retry-After on a 503. */
void api_respond_code(struct http_api *api, uint64_t id, int code,
                      uint64_t first_available, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Answers 405 with the Allow header (`allow`: "GET, HEAD") and the JSON
 * error naming the method, which is quoted as the client sent it. */
void api_respond_not_allowed(struct http_api *api,
                             const struct httpd_request *req,
                             const char *allow);

/* The Response of a node callback (err, errmsg, resp as node_write and
 * node_read hand them over): unpacked (free it), or NULL after answering
 * request_id with the error it carries, or with SYNOD_EMALFORMED if it
 * does not decode. */
Synod__Response *api_response_of(struct http_api *api, uint64_t request_id,
                                 int err, const char *errmsg,
                                 const uint8_t *resp, size_t len);

/* The query parameter `key`, percent-decoded into out (cap bytes,
 * NUL-terminated; "" when absent): *present says whether it was given.
 * The one reading of a query parameter in the channel, group, session
 * and status routes. A parameter that is given but cannot be used (a bad
 * '%' escape, %00, longer than cap - 1 bytes, given twice) is never taken
 * for an absent one: returns false after answering 400 (SYNOD_EINVAL)
 * with a message naming the parameter and what is wrong with it. */
bool api_query_arg(struct http_api *api, const struct httpd_request *req,
                   const char *key, char *out, size_t cap, bool *present);

/* A message id header's value, at most (the state machine refuses ids
 * over the name limit, 256 bytes, with a clear message). */
#define API_MESSAGE_ID_MAX 1024

/* The message id of a publish or a group send: the Synod-Message-Id or
 * Idempotency-Key header, into out (API_MESSAGE_ID_MAX + 1 bytes, "" when
 * neither is given); *present says whether one was. More than one of
 * them (a header twice, or both: which would count?), an empty value,
 * one over API_MESSAGE_ID_MAX bytes or with a NUL: false after answering
 * 400. */
bool api_message_id_header(struct http_api *api,
                           const struct httpd_request *req, char *out,
                           bool *present);

/* Whether the query names only parameters of `names` (NULL-ended, at
 * most 32), each once: a misspelt or unknown one (?To=bob) is a 400, not
 * ignored (a send would go to every member). False after answering. */
bool api_query_only(struct http_api *api, const struct httpd_request *req,
                    const char *const *names);

/* A flag of the query into *on: absent (false), "", "1" or "true"
 * (true), "0" or "false" (false). False after answering 400 for any
 * other value (api_query_arg). */
bool api_query_flag(struct http_api *api, const struct httpd_request *req,
                    const char *key, bool *on);

/* ?key=N, a count from min to max in decimal digits (no sign, no
 * space), into *out when present (left as it is when absent). False
 * after answering 400 naming the parameter and the range. */
bool api_query_count(struct http_api *api, const struct httpd_request *req,
                     const char *key, uint64_t min, uint64_t max,
                     uint64_t *out);

/* A list's page holds at most this many items (the state machine may
 * bound it lower: a channel list 1,000). */
#define API_PAGE_LIMIT_MAX 100000

/* The page of a list: ?after=NAME (into after[API_NAME_MAX], "" if
 * absent) and ?limit=N (0 if absent: the server's default). False after
 * answering SYNOD_EINVAL for a limit that is not a count from 1 to
 * API_PAGE_LIMIT_MAX, or a parameter that does not decode
 * (api_query_arg). */
bool api_page_args(struct http_api *api, const struct httpd_request *req,
                   char *after, uint32_t *limit);

/* A callback counted in calls_pending came back; frees a stopped API
 * once the last one has. */
void api_call_done(struct http_api *api);

/* The matching parts of a path: true if the path starts with p, and
 * rest is what follows it. */
bool api_prefix(const struct httpd_request *req, const char *p,
                const char **rest, size_t *rest_len);
bool api_path_is(const struct httpd_request *req, const char *p);

/* api_stream.c: event streams (Server-Sent Events), channel
 * subscriptions and key watches alike.
 *
 * One stream: request_id's subscription `handle` (node_subscribe or
 * node_key_watch, with `st` as the sink's arg). In api->streams from
 * api_stream_new until it ends or its connection closes. */
struct api_stream {
  struct http_api *api;
  uint64_t request_id;
  uint64_t handle;
  bool open; /* the answer's head is out: errors are events now */
  /* Key watches: the position last written as an `id:`, (revision,
   * event; 0: the whole revision). Ids only grow. */
  uint64_t id_rev;
  uint32_t id_event;
  /* Group streams: the members in the view after the last view item
   * delivered (a JSON array, owned), or NULL when the stream could not
   * know it (api_groups.c). */
  json_t *members;
  char name[]; /* the channel, key or prefix (for messages) */
};

extern const char api_sse_type[];    /* the streams' Content-Type */
extern const char api_sse_headers[]; /* and their other headers */

/* A stream of request `request_id` on `name` (copied), in api->streams,
 * holding one of httpd's stream slots; or NULL after answering: 503
 * when every slot is taken (httpd_stream_claim), 500 out of memory. */
struct api_stream *api_stream_new(struct http_api *api, uint64_t request_id,
                                  const char *name);
/* Takes st out of api->streams and frees it (not its subscription). */
void api_stream_free(struct api_stream *st);
/* A HEAD of a stream route: answers the stream's head alone and returns
 * true; false for any other method. */
bool api_stream_head(struct http_api *api, const struct httpd_request *req);
/* Writes text (NUL-terminated, copied) to the open stream st. */
void api_stream_write(struct api_stream *st, const char *text);
/* Writes a comment line (text's CR and LF as spaces; dropped if over
 * about 250 bytes). */
void api_stream_comment(struct api_stream *st, const char *text);
/* The common part of a sink's started (or key_started): with err 0,
 * opens the stream (200, text/event-stream) and returns true; the caller
 * then writes its opening. Otherwise answers the error (an HTTP error;
 * SYNOD_ECOMPACTED as an `event: error`, so that an EventSource sees
 * it), frees st and returns false; also false when the connection is
 * gone (close_cb then frees st). */
bool api_stream_started(struct api_stream *st, int err, const char *msg,
                        uint64_t first_available);
/* Sinks' ended, queued_bytes and want_drain (arg: the stream). ended
 * writes an `event: error` with the error as JSON (with
 * "first_available" when not 0) and ends the stream. */
void api_stream_ended(void *arg, int err, const char *msg,
                      uint64_t first_available);
size_t api_stream_queued_bytes(void *arg);
void api_stream_want_drain(void *arg, size_t below);

/* httpd's close_cb and drain_cb: the event streams' ends and room. */
void api_streams_close_cb(void *arg, uint64_t id);
void api_streams_drain_cb(void *arg, uint64_t id);
/* Writes a keep-alive comment on every event stream. */
void api_streams_ping(struct http_api *api);
/* Ends every event stream's subscription (stopping). */
void api_streams_stop(struct http_api *api);

/* api_channels.c: /v1/channels and /v1/channels/NAME. */
void api_channels_request(struct http_api *api,
                          const struct httpd_request *req);

/* api_groups.c: /v1/groups and /v1/groups/NAME[/messages|/members/M]. */
void api_groups_request(struct http_api *api, const struct httpd_request *req);

/* api_keys.c: /v1/keys, /v1/keys/KEY and (through api_txn.c) /v1/txn. */
void api_keys_request(struct http_api *api, const struct httpd_request *req);
/* api_sessions.c: /v1/sessions and /v1/sessions/ID. */
void api_sessions_request(struct http_api *api,
                          const struct httpd_request *req);

#endif /* SYNOD_HTTP_API_INT_H */
