/* The HTTP client of the HTTP API tests (integration.http_channels,
 * http_keys, http_groups): requests with libcurl's easy interface, their
 * bodies as JSON (jansson), and the fields the tests read out of it.
 * Every failure is a CHECK. */
#ifndef SYNOD_TEST_HTTP_CLIENT_H
#define SYNOD_TEST_HTTP_CLIENT_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster.h"

/* A growing byte buffer, always NUL-terminated once anything was added
 * (p is NULL before). The owner frees p. */
struct buf {
  char *p;
  size_t len; /* bytes in p, not counting the NUL */
  size_t cap; /* len < cap once p is allocated */
};

/* Appends n bytes of p to b and keeps it NUL-terminated; n may be 0 (an
 * empty string allocated). Out of memory is a CHECK. */
void buf_add(struct buf *b, const void *p, size_t n);

/* libcurl's CURLOPT_WRITEFUNCTION: appends what arrived to the struct
 * buf in arg. */
size_t buf_write_cb(char *p, size_t size, size_t n, void *arg);

/* An easy handle for one request of `method` to http://ADDRESS PATH
 * (address "host:port"), with the headers hs and, unless body is NULL,
 * the len bytes of body; a 10 s timeout. *out is reset to an empty
 * string and receives the answer's body. Borrows hs and body until the
 * handle is cleaned up; the caller cleans the handle up and frees
 * out->p. */
CURL *http_easy(const char *method, const char *address, const char *path,
                struct curl_slist *hs, const void *body, size_t len,
                struct buf *out);

/* One request (see http_easy), with `header` (NULL: none; several are
 * separated by '\n') besides "Expect:". Returns the status, 0 when there was no
 * answer (refused, reset, 10 s timeout); the body goes to *out (NUL-terminated;
 * free out->p). */
long http_do(const char *method, const char *address, const char *path,
             const char *header, const void *body, size_t len, struct buf *out);

/* The JSON in b; anything else is a CHECK that names `what`. The caller
 * owns the reference. */
json_t *json_of(const struct buf *b, const char *what);

/* The Prometheus text of GET /metrics on `address` (a failure is a
 * CHECK); the caller frees it. */
char *metrics_get(const char *address);

/* The value of `series` (a metric's name with its labels, as written) in
 * Prometheus text, or -1 if it is not there. */
double metrics_sample(const char *text, const char *series);

/* The value of `series` on replica i of c, which must have it (a CHECK). */
double metrics_of(const struct cluster *c, int i, const char *series);

/* A request to `address` (see http_do) that must answer `want`, and the
 * JSON it answered (the caller owns the reference). A failure names the
 * address. */
json_t *http_json(const char *method, const char *address, const char *path,
                  const char *header, const void *body, size_t len, long want);

/* A request to replica i of c with the string body `body` (NULL: none)
 * that must answer `want`, and the JSON it answered (the caller owns the
 * reference). A failure names the replica. */
json_t *http_req(const struct cluster *c, const char *method, int i,
                 const char *path, const char *header, const char *body,
                 long want);

/* The integer member `key` of the object j; a missing member or one of
 * another type is a CHECK. */
int64_t jint(json_t *j, const char *key);

/* The string member `key` of the object j (a CHECK as jint's). Points
 * into j; valid while j is. */
const char *jstr(json_t *j, const char *key);

/* The boolean member `key` of the object j (a CHECK as jint's). */
bool jbool(json_t *j, const char *key);

#endif
