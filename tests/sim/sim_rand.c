/* xoshiro256** (Blackman and Vigna) seeded with splitmix64, plus FNV-1a. */
#include "sim_rand.h"

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t sim_mix(uint64_t x) {
  return splitmix64(&x);
}

void sim_rand_seed(struct sim_rand *r, uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++) {
    r->s[i] = splitmix64(&x);
  }
}

static uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

uint64_t sim_rand_next(struct sim_rand *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

uint64_t sim_rand_range(struct sim_rand *r, uint64_t lo, uint64_t hi) {
  if (hi <= lo) {
    return lo;
  }
  uint64_t span = hi - lo + 1;
  if (span == 0) { /* the full 64-bit range */
    return sim_rand_next(r);
  }
  /* The modulo bias is below 2^-40 for the spans we use; fine here. */
  return lo + sim_rand_next(r) % span;
}

bool sim_rand_ppm(struct sim_rand *r, uint32_t ppm) {
  if (ppm == 0) {
    return false;
  }
  return sim_rand_next(r) % 1000000 < ppm;
}

uint64_t sim_hash_bytes(uint64_t h, const void *p, size_t n) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++) {
    h ^= b[i];
    h *= 0x100000001b3ULL;
  }
  return sim_mix(h);
}

uint64_t sim_hash_u64(uint64_t h, uint64_t v) {
  return sim_mix(h ^ sim_mix(v + 0x632be59bd9b4e019ULL));
}
