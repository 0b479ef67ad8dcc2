/* Keys over HTTP, the parts shared by api_keys.c (one key, lists, put
 * and delete with compares, routing) and api_txn.c (transactions). */
#ifndef SYNOD_HTTP_API_KEYS_INT_H
#define SYNOD_HTTP_API_KEYS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "api_int.h"
#include "fsm.h"

/* A write waits this long for its commit: the leader's, or the
 * forwarding follower's wait for the leader's answer. */
#define API_KEYS_WRITE_TIMEOUT_MS 5000
/* What a compare's description in a 412 message holds, at most. */
#define API_CMP_TEXT_MAX 160

enum call_kind { CALL_GET, CALL_LIST, CALL_PUT, CALL_DELETE, CALL_TXN };

/* A key request in flight, counted in api->calls_pending. */
struct key_call {
  struct http_api *api;
  uint64_t request_id;
  enum call_kind kind;
  bool raw;                        /* GET ?raw; a list's keys_only */
  bool prefix;                     /* a list or a prefix delete */
  char cmp[API_CMP_TEXT_MAX];      /* the compares, for a 412 message */
  char key[FSM_KEY_BYTES_MAX + 1]; /* for messages; NUL-terminated */
};

/* A call on `key` (checked: at most FSM_KEY_BYTES_MAX bytes, no NUL), or
 * NULL after answering 500. Free it with key_call_free once answered. */
struct key_call *key_call_new(struct http_api *api, uint64_t id,
                              enum call_kind kind, const uint8_t *key,
                              size_t key_len);
void key_call_free(struct key_call *c);

/* The Response of a node_read or node_write callback: returns it (free
 * it with synod__response__free_unpacked), or NULL after answering the
 * error it carries (or the callback's own). */
Synod__Response *key_call_response(struct key_call *c, int err,
                                   const char *errmsg, const uint8_t *resp,
                                   size_t len);

/* Answers j (freed) with "revision" set in it and the Synod-Revision
 * header, and `etag` (a header line, or NULL). */
void key_respond_rev(struct key_call *c, int status, json_t *j,
                     uint64_t revision, const char *etag);

/* {"key", "value" (a string when UTF-8, else base64 and "encoding":
 * "base64"), "create_revision", "mod_revision", "version", "session"};
 * without "value" unless with_value; JSON null for NULL. */
json_t *key_kv_json(const Synod__KeyValue *kv, bool with_value);

/* Standard base64 with padding (RFC 4648) into out (room for 3 * len / 4
 * bytes); false if s[0..len) is not exactly that. */
bool key_b64_decode(const char *s, size_t len, uint8_t *out, size_t *out_len);

/* api_txn.c: POST /v1/txn. */
void api_txn_request(struct http_api *api, const struct httpd_request *req);

#endif /* SYNOD_HTTP_API_KEYS_INT_H */
