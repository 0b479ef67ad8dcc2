/* Discovery: finds the replicas' peer addresses (DNS, the Kubernetes API)
 * and proposes them to the node as candidates. It never decides
 * membership: the core does (DESIGN.md, "Membership and state transfer").
 * A failed round changes nothing; the replica keeps serving and retries. */
#ifndef SYNOD_DISCOVERY_H
#define SYNOD_DISCOVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define DISCOVERY_NAME_MAX 64     /* = NODE_NAME_MAX */
#define DISCOVERY_ADDRESS_MAX 128 /* = NODE_ADDRESS_MAX */
#define DISCOVERY_CANDIDATES_MAX 64
/* Discovery messages quote the API server's own text (a 403 names the
 * user, verb, resource and namespace), so they get more room than
 * SYNOD_ERRMSG_MAX. */
#define DISCOVERY_ERRMSG_MAX 1024

/* The standard service-account mount of a pod. */
#define DISCOVERY_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

enum discovery_method {
  DISCOVERY_STATIC,     /* --peers only: nothing to do at run time */
  DISCOVERY_DNS,        /* resolve a headless Service name */
  DISCOVERY_KUBERNETES, /* list pods through the API server */
};

/* One proposed replica: its name (the pod name, or the address itself for
 * DNS, which knows no names) and its peer address "ip:port" or
 * "[ip6]:port". */
struct discovery_candidate {
  char name[DISCOVERY_NAME_MAX];
  char address[DISCOVERY_ADDRESS_MAX];
};

/* Zero or NULL means the default, given in brackets. Strings are copied by
 * discovery_start. */
struct discovery_options {
  enum discovery_method method;
  uint16_t peer_port; /* the port peers listen on; required */
  /* DNS */
  const char *dns_name;     /* required for DNS */
  uint32_t dns_interval_ms; /* between successful rounds [5 s] */
  /* Kubernetes */
  const char *k8s_api;       /* [https://$KUBERNETES_SERVICE_HOST:..._PORT] */
  const char *k8s_namespace; /* [DISCOVERY_SA_DIR/namespace] */
  const char *k8s_label_selector; /* [app.kubernetes.io/name=synod] */
  const char *k8s_token_file;     /* [DISCOVERY_SA_DIR/token] */
  const char *k8s_ca_file;        /* [DISCOVERY_SA_DIR/ca.crt] */
  uint32_t k8s_interval_ms;       /* between successful rounds [5 s] */
  uint32_t timeout_ms;            /* one API request [10 s] */
  uint32_t backoff_max_ms;        /* retry delay ceiling [30 s] */
  uint64_t seed;                  /* backoff jitter; 0: from the clock */
};

/* Called on the loop after each successful round with the full current
 * list (possibly empty), sorted by name. Borrowed for the call. Failed
 * rounds do not call it: the previous candidates stand. */
typedef void (*discovery_cb)(void *arg,
                             const struct discovery_candidate *candidates,
                             size_t candidates_n);

struct discovery;

/* Checks the options and starts the first round at once (static: does
 * nothing, but still returns a handle to stop and free). Returns 0 and
 * *out, or SYNOD_EINVAL with errmsg (DISCOVERY_ERRMSG_MAX bytes) naming
 * the bad option and its value (no DNS name, no API address outside a
 * pod, no namespace), or SYNOD_ENOMEM. On error *out is not set and cb
 * is never called. */
int discovery_start(uv_loop_t *loop, const struct discovery_options *opts,
                    discovery_cb cb, void *arg, struct discovery **out,
                    char *errmsg);

/* Stops: no more rounds and no more callbacks; aborts a request in flight
 * (within about a second). The loop must then run until discovery's
 * handles and requests are done (uv_run returns) before discovery_free.
 * Calling it twice is harmless. */
void discovery_stop(struct discovery *d);

/* Frees a stopped discovery (or NULL). Never fails. */
void discovery_free(struct discovery *d);

/* --------------------------------------------- pure parts, unit-tested */

/* "static", "dns" or "kubernetes"; returns 0 or SYNOD_EINVAL. */
int discovery_method_parse(const char *text, enum discovery_method *out);

/* A duration: "500ms", "5s", "2m", or a bare number of seconds. Returns 0
 * and *ms (> 0), or SYNOD_EINVAL / SYNOD_ERANGE (over a day). */
int discovery_duration_parse(const char *text, uint32_t *ms);

/* The delay before retry number `failures` (1, 2, ...): min_ms doubled
 * per failure up to max_ms, then scaled by a random factor in [0.5, 1)
 * drawn from *prng (xorshift64*; never 0), so replicas that fail together
 * do not retry together. */
uint32_t discovery_backoff_ms(uint32_t failures, uint32_t min_ms,
                              uint32_t max_ms, uint64_t *prng);

/* Formats "ip:port" or "[ip6]:port" for an AF_INET/AF_INET6 address into
 * c->address, and the bare ip into c->name. Returns 0 or SYNOD_EINVAL. */
struct sockaddr;
int discovery_candidate_from_addr(const struct sockaddr *sa, uint16_t port,
                                  struct discovery_candidate *c);

/* The pod list URL: API "/api/v1/namespaces/" NS "/pods?labelSelector="
 * SELECTOR (percent-encoded). Returns 0, or SYNOD_ETOOBIG if it does not
 * fit in len bytes. */
int discovery_k8s_url(const char *api, const char *ns, const char *selector,
                      char *out, size_t len);

/* Parses a PodList (GET /api/v1/namespaces/NS/pods) into candidates:
 * pods in phase Running, with a podIP, and not being deleted (no
 * metadata.deletionTimestamp). Readiness does not matter: replicas must
 * find each other before any is ready. Returns 0 with out[0..*n) sorted
 * by name, or SYNOD_EMALFORMED (not JSON, not a PodList, an item without
 * a name) / SYNOD_ELIMIT (more than max candidates), with errmsg
 * (DISCOVERY_ERRMSG_MAX bytes) saying what and where. */
int discovery_k8s_parse(const char *body, size_t len, uint16_t port,
                        struct discovery_candidate *out, size_t max, size_t *n,
                        char *errmsg);

/* Classifies an API reply that is not 200: 401 (token rejected), 403 (the
 * ServiceAccount lacks get/list on pods in ns), 404, others; quotes the
 * API's Status message when the body has one. Returns SYNOD_EINVAL for
 * 401/403/404, SYNOD_EUNAVAILABLE otherwise, with errmsg filled
 * (DISCOVERY_ERRMSG_MAX bytes). */
int discovery_k8s_http_error(long status, const char *body, size_t len,
                             const char *ns, const char *token_file,
                             char *errmsg);

#endif /* SYNOD_DISCOVERY_H */
