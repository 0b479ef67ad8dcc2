/* What happens to the cluster: the seed's choice of fault rates (swarm
 * mode), the client workload (proposals, linearizable reads, membership
 * changes, leadership transfers) and the nemesis (crashes, partitions,
 * clogs). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

#include "synod.h"

static uint64_t pick(struct sim *s, uint64_t lo, uint64_t hi) {
  return sim_rand_range(&s->rand, lo, hi);
}

static uint32_t or_default(uint32_t v, uint32_t d) {
  return v ? v : d;
}

/* TigerBeetle's swarm testing: every rate comes from the seed, so some
 * seeds hammer one fault and others never see it. */
static void pick_swarm(struct sim *s) {
  struct sim_faults *f = &s->f;
  struct sim_options *o = &s->opts;
  static const uint32_t spans[] = {3, 10, 40, 120};
  f->loss_ppm = pick(s, 0, 3) == 0 ? 0 : (uint32_t)pick(s, 0, 300000);
  f->dup_ppm = pick(s, 0, 2) == 0 ? 0 : (uint32_t)pick(s, 0, 100000);
  f->delay_min_ms = (uint32_t)pick(s, 0, 5);
  f->delay_max_ms = f->delay_min_ms + spans[pick(s, 0, 3)];
  f->disk_min_ms = (uint32_t)pick(s, 0, 3);
  f->disk_max_ms = f->disk_min_ms + spans[pick(s, 0, 2)];
  f->disk_slow_ppm = (uint32_t)pick(s, 0, 30000);
  f->nemesis_ms = (uint32_t)pick(s, 30, 1500);
  f->crash_weight = (uint32_t)pick(s, 0, 10);
  f->partition_weight = (uint32_t)pick(s, 0, 10);
  f->clog_weight = (uint32_t)pick(s, 0, 10);
  f->fault_ms_max = (uint32_t)pick(s, 100, 4000);
  f->workload_ms = (uint32_t)pick(s, 1, 30);
  f->batch_max = (uint32_t)pick(s, 1, 16);
  f->bytes_max = (uint32_t)pick(s, 8, 600);
  f->read_weight = (uint32_t)pick(s, 0, 20);
  f->config_weight = (uint32_t)pick(s, 0, 6);
  f->transfer_weight = (uint32_t)pick(s, 0, 4);
  s->clock_spread_permille = (uint32_t)pick(s, 0, 200);
  o->election_ticks = or_default(o->election_ticks, (uint32_t)pick(s, 5, 15));
  o->heartbeat_ticks = or_default(o->heartbeat_ticks, (uint32_t)pick(s, 1, 2));
  o->chunk_bytes = or_default(o->chunk_bytes, (uint32_t)pick(s, 64, 256));
  if (o->snapshot_entries == 0) {
    o->snapshot_entries = pick(s, 30, 200);
  }
  /* Half the seeds spread snapshots as synodd does; from the seed, not a
   * draw, so that older seeds replay the runs they recorded. */
  if (o->snapshot_spread_percent == 0 && (o->seed & 1)) {
    o->snapshot_spread_percent = 50;
  }
  if (o->snapshot_keep_entries == 0) {
    o->snapshot_keep_entries = pick(s, 1, 60);
  }
  if (o->promote_lag_entries == 0) {
    o->promote_lag_entries = pick(s, 4, 64);
  }
  o->append_entries_max =
      or_default(o->append_entries_max, (uint32_t)pick(s, 1, 64));
}

/* Fault-free: the timing in opts, or quick defaults. */
static void pick_calm(struct sim *s) {
  struct sim_faults *f = &s->f;
  struct sim_options *o = &s->opts;
  f->delay_min_ms = o->delay_min_ms;
  f->delay_max_ms = o->delay_max_ms;
  f->disk_min_ms = o->disk_min_ms;
  f->disk_max_ms = o->disk_max_ms;
  if (o->bench_batch == 0 && f->delay_max_ms == 0) {
    f->delay_min_ms = 1;
    f->delay_max_ms = 3;
  }
  f->workload_ms = 5;
  f->batch_max = 4;
  f->bytes_max = 64;
  f->read_weight = 5;
  o->election_ticks = or_default(o->election_ticks, 10);
  o->heartbeat_ticks = or_default(o->heartbeat_ticks, 1);
}

void sim_workload_pick(struct sim *s) {
  s->opts.tick_ms = or_default(s->opts.tick_ms, 10);
  if (s->opts.swarm) {
    pick_swarm(s);
  } else {
    pick_calm(s);
  }
  if (s->f.delay_max_ms < s->f.delay_min_ms) {
    s->f.delay_max_ms = s->f.delay_min_ms;
  }
  if (s->f.disk_max_ms < s->f.disk_min_ms) {
    s->f.disk_max_ms = s->f.disk_min_ms;
  }
  if (s->opts.fsm) {
    sim_clients_pick(s); /* last: runs without clients keep their seeds */
  }
  if (s->opts.channels) {
    sim_channels_pick(s); /* after: runs without channels keep theirs */
  }
  if (s->opts.keys) {
    sim_keys_pick(s); /* after: runs without keys keep theirs */
  }
  if (s->opts.groups) {
    sim_groups_pick(s); /* after: runs without groups keep theirs */
  }
}

/* ------------------------------------------------------------ proposals */

static void props_record(struct sim_replica *rep, uint64_t index, uint64_t term,
                         uint64_t hash) {
  /* A new entry at index replaces whatever this replica proposed at index
   * or later before: its log was cut there. */
  while (rep->props_n > rep->props_head &&
         rep->props[rep->props_n - 1].index >= index) {
    rep->props_n--;
  }
  if (rep->props_head > 0 && rep->props_n == rep->props_cap) {
    rep->props_n -= rep->props_head;
    memmove(rep->props, rep->props + rep->props_head,
            rep->props_n * sizeof(*rep->props));
    rep->props_head = 0;
  }
  if (rep->props_n == rep->props_cap) {
    rep->props_cap = rep->props_cap ? rep->props_cap * 2 : 64;
    rep->props = realloc(rep->props, rep->props_cap * sizeof(*rep->props));
    if (rep->props == NULL) {
      abort();
    }
  }
  rep->props[rep->props_n++] =
      (struct sim_proposal){.index = index, .term = term, .hash = hash};
}

int sim_propose(struct sim *s, uint64_t id, uint32_t n, uint32_t bytes,
                uint64_t *first, uint64_t *last) {
  struct sim_replica *rep = &s->r[id];
  if (!rep->up || n == 0 || n > 256) {
    return -1;
  }
  if (bytes < 24) {
    bytes = 24;
  }
  struct core_entry es[256];
  uint8_t *buf = malloc((size_t)n * bytes);
  for (uint32_t i = 0; i < n; i++) {
    uint8_t *p = buf + (size_t)i * bytes;
    uint64_t seq = ++rep->seq;
    int k = snprintf((char *)p, bytes, "r%" PRIu64 ".%" PRIu32 ".%" PRIu64 " ",
                     id, rep->gen, seq);
    for (uint32_t j = (uint32_t)k; j < bytes; j++) {
      p[j] = (uint8_t)('a' + (seq + j) % 26);
    }
    es[i] =
        (struct core_entry){.type = CORE_ENTRY_NORMAL, .data = p, .len = bytes};
  }
  struct core_event ev = {.type = CORE_EVENT_PROPOSE,
                          .propose = {.entries = es, .entries_n = n}};
  int rv = sim_step_core(s, rep, &ev);
  if (rv == 0) {
    uint64_t term = core_term(rep->core);
    if (s->proposed_last - s->proposed_first + 1 != n) {
      sim_fail(s,
               "r%" PRIu64 ": PROPOSE of %" PRIu32 " entries returned "
               "indexes %" PRIu64 "..%" PRIu64,
               id, n, s->proposed_first, s->proposed_last);
    }
    for (uint32_t i = 0; i < n && !s->failed; i++) {
      props_record(rep, s->proposed_first + i, term,
                   sim_entry_hash(es[i].type, es[i].data, es[i].len));
    }
    s->stats.proposed += n;
    if (first != NULL) {
      *first = s->proposed_first;
    }
    if (last != NULL) {
      *last = s->proposed_last;
    }
  } else if (rv != SYNOD_ENOTLEADER && rv != SYNOD_EBUSY) {
    sim_fail(s, "r%" PRIu64 ": PROPOSE returned %s", id, s->errmsg);
  }
  free(buf);
  return rv;
}

/* A proposal is acknowledged when its proposer applies exactly that entry
 * at its index, as a server would then answer its client. */
void sim_workload_applied(struct sim *s, struct sim_replica *rep,
                          const struct sim_commit *c) {
  while (rep->props_head < rep->props_n &&
         rep->props[rep->props_head].index < c->index) {
    rep->props_head++; /* lost: cut from the log or skipped by a snapshot */
  }
  if (rep->props_head == rep->props_n ||
      rep->props[rep->props_head].index != c->index) {
    return;
  }
  struct sim_proposal p = rep->props[rep->props_head++];
  if (p.term != c->term || p.hash != c->hash) {
    return; /* another leader's entry took its place: not acknowledged */
  }
  s->stats.acked++;
  if (p.index > s->acked_max) {
    s->acked_max = p.index;
  }
  if (s->opts.bench_batch == 0) {
    if (s->acked_n == s->acked_cap) {
      s->acked_cap = s->acked_cap ? s->acked_cap * 2 : 256;
      s->acked = realloc(s->acked, s->acked_cap * sizeof(*s->acked));
      if (s->acked == NULL) {
        abort();
      }
    }
    s->acked[s->acked_n++] = p;
  }
}

/* ---------------------------------------------------------------- reads */

static void read_issue(struct sim *s, struct sim_replica *rep) {
  uint64_t ctx = ++s->read_ctx;
  struct core_event ev = {.type = CORE_EVENT_READ_INDEX, .read_ctx = ctx};
  int rv = sim_step_core(s, rep, &ev);
  if (rv != 0) {
    if (rv != SYNOD_ENOTLEADER && rv != SYNOD_EBUSY) {
      sim_fail(s, "r%" PRIu64 ": READ_INDEX returned %s", rep->id, s->errmsg);
    }
    return;
  }
  if (rep->reads_n == rep->reads_cap) {
    rep->reads_cap = rep->reads_cap ? rep->reads_cap * 2 : 16;
    rep->reads = realloc(rep->reads, rep->reads_cap * sizeof(*rep->reads));
    if (rep->reads == NULL) {
      abort();
    }
  }
  rep->reads[rep->reads_n++] =
      (struct sim_read){.ctx = ctx, .acked_max = s->acked_max};
}

/* Linearizable reads: the read point covers every write acknowledged
 * before the read was asked. */
void sim_workload_read(struct sim *s, struct sim_replica *rep,
                       const struct core_read *rd) {
  uint32_t i = 0;
  while (i < rep->reads_n && rep->reads[i].ctx != rd->ctx) {
    i++;
  }
  if (i == rep->reads_n) {
    sim_fail(s,
             "r%" PRIu64 " answers read ctx %" PRIu64
             " that is not in flight (answered twice?)",
             rep->id, rd->ctx);
    return;
  }
  struct sim_read r = rep->reads[i];
  rep->reads[i] = rep->reads[--rep->reads_n];
  if (rd->error == SYNOD_ENOTLEADER) {
    return;
  }
  if (rd->error != 0) {
    sim_fail(s, "r%" PRIu64 ": read ctx %" PRIu64 " failed with %d", rep->id,
             rd->ctx, rd->error);
  } else if (rd->index < r.acked_max) {
    sim_fail(s,
             "linearizability: r%" PRIu64 " serves read ctx %" PRIu64
             " at index %" PRIu64 " though %" PRIu64
             " was acknowledged before it was asked",
             rep->id, rd->ctx, rd->index, r.acked_max);
  } else {
    s->stats.reads_ok++;
  }
}

/* ----------------------------------------------------------- membership */

/* Retires members that a committed configuration removed. */
void sim_config_applied(struct sim *s, const struct core_config *cfg) {
  s->cfg_applied = *cfg;
  for (uint64_t id = 1; id <= s->ids_n; id++) {
    struct sim_replica *rep = &s->r[id];
    bool member = false;
    for (uint32_t i = 0; i < cfg->voters_n; i++) {
      member |= cfg->voters[i] == id;
    }
    for (uint32_t i = 0; i < cfg->learners_n; i++) {
      member |= cfg->learners[i] == id;
    }
    if (member) {
      rep->was_member = true;
    } else if (rep->was_member && !rep->retired) {
      rep->retire_pending = true;
    }
  }
}

static uint64_t random_member(struct sim *s, const struct core_config *cfg,
                              bool voters_only) {
  uint32_t n = cfg->voters_n + (voters_only ? 0 : cfg->learners_n);
  if (n == 0) {
    return 0;
  }
  uint32_t i = (uint32_t)pick(s, 0, n - 1);
  return i < cfg->voters_n ? cfg->voters[i] : cfg->learners[i - cfg->voters_n];
}

static void membership_change(struct sim *s, struct sim_replica *l) {
  const struct core_config *cfg = core_config(l->core);
  uint32_t members = cfg->voters_n + cfg->learners_n;
  bool add = members < 5 && pick(s, 0, 1) == 0;
  struct core_event ev = {.type = CORE_EVENT_ADD_MEMBER};
  if (add) {
    ev.id = sim_spawn(s);
    if (ev.id == 0) {
      return;
    }
  } else {
    ev.type = CORE_EVENT_REMOVE_MEMBER;
    ev.id = random_member(s, cfg, false);
    bool voter = false;
    for (uint32_t i = 0; i < cfg->voters_n; i++) {
      voter |= cfg->voters[i] == ev.id;
    }
    if (ev.id == 0 || (voter && cfg->voters_n <= 3)) {
      return;
    }
  }
  sim_trace(s, l->id, "%s r%" PRIu64, add ? "add" : "remove", ev.id);
  int rv = sim_step_core(s, l, &ev);
  if (rv == 0) {
    s->stats.config_changes++;
  } else if (rv != SYNOD_ECONFIG && rv != SYNOD_EBUSY &&
             rv != SYNOD_ENOTLEADER) {
    sim_fail(s, "r%" PRIu64 ": %s r%" PRIu64 " returned %s", l->id,
             add ? "ADD_MEMBER" : "REMOVE_MEMBER", ev.id, s->errmsg);
  }
  if (rv != 0 && add) {
    sim_retire(s, ev.id); /* never a member; its id is not reused */
  }
}

static void transfer(struct sim *s, struct sim_replica *l) {
  const struct core_config *cfg = core_config(l->core);
  uint64_t to = random_member(s, cfg, true);
  if (to == 0 || to == l->id) {
    return;
  }
  struct core_event ev = {.type = CORE_EVENT_TRANSFER, .id = to};
  int rv = sim_step_core(s, l, &ev);
  if (rv == 0) {
    s->stats.transfers++;
  } else if (rv != SYNOD_EBUSY && rv != SYNOD_ECONFIG &&
             rv != SYNOD_ENOTLEADER) {
    sim_fail(s, "r%" PRIu64 ": TRANSFER to r%" PRIu64 " returned %s", l->id, to,
             s->errmsg);
  }
}

/* ---------------------------------------------------------- the drivers */

/* A replica that believes it leads (there may be a stale one), at random. */
static struct sim_replica *some_leader(struct sim *s) {
  uint64_t ids[SIM_IDS_MAX];
  uint32_t n = 0;
  for (uint64_t id = 1; id <= s->ids_n; id++) {
    if (s->r[id].up && core_role(s->r[id].core) == CORE_LEADER) {
      ids[n++] = id;
    }
  }
  return n == 0 ? NULL : &s->r[ids[pick(s, 0, n - 1)]];
}

void sim_workload_tick(struct sim *s) {
  if (s->opts.bench_batch) {
    sim_bench_tick(s);
    return;
  }
  struct sim_faults *f = &s->f;
  sim_schedule(s, s->now_ms + pick(s, 1, 2 * f->workload_ms), SIM_EV_WORKLOAD,
               0, NULL);
  struct sim_replica *l = some_leader(s);
  if (l == NULL) {
    return;
  }
  uint64_t total = 100 + f->read_weight + f->config_weight + f->transfer_weight;
  uint64_t x = pick(s, 0, total - 1);
  if (x < 100) {
    uint32_t n = (uint32_t)pick(s, 1, f->batch_max);
    sim_propose(s, l->id, n, (uint32_t)pick(s, 8, f->bytes_max), NULL, NULL);
  } else if ((x -= 100) < f->read_weight) {
    read_issue(s, l);
  } else if ((x -= f->read_weight) < f->config_weight) {
    membership_change(s, l);
  } else {
    transfer(s, l);
  }
}

static struct sim_replica *some_live(struct sim *s) {
  uint64_t ids[SIM_IDS_MAX];
  uint32_t n = 0;
  for (uint64_t id = 1; id <= s->ids_n; id++) {
    if (s->r[id].up) {
      ids[n++] = id;
    }
  }
  return n == 0 ? NULL : &s->r[ids[pick(s, 0, n - 1)]];
}

/* A partition: one replica cut off, one direction of one link, or the
 * cluster split in two at random. */
static void partition(struct sim *s, uint64_t ms) {
  uint64_t kind = pick(s, 0, 2);
  uint64_t a = pick(s, 1, s->ids_n);
  s->stats.partitions++;
  for (uint64_t b = 1; b <= s->ids_n; b++) {
    if (b == a && kind != 2) {
      continue;
    }
    if (kind == 0) {
      sim_trace(s, a, "partition: isolated from r%" PRIu64, b);
      sim_cut_for(s, a, b, ms);
      sim_cut_for(s, b, a, ms);
    } else if (kind == 1) {
      sim_trace(s, a, "partition: cannot reach r%" PRIu64, b);
      sim_cut_for(s, a, b, ms);
      return;
    } else {
      for (uint64_t c = b + 1; c <= s->ids_n; c++) {
        if (pick(s, 0, 1) == 0) {
          sim_trace(s, b, "partition: split from r%" PRIu64, c);
          sim_cut_for(s, b, c, ms);
          sim_cut_for(s, c, b, ms);
        }
      }
    }
  }
}

void sim_nemesis_tick(struct sim *s) {
  struct sim_faults *f = &s->f;
  if (s->phase2) {
    return;
  }
  sim_schedule(s, s->now_ms + pick(s, f->nemesis_ms / 2, f->nemesis_ms * 3 / 2),
               SIM_EV_NEMESIS, 0, NULL);
  uint64_t total = f->crash_weight + f->partition_weight + f->clog_weight +
                   s->client_part_weight;
  if (total == 0) {
    return;
  }
  uint64_t x = pick(s, 0, total - 1);
  uint64_t ms = pick(s, 10, f->fault_ms_max);
  if (x < f->crash_weight) {
    struct sim_replica *rep = some_live(s);
    if (rep != NULL) {
      sim_crash(s, rep->id);
      sim_schedule(s, s->now_ms + ms, SIM_EV_RESTART, rep->id, NULL);
    }
  } else if (x < f->crash_weight + f->partition_weight) {
    partition(s, ms);
  } else if (x < f->crash_weight + f->partition_weight + f->clog_weight) {
    uint64_t a = pick(s, 1, s->ids_n);
    uint64_t b = pick(s, 1, s->ids_n);
    s->clog_until[a][b] = s->now_ms + ms / 2;
    sim_trace(s, a, "clog to r%" PRIu64 " for %" PRIu64 " ms", b, ms / 2);
  } else {
    sim_clients_nemesis(s, ms);
  }
}

/* Bench: keep the leader's pipeline full, batch after batch. */
void sim_bench_tick(struct sim *s) {
  sim_schedule(s, s->now_ms + 1, SIM_EV_WORKLOAD, 0, NULL);
  uint64_t l = sim_leader(s);
  if (l == 0) {
    return;
  }
  struct sim_replica *rep = &s->r[l];
  uint32_t batch = s->opts.bench_batch;
  uint64_t window = batch * 8 > 512 ? batch * 8 : 512;
  uint64_t last = core_last_index(rep->core);
  while (last - rep->fsm.applied < window) {
    uint64_t first;
    if (sim_propose(s, l, batch, 64, &first, &last) != 0) {
      break;
    }
  }
}
