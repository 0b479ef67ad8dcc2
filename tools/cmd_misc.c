/* synodctl counter, elect, leader, observe, status. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "util.h" /* endpoints_parse */

static bool is_help(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) {
      return false;
    }
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      return true;
    }
  }
  return false;
}

/* ------------------------------------------------------------ counter */

static void counter_usage(FILE *out) {
  fprintf(out,
          "usage: synodctl counter get NAME [--stale]\n"
          "       synodctl counter set NAME VALUE\n"
          "       synodctl counter add NAME DELTA [--previous]\n"
          "       synodctl counter cas NAME EXPECT UPDATE\n"
          "       synodctl counter delete NAME\n"
          "       synodctl counter list [PREFIX] [--after NAME] [--limit N]\n"
          "\n"
          "Counters are int64, created at 0. get/set/add print the value\n"
          "(add --previous: the value before adding); cas prints the value\n"
          "after it. --json prints one object instead.\n"
          "Exit status: 0; 75 when cas did not swap; 1 on errors (also\n"
          "overflow); 2 on usage errors.\n");
}

static int counter_print(const struct ctl_opts *o, const char *name,
                         int64_t v) {
  if (o->json) {
    ctl_json_print(
        json_pack("{s:s, s:I}", "name", name, "value", (json_int_t)v));
  } else {
    printf("%" PRId64 "\n", v);
  }
  return CTL_EXIT_OK;
}

static int counter_list(const struct ctl_opts *o, struct synod_client *c,
                        int argc, char **argv) {
  const char *prefix = NULL, *after = NULL;
  uint64_t limit = 0;
  struct synod_counter_list l;
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--after") == 0 && i + 1 < argc) {
      after = argv[++i];
    } else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc &&
               ctl_uint64_parse(argv[i + 1], &limit) == 0 &&
               limit <= UINT32_MAX) {
      i++;
    } else if (prefix == NULL && argv[i][0] != '-') {
      prefix = argv[i];
    } else {
      counter_usage(stderr);
      return CTL_EXIT_USAGE;
    }
  }
  int rv = synod_counter_list(c, prefix, after, (uint32_t)limit, 0, 0, &l);
  if (rv != 0) {
    return ctl_fail(o, "counter list", rv);
  }
  if (o->json) {
    ctl_json_print(ctl_counter_list_json(&l));
  } else {
    for (size_t i = 0; i < l.count; i++) {
      printf("%s\t%" PRId64 "\n", l.entries[i].name, l.entries[i].value);
    }
    if (l.more) {
      printf("... (more: --after %s)\n", l.entries[l.count - 1].name);
    }
  }
  synod_counter_list_free(&l);
  return CTL_EXIT_OK;
}

/* One of get/set/add/cas/delete on argv[2]. */
static int counter_one(const struct ctl_opts *o, struct synod_client *c,
                       int argc, char **argv) {
  const char *op = argv[1], *name = argv[2];
  int64_t x = 0, y = 0, v = 0;
  struct synod_counter_cas cas;
  bool flag = argc == 5 && (strcmp(argv[4], "--previous") == 0 ||
                            strcmp(argv[4], "--stale") == 0);
  bool existed;
  int want = strcmp(op, "cas") == 0                             ? 5
             : strcmp(op, "set") == 0 || strcmp(op, "add") == 0 ? 4
                                                                : 3;
  int rv;
  if (!(argc == want || (argc == want + 1 && flag) ||
        (argc == 4 && strcmp(op, "get") == 0 &&
         strcmp(argv[3], "--stale") == 0)) ||
      (want >= 4 && ctl_int64_parse(argv[3], &x) != 0) ||
      (want == 5 && ctl_int64_parse(argv[4], &y) != 0)) {
    counter_usage(stderr);
    return CTL_EXIT_USAGE;
  }
  if (strcmp(op, "get") == 0) {
    rv = synod_counter_get(c, name, argc == 4 ? SYNOD_READ_STALE : 0, 0, &v);
  } else if (strcmp(op, "set") == 0) {
    rv = synod_counter_set(c, name, x, 0);
    v = x;
  } else if (strcmp(op, "add") == 0) {
    rv = flag ? synod_counter_get_add(c, name, x, 0, &v)
              : synod_counter_add(c, name, x, 0, &v);
  } else if (strcmp(op, "cas") == 0) {
    rv = synod_counter_cas(c, name, x, y, 0, &cas);
    v = cas.value;
  } else if (strcmp(op, "delete") == 0) {
    rv = synod_counter_delete(c, name, 0, &existed);
    if (rv == 0) {
      o->json ? ctl_json_print(
                    json_pack("{s:s, s:b}", "name", name, "existed", existed))
              : (void)printf("%s\n", existed ? "deleted" : "did not exist");
      return CTL_EXIT_OK;
    }
  } else {
    counter_usage(stderr);
    return CTL_EXIT_USAGE;
  }
  if (rv != 0) {
    return ctl_fail(o, "counter", rv);
  }
  if (strcmp(op, "cas") == 0 && o->json) {
    ctl_json_print(json_pack("{s:s, s:b, s:I}", "name", name, "swapped",
                             cas.swapped, "value", (json_int_t)cas.value));
    return cas.swapped ? CTL_EXIT_OK : CTL_EXIT_BUSY;
  }
  counter_print(o, name, v);
  return strcmp(op, "cas") == 0 && !cas.swapped ? CTL_EXIT_BUSY : CTL_EXIT_OK;
}

int cmd_counter(const struct ctl_opts *o, int argc, char **argv) {
  struct synod_client *c;
  int code;
  if (is_help(argc, argv)) {
    counter_usage(stdout);
    return CTL_EXIT_OK;
  }
  if (argc < 2 || (argc < 3 && strcmp(argv[1], "list") != 0)) {
    counter_usage(stderr);
    return CTL_EXIT_USAGE;
  }
  c = ctl_client(o, "counter", NULL);
  if (c == NULL) {
    return CTL_EXIT_ERROR;
  }
  code = strcmp(argv[1], "list") == 0 ? counter_list(o, c, argc, argv)
                                      : counter_one(o, c, argc, argv);
  synod_client_free(c);
  return code;
}

/* ---------------------------------------------------- leader / observe */

static void election_print(const struct ctl_opts *o,
                           const struct synod_election_info *info) {
  char line[1024];
  if (o->json) {
    ctl_json_print(ctl_election_json(info));
    return;
  }
  ctl_election_line(info, line, sizeof line);
  printf("%s\n", line);
  fflush(stdout);
}

int cmd_leader(const struct ctl_opts *o, int argc, char **argv) {
  struct synod_election_info info;
  struct synod_client *c;
  int rv;
  if (is_help(argc, argv) || argc != 2) {
    fprintf(argc == 2 ? stdout : stderr,
            "usage: synodctl leader NAME\n\n"
            "Prints the leader of election NAME (its value, session and\n"
            "revision). Exit status: 0 with a leader, 75 without one, 1 on\n"
            "errors, 2 on usage errors.\n");
    return argc == 2 ? CTL_EXIT_OK : CTL_EXIT_USAGE;
  }
  c = ctl_client(o, "leader", NULL);
  if (c == NULL) {
    return CTL_EXIT_ERROR;
  }
  rv = synod_election_leader(c, argv[1], 0, 0, &info);
  synod_client_free(c);
  if (rv != 0) {
    return ctl_fail(o, "leader", rv);
  }
  election_print(o, &info);
  rv = info.has_leader ? CTL_EXIT_OK : CTL_EXIT_BUSY;
  synod_election_info_free(&info);
  return rv;
}

/* The latest report from the client's thread, handed to the main one. */
struct watch {
  pthread_mutex_t mu;
  pthread_t main_thread;
  struct synod_election_info latest;
  bool fresh;
  atomic_bool session_lost;
};

static void watch_election_cb(void *arg, int status,
                              const struct synod_election_info *info) {
  struct watch *w = arg;
  if (status != 0) {
    return;
  }
  pthread_mutex_lock(&w->mu);
  synod_election_info_free(&w->latest);
  w->latest = *info;
  w->latest.name = strdup(info->name);
  w->latest.value = malloc(info->value_len + 1);
  if (w->latest.value != NULL) {
    memcpy(w->latest.value, info->value, info->value_len + 1);
  }
  w->fresh = true;
  pthread_mutex_unlock(&w->mu);
  pthread_kill(w->main_thread, SIGUSR2);
}

static void watch_session_cb(void *arg, enum synod_session_state st,
                             uint64_t id) {
  struct watch *w = arg;
  (void)id;
  if (st == SYNOD_SESSION_LOST) {
    atomic_store(&w->session_lost, true);
    pthread_kill(w->main_thread, SIGUSR1);
  }
}

/* Takes the latest report, if any: returns true and fills *out. */
static bool watch_take(struct watch *w, struct synod_election_info *out) {
  bool fresh;
  pthread_mutex_lock(&w->mu);
  fresh = w->fresh;
  if (fresh) {
    *out = w->latest;
    memset(&w->latest, 0, sizeof w->latest);
    w->fresh = false;
  }
  pthread_mutex_unlock(&w->mu);
  return fresh;
}

static struct synod_client *watch_client(const struct ctl_opts *o,
                                         const char *cmd, struct watch *w) {
  struct synod_options extra;
  memset(w, 0, sizeof *w);
  pthread_mutex_init(&w->mu, NULL);
  w->main_thread = pthread_self();
  synod_options_init(&extra);
  extra.election_cb = watch_election_cb;
  extra.session_cb = watch_session_cb;
  extra.cb_arg = w;
  return ctl_client(o, cmd, &extra);
}

int cmd_observe(const struct ctl_opts *o, int argc, char **argv) {
  struct synod_election_info info;
  struct synod_client *c;
  struct watch w;
  sigset_t set, old;
  int sig, rv;
  if (is_help(argc, argv) || argc != 2) {
    fprintf(argc == 2 ? stdout : stderr,
            "usage: synodctl observe NAME\n\n"
            "Prints the leader of election NAME, then one line per change,\n"
            "until INT or TERM. Exit status: 0, 1 on errors, 2 on usage.\n");
    return argc == 2 ? CTL_EXIT_OK : CTL_EXIT_USAGE;
  }
  ctl_signals_block(&set, &old);
  c = watch_client(o, "observe", &w);
  if (c == NULL) {
    return CTL_EXIT_ERROR;
  }
  rv = synod_election_observe(c, argv[1], 0, &info);
  if (rv != 0) {
    synod_client_free(c);
    return ctl_fail(o, "observe", rv);
  }
  election_print(o, &info);
  synod_election_info_free(&info);
  while ((sig = sigwaitinfo(&set, NULL)) != SIGINT && sig != SIGTERM &&
         sig != SIGHUP) {
    if (watch_take(&w, &info)) {
      election_print(o, &info);
      synod_election_info_free(&info);
    }
  }
  synod_client_free(c);
  synod_election_info_free(&w.latest);
  return CTL_EXIT_OK;
}
