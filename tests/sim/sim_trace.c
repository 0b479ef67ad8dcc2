/* The simulator's trace: one line per event fed to a core and per harness
 * action, folded into a digest and kept as a tail for failure reports. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sim_internal.h"

static void trace_line(struct sim *s, const char *line) {
  size_t len = strlen(line);
  s->digest = sim_hash_bytes(s->digest ^ len, line, len);
  char *slot = s->tail[s->tail_n % SIM_TRACE_TAIL];
  snprintf(slot, SIM_TRACE_LINE, "%s", line);
  s->tail_n++;
  if (s->opts.trace_print) {
    fputs(line, stdout);
    fputc('\n', stdout);
  }
}

void sim_trace(struct sim *s, uint64_t id, const char *fmt, ...) {
  if (!s->opts.trace) {
    return;
  }
  char line[512];
  int n =
      snprintf(line, sizeof(line), "%8" PRIu64 " r%" PRIu64 " ", s->now_ms, id);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
  va_end(ap);
  trace_line(s, line);
}

void sim_trace_core_cb(void *arg, uint64_t id, const char *text) {
  struct sim *s = arg;
  sim_trace(s, id, "core: %s", text);
}

void sim_fail(struct sim *s, const char *fmt, ...) {
  if (s->failed) {
    return;
  }
  s->failed = true;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->failure, sizeof(s->failure), fmt, ap);
  va_end(ap);
  sim_trace(s, 0, "FAIL %s", s->failure);
}

void sim_print_failure(const struct sim *s, FILE *f) {
  const struct sim_options *o = &s->opts;
  fprintf(f,
          "FAIL seed %" PRIu64 " replicas %" PRIu32 " at %" PRIu64
          " ms, step %" PRIu64 ": %s\n",
          o->seed, o->replicas, s->now_ms, s->stats.steps, s->failure);
  if (o->trace && s->tail_n > 0) {
    uint64_t n = s->tail_n < SIM_TRACE_TAIL ? s->tail_n : SIM_TRACE_TAIL;
    fprintf(f, "last %" PRIu64 " trace lines:\n", n);
    for (uint64_t i = s->tail_n - n; i < s->tail_n; i++) {
      fprintf(f, "  %s\n", s->tail[i % SIM_TRACE_TAIL]);
    }
  }
  if (o->clients > 0) {
    fprintf(f,
            "replay: build/bin/synod-sim --seed %" PRIu64 " --replicas %" PRIu32
            " --steps %" PRIu64 " --clients %" PRIu32,
            o->seed, o->replicas, o->steps, o->clients);
    if (s->chunk_explicit) {
      fprintf(f, " --chunk-bytes %" PRIu32, o->chunk_bytes);
    }
    if (o->peer_gone) {
      fprintf(f, " --peer-gone");
    }
    if (o->channel_break != 0) {
      fprintf(f, " --break-channels %s",
              sim_channel_break_name(o->channel_break));
    } else if (o->channels) {
      fprintf(f, " --channels");
    }
    if (o->push) {
      fprintf(f, " --push%s", o->sinks ? " --sinks" : "");
    }
    if (o->key_break != 0) {
      fprintf(f, " --break-keys %s", sim_key_break_name(o->key_break));
    } else if (o->keys) {
      fprintf(f, " --keys");
    }
    if (o->group_break != 0) {
      fprintf(f, " --break-groups %s", sim_group_break_name(o->group_break));
    } else if (o->groups) {
      fprintf(f, " --groups");
    }
    fprintf(f, " --trace\n");
    return;
  }
  fprintf(f,
          "replay: build/bin/synod-sim --seed %" PRIu64 " --replicas %" PRIu32
          " --steps %" PRIu64 " --trace\n",
          o->seed, o->replicas, o->steps);
}

uint64_t sim_digest(const struct sim *s) {
  return s->digest;
}
