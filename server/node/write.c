/* Writes from inside the process (node_write: the HTTP API's publish, and
 * next its keys): the leader proposes them as it proposes a client's
 * request and answers through a callback; a follower forwards them to the
 * leader over the peer link (ForwardRequest) and answers when the
 * leader's ForwardReply arrives, or after a bounded wait. The leader
 * checks a forwarded request as it checks a client's (size, decoding,
 * kind), since the follower's word is not proof of either. Here too is
 * the one place that answers whoever waits on a proposal (struct origin),
 * whether a client connection, a caller on this replica or a follower. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "log.h"
#include "node_int.h"
#include "synod.h"

/* node_write()s in flight on one replica: past this, SYNOD_EBUSY. */
#define WRITES_MAX 16384
/* Expired or failed writes are collected this many at a time (the map
 * cannot change while it is walked). */
#define WRITES_SWEEP 256

void writes_init(struct node *n) {
  u64map_init(&n->writes);
  n->write_ctx_next = 0;
}

static uint32_t writes_frame_max(const struct node *n) {
  return n->opts.frame_max_bytes ? n->opts.frame_max_bytes
                                 : FRAME_MAX_BYTES_DEFAULT;
}

/* Whether a request of `len` packed bytes may be proposed for someone
 * other than a client connection: a write the state machine applies,
 * that never waits (a queued LockAcquire is answered later, to a
 * connection), within the client frame maximum. Returns 0, or a code
 * with msg (SYNOD_ERRMSG_MAX bytes). */
static int writes_check(const struct node *n, const Synod__Request *req,
                        size_t len, char *msg) {
  if (len > writes_frame_max(n)) {
    errmsg_set(msg,
               "write of %zu bytes is over the request maximum of %" PRIu32
               " bytes",
               len, writes_frame_max(n));
    return SYNOD_ETOOBIG;
  }
  if (!fsm_request_is_write(req)) {
    errmsg_set(msg, "request body %d is not a write", (int)req->body_case);
    return SYNOD_EINVAL;
  }
  if (req->body_case == SYNOD__REQUEST__BODY_LOCK_ACQUIRE) {
    errmsg_set(msg, "a lock acquire may wait in its queue: only a client "
                    "connection can wait for it");
    return SYNOD_EINVAL;
  }
  return 0;
}

/* ------------------------------------------------------------ answering */

static void writes_reply_peer(struct node *n, const struct origin *from,
                              int code, const char *msg, const uint8_t *resp,
                              size_t len) {
  Synod__Peer__PeerMessage pb = SYNOD__PEER__PEER_MESSAGE__INIT;
  Synod__Peer__ForwardReply r = SYNOD__PEER__FORWARD_REPLY__INIT;
  r.ctx = from->peer_ctx;
  r.error = (uint32_t)code;
  r.message = (char *)(msg != NULL ? msg : "");
  r.response.data = (uint8_t *)resp;
  r.response.len = code == 0 ? len : 0;
  pb.body_case = SYNOD__PEER__PEER_MESSAGE__BODY_FORWARD_REPLY;
  pb.forward_reply = &r;
  if (peer_net_send_pb(n->peer_net, from->peer, &pb) != 0) {
    log_warn("write", "answer to %s's forwarded write: no link; it times out",
             node_member_name(n, from->peer));
  }
}

/* Takes the write `ctx` out of node.writes and answers it. */
static void writes_done(struct node *n, uint64_t ctx, int code, const char *msg,
                        const uint8_t *resp, size_t len) {
  struct write *w = u64map_del(&n->writes, ctx);
  if (w == NULL) {
    return; /* timed out before: its caller was answered */
  }
  w->cb(w->arg, code, code != 0 ? msg : NULL, code == 0 ? resp : NULL,
        code == 0 ? len : 0);
  free(w);
}

void writes_answer(struct node *n, const struct origin *from, int code,
                   const char *msg, const uint8_t *resp, size_t len) {
  if (from->conn_id != 0 && code != 0) {
    client_net_send_error(n->client_net, from->conn_id, from->request_id, code,
                          "%s", msg);
  } else if (from->conn_id != 0) {
    requests_send_packed(n, from->conn_id, from->request_id, resp, len);
  } else if (from->write_ctx != 0) {
    writes_done(n, from->write_ctx, code, msg, resp, len);
  } else if (from->peer != 0) {
    writes_reply_peer(n, from, code, msg, resp, len);
  }
}

/* ------------------------------------------------------------- writing */

static void node_write_fail(node_write_cb cb, void *arg, int code,
                            const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void node_write_fail(node_write_cb cb, void *arg, int code,
                            const char *fmt, ...) {
  char msg[SYNOD_ERRMSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  cb(arg, code, msg, NULL, 0);
}

/* Sends the request to the leader; w->asked says which. */
static int writes_forward(struct node *n, struct write *w,
                          const Synod__Request *req, size_t len) {
  uint8_t *buf = malloc(len ? len : 1);
  if (buf == NULL) {
    return SYNOD_ENOMEM;
  }
  synod__request__pack(req, buf);
  Synod__Peer__PeerMessage pb = SYNOD__PEER__PEER_MESSAGE__INIT;
  Synod__Peer__ForwardRequest f = SYNOD__PEER__FORWARD_REQUEST__INIT;
  f.ctx = w->ctx;
  f.request.data = buf;
  f.request.len = len;
  pb.body_case = SYNOD__PEER__PEER_MESSAGE__BODY_FORWARD_REQUEST;
  pb.forward_request = &f;
  int rv = n->leader == 0 || n->shutting_down
               ? SYNOD_ENOLEADER
               : peer_net_send_pb(n->peer_net, n->leader, &pb);
  free(buf);
  if (rv != 0) {
    /* No link to the leader, or (with a client frame maximum configured
     * above the peer one) too big for a peer frame. */
    return rv == SYNOD_ETOOBIG ? rv : SYNOD_ENOLEADER;
  }
  w->asked = n->leader;
  return 0;
}

void node_write(struct node *n, const Synod__Request *req, uint32_t timeout_ms,
                node_write_cb cb, void *arg) {
  char msg[SYNOD_ERRMSG_MAX];
  size_t len = synod__request__get_packed_size(req);
  int rv = writes_check(n, req, len, msg);
  if (rv != 0) {
    cb(arg, rv, msg, NULL, 0);
    return;
  }
  if (n->writes.len >= WRITES_MAX) {
    node_write_fail(cb, arg, SYNOD_EBUSY,
                    "%s has %d writes in flight; retry later", n->name,
                    WRITES_MAX);
    return;
  }
  struct write *w = calloc(1, sizeof *w);
  if (w == NULL) {
    node_write_fail(cb, arg, SYNOD_ENOMEM, "write on %s: out of memory",
                    n->name);
    return;
  }
  *w = (struct write){++n->write_ctx_next, cb, arg, node_now_ms(n) + timeout_ms,
                      0};
  msg[0] = '\0';
  if (u64map_put(&n->writes, w->ctx, w) != 0) {
    rv = SYNOD_ENOMEM;
  } else if (n->role == CORE_LEADER && !n->shutting_down) {
    struct origin from = {.write_ctx = w->ctx};
    rv = requests_propose_from(n, &from, req, msg);
  } else {
    rv = writes_forward(n, w, req, len);
  }
  if (rv != 0) {
    u64map_del(&n->writes, w->ctx);
    free(w);
    if (rv == SYNOD_ENOLEADER) {
      node_write_fail(
          cb, arg, rv,
          "%s knows no leader to forward the write to (term %" PRIu64
          "); it was not applied: retry",
          n->name, n->term);
    } else if (msg[0] != '\0') {
      node_write_fail(cb, arg, rv, "write on %s: %s", n->name, msg);
    } else {
      node_write_fail(cb, arg, rv, "write on %s: %s", n->name,
                      synod_strerror(rv));
    }
  }
}

/* ------------------------------------------------------- forwarded ones */

void writes_on_forward(struct node *n, uint64_t from,
                       const Synod__Peer__ForwardRequest *f) {
  struct origin o = {.peer = from, .peer_ctx = f->ctx};
  char msg[SYNOD_ERRMSG_MAX];
  int rv = 0;
  Synod__Request *req = NULL;
  if (n->role != CORE_LEADER || n->shutting_down) {
    errmsg_set(msg, "%s is not the leader; the write was not proposed",
               n->name);
    rv = SYNOD_ENOTLEADER;
  } else if (f->request.len > writes_frame_max(n)) {
    errmsg_set(msg,
               "a forwarded request of %zu bytes is over the request "
               "maximum of %" PRIu32 " bytes",
               f->request.len, writes_frame_max(n));
    rv = SYNOD_ETOOBIG;
  } else if ((req = synod__request__unpack(NULL, f->request.len,
                                           f->request.data)) == NULL) {
    errmsg_set(msg, "a forwarded request of %zu bytes does not decode",
               f->request.len);
    rv = SYNOD_EMALFORMED;
  } else {
    rv = writes_check(n, req, f->request.len, msg);
  }
  if (rv == 0 && req->body_case == SYNOD__REQUEST__BODY_SESSION_KEEPALIVE) {
    /* A client's, forwarded (Request.forward): renewed with the others in
     * this leader's next Tick, as if the client were connected here. */
    requests_keepalive_from(n, &o, req->session_id);
  } else if (rv == 0) {
    rv = requests_propose_from(n, &o, req, msg);
  }
  if (req != NULL) {
    synod__request__free_unpacked(req, NULL);
  }
  if (rv != 0) {
    log_debug("write", "forwarded write from %s refused: %s",
              node_member_name(n, from), msg);
    writes_reply_peer(n, &o, rv, msg, NULL, 0);
  }
}

void writes_on_forward_reply(struct node *n, uint64_t from,
                             const Synod__Peer__ForwardReply *r) {
  struct write *w = u64map_get(&n->writes, r->ctx);
  if (w == NULL || w->asked != from) {
    return; /* timed out, or failed when the leader changed */
  }
  int code = (int)r->error;
  writes_done(n, r->ctx, code, r->message, r->response.data, r->response.len);
}

/* ---------------------------------------------------------- expiring */

struct writes_sweep {
  struct node *n;
  bool (*pick)(const struct node *n, const struct write *w, uint64_t peer);
  uint64_t peer;
  uint64_t ctx[WRITES_SWEEP];
  size_t k;
};

static void writes_sweep_cb(void *arg, uint64_t key, void *value) {
  struct writes_sweep *s = arg;
  if (s->k < WRITES_SWEEP && s->pick(s->n, value, s->peer)) {
    s->ctx[s->k++] = key;
  }
}

/* Fails every write `pick` picks (given `peer`) with code and msg. */
static void writes_fail_if(struct node *n,
                           bool (*pick)(const struct node *n,
                                        const struct write *w, uint64_t peer),
                           uint64_t peer, int code, const char *msg) {
  struct writes_sweep s = {.n = n, .pick = pick, .peer = peer};
  do {
    s.k = 0;
    u64map_each(&n->writes, writes_sweep_cb, &s);
    for (size_t i = 0; i < s.k; i++) {
      writes_done(n, s.ctx[i], code, msg, NULL, 0);
    }
  } while (s.k == WRITES_SWEEP);
}

static bool write_expired(const struct node *n, const struct write *w,
                          uint64_t peer) {
  (void)peer;
  return w->deadline_ms <= node_now_ms(n);
}

void writes_expire(struct node *n) {
  if (n->writes.len == 0) {
    return;
  }
  char msg[SYNOD_ERRMSG_MAX];
  snprintf(msg, sizeof msg,
           "no answer in time on %s: the write may or may not have been "
           "applied (outcome unknown)",
           n->name);
  writes_fail_if(n, write_expired, 0, SYNOD_ETIMEDOUT, msg);
}

static bool write_asked_old_leader(const struct node *n, const struct write *w,
                                   uint64_t peer) {
  (void)peer;
  return w->asked != 0 && w->asked != n->leader;
}

void writes_forward_fail(struct node *n) {
  if (n->writes.len == 0) {
    return;
  }
  char msg[SYNOD_ERRMSG_MAX];
  snprintf(msg, sizeof msg,
           "the leader changed before it answered %s's forwarded write: it "
           "may or may not have been applied (outcome unknown)",
           n->name);
  writes_fail_if(n, write_asked_old_leader, 0, SYNOD_ENOTLEADER, msg);
}

static bool write_asked_peer(const struct node *n, const struct write *w,
                             uint64_t peer) {
  (void)n;
  return w->asked != 0 && w->asked == peer;
}

void writes_peer_lost(struct node *n, uint64_t peer) {
  if (n->writes.len == 0) {
    return;
  }
  char msg[SYNOD_ERRMSG_MAX];
  snprintf(msg, sizeof msg,
           "the link from %s to the leader went down before it answered a "
           "forwarded write: it may or may not have been applied (outcome "
           "unknown)",
           n->name);
  writes_fail_if(n, write_asked_peer, peer, SYNOD_ENOTLEADER, msg);
}

static bool write_any(const struct node *n, const struct write *w,
                      uint64_t peer) {
  (void)n;
  (void)w;
  (void)peer;
  return true;
}

void writes_fail_all(struct node *n, int code) {
  char msg[SYNOD_ERRMSG_MAX];
  snprintf(msg, sizeof msg,
           "%s is stopping: the write may or may not have been applied "
           "(outcome unknown)",
           n->name);
  writes_fail_if(n, write_any, 0, code, msg);
}

void writes_close(struct node *n) {
  writes_fail_all(n, SYNOD_ESHUTDOWN);
  u64map_close(&n->writes);
}
