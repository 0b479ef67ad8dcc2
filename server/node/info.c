/* What a replica knows of itself and the cluster, for HTTP status, probes
 * and the status page: read-only, from the loop's thread. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node_int.h"
#include "version.h"

const struct fsm *node_fsm(const struct node *n) {
  return n->fsm;
}

static void info_member(struct node *n, struct node_member_info *m, uint64_t id,
                        bool voter) {
  const struct member *mem = node_member(n, id);
  uint64_t now = node_now_ms(n);
  memset(m, 0, sizeof *m);
  m->self = id == n->id;
  snprintf(m->name, sizeof m->name, "%s", node_member_name(n, id));
  snprintf(m->peer_address, sizeof m->peer_address, "%s",
           m->self ? n->advertise_peer
           : mem   ? mem->peer_address
                   : "");
  snprintf(m->client_address, sizeof m->client_address, "%s",
           m->self ? n->advertise_client
           : mem   ? mem->client_address
                   : "");
  m->voter = voter;
  m->up = m->self || (mem != NULL && mem->up);
  m->role = id == n->leader ? "leader" : voter ? "follower" : "learner";
  m->last_contact_ms = m->self ? 0
                       : mem != NULL && mem->last_recv_ms != 0
                           ? (int64_t)(now - mem->last_recv_ms)
                           : -1;
  if (n->role == CORE_LEADER) {
    uint64_t last = core_last_index(n->core);
    m->match_index = m->self ? last : core_match_index(n->core, id);
    m->lag_entries = last > m->match_index ? last - m->match_index : 0;
  }
}

static void info_leader_changes(const struct node *n, struct node_info *out) {
  uint32_t have = n->leader_changes_n < NODE_LEADER_HISTORY_MAX
                      ? n->leader_changes_n
                      : NODE_LEADER_HISTORY_MAX;
  for (uint32_t i = 0; i < have; i++) {
    uint32_t k = (n->leader_changes_n - 1 - i) % NODE_LEADER_HISTORY_MAX;
    out->leader_changes[i] = n->leader_changes[k];
  }
  out->leader_changes_n = have;
}

void node_info_get(struct node *n, struct node_info *out) {
  const struct core_config *cfg = core_config(n->core);
  memset(out, 0, sizeof *out);
  out->name = n->name;
  out->cluster_id = n->cluster_id;
  out->version = SYNOD_VERSION;
  out->role = core_role_name(n->role);
  out->term = n->term;
  snprintf(out->leader, sizeof out->leader, "%s",
           n->leader ? node_member_name(n, n->leader) : "");
  out->leader_since_unix_ms = n->leader ? n->leader_since_unix_ms : 0;
  out->commit_index = core_commit_index(n->core);
  out->applied_index = n->applied_index;
  out->last_index = core_last_index(n->core);
  out->snapshot_index = n->snap_meta.index;
  out->snapshot_bytes = n->snap_len;
  out->log_syncs = n->persist.syncs;
  out->log_synced_entries = n->persist.synced_entries;
  out->log_sync_us = n->metrics.sync_durations.sum_us;
  out->uptime_ms = node_now_ms(n) - n->started_ms;
  out->started_unix_ms = n->started_unix_ms;
  out->voters = cfg->voters_n;
  out->learners = cfg->learners_n;
  for (uint32_t i = 0; i < cfg->voters_n + cfg->learners_n &&
                       out->members_n < NODE_INFO_MEMBERS_MAX;
       i++) {
    bool voter = i < cfg->voters_n;
    uint64_t id = voter ? cfg->voters[i] : cfg->learners[i - cfg->voters_n];
    info_member(n, &out->members[out->members_n++], id, voter);
  }
  info_leader_changes(n, out);
}

bool node_ready(struct node *n, uint64_t lag_max, char *why, size_t len) {
  const struct core_config *cfg = core_config(n->core);
  bool voter = false, member = false;
  for (uint32_t i = 0; i < cfg->voters_n; i++) {
    voter = voter || cfg->voters[i] == n->id;
  }
  for (uint32_t i = 0; i < cfg->learners_n; i++) {
    member = member || cfg->learners[i] == n->id;
  }
  member = member || voter;
  uint64_t commit = core_commit_index(n->core);
  uint64_t lag = commit > n->applied_index ? commit - n->applied_index : 0;
  const char *leader = n->leader ? node_member_name(n, n->leader) : "";
  if (!member) {
    snprintf(why, len,
             "%s is not a member of its configuration (%u voters, %u "
             "learners): not joined yet",
             n->name, cfg->voters_n, cfg->learners_n);
  } else if (n->leader == 0) {
    snprintf(why, len, "%s knows no leader (term %" PRIu64 ")", n->name,
             n->term);
  } else if (lag > lag_max) {
    snprintf(why, len,
             "%s (%s) has applied %" PRIu64 " of %" PRIu64
             " committed entries: %" PRIu64 " behind, over %" PRIu64,
             n->name, voter ? "voter" : "learner", n->applied_index, commit,
             lag, lag_max);
  } else {
    snprintf(why, len,
             "%s is ready: %s, leader %s, applied %" PRIu64 " of %" PRIu64,
             n->name, voter ? "voter" : "caught-up learner", leader,
             n->applied_index, commit);
    return true;
  }
  return false;
}

/* ------------------------------------------- every replica's figures */

static void info_self_status(struct node *n, struct node_replica_status *r) {
  r->reachable = true;
  snprintf(r->role, sizeof r->role, "%s", core_role_name(n->role));
  r->term = n->term;
  snprintf(r->leader, sizeof r->leader, "%s",
           n->leader ? node_member_name(n, n->leader) : "");
  r->commit_index = core_commit_index(n->core);
  r->applied_index = n->applied_index;
  r->last_index = core_last_index(n->core);
  r->snapshot_index = n->snap_meta.index;
  r->uptime_ms = node_now_ms(n) - n->started_ms;
  snprintf(r->version, sizeof r->version, "%s", SYNOD_VERSION);
}

void info_on_status_query(struct node *n, uint64_t from, uint64_t ctx) {
  struct node_replica_status me = {0};
  info_self_status(n, &me);
  Synod__Peer__PeerMessage pb = SYNOD__PEER__PEER_MESSAGE__INIT;
  Synod__Peer__StatusAnswer a = SYNOD__PEER__STATUS_ANSWER__INIT;
  a.ctx = ctx;
  a.role = me.role;
  a.term = me.term;
  a.leader = me.leader;
  a.commit_index = me.commit_index;
  a.applied_index = me.applied_index;
  a.last_index = me.last_index;
  a.snapshot_index = me.snapshot_index;
  a.uptime_ms = me.uptime_ms;
  a.version = me.version;
  pb.body_case = SYNOD__PEER__PEER_MESSAGE__BODY_STATUS_ANSWER;
  pb.status_answer = &a;
  peer_net_send_pb(n->peer_net, from, &pb);
}

static void gather_finish(struct status_gather *g) {
  g->cb(g->arg, g->rs, g->n);
  free(g);
}

void info_on_status_answer(struct node *n, uint64_t from,
                           const Synod__Peer__StatusAnswer *a) {
  struct status_gather **pp = &n->gathers;
  while (*pp != NULL && (*pp)->ctx != a->ctx) {
    pp = &(*pp)->next;
  }
  struct status_gather *g = *pp;
  for (uint32_t i = 0; g != NULL && i < g->n; i++) {
    struct node_replica_status *r = &g->rs[i];
    if (g->ids[i] != from || r->reachable) {
      continue;
    }
    r->reachable = true;
    r->error[0] = '\0';
    snprintf(r->role, sizeof r->role, "%s", a->role);
    r->term = a->term;
    snprintf(r->leader, sizeof r->leader, "%s", a->leader);
    r->commit_index = a->commit_index;
    r->applied_index = a->applied_index;
    r->last_index = a->last_index;
    r->snapshot_index = a->snapshot_index;
    r->uptime_ms = a->uptime_ms;
    snprintf(r->version, sizeof r->version, "%s", a->version);
    if (--g->waiting == 0) {
      *pp = g->next;
      gather_finish(g);
    }
    return;
  }
}

void info_gathers_expire(struct node *n, bool all) {
  uint64_t now = node_now_ms(n);
  struct status_gather **pp = &n->gathers;
  while (*pp != NULL) {
    struct status_gather *g = *pp;
    if (!all && g->deadline_ms > now) {
      pp = &g->next;
      continue;
    }
    *pp = g->next;
    for (uint32_t i = 0; i < g->n; i++) {
      if (!g->rs[i].reachable && g->rs[i].error[0] == '\0') {
        snprintf(g->rs[i].error, sizeof g->rs[i].error, "no answer in %llu ms",
                 (unsigned long long)(now - g->started_ms));
      }
    }
    gather_finish(g);
  }
}

void node_cluster_status(struct node *n, uint32_t timeout_ms,
                         node_cluster_status_cb cb, void *arg) {
  struct status_gather *g = calloc(1, sizeof *g);
  if (g == NULL) {
    cb(arg, NULL, 0);
    return;
  }
  const struct core_config *cfg = core_config(n->core);
  g->ctx = ++n->gather_ctx_next;
  g->started_ms = node_now_ms(n);
  g->deadline_ms = g->started_ms + timeout_ms;
  g->cb = cb;
  g->arg = arg;
  Synod__Peer__PeerMessage pb = SYNOD__PEER__PEER_MESSAGE__INIT;
  Synod__Peer__StatusQuery q = SYNOD__PEER__STATUS_QUERY__INIT;
  q.ctx = g->ctx;
  pb.body_case = SYNOD__PEER__PEER_MESSAGE__BODY_STATUS_QUERY;
  pb.status_query = &q;
  uint32_t all = cfg->voters_n + cfg->learners_n;
  for (uint32_t i = 0; i < all && g->n < NODE_INFO_MEMBERS_MAX; i++) {
    uint64_t id =
        i < cfg->voters_n ? cfg->voters[i] : cfg->learners[i - cfg->voters_n];
    struct node_replica_status *r = &g->rs[g->n];
    g->ids[g->n++] = id;
    snprintf(r->name, sizeof r->name, "%s", node_member_name(n, id));
    if (id == n->id) {
      info_self_status(n, r);
    } else if (!peer_net_is_up(n->peer_net, id) ||
               peer_net_send_pb(n->peer_net, id, &pb) != 0) {
      snprintf(r->error, sizeof r->error, "no link to it from %s", n->name);
    } else {
      g->waiting++;
    }
  }
  if (g->waiting == 0) {
    gather_finish(g);
    return;
  }
  g->next = n->gathers;
  n->gathers = g;
}
