/* The asynchronous interface: each call builds a request and hands the
 * typed result to the caller's callback. */
#include <stdlib.h>

#include "engine.h"

typedef void (*any_cb)(void);

/* Calls the op's typed callback with the result (NULL on error). */
static void deliver_typed(struct op *op, int status,
                          const union synod_result *r) {
  void *arg = op->user_arg;
  bool ok = status == 0;
  if (op_kind_is_key(op->kind)) {
    keys_deliver(op->kind, op->user_cb, arg, status, r);
    return;
  }
  if (op_kind_is_group(op->kind)) {
    groups_deliver(op->kind, op->user_cb, arg, status, r);
    return;
  }
  switch (op->kind) {
  case OP_LOCK_ACQUIRE:
    ((synod_lock_acquire_cb)op->user_cb)(arg, status,
                                         ok ? &r->lock_grant : NULL);
    break;
  case OP_LOCK_RELEASE:
    ((synod_lock_release_cb)op->user_cb)(arg, status,
                                         ok ? &r->hold_count : NULL);
    break;
  case OP_LOCK_QUERY:
    ((synod_lock_query_cb)op->user_cb)(arg, status, ok ? &r->lock_info : NULL);
    break;
  case OP_LOCK_CHECK:
    ((synod_lock_check_cb)op->user_cb)(arg, status, ok ? &r->lock_check : NULL);
    break;
  case OP_COUNTER_CAS:
    ((synod_counter_cas_cb)op->user_cb)(arg, status, ok ? &r->cas : NULL);
    break;
  case OP_COUNTER_DELETE:
    ((synod_counter_delete_cb)op->user_cb)(arg, status,
                                           ok ? &r->existed : NULL);
    break;
  case OP_COUNTER_LIST:
    ((synod_counter_list_cb)op->user_cb)(arg, status, ok ? &r->list : NULL);
    break;
  case OP_ELECTION_CAMPAIGN:
    ((synod_election_campaign_cb)op->user_cb)(arg, status,
                                              ok ? &r->campaign : NULL);
    break;
  case OP_ELECTION_RESIGN:
  case OP_ELECTION_LEADER:
  case OP_ELECTION_OBSERVE:
    ((synod_election_cb)op->user_cb)(arg, status, ok ? &r->info : NULL);
    break;
  case OP_STATUS:
    ((synod_status_cb)op->user_cb)(arg, status, ok ? &r->status : NULL);
    break;
  case OP_MEMBER_REMOVE:
    ((synod_done_cb)op->user_cb)(arg, status);
    break;
  case OP_CHANNEL_CURSOR_COMMIT:
  case OP_CHANNEL_CURSOR_GET:
    ((synod_channel_cursor_cb)op->user_cb)(arg, status, ok ? &r->cursor : NULL);
    break;
  case OP_CHANNEL_CREATE:
  case OP_CHANNEL_INFO:
  case OP_CHANNEL_DELETE:
    ((synod_channel_info_cb)op->user_cb)(arg, status, ok ? &r->channel : NULL);
    break;
  case OP_CHANNEL_PUBLISH:
    ((synod_channel_published_cb)op->user_cb)(arg, status,
                                              ok ? &r->published : NULL);
    break;
  case OP_CHANNEL_READ:
    ((synod_channel_messages_cb)op->user_cb)(arg, status,
                                             ok ? &r->messages : NULL);
    break;
  case OP_CHANNEL_LIST:
    ((synod_channel_list_cb)op->user_cb)(arg, status, ok ? &r->channels : NULL);
    break;
  default: /* get, set, add, get-add */
    ((synod_counter_cb)op->user_cb)(arg, status, ok ? &r->value : NULL);
    break;
  }
}

static void deliver(struct op *op, int status, const Synod__Response *resp,
                    const char *errmsg) {
  struct synod_async *a = op->arg;
  union synod_result r = {0};
  (void)errmsg; /* already in a->errmsg */
  if (status == 0) {
    status = result_from_response(op->kind, resp, &r, a->errmsg);
  }
  if (op->kind == OP_ELECTION_OBSERVE && !observer_active(a, op->name)) {
    goto out; /* unobserved meanwhile: no more calls */
  }
  if (status != 0 && op->kind == OP_ELECTION_OBSERVE) {
    observer_remove(a, op->name);
  }
  if (op->user_cb != NULL) {
    deliver_typed(op, status, &r);
  }
out:
  if (status == 0) {
    result_free(op->kind, &r);
  }
}

static int submit(struct synod_async *a, enum op_kind kind,
                  const struct op_args *args, any_cb cb, void *arg,
                  uint32_t timeout_ms) {
  struct op *op;
  int rv = op_build(kind, args, &op, a->errmsg);
  if (rv != 0) {
    return rv;
  }
  op->done = deliver;
  op->arg = a;
  op->user_cb = cb;
  op->user_arg = arg;
  rv = engine_submit(a, op, timeout_ms);
  if (rv != 0) {
    op_free(op);
  }
  return rv;
}

int async_submit(struct synod_async *a, enum op_kind kind,
                 const struct op_args *args, void (*cb)(void), void *arg,
                 uint32_t timeout_ms) {
  return submit(a, kind, args, cb, arg, timeout_ms);
}

int synod_async_lock_acquire(struct synod_async *a, const char *name,
                             uint64_t owner_id, uint32_t timeout_ms,
                             synod_lock_acquire_cb cb, void *arg) {
  struct op_args args = {.name = name,
                         .owner_id = owner_id,
                         .timeout_ms = timeout_ms,
                         .lock_delay_ms = a->opts.lock_delay_ms};
  return submit(a, OP_LOCK_ACQUIRE, &args, (any_cb)cb, arg,
                timeout_ms + a->opts.request_timeout_ms);
}

int synod_async_lock_release(struct synod_async *a, const char *name,
                             uint64_t owner_id, synod_lock_release_cb cb,
                             void *arg) {
  struct op_args args = {.name = name, .owner_id = owner_id};
  return submit(a, OP_LOCK_RELEASE, &args, (any_cb)cb, arg, 0);
}

int synod_async_lock_query(struct synod_async *a, const char *name,
                           unsigned flags, synod_lock_query_cb cb, void *arg) {
  struct op_args args = {.name = name, .flags = flags};
  return submit(a, OP_LOCK_QUERY, &args, (any_cb)cb, arg, 0);
}

int synod_async_lock_check(struct synod_async *a, const char *name,
                           uint64_t token, unsigned flags,
                           synod_lock_check_cb cb, void *arg) {
  struct op_args args = {.name = name, .token = token, .flags = flags};
  return submit(a, OP_LOCK_CHECK, &args, (any_cb)cb, arg, 0);
}

int synod_async_counter_get(struct synod_async *a, const char *name,
                            unsigned flags, synod_counter_cb cb, void *arg) {
  struct op_args args = {.name = name, .flags = flags};
  return submit(a, OP_COUNTER_GET, &args, (any_cb)cb, arg, 0);
}

int synod_async_counter_set(struct synod_async *a, const char *name,
                            int64_t value, synod_counter_cb cb, void *arg) {
  struct op_args args = {.name = name, .value = value};
  return submit(a, OP_COUNTER_SET, &args, (any_cb)cb, arg, 0);
}

int synod_async_counter_cas(struct synod_async *a, const char *name,
                            int64_t expect, int64_t update,
                            synod_counter_cas_cb cb, void *arg) {
  struct op_args args = {.name = name, .value = expect, .update = update};
  return submit(a, OP_COUNTER_CAS, &args, (any_cb)cb, arg, 0);
}

int synod_async_counter_add(struct synod_async *a, const char *name,
                            int64_t delta, synod_counter_cb cb, void *arg) {
  struct op_args args = {.name = name, .value = delta};
  return submit(a, OP_COUNTER_ADD, &args, (any_cb)cb, arg, 0);
}

int synod_async_counter_get_add(struct synod_async *a, const char *name,
                                int64_t delta, synod_counter_cb cb, void *arg) {
  struct op_args args = {.name = name, .value = delta};
  return submit(a, OP_COUNTER_GET_ADD, &args, (any_cb)cb, arg, 0);
}

int synod_async_counter_delete(struct synod_async *a, const char *name,
                               synod_counter_delete_cb cb, void *arg) {
  struct op_args args = {.name = name};
  return submit(a, OP_COUNTER_DELETE, &args, (any_cb)cb, arg, 0);
}

int synod_async_counter_list(struct synod_async *a, const char *prefix,
                             const char *start_after, uint32_t limit,
                             unsigned flags, synod_counter_list_cb cb,
                             void *arg) {
  struct op_args args = {
      .name = prefix, .name2 = start_after, .limit = limit, .flags = flags};
  return submit(a, OP_COUNTER_LIST, &args, (any_cb)cb, arg, 0);
}

int synod_async_election_campaign(struct synod_async *a, const char *name,
                                  const void *value, size_t value_len,
                                  synod_election_campaign_cb cb, void *arg) {
  struct op_args args = {.name = name, .bytes = value, .bytes_len = value_len};
  return submit(a, OP_ELECTION_CAMPAIGN, &args, (any_cb)cb, arg, 0);
}

int synod_async_election_resign(struct synod_async *a, const char *name,
                                synod_election_cb cb, void *arg) {
  struct op_args args = {.name = name};
  return submit(a, OP_ELECTION_RESIGN, &args, (any_cb)cb, arg, 0);
}

int synod_async_election_leader(struct synod_async *a, const char *name,
                                unsigned flags, synod_election_cb cb,
                                void *arg) {
  struct op_args args = {.name = name, .flags = flags};
  return submit(a, OP_ELECTION_LEADER, &args, (any_cb)cb, arg, 0);
}

int synod_async_election_observe(struct synod_async *a, const char *name,
                                 synod_election_cb cb, void *arg) {
  struct op_args args = {.name = name};
  int rv = name_check("election", name, a->errmsg);
  if (rv == 0) {
    rv = observer_add(a, name, cb, arg);
  }
  if (rv != 0) {
    return rv;
  }
  rv = submit(a, OP_ELECTION_OBSERVE, &args, (any_cb)cb, arg, 0);
  if (rv != 0) {
    observer_remove(a, name);
  }
  return rv;
}

int synod_async_election_unobserve(struct synod_async *a, const char *name) {
  return observer_remove(a, name);
}

int synod_async_member_remove(struct synod_async *a, const char *name,
                              synod_done_cb cb, void *arg) {
  struct op_args args = {.name = name};
  return submit(a, OP_MEMBER_REMOVE, &args, (any_cb)cb, arg, 0);
}

int synod_async_status(struct synod_async *a, synod_status_cb cb, void *arg) {
  struct op_args args = {0};
  return submit(a, OP_STATUS, &args, (any_cb)cb, arg, 0);
}

int synod_async_channel_cursor_commit(struct synod_async *a,
                                      const char *channel, const char *cursor,
                                      uint64_t offset,
                                      synod_channel_cursor_cb cb, void *arg) {
  struct op_args args = {.name = channel, .name2 = cursor, .from = offset};
  return submit(a, OP_CHANNEL_CURSOR_COMMIT, &args, (any_cb)cb, arg, 0);
}

int synod_async_channel_cursor_get(struct synod_async *a, const char *channel,
                                   const char *cursor, unsigned flags,
                                   synod_channel_cursor_cb cb, void *arg) {
  struct op_args args = {.name = channel, .name2 = cursor, .flags = flags};
  return submit(a, OP_CHANNEL_CURSOR_GET, &args, (any_cb)cb, arg, 0);
}

int synod_async_channel_create(struct synod_async *a, const char *name,
                               const struct synod_channel_limits *limits,
                               synod_channel_info_cb cb, void *arg) {
  struct op_args args = {.name = name, .limits = limits};
  return submit(a, OP_CHANNEL_CREATE, &args, (any_cb)cb, arg, 0);
}

int synod_async_channel_publish(struct synod_async *a, const char *name,
                                const void *const *messages, const size_t *lens,
                                size_t n, const char *message_id,
                                synod_channel_published_cb cb, void *arg) {
  struct op_args args = {.name = name,
                         .name2 = message_id,
                         .messages = messages,
                         .lens = lens,
                         .messages_n = n};
  return submit(a, OP_CHANNEL_PUBLISH, &args, (any_cb)cb, arg, 0);
}

int synod_async_channel_read(struct synod_async *a, const char *name,
                             uint64_t from, uint32_t max, unsigned flags,
                             synod_channel_messages_cb cb, void *arg) {
  return synod_async_channel_read_pinned(a, name, from, max, flags, 0, cb, arg);
}

int synod_async_channel_read_pinned(struct synod_async *a, const char *name,
                                    uint64_t from, uint32_t max, unsigned flags,
                                    uint64_t known_index,
                                    synod_channel_messages_cb cb, void *arg) {
  struct op_args args = {.name = name,
                         .from = from,
                         .limit = max,
                         .flags = flags,
                         .known_index = known_index};
  return submit(a, OP_CHANNEL_READ, &args, (any_cb)cb, arg, 0);
}

int synod_async_channel_info(struct synod_async *a, const char *name,
                             unsigned flags, synod_channel_info_cb cb,
                             void *arg) {
  struct op_args args = {.name = name, .flags = flags};
  return submit(a, OP_CHANNEL_INFO, &args, (any_cb)cb, arg, 0);
}

int synod_async_channel_list(struct synod_async *a, const char *after,
                             uint32_t limit, unsigned flags,
                             synod_channel_list_cb cb, void *arg) {
  struct op_args args = {.name = after, .limit = limit, .flags = flags};
  return submit(a, OP_CHANNEL_LIST, &args, (any_cb)cb, arg, 0);
}

int synod_async_channel_delete(struct synod_async *a, const char *name,
                               synod_channel_info_cb cb, void *arg) {
  struct op_args args = {.name = name};
  return submit(a, OP_CHANNEL_DELETE, &args, (any_cb)cb, arg, 0);
}
