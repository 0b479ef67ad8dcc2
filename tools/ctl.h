/* synodctl's shared pieces: exit codes, global options, parsing and JSON
 * helpers (ctl_util.c, pure and unit-tested), and child processes
 * (ctl_proc.c). */
#ifndef SYNOD_CTL_H
#define SYNOD_CTL_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "synod.h"

/* Exit codes, as documented by `synodctl --help`. A command run by `lock`
 * or `once` passes its own status on (128+N when killed by signal N). */
#define CTL_EXIT_OK 0
#define CTL_EXIT_ERROR 1 /* the cluster could not be reached, refused, ... */
#define CTL_EXIT_USAGE 2
#define CTL_EXIT_BUSY                                                          \
  75                     /* lock held elsewhere / not granted in time,         \
                            slot already taken, CAS did not swap, no leader */
#define CTL_EXIT_LOST 76 /* lock or leadership lost while held */
/* key watch: the next event is no longer in the servers' key history */
#define CTL_EXIT_COMPACTED 77

struct ctl_opts {
  const char *endpoints; /* NULL: SYNOD_ENDPOINTS or the default */
  uint32_t timeout_ms;   /* per request; 0: the library's default */
  uint32_t ttl_ms;       /* session TTL; 0: the default */
  /* Per connection attempt (TCP connect, then Hello); 0: the library's
   * default. From --connect-timeout or SYNOD_CONNECT_TIMEOUT. */
  uint32_t connect_timeout_ms;
  bool json;
  const char *prog; /* argv[0] for messages */
};

/* ------------------------------------------------------ ctl_util.c: pure */

/* Parses a duration: an unsigned integer with a unit ms, s, m or h ("500ms",
 * "10s", "2m", "1h"); a bare number is seconds. Returns 0 and *ms, or
 * SYNOD_EINVAL (bad syntax) / SYNOD_ERANGE (over 2^32-1 ms). */
int ctl_duration_parse(const char *text, uint32_t *ms);

/* Parses a whole decimal integer (optional sign for int64). Returns 0 or
 * SYNOD_EINVAL / SYNOD_ERANGE. */
int ctl_int64_parse(const char *text, int64_t *v);
int ctl_uint64_parse(const char *text, uint64_t *v);

/* JSON shapes printed by --json (one object per line). Return new
 * references; NULL only when out of memory. */
json_t *ctl_status_json(const char *endpoint, const struct synod_status *st);
json_t *ctl_election_json(const struct synod_election_info *info);
json_t *ctl_counter_list_json(const struct synod_counter_list *list);
json_t *ctl_lock_info_json(const char *name,
                           const struct synod_lock_info *info);

/* What `synodctl subscribe --json` prints for a message, in this order:
 * {"channel","offset","index","time_ms","data"}, data as a string when it
 * is valid UTF-8, else "data_base64" with the bytes in base64. */
json_t *ctl_channel_message_json(const struct synod_channel_message *m);

/* The printable text of n bytes, for one line of output: valid UTF-8
 * as it is, but \\ for a backslash, \n \r \t, and \xHH for every other
 * control character (C0, DEL, C1) and every byte that is not UTF-8. out
 * has room for 4 * n + 1 bytes; NUL-terminated. */
void ctl_escape(char *out, const void *data, size_t n);

/* Base64 (RFC 4648, padded) of n bytes into out, which has room for
 * 4 * ((n + 2) / 3) + 1 bytes; NUL-terminated. */
void ctl_base64(char *out, const void *data, size_t n);

/* One human-readable line for an election's state, as `observe` and
 * `leader` print it: "leader=VALUE session=S revision=R candidates=C" or
 * "no leader (revision=R)". */
void ctl_election_line(const struct synod_election_info *info, char *out,
                       size_t len);

/* ctl_ready.c: whether the replica that answered `st` is ready to serve:
 * a member (voter, or learner) of the configuration it reports, that knows
 * a leader and whose applied index is at most lag_max behind its commit
 * index. Returns true or false; `why` (len bytes) gets one line either
 * way, naming the replica and the numbers. */
bool ctl_ready_check(const struct synod_status *st, uint64_t lag_max, char *why,
                     size_t len);

/* ------------------------------------------------------ ctl_elect.c: pure */

/* `synodctl elect`'s arguments. Besides NAME VALUE it takes the spellings
 * of the Kubernetes leader-elector sidecar, each as --flag=value or
 * --flag value: --election NAME, --id VALUE, --http ADDR, --ttl D, and
 * (ignored: synod has no namespaces or cluster credentials)
 * --election-namespace NS and --use-cluster-credentials[=BOOL]. Strings
 * point into argv. */
struct ctl_elect_args {
  const char *name;  /* the election */
  const char *value; /* the candidate's value; NULL: the caller's default */
  const char *http;  /* address to serve GET / on; NULL: no HTTP */
  const char *ttl;   /* as given; ttl_ms parsed, 0 when absent */
  uint32_t ttl_ms;
  const char *ignored; /* the last sidecar-only flag seen, for a note */
};

/* Parses argv[1..argc) (argv[0] is "elect"). Returns 0, or SYNOD_EINVAL
 * with one line in err (len bytes): a flag given twice (or both as a flag
 * and positionally), a missing or empty name, an unknown option. */
int ctl_elect_args_parse(int argc, char **argv, struct ctl_elect_args *a,
                         char *err, size_t len);

/* The ip:port that httpd can bind for a sidecar-style --http address:
 * "localhost:P" is 127.0.0.1:P and ":P" (Go's every interface) is
 * 0.0.0.0:P; anything else is copied. Returns 0 or SYNOD_EINVAL (no port,
 * no room). */
int ctl_http_address(const char *in, char *out, size_t len);

/* What elect --http knows, for the answer. Borrowed strings. */
struct ctl_elect_view {
  bool has_leader;
  const char *leader; /* the leader's value (leader_len bytes) */
  size_t leader_len;
  uint64_t leader_session;
  const char *own; /* our candidate value */
  size_t own_len;
  uint64_t own_session; /* 0 before our session opened */
  /* Our session is OPEN as libsynod last reported it, it was never lost,
   * and we are not resigning. */
  bool trusted;
};

/* The name to answer {"name":...} with: the leader's value, or "" when
 * there is none, and "" instead of our own value unless our own session
 * leads and is trusted (fail closed). *name borrows v->leader or a
 * static "". */
void ctl_elect_answer(const struct ctl_elect_view *v, const char **name,
                      size_t *len);

/* Prints obj compactly on one line to stdout and drops the reference. */
void ctl_json_print(json_t *obj);

/* ------------------------------------------------------ ctl_key.c: pure */

/* A transaction read by `synodctl key txn`, from JSON of this shape (every
 * array optional, at most SYNOD_KEY_TXN_OPS_MAX entries each, at least
 * one operation in all):
 *
 *   {"compare": [{"key": "devices/d1", "mod_revision": 42},
 *                {"key": "k", "version": 0},
 *                {"key": "k", "value": "text", "op": "!="}],
 *    "success": [{"put": "devices/d1", "value": "gw-b",
 *                 "session_bound": true, "prev": true},
 *                {"get": "devices/d1"},
 *                {"del": "devices/old/", "prefix": true}],
 *    "failure": [{"get": "devices/d1"}]}
 *
 * A compare names a key and exactly one of version, create_revision,
 * mod_revision, session (integers >= 0) or value (a string); "op" is
 * "=" (the default), "!=", "<" or ">". An operation is {"put": KEY,
 * "value": V} (with optional "session_bound" and "prev"), {"get": KEY}
 * or {"del": KEY} (with optional "prefix" and "prev"). Unknown fields,
 * wrong types and duplicate fields are errors. */
struct ctl_txn {
  struct synod_key_txn txn; /* points into the arrays and root below */
  struct synod_key_compare *compares;
  struct synod_key_op *success;
  struct synod_key_op *failure;
  json_t *root; /* the strings borrow from it */
};

/* Parses n bytes of text. Returns 0 and *t (free with ctl_txn_free), or
 * SYNOD_EINVAL with one line in err (len bytes) naming the place:
 * "compare[1]: \"op\" must be a string". */
int ctl_txn_parse(const char *text, size_t n, struct ctl_txn *t, char *err,
                  size_t len);
void ctl_txn_free(struct ctl_txn *t);
/* Whether a put of either branch is session-bound. */
bool ctl_txn_binds(const struct ctl_txn *t);

/* JSON shapes of `synodctl key ... --json`. A key or value that is not
 * UTF-8 is given as "key_base64" / "value_base64" instead. */
json_t *ctl_kv_json(const struct synod_kv *kv, bool with_value);
json_t *ctl_key_put_json(const char *key, const struct synod_key_put_result *r);
json_t *ctl_key_get_json(const char *key, const struct synod_key_get_result *r);
json_t *ctl_key_delete_json(const char *key,
                            const struct synod_key_delete_result *r);
/* {"succeeded", "revision", "results": [{"put"|"get"|"del": {...}}]}. */
json_t *ctl_key_txn_json(const struct ctl_txn *t,
                         const struct synod_key_txn_result *r);
/* What `synodctl key watch --json` prints for an event, in this order:
 * {"revision","event","type": "put"|"delete","key", then for a put
 * "value","create_revision","mod_revision","version","session_id"}, and
 * "prev": {the key's fields before, with its value} when the event has
 * one. */
json_t *ctl_key_event_json(const struct synod_key_event *e);

/* ------------------------------------------------------ ctl_group.c: pure */

/* JSON shapes of `synodctl group ... --json`, as the HTTP API's
 * (README "HTTP groups") except that bytes that are not UTF-8 are given
 * as "data_base64" (as every synodctl shape does). A member:
 * {"name","data","session","joined_offset"}. A group: {"group",
 * "view_id","offset","member_count", with_members: "members" (in join
 * order) and "coordinator", then "first_offset","next_offset","bytes",
 * "checkpoint": {"offset","bytes","index","time_ms","member","usable"}
 * or null, "state_requests"}. */
json_t *ctl_group_member_json(const struct synod_group_member *m);
json_t *ctl_group_info_json(const struct synod_group_info *info,
                            bool with_members);

/* The members a watch knows, in join order: from a full view, then
 * moved along by each view change (view 1, a group's first, starts from
 * no members). Unknown (known false) until set, or after a change that
 * does not match (a count that disagrees). */
struct ctl_group_members {
  bool known;
  char **names; /* n owned strings */
  size_t n;
};
/* Returns 0 or -1 (out of memory: then unknown). */
int ctl_group_members_set(struct ctl_group_members *m,
                          const struct synod_group_view *v);
int ctl_group_members_apply(struct ctl_group_members *m,
                            const struct synod_group_item *it);
void ctl_group_members_free(struct ctl_group_members *m);

/* "view", "message", "state_request", "checkpoint". */
const char *ctl_group_item_type(enum synod_group_item_type t);

/* One stream item, as `group watch --json` prints it: {"group","offset",
 * "index","time_ms","type"} and by type: view {"view_id","joined":
 * [members],"left":[names],"member_count","coordinator","members":
 * [names]} (the last two null when m does not know them); message
 * {"from","to","data"} ("" for no sender / every member); state_request
 * {"to","member"}; checkpoint {"checkpoint":{"offset","bytes","index",
 * "time_ms","member"}}. m may be NULL. */
json_t *ctl_group_item_json(const char *group,
                            const struct synod_group_item *it,
                            const struct ctl_group_members *m);

/* The environment `group join` gives its command and hook for view v:
 * SYNOD_GROUP, SYNOD_MEMBER, SYNOD_VIEW_ID, SYNOD_VIEW_OFFSET,
 * SYNOD_MEMBER_COUNT, SYNOD_IS_COORDINATOR (1 or 0), SYNOD_COORDINATOR
 * (the first member, "" in an empty view) and SYNOD_MEMBERS (the names in
 * join order, joined by ','). A NULL-terminated array of "K=V" strings
 * (free with ctl_group_env_free), or NULL when out of memory. */
char **ctl_group_env(const char *group, const char *member,
                     const struct synod_group_view *v);
void ctl_group_env_free(char **env);

/* ------------------------------------------------------ ctl_proc.c */

/* Makes a blocking client from the global options (client_name "synodctl
 * CMD"). Prints the error and returns NULL on failure. */
struct synod_client *ctl_client(const struct ctl_opts *o, const char *cmd,
                                struct synod_options *extra);

/* Prints "PROG: what: message" for a failed call and returns the exit
 * code it maps to (CTL_EXIT_BUSY for ELOCKED/ETIMEDOUT on locks is the
 * caller's choice; this gives CTL_EXIT_ERROR). */
int ctl_fail(const struct ctl_opts *o, const char *what, int rv);

/* The signals synodctl handles in its main thread (INT, TERM, HUP, CHLD,
 * USR1, USR2): blocked in every thread, taken with sigtimedwait. */
void ctl_signals_block(sigset_t *set, sigset_t *old);

/* Whether INT, TERM or HUP is pending (taken if so; the other signals
 * of `set` pending are taken and dropped). For the loops that wait in
 * steps of CTL_POLL_MS for what a subscription delivers. */
bool ctl_signalled(const sigset_t *set);
#define CTL_POLL_MS 200

/* Forks and execs argv[0] (searched on PATH) with `old` as its signal
 * mask and env additions applied (NULL-terminated "K=V" list). Returns
 * the pid, or -1 with errno. A failed exec exits the child with 127. */
pid_t ctl_spawn(char *const argv[], const sigset_t *old, char *const env[],
                int stdout_fd);

/* Converts a wait status into an exit code (128+N for signal N). */
int ctl_exit_code(int wstatus);

/* Runs argv as a child and waits for it, forwarding INT/TERM/HUP to it.
 * If *lost becomes true (set from another thread, which then raises
 * SIGUSR1 in this one), the child gets SIGTERM, then SIGKILL after
 * grace_ms, and *was_lost is set. Returns the child's exit code, or
 * -1 if it could not be started (message printed). */
int ctl_run_child(const struct ctl_opts *o, char *const argv[],
                  const sigset_t *set, const sigset_t *old, char *const env[],
                  atomic_bool *lost, uint32_t grace_ms, bool *was_lost);

/* ------------------------------------------------------ commands */

int cmd_lock(const struct ctl_opts *o, int argc, char **argv);
int cmd_once(const struct ctl_opts *o, int argc, char **argv);
int cmd_counter(const struct ctl_opts *o, int argc, char **argv);
int cmd_elect(const struct ctl_opts *o, int argc, char **argv);
int cmd_leader(const struct ctl_opts *o, int argc, char **argv);
int cmd_observe(const struct ctl_opts *o, int argc, char **argv);
int cmd_status(const struct ctl_opts *o, int argc, char **argv);
int cmd_dev(const struct ctl_opts *o, int argc, char **argv);
int cmd_ready(const struct ctl_opts *o, int argc, char **argv);
int cmd_member(const struct ctl_opts *o, int argc, char **argv);
int cmd_publish(const struct ctl_opts *o, int argc, char **argv);
int cmd_channel(const struct ctl_opts *o, int argc, char **argv);
int cmd_subscribe(const struct ctl_opts *o, int argc, char **argv);
int cmd_key(const struct ctl_opts *o, int argc, char **argv);
int cmd_group(const struct ctl_opts *o, int argc, char **argv);
/* argv[0] is "join". */
int cmd_group_join(const struct ctl_opts *o, int argc, char **argv);

#endif
