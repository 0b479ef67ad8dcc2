/* Fields and enum values a message carries that this build does not know.
 * protobuf-c keeps a field it cannot name (a newer peer's, a newer
 * client's) and packs it back as it came, and keeps an enum's number as
 * it came, so a message read and written again still carries them; what
 * a newer build meant by them is lost on this one. */
#ifndef SYNOD_PB_UNKNOWN_H
#define SYNOD_PB_UNKNOWN_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

/* True if m, or a message inside it, carries a field its descriptor does
 * not know, or an enum value its enum does not name (proto3 keeps any
 * number); then where (if not NULL) says which first, as "field 57 of
 * synod.KeyPut" or "value 9 of synod.KeyCompare.Target in field 2 of
 * synod.KeyCompare". m may be NULL (false). */
bool pb_unknown_field(const ProtobufCMessage *m, char *where, size_t len);

/* The same walk for the first unknown field that `match` takes (enum
 * values are not looked at). */
bool pb_unknown_field_such(const ProtobufCMessage *m,
                           bool (*match)(const ProtobufCMessageUnknownField *),
                           char *where, size_t len);

#endif
