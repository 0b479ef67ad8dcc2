/* Fuzz harness: snapshot images (fsm_snapshot_decode), as a replica gets
 * them from a leader's InstallSnapshot or from its own disk.
 *
 * Input: a byte of options (bit 0: small limits), then the image.
 * Invariants: the image is either refused with SYNOD_ECORRUPT and the
 * live state machine (which applied tests/fuzz/fuzz_script.h) unchanged,
 * byte for byte, or accepted, and then the restored state holds every
 * invariant, re-encodes to an image that round-trips, and takes more
 * entries (a keepalive of every session, then a Tick 2^32 ms later
 * that expires them all) without breaking one. Validation must be
 * complete: a state that passes it is one apply can work on. */
#include "fuzz_fsm.h"
#include "fuzz_script.h"

#include "synod.h"

/* Applies a Command; the restored state must take it. */
static void apply_more(struct fsm *f, const uint8_t *cmd, size_t len) {
  uint64_t index = fsm_applied_index(f);
  if (index == UINT64_MAX) {
    return; /* no index left to apply at */
  }
  struct fsm_output out;
  int rv = fsm_apply(f, index + 1, cmd, len, &out);
  if (rv == SYNOD_EPROTO) {
    return; /* a newer build's entry: refused, nothing changed */
  }
  FUZZ_CHECK(rv == 0, "apply after restore: %d", rv);
  fuzz_fsm_check_output(&out);
  fuzz_fsm_check(f);
}

static void exercise(struct fsm *f) {
  uint64_t ids[8];
  size_t n = 0;
  /* Keep the first session alive, then jump past every TTL. */
  for (struct otree_node *x = otree_first(&f->sessions); x && n < 8;
       x = otree_next(x)) {
    ids[n++] = FSM_CONTAINER(x, struct fsm_session, by_id)->id;
  }
  uint64_t t = fsm_time_ms(f);
  uint8_t buf[256];
  size_t len = fsm_command_encode_tick(t, ids, n, buf, sizeof buf);
  apply_more(f, buf, len);
  /* A TTL is a u32 and a keepalive is never ahead of time: past this,
   * every session has expired. */
  const uint64_t past = (1ull << 32) + 2;
  uint64_t later = t > UINT64_MAX - past ? UINT64_MAX : t + past;
  len = fsm_command_encode_tick(later, NULL, 0, buf, sizeof buf);
  apply_more(f, buf, len);
  FUZZ_CHECK(f->sessions.count == 0 || later == UINT64_MAX,
             "%zu sessions outlived their TTL", f->sessions.count);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct fuzz_in in = {data, size};
  struct fsm_options small, *opts = NULL;
  if (fuzz_u8(&in) & 1) {
    fuzz_fsm_small_options(&small);
    opts = &small;
  }
  struct fsm *f = fuzz_script_fsm(opts);
  uint8_t *before;
  size_t before_len;
  FUZZ_CHECK(fsm_snapshot_encode(f, &before, &before_len) == 0, "encode");

  int rv = fsm_snapshot_decode(f, in.p, in.n);
  if (rv != 0) {
    FUZZ_CHECK(rv == SYNOD_ECORRUPT, "refused with %d", rv);
    uint8_t *after;
    size_t after_len;
    FUZZ_CHECK(fsm_snapshot_encode(f, &after, &after_len) == 0, "encode");
    FUZZ_CHECK(after_len == before_len && !memcmp(before, after, after_len),
               "a refused image changed the state");
    free(after);
    fuzz_fsm_check(f);
  } else {
    fuzz_fsm_check(f);
    fuzz_fsm_check_image(f, opts);
    exercise(f);
    fuzz_fsm_check_image(f, opts);
  }
  free(before);
  fsm_free(f);
  return 0;
}
