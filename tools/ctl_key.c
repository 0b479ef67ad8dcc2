/* synodctl key's pure helpers: the transaction JSON that `key txn` reads
 * on stdin, and the JSON shapes `key ... --json` prints. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static int txn_error(char *err, size_t len, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, len, fmt, ap);
  va_end(ap);
  return SYNOD_EINVAL;
}

/* Only the fields in `allowed` (NULL-terminated) may appear in o. */
static int fields_check(json_t *o, const char *where,
                        const char *const *allowed, char *err, size_t len) {
  const char *k;
  json_t *v;
  json_object_foreach(o, k, v) {
    bool ok = false;
    for (size_t i = 0; allowed[i] != NULL && !ok; i++) {
      ok = strcmp(k, allowed[i]) == 0;
    }
    if (!ok) {
      return txn_error(err, len, "%s: unknown field \"%s\"", where, k);
    }
  }
  return 0;
}

/* A string field; required or not. *out borrows from the JSON. */
static int str_get(json_t *o, const char *field, const char *where,
                   bool required, const char **out, size_t *n, char *err,
                   size_t len) {
  json_t *v = json_object_get(o, field);
  *out = NULL;
  if (v == NULL && !required) {
    return 0;
  }
  if (!json_is_string(v)) {
    return txn_error(err, len, "%s: \"%s\" %s", where, field,
                     v == NULL ? "is missing" : "must be a string");
  }
  *out = json_string_value(v);
  if (n != NULL) {
    *n = json_string_length(v);
  } else if (strlen(*out) != json_string_length(v)) {
    return txn_error(err, len, "%s: \"%s\" holds a NUL", where, field);
  }
  return 0;
}

static int bool_get(json_t *o, const char *field, const char *where, bool *out,
                    char *err, size_t len) {
  json_t *v = json_object_get(o, field);
  *out = false;
  if (v == NULL) {
    return 0;
  }
  if (!json_is_boolean(v)) {
    return txn_error(err, len, "%s: \"%s\" must be true or false", where,
                     field);
  }
  *out = json_is_true(v);
  return 0;
}

static int cmp_op_parse(json_t *o, const char *where, enum synod_key_cmp *op,
                        char *err, size_t len) {
  static const struct {
    const char *text;
    enum synod_key_cmp op;
  } ops[] = {{"=", SYNOD_KEY_EQUAL},
             {"==", SYNOD_KEY_EQUAL},
             {"!=", SYNOD_KEY_NOT_EQUAL},
             {"<", SYNOD_KEY_LESS},
             {">", SYNOD_KEY_GREATER}};
  const char *text;
  int rv = str_get(o, "op", where, false, &text, NULL, err, len);
  *op = SYNOD_KEY_EQUAL;
  if (rv != 0 || text == NULL) {
    return rv;
  }
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    if (strcmp(text, ops[i].text) == 0) {
      *op = ops[i].op;
      return 0;
    }
  }
  return txn_error(err, len, "%s: op \"%s\": one of =, !=, <, >", where, text);
}

/* {"key": K, TARGET: N or "value": V, "op": OP}. */
static int compare_parse(json_t *o, const char *where,
                         struct synod_key_compare *c, char *err, size_t len) {
  static const char *const fields[] = {
      "key",          "op",      "version", "create_revision",
      "mod_revision", "session", "value",   NULL};
  static const struct {
    const char *name;
    enum synod_key_target target;
  } targets[] = {{"version", SYNOD_KEY_VERSION},
                 {"create_revision", SYNOD_KEY_CREATE_REVISION},
                 {"mod_revision", SYNOD_KEY_MOD_REVISION},
                 {"session", SYNOD_KEY_SESSION},
                 {"value", SYNOD_KEY_VALUE}};
  int found = 0;
  if (!json_is_object(o)) {
    return txn_error(err, len, "%s: must be an object", where);
  }
  int rv = fields_check(o, where, fields, err, len);
  if (rv == 0) {
    rv = str_get(o, "key", where, true, &c->key, NULL, err, len);
  }
  if (rv == 0) {
    rv = cmp_op_parse(o, where, &c->op, err, len);
  }
  for (size_t i = 0; rv == 0 && i < sizeof targets / sizeof targets[0]; i++) {
    json_t *v = json_object_get(o, targets[i].name);
    if (v == NULL) {
      continue;
    }
    found++;
    c->target = targets[i].target;
    if (targets[i].target == SYNOD_KEY_VALUE) {
      const char *s;
      rv = str_get(o, "value", where, true, &s, &c->value_len, err, len);
      c->value = s;
    } else if (!json_is_integer(v) || json_integer_value(v) < 0) {
      rv = txn_error(err, len, "%s: \"%s\" must be an integer >= 0", where,
                     targets[i].name);
    } else {
      c->number = (uint64_t)json_integer_value(v);
    }
  }
  if (rv == 0 && found != 1) {
    rv = txn_error(err, len,
                   "%s: %s of version, create_revision, mod_revision, "
                   "session, value",
                   where, found == 0 ? "needs one" : "takes only one");
  }
  return rv;
}

/* {"put": K, "value": V, "session_bound": B, "prev": B} | {"get": K} |
 * {"del": K, "prefix": B, "prev": B}. */
static int op_parse(json_t *o, const char *where, struct synod_key_op *op,
                    char *err, size_t len) {
  static const char *const put_fields[] = {"put", "value", "session_bound",
                                           "prev", NULL};
  static const char *const get_fields[] = {"get", NULL};
  static const char *const del_fields[] = {"del", "prefix", "prev", NULL};
  bool a = false, b = false;
  int rv;
  if (!json_is_object(o)) {
    return txn_error(err, len, "%s: must be an object", where);
  }
  if (json_object_get(o, "put") != NULL) {
    op->type = SYNOD_KEY_OP_PUT;
    const char *v = NULL;
    rv = fields_check(o, where, put_fields, err, len);
    rv = rv ? rv : str_get(o, "put", where, true, &op->key, NULL, err, len);
    rv = rv ? rv
            : str_get(o, "value", where, true, &v, &op->value_len, err, len);
    op->value = v;
    rv = rv ? rv : bool_get(o, "session_bound", where, &a, err, len);
    rv = rv ? rv : bool_get(o, "prev", where, &b, err, len);
    op->flags = (a ? SYNOD_KEY_SESSION_BOUND : 0) | (b ? SYNOD_KEY_PREV : 0);
  } else if (json_object_get(o, "get") != NULL) {
    op->type = SYNOD_KEY_OP_GET;
    rv = fields_check(o, where, get_fields, err, len);
    rv = rv ? rv : str_get(o, "get", where, true, &op->key, NULL, err, len);
  } else if (json_object_get(o, "del") != NULL) {
    op->type = SYNOD_KEY_OP_DELETE;
    rv = fields_check(o, where, del_fields, err, len);
    rv = rv ? rv : str_get(o, "del", where, true, &op->key, NULL, err, len);
    rv = rv ? rv : bool_get(o, "prefix", where, &a, err, len);
    rv = rv ? rv : bool_get(o, "prev", where, &b, err, len);
    op->flags = (a ? SYNOD_KEY_PREFIX : 0) | (b ? SYNOD_KEY_PREV : 0);
  } else {
    rv = txn_error(err, len, "%s: needs \"put\", \"get\" or \"del\"", where);
  }
  return rv;
}

/* Parses the array `name` of root into n elements of size `size` at
 * *out, each by `one` (a compare or an op). */
static int
array_parse(json_t *root, const char *name, size_t size, void **out, size_t *n,
            int (*one)(json_t *, const char *, void *, char *, size_t),
            char *err, size_t len) {
  json_t *a = json_object_get(root, name);
  char where[64];
  *out = NULL;
  *n = 0;
  if (a == NULL) {
    return 0;
  }
  if (!json_is_array(a)) {
    return txn_error(err, len, "\"%s\" must be an array", name);
  }
  if (json_array_size(a) > SYNOD_KEY_TXN_OPS_MAX) {
    return txn_error(err, len, "\"%s\": %zu entries; at most %d", name,
                     json_array_size(a), SYNOD_KEY_TXN_OPS_MAX);
  }
  *out = calloc(json_array_size(a) + 1, size);
  if (*out == NULL) {
    return txn_error(err, len, "out of memory");
  }
  for (size_t i = 0; i < json_array_size(a); i++) {
    snprintf(where, sizeof where, "%s[%zu]", name, i);
    int rv =
        one(json_array_get(a, i), where, (char *)*out + i * size, err, len);
    if (rv != 0) {
      return rv;
    }
    *n = i + 1;
  }
  return 0;
}

static int compare_one(json_t *o, const char *where, void *c, char *err,
                       size_t len) {
  return compare_parse(o, where, c, err, len);
}

static int op_one(json_t *o, const char *where, void *op, char *err,
                  size_t len) {
  return op_parse(o, where, op, err, len);
}

int ctl_txn_parse(const char *text, size_t n, struct ctl_txn *t, char *err,
                  size_t len) {
  static const char *const fields[] = {"compare", "success", "failure", NULL};
  json_error_t je;
  void *cmps = NULL, *succ = NULL, *fail = NULL;
  int rv;
  memset(t, 0, sizeof *t);
  t->root = json_loadb(text, n, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
  if (t->root == NULL) {
    return txn_error(err, len, "line %d column %d: %s", je.line, je.column,
                     je.text);
  }
  if (!json_is_object(t->root)) {
    rv = txn_error(err, len,
                   "a transaction is an object: "
                   "{\"compare\":[...],\"success\":[...],\"failure\":[...]}");
    goto out;
  }
  rv = fields_check(t->root, "the transaction", fields, err, len);
  if (rv == 0) {
    rv = array_parse(t->root, "compare", sizeof *t->txn.compares, &cmps,
                     &t->txn.compares_n, compare_one, err, len);
  }
  t->compares = cmps;
  if (rv == 0) {
    rv = array_parse(t->root, "success", sizeof *t->txn.success, &succ,
                     &t->txn.success_n, op_one, err, len);
  }
  t->success = succ;
  if (rv == 0) {
    rv = array_parse(t->root, "failure", sizeof *t->txn.failure, &fail,
                     &t->txn.failure_n, op_one, err, len);
  }
  t->failure = fail;
  if (rv == 0 && t->txn.success_n == 0 && t->txn.failure_n == 0) {
    rv = txn_error(err, len,
                   "no operations: \"success\" and \"failure\" "
                   "are both empty");
  }
out:
  t->txn.compares = t->compares;
  t->txn.success = t->success;
  t->txn.failure = t->failure;
  if (rv != 0) {
    ctl_txn_free(t);
  }
  return rv;
}

void ctl_txn_free(struct ctl_txn *t) {
  if (t == NULL) {
    return;
  }
  free(t->compares);
  free(t->success);
  free(t->failure);
  json_decref(t->root);
  memset(t, 0, sizeof *t);
}

bool ctl_txn_binds(const struct ctl_txn *t) {
  for (size_t i = 0; i < t->txn.success_n; i++) {
    if (t->success[i].type == SYNOD_KEY_OP_PUT &&
        (t->success[i].flags & SYNOD_KEY_SESSION_BOUND)) {
      return true;
    }
  }
  for (size_t i = 0; i < t->txn.failure_n; i++) {
    if (t->failure[i].type == SYNOD_KEY_OP_PUT &&
        (t->failure[i].flags & SYNOD_KEY_SESSION_BOUND)) {
      return true;
    }
  }
  return false;
}

/* ------------------------------------------------------- JSON out */

/* A string if the bytes are UTF-8, else NULL and a base64 field. */
static int bytes_set(json_t *o, const char *field, const void *p, size_t n) {
  json_t *text = json_stringn(p, n);
  if (text != NULL) {
    return json_object_set_new(o, field, text);
  }
  char name[64], *b64 = malloc(4 * ((n + 2) / 3) + 1);
  if (b64 == NULL) {
    return -1;
  }
  ctl_base64(b64, p, n);
  snprintf(name, sizeof name, "%s_base64", field);
  int rv = json_object_set_new(o, name, json_string(b64));
  free(b64);
  return rv;
}

json_t *ctl_kv_json(const struct synod_kv *kv, bool with_value) {
  json_t *o = json_object();
  if (o == NULL) {
    return NULL;
  }
  bytes_set(o, "key", kv->key, kv->key_len);
  if (with_value) {
    bytes_set(o, "value", kv->value, kv->value_len);
  }
  json_object_set_new(o, "create_revision",
                      json_integer((json_int_t)kv->create_revision));
  json_object_set_new(o, "mod_revision",
                      json_integer((json_int_t)kv->mod_revision));
  json_object_set_new(o, "version", json_integer((json_int_t)kv->version));
  json_object_set_new(o, "session_id",
                      json_integer((json_int_t)kv->session_id));
  return o;
}

json_t *ctl_key_put_json(const char *key,
                         const struct synod_key_put_result *r) {
  json_t *o = json_pack("{s:s, s:b, s:I}", "key", key, "succeeded",
                        r->succeeded, "revision", (json_int_t)r->revision);
  if (o != NULL && r->has_kv) {
    json_object_set_new(o, "kv", ctl_kv_json(&r->kv, false));
  }
  if (o != NULL && r->has_prev) {
    json_object_set_new(o, "prev", ctl_kv_json(&r->prev, true));
  }
  return o;
}

json_t *ctl_key_get_json(const char *key,
                         const struct synod_key_get_result *r) {
  json_t *o = json_pack("{s:s, s:b, s:I}", "key", key, "found", r->found,
                        "revision", (json_int_t)r->revision);
  if (o != NULL && r->found) {
    json_object_set_new(o, "kv", ctl_kv_json(&r->kv, true));
  }
  return o;
}

json_t *ctl_key_delete_json(const char *key,
                            const struct synod_key_delete_result *r) {
  json_t *o = json_pack("{s:s, s:b, s:I, s:I}", "key", key, "succeeded",
                        r->succeeded, "deleted", (json_int_t)r->deleted,
                        "revision", (json_int_t)r->revision);
  if (o != NULL && r->has_prev) {
    json_object_set_new(o, "prev", ctl_kv_json(&r->prev, true));
  }
  return o;
}

json_t *ctl_key_txn_json(const struct ctl_txn *t,
                         const struct synod_key_txn_result *r) {
  const struct synod_key_op *ops = r->succeeded ? t->success : t->failure;
  size_t n = r->succeeded ? t->txn.success_n : t->txn.failure_n;
  json_t *results = json_array();
  for (size_t i = 0; i < r->count && i < n; i++) {
    const struct synod_key_op_result *x = &r->results[i];
    const char *key = ops[i].key;
    json_t *one = x->type == SYNOD_KEY_OP_PUT ? ctl_key_put_json(key, &x->u.put)
                  : x->type == SYNOD_KEY_OP_GET
                      ? ctl_key_get_json(key, &x->u.get)
                      : ctl_key_delete_json(key, &x->u.del);
    json_array_append_new(results,
                          json_pack("{s:o}",
                                    x->type == SYNOD_KEY_OP_PUT   ? "put"
                                    : x->type == SYNOD_KEY_OP_GET ? "get"
                                                                  : "del",
                                    one));
  }
  return json_pack("{s:b, s:I, s:o}", "succeeded", r->succeeded, "revision",
                   (json_int_t)r->revision, "results", results);
}
