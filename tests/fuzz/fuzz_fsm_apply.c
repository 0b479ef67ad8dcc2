/* Fuzz harness: arbitrary log entries applied to a live state machine
 * (server/fsm). A committed entry is whatever the leader wrote; a bug or
 * a forged log must never crash or abort a replica, and every replica
 * must end in a state it can snapshot.
 *
 * Input: a byte of options (bit 0: small limits; bits 1..7: n, below),
 * then items of a 16-bit length and that many bytes, each applied as the
 * next entry. A length with the top bit set is a non-NORMAL entry instead
 * (fsm_index_advance), its bytes skipped.
 * Invariants: fsm_apply returns 0 for every increasing index, or
 * SYNOD_EPROTO with nothing changed for an entry of format 1 or more that
 * carries a field, body or enum value this build does not know (a newer
 * build's: the twin is not given it either); time never
 * goes back; answers and events decode; the trees and gauges hold after
 * every entry; at the end the image round-trips (fuzz_fsm.h). With n > 0,
 * a twin restored from the image after entry n applies the entries that
 * follow too, and answers, events and digest stay the same as the
 * original's: what a replica keeps outside its image (the key work list,
 * the output) never changes what it does. */
#include "fuzz_fsm.h"

#include "synod.h"

/* A replica restored from f's image. */
static struct fsm *twin_new(const struct fsm *f,
                            const struct fsm_options *opts) {
  uint8_t *img;
  size_t len;
  FUZZ_CHECK(fsm_snapshot_encode(f, &img, &len) == 0, "encode");
  struct fsm *g = fsm_new(opts);
  FUZZ_CHECK(fsm_snapshot_decode(g, img, len) == 0, "twin refused");
  free(img);
  return g;
}

/* The twin applies the entry the original just did, alike. */
static void twin_apply(struct fsm *g, const struct fsm *f, uint64_t index,
                       const uint8_t *p, size_t len, bool normal,
                       const struct fsm_output *out) {
  struct fsm_output o;
  if (!normal) {
    FUZZ_CHECK(fsm_index_advance(g, index) == 0, "twin: advance");
    return;
  }
  FUZZ_CHECK(fsm_apply(g, index, p, len, &o) == 0, "twin: apply");
  FUZZ_CHECK(
      o.has_response == out->has_response &&
          o.response.pending == out->response.pending &&
          o.response.len == out->response.len &&
          (o.response.len == 0 ||
           memcmp(o.response.data, out->response.data, o.response.len) == 0) &&
          o.events_len == out->events_len,
      "entry %llu: the twin answers otherwise", (unsigned long long)index);
  for (size_t i = 0; i < o.events_len; i++) {
    FUZZ_CHECK(o.events[i].type == out->events[i].type &&
                   o.events[i].revision == out->events[i].revision,
               "entry %llu: the twin's event %zu differs",
               (unsigned long long)index, i);
  }
  FUZZ_CHECK(fsm_digest(g) == fsm_digest(f), "entry %llu: the twin differs",
             (unsigned long long)index);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct fuzz_in in = {data, size};
  struct fsm_options small, *opts = NULL;
  uint8_t flags = fuzz_u8(&in);
  uint64_t twin_at = flags >> 1;
  struct fsm *twin = NULL;
  if (flags & 1) {
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
      uint64_t digest = fsm_digest(f);
      rv = fsm_apply(f, index, p, got, &out);
      if (rv == SYNOD_EPROTO) {
        /* A newer build's entry (a field this one does not know): refused
         * with nothing changed, not even the applied index. */
        FUZZ_CHECK(fsm_applied_index(f) == index - 1 &&
                       fsm_digest(f) == digest && fsm_unknown_field(f)[0],
                   "entry %llu refused as a newer build's, yet changed the "
                   "state",
                   (unsigned long long)index);
        continue;
      }
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
    if (twin != NULL) {
      twin_apply(twin, f, index, p, got, !(len & 0x8000), &out);
    } else if (index == twin_at) {
      twin = twin_new(f, opts);
    }
    /* A lower index is a programmer error, refused with nothing changed. */
    FUZZ_CHECK(fsm_apply(f, index, p, got, &out) == SYNOD_EINVAL,
               "an index applied twice");
    index++;
  }
  fuzz_fsm_check_image(f, opts);
  fsm_free(twin);
  fsm_free(f);
  return 0;
}
