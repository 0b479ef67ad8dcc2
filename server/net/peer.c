/* Peer links: dialling, handshake, framing and bundled writes on libuv. */
#include "peer.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "frame.h"
#include "log.h"
#include "peer_codec.h"
#include "stream.h"
#include "synod.h"

#define PEER_FRAME_MAX_DEFAULT (16u << 20)
#define PEER_OUT_MAX_DEFAULT (64ull << 20)

struct peer_dial;

/* One TCP connection, dialled or accepted. Freed in its close callback. */
struct peer_conn {
  struct stream s; /* s.data = this */
  struct peer_net *net;
  struct peer_dial *dial;   /* non-NULL if we dialled it */
  uint64_t peer_id;         /* from its hello; 0 until then */
  bool attached;            /* it is its link's connection */
  struct peer_link *link;   /* set while attached */
  uv_connect_t connect_req; /* connect_req.data = this */
  struct peer_conn *next;
};

/* A replica we have a handshake with, keyed by id. Lives until the net is
 * freed, so its counts span reconnections. */
struct peer_link {
  uint64_t id;
  struct peer_conn *conn; /* NULL while down */
  uint64_t bytes_in;
  uint64_t bytes_out;
  uint64_t last_recv_ms; /* uv_now of the last frame */
  struct peer_link *next;
};

/* An address we keep a connection to. */
struct peer_dial {
  struct peer_net *net;
  char address[PEER_ADDRESS_MAX];
  char name[PEER_NAME_MAX]; /* expected there; "" if unknown */
  char host[PEER_ADDRESS_MAX];
  char port[8];
  uint64_t id; /* learnt from the first handshake */
  uv_getaddrinfo_t gai;
  uv_timer_t timer; /* timer.data = this */
  bool resolving;   /* gai is in flight */
  bool removed;     /* freed once the timer is closed and gai is back */
  bool timer_closed;
  uint32_t backoff_ms;
  struct peer_conn *conn;
  struct peer_dial *next;
};

struct peer_net {
  struct peer_net_options opts;
  struct pb_arena unpack; /* the frame being handled is decoded into it */
  char name[PEER_NAME_MAX];
  char cluster_id[PEER_NAME_MAX];
  char listen_address[PEER_ADDRESS_MAX];
  char advertise_address[PEER_ADDRESS_MAX];
  char client_address[PEER_ADDRESS_MAX];
  uv_tcp_t listener;
  bool listener_open;
  uv_prepare_t flush; /* sends what this loop turn queued */
  struct peer_conn *conns;
  struct peer_link *links;
  struct peer_dial *dials;
  struct peer_net_stats stats;
  unsigned handles_open; /* freed when this reaches 0 after stop */
  bool stopping;
};

static void conn_close(struct peer_conn *c, const char *why);
static void conn_refuse(struct peer_conn *c, const char *why);
static void conn_refuse(struct peer_conn *c, const char *why);
static void dial_schedule(struct peer_dial *d);
static void dial_timer_cb(uv_timer_t *t);

/* ------------------------------------------------------------ addresses */

/* ---------------------------------------------------------------- links */

static struct peer_link *link_find(const struct peer_net *net, uint64_t id) {
  if (net == NULL) {
    return NULL; /* stopped */
  }
  for (struct peer_link *l = net->links; l != NULL; l = l->next) {
    if (l->id == id) {
      return l;
    }
  }
  return NULL;
}

static struct peer_link *link_get(struct peer_net *net, uint64_t id) {
  struct peer_link *l = link_find(net, id);
  if (l == NULL && (l = calloc(1, sizeof *l)) != NULL) {
    l->id = id;
    l->next = net->links;
    net->links = l;
  }
  return l;
}

bool peer_net_is_up(const struct peer_net *net, uint64_t id) {
  const struct peer_link *l = link_find(net, id);
  return l != NULL && l->conn != NULL;
}

/* The id of the replica that dialled c: the rule that picks one
 * connection when both sides dialled. */
static uint64_t conn_dialer_id(const struct peer_conn *c) {
  return c->dial != NULL ? c->net->opts.id : c->peer_id;
}

/* Makes c its link's connection, or closes whichever of c and the current
 * one loses. Returns false if c was closed. */
static bool link_attach(struct peer_conn *c,
                        const Synod__Peer__PeerHello *hello) {
  struct peer_net *net = c->net;
  struct peer_link *l = link_get(net, c->peer_id);
  if (l == NULL) {
    conn_close(c, "out of memory");
    return false;
  }
  if (l->conn != NULL) {
    /* The lower dialler wins; between two of the same dialler the newer
     * wins, as the older is likely a dead peer's half-open socket. */
    if (conn_dialer_id(l->conn) < conn_dialer_id(c)) {
      conn_close(c, "duplicate connection");
      return false;
    }
    conn_close(l->conn, "replaced by the connection the lower id dialled");
  }
  l->conn = c;
  c->attached = true;
  c->link = l;
  if (net->opts.state_cb != NULL) {
    net->opts.state_cb(net->opts.arg, l->id, true, hello);
  }
  return true;
}

/* ------------------------------------------------------------- writing */

void peer_net_flush(struct peer_net *net) {
  for (struct peer_conn *c = net->conns; c != NULL; c = c->next) {
    net->stats.writes += stream_flush(&c->s);
  }
}

static void net_flush_cb(uv_prepare_t *h) {
  peer_net_flush(h->data);
}

static int conn_send_pb(struct peer_conn *c, Synod__Peer__PeerMessage *pb) {
  size_t before = c->s.out.len;
  int rv = stream_send(&c->s, &pb->base);
  if (rv == 0) {
    c->net->stats.frames_out++;
    if (c->link != NULL) {
      c->link->bytes_out += c->s.out.len - before;
    }
  }
  return rv;
}

static void conn_send_hello(struct peer_conn *c) {
  struct peer_net *net = c->net;
  Synod__Peer__PeerMessage pb = SYNOD__PEER__PEER_MESSAGE__INIT;
  Synod__Peer__PeerHello hello = SYNOD__PEER__PEER_HELLO__INIT;
  hello.protocol_version =
      SYNOD__PEER__PEER_PROTOCOL_VERSION__PEER_PROTOCOL_VERSION_CURRENT;
  hello.cluster_id = net->cluster_id;
  hello.name = net->name;
  hello.id = net->opts.id;
  hello.incarnation.data = net->opts.incarnation;
  hello.incarnation.len = PEER_INCARNATION_BYTES;
  hello.peer_address = net->advertise_address;
  hello.client_address = net->client_address;
  if (net->opts.hello_cb != NULL) {
    net->opts.hello_cb(net->opts.arg, &hello);
  }
  pb.from = net->opts.id;
  pb.body_case = SYNOD__PEER__PEER_MESSAGE__BODY_HELLO;
  pb.hello = &hello;
  if (conn_send_pb(c, &pb) != 0) {
    conn_close(c, "cannot queue hello");
  }
}

int peer_net_send(struct peer_net *net, const struct core_msg *m) {
  struct peer_link *l = link_find(net, m->to);
  if (net == NULL) {
    return 0;
  }
  if (l == NULL || l->conn == NULL ||
      stream_queued_bytes(&l->conn->s) >= net->opts.out_bytes_max) {
    net->stats.dropped++;
    return 0;
  }
  size_t before = l->conn->s.out.len;
  int rv = peer_msg_encode(m, &l->conn->s.out, net->opts.frame_max_bytes);
  if (rv == SYNOD_ENOMEM) {
    net->stats.dropped++;
    return 0;
  }
  if (rv == 0) {
    net->stats.frames_out++;
    l->bytes_out += l->conn->s.out.len - before;
  }
  return rv;
}

int peer_net_send_pb(struct peer_net *net, uint64_t to,
                     Synod__Peer__PeerMessage *pb) {
  struct peer_link *l = link_find(net, to);
  if (l == NULL || l->conn == NULL) {
    return SYNOD_ENOTFOUND;
  }
  pb->from = net->opts.id;
  pb->to = to;
  return conn_send_pb(l->conn, pb);
}

/* ------------------------------------------------------------- reading */

/* Checks a peer's handshake. Returns NULL if acceptable, else why not. */
static const char *hello_check(struct peer_conn *c,
                               const Synod__Peer__PeerHello *h, char *why,
                               size_t len) {
  const struct peer_net *net = c->net;
  if (h->protocol_version !=
      SYNOD__PEER__PEER_PROTOCOL_VERSION__PEER_PROTOCOL_VERSION_CURRENT) {
    snprintf(why, len, "protocol version %u, we speak %d", h->protocol_version,
             SYNOD__PEER__PEER_PROTOCOL_VERSION__PEER_PROTOCOL_VERSION_CURRENT);
  } else if (strcmp(h->cluster_id, net->cluster_id) != 0) {
    snprintf(why, len, "cluster '%.64s', we are '%s'", h->cluster_id,
             net->cluster_id);
  } else if (h->id == 0 || h->id == net->opts.id) {
    snprintf(why, len, "replica '%.64s' claims id %llu", h->name,
             (unsigned long long)h->id);
  } else if (net->opts.id_of != NULL &&
             (h->incarnation.len != PEER_INCARNATION_BYTES ||
              net->opts.id_of(h->name, h->incarnation.data) != h->id)) {
    snprintf(why, len, "replica '%.64s' claims id %llu, not its name's",
             h->name, (unsigned long long)h->id);
  } else if (c->dial != NULL && c->dial->name[0] != '\0' &&
             strcmp(c->dial->name, h->name) != 0) {
    snprintf(why, len, "replica at %s says it is '%.64s', we expect '%s'",
             c->dial->address, h->name, c->dial->name);
  } else if (c->dial != NULL && c->dial->id != 0 && c->dial->id != h->id) {
    /* A new incarnation behind a known address is fine: learn it. */
    c->dial->id = h->id;
    return NULL;
  } else {
    return NULL;
  }
  return why;
}

/* A replica dialled us: our own dial to it (matched by the name --peers
 * gives, or by the address it advertises) learns its id, so that when the
 * link goes down we redial it at once (dial_now). */
static void dials_learn_id(struct peer_net *net,
                           const Synod__Peer__PeerHello *h) {
  for (struct peer_dial *d = net->dials; d != NULL; d = d->next) {
    bool named = d->name[0] != '\0' && strcmp(d->name, h->name) == 0;
    bool at = d->name[0] == '\0' && h->peer_address != NULL &&
              strcmp(d->address, h->peer_address) == 0;
    if (named || at) {
      d->id = h->id;
    }
  }
}

static bool conn_on_hello(struct peer_conn *c,
                          const Synod__Peer__PeerMessage *pb) {
  char why[512];
  if (pb->body_case != SYNOD__PEER__PEER_MESSAGE__BODY_HELLO) {
    conn_refuse(c, "first frame is not a hello");
    return false;
  }
  if (hello_check(c, pb->hello, why, sizeof why) != NULL) {
    conn_refuse(c, why);
    return false;
  }
  c->peer_id = pb->hello->id;
  if (c->dial != NULL) {
    c->dial->id = c->peer_id;
    c->dial->backoff_ms = c->net->opts.backoff_min_ms;
  } else {
    conn_send_hello(c); /* the accepting side answers */
    dials_learn_id(c->net, pb->hello);
  }
  return link_attach(c, pb->hello);
}

/* Handles one frame; returns false if the connection was closed. */
static bool conn_frame_cb(struct stream *s, const uint8_t *p, size_t n) {
  struct peer_conn *c = s->data;
  struct peer_net *net = c->net;
  struct peer_decoded d;
  char err[SYNOD_ERRMSG_MAX];
  bool alive = true;
  net->stats.frames_in++;
  if (c->link != NULL) {
    c->link->bytes_in += FRAME_HEADER_BYTES + n;
    c->link->last_recv_ms = uv_now(net->opts.loop);
  }
  if (peer_msg_decode_in(&net->unpack, p, n, &d, err) != 0) {
    conn_refuse(c, err);
    return false;
  }
  if (c->peer_id == 0) {
    alive = conn_on_hello(c, d.pb);
  } else if (d.is_core) {
    if (d.msg.from != c->peer_id || d.msg.to != net->opts.id) {
      snprintf(err, sizeof err, "message from %llu to %llu on the link of %llu",
               (unsigned long long)d.msg.from, (unsigned long long)d.msg.to,
               (unsigned long long)c->peer_id);
      conn_refuse(c, err);
      alive = false;
    } else if (c->attached && net->opts.recv_cb != NULL) {
      net->opts.recv_cb(net->opts.arg, &d.msg);
    }
  } else if (c->attached && net->opts.link_cb != NULL &&
             d.pb->body_case != SYNOD__PEER__PEER_MESSAGE__BODY_HELLO) {
    net->opts.link_cb(net->opts.arg, c->peer_id, d.pb);
  }
  peer_decoded_free(&d);
  return alive && !c->s.closing;
}

/* --------------------------------------------------------- connections */

static void net_handle_closed(struct peer_net *net) {
  assert(net->handles_open > 0);
  if (--net->handles_open == 0 && net->stopping) {
    for (struct peer_link *l = net->links, *next; l != NULL; l = next) {
      next = l->next;
      free(l);
    }
    pb_arena_close(&net->unpack);
    free(net);
  }
}

static void conn_close_cb(struct stream *s) {
  struct peer_conn *c = s->data;
  struct peer_net *net = c->net;
  struct peer_conn **pp = &net->conns;
  while (*pp != c) {
    pp = &(*pp)->next;
  }
  *pp = c->next;
  free(c);
  net_handle_closed(net);
}

/* A link to `id` went down: redial it now rather than after the backoff,
 * so that a dead peer's refusal (peer_net_gone_cb) is seen at once. */
static void dial_now(struct peer_net *net, uint64_t id) {
  for (struct peer_dial *d = net->dials; d != NULL; d = d->next) {
    if (d->id == id && d->conn == NULL && !d->resolving && !d->removed) {
      d->backoff_ms = net->opts.backoff_min_ms;
      uv_timer_start(&d->timer, dial_timer_cb, 0, 0);
    }
  }
}

/* The connection starts closing: take it off its link and its dial. */
static void conn_closing_cb(struct stream *s, const char *why, bool refused) {
  struct peer_conn *c = s->data;
  struct peer_net *net = c->net;
  if (refused) {
    log_warn("peer", "refused %s: %s", s->remote, why);
    net->stats.refused++;
  }
  if (c->attached) {
    struct peer_link *l = link_find(net, c->peer_id);
    log_info("peer", "link to %llu (%s) down: %s",
             (unsigned long long)c->peer_id, s->remote, why);
    l->conn = NULL;
    c->attached = false;
    c->link = NULL;
    if (net->opts.state_cb != NULL && !net->stopping) {
      net->opts.state_cb(net->opts.arg, c->peer_id, false, NULL);
    }
    if (c->dial != NULL) {
      c->dial->backoff_ms = 0; /* redial at once (below) */
    }
  } else if (!refused && !net->stopping && c->dial != NULL) {
    log_debug("peer", "connection to %s closed: %s", s->remote, why);
  }
  if (c->dial != NULL) {
    c->dial->conn = NULL;
    dial_schedule(c->dial);
    c->dial = NULL;
  } else if (c->peer_id != 0 && !net->stopping &&
             !peer_net_is_up(net, c->peer_id)) {
    dial_now(net, c->peer_id);
  }
}

static void conn_close(struct peer_conn *c, const char *why) {
  stream_close(&c->s, why, false);
}

/* Closes a connection for what the peer sent; logged with its address. */
static void conn_refuse(struct peer_conn *c, const char *why) {
  stream_close(&c->s, why, true);
}

static struct peer_conn *conn_new(struct peer_net *net) {
  struct peer_conn *c = calloc(1, sizeof *c);
  if (c == NULL) {
    return NULL;
  }
  c->net = net;
  stream_init(&c->s, net->opts.loop, net->opts.frame_max_bytes);
  c->s.data = c;
  c->s.frame_cb = conn_frame_cb;
  c->s.closing_cb = conn_closing_cb;
  c->s.close_cb = conn_close_cb;
  c->next = net->conns;
  net->conns = c;
  net->handles_open++;
  return c;
}

static void net_accept_cb(uv_stream_t *server, int status) {
  struct peer_net *net = server->data;
  if (status < 0) {
    log_warn("peer", "accept on %s: %s", net->listen_address,
             uv_strerror(status));
    return;
  }
  struct peer_conn *c = conn_new(net);
  if (c == NULL) {
    log_error("peer", "accept on %s: out of memory", net->listen_address);
    return;
  }
  if (uv_accept(server, (uv_stream_t *)&c->s.tcp) != 0) {
    conn_close(c, "accept failed");
    return;
  }
  stream_start(&c->s);
}

/* -------------------------------------------------------------- dialling */

static void dial_connect_cb(uv_connect_t *req, int status) {
  struct peer_conn *c = req->data;
  if (c->s.closing) {
    return; /* closed meanwhile; its close callback frees it after this */
  }
  if (status < 0) {
    char why[160];
    struct peer_net *net = c->net;
    uint64_t id = c->dial != NULL ? c->dial->id : 0;
    if (status == UV_ECONNREFUSED && id != 0 && net->opts.gone_cb != NULL &&
        !net->stopping && !peer_net_is_up(net, id)) {
      net->opts.gone_cb(net->opts.arg, id);
    }
    snprintf(why, sizeof why, "connect: %s", uv_strerror(status));
    conn_close(c, why);
    return;
  }
  if (stream_start(&c->s) == 0) {
    conn_send_hello(c);
  }
}

static void dial_gai_cb(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  struct peer_dial *d = req->data;
  struct peer_net *net = d->net;
  d->resolving = false;
  if (d->removed) {
    uv_freeaddrinfo(res);
    if (d->timer_closed) {
      free(d);
    }
    net_handle_closed(net);
    return;
  }
  net_handle_closed(net); /* the gai's count; net stays (timer open) */
  if (status < 0) {
    log_warn("peer", "resolve %s: %s", d->address, uv_strerror(status));
    uv_freeaddrinfo(res);
    dial_schedule(d);
    return;
  }
  struct peer_conn *c = conn_new(net);
  if (c == NULL) {
    uv_freeaddrinfo(res);
    dial_schedule(d);
    return;
  }
  c->dial = d;
  d->conn = c;
  snprintf(c->s.remote, sizeof c->s.remote, "%s", d->address);
  c->connect_req.data = c;
  int rv =
      uv_tcp_connect(&c->connect_req, &c->s.tcp, res->ai_addr, dial_connect_cb);
  uv_freeaddrinfo(res);
  if (rv != 0) {
    conn_close(c, uv_strerror(rv));
  }
}

static void dial_start(struct peer_dial *d) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  if (d->conn != NULL || d->resolving || d->removed || d->net->stopping) {
    return;
  }
  /* Already connected to this replica the other way round. */
  if (d->id != 0 && peer_net_is_up(d->net, d->id)) {
    dial_schedule(d);
    return;
  }
  d->gai.data = d;
  if (uv_getaddrinfo(d->net->opts.loop, &d->gai, dial_gai_cb, d->host, d->port,
                     &hints) != 0) {
    dial_schedule(d);
    return;
  }
  d->resolving = true;
  d->net->handles_open++; /* keeps the net alive until gai_cb */
}

static void dial_timer_cb(uv_timer_t *t) {
  dial_start(t->data);
}

/* Redials after the current backoff, which then doubles (0, once after a
 * link went down, is followed by the minimum). */
static void dial_schedule(struct peer_dial *d) {
  struct peer_net *net = d->net;
  if (d->removed || net->stopping) {
    return;
  }
  uv_timer_start(&d->timer, dial_timer_cb, d->backoff_ms, 0);
  d->backoff_ms = d->backoff_ms ? d->backoff_ms * 2 : net->opts.backoff_min_ms;
  if (d->backoff_ms > net->opts.backoff_max_ms) {
    d->backoff_ms = net->opts.backoff_max_ms;
  }
}

static void dial_timer_close_cb(uv_handle_t *h) {
  struct peer_dial *d = h->data;
  struct peer_net *net = d->net;
  d->timer_closed = true;
  /* A getaddrinfo still in flight frees d in its callback. */
  if (!d->resolving) {
    free(d);
  }
  net_handle_closed(net);
}

int peer_net_dial(struct peer_net *net, const char *address, const char *name) {
  uint16_t port;
  struct peer_dial *d;
  for (d = net->dials; d != NULL; d = d->next) {
    if (strcmp(d->address, address) == 0) {
      return 0;
    }
  }
  d = calloc(1, sizeof *d);
  if (d == NULL) {
    return SYNOD_ENOMEM;
  }
  if (strlen(address) >= sizeof d->address ||
      (name != NULL && strlen(name) >= sizeof d->name) ||
      peer_address_parse(address, d->host, &port) != 0) {
    free(d);
    return SYNOD_EINVAL;
  }
  snprintf(d->address, sizeof d->address, "%s", address);
  snprintf(d->name, sizeof d->name, "%s", name != NULL ? name : "");
  snprintf(d->port, sizeof d->port, "%u", port);
  d->net = net;
  d->backoff_ms = net->opts.backoff_min_ms;
  uv_timer_init(net->opts.loop, &d->timer);
  d->timer.data = d;
  net->handles_open++;
  d->next = net->dials;
  net->dials = d;
  dial_start(d);
  return 0;
}

static void dial_remove(struct peer_dial *d) {
  d->removed = true;
  if (d->resolving) {
    uv_cancel((uv_req_t *)&d->gai);
  }
  if (d->conn != NULL) {
    struct peer_conn *c = d->conn;
    c->dial = NULL;
    d->conn = NULL;
    conn_close(c, "no longer dialled");
  }
  uv_close((uv_handle_t *)&d->timer, dial_timer_close_cb);
}

void peer_net_undial(struct peer_net *net, const char *address) {
  for (struct peer_dial **pp = &net->dials; *pp != NULL; pp = &(*pp)->next) {
    struct peer_dial *d = *pp;
    if (strcmp(d->address, address) == 0) {
      *pp = d->next;
      dial_remove(d);
      return;
    }
  }
}

/* ------------------------------------------------------------- lifecycle */

static int net_listen(struct peer_net *net, char *errmsg) {
  int rv = stream_listen(
      net->opts.loop, &net->listener, "peer", net->opts.listen_address, 128,
      net_accept_cb, net->listen_address, sizeof net->listen_address, errmsg);
  net->listener.data = net;
  if (rv != SYNOD_EINVAL) { /* the handle exists: stop closes it */
    net->listener_open = true;
    net->handles_open++;
  }
  return rv;
}

static void net_handle_close_cb(uv_handle_t *h) {
  net_handle_closed(h->data);
}

static void net_defaults(struct peer_net *net) {
  struct peer_net_options *o = &net->opts;
  if (o->frame_max_bytes == 0) {
    o->frame_max_bytes = PEER_FRAME_MAX_DEFAULT;
  }
  if (o->out_bytes_max == 0) {
    o->out_bytes_max = PEER_OUT_MAX_DEFAULT;
  }
  if (o->backoff_min_ms == 0) {
    o->backoff_min_ms = 50;
  }
  if (o->backoff_max_ms == 0) {
    o->backoff_max_ms = 2000;
  }
  snprintf(net->name, sizeof net->name, "%s", o->name ? o->name : "");
  snprintf(net->cluster_id, sizeof net->cluster_id, "%s",
           o->cluster_id ? o->cluster_id : "");
  snprintf(net->client_address, sizeof net->client_address, "%s",
           o->client_address ? o->client_address : "");
}

int peer_net_start(const struct peer_net_options *opts, struct peer_net **out,
                   char *errmsg) {
  struct peer_net *net = calloc(1, sizeof *net);
  if (net == NULL) {
    errmsg_set(errmsg, "peer: out of memory");
    return SYNOD_ENOMEM;
  }
  pb_arena_init(&net->unpack);
  net->opts = *opts;
  net_defaults(net);
  uv_prepare_init(opts->loop, &net->flush);
  net->flush.data = net;
  net->handles_open++;
  uv_prepare_start(&net->flush, net_flush_cb);
  int rv = net_listen(net, errmsg);
  if (rv != 0) {
    peer_net_stop(net);
    return rv;
  }
  snprintf(net->advertise_address, sizeof net->advertise_address, "%s",
           opts->advertise_address ? opts->advertise_address
                                   : net->listen_address);
  *out = net;
  return 0;
}

void peer_net_stop(struct peer_net *net) {
  if (net == NULL || net->stopping) {
    return;
  }
  net->stopping = true;
  while (net->dials != NULL) {
    struct peer_dial *d = net->dials;
    net->dials = d->next;
    dial_remove(d);
  }
  for (struct peer_conn *c = net->conns; c != NULL; c = c->next) {
    conn_close(c, "stopping");
  }
  uv_close((uv_handle_t *)&net->flush, net_handle_close_cb);
  if (net->listener_open) {
    uv_close((uv_handle_t *)&net->listener, net_handle_close_cb);
  }
}

const char *peer_net_listen_address(const struct peer_net *net) {
  return net->listen_address;
}

bool peer_net_link_stats(const struct peer_net *net, uint64_t id,
                         struct peer_link_stats *out) {
  const struct peer_link *l = link_find(net, id);
  memset(out, 0, sizeof *out);
  if (l == NULL) {
    return false;
  }
  out->up = l->conn != NULL;
  out->bytes_in = l->bytes_in;
  out->bytes_out = l->bytes_out;
  out->last_recv_ms = l->last_recv_ms;
  return true;
}

void peer_net_stats(const struct peer_net *net, struct peer_net_stats *out) {
  *out = net->stats;
  out->conns = 0;
  for (const struct peer_conn *c = net->conns; c != NULL; c = c->next) {
    out->conns++;
  }
}
