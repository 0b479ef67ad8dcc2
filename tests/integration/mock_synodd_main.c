/* mock_synodd: the unit tests' fake one-replica server as a process, so
 * synodctl can be tested end to end before (and besides) the real synodd.
 * Prints its address on the first line of stdout, serves until SIGTERM or
 * SIGINT. SIGUSR1 toggles "ignore keepalives" (to make clients lose their
 * session). */
#include <signal.h>

#include "../unit/mock_synodd.c"

int main(void) {
  sigset_t set;
  int sig;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, NULL); /* the mock's thread inherits */
  struct mock *m = mock_start();
  printf("%s\n", m->address);
  fflush(stdout);
  while ((sig = sigwaitinfo(&set, NULL)) == SIGUSR1 || sig < 0) {
    if (sig == SIGUSR1) {
      m->ignore_keepalives = !m->ignore_keepalives;
    }
  }
  mock_stop(m);
  return 0;
}
