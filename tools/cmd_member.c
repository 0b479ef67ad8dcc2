/* synodctl member: membership changes an operator makes. */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

int cmd_member(const struct ctl_opts *o, int argc, char **argv) {
  bool help = argc >= 2 &&
              (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0);
  if (help || argc != 3 || strcmp(argv[1], "remove") != 0) {
    fprintf(help ? stdout : stderr,
            "usage: synodctl member remove NAME\n\n"
            "Removes replica NAME from the voting membership, for a replica\n"
            "that is gone for good (a replica that only crashed stays a\n"
            "voter so that the quorum never shrinks by accident; one that\n"
            "stops with SIGTERM leaves by itself). Answers once the new\n"
            "configuration is committed. Exit status: 0 removed, 1 error\n"
            "(no such member, another change in progress), 2 usage.\n");
    return help ? CTL_EXIT_OK : CTL_EXIT_USAGE;
  }
  struct synod_client *c = ctl_client(o, "member remove", NULL);
  if (c == NULL) {
    return CTL_EXIT_ERROR;
  }
  int rv = synod_member_remove(c, argv[2], o->timeout_ms);
  synod_client_free(c);
  if (rv != 0) {
    return ctl_fail(o, "member remove", rv);
  }
  if (o->json) {
    printf("{\"removed\":\"%s\"}\n", argv[2]);
  } else {
    printf("removed %s\n", argv[2]);
  }
  return CTL_EXIT_OK;
}
