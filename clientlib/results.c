/* Results: the public structs made from Responses, and their destructors. */
#include <stdlib.h>
#include <string.h>

#include "engine.h"

static char *dup_or_empty(const char *s) {
  return strdup(s ? s : "");
}

void synod_counter_list_free(struct synod_counter_list *l) {
  if (l == NULL) {
    return;
  }
  for (size_t i = 0; i < l->count; i++) {
    free(l->entries[i].name);
  }
  free(l->entries);
  memset(l, 0, sizeof *l);
}

void synod_election_info_free(struct synod_election_info *info) {
  if (info == NULL) {
    return;
  }
  free(info->name);
  free(info->value);
  memset(info, 0, sizeof *info);
}

void synod_election_campaign_free(struct synod_election_campaign *c) {
  if (c == NULL) {
    return;
  }
  synod_election_info_free(&c->info);
  c->leader = false;
}

void synod_status_free(struct synod_status *s) {
  if (s == NULL) {
    return;
  }
  for (size_t i = 0; i < s->members_count; i++) {
    free(s->members[i].name);
    free(s->members[i].peer_address);
    free(s->members[i].client_address);
    free(s->members[i].role);
  }
  free(s->members);
  free(s->name);
  free(s->role);
  free(s->leader_name);
  free(s->version);
  memset(s, 0, sizeof *s);
}

int election_info_from_pb(const Synod__ElectionInfo *pb,
                          struct synod_election_info *out) {
  static const Synod__ElectionInfo empty = SYNOD__ELECTION_INFO__INIT;
  memset(out, 0, sizeof *out);
  if (pb == NULL) {
    pb = &empty; /* an absent message reads as all defaults */
  }
  out->name = dup_or_empty(pb->name);
  out->value = malloc(pb->value.len + 1);
  if (out->name == NULL || out->value == NULL) {
    synod_election_info_free(out);
    return SYNOD_ENOMEM;
  }
  if (pb->value.len > 0) {
    memcpy(out->value, pb->value.data, pb->value.len);
  }
  out->value[pb->value.len] = '\0';
  out->value_len = pb->value.len;
  out->has_leader = pb->has_leader;
  out->session_id = pb->session_id;
  out->revision = pb->revision;
  out->candidates = pb->candidates;
  return 0;
}

static int list_from_pb(const Synod__CounterListReply *pb,
                        struct synod_counter_list *out) {
  memset(out, 0, sizeof *out);
  out->more = pb->more;
  if (pb->n_counters == 0) {
    return 0;
  }
  out->entries = calloc(pb->n_counters, sizeof *out->entries);
  if (out->entries == NULL) {
    return SYNOD_ENOMEM;
  }
  for (size_t i = 0; i < pb->n_counters; i++) {
    out->entries[i].name = dup_or_empty(pb->counters[i]->name);
    out->entries[i].value = pb->counters[i]->value;
    out->count = i + 1;
    if (out->entries[i].name == NULL) {
      synod_counter_list_free(out);
      return SYNOD_ENOMEM;
    }
  }
  return 0;
}

static int member_from_pb(const Synod__Member *pb, struct synod_member *m) {
  m->name = dup_or_empty(pb->name);
  m->peer_address = dup_or_empty(pb->peer_address);
  m->client_address = dup_or_empty(pb->client_address);
  m->role = dup_or_empty(pb->role);
  m->voter = pb->voter;
  m->match_index = pb->match_index;
  return m->name && m->peer_address && m->client_address && m->role
             ? 0
             : SYNOD_ENOMEM;
}

static int status_from_pb(const Synod__StatusReply *pb,
                          struct synod_status *out) {
  int rv = 0;
  memset(out, 0, sizeof *out);
  out->name = dup_or_empty(pb->name);
  out->role = dup_or_empty(pb->role);
  out->leader_name = dup_or_empty(pb->leader_name);
  out->version = dup_or_empty(pb->version);
  if (!out->name || !out->role || !out->leader_name || !out->version) {
    rv = SYNOD_ENOMEM;
    goto err;
  }
  out->term = pb->term;
  out->commit_index = pb->commit_index;
  out->applied_index = pb->applied_index;
  out->last_index = pb->last_index;
  out->snapshot_index = pb->snapshot_index;
  out->snapshot_bytes = pb->snapshot_bytes;
  out->log_syncs = pb->log_syncs;
  out->log_synced_entries = pb->log_synced_entries;
  out->digest = pb->digest;
  if (pb->n_members > 0) {
    out->members = calloc(pb->n_members, sizeof *out->members);
    if (out->members == NULL) {
      rv = SYNOD_ENOMEM;
      goto err;
    }
  }
  for (size_t i = 0; i < pb->n_members; i++) {
    out->members_count = i + 1;
    rv = member_from_pb(pb->members[i], &out->members[i]);
    if (rv != 0) {
      goto err;
    }
  }
  return 0;
err:
  synod_status_free(out);
  return rv;
}

/* The Response body case each kind of request expects (NOT_SET: none). */
static Synod__Response__BodyCase expected_case(enum op_kind kind) {
  switch (kind) {
  case OP_SESSION_OPEN:
    return SYNOD__RESPONSE__BODY_SESSION_OPEN;
  case OP_SESSION_KEEPALIVE:
    return SYNOD__RESPONSE__BODY_SESSION_KEEPALIVE;
  case OP_LOCK_ACQUIRE:
    return SYNOD__RESPONSE__BODY_LOCK_ACQUIRE;
  case OP_LOCK_RELEASE:
    return SYNOD__RESPONSE__BODY_LOCK_RELEASE;
  case OP_LOCK_QUERY:
    return SYNOD__RESPONSE__BODY_LOCK_QUERY;
  case OP_LOCK_CHECK:
    return SYNOD__RESPONSE__BODY_LOCK_CHECK;
  case OP_COUNTER_GET:
  case OP_COUNTER_SET:
  case OP_COUNTER_ADD:
  case OP_COUNTER_GET_ADD:
    return SYNOD__RESPONSE__BODY_COUNTER_VALUE;
  case OP_COUNTER_CAS:
    return SYNOD__RESPONSE__BODY_COUNTER_CAS;
  case OP_COUNTER_DELETE:
    return SYNOD__RESPONSE__BODY_COUNTER_DELETE;
  case OP_COUNTER_LIST:
    return SYNOD__RESPONSE__BODY_COUNTER_LIST;
  case OP_ELECTION_CAMPAIGN:
    return SYNOD__RESPONSE__BODY_ELECTION_CAMPAIGN;
  case OP_ELECTION_RESIGN:
  case OP_ELECTION_LEADER:
  case OP_ELECTION_OBSERVE:
    return SYNOD__RESPONSE__BODY_ELECTION_LEADER;
  case OP_STATUS:
    return SYNOD__RESPONSE__BODY_STATUS;
  case OP_CHANNEL_CREATE:
  case OP_CHANNEL_INFO:
  case OP_CHANNEL_DELETE:
    return SYNOD__RESPONSE__BODY_CHANNEL_INFO;
  case OP_CHANNEL_PUBLISH:
    return SYNOD__RESPONSE__BODY_CHANNEL_PUBLISH;
  case OP_CHANNEL_READ:
    return SYNOD__RESPONSE__BODY_CHANNEL_MESSAGES;
  case OP_CHANNEL_LIST:
    return SYNOD__RESPONSE__BODY_CHANNEL_LIST;
  case OP_CHANNEL_SUBSCRIBE:
    return SYNOD__RESPONSE__BODY_CHANNEL_SUBSCRIBE;
  case OP_CHANNEL_CURSOR_COMMIT:
  case OP_CHANNEL_CURSOR_GET:
    return SYNOD__RESPONSE__BODY_CHANNEL_CURSOR;
  case OP_KEY_PUT:
    return SYNOD__RESPONSE__BODY_KEY_PUT;
  case OP_KEY_GET:
    return SYNOD__RESPONSE__BODY_KEY_GET;
  case OP_KEY_DELETE:
    return SYNOD__RESPONSE__BODY_KEY_DELETE;
  case OP_KEY_LIST:
    return SYNOD__RESPONSE__BODY_KEY_LIST;
  case OP_KEY_TXN:
    return SYNOD__RESPONSE__BODY_KEY_TXN;
  default:
    return SYNOD__RESPONSE__BODY__NOT_SET;
  }
}

/* Fills the plain (no allocation) results. */
static void result_plain(enum op_kind kind, const Synod__Response *resp,
                         union synod_result *out) {
  switch (kind) {
  case OP_LOCK_ACQUIRE:
    out->lock_grant.token = resp->lock_acquire->token;
    out->lock_grant.hold_count = resp->lock_acquire->hold_count;
    break;
  case OP_LOCK_RELEASE:
    out->hold_count = resp->lock_release->hold_count;
    break;
  case OP_LOCK_QUERY:
    out->lock_info.held = resp->lock_query->held;
    out->lock_info.session_id = resp->lock_query->session_id;
    out->lock_info.owner_id = resp->lock_query->owner_id;
    out->lock_info.token = resp->lock_query->token;
    out->lock_info.hold_count = resp->lock_query->hold_count;
    out->lock_info.waiters = resp->lock_query->waiters;
    break;
  case OP_LOCK_CHECK:
    out->lock_check.current = resp->lock_check->current;
    out->lock_check.current_token = resp->lock_check->current_token;
    break;
  case OP_COUNTER_GET:
  case OP_COUNTER_SET:
  case OP_COUNTER_ADD:
  case OP_COUNTER_GET_ADD:
    out->value = resp->counter_value->value;
    break;
  case OP_COUNTER_CAS:
    out->cas.swapped = resp->counter_cas->swapped;
    out->cas.value = resp->counter_cas->value;
    break;
  case OP_COUNTER_DELETE:
    out->existed = resp->counter_delete->existed;
    break;
  default:
    break;
  }
}

/* ------------------------------------------------------------ channels */

void synod_channel_info_free(struct synod_channel_info *info) {
  if (info != NULL) {
    free(info->name);
    info->name = NULL;
  }
}

void synod_channel_messages_free(struct synod_channel_messages *m) {
  if (m == NULL) {
    return;
  }
  for (size_t i = 0; m->messages != NULL && i < m->count; i++) {
    free(m->messages[i].data);
  }
  free(m->messages);
  memset(m, 0, sizeof *m);
}

void synod_channel_list_free(struct synod_channel_list *l) {
  if (l == NULL) {
    return;
  }
  for (size_t i = 0; l->channels != NULL && i < l->count; i++) {
    synod_channel_info_free(&l->channels[i]);
  }
  free(l->channels);
  memset(l, 0, sizeof *l);
}

static int channel_info_from_pb(const Synod__ChannelInfo *pb,
                                struct synod_channel_info *out) {
  memset(out, 0, sizeof *out);
  if (pb == NULL) {
    return SYNOD_EMALFORMED;
  }
  out->name = strdup(pb->name ? pb->name : "");
  if (out->name == NULL) {
    return SYNOD_ENOMEM;
  }
  if (pb->limits != NULL) {
    out->limits.max_messages = pb->limits->max_messages;
    out->limits.max_bytes = pb->limits->max_bytes;
    out->limits.max_age_ms = pb->limits->max_age_ms;
    out->limits.max_message_bytes = pb->limits->max_message_bytes;
    out->limits.refuse_when_full = pb->limits->refuse_when_full;
  }
  out->first_offset = pb->first_offset;
  out->next_offset = pb->next_offset;
  out->messages = pb->messages;
  out->bytes = pb->bytes;
  out->subscribers = pb->subscribers;
  out->cursors = pb->cursors;
  return 0;
}

static int channel_messages_from_pb(const Synod__ChannelMessages *pb,
                                    struct synod_channel_messages *out) {
  memset(out, 0, sizeof *out);
  out->first_offset = pb->first_offset;
  out->next_offset = pb->next_offset;
  out->messages =
      calloc(pb->n_messages ? pb->n_messages : 1, sizeof *out->messages);
  if (out->messages == NULL) {
    return SYNOD_ENOMEM;
  }
  for (size_t i = 0; i < pb->n_messages; i++) {
    const Synod__ChannelMessage *m = pb->messages[i];
    struct synod_channel_message *x = &out->messages[i];
    x->offset = m->offset;
    x->index = m->index;
    x->time_ms = m->time_ms;
    x->len = m->data.len;
    x->data = malloc(m->data.len + 1);
    if (x->data == NULL) {
      synod_channel_messages_free(out);
      return SYNOD_ENOMEM;
    }
    if (m->data.len > 0) {
      memcpy(x->data, m->data.data, m->data.len);
    }
    ((char *)x->data)[m->data.len] = '\0'; /* handy for text */
    out->count = i + 1;
  }
  return 0;
}

static int channel_list_from_pb(const Synod__ChannelListReply *pb,
                                struct synod_channel_list *out) {
  memset(out, 0, sizeof *out);
  out->more = pb->more;
  out->channels =
      calloc(pb->n_channels ? pb->n_channels : 1, sizeof *out->channels);
  if (out->channels == NULL) {
    return SYNOD_ENOMEM;
  }
  for (size_t i = 0; i < pb->n_channels; i++) {
    int rv = channel_info_from_pb(pb->channels[i], &out->channels[i]);
    if (rv != 0) {
      synod_channel_list_free(out);
      return rv;
    }
    out->count = i + 1;
  }
  return 0;
}

static int channel_result(enum op_kind kind, const Synod__Response *resp,
                          union synod_result *out) {
  const Synod__ChannelPublishReply *p = resp->channel_publish;
  switch (kind) {
  case OP_CHANNEL_PUBLISH:
    out->published.first_offset = p->first_offset;
    out->published.last_offset = p->last_offset;
    out->published.index = p->index;
    out->published.duplicate = p->duplicate;
    return 0;
  case OP_CHANNEL_READ:
    return channel_messages_from_pb(resp->channel_messages, &out->messages);
  case OP_CHANNEL_LIST:
    return channel_list_from_pb(resp->channel_list, &out->channels);
  case OP_CHANNEL_SUBSCRIBE:
    out->sub_start.offset = resp->channel_subscribe->offset;
    out->sub_start.after_index = resp->channel_subscribe->after_index;
    out->sub_start.after_offset = resp->channel_subscribe->after_offset;
    out->sub_start.first_offset = resp->channel_subscribe->first_offset;
    out->sub_start.next_offset = resp->channel_subscribe->next_offset;
    return 0;
  case OP_CHANNEL_CURSOR_COMMIT:
  case OP_CHANNEL_CURSOR_GET:
    out->cursor.offset = resp->channel_cursor->offset;
    out->cursor.index = resp->channel_cursor->index;
    return 0;
  case OP_CHANNEL_CREDIT:
  case OP_CHANNEL_UNSUBSCRIBE:
    return 0;
  default:
    return channel_info_from_pb(resp->channel_info, &out->channel);
  }
}

int result_from_response(enum op_kind kind, const Synod__Response *resp,
                         union synod_result *out, char *errmsg) {
  Synod__Response__BodyCase want = expected_case(kind);
  memset(out, 0, sizeof *out);
  if (resp == NULL) {
    return 0; /* OP_SESSION_WAIT */
  }
  if (op_kind_is_group(kind)) {
    return groups_result_from_response(kind, resp, out, errmsg);
  }
  if (want != SYNOD__RESPONSE__BODY__NOT_SET && resp->body_case != want) {
    errmsg_printf(errmsg, "%s: the server answered with body %d, not %d",
                  op_kind_name(kind), (int)resp->body_case, (int)want);
    return SYNOD_EMALFORMED;
  }
  if (op_kind_is_key(kind)) {
    return keys_result_from_response(kind, resp, out);
  }
  switch (kind) {
  case OP_COUNTER_LIST:
    return list_from_pb(resp->counter_list, &out->list);
  case OP_ELECTION_CAMPAIGN:
    out->campaign.leader = resp->election_campaign->leader;
    return election_info_from_pb(resp->election_campaign->info,
                                 &out->campaign.info);
  case OP_ELECTION_RESIGN:
  case OP_ELECTION_LEADER:
  case OP_ELECTION_OBSERVE:
    return election_info_from_pb(resp->election_leader, &out->info);
  case OP_STATUS:
    return status_from_pb(resp->status, &out->status);
  default:
    if (kind >= OP_CHANNEL_CREATE) {
      return channel_result(kind, resp, out);
    }
    result_plain(kind, resp, out);
    return 0;
  }
}

void result_free(enum op_kind kind, union synod_result *r) {
  if (op_kind_is_key(kind)) {
    keys_result_free(kind, r);
    return;
  }
  if (op_kind_is_group(kind)) {
    groups_result_free(kind, r);
    return;
  }
  switch (kind) {
  case OP_COUNTER_LIST:
    synod_counter_list_free(&r->list);
    break;
  case OP_ELECTION_CAMPAIGN:
    synod_election_campaign_free(&r->campaign);
    break;
  case OP_ELECTION_RESIGN:
  case OP_ELECTION_LEADER:
  case OP_ELECTION_OBSERVE:
    synod_election_info_free(&r->info);
    break;
  case OP_STATUS:
    synod_status_free(&r->status);
    break;
  case OP_CHANNEL_CREATE:
  case OP_CHANNEL_INFO:
  case OP_CHANNEL_DELETE:
    synod_channel_info_free(&r->channel);
    break;
  case OP_CHANNEL_READ:
    synod_channel_messages_free(&r->messages);
    break;
  case OP_CHANNEL_LIST:
    synod_channel_list_free(&r->channels);
    break;
  default:
    break;
  }
}
