/* synodctl ready: is one replica ready to serve? The pure decision, kept
 * apart from the client so the unit tests can feed it status replies. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"

/* The entry for the replica itself in the members it reports, or NULL. */
static const struct synod_member *ready_self(const struct synod_status *st) {
  for (size_t i = 0; st->name != NULL && i < st->members_count; i++) {
    const struct synod_member *m = &st->members[i];
    if (m->name != NULL && strcmp(m->name, st->name) == 0) {
      return m;
    }
  }
  return NULL;
}

bool ctl_ready_check(const struct synod_status *st, uint64_t lag_max, char *why,
                     size_t len) {
  const struct synod_member *self = ready_self(st);
  const char *name = st->name ? st->name : "?";
  bool leads = st->role != NULL && strcmp(st->role, "leader") == 0;
  const char *leader = leads ? name : st->leader_name;
  uint64_t lag = st->commit_index > st->applied_index
                     ? st->commit_index - st->applied_index
                     : 0;
  if (self == NULL) {
    snprintf(why, len,
             "%s is not a member of the configuration it reports (%zu "
             "members): not joined yet",
             name, st->members_count);
  } else if (leader == NULL || leader[0] == '\0') {
    snprintf(why, len, "%s knows no leader (term %" PRIu64 ")", name, st->term);
  } else if (lag > lag_max) {
    snprintf(why, len,
             "%s (%s) has applied %" PRIu64 " of %" PRIu64
             " committed entries: %" PRIu64 " behind, over %" PRIu64,
             name, self->voter ? "voter" : "learner", st->applied_index,
             st->commit_index, lag, lag_max);
  } else {
    snprintf(why, len,
             "%s is ready: %s, leader %s, applied %" PRIu64 " of %" PRIu64,
             name, self->voter ? "voter" : "caught-up learner", leader,
             st->applied_index, st->commit_index);
    return true;
  }
  return false;
}
