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

int result_from_response(enum op_kind kind, const Synod__Response *resp,
                         union synod_result *out, char *errmsg) {
  Synod__Response__BodyCase want = expected_case(kind);
  memset(out, 0, sizeof *out);
  if (resp == NULL) {
    return 0; /* OP_SESSION_WAIT */
  }
  if (want != SYNOD__RESPONSE__BODY__NOT_SET && resp->body_case != want) {
    errmsg_printf(errmsg, "%s: the server answered with body %d, not %d",
                  op_kind_name(kind), (int)resp->body_case, (int)want);
    return SYNOD_EMALFORMED;
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
    result_plain(kind, resp, out);
    return 0;
  }
}

void result_free(enum op_kind kind, union synod_result *r) {
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
  default:
    break;
  }
}
