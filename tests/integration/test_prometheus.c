/* A real Prometheus (Debian's) scrapes three real synodd processes every
 * second, with a configuration this test writes; the test then asks
 * Prometheus' own HTTP API: every target is up; exactly one replica has
 * synod_is_leader 1; the counter-add request counter grew after a burst of
 * adds; a latency histogram's buckets are cumulative and end in +Inf with
 * the count. `promtool check metrics` passes on each replica's /metrics.
 * Exit 77 (skipped) without prometheus or promtool. */
#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "synod.h"

#define WAIT_MS 60000

struct buf {
  char *p;
  size_t len;
};

static size_t buf_write(char *p, size_t size, size_t n, void *arg) {
  struct buf *b = arg;
  char *q = realloc(b->p, b->len + size * n + 1);
  if (q == NULL) {
    return 0;
  }
  memcpy(q + b->len, p, size * n);
  b->p = q;
  b->len += size * n;
  b->p[b->len] = '\0';
  return size * n;
}

/* GET url; returns the HTTP status (0 if unreachable); *body malloc'd. */
static long http_get(const char *url, char **body) {
  struct buf b = {calloc(1, 1), 0};
  long code = 0;
  CURL *h = curl_easy_init();
  CHECK(h != NULL && b.p != NULL, "curl_easy_init");
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, buf_write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
  if (curl_easy_perform(h) == CURLE_OK) {
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  }
  curl_easy_cleanup(h);
  *body = b.p;
  return code;
}

/* --------------------------------------------------------- prometheus */

struct prom {
  char address[32];
  char dir[PATH_MAX];
  pid_t pid;
};

static void prom_start(struct prom *p, const struct cluster *c) {
  char cfg[PATH_MAX + 32], data[PATH_MAX + 32], log[PATH_MAX + 32];
  char flag_cfg[PATH_MAX + 64], flag_data[PATH_MAX + 64], flag_addr[64];
  test_tmpdir("prometheus", p->dir, sizeof p->dir);
  snprintf(cfg, sizeof cfg, "%s/prometheus.yml", p->dir);
  snprintf(data, sizeof data, "%s/data", p->dir);
  snprintf(log, sizeof log, "%s/prometheus.log", p->dir);
  FILE *f = fopen(cfg, "w");
  CHECK(f != NULL, "write %s", cfg);
  fprintf(f,
          "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
          "scrape_configs:\n  - job_name: synod\n    static_configs:\n"
          "      - targets: ['%s', '%s', '%s']\n",
          c->nodes[0].http, c->nodes[1].http, c->nodes[2].http);
  fclose(f);
  /* A port of our own: the replicas' ports + 3 are unused by the harness
   * (each replica takes client, peer, http). */
  unsigned port = (unsigned)atoi(strrchr(c->nodes[2].http, ':') + 1) + 3;
  snprintf(p->address, sizeof p->address, "127.0.0.1:%u", port);
  snprintf(flag_cfg, sizeof flag_cfg, "--config.file=%s", cfg);
  snprintf(flag_data, sizeof flag_data, "--storage.tsdb.path=%s", data);
  snprintf(flag_addr, sizeof flag_addr, "--web.listen-address=%s", p->address);
  char *argv[] = {"prometheus", flag_cfg, flag_data, flag_addr, NULL};
  p->pid = test_spawn(argv, log);
}

/* Runs an instant query; returns the "result" array (caller decrefs the
 * root via *root), or NULL while Prometheus cannot answer. */
static json_t *prom_query(const struct prom *p, const char *q, json_t **root) {
  char url[1024], *body;
  char *esc = curl_easy_escape(NULL, q, 0);
  snprintf(url, sizeof url, "http://%s/api/v1/query?query=%s", p->address, esc);
  curl_free(esc);
  long code = http_get(url, &body);
  *root = code == 200 ? json_loads(body, 0, NULL) : NULL;
  free(body);
  json_t *data = json_object_get(*root, "data");
  return json_object_get(data, "result");
}

/* The value of the query's single sample, or NAN when there is not
 * exactly one. */
static double prom_scalar(const struct prom *p, const char *q) {
  json_t *root;
  json_t *res = prom_query(p, q, &root);
  double v = NAN;
  if (json_array_size(res) == 1) {
    json_t *val = json_object_get(json_array_get(res, 0), "value");
    v = strtod(json_string_value(json_array_get(val, 1)), NULL);
  }
  json_decref(root);
  return v;
}

/* Waits until the query's single value satisfies cmp(v, want). */
static double prom_wait(const struct prom *p, const char *q, double want,
                        bool at_least) {
  uint64_t deadline = test_now_ms() + WAIT_MS;
  double v = NAN;
  while (test_now_ms() < deadline) {
    v = prom_scalar(p, q);
    if (!isnan(v) && (at_least ? v >= want : v == want)) {
      return v;
    }
    usleep(200 * 1000);
  }
  CHECK(false, "Prometheus: %s = %g after %d s, want %s%g", q, v,
        WAIT_MS / 1000, at_least ? ">= " : "", want);
  return v;
}

/* ---------------------------------------------------------------- checks */

static void check_promtool(const struct cluster *c) {
  for (int i = 0; i < c->n; i++) {
    char url[96], path[PATH_MAX + 32], cmd[2 * PATH_MAX + 64], *body;
    snprintf(url, sizeof url, "http://%s/metrics", c->nodes[i].http);
    CHECK(http_get(url, &body) == 200, "GET %s", url);
    snprintf(path, sizeof path, "%s/metrics-%d.txt", c->dir, i);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL, "write %s", path);
    fputs(body, f);
    fclose(f);
    free(body);
    snprintf(cmd, sizeof cmd, "promtool check metrics < '%s'", path);
    snprintf(path, sizeof path, "%s/promtool-%d.out", c->dir, i);
    int rv = test_sh(cmd, path, 30000);
    char *said = test_slurp(path);
    CHECK(rv == 0, "promtool check metrics on %s: exit %d\n%s",
          c->nodes[i].name, rv, said);
    free(said);
  }
  printf("ok promtool check metrics on 3 replicas\n");
}

static void adds(const struct cluster *c, int n) {
  struct synod_options o;
  struct synod_client *cl;
  synod_options_init(&o);
  o.endpoints = c->endpoints;
  o.client_name = "prometheus test";
  CHECK(synod_client_new(&o, &cl) == 0, "%s", synod_client_errmsg());
  for (int i = 0; i < n; i++) {
    CHECK(synod_counter_add(cl, "scraped", 1, 0, NULL) == 0, "add %d: %s", i,
          synod_client_errmsg());
  }
  synod_client_free(cl);
}

/* Buckets of one series, by le: cumulative, ending in +Inf = _count. */
static void check_histogram(const struct prom *p) {
  json_t *root;
  json_t *res = prom_query(
      p, "synod_request_duration_seconds_bucket{op=\"counter_add\"}", &root);
  CHECK(json_array_size(res) > 0, "no counter_add duration buckets");
  char instance[64];
  snprintf(instance, sizeof instance, "%s",
           json_string_value(json_object_get(
               json_object_get(json_array_get(res, 0), "metric"), "instance")));
  double prev_le = -1, prev_v = -1, inf_v = NAN;
  size_t seen = 0;
  /* Prometheus returns the series in label order, which for le strings
   * is not numeric: sort by le as numbers first. */
  double les[64], vs[64];
  for (size_t i = 0; i < json_array_size(res) && seen < 64; i++) {
    json_t *s = json_array_get(res, i);
    json_t *m = json_object_get(s, "metric");
    if (strcmp(json_string_value(json_object_get(m, "instance")), instance)) {
      continue;
    }
    const char *le = json_string_value(json_object_get(m, "le"));
    les[seen] = strcmp(le, "+Inf") == 0 ? INFINITY : strtod(le, NULL);
    vs[seen] = strtod(
        json_string_value(json_array_get(json_object_get(s, "value"), 1)),
        NULL);
    seen++;
  }
  for (size_t i = 1; i < seen; i++) { /* insertion sort by le */
    for (size_t k = i; k > 0 && les[k - 1] > les[k]; k--) {
      double t = les[k];
      les[k] = les[k - 1];
      les[k - 1] = t;
      t = vs[k];
      vs[k] = vs[k - 1];
      vs[k - 1] = t;
    }
  }
  for (size_t i = 0; i < seen; i++) {
    CHECK(les[i] > prev_le && vs[i] >= prev_v,
          "bucket le=%g holds %g after le=%g with %g: not cumulative", les[i],
          vs[i], prev_le, prev_v);
    prev_le = les[i];
    prev_v = vs[i];
  }
  inf_v = seen > 0 && isinf(les[seen - 1]) ? vs[seen - 1] : NAN;
  char q[256];
  snprintf(q, sizeof q,
           "synod_request_duration_seconds_count{op=\"counter_add\","
           "instance=\"%s\"}",
           instance);
  double count = prom_scalar(p, q);
  CHECK(seen >= 10 && !isnan(inf_v) && inf_v == count,
        "%zu buckets; +Inf %g, _count %g", seen, inf_v, count);
  json_decref(root);
  printf("ok histogram: %zu buckets on %s, cumulative, +Inf = count = %g\n",
         seen, instance, count);
}

int main(void) {
  char synodd[PATH_MAX];
  cluster_synodd_or_skip(synodd, sizeof synodd);
  if (test_sh("command -v prometheus && command -v promtool", "/dev/null",
              10000) != 0) {
    printf("skipped: prometheus or promtool not installed "
           "(scripts/deps.sh --test installs Debian's prometheus)\n");
    return SKIP_EXIT;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  struct cluster c;
  cluster_start(&c, 3, synodd);
  cluster_wait_leader(&c, 20000);
  check_promtool(&c);
  struct prom p;
  prom_start(&p, &c);
  prom_wait(&p, "count(up{job=\"synod\"} == 1)", 3, false);
  printf("ok Prometheus scrapes 3 targets\n");
  prom_wait(&p, "count(synod_is_leader == 1)", 1, false);
  prom_wait(&p, "count(synod_is_leader)", 3, false);
  printf("ok exactly one replica has synod_is_leader 1\n");
  adds(&c, 10); /* so the series exist */
  double before = prom_wait(
      &p, "sum(synod_requests_total{op=\"counter_add\",code=\"SYNOD_OK\"})", 10,
      true);
  adds(&c, 200);
  double after = prom_wait(
      &p, "sum(synod_requests_total{op=\"counter_add\",code=\"SYNOD_OK\"})",
      before + 200, true);
  printf("ok counter_add requests %g -> %g after 200 adds\n", before, after);
  check_histogram(&p);
  kill(p.pid, SIGTERM);
  test_wait(p.pid, 30000, "prometheus");
  cluster_stop(&c);
  printf("ok prometheus\n");
  return 0;
}
