/* synodctl group join: be a member of a group while a command runs, the
 * view in its environment, with an optional hook run on each view.
 *
 * Threads (as `elect` and `lock`):
 *  - main: blocks the signals, joins (synod_group_member_join, under
 *    this process's own session), starts CMD, then waits for signals
 *    (sigtimedwait): INT/TERM/HUP are passed on to CMD, CHLD reaps CMD
 *    and the hook, USR1/USR2 say the reader saw the end or a new view;
 *  - the reader: takes the membership's events (synod_group_member_next,
 *    which must be taken or the membership's window stops its stream),
 *    keeps the environment of the newest view under `mu`, and wakes main;
 *  - libsynod's background thread (session renewals; session_cb says
 *    when renewals fail).
 *
 * The end. When CMD exits, synodctl leaves (a new view without the
 * member at once, not after the TTL) and exits with CMD's status. When
 * the membership ends under it (the session was lost: libsynod's own
 * deadline passed, or the servers expired it), the member is no longer
 * in the view, so CMD must not go on acting as one: it gets SIGTERM
 * (SIGKILL after --grace) and synodctl exits 76, as `lock` does when its
 * lock is lost. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "ctl.h"

#define JOIN_GRACE_DEFAULT_MS 10000

static void join_usage(FILE *out) {
  fprintf(
      out,
      "usage: synodctl group join NAME MEMBER [--data D] [--ttl D]\n"
      "                 [--on-view CMD] [--grace D] -- CMD [ARGS...]\n"
      "\n"
      "Joins group NAME as MEMBER (with --data D as its member data) under\n"
      "a session of its own, runs CMD while it is a member, and leaves\n"
      "when CMD exits. CMD's environment has the view at the join:\n"
      "  SYNOD_GROUP, SYNOD_MEMBER, SYNOD_VIEW_ID, SYNOD_VIEW_OFFSET,\n"
      "  SYNOD_MEMBERS (names in join order, joined by ','),\n"
      "  SYNOD_MEMBER_COUNT, SYNOD_COORDINATOR (the first member) and\n"
      "  SYNOD_IS_COORDINATOR (1 or 0).\n"
      "--on-view CMD  runs `sh -c CMD` with the same variables for each\n"
      "               view this member is in, the join's first; one at a\n"
      "               time: views that come while it runs give one more\n"
      "               run, with the newest view.\n"
      "--ttl D        the session TTL (default 10s; 1s..5m): a synodctl\n"
      "               that dies leaves the view within it.\n"
      "--grace D      after the membership is lost, SIGKILL CMD if it has\n"
      "               not exited within D of its SIGTERM (default 10s).\n"
      "INT, TERM and HUP are passed on to CMD; synodctl leaves once it\n"
      "exits. Messages and state requests to the member are not handed to\n"
      "CMD (see `group watch --member`); a state request addressed to it\n"
      "as coordinator is not answered.\n"
      "\n"
      "Exit status: CMD's own (128+N if killed by signal N); 75 if MEMBER\n"
      "is taken (another session holds it); 76 if the membership was lost\n"
      "(the session could not be renewed, or expired): CMD was stopped;\n"
      "1 on errors; 2 on usage errors.\n");
}

struct join_args {
  const char *group, *member;
  const char *data;
  const char *on_view; /* NULL: no hook */
  uint32_t ttl_ms, grace_ms;
  char **cmd;
};

/* Returns -1 to go on, else an exit code. */
static int join_parse(const struct ctl_opts *o, int argc, char **argv,
                      struct join_args *a) {
  memset(a, 0, sizeof *a);
  a->grace_ms = JOIN_GRACE_DEFAULT_MS;
  for (int i = 1; i < argc && a->cmd == NULL; i++) {
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    int rv = 0;
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      join_usage(stdout);
      return CTL_EXIT_OK;
    } else if (strcmp(argv[i], "--") == 0) {
      a->cmd = &argv[i + 1];
      continue;
    } else if (strcmp(argv[i], "--data") == 0 && v != NULL) {
      a->data = v;
    } else if (strcmp(argv[i], "--on-view") == 0 && v != NULL && v[0]) {
      a->on_view = v;
    } else if (strcmp(argv[i], "--ttl") == 0) {
      rv = ctl_duration_parse(v, &a->ttl_ms) != 0 || a->ttl_ms == 0;
    } else if (strcmp(argv[i], "--grace") == 0) {
      rv = ctl_duration_parse(v, &a->grace_ms);
    } else if (argv[i][0] != '-' && (a->group == NULL || a->member == NULL)) {
      *(a->group == NULL ? &a->group : &a->member) = argv[i];
      continue;
    } else {
      rv = 1;
    }
    if (rv != 0) {
      fprintf(stderr, "%s: group join: bad argument '%s%s%s'\n", o->prog,
              argv[i], v != NULL ? " " : "", v != NULL ? v : "");
      join_usage(stderr);
      return CTL_EXIT_USAGE;
    }
    i++; /* the option's value */
  }
  const char *missing = a->group == NULL || !a->group[0]      ? "NAME"
                        : a->member == NULL || !a->member[0]  ? "MEMBER"
                        : a->cmd == NULL || a->cmd[0] == NULL ? "-- CMD"
                                                              : NULL;
  if (missing != NULL) {
    fprintf(stderr, "%s: group join: %s missing\n", o->prog, missing);
    join_usage(stderr);
    return CTL_EXIT_USAGE;
  }
  return -1;
}

/* What main and the reader share. */
struct join {
  pthread_t main_thread;
  struct synod_group *g;
  const char *group, *member, *prog;
  uint64_t view_id; /* the reader's: the newest view taken */
  atomic_bool stop; /* main asks the reader to return */
  pthread_mutex_t mu;
  /* Under mu: */
  char **env; /* the newest view's, not yet taken by main */
  bool ended; /* the membership ended; end_rv says how */
  int end_rv;
  char end_why[256];
};

static void join_session_cb(void *arg, enum synod_session_state st,
                            uint64_t id) {
  struct join *j = arg;
  (void)id;
  if (st == SYNOD_SESSION_JEOPARDY) {
    fprintf(stderr,
            "%s: group join: session in jeopardy (renewals fail); member "
            "'%s' is removed if it cannot be renewed within the TTL\n",
            j->prog, j->member);
  }
}

/* Prints a view as it comes, to stderr (stdout is CMD's). */
static void view_say(const struct join *j, const struct synod_group_view *v) {
  fprintf(stderr, "%s: group join: %s: view %" PRIu64 " (offset %" PRIu64 "): ",
          j->prog, j->group, v->view_id, v->offset);
  for (size_t i = 0; i < v->count; i++) {
    fprintf(stderr, "%s%s%s", i > 0 ? "," : "", v->members[i].name,
            i == 0 ? "*" : "");
  }
  fputc('\n', stderr);
}

/* Hands the newest view's environment to main. */
static void reader_view(struct join *j, const struct synod_group_view *v) {
  bool in = false;
  for (size_t i = 0; i < v->count && !in; i++) {
    in = strcmp(v->members[i].name, j->member) == 0;
  }
  /* The join's own view is already in CMD's environment; a view without
   * the member is its leave's (or removal's), whose end follows. */
  if (v->view_id <= j->view_id || !in) {
    return;
  }
  j->view_id = v->view_id;
  view_say(j, v);
  char **env = ctl_group_env(j->group, j->member, v);
  pthread_mutex_lock(&j->mu);
  ctl_group_env_free(j->env);
  j->env = env; /* NULL when out of memory: that view gets no hook */
  pthread_mutex_unlock(&j->mu);
  pthread_kill(j->main_thread, SIGUSR2);
}

static void *reader_run(void *arg) {
  struct join *j = arg;
  while (!atomic_load(&j->stop)) {
    struct synod_group_event ev;
    int rv = synod_group_member_next(j->g, CTL_POLL_MS, &ev);
    if (rv == SYNOD_ETIMEDOUT) {
      continue;
    }
    if (rv != 0) {
      pthread_mutex_lock(&j->mu);
      j->ended = true;
      j->end_rv = rv;
      snprintf(j->end_why, sizeof j->end_why, "%s", synod_client_errmsg());
      pthread_mutex_unlock(&j->mu);
      pthread_kill(j->main_thread, SIGUSR1);
      break;
    }
    if (ev.type == SYNOD_GROUP_EVENT_VIEW) {
      reader_view(j, &ev.view);
    } else if (ev.type == SYNOD_GROUP_EVENT_STATE_REQUEST) {
      fprintf(stderr,
              "%s: group join: '%s' asks this member (the coordinator) for "
              "the group's state; synodctl stores none\n",
              j->prog, ev.item.member);
    }
    /* Messages and checkpoint notices: taken, so the stream goes on. */
  }
  return NULL;
}

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The children and what main knows of the membership. */
struct run {
  pid_t cmd, hook;  /* 0 once reaped */
  int cmd_status;   /* CMD's wait status */
  char **hook_env;  /* a view waiting for the hook (owned), or NULL */
  bool ended;       /* the reader saw the end */
  uint64_t kill_at; /* CMD gets SIGKILL then; 0: not asked */
};

static void run_reap(struct run *r) {
  int ws;
  if (r->cmd > 0 && waitpid(r->cmd, &r->cmd_status, WNOHANG) == r->cmd) {
    r->cmd = 0;
  }
  if (r->hook > 0 && waitpid(r->hook, &ws, WNOHANG) == r->hook) {
    r->hook = 0;
  }
}

/* Starts the hook with the waiting view, if it is free to run. */
static void run_hook(const struct join_args *a, struct run *r,
                     const sigset_t *old) {
  if (a->on_view == NULL || r->hook != 0 || r->hook_env == NULL || r->ended) {
    return;
  }
  char *argv[] = {"sh", "-c", (char *)a->on_view, NULL};
  r->hook = ctl_spawn(argv, old, r->hook_env, -1);
  if (r->hook < 0) {
    fprintf(stderr, "synodctl: group join: --on-view: fork: %s\n",
            strerror(errno));
    r->hook = 0;
  }
  ctl_group_env_free(r->hook_env);
  r->hook_env = NULL;
}

/* What the reader left for main: a new view for the hook, or the end
 * (CMD is then stopped). */
static void run_take(const struct ctl_opts *o, const struct join_args *a,
                     struct join *j, struct run *r) {
  pthread_mutex_lock(&j->mu);
  bool ended = j->ended && !r->ended;
  if (j->env != NULL) {
    ctl_group_env_free(r->hook_env);
    r->hook_env = j->env;
    j->env = NULL;
  }
  pthread_mutex_unlock(&j->mu);
  if (ended) {
    r->ended = true;
    fprintf(stderr,
            "%s: group join: member '%s' of group '%s' was removed: %s "
            "(%s)\n",
            o->prog, a->member, a->group, j->end_why, synod_errname(j->end_rv));
    if (r->cmd > 0) {
      fprintf(stderr, "%s: group join: stopping %s (pid %d)\n", o->prog,
              a->cmd[0], (int)r->cmd);
      kill(r->cmd, SIGTERM);
      r->kill_at = mono_ms() + a->grace_ms;
    }
  }
}

/* Waits until CMD exits, passing signals on, running the hook and
 * stopping CMD if the membership ends. */
static void run_wait(const struct ctl_opts *o, const struct join_args *a,
                     struct join *j, struct run *r, const sigset_t *set,
                     const sigset_t *old) {
  struct timespec tick = {0, CTL_POLL_MS * 1000000L};
  while (r->cmd > 0) {
    int sig = sigtimedwait(set, NULL, &tick);
    if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) {
      kill(r->cmd, sig); /* CMD decides; we leave once it exits */
    }
    run_reap(r); /* on every turn: SIGCHLDs merge */
    run_take(o, a, j, r);
    run_hook(a, r, old);
    if (r->cmd > 0 && r->kill_at != 0 && mono_ms() >= r->kill_at) {
      fprintf(stderr, "%s: group join: %s did not stop in %u ms: SIGKILL\n",
              o->prog, a->cmd[0], a->grace_ms);
      kill(r->cmd, SIGKILL);
      r->kill_at = 0;
    }
  }
}

/* A hook still running when CMD is done may finish within the grace;
 * then it is left to itself. */
static void hook_wait(const struct join_args *a, struct run *r,
                      const sigset_t *set) {
  struct timespec tick = {0, CTL_POLL_MS * 1000000L};
  uint64_t until = mono_ms() + a->grace_ms;
  while (r->hook > 0 && mono_ms() < until) {
    sigtimedwait(set, NULL, &tick);
    run_reap(r);
  }
}

/* Joins; returns -1 with *g and the first view's environment, else the
 * exit code. */
static int join_enter(const struct ctl_opts *o, struct synod_client *c,
                      const struct join_args *a, struct join *j, char ***env) {
  struct synod_group_join_options jo = {
      .group = a->group,
      .member = a->member,
      .data = a->data,
      .data_len = a->data != NULL ? strlen(a->data) : 0,
  };
  struct synod_group_ready ready;
  int rv = synod_group_member_join(c, &jo, 0, &j->g, &ready);
  if (rv == SYNOD_EEXIST) {
    fprintf(stderr,
            "%s: group join: member '%s' of group '%s' is taken (another "
            "session holds it): %s\n",
            o->prog, a->member, a->group, synod_client_errmsg());
    return CTL_EXIT_BUSY;
  }
  if (rv != 0) {
    return ctl_fail(o, "group join", rv);
  }
  j->view_id = ready.view.view_id;
  view_say(j, &ready.view);
  *env = ctl_group_env(a->group, a->member, &ready.view);
  synod_group_ready_free(&ready);
  if (*env == NULL) {
    fprintf(stderr, "%s: group join: out of memory\n", o->prog);
    return CTL_EXIT_ERROR;
  }
  return -1;
}

/* Leaves (unless the membership already ended). Returns an exit code for
 * a failed leave, else `code`. */
static int join_leave(const struct ctl_opts *o, const struct join_args *a,
                      struct join *j, bool ended, int code) {
  if (ended) {
    return code;
  }
  int rv = synod_group_member_leave(j->g, 0);
  if (rv != 0) {
    fprintf(stderr,
            "%s: group join: leave '%s': %s (%s); the member goes when the "
            "session ends\n",
            o->prog, a->member, synod_client_errmsg(), synod_errname(rv));
  }
  return code;
}

/* Runs CMD (and the hook) while a member. Returns the exit code. */
static int join_hold(const struct ctl_opts *o, const struct join_args *a,
                     struct join *j, char **env, const sigset_t *set,
                     const sigset_t *old) {
  struct run r = {0};
  pthread_t reader;
  if (ctl_signalled(set)) { /* asked to stop while joining */
    ctl_group_env_free(env);
    return join_leave(o, a, j, false, CTL_EXIT_OK);
  }
  r.cmd = ctl_spawn(a->cmd, old, env, -1);
  if (r.cmd < 0) {
    fprintf(stderr, "%s: group join: fork: %s\n", o->prog, strerror(errno));
    ctl_group_env_free(env);
    return join_leave(o, a, j, false, CTL_EXIT_ERROR);
  }
  r.hook_env = env; /* the hook's first run: the join's view */
  run_hook(a, &r, old);
  int rv = pthread_create(&reader, NULL, reader_run, j);
  if (rv != 0) {
    fprintf(stderr, "%s: group join: pthread_create: %s; stopping %s\n",
            o->prog, strerror(rv), a->cmd[0]);
    kill(r.cmd, SIGTERM);
  }
  run_wait(o, a, j, &r, set, old);
  run_take(o, a, j, &r); /* an end that came with CMD's */
  int code =
      r.ended ? (j->end_rv == SYNOD_ESESSION ? CTL_EXIT_LOST : CTL_EXIT_ERROR)
              : ctl_exit_code(r.cmd_status);
  code = join_leave(o, a, j, r.ended, code);
  atomic_store(&j->stop, true);
  if (rv == 0) {
    pthread_join(reader, NULL);
  }
  hook_wait(a, &r, set);
  ctl_group_env_free(r.hook_env);
  return code;
}

int cmd_group_join(const struct ctl_opts *global, int argc, char **argv) {
  struct ctl_opts o = *global;
  struct join_args a;
  struct join j = {.prog = global->prog};
  struct synod_options extra;
  sigset_t set, old;
  char **env = NULL;
  int code = join_parse(&o, argc, argv, &a);
  if (code >= 0) {
    return code;
  }
  if (a.ttl_ms != 0) {
    o.ttl_ms = a.ttl_ms;
  }
  j.group = a.group;
  j.member = a.member;
  j.main_thread = pthread_self();
  atomic_init(&j.stop, false);
  pthread_mutex_init(&j.mu, NULL);
  ctl_signals_block(&set, &old); /* before any thread starts */
  synod_options_init(&extra);
  extra.session_cb = join_session_cb;
  extra.cb_arg = &j;
  struct synod_client *c = ctl_client(&o, "group join", &extra);
  if (c == NULL) {
    return CTL_EXIT_ERROR;
  }
  code = join_enter(&o, c, &a, &j, &env);
  if (code < 0) {
    code = join_hold(&o, &a, &j, env, &set, &old);
  }
  synod_group_member_close(j.g);
  synod_client_free(c);
  ctl_group_env_free(j.env);
  pthread_mutex_destroy(&j.mu);
  return code;
}
