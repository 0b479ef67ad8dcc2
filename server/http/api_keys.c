/* Keys over HTTP (README.md "HTTP keys and sessions"): GET, PUT and
 * DELETE /v1/keys/KEY, ?prefix lists and deletes, compare-and-put and
 * compare-and-delete from the query or the If-Match / If-None-Match
 * headers, and POST /v1/txn with a JSON transaction. Reads go through
 * node_read (linearizable unless ?stale) and writes through node_write
 * (a follower forwards them to the leader), so any replica serves every
 * route. The key is everything after /v1/keys/, percent-decoded exactly:
 * a '%' not followed by two hex digits is 400, and so is a query
 * parameter this route does not know (a mistyped ?if_verison must not
 * turn a compare-and-put into a plain put). Nothing is proposed for a
 * request refused here; what the state machine refuses changes nothing. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "err.h"
#include "fsm.h"
#include "log.h"
#include "synod.h"

#define API_WRITE_TIMEOUT_MS 5000
#define API_READ_TIMEOUT_MS 3000
/* What a compare's description in a 412 message holds, at most. */
#define API_CMP_TEXT_MAX 160
/* Operations a JSON transaction may carry in all, checked before the
 * state machine's own bound (64 per branch by default) so that a huge
 * body is refused before it is built. */
#define API_TXN_ITEMS_MAX 1024

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
static bool b64_decode(const char *s, size_t len, uint8_t *out,
                       size_t *out_len) {
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
                                         "raw"};

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

/* Sets `field` of j to the bytes: a string when they are UTF-8, else
 * base64 with `encoding_field` = "base64". */
static void json_set_bytes(json_t *j, const char *field,
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
static json_t *kv_json(const Synod__KeyValue *kv, bool with_value) {
  if (kv == NULL) {
    return json_null();
  }
  json_t *j = json_object();
  json_set_bytes(j, "key", "key_encoding", kv->key.data, kv->key.len);
  if (with_value) {
    json_set_bytes(j, "value", "encoding", kv->value.data, kv->value.len);
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

enum call_kind { CALL_GET, CALL_LIST, CALL_PUT, CALL_DELETE, CALL_TXN };

/* A key request in flight. */
struct key_call {
  struct http_api *api;
  uint64_t request_id;
  enum call_kind kind;
  bool raw;                        /* GET ?raw: the value's bytes alone */
  bool prefix;                     /* a list or a prefix delete */
  char cmp[API_CMP_TEXT_MAX];      /* the compares, for a 412 message */
  char key[FSM_KEY_BYTES_MAX + 1]; /* for messages; NUL-terminated */
};

static struct key_call *call_new(struct http_api *api, uint64_t id,
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

static void call_free(struct key_call *c) {
  struct http_api *api = c->api;
  free(c);
  api_call_done(api);
}

/* Answers j with the revision the answer was read or written at. */
static void respond_rev(struct key_call *c, int status, json_t *j,
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
static Synod__Response *call_response(struct key_call *c, int err,
                                      const char *errmsg, const uint8_t *resp,
                                      size_t len) {
  Synod__Response *pb = NULL;
  if (err == 0 && (pb = synod__response__unpack(NULL, len, resp)) == NULL) {
    err = SYNOD_EMALFORMED;
    errmsg = "the state machine's answer does not decode";
  }
  if (err == 0 && pb->error != NULL) {
    err = (int)pb->error->code;
    errmsg = pb->error->message;
  }
  if (err == 0 && pb->body_case == SYNOD__RESPONSE__BODY__NOT_SET) {
    err = SYNOD_EINTERNAL;
    errmsg = "an answer without a body";
  }
  if (err != 0) {
    api_respond_code(c->api, c->request_id, err, 0, "%s",
                     errmsg != NULL ? errmsg : synod_strerror(err));
    if (pb != NULL) {
      synod__response__free_unpacked(pb, NULL);
    }
    return NULL;
  }
  return pb;
}

/* 412: the compares did not hold; says how the key is now when `known`
 * (a put's answer carries it, a delete's does not). */
static void respond_compare_failed(struct key_call *c, const char *what,
                                   bool known, const Synod__KeyValue *now,
                                   uint64_t revision) {
  char msg[512];
  int shown = (int)(strlen(c->key) < 128 ? strlen(c->key) : 128);
  if (!known) {
    snprintf(msg, sizeof msg,
             "%s not done: %s does not hold for key \"%.*s\" at revision "
             "%" PRIu64,
             what, c->cmp, shown, c->key, revision);
  } else if (now != NULL) {
    snprintf(msg, sizeof msg,
             "%s not done: %s does not hold; key \"%.*s\" is at version "
             "%" PRIu64 ", mod_revision %" PRIu64 ", session %" PRIu64,
             what, c->cmp, shown, c->key, now->version, now->mod_revision,
             now->session_id);
  } else {
    snprintf(msg, sizeof msg,
             "%s not done: %s does not hold; key \"%.*s\" does not exist", what,
             c->cmp, shown, c->key);
  }
  json_t *j = json_pack("{s:s, s:s, s:b}", "error", "compare_failed", "message",
                        msg, "succeeded", 0);
  if (j != NULL && known) {
    json_object_set_new(j, "kv", kv_json(now, false));
  }
  respond_rev(c, 412, j, revision, NULL);
}

/* ---------------------------------------------------------------- get */

static void get_answer(struct key_call *c, const Synod__KeyGetReply *r) {
  if (!r->found) {
    char msg[256];
    snprintf(msg, sizeof msg, "key \"%.*s\" not found (revision %" PRIu64 ")",
             (int)(strlen(c->key) < 128 ? strlen(c->key) : 128), c->key,
             r->revision);
    respond_rev(
        c, 404,
        json_pack("{s:s, s:s}", "error", "SYNOD_ENOTFOUND", "message", msg),
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
  respond_rev(c, 200, kv_json(r->kv, true), r->revision, etag);
}

static void list_answer(struct key_call *c, const Synod__KeyListReply *r,
                        bool keys_only) {
  json_t *a = json_array();
  for (size_t i = 0; i < r->n_kvs; i++) {
    json_array_append_new(a, kv_json(r->kvs[i], !keys_only));
  }
  json_t *j = json_pack("{s:o, s:b, s:I}", "kvs", a, "more", r->more, "count",
                        (json_int_t)r->n_kvs);
  if (j != NULL && r->more && r->n_kvs > 0) {
    const Synod__KeyValue *last = r->kvs[r->n_kvs - 1];
    json_set_bytes(j, "next_after", "next_after_encoding", last->key.data,
                   last->key.len);
  }
  respond_rev(c, 200, j, r->revision, NULL);
}

static void read_answer(void *arg, int err, const char *errmsg,
                        const uint8_t *resp, size_t len) {
  struct key_call *c = arg;
  Synod__Response *pb = NULL;
  if (!c->api->stopping &&
      (pb = call_response(c, err, errmsg, resp, len)) != NULL) {
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
  call_free(c);
}

/* GET /v1/keys/KEY[?stale][&raw] and GET /v1/keys/PREFIX?prefix
 * [&limit=N][&after=KEY][&keys_only][&stale]. */
static void keys_get(struct http_api *api, const struct httpd_request *req,
                     const uint8_t *key, size_t key_len) {
  struct kq q;
  bool stale, prefix, keys_only, raw;
  uint64_t limit = 0;
  unsigned allowed = 1u << Q_STALE | 1u << Q_PREFIX | 1u << Q_KEYS_ONLY |
                     1u << Q_LIMIT | 1u << Q_AFTER | 1u << Q_RAW;
  if (!kq_parse(api, req, allowed, &q) ||
      !kq_flag(api, req->id, &q, Q_STALE, &stale) ||
      !kq_flag(api, req->id, &q, Q_PREFIX, &prefix) ||
      !kq_flag(api, req->id, &q, Q_KEYS_ONLY, &keys_only) ||
      !kq_flag(api, req->id, &q, Q_RAW, &raw) ||
      (kq_has(&q, Q_LIMIT) && !kq_u64(api, req->id, &q, Q_LIMIT, &limit))) {
    kq_free(&q);
    return;
  }
  char msg[SYNOD_ERRMSG_MAX];
  int rv = 0;
  if (!prefix && (kq_has(&q, Q_LIMIT) || kq_has(&q, Q_AFTER) || keys_only)) {
    errmsg_set(msg, "limit, after and keys_only are for a list (?prefix)");
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
      call_new(api, req->id, prefix ? CALL_LIST : CALL_GET, key, key_len);
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

/* Compares of a put or delete on its own key, from the query
 * (if_version, if_mod_revision, if_create_revision, if_value) and the
 * headers (If-None-Match: * is version 0, create only; If-Match: * is
 * "exists"; If-Match: "N" is mod_revision N, the ETag a GET answers).
 * Fills cs (room for 6) and *n, and text with their description.
 * Returns false after answering 400. */
static bool compares_of(struct http_api *api, const struct httpd_request *req,
                        const struct kq *q, Synod__KeyCompare *cs, size_t *n,
                        char *text) {
  static const int qs[] = {Q_IF_VERSION, Q_IF_MOD_REVISION,
                           Q_IF_CREATE_REVISION};
  static const Synod__KeyCompare__Target ts[] = {
      SYNOD__KEY_COMPARE__TARGET__TARGET_VERSION,
      SYNOD__KEY_COMPARE__TARGET__TARGET_MOD_REVISION,
      SYNOD__KEY_COMPARE__TARGET__TARGET_CREATE_REVISION};
  size_t k = 0, t = 0;
  text[0] = '\0';
  for (size_t i = 0; i < 3; i++) {
    uint64_t v;
    if (!kq_has(q, qs[i])) {
      continue;
    }
    if (!kq_u64(api, req->id, q, qs[i], &v)) {
      return false;
    }
    synod__key_compare__init(&cs[k]);
    cs[k].target = ts[i];
    cs[k++].number = v;
    t += (size_t)snprintf(text + t, API_CMP_TEXT_MAX - t, "%s%s=%" PRIu64,
                          t ? " and " : "", q_names[qs[i]], v);
  }
  if (kq_has(q, Q_IF_VALUE)) {
    synod__key_compare__init(&cs[k]);
    cs[k].target = SYNOD__KEY_COMPARE__TARGET__TARGET_VALUE;
    cs[k++].value = (ProtobufCBinaryData){q->len[Q_IF_VALUE],
                                          (uint8_t *)q->val[Q_IF_VALUE]};
    t += (size_t)snprintf(
        text + t, t < API_CMP_TEXT_MAX ? API_CMP_TEXT_MAX - t : 0,
        "%sif_value (%zu bytes)", t ? " and " : "", q->len[Q_IF_VALUE]);
  }
  size_t len;
  const char *h = httpd_header(req, "If-None-Match", &len);
  if (h != NULL && !(len == 1 && h[0] == '*')) {
    api_respond_code(api, req->id, SYNOD_EINVAL, 0,
                     "If-None-Match: give * (create only), not '%.*s'",
                     (int)(len < 64 ? len : 64), h);
    return false;
  }
  if (h != NULL) {
    synod__key_compare__init(&cs[k++]); /* version == 0 */
    t += (size_t)snprintf(text + t,
                          t < API_CMP_TEXT_MAX ? API_CMP_TEXT_MAX - t : 0,
                          "%sIf-None-Match: *", t ? " and " : "");
  }
  h = httpd_header(req, "If-Match", &len);
  if (h != NULL) {
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
    synod__key_compare__init(&cs[k]);
    cs[k].target = any ? SYNOD__KEY_COMPARE__TARGET__TARGET_VERSION
                       : SYNOD__KEY_COMPARE__TARGET__TARGET_MOD_REVISION;
    cs[k].op = any ? SYNOD__KEY_COMPARE__OP__OP_NOT_EQUAL
                   : SYNOD__KEY_COMPARE__OP__OP_EQUAL;
    cs[k++].number = v;
    snprintf(text + t, t < API_CMP_TEXT_MAX ? API_CMP_TEXT_MAX - t : 0,
             "%sIf-Match: %.*s", t ? " and " : "", (int)(len < 32 ? len : 32),
             h);
  }
  *n = k;
  return true;
}

static void write_answer(void *arg, int err, const char *errmsg,
                         const uint8_t *resp, size_t len) {
  struct key_call *c = arg;
  Synod__Response *pb = NULL;
  if (c->api->stopping ||
      (pb = call_response(c, err, errmsg, resp, len)) == NULL) {
    call_free(c);
    return;
  }
  if (c->kind == CALL_PUT && pb->body_case == SYNOD__RESPONSE__BODY_KEY_PUT) {
    const Synod__KeyPutReply *r = pb->key_put;
    if (!r->succeeded) {
      respond_compare_failed(c, "put", true, r->kv, r->revision);
    } else {
      json_t *j =
          json_pack("{s:b, s:o}", "succeeded", 1, "kv", kv_json(r->kv, false));
      if (r->prev != NULL) {
        json_object_set_new(j, "prev", kv_json(r->prev, true));
      }
      respond_rev(c, 200, j, r->revision, NULL);
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
        json_object_set_new(j, "prev", kv_json(r->prev, true));
      }
      respond_rev(c, 200, j, r->revision, NULL);
    }
  } else {
    api_respond_code(c->api, c->request_id, SYNOD_EINTERNAL, 0,
                     "the answer is not a key %s",
                     c->kind == CALL_PUT ? "put" : "delete");
  }
  synod__response__free_unpacked(pb, NULL);
  call_free(c);
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
  struct key_call *c = call_new(api, req->id, CALL_PUT, key, key_len);
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
  node_write(api->node, &r, API_WRITE_TIMEOUT_MS, write_answer, c);
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
  struct key_call *c = call_new(api, req->id, CALL_DELETE, key, key_len);
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
  node_write(api->node, &r, API_WRITE_TIMEOUT_MS, write_answer, c);
  kq_free(&q);
}

/* --------------------------------------------------------------- txn */

/* The pieces of a KeyTxn built from JSON, freed together. */
struct txn_build {
  void **allocs;
  size_t n, cap;
  uint64_t session; /* the one every bound put names; 0 none */
  char err[SYNOD_ERRMSG_MAX];
};

static void *tb_alloc(struct txn_build *b, size_t size) {
  if (b->n == b->cap) {
    size_t cap = b->cap ? 2 * b->cap : 64;
    void **a = realloc(b->allocs, cap * sizeof *a);
    if (a == NULL) {
      return NULL;
    }
    b->allocs = a;
    b->cap = cap;
  }
  void *p = calloc(1, size ? size : 1);
  if (p != NULL) {
    b->allocs[b->n++] = p;
  }
  return p;
}

static void tb_free(struct txn_build *b) {
  for (size_t i = 0; i < b->n; i++) {
    free(b->allocs[i]);
  }
  free(b->allocs);
}

/* Only the fields in `allowed` (NULL-terminated). */
static bool tb_fields(struct txn_build *b, json_t *o, const char *where,
                      const char *const *allowed) {
  const char *k;
  json_t *v;
  json_object_foreach(o, k, v) {
    size_t i = 0;
    while (allowed[i] != NULL && strcmp(allowed[i], k) != 0) {
      i++;
    }
    if (allowed[i] == NULL) {
      errmsg_set(b->err, "%s: unknown field \"%.64s\"", where, k);
      return false;
    }
  }
  return true;
}

/* Bytes from "NAME" (a string, as UTF-8) or "NAME_base64". Returns 0
 * (absent), 1 (set) or -1 (bad; b->err says why). */
static int tb_bytes(struct txn_build *b, json_t *o, const char *name,
                    const char *where, ProtobufCBinaryData *out) {
  char b64name[64];
  snprintf(b64name, sizeof b64name, "%s_base64", name);
  json_t *s = json_object_get(o, name), *e = json_object_get(o, b64name);
  if (s != NULL && e != NULL) {
    errmsg_set(b->err, "%s: give \"%s\" or \"%s\", not both", where, name,
               b64name);
    return -1;
  }
  if (s == NULL && e == NULL) {
    return 0;
  }
  json_t *v = s != NULL ? s : e;
  if (!json_is_string(v)) {
    errmsg_set(b->err, "%s: \"%s\" is not a string", where,
               s != NULL ? name : b64name);
    return -1;
  }
  size_t len = json_string_length(v);
  uint8_t *p = tb_alloc(b, len);
  if (p == NULL) {
    errmsg_set(b->err, "out of memory");
    return -1;
  }
  if (s != NULL) {
    memcpy(p, json_string_value(v), len);
    *out = (ProtobufCBinaryData){len, p};
    return 1;
  }
  size_t n;
  if (!b64_decode(json_string_value(v), len, p, &n)) {
    errmsg_set(b->err, "%s: \"%s\" is not base64 (RFC 4648, padded)", where,
               b64name);
    return -1;
  }
  *out = (ProtobufCBinaryData){n, p};
  return 1;
}

/* The key of an op or compare: required, checked. */
static bool tb_key(struct txn_build *b, json_t *o, bool prefix,
                   const char *where, ProtobufCBinaryData *out) {
  char msg[SYNOD_ERRMSG_MAX];
  int rv = tb_bytes(b, o, "key", where, out);
  if (rv == 0) {
    errmsg_set(b->err, "%s: no \"key\"", where);
  }
  if (rv <= 0) {
    return false;
  }
  if (fsm_key_check(out->data, out->len, prefix, msg) != 0) {
    errmsg_set(b->err, "%s: %s", where, msg);
    return false;
  }
  return true;
}

static bool tb_bool(struct txn_build *b, json_t *o, const char *name,
                    const char *where, protobuf_c_boolean *out) {
  json_t *v = json_object_get(o, name);
  if (v != NULL && !json_is_boolean(v)) {
    errmsg_set(b->err, "%s: \"%s\" is not true or false", where, name);
    return false;
  }
  *out = v != NULL && json_is_true(v);
  return true;
}

static bool tb_u64(struct txn_build *b, json_t *v, const char *name,
                   const char *where, uint64_t *out) {
  if (!json_is_integer(v) || json_integer_value(v) < 0) {
    errmsg_set(b->err, "%s: \"%s\" is not a number from 0", where, name);
    return false;
  }
  *out = (uint64_t)json_integer_value(v);
  return true;
}

static const char *const cmp_fields[] = {
    "key",          "key_base64", "op",    "version",      "create_revision",
    "mod_revision", "session",    "value", "value_base64", NULL};

/* {"key": K, one of "version" | "create_revision" | "mod_revision" |
 * "session" (numbers) | "value" | "value_base64", "op": "==" (default),
 * "!=", "<", ">"}. */
static Synod__KeyCompare *tb_compare(struct txn_build *b, json_t *o,
                                     const char *where) {
  static const char *const targets[] = {"version", "create_revision",
                                        "mod_revision", NULL, "session"};
  Synod__KeyCompare *c = tb_alloc(b, sizeof *c);
  if (c == NULL || !json_is_object(o) || !tb_fields(b, o, where, cmp_fields)) {
    if (c == NULL || !json_is_object(o)) {
      errmsg_set(b->err, "%s: not an object", where);
    }
    return NULL;
  }
  synod__key_compare__init(c);
  if (!tb_key(b, o, false, where, &c->key)) {
    return NULL;
  }
  int found = 0;
  for (int t = 0; t < 5; t++) {
    json_t *v = targets[t] != NULL ? json_object_get(o, targets[t]) : NULL;
    if (v != NULL) {
      found++;
      c->target = (Synod__KeyCompare__Target)t;
      if (!tb_u64(b, v, targets[t], where, &c->number)) {
        return NULL;
      }
    }
  }
  int rv = tb_bytes(b, o, "value", where, &c->value);
  if (rv < 0) {
    return NULL;
  }
  if (rv > 0) {
    found++;
    c->target = SYNOD__KEY_COMPARE__TARGET__TARGET_VALUE;
  }
  if (found != 1) {
    errmsg_set(b->err,
               "%s: give exactly one of version, create_revision, "
               "mod_revision, session, value, value_base64 (%d given)",
               where, found);
    return NULL;
  }
  json_t *op = json_object_get(o, "op");
  static const char *const ops[] = {"==", "!=", "<", ">"};
  if (op != NULL) {
    int i = 0;
    while (i < 4 && !(json_is_string(op) &&
                      strcmp(json_string_value(op), ops[i]) == 0)) {
      i++;
    }
    if (i == 4) {
      errmsg_set(b->err, "%s: \"op\" is not one of \"==\" \"!=\" \"<\" \">\"",
                 where);
      return NULL;
    }
    c->op = (Synod__KeyCompare__Op)i;
  }
  return c;
}

static const char *const op_fields[] = {"op",      "key",          "key_base64",
                                        "value",   "value_base64", "prefix",
                                        "session", "prev",         NULL};

/* {"op": "put", "key", "value" | "value_base64", "session": ID, "prev"}
 * | {"op": "get", "key"} | {"op": "delete", "key", "prefix", "prev"}. */
static Synod__KeyOp *tb_op(struct txn_build *b, json_t *o, const char *where) {
  Synod__KeyOp *op = tb_alloc(b, sizeof *op);
  if (op == NULL || !json_is_object(o)) {
    errmsg_set(b->err, "%s: not an object", where);
    return NULL;
  }
  if (!tb_fields(b, o, where, op_fields)) {
    return NULL;
  }
  synod__key_op__init(op);
  const char *kind = json_string_value(json_object_get(o, "op"));
  json_t *session = json_object_get(o, "session");
  bool put = kind != NULL && strcmp(kind, "put") == 0;
  bool del = kind != NULL && strcmp(kind, "delete") == 0;
  bool get = kind != NULL && strcmp(kind, "get") == 0;
  protobuf_c_boolean prefix = false, prev = false;
  if (!put && !del && !get) {
    errmsg_set(b->err, "%s: \"op\" is not \"put\", \"get\" or \"delete\"",
               where);
    return NULL;
  }
  if (!tb_bool(b, o, "prefix", where, &prefix) ||
      !tb_bool(b, o, "prev", where, &prev)) {
    return NULL;
  }
  if ((!put && session != NULL) || (!del && prefix) || (get && prev)) {
    errmsg_set(b->err,
               "%s: \"session\" is for a put, \"prefix\" for a delete, "
               "\"prev\" for a put or a delete",
               where);
    return NULL;
  }
  if (!put &&
      (json_object_get(o, "value") || json_object_get(o, "value_base64"))) {
    errmsg_set(b->err, "%s: a value is for a put", where);
    return NULL;
  }
  if (put) {
    Synod__KeyPut *p = tb_alloc(b, sizeof *p);
    if (p == NULL) {
      errmsg_set(b->err, "out of memory");
      return NULL;
    }
    synod__key_put__init(p);
    uint64_t sid = 0;
    if (!tb_key(b, o, false, where, &p->key) ||
        tb_bytes(b, o, "value", where, &p->value) < 0 ||
        (session != NULL && !tb_u64(b, session, "session", where, &sid))) {
      return NULL;
    }
    if (session != NULL &&
        (sid == 0 || (b->session != 0 && sid != b->session))) {
      errmsg_set(b->err,
                 "%s: session %" PRIu64 ": a transaction binds keys to one "
                 "session (not 0)%s",
                 where, sid,
                 b->session ? ", and another op named another" : "");
      return NULL;
    }
    if (sid != 0) {
      b->session = sid;
    }
    p->session_bound = sid != 0;
    p->prev_kv = prev;
    op->op_case = SYNOD__KEY_OP__OP_PUT;
    op->put = p;
  } else if (del) {
    Synod__KeyDelete *d = tb_alloc(b, sizeof *d);
    if (d == NULL) {
      errmsg_set(b->err, "out of memory");
      return NULL;
    }
    synod__key_delete__init(d);
    if (!tb_key(b, o, prefix, where, &d->key)) {
      return NULL;
    }
    d->prefix = prefix;
    d->prev_kv = prev;
    op->op_case = SYNOD__KEY_OP__OP_DEL;
    op->del = d;
  } else {
    Synod__KeyGet *g = tb_alloc(b, sizeof *g);
    if (g == NULL) {
      errmsg_set(b->err, "out of memory");
      return NULL;
    }
    synod__key_get__init(g);
    if (!tb_key(b, o, false, where, &g->key)) {
      return NULL;
    }
    op->op_case = SYNOD__KEY_OP__OP_GET;
    op->get = g;
  }
  return op;
}

/* An array field of the transaction into a protobuf-c array. */
static bool tb_array(struct txn_build *b, json_t *root, const char *name,
                     bool compares, void ***out, size_t *n) {
  json_t *a = json_object_get(root, name);
  *out = NULL;
  *n = 0;
  if (a == NULL) {
    return true;
  }
  if (!json_is_array(a) || json_array_size(a) > API_TXN_ITEMS_MAX) {
    errmsg_set(b->err, "\"%s\" is not an array of at most %d items", name,
               API_TXN_ITEMS_MAX);
    return false;
  }
  void **v = tb_alloc(b, json_array_size(a) * sizeof *v);
  if (v == NULL) {
    errmsg_set(b->err, "out of memory");
    return false;
  }
  for (size_t i = 0; i < json_array_size(a); i++) {
    char where[64];
    snprintf(where, sizeof where, "%s[%zu]", name, i);
    v[i] = compares ? (void *)tb_compare(b, json_array_get(a, i), where)
                    : (void *)tb_op(b, json_array_get(a, i), where);
    if (v[i] == NULL) {
      return false;
    }
  }
  *out = v;
  *n = json_array_size(a);
  return true;
}

static json_t *txn_result_json(const Synod__KeyOpResult *r) {
  switch (r->result_case) {
  case SYNOD__KEY_OP_RESULT__RESULT_PUT: {
    json_t *j =
        json_pack("{s:s, s:o}", "op", "put", "kv", kv_json(r->put->kv, false));
    if (r->put->prev != NULL) {
      json_object_set_new(j, "prev", kv_json(r->put->prev, true));
    }
    return j;
  }
  case SYNOD__KEY_OP_RESULT__RESULT_GET:
    return json_pack("{s:s, s:b, s:o}", "op", "get", "found", r->get->found,
                     "kv", kv_json(r->get->found ? r->get->kv : NULL, true));
  case SYNOD__KEY_OP_RESULT__RESULT_DEL: {
    json_t *j = json_pack("{s:s, s:I}", "op", "delete", "deleted",
                          (json_int_t)r->del->deleted);
    if (r->del->prev != NULL) {
      json_object_set_new(j, "prev", kv_json(r->del->prev, true));
    }
    return j;
  }
  default:
    return json_null();
  }
}

static void txn_answer(void *arg, int err, const char *errmsg,
                       const uint8_t *resp, size_t len) {
  struct key_call *c = arg;
  Synod__Response *pb = NULL;
  if (c->api->stopping ||
      (pb = call_response(c, err, errmsg, resp, len)) == NULL) {
    call_free(c);
    return;
  }
  if (pb->body_case != SYNOD__RESPONSE__BODY_KEY_TXN) {
    api_respond_code(c->api, c->request_id, SYNOD_EINTERNAL, 0,
                     "the answer is not a key txn");
  } else {
    const Synod__KeyTxnReply *r = pb->key_txn;
    json_t *a = json_array();
    for (size_t i = 0; i < r->n_results; i++) {
      json_array_append_new(a, txn_result_json(r->results[i]));
    }
    respond_rev(
        c, 200,
        json_pack("{s:b, s:o}", "succeeded", r->succeeded, "results", a),
        r->revision, NULL);
  }
  synod__response__free_unpacked(pb, NULL);
  call_free(c);
}

static const char *const txn_fields[] = {"compares", "success", "failure",
                                         NULL};

/* POST /v1/txn: {"compares": [...], "success": [...], "failure": [...]}
 * (README.md). 200 whichever branch ran ("succeeded" says which). */
static void keys_txn(struct http_api *api, const struct httpd_request *req) {
  struct kq q;
  json_error_t jerr;
  struct txn_build b = {0};
  Synod__KeyTxn t = SYNOD__KEY_TXN__INIT;
  if (!kq_parse(api, req, 0, &q)) {
    kq_free(&q);
    return;
  }
  kq_free(&q);
  json_t *root = json_loadb((const char *)req->body, req->body_len,
                            JSON_REJECT_DUPLICATES, &jerr);
  if (root == NULL) {
    api_respond_code(api, req->id, SYNOD_EINVAL, 0,
                     "transaction: not JSON: %s at line %d column %d",
                     jerr.text, jerr.line, jerr.column);
    return;
  }
  bool ok = json_is_object(root);
  if (!ok) {
    errmsg_set(b.err, "transaction: give an object");
  }
  ok = ok && tb_fields(&b, root, "transaction", txn_fields) &&
       tb_array(&b, root, "compares", true, (void ***)&t.compares,
                &t.n_compares) &&
       tb_array(&b, root, "success", false, (void ***)&t.success,
                &t.n_success) &&
       tb_array(&b, root, "failure", false, (void ***)&t.failure, &t.n_failure);
  json_decref(root);
  struct key_call *c = NULL;
  if (!ok) {
    api_respond_code(api, req->id, SYNOD_EINVAL, 0, "%s", b.err);
  } else if ((c = call_new(api, req->id, CALL_TXN, (const uint8_t *)"", 0)) !=
             NULL) {
    Synod__Request r = SYNOD__REQUEST__INIT;
    r.session_id = b.session; /* sequence 0: see keys_put */
    r.body_case = SYNOD__REQUEST__BODY_KEY_TXN;
    r.key_txn = &t;
    node_write(api->node, &r, API_WRITE_TIMEOUT_MS, txn_answer, c);
  }
  tb_free(&b);
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

static void not_allowed(struct http_api *api, const struct httpd_request *req,
                        const char *allow) {
  char headers[96];
  snprintf(headers, sizeof headers,
           "Access-Control-Allow-Origin: *\r\nAllow: %s\r\n", allow);
  char msg[128];
  snprintf(msg, sizeof msg, "%.*s is not allowed here: %s",
           (int)(req->method_len < 16 ? req->method_len : 16), req->method,
           allow);
  api_respond_json_headers(
      api, req->id, 405, headers,
      json_pack("{s:s, s:s}", "error", "SYNOD_EINVAL", "message", msg));
}

void api_keys_request(struct http_api *api, const struct httpd_request *req) {
  const char *raw = "";
  size_t raw_len = 0;
  if (api_path_is(req, "/v1/txn")) {
    if (httpd_method_is(req, "POST")) {
      keys_txn(api, req);
    } else {
      not_allowed(api, req, "POST");
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
    /* Watches (?watch&from=REV as Server-Sent Events) hook in here. */
    api_respond_json_headers(
        api, req->id, 501, "Access-Control-Allow-Origin: *\r\n",
        json_pack("{s:s, s:s}", "error", "SYNOD_EINVAL", "message",
                  "?watch: watches over HTTP are not served by this "
                  "version"));
  } else if (httpd_method_is(req, "GET")) {
    keys_get(api, req, key, key_len);
  } else if (httpd_method_is(req, "PUT")) {
    keys_put(api, req, key, key_len);
  } else if (httpd_method_is(req, "DELETE")) {
    keys_delete(api, req, key, key_len);
  } else {
    not_allowed(api, req, "GET, HEAD, PUT, DELETE");
  }
  free(key);
}
