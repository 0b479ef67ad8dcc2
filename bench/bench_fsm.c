/* Apply throughput of the state machine: counter add-and-get on one and on
 * 1,000 counters, lock acquire+release cycles, and snapshot encode/decode
 * at the scale of 100,000 counters. Entries are encoded before the clock
 * starts (apply only), except in the scenario marked "encode inside".
 * Prints the median of 5 runs.
 *
 * Keys: puts of 100-byte values, list pages, and the longest apply when a
 * session holding 100,000 bound keys expires beside 100,000 other keys
 * (the expiry entry, then the Ticks that take the keys out of the store),
 * against a prefix delete of as many keys in one entry. `synod-bench-fsm
 * keys [OTHERS]` runs only these, with OTHERS keys beside the session's. */
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fsm.h"
#include "synod.pb-c.h"

#define RUNS 5

/* Pre-encoded entries, back to back. */
struct batch {
  uint8_t *buf;
  size_t used, cap;
  size_t *off, *len;
  size_t n, n_cap;
};

static void batch_add(struct batch *b, uint64_t time_ms,
                      const Synod__Request *req) {
  size_t need = fsm_command_encode_request(time_ms, req, NULL, 0);
  if (b->used + need > b->cap) {
    b->cap = (b->cap + need) * 2;
    b->buf = realloc(b->buf, b->cap);
  }
  if (b->n == b->n_cap) {
    b->n_cap = b->n_cap ? 2 * b->n_cap : 1024;
    b->off = realloc(b->off, b->n_cap * sizeof *b->off);
    b->len = realloc(b->len, b->n_cap * sizeof *b->len);
  }
  if (!b->buf || !b->off || !b->len) {
    fprintf(stderr, "bench: out of memory\n");
    exit(1);
  }
  fsm_command_encode_request(time_ms, req, b->buf + b->used, need);
  b->off[b->n] = b->used;
  b->len[b->n++] = need;
  b->used += need;
}

static void batch_free(struct batch *b) {
  free(b->buf);
  free(b->off);
  free(b->len);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void apply_or_die(struct fsm *f, uint64_t index, const uint8_t *d,
                         size_t len) {
  struct fsm_output out;
  if (fsm_apply(f, index, d, len, &out) != 0) {
    fprintf(stderr, "bench: fsm_apply failed at %llu\n",
            (unsigned long long)index);
    exit(1);
  }
}

/* Opens `clients` sessions on f through entries 1..clients. */
static void open_sessions(struct fsm *f, size_t clients) {
  Synod__Request r = SYNOD__REQUEST__INIT;
  Synod__SessionOpen o = SYNOD__SESSION_OPEN__INIT;
  uint8_t buf[64];
  o.ttl_ms = 300000;
  r.body_case = SYNOD__REQUEST__BODY_SESSION_OPEN;
  r.session_open = &o;
  for (size_t i = 0; i < clients; i++) {
    size_t n = fsm_command_encode_request(1000, &r, buf, sizeof buf);
    apply_or_die(f, i + 1, buf, n);
  }
}

/* Counter add-and-get from one session, over `names` counters. */
static void build_counters(struct batch *b, size_t ops, size_t names) {
  Synod__Request r = SYNOD__REQUEST__INIT;
  Synod__CounterAdd a = SYNOD__COUNTER_ADD__INIT;
  char name[32];
  r.session_id = 1;
  r.body_case = SYNOD__REQUEST__BODY_COUNTER_ADD;
  r.counter_add = &a;
  a.delta = 1;
  a.name = name;
  for (size_t i = 0; i < ops; i++) {
    snprintf(name, sizeof name, "counter/%04zu", i % names);
    r.sequence = i + 1;
    batch_add(b, 1000 + i / 1000, &r);
  }
}

/* Each client (session) acquires then releases its own lock. */
static void build_locks(struct batch *b, size_t cycles, size_t clients) {
  Synod__Request r = SYNOD__REQUEST__INIT;
  Synod__LockAcquire a = SYNOD__LOCK_ACQUIRE__INIT;
  Synod__LockRelease rel = SYNOD__LOCK_RELEASE__INIT;
  char name[32];
  a.name = rel.name = name;
  a.owner_id = rel.owner_id = 1;
  for (size_t i = 0; i < cycles; i++) {
    size_t c = i % clients;
    snprintf(name, sizeof name, "lock/%04zu", c);
    r.session_id = c + 1;
    r.sequence = 2 * (i / clients) + 1;
    r.body_case = SYNOD__REQUEST__BODY_LOCK_ACQUIRE;
    r.lock_acquire = &a;
    batch_add(b, 1000 + i / 1000, &r);
    r.sequence++;
    r.body_case = SYNOD__REQUEST__BODY_LOCK_RELEASE;
    r.lock_release = &rel;
    batch_add(b, 1000 + i / 1000, &r);
  }
}

/* One run: a fresh fsm with `clients` sessions, then the timed batch.
 * Returns operations (entries / per_op) per second. */
static double run_batch(const struct batch *b, size_t clients, size_t per_op) {
  struct fsm *f = fsm_new(NULL);
  open_sessions(f, clients);
  double t0 = now_s();
  for (size_t i = 0; i < b->n; i++) {
    apply_or_die(f, clients + 1 + i, b->buf + b->off[i], b->len[i]);
  }
  double dt = now_s() - t0;
  fsm_free(f);
  return (double)(b->n / per_op) / dt;
}

/* Counter add-and-get with the Command encoded inside the timed loop. */
static double run_encode_inside(size_t ops) {
  struct fsm *f = fsm_new(NULL);
  Synod__Request r = SYNOD__REQUEST__INIT;
  Synod__CounterAdd a = SYNOD__COUNTER_ADD__INIT;
  uint8_t buf[128];
  open_sessions(f, 1);
  r.session_id = 1;
  r.body_case = SYNOD__REQUEST__BODY_COUNTER_ADD;
  r.counter_add = &a;
  a.name = "counter/0000";
  a.delta = 1;
  double t0 = now_s();
  for (size_t i = 0; i < ops; i++) {
    r.sequence = i + 1;
    size_t n = fsm_command_encode_request(1000 + i / 1000, &r, buf, sizeof buf);
    apply_or_die(f, 2 + i, buf, n);
  }
  double dt = now_s() - t0;
  fsm_free(f);
  return (double)ops / dt;
}

/* Applies b once, outside any timing, and fails if any answer is an error
 * or pending: the timed runs must measure the work they claim. */
static void batch_verify(const struct batch *b, size_t clients,
                         const char *what) {
  struct fsm *f = fsm_new(NULL);
  struct fsm_output out;
  open_sessions(f, clients);
  for (size_t i = 0; i < b->n; i++) {
    fsm_apply(f, clients + 1 + i, b->buf + b->off[i], b->len[i], &out);
    Synod__Response *r = out.response.pending
                             ? NULL
                             : synod__response__unpack(NULL, out.response.len,
                                                       out.response.data);
    if (r == NULL || r->error != NULL) {
      fprintf(stderr, "bench: %s: entry %zu: %s\n", what, i,
              r && r->error ? r->error->message : "no answer");
      exit(1);
    }
    synod__response__free_unpacked(r, NULL);
  }
  fsm_free(f);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v) {
  qsort(v, RUNS, sizeof *v, cmp_double);
  return v[RUNS / 2];
}

/* Snapshot of 100,000 counters and 10,000 held locks: encode and decode
 * times in milliseconds, and the image size. */
static void bench_snapshot(void) {
  struct batch b = {0};
  struct fsm *f = fsm_new(NULL);
  double enc[RUNS], dec[RUNS];
  uint8_t *img = NULL;
  size_t len = 0;
  build_counters(&b, 100000, 100000);
  open_sessions(f, 1);
  for (size_t i = 0; i < b.n; i++) {
    apply_or_die(f, 2 + i, b.buf + b.off[i], b.len[i]);
  }
  batch_free(&b);
  memset(&b, 0, sizeof b);
  build_locks(&b, 10000, 1);
  for (size_t i = 0; i < b.n; i += 2) { /* acquires only: 10,000 held */
    apply_or_die(f, 100002 + i, b.buf + b.off[i], b.len[i]);
  }
  batch_free(&b);
  for (int k = 0; k < RUNS; k++) {
    free(img);
    double t0 = now_s();
    fsm_snapshot_encode(f, &img, &len);
    enc[k] = (now_s() - t0) * 1e3;
    struct fsm *g = fsm_new(NULL);
    t0 = now_s();
    if (fsm_snapshot_decode(g, img, len) != 0) {
      fprintf(stderr, "bench: snapshot decode failed\n");
      exit(1);
    }
    dec[k] = (now_s() - t0) * 1e3;
    fsm_free(g);
  }
  printf("%-52s %10.1f ms (image %zu bytes)\n",
         "snapshot encode, 100k counters + 10k locks", median(enc), len);
  printf("%-52s %10.1f ms (validated, re-encoded)\n",
         "snapshot decode, 100k counters + 10k locks", median(dec));
  free(img);
  fsm_free(f);
}

/* ------------------------------------------------------------------ keys */

#define KEYS_BOUND 100000

/* Keys beside the session's: 100,000, or the command line's. */
static size_t KEYS_OTHER = 100000;

static struct fsm_output key_out;

static double cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of the last apply_timed, in milliseconds: on a shared machine
 * the wall time also counts the time the thread waited for a core. */
static double apply_cpu_ms;

/* Applies one entry and returns how long it took, in milliseconds. */
static double apply_timed(struct fsm *f, uint64_t index, const uint8_t *d,
                          size_t len) {
  double t0 = now_s(), c0 = cpu_s();
  if (fsm_apply(f, index, d, len, &key_out) != 0) {
    fprintf(stderr, "bench: fsm_apply failed at %llu\n",
            (unsigned long long)index);
    exit(1);
  }
  apply_cpu_ms = (cpu_s() - c0) * 1e3;
  return (now_s() - t0) * 1e3;
}

/* Puts n keys `prefix`NNNNNNN`suffix` = 100 bytes, numbered i * stride,
 * bound to session sid when it is not 0, into entries of b stamped
 * time_ms. */
static void build_puts(struct batch *b, const char *prefix, const char *suffix,
                       size_t n, size_t stride, uint64_t sid,
                       uint64_t time_ms) {
  Synod__Request r = SYNOD__REQUEST__INIT;
  Synod__KeyPut p = SYNOD__KEY_PUT__INIT;
  char key[64];
  uint8_t value[100];
  memset(value, 'v', sizeof value);
  r.body_case = SYNOD__REQUEST__BODY_KEY_PUT;
  r.key_put = &p;
  r.session_id = sid;
  p.session_bound = sid != 0;
  p.value.data = value;
  p.value.len = sizeof value;
  p.key.data = (uint8_t *)key;
  for (size_t i = 0; i < n; i++) {
    p.key.len = (size_t)snprintf(key, sizeof key, "%s%07zu%s", prefix,
                                 i * stride, suffix);
    r.sequence = sid ? i + 1 : 0;
    batch_add(b, time_ms, &r);
  }
}

/* The session's keys, spread among the others in key order. */
static void build_store(struct batch *b) {
  size_t stride = KEYS_OTHER > KEYS_BOUND ? KEYS_OTHER / KEYS_BOUND : 1;
  build_puts(b, "registry/devices/", "/gw-1", KEYS_BOUND, stride, 1, 1000);
  build_puts(b, "registry/devices/", "", KEYS_OTHER, 1, 0, 1000);
}

/* The longest apply_batch entry, in CPU time (ms). */
static double batch_max_cpu_ms;

static uint64_t apply_batch(struct fsm *f, uint64_t index,
                            const struct batch *b, double *max_ms) {
  batch_max_cpu_ms = 0;
  for (size_t i = 0; i < b->n; i++) {
    double ms = apply_timed(f, index++, b->buf + b->off[i], b->len[i]);
    *max_ms = ms > *max_ms ? ms : *max_ms;
    batch_max_cpu_ms =
        apply_cpu_ms > batch_max_cpu_ms ? apply_cpu_ms : batch_max_cpu_ms;
  }
  return index;
}

static size_t tick_at(uint64_t time_ms, uint8_t *buf, size_t cap) {
  return fsm_command_encode_tick(time_ms, NULL, 0, buf, cap);
}

/* A session binds KEYS_BOUND keys beside KEYS_OTHER others and
 * expires: the longest single apply from the expiry until the store is
 * clean, and how many entries that took. */
static void bench_key_expiry(void) {
  struct fsm *f = fsm_new(NULL);
  struct batch b = {0};
  uint8_t tick[64];
  double put_max = 0, stall = 0, expiry_ms, work_total = 0;
  open_sessions(f, 1);
  build_store(&b);
  double t0 = now_s();
  uint64_t index = apply_batch(f, 2, &b, &put_max);
  double put_s = now_s() - t0;
  batch_free(&b);
  printf("%-52s %10.0f puts/s (longest %.2f ms, cpu %.2f ms)\n",
         "key put, 100-byte values", (double)(KEYS_BOUND + KEYS_OTHER) / put_s,
         put_max, batch_max_cpu_ms);
  struct fsm_stats st;
  fsm_stats_get(f, &st);
  uint64_t at = fsm_next_deadline(f); /* the session's expiry */
  size_t len = tick_at(at, tick, sizeof tick);
  expiry_ms = apply_timed(f, index++, tick, len);
  double expiry_cpu = apply_cpu_ms, stall_cpu = 0;
  if (fsm_key_revision(f) != KEYS_BOUND + KEYS_OTHER + 1) {
    fprintf(stderr,
            "bench: the session did not expire (revision %llu, at %llu)\n",
            (unsigned long long)fsm_key_revision(f), (unsigned long long)at);
    exit(1);
  }
  size_t ticks = 0;
  while (fsm_next_deadline(f) <= fsm_time_ms(f)) {
    len = tick_at(at + 50 * (ticks + 1), tick, sizeof tick);
    double ms = apply_timed(f, index++, tick, len);
    stall = ms > stall ? ms : stall;
    stall_cpu = apply_cpu_ms > stall_cpu ? apply_cpu_ms : stall_cpu;
    work_total += ms;
    ticks++;
  }
  fsm_stats_get(f, &st);
  if (st.keys != KEYS_OTHER || st.key_work_keys != 0 ||
      fsm_key_revision(f) != KEYS_BOUND + KEYS_OTHER + 1) {
    fprintf(stderr, "bench: %llu keys left, %llu to take out\n",
            (unsigned long long)st.keys, (unsigned long long)st.key_work_keys);
    exit(1);
  }
  printf("%-52s %10.2f ms (cpu %.2f ms)\n",
         "session expiry, 100k bound keys: its entry", expiry_ms, expiry_cpu);
  printf("%-52s %10.2f ms (cpu %.2f ms; %zu Ticks, %.1f ms in all)\n",
         "... then the longest Tick doing the work", stall, stall_cpu, ticks,
         work_total);
  /* The same keys removed by one prefix delete, in one entry. */
  memset(&b, 0, sizeof b);
  build_puts(&b, "registry/gw-2/", "", KEYS_BOUND, 1, 0, at + 60000);
  index = apply_batch(f, index, &b, &put_max);
  batch_free(&b);
  Synod__Request r = SYNOD__REQUEST__INIT;
  Synod__KeyDelete d = SYNOD__KEY_DELETE__INIT;
  uint8_t buf[128];
  d.key.data = (uint8_t *)"registry/gw-2/";
  d.key.len = strlen((const char *)d.key.data);
  d.prefix = true;
  r.body_case = SYNOD__REQUEST__BODY_KEY_DELETE;
  r.key_delete = &d;
  len = fsm_command_encode_request(at + 60000, &r, buf, sizeof buf);
  double del_ms = apply_timed(f, index++, buf, len);
  printf("%-52s %10.2f ms (cpu %.2f ms; one entry: not chunked)\n",
         "prefix delete of 100k keys", del_ms, apply_cpu_ms);
  fsm_free(f);
}

/* List pages of 1,000 keys with values over the store, through
 * fsm_query, and the snapshot of it. */
static void bench_key_list_and_snapshot(void) {
  struct fsm *f = fsm_new(NULL);
  struct batch b = {0};
  double put_max = 0;
  open_sessions(f, 1);
  build_store(&b);
  size_t heap0 = mallinfo2().uordblks;
  apply_batch(f, 2, &b, &put_max);
  size_t heap = mallinfo2().uordblks - heap0;
  batch_free(&b);
  /* The heap the keys took, less the history window's share (the
   * revisions' events), per key, less its name and value. */
  struct fsm_stream hs;
  fsm_key_stream(f, &hs);
  struct fsm_stats st;
  fsm_stats_get(f, &st);
  double per_key = ((double)heap - (double)window_memory_bytes(hs.window) -
                    (double)st.keys_bytes) /
                   (double)st.keys;
  printf("%-52s %10.1f bytes (beyond its name and value)\n",
         "memory per key, history apart", per_key);
  Synod__Request r = SYNOD__REQUEST__INIT;
  Synod__KeyList q = SYNOD__KEY_LIST__INIT;
  char after[64] = "";
  r.body_case = SYNOD__REQUEST__BODY_KEY_LIST;
  r.key_list = &q;
  q.limit = 1000;
  size_t listed = 0;
  double t0 = now_s();
  for (;;) {
    uint8_t *data;
    size_t len;
    q.after.data = (uint8_t *)after;
    q.after.len = strlen(after);
    fsm_query(f, &r, &data, &len);
    Synod__Response *resp = synod__response__unpack(NULL, len, data);
    free(data);
    Synod__KeyListReply *lr = resp->key_list;
    listed += lr->n_kvs;
    bool more = lr->more;
    if (lr->n_kvs > 0) {
      const ProtobufCBinaryData *k = &lr->kvs[lr->n_kvs - 1]->key;
      memcpy(after, k->data, k->len);
      after[k->len] = '\0';
    }
    synod__response__free_unpacked(resp, NULL);
    if (!more) {
      break;
    }
  }
  double dt = now_s() - t0;
  if (listed != KEYS_BOUND + KEYS_OTHER) {
    fprintf(stderr, "bench: listed %zu keys\n", listed);
    exit(1);
  }
  printf("%-52s %10.0f keys/s (pages of 1,000, decoded)\n",
         "key list, keys of 100 bytes", (double)listed / dt);
  uint8_t *img;
  size_t len;
  t0 = now_s();
  fsm_snapshot_encode(f, &img, &len);
  double enc = (now_s() - t0) * 1e3;
  struct fsm *g = fsm_new(NULL);
  t0 = now_s();
  if (fsm_snapshot_decode(g, img, len) != 0) {
    fprintf(stderr, "bench: key snapshot refused\n");
    exit(1);
  }
  double dec = (now_s() - t0) * 1e3;
  printf("%-52s %10.1f ms encode, %.1f ms decode (%zu bytes)\n",
         "snapshot, the keys and their history", enc, dec, len);
  free(img);
  fsm_free(g);
  fsm_free(f);
}

static void bench_keys(void) {
  bench_key_expiry();
  bench_key_list_and_snapshot();
}

int main(int argc, char **argv) {
  const size_t ops = 200000, cycles = 100000;
  if (argc > 1 && strcmp(argv[1], "keys") == 0) {
    KEYS_OTHER = argc > 2 ? (size_t)strtoull(argv[2], NULL, 10) : KEYS_OTHER;
    printf("synod-bench-fsm: keys (%zu bound, %zu others)\n",
           (size_t)KEYS_BOUND, KEYS_OTHER);
    bench_keys();
    return 0;
  }
  struct batch one = {0}, many = {0}, locks = {0};
  double v[RUNS];
  build_counters(&one, ops, 1);
  build_counters(&many, ops, 1000);
  build_locks(&locks, cycles, 100);
  batch_verify(&one, 1, "one counter");
  batch_verify(&many, 1, "1,000 counters");
  batch_verify(&locks, 100, "locks");
  printf("synod-bench-fsm: median of %d runs, apply only unless noted\n", RUNS);
  for (int k = 0; k < RUNS; k++) {
    v[k] = run_batch(&one, 1, 1);
  }
  printf("%-52s %10.0f ops/s\n", "counter add-and-get, 1 counter", median(v));
  for (int k = 0; k < RUNS; k++) {
    v[k] = run_batch(&many, 1, 1);
  }
  printf("%-52s %10.0f ops/s\n", "counter add-and-get, 1,000 counters",
         median(v));
  for (int k = 0; k < RUNS; k++) {
    v[k] = run_encode_inside(ops);
  }
  printf("%-52s %10.0f ops/s\n",
         "counter add-and-get, 1 counter, encode inside", median(v));
  for (int k = 0; k < RUNS; k++) {
    v[k] = run_batch(&locks, 100, 2);
  }
  printf("%-52s %10.0f cycles/s (%.0f entries/s)\n",
         "lock acquire+release, 100 clients, own names", median(v),
         2 * median(v));
  bench_snapshot();
  bench_keys();
  batch_free(&one);
  batch_free(&many);
  batch_free(&locks);
  return 0;
}
