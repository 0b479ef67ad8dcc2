/* The simulator's only source of randomness (xoshiro256** seeded through
 * splitmix64) and its hashes; nothing here reads a clock or rand(). */
#ifndef SYNOD_SIM_RAND_H
#define SYNOD_SIM_RAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sim_rand {
  uint64_t s[4];
};

/* Seeds the generator; the same seed always gives the same sequence. */
void sim_rand_seed(struct sim_rand *r, uint64_t seed);

/* The next 64 random bits. */
uint64_t sim_rand_next(struct sim_rand *r);

/* A number in [lo, hi], both inclusive; lo when hi <= lo. */
uint64_t sim_rand_range(struct sim_rand *r, uint64_t lo, uint64_t hi);

/* True with probability ppm / 1,000,000. */
bool sim_rand_ppm(struct sim_rand *r, uint32_t ppm);

/* splitmix64's finaliser: a bijective 64-bit mix. */
uint64_t sim_mix(uint64_t x);

/* FNV-1a over n bytes, continuing from h, then mixed. Use SIM_HASH_INIT to
 * start. */
#define SIM_HASH_INIT 0xcbf29ce484222325ULL
uint64_t sim_hash_bytes(uint64_t h, const void *p, size_t n);

/* Folds one 64-bit value into h. */
uint64_t sim_hash_u64(uint64_t h, uint64_t v);

#endif
