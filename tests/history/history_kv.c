/* Linearizability of one key's history: a register with compare-and-set
 * (put and delete with compares, version and revisions, session binding),
 * checked by the search of history.c. The model's states are interned:
 * the search's int64_t state is a number into a table of key states. */
#include "history.h"
#include "history_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the key holds. last_rev: the revision of its last change (a delete
 * included), which every later change must exceed. */
struct kv_state {
  bool exists;
  uint64_t value;
  uint64_t version;
  uint64_t create_rev;
  uint64_t mod_rev; /* 0 while unknown (a write with no revision) */
  uint64_t session;
  uint64_t last_rev;
};

struct kv_model {
  const struct history_kv_entry *ops;
  struct kv_state *states; /* states[0] is the absent key */
  size_t states_n, states_cap;
  int64_t *slots; /* open addressing over states: index + 1, 0 = empty */
  size_t slots_cap;
  bool oom;
};

static uint64_t state_hash(const struct kv_state *k) {
  uint64_t f[] = {k->exists,  k->value,   k->version, k->create_rev,
                  k->mod_rev, k->session, k->last_rev};
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
    h = (h ^ f[i]) * 1099511628211ull;
    h ^= h >> 31;
  }
  return h;
}

static bool state_eq(const struct kv_state *a, const struct kv_state *b) {
  return a->exists == b->exists && a->value == b->value &&
         a->version == b->version && a->create_rev == b->create_rev &&
         a->mod_rev == b->mod_rev && a->session == b->session &&
         a->last_rev == b->last_rev;
}

static int slots_grow(struct kv_model *m) {
  size_t cap = m->slots_cap ? m->slots_cap * 2 : 256;
  int64_t *t = calloc(cap, sizeof *t);
  if (t == NULL) {
    return -1;
  }
  for (size_t i = 0; i < m->states_n; i++) {
    size_t j = state_hash(&m->states[i]) & (cap - 1);
    while (t[j] != 0) {
      j = (j + 1) & (cap - 1);
    }
    t[j] = (int64_t)i + 1;
  }
  free(m->slots);
  m->slots = t;
  m->slots_cap = cap;
  return 0;
}

/* The number of state k, added if new; -1 out of memory. */
static int64_t state_intern(struct kv_model *m, const struct kv_state *k) {
  if ((m->states_n + 1) * 2 > m->slots_cap && slots_grow(m) != 0) {
    return -1;
  }
  size_t j = state_hash(k) & (m->slots_cap - 1);
  for (; m->slots[j] != 0; j = (j + 1) & (m->slots_cap - 1)) {
    if (state_eq(&m->states[m->slots[j] - 1], k)) {
      return m->slots[j] - 1;
    }
  }
  if (m->states_n == m->states_cap) {
    size_t cap = m->states_cap ? m->states_cap * 2 : 256;
    struct kv_state *t = realloc(m->states, cap * sizeof *t);
    if (t == NULL) {
      return -1;
    }
    m->states = t;
    m->states_cap = cap;
  }
  m->states[m->states_n] = *k;
  m->slots[j] = (int64_t)m->states_n + 1;
  return (int64_t)m->states_n++;
}

static bool cmp_holds(enum history_kv_cmp op, uint64_t have, uint64_t want) {
  switch (op) {
  case HISTORY_KV_EQUAL:
    return have == want;
  case HISTORY_KV_NOT_EQUAL:
    return have != want;
  case HISTORY_KV_LESS:
    return have < want;
  case HISTORY_KV_GREATER:
    return have > want;
  }
  return false;
}

static bool compare_holds(const struct kv_state *k,
                          const struct history_kv_compare *c) {
  switch (c->target) {
  case HISTORY_KV_VERSION:
    return cmp_holds(c->cmp, k->exists ? k->version : 0, c->number);
  case HISTORY_KV_CREATE_REVISION:
    return cmp_holds(c->cmp, k->exists ? k->create_rev : 0, c->number);
  case HISTORY_KV_MOD_REVISION:
    return cmp_holds(c->cmp, k->exists ? k->mod_rev : 0, c->number);
  case HISTORY_KV_VALUE:
    return k->exists && cmp_holds(c->cmp, k->value, c->number);
  case HISTORY_KV_SESSION:
    return cmp_holds(c->cmp, k->exists ? k->session : 0, c->number);
  }
  return false;
}

/* Does the answer's view of the key (version, revisions when not 0)
 * match k? A mod revision the model does not know matches any. */
static bool view_matches(const struct kv_state *k,
                         const struct history_kv_entry *o) {
  if (!k->exists) {
    return o->version == 0 && o->mod_revision == 0;
  }
  return (o->version == 0 || o->version == k->version) &&
         (o->mod_revision == 0 || k->mod_rev == 0 ||
          o->mod_revision == k->mod_rev) &&
         (o->create_revision == 0 || k->create_rev == 0 ||
          o->create_revision == k->create_rev);
}

/* A change at o->revision: it must come after the key's last change. */
static bool change_at(struct kv_state *k, const struct history_kv_entry *o) {
  if (o->revision != 0 && o->revision <= k->last_rev) {
    return false;
  }
  if (o->revision != 0) {
    k->last_rev = o->revision;
  }
  return true;
}

static bool step_put(struct kv_state *k, const struct history_kv_entry *o) {
  struct kv_state old = *k;
  if (!change_at(k, o)) {
    return false;
  }
  k->exists = true;
  k->value = o->value;
  k->version = old.exists ? old.version + 1 : 1;
  k->mod_rev = o->revision;
  k->create_rev = old.exists ? old.create_rev : o->revision;
  k->session = o->session;
  return o->pending || view_matches(k, o);
}

static bool step_delete(struct kv_state *k, const struct history_kv_entry *o) {
  if (!o->pending && o->deleted != (k->exists ? 1u : 0u)) {
    return false;
  }
  if (!k->exists) {
    return true; /* deleting nothing uses no revision */
  }
  if (!change_at(k, o)) {
    return false;
  }
  uint64_t last = k->last_rev;
  *k = (struct kv_state){.last_rev = last};
  return true;
}

static bool kv_step(void *ctx, size_t i, int64_t state, int64_t *next) {
  struct kv_model *m = ctx;
  const struct history_kv_entry *o = &m->ops[i];
  struct kv_state k = m->states[state];
  bool ok = true;
  *next = state;
  switch (o->op) {
  case HISTORY_KV_GET:
    return o->pending ||
           (o->found == k.exists && (!k.exists || o->got_value == k.value) &&
            (!o->found || view_matches(&k, o)));
  case HISTORY_KV_END:
    if (!k.exists || k.session != o->session) {
      return true;
    }
    k = (struct kv_state){.last_rev = k.last_rev};
    break;
  case HISTORY_KV_PUT:
  case HISTORY_KV_DELETE: {
    bool hold = true;
    for (uint32_t c = 0; c < o->cmp_n; c++) {
      hold = hold && compare_holds(&k, &o->cmp[c]);
    }
    if (!hold) {
      return o->pending || (!o->succeeded && view_matches(&k, o));
    }
    if (!o->pending && !o->succeeded) {
      return false;
    }
    ok = o->op == HISTORY_KV_PUT ? step_put(&k, o) : step_delete(&k, o);
    break;
  }
  }
  if (!ok) {
    return false;
  }
  int64_t id = state_intern(m, &k);
  if (id < 0) {
    m->oom = true;
    return false;
  }
  *next = id;
  return true;
}

enum history_verdict history_kv_check(const struct history_kv_entry *ops,
                                      size_t n, size_t states_max, char *why,
                                      size_t why_len) {
  struct kv_model m = {.ops = ops};
  struct history_lin_op *lin = calloc(n + 1, sizeof *lin);
  enum history_verdict v = HISTORY_INCONCLUSIVE;
  struct kv_state absent = {0};
  if (lin == NULL || state_intern(&m, &absent) != 0) {
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    lin[i] = (struct history_lin_op){.invoke = ops[i].invoke,
                                     .complete = ops[i].complete,
                                     .pending = ops[i].pending,
                                     .skip = ops[i].failed};
  }
  v = history_lin_check(lin, n, kv_step, &m, 0, states_max, why, why_len);
  if (m.oom) {
    v = HISTORY_INCONCLUSIVE;
  }
out:
  free(m.states);
  free(m.slots);
  free(lin);
  return v;
}
