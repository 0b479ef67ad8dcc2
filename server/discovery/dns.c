/* DNS discovery: resolves the headless Service's name (one A/AAAA record
 * per pod, ready or not, given publishNotReadyAddresses) with libuv's
 * asynchronous getaddrinfo, and proposes each address. DNS gives no pod
 * names, so a candidate's name is its address; the node learns the real
 * name from the peer's hello. */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discovery_int.h"
#include "synod.h"

static int candidate_cmp(const void *a, const void *b) {
  const struct discovery_candidate *x = a, *y = b;
  return strcmp(x->name, y->name);
}

static bool dns_seen(const struct discovery_round *r,
                     const struct discovery_candidate *c) {
  for (size_t i = 0; i < r->candidates_n; i++) {
    if (strcmp(r->candidates[i].address, c->address) == 0) {
      return true;
    }
  }
  return false;
}

/* What a resolver failure means, for the log. */
static void dns_error(struct discovery *d, int status) {
  struct discovery_round *r = &d->round;
  const char *hint = "";
  r->rv = SYNOD_EUNAVAILABLE;
  if (status == UV_EAI_NONAME || status == UV_EAI_NODATA) {
    hint = ": the name does not exist (NXDOMAIN): is the headless Service "
           "created, and is the name NAME.NAMESPACE.svc?";
    r->rv = SYNOD_ENOTFOUND;
  } else if (status == UV_EAI_AGAIN) {
    hint = ": temporary failure: is the cluster DNS reachable?";
  }
  snprintf(r->errmsg, sizeof r->errmsg, "resolve %s: %s (%s)%s", d->dns_name,
           uv_strerror(status), uv_err_name(status), hint);
}

static void dns_resolved_cb(uv_getaddrinfo_t *req, int status,
                            struct addrinfo *res) {
  struct discovery *d = req->data;
  struct discovery_round *r = &d->round;
  if (status != 0) {
    dns_error(d, status);
  }
  for (struct addrinfo *ai = res; status == 0 && ai; ai = ai->ai_next) {
    struct discovery_candidate c;
    if (discovery_candidate_from_addr(ai->ai_addr, d->peer_port, &c) != 0 ||
        dns_seen(r, &c)) {
      continue;
    }
    if (r->candidates_n == DISCOVERY_CANDIDATES_MAX) {
      snprintf(r->errmsg, sizeof r->errmsg, "resolve %s: over %d addresses",
               d->dns_name, DISCOVERY_CANDIDATES_MAX);
      r->rv = SYNOD_ELIMIT;
      r->candidates_n = 0;
      break;
    }
    r->candidates[r->candidates_n++] = c;
  }
  uv_freeaddrinfo(res);
  qsort(r->candidates, r->candidates_n, sizeof *r->candidates, candidate_cmp);
  discovery_round_done(d);
}

void discovery_dns_round(struct discovery *d) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  memset(&d->round, 0, sizeof d->round);
  int rv = uv_getaddrinfo(d->loop, &d->gai, dns_resolved_cb, d->dns_name, NULL,
                          &hints);
  if (rv != 0) {
    dns_error(d, rv);
    discovery_round_done(d);
  }
}
