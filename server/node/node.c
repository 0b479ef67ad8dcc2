/* A replica: start-up from the store, the core's updates, timers, peers,
 * and a graceful stop. */
#include <execinfo.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "log.h"
#include "node_int.h"
#include "synod.h"

#define NODE_TICK_MS_DEFAULT 50
#define NODE_ELECTION_TICKS_DEFAULT 10
#define NODE_RESTORE_READ_BYTES (16u << 20)

uint64_t node_now_ms(const struct node *n) {
  (void)n;
  return uv_hrtime() / 1000000u;
}

void node_die(void) {
  _exit(1);
}

uint64_t node_unix_ms(void) {
  uv_timeval64_t tv;
  return uv_gettimeofday(&tv) == 0
             ? (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000
             : 0;
}

/* -------------------------------------------------------------- members */

struct member *node_member(struct node *n, uint64_t id) {
  for (uint32_t i = 0; i < n->members_n; i++) {
    if (n->members[i].id == id) {
      return &n->members[i];
    }
  }
  return NULL;
}

/* Names come from the handshake of a connected peer, else from the
 * replicated directory (valid until the next apply). */
const char *node_member_name(struct node *n, uint64_t id) {
  struct fsm_member_info info;
  if (id == n->id) {
    return n->name;
  }
  const struct member *m = node_member(n, id);
  if (m != NULL) {
    return m->name;
  }
  return fsm_member_get(n->fsm, id, &info) ? info.name : "unknown";
}

const char *node_leader_client_address(struct node *n) {
  if (n->leader == 0) {
    return "";
  }
  if (n->leader == n->id) {
    return n->advertise_client;
  }
  const struct member *m = node_member(n, n->leader);
  struct fsm_member_info info;
  if (m != NULL) {
    return m->client_address;
  }
  return fsm_member_get(n->fsm, n->leader, &info) ? info.client_address : "";
}

static void node_member_update(struct node *n,
                               const Synod__Peer__PeerHello *h) {
  struct member *m = node_member(n, h->id);
  if (m == NULL) {
    if (n->members_n == NODE_MEMBERS_MAX) {
      log_warn("node", "member table full: ignoring %s (%llu)", h->name,
               (unsigned long long)h->id);
      return;
    }
    m = &n->members[n->members_n++];
    m->id = h->id;
  }
  snprintf(m->name, sizeof m->name, "%s", h->name);
  snprintf(m->peer_address, sizeof m->peer_address, "%s", h->peer_address);
  snprintf(m->client_address, sizeof m->client_address, "%s",
           h->client_address);
  m->log_last_index = h->log_last_index;
  m->up = true;
  m->leaving = false;
}

/* The link to peer `id` went down: what this replica forwarded to it and
 * waits for fails now (the client sends it again) instead of after its
 * timeout. */
static void node_peer_lost(struct node *n, uint64_t id) {
  requests_reads_peer_lost(n, id);
  writes_peer_lost(n, id);
}

/* ----------------------------------------------------------- the core */

/* Records a new leader for status, and fails a follower's reads that
 * wait for an index from the one before. */
static void node_leader_changed(struct node *n) {
  struct node_leader_change *c =
      &n->leader_changes[n->leader_changes_n++ % NODE_LEADER_HISTORY_MAX];
  c->term = n->term;
  snprintf(c->leader, sizeof c->leader, "%s",
           n->leader ? node_member_name(n, n->leader) : "");
  c->at_unix_ms = node_unix_ms();
  n->leader_since_unix_ms = n->leader ? c->at_unix_ms : 0;
  n->leaderless_since_ms = n->leader ? 0 : node_now_ms(n);
  n->leader_unheard_ticks = 0; /* it just spoke: that is how we know it */
  requests_reads_forward_fail(n);
  writes_forward_fail(n);
}

static void node_soft_state(struct node *n, const struct core_update *up) {
  bool was_leader = n->role == CORE_LEADER;
  bool leader_changed = n->leader != up->leader;
  if (n->role != up->role || n->term != up->term || leader_changed) {
    log_info("node", "term %llu: %s, leader %s", (unsigned long long)up->term,
             core_role_name(up->role),
             up->leader ? node_member_name(n, up->leader) : "none");
  }
  n->role = up->role;
  n->term = up->term;
  n->leader = up->leader;
  if (was_leader && n->role != CORE_LEADER) {
    apply_fail_pending(n, SYNOD_ENOTLEADER);
    requests_reads_fail(n, SYNOD_ENOTLEADER);
    requests_keepalives_fail(n);
  }
  if (!was_leader && n->role == CORE_LEADER) {
    /* Cluster time continues from what the state machine has seen: a new
     * leader's clock may be ahead or behind the old one's. */
    uint64_t now = node_now_ms(n);
    n->time_offset_ms = (int64_t)fsm_time_ms(n->fsm) - (int64_t)now;
  }
  if (leader_changed) {
    node_leader_changed(n);
    requests_broadcast_leader(n);
  }
}

static void node_handle_update(struct node *n, const struct core_update *up) {
  metrics_update(n, up);
  if (up->proposed_first != 0) {
    n->proposed_first = up->proposed_first;
  }
  if (persist_update(n, up) != 0) {
    log_error("node", "persist: out of memory; stopping the replica");
    node_die();
  }
  if (up->soft_state_changed) {
    node_soft_state(n, up);
  }
  if (up->config_changed) {
    log_info("node", "configuration: %u voters, %u learners%s",
             up->config.voters_n, up->config.learners_n,
             bootstrap_is_member(&up->config, n->id)
                 ? ""
                 : " (this replica is not a member)");
  }
  requests_reads_ready(n, up);
  uint64_t apply_start_us = metrics_now_us();
  apply_update(n, up);
  metrics_applied(n, up, apply_start_us);
}

/* Never from inside node_handle_update (a persist completion, an apply,
 * a subscription's sink): the step would reuse the buffers of the update
 * being handled, under it (e7000b6 fixed one such path; ASan builds
 * check there is no other). */
int node_step(struct node *n, const struct core_event *ev) {
  struct core_update up;
#ifndef NDEBUG
  if (n->in_update) {
    void *frames[32];
    log_error("node", "node_step (event %d) inside an update; the stack:",
              (int)ev->type);
    backtrace_symbols_fd(frames, backtrace(frames, 32), STDERR_FILENO);
    abort();
  }
#endif
  int rv = core_step(n->core, ev, &up);
  if (rv != 0) {
    metrics_refused(n, ev, rv);
    return rv;
  }
  n->in_update = true;
  node_handle_update(n, &up);
  n->in_update = false;
  requests_reads_later(n);
  while (n->unreachable_later_n > 0) {
    struct core_event later = {
        .type = CORE_EVENT_UNREACHABLE,
        .id = n->unreachable_later[--n->unreachable_later_n]};
    node_peer_lost(n, later.id);
    node_step(n, &later);
  }
  return 0;
}

static void node_propose_check_cb(uv_check_t *h) {
  requests_propose_flush(h->data);
  subs_start_queued(&((struct node *)h->data)->subs);
}

static void node_tick_cb(uv_timer_t *t) {
  struct node *n = t->data;
  struct core_event ev = {.type = CORE_EVENT_TICK};
  node_step(n, &ev);
  persist_release(n);
  if (n->role == CORE_LEADER && !n->shutting_down) {
    requests_tick(n);
  }
  requests_reads_expire(n);
  writes_expire(n);
  info_gathers_expire(n, false);
  bootstrap_tick(n);
  n->leader_unheard_ticks++;
  subs_tick(&n->subs);
}

/* ---------------------------------------------------------------- peers */

/* Notes when we last heard from a peer, for status and metrics. */
static void node_member_heard(struct node *n, uint64_t id) {
  struct member *m = node_member(n, id);
  if (m != NULL) {
    m->last_recv_ms = node_now_ms(n);
  }
  if (id == n->leader) {
    n->leader_unheard_ticks = 0;
  }
}

static void node_peer_recv_cb(void *arg, const struct core_msg *m) {
  node_member_heard(arg, m->from);
  struct node *n = arg;
  struct core_event ev = {.type = CORE_EVENT_RECEIVE, .msg = m};
  int rv = node_step(n, &ev);
  if (rv != 0) {
    log_warn("node", "%s from %s (%llu) refused: %s",
             core_msg_type_name(m->type), node_member_name(n, m->from),
             (unsigned long long)m->from, core_errmsg(n->core));
  }
}

static void node_peer_state_cb(void *arg, uint64_t id, bool up,
                               const Synod__Peer__PeerHello *hello) {
  struct node *n = arg;
  if (up) {
    node_member_update(n, hello);
    log_info("node", "peer %s (%llu) up at %s", hello->name,
             (unsigned long long)id, hello->peer_address);
    bootstrap_on_peer_up(n, hello);
    return;
  }
  struct member *m = node_member(n, id);
  if (m != NULL) {
    m->up = false;
  }
  if (!n->in_update) {
    node_peer_lost(n, id);
  }
  if (n->in_update) {
    /* Closed by a write inside the update (persist_start's early flush):
     * the core cannot be stepped under the update it made. */
    for (uint32_t i = 0; i < n->unreachable_later_n; i++) {
      if (n->unreachable_later[i] == id) {
        return;
      }
    }
    if (n->unreachable_later_n < 2 * CORE_MEMBERS_MAX) {
      n->unreachable_later[n->unreachable_later_n++] = id;
    }
    return;
  }
  struct core_event ev = {.type = CORE_EVENT_UNREACHABLE, .id = id};
  node_step(n, &ev);
}

static void node_peer_link_cb(void *arg, uint64_t from,
                              const Synod__Peer__PeerMessage *pb) {
  struct node *n = arg;
  node_member_heard(n, from);
  switch (pb->body_case) {
  case SYNOD__PEER__PEER_MESSAGE__BODY_READ_INDEX:
    requests_read_index_for_peer(n, from, pb->read_index->ctx);
    return;
  case SYNOD__PEER__PEER_MESSAGE__BODY_READ_INDEX_REPLY:
    requests_read_index_reply(n, from, pb->read_index_reply->ctx,
                              pb->read_index_reply->index,
                              pb->read_index_reply->error);
    return;
  case SYNOD__PEER__PEER_MESSAGE__BODY_STATUS_QUERY:
    info_on_status_query(n, from, pb->status_query->ctx);
    return;
  case SYNOD__PEER__PEER_MESSAGE__BODY_STATUS_ANSWER:
    info_on_status_answer(n, from, pb->status_answer);
    return;
  case SYNOD__PEER__PEER_MESSAGE__BODY_FORWARD_REQUEST:
    writes_on_forward(n, from, pb->forward_request);
    return;
  case SYNOD__PEER__PEER_MESSAGE__BODY_FORWARD_REPLY:
    writes_on_forward_reply(n, from, pb->forward_reply);
    return;
  default:
    bootstrap_on_link_msg(n, from, pb);
  }
}

static void node_gone_timer_cb(uv_timer_t *t) {
  struct node *n = t->data;
  uint64_t id = n->gone_id;
  n->gone_id = 0;
  if (id != 0 && id == n->leader && n->role != CORE_LEADER) {
    log_info("node", "leader %s is gone (its port refuses): electing now",
             node_member_name(n, id));
    struct core_event ev = {.type = CORE_EVENT_PEER_GONE, .id = id};
    node_step(n, &ev);
  }
}

static void node_peer_gone_cb(void *arg, uint64_t id) {
  struct node *n = arg;
  if (id != n->leader || n->gone_id != 0 || n->shutting_down) {
    return;
  }
  /* xorshift64: any spread will do, it only staggers the followers */
  n->gone_prng ^= n->gone_prng << 13;
  n->gone_prng ^= n->gone_prng >> 7;
  n->gone_prng ^= n->gone_prng << 17;
  n->gone_id = id;
  uv_timer_start(&n->gone_timer, node_gone_timer_cb,
                 n->gone_prng % n->opts.tick_ms, 0);
}

static void node_peer_hello_cb(void *arg, Synod__Peer__PeerHello *h) {
  struct node *n = arg;
  h->log_last_index = n->core ? core_last_index(n->core) : 0;
  h->term = n->term;
}

/* ------------------------------------------------------------- restore */

/* Reads the current snapshot, if any: its meta and image. */
static int node_restore_snapshot(struct node *n, char *errmsg) {
  struct store_snapshot_reader *r;
  int rv = store_snapshot_reader_new(&n->store, &r);
  if (rv == SYNOD_ENOTFOUND) {
    return 0;
  }
  if (rv != 0) {
    errmsg_set(errmsg, "%s", store_errmsg(&n->store));
    return rv;
  }
  const struct store_snapshot_meta *meta = store_snapshot_reader_meta(r);
  n->snap_meta.index = meta->index;
  n->snap_meta.term = meta->term;
  n->snap_meta.size_bytes = meta->size_bytes;
  n->snap_len = meta->size_bytes;
  rv = core_config_decode(meta->config, meta->config_len, &n->snap_meta.config);
  uint8_t *image = NULL;
  if (rv == 0 && (image = malloc(n->snap_len + 1)) == NULL) {
    rv = SYNOD_ENOMEM;
  }
  size_t got = 0, len = 1;
  while (rv == 0 && len > 0) {
    rv =
        store_snapshot_reader_read(r, image + got, n->snap_len + 1 - got, &len);
    got += len;
  }
  if (rv != 0 || got != n->snap_len) {
    errmsg_set(errmsg, "snapshot %llu: %s", (unsigned long long)meta->index,
               rv ? store_snapshot_reader_errmsg(r) : "short image");
  }
  store_snapshot_reader_free(r);
  if (rv == 0 && got == n->snap_len &&
      (rv = fsm_snapshot_decode(n->fsm, image, n->snap_len)) != 0) {
    errmsg_set(errmsg, "snapshot %llu: image does not decode",
               (unsigned long long)n->snap_meta.index);
  }
  free(image);
  return rv ? rv : got == n->snap_len ? 0 : SYNOD_ECORRUPT;
}

/* Builds the core from the store: hard state, snapshot, log after it. */
static int node_restore(struct node *n, char *errmsg) {
  struct core_restore rs = {0};
  struct store_hard_state hs;
  struct store_entry *es = NULL;
  size_t count = 0;
  int rv = store_hard_state_load(&n->store, &hs);
  if (rv == 0) {
    rv = node_restore_snapshot(n, errmsg);
  } else {
    errmsg_set(errmsg, "%s", store_errmsg(&n->store));
  }
  uint64_t lo = n->snap_meta.index + 1;
  uint64_t hi = store_log_last_index(&n->store);
  if (rv == 0 && hi >= lo) {
    /* One read; the log behind a snapshot is bounded by its threshold. */
    rv = store_log_read(&n->store, lo, hi, SIZE_MAX, &es, &count);
    if (rv != 0) {
      errmsg_set(errmsg, "%s", store_errmsg(&n->store));
    }
  }
  struct core_entry *ces = calloc(count ? count : 1, sizeof *ces);
  if (rv == 0 && ces == NULL) {
    rv = SYNOD_ENOMEM;
  }
  for (size_t i = 0; rv == 0 && i < count; i++) {
    ces[i] = (struct core_entry){es[i].term, es[i].index, es[i].type,
                                 es[i].data, es[i].len};
  }
  if (rv == 0) {
    rs.hard_state = (struct core_hard_state){hs.term, hs.vote, hs.commit};
    rs.snapshot = n->snap_meta;
    rs.entries = ces;
    rs.entries_n = (uint32_t)count;
    rv = node_core_new(n, &rs, errmsg);
  }
  free(ces);
  store_entries_free(es);
  /* Opening the store replayed its write-ahead file into LMDB. */
  n->persist.release_due = store_log_readable_last(&n->store);
  n->persist.durable_term = hs.term;
  n->persist.durable_vote = hs.vote;
  n->persist.latest = (struct core_hard_state){hs.term, hs.vote, hs.commit};
  n->applied_index = n->snap_meta.index;
  n->applied_term = n->snap_meta.term;
  n->applied_config = n->snap_meta.config;
  n->bootstrapped = hi > 0 || n->snap_meta.index > 0;
  return rv;
}

int node_core_new(struct node *n, const struct core_restore *rs, char *errmsg) {
  struct core_options co = {
      .id = n->id,
      .seed = n->id ^ node_now_ms(n),
      .election_ticks = n->opts.election_ticks,
      .heartbeat_ticks = 1,
      .snapshot_entries = n->opts.snapshot_entries,
      .snapshot_spread_percent = NODE_SNAPSHOT_SPREAD_PERCENT,
      .snapshot_slots = true,
      .inflight_appends_max = NODE_INFLIGHT_APPENDS,
      .snapshot_keep_entries = NODE_SNAPSHOT_KEEP_ENTRIES,
  };
  struct core *c = core_new(&co, rs, errmsg);
  if (c == NULL) {
    return SYNOD_ECORRUPT;
  }
  core_free(n->core);
  n->core = c;
  return 0;
}

/* ------------------------------------------------------------ lifecycle */

static int node_copy_options(struct node *n, const struct node_options *o,
                             char *errmsg) {
  n->opts = *o;
  if (o->name == NULL || o->name[0] == '\0' || o->data_dir == NULL ||
      o->client_address == NULL || o->peer_address == NULL) {
    errmsg_set(errmsg, "node: --name, --data, --client and --peer are "
                       "required");
    return SYNOD_EINVAL;
  }
  if (strlen(o->name) >= sizeof n->name ||
      strlen(o->data_dir) >= sizeof n->data_dir) {
    errmsg_set(errmsg, "node: name '%.32s...' or data directory too long",
               o->name);
    return SYNOD_EINVAL;
  }
  snprintf(n->name, sizeof n->name, "%s", o->name);
  snprintf(n->data_dir, sizeof n->data_dir, "%s", o->data_dir);
  snprintf(n->cluster_id, sizeof n->cluster_id, "%s",
           o->cluster_id ? o->cluster_id : "synod");
  snprintf(n->client_address, sizeof n->client_address, "%s",
           o->client_address);
  snprintf(n->peer_address, sizeof n->peer_address, "%s", o->peer_address);
  snprintf(n->advertise_client, sizeof n->advertise_client, "%s",
           o->advertise_client ? o->advertise_client : o->client_address);
  snprintf(n->advertise_peer, sizeof n->advertise_peer, "%s",
           o->advertise_peer ? o->advertise_peer : o->peer_address);
  n->peers = calloc(o->peers_n ? o->peers_n : 1, sizeof *n->peers);
  if (n->peers == NULL) {
    return SYNOD_ENOMEM;
  }
  memcpy(n->peers, o->peers, o->peers_n * sizeof *n->peers);
  n->opts.peers = n->peers;
  if (n->opts.tick_ms == 0) {
    n->opts.tick_ms = NODE_TICK_MS_DEFAULT;
  }
  if (n->opts.election_ticks == 0) {
    n->opts.election_ticks = NODE_ELECTION_TICKS_DEFAULT;
  }
  if (n->opts.snapshot_bytes == 0) {
    n->opts.snapshot_bytes = 64ull << 20;
  }
  const char *dash = strrchr(n->name, '-');
  n->name_prefix_len = dash ? (size_t)(dash - n->name) : strlen(n->name);
  if (o->peers_n == 0 && o->initial_size == 0) {
    errmsg_set(errmsg, "node: give the replicas (--peers) or the initial "
                       "cluster size (--initial-size)");
    return SYNOD_EINVAL;
  }
  return 0;
}

static int node_open_store(struct node *n, char *errmsg) {
  struct store_options so = {.map_size_max_bytes = n->opts.map_size_max_bytes};
  int rv = store_open(&n->store, n->data_dir, &so);
  if (rv != 0) {
    errmsg_set(errmsg, "%s", store_errmsg(&n->store));
    return rv;
  }
  store_incarnation(&n->store, n->incarnation);
  n->id = bootstrap_id(n->name, n->incarnation);
  return 0;
}

static int node_start_nets(struct node *n, char *errmsg) {
  struct peer_net_options po = {
      .loop = n->loop,
      .id = n->id,
      .name = n->name,
      .cluster_id = n->cluster_id,
      .listen_address = n->peer_address,
      .advertise_address = n->advertise_peer,
      .client_address = n->advertise_client,
      .recv_cb = node_peer_recv_cb,
      .link_cb = node_peer_link_cb,
      .state_cb = node_peer_state_cb,
      .hello_cb = node_peer_hello_cb,
      .gone_cb = node_peer_gone_cb,
      .id_of = bootstrap_id,
      .arg = n,
  };
  memcpy(po.incarnation, n->incarnation, sizeof po.incarnation);
  int rv = peer_net_start(&po, &n->peer_net, errmsg);
  if (rv != 0) {
    return rv;
  }
  struct client_net_options co = {
      .loop = n->loop,
      .listen_address = n->client_address,
      .frame_max_bytes = n->opts.frame_max_bytes,
      .request_cb = requests_on_request,
      .close_cb = requests_on_close,
      .answer_cb = metrics_answer_cb,
      .drain_cb = node_subs_on_drain,
      .arg = n,
  };
  rv = client_net_start(&co, &n->client_net, errmsg);
  if (rv != 0) {
    return rv;
  }
  for (size_t i = 0; i < n->opts.peers_n; i++) {
    if (strcmp(n->peers[i].name, n->name) != 0 &&
        peer_net_dial(n->peer_net, n->peers[i].address, n->peers[i].name) !=
            0) {
      errmsg_set(errmsg, "node: peer %s has a bad address '%s'",
                 n->peers[i].name, n->peers[i].address);
      return SYNOD_EINVAL;
    }
  }
  return 0;
}

int node_start(uv_loop_t *loop, const struct node_options *opts,
               struct node **out, char *errmsg) {
  struct node *n = calloc(1, sizeof *n);
  int rv;
  if (n == NULL) {
    errmsg_set(errmsg, "node: out of memory");
    return SYNOD_ENOMEM;
  }
  n->loop = loop;
  n->started_ms = node_now_ms(n);
  n->leaderless_since_ms = n->started_ms;
  n->started_unix_ms = node_unix_ms();
  if ((rv = persist_init(n)) != 0) {
    errmsg_set(errmsg, "node: cannot create the persist lock");
    free(n);
    return rv;
  }
  u64map_init(&n->waits);
  u64map_init(&n->session_conns);
  u64map_init(&n->redirected);
  u64map_init(&n->observers);
  writes_init(n);
  if ((rv = metrics_init(&n->metrics)) != 0 || (rv = node_subs_init(n)) != 0) {
    errmsg_set(errmsg, "node: out of memory");
    goto err;
  }
  if ((rv = node_copy_options(n, opts, errmsg)) != 0 ||
      (rv = node_open_store(n, errmsg)) != 0) {
    goto err;
  }
  struct fsm_options fo = {0};
  if ((n->fsm = fsm_new(&fo)) == NULL) {
    rv = SYNOD_ENOMEM;
    errmsg_set(errmsg, "node: out of memory");
    goto err;
  }
  n->subs.fsm = n->fsm;
  if ((rv = node_restore(n, errmsg)) != 0) {
    errmsg_wrap(errmsg, "restore from %s", n->data_dir);
    goto err;
  }
  if ((rv = node_start_nets(n, errmsg)) != 0) {
    goto err_nets;
  }
  uv_timer_init(loop, &n->tick);
  n->tick.data = n;
  uv_timer_init(loop, &n->gone_timer);
  n->gone_timer.data = n;
  n->gone_prng = (n->id ^ uv_hrtime()) | 1;
  uv_timer_start(&n->tick, node_tick_cb, n->opts.tick_ms, n->opts.tick_ms);
  /* After each turn's I/O: propose what the turn's requests queued. */
  uv_check_init(loop, &n->propose_check);
  n->propose_check.data = n;
  n->propose_check_open = true;
  uv_check_start(&n->propose_check, node_propose_check_cb);
  persist_start_loop(n);
  log_info("node",
           "%s (id %016llx) started: client %s, peer %s, data %s, "
           "log %llu..%llu, snapshot %llu",
           n->name, (unsigned long long)n->id, n->advertise_client,
           n->advertise_peer, n->data_dir,
           (unsigned long long)core_first_index(n->core),
           (unsigned long long)core_last_index(n->core),
           (unsigned long long)n->snap_meta.index);
  *out = n;
  return 0;

err_nets:
  /* The nets free themselves once the loop closes their handles. */
  peer_net_stop(n->peer_net);
  client_net_stop(n->client_net);
  n->peer_net = NULL;
  n->client_net = NULL;
  uv_run(loop, UV_RUN_NOWAIT);
err:
  node_free(n);
  return rv;
}

/* ------------------------------------------------------------- shutdown */

/* Stops taking input: no more client requests or peer messages, so the
 * write queue can only shrink. */
static void node_shutdown_nets(struct node *n) {
  if (n->peer_net == NULL) {
    return;
  }
  apply_fail_pending(n, SYNOD_ESHUTDOWN);
  requests_reads_fail(n, SYNOD_ESHUTDOWN);
  info_gathers_expire(n, true);
  requests_queued_fail(n, SYNOD_ESHUTDOWN);
  writes_fail_all(n, SYNOD_ESHUTDOWN);
  peer_net_stop(n->peer_net);
  client_net_stop(n->client_net);
  n->peer_net = NULL;
  n->client_net = NULL;
}

static void node_shutdown_close(struct node *n) {
  uv_timer_stop(&n->tick);
  uv_close((uv_handle_t *)&n->tick, NULL);
  uv_close((uv_handle_t *)&n->gone_timer, NULL);
  if (n->propose_check_open) {
    uv_close((uv_handle_t *)&n->propose_check, NULL);
    n->propose_check_open = false;
  }
  persist_stop_loop(n);
  log_info("node", "%s stopped", n->name);
  if (n->shutdown_cb != NULL) {
    n->shutdown_cb(n, n->shutdown_arg);
  }
}

/* Picks the voter with the highest match to hand leadership to. */
static uint64_t node_transfer_target(struct node *n) {
  const struct core_config *cfg = core_config(n->core);
  uint64_t best = 0, best_match = 0;
  for (uint32_t i = 0; i < cfg->voters_n; i++) {
    uint64_t id = cfg->voters[i];
    uint64_t match = core_match_index(n->core, id);
    if (id != n->id && match >= best_match) {
      best = id;
      best_match = match;
    }
  }
  return best;
}

/* Runs every tick while stopping: first hand leadership over (bounded by
 * two election timeouts), then wait for the disk, then close. */
static void node_shutdown_tick_cb(uv_timer_t *t) {
  struct node *n = t->data;
  uint64_t limit = 2ull * n->opts.election_ticks;
  struct core_event ev = {.type = CORE_EVENT_TICK};
  node_step(n, &ev);
  n->shutdown_ticks++;
  if (n->role == CORE_LEADER && n->shutdown_ticks < limit) {
    if (n->shutdown_ticks % n->opts.election_ticks == 1) {
      struct core_event tr = {.type = CORE_EVENT_TRANSFER,
                              .id = node_transfer_target(n)};
      if (tr.id != 0 && node_step(n, &tr) == 0) {
        log_info("node", "handing leadership to %s",
                 node_member_name(n, tr.id));
      }
    }
    return;
  }
  /* Then leave the configuration (scale down, rolling update), bounded by
   * a few election timeouts: a replica that merely crashes stays a voter,
   * one that is stopped on purpose does not hold the quorum hostage. */
  if (n->peer_net != NULL && !bootstrap_leave(n)) {
    if (n->shutdown_ticks < 3 * limit) {
      return;
    }
    log_warn("node",
             "stopping without leaving: no answer from the leader "
             "in %llu ms; this replica stays a member",
             (unsigned long long)(n->shutdown_ticks * n->opts.tick_ms));
  }
  node_shutdown_nets(n);
  if (n->persist.head != NULL || n->snapshot_forked) {
    return; /* writes in flight (and an image being encoded) finish first */
  }
  node_shutdown_close(n);
}

void node_shutdown(struct node *n, node_shutdown_cb cb, void *arg) {
  if (n->shutting_down) {
    return;
  }
  log_info("node", "%s stopping (%s)", n->name,
           n->role == CORE_LEADER ? "leader: handing over" : "follower");
  n->shutting_down = true;
  n->shutdown_cb = cb;
  n->shutdown_arg = arg;
  uv_timer_stop(&n->tick);
  uv_timer_start(&n->tick, node_shutdown_tick_cb, n->opts.tick_ms,
                 n->opts.tick_ms);
}

static bool node_address_in(const struct node_peer *peers, size_t k,
                            const char *address) {
  for (size_t i = 0; i < k; i++) {
    if (strcmp(peers[i].address, address) == 0) {
      return true;
    }
  }
  return false;
}

void node_discovered(struct node *n, const struct node_peer *peers,
                     size_t peers_n) {
  char(*kept)[NODE_ADDRESS_MAX] = calloc(peers_n ? peers_n : 1, sizeof *kept);
  if (n->peer_net == NULL || kept == NULL) {
    free(kept);
    return;
  }
  for (size_t i = 0; i < n->discovered_n; i++) {
    if (!node_address_in(peers, peers_n, n->discovered[i]) &&
        !node_address_in(n->peers, n->opts.peers_n, n->discovered[i])) {
      peer_net_undial(n->peer_net, n->discovered[i]);
    }
  }
  size_t k = 0;
  for (size_t i = 0; i < peers_n; i++) {
    if (strcmp(peers[i].name, n->name) == 0 ||
        strcmp(peers[i].address, n->advertise_peer) == 0) {
      continue; /* ourselves */
    }
    if (peer_net_dial(n->peer_net, peers[i].address, NULL) != 0) {
      log_warn("node", "discovery: %s has a bad address '%s'", peers[i].name,
               peers[i].address);
      continue;
    }
    snprintf(kept[k++], NODE_ADDRESS_MAX, "%s", peers[i].address);
  }
  free(n->discovered);
  n->discovered = kept;
  n->discovered_n = k;
}

void node_free(struct node *n) {
  if (n == NULL) {
    return;
  }
  requests_close(n);
  subs_close(&n->subs);
  apply_fail_pending(n, SYNOD_ESHUTDOWN);
  writes_close(n);
  apply_close(n);
  persist_close(n);
  core_free(n->core);
  fsm_free(n->fsm);
  store_close(&n->store);
  free(n->snap_chunk);
  free(n->recv_image);
  free(n->peers);
  free(n->discovered);
  metrics_close(&n->metrics);
  free(n);
}
