/* Client listener: accepts libsynod and synodctl connections, checks the
 * handshake, decodes Request frames and hands them to the node; sends
 * responses and events back, coalesced per loop turn.
 *
 * A connection is named by a conn_id that is never reused, so a response
 * that arrives after its connection closed finds nothing and is dropped.
 * The sending functions accept a NULL net (stopped) and send nothing.
 *
 * Bad input (a frame that does not decode, one over the maximum, a first
 * request that is not a Hello, a protocol version we do not speak) is
 * answered with an Error, logged with the remote address, and the
 * connection is closed after the answer is written. */
#ifndef SYNOD_CLIENT_H
#define SYNOD_CLIENT_H

#include <stdarg.h>
#include <stdint.h>

#include <uv.h>

#include "synod.pb-c.h"

struct client_net;

/* A request from conn_id. `req` is borrowed until the callback returns. A
 * Hello reaches here only with the right protocol version; the node
 * answers it with a HelloReply. */
typedef void (*client_net_request_cb)(void *arg, uint64_t conn_id,
                                      const Synod__Request *req);

/* conn_id is gone (closed by the client, by an error or by us). */
typedef void (*client_net_close_cb)(void *arg, uint64_t conn_id);

/* A Response to a request of this connection was queued: the request's
 * body case (Synod__Request__BodyCase), the answer's error code (0 on
 * success) and the time from the request's arrival (its frame decoded) to
 * the answer, in microseconds. For metrics; requests with id 0, and
 * requests whose connection closed before an answer, are not reported. */
typedef void (*client_net_answer_cb)(void *arg, uint32_t body_case, int code,
                                     uint64_t duration_us);

/* conn_id's queue went below the mark client_net_want_drain set. */
typedef void (*client_net_drain_cb)(void *arg, uint64_t conn_id);

struct client_net_options {
  uv_loop_t *loop;
  const char *listen_address; /* "ip:port"; port 0 picks one */
  uint32_t frame_max_bytes;   /* default 1 MiB */
  /* A client that does not read its answers: past this many queued bytes
   * it is disconnected. Default 64 MiB. */
  uint64_t out_bytes_max;
  uint32_t conns_max; /* default 4096; more are refused */
  client_net_request_cb request_cb;
  client_net_close_cb close_cb;
  client_net_answer_cb answer_cb; /* optional */
  client_net_drain_cb drain_cb;   /* optional */
  void *arg;
};

/* Binds and listens. Returns 0, SYNOD_EINVAL (bad address) or SYNOD_EIO
 * (bind/listen failed); errmsg (SYNOD_ERRMSG_MAX bytes) says why. */
int client_net_start(const struct client_net_options *opts,
                     struct client_net **out, char *errmsg);

/* Writes what is queued for every connection now, as the loop does once
 * a turn (before it polls): for a caller about to block the loop. */
void client_net_flush(struct client_net *net);

/* Closes every connection and the listener; the memory is freed once
 * libuv has closed the handles (run the loop until it is idle). */
void client_net_stop(struct client_net *net);

const char *client_net_listen_address(const struct client_net *net);

/* Queues a message to conn_id. Returns 0, SYNOD_ENOTFOUND (the connection
 * is gone), SYNOD_ETOOBIG (over the frame maximum: nothing sent) or
 * SYNOD_ENOMEM. A client over out_bytes_max is disconnected. */
int client_net_send(struct client_net *net, uint64_t conn_id,
                    const Synod__ServerMessage *msg);

/* Queues a frame whose payload is an already packed ServerMessage. Same
 * returns as client_net_send. */
int client_net_send_bytes(struct client_net *net, uint64_t conn_id,
                          const uint8_t *payload, size_t n);

/* Queues msg to every connection past its handshake. */
void client_net_broadcast(struct client_net *net,
                          const Synod__ServerMessage *msg);

/* Queues a Response to request_id carrying an error. */
int client_net_send_error(struct client_net *net, uint64_t conn_id,
                          uint64_t request_id, int code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* The client's "ip:port", for logs; "?" if the connection is gone. */
const char *client_net_remote(const struct client_net *net, uint64_t conn_id);

/* Bytes queued to conn_id and not yet taken by the socket; SIZE_MAX if
 * the connection is gone. */
size_t client_net_queued_bytes(const struct client_net *net, uint64_t conn_id);

/* Asks for one drain_cb once fewer than `below` bytes are queued to
 * conn_id (checked after each write completes and each loop turn's
 * flush). For senders that stop at a bound and go on when there is room.
 * Nothing happens if the connection is gone. */
void client_net_want_drain(struct client_net *net, uint64_t conn_id,
                           size_t below);

/* Closes conn_id after what is queued has been written. */
void client_net_close(struct client_net *net, uint64_t conn_id,
                      const char *why);

struct client_net_stats {
  uint64_t conns;    /* open now */
  uint64_t accepted; /* ever */
  uint64_t requests;
  uint64_t refused; /* closed for bad input */
  /* Bytes queued to every connection and not yet taken by the sockets
   * (a walk over the open connections). */
  uint64_t queued_bytes;
};
void client_net_stats(const struct client_net *net,
                      struct client_net_stats *out);

#endif /* SYNOD_CLIENT_H */
