/* synodctl group: a group's view, the groups, its stream and sends
 * (issue 23; `group join` is cmd_group_join.c).
 *
 * `group watch` follows the stream pushed by a group watch
 * (synod_group_watch: a subscription without membership, resumed by
 * offset across failovers), so each line carries its offset, nothing is
 * skipped or repeated, and `--from LAST+1` goes on where a run stopped. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static void group_usage(FILE *out) {
  fprintf(
      out,
      "usage: synodctl group join NAME MEMBER [--data D] [--ttl D]\n"
      "                 [--on-view CMD] [--grace D] -- CMD [ARGS...]\n"
      "       synodctl group view NAME [--stale] [--json]\n"
      "       synodctl group list [--after NAME] [--limit N] [--json]\n"
      "       synodctl group watch NAME [--from N] [--member M] [--count N]\n"
      "                 [--json]\n"
      "       synodctl group send NAME [--to MEMBER] MESSAGE...|-\n"
      "\n"
      "A group (issue 23) is a name with members in join order, the first\n"
      "the coordinator; every join and leave makes the next view, and\n"
      "views and messages are one stream at dense offsets, in the\n"
      "cluster's order. `synodctl group join --help` describes join.\n"
      "\n"
      "view   the current view: view id and its offset, the members in\n"
      "       join order (the coordinator marked *), the retained stream\n"
      "       (offsets first..next) and the latest checkpoint.\n"
      "list   every group, in name order (--after, --limit: one page).\n"
      "watch  prints the stream, one line per item, from --from N (an\n"
      "       offset still retained) or else from the next item:\n"
      "         OFFSET view ID members=A,B coordinator=A [joined=B]\n"
      "                [left=C]   (members=? before the view current\n"
      "                when the watch started, if it started before it)\n"
      "         OFFSET message from=F|- to=M|* DATA\n"
      "         OFFSET state_request member=M to=COORDINATOR\n"
      "         OFFSET checkpoint offset=N bytes=B member=M\n"
      "       (--json: one object per item). --member M: only what M\n"
      "       receives (views, notices, messages to all and to M).\n"
      "       --count N: exit 0 after N items; else until INT/TERM. To\n"
      "       go on after a run, --from its last OFFSET + 1.\n"
      "send   sends each MESSAGE (with -: each line of stdin) to every\n"
      "       member, or --to MEMBER to that member only; prints each\n"
      "       one's offset and log index once committed.\n"
      "\n"
      "Exit status: 0; 1 on errors (no such group or member: "
      "SYNOD_ENOTFOUND;\nthe group was deleted while watched: its last "
      "member left);\n77 when watch's next item is no longer retained (the "
      "message names\nthe first retained offset); 2 on usage errors.\n");
}

static bool wants_help(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) {
      return false; /* join's command may have its own --help */
    }
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      return true;
    }
  }
  return false;
}

static int usage_error(const struct ctl_opts *o, const char *what) {
  fprintf(stderr, "%s: group: %s\n", o->prog, what);
  group_usage(stderr);
  return CTL_EXIT_USAGE;
}

/* Prints "PROG: group CMD: message (NAME)" and returns the exit code. A
 * group that does not exist is said plainly. */
static int group_fail(const struct ctl_opts *o, const char *what, int rv) {
  const char *msg = synod_client_errmsg();
  /* The servers' messages name the call already ("group view: no
   * group ..."). */
  if (strncmp(msg, what, strlen(what)) == 0) {
    fprintf(stderr, "%s: %s (%s)\n", o->prog, msg, synod_errname(rv));
    return CTL_EXIT_ERROR;
  }
  return ctl_fail(o, what, rv);
}

/* Prints n bytes escaped (ctl_escape). */
static void escaped_print(const void *data, size_t n) {
  char *text = malloc(4 * n + 1);
  if (text == NULL) {
    fputs("(out of memory)", stdout);
    return;
  }
  ctl_escape(text, data, n);
  fputs(text, stdout);
  free(text);
}

static void str_print(const char *s) {
  escaped_print(s, strlen(s));
}

/* -------------------------------------------------------------- view */

static void checkpoint_line(const struct synod_group_info *g) {
  if (!g->has_checkpoint) {
    printf("checkpoint: none\n");
    return;
  }
  printf("checkpoint: offset %" PRIu64 ", %" PRIu64 " bytes, by ",
         g->checkpoint.offset, g->checkpoint.bytes);
  str_print(g->checkpoint.member != NULL ? g->checkpoint.member : "");
  printf(" at index %" PRIu64 " (%s)\n", g->checkpoint.index,
         g->checkpoint_usable ? "usable: every item after it is retained"
                              : "not usable: items after it were dropped");
}

static void view_print(const struct ctl_opts *o,
                       const struct synod_group_info *g) {
  const struct synod_group_view *v = &g->view;
  if (o->json) {
    ctl_json_print(ctl_group_info_json(g, true));
    return;
  }
  str_print(g->name);
  printf(": view %" PRIu64 " at offset %" PRIu64 ", %u members\n", v->view_id,
         v->offset, g->members);
  for (size_t i = 0; i < v->count; i++) {
    const struct synod_group_member *m = &v->members[i];
    printf("  %s ", i == 0 ? "*" : " ");
    str_print(m->name);
    printf("  session %" PRIu64 "  joined at %" PRIu64, m->session_id,
           m->joined_offset);
    if (m->data_len > 0) {
      fputs("  data ", stdout);
      escaped_print(m->data, m->data_len);
    }
    printf("%s\n", i == 0 ? "  (coordinator)" : "");
  }
  printf("stream: offsets %" PRIu64 "..%" PRIu64 " retained (next %" PRIu64
         "), %" PRIu64 " bytes; %u state requests pending\n",
         g->first_offset, g->next_offset > 0 ? g->next_offset - 1 : 0,
         g->next_offset, g->bytes, g->state_requests);
  checkpoint_line(g);
}

static int group_view(const struct ctl_opts *o, struct synod_client *c,
                      int argc, char **argv) {
  const char *name = NULL;
  unsigned flags = 0;
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--stale") == 0) {
      flags |= SYNOD_READ_STALE;
    } else if (name == NULL && argv[i][0] != '-') {
      name = argv[i];
    } else {
      return usage_error(o, "view: one NAME, and --stale or --json");
    }
  }
  if (name == NULL) {
    return usage_error(o, "view: which group? (NAME)");
  }
  struct synod_group_info g;
  int rv = synod_group_view_get(c, name, flags, 0, &g);
  if (rv != 0) {
    return group_fail(o, "group view", rv);
  }
  view_print(o, &g);
  synod_group_info_free(&g);
  return CTL_EXIT_OK;
}

/* -------------------------------------------------------------- list */

static int group_list(const struct ctl_opts *o, struct synod_client *c,
                      int argc, char **argv) {
  const char *after = NULL;
  uint64_t limit = 0;
  for (int i = 2; i < argc; i++) {
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(argv[i], "--after") == 0 && v != NULL) {
      after = v;
    } else if (strcmp(argv[i], "--limit") == 0 &&
               ctl_uint64_parse(v, &limit) == 0 && limit > 0 &&
               limit <= UINT32_MAX) {
    } else {
      return usage_error(o, "list: --after NAME, --limit N (N >= 1)");
    }
    i++;
  }
  bool one_page = after != NULL || limit > 0;
  char *cursor = after != NULL ? strdup(after) : NULL;
  int code = CTL_EXIT_OK;
  for (;;) {
    struct synod_group_list l;
    int rv = synod_group_list(c, cursor, (uint32_t)limit, 0, 0, &l);
    if (rv != 0) {
      code = group_fail(o, "group list", rv);
      break;
    }
    for (size_t i = 0; i < l.count; i++) {
      const struct synod_group_info *g = &l.groups[i];
      if (o->json) {
        ctl_json_print(ctl_group_info_json(g, false));
        continue;
      }
      str_print(g->name);
      printf("\tview %" PRIu64 "\t%u members\toffsets %" PRIu64 "..%" PRIu64
             "\tcheckpoint %s\n",
             g->view.view_id, g->members, g->first_offset,
             g->next_offset > 0 ? g->next_offset - 1 : 0,
             g->has_checkpoint ? (g->checkpoint_usable ? "yes" : "unusable")
                               : "none");
    }
    bool more = l.more && l.count > 0 && !one_page;
    free(cursor);
    cursor = more ? strdup(l.groups[l.count - 1].name) : NULL;
    synod_group_list_free(&l);
    if (!more) {
      break;
    }
  }
  free(cursor);
  return code;
}

/* ------------------------------------------------------------- watch */

struct watch_args {
  const char *name;
  const char *member; /* NULL: every item */
  uint64_t from;      /* 0: the next item */
  uint64_t count;     /* UINT64_MAX: no limit */
};

static int watch_parse(int argc, char **argv, struct watch_args *a) {
  memset(a, 0, sizeof *a);
  a->count = UINT64_MAX;
  for (int i = 2; i < argc; i++) {
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(argv[i], "--from") == 0 && ctl_uint64_parse(v, &a->from) == 0 &&
        a->from > 0) {
      i++;
    } else if (strcmp(argv[i], "--count") == 0 &&
               ctl_uint64_parse(v, &a->count) == 0 && a->count > 0) {
      i++;
    } else if (strcmp(argv[i], "--member") == 0 && v != NULL && v[0] != '\0') {
      a->member = v;
      i++;
    } else if (a->name == NULL && argv[i][0] != '-') {
      a->name = argv[i];
    } else {
      return -1;
    }
  }
  return a->name != NULL && a->name[0] != '\0' ? 0 : -1;
}

/* "A,B,C" of the names, escaped. */
static void names_print(char *const *names, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (i > 0) {
      fputc(',', stdout);
    }
    str_print(names[i]);
  }
}

static void view_item_print(const struct synod_group_item *it,
                            const struct ctl_group_members *m) {
  printf("%" PRIu64 " view %" PRIu64 " members=", it->offset, it->view_id);
  if (m->known) {
    names_print(m->names, m->n);
    fputs(" coordinator=", stdout);
    str_print(m->n > 0 ? m->names[0] : "");
  } else {
    fputs("? coordinator=?", stdout);
  }
  if (it->joined_n > 0) {
    fputs(" joined=", stdout);
    for (size_t i = 0; i < it->joined_n; i++) {
      printf("%s", i > 0 ? "," : "");
      str_print(it->joined[i].name);
    }
  }
  if (it->left_n > 0) {
    fputs(" left=", stdout);
    names_print(it->left, it->left_n);
  }
}

static void item_print(const struct ctl_opts *o, const char *group,
                       const struct synod_group_item *it,
                       const struct ctl_group_members *m) {
  if (o->json) {
    ctl_json_print(ctl_group_item_json(group, it, m));
    return;
  }
  switch (it->type) {
  case SYNOD_GROUP_ITEM_VIEW:
    view_item_print(it, m);
    break;
  case SYNOD_GROUP_ITEM_MESSAGE:
    printf("%" PRIu64 " message from=", it->offset);
    str_print(it->from[0] != '\0' ? it->from : "-");
    fputs(" to=", stdout);
    str_print(it->to[0] != '\0' ? it->to : "*");
    fputc(' ', stdout);
    escaped_print(it->data, it->len);
    break;
  case SYNOD_GROUP_ITEM_STATE_REQUEST:
    printf("%" PRIu64 " state_request member=", it->offset);
    str_print(it->member);
    fputs(" to=", stdout);
    str_print(it->to);
    break;
  case SYNOD_GROUP_ITEM_CHECKPOINT:
    printf("%" PRIu64 " checkpoint offset=%" PRIu64 " bytes=%" PRIu64
           " member=",
           it->offset, it->checkpoint.offset, it->checkpoint.bytes);
    str_print(it->checkpoint.member != NULL ? it->checkpoint.member : "");
    break;
  default:
    printf("%" PRIu64 " %s", it->offset, ctl_group_item_type(it->type));
  }
  fputc('\n', stdout);
  fflush(stdout);
}

/* The watch could not go on: rv from its start or its next item, at
 * `from`. */
static int watch_fail(const struct ctl_opts *o, const char *group, int rv,
                      uint64_t from, bool started) {
  if (rv == SYNOD_ECOMPACTED) {
    fprintf(stderr, "%s: group watch: %s (SYNOD_ECOMPACTED)\n", o->prog,
            synod_client_errmsg());
    fprintf(stderr,
            "%s: group watch: offset %" PRIu64 " of '%s' is no longer "
            "retained; --from the first retained offset (above) goes on "
            "from there, skipping what is lost\n",
            o->prog, from, group);
    return CTL_EXIT_COMPACTED;
  }
  if (started && rv == SYNOD_ENOTFOUND) {
    fprintf(stderr,
            "%s: group watch: group '%s' no longer exists (its last member "
            "left) (SYNOD_ENOTFOUND)\n",
            o->prog, group);
    return CTL_EXIT_ERROR;
  }
  if (started && rv == SYNOD_ERANGE) {
    fprintf(stderr,
            "%s: group watch: group '%s' ended and began again (its offsets "
            "start over): %s (SYNOD_ERANGE)\n",
            o->prog, group, synod_client_errmsg());
    return CTL_EXIT_ERROR;
  }
  return group_fail(o, "group watch", rv);
}

/* Where to start, and the members known there: the current view (and
 * with it every view after it) when the watch starts at or after it. */
static int watch_start(const struct ctl_opts *o, struct synod_client *c,
                       struct watch_args *a, struct ctl_group_members *m,
                       struct synod_group_view *current) {
  struct synod_group_info g;
  int rv = synod_group_view_get(c, a->name, 0, 0, &g);
  if (rv != 0) {
    return group_fail(o, "group watch", rv);
  }
  if (a->from == 0) {
    a->from = g.next_offset;
  }
  fprintf(stderr, "%s: group watch: %s from offset %" PRIu64 "\n", o->prog,
          a->name, a->from);
  if (a->from > g.view.offset) {
    ctl_group_members_set(m, &g.view);
  }
  /* Kept so that a watch from before it knows the members from there. */
  *current = g.view;
  memset(&g.view, 0, sizeof g.view);
  synod_group_info_free(&g);
  return -1;
}

/* The stream pushed (synod_group_watch), from `from`: each item printed
 * with the members known there, until --count items or a signal. */
static int watch_loop(const struct ctl_opts *o, struct synod_client *c,
                      const struct watch_args *a, const sigset_t *set,
                      struct ctl_group_members *m,
                      const struct synod_group_view *current) {
  uint64_t from = a->from, printed = 0;
  struct synod_group_watch *w = NULL;
  int rv = synod_group_watch(c, a->name, a->member, from, 0, 0, &w, NULL);
  if (rv != 0) {
    return watch_fail(o, a->name, rv, from, false);
  }
  int code = CTL_EXIT_OK;
  while (printed < a->count && !ctl_signalled(set)) {
    struct synod_group_item it;
    /* Bounded, so that a signal is seen within CTL_POLL_MS. */
    rv = synod_group_watch_next(w, CTL_POLL_MS, &it);
    if (rv == SYNOD_ETIMEDOUT) {
      continue;
    }
    if (rv != 0) {
      code = watch_fail(o, a->name, rv, from, true);
      break;
    }
    if (it.offset == current->offset) {
      ctl_group_members_set(m, current); /* the view known from here */
    } else {
      ctl_group_members_apply(m, &it);
    }
    item_print(o, a->name, &it, m);
    from = it.offset + 1;
    printed++;
  }
  synod_group_watch_close(w);
  return code;
}

static int group_watch(const struct ctl_opts *o, struct synod_client *c,
                       int argc, char **argv, const sigset_t *set) {
  struct watch_args a;
  struct ctl_group_members m = {0};
  struct synod_group_view current = {0};
  if (watch_parse(argc, argv, &a) != 0) {
    return usage_error(o, "watch: NAME [--from N>=1] [--member M] "
                          "[--count N>=1]");
  }
  int code = watch_start(o, c, &a, &m, &current);
  if (code < 0) {
    code = watch_loop(o, c, &a, set, &m, &current);
  }
  synod_group_view_free(&current);
  ctl_group_members_free(&m);
  return code;
}

/* -------------------------------------------------------------- send */

static int send_one(const struct ctl_opts *o, struct synod_client *c,
                    const char *group, const char *to, const char *msg,
                    size_t len) {
  struct synod_group_sent s;
  int rv = synod_group_send(c, group, to, NULL, msg, len, 0, &s);
  if (rv != 0) {
    return group_fail(o, "group send", rv);
  }
  if (o->json) {
    ctl_json_print(json_pack("{s:s, s:I, s:I, s:b}", "group", group, "offset",
                             (json_int_t)s.offset, "index", (json_int_t)s.index,
                             "duplicate", s.duplicate));
  } else {
    printf("%" PRIu64 " index %" PRIu64 "%s\n", s.offset, s.index,
           s.duplicate ? " (duplicate)" : "");
    fflush(stdout);
  }
  return CTL_EXIT_OK;
}

static int send_stdin(const struct ctl_opts *o, struct synod_client *c,
                      const char *group, const char *to) {
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  int code = CTL_EXIT_OK;
  while (code == CTL_EXIT_OK && (len = getline(&line, &cap, stdin)) >= 0) {
    if (len > 0 && line[len - 1] == '\n') {
      line[--len] = '\0';
    }
    code = send_one(o, c, group, to, line, (size_t)len);
  }
  free(line);
  return code;
}

static int group_send(const struct ctl_opts *o, struct synod_client *c,
                      int argc, char **argv) {
  const char *name = NULL, *to = NULL;
  int first = 0;
  for (int i = 2; i < argc && first == 0; i++) {
    if (strcmp(argv[i], "--to") == 0 && i + 1 < argc && argv[i + 1][0]) {
      to = argv[++i];
    } else if (strcmp(argv[i], "--") == 0 && name != NULL) {
      first = i + 1;
    } else if (name == NULL && argv[i][0] != '-') {
      name = argv[i];
    } else if (name != NULL && (argv[i][0] != '-' || !strcmp(argv[i], "-"))) {
      first = i;
    } else {
      return usage_error(o, "send: NAME [--to MEMBER] MESSAGE...|-");
    }
  }
  if (name == NULL || first == 0 || first >= argc) {
    return usage_error(o, "send: NAME [--to MEMBER] MESSAGE...|-");
  }
  if (argc - first == 1 && strcmp(argv[first], "-") == 0) {
    return send_stdin(o, c, name, to);
  }
  for (int i = first; i < argc; i++) {
    int code = send_one(o, c, name, to, argv[i], strlen(argv[i]));
    if (code != CTL_EXIT_OK) {
      return code;
    }
  }
  return CTL_EXIT_OK;
}

/* ---------------------------------------------------------- dispatch */

int cmd_group(const struct ctl_opts *o, int argc, char **argv) {
  static const char *const subs[] = {"view", "list", "watch", "send"};
  sigset_t set, old;
  if (argc >= 2 && strcmp(argv[1], "join") == 0) {
    return cmd_group_join(o, argc - 1, argv + 1);
  }
  if (wants_help(argc, argv)) {
    group_usage(stdout);
    return CTL_EXIT_OK;
  }
  size_t k = 0;
  while (argc >= 2 && k < sizeof subs / sizeof *subs &&
         strcmp(argv[1], subs[k]) != 0) {
    k++;
  }
  if (argc < 2 || k == sizeof subs / sizeof *subs) {
    return usage_error(o,
                       argc < 2 ? "which subcommand?" : "unknown subcommand");
  }
  /* Usage errors are found before connecting: parse twice is cheap, so
   * the subcommands parse again; here only what needs no client. */
  if (k == 2) {
    struct watch_args a;
    if (watch_parse(argc, argv, &a) != 0) {
      return usage_error(o, "watch: NAME [--from N>=1] [--member M] "
                            "[--count N>=1]");
    }
    ctl_signals_block(&set, &old); /* before the client's thread starts */
  }
  char what[32];
  snprintf(what, sizeof what, "group %s", subs[k]);
  struct synod_client *c = ctl_client(o, what, NULL);
  if (c == NULL) {
    return CTL_EXIT_ERROR;
  }
  int code;
  switch (k) {
  case 0:
    code = group_view(o, c, argc, argv);
    break;
  case 1:
    code = group_list(o, c, argc, argv);
    break;
  case 2:
    code = group_watch(o, c, argc, argv, &set);
    break;
  default:
    code = group_send(o, c, argc, argv);
  }
  synod_client_free(c);
  return code;
}
