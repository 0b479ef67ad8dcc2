/* Server-Sent Events framing: messages, events and comments as
 * text/event-stream, and the ids of key watches. */
#include "sse.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "utf8.h"

bool sse_needs_base64(const uint8_t *data, size_t len) {
  return memchr(data, '\r', len) != NULL || !utf8_valid(data, len, NULL);
}

static size_t base64_size(size_t len) {
  return (len + 2) / 3 * 4;
}

static size_t base64_encode(const uint8_t *in, size_t len, char *out) {
  static const char abc[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t k = 0;
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16;
    v |= i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0;
    v |= i + 2 < len ? in[i + 2] : 0;
    out[k++] = abc[v >> 18 & 63];
    out[k++] = abc[v >> 12 & 63];
    out[k++] = i + 1 < len ? abc[v >> 6 & 63] : '=';
    out[k++] = i + 2 < len ? abc[v & 63] : '=';
  }
  return k;
}

/* "id: N\n" */
static size_t id_line(char *out, uint64_t id) {
  char buf[32];
  int n = snprintf(buf, sizeof buf, "id: %" PRIu64 "\n", id);
  if (out != NULL) {
    memcpy(out, buf, (size_t)n);
  }
  return (size_t)n;
}

static size_t lines_count(const uint8_t *data, size_t len) {
  size_t n = 1;
  for (const uint8_t *p = data, *end = data + len;
       (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++) {
    n++;
  }
  return n;
}

static const char data_prefix[] = "data: ";
static const char base64_line[] = "event: base64\n";
#define DATA_PREFIX_LEN (sizeof data_prefix - 1)
#define BASE64_LINE_LEN (sizeof base64_line - 1)

size_t sse_message_size(uint64_t id, const uint8_t *data, size_t len) {
  size_t head = id_line(NULL, id);
  if (sse_needs_base64(data, len)) {
    return head + BASE64_LINE_LEN + DATA_PREFIX_LEN + base64_size(len) + 2;
  }
  /* Each line: the prefix, its bytes, LF (the message's own LFs end all
   * but the last); then the blank line. */
  return head + lines_count(data, len) * DATA_PREFIX_LEN + len + 2;
}

size_t sse_message(char *out, uint64_t id, const uint8_t *data, size_t len) {
  size_t k = id_line(out, id);
  if (sse_needs_base64(data, len)) {
    memcpy(out + k, base64_line, BASE64_LINE_LEN);
    k += BASE64_LINE_LEN;
    memcpy(out + k, data_prefix, DATA_PREFIX_LEN);
    k += DATA_PREFIX_LEN;
    k += base64_encode(data, len, out + k);
    out[k++] = '\n';
    out[k++] = '\n';
    return k;
  }
  const uint8_t *p = data, *end = data + len;
  for (;;) {
    const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
    memcpy(out + k, data_prefix, DATA_PREFIX_LEN);
    k += DATA_PREFIX_LEN;
    if (n > 0) {
      memcpy(out + k, p, n);
    }
    k += n;
    out[k++] = '\n';
    if (nl == NULL) {
      break;
    }
    p = nl + 1;
  }
  out[k++] = '\n';
  return k;
}

size_t sse_event(char *out, size_t cap, const char *event, const char *data) {
  return sse_event_id(out, cap, event, NULL, data);
}

size_t sse_event_id(char *out, size_t cap, const char *event, const char *id,
                    const char *data) {
  int n = snprintf(out, cap, "event: %s\n%s%s%s%s%s%s\n", event,
                   id != NULL ? "id: " : "", id != NULL ? id : "",
                   id != NULL ? "\n" : "", data != NULL ? "data: " : "",
                   data != NULL ? data : "", data != NULL ? "\n" : "");
  return n < 0 ? 0 : (size_t)n;
}

size_t sse_comment(char *out, size_t cap, const char *text) {
  int n = snprintf(out, cap, ": %s\n\n", text);
  return n < 0 ? 0 : (size_t)n;
}

bool sse_u64(const char *s, size_t len, uint64_t *out) {
  uint64_t v = 0;
  if (len == 0 || len > 19) {
    return false;
  }
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') {
      return false;
    }
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  *out = v;
  return true;
}

void sse_position(char *out, uint64_t rev, uint32_t event) {
  if (event == 0) {
    snprintf(out, SSE_POSITION_MAX, "%" PRIu64, rev);
  } else {
    snprintf(out, SSE_POSITION_MAX, "%" PRIu64 ".%" PRIu32, rev, event);
  }
}

bool sse_position_parse(const char *s, size_t len, uint64_t *from,
                        uint32_t *after_event) {
  const char *dot = memchr(s, '.', len);
  uint64_t rev, event = 0;
  size_t rev_len = dot != NULL ? (size_t)(dot - s) : len;
  if (!sse_u64(s, rev_len, &rev) ||
      (dot != NULL &&
       (!sse_u64(dot + 1, len - rev_len - 1, &event) || event > UINT32_MAX))) {
    return false;
  }
  if (event == 0) {
    *from = rev + 1; /* 19 digits at most: no overflow */
    *after_event = 0;
    return true;
  }
  if (rev == 0) {
    return false; /* revisions start at 1 */
  }
  *from = rev;
  *after_event = (uint32_t)event;
  return true;
}
