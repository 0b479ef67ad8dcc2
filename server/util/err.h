/* Error messages that carry context: each level prefixes what it was doing,
 * as in "store: append 12..40: mdb_put: MDB_MAP_FULL". */
#ifndef SYNOD_ERR_H
#define SYNOD_ERR_H

#include <stddef.h>

#define SYNOD_ERRMSG_MAX 256

/* Formats a message into buf (SYNOD_ERRMSG_MAX bytes), replacing what was
 * there. Truncates silently; always NUL-terminates. */
void errmsg_set(char *buf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefixes buf's current message with a formatted context and ": ". */
void errmsg_wrap(char *buf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
