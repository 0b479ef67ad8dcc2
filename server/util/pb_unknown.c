/* Fields a message carries that this build does not know (pb_unknown.h). */
#include "pb_unknown.h"

#include <stdint.h>
#include <stdio.h>

static bool any(const ProtobufCMessageUnknownField *f) {
  (void)f;
  return true;
}

bool pb_unknown_field(const ProtobufCMessage *m, char *where, size_t len) {
  return pb_unknown_field_such(m, any, where, len);
}

bool pb_unknown_field_such(const ProtobufCMessage *m,
                           bool (*match)(const ProtobufCMessageUnknownField *),
                           char *where, size_t len) {
  if (m == NULL) {
    return false;
  }
  const ProtobufCMessageDescriptor *d = m->descriptor;
  for (unsigned i = 0; i < m->n_unknown_fields; i++) {
    if (match(&m->unknown_fields[i])) {
      if (where != NULL) {
        snprintf(where, len, "field %u of %s", m->unknown_fields[i].tag,
                 d->name);
      }
      return true;
    }
  }
  const char *base = (const char *)m;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *fd = &d->fields[i];
    if (fd->type != PROTOBUF_C_TYPE_MESSAGE) {
      continue;
    }
    if ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
        *(const uint32_t *)(base + fd->quantifier_offset) != fd->id) {
      continue; /* another member of its oneof holds the union */
    }
    if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t n = *(const size_t *)(base + fd->quantifier_offset);
      ProtobufCMessage *const *v =
          *(ProtobufCMessage *const *const *)(base + fd->offset);
      for (size_t k = 0; k < n; k++) {
        if (pb_unknown_field_such(v[k], match, where, len)) {
          return true;
        }
      }
    } else if (pb_unknown_field_such(
                   *(const ProtobufCMessage *const *)(base + fd->offset), match,
                   where, len)) {
      return true;
    }
  }
  return false;
}
