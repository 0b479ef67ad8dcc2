/* A Server-Sent Events reader for the HTTP API tests whose events carry
 * JSON (integration.http_keys' watches, integration.http_groups'
 * streams): a stream read with libcurl's multi interface, so that a test
 * writes while it watches, parsed into typed events. Every failure is a
 * CHECK. (integration.http_channels reads arbitrary payloads and keeps
 * its own parser.) */
#ifndef SYNOD_TEST_HTTP_SSE_H
#define SYNOD_TEST_HTTP_SSE_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster.h"
#include "http_client.h"

/* One event of a stream: its type ("put", "delete", "progress",
 * "error"; "message" when the event names none), id ("" when none) and
 * data (JSON, or NULL; owned by the stream). */
struct sse_ev {
  char type[16];
  char id[32];
  json_t *data;
};

/* An event stream and the events read from it so far. */
struct sse {
  CURLM *m;
  CURL *e;
  struct curl_slist *hs;
  struct buf raw; /* what is not parsed yet */
  struct sse_ev *evs;
  size_t n, cap; /* n <= cap */
  bool done;     /* the stream ended */
};

/* Moves the complete blocks of s->raw (each ends in a blank line) into
 * s->evs; comments are dropped, what is left of raw stays for the next
 * bytes. A data line that is not JSON, or a line of no field, is a
 * CHECK. */
void sse_parse(struct sse *s);

/* libcurl's CURLOPT_WRITEFUNCTION for the stream in arg: appends what
 * arrived and parses it. */
size_t sse_write_cb(char *p, size_t size, size_t n, void *arg);

/* Opens GET path on replica i of c as an event stream, with
 * Last-Event-ID `last` (NULL: none), and waits up to 10 s for its
 * status, which must be 200. The caller closes s with sse_close. */
void sse_open(struct sse *s, const struct cluster *c, int i, const char *path,
              const char *last);

/* How many events s holds: those of type other than progress, or all
 * of them `with_progress`. */
size_t sse_count(const struct sse *s, bool with_progress);

/* Reads the stream until it holds `want` events of type other than
 * progress (or `want` events in all, with progress), or it ends; at
 * most timeout_ms. Returns how many it holds (of that kind). */
size_t sse_wait(struct sse *s, size_t want, bool with_progress,
                uint32_t timeout_ms);

/* Closes the connection, as a client that goes away does, and frees
 * the events (their data included). */
void sse_close(struct sse *s);

#endif
