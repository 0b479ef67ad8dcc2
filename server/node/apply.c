/* Apply: committed entries go through the state machine in log order; what
 * it answers goes back to whoever waits on this replica. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "node_int.h"
#include "version.h"
#include "synod.h"

/* A queued lock acquire: (sequence -> who waits), per session. */
struct session_waits {
  uint32_t n;
  uint32_t cap;
  struct {
    uint64_t sequence;
    struct wait w;
  } items[];
};

int apply_wait_add(struct node *n, uint64_t session_id, uint64_t sequence,
                   uint64_t conn_id, uint64_t request_id) {
  struct session_waits *sw = u64map_get(&n->waits, session_id);
  for (uint32_t i = 0; sw != NULL && i < sw->n; i++) {
    if (sw->items[i].sequence == sequence) { /* a retry: newest asker */
      sw->items[i].w = (struct wait){conn_id, request_id};
      return 0;
    }
  }
  if (sw == NULL) {
    sw = malloc(sizeof *sw + 4 * sizeof sw->items[0]);
    if (sw == NULL || u64map_put(&n->waits, session_id, sw) != 0) {
      free(sw);
      return SYNOD_ENOMEM;
    }
    sw->n = 0;
    sw->cap = 4;
  } else if (sw->n == sw->cap) {
    struct session_waits *g =
        realloc(sw, sizeof *g + 2 * sw->cap * sizeof g->items[0]);
    if (g == NULL) {
      return SYNOD_ENOMEM;
    }
    g->cap *= 2;
    sw = g;
    u64map_put(&n->waits, session_id, sw); /* replaces: cannot fail */
  }
  sw->items[sw->n].sequence = sequence;
  sw->items[sw->n].w = (struct wait){conn_id, request_id};
  sw->n++;
  return 0;
}

/* Takes the waiter of (session, sequence), if it waits here. */
static bool apply_wait_take(struct node *n, uint64_t session_id,
                            uint64_t sequence, struct wait *out) {
  struct session_waits *sw = u64map_get(&n->waits, session_id);
  for (uint32_t i = 0; sw != NULL && i < sw->n; i++) {
    if (sw->items[i].sequence == sequence) {
      *out = sw->items[i].w;
      sw->items[i] = sw->items[--sw->n];
      if (sw->n == 0) {
        free(u64map_del(&n->waits, session_id));
      }
      return true;
    }
  }
  return false;
}

static void apply_free_waits_cb(void *arg, uint64_t key, void *value) {
  (void)arg;
  (void)key;
  free(value);
}

void apply_close(struct node *n) {
  u64map_each(&n->waits, apply_free_waits_cb, NULL);
  u64map_close(&n->waits);
}

/* ------------------------------------------------------------- pending */

static void pending_free(struct pending *p) {
  free(p->waiters);
  free(p);
}

static struct pending *pending_pop(struct node *n) {
  struct pending *p = n->pending_head;
  n->pending_head = p->next;
  if (n->pending_head == NULL) {
    n->pending_tail = NULL;
  }
  return p;
}

/* Tells whoever waits on a proposal that it may not have been applied:
 * they retry, with the same (session, sequence), where the leader is. */
static void pending_fail(struct node *n, struct pending *p, int code) {
  const char *why = code == SYNOD_ENOTLEADER
                        ? "leadership changed before the request committed"
                        : "request could not be completed";
  if (p->kind != PENDING_TICK) {
    char msg[SYNOD_ERRMSG_MAX];
    snprintf(msg, sizeof msg,
             "%s on %s; it may still be applied (outcome unknown): retry it",
             why, n->name);
    writes_answer(n, &p->from, code, msg, NULL, 0);
  }
  if (n->client_net == NULL) {
    return; /* stopping: the connections are gone */
  }
  char msg[SYNOD_ERRMSG_MAX];
  errmsg_set(msg, "%s; retry it", why);
  for (uint32_t i = 0; i < p->waiters_n; i++) {
    writes_answer(n, &p->waiters[i].from, code, msg, NULL, 0);
  }
}

void apply_fail_pending(struct node *n, int code) {
  while (n->pending_head != NULL) {
    struct pending *p = pending_pop(n);
    pending_fail(n, p, code);
    pending_free(p);
  }
}

/* The proposal of ours at `index`, if its entry is the one applied; any
 * proposal below `index` was lost (a snapshot or another leader's entries
 * replaced it). */
static struct pending *pending_take(struct node *n, uint64_t index,
                                    uint64_t term) {
  while (n->pending_head != NULL && n->pending_head->index <= index) {
    struct pending *p = pending_pop(n);
    if (p->index == index && p->term == term) {
      return p;
    }
    pending_fail(n, p, SYNOD_ENOTLEADER);
    pending_free(p);
  }
  return NULL;
}

/* ---------------------------------------------------------------- apply */

static void apply_keepalives(struct node *n, struct pending *p) {
  for (uint32_t i = 0; i < p->waiters_n; i++) {
    const struct keepalive_waiter *w = &p->waiters[i];
    uint32_t ttl = fsm_session_ttl_ms(n->fsm, w->session_id);
    if (ttl == 0) {
      char msg[SYNOD_ERRMSG_MAX];
      errmsg_set(msg, "session %llu expired or unknown",
                 (unsigned long long)w->session_id);
      writes_answer(n, &w->from, SYNOD_ESESSION, msg, NULL, 0);
      continue;
    }
    Synod__Response resp = SYNOD__RESPONSE__INIT;
    Synod__SessionKeepaliveReply r = SYNOD__SESSION_KEEPALIVE_REPLY__INIT;
    uint8_t buf[32];
    r.ttl_ms = ttl;
    resp.body_case = SYNOD__RESPONSE__BODY_SESSION_KEEPALIVE;
    resp.session_keepalive = &r;
    /* The answer without its id, which writes_answer adds for a client. */
    size_t len = synod__response__pack(&resp, buf);
    writes_answer(n, &w->from, 0, NULL, buf, len);
  }
}

static void apply_event(struct node *n, const struct fsm_event *e) {
  struct wait w;
  switch (e->type) {
  case FSM_EVENT_LOCK_GRANTED:
  case FSM_EVENT_LOCK_TIMEOUT:
  case FSM_EVENT_LOCK_CANCELED:
    if (apply_wait_take(n, e->session_id, e->sequence, &w)) {
      requests_send_packed(n, w.conn_id, w.request_id, e->response,
                           e->response_len);
    }
    break;
  case FSM_EVENT_SESSION_EXPIRED: {
    uintptr_t conn = (uintptr_t)u64map_del(&n->session_conns, e->session_id);
    if (conn != 0) {
      requests_send_event(n, conn - 1, e->event, e->event_len);
    }
    log_info("node", "session %llu expired", (unsigned long long)e->session_id);
    break;
  }
  case FSM_EVENT_ELECTION_CHANGED:
    requests_observers_notify(n, e->name, e->event, e->event_len);
    break;
  case FSM_EVENT_CHANNEL_APPENDED:
  case FSM_EVENT_CHANNEL_DELETED:
  case FSM_EVENT_KEYS_CHANGED:
  case FSM_EVENT_GROUP_APPENDED:
  case FSM_EVENT_GROUP_DELETED:
    subs_on_event(&n->subs, e);
    break;
  }
}

static void apply_normal(struct node *n, const struct core_entry *e) {
  struct fsm_output out;
  int rv = fsm_apply(n->fsm, e->index, e->data, e->len, &out);
  if (rv == SYNOD_EPROTO) {
    /* A newer build's entry: applied otherwise here than on the replicas
     * that know it, the state would diverge. Stop; the log keeps it for
     * the newer build to apply after an upgrade of this replica. */
    log_error("node",
              "apply %llu: the entry carries %s, which this build (synodd "
              "%s) does not know: a newer synodd wrote it. Stopping rather "
              "than applying it otherwise than the replicas that know it; "
              "run the newer build on %s",
              (unsigned long long)e->index, fsm_unknown_field(n->fsm),
              SYNOD_VERSION, n->name);
    node_die();
  }
  if (rv != 0) {
    log_error("node", "apply %llu: index not increasing (applied %llu)",
              (unsigned long long)e->index,
              (unsigned long long)fsm_applied_index(n->fsm));
    abort();
  }
  struct pending *p = pending_take(n, e->index, e->term);
  if (p != NULL && p->kind == PENDING_TICK) {
    apply_keepalives(n, p);
  } else if (p != NULL && out.has_response) {
    if (out.response.pending && p->from.conn_id != 0) {
      apply_wait_add(n, out.response.session_id, out.response.sequence,
                     p->from.conn_id, p->from.request_id);
    } else if (out.response.pending) {
      /* node_write() refuses the requests that may wait. */
      writes_answer(n, &p->from, SYNOD_EINTERNAL,
                    "the request waits in the state machine; only a client "
                    "connection can wait for its answer",
                    NULL, 0);
    } else {
      writes_answer(n, &p->from, 0, NULL, out.response.data, out.response.len);
    }
  }
  if (p != NULL) {
    pending_free(p);
  }
  for (size_t i = 0; i < out.events_len; i++) {
    apply_event(n, &out.events[i]);
  }
}

static void apply_other(struct node *n, const struct core_entry *e) {
  if (e->type == CORE_ENTRY_CONFIG &&
      core_config_decode(e->data, e->len, &n->applied_config) != 0) {
    log_error("node", "apply %llu: configuration does not decode",
              (unsigned long long)e->index);
  }
  if (fsm_index_advance(n->fsm, e->index) != 0) {
    log_error("node", "apply %llu: index not increasing",
              (unsigned long long)e->index);
    abort();
  }
  struct pending *p = pending_take(n, e->index, e->term);
  if (p != NULL && p->kind == PENDING_MEMBER) {
    requests_send_ok(n, p->from.conn_id, p->from.request_id);
  }
  if (p != NULL) {
    pending_free(p);
  }
}

static void apply_install(struct node *n, const struct core_update *up) {
  size_t len = 0;
  const uint8_t *image =
      persist_installing(n, up->snapshot_install.index, &len);
  if (image == NULL || fsm_snapshot_decode(n->fsm, image, len) != 0) {
    /* The leader sent an image we cannot read; we cannot follow it. */
    log_error("node", "install snapshot %llu: image of %zu bytes %s",
              (unsigned long long)up->snapshot_install.index, len,
              image == NULL ? "missing" : "does not decode");
    node_die();
  }
  n->fsm_generation++;
  n->bytes_since_snapshot = 0;
  n->applied_index = up->snapshot_install.index;
  n->applied_term = up->snapshot_install.term;
  n->applied_config = up->snapshot_install.config;
  log_info("node", "installed snapshot %llu (term %llu, %zu bytes)",
           (unsigned long long)n->applied_index,
           (unsigned long long)n->applied_term, len);
  pending_take(n, n->applied_index, 0);
  subs_on_install(&n->subs);
}

/* The entry bytes after the last snapshot that make the next one due:
 * snapshot_bytes, spread as the core's thresholds are (up to half as much
 * again here). Every replica applies the same bytes, so one fixed
 * threshold had all of them save a large image at the same index: each
 * stops its log writes while it saves, and with all of them at once no
 * majority could commit (a second and more with a 70 MB image here). */
static uint64_t apply_snapshot_bytes_due(const struct node *n) {
  return core_snapshot_spread(n->core, n->snap_meta.index,
                              n->opts.snapshot_bytes, 0xc4ceb9fe1a85ec53ULL);
}

void apply_update(struct node *n, const struct core_update *up) {
  if (up->snapshot_install_present) {
    apply_install(n, up);
  }
  for (uint32_t i = 0; i < up->committed_n; i++) {
    const struct core_entry *e = &up->committed[i];
    if (e->type == CORE_ENTRY_NORMAL) {
      apply_normal(n, e);
    } else {
      apply_other(n, e);
    }
    n->applied_index = e->index;
    n->applied_term = e->term;
    n->bytes_since_snapshot += e->len;
  }
  requests_reads_serve(n);
  subs_pump(&n->subs);
  /* Like the core's own threshold, the byte threshold holds off while a
   * snapshot streams to a follower (see core_snapshot_streaming), and is
   * spread as the core's is. */
  uint64_t bytes_due = apply_snapshot_bytes_due(n);
  bool wanted =
      up->snapshot_wanted || (n->bytes_since_snapshot >= bytes_due &&
                              (!core_snapshot_streaming(n->core) ||
                               n->bytes_since_snapshot >= 4 * bytes_due));
  if (wanted && n->applied_index > n->snap_meta.index) {
    int rv = persist_snapshot_take(n, n->applied_index, n->applied_term,
                                   &n->applied_config);
    if (rv != 0) {
      log_warn("node", "snapshot at %llu: %s",
               (unsigned long long)n->applied_index, synod_strerror(rv));
    }
  }
}
