/* A client that speaks the client protocol in raw frames, for the tests
 * of the server's side of subscriptions (integration.subscribe and
 * integration.subscribe_review): requests sent and answered one by one,
 * the events that come meanwhile collected. Every failure is a CHECK. */
#ifndef SYNOD_TEST_RAW_CLIENT_H
#define SYNOD_TEST_RAW_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "cluster.h"
#include "synod.pb-c.h"

struct raw {
  int fd;
  uint64_t next_id;
  const char *where;
};

/* What a connection's events delivered. */
struct seen {
  uint64_t offsets[4096]; /* one channel: offset; prefix: index << 16 | off */
  char channels[4096][16];
  size_t n;
  int ended; /* the SubscriptionEnded code, -1 if none */
  uint64_t first_available;
  /* Key watches' deliveries go here (NULL: one is a failure). */
  void (*key_cb)(struct seen *s, const Synod__KeyWatchDelivery *d);
  void *key_arg;
  /* Group subscriptions' deliveries go here (NULL: one is a failure). */
  void (*group_cb)(struct seen *s, const Synod__GroupDelivery *d);
};

/* Connects to a client port and says Hello. */
struct raw raw_open(const char *address);
/* Sends req with the connection's next request id. */
void raw_send(struct raw *r, Synod__Request *req);
/* Reads exactly n bytes within wait_ms. */
void read_full(struct raw *r, uint8_t *p, size_t n, uint32_t wait_ms);
/* The next ServerMessage within wait_ms (free it with
 * synod__server_message__free_unpacked). */
Synod__ServerMessage *raw_recv(struct raw *r, uint32_t wait_ms);
/* Collects one event into s (LeaderChanged is ignored). */
void seen_event(struct seen *s, const Synod__Event *ev);
/* Sends req and returns its answer; events before it go to s. */
Synod__ServerMessage *raw_call(struct raw *r, Synod__Request *req,
                               struct seen *s);
/* Calls and expects error `code` (0 = success). */
void raw_expect(struct raw *r, Synod__Request *req, struct seen *s, int code,
                const char *what);
void subscribe(struct raw *r, uint64_t sub_id, const char *channel, bool prefix,
               Synod__ChannelSubscribe__From from, uint64_t offset,
               uint32_t credits, const char *cursor, struct seen *s, int code,
               const char *what);
void credit(struct raw *r, uint64_t sub_id, uint32_t n, struct seen *s,
            int code);
/* A round trip: every push made before the server read it is in. */
void barrier(struct raw *r, struct seen *s);
/* Waits until replica i has applied `index`, then a barrier on r. */
void settle(struct cluster *c, int i, uint64_t index, struct raw *r,
            struct seen *s);
/* A replica that is not the leader. */
int follower_of(struct cluster *c);

#endif
