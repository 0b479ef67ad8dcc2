/* UTF-8 validation and repair (see utf8.h). */
#include "utf8.h"

/* The sequence at s[i]: its length in bytes when it is valid UTF-8, 0
 * when it is not, or -1 when it is the valid start of a sequence that
 * len cuts off. */
static int utf8_seq(const unsigned char *s, size_t len, size_t i) {
  unsigned c = s[i];
  size_t n;
  unsigned min, cp;
  if (c < 0x80) {
    return 1;
  } else if ((c & 0xe0) == 0xc0) {
    n = 1, min = 0x80, cp = c & 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    n = 2, min = 0x800, cp = c & 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    n = 3, min = 0x10000, cp = c & 0x07;
  } else {
    return 0;
  }
  for (size_t k = 1; k <= n; k++) {
    if (i + k == len) {
      return -1;
    }
    if ((s[i + k] & 0xc0) != 0x80) {
      return 0;
    }
    cp = (cp << 6) | (s[i + k] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
    return 0;
  }
  return (int)n + 1;
}

bool utf8_valid(const void *str, size_t len, size_t *bad_at) {
  const unsigned char *s = str;
  size_t i = 0;
  while (i < len) {
    int n = utf8_seq(s, len, i);
    if (n <= 0) {
      if (bad_at) {
        *bad_at = i;
      }
      return false;
    }
    i += (size_t)n;
  }
  return true;
}

size_t utf8_sanitize(char *str, size_t len) {
  unsigned char *s = (unsigned char *)str;
  size_t i = 0;
  while (i < len) {
    int n = utf8_seq(s, len, i);
    if (n < 0) {
      len = i; /* cut off at the end: dropped */
      break;
    }
    if (n == 0) {
      s[i] = '?';
      n = 1;
    }
    i += (size_t)n;
  }
  s[len] = '\0';
  return len;
}
