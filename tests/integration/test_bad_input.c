/* Bad input on both ports of a real replica: garbage, oversized frames, a
 * request before the handshake, a request of an unknown type, a peer from
 * another cluster, a peer claiming another replica's name. Each gets an
 * answer where the protocol has one, the connection is closed, the
 * replica logs the remote address, and the cluster keeps serving. A write
 * that carries a field the server does not know (a newer client's) is
 * refused by the leader, never proposed, on a connection that stays. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cluster.h"
#include "peer.pb-c.h"
#include "synod.h"
#include "synod.pb-c.h"

static int dial(const char *address) {
  char host[64];
  const char *colon = strrchr(address, ':');
  CHECK(colon != NULL, "address '%s'", address);
  snprintf(host, sizeof host, "%.*s", (int)(colon - address), address);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)atoi(colon + 1))};
  CHECK(inet_pton(AF_INET, host, &sa.sin_addr) == 1, "host '%s'", host);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(fd >= 0, "socket: %s", strerror(errno));
  CHECK(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "connect %s: %s",
        address, strerror(errno));
  return fd;
}

static void send_all(int fd, const void *p, size_t n) {
  const uint8_t *b = p;
  while (n > 0) {
    ssize_t k = send(fd, b, n, MSG_NOSIGNAL);
    if (k <= 0) {
      return; /* the server may already have hung up: that is the point */
    }
    b += k;
    n -= (size_t)k;
  }
}

/* Reads until the server closes the connection (bounded); returns the
 * bytes read, in buf (cap bytes). Fails the test if it stays open. */
static size_t read_until_closed(int fd, uint8_t *buf, size_t cap,
                                const char *what) {
  size_t got = 0;
  uint64_t deadline = test_now_ms() + 5000;
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int64_t left = (int64_t)(deadline - test_now_ms());
    CHECK(left > 0, "%s: the server kept the connection open for 5 s", what);
    if (poll(&p, 1, (int)left) <= 0) {
      continue;
    }
    uint8_t sink[4096];
    ssize_t k = recv(fd, got < cap ? buf + got : sink,
                     got < cap ? cap - got : sizeof sink, 0);
    if (k <= 0) {
      close(fd);
      return got;
    }
    got += got < cap ? (size_t)k : 0;
  }
}

/* The first frame of buf is a ServerMessage carrying error `code`. */
static void expect_error(const uint8_t *buf, size_t n, int code,
                         const char *what) {
  CHECK(n >= 4, "%s: no answer before the close", what);
  size_t len = (size_t)buf[0] << 24 | (size_t)buf[1] << 16 |
               (size_t)buf[2] << 8 | buf[3];
  CHECK(n >= 4 + len, "%s: a truncated answer", what);
  Synod__ServerMessage *sm = synod__server_message__unpack(NULL, len, buf + 4);
  CHECK(sm != NULL && sm->response != NULL && sm->response->error != NULL,
        "%s: the answer is not an error response", what);
  CHECK((int)sm->response->error->code == code, "%s: error %d, want %d (%s)",
        what, sm->response->error->code, code, sm->response->error->message);
  printf("  %s: %s\n", what, sm->response->error->message);
  synod__server_message__free_unpacked(sm, NULL);
}

static void frame_of(const ProtobufCMessage *m, uint8_t *buf, size_t cap,
                     size_t *n) {
  size_t len = protobuf_c_message_get_packed_size(m);
  CHECK(len + 4 <= cap, "frame of %zu bytes", len);
  buf[0] = (uint8_t)(len >> 24);
  buf[1] = (uint8_t)(len >> 16);
  buf[2] = (uint8_t)(len >> 8);
  buf[3] = (uint8_t)len;
  protobuf_c_message_pack(m, buf + 4);
  *n = len + 4;
}

static void client_port_cases(const char *addr) {
  uint8_t buf[4096], junk[4096];
  size_t n;
  for (size_t i = 0; i < sizeof junk; i++) {
    junk[i] = (uint8_t)(i * 131 + 7);
  }
  junk[0] = junk[1] = junk[2] = 0; /* a small length: garbage payload */
  int fd = dial(addr);
  send_all(fd, junk, sizeof junk);
  n = read_until_closed(fd, buf, sizeof buf, "client garbage");
  expect_error(buf, n, SYNOD_EMALFORMED, "client garbage");

  static const uint8_t huge[4] = {0x04, 0, 0, 0}; /* 64 MiB */
  fd = dial(addr);
  send_all(fd, huge, sizeof huge);
  n = read_until_closed(fd, buf, sizeof buf, "client oversized frame");
  expect_error(buf, n, SYNOD_ETOOBIG, "client oversized frame");

  Synod__Request r = SYNOD__REQUEST__INIT;
  Synod__CounterAdd add = SYNOD__COUNTER_ADD__INIT;
  add.name = "should-not-apply";
  add.delta = 1;
  r.id = 9;
  r.body_case = SYNOD__REQUEST__BODY_COUNTER_ADD;
  r.counter_add = &add;
  frame_of(&r.base, junk, sizeof junk, &n);
  fd = dial(addr);
  send_all(fd, junk, n);
  n = read_until_closed(fd, buf, sizeof buf, "client request before hello");
  expect_error(buf, n, SYNOD_EPROTO, "client request before hello");

  /* After the hello, a request whose body is of a type the server does not
   * know (field 999, as a newer client might send). */
  Synod__Hello hello = SYNOD__HELLO__INIT;
  hello.protocol_version = SYNOD__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
  r = (Synod__Request)SYNOD__REQUEST__INIT;
  r.id = 1;
  r.body_case = SYNOD__REQUEST__BODY_HELLO;
  r.hello = &hello;
  frame_of(&r.base, junk, sizeof junk, &n);
  static const uint8_t unknown[] = {0,    0,    0,   5, 0x08, 0x02, /* id 2 */
                                    0xBA, 0x3E, 0x00}; /* field 999: "" */
  memcpy(junk + n, unknown, sizeof unknown);
  fd = dial(addr);
  send_all(fd, junk, n + sizeof unknown);
  n = read_until_closed(fd, buf, sizeof buf, "client unknown request type");
  CHECK(n >= 4, "unknown request type: no answer to the hello");
  size_t first = 4 + ((size_t)buf[0] << 24 | (size_t)buf[1] << 16 |
                      (size_t)buf[2] << 8 | buf[3]);
  CHECK(n >= first, "unknown request type: a truncated answer to the hello");
  expect_error(buf + first, n - first, SYNOD_EPROTO,
               "client unknown request type");

  /* A counter add carrying a field numbered 0 (tag bytes 82 00: a
   * non-canonical varint), which protobuf-c decodes but cannot read back
   * once packed again: refused at the port, never proposed. */
  frame_of(&r.base, junk, sizeof junk, &n);
  static const uint8_t field0[] = {0,    0,    0,    14,   0x08, 0x05,
                                   0x82, 0x00, 0x01, 0x00, 0xda, 0x02,
                                   0x05, 0x0a, 0x01, 0x63, 0x10, 0x01};
  memcpy(junk + n, field0, sizeof field0);
  fd = dial(addr);
  send_all(fd, junk, n + sizeof field0);
  n = read_until_closed(fd, buf, sizeof buf, "client field numbered 0");
  first = 4 + ((size_t)buf[0] << 24 | (size_t)buf[1] << 16 |
               (size_t)buf[2] << 8 | buf[3]);
  CHECK(n >= first, "field 0: a truncated answer to the hello");
  expect_error(buf + first, n - first, SYNOD_EMALFORMED,
               "client field numbered 0");
}

static void peer_port_cases(const char *addr, const char *impostor_of) {
  uint8_t buf[256], junk[2048];
  size_t n;
  memset(junk, 0xA5, sizeof junk);
  int fd = dial(addr);
  send_all(fd, junk, sizeof junk);
  read_until_closed(fd, buf, sizeof buf, "peer garbage");
  printf("  peer garbage: closed\n");

  Synod__Peer__PeerMessage pm = SYNOD__PEER__PEER_MESSAGE__INIT;
  Synod__Peer__PeerHello h = SYNOD__PEER__PEER_HELLO__INIT;
  h.protocol_version = 1;
  h.cluster_id = "another-cluster";
  h.name = "intruder";
  h.id = 12345;
  pm.body_case = SYNOD__PEER__PEER_MESSAGE__BODY_HELLO;
  pm.hello = &h;
  frame_of(&pm.base, junk, sizeof junk, &n);
  fd = dial(addr);
  send_all(fd, junk, n);
  read_until_closed(fd, buf, sizeof buf, "peer from another cluster");
  printf("  peer from another cluster: closed\n");

  /* Our cluster, a real replica's name, an id that is not that name's. */
  static const uint8_t incarnation[16] = {7};
  h.cluster_id = "synod";
  h.name = (char *)impostor_of;
  h.incarnation.data = (uint8_t *)incarnation;
  h.incarnation.len = sizeof incarnation;
  frame_of(&pm.base, junk, sizeof junk, &n);
  fd = dial(addr);
  send_all(fd, junk, n);
  read_until_closed(fd, buf, sizeof buf, "peer claiming another's name");
  printf("  peer claiming to be %s with id 12345: closed\n", impostor_of);
}

/* Reads until `frames` whole frames are in buf (5 s at most); returns
 * where the last one starts. */
static size_t read_frames(int fd, uint8_t *buf, size_t cap, int frames,
                          const char *what) {
  size_t got = 0, at = 0;
  uint64_t deadline = test_now_ms() + 5000;
  for (int k = 0; k < frames;) {
    size_t len = got >= at + 4
                     ? 4 + ((size_t)buf[at] << 24 | (size_t)buf[at + 1] << 16 |
                            (size_t)buf[at + 2] << 8 | buf[at + 3])
                     : SIZE_MAX;
    if (len != SIZE_MAX && got >= at + len) {
      if (++k < frames) {
        at += len;
      }
      continue;
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int64_t left = (int64_t)(deadline - test_now_ms());
    CHECK(left > 0, "%s: %d answers in 5 s, want %d", what, k, frames);
    if (poll(&p, 1, (int)left) <= 0) {
      continue;
    }
    CHECK(got < cap, "%s: answers over %zu bytes", what, cap);
    ssize_t n = recv(fd, buf + got, cap - got, 0);
    CHECK(n > 0, "%s: the server closed the connection", what);
    got += (size_t)n;
  }
  return at;
}

/* Sends a handshake, then r (as request 2), to addr on a connection of
 * its own: r must be refused with `code` (the second answer). */
static void refused_after_hello(const char *addr, Synod__Request *r, int code,
                                const char *what) {
  static uint8_t buf[4096], out[16384];
  size_t n, m;
  Synod__Hello hello = SYNOD__HELLO__INIT;
  hello.protocol_version = SYNOD__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
  Synod__Request h = SYNOD__REQUEST__INIT;
  h.id = 1;
  h.body_case = SYNOD__REQUEST__BODY_HELLO;
  h.hello = &hello;
  frame_of(&h.base, out, sizeof out, &n);
  r->id = 2;
  frame_of(&r->base, out + n, sizeof out - n, &m);
  int fd = dial(addr);
  send_all(fd, out, n + m);
  size_t last = read_frames(fd, buf, sizeof buf, 2, what);
  expect_error(buf + last, sizeof buf - last, code, what);
  close(fd);
}

/* To the leader: a counter add with field 15 in its CounterAdd, as a
 * client newer than the server might send. Applied here it would lose
 * what the field means, and a replica that does not know a field of an
 * entry stops rather than apply it (fsm_apply): refused, nothing
 * proposed, and the connection serves on. */
static void unknown_field_case(const char *addr) {
  uint8_t varint_one = 1;
  ProtobufCMessageUnknownField extra = {.tag = 15,
                                        .wire_type =
                                            PROTOBUF_C_WIRE_TYPE_VARINT,
                                        .len = 1,
                                        .data = &varint_one};
  Synod__CounterAdd add = SYNOD__COUNTER_ADD__INIT;
  add.name = "newer-client";
  add.delta = 1;
  add.base.n_unknown_fields = 1;
  add.base.unknown_fields = &extra;
  Synod__Request r = SYNOD__REQUEST__INIT;
  r.body_case = SYNOD__REQUEST__BODY_COUNTER_ADD;
  r.counter_add = &add;
  refused_after_hello(addr, &r, SYNOD_EPROTO, "client unknown field");
}

/* To the leader: a publish of 1,001 messages in one batch (libsynod
 * refuses it before sending; the server did not): refused before it is
 * proposed, nothing appended (found by review). */
static void batch_over_case(const char *addr) {
  static ProtobufCBinaryData msgs[1001];
  for (size_t i = 0; i < 1001; i++) {
    msgs[i] = (ProtobufCBinaryData){1, (uint8_t *)"x"};
  }
  Synod__ChannelPublish p = SYNOD__CHANNEL_PUBLISH__INIT;
  p.name = "too-many";
  p.n_messages = 1001;
  p.messages = msgs;
  Synod__Request r = SYNOD__REQUEST__INIT;
  r.body_case = SYNOD__REQUEST__BODY_CHANNEL_PUBLISH;
  r.channel_publish = &p;
  refused_after_hello(addr, &r, SYNOD_ERANGE, "a batch over 1,000");
}

int main(void) {
  struct cluster c;
  char synodd[PATH_MAX];
  signal(SIGPIPE, SIG_IGN);
  cluster_synodd_or_skip(synodd, sizeof synodd);
  cluster_start(&c, 3, synodd);
  int leader = cluster_wait_leader(&c, 20000);
  int victim = (leader + 1) % 3; /* a follower: it must survive too */
  printf("bad input to %s (client %s, peer %s):\n", c.nodes[victim].name,
         c.nodes[victim].client, c.nodes[victim].peer);
  client_port_cases(c.nodes[victim].client);
  client_port_cases(c.nodes[leader].client);
  peer_port_cases(c.nodes[victim].peer, c.nodes[leader].name);
  unknown_field_case(c.nodes[leader].client);
  batch_over_case(c.nodes[leader].client);

  /* Still serving: a write through the cluster and the victim's status. */
  struct synod_options o;
  struct synod_client *cl;
  int64_t value = 0;
  synod_options_init(&o);
  o.endpoints = c.endpoints;
  CHECK(synod_client_new(&o, &cl) == 0, "client: %s", synod_client_errmsg());
  CHECK(synod_counter_add(cl, "after-bad-input", 1, 10000, &value) == 0,
        "add after bad input: %s", synod_client_errmsg());
  CHECK(value == 1, "counter is %lld", (long long)value);
  CHECK(synod_counter_get(cl, "should-not-apply", 0, 10000, &value) == 0,
        "get: %s", synod_client_errmsg());
  CHECK(value == 0, "a request sent before the handshake was applied");
  CHECK(synod_counter_get(cl, "newer-client", 0, 10000, &value) == 0, "get: %s",
        synod_client_errmsg());
  CHECK(value == 0, "a write with a field the server does not know was "
                    "applied");
  struct synod_channel_info ci;
  CHECK(synod_channel_info(cl, "too-many", 0, 10000, &ci) == SYNOD_ENOTFOUND,
        "a batch over 1,000 was appended");
  synod_client_free(cl);
  CHECK(c.nodes[victim].pid != 0 && kill(c.nodes[victim].pid, 0) == 0,
        "%s died", c.nodes[victim].name);
  CHECK(c.nodes[leader].pid != 0 && kill(c.nodes[leader].pid, 0) == 0,
        "%s died", c.nodes[leader].name);

  char *log = test_slurp(c.nodes[victim].log);
  CHECK(strstr(log, "refused 127.0.0.1:") != NULL,
        "the replica did not log the remote address of what it refused");
  CHECK(strstr(log, "not its name's") != NULL,
        "the replica did not log the peer that claimed another's name");
  CHECK(strstr(log, "has no body this server knows") != NULL,
        "the replica did not log the request of an unknown type");
  free(log);
  cluster_stop(&c);
  printf("1 passed, 0 failed\n");
  return 0;
}
