/* Elections: FIFO candidates per name; the first leads while its session
 * lives or until it resigns. Observers learn of every change of leader (or
 * of the leader's value) through ElectionChanged events. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "fsm_int.h"

int fsm_election_cmp(const void *key, const struct otree_node *n) {
  const struct fsm_election *e = FSM_CONTAINER(n, struct fsm_election, by_name);
  return fsm_name_cmp(key, e->name, e->name_len);
}

static struct fsm_election *election_find(const struct fsm *f, const char *name,
                                          size_t len) {
  struct fsm_name k = {name, len};
  struct otree_node *n = otree_find(&f->elections, &k);
  return n ? FSM_CONTAINER(n, struct fsm_election, by_name) : NULL;
}

struct fsm_election *fsm_election_new(const char *name, size_t len) {
  struct fsm_election *e = fsm_xcalloc(1, sizeof *e);
  e->name = fsm_xstrndup(name, len);
  e->name_len = len;
  fsm_list_init(&e->candidates);
  return e;
}

/* Frees e and its candidates (unlinking them from nothing else): for
 * teardown. */
void fsm_election_free(struct fsm_election *e) {
  if (e == NULL) {
    return;
  }
  while (!fsm_list_empty(&e->candidates)) {
    struct fsm_list *n = e->candidates.next;
    struct fsm_candidate *c =
        FSM_CONTAINER(n, struct fsm_candidate, election_link);
    fsm_list_remove(n);
    free(c->value);
    free(c);
  }
  free(e->name);
  free(e);
}

struct fsm_candidate *fsm_candidate_add(struct fsm_election *e,
                                        struct fsm_session *s,
                                        const uint8_t *value, size_t len) {
  struct fsm_candidate *c = fsm_xcalloc(1, sizeof *c);
  c->election = e;
  c->session = s;
  c->value = fsm_xmalloc(len);
  if (len) {
    memcpy(c->value, value, len);
  }
  c->value_len = len;
  fsm_list_push_back(&e->candidates, &c->election_link);
  fsm_list_push_back(&s->candidacies, &c->session_link);
  e->candidates_len++;
  return c;
}

static struct fsm_candidate *election_leader(const struct fsm_election *e) {
  if (e == NULL || fsm_list_empty(&e->candidates)) {
    return NULL;
  }
  return FSM_CONTAINER(e->candidates.next, struct fsm_candidate, election_link);
}

static struct fsm_candidate *candidate_find(const struct fsm_election *e,
                                            const struct fsm_session *s) {
  for (struct fsm_list *n = e->candidates.next; n != &e->candidates;
       n = n->next) {
    struct fsm_candidate *c =
        FSM_CONTAINER(n, struct fsm_candidate, election_link);
    if (c->session == s) {
      return c;
    }
  }
  return NULL;
}

/* Fills info from e (NULL: no election of that name). Borrows e's
 * memory. */
static void election_info(const struct fsm *f, const struct fsm_election *e,
                          const char *name, Synod__ElectionInfo *info) {
  const struct fsm_candidate *lead = election_leader(e);
  synod__election_info__init(info);
  info->name = (char *)name;
  info->now_ms = f->time_ms;
  if (lead) {
    info->has_leader = 1;
    info->value.data = lead->value;
    info->value.len = lead->value_len;
    info->session_id = lead->session->id;
    info->revision = e->revision;
    info->since_ms = e->since_ms;
    info->candidates = e->candidates_len;
  }
}

static void election_changed(struct fsm *f, const struct fsm_election *e) {
  Synod__Event ev = SYNOD__EVENT__INIT;
  Synod__ElectionChanged ec = SYNOD__ELECTION_CHANGED__INIT;
  Synod__ElectionInfo info;
  election_info(f, e, e->name, &info);
  ec.info = &info;
  ev.body_case = SYNOD__EVENT__BODY_ELECTION_CHANGED;
  ev.election_changed = &ec;
  struct fsm_event *out = fsm_event_push(f, FSM_EVENT_ELECTION_CHANGED);
  out->name = fsm_output_strdup(f, e->name, e->name_len);
  out->event = fsm_event_pack(f, &ev, &out->event_len);
}

void fsm_candidate_withdraw(struct fsm *f, struct fsm_candidate *c) {
  struct fsm_election *e = c->election;
  int was_leader = election_leader(e) == c;
  fsm_list_remove(&c->election_link);
  fsm_list_remove(&c->session_link);
  e->candidates_len--;
  free(c->value);
  free(c);
  if (!was_leader) {
    return;
  }
  e->revision = e->candidates_len ? f->index : 0;
  e->since_ms = e->candidates_len ? f->time_ms : 0;
  election_changed(f, e);
  if (e->candidates_len == 0) {
    otree_remove(&f->elections, &e->by_name);
    fsm_election_free(e);
  }
}

/* ------------------------------------------------------------ requests */

static int campaign_join(struct fsm *f, struct fsm_election *e,
                         struct fsm_session *s, const ProtobufCBinaryData *v,
                         char *msg) {
  struct fsm_candidate *c = candidate_find(e, s);
  if (c) { /* re-campaign: new value, same place in the queue */
    c->value = fsm_xrealloc(c->value, v->len);
    if (v->len) {
      memcpy(c->value, v->data, v->len);
    }
    c->value_len = v->len;
  } else {
    if (e->candidates_len >= f->opt.candidates_per_election_max) {
      errmsg_set(msg,
                 "election campaign: \"%.64s\": candidates_per_election_max "
                 "%u reached",
                 e->name, f->opt.candidates_per_election_max);
      return SYNOD_ELIMIT;
    }
    c = fsm_candidate_add(e, s, v->data, v->len);
    if (e->candidates_len == 1) {
      e->revision = f->index;
      e->since_ms = f->time_ms;
    }
  }
  if (election_leader(e) == c) {
    election_changed(f, e);
  }
  return 0;
}

int fsm_election_campaign(struct fsm *f, struct fsm_session *s,
                          const Synod__Request *req, struct fsm_reply *r) {
  const Synod__ElectionCampaign *a = req->election_campaign;
  const char *name = fsm_str(a->name);
  size_t len = strlen(name);
  int rv = fsm_name_check(f, "election campaign", name, len, r->msg);
  if (rv != 0) {
    return rv;
  }
  if (a->value.len > f->opt.value_bytes_max) {
    errmsg_set(r->msg, "election campaign: value length %zu exceeds %u",
               a->value.len, f->opt.value_bytes_max);
    return SYNOD_ELIMIT;
  }
  struct fsm_election *e = election_find(f, name, len);
  if (e == NULL) {
    if (f->elections.count >= f->opt.elections_max) {
      errmsg_set(r->msg, "election campaign: elections_max %u reached",
                 f->opt.elections_max);
      return SYNOD_ELIMIT;
    }
    e = fsm_election_new(name, len);
    otree_insert(&f->elections, &e->by_name, &(struct fsm_name){name, len});
  }
  rv = campaign_join(f, e, s, &a->value, r->msg);
  if (rv != 0) {
    return rv; /* e has candidates: the limit is reached only then */
  }
  synod__election_campaign_reply__init(&r->u.campaign);
  election_info(f, e, e->name, &r->info);
  r->u.campaign.leader = election_leader(e)->session == s;
  r->u.campaign.info = &r->info;
  r->resp.body_case = SYNOD__RESPONSE__BODY_ELECTION_CAMPAIGN;
  r->resp.election_campaign = &r->u.campaign;
  return 0;
}

/* Answers with the election as it stands after the resignation. */
int fsm_election_resign(struct fsm *f, struct fsm_session *s,
                        const Synod__Request *req, struct fsm_reply *r) {
  const char *name = fsm_str(req->election_resign->name);
  size_t len = strlen(name);
  int rv = fsm_name_check(f, "election resign", name, len, r->msg);
  if (rv != 0) {
    return rv;
  }
  struct fsm_election *e = election_find(f, name, len);
  struct fsm_candidate *c = e ? candidate_find(e, s) : NULL;
  if (c == NULL) {
    errmsg_set(r->msg,
               "election resign: \"%.64s\": session %" PRIu64
               " is not a candidate",
               name, s->id);
    return SYNOD_ENOTFOUND;
  }
  fsm_candidate_withdraw(f, c);
  election_info(f, election_find(f, name, len), name, &r->info);
  r->resp.body_case = SYNOD__RESPONSE__BODY_ELECTION_LEADER;
  r->resp.election_leader = &r->info;
  return 0;
}

/* Leader and observe's first answer; no election means no leader. */
int fsm_election_leader(struct fsm *f, struct fsm_session *s,
                        const Synod__Request *req, struct fsm_reply *r) {
  int observe = req->body_case == SYNOD__REQUEST__BODY_ELECTION_OBSERVE;
  const char *name = observe ? fsm_str(req->election_observe->name)
                             : fsm_str(req->election_leader->name);
  size_t len = strlen(name);
  (void)s;
  int rv = fsm_name_check(f, observe ? "election observe" : "election leader",
                          name, len, r->msg);
  if (rv != 0) {
    return rv;
  }
  election_info(f, election_find(f, name, len), name, &r->info);
  r->resp.body_case = SYNOD__RESPONSE__BODY_ELECTION_LEADER;
  r->resp.election_leader = &r->info;
  return 0;
}
