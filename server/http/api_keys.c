/* Keys over HTTP (README.md "HTTP keys and sessions"): GET, PUT and
 * DELETE /v1/keys/KEY, ?prefix lists and deletes, compare-and-put and
 * compare-and-delete from the query or the If-Match / If-None-Match
 * headers. Reads go through node_read (linearizable unless ?stale) and
 * writes through node_write (a follower forwards them to the leader), so
 * any replica serves every route. The key is everything after /v1/keys/,
 * percent-decoded exactly: a '%' not followed by two hex digits is 400, and so
 * is a query parameter this route does not know (a mistyped ?if_verison must
 * not turn a compare-and-put into a plain put). Nothing is proposed for a
 * request refused here; what the state machine refuses changes nothing.
 * Transactions (POST /v1/txn) are in api_txn.c, watches (?watch, Server-
 * Sent Events) in api_watch.c. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "api_keys_int.h"
#include "err.h"
#include "fsm.h"
#include "log.h"
#include "synod.h"

#define API_READ_TIMEOUT_MS 3000

/* ------------------------------------------------------------ base64 */

static const char b64_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* RFC 4648 with padding; malloc'ed, NUL-terminated, or NULL. */
static char *b64_encode(const uint8_t *p, size_t len) {
  char *out = malloc(4 * ((len + 2) / 3) + 1);
  size_t k = 0;
  if (out == NULL) {
    return NULL;
  }
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16;
    v |= i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0;
    v |= i + 2 < len ? p[i + 2] : 0;
    out[k++] = b64_chars[v >> 18 & 63];
    out[k++] = b64_chars[v >> 12 & 63];
    out[k++] = i + 1 < len ? b64_chars[v >> 6 & 63] : '=';
    out[k++] = i + 2 < len ? b64_chars[v & 63] : '=';
  }
  out[k] = '\0';
  return out;
}

static int b64_value(char c) {
  const char *p = c != '\0' ? strchr(b64_chars, c) : NULL;
  return p != NULL ? (int)(p - b64_chars) : -1;
}

/* Decodes standard base64 with padding into out (room for 3 * len / 4
 * bytes). Returns false if it is not exactly that. */
bool key_b64_decode(const char *s, size_t len, uint8_t *out, size_t *out_len) {
  size_t k = 0;
  if (len % 4 != 0) {
    return false;
  }
  for (size_t i = 0; i < len; i += 4) {
    int v[4];
    bool last = i + 4 == len;
    for (int j = 0; j < 4; j++) {
      v[j] = b64_value(s[i + j]);
    }
    int pad = last && s[i + 3] == '=' ? (s[i + 2] == '=' ? 2 : 1) : 0;
    if (v[0] < 0 || v[1] < 0 || (pad < 2 && v[2] < 0) ||
        (pad < 1 && v[3] < 0)) {
      return false;
    }
    uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
                 (uint32_t)(pad < 2 ? v[2] : 0) << 6 |
                 (uint32_t)(pad < 1 ? v[3] : 0);
    out[k++] = (uint8_t)(w >> 16);
    if (pad < 2) {
      out[k++] = (uint8_t)(w >> 8);
    }
    if (pad < 1) {
      out[k++] = (uint8_t)w;
    }
  }
  *out_len = k;
  return true;
}

/* ------------------------------------------------------ exact decoding */

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

/* Percent-decodes src[0..len) into out (room for len bytes); with
 * `plus`, '+' is a space (query strings). Any byte may result, NUL
 * included. Returns false on a '%' without two hex digits after it. */
static bool pct_decode(const char *src, size_t len, bool plus, uint8_t *out,
                       size_t *out_len) {
  size_t k = 0;
  for (size_t i = 0; i < len; i++) {
    if (src[i] == '%') {
      if (i + 2 >= len) {
        return false;
      }
      int hi = hex_digit(src[i + 1]);
      int lo = hex_digit(src[i + 2]);
      if (hi < 0 || lo < 0) {
        return false;
      }
      out[k++] = (uint8_t)(hi << 4 | lo);
      i += 2;
    } else {
      out[k++] = plus && src[i] == '+' ? ' ' : (uint8_t)src[i];
    }
  }
  *out_len = k;
  return true;
}

/* -------------------------------------------------------------- query */

enum {
  Q_STALE,
  Q_PREFIX,
  Q_KEYS_ONLY,
  Q_LIMIT,
  Q_AFTER,
  Q_SESSION,
  Q_IF_VERSION,
  Q_IF_MOD_REVISION,
  Q_IF_CREATE_REVISION,
  Q_IF_VALUE,
  Q_PREV,
  Q_RAW,
  Q_WATCH,
  Q_FROM,
  Q_REVISION,
  Q_N
};

static const char *const q_names[Q_N] = {"stale",
                                         "prefix",
                                         "keys_only",
                                         "limit",
                                         "after",
                                         "session",
                                         "if_version",
                                         "if_mod_revision",
                                         "if_create_revision",
                                         "if_value",
                                         "prev",
                                         "raw",
                                         "watch",
                                         "from",
                                         "revision"};

/* A request's query, decoded: each known parameter at most once. */
struct kq {
  unsigned seen; /* 1 << Q_* */
  uint8_t *buf;  /* the decoded values, one after the other */
  const uint8_t *val[Q_N];
  size_t len[Q_N];
};

static bool kq_has(const struct kq *q, int i) {
  return (q->seen >> i) & 1;
}

static void kq_free(struct kq *q) {
  free(q->buf);
}

/* Splits and decodes req's query, allowing the parameters in `allowed`.
 * Returns false after answering 400 (an unknown or repeated parameter,
 * a bad escape). */
static bool kq_parse(struct http_api *api, const struct httpd_request *req,
                     unsigned allowed, struct kq *q) {
  *q = (struct kq){0};
  q->buf = malloc(req->query_len + 1);
  if (q->buf == NULL) {
    api_respond_code(api, req->id, SYNOD_ENOMEM, 0, "query: out of memory");
    return false;
  }
  size_t used = 0;
  const char *p = req->query, *end = req->query + req->query_len;
  while (p < end) {
    const char *amp = memchr(p, '&', (size_t)(end - p));
    const char *stop = amp != NULL ? amp : end;
    const char *eq = memchr(p, '=', (size_t)(stop - p));
    const char *kend = eq != NULL ? eq : stop;
    int i = 0;
    while (i < Q_N && !((size_t)(kend - p) == strlen(q_names[i]) &&
                        memcmp(p, q_names[i], (size_t)(kend - p)) == 0)) {
      i++;
    }
    if (kend == p && stop == p) {
      p = stop + 1; /* "a=1&&b=2" */
      continue;
    }
    if (i == Q_N || !((allowed >> i) & 1)) {
      api_respond_code(api, req->id, SYNOD_EINVAL, 0,
                       "query parameter '%.*s' is not one of this route's",
                       (int)((kend - p) < 64 ? (kend - p) : 64), p);
      return false;
    }
    if (kq_has(q, i)) {
      api_respond_code(api, req->id, SYNOD_EINVAL, 0,
                       "query parameter '%s' given twice", q_names[i]);
      return false;
    }
    const char *v = eq != NULL ? eq + 1 : stop;
    size_t n;
    if (!pct_decode(v, (size_t)(stop - v), true, q->buf + used, &n)) {
      api_respond_code(api, req->id, SYNOD_EINVAL, 0,
                       "query parameter '%s': bad percent escape in '%.*s'",
                       q_names[i], (int)((stop - v) < 64 ? (stop - v) : 64), v);
      return false;
    }
    q->seen |= 1u << i;
    q->val[i] = q->buf + used;
    q->len[i] = n;
    used += n;
    p = stop + 1;
  }
  return true;
}

/* A flag: absent, "", "1" or "true" (true), "0" or "false". Returns
 * false after answering 400. */
static bool kq_flag(struct http_api *api, uint64_t id, const struct kq *q,
                    int i, bool *out) {
  const char *v = (const char *)q->val[i];
  size_t n = q->len[i];
  *out = false;
  if (!kq_has(q, i)) {
    return true;
  }
  if (n == 0 || (n == 1 && v[0] == '1') || (n == 4 && !memcmp(v, "true", 4))) {
    *out = true;
    return true;
  }
  if ((n == 1 && v[0] == '0') || (n == 5 && !memcmp(v, "false", 5))) {
    return true;
  }
  api_respond_code(api, id, SYNOD_EINVAL, 0,
                   "%s='%.*s': give true or false (or nothing)", q_names[i],
                   (int)(n < 32 ? n : 32), v);
  return false;
}

static bool parse_u64(const char *s, size_t len, uint64_t *out) {
  uint64_t v = 0;
  if (len == 0 || len > 20) {
    return false;
  }
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - 9) / 10) {
      return false;
    }
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  *out = v;
  return true;
}

/* A decimal u64 parameter. Returns false after answering 400. */
static bool kq_u64(struct http_api *api, uint64_t id, const struct kq *q, int i,
                   uint64_t *out) {
  if (!parse_u64((const char *)q->val[i], q->len[i], out)) {
    api_respond_code(api, id, SYNOD_EINVAL, 0, "%s='%.*s' is not a number",
                     q_names[i], (int)(q->len[i] < 32 ? q->len[i] : 32),
                     (const char *)q->val[i]);
    return false;
  }
  return true;
}

/* ---------------------------------------------------------- key JSON */

void api_json_set_bytes(json_t *j, const char *field,
                        const char *encoding_field, const uint8_t *p,
                        size_t len) {
  json_t *s = json_stringn(len ? (const char *)p : "", len);
  if (s != NULL) {
    json_object_set_new(j, field, s);
    return;
  }
  char *b = b64_encode(p, len);
  json_object_set_new(j, field, b ? json_string(b) : json_null());
  json_object_set_new(j, encoding_field, json_string("base64"));
  free(b);
}

/* {"key", "value" (and "encoding"), "create_revision", "mod_revision",
 * "version", "session"}; NULL kv: null. */
json_t *key_kv_json(const Synod__KeyValue *kv, bool with_value) {
  if (kv == NULL) {
    return json_null();
  }
  json_t *j = json_object();
  api_json_set_bytes(j, "key", "key_encoding", kv->key.data, kv->key.len);
  if (with_value) {
    api_json_set_bytes(j, "value", "encoding", kv->value.data, kv->value.len);
  }
  json_object_set_new(j, "create_revision",
                      json_integer((json_int_t)kv->create_revision));
  json_object_set_new(j, "mod_revision",
                      json_integer((json_int_t)kv->mod_revision));
  json_object_set_new(j, "version", json_integer((json_int_t)kv->version));
  json_object_set_new(j, "session", json_integer((json_int_t)kv->session_id));
  return j;
}

/* ------------------------------------------------------------- calls */

struct key_call *key_call_new(struct http_api *api, uint64_t id,
                              enum call_kind kind, const uint8_t *key,
                              size_t key_len) {
  struct key_call *c = calloc(1, sizeof *c);
  if (c == NULL) {
    api_respond_code(api, id, SYNOD_ENOMEM, 0, "out of memory");
    return NULL;
  }
  c->api = api;
  c->request_id = id;
  c->kind = kind;
  memcpy(c->key, key, key_len); /* checked: at most FSM_KEY_BYTES_MAX */
  api->calls_pending++;
  return c;
}

void key_call_free(struct key_call *c) {
  struct http_api *api = c->api;
  free(c);
  api_call_done(api);
}

/* Answers j with the revision the answer was read or written at. */
void key_respond_rev(struct key_call *c, int status, json_t *j,
                     uint64_t revision, const char *etag) {
  char headers[256];
  snprintf(headers, sizeof headers,
           "Access-Control-Allow-Origin: *\r\n"
           "Synod-Revision: %" PRIu64 "\r\n%s",
           revision, etag != NULL ? etag : "");
  if (j != NULL) {
    json_object_set_new(j, "revision", json_integer((json_int_t)revision));
  }
  api_respond_json_headers(c->api, c->request_id, status, headers, j);
}

/* The Response of a read or write callback: returns it (free it), or
 * NULL after answering the error it carries. */
Synod__Response *key_call_response(struct key_call *c, int err,
                                   const char *errmsg, const uint8_t *resp,
                                   size_t len) {
  Synod__Response *pb =
      api_response_of(c->api, c->request_id, err, errmsg, resp, len);
  if (pb != NULL && pb->body_case == SYNOD__RESPONSE__BODY__NOT_SET) {
    api_respond_code(c->api, c->request_id, SYNOD_EINTERNAL, 0, "%s",
                     "an answer without a body");
    synod__response__free_unpacked(pb, NULL);
    return NULL;
  }
  return pb;
}

/* 412: the compares did not hold; says how the key is now when `known`
 * (a put's answer carries it, a delete's does not). */
static void respond_compare_failed(struct key_call *c, const char *what,
                                   bool known, const Synod__KeyValue *now,
                                   uint64_t revision) {
  json_t *j;
  int shown = (int)(strlen(c->key) < 128 ? strlen(c->key) : 128);
  if (!known) {
    j = api_error_json("compare_failed",
                       "%s not done: %s does not hold for key \"%.*s\" at "
                       "revision %" PRIu64,
                       what, c->cmp, shown, c->key, revision);
  } else if (now != NULL) {
    j = api_error_json("compare_failed",
                       "%s not done: %s does not hold; key \"%.*s\" is at "
                       "version %" PRIu64 ", mod_revision %" PRIu64
                       ", session %" PRIu64,
                       what, c->cmp, shown, c->key, now->version,
                       now->mod_revision, now->session_id);
  } else {
    j = api_error_json(
        "compare_failed",
        "%s not done: %s does not hold; key \"%.*s\" does not exist", what,
        c->cmp, shown, c->key);
  }
  if (j != NULL) {
    json_object_set_new(j, "succeeded", json_false());
  }
  if (j != NULL && known) {
    json_object_set_new(j, "kv", key_kv_json(now, false));
  }
  key_respond_rev(c, 412, j, revision, NULL);
}

/* ---------------------------------------------------------------- get */

static void get_answer(struct key_call *c, const Synod__KeyGetReply *r) {
  if (!r->found) {
    key_respond_rev(
        c, 404,
        api_error_json("SYNOD_ENOTFOUND",
                       "key \"%.*s\" not found (revision %" PRIu64 ")",
                       (int)(strlen(c->key) < 128 ? strlen(c->key) : 128),
                       c->key, r->revision),
        r->revision, NULL);
    return;
  }
  char etag[64];
  snprintf(etag, sizeof etag, "ETag: \"%" PRIu64 "\"\r\n", r->kv->mod_revision);
  if (c->raw) {
    char headers[256];
    snprintf(headers, sizeof headers,
             "Access-Control-Allow-Origin: *\r\n"
             "Synod-Revision: %" PRIu64 "\r\n%s",
             r->revision, etag);
    httpd_respond(c->api->httpd, c->request_id, 200, "application/octet-stream",
                  headers, r->kv->value.data, r->kv->value.len);
    return;
  }
  key_respond_rev(c, 200, key_kv_json(r->kv, true), r->revision, etag);
}

static void list_answer(struct key_call *c, const Synod__KeyListReply *r,
                        bool keys_only) {
  json_t *a = json_array();
  for (size_t i = 0; i < r->n_kvs; i++) {
    json_array_append_new(a, key_kv_json(r->kvs[i], !keys_only));
  }
  json_t *j = json_pack("{s:o, s:b, s:I}", "kvs", a, "more", r->more, "count",
                        (json_int_t)r->n_kvs);
  if (j != NULL && r->more && r->n_kvs > 0) {
    const Synod__KeyValue *last = r->kvs[r->n_kvs - 1];
    api_json_set_bytes(j, "next_after", "next_after_encoding", last->key.data,
                       last->key.len);
  }
  key_respond_rev(c, 200, j, r->revision, NULL);
}

static void read_answer(void *arg, int err, const char *errmsg,
                        const uint8_t *resp, size_t len) {
  struct key_call *c = arg;
  Synod__Response *pb = NULL;
  if (!c->api->stopping &&
      (pb = key_call_response(c, err, errmsg, resp, len)) != NULL) {
    if (c->kind == CALL_GET && pb->key_get != NULL &&
        pb->body_case == SYNOD__RESPONSE__BODY_KEY_GET) {
      get_answer(c, pb->key_get);
    } else if (c->kind == CALL_LIST &&
               pb->body_case == SYNOD__RESPONSE__BODY_KEY_LIST) {
      list_answer(c, pb->key_list, c->raw);
    } else {
      api_respond_code(c->api, c->request_id, SYNOD_EINTERNAL, 0,
                       "the answer is not a key %s",
                       c->kind == CALL_GET ? "get" : "list");
    }
    synod__response__free_unpacked(pb, NULL);
  }
  key_call_free(c);
}

/* GET /v1/keys/KEY[?stale][&raw] and GET /v1/keys/PREFIX?prefix
 * [&limit=N][&after=KEY][&keys_only][&stale]. */
static void keys_get(struct http_api *api, const struct httpd_request *req,
                     const uint8_t *key, size_t key_len) {
  struct kq q;
  bool stale, prefix, keys_only, raw;
  uint64_t limit = 0, revision = 0;
  unsigned allowed = 1u << Q_STALE | 1u << Q_PREFIX | 1u << Q_KEYS_ONLY |
                     1u << Q_LIMIT | 1u << Q_AFTER | 1u << Q_RAW |
                     1u << Q_REVISION;
  if (!kq_parse(api, req, allowed, &q) ||
      !kq_flag(api, req->id, &q, Q_STALE, &stale) ||
      !kq_flag(api, req->id, &q, Q_PREFIX, &prefix) ||
      !kq_flag(api, req->id, &q, Q_KEYS_ONLY, &keys_only) ||
      !kq_flag(api, req->id, &q, Q_RAW, &raw) ||
      (kq_has(&q, Q_LIMIT) && !kq_u64(api, req->id, &q, Q_LIMIT, &limit)) ||
      (kq_has(&q, Q_REVISION) &&
       !kq_u64(api, req->id, &q, Q_REVISION, &revision))) {
    kq_free(&q);
    return;
  }
  char msg[SYNOD_ERRMSG_MAX];
  int rv = 0;
  if (!prefix && (kq_has(&q, Q_LIMIT) || kq_has(&q, Q_AFTER) || keys_only ||
                  kq_has(&q, Q_REVISION))) {
    errmsg_set(msg,
               "limit, after, keys_only and revision are for a list (?prefix)");
    rv = SYNOD_EINVAL;
  } else if (prefix && raw) {
    errmsg_set(msg, "raw is for one key, not a list (?prefix)");
    rv = SYNOD_EINVAL;
  } else if (limit > UINT32_MAX) {
    errmsg_set(msg, "limit=%" PRIu64 " is over the server's page bound", limit);
    rv = SYNOD_EINVAL;
  } else if ((rv = fsm_key_check(key, key_len, prefix, msg)) == 0 &&
             kq_has(&q, Q_AFTER) && q.len[Q_AFTER] > 0 &&
             (rv = fsm_key_check(q.val[Q_AFTER], q.len[Q_AFTER], false, msg)) !=
                 0) {
    errmsg_wrap(msg, "after");
  }
  if (rv != 0) {
    api_respond_code(api, req->id, rv, 0, "%s", msg);
    kq_free(&q);
    return;
  }
  struct key_call *c =
      key_call_new(api, req->id, prefix ? CALL_LIST : CALL_GET, key, key_len);
  if (c == NULL) {
    kq_free(&q);
    return;
  }
  c->raw = prefix ? keys_only : raw; /* the list's keys_only rides here */
  Synod__Request r = SYNOD__REQUEST__INIT;
  Synod__KeyGet g = SYNOD__KEY_GET__INIT;
  Synod__KeyList l = SYNOD__KEY_LIST__INIT;
  if (prefix) {
    l.prefix = (ProtobufCBinaryData){key_len, (uint8_t *)key};
    if (kq_has(&q, Q_AFTER)) {
      l.after =
          (ProtobufCBinaryData){q.len[Q_AFTER], (uint8_t *)q.val[Q_AFTER]};
    }
    l.limit = (uint32_t)limit;
    l.revision = revision;
    l.keys_only = keys_only;
    r.body_case = SYNOD__REQUEST__BODY_KEY_LIST;
    r.key_list = &l;
  } else {
    g.key = (ProtobufCBinaryData){key_len, (uint8_t *)key};
    r.body_case = SYNOD__REQUEST__BODY_KEY_GET;
    r.key_get = &g;
  }
  r.stale = stale;
  node_read(api->node, &r, stale, API_READ_TIMEOUT_MS, read_answer, c);
  kq_free(&q);
}

/* ------------------------------------------------------ put and delete */

/* Appends to a compare's description (API_CMP_TEXT_MAX bytes, cut if
 * longer), " and " between items. */
static void cmp_text_add(char *text, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void cmp_text_add(char *text, const char *fmt, ...) {
  size_t t = strlen(text);
  va_list ap;
  if (t > 0 && t + 5 < API_CMP_TEXT_MAX) {
    memcpy(text + t, " and ", 6);
    t += 5;
  }
  va_start(ap, fmt);
  vsnprintf(text + t, API_CMP_TEXT_MAX - t, fmt, ap);
  va_end(ap);
}

/* The compares of the headers If-None-Match: * (version 0, create only),
 * If-Match: * (the key exists) and If-Match: "N" (mod_revision N, the
 * ETag a GET answers), after the *n in cs. Returns false after
 * answering 400. */
static bool header_compares(struct http_api *api,
                            const struct httpd_request *req,
                            Synod__KeyCompare *cs, size_t *n, char *text) {
  size_t len;
  const char *h = httpd_header(req, "If-None-Match", &len);
  if (h != NULL && !(len == 1 && h[0] == '*')) {
    api_respond_code(api, req->id, SYNOD_EINVAL, 0,
                     "If-None-Match: give * (create only), not '%.*s'",
                     (int)(len < 64 ? len : 64), h);
    return false;
  }
  if (h != NULL) {
    synod__key_compare__init(&cs[(*n)++]); /* version == 0 */
    cmp_text_add(text, "If-None-Match: *");
  }
  h = httpd_header(req, "If-Match", &len);
  if (h == NULL) {
    return true;
  }
  uint64_t v = 0;
  bool any = len == 1 && h[0] == '*';
  if (!any && (len < 3 || h[0] != '"' || h[len - 1] != '"' ||
               !parse_u64(h + 1, len - 2, &v))) {
    api_respond_code(api, req->id, SYNOD_EINVAL, 0,
                     "If-Match: give * or a quoted mod_revision (the ETag "
                     "of a GET), not '%.*s'",
                     (int)(len < 64 ? len : 64), h);
    return false;
  }
  Synod__KeyCompare *c = &cs[(*n)++];
  synod__key_compare__init(c);
  c->target = any ? SYNOD__KEY_COMPARE__TARGET__TARGET_VERSION
                  : SYNOD__KEY_COMPARE__TARGET__TARGET_MOD_REVISION;
  c->op = any ? SYNOD__KEY_COMPARE__OP__OP_NOT_EQUAL
              : SYNOD__KEY_COMPARE__OP__OP_EQUAL;
  c->number = v;
  cmp_text_add(text, "If-Match: %.*s", (int)(len < 32 ? len : 32), h);
  return true;
}

/* Compares of a put or delete on its own key, from the query
 * (if_version, if_mod_revision, if_create_revision, if_value) and the
 * headers (header_compares). Fills cs (room for 6) and *n, and text
 * (API_CMP_TEXT_MAX bytes) with their description. Returns false after
 * answering 400. */
static bool compares_of(struct http_api *api, const struct httpd_request *req,
                        const struct kq *q, Synod__KeyCompare *cs, size_t *n,
                        char *text) {
  static const int qs[] = {Q_IF_VERSION, Q_IF_MOD_REVISION,
                           Q_IF_CREATE_REVISION};
  static const Synod__KeyCompare__Target ts[] = {
      SYNOD__KEY_COMPARE__TARGET__TARGET_VERSION,
      SYNOD__KEY_COMPARE__TARGET__TARGET_MOD_REVISION,
      SYNOD__KEY_COMPARE__TARGET__TARGET_CREATE_REVISION};
  text[0] = '\0';
  *n = 0;
  for (size_t i = 0; i < 3; i++) {
    uint64_t v;
    if (!kq_has(q, qs[i])) {
      continue;
    }
    if (!kq_u64(api, req->id, q, qs[i], &v)) {
      return false;
    }
    synod__key_compare__init(&cs[*n]);
    cs[*n].target = ts[i];
    cs[(*n)++].number = v;
    cmp_text_add(text, "%s=%" PRIu64, q_names[qs[i]], v);
  }
  if (kq_has(q, Q_IF_VALUE)) {
    synod__key_compare__init(&cs[*n]);
    cs[*n].target = SYNOD__KEY_COMPARE__TARGET__TARGET_VALUE;
    cs[(*n)++].value = (ProtobufCBinaryData){q->len[Q_IF_VALUE],
                                             (uint8_t *)q->val[Q_IF_VALUE]};
    cmp_text_add(text, "if_value (%zu bytes)", q->len[Q_IF_VALUE]);
  }
  return header_compares(api, req, cs, n, text);
}

static void write_answer(void *arg, int err, const char *errmsg,
                         const uint8_t *resp, size_t len) {
  struct key_call *c = arg;
  Synod__Response *pb = NULL;
  if (c->api->stopping ||
      (pb = key_call_response(c, err, errmsg, resp, len)) == NULL) {
    key_call_free(c);
    return;
  }
  if (c->kind == CALL_PUT && pb->body_case == SYNOD__RESPONSE__BODY_KEY_PUT) {
    const Synod__KeyPutReply *r = pb->key_put;
    if (!r->succeeded) {
      respond_compare_failed(c, "put", true, r->kv, r->revision);
    } else {
      json_t *j = json_pack("{s:b, s:o}", "succeeded", 1, "kv",
                            key_kv_json(r->kv, false));
      if (r->prev != NULL) {
        json_object_set_new(j, "prev", key_kv_json(r->prev, true));
      }
      key_respond_rev(c, 200, j, r->revision, NULL);
    }
  } else if (c->kind == CALL_DELETE &&
             pb->body_case == SYNOD__RESPONSE__BODY_KEY_DELETE) {
    const Synod__KeyDeleteReply *r = pb->key_delete;
    if (!r->succeeded) {
      respond_compare_failed(c, "delete", false, NULL, r->revision);
    } else {
      json_t *j = json_pack("{s:b, s:I}", "succeeded", 1, "deleted",
                            (json_int_t)r->deleted);
      if (r->prev != NULL) {
        json_object_set_new(j, "prev", key_kv_json(r->prev, true));
      }
      key_respond_rev(c, 200, j, r->revision, NULL);
    }
  } else {
    api_respond_code(c->api, c->request_id, SYNOD_EINTERNAL, 0,
                     "the answer is not a key %s",
                     c->kind == CALL_PUT ? "put" : "delete");
  }
  synod__response__free_unpacked(pb, NULL);
  key_call_free(c);
}

/* PUT /v1/keys/KEY: the body is the value.
 * [?session=ID][&if_version=N][&if_mod_revision=N][&if_create_revision=N]
 * [&if_value=V][&prev]. */
static void keys_put(struct http_api *api, const struct httpd_request *req,
                     const uint8_t *key, size_t key_len) {
  struct kq q;
  Synod__KeyCompare cs[6];
  Synod__KeyCompare *csp[6];
  size_t n = 0;
  bool prev;
  uint64_t session = 0;
  char text[API_CMP_TEXT_MAX], msg[SYNOD_ERRMSG_MAX];
  unsigned allowed = 1u << Q_SESSION | 1u << Q_IF_VERSION |
                     1u << Q_IF_MOD_REVISION | 1u << Q_IF_CREATE_REVISION |
                     1u << Q_IF_VALUE | 1u << Q_PREV;
  if (!kq_parse(api, req, allowed, &q) ||
      !kq_flag(api, req->id, &q, Q_PREV, &prev) ||
      (kq_has(&q, Q_SESSION) &&
       !kq_u64(api, req->id, &q, Q_SESSION, &session)) ||
      !compares_of(api, req, &q, cs, &n, text)) {
    kq_free(&q);
    return;
  }
  int rv = fsm_key_check(key, key_len, false, msg);
  if (rv == 0 && kq_has(&q, Q_SESSION) && session == 0) {
    errmsg_set(msg, "session=0: give the id POST /v1/sessions answered");
    rv = SYNOD_EINVAL;
  }
  if (rv != 0) {
    api_respond_code(api, req->id, rv, 0, "%s", msg);
    kq_free(&q);
    return;
  }
  struct key_call *c = key_call_new(api, req->id, CALL_PUT, key, key_len);
  if (c == NULL) {
    kq_free(&q);
    return;
  }
  memcpy(c->cmp, text, sizeof text);
  for (size_t i = 0; i < n; i++) {
    csp[i] = &cs[i];
  }
  Synod__Request r = SYNOD__REQUEST__INIT;
  Synod__KeyPut p = SYNOD__KEY_PUT__INIT;
  p.key = (ProtobufCBinaryData){key_len, (uint8_t *)key};
  p.value = (ProtobufCBinaryData){req->body_len, (uint8_t *)req->body};
  p.session_bound = session != 0;
  p.n_compares = n;
  p.compares = csp;
  p.prev_kv = prev;
  /* Sequence 0: in the session, not deduplicated (fsm.h). */
  r.session_id = session;
  r.body_case = SYNOD__REQUEST__BODY_KEY_PUT;
  r.key_put = &p;
  node_write(api->node, &r, API_KEYS_WRITE_TIMEOUT_MS, write_answer, c);
  kq_free(&q);
}

/* DELETE /v1/keys/KEY[?prefix][&if_...][&prev]. An empty prefix (every
 * key) is refused here: name it in a transaction if that is meant. */
static void keys_delete(struct http_api *api, const struct httpd_request *req,
                        const uint8_t *key, size_t key_len) {
  struct kq q;
  Synod__KeyCompare cs[6];
  Synod__KeyCompare *csp[6];
  size_t n = 0;
  bool prev, prefix;
  char text[API_CMP_TEXT_MAX], msg[SYNOD_ERRMSG_MAX];
  unsigned allowed = 1u << Q_PREFIX | 1u << Q_IF_VERSION |
                     1u << Q_IF_MOD_REVISION | 1u << Q_IF_CREATE_REVISION |
                     1u << Q_IF_VALUE | 1u << Q_PREV;
  if (!kq_parse(api, req, allowed, &q) ||
      !kq_flag(api, req->id, &q, Q_PREV, &prev) ||
      !kq_flag(api, req->id, &q, Q_PREFIX, &prefix) ||
      !compares_of(api, req, &q, cs, &n, text)) {
    kq_free(&q);
    return;
  }
  int rv = fsm_key_check(key, key_len, prefix, msg);
  if (rv == 0 && prefix && key_len == 0) {
    errmsg_set(msg, "a delete of every key (empty prefix) is refused over "
                    "HTTP; name a prefix, or use POST /v1/txn");
    rv = SYNOD_EINVAL;
  } else if (rv == 0 && prefix && n > 0) {
    errmsg_set(msg, "compares are for one key, not a prefix; use POST "
                    "/v1/txn");
    rv = SYNOD_EINVAL;
  } else if (rv == 0 && prefix && prev) {
    errmsg_set(msg, "prev is for one key, not a prefix");
    rv = SYNOD_EINVAL;
  }
  if (rv != 0) {
    api_respond_code(api, req->id, rv, 0, "%s", msg);
    kq_free(&q);
    return;
  }
  struct key_call *c = key_call_new(api, req->id, CALL_DELETE, key, key_len);
  if (c == NULL) {
    kq_free(&q);
    return;
  }
  memcpy(c->cmp, text, sizeof text);
  c->prefix = prefix;
  for (size_t i = 0; i < n; i++) {
    csp[i] = &cs[i];
  }
  Synod__Request r = SYNOD__REQUEST__INIT;
  Synod__KeyDelete d = SYNOD__KEY_DELETE__INIT;
  d.key = (ProtobufCBinaryData){key_len, (uint8_t *)key};
  d.prefix = prefix;
  d.n_compares = n;
  d.compares = csp;
  d.prev_kv = prev;
  r.body_case = SYNOD__REQUEST__BODY_KEY_DELETE;
  r.key_delete = &d;
  node_write(api->node, &r, API_KEYS_WRITE_TIMEOUT_MS, write_answer, c);
  kq_free(&q);
}

/* -------------------------------------------------------------- watch */

/* GET /v1/keys/KEY?watch[&from=REV][&prev] and
 * /v1/keys/PREFIX?prefix&watch[...]: checks the query and the key here,
 * so that a bad one is a 400 before the stream starts; api_watch.c
 * streams. */
static void keys_watch(struct http_api *api, const struct httpd_request *req,
                       const uint8_t *key, size_t key_len) {
  struct kq q;
  bool watch, prefix, prev;
  uint64_t from = 0;
  char msg[SYNOD_ERRMSG_MAX];
  unsigned allowed =
      1u << Q_WATCH | 1u << Q_PREFIX | 1u << Q_FROM | 1u << Q_PREV;
  if (!kq_parse(api, req, allowed, &q) ||
      !kq_flag(api, req->id, &q, Q_WATCH, &watch) ||
      !kq_flag(api, req->id, &q, Q_PREFIX, &prefix) ||
      !kq_flag(api, req->id, &q, Q_PREV, &prev) ||
      (kq_has(&q, Q_FROM) && !kq_u64(api, req->id, &q, Q_FROM, &from))) {
    kq_free(&q);
    return;
  }
  int rv = fsm_key_check(key, key_len, prefix, msg);
  if (rv == 0 && !watch) {
    errmsg_set(msg, "watch=false: leave watch out for a read");
    rv = SYNOD_EINVAL;
  } else if (rv == 0 && kq_has(&q, Q_FROM) && from == 0) {
    errmsg_set(msg, "from=0: revisions start at 1 (leave from out to watch "
                    "from now)");
    rv = SYNOD_EINVAL;
  }
  kq_free(&q);
  if (rv != 0) {
    api_respond_code(api, req->id, rv, 0, "watch: %s", msg);
    return;
  }
  api_key_watch(api, req, key, key_len, prefix, from, prev);
}

/* ----------------------------------------------------------- routing */

/* Whether the query has a parameter called `name` (with or without a
 * value). */
static bool query_names(const struct httpd_request *req, const char *name) {
  size_t n = strlen(name);
  const char *p = req->query, *end = req->query + req->query_len;
  while (p < end) {
    const char *amp = memchr(p, '&', (size_t)(end - p));
    const char *stop = amp != NULL ? amp : end;
    if ((size_t)(stop - p) >= n && memcmp(p, name, n) == 0 &&
        (p + n == stop || p[n] == '=')) {
      return true;
    }
    p = stop + 1;
  }
  return false;
}

void api_keys_request(struct http_api *api, const struct httpd_request *req) {
  const char *raw = "";
  size_t raw_len = 0;
  if (api_path_is(req, "/v1/txn")) {
    if (httpd_method_is(req, "POST")) {
      api_txn_request(api, req);
    } else {
      api_respond_not_allowed(api, req, "POST");
    }
    return;
  }
  if (!api_path_is(req, "/v1/keys")) {
    api_prefix(req, "/v1/keys/", &raw, &raw_len);
  }
  uint8_t *key = malloc(raw_len + 1);
  size_t key_len = 0;
  if (key == NULL) {
    api_respond_code(api, req->id, SYNOD_ENOMEM, 0, "out of memory");
    return;
  }
  if (!pct_decode(raw, raw_len, false, key, &key_len)) {
    api_respond_code(api, req->id, SYNOD_EINVAL, 0,
                     "key '%.*s': a '%%' must be followed by two hex digits",
                     (int)(raw_len < 128 ? raw_len : 128), raw);
  } else if (key_len > FSM_KEY_BYTES_MAX) {
    api_respond_code(api, req->id, SYNOD_EINVAL, 0, "key of %zu bytes, over %d",
                     key_len, FSM_KEY_BYTES_MAX);
  } else if (httpd_method_is(req, "GET") && query_names(req, "watch")) {
    keys_watch(api, req, key, key_len);
  } else if (httpd_method_is(req, "GET")) {
    keys_get(api, req, key, key_len);
  } else if (httpd_method_is(req, "PUT")) {
    keys_put(api, req, key, key_len);
  } else if (httpd_method_is(req, "DELETE")) {
    keys_delete(api, req, key, key_len);
  } else {
    api_respond_not_allowed(api, req, "GET, HEAD, PUT, DELETE");
  }
  free(key);
}
