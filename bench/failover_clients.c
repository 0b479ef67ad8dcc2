/* Long-lived libsynod clients for bench/failover_matrix.sh: N clients, each
 * its own synod_client (own connection, own session) driven by its own
 * thread, add 1 to one counter back to back, with a request timeout, for a
 * fixed time, and write the wall-clock time of every acknowledged add to a
 * file as it happens, so a script can line acknowledgements up with the
 * faults it injects. Uses only the client API that every version of
 * libsynod has (the script builds it against an older one too), and the
 * library's default connect, attempt and stall bounds. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "synod.h"

#define CLIENTS_MAX 64

struct bench_args {
  const char *endpoints;
  const char *counter;
  const char *out_path;
  unsigned clients;
  unsigned seconds;
  unsigned timeout_ms;
};

/* One client's thread. The counts are written by the thread only and read
 * by main after pthread_join. */
struct bench_client {
  pthread_t thread;
  unsigned index;
  const struct bench_args *args;
  int out_fd; /* borrowed from main; O_APPEND, one write per ack */
  double deadline_s;
  unsigned long acks;
  unsigned long errors[SYNOD_EINTERNAL + 2]; /* by code; last: unknown */
  int new_rv;
};

static double bench_now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Writes one line "<seconds since the epoch>\n" in a single write(2), so
 * lines from several threads (and processes) appending to one file never
 * interleave. */
static void bench_ack_write(int fd, double t) {
  char line[32];
  int n = snprintf(line, sizeof line, "%.6f\n", t);
  if (write(fd, line, (size_t)n) != n) {
    perror("failover-clients: write");
  }
}

static void *bench_client_run(void *arg) {
  struct bench_client *bc = arg;
  struct synod_options opts;
  struct synod_client *c = NULL;
  char name[32];

  synod_options_init(&opts);
  opts.endpoints = bc->args->endpoints;
  snprintf(name, sizeof name, "failover-bench-%u", bc->index);
  opts.client_name = name;
  opts.request_timeout_ms = bc->args->timeout_ms;
  bc->new_rv = synod_client_new(&opts, &c);
  if (bc->new_rv != 0) {
    fprintf(stderr, "failover-clients: client %u: %s: %s\n", bc->index,
            synod_errname(bc->new_rv), synod_client_errmsg());
    return NULL;
  }
  while (bench_now_s() < bc->deadline_s) {
    int rv =
        synod_counter_add(c, bc->args->counter, 1, bc->args->timeout_ms, NULL);
    if (rv == 0) {
      bench_ack_write(bc->out_fd, bench_now_s());
      bc->acks++;
    } else {
      bc->errors[rv >= 0 && rv <= SYNOD_EINTERNAL ? rv : SYNOD_EINTERNAL + 1]++;
      /* A failure that returns at once (no endpoint reachable) must not
       * spin: a fresh synodctl process costs a few ms too. */
      if (rv != SYNOD_ETIMEDOUT) {
        usleep(5000);
      }
    }
  }
  synod_client_free(c);
  return NULL;
}

static void bench_usage(void) {
  fprintf(stderr,
          "usage: synod-bench-failover-clients --endpoints E --out FILE\n"
          "         [--clients N (8)] [--seconds S (12)] [--timeout-ms T "
          "(2000)]\n"
          "         [--counter NAME (failover)]\n"
          "Appends the time (s since the epoch) of every acknowledged add "
          "to FILE;\nprints the acknowledged adds and the errors by code.\n");
}

static int bench_args_parse(int argc, char **argv, struct bench_args *a) {
  *a = (struct bench_args){
      .counter = "failover", .clients = 8, .seconds = 12, .timeout_ms = 2000};
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];
    if (strcmp(k, "--endpoints") == 0) {
      a->endpoints = v;
    } else if (strcmp(k, "--out") == 0) {
      a->out_path = v;
    } else if (strcmp(k, "--counter") == 0) {
      a->counter = v;
    } else if (strcmp(k, "--clients") == 0) {
      a->clients = (unsigned)strtoul(v, NULL, 10);
    } else if (strcmp(k, "--seconds") == 0) {
      a->seconds = (unsigned)strtoul(v, NULL, 10);
    } else if (strcmp(k, "--timeout-ms") == 0) {
      a->timeout_ms = (unsigned)strtoul(v, NULL, 10);
    } else {
      return -1;
    }
  }
  if (argc % 2 == 0 || a->endpoints == NULL || a->out_path == NULL ||
      a->clients == 0 || a->clients > CLIENTS_MAX || a->timeout_ms == 0) {
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  static struct bench_client clients[CLIENTS_MAX];
  struct bench_args args;
  unsigned long acks = 0, errors[SYNOD_EINTERNAL + 2] = {0};
  int fd;

  if (bench_args_parse(argc, argv, &args) != 0) {
    bench_usage();
    return 2;
  }
  fd = open(args.out_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) {
    fprintf(stderr, "failover-clients: open %s: %s\n", args.out_path,
            strerror(errno));
    return 1;
  }
  double deadline_s = bench_now_s() + args.seconds;
  for (unsigned i = 0; i < args.clients; i++) {
    clients[i] = (struct bench_client){
        .index = i, .args = &args, .out_fd = fd, .deadline_s = deadline_s};
    if (pthread_create(&clients[i].thread, NULL, bench_client_run,
                       &clients[i]) != 0) {
      fprintf(stderr, "failover-clients: pthread_create failed\n");
      return 1;
    }
  }
  for (unsigned i = 0; i < args.clients; i++) {
    pthread_join(clients[i].thread, NULL);
    acks += clients[i].acks;
    for (int e = 0; e <= SYNOD_EINTERNAL + 1; e++) {
      errors[e] += clients[i].errors[e];
    }
  }
  close(fd);
  printf("clients=%u acknowledged=%lu", args.clients, acks);
  for (int e = 0; e <= SYNOD_EINTERNAL + 1; e++) {
    if (errors[e] > 0) {
      printf(" %s=%lu", e <= SYNOD_EINTERNAL ? synod_errname(e) : "other",
             errors[e]);
    }
  }
  printf("\n");
  return 0;
}
