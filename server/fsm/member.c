/* The directory of replicas: core id -> name and addresses, replicated so
 * that every replica can name every member, including one that is down
 * (for status and for removing it by name). Written by the leader. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm_int.h"

int fsm_member_cmp(const void *key, const struct otree_node *n) {
  uint64_t a = *(const uint64_t *)key;
  uint64_t b = FSM_CONTAINER(n, struct fsm_member, by_id)->id;
  return a < b ? -1 : a > b;
}

void fsm_member_free(struct fsm_member *m) {
  free(m->name);
  free(m->peer_address);
  free(m->client_address);
  free(m);
}

static char *member_strdup(const char *s, size_t max) {
  size_t len = strlen(s);
  return fsm_xstrndup(s, len < max ? len : max);
}

/* Inserts or replaces the entry for id. */
struct fsm_member *fsm_member_put(struct fsm *f, uint64_t id, const char *name,
                                  const char *peer, const char *client) {
  struct otree_node *n = otree_find(&f->members, &id);
  struct fsm_member *m;
  if (n != NULL) {
    m = FSM_CONTAINER(n, struct fsm_member, by_id);
    free(m->name);
    free(m->peer_address);
    free(m->client_address);
  } else {
    m = fsm_xcalloc(1, sizeof *m);
    m->id = id;
    otree_insert(&f->members, &m->by_id, &m->id);
  }
  m->name = member_strdup(name, FSM_MEMBER_NAME_MAX);
  m->peer_address = member_strdup(peer, FSM_MEMBER_ADDRESS_MAX);
  m->client_address = member_strdup(client, FSM_MEMBER_ADDRESS_MAX);
  return m;
}

/* An entry with id 0 or an empty name changes nothing: every replica
 * ignores it alike. */
void fsm_member_apply(struct fsm *f, const Synod__Fsm__Member *m) {
  struct otree_node *n = otree_find(&f->members, &m->id);
  if (m->remove) {
    if (n != NULL) {
      otree_remove(&f->members, n);
      fsm_member_free(FSM_CONTAINER(n, struct fsm_member, by_id));
    }
    return;
  }
  if (m->id != 0 && m->name[0] != '\0') {
    fsm_member_put(f, m->id, m->name, m->peer_address, m->client_address);
  }
}

static void member_info(const struct fsm_member *m,
                        struct fsm_member_info *out) {
  out->id = m->id;
  out->name = m->name;
  out->peer_address = m->peer_address;
  out->client_address = m->client_address;
}

bool fsm_member_get(const struct fsm *f, uint64_t id,
                    struct fsm_member_info *out) {
  struct otree_node *n = otree_find(&f->members, &id);
  if (n == NULL) {
    return false;
  }
  member_info(FSM_CONTAINER(n, struct fsm_member, by_id), out);
  return true;
}

void fsm_members_each(const struct fsm *f,
                      void (*fn)(void *arg, const struct fsm_member_info *m),
                      void *arg) {
  for (struct otree_node *n = otree_first(&f->members); n; n = otree_next(n)) {
    struct fsm_member_info info;
    member_info(FSM_CONTAINER(n, struct fsm_member, by_id), &info);
    fn(arg, &info);
  }
}

size_t fsm_command_encode_member(uint64_t time_ms,
                                 const struct fsm_member_info *m, bool remove,
                                 uint8_t *buf, size_t cap) {
  Synod__Fsm__Command cmd = SYNOD__FSM__COMMAND__INIT;
  Synod__Fsm__Member mm = SYNOD__FSM__MEMBER__INIT;
  char name[FSM_MEMBER_NAME_MAX + 1], peer[FSM_MEMBER_ADDRESS_MAX + 1],
      client[FSM_MEMBER_ADDRESS_MAX + 1];
  snprintf(name, sizeof name, "%s", m->name ? m->name : "");
  snprintf(peer, sizeof peer, "%s", m->peer_address ? m->peer_address : "");
  snprintf(client, sizeof client, "%s",
           m->client_address ? m->client_address : "");
  mm.id = m->id;
  mm.name = name;
  mm.peer_address = peer;
  mm.client_address = client;
  mm.remove = remove;
  cmd.time_ms = time_ms;
  cmd.body_case = SYNOD__FSM__COMMAND__BODY_MEMBER;
  cmd.member = &mm;
  return fsm_command_pack(&cmd, buf, cap);
}
