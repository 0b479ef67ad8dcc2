/* synodctl: the command-line tool of synod. Global options, then one
 * command (tools/cmd_*.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "version.h"

static void usage(FILE *out) {
  fprintf(
      out,
      "usage: synodctl [--endpoints LIST] [--timeout D] [--ttl D]\n"
      "                [--connect-timeout D] [--json] COMMAND [ARGS...]\n"
      "\n"
      "commands:\n"
      "  dev [--replicas N] [--dir DIR] [--base-port P]   a local cluster\n"
      "  status                       every replica's role, term, indexes\n"
      "  ready [--max-lag N]          exit 0 if the replica at the first\n"
      "                               endpoint is ready (readinessProbe)\n"
      "  lock NAME [--try] [--timeout D] -- CMD...   run CMD under a lock\n"
      "  once JOB SLOT -- CMD...      run CMD once per SLOT across hosts\n"
      "  counter get|set|add|cas|delete|list ...\n"
      "  elect NAME VALUE [--http ADDR]  campaign, hold until signalled;\n"
      "                               --http: answer GET / with the leader\n"
      "                               (the leader-elector sidecar's shape)\n"
      "  leader NAME                  print the leader of an election\n"
      "  observe NAME                 print every change of an election\n"
      "  member remove NAME           remove a replica that is gone for good\n"
      "  publish CHANNEL MESSAGE...|- publish messages (- : lines of stdin)\n"
      "  subscribe CHANNEL [--prefix] [--from N|first|next] [--cursor NAME]\n"
      "            [--count N]        print messages as they come, each once\n"
      "                               (--cursor: resume after the last run)\n"
      "  channel read|info|list|create|delete|cursor ...   channels'\n"
      "                               messages, limits and cursors\n"
      "  key put|get|del|list|txn ... keys: put (--session-bound: held\n"
      "                               while synodctl runs), compare-and-\n"
      "                               put, get, delete, list, transactions\n"
      "  key watch KEY [--prefix] [--from REV|now] [--prev] [--count N]\n"
      "                               print every put and delete as it\n"
      "                               comes, in revision order, each once\n"
      "  group join NAME MEMBER [--data D] [--on-view CMD] -- CMD...\n"
      "                               a member of group NAME while CMD\n"
      "                               runs, the view in CMD's environment\n"
      "  group view|list|watch|send ...  a group's view (members in join\n"
      "                               order, coordinator first), the\n"
      "                               groups, its stream, messages to all\n"
      "                               or --to one member\n"
      "  version\n"
      "`synodctl COMMAND --help` describes each.\n"
      "\n"
      "options:\n"
      "  --endpoints LIST  host:port,... (default: $SYNOD_ENDPOINTS, else\n"
      "                    %s)\n"
      "  --timeout D       per request (default 10s); 500ms, 10s, 2m, 1h\n"
      "  --ttl D           session TTL (default 10s, 1s..5m)\n"
      "  --connect-timeout D  per connection attempt: the TCP connect,\n"
      "                    then the server's first answer, each (default:\n"
      "                    $SYNOD_CONNECT_TIMEOUT, else 300ms; at most a\n"
      "                    third of --timeout). A replica that accepts and\n"
      "                    does not answer in time is left for another.\n"
      "  --json            one JSON object per line, for scripts\n"
      "                    (--json and --endpoints may also follow the\n"
      "                    command)\n"
      "\n"
      "exit status:\n"
      "  0   success\n"
      "  1   error: no replica reachable, request refused or timed out;\n"
      "      not ready (ready); a subscription that ended (subscribe:\n"
      "      SYNOD_ECOMPACTED, SYNOD_ENOTFOUND)\n"
      "  2   usage error\n"
      "  75  busy: lock held elsewhere or not granted in time (lock),\n"
      "      slot already taken (once), no swap (counter cas),\n"
      "      no leader (leader), a compare did not hold (key),\n"
      "      the member name is taken (group join)\n"
      "  76  lost: the lock (lock), the candidacy (elect), a held\n"
      "      session-bound key (key put --session-bound) or the\n"
      "      membership (group join: CMD is stopped) was lost\n"
      "      because the session could not be renewed or expired\n"
      "  77  compacted: the next event of a key watch is no longer in\n"
      "      the servers' history (key watch --from REV), or the next\n"
      "      item of a group watch no longer retained; the message\n"
      "      names the oldest one held\n"
      "  lock, once and group join otherwise exit with CMD's status\n"
      "  (128+N if CMD was killed by signal N).\n",
      SYNOD_ENDPOINTS_DEFAULT);
}

/* Takes --json and --endpoints wherever they appear before "--" (they
 * mean the same to every command), removing them from argv. */
static int take_anywhere(struct ctl_opts *o, int *argc, char **argv) {
  int j = 0;
  bool rest = false;
  for (int i = 0; i < *argc; i++) {
    if (!rest && strcmp(argv[i], "--") == 0) {
      rest = true;
    } else if (!rest && strcmp(argv[i], "--json") == 0) {
      o->json = true;
      continue;
    } else if (!rest && strcmp(argv[i], "--endpoints") == 0) {
      if (i + 1 >= *argc) {
        return -1;
      }
      o->endpoints = argv[++i];
      continue;
    }
    argv[j++] = argv[i];
  }
  *argc = j;
  argv[j] = NULL;
  return 0;
}

/* Parses the options before the command. Returns the index of the
 * command, or -1 on a usage error. */
static int take_global(struct ctl_opts *o, int argc, char **argv) {
  int i;
  for (i = 1; i < argc && argv[i][0] == '-'; i++) {
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(argv[i], "--timeout") == 0 && v &&
        ctl_duration_parse(v, &o->timeout_ms) == 0) {
      i++;
    } else if (strcmp(argv[i], "--ttl") == 0 && v &&
               ctl_duration_parse(v, &o->ttl_ms) == 0) {
      i++;
    } else if (strcmp(argv[i], "--connect-timeout") == 0 && v &&
               ctl_duration_parse(v, &o->connect_timeout_ms) == 0 &&
               o->connect_timeout_ms > 0) {
      i++;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0 ||
               strcmp(argv[i], "--version") == 0) {
      return i;
    } else {
      fprintf(stderr, "synodctl: bad option '%s'\n", argv[i]);
      return -1;
    }
  }
  return i < argc ? i : -1;
}

int main(int argc, char **argv) {
  static const struct {
    const char *name;
    int (*run)(const struct ctl_opts *, int, char **);
  } cmds[] = {{"dev", cmd_dev},
              {"status", cmd_status},
              {"lock", cmd_lock},
              {"once", cmd_once},
              {"counter", cmd_counter},
              {"elect", cmd_elect},
              {"leader", cmd_leader},
              {"observe", cmd_observe},
              {"member", cmd_member},
              {"ready", cmd_ready},
              {"publish", cmd_publish},
              {"channel", cmd_channel},
              {"subscribe", cmd_subscribe},
              {"key", cmd_key},
              {"group", cmd_group}};
  struct ctl_opts o = {.prog = "synodctl"};
  const char *env = getenv("SYNOD_CONNECT_TIMEOUT");
  int i;
  if (env != NULL && env[0] != '\0' &&
      (ctl_duration_parse(env, &o.connect_timeout_ms) != 0 ||
       o.connect_timeout_ms == 0)) {
    fprintf(stderr, "synodctl: bad SYNOD_CONNECT_TIMEOUT '%s'\n", env);
    return CTL_EXIT_USAGE;
  }
  if (take_anywhere(&o, &argc, argv) != 0 ||
      (i = take_global(&o, argc, argv)) < 0) {
    usage(stderr);
    return CTL_EXIT_USAGE;
  }
  if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0 ||
      strcmp(argv[i], "help") == 0) {
    usage(stdout);
    return CTL_EXIT_OK;
  }
  if (strcmp(argv[i], "version") == 0 || strcmp(argv[i], "--version") == 0) {
    printf("synodctl %s\n", SYNOD_VERSION);
    return CTL_EXIT_OK;
  }
  for (size_t k = 0; k < sizeof cmds / sizeof cmds[0]; k++) {
    if (strcmp(argv[i], cmds[k].name) == 0) {
      return cmds[k].run(&o, argc - i, argv + i);
    }
  }
  fprintf(stderr, "synodctl: unknown command '%s'\n", argv[i]);
  usage(stderr);
  return CTL_EXIT_USAGE;
}
