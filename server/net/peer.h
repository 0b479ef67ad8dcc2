/* Peer links: one TCP connection per pair of replicas, dialled with
 * backoff, opened by a handshake (PeerHello), carrying length-prefixed
 * PeerMessage frames. Everything sent during one loop turn to a peer leaves
 * in one write (bundling). A slow peer never blocks the loop: past
 * out_bytes_max its messages are dropped, which Raft tolerates (it
 * retransmits), and counted.
 *
 * Identity: a replica is known by its core id, learnt from its PeerHello.
 * We dial addresses; accepted connections introduce themselves. When both
 * sides dial each other at once, the connection dialled by the lower id
 * wins and the other is closed, so a pair ends up with one connection. */
#ifndef SYNOD_PEER_H
#define SYNOD_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core.h"
#include "peer.pb-c.h"
#include "stream.h"

#define PEER_INCARNATION_BYTES 16
#define PEER_NAME_MAX 64
#define PEER_ADDRESS_MAX 128

struct peer_net;

/* Called for each core message from a peer whose handshake completed.
 * `m` and everything it points to are borrowed until the callback returns.
 * m->from is the link's verified id (a frame claiming another sender is
 * dropped before it gets here). */
typedef void (*peer_net_recv_cb)(void *arg, const struct core_msg *m);

/* Called for link-level messages other than the handshake (join, leave,
 * membership reply); `pb` is borrowed until the callback returns. */
typedef void (*peer_net_link_cb)(void *arg, uint64_t from,
                                 const Synod__Peer__PeerMessage *pb);

/* Called when a link to `id` comes up (after the handshake) or goes down.
 * `hello` is the peer's handshake on up, NULL on down. */
typedef void (*peer_net_state_cb)(void *arg, uint64_t id, bool up,
                                  const Synod__Peer__PeerHello *hello);

/* Replica `id`'s process is gone: its link is down and its port refused a
 * new connection (its kernel answers with a reset: the process is not
 * listening). A partition never looks like this; a process restarting
 * does, until it listens again. */
typedef void (*peer_net_gone_cb)(void *arg, uint64_t id);

/* Fills the fields of our handshake that change over time (log_last_index,
 * term) just before it is sent. */
typedef void (*peer_net_hello_cb)(void *arg, Synod__Peer__PeerHello *hello);

/* The id a replica of this name and incarnation must have. */
typedef uint64_t (*peer_net_id_fn)(const char *name,
                                   const uint8_t *incarnation);

struct peer_net_options {
  uv_loop_t *loop;
  uint64_t id; /* ours, non-zero */
  const char *name;
  const char *cluster_id;
  uint8_t incarnation[PEER_INCARNATION_BYTES];
  const char *listen_address;    /* "host:port"; port 0 picks one */
  const char *advertise_address; /* what peers should dial; default listen */
  const char *client_address;    /* our client port, told to peers */
  uint32_t frame_max_bytes;      /* default 16 MiB (appends, chunks) */
  uint64_t out_bytes_max;        /* per link; default 64 MiB */
  uint32_t backoff_min_ms;       /* default 50 */
  uint32_t backoff_max_ms;       /* default 2000 */
  peer_net_recv_cb recv_cb;
  peer_net_link_cb link_cb;
  peer_net_state_cb state_cb;
  peer_net_hello_cb hello_cb; /* optional */
  /* Optional. To notice a death quickly, a link that goes down is
   * redialled at once. */
  peer_net_gone_cb gone_cb;
  /* Optional: a handshake whose id is not id_of(name, incarnation) is
   * refused (a replica claiming another's name). */
  peer_net_id_fn id_of;
  void *arg;
};

/* Binds the peer port and starts accepting. Returns 0, or SYNOD_EINVAL
 * (bad address) or SYNOD_EIO (bind/listen failed: the port is taken);
 * errmsg (SYNOD_ERRMSG_MAX bytes) says which address and why. On success
 * *out is the running net; stop it with peer_net_stop. */
int peer_net_start(const struct peer_net_options *opts, struct peer_net **out,
                   char *errmsg);

/* Closes every connection and the listener; frees the net once libuv has
 * closed its handles (run the loop until it has no more work). */
void peer_net_stop(struct peer_net *net);

/* The address the listener is bound to ("127.0.0.1:41234"). */
const char *peer_net_listen_address(const struct peer_net *net);

/* Keeps a connection to `address` open, redialling with backoff while it is
 * down. `name`, if not NULL, is the replica expected there: one that says
 * another name in its handshake is refused. Adding an address twice is a
 * no-op (the first call's name stays). Returns 0, SYNOD_EINVAL for a
 * malformed address or name, SYNOD_ENOMEM. */
int peer_net_dial(struct peer_net *net, const char *address, const char *name);

/* Stops dialling `address` and closes its connection, if any. */
void peer_net_undial(struct peer_net *net, const char *address);

/* Sending and peer_net_is_up accept a NULL net (stopped): nothing is sent.
 *
 * Queues a core message to m->to. Returns 0 (queued, or dropped because no
 * link to m->to is up or its queue is full: Raft retransmits), or
 * SYNOD_ETOOBIG if the message can never fit in a frame. */
int peer_net_send(struct peer_net *net, const struct core_msg *m);

/* Writes what was queued now rather than at the end of the loop turn
 * (which it does by itself): for a caller about to do something slow. */
void peer_net_flush(struct peer_net *net);

/* Queues a link-level message to `to` (body must be set; from/to/term are
 * filled in). Returns 0, SYNOD_ENOTFOUND if no link to `to` is up. */
int peer_net_send_pb(struct peer_net *net, uint64_t to,
                     Synod__Peer__PeerMessage *pb);

/* Is a link to `id` up? */
bool peer_net_is_up(const struct peer_net *net, uint64_t id);

/* One link's traffic since start, whatever connection carried it. */
struct peer_link_stats {
  bool up;
  uint64_t bytes_in;     /* frames received, headers included */
  uint64_t bytes_out;    /* frames queued to send, headers included */
  uint64_t last_recv_ms; /* loop time (uv_now) of its last frame; 0: none */
};

/* Fills *out for the link to `id`. Returns false (and *out is zero) if no
 * link to `id` ever completed a handshake, or net is NULL. */
bool peer_net_link_stats(const struct peer_net *net, uint64_t id,
                         struct peer_link_stats *out);

struct peer_net_stats {
  uint64_t frames_out;
  uint64_t frames_in;
  uint64_t writes;  /* uv_write calls: frames_out / writes = bundling */
  uint64_t dropped; /* messages dropped: no link, or queue full */
  uint64_t refused; /* connections closed for bad input or identity */
  uint64_t conns;   /* TCP connections open now, any state */
};
void peer_net_stats(const struct peer_net *net, struct peer_net_stats *out);

/* Parses "host:port" into host (PEER_ADDRESS_MAX) and port. Returns 0 or
 * SYNOD_EINVAL. "[::1]:7701" is accepted for IPv6. */
static inline int peer_address_parse(const char *address, char *host,
                                     uint16_t *port) {
  return stream_address_parse(address, host, port);
}

#endif /* SYNOD_PEER_H */
