/* Groups through libsynod on 3 real synodd processes (issue 23).
 *
 *  - views: three members join one after the other; each sees its own
 *    join's view first and then every later one, the same views at the
 *    same offsets, the first member as coordinator;
 *  - messages: sends to all reach every member in one order; a send to
 *    one member reaches it and nobody else;
 *  - checkpoint and join with state: the coordinator stores its state (a
 *    running hash of the messages, padded to 2.5 MB so that it goes in
 *    chunks) and a fourth member joins with state; its state plus the
 *    messages after it hash to what a member that was there all along
 *    has at the same offset;
 *  - state request: in a group with no checkpoint a joiner asks for
 *    state; the coordinator gets the request, answers with a checkpoint,
 *    and the joiner ends identical; one that nobody answers fails with
 *    SYNOD_ETIMEDOUT in its bound;
 *  - removed: a member in another process with a 1 s session TTL is
 *    SIGSTOPped; the others see a view without it; continued, it learns
 *    that it was removed (SYNOD_ESESSION, from next and from send);
 *  - the async interface: a membership's ready, view and message
 *    callbacks, send, a 1.5 MB checkpoint stored and read back, view get,
 *    read and leave on a caller's loop;
 *  - resume: the replica a member's stream is on (the leader) is
 *    SIGKILLed while messages flow; the member (a window of 4) receives
 *    every message once, in order.
 * Every wait is bounded and says what it waited for. */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "cluster.h"
#include "synod.h"

#define OK(call) CHECK((call) == 0, "%s: %s", #call, synod_client_errmsg())
#define WAIT_MS 20000
#define PAD_BYTES (2500 * 1000) /* a state of three chunks */
#define SENT_MAX 512

/* One application member: its client, its membership and its state (a
 * running hash of the messages to the group, in order). */
struct mem {
  char name[32];
  struct synod_client *c;
  struct synod_group *g;
  uint64_t hash;
  uint64_t last_msg; /* the offset of the last message applied */
  struct synod_group_view view;
  uint64_t views;         /* view events */
  char got[SENT_MAX][24]; /* the messages' data, in order */
  uint64_t got_at[SENT_MAX];
  size_t got_n;
  uint64_t requests; /* state requests answered */
};

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) {
    h = (h ^ b[i]) * 1099511628211ull;
  }
  return h;
}

#define HASH_INIT 14695981039346656037ull

static struct synod_client *client_new(const struct cluster *cl,
                                       uint32_t ttl_ms) {
  struct synod_options o;
  struct synod_client *c;
  synod_options_init(&o);
  o.endpoints = cl->endpoints;
  o.session_ttl_ms = ttl_ms;
  CHECK(synod_client_new(&o, &c) == 0, "%s", synod_client_errmsg());
  return c;
}

/* The state as stored: the hash in hex, then pad bytes. */
static char *state_encode(uint64_t hash, size_t *len) {
  char *s = malloc(PAD_BYTES);
  CHECK(s != NULL, "out of memory");
  memset(s, 'p', PAD_BYTES);
  snprintf(s, 32, "%016" PRIx64, hash);
  *len = PAD_BYTES;
  return s;
}

static uint64_t state_decode(const struct synod_group_ready *r) {
  if (r->state_len == 0) {
    return HASH_INIT;
  }
  CHECK(r->state_len == PAD_BYTES, "a state of %zu bytes, not %d", r->state_len,
        PAD_BYTES);
  for (size_t i = 17; i < r->state_len; i++) {
    CHECK(((char *)r->state)[i] == 'p', "state byte %zu is not the pad", i);
  }
  return strtoull(r->state, NULL, 16);
}

/* The window of the next mem_join (0: the default). */
static uint32_t mem_window;

static void mem_join(struct mem *m, const struct cluster *cl, const char *group,
                     const char *name, bool want_state, uint32_t ttl_ms,
                     struct synod_group_ready *ready) {
  struct synod_group_join_options o = {.group = group,
                                       .member = name,
                                       .data = name,
                                       .data_len = strlen(name),
                                       .want_state = want_state,
                                       .state_timeout_ms = 10000,
                                       .window = mem_window};
  struct synod_group_ready r;
  memset(m, 0, sizeof *m);
  snprintf(m->name, sizeof m->name, "%s", name);
  m->c = client_new(cl, ttl_ms);
  OK(synod_group_member_join(m->c, &o, 30000, &m->g, &r));
  m->hash = state_decode(&r);
  m->last_msg = r.state_offset;
  if (ready != NULL) {
    *ready = r;
  } else {
    synod_group_ready_free(&r);
  }
}

static void mem_free(struct mem *m) {
  synod_group_member_close(m->g);
  synod_group_view_free(&m->view);
  synod_client_free(m->c);
}

/* Applies one event to m: a view is kept, a message hashed and logged, a
 * state request answered with m's state at its offset. */
static void mem_apply(struct mem *m, const struct synod_group_event *ev) {
  switch (ev->type) {
  case SYNOD_GROUP_EVENT_VIEW:
    CHECK(ev->view.view_id > m->view.view_id,
          "%s: view %" PRIu64 " after %" PRIu64, m->name, ev->view.view_id,
          m->view.view_id);
    synod_group_view_free(&m->view);
    m->view = ev->view;
    /* Keep a copy: the event's memory goes with the next call. */
    m->view.members = calloc(ev->view.count + 1, sizeof *m->view.members);
    CHECK(m->view.members != NULL, "out of memory");
    for (size_t i = 0; i < ev->view.count; i++) {
      m->view.members[i] = ev->view.members[i];
      m->view.members[i].name = strdup(ev->view.members[i].name);
      m->view.members[i].data =
          (uint8_t *)strdup((char *)ev->view.members[i].data);
    }
    m->views++;
    break;
  case SYNOD_GROUP_EVENT_MESSAGE:
    CHECK(ev->item.offset > m->last_msg,
          "%s: message at %" PRIu64 " after %" PRIu64 " (a duplicate?)",
          m->name, ev->item.offset, m->last_msg);
    CHECK(m->got_n < SENT_MAX, "too many messages");
    m->hash = fnv(m->hash, ev->item.data, ev->item.len);
    m->last_msg = ev->item.offset;
    snprintf(m->got[m->got_n], sizeof m->got[0], "%s",
             (const char *)ev->item.data);
    m->got_at[m->got_n++] = ev->item.offset;
    break;
  case SYNOD_GROUP_EVENT_STATE_REQUEST: {
    size_t len;
    char *s = state_encode(m->hash, &len);
    struct synod_group_stored st;
    CHECK(strcmp(ev->item.to, m->name) == 0, "%s: a state request for %s",
          m->name, ev->item.to);
    OK(synod_group_member_checkpoint(m->g, ev->item.offset, s, len, 30000,
                                     &st));
    CHECK(st.bytes == len, "stored %" PRIu64 " bytes", st.bytes);
    free(s);
    m->requests++;
    break;
  }
  default:
    break;
  }
}

/* Takes events until m applied the message at `offset` (or one after). */
static void mem_until(struct mem *m, uint64_t offset) {
  uint64_t deadline = test_now_ms() + WAIT_MS;
  while (m->last_msg < offset) {
    struct synod_group_event ev;
    CHECK(test_now_ms() < deadline,
          "%s: the message at offset %" PRIu64 " did not come (last %" PRIu64
          ")",
          m->name, offset, m->last_msg);
    int rv = synod_group_member_next(m->g, 1000, &ev);
    if (rv == SYNOD_ETIMEDOUT) {
      continue;
    }
    CHECK(rv == 0, "%s: next: %s", m->name, synod_client_errmsg());
    mem_apply(m, &ev);
  }
}

/* Takes events until m's view has `count` members. */
static void mem_until_view(struct mem *m, size_t count) {
  uint64_t deadline = test_now_ms() + WAIT_MS;
  while (m->view.count != count || m->views == 0) {
    struct synod_group_event ev;
    CHECK(test_now_ms() < deadline, "%s: no view of %zu members (has %zu)",
          m->name, count, m->view.count);
    int rv = synod_group_member_next(m->g, 1000, &ev);
    if (rv == SYNOD_ETIMEDOUT) {
      continue;
    }
    CHECK(rv == 0, "%s: next: %s", m->name, synod_client_errmsg());
    mem_apply(m, &ev);
  }
}

static uint64_t send_all(struct mem *from, const char *data) {
  struct synod_group_sent s;
  OK(synod_group_member_send(from->g, NULL, data, strlen(data) + 1, 0, &s));
  CHECK(!s.duplicate && s.offset > 0, "send of %s", data);
  return s.offset;
}

/* ------------------------------------------------------------ scenarios */

static void scenario_views_messages(const struct cluster *cl) {
  static struct mem m[4];
  struct synod_group_ready r;
  mem_join(&m[0], cl, "g1", "m1", false, 0, &r);
  CHECK(r.source == SYNOD_GROUP_STATE_NONE && r.view.count == 1 &&
            r.view.view_id == 1 && strcmp(r.view.members[0].name, "m1") == 0,
        "m1's join: view %" PRIu64 " of %zu", r.view.view_id, r.view.count);
  synod_group_ready_free(&r);
  mem_join(&m[1], cl, "g1", "m2", false, 0, NULL);
  mem_join(&m[2], cl, "g1", "m3", false, 0, NULL);
  for (int i = 0; i < 3; i++) {
    mem_until_view(&m[i], 3);
    CHECK(m[i].view.view_id == 3 &&
              strcmp(m[i].view.members[0].name, "m1") == 0 &&
              strcmp(m[i].view.members[2].name, "m3") == 0 &&
              strcmp((char *)m[i].view.members[1].data, "m2") == 0,
          "%s: view %" PRIu64 " (coordinator %s)", m[i].name, m[i].view.view_id,
          m[i].view.members[0].name);
  }
  CHECK(m[0].views == 3 && m[1].views == 2 && m[2].views == 1,
        "views seen: m1 %" PRIu64 ", m2 %" PRIu64 ", m3 %" PRIu64
        " (each its own join's first, then every later one)",
        m[0].views, m[1].views, m[2].views);
  /* The name is taken. */
  struct synod_group *dup;
  struct synod_group_join_options o = {.group = "g1", .member = "m2"};
  CHECK(synod_group_member_join(m[0].c, &o, 0, &dup, NULL) == SYNOD_EEXIST,
        "a second m2: %s", synod_client_errmsg());
  o.member = "";
  CHECK(synod_group_member_join(m[0].c, &o, 0, &dup, NULL) == SYNOD_EINVAL,
        "an empty member name: %s", synod_client_errmsg());

  /* To all, and to m2 only. */
  uint64_t last = 0;
  for (int i = 0; i < 5; i++) {
    char d[16];
    snprintf(d, sizeof d, "a%d", i);
    last = send_all(&m[i % 3], d);
  }
  struct synod_group_sent s;
  OK(synod_group_member_send(m[0].g, "m2", "secret", 7, 0, &s));
  uint64_t secret = s.offset;
  CHECK(synod_group_member_send(m[0].g, "nobody", "x", 2, 0, &s) ==
            SYNOD_ENOTFOUND,
        "a send to no member: %s", synod_client_errmsg());
  last = send_all(&m[2], "b");
  for (int i = 0; i < 3; i++) {
    mem_until(&m[i], last);
  }
  CHECK(m[1].got_n == 7 && strcmp(m[1].got[5], "secret") == 0 &&
            m[1].got_at[5] == secret,
        "m2 has %zu messages", m[1].got_n);
  for (int i = 0; i < 3; i += 2) {
    CHECK(m[i].got_n == 6 && strcmp(m[i].got[5], "b") == 0,
          "%s has %zu messages, the 6th '%s' (the one to m2 must not come)",
          m[i].name, m[i].got_n, m[i].got[5]);
    for (size_t k = 0; k < 5; k++) {
      CHECK(m[i].got_at[k] == m[1].got_at[k] &&
                strcmp(m[i].got[k], m[1].got[k]) == 0,
            "%s and m2 differ at message %zu", m[i].name, k);
    }
  }
  CHECK(m[0].hash == m[2].hash, "m1 and m3 hash differently");

  /* The view, the list and a read. */
  struct synod_group_info info;
  OK(synod_group_view_get(m[0].c, "g1", 0, 0, &info));
  CHECK(info.members == 3 && info.view.count == 3 &&
            strcmp(info.view.members[0].name, "m1") == 0 &&
            info.next_offset == last + 1 && !info.has_checkpoint,
        "view get: %u members, next %" PRIu64, info.members, info.next_offset);
  synod_group_info_free(&info);
  struct synod_group_list gl;
  OK(synod_group_list(m[0].c, NULL, 0, 0, 0, &gl));
  CHECK(gl.count >= 1 && strcmp(gl.groups[0].name, "g1") == 0, "list");
  synod_group_list_free(&gl);
  struct synod_group_items items;
  OK(synod_group_read(m[0].c, "g1", 0, 0, "m3", 0, 0, &items));
  CHECK(items.count == last - 1 && items.items[0].type == SYNOD_GROUP_ITEM_VIEW,
        "read as m3: %zu items (all but the one to m2)", items.count);
  synod_group_items_free(&items);

  /* State: m1 stores its state at `last`; more messages; m4 joins with
   * state and must end where m3 (there all along) is. */
  size_t len;
  char *st = state_encode(m[0].hash, &len);
  struct synod_group_stored stored;
  OK(synod_group_member_checkpoint(m[0].g, last, st, len, 0, &stored));
  free(st);
  CHECK(stored.notice_offset == last + 1, "the notice at %" PRIu64,
        stored.notice_offset);
  struct synod_group_checkpoint ck;
  OK(synod_group_checkpoint_read(m[2].c, "g1", 0, 0, &ck));
  CHECK(ck.info.offset == last && ck.len == PAD_BYTES &&
            strcmp(ck.info.member, "m1") == 0,
        "checkpoint read: offset %" PRIu64 ", %zu bytes", ck.info.offset,
        ck.len);
  synod_group_checkpoint_free(&ck);
  for (int i = 0; i < 4; i++) {
    char d[16];
    snprintf(d, sizeof d, "c%d", i);
    last = send_all(&m[1], d);
  }
  mem_join(&m[3], cl, "g1", "m4", true, 0, &r);
  CHECK(r.source == SYNOD_GROUP_STATE_CHECKPOINT &&
            r.state_offset == stored.notice_offset - 1 &&
            r.join_offset > last && r.view.count == 4,
        "m4: source %d, state at %" PRIu64 ", join at %" PRIu64, (int)r.source,
        r.state_offset, r.join_offset);
  synod_group_ready_free(&r);
  last = send_all(&m[0], "d");
  mem_until(&m[2], last);
  mem_until(&m[3], last);
  CHECK(m[3].got_n == 5, "m4 got %zu messages after the state, not 5",
        m[3].got_n);
  CHECK(m[3].hash == m[2].hash,
        "m4 (state + tail) %016" PRIx64 " != m3 (all along) %016" PRIx64,
        m[3].hash, m[2].hash);
  mem_until_view(&m[3], 4);
  CHECK(m[3].views == 1 && strcmp(m[3].view.members[3].name, "m4") == 0,
        "m4's first view is its join's");
  printf("views, messages, checkpoint + join with state: ok\n");
  for (int i = 0; i < 4; i++) {
    mem_free(&m[i]);
  }
}

struct joiner {
  const struct cluster *cl;
  const char *group, *name;
  struct mem m;
  struct synod_group_ready r;
};

static void *joiner_main(void *arg) {
  struct joiner *j = arg;
  mem_join(&j->m, j->cl, j->group, j->name, true, 0, &j->r);
  return NULL;
}

static void scenario_state_request(const struct cluster *cl) {
  static struct mem a;
  static struct joiner j;
  struct synod_group_ready r;
  pthread_t t;
  uint64_t last = 0;
  mem_join(&a, cl, "g2", "coord", true, 0, &r);
  CHECK(r.source == SYNOD_GROUP_STATE_EMPTY && r.state_len == 0,
        "the first member with want_state: source %d", (int)r.source);
  synod_group_ready_free(&r);
  for (int i = 0; i < 4; i++) {
    char d[16];
    snprintf(d, sizeof d, "s%d", i);
    last = send_all(&a, d);
  }
  mem_until(&a, last);
  j.cl = cl;
  j.group = "g2";
  j.name = "j2";
  CHECK(pthread_create(&t, NULL, joiner_main, &j) == 0, "pthread_create");
  /* The coordinator answers the request as it comes in its stream. */
  uint64_t deadline = test_now_ms() + WAIT_MS;
  while (a.requests == 0) {
    struct synod_group_event ev;
    CHECK(test_now_ms() < deadline, "the coordinator got no state request");
    int rv = synod_group_member_next(a.g, 1000, &ev);
    CHECK(rv == 0 || rv == SYNOD_ETIMEDOUT, "next: %s", synod_client_errmsg());
    if (rv == 0) {
      mem_apply(&a, &ev);
    }
  }
  pthread_join(t, NULL);
  CHECK(j.r.source == SYNOD_GROUP_STATE_REQUESTED &&
            j.r.state_offset > j.r.join_offset,
        "j2: source %d, state at %" PRIu64 ", join at %" PRIu64,
        (int)j.r.source, j.r.state_offset, j.r.join_offset);
  synod_group_ready_free(&j.r);
  last = send_all(&a, "t1");
  last = send_all(&j.m, "t2");
  mem_until(&a, last);
  mem_until(&j.m, last);
  CHECK(j.m.got_n == 2 && a.hash == j.m.hash,
        "j2 (requested state + tail: %zu) %016" PRIx64 " != the coordinator's "
        "%016" PRIx64,
        j.m.got_n, j.m.hash, a.hash);

  /* Nobody answers: the joiner's bound. "mute" coordinates g2q and
   * takes no events, so the state request stays unanswered. */
  struct synod_group_join_options o = {.group = "g2q", .member = "mute"};
  struct synod_group *mute, *g;
  OK(synod_group_member_join(a.c, &o, 0, &mute, NULL));
  o.member = "late";
  o.want_state = true;
  o.state_timeout_ms = 1500;
  uint64_t t0 = test_now_ms();
  int rv = synod_group_member_join(j.m.c, &o, 0, &g, NULL);
  CHECK(rv == SYNOD_ETIMEDOUT && test_now_ms() - t0 < 8000,
        "an unanswered state request: %s after %" PRIu64 " ms",
        synod_client_errmsg(), test_now_ms() - t0);
  printf("unanswered: %s\n", synod_client_errmsg());
  /* It left again: the view has "mute" alone. */
  struct synod_group_info info;
  uint64_t until = test_now_ms() + WAIT_MS;
  for (;;) {
    OK(synod_group_view_get(a.c, "g2q", 0, 0, &info));
    uint32_t n = info.members;
    synod_group_info_free(&info);
    if (n == 1) {
      break;
    }
    CHECK(test_now_ms() < until, "'late' stays in the view");
    usleep(20000); /* polling the server's view: no event to wait on */
  }
  synod_group_member_close(mute);
  printf("state request answered by the coordinator: ok\n");
  mem_free(&j.m);
  mem_free(&a);
}

/* The next event of m, which must come within WAIT_MS. */
static void mem_next(struct mem *m, struct synod_group_event *ev) {
  uint64_t deadline = test_now_ms() + WAIT_MS;
  for (;;) {
    int rv = synod_group_member_next(m->g, 1000, ev);
    if (rv == 0) {
      return;
    }
    CHECK(rv == SYNOD_ETIMEDOUT && test_now_ms() < deadline, "%s: no event: %s",
          m->name, synod_client_errmsg());
  }
}

/* m stores its state at its view's offset (a checkpoint, whoever asked);
 * j, joining in thread t, must be ready with that state, REQUESTED.
 * Returns the offset. */
static uint64_t answer_at_view(struct mem *m, pthread_t t, struct joiner *j) {
  uint64_t at = m->view.offset;
  size_t len;
  char *st = state_encode(m->hash, &len);
  OK(synod_group_member_checkpoint(m->g, at, st, len, 0, NULL));
  free(st);
  pthread_join(t, NULL);
  CHECK(j->r.source == SYNOD_GROUP_STATE_REQUESTED && j->r.state_offset == at &&
            j->m.hash == m->hash,
        "%s: source %d, state at %" PRIu64 " (want %" PRIu64 ")", j->name,
        (int)j->r.source, j->r.state_offset, at);
  return at;
}

/* While "j5" waits for the state it asked "coord" for: a message to it
 * alone, a message to all, and a third member's join. The coordinator
 * answers only then, with its state after all of them. j5's ready gives
 * the join's view and a state with the message to all; then come the
 * join's view, the message to j5 alone (in no member's state, though
 * before the state's offset) and the view with the third member, in
 * stream order. (A review found the message lost and the views between
 * skipped: ready gave the latest view.) Then in g6 a checkpoint that
 * another member stores, at an offset before the request, answers
 * "c6"'s request (a review found it waiting until its timeout). */
static void scenario_state_request_gaps(const struct cluster *cl) {
  static struct mem a, b, d;
  static struct joiner j, k;
  struct synod_group_ready r;
  struct synod_group_event ev;
  struct synod_group_sent sent;
  pthread_t t;
  mem_join(&a, cl, "g5", "coord", true, 0, &r);
  synod_group_ready_free(&r);
  uint64_t last = send_all(&a, "s0");
  mem_until(&a, last);
  j = (struct joiner){.cl = cl, .group = "g5", .name = "j5"};
  CHECK(pthread_create(&t, NULL, joiner_main, &j) == 0, "pthread_create");
  do { /* the request, left unanswered for now */
    mem_next(&a, &ev);
    if (ev.type != SYNOD_GROUP_EVENT_STATE_REQUEST) {
      mem_apply(&a, &ev);
    }
  } while (ev.type != SYNOD_GROUP_EVENT_STATE_REQUEST);
  struct synod_client *plain = client_new(cl, 0);
  OK(synod_group_send(plain, "g5", "j5", NULL, "to-j5", 6, 0, &sent));
  uint64_t to_j5 = sent.offset;
  last = send_all(&a, "to-all");
  mem_join(&d, cl, "g5", "d5", false, 0, NULL);
  mem_until(&a, last);
  mem_until_view(&a, 3);
  uint64_t at = answer_at_view(&a, t, &j); /* after every item up to it */
  CHECK(j.r.view.count == 2 && j.r.view.offset == j.r.join_offset,
        "j5's ready: a view of %zu members at %" PRIu64 ", not the join's at "
        "%" PRIu64,
        j.r.view.count, j.r.view.offset, j.r.join_offset);
  mem_next(&j.m, &ev);
  CHECK(ev.type == SYNOD_GROUP_EVENT_VIEW && ev.view.count == 2,
        "j5's first event: type %d, not the join's view", (int)ev.type);
  mem_next(&j.m, &ev);
  CHECK(ev.type == SYNOD_GROUP_EVENT_MESSAGE && ev.item.offset == to_j5 &&
            strcmp((const char *)ev.item.data, "to-j5") == 0,
        "j5's second event: type %d at %" PRIu64 ", not the message to it "
        "alone at %" PRIu64,
        (int)ev.type, ev.item.offset, to_j5);
  mem_next(&j.m, &ev);
  CHECK(ev.type == SYNOD_GROUP_EVENT_VIEW && ev.view.count == 3,
        "j5's third event: type %d, not the view with d5", (int)ev.type);
  j.m.last_msg = at;
  last = send_all(&a, "after");
  mem_until(&j.m, last);
  synod_group_ready_free(&j.r);
  synod_client_free(plain);
  mem_free(&d);
  mem_free(&j.m);
  mem_free(&a);

  mem_join(&a, cl, "g6", "a6", true, 0, &r); /* coordinates, never answers */
  synod_group_ready_free(&r);
  mem_join(&b, cl, "g6", "b6", false, 0, NULL);
  last = send_all(&a, "m0");
  mem_until(&b, last);
  k = (struct joiner){.cl = cl, .group = "g6", .name = "c6"};
  CHECK(pthread_create(&t, NULL, joiner_main, &k) == 0, "pthread_create");
  mem_until_view(&b, 3);
  answer_at_view(&b, t, &k); /* at c6's view: before its request */
  last = send_all(&b, "m1");
  mem_until(&k.m, last);
  CHECK(k.m.hash == b.hash || k.m.got_n == 1, "c6 after its state");
  synod_group_ready_free(&k.r);
  mem_free(&k.m);
  mem_free(&b);
  mem_free(&a);
  printf("state requests: a message to the joiner, views while it waits, "
         "another member's checkpoint: ok\n");
}

/* "late" joins g2e with want_state while "first" coordinates it. */
struct late_joiner {
  struct synod_client *c;
  struct synod_group *g;
  struct synod_group_ready r;
  int rv;
  char why[SYNOD_ERRMSG_BYTES];
  uint64_t ms; /* how long the join took */
};

static void *late_main(void *arg) {
  struct late_joiner *l = arg;
  struct synod_group_join_options o = {.group = "g2e",
                                       .member = "late",
                                       .want_state = true,
                                       .state_timeout_ms = 15000};
  uint64_t t0 = test_now_ms();
  l->rv = synod_group_member_join(l->c, &o, 0, &l->g, &l->r);
  l->ms = test_now_ms() - t0;
  snprintf(l->why, sizeof l->why, "%s", synod_client_errmsg());
  return NULL;
}

/* The coordinator leaves while a joiner waits for its state: the joiner
 * is the coordinator then, and is told EMPTY in its stream. It becomes
 * ready from nothing at once, and then receives what is sent, instead of
 * waiting for an answer to its own state request until it times out. */
static void scenario_state_empty(const struct cluster *cl) {
  static struct late_joiner l;
  struct synod_client *c = client_new(cl, 0);
  struct synod_group *first;
  struct synod_group_join_options o = {.group = "g2e", .member = "first"};
  pthread_t t;
  OK(synod_group_member_join(c, &o, 0, &first, NULL));
  l.c = client_new(cl, 0);
  CHECK(pthread_create(&t, NULL, late_main, &l) == 0, "pthread_create");
  /* Until the request is pending ("first" takes no events meanwhile). */
  struct synod_group_info info;
  uint64_t until = test_now_ms() + WAIT_MS;
  for (;;) {
    OK(synod_group_view_get(c, "g2e", 0, 0, &info));
    uint32_t pending = info.state_requests;
    synod_group_info_free(&info);
    if (pending == 1) {
      break;
    }
    CHECK(test_now_ms() < until, "no pending state request for 'late'");
    usleep(20000); /* polling the server's view: no event to wait on */
  }
  uint64_t t0 = test_now_ms();
  OK(synod_group_member_leave(first, 0)); /* "late" coordinates */
  synod_group_member_close(first);
  pthread_join(t, NULL);
  CHECK(l.rv == 0, "late: %s after %" PRIu64 " ms", l.why, l.ms);
  CHECK(l.r.source == SYNOD_GROUP_STATE_EMPTY && l.r.state_len == 0 &&
            l.r.state_offset == l.r.join_offset,
        "late: source %d, %zu bytes at %" PRIu64 " (join at %" PRIu64 ")",
        (int)l.r.source, l.r.state_len, l.r.state_offset, l.r.join_offset);
  CHECK(test_now_ms() - t0 < 10000, "late was ready %" PRIu64 " ms after",
        test_now_ms() - t0);
  synod_group_ready_free(&l.r);
  /* Live: it receives a message to the group. */
  struct synod_group_sent sent;
  OK(synod_group_send(c, "g2e", NULL, NULL, "after", 5, 0, &sent));
  until = test_now_ms() + WAIT_MS;
  for (;;) {
    struct synod_group_event ev;
    CHECK(test_now_ms() < until, "late got no message after EMPTY");
    int rv = synod_group_member_next(l.g, 1000, &ev);
    CHECK(rv == 0 || rv == SYNOD_ETIMEDOUT, "next: %s", synod_client_errmsg());
    if (rv == 0 && ev.type == SYNOD_GROUP_EVENT_MESSAGE) {
      CHECK(ev.item.offset == sent.offset,
            "late: message at %" PRIu64 ", sent at %" PRIu64, ev.item.offset,
            sent.offset);
      break;
    }
  }
  printf("state request answered EMPTY after the coordinator left: ok\n");
  synod_group_member_close(l.g);
  synod_client_free(l.c);
  synod_client_free(c);
}

/* The member in another process: joins g3 as "gone" with a 1 s TTL,
 * says so, waits for SIGSTOP/SIGCONT; then must learn it was removed. */
static int child_main(const char *endpoints) {
  struct synod_options o;
  struct synod_client *c;
  struct synod_group *g;
  struct synod_group_event ev;
  struct synod_group_join_options jo = {.group = "g3", .member = "gone"};
  synod_options_init(&o);
  o.endpoints = endpoints;
  o.session_ttl_ms = 1000;
  if (synod_client_new(&o, &c) != 0 ||
      synod_group_member_join(c, &jo, 0, &g, NULL) != 0) {
    printf("join: %s\n", synod_client_errmsg());
    return 2;
  }
  printf("joined\n");
  fflush(stdout);
  uint64_t deadline = test_now_ms() + 60000;
  int rv;
  do {
    rv = synod_group_member_next(g, 1000, &ev);
  } while ((rv == 0 || rv == SYNOD_ETIMEDOUT) && test_now_ms() < deadline);
  printf("next: %s: %s\n", synod_errname(rv), synod_client_errmsg());
  int rv2 = synod_group_member_send(g, NULL, "x", 1, 0, NULL);
  printf("send: %s: %s\n", synod_errname(rv2), synod_client_errmsg());
  fflush(stdout);
  synod_group_member_close(g);
  synod_client_free(c);
  return rv == SYNOD_ESESSION && rv2 == SYNOD_ESESSION ? 0 : 3;
}

static void scenario_removed(const struct cluster *cl) {
  static struct mem a;
  char self[PATH_MAX], out[PATH_MAX + 16], dir[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  CHECK(n > 0, "readlink");
  self[n] = '\0';
  test_tmpdir("group-child", dir, sizeof dir);
  snprintf(out, sizeof out, "%s/child.log", dir);
  mem_join(&a, cl, "g3", "stays", false, 0, NULL);
  char *argv[] = {self, "--child", (char *)cl->endpoints, NULL};
  pid_t pid = test_spawn(argv, out);
  test_wait_file(out, "joined", WAIT_MS);
  mem_until_view(&a, 2);
  kill(pid, SIGSTOP);
  uint64_t t0 = test_now_ms();
  mem_until_view(&a, 1); /* its session expires: a view without it */
  printf("removed from the view after %" PRIu64 " ms stopped\n",
         test_now_ms() - t0);
  CHECK(strcmp(a.view.members[0].name, "stays") == 0, "the view left");
  kill(pid, SIGCONT);
  int code = test_wait(pid, 30000, "the removed member");
  char *log = test_slurp(out);
  CHECK(code == 0, "the removed member exited %d:\n%s", code, log);
  CHECK(strstr(log, "was removed") != NULL, "no clear message:\n%s", log);
  printf("%s", log);
  free(log);
  printf("removed after its session expired: ok\n");
  mem_free(&a);
}

struct sender {
  struct mem *m;
  uint64_t offsets[SENT_MAX];
  int n;
};

static void *sender_main(void *arg) {
  struct sender *s = arg;
  for (int i = 0; i < 200; i++) {
    char d[16];
    struct synod_group_sent sent;
    snprintf(d, sizeof d, "r%d", i);
    /* Retried through the failover: exactly once in the session. */
    int rv;
    uint64_t deadline = test_now_ms() + WAIT_MS;
    while ((rv = synod_group_member_send(s->m->g, NULL, d, strlen(d) + 1, 5000,
                                         &sent)) != 0) {
      CHECK(rv == SYNOD_ETIMEDOUT && test_now_ms() < deadline, "send %d: %s", i,
            synod_client_errmsg());
    }
    s->offsets[s->n++] = sent.offset;
    usleep(2000); /* a steady flow across the kill, not a test wait */
  }
  return NULL;
}

static void scenario_resume(struct cluster *cl) {
  static struct mem a, b;
  static struct sender s;
  pthread_t t;
  mem_join(&a, cl, "g4", "sender", false, 0, NULL);
  mem_window = 4; /* credit goes back as the reader takes messages */
  mem_join(&b, cl, "g4", "reader", false, 0, NULL);
  mem_window = 0;
  s.m = &a;
  CHECK(pthread_create(&t, NULL, sender_main, &s) == 0, "pthread_create");
  /* The reader's stream is on the leader (its join went there). */
  int leader = cluster_wait_leader(cl, WAIT_MS);
  while (b.got_n < 50) {
    mem_until(&b, b.last_msg + 1);
  }
  cluster_signal(cl, leader, SIGKILL);
  pthread_join(t, NULL);
  mem_until(&b, s.offsets[s.n - 1]);
  CHECK(b.got_n == 200, "the reader got %zu messages, not 200", b.got_n);
  for (int i = 0; i < 200; i++) {
    char d[16];
    snprintf(d, sizeof d, "r%d", i);
    CHECK(strcmp(b.got[i], d) == 0 && b.got_at[i] == s.offsets[i],
          "message %d: '%s' at %" PRIu64 ", sent at %" PRIu64, i, b.got[i],
          b.got_at[i], s.offsets[i]);
  }
  cluster_restart(cl, leader);
  printf("resume after the leader's SIGKILL: ok\n");
  mem_free(&b);
  mem_free(&a);
}

/* ------------------------------------------------------ the async API */

struct av {
  bool ready, sent, stored, read, info, items, left, got;
  int status;
  uint64_t msg_offset, notice;
  size_t views;
  char msg[32];
  struct synod_group_checkpoint ck;
};

static void av_ready(void *arg, int status, const struct synod_group_ready *r) {
  struct av *v = arg;
  CHECK(status == 0 && r->view.count == 1, "async ready: %s",
        synod_strerror(status));
  v->ready = true;
}
static void av_view(void *arg, const struct synod_group_view *view) {
  struct av *v = arg;
  CHECK(view->count >= 1, "an empty view");
  v->views++;
}
static void av_message(void *arg, const struct synod_group_item *it) {
  struct av *v = arg;
  CHECK(it->len < sizeof v->msg && strcmp(it->from, "am") == 0,
        "async message from '%s'", it->from);
  memcpy(v->msg, it->data, it->len); /* not NUL-terminated here */
  v->msg[it->len] = '\0';
  v->msg_offset = it->offset;
  v->got = true;
}
static void av_sent(void *arg, int status, const struct synod_group_sent *s) {
  struct av *v = arg;
  CHECK(status == 0 && s->offset > 0, "async send: %s", synod_strerror(status));
  v->sent = true;
}
static void av_stored(void *arg, int status,
                      const struct synod_group_stored *s) {
  struct av *v = arg;
  CHECK(status == 0, "async checkpoint: %s", synod_strerror(status));
  v->notice = s->notice_offset;
  v->stored = true;
}
static void av_read(void *arg, int status,
                    const struct synod_group_checkpoint *ck) {
  struct av *v = arg;
  CHECK(status == 0, "async checkpoint read: %s", synod_strerror(status));
  v->ck = *ck;
  v->ck.data = malloc(ck->len + 1);
  CHECK(v->ck.data != NULL, "out of memory");
  memcpy(v->ck.data, ck->data, ck->len);
  v->ck.info.member = NULL; /* borrowed */
  v->read = true;
}
static void av_info(void *arg, int status, const struct synod_group_info *i) {
  struct av *v = arg;
  CHECK(status == 0 && i->members == 1 && i->has_checkpoint &&
            i->checkpoint_usable && i->checkpoint.offset == v->msg_offset,
        "async view get: %s", synod_strerror(status));
  v->info = true;
}
static void av_items(void *arg, int status,
                     const struct synod_group_items *items) {
  struct av *v = arg;
  CHECK(status == 0 && items->count == 3 &&
            items->items[1].type == SYNOD_GROUP_ITEM_MESSAGE &&
            items->items[2].type == SYNOD_GROUP_ITEM_CHECKPOINT,
        "async read: %zu items", status == 0 ? items->count : 0);
  v->items = true;
}
static void av_left(void *arg, int status, const struct synod_group_left *l) {
  struct av *v = arg;
  CHECK(status == 0 && l->view_id == 2, "async leave: %s",
        synod_strerror(status));
  v->left = true;
}

/* Runs the loop until *flag, at most WAIT_MS. */
static void av_run(uv_loop_t *loop, const bool *flag, const char *what) {
  uint64_t deadline = test_now_ms() + WAIT_MS;
  while (!*flag) {
    CHECK(test_now_ms() < deadline, "async: no %s in time", what);
    uv_run(loop, UV_RUN_ONCE);
  }
}

static void av_closed(void *arg) {
  *(bool *)arg = true;
}

static void scenario_async(const struct cluster *cl) {
  uv_loop_t loop;
  struct synod_async *a;
  struct synod_async_group *g;
  struct synod_options o;
  static struct av v;
  bool closed = false;
  uv_loop_init(&loop);
  synod_options_init(&o);
  o.endpoints = cl->endpoints;
  OK(synod_async_new(&loop, &o, &a));
  struct synod_group_join_options jo = {.group = "g5", .member = "am"};
  struct synod_group_callbacks cbs = {.ready_cb = av_ready,
                                      .view_cb = av_view,
                                      .message_cb = av_message,
                                      .arg = &v};
  OK(synod_async_group_member_join(a, &jo, &cbs, &g));
  av_run(&loop, &v.ready, "ready");
  OK(synod_async_group_member_send(a, g, NULL, "hello", 5, av_sent, &v));
  av_run(&loop, &v.got, "message");
  av_run(&loop, &v.sent, "send");
  CHECK(strcmp(v.msg, "hello") == 0 && v.views == 1, "async got '%s'", v.msg);
  size_t len = 1500 * 1000;
  char *big = malloc(len);
  CHECK(big != NULL, "out of memory");
  for (size_t i = 0; i < len; i++) {
    big[i] = (char)('a' + i % 26);
  }
  OK(synod_async_group_member_checkpoint(a, g, v.msg_offset, big, len,
                                         av_stored, &v));
  av_run(&loop, &v.stored, "checkpoint stored");
  OK(synod_async_group_checkpoint_read(a, "g5", 0, av_read, &v));
  av_run(&loop, &v.read, "checkpoint read");
  CHECK(v.ck.len == len && memcmp(v.ck.data, big, len) == 0 &&
            v.ck.info.offset == v.msg_offset,
        "async checkpoint read back: %zu bytes at %" PRIu64, v.ck.len,
        v.ck.info.offset);
  free(v.ck.data);
  free(big);
  OK(synod_async_group_view_get(a, "g5", 0, av_info, &v));
  av_run(&loop, &v.info, "view");
  OK(synod_async_group_read(a, "g5", 1, 0, NULL, 0, av_items, &v));
  av_run(&loop, &v.items, "items");
  OK(synod_async_group_member_leave(a, g, av_left, &v));
  av_run(&loop, &v.left, "leave");
  synod_async_group_member_close(a, g);
  synod_async_close(a, av_closed, &closed);
  av_run(&loop, &closed, "close");
  uv_loop_close(&loop);
  printf("async: join, send, 1.5 MB checkpoint stored and read back, view, "
         "read, leave: ok\n");
}

/* One watched item as text: "OFFSET view +JOINED -LEFT" or "OFFSET msg
 * DATA". */
static void watch_item_text(const struct synod_group_item *it, char *out,
                            size_t cap) {
  int n = snprintf(out, cap, "%" PRIu64, it->offset);
  if (it->type == SYNOD_GROUP_ITEM_VIEW) {
    n += snprintf(out + n, cap - (size_t)n, " view");
    for (size_t i = 0; i < it->joined_n; i++) {
      n += snprintf(out + n, cap - (size_t)n, " +%s", it->joined[i].name);
    }
    for (size_t i = 0; i < it->left_n; i++) {
      n += snprintf(out + n, cap - (size_t)n, " -%s", it->left[i]);
    }
  } else if (it->type == SYNOD_GROUP_ITEM_MESSAGE) {
    snprintf(out + n, cap - (size_t)n, " msg %s", (const char *)it->data);
  } else {
    snprintf(out + n, cap - (size_t)n, " type %d", (int)it->type);
  }
}

/* w delivers exactly `want` (n items, in order), then ends with
 * SYNOD_ENOTFOUND (the group was deleted). */
static void watch_expect(struct synod_group_watch *w, const char *what,
                         const char *const *want, size_t n) {
  uint64_t deadline = test_now_ms() + WAIT_MS;
  size_t got = 0;
  for (;;) {
    struct synod_group_item it;
    CHECK(test_now_ms() < deadline, "%s: %zu of %zu items, then nothing", what,
          got, n);
    int rv = synod_group_watch_next(w, 1000, &it);
    if (rv == SYNOD_ETIMEDOUT) {
      continue;
    }
    if (rv != 0) {
      CHECK(rv == SYNOD_ENOTFOUND && got == n,
            "%s: ended with %s (%s) after %zu of %zu items", what,
            synod_errname(rv), synod_client_errmsg(), got, n);
      return;
    }
    char text[256];
    watch_item_text(&it, text, sizeof text);
    CHECK(got < n && strcmp(text, want[got]) == 0,
          "%s: item %zu is \"%s\", want \"%s\"", what, got, text,
          got < n ? want[got] : "(none: the end)");
    got++;
  }
}

/* Watching without membership: from offset 1 every item (an observer);
 * with a member, only what that member receives (to all, to it); from 0,
 * what comes after the newest item. Each ends with SYNOD_ENOTFOUND once
 * the group is deleted, after its last view. (synodctl group watch polled
 * reads before this existed.) */
static void scenario_watch(const struct cluster *cl) {
  struct synod_client *wc = client_new(cl, 0);
  struct synod_group_watch *all, *for_b, *after;
  struct synod_group_sent sent;
  struct mem a, b;
  uint64_t start = 0;
  mem_join(&a, cl, "gw", "wa", false, 0, NULL);
  OK(synod_group_watch(wc, "gw", NULL, 1, 0, 0, &all, &start));
  CHECK(start == 1, "a watch from 1 starts at %" PRIu64, start);
  OK(synod_group_watch(wc, "gw", NULL, 0, 0, 0, &after, &start));
  CHECK(start == 2, "a watch from the next item starts at %" PRIu64, start);
  mem_join(&b, cl, "gw", "wb", false, 0, NULL);
  OK(synod_group_watch(wc, "gw", "wb", 1, 4, 0, &for_b, NULL));
  send_all(&a, "to-all");
  OK(synod_group_member_send(a.g, "wa", "to-a", 5, 0, &sent));
  OK(synod_group_member_send(a.g, "wb", "to-b", 5, 0, &sent));
  OK(synod_group_member_leave(b.g, 0));
  OK(synod_group_member_leave(a.g, 0));
  static const char *const want_all[] = {
      "1 view +wa", "2 view +wb", "3 msg to-all", "4 msg to-a",
      "5 msg to-b", "6 view -wb", "7 view -wa"};
  static const char *const want_b[] = {"1 view +wa",   "2 view +wb",
                                       "3 msg to-all", "5 msg to-b",
                                       "6 view -wb",   "7 view -wa"};
  watch_expect(all, "observer from 1", want_all, 7);
  watch_expect(for_b, "wb's items from 1 (window 4)", want_b, 6);
  watch_expect(after, "observer from the next", want_all + 1, 6);
  struct synod_group_watch *none = NULL;
  CHECK(synod_group_watch(wc, "", NULL, 1, 0, 0, &none, NULL) == SYNOD_EINVAL,
        "a watch of no group: %s", synod_client_errmsg());
  CHECK(synod_group_watch(wc, "no-such-group", NULL, 1, 0, 3000, &none, NULL) ==
            SYNOD_ENOTFOUND,
        "a watch of a group that does not exist: %s", synod_client_errmsg());
  synod_group_watch_close(all);
  synod_group_watch_close(for_b);
  synod_group_watch_close(after);
  mem_free(&a);
  mem_free(&b);
  synod_client_free(wc);
  printf("ok watch: observer, one member's items, from the next\n");
}

int main(int argc, char **argv) {
  char synodd[PATH_MAX];
  if (argc == 3 && strcmp(argv[1], "--child") == 0) {
    return child_main(argv[2]);
  }
  cluster_synodd_or_skip(synodd, sizeof synodd);
  struct cluster c;
  signal(SIGPIPE, SIG_IGN);
  cluster_start(&c, 3, synodd);
  cluster_wait_leader(&c, WAIT_MS);
  scenario_views_messages(&c);
  scenario_async(&c);
  scenario_watch(&c);
  scenario_state_request(&c);
  scenario_state_request_gaps(&c);
  scenario_state_empty(&c);
  scenario_removed(&c);
  scenario_resume(&c);
  cluster_stop(&c);
  printf("ok\n");
  return 0;
}
