/* synodctl ready: exit 0 if one replica is ready to serve (for a
 * Kubernetes readinessProbe of type exec), 1 with a one-line reason. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

#define READY_LAG_MAX 64
#define READY_TIMEOUT_MS 2000

static int ready_usage(bool help) {
  fprintf(help ? stdout : stderr,
          "usage: synodctl [--endpoints ADDR] ready [--max-lag N]\n\n"
          "Asks the one replica at ADDR (default: the first of the\n"
          "endpoints) whether it is ready to serve: it is a voter, or a\n"
          "learner that has caught up, in the configuration it reports; it\n"
          "knows a leader; and it has applied all but at most N [%d]\n"
          "committed entries. For a readinessProbe (exec):\n"
          "  synodctl --endpoints 127.0.0.1:7700 ready\n"
          "Exit status: 0 ready, 1 not ready or unreachable (one line says\n"
          "why), 2 usage.\n",
          READY_LAG_MAX);
  return help ? CTL_EXIT_OK : CTL_EXIT_USAGE;
}

/* The first endpoint of the list (the probe asks one replica only). */
static void ready_endpoint(const struct ctl_opts *o, char *out, size_t len) {
  const char *list = o->endpoints ? o->endpoints : getenv("SYNOD_ENDPOINTS");
  if (list == NULL || list[0] == '\0') {
    list = SYNOD_ENDPOINTS_DEFAULT;
  }
  snprintf(out, len, "%.*s", (int)strcspn(list, ","), list);
}

int cmd_ready(const struct ctl_opts *o, int argc, char **argv) {
  struct ctl_opts one = *o;
  struct synod_status st = {0};
  char ep[256], why[512];
  uint64_t lag_max = READY_LAG_MAX;
  if (argc == 2 &&
      (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    return ready_usage(true);
  }
  if (argc == 3 && strcmp(argv[1], "--max-lag") == 0) {
    if (ctl_uint64_parse(argv[2], &lag_max) != 0) {
      return ready_usage(false);
    }
  } else if (argc != 1) {
    return ready_usage(false);
  }
  ready_endpoint(o, ep, sizeof ep);
  one.endpoints = ep;
  one.timeout_ms = o->timeout_ms ? o->timeout_ms : READY_TIMEOUT_MS;
  struct synod_client *c = ctl_client(&one, "ready", NULL);
  if (c == NULL) {
    return CTL_EXIT_ERROR;
  }
  int rv = synod_status(c, 0, &st);
  if (rv != 0) {
    printf("not ready: %s unreachable: %s (%s)\n", ep, synod_client_errmsg(),
           synod_errname(rv));
    synod_client_free(c);
    return CTL_EXIT_ERROR;
  }
  bool ok = ctl_ready_check(&st, lag_max, why, sizeof why);
  printf("%s%s\n", ok ? "" : "not ready: ", why);
  synod_status_free(&st);
  synod_client_free(c);
  return ok ? CTL_EXIT_OK : CTL_EXIT_ERROR;
}
