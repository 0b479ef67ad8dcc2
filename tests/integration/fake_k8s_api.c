/* A fake Kubernetes API server for the discovery tests: HTTPS (OpenSSL) on
 * 127.0.0.1, one request per connection, answers from files the test
 * rewrites while it runs.
 *
 *   fake_k8s_api DIR CERT KEY
 *
 * DIR/port      written once listening: the port (atomically, by rename)
 * DIR/token     if present, the only bearer token accepted; any other gets
 *               the API's 401 Status object
 * DIR/status    HTTP status of the reply [200]
 * DIR/body      the reply body (a PodList, a Status, or anything)
 * DIR/requests  appended: "GET PATH HTTP/1.1 token=TOKEN" per request
 *
 * Runs until killed. */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define REQ_MAX 16384

static const char *dir;

static char *slurp(const char *name, size_t *len) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    return NULL;
  }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = calloc(1, (size_t)n + 1);
  *len = fread(buf, 1, (size_t)n, f);
  fclose(f);
  return buf;
}

static void put_file(const char *name, const char *text) {
  char path[4096], tmp[4200];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0 ||
      rename(tmp, path) != 0) {
    fprintf(stderr, "fake_k8s_api: write %s: %s\n", path, strerror(errno));
    exit(1);
  }
}

/* The bearer token of a request ("" if none), into tok. */
static void bearer(const char *req, char *tok, size_t len) {
  const char *h = strcasestr(req, "\r\nAuthorization: Bearer ");
  tok[0] = '\0';
  if (h != NULL) {
    h += strlen("\r\nAuthorization: Bearer ");
    size_t n = strcspn(h, "\r\n");
    snprintf(tok, len, "%.*s", (int)n, h);
  }
}

static void log_request(const char *req, const char *tok) {
  char path[4096];
  snprintf(path, sizeof path, "%s/requests", dir);
  FILE *f = fopen(path, "a");
  if (f != NULL) {
    fprintf(f, "%.*s token=%s\n", (int)strcspn(req, "\r\n"), req, tok);
    fclose(f);
  }
}

static void reply(SSL *ssl, int status, const char *body, size_t len) {
  char head[256];
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                   "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                   status, status == 200 ? "OK" : "Error", len);
  SSL_write(ssl, head, n);
  if (len > 0) {
    SSL_write(ssl, body, (int)len);
  }
}

static void serve(SSL *ssl) {
  char req[REQ_MAX], tok[4096];
  size_t got = 0, len = 0, tlen = 0, slen = 0;
  while (got < sizeof req - 1) {
    int n = SSL_read(ssl, req + got, (int)(sizeof req - 1 - got));
    if (n <= 0) {
      return;
    }
    got += (size_t)n;
    req[got] = '\0';
    if (strstr(req, "\r\n\r\n") != NULL) {
      break;
    }
  }
  bearer(req, tok, sizeof tok);
  log_request(req, tok);
  char *want = slurp("token", &tlen);
  if (want != NULL) {
    want[strcspn(want, "\r\n")] = '\0';
  }
  if (want != NULL && strcmp(want, tok) != 0) {
    static const char unauth[] =
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
        "\"status\":\"Failure\",\"message\":\"Unauthorized\","
        "\"reason\":\"Unauthorized\",\"code\":401}\n";
    reply(ssl, 401, unauth, sizeof unauth - 1);
  } else {
    char *status = slurp("status", &slen);
    char *body = slurp("body", &len);
    reply(ssl, status ? atoi(status) : 200, body ? body : "", len);
    free(status);
    free(body);
  }
  free(want);
}

static int listen_any(void) {
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof sa;
  char port[16];
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
      listen(fd, 64) != 0 || getsockname(fd, (struct sockaddr *)&sa, &sl)) {
    fprintf(stderr, "fake_k8s_api: listen: %s\n", strerror(errno));
    exit(1);
  }
  snprintf(port, sizeof port, "%u\n", ntohs(sa.sin_port));
  put_file("port", port);
  return fd;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: fake_k8s_api DIR CERT KEY\n");
    return 2;
  }
  dir = argv[1];
  signal(SIGPIPE, SIG_IGN);
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == NULL || SSL_CTX_use_certificate_chain_file(ctx, argv[2]) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, argv[3], SSL_FILETYPE_PEM) != 1) {
    fprintf(stderr, "fake_k8s_api: certificate %s / key %s:\n", argv[2],
            argv[3]);
    ERR_print_errors_fp(stderr);
    return 1;
  }
  int lfd = listen_any();
  for (;;) {
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) {
      continue;
    }
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
      serve(ssl);
      SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    close(fd);
  }
}
