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

enum call_type {
  CALL_OP,
  CALL_UNOBSERVE,
  CALL_SUBSCRIBE,
  CALL_SUB_CLOSE,
  CALL_FN /* client_run: a function of another file, on the loop thread */
};

/* One blocking call. Owned by the caller until queued; then shared: the
 * last of caller (on return) and loop thread (in call_finish, if the
 * caller gave up: orphaned) frees it. */
struct call {
  struct call *next;
  struct synod_client *c;
  enum call_type type;
  struct op *op; /* CALL_OP: handed to the engine when submitted */
  enum op_kind kind;
  char name[SYNOD_NAME_MAX + 1];           /* CALL_UNOBSERVE */
  struct synod_subscription *sub;          /* CALL_SUBSCRIBE, CALL_SUB_CLOSE */
  struct synod_subscribe_options sub_opts; /* strings: the sub's copies */
  struct synod_key_watch_options key_opts; /* a key watch's, the same */
  uint64_t group_from;                     /* a group watch's */
  uint32_t group_window;
  client_fn fn; /* CALL_FN, with fn_arg */
  void *fn_arg;
  uint32_t timeout_ms; /* the engine's bound */
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
  struct synod_subscription *subs;    /* started and not closed */
  struct synod_subscription *reports; /* with consumption to report */
  bool stopping;                      /* no new calls */
  bool close_begun;                   /* loop thread only */
  unsigned callers;                   /* threads inside a call */
};

/* A message queued for the application: one allocation holding the
 * struct, then the channel's name and the data, each NUL-terminated. A
 * key watch's event: the key, value and previous value, the same way. A
 * group watch's item: its joined and left arrays, then its strings. */
struct sub_msg {
  struct sub_msg *next;
  union {
    struct synod_channel_message m;
    struct synod_key_event k;
    struct synod_group_item g;
  };
};

/* A blocking subscription: the async one's callbacks (on the loop
 * thread) queue what it delivers; synod_subscription_next takes it on
 * the caller's thread and reports the consumption back in batches, so
 * the credit the server gets follows the application (end to end). */
struct synod_subscription {
  struct synod_client *c;
  char *channel, *cursor; /* copies for the options */
  uint32_t report_at;     /* report consumption in batches of this */
  /* Loop thread only: */
  struct synod_async_subscription *as; /* NULL once ended or closed */
  struct call *start_call;             /* until it started or ended */
  /* Under c->mu: */
  struct synod_subscription *next;        /* in c->subs */
  struct synod_subscription *report_next; /* in c->reports */
  bool report_queued;
  uint32_t taken; /* taken since the last report */
  struct sub_msg *head, *tail;
  bool ended;
  int end_rv;
  uint64_t first_available;
  char end_errmsg[SYNOD_ERRMSG_BYTES];
  struct synod_subscription_start start;
  bool keys; /* a key watch: the two fields below, not start */
  struct synod_key_watch_start key_start;
  bool group;           /* a group watch: channel is the group's name */
  char *member;         /* a group watch's member ("": every item) */
  uint64_t group_start; /* the first offset it delivers */
  /* The caller's: the message last returned, freed by the next call. */
  struct sub_msg *current;
};

/* A blocking key watch is a blocking subscription (sub first: freeing
 * sub frees it). So is a group watch. */
struct synod_key_watch {
  struct synod_subscription sub;
};

struct synod_group_watch {
  struct synod_subscription sub;
};

static void bsub_free(struct synod_subscription *sub);
static void bsub_orphaned(struct synod_subscription *sub);

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
  bool orphaned;
  pthread_mutex_lock(&c->mu);
  orphaned = call->orphaned;
  if (!orphaned) {
    call->rv = rv;
    snprintf(call->errmsg, sizeof call->errmsg, "%s", errmsg ? errmsg : "");
    call->done = true;
    pthread_cond_broadcast(&c->cv);
  }
  pthread_mutex_unlock(&c->mu);
  if (orphaned) { /* the caller gave up: what it left is ours to free */
    if (rv == 0 && call->type == CALL_OP) {
      result_free(call->kind, &call->result);
    }
    if (call->type == CALL_SUBSCRIBE) {
      bsub_orphaned(call->sub);
    }
    free(call);
  }
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

/* ------------------------------------------ subscriptions, loop thread */

static void bsub_message_cb(void *arg, const struct synod_channel_message *m);
static void bsub_end_cb(void *arg, int status, const char *errmsg,
                        uint64_t first_available);
static void bsub_start_cb(void *arg,
                          const struct synod_subscription_start *start);
static void bsub_keys_cb(void *arg, const struct synod_key_event *evs,
                         size_t n);
static void bsub_key_start_cb(void *arg,
                              const struct synod_key_watch_start *start);
static void bsub_group_cb(void *arg, const struct synod_group_item *items,
                          size_t n);
static void bsub_group_start_cb(void *arg, uint64_t offset);

/* Unlinks sub from the client's lists. Caller holds c->mu. */
static void bsub_unlink(struct synod_subscription *sub) {
  struct synod_client *c = sub->c;
  for (struct synod_subscription **p = &c->subs; *p != NULL; p = &(*p)->next) {
    if (*p == sub) {
      *p = sub->next;
      break;
    }
  }
  for (struct synod_subscription **p = &c->reports; *p != NULL;
       p = &(*p)->report_next) {
    if (*p == sub) {
      *p = sub->report_next;
      break;
    }
  }
  sub->report_queued = false;
}

/* Unsubscribes (if still on) and unlinks; the caller frees sub. */
static void bsub_detach(struct synod_subscription *sub) {
  struct synod_client *c = sub->c;
  if (sub->as != NULL) {
    synod_async_unsubscribe(c->a, sub->as);
    sub->as = NULL;
  }
  pthread_mutex_lock(&c->mu);
  bsub_unlink(sub);
  pthread_mutex_unlock(&c->mu);
}

/* Its subscribe's caller gave up waiting (a wedged loop thread): ours. */
static void bsub_orphaned(struct synod_subscription *sub) {
  bsub_detach(sub);
  bsub_free(sub);
}

static void bsub_submit(struct synod_client *c, struct call *call) {
  struct synod_subscription *sub = call->sub;
  int rv;
  if (call->type == CALL_SUB_CLOSE) {
    bsub_detach(sub);
    call_finish(call, 0, "");
    return;
  }
  sub->start_call = call;
  if (sub->keys) {
    rv = key_watch_start(c->a, &call->key_opts, bsub_keys_cb, bsub_end_cb,
                         bsub_key_start_cb, sub, true, call->timeout_ms,
                         &sub->as);
  } else if (sub->group) {
    rv = group_sub_start(c->a, sub->channel, sub->member, call->group_from, 0,
                         call->group_window, bsub_group_cb, bsub_end_cb,
                         bsub_group_start_cb, sub, true, call->timeout_ms,
                         &sub->as);
  } else {
    rv = sub_start(c->a, &call->sub_opts, bsub_message_cb, bsub_end_cb,
                   bsub_start_cb, sub, true, call->timeout_ms, &sub->as);
  }
  if (rv != 0) {
    sub->start_call = NULL;
    call_finish(call, rv, synod_async_last_errmsg(c->a));
  }
}

/* Reports what the callers took from each subscription since the last
 * time, so the engine grants the server that much credit again. */
static void bsub_reports(struct synod_client *c) {
  for (;;) {
    struct synod_subscription *sub;
    uint32_t n;
    pthread_mutex_lock(&c->mu);
    sub = c->reports;
    if (sub != NULL) {
      c->reports = sub->report_next;
      sub->report_queued = false;
      n = sub->taken;
      sub->taken = 0;
    }
    pthread_mutex_unlock(&c->mu);
    if (sub == NULL) {
      return;
    }
    /* sub cannot go meanwhile: closing it takes this thread. */
    if (sub->as != NULL && n > 0) {
      sub_consumed(c->a, sub->as, n);
    }
  }
}

/* The server confirmed sub's start (recorded in it by the caller). */
static void bsub_started(struct synod_subscription *sub) {
  struct synod_client *c = sub->c;
  struct call *call = sub->start_call;
  sub->start_call = NULL;
  pthread_mutex_lock(&c->mu);
  sub->next = c->subs; /* synod_client_free frees it from now on */
  c->subs = sub;
  pthread_mutex_unlock(&c->mu);
  call_finish(call, 0, "");
}

/* Both written before the call finishes, which the caller waits for. */
static void bsub_start_cb(void *arg,
                          const struct synod_subscription_start *start) {
  struct synod_subscription *sub = arg;
  sub->start = *start;
  bsub_started(sub);
}

static void bsub_key_start_cb(void *arg,
                              const struct synod_key_watch_start *start) {
  struct synod_subscription *sub = arg;
  sub->key_start = *start;
  bsub_started(sub);
}

static void bsub_group_start_cb(void *arg, uint64_t offset) {
  struct synod_subscription *sub = arg;
  sub->group_start = offset;
  bsub_started(sub);
}

static void bsub_end_cb(void *arg, int status, const char *errmsg,
                        uint64_t first_available) {
  struct synod_subscription *sub = arg;
  struct synod_client *c = sub->c;
  struct call *call = sub->start_call;
  sub->as = NULL;     /* freed by the engine when this returns */
  if (call != NULL) { /* it never started: synod_subscribe says why */
    sub->start_call = NULL;
    call_finish(call, status, errmsg);
    return;
  }
  pthread_mutex_lock(&c->mu);
  sub->ended = true;
  sub->end_rv = status;
  sub->first_available = first_available;
  snprintf(sub->end_errmsg, sizeof sub->end_errmsg, "%s", errmsg);
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

/* It cannot be kept, and skipping it would be a gap: end here. */
static void bsub_no_memory(struct synod_subscription *sub) {
  synod_async_unsubscribe(sub->c->a, sub->as);
  bsub_end_cb(sub, SYNOD_ENOMEM, "out of memory for a delivered message", 0);
}

/* Queues x for the caller. */
static void bsub_queue(struct synod_subscription *sub, struct sub_msg *x) {
  struct synod_client *c = sub->c;
  x->next = NULL;
  pthread_mutex_lock(&c->mu);
  if (sub->tail != NULL) {
    sub->tail->next = x;
  } else {
    sub->head = x;
  }
  sub->tail = x;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

/* Copies len bytes at src to *p, NUL-terminated; returns the copy and
 * moves *p past it. */
static char *bsub_copy(char **p, const void *src, size_t len) {
  char *out = *p;
  if (len > 0) {
    memcpy(out, src, len);
  }
  out[len] = '\0';
  *p += len + 1;
  return out;
}

static void bsub_keys_cb(void *arg, const struct synod_key_event *evs,
                         size_t n) {
  struct synod_subscription *sub = arg;
  for (size_t i = 0; i < n && sub->as != NULL; i++) {
    const struct synod_key_event *e = &evs[i];
    struct sub_msg *x = malloc(sizeof *x + e->kv.key_len + e->kv.value_len +
                               e->prev.key_len + e->prev.value_len + 4);
    char *p;
    if (x == NULL) {
      bsub_no_memory(sub);
      return;
    }
    p = (char *)(x + 1);
    x->k = *e;
    x->k.kv.key = bsub_copy(&p, e->kv.key, e->kv.key_len);
    x->k.kv.value = (uint8_t *)bsub_copy(&p, e->kv.value, e->kv.value_len);
    x->k.prev.key = bsub_copy(&p, e->prev.key, e->prev.key_len);
    x->k.prev.value =
        (uint8_t *)bsub_copy(&p, e->prev.value, e->prev.value_len);
    bsub_queue(sub, x);
  }
}

/* The bytes a copy of `it` takes after its struct: the joined and left
 * arrays (pointer-aligned, first), then every string NUL-terminated. */
static size_t group_item_bytes(const struct synod_group_item *it) {
  size_t n = it->joined_n * sizeof *it->joined + it->left_n * sizeof(char *);
  n += strlen(it->from) + strlen(it->to) + strlen(it->member) + it->len + 4;
  n += it->checkpoint.member ? strlen(it->checkpoint.member) + 1 : 0;
  for (size_t i = 0; i < it->joined_n; i++) {
    n += strlen(it->joined[i].name) + it->joined[i].data_len + 2;
  }
  for (size_t i = 0; i < it->left_n; i++) {
    n += strlen(it->left[i]) + 1;
  }
  return n;
}

static void bsub_group_cb(void *arg, const struct synod_group_item *items,
                          size_t n) {
  struct synod_subscription *sub = arg;
  for (size_t i = 0; i < n && sub->as != NULL; i++) {
    const struct synod_group_item *it = &items[i];
    struct sub_msg *x = malloc(sizeof *x + group_item_bytes(it));
    if (x == NULL) {
      bsub_no_memory(sub);
      return;
    }
    struct synod_group_member *joined = (struct synod_group_member *)(x + 1);
    char **left = (char **)(joined + it->joined_n);
    char *p = (char *)(left + it->left_n);
    x->g = *it;
    for (size_t j = 0; j < it->joined_n; j++) {
      joined[j] = it->joined[j];
      joined[j].name =
          bsub_copy(&p, it->joined[j].name, strlen(it->joined[j].name));
      joined[j].data =
          (uint8_t *)bsub_copy(&p, it->joined[j].data, it->joined[j].data_len);
    }
    for (size_t j = 0; j < it->left_n; j++) {
      left[j] = bsub_copy(&p, it->left[j], strlen(it->left[j]));
    }
    x->g.joined = it->joined_n > 0 ? joined : NULL;
    x->g.left = it->left_n > 0 ? left : NULL;
    x->g.from = bsub_copy(&p, it->from, strlen(it->from));
    x->g.to = bsub_copy(&p, it->to, strlen(it->to));
    x->g.member = bsub_copy(&p, it->member, strlen(it->member));
    x->g.data = bsub_copy(&p, it->data, it->len);
    if (it->checkpoint.member != NULL) {
      x->g.checkpoint.member =
          bsub_copy(&p, it->checkpoint.member, strlen(it->checkpoint.member));
    }
    bsub_queue(sub, x);
  }
}

static void bsub_message_cb(void *arg, const struct synod_channel_message *m) {
  struct synod_subscription *sub = arg;
  size_t clen = strlen(m->channel);
  struct sub_msg *x = malloc(sizeof *x + clen + 1 + m->len + 1);
  char *p;
  if (x == NULL) {
    bsub_no_memory(sub);
    return;
  }
  p = (char *)(x + 1);
  x->m = *m;
  x->m.channel = bsub_copy(&p, m->channel, clen);
  x->m.data = bsub_copy(&p, m->data, m->len);
  bsub_queue(sub, x);
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
  bsub_reports(c);
  for (; call != NULL; call = next) {
    next = call->next;
    if (call->type == CALL_OP) {
      call_submit(c, call);
    } else if (call->type == CALL_SUBSCRIBE || call->type == CALL_SUB_CLOSE) {
      bsub_submit(c, call);
    } else if (call->type == CALL_FN) {
      call->fn(c->a, call, call->fn_arg);
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
 * when the kind has nothing to free). Frees call (or orphans it: then
 * *gave_up, if given, is set, and the loop thread frees what it holds). */
static int call_run(struct synod_client *c, struct call *call,
                    union synod_result *out, bool *gave_up) {
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
    if (gave_up != NULL) {
      *gave_up = true;
    }
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
  return call_run(c, call, out, NULL);
}

int client_run(struct synod_client *c, client_fn fn, void *arg,
               uint32_t timeout_ms) {
  struct call *call = calloc(1, sizeof *call);
  if (call == NULL) {
    set_errmsg(SYNOD_ENOMEM, NULL);
    return SYNOD_ENOMEM;
  }
  call->c = c;
  call->type = CALL_FN;
  call->fn = fn;
  call->fn_arg = arg;
  call->timeout_ms = timeout_ms ? timeout_ms : c->opts.request_timeout_ms;
  return call_run(c, call, NULL, NULL);
}

void client_run_done(struct call *call, int rv, const char *errmsg) {
  call_finish(call, rv, errmsg);
}

uint32_t client_request_timeout_ms(const struct synod_client *c) {
  return c->opts.request_timeout_ms;
}

void client_set_errmsg(int rv, const char *msg) {
  set_errmsg(rv, msg);
}

int client_call(struct synod_client *c, enum op_kind kind,
                const struct op_args *args, uint32_t timeout_ms,
                union synod_result *out) {
  return call_op(c, kind, args, timeout_ms, out);
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
  /* The subscriptions still open ended with SYNOD_ESHUTDOWN. */
  while (c->subs != NULL) {
    struct synod_subscription *sub = c->subs;
    c->subs = sub->next;
    bsub_free(sub);
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

uint64_t synod_session_valid_ms(struct synod_client *c) {
  return synod_async_session_valid_ms(c->a);
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
  return call_run(c, call, NULL, NULL);
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
  return synod_channel_read_pinned(c, name, from, max, flags, 0, timeout_ms,
                                   out);
}

int synod_channel_read_pinned(struct synod_client *c, const char *name,
                              uint64_t from, uint32_t max, unsigned flags,
                              uint64_t known_index, uint32_t timeout_ms,
                              struct synod_channel_messages *out) {
  struct op_args args = {.name = name,
                         .from = from,
                         .limit = max,
                         .flags = flags,
                         .known_index = known_index};
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

/* ---------------------------------------------------------- cursors */

static int cursor_call(struct synod_client *c, enum op_kind kind,
                       const struct op_args *args, uint32_t timeout_ms,
                       struct synod_channel_cursor *out) {
  union synod_result r;
  int rv = call_op(c, kind, args, timeout_ms, &r);
  if (rv == 0 && out != NULL) {
    *out = r.cursor;
  }
  return rv;
}

int synod_channel_cursor_commit(struct synod_client *c, const char *channel,
                                const char *cursor, uint64_t offset,
                                uint32_t timeout_ms,
                                struct synod_channel_cursor *out) {
  struct op_args args = {.name = channel, .name2 = cursor, .from = offset};
  return cursor_call(c, OP_CHANNEL_CURSOR_COMMIT, &args, timeout_ms, out);
}

int synod_channel_cursor_get(struct synod_client *c, const char *channel,
                             const char *cursor, unsigned flags,
                             uint32_t timeout_ms,
                             struct synod_channel_cursor *out) {
  struct op_args args = {.name = channel, .name2 = cursor, .flags = flags};
  return cursor_call(c, OP_CHANNEL_CURSOR_GET, &args, timeout_ms, out);
}

/* ---------------------------------------------------- subscriptions */

static void bsub_free(struct synod_subscription *sub) {
  struct sub_msg *x;
  if (sub == NULL) {
    return;
  }
  while ((x = sub->head) != NULL) {
    sub->head = x->next;
    free(x);
  }
  free(sub->current);
  free(sub->channel);
  free(sub->cursor);
  free(sub->member);
  free(sub);
}

/* Starts sub (c, strings and kind set) with call (its options set) and
 * waits for the start. On an error sub is freed (or left to the loop
 * thread if the caller gave up). */
static int bsub_open(struct synod_client *c, struct synod_subscription *sub,
                     struct call *call, uint32_t window, uint32_t timeout_ms) {
  bool gave_up = false;
  int rv;
  window = window ? window : SYNOD_SUBSCRIBE_WINDOW_DEFAULT;
  sub->c = c;
  sub->report_at = window / 2 > 0 ? window / 2 : 1;
  call->c = c;
  call->type = CALL_SUBSCRIBE;
  call->sub = sub;
  call->timeout_ms = timeout_ms ? timeout_ms : c->opts.request_timeout_ms;
  rv = call_run(c, call, NULL, &gave_up);
  if (gave_up) {
    return rv; /* the loop thread frees sub */
  }
  if (rv != 0) {
    bsub_free(sub);
  }
  return rv;
}

int synod_subscribe(struct synod_client *c,
                    const struct synod_subscribe_options *o,
                    uint32_t timeout_ms, struct synod_subscription **out,
                    struct synod_subscription_start *start) {
  struct synod_subscription *sub;
  struct call *call;
  int rv;
  if (o == NULL || out == NULL) {
    set_errmsg(SYNOD_EINVAL, "channel subscribe: no options or no handle");
    return SYNOD_EINVAL;
  }
  sub = calloc(1, sizeof *sub);
  call = calloc(1, sizeof *call);
  if (sub == NULL || call == NULL ||
      (sub->channel = strdup(o->channel ? o->channel : "")) == NULL ||
      (sub->cursor = strdup(o->cursor ? o->cursor : "")) == NULL) {
    bsub_free(sub);
    free(call);
    set_errmsg(SYNOD_ENOMEM, NULL);
    return SYNOD_ENOMEM;
  }
  call->sub_opts = *o;
  call->sub_opts.channel = sub->channel;
  call->sub_opts.cursor = sub->cursor;
  rv = bsub_open(c, sub, call, o->window, timeout_ms);
  if (rv != 0) {
    return rv;
  }
  if (start != NULL) {
    *start = sub->start; /* written before the call finished */
  }
  *out = sub;
  return 0;
}

int synod_key_watch(struct synod_client *c,
                    const struct synod_key_watch_options *o,
                    uint32_t timeout_ms, struct synod_key_watch **out,
                    struct synod_key_watch_start *start) {
  struct synod_key_watch *w;
  struct call *call;
  int rv;
  if (o == NULL || out == NULL) {
    set_errmsg(SYNOD_EINVAL, "key watch: no options or no handle");
    return SYNOD_EINVAL;
  }
  w = calloc(1, sizeof *w);
  call = calloc(1, sizeof *call);
  if (w == NULL || call == NULL ||
      (w->sub.channel = strdup(o->key ? o->key : "")) == NULL) {
    bsub_free(w != NULL ? &w->sub : NULL);
    free(call);
    set_errmsg(SYNOD_ENOMEM, NULL);
    return SYNOD_ENOMEM;
  }
  w->sub.keys = true;
  call->key_opts = *o;
  call->key_opts.key = w->sub.channel;
  rv = bsub_open(c, &w->sub, call, o->window, timeout_ms);
  if (rv != 0) {
    return rv;
  }
  if (start != NULL) {
    *start = w->sub.key_start; /* written before the call finished */
  }
  *out = w;
  return 0;
}

int synod_group_watch(struct synod_client *c, const char *group,
                      const char *member, uint64_t from, uint32_t window,
                      uint32_t timeout_ms, struct synod_group_watch **out,
                      uint64_t *start_offset) {
  char why[SYNOD_ERRMSG_BYTES];
  struct synod_group_watch *w;
  struct call *call;
  int rv = group_watch_check(group, member, window, why);
  if (rv == 0 && out == NULL) {
    snprintf(why, sizeof why, "group watch: no handle");
    rv = SYNOD_EINVAL;
  }
  if (rv != 0) {
    set_errmsg(rv, why);
    return rv;
  }
  w = calloc(1, sizeof *w);
  call = calloc(1, sizeof *call);
  if (w == NULL || call == NULL || (w->sub.channel = strdup(group)) == NULL ||
      (w->sub.member = strdup(member != NULL ? member : "")) == NULL) {
    bsub_free(w != NULL ? &w->sub : NULL);
    free(call);
    set_errmsg(SYNOD_ENOMEM, NULL);
    return SYNOD_ENOMEM;
  }
  w->sub.group = true;
  call->group_from = from;
  call->group_window = window ? window : SYNOD_SUBSCRIBE_WINDOW_DEFAULT;
  rv = bsub_open(c, &w->sub, call, window, timeout_ms);
  if (rv != 0) {
    return rv;
  }
  if (start_offset != NULL) {
    *start_offset = w->sub.group_start; /* written before the call finished */
  }
  *out = w;
  return 0;
}

/* Waits under c->mu until sub has a message or ended, or the bound. */
static void bsub_wait(struct synod_client *c, struct synod_subscription *sub,
                      uint32_t timeout_ms) {
  struct timespec deadline;
  int rv = 0;
  if (timeout_ms != SYNOD_WAIT_FOREVER) {
    deadline_after(&deadline, timeout_ms);
  }
  while (sub->head == NULL && !sub->ended && timeout_ms != 0 &&
         rv != ETIMEDOUT) {
    rv = timeout_ms == SYNOD_WAIT_FOREVER
             ? pthread_cond_wait(&c->cv, &c->mu)
             : pthread_cond_timedwait(&c->cv, &c->mu, &deadline);
  }
}

/* The next item of sub into *xp (owned by sub until the next call), or
 * the status that ended it, or SYNOD_ETIMEDOUT. */
static int bsub_next(struct synod_subscription *sub, uint32_t timeout_ms,
                     struct sub_msg **xp) {
  struct synod_client *c = sub->c;
  struct sub_msg *x;
  char why[SYNOD_ERRMSG_BYTES] = "";
  int rv;
  if (pthread_equal(pthread_self(), c->thread)) {
    set_errmsg(SYNOD_EINVAL, "called from one of the client's callbacks");
    return SYNOD_EINVAL; /* it would hold up the thread that delivers */
  }
  free(sub->current); /* the caller's promise: it is done with it */
  sub->current = NULL;
  pthread_mutex_lock(&c->mu);
  c->callers++;
  bsub_wait(c, sub, timeout_ms);
  if ((x = sub->head) != NULL) {
    sub->head = x->next;
    if (sub->head == NULL) {
      sub->tail = NULL;
    }
    sub->current = x;
    *xp = x;
    rv = 0;
    if (++sub->taken >= sub->report_at && !sub->report_queued && !sub->ended) {
      sub->report_queued = true;
      sub->report_next = c->reports;
      c->reports = sub;
      uv_async_send(&c->wake); /* before leaving: the client stays */
    }
  } else if (sub->ended) {
    rv = sub->end_rv;
    snprintf(why, sizeof why, "%s", sub->end_errmsg);
  } else {
    rv = SYNOD_ETIMEDOUT;
    snprintf(why, sizeof why, "%s '%s': no %s within %u ms",
             sub->keys    ? "key watch"
             : sub->group ? "group watch"
                          : "channel",
             sub->channel,
             sub->keys    ? "event"
             : sub->group ? "item"
                          : "message",
             timeout_ms);
  }
  if (--c->callers == 0) {
    pthread_cond_broadcast(&c->cv);
  }
  pthread_mutex_unlock(&c->mu);
  set_errmsg(rv, rv != 0 ? why : "");
  return rv;
}

int synod_subscription_next(struct synod_subscription *sub, uint32_t timeout_ms,
                            struct synod_channel_message *msg) {
  struct sub_msg *x;
  int rv = bsub_next(sub, timeout_ms, &x);
  if (rv == 0) {
    *msg = x->m;
  }
  return rv;
}

int synod_key_watch_next(struct synod_key_watch *w, uint32_t timeout_ms,
                         struct synod_key_event *ev) {
  struct sub_msg *x;
  int rv = bsub_next(&w->sub, timeout_ms, &x);
  if (rv == 0) {
    *ev = x->k;
  }
  return rv;
}

int synod_group_watch_next(struct synod_group_watch *w, uint32_t timeout_ms,
                           struct synod_group_item *item) {
  struct sub_msg *x;
  int rv = bsub_next(&w->sub, timeout_ms, &x);
  if (rv == 0) {
    *item = x->g;
  }
  return rv;
}

uint64_t synod_group_watch_first_available(struct synod_group_watch *w) {
  return synod_subscription_first_available(&w->sub);
}

void synod_group_watch_close(struct synod_group_watch *w) {
  synod_subscription_close(w != NULL ? &w->sub : NULL);
}

uint64_t synod_key_watch_first_available(struct synod_key_watch *w) {
  return synod_subscription_first_available(&w->sub);
}

void synod_key_watch_close(struct synod_key_watch *w) {
  synod_subscription_close(w != NULL ? &w->sub : NULL);
}

uint64_t synod_subscription_first_available(struct synod_subscription *sub) {
  pthread_mutex_lock(&sub->c->mu);
  uint64_t first = sub->ended ? sub->first_available : 0;
  pthread_mutex_unlock(&sub->c->mu);
  return first;
}

void synod_subscription_close(struct synod_subscription *sub) {
  struct synod_client *c;
  struct call *call;
  bool gave_up = false;
  int rv;
  if (sub == NULL) {
    return;
  }
  c = sub->c;
  call = calloc(1, sizeof *call);
  if (call == NULL) {
    return; /* left to synod_client_free */
  }
  call->c = c;
  call->type = CALL_SUB_CLOSE;
  call->sub = sub;
  call->timeout_ms = c->opts.request_timeout_ms;
  rv = call_run(c, call, NULL, &gave_up);
  if (rv == 0) {
    bsub_free(sub); /* the loop thread let go of it */
  }
  /* Else the client is being freed (it frees sub), or its thread is
   * wedged: leaking sub is better than freeing what it may touch. */
}
