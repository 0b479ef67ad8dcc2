/* Replays kept inputs through one fuzz harness, without libFuzzer: linked
 * with a harness in the normal build, it calls LLVMFuzzerTestOneInput on
 * every file named on the command line or found in a directory named
 * there (not recursively). A harness that breaks an invariant aborts, so
 * the unit test fails and names the file it was on.
 *
 *   replay_<harness> tests/fuzz/regressions/<harness>
 * build/fuzz-corpus/<harness>
 *
 * A missing directory counts as empty: a harness may have no regressions
 * yet. Exits 1 if no input at all was found (a wrong path). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int replay_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    perror(path);
    return -1;
  }
  size_t cap = 4096, len = 0, n;
  uint8_t *buf = malloc(cap);
  while (buf != NULL && (n = fread(buf + len, 1, cap - len, f)) > 0) {
    len += n;
    if (len == cap) {
      uint8_t *b = realloc(buf, cap *= 2);
      if (b == NULL) {
        free(buf);
      }
      buf = b;
    }
  }
  fclose(f);
  if (buf == NULL) {
    fprintf(stderr, "%s: out of memory\n", path);
    return -1;
  }
  fprintf(stderr, "replay %s (%zu bytes)\n", path, len);
  /* An exact-size copy, so that ASan or valgrind catches a read past it. */
  uint8_t *exact = malloc(len ? len : 1);
  memcpy(exact, buf, len);
  free(buf);
  LLVMFuzzerTestOneInput(exact, len);
  free(exact);
  return 0;
}

static int name_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replays the regular files of dir in name order; returns how many. */
static int replay_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL) {
    fprintf(stderr, "replay: %s: no such directory, skipped\n", dir);
    return 0;
  }
  char **names = NULL;
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') {
      continue;
    }
    char **more = realloc(names, (n + 1) * sizeof *names);
    if (more == NULL) {
      break;
    }
    names = more;
    size_t len = strlen(dir) + strlen(e->d_name) + 2;
    names[n] = malloc(len);
    snprintf(names[n++], len, "%s/%s", dir, e->d_name);
  }
  closedir(d);
  qsort(names, n, sizeof *names, name_cmp);
  int count = 0;
  for (size_t i = 0; i < n; i++) {
    struct stat st;
    if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode) &&
        replay_file(names[i]) == 0) {
      count++;
    }
    free(names[i]);
  }
  free(names);
  return count;
}

int main(int argc, char **argv) {
  int count = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) == 0 && S_ISREG(st.st_mode)) {
      count += replay_file(argv[i]) == 0;
    } else {
      count += replay_dir(argv[i]);
    }
  }
  printf("replayed %d inputs\n", count);
  return count > 0 ? 0 : 1;
}
