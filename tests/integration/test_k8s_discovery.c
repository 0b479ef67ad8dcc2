/* Discovery end to end, with real synodd processes: the Kubernetes method
 * against a fake API server over HTTPS (a CA and certificate made here
 * with the openssl CLI), its failures (403, 401, malformed JSON, API
 * unreachable, wrong CA) and token rotation; the DNS method (localhost,
 * NXDOMAIN); then three replicas that form a cluster through the
 * Kubernetes method alone, and `synodctl ready` against them. */
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster.h"
#include "synod.h"

#define WAIT_MS 20000

static char dir[PATH_MAX], api[PATH_MAX], synodd[PATH_MAX], synodctl[PATH_MAX];
static char api_url[64];

/* Writes text to dir/name atomically (rename), as kubelet swaps tokens. */
static void put(const char *d, const char *name, const char *text) {
  char path[PATH_MAX + 64], tmp[PATH_MAX + 80];
  snprintf(path, sizeof path, "%s/%s", d, name);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  CHECK(f != NULL, "open %s: %s", tmp, strerror(errno));
  fputs(text, f);
  fclose(f);
  CHECK(rename(tmp, path) == 0, "rename %s: %s", tmp, strerror(errno));
}

/* One pod in the API's JSON shape. ip NULL: no podIP field yet. */
static void pod(char *out, size_t len, const char *name, const char *phase,
                const char *ip, bool deleting, bool ready) {
  char ipf[96] = "";
  if (ip != NULL) {
    snprintf(ipf, sizeof ipf, ",\"podIP\":\"%s\",\"podIPs\":[{\"ip\":\"%s\"}]",
             ip, ip);
  }
  snprintf(out, len,
           "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"synod-test\","
           "\"labels\":{\"app.kubernetes.io/name\":\"synod\"}%s},\"spec\":{"
           "\"containers\":[{\"name\":\"synodd\",\"image\":\"synod\"}]},"
           "\"status\":{\"phase\":\"%s\",\"hostIP\":\"10.0.0.1\"%s,"
           "\"containerStatuses\":[{\"name\":\"synodd\",\"ready\":%s,"
           "\"restartCount\":0,\"state\":{\"running\":{}}}]}}",
           name,
           deleting ? ",\"deletionTimestamp\":\"2026-11-21T17:10:00Z\"" : "",
           phase, ipf, ready ? "true" : "false");
}

/* Serves a PodList of `n` pods (already formatted) with status 200. */
static void serve_pods(char pods[][1024], int n) {
  char body[8192] = "{\"kind\":\"PodList\",\"apiVersion\":\"v1\","
                    "\"metadata\":{\"resourceVersion\":\"1\"},\"items\":[";
  for (int i = 0; i < n; i++) {
    strcat(body, i ? "," : "");
    strcat(body, pods[i]);
  }
  strcat(body, "]}\n");
  put(api, "body", body);
  put(api, "status", "200\n");
}

static void make_certs(void) {
  char cmd[PATH_MAX * 2];
  snprintf(cmd, sizeof cmd,
           "cd '%s' && "
           "for ca in ca other; do openssl req -x509 -newkey ec -pkeyopt "
           "ec_paramgen_curve:prime256v1 -nodes -keyout $ca.key -out $ca.crt "
           "-days 2 -subj /CN=synod-test-$ca; done && "
           "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
           "-nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1 && "
           "printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n'"
           " > ext && openssl x509 -req -in server.csr -CA ca.crt -CAkey "
           "ca.key -CAcreateserial -out server.crt -days 2 -extfile ext",
           dir);
  char out[PATH_MAX + 16];
  snprintf(out, sizeof out, "%s/openssl.log", dir);
  CHECK(test_sh(cmd, out, 60000) == 0, "openssl failed: see %s", out);
}

static void start_api(void) {
  char fake[PATH_MAX], crt[PATH_MAX + 16], key[PATH_MAX + 16];
  char port[PATH_MAX + 16], log[PATH_MAX + 32];
  test_binary("FAKE_K8S_API", "fake_k8s_api", fake, sizeof fake);
  snprintf(api, sizeof api, "%.4000s/api", dir);
  mkdir(api, 0755);
  snprintf(crt, sizeof crt, "%s/server.crt", dir);
  snprintf(key, sizeof key, "%s/server.key", dir);
  snprintf(port, sizeof port, "%s/port", api);
  snprintf(log, sizeof log, "%s/fake_k8s_api.log", dir);
  char *argv[] = {fake, api, crt, key, NULL};
  test_spawn(argv, log);
  test_wait_file(port, "\n", 10000);
  char *p = test_slurp(port);
  snprintf(api_url, sizeof api_url, "https://127.0.0.1:%d", atoi(p));
  free(p);
}

struct replica {
  char name[16], client[32], peer[32], data[PATH_MAX], log[PATH_MAX];
  pid_t pid;
};

/* Starts synodd --discovery kubernetes (or the extra flags' method). */
static void replica_start(struct replica *r, const char *name, int ip_last,
                          unsigned client_port, unsigned peer_port,
                          char *const extra[]) {
  char *argv[48];
  int k = 0;
  snprintf(r->name, sizeof r->name, "%s", name);
  snprintf(r->client, sizeof r->client, "127.0.0.%d:%u", ip_last, client_port);
  snprintf(r->peer, sizeof r->peer, "127.0.0.%d:%u", ip_last, peer_port);
  snprintf(r->data, sizeof r->data, "%.4000s/%s-%u", dir, name, client_port);
  snprintf(r->log, sizeof r->log, "%.4000s/%s-%u.log", dir, name, client_port);
  char *base[] = {
      synodd,     "--name",      r->name,  "--data", r->data,
      "--client", r->client,     "--peer", r->peer,  "--initial-size",
      "3",        "--log-level", "info",   NULL};
  for (int i = 0; base[i] != NULL; i++) {
    argv[k++] = base[i];
  }
  for (int i = 0; extra[i] != NULL && k < 46; i++) {
    argv[k++] = extra[i];
  }
  argv[k] = NULL;
  r->pid = test_spawn(argv, r->log);
}

static void replica_stop(struct replica *r) {
  kill(r->pid, SIGTERM);
  int code = test_wait(r->pid, 10000, r->name);
  CHECK(code == 0, "%s exited %d on SIGTERM (log %s)", r->name, code, r->log);
  r->pid = 0;
}

static bool port_free_on(int ip_last, unsigned port) {
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)port)};
  char ip[16];
  snprintf(ip, sizeof ip, "127.0.0.%d", ip_last);
  inet_pton(AF_INET, ip, &sa.sin_addr);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
  if (fd >= 0) {
    close(fd);
  }
  return ok;
}

/* A port free on 127.0.0.1 to .3 (the pods' loopback "IPs"). */
static unsigned pick_port(void) {
  static unsigned next;
  if (next == 0) {
    next = 30000 + (unsigned)(getpid() % 2000) * 10;
  }
  for (int tries = 0; tries < 2000; tries++) {
    unsigned p = next++;
    if (port_free_on(1, p) && port_free_on(2, p) && port_free_on(3, p)) {
      return p;
    }
  }
  CHECK(false, "no free port on 127.0.0.1-3");
  return 0;
}

#define K8S_FLAGS(token, ca)                                                   \
  "--discovery", "kubernetes", "--k8s-api", api_url, "--k8s-namespace",        \
      "synod-test", "--k8s-label-selector", "app.kubernetes.io/name=synod",    \
      "--k8s-token-file", token, "--k8s-ca-file", ca, "--k8s-interval",        \
      "200ms"

static const char forbidden[] =
    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":"
    "\"Failure\",\"message\":\"pods is forbidden: User "
    "\\\"system:serviceaccount:synod-test:synod\\\" cannot list resource "
    "\\\"pods\\\" in API group \\\"\\\" in the namespace \\\"synod-test\\\"\","
    "\"reason\":\"Forbidden\",\"details\":{\"kind\":\"pods\"},\"code\":403}\n";

static void check_requests(const char *needle) {
  char path[PATH_MAX + 16];
  snprintf(path, sizeof path, "%s/requests", api);
  test_wait_file(path, needle, WAIT_MS);
}

/* 403, malformed JSON, then 401: each reported with what is wrong. */
static void check_failures(const struct replica *a, char pods[][1024]) {
  put(api, "body", forbidden);
  put(api, "status", "403\n");
  test_wait_file(a->log,
                 "HTTP 403: forbidden: the ServiceAccount needs the RBAC "
                 "permissions 'get' and 'list' on 'pods' in namespace "
                 "'synod-test'",
                 WAIT_MS);
  test_wait_file(a->log,
                 "the API says: \"pods is forbidden: User "
                 "\"system:serviceaccount:synod-test:synod\" cannot list",
                 WAIT_MS);
  fprintf(stderr, "ok: 403 names the RBAC permission, quotes the API\n");

  put(api, "body", "{\"kind\":\"PodList\",\"items\":[{\"metadata\":\n");
  put(api, "status", "200\n");
  test_wait_file(a->log, "malformed JSON in the pod list", WAIT_MS);
  fprintf(stderr, "ok: malformed JSON reported\n");

  serve_pods(pods, 6);
  put(api, "token", "tok-B\n"); /* the API rotated; our file did not yet */
  test_wait_file(a->log, "HTTP 401: token rejected", WAIT_MS);
  fprintf(stderr, "ok: 401 says the token was rejected\n");
}

/* Candidates: only Running pods with an IP that are not being deleted;
 * then 403, malformed JSON, 401, and a rotated token, while it serves. */
static void test_kubernetes_method(const char *token_dir, const char *token,
                                   const char *ca) {
  char pods[6][1024], want[256];
  struct replica a;
  unsigned cp = pick_port(), pp = pick_port();
  put(token_dir, "token", "tok-A\n");
  put(api, "token", "tok-A\n");
  pod(pods[0], 1024, "synod-0", "Running", "127.0.0.1", false, true);
  pod(pods[1], 1024, "synod-1", "Running", "127.0.0.2", false, false);
  pod(pods[2], 1024, "synod-2", "Pending", NULL, false, false);
  pod(pods[3], 1024, "synod-3", "Running", NULL, false, false);
  pod(pods[4], 1024, "synod-4", "Running", "127.0.0.5", true, true);
  pod(pods[5], 1024, "synod-5", "Succeeded", "127.0.0.6", false, false);
  serve_pods(pods, 6);
  char *flags[] = {K8S_FLAGS((char *)token, (char *)ca), NULL};
  replica_start(&a, "synod-1", 2, cp, pp, flags);
  snprintf(want, sizeof want,
           "kubernetes: 2 candidates: synod-0=127.0.0.1:%u, "
           "synod-1=127.0.0.2:%u\n",
           pp, pp);
  test_wait_file(a.log, want, WAIT_MS);
  check_requests("GET /api/v1/namespaces/synod-test/pods?labelSelector="
                 "app.kubernetes.io%2Fname%3Dsynod HTTP/1.1 token=tok-A");
  fprintf(stderr, "ok: pod list filtered: %s", want);

  check_failures(&a, pods);

  pod(pods[2], 1024, "synod-2", "Running", "127.0.0.3", false, false);
  serve_pods(pods, 6);
  put(token_dir, "token", "tok-B\n");
  snprintf(want, sizeof want,
           "kubernetes: 3 candidates: synod-0=127.0.0.1:%u, "
           "synod-1=127.0.0.2:%u, synod-2=127.0.0.3:%u\n",
           pp, pp, pp);
  test_wait_file(a.log, want, WAIT_MS);
  test_wait_file(a.log, "changed (rotated): using the new token", WAIT_MS);
  test_wait_file(a.log, "kubernetes: recovered after", WAIT_MS);
  check_requests("token=tok-B");
  fprintf(stderr, "ok: rotated token re-read, new pod found: %s", want);
  CHECK(kill(a.pid, 0) == 0, "synodd died during the failures (%s)", a.log);
  replica_stop(&a);
}

/* An API nobody listens on, and an API whose certificate our CA did not
 * sign: both reported, both retried, neither kills the replica. */
static void test_unreachable_and_wrong_ca(const char *token,
                                          const char *other_ca,
                                          const char *ca) {
  struct replica u, w;
  char closed[64];
  snprintf(closed, sizeof closed, "https://127.0.0.1:%u", pick_port());
  char *uf[] = {"--discovery",
                "kubernetes",
                "--k8s-api",
                closed,
                "--k8s-namespace",
                "synod-test",
                "--k8s-token-file",
                (char *)token,
                "--k8s-ca-file",
                (char *)ca,
                "--k8s-interval",
                "200ms",
                NULL};
  char *wf[] = {K8S_FLAGS((char *)token, (char *)other_ca), NULL};
  replica_start(&u, "synod-1", 1, pick_port(), pick_port(), uf);
  replica_start(&w, "synod-1", 1, pick_port(), pick_port(), wf);
  test_wait_file(u.log, "API server unreachable", WAIT_MS);
  test_wait_file(u.log, "retry 2 in", WAIT_MS);
  test_wait_file(w.log, "TLS with the API server failed (CA file", WAIT_MS);
  fprintf(stderr, "ok: unreachable API and wrong CA reported, retried\n");
  replica_stop(&u);
  replica_stop(&w);
}

static void test_dns_method(void) {
  struct replica l, x;
  char want[128], pp[16];
  unsigned port = pick_port();
  snprintf(pp, sizeof pp, "%u", port);
  char *lf[] = {
      "--discovery", "dns",         "--dns-name", "localhost", "--dns-interval",
      "200ms",       "--peer-port", pp,           NULL};
  char *xf[] = {"--discovery",    "dns",   "--dns-name", "synod-peers.invalid",
                "--dns-interval", "200ms", NULL};
  replica_start(&l, "synod-1", 2, pick_port(), pick_port(), lf);
  replica_start(&x, "synod-1", 2, pick_port(), pick_port(), xf);
  snprintf(want, sizeof want, "127.0.0.1=127.0.0.1:%u", port);
  test_wait_file(l.log, want, WAIT_MS);
  test_wait_file(x.log, "resolve synod-peers.invalid", WAIT_MS);
  test_wait_file(x.log, "(NXDOMAIN)", WAIT_MS);
  test_wait_file(x.log, "retry 2 in", WAIT_MS);
  fprintf(stderr, "ok: dns localhost -> %s; .invalid -> NXDOMAIN\n", want);
  replica_stop(&l);
  replica_stop(&x);
}

/* Voters in the configuration that the replica at endpoint reports. */
static size_t voters_seen(const char *endpoint) {
  struct synod_options o;
  struct synod_client *cl;
  struct synod_status st;
  size_t n = 0;
  synod_options_init(&o);
  o.endpoints = endpoint;
  o.connect_timeout_ms = 300;
  o.request_timeout_ms = 500;
  if (synod_client_new(&o, &cl) != 0) {
    return 0;
  }
  if (synod_status(cl, 500, &st) == 0) {
    for (size_t i = 0; i < st.members_count; i++) {
      n += st.members[i].voter;
    }
    synod_status_free(&st);
  }
  synod_client_free(cl);
  return n;
}

/* Runs `synodctl --endpoints ep ready`; returns its exit code, output in
 * out_path. */
static int ready(const char *ep, const char *out_path) {
  char cmd[PATH_MAX * 2];
  snprintf(cmd, sizeof cmd, "'%s' --endpoints %s ready", synodctl, ep);
  unlink(out_path);
  return test_sh(cmd, out_path, 10000);
}

/* Three replicas, no --peers: the fake API lists them (and a Pending
 * fourth); they must bootstrap one cluster of three voters. */
static void test_cluster_through_kubernetes(const char *token, const char *ca) {
  struct cluster c = {.n = 3};
  struct replica r[3];
  char pods[4][1024], out[PATH_MAX + 16];
  unsigned cp = pick_port(), pp = pick_port();
  snprintf(c.dir, sizeof c.dir, "%s", dir);
  for (int i = 0; i < 3; i++) {
    char name[16], ip[16];
    snprintf(name, sizeof name, "synod-%d", i);
    snprintf(ip, sizeof ip, "127.0.0.%d", i + 1);
    pod(pods[i], 1024, name, "Running", ip, false, false);
  }
  pod(pods[3], 1024, "synod-3", "Pending", NULL, false, false);
  serve_pods(pods, 4);
  char *flags[] = {K8S_FLAGS((char *)token, (char *)ca), NULL};
  for (int i = 0; i < 3; i++) {
    char name[16];
    snprintf(name, sizeof name, "synod-%d", i);
    replica_start(&r[i], name, i + 1, cp, pp, flags);
    snprintf(c.nodes[i].name, sizeof c.nodes[i].name, "%s", name);
    snprintf(c.nodes[i].client, sizeof c.nodes[i].client, "%s", r[i].client);
    c.nodes[i].pid = r[i].pid;
  }
  int leader = cluster_wait_leader(&c, 60000);
  fprintf(stderr, "ok: leader %s elected\n", c.nodes[leader].name);
  uint64_t until = test_now_ms() + 60000;
  snprintf(out, sizeof out, "%s/ready.out", dir);
  for (int i = 0; i < 3; i++) {
    while (voters_seen(r[i].client) != 3 || ready(r[i].client, out) != 0) {
      char *why = test_slurp(out);
      CHECK(test_now_ms() < until, "%s: 3 voters and ready: %s (logs %s)",
            r[i].name, why, dir);
      free(why);
      usleep(100000);
    }
    char *why = test_slurp(out);
    fprintf(stderr, "ok: %s", why);
    free(why);
  }
  char dead[64];
  snprintf(dead, sizeof dead, "127.0.0.1:%u", pick_port());
  CHECK(ready(dead, out) == 1, "synodctl ready on a dead endpoint not 1");
  char *why = test_slurp(out);
  CHECK(strncmp(why, "not ready: ", 11) == 0 &&
            strchr(why, '\n') == why + strlen(why) - 1,
        "want one line 'not ready: ...', got '%s'", why);
  fprintf(stderr, "ok: dead endpoint: %s", why);
  free(why);
  for (int i = 0; i < 3; i++) {
    replica_stop(&r[i]);
  }
}

int main(void) {
  char why[256], token_dir[PATH_MAX + 8], token[PATH_MAX + 16];
  char ca[PATH_MAX + 16], other[PATH_MAX + 16];
  test_binary("SYNODD", "synodd", synodd, sizeof synodd);
  test_binary("SYNODCTL", "synodctl", synodctl, sizeof synodctl);
  if (!cluster_synodd_ready(synodd, why, sizeof why)) {
    fprintf(stderr, "SKIP: %s\n", why);
    return SKIP_EXIT;
  }
  if (system("openssl version > /dev/null 2>&1") != 0) {
    fprintf(stderr, "SKIP: the openssl CLI is not installed "
                    "(scripts/deps.sh installs it)\n");
    return SKIP_EXIT;
  }
  test_tmpdir("k8s-discovery", dir, sizeof dir);
  make_certs();
  start_api();
  snprintf(token_dir, sizeof token_dir, "%s/sa", dir);
  mkdir(token_dir, 0755);
  snprintf(token, sizeof token, "%s/token", token_dir);
  snprintf(ca, sizeof ca, "%s/ca.crt", dir);
  snprintf(other, sizeof other, "%s/other.crt", dir);
  test_kubernetes_method(token_dir, token, ca);
  test_unreachable_and_wrong_ca(token, other, ca);
  test_dns_method();
  test_cluster_through_kubernetes(token, ca);
  printf("k8s discovery: 4 passed, 0 failed\n");
  return 0;
}
