/* Helpers of the libsynod tests against the mock (test_clientlib.c,
 * test_subscription.c), included by them: bounded waits, and stand-ins for a
 * replica that stops answering (a listener that never accepts, a proxy
 * that goes silent). Needs <check.h> first. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Polls cond every 2 ms for at most timeout_ms: a bounded wait on the
 * other thread's progress, not a sleep that hopes. */
#define WAIT_UNTIL(cond, timeout_ms)                                           \
  do {                                                                         \
    int waited_ = 0;                                                           \
    while (!(cond) && waited_ < (timeout_ms)) {                                \
      usleep(2000);                                                            \
      waited_ += 2;                                                            \
    }                                                                          \
    ck_assert_msg((cond), "timed out after %d ms waiting for %s",              \
                  (timeout_ms), #cond);                                        \
  } while (0)

static inline uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ------------------------------------------------- silent replicas */

/* Timing bounds are scaled under valgrind, which slows everything down
 * (SYNOD_TEST_VALGRIND is set by the valgrind.* tests). */
static inline uint32_t slow(uint32_t ms) {
  return getenv("SYNOD_TEST_VALGRIND") != NULL ? ms * 5 : ms;
}

/* Binds a listening socket on 127.0.0.1 (a free port) and writes its
 * "ip:port" into address. */
static inline int listen_any(char *address, size_t len) {
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof sa;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  ck_assert_int_eq(listen(fd, 64), 0);
  ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
  snprintf(address, len, "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
  return fd;
}

/* What a SIGSTOPped replica looks like from outside: it listens, never
 * accepts, and the kernel completes every handshake and queues whatever
 * is sent. Close the returned fd to end it. */
static inline int silent_listener(char *address, size_t len) {
  return listen_any(address, len);
}

/* A TCP proxy in front of a mock: forwards both ways until `silent` is
 * set, then keeps every connection (and accepts new ones) but forwards
 * nothing: a replica that completed the handshake and went silent. */
#define PROXY_PAIRS 16
struct proxy {
  int lfd;
  char address[64];
  struct sockaddr_in target;
  int pairs[PROXY_PAIRS][2]; /* client side, mock side; -1 = free */
  _Atomic bool silent;
  _Atomic bool silent_now; /* the proxy's thread forwards nothing now */
  _Atomic bool stop;
  pthread_t thread;
};

static void proxy_accept(struct proxy *p) {
  int c = accept(p->lfd, NULL, NULL), t;
  if (c < 0) {
    return;
  }
  t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (t < 0 ||
      connect(t, (struct sockaddr *)&p->target, sizeof p->target) != 0) {
    close(c);
    if (t >= 0) {
      close(t);
    }
    return;
  }
  for (int i = 0; i < PROXY_PAIRS; i++) {
    if (p->pairs[i][0] < 0) {
      p->pairs[i][0] = c;
      p->pairs[i][1] = t;
      return;
    }
  }
  close(c);
  close(t);
}

/* Moves what one side of pair i has to the other; closes the pair on EOF
 * or error. */
static void proxy_pump(struct proxy *p, int i, int from) {
  char buf[65536];
  ssize_t n = read(p->pairs[i][from], buf, sizeof buf);
  for (ssize_t off = 0; n > 0 && off < n;) {
    ssize_t w = write(p->pairs[i][1 - from], buf + off, (size_t)(n - off));
    if (w <= 0) {
      n = -1;
      break;
    }
    off += w;
  }
  if (n <= 0) {
    close(p->pairs[i][0]);
    close(p->pairs[i][1]);
    p->pairs[i][0] = p->pairs[i][1] = -1;
  }
}

static void *proxy_main(void *arg) {
  struct proxy *p = arg;
  while (!p->stop) {
    struct pollfd pf[1 + 2 * PROXY_PAIRS];
    int idx[1 + 2 * PROXY_PAIRS], n = 1;
    bool silent = p->silent;
    p->silent_now = silent;
    pf[0] = (struct pollfd){.fd = p->lfd, .events = POLLIN};
    for (int i = 0; i < PROXY_PAIRS && !silent; i++) {
      for (int side = 0; side < 2 && p->pairs[i][0] >= 0; side++) {
        pf[n] = (struct pollfd){.fd = p->pairs[i][side], .events = POLLIN};
        idx[n++] = i * 2 + side;
      }
    }
    if (poll(pf, (nfds_t)n, 10) <= 0) {
      continue;
    }
    if (pf[0].revents & POLLIN) {
      proxy_accept(p);
    }
    for (int k = 1; k < n; k++) {
      int i = idx[k] / 2, side = idx[k] % 2;
      if ((pf[k].revents & (POLLIN | POLLHUP | POLLERR)) &&
          p->pairs[i][side] == pf[k].fd) {
        proxy_pump(p, i, side);
      }
    }
  }
  return NULL;
}

static struct proxy *proxy_start(const char *target) {
  struct proxy *p = calloc(1, sizeof *p);
  unsigned port;
  ck_assert_int_eq(sscanf(target, "127.0.0.1:%u", &port), 1);
  p->target.sin_family = AF_INET;
  p->target.sin_port = htons((uint16_t)port);
  p->target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  memset(p->pairs, -1, sizeof p->pairs);
  p->lfd = listen_any(p->address, sizeof p->address);
  pthread_create(&p->thread, NULL, proxy_main, p);
  return p;
}

static void proxy_stop(struct proxy *p) {
  p->stop = true;
  pthread_join(p->thread, NULL);
  for (int i = 0; i < PROXY_PAIRS; i++) {
    if (p->pairs[i][0] >= 0) {
      close(p->pairs[i][0]);
      close(p->pairs[i][1]);
    }
  }
  close(p->lfd);
  free(p);
}
