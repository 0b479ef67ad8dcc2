/* A group member for integration.group_transfer: keeps a map from the
 * group's "set KEY VALUE" and "del KEY" messages, as
 * clientlib/examples/replicated_map.c does, and with it PAD_BYTES of
 * padding derived from the map, so that its state checkpoint is several
 * MiB and its transfer takes a while. A joiner checks the padding it
 * loaded against the map it loaded. Prints, one line each, flushed:
 *
 *   NAME joined at J with state from SRC at S (K keys, B bytes, pad ok)
 *   NAME storing state for X at OFF (B bytes)
 *   NAME stored state for X at OFF
 *   NAME digest at OFF: HEX (K keys)
 *
 *   SYNOD_ENDPOINTS=... group_state_member NAME GROUP TTL_MS WANT_STATE
 *   PAD_BYTES */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <synod.h>
#include <unistd.h>

#define ENTRIES_MAX 4096
#define STORE_TRIES 10

struct entry {
  char key[64];
  char value[64];
};

/* The map: entries sorted by key. */
static struct entry map[ENTRIES_MAX];
static size_t map_n;
static size_t pad_bytes;

static size_t map_find(const char *key, bool *found) {
  size_t lo = 0, hi = map_n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = strcmp(map[mid].key, key);
    if (c == 0) {
      *found = true;
      return mid;
    }
    if (c < 0) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  *found = false;
  return lo;
}

static void map_set(const char *key, const char *value) {
  bool found;
  size_t i = map_find(key, &found);
  if (!found) {
    if (map_n == ENTRIES_MAX) {
      return;
    }
    memmove(&map[i + 1], &map[i], (map_n - i) * sizeof map[0]);
    map_n++;
    snprintf(map[i].key, sizeof map[i].key, "%s", key);
  }
  snprintf(map[i].value, sizeof map[i].value, "%s", value);
}

static void map_del(const char *key) {
  bool found;
  size_t i = map_find(key, &found);
  if (found) {
    memmove(&map[i], &map[i + 1], (map_n - i - 1) * sizeof map[0]);
    map_n--;
  }
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    h = (h ^ ((const unsigned char *)p)[i]) * 1099511628211ull;
  }
  return h;
}

static uint64_t map_digest(void) {
  uint64_t h = 14695981039346656037ull;
  for (size_t i = 0; i < map_n; i++) {
    h = fnv(h, map[i].key, strlen(map[i].key) + 1);
    h = fnv(h, map[i].value, strlen(map[i].value) + 1);
  }
  return h;
}

/* The padding of the map whose digest is d: xorshift64 from d. */
static void pad_fill(uint8_t *p, size_t n, uint64_t d) {
  uint64_t x = d | 1;
  for (size_t i = 0; i < n; i++) {
    if (i % 8 == 0) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
    }
    p[i] = (uint8_t)(x >> (8 * (i % 8)));
  }
}

/* The state: "K\n", K lines "key=value\n", then the padding. */
static uint8_t *state_encode(size_t *len) {
  size_t n = 32 + map_n * 130 + pad_bytes;
  uint8_t *s = malloc(n);
  if (s == NULL) {
    return NULL;
  }
  size_t at = (size_t)snprintf((char *)s, n, "%zu\n", map_n);
  for (size_t i = 0; i < map_n; i++) {
    at += (size_t)snprintf((char *)s + at, n - at, "%s=%s\n", map[i].key,
                           map[i].value);
  }
  pad_fill(s + at, pad_bytes, map_digest());
  *len = at + pad_bytes;
  return s;
}

/* Loads a state; false if it does not decode or its padding is not the
 * map's. */
static bool state_decode(const uint8_t *s, size_t len) {
  size_t k = 0, at = 0;
  if (len == 0) {
    return true; /* from nothing */
  }
  if (sscanf((const char *)s, "%zu\n", &k) != 1) {
    return false;
  }
  at = (size_t)(strchr((const char *)s, '\n') - (const char *)s) + 1;
  for (size_t i = 0; i < k; i++) {
    const char *line = (const char *)s + at;
    const char *eq = memchr(line, '=', len - at);
    const char *nl = memchr(line, '\n', len - at);
    char key[64], value[64];
    if (eq == NULL || nl == NULL || eq > nl) {
      return false;
    }
    snprintf(key, sizeof key, "%.*s", (int)(eq - line), line);
    snprintf(value, sizeof value, "%.*s", (int)(nl - eq - 1), eq + 1);
    map_set(key, value);
    at += (size_t)(nl - line) + 1;
  }
  if (len - at != pad_bytes) {
    return false;
  }
  uint8_t *want = malloc(pad_bytes ? pad_bytes : 1);
  pad_fill(want, pad_bytes, map_digest());
  bool ok = memcmp(want, s + at, pad_bytes) == 0;
  free(want);
  return ok;
}

static void apply(const char *name, const struct synod_group_item *m) {
  char cmd[8], key[64], value[64];
  char text[160];
  snprintf(text, sizeof text, "%.*s", (int)(m->len < 159 ? m->len : 159),
           (const char *)m->data);
  int n = sscanf(text, "%7s %63s %63s", cmd, key, value);
  if (n == 3 && strcmp(cmd, "set") == 0) {
    map_set(key, value);
  } else if (n >= 2 && strcmp(cmd, "del") == 0) {
    map_del(key);
  } else if (n >= 1 && strcmp(cmd, "dump") == 0) {
    printf("%s digest at %" PRIu64 ": %016" PRIx64 " (%zu keys)\n", name,
           m->offset, map_digest(), map_n);
  }
}

/* The state as of the request's offset (every item before it applied),
 * stored as a checkpoint; retried while replicas fail over. */
static void answer(const char *name, struct synod_group *g,
                   const struct synod_group_item *it) {
  size_t len = 0;
  uint8_t *s = state_encode(&len);
  int rv = SYNOD_ENOMEM;
  printf("%s storing state for %s at %" PRIu64 " (%zu bytes)\n", name,
         it->member, it->offset, len);
  fflush(stdout);
  for (int i = 0; s != NULL && i < STORE_TRIES; i++) {
    rv = synod_group_member_checkpoint(g, it->offset, s, len, 0, NULL);
    if (rv == 0 || rv == SYNOD_ERANGE) { /* ERANGE: a later one is there */
      break;
    }
    printf("%s storing state: %s (tried again)\n", name, synod_client_errmsg());
    fflush(stdout);
  }
  printf("%s %s state for %s at %" PRIu64 "%s%s\n", name,
         rv == 0 ? "stored" : "failed to store", it->member, it->offset,
         rv == 0 ? "" : ": ", rv == 0 ? "" : synod_strerror(rv));
  free(s);
}

static const char *source_name(enum synod_group_state_source s) {
  switch (s) {
  case SYNOD_GROUP_STATE_CHECKPOINT:
    return "checkpoint";
  case SYNOD_GROUP_STATE_REQUESTED:
    return "coordinator";
  case SYNOD_GROUP_STATE_EMPTY:
    return "nothing";
  default:
    return "none";
  }
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s NAME GROUP TTL_MS WANT_STATE PAD_BYTES\n",
            argv[0]);
    return 2;
  }
  const char *name = argv[1];
  struct synod_options o;
  struct synod_client *c;
  struct synod_group *g;
  struct synod_group_ready r;
  struct synod_group_join_options jo = {.group = argv[2],
                                        .member = name,
                                        .want_state = atoi(argv[4]) != 0,
                                        .state_timeout_ms = 60000};
  pad_bytes = strtoul(argv[5], NULL, 10);
  synod_options_init(&o);
  o.client_name = name;
  o.session_ttl_ms = (uint32_t)strtoul(argv[3], NULL, 10);
  if (synod_client_new(&o, &c) != 0 ||
      synod_group_member_join(c, &jo, 0, &g, &r) != 0) {
    fprintf(stderr, "%s: join: %s\n", name, synod_client_errmsg());
    return 1;
  }
  bool ok = state_decode(r.state, r.state_len);
  printf("%s joined at %" PRIu64 " with state from %s at %" PRIu64
         " (%zu keys, %zu bytes, pad %s)\n",
         name, r.join_offset, source_name(r.source), r.state_offset, map_n,
         r.state_len, ok ? "ok" : "BAD");
  fflush(stdout);
  synod_group_ready_free(&r);
  for (;;) {
    struct synod_group_event ev;
    int rv = synod_group_member_next(g, SYNOD_WAIT_FOREVER, &ev);
    if (rv != 0) {
      fprintf(stderr, "%s: %s\n", name, synod_client_errmsg());
      break;
    }
    if (ev.type == SYNOD_GROUP_EVENT_MESSAGE) {
      apply(name, &ev.item);
    } else if (ev.type == SYNOD_GROUP_EVENT_STATE_REQUEST) {
      answer(name, g, &ev.item);
    }
    fflush(stdout);
  }
  synod_group_member_close(g);
  synod_client_free(c);
  return 1;
}
