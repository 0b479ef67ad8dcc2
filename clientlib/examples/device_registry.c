/* The device registry of issue 22: a gateway registers its devices as
 * session-bound keys devices/ID -> its address (they vanish when it
 * dies); a device that reconnects elsewhere is taken over in a
 * transaction comparing the key's mod revision, so a stale gateway never
 * overwrites the newer registration; a lookup finds where a device is.
 *
 *   example_device_registry gateway ADDRESS DEVICE...  register or take
 *       over each, hold until INT/TERM; HUP: refresh those still ours
 *   example_device_registry lookup DEVICE...  where each one is now */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <synod.h>

static struct synod_client *c;

/* Puts devices/ID = addr bound to our session if its mod revision is
 * still `rev` (0: it does not exist); else reads where it is now. */
static int put_if(const char *id, const char *addr, uint64_t rev,
                  struct synod_key_txn_result *r) {
  char key[600];
  snprintf(key, sizeof key, "devices/%.512s", id);
  struct synod_key_compare cmp = {
      key, rev ? SYNOD_KEY_MOD_REVISION : SYNOD_KEY_VERSION, SYNOD_KEY_EQUAL,
      rev};
  struct synod_key_op put = {.type = SYNOD_KEY_OP_PUT,
                             .key = key,
                             .value = addr,
                             .value_len = strlen(addr),
                             .flags = SYNOD_KEY_SESSION_BOUND};
  struct synod_key_op get = {.type = SYNOD_KEY_OP_GET, .key = key};
  struct synod_key_txn txn = {&cmp, 1, &put, 1, &get, 1}; /* if, then, else */
  return synod_key_txn(c, &txn, 0, r);
}

/* Registers the device, taking it over from whoever holds it: first as
 * if nobody did, then from what the failed attempt read. Returns the mod
 * revision of our registration (0 on error). */
static uint64_t take(const char *id, const char *addr) {
  uint64_t rev = 0, mine = 0;
  char from[256] = "";
  for (int tries = 0; mine == 0 && tries < 10; tries++) {
    struct synod_key_txn_result r;
    if (put_if(id, addr, rev, &r) != 0) {
      return 0;
    }
    const struct synod_key_get_result *now = &r.results[0].u.get;
    mine = r.succeeded ? r.revision : 0;
    rev = !r.succeeded && now->found ? now->kv.mod_revision : 0;
    if (!r.succeeded) { /* someone holds it: take it from them */
      snprintf(from, sizeof from, "%s",
               now->found ? (char *)now->kv.value : "");
    }
    synod_key_txn_result_free(&r);
  }
  printf("%s %s at %s%s%s\n", id, mine ? "registered" : "NOT registered", addr,
         from[0] ? ", moved from " : "", from);
  return mine;
}

/* Re-registers, only if nobody took the device since `rev`. */
static uint64_t refresh(const char *id, const char *addr, uint64_t rev) {
  struct synod_key_txn_result r;
  if (rev == 0 || put_if(id, addr, rev, &r) != 0) {
    return 0;
  }
  const struct synod_key_get_result *now = &r.results[0].u.get;
  bool ok = r.succeeded;
  printf(ok ? "%s refreshed at %s\n" : "%s moved to %s: not overwritten\n", id,
         ok           ? addr
         : now->found ? (char *)now->kv.value
                      : "nowhere");
  rev = ok ? r.revision : 0; /* else no longer ours */
  synod_key_txn_result_free(&r);
  return rev;
}

int main(int argc, char **argv) {
  sigset_t set;
  sigemptyset(&set);
  for (int i = 0, sigs[] = {SIGINT, SIGTERM, SIGHUP}; i < 3; i++) {
    sigaddset(&set, sigs[i]);
  }
  pthread_sigmask(SIG_BLOCK, &set, NULL); /* taken by sigwait below */
  bool gw = argc > 3 && strcmp(argv[1], "gateway") == 0;
  if (!gw && (argc < 3 || strcmp(argv[1], "lookup") != 0)) {
    fprintf(stderr, "usage: %s gateway ADDRESS DEVICE... | lookup DEVICE...\n",
            argv[0]);
    return 2;
  }
  struct synod_options o = {.client_name = argv[1]};
  if (synod_client_new(&o, &c) != 0) {
    fprintf(stderr, "%s\n", synod_client_errmsg());
    return 1;
  }
  int first = gw ? 3 : 2, n = argc - first, sig = 0;
  uint64_t revs[n];
  for (int i = 0; i < n; i++) {
    char key[600];
    snprintf(key, sizeof key, "devices/%.512s", argv[first + i]);
    struct synod_key_get_result g;
    if (gw && (revs[i] = take(argv[first + i], argv[2])) == 0) {
      fprintf(stderr, "%s: %s\n", argv[first + i], synod_client_errmsg());
    } else if (!gw && synod_key_get(c, key, 0, 0, &g) == 0) {
      printf("%s %s%s\n", argv[first + i], g.found ? "at " : "nowhere",
             g.found ? (char *)g.kv.value : "");
      synod_key_get_result_free(&g);
    }
  }
  fflush(stdout);
  while (gw && sigwait(&set, &sig) == 0 && sig == SIGHUP) {
    for (int i = 0; i < n; i++) {
      revs[i] = refresh(argv[first + i], argv[2], revs[i]);
    }
    fflush(stdout);
  }
  synod_client_free(c); /* ends the session: our devices vanish */
  return 0;
}
