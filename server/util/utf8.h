/* UTF-8 validation, strict (RFC 3629): no overlong forms, no surrogates,
 * nothing above U+10FFFF. One definition for every reader of names and
 * messages (the state machine, Server-Sent Events). */
#ifndef SYNOD_UTF8_H
#define SYNOD_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True if s[0..len) is valid UTF-8; else false, and *bad_at (may be NULL)
 * is the offset of the first byte of the first bad sequence. */
bool utf8_valid(const void *s, size_t len, size_t *bad_at);

#endif
