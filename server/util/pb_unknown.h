/* Fields a message carries that this build does not know. protobuf-c
 * keeps a field it cannot name (a newer peer's, a newer client's) and packs
 * it back as it came, so a message read and written again still carries
 * it; what a newer build meant by it is lost on this one. */
#ifndef SYNOD_PB_UNKNOWN_H
#define SYNOD_PB_UNKNOWN_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

/* True if m, or a message inside it, carries a field its descriptor does
 * not know; then where (if not NULL) says which first, as "field 57 of
 * synod.KeyPut". m may be NULL (false). */
bool pb_unknown_field(const ProtobufCMessage *m, char *where, size_t len);

/* The same walk for the first unknown field that `match` takes. */
bool pb_unknown_field_such(const ProtobufCMessage *m,
                           bool (*match)(const ProtobufCMessageUnknownField *),
                           char *where, size_t len);

#endif
