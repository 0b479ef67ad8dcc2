/* Channels on 3 real synodd processes: two publishers publish 300 messages
 * each while the leader is SIGKILLed and restarted; every acknowledged
 * message is there exactly once, at dense offsets, each publisher's in its
 * own order (a publish retried over the failover counts once), and every
 * replica reads the same channel; retention and bad input end to end
 * (SYNOD_ECOMPACTED, SYNOD_ETOOBIG, SYNOD_ELIMIT change nothing). */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "synod.h"

#define PUBLISHERS 2
#define PER_PUBLISHER 300

#define OK(call) CHECK((call) == 0, "%s", synod_client_errmsg())

static struct synod_client *client(const char *endpoints, uint32_t timeout_ms) {
  struct synod_options o;
  struct synod_client *c;
  synod_options_init(&o);
  o.endpoints = endpoints;
  o.client_name = "channels test";
  o.request_timeout_ms = timeout_ms;
  CHECK(synod_client_new(&o, &c) == 0, "%s", synod_client_errmsg());
  return c;
}

struct publisher {
  const struct cluster *c;
  int id;
  atomic_int acked;
  int failed;
};

static void *publisher_main(void *arg) {
  struct publisher *p = arg;
  struct synod_client *c = client(p->c->endpoints, 30000);
  for (int k = 0; k < PER_PUBLISHER; k++) {
    char msg[32];
    const void *ptr = msg;
    size_t len = (size_t)snprintf(msg, sizeof msg, "p%d-%d", p->id, k);
    if (synod_channel_publish(c, "events", &ptr, &len, 1, NULL, 0, NULL) == 0) {
      atomic_fetch_add(&p->acked, 1);
    } else {
      fprintf(stderr, "publisher %d, message %d: %s\n", p->id, k,
              synod_client_errmsg());
      p->failed++;
    }
  }
  synod_client_free(c);
  return NULL;
}

/* Reads the whole channel from one replica alone (stale: its own state). */
static void read_all(const char *endpoint, unsigned flags,
                     struct synod_channel_messages *all) {
  struct synod_client *c = client(endpoint, 10000);
  memset(all, 0, sizeof *all);
  all->messages = calloc(PUBLISHERS * PER_PUBLISHER + 1, sizeof *all->messages);
  uint64_t next = 0;
  for (;;) {
    struct synod_channel_messages m;
    OK(synod_channel_read(c, "events", next, 0, flags, 0, &m));
    for (size_t i = 0; i < m.count && all->count <= PUBLISHERS * PER_PUBLISHER;
         i++) {
      all->messages[all->count++] = m.messages[i];
      m.messages[i].data = NULL; /* moved */
      next = m.messages[i].offset + 1;
    }
    all->next_offset = m.next_offset;
    size_t got = m.count;
    synod_channel_messages_free(&m);
    if (got == 0 || next >= all->next_offset) {
      break;
    }
  }
  synod_client_free(c);
}

static void check_history(const struct synod_channel_messages *all) {
  int last[PUBLISHERS];
  for (int i = 0; i < PUBLISHERS; i++) {
    last[i] = -1;
  }
  CHECK(all->count == PUBLISHERS * PER_PUBLISHER, "%zu messages, want %d",
        all->count, PUBLISHERS * PER_PUBLISHER);
  for (size_t i = 0; i < all->count; i++) {
    const struct synod_channel_message *m = &all->messages[i];
    int p, k;
    CHECK(m->offset == i + 1, "message %zu at offset %" PRIu64, i, m->offset);
    CHECK(sscanf(m->data, "p%d-%d", &p, &k) == 2 && p >= 0 && p < PUBLISHERS,
          "offset %" PRIu64 ": '%s'", m->offset, (char *)m->data);
    CHECK(k == last[p] + 1,
          "offset %" PRIu64 ": publisher %d's message %d after %d (a gap or "
          "a duplicate)",
          m->offset, p, k, last[p]);
    last[p] = k;
    CHECK(i == 0 || m->index >= all->messages[i - 1].index,
          "offset %" PRIu64 ": index %" PRIu64 " below the one before",
          m->offset, m->index);
  }
}

static void free_all(struct synod_channel_messages *all) {
  synod_channel_messages_free(all);
}

static void scenario_failover(struct cluster *c) {
  struct publisher pubs[PUBLISHERS];
  pthread_t threads[PUBLISHERS];
  for (int i = 0; i < PUBLISHERS; i++) {
    pubs[i] = (struct publisher){.c = c, .id = i};
    CHECK(pthread_create(&threads[i], NULL, publisher_main, &pubs[i]) == 0,
          "thread");
  }
  for (int kill = 0; kill < 2; kill++) {
    int target = kill * PER_PUBLISHER / 3 + PER_PUBLISHER / 4;
    uint64_t deadline = test_now_ms() + 60000;
    while (atomic_load(&pubs[0].acked) < target && test_now_ms() < deadline) {
      usleep(5000);
    }
    int leader = cluster_wait_leader(c, 20000);
    cluster_signal(c, leader, SIGKILL);
    printf("SIGKILLed %s after %d acknowledged publishes\n",
           c->nodes[leader].name, atomic_load(&pubs[0].acked));
    cluster_wait_leader(c, 20000);
    cluster_restart(c, leader);
  }
  for (int i = 0; i < PUBLISHERS; i++) {
    pthread_join(threads[i], NULL);
    CHECK(pubs[i].failed == 0, "publisher %d: %d publishes failed", i,
          pubs[i].failed);
  }
  struct synod_channel_messages all;
  read_all(c->endpoints, 0, &all);
  check_history(&all);
  free_all(&all);
  /* Every replica, read alone from its own state once caught up. */
  for (int i = 0; i < c->n; i++) {
    uint64_t deadline = test_now_ms() + 20000;
    do {
      read_all(c->nodes[i].client, SYNOD_READ_STALE, &all);
      if (all.count == PUBLISHERS * PER_PUBLISHER) {
        break;
      }
      free_all(&all);
      usleep(50 * 1000);
    } while (test_now_ms() < deadline);
    check_history(&all);
    free_all(&all);
  }
  printf("ok failover: %d messages, exactly once, same on every replica\n",
         PUBLISHERS * PER_PUBLISHER);
}

static void scenario_limits(struct cluster *c) {
  struct synod_client *cl = client(c->endpoints, 10000);
  struct synod_channel_limits l = {.max_messages = 3};
  struct synod_channel_messages m;
  struct synod_channel_info ci;
  OK(synod_channel_create(cl, "small", &l, 0, NULL));
  for (int k = 0; k < 5; k++) {
    const void *ptr = "x";
    size_t len = 1;
    OK(synod_channel_publish(cl, "small", &ptr, &len, 1, NULL, 0, NULL));
  }
  CHECK(synod_channel_read(cl, "small", 1, 0, 0, 0, &m) == SYNOD_ECOMPACTED &&
            strstr(synod_client_errmsg(), "first retained is 3") != NULL,
        "read below the window: %s", synod_client_errmsg());
  static char big[300000];
  const void *ptr = big;
  size_t len = sizeof big;
  CHECK(synod_channel_publish(cl, "small", &ptr, &len, 1, NULL, 0, NULL) ==
            SYNOD_ETOOBIG,
        "oversized: %s", synod_client_errmsg());
  l.refuse_when_full = true;
  CHECK(synod_channel_create(cl, "small", &l, 0, NULL) == SYNOD_EEXIST,
        "create with other limits: %s", synod_client_errmsg());
  /* Limits past what a window holds, or an age whose expiry would wrap
   * (every message gone at once): refused by the leader, nothing made
   * (found by review: both were accepted). */
  struct synod_channel_limits huge = {.max_messages = 1000001};
  CHECK(synod_channel_create(cl, "huge", &huge, 0, NULL) == SYNOD_ERANGE &&
            strstr(synod_client_errmsg(), "max_messages 1000001") != NULL,
        "max_messages over the cap: %s", synod_client_errmsg());
  huge = (struct synod_channel_limits){.max_age_ms = UINT64_MAX};
  CHECK(synod_channel_create(cl, "huge", &huge, 0, NULL) == SYNOD_ERANGE &&
            strstr(synod_client_errmsg(), "max_age_ms") != NULL,
        "max_age_ms over the cap: %s", synod_client_errmsg());
  CHECK(synod_channel_info(cl, "huge", 0, 0, &ci) == SYNOD_ENOTFOUND,
        "a refused create made the channel");
  OK(synod_channel_info(cl, "small", 0, 0, &ci));
  CHECK(ci.first_offset == 3 && ci.next_offset == 6 && ci.messages == 3,
        "small: %" PRIu64 "..%" PRIu64 ", %" PRIu64 " messages",
        ci.first_offset, ci.next_offset, ci.messages);
  synod_channel_info_free(&ci);
  synod_client_free(cl);
  printf("ok limits and bad input\n");
}

/* Reading page by page, pinned to the channel read (the last message's
 * index): once it is deleted and created again (offsets from 1 again),
 * the next page is refused rather than read from the new channel, on the
 * leader and on each replica alone (a stale read, once it has applied
 * what the leader had; before, one that has not applied the pin says
 * so). */
static void scenario_pinned_read(struct cluster *c) {
  struct synod_client *cl = client(c->endpoints, 10000);
  struct synod_channel_messages m;
  for (int k = 0; k < 4; k++) {
    const void *ptr = "old";
    size_t len = 3;
    OK(synod_channel_publish(cl, "pinned", &ptr, &len, 1, NULL, 0, NULL));
  }
  OK(synod_channel_read_pinned(cl, "pinned", 1, 2, 0, 0, 0, &m));
  CHECK(m.count == 2, "first page: %zu messages", m.count);
  uint64_t last = m.messages[1].index;
  synod_channel_messages_free(&m);
  OK(synod_channel_read_pinned(cl, "pinned", 3, 2, 0, last, 0, &m));
  CHECK(m.count == 2, "second page, pinned: %zu messages", m.count);
  synod_channel_messages_free(&m);
  OK(synod_channel_delete(cl, "pinned", 0, NULL));
  for (int k = 0; k < 5; k++) { /* created again, further than offset 3 */
    const void *ptr = "new";
    size_t len = 3;
    OK(synod_channel_publish(cl, "pinned", &ptr, &len, 1, NULL, 0, NULL));
  }
  int rv = synod_channel_read_pinned(cl, "pinned", 3, 2, 0, last, 0, &m);
  CHECK(rv == SYNOD_ENOTFOUND &&
            strstr(synod_client_errmsg(), "created again at index") != NULL,
        "pinned read of a channel created again: %s (%s)", synod_strerror(rv),
        synod_client_errmsg());
  struct synod_status st;
  CHECK(cluster_status(c, cluster_wait_leader(c, 10000), 0, 10000, &st) == 0,
        "leader status");
  uint64_t commit = st.commit_index;
  synod_status_free(&st);
  for (int i = 0; i < c->n; i++) {
    struct synod_client *one = client(c->nodes[i].client, 10000);
    /* A replica alone (stale) cannot judge a pin it has not applied. */
    rv = synod_channel_read_pinned(one, "pinned", 3, 2, SYNOD_READ_STALE,
                                   commit + 1000000, 0, &m);
    CHECK(rv == SYNOD_EUNAVAILABLE &&
              strstr(synod_client_errmsg(), "has not applied") != NULL,
          "%s, a pin past its applied index: %s (%s)", c->nodes[i].name,
          synod_strerror(rv), synod_client_errmsg());
    uint64_t deadline = test_now_ms() + 20000, applied = 0;
    while (applied < commit) {
      CHECK(test_now_ms() < deadline, "%s applied %" PRIu64 " of %" PRIu64,
            c->nodes[i].name, applied, commit);
      if (cluster_status(c, i, 0, 2000, &st) == 0) {
        applied = st.applied_index;
        synod_status_free(&st);
      }
    }
    rv = synod_channel_read_pinned(one, "pinned", 3, 2, SYNOD_READ_STALE, last,
                                   0, &m);
    CHECK(rv == SYNOD_ENOTFOUND &&
              strstr(synod_client_errmsg(), "created again at index") != NULL,
          "%s, a stale pinned read: %s (%s)", c->nodes[i].name,
          synod_strerror(rv), synod_client_errmsg());
    synod_client_free(one);
  }
  OK(synod_channel_read(cl, "pinned", 3, 2, 0, 0, &m)); /* unpinned */
  CHECK(m.count == 2 && memcmp(m.messages[0].data, "new", 3) == 0,
        "unpinned: %zu messages", m.count);
  synod_channel_messages_free(&m);
  synod_client_free(cl);
  printf("ok pinned reads\n");
}

int main(void) {
  char synodd[PATH_MAX];
  cluster_synodd_or_skip(synodd, sizeof synodd);
  struct cluster c;
  cluster_start(&c, 3, synodd);
  cluster_wait_leader(&c, 20000);
  scenario_failover(&c);
  scenario_limits(&c);
  scenario_pinned_read(&c);
  cluster_stop(&c);
  printf("ok channels\n");
  return 0;
}
