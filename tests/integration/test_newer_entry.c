/* A committed entry written by a newer build (a field this build does not
 * know) stops the replicas that reach it instead of being applied
 * otherwise than the newer replicas would apply it (fsm_apply's
 * SYNOD_EPROTO, apply.c). The entry goes straight into every replica's
 * store while all three are down, after the entries they all hold, as a
 * newer leader would have replicated it; at the restart a new leader
 * commits it with its first entry. Every replica that learns the commit
 * exits 1 with a log line naming the field; none applies it (a replica
 * still running has applied less). */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "fsm.h"
#include "store.h"
#include "synod.h"

/* Waits until the three replicas report one applied index; returns it. */
static uint64_t settled_index(struct cluster *c) {
  uint64_t deadline = test_now_ms() + 20000;
  for (;;) {
    uint64_t applied[3] = {0};
    bool same = true;
    for (int i = 0; i < 3; i++) {
      struct synod_status st;
      if (cluster_status(c, i, 0, 2000, &st) != 0) {
        same = false;
        continue;
      }
      applied[i] = st.applied_index;
      same = same && st.applied_index == st.commit_index &&
             applied[i] == applied[0];
      synod_status_free(&st);
    }
    if (same) {
      return applied[0];
    }
    CHECK(test_now_ms() < deadline,
          "the replicas did not settle at one applied index in 20 s "
          "(%" PRIu64 ", %" PRIu64 ", %" PRIu64 ")",
          applied[0], applied[1], applied[2]);
  }
}

/* Appends to the store in dir a counter add whose CounterAdd carries field
 * 15, after its last entry and in its term; returns that index. */
static uint64_t append_newer_entry(const char *dir) {
  struct store s;
  memset(&s, 0, sizeof s);
  CHECK(store_open(&s, dir, NULL) == 0, "open %s: %s", dir, store_errmsg(&s));
  uint8_t one = 1, buf[256];
  ProtobufCMessageUnknownField extra = {.tag = 15,
                                        .wire_type =
                                            PROTOBUF_C_WIRE_TYPE_VARINT,
                                        .len = 1,
                                        .data = &one};
  Synod__CounterAdd add = SYNOD__COUNTER_ADD__INIT;
  add.name = "newer";
  add.delta = 1;
  add.base.n_unknown_fields = 1;
  add.base.unknown_fields = &extra;
  Synod__Request req = SYNOD__REQUEST__INIT;
  req.body_case = SYNOD__REQUEST__BODY_COUNTER_ADD;
  req.counter_add = &add;
  size_t len = fsm_command_encode_request(1, &req, buf, sizeof buf);
  CHECK(len <= sizeof buf, "a command of %zu bytes", len);
  struct store_entry e = {.index = store_log_last_index(&s) + 1,
                          .term = store_log_last_term(&s),
                          .type = 0, /* CORE_ENTRY_NORMAL */
                          .data = buf,
                          .len = len};
  CHECK(store_log_append(&s, &e, 1) == 0, "append to %s: %s", dir,
        store_errmsg(&s));
  store_close(&s);
  return e.index;
}

int main(void) {
  struct cluster c;
  char synodd[PATH_MAX];
  cluster_synodd_or_skip(synodd, sizeof synodd);
  cluster_start(&c, 3, synodd);
  cluster_wait_leader(&c, 20000);
  struct synod_options o;
  struct synod_client *cl;
  int64_t value = 0;
  synod_options_init(&o);
  o.endpoints = c.endpoints;
  CHECK(synod_client_new(&o, &cl) == 0, "client: %s", synod_client_errmsg());
  CHECK(synod_counter_add(cl, "before", 1, 10000, &value) == 0, "add: %s",
        synod_client_errmsg());
  synod_client_free(cl);
  uint64_t held = settled_index(&c);

  uint64_t at = 0;
  for (int i = 0; i < 3; i++) {
    cluster_signal(&c, i, SIGKILL);
  }
  for (int i = 0; i < 3; i++) {
    uint64_t k = append_newer_entry(c.nodes[i].data);
    CHECK(k > held && (at == 0 || k == at),
          "%s: the entry went to %" PRIu64 " (applied %" PRIu64
          " everywhere, the others at %" PRIu64 ")",
          c.nodes[i].name, k, held, at);
    at = k;
  }
  printf("a newer build's entry at %" PRIu64 " in every log\n", at);
  for (int i = 0; i < 3; i++) {
    cluster_restart(&c, i);
  }

  /* A leader commits it with its first entry and stops at it; so does
   * every replica that learns the commit. A majority of stopped replicas
   * leaves the last without one to tell it. */
  char needle[160];
  snprintf(needle, sizeof needle,
           "apply %" PRIu64 ": the entry carries field 15 of synod.CounterAdd",
           at);
  int stopped = 0;
  uint64_t deadline = test_now_ms() + 30000;
  while (stopped < 2) {
    CHECK(test_now_ms() < deadline, "%d replicas stopped in 30 s, want 2",
          stopped);
    for (int i = 0; i < 3; i++) {
      int status;
      if (c.nodes[i].pid == 0 || !test_wait_for(c.nodes[i].pid, 100, &status)) {
        continue;
      }
      test_untrack(c.nodes[i].pid);
      c.nodes[i].pid = 0;
      CHECK(status == 1, "%s ended with status %d, want exit 1",
            c.nodes[i].name, status);
      char *log = test_slurp(c.nodes[i].log);
      CHECK(strstr(log, needle) != NULL && strstr(log, "does not know") &&
                strstr(log, "run the newer build on"),
            "%s stopped without saying why (want \"%s\")", c.nodes[i].name,
            needle);
      free(log);
      printf("%s stopped at it: %s...\n", c.nodes[i].name, needle);
      stopped++;
    }
  }
  for (int i = 0; i < 3; i++) {
    struct synod_status st;
    if (c.nodes[i].pid != 0 && cluster_status(&c, i, 0, 2000, &st) == 0) {
      CHECK(st.applied_index < at, "%s applied %" PRIu64 ", past %" PRIu64,
            c.nodes[i].name, st.applied_index, at);
      printf("%s still runs, applied %" PRIu64 "\n", c.nodes[i].name,
             st.applied_index);
      synod_status_free(&st);
    }
  }
  cluster_stop(&c);
  printf("1 passed, 0 failed\n");
  return 0;
}
