/* Validation of every event before it changes anything: what a peer sends
 * (never trusted: SYNOD_EMALFORMED) and what the shell asks for
 * (SYNOD_EINVAL, SYNOD_ENOTLEADER, SYNOD_EBUSY), so that a refused event
 * leaves the core exactly as it was. */
#include "core_int.h"

#include <inttypes.h>
#include <string.h>

/* An entry as a peer or the store may send it: a known type, data present
 * when len says so, and a CONFIG that decodes. */
bool core_entry_valid(const struct core_entry *e) {
  struct core_config cfg;
  if (e->term == 0 || e->type > CORE_ENTRY_NOOP ||
      (e->data == NULL && e->len > 0)) {
    return false;
  }
  return e->type != CORE_ENTRY_CONFIG ||
         core_config_decode(e->data, e->len, &cfg) == 0;
}

/* ----------------------------------------------------------- validation */

static int core_bad(struct core *c, int rv, const char *why) {
  errmsg_set(c->errmsg, "core: %s", why);
  return rv;
}

static int core_check_entries(struct core *c, const struct core_msg *m) {
  const struct core_entry *ents = m->append.entries;
  uint64_t prev = m->append.prev_index;
  uint64_t term = m->append.prev_term;
  for (uint32_t i = 0; i < m->append.entries_n; i++) {
    if (ents[i].index != prev + 1 + i || ents[i].term < term ||
        ents[i].term > m->term || !core_entry_valid(&ents[i])) {
      return core_bad(c, SYNOD_EMALFORMED, "append: bad entries");
    }
    term = ents[i].term;
  }
  return 0;
}

/* A current leader's log holds every committed entry (Leader Completeness,
 * §5.4): a conflict at or below our commit index is not Raft. Older terms
 * are answered with a rejection and need not agree. */
static int core_check_append_committed(struct core *c,
                                       const struct core_msg *m) {
  uint64_t t;
  uint64_t prev = m->append.prev_index;
  if (m->term < c->term) {
    return 0;
  }
  if (prev <= c->commit && core_log_term(&c->log, prev, &t) &&
      t != m->append.prev_term) {
    return core_bad(c, SYNOD_EMALFORMED, "append: conflicts below commit");
  }
  for (uint32_t i = 0; i < m->append.entries_n; i++) {
    const struct core_entry *e = &m->append.entries[i];
    if (e->index > c->commit) {
      break;
    }
    if (core_log_term(&c->log, e->index, &t) && t != e->term) {
      return core_bad(c, SYNOD_EMALFORMED, "append: conflicts below commit");
    }
  }
  return 0;
}

static int core_check_append(struct core *c, const struct core_msg *m) {
  const uint32_t n = m->append.entries_n;
  if ((m->append.prev_index == 0 && m->append.prev_term != 0) ||
      m->append.prev_term > m->term || (n > 0 && m->append.entries == NULL) ||
      m->append.prev_index > UINT64_MAX - n) {
    return core_bad(c, SYNOD_EMALFORMED, "append: bad header");
  }
  int rv = core_check_entries(c, m);
  return rv != 0 ? rv : core_check_append_committed(c, m);
}

static int core_check_snapshot(struct core *c, const struct core_msg *m) {
  const uint64_t size = m->snapshot.meta.size_bytes;
  const uint64_t off = m->snapshot.offset;
  if (!core_snapshot_meta_valid(&m->snapshot.meta) ||
      m->snapshot.meta.term > m->term || off > size ||
      m->snapshot.len > size - off ||
      m->snapshot.last != (off + m->snapshot.len == size) ||
      (m->snapshot.data == NULL && m->snapshot.len > 0)) {
    return core_bad(c, SYNOD_EMALFORMED, "snapshot: bad chunk");
  }
  return 0;
}

static int core_check_msg(struct core *c, const struct core_msg *m) {
  if ((unsigned)m->type >= CORE_MSG_TYPE_COUNT) {
    return core_bad(c, SYNOD_EMALFORMED, "unknown message type");
  }
  if (m->from == 0 || m->from == c->id || m->to != c->id || m->term == 0) {
    return core_bad(c, SYNOD_EMALFORMED, "bad from, to or term");
  }
  switch (m->type) {
  case CORE_MSG_APPEND:
    return core_check_append(c, m);
  case CORE_MSG_APPEND_REPLY:
    /* Our own log is the only source of what a follower can match. */
    if (!m->append_reply.reject && c->role == CORE_LEADER &&
        m->term == c->term && m->append_reply.index > core_log_last(&c->log)) {
      return core_bad(c, SYNOD_EMALFORMED, "append reply: beyond our log");
    }
    return 0;
  case CORE_MSG_VOTE:
  case CORE_MSG_PRE_VOTE:
    if (m->vote.last_term > m->term ||
        (m->vote.last_index == 0) != (m->vote.last_term == 0)) {
      return core_bad(c, SYNOD_EMALFORMED, "vote: bad last entry");
    }
    return 0;
  case CORE_MSG_SNAPSHOT:
    return core_check_snapshot(c, m);
  default:
    return 0;
  }
}

static int core_check_propose(struct core *c, const struct core_event *ev) {
  if (c->role != CORE_LEADER) {
    return core_bad(c, SYNOD_ENOTLEADER, "propose: not the leader");
  }
  if (c->transfer_target != 0) {
    return core_bad(c, SYNOD_EBUSY, "propose: leadership transfer on");
  }
  if (c->log.bytes > c->o.log_bytes_max) {
    return core_bad(c, SYNOD_EBUSY, "propose: log full");
  }
  if (core_log_last(&c->log) - c->commit + ev->propose.entries_n >
      c->o.uncommitted_entries_max) {
    errmsg_set(
        c->errmsg,
        "core: propose: %" PRIu64 " entries not committed yet (max %" PRIu64
        "): the followers are behind",
        core_log_last(&c->log) - c->commit, c->o.uncommitted_entries_max);
    return SYNOD_EBUSY;
  }
  if (ev->propose.entries_n == 0 || ev->propose.entries == NULL) {
    return core_bad(c, SYNOD_EINVAL, "propose: no entries");
  }
  for (uint32_t i = 0; i < ev->propose.entries_n; i++) {
    const struct core_entry *e = &ev->propose.entries[i];
    if ((e->type != CORE_ENTRY_NORMAL && e->type != CORE_ENTRY_NOOP) ||
        (e->data == NULL && e->len > 0)) {
      return core_bad(c, SYNOD_EINVAL, "propose: bad entry type or data");
    }
  }
  return 0;
}

int core_check_event(struct core *c, const struct core_event *ev) {
  uint64_t last = core_log_last(&c->log);
  switch (ev->type) {
  case CORE_EVENT_RECEIVE:
    if (ev->msg == NULL) {
      return core_bad(c, SYNOD_EINVAL, "receive: no message");
    }
    return core_check_msg(c, ev->msg);
  case CORE_EVENT_TICK:
  case CORE_EVENT_UNREACHABLE:
  case CORE_EVENT_PEER_GONE:
  case CORE_EVENT_RELEASE:
    return 0;
  case CORE_EVENT_PROPOSE:
    return core_check_propose(c, ev);
  case CORE_EVENT_PERSISTED:
    if (ev->persisted.index > (c->handed_max > last ? c->handed_max : last)) {
      return core_bad(c, SYNOD_EINVAL, "persisted: beyond what was handed out");
    }
    return 0;
  case CORE_EVENT_READ_INDEX:
    if (ev->read_ctx == 0) {
      return core_bad(c, SYNOD_EINVAL, "read index: zero ctx");
    }
    if (c->role != CORE_LEADER) {
      return core_bad(c, SYNOD_ENOTLEADER, "read index: not the leader");
    }
    if (c->reads_n >= CORE_READS_MAX) {
      return core_bad(c, SYNOD_EBUSY, "read index: too many reads waiting");
    }
    return 0;
  case CORE_EVENT_SNAPSHOT_TAKEN:
    return core_snapshot_check_taken(c, &ev->snapshot);
  case CORE_EVENT_ADD_MEMBER:
  case CORE_EVENT_REMOVE_MEMBER:
    return core_membership_check(c, ev->type, ev->id);
  case CORE_EVENT_TRANSFER:
    return core_transfer_check(c, ev->id);
  }
  return core_bad(c, SYNOD_EINVAL, "unknown event type");
}
