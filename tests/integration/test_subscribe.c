/* Channel subscriptions, the server's side, on 3 real synodd processes,
 * spoken to in raw frames (what any client library would send): pushes in
 * offset order from a follower, credits honoured exactly, prefix
 * subscriptions in one interleaving on two replicas, a batch publish
 * split across credits and resumed, ECOMPACTED at the start and for a
 * subscriber that fell behind, the end of a deleted channel, cursors, a
 * subscriber that never reads (bounded by the server, caught up later
 * from the window, never disconnected), and bad input. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cluster.h"
#include "raw_client.h"
#include "synod.h"
#include "synod.pb-c.h"

#define OK(call) CHECK((call) == 0, "%s", synod_client_errmsg())

static uint64_t publish(struct synod_client *cl, const char *channel, int n,
                        size_t size) {
  static char buf[1000][64];
  const void *ptrs[1000];
  size_t lens[1000];
  static unsigned seq;
  for (int i = 0; i < n; i++) {
    lens[i] = (size_t)snprintf(buf[i], sizeof buf[i], "m%u", ++seq);
    if (size > lens[i]) {
      lens[i] = size < sizeof buf[i] ? size : sizeof buf[i];
    }
    ptrs[i] = buf[i];
  }
  struct synod_channel_published out;
  OK(synod_channel_publish(cl, channel, ptrs, lens, (size_t)n, NULL, 0, &out));
  return out.index;
}

/* ------------------------------------------------------------- scenarios */

static void scenario_credits(struct cluster *c, struct synod_client *cl) {
  int f = follower_of(c);
  struct raw r = raw_open(c->nodes[f].client);
  struct seen s = {.ended = -1};
  subscribe(&r, 7, "t", false, SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_FIRST, 0,
            10, NULL, &s, 0, "subscribe t from first, 10 credits");
  uint64_t index = 0;
  for (int k = 0; k < 5; k++) {
    index = publish(cl, "t", 5, 0);
  }
  settle(c, f, index, &r, &s);
  CHECK(s.n == 10, "%zu deliveries on 10 credits", s.n);
  credit(&r, 7, 100, &s, 0);
  settle(c, f, index, &r, &s);
  CHECK(s.n == 25, "%zu deliveries after more credit, want 25", s.n);
  for (size_t i = 0; i < s.n; i++) {
    CHECK(s.offsets[i] == i + 1, "delivery %zu is offset %" PRIu64, i,
          s.offsets[i]);
  }
  /* A live one: published after, pushed at once. */
  index = publish(cl, "t", 3, 0);
  settle(c, f, index, &r, &s);
  CHECK(s.n == 28 && s.offsets[27] == 28, "%zu deliveries after 3 more", s.n);
  credit(&r, 99, 1, &s, SYNOD_ENOTFOUND);
  /* The replica counts its subscribers in the channel's info. */
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__ChannelInfoGet info = SYNOD__CHANNEL_INFO_GET__INIT;
  info.name = "t";
  req.stale = true;
  req.body_case = SYNOD__REQUEST__BODY_CHANNEL_INFO;
  req.channel_info = &info;
  Synod__ServerMessage *sm = raw_call(&r, &req, &s);
  CHECK(sm->response->channel_info != NULL &&
            sm->response->channel_info->subscribers == 1,
        "channel info: %" PRIu64 " subscribers, want 1",
        sm->response->channel_info ? sm->response->channel_info->subscribers
                                   : 0);
  synod__server_message__free_unpacked(sm, NULL);
  close(r.fd);
  printf("ok credits: 10, then the rest, in order, from follower %s\n",
         c->nodes[f].name);
}

static void scenario_prefix(struct cluster *c, struct synod_client *cl) {
  int f = follower_of(c);
  int l = cluster_wait_leader(c, 20000);
  struct raw r1 = raw_open(c->nodes[f].client);
  struct raw r2 = raw_open(c->nodes[l].client);
  static struct seen s1, s2;
  s1.ended = s2.ended = -1;
  /* Three credits, then two at a time: batches of 3 are split, and
   * resumed in the next frame. */
  subscribe(&r1, 1, "p/", true, SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_FIRST, 0,
            3, NULL, &s1, 0, "prefix p/ on a follower");
  subscribe(&r2, 1, "p/", true, SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_FIRST, 0,
            0, NULL, &s2, 0, "prefix p/ on the leader");
  uint64_t index = 0;
  for (int k = 0; k < 10; k++) {
    index = publish(cl, k % 2 ? "p/a" : "p/b", k % 3 + 1, 0);
    publish(cl, "q", 1, 0); /* not under the prefix */
  }
  settle(c, f, index, &r1, &s1);
  CHECK(s1.n == 3, "%zu deliveries on 3 credits", s1.n);
  for (int k = 0; k < 10; k++) {
    credit(&r1, 1, 2, &s1, 0);
  }
  settle(c, f, index, &r1, &s1);
  settle(c, l, index, &r2, &s2);
  CHECK(s1.n == 19 && s2.n == 19, "%zu and %zu deliveries, want 19", s1.n,
        s2.n);
  for (size_t i = 0; i < s1.n; i++) {
    CHECK(s1.offsets[i] == s2.offsets[i] &&
              strcmp(s1.channels[i], s2.channels[i]) == 0,
          "delivery %zu: %s@%" PRIx64 " on one, %s@%" PRIx64 " on the other", i,
          s1.channels[i], s1.offsets[i], s2.channels[i], s2.offsets[i]);
    CHECK(i == 0 || s1.offsets[i] > s1.offsets[i - 1],
          "delivery %zu not after the one before", i);
  }
  /* Resume a prefix subscription in the middle of the batch of 3. */
  struct raw r3 = raw_open(c->nodes[f].client);
  static struct seen s3;
  s3.ended = -1;
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__ChannelSubscribe q = SYNOD__CHANNEL_SUBSCRIBE__INIT;
  q.subscription_id = 2;
  q.channel = "p/";
  q.prefix = true;
  q.from = SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_OFFSET;
  q.after_index = s1.offsets[4] >> 16;
  q.after_offset = s1.offsets[4] & 0xffff;
  req.body_case = SYNOD__REQUEST__BODY_CHANNEL_SUBSCRIBE;
  req.channel_subscribe = &q;
  raw_expect(&r3, &req, &s3, 0, "prefix resume");
  settle(c, f, index, &r3, &s3);
  CHECK(s3.n == 14, "resumed after delivery 5: %zu deliveries, want 14", s3.n);
  for (size_t i = 0; i < s3.n; i++) {
    CHECK(s3.offsets[i] == s1.offsets[i + 5], "resumed delivery %zu differs",
          i);
  }
  close(r1.fd);
  close(r2.fd);
  close(r3.fd);
  printf("ok prefix: one interleaving on two replicas, batches split and "
         "resumed\n");
}

static void scenario_compacted(struct cluster *c, struct synod_client *cl) {
  int f = follower_of(c);
  struct synod_channel_limits lim = {.max_messages = 5};
  OK(synod_channel_create(cl, "small", &lim, 0, NULL));
  uint64_t index = 0;
  for (int k = 0; k < 10; k++) {
    index = publish(cl, "small", 1, 0);
  }
  struct raw r = raw_open(c->nodes[f].client);
  struct seen s = {.ended = -1};
  settle(c, f, index, &r, &s);
  subscribe(&r, 1, "small", false, SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_OFFSET,
            2, 0, NULL, &s, SYNOD_ECOMPACTED, "subscribe below the window");
  /* A subscriber that falls behind: 2 credits, then 10 more publishes. */
  subscribe(&r, 2, "small", false, SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_FIRST,
            0, 2, NULL, &s, 0, "subscribe small from first");
  for (int k = 0; k < 10; k++) {
    index = publish(cl, "small", 1, 0);
  }
  settle(c, f, index, &r, &s);
  CHECK(s.n == 2 && s.offsets[0] == 6 && s.offsets[1] == 7 && s.ended == -1,
        "%zu deliveries before falling behind", s.n);
  credit(&r, 2, 10, &s, 0);
  barrier(&r, &s);
  CHECK(s.ended == SYNOD_ECOMPACTED && s.first_available == 16,
        "fell behind: ended %d, first available %" PRIu64, s.ended,
        s.first_available);
  /* Deleted while subscribed. */
  struct seen d = {.ended = -1};
  subscribe(&r, 3, "small", false, SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_NEXT, 0,
            0, NULL, &d, 0, "subscribe small from next");
  OK(synod_channel_delete(cl, "small", 0, NULL));
  settle(c, f, index + 1, &r, &d);
  uint64_t deadline = test_now_ms() + 5000;
  while (d.ended == -1 && test_now_ms() < deadline) {
    barrier(&r, &d);
  }
  CHECK(d.ended == SYNOD_ENOTFOUND && d.n == 0, "deleted: ended %d", d.ended);
  /* A prefix subscriber that has not had all of a deleted channel's
   * messages is told, never left with a silent skip; one that has, not. */
  struct seen p1 = {.ended = -1}, p2 = {.ended = -1};
  subscribe(&r, 4, "dp/", true, SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_FIRST, 0,
            2, NULL, &p1, 0, "prefix dp/ with 2 credits");
  index = publish(cl, "dp/x", 5, 0);
  settle(c, f, index, &r, &p1);
  subscribe(&r, 5, "dp/", true, SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_FIRST, 0,
            0, NULL, &p2, 0, "prefix dp/ with credit");
  barrier(&r, &p2);
  OK(synod_channel_delete(cl, "dp/x", 0, NULL));
  deadline = test_now_ms() + 5000;
  while (p1.ended == -1 && test_now_ms() < deadline) {
    barrier(&r, &p1);
  }
  CHECK(p1.ended == SYNOD_ENOTFOUND && p1.n == 2,
        "prefix behind a deleted channel: ended %d after %zu", p1.ended, p1.n);
  barrier(&r, &p2);
  CHECK(p2.ended == -1 && p2.n == 5, "prefix caught up: ended %d, %zu",
        p2.ended, p2.n);
  close(r.fd);
  printf("ok compacted and deleted\n");
}

static void scenario_cursors(struct cluster *c, struct synod_client *cl) {
  int f = follower_of(c);
  publish(cl, "cur", 6, 0);
  struct raw r = raw_open(c->nodes[f].client);
  struct seen s = {.ended = -1};
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__ChannelCursorCommit q = SYNOD__CHANNEL_CURSOR_COMMIT__INIT;
  q.channel = "cur";
  q.cursor = "worker";
  q.offset = 4;
  req.body_case = SYNOD__REQUEST__BODY_CHANNEL_CURSOR_COMMIT;
  req.channel_cursor_commit = &q;
  /* Writes go to the leader. */
  struct raw w = raw_open(c->nodes[cluster_wait_leader(c, 20000)].client);
  raw_expect(&w, &req, NULL, 0, "cursor commit");
  q.offset = 99;
  raw_expect(&w, &req, NULL, SYNOD_ERANGE, "cursor past the last offset");
  q.channel = "nochannel";
  raw_expect(&w, &req, NULL, SYNOD_ENOTFOUND, "cursor of no channel");
  close(w.fd);
  /* On a follower, right after the commit: the start waits for ReadIndex,
   * so it sees the cursor. */
  subscribe(&r, 1, "cur", false, SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_DEFAULT,
            0, 0, "worker", &s, 0, "subscribe from cursor");
  barrier(&r, &s);
  CHECK(s.n == 2 && s.offsets[0] == 5 && s.offsets[1] == 6,
        "from cursor 4: %zu deliveries from %" PRIu64, s.n,
        s.n ? s.offsets[0] : 0);
  subscribe(&r, 2, "cur", false, SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_DEFAULT,
            0, 0, "nobody", &s, SYNOD_ENOTFOUND, "unknown cursor");
  struct seen s2 = {.ended = -1};
  subscribe(&r, 3, "cur", false, SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_FIRST, 0,
            0, "nobody", &s2, 0, "unknown cursor, from first");
  barrier(&r, &s2);
  CHECK(s2.n == 6, "unknown cursor from first: %zu deliveries", s2.n);
  close(r.fd);
  printf("ok cursors\n");
}

static void scenario_bad_input(struct cluster *c) {
  struct raw r = raw_open(c->nodes[0].client);
  struct seen s = {.ended = -1};
  subscribe(&r, 1, "b", false, SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_OFFSET, 0,
            0, NULL, &s, SYNOD_EINVAL, "offset 0");
  subscribe(&r, 1, "", false, SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_FIRST, 0, 0,
            NULL, &s, SYNOD_EINVAL, "empty channel name");
  subscribe(&r, 1, "b", true, SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_FIRST, 0, 0,
            "k", &s, SYNOD_EINVAL, "prefix with a cursor");
  subscribe(&r, 1, "b", false, SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_FIRST, 0,
            2000000, NULL, &s, SYNOD_ERANGE, "credits over the maximum");
  Synod__Request req0 = SYNOD__REQUEST__INIT;
  Synod__ChannelSubscribe q0 = SYNOD__CHANNEL_SUBSCRIBE__INIT;
  q0.subscription_id = 1;
  q0.channel = "b";
  q0.prefix = true;
  q0.from = SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_OFFSET;
  q0.after_offset = 3;
  req0.body_case = SYNOD__REQUEST__BODY_CHANNEL_SUBSCRIBE;
  req0.channel_subscribe = &q0;
  raw_expect(&r, &req0, &s, SYNOD_EINVAL, "after_offset without after_index");
  subscribe(&r, 1, "b", false, (Synod__ChannelSubscribe__From)9, 0, 0, NULL, &s,
            SYNOD_EINVAL, "unknown start");
  subscribe(&r, 1, "b", false, SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_FIRST, 0, 0,
            NULL, &s, 0, "subscribe b");
  subscribe(&r, 1, "b", false, SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_FIRST, 0, 0,
            NULL, &s, SYNOD_EEXIST, "the same subscription id again");
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__ChannelUnsubscribe u = SYNOD__CHANNEL_UNSUBSCRIBE__INIT;
  u.subscription_id = 1;
  req.body_case = SYNOD__REQUEST__BODY_CHANNEL_UNSUBSCRIBE;
  req.channel_unsubscribe = &u;
  raw_expect(&r, &req, &s, 0, "unsubscribe");
  raw_expect(&r, &req, &s, SYNOD_ENOTFOUND, "unsubscribe again");
  close(r.fd);
  printf("ok bad input\n");
}

static void drain_bulk(struct raw *r, int n, size_t size);

/* A gauge from a replica's /metrics (a plain HTTP/1.1 GET). */
static uint64_t metric(const char *http, const char *name) {
  struct raw r = {.fd = -1, .where = http};
  char host[64];
  const char *colon = strrchr(http, ':');
  snprintf(host, sizeof host, "%.*s", (int)(colon - http), http);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)atoi(colon + 1))};
  CHECK(inet_pton(AF_INET, host, &sa.sin_addr) == 1, "host '%s'", host);
  r.fd = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(connect(r.fd, (struct sockaddr *)&sa, sizeof sa) == 0, "connect %s: %s",
        http, strerror(errno));
  static const char get[] =
      "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  CHECK(send(r.fd, get, sizeof get - 1, MSG_NOSIGNAL) > 0, "send");
  static char text[1 << 20];
  size_t got = 0;
  ssize_t k;
  while (got < sizeof text - 1 &&
         (k = recv(r.fd, text + got, sizeof text - 1 - got, 0)) > 0) {
    got += (size_t)k;
  }
  text[got] = '\0';
  close(r.fd);
  char needle[96];
  snprintf(needle, sizeof needle, "\n%s ", name);
  const char *at = strstr(text, needle);
  CHECK(at != NULL, "%s has no %s", http, name);
  return strtoull(at + strlen(needle), NULL, 10);
}

/* A subscriber with all the credit it wants that does not read: the
 * replica stops at its bound instead of buffering (it would disconnect a
 * client past 64 MiB unread), and the subscriber catches up later. */
static void scenario_never_reads(struct cluster *c, struct synod_client *cl) {
  int f = follower_of(c);
  struct synod_channel_limits lim = {.max_bytes = 200u << 20};
  OK(synod_channel_create(cl, "bulk", &lim, 0, NULL));
  struct raw r = raw_open(c->nodes[f].client);
  int small = 64 << 10;
  setsockopt(r.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  struct seen s = {.ended = -1};
  subscribe(&r, 1, "bulk", false, SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_NEXT, 0,
            1000000, NULL, &s, 0, "subscribe bulk");
  static char big[200000];
  memset(big, 'b', sizeof big);
  const void *ptrs[4] = {big, big, big, big};
  size_t lens[4] = {sizeof big, sizeof big, sizeof big, sizeof big};
  int publishes = 120; /* 96 MB */
  for (int k = 0; k < publishes; k++) {
    OK(synod_channel_publish(cl, "bulk", ptrs, lens, 4, NULL, 0, NULL));
  }
  /* While it does not read: the replica holds at most the bound (4 MiB)
   * and a frame for it, and another subscriber there reads everything. */
  uint64_t queued = metric(c->nodes[f].http, "synod_client_queued_bytes");
  CHECK(queued <= (5u << 20), "%" PRIu64 " bytes queued to clients of %s",
        queued, c->nodes[f].name);
  struct raw r2 = raw_open(c->nodes[f].client);
  struct seen s2 = {.ended = -1};
  subscribe(&r2, 1, "bulk", false, SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_FIRST,
            0, 1000000, NULL, &s2, 0, "a second subscriber");
  uint64_t t0 = test_now_ms();
  drain_bulk(&r2, publishes * 4, sizeof big);
  printf("  a second subscriber read the 96 MB in %" PRIu64 " ms meanwhile; "
         "%" PRIu64 " bytes queued to clients with the first stalled\n",
         test_now_ms() - t0, queued);
  close(r2.fd);
  /* Now the first reads everything: offsets 1..480 in order. */
  drain_bulk(&r, publishes * 4, sizeof big);
  close(r.fd);
  printf("ok never reads: %d MB published while it did not read; then all "
         "of it, in order\n",
         publishes * 4 * (int)sizeof big / 1000000);
}

/* Reads deliveries of offsets 1..n, each of `size` bytes, in order. */
static void drain_bulk(struct raw *r, int n, size_t size) {
  uint64_t want = 1;
  uint64_t deadline = test_now_ms() + 60000;
  while (want <= (uint64_t)n) {
    CHECK(test_now_ms() < deadline, "caught up to %" PRIu64 " in 60 s", want);
    Synod__ServerMessage *sm = raw_recv(r, 20000);
    if (sm->body_case == SYNOD__SERVER_MESSAGE__BODY_EVENT &&
        sm->event->body_case == SYNOD__EVENT__BODY_LEADER_CHANGED) {
      /* 96 MB of publishes and their snapshots on a loaded machine can
       * cost the leader its quorum for a moment: every client hears. */
      synod__server_message__free_unpacked(sm, NULL);
      continue;
    }
    CHECK(sm->body_case == SYNOD__SERVER_MESSAGE__BODY_EVENT &&
              sm->event->body_case == SYNOD__EVENT__BODY_CHANNEL_DELIVERY,
          "not a delivery (%d)",
          sm->body_case == SYNOD__SERVER_MESSAGE__BODY_EVENT
              ? (int)sm->event->body_case
              : -1);
    const Synod__ChannelDelivery *d = sm->event->channel_delivery;
    for (size_t i = 0; i < d->n_messages; i++) {
      CHECK(d->messages[i]->offset == want, "offset %" PRIu64 ", want %" PRIu64,
            d->messages[i]->offset, want);
      CHECK(d->messages[i]->data.len == size, "length %zu",
            d->messages[i]->data.len);
      want++;
    }
    synod__server_message__free_unpacked(sm, NULL);
  }
}

/* Reads events until the subscription ends, for at most 15 s after t0
 * (`since`: what happened then). */
static void wait_ended(struct raw *r, struct seen *s, uint64_t t0,
                       const char *since) {
  while (s->ended == -1) {
    CHECK(test_now_ms() - t0 < 15000, "still subscribed 15 s after %s", since);
    Synod__ServerMessage *sm = raw_recv(r, 15000);
    CHECK(sm->body_case == SYNOD__SERVER_MESSAGE__BODY_EVENT, "a response?");
    seen_event(s, sm->event);
    synod__server_message__free_unpacked(sm, NULL);
  }
}

/* A follower cut off from the others (both SIGSTOPped) ends its
 * subscriptions with SYNOD_ENOLEADER once it has known no leader for 2 s,
 * and refuses new ones, so clients resume on a replica that can serve. */
static void scenario_cut_off(struct cluster *c) {
  int f = follower_of(c);
  struct raw r = raw_open(c->nodes[f].client);
  struct seen s = {.ended = -1};
  subscribe(&r, 1, "t", false, SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_FIRST, 0, 0,
            NULL, &s, 0, "subscribe on the follower");
  uint64_t t0 = test_now_ms();
  for (int i = 0; i < c->n; i++) {
    if (i != f) {
      cluster_signal(c, i, SIGSTOP);
    }
  }
  wait_ended(&r, &s, t0, "the cut");
  CHECK(s.ended == SYNOD_ENOLEADER, "ended with %d", s.ended);
  uint64_t took = test_now_ms() - t0;
  subscribe(&r, 2, "t", false, SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_FIRST, 0, 0,
            NULL, &s, SYNOD_ENOLEADER, "subscribe while cut off");
  for (int i = 0; i < c->n; i++) {
    if (i != f) {
      cluster_signal(c, i, SIGCONT);
    }
  }
  cluster_wait_leader(c, 20000);
  close(r.fd);
  printf("ok cut off: ended with SYNOD_ENOLEADER %" PRIu64 " ms after the "
         "cut\n",
         took);
}

/* A resumed subscription names the last message it has (known_index):
 * a channel deleted since, or deleted and created again, ends it with
 * SYNOD_ENOTFOUND. Before, the resume went on silently in the new
 * channel at the old offset (found by the simulator's --groups --push
 * seed 820001: a member resuming into a group created again). */
static void scenario_resume_recreated(struct cluster *c,
                                      struct synod_client *cl) {
  int f = follower_of(c);
  publish(cl, "re", 2, 0);
  uint64_t known = publish(cl, "re", 1, 0); /* offset 3 */
  OK(synod_channel_delete(cl, "re", 0, NULL));
  struct raw r = raw_open(c->nodes[f].client);
  struct seen s = {.ended = -1};
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__ChannelSubscribe q = SYNOD__CHANNEL_SUBSCRIBE__INIT;
  q.subscription_id = 1;
  q.channel = "re";
  q.from = SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_OFFSET;
  q.offset = 4;
  q.known_index = known;
  req.body_case = SYNOD__REQUEST__BODY_CHANNEL_SUBSCRIBE;
  req.channel_subscribe = &q;
  raw_expect(&r, &req, &s, SYNOD_ENOTFOUND, "resume after its deletion");
  uint64_t again = publish(cl, "re", 5, 0); /* offsets 1..5 of a new one */
  q.offset = 4;
  raw_expect(&r, &req, &s, SYNOD_ENOTFOUND, "resume in the one created again");
  q.offset = 1;
  q.known_index = 0; /* a client that knows nothing: the new channel */
  raw_expect(&r, &req, &s, 0, "subscribe without a known index");
  settle(c, f, again, &r, &s);
  CHECK(s.n == 5 && s.offsets[0] == 1, "%zu deliveries of the new channel",
        s.n);
  q.subscription_id = 2;
  q.offset = 4;
  q.known_index = again; /* the new one's own message: it goes on */
  s.n = 0;
  raw_expect(&r, &req, &s, 0, "resume with a message of the new channel");
  settle(c, f, again, &r, &s);
  CHECK(s.n == 2 && s.offsets[0] == 4, "%zu deliveries from offset 4", s.n);
  close(r.fd);
  printf("ok resume of a channel deleted and created again: "
         "SYNOD_ENOTFOUND\n");
}

/* A follower that hears from no leader yet goes on naming the last one
 * (here: its election timeout is 100 s, so it neither campaigns nor lets
 * the third replica win while the leader is stopped; a learner cut off
 * from the leader does the same, since it never campaigns) ends its
 * subscriptions with SYNOD_ENOLEADER once it has not heard from that
 * leader for 2 s, instead of holding them on a state that no longer
 * moves (the simulator's --keys --push seed 600059). */
static void scenario_silent_leader(struct cluster *c) {
  int l = cluster_wait_leader(c, 20000);
  int f = (l + 1) % c->n;
  c->extra_args[2] = "--election-ticks";
  c->extra_args[3] = "2000";
  cluster_signal(c, f, SIGKILL);
  cluster_restart(c, f);
  c->extra_args[2] = NULL;
  CHECK(cluster_wait_leader(c, 20000) == l, "the leader changed");
  struct raw r = raw_open(c->nodes[f].client);
  struct seen s = {.ended = -1};
  /* From next: after a ReadIndex round through the leader, so f has
   * rejoined and hears from it. */
  subscribe(&r, 1, "t", false, SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_NEXT, 0, 0,
            NULL, &s, 0, "subscribe on the slow-to-campaign follower");
  uint64_t t0 = test_now_ms();
  cluster_signal(c, l, SIGSTOP);
  wait_ended(&r, &s, t0, "its leader stopped");
  CHECK(s.ended == SYNOD_ENOLEADER, "ended with %d", s.ended);
  uint64_t took = test_now_ms() - t0;
  subscribe(&r, 2, "t", false, SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_FIRST, 0, 0,
            NULL, &s, SYNOD_ENOLEADER, "subscribe while the leader is silent");
  cluster_signal(c, l, SIGCONT);
  close(r.fd);
  printf("ok silent leader: ended with SYNOD_ENOLEADER %" PRIu64
         " ms after %s stopped\n",
         took, c->nodes[l].name);
}

int main(void) {
  char synodd[PATH_MAX];
  cluster_synodd_or_skip(synodd, sizeof synodd);
  struct cluster c;
  cluster_init(&c, 3, synodd);
  c.extra_args[0] = "--channels-max-bytes"; /* the 96 MB of never_reads */
  c.extra_args[1] = "256MiB";
  for (int i = 0; i < c.n; i++) {
    cluster_restart(&c, i);
  }
  cluster_wait_leader(&c, 20000);
  struct synod_options o;
  struct synod_client *cl;
  synod_options_init(&o);
  o.endpoints = c.endpoints;
  o.client_name = "subscribe test publisher";
  CHECK(synod_client_new(&o, &cl) == 0, "%s", synod_client_errmsg());
  scenario_bad_input(&c);
  scenario_credits(&c, cl);
  scenario_prefix(&c, cl);
  scenario_compacted(&c, cl);
  scenario_cursors(&c, cl);
  scenario_resume_recreated(&c, cl);
  scenario_never_reads(&c, cl);
  scenario_cut_off(&c);
  scenario_silent_leader(&c);
  synod_client_free(cl);
  cluster_stop(&c);
  printf("ok\n");
  return 0;
}
