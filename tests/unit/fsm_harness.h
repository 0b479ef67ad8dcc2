/* The state machine's unit-test harness, shared by test_fsm.c and
 * test_group.c: one replica under test, driven through encoded entries
 * exactly as a replica applies them. Functions are static inline so that
 * each test file uses what it needs. */
#ifndef SYNOD_TEST_FSM_HARNESS_H
#define SYNOD_TEST_FSM_HARNESS_H

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "fsm.h"
#include "fsm.pb-c.h"
#include "synod.h"

/* One replica under test: its fsm, the next log index and cluster time,
 * and the decoded answer of the last entry. */
struct h {
  struct fsm *f;
  uint64_t index;
  uint64_t time_ms;
  struct fsm_output out;
  Synod__Response *resp; /* NULL when none or pending */
};

static inline void h_init(struct h *h, const struct fsm_options *o) {
  memset(h, 0, sizeof *h);
  h->f = fsm_new(o);
  ck_assert_ptr_nonnull(h->f);
  h->time_ms = 1000;
}

static inline void h_close(struct h *h) {
  synod__response__free_unpacked(h->resp, NULL);
  fsm_free(h->f);
}

static inline void h_apply_bytes(struct h *h, const uint8_t *data, size_t len) {
  synod__response__free_unpacked(h->resp, NULL);
  h->resp = NULL;
  ck_assert_int_eq(fsm_apply(h->f, ++h->index, data, len, &h->out), 0);
  if (h->out.has_response && !h->out.response.pending) {
    h->resp = synod__response__unpack(NULL, h->out.response.len,
                                      h->out.response.data);
    ck_assert_ptr_nonnull(h->resp);
  }
}

static inline void h_req(struct h *h, Synod__Request *req) {
  size_t n = fsm_command_encode_request(h->time_ms, req, NULL, 0);
  uint8_t *buf = malloc(n);
  ck_assert_ptr_nonnull(buf);
  ck_assert_uint_eq(fsm_command_encode_request(h->time_ms, req, buf, n), n);
  h_apply_bytes(h, buf, n);
  free(buf);
}

static inline void h_tick(struct h *h, const uint64_t *ids, size_t n) {
  uint8_t buf[4096];
  size_t len = fsm_command_encode_tick(h->time_ms, ids, n, buf, sizeof buf);
  ck_assert_uint_le(len, sizeof buf);
  h_apply_bytes(h, buf, len);
}

/* Advances cluster time and applies an empty tick. */
static inline void h_at(struct h *h, uint64_t time_ms) {
  h->time_ms = time_ms;
  h_tick(h, NULL, 0);
}

static inline int h_err(const struct h *h) {
  ck_assert_ptr_nonnull(h->resp);
  return h->resp->error ? (int)h->resp->error->code : 0;
}

static inline const char *h_msg(const struct h *h) {
  ck_assert_ptr_nonnull(h->resp);
  ck_assert_ptr_nonnull(h->resp->error);
  return h->resp->error->message;
}

#define REQ(h, sid, seq, CASE, field, msg)                                     \
  do {                                                                         \
    Synod__Request r_ = SYNOD__REQUEST__INIT;                                  \
    r_.session_id = (sid);                                                     \
    r_.sequence = (seq);                                                       \
    r_.body_case = SYNOD__REQUEST__BODY_##CASE;                                \
    r_.field = (msg);                                                          \
    h_req((h), &r_);                                                           \
  } while (0)

static inline uint64_t h_open(struct h *h, uint32_t ttl_ms) {
  Synod__Request r = SYNOD__REQUEST__INIT;
  Synod__SessionOpen o = SYNOD__SESSION_OPEN__INIT;
  o.ttl_ms = ttl_ms;
  o.client_name = "test";
  r.body_case = SYNOD__REQUEST__BODY_SESSION_OPEN;
  r.session_open = &o;
  h_req(h, &r);
  ck_assert_int_eq(h_err(h), 0);
  ck_assert_uint_eq(h->resp->session_open->session_id, h->index);
  return h->resp->session_open->session_id;
}

/* A read as fsm_query answers it, decoded (free it). */
static inline Synod__Response *h_query(struct h *h, Synod__Request *req) {
  uint8_t *data;
  size_t len;
  ck_assert_int_eq(fsm_query(h->f, req, &data, &len), 0);
  Synod__Response *r = synod__response__unpack(NULL, len, data);
  free(data);
  ck_assert_ptr_nonnull(r);
  return r;
}

/* Asserts that read answer r is error `code` with `why` in its message;
 * frees r. */
static inline void h_assert_refused(Synod__Response *r, int code,
                                    const char *why) {
  ck_assert_ptr_nonnull(r->error);
  ck_assert_int_eq(r->error->code, code);
  ck_assert_ptr_nonnull(strstr(r->error->message, why));
  synod__response__free_unpacked(r, NULL);
}

/* The index-th event of the last entry, checked for its type. */
static inline const struct fsm_event *h_event(const struct h *h, size_t i,
                                              enum fsm_event_type type) {
  ck_assert_uint_gt(h->out.events_len, i);
  ck_assert_int_eq(h->out.events[i].type, type);
  return &h->out.events[i];
}

#endif
