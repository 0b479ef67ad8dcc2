/* synodd: configuration and wiring, nothing else. */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "api.h"
#include "discovery.h"
#include "err.h"
#include "fsm.h"
#include "log.h"
#include "node.h"
#include "synod.h"
#include "version.h"

#define MAIN_PEERS_MAX 16

_Static_assert(DISCOVERY_NAME_MAX == NODE_NAME_MAX &&
                   DISCOVERY_ADDRESS_MAX == NODE_ADDRESS_MAX,
               "discovery candidates copy into node_peer without loss");

/* One flag: its name, its environment variable, where its value goes. */
struct flag {
  const char *name;
  const char *env;
  const char **value;
  const char *help;
};

struct config {
  const char *name, *data, *client, *peer, *peers, *cluster_id;
  const char *advertise_client, *advertise_peer, *log_level;
  const char *tick_ms, *election_ticks, *snapshot_entries, *initial_size;
  const char *discovery, *peer_port, *dns_name, *dns_interval, *k8s_api;
  const char *k8s_namespace, *k8s_selector, *k8s_token_file, *k8s_ca_file;
  const char *k8s_interval, *http, *channels_max_bytes;
  const char *keys_history, *keys_history_bytes;
  const char *group_checkpoint_max_bytes, *snapshot_fork;
  const char *keys_value_max_bytes;
};

static struct config cfg = {.cluster_id = "synod", .log_level = "info"};

static const struct flag flags[] = {
    {"--name", "SYNOD_NAME", &cfg.name,
     "this replica's name, e.g. synod-0 (the StatefulSet pod name)"},
    {"--data", "SYNOD_DATA", &cfg.data,
     "data directory (LMDB: log, state, snapshots); created if missing"},
    {"--client", "SYNOD_CLIENT", &cfg.client,
     "client listen address ip:port, e.g. 0.0.0.0:7700"},
    {"--peer", "SYNOD_PEER", &cfg.peer,
     "peer listen address ip:port, e.g. 0.0.0.0:7701"},
    {"--peers", "SYNOD_PEERS", &cfg.peers,
     "the declared replicas, self included: name=host:port,... (peer ports)"},
    {"--initial-size", "SYNOD_INITIAL_SIZE", &cfg.initial_size,
     "instead of --peers: the StatefulSet's initial size N; replicas are "
     "PREFIX-0..N-1 and are found by discovery"},
    {"--cluster-id", "SYNOD_CLUSTER_ID", &cfg.cluster_id,
     "cluster name; replicas of other clusters are refused [synod]"},
    {"--http", "SYNOD_HTTP", &cfg.http,
     "HTTP listen address ip:port (health, readiness, metrics, /leader, "
     "status page), e.g. 0.0.0.0:7702 [off]"},
    {"--advertise-client", "SYNOD_ADVERTISE_CLIENT", &cfg.advertise_client,
     "client address told to clients and peers [--client]"},
    {"--advertise-peer", "SYNOD_ADVERTISE_PEER", &cfg.advertise_peer,
     "peer address told to peers [--peer]"},
    {"--log-level", "SYNOD_LOG_LEVEL", &cfg.log_level,
     "debug, info, warn or error [info]"},
    {"--tick-ms", "SYNOD_TICK_MS", &cfg.tick_ms,
     "heartbeat interval in ms [50]"},
    {"--election-ticks", "SYNOD_ELECTION_TICKS", &cfg.election_ticks,
     "election timeout in ticks, randomised up to twice this [10]"},
    {"--snapshot-entries", "SYNOD_SNAPSHOT_ENTRIES", &cfg.snapshot_entries,
     "take a snapshot after this many entries, up to 1.5 times as many "
     "(each replica its own) [8192]"},
    {"--snapshot-fork", "SYNOD_SNAPSHOT_FORK", &cfg.snapshot_fork,
     "encode snapshots in a child process (fork, copy-on-write) so the "
     "replica goes on serving meanwhile: auto (once the state's image "
     "passes 256 KiB), always or never [auto]"},
    {"--channels-max-bytes", "SYNOD_CHANNELS_MAX_BYTES",
     &cfg.channels_max_bytes,
     "server-wide cap on retained channel messages: 64MiB, 1GiB, ... "
     "(held in memory on every replica; the leader's value applies to "
     "all) [64MiB]"},
    {"--keys-history", "SYNOD_KEYS_HISTORY", &cfg.keys_history,
     "key changes retained for watches, in events (a watch from an older "
     "revision gets SYNOD_ECOMPACTED; give every replica the same value) "
     "[100000]"},
    {"--keys-history-bytes", "SYNOD_KEYS_HISTORY_BYTES",
     &cfg.keys_history_bytes,
     "... and in bytes: 64MiB, 1GiB, ... (same on every replica) [64MiB]"},
    {"--keys-value-max-bytes", "SYNOD_KEYS_VALUE_MAX_BYTES",
     &cfg.keys_value_max_bytes,
     "the largest value of one key: 64KiB, 256KiB, ... (at most 256KiB: "
     "a watch event carries a value and the one before it; the leader's "
     "value applies to all) [64KiB]"},
    {"--group-checkpoint-max-bytes", "SYNOD_GROUP_CHECKPOINT_MAX_BYTES",
     &cfg.group_checkpoint_max_bytes,
     "the largest state checkpoint a group may store: 16MiB, 64MiB, ... "
     "(at most 1GiB; the leader's value applies to all) [16MiB]"},
    {"--discovery", "SYNOD_DISCOVERY", &cfg.discovery,
     "how to find the replicas: static (--peers), dns or kubernetes "
     "[static]"},
    {"--peer-port", "SYNOD_PEER_PORT", &cfg.peer_port,
     "the port peers listen on, for addresses found by discovery [the "
     "port of --advertise-peer]"},
    {"--dns-name", "SYNOD_DNS_NAME", &cfg.dns_name,
     "dns: the headless Service, e.g. synod-peers.NAMESPACE.svc"},
    {"--dns-interval", "SYNOD_DNS_INTERVAL", &cfg.dns_interval,
     "dns: re-resolve this often: 500ms, 5s, 1m [5s]"},
    {"--k8s-api", "SYNOD_K8S_API", &cfg.k8s_api,
     "kubernetes: API server URL [https://$KUBERNETES_SERVICE_HOST:"
     "$KUBERNETES_SERVICE_PORT]"},
    {"--k8s-namespace", "SYNOD_K8S_NAMESPACE", &cfg.k8s_namespace,
     "kubernetes: the pods' namespace [the service account's]"},
    {"--k8s-label-selector", "SYNOD_K8S_LABEL_SELECTOR", &cfg.k8s_selector,
     "kubernetes: which pods [app.kubernetes.io/name=synod]"},
    {"--k8s-token-file", "SYNOD_K8S_TOKEN_FILE", &cfg.k8s_token_file,
     "kubernetes: bearer token, re-read every request [" DISCOVERY_SA_DIR
     "/token]"},
    {"--k8s-ca-file", "SYNOD_K8S_CA_FILE", &cfg.k8s_ca_file,
     "kubernetes: CA of the API server [" DISCOVERY_SA_DIR "/ca.crt]"},
    {"--k8s-interval", "SYNOD_K8S_INTERVAL", &cfg.k8s_interval,
     "kubernetes: list the pods this often: 500ms, 5s, 1m [5s]"},
};
#define FLAGS_N (sizeof flags / sizeof flags[0])

static void usage(FILE *out) {
  fprintf(out, "usage: synodd --name NAME --data DIR --client ADDR --peer "
               "ADDR (--peers LIST | --initial-size N --discovery "
               "dns|kubernetes) [options]\n\n"
               "synodd is one replica of synod, a replicated coordination "
               "service.\nEvery flag may also be set by its environment "
               "variable.\n\n");
  for (size_t i = 0; i < FLAGS_N; i++) {
    fprintf(out, "  %-20s %-24s %s\n", flags[i].name, flags[i].env,
            flags[i].help);
  }
  fprintf(out, "  %-20s %-24s %s\n  %-20s %-24s %s\n", "--version", "",
          "print the version", "--help", "", "this text");
  fprintf(out, "\nSIGTERM: hand leadership over, finish writes, exit 0.\n"
               "Exit status: 0 stopped cleanly, 1 failed, 2 bad usage.\n");
}

static int parse_args(int argc, char **argv) {
  for (size_t i = 0; i < FLAGS_N; i++) {
    const char *v = getenv(flags[i].env);
    if (v != NULL && v[0] != '\0') {
      *flags[i].value = v;
    }
  }
  for (int i = 1; i < argc; i++) {
    size_t k;
    for (k = 0; k < FLAGS_N; k++) {
      size_t len = strlen(flags[k].name);
      if (strcmp(argv[i], flags[k].name) == 0 && i + 1 < argc) {
        *flags[k].value = argv[++i];
        break;
      }
      if (strncmp(argv[i], flags[k].name, len) == 0 && argv[i][len] == '=') {
        *flags[k].value = argv[i] + len + 1;
        break;
      }
    }
    if (k == FLAGS_N) {
      fprintf(stderr, "synodd: unknown or incomplete argument '%s'\n", argv[i]);
      return -1;
    }
  }
  return 0;
}

/* Parses "name=host:port,..." into peers; returns the count or -1. */
static int parse_peers(const char *list, struct node_peer *peers) {
  int n = 0;
  const char *p = list;
  while (p != NULL && *p != '\0') {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    const char *eq = memchr(p, '=', len);
    if (n == MAIN_PEERS_MAX || eq == NULL || eq == p ||
        (size_t)(eq - p) >= NODE_NAME_MAX ||
        len - (size_t)(eq - p) - 1 >= NODE_ADDRESS_MAX ||
        len == (size_t)(eq - p) + 1) {
      fprintf(stderr,
              "synodd: --peers entry '%.*s' is not name=host:port "
              "(at most %d entries)\n",
              (int)len, p, MAIN_PEERS_MAX);
      return -1;
    }
    snprintf(peers[n].name, NODE_NAME_MAX, "%.*s", (int)(eq - p), p);
    snprintf(peers[n].address, NODE_ADDRESS_MAX, "%.*s",
             (int)(len - (size_t)(eq - p) - 1), eq + 1);
    n++;
    p = comma ? comma + 1 : NULL;
  }
  return n;
}

static int parse_u32(const char *text, const char *what, uint32_t *out) {
  char *end;
  errno = 0;
  unsigned long v = text ? strtoul(text, &end, 10) : 0;
  if (text != NULL &&
      (errno != 0 || *end != '\0' || v == 0 || v > UINT32_MAX)) {
    fprintf(stderr, "synodd: %s '%s' is not a positive integer\n", what, text);
    return -1;
  }
  *out = (uint32_t)v;
  return 0;
}

/* A byte size: a number with an optional KiB, MiB or GiB, from 1 MiB to
 * 64 GiB. */
/* A size from min to max bytes: a number of bytes, or with KiB, MiB or
 * GiB; `bounds` says them in the error. */
static int parse_size(const char *text, const char *what, uint64_t min,
                      uint64_t max, const char *bounds, uint64_t *out) {
  static const struct {
    const char *suffix;
    unsigned shift;
  } units[] = {{"", 0}, {"KiB", 10}, {"MiB", 20}, {"GiB", 30}};
  char *end;
  if (text == NULL) {
    return 0;
  }
  errno = 0;
  unsigned long long v = strtoull(text, &end, 10);
  for (size_t i = 0; errno == 0 && end != text && i < 4; i++) {
    if (strcmp(end, units[i].suffix) == 0 && v <= (64ull << 30) &&
        (v << units[i].shift) >= min && (v << units[i].shift) <= max) {
      *out = v << units[i].shift;
      return 0;
    }
  }
  fprintf(stderr,
          "synodd: %s '%s' is not a size %s (a number of bytes, or with KiB, "
          "MiB or GiB)\n",
          what, text, bounds);
  return -1;
}

/* A size from 1 MiB to 64 GiB. */
static int parse_bytes(const char *text, const char *what, uint64_t *out) {
  return parse_size(text, what, 1ull << 20, 64ull << 30, "from 1MiB to 64GiB",
                    out);
}

/* A count from 1 to 1,000,000,000. */
static int parse_count(const char *text, const char *what, uint64_t *out) {
  char *end;
  if (text == NULL) {
    return 0;
  }
  errno = 0;
  unsigned long long v = strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < 1 || v > 1000000000ull) {
    fprintf(stderr, "synodd: %s '%s' is not a number from 1 to 1000000000\n",
            what, text);
    return -1;
  }
  *out = v;
  return 0;
}

/* The port of "host:port" or "[v6]:port"; 0 if there is none. */
static uint16_t port_of(const char *address) {
  const char *colon = address ? strrchr(address, ':') : NULL;
  char *end;
  unsigned long p = colon ? strtoul(colon + 1, &end, 10) : 0;
  return colon && *end == '\0' && p <= 65535 ? (uint16_t)p : 0;
}

static int parse_duration(const char *text, const char *what, uint32_t *ms) {
  if (text != NULL && discovery_duration_parse(text, ms) != 0) {
    fprintf(stderr, "synodd: %s '%s' is not a duration (500ms, 5s, 1m)\n", what,
            text);
    return -1;
  }
  return 0;
}

/* Fills the discovery options from the flags; -1 (message printed) when
 * they do not fit together. */
static int parse_discovery(struct discovery_options *d) {
  uint32_t port = 0;
  const char *method = cfg.discovery ? cfg.discovery : "static";
  if (discovery_method_parse(method, &d->method) != 0) {
    fprintf(stderr,
            "synodd: --discovery '%s' is not static, dns or "
            "kubernetes\n",
            method);
    return -1;
  }
  if (d->method == DISCOVERY_STATIC && cfg.peers == NULL) {
    fprintf(stderr, "synodd: --initial-size without --peers needs "
                    "--discovery dns or kubernetes to find the replicas\n");
    return -1;
  }
  if (parse_u32(cfg.peer_port, "--peer-port", &port) != 0 || port > 65535) {
    fprintf(stderr, "synodd: --peer-port '%s' is not a port (1..65535)\n",
            cfg.peer_port);
    return -1;
  }
  if (parse_duration(cfg.dns_interval, "--dns-interval", &d->dns_interval_ms) ||
      parse_duration(cfg.k8s_interval, "--k8s-interval", &d->k8s_interval_ms)) {
    return -1;
  }
  d->peer_port =
      port ? (uint16_t)port
           : port_of(cfg.advertise_peer ? cfg.advertise_peer : cfg.peer);
  d->dns_name = cfg.dns_name;
  d->k8s_api = cfg.k8s_api;
  d->k8s_namespace = cfg.k8s_namespace;
  d->k8s_label_selector = cfg.k8s_selector;
  d->k8s_token_file = cfg.k8s_token_file;
  d->k8s_ca_file = cfg.k8s_ca_file;
  return 0;
}

struct main_state {
  uv_signal_t sigterm;
  uv_signal_t sigint;
  struct node *node;
  struct http_api *http;
  struct discovery *discovery;
  int signals;
};

/* Discovery proposes; the node decides (node_discovered). */
static void on_discovered(void *arg, const struct discovery_candidate *c,
                          size_t n) {
  struct main_state *st = arg;
  struct node_peer peers[DISCOVERY_CANDIDATES_MAX];
  if (st->node == NULL || st->signals > 0) {
    return;
  }
  for (size_t i = 0; i < n && i < DISCOVERY_CANDIDATES_MAX; i++) {
    snprintf(peers[i].name, sizeof peers[i].name, "%s", c[i].name);
    snprintf(peers[i].address, sizeof peers[i].address, "%s", c[i].address);
  }
  node_discovered(st->node, peers, n);
}

static void on_stopped(struct node *n, void *arg) {
  struct main_state *st = arg;
  (void)n;
  http_api_stop(st->http);
  st->http = NULL;
  uv_close((uv_handle_t *)&st->sigterm, NULL);
  uv_close((uv_handle_t *)&st->sigint, NULL);
}

static void on_signal(uv_signal_t *h, int signum) {
  struct main_state *st = h->data;
  if (++st->signals > 1) {
    log_warn("main", "signal %d again: exiting at once", signum);
    exit(1);
  }
  log_info("main", "signal %d: stopping", signum);
  discovery_stop(st->discovery);
  node_shutdown(st->node, on_stopped, st);
}

static int run(struct node_options *o, const struct discovery_options *d) {
  uv_loop_t loop;
  struct main_state st = {0};
  char errmsg[DISCOVERY_ERRMSG_MAX];
  uv_loop_init(&loop);
  int rv = discovery_start(&loop, d, on_discovered, &st, &st.discovery, errmsg);
  if (rv != 0) {
    log_error("main", "start: %s (%s)", errmsg, synod_errname(rv));
    uv_loop_close(&loop);
    return 2;
  }
  rv = node_start(&loop, o, &st.node, errmsg);
  if (rv != 0) {
    log_error("main", "start: %s (%s)", errmsg, synod_errname(rv));
    discovery_stop(st.discovery);
    uv_run(&loop, UV_RUN_DEFAULT);
    discovery_free(st.discovery);
    uv_loop_close(&loop);
    return 1;
  }
  if (cfg.http != NULL &&
      (rv = http_api_start(&loop, st.node, cfg.http, &st.http, errmsg)) != 0) {
    log_error("main", "start: %s (%s)", errmsg, synod_errname(rv));
    discovery_stop(st.discovery);
    node_shutdown(st.node, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    node_free(st.node);
    discovery_free(st.discovery);
    uv_loop_close(&loop);
    return 1;
  }
  uv_signal_init(&loop, &st.sigterm);
  uv_signal_init(&loop, &st.sigint);
  st.sigterm.data = st.sigint.data = &st;
  uv_signal_start(&st.sigterm, on_signal, SIGTERM);
  uv_signal_start(&st.sigint, on_signal, SIGINT);
  uv_run(&loop, UV_RUN_DEFAULT);
  node_free(st.node);
  discovery_free(st.discovery);
  uv_loop_close(&loop);
  return 0;
}

int main(int argc, char **argv) {
  struct node_peer peers[MAIN_PEERS_MAX];
  struct node_options o = {0};
  struct discovery_options dopts = {0};
  uint32_t snap_entries = 0;
  /* At most two malloc arenas (the main one and one more, glibc handing
   * each new thread whichever it can lock) instead of one per thread: a
   * pool thread's own arena keeps the high-water mark of the writes it
   * ran (LMDB's dirty pages, checkpoint batches), so a leader, whose
   * writes run on the pool, held 214-216 B per key in synod-bench's
   * 1,000,000-key fill against its followers' 198-200, and 201-213 with
   * two. No change measured in publish rates. An operator's
   * MALLOC_ARENA_MAX or GLIBC_TUNABLES setting wins. */
  if (getenv("MALLOC_ARENA_MAX") == NULL && getenv("GLIBC_TUNABLES") == NULL) {
    mallopt(M_ARENA_MAX, 2);
  }
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--version") == 0) {
      printf("synodd %s\n", SYNOD_VERSION);
      return 0;
    }
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return 0;
    }
  }
  if (parse_args(argc, argv) != 0) {
    usage(stderr);
    return 2;
  }
  int level = log_level_parse(cfg.log_level);
  int peers_n = cfg.peers ? parse_peers(cfg.peers, peers) : 0;
  if (level < 0 || peers_n < 0 || !cfg.name || !cfg.data || !cfg.client ||
      !cfg.peer || (!cfg.peers && !cfg.initial_size) ||
      parse_u32(cfg.initial_size, "--initial-size", &o.initial_size) != 0 ||
      parse_u32(cfg.tick_ms, "--tick-ms", &o.tick_ms) != 0 ||
      parse_u32(cfg.election_ticks, "--election-ticks", &o.election_ticks) ||
      parse_u32(cfg.snapshot_entries, "--snapshot-entries", &snap_entries) ||
      parse_bytes(cfg.channels_max_bytes, "--channels-max-bytes",
                  &o.channels_bytes_max) ||
      parse_count(cfg.keys_history, "--keys-history", &o.key_history_max) ||
      parse_bytes(cfg.keys_history_bytes, "--keys-history-bytes",
                  &o.key_history_bytes_max) ||
      parse_size(cfg.keys_value_max_bytes, "--keys-value-max-bytes", 1,
                 FSM_KEY_VALUE_BYTES_CAP, "from 1 to 256KiB",
                 &o.key_value_bytes_max) ||
      parse_bytes(cfg.group_checkpoint_max_bytes,
                  "--group-checkpoint-max-bytes",
                  &o.group_checkpoint_bytes_max)) {
    fprintf(stderr, "synodd: --name, --data, --client, --peer and --peers "
                    "(or --initial-size) are required; --log-level is "
                    "debug|info|warn|error\n");
    return 2;
  }
  if (o.group_checkpoint_bytes_max > (1ull << 30)) {
    fprintf(stderr, "synodd: --group-checkpoint-max-bytes is at most 1GiB\n");
    return 2;
  }
  if (parse_discovery(&dopts) != 0) {
    return 2;
  }
  if (cfg.snapshot_fork == NULL || strcmp(cfg.snapshot_fork, "auto") == 0) {
    o.snapshot_fork = NODE_SNAPSHOT_FORK_AUTO;
  } else if (strcmp(cfg.snapshot_fork, "always") == 0) {
    o.snapshot_fork = NODE_SNAPSHOT_FORK_ALWAYS;
  } else if (strcmp(cfg.snapshot_fork, "never") == 0) {
    o.snapshot_fork = NODE_SNAPSHOT_FORK_NEVER;
  } else {
    fprintf(stderr,
            "synodd: --snapshot-fork '%s' is not auto, always or never\n",
            cfg.snapshot_fork);
    return 2;
  }
  o.snapshot_entries = snap_entries;
  log_init(cfg.name, (enum log_level)level);
  signal(SIGPIPE, SIG_IGN);
  /* Inherited ignored (a parent's setting survives exec), SIGCHLD makes
   * the kernel reap children at once: waitpid could then not tell a
   * snapshot child that finished from one that was killed. */
  signal(SIGCHLD, SIG_DFL);
  o.name = cfg.name;
  o.data_dir = cfg.data;
  o.cluster_id = cfg.cluster_id;
  o.client_address = cfg.client;
  o.peer_address = cfg.peer;
  o.advertise_client = cfg.advertise_client;
  o.advertise_peer = cfg.advertise_peer;
  o.peers = peers;
  o.peers_n = (size_t)peers_n;
  return run(&o, &dopts);
}
