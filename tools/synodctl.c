/* synodctl: the command-line tool of synod. */
#include <stdio.h>
#include <string.h>

#include "version.h"

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "version") != 0 &&
      strcmp(argv[1], "--version") != 0) {
    fprintf(stderr,
            "synodctl: unknown command '%s' (this build knows: version)\n",
            argv[1]);
    return 2;
  }
  printf("synodctl %s\n", SYNOD_VERSION);
  return 0;
}
