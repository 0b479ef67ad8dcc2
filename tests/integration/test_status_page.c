/* The status page (GET /) in a real headless browser: 3 synodd processes,
 * a held lock with a waiter and an election (so the page draws every
 * table), and Debian's chromium driven by tests/browser/status_page.mjs
 * (playwright-core). This side owns the processes; the script reports
 * what the page shows through files in the cluster's directory:
 *   1. the page, opened on a follower, shows three members and one
 *      leader, the one the replicas agree on; the lock and the election;
 *   2. the leader is SIGKILLed: the page names the new leader (the one
 *      the survivors agree on) within 15 s and shows the old one down;
 *      screenshot status_page.png;
 *   3. the page's own replica is SIGKILLed (once the script is told to
 *      expect failing polls): the page says it is not answering and
 *      keeps retrying; screenshot status_page-down.png.
 * The script fails on any JavaScript error or console error of the page.
 * Screenshots stay in $SYNOD_TEST_TMP/status_page/. Exit 77 (skipped)
 * when chromium, node or playwright-core (tests/browser/node_modules,
 * from scripts/deps.sh --test) is missing, or synodd has no --http. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster.h"

#define LOCK_NAME "status-page-lock"
#define ELECTION_NAME "status-page-election"

/* Why the test cannot run here, or NULL. */
static const char *missing(const char *chromium, const char *scripts) {
  static char why[PATH_MAX + 128];
  char path[PATH_MAX + 64];
  if (access(chromium, X_OK) != 0) {
    snprintf(why, sizeof why,
             "chromium is not installed (%s; scripts/deps.sh --test installs "
             "it)",
             chromium);
    return why;
  }
  if (system("command -v node >/dev/null 2>&1") != 0) {
    return "node is not installed (scripts/deps.sh --test installs it)";
  }
  snprintf(path, sizeof path, "%s/node_modules/playwright-core/package.json",
           scripts);
  if (access(path, R_OK) != 0) {
    snprintf(why, sizeof why,
             "playwright-core is not installed in %s/node_modules "
             "(scripts/deps.sh --test runs npm ci there)",
             scripts);
    return why;
  }
  return NULL;
}

/* Waits (bounded) until the browser script has written dir/name and
 * copies its first line into out; fails at once if the script exits
 * first (its log, browser.log, is shown then). */
static void browser_wait(const char *dir, const char *name, pid_t script,
                         uint32_t timeout_ms, char *out, size_t cap) {
  char path[PATH_MAX + 32];
  uint64_t until = test_now_ms() + timeout_ms;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  for (;;) {
    if (access(path, F_OK) == 0) {
      char *s = test_slurp(path);
      s[strcspn(s, "\n")] = '\0';
      snprintf(out, cap, "%s", s);
      free(s);
      return;
    }
    int ws;
    pid_t r = waitpid(script, &ws, WNOHANG);
    if (r == script) {
      test_untrack(script);
    }
    CHECK(r != script,
          "the browser script exited (status %d) before writing %s; see "
          "%s/browser.log",
          WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws), name, dir);
    CHECK(test_now_ms() < until,
          "the browser script did not write %s within %u ms; see "
          "%s/browser.log",
          name, timeout_ms, dir);
    usleep(20 * 1000);
  }
}

/* Tells the browser script that step `name` is done. */
static void browser_tell(const char *dir, const char *name) {
  char path[PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  CHECK(f != NULL && fclose(f) == 0, "create %s: %s", path, strerror(errno));
}

static void check_screenshot(const char *dir, const char *name) {
  char path[PATH_MAX + 32];
  struct stat st;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  CHECK(stat(path, &st) == 0 && st.st_size > 1000,
        "no screenshot %s (or an empty one)", path);
  printf("screenshot %s (%lld bytes)\n", path, (long long)st.st_size);
}

/* Starts synodctl on the cluster with up to 8 args (NULL-terminated),
 * output to the cluster's dir/<log>. */
static pid_t synodctl_spawn(const struct cluster *c, const char *log,
                            const char *const args[]) {
  char ctl[PATH_MAX], out[PATH_MAX + 32];
  char *argv[12] = {ctl, "--endpoints", (char *)c->endpoints};
  test_binary("SYNODCTL", "synodctl", ctl, sizeof ctl);
  snprintf(out, sizeof out, "%s/%s", c->dir, log);
  for (int i = 0; i < 8 && args[i] != NULL; i++) {
    argv[3 + i] = (char *)args[i];
  }
  return test_spawn(argv, out);
}

int main(void) {
  char synodd[PATH_MAX], why[512], chromium[PATH_MAX], scripts[PATH_MAX];
  uint64_t t0 = test_now_ms();
  setvbuf(stdout, NULL, _IOLBF, 0);
  test_binary("SYNODD", "synodd", synodd, sizeof synodd);
  snprintf(chromium, sizeof chromium, "%s",
           getenv("CHROMIUM") ? getenv("CHROMIUM") : "/usr/bin/chromium");
  snprintf(scripts, sizeof scripts, "%s",
           getenv("SYNOD_BROWSER_TESTS") ? getenv("SYNOD_BROWSER_TESTS")
                                         : "tests/browser");
  const char *no = missing(chromium, scripts);
  if (no != NULL) {
    printf("skipped: %s\n", no);
    return SKIP_EXIT;
  }
  if (!cluster_synodd_ready(synodd, why, sizeof why)) {
    printf("skipped: %s\n", why);
    return SKIP_EXIT;
  }

  /* Screenshots outlive the test: $SYNOD_TEST_TMP/status_page/. */
  char shots[PATH_MAX], cmd[PATH_MAX * 2 + 64];
  const char *tmp = getenv("SYNOD_TEST_TMP");
  snprintf(shots, sizeof shots, "%.4000s/status_page",
           tmp != NULL && tmp[0] ? tmp : "/tmp");
  snprintf(cmd, sizeof cmd, "mkdir -p '%s' && rm -f '%s'/*.png", shots, shots);
  CHECK(test_sh(cmd, NULL, 10000) == 0, "%s", cmd);

  struct cluster c;
  cluster_start(&c, 3, synodd);
  int leader = cluster_wait_leader(&c, 30000);
  int page = (leader + 1) % c.n; /* a follower: the page must survive */
  printf("leader %s; the page opens on %s (http://%s/)\n", c.nodes[leader].name,
         c.nodes[page].name, c.nodes[page].http);

  /* Something in every table: a held lock with a waiter, an election. */
  /* The command under the lock ends with its synodctl, even a SIGKILLed
   * one: nothing is left behind. */
  const char *const lock[] = {
      "lock", LOCK_NAME, "--",
      "sh",   "-c",      "while kill -0 $PPID 2>/dev/null; do sleep 0.2; done",
      NULL};
  const char *const elect_args[] = {"elect", ELECTION_NAME, "pod-a", NULL};
  pid_t holder = synodctl_spawn(&c, "holder.log", lock);
  pid_t waiter = synodctl_spawn(&c, "waiter.log", lock);
  pid_t elect = synodctl_spawn(&c, "elect.log", elect_args);

  char url[64], script[PATH_MAX + 32], out[PATH_MAX + 32];
  snprintf(url, sizeof url, "http://%s/", c.nodes[page].http);
  snprintf(script, sizeof script, "%s/status_page.mjs", scripts);
  snprintf(out, sizeof out, "%s/browser.log", c.dir);
  char *argv[] = {
      "node",   script,          "--url",      url,           "--dir",
      c.dir,    "--screenshots", shots,        "--chromium",  chromium,
      "--lock", LOCK_NAME,       "--election", ELECTION_NAME, NULL};
  pid_t browser = test_spawn(argv, out);

  /* 1. Three members, one leader: the one the replicas agree on. */
  char seen[64];
  browser_wait(c.dir, "leader-1", browser, 90000, seen, sizeof seen);
  CHECK(strcmp(seen, c.nodes[leader].name) == 0,
        "the page names %s the leader, the replicas %s", seen,
        c.nodes[leader].name);
  printf("ok page shows 3 members, leader %s, the lock and the election "
         "(%.1f s)\n",
         seen, (double)(test_now_ms() - t0) / 1000);

  /* 2. SIGKILL the leader: the page names the new one. */
  uint64_t killed_at = test_now_ms();
  cluster_signal(&c, leader, SIGKILL);
  browser_tell(c.dir, "killed");
  browser_wait(c.dir, "leader-2", browser, 25000, seen, sizeof seen);
  int next = cluster_wait_leader(&c, 15000);
  CHECK(strcmp(seen, c.nodes[next].name) == 0,
        "the page names %s the new leader, the survivors %s", seen,
        c.nodes[next].name);
  printf("ok page names the new leader %s %.1f s after the SIGKILL\n", seen,
         (double)(test_now_ms() - killed_at) / 1000);
  /* The clients are done: SIGKILL (their sessions stay until the
   * cluster stops; a lock's command ends with its synodctl). */
  pid_t clients[] = {holder, waiter, elect};
  for (int i = 0; i < 3; i++) {
    kill(clients[i], SIGKILL);
    test_wait(clients[i], 10000, "synodctl");
  }

  /* 3. SIGKILL the page's own replica: it says so and keeps retrying. */
  browser_tell(c.dir, "kill-self"); /* its failing polls are expected now */
  browser_wait(c.dir, "kill-self-ok", browser, 10000, seen, sizeof seen);
  cluster_signal(&c, page, SIGKILL);
  browser_tell(c.dir, "killed-self");
  browser_wait(c.dir, "done", browser, 30000, seen, sizeof seen);
  int rc = test_wait(browser, 30000, "the browser script");
  CHECK(rc == 0 && strcmp(seen, "ok") == 0,
        "the browser script failed (exit %d); see %s/browser.log", rc, c.dir);
  printf("ok page says its replica is not answering, and logged no error\n");
  check_screenshot(shots, "status_page.png");
  check_screenshot(shots, "status_page-down.png");

  cluster_stop(&c);
  printf("ok status page in chromium (%.1f s)\n",
         (double)(test_now_ms() - t0) / 1000);
  return 0;
}
