/* Elections: the randomized timeout, PreVote, RequestVote and the tally,
 * and the role changes they cause (Raft §5.2, Figure 2 "Candidates",
 * thesis 9.6 for PreVote and 4.2.3 for leader stickiness). */
#include "core_int.h"

#include <inttypes.h>
#include <string.h>

/* §5.2: "election timeouts are chosen randomly from a fixed interval";
 * here [election_ticks, 2 * election_ticks), from the core's own PRNG. */
void core_election_timer_reset(struct core *c) {
  c->election_elapsed = 0;
  c->election_timeout =
      c->o.election_ticks +
      (uint32_t)(core_prng_next(&c->prng) % c->o.election_ticks);
}

/* Thesis 4.2.3: a replica that heard from a current leader within the
 * minimum election timeout does not help depose it. A leader counts
 * itself (its elapsed time restarts every CheckQuorum period). */
bool core_election_in_lease(const struct core *c) {
  return c->leader != 0 && c->election_elapsed < c->o.election_ticks;
}

void core_become_follower(struct core *c, uint64_t term, uint64_t leader) {
  bool was_leader = c->role == CORE_LEADER;
  if (term > c->term) {
    c->term = term;
    c->vote = 0;
    c->recv_active = false;
  }
  if (was_leader) {
    core_read_fail_all(c);
    core_transfer_abort(c, "stepped down");
    core_repl_stop(c);
  }
  if (c->role != CORE_FOLLOWER || c->leader != leader) {
    core_trace(c, "became follower of %" PRIu64, leader);
  }
  c->self_win_index = 0;
  c->role = CORE_FOLLOWER;
  c->leader = leader;
  core_election_timer_reset(c);
}

static void core_become_leader(struct core *c) {
  uint64_t noop_index = c->self_win_index;
  c->role = CORE_LEADER;
  c->leader = c->id;
  c->heartbeat_elapsed = 0;
  c->election_elapsed = 0;
  c->self_win_index = 0;
  core_trace(c, "became leader (last %" PRIu64 "/%" PRIu64 ")",
             core_log_last(&c->log), core_log_last_term(&c->log));
  core_repl_start(c);
  if (noop_index != 0) { /* our noop is already in the log, and durable */
    c->self_match = noop_index;
    core_repl_broadcast(c);
    core_repl_maybe_commit(c);
    return;
  }
  /* Thesis 6.4 and §8: a new leader commits a blank entry of its own term
   * at the start of its term, which also commits earlier entries. */
  struct core_entry noop = {.type = CORE_ENTRY_NOOP};
  core_repl_propose(c, &noop, 1);
}

/* Our own vote is a quorum (a single voter). Take office only once that
 * vote is durable: otherwise a crash could forget it, and another replica
 * could win the same term with our vote. The vote and our noop go out in
 * one update, so the noop's PERSISTED says both are durable. */
static void core_election_self_win(struct core *c) {
  core_log_append(&c->log, c->term, CORE_ENTRY_NOOP, NULL, 0);
  c->self_win_index = core_log_last(&c->log);
  core_out_appended(c, c->self_win_index);
  core_trace(c, "won alone: leader once the vote is durable");
}

/* PERSISTED on a candidate that won alone. */
void core_election_persisted(struct core *c, uint64_t index, uint64_t term) {
  if (c->role == CORE_CANDIDATE && c->self_win_index != 0 && term == c->term &&
      index >= c->self_win_index) {
    core_become_leader(c);
  }
}

static void core_tally_record(struct core *c, uint64_t from, bool granted) {
  for (uint32_t i = 0; i < c->tally_n; i++) {
    if (c->tally_ids[i] == from) {
      return; /* a duplicate answer counts once */
    }
  }
  if (c->tally_n < CORE_PEERS_MAX + 1) {
    c->tally_ids[c->tally_n] = from;
    c->tally_granted[c->tally_n] = granted;
    c->tally_n++;
  }
}

/* +1: won, -1: lost, 0: undecided. Only voters of our configuration count. */
static int core_tally_result(const struct core *c) {
  uint32_t yes = 0;
  uint32_t no = 0;
  for (uint32_t i = 0; i < c->tally_n; i++) {
    if (core_config_is_voter(&c->config, c->tally_ids[i])) {
      yes += c->tally_granted[i];
      no += !c->tally_granted[i];
    }
  }
  uint32_t q = core_quorum(c);
  return yes >= q ? 1 : (no > c->config.voters_n - q ? -1 : 0);
}

/* Figure 2, candidates: "On conversion to candidate, start election:
 * increment currentTerm, vote for self, reset election timer, send
 * RequestVote RPCs to all other servers." A pre-candidate (thesis 9.6)
 * asks the same question for term + 1 without changing its term or vote. */
void core_election_campaign(struct core *c, bool pre, bool transfer) {
  uint64_t term = c->term + 1;
  c->tally_n = 0;
  c->leader = 0;
  if (pre) {
    c->role = CORE_PRE_CANDIDATE;
  } else {
    c->role = CORE_CANDIDATE;
    c->term = term;
    c->vote = c->id;
    c->recv_active = false;
  }
  core_election_timer_reset(c);
  core_trace(c, "%s for term %" PRIu64 " (last %" PRIu64 "/%" PRIu64 ")",
             pre ? "pre-vote" : "campaign", term, core_log_last(&c->log),
             core_log_last_term(&c->log));
  c->self_win_index = 0;
  core_tally_record(c, c->id, true);
  if (core_tally_result(c) > 0) {
    if (pre) {
      core_election_campaign(c, false, transfer);
    } else {
      core_election_self_win(c);
    }
    return;
  }
  for (uint32_t i = 0; i < c->config.voters_n; i++) {
    uint64_t to = c->config.voters[i];
    if (to == c->id) {
      continue;
    }
    struct core_msg *m =
        core_msg_push(c, pre ? CORE_MSG_PRE_VOTE : CORE_MSG_VOTE, to);
    m->term = term;
    m->vote.last_index = core_log_last(&c->log);
    m->vote.last_term = core_log_last_term(&c->log);
    m->vote.transfer = transfer;
  }
}

/* Learners and replicas outside the configuration never campaign. One
 * exception keeps the cluster live: a voter whose removal is appended but
 * not committed may hold the only up-to-date log the old configuration
 * needs, so it may still campaign; it wins only with a quorum of the new
 * configuration (which does not count it) and then, as a leader outside
 * its configuration, steps down once the change commits (thesis 4.2.2). */
static bool core_election_promotable(const struct core *c) {
  if (core_config_is_voter(&c->config, c->id)) {
    return true;
  }
  return c->config_index > c->commit && c->config.voters_n > 0 &&
         core_config_is_voter(
             &core_log_config_at(&c->log, c->config_index - 1)->config, c->id);
}

/* Figure 2, followers and candidates: "If election timeout elapses without
 * receiving AppendEntries RPC from current leader or granting vote to
 * candidate: convert to candidate." */
void core_election_tick(struct core *c) {
  if (c->election_elapsed < UINT32_MAX) {
    c->election_elapsed++;
  }
  if (c->election_elapsed < c->election_timeout || c->self_win_index != 0) {
    return; /* a lone winner waits for its disk, not for a new term */
  }
  if (!core_election_promotable(c)) {
    return;
  }
  core_election_campaign(c, !c->o.disable_pre_vote, false);
}

/* The shell saw our leader's process die (CORE_EVENT_PEER_GONE). Leader
 * stickiness (thesis 4.2.3) exists so that a replica does not help depose
 * a leader that is still heard from; this one will never be heard from
 * again, so we forget it as our leader (our vote in this term stays) and
 * start the election the timeout would have started, now. Voters that
 * saw the same grant our pre-vote; those that did not refuse it until
 * their own timeout, exactly as before. */
void core_election_peer_gone(struct core *c, uint64_t id) {
  if (c->role != CORE_FOLLOWER || id == 0 || id != c->leader) {
    return;
  }
  core_trace(c, "leader %" PRIu64 " is gone: campaign now", id);
  c->leader = 0;
  if (!core_election_promotable(c) || c->self_win_index != 0) {
    core_election_timer_reset(c);
    return;
  }
  core_election_campaign(c, !c->o.disable_pre_vote, false);
}

/* Figure 2, RequestVote receiver: "If votedFor is null or candidateId, and
 * candidate's log is at least as up-to-date as receiver's log, grant
 * vote." The vote is part of the hard state of the update that carries the
 * reply, so it is durable before the reply leaves. */
void core_recv_vote(struct core *c, const struct core_msg *m) {
  bool can = c->vote == m->from || (c->vote == 0 && c->leader == 0);
  bool granted =
      can && core_log_up_to_date(c, m->vote.last_index, m->vote.last_term);
  if (granted) {
    c->vote = m->from;
    core_election_timer_reset(c);
  }
  core_trace(c, "%s vote for %" PRIu64 " (last %" PRIu64 "/%" PRIu64 ")",
             granted ? "grant" : "refuse", m->from, m->vote.last_index,
             m->vote.last_term);
  struct core_msg *r = core_msg_push(c, CORE_MSG_VOTE_REPLY, m->from);
  r->vote_reply.granted = granted;
}

/* Thesis 9.6: a replica grants a pre-vote for term T if T would be a new
 * term for it (or it could still vote in T), the candidate's log is up to
 * date, and it has not heard from a leader within the election timeout.
 * Nothing changes here: no term, no vote, no timer. */
void core_recv_pre_vote(struct core *c, const struct core_msg *m) {
  bool can = m->term > c->term || c->vote == m->from ||
             (c->vote == 0 && c->leader == 0);
  bool granted = can && !core_election_in_lease(c) &&
                 core_log_up_to_date(c, m->vote.last_index, m->vote.last_term);
  core_trace(c, "%s pre-vote for %" PRIu64 " in term %" PRIu64,
             granted ? "grant" : "refuse", m->from, m->term);
  struct core_msg *r = core_msg_push(c, CORE_MSG_PRE_VOTE_REPLY, m->from);
  r->term = granted ? m->term : c->term;
  r->vote_reply.granted = granted;
}

/* Figure 2, candidates: "If votes received from majority of servers:
 * become leader." A majority of refusals ends the campaign early. */
void core_recv_vote_reply(struct core *c, const struct core_msg *m) {
  if (c->role != CORE_CANDIDATE || c->self_win_index != 0) {
    return;
  }
  core_tally_record(c, m->from, m->vote_reply.granted);
  int result = core_tally_result(c);
  if (result > 0) {
    core_become_leader(c);
  } else if (result < 0) {
    core_become_follower(c, c->term, 0);
  }
}

/* A grant carries the term we asked about (our term + 1), a refusal the
 * replier's term: a higher one makes us a follower in it (etcd raft), so
 * a pre-candidate behind in terms cannot be refused forever. */
void core_recv_pre_vote_reply(struct core *c, const struct core_msg *m) {
  bool granted = m->vote_reply.granted;
  if (!granted && m->term > c->term) {
    core_become_follower(c, m->term, 0);
    return;
  }
  if (c->role != CORE_PRE_CANDIDATE ||
      m->term != (granted ? c->term + 1 : c->term)) {
    return;
  }
  core_tally_record(c, m->from, granted);
  int result = core_tally_result(c);
  if (result > 0) {
    core_election_campaign(c, false, false);
  } else if (result < 0) {
    core_become_follower(c, c->term, 0);
  }
}

/* Thesis 3.10: the transfer target starts an election at once, skipping
 * PreVote, with a flag that lets it past leader stickiness. */
void core_recv_timeout_now(struct core *c, const struct core_msg *m) {
  if (c->role == CORE_LEADER || !core_election_promotable(c)) {
    return;
  }
  core_trace(c, "timeout-now from %" PRIu64, m->from);
  core_election_campaign(c, false, true);
}
