/* libsynod against 3 real synodd processes: locks, counters, elections;
 * 4 processes adding 1,000 each to one counter end at exactly 4,000 while
 * the leader is SIGKILLed twice and restarted; SIGKILL of every replica
 * loses nothing that was acknowledged (a lock holder and its session
 * included); a stopped follower holds nobody up and catches up after
 * SIGCONT; SIGTERM of the leader hands leadership over, exits 0, and a
 * client hears of the new leader without asking. Exit 77 (skipped) while synodd
 * does not accept --peers. */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "synod.h"

#define ADDERS 4
#define ADDS 1000

static struct synod_client *client(const struct cluster *c,
                                   uint32_t timeout_ms) {
  struct synod_options o;
  struct synod_client *cl;
  synod_options_init(&o);
  o.endpoints = c->endpoints;
  o.client_name = "integration";
  o.request_timeout_ms = timeout_ms;
  CHECK(synod_client_new(&o, &cl) == 0, "%s", synod_client_errmsg());
  return cl;
}

#define OK(call) CHECK((call) == 0, "%s", synod_client_errmsg())

static void scenario_basics(const struct cluster *c) {
  struct synod_client *a = client(c, 10000), *b = client(c, 10000);
  struct synod_lock_grant g1, g2;
  struct synod_lock_check chk;
  struct synod_counter_cas cas;
  struct synod_election_campaign camp;
  struct synod_election_info info;
  int64_t v;
  OK(synod_counter_set(a, "basics", 10, 0));
  OK(synod_counter_add(b, "basics", 5, 0, &v));
  CHECK(v == 15, "add gave %" PRId64, v);
  OK(synod_counter_cas(a, "basics", 15, 1, 0, &cas));
  CHECK(cas.swapped && cas.value == 1, "cas");
  OK(synod_lock_try(a, "L", 1, &g1));
  CHECK(synod_lock_try(b, "L", 1, &g2) == SYNOD_ELOCKED, "second holder");
  OK(synod_lock_release(a, "L", 1, 0, NULL));
  OK(synod_lock_acquire(b, "L", 1, 2000, &g2));
  CHECK(g2.token > g1.token, "tokens grow");
  OK(synod_lock_check(a, "L", g1.token, 0, 0, &chk));
  CHECK(!chk.current && chk.current_token == g2.token, "fencing check");
  OK(synod_election_campaign(a, "E", "a", 1, 0, &camp));
  CHECK(camp.leader, "first campaigner leads");
  synod_election_campaign_free(&camp);
  OK(synod_election_leader(b, "E", 0, 0, &info));
  CHECK(info.has_leader && info.session_id == synod_session_id(a), "leader");
  synod_election_info_free(&info);
  synod_client_free(a); /* closes the session: b's view changes */
  OK(synod_election_leader(b, "E", 0, 0, &info));
  CHECK(!info.has_leader, "leader gone with its session");
  synod_election_info_free(&info);
  synod_client_free(b);
  printf("ok basics\n");
}

/* One adder process: its own client, `adds` increments of `name`, exit 0
 * if all succeeded. Timeouts are long: a failover must not fail a
 * request. */
static void adder(const struct cluster *c, const char *name, int adds) {
  struct synod_client *cl = client(c, 60000);
  for (int i = 0; i < adds; i++) {
    if (synod_counter_add(cl, name, 1, 0, NULL) != 0) {
      fprintf(stderr, "adder %d: add %d: %s\n", (int)getpid(), i,
              synod_client_errmsg());
      _exit(1);
    }
  }
  synod_client_free(cl);
  _exit(0);
}

static int64_t counter(struct synod_client *cl, const char *name) {
  int64_t v = -1;
  OK(synod_counter_get(cl, name, 0, 0, &v));
  return v;
}

static void wait_counter_at_least(struct synod_client *cl, int64_t want) {
  uint64_t until = test_now_ms() + 120000;
  while (counter(cl, "total") < want) {
    CHECK(test_now_ms() < until, "counter did not reach %" PRId64, want);
    usleep(20000);
  }
}

static void kill_leader_and_restart(struct cluster *c) {
  int leader = cluster_wait_leader(c, 30000);
  printf("  SIGKILL %s\n", c->nodes[leader].name);
  cluster_signal(c, leader, SIGKILL);
  cluster_wait_leader(c, 30000);
  cluster_restart(c, leader);
}

/* Group commit: while one write of the leader's log is syncing, the
 * requests that arrive go to disk together in the next one, so with
 * concurrent clients the leader syncs fewer times than it writes entries
 * (one client would get one entry per sync). */
static void scenario_group_commit(struct cluster *c) {
  struct synod_status before, after;
  struct synod_client *cl = client(c, 30000);
  pid_t pids[ADDERS];
  int l = cluster_wait_leader(c, 30000);
  CHECK(cluster_status(c, l, 0, 10000, &before) == 0, "leader status");
  fflush(NULL);
  for (int i = 0; i < ADDERS; i++) {
    pids[i] = fork();
    CHECK(pids[i] >= 0, "fork");
    if (pids[i] == 0) {
      adder(c, "group-commit", 500);
    }
    test_track(pids[i]);
  }
  for (int i = 0; i < ADDERS; i++) {
    CHECK(test_wait(pids[i], 120000, "adder") == 0, "an adder failed");
  }
  CHECK(counter(cl, "group-commit") == ADDERS * 500, "group-commit is %" PRId64,
        counter(cl, "group-commit"));
  CHECK(cluster_status(c, l, 0, 10000, &after) == 0, "leader status");
  CHECK(strcmp(after.role, "leader") == 0 && after.term == before.term,
        "%s lost the lead during the run", c->nodes[l].name);
  uint64_t syncs = after.log_syncs - before.log_syncs;
  uint64_t entries = after.log_synced_entries - before.log_synced_entries;
  CHECK(syncs > 0 && entries >= ADDERS * 500,
        "the leader synced %" PRIu64 " entries in %" PRIu64 " writes for %d "
        "adds",
        entries, syncs, ADDERS * 500);
  CHECK(entries * 10 >= syncs * 11,
        "no group commit: %" PRIu64 " entries in %" PRIu64 " syncs", entries,
        syncs);
  printf("ok group commit: %d concurrent adders, the leader synced %" PRIu64
         " entries in %" PRIu64 " writes (%.1f per sync)\n",
         ADDERS, entries, syncs, (double)entries / (double)syncs);
  synod_status_free(&before);
  synod_status_free(&after);
  synod_client_free(cl);
}

static void scenario_adders_under_leader_kills(struct cluster *c) {
  struct synod_client *watch = client(c, 30000);
  pid_t pids[ADDERS];
  fflush(NULL);
  for (int i = 0; i < ADDERS; i++) {
    pids[i] = fork();
    CHECK(pids[i] >= 0, "fork");
    if (pids[i] == 0) {
      adder(c, "total", ADDS);
    }
    test_track(pids[i]);
  }
  wait_counter_at_least(watch, ADDERS * ADDS / 4);
  kill_leader_and_restart(c);
  wait_counter_at_least(watch, ADDERS * ADDS * 5 / 8);
  kill_leader_and_restart(c);
  for (int i = 0; i < ADDERS; i++) {
    CHECK(test_wait(pids[i], 180000, "adder") == 0, "an adder failed");
  }
  CHECK(counter(watch, "total") == ADDERS * ADDS, "total %" PRId64,
        counter(watch, "total"));
  synod_client_free(watch);
  printf("ok %d x %d adds = %d with two leader kills\n", ADDERS, ADDS,
         ADDERS * ADDS);
}

static void scenario_kill_all_keeps_acknowledged(struct cluster *c) {
  struct synod_client *cl = client(c, 10000);
  OK(synod_counter_set(cl, "durable", 12345, 0));
  synod_client_free(cl);
  /* A session holding a lock; its time to live outlasts the restart. */
  struct synod_options o;
  struct synod_client *holder;
  struct synod_lock_grant g;
  struct synod_lock_info info;
  struct synod_lock_check chk;
  synod_options_init(&o);
  o.endpoints = c->endpoints;
  o.client_name = "holder";
  o.request_timeout_ms = 30000;
  o.session_ttl_ms = 120000;
  CHECK(synod_client_new(&o, &holder) == 0, "%s", synod_client_errmsg());
  OK(synod_lock_try(holder, "held-across-kill", 7, &g));
  uint64_t session = synod_session_id(holder);
  CHECK(session != 0, "the holder has no session");

  for (int i = 0; i < c->n; i++) {
    cluster_signal(c, i, SIGKILL);
  }
  for (int i = 0; i < c->n; i++) {
    cluster_restart(c, i);
  }
  cluster_wait_leader(c, 30000);
  cl = client(c, 30000);
  CHECK(counter(cl, "durable") == 12345, "durable lost");
  CHECK(counter(cl, "total") == ADDERS * ADDS, "total lost");
  OK(synod_lock_query(cl, "held-across-kill", 0, 0, &info));
  CHECK(info.held && info.session_id == session && info.owner_id == 7 &&
            info.token == g.token,
        "lock after the restart: held %d by session %" PRIu64 " owner %" PRIu64
        " token %" PRIu64 "; acknowledged: session %" PRIu64 " owner 7 token "
        "%" PRIu64,
        info.held, info.session_id, info.owner_id, info.token, session,
        g.token);
  /* The session itself goes on: the holder still holds, and releases. */
  OK(synod_lock_check(holder, "held-across-kill", g.token, 0, 0, &chk));
  CHECK(chk.current, "the holder's grant is no longer current");
  CHECK(synod_session_id(holder) == session, "the holder got a new session");
  OK(synod_lock_release(holder, "held-across-kill", 7, 0, NULL));
  OK(synod_lock_query(cl, "held-across-kill", 0, 0, &info));
  CHECK(!info.held, "the lock is still held after its release");
  synod_client_free(holder);
  synod_client_free(cl);
  printf("ok SIGKILL of all replicas keeps acknowledged writes, a lock "
         "holder and its session\n");
}

/* A follower that stops reading (SIGSTOP) holds nobody up: the leader
 * commits with the other one and serves every request; after SIGCONT the
 * follower catches up. Long names make the appends it does not read add
 * up (about 600 KB). */
static void scenario_stopped_follower(struct cluster *c) {
  int l = cluster_wait_leader(c, 30000);
  int f = (l + 1) % c->n;
  struct synod_client *cl = client(c, 10000);
  struct synod_status st;
  char name[251];
  int64_t v;
  cluster_signal(c, f, SIGSTOP);
  for (int i = 0; i < 2000; i++) {
    snprintf(name, sizeof name, "stopped-%04d-%0236d", i % 100, 0);
    CHECK(synod_counter_add(cl, name, 1, 0, &v) == 0,
          "add %d with %s stopped: %s", i, c->nodes[f].name,
          synod_client_errmsg());
  }
  CHECK(v == 20, "the last add gave %" PRId64 ", want 20", v);
  CHECK(cluster_status(c, l, 0, 10000, &st) == 0, "leader status");
  uint64_t commit = st.commit_index;
  synod_status_free(&st);
  cluster_signal(c, f, SIGCONT);
  uint64_t deadline = test_now_ms() + 30000, applied = 0;
  while (applied < commit) {
    CHECK(test_now_ms() < deadline,
          "%s applied %" PRIu64 " of %" PRIu64 " 30 s after SIGCONT",
          c->nodes[f].name, applied, commit);
    if (cluster_status(c, f, 0, 2000, &st) == 0) {
      applied = st.applied_index;
      synod_status_free(&st);
    }
  }
  synod_client_free(cl);
  printf("ok 2000 adds while %s was stopped; it caught up to %" PRIu64
         " after SIGCONT\n",
         c->nodes[f].name, commit);
}

/* What a client's leader_cb last reported. */
struct leader_seen {
  pthread_mutex_t mu;
  pthread_cond_t changed;
  char name[64];
  uint64_t term;
};

static void on_leader(void *arg, const char *name, const char *address,
                      uint64_t term) {
  struct leader_seen *seen = arg;
  (void)address;
  pthread_mutex_lock(&seen->mu);
  snprintf(seen->name, sizeof seen->name, "%s", name);
  seen->term = term;
  pthread_cond_broadcast(&seen->changed);
  pthread_mutex_unlock(&seen->mu);
}

/* Waits up to timeout_ms for leader_cb to report the leader `name` (NULL:
 * any but `not_name`) in term min_term or later; returns its term. (A
 * redirect reports the last term the client heard of, 0 at first; a
 * pushed LeaderChanged event, the new one.) */
static uint64_t wait_leader_seen(struct leader_seen *seen, const char *name,
                                 const char *not_name, uint64_t min_term,
                                 uint32_t timeout_ms, char *got, size_t len) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += timeout_ms / 1000;
  deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&seen->mu);
  for (;;) {
    snprintf(got, len, "%s", seen->name);
    if (seen->term >= min_term && got[0] != '\0' &&
        (name == NULL || strcmp(got, name) == 0) &&
        (not_name == NULL || strcmp(got, not_name) != 0)) {
      break;
    }
    int rv = pthread_cond_timedwait(&seen->changed, &seen->mu, &deadline);
    CHECK(rv == 0, "leader_cb: still '%s' in term %" PRIu64 " after %u ms", got,
          seen->term, timeout_ms);
  }
  uint64_t term = seen->term;
  pthread_mutex_unlock(&seen->mu);
  return term;
}

static void scenario_sigterm_leader_hands_over(struct cluster *c) {
  struct leader_seen seen = {.mu = PTHREAD_MUTEX_INITIALIZER,
                             .changed = PTHREAD_COND_INITIALIZER};
  struct synod_options o;
  struct synod_client *w;
  char got[64];
  int64_t v;
  synod_options_init(&o);
  o.endpoints = c->endpoints;
  o.client_name = "watcher";
  o.request_timeout_ms = 30000;
  o.leader_cb = on_leader;
  o.cb_arg = &seen;
  CHECK(synod_client_new(&o, &w) == 0, "%s", synod_client_errmsg());
  OK(synod_counter_add(w, "handover", 1, 0, &v));
  int l = cluster_wait_leader(c, 30000);
  const char *old = c->nodes[l].name;
  uint64_t term0 =
      wait_leader_seen(&seen, old, NULL, 0, 10000, got, sizeof got);

  kill(c->nodes[l].pid, SIGTERM);
  int code = test_wait(c->nodes[l].pid, 30000, old);
  c->nodes[l].pid = 0;
  CHECK(code == 0, "%s exited %d on SIGTERM (log %s)", old, code,
        c->nodes[l].log);
  char *log = test_slurp(c->nodes[l].log);
  CHECK(strstr(log, "handing leadership to") != NULL,
        "%s led but did not hand leadership over (log %s)", old,
        c->nodes[l].log);
  free(log);
  /* No request meanwhile: the news comes to the client by itself. */
  uint64_t term1 =
      wait_leader_seen(&seen, NULL, old, term0 + 1, 10000, got, sizeof got);
  OK(synod_counter_add(w, "handover", 1, 0, &v));
  CHECK(v == 2, "handover counter is %" PRId64 " after two adds", v);
  synod_client_free(w);
  printf("ok SIGTERM of the leader %s: exit 0, leadership handed to %s "
         "(term %" PRIu64 " -> %" PRIu64 "), the client told\n",
         old, got, term0, term1);
}

int main(void) {
  char synodd[PATH_MAX];
  struct cluster c;
  setvbuf(stdout, NULL, _IONBF, 0);
  cluster_synodd_or_skip(synodd, sizeof synodd);
  cluster_start(&c, 3, synodd);
  cluster_wait_leader(&c, 30000);
  scenario_basics(&c);
  scenario_group_commit(&c);
  scenario_adders_under_leader_kills(&c);
  scenario_kill_all_keeps_acknowledged(&c);
  scenario_stopped_follower(&c);
  scenario_sigterm_leader_hands_over(&c);
  cluster_stop(&c);
  printf("PASS\n");
  return 0;
}
