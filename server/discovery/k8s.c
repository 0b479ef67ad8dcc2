/* Kubernetes API discovery: GET the pods of our StatefulSet with the
 * service account's token, verifying the API server with its CA.
 *
 * Why a worker thread (uv_queue_work) with a blocking easy request rather
 * than libcurl's multi interface on the loop: a round is one request every
 * few seconds, and the blocking version keeps the TLS handshake, the token
 * and CA file reads and the JSON parsing off the loop in a few lines, where
 * the multi-uv pattern needs socket and timer plumbing of its own for no
 * gain at this rate. The cost is one of libuv's pool threads for at most
 * --k8s-timeout; discovery_stop aborts a transfer through the progress
 * callback, which libcurl calls at least once a second. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <curl/curl.h>

#include "discovery_int.h"
#include "log.h"
#include "synod.h"

#define K8S_TOKEN_MAX 16384

/* ---------------------------------------------------------------- init */

/* Reads a small file, trimming trailing whitespace. Returns 0 or an errno. */
static int k8s_read_file(const char *path, char *out, size_t len) {
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    return errno;
  }
  size_t n = fread(out, 1, len - 1, f);
  int err = ferror(f) ? EIO : 0;
  fclose(f);
  while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' ' ||
                   out[n - 1] == '\r' || out[n - 1] == '\t')) {
    n--;
  }
  out[n] = '\0';
  return err;
}

/* The API's base URL: the flag, else the in-cluster Service variables. */
static int k8s_api_base(const struct discovery_options *o, char *out,
                        size_t len, char *errmsg) {
  const char *host = getenv("KUBERNETES_SERVICE_HOST");
  const char *port = getenv("KUBERNETES_SERVICE_PORT");
  if (o->k8s_api != NULL && o->k8s_api[0] != '\0') {
    snprintf(out, len, "%s", o->k8s_api);
    return 0;
  }
  if (host == NULL || host[0] == '\0') {
    snprintf(errmsg, DISCOVERY_ERRMSG_MAX,
             "discovery kubernetes: KUBERNETES_SERVICE_HOST is not set (not "
             "running in a pod?): set --k8s-api");
    return SYNOD_EINVAL;
  }
  snprintf(out, len, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s",
           host, port && port[0] ? port : "443");
  return 0;
}

/* The namespace: the flag, else the service account's namespace file. */
static int k8s_namespace(struct discovery *d, const struct discovery_options *o,
                         char *errmsg) {
  const char *file = DISCOVERY_SA_DIR "/namespace";
  int err;
  if (o->k8s_namespace != NULL && o->k8s_namespace[0] != '\0') {
    snprintf(d->ns, sizeof d->ns, "%s", o->k8s_namespace);
    return 0;
  }
  if ((err = k8s_read_file(file, d->ns, sizeof d->ns)) != 0 ||
      d->ns[0] == '\0') {
    snprintf(errmsg, DISCOVERY_ERRMSG_MAX,
             "discovery kubernetes: no --k8s-namespace and %s: %s", file,
             err ? strerror(err) : "empty");
    return SYNOD_EINVAL;
  }
  return 0;
}

int discovery_k8s_init(struct discovery *d, const struct discovery_options *o,
                       char *errmsg) {
  char api[DISCOVERY_URL_MAX / 2];
  const char *sel = o->k8s_label_selector ? o->k8s_label_selector
                                          : "app.kubernetes.io/name=synod";
  int rv = k8s_api_base(o, api, sizeof api, errmsg);
  if (rv == 0) {
    rv = k8s_namespace(d, o, errmsg);
  }
  if (rv != 0) {
    return rv;
  }
  if (discovery_k8s_url(api, d->ns, sel, d->url, sizeof d->url) != 0) {
    snprintf(errmsg, DISCOVERY_ERRMSG_MAX,
             "discovery kubernetes: the URL for API '%.300s', namespace "
             "'%.100s', selector '%.300s' is over %d bytes",
             api, d->ns, sel, DISCOVERY_URL_MAX);
    return SYNOD_EINVAL;
  }
  snprintf(d->token_file, sizeof d->token_file, "%s",
           o->k8s_token_file ? o->k8s_token_file : DISCOVERY_SA_DIR "/token");
  snprintf(d->ca_file, sizeof d->ca_file, "%s",
           o->k8s_ca_file ? o->k8s_ca_file : DISCOVERY_SA_DIR "/ca.crt");
  d->interval_ms =
      o->k8s_interval_ms ? o->k8s_interval_ms : DISCOVERY_INTERVAL_MS;
  /* Once, on the loop thread, before any worker uses libcurl. */
  static bool curl_ready;
  if (!curl_ready && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    snprintf(errmsg, DISCOVERY_ERRMSG_MAX, "discovery: curl_global_init");
    return SYNOD_EINVAL;
  }
  curl_ready = true;
  return 0;
}

/* ------------------------------------------------------ worker thread */

struct k8s_body {
  char *data;
  size_t len;
  bool too_big;
};

static size_t k8s_write_cb(char *ptr, size_t size, size_t nmemb, void *arg) {
  struct k8s_body *b = arg;
  size_t n = size * nmemb;
  if (b->len + n > DISCOVERY_BODY_MAX) {
    b->too_big = true;
    return 0; /* aborts the transfer */
  }
  char *grown = realloc(b->data, b->len + n + 1);
  if (grown == NULL) {
    return 0;
  }
  memcpy(grown + b->len, ptr, n);
  b->data = grown;
  b->len += n;
  b->data[b->len] = '\0';
  return n;
}

static int k8s_progress_cb(void *arg, curl_off_t dt, curl_off_t dn,
                           curl_off_t ut, curl_off_t un) {
  struct discovery *d = arg;
  (void)dt, (void)dn, (void)ut, (void)un;
  return atomic_load(&d->abort) ? 1 : 0;
}

/* Reads the token, every round, so a rotated token (projected tokens are
 * replaced about hourly) is picked up; notes whether the file changed. */
static int k8s_token(struct discovery *d, char *token, size_t len) {
  struct discovery_round *r = &d->round;
  struct stat st;
  int err = stat(d->token_file, &st);
  if (err == 0) {
    err = k8s_read_file(d->token_file, token, len);
  } else {
    err = errno;
  }
  if (err != 0 || token[0] == '\0') {
    snprintf(r->errmsg, sizeof r->errmsg, "token file %.500s: %s",
             d->token_file, err ? strerror(err) : "empty");
    return SYNOD_EINVAL;
  }
  r->token_rotated =
      d->token_seen && (st.st_mtim.tv_sec != d->token_mtime.tv_sec ||
                        st.st_mtim.tv_nsec != d->token_mtime.tv_nsec);
  d->token_mtime = st.st_mtim;
  d->token_seen = true;
  return 0;
}

/* Says why a transfer failed: unreachable, TLS, or other. */
static void k8s_curl_error(struct discovery *d, CURLcode cc, const char *detail,
                           const struct k8s_body *b) {
  struct discovery_round *r = &d->round;
  const char *why = detail[0] ? detail : curl_easy_strerror(cc);
  bool tls = cc == CURLE_PEER_FAILED_VERIFICATION ||
             cc == CURLE_SSL_CACERT_BADFILE || cc == CURLE_SSL_CONNECT_ERROR;
  bool down = cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
              cc == CURLE_OPERATION_TIMEDOUT || cc == CURLE_RECV_ERROR ||
              cc == CURLE_SEND_ERROR || cc == CURLE_GOT_NOTHING;
  if (b->too_big) {
    snprintf(r->errmsg, sizeof r->errmsg, "GET %.500s: reply over %u bytes",
             d->url, DISCOVERY_BODY_MAX);
  } else if (tls) {
    snprintf(r->errmsg, sizeof r->errmsg,
             "GET %.300s: TLS with the API server failed (CA file %.200s): "
             "%.300s",
             d->url, d->ca_file, why);
  } else {
    snprintf(r->errmsg, sizeof r->errmsg, "GET %.300s: %s: %.500s", d->url,
             down ? "API server unreachable" : "request failed", why);
  }
}

/* One GET of the pod list; fills d->round. Runs on a pool thread. */
static void k8s_get(struct discovery *d, const char *token) {
  struct discovery_round *r = &d->round;
  struct k8s_body b = {0};
  char auth[K8S_TOKEN_MAX + 32], detail[CURL_ERROR_SIZE] = "";
  long status = 0;
  CURL *h = curl_easy_init();
  struct curl_slist *hdr = NULL;
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
  hdr = curl_slist_append(hdr, auth);
  hdr = curl_slist_append(hdr, "Accept: application/json");
  if (h == NULL || hdr == NULL) {
    snprintf(r->errmsg, sizeof r->errmsg, "curl_easy_init: out of memory");
    r->rv = SYNOD_ENOMEM;
    goto out;
  }
  curl_easy_setopt(h, CURLOPT_URL, d->url);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
  curl_easy_setopt(h, CURLOPT_CAINFO, d->ca_file);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* we are on a thread */
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)d->timeout_ms);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)d->timeout_ms / 2);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, detail);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, k8s_write_cb);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, k8s_progress_cb);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, d);
  CURLcode cc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  if (cc != CURLE_OK) {
    k8s_curl_error(d, cc, detail, &b);
    r->rv = SYNOD_EUNAVAILABLE;
  } else if (status != 200) {
    r->rv = discovery_k8s_http_error(status, b.data, b.len, d->ns,
                                     d->token_file, r->errmsg);
  } else {
    r->rv = discovery_k8s_parse(b.data ? b.data : "", b.len, d->peer_port,
                                r->candidates, DISCOVERY_CANDIDATES_MAX,
                                &r->candidates_n, r->errmsg);
  }
  if (r->rv != 0 && cc == CURLE_OK) {
    char inner[DISCOVERY_ERRMSG_MAX];
    memcpy(inner, r->errmsg, sizeof inner);
    snprintf(r->errmsg, sizeof r->errmsg, "GET %.300s: %.700s", d->url, inner);
  }
out:
  curl_slist_free_all(hdr);
  curl_easy_cleanup(h);
  free(b.data);
}

static void k8s_work_cb(uv_work_t *w) {
  struct discovery *d = w->data;
  char *token = malloc(K8S_TOKEN_MAX);
  d->round.rv = token ? k8s_token(d, token, K8S_TOKEN_MAX) : SYNOD_ENOMEM;
  if (token == NULL) {
    snprintf(d->round.errmsg, sizeof d->round.errmsg, "out of memory");
  }
  if (d->round.rv == 0) {
    k8s_get(d, token);
  }
  free(token);
}

static void k8s_after_work_cb(uv_work_t *w, int status) {
  struct discovery *d = w->data;
  (void)status; /* UV_ECANCELED only after discovery_stop: ignored there */
  discovery_round_done(d);
}

void discovery_k8s_round(struct discovery *d) {
  memset(&d->round, 0, sizeof d->round);
  int rv = uv_queue_work(d->loop, &d->work, k8s_work_cb, k8s_after_work_cb);
  if (rv != 0) {
    d->round.rv = SYNOD_EIO;
    snprintf(d->round.errmsg, sizeof d->round.errmsg, "uv_queue_work: %s",
             uv_strerror(rv));
    discovery_round_done(d);
  }
}
