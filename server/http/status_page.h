/* The status page (status_page.html), compiled into synodd: its bytes are
 * generated into the build directory by embed.cmake. */
#ifndef SYNOD_HTTP_STATUS_PAGE_H
#define SYNOD_HTTP_STATUS_PAGE_H

#include <stddef.h>

/* The HTML of GET / (UTF-8, not NUL-terminated), status_page_html_len
 * bytes. */
extern const unsigned char status_page_html[];
extern const size_t status_page_html_len;

#endif /* SYNOD_HTTP_STATUS_PAGE_H */
