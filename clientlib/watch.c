/* Key watches, the client's side: the start and the events as the public
 * struct. A key watch is a subscription (subscribe.c): the same
 * resumption from the last (revision, event) delivered, credits, moves
 * between replicas and ends; only the start and the frames differ. */
#include <stdlib.h>
#include <string.h>

#include "engine.h"

static int watch_check(const struct synod_key_watch_options *o, char *errmsg) {
  size_t n = o->key != NULL ? strlen(o->key) : 0;
  if (n == 0 && !o->prefix) {
    errmsg_printf(errmsg, "key watch: no key (a prefix may be empty)");
    return SYNOD_EINVAL;
  }
  if (n > SYNOD_KEY_BYTES_MAX) {
    errmsg_printf(errmsg, "key watch: a key of %zu bytes; at most %d", n,
                  SYNOD_KEY_BYTES_MAX);
    return SYNOD_EINVAL;
  }
  if (o->after_event != 0 && o->from_revision == 0) {
    errmsg_printf(errmsg,
                  "key watch: after_event %u without from_revision: it "
                  "counts events of from_revision",
                  o->after_event);
    return SYNOD_EINVAL;
  }
  if (o->window > SYNOD_SUBSCRIBE_WINDOW_MAX) {
    errmsg_printf(errmsg, "key watch: a window of %u; at most %d", o->window,
                  SYNOD_SUBSCRIBE_WINDOW_MAX);
    return SYNOD_EINVAL;
  }
  return 0;
}

int key_watch_start(struct synod_async *a,
                    const struct synod_key_watch_options *o,
                    synod_key_events_cb key_cb,
                    synod_subscription_end_cb end_cb,
                    synod_key_watch_start_cb key_start_cb, void *arg,
                    bool manual, uint32_t start_timeout_ms,
                    struct synod_async_subscription **out) {
  struct synod_async_subscription *s;
  int rv;
  if (a->closing) {
    errmsg_printf(a->errmsg, "the client is closing");
    return SYNOD_ESHUTDOWN;
  }
  if (key_cb == NULL) {
    errmsg_printf(a->errmsg, "key watch: no events callback");
    return SYNOD_EINVAL;
  }
  if ((rv = watch_check(o, a->errmsg)) != 0) {
    return rv;
  }
  s = calloc(1, sizeof *s);
  if (s == NULL || (s->channel = strdup(o->key ? o->key : "")) == NULL ||
      (s->cursor = strdup("")) == NULL) {
    if (s != NULL) {
      free(s->channel);
    }
    free(s);
    return SYNOD_ENOMEM;
  }
  s->keys = true;
  s->prefix = o->prefix;
  s->prev_kv = o->prev_kv;
  s->offset = o->from_revision;
  s->after_index_asked = o->after_event;
  s->window = o->window;
  s->key_cb = key_cb;
  s->key_start_cb = key_start_cb;
  sub_add(a, s, manual, end_cb, arg, start_timeout_ms);
  *out = s;
  return 0;
}

int synod_async_key_watch(struct synod_async *a,
                          const struct synod_key_watch_options *o,
                          synod_key_events_cb events_cb,
                          synod_subscription_end_cb end_cb,
                          synod_key_watch_start_cb start_cb, void *arg,
                          struct synod_async_subscription **out) {
  if (o == NULL || out == NULL) {
    errmsg_printf(a->errmsg, "key watch: no options or no handle");
    return SYNOD_EINVAL;
  }
  return key_watch_start(a, o, events_cb, end_cb, start_cb, arg, false, 0, out);
}

static void kv_from_pb(const Synod__KeyValue *kv, struct synod_watch_kv *out) {
  memset(out, 0, sizeof *out);
  if (kv == NULL) {
    return;
  }
  out->key = (const char *)kv->key.data;
  out->key_len = kv->key.len;
  out->value = kv->value.data;
  out->value_len = kv->value.len;
  out->create_revision = kv->create_revision;
  out->mod_revision = kv->mod_revision;
  out->version = kv->version;
  out->session_id = kv->session_id;
}

void key_event_from_pb(const Synod__KeyWatchEvent *e,
                       struct synod_key_event *out) {
  out->revision = e->revision;
  out->event = e->event;
  out->deleted = e->type == SYNOD__KEY_WATCH_EVENT__TYPE__DELETE;
  kv_from_pb(e->kv, &out->kv);
  out->has_prev = e->prev_kv != NULL;
  kv_from_pb(e->prev_kv, &out->prev);
  out->index = e->index;
  out->time_ms = e->time_ms;
}
