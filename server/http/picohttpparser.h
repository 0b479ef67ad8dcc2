/* picohttpparser's request parser, as exported by Debian's libh2o
 * (libh2o0.13, 2.2.5), which builds it in but does not install its header.
 * These are the declarations of its stable API (unchanged since 2014);
 * test_httpd parses requests through them, so a mismatch fails a test. */
#ifndef SYNOD_PICOHTTPPARSER_H
#define SYNOD_PICOHTTPPARSER_H

#include <stddef.h>

/* A header's name and value, pointing into the parsed buffer; name is NULL
 * for a continuation line of the header before. */
struct phr_header {
  const char *name;
  size_t name_len;
  const char *value;
  size_t value_len;
};

/* Parses a request head in buf[0..len). Returns the head's length once it
 * is complete, -2 while it is incomplete, -1 if it is not HTTP. On entry
 * *num_headers is the room in `headers`; on success, the count. last_len
 * is the length parsed by the previous call on the same buffer (0 at
 * first), so a head arriving in pieces is not rescanned. */
int phr_parse_request(const char *buf, size_t len, const char **method,
                      size_t *method_len, const char **path, size_t *path_len,
                      int *minor_version, struct phr_header *headers,
                      size_t *num_headers, size_t last_len);

#endif /* SYNOD_PICOHTTPPARSER_H */
