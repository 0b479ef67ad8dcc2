/* Sessions over HTTP, as Consul's (README.md "HTTP keys and sessions"):
 * POST /v1/sessions opens one, PUT /v1/sessions/ID renews it, DELETE
 * closes it (its bound keys go at once), GET shows it from this
 * replica's state. A session is the state machine's, not a connection's:
 * open, renew and close are writes through node_write (a follower
 * forwards them; the leader collects a forwarded renewal into its
 * per-tick batch of keepalives, and proposes one made on itself as its
 * own SessionKeepalive entry). So an application may open on one replica, renew
 * on another and bind keys through a third; it must renew within the TTL (every
 * TTL/3 is what libsynod does), or the session expires in cluster time and
 * takes its keys with it. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "err.h"
#include "fsm.h"
#include "synod.h"

#define API_WRITE_TIMEOUT_MS 5000
#define API_SESSION_NAME_MAX 256

enum session_op { S_OPEN, S_RENEW, S_CLOSE };

struct session_call {
  struct http_api *api;
  uint64_t request_id;
  enum session_op op;
  uint64_t id;
};

static void session_answer(void *arg, int err, const char *errmsg,
                           const uint8_t *resp, size_t len) {
  struct session_call *c = arg;
  struct http_api *api = c->api;
  Synod__Response *pb = NULL;
  if (api->stopping) {
    goto done;
  }
  pb = api_response_of(api, c->request_id, err, errmsg, resp, len);
  if (pb == NULL) {
    /* answered */
  } else if (c->op == S_OPEN && pb->session_open != NULL &&
             pb->body_case == SYNOD__RESPONSE__BODY_SESSION_OPEN) {
    uint32_t ttl = pb->session_open->ttl_ms;
    api_respond_json(api, c->request_id, 200,
                     json_pack("{s:I, s:i, s:i}", "id",
                               (json_int_t)pb->session_open->session_id,
                               "ttl_ms", (int)ttl, "renew_every_ms",
                               (int)(ttl / 3)));
  } else if (c->op == S_RENEW && pb->session_keepalive != NULL &&
             pb->body_case == SYNOD__RESPONSE__BODY_SESSION_KEEPALIVE) {
    api_respond_json(api, c->request_id, 200,
                     json_pack("{s:I, s:i}", "id", (json_int_t)c->id, "ttl_ms",
                               (int)pb->session_keepalive->ttl_ms));
  } else if (c->op == S_CLOSE) {
    api_respond_json(
        api, c->request_id, 200,
        json_pack("{s:I, s:b}", "id", (json_int_t)c->id, "closed", 1));
  } else {
    api_respond_code(api, c->request_id, SYNOD_EINTERNAL, 0,
                     "the answer is not a session's");
  }
done:
  if (pb != NULL) {
    synod__response__free_unpacked(pb, NULL);
  }
  free(c);
  api_call_done(api);
}

static void session_write(struct http_api *api, uint64_t request_id,
                          enum session_op op, uint64_t id,
                          const Synod__Request *r) {
  struct session_call *c = calloc(1, sizeof *c);
  if (c == NULL) {
    api_respond_code(api, request_id, SYNOD_ENOMEM, 0, "out of memory");
    return;
  }
  *c = (struct session_call){api, request_id, op, id};
  api->calls_pending++;
  node_write(api->node, r, API_WRITE_TIMEOUT_MS, session_answer, c);
}

/* A duration: "10s", "1500ms", "2m", or a bare number of seconds. */
static bool parse_ttl_ms(const char *s, uint64_t *out) {
  char *end;
  if (*s < '0' || *s > '9') {
    return false;
  }
  unsigned long long v = strtoull(s, &end, 10);
  uint64_t mul = strcmp(end, "ms") == 0                  ? 1
                 : strcmp(end, "s") == 0 || *end == '\0' ? 1000
                 : strcmp(end, "m") == 0                 ? 60000
                                                         : 0;
  if (mul == 0 || v > UINT32_MAX / mul) {
    return false;
  }
  *out = v * mul;
  return true;
}

/* The ttl and name of an open from a JSON body ({"ttl": "10s" | 10,
 * "ttl_ms": 10000, "name": "gw-1"}), over what the query gave: *has_ttl
 * says whether a ttl was given, in either. Empty msg if it is good, else
 * why not. */
static void open_body_args(const struct httpd_request *req, bool *has_ttl,
                           uint64_t *ttl_ms, bool *has_name, char *name,
                           char *msg) {
  json_error_t jerr;
  json_t *j = json_loadb((const char *)req->body, req->body_len,
                         JSON_REJECT_DUPLICATES, &jerr);
  json_t *t = j != NULL ? json_object_get(j, "ttl") : NULL;
  json_t *tm = j != NULL ? json_object_get(j, "ttl_ms") : NULL;
  json_t *nm = j != NULL ? json_object_get(j, "name") : NULL;
  size_t fields = (t != NULL) + (tm != NULL) + (nm != NULL);
  if (j == NULL || !json_is_object(j)) {
    errmsg_set(msg, "session open: the body is not a JSON object%s%s",
               j == NULL ? ": " : "", j == NULL ? jerr.text : "");
  } else if (json_object_size(j) != fields) {
    errmsg_set(msg, "session open: the body's fields are ttl, ttl_ms and "
                    "name only");
  } else if ((t != NULL) + (tm != NULL) + *has_ttl > 1) {
    errmsg_set(msg, "session open: give one of ttl (query or body) and "
                    "ttl_ms");
  } else if (t != NULL && json_is_integer(t) && json_integer_value(t) >= 0 &&
             json_integer_value(t) <= UINT32_MAX / 1000) {
    *ttl_ms = (uint64_t)json_integer_value(t) * 1000;
  } else if (t != NULL && (!json_is_string(t) ||
                           !parse_ttl_ms(json_string_value(t), ttl_ms))) {
    errmsg_set(msg, "session open: ttl: give \"10s\", \"1500ms\", \"2m\" "
                    "or a number of seconds");
  } else if (tm != NULL &&
             (!json_is_integer(tm) || json_integer_value(tm) < 0 ||
              json_integer_value(tm) > UINT32_MAX)) {
    errmsg_set(msg, "session open: ttl_ms is not a number of milliseconds");
  } else if (tm != NULL) {
    *ttl_ms = (uint64_t)json_integer_value(tm);
  }
  *has_ttl = *has_ttl || t != NULL || tm != NULL;
  if (msg[0] == '\0' && nm != NULL && *has_name) {
    errmsg_set(msg, "session open: give name in the query or the body, "
                    "not both");
  } else if (msg[0] == '\0' && nm != NULL &&
             (!json_is_string(nm) ||
              json_string_length(nm) > API_SESSION_NAME_MAX ||
              strlen(json_string_value(nm)) != json_string_length(nm))) {
    errmsg_set(msg,
               "session open: name is not a string of at most %d bytes "
               "without NUL",
               API_SESSION_NAME_MAX);
  } else if (msg[0] == '\0' && nm != NULL) {
    snprintf(name, API_SESSION_NAME_MAX + 1, "%s", json_string_value(nm));
    *has_name = true;
  }
  json_decref(j);
}

/* The ttl and name of an open, from the query (?ttl=10s&name=gw-1) or a
 * JSON body. A ttl that is given must be one the state machine takes
 * (fsm_session_ttl_check: 1 s to 5 min), and 0 too is refused: leaving
 * ttl out is how to ask for the default. A name that is given must not be
 * empty. Returns false after answering 400. */
static bool open_args(struct http_api *api, const struct httpd_request *req,
                      uint64_t *ttl_ms, char *name) {
  static const char *const params[] = {"ttl", "name", NULL};
  char arg[64], msg[SYNOD_ERRMSG_MAX] = "";
  bool has_ttl, has_name;
  int code = SYNOD_EINVAL;
  if (!api_query_only(api, req, params) ||
      !api_query_arg(api, req, "ttl", arg, sizeof arg, &has_ttl) ||
      !api_query_arg(api, req, "name", name, API_SESSION_NAME_MAX + 1,
                     &has_name)) {
    return false;
  }
  if (has_ttl && !parse_ttl_ms(arg, ttl_ms)) {
    errmsg_set(msg, "ttl '%s': give 10s, 1500ms, 2m or seconds", arg);
  }
  if (msg[0] == '\0' && req->body_len > 0) {
    open_body_args(req, &has_ttl, ttl_ms, &has_name, name, msg);
  }
  if (msg[0] == '\0' && has_ttl && *ttl_ms == 0) {
    errmsg_set(msg, "session open: ttl 0: a session lives 1 s to 5 min; "
                    "leave ttl out for the default (10 s)");
    code = SYNOD_ERANGE;
  } else if (msg[0] == '\0' && has_ttl &&
             fsm_session_ttl_check(node_fsm(api->node), (uint32_t)*ttl_ms,
                                   msg) != 0) {
    code = SYNOD_ERANGE;
  }
  if (msg[0] == '\0' && has_name && name[0] == '\0') {
    errmsg_set(msg, "session open: name is empty; leave it out for the "
                    "default (\"http\" and the client's address)");
  }
  if (msg[0] != '\0') {
    api_respond_code(api, req->id, code, 0, "%s", msg);
    return false;
  }
  return true;
}

/* POST /v1/sessions. */
static void session_open(struct http_api *api,
                         const struct httpd_request *req) {
  uint64_t ttl_ms = 0;
  char name[API_SESSION_NAME_MAX + 1] = "";
  if (!open_args(api, req, &ttl_ms, name)) {
    return;
  }
  if (name[0] == '\0') {
    snprintf(name, sizeof name, "http %s", req->remote);
  }
  Synod__Request r = SYNOD__REQUEST__INIT;
  Synod__SessionOpen o = SYNOD__SESSION_OPEN__INIT;
  o.ttl_ms = (uint32_t)ttl_ms; /* 0: the server's default */
  o.client_name = name;
  r.body_case = SYNOD__REQUEST__BODY_SESSION_OPEN;
  r.session_open = &o;
  session_write(api, req->id, S_OPEN, 0, &r);
}

/* GET /v1/sessions/ID: from this replica's applied state. */
static void session_get(struct http_api *api, const struct httpd_request *req,
                        uint64_t id) {
  const struct fsm *f = node_fsm(api->node);
  struct fsm_session_view v;
  if (!fsm_session_view_get(f, id, &v)) {
    api_respond_code(api, req->id, SYNOD_ESESSION, 0,
                     "session %" PRIu64 " unknown or ended (on this replica)",
                     id);
    return;
  }
  int64_t left = (int64_t)v.expires_ms - (int64_t)fsm_time_ms(f);
  api_respond_json(api, req->id, 200,
                   json_pack("{s:I, s:s, s:i, s:I, s:i}", "id", (json_int_t)id,
                             "name", v.client_name, "ttl_ms", (int)v.ttl_ms,
                             "expires_in_ms", (json_int_t)left, "locks_held",
                             (int)v.locks_held));
}

void api_sessions_request(struct http_api *api,
                          const struct httpd_request *req) {
  static const char *const none[] = {NULL};
  const char *raw;
  size_t raw_len;
  if (api_path_is(req, "/v1/sessions")) {
    if (httpd_method_is(req, "POST")) {
      session_open(api, req);
    } else {
      api_respond_not_allowed(api, req, "POST");
    }
    return;
  }
  api_prefix(req, "/v1/sessions/", &raw, &raw_len);
  uint64_t id = 0;
  for (size_t i = 0; i < raw_len && raw_len <= 19; i++) {
    id =
        raw[i] >= '0' && raw[i] <= '9' ? id * 10 + (uint64_t)(raw[i] - '0') : 0;
    if (id == 0) {
      break;
    }
  }
  if (id == 0) {
    api_respond_code(api, req->id, SYNOD_EINVAL, 0,
                     "session id '%.*s' is not a number from 1",
                     (int)(raw_len < 64 ? raw_len : 64), raw);
    return;
  }
  if (!api_query_only(api, req, none)) {
    return;
  }
  Synod__Request r = SYNOD__REQUEST__INIT;
  Synod__SessionKeepalive k = SYNOD__SESSION_KEEPALIVE__INIT;
  Synod__SessionClose cl = SYNOD__SESSION_CLOSE__INIT;
  r.session_id = id;
  if (httpd_method_is(req, "GET")) {
    session_get(api, req, id);
  } else if (httpd_method_is(req, "PUT")) {
    r.body_case = SYNOD__REQUEST__BODY_SESSION_KEEPALIVE;
    r.session_keepalive = &k;
    session_write(api, req->id, S_RENEW, id, &r);
  } else if (httpd_method_is(req, "DELETE")) {
    r.body_case = SYNOD__REQUEST__BODY_SESSION_CLOSE;
    r.session_close = &cl;
    session_write(api, req->id, S_CLOSE, id, &r);
  } else {
    api_respond_not_allowed(api, req, "GET, HEAD, PUT, DELETE");
  }
}
