/* The simulator's engine: the event queue in simulated milliseconds, the
 * replicas' lives (start, crash, restart, ticks), the core_step wrapper
 * that checks invariants after every step, and the two-phase run. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

#include "synod.h"

/* ---------------------------------------------------------- event queue */

static bool ev_before(const struct sim_ev *a, const struct sim_ev *b) {
  return a->at_ms < b->at_ms || (a->at_ms == b->at_ms && a->seq < b->seq);
}

static void heap_push(struct sim *s, struct sim_ev ev) {
  if (s->heap_n == s->heap_cap) {
    s->heap_cap = s->heap_cap ? s->heap_cap * 2 : 1024;
    s->heap = realloc(s->heap, s->heap_cap * sizeof(*s->heap));
    if (s->heap == NULL) {
      abort();
    }
  }
  uint64_t i = s->heap_n++;
  while (i > 0 && ev_before(&ev, &s->heap[(i - 1) / 2])) {
    s->heap[i] = s->heap[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  s->heap[i] = ev;
}

static struct sim_ev heap_pop(struct sim *s) {
  struct sim_ev top = s->heap[0];
  struct sim_ev last = s->heap[--s->heap_n];
  uint64_t i = 0;
  for (;;) {
    uint64_t c = 2 * i + 1;
    if (c >= s->heap_n) {
      break;
    }
    if (c + 1 < s->heap_n && ev_before(&s->heap[c + 1], &s->heap[c])) {
      c++;
    }
    if (!ev_before(&s->heap[c], &last)) {
      break;
    }
    s->heap[i] = s->heap[c];
    i = c;
  }
  if (s->heap_n > 0) {
    s->heap[i] = last;
  }
  return top;
}

void sim_schedule(struct sim *s, uint64_t at_ms, enum sim_ev_kind kind,
                  uint64_t id, struct sim_msg *msg) {
  struct sim_ev ev = {.at_ms = at_ms < s->now_ms ? s->now_ms : at_ms,
                      .seq = s->ev_seq++,
                      .kind = kind,
                      .id = (uint32_t)id,
                      .gen = id <= SIM_IDS_MAX ? s->r[id].gen : 0,
                      .msg = msg};
  heap_push(s, ev);
}

void sim_peer_gone_later(struct sim *s, uint64_t to, uint64_t gone) {
  struct sim_ev ev = {.at_ms =
                          s->now_ms + sim_rand_range(&s->gone_rand, 0, 100),
                      .seq = s->ev_seq++,
                      .kind = SIM_EV_PEER_GONE,
                      .id = (uint32_t)to,
                      .gen = s->r[to].gen,
                      .peer = (uint32_t)gone};
  heap_push(s, ev);
}

void sim_schedule_cmsg(struct sim *s, uint64_t at_ms, struct sim_cmsg *m) {
  struct sim_ev ev = {.at_ms = at_ms < s->now_ms ? s->now_ms : at_ms,
                      .seq = s->ev_seq++,
                      .kind = SIM_EV_CMSG,
                      .cmsg = m};
  heap_push(s, ev);
}

void sim_schedule_client(struct sim *s, uint64_t at_ms, uint32_t c,
                         uint32_t peer) {
  struct sim_ev ev = {.at_ms = at_ms < s->now_ms ? s->now_ms : at_ms,
                      .seq = s->ev_seq++,
                      .kind = SIM_EV_CLIENT,
                      .id = c,
                      .peer = peer};
  heap_push(s, ev);
}

static void schedule_link_up(struct sim *s, uint64_t at_ms, uint64_t from,
                             uint64_t to) {
  struct sim_ev ev = {.at_ms = at_ms,
                      .seq = s->ev_seq++,
                      .kind = SIM_EV_LINK_UP,
                      .id = (uint32_t)from,
                      .peer = (uint32_t)to};
  heap_push(s, ev);
}

/* ------------------------------------------------------------- stepping */

static void retire_pending(struct sim *s);

static void trace_event(struct sim *s, struct sim_replica *rep,
                        const struct core_event *ev) {
  char buf[256];
  switch (ev->type) {
  case CORE_EVENT_RECEIVE:
    sim_msg_describe(ev->msg, buf, sizeof(buf));
    sim_trace(s, rep->id, "recv %s", buf);
    break;
  case CORE_EVENT_TICK:
    sim_trace(s, rep->id, "tick");
    break;
  case CORE_EVENT_PROPOSE:
    sim_trace(s, rep->id, "propose %" PRIu32 " entries", ev->propose.entries_n);
    break;
  case CORE_EVENT_PERSISTED:
    sim_trace(s, rep->id, "persisted %" PRIu64 "/%" PRIu64, ev->persisted.index,
              ev->persisted.term);
    break;
  case CORE_EVENT_READ_INDEX:
    sim_trace(s, rep->id, "read_index ctx %" PRIu64, ev->read_ctx);
    break;
  case CORE_EVENT_SNAPSHOT_TAKEN:
    sim_trace(s, rep->id,
              "snapshot_taken %" PRIu64 "/%" PRIu64 " %" PRIu64 " bytes",
              ev->snapshot.index, ev->snapshot.term, ev->snapshot.size_bytes);
    break;
  case CORE_EVENT_RELEASE:
    sim_trace(s, rep->id, "release through %" PRIu64, ev->release);
    break;
  default:
    sim_trace(s, rep->id, "event %d id %" PRIu64, (int)ev->type, ev->id);
    break;
  }
}

static bool update_empty(const struct core_update *up) {
  return !up->hard_state_changed && up->truncate_from == 0 &&
         up->entries_n == 0 && !up->snapshot_chunk_present && up->msgs_n == 0 &&
         !up->snapshot_install_present && up->committed_n == 0 &&
         up->reads_n == 0 && !up->snapshot_wanted;
}

int sim_step_core(struct sim *s, struct sim_replica *rep,
                  const struct core_event *ev) {
  struct core_update up;
  s->stats.steps++;
  if (s->opts.trace) {
    trace_event(s, rep, ev);
  }
  int rv = core_step(rep->core, ev, &up);
  if (rv != 0) {
    snprintf(s->errmsg, sizeof(s->errmsg), "%s: %s", synod_strerror(rv),
             core_errmsg(rep->core));
    sim_trace(s, rep->id, "-> %s", s->errmsg);
    return rv;
  }
  s->proposed_first = up.proposed_first;
  s->proposed_last = up.proposed_last;
  bool was_leader = rep->role == CORE_LEADER;
  sim_check_step(s, rep, &up);
  if (s->opts.fsm) {
    sim_server_role(s, rep, was_leader);
    sim_subs_role(s, rep);
  }
  if (!update_empty(&up)) {
    sim_disk_enqueue(s, rep, sim_update_copy(s, rep, &up, s->opts.fsm));
  }
  return 0;
}

int sim_event(struct sim *s, uint64_t id, const struct core_event *ev) {
  if (id == 0 || id > SIM_IDS_MAX || !s->r[id].up) {
    return -1;
  }
  int rv = sim_step_core(s, &s->r[id], ev);
  retire_pending(s);
  return rv;
}

/* ------------------------------------------------------------- replicas */

static uint64_t next_tick_ms(const struct sim *s,
                             const struct sim_replica *rep) {
  uint64_t period_us = (uint64_t)s->opts.tick_ms * 1000000;
  return rep->tick_base_ms +
         (rep->ticks + 1) * period_us / rep->clock_permille / 1000;
}

static void core_options_fill(struct sim *s, struct sim_replica *rep,
                              struct core_options *o) {
  const struct sim_options *so = &s->opts;
  memset(o, 0, sizeof(*o));
  o->id = rep->id;
  o->seed = sim_mix(so->seed ^ (rep->id << 40) ^ ((uint64_t)rep->gen << 20));
  o->election_ticks = so->election_ticks;
  o->heartbeat_ticks = so->heartbeat_ticks;
  o->disable_pre_vote = so->disable_pre_vote;
  o->disable_check_quorum = so->disable_check_quorum;
  o->append_entries_max = so->append_entries_max;
  o->snapshot_chunk_bytes = so->chunk_bytes;
  o->snapshot_entries = so->snapshot_entries;
  o->snapshot_spread_percent = so->snapshot_spread_percent;
  o->snapshot_slots = so->snapshot_slots;
  o->inflight_appends_max = so->inflight_appends_max;
  o->snapshot_keep_entries = so->snapshot_keep_entries;
  o->promote_lag_entries = so->promote_lag_entries;
  o->held_bytes_min = s->release_keep;
  if (so->trace) {
    o->trace_cb = sim_trace_core_cb;
    o->trace_arg = s;
  }
}

/* Restores the state machine from the durable snapshot, if any. */
static void fsm_restore(struct sim *s, struct sim_replica *rep) {
  struct sim_durable *d = &rep->dur;
  memset(&rep->fsm, 0, sizeof(rep->fsm));
  if (s->opts.fsm) {
    sim_server_start(s, rep);
  }
  if (d->snap.index == 0) {
    return;
  }
  const struct sim_image *img = sim_image_find(d, d->snap.index);
  const uint8_t *app = NULL;
  uint32_t app_len = 0;
  if (img == NULL ||
      !sim_fsm_decode(img->bytes, img->len, &rep->fsm, &app, &app_len) ||
      rep->fsm.applied != d->snap.index) {
    sim_fail(s, "r%" PRIu64 ": durable snapshot %" PRIu64 " does not decode",
             rep->id, d->snap.index);
    return;
  }
  if (s->opts.fsm) {
    sim_server_restore(s, rep, app, app_len, d->snap.index);
  }
}

void sim_replica_start(struct sim *s, struct sim_replica *rep) {
  struct sim_durable *d = &rep->dur;
  /* The entries after the snapshot (the store keeps some behind it). */
  struct core_entry *es = calloc(d->log.n + 1, sizeof(*es));
  uint32_t n = 0;
  for (uint64_t i = 0; i < d->log.n; i++) {
    const struct sim_entry *e = &d->log.e[i];
    if (d->log.first + i <= d->snap.index) {
      continue;
    }
    es[n++] = (struct core_entry){.term = e->term,
                                  .index = d->log.first + i,
                                  .type = e->type,
                                  .data = e->data,
                                  .len = e->len};
  }
  struct core_restore restore = {
      .hard_state = d->hs, .snapshot = d->snap, .entries = es, .entries_n = n};
  struct core_options o;
  rep->gen++;
  core_options_fill(s, rep, &o);
  char errmsg[SYNOD_ERRMSG_MAX] = "";
  rep->core = core_new(&o, &restore, errmsg);
  free(es);
  if (rep->core == NULL) {
    sim_fail(s, "r%" PRIu64 ": core_new failed on its durable state: %s",
             rep->id, errmsg);
    return;
  }
  rep->up = true;
  rep->ticks = 0;
  rep->tick_base_ms = s->now_ms;
  fsm_restore(s, rep);
  sim_log_copy(&rep->mirror, &d->log);
  sim_log_compact(&rep->mirror, d->snap.index);
  sim_disk_checkpoint(rep); /* opening the store replays its file */
  rep->release_sent = 0;
  rep->role = core_role(rep->core);
  rep->term = core_term(rep->core);
  rep->commit = core_commit_index(rep->core);
  rep->props_n = 0;
  rep->props_head = 0;
  rep->reads_n = 0;
  sim_trace(s, rep->id,
            "start: term %" PRIu64 " vote %" PRIu64 " commit %" PRIu64
            " snapshot %" PRIu64 " log %" PRIu64 "..%" PRIu64,
            d->hs.term, d->hs.vote, d->hs.commit, d->snap.index, d->log.first,
            sim_log_last(&d->log));
  sim_schedule(s, next_tick_ms(s, rep), SIM_EV_TICK, rep->id, NULL);
}

void sim_crash(struct sim *s, uint64_t id) {
  struct sim_replica *rep = &s->r[id];
  if (!rep->up) {
    return;
  }
  sim_trace(s, id, "crash (%s)",
            rep->q_head ? "unfinished writes lost" : "no writes pending");
  core_free(rep->core);
  rep->core = NULL;
  rep->up = false;
  rep->gen++;
  sim_disk_drop(rep);
  rep->props_n = 0;
  rep->props_head = 0;
  rep->reads_n = 0;
  sim_server_stop(rep);
  s->stats.crashes++;
  for (uint64_t p = 1; s->opts.peer_gone && p <= s->ids_n; p++) {
    if (p != id && s->r[p].up) {
      sim_peer_gone_later(s, p, id);
    }
  }
}

void sim_restart(struct sim *s, uint64_t id) {
  struct sim_replica *rep = &s->r[id];
  if (rep->up || !rep->exists || rep->retired) {
    return;
  }
  sim_replica_start(s, rep);
}

static void replica_create(struct sim *s, uint64_t id, bool bootstrap) {
  struct sim_replica *rep = &s->r[id];
  memset(rep, 0, sizeof(*rep));
  rep->id = id;
  rep->exists = true;
  sim_durable_init(&rep->dur);
  sim_log_init(&rep->mirror, 1, false);
  uint32_t spread = s->clock_spread_permille;
  rep->clock_permille =
      (uint32_t)sim_rand_range(&s->rand, 1000 - spread, 1000 + spread * 5 / 4);
  if (bootstrap) {
    struct core_config cfg = {.voters_n = s->opts.replicas};
    for (uint32_t i = 0; i < s->opts.replicas; i++) {
      cfg.voters[i] = i + 1;
    }
    uint8_t buf[CORE_CONFIG_ENCODED_MAX];
    size_t len = core_config_encode(&cfg, buf);
    struct core_entry e = {.term = 1,
                           .index = 1,
                           .type = CORE_ENTRY_CONFIG,
                           .data = buf,
                           .len = len};
    sim_log_put(&rep->dur.log, &e, 1);
  }
  if (id > s->ids_n) {
    s->ids_n = id;
  }
  sim_replica_start(s, rep);
}

uint64_t sim_spawn(struct sim *s) {
  if (s->ids_n >= SIM_IDS_MAX) {
    return 0;
  }
  uint64_t id = s->ids_n + 1;
  replica_create(s, id, false);
  sim_trace(s, id, "spawned, empty");
  return id;
}

void sim_retire(struct sim *s, uint64_t id) {
  sim_crash(s, id);
  s->r[id].retired = true;
  sim_trace(s, id, "retired");
}

/* --------------------------------------------------------------- links */

void sim_link(struct sim *s, uint64_t from, uint64_t to, bool up) {
  s->link_down[from][to] = up ? 0 : 1;
}

void sim_isolate(struct sim *s, uint64_t id) {
  for (uint64_t p = 1; p <= SIM_IDS_MAX; p++) {
    if (p != id) {
      sim_net_cut(s, id, p);
      sim_net_cut(s, p, id);
    }
  }
}

void sim_heal(struct sim *s) {
  memset(s->link_down, 0, sizeof(s->link_down));
  memset(s->clog_until, 0, sizeof(s->clog_until));
  for (uint32_t c = 1; s->cl != NULL && c <= s->cl_n; c++) {
    memset(s->cl[c].cut, 0, sizeof(s->cl[c].cut));
  }
}

void sim_cut_for(struct sim *s, uint64_t from, uint64_t to, uint64_t ms) {
  sim_net_cut(s, from, to);
  schedule_link_up(s, s->now_ms + ms, from, to);
}

void sim_filter(struct sim *s, sim_filter_cb cb, void *arg) {
  s->filter = cb;
  s->filter_arg = arg;
}

/* ----------------------------------------------------------- lifecycle */

struct sim *sim_new(const struct sim_options *opts) {
  struct sim *s = calloc(1, sizeof(*s));
  if (s == NULL) {
    abort();
  }
  s->opts = *opts;
  s->chunk_explicit = opts->chunk_bytes != 0;
  if (s->opts.clients > 0 || s->opts.channels || s->opts.groups ||
      s->opts.keys) {
    s->opts.fsm = true;
  }
  if (s->opts.replicas == 0) {
    s->opts.replicas = 3;
  }
  sim_rand_seed(&s->rand, s->opts.seed);
  sim_rand_seed(&s->gone_rand, sim_mix(s->opts.seed ^ 0x90e5eed5ull));
  sim_rand_seed(&s->ckpt_rand, sim_mix(s->opts.seed ^ 0xc4ec4b01ull));
  sim_rand_seed(&s->sink_rand, sim_mix(s->opts.seed ^ 0x5171c0deull));
  s->digest = SIM_HASH_INIT;
  /* A pure function of the seed (no draw), so that older seeds replay
   * the same faults: a third of the runs never release entries, a third
   * release all they may, a third keep 4 KiB. */
  static const uint64_t keeps[3] = {0, 1, 4096};
  s->release_keep = keeps[sim_mix(s->opts.seed ^ 0x5e1ea5eull) % 3];
  sim_workload_pick(s);
  sim_trace(s, 0,
            "options: election %" PRIu32 " heartbeat %" PRIu32
            " ticks, chunk %" PRIu32 " bytes, snapshot every %" PRIu64
            " (+%" PRIu32 "%%) keeping %" PRIu64 ", release keeping %" PRIu64
            " bytes, clients %" PRIu32 " names %" PRIu32 " window %" PRIu32,
            s->opts.election_ticks, s->opts.heartbeat_ticks,
            s->opts.chunk_bytes, s->opts.snapshot_entries,
            s->opts.snapshot_spread_percent, s->opts.snapshot_keep_entries,
            s->release_keep, s->opts.clients, s->names_n, s->fsm_window);
  for (uint64_t id = 1; id <= s->opts.replicas; id++) {
    replica_create(s, id, true);
  }
  if (s->opts.workload || s->opts.bench_batch) {
    sim_schedule(s, 1, SIM_EV_WORKLOAD, 0, NULL);
  }
  if (s->f.nemesis_ms) {
    sim_schedule(s, s->f.nemesis_ms, SIM_EV_NEMESIS, 0, NULL);
  }
  if (s->opts.fsm) {
    sim_clients_init(s);
  }
  if (s->opts.channels) {
    sim_channels_init(s);
  }
  sim_keys_init(s);
  s->next_check_step = SIM_CHECK_EVERY;
  return s;
}

void sim_free(struct sim *s) {
  if (s == NULL) {
    return;
  }
  for (uint64_t id = 1; id <= SIM_IDS_MAX; id++) {
    struct sim_replica *rep = &s->r[id];
    if (!rep->exists) {
      continue;
    }
    core_free(rep->core);
    sim_disk_drop(rep);
    sim_durable_close(&rep->dur);
    sim_log_close(&rep->mirror);
    free(rep->props);
    free(rep->reads);
    sim_server_stop(rep);
    free(rep->srv.conns);
  }
  for (uint64_t i = 0; i < s->heap_n; i++) {
    free(s->heap[i].msg);
    free(s->heap[i].cmsg);
  }
  free(s->sub_reads); /* each ended with its replica's engine */
  sim_clients_free(s);
  sim_channels_free(s);
  sim_keys_free(s);
  sim_groups_free(s);
  sim_observe_free(s);
  free(s->heap);
  free(s->g);
  free(s->leader_of);
  free(s->acked);
  free(s);
}

static void on_tick(struct sim *s, struct sim_replica *rep) {
  struct core_event ev = {.type = CORE_EVENT_TICK};
  rep->ticks++;
  int rv = sim_step_core(s, rep, &ev);
  if (rv != 0) {
    sim_fail(s, "r%" PRIu64 ": TICK failed: %s", rep->id, s->errmsg);
  }
  if (s->release_keep > 0 && rep->up && !s->failed &&
      rep->store_readable != rep->release_sent) {
    /* node_tick_cb: persist_release */
    struct core_event rel = {.type = CORE_EVENT_RELEASE,
                             .release = rep->store_readable};
    rep->release_sent = rep->store_readable;
    if (sim_step_core(s, rep, &rel) != 0) {
      sim_fail(s, "r%" PRIu64 ": RELEASE %" PRIu64 " failed: %s", rep->id,
               rel.release, s->errmsg);
    }
  }
  if (s->opts.fsm && rep->up && core_role(rep->core) == CORE_LEADER &&
      !s->failed) {
    sim_server_tick(s, rep); /* node_tick_cb: requests_tick */
  }
  if (rep->up && !s->failed) {
    sim_subs_tick(s, rep); /* node_tick_cb: subs_tick */
  }
  sim_schedule(s, next_tick_ms(s, rep), SIM_EV_TICK, rep->id, NULL);
}

static bool ev_current(const struct sim *s, const struct sim_ev *ev) {
  const struct sim_replica *rep = &s->r[ev->id];
  return rep->up && rep->gen == ev->gen;
}

static void dispatch(struct sim *s, struct sim_ev *ev) {
  switch (ev->kind) {
  case SIM_EV_TICK:
    if (ev_current(s, ev)) {
      on_tick(s, &s->r[ev->id]);
    }
    break;
  case SIM_EV_DELIVER:
    sim_net_deliver(s, ev->msg);
    break;
  case SIM_EV_DISK:
    if (ev_current(s, ev)) {
      sim_disk_done(s, &s->r[ev->id]);
    }
    break;
  case SIM_EV_WORKLOAD:
    sim_workload_tick(s);
    break;
  case SIM_EV_NEMESIS:
    sim_nemesis_tick(s);
    break;
  case SIM_EV_RESTART:
    if (s->r[ev->id].gen == ev->gen) {
      sim_restart(s, ev->id);
    }
    break;
  case SIM_EV_LINK_UP:
    if (s->link_down[ev->id][ev->peer] > 0) {
      s->link_down[ev->id][ev->peer]--;
    }
    break;
  case SIM_EV_CMSG:
    sim_cnet_deliver(s, ev->cmsg);
    break;
  case SIM_EV_PEER_GONE:
    if (ev_current(s, ev)) {
      struct core_event ce = {.type = CORE_EVENT_PEER_GONE, .id = ev->peer};
      sim_trace(s, ev->id, "told r%u is gone", ev->peer);
      if (sim_step_core(s, &s->r[ev->id], &ce) != 0) {
        sim_fail(s, "r%u: PEER_GONE %u returned %s", ev->id, ev->peer,
                 s->errmsg);
      }
    }
    break;
  case SIM_EV_SUB:
    sim_sub_poll(s, ev->id);
    break;
  case SIM_EV_WATCH:
    sim_keys_watch_poll(s, ev->id);
    break;
  case SIM_EV_GMEMBER:
    sim_groups_poll(s, (uint32_t)ev->id);
    break;
  case SIM_EV_CLIENT:
    if (ev->peer != 0) {
      sim_client_unclog(s, ev->id, ev->peer);
    } else {
      sim_client_poll(s, ev->id);
    }
    break;
  }
}

/* Retirement waits for the end of the event that applied the removal, so
 * no replica is freed while its update is being carried out. */
static void retire_pending(struct sim *s) {
  for (uint64_t id = 1; id <= s->ids_n; id++) {
    if (s->r[id].retire_pending) {
      s->r[id].retire_pending = false;
      sim_retire(s, id);
    }
  }
}

bool sim_step(struct sim *s) {
  if (s->failed || s->heap_n == 0) {
    return false;
  }
  struct sim_ev ev = heap_pop(s);
  s->now_ms = ev.at_ms;
  s->stats.events++;
  dispatch(s, &ev);
  retire_pending(s);
  if (s->stats.steps >= s->next_check_step) {
    s->next_check_step = s->stats.steps + SIM_CHECK_EVERY;
    sim_check_durability(s);
  }
  return !s->failed;
}

bool sim_run_for(struct sim *s, uint64_t ms) {
  uint64_t end = s->now_ms + ms;
  while (s->heap_n > 0 && s->heap[0].at_ms <= end) {
    if (!sim_step(s)) {
      return false;
    }
  }
  s->now_ms = end;
  return !s->failed;
}

bool sim_run_until(struct sim *s, bool (*done)(struct sim *, void *), void *arg,
                   uint64_t timeout_ms) {
  uint64_t end = s->now_ms + timeout_ms;
  while (!done(s, arg)) {
    if (s->heap_n == 0 || s->heap[0].at_ms > end) {
      return false;
    }
    if (!sim_step(s)) {
      return false;
    }
  }
  return true;
}

/* -------------------------------------------------------- the two phases */

/* Phase 2 begins: no loss, no partitions, no clogs, quick disks, every
 * crashed replica back. */
static void heal_all(struct sim *s) {
  s->phase2 = true;
  s->f.loss_ppm = 0;
  s->f.dup_ppm = 0;
  s->f.delay_min_ms = 1;
  s->f.delay_max_ms = 5;
  s->f.disk_min_ms = 0;
  s->f.disk_max_ms = 2;
  s->f.disk_slow_ppm = 0;
  s->f.config_weight = 0;
  s->f.transfer_weight = 0;
  sim_heal(s);
  sim_trace(s, 0, "phase 2: healed");
  for (uint64_t id = 1; id <= s->ids_n; id++) {
    sim_restart(s, id);
  }
}

struct marker {
  uint64_t index;
  uint64_t term;
  uint64_t hash;
  uint64_t leader;
  uint64_t at_ms;
  uint32_t tries;
};

/* Proposes the marker through the current leader when there is none in
 * flight, or the last one has had 5 s to commit. */
static void marker_propose(struct sim *s, struct marker *mk) {
  uint64_t l = sim_leader(s);
  if (l == 0) {
    return;
  }
  /* The marker stands while its leader stays in office: proposing a new
   * one every few seconds would put each at the end of a backlog and move
   * the goal away from a cluster that is draining it. */
  if (mk->index != 0 && l == mk->leader &&
      core_term(s->r[l].core) == mk->term) {
    return;
  }
  if (mk->index == 0 && mk->tries > 0 && s->now_ms < mk->at_ms + 20) {
    return; /* refused a moment ago (EBUSY, transfer); try again soon */
  }
  char payload[64];
  int len = snprintf(payload, sizeof(payload), "marker %" PRIu32, mk->tries);
  struct core_entry e = {.type = CORE_ENTRY_NORMAL,
                         .data = (const uint8_t *)payload,
                         .len = (size_t)len};
  struct core_event ev = {.type = CORE_EVENT_PROPOSE,
                          .propose = {.entries = &e, .entries_n = 1}};
  mk->leader = l;
  mk->at_ms = s->now_ms;
  mk->tries++;
  if (sim_step_core(s, &s->r[l], &ev) != 0) {
    mk->index = 0;
    return;
  }
  mk->index = s->proposed_first;
  mk->term = core_term(s->r[l].core);
  mk->hash = sim_entry_hash(e.type, e.data, e.len);
  sim_trace(s, l, "marker proposed at %" PRIu64 "/%" PRIu64, mk->index,
            mk->term);
}

/* True once the marker is committed and applied on every voter of the
 * current leader's configuration. */
static bool marker_done(const struct sim *s, const struct marker *mk) {
  uint64_t l = sim_leader(s);
  if (mk->index == 0 || mk->index > s->g_n || l == 0) {
    return false;
  }
  const struct sim_global *g = &s->g[mk->index];
  if (g->term != mk->term || g->hash != mk->hash) {
    return false;
  }
  const struct core_config *cfg = core_config(s->r[l].core);
  for (uint32_t i = 0; i < cfg->voters_n; i++) {
    const struct sim_replica *v = &s->r[cfg->voters[i]];
    if (!v->up || v->fsm.applied < mk->index) {
      return false;
    }
  }
  return true;
}

static void liveness_fail(struct sim *s, const struct marker *mk) {
  char buf[512];
  size_t n = 0;
  for (uint64_t id = 1; id <= s->ids_n && n < sizeof(buf) - 80; id++) {
    const struct sim_replica *r = &s->r[id];
    if (!r->up) {
      continue;
    }
    n += (size_t)snprintf(
        buf + n, sizeof(buf) - n,
        " r%" PRIu64 ":%s/t%" PRIu64 "/c%" PRIu64 "/a%" PRIu64, id,
        core_role_name(core_role(r->core)), core_term(r->core),
        core_commit_index(r->core), r->fsm.applied);
  }
  sim_fail(s,
           "liveness: after healing, no new entry was applied on every "
           "live voter within %d ms (marker %" PRIu64 "/%" PRIu64 ", %" PRIu32
           " tries);%s",
           SIM_LIVENESS_MS, mk->index, mk->term, mk->tries, buf);
}

static bool leader_caught_up(struct sim *s, void *arg) {
  (void)arg;
  uint64_t l = sim_leader(s);
  return l != 0 && s->r[l].fsm.applied >= s->g_n;
}

/* Clients stop; the leader applies everything committed, then the
 * history is checked against its state machine. */
static void clients_finish(struct sim *s) {
  s->clients_stopped = true;
  if (!sim_run_until(s, leader_caught_up, NULL, 10000)) {
    if (!s->failed) {
      sim_fail(s,
               "liveness: after healing, no leader applied the whole "
               "committed log (%" PRIu64 " entries) within 10 s",
               s->g_n);
    }
    return;
  }
  if (s->opts.push && !sim_run_until(s, sim_psubs_caught_up, NULL, 30000)) {
    if (!s->failed) {
      char why[256];
      sim_psubs_describe(s, why, sizeof why);
      sim_fail(s,
               "liveness: after healing, the push subscribers did not "
               "catch up within 30 s: %s",
               why);
    }
    return;
  }
  sim_check_history(s);
}

static void phase2(struct sim *s) {
  heal_all(s);
  struct marker mk = {0};
  uint64_t deadline = s->now_ms + SIM_LIVENESS_MS;
  while (!s->failed && s->now_ms < deadline) {
    marker_propose(s, &mk);
    if (marker_done(s, &mk)) {
      sim_trace(s, mk.leader, "phase 2: marker applied everywhere");
      sim_check_durability(s);
      sim_check_final(s);
      if (s->opts.fsm && !s->failed) {
        clients_finish(s);
      }
      return;
    }
    if (!sim_step(s)) {
      break;
    }
  }
  if (!s->failed) {
    liveness_fail(s, &mk);
  }
}

int sim_run(struct sim *s) {
  while (s->stats.steps < s->opts.steps) {
    if (!sim_step(s)) {
      break;
    }
  }
  if (!s->failed) {
    phase2(s);
  }
  return s->failed ? 1 : 0;
}

/* -------------------------------------------------------------- queries */

uint64_t sim_now_ms(const struct sim *s) {
  return s->now_ms;
}

bool sim_failed(const struct sim *s) {
  return s->failed;
}

const char *sim_failure(const struct sim *s) {
  return s->failure;
}

const struct sim_stats *sim_stats(const struct sim *s) {
  return &s->stats;
}

struct core *sim_core(struct sim *s, uint64_t id) {
  if (id == 0 || id > SIM_IDS_MAX || !s->r[id].up) {
    return NULL;
  }
  return s->r[id].core;
}

uint64_t sim_leader(const struct sim *s) {
  uint64_t best = 0;
  uint64_t best_term = 0;
  for (uint64_t id = 1; id <= s->ids_n; id++) {
    const struct sim_replica *r = &s->r[id];
    if (r->up && core_role(r->core) == CORE_LEADER &&
        core_term(r->core) > best_term) {
      best = id;
      best_term = core_term(r->core);
    }
  }
  return best;
}

uint64_t sim_applied(const struct sim *s, uint64_t id) {
  return s->r[id].fsm.applied;
}

bool sim_committed(const struct sim *s, uint64_t index, uint64_t *term) {
  if (index == 0 || index > s->g_n) {
    return false;
  }
  *term = s->g[index].term;
  return true;
}
