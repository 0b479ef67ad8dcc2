/* Latency histograms for Prometheus: fixed buckets from 10 us to 10 s on a
 * 1-2.5-5 series per decade, plus +Inf, observed in microseconds and
 * rendered in seconds. Plain data: no allocation, no clock, no locking, so
 * the state machine may keep one too (it observes cluster time). */
#ifndef SYNOD_HISTOGRAM_H
#define SYNOD_HISTOGRAM_H

#include <stdint.h>
#include <stdio.h>

/* Finite upper bounds (10 us .. 10 s); bucket HISTOGRAM_BOUNDS is +Inf. */
#define HISTOGRAM_BOUNDS 19

/* Buckets are not cumulative here; histogram_write makes them so.
 * Invariant: count == the sum of buckets[]. */
struct histogram {
  uint64_t buckets[HISTOGRAM_BOUNDS + 1];
  uint64_t count;
  uint64_t sum_us;
};

/* Empties h. A zeroed struct is an empty histogram too. */
void histogram_init(struct histogram *h);

/* Counts n observations of `us` microseconds each, in the first bucket
 * whose bound is >= us (Prometheus's `le`). O(log buckets); never fails.
 * The sum saturates at UINT64_MAX instead of wrapping. */
void histogram_observe_n(struct histogram *h, uint64_t us, uint64_t n);

static inline void histogram_observe(struct histogram *h, uint64_t us) {
  histogram_observe_n(h, us, 1);
}

/* Adds every observation of `from` to `into`. */
void histogram_merge(struct histogram *into, const struct histogram *from);

/* The upper bound of finite bucket i (< HISTOGRAM_BOUNDS), in us. */
uint64_t histogram_bound_us(unsigned i);

/* Writes the exposition lines of one histogram series: cumulative
 * `<name>_bucket{<labels>,le="..."}` lines in seconds ending in +Inf, then
 * `<name>_sum` (seconds) and `<name>_count`. `labels` is NULL or "" for
 * none, else already escaped `key="value"` pairs separated by commas.
 * HELP and TYPE are the caller's. Returns 0, or -1 if `out` reports a
 * write error. */
int histogram_write(const struct histogram *h, FILE *out, const char *name,
                    const char *labels);

#endif /* SYNOD_HISTOGRAM_H */
