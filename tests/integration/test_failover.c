/* Failover as clients see it, with 3 real synodd processes: the leader is
 * SIGSTOPped for several election timeouts (its kernel still completes
 * TCP handshakes and queues what clients send). A new client that starts
 * at the stopped replica, and a long-lived one connected to it with an
 * add in flight, both get their add acknowledged well within a 2 s
 * timeout; fresh clients keep succeeding during the pause. After SIGCONT
 * the old leader answers nothing as leader: a client that knows only it
 * is redirected to the new one, and every acknowledged add counted once.
 * Exit 77 (skipped) while synodd does not accept --peers. */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "synod.h"

#define REQUEST_TIMEOUT_MS 2000
#define PAUSE_MS 3000 /* three of the server's longest election timeouts */
/* "Well within the timeout": an election (0.5-1 s) plus the client's
 * stall bound or attempt delay, with room for a loaded machine. */
#define WELL_WITHIN_MS (REQUEST_TIMEOUT_MS * 4 / 5)

/* What a client's leader_cb last reported. */
struct leader_seen {
  pthread_mutex_t mu;
  char name[64];
};

static void on_leader(void *arg, const char *name, const char *address,
                      uint64_t term) {
  struct leader_seen *seen = arg;
  (void)address;
  (void)term;
  pthread_mutex_lock(&seen->mu);
  snprintf(seen->name, sizeof seen->name, "%s", name);
  pthread_mutex_unlock(&seen->mu);
}

/* A client trying `endpoints` in the order given, 2 s per request. */
static struct synod_client *client_in_order(const char *endpoints,
                                            struct leader_seen *seen) {
  struct synod_options o;
  struct synod_client *cl;
  synod_options_init(&o);
  o.endpoints = endpoints;
  o.endpoints_in_order = true;
  o.client_name = "failover";
  o.request_timeout_ms = REQUEST_TIMEOUT_MS;
  if (seen != NULL) {
    o.leader_cb = on_leader;
    o.cb_arg = seen;
  }
  CHECK(synod_client_new(&o, &cl) == 0, "%s", synod_client_errmsg());
  return cl;
}

/* The endpoints with replica `first` first, the others in index order. */
static void endpoints_from(const struct cluster *c, int first, char *out,
                           size_t len) {
  snprintf(out, len, "%s", c->nodes[first].client);
  for (int i = 0; i < c->n; i++) {
    size_t l = strlen(out);
    if (i != first) {
      snprintf(out + l, len - l, ",%s", c->nodes[i].client);
    }
  }
}

/* One add through cl; fails the test unless acknowledged. Returns how
 * long it took. */
static uint64_t add_one(struct synod_client *cl, const char *who, int *acked) {
  uint64_t t0 = test_now_ms();
  int64_t v;
  int rv = synod_counter_add(cl, "failover", 1, 0, &v);
  uint64_t took = test_now_ms() - t0;
  CHECK(rv == 0, "%s: add not acknowledged after %" PRIu64 " ms: %s (%s)", who,
        took, synod_client_errmsg(), synod_errname(rv));
  (*acked)++;
  return took;
}

/* Waits (bounded) until every running replica but `skip` names one
 * leader among themselves; returns its index. */
static int wait_leader_without(struct cluster *c, int skip,
                               uint32_t timeout_ms) {
  uint64_t until = test_now_ms() + timeout_ms;
  for (;;) {
    char first[64] = "";
    bool agree = true;
    for (int i = 0; i < c->n && agree; i++) {
      struct synod_status st;
      if (i == skip || c->nodes[i].pid == 0) {
        continue;
      }
      agree = cluster_status(c, i, 0, 300, &st) == 0 &&
              st.leader_name[0] != '\0' &&
              (first[0] == '\0' || strcmp(first, st.leader_name) == 0);
      if (agree) {
        snprintf(first, sizeof first, "%s", st.leader_name);
        synod_status_free(&st);
      }
    }
    for (int i = 0; agree && i < c->n; i++) {
      if (i != skip && strcmp(c->nodes[i].name, first) == 0) {
        return i;
      }
    }
    CHECK(test_now_ms() < until,
          "no leader among the replicas other than %s within %u ms",
          c->nodes[skip].name, timeout_ms);
    usleep(20000);
  }
}

/* Waits (bounded) until replica i reports itself a follower of `leader`. */
static void wait_follower_of(struct cluster *c, int i, const char *leader,
                             uint32_t timeout_ms) {
  uint64_t until = test_now_ms() + timeout_ms;
  struct synod_status st;
  for (;;) {
    if (cluster_status(c, i, 0, 500, &st) == 0) {
      bool ok =
          strcmp(st.role, "leader") != 0 && strcmp(st.leader_name, leader) == 0;
      CHECK(ok || test_now_ms() < until,
            "%s still says role %s, leader '%s' %u ms after SIGCONT",
            c->nodes[i].name, st.role, st.leader_name, timeout_ms);
      synod_status_free(&st);
      if (ok) {
        return;
      }
    }
    CHECK(test_now_ms() < until, "%s does not answer %u ms after SIGCONT",
          c->nodes[i].name, timeout_ms);
    usleep(20000);
  }
}

/* SIGCONT for the old leader l: it must answer nothing as leader. A
 * client that knows only it is redirected to the new leader nl, and it
 * soon reports itself nl's follower. */
static void after_sigcont(struct cluster *c, int l, int nl,
                          struct synod_client *lived, int *acked) {
  struct leader_seen seen = {.mu = PTHREAD_MUTEX_INITIALIZER};
  const char *old = c->nodes[l].name;
  struct synod_client *only_old;
  cluster_signal(c, l, SIGCONT);
  printf("SIGCONT %s\n", old);
  only_old = client_in_order(c->nodes[l].client, &seen);
  add_one(only_old, "client knowing only the old leader", acked);
  pthread_mutex_lock(&seen.mu);
  CHECK(seen.name[0] != '\0' && strcmp(seen.name, old) != 0,
        "the client knowing only %s was told the leader is '%s'", old,
        seen.name);
  pthread_mutex_unlock(&seen.mu);
  wait_follower_of(c, l, c->nodes[nl].name, 5000);
  printf("ok after SIGCONT %s follows %s; its clients are redirected\n", old,
         c->nodes[nl].name);
  add_one(lived, "long-lived client after SIGCONT", acked);
  synod_client_free(only_old);
}

int main(void) {
  char synodd[PATH_MAX], eps[256];
  struct cluster c;
  int acked = 0, fresh = 0;
  uint64_t took, worst = 0;
  setvbuf(stdout, NULL, _IONBF, 0);
  cluster_synodd_or_skip(synodd, sizeof synodd);
  cluster_start(&c, 3, synodd);
  int l = cluster_wait_leader(&c, 30000);
  const char *old = c.nodes[l].name;
  endpoints_from(&c, l, eps, sizeof eps);

  /* A long-lived client, connected to the leader (tried first). */
  struct synod_client *lived = client_in_order(eps, NULL);
  add_one(lived, "long-lived client before the pause", &acked);

  cluster_signal(&c, l, SIGSTOP);
  uint64_t stopped_at = test_now_ms();
  printf("SIGSTOP %s (the leader)\n", old);

  struct synod_client *fresh_cl = client_in_order(eps, NULL);
  took = add_one(fresh_cl, "new client starting at the stopped leader", &acked);
  synod_client_free(fresh_cl);
  CHECK(took < WELL_WITHIN_MS,
        "a new client starting at the stopped %s took %" PRIu64 " ms", old,
        took);
  printf("ok a new client starting at %s: add acknowledged in %" PRIu64 " ms\n",
         old, took);
  took = add_one(lived, "long-lived client during the pause", &acked);
  CHECK(took < WELL_WITHIN_MS,
        "the client connected to the stopped %s took %" PRIu64 " ms", old,
        took);
  printf("ok the long-lived client connected to %s: add acknowledged in "
         "%" PRIu64 " ms\n",
         old, took);

  int nl = wait_leader_without(&c, l, 10000);
  printf("  %s leads %" PRIu64 " ms after the SIGSTOP\n", c.nodes[nl].name,
         test_now_ms() - stopped_at);
  /* Until the pause has lasted PAUSE_MS: new clients, each starting at
   * the stopped replica, one add each. */
  while (test_now_ms() - stopped_at < PAUSE_MS) {
    fresh_cl = client_in_order(eps, NULL);
    took = add_one(fresh_cl, "new client during the pause", &acked);
    synod_client_free(fresh_cl);
    worst = took > worst ? took : worst;
    fresh++;
  }
  printf("ok %d more new clients starting at %s during the pause: slowest "
         "add %" PRIu64 " ms\n",
         fresh, old, worst);
  add_one(lived, "long-lived client late in the pause", &acked);

  after_sigcont(&c, l, nl, lived, &acked);
  int64_t v = -1;
  CHECK(synod_counter_get(lived, "failover", 0, 5000, &v) == 0, "get: %s",
        synod_client_errmsg());
  CHECK(v == acked, "the counter is %" PRId64 " after %d acknowledged adds", v,
        acked);
  printf("ok %d acknowledged adds, counted once each\n", acked);
  synod_client_free(lived);
  cluster_stop(&c);
  printf("PASS\n");
  return 0;
}
