/* The channel workload's subscribers and checks (opts.channels). Clients
 * publish through sim_client.c (SIM_OP_PUBLISH, SIM_OP_CHANNEL_CREATE) to
 * the channels "ch0".."ch2" and, in some seeds, "ring", which keeps only
 * its last few messages. Subscribers here are modelled as the server's
 * subscriptions will work: a cursor on one replica, follower or leader,
 * that delivers committed, applied messages from that replica's state
 * machine (fsm_query with a stale ChannelRead) in offset order. Some move
 * to another replica from time to time (and every one does when its
 * replica crashes), resuming from the last delivered offset + 1; some are
 * slow; some start late or stop early; prefix subscribers merge every
 * "ch*" channel in log-index order and resume after the last delivered
 * index. At the end every subscriber still running is drained, every
 * replica's channels are read in full, and the whole history (publishes
 * as clients saw them, deliveries) goes to history_channels_check. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

#include "synod.h"

static uint64_t pick(struct sim *s, uint64_t lo, uint64_t hi) {
  return sim_rand_range(&s->rand, lo, hi);
}

static const char *break_names[SIM_BREAK_COUNT] = {
    "none",        "gap",       "duplicate",       "compacted", "interleaving",
    "index-order", "agreement", "exactly-once",    "refused",   "acknowledged",
    "lost",        "real-time", "real-time-index", "range",     "split-batch"};

const char *sim_channel_break_name(uint32_t mode) {
  return mode < SIM_BREAK_COUNT ? break_names[mode] : NULL;
}

uint32_t sim_channels_total(const struct sim *s) {
  return s->chan_n + (s->chan_ring ? 1 : 0);
}

void sim_channel_name(const struct sim *s, uint32_t c, char *buf) {
  if (s->chan_ring && c == s->chan_n) {
    memcpy(buf, "ring", 5);
  } else {
    snprintf(buf, 8, "ch%" PRIu32, c % 10);
  }
}

/* The channel number of a name of the prefix "ch", or UINT32_MAX. */
uint32_t sim_prefix_channel(const struct sim *s, const char *name) {
  if (name == NULL || strncmp(name, "ch", 2) != 0 || name[2] < '0' ||
      name[2] > '9' || name[3] != '\0' ||
      (uint32_t)(name[2] - '0') >= s->chan_n) {
    return UINT32_MAX;
  }
  return (uint32_t)(name[2] - '0');
}

size_t sim_channel_payload(uint32_t hop, uint32_t part, uint8_t *buf) {
  int n = snprintf((char *)buf, SIM_PAYLOAD_MAX, "p%" PRIu32 ".%" PRIu32 ":",
                   hop, part);
  uint32_t fill = (hop * 31 + part * 7) % 48;
  for (uint32_t i = 0; i < fill; i++) {
    buf[(uint32_t)n + i] = (uint8_t)('a' + (hop + part + i) % 26);
  }
  return (size_t)n + fill;
}

/* The publish (history operation index) and part a payload names, or
 * HISTORY_FOREIGN if it is not exactly a payload the workload made. */
static uint32_t payload_decode(const uint8_t *data, size_t len,
                               uint32_t *part) {
  char text[SIM_PAYLOAD_MAX + 1];
  uint8_t want[SIM_PAYLOAD_MAX];
  unsigned hop, pt;
  *part = 0;
  if (len > SIM_PAYLOAD_MAX) {
    return HISTORY_FOREIGN;
  }
  memcpy(text, data, len);
  text[len] = '\0';
  if (sscanf(text, "p%u.%u:", &hop, &pt) != 2 || hop == 0 || hop > 1u << 30 ||
      pt > 1000 || sim_channel_payload(hop, pt, want) != len ||
      memcmp(want, data, len) != 0) {
    return HISTORY_FOREIGN;
  }
  *part = pt;
  return hop - 1;
}

/* ---------------------------------------------------------------- setup */

static struct sim_sub *sub_new(struct sim *s, bool prefix, uint32_t channel) {
  if (s->subs_n == SIM_SUBS_MAX) {
    return NULL;
  }
  struct sim_sub *sb = &s->subs[s->subs_n++];
  memset(sb, 0, sizeof *sb);
  sb->prefix = prefix;
  sb->channel = channel;
  return sb;
}

/* The seed's channel workload: 2-3 channels of the prefix, in half the
 * seeds a ring that keeps 8-40 messages, and 3-6 channel and 2-3 prefix
 * subscribers, fast or slow, staying or moving, from the start or later,
 * to the end or not. */
void sim_channels_pick(struct sim *s) {
  s->chan_n = (uint32_t)pick(s, 2, 3);
  s->chan_ring = pick(s, 0, 1) == 0;
  s->ring_retain = pick(s, 8, 40);
  s->pub_weight = (uint32_t)pick(s, 25, 60);
  uint32_t subs = (uint32_t)pick(s, 3, 6), prefixes = (uint32_t)pick(s, 2, 3);
  s->subs = calloc(SIM_SUBS_MAX, sizeof *s->subs);
  if (s->subs == NULL) {
    abort();
  }
  for (uint32_t i = 0; i < subs + prefixes; i++) {
    bool prefix = i >= subs;
    struct sim_sub *sb =
        sub_new(s, prefix, prefix ? 0 : i % sim_channels_total(s));
    bool slow = pick(s, 0, 2) == 0;
    snprintf(sb->name, sizeof sb->name, "s%" PRIu32 "%s", i,
             prefix ? "/ch*" : "");
    sb->poll_ms =
        slow ? (uint32_t)pick(s, 200, 2000) : (uint32_t)pick(s, 5, 60);
    sb->batch = slow ? (uint32_t)pick(s, 1, 3) : (uint32_t)pick(s, 4, 200);
    /* Movers reconnect elsewhere every 0.3-10 s on average. */
    sb->move_ppm =
        pick(s, 0, 1) == 0
            ? 0
            : (uint32_t)(sb->poll_ms * 1000000ull / pick(s, 300, 10000));
    sb->start_ms = pick(s, 0, 2) == 0 ? pick(s, 100, 30000) : 0;
    sb->from_next = sb->start_ms > 0 && pick(s, 0, 1) == 0;
    sb->stop_ms = pick(s, 0, 5) == 0 ? sb->start_ms + pick(s, 500, 40000) : 0;
    if (s->opts.push) { /* drawn last: the other draws stay the seed's */
      sb->push = true;
      sb->c.window = slow ? (uint32_t)pick(s, 1, 8) : (uint32_t)pick(s, 8, 500);
      sb->c.inproc = s->opts.sinks && sim_rand_range(&s->sink_rand, 0, 1) == 0;
    }
  }
}

void sim_channels_init(struct sim *s) {
  for (uint32_t i = 0; i < s->subs_n; i++) {
    sim_schedule(s, s->subs[i].start_ms, SIM_EV_SUB, i + 1, NULL);
  }
}

void sim_channels_free(struct sim *s) {
  for (uint32_t i = 0; s->subs != NULL && i < s->subs_n; i++) {
    sim_psub_free(&s->subs[i]);
    free(s->subs[i].d);
  }
  free(s->subs);
  s->subs = NULL;
  s->subs_n = 0;
}

/* ---------------------------------------------------------------- reads */

/* A read of replica f's applied state, as a stale read is served. NULL
 * (and the run failed) if the fsm refuses it or its answer does not
 * decode. */
static Synod__Response *query(struct sim *s, const struct fsm *f,
                              Synod__Request *req) {
  uint8_t *data;
  size_t len;
  req->stale = true;
  if (fsm_query(f, req, &data, &len) != 0) {
    sim_fail(s, "channels: fsm_query refused a read (body %d)",
             (int)req->body_case);
    return NULL;
  }
  Synod__Response *r = synod__response__unpack(NULL, len, data);
  free(data);
  if (r == NULL) {
    sim_fail(s, "channels: the answer to a read does not decode");
  }
  return r;
}

/* A read of `name` from offset `from`; pinned (known_index) to the
 * channel that held the message at log index `known`, if not 0. */
static Synod__Response *read_from(struct sim *s, const struct fsm *f,
                                  const char *name, uint64_t from, uint32_t max,
                                  uint64_t known) {
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__ChannelRead rd = SYNOD__CHANNEL_READ__INIT;
  rd.name = (char *)name;
  rd.from = from;
  rd.max = max;
  rd.known_index = known;
  req.body_case = SYNOD__REQUEST__BODY_CHANNEL_READ;
  req.channel_read = &rd;
  return query(s, f, &req);
}

static int code_of(const Synod__Response *r) {
  return r->error != NULL ? (int)r->error->code : 0;
}

/* The channel's next offset on this replica (1 if it has none yet). */
static uint64_t channel_next(struct sim *s, const struct fsm *f,
                             const char *name) {
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__ChannelInfoGet q = SYNOD__CHANNEL_INFO_GET__INIT;
  q.name = (char *)name;
  req.body_case = SYNOD__REQUEST__BODY_CHANNEL_INFO;
  req.channel_info = &q;
  Synod__Response *r = query(s, f, &req);
  uint64_t next = 1;
  if (r != NULL && code_of(r) == 0 &&
      r->body_case == SYNOD__RESPONSE__BODY_CHANNEL_INFO) {
    next = r->channel_info->next_offset;
  }
  synod__response__free_unpacked(r, NULL);
  return next;
}

static struct history_delivery *sub_push(struct sim_sub *sb) {
  if (sb->n == sb->cap) {
    sb->cap = sb->cap ? sb->cap * 2 : 64;
    sb->d = realloc(sb->d, sb->cap * sizeof *sb->d);
    if (sb->d == NULL) {
      abort();
    }
  }
  struct history_delivery *x = &sb->d[sb->n++];
  memset(x, 0, sizeof *x);
  return x;
}

void sim_sub_deliver(struct sim *s, struct sim_sub *sb, uint32_t c,
                     const Synod__ChannelMessage *m) {
  struct history_delivery *x = sub_push(sb);
  x->channel = c;
  x->offset = m->offset;
  x->index = m->index;
  x->publish = payload_decode(m->data.data, m->data.len, &x->part);
  sb->last_index = m->index;
  s->stats.deliveries++;
}

/* ------------------------------------------------------- attachments */

static bool replica_serves(const struct sim *s, uint32_t r) {
  return r >= 1 && r <= s->ids_n && s->r[r].up && !s->r[r].retired &&
         s->r[r].srv.fsm != NULL;
}

bool sim_sub_connected(const struct sim *s, const struct sim_sub *sb) {
  return replica_serves(s, sb->replica) && s->r[sb->replica].gen == sb->gen;
}

static void sub_attach_to(struct sim *s, struct sim_sub *sb, uint32_t r,
                          const char *why) {
  if (sb->replica != 0) {
    s->stats.sub_moves++;
  }
  if (sb->started) {
    sim_trace(s, r, "%s: attaches (%s), resuming at %s %" PRIu64, sb->name, why,
              sb->prefix ? "after index" : "offset",
              sb->prefix ? sb->last_index : sb->next);
  }
  sb->replica = r;
  sb->gen = s->r[r].gen;
  sb->cursors_valid = false;
}

/* Attaches to a random serving replica, another than `avoid` if there
 * is one. False if none serves. */
bool sim_sub_attach(struct sim *s, struct sim_sub *sb, uint32_t avoid,
                    const char *why) {
  uint32_t ids[SIM_IDS_MAX], n = 0;
  for (uint32_t r = 1; r <= s->ids_n; r++) {
    if (replica_serves(s, r) && r != avoid) {
      ids[n++] = r;
    }
  }
  if (n == 0) {
    return avoid != 0 && replica_serves(s, avoid);
  }
  sub_attach_to(s, sb, ids[pick(s, 0, n - 1)], why);
  return true;
}

static const struct fsm *sub_fsm(const struct sim *s,
                                 const struct sim_sub *sb) {
  return s->r[sb->replica].srv.fsm;
}

/* ------------------------------------------------- one-channel reads */

/* The replica says the next offset is past its channel's end: it is
 * behind, unless it has applied last_index (see struct sim_sub). */
static void sub_behind(struct sim *s, struct sim_sub *sb, const char *name) {
  uint64_t applied = fsm_applied_index(sub_fsm(s, sb));
  if (sb->last_index != 0 && applied >= sb->last_index) {
    sim_fail(s,
             "channels: %s asks r%" PRIu32 " for %s offset %" PRIu64
             " and is told it is past the end (SYNOD_ERANGE), though r%" PRIu32
             " applied index %" PRIu64 ", past index %" PRIu64
             " by which it held what came before",
             sb->name, sb->replica, name, sb->next, sb->replica, applied,
             sb->last_index);
  }
}

void sim_sub_compacted(struct sim *s, struct sim_sub *sb, const char *name,
                       uint64_t first, uint64_t next) {
  struct history_delivery *x = sub_push(sb);
  x->channel = sb->channel;
  x->offset = first;
  x->compacted = true;
  x->next = next != 0 ? next : channel_next(s, sub_fsm(s, sb), name);
  /* A replica that has applied as much as this one holds `first`. */
  sb->last_index = fsm_applied_index(sub_fsm(s, sb));
  sim_trace(s, sb->replica,
            "%s: %s offset %" PRIu64 " is compacted; goes on at %" PRIu64
            " (window to %" PRIu64 ", applied %" PRIu64 ")",
            sb->name, name, sb->next, first, x->next, sb->last_index);
  sb->next = first;
  s->stats.compactions++;
}

/* Reads the next messages of its channel; returns how many it delivered. */
static uint32_t sub_read_channel(struct sim *s, struct sim_sub *sb) {
  char name[8];
  uint64_t from = sb->next;
  uint32_t n = 0;
  sim_channel_name(s, sb->channel, name);
  if (s->opts.channel_break == SIM_BREAK_RANGE && !sb->broke &&
      sb->last_index != 0 &&
      fsm_applied_index(sub_fsm(s, sb)) >= sb->last_index) {
    sb->broke = true;
    sb->next += 1000000; /* broken on purpose: past any channel's end */
  }
  /* Pinned as libsynod's paged reads are: no channel here is ever
   * deleted, so every replica that has applied the pin must serve it (a
   * channel restored from an image keeps the index that created it), and
   * one that has not says so (SYNOD_EUNAVAILABLE). */
  Synod__Response *r =
      read_from(s, sub_fsm(s, sb), name, sb->next, sb->batch, sb->last_index);
  if (r == NULL) {
    return 0;
  }
  int code = code_of(r);
  if (code == SYNOD_ECOMPACTED) {
    sim_sub_compacted(s, sb, name, r->error->first_available, 0);
  } else if (code == SYNOD_ERANGE) {
    sub_behind(s, sb, name);
  } else if (code == SYNOD_EUNAVAILABLE &&
             fsm_applied_index(sub_fsm(s, sb)) >= sb->last_index) {
    sim_fail(s,
             "channels: %s: r%" PRIu32 " says it has not applied index %" PRIu64
             " yet, though it applied index %" PRIu64,
             sb->name, sb->replica, sb->last_index,
             fsm_applied_index(sub_fsm(s, sb)));
  } else if (code == SYNOD_EUNAVAILABLE) {
    /* Behind the index of the last message delivered: later. */
  } else if (code != 0 ||
             r->body_case != SYNOD__RESPONSE__BODY_CHANNEL_MESSAGES) {
    sim_fail(s,
             "channels: %s: r%" PRIu32 " answers a read of %s from offset "
             "%" PRIu64 " (known index %" PRIu64 ") with %d: %s",
             sb->name, sb->replica, name, sb->next, sb->last_index, code,
             r->error != NULL ? r->error->message : "");
  } else {
    const Synod__ChannelMessages *ms = r->channel_messages;
    for (size_t i = 0; i < ms->n_messages; i++) {
      sim_sub_deliver(s, sb, sb->channel, ms->messages[i]);
      sb->next = ms->messages[i]->offset + 1;
    }
    n = (uint32_t)ms->n_messages;
  }
  if (n > 0) {
    sim_trace(s, sb->replica, "%s: %s %" PRIu64 "..%" PRIu64, sb->name, name,
              from, sb->next - 1);
  }
  synod__response__free_unpacked(r, NULL);
  return n;
}

/* ---------------------------------------------------- prefix reads */

/* The first offset of the channel whose message has an index above
 * `after`, or the channel's end: where a prefix subscriber resumes. */
static uint64_t prefix_resume(struct sim *s, const struct fsm *f,
                              const char *name, uint64_t after) {
  uint64_t from = 0, next = 1;
  for (;;) {
    Synod__Response *r = read_from(s, f, name, from, 1000, 0);
    if (r == NULL || code_of(r) != 0 ||
        r->body_case != SYNOD__RESPONSE__BODY_CHANNEL_MESSAGES) {
      sim_fail(s, "channels: a read of %s from offset %" PRIu64 " failed", name,
               from);
      synod__response__free_unpacked(r, NULL);
      return 1;
    }
    const Synod__ChannelMessages *ms = r->channel_messages;
    next = ms->next_offset;
    for (size_t i = 0; i < ms->n_messages; i++) {
      if (ms->messages[i]->index > after) {
        uint64_t o = ms->messages[i]->offset;
        synod__response__free_unpacked(r, NULL);
        return o;
      }
    }
    from = ms->n_messages > 0 ? ms->messages[ms->n_messages - 1]->offset + 1
                              : next;
    synod__response__free_unpacked(r, NULL);
    if (from >= next) {
      return next;
    }
  }
}

/* A message read for the merge. */
struct pmsg {
  uint32_t channel;
  const Synod__ChannelMessage *m;
};

static int pmsg_cmp(const void *pa, const void *pb) {
  const struct pmsg *a = pa, *b = pb;
  if (a->m->index != b->m->index) {
    return a->m->index < b->m->index ? -1 : 1;
  }
  if (a->channel != b->channel) {
    return a->channel < b->channel ? -1 : 1;
  }
  return (a->m->offset > b->m->offset) - (a->m->offset < b->m->offset);
}

/* The prefix's channels on this replica (ChannelList), with cursors. */
static uint32_t prefix_channels(struct sim *s, struct sim_sub *sb,
                                uint32_t *cs) {
  const struct fsm *f = sub_fsm(s, sb);
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__ChannelList q = SYNOD__CHANNEL_LIST__INIT;
  q.after = "";
  req.body_case = SYNOD__REQUEST__BODY_CHANNEL_LIST;
  req.channel_list = &q;
  Synod__Response *r = query(s, f, &req);
  uint32_t n = 0;
  if (r == NULL || code_of(r) != 0 ||
      r->body_case != SYNOD__RESPONSE__BODY_CHANNEL_LIST) {
    sim_fail(s, "channels: %s: r%" PRIu32 " cannot list its channels", sb->name,
             sb->replica);
    synod__response__free_unpacked(r, NULL);
    return 0;
  }
  for (size_t i = 0; i < r->channel_list->n_channels; i++) {
    const char *name = r->channel_list->channels[i]->name;
    uint32_t c = sim_prefix_channel(s, name);
    if (c == UINT32_MAX) {
      continue;
    }
    if (sb->cursor[c] == 0) {
      sb->cursor[c] = prefix_resume(s, f, name, sb->last_index);
    }
    cs[n++] = c;
  }
  synod__response__free_unpacked(r, NULL);
  return n;
}

/* One step of a prefix subscriber: reads the next messages of each
 * channel from its cursor and delivers, in index order, those no channel
 * could still precede, about `batch` of them, and never part of an
 * entry: it resumes after the last delivered index, so the rest of a
 * batch delivered in part would be lost (SIM_BREAK_SPLIT_BATCH does
 * that). A read cut short bounds the merge below its last index: it
 * reads SIM_BATCH_MAX more than `batch`, so the entries below that index
 * are whole and there are some. Returns how many it delivered. */
static uint32_t sub_read_prefix(struct sim *s, struct sim_sub *sb) {
  const struct fsm *f = sub_fsm(s, sb);
  bool split = s->opts.channel_break == SIM_BREAK_SPLIT_BATCH;
  if (!sb->cursors_valid) {
    if (fsm_applied_index(f) < sb->last_index) {
      return 0; /* the replica has not reached where we are */
    }
    memset(sb->cursor, 0, sizeof sb->cursor);
    sb->cursors_valid = true;
  }
  uint32_t cs[SIM_CHANNELS_MAX];
  uint32_t k = prefix_channels(s, sb, cs);
  Synod__Response *rs[SIM_CHANNELS_MAX] = {0};
  struct pmsg *all = NULL;
  size_t all_n = 0;
  uint64_t bound = UINT64_MAX;
  for (uint32_t i = 0; i < k && !s->failed; i++) {
    char name[8];
    sim_channel_name(s, cs[i], name);
    rs[i] = read_from(s, f, name, sb->cursor[cs[i]],
                      split ? sb->batch : sb->batch + SIM_BATCH_MAX, 0);
    if (rs[i] == NULL || code_of(rs[i]) != 0 ||
        rs[i]->body_case != SYNOD__RESPONSE__BODY_CHANNEL_MESSAGES) {
      sim_fail(s, "channels: %s: r%" PRIu32 " refuses a read of %s at %" PRIu64,
               sb->name, sb->replica, name, sb->cursor[cs[i]]);
      break;
    }
    const Synod__ChannelMessages *ms = rs[i]->channel_messages;
    all = realloc(all, (all_n + ms->n_messages + 1) * sizeof *all);
    for (size_t j = 0; j < ms->n_messages; j++) {
      all[all_n++] = (struct pmsg){cs[i], ms->messages[j]};
    }
    const Synod__ChannelMessage *last =
        ms->n_messages > 0 ? ms->messages[ms->n_messages - 1] : NULL;
    if (last != NULL && last->offset + 1 < ms->next_offset &&
        last->index - (split ? 0 : 1) < bound) {
      bound = last->index - (split ? 0 : 1);
    }
  }
  uint32_t n = 0;
  if (!s->failed && all_n > 0) {
    qsort(all, all_n, sizeof *all, pmsg_cmp);
    for (size_t j = 0;
         j < all_n && all[j].m->index <= bound &&
         (n < sb->batch || (!split && all[j].m->index == sb->last_index));
         j++, n++) {
      sim_sub_deliver(s, sb, all[j].channel, all[j].m);
      sb->cursor[all[j].channel] = all[j].m->offset + 1;
    }
    if (n > 0) {
      sim_trace(s, sb->replica, "%s: %" PRIu32 " messages up to index %" PRIu64,
                sb->name, n, sb->last_index);
    }
  }
  for (uint32_t i = 0; i < k; i++) {
    synod__response__free_unpacked(rs[i], NULL);
  }
  free(all);
  return n;
}

static uint32_t sub_read(struct sim *s, struct sim_sub *sb) {
  return sb->prefix ? sub_read_prefix(s, sb) : sub_read_channel(s, sb);
}

/* ---------------------------------------------------------------- poll */

/* Subscribes: from the first offset (after index 0), or from the end as
 * this replica knows it (FROM_NEXT). */
static bool sub_start(struct sim *s, struct sim_sub *sb) {
  if (!sim_sub_attach(s, sb, 0, "subscribes")) {
    return false;
  }
  const struct fsm *f = sub_fsm(s, sb);
  char name[8];
  sim_channel_name(s, sb->channel, name);
  if (sb->prefix) {
    sb->start = sb->from_next ? fsm_applied_index(f) : 0;
    sb->last_index = sb->start;
  } else {
    sb->start = sb->from_next ? channel_next(s, f, name) : 1;
    sb->next = sb->start;
  }
  sb->started = true;
  sim_trace(s, sb->replica, "%s: subscribes to %s from %s %" PRIu64, sb->name,
            sb->prefix ? "ch*" : name, sb->prefix ? "after index" : "offset",
            sb->start);
  return true;
}

void sim_sub_poll(struct sim *s, uint32_t id) {
  struct sim_sub *sb = &s->subs[id - 1];
  if (sb->stopped || sb->final || s->failed) {
    return;
  }
  sim_schedule(s, s->now_ms + sb->poll_ms, SIM_EV_SUB, id, NULL);
  if (sb->push) {
    sim_psub_poll(s, sb);
    return;
  }
  if (!sb->started && !sub_start(s, sb)) {
    return;
  }
  if (sb->stop_ms != 0 && s->now_ms >= sb->stop_ms) {
    sb->stopped = true;
    sim_trace(s, sb->replica, "%s: unsubscribes", sb->name);
    return;
  }
  if (!sim_sub_connected(s, sb)) {
    if (!sim_sub_attach(s, sb, 0, "its replica went away")) {
      return;
    }
  } else if (sim_rand_ppm(&s->rand, sb->move_ppm)) {
    sim_sub_attach(s, sb, sb->replica, "moves");
  }
  sub_read(s, sb);
}

/* ------------------------------------------------------------ the end */

/* Reads until a read delivers nothing (the replica's end). */
static void sub_drain(struct sim *s, struct sim_sub *sb) {
  for (uint32_t i = 0; i < 1000000 && !s->failed; i++) {
    uint32_t before = sb->n;
    if (sub_read(s, sb) == 0 && sb->n == before &&
        (!sb->prefix || sb->cursors_valid)) {
      return;
    }
  }
  sim_fail(s, "channels: %s never reaches the end of r%" PRIu32, sb->name,
           sb->replica);
}

/* Every subscriber still running catches up, on its replica if that has
 * applied as much as the leader, else on the leader (a failover). */
static void subs_finish(struct sim *s, uint32_t leader) {
  uint64_t applied = fsm_applied_index(s->r[leader].srv.fsm);
  for (uint32_t i = 0; i < s->subs_n && !s->failed; i++) {
    struct sim_sub *sb = &s->subs[i];
    if (!sb->started || sb->stopped) {
      continue;
    }
    if (sb->push) { /* clients_finish ran them until they caught up */
      sb->to_end = sim_psub_caught_up(s, sb, leader);
      if (!sb->to_end) {
        sim_fail(s, "channels: %s never caught up with r%" PRIu32, sb->name,
                 leader);
      }
      continue;
    }
    if (!sim_sub_connected(s, sb) ||
        fsm_applied_index(sub_fsm(s, sb)) < applied) {
      sub_attach_to(s, sb, leader, "the end: catches up");
    }
    sub_drain(s, sb);
    sb->to_end = true;
  }
}

/* Final readers on every serving replica: each channel from offset 1 and
 * the prefix from index 0. Those on a replica that applied as much as
 * the leader ran "to the end"; the others only have to agree. */
static void finals_read(struct sim *s, uint32_t leader) {
  uint64_t applied = fsm_applied_index(s->r[leader].srv.fsm);
  for (uint32_t r = 1; r <= s->ids_n && !s->failed; r++) {
    if (!replica_serves(s, r)) {
      continue;
    }
    for (uint32_t c = 0; c <= sim_channels_total(s); c++) {
      struct sim_sub *sb = sub_new(s, c == sim_channels_total(s), c);
      if (sb == NULL) {
        return;
      }
      char name[8];
      sim_channel_name(s, c, name);
      snprintf(sb->name, sizeof sb->name, "final-%s@r%" PRIu32,
               sb->prefix ? "ch*" : name, r);
      sb->final = sb->started = true;
      sb->channel = sb->prefix ? 0 : c;
      sb->start = sb->prefix ? 0 : 1;
      sb->next = 1;
      sb->batch = 1000;
      sb->replica = r;
      sb->gen = s->r[r].gen;
      sub_drain(s, sb);
      sb->to_end = fsm_applied_index(s->r[r].srv.fsm) >= applied;
    }
  }
}

/* ------------------------------------------- breaking it on purpose */

static struct sim_sub *find_sub(struct sim *s, bool prefix, uint32_t min_n) {
  for (uint32_t i = 0; i < s->subs_n; i++) {
    struct sim_sub *sb = &s->subs[i];
    if (sb->prefix == prefix && sb->n >= min_n &&
        (prefix || !s->chan_ring || sb->channel != s->chan_n)) {
      return sb;
    }
  }
  return NULL;
}

static void sub_insert(struct sim_sub *sb, uint32_t at,
                       struct history_delivery x) {
  sub_push(sb);
  memmove(&sb->d[at + 1], &sb->d[at], (sb->n - 1 - at) * sizeof *sb->d);
  sb->d[at] = x;
}

static void swap_deliveries(struct sim_sub *sb, uint32_t i) {
  struct history_delivery t = sb->d[i];
  sb->d[i] = sb->d[i + 1];
  sb->d[i + 1] = t;
}

/* Where subscriber sb delivered (channel, offset), or UINT32_MAX. */
static uint32_t find_delivery(const struct sim_sub *sb, uint32_t c,
                              uint64_t offset) {
  for (uint32_t i = 0; i < sb->n; i++) {
    if (!sb->d[i].compacted && sb->d[i].channel == c &&
        sb->d[i].offset == offset) {
      return i;
    }
  }
  return UINT32_MAX;
}

/* Two messages of different channels, adjacent in the final prefix read
 * of the leader, that every prefix subscriber delivered adjacently or
 * not at all; swapped in every one of them. */
static bool break_index_order(struct sim *s, const struct sim_sub *full) {
  for (uint32_t i = 0; i + 1 < full->n; i++) {
    const struct history_delivery *a = &full->d[i], *b = &full->d[i + 1];
    bool fits = a->channel != b->channel;
    for (uint32_t k = 0; k < s->subs_n && fits; k++) {
      const struct sim_sub *sb = &s->subs[k];
      uint32_t x = find_delivery(sb, a->channel, a->offset);
      uint32_t y = find_delivery(sb, b->channel, b->offset);
      fits = !sb->prefix || (x == UINT32_MAX && y == UINT32_MAX) ||
             (x != UINT32_MAX && y == x + 1);
    }
    if (!fits) {
      continue;
    }
    uint32_t ca = a->channel, cb = b->channel;
    uint64_t oa = a->offset, ob = b->offset;
    for (uint32_t k = 0; k < s->subs_n; k++) {
      struct sim_sub *sb = &s->subs[k];
      uint32_t x = find_delivery(sb, ca, oa);
      if (sb->prefix && x != UINT32_MAX && find_delivery(sb, cb, ob) == x + 1) {
        swap_deliveries(sb, x);
      }
    }
    return true;
  }
  return false;
}

static const struct sim_sub *final_prefix(const struct sim *s) {
  for (uint32_t i = s->subs_n; i-- > 0;) {
    if (s->subs[i].final && s->subs[i].prefix && s->subs[i].to_end) {
      return &s->subs[i];
    }
  }
  return NULL;
}

/* Every delivery of (c, offset) now carries publish p, part k. */
static void relabel(struct sim *s, uint32_t c, uint64_t offset, uint32_t p,
                    uint32_t k) {
  for (uint32_t i = 0; i < s->subs_n; i++) {
    uint32_t x = find_delivery(&s->subs[i], c, offset);
    if (x != UINT32_MAX) {
      s->subs[i].d[x].publish = p;
      s->subs[i].d[x].part = k;
    }
  }
}

static bool break_deliveries(struct sim *s, uint32_t mode) {
  struct sim_sub *sb = find_sub(s, mode == SIM_BREAK_INTERLEAVING, 3);
  const struct sim_sub *full = final_prefix(s);
  switch (mode) {
  case SIM_BREAK_GAP:
    if (sb != NULL) {
      memmove(&sb->d[1], &sb->d[2], (sb->n - 2) * sizeof *sb->d);
      sb->n--;
    }
    return sb != NULL;
  case SIM_BREAK_DUPLICATE:
    if (sb != NULL) {
      sub_insert(sb, 1, sb->d[1]);
    }
    return sb != NULL;
  case SIM_BREAK_COMPACTED:
    if (sb != NULL) {
      sb->d[1] = (struct history_delivery){.channel = sb->d[1].channel,
                                           .offset = sb->d[2].offset,
                                           .compacted = true,
                                           .next = sb->d[2].offset + 1};
    }
    return sb != NULL;
  case SIM_BREAK_INTERLEAVING:
    for (uint32_t i = 0; sb != NULL && !sb->final && i + 1 < sb->n; i++) {
      if (sb->d[i].channel != sb->d[i + 1].channel) {
        swap_deliveries(sb, i);
        return true;
      }
    }
    return false;
  case SIM_BREAK_INDEX_ORDER:
    return full != NULL && break_index_order(s, full);
  case SIM_BREAK_AGREEMENT:
    if (sb != NULL) {
      sb->d[2].publish = sb->d[1].publish;
      sb->d[2].part = sb->d[1].part;
    }
    return sb != NULL;
  default:
    return false;
  }
}

static int hop_by_complete(const void *pa, const void *pb) {
  const struct history_publish *a = *(const struct history_publish *const *)pa;
  const struct history_publish *b = *(const struct history_publish *const *)pb;
  return (a->complete > b->complete) - (a->complete < b->complete);
}

/* Where a publish's first part was delivered, if anywhere. */
struct seen {
  bool known;
  uint32_t channel;
  uint64_t offset;
  uint64_t index;
};

static struct seen *seen_all(const struct sim *s) {
  struct seen *seen = calloc(s->hops_n + 1, sizeof *seen);
  if (seen == NULL) {
    abort();
  }
  for (uint32_t i = 0; i < s->subs_n; i++) {
    for (uint32_t j = 0; j < s->subs[i].n; j++) {
      const struct history_delivery *x = &s->subs[i].d[j];
      if (!x->compacted && x->publish < s->hops_n && x->part == 0) {
        seen[x->publish] = (struct seen){true, x->channel, x->offset, x->index};
      }
    }
  }
  return seen;
}

/* Publish B, seen in channel X, invoked again just after the answer to
 * an acknowledged publish A of another channel with a higher index; the
 * outcomes of B and of X's publishes answered before A become unknown
 * (that only weakens the history), so only the index order is broken. */
static bool break_real_time_index(struct history_publish *pubs, size_t n,
                                  const struct seen *seen) {
  const struct history_publish **acked = calloc(n + 1, sizeof *acked);
  size_t k = 0;
  bool done = false;
  for (size_t i = 0; i < n; i++) {
    if (pubs[i].n > 0 && pubs[i].acked) {
      acked[k++] = &pubs[i];
    }
  }
  qsort(acked, k, sizeof *acked, hop_by_complete);
  for (size_t i = 0; i < k && !done; i++) {
    const struct history_publish *a = acked[i];
    for (size_t p = 0; p < n && !done; p++) {
      if (pubs[p].n == 0 || !seen[p].known || seen[p].channel == a->channel ||
          seen[p].index >= a->index) {
        continue;
      }
      uint64_t at = a->complete;
      for (size_t q = 0; q < n; q++) {
        if (pubs[q].acked && pubs[q].channel == seen[p].channel &&
            pubs[q].complete < at) {
          pubs[q].acked = false;
          pubs[q].complete = 0;
        }
      }
      pubs[p].invoke = at + 1;
      pubs[p].acked = false;
      pubs[p].complete = 0;
      done = true;
    }
  }
  free(acked);
  return done;
}

/* Publish x (acknowledged and seen) and the history around it broken as
 * mode says; false if x does not lend itself to it. */
static bool break_publish(struct sim *s, struct history_publish *pubs, size_t n,
                          uint32_t p, const struct seen *seen, uint32_t mode) {
  struct history_publish *x = &pubs[p];
  uint32_t c = seen[p].channel;
  const struct sim_sub *full = final_prefix(s);
  switch (mode) {
  case SIM_BREAK_REFUSED:
    x->acked = false;
    x->refused = true;
    return true;
  case SIM_BREAK_ACKNOWLEDGED:
    x->first_offset++;
    x->last_offset++;
    return true;
  case SIM_BREAK_EXACTLY_ONCE:
    /* The message after this publish's last, everywhere, is its last part
     * again: one payload at two offsets. */
    if (full != NULL &&
        find_delivery(full, c, x->last_offset + 1) != UINT32_MAX) {
      relabel(s, c, x->last_offset + 1, p, x->n - 1);
      return true;
    }
    return false;
  case SIM_BREAK_LOST:
    for (uint32_t i = 0; i < s->subs_n; i++) {
      struct sim_sub *sb = &s->subs[i];
      uint32_t at = find_delivery(sb, c, x->last_offset);
      if (!sb->prefix && sb->to_end && at != UINT32_MAX && at + 1 == sb->n) {
        sb->n--;
        return true;
      }
    }
    return false;
  case SIM_BREAK_REAL_TIME:
    /* An earlier message of its channel, invoked after it was
     * acknowledged. */
    for (size_t q = 0; q < n; q++) {
      if (pubs[q].n > 0 && seen[q].known && seen[q].channel == c &&
          seen[q].offset < seen[p].offset) {
        pubs[q].invoke = x->complete + 1;
        return true;
      }
    }
    return false;
  default:
    return false;
  }
}

static bool break_publishes(struct sim *s, struct history_publish *pubs,
                            size_t n, uint32_t mode) {
  struct seen *seen = seen_all(s);
  bool done = false;
  if (mode == SIM_BREAK_REAL_TIME_INDEX) {
    done = break_real_time_index(pubs, n, seen);
  }
  for (uint32_t p = 0; p < n && !done; p++) {
    if (pubs[p].n > 0 && pubs[p].acked && seen[p].known) {
      done = break_publish(s, pubs, n, p, seen, mode);
    }
  }
  free(seen);
  return done;
}

/* ----------------------------------------------------------- the check */

/* Publishes as their clients saw them, one per history operation (n 0
 * for the other operations). */
static struct history_publish *publishes(const struct sim *s) {
  struct history_publish *pubs = calloc(s->hops_n + 1, sizeof *pubs);
  if (pubs == NULL) {
    abort();
  }
  for (uint32_t i = 0; i < s->hops_n; i++) {
    const struct sim_hop *hp = &s->hops[i];
    if (hp->spec.type != SIM_OP_PUBLISH) {
      continue;
    }
    bool answered = hp->r.done && hp->r.code >= 0;
    pubs[i] = (struct history_publish){.channel = hp->spec.name,
                                       .n = (uint32_t)hp->spec.a1,
                                       .invoke = hp->invoke,
                                       .complete = answered ? hp->complete : 0,
                                       .acked = answered && hp->r.code == 0,
                                       .refused = answered && hp->r.code > 0,
                                       .first_offset = hp->r.first_offset,
                                       .last_offset = hp->r.last_offset,
                                       .index = hp->r.index};
  }
  return pubs;
}

void sim_channels_check(struct sim *s) {
  uint32_t leader = (uint32_t)sim_leader(s);
  uint32_t total = sim_channels_total(s), mode = s->opts.channel_break;
  if (s->failed || leader == 0) {
    return;
  }
  subs_finish(s, leader);
  finals_read(s, leader);
  if (s->failed) {
    return;
  }
  struct history_publish *pubs = publishes(s);
  uint64_t retain[SIM_CHANNELS_MAX] = {0};
  bool in_prefix[SIM_CHANNELS_MAX] = {false};
  struct history_subscriber *hs = calloc(s->subs_n + 1, sizeof *hs);
  for (uint32_t c = 0; c < total; c++) {
    in_prefix[c] = c < s->chan_n;
    retain[c] = c < s->chan_n ? 0 : s->ring_retain;
  }
  if (mode != SIM_BREAK_NONE && mode != SIM_BREAK_RANGE &&
      mode != SIM_BREAK_SPLIT_BATCH && !break_deliveries(s, mode) &&
      !break_publishes(s, pubs, s->hops_n, mode)) {
    sim_fail(s, "channels: --break-channels %s: nothing to break in this run",
             sim_channel_break_name(mode));
  }
  uint32_t k = 0;
  for (uint32_t i = 0; i < s->subs_n; i++) {
    const struct sim_sub *sb = &s->subs[i];
    if (sb->started) {
      hs[k++] = (struct history_subscriber){.name = sb->name,
                                            .prefix = sb->prefix,
                                            .channel = sb->channel,
                                            .start = sb->start,
                                            .to_end = sb->to_end,
                                            .d = sb->d,
                                            .n = sb->n};
    }
  }
  struct history_channels h = {.channels_n = total,
                               .retain = retain,
                               .in_prefix = in_prefix,
                               .pubs = pubs,
                               .pubs_n = s->hops_n,
                               .subs = hs,
                               .subs_n = k};
  char why[768];
  sim_trace(s, leader,
            "channels: checking %" PRIu32 " subscribers, %" PRIu64
            " deliveries",
            k, s->stats.deliveries);
  if (!s->failed && !history_channels_check(&h, why, sizeof why)) {
    sim_fail(s, "channels: %s", why);
  }
  free(hs);
  free(pubs);
}
