/* The blocking interface: a synod_async on a background thread. Callers
 * queue a call (mutex + uv_async), the loop thread submits it, and the
 * caller waits on a condition variable until the answer or its bound. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"

/* A caller waits this much past the engine's own deadline, which always
 * fires first; it only guards against a wedged loop thread. */
#define CALL_GRACE_MS 2000

enum call_type { CALL_OP, CALL_UNOBSERVE };

/* One blocking call. Owned by the caller until queued; then shared: the
 * last of caller (on return) and loop thread (in call_finish, if the
 * caller gave up: orphaned) frees it. */
struct call {
  struct call *next;
  struct synod_client *c;
  enum call_type type;
  struct op *op; /* CALL_OP: handed to the engine when submitted */
  enum op_kind kind;
  char name[SYNOD_NAME_MAX + 1]; /* CALL_UNOBSERVE */
  uint32_t timeout_ms;           /* the engine's bound */
  bool done;
  bool orphaned;
  int rv;
  union synod_result result;
  char errmsg[SYNOD_ERRMSG_BYTES];
};

struct synod_client {
  uv_loop_t loop;
  uv_async_t wake; /* wake.data = this */
  pthread_t thread;
  struct synod_async *a;
  struct synod_options opts;
  pthread_mutex_t mu;
  pthread_cond_t cv; /* CLOCK_MONOTONIC; broadcast on every completion */
  /* Under mu: */
  struct call *head, *tail;
  bool stopping;    /* no new calls */
  bool close_begun; /* loop thread only */
  unsigned callers; /* threads inside a call */
};

static _Thread_local char tls_errmsg[SYNOD_ERRMSG_BYTES];

const char *synod_client_errmsg(void) {
  return tls_errmsg;
}

static void set_errmsg(int rv, const char *msg) {
  if (msg != NULL && msg[0] != '\0') {
    snprintf(tls_errmsg, sizeof tls_errmsg, "%s", msg);
  } else {
    snprintf(tls_errmsg, sizeof tls_errmsg, "%s", synod_strerror(rv));
  }
}

/* ---------------------------------------------------- on the loop thread */

static void call_finish(struct call *call, int rv, const char *errmsg) {
  struct synod_client *c = call->c;
  pthread_mutex_lock(&c->mu);
  if (call->orphaned) {
    if (rv == 0) {
      result_free(call->kind, &call->result);
    }
    free(call);
  } else {
    call->rv = rv;
    snprintf(call->errmsg, sizeof call->errmsg, "%s", errmsg ? errmsg : "");
    call->done = true;
    pthread_cond_broadcast(&c->cv);
  }
  pthread_mutex_unlock(&c->mu);
}

static void call_done(struct op *op, int status, const Synod__Response *resp,
                      const char *errmsg) {
  struct call *call = op->arg;
  char why[SYNOD_ERRMSG_BYTES];
  if (status == 0) {
    why[0] = '\0';
    status = result_from_response(op->kind, resp, &call->result, why);
    errmsg = why;
  }
  if (status != 0 && op->kind == OP_ELECTION_OBSERVE) {
    observer_remove(call->c->a, op->name);
  }
  call_finish(call, status, errmsg);
}

static void call_submit(struct synod_client *c, struct call *call) {
  struct op *op = call->op;
  int rv = 0;
  call->op = NULL;
  if (op->kind == OP_ELECTION_OBSERVE) {
    rv = observer_add(c->a, op->name, c->opts.election_cb, c->opts.cb_arg);
  }
  op->done = call_done;
  op->arg = call;
  if (rv == 0) {
    rv = engine_submit(c->a, op, call->timeout_ms);
    if (rv != 0 && op->kind == OP_ELECTION_OBSERVE) {
      observer_remove(c->a, op->name);
    }
  }
  if (rv != 0) {
    op_free(op);
    call_finish(call, rv, synod_async_last_errmsg(c->a));
  }
}

static void closed_cb(void *arg) {
  struct synod_client *c = arg;
  uv_close((uv_handle_t *)&c->wake, NULL); /* the last handle: run ends */
}

static void wake_cb(uv_async_t *h) {
  struct synod_client *c = h->data;
  struct call *call, *next;
  bool stop;
  pthread_mutex_lock(&c->mu);
  call = c->head;
  c->head = c->tail = NULL;
  stop = c->stopping;
  pthread_mutex_unlock(&c->mu);
  for (; call != NULL; call = next) {
    next = call->next;
    if (call->type == CALL_OP) {
      call_submit(c, call);
    } else {
      int rv = observer_remove(c->a, call->name);
      call_finish(call, rv, synod_async_last_errmsg(c->a));
    }
  }
  if (stop && !c->close_begun) {
    c->close_begun = true;
    synod_async_close(c->a, closed_cb, c);
  }
}

static void *loop_main(void *arg) {
  struct synod_client *c = arg;
  uv_run(&c->loop, UV_RUN_DEFAULT);
  return NULL;
}

/* ---------------------------------------------------- on caller threads */

static void deadline_after(struct timespec *ts, uint64_t ms) {
  clock_gettime(CLOCK_MONOTONIC, ts);
  ts->tv_sec += (time_t)(ms / 1000);
  ts->tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

/* Queues call, waits for it and moves its result to *out (may be NULL
 * when the kind has nothing to free). Frees call (or orphans it). */
static int call_run(struct synod_client *c, struct call *call,
                    union synod_result *out) {
  struct timespec deadline;
  int rv = 0;
  if (pthread_equal(pthread_self(), c->thread)) {
    op_free(call->op);
    free(call);
    set_errmsg(SYNOD_EINVAL, "called from one of the client's callbacks");
    return SYNOD_EINVAL;
  }
  deadline_after(&deadline, (uint64_t)call->timeout_ms + CALL_GRACE_MS);
  pthread_mutex_lock(&c->mu);
  if (c->stopping) {
    pthread_mutex_unlock(&c->mu);
    op_free(call->op);
    free(call);
    set_errmsg(SYNOD_ESHUTDOWN, "the client is being freed");
    return SYNOD_ESHUTDOWN;
  }
  c->callers++;
  if (c->tail != NULL) {
    c->tail->next = call;
  } else {
    c->head = call;
  }
  c->tail = call;
  uv_async_send(&c->wake);
  while (!call->done && rv != ETIMEDOUT) {
    rv = pthread_cond_timedwait(&c->cv, &c->mu, &deadline);
  }
  if (!call->done) {
    call->orphaned = true;
    rv = SYNOD_ETIMEDOUT;
    set_errmsg(rv, "no answer from the client's thread in time");
  } else {
    rv = call->rv;
    set_errmsg(rv, rv != 0 ? call->errmsg : "");
    if (rv == 0 && out != NULL) {
      *out = call->result;
    } else if (rv == 0) {
      result_free(call->kind, &call->result);
    }
    free(call);
  }
  if (--c->callers == 0) {
    pthread_cond_broadcast(&c->cv);
  }
  pthread_mutex_unlock(&c->mu);
  return rv;
}

/* Builds the op and runs it. timeout_ms 0 = the request timeout. */
static int call_op(struct synod_client *c, enum op_kind kind,
                   const struct op_args *args, uint32_t timeout_ms,
                   union synod_result *out) {
  struct call *call = calloc(1, sizeof *call);
  char errmsg[SYNOD_ERRMSG_BYTES] = "";
  int rv;
  if (call == NULL) {
    set_errmsg(SYNOD_ENOMEM, NULL);
    return SYNOD_ENOMEM;
  }
  rv = op_build(kind, args, &call->op, errmsg);
  if (rv != 0) {
    free(call);
    set_errmsg(rv, errmsg);
    return rv;
  }
  call->c = c;
  call->type = CALL_OP;
  call->kind = kind;
  call->timeout_ms = timeout_ms ? timeout_ms : c->opts.request_timeout_ms;
  return call_run(c, call, out);
}

int synod_client_new(const struct synod_options *opts,
                     struct synod_client **out) {
  struct synod_client *c = calloc(1, sizeof *c);
  pthread_condattr_t ca;
  sigset_t all, old;
  int rv;
  if (c == NULL) {
    return SYNOD_ENOMEM;
  }
  pthread_mutex_init(&c->mu, NULL);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&c->cv, &ca);
  pthread_condattr_destroy(&ca);
  if (uv_loop_init(&c->loop) != 0) {
    rv = SYNOD_EINTERNAL;
    goto err_loop;
  }
  rv = synod_async_new(&c->loop, opts, &c->a);
  if (rv != 0) {
    set_errmsg(rv, synod_async_last_errmsg(NULL));
    goto err_async;
  }
  c->opts = c->a->opts; /* with defaults filled in */
  uv_async_init(&c->loop, &c->wake, wake_cb);
  c->wake.data = c;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  rv = pthread_create(&c->thread, NULL, loop_main, c);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rv != 0) {
    rv = SYNOD_EINTERNAL;
    goto err_thread;
  }
  *out = c;
  return 0;
err_thread:
  synod_async_close(c->a, NULL, NULL);
  uv_close((uv_handle_t *)&c->wake, NULL);
  uv_run(&c->loop, UV_RUN_DEFAULT);
err_async:
  uv_loop_close(&c->loop);
err_loop:
  pthread_cond_destroy(&c->cv);
  pthread_mutex_destroy(&c->mu);
  free(c);
  return rv;
}

void synod_client_free(struct synod_client *c) {
  if (c == NULL) {
    return;
  }
  pthread_mutex_lock(&c->mu);
  c->stopping = true;
  pthread_mutex_unlock(&c->mu);
  uv_async_send(&c->wake);
  pthread_join(c->thread, NULL);
  /* Every waiting call was answered (SYNOD_ESHUTDOWN at the latest);
   * wait for the callers to leave before the mutex goes. */
  pthread_mutex_lock(&c->mu);
  while (c->callers > 0) {
    pthread_cond_wait(&c->cv, &c->mu);
  }
  pthread_mutex_unlock(&c->mu);
  uv_loop_close(&c->loop);
  pthread_cond_destroy(&c->cv);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

/* ------------------------------------------------------- the blocking API */

static uint64_t owner_or_thread(uint64_t owner_id) {
  return owner_id != SYNOD_OWNER_THREAD ? owner_id : (uint64_t)gettid();
}

uint64_t synod_session_id(struct synod_client *c) {
  return synod_async_session_id(c->a);
}

int synod_session_open(struct synod_client *c, uint32_t timeout_ms,
                       uint64_t *session_id) {
  struct op_args args = {0};
  int rv = call_op(c, OP_SESSION_WAIT, &args, timeout_ms, NULL);
  if (rv == 0 && session_id != NULL) {
    *session_id = synod_async_session_id(c->a);
  }
  return rv;
}

static int lock_acquire(struct synod_client *c, const char *name,
                        uint64_t owner_id, uint32_t wait_ms,
                        struct synod_lock_grant *grant) {
  struct op_args args = {.name = name,
                         .owner_id = owner_or_thread(owner_id),
                         .timeout_ms = wait_ms,
                         .lock_delay_ms = c->opts.lock_delay_ms};
  union synod_result r;
  int rv = call_op(c, OP_LOCK_ACQUIRE, &args,
                   wait_ms + c->opts.request_timeout_ms, &r);
  if (rv == 0 && grant != NULL) {
    *grant = r.lock_grant;
  }
  return rv;
}

int synod_lock_acquire(struct synod_client *c, const char *name,
                       uint64_t owner_id, uint32_t timeout_ms,
                       struct synod_lock_grant *grant) {
  return lock_acquire(c, name, owner_id,
                      timeout_ms ? timeout_ms : c->opts.request_timeout_ms,
                      grant);
}

int synod_lock_try(struct synod_client *c, const char *name, uint64_t owner_id,
                   struct synod_lock_grant *grant) {
  return lock_acquire(c, name, owner_id, 0, grant);
}

int synod_lock_release(struct synod_client *c, const char *name,
                       uint64_t owner_id, uint32_t timeout_ms,
                       uint32_t *hold_count) {
  struct op_args args = {.name = name, .owner_id = owner_or_thread(owner_id)};
  union synod_result r;
  int rv = call_op(c, OP_LOCK_RELEASE, &args, timeout_ms, &r);
  if (rv == 0 && hold_count != NULL) {
    *hold_count = r.hold_count;
  }
  return rv;
}

int synod_lock_query(struct synod_client *c, const char *name, unsigned flags,
                     uint32_t timeout_ms, struct synod_lock_info *info) {
  struct op_args args = {.name = name, .flags = flags};
  union synod_result r;
  int rv = call_op(c, OP_LOCK_QUERY, &args, timeout_ms, &r);
  if (rv == 0 && info != NULL) {
    *info = r.lock_info;
  }
  return rv;
}

int synod_lock_check(struct synod_client *c, const char *name, uint64_t token,
                     unsigned flags, uint32_t timeout_ms,
                     struct synod_lock_check *check) {
  struct op_args args = {.name = name, .token = token, .flags = flags};
  union synod_result r;
  int rv = call_op(c, OP_LOCK_CHECK, &args, timeout_ms, &r);
  if (rv == 0 && check != NULL) {
    *check = r.lock_check;
  }
  return rv;
}

/* get, set, add and get-add: one int64 comes back. */
static int counter_value(struct synod_client *c, enum op_kind kind,
                         const struct op_args *args, uint32_t timeout_ms,
                         int64_t *value) {
  union synod_result r;
  int rv = call_op(c, kind, args, timeout_ms, &r);
  if (rv == 0 && value != NULL) {
    *value = r.value;
  }
  return rv;
}

int synod_counter_get(struct synod_client *c, const char *name, unsigned flags,
                      uint32_t timeout_ms, int64_t *value) {
  struct op_args args = {.name = name, .flags = flags};
  return counter_value(c, OP_COUNTER_GET, &args, timeout_ms, value);
}

int synod_counter_set(struct synod_client *c, const char *name, int64_t value,
                      uint32_t timeout_ms) {
  struct op_args args = {.name = name, .value = value};
  return counter_value(c, OP_COUNTER_SET, &args, timeout_ms, NULL);
}

int synod_counter_add(struct synod_client *c, const char *name, int64_t delta,
                      uint32_t timeout_ms, int64_t *value) {
  struct op_args args = {.name = name, .value = delta};
  return counter_value(c, OP_COUNTER_ADD, &args, timeout_ms, value);
}

int synod_counter_get_add(struct synod_client *c, const char *name,
                          int64_t delta, uint32_t timeout_ms,
                          int64_t *previous) {
  struct op_args args = {.name = name, .value = delta};
  return counter_value(c, OP_COUNTER_GET_ADD, &args, timeout_ms, previous);
}

int synod_counter_cas(struct synod_client *c, const char *name, int64_t expect,
                      int64_t update, uint32_t timeout_ms,
                      struct synod_counter_cas *out) {
  struct op_args args = {.name = name, .value = expect, .update = update};
  union synod_result r;
  int rv = call_op(c, OP_COUNTER_CAS, &args, timeout_ms, &r);
  if (rv == 0 && out != NULL) {
    *out = r.cas;
  }
  return rv;
}

int synod_counter_delete(struct synod_client *c, const char *name,
                         uint32_t timeout_ms, bool *existed) {
  struct op_args args = {.name = name};
  union synod_result r;
  int rv = call_op(c, OP_COUNTER_DELETE, &args, timeout_ms, &r);
  if (rv == 0 && existed != NULL) {
    *existed = r.existed;
  }
  return rv;
}

int synod_counter_list(struct synod_client *c, const char *prefix,
                       const char *start_after, uint32_t limit, unsigned flags,
                       uint32_t timeout_ms, struct synod_counter_list *list) {
  struct op_args args = {
      .name = prefix, .name2 = start_after, .limit = limit, .flags = flags};
  union synod_result r;
  int rv = call_op(c, OP_COUNTER_LIST, &args, timeout_ms, &r);
  if (rv == 0) {
    *list = r.list;
  }
  return rv;
}

int synod_election_campaign(struct synod_client *c, const char *name,
                            const void *value, size_t value_len,
                            uint32_t timeout_ms,
                            struct synod_election_campaign *out) {
  struct op_args args = {.name = name, .bytes = value, .bytes_len = value_len};
  union synod_result r;
  int rv = call_op(c, OP_ELECTION_CAMPAIGN, &args, timeout_ms, &r);
  if (rv == 0 && out != NULL) {
    *out = r.campaign;
  } else if (rv == 0) {
    synod_election_campaign_free(&r.campaign);
  }
  return rv;
}

/* resign, leader, observe: an ElectionInfo comes back. */
static int election_info(struct synod_client *c, enum op_kind kind,
                         const struct op_args *args, uint32_t timeout_ms,
                         struct synod_election_info *info) {
  union synod_result r;
  int rv = call_op(c, kind, args, timeout_ms, &r);
  if (rv == 0 && info != NULL) {
    *info = r.info;
  } else if (rv == 0) {
    synod_election_info_free(&r.info);
  }
  return rv;
}

int synod_election_resign(struct synod_client *c, const char *name,
                          uint32_t timeout_ms,
                          struct synod_election_info *info) {
  struct op_args args = {.name = name};
  return election_info(c, OP_ELECTION_RESIGN, &args, timeout_ms, info);
}

int synod_election_leader(struct synod_client *c, const char *name,
                          unsigned flags, uint32_t timeout_ms,
                          struct synod_election_info *info) {
  struct op_args args = {.name = name, .flags = flags};
  return election_info(c, OP_ELECTION_LEADER, &args, timeout_ms, info);
}

int synod_election_observe(struct synod_client *c, const char *name,
                           uint32_t timeout_ms,
                           struct synod_election_info *info) {
  struct op_args args = {.name = name};
  return election_info(c, OP_ELECTION_OBSERVE, &args, timeout_ms, info);
}

int synod_election_unobserve(struct synod_client *c, const char *name) {
  struct call *call;
  char errmsg[SYNOD_ERRMSG_BYTES];
  int rv = name_check("election", name, errmsg);
  if (rv != 0) {
    set_errmsg(rv, errmsg);
    return rv;
  }
  call = calloc(1, sizeof *call);
  if (call == NULL) {
    return SYNOD_ENOMEM;
  }
  call->c = c;
  call->type = CALL_UNOBSERVE;
  snprintf(call->name, sizeof call->name, "%s", name);
  call->timeout_ms = c->opts.request_timeout_ms;
  return call_run(c, call, NULL);
}

int synod_member_remove(struct synod_client *c, const char *name,
                        uint32_t timeout_ms) {
  struct op_args args = {.name = name};
  union synod_result r;
  return call_op(c, OP_MEMBER_REMOVE, &args, timeout_ms, &r);
}

int synod_status(struct synod_client *c, uint32_t timeout_ms,
                 struct synod_status *st) {
  return synod_status_ex(c, 0, timeout_ms, st);
}

int synod_status_ex(struct synod_client *c, unsigned flags, uint32_t timeout_ms,
                    struct synod_status *st) {
  struct op_args args = {.flags = flags};
  union synod_result r;
  int rv = call_op(c, OP_STATUS, &args, timeout_ms, &r);
  if (rv == 0) {
    *st = r.status;
  }
  return rv;
}

/* ------------------------------------------------------------ channels */

/* Runs a channel call whose result is a channel's info; hands it to out
 * (or frees it). */
static int channel_info_call(struct synod_client *c, enum op_kind kind,
                             const struct op_args *args, uint32_t timeout_ms,
                             struct synod_channel_info *out) {
  union synod_result r;
  int rv = call_op(c, kind, args, timeout_ms, &r);
  if (rv == 0 && out != NULL) {
    *out = r.channel;
  } else if (rv == 0) {
    synod_channel_info_free(&r.channel);
  }
  return rv;
}

int synod_channel_create(struct synod_client *c, const char *name,
                         const struct synod_channel_limits *limits,
                         uint32_t timeout_ms, struct synod_channel_info *out) {
  struct op_args args = {.name = name, .limits = limits};
  return channel_info_call(c, OP_CHANNEL_CREATE, &args, timeout_ms, out);
}

int synod_channel_publish(struct synod_client *c, const char *name,
                          const void *const *messages, const size_t *lens,
                          size_t n, const char *message_id, uint32_t timeout_ms,
                          struct synod_channel_published *out) {
  struct op_args args = {.name = name,
                         .name2 = message_id,
                         .messages = messages,
                         .lens = lens,
                         .messages_n = n};
  union synod_result r;
  int rv = call_op(c, OP_CHANNEL_PUBLISH, &args, timeout_ms, &r);
  if (rv == 0 && out != NULL) {
    *out = r.published;
  }
  return rv;
}

int synod_channel_read(struct synod_client *c, const char *name, uint64_t from,
                       uint32_t max, unsigned flags, uint32_t timeout_ms,
                       struct synod_channel_messages *out) {
  struct op_args args = {
      .name = name, .from = from, .limit = max, .flags = flags};
  union synod_result r;
  int rv = call_op(c, OP_CHANNEL_READ, &args, timeout_ms, &r);
  if (rv == 0) {
    *out = r.messages;
  }
  return rv;
}

int synod_channel_info(struct synod_client *c, const char *name, unsigned flags,
                       uint32_t timeout_ms, struct synod_channel_info *out) {
  struct op_args args = {.name = name, .flags = flags};
  return channel_info_call(c, OP_CHANNEL_INFO, &args, timeout_ms, out);
}

int synod_channel_list(struct synod_client *c, const char *after,
                       uint32_t limit, unsigned flags, uint32_t timeout_ms,
                       struct synod_channel_list *out) {
  struct op_args args = {.name = after, .limit = limit, .flags = flags};
  union synod_result r;
  int rv = call_op(c, OP_CHANNEL_LIST, &args, timeout_ms, &r);
  if (rv == 0) {
    *out = r.channels;
  }
  return rv;
}

int synod_channel_delete(struct synod_client *c, const char *name,
                         uint32_t timeout_ms, struct synod_channel_info *out) {
  struct op_args args = {.name = name};
  return channel_info_call(c, OP_CHANNEL_DELETE, &args, timeout_ms, out);
}
