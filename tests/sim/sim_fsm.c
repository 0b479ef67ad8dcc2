/* The replicated state machine of the simulation: a hash chain over every
 * applied entry, its snapshot images (serialised, padded, checksummed, with
 * the real state machine's image inside when opts.fsm is on), and the
 * apply step of an update (install, committed entries, reads, snapshot). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

#define IMAGE_MAGIC 0x534e41505359534eULL /* "NSYSPANS" */
#define IMAGE_WORDS 7                     /* header words before the ids */

uint64_t sim_chain_next(uint64_t chain, uint64_t index, uint64_t term,
                        uint64_t hash) {
  return sim_hash_u64(sim_hash_u64(sim_hash_u64(chain, index), term), hash);
}

static void put64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) {
    p[i] = (uint8_t)(v >> (8 * i));
  }
}

static uint64_t get64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) {
    v |= (uint64_t)p[i] << (8 * i);
  }
  return v;
}

static uint8_t pad_byte(uint64_t chain, uint64_t at) {
  return (uint8_t)(sim_mix(chain + at / 8) >> (8 * (at % 8)));
}

uint8_t *sim_fsm_encode(const struct sim_fsm *f, const uint8_t *app,
                        uint32_t app_len, uint32_t min_bytes, uint32_t *len) {
  const struct core_config *c = &f->config;
  uint32_t ids = c->voters_n + c->learners_n;
  uint32_t head = (IMAGE_WORDS + ids) * 8 + app_len;
  uint32_t n = head + 8 > min_bytes ? head + 8 : min_bytes;
  uint8_t *b = malloc(n);
  if (b == NULL) {
    abort();
  }
  /* Word 1: the image's length, and the fsm image's in the high half
   * (0 without the real fsm, so those images are as they always were). */
  uint64_t words[IMAGE_WORDS] = {IMAGE_MAGIC,
                                 n | (uint64_t)app_len << 32,
                                 f->applied,
                                 f->applied_term,
                                 f->count,
                                 f->chain,
                                 c->voters_n | (uint64_t)c->learners_n << 32};
  for (int i = 0; i < IMAGE_WORDS; i++) {
    put64(b + 8 * i, words[i]);
  }
  for (uint32_t i = 0; i < ids; i++) {
    uint64_t id = i < c->voters_n ? c->voters[i] : c->learners[i - c->voters_n];
    put64(b + 8 * (IMAGE_WORDS + i), id);
  }
  if (app_len > 0) {
    memcpy(b + (IMAGE_WORDS + ids) * 8, app, app_len);
  }
  for (uint32_t at = head; at < n - 8; at++) {
    b[at] = pad_byte(f->chain, at);
  }
  put64(b + n - 8, sim_hash_bytes(SIM_HASH_INIT, b, n - 8));
  *len = n;
  return b;
}

bool sim_fsm_decode(const uint8_t *b, uint64_t len, struct sim_fsm *f,
                    const uint8_t **app, uint32_t *app_len) {
  if (len < IMAGE_WORDS * 8 + 8 ||
      get64(b + len - 8) != sim_hash_bytes(SIM_HASH_INIT, b, len - 8) ||
      get64(b) != IMAGE_MAGIC || (get64(b + 8) & 0xffffffffULL) != len) {
    return false;
  }
  memset(f, 0, sizeof(*f));
  f->applied = get64(b + 16);
  f->applied_term = get64(b + 24);
  f->count = get64(b + 32);
  f->chain = get64(b + 40);
  uint64_t ns = get64(b + 48);
  uint64_t alen = get64(b + 8) >> 32;
  struct core_config *c = &f->config;
  c->voters_n = (uint32_t)ns;
  c->learners_n = (uint32_t)(ns >> 32);
  uint32_t ids = c->voters_n + c->learners_n;
  if (c->voters_n > CORE_MEMBERS_MAX || c->learners_n > CORE_MEMBERS_MAX ||
      alen > len || (IMAGE_WORDS + ids) * 8 + alen + 8 > len) {
    return false;
  }
  for (uint32_t i = 0; i < ids; i++) {
    uint64_t id = get64(b + 8 * (IMAGE_WORDS + i));
    if (i < c->voters_n) {
      c->voters[i] = id;
    } else {
      c->learners[i - c->voters_n] = id;
    }
  }
  uint64_t head = (IMAGE_WORDS + ids) * 8 + alen;
  for (uint64_t at = head; at < len - 8; at++) {
    if (b[at] != pad_byte(f->chain, at)) {
      return false;
    }
  }
  *app = b + (IMAGE_WORDS + ids) * 8;
  *app_len = (uint32_t)alen;
  return true;
}

static bool config_equal(const struct core_config *a,
                         const struct core_config *b) {
  if (a->voters_n != b->voters_n || a->learners_n != b->learners_n) {
    return false;
  }
  return memcmp(a->voters, b->voters, a->voters_n * sizeof(uint64_t)) == 0 &&
         memcmp(a->learners, b->learners, a->learners_n * sizeof(uint64_t)) ==
             0;
}

/* ----------------------------------------------------------- installing */

/* Checks the received image against the install's meta and the global
 * record; returns false (after failing the run) if anything disagrees. */
static bool install_ok(struct sim *s, struct sim_replica *rep,
                       const struct core_snapshot_meta *m, struct sim_fsm *f,
                       const uint8_t **app, uint32_t *app_len) {
  const struct sim_durable *d = &rep->dur;
  if (d->in_bytes == NULL || d->in_meta.index != m->index ||
      d->in_meta.term != m->term) {
    sim_fail(s,
             "r%" PRIu64 " installs snapshot %" PRIu64 "/%" PRIu64
             " but the image it received is %" PRIu64 "/%" PRIu64,
             rep->id, m->index, m->term, d->in_meta.index, d->in_meta.term);
    return false;
  }
  if (!sim_fsm_decode(d->in_bytes, d->in_meta.size_bytes, f, app, app_len) ||
      f->applied != m->index || f->applied_term != m->term) {
    sim_fail(s,
             "r%" PRIu64 " installs snapshot %" PRIu64 "/%" PRIu64
             " whose image is corrupt or for another index (%" PRIu64 ")",
             rep->id, m->index, m->term, f->applied);
    return false;
  }
  if (m->index < rep->fsm.applied) {
    sim_fail(s,
             "r%" PRIu64 " installs snapshot %" PRIu64
             " behind its applied index %" PRIu64,
             rep->id, m->index, rep->fsm.applied);
    return false;
  }
  if (m->index > s->g_n || s->g[m->index].chain != f->chain) {
    sim_fail(s,
             "r%" PRIu64 " installs snapshot %" PRIu64
             " that disagrees with the committed log (applied anywhere: "
             "%" PRIu64 ")",
             rep->id, m->index, s->g_n);
    return false;
  }
  if (!config_equal(&m->config, &f->config)) {
    sim_fail(s,
             "r%" PRIu64 ": snapshot %" PRIu64 " meta has %" PRIu32
             " voters, the state machine's configuration %" PRIu32,
             rep->id, m->index, m->config.voters_n, f->config.voters_n);
    return false;
  }
  return true;
}

static void install(struct sim *s, struct sim_replica *rep,
                    const struct core_snapshot_meta *m) {
  struct sim_durable *d = &rep->dur;
  struct sim_fsm f;
  const uint8_t *app;
  uint32_t app_len;
  if (!install_ok(s, rep, m, &f, &app, &app_len)) {
    return;
  }
  if (s->opts.fsm && !sim_server_restore(s, rep, app, app_len, m->index)) {
    return;
  }
  /* Raft Figure 13, 6-7: the log through the snapshot goes; entries after
   * it that did not match were already cut by truncate_from. */
  sim_log_compact(&d->log, m->index);
  sim_disk_checkpoint(rep); /* the snapshot's transaction carries it */
  const struct sim_entry *next = sim_log_get(&d->log, m->index + 1);
  if (next != NULL && next->term < m->term) {
    sim_fail(s,
             "r%" PRIu64 " installs snapshot %" PRIu64 "/%" PRIu64
             " but keeps a stale entry %" PRIu64 "/%" PRIu64 " after it",
             rep->id, m->index, m->term, m->index + 1, next->term);
    return;
  }
  d->snap = *m;
  sim_image_add(d, m->index, m->term, d->in_bytes,
                (uint32_t)d->in_meta.size_bytes);
  d->in_bytes = NULL;
  memset(&d->in_meta, 0, sizeof(d->in_meta));
  sim_trace(s, rep->id,
            "installed snapshot %" PRIu64 "/%" PRIu64 " (applied was %" PRIu64
            ")",
            m->index, m->term, rep->fsm.applied);
  rep->fsm = f;
  s->stats.snapshots_installed++;
  s->stats.installs[rep->id]++;
}

/* ------------------------------------------------------------- applying */

static void apply_one(struct sim *s, struct sim_replica *rep,
                      const struct sim_commit *c) {
  struct sim_fsm *f = &rep->fsm;
  if (c->index != f->applied + 1) {
    sim_fail(s,
             "r%" PRIu64 " is handed entry %" PRIu64 " to apply after %" PRIu64
             " (not exactly once, in order)",
             rep->id, c->index, f->applied);
    return;
  }
  if (c->type == CORE_ENTRY_CONFIG && !c->config_ok) {
    sim_fail(s,
             "r%" PRIu64 ": committed CONFIG entry %" PRIu64 " does not decode",
             rep->id, c->index);
    return;
  }
  uint64_t chain = sim_chain_next(f->chain, c->index, c->term, c->hash);
  bool first = c->index > s->g_n;
  sim_check_apply(s, rep, c, chain);
  f->chain = chain;
  f->applied = c->index;
  f->applied_term = c->term;
  f->count++;
  if (c->type == CORE_ENTRY_CONFIG) {
    f->config = c->config;
  }
  if (s->opts.fsm && !s->failed) {
    sim_server_apply(s, rep, c, first);
  }
  sim_workload_applied(s, rep, c);
}

void sim_apply_update(struct sim *s, struct sim_replica *rep,
                      const struct sim_update *u) {
  if (u->install_present) {
    install(s, rep, &u->install);
  }
  for (uint32_t i = 0; i < u->committed_n && !s->failed; i++) {
    apply_one(s, rep, &u->committed[i]);
  }
  if (rep->srv.subs_on && !s->failed) {
    subs_pump(&rep->srv.subs); /* apply_update */
  }
  for (uint32_t i = 0; i < u->reads_n && !s->failed; i++) {
    if (sim_subs_read(s, &u->reads[i])) {
      continue;
    }
    if (!s->opts.fsm || !sim_server_read(s, rep, &u->reads[i])) {
      sim_workload_read(s, rep, &u->reads[i]);
    }
  }
  if (s->opts.fsm && rep->up && !s->failed) {
    sim_server_reads_serve(s, rep);
  }
  if (s->opts.push && !s->failed) {
    sim_subs_reads_serve(s);
  }
  if (u->snapshot_wanted && !s->failed) {
    sim_take_snapshot(s, rep);
  }
}

void sim_take_snapshot(struct sim *s, struct sim_replica *rep) {
  struct sim_durable *d = &rep->dur;
  const struct sim_fsm *f = &rep->fsm;
  if (f->applied <= d->snap.index) {
    return;
  }
  uint32_t chunk = s->opts.chunk_bytes ? s->opts.chunk_bytes : 4096;
  uint32_t min = chunk * (uint32_t)sim_rand_range(&s->rand, 1, 5) +
                 (uint32_t)sim_rand_range(&s->rand, 0, chunk - 1);
  uint32_t len;
  uint8_t *app = NULL;
  size_t app_len = 0;
  if (s->opts.fsm) {
    fsm_snapshot_encode(rep->srv.fsm, &app, &app_len);
    sim_server_digest(s, rep, f->applied);
  }
  uint8_t *bytes = sim_fsm_encode(f, app, (uint32_t)app_len, min, &len);
  free(app);
  struct core_snapshot_meta meta = {.index = f->applied,
                                    .term = f->applied_term,
                                    .size_bytes = len,
                                    .config = f->config};
  d->snap = meta;
  sim_image_add(d, meta.index, meta.term, bytes, len);
  /* As the node's store does, keep as many entries behind the snapshot
   * as the core keeps (it may ask for them back, once released). */
  uint64_t keep =
      s->opts.snapshot_keep_entries ? s->opts.snapshot_keep_entries : 1024;
  if (meta.index > keep) {
    sim_log_compact(&d->log, meta.index - keep);
  }
  sim_disk_checkpoint(rep); /* the snapshot's transaction carries it */
  sim_log_compact(&rep->mirror, meta.index);
  s->stats.snapshots_taken++;
  struct core_event ev = {.type = CORE_EVENT_SNAPSHOT_TAKEN, .snapshot = meta};
  int rv = sim_step_core(s, rep, &ev);
  if (rv != 0) {
    sim_fail(s,
             "r%" PRIu64 ": SNAPSHOT_TAKEN %" PRIu64 "/%" PRIu64 " failed: %s",
             rep->id, meta.index, meta.term, s->errmsg);
  }
}
