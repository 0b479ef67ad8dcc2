/* synodctl's pure helpers: durations, integers, JSON shapes, lines. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

int ctl_duration_parse(const char *text, uint32_t *ms) {
  static const struct {
    const char *unit;
    uint64_t ms;
  } units[] = {
      {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"", 1000}};
  uint64_t n = 0;
  const char *p = text;
  if (text == NULL || !isdigit((unsigned char)*p)) {
    return SYNOD_EINVAL;
  }
  for (; isdigit((unsigned char)*p); p++) {
    n = n * 10 + (uint64_t)(*p - '0');
    if (n > UINT32_MAX) {
      return SYNOD_ERANGE;
    }
  }
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
    if (strcmp(p, units[i].unit) == 0) {
      if (n * units[i].ms > UINT32_MAX) {
        return SYNOD_ERANGE;
      }
      *ms = (uint32_t)(n * units[i].ms);
      return 0;
    }
  }
  return SYNOD_EINVAL;
}

int ctl_int64_parse(const char *text, int64_t *v) {
  char *end;
  long long x;
  if (text == NULL || *text == '\0' || isspace((unsigned char)*text)) {
    return SYNOD_EINVAL;
  }
  errno = 0;
  x = strtoll(text, &end, 10);
  if (*end != '\0') {
    return SYNOD_EINVAL;
  }
  if (errno == ERANGE) {
    return SYNOD_ERANGE;
  }
  *v = (int64_t)x;
  return 0;
}

int ctl_uint64_parse(const char *text, uint64_t *v) {
  char *end;
  unsigned long long x;
  if (text == NULL || !isdigit((unsigned char)*text)) {
    return SYNOD_EINVAL;
  }
  errno = 0;
  x = strtoull(text, &end, 10);
  if (*end != '\0') {
    return SYNOD_EINVAL;
  }
  if (errno == ERANGE) {
    return SYNOD_ERANGE;
  }
  *v = (uint64_t)x;
  return 0;
}

json_t *ctl_status_json(const char *endpoint, const struct synod_status *st) {
  json_t *members = json_array();
  for (size_t i = 0; i < st->members_count; i++) {
    const struct synod_member *m = &st->members[i];
    json_array_append_new(
        members, json_pack("{s:s, s:s, s:s, s:b, s:s, s:I}", "name", m->name,
                           "peer_address", m->peer_address, "client_address",
                           m->client_address, "voter", m->voter, "role",
                           m->role, "match_index", (json_int_t)m->match_index));
  }
  return json_pack(
      "{s:s, s:s, s:s, s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:o}",
      "endpoint", endpoint ? endpoint : "", "name", st->name, "role", st->role,
      "term", (json_int_t)st->term, "leader", st->leader_name, "commit_index",
      (json_int_t)st->commit_index, "applied_index",
      (json_int_t)st->applied_index, "last_index", (json_int_t)st->last_index,
      "snapshot_index", (json_int_t)st->snapshot_index, "log_syncs",
      (json_int_t)st->log_syncs, "log_synced_entries",
      (json_int_t)st->log_synced_entries, "version", st->version, "members",
      members);
}

json_t *ctl_election_json(const struct synod_election_info *info) {
  json_t *value = info->has_leader
                      ? json_stringn((const char *)info->value, info->value_len)
                      : json_null();
  if (value == NULL) { /* not UTF-8: give it as bytes in a string anyway */
    value = json_string("<binary>");
  }
  return json_pack("{s:s, s:b, s:o, s:I, s:I, s:i}", "name", info->name,
                   "has_leader", info->has_leader, "value", value, "session_id",
                   (json_int_t)info->session_id, "revision",
                   (json_int_t)info->revision, "candidates",
                   (int)info->candidates);
}

json_t *ctl_counter_list_json(const struct synod_counter_list *list) {
  json_t *counters = json_array();
  for (size_t i = 0; i < list->count; i++) {
    json_array_append_new(
        counters, json_pack("{s:s, s:I}", "name", list->entries[i].name,
                            "value", (json_int_t)list->entries[i].value));
  }
  return json_pack("{s:o, s:b}", "counters", counters, "more", list->more);
}

json_t *ctl_lock_info_json(const char *name,
                           const struct synod_lock_info *info) {
  return json_pack("{s:s, s:b, s:I, s:I, s:I, s:i, s:i}", "name", name, "held",
                   info->held, "session_id", (json_int_t)info->session_id,
                   "owner_id", (json_int_t)info->owner_id, "token",
                   (json_int_t)info->token, "hold_count", (int)info->hold_count,
                   "waiters", (int)info->waiters);
}

/* The length of the UTF-8 sequence of a printable character at p (n
 * bytes left), or 0 if there is none: a byte that is not UTF-8, or a C1
 * control character (U+0080..U+009F), which terminals act on. */
static size_t utf8_printable_len(const unsigned char *p, size_t n) {
  size_t len = p[0] < 0xc2   ? 0
               : p[0] < 0xe0 ? 2
               : p[0] < 0xf0 ? 3
               : p[0] < 0xf5 ? 4
                             : 0;
  if (len == 0 || len > n || (p[0] == 0xc2 && p[1] < 0xa0)) {
    return 0;
  }
  for (size_t i = 1; i < len; i++) {
    if ((p[i] & 0xc0) != 0x80) {
      return 0;
    }
  }
  return len;
}

void ctl_escape(char *out, const void *data, size_t n) {
  const unsigned char *p = data;
  for (size_t i = 0; i < n;) {
    size_t len = p[i] >= 0x80 ? utf8_printable_len(p + i, n - i) : 0;
    if (len > 0) {
      memcpy(out, p + i, len);
      out += len;
      i += len;
      continue;
    }
    unsigned char b = p[i++];
    const char *named = b == '\\'   ? "\\\\"
                        : b == '\n' ? "\\n"
                        : b == '\r' ? "\\r"
                        : b == '\t' ? "\\t"
                                    : NULL;
    if (named != NULL) {
      memcpy(out, named, 2);
      out += 2;
    } else if (b < 0x20 || b >= 0x7f) {
      out += snprintf(out, 5, "\\x%02x", b);
    } else {
      *out++ = (char)b;
    }
  }
  *out = '\0';
}

void ctl_base64(char *out, const void *data, size_t n) {
  static const char abc[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const unsigned char *p = data;
  size_t i = 0;
  for (; i + 2 < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
    *out++ = abc[v >> 18];
    *out++ = abc[(v >> 12) & 63];
    *out++ = abc[(v >> 6) & 63];
    *out++ = abc[v & 63];
  }
  if (i < n) {
    uint32_t v =
        (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
    *out++ = abc[v >> 18];
    *out++ = abc[(v >> 12) & 63];
    *out++ = i + 1 < n ? abc[(v >> 6) & 63] : '=';
    *out++ = '=';
  }
  *out = '\0';
}

json_t *ctl_channel_message_json(const struct synod_channel_message *m) {
  json_t *o = json_object();
  json_t *text = json_stringn((const char *)m->data, m->len); /* checks UTF-8 */
  if (o == NULL) {
    json_decref(text);
    return NULL;
  }
  json_object_set_new(o, "channel", json_string(m->channel ? m->channel : ""));
  json_object_set_new(o, "offset", json_integer((json_int_t)m->offset));
  json_object_set_new(o, "index", json_integer((json_int_t)m->index));
  json_object_set_new(o, "time_ms", json_integer((json_int_t)m->time_ms));
  if (text != NULL) {
    json_object_set_new(o, "data", text);
    return o;
  }
  char *b64 = malloc(4 * ((m->len + 2) / 3) + 1);
  if (b64 == NULL) {
    json_decref(o);
    return NULL;
  }
  ctl_base64(b64, m->data, m->len);
  json_object_set_new(o, "data_base64", json_string(b64));
  free(b64);
  return o;
}

void ctl_election_line(const struct synod_election_info *info, char *out,
                       size_t len) {
  if (!info->has_leader) {
    snprintf(out, len, "no leader (revision=%" PRIu64 ")", info->revision);
    return;
  }
  snprintf(out, len,
           "leader=%.*s session=%" PRIu64 " revision=%" PRIu64 " candidates=%u",
           (int)(info->value_len > 512 ? 512 : info->value_len),
           (const char *)info->value, info->session_id, info->revision,
           info->candidates);
}

void ctl_json_print(json_t *obj) {
  char *s = obj ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  if (s != NULL) {
    printf("%s\n", s);
    fflush(stdout);
    free(s);
  }
  json_decref(obj);
}
