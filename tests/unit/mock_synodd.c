/* A one-replica fake synodd for libsynod's unit tests, included by
 * test_clientlib.c (not built on its own). It speaks the wire protocol
 * through the server's own client listener (client_net) and keeps the
 * semantics the library relies on: sessions with a record of answers per
 * sequence (exactly-once), locks with FIFO waiters and tokens, counters,
 * elections with observers, channels with cursors and subscriptions
 * (mock_channels.c). Knobs make it misbehave: answer as a follower
 * (ENOTLEADER), drop the connection after applying a request without
 * answering, ignore keepalives, and the subscription knobs there. It runs
 * on its own thread and loop. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "client.h"
#include "err.h"
#include "synod.h"
#include "synod.pb-c.h"

#define MOCK_MAX 64
#define MOCK_RECORD 32
#define MOCK_CURSORS 8

struct mock_session {
  uint64_t id;
  uint64_t conn_id;
  uint32_t ttl_ms;
  uint64_t seqs[MOCK_RECORD]; /* ring: the answers of the last sequences */
  uint8_t *answers[MOCK_RECORD];
  size_t answer_lens[MOCK_RECORD];
};

struct mock_waiter {
  uint64_t conn_id, req_id, session_id, owner_id, seq;
};

struct mock_lock {
  char name[SYNOD_NAME_MAX + 1];
  uint64_t session_id, owner_id, token;
  uint32_t hold_count;
  struct mock_waiter waiters[MOCK_MAX];
  int waiters_n;
};

struct mock_counter {
  char name[SYNOD_NAME_MAX + 1];
  int64_t value;
};

struct mock_candidate {
  uint64_t session_id;
  char value[SYNOD_ELECTION_VALUE_MAX + 1];
};

struct mock_election {
  char name[SYNOD_NAME_MAX + 1];
  struct mock_candidate cands[MOCK_MAX];
  int cands_n;
  uint64_t revision;
  uint64_t observers[MOCK_MAX]; /* conn ids */
  int observers_n;
};

struct mock_msg {
  char channel[SYNOD_NAME_MAX + 1];
  uint64_t offset, index, time_ms;
  uint8_t *data;
  size_t len;
};

struct mock_cursor {
  char name[SYNOD_NAME_MAX + 1];
  uint64_t offset, index;
};

struct mock_channel {
  char name[SYNOD_NAME_MAX + 1];
  uint64_t first_offset; /* retained from here (compaction knob) */
  uint64_t next_offset;
  struct mock_cursor cursors[MOCK_CURSORS];
  int cursors_n;
};

struct mock_sub {
  bool used;
  uint64_t conn_id, id;
  char channel[SYNOD_NAME_MAX + 1]; /* or the prefix */
  bool prefix;
  uint64_t next_offset, after_index, after_offset; /* where it started */
  uint64_t credits;
  size_t pos;      /* next message of msgs to consider */
  size_t last_pos; /* 1 + the last one delivered; 0: none */
};

struct mock {
  uv_loop_t loop;
  uv_async_t wake;
  pthread_t thread;
  struct client_net *net;
  char address[64];
  /* Knobs, set from the test thread. */
  _Atomic bool follower; /* answer ENOTLEADER (leader_address below) */
  char leader_address[64];
  _Atomic bool ignore_keepalives;
  _Atomic int drop_every;          /* close after applying every Nth mutation */
  _Atomic uint64_t expire_session; /* set, then mock_poke: expire it */
  _Atomic bool stop;
  /* Subscription knobs (mock_channels.c). */
  _Atomic int sub_drop_after; /* close the subscriber's connection after
                               * this many more messages (0: never) */
  _Atomic int sub_rewind;     /* a subscribe starts this many early */
  _Atomic bool sub_duplicate; /* each delivery repeats the last message */
  _Atomic bool sub_skip;      /* the next message is skipped: a gap */
  _Atomic int sub_batch_max;  /* messages per delivery (0: 64) */
  _Atomic int sub_refuse;     /* answer subscribes with this error */
  _Atomic int sub_end_code;   /* set, then mock_poke: end every one */
  char compact_channel[64];   /* set, then compact_to, then mock_poke */
  /* Group "g"'s checkpoint (group created at index 10), served 4 bytes a
   * chunk: ckpt[0] at offset ckpt_offset, index 100; with ckpt_swap,
   * after its first chunk is read it is replaced by ckpt[1], at the same
   * offset, index 200. Set before the first read. */
  char ckpt[2][32];
  uint64_t ckpt_offset;
  _Atomic bool ckpt_swap;
  int ckpt_now; /* mock thread: which one the group holds */
  _Atomic uint64_t compact_to;
  /* Subscription stats. */
  _Atomic int subscribes, unsubscribes, delivered;
  _Atomic int sub_last_from;
  _Atomic uint64_t sub_last_offset, sub_last_after_index;
  _Atomic uint64_t sub_last_after_offset;
  _Atomic uint32_t sub_last_credits;
  _Atomic int credit_grants;
  _Atomic uint64_t credits_granted;
  _Atomic uint32_t credit_min, credit_max;
  _Atomic int subs_active; /* subscriptions the mock serves now */
  _Atomic int pokes_done;  /* sub_end_code / compact_to pokes applied */
  /* Stats, read from the test thread. */
  _Atomic int applied;
  _Atomic int replayed; /* retries answered from the record */
  _Atomic int keepalives;
  _Atomic int sessions_opened, sessions_closed;
  _Atomic int conns_dropped;
  /* State: mock thread only. */
  uint64_t index;
  uint64_t next_session;
  struct mock_session sessions[MOCK_MAX];
  struct mock_lock locks[MOCK_MAX];
  struct mock_counter counters[MOCK_MAX];
  struct mock_election elections[MOCK_MAX];
  struct mock_channel channels[MOCK_MAX];
  struct mock_sub subs[MOCK_MAX];
  struct mock_msg *msgs; /* every message, in log order */
  size_t msgs_n, msgs_cap;
  char deleted_name[SYNOD_NAME_MAX + 1]; /* the last channel deleted */
};

/* ------------------------------------------------------------ helpers */

static struct mock_session *mock_session(struct mock *m, uint64_t id) {
  for (int i = 0; i < MOCK_MAX; i++) {
    if (id != 0 && m->sessions[i].id == id) {
      return &m->sessions[i];
    }
  }
  return NULL;
}

static void mock_send(struct mock *m, uint64_t conn_id, Synod__Response *r) {
  Synod__ServerMessage sm = SYNOD__SERVER_MESSAGE__INIT;
  sm.body_case = SYNOD__SERVER_MESSAGE__BODY_RESPONSE;
  sm.response = r;
  client_net_send(m->net, conn_id, &sm);
}

static void mock_error(struct mock *m, uint64_t conn_id, uint64_t id, int code,
                       const char *text, const char *leader) {
  Synod__Response r = SYNOD__RESPONSE__INIT;
  Synod__Error e = SYNOD__ERROR__INIT;
  e.code = (Synod__ErrorCode)code;
  e.message = (char *)text;
  e.leader_name = (char *)(leader[0] ? "mock-leader" : "");
  e.leader_address = (char *)leader;
  r.id = id;
  r.error = &e;
  mock_send(m, conn_id, &r);
}

/* Stores the answer to (session, seq) so a retry gets the same bytes. */
static void mock_record(struct mock_session *s, uint64_t seq,
                        const Synod__Response *r) {
  int slot = (int)(seq % MOCK_RECORD);
  size_t n = synod__response__get_packed_size(r);
  free(s->answers[slot]);
  s->answers[slot] = malloc(n ? n : 1);
  synod__response__pack(r, s->answers[slot]);
  s->answer_lens[slot] = n;
  s->seqs[slot] = seq;
}

static bool mock_replay(struct mock *m, struct mock_session *s,
                        uint64_t conn_id, uint64_t id, uint64_t seq) {
  int slot = (int)(seq % MOCK_RECORD);
  Synod__Response *r;
  if (s->seqs[slot] != seq || s->answers[slot] == NULL) {
    return false;
  }
  r = synod__response__unpack(NULL, s->answer_lens[slot], s->answers[slot]);
  r->id = id;
  mock_send(m, conn_id, r);
  synod__response__free_unpacked(r, NULL);
  m->replayed++;
  return true;
}

/* Answers a sequenced request: records, then sends (or drops the
 * connection instead, when the knob says so). */
static void mock_answer(struct mock *m, struct mock_session *s,
                        uint64_t conn_id, uint64_t seq, Synod__Response *r) {
  int every = m->drop_every;
  mock_record(s, seq, r);
  m->applied++;
  if (every > 0 && m->applied % every == 0) {
    m->conns_dropped++;
    client_net_close(m->net, conn_id, "mock: dropped after applying");
    return;
  }
  mock_send(m, conn_id, r);
}

static struct mock_counter *mock_counter(struct mock *m, const char *name,
                                         bool create) {
  struct mock_counter *free_slot = NULL;
  for (int i = 0; i < MOCK_MAX; i++) {
    if (m->counters[i].name[0] && strcmp(m->counters[i].name, name) == 0) {
      return &m->counters[i];
    }
    if (!m->counters[i].name[0] && free_slot == NULL) {
      free_slot = &m->counters[i];
    }
  }
  if (create && free_slot != NULL) {
    snprintf(free_slot->name, sizeof free_slot->name, "%s", name);
    free_slot->value = 0;
  }
  return create ? free_slot : NULL;
}

static struct mock_lock *mock_lock(struct mock *m, const char *name) {
  struct mock_lock *free_slot = NULL;
  for (int i = 0; i < MOCK_MAX; i++) {
    if (m->locks[i].name[0] && strcmp(m->locks[i].name, name) == 0) {
      return &m->locks[i];
    }
    if (!m->locks[i].name[0] && free_slot == NULL) {
      free_slot = &m->locks[i];
    }
  }
  memset(free_slot, 0, sizeof *free_slot);
  snprintf(free_slot->name, sizeof free_slot->name, "%s", name);
  return free_slot;
}

static struct mock_election *mock_election(struct mock *m, const char *name) {
  struct mock_election *free_slot = NULL;
  for (int i = 0; i < MOCK_MAX; i++) {
    if (m->elections[i].name[0] && strcmp(m->elections[i].name, name) == 0) {
      return &m->elections[i];
    }
    if (!m->elections[i].name[0] && free_slot == NULL) {
      free_slot = &m->elections[i];
    }
  }
  memset(free_slot, 0, sizeof *free_slot);
  snprintf(free_slot->name, sizeof free_slot->name, "%s", name);
  return free_slot;
}

#include "mock_channels.c"

/* ------------------------------------------------------------- locks */

static void mock_grant_reply(Synod__Response *r, Synod__LockAcquireReply *g,
                             uint64_t token, uint32_t holds) {
  g->token = token;
  g->hold_count = holds;
  r->body_case = SYNOD__RESPONSE__BODY_LOCK_ACQUIRE;
  r->lock_acquire = g;
}

/* The lock is free: the first waiter whose session lives gets it. */
static void mock_lock_next(struct mock *m, struct mock_lock *l) {
  while (l->hold_count == 0 && l->waiters_n > 0) {
    struct mock_waiter w = l->waiters[0];
    struct mock_session *s = mock_session(m, w.session_id);
    memmove(&l->waiters[0], &l->waiters[1],
            sizeof l->waiters[0] * (size_t)--l->waiters_n);
    if (s == NULL) {
      continue;
    }
    Synod__Response r = SYNOD__RESPONSE__INIT;
    Synod__LockAcquireReply g = SYNOD__LOCK_ACQUIRE_REPLY__INIT;
    l->session_id = w.session_id;
    l->owner_id = w.owner_id;
    l->token = ++m->index;
    l->hold_count = 1;
    r.id = w.req_id;
    mock_grant_reply(&r, &g, l->token, 1);
    mock_answer(m, s, w.conn_id, w.seq, &r);
  }
}

static int mock_acquire(struct mock *m, uint64_t conn_id,
                        const Synod__Request *q, Synod__Response *r,
                        Synod__LockAcquireReply *g) {
  struct mock_lock *l = mock_lock(m, q->lock_acquire->name);
  uint64_t owner = q->lock_acquire->owner_id;
  if (l->hold_count == 0) {
    l->session_id = q->session_id;
    l->owner_id = owner;
    l->token = ++m->index;
  } else if (l->session_id != q->session_id || l->owner_id != owner) {
    if (q->lock_acquire->timeout_ms == 0) {
      return SYNOD_ELOCKED;
    }
    l->waiters[l->waiters_n++] =
        (struct mock_waiter){conn_id, q->id, q->session_id, owner, q->sequence};
    return -1; /* answered when granted */
  }
  mock_grant_reply(r, g, l->token, ++l->hold_count);
  return 0;
}

static int mock_release(struct mock *m, const Synod__Request *q,
                        Synod__LockReleaseReply *rr, bool *freed) {
  struct mock_lock *l = mock_lock(m, q->lock_release->name);
  if (l->hold_count == 0 || l->session_id != q->session_id ||
      l->owner_id != q->lock_release->owner_id) {
    return SYNOD_ENOTHOLDER;
  }
  rr->hold_count = --l->hold_count;
  *freed = l->hold_count == 0;
  return 0;
}

/* --------------------------------------------------------- elections */

static void mock_info(struct mock_election *e, Synod__ElectionInfo *info) {
  info->name = e->name;
  info->has_leader = e->cands_n > 0;
  info->candidates = (uint32_t)e->cands_n;
  info->revision = e->revision;
  if (e->cands_n > 0) {
    info->session_id = e->cands[0].session_id;
    info->value.data = (uint8_t *)e->cands[0].value;
    info->value.len = strlen(e->cands[0].value);
  }
}

static void mock_election_changed(struct mock *m, struct mock_election *e) {
  Synod__ServerMessage sm = SYNOD__SERVER_MESSAGE__INIT;
  Synod__Event ev = SYNOD__EVENT__INIT;
  Synod__ElectionChanged ch = SYNOD__ELECTION_CHANGED__INIT;
  Synod__ElectionInfo info = SYNOD__ELECTION_INFO__INIT;
  e->revision = ++m->index;
  mock_info(e, &info);
  ch.info = &info;
  ev.body_case = SYNOD__EVENT__BODY_ELECTION_CHANGED;
  ev.election_changed = &ch;
  sm.body_case = SYNOD__SERVER_MESSAGE__BODY_EVENT;
  sm.event = &ev;
  for (int i = 0; i < e->observers_n; i++) {
    client_net_send(m->net, e->observers[i], &sm);
  }
}

static void mock_candidate_remove(struct mock *m, struct mock_election *e,
                                  uint64_t session_id) {
  for (int i = 0; i < e->cands_n; i++) {
    if (e->cands[i].session_id == session_id) {
      memmove(&e->cands[i], &e->cands[i + 1],
              sizeof e->cands[0] * (size_t)(e->cands_n - i - 1));
      e->cands_n--;
      if (i == 0) {
        mock_election_changed(m, e);
      }
      return;
    }
  }
}

/* A session ends: its locks go to the next waiters, its candidacies go. */
static void mock_session_end(struct mock *m, struct mock_session *s) {
  uint64_t id = s->id;
  for (int i = 0; i < MOCK_RECORD; i++) {
    free(s->answers[i]);
  }
  memset(s, 0, sizeof *s);
  for (int i = 0; i < MOCK_MAX; i++) {
    struct mock_lock *l = &m->locks[i];
    if (l->name[0] && l->hold_count > 0 && l->session_id == id) {
      l->hold_count = 0;
      mock_lock_next(m, l);
    }
    if (m->elections[i].name[0]) {
      mock_candidate_remove(m, &m->elections[i], id);
    }
  }
}

/* --------------------------------------------------------- mutations */

static int mock_counter_op(struct mock *m, const Synod__Request *q,
                           Synod__Response *r, Synod__CounterValue *cv,
                           Synod__CounterCasReply *cas,
                           Synod__CounterDeleteReply *del) {
  struct mock_counter *c;
  switch (q->body_case) {
  case SYNOD__REQUEST__BODY_COUNTER_SET:
    c = mock_counter(m, q->counter_set->name, true);
    c->value = cv->value = q->counter_set->value;
    r->body_case = SYNOD__RESPONSE__BODY_COUNTER_VALUE;
    r->counter_value = cv;
    return 0;
  case SYNOD__REQUEST__BODY_COUNTER_ADD: {
    int64_t sum;
    c = mock_counter(m, q->counter_add->name, true);
    if (__builtin_add_overflow(c->value, q->counter_add->delta, &sum)) {
      return SYNOD_EOVERFLOW;
    }
    cv->value = q->counter_add->return_previous ? c->value : sum;
    c->value = sum;
    r->body_case = SYNOD__RESPONSE__BODY_COUNTER_VALUE;
    r->counter_value = cv;
    return 0;
  }
  case SYNOD__REQUEST__BODY_COUNTER_CAS:
    c = mock_counter(m, q->counter_cas->name, true);
    cas->swapped = c->value == q->counter_cas->expect;
    if (cas->swapped) {
      c->value = q->counter_cas->update;
    }
    cas->value = c->value;
    r->body_case = SYNOD__RESPONSE__BODY_COUNTER_CAS;
    r->counter_cas = cas;
    return 0;
  default:
    c = mock_counter(m, q->counter_delete->name, false);
    del->existed = c != NULL;
    if (c != NULL) {
      c->name[0] = '\0';
    }
    r->body_case = SYNOD__RESPONSE__BODY_COUNTER_DELETE;
    r->counter_delete = del;
    return 0;
  }
}

static int mock_election_op(struct mock *m, const Synod__Request *q,
                            Synod__Response *r,
                            Synod__ElectionCampaignReply *cr,
                            Synod__ElectionInfo *info) {
  if (q->body_case == SYNOD__REQUEST__BODY_ELECTION_CAMPAIGN) {
    struct mock_election *e = mock_election(m, q->election_campaign->name);
    struct mock_candidate *c = &e->cands[e->cands_n++];
    c->session_id = q->session_id;
    snprintf(c->value, sizeof c->value, "%.*s",
             (int)q->election_campaign->value.len,
             (const char *)q->election_campaign->value.data);
    if (e->cands_n == 1) {
      mock_election_changed(m, e);
    }
    cr->leader = e->cands[0].session_id == q->session_id;
    mock_info(e, info);
    cr->info = info;
    r->body_case = SYNOD__RESPONSE__BODY_ELECTION_CAMPAIGN;
    r->election_campaign = cr;
    return 0;
  }
  struct mock_election *e = mock_election(m, q->election_resign->name);
  mock_candidate_remove(m, e, q->session_id);
  mock_info(e, info);
  r->body_case = SYNOD__RESPONSE__BODY_ELECTION_LEADER;
  r->election_leader = info;
  return 0;
}

/* Applies one sequenced request of session s; answers or queues it. */
static void mock_mutate(struct mock *m, uint64_t conn_id,
                        const Synod__Request *q, struct mock_session *s) {
  Synod__Response r = SYNOD__RESPONSE__INIT;
  Synod__LockAcquireReply g = SYNOD__LOCK_ACQUIRE_REPLY__INIT;
  Synod__LockReleaseReply rr = SYNOD__LOCK_RELEASE_REPLY__INIT;
  Synod__CounterValue cv = SYNOD__COUNTER_VALUE__INIT;
  Synod__CounterCasReply cas = SYNOD__COUNTER_CAS_REPLY__INIT;
  Synod__CounterDeleteReply del = SYNOD__COUNTER_DELETE_REPLY__INIT;
  Synod__ElectionCampaignReply cr = SYNOD__ELECTION_CAMPAIGN_REPLY__INIT;
  Synod__ElectionInfo info = SYNOD__ELECTION_INFO__INIT;
  struct mock_channel_bodies chb;
  Synod__Error e = SYNOD__ERROR__INIT;
  bool freed = false;
  int rv;
  r.id = q->id;
  switch (q->body_case) {
  case SYNOD__REQUEST__BODY_LOCK_ACQUIRE:
    rv = mock_acquire(m, conn_id, q, &r, &g);
    if (rv < 0) {
      return;
    }
    break;
  case SYNOD__REQUEST__BODY_LOCK_RELEASE:
    rv = mock_release(m, q, &rr, &freed);
    r.body_case = SYNOD__RESPONSE__BODY_LOCK_RELEASE;
    r.lock_release = &rr;
    break;
  case SYNOD__REQUEST__BODY_ELECTION_CAMPAIGN:
  case SYNOD__REQUEST__BODY_ELECTION_RESIGN:
    rv = mock_election_op(m, q, &r, &cr, &info);
    break;
  case SYNOD__REQUEST__BODY_SESSION_CLOSE:
    rv = 0;
    break;
  case SYNOD__REQUEST__BODY_CHANNEL_PUBLISH:
  case SYNOD__REQUEST__BODY_CHANNEL_CURSOR_COMMIT:
  case SYNOD__REQUEST__BODY_CHANNEL_CREATE:
  case SYNOD__REQUEST__BODY_CHANNEL_DELETE:
    rv = mock_channel_mutate(m, q, &r, &chb);
    break;
  default:
    rv = mock_counter_op(m, q, &r, &cv, &cas, &del);
    break;
  }
  if (rv != 0) {
    e.code = (Synod__ErrorCode)rv;
    e.message = (char *)synod_strerror(rv);
    r.error = &e;
    r.body_case = SYNOD__RESPONSE__BODY__NOT_SET;
  }
  mock_answer(m, s, conn_id, q->sequence, &r);
  if (freed) {
    mock_lock_next(m, mock_lock(m, q->lock_release->name));
  }
  if (q->body_case == SYNOD__REQUEST__BODY_SESSION_CLOSE) {
    mock_session_end(m, s);
    m->sessions_closed++;
  }
  if (q->body_case == SYNOD__REQUEST__BODY_CHANNEL_PUBLISH && rv == 0) {
    mock_subs_pump(m);
  }
}

/* ------------------------------------------------------------- reads */

static void mock_read(struct mock *m, uint64_t conn_id,
                      const Synod__Request *q) {
  Synod__Response r = SYNOD__RESPONSE__INIT;
  Synod__LockInfo li = SYNOD__LOCK_INFO__INIT;
  Synod__LockCheckReply lc = SYNOD__LOCK_CHECK_REPLY__INIT;
  Synod__CounterValue cv = SYNOD__COUNTER_VALUE__INIT;
  Synod__CounterListReply cl = SYNOD__COUNTER_LIST_REPLY__INIT;
  Synod__CounterEntry entries[MOCK_MAX], *ptrs[MOCK_MAX];
  Synod__ElectionInfo info = SYNOD__ELECTION_INFO__INIT;
  struct mock_counter *c;
  struct mock_lock *l;
  struct mock_election *e;
  r.id = q->id;
  switch (q->body_case) {
  case SYNOD__REQUEST__BODY_LOCK_QUERY:
    l = mock_lock(m, q->lock_query->name);
    li.held = l->hold_count > 0;
    li.session_id = l->session_id;
    li.owner_id = l->owner_id;
    li.token = l->token;
    li.hold_count = l->hold_count;
    li.waiters = (uint32_t)l->waiters_n;
    r.body_case = SYNOD__RESPONSE__BODY_LOCK_QUERY;
    r.lock_query = &li;
    break;
  case SYNOD__REQUEST__BODY_LOCK_CHECK:
    l = mock_lock(m, q->lock_check->name);
    lc.current_token = l->hold_count > 0 ? l->token : 0;
    lc.current =
        lc.current_token != 0 && lc.current_token == q->lock_check->token;
    r.body_case = SYNOD__RESPONSE__BODY_LOCK_CHECK;
    r.lock_check = &lc;
    break;
  case SYNOD__REQUEST__BODY_COUNTER_GET:
    c = mock_counter(m, q->counter_get->name, false);
    cv.value = c ? c->value : 0;
    r.body_case = SYNOD__RESPONSE__BODY_COUNTER_VALUE;
    r.counter_value = &cv;
    break;
  case SYNOD__REQUEST__BODY_COUNTER_LIST:
    for (int i = 0; i < MOCK_MAX; i++) {
      c = &m->counters[i];
      if (c->name[0] && strncmp(c->name, q->counter_list->prefix,
                                strlen(q->counter_list->prefix)) == 0) {
        synod__counter_entry__init(&entries[cl.n_counters]);
        entries[cl.n_counters].name = c->name;
        entries[cl.n_counters].value = c->value;
        ptrs[cl.n_counters] = &entries[cl.n_counters];
        cl.n_counters++;
      }
    }
    cl.counters = ptrs;
    r.body_case = SYNOD__RESPONSE__BODY_COUNTER_LIST;
    r.counter_list = &cl;
    break;
  default: /* election leader / observe */
    e = mock_election(m, q->body_case == SYNOD__REQUEST__BODY_ELECTION_LEADER
                             ? q->election_leader->name
                             : q->election_observe->name);
    if (q->body_case == SYNOD__REQUEST__BODY_ELECTION_OBSERVE) {
      e->observers[e->observers_n++] = conn_id;
    }
    mock_info(e, &info);
    r.body_case = SYNOD__RESPONSE__BODY_ELECTION_LEADER;
    r.election_leader = &info;
    break;
  }
  mock_send(m, conn_id, &r);
}

/* GroupCheckpointRead of group "g" (struct mock: ckpt). */
static void mock_ckpt_read(struct mock *m, uint64_t conn_id,
                           const Synod__Request *q) {
  const Synod__GroupCheckpointRead *g = q->group_checkpoint_read;
  const char *data = m->ckpt[m->ckpt_now];
  size_t len = strlen(data);
  if (strcmp(g->group, "g") != 0 || len == 0 ||
      (g->known_index != 0 && g->known_index < 10)) {
    mock_error(m, conn_id, q->id, SYNOD_ENOTFOUND, "no such checkpoint", "");
    return;
  }
  if (g->offset != 0 && g->offset != m->ckpt_offset) {
    mock_error(m, conn_id, q->id, SYNOD_ECOMPACTED, "replaced", "");
    return;
  }
  if (g->from > len) { /* as the server answers it */
    mock_error(m, conn_id, q->id, SYNOD_ERANGE, "from past its bytes", "");
    return;
  }
  Synod__Response r = SYNOD__RESPONSE__INIT;
  Synod__GroupCheckpointChunk c = SYNOD__GROUP_CHECKPOINT_CHUNK__INIT;
  Synod__GroupCheckpointInfo info = SYNOD__GROUP_CHECKPOINT_INFO__INIT;
  info.offset = m->ckpt_offset;
  info.bytes = len;
  info.index = m->ckpt_now == 0 ? 100 : 200;
  info.member = "m1";
  size_t n = len - g->from < 4 ? len - g->from : 4;
  c.checkpoint = &info;
  c.from = g->from;
  c.data.data = (uint8_t *)data + g->from;
  c.data.len = n;
  c.last = g->from + n == len;
  r.id = q->id;
  r.body_case = SYNOD__RESPONSE__BODY_GROUP_CHECKPOINT_CHUNK;
  r.group_checkpoint_chunk = &c;
  mock_send(m, conn_id, &r);
  if (m->ckpt_swap && m->ckpt_now == 0) {
    m->ckpt_now = 1; /* stored again, at the same offset */
  }
}

static void mock_hello_or_status(struct mock *m, uint64_t conn_id,
                                 const Synod__Request *q) {
  Synod__Response r = SYNOD__RESPONSE__INIT;
  Synod__HelloReply h = SYNOD__HELLO_REPLY__INIT;
  Synod__StatusReply st = SYNOD__STATUS_REPLY__INIT;
  Synod__Member mb = SYNOD__MEMBER__INIT, *mbs[1] = {&mb};
  bool follower = m->follower;
  r.id = q->id;
  if (q->body_case == SYNOD__REQUEST__BODY_HELLO) {
    h.protocol_version = 1;
    h.server_name = "mock";
    h.leader_name = follower ? "mock-leader" : "mock";
    h.leader_address = follower ? m->leader_address : m->address;
    r.body_case = SYNOD__RESPONSE__BODY_HELLO;
    r.hello = &h;
  } else {
    st.name = "mock";
    st.role = follower ? "follower" : "leader";
    st.term = 7;
    st.leader_name = follower ? "mock-leader" : "mock";
    st.commit_index = st.applied_index = st.last_index = m->index;
    st.version = "mock";
    mb.name = "mock";
    mb.client_address = m->address;
    mb.voter = true;
    mb.role = st.role;
    st.members = mbs;
    st.n_members = 1;
    r.body_case = SYNOD__RESPONSE__BODY_STATUS;
    r.status = &st;
  }
  mock_send(m, conn_id, &r);
}

/* ---------------------------------------------------------- sessions */

static void mock_session_op(struct mock *m, uint64_t conn_id,
                            const Synod__Request *q, struct mock_session *s) {
  Synod__Response r = SYNOD__RESPONSE__INIT;
  Synod__SessionOpenReply so = SYNOD__SESSION_OPEN_REPLY__INIT;
  Synod__SessionKeepaliveReply ka = SYNOD__SESSION_KEEPALIVE_REPLY__INIT;
  r.id = q->id;
  if (q->body_case == SYNOD__REQUEST__BODY_SESSION_KEEPALIVE) {
    m->keepalives++;
    if (m->ignore_keepalives) {
      return;
    }
    s->conn_id = conn_id;
    ka.ttl_ms = s->ttl_ms;
    r.body_case = SYNOD__RESPONSE__BODY_SESSION_KEEPALIVE;
    r.session_keepalive = &ka;
    mock_send(m, conn_id, &r);
    return;
  }
  uint32_t ttl = q->session_open->ttl_ms ? q->session_open->ttl_ms : 10000;
  if (ttl < 1000 || ttl > 300000) {
    mock_error(m, conn_id, q->id, SYNOD_ERANGE, "ttl out of range", "");
    return;
  }
  for (int i = 0; i < MOCK_MAX; i++) {
    if (m->sessions[i].id == 0) {
      m->sessions[i].id = ++m->next_session;
      m->sessions[i].ttl_ms = ttl;
      m->sessions[i].conn_id = conn_id;
      so.session_id = m->sessions[i].id;
      so.ttl_ms = ttl;
      m->sessions_opened++;
      break;
    }
  }
  r.body_case = SYNOD__RESPONSE__BODY_SESSION_OPEN;
  r.session_open = &so;
  mock_send(m, conn_id, &r);
}

static bool mock_is_sequenced(Synod__Request__BodyCase c) {
  switch (c) {
  case SYNOD__REQUEST__BODY_SESSION_CLOSE:
  case SYNOD__REQUEST__BODY_LOCK_ACQUIRE:
  case SYNOD__REQUEST__BODY_LOCK_RELEASE:
  case SYNOD__REQUEST__BODY_COUNTER_SET:
  case SYNOD__REQUEST__BODY_COUNTER_CAS:
  case SYNOD__REQUEST__BODY_COUNTER_ADD:
  case SYNOD__REQUEST__BODY_COUNTER_DELETE:
  case SYNOD__REQUEST__BODY_ELECTION_CAMPAIGN:
  case SYNOD__REQUEST__BODY_ELECTION_RESIGN:
  case SYNOD__REQUEST__BODY_CHANNEL_PUBLISH:
  case SYNOD__REQUEST__BODY_CHANNEL_CURSOR_COMMIT:
  case SYNOD__REQUEST__BODY_CHANNEL_CREATE:
  case SYNOD__REQUEST__BODY_CHANNEL_DELETE:
    return true;
  default:
    return false;
  }
}

static void mock_request_cb(void *arg, uint64_t conn_id,
                            const Synod__Request *q) {
  struct mock *m = arg;
  bool hello = q->body_case == SYNOD__REQUEST__BODY_HELLO;
  bool status = q->body_case == SYNOD__REQUEST__BODY_STATUS;
  bool session_op = q->body_case == SYNOD__REQUEST__BODY_SESSION_OPEN ||
                    q->body_case == SYNOD__REQUEST__BODY_SESSION_KEEPALIVE;
  struct mock_session *s;
  if (hello || status) {
    mock_hello_or_status(m, conn_id, q);
    return;
  }
  if (mock_is_sub_request(q->body_case)) { /* any replica serves these */
    mock_sub_request(m, conn_id, q);
    return;
  }
  if (m->follower && !(q->stale && !mock_is_sequenced(q->body_case))) {
    mock_error(m, conn_id, q->id, SYNOD_ENOTLEADER, "not the leader",
               m->leader_address);
    return;
  }
  s = mock_session(m, q->session_id);
  if (q->body_case == SYNOD__REQUEST__BODY_SESSION_OPEN) {
    mock_session_op(m, conn_id, q, NULL);
  } else if (session_op || mock_is_sequenced(q->body_case)) {
    if (s == NULL) {
      mock_error(m, conn_id, q->id, SYNOD_ESESSION, "unknown session", "");
    } else if (session_op) {
      mock_session_op(m, conn_id, q, s);
    } else if (!mock_replay(m, s, conn_id, q->id, q->sequence)) {
      s->conn_id = conn_id;
      mock_mutate(m, conn_id, q, s);
    }
  } else if (q->body_case == SYNOD__REQUEST__BODY_GROUP_CHECKPOINT_READ) {
    mock_ckpt_read(m, conn_id, q);
  } else if (q->body_case == SYNOD__REQUEST__BODY_CHANNEL_INFO ||
             q->body_case == SYNOD__REQUEST__BODY_CHANNEL_READ ||
             q->body_case == SYNOD__REQUEST__BODY_CHANNEL_LIST ||
             q->body_case == SYNOD__REQUEST__BODY_CHANNEL_CURSOR_GET) {
    mock_channel_read(m, conn_id, q);
  } else {
    mock_read(m, conn_id, q);
  }
}

/* ---------------------------------------------------------- lifecycle */

static void mock_close_cb(void *arg, uint64_t conn_id) {
  struct mock *m = arg;
  mock_subs_closed(m, conn_id);
  for (int i = 0; i < MOCK_MAX; i++) {
    struct mock_election *e = &m->elections[i];
    for (int j = 0; j < e->observers_n; j++) {
      if (e->observers[j] == conn_id) {
        e->observers[j--] = e->observers[--e->observers_n];
      }
    }
  }
}

static void mock_expire(struct mock *m, uint64_t id) {
  struct mock_session *s = mock_session(m, id);
  Synod__ServerMessage sm = SYNOD__SERVER_MESSAGE__INIT;
  Synod__Event ev = SYNOD__EVENT__INIT;
  Synod__SessionExpired se = SYNOD__SESSION_EXPIRED__INIT;
  if (s == NULL) {
    return;
  }
  se.session_id = id;
  ev.body_case = SYNOD__EVENT__BODY_SESSION_EXPIRED;
  ev.session_expired = &se;
  sm.body_case = SYNOD__SERVER_MESSAGE__BODY_EVENT;
  sm.event = &ev;
  client_net_send(m->net, s->conn_id, &sm);
  mock_session_end(m, s);
}

static void mock_wake_cb(uv_async_t *h) {
  struct mock *m = h->data;
  uint64_t id = atomic_exchange(&m->expire_session, 0);
  if (id != 0) {
    mock_expire(m, id);
  }
  mock_subs_poked(m);
  if (m->stop) {
    client_net_stop(m->net);
    uv_close((uv_handle_t *)&m->wake, NULL);
  }
}

static void *mock_main(void *arg) {
  struct mock *m = arg;
  uv_run(&m->loop, UV_RUN_DEFAULT);
  return NULL;
}

/* Starts a mock on 127.0.0.1 (a free port); m->address names it. */
static struct mock *mock_start(void) {
  struct mock *m = calloc(1, sizeof *m);
  char err[SYNOD_ERRMSG_MAX];
  uv_loop_init(&m->loop);
  struct client_net_options o = {.loop = &m->loop,
                                 .listen_address = "127.0.0.1:0",
                                 .request_cb = mock_request_cb,
                                 .close_cb = mock_close_cb,
                                 .arg = m};
  if (client_net_start(&o, &m->net, err) != 0) {
    fprintf(stderr, "mock: %s\n", err);
    abort();
  }
  snprintf(m->address, sizeof m->address, "%s",
           client_net_listen_address(m->net));
  uv_async_init(&m->loop, &m->wake, mock_wake_cb);
  m->wake.data = m;
  pthread_create(&m->thread, NULL, mock_main, m);
  return m;
}

static void mock_poke(struct mock *m) {
  uv_async_send(&m->wake);
}

static void mock_stop(struct mock *m) {
  m->stop = true;
  mock_poke(m);
  pthread_join(m->thread, NULL);
  uv_loop_close(&m->loop);
  mock_channels_free(m);
  for (int i = 0; i < MOCK_MAX; i++) {
    for (int j = 0; j < MOCK_RECORD; j++) {
      free(m->sessions[i].answers[j]);
    }
  }
  free(m);
}
