/* Group subscriptions, the server's side, on 3 real synodd processes
 * spoken to in raw frames: two members join a group over two sessions and
 * subscribe on a follower; both see the same views and the same messages
 * to the group between them (same-view delivery), a message to one member
 * reaches only that member, a member whose session closes makes a view
 * the other sees; credits are honoured exactly, a resume from the next
 * offset gives no gap and no duplicate, progress covers items for others,
 * the group's deletion ends a subscription; ECOMPACTED below the window,
 * and bad input answered with a clear error. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "raw_client.h"
#include "synod.h"
#include "synod.pb-c.h"

#define ITEMS_MAX 64
#define BIG_BYTES 250000 /* one message; 280 of them pass a group's 64 MiB */
#define BIG_SENDS 280

/* What one subscription received. */
struct member_sub {
  struct seen s;
  uint64_t offset[ITEMS_MAX];
  int kind[ITEMS_MAX]; /* Synod__GroupItem__BodyCase */
  char data[ITEMS_MAX][16];
  char to[ITEMS_MAX][16];
  uint64_t view_id[ITEMS_MAX];
  size_t n;
  uint64_t progress;
  size_t empty; /* deliveries of no items: progress only */
};

#define SUBS_MAX 8
static struct member_sub *by_id[SUBS_MAX];
/* The log index of the last write answered: a follower that applied it
 * has every write before. */
static uint64_t last_index;

static void on_group(struct seen *s, const Synod__GroupDelivery *d) {
  (void)s;
  CHECK(d->subscription_id < SUBS_MAX && by_id[d->subscription_id],
        "a delivery of subscription %" PRIu64 ", which is not running",
        d->subscription_id);
  struct member_sub *m = by_id[d->subscription_id];
  CHECK(d->progress_offset >= m->progress, "progress went back");
  m->progress = d->progress_offset;
  m->empty += d->n_items == 0;
  for (size_t i = 0; i < d->n_items; i++) {
    const Synod__GroupItem *it = d->items[i];
    CHECK(m->n < ITEMS_MAX, "too many items");
    CHECK(m->n == 0 || it->offset > m->offset[m->n - 1],
          "offset %" PRIu64 " after %" PRIu64, it->offset, m->offset[m->n - 1]);
    CHECK(it->offset <= d->progress_offset, "item past its progress");
    m->offset[m->n] = it->offset;
    m->kind[m->n] = it->body_case;
    m->data[m->n][0] = m->to[m->n][0] = '\0';
    m->view_id[m->n] = 0;
    if (it->body_case == SYNOD__GROUP_ITEM__BODY_MESSAGE) {
      const Synod__GroupMessage *g = it->message;
      snprintf(m->data[m->n], sizeof m->data[0], "%.*s",
               (int)(g->data.len < 15 ? g->data.len : 15), g->data.data);
      snprintf(m->to[m->n], sizeof m->to[0], "%s", g->to);
    } else if (it->body_case == SYNOD__GROUP_ITEM__BODY_VIEW) {
      m->view_id[m->n] = it->view->view_id;
    }
    m->n++;
  }
}

static void sub_init(struct member_sub *m, uint64_t id) {
  memset(m, 0, sizeof *m);
  by_id[id] = m;
  m->s.ended = -1;
  m->s.group_cb = on_group;
}

/* Sends a GroupSubscribe; returns its reply's offset (0 on an error, which
 * must be `code`); *first gets first_available or the reply's
 * first_offset. */
static uint64_t group_subscribe(struct raw *r, struct member_sub *m,
                                uint64_t id, const char *group,
                                const char *member, uint64_t from,
                                uint32_t credits, int code, uint64_t *first) {
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__GroupSubscribe q = SYNOD__GROUP_SUBSCRIBE__INIT;
  q.subscription_id = id;
  q.group = (char *)group;
  q.member = (char *)member;
  q.from = from;
  q.credits = credits;
  req.body_case = SYNOD__REQUEST__BODY_GROUP_SUBSCRIBE;
  req.group_subscribe = &q;
  Synod__ServerMessage *sm = raw_call(r, &req, &m->s);
  const Synod__Response *resp = sm->response;
  int got = resp->error ? (int)resp->error->code : 0;
  CHECK(got == code,
        "subscribe %" PRIu64 " \"%s\" as \"%s\": code %d (%s), "
        "want %d",
        id, group, member, got, resp->error ? resp->error->message : "", code);
  uint64_t offset = 0;
  if (got != 0) {
    printf("  subscribe \"%s\" as \"%s\": %s\n", group, member,
           resp->error->message);
    if (first != NULL) {
      *first = resp->error->first_available;
    }
  } else {
    CHECK(resp->body_case == SYNOD__RESPONSE__BODY_GROUP_SUBSCRIBE &&
              resp->group_subscribe->subscription_id == id,
          "subscribe %" PRIu64 ": no GroupSubscribeReply", id);
    offset = resp->group_subscribe->offset;
    if (first != NULL) {
      *first = resp->group_subscribe->first_offset;
    }
  }
  synod__server_message__free_unpacked(sm, NULL);
  return offset;
}

static void unsubscribe(struct raw *r, struct seen *s, uint64_t id, int code) {
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__ChannelUnsubscribe q = SYNOD__CHANNEL_UNSUBSCRIBE__INIT;
  q.subscription_id = id;
  req.body_case = SYNOD__REQUEST__BODY_CHANNEL_UNSUBSCRIBE;
  req.channel_unsubscribe = &q;
  raw_expect(r, &req, s, code, "unsubscribe");
}

/* Reads events until m has `n` items and progress `progress` (or ended),
 * at most 10 s. */
static void wait_items(struct raw *r, struct member_sub *m, size_t n,
                       uint64_t progress, const char *what) {
  uint64_t deadline = test_now_ms() + 10000;
  while ((m->n < n || m->progress < progress) && m->s.ended < 0) {
    CHECK(test_now_ms() < deadline,
          "%s: %zu items of %zu, progress %" PRIu64 " of %" PRIu64, what, m->n,
          n, m->progress, progress);
    Synod__ServerMessage *sm = raw_recv(r, 10000);
    CHECK(sm->body_case == SYNOD__SERVER_MESSAGE__BODY_EVENT,
          "%s: an answer to nothing", what);
    seen_event(&m->s, sm->event);
    synod__server_message__free_unpacked(sm, NULL);
  }
}

/* ------------------------------------------------------------- writes */

struct session {
  uint64_t id, seq;
};

static struct session session_open(struct raw *r) {
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__SessionOpen q = SYNOD__SESSION_OPEN__INIT;
  q.ttl_ms = 120000;
  req.body_case = SYNOD__REQUEST__BODY_SESSION_OPEN;
  req.session_open = &q;
  Synod__ServerMessage *sm = raw_call(r, &req, NULL);
  CHECK(sm->response->error == NULL && sm->response->session_open != NULL,
        "session open refused");
  struct session s = {.id = sm->response->session_open->session_id};
  synod__server_message__free_unpacked(sm, NULL);
  return s;
}

/* Sends req in session s (NULL: none); returns its answer. */
static Synod__ServerMessage *write_call(struct raw *r, struct session *s,
                                        Synod__Request *req, const char *what) {
  if (s != NULL) {
    req->session_id = s->id;
    req->sequence = ++s->seq;
  }
  Synod__ServerMessage *sm = raw_call(r, req, NULL);
  CHECK(sm->response->error == NULL, "%s: %s", what,
        sm->response->error->message);
  return sm;
}

/* Joins; returns the offset of the view the join made. */
static uint64_t join(struct raw *r, struct session *s, const char *group,
                     const char *member) {
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__GroupJoin q = SYNOD__GROUP_JOIN__INIT;
  q.group = (char *)group;
  q.member = (char *)member;
  req.body_case = SYNOD__REQUEST__BODY_GROUP_JOIN;
  req.group_join = &q;
  Synod__ServerMessage *sm = write_call(r, s, &req, "join");
  uint64_t offset = sm->response->group_join->view->offset;
  last_index = sm->response->group_join->index;
  synod__server_message__free_unpacked(sm, NULL);
  return offset;
}

/* Sends data to the group (to "": every member); returns its offset. */
static uint64_t send_to(struct raw *r, const char *group, const char *to,
                        const char *data) {
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__GroupSend q = SYNOD__GROUP_SEND__INIT;
  q.group = (char *)group;
  q.to = (char *)to;
  q.data.data = (uint8_t *)data;
  q.data.len = strlen(data);
  req.body_case = SYNOD__REQUEST__BODY_GROUP_SEND;
  req.group_send = &q;
  Synod__ServerMessage *sm = write_call(r, NULL, &req, "send");
  uint64_t offset = sm->response->group_send->offset;
  last_index = sm->response->group_send->index;
  synod__server_message__free_unpacked(sm, NULL);
  return offset;
}

/* Sends a big message to "big" as message_id `id`, retried on the
 * leader in force until answered: the map grows meanwhile, and a slow
 * turn may cost the leadership (the id keeps a retry from appending twice). */
static uint64_t send_big(struct cluster *c, struct raw *wr, const char *data,
                         int id) {
  char mid[32];
  snprintf(mid, sizeof mid, "big-%d", id);
  uint64_t deadline = test_now_ms() + 60000;
  for (;;) {
    Synod__Request req = SYNOD__REQUEST__INIT;
    Synod__GroupSend q = SYNOD__GROUP_SEND__INIT;
    q.group = "big";
    q.data.data = (uint8_t *)data;
    q.data.len = strlen(data);
    q.message_id = mid;
    req.body_case = SYNOD__REQUEST__BODY_GROUP_SEND;
    req.group_send = &q;
    Synod__ServerMessage *sm = raw_call(wr, &req, NULL);
    if (sm->response->error == NULL) {
      uint64_t offset = sm->response->group_send->offset;
      last_index = sm->response->group_send->index;
      synod__server_message__free_unpacked(sm, NULL);
      return offset;
    }
    printf("  send %d: %s (retried)\n", id, sm->response->error->message);
    synod__server_message__free_unpacked(sm, NULL);
    CHECK(test_now_ms() < deadline, "send %d: no answer in 60 s", id);
    close(wr->fd);
    *wr = raw_open(c->nodes[cluster_wait_leader(c, 20000)].client);
  }
}

static void session_close(struct raw *r, struct session *s) {
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__SessionClose q = SYNOD__SESSION_CLOSE__INIT;
  req.body_case = SYNOD__REQUEST__BODY_SESSION_CLOSE;
  req.session_close = &q;
  synod__server_message__free_unpacked(write_call(r, s, &req, "close"), NULL);
}

static void leave(struct raw *r, struct session *s, const char *group,
                  const char *member) {
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__GroupLeave q = SYNOD__GROUP_LEAVE__INIT;
  q.group = (char *)group;
  q.member = (char *)member;
  req.body_case = SYNOD__REQUEST__BODY_GROUP_LEAVE;
  req.group_leave = &q;
  synod__server_message__free_unpacked(write_call(r, s, &req, "leave"), NULL);
}

/* ---------------------------------------------------------- scenarios */

/* Whether m received offset `off`. */
static bool has(const struct member_sub *m, uint64_t off) {
  for (size_t i = 0; i < m->n; i++) {
    if (m->offset[i] == off) {
      return true;
    }
  }
  return false;
}

/* Alice and Bob in "g", each subscribed on a follower as itself. */
static void scenario_members(struct cluster *c, struct raw *wr) {
  printf("members: two sessions, views and messages, same-view delivery\n");
  int f = follower_of(c);
  struct raw ra = raw_open(c->nodes[f].client);
  struct raw rb = raw_open(c->nodes[f].client);
  struct member_sub a, b, a2, n;
  struct session sa = session_open(wr), sb = session_open(wr);
  uint64_t v1 = join(wr, &sa, "g", "alice");
  uint64_t v2 = join(wr, &sb, "g", "bob");
  CHECK(v1 == 1 && v2 == 2, "views at %" PRIu64 ", %" PRIu64, v1, v2);
  uint64_t m1 = send_to(wr, "g", "", "to-all-1");
  uint64_t pb = send_to(wr, "g", "bob", "to-bob");
  uint64_t pa = send_to(wr, "g", "alice", "to-alice");
  uint64_t m2 = send_to(wr, "g", "", "to-all-2");
  settle(c, f, last_index, &ra, NULL);

  /* Alice from her join with 3 credits: exactly 3 items, then a stop. */
  sub_init(&a, 1);
  sub_init(&b, 2);
  CHECK(group_subscribe(&ra, &a, 1, "g", "alice", v1, 3, 0, NULL) == v1,
        "alice starts at her view");
  CHECK(group_subscribe(&rb, &b, 2, "g", "bob", v2, 0, 0, NULL) == v2,
        "bob starts at his view");
  wait_items(&ra, &a, 3, 0, "alice, 3 credits");
  wait_items(&rb, &b, 4, m2, "bob");
  barrier(&ra, &a.s);
  CHECK(a.n == 3 && a.offset[2] == m1, "alice got %zu items on 3 credits", a.n);
  CHECK(b.n == 4 && b.offset[0] == v2 && b.offset[1] == m1 &&
            b.offset[2] == pb && b.offset[3] == m2,
        "bob's items: %zu", b.n);
  CHECK(!has(&b, pa) && strcmp(b.to[2], "bob") == 0 &&
            strcmp(b.data[2], "to-bob") == 0,
        "bob got alice's message or not his own");

  /* Bob's session closes: a view without him, which both see. */
  session_close(wr, &sb);
  uint64_t v3 = m2 + 1;
  wait_items(&rb, &b, 5, v3, "bob, the view without him");
  CHECK(b.offset[4] == v3 && b.kind[4] == SYNOD__GROUP_ITEM__BODY_VIEW &&
            b.view_id[4] == 3,
        "bob's last item: offset %" PRIu64 " view %" PRIu64, b.offset[4],
        b.view_id[4]);

  /* Alice resumes where her credits stopped: no gap, no duplicate. */
  unsubscribe(&ra, &a.s, 1, 0);
  sub_init(&a2, 3);
  CHECK(group_subscribe(&ra, &a2, 3, "g", "alice", a.offset[2] + 1, 0, 0,
                        NULL) == m1 + 1,
        "alice resumes after %" PRIu64, m1);
  wait_items(&ra, &a2, 3, v3, "alice resumed");
  CHECK(a2.n == 3 && a2.offset[0] == pa && a2.offset[1] == m2 &&
            a2.offset[2] == v3 && !has(&a2, pb),
        "alice resumed: %zu items, first %" PRIu64, a2.n, a2.offset[0]);
  CHECK(strcmp(a2.data[0], "to-alice") == 0, "alice's own message");

  /* Same-view delivery: between views 2 and 3, the items to everyone
   * are the same for both. */
  uint64_t common[ITEMS_MAX];
  size_t nc = 0;
  for (size_t i = 0; i < b.n; i++) {
    if (b.offset[i] > v2 && b.offset[i] < v3 && b.to[i][0] == '\0') {
      common[nc++] = b.offset[i];
    }
  }
  CHECK(nc == 2, "bob: %zu messages to all between views", nc);
  for (size_t i = 0; i < nc; i++) {
    CHECK(has(&a, common[i]) || has(&a2, common[i]), "alice lacks %" PRIu64,
          common[i]);
  }
  CHECK(a.view_id[0] == 1 && a.view_id[1] == 2 && a2.view_id[2] == 3 &&
            b.view_id[0] == 2,
        "views in order");

  /* A subscription from the next offset sees only what follows, moves
   * past messages to others (its progress says so), and ends when the
   * group is deleted. */
  sub_init(&n, 4);
  uint64_t next = group_subscribe(&ra, &n, 4, "g", "carol", 0, 0, 0, NULL);
  CHECK(next == v3 + 1, "from next: %" PRIu64, next);
  uint64_t other = send_to(wr, "g", "alice", "not-carol");
  uint64_t m3 = send_to(wr, "g", "", "to-all-3");
  wait_items(&ra, &n, 1, m3, "carol");
  CHECK(n.n == 1 && n.offset[0] == m3 && other < m3, "carol got %zu", n.n);
  uint64_t alone = send_to(wr, "g", "alice", "skipped");
  wait_items(&ra, &n, 1, alone, "carol's progress (a second at most)");
  CHECK(n.n == 1 && n.empty >= 1, "carol: progress alone");
  wait_items(&ra, &a2, 6, alone, "alice");
  leave(wr, &sa, "g", "alice");
  uint64_t deadline = test_now_ms() + 10000;
  while (n.s.ended < 0) {
    CHECK(test_now_ms() < deadline, "no end after the group's deletion");
    barrier(&ra, &n.s);
  }
  CHECK(n.s.ended == SYNOD_ENOTFOUND, "carol ended with %d", n.s.ended);
  unsubscribe(&ra, &n.s, 4, SYNOD_ENOTFOUND);
  close(ra.fd);
  close(rb.fd);
}

/* ChannelPublish of one message to `name` (created on first use). */
static void publish(struct raw *r, const char *name, const char *data) {
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__ChannelPublish q = SYNOD__CHANNEL_PUBLISH__INIT;
  ProtobufCBinaryData m = {strlen(data), (uint8_t *)data};
  q.name = (char *)name;
  q.messages = &m;
  q.n_messages = 1;
  req.body_case = SYNOD__REQUEST__BODY_CHANNEL_PUBLISH;
  req.channel_publish = &q;
  Synod__ServerMessage *sm = write_call(r, NULL, &req, "publish");
  last_index = sm->response->channel_publish->index;
  synod__server_message__free_unpacked(sm, NULL);
}

static void channel_delete(struct raw *r, const char *name) {
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__ChannelDelete q = SYNOD__CHANNEL_DELETE__INIT;
  q.name = (char *)name;
  req.body_case = SYNOD__REQUEST__BODY_CHANNEL_DELETE;
  req.channel_delete = &q;
  synod__server_message__free_unpacked(write_call(r, NULL, &req, "delete"),
                                       NULL);
}

/* Reads events into s until it ended, at most 10 s. */
static void wait_end(struct raw *r, struct seen *s, const char *what) {
  uint64_t deadline = test_now_ms() + 10000;
  while (s->ended < 0) {
    CHECK(test_now_ms() < deadline, "%s: no end in 10 s", what);
    Synod__ServerMessage *sm = raw_recv(r, 10000);
    CHECK(sm->body_case == SYNOD__SERVER_MESSAGE__BODY_EVENT,
          "%s: an answer to nothing", what);
    seen_event(s, sm->event);
    synod__server_message__free_unpacked(sm, NULL);
  }
}

/* A deletion applied in the same batch as the items before it (the
 * follower stopped while they commit): a subscription still delivers
 * every item up to the deletion, then ends with SYNOD_ENOTFOUND; for a
 * group (its last two leaves) and for a channel alike. */
static void scenario_deletion(struct cluster *c, struct raw *wr) {
  printf("deletion: every item before it is delivered first\n");
  int f = follower_of(c);
  struct raw r = raw_open(c->nodes[f].client);
  struct raw rc = raw_open(c->nodes[f].client);
  struct member_sub m;
  struct session sa = session_open(wr), sb = session_open(wr);
  join(wr, &sa, "del", "alice");
  uint64_t v2 = join(wr, &sb, "del", "bob");
  publish(wr, "delc", "one");
  settle(c, f, last_index, &r, NULL);
  sub_init(&m, 5);
  CHECK(group_subscribe(&r, &m, 5, "del", "obs", v2, 0, 0, NULL) == v2,
        "obs starts at bob's view");
  wait_items(&r, &m, 1, v2, "obs: bob's view");
  struct seen cs = {.ended = -1};
  subscribe(&rc, 6, "delc", false, SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_OFFSET,
            1, 0, NULL, &cs, 0, "delc from 1");
  barrier(&rc, &cs);

  cluster_signal(c, f, SIGSTOP);
  leave(wr, &sa, "del", "alice"); /* view 3 at v2 + 1 */
  leave(wr, &sb, "del", "bob");   /* view 4 at v2 + 2: deleted */
  publish(wr, "delc", "two");
  publish(wr, "delc", "three");
  channel_delete(wr, "delc");
  cluster_signal(c, f, SIGCONT);

  wait_items(&r, &m, 3, 0, "obs: the last two views");
  CHECK(m.n == 3 && m.offset[1] == v2 + 1 && m.view_id[1] == 3 &&
            m.offset[2] == v2 + 2 && m.view_id[2] == 4,
        "obs got %zu items; the last at %" PRIu64, m.n, m.offset[m.n - 1]);
  wait_end(&r, &m.s, "obs");
  CHECK(m.s.ended == SYNOD_ENOTFOUND, "obs ended with %d", m.s.ended);
  wait_end(&rc, &cs, "delc");
  CHECK(cs.n == 3 && cs.offsets[0] == 1 && cs.offsets[1] == 2 &&
            cs.offsets[2] == 3,
        "delc delivered %zu messages before its end", cs.n);
  CHECK(cs.ended == SYNOD_ENOTFOUND, "delc ended with %d", cs.ended);
  close(r.fd);
  close(rc.fd);
}

/* A subscribe at an explicit offset reaches a follower before it has
 * applied the join that made the group (it was stopped while the join
 * committed): it waits for a ReadIndex round and starts, instead of
 * answering SYNOD_ENOTFOUND. The same for a channel deleted and created
 * again meanwhile: the new channel's offsets, not the old one's. */
static void scenario_lagging(struct cluster *c, struct raw *wr) {
  printf("lagging: an explicit start waits until the replica caught up\n");
  int f = follower_of(c);
  struct raw r = raw_open(c->nodes[f].client);
  struct raw rc = raw_open(c->nodes[f].client);
  struct member_sub m;
  struct seen cs = {.ended = -1};
  struct session s = session_open(wr);
  publish(wr, "lagc", "old-1");
  publish(wr, "lagc", "old-2");
  publish(wr, "lagc", "old-3");
  settle(c, f, last_index, &rc, &cs);
  sub_init(&m, 1);

  /* The subscribes reach the stopped follower before the writes do, so
   * that it reads them first when it goes on; the writes are acknowledged
   * before it answers them. */
  cluster_signal(c, f, SIGSTOP);
  uint64_t v1 = 1; /* the group's first view: its creation */
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__GroupSubscribe q = SYNOD__GROUP_SUBSCRIBE__INIT;
  q.subscription_id = 1;
  q.group = "lag";
  q.member = "alice";
  q.from = v1;
  req.body_case = SYNOD__REQUEST__BODY_GROUP_SUBSCRIBE;
  req.group_subscribe = &q;
  raw_send(&r, &req);
  Synod__Request creq = SYNOD__REQUEST__INIT;
  Synod__ChannelSubscribe cq = SYNOD__CHANNEL_SUBSCRIBE__INIT;
  cq.subscription_id = 2;
  cq.channel = "lagc";
  cq.from = SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_OFFSET;
  cq.offset = 2;
  creq.body_case = SYNOD__REQUEST__BODY_CHANNEL_SUBSCRIBE;
  creq.channel_subscribe = &cq;
  raw_send(&rc, &creq);
  CHECK(join(wr, &s, "lag", "alice") == v1, "lag's first view");
  channel_delete(wr, "lagc");
  publish(wr, "lagc", "new-1");
  cluster_signal(c, f, SIGCONT);

  Synod__ServerMessage *sm = raw_recv(&r, 10000);
  while (sm->body_case == SYNOD__SERVER_MESSAGE__BODY_EVENT) {
    seen_event(&m.s, sm->event);
    synod__server_message__free_unpacked(sm, NULL);
    sm = raw_recv(&r, 10000);
  }
  CHECK(sm->response->error == NULL,
        "subscribe from %" PRIu64 " on the lagging replica: %s", v1,
        sm->response->error->message);
  synod__server_message__free_unpacked(sm, NULL);
  wait_items(&r, &m, 1, v1, "alice's join");
  CHECK(m.offset[0] == v1 && m.view_id[0] == 1, "alice's view");

  sm = raw_recv(&rc, 10000);
  while (sm->body_case == SYNOD__SERVER_MESSAGE__BODY_EVENT) {
    seen_event(&cs, sm->event);
    synod__server_message__free_unpacked(sm, NULL);
    sm = raw_recv(&rc, 10000);
  }
  CHECK(sm->response->error == NULL, "lagc from 2 on the lagging replica: %s",
        sm->response->error->message);
  synod__server_message__free_unpacked(sm, NULL);
  publish(wr, "lagc", "new-2");
  settle(c, f, last_index, &rc, &cs);
  CHECK(cs.ended < 0 && cs.n == 1 && cs.offsets[0] == 2,
        "lagc from 2: %zu messages (the first at %" PRIu64 "), ended %d", cs.n,
        cs.n ? cs.offsets[0] : 0, cs.ended);
  session_close(wr, &s);
  close(r.fd);
  close(rc.fd);
}

/* A group of big messages past its 64 MiB: the first ones are gone. */
static void scenario_compacted(struct cluster *c, struct raw *wr) {
  printf("compacted: %d messages of %d bytes\n", BIG_SENDS, BIG_BYTES);
  int f = follower_of(c);
  struct raw r = raw_open(c->nodes[f].client);
  struct session s = session_open(wr);
  join(wr, &s, "big", "m");
  char *data = malloc(BIG_BYTES + 1);
  memset(data, 'x', BIG_BYTES);
  data[BIG_BYTES] = '\0';
  uint64_t last = 0;
  for (int i = 0; i < BIG_SENDS; i++) {
    last = send_big(c, wr, data, i);
  }
  free(data);
  settle(c, f, last_index, &r, NULL);
  struct member_sub m, m2;
  uint64_t first = 0;
  sub_init(&m, 1);
  group_subscribe(&r, &m, 1, "big", "m", 1, 0, SYNOD_ECOMPACTED, &first);
  CHECK(first > 2 && first <= last, "first available %" PRIu64, first);
  sub_init(&m2, 2);
  CHECK(group_subscribe(&r, &m2, 2, "big", "m", first, 2, 0, NULL) == first,
        "from the first available");
  wait_items(&r, &m2, 2, 0, "from the first available");
  CHECK(m2.offset[0] == first && m2.offset[1] == first + 1, "items %" PRIu64,
        m2.offset[0]);
  close(r.fd);
}

static void scenario_bad_input(struct cluster *c, struct raw *wr) {
  printf("bad input\n");
  int f = follower_of(c);
  struct raw r = raw_open(c->nodes[f].client);
  struct member_sub m;
  sub_init(&m, 1);
  struct session s = session_open(wr);
  join(wr, &s, "bad", "x");
  settle(c, f, last_index, &r, NULL);
  uint64_t first;
  group_subscribe(&r, &m, 1, "no-such-group", "x", 1, 0, SYNOD_ENOTFOUND, NULL);
  group_subscribe(&r, &m, 1, "bad", "x", 1000, 0, SYNOD_ERANGE, NULL);
  group_subscribe(&r, &m, 1, "bad", "x", 1, 2000000, SYNOD_ERANGE, NULL);
  char long_name[258];
  memset(long_name, 'x', 257);
  long_name[257] = '\0';
  group_subscribe(&r, &m, 1, "bad", long_name, 1, 0, SYNOD_EINVAL, NULL);
  group_subscribe(&r, &m, 1, "", "x", 1, 0, SYNOD_EINVAL, NULL);
  group_subscribe(&r, &m, 1, "bad", "x", 1, 0, 0, &first);
  group_subscribe(&r, &m, 1, "bad", "x", 1, 0, SYNOD_EEXIST, NULL);
  wait_items(&r, &m, 1, 1, "bad: the one view");
  unsubscribe(&r, &m.s, 1, 0);
  unsubscribe(&r, &m.s, 1, SYNOD_ENOTFOUND);
  session_close(wr, &s);
  close(r.fd);
}

int main(void) {
  char synodd[PATH_MAX];
  cluster_synodd_or_skip(synodd, sizeof synodd);
  struct cluster c;
  cluster_start(&c, 3, synodd);
  int leader = cluster_wait_leader(&c, 20000);
  struct raw wr = raw_open(c.nodes[leader].client);
  scenario_bad_input(&c, &wr);
  scenario_members(&c, &wr);
  scenario_deletion(&c, &wr);
  scenario_lagging(&c, &wr);
  scenario_compacted(&c, &wr);
  close(wr.fd);
  cluster_stop(&c);
  printf("ok\n");
  return 0;
}
