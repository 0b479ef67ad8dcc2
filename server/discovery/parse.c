/* Discovery's pure parts: option parsing, backoff, address formatting, the
 * pod list URL, PodList parsing and API error classification. No I/O. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <jansson.h>

#include "discovery.h"
#include "synod.h"

int discovery_method_parse(const char *text, enum discovery_method *out) {
  static const struct {
    const char *name;
    enum discovery_method m;
  } methods[] = {{"static", DISCOVERY_STATIC},
                 {"dns", DISCOVERY_DNS},
                 {"kubernetes", DISCOVERY_KUBERNETES}};
  for (size_t i = 0; text && i < sizeof methods / sizeof methods[0]; i++) {
    if (strcmp(text, methods[i].name) == 0) {
      *out = methods[i].m;
      return 0;
    }
  }
  return SYNOD_EINVAL;
}

int discovery_duration_parse(const char *text, uint32_t *ms) {
  static const struct {
    const char *unit;
    unsigned long long mul;
  } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"", 1000}};
  char *end;
  if (text == NULL || text[0] < '0' || text[0] > '9') {
    return SYNOD_EINVAL;
  }
  errno = 0;
  unsigned long long v = strtoull(text, &end, 10);
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
    if (strcmp(end, units[i].unit) != 0) {
      continue;
    }
    if (errno != 0 || v > 86400000ull / units[i].mul) {
      return SYNOD_ERANGE;
    }
    *ms = (uint32_t)(v * units[i].mul);
    return *ms > 0 ? 0 : SYNOD_EINVAL;
  }
  return SYNOD_EINVAL;
}

uint32_t discovery_backoff_ms(uint32_t failures, uint32_t min_ms,
                              uint32_t max_ms, uint64_t *prng) {
  uint64_t d = min_ms > 0 ? min_ms : 1;
  for (uint32_t i = 1; i < failures && d < max_ms; i++) {
    d *= 2;
  }
  if (d > max_ms) {
    d = max_ms;
  }
  /* xorshift64* (Vigna): good enough for jitter, and reproducible. */
  uint64_t x = *prng != 0 ? *prng : 0x9e3779b97f4a7c15ull;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *prng = x;
  uint64_t r = (x * 0x2545f4914f6cdd1dull) >> 11; /* 53 random bits */
  double f = 0.5 + 0.5 * ((double)r / (double)(1ull << 53));
  uint32_t out = (uint32_t)((double)d * f);
  return out > 0 ? out : 1;
}

int discovery_candidate_from_addr(const struct sockaddr *sa, uint16_t port,
                                  struct discovery_candidate *c) {
  char ip[INET6_ADDRSTRLEN];
  const void *raw;
  if (sa->sa_family == AF_INET) {
    raw = &((const struct sockaddr_in *)sa)->sin_addr;
  } else if (sa->sa_family == AF_INET6) {
    raw = &((const struct sockaddr_in6 *)sa)->sin6_addr;
  } else {
    return SYNOD_EINVAL;
  }
  if (inet_ntop(sa->sa_family, raw, ip, sizeof ip) == NULL) {
    return SYNOD_EINVAL;
  }
  memset(c, 0, sizeof *c); /* candidates are compared with memcmp */
  snprintf(c->name, sizeof c->name, "%s", ip);
  snprintf(c->address, sizeof c->address,
           sa->sa_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, port);
  return 0;
}

/* Percent-encodes everything but RFC 3986's unreserved characters. */
static size_t url_escape(const char *in, char *out, size_t len) {
  static const char hex[] = "0123456789ABCDEF";
  size_t k = 0;
  for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
    bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                 (*p >= '0' && *p <= '9') || strchr("-._~", *p) != NULL;
    if (k + 4 > len) {
      return len; /* does not fit */
    }
    if (plain) {
      out[k++] = (char)*p;
    } else {
      out[k++] = '%';
      out[k++] = hex[*p >> 4];
      out[k++] = hex[*p & 15];
    }
  }
  out[k] = '\0';
  return k;
}

int discovery_k8s_url(const char *api, const char *ns, const char *selector,
                      char *out, size_t len) {
  char sel[512];
  size_t alen = strlen(api);
  while (alen > 0 && api[alen - 1] == '/') {
    alen--; /* "https://host/" and "https://host" mean the same */
  }
  if (url_escape(selector, sel, sizeof sel) == sizeof sel) {
    return SYNOD_ETOOBIG;
  }
  int w = snprintf(out, len, "%.*s/api/v1/namespaces/%s/pods%s%s", (int)alen,
                   api, ns, sel[0] ? "?labelSelector=" : "", sel);
  return w >= 0 && (size_t)w < len ? 0 : SYNOD_ETOOBIG;
}

static int candidate_cmp(const void *a, const void *b) {
  const struct discovery_candidate *x = a, *y = b;
  return strcmp(x->name, y->name);
}

/* One item of a PodList. Returns 0 and *take (a Running pod with an IP,
 * not being deleted; filled into *c), or SYNOD_EMALFORMED. */
static int pod_parse(json_t *pod, size_t i, uint16_t port, bool *take,
                     struct discovery_candidate *c, char *errmsg) {
  json_t *meta = json_object_get(pod, "metadata");
  json_t *status = json_object_get(pod, "status");
  const char *name = json_string_value(json_object_get(meta, "name"));
  const char *phase = json_string_value(json_object_get(status, "phase"));
  const char *ip = json_string_value(json_object_get(status, "podIP"));
  json_t *deleting = json_object_get(meta, "deletionTimestamp");
  *take = false;
  if (!json_is_object(pod) || name == NULL || name[0] == '\0' ||
      strlen(name) >= sizeof c->name) {
    snprintf(errmsg, DISCOVERY_ERRMSG_MAX,
             "malformed PodList: items[%zu] has no metadata.name (or one "
             "over %zu bytes)",
             i, sizeof c->name - 1);
    return SYNOD_EMALFORMED;
  }
  if (phase == NULL || strcmp(phase, "Running") != 0 || ip == NULL ||
      ip[0] == '\0' || (deleting != NULL && !json_is_null(deleting))) {
    return 0; /* Pending, Succeeded, Failed, no IP yet, or going away */
  }
  memset(c, 0, sizeof *c); /* candidates are compared with memcmp */
  snprintf(c->name, sizeof c->name, "%s", name);
  snprintf(c->address, sizeof c->address,
           strchr(ip, ':') != NULL ? "[%s]:%u" : "%s:%u", ip, port);
  *take = true;
  return 0;
}

/* Checks the envelope: an object of kind PodList (a missing kind is
 * tolerated) whose items, if present, are an array. */
static int podlist_items(json_t *root, json_t **items, char *errmsg) {
  const char *kind = json_string_value(json_object_get(root, "kind"));
  if (!json_is_object(root) || (kind != NULL && strcmp(kind, "PodList"))) {
    snprintf(errmsg, DISCOVERY_ERRMSG_MAX,
             "malformed reply: expected an object of kind PodList, got %s",
             kind ? kind : "another JSON value");
    return SYNOD_EMALFORMED;
  }
  *items = json_object_get(root, "items");
  if (*items != NULL && !json_is_array(*items) && !json_is_null(*items)) {
    snprintf(errmsg, DISCOVERY_ERRMSG_MAX,
             "malformed PodList: 'items' is not an array");
    return SYNOD_EMALFORMED;
  }
  return 0;
}

int discovery_k8s_parse(const char *body, size_t len, uint16_t port,
                        struct discovery_candidate *out, size_t max, size_t *n,
                        char *errmsg) {
  json_error_t jerr;
  json_t *root = json_loadb(body, len, 0, &jerr);
  int rv;
  *n = 0;
  if (root == NULL) {
    snprintf(errmsg, DISCOVERY_ERRMSG_MAX,
             "malformed JSON in the pod list (%zu bytes): line %d column "
             "%d: %s",
             len, jerr.line, jerr.column, jerr.text);
    return SYNOD_EMALFORMED;
  }
  json_t *items = NULL;
  rv = podlist_items(root, &items, errmsg);
  for (size_t i = 0; rv == 0 && i < json_array_size(items); i++) {
    struct discovery_candidate c;
    bool take;
    rv = pod_parse(json_array_get(items, i), i, port, &take, &c, errmsg);
    if (rv == 0 && take && *n == max) {
      snprintf(errmsg, DISCOVERY_ERRMSG_MAX,
               "the pod list has over %zu running pods: narrow the label "
               "selector",
               max);
      rv = SYNOD_ELIMIT;
    } else if (rv == 0 && take) {
      out[(*n)++] = c;
    }
  }
  json_decref(root);
  if (rv != 0) {
    *n = 0;
    return rv;
  }
  qsort(out, *n, sizeof *out, candidate_cmp);
  return 0;
}

/* The message of a metav1.Status body, or NULL. Borrowed from root. */
static const char *status_message(json_t *root) {
  return json_string_value(json_object_get(root, "message"));
}

int discovery_k8s_http_error(long status, const char *body, size_t len,
                             const char *ns, const char *token_file,
                             char *errmsg) {
  json_t *root = body ? json_loadb(body, len, 0, NULL) : NULL;
  const char *api = status_message(root);
  char quote[600];
  int rv = SYNOD_EINVAL;
  snprintf(quote, sizeof quote, "%s%s%s", api ? "; the API says: \"" : "",
           api ? api : "", api ? "\"" : "");
  if (status == 401) {
    snprintf(errmsg, DISCOVERY_ERRMSG_MAX,
             "HTTP 401: token rejected (the token read from %s is invalid "
             "or expired)%s",
             token_file, quote);
  } else if (status == 403) {
    snprintf(errmsg, DISCOVERY_ERRMSG_MAX,
             "HTTP 403: forbidden: the ServiceAccount needs the RBAC "
             "permissions 'get' and 'list' on 'pods' in namespace '%s' (a "
             "Role and RoleBinding as in k8s/rbac.yaml)%s",
             ns, quote);
  } else if (status == 404) {
    snprintf(errmsg, DISCOVERY_ERRMSG_MAX,
             "HTTP 404: not found: is '%s' a namespace and the URL the "
             "Kubernetes API?%s",
             ns, quote);
  } else {
    snprintf(errmsg, DISCOVERY_ERRMSG_MAX, "HTTP %ld from the API server%s",
             status, quote);
    rv = SYNOD_EUNAVAILABLE;
  }
  json_decref(root);
  return rv;
}
