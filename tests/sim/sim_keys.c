/* The key workload (--keys; issue 22): clients put (some bound to their
 * session), compare-and-put on version, mod revision or value, create
 * only, delete (some with a compare), get, and move a value between two
 * keys in a transaction guarded by compares, on 2-3 shared keys so that
 * they contend, while sessions close and expire under the faults.
 *
 * Three checks:
 *
 *   - apply order (sim_keys_apply, on the first replica to apply each
 *     entry): a sequential model of the store, fed the entry's session
 *     ends and request, must agree with the answer (compares held or
 *     not, revision, version, what a transaction's gets saw) and, after
 *     the entry, with the fsm's own view of every key and its revision.
 *     So a transaction's writes land at one revision, all or none, and a
 *     session's bound keys go at the revision of its end, in the entry
 *     that ends it, and not before;
 *   - watches (sim_keys_watch_poll): watchers read replicas' key histories
 *     and each must deliver, revision by revision, exactly the changes the
 *     model made to what it watches: ordered, each once, with no gap
 *     (save below the history's oldest revision, once it fell below);
 *   - client history (sim_keys_check, at the end): each key's operations,
 *     as the clients saw them (an unknown outcome resolved from the log,
 *     a session end at the moment it was first applied), closed by a read
 *     of the final state, are linearizable as a register with
 *     compare-and-set (history_kv_check).
 *
 * Every written value is unique, "v<history op>", so a value names the
 * operation that wrote it. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

#include "fsm.pb-c.h"
#include "synod.h"

#define KEYS_MAX 3
#define ENDS_MAX 4096
#define WATCHERS_MAX 8

/* One key as an answer showed it (or the model holds it). */
struct key_view {
  bool found;
  uint64_t value; /* the op number in "v<n>", + 1; 0 = none */
  uint64_t version;
  uint64_t create;
  uint64_t mod;
  uint64_t session;
  uint64_t deleted;
};

/* An answer: what a client got, or what the first application said. */
struct key_answer {
  bool have;
  int code;
  bool succeeded;
  uint64_t revision;
  struct key_view k[2]; /* per key of the op: a, b */
};

/* One key operation of the history, by history op number. */
struct key_op {
  bool used;
  enum sim_key_kind kind;
  uint32_t a, b; /* keys; b only for MOVE */
  bool bound;
  uint64_t value;                /* written value id (op number + 1) */
  struct history_kv_compare cmp; /* on a (cmp_n 0 or 1) */
  uint32_t cmp_n;
  uint64_t session, sequence;
  uint32_t deleted_mask;  /* DELETE_PREFIX: the keys it deleted (model) */
  struct key_answer seen; /* the client's */
  struct key_answer log;  /* the first application's */
  uint64_t log_clock;     /* history clock when first applied */
};

/* One change the model made at a revision (a revision changes at most
 * every key once). */
struct key_change {
  uint32_t key;
  bool deleted;
  uint64_t value;
  uint64_t version;
  bool has_prev; /* the key existed before: its value and version then */
  uint64_t prev_value;
  uint64_t prev_version;
};

struct key_rev {
  uint32_t n;
  struct key_change c[KEYS_MAX];
};

/* A watcher, modelled as the server's key watches work: a cursor on one
 * replica that delivers that replica's key history (fsm_key_iter) from
 * `next` on, a whole revision at a time, in bounded batches, and moves
 * to another replica now and then (or when its replica goes), resuming
 * at the revision after the last it delivered. */
struct key_watcher {
  bool prefix;  /* every key "k/"; else one key */
  uint32_t key; /* one key's */
  uint32_t replica;
  uint32_t gen;
  uint64_t next; /* the cursor: the next revision to read */
  /* The record the checks use, kept apart from the cursor: the last
   * revision it delivered an event of (start - 1 before any), and the
   * oldest revision of the history when it last fell below it (changes
   * below it may be missed). */
  uint64_t last;
  uint64_t floor;
  uint32_t poll_ms;
  uint32_t batch; /* revisions per poll; push: frames per poll */
  uint32_t move_ppm;
  /* opts.push: a client of the replicas' real key watches (sim_subs.c),
   * as libsynod's: a KeyWatch (prev_kv) on a random serving replica from
   * where it is, frames taken `batch` at a time, credits granted as
   * events are taken, and a new connection elsewhere when the replica
   * crashes, ends or refuses the watch, or at random. A revision's
   * events may come in several frames: they are delivered to the checks
   * once the watch has moved past it. */
  bool push;
  struct sim_conn c;
  uint64_t watch_req; /* the KeyWatch in flight; 0 once answered */
  bool started;       /* answered once: the position is the watch's */
  uint64_t pos_rev;   /* resumes after event pos_event of pos_rev */
  uint32_t pos_event; /* (0: after all of pos_rev) */
  uint64_t retry_ms;  /* no KeyWatch before this (after a refusal) */
  uint64_t cur_rev;   /* the revision being taken; 0: none */
  struct key_change cur[KEYS_MAX + 1];
  uint32_t cur_n;
};

/* What a client thread last saw of a key, for its compares. */
struct key_seen {
  uint64_t value, version, mod;
};

struct sim_keys {
  uint32_t n;      /* keys "k/0".."k/<n-1>" */
  uint32_t weight; /* percent of client operations on keys */
  struct key_op *ops;
  uint32_t ops_cap;
  struct key_seen seen[SIM_CLIENTS_MAX + 1][SIM_THREADS_MAX][KEYS_MAX];
  /* The apply-order model. */
  struct key_view model[KEYS_MAX];
  uint64_t rev;
  struct key_rev *revs; /* revs[r]: what revision r changed */
  uint64_t revs_cap;
  uint64_t history_max; /* fsm key_history_max (0 = the default) */
  struct key_watcher w[WATCHERS_MAX];
  uint32_t w_n;
  bool broken; /* opts.key_break was applied */
  /* Sessions that bound a key, and the history clock of their end. */
  uint64_t bound_sessions[ENDS_MAX];
  uint32_t bound_n;
  uint64_t end_session[ENDS_MAX];
  uint64_t end_clock[ENDS_MAX];
  uint32_t end_n;
  /* A request's messages, valid until the next sim_keys_build. */
  char key[2][8];
  char val[24];
  char cval[24]; /* a VALUE compare's */
  Synod__KeyPut put, put2;
  Synod__KeyGet get, get2;
  Synod__KeyDelete del;
  Synod__KeyTxn txn;
  Synod__KeyCompare cmp[2];
  Synod__KeyCompare *cmpp[2];
  Synod__KeyOp op[4];
  Synod__KeyOp *succ[2], *fail[2];
};

static uint64_t pick(struct sim *s, uint64_t lo, uint64_t hi) {
  return sim_rand_range(&s->rand, lo, hi);
}

static const char *break_names[SIM_KEY_BREAK_COUNT] = {
    "none",       "session-end", "atomic",    "compare",
    "stale-read", "gap",         "duplicate", "agreement"};

const char *sim_key_break_name(uint32_t mode) {
  return mode < SIM_KEY_BREAK_COUNT ? break_names[mode] : NULL;
}

/* True the first time the run's break mode is m: corrupt now. */
static bool brk(struct sim *s, enum sim_key_break m) {
  if (s->opts.key_break != m || s->keys->broken) {
    return false;
  }
  s->keys->broken = true;
  sim_trace(s, 0, "keys: breaking %s on purpose", break_names[m]);
  return true;
}

void sim_keys_pick(struct sim *s) {
  s->keys = calloc(1, sizeof *s->keys);
  if (s->keys == NULL) {
    abort();
  }
  struct sim_keys *ks = s->keys;
  ks->n = (uint32_t)pick(s, 2, KEYS_MAX);
  ks->weight = (uint32_t)pick(s, 40, 80);
  /* Half the seeds keep a short history, so that watchers fall below it. */
  ks->history_max = pick(s, 0, 1) == 0 ? pick(s, 8, 64) : 0;
  ks->w_n = (uint32_t)pick(s, 2, WATCHERS_MAX);
  for (uint32_t i = 0; i < ks->w_n; i++) {
    struct key_watcher *w = &ks->w[i];
    bool slow = pick(s, 0, 2) == 0;
    w->prefix = i % 2 == 0;
    w->key = (uint32_t)pick(s, 0, ks->n - 1);
    w->next = pick(s, 0, 3) == 0 ? pick(s, 1, 200) : 1;
    w->last = w->next - 1;
    w->poll_ms = slow ? (uint32_t)pick(s, 200, 2000) : (uint32_t)pick(s, 5, 60);
    w->batch = slow ? (uint32_t)pick(s, 1, 3) : (uint32_t)pick(s, 4, 100);
    w->move_ppm =
        pick(s, 0, 1) == 0
            ? 0
            : (uint32_t)(w->poll_ms * 1000000ull / pick(s, 300, 10000));
    if (s->opts.push) { /* drawn last: the other draws stay the seed's */
      w->push = true;
      w->c.window = slow ? (uint32_t)pick(s, 1, 4) : (uint32_t)pick(s, 4, 300);
    }
  }
}

struct sim_conn *sim_keys_conn(struct sim *s, uint32_t i) {
  return s->keys != NULL && i < s->keys->w_n ? &s->keys->w[i].c : NULL;
}

uint64_t sim_keys_history_max(const struct sim *s) {
  return s->keys != NULL ? s->keys->history_max : 0;
}

void sim_keys_init(struct sim *s) {
  for (uint32_t i = 0; s->keys != NULL && i < s->keys->w_n; i++) {
    sim_schedule(s, s->now_ms + s->keys->w[i].poll_ms, SIM_EV_WATCH, i, NULL);
  }
}

void sim_keys_free(struct sim *s) {
  if (s->keys != NULL) {
    for (uint32_t i = 0; i < s->keys->w_n; i++) {
      sim_conn_free(&s->keys->w[i].c);
    }
    free(s->keys->ops);
    free(s->keys->revs);
    free(s->keys);
    s->keys = NULL;
  }
}

bool sim_keys_is_read(const struct sim_op_spec *sp) {
  return sp->type == SIM_OP_KEY && sp->a1 == SIM_KEY_GET;
}

/* ------------------------------------------------------------ workload */

bool sim_keys_op_pick(struct sim *s, struct sim_op_spec *sp) {
  struct sim_keys *ks = s->keys;
  if (ks == NULL || pick(s, 0, 99) >= ks->weight) {
    return false;
  }
  sp->type = SIM_OP_KEY;
  sp->name = (uint32_t)pick(s, 0, ks->n - 1);
  sp->a1 = (int64_t)pick(s, 0, SIM_KEY_KINDS - 1);
  if (sp->a1 == SIM_KEY_DELETE_PREFIX && pick(s, 0, 3) != 0) {
    sp->a1 = SIM_KEY_DELETE; /* a prefix delete wipes every key: rarer */
  }
  sp->a2 = (int64_t)((sp->name + pick(s, 1, ks->n - 1)) % ks->n);
  return true;
}

static struct key_op *op_at(struct sim_keys *ks, uint32_t h) {
  if (h >= ks->ops_cap) {
    uint32_t cap = ks->ops_cap ? ks->ops_cap : 256;
    while (cap <= h) {
      cap *= 2;
    }
    ks->ops = realloc(ks->ops, cap * sizeof *ks->ops);
    if (ks->ops == NULL) {
      abort();
    }
    memset(ks->ops + ks->ops_cap, 0, (cap - ks->ops_cap) * sizeof *ks->ops);
    ks->ops_cap = cap;
  }
  return &ks->ops[h];
}

/* vbuf: 24 bytes for a VALUE compare's value. */
static void compare_set(Synod__KeyCompare *c, const char *key,
                        const struct history_kv_compare *h, char *vbuf) {
  synod__key_compare__init(c);
  c->key.data = (uint8_t *)key;
  c->key.len = key != NULL ? strlen(key) : 0;
  c->target = (Synod__KeyCompare__Target)h->target;
  c->op = (Synod__KeyCompare__Op)h->cmp;
  if (h->target == HISTORY_KV_VALUE) {
    snprintf(vbuf, 24, "v%" PRIu64, h->number - 1);
    c->value.data = (uint8_t *)vbuf;
    c->value.len = strlen(vbuf);
  } else {
    c->number = h->number;
  }
}

/* The compare of a conditional op, from what the thread last saw. */
static void compare_pick(struct sim *s, struct key_op *o,
                         const struct key_seen *w) {
  o->cmp_n = 1;
  switch (o->kind) {
  case SIM_KEY_CREATE:
    o->cmp = (struct history_kv_compare){.target = HISTORY_KV_VERSION};
    break;
  case SIM_KEY_CAS_VERSION:
  case SIM_KEY_CAS_DELETE:
    o->cmp = (struct history_kv_compare){
        .target = HISTORY_KV_VERSION,
        .number = pick(s, 0, 3) == 0 ? pick(s, 0, 3) : w->version};
    break;
  case SIM_KEY_CAS_MOD:
    o->cmp = (struct history_kv_compare){
        .target = HISTORY_KV_MOD_REVISION,
        .cmp = pick(s, 0, 4) == 0 ? HISTORY_KV_LESS : HISTORY_KV_EQUAL,
        .number = w->mod + (pick(s, 0, 4) == 0)};
    break;
  case SIM_KEY_CAS_VALUE:
  case SIM_KEY_MOVE:
    o->cmp = (struct history_kv_compare){
        .target = HISTORY_KV_VALUE,
        .cmp = pick(s, 0, 5) == 0 ? HISTORY_KV_NOT_EQUAL : HISTORY_KV_EQUAL,
        .number = w->value ? w->value : 1};
    break;
  default:
    o->cmp_n = 0;
  }
}

static void build_txn(struct sim_keys *ks, struct key_op *o,
                      Synod__Request *req) {
  /* a's value is what the thread saw, b does not exist: delete a, put
   * b; else read both. */
  struct history_kv_compare none = {.target = HISTORY_KV_VERSION};
  synod__key_txn__init(&ks->txn);
  compare_set(&ks->cmp[0], ks->key[0], &o->cmp, ks->cval);
  compare_set(&ks->cmp[1], ks->key[1], &none, NULL);
  ks->cmpp[0] = &ks->cmp[0];
  ks->cmpp[1] = &ks->cmp[1];
  ks->txn.n_compares = 2;
  ks->txn.compares = ks->cmpp;
  synod__key_delete__init(&ks->del);
  ks->del.key.data = (uint8_t *)ks->key[0];
  ks->del.key.len = strlen(ks->key[0]);
  ks->put.key.data = (uint8_t *)ks->key[1];
  ks->put.key.len = strlen(ks->key[1]);
  synod__key_get__init(&ks->get);
  synod__key_get__init(&ks->get2);
  ks->get.key = ks->del.key;
  ks->get2.key = ks->put.key;
  for (int i = 0; i < 4; i++) {
    synod__key_op__init(&ks->op[i]);
  }
  ks->op[0].op_case = SYNOD__KEY_OP__OP_DEL;
  ks->op[0].del = &ks->del;
  ks->op[1].op_case = SYNOD__KEY_OP__OP_PUT;
  ks->op[1].put = &ks->put;
  ks->op[2].op_case = SYNOD__KEY_OP__OP_GET;
  ks->op[2].get = &ks->get;
  ks->op[3].op_case = SYNOD__KEY_OP__OP_GET;
  ks->op[3].get = &ks->get2;
  ks->succ[0] = &ks->op[0];
  ks->succ[1] = &ks->op[1];
  ks->fail[0] = &ks->op[2];
  ks->fail[1] = &ks->op[3];
  ks->txn.n_success = ks->txn.n_failure = 2;
  ks->txn.success = ks->succ;
  ks->txn.failure = ks->fail;
  req->body_case = SYNOD__REQUEST__BODY_KEY_TXN;
  req->key_txn = &ks->txn;
}

static void build_delete(struct sim_keys *ks, const struct key_op *o,
                         Synod__Request *req) {
  synod__key_delete__init(&ks->del);
  ks->del.key.data = (uint8_t *)ks->key[0];
  ks->del.key.len = strlen(ks->key[0]);
  if (o->kind == SIM_KEY_DELETE_PREFIX) {
    ks->del.key.data = (uint8_t *)"k/";
    ks->del.key.len = 2;
    ks->del.prefix = true;
  }
  if (o->cmp_n > 0) {
    compare_set(&ks->cmp[0], NULL, &o->cmp, ks->cval);
    ks->cmpp[0] = &ks->cmp[0];
    ks->del.n_compares = 1;
    ks->del.compares = ks->cmpp;
  }
  req->body_case = SYNOD__REQUEST__BODY_KEY_DELETE;
  req->key_delete = &ks->del;
}

void sim_keys_build(struct sim *s, uint32_t client, uint32_t t,
                    const struct sim_op_spec *sp, Synod__Request *req) {
  struct sim_keys *ks = s->keys;
  uint32_t h = s->hops_n; /* the history op hop_new makes next */
  struct key_op *o = op_at(ks, h);
  *o = (struct key_op){.used = true,
                       .kind = (enum sim_key_kind)sp->a1,
                       .a = sp->name,
                       .b = (uint32_t)sp->a2,
                       .value = h + 1,
                       .session = req->session_id,
                       .sequence = req->sequence};
  o->bound = (o->kind == SIM_KEY_PUT || o->kind == SIM_KEY_CREATE) &&
             pick(s, 0, 1) == 0;
  compare_pick(s, o, &ks->seen[client][t][o->a]);
  snprintf(ks->key[0], sizeof ks->key[0], "k/%" PRIu32, o->a);
  snprintf(ks->key[1], sizeof ks->key[1], "k/%" PRIu32, o->b);
  snprintf(ks->val, sizeof ks->val, "v%" PRIu32, h);
  synod__key_put__init(&ks->put);
  ks->put.value.data = (uint8_t *)ks->val;
  ks->put.value.len = strlen(ks->val);
  switch (o->kind) {
  case SIM_KEY_GET:
    synod__key_get__init(&ks->get);
    ks->get.key.data = (uint8_t *)ks->key[0];
    ks->get.key.len = strlen(ks->key[0]);
    req->body_case = SYNOD__REQUEST__BODY_KEY_GET;
    req->key_get = &ks->get;
    break;
  case SIM_KEY_DELETE:
  case SIM_KEY_CAS_DELETE:
  case SIM_KEY_DELETE_PREFIX:
    build_delete(ks, o, req);
    break;
  case SIM_KEY_MOVE:
    o->bound = false;
    build_txn(ks, o, req);
    break;
  default:
    ks->put.key.data = (uint8_t *)ks->key[0];
    ks->put.key.len = strlen(ks->key[0]);
    ks->put.session_bound = o->bound;
    if (o->cmp_n > 0) {
      compare_set(&ks->cmp[0], NULL, &o->cmp, ks->cval);
      ks->cmpp[0] = &ks->cmp[0];
      ks->put.n_compares = 1;
      ks->put.compares = ks->cmpp;
    }
    req->body_case = SYNOD__REQUEST__BODY_KEY_PUT;
    req->key_put = &ks->put;
  }
  if (o->bound && ks->bound_n < ENDS_MAX &&
      (ks->bound_n == 0 ||
       ks->bound_sessions[ks->bound_n - 1] != req->session_id)) {
    ks->bound_sessions[ks->bound_n++] = req->session_id;
  }
}

/* ------------------------------------------------------------- answers */

/* "v<n>" -> n + 1; 0 for none, UINT64_MAX for a value of no op's. */
static uint64_t value_bytes_id(const uint8_t *data, size_t len) {
  char buf[24];
  unsigned long long n;
  if (len == 0 || len >= sizeof buf) {
    return 0;
  }
  memcpy(buf, data, len);
  buf[len] = '\0';
  return sscanf(buf, "v%llu", &n) == 1 ? (uint64_t)n + 1 : UINT64_MAX;
}

static uint64_t value_id(ProtobufCBinaryData v) {
  return value_bytes_id(v.data, v.len);
}

static void view_of(struct key_view *v, const Synod__KeyValue *kv) {
  *v = (struct key_view){0};
  if (kv != NULL) {
    *v = (struct key_view){.found = true,
                           .value = value_id(kv->value),
                           .version = kv->version,
                           .create = kv->create_revision,
                           .mod = kv->mod_revision,
                           .session = kv->session_id};
  }
}

static void result_of(struct key_view *v, const Synod__KeyOpResult *r,
                      bool *succeeded) {
  *v = (struct key_view){0};
  if (r == NULL) {
    return;
  }
  switch (r->result_case) {
  case SYNOD__KEY_OP_RESULT__RESULT_PUT:
    view_of(v, r->put->kv);
    *succeeded = *succeeded && r->put->succeeded;
    break;
  case SYNOD__KEY_OP_RESULT__RESULT_GET:
    view_of(v, r->get->found ? r->get->kv : NULL);
    break;
  case SYNOD__KEY_OP_RESULT__RESULT_DEL:
    v->deleted = r->del->deleted;
    break;
  default:
    break;
  }
}

static void answer_of(struct key_answer *a, const Synod__Response *resp) {
  *a = (struct key_answer){.have = true};
  if (resp->error != NULL) {
    a->code = (int)resp->error->code;
    return;
  }
  switch (resp->body_case) {
  case SYNOD__RESPONSE__BODY_KEY_PUT:
    a->succeeded = resp->key_put->succeeded;
    a->revision = resp->key_put->revision;
    view_of(&a->k[0], resp->key_put->kv);
    break;
  case SYNOD__RESPONSE__BODY_KEY_GET:
    a->succeeded = true;
    a->revision = resp->key_get->revision;
    view_of(&a->k[0], resp->key_get->found ? resp->key_get->kv : NULL);
    break;
  case SYNOD__RESPONSE__BODY_KEY_DELETE:
    a->succeeded = resp->key_delete->succeeded;
    a->revision = resp->key_delete->revision;
    a->k[0].deleted = resp->key_delete->deleted;
    break;
  case SYNOD__RESPONSE__BODY_KEY_TXN: {
    const Synod__KeyTxnReply *t = resp->key_txn;
    bool ok = true;
    a->succeeded = t->succeeded;
    a->revision = t->revision;
    for (size_t i = 0; i < 2; i++) {
      result_of(&a->k[i], i < t->n_results ? t->results[i] : NULL, &ok);
    }
    break;
  }
  default:
    a->code = -2; /* an answer of another kind */
  }
}

/* The thread remembers what it saw of its keys, for later compares. */
static void seen_note(struct key_seen *w, const struct key_view *v) {
  *w = (struct key_seen){
      .value = v->found ? v->value : 0, .version = v->version, .mod = v->mod};
}

void sim_keys_result(struct sim *s, uint32_t client, uint32_t t, uint32_t hop,
                     const Synod__Response *resp) {
  struct sim_keys *ks = s->keys;
  struct key_op *o = op_at(ks, hop);
  answer_of(&o->seen, resp);
  if (o->seen.code != 0) {
    return;
  }
  /* A write is answered after it was applied, as it was applied first. */
  if (o->kind != SIM_KEY_GET && (!o->log.have || o->log.code != 0 ||
                                 o->log.succeeded != o->seen.succeeded ||
                                 o->log.revision != o->seen.revision)) {
    sim_fail(s,
             "keys: c%" PRIu32 "/t%" PRIu32 " is answered op %" PRIu32
             " (succeeded %d, revision %" PRIu64 ") but the log %s",
             client, t, hop, o->seen.succeeded, o->seen.revision,
             o->log.have ? "answered it otherwise" : "never applied it");
    return;
  }
  if (o->kind == SIM_KEY_MOVE) {
    if (!o->seen.succeeded) {
      seen_note(&ks->seen[client][t][o->a], &o->seen.k[0]);
      seen_note(&ks->seen[client][t][o->b], &o->seen.k[1]);
    }
  } else if (o->kind != SIM_KEY_DELETE && o->kind != SIM_KEY_CAS_DELETE &&
             o->kind != SIM_KEY_DELETE_PREFIX) {
    if (o->seen.k[0].found && o->seen.k[0].value == 0 && o->seen.succeeded) {
      o->seen.k[0].value = o->value; /* put answers carry no value */
    }
    seen_note(&ks->seen[client][t][o->a], &o->seen.k[0]);
  }
}

/* ------------------------------------------------- the apply-order model */

static bool model_holds(const struct key_view *k,
                        const struct history_kv_compare *c) {
  uint64_t have = 0;
  switch (c->target) {
  case HISTORY_KV_VERSION:
    have = k->version;
    break;
  case HISTORY_KV_CREATE_REVISION:
    have = k->create;
    break;
  case HISTORY_KV_MOD_REVISION:
    have = k->mod;
    break;
  case HISTORY_KV_SESSION:
    have = k->session;
    break;
  case HISTORY_KV_VALUE:
    if (!k->found) {
      return false;
    }
    have = k->value;
    break;
  }
  switch (c->cmp) {
  case HISTORY_KV_EQUAL:
    return have == c->number;
  case HISTORY_KV_NOT_EQUAL:
    return have != c->number;
  case HISTORY_KV_LESS:
    return have < c->number;
  case HISTORY_KV_GREATER:
    return have > c->number;
  }
  return false;
}

/* Notes that revision rev changed key i (as the model now holds it). */
static void rev_note(struct sim_keys *ks, uint64_t rev, uint32_t i,
                     const struct key_view *before) {
  if (rev >= ks->revs_cap) {
    uint64_t cap = ks->revs_cap ? ks->revs_cap * 2 : 1024;
    while (cap <= rev) {
      cap *= 2;
    }
    ks->revs = realloc(ks->revs, cap * sizeof *ks->revs);
    if (ks->revs == NULL) {
      abort();
    }
    memset(ks->revs + ks->revs_cap, 0, (cap - ks->revs_cap) * sizeof *ks->revs);
    ks->revs_cap = cap;
  }
  struct key_rev *r = &ks->revs[rev];
  const struct key_view *k = &ks->model[i];
  if (r->n < KEYS_MAX) {
    r->c[r->n++] = (struct key_change){.key = i,
                                       .deleted = !k->found,
                                       .value = k->value,
                                       .version = k->version,
                                       .has_prev = before->found,
                                       .prev_value = before->value,
                                       .prev_version = before->version};
  }
}

static void model_put(struct key_view *k, uint64_t value, uint64_t rev,
                      uint64_t session) {
  k->version = k->found ? k->version + 1 : 1;
  k->create = k->found ? k->create : rev;
  k->found = true;
  k->value = value;
  k->mod = rev;
  k->session = session;
}

static bool view_eq(const struct key_view *a, const struct key_view *b) {
  return a->found == b->found &&
         (!a->found || (a->value == b->value && a->version == b->version &&
                        a->create == b->create && a->mod == b->mod &&
                        a->session == b->session));
}

static void view_str(const struct key_view *v, char *buf, size_t n) {
  if (!v->found) {
    snprintf(buf, n, "absent");
    return;
  }
  snprintf(buf, n,
           "v%" PRId64 " version %" PRIu64 " create %" PRIu64 " mod %" PRIu64
           " session %" PRIu64,
           (int64_t)v->value - 1, v->version, v->create, v->mod, v->session);
}

/* A session ended in this entry: its bound keys go at one new revision. */
static void model_end(struct sim *s, uint64_t index, uint64_t session) {
  struct sim_keys *ks = s->keys;
  bool any = false;
  for (uint32_t i = 0; i < ks->n; i++) {
    if (ks->model[i].found && ks->model[i].session == session) {
      any = true;
    }
  }
  if (any && brk(s, SIM_KEY_BREAK_SESSION_END)) {
    any = false;
  }
  if (any) {
    ks->rev++;
    for (uint32_t i = 0; i < ks->n; i++) {
      if (ks->model[i].found && ks->model[i].session == session) {
        struct key_view before = ks->model[i];
        ks->model[i] = (struct key_view){0};
        rev_note(ks, ks->rev, i, &before);
      }
    }
  }
  if (ks->end_n < ENDS_MAX) {
    ks->end_session[ks->end_n] = session;
    ks->end_clock[ks->end_n++] = ++s->hist_clock;
  }
  sim_trace(s, 0, "keys: entry %" PRIu64 " ends session %" PRIu64 "%s", index,
            session, any ? ", deleting its keys" : "");
}

/* The op of history this request is, if it is one. */
static struct key_op *op_of(struct sim_keys *ks, const Synod__Request *req) {
  for (uint32_t i = ks->ops_cap; i-- > 0;) {
    struct key_op *o = &ks->ops[i];
    if (o->used && o->session == req->session_id &&
        o->sequence == req->sequence && req->sequence != 0) {
      return o;
    }
  }
  return NULL;
}

/* A prefix delete: every key at one revision (or none, using none). */
static void model_delete_prefix(struct sim *s, uint64_t index, struct key_op *o,
                                const struct key_answer *a) {
  struct sim_keys *ks = s->keys;
  uint64_t n = 0;
  for (uint32_t i = 0; i < ks->n; i++) {
    if (ks->model[i].found) {
      o->deleted_mask |= 1u << i;
      n++;
    }
  }
  ks->rev += n > 0;
  for (uint32_t i = 0; i < ks->n; i++) {
    if (o->deleted_mask & (1u << i)) {
      struct key_view before = ks->model[i];
      ks->model[i] = (struct key_view){0};
      rev_note(ks, ks->rev, i, &before);
    }
  }
  if (a->k[0].deleted != n || a->revision != ks->rev) {
    sim_fail(s,
             "keys: entry %" PRIu64 " deletes the prefix k/: %" PRIu64
             " keys at revision %" PRIu64 ", the model says %" PRIu64
             " at %" PRIu64,
             index, a->k[0].deleted, a->revision, n, ks->rev);
  }
}

/* Checks the answer of a fresh write against the model and applies it. */
/* The compares held: applies the op at the next revision and checks
 * what the answer says it did. */
static void model_apply(struct sim *s, uint64_t index, struct key_op *o,
                        const struct key_answer *a) {
  struct sim_keys *ks = s->keys;
  struct key_view *ka = &ks->model[o->a], *kb = &ks->model[o->b];
  struct key_view before_a = *ka, before_b = *kb;
  uint64_t rev = ks->rev + 1;
  bool changed = true;
  switch (o->kind) {
  case SIM_KEY_MOVE:
    if (!brk(s, SIM_KEY_BREAK_ATOMIC)) {
      *ka = (struct key_view){0};
    }
    model_put(kb, o->value, rev, 0);
    break;
  case SIM_KEY_DELETE:
  case SIM_KEY_CAS_DELETE:
    changed = ka->found;
    if (a->k[0].deleted != (changed ? 1u : 0u)) {
      sim_fail(s, "keys: entry %" PRIu64 " deletes %" PRIu64 " keys of 1",
               index, a->k[0].deleted);
    }
    *ka = (struct key_view){0};
    break;
  default:
    model_put(ka, o->value, rev, o->bound ? o->session : 0);
    if (a->k[0].version != ka->version) {
      sim_fail(s,
               "keys: entry %" PRIu64 " puts k/%" PRIu32 " at version %" PRIu64
               ", the model says %" PRIu64,
               index, o->a, a->k[0].version, ka->version);
    }
  }
  ks->rev += changed;
  if (changed) {
    rev_note(ks, ks->rev, o->a, &before_a);
  }
  if (o->kind == SIM_KEY_MOVE) {
    rev_note(ks, ks->rev, o->b, &before_b);
  }
}

/* Checks the answer of a fresh write against the model and applies it. */
static void model_write(struct sim *s, uint64_t index, struct key_op *o,
                        const struct key_answer *a) {
  struct sim_keys *ks = s->keys;
  const struct key_view *ka = &ks->model[o->a], *kb = &ks->model[o->b];
  bool hold = o->cmp_n == 0 || model_holds(ka, &o->cmp);
  if (o->cmp_n > 0 && o->kind != SIM_KEY_MOVE && a->code == 0 &&
      brk(s, SIM_KEY_BREAK_COMPARE)) {
    hold = !hold;
  }
  if (o->kind == SIM_KEY_MOVE) {
    hold = hold && !kb->found;
  }
  if (a->code != 0) {
    return; /* refused: changes nothing (checked by the fsm view) */
  }
  if (hold != a->succeeded) {
    sim_fail(s,
             "keys: entry %" PRIu64 " (op %" PRIu64 ", kind %d): the compare "
             "%s by the model, but the answer says succeeded = %d",
             index, o->value - 1, (int)o->kind, hold ? "holds" : "fails",
             a->succeeded);
    return;
  }
  if (o->kind == SIM_KEY_DELETE_PREFIX) {
    model_delete_prefix(s, index, o, a);
    return;
  }
  if (!hold && o->kind == SIM_KEY_MOVE &&
      (!view_eq(&a->k[0], ka) || !view_eq(&a->k[1], kb))) {
    sim_fail(s,
             "keys: entry %" PRIu64 ": a transaction's gets do not see "
             "the keys as the model holds them",
             index);
  } else if (!hold && o->kind != SIM_KEY_MOVE && a->k[0].found &&
             a->k[0].version != ka->version) {
    sim_fail(s,
             "keys: entry %" PRIu64 ": a refused compare answers k/%" PRIu32
             " at version %" PRIu64 ", the model holds %" PRIu64,
             index, o->a, a->k[0].version, ka->version);
  }
  if (hold) {
    model_apply(s, index, o, a);
  }
  if (a->revision != ks->rev) {
    sim_fail(s,
             "keys: entry %" PRIu64 " answers revision %" PRIu64
             ", the model's is %" PRIu64,
             index, a->revision, ks->rev);
  }
}

static void fsm_view(struct sim *s, const struct fsm *f, uint32_t i,
                     struct key_view *v) {
  char key[8];
  uint8_t *data;
  size_t len;
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__KeyGet get = SYNOD__KEY_GET__INIT;
  snprintf(key, sizeof key, "k/%" PRIu32, i);
  get.key.data = (uint8_t *)key;
  get.key.len = strlen(key);
  req.body_case = SYNOD__REQUEST__BODY_KEY_GET;
  req.key_get = &get;
  req.stale = true;
  *v = (struct key_view){0};
  if (fsm_query(f, &req, &data, &len) != 0) {
    sim_fail(s, "keys: fsm_query refused a KeyGet");
    return;
  }
  Synod__Response *r = synod__response__unpack(NULL, len, data);
  free(data);
  if (r != NULL && r->body_case == SYNOD__RESPONSE__BODY_KEY_GET &&
      r->key_get->found) {
    view_of(v, r->key_get->kv);
  }
  synod__response__free_unpacked(r, NULL);
}

/* After the entry: the fsm's revision and keys are the model's. */
static void model_compare(struct sim *s, const struct fsm *f, uint64_t index) {
  struct sim_keys *ks = s->keys;
  if (fsm_key_revision(f) != ks->rev) {
    sim_fail(s,
             "keys: after entry %" PRIu64 " the fsm is at revision %" PRIu64
             ", the model at %" PRIu64,
             index, fsm_key_revision(f), ks->rev);
    return;
  }
  for (uint32_t i = 0; i < ks->n && !s->failed; i++) {
    struct key_view v;
    char a[128], b[128];
    fsm_view(s, f, i, &v);
    if (!view_eq(&v, &ks->model[i])) {
      view_str(&v, a, sizeof a);
      view_str(&ks->model[i], b, sizeof b);
      sim_fail(s,
               "keys: after entry %" PRIu64 " the fsm holds k/%" PRIu32
               " as %s, the model as %s",
               index, i, a, b);
    }
  }
}

void sim_keys_apply(struct sim *s, const struct fsm *f, uint64_t index,
                    const uint8_t *data, size_t len,
                    const struct fsm_output *out) {
  struct sim_keys *ks = s->keys;
  if (ks == NULL || s->failed) {
    return;
  }
  Synod__Fsm__Command *cmd = synod__fsm__command__unpack(NULL, len, data);
  const Synod__Request *req =
      cmd != NULL && cmd->body_case == SYNOD__FSM__COMMAND__BODY_REQUEST
          ? cmd->request
          : NULL;
  Synod__Response *resp = NULL;
  if (out->has_response && !out->response.pending) {
    resp = synod__response__unpack(NULL, out->response.len, out->response.data);
  }
  for (size_t i = 0; i < out->events_len; i++) {
    if (out->events[i].type == FSM_EVENT_SESSION_EXPIRED) {
      model_end(s, index, out->events[i].session_id);
    }
  }
  if (req != NULL && resp != NULL &&
      req->body_case == SYNOD__REQUEST__BODY_SESSION_CLOSE &&
      resp->error == NULL) {
    model_end(s, index, req->session_id);
  }
  struct key_op *o = req != NULL && resp != NULL ? op_of(ks, req) : NULL;
  if (o != NULL && o->kind != SIM_KEY_GET) {
    struct key_answer a;
    answer_of(&a, resp);
    if (!o->log.have && a.code != SYNOD_ESEQUENCE) {
      o->log = a;
      o->log_clock = ++s->hist_clock;
      model_write(s, index, o, &a);
    } else if (o->log.have && a.code != SYNOD_ESEQUENCE &&
               a.code != SYNOD_ESESSION &&
               (a.code != o->log.code || a.succeeded != o->log.succeeded ||
                a.revision != o->log.revision)) {
      sim_fail(s,
               "keys: entry %" PRIu64 " retries op %" PRIu64
               " and is answered (code %d, succeeded %d, revision %" PRIu64
               ") otherwise than the first time (%d, %d, %" PRIu64 ")",
               index, o->value - 1, a.code, a.succeeded, a.revision,
               o->log.code, o->log.succeeded, o->log.revision);
    }
  }
  if (!s->failed) {
    model_compare(s, f, index);
  }
  synod__response__free_unpacked(resp, NULL);
  synod__fsm__command__free_unpacked(cmd, NULL);
}

/* ------------------------------------------------------------ watchers */

static bool replica_serves(const struct sim *s, uint32_t r) {
  return r >= 1 && r <= s->ids_n && s->r[r].up && !s->r[r].retired &&
         s->r[r].srv.fsm != NULL;
}

/* Moves w to a random serving replica (another than its own if there is
 * one); false if none serves. */
static bool watcher_attach(struct sim *s, struct key_watcher *w) {
  uint32_t ids[SIM_IDS_MAX], n = 0;
  for (uint32_t r = 1; r <= s->ids_n; r++) {
    if (replica_serves(s, r) && r != w->replica) {
      ids[n++] = r;
    }
  }
  if (n == 0) {
    return replica_serves(s, w->replica) && s->r[w->replica].gen == w->gen;
  }
  w->replica = ids[pick(s, 0, n - 1)];
  w->gen = s->r[w->replica].gen;
  return true;
}

static uint32_t key_number(const struct fsm_kv *kv) {
  unsigned n;
  char buf[16];
  if (kv->key_len == 0 || kv->key_len >= sizeof buf) {
    return UINT32_MAX;
  }
  memcpy(buf, kv->key, kv->key_len);
  buf[kv->key_len] = '\0';
  return sscanf(buf, "k/%u", &n) == 1 ? n : UINT32_MAX;
}

/* Same change, previous value included. */
static bool change_eq(const struct key_change *a, const struct key_change *b) {
  return a->key == b->key && a->deleted == b->deleted &&
         (a->deleted || (a->value == b->value && a->version == b->version)) &&
         a->has_prev == b->has_prev &&
         (!a->has_prev || (a->prev_value == b->prev_value &&
                           a->prev_version == b->prev_version));
}

/* The events a watcher got for revision rev (those of its keys) against
 * what the model made at rev. */
static void watch_agree(struct sim *s, uint32_t id, const struct key_watcher *w,
                        uint64_t rev, const struct key_change *got,
                        uint32_t got_n) {
  struct sim_keys *ks = s->keys;
  const struct key_rev *r = rev < ks->revs_cap ? &ks->revs[rev] : NULL;
  uint32_t want = 0;
  for (uint32_t i = 0; r != NULL && i < r->n; i++) {
    const struct key_change *c = &r->c[i];
    bool found = false;
    if (!w->prefix && c->key != w->key) {
      continue;
    }
    want++;
    for (uint32_t j = 0; j < got_n; j++) {
      found = found || change_eq(&got[j], c);
    }
    if (!found) {
      sim_fail(s,
               "watch: w%" PRIu32 " on r%" PRIu32 " delivers revision %" PRIu64
               " without the %s of k/%" PRIu32
               " the writes made (or with another previous value)",
               id, w->replica, rev, c->deleted ? "delete" : "put", c->key);
      return;
    }
  }
  if (want != got_n) {
    sim_fail(s,
             "watch: w%" PRIu32 " on r%" PRIu32 " delivers %" PRIu32
             " events at revision %" PRIu64 " where the writes made %" PRIu32,
             id, w->replica, got_n, rev, want);
  }
}

/* Gap-free: the writes made no change the watcher follows between its
 * last delivery (or the history's oldest, if it fell below) and `to`. */
static void watch_no_skip(struct sim *s, uint32_t id,
                          const struct key_watcher *w, uint64_t to) {
  struct sim_keys *ks = s->keys;
  uint64_t from = w->last + 1 > w->floor ? w->last + 1 : w->floor;
  for (uint64_t r = from; r < to && r < ks->revs_cap; r++) {
    for (uint32_t i = 0; i < ks->revs[r].n; i++) {
      if (w->prefix || ks->revs[r].c[i].key == w->key) {
        sim_fail(s,
                 "watch: w%" PRIu32 " on r%" PRIu32 " skips revision %" PRIu64
                 " (k/%" PRIu32 "): it delivered %" PRIu64 ", then %" PRIu64,
                 id, w->replica, r, ks->revs[r].c[i].key, w->last, to);
        return;
      }
    }
  }
}

/* The watcher delivers the events got[0..n) of revision rev: in order,
 * once, with no gap, as the writes made them. */
static void watch_deliver(struct sim *s, uint32_t id, struct key_watcher *w,
                          uint64_t rev, const struct key_change *got,
                          uint32_t n) {
  if (rev <= w->last) {
    sim_fail(s,
             "watch: w%" PRIu32 " on r%" PRIu32 " delivers revision %" PRIu64
             " after %" PRIu64 " (a duplicate or out of order)",
             id, w->replica, rev, w->last);
    return;
  }
  watch_no_skip(s, id, w, rev);
  if (!s->failed) {
    watch_agree(s, id, w, rev, got, n);
  }
  w->last = rev;
  s->stats.key_events_watched += n;
}

/* Reads up to `batch` revisions of f's key history from w->next. */
static void watch_read(struct sim *s, uint32_t id, struct key_watcher *w,
                       const struct fsm *f, uint64_t batch) {
  struct fsm_stream st;
  struct fsm_key_iter it;
  struct fsm_key_event ev;
  struct key_change got[KEYS_MAX + 1];
  uint32_t got_n = 0;
  uint64_t rev = 0, done = 0;
  fsm_key_stream(f, &st);
  fsm_key_iter_seek(f, w->next, &it);
  if (w->next < st.first && fsm_key_revision(f) >= st.first) {
    /* SYNOD_ECOMPACTED: the watcher goes on from the oldest. */
    s->stats.key_compactions++;
    w->floor = st.first;
  }
  for (;;) {
    bool more = fsm_key_iter_next(&it, &ev);
    if (rev != 0 && (!more || ev.revision != rev)) {
      if (got_n > 0) {
        watch_deliver(s, id, w, rev, got, got_n);
      }
      w->next = rev + 1;
      got_n = 0;
      if (++done >= batch) {
        return;
      }
    }
    if (!more || s->failed) {
      return;
    }
    if (ev.revision != rev) {
      rev = ev.revision;
    }
    uint32_t key = key_number(&ev.kv);
    if ((w->prefix || key == w->key) && got_n <= KEYS_MAX) {
      got[got_n++] = (struct key_change){
          .key = key,
          .deleted = ev.deleted,
          .value =
              ev.deleted ? 0 : value_bytes_id(ev.kv.value, ev.kv.value_len),
          .version = ev.kv.version,
          .has_prev = ev.has_prev,
          .prev_value = ev.has_prev
                            ? value_bytes_id(ev.prev.value, ev.prev.value_len)
                            : 0,
          .prev_version = ev.has_prev ? ev.prev.version : 0};
      if (!ev.deleted && brk(s, SIM_KEY_BREAK_AGREEMENT)) {
        got[got_n - 1].value = UINT64_MAX - 1;
      }
    }
  }
}

/* --break-keys gap / duplicate: a prefix watcher's cursor skips the
 * revision it is at, or steps back to the one it delivered last. */
static void watch_break(struct sim *s, struct key_watcher *w,
                        const struct fsm *f) {
  struct fsm_stream st;
  fsm_key_stream(f, &st);
  if (!w->prefix || w->next < st.first || w->next > fsm_key_revision(f)) {
    return;
  }
  if (brk(s, SIM_KEY_BREAK_GAP)) {
    w->next++;
  } else if (w->last >= st.first && w->last + 1 == w->next &&
             brk(s, SIM_KEY_BREAK_DUPLICATE)) {
    w->next--;
  }
}

/* ------------------------------------------------------- push watchers */

/* Watches on a new connection to w->replica from where w is. */
static void pwatch_start(struct sim *s, uint32_t id, struct key_watcher *w) {
  if (!sim_conn_open(s, &w->c, SIM_CONN_WATCH, id, w->replica)) {
    return;
  }
  char key[8];
  Synod__KeyWatch q = SYNOD__KEY_WATCH__INIT;
  snprintf(key, sizeof key, w->prefix ? "k/" : "k/%" PRIu32, w->key);
  q.subscription_id = 1;
  q.key.data = (uint8_t *)key;
  q.key.len = strlen(key);
  q.prefix = w->prefix;
  q.prev_kv = true;
  q.credits = w->c.window;
  if (!w->started) {
    q.from_revision = w->next; /* its first event */
  } else if (w->pos_event == 0) {
    q.from_revision = w->pos_rev + 1;
  } else {
    q.from_revision = w->pos_rev;
    q.after_event = w->pos_event;
  }
  w->watch_req = ++w->c.req_next;
  sim_conn_subscribed(&w->c);
  sim_trace(s, w->replica,
            "w%" PRIu32 ": watches (push) on connection %" PRIx64
            " from revision %" PRIu64 " after event %" PRIu32,
            id, w->c.id, q.from_revision, q.after_event);
  subs_key_watch(sim_conn_engine(s, &w->c), w->c.id, w->watch_req, &q);
}

static void pwatch_leave(struct sim *s, uint32_t id, struct key_watcher *w,
                         const char *why) {
  sim_trace(s, w->replica, "w%" PRIu32 ": leaves (%s)", id, why);
  sim_conn_close(s, &w->c);
  w->watch_req = 0;
  w->retry_ms = s->now_ms + pick(s, 10, 300);
}

/* The revision being taken is complete: to the checks. */
static void pwatch_flush(struct sim *s, uint32_t id, struct key_watcher *w) {
  if (w->cur_rev != 0) {
    watch_deliver(s, id, w, w->cur_rev, w->cur, w->cur_n);
    w->next = w->cur_rev + 1;
  }
  w->cur_rev = 0;
  w->cur_n = 0;
}

/* The watch is at (rev, event): every revision below it, or all of rev
 * with event 0, is complete. */
static void pwatch_progress(struct sim *s, uint32_t id, struct key_watcher *w,
                            uint64_t rev, uint32_t event) {
  w->pos_rev = rev;
  w->pos_event = event;
  if (w->cur_rev != 0 &&
      (w->cur_rev < rev || (w->cur_rev == rev && event == 0))) {
    pwatch_flush(s, id, w);
  }
}

static void pwatch_event(struct sim *s, uint32_t id, struct key_watcher *w,
                         const Synod__KeyWatchEvent *e) {
  if (w->cur_rev != 0 && e->revision != w->cur_rev) {
    pwatch_flush(s, id, w);
  }
  struct fsm_kv kv = {.key = e->kv->key.data, .key_len = e->kv->key.len};
  uint32_t key = key_number(&kv);
  bool deleted = e->type == SYNOD__KEY_WATCH_EVENT__TYPE__DELETE;
  if (w->cur_n > KEYS_MAX || key == UINT32_MAX ||
      (!w->prefix && key != w->key)) {
    sim_fail(s,
             "watch: w%" PRIu32 " on r%" PRIu32 " is delivered an event of "
             "\"%.*s\" at revision %" PRIu64 " it does not watch",
             id, w->replica, (int)e->kv->key.len, (const char *)e->kv->key.data,
             e->revision);
    return;
  }
  w->cur_rev = e->revision;
  w->cur[w->cur_n++] = (struct key_change){
      .key = key,
      .deleted = deleted,
      .value = deleted ? 0 : value_id(e->kv->value),
      .version = e->kv->version,
      .has_prev = e->prev_kv != NULL,
      .prev_value = e->prev_kv != NULL ? value_id(e->prev_kv->value) : 0,
      .prev_version = e->prev_kv != NULL ? e->prev_kv->version : 0};
}

static void pwatch_error(struct sim *s, uint32_t id, struct key_watcher *w,
                         int code, uint64_t first, const char *msg) {
  if (code == SYNOD_ECOMPACTED) {
    /* libsynod ends the watch; the application lists and watches again
     * from the oldest revision: what was below it may be missed. */
    s->stats.key_compactions++;
    w->floor = first;
    w->cur_rev = 0;
    w->cur_n = 0;
    w->started = true;
    w->pos_rev = first - 1; /* from `first` on */
    w->pos_event = 0;
    pwatch_start(s, id, w);
    return;
  }
  if (sim_conn_moves_on(code)) {
    pwatch_leave(s, id, w, msg);
    return;
  }
  sim_fail(s,
           "watch: w%" PRIu32 ": r%" PRIu32 " ends or refuses it with %s: %s",
           id, w->replica, synod_strerror(code), msg);
}

/* Takes one frame; false if there is none. */
static bool pwatch_take(struct sim *s, uint32_t id, struct key_watcher *w) {
  uint64_t unused;
  Synod__ServerMessage *sm = sim_conn_take(s, &w->c, &unused);
  if (sm == NULL) {
    return false;
  }
  if (sm->body_case == SYNOD__SERVER_MESSAGE__BODY_RESPONSE) {
    const Synod__Response *r = sm->response;
    if (r->id == w->watch_req && r->error != NULL) {
      pwatch_error(s, id, w, (int)r->error->code, r->error->first_available,
                   r->error->message);
    } else if (r->id == w->watch_req &&
               r->body_case == SYNOD__RESPONSE__BODY_KEY_WATCH) {
      const Synod__KeyWatchReply *kr = r->key_watch;
      w->watch_req = 0;
      w->started = true;
      pwatch_progress(s, id, w, kr->revision - (kr->after_event == 0),
                      kr->after_event);
    } else if (r->error != NULL) {
      sim_fail(s,
               "watch: w%" PRIu32 ": r%" PRIu32 " refuses request %" PRIu64
               ": %s",
               id, w->replica, r->id, r->error->message);
    }
  } else if (sm->body_case == SYNOD__SERVER_MESSAGE__BODY_EVENT &&
             sm->event->body_case == SYNOD__EVENT__BODY_KEY_WATCH_DELIVERY) {
    const Synod__KeyWatchDelivery *d = sm->event->key_watch_delivery;
    for (size_t i = 0; i < d->n_events && !s->failed; i++) {
      pwatch_event(s, id, w, d->events[i]);
    }
    int64_t over = sim_conn_delivered(&w->c, d->n_events);
    if (over > 0) {
      sim_fail(s,
               "watch: w%" PRIu32 ": r%" PRIu32 " delivers %" PRId64
               " events beyond the credits granted",
               id, w->replica, over);
    }
    pwatch_progress(s, id, w, d->progress_revision, d->progress_event);
  } else if (sm->body_case == SYNOD__SERVER_MESSAGE__BODY_EVENT &&
             sm->event->body_case == SYNOD__EVENT__BODY_SUBSCRIPTION_ENDED) {
    const Synod__Error *e = sm->event->subscription_ended->error;
    pwatch_error(s, id, w, e != NULL ? (int)e->code : SYNOD_EINTERNAL,
                 e != NULL ? e->first_available : 0,
                 e != NULL && e->message != NULL ? e->message : "no error");
  }
  synod__server_message__free_unpacked(sm, NULL);
  return true;
}

static void pwatch_poll(struct sim *s, uint32_t id, struct key_watcher *w) {
  bool end = s->clients_stopped;
  if (w->c.id != 0 && !sim_conn_alive(s, &w->c)) {
    sim_conn_close(s, &w->c); /* its replica crashed */
    w->watch_req = 0;
  }
  if (w->c.id != 0 && !end && sim_rand_ppm(&s->rand, w->move_ppm)) {
    pwatch_leave(s, id, w, "moves");
    w->retry_ms = 0;
  }
  if (w->c.id == 0) {
    if (s->now_ms < w->retry_ms || !watcher_attach(s, w)) {
      return;
    }
    pwatch_start(s, id, w);
  }
  uint32_t frames = end ? 1000000 : w->batch;
  if (end) {
    w->poll_ms = 10;
  }
  for (uint32_t i = 0; i < frames && w->c.id != 0 && !s->failed; i++) {
    if (!pwatch_take(s, id, w)) {
      break;
    }
    sim_conn_room(s, &w->c, w->watch_req == 0);
  }
}

bool sim_keys_watchers_caught_up(struct sim *s, char *why, size_t len) {
  struct sim_keys *ks = s->keys;
  for (uint32_t i = 0; ks != NULL && i < ks->w_n; i++) {
    const struct key_watcher *w = &ks->w[i];
    if (w->push &&
        (!sim_conn_alive(s, &w->c) || w->watch_req != 0 ||
         w->c.q_head != NULL || w->cur_rev != 0 ||
         (w->pos_event == 0 ? w->pos_rev : w->pos_rev - 1) < ks->rev)) {
      if (why != NULL) {
        snprintf(why, len,
                 "w%" PRIu32 " on r%" PRIu32 " (connection %" PRIx64
                 ", watch %" PRIu64 " unanswered, %zu bytes queued; its "
                 "replica applied %" PRIu64 ", at revision %" PRIu64 ") at "
                 "event %" PRIu32 " of revision %" PRIu64 ", taking %" PRIu64
                 "; the store is at %" PRIu64,
                 i, w->replica, w->c.id, w->watch_req, w->c.q_bytes,
                 s->r[w->replica].srv.fsm != NULL
                     ? fsm_applied_index(s->r[w->replica].srv.fsm)
                     : 0,
                 s->r[w->replica].srv.fsm != NULL
                     ? fsm_key_revision(s->r[w->replica].srv.fsm)
                     : 0,
                 w->pos_event, w->pos_rev, w->cur_rev, ks->rev);
      }
      return false;
    }
  }
  return true;
}

void sim_keys_watch_poll(struct sim *s, uint32_t id) {
  struct sim_keys *ks = s->keys;
  struct key_watcher *w = &ks->w[id];
  if (s->failed || (s->clients_stopped && !w->push)) {
    return;
  }
  sim_schedule(s, s->now_ms + w->poll_ms, SIM_EV_WATCH, id, NULL);
  if (w->push) {
    pwatch_poll(s, id, w);
    return;
  }
  bool connected =
      replica_serves(s, w->replica) && s->r[w->replica].gen == w->gen;
  if ((!connected || sim_rand_ppm(&s->rand, w->move_ppm)) &&
      !watcher_attach(s, w)) {
    return;
  }
  const struct fsm *f = s->r[w->replica].srv.fsm;
  watch_break(s, w, f);
  watch_read(s, id, w, f, w->batch);
}

/* End of run: every watcher catches up on f and has seen every revision
 * from where it started (or the history's oldest, if it fell below). */
static void watch_finish(struct sim *s, const struct fsm *f) {
  struct sim_keys *ks = s->keys;
  for (uint32_t i = 0; i < ks->w_n && !s->failed; i++) {
    struct key_watcher *w = &ks->w[i];
    if (w->push) { /* clients_finish ran it until it caught up */
      watch_no_skip(s, i, w, ks->rev + 1);
      continue;
    }
    if (w->next <= ks->rev) {
      watch_read(s, i, w, f, UINT64_MAX);
    }
    if (!s->failed && w->next <= ks->rev) {
      sim_fail(s,
               "watch: w%" PRIu32 " caught up at revision %" PRIu64
               ", the store is at %" PRIu64,
               i, w->next - 1, ks->rev);
    }
    if (!s->failed) {
      watch_no_skip(s, i, w, ks->rev + 1); /* nothing lost at the end */
    }
  }
}

/* ------------------------------------------------ the client history */

static struct history_kv_entry kv_get(const struct key_view *v) {
  return (struct history_kv_entry){.op = HISTORY_KV_GET,
                                   .found = v->found,
                                   .got_value = v->value,
                                   .version = v->version,
                                   .mod_revision = v->mod,
                                   .create_revision = v->create};
}

/* The op's projection on key `key` (a or b), from answer a. False: none. */
static bool kv_entry(const struct key_op *o, const struct key_answer *a,
                     uint32_t key, struct history_kv_entry *e) {
  bool on_a = key == o->a;
  const struct key_view *v = &a->k[on_a ? 0 : 1];
  if (o->kind == SIM_KEY_GET || (o->kind == SIM_KEY_MOVE && !a->succeeded)) {
    *e = kv_get(v);
    return true;
  }
  *e = (struct history_kv_entry){.succeeded = a->succeeded,
                                 .revision = a->succeeded ? a->revision : 0};
  if (o->kind == SIM_KEY_DELETE_PREFIX) {
    /* Which keys it deleted comes from the apply-order model (the count
     * is the answer's, checked there). */
    e->op = HISTORY_KV_DELETE;
    e->deleted = (o->deleted_mask >> key) & 1;
    e->revision = e->deleted ? a->revision : 0;
    return true;
  }
  if (o->kind == SIM_KEY_MOVE && !on_a) {
    e->op = HISTORY_KV_PUT;
    e->value = o->value;
    e->cmp[0] = (struct history_kv_compare){.target = HISTORY_KV_VERSION};
    e->cmp_n = 1;
    e->version = v->version;
    e->mod_revision = v->mod;
    return true;
  }
  e->cmp[0] = o->cmp;
  e->cmp_n = o->cmp_n;
  if (o->kind == SIM_KEY_MOVE || o->kind == SIM_KEY_DELETE ||
      o->kind == SIM_KEY_CAS_DELETE) {
    e->op = HISTORY_KV_DELETE;
    e->deleted = o->kind == SIM_KEY_MOVE ? 1 : v->deleted;
    return true;
  }
  e->op = HISTORY_KV_PUT;
  e->value = o->value;
  e->session = o->bound ? o->session : 0;
  e->version = v->version;
  e->mod_revision = v->mod;
  e->create_revision = v->create;
  return true;
}

static size_t key_history(struct sim *s, uint32_t key,
                          struct history_kv_entry *es, uint32_t *from) {
  struct sim_keys *ks = s->keys;
  size_t k = 0;
  for (uint32_t i = 0; i < s->hops_n && i < ks->ops_cap; i++) {
    const struct key_op *o = &ks->ops[i];
    const struct sim_hop *hp = &s->hops[i];
    if (!o->used || (o->a != key && !(o->kind == SIM_KEY_MOVE && o->b == key) &&
                     o->kind != SIM_KEY_DELETE_PREFIX)) {
      continue;
    }
    const struct key_answer *a = &o->seen;
    uint64_t complete = hp->complete;
    if (!hp->r.done || hp->r.code < 0 || !a->have) {
      if (o->kind == SIM_KEY_GET || !o->log.have) {
        continue; /* never applied: no effect */
      }
      a = &o->log;
      complete = o->log_clock;
    }
    if (a->code != 0) {
      continue; /* refused: no effect */
    }
    if (kv_entry(o, a, key, &es[k])) {
      if (es[k].op == HISTORY_KV_GET && es[k].found &&
          brk(s, SIM_KEY_BREAK_STALE_READ)) {
        es[k].got_value = UINT64_MAX - 1; /* a value nobody wrote */
      }
      es[k].invoke = hp->invoke;
      es[k].complete = complete;
      from[k++] = i;
    }
  }
  for (uint32_t i = 0; i < ks->end_n; i++) {
    for (uint32_t j = 0; j < ks->bound_n; j++) {
      if (ks->bound_sessions[j] == ks->end_session[i]) {
        es[k] = (struct history_kv_entry){.op = HISTORY_KV_END,
                                          .session = ks->end_session[i],
                                          .invoke = ks->end_clock[i],
                                          .complete = ks->end_clock[i]};
        from[k++] = UINT32_MAX;
        break;
      }
    }
  }
  return k;
}

void sim_keys_check(struct sim *s, const struct fsm *f) {
  struct sim_keys *ks = s->keys;
  if (ks == NULL) {
    return;
  }
  watch_finish(s, f);
  size_t cap = s->hops_n + ks->end_n + 2;
  struct history_kv_entry *es = calloc(cap, sizeof *es);
  uint32_t *from = calloc(cap, sizeof *from);
  if (es == NULL || from == NULL) {
    abort();
  }
  for (uint32_t key = 0; key < ks->n && !s->failed; key++) {
    size_t k = key_history(s, key, es, from);
    struct key_view v;
    fsm_view(s, f, key, &v);
    uint64_t t = ++s->hist_clock;
    es[k] = kv_get(&v);
    es[k].invoke = es[k].complete = t;
    from[k++] = UINT32_MAX;
    char why[256];
    enum history_verdict verdict =
        history_kv_check(es, k, 400000, why, sizeof why);
    s->stats.key_ops_checked += k;
    if (verdict == HISTORY_INCONCLUSIVE) {
      s->stats.lin_inconclusive++;
    } else if (verdict == HISTORY_NOT_LINEARIZABLE) {
      size_t at = 0;
      sscanf(why, "no order places operation %zu", &at);
      uint32_t h = at < k ? from[at] : UINT32_MAX;
      sim_fail(s,
               "linearizability: key k/%" PRIu32 " (%zu operations): %s: "
               "%s %" PRId64 " (kind %d)",
               key, k, why,
               h == UINT32_MAX ? "the final read or a session end"
                               : "history op",
               h == UINT32_MAX ? -1 : (int64_t)h,
               h == UINT32_MAX ? -1 : (int)ks->ops[h].kind);
    }
  }
  free(es);
  free(from);
}
