/* Keys: put, get, delete (one key or a prefix), list, compares and
 * transactions over a store ordered by key bytes, with keys bound to
 * sessions. kv_history.c numbers the revisions, keeps their history and
 * ends the keys of ended sessions. */
#include <assert.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "fsm_int.h"
#include "utf8.h"

/* A KeyList page when the request says 0. */
#define KEY_LIST_DEFAULT 1000

/* ------------------------------------------------------------- the store */

int fsm_key_cmp(const void *key, const struct otree_node *n) {
  const struct fsm_key *k = FSM_CONTAINER(n, struct fsm_key, by_key);
  return fsm_name_cmp(key, (const char *)k->data, k->key_len);
}

static struct fsm_name key_name(const uint8_t *key, size_t len) {
  return (struct fsm_name){(const char *)key, len};
}

/* The key in the tree, live or dead, or NULL. */
static struct fsm_key *key_node(const struct fsm *f, const uint8_t *key,
                                size_t len) {
  struct fsm_name k = key_name(key, len);
  struct otree_node *n = otree_find(&f->keys, &k);
  return n ? FSM_CONTAINER(n, struct fsm_key, by_key) : NULL;
}

struct fsm_key *fsm_key_find(const struct fsm *f, const uint8_t *key,
                             size_t len) {
  struct fsm_key *k = key_node(f, key, len);
  return k != NULL && fsm_key_live(k) ? k : NULL;
}

struct fsm_key *fsm_key_new(const uint8_t *key, size_t key_len,
                            const uint8_t *value, size_t value_len,
                            bool bound) {
  /* From the flexible member's offset, not sizeof: the struct's tail
   * padding would cost every key a byte more (a 16-byte chunk more, for
   * a 12-byte key and a 100-byte value). */
  size_t head = offsetof(struct fsm_key, data);
  size_t front = bound ? sizeof(struct fsm_key_binding) : 0;
  assert(key_len <= FSM_KEY_BYTES_MAX); /* fsm_key_check()ed */
  uint8_t *p = fsm_xmalloc(front + head + key_len + 1 + value_len);
  struct fsm_key *k = (struct fsm_key *)(p + front);
  memset(k, 0, head);
  k->bound = bound;
  if (bound) {
    struct fsm_key_binding *b = fsm_key_binding(k);
    fsm_list_init(&b->lease_link);
    b->lease = NULL;
  }
  k->key_len = (uint16_t)key_len;
  k->value_len = (uint32_t)value_len;
  memcpy(k->data, key, key_len);
  k->data[key_len] = '\0';
  if (value_len > 0) {
    memcpy(k->data + key_len + 1, value, value_len);
  }
  return k;
}

void fsm_key_free(struct fsm_key *k) {
  if (k != NULL) {
    free(k->bound ? (void *)fsm_key_binding(k) : (void *)k);
  }
}

static uint64_t key_size(const struct fsm_key *k) {
  return (uint64_t)k->key_len + k->value_len;
}

/* (mod_revision, key) order: the order of a lease. */
static int lease_order(const struct fsm_key *a, const struct fsm_key *b) {
  if (a->mod_revision != b->mod_revision) {
    return a->mod_revision < b->mod_revision ? -1 : 1;
  }
  struct fsm_name n = key_name(a->data, a->key_len);
  return fsm_name_cmp(&n, (const char *)b->data, b->key_len);
}

/* k's mod_revision is the newest in the lease (a put binds at the
 * revision being made), so it goes at the tail, before the keys of the
 * same revision that sort after it (a transaction binding several). */
void fsm_key_bind(struct fsm_key_lease **lease, uint64_t session_id,
                  struct fsm_key *k, bool ordered) {
  struct fsm_key_lease *l = *lease;
  if (l == NULL) {
    l = *lease = fsm_xcalloc(1, sizeof *l);
    l->session_id = session_id;
    fsm_list_init(&l->keys);
    fsm_list_init(&l->work_link);
  }
  struct fsm_list *at = l->keys.prev;
  while (ordered && at != &l->keys && lease_order(k, fsm_key_of_link(at)) < 0) {
    at = at->prev;
  }
  struct fsm_key_binding *b = fsm_key_binding(k);
  assert(b != NULL);                            /* made bound by fsm_key_new */
  fsm_list_push_back(at->next, &b->lease_link); /* before at->next */
  b->lease = l;
  l->keys_n++;
  l->bytes += key_size(k);
}

static int lease_qsort(const void *a, const void *b) {
  return lease_order(*(struct fsm_key *const *)a, *(struct fsm_key *const *)b);
}

/* A restored lease: its keys were bound in key order. */
void fsm_key_lease_sort(struct fsm_key_lease *l) {
  struct fsm_key **v = fsm_xcalloc(l->keys_n, sizeof *v);
  size_t n = 0;
  while (!fsm_list_empty(&l->keys)) {
    struct fsm_list *x = l->keys.next;
    fsm_list_remove(x);
    v[n++] = fsm_key_of_link(x);
  }
  qsort(v, n, sizeof *v, lease_qsort);
  for (size_t i = 0; i < n; i++) {
    fsm_list_push_back(&l->keys, &fsm_key_binding(v[i])->lease_link);
  }
  free(v);
}

/* Takes a live key out of the store and its lease; the caller frees it.
 * Its lease stays set, so its session can still be read until then. */
static void key_unlink(struct fsm *f, struct fsm_key *k) {
  otree_remove(&f->keys, &k->by_key);
  k->in_tree = 0;
  struct fsm_key_binding *b = fsm_key_binding(k);
  if (b != NULL && b->lease != NULL) {
    fsm_list_remove(&b->lease_link);
    b->lease->keys_n--;
    b->lease->bytes -= key_size(k);
  }
  f->keys_live--;
  f->keys_bytes -= key_size(k);
}

/* A dead key in the way of a write: out of the tree now, ahead of the
 * work list (it stays one of its lease's deletes). */
static void key_take_out_dead(struct fsm *f, struct fsm_key *k) {
  otree_remove(&f->keys, &k->by_key);
  k->in_tree = 0;
}

static void key_insert(struct fsm *f, struct fsm_key *k) {
  struct fsm_name n = key_name(k->data, k->key_len);
  struct otree_node *dup = otree_insert(&f->keys, &k->by_key, &n);
  assert(dup == NULL); /* the caller took the old one out */
  (void)dup;
  k->in_tree = 1;
  f->keys_live++;
  f->keys_bytes += key_size(k);
}

/* ------------------------------------------------------------ checking */

int fsm_key_check(const uint8_t *key, size_t len, bool prefix, char *msg) {
  const char *what = prefix ? "prefix" : "key";
  const uint8_t *nul = len ? memchr(key, 0, len) : NULL;
  size_t bad = 0;
  if (len == 0 && !prefix) {
    errmsg_set(msg, "key is empty");
    return SYNOD_EINVAL;
  }
  if (len > FSM_KEY_BYTES_MAX) {
    errmsg_set(msg, "%s of %zu bytes, over %d", what, len, FSM_KEY_BYTES_MAX);
    return SYNOD_EINVAL;
  }
  if (nul != NULL) {
    errmsg_set(msg, "%s has a NUL byte at %zu", what, (size_t)(nul - key));
    return SYNOD_EINVAL;
  }
  if (!utf8_valid(key, len, &bad)) {
    errmsg_set(msg, "%s is not valid UTF-8 (byte %zu)", what, bad);
    return SYNOD_EINVAL;
  }
  return 0;
}

/* How much of a key an error message shows: at most 64 bytes, cut at a
 * character boundary (the key is valid UTF-8 once checked). */
static int key_shown(const uint8_t *key, size_t len) {
  size_t n = len < 64 ? len : 64;
  while (n < len && n > 0 && (key[n] & 0xc0) == 0x80) {
    n--;
  }
  return (int)n;
}

/* A key field of a request, checked; `what` names it in the message. */
static int key_arg(const ProtobufCBinaryData *key, bool prefix,
                   const char *what, char *msg) {
  int rv = fsm_key_check(key->data, key->len, prefix, msg);
  if (rv != 0) {
    errmsg_wrap(msg, "%s", what);
  }
  return rv;
}

/* A compare, checked. dflt is the request's key (NULL: a key is needed). */
static int compare_arg(const Synod__KeyCompare *c,
                       const ProtobufCBinaryData *dflt, const char *what,
                       size_t i, char *msg) {
  if ((unsigned)c->target > SYNOD__KEY_COMPARE__TARGET__TARGET_SESSION ||
      (unsigned)c->op > SYNOD__KEY_COMPARE__OP__OP_GREATER) {
    errmsg_set(msg, "%s: compare %zu: target %d or op %d unknown", what, i,
               (int)c->target, (int)c->op);
    return SYNOD_EINVAL;
  }
  if (c->key.len == 0 && dflt != NULL) {
    return 0;
  }
  if (fsm_key_check(c->key.data, c->key.len, false, msg) != 0) {
    errmsg_wrap(msg, "%s: compare %zu", what, i);
    return SYNOD_EINVAL;
  }
  return 0;
}

static int compares_arg(const struct fsm *f, Synod__KeyCompare *const *cs,
                        size_t n, const ProtobufCBinaryData *dflt,
                        const char *what, char *msg) {
  if (n > f->opt.key_txn_ops_max) {
    errmsg_set(msg, "%s: %zu compares, at most %u", what, n,
               f->opt.key_txn_ops_max);
    return SYNOD_ELIMIT;
  }
  for (size_t i = 0; i < n; i++) {
    int rv = compare_arg(cs[i], dflt, what, i, msg);
    if (rv != 0) {
      return rv;
    }
  }
  return 0;
}

static int bytes_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn) {
  struct fsm_name x = {(const char *)a, an};
  return fsm_name_cmp(&x, (const char *)b, bn);
}

static bool compare_holds(const struct fsm *f, const Synod__KeyCompare *c,
                          const ProtobufCBinaryData *dflt) {
  const ProtobufCBinaryData *key = c->key.len ? &c->key : dflt;
  const struct fsm_key *k = fsm_key_find(f, key->data, key->len);
  int cmp;
  if (c->target == SYNOD__KEY_COMPARE__TARGET__TARGET_VALUE) {
    if (k == NULL) {
      return false;
    }
    cmp =
        bytes_cmp(fsm_key_value(k), k->value_len, c->value.data, c->value.len);
  } else {
    uint64_t have = 0;
    if (k != NULL) {
      switch (c->target) {
      case SYNOD__KEY_COMPARE__TARGET__TARGET_VERSION:
        have = k->version;
        break;
      case SYNOD__KEY_COMPARE__TARGET__TARGET_CREATE_REVISION:
        have = k->create_revision;
        break;
      case SYNOD__KEY_COMPARE__TARGET__TARGET_MOD_REVISION:
        have = k->mod_revision;
        break;
      default:
        have = fsm_key_lease(k) ? fsm_key_lease(k)->session_id : 0;
        break;
      }
    }
    cmp = have < c->number ? -1 : have > c->number;
  }
  switch (c->op) {
  case SYNOD__KEY_COMPARE__OP__OP_EQUAL:
    return cmp == 0;
  case SYNOD__KEY_COMPARE__OP__OP_NOT_EQUAL:
    return cmp != 0;
  case SYNOD__KEY_COMPARE__OP__OP_LESS:
    return cmp < 0;
  default:
    return cmp > 0;
  }
}

static bool compares_hold(const struct fsm *f, Synod__KeyCompare *const *cs,
                          size_t n, const ProtobufCBinaryData *dflt) {
  for (size_t i = 0; i < n; i++) {
    if (!compare_holds(f, cs[i], dflt)) {
      return false;
    }
  }
  return true;
}

/* A put, checked; `in_txn`: it may carry no compares of its own. */
static int put_arg(const struct fsm *f, const struct fsm_session *s,
                   const Synod__KeyPut *p, bool in_txn, const char *what,
                   char *msg) {
  int rv = key_arg(&p->key, false, what, msg);
  if (rv != 0) {
    return rv;
  }
  uint64_t value_max = fsm_key_value_bytes_max(f);
  if (p->value.len > value_max) {
    errmsg_set(msg, "%s: value of %zu bytes for \"%.*s\", over %" PRIu64, what,
               p->value.len, key_shown(p->key.data, p->key.len),
               (const char *)p->key.data, value_max);
    return SYNOD_ETOOBIG;
  }
  if (p->session_bound && s == NULL) {
    errmsg_set(msg, "%s: session_bound needs a session", what);
    return SYNOD_ESESSION;
  }
  if (in_txn && p->n_compares > 0) {
    errmsg_set(msg, "%s: a put in a transaction carries no compares", what);
    return SYNOD_EINVAL;
  }
  return in_txn
             ? 0
             : compares_arg(f, p->compares, p->n_compares, &p->key, what, msg);
}

static int delete_arg(const struct fsm *f, const Synod__KeyDelete *d,
                      bool in_txn, const char *what, char *msg) {
  int rv = key_arg(&d->key, d->prefix, what, msg);
  if (rv != 0) {
    return rv;
  }
  if (d->prefix && d->prev_kv) {
    errmsg_set(msg, "%s: prev_kv is for one key, not a prefix", what);
    return SYNOD_EINVAL;
  }
  if (in_txn && d->n_compares > 0) {
    errmsg_set(msg, "%s: a delete in a transaction carries no compares", what);
    return SYNOD_EINVAL;
  }
  return in_txn ? 0
                : compares_arg(f, d->compares, d->n_compares,
                               d->prefix ? NULL : &d->key, what, msg);
}

/* ------------------------------------------------------------- replies */

/* Fills pb from k. In apply (copy), the bytes go to output memory: k may
 * be freed before the answer is packed. */
static void kv_to_pb(struct fsm *f, const struct fsm_key *k, bool with_value,
                     bool copy, Synod__KeyValue *pb) {
  synod__key_value__init(pb);
  pb->key.data = (uint8_t *)k->data;
  pb->key.len = k->key_len;
  if (with_value) {
    pb->value.data = (uint8_t *)fsm_key_value(k);
    pb->value.len = k->value_len;
  }
  if (copy) {
    size_t n = pb->key.len + pb->value.len;
    uint8_t *p = fsm_output_alloc(f, n);
    memcpy(p, pb->key.data, pb->key.len);
    if (pb->value.len > 0) {
      memcpy(p + pb->key.len, pb->value.data, pb->value.len);
    }
    pb->key.data = p;
    pb->value.data = p + pb->key.len;
  }
  pb->create_revision = k->create_revision;
  pb->mod_revision = k->mod_revision;
  pb->version = k->version;
  pb->session_id = fsm_key_lease(k) ? fsm_key_lease(k)->session_id : 0;
}

/* ------------------------------------------------------------- writes */

/* The room a put needs: is the key new, and how its bytes change. */
static void put_cost(const struct fsm *f, const Synod__KeyPut *p,
                     uint64_t *creates, int64_t *bytes) {
  const struct fsm_key *old = fsm_key_find(f, p->key.data, p->key.len);
  *creates += old == NULL;
  *bytes +=
      (int64_t)(p->key.len + p->value.len) - (old ? (int64_t)key_size(old) : 0);
}

static int room_check(const struct fsm *f, uint64_t creates, int64_t bytes,
                      const char *what, char *msg) {
  if (creates > 0 && f->keys_live + creates > f->opt.keys_max) {
    errmsg_set(
        msg, "%s: %" PRIu64 " new keys do not fit: %" PRIu64 " of keys_max %u",
        what, creates, f->keys_live, f->opt.keys_max);
    return SYNOD_ELIMIT;
  }
  if (bytes > 0 && f->keys_bytes + (uint64_t)bytes > f->opt.keys_bytes_max) {
    errmsg_set(msg,
               "%s: %" PRId64 " more bytes do not fit: %" PRIu64
               " of keys_bytes_max %" PRIu64,
               what, bytes, f->keys_bytes, f->opt.keys_bytes_max);
    return SYNOD_ELIMIT;
  }
  return 0;
}

/* Applies a checked put at the revision being built (f->key_revision +
 * 1). Fills pr: kv (without value) and, with prev_kv, prev. */
static void put_apply(struct fsm *f, struct fsm_session *s,
                      const Synod__KeyPut *p, Synod__KeyPutReply *pr,
                      Synod__KeyValue *kv, Synod__KeyValue *prev) {
  uint64_t rev = f->key_revision + 1;
  struct fsm_key *node = key_node(f, p->key.data, p->key.len);
  struct fsm_key *old = NULL;
  if (node != NULL && !fsm_key_live(node)) {
    key_take_out_dead(f, node);
  } else if (node != NULL) {
    old = node;
    key_unlink(f, old);
  }
  struct fsm_key *k = fsm_key_new(p->key.data, p->key.len, p->value.data,
                                  p->value.len, p->session_bound);
  k->mod_revision = rev;
  k->create_revision = old ? old->create_revision : rev;
  k->version = old ? old->version + 1 : 1;
  key_insert(f, k);
  if (p->session_bound) {
    fsm_key_bind(&s->lease, s->id, k, true);
  }
  fsm_key_rev_event(f, k, old);
  pr->succeeded = true;
  kv_to_pb(f, k, false, true, kv);
  pr->kv = kv;
  if (old != NULL && p->prev_kv) {
    kv_to_pb(f, old, true, true, prev);
    pr->prev = prev;
  }
  fsm_key_free(old);
}

static bool has_prefix(const struct fsm_key *k, const uint8_t *p, size_t n) {
  return n == 0 || (k->key_len >= n && memcmp(k->data, p, n) == 0);
}

static void delete_one(struct fsm *f, struct fsm_key *k) {
  key_unlink(f, k);
  fsm_key_rev_event(f, NULL, k);
  fsm_key_free(k);
}

/* Applies a checked delete at the revision being built. */
static void delete_apply(struct fsm *f, const Synod__KeyDelete *d,
                         Synod__KeyDeleteReply *dr, Synod__KeyValue *prev) {
  dr->succeeded = true;
  if (!d->prefix) {
    struct fsm_key *k = fsm_key_find(f, d->key.data, d->key.len);
    if (k != NULL) {
      if (d->prev_kv) {
        kv_to_pb(f, k, true, true, prev);
        dr->prev = prev;
      }
      delete_one(f, k);
      dr->deleted = 1;
    }
    return;
  }
  struct fsm_name pn = key_name(d->key.data, d->key.len);
  struct otree_node *n =
      pn.len ? otree_lower_bound(&f->keys, &pn, false) : otree_first(&f->keys);
  while (n != NULL) {
    struct fsm_key *k = FSM_CONTAINER(n, struct fsm_key, by_key);
    if (!has_prefix(k, d->key.data, d->key.len)) {
      break;
    }
    n = otree_next(n);
    if (fsm_key_live(k)) {
      delete_one(f, k);
      dr->deleted++;
    }
  }
}

static void get_apply(struct fsm *f, const Synod__KeyGet *g, bool copy,
                      Synod__KeyGetReply *gr, Synod__KeyValue *kv) {
  const struct fsm_key *k = fsm_key_find(f, g->key.data, g->key.len);
  gr->found = k != NULL;
  if (k != NULL) {
    kv_to_pb(f, k, true, copy, kv);
    gr->kv = kv;
  }
  gr->revision = f->key_revision;
}

/* ------------------------------------------------------------ requests */

int fsm_key_put(struct fsm *f, struct fsm_session *s, const Synod__Request *req,
                struct fsm_reply *r) {
  const Synod__KeyPut *p = req->key_put;
  Synod__KeyPutReply *pr = &r->u.key_put;
  uint64_t creates = 0;
  int64_t bytes = 0;
  int rv = put_arg(f, s, p, false, "key put", r->msg);
  if (rv != 0) {
    return rv;
  }
  synod__key_put_reply__init(pr);
  r->resp.body_case = SYNOD__RESPONSE__BODY_KEY_PUT;
  r->resp.key_put = pr;
  if (!compares_hold(f, p->compares, p->n_compares, &p->key)) {
    const struct fsm_key *k = fsm_key_find(f, p->key.data, p->key.len);
    if (k != NULL) {
      kv_to_pb(f, k, false, true, &r->kv);
      pr->kv = &r->kv;
    }
    pr->revision = f->key_revision;
    return 0;
  }
  put_cost(f, p, &creates, &bytes);
  rv = room_check(f, creates, bytes, "key put", r->msg);
  if (rv != 0) {
    return rv;
  }
  fsm_key_rev_begin(f);
  put_apply(f, s, p, pr, &r->kv, &r->prev);
  pr->revision = fsm_key_rev_finish(f);
  return 0;
}

int fsm_key_get(struct fsm *f, struct fsm_session *s, const Synod__Request *req,
                struct fsm_reply *r) {
  (void)s;
  int rv = key_arg(&req->key_get->key, false, "key get", r->msg);
  if (rv != 0) {
    return rv;
  }
  synod__key_get_reply__init(&r->u.key_get);
  get_apply(f, req->key_get, false, &r->u.key_get, &r->kv);
  r->resp.body_case = SYNOD__RESPONSE__BODY_KEY_GET;
  r->resp.key_get = &r->u.key_get;
  return 0;
}

int fsm_key_delete(struct fsm *f, struct fsm_session *s,
                   const Synod__Request *req, struct fsm_reply *r) {
  const Synod__KeyDelete *d = req->key_delete;
  Synod__KeyDeleteReply *dr = &r->u.key_del;
  (void)s;
  int rv = delete_arg(f, d, false, "key delete", r->msg);
  if (rv != 0) {
    return rv;
  }
  synod__key_delete_reply__init(dr);
  r->resp.body_case = SYNOD__RESPONSE__BODY_KEY_DELETE;
  r->resp.key_delete = dr;
  if (!compares_hold(f, d->compares, d->n_compares, &d->key)) {
    dr->revision = f->key_revision;
    return 0;
  }
  fsm_key_rev_begin(f);
  delete_apply(f, d, dr, &r->prev);
  uint64_t rev = fsm_key_rev_finish(f);
  dr->revision = rev ? rev : f->key_revision;
  return 0;
}

/* Whether a list's `after` bounds its page: when it is past the prefix
 * (else the page starts at the prefix's first key). */
static bool list_after_counts(const Synod__KeyList *q) {
  struct fsm_name an = key_name(q->after.data, q->after.len);
  return an.len > 0 &&
         fsm_name_cmp(&an, (const char *)q->prefix.data, q->prefix.len) >= 0;
}

/* The first key a list page may hold. */
static struct otree_node *list_start(const struct fsm *f,
                                     const Synod__KeyList *q) {
  struct fsm_name pn = key_name(q->prefix.data, q->prefix.len);
  struct fsm_name an = key_name(q->after.data, q->after.len);
  if (list_after_counts(q)) {
    return otree_lower_bound(&f->keys, &an, true);
  }
  return pn.len ? otree_lower_bound(&f->keys, &pn, false)
                : otree_first(&f->keys);
}

/* The next live key under the prefix from n on, or NULL. */
static const struct fsm_key *list_next(const Synod__KeyList *q,
                                       struct otree_node **n) {
  for (; *n != NULL; *n = otree_next(*n)) {
    const struct fsm_key *k = FSM_CONTAINER(*n, struct fsm_key, by_key);
    if (!has_prefix(k, q->prefix.data, q->prefix.len)) {
      *n = NULL;
      return NULL;
    }
    if (fsm_key_live(k)) {
      *n = otree_next(*n);
      return k;
    }
  }
  return NULL;
}

/* A key as it was at a past revision R, from the first change to it
 * after R: that change's prev (or, for a put without one, no key). */
struct key_then {
  struct fsm_kv kv; /* kv.key and key_len always; the rest if existed */
  bool existed;
  uint64_t seq; /* the change's place in the history: the first wins */
};

/* Bytewise order of two struct key_then's keys. */
static int then_key_cmp(const struct key_then *x, const struct key_then *y) {
  struct fsm_name n = key_name(x->kv.key, x->kv.key_len);
  return fsm_name_cmp(&n, (const char *)y->kv.key, y->kv.key_len);
}

/* By key, then by the change's place in the history. */
static int then_cmp(const void *a, const void *b) {
  const struct key_then *x = a, *y = b;
  int c = then_key_cmp(x, y);
  return c != 0 ? c : (x->seq < y->seq ? -1 : x->seq > y->seq);
}

/* Bytewise order of a key and a struct key_then's. */
static int key_then_cmp(const struct fsm_key *k, const struct key_then *t) {
  struct fsm_name n = key_name(k->data, k->key_len);
  return fsm_name_cmp(&n, (const char *)t->kv.key, t->kv.key_len);
}

/* Whether a key is one the page may hold: under the prefix and past
 * `after` when that is past the prefix (list_start's range). */
static bool list_covers(const Synod__KeyList *q, const uint8_t *key,
                        size_t len) {
  struct fsm_name kn = key_name(key, len);
  if (q->prefix.len > 0 &&
      (len < q->prefix.len || memcmp(key, q->prefix.data, q->prefix.len))) {
    return false;
  }
  return !list_after_counts(q) ||
         fsm_name_cmp(&kn, (const char *)q->after.data, q->after.len) > 0;
}

/* The keys of the page's range changed after `rev`, each as it was at
 * rev, sorted by key: from the history's events after rev (all retained:
 * the caller checked). *n: how many. */
static struct key_then *list_changed_since(const struct fsm *f,
                                           const Synod__KeyList *q,
                                           uint64_t rev, size_t *n) {
  struct fsm_key_iter it;
  struct fsm_key_event ev;
  struct key_then *t = NULL;
  size_t cap = 0, m = 0;
  fsm_key_iter_seek(f, rev + 1, &it);
  for (uint64_t seq = 0; fsm_key_iter_next(&it, &ev); seq++) {
    if (!list_covers(q, ev.kv.key, ev.kv.key_len)) {
      continue;
    }
    if (m == cap) {
      cap = cap ? 2 * cap : 64;
      t = fsm_xrealloc(t, cap * sizeof *t);
    }
    t[m] = (struct key_then){.kv = ev.has_prev ? ev.prev : ev.kv,
                             .existed = ev.has_prev,
                             .seq = seq};
    m++;
  }
  if (m > 1) {
    qsort(t, m, sizeof *t, then_cmp);
  }
  size_t out = 0;
  for (size_t i = 0; i < m; i++) { /* the first change to each key */
    if (out == 0 || then_key_cmp(&t[out - 1], &t[i]) != 0) {
      t[out++] = t[i];
    }
  }
  *n = out;
  return t;
}

static void kv_then_to_pb(const struct fsm_kv *kv, bool with_value,
                          Synod__KeyValue *pb) {
  synod__key_value__init(pb);
  pb->key.data = (uint8_t *)kv->key;
  pb->key.len = kv->key_len;
  if (with_value) {
    pb->value.data = (uint8_t *)kv->value;
    pb->value.len = kv->value_len;
  }
  pb->create_revision = kv->create_revision;
  pb->mod_revision = kv->mod_revision;
  pb->version = kv->version;
  pb->session_id = kv->session_id;
}

/* Checks a list's revision: 0 (now), the newest, or one whose later
 * changes the history still holds. One after the newest is a bad
 * revision, unless the read is stale: then this replica is behind the
 * one that answered the revision (another replica, or before a
 * failover), and may have it later. */
static int list_revision_check(const struct fsm *f, const Synod__Request *req,
                               const Synod__KeyList *q, struct fsm_reply *r) {
  struct fsm_stream st;
  fsm_key_stream(f, &st);
  if (q->revision > f->key_revision && req->stale) {
    errmsg_set(r->msg,
               "key list: revision %" PRIu64 " is not applied here yet (this "
               "replica is at %" PRIu64 "); retry, or read linearizably",
               q->revision, f->key_revision);
    return SYNOD_EUNAVAILABLE;
  }
  if (q->revision > f->key_revision) {
    errmsg_set(r->msg,
               "key list: revision %" PRIu64 " is after the newest, %" PRIu64,
               q->revision, f->key_revision);
    return SYNOD_EINVAL;
  }
  if (q->revision != 0 && q->revision < f->key_revision &&
      q->revision + 1 < st.first) {
    errmsg_set(r->msg,
               "key list: revision %" PRIu64 " is compacted: the history "
               "holds the changes after %" PRIu64 " on; list again",
               q->revision, st.first - 1);
    r->error.first_available = st.first - 1;
    return SYNOD_ECOMPACTED;
  }
  return 0;
}

int fsm_key_list(struct fsm *f, struct fsm_session *s,
                 const Synod__Request *req, struct fsm_reply *r) {
  const Synod__KeyList *q = req->key_list;
  Synod__KeyListReply *lr = &r->u.key_list;
  (void)s;
  int rv = key_arg(&q->prefix, true, "key list", r->msg);
  if (rv == 0 && q->after.len > FSM_KEY_BYTES_MAX) {
    errmsg_set(r->msg, "key list: after of %zu bytes, over %d", q->after.len,
               FSM_KEY_BYTES_MAX);
    rv = SYNOD_EINVAL;
  }
  if (rv == 0) {
    rv = list_revision_check(f, req, q, r);
  }
  if (rv != 0) {
    return rv;
  }
  uint32_t limit = q->limit ? q->limit : KEY_LIST_DEFAULT;
  limit = limit < f->opt.key_list_max ? limit : f->opt.key_list_max;
  synod__key_list_reply__init(lr);
  lr->revision = f->key_revision;
  /* At a past revision: the keys changed since, as they were then, merge
   * with the keys as they are now that no change touched. */
  size_t then_n = 0, ti = 0;
  struct key_then *then = NULL;
  if (q->revision != 0 && q->revision < f->key_revision) {
    lr->revision = q->revision;
    then = list_changed_since(f, q, q->revision, &then_n);
  }
  size_t cap = 0;
  Synod__KeyValue *kvs = NULL;
  uint64_t bytes = 0;
  struct otree_node *n = list_start(f, q);
  const struct fsm_key *k = list_next(q, &n);
  while (k != NULL || ti < then_n) {
    int c = k == NULL ? 1 : ti == then_n ? -1 : key_then_cmp(k, &then[ti]);
    const struct key_then *t = c >= 0 ? &then[ti] : NULL;
    if (t != NULL && !t->existed) { /* made after the revision */
      ti++;
      k = c == 0 ? list_next(q, &n) : k;
      continue;
    }
    size_t value_len = t ? t->kv.value_len : k->value_len;
    uint64_t size = (uint64_t)(t ? t->kv.key_len : k->key_len) +
                    (q->keys_only ? 0 : value_len);
    if (lr->n_kvs == limit ||
        (lr->n_kvs > 0 && bytes + size > f->opt.key_reply_bytes_max)) {
      lr->more = 1;
      break;
    }
    if (lr->n_kvs == cap) {
      cap = cap ? 2 * cap : 64;
      kvs = fsm_xrealloc(kvs, cap * sizeof *kvs);
    }
    if (t != NULL) {
      kv_then_to_pb(&t->kv, !q->keys_only, &kvs[lr->n_kvs++]);
      ti++;
    } else {
      kv_to_pb(f, k, !q->keys_only, false, &kvs[lr->n_kvs++]);
    }
    if (c <= 0) {
      k = list_next(q, &n);
    }
    bytes += size;
  }
  free(then);
  lr->kvs = fsm_xcalloc(lr->n_kvs, sizeof *lr->kvs);
  for (size_t i = 0; i < lr->n_kvs; i++) {
    lr->kvs[i] = &kvs[i];
  }
  r->scratch = lr->kvs;
  r->scratch2 = kvs;
  r->resp.body_case = SYNOD__RESPONSE__BODY_KEY_LIST;
  r->resp.key_list = lr;
  return 0;
}

/* ----------------------------------------------------------- transactions */

static const char *const branch_names[2] = {"failure", "success"};

/* The key range a write covers: one key, or a prefix. */
static bool op_writes(const Synod__KeyOp *o, const ProtobufCBinaryData **key,
                      bool *prefix) {
  if (o->op_case == SYNOD__KEY_OP__OP_PUT) {
    *key = &o->put->key;
    *prefix = false;
    return true;
  }
  if (o->op_case == SYNOD__KEY_OP__OP_DEL) {
    *key = &o->del->key;
    *prefix = o->del->prefix;
    return true;
  }
  return false;
}

static bool ranges_overlap(const ProtobufCBinaryData *a, bool ap,
                           const ProtobufCBinaryData *b, bool bp) {
  size_t n = a->len < b->len ? a->len : b->len;
  if (!ap && !bp) {
    return a->len == b->len && (n == 0 || memcmp(a->data, b->data, n) == 0);
  }
  if ((ap && a->len > b->len && !bp) || (bp && b->len > a->len && !ap)) {
    return false; /* a prefix longer than the key it would cover */
  }
  return n == 0 || memcmp(a->data, b->data, n) == 0;
}

static int txn_op_arg(const struct fsm *f, const struct fsm_session *s,
                      const Synod__KeyOp *o, const char *what, char *msg) {
  switch (o->op_case) {
  case SYNOD__KEY_OP__OP_PUT:
    return put_arg(f, s, o->put, true, what, msg);
  case SYNOD__KEY_OP__OP_GET:
    return key_arg(&o->get->key, false, what, msg);
  case SYNOD__KEY_OP__OP_DEL:
    return delete_arg(f, o->del, true, what, msg);
  default:
    errmsg_set(msg, "%s: no operation", what);
    return SYNOD_EINVAL;
  }
}

/* One branch: each op valid, and no key written twice. */
static int txn_branch_arg(const struct fsm *f, const struct fsm_session *s,
                          Synod__KeyOp *const *ops, size_t n, int which,
                          char *msg) {
  char what[48];
  if (n > f->opt.key_txn_ops_max) {
    errmsg_set(msg, "key txn: %zu operations in %s, at most %u", n,
               branch_names[which], f->opt.key_txn_ops_max);
    return SYNOD_ELIMIT;
  }
  for (size_t i = 0; i < n; i++) {
    snprintf(what, sizeof what, "key txn: %s op %zu", branch_names[which], i);
    int rv = txn_op_arg(f, s, ops[i], what, msg);
    if (rv != 0) {
      return rv;
    }
    const ProtobufCBinaryData *a, *b;
    bool ap, bp;
    if (!op_writes(ops[i], &a, &ap)) {
      continue;
    }
    for (size_t j = 0; j < i; j++) {
      if (op_writes(ops[j], &b, &bp) && ranges_overlap(a, ap, b, bp)) {
        errmsg_set(msg, "%s writes a key op %zu writes too", what, j);
        return SYNOD_EINVAL;
      }
    }
  }
  return 0;
}

/* The value bytes a get or a prev_kv answers, as the branch will have
 * it by then: writes of earlier ops (never of the same key as a later
 * write) count, reads do not change anything. */
static uint64_t txn_value_at(const struct fsm *f, Synod__KeyOp *const *ops,
                             size_t i, const ProtobufCBinaryData *key) {
  for (size_t j = i; j-- > 0;) {
    const ProtobufCBinaryData *w;
    bool wp;
    if (op_writes(ops[j], &w, &wp) && ranges_overlap(key, false, w, wp)) {
      return ops[j]->op_case == SYNOD__KEY_OP__OP_PUT ? ops[j]->put->value.len
                                                      : 0;
    }
  }
  const struct fsm_key *k = fsm_key_find(f, key->data, key->len);
  return k ? k->value_len : 0;
}

/* What the chosen branch needs: room for its puts, and an answer that
 * fits a frame. */
static int txn_branch_room(const struct fsm *f, Synod__KeyOp *const *ops,
                           size_t n, char *msg) {
  uint64_t creates = 0, answer = 0;
  int64_t bytes = 0;
  for (size_t i = 0; i < n; i++) {
    const Synod__KeyOp *o = ops[i];
    if (o->op_case == SYNOD__KEY_OP__OP_PUT) {
      put_cost(f, o->put, &creates, &bytes);
      answer += o->put->prev_kv ? txn_value_at(f, ops, i, &o->put->key) : 0;
    } else if (o->op_case == SYNOD__KEY_OP__OP_GET) {
      answer += txn_value_at(f, ops, i, &o->get->key);
    } else if (o->del->prev_kv) {
      answer += txn_value_at(f, ops, i, &o->del->key);
    }
  }
  if (answer > f->opt.key_reply_bytes_max) {
    errmsg_set(msg,
               "key txn: its gets and prev_kv would answer %" PRIu64
               " bytes of values, over %u",
               answer, f->opt.key_reply_bytes_max);
    return SYNOD_ETOOBIG;
  }
  return room_check(f, creates, bytes, "key txn", msg);
}

/* The answer of one op, and the messages it points at. */
struct txn_slot {
  Synod__KeyOpResult res;
  union {
    Synod__KeyPutReply put;
    Synod__KeyGetReply get;
    Synod__KeyDeleteReply del;
  } u;
  Synod__KeyValue kv, prev;
};

static void txn_op_apply(struct fsm *f, struct fsm_session *s,
                         const Synod__KeyOp *o, struct txn_slot *x) {
  synod__key_op_result__init(&x->res);
  switch (o->op_case) {
  case SYNOD__KEY_OP__OP_PUT:
    synod__key_put_reply__init(&x->u.put);
    put_apply(f, s, o->put, &x->u.put, &x->kv, &x->prev);
    x->res.result_case = SYNOD__KEY_OP_RESULT__RESULT_PUT;
    x->res.put = &x->u.put;
    break;
  case SYNOD__KEY_OP__OP_GET:
    synod__key_get_reply__init(&x->u.get);
    get_apply(f, o->get, true, &x->u.get, &x->kv);
    x->res.result_case = SYNOD__KEY_OP_RESULT__RESULT_GET;
    x->res.get = &x->u.get;
    break;
  default:
    synod__key_delete_reply__init(&x->u.del);
    delete_apply(f, o->del, &x->u.del, &x->prev);
    x->res.result_case = SYNOD__KEY_OP_RESULT__RESULT_DEL;
    x->res.del = &x->u.del;
    break;
  }
}

/* Every op of the branch answers the transaction's revision. */
static void txn_slot_revision(struct txn_slot *x, uint64_t rev) {
  switch (x->res.result_case) {
  case SYNOD__KEY_OP_RESULT__RESULT_PUT:
    x->u.put.revision = rev;
    break;
  case SYNOD__KEY_OP_RESULT__RESULT_GET:
    x->u.get.revision = rev;
    break;
  default:
    x->u.del.revision = rev;
    break;
  }
}

int fsm_key_txn(struct fsm *f, struct fsm_session *s, const Synod__Request *req,
                struct fsm_reply *r) {
  const Synod__KeyTxn *t = req->key_txn;
  Synod__KeyTxnReply *tr = &r->u.key_txn;
  int rv = compares_arg(f, t->compares, t->n_compares, NULL, "key txn", r->msg);
  if (rv == 0) {
    rv = txn_branch_arg(f, s, t->success, t->n_success, 1, r->msg);
  }
  if (rv == 0) {
    rv = txn_branch_arg(f, s, t->failure, t->n_failure, 0, r->msg);
  }
  if (rv != 0) {
    return rv;
  }
  bool ok = compares_hold(f, t->compares, t->n_compares, NULL);
  Synod__KeyOp *const *ops = ok ? t->success : t->failure;
  size_t n = ok ? t->n_success : t->n_failure;
  rv = txn_branch_room(f, ops, n, r->msg);
  if (rv != 0) {
    return rv;
  }
  synod__key_txn_reply__init(tr);
  tr->succeeded = ok;
  tr->n_results = n;
  tr->results = fsm_xcalloc(n, sizeof *tr->results);
  struct txn_slot *slots = fsm_xcalloc(n, sizeof *slots);
  r->scratch = tr->results;
  r->scratch2 = slots;
  fsm_key_rev_begin(f);
  for (size_t i = 0; i < n; i++) {
    txn_op_apply(f, s, ops[i], &slots[i]);
    tr->results[i] = &slots[i].res;
  }
  uint64_t rev = fsm_key_rev_finish(f);
  tr->revision = rev ? rev : f->key_revision;
  for (size_t i = 0; i < n; i++) {
    txn_slot_revision(&slots[i], tr->revision);
  }
  r->resp.body_case = SYNOD__RESPONSE__BODY_KEY_TXN;
  r->resp.key_txn = tr;
  return 0;
}
