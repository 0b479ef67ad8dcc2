/* UTF-8 validation, strict (RFC 3629): no overlong forms, no surrogates,
 * nothing above U+10FFFF. One definition for every reader of names and
 * messages (the state machine, Server-Sent Events), and the repair of a
 * text about to go into JSON (which must be UTF-8). */
#ifndef SYNOD_UTF8_H
#define SYNOD_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True if s[0..len) is valid UTF-8; else false, and *bad_at (may be NULL)
 * is the offset of the first byte of the first bad sequence. */
bool utf8_valid(const void *s, size_t len, size_t *bad_at);

/* Makes s[0..len) valid UTF-8 in place, for a message that quotes bytes
 * a client sent or that was cut by a byte count: each byte that does not
 * start a valid sequence becomes '?', and a valid sequence cut off by the
 * end of s (a character cut in two by "%.128s") is dropped. Never grows
 * the text. Returns the new length and writes a NUL there: s has room
 * for len + 1 bytes. */
size_t utf8_sanitize(char *s, size_t len);

#endif
