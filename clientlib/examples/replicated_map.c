/* A replicated in-memory map on a synod group (issue 23): every member
 * keeps the map from the group's messages ("set KEY VALUE", "del KEY"),
 * applied in the group's one order, so every member holds the same map
 * after the same message. A member that joins (or comes back after a
 * crash) asks for the group's state: the latest checkpoint, or else the
 * coordinator's map, which the coordinator stores as a checkpoint when
 * the state request reaches it in the stream. The joiner loads it and
 * applies every message after it, and ends identical to the others.
 *
 * "dump" prints the map's digest (FNV-1a 64 of its sorted "key=value"
 * lines) with the offset of the dump: members that print the same
 * offset must print the same digest.
 *
 *   SYNOD_ENDPOINTS=127.0.0.1:7700 example_replicated_map NAME [GROUP
 *   [TTL_MS]]     (GROUP "map"; TTL_MS the session TTL, 10 s) */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <synod.h>
#include <time.h>
#include <unistd.h>

#define ENTRIES_MAX 4096
#define JOIN_RETRY_MS 30000 /* a crashed self may hold the name that long */

struct entry {
  char *key;
  char *value;
};

/* The map: entries sorted by key. */
static struct entry map[ENTRIES_MAX];
static size_t map_n;

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The index of key, or where it would go (*found false). */
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
  if (found) {
    free(map[i].value);
    map[i].value = strdup(value);
    return;
  }
  if (map_n == ENTRIES_MAX) {
    fprintf(stderr, "map full: '%s' dropped\n", key);
    return;
  }
  memmove(&map[i + 1], &map[i], (map_n - i) * sizeof map[0]);
  map[i].key = strdup(key);
  map[i].value = strdup(value);
  map_n++;
}

static void map_del(const char *key) {
  bool found;
  size_t i = map_find(key, &found);
  if (found) {
    free(map[i].key);
    free(map[i].value);
    memmove(&map[i], &map[i + 1], (map_n - i - 1) * sizeof map[0]);
    map_n--;
  }
}

/* The map as "key=value\n" lines, sorted (malloc'd; *len bytes). */
static char *map_encode(size_t *len) {
  size_t n = 1;
  for (size_t i = 0; i < map_n; i++) {
    n += strlen(map[i].key) + strlen(map[i].value) + 2;
  }
  char *s = malloc(n), *p = s;
  if (s == NULL) {
    return NULL;
  }
  for (size_t i = 0; i < map_n; i++) {
    p += sprintf(p, "%s=%s\n", map[i].key, map[i].value);
  }
  *len = (size_t)(p - s);
  return s;
}

/* Loads a map encoded by map_encode (len bytes, NUL-terminated). */
static void map_decode(char *s) {
  for (char *line = strtok(s, "\n"); line != NULL; line = strtok(NULL, "\n")) {
    char *eq = strchr(line, '=');
    if (eq != NULL) {
      *eq = '\0';
      map_set(line, eq + 1);
    }
  }
}

static uint64_t map_digest(void) {
  size_t len;
  char *s = map_encode(&len);
  uint64_t h = 14695981039346656037ull;
  for (size_t i = 0; s != NULL && i < len; i++) {
    h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  }
  free(s);
  return h;
}

/* One command from the group. */
static void apply(const char *name, const struct synod_group_item *m) {
  char cmd[8], key[128], value[256];
  int n = sscanf(m->data, "%7s %127s %255s", cmd, key, value);
  if (n == 3 && strcmp(cmd, "set") == 0) {
    map_set(key, value);
  } else if (n >= 2 && strcmp(cmd, "del") == 0) {
    map_del(key);
  } else if (n >= 1 && strcmp(cmd, "dump") == 0) {
    printf("%s digest at %" PRIu64 ": %016" PRIx64 " (%zu keys)\n", name,
           m->offset, map_digest(), map_n);
  } else {
    printf("%s ignores \"%s\" at %" PRIu64 "\n", name, (const char *)m->data,
           m->offset);
  }
}

/* Joins with state, retrying while a crashed process of ours still holds
 * the name (until its session expires). */
static int join(struct synod_client *c, const char *group, const char *name,
                struct synod_group **g, struct synod_group_ready *r) {
  struct synod_group_join_options o = {.group = group,
                                       .member = name,
                                       .want_state = true,
                                       .state_timeout_ms = 10000};
  uint64_t deadline = now_ms() + JOIN_RETRY_MS;
  int rv;
  while ((rv = synod_group_member_join(c, &o, 0, g, r)) == SYNOD_EEXIST &&
         now_ms() < deadline) {
    usleep(200 * 1000); /* the old session's expiry: nothing to wait on */
  }
  return rv;
}

static const char *source_name(enum synod_group_state_source s) {
  switch (s) {
  case SYNOD_GROUP_STATE_CHECKPOINT:
    return "checkpoint";
  case SYNOD_GROUP_STATE_REQUESTED:
    return "coordinator";
  case SYNOD_GROUP_STATE_EMPTY:
    return "nothing (coordinator)";
  default:
    return "none";
  }
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s NAME [GROUP [TTL_MS]]\n", argv[0]);
    return 2;
  }
  const char *name = argv[1];
  const char *group = argc > 2 ? argv[2] : "map";
  struct synod_options o;
  struct synod_client *c;
  struct synod_group *g;
  struct synod_group_ready r;
  synod_options_init(&o);
  o.client_name = name;
  o.stay_on_replica = true; /* deliveries spread over the replicas */
  o.session_ttl_ms = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 0;
  if (synod_client_new(&o, &c) != 0 || join(c, group, name, &g, &r) != 0) {
    fprintf(stderr, "%s: join: %s\n", name, synod_client_errmsg());
    return 1;
  }
  map_decode(r.state);
  printf("%s joined at %" PRIu64 " with state from %s at %" PRIu64
         " (%zu keys)\n",
         name, r.join_offset, source_name(r.source), r.state_offset, map_n);
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
    } else if (ev.type == SYNOD_GROUP_EVENT_VIEW) {
      printf("%s view %" PRIu64 ":", name, ev.view.view_id);
      for (size_t i = 0; i < ev.view.count; i++) {
        printf(" %s", ev.view.members[i].name);
      }
      printf("\n");
    } else if (ev.type == SYNOD_GROUP_EVENT_STATE_REQUEST) {
      /* The map now is the map after every item up to the request. */
      size_t len;
      char *s = map_encode(&len);
      rv = s != NULL ? synod_group_member_checkpoint(g, ev.item.offset, s, len,
                                                     0, NULL)
                     : SYNOD_ENOMEM;
      printf("%s state for %s at %" PRIu64 ": %s\n", name,
             ev.item.member[0] ? ev.item.member : "the replicas",
             ev.item.offset, rv == 0 ? "stored" : synod_client_errmsg());
      free(s);
    }
    fflush(stdout);
  }
  synod_group_member_close(g);
  synod_client_free(c);
  return 1;
}
