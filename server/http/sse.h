/* Server-Sent Events framing (HTML Living Standard, "Server-sent events",
 * the text/event-stream format): channel messages as events, errors,
 * comments. Pure: no I/O, no allocation.
 *
 * A message becomes one event whose `id:` is its offset, so a client
 * (the browser's EventSource, any SSE library) resumes after the last one
 * it saw by sending it back as Last-Event-ID. Its data is the message
 * itself when that is UTF-8 without a carriage return (CR), split at each
 * line feed (LF) into `data:` lines, which the client joins again with
 * LF: the message comes back byte for byte, trailing LF and empty message
 * included. Anything else (not UTF-8, or with a CR, which a client would
 * read as a line break and give back as LF) is sent base64-encoded
 * (RFC 4648, with padding) on one `data:` line, after `event: base64`.
 *
 * Key watches (api_watch.c) send JSON events whose id is a position in
 * the key history (sse_position below), and events of an id alone. */
#ifndef SYNOD_SSE_H
#define SYNOD_SSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Whether a message goes base64-encoded (see above). */
bool sse_needs_base64(const uint8_t *data, size_t len);

/* The bytes sse_message writes for this message. */
size_t sse_message_size(uint64_t id, const uint8_t *data, size_t len);

/* Writes the event of message `id` into out, which has room for
 * sse_message_size(id, data, len) bytes; returns that many. */
size_t sse_message(char *out, uint64_t id, const uint8_t *data, size_t len);

/* An event of type `event` whose data is `data`, one line (it must hold
 * no CR or LF; JSON from a compact encoder does not), without an id.
 * Writes into out (cap bytes) like snprintf: returns the length it needs,
 * and writes only if that is below cap. */
size_t sse_event(char *out, size_t cap, const char *event, const char *data);

/* The same with an `id:` line after the event's type (id NULL: none),
 * and without a `data:` line when data is NULL: an event that carries
 * its id alone, which a browser's EventSource does not dispatch but
 * remembers as the last event id, to send back as Last-Event-ID. */
size_t sse_event_id(char *out, size_t cap, const char *event, const char *id,
                    const char *data);

/* A comment line (": text"), which every client ignores: keep-alive for
 * proxies. Same contract as sse_event; text must hold no CR or LF. */
size_t sse_comment(char *out, size_t cap, const char *text);

/* A decimal id of len bytes (1 to 19 digits), as an offset in a
 * Last-Event-ID. */
bool sse_u64(const char *s, size_t len, uint64_t *out);

/* A key watch's position as an event id: "R.E", event E (from 1,
 * counting the events the watch does not match) of revision R, or "R"
 * alone (event 0) for all of revision R. */
#define SSE_POSITION_MAX 32
/* Writes position (rev, event) into out (SSE_POSITION_MAX bytes). */
void sse_position(char *out, uint64_t rev, uint32_t event);
/* Parses an id of sse_position into where a watch resumes, right after
 * it: the first revision to look at, *from, and the events of it already
 * delivered, *after_event ("R.E": R and E; "R" or "R.0": R + 1 and 0).
 * False if s[0..len) is not such an id (or is "0.E"). */
bool sse_position_parse(const char *s, size_t len, uint64_t *from,
                        uint32_t *after_event);

#endif /* SYNOD_SSE_H */
