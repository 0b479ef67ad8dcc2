/* Writes the seed corpora of the fuzz harnesses: real inputs made by the
 * code that makes them in a running cluster (frame_buf, peer_msg_encode,
 * fsm_command_encode_*, fsm_snapshot_encode, the store's own write-ahead
 * file), in the layout each harness reads (see the head of each
 * fuzz_<harness>.c). Run by the build:
 *
 *   make_corpus DIR     writes DIR/<harness>/seed-<what>
 *
 * Deterministic: the same build writes the same bytes, except the wal
 * seed, whose checksum depends on the store's random incarnation (the
 * harness re-stamps it). */
#include <errno.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "fuzz_script.h"

#include "core.h"
#include "frame.h"
#include "peer_codec.h"
#include "store.h"
#include "synod.h"

static const char *out_dir;

/* A growing byte string. */
struct bytes {
  uint8_t *p;
  size_t n, cap;
};

static void put(struct bytes *b, const void *p, size_t n) {
  if (b->n + n > b->cap) {
    b->cap = (b->n + n) * 2 + 64;
    b->p = realloc(b->p, b->cap);
    FUZZ_CHECK(b->p != NULL, "out of memory");
  }
  memcpy(b->p + b->n, p, n);
  b->n += n;
}

static void put_u8(struct bytes *b, uint8_t v) {
  put(b, &v, 1);
}

/* An item: 16-bit big-endian length, then the bytes (fuzz_item). */
static void put_item(struct bytes *b, const uint8_t *p, size_t n) {
  FUZZ_CHECK(n < 0x8000, "item of %zu bytes", n);
  put_u8(b, (uint8_t)(n >> 8));
  put_u8(b, (uint8_t)n);
  put(b, p, n);
}

static void write_seed(const char *harness, const char *what,
                       const struct bytes *b) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", out_dir, harness);
  if (mkdir(path, 0755) != 0 && errno != EEXIST) {
    FUZZ_CHECK(0, "mkdir %s: %s", path, strerror(errno));
  }
  snprintf(path, sizeof path, "%s/%s/seed-%s", out_dir, harness, what);
  FILE *f = fopen(path, "wb");
  FUZZ_CHECK(f != NULL, "open %s: %s", path, strerror(errno));
  FUZZ_CHECK(fwrite(b->p, 1, b->n, f) == b->n && fclose(f) == 0, "write %s",
             path);
}

static void reset(struct bytes *b) {
  b->n = 0;
}

/* ------------------------------------------------------------ requests */

/* One example of every request body, packed; returns how many. */
static size_t requests(uint8_t **bufs, size_t *lens) {
  Synod__Request r[32];
  Synod__Hello hello = SYNOD__HELLO__INIT;
  Synod__SessionOpen open = SYNOD__SESSION_OPEN__INIT;
  Synod__SessionKeepalive ka = SYNOD__SESSION_KEEPALIVE__INIT;
  Synod__SessionClose close = SYNOD__SESSION_CLOSE__INIT;
  Synod__LockAcquire acq = SYNOD__LOCK_ACQUIRE__INIT;
  Synod__LockRelease rel = SYNOD__LOCK_RELEASE__INIT;
  Synod__LockQuery lq = SYNOD__LOCK_QUERY__INIT;
  Synod__LockCheck lc = SYNOD__LOCK_CHECK__INIT;
  Synod__CounterGet cg = SYNOD__COUNTER_GET__INIT;
  Synod__CounterSet cs = SYNOD__COUNTER_SET__INIT;
  Synod__CounterCas cc = SYNOD__COUNTER_CAS__INIT;
  Synod__CounterAdd ca = SYNOD__COUNTER_ADD__INIT;
  Synod__CounterDelete cd = SYNOD__COUNTER_DELETE__INIT;
  Synod__CounterList cl = SYNOD__COUNTER_LIST__INIT;
  Synod__ElectionCampaign ec = SYNOD__ELECTION_CAMPAIGN__INIT;
  Synod__ElectionResign er = SYNOD__ELECTION_RESIGN__INIT;
  Synod__ElectionLeader el = SYNOD__ELECTION_LEADER__INIT;
  Synod__ElectionObserve eo = SYNOD__ELECTION_OBSERVE__INIT;
  Synod__Status st = SYNOD__STATUS__INIT;
  Synod__MemberRemove mr = SYNOD__MEMBER_REMOVE__INIT;
  Synod__KeyPut kp = SYNOD__KEY_PUT__INIT;
  Synod__KeyCompare kc = SYNOD__KEY_COMPARE__INIT; /* create only */
  Synod__KeyCompare *kcs[] = {&kc};
  Synod__KeyGet kg = SYNOD__KEY_GET__INIT;
  Synod__KeyList kl = SYNOD__KEY_LIST__INIT;
  Synod__KeyDelete kd = SYNOD__KEY_DELETE__INIT, kd1 = SYNOD__KEY_DELETE__INIT;
  Synod__KeyCompare kc2 = SYNOD__KEY_COMPARE__INIT;
  Synod__KeyCompare *kcs2[] = {&kc2};
  Synod__KeyOp kops[2] = {SYNOD__KEY_OP__INIT, SYNOD__KEY_OP__INIT};
  Synod__KeyOp *kok[] = {&kops[0]}, *kfail[] = {&kops[1]};
  Synod__KeyTxn kt = SYNOD__KEY_TXN__INIT;
  Synod__GroupJoin gj = SYNOD__GROUP_JOIN__INIT;
  Synod__GroupSend gs = SYNOD__GROUP_SEND__INIT;
  Synod__GroupViewGet gv = SYNOD__GROUP_VIEW_GET__INIT;
  Synod__GroupRead gr = SYNOD__GROUP_READ__INIT;
  Synod__GroupCheckpointRead gc = SYNOD__GROUP_CHECKPOINT_READ__INIT;
  Synod__GroupStateRequest gq = SYNOD__GROUP_STATE_REQUEST__INIT;
  Synod__GroupLeave gl = SYNOD__GROUP_LEAVE__INIT;
  size_t n = 0;
  for (size_t i = 0; i < 32; i++) {
    synod__request__init(&r[i]);
    r[i].id = i + 1;
  }
#define REQ(CASE, field, value, sid, seq)                                      \
  do {                                                                         \
    r[n].body_case = SYNOD__REQUEST__BODY_##CASE;                              \
    r[n].field = &value;                                                       \
    r[n].session_id = sid;                                                     \
    r[n].sequence = seq;                                                       \
    n++;                                                                       \
  } while (0)
  hello.protocol_version = SYNOD__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
  hello.client_name = "make_corpus";
  REQ(HELLO, hello, hello, 0, 0);
  open.ttl_ms = 10000;
  open.client_name = "seed";
  REQ(SESSION_OPEN, session_open, open, 0, 0);
  REQ(SESSION_KEEPALIVE, session_keepalive, ka, 1, 0);
  acq.name = "a";
  acq.owner_id = 9;
  acq.timeout_ms = 1000;
  acq.lock_delay_ms = 500;
  REQ(LOCK_ACQUIRE, lock_acquire, acq, 1, 10);
  lq.name = "a";
  REQ(LOCK_QUERY, lock_query, lq, 0, 0);
  lc.name = "a";
  lc.token = 3;
  REQ(LOCK_CHECK, lock_check, lc, 0, 0);
  rel.name = "a";
  rel.owner_id = 7;
  REQ(LOCK_RELEASE, lock_release, rel, 1, 11);
  cg.name = "c";
  REQ(COUNTER_GET, counter_get, cg, 0, 0);
  cs.name = "c";
  cs.value = -4;
  REQ(COUNTER_SET, counter_set, cs, 1, 12);
  cc.name = "c";
  cc.expect = -4;
  cc.update = 8;
  REQ(COUNTER_CAS, counter_cas, cc, 1, 13);
  ca.name = "c";
  ca.delta = 1;
  ca.return_previous = true;
  REQ(COUNTER_ADD, counter_add, ca, 0, 0);
  cl.prefix = "";
  cl.limit = 10;
  REQ(COUNTER_LIST, counter_list, cl, 0, 0);
  cd.name = "d";
  REQ(COUNTER_DELETE, counter_delete, cd, 1, 14);
  ec.name = "e";
  ec.value.data = (uint8_t *)"pod-9";
  ec.value.len = 5;
  REQ(ELECTION_CAMPAIGN, election_campaign, ec, 1, 15);
  el.name = "e";
  REQ(ELECTION_LEADER, election_leader, el, 0, 0);
  eo.name = "e";
  REQ(ELECTION_OBSERVE, election_observe, eo, 0, 0);
  er.name = "e";
  REQ(ELECTION_RESIGN, election_resign, er, 1, 16);
  st.digest = true;
  REQ(STATUS, status, st, 0, 0);
  mr.name = "synod-2";
  REQ(MEMBER_REMOVE, member_remove, mr, 0, 0);
  kp.key.data = (uint8_t *)"dev/7";
  kp.key.len = 5;
  kp.value.data = (uint8_t *)"gw-1";
  kp.value.len = 4;
  kp.session_bound = true;
  kp.compares = kcs;
  kp.n_compares = 1;
  REQ(KEY_PUT, key_put, kp, 1, 17);
  kg.key = kp.key;
  REQ(KEY_GET, key_get, kg, 0, 0);
  kl.prefix.data = (uint8_t *)"dev/";
  kl.prefix.len = 4;
  kl.limit = 10;
  REQ(KEY_LIST, key_list, kl, 0, 0);
  kops[0].op_case = SYNOD__KEY_OP__OP_GET;
  kops[0].get = &kg;
  kd.key = kl.prefix;
  kd.prefix = true;
  kops[1].op_case = SYNOD__KEY_OP__OP_DEL;
  kops[1].del = &kd;
  kc2.key = kp.key;
  kc2.target = SYNOD__KEY_COMPARE__TARGET__TARGET_SESSION;
  kc2.op = SYNOD__KEY_COMPARE__OP__OP_NOT_EQUAL;
  kt.compares = kcs2;
  kt.n_compares = 1;
  kt.success = kok;
  kt.n_success = 1;
  kt.failure = kfail;
  kt.n_failure = 1;
  REQ(KEY_TXN, key_txn, kt, 1, 18);
  kd1.key = kp.key;
  kd1.prev_kv = true;
  REQ(KEY_DELETE, key_delete, kd1, 0, 0);
  /* Groups: the script's "grp" (members a and b). 32 requests in all. */
  gj.group = gv.group = gr.group = gc.group = gq.group = gl.group = "grp";
  gj.member = gq.member = gl.member = gs.from = "z";
  gj.want_state = true;
  REQ(GROUP_JOIN, group_join, gj, 1, 19);
  gs.group = "grp";
  gs.to = "a";
  gs.data.data = (uint8_t *)"to-a";
  gs.data.len = 4;
  REQ(GROUP_SEND, group_send, gs, 1, 20);
  REQ(GROUP_VIEW, group_view, gv, 0, 0);
  gr.member = "b";
  REQ(GROUP_READ, group_read, gr, 0, 0);
  REQ(GROUP_CHECKPOINT_READ, group_checkpoint_read, gc, 0, 0);
  REQ(GROUP_STATE_REQUEST, group_state_request, gq, 1, 21);
  REQ(GROUP_LEAVE, group_leave, gl, 1, 22);
  REQ(SESSION_CLOSE, session_close, close, 2, 0);
#undef REQ
  r[3].stale = false;
  r[4].stale = true; /* a stale lock query */
  for (size_t i = 0; i < n; i++) {
    lens[i] = synod__request__get_packed_size(&r[i]);
    bufs[i] = malloc(lens[i] + 1);
    synod__request__pack(&r[i], bufs[i]);
  }
  return n;
}

static void seeds_frame_and_request(void) {
  uint8_t *bufs[32];
  size_t lens[32];
  size_t n = requests(bufs, lens);
  struct bytes b = {0}, all = {0};
  struct frame_buf fb;
  frame_buf_init(&fb);
  /* request: every request after a Hello, as leader; and each alone. */
  put_u8(&all, 3);
  for (size_t i = 0; i < n; i++) {
    put_item(&all, bufs[i], lens[i]);
    FUZZ_CHECK(frame_buf_append(&fb, bufs[i], lens[i], 0) == 0, "frame");
    if (i == 0) {
      continue;
    }
    char what[32];
    reset(&b);
    put_u8(&b, 3);
    put_item(&b, bufs[i], lens[i]);
    snprintf(what, sizeof what, "req-%02zu", i);
    write_seed("request", what, &b);
  }
  write_seed("request", "all", &all);
  all.p[0] = 0; /* a follower, Hello first */
  write_seed("request", "all-follower", &all);
  /* frame: the same requests as one stream, and with a small maximum. */
  reset(&b);
  put_u8(&b, 0);
  put_u8(&b, 7);
  put(&b, fb.data, fb.len);
  write_seed("frame", "requests", &b);
  b.p[0] = 2; /* max 32 bytes: some frames are refused */
  write_seed("frame", "requests-small-max", &b);
  for (size_t i = 0; i < n; i++) {
    free(bufs[i]);
  }
  frame_buf_close(&fb);
  free(b.p);
  free(all.p);
}

/* ---------------------------------------------------------------- peer */

static void peer_seed(const char *what, uint8_t flags,
                      const struct core_msg *ms, size_t n) {
  struct frame_buf fb;
  struct bytes b = {0};
  frame_buf_init(&fb);
  for (size_t i = 0; i < n; i++) {
    FUZZ_CHECK(peer_msg_encode(&ms[i], &fb, 0) == 0, "peer_msg_encode");
  }
  put_u8(&b, flags);
  put(&b, fb.data, fb.len);
  write_seed("peer", what, &b);
  if (strcmp(what, "append") == 0) {
    b.p[0] = 0;
    write_seed("frame", "peer-append", &b);
  }
  frame_buf_close(&fb);
  free(b.p);
}

static void seeds_peer(void) {
  uint8_t cmd[3][64];
  struct core_entry es[4];
  struct core_config cfg = {.voters_n = 3, .voters = {1, 2, 3}};
  uint8_t cfg_buf[CORE_CONFIG_ENCODED_MAX];
  for (int i = 0; i < 3; i++) {
    uint64_t ids[] = {1};
    size_t len = fsm_command_encode_tick(1000 + (uint64_t)i, ids, 1, cmd[i],
                                         sizeof cmd[i]);
    es[i] = (struct core_entry){.term = 2,
                                .index = 2 + (uint64_t)i,
                                .type = i == 0 ? CORE_ENTRY_NOOP
                                               : CORE_ENTRY_NORMAL,
                                .data = i == 0 ? NULL : cmd[i],
                                .len = i == 0 ? 0 : len};
  }
  es[3] = (struct core_entry){
      .term = 2, .index = 5, .type = CORE_ENTRY_CONFIG, .data = cfg_buf};
  es[3].len = core_config_encode(&cfg, cfg_buf);

  /* To a follower: a leader (2) in term 2 appends, beats, reads. */
  struct core_msg m[4];
  memset(m, 0, sizeof m);
  m[0] =
      (struct core_msg){.type = CORE_MSG_APPEND, .from = 2, .to = 1, .term = 2};
  m[0].append.prev_index = 1;
  m[0].append.prev_term = 1;
  m[0].append.commit = 3;
  m[0].append.entries = es;
  m[0].append.entries_n = 4;
  m[1] = (struct core_msg){
      .type = CORE_MSG_HEARTBEAT, .from = 2, .to = 1, .term = 2};
  m[1].heartbeat.commit = 5;
  m[1].heartbeat.read_ctx = 77;
  m[2] = (struct core_msg){
      .type = CORE_MSG_TIMEOUT_NOW, .from = 2, .to = 1, .term = 2};
  peer_seed("append", 2, m, 3);

  /* Votes, both kinds. */
  memset(m, 0, sizeof m);
  m[0] = (struct core_msg){
      .type = CORE_MSG_PRE_VOTE, .from = 3, .to = 1, .term = 2};
  m[0].vote.last_index = 1;
  m[0].vote.last_term = 1;
  m[1] = m[0];
  m[1].type = CORE_MSG_VOTE;
  m[1].vote.transfer = true;
  m[2] = (struct core_msg){
      .type = CORE_MSG_VOTE_REPLY, .from = 3, .to = 1, .term = 2};
  m[2].vote_reply.granted = true;
  m[3] = m[2];
  m[3].type = CORE_MSG_PRE_VOTE_REPLY;
  peer_seed("votes", 0, m, 4);

  /* To a leader (1, term 2): the followers' answers. */
  memset(m, 0, sizeof m);
  m[0] = (struct core_msg){
      .type = CORE_MSG_APPEND_REPLY, .from = 2, .to = 1, .term = 2};
  m[0].append_reply.index = 2;
  m[1] = m[0];
  m[1].from = 3;
  m[1].append_reply.reject = true;
  m[1].append_reply.index = 1;
  m[1].append_reply.hint_index = 1;
  m[1].append_reply.hint_term = 1;
  m[2] = (struct core_msg){
      .type = CORE_MSG_HEARTBEAT_REPLY, .from = 2, .to = 1, .term = 2};
  m[2].heartbeat_reply.read_ctx = 1;
  m[3] = (struct core_msg){
      .type = CORE_MSG_SNAPSHOT_REPLY, .from = 3, .to = 1, .term = 2};
  m[3].snapshot_reply.index = 2;
  m[3].snapshot_reply.offset = 10;
  peer_seed("replies", 3, m, 4);

  /* A snapshot in two chunks: the script's image. */
  struct fsm *f = fuzz_script_fsm(NULL);
  uint8_t *img;
  size_t len;
  fsm_snapshot_encode(f, &img, &len);
  fsm_free(f);
  memset(m, 0, sizeof m);
  for (int i = 0; i < 2; i++) {
    m[i] = (struct core_msg){
        .type = CORE_MSG_SNAPSHOT, .from = 2, .to = 1, .term = 3};
    m[i].snapshot.meta = (struct core_snapshot_meta){
        .index = 12, .term = 2, .size_bytes = len, .config = cfg};
    m[i].snapshot.offset = i == 0 ? 0 : len / 2;
    m[i].snapshot.data = img + m[i].snapshot.offset;
    m[i].snapshot.len = (uint32_t)(i == 0 ? len / 2 : len - len / 2);
    m[i].snapshot.last = i == 1;
  }
  peer_seed("snapshot", 2, m, 2);
  free(img);
}

/* ----------------------------------------------------------------- fsm */

static void seeds_fsm(void) {
  uint8_t *bufs[FUZZ_SCRIPT_MAX];
  size_t lens[FUZZ_SCRIPT_MAX];
  size_t n = fuzz_script(bufs, lens);
  struct bytes b = {0};
  /* Plain, small limits, and with a twin restored after entry 10 (keys
   * being written) and after entry 17 (groups joined, before the
   * expiries). */
  const uint8_t flags[] = {0, 1, 10 << 1, (17 << 1) | 1};
  const char *names[] = {"script", "script-small", "script-twin-10",
                         "script-small-twin-17"};
  for (int v = 0; v < 4; v++) {
    reset(&b);
    put_u8(&b, flags[v]);
    for (size_t i = 0; i < n; i++) {
      put_item(&b, bufs[i], lens[i]);
    }
    /* A Tick past every deadline: expiries, timeouts, lock-delays. */
    uint8_t tick[32];
    size_t len = fsm_command_encode_tick(10000000, NULL, 0, tick, sizeof tick);
    put_item(&b, tick, len);
    write_seed("fsm_apply", names[v], &b);
  }
  /* Each entry alone, and a non-NORMAL entry first. */
  for (size_t i = 0; i < n; i++) {
    char what[32];
    reset(&b);
    put_u8(&b, 0);
    put_u8(&b, 0x80);
    put_u8(&b, 0);
    put_item(&b, bufs[i], lens[i]);
    snprintf(what, sizeof what, "entry-%02zu", i);
    write_seed("fsm_apply", what, &b);
  }
  /* snapshot: the script's image, and the empty state's. */
  for (int which = 0; which < 2; which++) {
    struct fsm *f = which == 0 ? fuzz_script_fsm(NULL) : fsm_new(NULL);
    uint8_t *img;
    size_t len;
    fsm_snapshot_encode(f, &img, &len);
    reset(&b);
    put_u8(&b, 0);
    put(&b, img, len);
    write_seed("snapshot", which == 0 ? "script" : "empty", &b);
    free(img);
    fsm_free(f);
  }
  for (size_t i = 0; i < n; i++) {
    free(bufs[i]);
  }
  free(b.p);
}

/* ----------------------------------------------------------------- wal */

static int rm_cb(const char *path, const struct stat *st, int flag,
                 struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

/* The store's own file after three writes that follow fuzz_wal.c's
 * template (entries 1..3 in LMDB): entries 4..5 with a hard state, a
 * configuration with entry 6, and entry 7 alone. */
static void seeds_wal(void) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/wal-store-XXXXXX", out_dir);
  FUZZ_CHECK(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
  struct store_options o = {.wal_bytes = 64 * 1024};
  struct store s;
  memset(&s, 0, sizeof s);
  FUZZ_CHECK(store_open(&s, dir, &o) == 0, "%s", store_errmsg(&s));
  struct store_entry es[5];
  for (int i = 0; i < 5; i++) {
    es[i] = (struct store_entry){.index = (uint64_t)i + 1,
                                 .term = 1,
                                 .data = (const uint8_t *)"abc",
                                 .len = 3};
  }
  FUZZ_CHECK(store_log_append(&s, es, 3) == 0, "%s", store_errmsg(&s));
  store_close(&s);
  memset(&s, 0, sizeof s);
  FUZZ_CHECK(store_open(&s, dir, &o) == 0, "%s", store_errmsg(&s));
  struct store_hard_state hs = {.term = 2, .vote = 1, .commit = 3};
  struct store_entry more[3] = {
      {.index = 4, .term = 2, .data = (const uint8_t *)"four", .len = 4},
      {.index = 5, .term = 2, .type = 2},
      {.index = 6,
       .term = 2,
       .type = 1,
       .data = (const uint8_t *)"cfg",
       .len = 3}};
  struct store_batch b1 = {
      .hard_state = &hs, .entries = more, .entries_count = 2};
  struct store_config cfg = {
      .index = 6, .data = (const uint8_t *)"cfg", .len = 3};
  struct store_batch b2 = {
      .config = &cfg, .entries = more + 2, .entries_count = 1};
  struct store_entry seven = {
      .index = 7, .term = 2, .data = (const uint8_t *)"7", .len = 1};
  struct store_batch b3 = {.entries = &seven, .entries_count = 1};
  FUZZ_CHECK(store_batch_write(&s, &b1) == 0, "%s", store_errmsg(&s));
  FUZZ_CHECK(store_batch_write(&s, &b2) == 0, "%s", store_errmsg(&s));
  FUZZ_CHECK(store_batch_write(&s, &b3) == 0, "%s", store_errmsg(&s));
  size_t used = s.wal_off;
  FUZZ_CHECK(used > 0, "the writes did not go through the wal");
  store_close(&s);
  char path[4200];
  snprintf(path, sizeof path, "%s/wal", dir);
  FILE *f = fopen(path, "rb");
  FUZZ_CHECK(f != NULL, "open %s", path);
  struct bytes b = {0};
  put_u8(&b, 1);
  uint8_t *file = malloc(used);
  FUZZ_CHECK(fread(file, 1, used, f) == used, "read %s", path);
  fclose(f);
  put(&b, file, used);
  write_seed("wal", "three-records", &b);
  b.p[0] = 0; /* as it is: a file of another store, nothing replayed */
  write_seed("wal", "foreign", &b);
  free(file);
  free(b.p);
  nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* ----------------------------------------------------------- k8s, http */

static void seed_text(const char *harness, const char *what, uint8_t flags,
                      const char *text) {
  struct bytes b = {0};
  put_u8(&b, flags);
  put(&b, text, strlen(text));
  write_seed(harness, what, &b);
  free(b.p);
}

static void seeds_k8s(void) {
  seed_text("k8s", "podlist", 0x80,
            "{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"metadata\":"
            "{\"resourceVersion\":\"42\"},\"items\":["
            "{\"metadata\":{\"name\":\"synod-1\",\"namespace\":\"default\"},"
            "\"status\":{\"phase\":\"Running\",\"podIP\":\"10.0.0.2\"}},"
            "{\"metadata\":{\"name\":\"synod-0\"},"
            "\"status\":{\"phase\":\"Running\",\"podIP\":\"10.0.0.1\"}},"
            "{\"metadata\":{\"name\":\"synod-2\"},"
            "\"status\":{\"phase\":\"Pending\"}},"
            "{\"metadata\":{\"name\":\"synod-3\",\"deletionTimestamp\":"
            "\"2026-01-01T00:00:00Z\"},"
            "\"status\":{\"phase\":\"Running\",\"podIP\":\"10.0.0.4\"}},"
            "{\"metadata\":{\"name\":\"synod-4\"},"
            "\"status\":{\"phase\":\"Running\",\"podIP\":\"fd00::5\"}}]}");
  seed_text("k8s", "empty", 0x81, "{\"kind\":\"PodList\",\"items\":null}");
  seed_text("k8s", "status", 3,
            "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":"
            "\"Failure\",\"message\":\"pods is forbidden: User "
            "\\\"system:serviceaccount:default:synod\\\" cannot list\","
            "\"reason\":\"Forbidden\",\"code\":403}");
}

static void seeds_http(void) {
  seed_text("http", "get", 0, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  seed_text("http", "query", 1,
            "GET /leader/sched%20uler?name=a%2Fb&x HTTP/1.1\r\nHost: x\r\n"
            "Connection: keep-alive\r\n\r\n");
  seed_text("http", "post", 2,
            "POST /v1/counter/add HTTP/1.1\r\nHost: x\r\nContent-Type: "
            "application/json\r\nContent-Length: 24\r\n\r\n"
            "{\"name\":\"c\",\"delta\":1}\r\n");
  seed_text("http", "pipelined", 0,
            "GET /readyz HTTP/1.1\r\n\r\nHEAD /metrics HTTP/1.1\r\n\r\n"
            "GET /v1/status?cluster=1 HTTP/1.0\r\n\r\n");
  seed_text("http", "expect", 1,
            "PUT /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n"
            "Connection: close\r\n\r\nhello");
  seed_text("http", "chunked", 0,
            "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello"
            "\r\n0\r\n\r\n");
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: make_corpus DIR\n");
    return 2;
  }
  out_dir = argv[1];
  if (mkdir(out_dir, 0755) != 0 && errno != EEXIST) {
    fprintf(stderr, "mkdir %s: %s\n", out_dir, strerror(errno));
    return 1;
  }
  seeds_frame_and_request();
  seeds_peer();
  seeds_fsm();
  seeds_wal();
  seeds_k8s();
  seeds_http();
  return 0;
}
