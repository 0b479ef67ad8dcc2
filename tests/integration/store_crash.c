/* Crash test of server/store: a child appends, truncates and snapshots in
 * a loop; the parent SIGKILLs it at random moments and checks that what
 * reopens is whole and holds everything the child reported durable.
 *
 *   store_crash                  run (seed from the clock, printed)
 *   SYNOD_SEED=n store_crash     replay a seed
 *   SYNOD_CRASH_ROUNDS=n         number of kills (default 200)
 */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "store.h"
#include "synod.h"

#define DEADLINE_S 55.0

/* xorshift64*: the seeded PRNG of both processes. */
static uint64_t rng_next(uint64_t *s) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 0x2545F4914F6CDD1DULL;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- Content derived from (index, term) and from the snapshot index,
 * so the parent can check every byte without a record of what was sent. */

static size_t entry_len(uint64_t index, uint64_t term) {
  return (size_t)((index * 31 + term * 17) % 500);
}

static uint8_t entry_byte(uint64_t index, uint64_t term, size_t i) {
  return (uint8_t)(index * 131 + term * 71 + i * 7 + (i >> 8));
}

static size_t image_len(uint64_t index) {
  return (size_t)(index * 977 % 150000 + 1000);
}

static uint8_t image_byte(uint64_t index, size_t i) {
  return (uint8_t)(index * 13 + i * 3 + (i >> 9));
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static uint64_t seed;
static char dir_path[4096]; /* kept on failure, for inspection */

static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "store_crash: FAIL: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr,
          "\nstore_crash: store kept in %s; replay with SYNOD_SEED=%" PRIu64
          "\n",
          dir_path, seed);
  va_end(ap);
  exit(1);
}

/* ---- The child. */

static void say(int fd, char tag, uint64_t n) {
  char line[32];
  int len = snprintf(line, sizeof line, "%c %" PRIu64 "\n", tag, n);
  if (write(fd, line, (size_t)len) != len) {
    _exit(4);
  }
}

static void child_die(struct store *s, const char *what) {
  fprintf(stderr, "store_crash child: %s: %s\n", what, store_errmsg(s));
  _exit(3);
}

/* Appends entries from..to at term, with a hard state, in one batch. */
static int child_batch(struct store *s, uint64_t truncate_from, uint64_t from,
                       uint64_t to, uint64_t term, uint64_t commit) {
  size_t n = (size_t)(to - from + 1);
  struct store_entry *v = calloc(n, sizeof *v);
  uint8_t *buf = malloc(n * 500);
  struct store_hard_state hs = {.term = term, .vote = 1, .commit = commit};
  struct store_batch b = {.hard_state = &hs,
                          .truncate_from = truncate_from,
                          .entries = v,
                          .entries_count = n};
  for (size_t i = 0; i < n; i++) {
    uint64_t index = from + i;
    v[i] = (struct store_entry){.index = index,
                                .term = term,
                                .type = (uint8_t)(index + term),
                                .data = buf + i * 500,
                                .len = entry_len(index, term)};
    for (size_t j = 0; j < v[i].len; j++) {
      buf[i * 500 + j] = entry_byte(index, term, j);
    }
  }
  int rv = store_batch_write(s, &b);
  free(v);
  free(buf);
  return rv;
}

static void child_snapshot(struct store *s, int fd, uint64_t *rng,
                           uint64_t index) {
  uint64_t term;
  uint8_t conf[16];
  size_t len = image_len(index);
  uint8_t *img = malloc(len);
  if (store_log_term(s, index, &term) != 0) {
    child_die(s, "term");
  }
  for (size_t i = 0; i < len; i++) {
    img[i] = image_byte(index, i);
  }
  memset(conf, (int)(index & 0xff), sizeof conf);
  say(fd, 'B', index);
  if (rng_next(rng) % 2 == 0) {
    /* What a replica does: the whole image in one transaction, with the
     * records waiting in the write-ahead file. */
    if (store_snapshot_save(s, index, term, conf, sizeof conf, img, len,
                            rng_next(rng) % 20) != 0) {
      child_die(s, "snapshot save");
    }
    say(fd, 'S', index);
    free(img);
    return;
  }
  if (store_snapshot_begin(s, index, term, conf, sizeof conf) != 0) {
    child_die(s, "snapshot begin");
  }
  for (size_t off = 0; off < len;) {
    size_t n = 1 + rng_next(rng) % 40000;
    n = n < len - off ? n : len - off;
    if (store_snapshot_write(s, img + off, n) != 0) {
      child_die(s, "snapshot write");
    }
    off += n;
  }
  if (store_snapshot_commit(s, rng_next(rng) % 20) != 0) {
    child_die(s, "snapshot commit");
  }
  say(fd, 'S', index);
  free(img);
}

static void child_main(const char *dir, int fd, uint64_t rng) {
  /* A small write-ahead file: it fills, checkpoints and starts over
   * many times between kills (the parent opens with the default size, so
   * the file also grows and shrinks every round). */
  struct store_options opts = {.map_size_bytes = 256 << 10,
                               .snapshot_chunk_bytes = 16 << 10,
                               .wal_bytes = 32 << 10};
  struct store s;
  struct store_hard_state hs;
  uint64_t snap;
  uint64_t snap_term;

  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (store_open(&s, dir, &opts) != 0 || store_hard_state_load(&s, &hs) != 0) {
    child_die(&s, "open");
  }
  uint64_t term = hs.term > 0 ? hs.term : 1;
  for (;;) {
    uint64_t last = store_log_last_index(&s);
    uint64_t r = rng_next(&rng) % 100;
    store_snapshot_last(&s, &snap, &snap_term);
    if (r < 8 && hs.commit > snap + 20) {
      child_snapshot(&s, fd, &rng, hs.commit);
      continue;
    }
    uint64_t trunc = 0;
    uint64_t from = last + 1;
    uint64_t to = last + 1 + rng_next(&rng) % (r < 15 ? 200 : 32);
    if (r < 20 && last > hs.commit + 2 && last > snap + 2) {
      /* A new leader overwrites an uncommitted suffix; never shorter. */
      uint64_t low = (hs.commit > snap ? hs.commit : snap) + 1;
      trunc = low + rng_next(&rng) % (last - low + 1);
      from = trunc;
      term++;
    }
    uint64_t commit = to > 10 ? to - 10 : hs.commit;
    commit = commit < hs.commit ? hs.commit : commit;
    commit = trunc != 0 && commit >= trunc ? hs.commit : commit;
    if (child_batch(&s, trunc, from, to, term, commit) != 0) {
      child_die(&s, "batch");
    }
    hs.term = term;
    hs.commit = commit;
    say(fd, 'D', to);
  }
}

/* ---- The parent: kill, reopen, check. */

struct expect {
  uint64_t durable;      /* highest index reported durable */
  uint64_t snap_durable; /* last snapshot reported committed */
  uint64_t snap_begun;   /* last snapshot begun */
  bool have_id;
  uint8_t id[STORE_INCARNATION_BYTES];
};

static void check_entries(struct store *s) {
  uint64_t lo = store_log_first_index(s);
  uint64_t last = store_log_last_index(s);
  while (lo <= last) {
    struct store_entry *v;
    size_t n;
    if (store_log_read(s, lo, last, 1 << 20, &v, &n) != 0) {
      fail("%s", store_errmsg(s));
    }
    for (size_t i = 0; i < n; i++) {
      const struct store_entry *e = &v[i];
      if (e->index != lo + i || e->len != entry_len(e->index, e->term) ||
          e->type != (uint8_t)(e->index + e->term)) {
        fail("entry %" PRIu64 " has the wrong shape", lo + i);
      }
      for (size_t j = 0; j < e->len; j++) {
        if (e->data[j] != entry_byte(e->index, e->term, j)) {
          fail("entry %" PRIu64 " byte %zu differs", e->index, j);
        }
      }
    }
    lo += n;
    store_entries_free(v);
  }
}

static void check_snapshot(struct store *s, const struct expect *x) {
  uint64_t index;
  uint64_t term;
  struct store_snapshot_reader *r;
  uint8_t buf[8192];
  size_t len;
  size_t off = 0;

  store_snapshot_last(s, &index, &term);
  if (index != x->snap_durable && index != x->snap_begun) {
    fail("snapshot %" PRIu64 ", expected %" PRIu64 " or %" PRIu64, index,
         x->snap_durable, x->snap_begun);
  }
  if (index == 0) {
    return;
  }
  if (store_snapshot_reader_new(s, &r) != 0) {
    fail("%s", store_errmsg(s));
  }
  const struct store_snapshot_meta *m = store_snapshot_reader_meta(r);
  if (m->size_bytes != image_len(index) || m->config_len != 16 ||
      m->config[15] != (uint8_t)index) {
    fail("snapshot %" PRIu64 " header differs", index);
  }
  while (store_snapshot_reader_read(r, buf, sizeof buf, &len) == 0 && len) {
    for (size_t i = 0; i < len; i++, off++) {
      if (buf[i] != image_byte(index, off)) {
        fail("snapshot %" PRIu64 " byte %zu differs", index, off);
      }
    }
  }
  if (off != image_len(index)) {
    fail("snapshot %" PRIu64 ": %s", index, store_snapshot_reader_errmsg(r));
  }
  store_snapshot_reader_free(r);
}

static void check_store(const char *dir, struct expect *x) {
  struct store s;
  struct store_hard_state hs;
  uint8_t id[STORE_INCARNATION_BYTES];

  if (store_open(&s, dir, NULL) != 0 || store_verify(&s) != 0 ||
      store_hard_state_load(&s, &hs) != 0) {
    fail("%s", store_errmsg(&s));
  }
  if (store_log_last_index(&s) < x->durable) {
    fail("last index %" PRIu64 " below %" PRIu64 " reported durable",
         store_log_last_index(&s), x->durable);
  }
  if (hs.commit > store_log_last_index(&s)) {
    fail("commit %" PRIu64 " past the log", hs.commit);
  }
  store_incarnation(&s, id);
  if (x->have_id && memcmp(id, x->id, sizeof id) != 0) {
    fail("incarnation id changed");
  }
  memcpy(x->id, id, sizeof id);
  x->have_id = true;
  check_entries(&s);
  check_snapshot(&s, x);
  store_close(&s);
}

/* Reads the child's reports until the deadline or its death. */
static void parent_listen(int fd, double until, struct expect *x, char *buf,
                          size_t *used) {
  for (;;) {
    double left = until - now_s();
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (left <= 0 || poll(&p, 1, (int)(left * 1000) + 1) <= 0) {
      return;
    }
    ssize_t n = read(fd, buf + *used, 4096 - *used - 1);
    if (n <= 0) {
      return;
    }
    *used += (size_t)n;
    buf[*used] = '\0';
    char *line = buf;
    char *nl;
    while ((nl = strchr(line, '\n')) != NULL) {
      uint64_t v = strtoull(line + 2, NULL, 10);
      if (line[0] == 'D') {
        x->durable = v > x->durable ? v : x->durable;
      } else if (line[0] == 'B') {
        x->snap_begun = v;
      } else if (line[0] == 'S') {
        x->snap_durable = v;
      }
      line = nl + 1;
    }
    *used = strlen(line);
    memmove(buf, line, *used + 1);
  }
}

/* Runs one child, kills it after delay_s, and checks the store. Returns
 * whether the kill landed between a snapshot's begin and commit. */
static bool round_run(const char *dir, struct expect *x, uint64_t child_seed,
                      double delay_s) {
  int fds[2];
  char buf[4096];
  size_t used = 0;
  int status;

  if (pipe(fds) != 0) {
    fail("pipe: %s", strerror(errno));
  }
  pid_t pid = fork();
  if (pid < 0) {
    fail("fork: %s", strerror(errno));
  }
  if (pid == 0) {
    close(fds[0]);
    child_main(dir, fds[1], child_seed | 1);
    _exit(5);
  }
  close(fds[1]);
  parent_listen(fds[0], now_s() + delay_s, x, buf, &used);
  kill(pid, SIGKILL);
  parent_listen(fds[0], now_s() + 5, x, buf, &used); /* drain to EOF */
  close(fds[0]);
  if (waitpid(pid, &status, 0) != pid || !WIFSIGNALED(status) ||
      WTERMSIG(status) != SIGKILL) {
    fail("child ended by itself (status %d), see its stderr", status);
  }
  bool mid_snapshot = x->snap_begun != x->snap_durable;
  check_store(dir, x);
  x->snap_begun = x->snap_durable = 0;
  struct store s;
  uint64_t term;
  if (store_open(&s, dir, NULL) != 0) {
    fail("%s", store_errmsg(&s));
  }
  store_snapshot_last(&s, &x->snap_durable, &term);
  x->snap_begun = x->snap_durable;
  store_close(&s);
  return mid_snapshot;
}

static int rm_one(const char *path, const struct stat *sb, int flag,
                  struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

int main(void) {
  const char *parent = getenv("SYNOD_TEST_TMP");
  const char *env_seed = getenv("SYNOD_SEED");
  const char *env_rounds = getenv("SYNOD_CRASH_ROUNDS");
  int rounds = env_rounds ? atoi(env_rounds) : 200;
  struct expect x = {0};
  char dir[4096];
  int mid_snapshot = 0;
  double start = now_s();

  log_init("store_crash", LOG_WARN);
  seed = env_seed ? strtoull(env_seed, NULL, 10)
                  : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
  printf("store_crash: seed %" PRIu64 ", %d kills\n", seed, rounds);
  fflush(stdout);
  parent = parent ? parent : "/tmp";
  mkdir(parent, 0700);
  snprintf(dir, sizeof dir, "%s/store-crash-XXXXXX", parent);
  if (mkdtemp(dir) == NULL) {
    fail("mkdtemp %s: %s", dir, strerror(errno));
  }
  snprintf(dir_path, sizeof dir_path, "%s", dir);
  uint64_t rng = seed | 1;
  for (int i = 0; i < rounds; i++) {
    /* Mostly short lives, so kills land in open and first writes too. */
    double delay_s = (double)(rng_next(&rng) % 1000) / 1000.0 *
                     (rng_next(&rng) % 4 == 0 ? 0.15 : 0.03);
    mid_snapshot += round_run(dir, &x, rng_next(&rng), delay_s);
    if (now_s() - start > DEADLINE_S) {
      fail("only %d kills in %.0f s", i + 1, DEADLINE_S);
    }
  }
  printf("store_crash: OK: %d kills (%d mid-snapshot), last durable index "
         "%" PRIu64 ", snapshot %" PRIu64 ", %.1f s\n",
         rounds, mid_snapshot, x.durable, x.snap_durable, now_s() - start);
  nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  return 0;
}
