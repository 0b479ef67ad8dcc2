/* The floor of a replicated write on this machine: a write from one
 * client crosses four process-to-process hops (client to leader, leader to
 * follower and back, leader to client) and waits for one flush of a
 * follower's disk, so its latency cannot go below
 *   4 x (one-way loopback hop) + (one small write and fdatasync). */
#ifndef SYNOD_BENCH_FLOOR_H
#define SYNOD_BENCH_FLOOR_H

#include <stddef.h>

struct bench_floor {
  double hop_p50_us; /* TCP on 127.0.0.1, process to process, with epoll */
  double hop_p99_us;
  /* 4 KiB pwrite + fdatasync of a preallocated file, with O_DIRECT where
   * the filesystem allows it (as synod's write-ahead file). */
  double sync_p50_us;
  double sync_p99_us;
  int sync_direct;
  double write_p50_us; /* 4 x hop + sync */
};

/* Measures count ping-pongs (after 100 unmeasured) and count flushes of a
 * file made (and removed) in dir. Returns 0, or 1 with the failure on
 * stderr. */
int bench_floor_measure(const char *dir, size_t count, struct bench_floor *out);

#endif
