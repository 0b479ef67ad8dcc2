/* libsynod's subscriptions against 3 real synodd processes: a subscriber
 * starting on each replica (and a prefix subscriber) while two publishers
 * publish 2,000 messages in batches of 1 to 4, and the test SIGKILLs the
 * leader twice (restarting it) and restarts a follower; every subscriber
 * gets every offset 1..2,000 exactly once, in order, each publisher's
 * messages in its own order. Then synodctl end to end: subscribe --cursor
 * in two runs gives the channel once, and a subscriber below the
 * retained window is told SYNOD_ECOMPACTED and where to go on. Exit 77
 * (skipped) while synodd does not accept --peers. */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cluster.h"
#include "synod.h"

#define PUBLISHERS 2
#define PER_PUBLISHER 1000
#define TOTAL (PUBLISHERS * PER_PUBLISHER)
#define SUBSCRIBERS 4 /* one per replica, and a prefix one */
#define CHANNEL "feed"

#define OK(call) CHECK((call) == 0, "%s", synod_client_errmsg())

static char synodctl[PATH_MAX];
static char dir[PATH_MAX];

static struct synod_client *client(const char *endpoints, bool in_order,
                                   uint32_t timeout_ms) {
  struct synod_options o;
  struct synod_client *c;
  synod_options_init(&o);
  o.endpoints = endpoints;
  o.endpoints_in_order = in_order;
  o.client_name = "client subscribe test";
  o.request_timeout_ms = timeout_ms;
  CHECK(synod_client_new(&o, &c) == 0, "%s", synod_client_errmsg());
  return c;
}

/* ------------------------------------------------------------ publishers */

struct publisher {
  const struct cluster *c;
  int id;
  atomic_int acked; /* messages */
  int failed;
};

static void *publisher_main(void *arg) {
  struct publisher *p = arg;
  struct synod_client *c = client(p->c->endpoints, false, 30000);
  for (int k = 0; k < PER_PUBLISHER;) {
    char msgs[4][32];
    const void *ptrs[4];
    size_t lens[4];
    int n = 1 + (k / 7) % 4; /* batches of 1..4: prefix entries of many */
    n = n < PER_PUBLISHER - k ? n : PER_PUBLISHER - k;
    for (int i = 0; i < n; i++) {
      lens[i] =
          (size_t)snprintf(msgs[i], sizeof msgs[i], "p%d-%d", p->id, k + i);
      ptrs[i] = msgs[i];
    }
    if (synod_channel_publish(c, CHANNEL, ptrs, lens, (size_t)n, NULL, 0,
                              NULL) == 0) {
      atomic_fetch_add(&p->acked, n);
    } else {
      fprintf(stderr, "publisher %d, messages %d..%d: %s\n", p->id, k,
              k + n - 1, synod_client_errmsg());
      p->failed++;
    }
    k += n;
  }
  synod_client_free(c);
  return NULL;
}

/* ----------------------------------------------------------- subscribers */

struct subscriber {
  int id;
  char endpoints[CLUSTER_NODES_MAX * 32]; /* its replica first */
  bool prefix;
  uint32_t window;
  bool slow;           /* takes its time: holds its window, catches up */
  atomic_int received; /* messages taken */
  atomic_bool started;
  char failure[512]; /* "" while all is well */
};

/* Checks m as the k-th message (from 0) of the subscription. */
static void subscriber_check(struct subscriber *s, uint64_t k,
                             const struct synod_channel_message *m,
                             int last[PUBLISHERS], uint64_t *last_index) {
  int p, i;
  if (m->offset != k + 1) {
    snprintf(s->failure, sizeof s->failure,
             "message %" PRIu64 " has offset %" PRIu64 " (a gap or a "
             "duplicate)",
             k, m->offset);
  } else if (strcmp(m->channel, CHANNEL) != 0) {
    snprintf(s->failure, sizeof s->failure, "offset %" PRIu64 ": channel %s",
             m->offset, m->channel);
  } else if (sscanf(m->data, "p%d-%d", &p, &i) != 2 || p < 0 ||
             p >= PUBLISHERS || i != last[p] + 1) {
    snprintf(s->failure, sizeof s->failure,
             "offset %" PRIu64 ": '%s' after publisher message %d", m->offset,
             (const char *)m->data, p >= 0 && p < PUBLISHERS ? last[p] : -2);
  } else if (m->index < *last_index) {
    snprintf(s->failure, sizeof s->failure,
             "offset %" PRIu64 ": index %" PRIu64 " after %" PRIu64, m->offset,
             m->index, *last_index);
  } else {
    last[p] = i;
    *last_index = m->index;
  }
}

static void *subscriber_main(void *arg) {
  struct subscriber *s = arg;
  struct synod_client *c = client(s->endpoints, true, 20000);
  struct synod_subscribe_options o = {.channel = s->prefix ? "fee" : CHANNEL,
                                      .prefix = s->prefix,
                                      .from = SYNOD_FROM_FIRST,
                                      .window = s->window};
  struct synod_subscription *sub;
  int last[PUBLISHERS] = {-1, -1};
  uint64_t last_index = 0;
  int rv = synod_subscribe(c, &o, 0, &sub, NULL);
  if (rv != 0) {
    snprintf(s->failure, sizeof s->failure, "subscribe: %s",
             synod_client_errmsg());
    synod_client_free(c);
    return NULL;
  }
  atomic_store(&s->started, true);
  for (uint64_t k = 0; k < TOTAL && s->failure[0] == '\0'; k++) {
    struct synod_channel_message m;
    rv = synod_subscription_next(sub, 60000, &m);
    if (rv != 0) {
      snprintf(s->failure, sizeof s->failure,
               "after %" PRIu64 " messages: %s (%s)", k, synod_client_errmsg(),
               synod_errname(rv));
      break;
    }
    subscriber_check(s, k, &m, last, &last_index);
    atomic_fetch_add(&s->received, 1);
    if (s->slow && k % 8 == 0) {
      usleep(2000); /* a slow consumer, not a synchronisation */
    }
  }
  synod_subscription_close(sub);
  synod_client_free(c);
  return NULL;
}

/* The subscriptions replica i serves, from its /metrics (gauge
 * synod_channel_subscriptions); -1 if it cannot be read. */
static int subscriptions_on(const struct cluster *c, int i) {
  struct sockaddr_in sa = {.sin_family = AF_INET};
  char buf[65536], *at;
  unsigned port;
  size_t n = 0;
  ssize_t k;
  int fd, v = -1;
  if (sscanf(c->nodes[i].http, "127.0.0.1:%u", &port) != 1) {
    return -1;
  }
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    if (fd >= 0) {
      close(fd);
    }
    return -1;
  }
  static const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
  if (write(fd, req, sizeof req - 1) == (ssize_t)(sizeof req - 1)) {
    while (n < sizeof buf - 1 &&
           (k = read(fd, buf + n, sizeof buf - 1 - n)) > 0) {
      n += (size_t)k;
    }
  }
  close(fd);
  buf[n] = '\0';
  at = strstr(buf, "\nsynod_channel_subscriptions ");
  if (at != NULL) {
    sscanf(at, "\nsynod_channel_subscriptions %d", &v);
  }
  return v;
}

static void wait_acked(struct publisher *pubs, int target) {
  uint64_t deadline = test_now_ms() + 120000;
  while (atomic_load(&pubs[0].acked) + atomic_load(&pubs[1].acked) < target) {
    CHECK(test_now_ms() < deadline, "publishers stuck below %d", target);
    usleep(5000);
  }
}

static void scenario_failover(struct cluster *c) {
  struct subscriber subs[SUBSCRIBERS];
  struct publisher pubs[PUBLISHERS];
  pthread_t sub_threads[SUBSCRIBERS], pub_threads[PUBLISHERS];
  for (int i = 0; i < SUBSCRIBERS; i++) {
    int home = i % c->n;
    struct subscriber *s = &subs[i];
    memset(s, 0, sizeof *s);
    s->id = i;
    s->prefix = i == 3;
    s->window = i == 2 ? 16 : 64;
    s->slow = i == 2;
    snprintf(s->endpoints, sizeof s->endpoints, "%s", c->nodes[home].client);
    for (int j = 1; j < c->n; j++) {
      size_t len = strlen(s->endpoints);
      snprintf(s->endpoints + len, sizeof s->endpoints - len, ",%s",
               c->nodes[(home + j) % c->n].client);
    }
    CHECK(pthread_create(&sub_threads[i], NULL, subscriber_main, s) == 0,
          "thread");
  }
  for (int i = 0; i < SUBSCRIBERS; i++) {
    uint64_t deadline = test_now_ms() + 20000;
    while (!atomic_load(&subs[i].started) && subs[i].failure[0] == '\0') {
      CHECK(test_now_ms() < deadline, "subscriber %d did not start", i);
      usleep(5000);
    }
    CHECK(subs[i].failure[0] == '\0', "subscriber %d: %s", i, subs[i].failure);
  }
  /* Placement: each replica serves the subscribers that start there
   * (the prefix one starts on the first). */
  for (int i = 0; i < c->n; i++) {
    int n = subscriptions_on(c, i),
        want = i == (SUBSCRIBERS - 1) % c->n ? 2 : 1;
    CHECK(n == want, "%s serves %d subscriptions, want %d", c->nodes[i].name, n,
          want);
  }
  /* And synodctl, a process of its own, subscribed through it all. */
  char ctl_out[PATH_MAX + 32], count[16];
  snprintf(ctl_out, sizeof ctl_out, "%s/ctl_failover.out", dir);
  snprintf(count, sizeof count, "%d", TOTAL);
  char *argv[] = {synodctl,    "--endpoints", (char *)c->endpoints,
                  "subscribe", CHANNEL,       "--from",
                  "1",         "--count",     count,
                  "--json",    NULL};
  pid_t ctl_pid = test_spawn(argv, ctl_out);
  for (int i = 0; i < PUBLISHERS; i++) {
    pubs[i] = (struct publisher){.c = c, .id = i};
    CHECK(pthread_create(&pub_threads[i], NULL, publisher_main, &pubs[i]) == 0,
          "thread");
  }
  for (int kill = 0; kill < 2; kill++) {
    wait_acked(pubs, (kill + 1) * TOTAL / 4);
    int leader = cluster_wait_leader(c, 20000);
    cluster_signal(c, leader, SIGKILL);
    printf("SIGKILLed the leader %s after %d acknowledged messages\n",
           c->nodes[leader].name,
           atomic_load(&pubs[0].acked) + atomic_load(&pubs[1].acked));
    cluster_wait_leader(c, 20000);
    cluster_restart(c, leader);
  }
  wait_acked(pubs, 3 * TOTAL / 4);
  int leader = cluster_wait_leader(c, 20000), follower = (leader + 1) % c->n;
  cluster_signal(c, follower, SIGTERM);
  cluster_restart(c, follower);
  printf("restarted the follower %s\n", c->nodes[follower].name);
  for (int i = 0; i < PUBLISHERS; i++) {
    pthread_join(pub_threads[i], NULL);
    CHECK(pubs[i].failed == 0, "publisher %d: %d publishes failed", i,
          pubs[i].failed);
  }
  for (int i = 0; i < SUBSCRIBERS; i++) {
    pthread_join(sub_threads[i], NULL);
    CHECK(subs[i].failure[0] == '\0', "subscriber %d (%s%s): %s", i,
          subs[i].prefix ? "prefix, " : "", subs[i].endpoints, subs[i].failure);
    CHECK(atomic_load(&subs[i].received) == TOTAL, "subscriber %d got %d", i,
          atomic_load(&subs[i].received));
  }
  int status = 0;
  CHECK(test_wait_for(ctl_pid, 30000, &status) && status == 0,
        "synodctl subscribe: exit %d (see %s)", status, ctl_out);
  char *text = test_slurp(ctl_out);
  int next = 1;
  for (char *line = strtok(text, "\n"); line != NULL;
       line = strtok(NULL, "\n")) {
    if (line[0] != '{') {
      continue; /* stderr's notes, if any */
    }
    const char *o = strstr(line, "\"offset\":");
    CHECK(o != NULL && strtol(o + 9, NULL, 10) == next,
          "synodctl subscribe: '%s', want offset %d", line, next);
    next++;
  }
  free(text);
  CHECK(next == TOTAL + 1, "synodctl subscribe printed %d messages", next - 1);
  printf("ok %d subscribers and synodctl subscribe got offsets 1..%d "
         "exactly once, in order, through 2 leader kills and a restart\n",
         SUBSCRIBERS, TOTAL);
}

/* ------------------------------------------------------------ synodctl */

/* Runs synodctl ARGS against the cluster; output (and errors) in *out. */
static int ctl(const struct cluster *c, const char *name, const char *args,
               char **out) {
  char cmd[2 * PATH_MAX + 512], path[PATH_MAX + 64];
  int n = snprintf(path, sizeof path, "%s/%s", dir, name);
  CHECK(n > 0 && (size_t)n < sizeof path, "path too long");
  n = snprintf(cmd, sizeof cmd, "'%s' --endpoints %s %s", synodctl,
               c->endpoints, args);
  CHECK(n > 0 && (size_t)n < sizeof cmd, "command too long");
  int rv = test_sh(cmd, path, 120000);
  *out = test_slurp(path);
  return rv;
}

/* Two runs with one cursor print the whole channel once; a subscriber
 * below the window exits 1 naming SYNOD_ECOMPACTED and the way on. */
static void scenario_synodctl(const struct cluster *c) {
  char *a, *b, *out;
  CHECK(ctl(c, "run1", "subscribe " CHANNEL " --cursor ctl --count 1500", &a) ==
            0,
        "first run: %s", a);
  CHECK(ctl(c, "run2", "subscribe " CHANNEL " --cursor ctl --count 500", &b) ==
            0,
        "second run: %s", b);
  int last[PUBLISHERS] = {-1, -1}, lines = 0;
  for (char *text = a; text != NULL; text = text == a ? b : NULL) {
    for (char *line = strtok(text, "\n"); line != NULL;
         line = strtok(NULL, "\n")) {
      int p, i;
      CHECK(sscanf(line, "p%d-%d", &p, &i) == 2 && p >= 0 && p < PUBLISHERS &&
                i == last[p] + 1,
            "line %d: '%s'", lines, line);
      last[p] = i;
      lines++;
    }
  }
  CHECK(lines == TOTAL, "the two runs printed %d lines", lines);
  free(a);
  free(b);
  CHECK(ctl(c, "cursor", "channel cursor " CHANNEL " ctl", &out) == 0 &&
            strncmp(out, "2000 index ", 11) == 0,
        "cursor: %s", out);
  free(out);
  CHECK(ctl(c, "create", "channel create small --max-messages 3", &out) == 0,
        "%s", out);
  free(out);
  CHECK(ctl(c, "publish1", "publish small a b c", &out) == 0, "%s", out);
  free(out);
  CHECK(ctl(c, "publish2", "publish small d e", &out) == 0, "%s", out);
  free(out);
  CHECK(ctl(c, "compacted", "subscribe small --from 1 --count 1", &out) == 1,
        "below the window: %s", out);
  CHECK(strstr(out, "SYNOD_ECOMPACTED") != NULL &&
            strstr(out, "first available is offset 3") != NULL &&
            strstr(out, "--from") != NULL,
        "below the window: '%s'", out);
  free(out);
  printf("ok synodctl subscribe --cursor in two runs, ECOMPACTED\n");
}

/* synodctl's channel commands end to end. 2,500 lines of stdin under one
 * --id go in three batches at offsets 1..2500 (the same id on every
 * batch had the server drop the second and third as retries of the
 * first, and exit 0); the same command again appends nothing and says so
 * for each batch. Then read, info, list and delete. */
static void scenario_synodctl_channel(const struct cluster *c) {
  char path[PATH_MAX + 64], args[PATH_MAX + 128], *out;
  snprintf(path, sizeof path, "%s/lines.txt", dir);
  FILE *f = fopen(path, "w");
  CHECK(f != NULL, "cannot create %s", path);
  for (int i = 1; i <= 2500; i++) {
    fprintf(f, "line-%d\n", i);
  }
  CHECK(fclose(f) == 0, "cannot write %s", path);
  snprintf(args, sizeof args, "publish lines --id import-7 - < '%s'", path);
  static const char *const want[3] = {"1 1000 index ", "1001 2000 index ",
                                      "2001 2500 index "};
  for (int run = 0; run < 2; run++) {
    CHECK(ctl(c, run == 0 ? "stdin1" : "stdin2", args, &out) == 0,
          "publish - (run %d): %s", run + 1, out);
    char *line = strtok(out, "\n");
    for (int b = 0; b < 3; b++, line = strtok(NULL, "\n")) {
      CHECK(line != NULL && strncmp(line, want[b], strlen(want[b])) == 0,
            "run %d, batch %d: '%s'", run + 1, b + 1, line ? line : "(none)");
      CHECK((strstr(line, "(duplicate)") != NULL) == (run == 1),
            "run %d, batch %d: '%s'", run + 1, b + 1, line);
    }
    CHECK(line == NULL, "run %d: an extra line '%s'", run + 1, line);
    free(out);
  }
  CHECK(ctl(c, "info", "channel info lines", &out) == 0 &&
            strstr(out, "offsets 1..2501  2500 messages") != NULL,
        "info: '%s'", out);
  free(out);
  CHECK(ctl(c, "read", "channel read lines --from 2499 --count 5", &out) == 0 &&
            strcmp(out, "2499\tline-2499\n2500\tline-2500\n") == 0,
        "read: '%s'", out);
  free(out);
  CHECK(ctl(c, "list", "channel list", &out) == 0 &&
            strstr(out, "lines  offsets 1..2501") != NULL,
        "list: '%s'", out);
  free(out);
  CHECK(ctl(c, "delete", "channel delete lines", &out) == 0, "delete: %s", out);
  free(out);
  CHECK(ctl(c, "gone", "channel info lines", &out) == 1 &&
            strstr(out, "SYNOD_ENOTFOUND") != NULL,
        "info after delete: '%s'", out);
  free(out);
  printf("ok synodctl publish - with --id in 3 batches, retried; channel "
         "read, info, list, delete\n");
}

static uint64_t publish_n(struct synod_client *cl, const char *ch, int n) {
  const void *p[8];
  size_t l[8];
  for (int i = 0; i < n; i++) {
    p[i] = "x";
    l[i] = 1;
  }
  struct synod_channel_published out;
  OK(synod_channel_publish(cl, ch, p, l, (size_t)n, NULL, 0, &out));
  return out.index;
}

/* A libsynod subscription pinned to one follower, which is SIGKILLed;
 * meanwhile its channel is deleted and created again with more messages
 * than it had; the follower comes back and the library resumes there.
 * It must end with SYNOD_ENOTFOUND, not go on in the new channel at its
 * old offset: after a message (known_index: the message's log index),
 * and before any (the reply's created_index; the review's test). */
static void scenario_recreated(struct cluster *c, bool took_one) {
  const char *ch = took_one ? "kz1" : "kz0";
  struct synod_options o;
  struct synod_client *cl, *sc;
  synod_options_init(&o);
  o.endpoints = c->endpoints;
  OK(synod_client_new(&o, &cl));
  publish_n(cl, ch, 3); /* offsets 1..3 */
  int f = (cluster_wait_leader(c, 20000) + 1) % c->n;
  synod_options_init(&o);
  o.endpoints = c->nodes[f].client; /* only the follower */
  o.request_timeout_ms = 20000;
  o.stay_on_replica = true;
  OK(synod_client_new(&o, &sc));
  struct synod_subscribe_options so = {.channel = ch,
                                       .from = took_one ? SYNOD_FROM_OFFSET
                                                        : SYNOD_FROM_NEXT,
                                       .offset = 3};
  struct synod_subscription *sub;
  struct synod_subscription_start st;
  struct synod_channel_message m;
  OK(synod_subscribe(sc, &so, 0, &sub, &st));
  if (took_one) {
    OK(synod_subscription_next(sub, 10000, &m));
    CHECK(m.offset == 3, "took offset %" PRIu64, m.offset);
  }
  cluster_signal(c, f, SIGKILL);
  OK(synod_channel_delete(cl, ch, 0, NULL));
  publish_n(cl, ch, 5); /* offsets 1..5 of a new channel */
  cluster_restart(c, f);
  int rv = synod_subscription_next(sub, 30000, &m);
  CHECK(rv == SYNOD_ENOTFOUND,
        "%s: the resume gave %s (offset %" PRIu64 " index %" PRIu64
        "), not SYNOD_ENOTFOUND: %s",
        ch, synod_errname(rv), rv == 0 ? m.offset : 0, rv == 0 ? m.index : 0,
        synod_client_errmsg());
  printf("ok a channel deleted and created again while %s was away ends "
         "the subscription (%s): %s\n",
         c->nodes[f].name, took_one ? "after a message" : "before any",
         synod_client_errmsg());
  synod_subscription_close(sub);
  synod_client_free(sc);
  synod_client_free(cl);
  cluster_wait_leader(c, 20000);
}

int main(void) {
  char synodd[PATH_MAX], why[256];
  setvbuf(stdout, NULL, _IONBF, 0);
  test_binary("SYNODD", "synodd", synodd, sizeof synodd);
  test_binary("SYNODCTL", "synodctl", synodctl, sizeof synodctl);
  if (!cluster_synodd_ready(synodd, why, sizeof why)) {
    printf("skipped: %s\n", why);
    return SKIP_EXIT;
  }
  test_tmpdir("client_subscribe", dir, sizeof dir);
  struct cluster c;
  cluster_start(&c, 3, synodd);
  cluster_wait_leader(&c, 20000);
  scenario_failover(&c);
  scenario_synodctl(&c);
  scenario_synodctl_channel(&c);
  scenario_recreated(&c, true);
  scenario_recreated(&c, false);
  cluster_stop(&c);
  printf("ok client subscribe\n");
  return 0;
}
