/* The invariants, checked after every step: one leader per term, committed
 * prefixes agree, Leader Completeness, durable majorities, persist before
 * send, monotonic terms, votes and commit indexes, exactly-once in-order
 * apply, acknowledged writes kept, linearizable reads. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

static void *grow(void *p, uint64_t *cap, uint64_t need, size_t size) {
  if (need <= *cap) {
    return p;
  }
  uint64_t c = *cap ? *cap : 256;
  while (c < need) {
    c *= 2;
  }
  p = realloc(p, c * size);
  if (p == NULL) {
    abort();
  }
  memset((char *)p + *cap * size, 0, (c - *cap) * size);
  *cap = c;
  return p;
}

/* (1) At most one leader per term, over the whole run. */
static void check_leader(struct sim *s, struct sim_replica *rep,
                         uint64_t term) {
  s->leader_of =
      grow(s->leader_of, &s->leader_of_cap, term + 1, sizeof(uint64_t));
  if (s->leader_of[term] == 0) {
    s->leader_of[term] = rep->id;
    s->stats.leaders++;
    sim_trace(s, rep->id, "leader of term %" PRIu64, term);
  } else if (s->leader_of[term] != rep->id) {
    sim_fail(s, "two leaders in term %" PRIu64 ": r%" PRIu64 " and r%" PRIu64,
             term, s->leader_of[term], rep->id);
  }
}

/* (3) Leader Completeness: a new leader's log (or its snapshot) holds
 * every entry applied anywhere. */
static void check_leader_complete(struct sim *s, struct sim_replica *rep) {
  const struct sim_log *l = &rep->mirror;
  /* A stale leader (its votes arrived late) may lead a term lower than
   * one whose leader already committed entries; Raft promises it only the
   * entries committed in lower terms, which the global record cannot tell
   * apart. Check the leaders of the highest term seen so far. */
  for (uint64_t t = rep->term + 1; t < s->leader_of_cap; t++) {
    if (s->leader_of[t] != 0) {
      sim_trace(s, rep->id,
                "Leader Completeness not checked: r%" PRIu64
                " led the higher term %" PRIu64,
                s->leader_of[t], t);
      return;
    }
  }
  for (uint64_t i = l->first > 0 ? l->first : 1; i <= s->g_n; i++) {
    const struct sim_entry *e = sim_log_get(l, i);
    const struct sim_global *g = &s->g[i];
    if (e == NULL) {
      sim_fail(s,
               "Leader Completeness: r%" PRIu64 " leads term %" PRIu64
               " without committed entry %" PRIu64 "/%" PRIu64
               " (its log ends at %" PRIu64 ")",
               rep->id, rep->term, i, g->term, sim_log_last(l));
      return;
    }
    if (e->term != g->term || e->hash != g->hash) {
      sim_fail(s,
               "Leader Completeness: r%" PRIu64 " leads term %" PRIu64
               " with %" PRIu64 "/%" PRIu64 " where %" PRIu64 "/%" PRIu64
               " was committed",
               rep->id, rep->term, i, e->term, i, g->term);
      return;
    }
  }
}

/* Keeps the mirror of the core's log in step with its update. */
static void mirror_update(struct sim *s, struct sim_replica *rep,
                          const struct core_update *up, uint64_t commit_was) {
  struct sim_log *l = &rep->mirror;
  if (up->truncate_from != 0) {
    if (up->truncate_from <= commit_was) {
      sim_fail(s,
               "r%" PRIu64 " truncates its log from %" PRIu64 " though %" PRIu64
               " is committed",
               rep->id, up->truncate_from, commit_was);
      return;
    }
    sim_log_truncate(l, up->truncate_from);
  }
  if (up->entries_n > 0 && !sim_log_put(l, up->entries, up->entries_n)) {
    sim_fail(s,
             "r%" PRIu64 " appends %" PRIu64 "..%" PRIu64 " to a log %" PRIu64
             "..%" PRIu64,
             rep->id, up->entries[0].index,
             up->entries[up->entries_n - 1].index, l->first, sim_log_last(l));
  }
  if (up->snapshot_install_present) {
    sim_log_compact(l, up->snapshot_install.index);
  }
}

void sim_check_step(struct sim *s, struct sim_replica *rep,
                    const struct core_update *up) {
  struct core *c = rep->core;
  enum core_role role = core_role(c);
  uint64_t term = core_term(c);
  uint64_t commit = core_commit_index(c);
  uint64_t commit_was = rep->commit;
  if (term < rep->term) { /* (7), in memory */
    sim_fail(s, "r%" PRIu64 ": term went back from %" PRIu64 " to %" PRIu64,
             rep->id, rep->term, term);
  }
  if (commit < rep->commit) { /* (6) */
    sim_fail(
        s, "r%" PRIu64 ": commit index went back from %" PRIu64 " to %" PRIu64,
        rep->id, rep->commit, commit);
  }
  if (up->committed_n > 0 &&
      up->committed[up->committed_n - 1].index > commit) {
    sim_fail(s,
             "r%" PRIu64 ": hands out entry %" PRIu64
             " to apply beyond its commit index %" PRIu64,
             rep->id, up->committed[up->committed_n - 1].index, commit);
  }
  mirror_update(s, rep, up, commit_was);
  /* Data the core gave back must read back from the store: the released
   * entries it still holds lie within what the simulated store can read
   * without waiting (a compaction's point is no entry it holds). */
  uint64_t released = core_released_index(rep->core);
  if (released > rep->store_readable &&
      released != core_first_index(rep->core) - 1) {
    sim_fail(s,
             "r%" PRIu64 ": entries through %" PRIu64
             " gave their data back, but the store reads back only through "
             "%" PRIu64,
             rep->id, released, rep->store_readable);
  }
  bool became_leader = role == CORE_LEADER && rep->role != CORE_LEADER;
  rep->role = role;
  rep->term = term;
  rep->commit = commit;
  if (role == CORE_LEADER) {
    check_leader(s, rep, term);
    if (became_leader) {
      check_leader_complete(s, rep);
    }
  }
}

/* (7) and (8), as the hard state becomes durable. */
void sim_check_hard_state(struct sim *s, struct sim_replica *rep,
                          const struct core_hard_state *hs) {
  const struct core_hard_state *old = &rep->dur.hs;
  if (hs->term < old->term) {
    sim_fail(
        s, "r%" PRIu64 ": durable term goes back from %" PRIu64 " to %" PRIu64,
        rep->id, old->term, hs->term);
  } else if (hs->term == old->term && old->vote != 0 && hs->vote != old->vote) {
    sim_fail(s,
             "r%" PRIu64 ": durable vote in term %" PRIu64
             " changes from r%" PRIu64 " to r%" PRIu64,
             rep->id, hs->term, old->vote, hs->vote);
  }
}

/* (2) Committed prefixes agree: every applied entry matches what was
 * applied at its index anywhere, down to the hash chain. */
void sim_check_apply(struct sim *s, struct sim_replica *rep,
                     const struct sim_commit *c, uint64_t chain) {
  if (c->index <= s->g_n) {
    const struct sim_global *g = &s->g[c->index];
    if (g->term != c->term || g->hash != c->hash || g->chain != chain) {
      sim_fail(s,
               "committed prefixes disagree: r%" PRIu64 " applies %" PRIu64
               "/%" PRIu64 " (hash %016" PRIx64 ") where %" PRIu64 "/%" PRIu64
               " (hash %016" PRIx64 ") was applied before%s",
               rep->id, c->index, c->term, c->hash, c->index, g->term, g->hash,
               g->term == c->term && g->hash == c->hash ? " (prefix differs)"
                                                        : "");
    }
    return;
  }
  if (c->index != s->g_n + 1) {
    sim_fail(s,
             "r%" PRIu64 " applies %" PRIu64 " but nothing was applied "
             "anywhere after %" PRIu64,
             rep->id, c->index, s->g_n);
    return;
  }
  s->g = grow(s->g, &s->g_cap, c->index + 1, sizeof(*s->g));
  s->g[c->index] =
      (struct sim_global){.term = c->term, .hash = c->hash, .chain = chain};
  s->g_n = c->index;
  s->stats.committed = s->g_n;
  if (c->type == CORE_ENTRY_CONFIG) {
    sim_config_applied(s, &c->config);
  }
}

static uint64_t durable_last(const struct sim_durable *d) {
  uint64_t last = sim_log_last(&d->log);
  return last > d->snap.index ? last : d->snap.index;
}

/* Persist before send: an acknowledgement or a vote leaves only once what
 * it promises is durable. */
void sim_check_sent(struct sim *s, struct sim_replica *rep,
                    const struct core_msg *m) {
  const struct sim_durable *d = &rep->dur;
  if (m->from != rep->id) {
    sim_fail(s, "r%" PRIu64 " sends a message from r%" PRIu64, rep->id,
             m->from);
  } else if (m->type == CORE_MSG_APPEND_REPLY && !m->append_reply.reject &&
             m->append_reply.index > durable_last(d)) {
    sim_fail(s,
             "r%" PRIu64 " acknowledges entries through %" PRIu64
             " but only %" PRIu64 " are durable",
             rep->id, m->append_reply.index, durable_last(d));
  } else if (m->type == CORE_MSG_VOTE_REPLY && m->vote_reply.granted &&
             (d->hs.term != m->term || d->hs.vote != m->to)) {
    sim_fail(s,
             "r%" PRIu64 " grants its vote to r%" PRIu64 " in term %" PRIu64
             " before it is durable (durable: term %" PRIu64 " vote r%" PRIu64
             ")",
             rep->id, m->to, m->term, d->hs.term, d->hs.vote);
  }
}

static bool durable_has(const struct sim_durable *d, uint64_t i,
                        const struct sim_global *g) {
  if (i <= d->snap.index) {
    return true;
  }
  const struct sim_entry *e = sim_log_get(&d->log, i);
  return e != NULL && e->term == g->term && e->hash == g->hash;
}

/* (3) Nothing committed is lost: every entry applied anywhere is durable
 * on enough voters of the latest applied configuration that every quorum
 * of it includes one. */
void sim_check_durability(struct sim *s) {
  const struct core_config *cfg = &s->cfg_applied;
  uint32_t n = cfg->voters_n;
  if (n == 0) {
    return;
  }
  uint32_t need = n - n / 2; /* n - quorum + 1 */
  uint64_t from = UINT64_MAX;
  for (uint32_t v = 0; v < n; v++) {
    uint64_t snap = s->r[cfg->voters[v]].dur.snap.index;
    from = snap < from ? snap : from;
  }
  for (uint64_t i = from + 1; i <= s->g_n; i++) {
    uint32_t holders = 0;
    for (uint32_t v = 0; v < n; v++) {
      holders += durable_has(&s->r[cfg->voters[v]].dur, i, &s->g[i]);
    }
    if (holders < need) {
      sim_fail(s,
               "committed entry %" PRIu64 "/%" PRIu64 " is durable on "
               "only %" PRIu32 " of %" PRIu32 " voters",
               i, s->g[i].term, holders, n);
      return;
    }
  }
}

/* (5) Every acknowledged proposal is in the final committed log. */
void sim_check_final(struct sim *s) {
  for (uint64_t i = 0; i < s->acked_n; i++) {
    const struct sim_proposal *p = &s->acked[i];
    if (p->index > s->g_n || s->g[p->index].term != p->term ||
        s->g[p->index].hash != p->hash) {
      sim_fail(s,
               "acknowledged proposal %" PRIu64 "/%" PRIu64
               " is not in the final committed log",
               p->index, p->term);
      return;
    }
  }
}
