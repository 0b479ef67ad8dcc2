/* Discovery: PodList parsing in the Kubernetes API's exact shape, API error
 * classification, URLs, durations, backoff, DNS address formatting, option
 * checks, and DNS rounds on a real loop (localhost, an NXDOMAIN). */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "discovery.h"
#include "synod.h"

#define DELETING ",\"deletionTimestamp\":\"2026-11-21T17:10:00Z\""

static char *podlist(const char *const *pods, size_t n) {
  size_t len = 256;
  for (size_t i = 0; i < n; i++) {
    len += strlen(pods[i]) + 1;
  }
  char *s = malloc(len);
  strcpy(s, "{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"metadata\":"
            "{\"resourceVersion\":\"4712\"},\"items\":[");
  for (size_t i = 0; i < n; i++) {
    strcat(s, i ? "," : "");
    strcat(s, pods[i]);
  }
  strcat(s, "]}");
  return s;
}

/* A pod as `kubectl get pods -o json` shows it (fields trimmed to those
 * that vary); phase, IP, deletion and readiness are the knobs. */
static char *pod(const char *name, const char *phase, const char *ip,
                 bool deleting, bool ready) {
  char *s = malloc(4096);
  char ipf[128] = "", del[64] = "";
  if (ip != NULL) {
    snprintf(ipf, sizeof ipf, ",\"podIP\":\"%s\",\"podIPs\":[{\"ip\":\"%s\"}]",
             ip, ip);
  }
  if (deleting) {
    snprintf(del, sizeof del, "%s", DELETING);
  }
  snprintf(s, 4096,
           "{\"metadata\":{\"name\":\"%s\",\"generateName\":\"synod-\","
           "\"namespace\":\"prod\",\"uid\":\"6c1f7e4e\",\"resourceVersion\":"
           "\"4711\",\"creationTimestamp\":\"2026-11-21T17:00:00Z\"%s,"
           "\"labels\":{\"app.kubernetes.io/name\":\"synod\"},"
           "\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":"
           "\"StatefulSet\",\"name\":\"synod\",\"uid\":\"x\",\"controller\":"
           "true,\"blockOwnerDeletion\":true}]},\"spec\":{\"containers\":[{"
           "\"name\":\"synodd\",\"image\":\"synod:0.1\"}],\"hostname\":\"%s\","
           "\"subdomain\":\"synod-peers\"},\"status\":{\"phase\":\"%s\","
           "\"conditions\":[{\"type\":\"Ready\",\"status\":\"%s\","
           "\"lastProbeTime\":null}],\"hostIP\":\"10.0.0.7\"%s,"
           "\"containerStatuses\":[{\"name\":\"synodd\",\"state\":{"
           "\"running\":{\"startedAt\":\"2026-11-21T17:00:02Z\"}},\"ready\":"
           "%s,\"restartCount\":0,\"started\":true}],\"qosClass\":"
           "\"Burstable\"}}",
           name, del, name, phase, ready ? "True" : "False", ipf,
           ready ? "true" : "false");
  return s;
}

static int parse(const char *body, struct discovery_candidate *c, size_t max,
                 size_t *n, char *err) {
  return discovery_k8s_parse(body, strlen(body), 7701, c, max, n, err);
}

START_TEST(podlist_only_running_pods_with_an_ip_not_deleting_are_candidates) {
  char *pods[] = {
      pod("synod-2", "Running", "10.1.0.12", false, true),
      pod("synod-0", "Running", "10.1.0.10", false, true),
      pod("synod-1", "Running", "10.1.0.11", false, false), /* not ready */
      pod("synod-3", "Pending", NULL, false, false),        /* scheduled */
      pod("synod-4", "Running", NULL, false, false),        /* no IP yet */
      pod("synod-5", "Running", "10.1.0.15", true, true),   /* deleting */
      pod("synod-6", "Succeeded", "10.1.0.16", false, false),
      pod("synod-7", "Failed", "10.1.0.17", false, false),
  };
  size_t k = sizeof pods / sizeof pods[0], n;
  char *body = podlist((const char *const *)pods, k);
  struct discovery_candidate c[8];
  char err[DISCOVERY_ERRMSG_MAX];
  ck_assert_int_eq(parse(body, c, 8, &n, err), 0);
  ck_assert_uint_eq(n, 3);
  ck_assert_str_eq(c[0].name, "synod-0");
  ck_assert_str_eq(c[0].address, "10.1.0.10:7701");
  ck_assert_str_eq(c[1].name, "synod-1"); /* not ready: still a candidate */
  ck_assert_str_eq(c[1].address, "10.1.0.11:7701");
  ck_assert_str_eq(c[2].name, "synod-2");
  for (size_t i = 0; i < k; i++) {
    free(pods[i]);
  }
  free(body);
}
END_TEST

START_TEST(podlist_ipv6_pod_address_is_bracketed) {
  char *p = pod("synod-0", "Running", "fd00::a", false, true);
  char *body = podlist((const char *const *)&p, 1);
  struct discovery_candidate c[1];
  size_t n;
  char err[DISCOVERY_ERRMSG_MAX];
  ck_assert_int_eq(parse(body, c, 1, &n, err), 0);
  ck_assert_str_eq(c[0].address, "[fd00::a]:7701");
  free(p);
  free(body);
}
END_TEST

START_TEST(podlist_with_no_items_gives_no_candidates) {
  struct discovery_candidate c[1];
  size_t n = 9;
  char err[DISCOVERY_ERRMSG_MAX];
  ck_assert_int_eq(parse("{\"kind\":\"PodList\",\"apiVersion\":\"v1\","
                         "\"metadata\":{},\"items\":[]}",
                         c, 1, &n, err),
                   0);
  ck_assert_uint_eq(n, 0);
  ck_assert_int_eq(
      parse("{\"kind\":\"PodList\",\"items\":null}", c, 1, &n, err), 0);
  ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(podlist_malformed_json_says_where) {
  struct discovery_candidate c[1];
  size_t n;
  char err[DISCOVERY_ERRMSG_MAX];
  ck_assert_int_eq(parse("{\"kind\":\"PodList\",\"items\":[{]}", c, 1, &n, err),
                   SYNOD_EMALFORMED);
  ck_assert_ptr_nonnull(strstr(err, "malformed JSON"));
  ck_assert_ptr_nonnull(strstr(err, "line 1 column"));
}
END_TEST

START_TEST(podlist_of_another_kind_is_malformed) {
  struct discovery_candidate c[1];
  size_t n;
  char err[DISCOVERY_ERRMSG_MAX];
  ck_assert_int_eq(
      parse("{\"kind\":\"Status\",\"status\":\"Failure\"}", c, 1, &n, err),
      SYNOD_EMALFORMED);
  ck_assert_ptr_nonnull(strstr(err, "got Status"));
  ck_assert_int_eq(parse("[1,2]", c, 1, &n, err), SYNOD_EMALFORMED);
  ck_assert_int_eq(parse("{\"kind\":\"PodList\",\"items\":{}}", c, 1, &n, err),
                   SYNOD_EMALFORMED);
  ck_assert_ptr_nonnull(strstr(err, "'items' is not an array"));
}
END_TEST

START_TEST(podlist_item_without_a_name_is_malformed) {
  struct discovery_candidate c[1];
  size_t n;
  char err[DISCOVERY_ERRMSG_MAX];
  ck_assert_int_eq(parse("{\"kind\":\"PodList\",\"items\":[{\"metadata\":{},"
                         "\"status\":{\"phase\":\"Running\",\"podIP\":"
                         "\"10.1.0.1\"}}]}",
                         c, 1, &n, err),
                   SYNOD_EMALFORMED);
  ck_assert_ptr_nonnull(strstr(err, "items[0] has no metadata.name"));
  ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(podlist_over_the_maximum_is_refused) {
  char *pods[] = {pod("synod-0", "Running", "10.1.0.10", false, true),
                  pod("synod-1", "Running", "10.1.0.11", false, true)};
  char *body = podlist((const char *const *)pods, 2);
  struct discovery_candidate c[1];
  size_t n;
  char err[DISCOVERY_ERRMSG_MAX];
  ck_assert_int_eq(parse(body, c, 1, &n, err), SYNOD_ELIMIT);
  ck_assert_ptr_nonnull(strstr(err, "narrow the label selector"));
  ck_assert_uint_eq(n, 0);
  free(pods[0]);
  free(pods[1]);
  free(body);
}
END_TEST

/* The API's real 403 Status object for a ServiceAccount without RBAC. */
static const char forbidden[] =
    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":"
    "\"Failure\",\"message\":\"pods is forbidden: User "
    "\\\"system:serviceaccount:prod:synod\\\" cannot list resource "
    "\\\"pods\\\" in API group \\\"\\\" in the namespace \\\"prod\\\"\","
    "\"reason\":\"Forbidden\",\"details\":{\"kind\":\"pods\"},\"code\":403}";

START_TEST(http_403_names_the_missing_rbac_permission_and_quotes_the_api) {
  char err[DISCOVERY_ERRMSG_MAX];
  ck_assert_int_eq(discovery_k8s_http_error(
                       403, forbidden, sizeof forbidden - 1, "prod", "/t", err),
                   SYNOD_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "HTTP 403"));
  ck_assert_ptr_nonnull(
      strstr(err, "'get' and 'list' on 'pods' in namespace 'prod'"));
  ck_assert_ptr_nonnull(strstr(err, "the API says: \"pods is forbidden: User "
                                    "\"system:serviceaccount:prod:synod\""));
}
END_TEST

START_TEST(http_401_says_the_token_was_rejected_and_names_the_file) {
  char err[DISCOVERY_ERRMSG_MAX];
  const char *body = "{\"kind\":\"Status\",\"message\":\"Unauthorized\","
                     "\"code\":401}";
  ck_assert_int_eq(discovery_k8s_http_error(401, body, strlen(body), "prod",
                                            "/var/run/token", err),
                   SYNOD_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "token rejected"));
  ck_assert_ptr_nonnull(strstr(err, "/var/run/token"));
  ck_assert_ptr_nonnull(strstr(err, "\"Unauthorized\""));
}
END_TEST

START_TEST(http_other_errors_are_retryable_and_tolerate_non_json) {
  char err[DISCOVERY_ERRMSG_MAX];
  ck_assert_int_eq(
      discovery_k8s_http_error(503, "<html>", 6, "prod", "/t", err),
      SYNOD_EUNAVAILABLE);
  ck_assert_str_eq(err, "HTTP 503 from the API server");
  ck_assert_int_eq(discovery_k8s_http_error(404, NULL, 0, "nope", "/t", err),
                   SYNOD_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "'nope' a namespace"));
}
END_TEST

START_TEST(url_percent_encodes_the_selector) {
  char url[256];
  ck_assert_int_eq(discovery_k8s_url("https://10.96.0.1:443/", "prod",
                                     "app.kubernetes.io/name=synod", url,
                                     sizeof url),
                   0);
  ck_assert_str_eq(url, "https://10.96.0.1:443/api/v1/namespaces/prod/pods"
                        "?labelSelector=app.kubernetes.io%2Fname%3Dsynod");
  ck_assert_int_eq(discovery_k8s_url("https://h", "ns", "", url, sizeof url),
                   0);
  ck_assert_str_eq(url, "https://h/api/v1/namespaces/ns/pods");
  ck_assert_int_eq(discovery_k8s_url("https://h", "ns", "a=b", url, 20),
                   SYNOD_ETOOBIG);
}
END_TEST

START_TEST(durations_and_methods_parse) {
  uint32_t ms;
  enum discovery_method m;
  ck_assert_int_eq(discovery_duration_parse("500ms", &ms), 0);
  ck_assert_uint_eq(ms, 500);
  ck_assert_int_eq(discovery_duration_parse("5s", &ms), 0);
  ck_assert_uint_eq(ms, 5000);
  ck_assert_int_eq(discovery_duration_parse("2", &ms), 0);
  ck_assert_uint_eq(ms, 2000);
  ck_assert_int_eq(discovery_duration_parse("1m", &ms), 0);
  ck_assert_uint_eq(ms, 60000);
  ck_assert_int_eq(discovery_duration_parse("0s", &ms), SYNOD_EINVAL);
  ck_assert_int_eq(discovery_duration_parse("5h", &ms), SYNOD_EINVAL);
  ck_assert_int_eq(discovery_duration_parse("-1", &ms), SYNOD_EINVAL);
  ck_assert_int_eq(discovery_duration_parse("99999m", &ms), SYNOD_ERANGE);
  ck_assert_int_eq(discovery_method_parse("kubernetes", &m), 0);
  ck_assert_int_eq(m, DISCOVERY_KUBERNETES);
  ck_assert_int_eq(discovery_method_parse("dns", &m), 0);
  ck_assert_int_eq(m, DISCOVERY_DNS);
  ck_assert_int_eq(discovery_method_parse("k8s", &m), SYNOD_EINVAL);
}
END_TEST

START_TEST(backoff_doubles_up_to_the_ceiling_with_jitter) {
  uint64_t prng = 42;
  for (uint32_t f = 1; f <= 12; f++) {
    uint32_t base = 100u << (f - 1);
    if (base > 3000) {
      base = 3000;
    }
    uint32_t d = discovery_backoff_ms(f, 100, 3000, &prng);
    ck_assert_uint_ge(d, base / 2);
    ck_assert_uint_lt(d, base);
  }
  /* Two replicas with different seeds do not retry in lockstep. */
  uint64_t a = 1, b = 2;
  int same = 0;
  for (int i = 0; i < 20; i++) {
    same += discovery_backoff_ms(5, 100, 3000, &a) ==
            discovery_backoff_ms(5, 100, 3000, &b);
  }
  ck_assert_int_lt(same, 3);
}
END_TEST

START_TEST(addresses_format_as_candidates) {
  struct sockaddr_in v4 = {.sin_family = AF_INET};
  struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
  struct discovery_candidate c;
  inet_pton(AF_INET, "10.1.2.3", &v4.sin_addr);
  inet_pton(AF_INET6, "fd00::1", &v6.sin6_addr);
  ck_assert_int_eq(
      discovery_candidate_from_addr((struct sockaddr *)&v4, 7701, &c), 0);
  ck_assert_str_eq(c.name, "10.1.2.3");
  ck_assert_str_eq(c.address, "10.1.2.3:7701");
  ck_assert_int_eq(
      discovery_candidate_from_addr((struct sockaddr *)&v6, 7701, &c), 0);
  ck_assert_str_eq(c.address, "[fd00::1]:7701");
}
END_TEST

START_TEST(start_refuses_incomplete_options_and_says_which) {
  uv_loop_t loop;
  struct discovery *d = NULL;
  char err[DISCOVERY_ERRMSG_MAX];
  struct discovery_options o = {.method = DISCOVERY_DNS, .peer_port = 7701};
  uv_loop_init(&loop);
  ck_assert_int_eq(discovery_start(&loop, &o, NULL, NULL, &d, err),
                   SYNOD_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "--dns-name"));
  o.dns_name = "synod-peers";
  o.peer_port = 0;
  ck_assert_int_eq(discovery_start(&loop, &o, NULL, NULL, &d, err),
                   SYNOD_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "--peer-port"));
  struct discovery_options k = {.method = DISCOVERY_KUBERNETES,
                                .peer_port = 7701};
  unsetenv("KUBERNETES_SERVICE_HOST");
  ck_assert_int_eq(discovery_start(&loop, &k, NULL, NULL, &d, err),
                   SYNOD_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "KUBERNETES_SERVICE_HOST"));
  k.k8s_api = "https://127.0.0.1:1";
  k.k8s_namespace = NULL; /* and no service account mount here */
  if (access(DISCOVERY_SA_DIR "/namespace", F_OK) != 0) {
    ck_assert_int_eq(discovery_start(&loop, &k, NULL, NULL, &d, err),
                     SYNOD_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "--k8s-namespace"));
  }
  ck_assert_ptr_null(d);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/* DNS rounds on a real loop: the test stops discovery from its callback
 * (success) or from a timer (failure never calls back). */
struct dns_probe {
  struct discovery *d;
  uv_timer_t timer;
  int calls;
  char first[DISCOVERY_ADDRESS_MAX * 4];
};

static void dns_probe_cb(void *arg, const struct discovery_candidate *c,
                         size_t n) {
  struct dns_probe *p = arg;
  p->calls++;
  for (size_t i = 0; i < n; i++) {
    strcat(p->first, c[i].address);
    strcat(p->first, " ");
  }
  discovery_stop(p->d);
  uv_close((uv_handle_t *)&p->timer, NULL);
}

static void dns_probe_timer_cb(uv_timer_t *t) {
  struct dns_probe *p = t->data;
  discovery_stop(p->d);
  uv_close((uv_handle_t *)&p->timer, NULL);
}

static void dns_probe_run(const char *name, struct dns_probe *p) {
  uv_loop_t loop;
  char err[DISCOVERY_ERRMSG_MAX];
  struct discovery_options o = {.method = DISCOVERY_DNS,
                                .peer_port = 7701,
                                .dns_name = name,
                                .dns_interval_ms = 100,
                                .seed = 7};
  memset(p, 0, sizeof *p);
  uv_loop_init(&loop);
  ck_assert_int_eq(discovery_start(&loop, &o, dns_probe_cb, p, &p->d, err), 0);
  uv_timer_init(&loop, &p->timer);
  p->timer.data = p;
  uv_timer_start(&p->timer, dns_probe_timer_cb, 1500, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  discovery_free(p->d);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
}

START_TEST(dns_localhost_proposes_the_loopback_address) {
  struct dns_probe p;
  dns_probe_run("localhost", &p);
  ck_assert_int_eq(p.calls, 1);
  ck_assert_msg(strstr(p.first, "127.0.0.1:7701") != NULL ||
                    strstr(p.first, "[::1]:7701") != NULL,
                "localhost resolved to '%s'", p.first);
}
END_TEST

START_TEST(dns_nxdomain_proposes_nothing_and_keeps_retrying) {
  struct dns_probe p;
  dns_probe_run("synod-peers.invalid", &p); /* RFC 6761: never exists */
  ck_assert_int_eq(p.calls, 0);
}
END_TEST

static Suite *discovery_suite(void) {
  Suite *s = suite_create("discovery");
  TCase *t = tcase_create("pure");
  tcase_add_test(
      t, podlist_only_running_pods_with_an_ip_not_deleting_are_candidates);
  tcase_add_test(t, podlist_ipv6_pod_address_is_bracketed);
  tcase_add_test(t, podlist_with_no_items_gives_no_candidates);
  tcase_add_test(t, podlist_malformed_json_says_where);
  tcase_add_test(t, podlist_of_another_kind_is_malformed);
  tcase_add_test(t, podlist_item_without_a_name_is_malformed);
  tcase_add_test(t, podlist_over_the_maximum_is_refused);
  tcase_add_test(t,
                 http_403_names_the_missing_rbac_permission_and_quotes_the_api);
  tcase_add_test(t, http_401_says_the_token_was_rejected_and_names_the_file);
  tcase_add_test(t, http_other_errors_are_retryable_and_tolerate_non_json);
  tcase_add_test(t, url_percent_encodes_the_selector);
  tcase_add_test(t, durations_and_methods_parse);
  tcase_add_test(t, backoff_doubles_up_to_the_ceiling_with_jitter);
  tcase_add_test(t, addresses_format_as_candidates);
  suite_add_tcase(s, t);
  TCase *l = tcase_create("loop");
  tcase_set_timeout(l, 30);
  tcase_add_test(l, start_refuses_incomplete_options_and_says_which);
  tcase_add_test(l, dns_localhost_proposes_the_loopback_address);
  tcase_add_test(l, dns_nxdomain_proposes_nothing_and_keeps_retrying);
  suite_add_tcase(s, l);
  return s;
}

int main(void) {
  SRunner *r = srunner_create(discovery_suite());
  srunner_run_all(r, CK_NORMAL);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
