/* synodctl key: put, get, del, list, txn and watch on the cluster's keys. Each
 * subcommand is a row of `subcommands` below (add one there). A
 * session-bound put (or a txn with one) holds the key while this process
 * runs, as `synodctl lock` holds a lock: the key goes with the session
 * when the process exits. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

/* Read from stdin ("-"), at most: the server's value limit is 64 KiB by
 * default, and an oversized value is refused with a clear error there. */
#define STDIN_MAX (16u << 20)
#define LIST_PAGE 1000

static void key_usage(FILE *out) {
  fprintf(
      out,
      "usage: synodctl key put KEY VALUE|- [--session-bound] [--ttl D]\n"
      "                [--if-version N | --if-mod-rev N | --if-value V] "
      "[--prev]\n"
      "       synodctl key put [OPTIONS] -- KEY VALUE   (a value starting "
      "with -)\n"
      "       synodctl key get KEY [--stale]\n"
      "       synodctl key del KEY [--prefix] [--prev]\n"
      "                [--if-version N | --if-mod-rev N | --if-value V]\n"
      "       synodctl key list [PREFIX] [--keys-only] [--limit N] [--stale]\n"
      "       synodctl key txn [--ttl D] < TXN.json\n"
      "       synodctl key watch KEY [--prefix] [--from REV|now] [--prev]\n"
      "                [--count N]\n"
      "\n"
      "A key is 1..512 bytes of UTF-8 (\"/\" separates levels by\n"
      "convention); a value is bytes, at most 64 KiB by default. VALUE -\n"
      "reads the value from stdin, byte for byte (a trailing newline\n"
      "included: use printf, not echo, to leave it out).\n"
      "\n"
      "put prints the revision of the write. --if-version N, --if-mod-rev\n"
      "N, --if-value V: put only if the key holds that (--if-version 0:\n"
      "only if it does not exist); otherwise nothing changes and the exit\n"
      "status is 75. --prev prints the value the key held before.\n"
      "--session-bound: the key is bound to this process's session and\n"
      "synodctl KEEPS RUNNING to hold it: THE KEY VANISHES WHEN THE PROCESS\n"
      "EXITS (INT, TERM, HUP end it, exit 0) or is killed (after the\n"
      "session TTL, --ttl D, default 10s). If the session cannot be\n"
      "renewed in time the key is gone: exit 76.\n"
      "get prints the value (linearizable; --stale: from whichever replica\n"
      "answers, possibly behind); a missing key exits 1.\n"
      "del deletes the key, or with --prefix every key starting with it,\n"
      "and prints how many went.\n"
      "list prints KEY<TAB>VALUE per line (--keys-only: KEY), in byte\n"
      "order, every page to the end (--limit N: at most N keys).\n"
      "txn reads a transaction as JSON on stdin: compares, then the\n"
      "\"success\" operations if all hold, else the \"failure\" ones, in one\n"
      "step:\n"
      "  {\"compare\": [{\"key\": \"devices/d1\", \"mod_revision\": 42}],\n"
      "   \"success\": [{\"put\": \"devices/d1\", \"value\": \"gw-b:7000\",\n"
      "                \"session_bound\": true},\n"
      "               {\"del\": \"moving/d1\"}],\n"
      "   \"failure\": [{\"get\": \"devices/d1\"}]}\n"
      "A compare: \"key\" and one of \"version\", \"create_revision\",\n"
      "\"mod_revision\", \"session\" (integers) or \"value\" (a string), with\n"
      "\"op\" \"=\" (default), \"!=\", \"<\" or \">\". An operation: {\"put\": "
      "K,\n"
      "\"value\": V} (optional \"session_bound\", \"prev\"), {\"get\": K} or\n"
      "{\"del\": K} (optional \"prefix\", \"prev\"). At most 64 of each. txn\n"
      "prints \"succeeded\" or \"failed\", the revision, then one line per\n"
      "operation; with a session-bound put it holds like put.\n"
      "watch prints every put and delete of KEY (--prefix: of every key\n"
      "starting with KEY; \"\" or none for all), in revision order, then\n"
      "live, one line each: \"REV put KEY VALUE\" or \"REV delete KEY\"\n"
      "(--prev: then \" (was VALUE)\" when the key existed before), with\n"
      "\\\\, \\n, \\t, \\r and \\xHH for what is not printable UTF-8. It\n"
      "goes on across failovers, with no gap and no duplicate, until\n"
      "--count N events (then exit 0) or INT/TERM/HUP (exit 0). --from\n"
      "REV: from revision REV on (history the servers still hold,\n"
      "synodd --keys-history); now (the default): what is written after\n"
      "the watch starts. To follow a prefix without missing anything:\n"
      "\"key list PREFIX --json\" gives a revision R; watch --from R+1.\n"
      "\n"
      "--json prints one object instead (list: {\"kvs\":[...],\"revision\"};\n"
      "watch: one per event, {\"revision\",\"event\",\"type\",\"key\",\n"
      "\"value\",\"create_revision\",\"mod_revision\",\"version\",\n"
      "\"session_id\"}, with --prev \"prev\": {...});\n"
      "bytes that are not UTF-8 come as \"value_base64\".\n"
      "Exit status: 0; 75 when a compare did not hold (put, del, txn);\n"
      "76 when a held session-bound key was lost; 77 when a watch's next\n"
      "event is no longer in the history (the message names the oldest\n"
      "revision held); 1 on errors (not found, refused, unreachable); 2 on\n"
      "usage errors and a txn that does not parse (nothing is sent).\n");
}

/* ------------------------------------------------------------ helpers */

struct key_ctx {
  struct ctl_opts o; /* a copy: --ttl may change it */
  const char *prog;
};

/* The compare of --if-version/--if-mod-rev/--if-value, at most one. */
struct cond {
  bool set;
  struct synod_key_compare cmp;
};

/* Takes argv[*i] if it is a condition option. Returns 1 when taken, 0
 * when not one, -1 on a bad value or a second condition. */
static int cond_take(int argc, char **argv, int *i, struct cond *c) {
  const char *a = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
  enum synod_key_target t;
  if (strcmp(a, "--if-version") == 0) {
    t = SYNOD_KEY_VERSION;
  } else if (strcmp(a, "--if-mod-rev") == 0) {
    t = SYNOD_KEY_MOD_REVISION;
  } else if (strcmp(a, "--if-value") == 0) {
    t = SYNOD_KEY_VALUE;
  } else {
    return 0;
  }
  if (v == NULL || c->set) {
    return -1;
  }
  c->set = true;
  c->cmp.target = t;
  c->cmp.op = SYNOD_KEY_EQUAL;
  if (t == SYNOD_KEY_VALUE) {
    c->cmp.value = v;
    c->cmp.value_len = strlen(v);
  } else if (ctl_uint64_parse(v, &c->cmp.number) != 0) {
    return -1;
  }
  (*i)++;
  return 1;
}

/* Reads all of stdin into *out (malloc'd, NUL-terminated). */
static int stdin_read(const char *prog, char **out, size_t *n) {
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  while (buf != NULL) {
    size_t got = fread(buf + len, 1, cap - len - 1, stdin);
    len += got;
    if (got == 0) {
      break;
    }
    if (len + 1 == cap) {
      char *bigger = cap >= STDIN_MAX ? NULL : realloc(buf, cap * 2);
      if (bigger == NULL) {
        fprintf(stderr, "%s: key: stdin over %u bytes\n", prog, STDIN_MAX);
        free(buf);
        return -1;
      }
      buf = bigger;
      cap *= 2;
    }
  }
  if (buf == NULL || ferror(stdin)) {
    fprintf(stderr, "%s: key: cannot read stdin\n", prog);
    free(buf);
    return -1;
  }
  buf[len] = '\0';
  *out = buf;
  *n = len;
  return 0;
}

static void value_print(const struct synod_kv *kv) {
  fwrite(kv->value, 1, kv->value_len, stdout);
  fputc('\n', stdout);
}

/* -------------------------------------------------------------- hold */

/* A session-bound key is held while the process runs: the main thread
 * waits for INT/TERM/HUP, or for SIGUSR1 from the client's thread when
 * the session is lost. */
struct hold {
  atomic_bool lost;
  pthread_t main_thread;
  const char *prog;
};

static void hold_session_cb(void *arg, enum synod_session_state st,
                            uint64_t id) {
  struct hold *h = arg;
  (void)id;
  if (st == SYNOD_SESSION_LOST) {
    atomic_store(&h->lost, true);
    pthread_kill(h->main_thread, SIGUSR1);
  } else if (st == SYNOD_SESSION_JEOPARDY) {
    fprintf(stderr,
            "%s: key: session in jeopardy (renewals fail); the key goes "
            "if it cannot be renewed within the TTL\n",
            h->prog);
  }
}

static int hold_wait(struct hold *h, const sigset_t *set, const char *what) {
  fprintf(stderr,
          "%s: holding %s: it is deleted when this process exits "
          "(INT/TERM/HUP)\n",
          h->prog, what);
  for (;;) {
    int sig = sigwaitinfo(set, NULL);
    if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) {
      return CTL_EXIT_OK;
    }
    if (atomic_load(&h->lost)) {
      fprintf(stderr, "%s: session lost: %s is gone\n", h->prog, what);
      return CTL_EXIT_LOST;
    }
  }
}

/* A client; with `hold`, one that reports session loss to it (the
 * signals are then blocked first, so that every thread inherits it). */
static struct synod_client *key_client(struct key_ctx *k, const char *cmd,
                                       struct hold *hold, sigset_t *set) {
  struct synod_options extra;
  sigset_t old;
  synod_options_init(&extra);
  if (hold != NULL) {
    ctl_signals_block(set, &old);
    atomic_init(&hold->lost, false);
    hold->main_thread = pthread_self();
    hold->prog = k->prog;
    extra.session_cb = hold_session_cb;
    extra.cb_arg = hold;
  }
  return ctl_client(&k->o, cmd, &extra);
}

/* --------------------------------------------------------------- put */

static void put_print(struct key_ctx *k, const char *key,
                      const struct synod_key_put_result *r) {
  if (k->o.json) {
    ctl_json_print(ctl_key_put_json(key, r));
  } else if (!r->succeeded) {
    fprintf(stderr,
            "%s: key put: not put: %s %s (version %" PRIu64
            ", mod revision %" PRIu64 ")\n",
            k->prog, key, r->has_kv ? "exists" : "is absent",
            r->has_kv ? r->kv.version : 0, r->has_kv ? r->kv.mod_revision : 0);
  } else {
    printf("revision %" PRIu64 "\n", r->revision);
    if (r->has_prev) {
      value_print(&r->prev);
    }
  }
  fflush(stdout);
}

static int key_put(struct key_ctx *k, int argc, char **argv) {
  const char *key = NULL, *value = NULL;
  unsigned flags = 0;
  struct cond cond = {0};
  bool rest = false; /* after "--": a value may start with '-' */
  for (int i = 2; i < argc; i++) {
    int taken = rest ? 0 : cond_take(argc, argv, &i, &cond);
    bool positional = rest || argv[i][0] != '-' || argv[i][1] == '\0';
    if (taken < 0) {
      goto usage;
    } else if (taken) {
      continue;
    } else if (positional && key == NULL) {
      key = argv[i];
    } else if (positional && value == NULL) {
      value = argv[i];
    } else if (strcmp(argv[i], "--") == 0 && !rest) {
      rest = true;
    } else if (strcmp(argv[i], "--session-bound") == 0) {
      flags |= SYNOD_KEY_SESSION_BOUND;
    } else if (strcmp(argv[i], "--prev") == 0) {
      flags |= SYNOD_KEY_PREV;
    } else if (strcmp(argv[i], "--ttl") == 0 && i + 1 < argc &&
               ctl_duration_parse(argv[i + 1], &k->o.ttl_ms) == 0) {
      i++;
    } else {
      goto usage;
    }
  }
  if (key == NULL || value == NULL) {
    goto usage;
  }
  char *buf = NULL;
  size_t len = strlen(value);
  if (strcmp(value, "-") == 0 && stdin_read(k->prog, &buf, &len) != 0) {
    return CTL_EXIT_ERROR;
  }
  struct hold h;
  sigset_t set;
  bool bound = (flags & SYNOD_KEY_SESSION_BOUND) != 0;
  struct synod_client *c = key_client(k, "key put", bound ? &h : NULL, &set);
  int code = CTL_EXIT_ERROR;
  if (c != NULL) {
    struct synod_key_put_result r;
    int rv = synod_key_put(c, key, buf ? buf : value, len, flags,
                           cond.set ? &cond.cmp : NULL, cond.set, 0, &r);
    if (rv != 0) {
      code = ctl_fail(&k->o, "key put", rv);
    } else {
      put_print(k, key, &r);
      code = r.succeeded ? CTL_EXIT_OK : CTL_EXIT_BUSY;
      if (r.succeeded && bound) {
        code = hold_wait(&h, &set, key);
      }
      synod_key_put_result_free(&r);
    }
    synod_client_free(c); /* closes the session: a bound key goes */
  }
  free(buf);
  return code;
usage:
  key_usage(stderr);
  return CTL_EXIT_USAGE;
}

/* --------------------------------------------------------------- get */

static int key_get(struct key_ctx *k, int argc, char **argv) {
  unsigned flags = 0;
  const char *key = NULL;
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--stale") == 0) {
      flags |= SYNOD_READ_STALE;
    } else if (key == NULL && argv[i][0] != '-') {
      key = argv[i];
    } else {
      key_usage(stderr);
      return CTL_EXIT_USAGE;
    }
  }
  if (key == NULL) {
    key_usage(stderr);
    return CTL_EXIT_USAGE;
  }
  struct synod_client *c = key_client(k, "key get", NULL, NULL);
  if (c == NULL) {
    return CTL_EXIT_ERROR;
  }
  struct synod_key_get_result r;
  int rv = synod_key_get(c, key, flags, 0, &r);
  int code = CTL_EXIT_OK;
  if (rv != 0) {
    code = ctl_fail(&k->o, "key get", rv);
  } else {
    if (k->o.json) {
      ctl_json_print(ctl_key_get_json(key, &r));
    } else if (r.found) {
      value_print(&r.kv);
    } else {
      fprintf(stderr, "%s: key get: %s not found\n", k->prog, key);
    }
    code = r.found ? CTL_EXIT_OK : CTL_EXIT_ERROR;
    synod_key_get_result_free(&r);
  }
  synod_client_free(c);
  return code;
}

/* --------------------------------------------------------------- del */

static int key_del(struct key_ctx *k, int argc, char **argv) {
  unsigned flags = 0;
  const char *key = NULL;
  struct cond cond = {0};
  for (int i = 2; i < argc; i++) {
    int taken = cond_take(argc, argv, &i, &cond);
    if (taken < 0) {
      key = NULL;
      break;
    } else if (taken) {
      continue;
    } else if (strcmp(argv[i], "--prefix") == 0) {
      flags |= SYNOD_KEY_PREFIX;
    } else if (strcmp(argv[i], "--prev") == 0) {
      flags |= SYNOD_KEY_PREV;
    } else if (key == NULL && argv[i][0] != '-') {
      key = argv[i];
    } else {
      key = NULL;
      break;
    }
  }
  if (key == NULL) {
    key_usage(stderr);
    return CTL_EXIT_USAGE;
  }
  struct synod_client *c = key_client(k, "key del", NULL, NULL);
  if (c == NULL) {
    return CTL_EXIT_ERROR;
  }
  struct synod_key_delete_result r;
  int rv = synod_key_delete(c, key, flags, cond.set ? &cond.cmp : NULL,
                            cond.set, 0, &r);
  int code = CTL_EXIT_OK;
  if (rv != 0) {
    code = ctl_fail(&k->o, "key del", rv);
  } else {
    if (k->o.json) {
      ctl_json_print(ctl_key_delete_json(key, &r));
    } else if (!r.succeeded) {
      fprintf(stderr, "%s: key del: not deleted: the compare did not hold\n",
              k->prog);
    } else {
      printf("deleted %" PRIu64 " revision %" PRIu64 "\n", r.deleted,
             r.revision);
      if (r.has_prev) {
        value_print(&r.prev);
      }
    }
    code = r.succeeded ? CTL_EXIT_OK : CTL_EXIT_BUSY;
    synod_key_delete_result_free(&r);
  }
  synod_client_free(c);
  return code;
}

/* -------------------------------------------------------------- list */

struct list_args {
  const char *prefix;
  uint64_t limit; /* keys in all; UINT64_MAX: every one */
  unsigned flags;
};

/* Pages through the prefix; prints each key as it comes (text) or all at
 * the end (JSON, with the first page's revision). */
static int list_run(struct key_ctx *k, struct synod_client *c,
                    const struct list_args *la) {
  json_t *kvs = k->o.json ? json_array() : NULL;
  char *after = NULL;
  uint64_t printed = 0, revision = 0;
  bool more = true, at_first = true;
  int code = CTL_EXIT_OK;
  while (more && printed < la->limit) {
    struct synod_key_list l;
    uint64_t want = la->limit - printed;
    /* The pages after the first at its revision: one listing, consistent
     * at one revision, even while the keys change. If the key history no
     * longer reaches back to it (a long listing under many writes), the
     * rest comes at each page's own revision, as the pages printed
     * already cannot be taken back. */
    uint32_t page = want < LIST_PAGE ? (uint32_t)want : LIST_PAGE;
    int rv = synod_key_list_at(c, la->prefix, after, page, la->flags,
                               at_first ? revision : 0, 0, &l);
    if (rv == SYNOD_ECOMPACTED && at_first) {
      fprintf(stderr,
              "%s: key list: the key history no longer reaches back to "
              "revision %" PRIu64 "; the rest is listed as it is now\n",
              k->o.prog, revision);
      at_first = false;
      rv = synod_key_list_at(c, la->prefix, after, page, la->flags, 0, 0, &l);
    }
    if (rv != 0) {
      code = ctl_fail(&k->o, "key list", rv);
      break;
    }
    revision = revision ? revision : l.revision;
    for (size_t i = 0; i < l.count && printed < la->limit; i++, printed++) {
      const struct synod_kv *kv = &l.kvs[i];
      bool values = !(la->flags & SYNOD_KEY_KEYS_ONLY);
      if (kvs != NULL) {
        json_array_append_new(kvs, ctl_kv_json(kv, values));
      } else if (values) {
        printf("%s\t", kv->key);
        value_print(kv);
      } else {
        printf("%s\n", kv->key);
      }
    }
    more = l.more && l.count > 0;
    if (l.count > 0) {
      free(after);
      after = strdup(l.kvs[l.count - 1].key);
    }
    synod_key_list_free(&l);
  }
  if (code == CTL_EXIT_OK && kvs != NULL) {
    ctl_json_print(json_pack("{s:o, s:I, s:b}", "kvs", kvs, "revision",
                             (json_int_t)revision, "more", more));
  } else {
    json_decref(kvs);
  }
  free(after);
  return code;
}

static int key_list(struct key_ctx *k, int argc, char **argv) {
  struct list_args la = {.limit = UINT64_MAX};
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--stale") == 0) {
      la.flags |= SYNOD_READ_STALE;
    } else if (strcmp(argv[i], "--keys-only") == 0) {
      la.flags |= SYNOD_KEY_KEYS_ONLY;
    } else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc &&
               ctl_uint64_parse(argv[i + 1], &la.limit) == 0) {
      la.limit = la.limit ? la.limit : UINT64_MAX; /* 0: every key */
      i++;
    } else if (la.prefix == NULL && argv[i][0] != '-') {
      la.prefix = argv[i];
    } else {
      key_usage(stderr);
      return CTL_EXIT_USAGE;
    }
  }
  struct synod_client *c = key_client(k, "key list", NULL, NULL);
  if (c == NULL) {
    return CTL_EXIT_ERROR;
  }
  int code = list_run(k, c, &la);
  synod_client_free(c);
  return code;
}

/* --------------------------------------------------------------- txn */

static void txn_print(const struct ctl_txn *t,
                      const struct synod_key_txn_result *r) {
  const struct synod_key_op *ops = r->succeeded ? t->success : t->failure;
  printf("%s revision %" PRIu64 "\n", r->succeeded ? "succeeded" : "failed",
         r->revision);
  for (size_t i = 0; i < r->count; i++) {
    const struct synod_key_op_result *x = &r->results[i];
    if (x->type == SYNOD_KEY_OP_PUT) {
      printf("put %s revision %" PRIu64 "\n", ops[i].key, x->u.put.revision);
    } else if (x->type == SYNOD_KEY_OP_GET && x->u.get.found) {
      printf("get %s\t", ops[i].key);
      value_print(&x->u.get.kv);
    } else if (x->type == SYNOD_KEY_OP_GET) {
      printf("get %s (not found)\n", ops[i].key);
    } else {
      printf("del %s deleted %" PRIu64 "\n", ops[i].key, x->u.del.deleted);
    }
  }
  fflush(stdout);
}

static int key_txn(struct key_ctx *k, int argc, char **argv) {
  char err[256], *text;
  size_t len;
  struct ctl_txn t;
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--ttl") == 0 && i + 1 < argc &&
        ctl_duration_parse(argv[i + 1], &k->o.ttl_ms) == 0) {
      i++;
    } else if (strcmp(argv[i], "-") != 0) {
      key_usage(stderr);
      return CTL_EXIT_USAGE;
    }
  }
  if (stdin_read(k->prog, &text, &len) != 0) {
    return CTL_EXIT_ERROR;
  }
  int rv = ctl_txn_parse(text, len, &t, err, sizeof err);
  free(text);
  if (rv != 0) {
    fprintf(stderr, "%s: key txn: bad transaction: %s\n", k->prog, err);
    return CTL_EXIT_USAGE;
  }
  struct hold h;
  sigset_t set;
  bool bound = ctl_txn_binds(&t);
  struct synod_client *c = key_client(k, "key txn", bound ? &h : NULL, &set);
  int code = CTL_EXIT_ERROR;
  if (c != NULL) {
    struct synod_key_txn_result r;
    rv = synod_key_txn(c, &t.txn, 0, &r);
    if (rv != 0) {
      code = ctl_fail(&k->o, "key txn", rv);
    } else {
      if (k->o.json) {
        ctl_json_print(ctl_key_txn_json(&t, &r));
      } else {
        txn_print(&t, &r);
      }
      code = r.succeeded ? CTL_EXIT_OK : CTL_EXIT_BUSY;
      bool held = false;
      const struct synod_key_op *ops = r.succeeded ? t.success : t.failure;
      size_t n = r.succeeded ? t.txn.success_n : t.txn.failure_n;
      for (size_t i = 0; i < n; i++) {
        held = held || (ops[i].type == SYNOD_KEY_OP_PUT &&
                        (ops[i].flags & SYNOD_KEY_SESSION_BOUND));
      }
      if (held) {
        int held_code = hold_wait(&h, &set, "the session-bound keys");
        code = held_code != CTL_EXIT_OK ? held_code : code;
      }
      synod_key_txn_result_free(&r);
    }
    synod_client_free(c);
  }
  ctl_txn_free(&t);
  return code;
}

/* ------------------------------------------------------------- watch */

struct watch_args {
  struct synod_key_watch_options opts;
  uint64_t count; /* UINT64_MAX: no limit */
};

/* Parses argv (argv[0] "key", argv[1] "watch"). Returns 0 or -1. */
static int watch_parse(int argc, char **argv, struct watch_args *a) {
  memset(a, 0, sizeof *a);
  a->count = UINT64_MAX;
  for (int i = 2; i < argc; i++) {
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    uint64_t n = 0;
    if (strcmp(argv[i], "--prefix") == 0) {
      a->opts.prefix = true;
    } else if (strcmp(argv[i], "--prev") == 0) {
      a->opts.prev_kv = true;
    } else if (strcmp(argv[i], "--from") == 0 && v != NULL &&
               (strcmp(v, "now") == 0 ||
                (ctl_uint64_parse(v, &n) == 0 && n > 0))) {
      a->opts.from_revision = n; /* 0: now */
      i++;
    } else if (strcmp(argv[i], "--count") == 0 &&
               ctl_uint64_parse(v, &n) == 0 && n > 0) {
      a->count = n;
      i++;
    } else if (a->opts.key == NULL && argv[i][0] != '-') {
      a->opts.key = argv[i];
    } else {
      return -1;
    }
  }
  if (!a->opts.prefix && (a->opts.key == NULL || a->opts.key[0] == '\0')) {
    return -1; /* only a prefix may be empty */
  }
  return 0;
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

static void event_print(const struct ctl_opts *o,
                        const struct synod_key_event *e) {
  if (o->json) {
    ctl_json_print(ctl_key_event_json(e));
    return;
  }
  printf("%" PRIu64 " %s ", e->revision, e->deleted ? "delete" : "put");
  escaped_print(e->kv.key, e->kv.key_len);
  if (!e->deleted) {
    fputc(' ', stdout);
    escaped_print(e->kv.value, e->kv.value_len);
  }
  if (e->has_prev) {
    fputs(" (was ", stdout);
    escaped_print(e->prev.value, e->prev.value_len);
    fputc(')', stdout);
  }
  fputc('\n', stdout);
  fflush(stdout);
}

/* The watch could not start or ended with rv. Returns the exit code:
 * CTL_EXIT_COMPACTED when the history no longer holds its next event
 * (the library's message names the oldest revision held; oldest is it,
 * 0 when not known here). */
static int watch_fail(const struct ctl_opts *o, int rv, uint64_t oldest) {
  int code = ctl_fail(o, "key watch", rv);
  if (rv != SYNOD_ECOMPACTED) {
    return code;
  }
  if (oldest != 0) {
    fprintf(stderr,
            "%s: key watch: the oldest revision still held is %" PRIu64
            ": --from %" PRIu64 " goes on from there, skipping what is "
            "lost;\n",
            o->prog, oldest, oldest);
  } else {
    fprintf(stderr,
            "%s: key watch: --from the oldest revision held (above) goes "
            "on from there, skipping what is lost;\n",
            o->prog);
  }
  fprintf(stderr,
          "%s: key watch: to miss nothing, \"key list --json\" (for the "
          "state at its revision R), then watch --from R+1\n",
          o->prog);
  return CTL_EXIT_COMPACTED;
}

/* Prints until the count, a signal or the end. Returns the exit code. */
static int watch_loop(const struct ctl_opts *o, struct synod_key_watch *w,
                      uint64_t count, const sigset_t *set) {
  for (uint64_t printed = 0; printed < count && !ctl_signalled(set);) {
    struct synod_key_event e;
    int rv = synod_key_watch_next(w, CTL_POLL_MS, &e);
    if (rv == 0) {
      event_print(o, &e);
      printed++;
    } else if (rv != SYNOD_ETIMEDOUT) {
      return watch_fail(o, rv, synod_key_watch_first_available(w));
    }
  }
  return CTL_EXIT_OK;
}

static int key_watch(struct key_ctx *k, int argc, char **argv) {
  struct watch_args a;
  struct synod_key_watch *w;
  sigset_t set, old;
  if (watch_parse(argc, argv, &a) != 0) {
    key_usage(stderr);
    return CTL_EXIT_USAGE;
  }
  ctl_signals_block(&set, &old); /* before the client's thread starts */
  struct synod_client *c = key_client(k, "key watch", NULL, NULL);
  if (c == NULL) {
    return CTL_EXIT_ERROR;
  }
  int rv = synod_key_watch(c, &a.opts, 0, &w, NULL);
  int code =
      rv != 0 ? watch_fail(&k->o, rv, 0) : watch_loop(&k->o, w, a.count, &set);
  if (rv == 0) {
    synod_key_watch_close(w);
  }
  synod_client_free(c);
  return code;
}

/* ------------------------------------------------------------ dispatch */

static const struct {
  const char *name;
  int (*run)(struct key_ctx *k, int argc, char **argv);
} subcommands[] = {
    {"put", key_put},     {"get", key_get},   {"del", key_del},
    {"delete", key_del},  {"list", key_list}, {"txn", key_txn},
    {"watch", key_watch},
};

int cmd_key(const struct ctl_opts *o, int argc, char **argv) {
  struct key_ctx k = {.o = *o, .prog = o->prog};
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      key_usage(stdout);
      return CTL_EXIT_OK;
    }
  }
  for (size_t i = 0; argc >= 2 && i < sizeof subcommands / sizeof *subcommands;
       i++) {
    if (strcmp(argv[1], subcommands[i].name) == 0) {
      return subcommands[i].run(&k, argc, argv);
    }
  }
  key_usage(stderr);
  return CTL_EXIT_USAGE;
}
