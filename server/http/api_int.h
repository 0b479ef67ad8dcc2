/* The HTTP API's internals, shared by api.c (probes, status, metrics,
 * elections, routing), api_channels.c (publish, channel info, Server-
 * Sent Events), api_keys.c and api_txn.c (keys, transactions; their
 * own internals in api_keys_int.h) and api_sessions.c. */
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
  struct u64map streams; /* request id -> struct api_stream */
};

/* Answers with the JSON of j (and frees it; NULL answers 500). */
void api_respond_json(struct http_api *api, uint64_t id, int status, json_t *j);
/* The same with `headers` (lines each ending in CRLF) in place of the
 * default CORS line. */
void api_respond_json_headers(struct http_api *api, uint64_t id, int status,
                              const char *headers, json_t *j);

/* The HTTP status for a SYNOD_E* code. */
int api_status_of(int code);

/* Answers with the error `code`: {"error":"SYNOD_E...","message":...},
 * with "first_available" when it is not 0, at api_status_of(code), and
 * Retry-After on a 503. */
void api_respond_code(struct http_api *api, uint64_t id, int code,
                      uint64_t first_available, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* A callback counted in calls_pending came back; frees a stopped API
 * once the last one has. */
void api_call_done(struct http_api *api);

/* The matching parts of a path: true if the path starts with p, and
 * rest is what follows it. */
bool api_prefix(const struct httpd_request *req, const char *p,
                const char **rest, size_t *rest_len);
bool api_path_is(const struct httpd_request *req, const char *p);

/* api_channels.c: /v1/channels and /v1/channels/NAME. */
void api_channels_request(struct http_api *api,
                          const struct httpd_request *req);
/* httpd's close_cb and drain_cb: the event streams' ends and room. */
void api_channels_close_cb(void *arg, uint64_t id);
void api_channels_drain_cb(void *arg, uint64_t id);
/* Writes a keep-alive comment on every event stream. */
void api_channels_ping(struct http_api *api);
/* Ends every event stream's subscription (stopping). */
void api_channels_stop(struct http_api *api);

/* api_keys.c: /v1/keys, /v1/keys/KEY and (through api_txn.c) /v1/txn. */
void api_keys_request(struct http_api *api, const struct httpd_request *req);
/* api_sessions.c: /v1/sessions and /v1/sessions/ID. */
void api_sessions_request(struct http_api *api,
                          const struct httpd_request *req);

#endif /* SYNOD_HTTP_API_INT_H */
