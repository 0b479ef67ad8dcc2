/* A replica: the Raft core, the state machine and the store, wired to the
 * peer links and the client listener on one libuv loop. main.c builds the
 * options and starts one; everything else happens in here. */
#ifndef SYNOD_NODE_H
#define SYNOD_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define NODE_NAME_MAX 64
#define NODE_ADDRESS_MAX 128

/* A replica of the declared cluster: its name and peer address. */
struct node_peer {
  char name[NODE_NAME_MAX];
  char address[NODE_ADDRESS_MAX];
};

/* Zero in a numeric field means its default. Strings are copied. */
struct node_options {
  const char *name;              /* this replica, e.g. "synod-0" */
  const char *data_dir;          /* LMDB environment; created if missing */
  const char *cluster_id;        /* default "synod"; peers must agree */
  const char *client_address;    /* listen, ip:port */
  const char *peer_address;      /* listen, ip:port */
  const char *advertise_client;  /* told to peers/clients; default listen */
  const char *advertise_peer;    /* default listen */
  const struct node_peer *peers; /* the declared replicas, self included */
  size_t peers_n;
  /* Without a static list: the StatefulSet's initial size N. The declared
   * replicas are then PREFIX-0..PREFIX-(N-1), PREFIX being this replica's
   * name without its "-<ordinal>"; PREFIX-0 founds the cluster. Their
   * addresses come from discovery (node_discovered). */
  uint32_t initial_size;
  uint32_t tick_ms;          /* [50] */
  uint32_t election_ticks;   /* [10]: elections after 0.5 to 1 s */
  uint32_t frame_max_bytes;  /* client frames [1 MiB] */
  uint64_t snapshot_entries; /* snapshot after this many entries [8192] */
  uint64_t snapshot_bytes;   /* or after this many entry bytes [64 MiB] */
  size_t map_size_max_bytes; /* LMDB map ceiling [64 GiB] */
};

struct node;

/* Opens the store, restores the state machine from the latest snapshot
 * and log, and starts listening on both ports. Returns 0, or a SYNOD_E*
 * code with errmsg (SYNOD_ERRMSG_MAX bytes) saying what failed with which
 * value (a taken port, a store that does not open, a bad option). */
int node_start(uv_loop_t *loop, const struct node_options *opts,
               struct node **out, char *errmsg);

/* Candidates found by discovery (DNS, the Kubernetes API): replicas to
 * connect to. New addresses are dialled; one that disappears is no longer
 * dialled, but a member is never removed because discovery lost it. */
void node_discovered(struct node *n, const struct node_peer *peers,
                     size_t peers_n);

/* Graceful stop (SIGTERM): refuse new client requests, hand leadership to
 * a caught-up voter if we lead, then close everything. `cb` runs once the
 * node has let go of the loop's handles; then free it with node_free. */
typedef void (*node_shutdown_cb)(struct node *n, void *arg);
void node_shutdown(struct node *n, node_shutdown_cb cb, void *arg);

/* Renders the replica's metrics in the Prometheus text exposition format
 * (0.0.4): every family under `synod_` with HELP and TYPE, base units in
 * the names (README.md lists them). Cheap enough for any scrape rate: it
 * reads kept counts and never walks the locks, counters or sessions. Call
 * it on the node's loop thread. On success *text is a malloc'ed buffer of
 * *len bytes (NUL-terminated, not counted) that the caller frees; returns
 * 0, or SYNOD_ENOMEM (nothing to free). */
int node_metrics_text(struct node *n, char **text, size_t *len);

/* Frees a node after its shutdown callback ran (or after node_start
 * failed: then *out was never set). Never fails. */
void node_free(struct node *n);

#endif /* SYNOD_NODE_H */
