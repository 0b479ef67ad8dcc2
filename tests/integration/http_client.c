/* The HTTP API tests' client (http_client.h). */
#include "http_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_add(struct buf *b, const void *p, size_t n) {
  if (b->len + n + 1 > b->cap) {
    b->cap = (b->len + n + 1) * 2;
    b->p = realloc(b->p, b->cap);
    CHECK(b->p != NULL, "out of memory");
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
  b->p[b->len] = '\0';
}

size_t buf_write_cb(char *p, size_t size, size_t n, void *arg) {
  buf_add(arg, p, size * n);
  return size * n;
}

CURL *http_easy(const char *method, const char *address, const char *path,
                struct curl_slist *hs, const void *body, size_t len,
                struct buf *out) {
  char url[2048];
  snprintf(url, sizeof url, "http://%s%s", address, path);
  CURL *e = curl_easy_init();
  *out = (struct buf){0};
  buf_add(out, "", 0);
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, hs);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, buf_write_cb);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  if (body != NULL) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  }
  return e;
}

long http_do(const char *method, const char *address, const char *path,
             const char *header, const void *body, size_t len,
             struct buf *out) {
  struct curl_slist *hs = curl_slist_append(NULL, "Expect:");
  /* Several headers are separated by '\n'. */
  for (const char *h = header, *end; h != NULL && *h != '\0'; h = end) {
    char one[1024];
    end = strchr(h, '\n');
    size_t n = end != NULL ? (size_t)(end++ - h) : strlen(h);
    snprintf(one, sizeof one, "%.*s", (int)n, h);
    hs = curl_slist_append(hs, one);
  }
  CURL *e = http_easy(method, address, path, hs, body, len, out);
  long status = 0;
  if (curl_easy_perform(e) == CURLE_OK) {
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  }
  curl_slist_free_all(hs);
  curl_easy_cleanup(e);
  return status;
}

json_t *json_of(const struct buf *b, const char *what) {
  json_error_t err;
  json_t *j = json_loads(b->p, 0, &err);
  CHECK(j != NULL, "%s: not JSON (%s): %s", what, err.text, b->p);
  return j;
}

json_t *http_json(const char *method, const char *address, const char *path,
                  const char *header, const void *body, size_t len, long want) {
  struct buf b;
  long status = http_do(method, address, path, header, body, len, &b);
  CHECK(status == want, "%s %s%s: %ld, want %ld: %s", method, address, path,
        status, want, b.p);
  json_t *j = json_of(&b, path);
  free(b.p);
  return j;
}

json_t *http_req(const struct cluster *c, const char *method, int i,
                 const char *path, const char *header, const char *body,
                 long want) {
  struct buf b;
  long status = http_do(method, c->nodes[i].http, path, header, body,
                        body != NULL ? strlen(body) : 0, &b);
  CHECK(status == want, "%s %s on %s: %ld, want %ld: %s", method, path,
        c->nodes[i].name, status, want, b.p);
  json_t *j = json_of(&b, path);
  free(b.p);
  return j;
}

int64_t jint(json_t *j, const char *key) {
  json_t *v = json_object_get(j, key);
  CHECK(json_is_integer(v), "no integer \"%s\"", key);
  return json_integer_value(v);
}

const char *jstr(json_t *j, const char *key) {
  json_t *v = json_object_get(j, key);
  CHECK(json_is_string(v), "no string \"%s\"", key);
  return json_string_value(v);
}

bool jbool(json_t *j, const char *key) {
  json_t *v = json_object_get(j, key);
  CHECK(json_is_boolean(v), "no boolean \"%s\"", key);
  return json_is_true(v);
}

char *metrics_get(const char *address) {
  struct buf b = {0};
  long code = http_do("GET", address, "/metrics", NULL, NULL, 0, &b);
  CHECK(code == 200, "GET http://%s/metrics answered %ld", address, code);
  return b.p;
}

double metrics_sample(const char *text, const char *series) {
  size_t n = strlen(series);
  for (const char *p = text; p != NULL; p = strchr(p, '\n')) {
    p += *p == '\n';
    if (strncmp(p, series, n) == 0 && p[n] == ' ') {
      return strtod(p + n + 1, NULL);
    }
  }
  return -1;
}

double metrics_of(const struct cluster *c, int i, const char *series) {
  char *text = metrics_get(c->nodes[i].http);
  double v = metrics_sample(text, series);
  free(text);
  CHECK(v >= 0, "%s has no %s", c->nodes[i].name, series);
  return v;
}
