/* libsynod against 3 real synodd processes: locks, counters, elections;
 * 4 processes adding 1,000 each to one counter end at exactly 4,000 while
 * the leader is SIGKILLed twice and restarted; SIGKILL of every replica
 * loses nothing that was acknowledged. Exit 77 (skipped) while synodd
 * does not accept --peers. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
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

/* One adder process: its own client, ADDS increments, exit 0 if all
 * succeeded. Timeouts are long: a failover must not fail a request. */
static void adder(const struct cluster *c) {
  struct synod_client *cl = client(c, 60000);
  for (int i = 0; i < ADDS; i++) {
    if (synod_counter_add(cl, "total", 1, 0, NULL) != 0) {
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

static void scenario_adders_under_leader_kills(struct cluster *c) {
  struct synod_client *watch = client(c, 30000);
  pid_t pids[ADDERS];
  fflush(NULL);
  for (int i = 0; i < ADDERS; i++) {
    pids[i] = fork();
    CHECK(pids[i] >= 0, "fork");
    if (pids[i] == 0) {
      adder(c);
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
  synod_client_free(cl);
  printf("ok SIGKILL of all replicas keeps acknowledged writes\n");
}

int main(void) {
  char synodd[PATH_MAX], why[256];
  struct cluster c;
  setvbuf(stdout, NULL, _IONBF, 0);
  test_binary("SYNODD", "synodd", synodd, sizeof synodd);
  if (!cluster_synodd_ready(synodd, why, sizeof why)) {
    printf("SKIP: %s\n", why);
    return SKIP_EXIT;
  }
  cluster_start(&c, 3, synodd);
  cluster_wait_leader(&c, 30000);
  scenario_basics(&c);
  scenario_adders_under_leader_kills(&c);
  scenario_kill_all_keeps_acknowledged(&c);
  cluster_stop(&c);
  printf("PASS\n");
  return 0;
}
