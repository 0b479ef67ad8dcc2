/* The HTTP API tests' Server-Sent Events reader (http_sse.h). */
#include "http_sse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sse_parse(struct sse *s) {
  char *p = s->raw.p, *end;
  while ((end = strstr(p, "\n\n")) != NULL) {
    struct sse_ev ev = {.type = "message"};
    bool any = false;
    *end = '\0';
    for (char *line = p, *nl; line != NULL; line = nl) {
      nl = strchr(line, '\n');
      if (nl != NULL) {
        *nl++ = '\0';
      }
      if (strncmp(line, "event: ", 7) == 0) {
        snprintf(ev.type, sizeof ev.type, "%s", line + 7);
        any = true;
      } else if (strncmp(line, "id: ", 4) == 0) {
        snprintf(ev.id, sizeof ev.id, "%s", line + 4);
        any = true;
      } else if (strncmp(line, "data: ", 6) == 0) {
        json_error_t err;
        ev.data = json_loads(line + 6, 0, &err);
        CHECK(ev.data != NULL, "event data not JSON (%s): %s", err.text,
              line + 6);
        any = true;
      } else {
        CHECK(line[0] == ':' || line[0] == '\0', "a line of no field: %s",
              line);
      }
    }
    if (any) {
      if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->evs = realloc(s->evs, s->cap * sizeof *s->evs);
        CHECK(s->evs != NULL, "out of memory");
      }
      s->evs[s->n++] = ev;
    }
    p = end + 2;
  }
  size_t left = strlen(p);
  memmove(s->raw.p, p, left + 1);
  s->raw.len = left;
}

size_t sse_write_cb(char *p, size_t size, size_t n, void *arg) {
  struct sse *s = arg;
  buf_add(&s->raw, p, size * n);
  sse_parse(s);
  return size * n;
}

void sse_open(struct sse *s, const struct cluster *c, int i, const char *path,
              const char *last) {
  char h[96];
  *s = (struct sse){0};
  s->hs = curl_slist_append(NULL, "Accept: text/event-stream");
  if (last != NULL) {
    snprintf(h, sizeof h, "Last-Event-ID: %s", last);
    s->hs = curl_slist_append(s->hs, h);
  }
  struct buf unused;
  s->e = http_easy("GET", c->nodes[i].http, path, s->hs, NULL, 0, &unused);
  free(unused.p);
  buf_add(&s->raw, "", 0);
  curl_easy_setopt(s->e, CURLOPT_WRITEFUNCTION, sse_write_cb);
  curl_easy_setopt(s->e, CURLOPT_WRITEDATA, s);
  curl_easy_setopt(s->e, CURLOPT_TIMEOUT_MS, 60000L);
  s->m = curl_multi_init();
  curl_multi_add_handle(s->m, s->e);
  uint64_t deadline = test_now_ms() + 10000;
  long status = 0;
  while (status == 0 && !s->done) {
    int running;
    curl_multi_perform(s->m, &running);
    s->done = running == 0;
    curl_easy_getinfo(s->e, CURLINFO_RESPONSE_CODE, &status);
    CHECK(test_now_ms() < deadline, "GET %s: no answer in 10 s", path);
    curl_multi_poll(s->m, NULL, 0, 50, NULL);
  }
  CHECK(status == 200, "GET %s on %s: %ld: %s", path, c->nodes[i].name, status,
        s->raw.p);
}

size_t sse_count(const struct sse *s, bool with_progress) {
  size_t k = 0;
  for (size_t i = 0; i < s->n; i++) {
    k += with_progress || strcmp(s->evs[i].type, "progress") != 0;
  }
  return k;
}

size_t sse_wait(struct sse *s, size_t want, bool with_progress,
                uint32_t timeout_ms) {
  uint64_t deadline = test_now_ms() + timeout_ms;
  while (sse_count(s, with_progress) < want && !s->done &&
         test_now_ms() < deadline) {
    int running;
    curl_multi_perform(s->m, &running);
    s->done = running == 0;
    curl_multi_poll(s->m, NULL, 0, 50, NULL);
  }
  return sse_count(s, with_progress);
}

void sse_close(struct sse *s) {
  curl_multi_remove_handle(s->m, s->e);
  curl_easy_cleanup(s->e);
  curl_multi_cleanup(s->m);
  curl_slist_free_all(s->hs);
  for (size_t i = 0; i < s->n; i++) {
    json_decref(s->evs[i].data);
  }
  free(s->evs);
  free(s->raw.p);
}
