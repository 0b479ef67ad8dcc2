/* Peer codec: struct core_msg <-> synod.peer.PeerMessage. */
#include "peer_codec.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "synod.h"

/* ------------------------------------------------------------- encoding */

static void config_to_pb(const struct core_config *c, Synod__Peer__Config *pb) {
  pb->n_voters = c->voters_n;
  pb->voters = (uint64_t *)c->voters;
  pb->n_learners = c->learners_n;
  pb->learners = (uint64_t *)c->learners;
}

/* Builds the append body; *entries_out holds what must be freed. */
static int append_to_pb(const struct core_msg *m, Synod__Peer__Append *pb,
                        void **entries_out) {
  uint32_t n = m->append.entries_n;
  pb->prev_index = m->append.prev_index;
  pb->prev_term = m->append.prev_term;
  pb->commit = m->append.commit;
  *entries_out = NULL;
  if (n == 0) {
    return 0;
  }
  /* One block: n pointers, then n entries. */
  void *block = malloc(n * (sizeof(void *) + sizeof(Synod__Peer__Entry)));
  if (block == NULL) {
    return SYNOD_ENOMEM;
  }
  Synod__Peer__Entry **ptrs = block;
  Synod__Peer__Entry *es = (Synod__Peer__Entry *)(ptrs + n);
  for (uint32_t i = 0; i < n; i++) {
    const struct core_entry *e = &m->append.entries[i];
    synod__peer__entry__init(&es[i]);
    es[i].term = e->term;
    es[i].index = e->index;
    es[i].type = e->type;
    es[i].data.data = (uint8_t *)e->data;
    es[i].data.len = e->len;
    ptrs[i] = &es[i];
  }
  pb->n_entries = n;
  pb->entries = ptrs;
  *entries_out = block;
  return 0;
}

int peer_msg_encode(const struct core_msg *m, struct frame_buf *out,
                    uint32_t frame_max_bytes) {
  Synod__Peer__PeerMessage pb = SYNOD__PEER__PEER_MESSAGE__INIT;
  Synod__Peer__Append append = SYNOD__PEER__APPEND__INIT;
  Synod__Peer__AppendReply append_reply = SYNOD__PEER__APPEND_REPLY__INIT;
  Synod__Peer__Vote vote = SYNOD__PEER__VOTE__INIT;
  Synod__Peer__VoteReply vote_reply = SYNOD__PEER__VOTE_REPLY__INIT;
  Synod__Peer__Heartbeat hb = SYNOD__PEER__HEARTBEAT__INIT;
  Synod__Peer__HeartbeatReply hb_reply = SYNOD__PEER__HEARTBEAT_REPLY__INIT;
  Synod__Peer__SnapshotChunk snap = SYNOD__PEER__SNAPSHOT_CHUNK__INIT;
  Synod__Peer__SnapshotMeta meta = SYNOD__PEER__SNAPSHOT_META__INIT;
  Synod__Peer__Config config = SYNOD__PEER__CONFIG__INIT;
  Synod__Peer__SnapshotReply snap_reply = SYNOD__PEER__SNAPSHOT_REPLY__INIT;
  Synod__Peer__TimeoutNow timeout_now = SYNOD__PEER__TIMEOUT_NOW__INIT;
  void *owned = NULL;
  int rv = 0;

  pb.from = m->from;
  pb.to = m->to;
  pb.term = m->term;
  switch (m->type) {
  case CORE_MSG_APPEND:
    rv = append_to_pb(m, &append, &owned);
    pb.body_case = SYNOD__PEER__PEER_MESSAGE__BODY_APPEND;
    pb.append = &append;
    break;
  case CORE_MSG_APPEND_REPLY:
    append_reply.reject = m->append_reply.reject;
    append_reply.index = m->append_reply.index;
    append_reply.hint_index = m->append_reply.hint_index;
    append_reply.hint_term = m->append_reply.hint_term;
    pb.body_case = SYNOD__PEER__PEER_MESSAGE__BODY_APPEND_REPLY;
    pb.append_reply = &append_reply;
    break;
  case CORE_MSG_VOTE:
  case CORE_MSG_PRE_VOTE:
    vote.last_index = m->vote.last_index;
    vote.last_term = m->vote.last_term;
    vote.transfer = m->vote.transfer;
    if (m->type == CORE_MSG_VOTE) {
      pb.body_case = SYNOD__PEER__PEER_MESSAGE__BODY_VOTE;
      pb.vote = &vote;
    } else {
      pb.body_case = SYNOD__PEER__PEER_MESSAGE__BODY_PRE_VOTE;
      pb.pre_vote = &vote;
    }
    break;
  case CORE_MSG_VOTE_REPLY:
  case CORE_MSG_PRE_VOTE_REPLY:
    vote_reply.granted = m->vote_reply.granted;
    if (m->type == CORE_MSG_VOTE_REPLY) {
      pb.body_case = SYNOD__PEER__PEER_MESSAGE__BODY_VOTE_REPLY;
      pb.vote_reply = &vote_reply;
    } else {
      pb.body_case = SYNOD__PEER__PEER_MESSAGE__BODY_PRE_VOTE_REPLY;
      pb.pre_vote_reply = &vote_reply;
    }
    break;
  case CORE_MSG_HEARTBEAT:
    hb.commit = m->heartbeat.commit;
    hb.read_ctx = m->heartbeat.read_ctx;
    pb.body_case = SYNOD__PEER__PEER_MESSAGE__BODY_HEARTBEAT;
    pb.heartbeat = &hb;
    break;
  case CORE_MSG_HEARTBEAT_REPLY:
    hb_reply.read_ctx = m->heartbeat_reply.read_ctx;
    pb.body_case = SYNOD__PEER__PEER_MESSAGE__BODY_HEARTBEAT_REPLY;
    pb.heartbeat_reply = &hb_reply;
    break;
  case CORE_MSG_SNAPSHOT:
    config_to_pb(&m->snapshot.meta.config, &config);
    meta.index = m->snapshot.meta.index;
    meta.term = m->snapshot.meta.term;
    meta.size_bytes = m->snapshot.meta.size_bytes;
    meta.config = &config;
    snap.meta = &meta;
    snap.offset = m->snapshot.offset;
    snap.data.data = (uint8_t *)m->snapshot.data;
    snap.data.len = m->snapshot.data ? m->snapshot.len : 0;
    snap.last = m->snapshot.last;
    pb.body_case = SYNOD__PEER__PEER_MESSAGE__BODY_SNAPSHOT;
    pb.snapshot = &snap;
    break;
  case CORE_MSG_SNAPSHOT_REPLY:
    snap_reply.index = m->snapshot_reply.index;
    snap_reply.offset = m->snapshot_reply.offset;
    snap_reply.reject = m->snapshot_reply.reject;
    pb.body_case = SYNOD__PEER__PEER_MESSAGE__BODY_SNAPSHOT_REPLY;
    pb.snapshot_reply = &snap_reply;
    break;
  case CORE_MSG_TIMEOUT_NOW:
    pb.body_case = SYNOD__PEER__PEER_MESSAGE__BODY_TIMEOUT_NOW;
    pb.timeout_now = &timeout_now;
    break;
  default:
    return SYNOD_EINVAL;
  }
  if (rv == 0) {
    rv = frame_buf_append_msg(out, &pb.base, frame_max_bytes);
  }
  free(owned);
  return rv;
}

/* ------------------------------------------------------------- decoding */

static int config_from_pb(const Synod__Peer__Config *pb, struct core_config *c,
                          char *errmsg) {
  memset(c, 0, sizeof *c);
  if (pb == NULL) {
    return 0;
  }
  if (pb->n_voters > CORE_MEMBERS_MAX || pb->n_learners > CORE_MEMBERS_MAX) {
    errmsg_set(errmsg, "config with %zu voters and %zu learners (max %d)",
               pb->n_voters, pb->n_learners, CORE_MEMBERS_MAX);
    return SYNOD_EMALFORMED;
  }
  c->voters_n = (uint32_t)pb->n_voters;
  c->learners_n = (uint32_t)pb->n_learners;
  /* protobuf-c leaves an empty repeated field NULL, and memcpy from NULL
   * is undefined even for 0 bytes. */
  if (pb->n_voters > 0) {
    memcpy(c->voters, pb->voters, pb->n_voters * sizeof(uint64_t));
  }
  if (pb->n_learners > 0) {
    memcpy(c->learners, pb->learners, pb->n_learners * sizeof(uint64_t));
  }
  return 0;
}

static int append_from_pb(struct peer_decoded *d, const Synod__Peer__Append *pb,
                          char *errmsg) {
  struct core_msg *m = &d->msg;
  m->type = CORE_MSG_APPEND;
  m->append.prev_index = pb->prev_index;
  m->append.prev_term = pb->prev_term;
  m->append.commit = pb->commit;
  if (pb->n_entries > PEER_APPEND_ENTRIES_MAX) {
    errmsg_set(errmsg, "append with %zu entries (max %d)", pb->n_entries,
               PEER_APPEND_ENTRIES_MAX);
    return SYNOD_EMALFORMED;
  }
  if (pb->n_entries == 0) {
    return 0;
  }
  d->entries = calloc(pb->n_entries, sizeof *d->entries);
  if (d->entries == NULL) {
    errmsg_set(errmsg, "append with %zu entries: out of memory", pb->n_entries);
    return SYNOD_ENOMEM;
  }
  for (size_t i = 0; i < pb->n_entries; i++) {
    const Synod__Peer__Entry *e = pb->entries[i];
    if (e->type > CORE_ENTRY_NOOP) {
      errmsg_set(errmsg, "entry %llu has unknown type %u",
                 (unsigned long long)e->index, e->type);
      return SYNOD_EMALFORMED;
    }
    d->entries[i] = (struct core_entry){.term = e->term,
                                        .index = e->index,
                                        .type = (uint8_t)e->type,
                                        .data = e->data.data,
                                        .len = e->data.len};
  }
  m->append.entries = d->entries;
  m->append.entries_n = (uint32_t)pb->n_entries;
  return 0;
}

static int snapshot_from_pb(struct core_msg *m,
                            const Synod__Peer__SnapshotChunk *pb,
                            char *errmsg) {
  m->type = CORE_MSG_SNAPSHOT;
  if (pb->meta == NULL) {
    errmsg_set(errmsg, "snapshot chunk without meta");
    return SYNOD_EMALFORMED;
  }
  if (pb->data.len > UINT32_MAX) {
    errmsg_set(errmsg, "snapshot chunk of %zu bytes", pb->data.len);
    return SYNOD_EMALFORMED;
  }
  m->snapshot.meta.index = pb->meta->index;
  m->snapshot.meta.term = pb->meta->term;
  m->snapshot.meta.size_bytes = pb->meta->size_bytes;
  m->snapshot.offset = pb->offset;
  m->snapshot.data = pb->data.data;
  m->snapshot.len = (uint32_t)pb->data.len;
  m->snapshot.last = pb->last;
  return config_from_pb(pb->meta->config, &m->snapshot.meta.config, errmsg);
}

/* Fills d->msg from the protobuf body; link-level bodies leave is_core
 * false. */
static int core_msg_from_pb(struct peer_decoded *d, char *errmsg) {
  const Synod__Peer__PeerMessage *pb = d->pb;
  struct core_msg *m = &d->msg;
  d->is_core = true;
  switch (pb->body_case) {
  case SYNOD__PEER__PEER_MESSAGE__BODY_APPEND:
    return append_from_pb(d, pb->append, errmsg);
  case SYNOD__PEER__PEER_MESSAGE__BODY_APPEND_REPLY:
    m->type = CORE_MSG_APPEND_REPLY;
    m->append_reply.reject = pb->append_reply->reject;
    m->append_reply.index = pb->append_reply->index;
    m->append_reply.hint_index = pb->append_reply->hint_index;
    m->append_reply.hint_term = pb->append_reply->hint_term;
    return 0;
  case SYNOD__PEER__PEER_MESSAGE__BODY_VOTE:
  case SYNOD__PEER__PEER_MESSAGE__BODY_PRE_VOTE: {
    bool pre = pb->body_case == SYNOD__PEER__PEER_MESSAGE__BODY_PRE_VOTE;
    const Synod__Peer__Vote *v = pre ? pb->pre_vote : pb->vote;
    m->type = pre ? CORE_MSG_PRE_VOTE : CORE_MSG_VOTE;
    m->vote.last_index = v->last_index;
    m->vote.last_term = v->last_term;
    m->vote.transfer = v->transfer;
    return 0;
  }
  case SYNOD__PEER__PEER_MESSAGE__BODY_VOTE_REPLY:
  case SYNOD__PEER__PEER_MESSAGE__BODY_PRE_VOTE_REPLY: {
    bool pre = pb->body_case == SYNOD__PEER__PEER_MESSAGE__BODY_PRE_VOTE_REPLY;
    m->type = pre ? CORE_MSG_PRE_VOTE_REPLY : CORE_MSG_VOTE_REPLY;
    m->vote_reply.granted =
        pre ? pb->pre_vote_reply->granted : pb->vote_reply->granted;
    return 0;
  }
  case SYNOD__PEER__PEER_MESSAGE__BODY_HEARTBEAT:
    m->type = CORE_MSG_HEARTBEAT;
    m->heartbeat.commit = pb->heartbeat->commit;
    m->heartbeat.read_ctx = pb->heartbeat->read_ctx;
    return 0;
  case SYNOD__PEER__PEER_MESSAGE__BODY_HEARTBEAT_REPLY:
    m->type = CORE_MSG_HEARTBEAT_REPLY;
    m->heartbeat_reply.read_ctx = pb->heartbeat_reply->read_ctx;
    return 0;
  case SYNOD__PEER__PEER_MESSAGE__BODY_SNAPSHOT:
    return snapshot_from_pb(m, pb->snapshot, errmsg);
  case SYNOD__PEER__PEER_MESSAGE__BODY_SNAPSHOT_REPLY:
    m->type = CORE_MSG_SNAPSHOT_REPLY;
    m->snapshot_reply.index = pb->snapshot_reply->index;
    m->snapshot_reply.offset = pb->snapshot_reply->offset;
    m->snapshot_reply.reject = pb->snapshot_reply->reject;
    return 0;
  case SYNOD__PEER__PEER_MESSAGE__BODY_TIMEOUT_NOW:
    m->type = CORE_MSG_TIMEOUT_NOW;
    return 0;
  case SYNOD__PEER__PEER_MESSAGE__BODY_HELLO:
  case SYNOD__PEER__PEER_MESSAGE__BODY_JOIN:
  case SYNOD__PEER__PEER_MESSAGE__BODY_LEAVE:
  case SYNOD__PEER__PEER_MESSAGE__BODY_MEMBERSHIP_REPLY:
  case SYNOD__PEER__PEER_MESSAGE__BODY_READ_INDEX:
  case SYNOD__PEER__PEER_MESSAGE__BODY_READ_INDEX_REPLY:
  case SYNOD__PEER__PEER_MESSAGE__BODY_STATUS_QUERY:
  case SYNOD__PEER__PEER_MESSAGE__BODY_STATUS_ANSWER:
  case SYNOD__PEER__PEER_MESSAGE__BODY_FORWARD_REQUEST:
  case SYNOD__PEER__PEER_MESSAGE__BODY_FORWARD_REPLY:
    d->is_core = false;
    return 0;
  default:
    errmsg_set(errmsg, "peer message with unknown body %d", (int)pb->body_case);
    return SYNOD_EMALFORMED;
  }
}

int peer_msg_decode(const uint8_t *buf, size_t len, struct peer_decoded *out,
                    char *errmsg) {
  return peer_msg_decode_in(NULL, buf, len, out, errmsg);
}

int peer_msg_decode_in(struct pb_arena *arena, const uint8_t *buf, size_t len,
                       struct peer_decoded *out, char *errmsg) {
  memset(out, 0, sizeof *out);
  out->arena = arena;
  out->pb = synod__peer__peer_message__unpack(
      arena != NULL ? &arena->allocator : NULL, len, buf);
  if (out->pb == NULL) {
    if (arena != NULL) {
      pb_arena_reset(arena); /* what the failed unpack allocated */
    }
    errmsg_set(errmsg, "peer frame of %zu bytes does not decode", len);
    return SYNOD_EMALFORMED;
  }
  out->msg.from = out->pb->from;
  out->msg.to = out->pb->to;
  out->msg.term = out->pb->term;
  int rv = core_msg_from_pb(out, errmsg);
  if (rv != 0) {
    peer_decoded_free(out);
  }
  return rv;
}

void peer_decoded_free(struct peer_decoded *d) {
  if (d->arena != NULL) {
    pb_arena_reset(d->arena);
  } else if (d->pb != NULL) {
    synod__peer__peer_message__free_unpacked(d->pb, NULL);
  }
  free(d->entries);
  memset(d, 0, sizeof *d);
}
