/* Transactions over HTTP (README.md "HTTP keys and sessions"): POST
 * /v1/txn with {"compares": [...], "success": [...], "failure": [...]},
 * built into one KeyTxn and written through node_write, so any replica
 * takes it. Every field is checked here, an unknown one refused (a
 * misspelt compare must not make a write unconditional); the state
 * machine checks the rest (bounds, a key written twice) and changes
 * nothing when it refuses. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_keys_int.h"
#include "err.h"
#include "synod.h"

/* Items a JSON transaction may carry per array, checked before the state
 * machine's own bound (64 per branch by default) so that a huge body is
 * refused before it is built. */
#define API_TXN_ITEMS_MAX 1024
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
  if (!key_b64_decode(json_string_value(v), len, p, &n)) {
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

static Synod__KeyOp *tb_put(struct txn_build *b, json_t *o, const char *where,
                            bool prev, Synod__KeyOp *op) {
  Synod__KeyPut *p = tb_alloc(b, sizeof *p);
  json_t *session = json_object_get(o, "session");
  uint64_t sid = 0;
  if (p == NULL) {
    errmsg_set(b->err, "out of memory");
    return NULL;
  }
  synod__key_put__init(p);
  if (!tb_key(b, o, false, where, &p->key) ||
      tb_bytes(b, o, "value", where, &p->value) < 0 ||
      (session != NULL && !tb_u64(b, session, "session", where, &sid))) {
    return NULL;
  }
  if (session != NULL && (sid == 0 || (b->session != 0 && sid != b->session))) {
    errmsg_set(b->err,
               "%s: session %" PRIu64 ": a transaction binds keys to one "
               "session (not 0)%s",
               where, sid, b->session ? ", and another op named another" : "");
    return NULL;
  }
  if (sid != 0) {
    b->session = sid;
  }
  p->session_bound = sid != 0;
  p->prev_kv = prev;
  op->op_case = SYNOD__KEY_OP__OP_PUT;
  op->put = p;
  return op;
}

static Synod__KeyOp *tb_del(struct txn_build *b, json_t *o, const char *where,
                            bool prefix, bool prev, Synod__KeyOp *op) {
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
  return op;
}

static Synod__KeyOp *tb_get(struct txn_build *b, json_t *o, const char *where,
                            Synod__KeyOp *op) {
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
  return op;
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
  bool put = kind != NULL && strcmp(kind, "put") == 0;
  bool del = kind != NULL && strcmp(kind, "delete") == 0;
  bool get = kind != NULL && strcmp(kind, "get") == 0;
  bool value = json_object_get(o, "value") != NULL ||
               json_object_get(o, "value_base64") != NULL;
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
  if ((!put && (json_object_get(o, "session") != NULL || value)) ||
      (!del && prefix) || (get && prev)) {
    errmsg_set(b->err,
               "%s: \"session\" and a value are for a put, "
               "\"prefix\" for a delete, \"prev\" for a put or a "
               "delete",
               where);
    return NULL;
  }
  return put   ? tb_put(b, o, where, prev, op)
         : del ? tb_del(b, o, where, prefix, prev, op)
               : tb_get(b, o, where, op);
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
    json_t *j = json_pack("{s:s, s:o}", "op", "put", "kv",
                          key_kv_json(r->put->kv, false));
    if (r->put->prev != NULL) {
      json_object_set_new(j, "prev", key_kv_json(r->put->prev, true));
    }
    return j;
  }
  case SYNOD__KEY_OP_RESULT__RESULT_GET:
    return json_pack("{s:s, s:b, s:o}", "op", "get", "found", r->get->found,
                     "kv",
                     key_kv_json(r->get->found ? r->get->kv : NULL, true));
  case SYNOD__KEY_OP_RESULT__RESULT_DEL: {
    json_t *j = json_pack("{s:s, s:I}", "op", "delete", "deleted",
                          (json_int_t)r->del->deleted);
    if (r->del->prev != NULL) {
      json_object_set_new(j, "prev", key_kv_json(r->del->prev, true));
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
      (pb = key_call_response(c, err, errmsg, resp, len)) == NULL) {
    key_call_free(c);
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
    key_respond_rev(
        c, 200,
        json_pack("{s:b, s:o}", "succeeded", r->succeeded, "results", a),
        r->revision, NULL);
  }
  synod__response__free_unpacked(pb, NULL);
  key_call_free(c);
}

static const char *const txn_fields[] = {"compares", "success", "failure",
                                         NULL};

/* POST /v1/txn: {"compares": [...], "success": [...], "failure": [...]}
 * (README.md). 200 whichever branch ran ("succeeded" says which). */
void api_txn_request(struct http_api *api, const struct httpd_request *req) {
  json_error_t jerr;
  struct txn_build b = {0};
  Synod__KeyTxn t = SYNOD__KEY_TXN__INIT;
  if (req->query_len > 0) {
    api_respond_code(api, req->id, SYNOD_EINVAL, 0,
                     "POST /v1/txn takes no query parameters ('%.*s')",
                     (int)(req->query_len < 64 ? req->query_len : 64),
                     req->query);
    return;
  }
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
  } else if ((c = key_call_new(api, req->id, CALL_TXN, (const uint8_t *)"",
                               0)) != NULL) {
    Synod__Request r = SYNOD__REQUEST__INIT;
    r.session_id = b.session; /* sequence 0: see keys_put */
    r.body_case = SYNOD__REQUEST__BODY_KEY_TXN;
    r.key_txn = &t;
    node_write(api->node, &r, API_KEYS_WRITE_TIMEOUT_MS, txn_answer, c);
  }
  tb_free(&b);
}
