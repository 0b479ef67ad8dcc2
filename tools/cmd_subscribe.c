/* synodctl subscribe: print a channel's messages as they come, each once
 * and in order (libsynod resumes after a failover where it left off),
 * optionally keeping a durable cursor so the next run goes on after the
 * last message this one printed.
 *
 * The cursor is committed after the messages are printed and flushed,
 * never before: a run that dies between the two prints some messages
 * again next time (at least once), and never skips one. Commits go in
 * batches (every COMMIT_EVERY messages or COMMIT_INTERVAL_MS), and always
 * before exiting. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"

#define COMMIT_EVERY 100
#define COMMIT_INTERVAL_MS 1000

static void subscribe_usage(FILE *out) {
  fprintf(
      out,
      "usage: synodctl subscribe CHANNEL [--prefix] [--from N|first|next]\n"
      "                          [--cursor NAME] [--count N] [--window N]\n"
      "                          [--json]\n\n"
      "Prints the messages of CHANNEL as they are published, one per line\n"
      "(--json: one object per line, {\"channel\",\"offset\",\"index\",\n"
      "\"time_ms\",\"data\"}, or \"data_base64\" for data that is not\n"
      "UTF-8), each once and in order, also across a failover, until\n"
      "--count messages were printed (then exit 0) or INT/TERM.\n\n"
      "  --prefix       every channel whose name starts with CHANNEL, in\n"
      "                 the cluster's order (\"\" for every channel)\n"
      "  --from WHERE   offset N (with --prefix: after log index N),\n"
      "                 first (the oldest retained) or next (the default:\n"
      "                 what is published from now on)\n"
      "  --cursor NAME  start after the durable cursor NAME (if it does not\n"
      "                 exist: --from, default first) and commit it as\n"
      "                 messages are printed (in batches, and before\n"
      "                 exiting), so the next run goes on after them\n"
      "  --window N     messages in flight to this process (default 1000)\n\n"
      "Exit status: 0 after --count messages or a signal; 1 when the\n"
      "subscription cannot start or ends: SYNOD_ECOMPACTED (its next\n"
      "message is no longer retained: start again with --from at the first\n"
      "available, named in the message), SYNOD_ENOTFOUND (the channel was\n"
      "deleted, or the cursor does not exist), or the cluster cannot be\n"
      "reached; 2 on usage errors.\n");
}

struct subscribe_args {
  struct synod_subscribe_options opts;
  uint64_t count; /* UINT64_MAX: no limit */
  bool from_given;
};

static int parse_u64(const char *s, uint64_t *out) {
  return s != NULL && ctl_uint64_parse(s, out) == 0 ? 0 : -1;
}

static int parse_from(const char *v, struct subscribe_args *a) {
  uint64_t n;
  a->from_given = true;
  if (v != NULL && strcmp(v, "first") == 0) {
    a->opts.from = SYNOD_FROM_FIRST;
  } else if (v != NULL && strcmp(v, "next") == 0) {
    a->opts.from = SYNOD_FROM_NEXT;
  } else if (parse_u64(v, &n) == 0) {
    a->opts.from = SYNOD_FROM_OFFSET;
    a->opts.offset = n;
    a->opts.after_index = n;
  } else {
    return -1;
  }
  return 0;
}

/* Parses argv (argv[0] "subscribe", argv[1] the channel). */
static int subscribe_parse(int argc, char **argv, struct subscribe_args *a) {
  memset(a, 0, sizeof *a);
  a->count = UINT64_MAX;
  a->opts.channel = argv[1];
  a->opts.from = SYNOD_FROM_NEXT;
  for (int i = 2; i < argc; i++) {
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    uint64_t n;
    if (strcmp(argv[i], "--prefix") == 0) {
      a->opts.prefix = true;
      continue;
    }
    if (strcmp(argv[i], "--from") == 0 && parse_from(v, a) == 0) {
    } else if (strcmp(argv[i], "--cursor") == 0 && v != NULL) {
      a->opts.cursor = v;
    } else if (strcmp(argv[i], "--count") == 0 && parse_u64(v, &n) == 0 &&
               n > 0) {
      a->count = n;
    } else if (strcmp(argv[i], "--window") == 0 && parse_u64(v, &n) == 0 &&
               n > 0 && n <= SYNOD_SUBSCRIBE_WINDOW_MAX) {
      a->opts.window = (uint32_t)n;
    } else {
      return -1;
    }
    i++;
  }
  if (a->opts.cursor != NULL && !a->from_given) {
    a->opts.from = SYNOD_FROM_FIRST; /* a new consumer: all there is */
  }
  return 0;
}

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The cursor's bookkeeping: what was printed and not yet committed. */
struct cursor_state {
  const char *name;   /* NULL: no cursor */
  uint64_t printed;   /* offset of the last message printed */
  uint64_t committed; /* offset last committed */
  unsigned pending;   /* printed since */
  uint64_t last_commit_ms;
};

/* Commits what was printed, if anything. Returns an exit code. */
static int cursor_commit(const struct ctl_opts *o, struct synod_client *c,
                         const char *channel, struct cursor_state *cs) {
  int rv;
  if (cs->name == NULL || cs->printed == cs->committed) {
    return CTL_EXIT_OK;
  }
  rv = synod_channel_cursor_commit(c, channel, cs->name, cs->printed, 0, NULL);
  if (rv != 0) {
    return ctl_fail(o, "subscribe: cursor commit", rv);
  }
  cs->committed = cs->printed;
  cs->pending = 0;
  cs->last_commit_ms = mono_ms();
  return CTL_EXIT_OK;
}

static void message_print(const struct ctl_opts *o,
                          const struct synod_channel_message *m) {
  if (o->json) {
    ctl_json_print(ctl_channel_message_json(m));
    return;
  }
  fwrite(m->data, 1, m->len, stdout);
  fputc('\n', stdout);
  fflush(stdout);
}

/* Prints until the count, a signal or the end. Returns the exit code. */
static int subscribe_loop(const struct ctl_opts *o, struct synod_client *c,
                          struct synod_subscription *sub,
                          const struct subscribe_args *a, const sigset_t *set,
                          struct cursor_state *cs) {
  uint64_t printed = 0;
  int code = CTL_EXIT_OK;
  bool gone = false;
  while (printed < a->count && code == CTL_EXIT_OK && !ctl_signalled(set)) {
    struct synod_channel_message m;
    int rv = synod_subscription_next(sub, CTL_POLL_MS, &m);
    if (rv == SYNOD_ETIMEDOUT) {
      if (cs->pending > 0 &&
          mono_ms() - cs->last_commit_ms >= COMMIT_INTERVAL_MS) {
        code = cursor_commit(o, c, a->opts.channel, cs);
      }
      continue;
    }
    if (rv != 0) {
      fprintf(stderr, "%s: subscribe: %s (%s)\n", o->prog,
              synod_client_errmsg(), synod_errname(rv));
      if (rv == SYNOD_ECOMPACTED) {
        fprintf(stderr,
                "%s: subscribe: to go on from what is still retained, "
                "run again with --from %" PRIu64 "\n",
                o->prog, synod_subscription_first_available(sub));
      }
      gone = rv == SYNOD_ENOTFOUND;
      code = CTL_EXIT_ERROR;
      break;
    }
    message_print(o, &m);
    printed++;
    cs->printed = m.offset;
    if (++cs->pending >= COMMIT_EVERY ||
        mono_ms() - cs->last_commit_ms >= COMMIT_INTERVAL_MS) {
      code = cursor_commit(o, c, a->opts.channel, cs);
    }
  }
  /* Even after an error: what was printed is done with. But not after
   * the channel was deleted: the commit names the channel, and would
   * land in one created again under the name, whose next run would then
   * skip that many of its messages. */
  int commit = gone ? CTL_EXIT_OK : cursor_commit(o, c, a->opts.channel, cs);
  return code != CTL_EXIT_OK ? code : commit;
}

int cmd_subscribe(const struct ctl_opts *o, int argc, char **argv) {
  struct subscribe_args a;
  struct synod_subscription *sub;
  struct synod_client *c;
  struct cursor_state cs = {0};
  sigset_t set, old;
  int rv, code;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      subscribe_usage(stdout);
      return CTL_EXIT_OK;
    }
  }
  if (argc < 2 || subscribe_parse(argc, argv, &a) != 0) {
    subscribe_usage(stderr);
    return CTL_EXIT_USAGE;
  }
  if (a.opts.cursor != NULL && a.opts.prefix) {
    fprintf(stderr,
            "%s: subscribe: a cursor is for one channel, not for "
            "--prefix\n",
            o->prog);
    return CTL_EXIT_USAGE;
  }
  ctl_signals_block(&set, &old);
  c = ctl_client(o, "subscribe", NULL);
  if (c == NULL) {
    return CTL_EXIT_ERROR;
  }
  rv = synod_subscribe(c, &a.opts, 0, &sub, NULL);
  if (rv != 0) {
    code = ctl_fail(o, "subscribe", rv);
    if (rv == SYNOD_ECOMPACTED) { /* the message names the offset */
      fprintf(stderr,
              "%s: subscribe: run again with --from the first available "
              "offset, to go on from what is still retained\n",
              o->prog);
    }
    synod_client_free(c);
    return code;
  }
  cs.name = a.opts.cursor;
  cs.last_commit_ms = mono_ms();
  code = subscribe_loop(o, c, sub, &a, &set, &cs);
  synod_subscription_close(sub);
  synod_client_free(c);
  return code;
}
