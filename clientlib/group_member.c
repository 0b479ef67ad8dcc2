/* Group membership (synod.h "group membership"): a join, the state
 * transfer that may follow it, and then the group's stream as the member
 * sees it, with the full view kept here from the join's view and the
 * changes after it. The stream is a group subscription (subscribe.c:
 * resumption, credits, moves between replicas, ends); this file decides
 * where it starts and which of its items the application gets.
 *
 * Why the boundary is exact. The state is the application's after every
 * item up to state_offset (N). Items reach the application only if they
 * come after N (messages, state requests, checkpoint notices), and view
 * changes only if they come after the view already held. A subscription
 * starts at min(N, view offset) + 1, so nothing after either is missed,
 * and what comes twice is dropped by these two comparisons. While a
 * REQUESTED state is awaited N is unknown (UINT64_MAX): only views are
 * applied; when the checkpoint's notice comes, the subscription is
 * started again from just after the checkpoint's offset. */
#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"

enum gm_phase {
  GM_JOINING, /* the join is in flight */
  GM_WAITING, /* REQUESTED: waiting for a checkpoint notice */
  GM_READING, /* reading the checkpoint */
  GM_LIVE,    /* ready: delivering */
  GM_ENDED    /* failed, removed, left or its stream ended */
};

struct synod_async_group {
  struct synod_async_group *next; /* in synod_async.groups */
  struct synod_async *a;
  char *group, *member;
  bool want_state;
  bool manual; /* consumption is reported (group_member_consumed) */
  uint32_t window;
  uint32_t state_timeout_ms;
  struct synod_group_callbacks cbs;
  enum gm_phase phase;
  uint64_t session_id; /* the session that holds the member */
  /* The full view; view.offset is the offset of the last view applied. */
  struct synod_group_view view;
  uint64_t join_offset, join_index;
  bool view_reported; /* the join's view was given to the application */
  enum synod_group_state_source source;
  uint64_t request_offset;    /* REQUESTED: the state request's item */
  uint64_t state_offset;      /* items after it are delivered */
  uint64_t state_deadline_ms; /* GM_WAITING: loop time */
  uint64_t ready_deadline_ms; /* until ready; 0: none */
  uint64_t given;             /* callbacks of items and views, ever */
  struct synod_async_subscription *sub;
  bool leaving;
  int end_rv;
  char end_why[SYNOD_ERRMSG_BYTES];
  unsigned pending; /* internal requests in flight that point here */
  unsigned busy;    /* callbacks running */
  bool gone;        /* closed: freed once pending == 0 and busy == 0 */
};

/* ----------------------------------------------------------- lifetime */

static void gm_unlink(struct synod_async *a, struct synod_async_group *g) {
  for (struct synod_async_group **p = &a->groups; *p != NULL; p = &(*p)->next) {
    if (*p == g) {
      *p = g->next;
      return;
    }
  }
}

static void gm_release(struct synod_async_group *g) {
  if (g->gone && g->pending == 0 && g->busy == 0) {
    free(g->group);
    free(g->member);
    synod_group_view_free(&g->view);
    free(g);
  }
}

static void gm_unsubscribe(struct synod_async_group *g) {
  if (g->sub != NULL) {
    synod_async_unsubscribe(g->a, g->sub);
    g->sub = NULL;
  }
}

/* Ends g: nothing more is delivered; the application hears why once
 * (ready_cb if it was never ready, else removed_cb, unless it left). */
static void gm_end(struct synod_async_group *g, int status, const char *why) {
  enum gm_phase was = g->phase;
  char msg[SYNOD_ERRMSG_BYTES];
  if (was == GM_ENDED) {
    return;
  }
  snprintf(msg, sizeof msg, "%s", why); /* why may be a->errmsg */
  g->phase = GM_ENDED;
  g->end_rv = status;
  snprintf(g->end_why, sizeof g->end_why, "%s", msg);
  gm_unsubscribe(g);
  if (g->gone) {
    return;
  }
  g->busy++;
  if (was != GM_LIVE) {
    g->cbs.ready_cb(g->cbs.arg, status, NULL);
  } else if (!g->leaving && g->cbs.removed_cb != NULL) {
    g->cbs.removed_cb(g->cbs.arg, status, msg);
  }
  g->busy--;
  if (was != GM_LIVE && g->session_id != 0 && !g->leaving &&
      status != SYNOD_ESESSION) {
    /* Joined but not ready: do not stay in the view without a state. */
    synod_async_group_leave(g->a, g->group, g->member, NULL, NULL);
  }
  gm_release(g);
}

/* ---------------------------------------------------------- delivery */

static bool gm_is_me(const struct synod_async_group *g, const char *name) {
  return strcmp(name, g->member) == 0;
}

static void gm_report_view(struct synod_async_group *g) {
  g->view_reported = true;
  g->given++;
  if (g->cbs.view_cb != NULL) {
    g->cbs.view_cb(g->cbs.arg, &g->view);
  }
}

/* Applies a view change to g->view (names and data copied). */
static int gm_apply_view(struct synod_async_group *g,
                         const struct synod_group_item *it) {
  struct synod_group_view *v = &g->view;
  size_t n = 0;
  struct synod_group_member *m = calloc(v->count + it->joined_n + 1, sizeof *m);
  if (m == NULL) {
    return SYNOD_ENOMEM;
  }
  for (size_t i = 0; i < v->count; i++) {
    bool left = false;
    for (size_t j = 0; j < it->left_n && !left; j++) {
      left = strcmp(v->members[i].name, it->left[j]) == 0;
    }
    if (left) {
      free(v->members[i].name);
      free(v->members[i].data);
    } else {
      m[n++] = v->members[i];
    }
  }
  for (size_t j = 0; j < it->joined_n; j++) {
    const struct synod_group_member *src = &it->joined[j];
    struct synod_group_member *dst = &m[n++];
    *dst = *src;
    dst->name = strdup(src->name);
    dst->data = malloc(src->data_len + 1);
    if (dst->name == NULL || dst->data == NULL) {
      free(dst->name);
      free(dst->data);
      dst->name = NULL;
      dst->data = NULL;
      n--;
      continue; /* reported below as a mismatch */
    }
    if (src->data_len > 0) {
      memcpy(dst->data, src->data, src->data_len);
    }
    dst->data[src->data_len] = '\0';
  }
  free(v->members);
  v->members = m;
  v->count = n;
  v->view_id = it->view_id;
  v->offset = it->offset;
  return n == it->members ? 0 : SYNOD_EINTERNAL;
}

/* Whether view change it drops this member. */
static bool gm_dropped_by(const struct synod_async_group *g,
                          const struct synod_group_item *it) {
  for (size_t j = 0; j < it->left_n; j++) {
    if (gm_is_me(g, it->left[j])) {
      return true;
    }
  }
  return false;
}

/* A view change after the view held: apply, report, and end g if it
 * dropped this member. */
static void gm_on_view(struct synod_async_group *g,
                       const struct synod_group_item *it) {
  char why[SYNOD_ERRMSG_BYTES];
  bool dropped = gm_dropped_by(g, it);
  int rv = gm_apply_view(g, it);
  if (rv != 0) {
    errmsg_printf(why,
                  "group '%s': view %" PRIu64 " at offset %" PRIu64
                  " does not follow from the view before it (%s)",
                  g->group, it->view_id, it->offset, synod_strerror(rv));
    gm_end(g, rv, why);
    return;
  }
  /* The view of its own leave is not the member's: its membership ended
   * with the leave (and the last member's would be empty, now that a
   * group's deletion delivers its last view before it ends). */
  if (g->phase == GM_LIVE && !(dropped && g->leaving)) {
    gm_report_view(g);
  }
  if (dropped && !g->leaving) {
    errmsg_printf(why,
                  "member '%s' of group '%s' was removed (view %" PRIu64
                  " at offset %" PRIu64 "): its session ended",
                  g->member, g->group, it->view_id, it->offset);
    gm_end(g, SYNOD_ESESSION, why);
  } else if (dropped) {
    errmsg_printf(why, "member '%s' left group '%s'", g->member, g->group);
    gm_end(g, SYNOD_ECANCELED, why);
  }
}

static void gm_start_read(struct synod_async_group *g);
static void gm_go_live(struct synod_async_group *g, const void *state,
                       size_t state_len);

/* While g waited for a checkpoint, every member before it left without
 * one: it is the coordinator, and the state request it made was answered
 * EMPTY. It starts from nothing, as a joiner told EMPTY by its join
 * does: the state is the empty one as of its join, and every item after
 * the join follows (from a new subscription: the waiting one passed
 * them over). */
static void gm_state_empty(struct synod_async_group *g) {
  gm_unsubscribe(g);
  g->source = SYNOD_GROUP_STATE_EMPTY;
  g->state_offset = g->join_offset;
  gm_go_live(g, "", 0);
}

/* While g waits for its state, a view that drops it ends it; the views
 * themselves come again once it is live (its live subscription starts
 * at the join's view at the latest), so that ready gives the join's
 * view and view_cb each one after it, in order. */
static void gm_view_waiting(struct synod_async_group *g,
                            const struct synod_group_item *it) {
  char why[SYNOD_ERRMSG_BYTES];
  if (gm_dropped_by(g, it)) {
    errmsg_printf(why,
                  "member '%s' of group '%s' was removed (view %" PRIu64
                  " at offset %" PRIu64 ") before it had its state",
                  g->member, g->group, it->view_id, it->offset);
    gm_end(g, g->leaving ? SYNOD_ECANCELED : SYNOD_ESESSION, why);
  }
}

/* Whether item it, at or before the state's offset, is one the state
 * does not hold: a message addressed to this member alone after its
 * join, which no other member's state has. (A state request to it there
 * is not: the checkpoint at the state's offset was stored after it, and
 * answered it.) */
static bool gm_mine_after_join(const struct synod_async_group *g,
                               const struct synod_group_item *it) {
  return it->offset > g->join_offset && it->type == SYNOD_GROUP_ITEM_MESSAGE &&
         gm_is_me(g, it->to);
}

/* One item of the stream, in order, each after the last one. */
static void gm_on_item(struct synod_async_group *g,
                       const struct synod_group_item *it) {
  if (g->phase == GM_LIVE && !g->view_reported &&
      it->offset >= g->view.offset) {
    gm_report_view(g); /* the stream reached the join's view */
  }
  if (it->type == SYNOD_GROUP_ITEM_VIEW) {
    if (g->phase != GM_LIVE) {
      gm_view_waiting(g, it);
    } else if (it->offset > g->view.offset) {
      gm_on_view(g, it);
    }
    return;
  }
  if (g->phase == GM_WAITING && it->type == SYNOD_GROUP_ITEM_CHECKPOINT &&
      it->offset > g->request_offset) {
    /* Our state is there: a checkpoint stored after the request answers
     * it (and every pending one), whoever stored it and whatever offset
     * it reflects; the items after that offset follow. */
    gm_start_read(g);
    return;
  }
  if (g->phase == GM_WAITING && it->type == SYNOD_GROUP_ITEM_STATE_REQUEST &&
      it->empty && gm_is_me(g, it->member) && it->offset > g->request_offset) {
    gm_state_empty(g); /* no one is left to ask */
    return;
  }
  if (g->phase != GM_LIVE ||
      (it->offset <= g->state_offset && !gm_mine_after_join(g, it))) {
    return; /* in the state already */
  }
  switch (it->type) {
  case SYNOD_GROUP_ITEM_MESSAGE:
    /* Before the join only what went to everybody is the group's. */
    if ((it->offset > g->join_offset || it->to[0] == '\0') &&
        g->cbs.message_cb != NULL) {
      g->given++;
      g->cbs.message_cb(g->cbs.arg, it);
    }
    break;
  case SYNOD_GROUP_ITEM_STATE_REQUEST:
    if (it->offset > g->join_offset && gm_is_me(g, it->to) &&
        g->cbs.state_request_cb != NULL) {
      g->given++;
      g->cbs.state_request_cb(g->cbs.arg, it);
    }
    break;
  default:
    if (it->offset > g->join_offset && g->cbs.checkpoint_cb != NULL) {
      g->given++;
      g->cbs.checkpoint_cb(g->cbs.arg, it);
    }
    break;
  }
}

static void gm_items_cb(void *arg, const struct synod_group_item *items,
                        size_t n) {
  struct synod_async_group *g = arg;
  struct synod_async_subscription *sub = g->sub;
  uint64_t given = g->given;
  g->busy++;
  /* Once g left this subscription (for the checkpoint, or started again
   * after an EMPTY answer), its other items are the next one's. */
  for (size_t i = 0; i < n && g->phase != GM_ENDED && !g->gone && g->sub == sub;
       i++) {
    gm_on_item(g, &items[i]);
  }
  /* What the application was not given is consumed now (manual mode:
   * the blocking layer reports what it was given as it takes it). */
  given = g->given - given;
  if (g->manual && g->sub != NULL && g->sub == sub && n > given) {
    group_member_consumed(g, (uint32_t)(n - given));
  }
  g->busy--;
  gm_release(g);
}

static void gm_sub_end_cb(void *arg, int status, const char *errmsg,
                          uint64_t first_available) {
  struct synod_async_group *g = arg;
  (void)first_available;
  g->sub = NULL; /* freed by the engine when this returns */
  if (status == SYNOD_ENOTFOUND) {
    char why[SYNOD_ERRMSG_BYTES];
    errmsg_printf(why, "member '%s' of group '%s' was removed: %s", g->member,
                  g->group, errmsg);
    gm_end(g, SYNOD_ESESSION, why);
    return;
  }
  gm_end(g, status, errmsg);
}

/* Follows the stream from offset `from`. */
static void gm_subscribe(struct synod_async_group *g, uint64_t from) {
  assert(from >= 1); /* a member follows from its own view on */
  /* known_index: the group it joined, and no later one of the name. */
  int rv = group_sub_start(g->a, g->group, g->member, from, g->join_index,
                           g->window, gm_items_cb, gm_sub_end_cb, NULL, g,
                           g->manual, 0, &g->sub);
  if (rv != 0) {
    gm_end(g, rv, g->a->errmsg);
  }
}

/* The state is in: tell the application, then follow the stream from
 * just after the state or the view, whichever is older. */
static void gm_go_live(struct synod_async_group *g, const void *state,
                       size_t state_len) {
  struct synod_group_ready r = {.view = g->view,
                                .join_offset = g->join_offset,
                                .index = g->join_index,
                                .source = g->source,
                                .state = (void *)state,
                                .state_len = state_len,
                                .state_offset = g->state_offset};
  uint64_t from =
      g->state_offset < g->view.offset ? g->state_offset : g->view.offset;
  g->phase = GM_LIVE;
  g->busy++;
  g->cbs.ready_cb(g->cbs.arg, 0, &r);
  if (g->phase == GM_LIVE && !g->gone && from + 1 > g->view.offset) {
    gm_report_view(g); /* nothing comes before it */
  }
  g->busy--;
  if (g->phase == GM_LIVE && !g->gone) {
    gm_subscribe(g, from + 1);
  }
  gm_release(g);
}

/* ------------------------------------------------------ state transfer */

static void gm_read_cb(void *arg, int status,
                       const struct synod_group_checkpoint *ck) {
  struct synod_async_group *g = arg;
  char why[SYNOD_ERRMSG_BYTES];
  g->pending--;
  if (g->gone || g->phase != GM_READING) {
    gm_release(g);
    return;
  }
  if (status != 0) {
    errmsg_printf(why, "group '%s': reading the state of member '%s': %s",
                  g->group, g->member, g->a->errmsg);
    gm_end(g, status, why);
    return;
  }
  g->state_offset = ck->info.offset;
  gm_go_live(g, ck->data, ck->len);
}

static void gm_start_read(struct synod_async_group *g) {
  int rv;
  gm_unsubscribe(g); /* a waiting one: the live one starts after the state */
  g->phase = GM_READING;
  /* The group it joined, and no later one of the name. */
  rv = group_ckpt_read_start(g->a, g->group, g->join_index, gm_read_cb, g);
  if (rv != 0) {
    gm_end(g, rv, g->a->errmsg);
    return;
  }
  g->pending++;
}

static void gm_join_done(struct op *op, int status, const Synod__Response *resp,
                         const char *errmsg) {
  struct synod_async_group *g = op->arg;
  union synod_result r;
  char why[SYNOD_ERRMSG_BYTES];
  g->pending--;
  if (status == 0) {
    status = result_from_response(OP_GROUP_JOIN, resp, &r, why);
    errmsg = why;
  }
  if (g->gone) {
    if (status == 0) { /* closed meanwhile: do not stay in the view */
      synod_async_group_leave(g->a, g->group, g->member, NULL, NULL);
      result_free(OP_GROUP_JOIN, &r);
    }
    gm_release(g);
    return;
  }
  if (status != 0) {
    errmsg_printf(why, "group '%s': join of member '%s': %s", g->group,
                  g->member, errmsg);
    gm_end(g, status, why);
    return;
  }
  struct synod_group_joined *j = &r.group_joined;
  g->session_id = op->session_id;
  g->view = j->view;
  memset(&j->view, 0, sizeof j->view);
  g->join_offset = g->view.offset;
  g->join_index = j->index;
  g->source = j->state.source;
  g->request_offset = j->state.request_offset;
  result_free(OP_GROUP_JOIN, &r);
  switch (g->source) {
  case SYNOD_GROUP_STATE_CHECKPOINT:
    gm_start_read(g);
    break;
  case SYNOD_GROUP_STATE_REQUESTED:
    g->phase = GM_WAITING;
    g->state_offset = UINT64_MAX;
    g->state_deadline_ms = engine_now(g->a) + g->state_timeout_ms;
    gm_subscribe(g, g->join_offset + 1);
    break;
  default: /* NONE, EMPTY: from the join on */
    g->state_offset = g->join_offset;
    gm_go_live(g, "", 0);
    break;
  }
}

/* ---------------------------------------------------- the engine's hooks */

void groups_on_session_lost(struct synod_async *a, uint64_t session_id,
                            const char *why) {
  char msg[SYNOD_ERRMSG_BYTES];
  bool again = true;
  while (again) { /* callbacks may close any handle: rescan */
    again = false;
    for (struct synod_async_group *g = a->groups; g != NULL; g = g->next) {
      if (g->session_id == session_id && g->phase != GM_ENDED) {
        errmsg_printf(msg,
                      "member '%s' of group '%s' was removed with session "
                      "%" PRIu64 ": %s",
                      g->member, g->group, session_id, why);
        gm_end(g, SYNOD_ESESSION, msg);
        again = true;
        break;
      }
    }
  }
}

void groups_sweep(struct synod_async *a, uint64_t now) {
  char msg[SYNOD_ERRMSG_BYTES];
  bool again = true;
  while (again) {
    again = false;
    for (struct synod_async_group *g = a->groups; g != NULL; g = g->next) {
      if (g->phase != GM_LIVE && g->phase != GM_ENDED &&
          g->ready_deadline_ms != 0 && now >= g->ready_deadline_ms) {
        errmsg_printf(msg,
                      "group '%s': member '%s' not joined with its state "
                      "in time",
                      g->group, g->member);
        gm_end(g, SYNOD_ETIMEDOUT, msg);
        again = true;
        break;
      }
      if (g->phase == GM_WAITING && now >= g->state_deadline_ms) {
        errmsg_printf(msg,
                      "group '%s': no checkpoint for member '%s' from the "
                      "coordinator within %u ms (state request at offset "
                      "%" PRIu64 ")",
                      g->group, g->member, g->state_timeout_ms,
                      g->request_offset);
        gm_end(g, SYNOD_ETIMEDOUT, msg);
        again = true;
        break;
      }
    }
  }
}

void groups_shutdown(struct synod_async *a) {
  struct synod_async_group *g;
  while ((g = a->groups) != NULL) {
    g->busy++; /* the callback may close g: it is freed below, not there */
    gm_end(g, SYNOD_ESHUTDOWN, "the client is closing");
    g->busy--;
    if (g->gone) {
      gm_release(g);
    } else {
      synod_async_group_member_close(a, g);
    }
  }
}

void group_member_consumed(struct synod_async_group *g, uint32_t n) {
  /* A subscription started again (after a REQUESTED state) holds none of
   * what the old one delivered: what was taken from before counts for
   * nothing, hence the bound. */
  if (g->sub != NULL && g->manual) {
    sub_consumed(g->a, g->sub, n <= g->sub->held ? n : g->sub->held);
  }
}

/* ---------------------------------------------------------- async API */

static int gm_check(struct synod_async *a,
                    const struct synod_group_join_options *o,
                    const struct synod_group_callbacks *cbs) {
  if (a->closing) {
    errmsg_printf(a->errmsg, "the client is closing");
    return SYNOD_ESHUTDOWN;
  }
  if (o == NULL || cbs == NULL || cbs->ready_cb == NULL) {
    errmsg_printf(a->errmsg, "group join: no options or no ready callback");
    return SYNOD_EINVAL;
  }
  if (o->window > SYNOD_SUBSCRIBE_WINDOW_MAX) {
    errmsg_printf(a->errmsg, "group join: a window of %u; at most %d",
                  o->window, SYNOD_SUBSCRIBE_WINDOW_MAX);
    return SYNOD_EINVAL;
  }
  return 0;
}

int group_member_start(struct synod_async *a,
                       const struct synod_group_join_options *o,
                       const struct synod_group_callbacks *cbs, bool manual,
                       uint32_t ready_timeout_ms,
                       struct synod_async_group **out) {
  struct group_args ga;
  struct op_args args = {.group = &ga};
  struct synod_async_group *g;
  struct op *op;
  int rv = gm_check(a, o, cbs);
  if (rv != 0) {
    return rv;
  }
  ga = (struct group_args){.group = o->group,
                           .member = o->member,
                           .data = o->data,
                           .data_len = o->data_len,
                           .want_state = o->want_state};
  if ((rv = op_build(OP_GROUP_JOIN, &args, &op, a->errmsg)) != 0) {
    return rv;
  }
  g = calloc(1, sizeof *g);
  if (g == NULL || (g->group = strdup(o->group)) == NULL ||
      (g->member = strdup(o->member)) == NULL) {
    if (g != NULL) {
      free(g->group);
    }
    free(g);
    op_free(op);
    return SYNOD_ENOMEM;
  }
  g->a = a;
  g->cbs = *cbs;
  g->manual = manual;
  g->window = o->window;
  g->want_state = o->want_state;
  g->state_timeout_ms =
      o->state_timeout_ms ? o->state_timeout_ms : a->opts.request_timeout_ms;
  g->ready_deadline_ms =
      ready_timeout_ms ? engine_now(a) + ready_timeout_ms : 0;
  op->done = gm_join_done;
  op->arg = g;
  if ((rv = engine_submit(a, op, 0)) != 0) {
    op_free(op);
    free(g->group);
    free(g->member);
    free(g);
    return rv;
  }
  g->pending++;
  g->next = a->groups;
  a->groups = g;
  *out = g;
  return 0;
}

int synod_async_group_member_join(struct synod_async *a,
                                  const struct synod_group_join_options *o,
                                  const struct synod_group_callbacks *cbs,
                                  struct synod_async_group **out) {
  if (out == NULL) {
    errmsg_printf(a->errmsg, "group join: no handle");
    return SYNOD_EINVAL;
  }
  return group_member_start(a, o, cbs, false, 0, out);
}

/* SYNOD_ESESSION (or what ended g) once g ended; 0 while it goes on. */
static int gm_usable(struct synod_async_group *g) {
  if (g->phase == GM_ENDED) {
    snprintf(g->a->errmsg, sizeof g->a->errmsg, "%s", g->end_why);
    return g->end_rv != 0 ? g->end_rv : SYNOD_ESESSION;
  }
  return 0;
}

int synod_async_group_member_send(struct synod_async *a,
                                  struct synod_async_group *g, const char *to,
                                  const void *data, size_t len,
                                  synod_group_sent_cb cb, void *arg) {
  int rv = gm_usable(g);
  return rv != 0 ? rv
                 : synod_async_group_send(a, g->group, to, g->member, data, len,
                                          cb, arg);
}

int synod_async_group_member_checkpoint(struct synod_async *a,
                                        struct synod_async_group *g,
                                        uint64_t offset, const void *data,
                                        size_t len, synod_group_stored_cb cb,
                                        void *arg) {
  int rv = gm_usable(g);
  return rv != 0 ? rv
                 : synod_async_group_checkpoint_store(
                       a, g->group, g->member, offset, data, len, cb, arg);
}

int synod_async_group_member_leave(struct synod_async *a,
                                   struct synod_async_group *g,
                                   synod_group_left_cb cb, void *arg) {
  int rv = gm_usable(g);
  if (rv == 0) {
    rv = synod_async_group_leave(a, g->group, g->member, cb, arg);
  }
  if (rv == 0) {
    g->leaving = true;
  }
  return rv;
}

const struct synod_group_view *
synod_async_group_member_view(const struct synod_async_group *g) {
  return &g->view;
}

void synod_async_group_member_close(struct synod_async *a,
                                    struct synod_async_group *g) {
  if (g == NULL || g->gone) {
    return;
  }
  g->gone = true;
  gm_unlink(a, g);
  gm_unsubscribe(g);
  if (g->phase != GM_ENDED) {
    g->phase = GM_ENDED;
    g->end_rv = SYNOD_ECANCELED;
  }
  gm_release(g);
}

/* ------------------------------------------------------- blocking API
 *
 * The async handle on the client's loop thread, in manual mode: its
 * callbacks copy each event into a queue that synod_group_member_next
 * takes from on the caller's thread; what was taken is reported back in
 * batches of half the window, so the credit follows the application. */

/* One queued event: the struct and copies of what it points to. */
struct gb_event {
  struct gb_event *next;
  struct synod_group_event ev;
};

struct synod_group {
  struct synod_client *c;
  char *group, *member;
  uint32_t report_at;
  /* Loop thread only: */
  struct synod_async_group *ag;
  struct call *join_call; /* until ready */
  struct synod_group_ready *ready_out;
  /* Under mu: */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct gb_event *head, *tail;
  bool ended;
  int end_rv;
  char end_why[SYNOD_ERRMSG_BYTES];
  uint32_t taken; /* since the last report */
  /* The caller's: the event last returned, freed by the next call. */
  struct gb_event *current;
};

static void gb_event_free(struct gb_event *e) {
  if (e == NULL) {
    return;
  }
  synod_group_view_free(&e->ev.view);
  free((void *)e->ev.item.from);
  free((void *)e->ev.item.to);
  free((void *)e->ev.item.data);
  free((void *)e->ev.item.member);
  free(e->ev.item.checkpoint.member);
  free(e);
}

/* A deep copy of view into *out. 0 or SYNOD_ENOMEM. */
static int view_copy(const struct synod_group_view *v,
                     struct synod_group_view *out) {
  memset(out, 0, sizeof *out);
  out->view_id = v->view_id;
  out->offset = v->offset;
  out->members = calloc(v->count + 1, sizeof *out->members);
  if (out->members == NULL) {
    return SYNOD_ENOMEM;
  }
  for (size_t i = 0; i < v->count; i++) {
    struct synod_group_member *m = &out->members[i];
    *m = v->members[i];
    m->name = strdup(v->members[i].name);
    m->data = malloc(m->data_len + 1);
    if (m->name == NULL || m->data == NULL) {
      free(m->name);
      free(m->data);
      m->name = NULL;
      m->data = NULL;
      synod_group_view_free(out);
      return SYNOD_ENOMEM;
    }
    if (m->data_len > 0) {
      memcpy(m->data, v->members[i].data, m->data_len);
    }
    m->data[m->data_len] = '\0';
    out->count = i + 1;
  }
  return 0;
}

static void gb_queue(struct synod_group *b, struct gb_event *e) {
  e->next = NULL;
  pthread_mutex_lock(&b->mu);
  if (b->tail != NULL) {
    b->tail->next = e;
  } else {
    b->head = e;
  }
  b->tail = e;
  pthread_cond_broadcast(&b->cv);
  pthread_mutex_unlock(&b->mu);
}

static void gb_end(struct synod_group *b, int status, const char *why) {
  pthread_mutex_lock(&b->mu);
  if (!b->ended) {
    b->ended = true;
    b->end_rv = status;
    snprintf(b->end_why, sizeof b->end_why, "%s", why);
  }
  pthread_cond_broadcast(&b->cv);
  pthread_mutex_unlock(&b->mu);
}

/* It cannot be kept, and skipping it would be a gap: end here. */
static void gb_no_memory(struct synod_group *b) {
  synod_async_group_member_close(b->ag->a, b->ag);
  b->ag = NULL;
  gb_end(b, SYNOD_ENOMEM, "group member: out of memory for an event");
}

static void gb_view_cb(void *arg, const struct synod_group_view *view) {
  struct synod_group *b = arg;
  struct gb_event *e = calloc(1, sizeof *e);
  if (e == NULL || view_copy(view, &e->ev.view) != 0) {
    free(e);
    gb_no_memory(b);
    return;
  }
  e->ev.type = SYNOD_GROUP_EVENT_VIEW;
  gb_queue(b, e);
}

static char *text_copy(const void *p, size_t n, bool *failed) {
  char *out = malloc(n + 1);
  if (out == NULL) {
    *failed = true;
    return NULL;
  }
  if (n > 0) {
    memcpy(out, p, n);
  }
  out[n] = '\0';
  return out;
}

static void gb_item(struct synod_group *b, const struct synod_group_item *it,
                    enum synod_group_event_type type) {
  struct gb_event *e = calloc(1, sizeof *e);
  bool failed = e == NULL;
  if (!failed) {
    struct synod_group_item *x = &e->ev.item;
    e->ev.type = type;
    *x = *it;
    x->joined = NULL;
    x->joined_n = 0;
    x->left = NULL;
    x->left_n = 0;
    x->from = text_copy(it->from, strlen(it->from), &failed);
    x->to = text_copy(it->to, strlen(it->to), &failed);
    x->member = text_copy(it->member, strlen(it->member), &failed);
    x->data = text_copy(it->data, it->len, &failed);
    x->checkpoint.member =
        it->checkpoint.member != NULL
            ? text_copy(it->checkpoint.member, strlen(it->checkpoint.member),
                        &failed)
            : NULL;
  }
  if (failed) {
    gb_event_free(e);
    gb_no_memory(b);
    return;
  }
  gb_queue(b, e);
}

static void gb_message_cb(void *arg, const struct synod_group_item *it) {
  gb_item(arg, it, SYNOD_GROUP_EVENT_MESSAGE);
}

static void gb_state_request_cb(void *arg, const struct synod_group_item *it) {
  gb_item(arg, it, SYNOD_GROUP_EVENT_STATE_REQUEST);
}

static void gb_checkpoint_cb(void *arg, const struct synod_group_item *it) {
  gb_item(arg, it, SYNOD_GROUP_EVENT_CHECKPOINT);
}

static void gb_removed_cb(void *arg, int status, const char *errmsg) {
  gb_end(arg, status, errmsg);
}

/* Copies the ready result for the caller and finishes the join. */
static void gb_ready_cb(void *arg, int status,
                        const struct synod_group_ready *r) {
  struct synod_group *b = arg;
  struct call *call = b->join_call;
  struct synod_group_ready *out = b->ready_out;
  const char *why = status != 0 ? b->ag->a->errmsg : "";
  char msg[SYNOD_ERRMSG_BYTES];
  b->join_call = NULL;
  if (status != 0) {
    snprintf(msg, sizeof msg, "%s", b->ag->end_why);
    why = msg;
  }
  if (status == 0 && out != NULL) {
    *out = *r;
    out->state = malloc(r->state_len + 1);
    if (out->state == NULL || view_copy(&r->view, &out->view) != 0) {
      free(out->state);
      memset(out, 0, sizeof *out);
      status = SYNOD_ENOMEM;
      why = "group member join: out of memory for the state";
    } else {
      if (r->state_len > 0) {
        memcpy(out->state, r->state, r->state_len);
      }
      ((char *)out->state)[r->state_len] = '\0';
    }
  }
  if (call != NULL) {
    client_run_done(call, status, why);
  }
}

struct gb_join {
  struct synod_group *b;
  const struct synod_group_join_options *o;
  uint32_t timeout_ms;
};

static void gb_join_fn(struct synod_async *a, struct call *call, void *arg) {
  struct gb_join *j = arg;
  struct synod_group *b = j->b;
  struct synod_group_callbacks cbs = {.ready_cb = gb_ready_cb,
                                      .view_cb = gb_view_cb,
                                      .message_cb = gb_message_cb,
                                      .state_request_cb = gb_state_request_cb,
                                      .checkpoint_cb = gb_checkpoint_cb,
                                      .removed_cb = gb_removed_cb,
                                      .arg = b};
  int rv;
  b->join_call = call;
  rv = group_member_start(a, j->o, &cbs, true, j->timeout_ms, &b->ag);
  if (rv != 0) {
    b->join_call = NULL;
    b->ag = NULL;
    client_run_done(call, rv, a->errmsg);
  }
}

static void gb_close_fn(struct synod_async *a, struct call *call, void *arg) {
  struct synod_group *b = arg;
  if (b->ag != NULL) {
    synod_async_group_member_close(a, b->ag);
    b->ag = NULL;
  }
  client_run_done(call, 0, "");
}

static void gb_free(struct synod_group *b) {
  struct gb_event *e;
  if (b == NULL) {
    return;
  }
  while ((e = b->head) != NULL) {
    b->head = e->next;
    gb_event_free(e);
  }
  gb_event_free(b->current);
  pthread_mutex_destroy(&b->mu);
  pthread_cond_destroy(&b->cv);
  free(b->group);
  free(b->member);
  free(b);
}

void synod_group_ready_free(struct synod_group_ready *r) {
  if (r == NULL) {
    return;
  }
  synod_group_view_free(&r->view);
  free(r->state);
  memset(r, 0, sizeof *r);
}

int synod_group_member_join(struct synod_client *c,
                            const struct synod_group_join_options *o,
                            uint32_t timeout_ms, struct synod_group **out,
                            struct synod_group_ready *ready) {
  struct synod_group_ready r = {0};
  struct synod_group *b;
  pthread_condattr_t ca;
  int rv;
  if (o == NULL || out == NULL || o->group == NULL || o->member == NULL) {
    client_set_errmsg(SYNOD_EINVAL, "group member join: no options, group, "
                                    "member or handle");
    return SYNOD_EINVAL;
  }
  if (timeout_ms == 0) {
    timeout_ms =
        client_request_timeout_ms(c) +
        (o->want_state ? (o->state_timeout_ms ? o->state_timeout_ms
                                              : client_request_timeout_ms(c))
                       : 0);
  }
  b = calloc(1, sizeof *b);
  if (b == NULL || (b->group = strdup(o->group)) == NULL ||
      (b->member = strdup(o->member)) == NULL) {
    if (b != NULL) {
      free(b->group);
    }
    free(b);
    client_set_errmsg(SYNOD_ENOMEM, NULL);
    return SYNOD_ENOMEM;
  }
  pthread_mutex_init(&b->mu, NULL);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&b->cv, &ca);
  pthread_condattr_destroy(&ca);
  b->c = c;
  b->report_at = (o->window ? o->window : SYNOD_SUBSCRIBE_WINDOW_DEFAULT) / 2;
  b->report_at = b->report_at > 0 ? b->report_at : 1;
  b->ready_out = &r;
  struct gb_join j = {.b = b, .o = o, .timeout_ms = timeout_ms};
  rv = client_run(c, gb_join_fn, &j, timeout_ms);
  if (rv != 0) {
    char why[SYNOD_ERRMSG_BYTES];
    snprintf(why, sizeof why, "%s", synod_client_errmsg());
    /* The handle (if any) ended and left the group; let it go. */
    if (b->ag != NULL) {
      client_run(c, gb_close_fn, b, 0);
    }
    gb_free(b);
    client_set_errmsg(rv, why);
    return rv;
  }
  b->ready_out = NULL;
  if (ready != NULL) {
    *ready = r;
  } else {
    synod_group_ready_free(&r);
  }
  *out = b;
  return 0;
}

static void gb_report_fn(struct synod_async *a, struct call *call, void *arg) {
  struct synod_group *b = arg;
  uint32_t n;
  (void)a;
  pthread_mutex_lock(&b->mu);
  n = b->taken;
  b->taken = 0;
  pthread_mutex_unlock(&b->mu);
  if (b->ag != NULL) {
    group_member_consumed(b->ag, n);
  }
  client_run_done(call, 0, "");
}

static void deadline_after_ms(struct timespec *ts, uint64_t ms) {
  clock_gettime(CLOCK_MONOTONIC, ts);
  ts->tv_sec += (time_t)(ms / 1000);
  ts->tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

int synod_group_member_next(struct synod_group *b, uint32_t timeout_ms,
                            struct synod_group_event *ev) {
  struct timespec deadline;
  char why[SYNOD_ERRMSG_BYTES] = "";
  bool report = false;
  int rv = 0;
  gb_event_free(b->current); /* the caller's promise: done with it */
  b->current = NULL;
  if (timeout_ms != SYNOD_WAIT_FOREVER) {
    deadline_after_ms(&deadline, timeout_ms);
  }
  pthread_mutex_lock(&b->mu);
  while (b->head == NULL && !b->ended && timeout_ms != 0 && rv != ETIMEDOUT) {
    rv = timeout_ms == SYNOD_WAIT_FOREVER
             ? pthread_cond_wait(&b->cv, &b->mu)
             : pthread_cond_timedwait(&b->cv, &b->mu, &deadline);
  }
  if (b->head != NULL) {
    struct gb_event *e = b->head;
    b->head = e->next;
    if (b->head == NULL) {
      b->tail = NULL;
    }
    b->current = e;
    *ev = e->ev;
    report = ++b->taken >= b->report_at && !b->ended;
    rv = 0;
  } else if (b->ended) {
    rv = b->end_rv;
    snprintf(why, sizeof why, "%s", b->end_why);
  } else {
    rv = SYNOD_ETIMEDOUT;
    snprintf(why, sizeof why, "group '%s' member '%s': no event within %u ms",
             b->group, b->member, timeout_ms);
  }
  pthread_mutex_unlock(&b->mu);
  if (report) {
    client_run(b->c, gb_report_fn, b, 0);
  }
  client_set_errmsg(rv, why);
  return rv;
}

/* 0 while the membership goes on, else the status that ended it. */
static int gb_usable(struct synod_group *b) {
  int rv = 0;
  pthread_mutex_lock(&b->mu);
  if (b->ended) {
    rv = b->end_rv;
    client_set_errmsg(rv, b->end_why);
  }
  pthread_mutex_unlock(&b->mu);
  return rv;
}

int synod_group_member_send(struct synod_group *b, const char *to,
                            const void *data, size_t len, uint32_t timeout_ms,
                            struct synod_group_sent *out) {
  int rv = gb_usable(b);
  return rv != 0 ? rv
                 : synod_group_send(b->c, b->group, to, b->member, data, len,
                                    timeout_ms, out);
}

int synod_group_member_checkpoint(struct synod_group *b, uint64_t offset,
                                  const void *data, size_t len,
                                  uint32_t timeout_ms,
                                  struct synod_group_stored *out) {
  int rv = gb_usable(b);
  return rv != 0
             ? rv
             : synod_group_checkpoint_store(b->c, b->group, b->member, offset,
                                            data, len, timeout_ms, out);
}

static void gb_left_cb(void *arg, int status,
                       const struct synod_group_left *l) {
  (void)l;
  client_run_done(arg, status, "");
}

static void gb_leave_fn(struct synod_async *a, struct call *call, void *arg) {
  struct synod_group *b = arg;
  int rv = b->ag != NULL
               ? synod_async_group_member_leave(a, b->ag, gb_left_cb, call)
               : SYNOD_ESESSION;
  if (rv != 0) {
    client_run_done(call, rv, a->errmsg);
  }
}

int synod_group_member_leave(struct synod_group *b, uint32_t timeout_ms) {
  int rv = gb_usable(b);
  char why[SYNOD_ERRMSG_BYTES];
  if (rv == 0) {
    rv = client_run(b->c, gb_leave_fn, b, timeout_ms);
  }
  if (rv == 0) {
    errmsg_printf(why, "member '%s' left group '%s'", b->member, b->group);
    gb_end(b, SYNOD_ECANCELED, why);
  }
  return rv;
}

const char *synod_group_member_name(const struct synod_group *b) {
  return b->member;
}

void synod_group_member_close(struct synod_group *b) {
  if (b == NULL) {
    return;
  }
  if (client_run(b->c, gb_close_fn, b, 0) == 0) {
    gb_free(b);
  }
  /* Else the client is being freed or its thread is wedged: leaking b is
   * better than freeing what the loop thread may touch. */
}
