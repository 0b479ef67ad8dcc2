/* Fields a message carries that this build does not know (pb_unknown.h). */
#include "pb_unknown.h"

#include <stdint.h>
#include <stdio.h>

/* What the walk looks for: unknown fields `match` takes, and, with
 * `enums`, enum values the enum's descriptor does not name. */
struct walk {
  bool (*match)(const ProtobufCMessageUnknownField *);
  bool enums;
  char *where;
  size_t len;
};

static bool any(const ProtobufCMessageUnknownField *f) {
  (void)f;
  return true;
}

/* True if one of the n values at v is not a value of fd's enum. */
static bool enum_unknown(const struct walk *w, const ProtobufCMessage *m,
                         const ProtobufCFieldDescriptor *fd, const int *v,
                         size_t n) {
  const ProtobufCEnumDescriptor *e = fd->descriptor;
  for (size_t k = 0; k < n; k++) {
    if (protobuf_c_enum_descriptor_get_value(e, v[k]) == NULL) {
      if (w->where != NULL) {
        snprintf(w->where, w->len, "value %d of %s in field %u of %s", v[k],
                 e->name, fd->id, m->descriptor->name);
      }
      return true;
    }
  }
  return false;
}

static bool walk(const struct walk *w, const ProtobufCMessage *m) {
  if (m == NULL) {
    return false;
  }
  const ProtobufCMessageDescriptor *d = m->descriptor;
  for (unsigned i = 0; i < m->n_unknown_fields; i++) {
    if (w->match(&m->unknown_fields[i])) {
      if (w->where != NULL) {
        snprintf(w->where, w->len, "field %u of %s", m->unknown_fields[i].tag,
                 d->name);
      }
      return true;
    }
  }
  const char *base = (const char *)m;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *fd = &d->fields[i];
    bool message = fd->type == PROTOBUF_C_TYPE_MESSAGE;
    if (!message && !(w->enums && fd->type == PROTOBUF_C_TYPE_ENUM)) {
      continue;
    }
    if ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
        *(const uint32_t *)(base + fd->quantifier_offset) != fd->id) {
      continue; /* another member of its oneof holds the union */
    }
    if (!message) {
      bool repeated = fd->label == PROTOBUF_C_LABEL_REPEATED;
      size_t n = repeated ? *(const size_t *)(base + fd->quantifier_offset) : 1;
      const int *v = repeated ? *(const int *const *)(base + fd->offset)
                              : (const int *)(base + fd->offset);
      if (enum_unknown(w, m, fd, v, n)) {
        return true;
      }
    } else if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t n = *(const size_t *)(base + fd->quantifier_offset);
      ProtobufCMessage *const *v =
          *(ProtobufCMessage *const *const *)(base + fd->offset);
      for (size_t k = 0; k < n; k++) {
        if (walk(w, v[k])) {
          return true;
        }
      }
    } else if (walk(w, *(const ProtobufCMessage *const *)(base + fd->offset))) {
      return true;
    }
  }
  return false;
}

bool pb_unknown_field(const ProtobufCMessage *m, char *where, size_t len) {
  struct walk w = {any, true, where, len};
  return walk(&w, m);
}

bool pb_unknown_field_such(const ProtobufCMessage *m,
                           bool (*match)(const ProtobufCMessageUnknownField *),
                           char *where, size_t len) {
  struct walk w = {match, false, where, len};
  return walk(&w, m);
}
