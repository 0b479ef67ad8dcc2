/* synod-bench-groups: synod's side. A 3-replica cluster (the synodd built
 * beside this program, through the integration harness) and libsynod's
 * async group API, every client on one libuv loop in this thread: members
 * (synod_async_group_member_join, one client and session each, member i
 * starting at replica i mod 3) record the send -> delivery latency of
 * every message (its send time, CLOCK_MONOTONIC, is in the message) and
 * the time each view reaches them; senders are clients of their own.
 * Every send is durable: acknowledged once committed (in the log of a
 * majority, each having written it with fdatasync). */
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "cluster.h"
#include "synod.h"
#include "synod_bench_groups.h"

#define SY_MEMBERS_MAX 80
#define SY_SENDERS_MAX 128
#define SY_LAT_MAX (4u * 1000 * 1000)
#define SY_MEMBER_LAT_MAX (1u << 20)
#define SY_SEND_RING 64 /* > SYNOD_INFLIGHT_MAX */

struct sy_member {
  struct synod_async *a;
  struct synod_async_group *g;
  char name[32];
  bool ready, ended, closed;
  int status;
  uint32_t view_count; /* members in the latest view it got */
  uint64_t view_ns;    /* when it got it */
  uint64_t last_offset;
  uint64_t delivered, in_window;
  uint64_t after_state; /* messages past the state's offset (joiner) */
  uint64_t state_offset;
  size_t state_len;
  uint64_t ready_ns, last_msg_ns, gap_max_ns;
  uint32_t *lat_us; /* this member's share of sy.lat_us's samples */
  uint64_t lat_n;
};

struct sy_sender {
  struct synod_async *a;
  struct sy_member *via; /* send from this member's handle, or NULL */
  bool closed;
  int inflight, inflight_max;
  uint64_t sent, acked, errors, next_ns;
  uint64_t sent_ns[SY_SEND_RING]; /* by seq mod the ring: send times */
};

static struct {
  struct cluster c;
  bool started;
  uv_loop_t loop;
  bool loop_up;
  uv_timer_t tick;
  char group[64];
  /* the current run */
  uint32_t run_id;
  size_t size;
  double rate; /* paced sender: msg/s; 0: closed loop */
  uint64_t t_start, t_measure, t_end;
  bool gap_on;
  struct sy_sender snd[SY_SENDERS_MAX];
  int nsnd;
  uint32_t *lat_us;
  uint64_t lat_n;
  uint32_t *ack_us; /* send -> acknowledgement */
  uint64_t ack_n;
  uint8_t buf[8192];
  char first_error[GB_ERR_BYTES];
  uint64_t errors;
} sy;

struct msg_head {
  uint64_t send_ns;
  uint32_t run_id;
  uint32_t seq;
};

static void sy_error(const char *what, int status) {
  sy.errors++;
  if (!sy.first_error[0])
    snprintf(sy.first_error, sizeof sy.first_error, "%s: %s", what,
             synod_strerror(status));
}

/* =============================================================== loop */

static void tick_cb(uv_timer_t *t);

/* Runs the loop until done(arg) or timeout_ms; 0, or -1 on timeout. The
 * 1 ms tick paces senders and bounds each turn. */
static int sy_wait(bool (*done)(void *), void *arg, unsigned timeout_ms) {
  uint64_t until = gb_now_ns() + (uint64_t)timeout_ms * 1000000u;
  while (!done(arg)) {
    if (gb_now_ns() >= until)
      return -1;
    uv_run(&sy.loop, UV_RUN_ONCE);
  }
  return 0;
}

static bool never(void *arg) {
  (void)arg;
  return false;
}

static void sy_run_for(unsigned ms) {
  sy_wait(never, NULL, ms);
}

static int async_new(int first, uint32_t ttl_ms, struct synod_async **out) {
  char eps[CLUSTER_NODES_MAX * 32 + 8] = "";
  for (int k = 0; k < sy.c.n; k++) {
    const char *ep = sy.c.nodes[(first + k) % sy.c.n].client;
    size_t len = strlen(eps);
    snprintf(eps + len, sizeof eps - len, "%s%s", k ? "," : "", ep);
  }
  struct synod_options o;
  synod_options_init(&o);
  o.endpoints = eps;
  o.endpoints_in_order = true;
  o.client_name = "synod-bench-groups";
  o.session_ttl_ms = ttl_ms;
  return synod_async_new(&sy.loop, &o, out);
}

static void closed_cb(void *arg) {
  *(bool *)arg = true;
}

/* Clients closed without a flag of their own: counted until closed. */
static int closing;

static void counted_closed_cb(void *arg) {
  (void)arg;
  closing--;
}

static void close_counted(struct synod_async *a) {
  closing++;
  synod_async_close(a, counted_closed_cb, NULL);
}

static bool all_closed(void *arg) {
  (void)arg;
  return closing == 0;
}

/* ============================================================ members */

static void deliver(struct sy_member *m, const struct synod_group_item *it) {
  struct msg_head h;
  uint64_t t = gb_now_ns();
  m->last_offset = it->offset;
  if (m->state_offset && it->offset > m->state_offset)
    m->after_state++;
  if (sy.gap_on && m->last_msg_ns && t - m->last_msg_ns > m->gap_max_ns)
    m->gap_max_ns = t - m->last_msg_ns;
  m->last_msg_ns = t;
  if (it->len < sizeof h)
    return;
  memcpy(&h, it->data, sizeof h);
  if (h.run_id != sy.run_id)
    return;
  m->delivered++;
  if (t < sy.t_measure || t >= sy.t_end)
    return;
  m->in_window++;
  if (t <= h.send_ns)
    return;
  if (sy.lat_n < SY_LAT_MAX)
    sy.lat_us[sy.lat_n++] = (uint32_t)((t - h.send_ns) / 1000);
  if (m->lat_us != NULL && m->lat_n < SY_MEMBER_LAT_MAX)
    m->lat_us[m->lat_n++] = (uint32_t)((t - h.send_ns) / 1000);
}

static void m_ready(void *arg, int status, const struct synod_group_ready *r) {
  struct sy_member *m = arg;
  m->ready_ns = gb_now_ns();
  m->status = status;
  if (status != 0) {
    m->ended = true;
    sy_error("group join", status);
    return;
  }
  m->ready = true;
  m->view_count = (uint32_t)r->view.count;
  m->view_ns = m->ready_ns;
  m->state_len = r->state_len;
  m->state_offset = r->state_offset;
  m->last_offset = r->state_offset;
}

static void m_view(void *arg, const struct synod_group_view *v) {
  struct sy_member *m = arg;
  m->view_count = (uint32_t)v->count;
  m->view_ns = gb_now_ns();
}

static void m_message(void *arg, const struct synod_group_item *it) {
  deliver(arg, it);
}

static void m_removed(void *arg, int status, const char *errmsg) {
  struct sy_member *m = arg;
  (void)errmsg;
  m->ended = true;
  m->status = status;
}

/* Starts member m's join (client on replica `first`); see sy_wait. */
static int member_start(struct sy_member *m, int first, const char *name,
                        bool want_state, uint32_t ttl_ms) {
  memset(m, 0, sizeof *m);
  snprintf(m->name, sizeof m->name, "%s", name);
  int rv = async_new(first, ttl_ms, &m->a);
  if (rv != 0)
    return rv;
  struct synod_group_join_options o = {.group = sy.group,
                                       .member = m->name,
                                       .want_state = want_state,
                                       .window = 10000};
  struct synod_group_callbacks cbs = {.ready_cb = m_ready,
                                      .view_cb = m_view,
                                      .message_cb = m_message,
                                      .removed_cb = m_removed,
                                      .arg = m};
  return synod_async_group_member_join(m->a, &o, &cbs, &m->g);
}

struct members_wait {
  struct sy_member *m;
  int n;
  uint32_t count; /* every member's view has this many */
};

static bool members_at(void *arg) {
  struct members_wait *w = arg;
  for (int i = 0; i < w->n; i++)
    if (!w->m[i].ready || w->m[i].view_count != w->count)
      return false;
  return true;
}

/* The latest time one of them got the view of `count`. */
static uint64_t members_view_ns(struct sy_member *m, int n) {
  uint64_t last = 0;
  for (int i = 0; i < n; i++)
    if (m[i].view_ns > last)
      last = m[i].view_ns;
  return last;
}

static void member_close(struct sy_member *m) {
  if (m->a == NULL)
    return;
  m->closed = false;
  synod_async_close(m->a, closed_cb, &m->closed);
  m->a = NULL;
  m->g = NULL;
}

static bool member_closed(void *arg) {
  struct sy_member *m = arg;
  return m->closed;
}

static void members_close(struct sy_member *m, int n) {
  for (int i = 0; i < n; i++)
    member_close(&m[i]);
  for (int i = 0; i < n; i++)
    sy_wait(member_closed, &m[i], 5000);
}

/* Creates a fresh group of n members (member i on replica i mod 3) and
 * waits until each has the full view. 0, or -1. */
static int group_make(struct sy_member *m, int n, const char *what, int rep) {
  snprintf(sy.group, sizeof sy.group, "gb-%s-%d", what, rep);
  for (int i = 0; i < n; i++) {
    char name[32];
    snprintf(name, sizeof name, "m%d", i);
    int rv = member_start(&m[i], i % 3, name, false, 0);
    if (rv != 0) {
      sy_error("member join", rv);
      return -1;
    }
  }
  struct members_wait w = {m, n, (uint32_t)n};
  return sy_wait(members_at, &w, 30000);
}

/* ============================================================ senders */

static void send_one(struct sy_sender *s);

static void sent_cb(void *arg, int status, const struct synod_group_sent *r) {
  struct sy_sender *s = arg;
  uint64_t t = gb_now_ns();
  uint64_t sent_ns = s->sent_ns[(s->acked + s->errors) % SY_SEND_RING];
  (void)r;
  s->inflight--;
  if (status == 0 && t >= sy.t_measure && t < sy.t_end && sy.ack_n < SY_LAT_MAX)
    sy.ack_us[sy.ack_n++] = (uint32_t)((t - sent_ns) / 1000);
  if (status != 0) {
    s->errors++;
    sy_error("group send", status);
    return;
  }
  s->acked++;
  if (sy.rate <= 0 && gb_now_ns() < sy.t_end)
    send_one(s);
}

static void send_one(struct sy_sender *s) {
  struct msg_head h = {gb_now_ns(), sy.run_id, (uint32_t)s->sent};
  memcpy(sy.buf, &h, sizeof h);
  s->sent_ns[s->sent % SY_SEND_RING] = h.send_ns;
  int rv = s->via ? synod_async_group_member_send(s->a, s->via->g, NULL, sy.buf,
                                                  sy.size, sent_cb, s)
                  : synod_async_group_send(s->a, sy.group, NULL, NULL, sy.buf,
                                           sy.size, sent_cb, s);
  if (rv != 0) {
    s->errors++;
    sy_error("group send", rv);
    return;
  }
  s->sent++;
  s->inflight++;
}

static void tick_cb(uv_timer_t *t) {
  (void)t;
  uint64_t now = gb_now_ns();
  if (sy.rate <= 0 || now < sy.t_start || now >= sy.t_end)
    return;
  for (int i = 0; i < sy.nsnd; i++) {
    struct sy_sender *s = &sy.snd[i];
    while (s->next_ns <= now && s->inflight < s->inflight_max) {
      send_one(s);
      s->next_ns += (uint64_t)(1e9 / sy.rate);
    }
  }
}

static bool senders_idle(void *arg) {
  (void)arg;
  for (int i = 0; i < sy.nsnd; i++)
    if (sy.snd[i].inflight > 0)
      return false;
  return true;
}

struct traffic {
  const char *name;
  size_t size;
  double rate; /* > 0: one paced sender (member 0); else closed loops */
  int senders; /* closed loops: clients, each `window` in flight */
  int window;
  /* out */
  double per_s_min, p50, p99;
};

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

/* One traffic run into the group of members m[0..2]. */
static int traffic_run(const struct gb_opts *o, struct sy_member *m,
                       struct traffic *t) {
  sy.run_id++;
  sy.size = t->size;
  sy.rate = t->rate;
  sy.lat_n = sy.ack_n = 0;
  for (int i = 0; i < 3; i++)
    m[i].delivered = m[i].in_window = 0;
  sy.nsnd = t->rate > 0 ? 1 : t->senders;
  memset(sy.snd, 0, sizeof sy.snd);
  for (int i = 0; i < sy.nsnd; i++) {
    struct sy_sender *s = &sy.snd[i];
    s->inflight_max = t->rate > 0 ? SYNOD_INFLIGHT_MAX : t->window;
    if (t->rate > 0) {
      s->a = m[0].a, s->via = &m[0];
    } else if (async_new(i % 3, 0, &s->a) != 0) {
      return -1;
    }
  }
  for (int i = 0; i < 3; i++) {
    m[i].lat_n = 0;
    m[i].lat_us = malloc(SY_MEMBER_LAT_MAX * sizeof *m[i].lat_us);
  }
  sy.t_start = gb_now_ns() + 200000000u; /* sessions open meanwhile */
  sy.t_measure = sy.t_start + (uint64_t)(o->warmup * 1e9);
  sy.t_end = sy.t_measure + (uint64_t)(o->seconds * 1e9);
  for (int i = 0; i < sy.nsnd; i++)
    sy.snd[i].next_ns = sy.t_start;
  sy_run_for((unsigned)((sy.t_start - gb_now_ns()) / 1000000u));
  if (t->rate <= 0)
    for (int i = 0; i < sy.nsnd; i++)
      for (int k = 0; k < t->window; k++)
        send_one(&sy.snd[i]);
  sy_run_for((unsigned)((sy.t_end - gb_now_ns()) / 1000000u) + 1);
  sy_wait(senders_idle, NULL, 20000);
  sy_run_for(300); /* the last deliveries */
  uint64_t sent = 0;
  for (int i = 0; i < sy.nsnd; i++) {
    sent += sy.snd[i].acked;
    if (!sy.snd[i].via) {
      close_counted(sy.snd[i].a);
      sy.snd[i].a = NULL;
    }
  }
  t->per_s_min = INFINITY;
  for (int i = 0; i < 3; i++)
    if (m[i].in_window / o->seconds < t->per_s_min)
      t->per_s_min = m[i].in_window / o->seconds;
  qsort(sy.lat_us, sy.lat_n, sizeof *sy.lat_us, cmp_u32);
  t->p50 = sy.lat_n ? sy.lat_us[sy.lat_n / 2] / 1000.0 : NAN;
  t->p99 = sy.lat_n ? sy.lat_us[(sy.lat_n - 1) * 99 / 100] / 1000.0 : NAN;
  /* Where the latency is: each member's own p50, and the senders' wait
   * for the acknowledgement. */
  char each[160] = "";
  for (int i = 0; i < 3; i++) {
    size_t len = strlen(each);
    if (m[i].lat_n > 0)
      qsort(m[i].lat_us, m[i].lat_n, sizeof *m[i].lat_us, cmp_u32);
    snprintf(each + len, sizeof each - len, "%s%.3f", i ? " / " : "",
             m[i].lat_n ? m[i].lat_us[m[i].lat_n / 2] / 1000.0 : NAN);
    free(m[i].lat_us);
    m[i].lat_us = NULL;
  }
  qsort(sy.ack_us, sy.ack_n, sizeof *sy.ack_us, cmp_u32);
  sy.rate = 0;
  sy.nsnd = 0;
  fprintf(stderr,
          "  synod %-10s %.0f msg/s at every member, p50 %.3f ms, p99 %.3f "
          "ms (acked %" PRIu64 "; p50 at members 0-2 %s ms; acknowledged "
          "p50 %.3f ms)\n",
          t->name, t->per_s_min, t->p50, t->p99, sent, each,
          sy.ack_n ? sy.ack_us[sy.ack_n / 2] / 1000.0 : NAN);
  return sent > 0 ? 0 : -1;
}

static void round_traffic(const struct gb_opts *o, struct gb_results *r,
                          int rep) {
  struct sy_member m[3];
  if (group_make(m, 3, "traffic", rep) != 0) {
    r->failures++;
    members_close(m, 3);
    return;
  }
  struct traffic ts[] = {
      {"lat100", 100, o->rate, 1, 1, 0, 0, 0},
      {"lat8k", 8192, o->rate, 1, 1, 0, 0, 0},
      {"flood100", 100, 0, 1, SYNOD_INFLIGHT_MAX, 0, 0, 0},
      {"flood8k", 8192, 0, 1, SYNOD_INFLIGHT_MAX, 0, 0, 0},
      {"senders100", 100, 0, o->senders, 1, 0, 0, 0},
      {"senders8k", 8192, 0, o->senders, 1, 0, 0, 0},
  };
  static const enum gb_metric ms[][2] = {
      {GB_LAT100_P50, GB_LAT100_P99}, {GB_LAT8K_P50, GB_LAT8K_P99},
      {GB_FLOOD100, GB_METRICS},      {GB_FLOOD8K, GB_METRICS},
      {GB_SENDERS100, GB_METRICS},    {GB_SENDERS8K, GB_METRICS}};
  for (size_t k = 0; k < sizeof ts / sizeof ts[0]; k++) {
    if (traffic_run(o, m, &ts[k]) != 0) {
      r->failures++;
      continue;
    }
    if (ms[k][1] != GB_METRICS) {
      gb_record(r, GB_SYNOD, ms[k][0], ts[k].p50);
      gb_record(r, GB_SYNOD, ms[k][1], ts[k].p99);
    } else {
      gb_record(r, GB_SYNOD, ms[k][0], ts[k].per_s_min);
    }
  }
  members_close(m, 3);
}

/* ============================================================== views */

struct join_wait {
  bool done;
  int status;
  uint64_t ns;
};

static void joined_cb(void *arg, int status,
                      const struct synod_group_joined *j) {
  struct join_wait *w = arg;
  (void)j;
  w->done = true, w->status = status, w->ns = gb_now_ns();
}

static void left_cb(void *arg, int status, const struct synod_group_left *l) {
  struct join_wait *w = arg;
  (void)l;
  w->done = true, w->status = status, w->ns = gb_now_ns();
}

static bool join_done(void *arg) {
  return ((struct join_wait *)arg)->done;
}

/* M-1 members, then the M-th joins and leaves again, `changes` times:
 * join call -> view at every member, join answer -> the same, leave call
 * -> view at the others. On the way, the 4th member's join. */
static void round_views(const struct gb_opts *o, struct gb_results *r,
                        int rep) {
  static struct sy_member m[SY_MEMBERS_MAX];
  int n = o->view_members - 1, changes = o->quick ? 3 : 5;
  snprintf(sy.group, sizeof sy.group, "gb-views-%d", rep);
  int made = 0, rv = 0;
  for (; made < n && rv == 0; made++) {
    char name[32];
    snprintf(name, sizeof name, "m%d", made);
    uint64_t t0 = gb_now_ns();
    rv = member_start(&m[made], made % 3, name, false, 0);
    struct members_wait w = {m, made + 1, (uint32_t)made + 1};
    if (rv == 0)
      rv = sy_wait(members_at, &w, 30000);
    if (rv == 0 && made == 3)
      gb_record(r, GB_SYNOD, GB_JOIN_VIEW, (members_view_ns(m, 4) - t0) / 1e6);
  }
  struct synod_async *j = NULL;
  if (rv == 0)
    rv = async_new(n % 3, 0, &j);
  for (int k = 0; k < changes && rv == 0; k++) {
    struct join_wait jw = {0};
    uint64_t t0 = gb_now_ns();
    struct members_wait w = {m, n, (uint32_t)n + 1};
    rv = synod_async_group_join(j, sy.group, "joiner", NULL, 0, false,
                                joined_cb, &jw);
    if (rv == 0)
      rv = sy_wait(join_done, &jw, 10000) || jw.status ||
           sy_wait(members_at, &w, 10000);
    if (rv != 0)
      break;
    uint64_t t1 = members_view_ns(m, n);
    gb_record(r, GB_SYNOD, GB_VIEW16, (t1 - t0) / 1e6);
    /* A view can reach every member before the joiner's answer: 0. */
    gb_record(r, GB_SYNOD, GB_VIEW16_COMMIT,
              t1 > jw.ns ? (t1 - jw.ns) / 1e6 : 0);
    struct join_wait lw = {0};
    w.count = (uint32_t)n;
    t0 = gb_now_ns();
    rv = synod_async_group_leave(j, sy.group, "joiner", left_cb, &lw);
    if (rv == 0)
      rv = sy_wait(join_done, &lw, 10000) || lw.status ||
           sy_wait(members_at, &w, 10000);
    if (rv == 0)
      gb_record(r, GB_SYNOD, GB_LEAVE16, (members_view_ns(m, n) - t0) / 1e6);
  }
  if (rv != 0) {
    fprintf(stderr, "  synod views: FAILED (%s)\n", sy.first_error);
    r->failures++;
  }
  if (j)
    close_counted(j);
  members_close(m, made);
}

/* ============================================================= crash */

/* The victim: a member in a process of its own, to be SIGKILLed. */
int gb_synod_victim_main(int argc, char **argv) {
  if (argc != 5)
    return 2;
  struct synod_options o;
  struct synod_client *c;
  synod_options_init(&o);
  o.endpoints = argv[1];
  o.client_name = "synod-bench-groups victim";
  o.session_ttl_ms = (uint32_t)atoi(argv[4]);
  if (synod_client_new(&o, &c) != 0 ||
      synod_group_join(c, argv[2], argv[3], NULL, 0, false, 10000, NULL) != 0) {
    fprintf(stderr, "victim: %s\n", synod_client_errmsg());
    return 1;
  }
  printf("ready\n");
  fflush(stdout);
  for (;;)
    pause();
}

static bool members_gone(void *arg) {
  return members_at(arg);
}

static void round_crash(const struct gb_opts *o, struct gb_results *r,
                        int rep) {
  struct sy_member m[4];
  if (group_make(m, 3, "crash", rep) != 0) {
    r->failures++;
    members_close(m, 3);
    return;
  }
  struct members_wait w4 = {m, 3, 4}, w3 = {m, 3, 3};
  /* A clean end: the member's client closes its session. */
  int rv = member_start(&m[3], 0, "closer", false, 0);
  if (rv == 0)
    rv = sy_wait(members_at, &w4, 10000);
  if (rv == 0) {
    uint64_t t0 = gb_now_ns();
    member_close(&m[3]);
    rv = sy_wait(members_gone, &w3, 10000);
    if (rv == 0)
      gb_record(r, GB_SYNOD, GB_CLOSE_VIEW, (members_view_ns(m, 3) - t0) / 1e6);
    sy_wait(member_closed, &m[3], 5000);
  }
  /* A SIGKILLed member, its session's TTL o->ttl_ms, while m0 sends at
   * o->rate throughout. */
  char ttl[16], log[PATH_MAX + 32], line[256];
  snprintf(ttl, sizeof ttl, "%u", o->ttl_ms);
  snprintf(log, sizeof log, "%s/victim.log", o->dir);
  char self[PATH_MAX + 32];
  snprintf(self, sizeof self, "%s/synod-bench-groups", o->self_dir);
  char *argv[] = {
      self, "--group-victim", sy.c.endpoints, sy.group, "victim", ttl, NULL};
  struct gb_proc v = {.pid = 0, .in = -1, .out = -1};
  if (rv == 0 && (gb_proc_spawn(&v, argv, log) != 0 ||
                  gb_proc_line(&v, line, sizeof line, 15000) != 0 ||
                  strcmp(line, "ready") != 0))
    rv = -1;
  if (rv == 0)
    rv = sy_wait(members_at, &w4, 10000);
  if (rv == 0) {
    sy.run_id++;
    sy.size = 100;
    sy.rate = o->rate;
    sy.nsnd = 1;
    memset(sy.snd, 0, sizeof sy.snd);
    sy.snd[0] = (struct sy_sender){
        .a = m[0].a, .via = &m[0], .inflight_max = SYNOD_INFLIGHT_MAX};
    sy.t_start = sy.t_measure = gb_now_ns();
    sy.t_end = sy.t_start + 60000000000u;
    sy.snd[0].next_ns = sy.t_start;
    sy_run_for(500);
    for (int i = 0; i < 3; i++)
      m[i].gap_max_ns = 0;
    sy.gap_on = true;
    uint64_t kill_ns = gb_now_ns();
    kill(v.pid, SIGKILL);
    rv = sy_wait(members_gone, &w3, o->ttl_ms + 15000);
    uint64_t view_ns = members_view_ns(m, 3);
    sy_run_for(500);
    sy.gap_on = false;
    sy.t_end = gb_now_ns();
    sy_wait(senders_idle, NULL, 10000);
    sy.rate = 0;
    sy.nsnd = 0;
    if (rv == 0) {
      double gap = 0;
      for (int i = 0; i < 3; i++)
        if (m[i].gap_max_ns / 1e6 > gap)
          gap = m[i].gap_max_ns / 1e6;
      gb_record(r, GB_SYNOD, GB_CRASH_VIEW, (view_ns - kill_ns) / 1e6);
      gb_record(r, GB_SYNOD, GB_CRASH_GAP, gap);
      fprintf(stderr,
              "  synod crash: view after %.0f ms (TTL %u ms), longest "
              "pause %.0f ms\n",
              (view_ns - kill_ns) / 1e6, o->ttl_ms, gap);
    }
  }
  gb_proc_stop(&v, 100);
  if (rv != 0) {
    fprintf(stderr, "  synod crash: FAILED (%s)\n", sy.first_error);
    r->failures++;
  }
  members_close(m, 3);
}

/* ======================================================== checkpoint */

static bool stored;
static int stored_status;

static void stored_cb(void *arg, int status,
                      const struct synod_group_stored *s) {
  (void)arg, (void)s;
  stored = true;
  stored_status = status;
}

static bool is_stored(void *arg) {
  (void)arg;
  return stored;
}

struct tail_wait {
  struct sy_member *m;
  uint64_t n;
};

static bool tail_in(void *arg) {
  struct tail_wait *w = arg;
  return w->m->ready && w->m->after_state >= w->n;
}

static bool joiner_failed(const struct sy_member *m) {
  return m->ended;
}

/* A member stores a checkpoint of o->checkpoint_bytes, `tail` messages
 * follow, then a joiner asks for the state: from its join call to the
 * last message of the tail, checkpoint + tail bytes per second. */
static void round_checkpoint(const struct gb_opts *o, struct gb_results *r,
                             int rep) {
  struct sy_member m[2];
  uint8_t *data = malloc(o->checkpoint_bytes);
  if (data == NULL || group_make(m, 1, "ckpt", rep) != 0) {
    free(data);
    r->failures++;
    members_close(m, 1);
    return;
  }
  memset(data, 'c', o->checkpoint_bytes);
  stored = false;
  int rv = synod_async_group_member_checkpoint(m[0].a, m[0].g, m[0].last_offset,
                                               data, o->checkpoint_bytes,
                                               stored_cb, NULL);
  if (rv == 0)
    rv = sy_wait(is_stored, NULL, 60000) || stored_status;
  if (rv != 0)
    sy_error("checkpoint store", stored_status);
  /* The tail: closed loop, 32 in flight, from the member. */
  if (rv == 0) {
    sy.run_id++;
    sy.size = 100;
    sy.rate = 0;
    sy.nsnd = 1;
    memset(sy.snd, 0, sizeof sy.snd);
    sy.snd[0] = (struct sy_sender){
        .a = m[0].a, .via = &m[0], .inflight_max = SYNOD_INFLIGHT_MAX};
    sy.t_start = sy.t_measure = sy.t_end = gb_now_ns(); /* no refill */
    for (int k = 0; k < o->tail; k++)
      send_one(&sy.snd[0]);
    rv = sy_wait(senders_idle, NULL, 60000);
    sy.nsnd = 0;
  }
  if (rv == 0) {
    uint64_t t0 = gb_now_ns();
    rv = member_start(&m[1], 1, "joiner", true, 0);
    struct tail_wait tw = {&m[1], (uint64_t)o->tail};
    if (rv == 0)
      rv = sy_wait(tail_in, &tw, 60000);
    if (rv == 0 && !joiner_failed(&m[1])) {
      double s = (gb_now_ns() - t0) / 1e9;
      double bytes = (double)m[1].state_len + (double)o->tail * 100;
      gb_record(r, GB_SYNOD, GB_CKPT_MBS, bytes / s / 1e6);
      fprintf(stderr,
              "  synod checkpoint: %zu B of state + %d messages in %.3f s "
              "(state after %.3f s): %.1f MB/s\n",
              m[1].state_len, o->tail, s, (m[1].ready_ns - t0) / 1e9,
              bytes / s / 1e6);
    } else {
      rv = -1;
    }
  }
  if (rv != 0) {
    fprintf(stderr, "  synod checkpoint: FAILED (%s)\n", sy.first_error);
    r->failures++;
  }
  free(data);
  members_close(m, m[1].a ? 2 : 1);
}

/* ================================================================ API */

int gb_synod_start(const struct gb_opts *o, struct gb_results *r) {
  char synodd[PATH_MAX];
  (void)o;
  test_binary("SYNODD", "synodd", synodd, sizeof synodd);
  if (access(synodd, X_OK) != 0) {
    snprintf(r->why_not[GB_SYNOD], GB_ERR_BYTES, "%.200s is not built", synodd);
    return -1;
  }
  sy.lat_us = malloc(SY_LAT_MAX * sizeof *sy.lat_us);
  sy.ack_us = malloc(SY_LAT_MAX * sizeof *sy.ack_us);
  if (sy.lat_us == NULL || sy.ack_us == NULL || uv_loop_init(&sy.loop) != 0)
    return -1;
  sy.loop_up = true;
  uv_timer_init(&sy.loop, &sy.tick);
  uv_timer_start(&sy.tick, tick_cb, 1, 1);
  cluster_start(&sy.c, 3, synodd);
  sy.started = true;
  int leader = cluster_wait_leader(&sy.c, 30000);
  fprintf(stderr, "  synod: replica %d leads\n", leader);
  snprintf(r->notes[GB_SYNOD], sizeof r->notes[GB_SYNOD],
           "3 synodd replicas on 127.0.0.1 (the synodd built beside this "
           "program, defaults). Every send, join and leave is committed "
           "before it is acknowledged: in the log of a majority of the "
           "replicas, each having written it with fdatasync; the view and "
           "the messages are one stream in the log's order. A minority "
           "side of a partition delivers nothing the majority did not "
           "agree on, and never installs a view of its own. Members are "
           "libsynod async clients (one session each, member i starting "
           "at replica i mod 3); senders are clients of their own, each "
           "with 1 send in flight (N senders) or %d (one sender "
           "flooding); the crashed member is a process of its own with a "
           "session TTL of %u ms",
           SYNOD_INFLIGHT_MAX, o->ttl_ms);
  return 0;
}

void gb_synod_round(const struct gb_opts *o, struct gb_results *r, int rep) {
  uint64_t errors = sy.errors;
  /* The loop did not run during the other systems' rounds, and libsynod
   * dates a request's deadline from the loop's cached time (uv_now): a
   * call made before the loop runs again would time out at once. */
  uv_update_time(&sy.loop);
  round_traffic(o, r, rep);
  round_views(o, r, rep);
  round_crash(o, r, rep);
  round_checkpoint(o, r, rep);
  /* Every client of the round is gone before the other systems' rounds,
   * during which this loop does not run. */
  if (sy_wait(all_closed, NULL, 10000) != 0)
    fprintf(stderr, "  synod: %d clients still closing\n", closing);
  if (sy.errors > errors)
    fprintf(stderr, "  synod: %" PRIu64 " errors this round, the first: %s\n",
            sy.errors - errors, sy.first_error);
}

void gb_synod_stop(void) {
  if (sy.started) {
    sy.started = false;
    cluster_stop(&sy.c);
  }
  if (sy.loop_up) {
    sy.loop_up = false;
    uv_timer_stop(&sy.tick);
    uv_close((uv_handle_t *)&sy.tick, NULL);
    uv_run(&sy.loop, UV_RUN_NOWAIT);
  }
}
