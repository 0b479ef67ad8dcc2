/* A replica's HTTP endpoints, on its own loop: probes (/healthz,
 * /readyz), the leader-elector shape (/leader/NAME), the JSON status
 * (/v1/status, /v1/elections/NAME), Prometheus (/metrics), the status
 * page (/), channels (/v1/channels: publish, info, list, and
 * subscriptions as Server-Sent Events), keys (/v1/keys, /v1/txn) and
 * sessions (/v1/sessions). Reads go through node_read, so
 * they are linearizable by default on any replica; writes through
 * node_write, so any replica accepts them. */
#ifndef SYNOD_HTTP_API_H
#define SYNOD_HTTP_API_H

#include <uv.h>

#include "node.h"

struct http_api;

/* Starts serving `node` on listen_address ("ip:port"). Returns 0, or a
 * SYNOD_E* code with errmsg (SYNOD_ERRMSG_MAX bytes) naming the address. */
int http_api_start(uv_loop_t *loop, struct node *node,
                   const char *listen_address, struct http_api **out,
                   char *errmsg);

/* Stops serving: event streams end, reads and writes still in flight are
 * answered into nothing. Must be called before the node is freed.
 * Accepts NULL. */
void http_api_stop(struct http_api *api);

const char *http_api_listen_address(const struct http_api *api);

#endif /* SYNOD_HTTP_API_H */
