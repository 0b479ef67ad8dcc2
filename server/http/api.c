/* The replica's HTTP endpoints: routing, JSON, and reads through the node.
 * The channel endpoints are in api_channels.c. */
#include "api.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "api_int.h"
#include "err.h"
#include "fsm.h"
#include "httpd.h"
#include "log.h"
#include "sse.h"
#include "status_page.h"
#include "synod.h"
#include "utf8.h"

/* A readiness probe's bound on applied-behind-commit, as `synodctl ready`. */
#define API_READY_LAG_MAX 64
/* How long a linearizable read may wait for its index. */
#define API_READ_TIMEOUT_MS 3000
/* Items per list in /v1/status unless ?limit= says otherwise. */
#define API_STATUS_LIMIT_DEFAULT 100
#define API_STATUS_LIMIT_MAX 10000
/* Keep-alive comments on event streams, so that proxies keep them. */
#define API_PING_MS 15000

/* A leader read in flight: where to answer, and in which shape. */
struct api_read {
  struct http_api *api;
  uint64_t request_id;
  bool sidecar;   /* {"name": ...} as the leader-elector sidecar answers */
  json_t *status; /* /v1/status?cluster=1: the answer waiting for peers */
};

/* How long /v1/status?cluster=1 waits for the other replicas' figures. */
#define API_CLUSTER_TIMEOUT_MS 300

static void api_read_free(struct api_read *r);

static const char api_json_type[] = "application/json";

void api_respond_json_headers(struct http_api *api, uint64_t id, int status,
                              const char *headers, json_t *j) {
  char *text =
      j != NULL ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
  if (j == NULL) {
    /* json_pack refused its input (a string that is not UTF-8, a NULL):
     * a bug to find, not a lack of memory. */
    log_error("http", "request %llu: the %d answer could not be built as JSON",
              (unsigned long long)id, status);
    httpd_respond_error(api->httpd, id, 500,
                        "the answer could not be built as JSON (see the "
                        "replica's log)");
  } else if (text == NULL) {
    httpd_respond_error(api->httpd, id, 500, "out of memory");
  } else {
    size_t len = strlen(text);
    text[len] = '\n'; /* replaces the NUL: the length says where it ends */
    httpd_respond(api->httpd, id, status, api_json_type, headers, text,
                  len + 1);
  }
  free(text);
  json_decref(j);
}

void api_respond_json(struct http_api *api, uint64_t id, int status,
                      json_t *j) {
  api_respond_json_headers(api, id, status,
                           "Access-Control-Allow-Origin: *\r\n", j);
}

/* README.md "HTTP" lists these. */
int api_status_of(int code) {
  switch (code) {
  case SYNOD_EINVAL:
  case SYNOD_EMALFORMED:
  case SYNOD_ERANGE:
    return 400;
  case SYNOD_ENOTFOUND:
  case SYNOD_ESESSION: /* the session named is unknown or ended */
    return 404;
  case SYNOD_ENOTHOLDER: /* e.g. a group member another session holds */
    return 403;
  case SYNOD_ESEQUENCE: /* a session's sequence below its window */
    return 409;
  case SYNOD_EEXIST:
  case SYNOD_ELIMIT: /* the channel or the server is full: state, not rate */
    return 409;
  case SYNOD_ECOMPACTED:
    return 410;
  case SYNOD_ETOOBIG:
    return 413;
  case SYNOD_ETIMEDOUT:
    return 504;
  case SYNOD_ENOTLEADER:
  case SYNOD_ENOLEADER:
  case SYNOD_ESHUTDOWN:
  case SYNOD_EBUSY:
  case SYNOD_EUNAVAILABLE:
    return 503;
  default:
    return 500;
  }
}

bool api_message_id_header(struct http_api *api,
                           const struct httpd_request *req, char *out,
                           bool *present) {
  static const char *const names[] = {"Synod-Message-Id", "Idempotency-Key"};
  const struct httpd_header *id = NULL;
  *present = false;
  out[0] = '\0';
  for (size_t i = 0; i < req->headers_n; i++) {
    const struct httpd_header *x = &req->headers[i];
    for (size_t k = 0; k < sizeof names / sizeof names[0] && x->name != NULL;
         k++) {
      if (x->name_len != strlen(names[k]) ||
          strncasecmp(x->name, names[k], x->name_len) != 0) {
        continue;
      }
      if (id != NULL) {
        api_respond_code(api, req->id, SYNOD_EINVAL, 0,
                         "message id given twice (%.*s and %.*s): give one",
                         (int)id->name_len, id->name, (int)x->name_len,
                         x->name);
        return false;
      }
      id = x;
    }
  }
  if (id == NULL) {
    return true;
  }
  if (id->value_len == 0 || id->value_len > API_MESSAGE_ID_MAX ||
      memchr(id->value, 0, id->value_len) != NULL) {
    /* An empty one would be taken for none: no deduplication. */
    api_respond_code(api, req->id, SYNOD_EINVAL, 0,
                     "message id of %zu bytes: 1 to %d, without NUL",
                     id->value_len, API_MESSAGE_ID_MAX);
    return false;
  }
  memcpy(out, id->value, id->value_len);
  out[id->value_len] = '\0';
  *present = true;
  return true;
}

bool api_query_arg(struct http_api *api, const struct httpd_request *req,
                   const char *key, char *out, size_t cap, bool *present) {
  const char *raw = "";
  size_t raw_len = 0;
  enum httpd_query q = httpd_query_value(req, key, out, cap);
  *present = q != HTTPD_QUERY_ABSENT;
  if (q == HTTPD_QUERY_ABSENT || q == HTTPD_QUERY_OK) {
    return true;
  }
  httpd_query_raw(req, key, &raw, &raw_len);
  int shown = (int)(raw_len < 64 ? raw_len : 64);
  switch (q) {
  case HTTPD_QUERY_ESCAPE:
    api_respond_code(api, req->id, SYNOD_EINVAL, 0,
                     "query parameter %s='%.*s': a '%%' must be followed by "
                     "two hex digits",
                     key, shown, raw);
    break;
  case HTTPD_QUERY_NUL:
    api_respond_code(api, req->id, SYNOD_EINVAL, 0,
                     "query parameter %s='%.*s': a NUL byte (%%00) is not "
                     "allowed",
                     key, shown, raw);
    break;
  case HTTPD_QUERY_TOO_LONG:
    api_respond_code(api, req->id, SYNOD_EINVAL, 0,
                     "query parameter %s='%.*s...': longer than %zu bytes", key,
                     shown, raw, cap - 1);
    break;
  default:
    api_respond_code(api, req->id, SYNOD_EINVAL, 0,
                     "query parameter %s is given more than once", key);
    break;
  }
  return false;
}

bool api_query_flag(struct http_api *api, const struct httpd_request *req,
                    const char *key, bool *on) {
  char arg[8];
  bool present;
  *on = false;
  if (!api_query_arg(api, req, key, arg, sizeof arg, &present)) {
    return false;
  }
  if (!present || strcmp(arg, "0") == 0 || strcmp(arg, "false") == 0) {
    return true;
  }
  if (arg[0] == '\0' || strcmp(arg, "1") == 0 || strcmp(arg, "true") == 0) {
    *on = true;
    return true;
  }
  api_respond_code(api, req->id, SYNOD_EINVAL, 0,
                   "%s='%s': give true or false (or nothing)", key, arg);
  return false;
}

bool api_query_count(struct http_api *api, const struct httpd_request *req,
                     const char *key, uint64_t min, uint64_t max,
                     uint64_t *out) {
  char arg[32];
  bool present;
  uint64_t v;
  if (!api_query_arg(api, req, key, arg, sizeof arg, &present)) {
    return false;
  }
  if (!present) {
    return true;
  }
  /* Digits only: strtoul would take "+5", " 5" or "-1" (as 2^64 - 1). */
  if (!sse_u64(arg, strlen(arg), &v) || v < min || v > max) {
    api_respond_code(api, req->id, SYNOD_EINVAL, 0,
                     "%s='%s': give a count from %" PRIu64 " to %" PRIu64
                     " (digits only)",
                     key, arg, min, max);
    return false;
  }
  *out = v;
  return true;
}

bool api_query_only(struct http_api *api, const struct httpd_request *req,
                    const char *const *names) {
  unsigned seen = 0;
  const char *p = req->query, *end = req->query + req->query_len;
  while (p < end) {
    const char *amp = memchr(p, '&', (size_t)(end - p));
    const char *stop = amp != NULL ? amp : end;
    const char *eq = memchr(p, '=', (size_t)(stop - p));
    size_t kl = (size_t)((eq != NULL ? eq : stop) - p);
    unsigned i = 0;
    while (names[i] != NULL &&
           !(strlen(names[i]) == kl && memcmp(names[i], p, kl) == 0)) {
      i++;
    }
    if (kl > 0 && (names[i] == NULL || (seen >> i & 1))) {
      api_respond_code(api, req->id, SYNOD_EINVAL, 0,
                       "query parameter '%.*s' is unknown here or repeated",
                       (int)(kl < 64 ? kl : 64), p);
      return false;
    }
    seen |= kl > 0 ? 1u << i : 0;
    p = stop + 1;
  }
  return true;
}

bool api_page_args(struct http_api *api, const struct httpd_request *req,
                   char *after, uint32_t *limit) {
  uint64_t n = 0;
  bool present;
  if (!api_query_count(api, req, "limit", 1, API_PAGE_LIMIT_MAX, &n)) {
    return false;
  }
  *limit = (uint32_t)n;
  return api_query_arg(api, req, "after", after, API_NAME_MAX, &present);
}

/* The message of an error answer, formatted into msg[API_MESSAGE_MAX],
 * made valid UTF-8: it quotes names and bytes that clients sent, and may
 * cut them (and vsnprintf may cut it) in the middle of a character. */
static void api_message_vformat(char *msg, const char *fmt, va_list ap) {
  int n = vsnprintf(msg, API_MESSAGE_MAX, fmt, ap);
  size_t len = n < 0                         ? 0
               : (size_t)n < API_MESSAGE_MAX ? (size_t)n
                                             : API_MESSAGE_MAX - 1;
  msg[len] = '\0';
  utf8_sanitize(msg, len);
}

json_t *api_error_json(const char *error, const char *fmt, ...) {
  char msg[API_MESSAGE_MAX];
  va_list ap;
  va_start(ap, fmt);
  api_message_vformat(msg, fmt, ap);
  va_end(ap);
  return json_pack("{s:s, s:s}", "error", error, "message", msg);
}

void api_respond_code(struct http_api *api, uint64_t id, int code,
                      uint64_t first_available, const char *fmt, ...) {
  char msg[API_MESSAGE_MAX];
  va_list ap;
  va_start(ap, fmt);
  api_message_vformat(msg, fmt, ap);
  va_end(ap);
  int status = api_status_of(code);
  json_t *j =
      json_pack("{s:s, s:s}", "error", synod_errname(code), "message", msg);
  if (j != NULL && first_available != 0) {
    json_object_set_new(j, "first_available", json_integer(first_available));
  }
  char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  if (text == NULL) {
    httpd_respond_error(api->httpd, id, 500, "out of memory");
    return;
  }
  size_t len = strlen(text);
  text[len] = '\n'; /* replaces the NUL: the length says where it ends */
  httpd_respond(api->httpd, id, status, api_json_type,
                status == 503 ? "Access-Control-Allow-Origin: *\r\n"
                                "Retry-After: 1\r\n"
                              : "Access-Control-Allow-Origin: *\r\n",
                text, len + 1);
  free(text);
}

void api_respond_not_allowed(struct http_api *api,
                             const struct httpd_request *req,
                             const char *allow) {
  char headers[128];
  snprintf(headers, sizeof headers,
           "Access-Control-Allow-Origin: *\r\nAllow: %s\r\n", allow);
  api_respond_json_headers(
      api, req->id, 405, headers,
      api_error_json("SYNOD_EINVAL", "%.*s is not allowed here: %s",
                     (int)(req->method_len < 16 ? req->method_len : 16),
                     req->method, allow));
}

Synod__Response *api_response_of(struct http_api *api, uint64_t request_id,
                                 int err, const char *errmsg,
                                 const uint8_t *resp, size_t len) {
  Synod__Response *pb = NULL;
  uint64_t first = 0;
  if (err == 0 && (pb = synod__response__unpack(NULL, len, resp)) == NULL) {
    err = SYNOD_EMALFORMED;
    errmsg = "the state machine's answer does not decode";
  }
  if (err == 0 && pb->error != NULL) {
    err = (int)pb->error->code;
    errmsg = pb->error->message;
    first = pb->error->first_available;
  }
  if (err != 0) {
    api_respond_code(api, request_id, err, first, "%s",
                     errmsg != NULL ? errmsg : synod_strerror(err));
    if (pb != NULL) {
      synod__response__free_unpacked(pb, NULL);
    }
    return NULL;
  }
  return pb;
}

/* ------------------------------------------------------------- probes */

static void api_healthz(struct http_api *api, uint64_t id) {
  struct node_info *info = malloc(sizeof *info);
  if (info == NULL) {
    httpd_respond_error(api->httpd, id, 500, "out of memory");
    return;
  }
  node_info_get(api->node, info);
  json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:s, s:f}", "status", "ok",
                        "name", info->name, "role", info->role, "term",
                        (json_int_t)info->term, "leader", info->leader,
                        "uptime_seconds", (double)info->uptime_ms / 1000.0);
  free(info);
  api_respond_json(api, id, 200, j);
}

static void api_readyz(struct http_api *api, uint64_t id) {
  char why[256];
  bool ready = node_ready(api->node, API_READY_LAG_MAX, why, sizeof why);
  json_t *j = json_pack("{s:b, s:s}", "ready", ready, "reason", why);
  api_respond_json(api, id, ready ? 200 : 503, j);
}

/* ------------------------------------------------------------- status */

/* bytes as a JSON string: as they are when UTF-8, else as hex. */
static json_t *api_bytes(const uint8_t *p, size_t len) {
  json_t *s = json_stringn((const char *)p, len);
  if (s != NULL) {
    return s;
  }
  char *hex = malloc(2 * len + 3);
  if (hex == NULL) {
    return json_null();
  }
  strcpy(hex, "0x");
  for (size_t i = 0; i < len; i++) {
    snprintf(hex + 2 + 2 * i, 3, "%02x", p[i]);
  }
  s = json_string(hex);
  free(hex);
  return s;
}

static json_t *api_members(const struct node_info *info) {
  json_t *a = json_array();
  for (uint32_t i = 0; i < info->members_n; i++) {
    const struct node_member_info *m = &info->members[i];
    json_array_append_new(
        a, json_pack("{s:s, s:s, s:s, s:b, s:b, s:b, s:s, s:I, s:I, s:I}",
                     "name", m->name, "peer_address", m->peer_address,
                     "client_address", m->client_address, "voter", m->voter,
                     "self", m->self, "up", m->up, "role", m->role,
                     "match_index", (json_int_t)m->match_index, "lag_entries",
                     (json_int_t)m->lag_entries, "last_contact_ms",
                     (json_int_t)m->last_contact_ms));
  }
  return a;
}

static json_t *api_leader_changes(const struct node_info *info) {
  json_t *a = json_array();
  for (uint32_t i = 0; i < info->leader_changes_n; i++) {
    const struct node_leader_change *c = &info->leader_changes[i];
    json_array_append_new(
        a, json_pack("{s:I, s:s, s:I}", "term", (json_int_t)c->term, "leader",
                     c->leader, "at_unix_ms", (json_int_t)c->at_unix_ms));
  }
  return a;
}

/* The lists of /v1/status: at most `limit` items each, with the totals. */
struct api_lists {
  json_t *items;
  uint64_t now_ms; /* cluster time */
};

static void api_lock_item(void *arg, const struct fsm_lock_view *v) {
  struct api_lists *l = arg;
  json_array_append_new(
      l->items,
      json_pack("{s:o, s:b, s:I, s:I, s:I, s:i, s:i}", "name",
                api_bytes((const uint8_t *)v->name, v->name_len), "held",
                v->held, "session_id", (json_int_t)v->session_id, "owner_id",
                (json_int_t)v->owner_id, "token", (json_int_t)v->token,
                "hold_count", (int)v->hold_count, "waiters", (int)v->waiters));
}

static void api_session_item(void *arg, const struct fsm_session_view *v) {
  struct api_lists *l = arg;
  int64_t left = (int64_t)v->expires_ms - (int64_t)l->now_ms;
  json_array_append_new(
      l->items, json_pack("{s:I, s:s, s:i, s:I, s:i}", "id", (json_int_t)v->id,
                          "client_name", v->client_name, "ttl_ms",
                          (int)v->ttl_ms, "expires_in_ms", (json_int_t)left,
                          "locks_held", (int)v->locks_held));
}

static json_t *api_election_json(const char *name, size_t name_len,
                                 bool has_leader, const uint8_t *value,
                                 size_t value_len, uint64_t session_id,
                                 uint64_t revision, uint64_t since_ms,
                                 uint64_t now_ms, uint32_t candidates) {
  json_t *j = json_pack(
      "{s:o, s:b, s:o, s:I, s:I, s:i}", "name",
      api_bytes((const uint8_t *)name, name_len), "has_leader", has_leader,
      "leader", has_leader ? api_bytes(value, value_len) : json_string(""),
      "session_id", (json_int_t)session_id, "token", (json_int_t)revision,
      "candidates", (int)candidates);
  if (j != NULL && has_leader && since_ms != 0 && now_ms >= since_ms) {
    json_object_set_new(j, "leader_for_ms", json_integer(now_ms - since_ms));
  }
  return j;
}

static void api_election_item(void *arg, const struct fsm_election_view *v) {
  struct api_lists *l = arg;
  json_array_append_new(
      l->items,
      api_election_json(v->name, v->name_len, v->value != NULL || v->candidates,
                        v->value, v->value_len, v->session_id, v->revision,
                        v->since_ms, l->now_ms, v->candidates));
}

/* {"total": N, "items": [...]} of one view. */
static json_t *api_list(size_t total, json_t *items) {
  return json_pack("{s:I, s:o}", "total", (json_int_t)total, "items", items);
}

static json_t *api_state_json(struct http_api *api, size_t limit) {
  const struct fsm *f = node_fsm(api->node);
  struct api_lists l = {.now_ms = fsm_time_ms(f)};
  json_t *state = json_object();
  l.items = json_array();
  size_t n = fsm_sessions_view(f, limit, api_session_item, &l);
  json_object_set_new(state, "sessions", api_list(n, l.items));
  l.items = json_array();
  n = fsm_locks_view(f, limit, api_lock_item, &l);
  json_object_set_new(state, "locks", api_list(n, l.items));
  l.items = json_array();
  n = fsm_elections_view(f, limit, api_election_item, &l);
  json_object_set_new(state, "elections", api_list(n, l.items));
  return state;
}

static json_t *api_http_stats(struct http_api *api) {
  struct httpd_stats s;
  httpd_stats(api->httpd, &s);
  return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "connections",
                   (json_int_t)s.connections, "connections_total",
                   (json_int_t)s.connections_total, "connections_refused",
                   (json_int_t)s.connections_refused, "requests_total",
                   (json_int_t)s.requests_total, "bad_requests_total",
                   (json_int_t)s.bad_requests_total, "streams",
                   (json_int_t)s.streams, "queued_bytes",
                   (json_int_t)s.queued_bytes);
}

static json_t *api_replica_json(const struct node_replica_status *r) {
  json_t *j =
      json_pack("{s:s, s:b}", "name", r->name, "reachable", r->reachable);
  if (!r->reachable) {
    json_object_set_new(j, "error", json_string(r->error));
    return j;
  }
  json_object_update_new(
      j, json_pack("{s:s, s:I, s:s, s:I, s:I, s:I, s:I, s:f, s:s}", "role",
                   r->role, "term", (json_int_t)r->term, "leader", r->leader,
                   "commit_index", (json_int_t)r->commit_index, "applied_index",
                   (json_int_t)r->applied_index, "last_index",
                   (json_int_t)r->last_index, "snapshot_index",
                   (json_int_t)r->snapshot_index, "uptime_seconds",
                   (double)r->uptime_ms / 1000.0, "version", r->version));
  return j;
}

/* Every replica's figures arrived (or some did not in time). */
static void api_cluster_answer(void *arg, const struct node_replica_status *rs,
                               uint32_t n) {
  struct api_read *r = arg;
  if (!r->api->stopping) {
    json_t *a = json_array();
    for (uint32_t i = 0; i < n; i++) {
      json_array_append_new(a, api_replica_json(&rs[i]));
    }
    json_object_set_new(r->status, "replicas", a);
    api_respond_json(r->api, r->request_id, 200, r->status);
  } else {
    json_decref(r->status);
  }
  api_read_free(r);
}

/* GET /v1/status: this replica's view; with ?cluster=1 also every
 * replica's own figures ("replicas"), asked for over the peer links. */
static void api_status(struct http_api *api, const struct httpd_request *req) {
  bool cluster;
  uint64_t limit = API_STATUS_LIMIT_DEFAULT;
  if (!api_query_count(api, req, "limit", 0, API_STATUS_LIMIT_MAX, &limit) ||
      !api_query_flag(api, req, "cluster", &cluster)) {
    return;
  }
  struct node_info *info = malloc(sizeof *info);
  if (info == NULL) {
    httpd_respond_error(api->httpd, req->id, 500, "out of memory");
    return;
  }
  node_info_get(api->node, info);
  char why[256];
  bool ready = node_ready(api->node, API_READY_LAG_MAX, why, sizeof why);
  json_t *j = json_pack(
      "{s:s, s:s, s:s, s:s, s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
      "s:I, s:f, s:I, s:I, s:i, s:i, s:b, s:s}",
      "name", info->name, "cluster_id", info->cluster_id, "version",
      info->version, "role", info->role, "term", (json_int_t)info->term,
      "leader", info->leader, "leader_since_unix_ms",
      (json_int_t)info->leader_since_unix_ms, "commit_index",
      (json_int_t)info->commit_index, "applied_index",
      (json_int_t)info->applied_index, "last_index",
      (json_int_t)info->last_index, "snapshot_index",
      (json_int_t)info->snapshot_index, "snapshot_bytes",
      (json_int_t)info->snapshot_bytes, "log_syncs",
      (json_int_t)info->log_syncs, "log_synced_entries",
      (json_int_t)info->log_synced_entries, "uptime_seconds",
      (double)info->uptime_ms / 1000.0, "started_unix_ms",
      (json_int_t)info->started_unix_ms, "now_unix_ms",
      (json_int_t)node_unix_ms(), "voters", (int)info->voters, "learners",
      (int)info->learners, "ready", ready, "ready_reason", why);
  if (j != NULL) {
    json_object_set_new(j, "log_sync_seconds",
                        json_real((double)info->log_sync_us / 1e6));
    json_object_set_new(j, "members", api_members(info));
    json_object_set_new(j, "leader_changes", api_leader_changes(info));
    json_object_update_new(j, api_state_json(api, limit));
    json_object_set_new(j, "http", api_http_stats(api));
  }
  free(info);
  if (j == NULL || !cluster) {
    api_respond_json(api, req->id, 200, j);
    return;
  }
  struct api_read *r = calloc(1, sizeof *r);
  if (r == NULL) {
    json_decref(j);
    httpd_respond_error(api->httpd, req->id, 500, "out of memory");
    return;
  }
  *r = (struct api_read){.api = api, .request_id = req->id, .status = j};
  api->calls_pending++;
  node_cluster_status(api->node, API_CLUSTER_TIMEOUT_MS, api_cluster_answer, r);
}

/* -------------------------------------------------------------- metrics */

/* The HTTP server's own families, after the replica's. */
static int api_http_metrics(struct http_api *api, char *out, size_t cap) {
  struct httpd_stats s;
  httpd_stats(api->httpd, &s);
  return snprintf(
      out, cap,
      "# HELP synod_http_connections HTTP connections open now.\n"
      "# TYPE synod_http_connections gauge\n"
      "synod_http_connections %" PRIu64 "\n"
      "# HELP synod_http_connections_accepted_total HTTP connections "
      "accepted.\n"
      "# TYPE synod_http_connections_accepted_total counter\n"
      "synod_http_connections_accepted_total %" PRIu64 "\n"
      "# HELP synod_http_connections_refused_total HTTP connections refused "
      "with 503 at the cap, every connection busy.\n"
      "# TYPE synod_http_connections_refused_total counter\n"
      "synod_http_connections_refused_total %" PRIu64 "\n"
      "# HELP synod_http_requests_total Whole HTTP requests served.\n"
      "# TYPE synod_http_requests_total counter\n"
      "synod_http_requests_total %" PRIu64 "\n"
      "# HELP synod_http_refused_requests_total HTTP requests refused for "
      "their form or timing (400, 408, 413, 414, 431, 501).\n"
      "# TYPE synod_http_refused_requests_total counter\n"
      "synod_http_refused_requests_total %" PRIu64 "\n"
      "# HELP synod_http_streams HTTP event streams (Server-Sent Events) "
      "open now.\n"
      "# TYPE synod_http_streams gauge\n"
      "synod_http_streams %" PRIu64 "\n"
      "# HELP synod_http_queued_bytes Bytes of HTTP answers queued and not "
      "yet taken by the clients' sockets.\n"
      "# TYPE synod_http_queued_bytes gauge\n"
      "synod_http_queued_bytes %" PRIu64 "\n",
      s.connections, s.connections_total, s.connections_refused,
      s.requests_total, s.bad_requests_total, s.streams, s.queued_bytes);
}

/* GET /metrics: rendered on the loop, from kept counts (never a walk over
 * the locks or counters), so a scrape costs tens of microseconds. */
static void api_metrics(struct http_api *api, uint64_t id) {
  char *text = NULL;
  size_t len = 0;
  char tail[2048];
  uint64_t t0 = uv_hrtime();
  if (node_metrics_text(api->node, &text, &len) != 0) {
    httpd_respond_error(api->httpd, id, 500, "metrics: out of memory");
    return;
  }
  int n = api_http_metrics(api, tail, sizeof tail);
  char *all = realloc(text, len + (size_t)n + 1);
  if (all == NULL) {
    free(text);
    httpd_respond_error(api->httpd, id, 500, "metrics: out of memory");
    return;
  }
  memcpy(all + len, tail, (size_t)n + 1);
  len += (size_t)n;
  log_debug("http", "/metrics: %zu bytes rendered in %llu us", len,
            (unsigned long long)((uv_hrtime() - t0) / 1000));
  httpd_respond(api->httpd, id, 200, "text/plain; version=0.0.4; charset=utf-8",
                NULL, all, len);
  free(all);
}

/* ----------------------------------------------------------- elections */

/* Frees a stopped API once nothing can call into it any more. */
static void api_maybe_free(struct http_api *api) {
  if (api->stopping && api->calls_pending == 0 && !api->ping_open) {
    u64map_close(&api->streams);
    free(api);
  }
}

void api_call_done(struct http_api *api) {
  api->calls_pending--;
  api_maybe_free(api);
}

static void api_read_free(struct api_read *r) {
  struct http_api *api = r->api;
  free(r);
  api_call_done(api);
}

static void api_election_answer(void *arg, int err, const char *errmsg,
                                const uint8_t *resp, size_t len) {
  struct api_read *r = arg;
  struct http_api *api = r->api;
  Synod__Response *pb = NULL;
  if (api->stopping) {
    api_read_free(r);
    return;
  }
  pb = api_response_of(api, r->request_id, err, errmsg, resp, len);
  const Synod__ElectionInfo *e = pb != NULL ? pb->election_leader : NULL;
  if (pb == NULL) {
    /* answered */
  } else if (e == NULL) {
    api_respond_code(api, r->request_id, SYNOD_EINTERNAL, 0,
                     "no election in the answer");
  } else if (r->sidecar) {
    json_t *j = json_pack("{s:o}", "name",
                          e->has_leader ? api_bytes(e->value.data, e->value.len)
                                        : json_string(""));
    api_respond_json(api, r->request_id, 200, j);
  } else {
    api_respond_json(api, r->request_id, 200,
                     api_election_json(e->name, strlen(e->name), e->has_leader,
                                       e->value.data, e->value.len,
                                       e->session_id, e->revision, e->since_ms,
                                       e->now_ms, e->candidates));
  }
  if (pb != NULL) {
    synod__response__free_unpacked(pb, NULL);
  }
  api_read_free(r);
}

/* GET /leader/NAME (sidecar shape) and /v1/elections/NAME. ?stale=1 reads
 * this replica's state without asking the leader. */
static void api_election(struct http_api *api, const struct httpd_request *req,
                         const char *raw, size_t raw_len, bool sidecar) {
  char name[API_NAME_MAX];
  if (raw_len == 0 || !httpd_url_decode(raw, raw_len, name, sizeof name)) {
    httpd_respond_error(api->httpd, req->id, 400,
                        "election name '%.*s' is empty, too long or badly "
                        "escaped",
                        (int)(raw_len < 200 ? raw_len : 200), raw);
    return;
  }
  bool stale;
  if (!api_query_flag(api, req, "stale", &stale)) {
    return;
  }
  struct api_read *r = calloc(1, sizeof *r);
  if (r == NULL) {
    httpd_respond_error(api->httpd, req->id, 500, "out of memory");
    return;
  }
  *r = (struct api_read){api, req->id, sidecar};
  api->calls_pending++;
  Synod__Request q = SYNOD__REQUEST__INIT;
  Synod__ElectionLeader el = SYNOD__ELECTION_LEADER__INIT;
  el.name = name;
  q.body_case = SYNOD__REQUEST__BODY_ELECTION_LEADER;
  q.election_leader = &el;
  node_read(api->node, &q, stale, API_READ_TIMEOUT_MS, api_election_answer, r);
}

/* ------------------------------------------------------------- routing */

bool api_prefix(const struct httpd_request *req, const char *p,
                const char **rest, size_t *rest_len) {
  size_t pl = strlen(p);
  if (req->path_len < pl || memcmp(req->path, p, pl) != 0) {
    return false;
  }
  *rest = req->path + pl;
  *rest_len = req->path_len - pl;
  return true;
}

bool api_path_is(const struct httpd_request *req, const char *p) {
  return req->path_len == strlen(p) && memcmp(req->path, p, req->path_len) == 0;
}

static void api_request_cb(void *arg, const struct httpd_request *req) {
  struct http_api *api = arg;
  const char *rest;
  size_t rest_len;
  if (api_path_is(req, "/v1/channels") ||
      api_prefix(req, "/v1/channels/", &rest, &rest_len)) {
    api_channels_request(api, req);
  } else if (api_path_is(req, "/v1/keys") ||
             api_prefix(req, "/v1/keys/", &rest, &rest_len) ||
             api_path_is(req, "/v1/txn")) {
    api_keys_request(api, req);
  } else if (api_path_is(req, "/v1/groups") ||
             api_prefix(req, "/v1/groups/", &rest, &rest_len)) {
    api_groups_request(api, req);
  } else if (api_path_is(req, "/v1/sessions") ||
             api_prefix(req, "/v1/sessions/", &rest, &rest_len)) {
    api_sessions_request(api, req);
  } else if (!httpd_method_is(req, "GET")) {
    api_respond_not_allowed(api, req, "GET, HEAD");
  } else if (api_path_is(req, "/") || api_path_is(req, "/index.html")) {
    /* The status page: one file, scripts and styles inline; the policy
     * keeps it from loading anything from elsewhere. */
    httpd_respond(api->httpd, req->id, 200, "text/html; charset=utf-8",
                  "Content-Security-Policy: default-src 'none'; "
                  "script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                  "img-src data:; connect-src 'self'\r\n"
                  "X-Content-Type-Options: nosniff\r\n",
                  status_page_html, status_page_html_len);
  } else if (api_path_is(req, "/healthz")) {
    api_healthz(api, req->id);
  } else if (api_path_is(req, "/readyz")) {
    api_readyz(api, req->id);
  } else if (api_path_is(req, "/metrics")) {
    api_metrics(api, req->id);
  } else if (api_path_is(req, "/v1/status")) {
    api_status(api, req);
  } else if (api_prefix(req, "/leader/", &rest, &rest_len)) {
    api_election(api, req, rest, rest_len, true);
  } else if (api_prefix(req, "/v1/elections/", &rest, &rest_len)) {
    api_election(api, req, rest, rest_len, false);
  } else {
    httpd_respond_error(api->httpd, req->id, 404, "no such path: %.*s",
                        (int)(req->path_len < 200 ? req->path_len : 200),
                        req->path);
  }
}

/* -------------------------------------------------------------- control */

static void api_ping_cb(uv_timer_t *t) {
  api_streams_ping(t->data);
}

int http_api_start(uv_loop_t *loop, struct node *node,
                   const char *listen_address, struct http_api **out,
                   char *errmsg) {
  struct http_api *api = calloc(1, sizeof *api);
  if (api == NULL) {
    errmsg_set(errmsg, "http: out of memory");
    return SYNOD_ENOMEM;
  }
  api->loop = loop;
  api->node = node;
  u64map_init(&api->streams);
  struct httpd_options o = {.loop = loop,
                            .listen_address = listen_address,
                            .log_module = "http",
                            .request_cb = api_request_cb,
                            .close_cb = api_streams_close_cb,
                            .drain_cb = api_streams_drain_cb,
                            .arg = api};
  int rv = httpd_start(&o, &api->httpd, errmsg);
  if (rv != 0) {
    u64map_close(&api->streams);
    free(api);
    return rv;
  }
  uv_timer_init(loop, &api->ping);
  api->ping.data = api;
  api->ping_open = true;
  uv_timer_start(&api->ping, api_ping_cb, API_PING_MS, API_PING_MS);
  log_info("http", "serving on http://%s", httpd_listen_address(api->httpd));
  *out = api;
  return 0;
}

static void api_ping_closed(uv_handle_t *h) {
  struct http_api *api = h->data;
  api->ping_open = false;
  api_maybe_free(api);
}

void http_api_stop(struct http_api *api) {
  if (api == NULL || api->stopping) {
    return;
  }
  api->stopping = true;
  api_streams_stop(api);
  httpd_stop(api->httpd);
  uv_close((uv_handle_t *)&api->ping, api_ping_closed);
}

const char *http_api_listen_address(const struct http_api *api) {
  return httpd_listen_address(api->httpd);
}
