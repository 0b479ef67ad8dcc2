/* Error codes: the text and name of each SYNOD_E* code. */
#include "synod.h"

const char *synod_strerror(int code) {
  switch (code) {
#define SYNOD_ERROR_TEXT(name, num, text)                                      \
  case num:                                                                    \
    return text;
    SYNOD_ERRORS(SYNOD_ERROR_TEXT)
#undef SYNOD_ERROR_TEXT
  default:
    return "unknown error";
  }
}

const char *synod_errname(int code) {
  switch (code) {
#define SYNOD_ERROR_NAME(name, num, text)                                      \
  case num:                                                                    \
    return #name;
    SYNOD_ERRORS(SYNOD_ERROR_NAME)
#undef SYNOD_ERROR_NAME
  default:
    return "SYNOD_E?";
  }
}
