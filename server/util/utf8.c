/* UTF-8 validation (see utf8.h). */
#include "utf8.h"

bool utf8_valid(const void *str, size_t len, size_t *bad_at) {
  const unsigned char *s = str;
  size_t i = 0;
  while (i < len) {
    unsigned c = s[i];
    size_t n;
    unsigned min, cp;
    if (c < 0x80) {
      i++;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      n = 1, min = 0x80, cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2, min = 0x800, cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3, min = 0x10000, cp = c & 0x07;
    } else {
      goto bad;
    }
    if (len - i <= n) {
      goto bad;
    }
    for (size_t k = 1; k <= n; k++) {
      if ((s[i + k] & 0xc0) != 0x80) {
        goto bad;
      }
      cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      goto bad;
    }
    i += n + 1;
  }
  return true;
bad:
  if (bad_at) {
    *bad_at = i;
  }
  return false;
}
