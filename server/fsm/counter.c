/* Counters (COUNTER-style): named int64 values, created at 0 on first use;
 * overflow is an error that changes nothing. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "fsm_int.h"
#include "utf8.h"

int fsm_counter_cmp(const void *key, const struct otree_node *n) {
  const struct fsm_counter *c = FSM_CONTAINER(n, struct fsm_counter, by_name);
  return fsm_name_cmp(key, c->name, c->name_len);
}

struct fsm_counter *fsm_counter_new(const char *name, size_t len,
                                    int64_t value) {
  struct fsm_counter *c = fsm_xcalloc(1, sizeof *c);
  c->name = fsm_xstrndup(name, len);
  c->name_len = len;
  c->value = value;
  return c;
}

void fsm_counter_free(struct fsm_counter *c) {
  if (c) {
    free(c->name);
    free(c);
  }
}

static struct fsm_counter *counter_find(const struct fsm *f, const char *name,
                                        size_t len) {
  struct fsm_name k = {name, len};
  struct otree_node *n = otree_find(&f->counters, &k);
  return n ? FSM_CONTAINER(n, struct fsm_counter, by_name) : NULL;
}

/* Returns the counter, creating it at 0 if counters_max allows. */
static int counter_get_or_create(struct fsm *f, const char *what,
                                 const char *name, size_t len,
                                 struct fsm_counter **out, char *msg) {
  struct fsm_counter *c = counter_find(f, name, len);
  if (c == NULL) {
    if (f->counters.count >= f->opt.counters_max) {
      errmsg_set(msg, "%s: counters_max %u reached", what, f->opt.counters_max);
      return SYNOD_ELIMIT;
    }
    c = fsm_counter_new(name, len, 0);
    otree_insert(&f->counters, &c->by_name, &(struct fsm_name){name, len});
  }
  *out = c;
  return 0;
}

static void reply_value(struct fsm_reply *r, int64_t v) {
  synod__counter_value__init(&r->u.value);
  r->u.value.value = v;
  r->resp.body_case = SYNOD__RESPONSE__BODY_COUNTER_VALUE;
  r->resp.counter_value = &r->u.value;
}

/* Validates the name of a request on one counter: name and length out. */
#define COUNTER_NAME(field, what)                                              \
  const char *name = fsm_str(req->field->name);                                \
  size_t len = strlen(name);                                                   \
  int rv = fsm_name_check(f, what, name, len, r->msg);                         \
  if (rv != 0) {                                                               \
    return rv;                                                                 \
  }

/* A read: a missing counter is 0 and is not created. */
int fsm_counter_get(struct fsm *f, struct fsm_session *s,
                    const Synod__Request *req, struct fsm_reply *r) {
  (void)s;
  COUNTER_NAME(counter_get, "counter get");
  const struct fsm_counter *c = counter_find(f, name, len);
  reply_value(r, c ? c->value : 0);
  return 0;
}

int fsm_counter_set(struct fsm *f, struct fsm_session *s,
                    const Synod__Request *req, struct fsm_reply *r) {
  struct fsm_counter *c;
  (void)s;
  COUNTER_NAME(counter_set, "counter set");
  rv = counter_get_or_create(f, "counter set", name, len, &c, r->msg);
  if (rv != 0) {
    return rv;
  }
  c->value = req->counter_set->value;
  reply_value(r, c->value);
  return 0;
}

/* A missing counter compares as 0; it is created only if the swap
 * happens. */
int fsm_counter_cas(struct fsm *f, struct fsm_session *s,
                    const Synod__Request *req, struct fsm_reply *r) {
  const Synod__CounterCas *cas = req->counter_cas;
  struct fsm_counter *c;
  (void)s;
  COUNTER_NAME(counter_cas, "counter cas");
  c = counter_find(f, name, len);
  synod__counter_cas_reply__init(&r->u.cas);
  r->u.cas.value = c ? c->value : 0;
  if (r->u.cas.value == cas->expect) {
    rv = counter_get_or_create(f, "counter cas", name, len, &c, r->msg);
    if (rv != 0) {
      return rv;
    }
    c->value = cas->update;
    r->u.cas.swapped = 1;
    r->u.cas.value = c->value;
  }
  r->resp.body_case = SYNOD__RESPONSE__BODY_COUNTER_CAS;
  r->resp.counter_cas = &r->u.cas;
  return 0;
}

int fsm_counter_add(struct fsm *f, struct fsm_session *s,
                    const Synod__Request *req, struct fsm_reply *r) {
  const Synod__CounterAdd *add = req->counter_add;
  struct fsm_counter *c;
  int64_t now;
  (void)s;
  COUNTER_NAME(counter_add, "counter add");
  c = counter_find(f, name, len);
  int64_t before = c ? c->value : 0;
  if (__builtin_add_overflow(before, add->delta, &now)) {
    errmsg_set(r->msg,
               "counter add: \"%.64s\": %" PRId64 " + %" PRId64
               " overflows int64",
               name, before, add->delta);
    return SYNOD_EOVERFLOW;
  }
  rv = counter_get_or_create(f, "counter add", name, len, &c, r->msg);
  if (rv != 0) {
    return rv;
  }
  c->value = now;
  reply_value(r, add->return_previous ? before : now);
  return 0;
}

int fsm_counter_delete(struct fsm *f, struct fsm_session *s,
                       const Synod__Request *req, struct fsm_reply *r) {
  (void)s;
  COUNTER_NAME(counter_delete, "counter delete");
  struct fsm_counter *c = counter_find(f, name, len);
  if (c) {
    otree_remove(&f->counters, &c->by_name);
    fsm_counter_free(c);
  }
  synod__counter_delete_reply__init(&r->u.del);
  r->u.del.existed = c != NULL;
  r->resp.body_case = SYNOD__RESPONSE__BODY_COUNTER_DELETE;
  r->resp.counter_delete = &r->u.del;
  return 0;
}

/* The first counter of the page: after start_after, at or after prefix. */
static struct otree_node *list_start(const struct fsm *f, const char *prefix,
                                     size_t plen, const char *after,
                                     size_t alen) {
  struct fsm_name p = {prefix, plen}, a = {after, alen};
  if (alen > 0 && fsm_name_cmp(&a, prefix, plen) >= 0) {
    return otree_lower_bound(&f->counters, &a, 1);
  }
  return otree_lower_bound(&f->counters, &p, 0);
}

static int list_check(const struct fsm *f, const char *s, size_t len,
                      const char *field, char *msg) {
  if (len > f->opt.name_bytes_max || !utf8_valid(s, len, NULL)) {
    errmsg_set(msg, "counter list: %s (%zu bytes) longer than %u or not UTF-8",
               field, len, f->opt.name_bytes_max);
    return SYNOD_EINVAL;
  }
  return 0;
}

/* Name order; limit 0 or above list_limit_max means list_limit_max. `more`
 * says whether another matching counter follows the page. */
int fsm_counter_list(struct fsm *f, struct fsm_session *s,
                     const Synod__Request *req, struct fsm_reply *r) {
  const Synod__CounterList *q = req->counter_list;
  const char *prefix = fsm_str(q->prefix), *after = fsm_str(q->start_after);
  size_t plen = strlen(prefix), alen = strlen(after);
  uint32_t limit = q->limit;
  (void)s;
  int rv = list_check(f, prefix, plen, "prefix", r->msg);
  if (rv == 0) {
    rv = list_check(f, after, alen, "start_after", r->msg);
  }
  if (rv != 0) {
    return rv;
  }
  if (limit == 0 || limit > f->opt.list_limit_max) {
    limit = f->opt.list_limit_max;
  }
  Synod__CounterListReply *lr = &r->u.list;
  synod__counter_list_reply__init(lr);
  /* One block: the pointer array, then the entries it points at. */
  lr->counters =
      fsm_xcalloc(limit, sizeof *lr->counters + sizeof(Synod__CounterEntry));
  Synod__CounterEntry *ents = (Synod__CounterEntry *)(lr->counters + limit);
  r->scratch = lr->counters;
  struct otree_node *n = list_start(f, prefix, plen, after, alen);
  for (; n; n = otree_next(n)) {
    struct fsm_counter *c = FSM_CONTAINER(n, struct fsm_counter, by_name);
    if (c->name_len < plen || memcmp(c->name, prefix, plen) != 0) {
      break;
    }
    if (lr->n_counters == limit) {
      lr->more = 1;
      break;
    }
    synod__counter_entry__init(&ents[lr->n_counters]);
    ents[lr->n_counters].name = c->name;
    ents[lr->n_counters].value = c->value;
    lr->counters[lr->n_counters] = &ents[lr->n_counters];
    lr->n_counters++;
  }
  r->resp.body_case = SYNOD__RESPONSE__BODY_COUNTER_LIST;
  r->resp.counter_list = lr;
  return 0;
}
