/* synodctl's processes and plumbing: the client, errors, signals, and the
 * child that `lock` and `once` run. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

struct synod_client *ctl_client(const struct ctl_opts *o, const char *cmd,
                                struct synod_options *extra) {
  struct synod_options opts;
  struct synod_client *c;
  char name[64];
  int rv;
  if (extra != NULL) {
    opts = *extra;
  } else {
    synod_options_init(&opts);
  }
  snprintf(name, sizeof name, "synodctl %s", cmd);
  opts.endpoints = o->endpoints;
  opts.client_name = name;
  opts.request_timeout_ms = o->timeout_ms;
  opts.connect_timeout_ms = o->connect_timeout_ms;
  opts.session_ttl_ms = o->ttl_ms;
  rv = synod_client_new(&opts, &c);
  if (rv != 0) {
    fprintf(stderr, "%s: %s: %s\n", o->prog, cmd, synod_client_errmsg());
    return NULL;
  }
  return c;
}

int ctl_fail(const struct ctl_opts *o, const char *what, int rv) {
  fprintf(stderr, "%s: %s: %s (%s)\n", o->prog, what, synod_client_errmsg(),
          synod_errname(rv));
  return CTL_EXIT_ERROR;
}

bool ctl_signalled(const sigset_t *set) {
  struct timespec zero = {0, 0};
  int sig;
  while ((sig = sigtimedwait(set, NULL, &zero)) > 0) {
    if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) {
      return true;
    }
  }
  return false;
}

void ctl_signals_block(sigset_t *set, sigset_t *old) {
  sigemptyset(set);
  sigaddset(set, SIGINT);
  sigaddset(set, SIGTERM);
  sigaddset(set, SIGHUP);
  sigaddset(set, SIGCHLD);
  sigaddset(set, SIGUSR1);
  sigaddset(set, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, set, old);
}

extern char **environ;

/* environ plus the "K=V" additions (which win), for execvpe. */
static char **env_merge(char *const add[]) {
  size_t n = 0, k = 0, j = 0;
  char **out;
  while (environ[n] != NULL) {
    n++;
  }
  while (add != NULL && add[k] != NULL) {
    k++;
  }
  out = calloc(n + k + 1, sizeof *out);
  if (out == NULL) {
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    bool overridden = false;
    for (size_t a = 0; a < k && !overridden; a++) {
      size_t klen = strcspn(add[a], "=");
      overridden = strncmp(environ[i], add[a], klen + 1) == 0;
    }
    if (!overridden) {
      out[j++] = environ[i];
    }
  }
  for (size_t a = 0; a < k; a++) {
    out[j++] = add[a];
  }
  return out;
}

pid_t ctl_spawn(char *const argv[], const sigset_t *old, char *const env[],
                int stdout_fd) {
  static const char msg[] = "synodctl: cannot execute the command\n";
  char **envp = env_merge(env);
  pid_t pid;
  if (envp == NULL) {
    errno = ENOMEM;
    return -1;
  }
  pid = fork();
  if (pid != 0) {
    free(envp);
    return pid;
  }
  /* Child of a threaded parent: async-signal-safe calls only. */
  signal(SIGPIPE, SIG_DFL);
  pthread_sigmask(SIG_SETMASK, old, NULL);
  if (stdout_fd >= 0) {
    dup2(stdout_fd, STDOUT_FILENO);
    dup2(stdout_fd, STDERR_FILENO);
    close(stdout_fd);
  }
  execvpe(argv[0], argv, envp);
  if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) {
    _exit(127);
  }
  _exit(127);
}

int ctl_exit_code(int wstatus) {
  if (WIFEXITED(wstatus)) {
    return WEXITSTATUS(wstatus);
  }
  if (WIFSIGNALED(wstatus)) {
    return 128 + WTERMSIG(wstatus);
  }
  return CTL_EXIT_ERROR;
}

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Handles one signal taken while the child runs. Returns true once the
 * child has been reaped into *wstatus. */
static bool child_signal(pid_t pid, int sig, int *wstatus) {
  switch (sig) {
  case SIGCHLD:
    return waitpid(pid, wstatus, WNOHANG) == pid;
  case SIGINT:
  case SIGTERM:
  case SIGHUP:
    kill(pid, sig); /* the child decides; we wait for it */
    return false;
  default:
    return false;
  }
}

int ctl_run_child(const struct ctl_opts *o, char *const argv[],
                  const sigset_t *set, const sigset_t *old, char *const env[],
                  atomic_bool *lost, uint32_t grace_ms, bool *was_lost) {
  struct timespec tick = {0, 200 * 1000000L};
  uint64_t kill_at = 0;
  int wstatus = 0;
  pid_t pid = ctl_spawn(argv, old, env, -1);
  *was_lost = false;
  if (pid < 0) {
    fprintf(stderr, "%s: fork: %s\n", o->prog, strerror(errno));
    return -1;
  }
  for (;;) {
    int sig = sigtimedwait(set, NULL, &tick);
    if (sig > 0 && child_signal(pid, sig, &wstatus)) {
      break;
    }
    if (waitpid(pid, &wstatus, WNOHANG) == pid) {
      break; /* a SIGCHLD merged with another: check on every turn */
    }
    if (lost != NULL && atomic_load(lost) && !*was_lost) {
      *was_lost = true;
      fprintf(stderr, "%s: lock lost: stopping %s (pid %d)\n", o->prog, argv[0],
              (int)pid);
      kill(pid, SIGTERM);
      kill_at = mono_ms() + grace_ms;
    }
    if (*was_lost && kill_at != 0 && mono_ms() >= kill_at) {
      fprintf(stderr, "%s: %s did not stop in %u ms: SIGKILL\n", o->prog,
              argv[0], grace_ms);
      kill(pid, SIGKILL);
      kill_at = 0;
    }
  }
  return ctl_exit_code(wstatus);
}
