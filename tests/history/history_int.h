/* The linearizability search shared by the checkers (history.c): any
 * sequential model whose state fits an int64_t (or is interned as one). */
#ifndef SYNOD_HISTORY_INT_H
#define SYNOD_HISTORY_INT_H

#include "history.h"

/* One operation's interval. skip: it took no effect and is left out. */
struct history_lin_op {
  uint64_t invoke;
  uint64_t complete; /* ignored when pending */
  bool pending;      /* may take effect once after invoke, or never */
  bool skip;
};

/* The model: does operation i applied to `state` give what its client
 * saw? Sets *next. ctx is the checker's. */
typedef bool history_step_fn(void *ctx, size_t i, int64_t state, int64_t *next);

/* Decides whether ops[0..n), each checked by step, is linearizable from
 * `initial`; as history_counter_check (why names the first operation no
 * order places, by its number). */
enum history_verdict history_lin_check(const struct history_lin_op *ops,
                                       size_t n, history_step_fn *step,
                                       void *ctx, int64_t initial,
                                       size_t states_max, char *why,
                                       size_t why_len);

#endif
