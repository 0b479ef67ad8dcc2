/* A follower catches up from the leader's store, not from its memory
 * (issues 14 and 22: memory per message and per key). Raft's in-memory log
 * keeps the data of only its newest entries once they are applied and
 * durable (RELEASE, server/core/core.h); a follower that was away gets
 * the older ones read back from LMDB (persist.c, persist_fill_entries).
 *
 * A follower is SIGSTOPped while 16 MB of channel messages commit; the
 * leader's log then holds far less than that in memory. Resumed, the
 * follower catches up through appends the leader read back, ends with
 * the leader's state digest, and delivers every message byte for byte.
 *
 * The images of that state (megabytes) are written a step at a time
 * (persist.c, struct persist_stage): every replica took such snapshots,
 * and a replica SIGKILLed and restarted from one of them and its log ends
 * with the others' digest and delivers every message again. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "http_client.h"
#include "synod.h"

#define MESSAGES 2000
#define SIZE 8000
#define BATCH 10

#define OK(call)                                                               \
  do {                                                                         \
    int rv_ = (call);                                                          \
    CHECK(rv_ == 0, "%s: %s", synod_strerror(rv_), synod_client_errmsg());     \
  } while (0)

static void message(uint8_t *b, uint32_t i) {
  for (size_t j = 0; j < SIZE; j++) {
    b[j] = (uint8_t)(i * 31 + j * 7);
  }
  memcpy(b, &i, sizeof i);
}

static struct synod_client *client_of(const char *endpoints) {
  struct synod_options o;
  struct synod_client *cl;
  synod_options_init(&o);
  o.endpoints = endpoints;
  o.client_name = "test_catchup";
  CHECK(synod_client_new(&o, &cl) == 0, "%s", synod_client_errmsg());
  return cl;
}

/* Every replica's applied index and digest once all have applied `index`
 * and agree on where they are; bounded. */
static void wait_same_state(const struct cluster *c, uint64_t index) {
  uint64_t deadline = test_now_ms() + 60000;
  for (;;) {
    struct synod_status st[3];
    bool same = true;
    for (int i = 0; i < 3; i++) {
      struct synod_client *cl = client_of(c->nodes[i].client);
      OK(synod_status_ex(cl, SYNOD_STATUS_DIGEST, 5000, &st[i]));
      synod_client_free(cl);
      same = same && st[i].applied_index >= index &&
             st[i].applied_index == st[0].applied_index;
    }
    bool agree =
        same && st[1].digest == st[0].digest && st[2].digest == st[0].digest;
    CHECK(!same || agree, "applied %llu everywhere, digests %llx %llx %llx",
          (unsigned long long)st[0].applied_index,
          (unsigned long long)st[0].digest, (unsigned long long)st[1].digest,
          (unsigned long long)st[2].digest);
    uint64_t applied[3] = {st[0].applied_index, st[1].applied_index,
                           st[2].applied_index};
    for (int i = 0; i < 3; i++) {
      synod_status_free(&st[i]);
    }
    if (agree) {
      printf("  every replica applied %llu with the same digest\n",
             (unsigned long long)applied[0]);
      return;
    }
    CHECK(test_now_ms() < deadline,
          "replicas at %llu %llu %llu after 60 s, want %llu everywhere",
          (unsigned long long)applied[0], (unsigned long long)applied[1],
          (unsigned long long)applied[2], (unsigned long long)index);
    usleep(100000);
  }
}

int main(void) {
  char synodd[PATH_MAX];
  cluster_synodd_or_skip(synodd, sizeof synodd);
  struct cluster c;
  /* Snapshots due every 50 entries (each message batch is one): a few
   * during the fill, once the log outweighs the last image. */
  static const char *const args[] = {"--snapshot-entries", "50", NULL};
  cluster_start_args(&c, 3, synodd, args);
  int l = cluster_wait_leader(&c, 20000);
  int f = (l + 1) % 3;
  struct synod_client *cl = client_of(c.nodes[l].client);
  double read_back = metrics_of(&c, l, "synod_appends_read_back_total");

  cluster_signal(&c, f, SIGSTOP);
  static uint8_t data[BATCH][SIZE];
  const void *ptrs[BATCH];
  size_t lens[BATCH];
  struct synod_channel_published out = {0};
  for (uint32_t i = 0; i < MESSAGES; i += BATCH) {
    for (uint32_t k = 0; k < BATCH; k++) {
      message(data[k], i + k);
      ptrs[k] = data[k];
      lens[k] = SIZE;
    }
    OK(synod_channel_publish(cl, "catchup", ptrs, lens, BATCH, NULL, 0, &out));
  }
  /* What the leader holds is what is not yet in LMDB (the write-ahead
   * file, 2 MiB), the newest 4 MiB, and at most the appends in flight. */
  uint64_t deadline = test_now_ms() + 10000;
  double held;
  while ((held = metrics_of(&c, l, "synod_log_memory_bytes")) > 8e6) {
    CHECK(test_now_ms() < deadline,
          "%s holds %.0f bytes of entries in memory after 10 s",
          c.nodes[l].name, held);
    usleep(50000);
  }
  printf("  %d messages (%.0f MB) committed with %s stopped; the leader "
         "holds %.1f MB of them in memory\n",
         MESSAGES, MESSAGES * SIZE / 1e6, c.nodes[f].name, held / 1e6);

  cluster_signal(&c, f, SIGCONT);
  wait_same_state(&c, out.index);
  double sent = metrics_of(&c, l, "synod_appends_read_back_total") - read_back;
  CHECK(sent > 0, "%s read no append back from its store", c.nodes[l].name);
  printf("  %s sent %.0f appends read back from its store\n", c.nodes[l].name,
         sent);
  held = metrics_of(&c, f, "synod_log_memory_bytes");
  CHECK(held < 8e6, "%s holds %.0f bytes of entries after catching up",
        c.nodes[f].name, held);

  struct synod_client *fc = client_of(c.nodes[f].client);
  struct synod_subscribe_options so = {.channel = "catchup",
                                       .from = SYNOD_FROM_FIRST};
  struct synod_subscription *sub;
  OK(synod_subscribe(fc, &so, 10000, &sub, NULL));
  uint8_t want[SIZE];
  for (uint32_t i = 0; i < MESSAGES; i++) {
    struct synod_channel_message m;
    OK(synod_subscription_next(sub, 10000, &m));
    message(want, i);
    CHECK(m.offset == i + 1 && m.len == SIZE && memcmp(m.data, want, SIZE) == 0,
          "message %u from %s: offset %llu, %zu bytes, %s", i, c.nodes[f].name,
          (unsigned long long)m.offset, m.len,
          m.len == SIZE ? "other bytes" : "");
  }
  printf("  %s delivered all %d messages byte for byte\n", c.nodes[f].name,
         MESSAGES);
  synod_subscription_close(sub);
  synod_client_free(fc);

  for (int i = 0; i < 3; i++) {
    double taken = metrics_of(&c, i, "synod_snapshots_taken_total");
    double bytes = metrics_of(&c, i, "synod_snapshot_taken_bytes_total");
    CHECK(taken >= 1 && bytes / taken > 512 * 1024,
          "%s took %.0f snapshots of %.0f bytes in all: none written in "
          "steps",
          c.nodes[i].name, taken, bytes);
    /* The first one too: the state held megabytes when it was due,
     * though no earlier image said so. */
    double on_loop =
        metrics_of(&c, i, "synod_snapshots_encoded_total{by=\"loop\"}");
    CHECK(on_loop == 0,
          "%s encoded %.0f snapshot images on its loop, not in a child",
          c.nodes[i].name, on_loop);
  }
  int r = (l + 2) % 3;
  cluster_signal(&c, r, SIGKILL);
  OK(synod_channel_publish(cl, "catchup", ptrs, lens, 1, NULL, 0, &out));
  cluster_restart(&c, r);
  wait_same_state(&c, out.index);
  CHECK(metrics_of(&c, r, "synod_snapshots_received_total") == 0,
        "%s was sent a snapshot after its restart: it did not start from "
        "its own",
        c.nodes[r].name);
  fc = client_of(c.nodes[r].client);
  OK(synod_subscribe(fc, &so, 10000, &sub, NULL));
  for (uint32_t i = 0; i < MESSAGES; i++) {
    struct synod_channel_message m;
    OK(synod_subscription_next(sub, 10000, &m));
    message(want, i);
    CHECK(m.offset == i + 1 && m.len == SIZE && memcmp(m.data, want, SIZE) == 0,
          "message %u from %s after its restart: offset %llu, %zu bytes", i,
          c.nodes[r].name, (unsigned long long)m.offset, m.len);
  }
  printf("  %s, SIGKILLed and restarted from its snapshot, delivered all %d "
         "messages byte for byte\n",
         c.nodes[r].name, MESSAGES);
  synod_subscription_close(sub);
  synod_client_free(fc);
  synod_client_free(cl);
  cluster_stop(&c);
  printf("ok\n");
  return 0;
}
