/* The nemesis's workload: client threads on libsynod (adds to one counter,
 * linearizable reads of it, cycles on one contended lock with writes to a
 * fenced resource, campaigns in one election, publishes to two channels
 * that subscribers on every replica follow), each operation recorded
 * with its invoke and completion times; and the fenced resource, a small
 * TCP server that accepts a write only with a token at least as large as
 * every token it has seen. */
#include "nemesis.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "synod.h"

#define ADDERS 3
#define READERS 1
#define LOCKERS 3
#define ELECTORS 2
#define PUBLISHERS 2
#define CLIENTS (ADDERS + READERS + LOCKERS + ELECTORS + PUBLISHERS)
#define OP_TIMEOUT_MS 2000
#define LOCK_TTL_MS 3000 /* short, so that faults make sessions expire */

uint64_t nem_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void sleep_ms(unsigned ms) {
  usleep(ms * 1000u);
}

struct client {
  int id;
  enum nem_kind kind;
  pthread_t thread;
  struct synod_client *c;
  /* Set from the library's thread: when this client last learned that
   * its lock (or, for an elector, its session) was lost; 0 = not since
   * the current hold began. */
  _Atomic uint64_t lost_us;
  _Atomic bool idle; /* parked because the workload is paused */
  int fence_fd;
};

static struct {
  pthread_mutex_t mu;
  struct nem_record rec;
  struct client clients[CLIENTS];
  _Atomic bool paused;
  _Atomic bool stopping;
  char endpoints[512];
  struct sockaddr_in fence_sa;
  /* The fenced resource. */
  int fence_listen;
  pthread_t fence_thread;
  uint64_t fence_max; /* the largest token it has seen */
  uint64_t fence_last_accepted;
  /* Channels of the current round, and the subscribers' threads. */
  char channels[NEM_CHANNELS][64];
  char prefix[64];
  struct subscriber *subs;
  int round; /* the round being run, for the ops' metadata */
} w = {.mu = PTHREAD_MUTEX_INITIALIZER};

#define PUSH(arr, n, cap, item)                                                \
  do {                                                                         \
    if ((n) == (cap)) {                                                        \
      (cap) = (cap) ? (cap)*2 : 256;                                           \
      (arr) = realloc((arr), (cap) * sizeof *(arr));                           \
      if ((arr) == NULL) {                                                     \
        abort();                                                               \
      }                                                                        \
    }                                                                          \
    (arr)[(n)++] = (item);                                                     \
  } while (0)

static void stat_note(enum nem_kind k, bool ok, uint64_t invoke_us) {
  struct nem_stats *s = &w.rec.stats[k];
  if (ok) {
    s->ok++;
    if (invoke_us > s->last_ok_invoke_us) {
      s->last_ok_invoke_us = invoke_us;
    }
  } else {
    s->failed++;
  }
}

/* Appends e and its metadata; the caller holds w.mu. */
static void record_counter_locked(const struct history_counter_entry *e,
                                  int client, struct synod_client *c, int rv) {
  struct nem_op_meta m = {.client = client, .rv = rv, .round = w.round};
  if (c != NULL) {
    m.session = synod_session_id(c);
  }
  if (rv != 0) {
    snprintf(m.why, sizeof m.why, "%s", synod_client_errmsg());
  }
  if (w.rec.ops_n == w.rec.ops_cap) {
    w.rec.ops_cap = w.rec.ops_cap ? 2 * w.rec.ops_cap : 256;
    w.rec.ops = realloc(w.rec.ops, w.rec.ops_cap * sizeof *w.rec.ops);
    w.rec.meta = realloc(w.rec.meta, w.rec.ops_cap * sizeof *w.rec.meta);
    if (w.rec.ops == NULL || w.rec.meta == NULL) {
      abort();
    }
  }
  w.rec.ops[w.rec.ops_n] = *e;
  w.rec.meta[w.rec.ops_n] = m;
  w.rec.ops_n++;
}

void nem_record_get(int client, struct synod_client *c, uint64_t invoke_us,
                    uint64_t complete_us, int rv, int64_t value) {
  if (rv != 0) {
    return; /* a read that failed changed nothing: leave it out */
  }
  struct history_counter_entry e = {.op = HISTORY_COUNTER_GET,
                                    .invoke = invoke_us,
                                    .complete = complete_us,
                                    .value = value};
  pthread_mutex_lock(&w.mu);
  record_counter_locked(&e, client, c, rv);
  pthread_mutex_unlock(&w.mu);
}

void nem_record_op(int client, struct synod_client *c, int rv,
                   const struct history_counter_entry *e) {
  pthread_mutex_lock(&w.mu);
  record_counter_locked(e, client, c, rv);
  pthread_mutex_unlock(&w.mu);
}

/* ------------------------------------------------------ fenced resource */

/* One connection: lines "W <token> <client>\n", answered "OK\n" or
 * "NO <max>\n". Plain read(2), no stdio: a FILE blocked in fgets holds
 * its lock, and fflush(NULL) (before every fork of the harness) would
 * wait for it. */
static void *fence_conn(void *arg) {
  int fd = (int)(intptr_t)arg;
  char buf[256];
  size_t have = 0;
  for (;;) {
    char *nl = memchr(buf, '\n', have);
    if (nl == NULL) {
      ssize_t n;
      if (have == sizeof buf) {
        break;
      }
      n = read(fd, buf + have, sizeof buf - have);
      if (n <= 0) {
        break;
      }
      have += (size_t)n;
      continue;
    }
    *nl = '\0';
    unsigned long long token = 0;
    int client = -1;
    char reply[64];
    if (sscanf(buf, "W %llu %d", &token, &client) != 2) {
      break;
    }
    size_t used = (size_t)(nl + 1 - buf);
    memmove(buf, nl + 1, have - used);
    have -= used;
    pthread_mutex_lock(&w.mu);
    if (token >= w.fence_max) {
      w.fence_max = token;
      if (token < w.fence_last_accepted) {
        w.rec.fence_order_errors++; /* cannot happen: the rule above */
      }
      w.fence_last_accepted = token;
      w.rec.fence_accepted++;
      snprintf(reply, sizeof reply, "OK\n");
    } else {
      w.rec.fence_refused++;
      snprintf(reply, sizeof reply, "NO %llu\n",
               (unsigned long long)w.fence_max);
    }
    pthread_mutex_unlock(&w.mu);
    if (write(fd, reply, strlen(reply)) < 0) {
      break;
    }
  }
  close(fd);
  return NULL;
}

static void *fence_main(void *arg) {
  (void)arg;
  for (;;) {
    int fd = accept(w.fence_listen, NULL, NULL);
    pthread_t t;
    if (fd < 0) {
      if (errno == EINTR) {
        continue;
      }
      return NULL;
    }
    pthread_create(&t, NULL, fence_conn, (void *)(intptr_t)fd);
    pthread_detach(t);
  }
}

static void fence_start(const char *addr) {
  int one = 1;
  memset(&w.fence_sa, 0, sizeof w.fence_sa);
  w.fence_sa.sin_family = AF_INET;
  w.fence_sa.sin_port = htons(NEM_FENCE_PORT);
  CHECK(inet_pton(AF_INET, addr, &w.fence_sa.sin_addr) == 1, "address %s",
        addr);
  w.fence_listen = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(w.fence_listen >= 0, "socket: %s", strerror(errno));
  setsockopt(w.fence_listen, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  CHECK(bind(w.fence_listen, (struct sockaddr *)&w.fence_sa,
             sizeof w.fence_sa) == 0,
        "bind the fenced resource to %s: %s", addr, strerror(errno));
  CHECK(listen(w.fence_listen, 16) == 0, "listen: %s", strerror(errno));
  pthread_create(&w.fence_thread, NULL, fence_main, NULL);
  pthread_detach(w.fence_thread);
}

/* Writes under token; true if accepted, else *max = the resource's. */
static bool fence_write(struct client *cl, uint64_t token, uint64_t *max) {
  char line[64], reply[64];
  ssize_t n;
  if (cl->fence_fd < 0) {
    cl->fence_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(connect(cl->fence_fd, (struct sockaddr *)&w.fence_sa,
                  sizeof w.fence_sa) == 0,
          "connect to the fenced resource: %s", strerror(errno));
  }
  snprintf(line, sizeof line, "W %llu %d\n", (unsigned long long)token, cl->id);
  CHECK(write(cl->fence_fd, line, strlen(line)) == (ssize_t)strlen(line),
        "write to the fenced resource");
  n = read(cl->fence_fd, reply, sizeof reply - 1);
  CHECK(n > 0, "read from the fenced resource");
  reply[n] = '\0';
  if (strncmp(reply, "OK", 2) == 0) {
    return true;
  }
  unsigned long long m = 0;
  sscanf(reply, "NO %llu", &m);
  *max = m;
  return false;
}

/* ------------------------------------------------------------ clients */

static void lock_event_cb(void *arg, enum synod_lock_event event,
                          const char *name, uint64_t owner_id, uint64_t token) {
  struct client *cl = arg;
  (void)name, (void)owner_id, (void)token;
  if (event == SYNOD_LOCK_LOST) {
    uint64_t zero = 0;
    atomic_compare_exchange_strong(&cl->lost_us, &zero, nem_now_us());
  }
}

static void session_event_cb(void *arg, enum synod_session_state state,
                             uint64_t session_id) {
  struct client *cl = arg;
  (void)session_id;
  if (state == SYNOD_SESSION_LOST) {
    uint64_t zero = 0;
    atomic_compare_exchange_strong(&cl->lost_us, &zero, nem_now_us());
  }
}

/* Parks the calling client while the workload is paused; false once the
 * workload stops. */
static bool client_gate(struct client *cl) {
  while (atomic_load(&w.paused) && !atomic_load(&w.stopping)) {
    atomic_store(&cl->idle, true);
    sleep_ms(10);
  }
  atomic_store(&cl->idle, false);
  return !atomic_load(&w.stopping);
}

static void add_once(struct client *cl) {
  struct history_counter_entry e = {.op = HISTORY_COUNTER_ADD_GET, .arg1 = 1};
  int64_t v = 0;
  int rv;
  e.invoke = nem_now_us();
  rv = synod_counter_add(cl->c, NEM_COUNTER_NAME, 1, OP_TIMEOUT_MS, &v);
  e.complete = nem_now_us();
  if (rv == 0) {
    e.value = v;
  } else if (rv == SYNOD_EOVERFLOW) {
    e.failed = e.overflow = true;
  } else {
    /* Timed out, session lost, no endpoint: it may have been applied
     * (once) or not. */
    e.pending = true;
  }
  pthread_mutex_lock(&w.mu);
  record_counter_locked(&e, cl->id, cl->c, rv);
  stat_note(NEM_ADD, rv == 0, e.invoke);
  pthread_mutex_unlock(&w.mu);
  sleep_ms(5); /* a few hundred adds a second: the machine is shared */
}

static void get_once(struct client *cl) {
  int64_t v = 0;
  uint64_t t0 = nem_now_us();
  int rv = synod_counter_get(cl->c, NEM_COUNTER_NAME, 0, OP_TIMEOUT_MS, &v);
  nem_record_get(cl->id, cl->c, t0, nem_now_us(), rv, v);
  pthread_mutex_lock(&w.mu);
  stat_note(NEM_GET, rv == 0, t0);
  pthread_mutex_unlock(&w.mu);
  sleep_ms(20);
}

/* What a careful holder does before each use of its lock (or leadership):
 * asks the library how long its session is certain to last, from the
 * clock, since a LOST report comes from the library's loop and is as late
 * as that loop (the whole process may be held up). Returns false if it
 * lasts no longer; else moves *valid_until_us, the end of the last
 * validity seen. */
static bool still_valid(struct client *cl, uint64_t *valid_until_us) {
  uint64_t now = nem_now_us();
  uint64_t ms = synod_session_valid_ms(cl->c);
  if (ms == 0 || atomic_load(&cl->lost_us) != 0) {
    return false;
  }
  *valid_until_us = now + ms * 1000;
  return true;
}

/* Where a hold that began before valid_until_us ends: now if the session
 * is still valid (or was renewed since); otherwise the end of the last
 * validity its holder saw, or the LOST report if that came first. */
static uint64_t hold_end(struct client *cl, uint64_t valid_until_us,
                         bool *lost) {
  uint64_t end = nem_now_us();
  uint64_t told = atomic_load(&cl->lost_us);
  uint64_t ignored;
  *lost = !still_valid(cl, &ignored);
  if (*lost && valid_until_us < end) {
    end = valid_until_us;
  }
  if (told != 0 && told < end) {
    end = told;
    *lost = true;
  }
  return end;
}

/* One lock cycle: acquire, two fenced writes 20 ms apart while the session
 * is valid, release. */
static void lock_once(struct client *cl) {
  struct synod_lock_grant g;
  struct nem_hold h = {.client = cl->id};
  uint64_t t0 = nem_now_us();
  int rv;
  atomic_store(&cl->lost_us, 0);
  rv = synod_lock_acquire(cl->c, NEM_LOCK_NAME, SYNOD_OWNER_THREAD,
                          OP_TIMEOUT_MS, &g);
  h.start_us = nem_now_us();
  pthread_mutex_lock(&w.mu);
  stat_note(NEM_LOCK, rv == 0, t0);
  pthread_mutex_unlock(&w.mu);
  if (rv != 0) {
    sleep_ms(rv == SYNOD_ETIMEDOUT ? 0 : 50);
    return;
  }
  h.token = g.token;
  uint64_t valid_until = h.start_us;
  for (int i = 0; i < 2 && still_valid(cl, &valid_until); i++) {
    uint64_t max = 0;
    /* Refused after the session lapsed: the token did its job. Refused
     * while it is still valid: someone else holds the lock. */
    uint64_t ignored;
    if (!fence_write(cl, g.token, &max) && still_valid(cl, &ignored)) {
      struct nem_fence_refusal f = {.client = cl->id,
                                    .token = g.token,
                                    .max_seen = max,
                                    .at_us = nem_now_us()};
      pthread_mutex_lock(&w.mu);
      PUSH(w.rec.refusals, w.rec.refusals_n, w.rec.refusals_cap, f);
      pthread_mutex_unlock(&w.mu);
    }
    sleep_ms(20);
  }
  h.end_us = hold_end(cl, valid_until, &h.lost);
  pthread_mutex_lock(&w.mu);
  PUSH(w.rec.holds, w.rec.holds_n, w.rec.holds_cap, h);
  pthread_mutex_unlock(&w.mu);
  /* A release that fails (lost, timed out) leaves the lock to expire with
   * the session; the hold already ended above. */
  /* A hold count above 1 means an earlier release timed out without
   * taking effect (the lock is reentrant): give those holds back too, so
   * the lock stays contended. */
  for (uint32_t left = g.hold_count; left > 0;) {
    uint32_t now_left = 0;
    if (synod_lock_release(cl->c, NEM_LOCK_NAME, SYNOD_OWNER_THREAD,
                           OP_TIMEOUT_MS, &now_left) != 0 ||
        now_left >= left) {
      break;
    }
    left = now_left;
  }
}

/* One campaign: if it leads at once, lead 50 ms, then resign. */
static void elect_once(struct client *cl) {
  struct synod_election_campaign camp;
  char value[32];
  uint64_t t0 = nem_now_us();
  int rv;
  snprintf(value, sizeof value, "client-%d", cl->id);
  atomic_store(&cl->lost_us, 0);
  memset(&camp, 0, sizeof camp);
  rv = synod_election_campaign(cl->c, NEM_ELECTION_NAME, value, strlen(value),
                               OP_TIMEOUT_MS, &camp);
  uint64_t t1 = nem_now_us();
  pthread_mutex_lock(&w.mu);
  stat_note(NEM_ELECT, rv == 0, t0);
  pthread_mutex_unlock(&w.mu);
  if (rv == 0 && camp.leader) {
    struct nem_lead l = {
        .client = cl->id, .revision = camp.info.revision, .start_us = t1};
    uint64_t valid_until = t1;
    bool lost;
    if (still_valid(cl, &valid_until)) {
      sleep_ms(50);
    }
    l.end_us = hold_end(cl, valid_until, &lost);
    pthread_mutex_lock(&w.mu);
    PUSH(w.rec.leads, w.rec.leads_n, w.rec.leads_cap, l);
    pthread_mutex_unlock(&w.mu);
  }
  synod_election_campaign_free(&camp);
  /* Resigning also withdraws a candidacy that did not lead yet. */
  synod_election_resign(cl->c, NEM_ELECTION_NAME, OP_TIMEOUT_MS, NULL);
  sleep_ms(rv == 0 ? 10 : 50);
}

/* ------------------------------------------------------------ channels */

/* One publish of 1 to 3 messages to one of the round's channels, each
 * payload naming the publish's place in the record and its part. */
static void publish_once(struct client *cl) {
  struct history_publish p = {.channel = (uint32_t)(rand() % NEM_CHANNELS),
                              .n = 1 + (uint32_t)(rand() % 3)};
  char text[3][40];
  const void *ptrs[3];
  size_t lens[3];
  char channel[64];
  pthread_mutex_lock(&w.mu);
  size_t at = w.rec.pubs_n;
  PUSH(w.rec.pubs, w.rec.pubs_n, w.rec.pubs_cap, p);
  snprintf(channel, sizeof channel, "%s", w.channels[p.channel]);
  pthread_mutex_unlock(&w.mu);
  for (uint32_t i = 0; i < p.n; i++) {
    lens[i] = (size_t)snprintf(text[i], sizeof text[i], "P%zu.%u", at, i);
    ptrs[i] = text[i];
  }
  struct synod_channel_published out;
  p.invoke = nem_now_us();
  int rv = synod_channel_publish(cl->c, channel, ptrs, lens, p.n, NULL,
                                 OP_TIMEOUT_MS, &out);
  uint64_t done = nem_now_us();
  if (rv == 0) { /* else the outcome is unknown: applied once or not */
    p.complete = done;
    p.acked = true;
    p.first_offset = out.first_offset;
    p.last_offset = out.last_offset;
    p.index = out.index;
  }
  pthread_mutex_lock(&w.mu);
  w.rec.pubs[at] = p;
  stat_note(NEM_PUB, rv == 0, p.invoke);
  pthread_mutex_unlock(&w.mu);
  sleep_ms(5);
}

/* A subscriber thread: each round, one subscription (a channel or the
 * prefix) kept from the round's start until told to finish, recording
 * every message; libsynod resumes it across every fault. */
struct subscriber {
  int id;
  pthread_t thread;
  struct synod_client *c;
  char endpoints[512]; /* starting with replica id % n */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int round;   /* the round to follow; -1 none */
  bool finish; /* deliver up to target (or until finish_by), then stop */
  uint64_t finish_by;
  bool done;                     /* finished this round */
  uint64_t target[NEM_CHANNELS]; /* the channels' final next offsets */
  struct nem_sub_record rec;
};

static void sub_record(struct subscriber *sb,
                       const struct synod_channel_message *m) {
  struct history_delivery d = {
      .offset = m->offset, .index = m->index, .publish = HISTORY_FOREIGN};
  const char *ch = sb->rec.prefix ? m->channel : w.channels[sb->rec.channel];
  d.channel = ch != NULL && strcmp(ch, w.channels[1]) == 0 ? 1 : 0;
  unsigned long long at;
  unsigned part;
  if (sscanf(m->data, "P%llu.%u", &at, &part) == 2) {
    d.publish = (uint32_t)at;
    d.part = part;
  }
  PUSH(sb->rec.d, sb->rec.n, sb->rec.cap, d);
}

/* Whether sb has delivered everything up to its targets. */
static bool sub_caught_up(const struct subscriber *sb) {
  uint64_t last[NEM_CHANNELS] = {0, 0};
  for (size_t i = 0; i < sb->rec.n; i++) {
    last[sb->rec.d[i].channel] = sb->rec.d[i].offset;
  }
  for (uint32_t c = 0; c < NEM_CHANNELS; c++) {
    if ((sb->rec.prefix || sb->rec.channel == c) &&
        last[c] + 1 < sb->target[c]) {
      return false;
    }
  }
  return true;
}

static void sub_follow(struct subscriber *sb) {
  struct synod_subscribe_options o = {.from = SYNOD_FROM_FIRST};
  struct synod_subscription *sub = NULL;
  o.prefix = sb->rec.prefix;
  o.channel = o.prefix ? w.prefix : w.channels[sb->rec.channel];
  for (;;) { /* until it starts: the round may begin in a fault's wake */
    int rv = synod_subscribe(sb->c, &o, OP_TIMEOUT_MS, &sub, NULL);
    pthread_mutex_lock(&sb->mu);
    bool finish = sb->finish && nem_now_us() > sb->finish_by;
    pthread_mutex_unlock(&sb->mu);
    if (rv == 0 || finish || atomic_load(&w.stopping)) {
      break;
    }
    sleep_ms(50);
  }
  while (sub != NULL) {
    struct synod_channel_message m;
    int rv = synod_subscription_next(sub, 100, &m);
    if (rv == 0) {
      sub_record(sb, &m);
    } else if (rv != SYNOD_ETIMEDOUT) {
      sb->rec.ended = rv;
      snprintf(sb->rec.why, sizeof sb->rec.why, "%s", synod_client_errmsg());
      break;
    }
    pthread_mutex_lock(&sb->mu);
    bool stop = sb->finish && (sub_caught_up(sb) || atomic_load(&w.stopping) ||
                               nem_now_us() > sb->finish_by);
    pthread_mutex_unlock(&sb->mu);
    if (stop) {
      break;
    }
  }
  sb->rec.to_end = sub_caught_up(sb);
  if (sub != NULL) {
    synod_subscription_close(sub);
  }
}

static void *subscriber_main(void *arg) {
  struct subscriber *sb = arg;
  int followed = -1;
  for (;;) {
    pthread_mutex_lock(&sb->mu);
    while (sb->round == followed && !atomic_load(&w.stopping)) {
      pthread_cond_wait(&sb->cv, &sb->mu);
    }
    int round = sb->round;
    pthread_mutex_unlock(&sb->mu);
    if (atomic_load(&w.stopping)) {
      return NULL;
    }
    sub_follow(sb);
    followed = round;
    pthread_mutex_lock(&sb->mu);
    sb->done = true;
    pthread_cond_broadcast(&sb->cv);
    pthread_mutex_unlock(&sb->mu);
  }
}

static void subscribers_start(void) {
  int n = 0;
  char addrs[NEM_REPLICAS_MAX][64];
  for (char *a = w.endpoints; *a && n < NEM_REPLICAS_MAX; n++) {
    size_t len = strcspn(a, ",");
    snprintf(addrs[n], sizeof addrs[n], "%.*s", (int)len, a);
    a += len + (a[len] == ',');
  }
  w.subs = calloc(NEM_SUBSCRIBERS, sizeof *w.subs);
  CHECK(w.subs != NULL && n > 0, "subscribers: %d endpoints", n);
  for (int i = 0; i < NEM_SUBSCRIBERS; i++) {
    struct subscriber *sb = &w.subs[i];
    struct synod_options o;
    char name[32];
    sb->id = i;
    sb->round = -1;
    pthread_mutex_init(&sb->mu, NULL);
    pthread_cond_init(&sb->cv, NULL);
    for (int k = 0; k < n; k++) { /* its replica first, then the others */
      size_t l = strlen(sb->endpoints);
      snprintf(sb->endpoints + l, sizeof sb->endpoints - l, "%s%s",
               k ? "," : "", addrs[(i + k) % n]);
    }
    snprintf(name, sizeof name, "nemesis-sub-%d", i);
    synod_options_init(&o);
    o.endpoints = sb->endpoints;
    o.endpoints_in_order = true;
    o.client_name = name;
    o.request_timeout_ms = OP_TIMEOUT_MS;
    CHECK(synod_client_new(&o, &sb->c) == 0, "synod_client_new: %s",
          synod_client_errmsg());
    pthread_create(&sb->thread, NULL, subscriber_main, sb);
  }
}

void nem_workload_round(int k) {
  pthread_mutex_lock(&w.mu);
  w.round = k;
  snprintf(w.prefix, sizeof w.prefix, "nem/%d/", k);
  for (int c = 0; c < NEM_CHANNELS; c++) {
    snprintf(w.channels[c], sizeof w.channels[c], "nem/%d/%c", k, 'a' + c);
  }
  pthread_mutex_unlock(&w.mu);
  for (int i = 0; i < NEM_SUBSCRIBERS; i++) {
    struct subscriber *sb = &w.subs[i];
    pthread_mutex_lock(&sb->mu);
    memset(&sb->rec, 0, sizeof sb->rec);
    sb->rec.prefix = i >= NEM_CHANNELS;
    sb->rec.channel = (uint32_t)(i % NEM_CHANNELS);
    sb->finish = sb->done = false;
    sb->round = k;
    pthread_cond_broadcast(&sb->cv);
    pthread_mutex_unlock(&sb->mu);
  }
}

bool nem_workload_channels_finish(uint32_t timeout_ms, char *why, size_t len) {
  uint64_t until = nem_now_us() + (uint64_t)timeout_ms * 1000;
  uint64_t target[NEM_CHANNELS];
  struct synod_client *c = w.clients[0].c;
  bool read = true;
  for (int k = 0; k < NEM_CHANNELS; k++) {
    struct synod_channel_messages m;
    int rv;
    while ((rv = synod_channel_read(c, w.channels[k], 0, 1, 0, OP_TIMEOUT_MS,
                                    &m)) != 0 &&
           nem_now_us() < until) {
      sleep_ms(100);
    }
    if (rv != 0) {
      snprintf(why, len, "channel %s: %s", w.channels[k], synod_errname(rv));
      read = false;
      target[k] = 0;
      continue;
    }
    target[k] = m.next_offset;
    synod_channel_messages_free(&m);
  }
  for (int i = 0; i < NEM_SUBSCRIBERS; i++) {
    struct subscriber *sb = &w.subs[i];
    pthread_mutex_lock(&sb->mu);
    memcpy(sb->target, target, sizeof target);
    sb->finish_by = until;
    sb->finish = true;
    pthread_mutex_unlock(&sb->mu);
  }
  for (int i = 0; i < NEM_SUBSCRIBERS; i++) {
    struct subscriber *sb = &w.subs[i];
    pthread_mutex_lock(&sb->mu);
    while (!sb->done) {
      pthread_mutex_unlock(&sb->mu);
      CHECK(nem_now_us() < until + 20000000,
            "subscriber %d did not stop 20 s after its bound", i);
      sleep_ms(20);
      pthread_mutex_lock(&sb->mu);
    }
    pthread_mutex_unlock(&sb->mu);
  }
  return read;
}

bool nem_workload_channels_delete(char *why, size_t len) {
  struct synod_client *c = w.clients[0].c;
  bool ok = true;
  for (int k = 0; k < NEM_CHANNELS; k++) {
    int rv = SYNOD_ETIMEDOUT;
    for (int tries = 0; tries < 5 && rv != 0 && rv != SYNOD_ENOTFOUND;
         tries++) {
      rv = synod_channel_delete(c, w.channels[k], OP_TIMEOUT_MS, NULL);
    }
    if (rv != 0 && rv != SYNOD_ENOTFOUND && ok) {
      snprintf(why, len, "channel %s: %s", w.channels[k], synod_errname(rv));
      ok = false;
    }
  }
  return ok;
}

static void *client_main(void *arg) {
  struct client *cl = arg;
  while (client_gate(cl)) {
    switch (cl->kind) {
    case NEM_ADD:
      add_once(cl);
      break;
    case NEM_GET:
      get_once(cl);
      break;
    case NEM_LOCK:
      lock_once(cl);
      break;
    case NEM_ELECT:
      elect_once(cl);
      break;
    case NEM_PUB:
      publish_once(cl);
      break;
    default:
      return NULL;
    }
  }
  atomic_store(&cl->idle, true);
  return NULL;
}

void nem_workload_start(const char *endpoints, const char *fence_addr) {
  snprintf(w.endpoints, sizeof w.endpoints, "%s", endpoints);
  atomic_store(&w.paused, true);
  fence_start(fence_addr);
  for (int i = 0; i < CLIENTS; i++) {
    struct client *cl = &w.clients[i];
    struct synod_options o;
    char name[32];
    cl->id = i;
    cl->fence_fd = -1;
    cl->kind = i < ADDERS                                  ? NEM_ADD
               : i < ADDERS + READERS                      ? NEM_GET
               : i < ADDERS + READERS + LOCKERS            ? NEM_LOCK
               : i < ADDERS + READERS + LOCKERS + ELECTORS ? NEM_ELECT
                                                           : NEM_PUB;
    snprintf(name, sizeof name, "nemesis-%d", i);
    synod_options_init(&o);
    o.endpoints = w.endpoints;
    o.client_name = name;
    o.request_timeout_ms = OP_TIMEOUT_MS;
    if (cl->kind == NEM_LOCK || cl->kind == NEM_ELECT) {
      o.session_ttl_ms = LOCK_TTL_MS;
      o.stall_timeout_ms = 600; /* at most a quarter of the TTL */
    }
    o.lock_cb = lock_event_cb;
    o.session_cb = session_event_cb;
    o.cb_arg = cl;
    CHECK(synod_client_new(&o, &cl->c) == 0, "synod_client_new: %s",
          synod_client_errmsg());
    pthread_create(&cl->thread, NULL, client_main, cl);
  }
  subscribers_start();
}

void nem_workload_resume(void) {
  atomic_store(&w.paused, false);
}

bool nem_workload_pause(uint32_t timeout_ms) {
  uint64_t until = nem_now_us() + (uint64_t)timeout_ms * 1000;
  atomic_store(&w.paused, true);
  for (;;) {
    bool all = true;
    for (int i = 0; i < CLIENTS; i++) {
      all = all && atomic_load(&w.clients[i].idle);
    }
    if (all) {
      return true;
    }
    if (nem_now_us() > until) {
      return false;
    }
    sleep_ms(10);
  }
}

void nem_workload_take(struct nem_record *out) {
  pthread_mutex_lock(&w.mu);
  *out = w.rec;
  memset(&w.rec, 0, sizeof w.rec);
  pthread_mutex_unlock(&w.mu);
  for (int i = 0; i < NEM_SUBSCRIBERS && w.subs != NULL; i++) {
    pthread_mutex_lock(&w.subs[i].mu); /* done: the thread waits */
    out->subs[i] = w.subs[i].rec;
    memset(&w.subs[i].rec, 0, sizeof w.subs[i].rec);
    pthread_mutex_unlock(&w.subs[i].mu);
  }
}

uint64_t nem_workload_last_ok(enum nem_kind k) {
  uint64_t t;
  pthread_mutex_lock(&w.mu);
  t = w.rec.stats[k].last_ok_invoke_us;
  pthread_mutex_unlock(&w.mu);
  return t;
}

void nem_record_free(struct nem_record *r) {
  free(r->ops);
  free(r->meta);
  free(r->holds);
  free(r->leads);
  free(r->refusals);
  free(r->pubs);
  for (int i = 0; i < NEM_SUBSCRIBERS; i++) {
    free(r->subs[i].d);
  }
  memset(r, 0, sizeof *r);
}

void nem_workload_stop(void) {
  atomic_store(&w.stopping, true);
  for (int i = 0; i < NEM_SUBSCRIBERS && w.subs != NULL; i++) {
    struct subscriber *sb = &w.subs[i];
    pthread_mutex_lock(&sb->mu);
    sb->finish = true;
    sb->finish_by = 0;
    pthread_cond_broadcast(&sb->cv);
    pthread_mutex_unlock(&sb->mu);
    pthread_join(sb->thread, NULL);
    synod_client_free(sb->c);
    free(sb->rec.d);
  }
  free(w.subs);
  w.subs = NULL;
  for (int i = 0; i < CLIENTS; i++) {
    struct client *cl = &w.clients[i];
    if (cl->c == NULL) {
      continue;
    }
    pthread_join(cl->thread, NULL);
    synod_client_free(cl->c);
    cl->c = NULL;
    if (cl->fence_fd >= 0) {
      close(cl->fence_fd);
    }
  }
}
