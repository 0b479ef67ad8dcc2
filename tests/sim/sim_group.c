/* The group workload's members as readers of their streams, and the
 * group checks over the history (issue 23, "Tests": simulation).
 *
 * The stream as applied (sim_groups_apply, on the first replica to apply
 * each entry): every item a group appends is read back from that
 * replica's state machine (a stale GroupRead without a member) into a
 * record per incarnation of the group (a group is deleted with its last
 * member and may be created again, offsets and view ids from 1), with
 * the member list after each view and the running hash of the messages
 * to every member up to each offset: the group's state at that offset.
 * The last view of a deleted group cannot be read back; it is made from
 * the member list (every member leaves) and checked against what readers
 * that read it before their replica applied the deletion saw.
 *
 * Members as readers: every acknowledged join starts a reader, a cursor
 * on one replica (moving now and then, or when its replica goes) that
 * reads the member's own stream with GroupRead (`member` set: views,
 * messages to all and to it, state requests to it, checkpoint notices)
 * from the last offset it read + 1, as the node's group subscriptions
 * deliver it. It keeps the member list from its join's answer (the full
 * view) and the changes after it, and the group's state as a running
 * hash of the messages to all: from nothing if it created the group, else
 * from a checkpoint (one named by its join's or a state request's answer,
 * or announced by a notice in its stream) plus the items after the
 * checkpoint's offset. A state request addressed to it makes its thread
 * store its state as a checkpoint (8 bytes: the hash, at the offset it
 * reflects); so do some of the thread's own checkpoint operations. It
 * stops at the view that removes its member (a leave, or its session's
 * end), when its client crashes, or when its group is gone (deleted, or
 * compacted past it).
 *
 * At the end every reader still running catches up on the leader and
 * five checks run, each stopping the run at the first violation:
 *
 *   - misaddressed: a message (or state request) to one member is in no
 *     other member's stream;
 *   - stream: a member's items are exactly the group's items addressed
 *     to it from its join's view on, in offset order, each once: no gap,
 *     no duplicate (to its removal, to the group's end, or to where it
 *     stopped);
 *   - views: a member's first item is its own join's view, its view ids
 *     are dense, and after each view its member list is the group's;
 *   - same-view delivery: two members in two consecutive views received
 *     the same messages to all, in the same order, between them;
 *   - state: a member's state (nothing, or a checkpoint plus the tail it
 *     read) equals the group's state at its checkpoint's offset and at
 *     every offset it read after it, i.e. the state of a member that was
 *     there from the group's creation.
 *
 * --break-groups MODE plants a reader bug once (check_group_breaks.sh
 * requires the check it targets to fail). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

#include "synod.h"

#define GM_NAME 16                                  /* "c<client>.t<thread>" */
#define GM_LIST (SIM_CLIENTS_MAX * SIM_THREADS_MAX) /* members of a view */
#define GREAD_MAX 64                                /* items per truth read */
#define GM_TAIL 64 /* items an entry appends before a deletion */

/* One item of a group's stream, as applied or as a member read it. */
struct gitem {
  uint64_t offset;
  uint64_t index;
  uint8_t kind; /* enum fsm_group_item_kind */
  char to[GM_NAME];
  uint64_t h;         /* its content */
  uint64_t view_id;   /* views */
  uint64_t members_h; /* views: the member list after it */
  bool left_all;      /* views: made up from a deletion */
  bool state_valid;   /* the state after it is known */
  uint64_t state;     /* hash of the messages to all up to here */
};

/* One incarnation of a group: its items at offsets 1..n. */
struct ginc {
  uint32_t g;
  uint64_t created; /* log index */
  uint64_t deleted; /* log index, 0 while it lives */
  struct gitem *it;
  uint32_t n, cap;
  char members[GM_LIST][GM_NAME];
  uint32_t members_n;
  uint64_t view_id;
  uint64_t state;
  /* Deleted in an entry that appended more than its last view (session
   * ends of several members in one tick): the items after n, to
   * tail_last, are gone before they could be read back. Readers that
   * read them must agree on their views (tail_h by offset - n - 1). */
  uint64_t tail_last;
  uint64_t tail_h[GM_TAIL];
  /* One entry appended more than the group retains (a tick's session
   * ends, with the state requests that follow a new coordinator): the
   * record stops before it, and the checks with it. */
  uint64_t lost_from;
  /* Same-view delivery: per view id, the hash of the messages to all up
   * to the next view, as the first member to read both saw them. */
  uint64_t *seg;
  char (*seg_by)[GM_NAME];
  uint32_t seg_cap;
};

/* A member reading its stream. */
struct gmem {
  char name[40]; /* for messages: "g1/c2.t0@5" */
  char member[GM_NAME];
  uint32_t client, thread, g, inc;
  uint64_t join_offset, join_index;
  uint32_t replica, gen, poll_ms, move_ppm, batch;
  uint64_t next; /* the next offset to read */
  bool ended;
  bool removed; /* it read the view that removes it */
  const char *why;
  uint64_t end_offset; /* running to the end: the group's last offset */
  char members[GM_LIST][GM_NAME];
  uint32_t members_n;
  bool state_valid;
  uint64_t state, state_off;
  bool need_ckpt;    /* fetch the latest checkpoint */
  bool has_ckpt;     /* the state came from a checkpoint: */
  uint64_t ckpt_off; /* its offset */
  uint64_t ckpt_h;   /* and its bytes */
  uint64_t ckpt_due; /* a state request to it, not yet answered */
  struct gitem *d;
  uint32_t n, cap;
  /* opts.push: a client of the replicas' real group subscriptions
   * (sim_subs.c) as its member, as libsynod's: a GroupSubscribe from
   * `next` on a random serving replica (only while that replica holds
   * the member's incarnation of the group, as a read would find), items
   * taken `batch` frames at a time, credits granted as items are taken,
   * `next` moved on by the progress frames, and a new subscription
   * elsewhere when the replica crashes, ends or refuses it, or at
   * random. */
  bool push;
  struct sim_conn c;
  uint64_t sub_req;     /* the GroupSubscribe in flight; 0 once answered */
  uint64_t known_index; /* its join's index, then the last item's */
  uint64_t retry_ms;
};

struct sim_groups {
  struct ginc *inc;
  uint32_t inc_n, inc_cap;
  int32_t cur[SIM_GROUPS_MAX]; /* the live incarnation, -1 = none */
  uint32_t items_max;          /* the fsm's group_items_max, 0 = default */
  struct gmem **m;
  uint32_t m_n, m_cap;
  bool broken;
};

static const char *const break_names[] = {
    "none", "misaddressed", "gap", "duplicate", "view", "same-view", "state",
};

const char *sim_group_break_name(uint32_t mode) {
  return mode < SIM_GROUP_BREAK_COUNT ? break_names[mode] : NULL;
}

/* True the first time the run's break mode is m: plant the bug now. */
static bool brk(struct sim *s, enum sim_group_break m) {
  if (s->opts.group_break != m || s->groups->broken) {
    return false;
  }
  s->groups->broken = true;
  sim_trace(s, 0, "groups: breaking %s on purpose", break_names[m]);
  return true;
}

static uint64_t pick(struct sim *s, uint64_t lo, uint64_t hi) {
  return sim_rand_range(&s->rand, lo, hi);
}

static void *xrealloc(void *p, size_t n) {
  p = realloc(p, n);
  if (p == NULL) {
    abort();
  }
  return p;
}

void sim_groups_pick(struct sim *s) {
  if (!s->opts.groups || s->groups != NULL) {
    return;
  }
  s->groups = calloc(1, sizeof *s->groups);
  if (s->groups == NULL) {
    abort();
  }
  for (uint32_t g = 0; g < SIM_GROUPS_MAX; g++) {
    s->groups->cur[g] = -1;
  }
  /* Half the seeds retain few items, so that the oldest go: slow
   * readers are compacted past, checkpoints fall out of use. */
  s->groups->items_max = pick(s, 0, 1) == 0 ? 0 : (uint32_t)pick(s, 8, 60);
}

uint32_t sim_groups_items_max(const struct sim *s) {
  return s->groups != NULL ? s->groups->items_max : 0;
}

void sim_groups_free(struct sim *s) {
  struct sim_groups *gs = s->groups;
  if (gs == NULL) {
    return;
  }
  for (uint32_t i = 0; i < gs->inc_n; i++) {
    free(gs->inc[i].it);
    free(gs->inc[i].seg);
    free(gs->inc[i].seg_by);
  }
  for (uint32_t i = 0; i < gs->m_n; i++) {
    sim_conn_free(&gs->m[i]->c);
    free(gs->m[i]->d);
    free(gs->m[i]);
  }
  free(gs->inc);
  free(gs->m);
  free(gs);
  s->groups = NULL;
}

/* ------------------------------------------------------------ items */

static uint64_t hash_str(uint64_t h, const char *str) {
  return sim_hash_bytes(h, str ? str : "", str ? strlen(str) : 0);
}

static uint64_t list_hash(char (*list)[GM_NAME], uint32_t n) {
  uint64_t h = SIM_HASH_INIT;
  for (uint32_t i = 0; i < n; i++) {
    h = hash_str(h, list[i]);
  }
  return h;
}

/* Applies a view change to a member list; false if it does not fit (a
 * leaver not in it, a joiner already in it, too many). */
static bool list_change(char (*list)[GM_NAME], uint32_t *n,
                        const Synod__GroupViewChange *v) {
  for (size_t i = 0; i < v->n_left; i++) {
    uint32_t j = 0;
    while (j < *n && strcmp(list[j], v->left[i]) != 0) {
      j++;
    }
    if (j == *n) {
      return false;
    }
    memmove(&list[j], &list[j + 1], (*n - j - 1) * sizeof list[0]);
    (*n)--;
  }
  for (size_t i = 0; i < v->n_joined; i++) {
    for (uint32_t j = 0; j < *n; j++) {
      if (strcmp(list[j], v->joined[i]->name) == 0) {
        return false;
      }
    }
    if (*n == GM_LIST) {
      return false;
    }
    snprintf(list[(*n)++], GM_NAME, "%s", v->joined[i]->name);
  }
  return *n == v->members;
}

static bool in_list(char (*list)[GM_NAME], uint32_t n, const char *name) {
  for (uint32_t j = 0; j < n; j++) {
    if (strcmp(list[j], name) == 0) {
      return true;
    }
  }
  return false;
}

/* The item's kind, target and content hash into x. */
static void item_fill(const Synod__GroupItem *it, struct gitem *x) {
  memset(x, 0, sizeof *x);
  x->offset = it->offset;
  x->index = it->index;
  uint64_t h = sim_hash_u64(SIM_HASH_INIT, it->body_case);
  switch (it->body_case) {
  case SYNOD__GROUP_ITEM__BODY_VIEW:
    x->kind = FSM_GROUP_VIEW;
    x->view_id = it->view->view_id;
    h = sim_hash_u64(h, it->view->view_id);
    h = sim_hash_u64(h, it->view->members);
    for (size_t i = 0; i < it->view->n_joined; i++) {
      h = hash_str(h, it->view->joined[i]->name);
      h = sim_hash_u64(h, it->view->joined[i]->session_id);
    }
    for (size_t i = 0; i < it->view->n_left; i++) {
      h = hash_str(h, it->view->left[i]);
    }
    break;
  case SYNOD__GROUP_ITEM__BODY_MESSAGE:
    x->kind = FSM_GROUP_MESSAGE;
    snprintf(x->to, sizeof x->to, "%s", it->message->to);
    h = hash_str(h, it->message->to);
    h = hash_str(h, it->message->from);
    h = sim_hash_bytes(h, it->message->data.data, it->message->data.len);
    break;
  case SYNOD__GROUP_ITEM__BODY_STATE_REQUEST:
    x->kind = FSM_GROUP_STATE_REQUEST;
    snprintf(x->to, sizeof x->to, "%s", it->state_request->to);
    h = hash_str(h, it->state_request->to);
    h = hash_str(h, it->state_request->member);
    break;
  case SYNOD__GROUP_ITEM__BODY_CHECKPOINT:
    x->kind = FSM_GROUP_CHECKPOINT;
    h = sim_hash_u64(h, it->checkpoint->offset);
    h = sim_hash_u64(h, it->checkpoint->bytes);
    h = hash_str(h, it->checkpoint->member);
    break;
  default:
    break;
  }
  x->h = h;
}

/* The group's state after a message to all. */
static uint64_t state_fold(uint64_t state, const Synod__GroupItem *it) {
  state = sim_hash_u64(state, it->offset);
  return sim_hash_bytes(state, it->message->data.data, it->message->data.len);
}

static bool to_all(const Synod__GroupItem *it) {
  return it->body_case == SYNOD__GROUP_ITEM__BODY_MESSAGE &&
         (it->message->to == NULL || it->message->to[0] == '\0');
}

/* ------------------------------------------------------------ reads */

static Synod__Response *query(struct sim *s, const struct fsm *f,
                              Synod__Request *req) {
  uint8_t *data;
  size_t len;
  req->stale = true;
  if (fsm_query(f, req, &data, &len) != 0) {
    sim_fail(s, "groups: fsm_query refused a read (body %d)",
             (int)req->body_case);
    return NULL;
  }
  Synod__Response *r = synod__response__unpack(NULL, len, data);
  free(data);
  if (r == NULL) {
    sim_fail(s, "groups: the answer to a read does not decode");
  }
  return r;
}

static int code_of(const Synod__Response *r) {
  return r->error != NULL ? (int)r->error->code : 0;
}

/* A GroupRead of g from `from`, pinned (known_index) to the incarnation
 * created at index `known`: every caller reads one it knows exists on f,
 * so a refusal is a failure of the replica's. */
static Synod__Response *read_items(struct sim *s, const struct fsm *f,
                                   uint32_t g, uint64_t from, uint32_t max,
                                   const char *member, uint64_t known) {
  char name[8];
  snprintf(name, sizeof name, "g%" PRIu32, g);
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__GroupRead rd = SYNOD__GROUP_READ__INIT;
  rd.group = name;
  rd.from = from;
  rd.max = max;
  rd.member = (char *)(member ? member : "");
  rd.known_index = known;
  req.body_case = SYNOD__REQUEST__BODY_GROUP_READ;
  req.group_read = &rd;
  Synod__Response *r = query(s, f, &req);
  if (r != NULL && code_of(r) == 0 &&
      r->body_case != SYNOD__RESPONSE__BODY_GROUP_ITEMS) {
    sim_fail(s, "groups: a GroupRead of g%" PRIu32 " answered body %d", g,
             (int)r->body_case);
    synod__response__free_unpacked(r, NULL);
    return NULL;
  }
  return r;
}

/* ------------------------------------------------------- as applied */

static struct ginc *inc_new(struct sim *s, uint32_t g, uint64_t created) {
  struct sim_groups *gs = s->groups;
  if (gs->inc_n == gs->inc_cap) {
    gs->inc_cap = gs->inc_cap ? 2 * gs->inc_cap : 16;
    gs->inc = xrealloc(gs->inc, gs->inc_cap * sizeof *gs->inc);
  }
  struct ginc *in = &gs->inc[gs->inc_n];
  memset(in, 0, sizeof *in);
  in->g = g;
  in->created = created;
  in->state = SIM_HASH_INIT;
  gs->cur[g] = (int32_t)gs->inc_n++;
  return in;
}

static struct gitem *inc_push(struct ginc *in) {
  if (in->n == in->cap) {
    in->cap = in->cap ? 2 * in->cap : 64;
    in->it = xrealloc(in->it, in->cap * sizeof *in->it);
  }
  return &in->it[in->n++];
}

/* Appends one applied item to its incarnation's record. */
static void truth_item(struct sim *s, struct ginc *in,
                       const Synod__GroupItem *it) {
  if (it->offset != in->n + 1) {
    sim_fail(s,
             "groups: g%" PRIu32 " appended offset %" PRIu64 " after %" PRIu32
             " (offsets are dense from 1)",
             in->g, it->offset, in->n);
    return;
  }
  struct gitem x;
  item_fill(it, &x);
  if (x.kind == FSM_GROUP_VIEW) {
    if (x.view_id != in->view_id + 1 ||
        !list_change(in->members, &in->members_n, it->view)) {
      sim_fail(s,
               "groups: g%" PRIu32 " view %" PRIu64 " at offset %" PRIu64
               " does not follow view %" PRIu64 " (%" PRIu32 " members)",
               in->g, x.view_id, x.offset, in->view_id, in->members_n);
      return;
    }
    in->view_id = x.view_id;
    x.members_h = list_hash(in->members, in->members_n);
  } else if (x.kind == FSM_GROUP_MESSAGE && x.to[0] &&
             !in_list(in->members, in->members_n, x.to)) {
    sim_fail(s,
             "groups: g%" PRIu32 " offset %" PRIu64
             ": a message to %s, not in view %" PRIu64,
             in->g, x.offset, x.to, in->view_id);
    return;
  }
  if (to_all(it)) {
    in->state = state_fold(in->state, it);
  }
  x.state_valid = true;
  x.state = in->state;
  *inc_push(in) = x;
}

/* Reads g's items up to offset `last` from f into the record. */
static void truth_read(struct sim *s, const struct fsm *f, struct ginc *in,
                       uint64_t last) {
  while (in->n < last && in->lost_from == 0 && !s->failed) {
    Synod__Response *r =
        read_items(s, f, in->g, in->n + 1, GREAD_MAX, NULL, in->created);
    if (r == NULL) {
      return;
    }
    if (code_of(r) == SYNOD_ECOMPACTED) {
      in->lost_from = in->n + 1;
      sim_trace(s, 0,
                "groups: g%" PRIu32 " evicted offset %" PRIu64
                " in the entry that appended it: the record stops",
                in->g, in->lost_from);
      synod__response__free_unpacked(r, NULL);
      return;
    }
    if (code_of(r) != 0 || r->group_items->n_items == 0) {
      sim_fail(s,
               "groups: g%" PRIu32 " offset %" PRIu64
               " cannot be read back where it was applied (code %d: %s)",
               in->g, (uint64_t)in->n + 1, code_of(r),
               r->error && r->error->message ? r->error->message : "none");
    }
    for (size_t i = 0; code_of(r) == 0 && i < r->group_items->n_items &&
                       in->n < last && !s->failed;
         i++) {
      truth_item(s, in, r->group_items->items[i]);
    }
    synod__response__free_unpacked(r, NULL);
  }
}

static int group_of(const char *name) {
  if (name == NULL || name[0] != 'g' || name[1] < '0' ||
      name[1] >= '0' + SIM_GROUPS_MAX || name[2] != '\0') {
    return -1;
  }
  return name[1] - '0';
}

void sim_groups_apply(struct sim *s, const struct fsm *f, uint64_t index,
                      const struct fsm_output *out) {
  struct sim_groups *gs = s->groups;
  if (gs == NULL || s->failed) {
    return;
  }
  for (size_t i = 0; i < out->events_len && !s->failed; i++) {
    const struct fsm_event *e = &out->events[i];
    int g = e->type == FSM_EVENT_GROUP_APPENDED ||
                    e->type == FSM_EVENT_GROUP_DELETED
                ? group_of(e->name)
                : -1;
    if (g < 0) {
      continue;
    }
    struct ginc *in = gs->cur[g] >= 0 ? &gs->inc[gs->cur[g]] : NULL;
    /* An entry may end a group (sessions expire first) and then create
     * it again (a join): items before a later deletion are gone. */
    struct fsm_stream st;
    bool live = fsm_group_stream(f, e->name, strlen(e->name), &st);
    for (size_t k = i + 1; k < out->events_len && live; k++) {
      live = out->events[k].type != FSM_EVENT_GROUP_DELETED ||
             strcmp(out->events[k].name, e->name) != 0;
    }
    if (in == NULL) {
      in = inc_new(s, (uint32_t)g, live ? st.created_index : index);
    }
    sim_trace(s, 0,
              "groups: index %" PRIu64 ": g%d %s to offset %" PRIu64
              " (recorded %" PRIu32 ", created %" PRIu64 ")",
              index, g,
              e->type == FSM_EVENT_GROUP_APPENDED ? "appended" : "deleted",
              e->last_offset, in->n, in->created);
    if (e->type == FSM_EVENT_GROUP_APPENDED) {
      if (live) { /* else it goes in this entry: read below */
        truth_read(s, f, in, e->last_offset);
      }
      continue;
    }
    /* Deleted: its last view (every member leaves) is gone with it. */
    in->deleted = index;
    gs->cur[g] = -1;
    if (in->lost_from != 0) {
      continue;
    }
    if (e->last_offset > in->n + 1) {
      in->tail_last = e->last_offset;
      sim_trace(s, 0,
                "groups: g%d deleted; offsets %" PRIu32 "..%" PRIu64
                " could not be read back",
                g, in->n + 1, e->last_offset);
      continue;
    }
    if (e->last_offset != in->n + 1) {
      sim_fail(s,
               "groups: g%" PRIu32 " deleted at offset %" PRIu64
               " after %" PRIu32 ": not one last view",
               (uint32_t)g, e->last_offset, in->n);
      return;
    }
    struct gitem *x = inc_push(in);
    memset(x, 0, sizeof *x);
    x->offset = e->last_offset;
    x->index = index;
    x->kind = FSM_GROUP_VIEW;
    x->view_id = ++in->view_id;
    x->left_all = true;
    in->members_n = 0;
    x->members_h = list_hash(in->members, 0);
    x->state_valid = true;
    x->state = in->state;
  }
}

/* ---------------------------------------------------------- members */

static bool replica_serves(const struct sim *s, uint32_t r) {
  return r >= 1 && r <= s->ids_n && s->r[r].up && !s->r[r].retired &&
         s->r[r].srv.fsm != NULL;
}

static bool gm_attach(struct sim *s, struct gmem *m, uint32_t avoid) {
  uint32_t ids[SIM_IDS_MAX], n = 0;
  for (uint32_t r = 1; r <= s->ids_n; r++) {
    if (replica_serves(s, r) && r != avoid) {
      ids[n++] = r;
    }
  }
  if (n == 0) {
    return avoid != 0 && replica_serves(s, avoid);
  }
  m->replica = ids[pick(s, 0, n - 1)];
  m->gen = s->r[m->replica].gen;
  return true;
}

static bool gm_connected(const struct sim *s, const struct gmem *m) {
  return replica_serves(s, m->replica) && s->r[m->replica].gen == m->gen;
}

static void gm_end(struct sim *s, struct gmem *m, const char *why) {
  if (!m->ended) {
    sim_conn_close(s, &m->c); /* push: the member's subscription ends */
    m->ended = true;
    m->why = why;
    sim_trace(s, m->replica, "%s: stops reading at %" PRIu64 ": %s", m->name,
              m->next, why);
  }
}

static struct gitem *gm_push(struct gmem *m) {
  if (m->n == m->cap) {
    m->cap = m->cap ? 2 * m->cap : 32;
    m->d = xrealloc(m->d, m->cap * sizeof *m->d);
  }
  return &m->d[m->n++];
}

uint32_t sim_groups_joined(struct sim *s, uint32_t client, uint32_t thread,
                           uint32_t g, const Synod__GroupJoinReply *r) {
  struct sim_groups *gs = s->groups;
  if (gs == NULL) {
    return 0;
  }
  /* The incarnation the join went into: the one alive at its index. */
  int32_t inc = -1;
  for (uint32_t i = gs->inc_n; i > 0; i--) {
    const struct ginc *in = &gs->inc[i - 1];
    if (in->g == g && in->created <= r->index &&
        (in->deleted == 0 || in->deleted > r->index)) {
      inc = (int32_t)(i - 1);
      break;
    }
  }
  if (inc < 0) {
    sim_fail(s,
             "groups: a join of g%" PRIu32 " at index %" PRIu64
             " is in no record of the group",
             g, r->index);
    return 0;
  }
  if (gs->m_n == gs->m_cap) {
    gs->m_cap = gs->m_cap ? 2 * gs->m_cap : 32;
    gs->m = xrealloc(gs->m, gs->m_cap * sizeof *gs->m);
  }
  struct gmem *m = calloc(1, sizeof *m);
  if (m == NULL) {
    abort();
  }
  gs->m[gs->m_n++] = m;
  snprintf(m->member, sizeof m->member, "c%" PRIu32 ".t%" PRIu32, client,
           thread);
  snprintf(m->name, sizeof m->name, "g%" PRIu32 "/%s@%" PRIu64, g, m->member,
           r->view->offset);
  m->client = client;
  m->thread = thread;
  m->g = g;
  m->inc = (uint32_t)inc;
  m->join_offset = r->view->offset;
  m->join_index = r->index;
  m->next = m->join_offset;
  m->poll_ms = pick(s, 0, 3) == 0 ? (uint32_t)pick(s, 200, 1500)
                                  : (uint32_t)pick(s, 5, 80);
  m->batch = (uint32_t)pick(s, 1, 40);
  m->move_ppm = pick(s, 0, 1) == 0 ? 0 : (uint32_t)pick(s, 1000, 100000);
  if (s->opts.push) { /* drawn last: the other draws stay the seed's */
    m->push = true;
    m->c.window =
        m->poll_ms >= 200 ? (uint32_t)pick(s, 1, 4) : (uint32_t)pick(s, 4, 200);
  }
  /* The view before the join: the answer's full view without the
   * joiner (the last); the join's own item adds it back. */
  for (size_t i = 0; i + 1 < r->view->n_members && i < GM_LIST; i++) {
    snprintf(m->members[m->members_n++], GM_NAME, "%s",
             r->view->members[i]->name);
  }
  if (r->view->view_id == 1) {
    m->state_valid = true; /* it made the group: its state is nothing */
    m->state = SIM_HASH_INIT;
  } else if (r->state != NULL &&
             r->state->source == SYNOD__GROUP_STATE__SOURCE__CHECKPOINT) {
    m->need_ckpt = true;
  }
  sim_trace(s, 0, "%s: reads from %" PRIu64 "%s", m->name, m->next,
            m->need_ckpt ? " with the checkpoint" : "");
  sim_schedule(s, s->now_ms + m->poll_ms, SIM_EV_GMEMBER, gs->m_n, NULL);
  return gs->m_n;
}

void sim_groups_state_answer(struct sim *s, uint32_t id,
                             const Synod__GroupState *st) {
  if (s->groups != NULL && id != 0 && id <= s->groups->m_n && st != NULL &&
      st->source == SYNOD__GROUP_STATE__SOURCE__CHECKPOINT) {
    s->groups->m[id - 1]->need_ckpt = true;
  }
}

void sim_groups_client_crash(struct sim *s, uint32_t client) {
  for (uint32_t i = 0; s->groups != NULL && i < s->groups->m_n; i++) {
    if (s->groups->m[i]->client == client) {
      gm_end(s, s->groups->m[i], "its client crashed");
    }
  }
}

bool sim_groups_checkpoint(struct sim *s, uint32_t id, bool due,
                           struct sim_op_spec *sp) {
  if (s->groups == NULL || id == 0 || id > s->groups->m_n) {
    return false;
  }
  struct gmem *m = s->groups->m[id - 1];
  if (m->ended || !m->state_valid || (due && m->ckpt_due == 0)) {
    return false;
  }
  m->ckpt_due = 0;
  sp->type = SIM_OP_GROUP_CHECKPOINT;
  sp->name = m->g;
  sp->a1 = (int64_t)m->state_off;
  sp->a2 = (int64_t)m->state;
  return true;
}

/* Reads the latest checkpoint on f and folds the items after it that
 * come before `next`, so that the state is at next - 1 or at the
 * checkpoint's offset if that is later. False if f cannot tell yet. */
static bool gm_checkpoint(struct sim *s, struct gmem *m, const struct fsm *f) {
  char name[8];
  snprintf(name, sizeof name, "g%" PRIu32, m->g);
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__GroupCheckpointRead rd = SYNOD__GROUP_CHECKPOINT_READ__INIT;
  rd.group = name;
  req.body_case = SYNOD__REQUEST__BODY_GROUP_CHECKPOINT_READ;
  req.group_checkpoint_read = &rd;
  Synod__Response *r = query(s, f, &req);
  if (r == NULL || code_of(r) != 0 ||
      r->body_case != SYNOD__RESPONSE__BODY_GROUP_CHECKPOINT_CHUNK ||
      r->group_checkpoint_chunk->data.len != 8 ||
      !r->group_checkpoint_chunk->last) {
    synod__response__free_unpacked(r, NULL);
    return false; /* none yet here (or not ours: wait for another) */
  }
  uint64_t c = r->group_checkpoint_chunk->checkpoint->offset, h = 0;
  memcpy(&h, r->group_checkpoint_chunk->data.data, 8);
  synod__response__free_unpacked(r, NULL);
  uint64_t state = h, off = c;
  if (brk(s, SIM_GROUP_BREAK_STATE)) {
    state ^= 1;
  }
  for (uint64_t from = c + 1; from < m->next && !s->failed;) {
    Synod__Response *t = read_items(s, f, m->g, from, 200, m->member,
                                    s->groups->inc[m->inc].created);
    if (t == NULL) {
      return false;
    }
    if (code_of(t) == SYNOD_ECOMPACTED) {
      m->need_ckpt = false; /* the tail is gone: wait for a newer one */
      sim_trace(s, m->replica,
                "%s: the tail after the checkpoint at %" PRIu64 " is compacted",
                m->name, c);
      synod__response__free_unpacked(t, NULL);
      return false;
    }
    if (code_of(t) != 0 || t->group_items->next_offset < m->next) {
      synod__response__free_unpacked(t, NULL);
      return false; /* behind */
    }
    const Synod__GroupItems *gi = t->group_items;
    from = m->next;
    for (size_t i = 0; i < gi->n_items; i++) {
      const Synod__GroupItem *it = gi->items[i];
      if (it->offset >= m->next) {
        break;
      }
      if (to_all(it)) {
        state = state_fold(state, it);
        off = it->offset;
      }
      from = it->offset + 1;
    }
    synod__response__free_unpacked(t, NULL);
  }
  m->state_valid = true;
  m->need_ckpt = false;
  m->state = state;
  m->state_off = off > m->next - 1 ? off : m->next - 1;
  m->has_ckpt = true;
  m->ckpt_off = c;
  m->ckpt_h = h;
  s->stats.group_transfers++;
  sim_trace(s, m->replica,
            "%s: state from the checkpoint at %" PRIu64
            " and the tail to %" PRIu64,
            m->name, c, m->state_off);
  return true;
}

/* One item of the member's own stream. */
static void gm_deliver(struct sim *s, struct gmem *m,
                       const Synod__GroupItem *it) {
  if (it->body_case == SYNOD__GROUP_ITEM__BODY_MESSAGE && to_all(it) &&
      brk(s, SIM_GROUP_BREAK_GAP)) {
    m->next = it->offset + 1;
    return;
  }
  struct gitem *x = gm_push(m);
  item_fill(it, x);
  m->next = it->offset + 1;
  s->stats.group_deliveries++;
  switch (it->body_case) {
  case SYNOD__GROUP_ITEM__BODY_VIEW: {
    bool me_left = false;
    for (size_t i = 0; i < it->view->n_left; i++) {
      me_left |= strcmp(it->view->left[i], m->member) == 0;
    }
    if (!list_change(m->members, &m->members_n, it->view)) {
      x->members_h = 0; /* a change that does not fit: the views check */
    } else {
      x->members_h = list_hash(m->members, m->members_n);
    }
    if (brk(s, SIM_GROUP_BREAK_VIEW)) {
      x->members_h ^= 1;
    }
    if (me_left) {
      m->removed = true;
      gm_end(s, m, "removed");
    }
    break;
  }
  case SYNOD__GROUP_ITEM__BODY_MESSAGE:
    if (to_all(it) && m->state_valid && it->offset > m->state_off) {
      m->state = state_fold(m->state, it);
    }
    if (to_all(it) && brk(s, SIM_GROUP_BREAK_SAME_VIEW)) {
      x->h ^= 1;
    }
    break;
  case SYNOD__GROUP_ITEM__BODY_STATE_REQUEST:
    if (strcmp(it->state_request->to, m->member) == 0 &&
        strcmp(it->state_request->member, m->member) != 0) {
      m->ckpt_due = it->offset;
    }
    break;
  case SYNOD__GROUP_ITEM__BODY_CHECKPOINT:
    m->need_ckpt |= !m->state_valid;
    break;
  default:
    break;
  }
  if (m->state_valid && m->state_off <= it->offset) {
    m->state_off = it->offset;
    x->state_valid = true;
    x->state = m->state;
  }
  if (x->kind == FSM_GROUP_MESSAGE && brk(s, SIM_GROUP_BREAK_DUPLICATE)) {
    struct gitem copy = *x;
    *gm_push(m) = copy;
  }
}

/* A read of the member's stream on its replica: returns the items
 * delivered; *end_out: the group's next offset there. */
static uint32_t gm_read(struct sim *s, struct gmem *m, uint64_t *end_out) {
  const struct fsm *f = s->r[m->replica].srv.fsm;
  const struct ginc *in = &s->groups->inc[m->inc];
  char name[8];
  snprintf(name, sizeof name, "g%" PRIu32, m->g);
  struct fsm_stream st;
  *end_out = 0;
  if (!fsm_group_stream(f, name, strlen(name), &st) ||
      st.created_index < in->created) {
    if (in->deleted != 0 && fsm_applied_index(f) >= in->deleted) {
      gm_end(s, m, "its group is deleted");
    }
    return 0; /* behind: not yet created here */
  }
  if (st.created_index > in->created) {
    gm_end(s, m, "its group is deleted");
    return 0;
  }
  if (m->need_ckpt && !m->state_valid) {
    gm_checkpoint(s, m, f);
  }
  /* Misaddressed (planted): one read that does not filter. */
  bool all =
      s->opts.group_break == SIM_GROUP_BREAK_MISADDRESSED && !s->groups->broken;
  Synod__Response *r = read_items(s, f, m->g, m->next, m->batch,
                                  all ? NULL : m->member, in->created);
  if (r == NULL) {
    return 0;
  }
  uint32_t n = 0;
  int code = code_of(r);
  if (code == SYNOD_ECOMPACTED) {
    s->stats.compactions++;
    gm_end(s, m, "compacted past it");
  } else if (code == 0) {
    const Synod__GroupItems *gi = r->group_items;
    *end_out = gi->next_offset;
    for (size_t i = 0; i < gi->n_items && !m->ended; i++) {
      const Synod__GroupItem *it = gi->items[i];
      const char *to = it->body_case == SYNOD__GROUP_ITEM__BODY_MESSAGE
                           ? it->message->to
                       : it->body_case == SYNOD__GROUP_ITEM__BODY_STATE_REQUEST
                           ? it->state_request->to
                           : "";
      if (all && to[0] && strcmp(to, m->member) != 0) {
        if (!brk(s, SIM_GROUP_BREAK_MISADDRESSED)) {
          continue;
        }
      }
      gm_deliver(s, m, it);
      n++;
    }
  } else if (code != SYNOD_ERANGE) {
    sim_fail(s, "groups: %s: GroupRead from %" PRIu64 " on r%" PRIu32 ": %s",
             m->name, m->next, m->replica,
             r->error->message ? r->error->message : "(no message)");
  }
  synod__response__free_unpacked(r, NULL);
  return n;
}

/* -------------------------------------------------------- push members */

struct sim_conn *sim_groups_conn(struct sim *s, uint32_t i) {
  return s->groups != NULL && i < s->groups->m_n ? &s->groups->m[i]->c : NULL;
}

/* Subscribes on any serving replica, lagging or not, as libsynod does
 * (it cannot tell): the start waits for a ReadIndex round there, and
 * known_index tells the engine which incarnation of the group. */
static void pm_subscribe(struct sim *s, uint32_t id, struct gmem *m) {
  if (!sim_conn_open(s, &m->c, SIM_CONN_MEMBER, id, m->replica)) {
    return;
  }
  char name[8];
  snprintf(name, sizeof name, "g%" PRIu32, m->g);
  Synod__GroupSubscribe q = SYNOD__GROUP_SUBSCRIBE__INIT;
  q.subscription_id = 1;
  q.group = name;
  q.member = m->member;
  q.from = m->next;
  q.known_index = m->known_index != 0 ? m->known_index : m->join_index;
  q.credits = m->c.window;
  m->sub_req = ++m->c.req_next;
  sim_conn_subscribed(&m->c);
  sim_trace(s, m->replica,
            "%s: subscribes (push) on connection %" PRIx64 " from %" PRIu64,
            m->name, m->c.id, m->next);
  subs_group_subscribe(sim_conn_engine(s, &m->c), m->c.id, m->sub_req, &q);
}

static void pm_leave(struct sim *s, struct gmem *m, const char *why) {
  sim_trace(s, m->replica, "%s: leaves (%s)", m->name, why);
  sim_conn_close(s, &m->c);
  m->sub_req = 0;
  m->retry_ms = s->now_ms + pick(s, 10, 300);
}

static void pm_error(struct sim *s, struct gmem *m, int code, const char *msg) {
  if (code == SYNOD_ENOTFOUND && s->groups->inc[m->inc].deleted == 0) {
    sim_fail(s,
             "groups: %s: r%" PRIu32 " answers SYNOD_ENOTFOUND while its "
             "group lives: %s",
             m->name, m->replica, msg);
  } else if (code == SYNOD_ENOTFOUND) {
    gm_end(s, m, "its group is deleted");
  } else if (code == SYNOD_ECOMPACTED) {
    s->stats.compactions++;
    gm_end(s, m, "compacted past it");
  } else if (sim_conn_moves_on(code)) {
    pm_leave(s, m, msg);
  } else {
    sim_fail(s, "groups: %s: r%" PRIu32 " ends or refuses it with %s: %s",
             m->name, m->replica, synod_strerror(code), msg);
  }
}

/* Takes one frame; false if there is none. */
static bool pm_take(struct sim *s, struct gmem *m) {
  uint64_t unused;
  Synod__ServerMessage *sm = sim_conn_take(s, &m->c, &unused);
  if (sm == NULL) {
    return false;
  }
  if (sm->body_case == SYNOD__SERVER_MESSAGE__BODY_RESPONSE) {
    const Synod__Response *r = sm->response;
    if (r->id == m->sub_req && r->error != NULL) {
      pm_error(s, m, (int)r->error->code, r->error->message);
    } else if (r->id == m->sub_req &&
               r->body_case == SYNOD__RESPONSE__BODY_GROUP_SUBSCRIBE) {
      m->sub_req = 0;
      if (m->known_index == 0) {
        m->known_index = r->group_subscribe->created_index; /* libsynod's */
      }
      if (r->group_subscribe->offset != m->next) {
        sim_fail(s,
                 "groups: %s resumes at %" PRIu64 " and r%" PRIu32
                 " starts it at %" PRIu64,
                 m->name, m->next, m->replica, r->group_subscribe->offset);
      }
    } else if (r->error != NULL) {
      sim_fail(s, "groups: %s: r%" PRIu32 " refuses request %" PRIu64 ": %s",
               m->name, m->replica, r->id, r->error->message);
    }
  } else if (sm->body_case == SYNOD__SERVER_MESSAGE__BODY_EVENT &&
             sm->event->body_case == SYNOD__EVENT__BODY_GROUP_DELIVERY) {
    const Synod__GroupDelivery *d = sm->event->group_delivery;
    for (size_t i = 0; i < d->n_items && !m->ended && !s->failed; i++) {
      gm_deliver(s, m, d->items[i]);
      m->known_index = d->items[i]->index;
    }
    int64_t over = sim_conn_delivered(&m->c, d->n_items);
    if (over > 0) {
      sim_fail(s,
               "groups: %s: r%" PRIu32 " delivers %" PRId64
               " items beyond the credits granted",
               m->name, m->replica, over);
    }
    if (!m->ended && d->progress_offset + 1 > m->next) {
      m->next = d->progress_offset + 1; /* past items for others */
    }
  } else if (sm->body_case == SYNOD__SERVER_MESSAGE__BODY_EVENT &&
             sm->event->body_case == SYNOD__EVENT__BODY_SUBSCRIPTION_ENDED) {
    const Synod__Error *e = sm->event->subscription_ended->error;
    pm_error(s, m, e != NULL ? (int)e->code : SYNOD_EINTERNAL,
             e != NULL && e->message != NULL ? e->message : "no error");
  }
  synod__server_message__free_unpacked(sm, NULL);
  return true;
}

static void pm_poll(struct sim *s, uint32_t id, struct gmem *m) {
  bool end = s->clients_stopped;
  if (m->c.id != 0 && !sim_conn_alive(s, &m->c)) {
    sim_conn_close(s, &m->c); /* its replica crashed */
    m->sub_req = 0;
  }
  if (m->c.id != 0 && !end && sim_rand_ppm(&s->rand, m->move_ppm)) {
    pm_leave(s, m, "moves");
    m->retry_ms = 0;
  }
  if (m->c.id == 0) {
    if (s->now_ms < m->retry_ms || !gm_attach(s, m, 0)) {
      return;
    }
    pm_subscribe(s, id, m);
    if (m->c.id == 0) {
      return;
    }
  }
  /* The checkpoint read goes by the group's name: only on a replica that
   * holds the member's incarnation (soak seed 7400959 read the one of
   * the group created again there). */
  const struct fsm *f = s->r[m->replica].srv.fsm;
  struct fsm_stream st;
  char name[8];
  snprintf(name, sizeof name, "g%" PRIu32, m->g);
  if (m->need_ckpt && !m->state_valid &&
      fsm_group_stream(f, name, strlen(name), &st) &&
      st.created_index == s->groups->inc[m->inc].created) {
    gm_checkpoint(s, m, f);
  }
  uint32_t frames = end ? 1000000 : m->batch;
  if (end) {
    m->poll_ms = 10;
  }
  for (uint32_t i = 0; i < frames && m->c.id != 0 && !m->ended && !s->failed;
       i++) {
    if (!pm_take(s, m)) {
      break;
    }
    sim_conn_room(s, &m->c, m->sub_req == 0);
  }
}

bool sim_groups_members_caught_up(struct sim *s, char *why, size_t len) {
  struct sim_groups *gs = s->groups;
  uint32_t leader = (uint32_t)sim_leader(s);
  for (uint32_t i = 0; gs != NULL && i < gs->m_n && leader != 0; i++) {
    struct gmem *m = gs->m[i];
    if (!m->push || m->ended) {
      continue;
    }
    const struct ginc *in = &gs->inc[m->inc];
    char name[8];
    struct fsm_stream st;
    snprintf(name, sizeof name, "g%" PRIu32, m->g);
    bool live =
        fsm_group_stream(s->r[leader].srv.fsm, name, strlen(name), &st) &&
        st.created_index == in->created;
    if (!live || m->sub_req != 0 || m->c.q_head != NULL ||
        !sim_conn_alive(s, &m->c) || m->next < st.window->next) {
      if (why != NULL) {
        snprintf(why, len,
                 "%s on r%" PRIu32 " (connection %" PRIx64
                 ", subscribe %" PRIu64 " unanswered, %zu bytes queued) "
                 "at %" PRIu64 "; its group %s",
                 m->name, m->replica, m->c.id, m->sub_req, m->c.q_bytes,
                 m->next, live ? "goes on" : "is gone on the leader");
      }
      return false;
    }
  }
  return true;
}

void sim_groups_poll(struct sim *s, uint32_t id) {
  struct sim_groups *gs = s->groups;
  if (gs == NULL || id == 0 || id > gs->m_n || s->failed) {
    return;
  }
  struct gmem *m = gs->m[id - 1];
  if (m->ended) {
    return;
  }
  sim_schedule(s, s->now_ms + m->poll_ms, SIM_EV_GMEMBER, id, NULL);
  if (s->cl[m->client].paused && !(m->push && s->clients_stopped)) {
    return; /* its process is paused: it reads on when it resumes (a push
               member at the end catches up, as the readers do) */
  }
  if (m->push) {
    pm_poll(s, id - 1, m);
    return;
  }
  if (!gm_connected(s, m)) {
    if (!gm_attach(s, m, 0)) {
      return;
    }
  } else if (sim_rand_ppm(&s->rand, m->move_ppm)) {
    gm_attach(s, m, m->replica);
  }
  uint64_t end;
  gm_read(s, m, &end);
}

/* ------------------------------------------------------------ checks */

static bool item_for(const struct gitem *x, const char *member) {
  return x->to[0] == '\0' || strcmp(x->to, member) == 0;
}

static void check_misaddressed(struct sim *s, const struct gmem *m) {
  for (uint32_t i = 0; i < m->n && !s->failed; i++) {
    const struct gitem *x = &m->d[i];
    if (!item_for(x, m->member)) {
      sim_fail(s,
               "groups: misaddressed: %s received offset %" PRIu64
               " (kind %u), addressed to %s only",
               m->name, x->offset, x->kind, x->to);
    }
  }
}

static void check_stream(struct sim *s, const struct gmem *m) {
  const struct ginc *in = &s->groups->inc[m->inc];
  uint64_t last = m->removed || m->ended ? (m->n ? m->d[m->n - 1].offset : 0)
                                         : m->end_offset;
  uint32_t n = m->n;
  if (in->lost_from != 0) {
    last = last < in->lost_from ? last : in->lost_from - 1;
    while (n > 0 && m->d[n - 1].offset >= in->lost_from) {
      n--;
    }
  }
  uint32_t j = 0;
  for (uint64_t o = m->join_offset; o <= last && o <= in->n && !s->failed;
       o++) {
    const struct gitem *t = &in->it[o - 1];
    if (!item_for(t, m->member)) {
      continue;
    }
    if (j >= n || m->d[j].offset != o || m->d[j].kind != t->kind) {
      uint64_t got = j < n ? m->d[j].offset : 0;
      if (got != 0 && got < o) {
        sim_fail(s,
                 "groups: stream: %s receives offset %" PRIu64
                 " again where offset %" PRIu64
                 " is due (a duplicate, or out of order)",
                 m->name, got, o);
      } else {
        sim_fail(s,
                 "groups: stream: %s (to %" PRIu64 ", %s) skips offset %" PRIu64
                 " (kind %u): its item %" PRIu32 " is offset %" PRIu64,
                 m->name, last, m->ended ? m->why : "running", o, t->kind, j,
                 got);
      }
      return;
    }
    j++;
  }
  for (uint64_t prev = in->n;
       !s->failed && j < n && in->tail_last != 0 && m->d[j].offset > prev &&
       m->d[j].offset <= in->tail_last;
       j++) {
    prev = m->d[j].offset; /* the unread tail: in order, once */
  }
  if (!s->failed && j != n) {
    sim_fail(s,
             "groups: stream: %s received %" PRIu32
             " items, the group has %" PRIu32 " for it (offset %" PRIu64
             " again: a duplicate, or past the end %" PRIu64 ")",
             m->name, n, j, m->d[j].offset, last);
  }
}

static void check_views(struct sim *s, const struct gmem *m) {
  struct ginc *in = &s->groups->inc[m->inc];
  uint64_t view = 0;
  for (uint32_t i = 0; i < m->n && !s->failed; i++) {
    const struct gitem *x = &m->d[i];
    if (i == 0 && (x->kind != FSM_GROUP_VIEW || x->offset != m->join_offset)) {
      sim_fail(s, "groups: views: %s does not receive its own join first",
               m->name);
      return;
    }
    if (in->lost_from != 0 && x->offset >= in->lost_from) {
      break;
    }
    if (x->kind != FSM_GROUP_VIEW) {
      continue;
    }
    if (x->offset > in->n && x->offset <= in->tail_last &&
        x->offset - in->n <= GM_TAIL && x->view_id == view + 1) {
      uint64_t *th = &in->tail_h[x->offset - in->n - 1];
      if (*th != 0 && *th != x->members_h) {
        sim_fail(s,
                 "groups: views: %s disagrees on view %" PRIu64 " of g%" PRIu32
                 " (offset %" PRIu64
                 ", unread): its member list is not another member's",
                 m->name, x->view_id, m->g, x->offset);
        return;
      }
      *th = x->members_h;
      view = x->view_id;
      continue;
    }
    const struct gitem *t = x->offset <= in->n ? &in->it[x->offset - 1] : NULL;
    if ((view != 0 && x->view_id != view + 1) || t == NULL ||
        t->kind != FSM_GROUP_VIEW || t->view_id != x->view_id) {
      sim_fail(s,
               "groups: views: %s receives view %" PRIu64 " at offset %" PRIu64
               " after view %" PRIu64 " (the group's view there: %" PRIu64 ")",
               m->name, x->view_id, x->offset, view,
               t != NULL ? t->view_id : 0);
      return;
    }
    if (x->members_h != t->members_h || (!t->left_all && x->h != t->h)) {
      sim_fail(s,
               "groups: views: %s disagrees on view %" PRIu64 " of g%" PRIu32
               " (offset %" PRIu64 "): its member list is not the group's",
               m->name, x->view_id, m->g, x->offset);
      return;
    }
    view = x->view_id;
  }
}

static void check_same_view(struct sim *s, const struct gmem *m) {
  struct ginc *in = &s->groups->inc[m->inc];
  uint64_t view = 0, seg = SIM_HASH_INIT;
  for (uint32_t i = 0; i < m->n && !s->failed; i++) {
    const struct gitem *x = &m->d[i];
    if (x->kind == FSM_GROUP_MESSAGE && x->to[0] == '\0') {
      seg = sim_hash_u64(seg, x->h);
    }
    if (x->kind != FSM_GROUP_VIEW) {
      continue;
    }
    if (view != 0) {
      if (view >= in->seg_cap) {
        uint32_t cap = in->seg_cap;
        in->seg_cap = (uint32_t)view * 2 + 8;
        in->seg = xrealloc(in->seg, in->seg_cap * sizeof *in->seg);
        in->seg_by = xrealloc(in->seg_by, in->seg_cap * sizeof *in->seg_by);
        memset(in->seg + cap, 0, (in->seg_cap - cap) * sizeof *in->seg);
      }
      if (in->seg[view] == 0) {
        in->seg[view] = seg;
        snprintf(in->seg_by[view], GM_NAME, "%s", m->member);
      } else if (in->seg[view] != seg) {
        sim_fail(s,
                 "groups: same-view delivery: in g%" PRIu32 " between views "
                 "%" PRIu64 " and %" PRIu64 ", %s received other messages "
                 "than %s did",
                 m->g, view, view + 1, m->name, in->seg_by[view]);
        return;
      }
    }
    view = x->view_id;
    seg = SIM_HASH_INIT;
  }
}

static void check_state(struct sim *s, const struct gmem *m) {
  const struct ginc *in = &s->groups->inc[m->inc];
  if (m->has_ckpt && m->ckpt_off > 0 && m->ckpt_off <= in->n &&
      in->it[m->ckpt_off - 1].state != m->ckpt_h) {
    sim_fail(s,
             "groups: state: %s read a checkpoint at %" PRIu64
             " that is not the group's state there",
             m->name, m->ckpt_off);
    return;
  }
  for (uint32_t i = 0; i < m->n; i++) {
    const struct gitem *x = &m->d[i];
    if (x->state_valid && x->offset <= in->n &&
        in->it[x->offset - 1].state != x->state) {
      sim_fail(s,
               "groups: state: %s (%s) at offset %" PRIu64
               " is not the state of a member there from the start",
               m->name,
               m->has_ckpt ? "a checkpoint and the tail after it"
                           : "from the group's creation",
               x->offset);
      return;
    }
  }
}

void sim_groups_check(struct sim *s, uint32_t leader) {
  struct sim_groups *gs = s->groups;
  if (gs == NULL || s->failed) {
    return;
  }
  /* Those still reading catch up on the leader. */
  for (uint32_t i = 0; i < gs->m_n && !s->failed; i++) {
    struct gmem *m = gs->m[i];
    if (m->ended) {
      continue;
    }
    if (m->push) { /* clients_finish ran it until it caught up */
      const struct ginc *in = &gs->inc[m->inc];
      char name[8];
      struct fsm_stream st;
      snprintf(name, sizeof name, "g%" PRIu32, m->g);
      if (fsm_group_stream(s->r[leader].srv.fsm, name, strlen(name), &st) &&
          st.created_index == in->created) {
        m->end_offset = st.window->next - 1;
      }
      continue;
    }
    m->replica = leader;
    m->gen = s->r[leader].gen;
    m->batch = 1000;
    uint64_t end = 0;
    for (uint32_t k = 0; k < 100000 && !m->ended && !s->failed; k++) {
      uint64_t before = m->next;
      gm_read(s, m, &end);
      if (m->next == before) {
        break;
      }
    }
    m->end_offset = end > 0 ? end - 1 : 0;
  }
  uint32_t transfers = 0;
  void (*const checks[])(struct sim *, const struct gmem *) = {
      check_misaddressed, check_stream, check_views, check_same_view,
      check_state};
  for (size_t c = 0; c < sizeof checks / sizeof checks[0]; c++) {
    for (uint32_t i = 0; i < gs->m_n && !s->failed; i++) {
      checks[c](s, gs->m[i]);
      transfers += c == 0 && gs->m[i]->has_ckpt;
    }
  }
  s->stats.group_readers += gs->m_n;
  sim_trace(s, leader,
            "groups: %" PRIu32 " members' streams checked (%" PRIu32
            " with a checkpoint)",
            gs->m_n, transfers);
}
