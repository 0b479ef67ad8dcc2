/* Fuzz harness: the Kubernetes pod-list parser (server/discovery/parse.c),
 * which reads what the API server (or whatever answers at its address)
 * sends, and the classifier of its error replies.
 *
 * Input: a byte choosing the peer port and the candidate maximum, then the
 * reply body.
 * Invariants: the parse returns 0 or an error with a NUL-terminated
 * message; on success at most `max` candidates, each name and address
 * NUL-terminated within its field and not empty, sorted by name; on
 * error none. The error classifier always writes a message. */
#include "fuzz.h"

#include "discovery.h"
#include "synod.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct fuzz_in in = {data, size};
  uint8_t sel = fuzz_u8(&in);
  uint16_t port = sel & 0x80 ? 7701 : (uint16_t)(sel * 257);
  size_t max = (sel & 7) == 0 ? DISCOVERY_CANDIDATES_MAX : (sel & 7);
  struct discovery_candidate out[DISCOVERY_CANDIDATES_MAX];
  char errmsg[DISCOVERY_ERRMSG_MAX];
  size_t n = 12345;
  memset(out, 0xa5, sizeof out);
  memset(errmsg, 'x', sizeof errmsg);
  int rv =
      discovery_k8s_parse((const char *)in.p, in.n, port, out, max, &n, errmsg);
  if (rv != 0) {
    FUZZ_CHECK(n == 0, "%zu candidates with an error", n);
    FUZZ_CHECK(memchr(errmsg, 0, sizeof errmsg) != NULL && errmsg[0] != 0,
               "error %d without a message", rv);
  } else {
    FUZZ_CHECK(n <= max, "%zu candidates, max %zu", n, max);
    for (size_t i = 0; i < n; i++) {
      FUZZ_CHECK(memchr(out[i].name, 0, sizeof out[i].name) != NULL &&
                     memchr(out[i].address, 0, sizeof out[i].address) != NULL,
                 "candidate %zu not terminated", i);
      FUZZ_CHECK(out[i].name[0] != 0 && out[i].address[0] != 0,
                 "candidate %zu is empty", i);
      FUZZ_CHECK(i == 0 || strcmp(out[i - 1].name, out[i].name) <= 0,
                 "candidates not sorted");
    }
  }
  memset(errmsg, 'x', sizeof errmsg);
  long status = 400 + (sel & 7);
  rv = discovery_k8s_http_error(status, (const char *)in.p, in.n, "default",
                                "/var/run/token", errmsg);
  FUZZ_CHECK(rv != 0 && memchr(errmsg, 0, sizeof errmsg) != NULL,
             "HTTP %ld classified as %d", status, rv);
  return 0;
}
