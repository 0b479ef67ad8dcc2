/* synod-bench-channels: the types shared by the harness, the three load
 * generators (synod over libsynod, NATS JetStream over cnats, Redis
 * Streams over hiredis) and the report. */
#ifndef SYNOD_BENCH_CHANNELS_H
#define SYNOD_BENCH_CHANNELS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CHB_MSG_BYTES 100 /* every message of every workload */
#define CHB_PROCS_MAX 3   /* server processes of one system */
#define CHB_RUNS_MAX 9    /* repetitions of one workload */
#define CHB_ERRMSG_BYTES 256
#define CHB_ERRORS_IN_A_ROW_MAX 20 /* a publisher stops after this many */
#define CHB_DRAIN_MS 20000         /* bound on what is in flight after a run */
#define CHB_TICK_MS 20             /* the load generators' housekeeping timer */

/* CLOCK_MONOTONIC in nanoseconds: the clock of every timestamp here, the
 * send time carried in fan-out messages included. */
uint64_t chb_now_ns(void);
void chb_sleep_ms(unsigned ms);
/* Sleeps until chb_now_ns() >= t_ns. */
void chb_sleep_until(uint64_t t_ns);

/* ------------------------------------------------------------ latency */

/* Log-linear histogram of microseconds: exact below 64 us, then 64
 * sub-buckets per power of two (1.6% resolution) up to 2^40 us. */
#define CHB_HIST_SUB 64
#define CHB_HIST_BUCKETS (CHB_HIST_SUB + 34 * CHB_HIST_SUB)

struct chb_hist {
  uint64_t buckets[CHB_HIST_BUCKETS];
  uint64_t count;
};

void chb_hist_record(struct chb_hist *h, uint64_t us);
void chb_hist_merge(struct chb_hist *into, const struct chb_hist *from);
/* The value (us) below which a fraction p of the samples lie; 0 if none. */
uint64_t chb_hist_percentile(const struct chb_hist *h, double p);

/* ------------------------------------------------------------ options */

enum chb_sys { CHB_SYNOD = 0, CHB_NATS = 1, CHB_REDIS = 2, CHB_SYSTEMS = 3 };

struct chb_opts {
  bool quick;
  bool only[CHB_SYSTEMS]; /* --systems */
  unsigned workloads;     /* --workloads: CHB_WL_* bits */
  int publishers;         /* closed-loop publishers [64] */
  int batch;              /* messages per publish in the batch workload */
  int conns;         /* publishers' connections per system [= publishers] */
  int threads;       /* load generator loops (synod, redis) [2] */
  double warmup_s;   /* before each measured window [1] */
  double seconds;    /* measured window of a publish run [5] */
  int repeat;        /* runs of each workload per system [3] */
  int fanout_rate;   /* messages/s of the fan-out publisher */
  int subscribers;   /* fan-out subscribers */
  double fanout_s;   /* fan-out publishing time (warm-up included) */
  uint64_t retained; /* messages of the catch-up and memory test */
  int catchup_repeat;
  uint32_t window;       /* synod subscriptions' window (0: the default) */
  const char *nats_sync; /* JetStream sync_interval, NULL: server default */
  bool keep;
};

/* The workloads, for --workloads. */
#define CHB_WL_RETAINED 1u /* memory and catch-up */
#define CHB_WL_PUBLISH 2u  /* one message per call */
#define CHB_WL_BATCH 4u    /* --batch messages per call */
#define CHB_WL_FANOUT 8u
/* fan-out with one more subscriber on each server that never reads */
#define CHB_WL_FANOUT_STALLED 16u
#define CHB_WL_ALL 31u

/* fanout-stalled: the subscribers that never read, one on each server. */
#define CHB_STALLED_SUBS CHB_PROCS_MAX

/* ------------------------------------------------------------ results */

/* One closed-loop publish run. The system fills the outputs. */
struct chb_pub {
  /* inputs */
  int batch;       /* messages per publish */
  unsigned run_id; /* names the run's channel, stream or key */
  /* outputs: the measured window */
  uint64_t msgs;        /* messages acknowledged in the window */
  uint64_t publishes;   /* publish calls (batches) acknowledged in it */
  struct chb_hist hist; /* latency of each counted publish (batch), us */
  double client_cpu;    /* cores this process used in the window */
  double server_cpu[CHB_PROCS_MAX]; /* cores each server process used */
  /* outputs: the whole run */
  uint64_t errors;
  char first_error[CHB_ERRMSG_BYTES];
  bool aborted;
  char note[512]; /* what the servers say about the run */
};

/* One fan-out run: one paced publisher, N subscribers, and `stalled`
 * more that subscribe and then never read their socket. */
struct chb_fanout {
  /* inputs */
  unsigned run_id;
  int stalled; /* one on each of the first `stalled` servers (mod nprocs) */
  /* outputs */
  uint64_t sent;       /* publishes made */
  uint64_t acked;      /* publishes acknowledged */
  uint64_t delivered;  /* deliveries, over every subscriber */
  uint64_t missing;    /* acknowledged messages some subscriber never got */
  uint64_t duplicates; /* deliveries of a message a subscriber already had */
  uint64_t unordered;  /* deliveries that came before an earlier message */
  /* publish-to-delivery, us, of messages sent after the warm-up */
  struct chb_hist hist;
  /* the same by the server the subscribers read from, if the system
   * splits it: tells one server's slow deliveries from everyone's */
  struct chb_hist hist_by_proc[CHB_PROCS_MAX];
  double client_cpu;
  double server_cpu[CHB_PROCS_MAX];
  /* Each server's VmRSS before the subscriptions and at the end, before
   * they close, and the bytes it holds queued to its clients then (synod:
   * synod_client_queued_bytes); mem says whether the system filled them. */
  bool mem;
  uint64_t rss0[CHB_PROCS_MAX], rss1[CHB_PROCS_MAX];
  uint64_t queued[CHB_PROCS_MAX];
  uint64_t errors;
  char first_error[CHB_ERRMSG_BYTES];
  char note[512]; /* what the servers say about the run */
};

/* Filling the retained messages, and reading them back. */
struct chb_fill {
  uint64_t n;
  double seconds;
  char note[512]; /* what the system says about its state after the fill */
  uint64_t errors;
  char first_error[CHB_ERRMSG_BYTES];
};

struct chb_catchup {
  uint64_t n;        /* messages to read */
  int rep;           /* which repetition (picks the replica) */
  uint64_t received; /* read before the bound */
  uint64_t unordered;
  double seconds; /* from the subscribe (or first read) to the last */
  char where[64]; /* which server it read from */
  char first_error[CHB_ERRMSG_BYTES];
};

/* Records the first error of a run (later ones are only counted). */
void chb_error(char *first, uint64_t *count, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------ systems */

struct chb_system;

struct chb_system_ops {
  /* Starts the servers under dir; 0, or -1 with s->why. */
  int (*start)(struct chb_system *s, const struct chb_opts *o, const char *dir);
  int (*publish)(struct chb_system *s, const struct chb_opts *o,
                 struct chb_pub *r);
  int (*fanout)(struct chb_system *s, const struct chb_opts *o,
                struct chb_fanout *r);
  /* Whether fanout can add r->stalled subscribers that never read;
   * without it the fanout-stalled workload is not run on the system. */
  bool fanout_stalls;
  /* Fills o->retained messages into one channel and waits until every
   * server has them all. */
  int (*fill)(struct chb_system *s, const struct chb_opts *o,
              struct chb_fill *r);
  int (*catchup)(struct chb_system *s, const struct chb_opts *o,
                 struct chb_catchup *r);
  /* Drops what fill made. */
  void (*unfill)(struct chb_system *s);
  /* Stops every server this system started, by pid. */
  void (*stop)(struct chb_system *s);
};

struct chb_system {
  const char *name;
  bool available;
  char why[CHB_ERRMSG_BYTES]; /* why not available */
  char version[64];
  char setup[512];      /* servers, how they are connected */
  char durability[768]; /* when a publish is acknowledged, stated honestly */
  int nprocs;
  pid_t pids[CHB_PROCS_MAX];
  char proc_names[CHB_PROCS_MAX][24];
  const struct chb_system_ops *ops;
  void *impl;
};

void chb_synod_init(struct chb_system *s);
void chb_nats_init(struct chb_system *s);
void chb_redis_init(struct chb_system *s);

/* --------------------------------------------------------- processes */

/* Resident memory of a process, from /proc/PID/status: VmRSS and its
 * anonymous part, in bytes; 0 if unreadable. */
uint64_t chb_proc_rss(pid_t pid, uint64_t *anon);
/* CPU time (user + system) a process used, seconds. */
double chb_proc_cpu_s(pid_t pid);
/* CPU time this process used, seconds. */
double chb_self_cpu_s(void);

/* The CPU each server process and this process used between two
 * instants: a thread sleeps until window_ns, samples, sleeps until
 * end_ns, samples. */
struct chb_sampler {
  pthread_t thread;
  bool started;
  const struct chb_system *s;
  uint64_t window_ns, end_ns;
  double proc0[CHB_PROCS_MAX], proc1[CHB_PROCS_MAX];
  double self0, self1;
  uint64_t t0, t1;
};
void chb_sampler_start(struct chb_sampler *smp, const struct chb_system *s,
                       uint64_t window_ns, uint64_t end_ns);
/* Joins the thread; fills the cores used (0 if the window was cut). */
void chb_sampler_finish(struct chb_sampler *smp, double *client_cpu,
                        double *server_cpu);

/* Picks n distinct free TCP ports on 127.0.0.1. Returns 0 or -1. */
int chb_free_ports(int *ports, int n);
/* Spawns argv (PATH lookup) with stdout and stderr to log_path, tracked
 * for the harness's cleanup (killed at exit if still running) and
 * killed by the kernel if this process dies. Returns the pid or -1. */
pid_t chb_spawn(char *const argv[], const char *log_path);
/* True if pid has exited (reaps it). */
bool chb_exited(pid_t pid);
/* SIGTERM, up to grace_ms, then SIGKILL; reaps and untracks. */
void chb_stop_pid(pid_t pid, unsigned grace_ms);
/* The first line `cmd` prints (stdout), into out; "" on failure. */
void chb_command_line(const char *cmd, char *out, size_t len);

/* Runs fn(arg + i * stride) on n threads and joins them. */
void chb_threads_run(int n, void *(*fn)(void *), void *args, size_t stride);

/* A message's 100 bytes: the send time and a sequence number, then
 * filler. */
void chb_payload_fill(uint8_t *p, uint64_t send_ns, uint64_t seq);
void chb_payload_read(const uint8_t *p, size_t len, uint64_t *send_ns,
                      uint64_t *seq);

#endif
