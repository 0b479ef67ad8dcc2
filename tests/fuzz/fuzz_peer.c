/* Fuzz harness: a peer's byte stream, from framing and decoding
 * (server/net/frame.c, peer_codec.c) to the core's step with
 * CORE_EVENT_RECEIVE (server/core), on replica 1 of a 3-voter cluster.
 *
 * Input: a byte of flags (bit 0: replica 1 is the leader of term 2,
 * elected by 2's vote; else a fresh follower; bit 1: the shell reports
 * each update's entries durable, as it would, so that commits advance),
 * then the stream of frames.
 * Invariants: a frame either decodes or is refused with
 * SYNOD_EMALFORMED and a message; a decoded core message re-encodes and
 * decodes to the same message; a step that fails leaves the core as it
 * was (term, role, leader, commit, last index) and hands out no work; a
 * step that succeeds never lowers the term, keeps commit <= last index,
 * hands out contiguous entries and committed entries in order. */
#include "fuzz.h"

#include "core.h"
#include "err.h"
#include "frame.h"
#include "peer_codec.h"
#include "synod.h"

struct view {
  uint64_t term, leader, commit, last;
  enum core_role role;
};

static struct view view_of(const struct core *c) {
  return (struct view){core_term(c), core_leader(c), core_commit_index(c),
                       core_last_index(c), core_role(c)};
}

static bool views_equal(const struct view *a, const struct view *b) {
  return a->term == b->term && a->leader == b->leader &&
         a->commit == b->commit && a->last == b->last && a->role == b->role;
}

static bool entries_equal(const struct core_entry *a,
                          const struct core_entry *b, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    if (a[i].term != b[i].term || a[i].index != b[i].index ||
        a[i].type != b[i].type || a[i].len != b[i].len ||
        (a[i].len && memcmp(a[i].data, b[i].data, a[i].len))) {
      return false;
    }
  }
  return true;
}

static bool msgs_equal(const struct core_msg *a, const struct core_msg *b) {
  if (a->type != b->type || a->from != b->from || a->to != b->to ||
      a->term != b->term) {
    return false;
  }
  switch (a->type) {
  case CORE_MSG_APPEND:
    return a->append.prev_index == b->append.prev_index &&
           a->append.prev_term == b->append.prev_term &&
           a->append.commit == b->append.commit &&
           a->append.entries_n == b->append.entries_n &&
           entries_equal(a->append.entries, b->append.entries,
                         a->append.entries_n);
  case CORE_MSG_APPEND_REPLY:
    return !memcmp(&a->append_reply, &b->append_reply, sizeof a->append_reply);
  case CORE_MSG_VOTE:
  case CORE_MSG_PRE_VOTE:
    return a->vote.last_index == b->vote.last_index &&
           a->vote.last_term == b->vote.last_term &&
           a->vote.transfer == b->vote.transfer;
  case CORE_MSG_VOTE_REPLY:
  case CORE_MSG_PRE_VOTE_REPLY:
    return a->vote_reply.granted == b->vote_reply.granted;
  case CORE_MSG_HEARTBEAT:
    return a->heartbeat.commit == b->heartbeat.commit &&
           a->heartbeat.read_ctx == b->heartbeat.read_ctx;
  case CORE_MSG_HEARTBEAT_REPLY:
    return a->heartbeat_reply.read_ctx == b->heartbeat_reply.read_ctx;
  case CORE_MSG_SNAPSHOT:
    return !memcmp(&a->snapshot.meta, &b->snapshot.meta,
                   sizeof a->snapshot.meta) &&
           a->snapshot.offset == b->snapshot.offset &&
           a->snapshot.len == b->snapshot.len &&
           a->snapshot.last == b->snapshot.last &&
           (a->snapshot.len == 0 ||
            !memcmp(a->snapshot.data, b->snapshot.data, a->snapshot.len));
  case CORE_MSG_SNAPSHOT_REPLY:
    return a->snapshot_reply.index == b->snapshot_reply.index &&
           a->snapshot_reply.offset == b->snapshot_reply.offset &&
           a->snapshot_reply.reject == b->snapshot_reply.reject;
  default:
    return true;
  }
}

/* A decoded core message encodes and decodes to itself. */
static void check_reencode(const struct core_msg *m) {
  struct frame_buf b;
  struct peer_decoded d;
  char err[SYNOD_ERRMSG_MAX];
  frame_buf_init(&b);
  int rv = peer_msg_encode(m, &b, UINT32_MAX);
  FUZZ_CHECK(rv == 0, "peer_msg_encode: %d", rv);
  rv = peer_msg_decode(b.data + FRAME_HEADER_BYTES, b.len - FRAME_HEADER_BYTES,
                       &d, err);
  FUZZ_CHECK(rv == 0 && d.is_core, "re-encoded message: %d %s", rv, err);
  FUZZ_CHECK(msgs_equal(m, &d.msg), "re-encoded %s differs",
             core_msg_type_name(m->type));
  peer_decoded_free(&d);
  frame_buf_close(&b);
}

static void check_update(const struct core *c, const struct view *before,
                         const struct core_update *up) {
  struct view now = view_of(c);
  FUZZ_CHECK(now.term >= before->term, "term went back");
  FUZZ_CHECK(now.commit <= now.last, "commit %llu past last %llu",
             (unsigned long long)now.commit, (unsigned long long)now.last);
  for (uint32_t i = 1; i < up->entries_n; i++) {
    FUZZ_CHECK(up->entries[i].index == up->entries[i - 1].index + 1 &&
                   up->entries[i].term >= up->entries[i - 1].term,
               "entries to persist not contiguous");
  }
  for (uint32_t i = 1; i < up->committed_n; i++) {
    FUZZ_CHECK(up->committed[i].index == up->committed[i - 1].index + 1,
               "committed entries out of order");
  }
  if (up->hard_state_changed) {
    FUZZ_CHECK(up->hard_state.term >= before->term, "hard state term back");
  }
}

static int step(struct core *c, const struct core_event *ev,
                struct core_update *up) {
  return core_step(c, ev, up);
}

/* The shell made the update's writes durable. */
static void persist(struct core *c, const struct core_update *up) {
  if (up->entries_n == 0) {
    return;
  }
  struct core_update next;
  struct core_event ev = {.type = CORE_EVENT_PERSISTED};
  ev.persisted.index = up->entries[up->entries_n - 1].index;
  ev.persisted.term = up->entries[up->entries_n - 1].term;
  int rv = step(c, &ev, &next);
  FUZZ_CHECK(rv == 0, "PERSISTED of what was handed out: %d %s", rv,
             core_errmsg(c));
}

static void receive(struct core *c, const struct core_msg *m, bool durable) {
  struct view before = view_of(c);
  struct core_update up;
  struct core_event ev = {.type = CORE_EVENT_RECEIVE};
  ev.msg = m;
  int rv = step(c, &ev, &up);
  if (rv != 0) {
    struct view after = view_of(c);
    FUZZ_CHECK(rv == SYNOD_EMALFORMED, "RECEIVE refused with %d", rv);
    FUZZ_CHECK(views_equal(&before, &after), "a refused %s changed the core",
               core_msg_type_name(m->type));
    FUZZ_CHECK(up.msgs_n == 0 && up.entries_n == 0 && up.committed_n == 0,
               "a refused message handed out work");
    return;
  }
  check_update(c, &before, &up);
  if (durable) {
    persist(c, &up);
  }
}

static uint8_t boot_buf[CORE_CONFIG_ENCODED_MAX];

static struct core *new_core(bool leader) {
  struct core_config cfg = {.voters_n = 3, .voters = {1, 2, 3}};
  struct core_entry boot = {.term = 1, .index = 1, .type = CORE_ENTRY_CONFIG};
  boot.len = core_config_encode(&cfg, boot_buf);
  boot.data = boot_buf;
  struct core_restore r = {
      .hard_state = {.term = 1}, .entries = &boot, .entries_n = 1};
  struct core_options o = {.id = 1, .seed = 1, .disable_pre_vote = true};
  char err[SYNOD_ERRMSG_MAX];
  struct core *c = core_new(&o, &r, err);
  FUZZ_CHECK(c != NULL, "core_new: %s", err);
  struct core_update up;
  for (int i = 0; leader && core_role(c) != CORE_CANDIDATE && i < 100; i++) {
    struct core_event tick = {.type = CORE_EVENT_TICK};
    FUZZ_CHECK(step(c, &tick, &up) == 0, "tick");
  }
  if (leader) {
    struct core_msg vr = {
        .type = CORE_MSG_VOTE_REPLY, .from = 2, .to = 1, .term = core_term(c)};
    vr.vote_reply.granted = true;
    struct core_event ev = {.type = CORE_EVENT_RECEIVE, .msg = &vr};
    FUZZ_CHECK(step(c, &ev, &up) == 0 && core_role(c) == CORE_LEADER,
               "election");
    persist(c, &up);
  }
  return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct fuzz_in in = {data, size};
  uint8_t flags = fuzz_u8(&in);
  struct core *c = new_core(flags & 1);
  struct frame_reader r;
  frame_reader_init(&r, 0);
  FUZZ_CHECK(frame_reader_feed(&r, in.p, in.n) == 0, "feed");
  const uint8_t *p;
  size_t n;
  while (frame_reader_next(&r, &p, &n) == 0) {
    struct peer_decoded d;
    char err[SYNOD_ERRMSG_MAX] = "";
    int rv = peer_msg_decode(p, n, &d, err);
    if (rv != 0) {
      FUZZ_CHECK(rv == SYNOD_EMALFORMED || rv == SYNOD_ENOMEM,
                 "decode refused with %d", rv);
      FUZZ_CHECK(err[0] != '\0' && memchr(err, 0, sizeof err) != NULL,
                 "refused without a message");
      continue; /* the link closes; the next connection goes on */
    }
    if (d.is_core) {
      check_reencode(&d.msg);
      receive(c, &d.msg, flags & 2);
    }
    peer_decoded_free(&d);
  }
  frame_reader_close(&r);
  core_free(c);
  return 0;
}
