/* synod-bench-groups: synod's side, a 3-replica cluster and libsynod's
 * group API. Until that API is on this branch, the side says so. */
#include <stdio.h>

#include "synod_bench_groups.h"

int gb_synod_start(const struct gb_opts *o, struct gb_results *r) {
  (void)o;
  snprintf(r->why_not[GB_SYNOD], GB_ERR_BYTES,
           "libsynod has no group API on this branch yet");
  return -1;
}

void gb_synod_round(const struct gb_opts *o, struct gb_results *r, int rep) {
  (void)o, (void)r, (void)rep;
}

void gb_synod_stop(void) {
}

int gb_synod_victim_main(int argc, char **argv) {
  (void)argc, (void)argv;
  return 2;
}
