/* The node's side of the subscription engine (subs.h): the host it runs
 * on (the loop's clock, the leader this replica knows, node_read's
 * barrier, client_net's connections) and the in-process API of node.h
 * (node_subscribe and the rest), which the HTTP API streams through. */
#include <assert.h>

#include "node_int.h"

static uint64_t host_now_ms(void *arg) {
  return node_now_ms(arg);
}

/* How long this replica has known no leader, or not heard from the one
 * it names (in ticks: the leader sends every tick): a follower that does
 * not campaign (a learner, or one with a long election timeout) keeps
 * naming a leader it no longer hears from, so its subscriptions would
 * wait forever on a state that no longer moves. */
static uint64_t host_leaderless_ms(void *arg) {
  struct node *n = arg;
  if (n->leader == 0) {
    return node_now_ms(n) - n->leaderless_since_ms;
  }
  return n->leader != n->id
             ? (uint64_t)n->leader_unheard_ticks * n->opts.tick_ms
             : 0;
}

static void host_read_index(void *arg, uint32_t timeout_ms, subs_read_cb cb,
                            void *cb_arg) {
  node_read(arg, NULL, false, timeout_ms, cb, cb_arg);
}

static int host_send(void *arg, uint64_t conn_id,
                     const Synod__ServerMessage *sm) {
  struct node *n = arg;
  return client_net_send(n->client_net, conn_id, sm);
}

static void host_send_error(void *arg, uint64_t conn_id, uint64_t request_id,
                            int code, uint64_t first_available,
                            const char *msg) {
  requests_send_error_first(arg, conn_id, request_id, code, first_available,
                            msg);
}

static void host_send_ok(void *arg, uint64_t conn_id, uint64_t request_id) {
  requests_send_ok(arg, conn_id, request_id);
}

static size_t host_queued_bytes(void *arg, uint64_t conn_id) {
  struct node *n = arg;
  return client_net_queued_bytes(n->client_net, conn_id);
}

static void host_want_drain(void *arg, uint64_t conn_id, size_t below) {
  struct node *n = arg;
  client_net_want_drain(n->client_net, conn_id, below);
}

static const char *host_remote(void *arg, uint64_t conn_id) {
  struct node *n = arg;
  return client_net_remote(n->client_net, conn_id);
}

int node_subs_init(struct node *n) {
  struct subs_host host = {
      .arg = n,
      .now_ms = host_now_ms,
      .leaderless_ms = host_leaderless_ms,
      .read_index = host_read_index,
      .send = host_send,
      .send_error = host_send_error,
      .send_ok = host_send_ok,
      .queued_bytes = host_queued_bytes,
      .want_drain = host_want_drain,
      .remote = host_remote,
  };
  return subs_init(&n->subs, &host, n->name);
}

void node_subs_on_drain(void *arg, uint64_t conn_id) {
  struct node *n = arg;
  subs_on_drain(&n->subs, conn_id);
}

int node_subscribe(struct node *n, const Synod__ChannelSubscribe *q,
                   const struct node_sub_sink *sink, void *arg,
                   uint64_t *handle, char *errmsg) {
  Synod__Request req = SYNOD__REQUEST__INIT;
  req.body_case = SYNOD__REQUEST__BODY_CHANNEL_SUBSCRIBE;
  req.channel_subscribe = (Synod__ChannelSubscribe *)q;
  return subs_sub_request(&n->subs, &req, sink, arg, handle, errmsg);
}

int node_key_watch(struct node *n, const Synod__KeyWatch *q,
                   const struct node_sub_sink *sink, void *arg,
                   uint64_t *handle, char *errmsg) {
  Synod__Request req = SYNOD__REQUEST__INIT;
  assert(sink->key_started != NULL && sink->key_deliver != NULL);
  req.body_case = SYNOD__REQUEST__BODY_KEY_WATCH;
  req.key_watch = (Synod__KeyWatch *)q;
  return subs_sub_request(&n->subs, &req, sink, arg, handle, errmsg);
}

int node_group_subscribe(struct node *n, const Synod__GroupSubscribe *q,
                         const struct node_sub_sink *sink, void *arg,
                         uint64_t *handle, char *errmsg) {
  Synod__Request req = SYNOD__REQUEST__INIT;
  assert(sink->group_started != NULL && sink->group_deliver != NULL);
  req.body_case = SYNOD__REQUEST__BODY_GROUP_SUBSCRIBE;
  req.group_subscribe = (Synod__GroupSubscribe *)q;
  return subs_sub_request(&n->subs, &req, sink, arg, handle, errmsg);
}

void node_sub_drained(struct node *n, uint64_t handle) {
  subs_drained(&n->subs, handle);
}

void node_unsubscribe(struct node *n, uint64_t handle) {
  subs_cancel(&n->subs, handle);
}

uint64_t node_channel_subscribers(struct node *n, const char *name) {
  return subs_count(&n->subs, name);
}
