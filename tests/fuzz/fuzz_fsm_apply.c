/* Fuzz harness: arbitrary log entries applied to a live state machine
 * (server/fsm). A committed entry is whatever the leader wrote; a bug or
 * a forged log must never crash or abort a replica, and every replica
 * must end in a state it can snapshot.
 *
 * Input: a byte of options (bit 0: small limits), then items of a 16-bit
 * length and that many bytes, each applied as the next entry. A length
 * with the top bit set is a non-NORMAL entry instead (fsm_index_advance),
 * its bytes skipped.
 * Invariants: fsm_apply returns 0 for every increasing index; time never
 * goes back; answers and events decode; the trees and gauges hold after
 * every entry; at the end the image round-trips (fuzz_fsm.h). */
#include "fuzz_fsm.h"

#include "synod.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct fuzz_in in = {data, size};
  struct fsm_options small, *opts = NULL;
  if (fuzz_u8(&in) & 1) {
    fuzz_fsm_small_options(&small);
    opts = &small;
  }
  struct fsm *f = fsm_new(opts);
  FUZZ_CHECK(f != NULL, "fsm_new");
  uint64_t index = 1, time_ms = 0;
  while (in.n > 0) {
    uint16_t len = fuzz_u16(&in);
    size_t got;
    const uint8_t *p = fuzz_bytes(&in, len & 0x7fff, &got);
    struct fsm_output out;
    int rv;
    if (len & 0x8000) {
      rv = fsm_index_advance(f, index);
    } else {
      rv = fsm_apply(f, index, p, got, &out);
    }
    FUZZ_CHECK(rv == 0, "entry %llu: %d", (unsigned long long)index, rv);
    FUZZ_CHECK(fsm_applied_index(f) == index, "applied index");
    FUZZ_CHECK(fsm_time_ms(f) >= time_ms, "time went back");
    time_ms = fsm_time_ms(f);
    if (!(len & 0x8000)) {
      FUZZ_CHECK(out.has_response == false || out.response.index == index,
                 "answer routed to index %llu",
                 (unsigned long long)out.response.index);
      fuzz_fsm_check_output(&out);
    }
    fuzz_fsm_check(f);
    /* A lower index is a programmer error, refused with nothing changed. */
    FUZZ_CHECK(fsm_apply(f, index, p, got, &out) == SYNOD_EINVAL,
               "an index applied twice");
    index++;
  }
  fuzz_fsm_check_image(f, opts);
  fsm_free(f);
  return 0;
}
