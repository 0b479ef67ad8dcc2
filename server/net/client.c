/* Client listener: connections, handshake, request frames, answers. */
#include "client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "pb_arena.h"
#include "u64map.h"
#include "stream.h"
#include "synod.h"

#define CLIENT_OUT_MAX_DEFAULT (64ull << 20)
#define CLIENT_CONNS_MAX_DEFAULT 4096
/* conn_id = generation << CLIENT_SLOT_BITS | slot: ids are never reused. */
#define CLIENT_SLOT_BITS 20

struct client_conn {
  struct stream s; /* s.data = this */
  struct client_net *net;
  uint64_t id;
  bool hello_done;
  struct client_conn *prev, *next; /* in net->open, while in a slot */
  /* Requests not answered yet (with answer_cb): request id -> arrival
   * time in us << 8 | body case, a non-zero integer as the pointer. */
  struct u64map unanswered;
  /* client_net_want_drain: call drain_cb once below drain_below bytes. */
  bool want_drain;
  size_t drain_below;
  /* Over out_bytes_max: closed by the next flush, never inside a send
   * (the close callback frees what the sender may still hold, such as
   * the subscriptions of the connection). Gone for every caller now. */
  bool backlogged;
};

struct client_net {
  struct client_net_options opts;
  /* The request being handled is unpacked into this; a request that
   * arrives while one is (were the callback ever to read another frame)
   * is unpacked from the heap. */
  struct pb_arena unpack;
  bool unpacking;
  char listen_address[128];
  uv_tcp_t listener;
  bool listener_open;
  uv_prepare_t flush;
  /* slots[i] is the open connection in slot i, or NULL; free slots are
   * found by scanning from `hint` (conns_max is small). */
  struct client_conn **slots;
  uint32_t *generation; /* per slot, bumped on reuse */
  uint32_t hint;
  /* The connections in slots, for the per-turn flush and broadcasts: a
   * walk over every slot each loop turn would cost conns_max steps. */
  struct client_conn *open;
  struct client_net_stats stats;
  unsigned handles_open;
  bool stopping;
};

static struct client_conn *conn_find(const struct client_net *net,
                                     uint64_t id) {
  if (net == NULL) {
    return NULL; /* stopped: every connection is gone */
  }
  uint64_t slot = id & ((1u << CLIENT_SLOT_BITS) - 1);
  if (slot >= net->opts.conns_max) {
    return NULL;
  }
  struct client_conn *c = net->slots[slot];
  return c != NULL && c->id == id && !c->s.closing && !c->backlogged ? c : NULL;
}

static void conn_check_backlog(struct client_conn *c);

static void net_handle_closed(struct client_net *net) {
  if (--net->handles_open == 0 && net->stopping) {
    free(net->slots);
    free(net->generation);
    pb_arena_close(&net->unpack);
    free(net);
  }
}

/* ------------------------------------------------------------ answers */

/* A request arrived: remember when, until its answer leaves. */
static void conn_request_arrived(struct client_conn *c,
                                 const Synod__Request *req) {
  if (c->net->opts.answer_cb == NULL || req->id == 0) {
    return;
  }
  uint64_t v = (uv_hrtime() / 1000) << 8 | (uint64_t)req->body_case;
  u64map_put(&c->unanswered, req->id, (void *)(uintptr_t)v);
}

/* The answer to request_id was queued: report it once. */
static void conn_request_answered(struct client_conn *c, uint64_t request_id,
                                  int code) {
  struct client_net *net = c->net;
  if (net->opts.answer_cb == NULL || request_id == 0) {
    return;
  }
  uintptr_t v = (uintptr_t)u64map_del(&c->unanswered, request_id);
  if (v == 0) {
    return; /* a second answer (none should exist), or untracked */
  }
  uint64_t arrived_us = (uint64_t)v >> 8, now_us = uv_hrtime() / 1000;
  net->opts.answer_cb(net->opts.arg, (uint32_t)(v & 0xff), code,
                      now_us > arrived_us ? now_us - arrived_us : 0);
}

/* Protobuf wire format, just enough to find a packed Response's id and
 * error code without unpacking it: varints and skipping fields. */
static bool pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  *v = 0;
  for (unsigned shift = 0; *p < end && shift < 64; shift += 7) {
    uint8_t b = *(*p)++;
    *v |= (uint64_t)(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      return true;
    }
  }
  return false;
}

/* Reads one field's tag and, for wire types 0 and 2, its value (varint,
 * or length with *body pointing at the bytes); skips types 1 and 5. */
static bool pb_field(const uint8_t **p, const uint8_t *end, uint64_t *field,
                     uint64_t *value, const uint8_t **body) {
  uint64_t tag;
  if (!pb_varint(p, end, &tag)) {
    return false;
  }
  *field = tag >> 3;
  switch (tag & 7) {
  case 0:
    return pb_varint(p, end, value);
  case 1:
  case 5: {
    size_t skip = (tag & 7) == 1 ? 8 : 4;
    if ((size_t)(end - *p) < skip) {
      return false;
    }
    *p += skip;
    return true;
  }
  case 2:
    if (!pb_varint(p, end, value) || *value > (uint64_t)(end - *p)) {
      return false;
    }
    *body = *p;
    *p += *value;
    return true;
  default:
    return false;
  }
}

/* Finds the id and error code of the Response inside a packed
 * ServerMessage (field 1; Response.id is 1, Response.error 2, Error.code
 * 1). False for an event or bytes that do not parse. */
static bool server_message_answer(const uint8_t *p, size_t n, uint64_t *id,
                                  int *code) {
  const uint8_t *end = p + n, *body = NULL, *resp = NULL, *err = NULL;
  uint64_t field, value, resp_len = 0, err_len = 0;
  *id = 0;
  *code = 0;
  while (p < end && pb_field(&p, end, &field, &value, &body)) {
    if (field == 1) {
      resp = body;
      resp_len = value;
    }
  }
  for (p = resp, end = resp + resp_len;
       resp != NULL && p < end && pb_field(&p, end, &field, &value, &body);) {
    if (field == 1) {
      *id = value;
    } else if (field == 2) {
      err = body;
      err_len = value;
    }
  }
  for (p = err, end = err + err_len;
       err != NULL && p < end && pb_field(&p, end, &field, &value, &body);) {
    if (field == 1) {
      *code = (int)value;
    }
  }
  return resp != NULL;
}

int client_net_send(struct client_net *net, uint64_t conn_id,
                    const Synod__ServerMessage *msg) {
  struct client_conn *c = conn_find(net, conn_id);
  if (c == NULL) {
    return SYNOD_ENOTFOUND;
  }
  int rv = stream_send(&c->s, &msg->base);
  if (rv == 0 && msg->body_case == SYNOD__SERVER_MESSAGE__BODY_RESPONSE) {
    const Synod__Response *r = msg->response;
    conn_request_answered(c, r->id, r->error ? (int)r->error->code : 0);
  }
  if (rv == 0) {
    conn_check_backlog(c);
  }
  return rv;
}

/* Disconnects a client whose unread answers pile up past the limit: at
 * the next flush, not here, inside whatever was sending. */
static void conn_check_backlog(struct client_conn *c) {
  if (!c->backlogged &&
      stream_queued_bytes(&c->s) > c->net->opts.out_bytes_max) {
    log_warn("client", "%s: %zu bytes of answers unread, disconnecting",
             c->s.remote, stream_queued_bytes(&c->s));
    c->backlogged = true;
  }
}

int client_net_send_bytes(struct client_net *net, uint64_t conn_id,
                          const uint8_t *payload, size_t n) {
  struct client_conn *c = conn_find(net, conn_id);
  if (c == NULL) {
    return SYNOD_ENOTFOUND;
  }
  int rv = stream_send_bytes(&c->s, payload, n);
  uint64_t id;
  int code;
  if (rv == 0 && net->opts.answer_cb != NULL &&
      server_message_answer(payload, n, &id, &code)) {
    conn_request_answered(c, id, code);
  }
  if (rv == 0) {
    conn_check_backlog(c);
  }
  return rv;
}

void client_net_broadcast(struct client_net *net,
                          const Synod__ServerMessage *msg) {
  if (net == NULL) {
    return;
  }
  for (struct client_conn *c = net->open; c != NULL; c = c->next) {
    if (c->hello_done && !c->s.closing && !c->backlogged) {
      if (stream_send(&c->s, &msg->base) == 0) {
        conn_check_backlog(c);
      }
    }
  }
}

static int conn_send_error(struct client_conn *c, uint64_t request_id, int code,
                           const char *text) {
  Synod__ServerMessage sm = SYNOD__SERVER_MESSAGE__INIT;
  Synod__Response resp = SYNOD__RESPONSE__INIT;
  Synod__Error err = SYNOD__ERROR__INIT;
  err.code = (Synod__ErrorCode)code;
  err.message = (char *)text;
  resp.id = request_id;
  resp.error = &err;
  sm.body_case = SYNOD__SERVER_MESSAGE__BODY_RESPONSE;
  sm.response = &resp;
  return stream_send(&c->s, &sm.base);
}

int client_net_send_error(struct client_net *net, uint64_t conn_id,
                          uint64_t request_id, int code, const char *fmt, ...) {
  char text[SYNOD_ERRMSG_MAX];
  va_list ap;
  struct client_conn *c = conn_find(net, conn_id);
  if (c == NULL) {
    return SYNOD_ENOTFOUND;
  }
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  int rv = conn_send_error(c, request_id, code, text);
  if (rv == 0) {
    conn_request_answered(c, request_id, code);
  }
  return rv;
}

/* Answers bad input with an error, then hangs up. */
static void conn_refuse(struct client_conn *c, uint64_t request_id, int code,
                        const char *why) {
  log_warn("client", "refused %s: %s", c->s.remote, why);
  c->net->stats.refused++;
  conn_send_error(c, request_id, code, why);
  stream_close_after_flush(&c->s, why);
}

const char *client_net_remote(const struct client_net *net, uint64_t conn_id) {
  const struct client_conn *c = conn_find(net, conn_id);
  return c != NULL ? c->s.remote : "?";
}

void client_net_close(struct client_net *net, uint64_t conn_id,
                      const char *why) {
  struct client_conn *c = conn_find(net, conn_id);
  if (c != NULL) {
    stream_close_after_flush(&c->s, why);
  }
}

/* ------------------------------------------------------------ requests */

static bool conn_check_hello(struct client_conn *c, const Synod__Request *r) {
  char why[160];
  if (r->body_case != SYNOD__REQUEST__BODY_HELLO) {
    snprintf(why, sizeof why, "first request (id %llu) is not a Hello",
             (unsigned long long)r->id);
    conn_refuse(c, r->id, SYNOD_EPROTO, why);
    return false;
  }
  if (r->hello->protocol_version !=
      SYNOD__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT) {
    snprintf(why, sizeof why, "protocol version %u, this server speaks %d",
             r->hello->protocol_version,
             SYNOD__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT);
    conn_refuse(c, r->id, SYNOD_EPROTO, why);
    return false;
  }
  c->hello_done = true;
  return true;
}

/* Frees a request conn_frame_cb() unpacked (from the arena or the heap). */
static void conn_request_free(struct client_net *net, Synod__Request *req,
                              bool arena) {
  if (arena) {
    pb_arena_reset(&net->unpack);
    net->unpacking = false;
  } else if (req != NULL) {
    synod__request__free_unpacked(req, NULL);
  }
}

static bool conn_frame_cb(struct stream *s, const uint8_t *p, size_t n) {
  struct client_conn *c = s->data;
  struct client_net *net = c->net;
  char why[96];
  bool arena = !net->unpacking;
  ProtobufCAllocator *alloc = arena ? &net->unpack.allocator : NULL;
  Synod__Request *req = synod__request__unpack(alloc, n, p);
  net->unpacking = arena;
  if (req == NULL || frame_pb_unrepackable(&req->base)) {
    snprintf(why, sizeof why, "request frame of %zu bytes does not decode%s", n,
             req != NULL ? " (a field numbered 0)" : "");
    conn_refuse(c, req != NULL ? req->id : 0, SYNOD_EMALFORMED, why);
    conn_request_free(net, req, arena);
    return false;
  }
  bool ok = c->hello_done || conn_check_hello(c, req);
  if (ok && req->body_case == SYNOD__REQUEST__BODY__NOT_SET) {
    /* A body this server does not know (a newer client), or none. */
    snprintf(why, sizeof why, "request %llu has no body this server knows",
             (unsigned long long)req->id);
    conn_refuse(c, req->id, SYNOD_EPROTO, why);
    ok = false;
  }
  if (ok) {
    net->stats.requests++;
    conn_request_arrived(c, req);
    net->opts.request_cb(net->opts.arg, c->id, req);
  }
  conn_request_free(net, req, arena);
  return ok && !s->closing && !s->close_after_flush && !c->backlogged;
}

static void conn_too_big_cb(struct stream *s, size_t declared) {
  char why[96];
  snprintf(why, sizeof why, "frame of %zu bytes over the maximum %u", declared,
           s->in.frame_max_bytes);
  conn_refuse(s->data, 0, SYNOD_ETOOBIG, why);
}

/* --------------------------------------------------------- connections */

static void conn_drain_check(struct client_conn *c) {
  if (!c->want_drain || c->s.closing || c->backlogged ||
      stream_queued_bytes(&c->s) >= c->drain_below) {
    return;
  }
  c->want_drain = false;
  if (c->net->opts.drain_cb != NULL) {
    c->net->opts.drain_cb(c->net->opts.arg, c->id);
    stream_flush(&c->s);
  }
}

static void conn_written_cb(struct stream *s) {
  conn_drain_check(s->data);
}

static void conn_closing_cb(struct stream *s, const char *why, bool refused) {
  struct client_conn *c = s->data;
  struct client_net *net = c->net;
  (void)refused;
  log_debug("client", "%s closed: %s", s->remote, why);
  if (net->opts.close_cb != NULL && !net->stopping) {
    net->opts.close_cb(net->opts.arg, c->id);
  }
}

static void conn_close_cb(struct stream *s) {
  struct client_conn *c = s->data;
  struct client_net *net = c->net;
  uint32_t slot = (uint32_t)(c->id & ((1u << CLIENT_SLOT_BITS) - 1));
  net->slots[slot] = NULL;
  if (c->prev != NULL) {
    c->prev->next = c->next;
  } else {
    net->open = c->next;
  }
  if (c->next != NULL) {
    c->next->prev = c->prev;
  }
  net->stats.conns--;
  u64map_close(&c->unanswered);
  free(c);
  net_handle_closed(net);
}

/* Frees a connection refused before it got a slot: nothing but the handle
 * was set up (readers and buffers allocate lazily). */
static void conn_free_unaccepted(uv_handle_t *h) {
  struct stream *s = h->data;
  free(s->data);
}

static int slot_take(struct client_net *net, uint32_t *out) {
  for (uint32_t k = 0; k < net->opts.conns_max; k++) {
    uint32_t i = (net->hint + k) % net->opts.conns_max;
    if (net->slots[i] == NULL) {
      net->hint = i + 1;
      *out = i;
      return 0;
    }
  }
  return SYNOD_ELIMIT;
}

static void net_accept_cb(uv_stream_t *server, int status) {
  struct client_net *net = server->data;
  uint32_t slot;
  struct client_conn *c;
  if (status < 0) {
    log_warn("client", "accept on %s: %s", net->listen_address,
             uv_strerror(status));
    return;
  }
  if ((c = calloc(1, sizeof *c)) == NULL) {
    log_error("client", "accept on %s: out of memory", net->listen_address);
    return;
  }
  c->net = net;
  stream_init(&c->s, net->opts.loop, net->opts.frame_max_bytes);
  c->s.data = c;
  c->s.frame_cb = conn_frame_cb;
  c->s.closing_cb = conn_closing_cb;
  c->s.written_cb = conn_written_cb;
  c->s.close_cb = conn_close_cb;
  c->s.too_big_cb = conn_too_big_cb;
  net->handles_open++;
  net->stats.conns++;
  int rv = uv_accept(server, (uv_stream_t *)&c->s.tcp);
  if (rv == 0 && (rv = slot_take(net, &slot)) != 0) {
    log_warn("client", "refused a connection: %u connections open (max)",
             net->opts.conns_max);
  }
  if (rv != 0) {
    c->id = UINT64_MAX; /* in no slot */
    net->stats.conns--;
    net->handles_open--;
    uv_close((uv_handle_t *)&c->s.tcp, conn_free_unaccepted);
    return;
  }
  c->id = (uint64_t)++net->generation[slot] << CLIENT_SLOT_BITS | slot;
  net->slots[slot] = c;
  c->next = net->open;
  if (net->open != NULL) {
    net->open->prev = c;
  }
  net->open = c;
  net->stats.accepted++;
  stream_start(&c->s);
}

size_t client_net_queued_bytes(const struct client_net *net, uint64_t conn_id) {
  const struct client_conn *c = conn_find(net, conn_id);
  return c != NULL ? stream_queued_bytes(&c->s) : SIZE_MAX;
}

void client_net_want_drain(struct client_net *net, uint64_t conn_id,
                           size_t below) {
  struct client_conn *c = conn_find(net, conn_id);
  if (c != NULL) {
    c->want_drain = true;
    c->drain_below = below;
  }
}

void client_net_flush(struct client_net *net) {
  for (struct client_conn *c = net->open; c != NULL; c = c->next) {
    if (c->backlogged) {
      stream_close(&c->s, "does not read its answers", false);
      continue;
    }
    stream_flush(&c->s);
    conn_drain_check(c);
  }
}

static void net_flush_cb(uv_prepare_t *h) {
  client_net_flush(h->data);
}

/* ------------------------------------------------------------ lifecycle */

static int net_listen(struct client_net *net, char *errmsg) {
  int rv = stream_listen(
      net->opts.loop, &net->listener, "client", net->opts.listen_address, 511,
      net_accept_cb, net->listen_address, sizeof net->listen_address, errmsg);
  net->listener.data = net;
  if (rv != SYNOD_EINVAL) { /* the handle exists: stop closes it */
    net->listener_open = true;
    net->handles_open++;
  }
  return rv;
}

int client_net_start(const struct client_net_options *opts,
                     struct client_net **out, char *errmsg) {
  struct client_net *net = calloc(1, sizeof *net);
  if (net == NULL) {
    errmsg_set(errmsg, "client: out of memory");
    return SYNOD_ENOMEM;
  }
  pb_arena_init(&net->unpack);
  net->opts = *opts;
  if (net->opts.out_bytes_max == 0) {
    net->opts.out_bytes_max = CLIENT_OUT_MAX_DEFAULT;
  }
  if (net->opts.conns_max == 0 ||
      net->opts.conns_max > (1u << CLIENT_SLOT_BITS)) {
    net->opts.conns_max = CLIENT_CONNS_MAX_DEFAULT;
  }
  net->slots = calloc(net->opts.conns_max, sizeof *net->slots);
  net->generation = calloc(net->opts.conns_max, sizeof *net->generation);
  uv_prepare_init(opts->loop, &net->flush);
  net->flush.data = net;
  net->handles_open++;
  uv_prepare_start(&net->flush, net_flush_cb);
  int rv =
      net->slots && net->generation ? net_listen(net, errmsg) : SYNOD_ENOMEM;
  if (rv != 0) {
    if (rv == SYNOD_ENOMEM) {
      errmsg_set(errmsg, "client: out of memory");
    }
    client_net_stop(net);
    return rv;
  }
  *out = net;
  return 0;
}

static void net_handle_close_cb(uv_handle_t *h) {
  net_handle_closed(h->data);
}

void client_net_stop(struct client_net *net) {
  if (net == NULL || net->stopping) {
    return;
  }
  net->stopping = true;
  for (uint32_t i = 0; net->slots != NULL && i < net->opts.conns_max; i++) {
    if (net->slots[i] != NULL) {
      stream_close(&net->slots[i]->s, "server stopping", false);
    }
  }
  uv_close((uv_handle_t *)&net->flush, net_handle_close_cb);
  if (net->listener_open) {
    uv_close((uv_handle_t *)&net->listener, net_handle_close_cb);
  }
}

const char *client_net_listen_address(const struct client_net *net) {
  return net->listen_address;
}

void client_net_stats(const struct client_net *net,
                      struct client_net_stats *out) {
  *out = net->stats;
  out->queued_bytes = 0;
  for (const struct client_conn *c = net->open; c != NULL; c = c->next) {
    out->queued_bytes += stream_queued_bytes(&c->s);
  }
}
