/* synodctl publish and synodctl channel: publish messages, read a channel
 * from an offset, create, inspect, list and delete channels, and get or
 * commit their durable cursors. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

#define PUBLISH_BATCH_MAX 1000

static bool wants_help(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      return true;
    }
  }
  return false;
}

static int parse_u64(const char *s, uint64_t *out) {
  char *end;
  if (s == NULL || *s == '\0' || *s == '-') {
    return -1;
  }
  *out = strtoull(s, &end, 10);
  return *end == '\0' ? 0 : -1;
}

/* ----------------------------------------------------------- publish */

static void publish_usage(FILE *out) {
  fprintf(out,
          "usage: synodctl publish CHANNEL [--id ID] MESSAGE...\n"
          "       synodctl publish CHANNEL [--id ID] -   (lines of stdin)\n\n"
          "Publishes the messages, in one batch at consecutive offsets, once\n"
          "committed on a majority; prints the offsets (first last) and\n"
          "the log index. With -, every line of stdin is a message (batches\n"
          "of %d, one line of output each). --id: a message id the server\n"
          "deduplicates (a retry of a script that may have published already\n"
          "appends nothing); with -, the first batch has ID, the k-th ID/k,\n"
          "so a retry with the same input appends nothing either.\n",
          PUBLISH_BATCH_MAX);
}

static int publish_batch(const struct ctl_opts *o, struct synod_client *c,
                         const char *channel, const char *id, char **msgs,
                         size_t n) {
  const void *ptrs[PUBLISH_BATCH_MAX];
  size_t lens[PUBLISH_BATCH_MAX];
  struct synod_channel_published p;
  for (size_t i = 0; i < n; i++) {
    ptrs[i] = msgs[i];
    lens[i] = strlen(msgs[i]);
  }
  int rv = synod_channel_publish(c, channel, ptrs, lens, n, id, 0, &p);
  if (rv != 0) {
    return ctl_fail(o, "publish", rv);
  }
  if (o->json) {
    ctl_json_print(json_pack("{s:s, s:I, s:I, s:I, s:b}", "channel", channel,
                             "first_offset", (json_int_t)p.first_offset,
                             "last_offset", (json_int_t)p.last_offset, "index",
                             (json_int_t)p.index, "duplicate", p.duplicate));
  } else {
    printf("%" PRIu64 " %" PRIu64 " index %" PRIu64 "%s\n", p.first_offset,
           p.last_offset, p.index, p.duplicate ? " (duplicate)" : "");
  }
  return CTL_EXIT_OK;
}

/* The message id of stdin's k-th batch (from 1): the id given for the
 * first, "id/k" for the others. One id for all of them had the server
 * take every batch after the first for a retry of it, and drop it. */
static const char *batch_id(const char *id, size_t k, char *buf, size_t size) {
  if (id == NULL || k == 1) {
    return id;
  }
  snprintf(buf, size, "%s/%zu", id, k);
  return buf;
}

/* Publishes stdin's lines in batches. */
static int publish_stdin(const struct ctl_opts *o, struct synod_client *c,
                         const char *channel, const char *id) {
  char *lines[PUBLISH_BATCH_MAX];
  char idbuf[1024];
  size_t n = 0, cap = 0, batches = 0;
  char *line = NULL;
  ssize_t len;
  int code = CTL_EXIT_OK;
  while (code == CTL_EXIT_OK && (len = getline(&line, &cap, stdin)) >= 0) {
    if (len > 0 && line[len - 1] == '\n') {
      line[len - 1] = '\0';
    }
    lines[n++] = line;
    line = NULL;
    cap = 0;
    if (n == PUBLISH_BATCH_MAX) {
      code =
          publish_batch(o, c, channel,
                        batch_id(id, ++batches, idbuf, sizeof idbuf), lines, n);
      while (n > 0) {
        free(lines[--n]);
      }
    }
  }
  free(line);
  if (code == CTL_EXIT_OK && n > 0) {
    code = publish_batch(
        o, c, channel, batch_id(id, ++batches, idbuf, sizeof idbuf), lines, n);
  }
  while (n > 0) {
    free(lines[--n]);
  }
  return code;
}

int cmd_publish(const struct ctl_opts *o, int argc, char **argv) {
  const char *id = NULL;
  int first = 2;
  if (wants_help(argc, argv)) {
    publish_usage(stdout);
    return CTL_EXIT_OK;
  }
  if (argc >= 4 && strcmp(argv[2], "--id") == 0) {
    id = argv[3];
    first = 4;
  }
  if (argc <= first || argc - first > PUBLISH_BATCH_MAX) {
    publish_usage(stderr);
    return CTL_EXIT_USAGE;
  }
  bool from_stdin = argc - first == 1 && strcmp(argv[first], "-") == 0;
  if (from_stdin && id != NULL && strlen(id) > SYNOD_NAME_MAX - 8) {
    /* The k-th batch's id is ID/k: room for "/" and 7 digits. */
    fprintf(stderr,
            "%s: publish: an --id of %zu bytes; with - at most %d (each "
            "batch of stdin adds /N to it)\n",
            o->prog, strlen(id), SYNOD_NAME_MAX - 8);
    return CTL_EXIT_USAGE;
  }
  struct synod_client *c = ctl_client(o, "publish", NULL);
  if (c == NULL) {
    return CTL_EXIT_ERROR;
  }
  int code = from_stdin ? publish_stdin(o, c, argv[1], id)
                        : publish_batch(o, c, argv[1], id, argv + first,
                                        (size_t)(argc - first));
  synod_client_free(c);
  return code;
}

/* ----------------------------------------------------------- channel */

static void channel_usage(FILE *out) {
  fprintf(out,
          "usage: synodctl channel read NAME [--from N] [--count N]\n"
          "       synodctl channel info NAME\n"
          "       synodctl channel list [--after NAME] [--limit N]\n"
          "       synodctl channel create NAME [--max-messages N]\n"
          "            [--max-bytes N] [--max-age D] [--max-message-bytes N]\n"
          "            [--refuse-when-full]\n"
          "       synodctl channel delete NAME\n"
          "       synodctl channel cursor NAME CURSOR [OFFSET]\n\n"
          "read prints the retained messages from offset N (default: the\n"
          "oldest retained), one per line as OFFSET<TAB>MESSAGE (--json:\n"
          "one object per message), at most --count (default: all there\n"
          "are now). Below the oldest retained: an error naming it, exit 1.\n"
          "create sets a channel's limits (0 or absent: the defaults); a\n"
          "full channel drops its oldest messages unless --refuse-when-full.\n"
          "cursor prints the durable cursor CURSOR of channel NAME (OFFSET\n"
          "index INDEX; not found: exit 1), or with OFFSET commits it there\n"
          "(0 .. the last offset; it may go back). `synodctl subscribe NAME\n"
          "--cursor CURSOR` starts after it.\n");
}

static void info_print(const struct ctl_opts *o,
                       const struct synod_channel_info *ci) {
  if (o->json) {
    ctl_json_print(json_pack(
        "{s:s, s:I, s:I, s:I, s:I, s:I, s:i, s:{s:I, s:I, s:I, s:I, s:b}}",
        "name", ci->name, "first_offset", (json_int_t)ci->first_offset,
        "next_offset", (json_int_t)ci->next_offset, "messages",
        (json_int_t)ci->messages, "bytes", (json_int_t)ci->bytes, "subscribers",
        (json_int_t)ci->subscribers, "cursors", (int)ci->cursors, "limits",
        "max_messages", (json_int_t)ci->limits.max_messages, "max_bytes",
        (json_int_t)ci->limits.max_bytes, "max_age_ms",
        (json_int_t)ci->limits.max_age_ms, "max_message_bytes",
        (json_int_t)ci->limits.max_message_bytes, "refuse_when_full",
        ci->limits.refuse_when_full));
    return;
  }
  printf("%s  offsets %" PRIu64 "..%" PRIu64 "  %" PRIu64 " messages  %" PRIu64
         " bytes  %" PRIu64 " subscribers here  %u cursors  (limits: %" PRIu64
         " messages, %" PRIu64 " bytes, age %" PRIu64
         " ms, %u bytes each, %s when full)\n",
         ci->name, ci->first_offset, ci->next_offset, ci->messages, ci->bytes,
         ci->subscribers, ci->cursors, ci->limits.max_messages,
         ci->limits.max_bytes, ci->limits.max_age_ms,
         ci->limits.max_message_bytes,
         ci->limits.refuse_when_full ? "refuse" : "drop the oldest");
}

static int channel_read(const struct ctl_opts *o, struct synod_client *c,
                        int argc, char **argv) {
  uint64_t from = 0, count = UINT64_MAX;
  for (int i = 3; i < argc; i += 2) {
    uint64_t *v = strcmp(argv[i], "--from") == 0    ? &from
                  : strcmp(argv[i], "--count") == 0 ? &count
                                                    : NULL;
    if (v == NULL || i + 1 >= argc || parse_u64(argv[i + 1], v) != 0) {
      channel_usage(stderr);
      return CTL_EXIT_USAGE;
    }
  }
  /* Each page pinned to the channel of the last message printed: one
   * deleted and created again meanwhile (offsets from 1 again) ends the
   * read with its error rather than going on in the new one. */
  uint64_t printed = 0, next = from, end = 0, known = 0;
  do {
    struct synod_channel_messages m;
    int rv = synod_channel_read_pinned(c, argv[2], next, 0, 0, known, 0, &m);
    if (rv != 0) {
      return ctl_fail(o, "channel read", rv);
    }
    end = end ? end : m.next_offset; /* what there is now */
    for (size_t i = 0; i < m.count && printed < count; i++, printed++) {
      const struct synod_channel_message *x = &m.messages[i];
      if (o->json) {
        ctl_json_print(json_pack(
            "{s:I, s:I, s:I, s:s%}", "offset", (json_int_t)x->offset, "index",
            (json_int_t)x->index, "time_ms", (json_int_t)x->time_ms, "message",
            (const char *)x->data, x->len));
      } else {
        printf("%" PRIu64 "\t%.*s\n", x->offset, (int)x->len,
               (const char *)x->data);
      }
      next = x->offset + 1;
      known = x->index;
    }
    size_t got = m.count;
    synod_channel_messages_free(&m);
    if (got == 0) {
      break;
    }
  } while (printed < count && next < end);
  return CTL_EXIT_OK;
}

static int channel_create(const struct ctl_opts *o, struct synod_client *c,
                          int argc, char **argv) {
  struct synod_channel_limits l = {0};
  struct synod_channel_info ci;
  for (int i = 3; i < argc; i++) {
    uint64_t v = 0;
    uint32_t ms = 0;
    const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--refuse-when-full") == 0) {
      l.refuse_when_full = true;
      continue;
    }
    bool ok = strcmp(a, "--max-age") == 0
                  ? ctl_duration_parse(val ? val : "", &ms) == 0
                  : parse_u64(val, &v) == 0;
    if (!ok) {
      channel_usage(stderr);
      return CTL_EXIT_USAGE;
    }
    if (strcmp(a, "--max-messages") == 0) {
      l.max_messages = v;
    } else if (strcmp(a, "--max-bytes") == 0) {
      l.max_bytes = v;
    } else if (strcmp(a, "--max-age") == 0) {
      l.max_age_ms = ms;
    } else if (strcmp(a, "--max-message-bytes") == 0 && v <= UINT32_MAX) {
      l.max_message_bytes = (uint32_t)v;
    } else {
      channel_usage(stderr);
      return CTL_EXIT_USAGE;
    }
    i++;
  }
  int rv = synod_channel_create(c, argv[2], &l, 0, &ci);
  if (rv != 0) {
    return ctl_fail(o, "channel create", rv);
  }
  info_print(o, &ci);
  synod_channel_info_free(&ci);
  return CTL_EXIT_OK;
}

static int channel_list(const struct ctl_opts *o, struct synod_client *c,
                        int argc, char **argv) {
  const char *after = NULL;
  uint64_t limit = 0;
  for (int i = 2; i < argc; i += 2) {
    if (i + 1 < argc && strcmp(argv[i], "--after") == 0) {
      after = argv[i + 1];
    } else if (i + 1 >= argc || strcmp(argv[i], "--limit") != 0 ||
               parse_u64(argv[i + 1], &limit) != 0 || limit > UINT32_MAX) {
      channel_usage(stderr);
      return CTL_EXIT_USAGE;
    }
  }
  struct synod_channel_list l;
  int rv = synod_channel_list(c, after, (uint32_t)limit, 0, 0, &l);
  if (rv != 0) {
    return ctl_fail(o, "channel list", rv);
  }
  for (size_t i = 0; i < l.count; i++) {
    info_print(o, &l.channels[i]);
  }
  if (l.more && !o->json) {
    printf("(more: --after %s)\n", l.channels[l.count - 1].name);
  }
  synod_channel_list_free(&l);
  return CTL_EXIT_OK;
}

static int channel_one(const struct ctl_opts *o, struct synod_client *c,
                       const char *verb, const char *name) {
  struct synod_channel_info ci;
  int rv = strcmp(verb, "info") == 0 ? synod_channel_info(c, name, 0, 0, &ci)
                                     : synod_channel_delete(c, name, 0, &ci);
  if (rv != 0) {
    return ctl_fail(
        o, strcmp(verb, "info") == 0 ? "channel info" : "channel delete", rv);
  }
  info_print(o, &ci);
  synod_channel_info_free(&ci);
  return CTL_EXIT_OK;
}

/* channel cursor NAME CURSOR [OFFSET]: get, or commit at OFFSET. */
static int channel_cursor(const struct ctl_opts *o, struct synod_client *c,
                          int argc, char **argv) {
  struct synod_channel_cursor cur;
  uint64_t offset = 0;
  int rv;
  if (argc == 5 && parse_u64(argv[4], &offset) != 0) {
    channel_usage(stderr);
    return CTL_EXIT_USAGE;
  }
  rv = argc == 5
           ? synod_channel_cursor_commit(c, argv[2], argv[3], offset, 0, &cur)
           : synod_channel_cursor_get(c, argv[2], argv[3], 0, 0, &cur);
  if (rv != 0) {
    return ctl_fail(o, argc == 5 ? "channel cursor commit" : "channel cursor",
                    rv);
  }
  if (o->json) {
    ctl_json_print(json_pack(
        "{s:s, s:s, s:I, s:I}", "channel", argv[2], "cursor", argv[3], "offset",
        (json_int_t)cur.offset, "index", (json_int_t)cur.index));
  } else {
    printf("%" PRIu64 " index %" PRIu64 "\n", cur.offset, cur.index);
  }
  return CTL_EXIT_OK;
}

int cmd_channel(const struct ctl_opts *o, int argc, char **argv) {
  if (wants_help(argc, argv)) {
    channel_usage(stdout);
    return CTL_EXIT_OK;
  }
  const char *verb = argc >= 2 ? argv[1] : "";
  bool list = strcmp(verb, "list") == 0;
  bool one = strcmp(verb, "info") == 0 || strcmp(verb, "delete") == 0;
  bool cursor = strcmp(verb, "cursor") == 0;
  if ((!list && argc < 3) ||
      (!list && !one && !cursor && strcmp(verb, "read") != 0 &&
       strcmp(verb, "create") != 0) ||
      (one && argc != 3) || (cursor && argc != 4 && argc != 5)) {
    channel_usage(stderr);
    return CTL_EXIT_USAGE;
  }
  struct synod_client *c = ctl_client(o, "channel", NULL);
  if (c == NULL) {
    return CTL_EXIT_ERROR;
  }
  int code = list                        ? channel_list(o, c, argc, argv)
             : one                       ? channel_one(o, c, verb, argv[2])
             : cursor                    ? channel_cursor(o, c, argc, argv)
             : strcmp(verb, "read") == 0 ? channel_read(o, c, argc, argv)
                                         : channel_create(o, c, argc, argv);
  synod_client_free(c);
  return code;
}
