/* Keys: put, get, delete, list and transactions (synod.h "Keys"), as
 * requests of the engine: building their bodies, checking what the client
 * can check before sending, and turning the answers into synod_key_*
 * results for both interfaces. */
#include <stdlib.h>
#include <string.h>

#include "engine.h"

#define PUT_FLAGS (SYNOD_KEY_SESSION_BOUND | SYNOD_KEY_PREV)
#define DELETE_FLAGS (SYNOD_KEY_PREFIX | SYNOD_KEY_PREV)
#define GET_FLAGS SYNOD_READ_STALE
#define LIST_FLAGS (SYNOD_READ_STALE | SYNOD_KEY_KEYS_ONLY)

bool op_kind_is_key(enum op_kind kind) {
  return kind >= OP_KEY_PUT && kind <= OP_KEY_TXN;
}

/* ------------------------------------------------------------ checks */

/* A key (or with may_be_empty, a prefix): at most SYNOD_KEY_BYTES_MAX
 * bytes, and at least one unless may_be_empty. */
static int key_check(const char *what, const char *key, bool may_be_empty,
                     char *errmsg) {
  size_t n = key != NULL ? strlen(key) : 0;
  if (n == 0 && !may_be_empty) {
    errmsg_printf(errmsg, "%s: an empty key", what);
    return SYNOD_EINVAL;
  }
  if (n > SYNOD_KEY_BYTES_MAX) {
    errmsg_printf(errmsg, "%s: a key of %zu bytes; at most %d", what, n,
                  SYNOD_KEY_BYTES_MAX);
    return SYNOD_EINVAL;
  }
  return 0;
}

static int flags_check(const char *what, unsigned flags, unsigned allowed,
                       char *errmsg) {
  if ((flags & ~allowed) != 0) {
    errmsg_printf(errmsg, "%s: flags 0x%x not allowed here", what,
                  flags & ~allowed);
    return SYNOD_EINVAL;
  }
  return 0;
}

static int count_check(const char *what, const char *of, size_t n,
                       char *errmsg) {
  if (n > SYNOD_KEY_TXN_OPS_MAX) {
    errmsg_printf(errmsg, "%s: %zu %s; at most %d", what, n, of,
                  SYNOD_KEY_TXN_OPS_MAX);
    return SYNOD_ELIMIT;
  }
  return 0;
}

/* -------------------------------------------------------- building */

/* Every piece below is malloc'd and hangs off the body, so that
 * protobuf_c_message_free_unpacked(body, NULL) frees the whole tree; a
 * piece that failed to allocate is left NULL and reported as ENOMEM. */

static int bytes_set(ProtobufCBinaryData *b, const void *p, size_t n) {
  b->len = 0;
  b->data = NULL;
  if (n == 0) {
    return 0;
  }
  b->data = malloc(n);
  if (b->data == NULL) {
    return SYNOD_ENOMEM;
  }
  memcpy(b->data, p, n);
  b->len = n;
  return 0;
}

static int str_set(ProtobufCBinaryData *b, const char *s) {
  return bytes_set(b, s, s != NULL ? strlen(s) : 0);
}

/* One compare; key_required in a transaction. */
static int compare_new(const char *what, const struct synod_key_compare *c,
                       bool key_required, Synod__KeyCompare **out,
                       char *errmsg) {
  bool has_key = c->key != NULL && c->key[0] != '\0';
  int rv = has_key || key_required ? key_check(what, c->key, false, errmsg) : 0;
  if (rv != 0) {
    return rv;
  }
  if ((unsigned)c->target > SYNOD_KEY_SESSION ||
      (unsigned)c->op > SYNOD_KEY_GREATER) {
    errmsg_printf(errmsg, "%s: a compare with target %d and op %d", what,
                  (int)c->target, (int)c->op);
    return SYNOD_EINVAL;
  }
  if (c->target == SYNOD_KEY_VALUE && c->value == NULL && c->value_len > 0) {
    errmsg_printf(errmsg, "%s: a value compare without its value", what);
    return SYNOD_EINVAL;
  }
  Synod__KeyCompare *pb = malloc(sizeof *pb);
  if (pb == NULL) {
    return SYNOD_ENOMEM;
  }
  synod__key_compare__init(pb);
  *out = pb;
  pb->target = (Synod__KeyCompare__Target)c->target;
  pb->op = (Synod__KeyCompare__Op)c->op;
  pb->number = c->number;
  rv = str_set(&pb->key, has_key ? c->key : NULL);
  if (rv == 0 && c->target == SYNOD_KEY_VALUE) {
    rv = bytes_set(&pb->value, c->value, c->value_len);
  }
  return rv;
}

static int compares_new(const char *what, const struct synod_key_compare *cs,
                        size_t n, bool key_required, Synod__KeyCompare ***out,
                        size_t *out_n, char *errmsg) {
  int rv = count_check(what, "compares", n, errmsg);
  if (rv != 0 || n == 0) {
    return rv;
  }
  if (cs == NULL) {
    errmsg_printf(errmsg, "%s: %zu compares and no array", what, n);
    return SYNOD_EINVAL;
  }
  *out = calloc(n, sizeof **out);
  if (*out == NULL) {
    return SYNOD_ENOMEM;
  }
  for (size_t i = 0; i < n && rv == 0; i++) {
    rv = compare_new(what, &cs[i], key_required, &(*out)[i], errmsg);
    *out_n = (*out)[i] != NULL ? i + 1 : i; /* what there is to free */
  }
  return rv;
}

/* A put's body; compares only outside a transaction. */
static int put_new(const char *what, const char *key, const void *value,
                   size_t value_len, unsigned flags,
                   const struct synod_key_compare *cs, size_t cs_n,
                   Synod__KeyPut **out, char *errmsg) {
  int rv = key_check(what, key, false, errmsg);
  if (rv == 0) {
    rv = flags_check(what, flags, PUT_FLAGS, errmsg);
  }
  if (rv == 0 && value == NULL && value_len > 0) {
    errmsg_printf(errmsg, "%s: %zu bytes of value and no pointer", what,
                  value_len);
    rv = SYNOD_EINVAL;
  }
  if (rv != 0) {
    return rv;
  }
  Synod__KeyPut *pb = malloc(sizeof *pb);
  if (pb == NULL) {
    return SYNOD_ENOMEM;
  }
  synod__key_put__init(pb);
  *out = pb;
  pb->session_bound = (flags & SYNOD_KEY_SESSION_BOUND) != 0;
  pb->prev_kv = (flags & SYNOD_KEY_PREV) != 0;
  rv = str_set(&pb->key, key);
  if (rv == 0) {
    rv = bytes_set(&pb->value, value, value_len);
  }
  if (rv == 0) {
    rv = compares_new(what, cs, cs_n, false, &pb->compares, &pb->n_compares,
                      errmsg);
  }
  return rv;
}

static int delete_new(const char *what, const char *key, unsigned flags,
                      const struct synod_key_compare *cs, size_t cs_n,
                      Synod__KeyDelete **out, char *errmsg) {
  bool prefix = (flags & SYNOD_KEY_PREFIX) != 0;
  int rv = key_check(what, key, prefix, errmsg);
  if (rv == 0) {
    rv = flags_check(what, flags, DELETE_FLAGS, errmsg);
  }
  if (rv == 0 && prefix && (flags & SYNOD_KEY_PREV) != 0) {
    errmsg_printf(errmsg, "%s: the previous key is for one key, not a prefix",
                  what);
    rv = SYNOD_EINVAL;
  }
  if (rv != 0) {
    return rv;
  }
  Synod__KeyDelete *pb = malloc(sizeof *pb);
  if (pb == NULL) {
    return SYNOD_ENOMEM;
  }
  synod__key_delete__init(pb);
  *out = pb;
  pb->prefix = prefix;
  pb->prev_kv = (flags & SYNOD_KEY_PREV) != 0;
  rv = str_set(&pb->key, key);
  if (rv == 0) {
    rv = compares_new(what, cs, cs_n, false, &pb->compares, &pb->n_compares,
                      errmsg);
  }
  return rv;
}

static int get_new(const char *what, const char *key, unsigned flags,
                   Synod__KeyGet **out, char *errmsg) {
  int rv = key_check(what, key, false, errmsg);
  if (rv == 0) {
    rv = flags_check(what, flags, GET_FLAGS, errmsg);
  }
  if (rv != 0) {
    return rv;
  }
  Synod__KeyGet *pb = malloc(sizeof *pb);
  if (pb == NULL) {
    return SYNOD_ENOMEM;
  }
  synod__key_get__init(pb);
  *out = pb;
  return str_set(&pb->key, key);
}

static int list_new(const struct key_args *k, Synod__KeyList **out,
                    char *errmsg) {
  const char *what = "key list";
  int rv = key_check(what, k->key, true, errmsg);
  if (rv == 0) {
    rv = key_check(what, k->after, true, errmsg);
  }
  if (rv == 0) {
    rv = flags_check(what, k->flags, LIST_FLAGS, errmsg);
  }
  if (rv == 0 && k->limit > SYNOD_KEY_LIST_LIMIT_MAX) {
    errmsg_printf(errmsg, "%s: a limit of %u; at most %d", what, k->limit,
                  SYNOD_KEY_LIST_LIMIT_MAX);
    rv = SYNOD_EINVAL;
  }
  if (rv != 0) {
    return rv;
  }
  Synod__KeyList *pb = malloc(sizeof *pb);
  if (pb == NULL) {
    return SYNOD_ENOMEM;
  }
  synod__key_list__init(pb);
  *out = pb;
  pb->limit = k->limit;
  pb->revision = k->revision;
  pb->keys_only = (k->flags & SYNOD_KEY_KEYS_ONLY) != 0;
  rv = str_set(&pb->prefix, k->key);
  if (rv == 0) {
    rv = str_set(&pb->after, k->after);
  }
  return rv;
}

/* One operation of a transaction's branch. */
static int txn_op_new(const struct synod_key_op *op, Synod__KeyOp **out,
                      char *errmsg) {
  Synod__KeyOp *pb = malloc(sizeof *pb);
  if (pb == NULL) {
    return SYNOD_ENOMEM;
  }
  synod__key_op__init(pb);
  *out = pb;
  switch (op->type) {
  case SYNOD_KEY_OP_PUT:
    pb->op_case = SYNOD__KEY_OP__OP_PUT;
    return put_new("key txn: put", op->key, op->value, op->value_len, op->flags,
                   NULL, 0, &pb->put, errmsg);
  case SYNOD_KEY_OP_GET:
    pb->op_case = SYNOD__KEY_OP__OP_GET;
    return get_new("key txn: get", op->key, op->flags & ~SYNOD_READ_STALE,
                   &pb->get, errmsg);
  case SYNOD_KEY_OP_DELETE:
    pb->op_case = SYNOD__KEY_OP__OP_DEL;
    return delete_new("key txn: delete", op->key, op->flags, NULL, 0, &pb->del,
                      errmsg);
  default:
    errmsg_printf(errmsg, "key txn: an operation of type %d", (int)op->type);
    return SYNOD_EINVAL;
  }
}

static int branch_new(const struct synod_key_op *ops, size_t n,
                      const char *which, Synod__KeyOp ***out, size_t *out_n,
                      char *errmsg) {
  int rv = count_check("key txn", which, n, errmsg);
  if (rv != 0 || n == 0) {
    return rv;
  }
  if (ops == NULL) {
    errmsg_printf(errmsg, "key txn: %zu %s and no array", n, which);
    return SYNOD_EINVAL;
  }
  *out = calloc(n, sizeof **out);
  if (*out == NULL) {
    return SYNOD_ENOMEM;
  }
  for (size_t i = 0; i < n && rv == 0; i++) {
    rv = txn_op_new(&ops[i], &(*out)[i], errmsg);
    *out_n = (*out)[i] != NULL ? i + 1 : i;
  }
  return rv;
}

static int txn_new(const struct synod_key_txn *t, Synod__KeyTxn **out,
                   char *errmsg) {
  int rv;
  if (t == NULL) {
    errmsg_printf(errmsg, "key txn: no transaction");
    return SYNOD_EINVAL;
  }
  Synod__KeyTxn *pb = malloc(sizeof *pb);
  if (pb == NULL) {
    return SYNOD_ENOMEM;
  }
  synod__key_txn__init(pb);
  *out = pb;
  rv = compares_new("key txn", t->compares, t->compares_n, true, &pb->compares,
                    &pb->n_compares, errmsg);
  if (rv == 0) {
    rv = branch_new(t->success, t->success_n, "success operations",
                    &pb->success, &pb->n_success, errmsg);
  }
  if (rv == 0) {
    rv = branch_new(t->failure, t->failure_n, "failure operations",
                    &pb->failure, &pb->n_failure, errmsg);
  }
  return rv;
}

int keys_op_fill(struct op *op, const struct op_args *args, char *errmsg) {
  const struct key_args *k = args->key;
  int rv;
  if (k == NULL) {
    errmsg_printf(errmsg, "%s: no arguments", op_kind_name(op->kind));
    return SYNOD_EINVAL;
  }
  switch (op->kind) {
  case OP_KEY_PUT:
    rv = put_new("key put", k->key, k->value, k->value_len, k->flags,
                 k->compares, k->compares_n, &op->req.key_put, errmsg);
    op->req.body_case = SYNOD__REQUEST__BODY_KEY_PUT;
    break;
  case OP_KEY_GET:
    rv = get_new("key get", k->key, k->flags, &op->req.key_get, errmsg);
    op->req.body_case = SYNOD__REQUEST__BODY_KEY_GET;
    break;
  case OP_KEY_DELETE:
    rv = delete_new("key delete", k->key, k->flags, k->compares, k->compares_n,
                    &op->req.key_delete, errmsg);
    op->req.body_case = SYNOD__REQUEST__BODY_KEY_DELETE;
    break;
  case OP_KEY_LIST:
    rv = list_new(k, &op->req.key_list, errmsg);
    op->req.body_case = SYNOD__REQUEST__BODY_KEY_LIST;
    break;
  default:
    rv = txn_new(k->txn, &op->req.key_txn, errmsg);
    op->req.body_case = SYNOD__REQUEST__BODY_KEY_TXN;
    break;
  }
  /* The oneof's members share one pointer: whichever was set is it. */
  op->key_body = (ProtobufCMessage *)op->req.key_put;
  if (rv != 0) {
    op->req.body_case = SYNOD__REQUEST__BODY__NOT_SET;
    return rv;
  }
  op->req.stale = (k->flags & SYNOD_READ_STALE) != 0 &&
                  (op->kind == OP_KEY_GET || op->kind == OP_KEY_LIST);
  return 0;
}

/* --------------------------------------------------------- results */

void synod_kv_free(struct synod_kv *kv) {
  if (kv == NULL) {
    return;
  }
  free(kv->key);
  free(kv->value);
  memset(kv, 0, sizeof *kv);
}

void synod_key_put_result_free(struct synod_key_put_result *r) {
  if (r == NULL) {
    return;
  }
  synod_kv_free(&r->kv);
  synod_kv_free(&r->prev);
  memset(r, 0, sizeof *r);
}

void synod_key_get_result_free(struct synod_key_get_result *r) {
  if (r == NULL) {
    return;
  }
  synod_kv_free(&r->kv);
  memset(r, 0, sizeof *r);
}

void synod_key_delete_result_free(struct synod_key_delete_result *r) {
  if (r == NULL) {
    return;
  }
  synod_kv_free(&r->prev);
  memset(r, 0, sizeof *r);
}

void synod_key_list_free(struct synod_key_list *l) {
  if (l == NULL) {
    return;
  }
  for (size_t i = 0; l->kvs != NULL && i < l->count; i++) {
    synod_kv_free(&l->kvs[i]);
  }
  free(l->kvs);
  memset(l, 0, sizeof *l);
}

static void op_result_free(struct synod_key_op_result *r) {
  switch (r->type) {
  case SYNOD_KEY_OP_PUT:
    synod_key_put_result_free(&r->u.put);
    break;
  case SYNOD_KEY_OP_GET:
    synod_key_get_result_free(&r->u.get);
    break;
  default:
    synod_key_delete_result_free(&r->u.del);
    break;
  }
}

void synod_key_txn_result_free(struct synod_key_txn_result *r) {
  if (r == NULL) {
    return;
  }
  for (size_t i = 0; r->results != NULL && i < r->count; i++) {
    op_result_free(&r->results[i]);
  }
  free(r->results);
  memset(r, 0, sizeof *r);
}

/* n bytes and a NUL, for keys and values that are usually text. */
static void *text_dup(const ProtobufCBinaryData *b) {
  uint8_t *p = malloc(b->len + 1);
  if (p != NULL) {
    if (b->len > 0) {
      memcpy(p, b->data, b->len);
    }
    p[b->len] = '\0';
  }
  return p;
}

static int kv_from_pb(const Synod__KeyValue *pb, struct synod_kv *out) {
  memset(out, 0, sizeof *out);
  out->key = text_dup(&pb->key);
  out->value = text_dup(&pb->value);
  if (out->key == NULL || out->value == NULL) {
    synod_kv_free(out);
    return SYNOD_ENOMEM;
  }
  out->key_len = pb->key.len;
  out->value_len = pb->value.len;
  out->create_revision = pb->create_revision;
  out->mod_revision = pb->mod_revision;
  out->version = pb->version;
  out->session_id = pb->session_id;
  return 0;
}

/* *has = whether pb is there; 0 or ENOMEM. */
static int kv_opt_from_pb(const Synod__KeyValue *pb, bool *has,
                          struct synod_kv *out) {
  *has = pb != NULL;
  return pb != NULL ? kv_from_pb(pb, out) : 0;
}

static int put_from_pb(const Synod__KeyPutReply *pb,
                       struct synod_key_put_result *out) {
  memset(out, 0, sizeof *out);
  if (pb == NULL) {
    return SYNOD_EMALFORMED;
  }
  out->succeeded = pb->succeeded;
  out->revision = pb->revision;
  int rv = kv_opt_from_pb(pb->kv, &out->has_kv, &out->kv);
  if (rv == 0) {
    rv = kv_opt_from_pb(pb->prev, &out->has_prev, &out->prev);
  }
  if (rv != 0) {
    synod_key_put_result_free(out);
  }
  return rv;
}

static int get_from_pb(const Synod__KeyGetReply *pb,
                       struct synod_key_get_result *out) {
  memset(out, 0, sizeof *out);
  if (pb == NULL) {
    return SYNOD_EMALFORMED;
  }
  out->revision = pb->revision;
  if (!pb->found || pb->kv == NULL) {
    return 0;
  }
  out->found = true;
  return kv_from_pb(pb->kv, &out->kv);
}

static int delete_from_pb(const Synod__KeyDeleteReply *pb,
                          struct synod_key_delete_result *out) {
  memset(out, 0, sizeof *out);
  if (pb == NULL) {
    return SYNOD_EMALFORMED;
  }
  out->succeeded = pb->succeeded;
  out->deleted = pb->deleted;
  out->revision = pb->revision;
  return kv_opt_from_pb(pb->prev, &out->has_prev, &out->prev);
}

static int list_from_pb(const Synod__KeyListReply *pb,
                        struct synod_key_list *out) {
  memset(out, 0, sizeof *out);
  if (pb == NULL) {
    return SYNOD_EMALFORMED;
  }
  out->more = pb->more;
  out->revision = pb->revision;
  out->kvs = calloc(pb->n_kvs ? pb->n_kvs : 1, sizeof *out->kvs);
  if (out->kvs == NULL) {
    return SYNOD_ENOMEM;
  }
  for (size_t i = 0; i < pb->n_kvs; i++) {
    int rv = kv_from_pb(pb->kvs[i], &out->kvs[i]);
    if (rv != 0) {
      synod_key_list_free(out);
      return rv;
    }
    out->count = i + 1;
  }
  return 0;
}

static int op_result_from_pb(const Synod__KeyOpResult *pb,
                             struct synod_key_op_result *out) {
  switch (pb->result_case) {
  case SYNOD__KEY_OP_RESULT__RESULT_PUT:
    out->type = SYNOD_KEY_OP_PUT;
    return put_from_pb(pb->put, &out->u.put);
  case SYNOD__KEY_OP_RESULT__RESULT_GET:
    out->type = SYNOD_KEY_OP_GET;
    return get_from_pb(pb->get, &out->u.get);
  case SYNOD__KEY_OP_RESULT__RESULT_DEL:
    out->type = SYNOD_KEY_OP_DELETE;
    return delete_from_pb(pb->del, &out->u.del);
  default:
    return SYNOD_EMALFORMED;
  }
}

static int txn_from_pb(const Synod__KeyTxnReply *pb,
                       struct synod_key_txn_result *out) {
  memset(out, 0, sizeof *out);
  if (pb == NULL) {
    return SYNOD_EMALFORMED;
  }
  out->succeeded = pb->succeeded;
  out->revision = pb->revision;
  out->results =
      calloc(pb->n_results ? pb->n_results : 1, sizeof *out->results);
  if (out->results == NULL) {
    return SYNOD_ENOMEM;
  }
  for (size_t i = 0; i < pb->n_results; i++) {
    int rv = op_result_from_pb(pb->results[i], &out->results[i]);
    if (rv != 0) {
      synod_key_txn_result_free(out);
      return rv;
    }
    out->count = i + 1;
  }
  return 0;
}

int keys_result_from_response(enum op_kind kind, const Synod__Response *resp,
                              union synod_result *out) {
  switch (kind) {
  case OP_KEY_PUT:
    return put_from_pb(resp->key_put, &out->key_put);
  case OP_KEY_GET:
    return get_from_pb(resp->key_get, &out->key_get);
  case OP_KEY_DELETE:
    return delete_from_pb(resp->key_delete, &out->key_delete);
  case OP_KEY_LIST:
    return list_from_pb(resp->key_list, &out->key_list);
  default:
    return txn_from_pb(resp->key_txn, &out->key_txn);
  }
}

void keys_result_free(enum op_kind kind, union synod_result *r) {
  switch (kind) {
  case OP_KEY_PUT:
    synod_key_put_result_free(&r->key_put);
    break;
  case OP_KEY_GET:
    synod_key_get_result_free(&r->key_get);
    break;
  case OP_KEY_DELETE:
    synod_key_delete_result_free(&r->key_delete);
    break;
  case OP_KEY_LIST:
    synod_key_list_free(&r->key_list);
    break;
  default:
    synod_key_txn_result_free(&r->key_txn);
    break;
  }
}

void keys_deliver(enum op_kind kind, void (*cb)(void), void *arg, int status,
                  const union synod_result *r) {
  bool ok = status == 0;
  switch (kind) {
  case OP_KEY_PUT:
    ((synod_key_put_cb)cb)(arg, status, ok ? &r->key_put : NULL);
    break;
  case OP_KEY_GET:
    ((synod_key_get_cb)cb)(arg, status, ok ? &r->key_get : NULL);
    break;
  case OP_KEY_DELETE:
    ((synod_key_delete_cb)cb)(arg, status, ok ? &r->key_delete : NULL);
    break;
  case OP_KEY_LIST:
    ((synod_key_list_cb)cb)(arg, status, ok ? &r->key_list : NULL);
    break;
  default:
    ((synod_key_txn_cb)cb)(arg, status, ok ? &r->key_txn : NULL);
    break;
  }
}

/* ---------------------------------------------------------- async API */

typedef void (*any_cb)(void);

int synod_async_key_put(struct synod_async *a, const char *key,
                        const void *value, size_t value_len, unsigned flags,
                        const struct synod_key_compare *compares,
                        size_t compares_n, synod_key_put_cb cb, void *arg) {
  struct key_args k = {.key = key,
                       .value = value,
                       .value_len = value_len,
                       .flags = flags,
                       .compares = compares,
                       .compares_n = compares_n};
  struct op_args args = {.key = &k};
  return async_submit(a, OP_KEY_PUT, &args, (any_cb)cb, arg, 0);
}

int synod_async_key_get(struct synod_async *a, const char *key, unsigned flags,
                        synod_key_get_cb cb, void *arg) {
  struct key_args k = {.key = key, .flags = flags};
  struct op_args args = {.key = &k};
  return async_submit(a, OP_KEY_GET, &args, (any_cb)cb, arg, 0);
}

int synod_async_key_delete(struct synod_async *a, const char *key,
                           unsigned flags,
                           const struct synod_key_compare *compares,
                           size_t compares_n, synod_key_delete_cb cb,
                           void *arg) {
  struct key_args k = {.key = key,
                       .flags = flags,
                       .compares = compares,
                       .compares_n = compares_n};
  struct op_args args = {.key = &k};
  return async_submit(a, OP_KEY_DELETE, &args, (any_cb)cb, arg, 0);
}

/* A list's arguments, for the async and the blocking call alike. */
static struct key_args list_args(const char *prefix, const char *after,
                                 uint32_t limit, unsigned flags,
                                 uint64_t revision) {
  return (struct key_args){.key = prefix,
                           .after = after,
                           .limit = limit,
                           .flags = flags,
                           .revision = revision};
}

int synod_async_key_list_at(struct synod_async *a, const char *prefix,
                            const char *after, uint32_t limit, unsigned flags,
                            uint64_t revision, synod_key_list_cb cb,
                            void *arg) {
  struct key_args k = list_args(prefix, after, limit, flags, revision);
  struct op_args args = {.key = &k};
  return async_submit(a, OP_KEY_LIST, &args, (any_cb)cb, arg, 0);
}

int synod_async_key_list(struct synod_async *a, const char *prefix,
                         const char *after, uint32_t limit, unsigned flags,
                         synod_key_list_cb cb, void *arg) {
  return synod_async_key_list_at(a, prefix, after, limit, flags, 0, cb, arg);
}

int synod_async_key_txn(struct synod_async *a, const struct synod_key_txn *txn,
                        synod_key_txn_cb cb, void *arg) {
  struct key_args k = {.txn = txn};
  struct op_args args = {.key = &k};
  return async_submit(a, OP_KEY_TXN, &args, (any_cb)cb, arg, 0);
}

/* ------------------------------------------------------- blocking API */

int synod_key_put(struct synod_client *c, const char *key, const void *value,
                  size_t value_len, unsigned flags,
                  const struct synod_key_compare *compares, size_t compares_n,
                  uint32_t timeout_ms, struct synod_key_put_result *out) {
  struct key_args k = {.key = key,
                       .value = value,
                       .value_len = value_len,
                       .flags = flags,
                       .compares = compares,
                       .compares_n = compares_n};
  struct op_args args = {.key = &k};
  union synod_result r;
  int rv = client_call(c, OP_KEY_PUT, &args, timeout_ms, &r);
  if (rv == 0 && out != NULL) {
    *out = r.key_put;
  } else if (rv == 0) {
    synod_key_put_result_free(&r.key_put);
  }
  return rv;
}

int synod_key_create(struct synod_client *c, const char *key, const void *value,
                     size_t value_len, unsigned flags, uint32_t timeout_ms,
                     bool *created) {
  static const struct synod_key_compare absent = {
      .target = SYNOD_KEY_VERSION, .op = SYNOD_KEY_EQUAL, .number = 0};
  struct synod_key_put_result r;
  int rv = synod_key_put(c, key, value, value_len, flags & ~SYNOD_KEY_PREV,
                         &absent, 1, timeout_ms, &r);
  if (rv == 0) {
    if (created != NULL) {
      *created = r.succeeded;
    }
    synod_key_put_result_free(&r);
  }
  return rv;
}

int synod_key_get(struct synod_client *c, const char *key, unsigned flags,
                  uint32_t timeout_ms, struct synod_key_get_result *out) {
  struct key_args k = {.key = key, .flags = flags};
  struct op_args args = {.key = &k};
  union synod_result r;
  int rv = client_call(c, OP_KEY_GET, &args, timeout_ms, &r);
  if (rv == 0 && out != NULL) {
    *out = r.key_get;
  } else if (rv == 0) {
    synod_key_get_result_free(&r.key_get);
  }
  return rv;
}

int synod_key_delete(struct synod_client *c, const char *key, unsigned flags,
                     const struct synod_key_compare *compares,
                     size_t compares_n, uint32_t timeout_ms,
                     struct synod_key_delete_result *out) {
  struct key_args k = {.key = key,
                       .flags = flags,
                       .compares = compares,
                       .compares_n = compares_n};
  struct op_args args = {.key = &k};
  union synod_result r;
  int rv = client_call(c, OP_KEY_DELETE, &args, timeout_ms, &r);
  if (rv == 0 && out != NULL) {
    *out = r.key_delete;
  } else if (rv == 0) {
    synod_key_delete_result_free(&r.key_delete);
  }
  return rv;
}

int synod_key_list(struct synod_client *c, const char *prefix,
                   const char *after, uint32_t limit, unsigned flags,
                   uint32_t timeout_ms, struct synod_key_list *out) {
  return synod_key_list_at(c, prefix, after, limit, flags, 0, timeout_ms, out);
}

int synod_key_list_at(struct synod_client *c, const char *prefix,
                      const char *after, uint32_t limit, unsigned flags,
                      uint64_t revision, uint32_t timeout_ms,
                      struct synod_key_list *out) {
  struct key_args k = list_args(prefix, after, limit, flags, revision);
  struct op_args args = {.key = &k};
  union synod_result r;
  int rv = client_call(c, OP_KEY_LIST, &args, timeout_ms, &r);
  if (rv == 0 && out != NULL) {
    *out = r.key_list;
  } else if (rv == 0) {
    synod_key_list_free(&r.key_list);
  }
  return rv;
}

int synod_key_txn(struct synod_client *c, const struct synod_key_txn *txn,
                  uint32_t timeout_ms, struct synod_key_txn_result *out) {
  struct key_args k = {.txn = txn};
  struct op_args args = {.key = &k};
  union synod_result r;
  int rv = client_call(c, OP_KEY_TXN, &args, timeout_ms, &r);
  if (rv == 0 && out != NULL) {
    *out = r.key_txn;
  } else if (rv == 0) {
    synod_key_txn_result_free(&r.key_txn);
  }
  return rv;
}
