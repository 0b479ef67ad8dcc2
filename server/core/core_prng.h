/* The core's own seeded PRNG (splitmix64): election timeouts come from here,
 * never from rand() or a clock, so a seed replays a whole run. */
#ifndef SYNOD_CORE_PRNG_H
#define SYNOD_CORE_PRNG_H

#include <stdint.h>

struct core_prng {
  uint64_t state;
};

static inline void core_prng_seed(struct core_prng *p, uint64_t seed) {
  p->state = seed;
}

/* Steele, Lea and Flood, "Fast splittable pseudorandom number generators"
 * (the splitmix64 finalizer). */
static inline uint64_t core_prng_next(struct core_prng *p) {
  uint64_t z = (p->state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

#endif
