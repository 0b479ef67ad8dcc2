/* A client that stays on a follower (synod_options.stay_on_replica): the
 * follower forwards its writes and linearizable reads to the leader
 * (Request.forward, server/node/requests.c requests_forward) and answers
 * them, so the client's subscription stays on the follower instead of
 * moving to the leader with its first write.
 *
 * A client connected to a follower, with a session of a 1 s TTL (its
 * keepalives are forwarded too), subscribes to a channel and, for 1.5 s,
 * publishes to it, adds to a counter and reads it back (linearizable: the
 * read sees its own adds). Every request is answered by the follower; the
 * leader answers none; the subscription delivers every message in order.
 * Then an async client on the follower pipelines a publish, a lock
 * acquire (which the follower does not forward: the client moves to the
 * leader) and another publish: they are applied in that order (nothing
 * of a connection is forwarded after a redirect on it). Last, the leader
 * is SIGKILLed while the first client publishes: every publish succeeds
 * (forwarded ones whose outcome the leader change left unknown are sent
 * again, in the same session), and the subscription delivers each message
 * exactly once, in order. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cluster.h"
#include "http_client.h"
#include "synod.h"

#define OK(call)                                                               \
  do {                                                                         \
    int rv_ = (call);                                                          \
    CHECK(rv_ == 0, "%s: %s", synod_strerror(rv_), synod_client_errmsg());     \
  } while (0)

#define MESSAGES_MAX 100000
#define AFTER_KILL 200

static uint32_t published;

static void publish_next(struct synod_client *cl) {
  char msg[32];
  int len = snprintf(msg, sizeof msg, "message %u", published);
  const void *ptr = msg;
  size_t n = (size_t)len;
  struct synod_channel_published out = {0};
  OK(synod_channel_publish(cl, "stay", &ptr, &n, 1, NULL, 10000, &out));
  published++;
  CHECK(out.first_offset == published,
        "publish %u answered offset %llu: a publish was applied twice or "
        "lost",
        published, (unsigned long long)out.first_offset);
}

/* The subscription delivers messages from..published-1, in order. */
static void expect_delivered(struct synod_subscription *sub, uint32_t from) {
  for (uint32_t i = from; i < published; i++) {
    struct synod_channel_message m;
    char want[32];
    int len = snprintf(want, sizeof want, "message %u", i);
    OK(synod_subscription_next(sub, 10000, &m));
    CHECK(m.offset == i + 1 && m.len == (size_t)len &&
              memcmp(m.data, want, m.len) == 0,
          "delivery %u: offset %llu, '%.*s'", i, (unsigned long long)m.offset,
          (int)m.len, (const char *)m.data);
  }
}

/* One pipelined round: publish, lock acquire, publish. */
struct order {
  int done;
  int status[3];
  uint64_t index[3]; /* the publishes' log indexes, the grant's token */
};

struct slot {
  struct order *o;
  int k;
};

static void slot_published(void *arg, int status,
                           const struct synod_channel_published *p) {
  struct slot *sl = arg;
  sl->o->status[sl->k] = status;
  sl->o->index[sl->k] = status == 0 ? p->index : 0;
  sl->o->done++;
}

static void slot_granted(void *arg, int status,
                         const struct synod_lock_grant *g) {
  struct slot *sl = arg;
  sl->o->status[sl->k] = status;
  sl->o->index[sl->k] = status == 0 ? g->token : 0;
  sl->o->done++;
}

static void closed_cb(void *arg) {
  *(bool *)arg = true;
}

static void pipelined_order(const char *eps, int round) {
  uv_loop_t loop;
  CHECK(uv_loop_init(&loop) == 0, "uv_loop_init");
  struct synod_options o;
  synod_options_init(&o);
  o.endpoints = eps;
  o.endpoints_in_order = true;
  o.stay_on_replica = true;
  o.client_name = "test_stay_order";
  struct synod_async *a;
  CHECK(synod_async_new(&loop, &o, &a) == 0, "synod_async_new");
  struct order ord = {0};
  struct slot sl[3] = {{&ord, 0}, {&ord, 1}, {&ord, 2}};
  const char *msg = "ordered";
  const void *ptr = msg;
  size_t len = strlen(msg);
  char lock[32];
  snprintf(lock, sizeof lock, "stay-lock-%d", round);
  CHECK(synod_async_channel_publish(a, "stay-order", &ptr, &len, 1, NULL,
                                    slot_published, &sl[0]) == 0,
        "publish");
  CHECK(synod_async_lock_acquire(a, lock, 1, 5000, slot_granted, &sl[1]) == 0,
        "lock acquire");
  CHECK(synod_async_channel_publish(a, "stay-order", &ptr, &len, 1, NULL,
                                    slot_published, &sl[2]) == 0,
        "publish");
  uint64_t deadline = test_now_ms() + 20000;
  while (ord.done < 3) {
    CHECK(test_now_ms() < deadline, "round %d: %d of 3 answers in 20 s", round,
          ord.done);
    uv_run(&loop, UV_RUN_ONCE);
  }
  CHECK(ord.status[0] == 0 && ord.status[1] == 0 && ord.status[2] == 0,
        "round %d: answers %d %d %d", round, ord.status[0], ord.status[1],
        ord.status[2]);
  CHECK(ord.index[0] < ord.index[1] && ord.index[1] < ord.index[2],
        "round %d: publish, lock acquire, publish applied at %llu, %llu, "
        "%llu: out of the order sent",
        round, (unsigned long long)ord.index[0],
        (unsigned long long)ord.index[1], (unsigned long long)ord.index[2]);
  bool closed = false;
  synod_async_close(a, closed_cb, &closed);
  while (!closed) {
    uv_run(&loop, UV_RUN_ONCE);
  }
  CHECK(uv_loop_close(&loop) == 0, "a handle outlived the client");
}

int main(void) {
  char synodd[PATH_MAX];
  cluster_synodd_or_skip(synodd, sizeof synodd);
  struct cluster c;
  cluster_start(&c, 3, synodd);
  int l = cluster_wait_leader(&c, 20000);
  int f = (l + 1) % 3, g = (l + 2) % 3;

  /* The follower first; the leader is next in the list, where a redirect
   * would take the client. */
  char eps[256];
  snprintf(eps, sizeof eps, "%s,%s,%s", c.nodes[f].client, c.nodes[l].client,
           c.nodes[g].client);
  struct synod_options o;
  synod_options_init(&o);
  o.endpoints = eps;
  o.endpoints_in_order = true;
  o.stay_on_replica = true;
  o.session_ttl_ms = 1000;
  o.client_name = "test_stay";
  struct synod_client *cl;
  OK(synod_client_new(&o, &cl));
  struct synod_subscribe_options so = {.channel = "stay",
                                       .from = SYNOD_FROM_FIRST};
  struct synod_subscription *sub;
  OK(synod_subscribe(cl, &so, 10000, &sub, NULL));

  uint64_t end = test_now_ms() + 1500;
  int64_t added = 0, value = 0;
  while (test_now_ms() < end && published < MESSAGES_MAX) {
    publish_next(cl);
    OK(synod_counter_add(cl, "stay", 1, 10000, NULL));
    added++;
    OK(synod_counter_get(cl, "stay", 0, 10000, &value));
    CHECK(value == added, "counter read %lld after %lld adds", (long long)value,
          (long long)added);
  }
  expect_delivered(sub, 0);
  const char *pub_ok =
      "synod_requests_total{op=\"channel_publish\",code=\"SYNOD_OK\"}";
  const char *keepalive_ok =
      "synod_requests_total{op=\"session_keepalive\",code=\"SYNOD_OK\"}";
  double on_f = metrics_of(&c, f, pub_ok), on_l = metrics_of(&c, l, pub_ok);
  double forwarded = metrics_of(&c, f, "synod_writes_forwarded_total");
  double keepalives = metrics_of(&c, f, keepalive_ok);
  CHECK(on_f == published && on_l == 0,
        "%u publishes answered %.0f times by the follower %s and %.0f by "
        "the leader %s: the client did not stay",
        published, on_f, c.nodes[f].name, on_l, c.nodes[l].name);
  CHECK(forwarded >= 2.0 * published + (double)keepalives && keepalives >= 2,
        "%s forwarded %.0f writes for %u publishes, %lld adds and %.0f "
        "keepalives",
        c.nodes[f].name, forwarded, published, (long long)added, keepalives);
  printf("  %u publishes, %lld adds and reads, %.0f keepalives through "
         "follower %s: %.0f writes forwarded, none answered by the leader\n",
         published, (long long)added, keepalives, c.nodes[f].name, forwarded);

  for (int round = 0; round < 5; round++) {
    pipelined_order(eps, round);
  }
  printf("  5 pipelined publish, lock acquire, publish from %s: applied in "
         "the order sent\n",
         c.nodes[f].name);

  uint32_t before = published;
  for (uint32_t i = 0; i < AFTER_KILL; i++) {
    if (i == AFTER_KILL / 4) {
      cluster_signal(&c, l, SIGKILL);
    }
    publish_next(cl);
  }
  expect_delivered(sub, before);
  printf("  the leader %s SIGKILLed during %d more publishes: each applied "
         "and delivered once, in order\n",
         c.nodes[l].name, AFTER_KILL);

  synod_subscription_close(sub);
  synod_client_free(cl);
  cluster_stop(&c);
  printf("ok\n");
  return 0;
}
