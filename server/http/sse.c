/* Server-Sent Events framing: messages, events and comments as
 * text/event-stream. */
#include "sse.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

bool sse_utf8_valid(const uint8_t *p, size_t len) {
  size_t i = 0;
  while (i < len) {
    uint8_t c = p[i];
    size_t n;
    uint32_t cp, min;
    if (c < 0x80) {
      i++;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      n = 1, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return false; /* a continuation byte first, or 0xf8.. */
    }
    if (len - i <= n) {
      return false; /* cut short */
    }
    for (size_t k = 1; k <= n; k++) {
      if ((p[i + k] & 0xc0) != 0x80) {
        return false;
      }
      cp = cp << 6 | (p[i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

bool sse_needs_base64(const uint8_t *data, size_t len) {
  return memchr(data, '\r', len) != NULL || !sse_utf8_valid(data, len);
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
  int n = snprintf(out, cap, "event: %s\ndata: %s\n\n", event, data);
  return n < 0 ? 0 : (size_t)n;
}

size_t sse_comment(char *out, size_t cap, const char *text) {
  int n = snprintf(out, cap, ": %s\n\n", text);
  return n < 0 ? 0 : (size_t)n;
}
