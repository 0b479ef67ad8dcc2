/* Invariants of a live state machine, checked by the harnesses that
 * change one (fsm_apply, request, snapshot). Reads fsm internals
 * (fsm_int.h) the way tests/unit/test_fsm.c does. */
#ifndef SYNOD_FUZZ_FSM_H
#define SYNOD_FUZZ_FSM_H

#include "fuzz.h"

#include "fsm.h"
#include "fsm_int.h"
#include "otree.h"

/* A lease's keys are in (mod_revision, key) order and its counts agree;
 * returns how many there are. */
static inline uint64_t fuzz_fsm_check_lease(const struct fsm_key_lease *l) {
  uint64_t n = 0, bytes = 0;
  const struct fsm_key *prev = NULL;
  for (const struct fsm_list *x = l->keys.next; x != &l->keys; x = x->next) {
    const struct fsm_key *k = fsm_key_of_link(x);
    FUZZ_CHECK(fsm_key_lease(k) == l,
               "a key in session %llu's lease points elsewhere",
               (unsigned long long)l->session_id);
    if (prev != NULL) {
      struct fsm_name pn = {(const char *)prev->data, prev->key_len};
      FUZZ_CHECK(prev->mod_revision < k->mod_revision ||
                     (prev->mod_revision == k->mod_revision &&
                      fsm_name_cmp(&pn, (const char *)k->data, k->key_len) < 0),
                 "session %llu's keys out of (mod_revision, key) order",
                 (unsigned long long)l->session_id);
    }
    prev = k;
    n++;
    bytes += (uint64_t)k->key_len + k->value_len;
  }
  FUZZ_CHECK(n == l->keys_n && bytes == l->bytes,
             "lease of session %llu: %llu keys, %llu bytes; says %llu, %llu",
             (unsigned long long)l->session_id, (unsigned long long)n,
             (unsigned long long)bytes, (unsigned long long)l->keys_n,
             (unsigned long long)l->bytes);
  return n;
}

/* Keys: live ones counted and bound to live sessions, dead ones only of
 * ended sessions; revisions in order; one history item per revision, its
 * measure and graves agreeing; the work list's count. */
static inline void fuzz_fsm_check_keys(const struct fsm *f) {
  uint64_t live = 0, bytes = 0, bound = 0;
  FUZZ_CHECK(otree_check(&f->keys) == f->keys.count, "keys tree");
  FUZZ_CHECK(otree_check(&f->key_graves) == f->key_graves.count, "graves");
  for (struct otree_node *n = otree_first(&f->keys); n; n = otree_next(n)) {
    const struct fsm_key *k = FSM_CONTAINER(n, struct fsm_key, by_key);
    FUZZ_CHECK(k->in_tree, "a key in the tree says it is not");
    if (!fsm_key_live(k)) {
      FUZZ_CHECK(fsm_key_lease(k)->ended_revision <= f->key_revision,
                 "dead key");
      continue;
    }
    FUZZ_CHECK(k->version >= 1 && k->create_revision >= 1 &&
                   k->create_revision <= k->mod_revision &&
                   k->mod_revision <= f->key_revision,
               "key '%.*s': create %llu mod %llu version %llu, revision %llu",
               (int)k->key_len, (const char *)k->data,
               (unsigned long long)k->create_revision,
               (unsigned long long)k->mod_revision,
               (unsigned long long)k->version,
               (unsigned long long)f->key_revision);
    const struct fsm_key_lease *l = fsm_key_lease(k);
    if (l != NULL) {
      const struct fsm_session *s = fsm_session_find(f, l->session_id);
      FUZZ_CHECK(s != NULL && s->lease == l,
                 "key '%.*s' bound to session %llu, which has not its lease",
                 (int)k->key_len, (const char *)k->data,
                 (unsigned long long)l->session_id);
      bound++;
    }
    live++;
    bytes += (uint64_t)k->key_len + k->value_len;
  }
  FUZZ_CHECK(live == f->keys_live && bytes == f->keys_bytes,
             "%llu live keys of %llu bytes, counted %llu and %llu",
             (unsigned long long)f->keys_live,
             (unsigned long long)f->keys_bytes, (unsigned long long)live,
             (unsigned long long)bytes);
  uint64_t leased = 0;
  for (struct otree_node *n = otree_first(&f->sessions); n; n = otree_next(n)) {
    const struct fsm_session *s = FSM_CONTAINER(n, struct fsm_session, by_id);
    if (s->lease != NULL) {
      FUZZ_CHECK(s->lease->ended_revision == 0, "a live session's grave");
      leased += fuzz_fsm_check_lease(s->lease);
    }
  }
  FUZZ_CHECK(leased == bound, "%llu keys in leases, %llu bound",
             (unsigned long long)leased, (unsigned long long)bound);
  const struct window *w = &f->key_history;
  char msg[128];
  FUZZ_CHECK(window_check(w, msg) == 0, "key history: %s", msg);
  FUZZ_CHECK(w->next == f->key_revision + 1 &&
                 (f->key_revision == 0 || w->next > w->first),
             "key history [%llu, %llu) at revision %llu",
             (unsigned long long)w->first, (unsigned long long)w->next,
             (unsigned long long)f->key_revision);
  uint64_t events = 0, hbytes = 0, graves = 0;
  struct window_iter it;
  struct window_item item;
  window_iter_seek(w, w->first, &it);
  while (window_iter_next(&it, &item)) {
    uint64_t e, b;
    fsm_key_item_measure(f, &item, &e, &b);
    events += e;
    hbytes += b;
    if (item.data[0] == FSM_KEY_ITEM_GRAVE) {
      struct otree_node *g = otree_find(&f->key_graves, &item.pos);
      FUZZ_CHECK(g != NULL, "session end at %llu without its grave",
                 (unsigned long long)item.pos);
      fuzz_fsm_check_lease(FSM_CONTAINER(g, struct fsm_key_lease, by_revision));
      graves++;
    }
  }
  FUZZ_CHECK(
      events == f->key_history_events && hbytes == f->key_history_bytes &&
          graves == f->key_graves.count,
      "key history: %llu events %llu bytes %llu graves; counted %llu "
      "%llu %llu",
      (unsigned long long)f->key_history_events,
      (unsigned long long)f->key_history_bytes,
      (unsigned long long)f->key_graves.count, (unsigned long long)events,
      (unsigned long long)hbytes, (unsigned long long)graves);
  uint64_t work = 0;
  for (const struct fsm_list *x = f->key_work.next; x != &f->key_work;
       x = x->next) {
    work += FSM_CONTAINER(x, struct fsm_key_lease, work_link)->work_left;
  }
  FUZZ_CHECK(work == f->key_work_keys, "work list: %llu keys, says %llu",
             (unsigned long long)work, (unsigned long long)f->key_work_keys);
}

/* One group: members of live sessions, each on its session's list;
 * pending requests exactly the members with a request offset; uploads by
 * session; every item decodes; returns its bytes (items, checkpoint,
 * uploads) and adds its members to *members. */
static inline uint64_t fuzz_fsm_check_group(const struct fsm *f,
                                            const struct fsm_group *g,
                                            uint64_t *members) {
  char msg[128];
  uint32_t n = 0, requesting = 0, requests = 0;
  uint64_t joined = 0;
  FUZZ_CHECK(
      g->members_n > 0 && g->view_id > 0 && g->view_offset < g->window.next,
      "group '%s': %u members, view %llu at %llu", g->name, g->members_n,
      (unsigned long long)g->view_id, (unsigned long long)g->view_offset);
  for (const struct fsm_list *x = g->members.next; x != &g->members;
       x = x->next) {
    const struct fsm_group_member *m =
        FSM_CONTAINER(x, struct fsm_group_member, group_link);
    const struct fsm_session *s = fsm_session_find(f, m->session->id);
    FUZZ_CHECK(s == m->session && m->group == g,
               "group '%s': member '%s' of a dead session", g->name, m->name);
    FUZZ_CHECK(m->joined_offset > joined && m->joined_offset <= g->view_offset,
               "group '%s': member '%s' joined at %llu", g->name, m->name,
               (unsigned long long)m->joined_offset);
    joined = m->joined_offset;
    bool on = false;
    for (const struct fsm_list *y = s->groups.next; y != &s->groups;
         y = y->next) {
      on |= y == &m->session_link;
    }
    FUZZ_CHECK(on, "member '%s' not on its session's list", m->name);
    requesting += m->request_offset != 0;
    n++;
  }
  for (const struct fsm_list *x = g->requests.next; x != &g->requests;
       x = x->next) {
    const struct fsm_group_member *m =
        FSM_CONTAINER(x, struct fsm_group_member, request_link);
    FUZZ_CHECK(m->request_offset != 0 && m->group == g &&
                   g->members.next != &m->group_link,
               "group '%s': request of '%s'", g->name, m->name);
    requests++;
  }
  FUZZ_CHECK(n == g->members_n && requests == requesting,
             "group '%s': %u members (says %u), %u requests of %u", g->name, n,
             g->members_n, requests, requesting);
  *members += n;
  FUZZ_CHECK(window_check(&g->window, msg) == 0, "group '%s': %s", g->name,
             msg);
  struct window_iter it;
  struct window_item wi;
  window_iter_seek(&g->window, g->window.first, &it);
  while (window_iter_next(&it, &wi)) {
    struct fsm_group_item gi;
    FUZZ_CHECK(fsm_group_item_decode(&wi, &gi) == 0,
               "group '%s': item %llu does not decode", g->name,
               (unsigned long long)wi.pos);
  }
  uint64_t bytes = g->window.bytes + g->ckpt_len;
  for (uint32_t i = 0; i < g->uploads_n; i++) {
    FUZZ_CHECK(
        g->uploads[i].received < g->uploads[i].total &&
            (i == 0 || g->uploads[i - 1].session_id < g->uploads[i].session_id),
        "group '%s': upload %u", g->name, i);
    bytes += g->uploads[i].total;
  }
  return bytes;
}

static inline void fuzz_fsm_check_groups(const struct fsm *f) {
  uint64_t bytes = 0, members = 0;
  FUZZ_CHECK(otree_check(&f->groups) == f->groups.count, "groups tree");
  for (struct otree_node *n = otree_first(&f->groups); n; n = otree_next(n)) {
    bytes += fuzz_fsm_check_group(
        f, FSM_CONTAINER(n, struct fsm_group, by_name), &members);
  }
  FUZZ_CHECK(bytes == f->groups_bytes && members == f->group_members,
             "groups: %llu bytes %llu members, counted %llu and %llu",
             (unsigned long long)f->groups_bytes,
             (unsigned long long)f->group_members, (unsigned long long)bytes,
             (unsigned long long)members);
}

/* The trees are balanced and ordered; locks, sessions and the gauges
 * agree with each other. Cheap enough to run after every apply. */
static inline void fuzz_fsm_check(const struct fsm *f) {
  const struct otree *trees[] = {&f->sessions,  &f->locks,   &f->counters,
                                 &f->elections, &f->members, &f->timers};
  for (size_t i = 0; i < sizeof trees / sizeof *trees; i++) {
    FUZZ_CHECK(otree_check(trees[i]) == trees[i]->count, "tree %zu", i);
  }
  uint64_t held = 0, waiters = 0;
  for (struct otree_node *n = otree_first(&f->locks); n; n = otree_next(n)) {
    const struct fsm_lock *l = FSM_CONTAINER(n, struct fsm_lock, by_name);
    FUZZ_CHECK((l->holder != NULL) == (l->hold_count > 0),
               "lock '%s': holder and hold count %u disagree", l->name,
               l->hold_count);
    FUZZ_CHECK(l->holder != NULL || l->waiters_len > 0 || l->delay.armed,
               "lock '%s' free, unwaited and not in lock-delay, yet kept",
               l->name);
    FUZZ_CHECK(l->token <= f->token_last, "lock '%s' token %llu > last %llu",
               l->name, (unsigned long long)l->token,
               (unsigned long long)f->token_last);
    held += l->holder != NULL;
    waiters += l->waiters_len;
  }
  for (struct otree_node *n = otree_first(&f->sessions); n; n = otree_next(n)) {
    const struct fsm_session *s = FSM_CONTAINER(n, struct fsm_session, by_id);
    FUZZ_CHECK(s->results_len <= f->opt.results_per_session_max,
               "session %llu keeps %u results", (unsigned long long)s->id,
               s->results_len);
    for (uint32_t i = 0; i < s->results_len; i++) {
      FUZZ_CHECK(
          s->results[i].sequence > s->sequence_floor &&
              (i == 0 || s->results[i].sequence > s->results[i - 1].sequence),
          "session %llu: results out of order", (unsigned long long)s->id);
    }
    FUZZ_CHECK(s->keepalive_ms <= f->time_ms, "keepalive in the future");
  }
  struct fsm_stats st;
  fsm_stats_get(f, &st);
  FUZZ_CHECK(st.locks_held == held && st.lock_waiters == waiters,
             "gauges %llu held %llu waiting, counted %llu and %llu",
             (unsigned long long)st.locks_held,
             (unsigned long long)st.lock_waiters, (unsigned long long)held,
             (unsigned long long)waiters);
  fuzz_fsm_check_keys(f);
  fuzz_fsm_check_groups(f);
}

/* The state encodes to an image that decodes, into a fresh state machine
 * with the same options, to the same digest and the same bytes: every
 * state apply can reach is one a snapshot can carry. */
static inline void fuzz_fsm_check_image(const struct fsm *f,
                                        const struct fsm_options *opts) {
  uint8_t *img, *img2;
  size_t len, len2;
  FUZZ_CHECK(fsm_snapshot_encode(f, &img, &len) == 0, "encode");
  struct fsm *g = fsm_new(opts);
  int rv = fsm_snapshot_decode(g, img, len);
  FUZZ_CHECK(rv == 0, "the image of a live state is refused: %d", rv);
  FUZZ_CHECK(fsm_digest(g) == fsm_digest(f), "digest differs after restore");
  FUZZ_CHECK(fsm_snapshot_encode(g, &img2, &len2) == 0, "encode");
  FUZZ_CHECK(len2 == len && memcmp(img, img2, len) == 0,
             "restored state encodes differently");
  fuzz_fsm_check(g);
  struct fsm_stats a, b;
  fsm_stats_get(f, &a);
  fsm_stats_get(g, &b);
  FUZZ_CHECK(a.sessions == b.sessions && a.locks_held == b.locks_held &&
                 a.lock_waiters == b.lock_waiters && a.counters == b.counters &&
                 a.elections == b.elections && a.keys == b.keys &&
                 a.keys_bytes == b.keys_bytes && b.key_work_keys == 0 &&
                 a.groups == b.groups && a.group_members == b.group_members &&
                 a.groups_bytes == b.groups_bytes,
             "gauges differ after restore");
  /* Keys of ended sessions still to take out are no part of the state:
   * f may ask for Ticks to do that work, g has none to do. */
  FUZZ_CHECK(fsm_next_deadline(g) == fsm_next_deadline(f) ||
                 (a.key_work_keys > 0 && fsm_next_deadline(f) == f->time_ms &&
                  fsm_next_deadline(g) >= f->time_ms),
             "next deadline differs after restore");
  free(img);
  free(img2);
  fsm_free(g);
}

/* An apply's output: answers and events are packed messages that decode. */
static inline void fuzz_fsm_check_output(const struct fsm_output *out) {
  if (out->has_response && !out->response.pending) {
    Synod__Response *r =
        synod__response__unpack(NULL, out->response.len, out->response.data);
    FUZZ_CHECK(r != NULL, "the answer does not decode");
    synod__response__free_unpacked(r, NULL);
  }
  for (size_t i = 0; i < out->events_len; i++) {
    const struct fsm_event *e = &out->events[i];
    if (e->response != NULL) {
      Synod__Response *r =
          synod__response__unpack(NULL, e->response_len, e->response);
      FUZZ_CHECK(r != NULL, "event %zu: the answer does not decode", i);
      synod__response__free_unpacked(r, NULL);
    }
    if (e->event != NULL) {
      Synod__Event *ev = synod__event__unpack(NULL, e->event_len, e->event);
      FUZZ_CHECK(ev != NULL, "event %zu does not decode", i);
      synod__event__free_unpacked(ev, NULL);
    }
  }
}

/* Small limits, so that short inputs reach every "limit reached" path. */
static inline void fuzz_fsm_small_options(struct fsm_options *o) {
  memset(o, 0, sizeof *o);
  o->name_bytes_max = 16;
  o->sessions_max = 4;
  o->locks_max = 4;
  o->counters_max = 4;
  o->elections_max = 3;
  o->waiters_per_lock_max = 2;
  o->candidates_per_election_max = 2;
  o->results_per_session_max = 3;
  o->value_bytes_max = 8;
  o->list_limit_max = 3;
  o->keys_max = 6;
  o->keys_bytes_max = 64;
  o->key_value_bytes_max = 8;
  o->key_txn_ops_max = 3;
  o->key_list_max = 3;
  o->key_reply_bytes_max = 16;
  o->key_history_max = 6;
  o->key_history_bytes_max = 200;
  o->key_work_per_entry = 2;
  o->groups_max = 2;
  o->group_members_max = 3;
  o->group_member_data_bytes_max = 8;
  o->group_message_bytes_max = 16;
  o->group_items_max = 5;
  o->group_bytes_max = 200;
  o->group_checkpoint_bytes_max = 16;
  o->group_chunk_bytes_max = 8;
  o->group_uploads_max = 2;
  o->groups_bytes_max = 300;
}

#endif /* SYNOD_FUZZ_FSM_H */
