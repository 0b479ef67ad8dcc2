/* Membership and state transfer against real synodd processes:
 *
 *  1. join: a 3-replica cluster holding many counters and held locks,
 *     under a steady write load; a 4th and a 5th replica (declared only to
 *     themselves, so they ask the leader to join) receive a snapshot and
 *     become voters; then all five agree on the state digest, no write of
 *     the load failed, and the locks are held as before (owner, session,
 *     token);
 *  2. scale down 5 -> 3 by SIGTERM, one replica at a time, under the load:
 *     each exits 0, the cluster keeps serving, 3 voters remain and every
 *     acknowledged add is in its counter;
 *  3. disk loss: a follower is SIGKILLed, its data directory removed and it
 *     is restarted under the same name; it comes back with a new id, catches
 *     up from a snapshot, its old incarnation is removed (3 voters again),
 *     the load is served throughout and the digests agree.
 *
 * Sizes: by default (and under ctest) the 100,000 counters and
 * 10,000 held locks, 10-20 s on a loaded 2-core machine;
 * SYNOD_MEMBERSHIP_FULL=0 runs 20,000 and 2,000 for a quicker look. The
 * run prints which. Variants: SYNOD_MEMBERSHIP_LEAVE=leader stops the
 * leader first in scenario 2 (instead of the highest ordinals; it fails
 * while a leader re-adds a declared replica that is leaving, see
 * bootstrap_add_declared);
 * SYNOD_MEMBERSHIP_WIPE=leader wipes the leader's disk in scenario 3
 * instead of a follower's. Exit 77 (skipped) while synodd
 * does not accept --peers. */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "cluster.h"
#include "synod.h"

#define HOLDERS 4       /* sessions that hold the locks, all test long */
#define LOAD_COUNTERS 4 /* the load: one add in flight on each */
#define WINDOW 32       /* fill requests in flight per holder */
#define LOCK_SAMPLES 64 /* locks queried after each scenario */
#define OWNER_BASE 1000 /* holder h owns its locks as OWNER_BASE + h */
#define SESSION_TTL_MS 20000
#define LOAD_TIMEOUT_MS 30000 /* a load request fails only after this */
#define STATUS_TIMEOUT_MS 3000
#define LOAD_SLOWEST_MS 5000 /* "brief retries": no add may take longer */

struct sizes {
  uint32_t counters;
  uint32_t locks;
  uint32_t snapshot_entries;
  uint32_t fill_timeout_ms;
  bool full;
};

/* ------------------------------------------------------------- driver */

/* Everything that talks to the cluster asynchronously runs on one libuv
 * loop on its own thread: the holders (which fill the state and keep their
 * locks) and the load. The main thread starts and stops the load and reads
 * the counters below; it never touches the loop's objects. */

struct driver;

struct holder {
  struct driver *d;
  struct synod_async *a;
  int idx;
  uint32_t next_lock;    /* the next lock index this holder takes */
  uint32_t next_counter; /* the next counter index this holder sets */
  uint32_t inflight;     /* <= WINDOW */
  bool filled;
};

struct lock_op {
  struct holder *h;
  uint32_t idx;
};

struct chain {
  struct driver *d;
  int idx;
  bool busy;
  uint64_t sent_ms;
};

struct driver {
  uv_loop_t loop;
  uv_timer_t tick;
  pthread_t thread;
  const char *endpoints;
  struct sizes sz;
  struct holder holders[HOLDERS];
  struct lock_op *lock_ops; /* one per lock */
  struct synod_async *load;
  struct chain chains[LOAD_COUNTERS];
  /* Written by the loop thread; read by main once fill_left is 0. */
  uint64_t *tokens;                   /* per lock: its fencing token */
  _Atomic uint64_t sessions[HOLDERS]; /* per holder: its session id */
  atomic_int fill_left;               /* holders still filling */
  atomic_uint_fast64_t fill_errors;
  atomic_bool load_on;
  atomic_bool quit;
  atomic_bool stopped; /* the loop has returned */
  atomic_int load_inflight;
  atomic_uint_fast64_t acked[LOAD_COUNTERS];
  atomic_uint_fast64_t load_errors;
  atomic_uint_fast64_t latency_max_ms; /* the slowest acknowledged add */
  pthread_mutex_t mu;
  char first_error[512]; /* under mu */
};

static void driver_error(struct driver *d, const char *what, int status,
                         const struct synod_async *a) {
  pthread_mutex_lock(&d->mu);
  if (d->first_error[0] == '\0') {
    snprintf(d->first_error, sizeof d->first_error, "%s: %s (%s)", what,
             synod_errname(status), synod_async_last_errmsg(a));
  }
  pthread_mutex_unlock(&d->mu);
}

static uint64_t loop_ms(struct driver *d) {
  return uv_now(&d->loop);
}

static void holder_pump(struct holder *h);

static void fill_lock_cb(void *arg, int status,
                         const struct synod_lock_grant *g) {
  struct lock_op *op = arg;
  struct holder *h = op->h;
  h->inflight--;
  if (status != 0) {
    atomic_fetch_add(&h->d->fill_errors, 1);
    driver_error(h->d, "fill: lock acquire", status, h->a);
  } else {
    h->d->tokens[op->idx] = g->token;
    atomic_store(&h->d->sessions[h->idx], synod_async_session_id(h->a));
  }
  holder_pump(h);
}

static void fill_counter_cb(void *arg, int status, const int64_t *value) {
  struct holder *h = arg;
  (void)value;
  h->inflight--;
  if (status != 0) {
    atomic_fetch_add(&h->d->fill_errors, 1);
    driver_error(h->d, "fill: counter set", status, h->a);
  }
  holder_pump(h);
}

/* Keeps WINDOW requests in flight: this holder's locks (every HOLDERS-th
 * index from its own), then its share of the counters. */
static void holder_pump(struct holder *h) {
  struct driver *d = h->d;
  char name[32];
  int rv = 0;
  while (rv == 0 && h->inflight < WINDOW) {
    if (h->next_lock < d->sz.locks) {
      struct lock_op *op = &d->lock_ops[h->next_lock];
      *op = (struct lock_op){h, h->next_lock};
      snprintf(name, sizeof name, "l/%06" PRIu32, h->next_lock);
      rv = synod_async_lock_acquire(h->a, name, OWNER_BASE + (uint64_t)h->idx,
                                    10000, fill_lock_cb, op);
      h->next_lock += HOLDERS;
    } else if (h->next_counter < d->sz.counters) {
      snprintf(name, sizeof name, "c/%06" PRIu32, h->next_counter);
      rv = synod_async_counter_set(h->a, name, h->next_counter, fill_counter_cb,
                                   h);
      h->next_counter += HOLDERS;
    } else {
      break;
    }
    if (rv == 0) {
      h->inflight++;
    } else {
      atomic_fetch_add(&d->fill_errors, 1);
      driver_error(d, "fill: submit", rv, h->a);
    }
  }
  if (h->inflight == 0 && !h->filled) {
    h->filled = true;
    atomic_fetch_sub(&d->fill_left, 1);
  }
}

static void chain_send(struct chain *ch);

static void load_add_cb(void *arg, int status, const int64_t *value) {
  struct chain *ch = arg;
  struct driver *d = ch->d;
  uint64_t took = loop_ms(d) - ch->sent_ms;
  (void)value;
  ch->busy = false;
  if (status == 0) {
    atomic_fetch_add(&d->acked[ch->idx], 1);
    if (took > atomic_load(&d->latency_max_ms)) {
      atomic_store(&d->latency_max_ms, took);
    }
  } else {
    atomic_fetch_add(&d->load_errors, 1);
    driver_error(d, "load: counter add", status, d->load);
  }
  atomic_fetch_sub(&d->load_inflight, 1);
  if (atomic_load(&d->load_on)) {
    chain_send(ch);
  }
}

static void chain_send(struct chain *ch) {
  struct driver *d = ch->d;
  char name[32];
  snprintf(name, sizeof name, "load/%d", ch->idx);
  uv_update_time(&d->loop);
  ch->sent_ms = loop_ms(d);
  ch->busy = true;
  atomic_fetch_add(&d->load_inflight, 1);
  int rv = synod_async_counter_add(d->load, name, 1, load_add_cb, ch);
  if (rv != 0) {
    ch->busy = false;
    atomic_fetch_sub(&d->load_inflight, 1);
    atomic_fetch_add(&d->load_errors, 1);
    driver_error(d, "load: submit", rv, d->load);
  }
}

static void driver_closed_cb(void *arg) {
  (void)arg;
}

/* Every 5 ms: start the load's chains when asked; close everything on
 * quit (sessions end, so the locks are released). */
static void driver_tick_cb(uv_timer_t *t) {
  struct driver *d = t->data;
  if (atomic_load(&d->quit)) {
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, NULL);
    for (int i = 0; i < HOLDERS; i++) {
      synod_async_close(d->holders[i].a, driver_closed_cb, NULL);
    }
    synod_async_close(d->load, driver_closed_cb, NULL);
    return;
  }
  for (int i = 0; i < LOAD_COUNTERS && atomic_load(&d->load_on); i++) {
    if (!d->chains[i].busy) {
      chain_send(&d->chains[i]);
    }
  }
}

static void *driver_main(void *arg) {
  struct driver *d = arg;
  for (int i = 0; i < HOLDERS; i++) {
    holder_pump(&d->holders[i]);
  }
  uv_run(&d->loop, UV_RUN_DEFAULT);
  atomic_store(&d->stopped, true);
  return NULL;
}

static struct synod_async *driver_client(struct driver *d, const char *name,
                                         uint32_t timeout_ms) {
  struct synod_options o;
  struct synod_async *a;
  synod_options_init(&o);
  o.endpoints = d->endpoints;
  o.client_name = name;
  o.session_ttl_ms = SESSION_TTL_MS;
  o.request_timeout_ms = timeout_ms;
  CHECK(synod_async_new(&d->loop, &o, &a) == 0, "synod_async_new");
  return a;
}

/* Starts the loop thread; it fills at once. */
static void driver_start(struct driver *d, const char *endpoints,
                         const struct sizes *sz) {
  memset(d, 0, sizeof *d);
  d->endpoints = endpoints;
  d->sz = *sz;
  pthread_mutex_init(&d->mu, NULL);
  CHECK(uv_loop_init(&d->loop) == 0, "uv_loop_init");
  d->tokens = calloc(sz->locks ? sz->locks : 1, sizeof *d->tokens);
  d->lock_ops = calloc(sz->locks ? sz->locks : 1, sizeof *d->lock_ops);
  CHECK(d->tokens && d->lock_ops, "out of memory");
  atomic_store(&d->fill_left, HOLDERS);
  for (int i = 0; i < HOLDERS; i++) {
    struct holder *h = &d->holders[i];
    h->d = d;
    h->idx = i;
    h->next_lock = h->next_counter = (uint32_t)i;
    h->a = driver_client(d, "membership holder", 30000);
  }
  d->load = driver_client(d, "membership load", LOAD_TIMEOUT_MS);
  for (int i = 0; i < LOAD_COUNTERS; i++) {
    d->chains[i] = (struct chain){.d = d, .idx = i};
  }
  uv_timer_init(&d->loop, &d->tick);
  d->tick.data = d;
  uv_timer_start(&d->tick, driver_tick_cb, 5, 5);
  CHECK(pthread_create(&d->thread, NULL, driver_main, d) == 0,
        "pthread_create");
}

static uint64_t load_acked(struct driver *d) {
  uint64_t sum = 0;
  for (int i = 0; i < LOAD_COUNTERS; i++) {
    sum += atomic_load(&d->acked[i]);
  }
  return sum;
}

static void check_no_load_errors(struct driver *d) {
  pthread_mutex_lock(&d->mu);
  CHECK(atomic_load(&d->load_errors) == 0,
        "%" PRIuFAST64 " load requests failed; first: %s",
        atomic_load(&d->load_errors), d->first_error);
  pthread_mutex_unlock(&d->mu);
}

/* Starts the load (stopped: no add in flight); the slowest add is
 * measured from here. */
static void load_start(struct driver *d) {
  atomic_store(&d->latency_max_ms, 0);
  atomic_store(&d->load_on, true);
}

/* Stops the load and waits until every add in flight is answered. */
static void load_stop(struct driver *d) {
  uint64_t until = test_now_ms() + LOAD_TIMEOUT_MS + 10000;
  atomic_store(&d->load_on, false);
  while (atomic_load(&d->load_inflight) > 0) {
    CHECK(test_now_ms() < until, "load adds still unanswered after %d ms",
          LOAD_TIMEOUT_MS + 10000);
    usleep(5000);
  }
}

/* Waits until the load has had `more` adds acknowledged since `from`. */
static void load_wait_progress(struct driver *d, uint64_t from, uint64_t more,
                               uint32_t timeout_ms, const char *when) {
  uint64_t until = test_now_ms() + timeout_ms;
  while (load_acked(d) < from + more) {
    check_no_load_errors(d);
    CHECK(test_now_ms() < until,
          "%s: the load got %" PRIu64 " of %" PRIu64
          " adds acknowledged within %u ms",
          when, load_acked(d) - from, more, timeout_ms);
    usleep(10000);
  }
}

static void driver_stop(struct driver *d) {
  uint64_t until = test_now_ms() + 10000;
  load_stop(d);
  atomic_store(&d->quit, true);
  while (!atomic_load(&d->stopped)) {
    CHECK(test_now_ms() < until, "the client loop did not stop in 10 s");
    usleep(5000);
  }
  pthread_join(d->thread, NULL);
  uv_loop_close(&d->loop);
  free(d->tokens);
  free(d->lock_ops);
}

/* ------------------------------------------------------------- checks */

static struct synod_client *client(const struct cluster *c) {
  struct synod_options o;
  struct synod_client *cl;
  synod_options_init(&o);
  o.endpoints = c->endpoints;
  o.client_name = "membership check";
  o.request_timeout_ms = 20000;
  CHECK(synod_client_new(&o, &cl) == 0, "%s", synod_client_errmsg());
  return cl;
}

/* The leader's status (agreed on by every running replica). */
static int leader_status(struct cluster *c, unsigned flags,
                         struct synod_status *st) {
  uint64_t until = test_now_ms() + 60000;
  for (;;) {
    int l = cluster_wait_leader(c, 60000);
    if (cluster_status(c, l, flags, STATUS_TIMEOUT_MS, st) == 0 &&
        strcmp(st->role, "leader") == 0) {
      return l;
    }
    synod_status_free(st);
    CHECK(test_now_ms() < until, "no leader answered its status in 60 s");
    usleep(50000);
  }
}

/* Is the configuration, as the leader sees it, exactly the replicas named
 * in want[] (by index), all voters? Fills text with what it is. */
static bool config_is(const struct synod_status *st, const struct cluster *c,
                      const int *want, int want_n, char *text, size_t len) {
  size_t off = 0;
  bool ok = st->members_count == (size_t)want_n;
  text[0] = '\0';
  for (size_t i = 0; i < st->members_count; i++) {
    const struct synod_member *m = &st->members[i];
    bool wanted = false;
    for (int j = 0; j < want_n; j++) {
      wanted |= strcmp(m->name, c->nodes[want[j]].name) == 0;
    }
    ok &= wanted && m->voter;
    off +=
        (size_t)snprintf(text + off, off < len ? len - off : 0, "%s%s(%s)",
                         i ? " " : "", m->name, m->voter ? "voter" : "learner");
  }
  return ok;
}

/* Waits until the leader's configuration is exactly want[], all voters. */
static void wait_config(struct cluster *c, const int *want, int want_n,
                        uint32_t timeout_ms, const char *when) {
  uint64_t until = test_now_ms() + timeout_ms;
  char text[512];
  for (;;) {
    struct synod_status st;
    leader_status(c, 0, &st);
    bool ok = config_is(&st, c, want, want_n, text, sizeof text);
    synod_status_free(&st);
    if (ok) {
      printf("  configuration: %s\n", text);
      return;
    }
    CHECK(test_now_ms() < until,
          "%s: configuration not %d voters within %u ms: %s (logs in %s)", when,
          want_n, timeout_ms, text, c->dir);
    usleep(100000);
  }
}

/* Waits until every running replica reports the same applied index, then
 * requires the same digest from each (taken at that index). */
static void check_digests(struct cluster *c, uint32_t timeout_ms) {
  uint64_t until = test_now_ms() + timeout_ms;
  struct synod_status st[CLUSTER_NODES_MAX];
  char text[1024];
  for (int round = 1;; round++) {
    bool same = true;
    size_t off = 0;
    int first = -1;
    memset(st, 0, sizeof st);
    for (int i = 0; i < c->n; i++) {
      if (c->nodes[i].pid == 0) {
        continue;
      }
      if (cluster_status(c, i, SYNOD_STATUS_DIGEST, STATUS_TIMEOUT_MS,
                         &st[i]) != 0) {
        same = false;
        continue;
      }
      first = first < 0 ? i : first;
      same &= st[i].applied_index == st[first].applied_index;
      off += (size_t)snprintf(text + off,
                              off < sizeof text ? sizeof text - off : 0,
                              " %s@%" PRIu64 "=%016" PRIx64, c->nodes[i].name,
                              st[i].applied_index, st[i].digest);
    }
    if (same && first >= 0) {
      for (int i = 0; i < c->n; i++) {
        CHECK(c->nodes[i].pid == 0 || st[i].digest == st[first].digest,
              "digests differ at applied index %" PRIu64 ":%s (logs in %s)",
              st[first].applied_index, text, c->dir);
      }
      printf("  digests agree (round %d):%s\n", round, text);
    }
    for (int i = 0; i < c->n; i++) {
      synod_status_free(&st[i]);
    }
    if (same && first >= 0) {
      return;
    }
    CHECK(test_now_ms() < until,
          "replicas did not reach one applied index within %u ms:%s",
          timeout_ms, text);
    usleep(20000);
  }
}

/* Every load counter holds exactly its acknowledged adds (the load is
 * stopped and saw no error, so no add has an unknown outcome). */
static void check_counters(struct cluster *c, struct driver *d,
                           const char *when) {
  struct synod_client *cl = client(c);
  check_no_load_errors(d);
  for (int i = 0; i < LOAD_COUNTERS; i++) {
    char name[32];
    int64_t v = -1;
    snprintf(name, sizeof name, "load/%d", i);
    CHECK(synod_counter_get(cl, name, 0, 0, &v) == 0, "get %s: %s", name,
          synod_client_errmsg());
    CHECK(v == (int64_t)atomic_load(&d->acked[i]),
          "%s: %s = %" PRId64 ", but %" PRIuFAST64 " adds were acknowledged",
          when, name, v, atomic_load(&d->acked[i]));
  }
  for (uint32_t i = 0; i < d->sz.counters; i += d->sz.counters / 16 + 1) {
    char name[32];
    int64_t v = -1;
    snprintf(name, sizeof name, "c/%06" PRIu32, i);
    CHECK(synod_counter_get(cl, name, 0, 0, &v) == 0 && v == (int64_t)i,
          "%s: %s = %" PRId64 " (%s)", when, name, v, synod_client_errmsg());
  }
  synod_client_free(cl);
  CHECK(atomic_load(&d->latency_max_ms) <= LOAD_SLOWEST_MS,
        "%s: an add took %" PRIuFAST64 " ms (more than a brief retry)", when,
        atomic_load(&d->latency_max_ms));
  printf("  %s: %" PRIu64 " acknowledged adds all counted, no load errors, "
         "slowest add %" PRIuFAST64 " ms\n",
         when, load_acked(d), atomic_load(&d->latency_max_ms));
}

/* A sample of the locks taken during the fill (the first, the last and
 * evenly spread ones) is held by the same owner, session and token. */
static void check_locks(struct cluster *c, struct driver *d, const char *when) {
  struct synod_client *cl = client(c);
  uint32_t step = d->sz.locks / LOCK_SAMPLES + 1, checked = 0;
  for (uint32_t i = 0; i < d->sz.locks; i += step) {
    uint32_t idx = i + step >= d->sz.locks ? d->sz.locks - 1 : i;
    struct synod_lock_info info;
    char name[32];
    uint32_t h = idx % HOLDERS;
    snprintf(name, sizeof name, "l/%06" PRIu32, idx);
    CHECK(synod_lock_query(cl, name, 0, 0, &info) == 0, "query %s: %s", name,
          synod_client_errmsg());
    CHECK(info.held && info.owner_id == OWNER_BASE + h &&
              info.session_id == atomic_load(&d->sessions[h]) &&
              info.token == d->tokens[idx],
          "%s: %s: held=%d owner=%" PRIu64 " session=%" PRIu64 " token=%" PRIu64
          "; want owner %u session %" PRIu64 " token %" PRIu64,
          when, name, info.held, info.owner_id, info.session_id, info.token,
          OWNER_BASE + h, atomic_load(&d->sessions[h]), d->tokens[idx]);
    checked++;
  }
  synod_client_free(cl);
  printf("  %s: %u sampled locks held by the same owner, session and token\n",
         when, checked);
}

/* Does replica i's log contain needle after byte `from`? */
static bool log_has(const struct cluster *c, int i, long from,
                    const char *needle) {
  char *s = test_slurp(c->nodes[i].log);
  bool has = (long)strlen(s) >= from && strstr(s + from, needle) != NULL;
  free(s);
  return has;
}

static long log_size(const struct cluster *c, int i) {
  struct stat sb;
  return stat(c->nodes[i].log, &sb) == 0 ? (long)sb.st_size : 0;
}

/* The id a replica logged at its last start ("(id 0123...) started"). */
static void log_last_id(const struct cluster *c, int i, char *out, size_t len) {
  char *s = test_slurp(c->nodes[i].log), *p = s, *hit = NULL;
  while ((p = strstr(p, "(id ")) != NULL) {
    hit = p += 4;
  }
  snprintf(out, len, "%.16s", hit ? hit : "?");
  free(s);
}

/* Waits until every running replica's log has needle after from[i]. */
static void wait_log(const struct cluster *c, int i, long from,
                     const char *needle, uint32_t timeout_ms) {
  uint64_t until = test_now_ms() + timeout_ms;
  while (!log_has(c, i, from, needle)) {
    CHECK(test_now_ms() < until, "%s's log (%s) has no '%s' within %u ms",
          c->nodes[i].name, c->nodes[i].log, needle, timeout_ms);
    usleep(20000);
  }
}

/* ---------------------------------------------------------- scenarios */

/* The indexes of the running replicas, into out; returns how many. */
static int running(const struct cluster *c, int *out) {
  int k = 0;
  for (int i = 0; i < c->n; i++) {
    if (c->nodes[i].pid != 0) {
      out[k++] = i;
    }
  }
  return k;
}

/* Does any running replica but `except` have needle in its log after
 * from[i]? */
static bool any_log_has(const struct cluster *c, int except, const long *from,
                        const char *needle) {
  for (int i = 0; i < c->n; i++) {
    if (i != except && c->nodes[i].pid != 0 &&
        log_has(c, i, from ? from[i] : 0, needle)) {
      return true;
    }
  }
  return false;
}

/* `synodctl status --digest` against every replica: exit 0, a digest per
 * row and a verdict line. Skipped if synodctl is not built. */
static void check_synodctl_digest(struct cluster *c) {
  char synodctl[PATH_MAX], cmd[PATH_MAX * 2], out[PATH_MAX + 32];
  test_binary("SYNODCTL", "synodctl", synodctl, sizeof synodctl);
  if (access(synodctl, X_OK) != 0) {
    printf("  (synodctl not built: status --digest not checked)\n");
    return;
  }
  snprintf(out, sizeof out, "%.4000s/status-digest.out", c->dir);
  snprintf(cmd, sizeof cmd, "'%.4000s' --endpoints %s status --digest",
           synodctl, c->endpoints);
  unlink(out);
  int code = test_sh(cmd, out, 30000);
  char *text = test_slurp(out);
  CHECK(code == 0 && strstr(text, "DIGEST") && strstr(text, "digests: "),
        "synodctl status --digest exited %d:\n%s", code, text);
  const char *verdict = strstr(text, "digests: ");
  printf("  synodctl status --digest: %.*s\n", (int)strcspn(verdict, "\n"),
         verdict);
  free(text);
}

static void scenario_join(struct cluster *c, struct driver *d,
                          const struct sizes *sz) {
  const int all5[] = {0, 1, 2, 3, 4};
  uint64_t t0 = test_now_ms(), before;
  struct synod_status st;
  char needle[64];
  load_start(d);
  load_wait_progress(d, 0, 50, 30000, "before the join");
  before = load_acked(d);
  printf("  starting synod-3 and synod-4 (declared to themselves only)\n");
  cluster_restart(c, 3);
  cluster_restart(c, 4);
  wait_config(c, all5, 5, 240000, "join");
  uint64_t joined_ms = test_now_ms() - t0;
  for (int i = 3; i < 5; i++) {
    CHECK(log_has(c, i, 0, "to join the cluster"),
          "%s did not ask to join (log %s)", c->nodes[i].name, c->nodes[i].log);
    snprintf(needle, sizeof needle, "adding %s (", c->nodes[i].name);
    CHECK(any_log_has(c, i, NULL, needle), "no leader logged '%s' (logs in %s)",
          needle, c->dir);
    CHECK(log_has(c, i, 0, "installed snapshot"),
          "%s became a voter without installing a snapshot (log %s)",
          c->nodes[i].name, c->nodes[i].log);
  }
  load_wait_progress(d, before, 50, 30000, "after the join");
  load_stop(d);
  check_digests(c, 60000);
  check_synodctl_digest(c);
  check_counters(c, d, "join");
  check_locks(c, d, "join");
  leader_status(c, 0, &st);
  printf("ok join: 2 replicas joined through snapshots (leader's: %" PRIu64
         " bytes) in %.1f s, under %" PRIu64 " adds, 5 voters agree "
         "(%u counters, %u locks)\n",
         st.snapshot_bytes, (double)joined_ms / 1000.0, load_acked(d) - before,
         sz->counters, sz->locks);
  synod_status_free(&st);
}

/* SIGTERM to replica i; it must exit 0 within the bound, having handed
 * leadership over if it led, and been removed from the configuration. */
static void leave(struct cluster *c, int i) {
  struct synod_status st;
  char role[32] = "?";
  if (cluster_status(c, i, 0, STATUS_TIMEOUT_MS, &st) == 0) {
    snprintf(role, sizeof role, "%s", st.role);
    synod_status_free(&st);
  }
  uint64_t t0 = test_now_ms();
  kill(c->nodes[i].pid, SIGTERM);
  int code = test_wait(c->nodes[i].pid, 30000, c->nodes[i].name);
  c->nodes[i].pid = 0;
  CHECK(code == 0, "%s exited %d on SIGTERM (log %s)", c->nodes[i].name, code,
        c->nodes[i].log);
  CHECK(strcmp(role, "leader") != 0 ||
            log_has(c, i, 0, "handing leadership to"),
        "%s led but did not hand leadership over (log %s)", c->nodes[i].name,
        c->nodes[i].log);
  CHECK(log_has(c, i, 0, "removed from the cluster"),
        "%s exited without being removed (log %s)", c->nodes[i].name,
        c->nodes[i].log);
  printf("  %s (%s) left and exited 0 in %" PRIu64 " ms\n", c->nodes[i].name,
         role, test_now_ms() - t0);
}

/* Whom to stop next: the follower of highest ordinal, as a StatefulSet
 * scales down; with SYNOD_MEMBERSHIP_LEAVE=leader, the leader first (a
 * handover under load, and a replica every leader declared). */
static int leave_target(struct cluster *c, int step) {
  const char *which = getenv("SYNOD_MEMBERSHIP_LEAVE");
  bool leader_first = which != NULL && strcmp(which, "leader") == 0;
  struct synod_status st;
  int l = leader_status(c, 0, &st);
  synod_status_free(&st);
  if (leader_first && step == 0) {
    return l;
  }
  for (int i = c->n - 1; i >= 0; i--) {
    if (c->nodes[i].pid != 0 && (i != l || !leader_first)) {
      return i;
    }
  }
  CHECK(false, "nobody left to stop");
  return -1;
}

static void scenario_scale_down(struct cluster *c, struct driver *d) {
  int left[CLUSTER_NODES_MAX], k;
  uint64_t t0 = test_now_ms();
  load_start(d);
  load_wait_progress(d, load_acked(d), 50, 30000, "before scaling down");
  for (int step = 0; step < 2; step++) {
    leave(c, leave_target(c, step));
    load_wait_progress(d, load_acked(d), 50, 30000, "after a replica left");
    k = running(c, left);
    wait_config(c, left, k, 30000, "after a replica left");
  }
  load_stop(d);
  check_counters(c, d, "scale down");
  check_digests(c, 60000);
  check_locks(c, d, "scale down");
  printf("ok scale down 5 -> 3 by SIGTERM under load in %.1f s\n",
         (double)(test_now_ms() - t0) / 1000.0);
}

static void wipe(struct cluster *c, int i) {
  char cmd[PATH_MAX + 32];
  cluster_signal(c, i, SIGKILL);
  snprintf(cmd, sizeof cmd, "rm -rf '%.4000s'", c->nodes[i].data);
  CHECK(test_sh(cmd, NULL, 30000) == 0, "%s failed", cmd);
  CHECK(mkdir(c->nodes[i].data, 0755) == 0, "mkdir %s", c->nodes[i].data);
}

/* Picks the replica to wipe: a follower, or the leader when
 * SYNOD_MEMBERSHIP_WIPE=leader. */
static int wipe_target(struct cluster *c) {
  const char *which = getenv("SYNOD_MEMBERSHIP_WIPE");
  struct synod_status st;
  int l = leader_status(c, 0, &st);
  synod_status_free(&st);
  if (which != NULL && strcmp(which, "leader") == 0) {
    return l;
  }
  for (int i = 0; i < c->n; i++) {
    if (c->nodes[i].pid != 0 && i != l) {
      return i;
    }
  }
  CHECK(false, "no follower running");
  return -1;
}

/* Waits until a leader other than f logged the removal of f's old
 * incarnation. */
static void wait_old_removed(struct cluster *c, int f, const long *from) {
  char needle[96];
  uint64_t until = test_now_ms() + 120000;
  snprintf(needle, sizeof needle, "removing %s's old incarnation",
           c->nodes[f].name);
  while (!any_log_has(c, f, from, needle)) {
    CHECK(test_now_ms() < until,
          "no leader logged '%s' within 120 s (logs in %s)", needle, c->dir);
    usleep(50000);
  }
}

static void scenario_disk_loss(struct cluster *c, struct driver *d) {
  int members[CLUSTER_NODES_MAX], k = running(c, members);
  int f = wipe_target(c);
  char old_id[32], new_id[32];
  long from[CLUSTER_NODES_MAX];
  uint64_t t0 = test_now_ms(), before;
  load_start(d);
  load_wait_progress(d, load_acked(d), 50, 30000, "before the disk loss");
  for (int i = 0; i < c->n; i++) {
    from[i] = log_size(c, i);
  }
  log_last_id(c, f, old_id, sizeof old_id);
  printf("  SIGKILL %s (id %s), remove %s, restart it\n", c->nodes[f].name,
         old_id, c->nodes[f].data);
  wipe(c, f);
  before = load_acked(d);
  load_wait_progress(d, before, 50, 30000, "while the replica is down");
  cluster_restart(c, f);
  wait_log(c, f, from[f], "installed snapshot", 120000);
  log_last_id(c, f, new_id, sizeof new_id);
  CHECK(strcmp(old_id, new_id) != 0, "%s came back with its old id %s",
        c->nodes[f].name, old_id);
  wait_old_removed(c, f, from);
  wait_config(c, members, k, 60000, "after the disk loss");
  load_wait_progress(d, load_acked(d), 50, 30000, "after the disk loss");
  printf("  %s is back as id %s; %" PRIu64 " adds acknowledged meanwhile\n",
         c->nodes[f].name, new_id, load_acked(d) - before);
  load_stop(d);
  check_counters(c, d, "disk loss");
  check_digests(c, 60000);
  check_locks(c, d, "disk loss");
  printf("ok disk loss: %s rejoined as a new incarnation in %.1f s, old one "
         "removed, 3 voters agree\n",
         c->nodes[f].name, (double)(test_now_ms() - t0) / 1000.0);
}

/* ---------------------------------------------------------------- main */

static void sizes_pick(struct sizes *sz) {
  const char *full = getenv("SYNOD_MEMBERSHIP_FULL");
  sz->full = full == NULL || (strcmp(full, "0") != 0 && full[0] != '\0');
  sz->counters = sz->full ? 100000 : 20000;
  sz->locks = sz->full ? 10000 : 2000;
  sz->snapshot_entries = sz->full ? 5000 : 2000;
  sz->fill_timeout_ms = sz->full ? 900000 : 300000;
}

static void fill(struct cluster *c, struct driver *d, const struct sizes *sz) {
  uint64_t t0 = test_now_ms(), until = t0 + sz->fill_timeout_ms;
  driver_start(d, c->endpoints, sz);
  while (atomic_load(&d->fill_left) > 0) {
    pthread_mutex_lock(&d->mu);
    CHECK(atomic_load(&d->fill_errors) == 0, "fill: %s (logs in %s)",
          d->first_error, c->dir);
    pthread_mutex_unlock(&d->mu);
    CHECK(test_now_ms() < until, "fill not done within %u ms (logs in %s)",
          sz->fill_timeout_ms, c->dir);
    usleep(20000);
  }
  pthread_mutex_lock(&d->mu);
  CHECK(atomic_load(&d->fill_errors) == 0, "%" PRIuFAST64 " fill errors: %s",
        atomic_load(&d->fill_errors), d->first_error);
  pthread_mutex_unlock(&d->mu);
  double secs = (double)(test_now_ms() - t0) / 1000.0;
  printf("ok fill: %u counters and %u held locks (%d sessions) in %.1f s "
         "(%.0f writes/s)\n",
         sz->counters, sz->locks, HOLDERS, secs,
         (double)(sz->counters + sz->locks) / secs);
}

int main(void) {
  char synodd[PATH_MAX], entries[16];
  static struct cluster c;
  static struct driver d;
  struct sizes sz;
  uint64_t t0 = test_now_ms();
  setvbuf(stdout, NULL, _IONBF, 0);
  signal(SIGPIPE, SIG_IGN);
  cluster_synodd_or_skip(synodd, sizeof synodd);
  sizes_pick(&sz);
  printf("membership: %s size: %u counters, %u held locks, "
         "--snapshot-entries %u%s\n",
         sz.full ? "full (issue)" : "reduced", sz.counters, sz.locks,
         sz.snapshot_entries,
         sz.full ? ""
                 : " (SYNOD_MEMBERSHIP_FULL=0; unset: 100,000 and 10,000)");
  cluster_init(&c, 5, synodd);
  snprintf(entries, sizeof entries, "%u", sz.snapshot_entries);
  c.extra_args[0] = "--snapshot-entries";
  c.extra_args[1] = entries;
  /* Every image encoded by a child process (fork), as a large state's
   * is by default: joins, scale-down and a disk lost all go through
   * snapshots, and the digests must still agree. */
  c.extra_args[2] = "--snapshot-fork";
  c.extra_args[3] = "always";
  for (int i = 0; i < 3; i++) {
    cluster_peers_prefix(&c, 3, c.nodes[i].peers, sizeof c.nodes[i].peers);
    cluster_restart(&c, i);
  }
  cluster_wait_leader(&c, 60000);
  fill(&c, &d, &sz);
  scenario_join(&c, &d, &sz);
  scenario_scale_down(&c, &d);
  scenario_disk_loss(&c, &d);
  driver_stop(&d);
  cluster_stop(&c);
  printf("PASS (%.1f s)\n", (double)(test_now_ms() - t0) / 1000.0);
  return 0;
}
