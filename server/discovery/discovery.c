/* Discovery rounds: start, schedule (interval after success, jittered
 * exponential backoff after failure), report changes, stop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "discovery_int.h"
#include "log.h"
#include "synod.h"

static const char *method_name(enum discovery_method m) {
  switch (m) {
  case DISCOVERY_DNS:
    return "dns";
  case DISCOVERY_KUBERNETES:
    return "kubernetes";
  default:
    return "static";
  }
}

static void discovery_timer_cb(uv_timer_t *t) {
  struct discovery *d = t->data;
  if (d->stopping || d->in_flight) {
    return;
  }
  d->in_flight = true;
  if (d->method == DISCOVERY_DNS) {
    discovery_dns_round(d);
  } else {
    discovery_k8s_round(d);
  }
}

/* Logs the candidate list when it differs from the one proposed before. */
static void discovery_log_change(struct discovery *d) {
  const struct discovery_round *r = &d->round;
  char line[DISCOVERY_ERRMSG_MAX];
  size_t k = 0;
  if (d->have_last && d->last_n == r->candidates_n &&
      memcmp(d->last, r->candidates, r->candidates_n * sizeof *d->last) == 0) {
    log_debug("discovery", "%s: candidates unchanged (%zu)",
              method_name(d->method), r->candidates_n);
    return;
  }
  line[0] = '\0';
  for (size_t i = 0; i < r->candidates_n && k < sizeof line; i++) {
    const struct discovery_candidate *c = &r->candidates[i];
    k += (size_t)snprintf(line + k, sizeof line - k, "%s%s=%s", i ? ", " : "",
                          c->name, c->address);
  }
  log_info("discovery", "%s: %zu candidates: %s", method_name(d->method),
           r->candidates_n, r->candidates_n ? line : "(none)");
  memcpy(d->last, r->candidates, r->candidates_n * sizeof *d->last);
  d->last_n = r->candidates_n;
  d->have_last = true;
}

void discovery_round_done(struct discovery *d) {
  struct discovery_round *r = &d->round;
  uint32_t delay = d->interval_ms;
  d->in_flight = false;
  if (d->stopping) {
    return;
  }
  if (r->token_rotated) {
    log_info("discovery",
             "kubernetes: token file %s changed (rotated): "
             "using the new token",
             d->token_file);
  }
  if (r->rv == 0) {
    if (d->failures > 0) {
      log_info("discovery", "%s: recovered after %u failed rounds",
               method_name(d->method), d->failures);
    }
    d->failures = 0;
    d->last_err[0] = '\0';
    discovery_log_change(d);
    d->cb(d->cb_arg, r->candidates, r->candidates_n);
  } else {
    d->failures++;
    uint32_t min = d->interval_ms < 1000 ? d->interval_ms : 1000;
    delay = discovery_backoff_ms(d->failures, min, d->backoff_max_ms, &d->prng);
    /* Every failure is logged (the operator needs to see it persist), at
     * warn the first time a message appears and when it changes. */
    log_write(strcmp(d->last_err, r->errmsg) ? LOG_WARN : LOG_INFO, "discovery",
              "%s: %s (%s); keeping the previous candidates, "
              "retry %u in %u ms",
              method_name(d->method), r->errmsg, synod_errname(r->rv),
              d->failures, delay);
    snprintf(d->last_err, sizeof d->last_err, "%s", r->errmsg);
  }
  uv_timer_start(&d->timer, discovery_timer_cb, delay, 0);
}

/* Copies the options that every method shares. */
static int discovery_init_common(struct discovery *d,
                                 const struct discovery_options *o,
                                 char *errmsg) {
  d->method = o->method;
  d->peer_port = o->peer_port;
  d->timeout_ms = o->timeout_ms ? o->timeout_ms : DISCOVERY_TIMEOUT_MS;
  d->backoff_max_ms =
      o->backoff_max_ms ? o->backoff_max_ms : DISCOVERY_BACKOFF_MAX_MS;
  d->prng = o->seed ? o->seed : (uv_hrtime() ^ ((uint64_t)getpid() << 32));
  if (o->method != DISCOVERY_STATIC && o->peer_port == 0) {
    snprintf(errmsg, DISCOVERY_ERRMSG_MAX,
             "discovery %s: the peer port is 0: set --peer-port",
             method_name(o->method));
    return SYNOD_EINVAL;
  }
  if (o->method != DISCOVERY_DNS) {
    return 0;
  }
  d->interval_ms =
      o->dns_interval_ms ? o->dns_interval_ms : DISCOVERY_INTERVAL_MS;
  if (o->dns_name == NULL || o->dns_name[0] == '\0' ||
      strlen(o->dns_name) >= sizeof d->dns_name) {
    snprintf(errmsg, DISCOVERY_ERRMSG_MAX,
             "discovery dns: --dns-name '%s' is empty or too long (the "
             "headless Service, e.g. synod-peers.NAMESPACE.svc)",
             o->dns_name ? o->dns_name : "");
    return SYNOD_EINVAL;
  }
  snprintf(d->dns_name, sizeof d->dns_name, "%s", o->dns_name);
  return 0;
}

int discovery_start(uv_loop_t *loop, const struct discovery_options *o,
                    discovery_cb cb, void *arg, struct discovery **out,
                    char *errmsg) {
  struct discovery *d = calloc(1, sizeof *d);
  int rv;
  if (d == NULL) {
    snprintf(errmsg, DISCOVERY_ERRMSG_MAX, "discovery: out of memory");
    return SYNOD_ENOMEM;
  }
  d->loop = loop;
  d->cb = cb;
  d->cb_arg = arg;
  rv = discovery_init_common(d, o, errmsg);
  if (rv == 0 && o->method == DISCOVERY_KUBERNETES) {
    rv = discovery_k8s_init(d, o, errmsg);
  }
  if (rv != 0) {
    free(d);
    return rv;
  }
  uv_timer_init(loop, &d->timer);
  d->timer.data = d;
  d->work.data = d;
  d->gai.data = d;
  if (o->method == DISCOVERY_DNS) {
    log_info("discovery", "dns: resolving %s every %u ms (peer port %u)",
             d->dns_name, d->interval_ms, d->peer_port);
  } else if (o->method == DISCOVERY_KUBERNETES) {
    log_info("discovery", "kubernetes: GET %s every %u ms (peer port %u)",
             d->url, d->interval_ms, d->peer_port);
  }
  if (o->method != DISCOVERY_STATIC) {
    uv_timer_start(&d->timer, discovery_timer_cb, 0, 0);
  }
  *out = d;
  return 0;
}

static void discovery_timer_close_cb(uv_handle_t *h) {
  struct discovery *d = h->data;
  d->timer_closed = true;
}

void discovery_stop(struct discovery *d) {
  if (d == NULL || d->stopping) {
    return;
  }
  d->stopping = true;
  atomic_store(&d->abort, true);
  uv_close((uv_handle_t *)&d->timer, discovery_timer_close_cb);
  if (d->in_flight) {
    /* Succeeds only if the request has not started; else it finishes
     * (the worker sees `abort`) and its callback ignores the result. */
    uv_cancel(d->method == DISCOVERY_DNS ? (uv_req_t *)&d->gai
                                         : (uv_req_t *)&d->work);
  }
}

void discovery_free(struct discovery *d) {
  if (d == NULL) {
    return;
  }
  /* A stopped discovery whose loop ran to the end has nothing open. */
  free(d);
}
