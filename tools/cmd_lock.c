/* synodctl lock and once: run a command under a lock, or once per slot. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"

#define LOCK_WAIT_DEFAULT_MS (24u * 3600 * 1000)
#define LOCK_GRACE_DEFAULT_MS 10000

/* Set by the client's thread when our lock is lost; the main thread is
 * woken with SIGUSR1 and stops the command. */
struct lock_watch {
  const char *name;
  uint64_t owner_id;
  atomic_bool lost;
  pthread_t main_thread;
  const char *prog;
};

static void lock_event_cb(void *arg, enum synod_lock_event ev, const char *name,
                          uint64_t owner_id, uint64_t token) {
  struct lock_watch *w = arg;
  if (strcmp(name, w->name) != 0 || owner_id != w->owner_id) {
    return;
  }
  if (ev == SYNOD_LOCK_JEOPARDY) {
    fprintf(stderr,
            "%s: lock '%s' (token %" PRIu64 ") in jeopardy: "
            "the session could not be renewed\n",
            w->prog, name, token);
  } else if (ev == SYNOD_LOCK_SAFE) {
    fprintf(stderr, "%s: lock '%s' safe again\n", w->prog, name);
  } else {
    atomic_store(&w->lost, true);
    pthread_kill(w->main_thread, SIGUSR1);
  }
}

static void lock_usage(FILE *out) {
  fprintf(out,
          "usage: synodctl lock NAME [--timeout D] [--try] [--owner ID]\n"
          "                     [--grace D] [--lock-delay D] -- CMD [ARGS...]\n"
          "\n"
          "Acquires lock NAME (waiting up to --timeout, default 24h; --try:\n"
          "do not wait), runs CMD with SYNOD_LOCK_NAME and SYNOD_LOCK_TOKEN\n"
          "(the fencing token) in its environment, and releases the lock\n"
          "when CMD exits. INT, TERM and HUP are passed on to CMD. If the\n"
          "lock is lost (the session could not be renewed), CMD gets\n"
          "SIGTERM, then SIGKILL after --grace (default 10s).\n"
          "Durations: 500ms, 10s, 2m, 1h (a bare number is seconds).\n"
          "\n"
          "Exit status: CMD's own (128+N if killed by signal N); 75 if the\n"
          "lock is held elsewhere (--try) or was not granted within\n"
          "--timeout; 76 if the lock was lost while CMD ran; 1 on errors;\n"
          "2 on usage errors.\n");
}

struct lock_args {
  const char *name;
  uint32_t wait_ms;
  bool try_only;
  uint64_t owner_id;
  uint32_t grace_ms;
  uint32_t lock_delay_ms;
  char **cmd;
};

/* Parses NAME, options and "-- CMD...". Returns -1 to go on, else an exit
 * code. */
static int lock_parse(int argc, char **argv, struct lock_args *la) {
  la->wait_ms = LOCK_WAIT_DEFAULT_MS;
  la->grace_ms = LOCK_GRACE_DEFAULT_MS;
  la->owner_id = (uint64_t)getpid();
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    int rv = 0;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      lock_usage(stdout);
      return CTL_EXIT_OK;
    } else if (strcmp(a, "--") == 0) {
      la->cmd = &argv[i + 1];
      break;
    } else if (strcmp(a, "--try") == 0) {
      la->try_only = true;
      continue;
    } else if (strcmp(a, "--timeout") == 0) {
      rv = ctl_duration_parse(v, &la->wait_ms);
    } else if (strcmp(a, "--grace") == 0) {
      rv = ctl_duration_parse(v, &la->grace_ms);
    } else if (strcmp(a, "--lock-delay") == 0) {
      rv = ctl_duration_parse(v, &la->lock_delay_ms);
    } else if (strcmp(a, "--owner") == 0) {
      rv = ctl_uint64_parse(v, &la->owner_id);
    } else if (la->name == NULL && a[0] != '-') {
      la->name = a;
      continue;
    } else {
      rv = SYNOD_EINVAL;
    }
    if (rv != 0) {
      fprintf(stderr, "synodctl lock: bad argument '%s%s%s'\n", a, v ? " " : "",
              v ? v : "");
      lock_usage(stderr);
      return CTL_EXIT_USAGE;
    }
    i++; /* the option's value */
  }
  if (la->name == NULL || la->cmd == NULL || la->cmd[0] == NULL) {
    lock_usage(stderr);
    return CTL_EXIT_USAGE;
  }
  return -1;
}

/* Acquires; returns -1 when held, else the exit code. */
static int lock_take(const struct ctl_opts *o, struct synod_client *c,
                     const struct lock_args *la, struct synod_lock_grant *g) {
  int rv = la->try_only ? synod_lock_try(c, la->name, la->owner_id, g)
                        : synod_lock_acquire(c, la->name, la->owner_id,
                                             la->wait_ms ? la->wait_ms : 1, g);
  if (rv == SYNOD_ELOCKED || (rv == SYNOD_ETIMEDOUT && !la->try_only)) {
    fprintf(stderr, "%s: lock '%s' %s\n", o->prog, la->name,
            rv == SYNOD_ELOCKED ? "is held elsewhere" : "not granted in time");
    return CTL_EXIT_BUSY;
  }
  return rv == 0 ? -1 : ctl_fail(o, "lock", rv);
}

int cmd_lock(const struct ctl_opts *o, int argc, char **argv) {
  struct lock_args la = {0};
  struct lock_watch w = {.prog = o->prog};
  struct synod_options extra;
  struct synod_lock_grant g;
  struct synod_client *c;
  sigset_t set, old;
  char token_env[64], name_env[SYNOD_NAME_MAX + 32];
  bool was_lost;
  int code = lock_parse(argc, argv, &la);
  if (code >= 0) {
    return code;
  }
  w.name = la.name;
  w.owner_id = la.owner_id;
  w.main_thread = pthread_self();
  atomic_init(&w.lost, false);
  ctl_signals_block(&set, &old);
  synod_options_init(&extra);
  extra.lock_cb = lock_event_cb;
  extra.cb_arg = &w;
  extra.lock_delay_ms = la.lock_delay_ms;
  c = ctl_client(o, "lock", &extra);
  if (c == NULL) {
    return CTL_EXIT_ERROR;
  }
  code = lock_take(o, c, &la, &g);
  if (code >= 0) {
    goto out;
  }
  snprintf(token_env, sizeof token_env, "SYNOD_LOCK_TOKEN=%" PRIu64, g.token);
  snprintf(name_env, sizeof name_env, "SYNOD_LOCK_NAME=%s", la.name);
  char *env[] = {token_env, name_env, NULL};
  code = ctl_run_child(o, la.cmd, &set, &old, env, &w.lost, la.grace_ms,
                       &was_lost);
  if (code < 0) {
    code = CTL_EXIT_ERROR;
  }
  if (was_lost) {
    code = CTL_EXIT_LOST;
  } else {
    int rv = synod_lock_release(c, la.name, la.owner_id, 0, NULL);
    if (rv != 0) {
      fprintf(stderr, "%s: release '%s': %s (closing the session frees it)\n",
              o->prog, la.name, synod_client_errmsg());
    }
  }
out:
  synod_client_free(c);
  return code;
}

/* ---------------------------------------------------------------- once */

static void once_usage(FILE *out) {
  fprintf(out,
          "usage: synodctl once JOB SLOT -- CMD [ARGS...]\n"
          "\n"
          "Runs CMD at most once per SLOT of JOB across all machines that\n"
          "run the same line (a cron entry on every replica). SLOT is a\n"
          "non-negative integer that grows with time, e.g. $(date "
          "+%%Y%%m%%d%%H%%M).\n"
          "The claim is a compare-and-set of counter once/JOB from its\n"
          "current value v to SLOT, tried while v < SLOT.\n"
          "\n"
          "Exit status: CMD's own when this machine claimed the slot; 75 if\n"
          "the slot (or a later one) was already claimed: CMD did not run;\n"
          "1 on errors; 2 on usage errors.\n");
}

/* Claims the slot: 0 when claimed, CTL_EXIT_BUSY when taken, else error. */
static int once_claim(const struct ctl_opts *o, struct synod_client *c,
                      const char *counter, int64_t slot) {
  struct synod_counter_cas cas;
  int64_t v;
  int rv = synod_counter_get(c, counter, 0, 0, &v);
  if (rv != 0) {
    return ctl_fail(o, "once: read", rv);
  }
  while (v < slot) {
    rv = synod_counter_cas(c, counter, v, slot, 0, &cas);
    if (rv != 0) {
      return ctl_fail(o, "once: claim", rv);
    }
    if (cas.swapped) {
      return 0;
    }
    rv = synod_counter_get(c, counter, 0, 0, &v);
    if (rv != 0) {
      return ctl_fail(o, "once: read", rv);
    }
  }
  fprintf(stderr,
          "%s: once: slot %" PRId64 " of %s already taken (at %" PRId64
          "): not running\n",
          o->prog, slot, counter + 5, v);
  return CTL_EXIT_BUSY;
}

int cmd_once(const struct ctl_opts *o, int argc, char **argv) {
  char counter[SYNOD_NAME_MAX + 1];
  struct synod_client *c;
  sigset_t set, old;
  int64_t slot;
  bool was_lost;
  int code;
  if (argc >= 2 &&
      (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    once_usage(stdout);
    return CTL_EXIT_OK;
  }
  if (argc < 5 || strcmp(argv[3], "--") != 0 ||
      ctl_int64_parse(argv[2], &slot) != 0 || slot < 0 ||
      strlen(argv[1]) + 5 > SYNOD_NAME_MAX) {
    once_usage(stderr);
    return CTL_EXIT_USAGE;
  }
  snprintf(counter, sizeof counter, "once/%s", argv[1]);
  ctl_signals_block(&set, &old);
  c = ctl_client(o, "once", NULL);
  if (c == NULL) {
    return CTL_EXIT_ERROR;
  }
  code = once_claim(o, c, counter, slot);
  synod_client_free(c); /* nothing is held while CMD runs */
  if (code != 0) {
    return code;
  }
  code = ctl_run_child(o, &argv[4], &set, &old, NULL, NULL, 0, &was_lost);
  return code < 0 ? CTL_EXIT_ERROR : code;
}
