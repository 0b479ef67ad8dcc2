/* Latency histograms: fixed 1-2.5-5 buckets, Prometheus text output. */
#include "histogram.h"

#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

static const uint64_t histogram_bounds_us[HISTOGRAM_BOUNDS] = {
    10,     25,      50,      100,     250,      500,    1000,
    2500,   5000,    10000,   25000,   50000,    100000, 250000,
    500000, 1000000, 2500000, 5000000, 10000000,
};

/* The same bounds as Prometheus `le` values, in seconds. */
static const char *const histogram_le[HISTOGRAM_BOUNDS + 1] = {
    "0.00001", "0.000025", "0.00005", "0.0001", "0.00025", "0.0005", "0.001",
    "0.0025",  "0.005",    "0.01",    "0.025",  "0.05",    "0.1",    "0.25",
    "0.5",     "1",        "2.5",     "5",      "10",      "+Inf",
};

void histogram_init(struct histogram *h) {
  memset(h, 0, sizeof *h);
}

uint64_t histogram_bound_us(unsigned i) {
  return i < HISTOGRAM_BOUNDS ? histogram_bounds_us[i] : UINT64_MAX;
}

/* The first bucket whose bound is >= us: a binary search over the bounds,
 * HISTOGRAM_BOUNDS (+Inf) when us is above them all. */
static unsigned histogram_bucket(uint64_t us) {
  unsigned lo = 0, hi = HISTOGRAM_BOUNDS;
  while (lo < hi) {
    unsigned mid = (lo + hi) / 2;
    if (histogram_bounds_us[mid] < us) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

static uint64_t add_saturating(uint64_t a, uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

void histogram_observe_n(struct histogram *h, uint64_t us, uint64_t n) {
  uint64_t total = us != 0 && n > UINT64_MAX / us ? UINT64_MAX : us * n;
  h->buckets[histogram_bucket(us)] += n;
  h->count += n;
  h->sum_us = add_saturating(h->sum_us, total);
}

void histogram_merge(struct histogram *into, const struct histogram *from) {
  for (unsigned i = 0; i <= HISTOGRAM_BOUNDS; i++) {
    into->buckets[i] += from->buckets[i];
  }
  into->count += from->count;
  into->sum_us = add_saturating(into->sum_us, from->sum_us);
}

int histogram_write(const struct histogram *h, FILE *out, const char *name,
                    const char *labels) {
  bool has = labels != NULL && labels[0] != '\0';
  const char *l = has ? labels : "";
  const char *sep = has ? "," : "";
  uint64_t cumulative = 0;
  for (unsigned i = 0; i <= HISTOGRAM_BOUNDS; i++) {
    cumulative += h->buckets[i];
    fprintf(out, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", name, l, sep,
            histogram_le[i], cumulative);
  }
  /* Seconds with six decimals, from integers: exact, whatever the locale. */
  fprintf(out, "%s_sum%s%s%s %" PRIu64 ".%06" PRIu64 "\n", name, has ? "{" : "",
          l, has ? "}" : "", h->sum_us / 1000000, h->sum_us % 1000000);
  fprintf(out, "%s_count%s%s%s %" PRIu64 "\n", name, has ? "{" : "", l,
          has ? "}" : "", h->count);
  return ferror(out) ? -1 : 0;
}
