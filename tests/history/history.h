/* History checkers for the simulator: is a recorded history of counter
 * operations linearizable? (Wing & Gong's search with Lowe's memoisation,
 * the algorithm of Knossos and Porcupine.) */
#ifndef SYNOD_HISTORY_H
#define SYNOD_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum history_counter_op {
  HISTORY_COUNTER_GET,     /* result: value */
  HISTORY_COUNTER_SET,     /* arg1: value */
  HISTORY_COUNTER_CAS,     /* arg1: expect, arg2: update; swapped, value */
  HISTORY_COUNTER_ADD_GET, /* arg1: delta; result: value after */
  HISTORY_COUNTER_GET_ADD, /* arg1: delta; result: value before */
  HISTORY_COUNTER_DELETE,  /* value becomes 0 */
};

/* One operation on one counter, as a client saw it. Times are any
 * monotonic clock shared by all clients (the simulator's event sequence):
 * a precedes b iff a.complete < b.invoke.
 *
 * An operation whose outcome the client never learned (it gave up, its
 * process "crashed") has `pending` set: it may have taken effect once, at
 * any point after its invocation, or not at all. An operation that
 * completed with an error took no effect (`failed`); with
 * SYNOD_EOVERFLOW the checker verifies that it would have overflowed. */
struct history_counter_entry {
  enum history_counter_op op;
  int64_t arg1;
  int64_t arg2;
  uint64_t invoke;
  uint64_t complete;
  bool pending;
  bool failed;
  bool overflow; /* failed with SYNOD_EOVERFLOW */
  bool swapped;  /* CAS result */
  int64_t value; /* the value the operation returned */
};

enum history_verdict {
  HISTORY_LINEARIZABLE,
  HISTORY_NOT_LINEARIZABLE,
  HISTORY_INCONCLUSIVE, /* the search exceeded its memory budget */
};

/* Decides whether ops[0..n) on one counter, initially `initial`, is
 * linearizable. On HISTORY_NOT_LINEARIZABLE, `why` (why_len bytes) names
 * the first operation that could not be placed. `states_max` bounds the
 * memoised search (0 = 1,000,000 states). Does not modify ops. */
enum history_verdict
history_counter_check(const struct history_counter_entry *ops, size_t n,
                      int64_t initial, size_t states_max, char *why,
                      size_t why_len);

#endif
