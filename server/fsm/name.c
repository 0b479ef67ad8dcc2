/* Names (UTF-8 validation and bytewise order), intrusive lists and the
 * aborting allocator the state machine uses. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm_int.h"
#include "utf8.h"

void *fsm_xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (p == NULL) {
    fprintf(stderr, "fsm: out of memory allocating %zu bytes\n", n);
    abort();
  }
  return p;
}

void *fsm_xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (p == NULL) {
    fprintf(stderr, "fsm: out of memory allocating %zu x %zu bytes\n", n, size);
    abort();
  }
  return p;
}

void *fsm_xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (q == NULL) {
    fprintf(stderr, "fsm: out of memory reallocating %zu bytes\n", n);
    abort();
  }
  return q;
}

char *fsm_xstrndup(const char *s, size_t n) {
  char *p = fsm_xmalloc(n + 1);
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

void fsm_list_init(struct fsm_list *head) {
  head->prev = head->next = head;
}

void fsm_list_push_back(struct fsm_list *head, struct fsm_list *n) {
  n->prev = head->prev;
  n->next = head;
  head->prev->next = n;
  head->prev = n;
}

void fsm_list_remove(struct fsm_list *n) {
  n->prev->next = n->next;
  n->next->prev = n->prev;
  n->prev = n->next = n;
}

/* Bytewise order, a shorter prefix first: the order of CounterList. */
int fsm_name_cmp(const struct fsm_name *a, const char *s, size_t len) {
  size_t n = a->len < len ? a->len : len;
  int c = n ? memcmp(a->s, s, n) : 0; /* an empty one may be NULL */
  if (c != 0) {
    return c;
  }
  return a->len < len ? -1 : a->len > len ? 1 : 0;
}

int fsm_name_check(const struct fsm *f, const char *what, const char *s,
                   size_t len, char *msg) {
  size_t bad = 0;
  if (len == 0) {
    errmsg_set(msg, "%s: name is empty", what);
    return SYNOD_EINVAL;
  }
  if (len > f->opt.name_bytes_max) {
    errmsg_set(msg, "%s: name length %zu exceeds %u", what, len,
               f->opt.name_bytes_max);
    return SYNOD_EINVAL;
  }
  if (!utf8_valid(s, len, &bad)) {
    errmsg_set(msg, "%s: name is not valid UTF-8 (byte %zu)", what, bad);
    return SYNOD_EINVAL;
  }
  return 0;
}

int fsm_known_check(const struct fsm *f, const char *what, const char *name,
                    const uint64_t *created_index, uint64_t known_index,
                    char *msg) {
  if (known_index == 0) {
    return 0;
  }
  if (f->applied_index < known_index) {
    /* A stale read on a replica that lags: it cannot tell the stream the
     * reader knew from one created since, nor from none yet. */
    errmsg_set(msg,
               "%s: \"%.64s\" is known at index %" PRIu64
               ", which this replica has not applied yet (it is at %" PRIu64
               "): read again, or read without stale",
               what, name, known_index, f->applied_index);
    return SYNOD_EUNAVAILABLE;
  }
  if (created_index != NULL && *created_index <= known_index) {
    return 0;
  }
  if (created_index == NULL) {
    errmsg_set(msg, "%s: \"%.64s\" was deleted after index %" PRIu64, what,
               name, known_index);
  } else {
    errmsg_set(msg,
               "%s: \"%.64s\" was deleted after index %" PRIu64
               " and created again at index %" PRIu64,
               what, name, known_index, *created_index);
  }
  return SYNOD_ENOTFOUND;
}
