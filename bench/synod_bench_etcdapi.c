/* synod-bench: the small pieces of etcd's v3 JSON gateway that the etcd
 * load generator needs: base64 (keys and values travel base64-encoded),
 * int64 fields (sent as JSON strings), and one blocking status call. */
#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synod_bench.h"
#include "synod_bench_etcd.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int etcd_b64_encode(const void *src, size_t len, char *out, size_t out_len) {
  const unsigned char *s = src;
  size_t o = 0;

  if (out_len < 4 * ((len + 2) / 3) + 1) {
    return -1;
  }
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)s[i] << 16;
    v |= i + 1 < len ? (uint32_t)s[i + 1] << 8 : 0;
    v |= i + 2 < len ? s[i + 2] : 0;
    out[o++] = b64_alphabet[v >> 18 & 63];
    out[o++] = b64_alphabet[v >> 12 & 63];
    out[o++] = i + 1 < len ? b64_alphabet[v >> 6 & 63] : '=';
    out[o++] = i + 2 < len ? b64_alphabet[v & 63] : '=';
  }
  out[o] = '\0';
  return 0;
}

static int b64_value(char ch) {
  const char *p = ch ? strchr(b64_alphabet, ch) : NULL;
  return p ? (int)(p - b64_alphabet) : -1;
}

int etcd_b64_decode(const char *src, char *out, size_t out_len) {
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;

  for (; *src != '\0' && *src != '='; src++) {
    int v = b64_value(*src);
    if (v < 0) {
      return -1;
    }
    acc = acc << 6 | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (o + 1 >= out_len) {
        return -1;
      }
      out[o++] = (char)(acc >> bits & 0xff);
    }
  }
  out[o] = '\0';
  return (int)o;
}

int etcd_json_i64(const json_t *j, int64_t *out) {
  char *end;
  if (json_is_integer(j)) {
    *out = json_integer_value(j);
    return 0;
  }
  if (!json_is_string(j)) {
    return -1;
  }
  *out = strtoll(json_string_value(j), &end, 10);
  return *end == '\0' && end != json_string_value(j) ? 0 : -1;
}

int etcd_kv_read(const json_t *range, int64_t *value, int64_t *mod_revision) {
  const json_t *kv = json_array_get(json_object_get(range, "kvs"), 0);
  const char *v64;
  char text[32];

  *value = 0;
  *mod_revision = 0; /* etcd compares an absent key's mod_revision as 0 */
  if (kv == NULL) {
    return 0;
  }
  if (etcd_json_i64(json_object_get(kv, "mod_revision"), mod_revision) != 0) {
    return -1;
  }
  v64 = json_string_value(json_object_get(kv, "value"));
  if (v64 == NULL) {
    return 0; /* empty value */
  }
  if (etcd_b64_decode(v64, text, sizeof text) < 0) {
    return -1;
  }
  *value = strtoll(text, NULL, 10);
  return 0;
}

/* etcd's ids are uint64 and often above INT64_MAX. */
static int json_u64(const json_t *j, uint64_t *out) {
  const char *s = json_string_value(j);
  char *end;
  if (s == NULL) {
    return -1;
  }
  *out = strtoull(s, &end, 10);
  return *end == '\0' && end != s ? 0 : -1;
}

static size_t collect_cb(char *p, size_t size, size_t n, void *arg) {
  char *buf = arg;
  size_t have = strlen(buf);
  size_t len = size * n;
  if (have + len >= ETCD_RESPONSE_MAX) {
    return 0;
  }
  memcpy(buf + have, p, len);
  buf[have + len] = '\0';
  return len;
}

int bench_etcd_status(int port, uint64_t *member, uint64_t *leader,
                      char *version, size_t version_len) {
  static char buf[ETCD_RESPONSE_MAX];
  char url[64];
  CURL *e = curl_easy_init();
  json_t *j = NULL;
  int rv = -1;

  buf[0] = '\0';
  snprintf(url, sizeof url, "http://127.0.0.1:%d/v3/maintenance/status", port);
  if (e == NULL) {
    return -1;
  }
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, "{}");
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 1000L);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect_cb);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, buf);
  if (curl_easy_perform(e) == CURLE_OK &&
      (j = json_loads(buf, 0, NULL)) != NULL &&
      json_u64(json_object_get(json_object_get(j, "header"), "member_id"),
               member) == 0 &&
      json_u64(json_object_get(j, "leader"), leader) == 0) {
    snprintf(version, version_len, "%s",
             json_string_value(json_object_get(j, "version"))
                 ? json_string_value(json_object_get(j, "version"))
                 : "?");
    rv = 0;
  }
  json_decref(j);
  curl_easy_cleanup(e);
  return rv;
}

int bench_etcd_counter_read(const struct bench_cluster *cl, int member,
                            const char *name, int64_t *value, char *err,
                            size_t len) {
  char *buf = calloc(1, ETCD_RESPONSE_MAX);
  char key64[160], url[64], body[200];
  CURL *e = curl_easy_init();
  json_t *j = NULL;
  int64_t rev;
  CURLcode res = CURLE_OUT_OF_MEMORY;
  int rv = -1;

  etcd_b64_encode(name, strlen(name), key64, sizeof key64);
  snprintf(url, sizeof url, "http://127.0.0.1:%d/v3/kv/range",
           cl->client_port[member]);
  snprintf(body, sizeof body, "{\"key\":\"%s\"}", key64);
  if (buf != NULL && e != NULL) {
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, buf);
    res = curl_easy_perform(e);
  }
  if (res != CURLE_OK) {
    snprintf(err, len, "%s: %s", url, curl_easy_strerror(res));
  } else if ((j = json_loads(buf, 0, NULL)) == NULL ||
             etcd_kv_read(j, value, &rev) != 0) {
    snprintf(err, len, "%s: %.200s", url, buf);
  } else {
    rv = 0;
  }
  json_decref(j);
  curl_easy_cleanup(e);
  free(buf);
  return rv;
}
