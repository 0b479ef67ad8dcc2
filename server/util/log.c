/* Logging: timestamped, levelled lines on stderr. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static char log_name[64] = "synod";
static enum log_level log_threshold = LOG_INFO;

static const char *const log_level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void log_init(const char *name, enum log_level level) {
  snprintf(log_name, sizeof log_name, "%s", name ? name : "synod");
  log_threshold = level;
}

int log_level_parse(const char *text) {
  static const char *const lower[] = {"debug", "info", "warn", "error"};
  for (int i = 0; i < 4; i++) {
    if (strcmp(text, lower[i]) == 0) {
      return i;
    }
  }
  return -1;
}

void log_write(enum log_level level, const char *module, const char *fmt, ...) {
  if (level < log_threshold) {
    return;
  }
  struct timespec ts;
  struct tm tm;
  char stamp[32];
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);

  char line[1024];
  int n =
      snprintf(line, sizeof line, "%s.%03ldZ %-5s %s %s: ", stamp,
               ts.tv_nsec / 1000000, log_level_names[level], log_name, module);
  va_list ap;
  va_start(ap, fmt);
  if (n >= 0 && (size_t)n < sizeof line) {
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  }
  va_end(ap);
  /* One write per line so lines from threads do not interleave. */
  fprintf(stderr, "%s\n", line);
}
