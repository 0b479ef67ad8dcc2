/* synod-nemesis-delay: delay and jitter without netem. Run inside one
 * network namespace (ip netns exec NS synod-nemesis-delay DELAY_MS
 * JITTER_MS SEED), it takes the packets an iptables rule sends to
 * NFQUEUE 0 and accepts each one DELAY_MS +- JITTER_MS after it arrived
 * (uniform; so packets reorder, as with netem's jitter). The rule should
 * carry --queue-bypass, so packets pass again once this process is gone.
 * Runs until killed. */
#include <arpa/inet.h>
#include <errno.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define HELD_MAX 65536 /* packets held at once; more are accepted at once */

struct held {
  uint32_t id;
  uint64_t due_us;
};

static struct held held[HELD_MAX];
static size_t held_n;
static long delay_us, jitter_us;
static uint64_t rng = 88172645463325252ull;

static uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t xorshift(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg,
                     struct nfq_data *nfa, void *arg) {
  struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
  long d = delay_us;
  (void)msg, (void)arg;
  if (ph == NULL) {
    return 0;
  }
  if (jitter_us > 0) {
    d += (long)(xorshift() % (uint64_t)(2 * jitter_us + 1)) - jitter_us;
  }
  if (d <= 0 || held_n == HELD_MAX) {
    return nfq_set_verdict(qh, ntohl(ph->packet_id), NF_ACCEPT, 0, NULL);
  }
  held[held_n].id = ntohl(ph->packet_id);
  held[held_n].due_us = now_us() + (uint64_t)d;
  held_n++;
  return 0;
}

/* Accepts every held packet that is due; returns ms until the next. */
static int release_due(struct nfq_q_handle *qh) {
  uint64_t now = now_us(), next = UINT64_MAX;
  for (size_t i = 0; i < held_n;) {
    if (held[i].due_us <= now) {
      nfq_set_verdict(qh, held[i].id, NF_ACCEPT, 0, NULL);
      held[i] = held[--held_n];
    } else {
      if (held[i].due_us < next) {
        next = held[i].due_us;
      }
      i++;
    }
  }
  return next == UINT64_MAX ? 100 : (int)((next - now + 999) / 1000);
}

int main(int argc, char **argv) {
  struct nfq_handle *h;
  struct nfq_q_handle *qh;
  char buf[65536] __attribute__((aligned));
  if (argc != 4) {
    fprintf(stderr, "usage: synod-nemesis-delay DELAY_MS JITTER_MS SEED\n");
    return 2;
  }
  delay_us = atol(argv[1]) * 1000;
  jitter_us = atol(argv[2]) * 1000;
  rng ^= strtoull(argv[3], NULL, 0) * 0x9e3779b97f4a7c15ull;
  if (rng == 0) {
    rng = 1;
  }
  h = nfq_open();
  if (h == NULL) {
    fprintf(stderr, "delay: nfq_open: %s\n", strerror(errno));
    return 1;
  }
  nfq_unbind_pf(h, AF_INET);
  if (nfq_bind_pf(h, AF_INET) < 0) {
    fprintf(stderr, "delay: nfq_bind_pf: %s\n", strerror(errno));
    return 1;
  }
  qh = nfq_create_queue(h, 0, on_packet, NULL);
  if (qh == NULL || nfq_set_mode(qh, NFQNL_COPY_META, 0) < 0) {
    fprintf(stderr, "delay: queue 0: %s\n", strerror(errno));
    return 1;
  }
  nfq_set_queue_maxlen(qh, HELD_MAX);
  printf("delay: holding packets %ld ms +- %ld ms\n", delay_us / 1000,
         jitter_us / 1000);
  fflush(stdout);
  for (;;) {
    struct pollfd p = {.fd = nfq_fd(h), .events = POLLIN};
    int timeout = release_due(qh);
    if (poll(&p, 1, timeout) > 0) {
      ssize_t n = recv(p.fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        nfq_handle_packet(h, buf, (int)n);
      } else if (n < 0 && errno == ENOBUFS) {
        continue; /* the kernel dropped some: they count as loss */
      }
    }
  }
}
