/* The raw-frame test client (raw_client.h). */
#include "raw_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "synod.h"

/* ------------------------------------------------------------ raw frames */

void raw_send(struct raw *r, Synod__Request *req) {
  req->id = ++r->next_id;
  size_t len = synod__request__get_packed_size(req);
  uint8_t *buf = malloc(len + 4);
  buf[0] = (uint8_t)(len >> 24);
  buf[1] = (uint8_t)(len >> 16);
  buf[2] = (uint8_t)(len >> 8);
  buf[3] = (uint8_t)len;
  synod__request__pack(req, buf + 4);
  for (size_t off = 0; off < len + 4;) {
    ssize_t k = send(r->fd, buf + off, len + 4 - off, MSG_NOSIGNAL);
    CHECK(k > 0, "send to %s: %s", r->where, strerror(errno));
    off += (size_t)k;
  }
  free(buf);
}

void read_full(struct raw *r, uint8_t *p, size_t n, uint32_t wait_ms) {
  uint64_t deadline = test_now_ms() + wait_ms;
  while (n > 0) {
    struct pollfd pf = {.fd = r->fd, .events = POLLIN};
    int64_t left = (int64_t)(deadline - test_now_ms());
    CHECK(left > 0, "%s: nothing more within %u ms", r->where, wait_ms);
    if (poll(&pf, 1, (int)left) <= 0) {
      continue;
    }
    ssize_t k = recv(r->fd, p, n, 0);
    CHECK(k > 0, "%s closed the connection: %s", r->where,
          k == 0 ? "EOF" : strerror(errno));
    p += k;
    n -= (size_t)k;
  }
}

/* The next ServerMessage (free it with synod__server_message__free_unpacked).
 */
Synod__ServerMessage *raw_recv(struct raw *r, uint32_t wait_ms) {
  uint8_t h[4];
  read_full(r, h, 4, wait_ms);
  size_t len =
      (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
  uint8_t *buf = malloc(len ? len : 1);
  read_full(r, buf, len, wait_ms);
  Synod__ServerMessage *sm = synod__server_message__unpack(NULL, len, buf);
  free(buf);
  CHECK(sm != NULL, "%s: a frame of %zu bytes that does not decode", r->where,
        len);
  return sm;
}

struct raw raw_open(const char *address) {
  char host[64];
  const char *colon = strrchr(address, ':');
  snprintf(host, sizeof host, "%.*s", (int)(colon - address), address);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)atoi(colon + 1))};
  CHECK(inet_pton(AF_INET, host, &sa.sin_addr) == 1, "host '%s'", host);
  struct raw r = {.fd = socket(AF_INET, SOCK_STREAM, 0), .where = address};
  CHECK(connect(r.fd, (struct sockaddr *)&sa, sizeof sa) == 0, "connect %s: %s",
        address, strerror(errno));
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__Hello hello = SYNOD__HELLO__INIT;
  hello.protocol_version = SYNOD__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
  hello.client_name = "subscribe test";
  req.body_case = SYNOD__REQUEST__BODY_HELLO;
  req.hello = &hello;
  raw_send(&r, &req);
  Synod__ServerMessage *sm = raw_recv(&r, 5000);
  CHECK(sm->response != NULL && sm->response->error == NULL,
        "%s: Hello refused", address);
  synod__server_message__free_unpacked(sm, NULL);
  return r;
}

/* The response to the last request, skipping events (which are counted
 * into *events if not NULL: they must then be deliveries, collected). */

void seen_event(struct seen *s, const Synod__Event *ev) {
  if (ev->body_case == SYNOD__EVENT__BODY_LEADER_CHANGED) {
    return; /* any connection may get one, whenever the leader changes */
  }
  if (ev->body_case == SYNOD__EVENT__BODY_SUBSCRIPTION_ENDED) {
    CHECK(s != NULL, "an unexpected SubscriptionEnded");
    s->ended = (int)ev->subscription_ended->error->code;
    s->first_available = ev->subscription_ended->error->first_available;
    printf("  ended: %s\n", ev->subscription_ended->error->message);
    return;
  }
  if (ev->body_case == SYNOD__EVENT__BODY_KEY_WATCH_DELIVERY) {
    CHECK(s != NULL && s->key_cb != NULL, "an unexpected KeyWatchDelivery");
    s->key_cb(s, ev->key_watch_delivery);
    return;
  }
  if (ev->body_case == SYNOD__EVENT__BODY_GROUP_DELIVERY) {
    CHECK(s != NULL && s->group_cb != NULL, "an unexpected GroupDelivery");
    s->group_cb(s, ev->group_delivery);
    return;
  }
  CHECK(ev->body_case == SYNOD__EVENT__BODY_CHANNEL_DELIVERY && s != NULL,
        "an unexpected event %d", ev->body_case);
  const Synod__ChannelDelivery *d = ev->channel_delivery;
  for (size_t i = 0; i < d->n_messages; i++) {
    const Synod__ChannelMessage *m = d->messages[i];
    CHECK(s->n < 4096, "too many deliveries");
    s->offsets[s->n] = m->channel[0] ? m->index << 16 | m->offset : m->offset;
    snprintf(s->channels[s->n], sizeof s->channels[0], "%s", m->channel);
    s->n++;
  }
}

Synod__ServerMessage *raw_call(struct raw *r, Synod__Request *req,
                               struct seen *s) {
  raw_send(r, req);
  for (;;) {
    Synod__ServerMessage *sm = raw_recv(r, 10000);
    if (sm->body_case == SYNOD__SERVER_MESSAGE__BODY_RESPONSE) {
      CHECK(sm->response->id == req->id, "answer to %" PRIu64 ", want %" PRIu64,
            sm->response->id, req->id);
      return sm;
    }
    seen_event(s, sm->event);
    synod__server_message__free_unpacked(sm, NULL);
  }
}

/* Calls and expects error `code` (0 = success). */
void raw_expect(struct raw *r, Synod__Request *req, struct seen *s, int code,
                const char *what) {
  Synod__ServerMessage *sm = raw_call(r, req, s);
  int got = sm->response->error ? (int)sm->response->error->code : 0;
  CHECK(got == code, "%s: code %d (%s), want %d", what, got,
        sm->response->error ? sm->response->error->message : "", code);
  if (got != 0) {
    printf("  %s: %s\n", what, sm->response->error->message);
  }
  synod__server_message__free_unpacked(sm, NULL);
}

void subscribe(struct raw *r, uint64_t sub_id, const char *channel, bool prefix,
               Synod__ChannelSubscribe__From from, uint64_t offset,
               uint32_t credits, const char *cursor, struct seen *s, int code,
               const char *what) {
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__ChannelSubscribe q = SYNOD__CHANNEL_SUBSCRIBE__INIT;
  q.subscription_id = sub_id;
  q.channel = (char *)channel;
  q.prefix = prefix;
  q.from = from;
  q.offset = offset;
  q.credits = credits;
  q.cursor = (char *)(cursor ? cursor : "");
  req.body_case = SYNOD__REQUEST__BODY_CHANNEL_SUBSCRIBE;
  req.channel_subscribe = &q;
  raw_expect(r, &req, s, code, what);
}

void credit(struct raw *r, uint64_t sub_id, uint32_t n, struct seen *s,
            int code) {
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__ChannelCredit q = SYNOD__CHANNEL_CREDIT__INIT;
  q.subscription_id = sub_id;
  q.credits = n;
  req.body_case = SYNOD__REQUEST__BODY_CHANNEL_CREDIT;
  req.channel_credit = &q;
  raw_expect(r, &req, s, code, "credit");
}

/* A round trip: every push made before the server read this is in. */
void barrier(struct raw *r, struct seen *s) {
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__Status st = SYNOD__STATUS__INIT;
  req.body_case = SYNOD__REQUEST__BODY_STATUS;
  req.status = &st;
  raw_expect(r, &req, s, 0, "status");
}

/* Waits until replica i has applied `index`, then a barrier on r: every
 * push of what it applied has arrived. */
void settle(struct cluster *c, int i, uint64_t index, struct raw *r,
            struct seen *s) {
  uint64_t deadline = test_now_ms() + 10000;
  for (;;) {
    struct synod_status st;
    if (cluster_status(c, i, 0, 2000, &st) == 0) {
      uint64_t applied = st.applied_index;
      synod_status_free(&st);
      if (applied >= index) {
        break;
      }
    }
    CHECK(test_now_ms() < deadline, "%s did not apply %" PRIu64 " in 10 s",
          c->nodes[i].name, index);
    usleep(10000);
  }
  barrier(r, s);
}

int follower_of(struct cluster *c) {
  int leader = cluster_wait_leader(c, 20000);
  return (leader + 1) % c->n;
}
