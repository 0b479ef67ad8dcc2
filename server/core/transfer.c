/* Leadership transfer (thesis 3.10): stop taking proposals, bring the
 * target up to date, tell it to campaign now; give up after an election
 * timeout. */
#include "core_int.h"

#include <inttypes.h>

int core_transfer_check(struct core *c, uint64_t id) {
  if (c->role != CORE_LEADER) {
    errmsg_set(c->errmsg, "core: transfer: not the leader");
    return SYNOD_ENOTLEADER;
  }
  if (id != c->id && (id == 0 || !core_config_is_voter(&c->config, id))) {
    errmsg_set(c->errmsg, "core: transfer: %" PRIu64 " is not a voter", id);
    return SYNOD_EINVAL;
  }
  return 0;
}

static void core_transfer_timeout_now(struct core *c, struct core_progress *p) {
  core_trace(c, "transfer: timeout-now to %" PRIu64, p->id);
  core_msg_push(c, CORE_MSG_TIMEOUT_NOW, p->id);
  p->timeout_sent = true;
}

/* TRANSFER: to ourselves is a no-op; a new target replaces the old. */
void core_transfer_start(struct core *c, uint64_t id) {
  if (id == c->id || id == c->transfer_target) {
    return;
  }
  struct core_progress *p = core_progress_find(c, id);
  if (p == NULL) {
    return;
  }
  c->transfer_target = id;
  c->transfer_elapsed = 0;
  p->timeout_sent = false;
  core_trace(c, "transfer to %" PRIu64 " (match %" PRIu64 ")", id, p->match);
  if (p->match == core_log_last(&c->log)) {
    core_transfer_timeout_now(c, p);
  } else {
    core_repl_send(c, p, false);
  }
}

/* "The prior leader ... sends it a TimeoutNow request" once the target's
 * log matches its own. */
void core_transfer_progress(struct core *c, struct core_progress *p) {
  if (c->transfer_target == p->id && !p->timeout_sent &&
      p->match == core_log_last(&c->log)) {
    core_transfer_timeout_now(c, p);
  }
}

void core_transfer_tick(struct core *c) {
  if (c->transfer_target != 0 && ++c->transfer_elapsed >= c->o.election_ticks) {
    core_transfer_abort(c, "timed out");
  }
}

void core_transfer_abort(struct core *c, const char *why) {
  if (c->transfer_target != 0) {
    core_trace(c, "transfer to %" PRIu64 " aborted: %s", c->transfer_target,
               why);
    c->transfer_target = 0;
  }
}
