/* Fields a message carries that this build does not know (pb_unknown.h). */
#include "pb_unknown.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

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

/* What a walk looks at in messages of one type, computed once per type:
 * its fields that hold messages or enums, and each of its oneofs that has
 * such a member, as the offset of the oneof's case (its active member is
 * then found by number, not by going through every member). A Request's
 * body is one oneof of about a hundred members. */
struct plan {
  const ProtobufCMessageDescriptor *d;
  unsigned n;
  struct {
    bool oneof;     /* else a field */
    unsigned value; /* the field's index, or the case's offset */
  } at[];
};

#define PLAN_SLOTS 1024 /* more than the message types of the protocols */
static _Atomic(struct plan *) plans[PLAN_SLOTS];

static bool plan_wants(const ProtobufCFieldDescriptor *fd) {
  return fd->type == PROTOBUF_C_TYPE_MESSAGE ||
         fd->type == PROTOBUF_C_TYPE_ENUM;
}

static struct plan *plan_build(const ProtobufCMessageDescriptor *d) {
  struct plan *p = malloc(sizeof *p + d->n_fields * sizeof p->at[0]);
  if (p == NULL) {
    return NULL;
  }
  p->d = d;
  p->n = 0;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *fd = &d->fields[i];
    if (!(fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)) {
      if (plan_wants(fd)) {
        p->at[p->n].oneof = false;
        p->at[p->n++].value = i;
      }
      continue;
    }
    bool seen = false, wanted = false;
    for (unsigned k = 0; k < p->n && !seen; k++) {
      seen = p->at[k].oneof && p->at[k].value == fd->quantifier_offset;
    }
    for (unsigned j = i; j < d->n_fields && !seen && !wanted; j++) {
      wanted = (d->fields[j].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
               d->fields[j].quantifier_offset == fd->quantifier_offset &&
               plan_wants(&d->fields[j]);
    }
    if (wanted) {
      p->at[p->n].oneof = true;
      p->at[p->n++].value = fd->quantifier_offset;
    }
  }
  return p;
}

/* d's plan, built on first use; NULL without memory or room (the walk
 * then goes through every field). Plans are never freed: types are few
 * and live as long as the program. Any thread may build one: the first
 * to publish it wins. */
static const struct plan *plan_of(const ProtobufCMessageDescriptor *d) {
  size_t h = ((uintptr_t)d >> 4) % PLAN_SLOTS;
  struct plan *built = NULL;
  for (size_t i = 0; i < PLAN_SLOTS; i++) {
    _Atomic(struct plan *) *slot = &plans[(h + i) % PLAN_SLOTS];
    struct plan *p = atomic_load_explicit(slot, memory_order_acquire);
    if (p == NULL) {
      if (built == NULL && (built = plan_build(d)) == NULL) {
        return NULL;
      }
      if (atomic_compare_exchange_strong_explicit(
              slot, &p, built, memory_order_acq_rel, memory_order_acquire)) {
        return built;
      }
    }
    if (p->d == d) {
      free(built);
      return p;
    }
  }
  free(built);
  return NULL;
}

static bool walk(const struct walk *w, const ProtobufCMessage *m);

/* Looks at field fd of m (a message or an enum field, or neither). */
static bool walk_field(const struct walk *w, const ProtobufCMessage *m,
                       const ProtobufCFieldDescriptor *fd) {
  const char *base = (const char *)m;
  bool repeated = fd->label == PROTOBUF_C_LABEL_REPEATED;
  size_t n = repeated ? *(const size_t *)(base + fd->quantifier_offset) : 1;
  if (fd->type == PROTOBUF_C_TYPE_ENUM) {
    const int *v = repeated ? *(const int *const *)(base + fd->offset)
                            : (const int *)(base + fd->offset);
    return w->enums && enum_unknown(w, m, fd, v, n);
  }
  if (fd->type != PROTOBUF_C_TYPE_MESSAGE) {
    return false;
  }
  ProtobufCMessage *const *v =
      repeated ? *(ProtobufCMessage *const *const *)(base + fd->offset)
               : (ProtobufCMessage *const *)(base + fd->offset);
  for (size_t k = 0; k < n; k++) {
    if (walk(w, v[k])) {
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
  const struct plan *p = plan_of(d);
  if (p == NULL) {
    for (unsigned i = 0; i < d->n_fields; i++) {
      const ProtobufCFieldDescriptor *fd = &d->fields[i];
      if ((!(fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ||
           *(const uint32_t *)(base + fd->quantifier_offset) == fd->id) &&
          walk_field(w, m, fd)) {
        return true;
      }
    }
    return false;
  }
  for (unsigned k = 0; k < p->n; k++) {
    const ProtobufCFieldDescriptor *fd;
    if (!p->at[k].oneof) {
      fd = &d->fields[p->at[k].value];
    } else {
      uint32_t which = *(const uint32_t *)(base + p->at[k].value);
      fd =
          which != 0 ? protobuf_c_message_descriptor_get_field(d, which) : NULL;
    }
    if (fd != NULL && walk_field(w, m, fd)) {
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
