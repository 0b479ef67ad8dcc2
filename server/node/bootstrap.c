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

static bool bootstrap_is_voter(const struct core_config *cfg, uint64_t id) {
  for (uint32_t i = 0; i < cfg->voters_n; i++) {
    if (cfg->voters[i] == id) {
      return true;
    }
  }
  return false;
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
  if (store_hard_state_load(&n->store, &hs) != 0) {
    /* Its term and vote would be whatever the stack held. */
    log_error("node", "bootstrap: loading the hard state from %s: %s",
              n->opts.data_dir, store_errmsg(&n->store));
    node_die();
  }
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
    node_die();
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

/* Whom to ask to join: the leader if known (from our core, or named by a
 * peer that was not it), else any peer with a log. */
static uint64_t bootstrap_join_target(struct node *n) {
  const struct member *hint = node_member(n, n->join_hint);
  if (n->leader != 0 && n->leader != n->id) {
    return n->leader;
  }
  if (hint != NULL && hint->up) {
    return hint->id;
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
    if (!m->up || m->leaving || bootstrap_is_member(cfg, m->id) ||
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

/* The name and addresses we know for id: ours, or a connected peer's. */
static bool bootstrap_known(struct node *n, uint64_t id,
                            struct fsm_member_info *out) {
  const struct member *m = node_member(n, id);
  if (id == n->id) {
    *out = (struct fsm_member_info){id, n->name, n->advertise_peer,
                                    n->advertise_client};
    return true;
  }
  if (m == NULL) {
    return false;
  }
  *out =
      (struct fsm_member_info){id, m->name, m->peer_address, m->client_address};
  return true;
}

static bool bootstrap_same(const struct fsm_member_info *a,
                           const struct fsm_member_info *b) {
  return strcmp(a->name, b->name) == 0 &&
         strcmp(a->peer_address, b->peer_address) == 0 &&
         strcmp(a->client_address, b->client_address) == 0;
}

/* Leader: every member of the configuration gets an entry in the
 * replicated directory once we know its name, so that every replica can
 * name it later, even while it is down. One entry in flight at a time. */
static void bootstrap_directory(struct node *n) {
  const struct core_config *cfg = core_config(n->core);
  uint32_t total = cfg->voters_n + cfg->learners_n;
  if (n->dir_pending_index > n->applied_index) {
    return;
  }
  for (uint32_t i = 0; i < total; i++) {
    uint64_t id =
        i < cfg->voters_n ? cfg->voters[i] : cfg->learners[i - cfg->voters_n];
    struct fsm_member_info want, have;
    if (!bootstrap_known(n, id, &want) ||
        (fsm_member_get(n->fsm, id, &have) && bootstrap_same(&want, &have))) {
      continue;
    }
    if (requests_propose_member(n, &want, false) == 0) {
      n->dir_pending_index = n->proposed_first;
    }
    return;
  }
}

/* Leader: two members of one name mean a replica came back with a new
 * disk (a new incarnation, a new id). Once the new one is a voter, the old
 * one, whose link is down, is removed, so the quorum returns to its size.
 * The new one never voted under the old identity. */
static void bootstrap_replace_old(struct node *n) {
  const struct core_config *cfg = core_config(n->core);
  for (uint32_t i = 0; i < cfg->voters_n; i++) {
    uint64_t fresh = cfg->voters[i];
    const struct member *fm = node_member(n, fresh);
    if (fresh == n->id || fm == NULL || !fm->up) {
      continue;
    }
    uint32_t total = cfg->voters_n + cfg->learners_n;
    for (uint32_t j = 0; j < total; j++) {
      uint64_t old =
          j < cfg->voters_n ? cfg->voters[j] : cfg->learners[j - cfg->voters_n];
      const struct member *om = node_member(n, old);
      if (old == fresh || old == n->id || (om != NULL && om->up) ||
          strcmp(node_member_name(n, old), fm->name) != 0) {
        continue;
      }
      struct core_event ev = {.type = CORE_EVENT_REMOVE_MEMBER, .id = old};
      if (node_step(n, &ev) == 0) {
        log_info("node",
                 "removing %s's old incarnation %llu: it came back "
                 "as %llu with a new disk",
                 fm->name, (unsigned long long)old, (unsigned long long)fresh);
      }
      return;
    }
  }
}

/* Leader: the server-wide settings of our flags go into the replicated
 * state when they differ from it (a flag not given leaves it alone). One
 * entry in flight at a time. */
static void bootstrap_settings(struct node *n) {
  if (n->settings_pending_index > n->applied_index) {
    return;
  }
  const struct fsm *f = n->fsm;
  const struct node_options *o = &n->opts;
  struct fsm_settings s;
  fsm_settings_get(f, &s);
  struct {
    uint64_t flag; /* 0: not given */
    uint64_t *have;
    uint64_t in_force;
    const char *name;
    bool take;
  } rows[] = {
      {o->channels_bytes_max, &s.channels_bytes_max, fsm_channels_bytes_max(f),
       "channels-max-bytes", false},
      {o->group_checkpoint_bytes_max, &s.group_checkpoint_bytes_max,
       fsm_group_checkpoint_bytes_max(f), "group-checkpoint-max-bytes", false},
      {o->key_history_max, &s.key_history_max, fsm_key_history_max(f),
       "keys-history", false},
      {o->key_history_bytes_max, &s.key_history_bytes_max,
       fsm_key_history_bytes_max(f), "keys-history-bytes", false},
      {o->key_value_bytes_max, &s.key_value_bytes_max,
       fsm_key_value_bytes_max(f), "keys-value-max-bytes", false},
  };
  size_t rows_n = sizeof rows / sizeof rows[0];
  bool changed = false;
  for (size_t i = 0; i < rows_n; i++) {
    rows[i].take = rows[i].flag != 0 && rows[i].flag != *rows[i].have;
    if (rows[i].take) {
      *rows[i].have = rows[i].flag;
      changed = true;
    }
  }
  if (!changed || requests_propose_settings(n, &s) != 0) {
    return;
  }
  n->settings_pending_index = n->proposed_first;
  for (size_t i = 0; i < rows_n; i++) {
    if (rows[i].take) {
      log_info("node", "settings: %s %llu (was %llu)", rows[i].name,
               (unsigned long long)rows[i].flag,
               (unsigned long long)rows[i].in_force);
    }
  }
}

void bootstrap_tick(struct node *n) {
  const struct core_config *cfg = core_config(n->core);
  if (n->role == CORE_LEADER && !n->shutting_down) {
    bootstrap_add_declared(n);
    bootstrap_directory(n);
    bootstrap_settings(n);
    bootstrap_replace_old(n);
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

/* Leader: a replica that is stopping asks to be removed. The answer is 0
 * once the configuration as of our commit index no longer holds it; until
 * then the asker repeats the request. */
static void bootstrap_on_leave(struct node *n, uint64_t from) {
  struct core_config committed;
  const struct core_config *cfg = core_config(n->core);
  struct member *m = node_member(n, from);
  char text[128];
  if (n->role != CORE_LEADER) {
    bootstrap_reply(n, from, SYNOD_ENOTLEADER, "not the leader");
    return;
  }
  /* Leaving never takes the voters below three (or below the declared
   * size, if smaller): when every replica stops at once (a whole
   * StatefulSet), each would otherwise be removed in turn down to one
   * voter, and the cluster could not restart without that one replica.
   * Such a stop counts as a crash: the replica stays a voter. */
  size_t floor = bootstrap_declared_n(n) < 3 ? bootstrap_declared_n(n) : 3;
  if (bootstrap_is_voter(cfg, from) && cfg->voters_n <= floor) {
    snprintf(text, sizeof text, "stays a voter: %u voters, the floor is %zu",
             cfg->voters_n, floor);
    bootstrap_reply(n, from, SYNOD_ECONFIG, text);
    return;
  }
  if (m != NULL) {
    m->leaving = true; /* do not add it back while it goes */
  }
  if (core_config_at(n->core, core_commit_index(n->core), &committed) == 0 &&
      !bootstrap_is_member(&committed, from)) {
    bootstrap_reply(n, from, 0, "removed");
    return;
  }
  if (bootstrap_is_member(core_config(n->core), from)) {
    struct core_event ev = {.type = CORE_EVENT_REMOVE_MEMBER, .id = from};
    if (node_step(n, &ev) == 0) {
      log_info("node", "removing %s (%llu): it is leaving",
               node_member_name(n, from), (unsigned long long)from);
    }
  }
  bootstrap_reply(n, from, SYNOD_EBUSY, "removal in progress");
}

bool bootstrap_leave(struct node *n) {
  const struct core_config *cfg = core_config(n->core);
  uint64_t now = node_now_ms(n);
  if (n->left || !bootstrap_is_member(cfg, n->id) ||
      (cfg->voters_n <= 1 && bootstrap_is_member(cfg, n->id)) ||
      n->leader == 0 || n->leader == n->id) {
    return true;
  }
  if (now - n->leave_sent_ms >= 200) {
    Synod__Peer__PeerMessage pb = SYNOD__PEER__PEER_MESSAGE__INIT;
    Synod__Peer__LeaveRequest lr = SYNOD__PEER__LEAVE_REQUEST__INIT;
    lr.name = n->name;
    lr.id = n->id;
    pb.body_case = SYNOD__PEER__PEER_MESSAGE__BODY_LEAVE;
    pb.leave = &lr;
    n->leave_sent_ms = now;
    if (peer_net_send_pb(n->peer_net, n->leader, &pb) == 0 &&
        n->leave_sent_ms == now) {
      log_debug("node", "asking %s to remove us",
                node_member_name(n, n->leader));
    }
  }
  return false;
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

/* A peer named the leader: remember which connected peer that is. */
static void bootstrap_learn_leader(struct node *n, const char *name) {
  for (uint32_t i = 0; i < n->members_n; i++) {
    if (strcmp(n->members[i].name, name) == 0 && n->members[i].up) {
      n->join_hint = n->members[i].id;
      n->join_sent_ms = 0; /* ask it at once */
      return;
    }
  }
}

void bootstrap_on_link_msg(struct node *n, uint64_t from,
                           const Synod__Peer__PeerMessage *pb) {
  switch (pb->body_case) {
  case SYNOD__PEER__PEER_MESSAGE__BODY_JOIN:
    bootstrap_on_join(n, from, pb->join);
    break;
  case SYNOD__PEER__PEER_MESSAGE__BODY_LEAVE:
    if (pb->leave->id == from) {
      bootstrap_on_leave(n, from);
    }
    break;
  case SYNOD__PEER__PEER_MESSAGE__BODY_MEMBERSHIP_REPLY:
    if (n->shutting_down && pb->membership_reply->error == 0) {
      n->left = true;
      log_info("node", "removed from the cluster by %s",
               node_member_name(n, from));
      break;
    }
    if (n->shutting_down && pb->membership_reply->error == SYNOD_ECONFIG) {
      n->left = true;
      log_info("node", "not leaving: %s says %s", node_member_name(n, from),
               pb->membership_reply->message);
      break;
    }
    if (pb->membership_reply->error == SYNOD_ENOTLEADER) {
      bootstrap_learn_leader(n, pb->membership_reply->leader_name);
    }
    if (pb->membership_reply->error != 0 && !n->shutting_down) {
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
