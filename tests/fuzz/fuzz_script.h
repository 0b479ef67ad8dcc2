/* A short, realistic history of log entries (sessions, a held lock with a
 * queued waiter, a lock-delay, counters, an election with two candidates,
 * keys, one bound to a session, and a transaction, a group with two
 * members, a state request, a message and an open checkpoint upload, a
 * member, a keepalive Tick), encoded the way the leader encodes them.
 * make_corpus.c writes it as seeds; the request and snapshot harnesses
 * apply it to get a live state machine with something in every tree. */
#ifndef SYNOD_FUZZ_SCRIPT_H
#define SYNOD_FUZZ_SCRIPT_H

#include "fuzz.h"

#include "fsm.h"
#include "synod.pb-c.h"

#define FUZZ_SCRIPT_MAX 24
#define FUZZ_SCRIPT_T0_MS 1000

/* The requests of the script, built in r (FUZZ_SCRIPT_MAX of each). */
struct fuzz_script_bodies {
  Synod__Request req[FUZZ_SCRIPT_MAX];
  Synod__SessionOpen open[2];
  Synod__LockAcquire acq[3];
  Synod__CounterAdd add;
  Synod__CounterSet set;
  Synod__ElectionCampaign camp[2];
  Synod__KeyPut put[3];
  Synod__KeyCompare cmp;
  Synod__KeyCompare *cmps[1];
  Synod__KeyGet get;
  Synod__KeyDelete del;
  Synod__KeyOp ops[3];
  Synod__KeyOp *success[2];
  Synod__KeyOp *failure[1];
  Synod__KeyTxn txn;
  Synod__GroupJoin join[2];
  Synod__GroupSend send;
  Synod__GroupCheckpoint ckpt;
};

/* Groups: session 1 joins "grp" as "a" (the coordinator), session 2 as
 * "b" asking for state (a state request to "a"), a session-less send to
 * "b" with a message id, and the first chunk of a's checkpoint (an
 * upload left open). */
static inline size_t fuzz_script_groups(struct fuzz_script_bodies *b,
                                        size_t n) {
  for (int i = 0; i < 2; i++) {
    synod__group_join__init(&b->join[i]);
    b->join[i].group = "grp";
    b->join[i].member = i == 0 ? "a" : "b";
    b->join[i].data.data = (uint8_t *)"10.0.0.1";
    b->join[i].data.len = 8;
    b->join[i].want_state = true;
    b->req[n].session_id = 1 + (uint64_t)i;
    b->req[n].sequence = i == 0 ? 4 : 6;
    b->req[n].body_case = SYNOD__REQUEST__BODY_GROUP_JOIN;
    b->req[n].group_join = &b->join[i];
    n++;
  }
  synod__group_send__init(&b->send);
  b->send.group = "grp";
  b->send.to = "b";
  b->send.data.data = (uint8_t *)"hello";
  b->send.data.len = 5;
  b->send.message_id = "m-1";
  b->req[n].body_case = SYNOD__REQUEST__BODY_GROUP_SEND;
  b->req[n].group_send = &b->send;
  n++;
  synod__group_checkpoint__init(&b->ckpt);
  b->ckpt.group = "grp";
  b->ckpt.member = "a";
  b->ckpt.offset = 2;
  b->ckpt.total_bytes = 4;
  b->ckpt.chunk.data = (uint8_t *)"ab";
  b->ckpt.chunk.len = 2;
  b->req[n].session_id = 1;
  b->req[n].sequence = 5;
  b->req[n].body_case = SYNOD__REQUEST__BODY_GROUP_CHECKPOINT;
  b->req[n].group_checkpoint = &b->ckpt;
  return n + 1;
}

/* Keys: a device bound to session 2, a flag without a session, and a
 * transaction in session 2 that binds a second device if the flag is on
 * (else deletes every device). */
static inline size_t fuzz_script_keys(struct fuzz_script_bodies *b, size_t n) {
  const char *keys[] = {"dev/1", "cfg/flag", "dev/2"};
  const char *values[] = {"gw-b", "on", "gw-b"};
  for (int i = 0; i < 3; i++) {
    synod__key_put__init(&b->put[i]);
    b->put[i].key.data = (uint8_t *)keys[i];
    b->put[i].key.len = strlen(keys[i]);
    b->put[i].value.data = (uint8_t *)values[i];
    b->put[i].value.len = strlen(values[i]);
    b->put[i].session_bound = i != 1;
  }
  b->req[n].session_id = 2;
  b->req[n].sequence = 4;
  b->req[n].body_case = SYNOD__REQUEST__BODY_KEY_PUT;
  b->req[n].key_put = &b->put[0];
  n++;
  b->req[n].body_case = SYNOD__REQUEST__BODY_KEY_PUT;
  b->req[n].key_put = &b->put[1];
  n++;
  synod__key_compare__init(&b->cmp);
  b->cmp.key = b->put[1].key;
  b->cmp.target = SYNOD__KEY_COMPARE__TARGET__TARGET_VALUE;
  b->cmp.value = b->put[1].value;
  b->cmps[0] = &b->cmp;
  synod__key_get__init(&b->get);
  b->get.key = b->put[0].key;
  synod__key_delete__init(&b->del);
  b->del.key.data = (uint8_t *)"dev/";
  b->del.key.len = 4;
  b->del.prefix = true;
  for (int i = 0; i < 3; i++) {
    synod__key_op__init(&b->ops[i]);
  }
  b->ops[0].op_case = SYNOD__KEY_OP__OP_PUT;
  b->ops[0].put = &b->put[2];
  b->ops[1].op_case = SYNOD__KEY_OP__OP_GET;
  b->ops[1].get = &b->get;
  b->ops[2].op_case = SYNOD__KEY_OP__OP_DEL;
  b->ops[2].del = &b->del;
  b->success[0] = &b->ops[0];
  b->success[1] = &b->ops[1];
  b->failure[0] = &b->ops[2];
  synod__key_txn__init(&b->txn);
  b->txn.n_compares = 1;
  b->txn.compares = b->cmps;
  b->txn.n_success = 2;
  b->txn.success = b->success;
  b->txn.n_failure = 1;
  b->txn.failure = b->failure;
  b->req[n].session_id = 2;
  b->req[n].sequence = 5;
  b->req[n].body_case = SYNOD__REQUEST__BODY_KEY_TXN;
  b->req[n].key_txn = &b->txn;
  return n + 1;
}

static inline uint8_t *
fuzz_script_pack_request(uint64_t t, const Synod__Request *r, size_t *len) {
  *len = fsm_command_encode_request(t, r, NULL, 0);
  uint8_t *buf = malloc(*len ? *len : 1);
  FUZZ_CHECK(buf != NULL && fsm_command_encode_request(t, r, buf, *len) == *len,
             "encode request");
  return buf;
}

/* Fills bufs/lens with malloc'ed Commands for indexes 1, 2, ...; returns
 * how many. Session ids are the indexes of their opens: 1 and 2. */
static inline size_t fuzz_script(uint8_t **bufs, size_t *lens) {
  struct fuzz_script_bodies b;
  size_t n = 0;
  for (int i = 0; i < FUZZ_SCRIPT_MAX; i++) {
    synod__request__init(&b.req[i]);
  }
  for (int i = 0; i < 2; i++) {
    synod__session_open__init(&b.open[i]);
    b.open[i].ttl_ms = i == 0 ? 10000 : 5000;
    b.open[i].client_name = i == 0 ? "fuzz-a" : "fuzz-b";
    b.req[n].body_case = SYNOD__REQUEST__BODY_SESSION_OPEN;
    b.req[n].session_open = &b.open[i];
    n++;
  }
  const char *lock_names[] = {"a", "a", "b"};
  for (int i = 0; i < 3; i++) {
    synod__lock_acquire__init(&b.acq[i]);
    b.acq[i].name = (char *)lock_names[i];
    b.acq[i].owner_id = 7 + (uint64_t)i;
    b.acq[i].timeout_ms = i == 1 ? 3000 : 0;
    b.acq[i].lock_delay_ms = i == 2 ? 1000 : 0;
    b.req[n].session_id = i == 0 ? 1 : 2;
    b.req[n].sequence = i == 2 ? 2 : 1;
    b.req[n].body_case = SYNOD__REQUEST__BODY_LOCK_ACQUIRE;
    b.req[n].lock_acquire = &b.acq[i];
    n++;
  }
  synod__counter_add__init(&b.add);
  b.add.name = "c";
  b.add.delta = 5;
  b.req[n].body_case = SYNOD__REQUEST__BODY_COUNTER_ADD;
  b.req[n].counter_add = &b.add;
  n++;
  synod__counter_set__init(&b.set);
  b.set.name = "d";
  b.set.value = 42;
  b.req[n].session_id = 1;
  b.req[n].sequence = 2;
  b.req[n].body_case = SYNOD__REQUEST__BODY_COUNTER_SET;
  b.req[n].counter_set = &b.set;
  n++;
  for (int i = 0; i < 2; i++) {
    synod__election_campaign__init(&b.camp[i]);
    b.camp[i].name = "e";
    b.camp[i].value.data = (uint8_t *)(i == 0 ? "pod-0" : "pod-1");
    b.camp[i].value.len = 5;
    b.req[n].session_id = 1 + (uint64_t)i;
    b.req[n].sequence = 3;
    b.req[n].body_case = SYNOD__REQUEST__BODY_ELECTION_CAMPAIGN;
    b.req[n].election_campaign = &b.camp[i];
    n++;
  }
  n = fuzz_script_keys(&b, n);
  n = fuzz_script_groups(&b, n);
  for (size_t i = 0; i < n; i++) {
    bufs[i] = fuzz_script_pack_request(FUZZ_SCRIPT_T0_MS + 100 * i, &b.req[i],
                                       &lens[i]);
  }
  uint64_t t = FUZZ_SCRIPT_T0_MS + 100 * n;
  struct fsm_member_info m = {11, "synod-0", "127.0.0.1:7701",
                              "127.0.0.1:7700"};
  lens[n] = fsm_command_encode_member(t, &m, false, NULL, 0);
  bufs[n] = malloc(lens[n]);
  fsm_command_encode_member(t, &m, false, bufs[n], lens[n]);
  n++;
  uint64_t ids[] = {1};
  t += 2000;
  lens[n] = fsm_command_encode_tick(t, ids, 1, NULL, 0);
  bufs[n] = malloc(lens[n]);
  fsm_command_encode_tick(t, ids, 1, bufs[n], lens[n]);
  n++;
  return n;
}

/* A state machine that applied the script; NULL never (aborts). */
static inline struct fsm *fuzz_script_fsm(const struct fsm_options *opts) {
  uint8_t *bufs[FUZZ_SCRIPT_MAX];
  size_t lens[FUZZ_SCRIPT_MAX];
  size_t n = fuzz_script(bufs, lens);
  struct fsm *f = fsm_new(opts);
  FUZZ_CHECK(f != NULL, "fsm_new");
  for (size_t i = 0; i < n; i++) {
    struct fsm_output out;
    FUZZ_CHECK(fsm_apply(f, i + 1, bufs[i], lens[i], &out) == 0, "script");
    free(bufs[i]);
  }
  return f;
}

#endif /* SYNOD_FUZZ_SCRIPT_H */
