/* Identity, bootstrap and joining.
 *
 * A replica's core id is a hash of its name and the incarnation id of its
 * data directory, so a replica that lost its disk comes back as a new
 * member and can never vote under its old identity with an empty log.
 *
 * A fresh cluster forms once: the replica with the lowest declared name
 * waits until it sees a majority of the declared replicas, all fresh, and
 * only then writes the first configuration (those it sees) as entry 1. No
 * other replica writes a first entry, so replicas started in parallel can
 * never form two clusters. Every other fresh replica, and any declared one
 * left out of the first configuration, asks the leader to join: it is
 * added as a learner and promoted to voter by the core once caught up. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "node_int.h"
#include "synod.h"

/* Join requests are repeated at most this often until we are a member. */
#define BOOTSTRAP_JOIN_INTERVAL_MS 1000

uint64_t bootstrap_id(const char *name, const uint8_t *incarnation) {
  uint64_t h = 14695981039346656037ull; /* FNV-1a 64 */
  for (const char *p = name; *p != '\0'; p++) {
    h = (h ^ (uint8_t)*p) * 1099511628211ull;
  }
  h = (h ^ 0xff) * 1099511628211ull; /* separator */
  for (int i = 0; i < STORE_INCARNATION_BYTES; i++) {
    h = (h ^ incarnation[i]) * 1099511628211ull;
  }
  return h != 0 ? h : 1;
}

bool bootstrap_is_member(const struct core_config *cfg, uint64_t id) {
  for (uint32_t i = 0; i < cfg->voters_n; i++) {
    if (cfg->voters[i] == id) {
      return true;
    }
  }
  for (uint32_t i = 0; i < cfg->learners_n; i++) {
    if (cfg->learners[i] == id) {
      return true;
    }
  }
  return false;
}

/* Splits "synod-12" into the prefix length and ordinal 12; false if the
 * name does not end in "-<digits>". */
static bool bootstrap_ordinal(const char *name, size_t *prefix_len,
                              unsigned long *ordinal) {
  const char *dash = strrchr(name, '-');
  char *end;
  if (dash == NULL || dash[1] < '0' || dash[1] > '9') {
    return false;
  }
  *ordinal = strtoul(dash + 1, &end, 10);
  *prefix_len = (size_t)(dash - name);
  return *end == '\0';
}

bool bootstrap_is_declared(const struct node *n, const char *name) {
  size_t plen;
  unsigned long ord;
  for (size_t i = 0; i < n->opts.peers_n; i++) {
    if (strcmp(n->peers[i].name, name) == 0) {
      return true;
    }
  }
  /* --initial-size N: the StatefulSet's first N pods, PREFIX-0..N-1. */
  return n->opts.initial_size > 0 && bootstrap_ordinal(name, &plen, &ord) &&
         ord < n->opts.initial_size && plen == n->name_prefix_len &&
         strncmp(name, n->name, plen) == 0;
}

/* How many replicas were declared: the static list, or --initial-size. */
static size_t bootstrap_declared_n(const struct node *n) {
  return n->opts.peers_n > 0 ? n->opts.peers_n : n->opts.initial_size;
}

/* Is this replica the one that may create the cluster: the lowest
 * declared name (PREFIX-0 under --initial-size)? */
static bool bootstrap_is_founder(const struct node *n) {
  size_t plen;
  unsigned long ord;
  if (n->opts.peers_n == 0) {
    return n->opts.initial_size > 0 &&
           bootstrap_ordinal(n->name, &plen, &ord) && ord == 0;
  }
  for (size_t i = 0; i < n->opts.peers_n; i++) {
    if (strcmp(n->peers[i].name, n->name) < 0) {
      return false;
    }
  }
  return bootstrap_is_declared(n, n->name);
}

static int u64_cmp(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Writes entry 1, the first configuration, and rebuilds the core on it. */
static void bootstrap_write(struct node *n, const uint64_t *ids, uint32_t k) {
  struct core_config cfg = {.voters_n = k};
  uint8_t buf[CORE_CONFIG_ENCODED_MAX];
  char errmsg[SYNOD_ERRMSG_MAX];
  memcpy(cfg.voters, ids, k * sizeof *ids);
  qsort(cfg.voters, k, sizeof *ids, u64_cmp);
  size_t len = core_config_encode(&cfg, buf);
  struct store_entry e = {.index = 1,
                          .term = 1,
                          .type = CORE_ENTRY_CONFIG,
                          .data = buf,
                          .len = len};
  if (store_log_append(&n->store, &e, 1) != 0) {
    log_error("node", "bootstrap: %s", store_errmsg(&n->store));
    return;
  }
  struct store_hard_state hs;
  store_hard_state_load(&n->store, &hs);
  struct core_entry ce = {.term = 1,
                          .index = 1,
                          .type = CORE_ENTRY_CONFIG,
                          .data = buf,
                          .len = len};
  struct core_restore rs = {
      .hard_state = {hs.term, hs.vote, hs.commit},
      .entries = &ce,
      .entries_n = 1,
  };
  if (node_core_new(n, &rs, errmsg) != 0) {
    log_error("node", "bootstrap: %s", errmsg);
    exit(1);
  }
  n->bootstrapped = true;
  log_info("node", "bootstrapped the cluster with %u voters", k);
}

/* The founder creates the cluster once a majority of the declared
 * replicas, all fresh, see each other. */
static void bootstrap_try_found(struct node *n) {
  uint64_t ids[CORE_MEMBERS_MAX];
  uint32_t k = 0;
  size_t majority = bootstrap_declared_n(n) / 2 + 1;
  ids[k++] = n->id;
  for (uint32_t i = 0; i < n->members_n && k < CORE_MEMBERS_MAX; i++) {
    const struct member *m = &n->members[i];
    if (!m->up || !bootstrap_is_declared(n, m->name)) {
      continue;
    }
    if (m->log_last_index > 0) {
      return; /* a cluster exists: join it instead */
    }
    ids[k++] = m->id;
  }
  /* Writing to the store from the loop is safe only while the worker is
   * idle; a fresh replica has at most hard state in flight. */
  if (k >= majority && n->persist.head == NULL) {
    bootstrap_write(n, ids, k);
  }
}

static void bootstrap_send_join(struct node *n, uint64_t to) {
  Synod__Peer__PeerMessage pb = SYNOD__PEER__PEER_MESSAGE__INIT;
  Synod__Peer__JoinRequest j = SYNOD__PEER__JOIN_REQUEST__INIT;
  j.name = n->name;
  j.id = n->id;
  j.incarnation.data = n->incarnation;
  j.incarnation.len = sizeof n->incarnation;
  j.peer_address = n->advertise_peer;
  j.client_address = n->advertise_client;
  pb.body_case = SYNOD__PEER__PEER_MESSAGE__BODY_JOIN;
  pb.join = &j;
  if (peer_net_send_pb(n->peer_net, to, &pb) == 0) {
    log_info("node", "asking %s to join the cluster", node_member_name(n, to));
  }
}

/* Whom to ask to join: the leader if known, else any peer with a log. */
static uint64_t bootstrap_join_target(const struct node *n) {
  if (n->leader != 0 && n->leader != n->id) {
    return n->leader;
  }
  for (uint32_t i = 0; i < n->members_n; i++) {
    if (n->members[i].up && n->members[i].log_last_index > 0) {
      return n->members[i].id;
    }
  }
  return 0;
}

/* Leader: a declared replica that is connected but not a member (it was
 * not up when the cluster was founded, or it lost its disk and came back
 * as a new incarnation) is added as a learner, one change at a time. */
static void bootstrap_add_declared(struct node *n) {
  const struct core_config *cfg = core_config(n->core);
  for (uint32_t i = 0; i < n->members_n; i++) {
    const struct member *m = &n->members[i];
    if (!m->up || bootstrap_is_member(cfg, m->id) ||
        !bootstrap_is_declared(n, m->name)) {
      continue;
    }
    struct core_event ev = {.type = CORE_EVENT_ADD_MEMBER, .id = m->id};
    if (node_step(n, &ev) == 0) {
      log_info("node", "adding %s (%llu) as a learner", m->name,
               (unsigned long long)m->id);
    }
    return; /* one at a time; the rest on later ticks */
  }
}

void bootstrap_tick(struct node *n) {
  const struct core_config *cfg = core_config(n->core);
  if (n->role == CORE_LEADER && !n->shutting_down) {
    bootstrap_add_declared(n);
  }
  if (bootstrap_is_member(cfg, n->id)) {
    n->was_member = true;
    return;
  }
  if (n->was_member || n->shutting_down) {
    return; /* removed by an operator: do not come back by ourselves */
  }
  if (!n->bootstrapped && bootstrap_is_founder(n)) {
    bootstrap_try_found(n);
    if (n->bootstrapped) {
      return;
    }
  }
  uint64_t now = node_now_ms(n);
  uint64_t to = bootstrap_join_target(n);
  if (to != 0 && now - n->join_sent_ms >= BOOTSTRAP_JOIN_INTERVAL_MS) {
    n->join_sent_ms = now;
    bootstrap_send_join(n, to);
  }
}

void bootstrap_on_peer_up(struct node *n, const Synod__Peer__PeerHello *h) {
  (void)h;
  bootstrap_tick(n);
}

/* --------------------------------------------------------- membership */

static void bootstrap_reply(struct node *n, uint64_t to, int code,
                            const char *text) {
  Synod__Peer__PeerMessage pb = SYNOD__PEER__PEER_MESSAGE__INIT;
  Synod__Peer__MembershipReply r = SYNOD__PEER__MEMBERSHIP_REPLY__INIT;
  r.error = (uint32_t)code;
  r.message = (char *)text;
  r.leader_name = n->leader ? (char *)node_member_name(n, n->leader) : "";
  r.leader_address = "";
  const struct member *m = node_member(n, n->leader);
  if (m != NULL) {
    r.leader_address = (char *)m->peer_address;
  }
  pb.body_case = SYNOD__PEER__PEER_MESSAGE__BODY_MEMBERSHIP_REPLY;
  pb.membership_reply = &r;
  peer_net_send_pb(n->peer_net, to, &pb);
}

/* Leader: add the asker as a learner (the core promotes it when it has
 * caught up). */
static void bootstrap_on_join(struct node *n, uint64_t from,
                              const Synod__Peer__JoinRequest *j) {
  char text[160];
  if (j->id != from) {
    log_warn("node", "join from %llu names id %llu: refused",
             (unsigned long long)from, (unsigned long long)j->id);
    return;
  }
  if (n->role != CORE_LEADER) {
    bootstrap_reply(n, from, SYNOD_ENOTLEADER, "not the leader");
    return;
  }
  if (bootstrap_is_member(core_config(n->core), from)) {
    bootstrap_reply(n, from, 0, "already a member");
    return;
  }
  struct core_event ev = {.type = CORE_EVENT_ADD_MEMBER, .id = from};
  int rv = node_step(n, &ev);
  if (rv == 0) {
    log_info("node", "adding %s (%llu) as a learner", j->name,
             (unsigned long long)from);
    snprintf(text, sizeof text, "added as a learner");
  } else {
    snprintf(text, sizeof text, "%s", core_errmsg(n->core));
  }
  bootstrap_reply(n, from, rv, text);
}

void bootstrap_on_link_msg(struct node *n, uint64_t from,
                           const Synod__Peer__PeerMessage *pb) {
  switch (pb->body_case) {
  case SYNOD__PEER__PEER_MESSAGE__BODY_JOIN:
    bootstrap_on_join(n, from, pb->join);
    break;
  case SYNOD__PEER__PEER_MESSAGE__BODY_MEMBERSHIP_REPLY:
    if (pb->membership_reply->error != 0) {
      log_info("node", "join: %s says %s (%s)", node_member_name(n, from),
               synod_strerror((int)pb->membership_reply->error),
               pb->membership_reply->message);
    }
    break;
  default:
    log_warn("node", "peer %s sent an unexpected message (body %d)",
             node_member_name(n, from), (int)pb->body_case);
    break;
  }
}
