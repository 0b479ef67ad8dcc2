/* Key watches over HTTP (README.md "HTTP keys and sessions"): GET
 * /v1/keys/KEY?watch and /v1/keys/PREFIX?prefix&watch as Server-Sent
 * Events, served by the replica the client reached through the one
 * subscription machinery (node_key_watch with this file's sink; the
 * stream state, start, end and bound on a slow reader are api_stream.c's,
 * shared with channel subscriptions).
 *
 * Event ids. A watch's position is (revision, event number within it),
 * as in the binary protocol (KeyWatch in synod.proto): one revision can
 * hold many events (a transaction; a session's end deletes all of its
 * keys at one revision), and a frame, or the client's connection, may end
 * among them. So an event's id is "R.E", event E (from 1, counting events
 * the watch does not match) of revision R, and "R" alone means all of
 * revision R. Last-Event-ID "R.E" resumes with event E + 1 of R, "R" with
 * revision R + 1: neither repeats nor skips, on any replica
 * (sse_position, sse_position_parse).
 *
 * Progress. A watch skips the events it does not match, so its position
 * can move far past its last event; the machinery then reports where it
 * is (at most about once a second). That goes out as an event of type
 * `progress` with an `id:` and no `data:` line, which a browser's
 * EventSource does not dispatch but remembers as its last event id (a
 * comment would not move it), so a reconnect resumes there and not below
 * the retained history. The stream also opens with one, the position it
 * starts after. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "api_keys_int.h"
#include "err.h"
#include "sse.h"
#include "synod.h"

/* A growing buffer of SSE text. */
struct watch_buf {
  char *p;
  size_t len;
  size_t cap;
};

/* Appends an event (see sse_event_id); false when out of memory. */
static bool watch_buf_event(struct watch_buf *b, const char *event,
                            const char *id, const char *data) {
  size_t need = sse_event_id(NULL, 0, event, id, data);
  if (b->len + need + 1 > b->cap) {
    size_t cap = (b->len + need + 1) * 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
      return false;
    }
    b->p = p;
    b->cap = cap;
  }
  sse_event_id(b->p + b->len, b->cap - b->len, event, id, data);
  b->len += need;
  return true;
}

/* An event's data: {"key" (and "key_encoding"), then for a put "value"
 * (and "encoding"), "create_revision", "mod_revision", "version",
 * "session"; "revision"; "prev" (the key before) when asked for}. */
static json_t *watch_event_json(const Synod__KeyWatchEvent *ev) {
  bool put = ev->type == SYNOD__KEY_WATCH_EVENT__TYPE__PUT;
  json_t *j = key_kv_json(ev->kv, put);
  if (!json_is_object(j)) {
    json_decref(j);
    return NULL;
  }
  if (!put) { /* a deleted key has no revisions left */
    json_object_del(j, "create_revision");
    json_object_del(j, "mod_revision");
    json_object_del(j, "version");
    json_object_del(j, "session");
  }
  json_object_set_new(j, "revision", json_integer((json_int_t)ev->revision));
  if (ev->prev_kv != NULL) {
    json_object_set_new(j, "prev", key_kv_json(ev->prev_kv, true));
  }
  return j;
}

/* Appends the progress event of (rev, event) and makes it st's id. */
static bool watch_progress(struct api_stream *st, struct watch_buf *b,
                           uint64_t rev, uint32_t event) {
  char id[SSE_POSITION_MAX];
  sse_position(id, rev, event);
  st->id_rev = rev;
  st->id_event = event;
  return watch_buf_event(b, "progress", id, NULL);
}

static void watch_started(void *arg, int err, const char *msg,
                          uint64_t first_available,
                          const Synod__KeyWatchReply *r) {
  struct api_stream *st = arg;
  if (!api_stream_started(st, err, msg, first_available)) {
    return;
  }
  char text[200];
  snprintf(text, sizeof text,
           "watch of \"%.64s\" from revision %" PRIu64 " after event %" PRIu32
           " (history %" PRIu64 "..%" PRIu64 " here)",
           st->name, r->revision, r->after_event, r->first_revision,
           r->last_revision);
  api_stream_comment(st, text);
  struct watch_buf b = {0};
  if (r->after_event != 0 ? watch_progress(st, &b, r->revision, r->after_event)
                          : watch_progress(st, &b, r->revision - 1, 0)) {
    httpd_stream_write(st->api->httpd, st->request_id, b.p, b.len);
  }
  free(b.p);
}

static int watch_deliver(void *arg, Synod__KeyWatchEvent *const *evs, size_t n,
                         size_t bytes, uint64_t progress_rev,
                         uint32_t progress_event) {
  struct api_stream *st = arg;
  struct watch_buf b = {0};
  (void)bytes;
  for (size_t i = 0; i < n; i++) {
    json_t *j = watch_event_json(evs[i]);
    char *data = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    char id[SSE_POSITION_MAX];
    uint64_t rev = evs[i]->revision;
    /* The id is where a resume starts after it: "R" (all of revision R)
     * once the watch is known to have passed the rest of R (the next
     * event is of a later revision, or the frame's progress covers R),
     * so that a reconnect does not ask for R again, which one large
     * revision after it may have evicted; else "R.E". */
    bool whole = i + 1 < n ? evs[i + 1]->revision > rev
                           : progress_rev > rev ||
                                 (progress_rev == rev && progress_event == 0);
    uint32_t event = whole ? 0 : evs[i]->event;
    json_decref(j);
    sse_position(id, rev, event);
    bool ok = data != NULL &&
              watch_buf_event(&b,
                              evs[i]->type == SYNOD__KEY_WATCH_EVENT__TYPE__PUT
                                  ? "put"
                                  : "delete",
                              id, data);
    free(data);
    if (!ok) {
      free(b.p);
      return SYNOD_ENOMEM; /* ends the watch: a resume sees no gap */
    }
    st->id_rev = rev;
    st->id_event = event;
  }
  /* Past the last id (as libsynod moves a watch's position): a later
   * revision, or more of the last id's. */
  bool past = progress_rev > st->id_rev ||
              (progress_rev == st->id_rev && st->id_event != 0 &&
               (progress_event == 0 || progress_event > st->id_event));
  if (past && !watch_progress(st, &b, progress_rev, progress_event)) {
    free(b.p);
    return SYNOD_ENOMEM;
  }
  int rv = b.len > 0
               ? httpd_stream_write(st->api->httpd, st->request_id, b.p, b.len)
               : 0;
  free(b.p);
  return rv;
}

static const struct node_sub_sink watch_sink = {
    .ended = api_stream_ended,
    .queued_bytes = api_stream_queued_bytes,
    .want_drain = api_stream_want_drain,
    .key_started = watch_started,
    .key_deliver = watch_deliver,
};

void api_key_watch(struct http_api *api, const struct httpd_request *req,
                   const uint8_t *key, size_t key_len, bool prefix,
                   uint64_t from, bool prev) {
  Synod__KeyWatch q = SYNOD__KEY_WATCH__INIT;
  size_t len;
  const char *last = httpd_header(req, "Last-Event-ID", &len);
  q.from_revision = from;
  if (last != NULL &&
      !sse_position_parse(last, len, &q.from_revision, &q.after_event)) {
    api_respond_code(api, req->id, SYNOD_EINVAL, 0,
                     "Last-Event-ID '%.*s' is not a watch position (R or "
                     "R.E, as the stream's ids)",
                     (int)(len < 40 ? len : 40), last);
    return;
  }
  if (api_stream_head(api, req)) {
    return;
  }
  char name[FSM_KEY_BYTES_MAX + 1];
  memcpy(name, key, key_len); /* checked: no NUL, at most the bound */
  name[key_len] = '\0';
  struct api_stream *st = api_stream_new(api, req->id, name);
  if (st == NULL) {
    return;
  }
  q.key = (ProtobufCBinaryData){key_len, (uint8_t *)key};
  q.prefix = prefix;
  q.prev_kv = prev;
  char errmsg[SYNOD_ERRMSG_MAX];
  int rv = node_key_watch(api->node, &q, &watch_sink, st, &st->handle, errmsg);
  if (rv != 0) {
    api_stream_free(st);
    api_respond_code(api, req->id, rv, 0, "%s", errmsg);
  }
}
