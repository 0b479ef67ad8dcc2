/* The nemesis's network: a bridge in a namespace of its own, one namespace
 * per replica and one for the clients, joined by veth pairs, addressed in
 * 127.77.0.0/16 (route_localnet). Faults are iptables-legacy rules in the
 * replicas' namespaces; heal flushes them. netem is not assumed: loss is
 * iptables' statistic match, rate caps are tc htb. */
#include "nemesis.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster.h"

/* Runs cmd through sh; its exit status. A command still running after
 * 30 s is killed and run again once (a run of 308 rounds ended when one
 * `ip netns exec ... iptables-legacy` never returned on a loaded
 * machine): the fault it sets is idempotent or re-checked by the round. */
static int sh_bounded(const char *cmd) {
  char *argv[] = {"sh", "-c", (char *)cmd, NULL};
  for (int attempt = 1;; attempt++) {
    pid_t pid = test_spawn(argv, "/dev/null");
    int status;
    if (test_wait_for(pid, 30000, &status)) {
      return status;
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    test_untrack(pid);
    CHECK(attempt < 2, "%s: still running after 30 s, twice", cmd);
    fprintf(stderr,
            "nemesis: %s: still running after 30 s; killed, once more\n", cmd);
  }
}

int nem_ns_sh(const char *ns, const char *cmd) {
  char *full;
  int rv;
  if (asprintf(&full, "ip netns exec %s sh -c '%s'", ns, cmd) < 0) {
    abort();
  }
  rv = sh_bounded(full);
  free(full);
  return rv;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...) {
  char *cmd;
  va_list ap;
  int rv;
  va_start(ap, fmt);
  if (vasprintf(&cmd, fmt, ap) < 0) {
    abort();
  }
  va_end(ap);
  rv = sh_bounded(cmd);
  free(cmd);
  return rv;
}

void nem_net_ns(const struct nem_net *net, int i, char *out, size_t len) {
  snprintf(out, len, "%s-r%d", net->prefix, i);
}

void nem_net_ns_client(const struct nem_net *net, char *out, size_t len) {
  snprintf(out, len, "%s-cl", net->prefix);
}

void nem_net_ns_lonely(const struct nem_net *net, char *out, size_t len) {
  snprintf(out, len, "%s-c2", net->prefix);
}

/* A process that is alive and is a synod-nemesis. */
static bool owner_alive(long pid) {
  char path[64], comm[64] = "";
  FILE *f;
  snprintf(path, sizeof path, "/proc/%ld/comm", pid);
  f = fopen(path, "r");
  if (f == NULL) {
    return false;
  }
  if (fgets(comm, sizeof comm, f) == NULL) {
    comm[0] = '\0';
  }
  fclose(f);
  return strncmp(comm, "synod-nemesis", 13) == 0;
}

/* "nem<digits>-..." -> digits, else -1. */
static long prefix_pid(const char *name) {
  char *end;
  long pid;
  if (strncmp(name, "nem", 3) != 0 || !isdigit((unsigned char)name[3])) {
    return -1;
  }
  pid = strtol(name + 3, &end, 10);
  return *end == '-' ? pid : -1;
}

static void ns_kill_all(const char *ns) {
  /* ip netns pids lists every process whose network namespace it is. */
  /* Never ourselves: the nemesis lives in its client namespace. */
  sh("for p in $(ip netns pids %s 2>/dev/null); do [ $p = $$ ] || "
     "[ $p = %d ] || { kill -CONT $p; kill -KILL $p; }; done; true",
     ns, (int)getpid());
}

static void ns_delete(const char *ns) {
  ns_kill_all(ns);
  sh("ip netns delete %s 2>/dev/null; true", ns);
}

void nem_net_clean_stale(void) {
  DIR *d = opendir("/var/run/netns");
  struct dirent *e;
  FILE *m;
  char line[1024];
  if (d != NULL) {
    while ((e = readdir(d)) != NULL) {
      long pid = prefix_pid(e->d_name);
      if (pid > 0 && pid != (long)getpid() && !owner_alive(pid)) {
        fprintf(stderr, "nemesis: removing %s, left by run %ld\n", e->d_name,
                pid);
        ns_delete(e->d_name);
      }
    }
    closedir(d);
  }
  /* tmpfs mounts carry the run's prefix as their source. */
  m = fopen("/proc/self/mounts", "r");
  if (m == NULL) {
    return;
  }
  while (fgets(line, sizeof line, m) != NULL) {
    char src[256], dir[768];
    if (sscanf(line, "%255s %767s", src, dir) != 2) {
      continue;
    }
    long pid = prefix_pid(src);
    if (pid > 0 && pid != (long)getpid() && !owner_alive(pid)) {
      fprintf(stderr, "nemesis: unmounting %s (%s), left by run %ld\n", dir,
              src, pid);
      if (umount2(dir, MNT_DETACH) != 0) {
        fprintf(stderr, "nemesis: umount %s: %s\n", dir, strerror(errno));
      }
    }
  }
  fclose(m);
}

/* One namespace with lo up and 127.0.0.0/8 no longer all local, so that
 * 127.77.x.y can live on a veth; route_localnet lets it leave the host. */
static int ns_make(const char *ns) {
  if (sh("ip netns add %s", ns) != 0) {
    return -1;
  }
  return nem_ns_sh(ns, "sysctl -qw net.ipv4.conf.all.route_localnet=1 && "
                       "sysctl -qw net.ipv4.conf.default.route_localnet=1 && "
                       "ip link set lo up && "
                       "ip route del table local 127.0.0.0/8 dev lo");
}

/* A veth pair: eth0 in ns (address addr), port in the bridge namespace. */
static int ns_link(const struct nem_net *net, const char *ns, const char *port,
                   const char *addr) {
  char cmd[512];
  if (sh("ip link add name eth0 netns %s type veth peer name %s netns %s-br",
         ns, port, net->prefix) != 0) {
    return -1;
  }
  snprintf(cmd, sizeof cmd, "ip link set %s master br0 up", port);
  char brns[48];
  snprintf(brns, sizeof brns, "%s-br", net->prefix);
  if (nem_ns_sh(brns, cmd) != 0) {
    return -1;
  }
  snprintf(cmd, sizeof cmd,
           "sysctl -qw net.ipv4.conf.eth0.route_localnet=1 && "
           "ip addr add %s/16 dev eth0 && ip link set eth0 up",
           addr);
  return nem_ns_sh(ns, cmd);
}

bool nem_net_setup(struct nem_net *net, int n, char *why, size_t len) {
  char ns[48], port[16];
  memset(net, 0, sizeof *net);
  net->n = n;
  net->owner = getpid();
  snprintf(net->prefix, sizeof net->prefix, "nem%d", (int)net->owner);
  snprintf(net->client_addr, sizeof net->client_addr, "127.77.0.100");
  snprintf(net->lonely_addr, sizeof net->lonely_addr, "127.77.0.101");
  for (int i = 0; i < n; i++) {
    snprintf(net->addr[i], sizeof net->addr[i], "127.77.0.%d", i + 1);
  }
  snprintf(ns, sizeof ns, "%s-br", net->prefix);
  if (ns_make(ns) != 0 ||
      nem_ns_sh(ns, "ip link add br0 type bridge && ip link set br0 up") != 0) {
    snprintf(why, len,
             "cannot make the bridge namespace %s (ip netns add, "
             "ip link add type bridge)",
             ns);
    return false;
  }
  for (int i = 0; i < n; i++) {
    nem_net_ns(net, i, ns, sizeof ns);
    snprintf(port, sizeof port, "v%d", i);
    if (ns_make(ns) != 0 || ns_link(net, ns, port, net->addr[i]) != 0) {
      snprintf(why, len, "cannot make namespace %s with a veth to the bridge",
               ns);
      return false;
    }
  }
  nem_net_ns_client(net, ns, sizeof ns);
  if (ns_make(ns) != 0 || ns_link(net, ns, "vc", net->client_addr) != 0) {
    snprintf(why, len, "cannot make the client namespace %s", ns);
    return false;
  }
  nem_net_ns_lonely(net, ns, sizeof ns);
  if (ns_make(ns) != 0 || ns_link(net, ns, "vd", net->lonely_addr) != 0) {
    snprintf(why, len, "cannot make the second client namespace %s", ns);
    return false;
  }
  /* Every replica namespace must have iptables-legacy with the statistic
   * match, and the loss fault needs it. */
  nem_net_ns(net, 0, ns, sizeof ns);
  if (nem_ns_sh(ns,
                "iptables-legacy -A INPUT -m statistic --mode random "
                "--probability 0.001 -j ACCEPT && iptables-legacy -F") != 0) {
    snprintf(why, len,
             "iptables-legacy (with -m statistic) does not work in "
             "a namespace; apt-get install iptables");
    return false;
  }
  return true;
}

void nem_net_teardown(struct nem_net *net) {
  char ns[48];
  if (net->prefix[0] == '\0') {
    return;
  }
  nem_net_ns_client(net, ns, sizeof ns);
  ns_delete(ns);
  nem_net_ns_lonely(net, ns, sizeof ns);
  ns_delete(ns);
  for (int i = 0; i < net->n; i++) {
    nem_net_ns(net, i, ns, sizeof ns);
    ns_delete(ns);
  }
  snprintf(ns, sizeof ns, "%s-br", net->prefix);
  ns_delete(ns);
}

void nem_net_enter_client(const struct nem_net *net) {
  nem_net_enter(net, "cl");
}

void nem_net_enter(const struct nem_net *net, const char *which) {
  char path[128];
  int fd;
  snprintf(path, sizeof path, "/var/run/netns/%s-%s", net->prefix, which);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
  CHECK(setns(fd, CLONE_NEWNET) == 0, "setns %s: %s", path, strerror(errno));
  close(fd);
}

static int rule(const struct nem_net *net, int i, const char *rules) {
  char ns[48];
  nem_net_ns(net, i, ns, sizeof ns);
  return nem_ns_sh(ns, rules);
}

int nem_net_cut(const struct nem_net *net, int i, int j) {
  char r[512];
  int rv;
  snprintf(r, sizeof r,
           "iptables-legacy -A INPUT -s %s -j DROP && "
           "iptables-legacy -A OUTPUT -d %s -j DROP",
           net->addr[j], net->addr[j]);
  rv = rule(net, i, r);
  snprintf(r, sizeof r,
           "iptables-legacy -A INPUT -s %s -j DROP && "
           "iptables-legacy -A OUTPUT -d %s -j DROP",
           net->addr[i], net->addr[i]);
  return rv != 0 ? rv : rule(net, j, r);
}

int nem_net_cut_oneway(const struct nem_net *net, int from, int to) {
  char r[256];
  snprintf(r, sizeof r, "iptables-legacy -A OUTPUT -d %s -j DROP",
           net->addr[to]);
  return rule(net, from, r);
}

int nem_net_loss(const struct nem_net *net, int percent, const char *rate) {
  char r[512], ns[48];
  int rv = 0;
  snprintf(r, sizeof r,
           "iptables-legacy -A INPUT -m statistic --mode random "
           "--probability 0.%02d -j DROP && "
           "tc qdisc add dev eth0 root handle 1: htb default 10 && "
           "tc class add dev eth0 parent 1: classid 1:10 htb rate %s",
           percent, rate);
  for (int i = 0; i < net->n && rv == 0; i++) {
    rv = rule(net, i, r);
  }
  nem_net_ns_client(net, ns, sizeof ns);
  snprintf(r, sizeof r,
           "iptables-legacy -A INPUT -m statistic --mode random "
           "--probability 0.%02d -j DROP",
           percent);
  return rv != 0 ? rv : nem_ns_sh(ns, r);
}

int nem_net_queue(const struct nem_net *net) {
  const char *r = "iptables-legacy -A INPUT -j NFQUEUE --queue-num 0 "
                  "--queue-bypass";
  char ns[48];
  int rv = 0;
  for (int i = 0; i < net->n && rv == 0; i++) {
    rv = rule(net, i, r);
  }
  nem_net_ns_client(net, ns, sizeof ns);
  return rv != 0 ? rv : nem_ns_sh(ns, r);
}

int nem_net_heal(const struct nem_net *net) {
  const char *r = "iptables-legacy -F INPUT && iptables-legacy -F OUTPUT && "
                  "{ tc qdisc del dev eth0 root 2>/dev/null; true; }";
  char ns[48];
  int rv = 0;
  for (int i = 0; i < net->n; i++) {
    rv |= rule(net, i, r);
  }
  nem_net_ns_client(net, ns, sizeof ns);
  rv |= nem_ns_sh(ns, r);
  nem_net_ns_lonely(net, ns, sizeof ns);
  rv |= nem_ns_sh(ns, r);
  return rv;
}

int nem_net_cut_lonely(const struct nem_net *net) {
  char ns[48];
  nem_net_ns_lonely(net, ns, sizeof ns);
  return nem_ns_sh(ns, "iptables-legacy -A INPUT -j DROP && "
                       "iptables-legacy -A OUTPUT -j DROP");
}
