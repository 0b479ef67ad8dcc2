/* synod-bench-channels: clocks, histograms, /proc readings, ports,
 * child processes and threads, shared by the harness and the three load
 * generators. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "synod_bench_channels.h"

uint64_t chb_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void chb_sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

void chb_sleep_until(uint64_t t_ns) {
  struct timespec ts = {(time_t)(t_ns / 1000000000ull),
                        (long)(t_ns % 1000000000ull)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
  }
}

void chb_error(char *first, uint64_t *count, const char *fmt, ...) {
  va_list ap;
  if (*count == 0 || first[0] == '\0') {
    va_start(ap, fmt);
    vsnprintf(first, CHB_ERRMSG_BYTES, fmt, ap);
    va_end(ap);
  }
  (*count)++;
}

/* ------------------------------------------------------------ latency */

static int hist_index(uint64_t us) {
  int exp;
  if (us < CHB_HIST_SUB) {
    return (int)us;
  }
  exp = 63 - __builtin_clzll(us); /* us in [2^exp, 2^(exp+1)), exp >= 6 */
  if (exp > 39) {
    return CHB_HIST_BUCKETS - 1;
  }
  return CHB_HIST_SUB * (exp - 5) +
         (int)((us >> (exp - 6)) & (CHB_HIST_SUB - 1));
}

/* The lowest value of bucket i. */
static uint64_t hist_value(int i) {
  int exp;
  if (i < CHB_HIST_SUB) {
    return (uint64_t)i;
  }
  exp = i / CHB_HIST_SUB + 5;
  return (1ull << exp) + ((uint64_t)(i % CHB_HIST_SUB) << (exp - 6));
}

void chb_hist_record(struct chb_hist *h, uint64_t us) {
  h->buckets[hist_index(us)]++;
  h->count++;
}

void chb_hist_merge(struct chb_hist *into, const struct chb_hist *from) {
  for (int i = 0; i < CHB_HIST_BUCKETS; i++) {
    into->buckets[i] += from->buckets[i];
  }
  into->count += from->count;
}

uint64_t chb_hist_percentile(const struct chb_hist *h, double p) {
  uint64_t want, seen = 0;
  if (h->count == 0) {
    return 0;
  }
  want = (uint64_t)(p * (double)h->count);
  if (want >= h->count) {
    want = h->count - 1;
  }
  for (int i = 0; i < CHB_HIST_BUCKETS; i++) {
    seen += h->buckets[i];
    if (seen > want) {
      return hist_value(i);
    }
  }
  return hist_value(CHB_HIST_BUCKETS - 1);
}

/* ------------------------------------------------------------ /proc */

uint64_t chb_proc_rss(pid_t pid, uint64_t *anon) {
  char path[64], line[256];
  uint64_t rss = 0;
  unsigned long long kb;
  FILE *f;
  if (anon != NULL) {
    *anon = 0;
  }
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  if ((f = fopen(path, "r")) == NULL) {
    return 0;
  }
  while (fgets(line, sizeof line, f) != NULL) {
    if (sscanf(line, "VmRSS: %llu kB", &kb) == 1) {
      rss = kb * 1024;
    } else if (anon != NULL && sscanf(line, "RssAnon: %llu kB", &kb) == 1) {
      *anon = kb * 1024;
    }
  }
  fclose(f);
  return rss;
}

double chb_proc_cpu_s(pid_t pid) {
  char path[64], buf[1024];
  unsigned long long utime, stime;
  const char *p;
  size_t n;
  FILE *f;
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  if ((f = fopen(path, "r")) == NULL) {
    return 0;
  }
  n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  /* The name (field 2) may hold spaces: fields 14 and 15 (utime, stime)
   * are the 12th and 13th after its closing parenthesis. */
  if ((p = strrchr(buf, ')')) == NULL ||
      sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
             &utime, &stime) != 2) {
    return 0;
  }
  return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

double chb_self_cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void sampler_take(struct chb_sampler *smp, double *procs, double *self) {
  for (int i = 0; i < smp->s->nprocs; i++) {
    procs[i] = chb_proc_cpu_s(smp->s->pids[i]);
  }
  *self = chb_self_cpu_s();
}

static void *sampler_main(void *arg) {
  struct chb_sampler *smp = arg;
  chb_sleep_until(smp->window_ns);
  smp->t0 = chb_now_ns();
  sampler_take(smp, smp->proc0, &smp->self0);
  chb_sleep_until(smp->end_ns);
  smp->t1 = chb_now_ns();
  sampler_take(smp, smp->proc1, &smp->self1);
  return NULL;
}

void chb_sampler_start(struct chb_sampler *smp, const struct chb_system *s,
                       uint64_t window_ns, uint64_t end_ns) {
  memset(smp, 0, sizeof *smp);
  smp->s = s;
  smp->window_ns = window_ns;
  smp->end_ns = end_ns;
  smp->started = pthread_create(&smp->thread, NULL, sampler_main, smp) == 0;
}

void chb_sampler_finish(struct chb_sampler *smp, double *client_cpu,
                        double *server_cpu) {
  double secs;
  *client_cpu = 0;
  for (int i = 0; i < CHB_PROCS_MAX; i++) {
    server_cpu[i] = 0;
  }
  if (!smp->started) {
    return;
  }
  pthread_join(smp->thread, NULL);
  secs = (double)(smp->t1 - smp->t0) / 1e9;
  if (secs <= 0) {
    return;
  }
  *client_cpu = (smp->self1 - smp->self0) / secs;
  for (int i = 0; i < smp->s->nprocs; i++) {
    server_cpu[i] = (smp->proc1[i] - smp->proc0[i]) / secs;
  }
}

/* ------------------------------------------------------ processes */

int chb_free_ports(int *ports, int n) {
  int fds[32];
  int rv = 0, i;
  if (n > 32) {
    return -1;
  }
  for (i = 0; i < n; i++) {
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof sa;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(fds[i], (struct sockaddr *)&sa, &len) != 0) {
      rv = -1;
      i++;
      break;
    }
    ports[i] = ntohs(sa.sin_port);
  }
  while (i-- > 0) {
    if (fds[i] >= 0) {
      close(fds[i]);
    }
  }
  return rv;
}

pid_t chb_spawn(char *const argv[], const char *log_path) {
  pid_t parent = getpid();
  int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  pid_t pid;
  if (fd < 0) {
    return -1;
  }
  fflush(NULL);
  pid = fork();
  if (pid < 0) {
    close(fd);
    return -1;
  }
  if (pid == 0) {
    int null = open("/dev/null", O_RDONLY);
    /* Its own process group, so a ^C reaches only us (the harness then
     * stops it); and killed by the kernel if we die first. */
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) {
      _exit(127);
    }
    dup2(null, STDIN_FILENO);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    execvp(argv[0], argv);
    _exit(127);
  }
  close(fd);
  test_track(pid);
  return pid;
}

bool chb_exited(pid_t pid) {
  int status;
  if (waitpid(pid, &status, WNOHANG) == pid) {
    test_untrack(pid);
    return true;
  }
  return false;
}

void chb_stop_pid(pid_t pid, unsigned grace_ms) {
  uint64_t until = chb_now_ns() + (uint64_t)grace_ms * 1000000ull;
  pid_t r;
  if (pid <= 0) {
    return;
  }
  kill(pid, SIGCONT);
  kill(pid, SIGTERM);
  while ((r = waitpid(pid, NULL, WNOHANG)) == 0 && chb_now_ns() < until) {
    chb_sleep_ms(5);
  }
  if (r == 0) {
    fprintf(stderr, "pid %d did not stop on SIGTERM within %u ms: SIGKILL\n",
            (int)pid, grace_ms);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
  }
  test_untrack(pid);
}

void chb_command_line(const char *cmd, char *out, size_t len) {
  FILE *p = popen(cmd, "r");
  out[0] = '\0';
  if (p == NULL) {
    return;
  }
  if (fgets(out, (int)len, p) == NULL) {
    out[0] = '\0';
  }
  out[strcspn(out, "\r\n")] = '\0';
  pclose(p);
}

void chb_threads_run(int n, void *(*fn)(void *), void *args, size_t stride) {
  pthread_t th[64];
  bool ok[64] = {false};
  if (n > 64) {
    n = 64;
  }
  for (int i = 0; i < n; i++) {
    ok[i] = pthread_create(&th[i], NULL, fn,
                           (char *)args + (size_t)i * stride) == 0;
    if (!ok[i]) {
      fn((char *)args + (size_t)i * stride); /* run it here instead */
    }
  }
  for (int i = 0; i < n; i++) {
    if (ok[i]) {
      pthread_join(th[i], NULL);
    }
  }
}

/* ------------------------------------------------------------ payload */

void chb_payload_fill(uint8_t *p, uint64_t send_ns, uint64_t seq) {
  memcpy(p, &send_ns, 8);
  memcpy(p + 8, &seq, 8);
  for (int i = 16; i < CHB_MSG_BYTES; i++) {
    p[i] = (uint8_t)('a' + i % 26);
  }
}

void chb_payload_read(const uint8_t *p, size_t len, uint64_t *send_ns,
                      uint64_t *seq) {
  *send_ns = 0;
  *seq = UINT64_MAX;
  if (len >= 16) {
    memcpy(send_ns, p, 8);
    memcpy(seq, p + 8, 8);
  }
}
