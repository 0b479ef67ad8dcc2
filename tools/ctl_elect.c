/* synodctl elect's pure parts: its arguments (synodctl's own and the
 * Kubernetes leader-elector sidecar's spellings), the address --http
 * listens on, and the rule that decides which name the HTTP answer gives
 * (fail closed). Unit-tested in tests/unit/test_ctl_elect.c. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"

/* Matches "--flag=value" or "--flag value" at argv[*i]. Returns 1 and
 * *value (advancing *i past a separate value), 0 if argv[*i] is another
 * flag, -1 if the flag lacks its value. */
static int flag_value(int argc, char **argv, int *i, const char *flag,
                      const char **value) {
  size_t n = strlen(flag);
  const char *a = argv[*i];
  if (strncmp(a, flag, n) != 0 || (a[n] != '\0' && a[n] != '=')) {
    return 0;
  }
  if (a[n] == '=') {
    *value = a + n + 1;
    return 1;
  }
  if (*i + 1 >= argc) {
    return -1;
  }
  *value = argv[++*i];
  return 1;
}

/* Sets *slot to value unless it is set already (a flag given twice, or a
 * flag and its positional form). */
static int take_once(const char **slot, const char *value, const char *what,
                     char *err, size_t len) {
  if (*slot != NULL) {
    snprintf(err, len, "%s given twice", what);
    return SYNOD_EINVAL;
  }
  *slot = value;
  return 0;
}

/* Handles one flag at argv[*i]. Returns 0, or SYNOD_EINVAL with err. */
static int elect_flag(int argc, char **argv, int *i, struct ctl_elect_args *a,
                      char *err, size_t len) {
  const struct {
    const char *flag;
    const char *what;
    const char **slot; /* NULL: accepted and ignored */
  } flags[] = {
      {"--election", "the election name (NAME, --election)", &a->name},
      {"--id", "the value (VALUE, --id)", &a->value},
      {"--http", "--http", &a->http},
      {"--ttl", "--ttl", &a->ttl},
      /* The sidecar's Kubernetes-only flags: nothing to do here. */
      {"--election-namespace", "--election-namespace", NULL},
      {"--use-cluster-credentials", "--use-cluster-credentials", NULL},
  };
  const char *v = NULL;
  for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++) {
    bool is_bool = strcmp(flags[k].flag, "--use-cluster-credentials") == 0;
    if (is_bool && strcmp(argv[*i], flags[k].flag) == 0) {
      a->ignored = flags[k].flag; /* a boolean takes no separate value */
      return 0;
    }
    int m = flag_value(argc, argv, i, flags[k].flag, &v);
    if (m < 0) {
      snprintf(err, len, "%s needs a value", flags[k].flag);
      return SYNOD_EINVAL;
    }
    if (m == 0) {
      continue;
    }
    if (flags[k].slot == NULL) {
      a->ignored = flags[k].flag;
      return 0;
    }
    return take_once(flags[k].slot, v, flags[k].what, err, len);
  }
  snprintf(err, len, "unknown option '%s'", argv[*i]);
  return SYNOD_EINVAL;
}

int ctl_elect_args_parse(int argc, char **argv, struct ctl_elect_args *a,
                         char *err, size_t len) {
  int positional = 0, rv;
  memset(a, 0, sizeof *a);
  err[0] = '\0';
  for (int i = 1; i < argc; i++) {
    if (strncmp(argv[i], "--", 2) == 0 && argv[i][2] != '\0') {
      rv = elect_flag(argc, argv, &i, a, err, len);
    } else if (positional == 0) {
      positional++;
      rv = take_once(&a->name, argv[i], "the election name (NAME, --election)",
                     err, len);
    } else if (positional == 1) {
      positional++;
      rv = take_once(&a->value, argv[i], "the value (VALUE, --id)", err, len);
    } else {
      snprintf(err, len, "unexpected argument '%s'", argv[i]);
      rv = SYNOD_EINVAL;
    }
    if (rv != 0) {
      return rv;
    }
  }
  if (a->name == NULL || a->name[0] == '\0') {
    snprintf(err, len, "no election name (NAME or --election)");
    return SYNOD_EINVAL;
  }
  if (a->value != NULL && a->value[0] == '\0') {
    snprintf(err, len, "the value (VALUE, --id) is empty");
    return SYNOD_EINVAL;
  }
  if (a->http != NULL && a->http[0] == '\0') {
    snprintf(err, len, "--http is empty");
    return SYNOD_EINVAL;
  }
  if (a->ttl != NULL && ctl_duration_parse(a->ttl, &a->ttl_ms) != 0) {
    snprintf(err, len, "--ttl '%s' is not a duration (10s, 500ms)", a->ttl);
    return SYNOD_EINVAL;
  }
  return 0;
}

int ctl_http_address(const char *in, char *out, size_t len) {
  const char *colon = strrchr(in, ':');
  int n;
  if (colon == NULL || colon[1] == '\0') {
    return SYNOD_EINVAL;
  }
  if (colon == in) { /* ":4040", Go's "every interface" */
    n = snprintf(out, len, "0.0.0.0%s", colon);
  } else if ((size_t)(colon - in) == strlen("localhost") &&
             strncmp(in, "localhost", strlen("localhost")) == 0) {
    n = snprintf(out, len, "127.0.0.1%s", colon);
  } else {
    n = snprintf(out, len, "%s", in);
  }
  return n < 0 || (size_t)n >= len ? SYNOD_EINVAL : 0;
}

void ctl_elect_answer(const struct ctl_elect_view *v, const char **name,
                      size_t *len) {
  *name = "";
  *len = 0;
  if (!v->has_leader) {
    return;
  }
  bool ours = v->own_session != 0 && v->leader_session == v->own_session;
  bool our_value =
      v->leader_len == v->own_len && memcmp(v->leader, v->own, v->own_len) == 0;
  /* Our value is named only while our own session leads and libsynod
   * trusts it: not in jeopardy, not lost, not resigning, and not for
   * another session that campaigns with our value (this pod's previous
   * synodctl, whose session the server has not expired yet). */
  if ((ours || our_value) && !(ours && v->trusted)) {
    return;
  }
  *name = v->leader;
  *len = v->leader_len;
}
