/* The seeds' JGroups example on synod: every replica of an application
 * sends a UUID to the channel "cluster" every INTERVAL_MS (5 s) and logs
 * every message it receives, its own included, in the one order all of
 * them see. Messages survive a synod failover; none is lost or doubled.
 *
 *   SYNOD_ENDPOINTS=127.0.0.1:7700 example_cluster_chat NAME [INTERVAL_MS
 *   [ROUNDS]]     (ROUNDS sends, then one more interval of listening) */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <synod.h>
#include <time.h>

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s NAME [INTERVAL_MS [ROUNDS]]\n", argv[0]);
    return 2;
  }
  const char *name = argv[1];
  uint64_t interval = argc > 2 ? strtoull(argv[2], NULL, 10) : 5000;
  int rounds = argc > 3 ? atoi(argv[3]) : -1; /* -1: forever */
  struct synod_options o;
  struct synod_client *c;
  struct synod_subscription *sub;
  synod_options_init(&o);
  o.client_name = name;
  o.stay_on_replica = true; /* deliveries spread over the replicas */
  struct synod_subscribe_options so = {.channel = "cluster",
                                       .from = SYNOD_FROM_NEXT};
  if (synod_client_new(&o, &c) != 0 ||
      synod_subscribe(c, &so, 0, &sub, NULL) != 0) {
    fprintf(stderr, "%s: %s\n", name, synod_client_errmsg());
    return 1;
  }
  printf("%s joined\n", name);
  fflush(stdout);
  srand((unsigned)time(NULL) ^ (unsigned)(uintptr_t)&c);
  uint64_t next_send = now_ms() + interval;
  for (int sent = 0; rounds < 0 || sent <= rounds;) {
    uint64_t now = now_ms();
    if (now >= next_send) {
      if (rounds >= 0 && sent == rounds) {
        break; /* listened one interval after the last send */
      }
      char uuid[64];
      snprintf(uuid, sizeof uuid, "%s %08x-%04x-4%03x-%04x-%04x%08x", name,
               rand(), rand() & 0xffff, rand() & 0xfff,
               (rand() & 0x3fff) | 0x8000, rand() & 0xffff, rand());
      const void *msg = uuid;
      size_t len = strlen(uuid);
      if (synod_channel_publish(c, "cluster", &msg, &len, 1, NULL, 0, NULL)) {
        fprintf(stderr, "%s: send: %s\n", name, synod_client_errmsg());
      }
      next_send += interval;
      sent++;
      continue;
    }
    struct synod_channel_message m;
    int rv = synod_subscription_next(sub, (uint32_t)(next_send - now), &m);
    if (rv == 0) {
      printf("%s received \"%s\" (offset %" PRIu64 ")\n", name,
             (const char *)m.data, m.offset);
      fflush(stdout);
    } else if (rv != SYNOD_ETIMEDOUT) {
      fprintf(stderr, "%s: receive: %s\n", name, synod_client_errmsg());
      return 1;
    }
  }
  synod_subscription_close(sub);
  synod_client_free(c);
  return 0;
}
