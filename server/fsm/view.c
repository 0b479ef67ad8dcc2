/* Read-only views of locks, sessions and elections, for status pages. */
#include "fsm_int.h"

size_t fsm_locks_view(const struct fsm *f, size_t max,
                      void (*fn)(void *arg, const struct fsm_lock_view *v),
                      void *arg) {
  size_t n = 0;
  for (struct otree_node *t = otree_first(&f->locks); t; t = otree_next(t)) {
    const struct fsm_lock *l = FSM_CONTAINER(t, struct fsm_lock, by_name);
    if (n++ >= max) {
      continue;
    }
    struct fsm_lock_view v = {.name = l->name,
                              .name_len = l->name_len,
                              .held = l->holder != NULL,
                              .session_id = l->holder ? l->holder->id : 0,
                              .owner_id = l->owner_id,
                              .token = l->token,
                              .hold_count = l->hold_count,
                              .waiters = l->waiters_len};
    fn(arg, &v);
  }
  return n;
}

static uint32_t list_len(const struct fsm_list *head) {
  uint32_t n = 0;
  for (const struct fsm_list *p = head->next; p != head; p = p->next) {
    n++;
  }
  return n;
}

static void session_view(const struct fsm_session *s,
                         struct fsm_session_view *v) {
  *v = (struct fsm_session_view){.id = s->id,
                                 .client_name = fsm_str(s->client_name),
                                 .ttl_ms = s->ttl_ms,
                                 .expires_ms = s->keepalive_ms + s->ttl_ms,
                                 .locks_held = list_len(&s->locks)};
}

size_t fsm_sessions_view(const struct fsm *f, size_t max,
                         void (*fn)(void *arg,
                                    const struct fsm_session_view *v),
                         void *arg) {
  size_t n = 0;
  for (struct otree_node *t = otree_first(&f->sessions); t; t = otree_next(t)) {
    const struct fsm_session *s = FSM_CONTAINER(t, struct fsm_session, by_id);
    if (n++ >= max) {
      continue;
    }
    struct fsm_session_view v;
    session_view(s, &v);
    fn(arg, &v);
  }
  return n;
}

bool fsm_session_view_get(const struct fsm *f, uint64_t id,
                          struct fsm_session_view *out) {
  const struct fsm_session *s = fsm_session_find(f, id);
  if (s == NULL) {
    return false;
  }
  session_view(s, out);
  return true;
}

size_t fsm_elections_view(const struct fsm *f, size_t max,
                          void (*fn)(void *arg,
                                     const struct fsm_election_view *v),
                          void *arg) {
  size_t n = 0;
  for (struct otree_node *t = otree_first(&f->elections); t;
       t = otree_next(t)) {
    const struct fsm_election *e =
        FSM_CONTAINER(t, struct fsm_election, by_name);
    if (n++ >= max) {
      continue;
    }
    struct fsm_election_view v = {.name = e->name,
                                  .name_len = e->name_len,
                                  .revision = e->revision,
                                  .since_ms = e->since_ms,
                                  .candidates = e->candidates_len};
    if (!fsm_list_empty(&e->candidates)) {
      const struct fsm_candidate *c = FSM_CONTAINER(
          e->candidates.next, struct fsm_candidate, election_link);
      v.value = c->value;
      v.value_len = c->value_len;
      v.session_id = c->session->id;
    }
    fn(arg, &v);
  }
  return n;
}
