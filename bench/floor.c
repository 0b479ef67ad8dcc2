/* synod-bench-floor: what this machine allows a replicated write, before
 * any synod code runs (synod_bench_floor.h says why). Measures both parts
 * the way synodd meets them: two processes ping-ponging 64-byte messages
 * over TCP on 127.0.0.1 with epoll, and 4 KiB pwrites followed by
 * fdatasync on a preallocated file in --dir.
 *
 *   synod-bench-floor [--dir DIR] [--count N]
 *
 * Prints medians and 99th percentiles; exit 0, or 1 when a step fails. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synod_bench_floor.h"

int main(int argc, char **argv) {
  const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  size_t count = 5000;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
      dir = argv[++i];
    } else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
      count = strtoul(argv[++i], NULL, 10);
    } else {
      fprintf(stderr, "usage: synod-bench-floor [--dir DIR] [--count N]\n");
      return strcmp(argv[i], "--help") == 0 ? 0 : 2;
    }
  }
  if (count < 10) {
    count = 10;
  }
  struct bench_floor f;
  if (bench_floor_measure(dir, count, &f) != 0) {
    return 1;
  }
  printf("one-way hop, TCP on 127.0.0.1, process to process: "
         "p50 %.1f us, p99 %.1f us\n",
         f.hop_p50_us, f.hop_p99_us);
  printf("4 KiB pwrite%s + fdatasync in %s: p50 %.1f us, p99 %.1f us\n",
         f.sync_direct ? " (O_DIRECT)" : "", dir, f.sync_p50_us, f.sync_p99_us);
  printf("floor of a replicated write from one client (4 hops + 1 sync): "
         "p50 %.0f us\n",
         f.write_p50_us);
  return 0;
}
