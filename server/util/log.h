/* Logging: one line per event, one format for the whole server:
 *   2026-11-21T17:21:31.123Z INFO  synod-0 store: opened /data (last 12)
 * Written to stderr; a level below the threshold costs one comparison. */
#ifndef SYNOD_LOG_H
#define SYNOD_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Sets the replica name printed on each line (copied) and the threshold. */
void log_init(const char *name, enum log_level level);

/* Parses "debug", "info", "warn" or "error"; returns -1 if unknown. */
int log_level_parse(const char *text);

void log_write(enum log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(module, ...) log_write(LOG_DEBUG, module, __VA_ARGS__)
#define log_info(module, ...) log_write(LOG_INFO, module, __VA_ARGS__)
#define log_warn(module, ...) log_write(LOG_WARN, module, __VA_ARGS__)
#define log_error(module, ...) log_write(LOG_ERROR, module, __VA_ARGS__)

#endif
