/* libsynod's pure helpers: endpoint lists, backoff, the session clock.
 * No I/O and no clock: the callers pass the time in, so unit tests can
 * check every boundary. */
#ifndef SYNOD_CLIENT_UTIL_H
#define SYNOD_CLIENT_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "synod.h"

#define ENDPOINT_HOST_MAX 256
#define ENDPOINTS_MAX 64

struct endpoint {
  char host[ENDPOINT_HOST_MAX]; /* without brackets for IPv6 */
  uint16_t port;
};

/* Parses "host:port[,host:port...]" (spaces around commas allowed,
 * "[v6addr]:port" for IPv6) into out[0..*n). Returns 0, or SYNOD_EINVAL
 * with errmsg (SYNOD_ERRMSG_BYTES) naming the bad item: empty list or
 * item, missing or bad port (1..65535), host too long, more than max
 * items. */
int endpoints_parse(const char *text, struct endpoint *out, size_t max,
                    size_t *n, char *errmsg);

/* Formats an endpoint as "host:port" or "[v6]:port". */
void endpoint_format(const struct endpoint *e, char *out, size_t len);

/* Parses one "host:port" into *e. Same errors as endpoints_parse. */
int endpoint_parse(const char *text, size_t len, struct endpoint *e,
                   char *errmsg);

/* xorshift64*: the library's only randomness (jitter). seed 0 is mapped
 * to a fixed non-zero state. */
uint64_t prng_next(uint64_t *state);

/* Delay before retrying while an election is on (no leader known):
 * uniformly 50..200 ms. */
uint32_t backoff_no_leader_ms(uint64_t random);

/* Delay before the attempt-th reconnect after failures (attempt >= 1):
 * 100 ms doubling up to 5 s, then jittered down by up to half, so many
 * clients do not reconnect in step. */
uint32_t backoff_connect_ms(unsigned attempt, uint64_t random);
#define BACKOFF_CONNECT_MIN_MS 100u
#define BACKOFF_CONNECT_MAX_MS 5000u

/* The session clock. base_ms is the send time of the last acknowledged
 * keepalive (or of the SessionOpen): the server applied it later, so its
 * expiry is later than base_ms + ttl_ms.
 *   [base, base + ttl/2)                  OPEN
 *   [base + ttl/2, deadline)              JEOPARDY
 *   [deadline, ...)                       LOST
 * deadline = base + ttl - ttl/20: a 5% guard for timer lateness and clock
 * rate differences, so "lost" is reported before the server could expire
 * the session. */
enum synod_session_state session_state_at(uint64_t base_ms, uint32_t ttl_ms,
                                          uint64_t now_ms);
uint64_t session_jeopardy_ms(uint64_t base_ms, uint32_t ttl_ms);
uint64_t session_deadline_ms(uint64_t base_ms, uint32_t ttl_ms);

/* When the state can next change: the jeopardy time, then the deadline,
 * then UINT64_MAX (lost is final). */
uint64_t session_next_check_ms(uint64_t base_ms, uint32_t ttl_ms,
                               uint64_t now_ms);

/* Keepalives go out every ttl/3. */
uint32_t session_keepalive_interval_ms(uint32_t ttl_ms);

/* Checks a lock/counter/election name: 1..SYNOD_NAME_MAX bytes.
 * Returns 0 or SYNOD_EINVAL with errmsg. */
int name_check(const char *what, const char *name, char *errmsg);

/* snprintf into an errmsg buffer of SYNOD_ERRMSG_BYTES. */
void errmsg_printf(char *errmsg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
