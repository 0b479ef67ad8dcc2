/* synodd: configuration and wiring, nothing else. */
#include <stdio.h>
#include <string.h>

#include "version.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: synodd [--version] [--help]\n"
          "\n"
          "synodd is a replica of synod, a replicated coordination service.\n"
          "The server (peer links, client listener) is being built; this\n"
          "build only reports its version.\n");
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--version") == 0) {
      printf("synodd %s\n", SYNOD_VERSION);
      return 0;
    }
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return 0;
    }
    fprintf(stderr, "synodd: unknown argument '%s'\n", argv[i]);
    usage(stderr);
    return 2;
  }
  printf("synodd %s\n", SYNOD_VERSION);
  return 0;
}
