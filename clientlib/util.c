/* libsynod's pure helpers: endpoint lists, backoff, the session clock. */
#include "util.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void errmsg_printf(char *errmsg, const char *fmt, ...) {
  va_list ap;
  if (errmsg == NULL) {
    return;
  }
  va_start(ap, fmt);
  vsnprintf(errmsg, SYNOD_ERRMSG_BYTES, fmt, ap);
  va_end(ap);
}

/* Parses the decimal port in [p, p + len). Returns 0 if it is 1..65535. */
static int port_parse(const char *p, size_t len, uint16_t *port) {
  unsigned long v = 0;
  if (len == 0 || len > 5) {
    return SYNOD_EINVAL;
  }
  for (size_t i = 0; i < len; i++) {
    if (!isdigit((unsigned char)p[i])) {
      return SYNOD_EINVAL;
    }
    v = v * 10 + (unsigned long)(p[i] - '0');
  }
  if (v == 0 || v > 65535) {
    return SYNOD_EINVAL;
  }
  *port = (uint16_t)v;
  return 0;
}

int endpoint_parse(const char *text, size_t len, struct endpoint *e,
                   char *errmsg) {
  const char *host = text;
  size_t host_len;
  const char *colon;
  if (len > 0 && text[0] == '[') {
    const char *close = memchr(text, ']', len);
    if (close == NULL || (size_t)(close - text) + 1 >= len || close[1] != ':') {
      goto bad;
    }
    host = text + 1;
    host_len = (size_t)(close - host);
    colon = close + 1;
  } else {
    colon = NULL;
    for (size_t i = 0; i < len; i++) {
      if (text[i] == ':') {
        if (colon != NULL) {
          goto bad; /* a bare IPv6 address: ambiguous without brackets */
        }
        colon = text + i;
      }
    }
    if (colon == NULL) {
      goto bad;
    }
    host_len = (size_t)(colon - text);
  }
  if (host_len == 0 || host_len >= sizeof e->host) {
    goto bad;
  }
  if (port_parse(colon + 1, len - (size_t)(colon + 1 - text), &e->port) != 0) {
    goto bad;
  }
  memcpy(e->host, host, host_len);
  e->host[host_len] = '\0';
  return 0;
bad:
  errmsg_printf(errmsg, "bad endpoint '%.*s': want host:port (port 1..65535)",
                (int)(len > 200 ? 200 : len), text);
  return SYNOD_EINVAL;
}

/* [*p, end) without leading and trailing blanks. */
static void trim(const char **p, const char **end) {
  while (*p < *end && isspace((unsigned char)**p)) {
    (*p)++;
  }
  while (*end > *p && isspace((unsigned char)(*end)[-1])) {
    (*end)--;
  }
}

int endpoints_parse(const char *text, struct endpoint *out, size_t max,
                    size_t *n, char *errmsg) {
  const char *p = text;
  int rv;
  *n = 0;
  if (text == NULL) {
    errmsg_printf(errmsg, "no endpoints given");
    return SYNOD_EINVAL;
  }
  for (;;) {
    const char *comma = strchr(p, ',');
    const char *end = comma ? comma : p + strlen(p);
    const char *item = p;
    trim(&item, &end);
    if (item == end) {
      errmsg_printf(errmsg, "empty endpoint in '%.200s'", text);
      return SYNOD_EINVAL;
    }
    if (*n == max) {
      errmsg_printf(errmsg, "more than %zu endpoints", max);
      return SYNOD_EINVAL;
    }
    rv = endpoint_parse(item, (size_t)(end - item), &out[*n], errmsg);
    if (rv != 0) {
      return rv;
    }
    (*n)++;
    if (comma == NULL) {
      return 0;
    }
    p = comma + 1;
  }
}

void endpoint_format(const struct endpoint *e, char *out, size_t len) {
  if (strchr(e->host, ':') != NULL) {
    snprintf(out, len, "[%s]:%u", e->host, (unsigned)e->port);
  } else {
    snprintf(out, len, "%s:%u", e->host, (unsigned)e->port);
  }
}

uint64_t prng_next(uint64_t *state) {
  uint64_t x = *state ? *state : 0x9e3779b97f4a7c15ull;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * 0x2545f4914f6cdd1dull;
}

uint32_t backoff_no_leader_ms(uint64_t random) {
  return 50u + (uint32_t)(random % 151u);
}

uint32_t backoff_connect_ms(unsigned attempt, uint64_t random) {
  uint32_t d = BACKOFF_CONNECT_MIN_MS;
  for (unsigned i = 1; i < attempt && d < BACKOFF_CONNECT_MAX_MS; i++) {
    d *= 2;
  }
  if (d > BACKOFF_CONNECT_MAX_MS) {
    d = BACKOFF_CONNECT_MAX_MS;
  }
  /* Uniform in [d/2, d]. */
  return d / 2 + (uint32_t)(random % (d / 2 + 1));
}

uint64_t session_jeopardy_ms(uint64_t base_ms, uint32_t ttl_ms) {
  return base_ms + ttl_ms / 2;
}

uint64_t session_deadline_ms(uint64_t base_ms, uint32_t ttl_ms) {
  return base_ms + ttl_ms - ttl_ms / 20;
}

enum synod_session_state session_state_at(uint64_t base_ms, uint32_t ttl_ms,
                                          uint64_t now_ms) {
  if (now_ms >= session_deadline_ms(base_ms, ttl_ms)) {
    return SYNOD_SESSION_LOST;
  }
  if (now_ms >= session_jeopardy_ms(base_ms, ttl_ms)) {
    return SYNOD_SESSION_JEOPARDY;
  }
  return SYNOD_SESSION_OPEN;
}

uint64_t session_next_check_ms(uint64_t base_ms, uint32_t ttl_ms,
                               uint64_t now_ms) {
  if (now_ms < session_jeopardy_ms(base_ms, ttl_ms)) {
    return session_jeopardy_ms(base_ms, ttl_ms);
  }
  if (now_ms < session_deadline_ms(base_ms, ttl_ms)) {
    return session_deadline_ms(base_ms, ttl_ms);
  }
  return UINT64_MAX;
}

uint32_t session_keepalive_interval_ms(uint32_t ttl_ms) {
  return ttl_ms / 3 > 0 ? ttl_ms / 3 : 1;
}

int name_check(const char *what, const char *name, char *errmsg) {
  size_t n = name ? strlen(name) : 0;
  if (n == 0 || n > SYNOD_NAME_MAX) {
    errmsg_printf(errmsg, "%s name must be 1..%d bytes, not %zu", what,
                  SYNOD_NAME_MAX, n);
    return SYNOD_EINVAL;
  }
  return 0;
}
