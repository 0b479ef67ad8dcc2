/* The simulated network: per-message loss, duplication and delay (which
 * reorders), one-way and symmetric partitions, and clogged links that hold
 * every message back for a while (FoundationDB's swizzle-clogging). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

#include "synod.h"

/* Copies m into one allocation: the message, then its entries, then their
 * bytes. For a snapshot chunk, data (if not NULL) replaces m's bytes. */
struct sim_msg *sim_msg_clone(const struct core_msg *m, const uint8_t *data) {
  size_t size = sizeof(struct sim_msg);
  uint32_t n = m->type == CORE_MSG_APPEND ? m->append.entries_n : 0;
  size += n * sizeof(struct core_entry);
  for (uint32_t i = 0; i < n; i++) {
    size += m->append.entries[i].len;
  }
  const uint8_t *snap = NULL;
  if (m->type == CORE_MSG_SNAPSHOT) {
    snap = data != NULL ? data : m->snapshot.data;
    size += snap != NULL ? m->snapshot.len : 0;
  }
  struct sim_msg *c = malloc(size);
  if (c == NULL) {
    abort();
  }
  c->m = *m;
  c->seq = 0;
  uint8_t *p = (uint8_t *)(c + 1);
  if (n > 0) {
    struct core_entry *es = (struct core_entry *)p;
    p += n * sizeof(*es);
    for (uint32_t i = 0; i < n; i++) {
      es[i] = m->append.entries[i];
      if (es[i].len > 0) {
        memcpy(p, m->append.entries[i].data, es[i].len);
      }
      es[i].data = p;
      p += es[i].len;
    }
    c->m.append.entries = es;
  } else if (m->type == CORE_MSG_APPEND) {
    c->m.append.entries = NULL;
  }
  if (m->type == CORE_MSG_SNAPSHOT) {
    c->m.snapshot.data = NULL;
    if (snap != NULL) {
      memcpy(p, snap, m->snapshot.len);
      c->m.snapshot.data = p;
    }
  }
  return c;
}

void sim_msg_describe(const struct core_msg *m, char *buf, size_t n) {
  int k = snprintf(buf, n, "%s %" PRIu64 "->%" PRIu64 " t%" PRIu64,
                   core_msg_type_name(m->type), m->from, m->to, m->term);
  size_t at = k > 0 ? (size_t)k : 0;
  if (at >= n) {
    return;
  }
  buf += at;
  n -= at;
  switch (m->type) {
  case CORE_MSG_APPEND:
    snprintf(buf, n,
             " prev %" PRIu64 "/%" PRIu64 " n %" PRIu32 " commit %" PRIu64,
             m->append.prev_index, m->append.prev_term, m->append.entries_n,
             m->append.commit);
    break;
  case CORE_MSG_APPEND_REPLY:
    snprintf(buf, n, " %s %" PRIu64 " hint %" PRIu64 "/%" PRIu64,
             m->append_reply.reject ? "reject" : "ok", m->append_reply.index,
             m->append_reply.hint_index, m->append_reply.hint_term);
    break;
  case CORE_MSG_VOTE:
  case CORE_MSG_PRE_VOTE:
    snprintf(buf, n, " last %" PRIu64 "/%" PRIu64 "%s", m->vote.last_index,
             m->vote.last_term, m->vote.transfer ? " transfer" : "");
    break;
  case CORE_MSG_VOTE_REPLY:
  case CORE_MSG_PRE_VOTE_REPLY:
    snprintf(buf, n, " %s", m->vote_reply.granted ? "granted" : "denied");
    break;
  case CORE_MSG_HEARTBEAT:
    snprintf(buf, n, " commit %" PRIu64 " ctx %" PRIu64, m->heartbeat.commit,
             m->heartbeat.read_ctx);
    break;
  case CORE_MSG_HEARTBEAT_REPLY:
    snprintf(buf, n, " ctx %" PRIu64, m->heartbeat_reply.read_ctx);
    break;
  case CORE_MSG_SNAPSHOT:
    snprintf(buf, n,
             " snap %" PRIu64 "/%" PRIu64 " size %" PRIu64 " off %" PRIu64
             " len %" PRIu32 "%s",
             m->snapshot.meta.index, m->snapshot.meta.term,
             m->snapshot.meta.size_bytes, m->snapshot.offset, m->snapshot.len,
             m->snapshot.last ? " last" : "");
    break;
  case CORE_MSG_SNAPSHOT_REPLY:
    snprintf(buf, n, " snap %" PRIu64 " off %" PRIu64 "%s",
             m->snapshot_reply.index, m->snapshot_reply.offset,
             m->snapshot_reply.reject ? " reject" : "");
    break;
  default:
    break;
  }
}

bool sim_net_link_up(const struct sim *s, uint64_t from, uint64_t to) {
  return s->link_down[from][to] == 0;
}

/* Cuts from->to and tells `from` its link broke. */
void sim_net_cut(struct sim *s, uint64_t from, uint64_t to) {
  s->link_down[from][to]++;
  struct sim_replica *rep = &s->r[from];
  if (rep->up && s->r[to].exists && s->link_down[from][to] == 1) {
    if (s->opts.peer_gone && sim_rand_ppm(&s->gone_rand, 250000)) {
      sim_peer_gone_later(s, from, to); /* a false alarm */
    }
    struct core_event ev = {.type = CORE_EVENT_UNREACHABLE, .id = to};
    int rv = sim_step_core(s, rep, &ev);
    if (rv != 0) {
      sim_fail(s, "r%" PRIu64 ": UNREACHABLE %" PRIu64 " returned %s", from, to,
               s->errmsg);
    }
  }
}

/* Fills a snapshot chunk from the sender's durable image. Returns the
 * message to send (possibly a new one) or NULL to drop it. */
static struct sim_msg *fill_snapshot(struct sim *s, struct sim_replica *from,
                                     struct sim_msg *msg) {
  const struct core_msg *m = &msg->m;
  const struct sim_image *img =
      sim_image_find(&from->dur, m->snapshot.meta.index);
  if (img == NULL) {
    if (m->snapshot.meta.index > from->dur.snap.index) {
      sim_fail(s,
               "r%" PRIu64 " sends snapshot %" PRIu64
               " but its latest durable snapshot is %" PRIu64,
               from->id, m->snapshot.meta.index, from->dur.snap.index);
    }
    sim_trace(s, from->id, "snapshot %" PRIu64 " image gone, chunk dropped",
              m->snapshot.meta.index);
    free(msg);
    return NULL;
  }
  if (img->term != m->snapshot.meta.term ||
      img->len != m->snapshot.meta.size_bytes ||
      m->snapshot.offset + m->snapshot.len > img->len) {
    sim_fail(s,
             "r%" PRIu64 " sends snapshot %" PRIu64 "/%" PRIu64 " size %" PRIu64
             " bytes %" PRIu64 "+%" PRIu32 " but the image is %" PRIu64
             "/%" PRIu64 " of %" PRIu32 " bytes",
             from->id, m->snapshot.meta.index, m->snapshot.meta.term,
             m->snapshot.meta.size_bytes, m->snapshot.offset, m->snapshot.len,
             img->index, img->term, img->len);
    free(msg);
    return NULL;
  }
  struct sim_msg *filled = sim_msg_clone(m, img->bytes + m->snapshot.offset);
  free(msg);
  return filled;
}

static void schedule_delivery(struct sim *s, struct sim_msg *msg) {
  uint64_t from = msg->m.from;
  uint64_t to = msg->m.to;
  uint64_t at = s->now_ms +
                sim_rand_range(&s->rand, s->f.delay_min_ms, s->f.delay_max_ms);
  if (s->clog_until[from][to] > at) {
    at = s->clog_until[from][to];
  }
  /* After healing the links behave like the TCP connections synod runs
   * on: variable delay, but in order. Under reordering with one-entry
   * appends and a busy leader, replication can crawl slower than the
   * writes arrive (seed 3014999), which is not what a healed network of
   * TCP links does. */
  if (s->phase2) {
    if (s->fifo_at[from][to] > at) {
      at = s->fifo_at[from][to];
    }
    s->fifo_at[from][to] = at;
  }
  msg->seq = ++s->msg_seq;
  sim_schedule(s, at, SIM_EV_DELIVER, to, msg);
}

static bool drop(struct sim *s, struct sim_msg *msg, const char *why) {
  sim_trace(s, msg->m.from, "drop msg to r%" PRIu64 " (%s)", msg->m.to, why);
  s->stats.msgs_lost++;
  free(msg);
  return true;
}

void sim_net_send(struct sim *s, struct sim_replica *from,
                  struct sim_msg *msg) {
  struct core_msg *m = &msg->m;
  if (m->to == 0 || m->to > SIM_IDS_MAX || m->to == from->id) {
    sim_fail(s, "r%" PRIu64 " sends %s to id %" PRIu64, from->id,
             core_msg_type_name(m->type), m->to);
    free(msg);
    return;
  }
  if (m->type == CORE_MSG_SNAPSHOT && m->snapshot.data == NULL) {
    msg = fill_snapshot(s, from, msg);
    if (msg == NULL) {
      return;
    }
    m = &msg->m;
  }
  s->stats.msgs_sent++;
  if (m->type < CORE_MSG_TYPE_COUNT) {
    s->stats.sent_to[m->to][m->type]++;
  }
  if (s->filter != NULL && !s->filter(s->filter_arg, m)) {
    drop(s, msg, "filter");
    return;
  }
  if (!s->r[m->to].exists || !sim_net_link_up(s, m->from, m->to)) {
    drop(s, msg, "partition");
    return;
  }
  if (sim_rand_ppm(&s->rand, s->f.loss_ppm)) {
    drop(s, msg, "loss");
    return;
  }
  if (sim_rand_ppm(&s->rand, s->f.dup_ppm)) {
    schedule_delivery(s, sim_msg_clone(m, NULL));
  }
  schedule_delivery(s, msg);
}

void sim_net_deliver(struct sim *s, struct sim_msg *msg) {
  struct sim_replica *rep = &s->r[msg->m.to];
  if (!rep->up) {
    drop(s, msg, "receiver down");
    return;
  }
  if (!sim_net_link_up(s, msg->m.from, msg->m.to)) {
    drop(s, msg, "partition");
    return;
  }
  struct core_event ev = {.type = CORE_EVENT_RECEIVE, .msg = &msg->m};
  sim_subs_heard(s, rep, msg->m.from);
  int rv = sim_step_core(s, rep, &ev);
  if (rv != 0) {
    char buf[256];
    sim_msg_describe(&msg->m, buf, sizeof(buf));
    sim_fail(s, "r%" PRIu64 " rejects a message its peer's core made: %s: %s",
             rep->id, buf, s->errmsg);
  }
  free(msg);
}
