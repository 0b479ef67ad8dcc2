/* Membership: configurations in the log, one change at a time, learners
 * that catch up before they are promoted to voters (thesis 4.1-4.2), and
 * the configuration's binary encoding. */
#include "core_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------- encoding */

/* Layout, little endian: u8 version (1), u8 voters_n, u8 learners_n, five
 * zero bytes, then voters_n + learners_n ids of 8 bytes each. */
#define CORE_CONFIG_VERSION 1
#define CORE_CONFIG_HEADER 8

static bool core_ids_valid(const uint64_t *ids, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    if (ids[i] == 0 || (i > 0 && ids[i] <= ids[i - 1])) {
      return false;
    }
  }
  return true;
}

/* At least one voter, no more than CORE_MEMBERS_MAX of each, ids non-zero,
 * sorted, and no id both a voter and a learner. */
bool core_config_valid(const struct core_config *cfg) {
  if (cfg->voters_n == 0 || cfg->voters_n > CORE_MEMBERS_MAX ||
      cfg->learners_n > CORE_MEMBERS_MAX ||
      !core_ids_valid(cfg->voters, cfg->voters_n) ||
      !core_ids_valid(cfg->learners, cfg->learners_n)) {
    return false;
  }
  for (uint32_t i = 0; i < cfg->learners_n; i++) {
    if (core_config_is_voter(cfg, cfg->learners[i])) {
      return false;
    }
  }
  return true;
}

static void core_put_u64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) {
    p[i] = (uint8_t)(v >> (8 * i));
  }
}

static uint64_t core_get_u64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) {
    v |= (uint64_t)p[i] << (8 * i);
  }
  return v;
}

size_t core_config_encode(const struct core_config *cfg, uint8_t *buf) {
  uint32_t v =
      cfg->voters_n < CORE_MEMBERS_MAX ? cfg->voters_n : CORE_MEMBERS_MAX;
  uint32_t l =
      cfg->learners_n < CORE_MEMBERS_MAX ? cfg->learners_n : CORE_MEMBERS_MAX;
  memset(buf, 0, CORE_CONFIG_HEADER);
  buf[0] = CORE_CONFIG_VERSION;
  buf[1] = (uint8_t)v;
  buf[2] = (uint8_t)l;
  uint8_t *p = buf + CORE_CONFIG_HEADER;
  for (uint32_t i = 0; i < v; i++, p += 8) {
    core_put_u64(p, cfg->voters[i]);
  }
  for (uint32_t i = 0; i < l; i++, p += 8) {
    core_put_u64(p, cfg->learners[i]);
  }
  return (size_t)(p - buf);
}

int core_config_decode(const uint8_t *buf, size_t len,
                       struct core_config *cfg) {
  if (buf == NULL || len < CORE_CONFIG_HEADER ||
      buf[0] != CORE_CONFIG_VERSION || buf[1] > CORE_MEMBERS_MAX ||
      buf[2] > CORE_MEMBERS_MAX ||
      len != CORE_CONFIG_HEADER + 8 * ((size_t)buf[1] + buf[2])) {
    return SYNOD_EMALFORMED;
  }
  for (int i = 3; i < CORE_CONFIG_HEADER; i++) {
    if (buf[i] != 0) {
      return SYNOD_EMALFORMED;
    }
  }
  struct core_config out;
  memset(&out, 0, sizeof out);
  out.voters_n = buf[1];
  out.learners_n = buf[2];
  const uint8_t *p = buf + CORE_CONFIG_HEADER;
  for (uint32_t i = 0; i < out.voters_n; i++, p += 8) {
    out.voters[i] = core_get_u64(p);
  }
  for (uint32_t i = 0; i < out.learners_n; i++, p += 8) {
    out.learners[i] = core_get_u64(p);
  }
  if (!core_config_valid(&out)) {
    return SYNOD_EMALFORMED;
  }
  *cfg = out;
  return 0;
}

/* -------------------------------------------------------------- changes */

static void core_ids_insert(uint64_t *ids, uint32_t *n, uint64_t id) {
  uint32_t i = *n;
  while (i > 0 && ids[i - 1] > id) {
    ids[i] = ids[i - 1];
    i--;
  }
  ids[i] = id;
  (*n)++;
}

static void core_ids_remove(uint64_t *ids, uint32_t *n, uint64_t id) {
  uint32_t k = 0;
  for (uint32_t i = 0; i < *n; i++) {
    if (ids[i] != id) {
      ids[k++] = ids[i];
    }
  }
  *n = k;
}

/* Whether the leader committed an entry of its own term. Ongaro's errata
 * to single-server changes (raft-dev, 2015): "a leader may not append a
 * new configuration entry until it has committed an entry from its
 * current term"; otherwise an uncommitted configuration of an older term
 * can elect a leader whose quorum misses a committed one. */
static bool core_membership_term_committed(const struct core *c) {
  uint64_t t;
  return core_log_term(&c->log, c->commit, &t) && t == c->term;
}

/* Thesis 4.1: "a leader ... will not begin a new configuration change
 * until the previous one is committed", nor (errata) before its noop. */
int core_membership_check(struct core *c, enum core_event_type type,
                          uint64_t id) {
  const struct core_config *cfg = &c->config;
  const char *why = NULL;
  int rv = SYNOD_ECONFIG;
  if (c->role != CORE_LEADER) {
    why = "not the leader", rv = SYNOD_ENOTLEADER;
  } else if (id == 0) {
    why = "id 0", rv = SYNOD_EINVAL;
  } else if (c->transfer_target != 0) {
    why = "leadership transfer on", rv = SYNOD_EBUSY;
  } else if (c->config_index > c->commit) {
    why = "another change is not committed yet";
  } else if (!core_membership_term_committed(c)) {
    why = "no entry of this term committed yet";
  } else if (type == CORE_EVENT_ADD_MEMBER && core_config_is_member(cfg, id)) {
    why = "already a member";
  } else if (type == CORE_EVENT_ADD_MEMBER &&
             cfg->voters_n + cfg->learners_n >= CORE_MEMBERS_MAX) {
    why = "too many members";
  } else if (type == CORE_EVENT_REMOVE_MEMBER &&
             !core_config_is_member(cfg, id)) {
    why = "not a member";
  } else if (type == CORE_EVENT_REMOVE_MEMBER && cfg->voters_n == 1 &&
             cfg->voters[0] == id) {
    why = "the last voter";
  }
  if (why != NULL) {
    errmsg_set(c->errmsg, "core: membership change of %" PRIu64 ": %s", id,
               why);
    return rv;
  }
  return 0;
}

static void core_membership_propose(struct core *c,
                                    const struct core_config *cfg) {
  uint8_t buf[CORE_CONFIG_ENCODED_MAX];
  struct core_entry e = {.type = CORE_ENTRY_CONFIG};
  e.data = buf;
  e.len = core_config_encode(cfg, buf);
  core_repl_propose(c, &e, 1);
}

/* ADD_MEMBER appends a configuration with a new learner; REMOVE_MEMBER
 * one without the member. Either takes effect as soon as it is appended. */
void core_membership_change(struct core *c, enum core_event_type type,
                            uint64_t id) {
  struct core_config cfg = c->config;
  if (type == CORE_EVENT_ADD_MEMBER) {
    core_ids_insert(cfg.learners, &cfg.learners_n, id);
  } else {
    core_ids_remove(cfg.voters, &cfg.voters_n, id);
    core_ids_remove(cfg.learners, &cfg.learners_n, id);
  }
  core_trace(c, "%s %" PRIu64, type == CORE_EVENT_ADD_MEMBER ? "add" : "remove",
             id);
  core_membership_propose(c, &cfg);
}

/* Thesis 4.1: "a server always uses the latest configuration in its log,
 * regardless of whether the entry is committed" - so a truncated
 * configuration entry takes its configuration with it. */
void core_membership_refresh(struct core *c) {
  const struct core_log_config *lc =
      core_log_config_at(&c->log, core_log_last(&c->log));
  if (lc->index == c->config_index &&
      memcmp(&lc->config, &c->config, sizeof c->config) == 0) {
    return;
  }
  c->config = lc->config;
  c->config_index = lc->index;
  if (c->o.trace_cb != NULL) {
    char ids[2 * CORE_MEMBERS_MAX * 21 + 8];
    size_t n = 0;
    for (uint32_t i = 0; i < c->config.voters_n + c->config.learners_n; i++) {
      bool voter = i < c->config.voters_n;
      uint64_t id = voter ? c->config.voters[i]
                          : c->config.learners[i - c->config.voters_n];
      n += (size_t)snprintf(ids + n, sizeof ids - n, " %s%" PRIu64,
                            voter ? "" : "~", id);
    }
    core_trace(c, "configuration at %" PRIu64 ":%s", lc->index, ids);
  }
  if (c->role == CORE_LEADER) {
    core_repl_sync_members(c);
  }
}

/* Thesis 4.2.2: a leader that is not part of the new configuration steps
 * down once the configuration entry is committed (until then it manages
 * the cluster without counting itself). */
void core_membership_on_commit(struct core *c) {
  if (c->role != CORE_LEADER || c->config_index > c->commit) {
    return;
  }
  if (!core_config_is_voter(&c->config, c->id)) {
    core_trace(c, "removed from the configuration: stepping down");
    core_become_follower(c, c->term, 0);
    return;
  }
  core_membership_maybe_promote(c);
}

/* Thesis 4.2.1: a new server joins as a learner and becomes a voter once
 * it has caught up, here when it has acknowledged entries and is within
 * promote_lag_entries of our last index. One change at a time. */
void core_membership_maybe_promote(struct core *c) {
  struct core_config cfg = c->config;
  uint64_t last = core_log_last(&c->log);
  if (c->role != CORE_LEADER || c->config_index > c->commit ||
      !core_membership_term_committed(c) || c->transfer_target != 0 ||
      cfg.voters_n >= CORE_MEMBERS_MAX) {
    return;
  }
  for (uint32_t i = 0; i < cfg.learners_n; i++) {
    uint64_t id = cfg.learners[i];
    struct core_progress *p = core_progress_find(c, id);
    /* match > 0: the learner answered, so it is alive. */
    if (p != NULL && p->match > 0 &&
        p->match + c->o.promote_lag_entries >= last) {
      core_ids_remove(cfg.learners, &cfg.learners_n, id);
      core_ids_insert(cfg.voters, &cfg.voters_n, id);
      core_trace(c, "promote %" PRIu64 " (match %" PRIu64 ")", id, p->match);
      core_membership_propose(c, &cfg);
      return;
    }
  }
}
