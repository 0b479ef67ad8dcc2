/* synodctl group's pure helpers: the JSON shapes of `group view`, `list`
 * and `watch`, the member list a watch keeps from view changes, and the
 * environment `group join` gives its command and hook. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

/* Sets o[key] to the bytes as a string when they are UTF-8, else
 * o[key "_base64"] (as ctl_channel_message_json does). */
static void bytes_set(json_t *o, const char *key, const void *data, size_t n) {
  json_t *text = json_stringn(n > 0 ? (const char *)data : "", n);
  char name[64];
  if (text != NULL) {
    json_object_set_new(o, key, text);
    return;
  }
  char *b64 = malloc(4 * ((n + 2) / 3) + 1);
  if (b64 == NULL) {
    return;
  }
  ctl_base64(b64, data, n);
  snprintf(name, sizeof name, "%s_base64", key);
  json_object_set_new(o, name, json_string(b64));
  free(b64);
}

/* A name from the server is UTF-8; json_string refuses anything else,
 * which would drop the field: give it escaped instead. */
static json_t *name_json(const char *s) {
  json_t *j = json_string(s != NULL ? s : "");
  if (j == NULL && s != NULL) {
    size_t n = strlen(s);
    char *esc = malloc(4 * n + 1);
    if (esc != NULL) {
      ctl_escape(esc, s, n);
      j = json_string(esc);
      free(esc);
    }
  }
  return j;
}

json_t *ctl_group_member_json(const struct synod_group_member *m) {
  json_t *o = json_object();
  if (o == NULL) {
    return NULL;
  }
  json_object_set_new(o, "name", name_json(m->name));
  bytes_set(o, "data", m->data, m->data_len);
  json_object_set_new(o, "session", json_integer((json_int_t)m->session_id));
  json_object_set_new(o, "joined_offset",
                      json_integer((json_int_t)m->joined_offset));
  return o;
}

static json_t *checkpoint_json(const struct synod_group_checkpoint_info *c) {
  return json_pack("{s:I, s:I, s:I, s:I, s:o}", "offset", (json_int_t)c->offset,
                   "bytes", (json_int_t)c->bytes, "index", (json_int_t)c->index,
                   "time_ms", (json_int_t)c->time_ms, "member",
                   name_json(c->member));
}

json_t *ctl_group_info_json(const struct synod_group_info *info,
                            bool with_members) {
  json_t *o = json_object();
  if (o == NULL) {
    return NULL;
  }
  const struct synod_group_view *v = &info->view;
  json_object_set_new(o, "group", name_json(info->name));
  json_object_set_new(o, "view_id", json_integer((json_int_t)v->view_id));
  json_object_set_new(o, "offset", json_integer((json_int_t)v->offset));
  json_object_set_new(o, "member_count", json_integer(info->members));
  if (with_members) {
    json_t *ms = json_array();
    for (size_t i = 0; i < v->count; i++) {
      json_array_append_new(ms, ctl_group_member_json(&v->members[i]));
    }
    json_object_set_new(o, "members", ms);
    json_object_set_new(o, "coordinator",
                        v->count > 0 ? name_json(v->members[0].name)
                                     : json_null());
  }
  json_object_set_new(o, "first_offset",
                      json_integer((json_int_t)info->first_offset));
  json_object_set_new(o, "next_offset",
                      json_integer((json_int_t)info->next_offset));
  json_object_set_new(o, "bytes", json_integer((json_int_t)info->bytes));
  json_t *ck = json_null();
  if (info->has_checkpoint) {
    json_decref(ck);
    ck = checkpoint_json(&info->checkpoint);
    json_object_set_new(ck, "usable", json_boolean(info->checkpoint_usable));
  }
  json_object_set_new(o, "checkpoint", ck);
  json_object_set_new(o, "state_requests", json_integer(info->state_requests));
  return o;
}

/* ------------------------------------------------- the members a watch
 * knows: names in join order, or unknown. */

void ctl_group_members_free(struct ctl_group_members *m) {
  for (size_t i = 0; m->names != NULL && i < m->n; i++) {
    free(m->names[i]);
  }
  free(m->names);
  memset(m, 0, sizeof *m);
}

/* Appends a copy of name. Returns 0 or -1 (out of memory). */
static int members_push(struct ctl_group_members *m, const char *name) {
  char **names = realloc(m->names, (m->n + 1) * sizeof *names);
  if (names == NULL) {
    return -1;
  }
  m->names = names;
  m->names[m->n] = strdup(name);
  if (m->names[m->n] == NULL) {
    return -1;
  }
  m->n++;
  return 0;
}

int ctl_group_members_set(struct ctl_group_members *m,
                          const struct synod_group_view *v) {
  ctl_group_members_free(m);
  for (size_t i = 0; i < v->count; i++) {
    if (members_push(m, v->members[i].name) != 0) {
      ctl_group_members_free(m);
      return -1;
    }
  }
  m->known = true;
  return 0;
}

int ctl_group_members_apply(struct ctl_group_members *m,
                            const struct synod_group_item *it) {
  if (it->type != SYNOD_GROUP_ITEM_VIEW) {
    return 0;
  }
  if (it->view_id == 1) { /* the group's first view: from nobody */
    ctl_group_members_free(m);
    m->known = true;
  }
  if (!m->known) {
    return 0;
  }
  for (size_t l = 0; l < it->left_n; l++) {
    size_t j = 0;
    for (size_t i = 0; i < m->n; i++) {
      if (strcmp(m->names[i], it->left[l]) == 0) {
        free(m->names[i]);
      } else {
        m->names[j++] = m->names[i];
      }
    }
    m->n = j;
  }
  for (size_t i = 0; i < it->joined_n; i++) {
    if (members_push(m, it->joined[i].name) != 0) {
      ctl_group_members_free(m);
      return -1;
    }
  }
  if (m->n != it->members) {
    /* Not the view the item says: forget rather than print a wrong one. */
    ctl_group_members_free(m);
  }
  return 0;
}

static const char *const item_types[] = {"", "view", "message", "state_request",
                                         "checkpoint"};

const char *ctl_group_item_type(enum synod_group_item_type t) {
  return t >= SYNOD_GROUP_ITEM_VIEW && t <= SYNOD_GROUP_ITEM_CHECKPOINT
             ? item_types[t]
             : "unknown";
}

/* The view fields of an item: what changed, and the full list when m
 * knows it (else null). */
static void item_view_set(json_t *o, const struct synod_group_item *it,
                          const struct ctl_group_members *m) {
  json_t *joined = json_array(), *left = json_array();
  json_object_set_new(o, "view_id", json_integer((json_int_t)it->view_id));
  for (size_t i = 0; i < it->joined_n; i++) {
    json_array_append_new(joined, ctl_group_member_json(&it->joined[i]));
  }
  for (size_t i = 0; i < it->left_n; i++) {
    json_array_append_new(left, name_json(it->left[i]));
  }
  json_object_set_new(o, "joined", joined);
  json_object_set_new(o, "left", left);
  json_object_set_new(o, "member_count", json_integer(it->members));
  if (m != NULL && m->known) {
    json_t *names = json_array();
    for (size_t i = 0; i < m->n; i++) {
      json_array_append_new(names, name_json(m->names[i]));
    }
    json_object_set_new(o, "coordinator",
                        m->n > 0 ? name_json(m->names[0]) : json_null());
    json_object_set_new(o, "members", names);
  } else {
    json_object_set_new(o, "coordinator", json_null());
    json_object_set_new(o, "members", json_null());
  }
}

json_t *ctl_group_item_json(const char *group,
                            const struct synod_group_item *it,
                            const struct ctl_group_members *m) {
  json_t *o = json_object();
  if (o == NULL) {
    return NULL;
  }
  json_object_set_new(o, "group", name_json(group));
  json_object_set_new(o, "offset", json_integer((json_int_t)it->offset));
  json_object_set_new(o, "index", json_integer((json_int_t)it->index));
  json_object_set_new(o, "time_ms", json_integer((json_int_t)it->time_ms));
  json_object_set_new(o, "type", json_string(ctl_group_item_type(it->type)));
  switch (it->type) {
  case SYNOD_GROUP_ITEM_VIEW:
    item_view_set(o, it, m);
    break;
  case SYNOD_GROUP_ITEM_MESSAGE:
    json_object_set_new(o, "from", name_json(it->from));
    json_object_set_new(o, "to", name_json(it->to));
    bytes_set(o, "data", it->data, it->len);
    break;
  case SYNOD_GROUP_ITEM_STATE_REQUEST:
    json_object_set_new(o, "to", name_json(it->to));
    json_object_set_new(o, "member", name_json(it->member));
    break;
  case SYNOD_GROUP_ITEM_CHECKPOINT:
    json_object_set_new(o, "checkpoint", checkpoint_json(&it->checkpoint));
    break;
  }
  return o;
}

/* ----------------------------------------------------------- group join */

void ctl_group_env_free(char **env) {
  for (size_t i = 0; env != NULL && env[i] != NULL; i++) {
    free(env[i]);
  }
  free(env);
}

/* "KEY=" plus the view's member names joined by ',' (0) or the first one
 * (1). */
static char *members_var(const char *key, const struct synod_group_view *v,
                         bool first_only) {
  size_t n = strlen(key) + 2, count = first_only && v->count ? 1 : v->count;
  for (size_t i = 0; i < count; i++) {
    n += strlen(v->members[i].name) + 1;
  }
  char *s = malloc(n);
  if (s == NULL) {
    return NULL;
  }
  char *p = s + sprintf(s, "%s=", key);
  for (size_t i = 0; i < count; i++) {
    p += sprintf(p, "%s%s", i > 0 ? "," : "", v->members[i].name);
  }
  return s;
}

static char *var(const char *key, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static char *var(const char *key, const char *fmt, ...) {
  char value[96], *s;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(value, sizeof value, fmt, ap);
  va_end(ap);
  if (asprintf(&s, "%s=%s", key, value) < 0) {
    return NULL;
  }
  return s;
}

char **ctl_group_env(const char *group, const char *member,
                     const struct synod_group_view *v) {
  enum { VARS = 8 };
  char **env = calloc(VARS + 1, sizeof *env);
  char *g = NULL, *m = NULL;
  bool coordinator = v->count > 0 && strcmp(v->members[0].name, member) == 0;
  if (env == NULL || asprintf(&g, "SYNOD_GROUP=%s", group) < 0 ||
      asprintf(&m, "SYNOD_MEMBER=%s", member) < 0) {
    free(env);
    free(g);
    return NULL;
  }
  env[0] = g;
  env[1] = m;
  env[2] = var("SYNOD_VIEW_ID", "%" PRIu64, v->view_id);
  env[3] = var("SYNOD_VIEW_OFFSET", "%" PRIu64, v->offset);
  env[4] = var("SYNOD_MEMBER_COUNT", "%zu", v->count);
  env[5] = var("SYNOD_IS_COORDINATOR", "%d", coordinator ? 1 : 0);
  env[6] = members_var("SYNOD_COORDINATOR", v, true);
  env[7] = members_var("SYNOD_MEMBERS", v, false);
  for (int i = 2; i < VARS; i++) {
    if (env[i] == NULL) {
      ctl_group_env_free(env);
      return NULL;
    }
  }
  return env;
}
