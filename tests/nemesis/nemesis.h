/* synod-nemesis: real synodd processes, each in its own network namespace,
 * under seeded faults (partitions, loss, SIGSTOP, SIGKILL, a full disk, a
 * fast clock), with a workload on libsynod whose history is checked. */
#ifndef SYNOD_NEMESIS_H
#define SYNOD_NEMESIS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "history.h"

struct synod_client;

#define NEM_REPLICAS_MAX 5
#define NEM_CLIENT_PORT 7700
#define NEM_PEER_PORT 7701
#define NEM_HTTP_PORT 7702
#define NEM_FENCE_PORT 7790
#define NEM_LOCK_NAME "nemesis-lock"
#define NEM_COUNTER_NAME "nemesis-counter"
#define NEM_ELECTION_NAME "nemesis-election"

/* ------------------------------------------------------------ netns.c */

/* The namespaces, links and mounts of one run: every name starts with
 * "nem<pid>-", so a later run can tell a crashed run's leftovers. */
struct nem_net {
  int n;
  pid_t owner;
  char prefix[32];                 /* "nem<pid>" */
  char addr[NEM_REPLICAS_MAX][32]; /* 127.77.0.<i+1> */
  char client_addr[32];            /* 127.77.0.100 */
  char lonely_addr[32];            /* 127.77.0.101: a client to cut off */
};

/* Removes the namespaces (and the processes inside), and unmounts the
 * tmpfs mounts, of earlier runs whose process is gone. */
void nem_net_clean_stale(void);

/* Builds the bridge namespace, n replica namespaces and the client
 * namespace. Returns false with why when the kernel or tools cannot. */
bool nem_net_setup(struct nem_net *net, int n, char *why, size_t len);

/* Removes everything nem_net_setup made (idempotent; kills what runs in
 * the namespaces). */
void nem_net_teardown(struct nem_net *net);

/* Moves the calling thread (and threads it creates later) into the
 * client namespace. */
void nem_net_enter_client(const struct nem_net *net);

/* The namespace name of replica i ("nem<pid>-r<i>"), or the client's. */
void nem_net_ns(const struct nem_net *net, int i, char *out, size_t len);
void nem_net_ns_client(const struct nem_net *net, char *out, size_t len);
/* The second client namespace, whose one client the test cuts off. */
void nem_net_ns_lonely(const struct nem_net *net, char *out, size_t len);
/* Moves the calling thread into "<prefix>-<which>" ("cl", "c2"). */
void nem_net_enter(const struct nem_net *net, const char *which);
/* Drops everything in and out of the second client namespace. */
int nem_net_cut_lonely(const struct nem_net *net);

/* Faults: drop both ways between replicas i and j; drop i -> j only; 20%
 * loss on every replica's and the client's input plus a rate cap on every
 * replica's link; heal removes every rule. Return 0 or the shell's status. */
int nem_net_cut(const struct nem_net *net, int i, int j);
int nem_net_cut_oneway(const struct nem_net *net, int from, int to);
int nem_net_loss(const struct nem_net *net, int percent, const char *rate);
int nem_net_heal(const struct nem_net *net);
/* Sends every packet a replica or the client namespace receives (after
 * the loss rule) to NFQUEUE 0, with --queue-bypass: synod-nemesis-delay,
 * run in each namespace, holds them (delay and jitter without netem). */
int nem_net_queue(const struct nem_net *net);

/* Runs `ip netns exec NS sh -c CMD` (bounded); returns the exit status. */
int nem_ns_sh(const char *ns, const char *cmd);

/* --------------------------------------------------------- workload.c */

/* One hold of the lock as its holder saw it: from the grant's answer to
 * the release's invocation, or to the library's LOST notice. */
struct nem_hold {
  int client;
  uint64_t token;
  uint64_t start_us, end_us;
  bool lost;
};

/* One leadership of the election, from the campaign's answer to the
 * resign's invocation or the session's loss. */
struct nem_lead {
  int client;
  uint64_t revision;
  uint64_t start_us, end_us;
};

/* A fenced write the resource refused although its writer believed it
 * held the lock (had no LOST notice by the time of the answer). */
struct nem_fence_refusal {
  int client;
  uint64_t token, max_seen;
  uint64_t at_us;
};

struct nem_stats {
  uint64_t ok, failed;
  uint64_t last_ok_invoke_us; /* invoke time of the latest success */
};

enum nem_kind { NEM_ADD, NEM_GET, NEM_LOCK, NEM_ELECT, NEM_PUB, NEM_KINDS };

/* Channels: each round publishes to two new channels "nem/<round>/a" and
 * "/b"; subscribers 0 and 1 follow one each, 2 and 3 the prefix
 * "nem/<round>/" (each starting on another replica). */
#define NEM_CHANNELS 2
#define NEM_SUBSCRIBERS 4

/* What one subscriber delivered in a round. */
struct nem_sub_record {
  bool prefix;
  uint32_t channel; /* 0 or 1, if not prefix */
  bool to_end;      /* caught up with the channels' final offsets */
  int ended;        /* a status that ended its subscription, or 0 */
  char why[160];    /* with it, the library's message */
  struct history_delivery *d;
  size_t n, cap;
};

/* Who made a counter operation and what it was told, for the saved
 * history (ops[i] goes with meta[i]): a workload client's id, or one of
 * these. */
#define NEM_CLIENT_PROBE 100   /* the stale-leader probe */
#define NEM_CLIENT_FINAL 101   /* the read after the round */
#define NEM_CLIENT_CARRIED 102 /* an earlier round's unknown outcome */
struct nem_op_meta {
  int client;
  int rv;           /* the library's status (0, SYNOD_ETIMEDOUT, ...) */
  int round;        /* the round it was made in */
  uint64_t session; /* the client's session when the call returned */
  char why[96];     /* the library's message, for a failure */
};

/* What the workload recorded since the last nem_workload_take. */
struct nem_record {
  struct history_counter_entry *ops;
  struct nem_op_meta *meta; /* one per op */
  size_t ops_n, ops_cap;
  struct nem_hold *holds;
  size_t holds_n, holds_cap;
  struct nem_lead *leads;
  size_t leads_n, leads_cap;
  struct nem_fence_refusal *refusals;
  size_t refusals_n, refusals_cap;
  uint64_t fence_accepted, fence_refused;
  uint64_t fence_order_errors; /* accepted tokens below an earlier one */
  struct nem_stats stats[NEM_KINDS];
  /* Channel publishes (a payload "P<index here>.<part>") and what each
   * subscriber delivered. */
  struct history_publish *pubs;
  size_t pubs_n, pubs_cap;
  struct nem_sub_record subs[NEM_SUBSCRIBERS];
};

/* Starts the fenced resource and the client threads (in the calling
 * thread's network namespace); they begin paused. */
void nem_workload_start(const char *endpoints, const char *fence_addr);
void nem_workload_resume(void);
/* Names round k's channels and starts its subscriptions; call before
 * nem_workload_resume. */
void nem_workload_round(int k);
/* After nem_workload_pause: reads the channels' final offsets and waits
 * (up to timeout_ms) for every subscriber to deliver up to them, then
 * ends the subscriptions. False with why if the offsets could not be
 * read. */
bool nem_workload_channels_finish(uint32_t timeout_ms, char *why, size_t len);
/* After the round's channels were checked: deletes them, so that the
 * replicated state (and each replica's tmpfs) does not grow with every
 * round. False with why if a delete failed. */
bool nem_workload_channels_delete(char *why, size_t len);
/* Pauses every client between operations (a lock client releases first);
 * waits up to timeout_ms. Returns false if some client did not stop. */
bool nem_workload_pause(uint32_t timeout_ms);
/* Hands over (and resets) what was recorded; free with nem_record_free. */
void nem_workload_take(struct nem_record *out);
void nem_record_free(struct nem_record *r);
/* Invoke time of the latest success of kind k (0 if none). */
uint64_t nem_workload_last_ok(enum nem_kind k);
void nem_workload_stop(void);

/* Adds a read of the counter to the history, as one of the workload's
 * (used by the stale-leader probe: reads sent to one replica only).
 * client: NEM_CLIENT_*; c: its client, for its session and message. */
void nem_record_get(int client, struct synod_client *c, uint64_t invoke_us,
                    uint64_t complete_us, int rv, int64_t value);

/* Adds one counter operation to the history, as one of the workload's. */
void nem_record_op(int client, struct synod_client *c, int rv,
                   const struct history_counter_entry *e);

uint64_t nem_now_us(void);

#endif
