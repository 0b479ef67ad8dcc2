/* What fsm_apply hands back: packed Responses and Events in memory the fsm
 * owns until the next apply. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "fsm_int.h"

static void event_window_free(struct fsm_event *e) {
  if (e->window != NULL) {
    window_close(e->window);
    free(e->window);
    e->window = NULL;
  }
}

void fsm_output_reset(struct fsm *f) {
  for (size_t i = 0; i < f->events_len; i++) {
    event_window_free(&f->events[i]);
  }
  for (size_t i = 0; i < f->blocks_len; i++) {
    free(f->blocks[i]);
  }
  f->blocks_len = 0;
  f->events_len = 0;
}

void *fsm_output_alloc(struct fsm *f, size_t n) {
  if (f->blocks_len == f->blocks_cap) {
    f->blocks_cap = f->blocks_cap ? 2 * f->blocks_cap : 16;
    f->blocks = fsm_xrealloc(f->blocks, f->blocks_cap * sizeof *f->blocks);
  }
  void *p = fsm_xmalloc(n);
  f->blocks[f->blocks_len++] = p;
  return p;
}

const char *fsm_output_strdup(struct fsm *f, const char *s, size_t n) {
  char *p = fsm_output_alloc(f, n + 1);
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

uint8_t *fsm_response_pack(const Synod__Response *resp, size_t *len) {
  *len = synod__response__get_packed_size(resp);
  uint8_t *p = fsm_xmalloc(*len);
  synod__response__pack(resp, p);
  return p;
}

const uint8_t *fsm_event_pack(struct fsm *f, const Synod__Event *ev,
                              size_t *len) {
  *len = synod__event__get_packed_size(ev);
  uint8_t *p = fsm_output_alloc(f, *len);
  synod__event__pack(ev, p);
  return p;
}

struct fsm_event *fsm_event_push(struct fsm *f, enum fsm_event_type type) {
  if (f->events_len == f->events_cap) {
    f->events_cap = f->events_cap ? 2 * f->events_cap : 8;
    f->events = fsm_xrealloc(f->events, f->events_cap * sizeof *f->events);
  }
  struct fsm_event *e = &f->events[f->events_len++];
  memset(e, 0, sizeof *e);
  e->type = type;
  return e;
}

void fsm_reply_init(struct fsm_reply *r) {
  memset(r, 0, sizeof *r);
  synod__response__init(&r->resp);
  synod__error__init(&r->error);
}

void fsm_reply_finish(struct fsm_reply *r, int rv) {
  if (rv == 0) {
    return;
  }
  r->pending = 0;
  r->resp.body_case = SYNOD__RESPONSE__BODY__NOT_SET;
  r->error.code = (Synod__ErrorCode)rv;
  r->error.message = r->msg;
  r->resp.error = &r->error;
}

void fsm_event_window_keep(struct fsm_event *e, struct window *w) {
  e->window = fsm_xmalloc(sizeof *e->window);
  *e->window = *w; /* a window holds no pointer into itself */
  window_init_at(w, w->next);
}

struct window *fsm_event_window_take(struct fsm *f, const struct fsm_event *e) {
  assert(e >= f->events && e < f->events + f->events_len);
  struct fsm_event *x = &f->events[e - f->events];
  struct window *w = x->window;
  x->window = NULL;
  return w;
}
