/* Benchmark of server/store: append throughput with real syncs (LMDB's
 * default durability) for batches of 1, 16 and 256 entries of 100 bytes.
 *
 *   synod-bench-store [--dir DIR] [--seconds S] [--reps N]
 *
 * Each repetition appends for S seconds (default 1) into a fresh store;
 * prints the median of N (default 5) repetitions per batch size. */
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"
#include "store.h"

#define ENTRY_BYTES 100
#define REPS_MAX 21

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int rm_one(const char *path, const struct stat *sb, int flag,
                  struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a;
  double y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Appends batches of batch_len entries for seconds into a fresh store in
 * dir/run; returns entries per second, or -1 on error. */
static double bench_run(const char *dir, size_t batch_len, double seconds) {
  static uint8_t payload[ENTRY_BYTES];
  struct store_entry v[256];
  struct store s;
  char path[4200];
  uint64_t next = 1;
  double start;
  double elapsed;

  snprintf(path, sizeof path, "%s/run", dir);
  nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  if (store_open(&s, path, NULL) != 0) {
    fprintf(stderr, "bench: %s\n", store_errmsg(&s));
    return -1;
  }
  memset(payload, 0xab, sizeof payload);
  start = now_s();
  do {
    for (size_t i = 0; i < batch_len; i++) {
      v[i] = (struct store_entry){
          .index = next + i, .term = 1, .data = payload, .len = ENTRY_BYTES};
    }
    if (store_log_append(&s, v, batch_len) != 0) {
      fprintf(stderr, "bench: %s\n", store_errmsg(&s));
      store_close(&s);
      return -1;
    }
    next += batch_len;
    elapsed = now_s() - start;
  } while (elapsed < seconds);
  store_close(&s);
  nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  return (double)(next - 1) / elapsed;
}

int main(int argc, char **argv) {
  static const size_t batches[] = {1, 16, 256};
  const char *dir_arg = NULL;
  char dir[4096];
  double seconds = 1.0;
  int reps = 5;
  double eps[REPS_MAX];

  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--dir") == 0) {
      dir_arg = argv[i + 1];
    } else if (strcmp(argv[i], "--seconds") == 0) {
      seconds = atof(argv[i + 1]);
    } else if (strcmp(argv[i], "--reps") == 0) {
      reps = atoi(argv[i + 1]);
    } else {
      fprintf(stderr, "usage: %s [--dir DIR] [--seconds S] [--reps N]\n",
              argv[0]);
      return 2;
    }
  }
  reps = reps < 1 ? 1 : reps > REPS_MAX ? REPS_MAX : reps;
  log_init("bench", LOG_WARN);
  if (dir_arg != NULL) {
    snprintf(dir, sizeof dir, "%s", dir_arg);
    mkdir(dir, 0700);
  } else {
    snprintf(dir, sizeof dir, "/tmp/synod-bench-store-XXXXXX");
    if (mkdtemp(dir) == NULL) {
      perror("mkdtemp");
      return 1;
    }
  }
  printf("store append, sync on, %d-byte entries, %d x %.1f s, dir %s\n",
         ENTRY_BYTES, reps, seconds, dir);
  printf("%8s %14s %10s %12s\n", "batch", "entries/s", "MB/s", "batches/s");
  for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
    for (int r = 0; r < reps; r++) {
      eps[r] = bench_run(dir, batches[b], seconds);
      if (eps[r] < 0) {
        return 1;
      }
    }
    qsort(eps, (size_t)reps, sizeof eps[0], cmp_double);
    double med = eps[reps / 2];
    printf("%8zu %14.0f %10.2f %12.0f\n", batches[b], med,
           med * ENTRY_BYTES / 1e6, med / (double)batches[b]);
  }
  if (dir_arg == NULL) {
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  }
  return 0;
}
