/* `synodctl elect --http` as the Kubernetes leader-elector sidecar's
 * drop-in, on 3 real synodd processes: two electors (one with the
 * sidecar's spellings --election= --http=localhost: --id=) answer GET /
 * with the same {"name":...} as synodd's /leader/NAME; a third that cannot
 * bind its port exits 1 without campaigning; SIGKILL of the leading
 * elector hands leadership to the other within the session TTL plus a
 * margin; then, with every replica SIGSTOPped, the survivor stops naming
 * itself within the TTL (fail closed) and exits 76. Every wait is bounded.
 * Exit 77 (skipped) while synodd does not take --peers. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cluster.h"

#define TTL_MS 2000
/* Failover: the server expires the killed elector's session TTL_MS after
 * its last keepalive (cluster time), then the survivor's observe reports
 * the change. The margin covers a loaded 2-core machine. */
#define FAILOVER_MARGIN_MS 5000

static char synodctl[PATH_MAX];
static char dir[PATH_MAX];
static struct cluster c;

static void fmt(char *out, size_t len, const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  int n = vsnprintf(out, len, f, ap);
  va_end(ap);
  CHECK(n >= 0 && (size_t)n < len, "formatted text too long");
}

/* GET / on 127.0.0.1:port with a fresh connection (Connection: close).
 * Returns the status, or -1 if nothing listens; body (cap bytes) gets the
 * body. Bounded by 3 s of silence. */
static int http_get(unsigned port, const char *path, char *body, size_t cap) {
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  char req[256], buf[4096];
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(fd >= 0, "socket: %s", strerror(errno));
  struct timeval tv = {.tv_sec = 3};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    fmt(body, cap, "(connect: %s)", strerror(errno));
    close(fd);
    return -1;
  }
  fmt(req, sizeof req,
      "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", path);
  CHECK(send(fd, req, strlen(req), MSG_NOSIGNAL) == (ssize_t)strlen(req),
        "send to port %u: %s", port, strerror(errno));
  size_t len = 0;
  for (;;) {
    ssize_t r = recv(fd, buf + len, sizeof buf - 1 - len, 0);
    CHECK(r >= 0, "no answer on port %u within 3 s: %s", port, strerror(errno));
    if (r == 0 || len + (size_t)r == sizeof buf - 1) {
      len += (size_t)r;
      break;
    }
    len += (size_t)r;
  }
  close(fd);
  buf[len] = '\0';
  int status = 0;
  char *end = strstr(buf, "\r\n\r\n");
  CHECK(sscanf(buf, "HTTP/1.1 %d", &status) == 1 && end != NULL,
        "port %u answered '%s'", port, buf);
  fmt(body, cap, "%s", end + 4);
  return status;
}

/* The body an elector answers while `name` leads. */
static void want_body(const char *name, char *out, size_t len) {
  fmt(out, len, "{\"name\":\"%s\"}\n", name);
}

/* Polls GET / on port every 20 ms until the body is {"name":"<name>"};
 * returns the ms it took. Fails the test after timeout_ms. */
static uint64_t wait_name(unsigned port, const char *name, uint32_t timeout_ms,
                          const char *what) {
  char want[128], body[1024] = "";
  uint64_t t0 = test_now_ms();
  want_body(name, want, sizeof want);
  for (;;) {
    int status = http_get(port, "/", body, sizeof body);
    if (status == 200 && strcmp(body, want) == 0) {
      return test_now_ms() - t0;
    }
    CHECK(test_now_ms() - t0 < timeout_ms,
          "%s: port %u still answers %d '%s' after %u ms, want '%s'", what,
          port, status, body, timeout_ms, want);
    usleep(20000);
  }
}

/* Starts `synodctl --endpoints E ARGS...` with output to dir/out_name. */
static pid_t elector(const char *out_name, char *const args[]) {
  char path[PATH_MAX + 64];
  char *argv[16];
  int k = 0;
  fmt(path, sizeof path, "%s/%s", dir, out_name);
  argv[k++] = synodctl;
  argv[k++] = "--endpoints";
  argv[k++] = c.endpoints;
  for (int i = 0; args[i] != NULL && k < 15; i++) {
    argv[k++] = args[i];
  }
  argv[k] = NULL;
  return test_spawn(argv, path);
}

static void out_path(const char *name, char *out, size_t len) {
  fmt(out, len, "%s/%s", dir, name);
}

int main(void) {
  char synodd[PATH_MAX], body[1024], want[128];
  char a_out[PATH_MAX + 64], b_out[PATH_MAX + 64], c_out[PATH_MAX + 64];
  char a_http[64], b_http[64];
  setvbuf(stdout, NULL, _IONBF, 0);
  uint64_t t_start = test_now_ms();
  test_binary("SYNODCTL", "synodctl", synodctl, sizeof synodctl);
  cluster_synodd_or_skip(synodd, sizeof synodd);
  test_tmpdir("elect-http", dir, sizeof dir);
  cluster_start(&c, 3, synodd);
  cluster_wait_leader(&c, 30000);
  /* Ports from replica 0's block of 10, which cluster_start claimed for
   * this process; the replicas use only its first three. */
  unsigned base = (unsigned)atoi(strrchr(c.nodes[0].client, ':') + 1);
  unsigned pa = base + 5, pb = base + 6;
  unsigned synodd_http = (unsigned)atoi(strrchr(c.nodes[1].http, ':') + 1);
  fmt(a_http, sizeof a_http, "127.0.0.1:%u", pa);
  fmt(b_http, sizeof b_http, "--http=localhost:%u", pb);
  out_path("a.out", a_out, sizeof a_out);
  out_path("b.out", b_out, sizeof b_out);
  out_path("c.out", c_out, sizeof c_out);

  /* pod-a in synodctl's spelling; it campaigns first and leads. */
  char *a_args[] = {"--ttl", "2s",     "elect", "sched",
                    "pod-a", "--http", a_http,  NULL};
  pid_t a = elector("a.out", a_args);
  test_wait_file(a_out, "leader: sched (pod-a)", 20000);
  uint64_t ms = wait_name(pa, "pod-a", 10000, "pod-a's elector");
  printf("ok elect --http %s answers {\"name\":\"pod-a\"} (%" PRIu64 " ms)\n",
         a_http, ms);

  /* pod-b in the sidecar's spelling. */
  char *b_args[] = {"elect",      "--election=sched", b_http,
                    "--id=pod-b", "--ttl=2s",         NULL};
  pid_t b = elector("b.out", b_args);
  test_wait_file(b_out, "candidate: sched (pod-b)", 20000);
  wait_name(pb, "pod-a", 10000, "pod-b's elector");
  want_body("pod-a", want, sizeof want);
  CHECK(http_get(pa, "/", body, sizeof body) == 200 && !strcmp(body, want),
        "pod-a's elector now answers '%s'", body);
  CHECK(http_get(synodd_http, "/leader/sched", body, sizeof body) == 200 &&
            !strcmp(body, want),
        "synodd's /leader/sched answers '%s', want '%s'", body, want);
  CHECK(http_get(pb, "/any/path", body, sizeof body) == 200 &&
            !strcmp(body, want),
        "the sidecar answered every path; pod-b's answers '%s'", body);
  printf("ok both electors and synodd's /leader/sched name pod-a "
         "(pod-b: --election= --http=localhost: --id=)\n");

  /* A third elector whose port is taken: exit 1, no candidacy. */
  char *c_args[] = {"elect", "sched", "pod-c", "--http", a_http, NULL};
  pid_t c3 = elector("c.out", c_args);
  int code = test_wait(c3, 10000, "elect with a taken --http port");
  char *text = test_slurp(c_out);
  CHECK(code == 1 && strstr(text, a_http) != NULL &&
            strstr(text, "candidate") == NULL,
        "elect on a taken port exited %d, printed '%s'", code, text);
  free(text);
  printf("ok elect --http on a taken port exits 1 naming it, "
         "without campaigning\n");

  /* SIGKILL the leading elector: the survivor names itself within the
   * TTL plus a margin; the killed one's port is gone. */
  kill(a, SIGKILL);
  CHECK(test_wait(a, 5000, "pod-a's elector after SIGKILL") == 128 + SIGKILL,
        "pod-a's elector did not die of SIGKILL");
  ms = wait_name(pb, "pod-b", TTL_MS + FAILOVER_MARGIN_MS, "failover to pod-b");
  CHECK(http_get(pa, "/", body, sizeof body) == -1,
        "pod-a's port still answers after SIGKILL");
  test_wait_file(b_out, "leader: sched (pod-b)", 5000);
  want_body("pod-b", want, sizeof want);
  CHECK(http_get(synodd_http, "/leader/sched", body, sizeof body) == 200 &&
            !strcmp(body, want),
        "synodd's /leader/sched answers '%s' after the failover", body);
  printf("ok SIGKILL of the leading elector: the survivor's port names "
         "pod-b after %" PRIu64 " ms (TTL %d ms)\n",
         ms, TTL_MS);

  /* Fail closed: every replica stopped, so no renewal is acknowledged.
   * pod-b's elector must stop naming pod-b within the TTL (libsynod
   * reports jeopardy at TTL/2), well before anyone else could be elected,
   * then exit 76 once the session is lost. */
  for (int i = 0; i < c.n; i++) {
    cluster_signal(&c, i, SIGSTOP);
  }
  uint64_t t0 = test_now_ms();
  ms = wait_name(pb, "", TTL_MS, "pod-b's elector with every replica stopped");
  code = test_wait(b, 4 * TTL_MS, "pod-b's elector after its session's loss");
  uint64_t exit_ms = test_now_ms() - t0;
  for (int i = 0; i < c.n; i++) {
    cluster_signal(&c, i, SIGCONT);
  }
  CHECK(code == 76, "pod-b's elector exited %d, want 76", code);
  text = test_slurp(b_out);
  CHECK(strstr(text, "jeopardy") != NULL && strstr(text, "lost: sched") != NULL,
        "pod-b's elector printed '%s'", text);
  free(text);
  printf("ok fail closed: replicas stopped, pod-b's port answers "
         "{\"name\":\"\"} after %" PRIu64 " ms, exit 76 after %" PRIu64
         " ms (TTL %d ms)\n",
         ms, exit_ms, TTL_MS);

  cluster_stop(&c);
  printf("PASS (%" PRIu64 " ms)\n", test_now_ms() - t_start);
  return 0;
}
