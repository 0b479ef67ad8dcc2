/* synod-sim: runs the deterministic simulator over one seed, a range of
 * seeds or for a wall-clock budget (soak), and measures the core's
 * throughput (bench). Exit codes: 0 all good, 1 a failure, 2 usage. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "sim.h"

#define DEFAULT_STEPS 80000

struct cli {
  uint64_t seed;
  uint64_t seeds;
  uint32_t replicas;
  uint64_t steps;
  uint32_t clients;
  uint32_t chunk_bytes;
  double soak_s;
  bool trace;
  bool digest;
  bool bench;
  bool verbose;
  bool peer_gone;
  bool as_synodd;
  bool channels;
  bool push;
  bool sinks;
  bool groups;
  bool keys;
  uint32_t key_break;
  uint32_t channel_break;
  uint32_t group_break;
};

struct totals {
  uint64_t ran;
  uint64_t failed;
  struct sim_stats sum;
  uint64_t sim_ms;
};

static void usage(FILE *f) {
  fprintf(f,
          "usage: synod-sim [--seed S] [--seeds N] [--replicas 3|5] "
          "[--steps K]\n"
          "                 [--clients N] [--soak SECONDS] [--trace] [--digest]"
          "\n                 [--bench] [--verbose]\n"
          "  --seed S      first seed (default 1)\n"
          "  --seeds N     run N consecutive seeds (default 1)\n"
          "  --replicas R  initial voters, 3 or 5 (default 3)\n"
          "  --steps K     phase 1 length in core steps (default %d)\n"
          "  --clients N   N simulated clients on the real state machine:\n"
          "                locks, counters, elections; history checks "
          "(default 0)\n"
          "  --chunk-bytes B  snapshot chunk size (default: the seed picks)\n"
          "  --soak SECS   run consecutive seeds until SECS of wall time pass\n"
          "  --trace       print every trace line\n"
          "  --digest      print a digest of each run's full trace\n"
          "  --bench       measure committed entries per CPU second\n"
          "  --verbose     one line of statistics per seed\n"
          "  --peer-gone   report crashes to the other replicas as PEER_GONE "
          "(and some\n"
          "                link cuts as false alarms)\n"
          "  --as-synodd   the core's options as synodd sets them: snapshots "
          "at each\n"
          "                voter's own points of the log, 256 appends in "
          "flight\n"
          "  --groups      group workload: clients join, leave, send and "
          "checkpoint;\n"
          "                members read their streams; group checks\n"
          "  --break-groups MODE  plant a bug in the group members' readers "
          "(the run\n"
          "                must fail): misaddressed, gap, duplicate, view, "
          "same-view,\n"
          "                state\n"
          "  --channels    channel workload: clients publish, subscribers "
          "read replicas;\n"
          "                channel history checks (implies --clients 4)\n"
          "  --push        channel subscribers and key watchers are clients "
          "of the\n"
          "                replicas' real subscription engine "
          "(server/node/subscribe.c);\n"
          "                alone: --channels --push\n"
          "  --sinks       with --push: about half the channel subscribers "
          "are\n"
          "                in-process, as the HTTP API's event streams "
          "(node_subscribe:\n"
          "                a sink, no credits, started at the turn's end)\n"
          "  --keys        key workload: puts, compare-and-puts, deletes, "
          "transactions,\n"
          "                session-bound keys; key checks (implies "
          "--clients 4)\n"
          "  --break-keys MODE  corrupt the key checks' inputs on purpose "
          "(the run must\n"
          "                fail): session-end, atomic, compare, stale-read, "
          "gap,\n"
          "                duplicate, agreement\n"
          "  --break-channels MODE  corrupt the channel history on purpose "
          "(the run\n"
          "                must fail): gap, duplicate, compacted, "
          "interleaving, index-order,\n"
          "                agreement, exactly-once, refused, acknowledged, "
          "lost, real-time,\n"
          "                real-time-index, range, split-batch\n"
          "exit: 0 all good, 1 invariant or liveness failure, 2 usage\n",
          DEFAULT_STEPS);
}

static bool parse_u64(const char *s, uint64_t *out) {
  char *end;
  if (s == NULL || *s == '\0') {
    return false;
  }
  *out = strtoull(s, &end, 10);
  return *end == '\0';
}

static int parse(int argc, char **argv, struct cli *c) {
  *c = (struct cli){
      .seed = 1, .seeds = 1, .replicas = 3, .steps = DEFAULT_STEPS};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    uint64_t n = 0;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      exit(0);
    } else if (strcmp(a, "--trace") == 0) {
      c->trace = true;
      continue;
    } else if (strcmp(a, "--digest") == 0) {
      c->digest = true;
      continue;
    } else if (strcmp(a, "--bench") == 0) {
      c->bench = true;
      continue;
    } else if (strcmp(a, "--verbose") == 0) {
      c->verbose = true;
      continue;
    } else if (strcmp(a, "--peer-gone") == 0) {
      c->peer_gone = true;
      continue;
    } else if (strcmp(a, "--as-synodd") == 0) {
      c->as_synodd = true;
      continue;
    } else if (strcmp(a, "--keys") == 0) {
      c->keys = true;
      continue;
    } else if (strcmp(a, "--break-keys") == 0) {
      c->keys = true;
      for (uint32_t m = 1; sim_key_break_name(m) != NULL; m++) {
        if (v != NULL && strcmp(v, sim_key_break_name(m)) == 0) {
          c->key_break = m;
        }
      }
      if (c->key_break == 0) {
        fprintf(stderr, "synod-sim: no such --break-keys mode %s\n",
                v ? v : "(none)");
        return 2;
      }
      i++;
      continue;
    } else if (strcmp(a, "--channels") == 0) {
      c->channels = true;
      continue;
    } else if (strcmp(a, "--push") == 0) {
      c->push = true;
      continue;
    } else if (strcmp(a, "--sinks") == 0) {
      c->push = c->sinks = true;
      continue;
    } else if (strcmp(a, "--groups") == 0) {
      c->groups = true;
      continue;
    } else if (strcmp(a, "--break-groups") == 0) {
      c->groups = true;
      for (uint32_t m = 1; sim_group_break_name(m) != NULL; m++) {
        if (v != NULL && strcmp(v, sim_group_break_name(m)) == 0) {
          c->group_break = m;
        }
      }
      if (c->group_break == 0) {
        fprintf(stderr, "synod-sim: no such --break-groups mode %s\n",
                v ? v : "(none)");
        return 2;
      }
      i++;
      continue;
    } else if (strcmp(a, "--break-channels") == 0) {
      c->channels = true;
      for (uint32_t m = 1; sim_channel_break_name(m) != NULL; m++) {
        if (v != NULL && strcmp(v, sim_channel_break_name(m)) == 0) {
          c->channel_break = m;
        }
      }
      if (c->channel_break == 0) {
        fprintf(stderr, "synod-sim: no such --break-channels mode %s\n",
                v ? v : "(none)");
        return 2;
      }
      i++;
      continue;
    } else if (!parse_u64(v, &n)) {
      fprintf(stderr, "synod-sim: %s needs a number\n", a);
      return 2;
    } else if (strcmp(a, "--seed") == 0) {
      c->seed = n;
    } else if (strcmp(a, "--seeds") == 0 && n > 0) {
      c->seeds = n;
    } else if (strcmp(a, "--replicas") == 0 && (n == 3 || n == 5)) {
      c->replicas = (uint32_t)n;
    } else if (strcmp(a, "--steps") == 0) {
      c->steps = n;
    } else if (strcmp(a, "--clients") == 0 && n <= 24) {
      c->clients = (uint32_t)n;
    } else if (strcmp(a, "--chunk-bytes") == 0 && n > 0 && n < (1u << 20)) {
      c->chunk_bytes = (uint32_t)n;
    } else if (strcmp(a, "--soak") == 0 && n > 0) {
      c->soak_s = (double)n;
    } else {
      fprintf(stderr, "synod-sim: bad argument %s %s\n", a, v);
      return 2;
    }
    i++; /* the option's value */
  }
  if (c->push && !c->keys && !c->groups) {
    c->channels = true; /* --push alone: the channel workload's */
  }
  if ((c->channels || c->groups || c->keys) && c->clients == 0) {
    c->clients = 4; /* as sim_new does */
  }
  return 0;
}

static double clock_s(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct sim_options seed_options(const struct cli *c, uint64_t seed,
                                       bool trace) {
  return (struct sim_options){.seed = seed,
                              .replicas = c->replicas,
                              .steps = c->steps,
                              .clients = c->clients,
                              .chunk_bytes = c->chunk_bytes,
                              .swarm = true,
                              .workload = true,
                              .trace = trace || c->digest || c->trace,
                              .trace_print = c->trace,
                              .peer_gone = c->peer_gone,
                              .snapshot_slots = c->as_synodd,
                              .inflight_appends_max = c->as_synodd ? 256 : 0,
                              .channels = c->channels,
                              .push = c->push,
                              .sinks = c->sinks,
                              .groups = c->groups,
                              .keys = c->keys,
                              .key_break = c->key_break,
                              .channel_break = c->channel_break,
                              .group_break = c->group_break};
}

static void add_stats(struct totals *t, const struct sim *s) {
  const struct sim_stats *st = sim_stats(s);
  struct sim_stats *a = &t->sum;
  a->steps += st->steps;
  a->leaders += st->leaders;
  a->committed += st->committed;
  a->acked += st->acked;
  a->reads_ok += st->reads_ok;
  a->crashes += st->crashes;
  a->partitions += st->partitions;
  a->snapshots_taken += st->snapshots_taken;
  a->snapshots_installed += st->snapshots_installed;
  a->config_changes += st->config_changes;
  a->transfers += st->transfers;
  a->msgs_sent += st->msgs_sent;
  a->msgs_lost += st->msgs_lost;
  a->entries_filled += st->entries_filled;
  a->appends_unfilled += st->appends_unfilled;
  a->sessions += st->sessions;
  a->session_expiries += st->session_expiries;
  a->client_ops += st->client_ops;
  a->client_acked += st->client_acked;
  a->client_unknown += st->client_unknown;
  a->client_retries += st->client_retries;
  a->lock_grants += st->lock_grants;
  a->counter_ops_checked += st->counter_ops_checked;
  a->key_ops_checked += st->key_ops_checked;
  a->key_events_watched += st->key_events_watched;
  a->key_compactions += st->key_compactions;
  a->lin_inconclusive += st->lin_inconclusive;
  a->publishes_acked += st->publishes_acked;
  a->publishes_resent += st->publishes_resent;
  a->deliveries += st->deliveries;
  a->sub_moves += st->sub_moves;
  a->compactions += st->compactions;
  a->group_joins += st->group_joins;
  a->group_sends += st->group_sends;
  a->group_checkpoints += st->group_checkpoints;
  a->group_readers += st->group_readers;
  a->group_deliveries += st->group_deliveries;
  a->group_transfers += st->group_transfers;
  for (int i = 0; i < 4; i++) {
    a->group_states[i] += st->group_states[i];
  }
  t->sim_ms += sim_now_ms(s);
}

static void print_stats(const char *what, const struct sim_stats *st,
                        uint64_t sim_ms) {
  printf("%s: steps %" PRIu64 ", simulated %.1f s, leaders %" PRIu64
         ", committed %" PRIu64 ", acked %" PRIu64 ", reads %" PRIu64
         ", crashes %" PRIu64 ", partitions %" PRIu64 ", snapshots %" PRIu64
         " taken %" PRIu64 " installed, membership changes %" PRIu64
         ", transfers %" PRIu64 ", messages %" PRIu64 " (%" PRIu64
         " lost), released entries read back %" PRIu64 " (%" PRIu64
         " appends dropped: compacted)\n",
         what, st->steps, (double)sim_ms / 1000, st->leaders, st->committed,
         st->acked, st->reads_ok, st->crashes, st->partitions,
         st->snapshots_taken, st->snapshots_installed, st->config_changes,
         st->transfers, st->msgs_sent, st->msgs_lost, st->entries_filled,
         st->appends_unfilled);
  if (st->client_ops > 0) {
    printf("%s: clients: sessions %" PRIu64 " (%" PRIu64
           " expired), ops %" PRIu64 " (%" PRIu64 " answered, %" PRIu64
           " unknown, %" PRIu64 " resends), lock grants %" PRIu64
           ", counter ops checked %" PRIu64 " (%" PRIu64
           " histories inconclusive)\n",
           what, st->sessions, st->session_expiries, st->client_ops,
           st->client_acked, st->client_unknown, st->client_retries,
           st->lock_grants, st->counter_ops_checked, st->lin_inconclusive);
  }
  if (st->deliveries > 0) {
    printf("%s: channels: publishes acknowledged %" PRIu64 " (%" PRIu64
           " after resends), deliveries %" PRIu64 ", subscriber moves %" PRIu64
           ", compacted answers %" PRIu64 "\n",
           what, st->publishes_acked, st->publishes_resent, st->deliveries,
           st->sub_moves, st->compactions);
  }
  if (st->group_joins > 0) {
    printf("%s: groups: joins %" PRIu64 ", sends %" PRIu64
           ", checkpoints %" PRIu64 ", state from a checkpoint %" PRIu64
           ", requested %" PRIu64 ", empty %" PRIu64 "\n",
           what, st->group_joins, st->group_sends, st->group_checkpoints,
           st->group_states[1], st->group_states[2], st->group_states[3]);
    printf("%s: groups: members' streams checked %" PRIu64
           ", items read %" PRIu64 ", states from a checkpoint and its "
           "tail %" PRIu64 "\n",
           what, st->group_readers, st->group_deliveries, st->group_transfers);
  }
  if (st->key_ops_checked > 0) {
    printf("%s: keys: operations checked %" PRIu64 ", events watched %" PRIu64
           ", watchers below the history %" PRIu64 "\n",
           what, st->key_ops_checked, st->key_events_watched,
           st->key_compactions);
  }
}

/* A failed seed is replayed with tracing on for the trace tail; the
 * replay must fail the same way, since the run is deterministic. */
static bool run_seed(const struct cli *c, uint64_t seed, struct totals *t) {
  struct sim_options o = seed_options(c, seed, false);
  struct sim *s = sim_new(&o);
  int rv = sim_run(s);
  add_stats(t, s);
  t->ran++;
  if (c->verbose) {
    char what[64];
    snprintf(what, sizeof(what), "seed %" PRIu64, seed);
    print_stats(what, sim_stats(s), sim_now_ms(s));
  }
  if (c->digest) {
    printf("seed %" PRIu64 " replicas %" PRIu32 " digest %016" PRIx64 "\n",
           seed, c->replicas, sim_digest(s));
  }
  if (rv != 0) {
    t->failed++;
    if (o.trace) {
      sim_print_failure(s, stdout);
    } else {
      struct sim_options ro = seed_options(c, seed, true);
      struct sim *r = sim_new(&ro);
      sim_run(r);
      sim_print_failure(r, stdout);
      if (strcmp(sim_failure(r), sim_failure(s)) != 0) {
        printf("NONDETERMINISM: the traced replay of seed %" PRIu64
               " ended differently: %s\n",
               seed, sim_failed(r) ? sim_failure(r) : "no failure");
      }
      sim_free(r);
    }
    fflush(stdout);
  }
  sim_free(s);
  return rv == 0;
}

static int run_seeds(const struct cli *c) {
  struct totals t = {0};
  double wall0 = clock_s(CLOCK_MONOTONIC);
  double deadline = wall0 + c->soak_s;
  uint64_t seed = c->seed;
  for (;;) {
    if (c->soak_s > 0 ? clock_s(CLOCK_MONOTONIC) >= deadline
                      : seed >= c->seed + c->seeds) {
      break;
    }
    run_seed(c, seed++, &t);
  }
  double wall = clock_s(CLOCK_MONOTONIC) - wall0;
  if (t.ran > 1 || c->soak_s > 0) {
    print_stats("totals", &t.sum, t.sim_ms);
  } else if (!c->verbose && t.failed == 0) {
    print_stats("ok", &t.sum, t.sim_ms);
  }
  printf("%s%" PRIu64 " seeds (%" PRIu64 "..%" PRIu64 "), replicas %" PRIu32
         ", steps %" PRIu64 ", clients %" PRIu32 "%s: %" PRIu64
         " passed, %" PRIu64 " failed in %.1f s (%.1f seeds/s)\n",
         c->soak_s > 0 ? "soak: " : "", t.ran, c->seed, seed - 1, c->replicas,
         c->steps, c->clients,
         c->channels ? " with channels"
         : c->keys   ? " with keys"
                     : "",
         t.ran - t.failed, t.failed, wall,
         wall > 0 ? (double)t.ran / wall : 0.0);
  return t.failed == 0 ? 0 : 1;
}

/* ---------------------------------------------------------------- bench */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a;
  double y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Entries committed per CPU second: 3 replicas, no faults, zero latency,
 * the leader kept busy with batches of `batch`. */
static double bench_once(uint64_t seed, uint32_t batch, uint64_t entries) {
  struct sim_options o = {.seed = seed,
                          .replicas = 3,
                          .bench_batch = batch,
                          .snapshot_entries = 20000,
                          .snapshot_keep_entries = 1000,
                          .chunk_bytes = 65536};
  struct sim *s = sim_new(&o);
  while (sim_leader(s) == 0 && sim_step(s)) {
  }
  uint64_t start = sim_stats(s)->committed;
  double cpu0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
  while (sim_stats(s)->committed < start + entries && sim_step(s)) {
  }
  double cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
  uint64_t done = sim_stats(s)->committed - start;
  if (sim_failed(s)) {
    sim_print_failure(s, stdout);
    done = 0;
  }
  sim_free(s);
  return cpu > 0 ? (double)done / cpu : 0;
}

static int bench(const struct cli *c) {
  static const uint32_t batches[] = {1, 64};
  static const uint64_t entries[] = {100000, 1000000};
  enum { RUNS = 5 };
  printf("bench: 3 replicas in one process, no faults, zero-latency disk "
         "and network;\n"
         "       committed entries (64 bytes) per CPU second, harness "
         "included, median of %d runs\n",
         RUNS);
  for (int b = 0; b < 2; b++) {
    double r[RUNS];
    for (int i = 0; i < RUNS; i++) {
      r[i] = bench_once(c->seed + (uint64_t)i, batches[b], entries[b]);
      if (r[i] == 0) {
        return 1;
      }
    }
    qsort(r, RUNS, sizeof(r[0]), cmp_double);
    printf("batch %2" PRIu32 ": %10.0f entries/s (min %.0f, max %.0f)\n",
           batches[b], r[RUNS / 2], r[0], r[RUNS - 1]);
  }
  return 0;
}

int main(int argc, char **argv) {
  struct cli c;
  int rv = parse(argc, argv, &c);
  if (rv != 0) {
    usage(stderr);
    return rv;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  log_init("synod-sim", LOG_WARN); /* the subscription engine's INFO lines */
  return c.bench ? bench(&c) : run_seeds(&c);
}
