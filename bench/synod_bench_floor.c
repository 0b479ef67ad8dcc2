/* The floor of a replicated write on this machine (see floor.c and
 * synod-bench): a one-way loopback hop between two processes and a 4 KiB
 * write + fdatasync, measured before any synod code runs. */
#include "synod_bench_floor.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FLOOR_FILE_BYTES ((size_t)8 << 20)
#define FLOOR_WRITE_BYTES 4096

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a;
  double y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double percentile(double *v, size_t n, double p) {
  qsort(v, n, sizeof *v, cmp_double);
  return v[(size_t)((double)(n - 1) * p)];
}

static int fail(const char *what) {
  fprintf(stderr, "synod-bench: floor: %s: %s\n", what, strerror(errno));
  return 1;
}

/* Waits for one message on fd (epoll, as libuv does) and reads it. */
static int await(int ep, int fd, char *buf, size_t len) {
  struct epoll_event e;
  size_t got = 0;
  while (got < len) {
    if (epoll_wait(ep, &e, 1, 5000) != 1) {
      return -1;
    }
    ssize_t n = read(fd, buf + got, len - got);
    if (n <= 0) {
      return -1;
    }
    got += (size_t)n;
  }
  return 0;
}

static int epoll_for(int fd) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event e = {.events = EPOLLIN};
  if (ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) != 0) {
    close(ep);
    return -1;
  }
  return ep;
}

/* One-way hop latencies (round trip / 2) of count ping-pongs. */
static int measure_hops(double *v, size_t count) {
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof a;
  int one = 1;
  char buf[64] = {0};
  int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) != 0 ||
      listen(l, 1) != 0 || getsockname(l, (struct sockaddr *)&a, &alen) != 0) {
    return fail("listen on 127.0.0.1");
  }
  pid_t pid = fork();
  if (pid < 0) {
    return fail("fork");
  }
  if (pid == 0) { /* the echoing peer */
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a) != 0) {
      _exit(1);
    }
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int ep = epoll_for(c);
    for (size_t i = 0; i < count + 100; i++) {
      if (await(ep, c, buf, sizeof buf) != 0 ||
          write(c, buf, sizeof buf) != (ssize_t)sizeof buf) {
        _exit(1);
      }
    }
    _exit(0);
  }
  int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
  close(l);
  if (s < 0) {
    return fail("accept");
  }
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int ep = epoll_for(s);
  int rv = 0;
  for (size_t i = 0; i < count + 100 && rv == 0; i++) {
    double t = now_us();
    if (write(s, buf, sizeof buf) != (ssize_t)sizeof buf ||
        await(ep, s, buf, sizeof buf) != 0) {
      rv = fail("ping-pong");
    } else if (i >= 100) { /* the first hundred warm up */
      v[i - 100] = (now_us() - t) / 2;
    }
  }
  close(s);
  close(ep);
  int status;
  waitpid(pid, &status, 0);
  return rv;
}

/* Latencies of count 4 KiB overwrites of a zero-filled file + fdatasync,
 * written with O_DIRECT if the filesystem takes it (*direct says). */
static int measure_syncs(const char *dir, double *v, size_t count,
                         int *direct) {
  char path[4096];
  static _Alignas(4096) char block[FLOOR_WRITE_BYTES];
  snprintf(path, sizeof path, "%s/synod-bench-floor.XXXXXX", dir);
  int fd = mkstemp(path);
  if (fd < 0) {
    return fail(path);
  }
  unlink(path);
  for (size_t off = 0; off < FLOOR_FILE_BYTES; off += sizeof block) {
    if (pwrite(fd, block, sizeof block, (off_t)off) != (ssize_t)sizeof block) {
      return fail("fill the file");
    }
  }
  if (fsync(fd) != 0) {
    return fail("fsync");
  }
  int flags = fcntl(fd, F_GETFL);
  *direct = flags >= 0 && fcntl(fd, F_SETFL, flags | O_DIRECT) == 0;
  memset(block, 'x', sizeof block);
  for (size_t i = 0; i < count; i++) {
    off_t off = (off_t)((i * sizeof block) % FLOOR_FILE_BYTES);
    double t = now_us();
    if (pwrite(fd, block, sizeof block, off) != (ssize_t)sizeof block ||
        fdatasync(fd) != 0) {
      return fail("pwrite + fdatasync");
    }
    v[i] = now_us() - t;
  }
  close(fd);
  return 0;
}

int bench_floor_measure(const char *dir, size_t count,
                        struct bench_floor *out) {
  double *hops = calloc(count, sizeof *hops);
  double *syncs = calloc(count, sizeof *syncs);
  int rv = hops == NULL || syncs == NULL || measure_hops(hops, count) != 0 ||
           measure_syncs(dir, syncs, count, &out->sync_direct) != 0;
  if (rv == 0) {
    out->hop_p50_us = percentile(hops, count, 0.5);
    out->hop_p99_us = percentile(hops, count, 0.99);
    out->sync_p50_us = percentile(syncs, count, 0.5);
    out->sync_p99_us = percentile(syncs, count, 0.99);
    out->write_p50_us = 4 * out->hop_p50_us + out->sync_p50_us;
  }
  free(hops);
  free(syncs);
  return rv;
}
