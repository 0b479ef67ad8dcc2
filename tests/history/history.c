/* Linearizability: Wing & Gong's backtracking search over the call/return
 * event list, with Lowe's cache of (linearized set, state) pairs already
 * explored ("Testing for linearizability", 2017), for any model whose
 * state fits an int64_t (history_int.h); the counter's model here. */
#include "history.h"
#include "history_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One call or return event in the doubly linked event list. */
struct event {
  uint64_t time;
  size_t op;
  bool call;
  size_t prev;
  size_t next;
  size_t match; /* the call's return event, or the return's call */
};

/* A memoised (linearized set, state) pair. */
struct seen {
  uint64_t hash;
  int64_t state;
  uint64_t *bits; /* NULL = empty slot */
};

struct search {
  const struct history_lin_op *ops;
  size_t n;
  history_step_fn *step;
  void *ctx;
  struct event *ev; /* ev[0] is the list head sentinel */
  size_t words;     /* bitset words */
  uint64_t *bits;   /* the linearized set on the current path */
  struct seen *cache;
  size_t cache_cap; /* power of two */
  size_t cache_n;
  size_t states_max;
};

static int event_cmp(const void *a, const void *b) {
  const struct event *x = a, *y = b;
  if (x->time != y->time) {
    return x->time < y->time ? -1 : 1;
  }
  /* At equal times calls come first, so touching intervals overlap. */
  if (x->call != y->call) {
    return x->call ? -1 : 1;
  }
  return x->op < y->op ? -1 : x->op > y->op;
}

/* Does `op` applied to `state` give what the client saw? Sets *next. */
static bool counter_step(void *ctx, size_t i, int64_t state, int64_t *next) {
  const struct history_counter_entry *op =
      &((const struct history_counter_entry *)ctx)[i];
  int64_t sum;
  *next = state;
  switch (op->op) {
  case HISTORY_COUNTER_GET:
    return op->pending || op->value == state;
  case HISTORY_COUNTER_SET:
    *next = op->arg1;
    return true;
  case HISTORY_COUNTER_CAS:
    if (state == op->arg1) {
      *next = op->arg2;
      return op->pending || (op->swapped && op->value == op->arg2);
    }
    return op->pending || (!op->swapped && op->value == state);
  case HISTORY_COUNTER_ADD_GET:
  case HISTORY_COUNTER_GET_ADD:
    if (__builtin_add_overflow(state, op->arg1, &sum)) {
      return op->pending || op->overflow;
    }
    if (op->overflow) {
      return false;
    }
    *next = sum;
    if (op->pending) {
      return true;
    }
    return op->value == (op->op == HISTORY_COUNTER_ADD_GET ? sum : state);
  case HISTORY_COUNTER_DELETE:
    *next = 0;
    return true;
  }
  return false;
}

static uint64_t seen_hash(const uint64_t *bits, size_t words, int64_t state) {
  uint64_t h = 1469598103934665603ull ^ (uint64_t)state;
  for (size_t i = 0; i < words; i++) {
    h = (h ^ bits[i]) * 1099511628211ull;
    h ^= h >> 29;
  }
  return h;
}

static int cache_grow(struct search *s) {
  size_t cap = s->cache_cap ? s->cache_cap * 2 : 1024;
  struct seen *t = calloc(cap, sizeof *t);
  if (t == NULL) {
    return -1;
  }
  for (size_t i = 0; i < s->cache_cap; i++) {
    if (s->cache[i].bits == NULL) {
      continue;
    }
    size_t j = s->cache[i].hash & (cap - 1);
    while (t[j].bits != NULL) {
      j = (j + 1) & (cap - 1);
    }
    t[j] = s->cache[i];
  }
  free(s->cache);
  s->cache = t;
  s->cache_cap = cap;
  return 0;
}

/* Adds (bits, state) to the cache. Returns 1 if it was new, 0 if seen
 * before, -1 if the budget or memory ran out. */
static int cache_add(struct search *s, int64_t state) {
  if (s->cache_n >= s->states_max) {
    return -1;
  }
  if ((s->cache_n + 1) * 2 > s->cache_cap && cache_grow(s) != 0) {
    return -1;
  }
  uint64_t h = seen_hash(s->bits, s->words, state);
  size_t j = h & (s->cache_cap - 1);
  for (; s->cache[j].bits != NULL; j = (j + 1) & (s->cache_cap - 1)) {
    struct seen *e = &s->cache[j];
    if (e->hash == h && e->state == state &&
        memcmp(e->bits, s->bits, s->words * 8) == 0) {
      return 0;
    }
  }
  uint64_t *copy = malloc(s->words * 8);
  if (copy == NULL) {
    return -1;
  }
  memcpy(copy, s->bits, s->words * 8);
  s->cache[j] = (struct seen){.hash = h, .state = state, .bits = copy};
  s->cache_n++;
  return 1;
}

/* Removes a call and its return from the list (Lowe's "lift"). */
static void event_lift(struct event *ev, size_t call) {
  size_t ret = ev[call].match;
  ev[ev[call].prev].next = ev[call].next;
  if (ev[call].next) {
    ev[ev[call].next].prev = ev[call].prev;
  }
  ev[ev[ret].prev].next = ev[ret].next;
  if (ev[ret].next) {
    ev[ev[ret].next].prev = ev[ret].prev;
  }
}

/* Puts them back, in the reverse order of event_lift. */
static void event_unlift(struct event *ev, size_t call) {
  size_t ret = ev[call].match;
  ev[ev[ret].prev].next = ret;
  if (ev[ret].next) {
    ev[ev[ret].next].prev = ret;
  }
  ev[ev[call].prev].next = call;
  if (ev[call].next) {
    ev[ev[call].next].prev = call;
  }
}

/* Builds the sorted event list; skips failed operations that had no
 * effect (except overflows, which must have been overflows). Returns the
 * number of events, or 0 if out of memory. */
static size_t events_build(struct search *s) {
  s->ev = calloc(2 * s->n + 1, sizeof *s->ev);
  if (s->ev == NULL) {
    return 0;
  }
  size_t k = 1;
  for (size_t i = 0; i < s->n; i++) {
    const struct history_lin_op *o = &s->ops[i];
    if (o->skip) {
      continue;
    }
    s->ev[k++] = (struct event){.time = o->invoke, .op = i, .call = true};
    s->ev[k++] =
        (struct event){.time = o->pending ? UINT64_MAX : o->complete, .op = i};
  }
  qsort(s->ev + 1, k - 1, sizeof *s->ev, event_cmp);
  size_t *call_of = calloc(s->n, sizeof *call_of);
  if (call_of == NULL) {
    return 0;
  }
  for (size_t i = 1; i < k; i++) {
    s->ev[i].prev = i - 1;
    s->ev[i].next = i + 1 < k ? i + 1 : 0;
    if (s->ev[i].call) {
      call_of[s->ev[i].op] = i;
    } else {
      s->ev[i].match = call_of[s->ev[i].op];
      s->ev[call_of[s->ev[i].op]].match = i;
    }
  }
  s->ev[0].next = k > 1 ? 1 : 0;
  free(call_of);
  return k;
}

/* Counts the completed (non-pending) operations still to be placed. */
static size_t completed_count(const struct search *s) {
  size_t c = 0;
  for (size_t i = s->ev[0].next; i != 0; i = s->ev[i].next) {
    c += s->ev[i].call && !s->ops[s->ev[i].op].pending;
  }
  return c;
}

struct frame {
  size_t call;
  int64_t state;
};

static enum history_verdict search_run(struct search *s, int64_t state,
                                       char *why, size_t why_len) {
  struct frame *stack = malloc((s->n + 1) * sizeof *stack);
  size_t depth = 0;
  size_t left = completed_count(s);
  enum history_verdict verdict = HISTORY_NOT_LINEARIZABLE;
  size_t stuck = 0;
  if (stack == NULL) {
    return HISTORY_INCONCLUSIVE;
  }
  size_t e = s->ev[0].next;
  while (left > 0) {
    if (e != 0 && s->ev[e].call) {
      const struct history_lin_op *o = &s->ops[s->ev[e].op];
      int64_t next;
      if (s->step(s->ctx, s->ev[e].op, state, &next)) {
        size_t op = s->ev[e].op;
        s->bits[op / 64] |= 1ull << (op % 64);
        int added = cache_add(s, next);
        if (added < 0) {
          verdict = HISTORY_INCONCLUSIVE;
          break;
        }
        if (added == 1) {
          stack[depth++] = (struct frame){.call = e, .state = state};
          state = next;
          left -= !o->pending;
          event_lift(s->ev, e);
          e = s->ev[0].next;
          continue;
        }
        s->bits[op / 64] &= ~(1ull << (op % 64));
      }
      e = s->ev[e].next;
      continue;
    }
    /* A return (or the end) before its call was placed: backtrack. */
    if (e != 0 && s->ev[e].op > stuck) {
      stuck = s->ev[e].op;
    }
    if (depth == 0) {
      snprintf(why, why_len, "no order places operation %zu", stuck);
      break;
    }
    struct frame f = stack[--depth];
    size_t op = s->ev[f.call].op;
    event_unlift(s->ev, f.call);
    s->bits[op / 64] &= ~(1ull << (op % 64));
    left += !s->ops[op].pending;
    state = f.state;
    e = s->ev[f.call].next;
  }
  if (left == 0) {
    verdict = HISTORY_LINEARIZABLE;
  }
  free(stack);
  return verdict;
}

enum history_verdict history_lin_check(const struct history_lin_op *ops,
                                       size_t n, history_step_fn *step,
                                       void *ctx, int64_t initial,
                                       size_t states_max, char *why,
                                       size_t why_len) {
  struct search s = {.ops = ops, .n = n, .step = step, .ctx = ctx};
  enum history_verdict v = HISTORY_INCONCLUSIVE;
  if (why_len > 0) {
    why[0] = '\0';
  }
  s.states_max = states_max ? states_max : 1000000;
  s.words = n / 64 + 1;
  s.bits = calloc(s.words, 8);
  if (s.bits != NULL && events_build(&s) != 0) {
    v = search_run(&s, initial, why, why_len);
  }
  for (size_t i = 0; i < s.cache_cap; i++) {
    free(s.cache[i].bits);
  }
  free(s.cache);
  free(s.ev);
  free(s.bits);
  return v;
}

enum history_verdict
history_counter_check(const struct history_counter_entry *ops, size_t n,
                      int64_t initial, size_t states_max, char *why,
                      size_t why_len) {
  struct history_lin_op *lin = calloc(n + 1, sizeof *lin);
  if (lin == NULL) {
    return HISTORY_INCONCLUSIVE;
  }
  for (size_t i = 0; i < n; i++) {
    lin[i] = (struct history_lin_op){
        .invoke = ops[i].invoke,
        .complete = ops[i].complete,
        .pending = ops[i].pending,
        .skip = ops[i].failed && !ops[i].overflow, /* no effect */
    };
  }
  enum history_verdict v = history_lin_check(lin, n, counter_step, (void *)ops,
                                             initial, states_max, why, why_len);
  free(lin);
  return v;
}
