/* synodctl elect: campaign in an election and hold the candidacy until a
 * signal; with --http, answer GET / with {"name":"<leader>"} as the
 * Kubernetes leader-elector sidecar did, so that applications which asked
 * that sidecar keep working when synodctl replaces it.
 *
 * Threads:
 *  - main: takes the signals (sigwaitinfo) and makes the blocking libsynod
 *    calls (session open, observe, campaign, resign), as every synodctl
 *    command does;
 *  - libsynod's background thread: runs election_cb and session_cb, which
 *    write `struct elect` under its mutex and wake main with a signal;
 *  - with --http, one more thread running a libuv loop of its own with
 *    server/http's httpd on it. Each request reads `struct elect` under the
 *    mutex and is answered at once; nothing on that loop blocks.
 * A loop thread of its own rather than moving elect to synod_async: the
 * blocking code and its signal handling stay as they were, httpd needs
 * nothing but a loop, and what the two share is a few fields behind one
 * mutex.
 *
 * Fail closed: session_cb records JEOPARDY and LOST under the mutex on
 * libsynod's thread the moment libsynod reports them (JEOPARDY: no renewal
 * acknowledged for TTL/2; LOST: its own deadline, before the server can
 * expire the session). Every answer computed after that reads the new
 * state, so from then on none names this process's value. LOST is sticky
 * and ends the command with exit 76; a SIGTERM stops the claim before the
 * resign is sent. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "err.h"   /* SYNOD_ERRMSG_MAX, for httpd_start */
#include "httpd.h" /* server/http: the HTTP/1.1 server on a libuv loop */
#include "log.h"   /* httpd's log lines */

/* What the three threads share. */
struct elect {
  pthread_t main_thread;
  const char *value; /* our candidate value; immutable */
  size_t value_len;
  atomic_bool lost; /* tells main why it was woken */
  pthread_mutex_t mu;
  /* Under mu: */
  uint64_t session_id; /* ours; 0 until it opened */
  enum synod_session_state state;
  bool ever_lost;  /* LOST is final: we never claim again */
  bool resigning;  /* INT/TERM/HUP arrived */
  bool seen;       /* election_cb reported at least once */
  bool has_leader; /* the election as last reported */
  uint64_t leader_session;
  char leader[SYNOD_ELECTION_VALUE_MAX + 1];
  size_t leader_len;
};

/* Records an election report. Caller holds e->mu. */
static void elect_record(struct elect *e,
                         const struct synod_election_info *info) {
  size_t n = info->value_len < SYNOD_ELECTION_VALUE_MAX
                 ? info->value_len
                 : SYNOD_ELECTION_VALUE_MAX;
  e->has_leader = info->has_leader;
  e->leader_session = info->has_leader ? info->session_id : 0;
  e->leader_len = info->has_leader ? n : 0;
  if (e->leader_len > 0) {
    memcpy(e->leader, info->value, n);
  }
  e->leader[e->leader_len] = '\0';
}

/* The report from observe or campaign, unless a newer one already came
 * through election_cb (which reports changes in order). */
static void elect_record_reply(struct elect *e,
                               const struct synod_election_info *info) {
  pthread_mutex_lock(&e->mu);
  if (!e->seen) {
    elect_record(e, info);
  }
  pthread_mutex_unlock(&e->mu);
}

static void elect_election_cb(void *arg, int status,
                              const struct synod_election_info *info) {
  struct elect *e = arg;
  if (status != 0) {
    return;
  }
  pthread_mutex_lock(&e->mu);
  elect_record(e, info);
  e->seen = true;
  pthread_mutex_unlock(&e->mu);
  pthread_kill(e->main_thread, SIGUSR2);
}

static void elect_session_cb(void *arg, enum synod_session_state st,
                             uint64_t id) {
  struct elect *e = arg;
  pthread_mutex_lock(&e->mu);
  enum synod_session_state before = e->state;
  if (st == SYNOD_SESSION_OPEN && e->session_id == 0) {
    e->session_id = id;
  }
  e->state = st;
  e->ever_lost = e->ever_lost || st == SYNOD_SESSION_LOST;
  pthread_mutex_unlock(&e->mu);
  if (st == SYNOD_SESSION_LOST) {
    atomic_store(&e->lost, true);
    pthread_kill(e->main_thread, SIGUSR1);
  } else if (st == SYNOD_SESSION_JEOPARDY) {
    fprintf(stderr, "synodctl: elect: session in jeopardy (renewals fail); "
                    "not claiming leadership until renewed\n");
  } else if (st == SYNOD_SESSION_OPEN && before == SYNOD_SESSION_JEOPARDY) {
    fprintf(stderr, "synodctl: elect: session renewed again\n");
  }
}

/* Whether our session leads, as last reported (for the printed events). */
static bool elect_leads(struct elect *e) {
  pthread_mutex_lock(&e->mu);
  bool leads =
      e->has_leader && e->session_id != 0 && e->leader_session == e->session_id;
  pthread_mutex_unlock(&e->mu);
  return leads;
}

/* ------------------------------------------------------------ --http */

struct elect_http {
  struct elect *e;
  uv_loop_t loop;
  uv_async_t stop; /* main asks the loop thread to stop */
  struct httpd *httpd;
  pthread_t thread;
  char address[128]; /* bound ip:port */
};

/* The name as a JSON string; a value that is not UTF-8 becomes "0x<hex>",
 * as synodd's /leader/NAME shows it. NULL when out of memory. */
static json_t *elect_json_name(const char *name, size_t len) {
  json_t *s = json_stringn(name, len);
  if (s != NULL) {
    return s;
  }
  char *hex = malloc(2 * len + 3);
  if (hex == NULL) {
    return NULL;
  }
  strcpy(hex, "0x");
  for (size_t i = 0; i < len; i++) {
    snprintf(hex + 2 + 2 * i, 3, "%02x", (unsigned char)name[i]);
  }
  s = json_string(hex);
  free(hex);
  return s;
}

/* Every GET (any path, as the sidecar's "/" handler matched every path):
 * {"name":"<leader's value>"}, or "" while there is none or while we may
 * not claim it (ctl_elect_answer). Runs on the HTTP thread. */
static void elect_http_request_cb(void *arg, const struct httpd_request *req) {
  struct elect_http *h = arg;
  struct elect *e = h->e;
  char name[SYNOD_ELECTION_VALUE_MAX + 1];
  const char *p;
  size_t len;
  if (!httpd_method_is(req, "GET")) {
    httpd_respond_error(h->httpd, req->id, 405, "only GET is served here");
    return;
  }
  pthread_mutex_lock(&e->mu);
  struct ctl_elect_view v = {
      .has_leader = e->has_leader,
      .leader = e->leader,
      .leader_len = e->leader_len,
      .leader_session = e->leader_session,
      .own = e->value,
      .own_len = e->value_len,
      .own_session = e->session_id,
      .trusted =
          e->state == SYNOD_SESSION_OPEN && !e->ever_lost && !e->resigning,
  };
  ctl_elect_answer(&v, &p, &len);
  memcpy(name, p, len);
  pthread_mutex_unlock(&e->mu);
  json_t *j = json_pack("{s:o}", "name", elect_json_name(name, len));
  char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  if (text == NULL) {
    httpd_respond_error(h->httpd, req->id, 500, "out of memory");
    return;
  }
  len = strlen(text);
  text[len] = '\n'; /* replaces the NUL: the length says where it ends */
  httpd_respond(h->httpd, req->id, 200, "application/json", NULL, text,
                len + 1);
  free(text);
}

static void elect_http_stop_cb(uv_async_t *a) {
  struct elect_http *h = a->data;
  httpd_stop(h->httpd);
  h->httpd = NULL;
  uv_close((uv_handle_t *)&h->stop, NULL);
}

static void *elect_http_run(void *arg) {
  struct elect_http *h = arg;
  uv_run(&h->loop, UV_RUN_DEFAULT); /* until stop closed every handle */
  return NULL;
}

/* Binds addr (sidecar spellings allowed) and starts the HTTP thread, which
 * inherits main's blocked signals. Returns 0, or prints why and returns
 * CTL_EXIT_USAGE (an address that is not host:port) or CTL_EXIT_ERROR
 * (bind or listen failed: the message names the address). */
static int elect_http_start(const struct ctl_opts *o, struct elect_http *h,
                            struct elect *e, const char *addr) {
  char bind[128], err[SYNOD_ERRMSG_MAX];
  memset(h, 0, sizeof *h);
  h->e = e;
  if (ctl_http_address(addr, bind, sizeof bind) != 0) {
    fprintf(stderr, "%s: elect: --http '%s' is not host:port\n", o->prog, addr);
    return CTL_EXIT_USAGE;
  }
  uv_loop_init(&h->loop);
  uv_async_init(&h->loop, &h->stop, elect_http_stop_cb);
  h->stop.data = h;
  struct httpd_options ho = {.loop = &h->loop,
                             .listen_address = bind,
                             .log_module = "elect http",
                             .connections_max = 64,
                             .request_cb = elect_http_request_cb,
                             .arg = h};
  int rv = httpd_start(&ho, &h->httpd, err);
  if (rv == 0) {
    snprintf(h->address, sizeof h->address, "%s",
             httpd_listen_address(h->httpd));
    rv = pthread_create(&h->thread, NULL, elect_http_run, h);
    if (rv == 0) {
      return 0;
    }
    snprintf(err, sizeof err, "pthread_create: %s", strerror(rv));
    httpd_stop(h->httpd);
  }
  fprintf(stderr, "%s: elect: %s\n", o->prog, err);
  uv_close((uv_handle_t *)&h->stop, NULL);
  uv_run(&h->loop, UV_RUN_DEFAULT);
  uv_loop_close(&h->loop);
  return CTL_EXIT_ERROR;
}

static void elect_http_stop(struct elect_http *h) {
  uv_async_send(&h->stop);
  pthread_join(h->thread, NULL);
  uv_loop_close(&h->loop);
}

/* ------------------------------------------------------------ command */

static void elect_say(const struct ctl_opts *o, const char *event,
                      const char *name, const char *value) {
  if (o->json) {
    ctl_json_print(json_pack("{s:s, s:s, s:s}", "event", event, "name", name,
                             "value", value));
  } else {
    printf("%s: %s (%s)\n", event, name, value);
    fflush(stdout);
  }
}

/* Waits for signals: prints when we start or stop leading; returns the
 * exit code once INT/TERM/HUP (0) or session loss (76) ends it. */
static int elect_hold(const struct ctl_opts *o, struct elect *e,
                      const sigset_t *set, const char *name, bool leads) {
  for (;;) {
    int sig = sigwaitinfo(set, NULL);
    if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) {
      pthread_mutex_lock(&e->mu);
      e->resigning = true; /* stop claiming before the resign is sent */
      pthread_mutex_unlock(&e->mu);
      return CTL_EXIT_OK;
    }
    if (atomic_load(&e->lost)) {
      elect_say(o, "lost", name, e->value);
      return CTL_EXIT_LOST;
    }
    bool now = elect_leads(e);
    if (now && !leads) {
      elect_say(o, "leader", name, e->value);
    } else if (!now && leads) {
      elect_say(o, "not leader", name, e->value);
    }
    leads = now;
  }
}

static void elect_usage(FILE *out) {
  fprintf(
      out,
      "usage: synodctl elect NAME VALUE [--http ADDR] [--ttl D]\n"
      "       synodctl elect --election=NAME [--id=VALUE] [--http=ADDR]\n"
      "\n"
      "Campaigns in election NAME with VALUE (a pod name, an address),\n"
      "prints 'leader: NAME (VALUE)' once it leads, holds until INT,\n"
      "TERM or HUP, then resigns.\n"
      "\n"
      "--http ADDR  also serve GET / on ADDR (ip:port, localhost:port or\n"
      "             :port) with {\"name\":\"<leader's value>\"}, as the\n"
      "             Kubernetes leader-elector sidecar did; \"\" while there\n"
      "             is no leader. Fail closed: from the moment the session\n"
      "             is in jeopardy (no renewal for TTL/2) or lost, and once\n"
      "             INT/TERM/HUP arrives, the answer no longer names VALUE.\n"
      "--ttl D      the session TTL (as the global --ttl).\n"
      "The sidecar's spellings are accepted: --election NAME, --id VALUE\n"
      "(default: the host name, which is the pod's name), --http ADDR,\n"
      "--ttl D, each also as --flag=value; --election-namespace and\n"
      "--use-cluster-credentials are ignored.\n"
      "\n"
      "Exit status: 0; 76 if the session (and so the candidacy) was lost;\n"
      "1 on errors; 2 on usage errors.\n");
}

/* VALUE, else the host name (the pod's name in Kubernetes). */
static const char *elect_value(const struct ctl_elect_args *a, char *buf,
                               size_t len) {
  if (a->value != NULL) {
    return a->value;
  }
  if (gethostname(buf, len - 1) != 0 || buf[0] == '\0') {
    return NULL;
  }
  buf[len - 1] = '\0';
  return buf;
}

/* Opens the session, observes, campaigns; then holds. Returns the exit
 * code. */
static int elect_run(const struct ctl_opts *o, struct synod_client *c,
                     struct elect *e, const sigset_t *set, const char *name,
                     const struct elect_http *http) {
  struct synod_election_info info;
  struct synod_election_campaign camp;
  uint64_t sid;
  int rv = synod_session_open(c, 0, &sid);
  if (rv == 0) {
    pthread_mutex_lock(&e->mu);
    e->session_id = e->session_id != 0 ? e->session_id : sid;
    pthread_mutex_unlock(&e->mu);
    rv = synod_election_observe(c, name, 0, &info);
  }
  if (rv == 0) {
    elect_record_reply(e, &info);
    synod_election_info_free(&info);
    rv = synod_election_campaign(c, name, e->value, e->value_len, 0, &camp);
  }
  if (rv != 0) {
    return ctl_fail(o, "elect", rv);
  }
  elect_record_reply(e, &camp.info);
  if (http != NULL && !o->json) {
    printf("serving {\"name\":...} on http://%s/\n", http->address);
  }
  elect_say(o, camp.leader ? "leader" : "candidate", name, e->value);
  bool leads = camp.leader;
  synod_election_campaign_free(&camp);
  int code = elect_hold(o, e, set, name, leads);
  if (code == CTL_EXIT_OK &&
      (rv = synod_election_resign(c, name, 0, NULL)) != 0) {
    code = ctl_fail(o, "elect: resign", rv);
  }
  return code;
}

int cmd_elect(const struct ctl_opts *global, int argc, char **argv) {
  struct ctl_elect_args a;
  struct ctl_opts o = *global;
  struct elect e = {.state = SYNOD_SESSION_NONE};
  struct elect_http http;
  struct synod_options extra;
  char err[256], host[256];
  sigset_t set, old;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      elect_usage(stdout);
      return CTL_EXIT_OK;
    }
  }
  if (ctl_elect_args_parse(argc, argv, &a, err, sizeof err) != 0) {
    fprintf(stderr, "%s: elect: %s\n", o.prog, err);
    elect_usage(stderr);
    return CTL_EXIT_USAGE;
  }
  e.value = elect_value(&a, host, sizeof host);
  if (e.value == NULL) {
    fprintf(stderr, "%s: elect: no VALUE (--id) and no host name: %s\n", o.prog,
            strerror(errno));
    return CTL_EXIT_USAGE;
  }
  e.value_len = strlen(e.value);
  if (a.ignored != NULL) {
    fprintf(stderr, "%s: elect: %s ignored (synod has no such notion)\n",
            o.prog, a.ignored);
  }
  if (a.ttl_ms != 0) {
    o.ttl_ms = a.ttl_ms;
  }
  pthread_mutex_init(&e.mu, NULL);
  e.main_thread = pthread_self();
  ctl_signals_block(&set, &old); /* before any thread starts */
  if (a.http != NULL) {
    signal(SIGPIPE, SIG_IGN); /* a client that hangs up is not fatal */
    log_init("synodctl", LOG_INFO);
    int code = elect_http_start(&o, &http, &e, a.http);
    if (code != 0) {
      return code;
    }
  }
  synod_options_init(&extra);
  extra.election_cb = elect_election_cb;
  extra.session_cb = elect_session_cb;
  extra.cb_arg = &e;
  struct synod_client *c = ctl_client(&o, "elect", &extra);
  int code = c != NULL ? elect_run(&o, c, &e, &set, a.name,
                                   a.http != NULL ? &http : NULL)
                       : CTL_EXIT_ERROR;
  if (a.http != NULL) {
    elect_http_stop(&http);
  }
  synod_client_free(c);
  return code;
}
