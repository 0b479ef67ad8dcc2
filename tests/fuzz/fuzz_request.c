/* Fuzz harness: a client's request frame, from decoding to the point where
 * it would be proposed, and a step beyond: the entry it becomes applied to
 * a live state machine.
 *
 * It follows the path of server/net/client.c (conn_frame_cb: decode, the
 * Hello check, a body this server knows) and server/node/requests.c
 * (requests_on_request: answered at once, served as a read from the state
 * machine, collected as a keepalive into a Tick, or proposed as a Command
 * built by fsm_command_encode_request), without a node: those files need
 * a libuv loop, a core and a store to run, and what they do to the bytes
 * is this.
 *
 * Input: a byte of flags (bit 0: the connection has said Hello; bit 1: this
 * replica leads), then items of a 16-bit length and a Request's bytes, each
 * one frame on one connection, in order.
 * Invariants: a request that decodes is refused, answered or routed;
 * a read never changes the state and its answer decodes; a non-read is
 * refused by fsm_query; the proposed Command decodes back to the request
 * (id 0, stale false), or, for a request with unknown fields protobuf-c
 * cannot read back (fuzz_pb_has_unknown), is answered SYNOD_EMALFORMED
 * (a field numbered 0 is refused at the port: frame_pb_unrepackable);
 * applying it returns 0 and keeps the invariants of fuzz_fsm.h; at the end the
 * image round-trips. */
#include "fuzz_fsm.h"
#include "fuzz_script.h"

#include "frame.h"
#include "fsm.pb-c.h"
#include "synod.h"

struct conn {
  bool hello_done;
  bool leader;
  bool closed;
  struct fsm *f;
  uint64_t index; /* of the next entry */
  uint64_t stamp; /* the leader's clock: never behind */
};

static void apply(struct conn *c, const uint8_t *cmd, size_t len) {
  struct fsm_output out;
  int rv = fsm_apply(c->f, c->index, cmd, len, &out);
  FUZZ_CHECK(rv == 0, "apply: %d", rv);
  fuzz_fsm_check_output(&out);
  fuzz_fsm_check(c->f);
  c->index++;
}

/* requests_serve_read: fsm_query, which must not mutate. */
static void serve_read(struct conn *c, const Synod__Request *req) {
  uint64_t digest = fsm_digest(c->f);
  uint8_t *data;
  size_t len;
  int rv = fsm_query(c->f, req, &data, &len);
  FUZZ_CHECK(rv == 0, "a read refused by fsm_query: %d", rv);
  Synod__Response *r = synod__response__unpack(NULL, len, data);
  FUZZ_CHECK(r != NULL, "the answer to a read does not decode");
  synod__response__free_unpacked(r, NULL);
  free(data);
  FUZZ_CHECK(fsm_digest(c->f) == digest, "a read changed the state");
}

/* requests_propose: the Command the leader proposes, then applied. */
static void propose(struct conn *c, const Synod__Request *req) {
  Synod__Request copy = *req;
  copy.id = 0;
  copy.stale = false;
  uint8_t *dummy;
  size_t dummy_len;
  FUZZ_CHECK(fsm_query(c->f, req, &dummy, &dummy_len) == SYNOD_EINVAL,
             "fsm_query answered a write");
  if (fuzz_pb_has_unknown(&req->base)) {
    return; /* a newer client's: refused, never proposed */
  }
  c->stamp += 7;
  size_t len = fsm_command_encode_request(c->stamp, &copy, NULL, 0);
  uint8_t *buf = malloc(len ? len : 1);
  FUZZ_CHECK(fsm_command_encode_request(c->stamp, &copy, buf, len) == len,
             "encode");
  Synod__Fsm__Command *cmd = synod__fsm__command__unpack(NULL, len, buf);
  FUZZ_CHECK(cmd != NULL, "the proposed Command does not decode");
  FUZZ_CHECK(cmd->time_ms == c->stamp &&
                 cmd->body_case == SYNOD__FSM__COMMAND__BODY_REQUEST,
             "the proposed Command does not decode");
  size_t a = synod__request__get_packed_size(&copy);
  size_t b = synod__request__get_packed_size(cmd->request);
  uint8_t *pa = malloc(a + 1), *pb = malloc(b + 1);
  synod__request__pack(&copy, pa);
  synod__request__pack(cmd->request, pb);
  FUZZ_CHECK(a == b && memcmp(pa, pb, a) == 0,
             "the Command carries another request");
  free(pa);
  free(pb);
  synod__fsm__command__free_unpacked(cmd, NULL);
  apply(c, buf, len);
  free(buf);
}

/* requests_keepalive and requests_tick: one Tick carrying the session. */
static void keepalive(struct conn *c, const Synod__Request *req) {
  if (req->session_id == 0) {
    return; /* answered SYNOD_EINVAL */
  }
  c->stamp += 7;
  uint8_t buf[64];
  size_t len =
      fsm_command_encode_tick(c->stamp, &req->session_id, 1, buf, sizeof buf);
  FUZZ_CHECK(len <= sizeof buf, "tick of %zu bytes", len);
  apply(c, buf, len);
}

/* requests_on_request, after client.c let the request through. */
static void on_request(struct conn *c, const Synod__Request *req) {
  switch (req->body_case) {
  case SYNOD__REQUEST__BODY_HELLO:
  case SYNOD__REQUEST__BODY_STATUS:
    return; /* answered from the node's own fields */
  default:
    break;
  }
  if (req->body_case == SYNOD__REQUEST__BODY_ELECTION_OBSERVE) {
    FUZZ_CHECK(req->election_observe->name != NULL, "observe without name");
  }
  if (fsm_request_is_read(req) && req->stale) {
    serve_read(c, req);
    return;
  }
  if (!c->leader) {
    return; /* redirected */
  }
  if (req->body_case == SYNOD__REQUEST__BODY_SESSION_KEEPALIVE) {
    keepalive(c, req);
  } else if (req->body_case == SYNOD__REQUEST__BODY_MEMBER_REMOVE) {
    /* requests_member_remove compares the name with the members'. */
    FUZZ_CHECK(req->member_remove->name != NULL, "member remove, no name");
  } else if (fsm_request_is_read(req)) {
    serve_read(c, req); /* after its ReadIndex round */
  } else {
    propose(c, req);
  }
}

/* conn_frame_cb: decode, Hello first, a known body. */
static void on_frame(struct conn *c, const uint8_t *p, size_t n) {
  Synod__Request *req = synod__request__unpack(NULL, n, p);
  if (req == NULL || frame_pb_unrepackable(&req->base)) {
    synod__request__free_unpacked(req, NULL);
    c->closed = true; /* refused: SYNOD_EMALFORMED */
    return;
  }
  bool ok = true;
  if (!c->hello_done) {
    ok = req->body_case == SYNOD__REQUEST__BODY_HELLO &&
         req->hello->protocol_version ==
             SYNOD__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
    c->hello_done = ok;
  }
  if (ok && req->body_case == SYNOD__REQUEST__BODY__NOT_SET) {
    ok = false;
  }
  if (ok) {
    on_request(c, req);
  } else {
    c->closed = true;
  }
  synod__request__free_unpacked(req, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct fuzz_in in = {data, size};
  uint8_t flags = fuzz_u8(&in);
  struct conn c = {.hello_done = flags & 1, .leader = flags & 2};
  c.f = fuzz_script_fsm(NULL);
  c.index = fsm_applied_index(c.f) + 1;
  c.stamp = fsm_time_ms(c.f);
  while (in.n > 0 && !c.closed) {
    size_t len;
    const uint8_t *p = fuzz_item(&in, &len);
    on_frame(&c, p, len);
  }
  fuzz_fsm_check_image(c.f, NULL);
  fsm_free(c.f);
  return 0;
}
