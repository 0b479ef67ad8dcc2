/* synod-bench-groups: the types shared by the harness, the three systems
 * (synod's groups over libsynod, Corosync CPG, JGroups) and the report. */
#ifndef SYNOD_BENCH_GROUPS_H
#define SYNOD_BENCH_GROUPS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define GB_RUNS_MAX 9
#define GB_ERR_BYTES 256

enum gb_sys { GB_SYNOD = 0, GB_CPG = 1, GB_JGROUPS = 2, GB_SYSTEMS = 3 };

/* Every figure, one median each per system in the report. A system that
 * has no such workload never records it and the report prints "-". */
enum gb_metric {
  GB_LAT100_P50,    /* ms: one paced sender, send -> delivery at every member */
  GB_LAT100_P99,    /* ms */
  GB_LAT8K_P50,     /* ms: the same with 8 KiB */
  GB_LAT8K_P99,     /* ms */
  GB_FLOOD100,      /* msg/s delivered at every member: one sender flooding */
  GB_FLOOD8K,       /* msg/s: the same with 8 KiB */
  GB_SENDERS100,    /* msg/s: `senders` senders, 100 B */
  GB_SENDERS8K,     /* msg/s: `senders` senders, 8 KiB */
  GB_CRASH_VIEW,    /* ms: SIGKILL of a member (or its node) -> the new view
                       at every other member */
  GB_CRASH_GAP,     /* ms: the longest pause in deliveries meanwhile */
  GB_CLOSE_VIEW,    /* ms: a member's clean end -> the view at the others */
  GB_JOIN_VIEW,     /* ms: a 4th member joins -> the view at all 4 */
  GB_VIEW16,        /* ms: the `view_members`-th joins -> view at all */
  GB_VIEW16_COMMIT, /* ms: the same, from the join's answer (commit) */
  GB_LEAVE16,       /* ms: it leaves -> the view at the others */
  GB_CKPT_MBS,      /* MB/s: a joiner gets the checkpoint and the tail */
  GB_METRICS
};

struct gb_opts {
  bool quick;
  bool only[GB_SYSTEMS]; /* --systems */
  int repeat;            /* rounds; each runs every workload once per system */
  double seconds;        /* measured window of a traffic run */
  double warmup;         /* before it */
  double rate;           /* messages/s of the paced sender [1000] */
  int senders;           /* [64] */
  int view_members;      /* [16] */
  uint32_t ttl_ms;       /* session TTL of the SIGKILLed synod member [1000] */
  size_t checkpoint_bytes; /* [16 MiB] */
  int tail;                /* messages after the checkpoint [1000] */
  double crash_seconds;    /* CPG crash run [12] */
  unsigned max_minutes;
  bool keep;
  char dir[PATH_MAX];      /* the run's temporary directory */
  char self_dir[PATH_MAX]; /* where this binary is (its helpers beside it) */
};

struct gb_results {
  double v[GB_SYSTEMS][GB_METRICS][GB_RUNS_MAX];
  int n[GB_SYSTEMS][GB_METRICS];
  char why_not[GB_SYSTEMS][GB_ERR_BYTES]; /* why a system did not run */
  char notes[GB_SYSTEMS][1024];           /* setup, said in the output */
  unsigned failures;      /* synod's workloads that gave nothing: FAIL */
  unsigned peer_failures; /* the peers' (a stall, a hang): said, not FAIL */
};

void gb_record(struct gb_results *r, enum gb_sys s, enum gb_metric m, double v);
uint64_t gb_now_ns(void);
void gb_sleep_ms(unsigned ms);

/* Each system: start once (its cluster stays up for the run), run one
 * round of its workloads, stop. start returns 0, or -1 with why_not set
 * (then the system is left out). round records what it measured and
 * counts what failed in r->failures. stop accepts a half-started system
 * and is also called at exit. */
int gb_synod_start(const struct gb_opts *o, struct gb_results *r);
void gb_synod_round(const struct gb_opts *o, struct gb_results *r, int rep);
void gb_synod_stop(void);
int gb_cpg_start(const struct gb_opts *o, struct gb_results *r);
void gb_cpg_round(const struct gb_opts *o, struct gb_results *r, int rep);
void gb_cpg_stop(void);
int gb_jgroups_start(const struct gb_opts *o, struct gb_results *r);
void gb_jgroups_round(const struct gb_opts *o, struct gb_results *r, int rep);
void gb_jgroups_stop(void);

/* The hidden child mode of the synod crash workload: a member that joins
 * and waits to be killed (argv: endpoints group member ttl_ms). */
int gb_synod_victim_main(int argc, char **argv);

/* ---------------------------------------------- child processes */

/* A child with a pipe to its stdin and one from its stdout; stderr to a
 * log. Tracked by the integration harness, so it dies with us. */
struct gb_proc {
  pid_t pid;
  int in, out;
  char buf[8192];
  size_t len;
};

int gb_proc_spawn(struct gb_proc *p, char *const argv[], const char *log);
/* The next line of its stdout (without the newline) within timeout_ms:
 * 0, or -1 on timeout or end of file. */
int gb_proc_line(struct gb_proc *p, char *line, size_t len,
                 unsigned timeout_ms);
int gb_proc_write(struct gb_proc *p, const char *s);
/* SIGTERM, SIGKILL after grace_ms; reaps; closes the pipes. */
void gb_proc_stop(struct gb_proc *p, unsigned grace_ms);
/* Runs argv to completion within timeout_ms, stdout+stderr to log;
 * its exit status, or -1 (killed at the bound). */
int gb_run(char *const argv[], const char *log, unsigned timeout_ms);
/* The value after "key=" in a line of k=v words, or NAN. */
double gb_field(const char *line, const char *key);

#endif
