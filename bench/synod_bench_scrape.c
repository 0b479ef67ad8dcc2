/* synod-bench --scrape-ms: a Prometheus-like scraper beside the load, so
 * a run measures what scraping /metrics costs the replicas. One thread
 * fetches every replica's /metrics each interval with libcurl. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "synod_bench.h"

struct bench_scraper {
  const struct bench_cluster *c;
  int interval_ms;
  volatile int stop;
  pthread_t thread;
  struct bench_scrape_stats st;
  struct bench_hist lat; /* us */
  size_t bytes;          /* of the current fetch */
};

static size_t scrape_write(char *p, size_t size, size_t n, void *arg) {
  (void)p;
  struct bench_scraper *s = arg;
  s->bytes += size * n;
  return size * n;
}

static void scrape_one(struct bench_scraper *s, CURL *h, int i) {
  char url[64];
  long code = 0;
  snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", s->c->http_port[i]);
  curl_easy_setopt(h, CURLOPT_URL, url);
  s->bytes = 0;
  uint64_t t0 = bench_now_ns();
  CURLcode rc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  if (rc != CURLE_OK || code != 200) {
    s->st.failed++;
    return;
  }
  bench_hist_record(&s->lat, (bench_now_ns() - t0) / 1000);
  s->st.scrapes++;
  s->st.bytes_last = s->bytes;
}

static void *scrape_main(void *arg) {
  struct bench_scraper *s = arg;
  CURL *h = curl_easy_init();
  if (h == NULL) {
    return NULL;
  }
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, scrape_write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  uint64_t next = bench_now_ns();
  while (!s->stop && !bench_interrupted) {
    for (int i = 0; i < BENCH_REPLICAS; i++) {
      scrape_one(s, h, i);
    }
    next += (uint64_t)s->interval_ms * 1000000u;
    while (!s->stop && bench_now_ns() < next) {
      struct timespec ts = {0, 10 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
  }
  curl_easy_cleanup(h);
  return NULL;
}

int bench_scrape_start(const struct bench_cluster *c, int interval_ms,
                       struct bench_scraper **out) {
  struct bench_scraper *s = calloc(1, sizeof *s);
  if (s == NULL) {
    return -1;
  }
  s->c = c;
  s->interval_ms = interval_ms;
  if (pthread_create(&s->thread, NULL, scrape_main, s) != 0) {
    free(s);
    return -1;
  }
  *out = s;
  return 0;
}

void bench_scrape_stop(struct bench_scraper *s,
                       struct bench_scrape_stats *out) {
  if (s == NULL) {
    return;
  }
  s->stop = 1;
  pthread_join(s->thread, NULL);
  *out = s->st;
  out->p50_us = bench_hist_percentile(&s->lat, 0.5);
  out->max_us = bench_hist_percentile(&s->lat, 1.0);
  free(s);
}
