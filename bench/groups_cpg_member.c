/* synod-bench-groups-cpg: one process of Corosync CPG members for
 * synod-bench-groups. It runs inside one corosync's network namespace
 * (libqb's IPC socket is abstract, so a namespace reaches only its own
 * corosync) and joins `handles` members to one group: itself and
 * handles - 1 children it forks (CPG knows a member by node and pid, so
 * one process can join a group once). It says "ready" on stdout once its
 * view has `expect` members, and on "go START_NS" from stdin (passed on
 * to the children through pipes) runs the workload: the first `senders`
 * members send (paced at `rate` messages/s each, or flooding when 0)
 * from START_NS for `seconds`, every message carrying its send time
 * (CLOCK_MONOTONIC, which every namespace of this machine shares). This
 * process records the send-to-delivery latency of every message and the
 * deliveries in the measured window; the children only drain theirs. At
 * the end it prints one "result" line, and every view change as a "view"
 * line when it happens. */
#include <corosync/cpg.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HANDLES_MAX 128
#define LAT_MAX (8u * 1000 * 1000) /* latencies kept, then counted only */

struct msg_head {
  uint64_t send_ns;
  uint32_t sender;
  uint32_t seq;
};

struct opts {
  const char *group;
  int handles, senders, expect;
  size_t size;
  double rate, seconds, warmup, linger;
};

static struct opts o = {"gbench", 1, 0, 1, 100, 0, 2, 0.5, 1};
static int index_;          /* 0: this process measures; else a child */
static bool sends;          /* index_ < senders */
static cpg_handle_t handle; /* this process's one member */
static int cpg_fd;
static bool dead; /* corosync went away */
static uint32_t seq;
static uint64_t next_ns, blocked;
static uint32_t *lat_us;
static uint64_t lat_n, delivered, in_window;
static uint64_t t_start, t_measure, t_end;
static uint64_t last_delivery_ns, gap_max_ns;
static size_t view_members;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Deliveries: only the parent (index 0) measures; the children are
 * senders that must drain what the group delivers them. */
static void deliver_cb(cpg_handle_t h, const struct cpg_name *g,
                       uint32_t nodeid, uint32_t pid, void *msg, size_t len) {
  (void)h, (void)g, (void)nodeid, (void)pid;
  if (index_ != 0 || len < sizeof(struct msg_head))
    return;
  struct msg_head head;
  memcpy(&head, msg, sizeof head);
  uint64_t t = now_ns();
  delivered++;
  if (last_delivery_ns && t_start && t > t_start && t < t_end &&
      t - last_delivery_ns > gap_max_ns)
    gap_max_ns = t - last_delivery_ns;
  last_delivery_ns = t;
  if (t < t_measure || t >= t_end)
    return;
  in_window++;
  if (lat_n < LAT_MAX && t > head.send_ns)
    lat_us[lat_n++] = (uint32_t)((t - head.send_ns) / 1000);
}

static void confchg_cb(cpg_handle_t h, const struct cpg_name *g,
                       const struct cpg_address *members, size_t n,
                       const struct cpg_address *left, size_t n_left,
                       const struct cpg_address *joined, size_t n_joined) {
  (void)h, (void)g, (void)members, (void)joined;
  view_members = n;
  if (index_ != 0)
    return;
  printf("view %" PRIu64 " members=%zu joined=%zu left=%zu", now_ns(), n,
         n_joined, n_left);
  for (size_t i = 0; i < n_left; i++)
    printf(" left_node=%u", left[i].nodeid);
  printf("\n");
  fflush(stdout);
}

static cpg_callbacks_t callbacks = {.cpg_deliver_fn = deliver_cb,
                                    .cpg_confchg_fn = confchg_cb};

/* Initializes and joins, retrying while corosync syncs. */
static int member_join(void) {
  struct cpg_name name;
  name.length = (uint32_t)strlen(o.group);
  memcpy(name.value, o.group, name.length);
  cs_error_t rv;
  for (int tries = 0; tries < 500; tries++) {
    rv = cpg_initialize(&handle, &callbacks);
    if (rv == CS_OK)
      break;
    usleep(10000);
  }
  if (rv != CS_OK) {
    fprintf(stderr, "cpg_initialize: %d\n", rv);
    return -1;
  }
  for (int tries = 0; tries < 500; tries++) {
    rv = cpg_join(handle, &name);
    if (rv != CS_ERR_TRY_AGAIN)
      break;
    usleep(10000);
  }
  if (rv != CS_OK || cpg_fd_get(handle, &cpg_fd) != CS_OK) {
    fprintf(stderr, "cpg_join: %d\n", rv);
    return -1;
  }
  return 0;
}

/* Sends one message; false when CPG's flow control says "try again". */
static bool member_send(uint8_t *buf) {
  struct msg_head head = {now_ns(), (uint32_t)index_, seq};
  memcpy(buf, &head, sizeof head);
  struct iovec iov = {buf, o.size};
  cs_error_t rv = cpg_mcast_joined(handle, CPG_TYPE_AGREED, &iov, 1);
  if (rv == CS_OK) {
    seq++;
    return true;
  }
  if (rv != CS_ERR_TRY_AGAIN) {
    dead = true;
    return false;
  }
  blocked++;
  return false;
}

/* One turn of sending: paced, what is due; flooding, until flow control
 * stops it (at most 64, to keep draining). */
static void send_turn(uint8_t *buf) {
  uint64_t t = now_ns();
  if (!sends || dead || t < t_start || t >= t_end)
    return;
  if (o.rate > 0) {
    while (next_ns <= t && member_send(buf))
      next_ns += (uint64_t)(1e9 / o.rate);
  } else {
    for (int k = 0; k < 64 && member_send(buf); k++)
      ;
  }
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

static double pct_ms(double p) {
  if (lat_n == 0)
    return -1;
  uint64_t i = (uint64_t)(p * (double)(lat_n - 1));
  return lat_us[i] / 1000.0;
}

/* Polls the member's fd and `ctl` (-1: none) for up to timeout_ms and
 * dispatches. 1 when ctl is readable, 0 else, -1 when corosync is gone. */
static int poll_once(int timeout_ms, int ctl) {
  struct pollfd p[2] = {{.fd = dead ? -1 : cpg_fd, .events = POLLIN},
                        {.fd = ctl, .events = POLLIN}};
  if (poll(p, 2, timeout_ms) < 0 && errno != EINTR)
    return -1;
  if (p[0].revents & (POLLIN | POLLERR | POLLHUP)) {
    if (cpg_dispatch(handle, CS_DISPATCH_ALL) != CS_OK) {
      dead = true;
      return -1;
    }
  }
  return ctl >= 0 && (p[1].revents & (POLLIN | POLLHUP)) ? 1 : 0;
}

static void parse(int argc, char **argv) {
  static const struct option lo[] = {
      {"group", 1, 0, 'g'},   {"handles", 1, 0, 'n'},
      {"senders", 1, 0, 's'}, {"expect", 1, 0, 'e'},
      {"size", 1, 0, 'b'},    {"rate", 1, 0, 'r'},
      {"seconds", 1, 0, 't'}, {"warmup", 1, 0, 'w'},
      {"linger", 1, 0, 'l'},  {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    switch (c) {
    case 'g':
      o.group = optarg;
      break;
    case 'n':
      o.handles = atoi(optarg);
      break;
    case 's':
      o.senders = atoi(optarg);
      break;
    case 'e':
      o.expect = atoi(optarg);
      break;
    case 'b':
      o.size = (size_t)atol(optarg);
      break;
    case 'r':
      o.rate = atof(optarg);
      break;
    case 't':
      o.seconds = atof(optarg);
      break;
    case 'w':
      o.warmup = atof(optarg);
      break;
    case 'l':
      o.linger = atof(optarg);
      break;
    default:
      exit(2);
    }
  }
  if (o.handles < 1 || o.handles > HANDLES_MAX || o.senders > o.handles ||
      o.size < sizeof(struct msg_head)) {
    fprintf(stderr, "bad flags\n");
    exit(2);
  }
}

/* Forks the children (members 1..handles-1); each gets the start time
 * on its pipe. Returns this process's control fd: -1 in the parent. */
static int fork_children(int *to_child) {
  pid_t parent = getpid();
  for (int k = 1; k < o.handles; k++) {
    int fds[2];
    if (pipe(fds) != 0)
      exit(1);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
      exit(1);
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent)
        _exit(1);
      for (int j = 1; j < k; j++)
        close(to_child[j]);
      close(fds[1]);
      index_ = k;
      return fds[0];
    }
    close(fds[0]);
    to_child[k] = fds[1];
  }
  return -1;
}

/* Waits for the start time: the parent for the full view and "go" on
 * stdin, a child for its pipe. 0, or -1. */
static int wait_start(int ctl, const int *to_child) {
  int rv;
  if (index_ != 0) {
    while ((rv = poll_once(100, ctl)) == 0)
      ;
    if (rv < 0 || read(ctl, &t_start, sizeof t_start) != sizeof t_start)
      return -1;
    return 0;
  }
  while ((int)view_members < o.expect)
    if (poll_once(100, -1) < 0)
      return -1;
  printf("ready\n");
  fflush(stdout);
  char line[128];
  while ((rv = poll_once(100, 0)) == 0)
    ;
  if (rv < 0 || !fgets(line, sizeof line, stdin) ||
      sscanf(line, "go %" SCNu64, &t_start) != 1)
    return -1;
  for (int k = 1; k < o.handles; k++)
    if (write(to_child[k], &t_start, sizeof t_start) != sizeof t_start)
      return -1;
  return 0;
}

int main(int argc, char **argv) {
  int to_child[HANDLES_MAX];
  parse(argc, argv);
  int ctl = fork_children(to_child);
  sends = index_ < o.senders;
  lat_us = index_ == 0 ? malloc(LAT_MAX * sizeof *lat_us) : NULL;
  uint8_t *buf = calloc(1, o.size);
  if ((index_ == 0 && !lat_us) || !buf)
    return 1;
  if (member_join() != 0 || wait_start(ctl, to_child) != 0)
    return 1;
  t_measure = t_start + (uint64_t)(o.warmup * 1e9);
  t_end = t_start + (uint64_t)((o.warmup + o.seconds) * 1e9);
  next_ns = t_start;
  uint64_t stop = t_end + (uint64_t)(o.linger * 1e9);
  while (now_ns() < stop && !dead) {
    /* Flooding: go on at once unless flow control refused the last send
     * (then wait for corosync, do not spin against it on a shared CPU). */
    uint64_t refused = blocked;
    send_turn(buf);
    bool flooding =
        sends && o.rate <= 0 && now_ns() < t_end && blocked == refused;
    if (poll_once(flooding ? 0 : 1, -1) < 0)
      break;
  }
  if (index_ == 0) {
    for (int k = 1; k < o.handles; k++)
      wait(NULL);
    qsort(lat_us, lat_n, sizeof *lat_us, cmp_u32);
    printf("result delivered=%" PRIu64 " in_window=%" PRIu64
           " per_s=%.1f p50_ms=%.3f p99_ms=%.3f sent=%" PRIu32
           " blocked=%" PRIu64 " gap_max_ms=%.1f dead=%d\n",
           delivered, in_window, (double)in_window / o.seconds, pct_ms(0.5),
           pct_ms(0.99), seq, blocked, gap_max_ns / 1e6, dead);
    fflush(stdout);
  }
  cpg_finalize(handle);
  free(lat_us);
  free(buf);
  return 0;
}
