/* Black-box fuzzing of live replicas (issue #15): three real synodd
 * processes (tests/integration/cluster.c) get, on their client and peer
 * ports, for a bounded time:
 *   - thousands of connections opened and dropped: at once, after half a
 *     frame header, with a reset (SO_LINGER 0), on the HTTP port too;
 *   - valid requests with absurd fields (names empty, 257 bytes, 64 KiB,
 *     binary; TTLs, timeouts, lock-delays, limits 0 and UINT32_MAX;
 *     counter deltas at INT64_MAX; unknown session ids and sequences);
 *   - those frames mutated (bytes flipped, set, cut, repeated, inserted),
 *     truncated frames, frames declaring 2 GiB or just over the maximum;
 *   - on the peer port, hellos that are mutated or from another cluster,
 *     core messages before any hello, and, after a hello that passes the
 *     identity check (a new name with its own incarnation, as a joining
 *     replica sends), mutated core and link messages.
 * Afterwards every replica must still run and serve a real client (its
 * own status, and an add through it), and no replica's log may hold a
 * sanitizer report (run it against an ASan+UBSan synodd: SYNODD=...
 * build-asan/bin/synodd, which ctest integration.fuzz_blackbox_asan does).
 *
 * SYNOD_FUZZ_SECONDS (default 40) bounds the attack; SYNOD_FUZZ_SEED
 * replays one (the seed is printed). Exits 77 if synodd is not built. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "peer.pb-c.h"
#include "synod.h"
#include "synod.pb-c.h"

#define BUF_MAX (1u << 21)

static uint64_t rng_state;

static uint64_t rnd(void) {
  uint64_t x = rng_state; /* xorshift64* */
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  rng_state = x;
  return x * 2685821657736338717ull;
}

static uint32_t below(uint32_t n) {
  return n ? (uint32_t)(rnd() % n) : 0;
}

struct stats {
  uint64_t conns, frames, mutated, oversized, truncated, resets, peer_links;
};
static struct stats st;

/* --------------------------------------------------------- connections */

static struct sockaddr_in addr_of(const char *address) {
  char host[64];
  const char *colon = strrchr(address, ':');
  CHECK(colon != NULL, "address '%s'", address);
  snprintf(host, sizeof host, "%.*s", (int)(colon - address), address);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)atoi(colon + 1))};
  CHECK(inet_pton(AF_INET, host, &sa.sin_addr) == 1, "host '%s'", host);
  return sa;
}

/* A connected, non-blocking socket, or -1 (the server may be at its
 * connection limit or the backlog full: that is allowed). */
static int dial(const char *address) {
  struct sockaddr_in sa = addr_of(address);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(fd >= 0, "socket: %s", strerror(errno));
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  st.conns++;
  return fd;
}

/* Reads whatever the server sent, without waiting. */
static void drain(int fd) {
  static uint8_t buf[65536];
  while (recv(fd, buf, sizeof buf, 0) > 0) {
  }
}

/* Sends what the server takes within ~200 ms; a server that hung up or
 * stopped reading is fine. */
static void send_some(int fd, const uint8_t *p, size_t n) {
  uint64_t deadline = test_now_ms() + 200;
  while (n > 0 && test_now_ms() < deadline) {
    ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
    if (k > 0) {
      p += k;
      n -= (size_t)k;
    } else if (k < 0 && errno == EAGAIN) {
      drain(fd);
      struct pollfd pf = {.fd = fd, .events = POLLOUT};
      poll(&pf, 1, 10);
    } else {
      return;
    }
  }
}

/* Closes fd, half the time with a reset instead of a FIN. */
static void hang_up(int fd) {
  if (rnd() & 1) {
    struct linger l = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    st.resets++;
  }
  close(fd);
}

/* Opens and drops `count` connections to address, in batches. */
static void churn(const char *address, int count) {
  int fds[128];
  for (int done = 0; done < count;) {
    int n = 0;
    for (; n < 128 && done < count; done++) {
      int fd = dial(address);
      if (fd >= 0) {
        fds[n++] = fd;
      }
    }
    for (int i = 0; i < n; i++) {
      uint8_t half[3] = {0, 0, (uint8_t)rnd()};
      if (below(3) == 0) {
        send_some(fds[i], half, 1 + below(3)); /* half a frame header */
      }
      hang_up(fds[i]);
    }
  }
}

/* --------------------------------------------------------------- frames */

static size_t frame(const ProtobufCMessage *m, uint8_t *buf, size_t cap) {
  size_t n = protobuf_c_message_get_packed_size(m);
  CHECK(n + 4 <= cap, "frame of %zu bytes", n);
  protobuf_c_message_pack(m, buf + 4);
  buf[0] = (uint8_t)(n >> 24);
  buf[1] = (uint8_t)(n >> 16);
  buf[2] = (uint8_t)(n >> 8);
  buf[3] = (uint8_t)n;
  return n + 4;
}

/* A few random edits of buf[0..*n), keeping *n <= cap. */
static void mutate(uint8_t *buf, size_t *n, size_t cap) {
  static const uint8_t special[] = {0, 1, 0x7f, 0x80, 0xff, 0xfe};
  int edits = 1 + (int)below(6);
  for (int e = 0; e<edits && * n> 0; e++) {
    size_t at = below((uint32_t)*n);
    switch (below(6)) {
    case 0:
      buf[at] ^= (uint8_t)(1u << below(8));
      break;
    case 1:
      buf[at] = special[below(sizeof special)];
      break;
    case 2:
      buf[at] = (uint8_t)rnd();
      break;
    case 3: /* cut */
      *n = at + 1;
      break;
    case 4: { /* repeat a slice */
      size_t len = 1 + below(16);
      if (at + len <= *n && *n + len <= cap) {
        memmove(buf + at + len, buf + at, *n - at);
        *n += len;
      }
      break;
    }
    default: { /* insert random bytes */
      size_t len = 1 + below(8);
      if (*n + len <= cap) {
        memmove(buf + at + len, buf + at, *n - at);
        for (size_t i = 0; i < len; i++) {
          buf[at + i] = (uint8_t)rnd();
        }
        *n += len;
      }
    }
    }
  }
  st.mutated++;
}

/* ------------------------------------------------------------- requests */

static char long_name[70000];

static char *absurd_name(void) {
  static char binary[] = "\xff\xfe\x01 lock\x7f";
  static char *names[] = {"",     "a",       "fuzz", NULL,
                          NULL,   binary,    "a\0b", "../../../etc",
                          "%s%n", "\xc3\x28" /* bad UTF-8 */};
  uint32_t i = below(sizeof names / sizeof *names);
  if (i == 3) {
    return long_name + sizeof long_name - 1 - 257; /* 257 bytes */
  }
  if (i == 4) {
    return long_name + sizeof long_name - 1 - (1 + below(65536));
  }
  return names[i];
}

static uint64_t absurd_u64(void) {
  static const uint64_t v[] = {
      0,         1,         2, 3, 7, 1000, UINT32_MAX, (uint64_t)UINT32_MAX + 1,
      INT64_MAX, UINT64_MAX};
  return below(4) == 0 ? rnd() : v[below(sizeof v / sizeof *v)];
}

static uint32_t absurd_u32(void) {
  return (uint32_t)absurd_u64();
}

static int64_t absurd_i64(void) {
  static const int64_t v[] = {0, 1, -1, INT64_MAX, INT64_MIN, 42};
  return v[below(sizeof v / sizeof *v)];
}

/* A valid request with absurd fields, framed into buf. */
static size_t request_frame(uint8_t *buf, size_t cap) {
  Synod__Request r = SYNOD__REQUEST__INIT;
  Synod__SessionOpen so = SYNOD__SESSION_OPEN__INIT;
  Synod__SessionKeepalive ka = SYNOD__SESSION_KEEPALIVE__INIT;
  Synod__SessionClose sc = SYNOD__SESSION_CLOSE__INIT;
  Synod__LockAcquire la = SYNOD__LOCK_ACQUIRE__INIT;
  Synod__LockRelease lr = SYNOD__LOCK_RELEASE__INIT;
  Synod__LockQuery lq = SYNOD__LOCK_QUERY__INIT;
  Synod__LockCheck lc = SYNOD__LOCK_CHECK__INIT;
  Synod__CounterGet cg = SYNOD__COUNTER_GET__INIT;
  Synod__CounterSet cs = SYNOD__COUNTER_SET__INIT;
  Synod__CounterCas cc = SYNOD__COUNTER_CAS__INIT;
  Synod__CounterAdd ca = SYNOD__COUNTER_ADD__INIT;
  Synod__CounterDelete cd = SYNOD__COUNTER_DELETE__INIT;
  Synod__CounterList cl = SYNOD__COUNTER_LIST__INIT;
  Synod__ElectionCampaign ec = SYNOD__ELECTION_CAMPAIGN__INIT;
  Synod__ElectionResign er = SYNOD__ELECTION_RESIGN__INIT;
  Synod__ElectionLeader el = SYNOD__ELECTION_LEADER__INIT;
  Synod__ElectionObserve eo = SYNOD__ELECTION_OBSERVE__INIT;
  Synod__Status s = SYNOD__STATUS__INIT;
  Synod__Hello h = SYNOD__HELLO__INIT;
  Synod__ChannelCreate chc = SYNOD__CHANNEL_CREATE__INIT;
  Synod__ChannelLimits lim = SYNOD__CHANNEL_LIMITS__INIT;
  Synod__ChannelPublish chp = SYNOD__CHANNEL_PUBLISH__INIT;
  Synod__ChannelRead chr = SYNOD__CHANNEL_READ__INIT;
  Synod__ChannelInfoGet chi = SYNOD__CHANNEL_INFO_GET__INIT;
  Synod__ChannelList chl = SYNOD__CHANNEL_LIST__INIT;
  Synod__ChannelDelete chd = SYNOD__CHANNEL_DELETE__INIT;
  Synod__ChannelSubscribe sub = SYNOD__CHANNEL_SUBSCRIBE__INIT;
  Synod__ChannelCredit cr = SYNOD__CHANNEL_CREDIT__INIT;
  Synod__ChannelUnsubscribe un = SYNOD__CHANNEL_UNSUBSCRIBE__INIT;
  Synod__ChannelCursorCommit kc = SYNOD__CHANNEL_CURSOR_COMMIT__INIT;
  Synod__ChannelCursorGet kg = SYNOD__CHANNEL_CURSOR_GET__INIT;
  ProtobufCBinaryData msgs[8];
  r.id = absurd_u64();
  r.session_id = below(2) ? 1 + below(64) : absurd_u64();
  r.sequence = absurd_u64();
  r.stale = below(2);
  switch (below(29)) {
  case 0:
    so.ttl_ms = absurd_u32();
    so.client_name = absurd_name();
    r.body_case = SYNOD__REQUEST__BODY_SESSION_OPEN;
    r.session_open = &so;
    break;
  case 1:
    r.body_case = SYNOD__REQUEST__BODY_SESSION_KEEPALIVE;
    r.session_keepalive = &ka;
    break;
  case 2:
    r.body_case = SYNOD__REQUEST__BODY_SESSION_CLOSE;
    r.session_close = &sc;
    break;
  case 3:
    la.name = absurd_name();
    la.owner_id = absurd_u64();
    la.timeout_ms = absurd_u32();
    la.lock_delay_ms = absurd_u32();
    r.body_case = SYNOD__REQUEST__BODY_LOCK_ACQUIRE;
    r.lock_acquire = &la;
    break;
  case 4:
    lr.name = absurd_name();
    lr.owner_id = absurd_u64();
    r.body_case = SYNOD__REQUEST__BODY_LOCK_RELEASE;
    r.lock_release = &lr;
    break;
  case 5:
    lq.name = absurd_name();
    r.body_case = SYNOD__REQUEST__BODY_LOCK_QUERY;
    r.lock_query = &lq;
    break;
  case 6:
    lc.name = absurd_name();
    lc.token = absurd_u64();
    r.body_case = SYNOD__REQUEST__BODY_LOCK_CHECK;
    r.lock_check = &lc;
    break;
  case 7:
    cg.name = absurd_name();
    r.body_case = SYNOD__REQUEST__BODY_COUNTER_GET;
    r.counter_get = &cg;
    break;
  case 8:
    cs.name = absurd_name();
    cs.value = absurd_i64();
    r.body_case = SYNOD__REQUEST__BODY_COUNTER_SET;
    r.counter_set = &cs;
    break;
  case 9:
    cc.name = absurd_name();
    cc.expect = absurd_i64();
    cc.update = absurd_i64();
    r.body_case = SYNOD__REQUEST__BODY_COUNTER_CAS;
    r.counter_cas = &cc;
    break;
  case 10:
    ca.name = below(2) ? "blackbox-overflow" : absurd_name();
    ca.delta = absurd_i64();
    ca.return_previous = below(2);
    r.body_case = SYNOD__REQUEST__BODY_COUNTER_ADD;
    r.counter_add = &ca;
    break;
  case 11:
    cd.name = absurd_name();
    r.body_case = SYNOD__REQUEST__BODY_COUNTER_DELETE;
    r.counter_delete = &cd;
    break;
  case 12:
    cl.prefix = absurd_name();
    cl.start_after = absurd_name();
    cl.limit = absurd_u32();
    r.body_case = SYNOD__REQUEST__BODY_COUNTER_LIST;
    r.counter_list = &cl;
    break;
  case 13:
    ec.name = absurd_name();
    ec.value.data = (uint8_t *)long_name;
    ec.value.len = below(2) ? below(2048) : below(sizeof long_name);
    r.body_case = SYNOD__REQUEST__BODY_ELECTION_CAMPAIGN;
    r.election_campaign = &ec;
    break;
  case 14:
    er.name = absurd_name();
    r.body_case = SYNOD__REQUEST__BODY_ELECTION_RESIGN;
    r.election_resign = &er;
    break;
  case 15:
    el.name = absurd_name();
    r.body_case = SYNOD__REQUEST__BODY_ELECTION_LEADER;
    r.election_leader = &el;
    break;
  case 16:
    eo.name = absurd_name();
    r.body_case = SYNOD__REQUEST__BODY_ELECTION_OBSERVE;
    r.election_observe = &eo;
    break;
  case 17:
    chc.name = absurd_name();
    lim.max_messages = absurd_u64();
    lim.max_bytes = absurd_u64();
    lim.max_age_ms = absurd_u64();
    lim.max_message_bytes = absurd_u32();
    lim.refuse_when_full = below(2);
    chc.limits = below(4) ? &lim : NULL;
    r.body_case = SYNOD__REQUEST__BODY_CHANNEL_CREATE;
    r.channel_create = &chc;
    break;
  case 18:
    chp.name = below(2) ? "blackbox-channel" : absurd_name();
    chp.n_messages = below(9);
    for (size_t i = 0; i < chp.n_messages; i++) {
      msgs[i].data = (uint8_t *)long_name;
      msgs[i].len = below(2) ? below(64) : below(sizeof long_name);
    }
    chp.messages = msgs;
    chp.message_id = below(2) ? "" : absurd_name();
    r.body_case = SYNOD__REQUEST__BODY_CHANNEL_PUBLISH;
    r.channel_publish = &chp;
    break;
  case 19:
    chr.name = below(2) ? "blackbox-channel" : absurd_name();
    chr.from = absurd_u64();
    chr.max = absurd_u32();
    chr.max_bytes = absurd_u64();
    r.body_case = SYNOD__REQUEST__BODY_CHANNEL_READ;
    r.channel_read = &chr;
    break;
  case 20:
    chi.name = absurd_name();
    r.body_case = SYNOD__REQUEST__BODY_CHANNEL_INFO;
    r.channel_info = &chi;
    break;
  case 21:
    chl.after = absurd_name();
    chl.limit = absurd_u32();
    r.body_case = SYNOD__REQUEST__BODY_CHANNEL_LIST;
    r.channel_list = &chl;
    break;
  case 22:
    chd.name = below(8) ? absurd_name() : "blackbox-channel";
    r.body_case = SYNOD__REQUEST__BODY_CHANNEL_DELETE;
    r.channel_delete = &chd;
    break;
  case 23:
  case 24:
    sub.subscription_id = below(2) ? below(8) : absurd_u64();
    sub.channel = below(2) ? "blackbox-channel" : absurd_name();
    sub.prefix = below(2);
    sub.from = (Synod__ChannelSubscribe__From)below(6);
    sub.offset = absurd_u64();
    sub.after_index = absurd_u64();
    sub.after_offset = absurd_u64();
    sub.cursor = below(2) ? "" : absurd_name();
    sub.credits = absurd_u32();
    r.body_case = SYNOD__REQUEST__BODY_CHANNEL_SUBSCRIBE;
    r.channel_subscribe = &sub;
    break;
  case 25:
    cr.subscription_id = below(2) ? below(8) : absurd_u64();
    cr.credits = absurd_u32();
    r.body_case = SYNOD__REQUEST__BODY_CHANNEL_CREDIT;
    r.channel_credit = &cr;
    break;
  case 26:
    un.subscription_id = below(2) ? below(8) : absurd_u64();
    r.body_case = SYNOD__REQUEST__BODY_CHANNEL_UNSUBSCRIBE;
    r.channel_unsubscribe = &un;
    break;
  case 27:
    kc.channel = below(2) ? "blackbox-channel" : absurd_name();
    kc.cursor = absurd_name();
    kc.offset = absurd_u64();
    r.body_case = SYNOD__REQUEST__BODY_CHANNEL_CURSOR_COMMIT;
    r.channel_cursor_commit = &kc;
    break;
  case 28:
    kg.channel = below(2) ? "blackbox-channel" : absurd_name();
    kg.cursor = absurd_name();
    r.body_case = SYNOD__REQUEST__BODY_CHANNEL_CURSOR_GET;
    r.channel_cursor_get = &kg;
    break;
  default:
    if (below(2)) {
      s.digest = below(2);
      r.body_case = SYNOD__REQUEST__BODY_STATUS;
      r.status = &s;
    } else {
      h.protocol_version = absurd_u32();
      h.client_name = absurd_name();
      r.body_case = SYNOD__REQUEST__BODY_HELLO;
      r.hello = &h;
    }
  }
  /* MemberRemove is left out: a real one would shrink the cluster. */
  return frame(&r.base, buf, cap);
}

static size_t hello_frame(uint8_t *buf, size_t cap) {
  Synod__Request r = SYNOD__REQUEST__INIT;
  Synod__Hello h = SYNOD__HELLO__INIT;
  h.protocol_version = SYNOD__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
  h.client_name = "blackbox";
  r.id = 1;
  r.body_case = SYNOD__REQUEST__BODY_HELLO;
  r.hello = &h;
  return frame(&r.base, buf, cap);
}

/* A header declaring an oversized frame, then some of its bytes. */
static size_t oversized_frame(uint8_t *buf, size_t cap) {
  uint32_t len = below(2) ? 0x7fffffffu : (1u << 20) + 1 + below(16);
  size_t n = 4 + below(1024);
  n = n < cap ? n : cap;
  buf[0] = (uint8_t)(len >> 24);
  buf[1] = (uint8_t)(len >> 16);
  buf[2] = (uint8_t)(len >> 8);
  buf[3] = (uint8_t)len;
  for (size_t i = 4; i < n; i++) {
    buf[i] = (uint8_t)rnd();
  }
  st.oversized++;
  return n;
}

/* One client connection: mostly a Hello, then frames of every kind. */
static void client_conn(const char *address, uint8_t *buf) {
  int fd = dial(address);
  if (fd < 0) {
    return;
  }
  size_t n;
  if (below(10) != 0) {
    n = hello_frame(buf, BUF_MAX);
    send_some(fd, buf, n);
  }
  int frames = 1 + (int)below(40);
  for (int i = 0; i < frames; i++) {
    uint32_t kind = below(100);
    if (kind < 3) {
      n = oversized_frame(buf, BUF_MAX);
      send_some(fd, buf, n);
      break; /* the server hangs up */
    }
    n = request_frame(buf, BUF_MAX);
    if (kind < 6) {
      n = 4 + below((uint32_t)n - 4); /* truncated: then close */
      st.truncated++;
      send_some(fd, buf, n);
      break;
    }
    if (kind < 45) {
      mutate(buf, &n, BUF_MAX);
    }
    send_some(fd, buf, n);
    st.frames++;
    drain(fd);
  }
  drain(fd);
  hang_up(fd);
}

/* ----------------------------------------------------------------- peer */

/* bootstrap_id (server/node/bootstrap.c): a replica's id is FNV-1a 64 of
 * its name, 0xff and its incarnation; the hello check recomputes it. */
static uint64_t replica_id(const char *name, const uint8_t incarnation[16]) {
  uint64_t h = 14695981039346656037ull;
  for (const char *p = name; *p != '\0'; p++) {
    h = (h ^ (uint8_t)*p) * 1099511628211ull;
  }
  h = (h ^ 0xff) * 1099511628211ull;
  for (int i = 0; i < 16; i++) {
    h = (h ^ incarnation[i]) * 1099511628211ull;
  }
  return h != 0 ? h : 1;
}

static size_t peer_hello_frame(uint8_t *buf, size_t cap, const char *cluster,
                               const char *name, uint64_t *id) {
  Synod__Peer__PeerMessage pm = SYNOD__PEER__PEER_MESSAGE__INIT;
  Synod__Peer__PeerHello h = SYNOD__PEER__PEER_HELLO__INIT;
  uint8_t inc[16];
  for (int i = 0; i < 16; i++) {
    inc[i] = (uint8_t)rnd();
  }
  h.protocol_version = 1;
  h.cluster_id = (char *)cluster;
  h.name = (char *)name;
  h.id = *id = replica_id(name, inc);
  h.incarnation.data = inc;
  h.incarnation.len = sizeof inc;
  h.peer_address = "127.0.0.1:1";
  h.client_address = "127.0.0.1:2";
  h.log_last_index = absurd_u64();
  h.term = below(2) ? 1 : absurd_u64();
  pm.body_case = SYNOD__PEER__PEER_MESSAGE__BODY_HELLO;
  pm.hello = &h;
  return frame(&pm.base, buf, cap);
}

/* A core or link message from `from` with absurd fields. */
static size_t peer_msg_frame(uint8_t *buf, size_t cap, uint64_t from,
                             uint64_t to) {
  Synod__Peer__PeerMessage pm = SYNOD__PEER__PEER_MESSAGE__INIT;
  Synod__Peer__Append ap = SYNOD__PEER__APPEND__INIT;
  Synod__Peer__Entry e[3], *ep[3];
  Synod__Peer__AppendReply ar = SYNOD__PEER__APPEND_REPLY__INIT;
  Synod__Peer__Vote v = SYNOD__PEER__VOTE__INIT;
  Synod__Peer__VoteReply vr = SYNOD__PEER__VOTE_REPLY__INIT;
  Synod__Peer__Heartbeat hb = SYNOD__PEER__HEARTBEAT__INIT;
  Synod__Peer__HeartbeatReply hr = SYNOD__PEER__HEARTBEAT_REPLY__INIT;
  Synod__Peer__SnapshotChunk sc = SYNOD__PEER__SNAPSHOT_CHUNK__INIT;
  Synod__Peer__SnapshotMeta sm = SYNOD__PEER__SNAPSHOT_META__INIT;
  Synod__Peer__SnapshotReply sr = SYNOD__PEER__SNAPSHOT_REPLY__INIT;
  Synod__Peer__TimeoutNow tn = SYNOD__PEER__TIMEOUT_NOW__INIT;
  Synod__Peer__ReadIndexRequest ri = SYNOD__PEER__READ_INDEX_REQUEST__INIT;
  Synod__Peer__StatusQuery sq = SYNOD__PEER__STATUS_QUERY__INIT;
  pm.from = below(4) ? from : absurd_u64();
  pm.to = below(4) ? to : absurd_u64();
  pm.term = below(3) ? 1 + below(3) : absurd_u64();
  switch (below(10)) {
  case 0:
    ap.prev_index = absurd_u64();
    ap.prev_term = absurd_u64();
    ap.commit = absurd_u64();
    ap.n_entries = below(4);
    for (size_t i = 0; i < ap.n_entries; i++) {
      synod__peer__entry__init(&e[i]);
      e[i].term = absurd_u64();
      e[i].index = ap.prev_index + 1 + i;
      e[i].type = below(4);
      e[i].data.data = (uint8_t *)long_name;
      e[i].data.len = below(64);
      ep[i] = &e[i];
    }
    ap.entries = ep;
    pm.body_case = SYNOD__PEER__PEER_MESSAGE__BODY_APPEND;
    pm.append = &ap;
    break;
  case 1:
    ar.reject = below(2);
    ar.index = absurd_u64();
    ar.hint_index = absurd_u64();
    ar.hint_term = absurd_u64();
    pm.body_case = SYNOD__PEER__PEER_MESSAGE__BODY_APPEND_REPLY;
    pm.append_reply = &ar;
    break;
  case 2:
    v.last_index = absurd_u64();
    v.last_term = absurd_u64();
    v.transfer = below(2);
    pm.body_case = below(2) ? SYNOD__PEER__PEER_MESSAGE__BODY_VOTE
                            : SYNOD__PEER__PEER_MESSAGE__BODY_PRE_VOTE;
    pm.vote = &v; /* same union slot as pre_vote */
    break;
  case 3:
    vr.granted = below(2);
    pm.body_case = below(2) ? SYNOD__PEER__PEER_MESSAGE__BODY_VOTE_REPLY
                            : SYNOD__PEER__PEER_MESSAGE__BODY_PRE_VOTE_REPLY;
    pm.vote_reply = &vr;
    break;
  case 4:
    hb.commit = absurd_u64();
    hb.read_ctx = absurd_u64();
    pm.body_case = SYNOD__PEER__PEER_MESSAGE__BODY_HEARTBEAT;
    pm.heartbeat = &hb;
    break;
  case 5:
    hr.read_ctx = absurd_u64();
    pm.body_case = SYNOD__PEER__PEER_MESSAGE__BODY_HEARTBEAT_REPLY;
    pm.heartbeat_reply = &hr;
    break;
  case 6:
    sm.index = absurd_u64();
    sm.term = absurd_u64();
    sm.size_bytes = absurd_u64();
    sc.meta = below(4) ? &sm : NULL;
    sc.offset = absurd_u64();
    sc.data.data = (uint8_t *)long_name;
    sc.data.len = below(4096);
    sc.last = below(2);
    pm.body_case = SYNOD__PEER__PEER_MESSAGE__BODY_SNAPSHOT;
    pm.snapshot = &sc;
    break;
  case 7:
    sr.index = absurd_u64();
    sr.offset = absurd_u64();
    sr.reject = below(2);
    pm.body_case = SYNOD__PEER__PEER_MESSAGE__BODY_SNAPSHOT_REPLY;
    pm.snapshot_reply = &sr;
    break;
  case 8:
    ri.ctx = absurd_u64();
    pm.body_case = SYNOD__PEER__PEER_MESSAGE__BODY_READ_INDEX;
    pm.read_index = &ri;
    break;
  default:
    if (below(2)) {
      pm.body_case = SYNOD__PEER__PEER_MESSAGE__BODY_TIMEOUT_NOW;
      pm.timeout_now = &tn;
    } else {
      pm.body_case = SYNOD__PEER__PEER_MESSAGE__BODY_STATUS_QUERY;
      pm.status_query = &sq;
    }
  }
  /* JoinRequest and LeaveRequest are left out: a join of a replica that
   * never catches up is a legitimate learner, not a fault. */
  return frame(&pm.base, buf, cap);
}

static void peer_conn(const char *address, uint8_t *buf, int serial) {
  int fd = dial(address);
  if (fd < 0) {
    return;
  }
  char name[32];
  uint64_t id = 0;
  snprintf(name, sizeof name, "fuzz-peer-%d", serial);
  size_t n;
  uint32_t how = below(10);
  if (how < 2) { /* a core message first */
    n = peer_msg_frame(buf, BUF_MAX, 1 + below(8), 1 + below(8));
  } else if (how < 4) { /* another cluster */
    n = peer_hello_frame(buf, BUF_MAX, "another", name, &id);
  } else {
    n = peer_hello_frame(buf, BUF_MAX, "synod", name, &id);
    if (how < 6) {
      mutate(buf, &n, BUF_MAX);
    } else {
      st.peer_links++;
    }
  }
  send_some(fd, buf, n);
  int frames = (int)below(30);
  for (int i = 0; i < frames; i++) {
    uint32_t kind = below(100);
    if (kind < 3) {
      n = oversized_frame(buf, BUF_MAX);
      send_some(fd, buf, n);
      break;
    }
    n = peer_msg_frame(buf, BUF_MAX, id, 1 + below(8));
    if (kind < 40) {
      mutate(buf, &n, BUF_MAX);
    }
    send_some(fd, buf, n);
    st.frames++;
    drain(fd);
  }
  hang_up(fd);
}

/* ----------------------------------------------------------------- main */

/* JSON bodies for /v1/txn and /v1/sessions, sent whole or mutated. */
static const char *const http_json_bodies[] = {
    "{\"compares\": [{\"key\": \"blackbox-key\", \"version\": 0}],"
    " \"success\": [{\"op\": \"put\", \"key\": \"blackbox-key\","
    " \"value_base64\": \"AAE=\", \"prev\": true}],"
    " \"failure\": [{\"op\": \"get\", \"key\": \"blackbox-key\"},"
    " {\"op\": \"delete\", \"key\": \"blackbox/\", \"prefix\": true}]}",
    "{\"compares\": [{\"key\": \"a\", \"value\": \"x\", \"op\": \"<\"}],"
    " \"success\": [{\"op\": \"put\", \"key\": \"a\", \"session\": 1}]}",
    "{\"ttl\": \"2s\", \"name\": \"blackbox\"}",
    "{\"ttl_ms\": 4294967296}",
};

/* One HTTP connection: a few requests to the API's endpoints (publish,
 * event streams, channel info, keys, transactions, sessions, elections,
 * status, metrics), with absurd
 * paths, queries, headers and bodies, some mutated or cut short; read a
 * little of the answer (an event stream may never end), then hang up. */
static void http_conn(const char *address, uint8_t *buf) {
  static const char *const paths[] = {
      "/v1/channels/blackbox-channel",
      "/v1/channels/",
      "/v1/channels",
      "/v1/channels/%s",
      "/v1/channels/%s?stream=1&from=first",
      "/v1/channels/blackbox-channel?stream=1&from=%s",
      "/v1/elections/%s",
      "/leader/%s",
      "/v1/status?cluster=1&limit=%s",
      "/v1/keys/blackbox-key",
      "/v1/keys/%s",
      "/v1/keys/blackbox/?prefix&keys_only&limit=2&after=%s",
      "/v1/keys/blackbox-key?if_version=%s&prev",
      "/v1/keys/blackbox-key?session=%s",
      "/v1/keys/blackbox-key?if_value=%s",
      "/v1/txn",
      "/v1/txn?%s",
      "/v1/sessions",
      "/v1/sessions?ttl=%s",
      "/v1/sessions/%s",
      "/metrics",
      "/readyz",
      "/healthz",
      "/",
      "/%s"};
  static const char *const methods[] = {"GET",  "POST",    "PUT",   "DELETE",
                                        "HEAD", "OPTIONS", "G\x01T"};
  int fd = dial(address);
  if (fd < 0) {
    return;
  }
  int requests = 1 + (int)below(4);
  for (int k = 0; k < requests; k++) {
    char path[512], head[2048];
    const char *junk = absurd_name();
    snprintf(path, sizeof path, paths[below(sizeof paths / sizeof *paths)],
             below(2) ? "x%2F%00y" : junk);
    const char *json = below(3) == 0
                           ? http_json_bodies[below(sizeof http_json_bodies /
                                                    sizeof *http_json_bodies)]
                           : NULL;
    size_t body = json != NULL    ? strlen(json)
                  : below(3) == 0 ? below(300000)
                                  : below(256);
    int n = snprintf(
        head, sizeof head,
        "%s %s HTTP/1.1\r\nHost: x\r\n%s%s%sContent-Length: %zu\r\n\r\n",
        methods[below(sizeof methods / sizeof *methods)], path,
        below(2) ? "Accept: text/event-stream\r\n" : "",
        below(2) ? "Last-Event-ID: 18446744073709551615\r\n" : "",
        below(2) ? "Synod-Message-Id: blackbox\r\n" : "", body);
    size_t len = n < (int)sizeof head ? (size_t)n : sizeof head - 1;
    memcpy(buf, head, len);
    size_t total = len + (body < BUF_MAX - len ? body : BUF_MAX - len);
    memset(buf + len, 'b', total - len);
    if (json != NULL) {
      memcpy(buf + len, json, total - len);
    }
    if (below(4) == 0) {
      mutate(buf, &total, BUF_MAX);
      st.mutated++;
    }
    if (below(8) == 0) {
      total = below((uint32_t)total + 1); /* cut short */
      st.truncated++;
    }
    send_some(fd, buf, total);
    st.frames++;
  }
  drain(fd);
  hang_up(fd);
}

/* The counter the checks add to. The fuzzer's own names ("blackbox-
 * overflow"...) must not reach it: a mutated frame that cut one to
 * "blackbox" once added -1 to the checks' counter (seed 1796580137). */
#define SERVING_COUNTER "serving check 5b0f"

/* Each replica answers its own status, and an add through it counts. */
static void check_serving(struct cluster *c, const char *counter,
                          int64_t *expect) {
  for (int i = 0; i < c->n; i++) {
    CHECK(c->nodes[i].pid != 0 && kill(c->nodes[i].pid, 0) == 0, "%s is gone",
          c->nodes[i].name);
    struct synod_status s;
    int rv = -1;
    for (uint64_t end = test_now_ms() + 30000; test_now_ms() < end;) {
      if ((rv = cluster_status(c, i, 0, 2000, &s)) == 0) {
        break;
      }
      usleep(100 * 1000);
    }
    CHECK(rv == 0, "%s does not answer its status: %s", c->nodes[i].name,
          synod_strerror(rv));
    synod_status_free(&s);
    struct synod_options o;
    struct synod_client *cl;
    char endpoints[CLUSTER_NODES_MAX * 32];
    snprintf(endpoints, sizeof endpoints, "%s", c->nodes[i].client);
    for (int k = 0; k < c->n; k++) {
      if (k != i) {
        strncat(endpoints, ",", sizeof endpoints - strlen(endpoints) - 1);
        strncat(endpoints, c->nodes[k].client,
                sizeof endpoints - strlen(endpoints) - 1);
      }
    }
    synod_options_init(&o);
    o.endpoints = endpoints;
    o.endpoints_in_order = true;
    CHECK(synod_client_new(&o, &cl) == 0, "client: %s", synod_client_errmsg());
    int64_t v = 0;
    rv = synod_counter_add(cl, counter, 1, 30000, &v);
    CHECK(rv == 0, "add through %s: %s", c->nodes[i].name,
          synod_client_errmsg());
    CHECK(v == ++*expect, "add through %s: %lld, expected %lld",
          c->nodes[i].name, (long long)v, (long long)*expect);
    synod_client_free(cl);
  }
}

static void check_logs(const struct cluster *c) {
  static const char *reports[] = {
      "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
      "runtime error:", "UndefinedBehaviorSanitizer", "Assertion"};
  for (int i = 0; i < c->n; i++) {
    char *log = test_slurp(c->nodes[i].log);
    for (size_t k = 0; k < sizeof reports / sizeof *reports; k++) {
      CHECK(strstr(log, reports[k]) == NULL, "%s's log has '%s' (%s)",
            c->nodes[i].name, reports[k], c->nodes[i].log);
    }
    free(log);
  }
}

int main(void) {
  struct cluster c;
  char synodd[PATH_MAX], why[256];
  signal(SIGPIPE, SIG_IGN);
  test_binary("SYNODD", "synodd", synodd, sizeof synodd);
  if (access(synodd, X_OK) != 0 ||
      !cluster_synodd_ready(synodd, why, sizeof why)) {
    printf("SKIP: %s not usable\n", synodd);
    return SKIP_EXIT;
  }
  const char *e = getenv("SYNOD_FUZZ_SEED");
  uint64_t seed = e ? strtoull(e, NULL, 0) : (uint64_t)time(NULL) ^ getpid();
  rng_state = seed ? seed : 1;
  e = getenv("SYNOD_FUZZ_SECONDS");
  uint64_t seconds = e ? strtoull(e, NULL, 0) : 40;
  printf("blackbox: seed %llu (SYNOD_FUZZ_SEED=%llu replays it), %llu s, "
         "synodd %s\n",
         (unsigned long long)seed, (unsigned long long)seed,
         (unsigned long long)seconds, synodd);
  fflush(stdout);
  memset(long_name, 'x', sizeof long_name - 1);
  uint8_t *buf = malloc(BUF_MAX);
  CHECK(buf != NULL, "out of memory");

  cluster_start(&c, 3, synodd);
  cluster_wait_leader(&c, 30000);
  int64_t expect = 0;
  check_serving(&c, SERVING_COUNTER, &expect);

  /* Thousands of connections opened and dropped, on every port. */
  for (int i = 0; i < c.n; i++) {
    churn(c.nodes[i].client, 1000);
    churn(c.nodes[i].peer, 1000);
    churn(c.nodes[i].http, 300);
  }
  printf("blackbox: churn done: %llu connections\n",
         (unsigned long long)st.conns);
  fflush(stdout);
  uint64_t end = test_now_ms() + seconds * 1000;
  for (int serial = 0; test_now_ms() < end; serial++) {
    int i = (int)below((uint32_t)c.n);
    uint32_t port = below(6);
    if (port < 2) {
      peer_conn(c.nodes[i].peer, buf, serial);
    } else if (port < 5) {
      client_conn(c.nodes[i].client, buf);
    } else {
      http_conn(c.nodes[i].http, buf);
    }
  }
  printf("blackbox: %llu connections, %llu frames (%llu mutated), %llu "
         "oversized, %llu truncated, %llu resets, %llu peer hellos that "
         "pass the identity check\n",
         (unsigned long long)st.conns, (unsigned long long)st.frames,
         (unsigned long long)st.mutated, (unsigned long long)st.oversized,
         (unsigned long long)st.truncated, (unsigned long long)st.resets,
         (unsigned long long)st.peer_links);
  fflush(stdout);

  check_serving(&c, SERVING_COUNTER, &expect);
  cluster_stop(&c);
  check_logs(&c);
  free(buf);
  printf("blackbox: every replica serves; no sanitizer report\n");
  printf("1 passed, 0 failed\n");
  return 0;
}
