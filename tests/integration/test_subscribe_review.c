/* Review of channel subscriptions (server side), raw frames against 3
 * real synodd processes: findings that the main test does not cover.
 *
 * - backlog_close: a client_net_send inside the subscription code can
 *   close the connection synchronously (conn_check_backlog, over 64 MiB
 *   unread), and the close frees every subscription of the connection
 *   (requests_on_close -> subs_on_close) while the caller still holds one
 *   (here subs_credit: requests_send_ok, then sub_mark on the freed sub).
 *   Under ASan the replica dies with heap-use-after-free.
 * - prefix_long_names: a prefix subscription's frame is bounded by the
 *   payload bytes only (SUB_FRAME_BYTES) and 4096 messages, not by the
 *   channel names every message of a prefix delivery carries: 4096 small
 *   messages of a channel with a 250-byte name make a frame over the
 *   1 MiB frame maximum, the send fails and the subscription ends with
 *   SYNOD_ETOOBIG, at the same place on every resume. */
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

/* ------------------------------------------------------------- scenarios */

/* The packed frame of req with the header, appended to *buf. */
static void frame_append(struct raw *r, Synod__Request *req, uint8_t **buf,
                         size_t *len) {
  req->id = ++r->next_id;
  size_t n = synod__request__get_packed_size(req);
  *buf = realloc(*buf, *len + n + 4);
  uint8_t *p = *buf + *len;
  p[0] = (uint8_t)(n >> 24);
  p[1] = (uint8_t)(n >> 16);
  p[2] = (uint8_t)(n >> 8);
  p[3] = (uint8_t)n;
  synod__request__pack(req, p + 4);
  *len += n + 4;
}

static void stale_read_req(Synod__Request *req, Synod__ChannelRead *q,
                           const char *name, uint64_t from) {
  synod__request__init(req);
  synod__channel_read__init(q);
  q->name = (char *)name;
  q->from = from;
  q->max = 1;
  req->stale = true;
  req->body_case = SYNOD__REQUEST__BODY_CHANNEL_READ;
  req->channel_read = q;
}

/* The size on the wire (header included) of the answer to a stale read of
 * one message at `from`. */
static size_t read_answer_bytes(struct raw *r, const char *name,
                                uint64_t from) {
  Synod__Request req;
  Synod__ChannelRead q;
  stale_read_req(&req, &q, name, from);
  raw_send(r, &req);
  for (;;) {
    uint8_t h[4];
    read_full(r, h, 4, 10000);
    size_t len =
        (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
    uint8_t *buf = malloc(len ? len : 1);
    read_full(r, buf, len, 10000);
    Synod__ServerMessage *sm = synod__server_message__unpack(NULL, len, buf);
    free(buf);
    CHECK(sm != NULL, "undecodable frame");
    bool mine = sm->body_case == SYNOD__SERVER_MESSAGE__BODY_RESPONSE;
    if (mine) {
      CHECK(sm->response->id == req.id && sm->response->error == NULL &&
                sm->response->channel_messages != NULL &&
                sm->response->channel_messages->n_messages == 1,
            "stale read of %s@%" PRIu64 " failed", name, from);
    }
    synod__server_message__free_unpacked(sm, NULL);
    if (mine) {
      return len + 4;
    }
  }
}

static bool replica_alive(struct cluster *c, int i) {
  struct synod_status st;
  for (int k = 0; k < 20; k++) {
    if (cluster_status(c, i, 0, 1000, &st) == 0) {
      synod_status_free(&st);
      return true;
    }
    usleep(100000);
  }
  return false;
}

static void scenario_backlog_close(struct cluster *c, struct synod_client *cl) {
  const size_t target = 512u << 10; /* 128 of them: exactly 64 MiB */
  const uint64_t out_max = 64ull << 20;
  int f = follower_of(c);
  struct synod_channel_limits lim = {.max_message_bytes = 600000};
  OK(synod_channel_create(cl, "fill", &lim, 0, NULL));
  struct raw r = raw_open(c->nodes[f].client);
  r.next_id = 1000; /* every id below 16384: two bytes, one size */
  static char data[600000];
  memset(data, 'f', sizeof data);
  size_t len = target - 64;
  uint64_t offset = 0;
  size_t got = 0;
  for (int k = 0; k < 6 && got != target; k++) {
    const void *ptrs[1] = {data};
    struct synod_channel_published out;
    OK(synod_channel_publish(cl, "fill", ptrs, &len, 1, NULL, 0, &out));
    settle(c, f, out.index, &r, NULL);
    offset = out.first_offset;
    got = read_answer_bytes(&r, "fill", offset);
    printf("  a message of %zu bytes: an answer of %zu bytes\n", len, got);
    len += target - got;
  }
  CHECK(got == target, "could not size the answer to %zu bytes", target);
  /* The subscription whose credit is answered last. */
  struct seen s = {.ended = -1};
  subscribe(&r, 1, "elsewhere", false,
            SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_FIRST, 0, 1, NULL, &s, 0,
            "subscribe elsewhere");
  barrier(&r, &s);
  /* One write: 128 stale reads (64 MiB of answers, not over the bound:
   * the connection stays), then a credit, whose empty answer goes over. */
  uint8_t *buf = NULL;
  size_t n = 0;
  for (uint64_t q = 0; q < out_max / target; q++) {
    Synod__Request req;
    Synod__ChannelRead rd;
    stale_read_req(&req, &rd, "fill", offset);
    frame_append(&r, &req, &buf, &n);
  }
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__ChannelCredit cr = SYNOD__CHANNEL_CREDIT__INIT;
  cr.subscription_id = 1;
  cr.credits = 5;
  req.body_case = SYNOD__REQUEST__BODY_CHANNEL_CREDIT;
  req.channel_credit = &cr;
  frame_append(&r, &req, &buf, &n);
  CHECK(send(r.fd, buf, n, MSG_NOSIGNAL) == (ssize_t)n, "send the burst");
  free(buf);
  /* The replica hangs up on a client that does not read (that is fine);
   * it must not crash doing so. */
  static uint8_t sink[1 << 16];
  uint64_t deadline = test_now_ms() + 20000;
  size_t total = 0;
  for (;;) {
    struct pollfd pf = {.fd = r.fd, .events = POLLIN};
    CHECK(test_now_ms() < deadline, "the replica neither answered nor closed");
    if (poll(&pf, 1, 1000) <= 0) {
      continue;
    }
    ssize_t k = recv(r.fd, sink, sizeof sink, 0);
    if (k <= 0) {
      break;
    }
    total += (size_t)k;
  }
  close(r.fd);
  printf("  the replica closed the connection after %zu bytes\n", total);
  bool alive = replica_alive(c, f);
  char *log = test_slurp(c->nodes[f].log);
  const char *asan = strstr(log, "ERROR: AddressSanitizer");
  if (asan != NULL) {
    const char *end = strstr(asan, "SUMMARY");
    printf("%.*s\n", end ? (int)(end - asan) + 120 : 3000, asan);
  }
  CHECK(asan == NULL && alive,
        "%s %s after the answer to a credit closed "
        "its connection (AddressSanitizer report above, if any)",
        c->nodes[f].name, alive ? "reported an error" : "died");
  free(log);
  printf("ok backlog close: the replica survives a close inside "
         "subs_credit\n");
}

static void scenario_prefix_long_names(struct cluster *c,
                                       struct synod_client *cl) {
  char name[256];
  memset(name, 'x', sizeof name);
  memcpy(name, "lp/", 3);
  name[250] = '\0';
  static char one[1000][1];
  const void *ptrs[1000];
  size_t lens[1000];
  for (int i = 0; i < 1000; i++) {
    one[i][0] = 'a';
    ptrs[i] = one[i];
    lens[i] = 1;
  }
  struct synod_channel_published out;
  const int total = 5000;
  for (int k = 0; k < total / 1000; k++) {
    OK(synod_channel_publish(cl, name, ptrs, lens, 1000, NULL, 0, &out));
  }
  int f = follower_of(c);
  struct raw r = raw_open(c->nodes[f].client);
  settle(c, f, out.index, &r, NULL);
  subscribe(&r, 1, "lp/", true, SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_FIRST, 0,
            100000, NULL, NULL, 0, "prefix lp/ from first");
  int delivered = 0, ended = -1;
  char why[256] = "";
  while (delivered < total && ended == -1) {
    Synod__ServerMessage *sm = raw_recv(&r, 10000);
    if (sm->body_case == SYNOD__SERVER_MESSAGE__BODY_EVENT &&
        sm->event->body_case == SYNOD__EVENT__BODY_CHANNEL_DELIVERY) {
      delivered += (int)sm->event->channel_delivery->n_messages;
    } else if (sm->body_case == SYNOD__SERVER_MESSAGE__BODY_EVENT &&
               sm->event->body_case == SYNOD__EVENT__BODY_SUBSCRIPTION_ENDED) {
      ended = (int)sm->event->subscription_ended->error->code;
      snprintf(why, sizeof why, "%s",
               sm->event->subscription_ended->error->message);
    }
    synod__server_message__free_unpacked(sm, NULL);
  }
  close(r.fd);
  CHECK(ended == -1 && delivered == total,
        "prefix subscription over a 250-byte channel name: %d of %d "
        "delivered, then ended with %d (%s)",
        delivered, total, ended, why);
  printf("ok prefix long names: %d messages\n", delivered);
}

/* Publishes n session-less messages to `channel` through r in one burst
 * (proposals batch), and waits for every answer. */
static void publish_burst_to(struct raw *r, const char *channel, int n,
                             size_t size, int channels);
static void publish_burst(struct raw *r, const char *channel, int n,
                          size_t size) {
  publish_burst_to(r, channel, n, size, 0);
}

/* channels > 0: message i goes to channel "<channel><i % channels>". */
static void publish_burst_to(struct raw *r, const char *channel, int n,
                             size_t size, int channels) {
  static uint8_t data[64 << 10];
  memset(data, 'p', sizeof data);
  uint8_t *buf = NULL;
  size_t len = 0;
  uint64_t first = r->next_id + 1;
  for (int i = 0; i < n; i++) {
    Synod__Request req = SYNOD__REQUEST__INIT;
    Synod__ChannelPublish p = SYNOD__CHANNEL_PUBLISH__INIT;
    ProtobufCBinaryData m = {size < sizeof data ? size : sizeof data, data};
    char name[64];
    snprintf(name, sizeof name, "%s%d", channel, channels ? i % channels : 0);
    p.name = channels ? name : (char *)channel;
    p.n_messages = 1;
    p.messages = &m;
    req.body_case = SYNOD__REQUEST__BODY_CHANNEL_PUBLISH;
    req.channel_publish = &p;
    frame_append(r, &req, &buf, &len);
  }
  CHECK(send(r->fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len, "send burst");
  free(buf);
  /* Filler: a publish refused (a leader change on a loaded machine) is
   * counted, not retried. */
  int answered = 0, refused = 0;
  while (answered < n) {
    Synod__ServerMessage *sm = raw_recv(r, 30000);
    if (sm->body_case == SYNOD__SERVER_MESSAGE__BODY_RESPONSE) {
      CHECK(sm->response->id >= first, "an answer to %" PRIu64,
            sm->response->id);
      refused += sm->response->error != NULL;
      answered++;
    }
    synod__server_message__free_unpacked(sm, NULL);
  }
  if (refused > 0) {
    printf("  %d of %d publishes to %s refused\n", refused, n, channel);
  }
}

/* The index of replica i's durable snapshot (the core compacts its log
 * right after: status reports it only then), 0 if none or no answer. */
static uint64_t snapshot_index_of(const struct cluster *c, int i) {
  struct synod_options o;
  struct synod_client *cl;
  struct synod_status st;
  uint64_t index = 0;
  synod_options_init(&o);
  o.endpoints = c->nodes[i].client;
  o.client_name = "subscribe review status";
  if (synod_client_new(&o, &cl) != 0) {
    return 0;
  }
  if (synod_status(cl, 2000, &st) == 0) {
    index = st.snapshot_index;
    synod_status_free(&st);
  }
  synod_client_free(cl);
  return index;
}

/* A follower that installs a snapshot never hears the CHANNEL_DELETED
 * of the entries the snapshot covers (subs_on_install only marks every
 * subscription dirty). A subscription of a channel deleted and created
 * again in those entries goes on in the new channel from its old offset:
 * the new channel's first offsets are skipped without a word, and the
 * end (SYNOD_ENOTFOUND) that every replica applying the entries sends is
 * never sent. (Deleted and not created again, it waits forever:
 * fill_channel takes a missing channel for one not created yet.) */
static void scenario_install_deleted(struct cluster *c,
                                     struct synod_client *cl) {
  static char m[3][8] = {"old1", "old2", "old3"};
  const void *ptrs[3] = {m[0], m[1], m[2]};
  size_t lens[3] = {4, 4, 4};
  struct synod_channel_published out;
  OK(synod_channel_publish(cl, "gone", ptrs, lens, 3, NULL, 0, &out));
  int l = cluster_wait_leader(c, 20000);
  int f = (l + 1) % c->n;
  struct raw r = raw_open(c->nodes[f].client);
  struct seen s = {.ended = -1};
  subscribe(&r, 1, "gone", false, SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_FIRST, 0,
            100, NULL, &s, 0, "subscribe gone on a follower");
  settle(c, f, out.index, &r, &s);
  CHECK(s.n == 3, "%zu deliveries of the old channel, want 3", s.n);
  char *before = test_slurp(c->nodes[f].log);
  long from = (long)strlen(before);
  free(before);
  uint64_t stopped_at = out.index;
  cluster_signal(c, f, SIGSTOP);
  printf("  %s stopped; 3000 entries (24 MB: more than the sockets "
         "hold), delete gone, create it again, 3000 more entries\n",
         c->nodes[f].name);
  struct raw w = raw_open(c->nodes[l].client);
  publish_burst(&w, "pad", 3000, 8000);
  OK(synod_channel_delete(cl, "gone", 0, NULL));
  static char nm[10][8];
  const void *nptrs[10];
  size_t nlens[10];
  for (int i = 0; i < 10; i++) {
    nlens[i] = (size_t)snprintf(nm[i], sizeof nm[i], "new%d", i + 1);
    nptrs[i] = nm[i];
  }
  OK(synod_channel_publish(cl, "gone", nptrs, nlens, 10, NULL, 0, &out));
  publish_burst(&w, "pad", 3000, 8000);
  /* The follower must need what the leader no longer has: entries past
   * its stop, up to the 8 MB window (1,000 of these) already in its
   * socket, and the 1,024 the leader keeps behind a snapshot. Snapshots
   * come when the log outweighs the image, later as the image grows:
   * pad on until the leader has one beyond that, durable (and so its log
   * compacted). */
  uint64_t need = stopped_at + 1000 + 1024 + 100;
  for (int more = 0; snapshot_index_of(c, l) < need; more++) {
    CHECK(more < 8,
          "%s took no snapshot past %" PRIu64 " (last at %" PRIu64
          ") after %d more bursts",
          c->nodes[l].name, need, snapshot_index_of(c, l), more);
    publish_burst(&w, "pad", 1000, 8000);
    for (int i = 0; i < 50 && snapshot_index_of(c, l) < need; i++) {
      usleep(100000); /* a snapshot being written: polled, bounded */
    }
  }
  close(w.fd);
  cluster_signal(c, f, SIGCONT);
  uint64_t deadline = test_now_ms() + 60000;
  for (;;) {
    char *log = test_slurp(c->nodes[f].log);
    bool installed = strstr(log + from, "installed snapshot") != NULL;
    free(log);
    if (installed) {
      break;
    }
    CHECK(test_now_ms() < deadline, "%s installed no snapshot in 60 s",
          c->nodes[f].name);
    usleep(50000);
  }
  printf("  %s installed a snapshot\n", c->nodes[f].name);
  /* What the subscription says next: it must end (the channel it was
   * reading is gone), not deliver the new channel from offset 4. */
  deadline = test_now_ms() + 10000;
  while (s.ended == -1 && s.n == 3 && test_now_ms() < deadline) {
    struct pollfd pf = {.fd = r.fd, .events = POLLIN};
    if (poll(&pf, 1, 200) > 0) {
      Synod__ServerMessage *sm = raw_recv(&r, 5000);
      if (sm->body_case == SYNOD__SERVER_MESSAGE__BODY_EVENT) {
        seen_event(&s, sm->event);
      }
      synod__server_message__free_unpacked(sm, NULL);
    }
  }
  close(r.fd);
  CHECK(s.n == 3,
        "after the install: %zu deliveries of the NEW channel "
        "(offsets %" PRIu64 "..%" PRIu64 "; its 1..3 skipped, no end)",
        s.n - 3, s.offsets[3], s.offsets[s.n - 1]);
  CHECK(s.ended == SYNOD_ENOTFOUND,
        "after the install: no end of the deleted channel's subscription "
        "in 10 s (ended %d)",
        s.ended);
  printf("ok install deleted: the subscription ended with SYNOD_ENOTFOUND\n");
  /* The padding (48-112 MB, as the leader's snapshot came sooner or later)
   * would otherwise hold the server-wide retention cap (64 MiB) and leave
   * no room for the next scenario's messages. */
  OK(synod_channel_delete(cl, "pad", 0, NULL));
}

/* What one publish costs a replica with 1,024 subscriptions of one
 * connection: every subscription of one channel, or every subscription a
 * prefix ("") over 1,000 idle channels. A prefix subscription that gets
 * one message re-reads every channel under its prefix (fsm_channel_streams,
 * a seek in each window) each time it is pumped. */
static uint64_t fanout_ms(struct cluster *c, struct synod_client *cl, int f,
                          bool prefix, int publishes) {
  struct raw r = raw_open(c->nodes[f].client);
  struct synod_channel_published out;
  const void *p1[1] = {"x"};
  size_t l1[1] = {1};
  OK(synod_channel_publish(cl, "hot", p1, l1, 1, NULL, 0, &out));
  settle(c, f, out.index, &r, NULL);
  for (uint64_t id = 1; id <= 1024; id++) {
    Synod__Request req = SYNOD__REQUEST__INIT;
    Synod__ChannelSubscribe q = SYNOD__CHANNEL_SUBSCRIBE__INIT;
    q.subscription_id = id;
    q.channel = prefix ? "" : "hot";
    q.prefix = prefix;
    q.from = SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_OFFSET;
    q.offset = out.last_offset + 1;
    q.after_index = out.index;
    q.credits = 1000000;
    req.body_case = SYNOD__REQUEST__BODY_CHANNEL_SUBSCRIBE;
    req.channel_subscribe = &q;
    raw_expect(&r, &req, NULL, 0, "subscribe");
  }
  uint64_t t0 = test_now_ms();
  int want = 1024 * publishes, got = 0;
  for (int k = 0; k < publishes; k++) {
    OK(synod_channel_publish(cl, "hot", p1, l1, 1, NULL, 0, &out));
  }
  while (got < want) {
    Synod__ServerMessage *sm = raw_recv(&r, 60000);
    if (sm->body_case == SYNOD__SERVER_MESSAGE__BODY_EVENT &&
        sm->event->body_case == SYNOD__EVENT__BODY_CHANNEL_DELIVERY) {
      got += (int)sm->event->channel_delivery->n_messages;
    }
    synod__server_message__free_unpacked(sm, NULL);
  }
  uint64_t ms = test_now_ms() - t0;
  close(r.fd);
  return ms;
}

static void scenario_prefix_cost(struct cluster *c, struct synod_client *cl) {
  int l = cluster_wait_leader(c, 20000);
  int f = (l + 1) % c->n;
  struct raw w = raw_open(c->nodes[l].client);
  publish_burst_to(&w, "idle/", 1000, 10, 1000);
  close(w.fd);
  uint64_t one = fanout_ms(c, cl, f, false, 100);
  uint64_t pre = fanout_ms(c, cl, f, true, 100);
  printf("  100 publishes to 1,024 subscriptions: %" PRIu64 " ms of one "
         "channel, %" PRIu64 " ms of the prefix \"\" (1,000 idle channels)\n",
         one, pre);
}

/* A subscription unsubscribed while its start waits for a ReadIndex
 * round: the unsubscribe is answered, the subscribe never is (the start
 * finds no subscription and drops the request). A client that waits for
 * every answer (or counts them, as client_net's answer_cb does) waits
 * forever. */
static void scenario_unsubscribe_pending(struct cluster *c) {
  int f = follower_of(c);
  struct raw r = raw_open(c->nodes[f].client);
  uint8_t *buf = NULL;
  size_t n = 0;
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__ChannelSubscribe q = SYNOD__CHANNEL_SUBSCRIBE__INIT;
  q.subscription_id = 1;
  q.channel = "pending";
  q.from = SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_NEXT; /* waits for ReadIndex */
  req.body_case = SYNOD__REQUEST__BODY_CHANNEL_SUBSCRIBE;
  req.channel_subscribe = &q;
  frame_append(&r, &req, &buf, &n);
  uint64_t sub_req = req.id;
  Synod__Request req2 = SYNOD__REQUEST__INIT;
  Synod__ChannelUnsubscribe u = SYNOD__CHANNEL_UNSUBSCRIBE__INIT;
  u.subscription_id = 1;
  req2.body_case = SYNOD__REQUEST__BODY_CHANNEL_UNSUBSCRIBE;
  req2.channel_unsubscribe = &u;
  frame_append(&r, &req2, &buf, &n);
  CHECK(send(r.fd, buf, n, MSG_NOSIGNAL) == (ssize_t)n, "send");
  free(buf);
  bool sub_answered = false, unsub_answered = false;
  uint64_t deadline = test_now_ms() + 8000; /* the start waits 5 s at most */
  while (test_now_ms() < deadline && !(sub_answered && unsub_answered)) {
    struct pollfd pf = {.fd = r.fd, .events = POLLIN};
    if (poll(&pf, 1, 200) <= 0) {
      continue;
    }
    Synod__ServerMessage *sm = raw_recv(&r, 5000);
    if (sm->body_case == SYNOD__SERVER_MESSAGE__BODY_RESPONSE) {
      sub_answered |= sm->response->id == sub_req;
      unsub_answered |= sm->response->id == req2.id;
      if (sm->response->id == sub_req) {
        printf("  the subscribe's answer: %s\n",
               sm->response->error ? sm->response->error->message : "ok");
      }
    }
    synod__server_message__free_unpacked(sm, NULL);
  }
  close(r.fd);
  CHECK(unsub_answered, "the unsubscribe was not answered");
  CHECK(sub_answered, "the subscribe unsubscribed before it started was "
                      "never answered (8 s)");
  printf("ok unsubscribe pending: both requests answered\n");
}

int main(int argc, char **argv) {
  char synodd[PATH_MAX];
  cluster_synodd_or_skip(synodd, sizeof synodd);
  struct cluster c;
  cluster_init(&c, 3, synodd);
  c.extra_args[0] = "--snapshot-entries"; /* install_deleted */
  c.extra_args[1] = "100";
  for (int i = 0; i < c.n; i++) {
    cluster_restart(&c, i);
  }
  cluster_wait_leader(&c, 20000);
  struct synod_options o;
  struct synod_client *cl;
  synod_options_init(&o);
  o.endpoints = c.endpoints;
  o.client_name = "subscribe review publisher";
  CHECK(synod_client_new(&o, &cl) == 0, "%s", synod_client_errmsg());
  const char *only = argc > 1 ? argv[1] : "";
  int failed = 0;
  if (only[0] == '\0' || strcmp(only, "prefix_long_names") == 0) {
    scenario_prefix_long_names(&c, cl);
  }
  if (strcmp(only, "prefix_cost") == 0) { /* a measurement, not a check */
    scenario_prefix_cost(&c, cl);
  }
  if (only[0] == '\0' || strcmp(only, "unsubscribe_pending") == 0) {
    scenario_unsubscribe_pending(&c);
  }
  if (only[0] == '\0' || strcmp(only, "install_deleted") == 0) {
    scenario_install_deleted(&c, cl);
  }
  if (only[0] == '\0' || strcmp(only, "backlog_close") == 0) {
    scenario_backlog_close(&c, cl);
  }
  synod_client_free(cl);
  cluster_stop(&c);
  printf("ok\n");
  return failed;
}
