/* Snapshots: compaction after SNAPSHOT_TAKEN, streaming a snapshot in
 * chunks to a follower whose next entry was compacted, and receiving and
 * installing one (Raft §7 and Figure 13, InstallSnapshot). */
#include "core_int.h"

#include <inttypes.h>
#include <string.h>

bool core_snapshot_meta_valid(const struct core_snapshot_meta *meta) {
  return meta->index > 0 && meta->term > 0 && core_config_valid(&meta->config);
}

/* SNAPSHOT_TAKEN must cover applied entries of our log, with their term. */
int core_snapshot_check_taken(struct core *c,
                              const struct core_snapshot_meta *meta) {
  uint64_t t;
  if (meta->index <= c->snap.index) {
    return 0; /* older than the one we have: nothing to do */
  }
  if (meta->index > c->applied || !core_log_term(&c->log, meta->index, &t) ||
      t != meta->term) {
    errmsg_set(c->errmsg,
               "core: snapshot %" PRIu64 "/%" PRIu64
               " is not an applied entry (applied %" PRIu64 ")",
               meta->index, meta->term, c->applied);
    return SYNOD_EINVAL;
  }
  return 0;
}

/* §7: "Once a server completes writing a snapshot, it may delete all log
 * entries up through the last included index". Up to snapshot_keep_entries
 * stay behind so slightly lagging followers still get entries, not a
 * snapshot, but no more than snapshot_keep_bytes of them: 1,024 large
 * entries kept could hold the log above log_bytes_max for good. */
void core_snapshot_taken(struct core *c, const struct core_snapshot_meta *m) {
  if (m->index <= c->snap.index) {
    return;
  }
  c->snap = *m;
  c->snap.config = core_log_config_at(&c->log, m->index)->config;
  c->snap_wanted_bytes = c->applied_bytes;
  core_trace(c, "snapshot at %" PRIu64 "/%" PRIu64, m->index, m->term);
  uint64_t through = c->log.prev_index;
  if (m->index > c->o.snapshot_keep_entries &&
      m->index - c->o.snapshot_keep_entries > through) {
    through = m->index - c->o.snapshot_keep_entries;
  }
  uint64_t kept = 0;
  for (uint64_t i = m->index; i > through; i--) {
    kept += core_log_get(&c->log, i)->len;
    if (kept > c->o.snapshot_keep_bytes) {
      through = i;
      break;
    }
  }
  if (through > c->log.prev_index) {
    core_log_compact(&c->log, through);
  }
}

/* ------------------------------------------------------------- sending */

void core_snapshot_start(struct core *c, struct core_progress *p) {
  p->state = CORE_PROGRESS_SNAPSHOT;
  p->snap = c->snap;
  p->snap_sent = 0;
  p->snap_acked = 0;
  p->snap_sent_all = false;
  p->snap_nacked = false;
  p->snap_idle_ticks = 0;
  core_trace(c, "send snapshot %" PRIu64 "/%" PRIu64 " to %" PRIu64,
             p->snap.index, p->snap.term, p->id);
  core_snapshot_send(c, p);
}

/* Sends the chunks that fit in the window. The shell fills in the bytes. */
void core_snapshot_send(struct core *c, struct core_progress *p) {
  const uint64_t chunk = c->o.snapshot_chunk_bytes;
  const uint64_t size = p->snap.size_bytes;
  while (!p->snap_sent_all &&
         p->snap_sent - p->snap_acked < chunk * CORE_SNAPSHOT_CHUNKS_INFLIGHT) {
    uint64_t len = size - p->snap_sent < chunk ? size - p->snap_sent : chunk;
    struct core_msg *m = core_msg_push(c, CORE_MSG_SNAPSHOT, p->id);
    m->snapshot.meta = p->snap;
    m->snapshot.offset = p->snap_sent;
    m->snapshot.data = NULL;
    m->snapshot.len = (uint32_t)len;
    p->snap_sent += len;
    m->snapshot.last = p->snap_sent == size;
    p->snap_sent_all = m->snapshot.last;
  }
}

/* Go back to the last acknowledged byte; with a newer snapshot, or none
 * acknowledged yet, start over with the latest one. */
static void core_snapshot_restart(struct core *c, struct core_progress *p,
                                  uint64_t offset) {
  if (c->snap.index != p->snap.index) {
    core_snapshot_start(c, p);
    return;
  }
  p->snap_sent = offset;
  p->snap_acked = offset;
  p->snap_sent_all = false;
  p->snap_idle_ticks = 0;
  core_snapshot_send(c, p);
}

bool core_snapshot_streaming(const struct core *c) {
  if (c->role != CORE_LEADER) {
    return false;
  }
  for (uint32_t i = 0; i < CORE_PEERS_MAX; i++) {
    if (c->prs[i].id != 0 && c->prs[i].state == CORE_PROGRESS_SNAPSHOT) {
      return true;
    }
  }
  return false;
}

/* A stream that made no progress for an election timeout lost a chunk or
 * a reply: resend from the last acknowledged byte. */
void core_snapshot_tick(struct core *c, struct core_progress *p) {
  if (++p->snap_idle_ticks >= c->o.election_ticks) {
    core_snapshot_restart(c, p, p->snap_acked);
  }
}

/* The follower wants byte `off` next. Forward: the window moves. The same
 * offset again while later chunks are out: one was lost, go back once. A
 * lower offset: the follower started over (it restarted) or the reply is
 * stale; either way go back, and a stale one is corrected by the next. */
static void core_snapshot_acked(struct core *c, struct core_progress *p,
                                uint64_t off) {
  if (off > p->snap_acked) {
    p->snap_acked = off;
    p->snap_nacked = false;
    p->snap_idle_ticks = 0;
    if (p->snap_sent < off) {
      p->snap_sent = off;
    }
    core_snapshot_send(c, p);
    return;
  }
  if (off < p->snap_acked) {
    p->snap_acked = off;
    p->snap_nacked = false;
  }
  if (off < p->snap_sent && !p->snap_nacked) {
    p->snap_nacked = true;
    core_snapshot_restart(c, p, off);
  }
}

/* The follower says which byte it wants next; all of them means it
 * installed the snapshot and replication resumes after its index. */
void core_recv_snapshot_reply(struct core *c, const struct core_msg *m) {
  struct core_progress *p = core_progress_find(c, m->from);
  if (c->role != CORE_LEADER || p == NULL) {
    return;
  }
  p->recent_active = true;
  uint64_t off = m->snapshot_reply.offset;
  if (p->state != CORE_PROGRESS_SNAPSHOT ||
      m->snapshot_reply.index != p->snap.index) {
    return;
  }
  if (m->snapshot_reply.reject) {
    core_snapshot_restart(c, p, 0);
  } else if (off >= p->snap.size_bytes) {
    core_trace(c, "%" PRIu64 " installed snapshot %" PRIu64, p->id,
               p->snap.index);
    if (p->snap.index > p->match) {
      p->match = p->snap.index;
    }
    core_progress_probe(p, p->match + 1);
    core_repl_progressed(c, p);
    if (c->role == CORE_LEADER && p->id != 0) {
      core_repl_send(c, p, true);
    }
  } else {
    core_snapshot_acked(c, p, off);
  }
}

/* ----------------------------------------------------------- receiving */

static void core_snapshot_reply(struct core *c, const struct core_msg *m,
                                uint64_t offset, bool reject) {
  struct core_msg *r = core_msg_push(c, CORE_MSG_SNAPSHOT_REPLY, m->from);
  r->snapshot_reply.index = m->snapshot.meta.index;
  r->snapshot_reply.offset = offset;
  r->snapshot_reply.reject = reject;
}

/* Figure 13, receiver, 6-8: "If existing log entry has same index and term
 * as snapshot's last included entry, retain log entries following it and
 * reply. Discard the entire log. Reset state machine using snapshot
 * contents (and load snapshot's cluster configuration)." */
static void core_snapshot_install(struct core *c,
                                  const struct core_snapshot_meta *meta) {
  uint64_t t;
  if (core_log_term(&c->log, meta->index, &t) && t == meta->term) {
    if (meta->index > c->log.prev_index) {
      core_log_compact(&c->log, meta->index);
    }
  } else {
    if (core_log_last(&c->log) > meta->index) {
      core_out_truncated(c, meta->index + 1);
    }
    core_log_reset(&c->log, meta->index, meta->term, &meta->config);
  }
  c->snap = *meta;
  c->snap_wanted_at = meta->index;
  c->commit = meta->index;
  c->applied = meta->index;
  c->out.up->snapshot_install_present = true;
  c->out.up->snapshot_install = *meta;
  core_membership_refresh(c);
  core_trace(c, "installed snapshot %" PRIu64 "/%" PRIu64, meta->index,
             meta->term);
}

/* Figure 13, receiver, 2-5: "Create new snapshot file if first chunk
 * (offset is 0). Write data into snapshot file at given offset. Reply and
 * wait for more data chunks if done is false." Chunks are taken in order
 * only: anything else is answered with the offset we want. Each chunk is
 * durable before its reply leaves. */
void core_recv_snapshot(struct core *c, const struct core_msg *m) {
  if (c->role == CORE_LEADER) {
    return;
  }
  core_become_follower(c, c->term, m->from);
  const struct core_snapshot_meta *meta = &m->snapshot.meta;
  if (meta->index <= c->commit) {
    core_snapshot_reply(c, m, meta->size_bytes, false); /* have it all */
    return;
  }
  bool same = c->recv_active && c->recv_meta.index == meta->index &&
              c->recv_meta.term == meta->term &&
              c->recv_meta.size_bytes == meta->size_bytes;
  /* A chunk at offset 0 starts an image, unless it belongs to the one we
   * are receiving: then it is a duplicate or a late copy (the leader never
   * needs to restart the same image; it resumes from the offset we ask
   * for), and starting over on it could livelock a transfer on a network
   * that duplicates and reorders. */
  if (m->snapshot.offset == 0 && !(same && c->recv_offset > 0)) {
    c->recv_active = true;
    c->recv_meta = *meta;
    c->recv_offset = 0;
  } else if (!same) {
    core_snapshot_reply(c, m, 0, true);
    return;
  }
  if (m->snapshot.offset != c->recv_offset) {
    core_snapshot_reply(c, m, c->recv_offset, false);
    return;
  }
  struct core_update *up = c->out.up;
  up->snapshot_chunk_present = true;
  up->snapshot_chunk.meta = *meta;
  up->snapshot_chunk.offset = m->snapshot.offset;
  up->snapshot_chunk.data = m->snapshot.data;
  up->snapshot_chunk.len = m->snapshot.len;
  up->snapshot_chunk.last = m->snapshot.last;
  c->recv_offset += m->snapshot.len;
  if (m->snapshot.last) {
    c->recv_active = false;
    core_snapshot_install(c, meta);
  }
  core_snapshot_reply(c, m, c->recv_offset, false);
}
