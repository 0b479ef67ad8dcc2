/* Error messages that carry context. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void errmsg_set(char *buf, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, SYNOD_ERRMSG_MAX, fmt, ap);
  va_end(ap);
}

void errmsg_wrap(char *buf, const char *fmt, ...) {
  char prefix[SYNOD_ERRMSG_MAX];
  char old[SYNOD_ERRMSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  memcpy(old, buf, SYNOD_ERRMSG_MAX);
  old[SYNOD_ERRMSG_MAX - 1] = '\0';
  /* Truncation is expected for deep chains; keep the outermost context. */
  int n = snprintf(buf, SYNOD_ERRMSG_MAX, "%s: ", prefix);
  if (n >= 0 && n < SYNOD_ERRMSG_MAX) {
    snprintf(buf + n, SYNOD_ERRMSG_MAX - (size_t)n, "%s", old);
  }
}
