/* Discovery's internals, shared by discovery.c (rounds, backoff, stop),
 * dns.c and k8s.c. */
#ifndef SYNOD_DISCOVERY_INT_H
#define SYNOD_DISCOVERY_INT_H

#include <stdatomic.h>
#include <time.h>

#include "discovery.h"

#define DISCOVERY_INTERVAL_MS 5000
#define DISCOVERY_TIMEOUT_MS 10000
#define DISCOVERY_BACKOFF_MAX_MS 30000
#define DISCOVERY_PATH_MAX 1024
#define DISCOVERY_URL_MAX 2048
#define DISCOVERY_BODY_MAX                                                     \
  (8u << 20) /* a pod list larger than this is an error */

/* What one round produced, written by the worker (k8s) or the resolver
 * callback (dns), read by discovery_round_done on the loop. */
struct discovery_round {
  int rv; /* 0 or SYNOD_E*; errmsg says why */
  char errmsg[DISCOVERY_ERRMSG_MAX];
  struct discovery_candidate candidates[DISCOVERY_CANDIDATES_MAX];
  size_t candidates_n;
  bool token_rotated; /* k8s: the token file changed since last round */
};

struct discovery {
  uv_loop_t *loop;
  enum discovery_method method;
  uint16_t peer_port;
  uint32_t interval_ms, timeout_ms, backoff_max_ms;
  char dns_name[256];
  char ns[256];
  char url[DISCOVERY_URL_MAX];
  char token_file[DISCOVERY_PATH_MAX];
  char ca_file[DISCOVERY_PATH_MAX];
  discovery_cb cb;
  void *cb_arg;
  uv_timer_t timer;            /* the next round */
  uv_work_t work;              /* k8s: the request, on libuv's thread pool */
  uv_getaddrinfo_t gai;        /* dns */
  bool in_flight;              /* a round runs: work or gai is active */
  bool timer_closed;           /* the timer's close callback ran */
  bool stopping;               /* discovery_stop was called */
  atomic_bool abort;           /* read by the worker: give up the request */
  uint32_t failures;           /* consecutive failed rounds */
  uint64_t prng;               /* backoff jitter */
  struct timespec token_mtime; /* worker-owned between rounds */
  bool token_seen;
  struct discovery_round round;
  /* What we last proposed and last failed with, to log changes once. */
  struct discovery_candidate last[DISCOVERY_CANDIDATES_MAX];
  size_t last_n;
  bool have_last;
  char last_err[DISCOVERY_ERRMSG_MAX];
};

/* Starts one round; it ends with discovery_round_done. */
void discovery_dns_round(struct discovery *d);
void discovery_k8s_round(struct discovery *d);

/* Checks the Kubernetes options, reads the namespace file if needed and
 * builds d->url. Returns 0 or SYNOD_EINVAL with errmsg. */
int discovery_k8s_init(struct discovery *d, const struct discovery_options *o,
                       char *errmsg);

/* A round ended (d->round is filled): proposes the candidates or logs the
 * failure, then schedules the next round. On the loop. */
void discovery_round_done(struct discovery *d);

#endif /* SYNOD_DISCOVERY_INT_H */
