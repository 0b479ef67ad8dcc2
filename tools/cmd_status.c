/* synodctl status. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "util.h" /* endpoints_parse */

/* ------------------------------------------------------------- status */

static void status_row(const char *ep, const struct synod_status *st,
                       bool digest) {
  printf("%-21s %-10s %-10s %6" PRIu64 " %-10s %8" PRIu64 " %8" PRIu64
         " %8" PRIu64 " %8" PRIu64 "  %-*s",
         ep, st->name, st->role, st->term,
         st->leader_name[0] ? st->leader_name : "-", st->commit_index,
         st->applied_index, st->last_index, st->snapshot_index, digest ? 8 : 0,
         st->version);
  if (digest) {
    printf("  %016" PRIx64, st->digest);
  }
  printf("\n");
}

/* --digest: what the replicas' digests say, as one line (and whether two
 * replicas at one applied index disagree, which must never happen). */
struct digests {
  size_t n;
  uint64_t applied[ENDPOINTS_MAX];
  uint64_t digest[ENDPOINTS_MAX];
  char name[ENDPOINTS_MAX][64];
};

static void digests_add(struct digests *d, const struct synod_status *st) {
  if (d->n < ENDPOINTS_MAX) {
    d->applied[d->n] = st->applied_index;
    d->digest[d->n] = st->digest;
    snprintf(d->name[d->n], sizeof d->name[d->n], "%s", st->name);
    d->n++;
  }
}

/* Returns false if two replicas at one applied index report different
 * digests; prints the verdict. */
static bool digests_report(const struct digests *d, bool json) {
  bool same_index = true;
  for (size_t i = 0; i < d->n; i++) {
    for (size_t j = i + 1; j < d->n; j++) {
      if (d->applied[i] == d->applied[j] && d->digest[i] != d->digest[j]) {
        fprintf(stderr,
                "synodctl: status: %s and %s differ at applied index %" PRIu64
                ": %016" PRIx64 " != %016" PRIx64 "\n",
                d->name[i], d->name[j], d->applied[i], d->digest[i],
                d->digest[j]);
        return false;
      }
      same_index &= d->applied[i] == d->applied[j];
    }
  }
  if (!json && d->n > 0 && same_index) {
    printf("digests: %zu replica%s agree at applied index %" PRIu64 "\n", d->n,
           d->n == 1 ? "" : "s", d->applied[0]);
  } else if (!json && d->n > 0) {
    printf("digests: replicas at different applied indexes (writes in "
           "flight); those at one index agree\n");
  }
  return true;
}

static void status_members(const struct synod_status *st) {
  printf("\nmembers, as %s sees them:\n", st->name);
  for (size_t i = 0; i < st->members_count; i++) {
    const struct synod_member *m = &st->members[i];
    printf("  %-10s %-10s %-7s match=%-8" PRIu64 " client=%s peer=%s\n",
           m->name, m->role, m->voter ? "voter" : "learner", m->match_index,
           m->client_address, m->peer_address);
  }
}

/* Why one endpoint gave no status: "no answer in N ms (...)" when it was
 * silent (it accepts connections and does not answer, or its handshake
 * went unanswered), else "unreachable: ...". */
static void status_why(const char *errmsg, uint32_t bound_ms, char *out,
                       size_t len) {
  if (strstr(errmsg, "Hello unanswered") != NULL) {
    snprintf(out, len,
             "no answer in %u ms (accepts connections, does not "
             "answer)",
             bound_ms);
  } else if (strstr(errmsg, "TCP connect unanswered") != NULL) {
    snprintf(out, len, "no answer in %u ms (TCP connect)", bound_ms);
  } else {
    snprintf(out, len, "unreachable: %s", errmsg);
  }
}

/* Asks one endpoint (with its digest if `digest`); returns 0 and fills
 * *st, or prints/records why not. A replica answers Status from its loop
 * like Hello, so the whole call gets three connect bounds (connect,
 * Hello, Status): a silent replica is reported after one bound, not
 * after the whole --timeout. */
static int status_one(const struct ctl_opts *o, const char *ep, bool digest,
                      struct synod_status *st, json_t *rows) {
  struct ctl_opts one = *o;
  struct synod_client *c;
  char why[SYNOD_ERRMSG_BYTES + 64];
  uint32_t bound = o->connect_timeout_ms ? o->connect_timeout_ms
                                         : SYNOD_CONNECT_TIMEOUT_DEFAULT_MS;
  int rv;
  one.endpoints = ep;
  one.timeout_ms = o->timeout_ms ? o->timeout_ms : 2000;
  if (one.timeout_ms / 3 > bound) {
    one.timeout_ms = 3 * bound;
  }
  bound = one.timeout_ms / 3 + 1 < bound ? one.timeout_ms / 3 + 1 : bound;
  c = ctl_client(&one, "status", NULL);
  rv = c ? synod_status_ex(c, digest ? SYNOD_STATUS_DIGEST : 0, 0, st)
         : SYNOD_EINVAL;
  if (rv != 0) {
    status_why(synod_client_errmsg(), bound, why, sizeof why);
  }
  if (rv != 0 && o->json) {
    json_array_append_new(
        rows, json_pack("{s:s, s:s}", "endpoint", ep, "error", why));
  } else if (rv != 0) {
    printf("%-21s %s\n", ep, why);
  } else if (o->json) {
    json_t *row = ctl_status_json(ep, st);
    if (digest && row != NULL) {
      char hex[17];
      snprintf(hex, sizeof hex, "%016" PRIx64, st->digest);
      json_object_set_new(row, "digest", json_string(hex));
    }
    json_array_append_new(rows, row);
  } else {
    status_row(ep, st, digest);
  }
  synod_client_free(c);
  return rv;
}

int cmd_status(const struct ctl_opts *o, int argc, char **argv) {
  struct endpoint eps[ENDPOINTS_MAX];
  struct synod_status st, best = {0};
  char err[SYNOD_ERRMSG_BYTES], ep[300];
  const char *list = o->endpoints ? o->endpoints : getenv("SYNOD_ENDPOINTS");
  json_t *rows = json_array();
  struct digests dg = {0};
  bool digest = argc == 2 && strcmp(argv[1], "--digest") == 0;
  size_t n;
  int answered = 0;
  if (argc > 1 && !digest) {
    bool help = strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0;
    fprintf(
        help ? stdout : stderr,
        "usage: synodctl [--endpoints LIST] status [--digest] [--json]\n\n"
        "Asks every endpoint for its status: name, role, term, leader,\n"
        "commit/applied/last/snapshot indexes, version; then lists the\n"
        "members as the leader (or the first replica that answers) sees\n"
        "them.\n\n"
        "--digest  also each replica's state digest (FNV-1a of its state\n"
        "          machine image at its applied index): replicas at one\n"
        "          applied index must report one digest. Each replica\n"
        "          encodes its whole state to answer: not for hot loops.\n\n"
        "Exit status: 0 if any replica answered, 1 if none did or (with\n"
        "--digest) two replicas at one applied index differ.\n");
    json_decref(rows);
    return help ? CTL_EXIT_OK : CTL_EXIT_USAGE;
  }
  if (endpoints_parse(list && list[0] ? list : SYNOD_ENDPOINTS_DEFAULT, eps,
                      ENDPOINTS_MAX, &n, err) != 0) {
    fprintf(stderr, "%s: status: %s\n", o->prog, err);
    json_decref(rows);
    return CTL_EXIT_USAGE;
  }
  if (!o->json) {
    printf("%-21s %-10s %-10s %6s %-10s %8s %8s %8s %8s  %-*s%s\n", "ENDPOINT",
           "NAME", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED", "LAST",
           "SNAPSHOT", digest ? 8 : 0, "VERSION", digest ? "  DIGEST" : "");
  }
  for (size_t i = 0; i < n; i++) {
    endpoint_format(&eps[i], ep, sizeof ep);
    if (status_one(o, ep, digest, &st, rows) != 0) {
      continue;
    }
    answered++;
    digests_add(&dg, &st);
    if (best.name == NULL || strcmp(st.role, "leader") == 0) {
      synod_status_free(&best);
      best = st;
    } else {
      synod_status_free(&st);
    }
  }
  bool agree = !digest || digests_report(&dg, o->json);
  if (o->json) {
    ctl_json_print(json_pack("{s:o, s:s}", "replicas", rows, "leader",
                             best.leader_name ? best.leader_name : ""));
  } else {
    json_decref(rows);
    if (best.name != NULL) {
      status_members(&best);
    }
  }
  synod_status_free(&best);
  return answered > 0 && agree ? CTL_EXIT_OK : CTL_EXIT_ERROR;
}
