/* Channel histories: what publishers were told and what subscribers
 * delivered, checked against the rules a channel promises (DESIGN.md
 * "Streams"): gap-free, duplicate-free delivery in offset order, one
 * message per offset everywhere, exactly-once publishes, nothing
 * acknowledged lost, real-time order, one interleaving for prefix
 * subscribers. See history.h for the rules and their order. */
#include "history.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ck {
  const struct history_channels *h;
  char *why;
  size_t why_len;
};

static bool fail(struct ck *k, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static bool fail(struct ck *k, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (k->why_len > 0) {
    vsnprintf(k->why, k->why_len, fmt, ap);
  }
  va_end(ap);
  return false;
}

static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size);
  if (p == NULL) {
    abort();
  }
  return p;
}

/* A compaction jump: offsets [from, to) of channel were gone when the
 * subscriber asked for them. */
struct skip {
  uint32_t channel;
  uint64_t from;
  uint64_t to;
};

/* ------------------------------------------------- one subscriber's stream */

static bool stream_compacted(struct ck *k, const struct history_subscriber *sb,
                             const struct history_delivery *x, uint64_t e) {
  uint64_t retain = k->h->retain[x->channel];
  if (e != 0 && x->offset <= e) {
    return fail(k,
                "compacted: %s asked ch%" PRIu32 " for offset %" PRIu64
                " and was told it is compacted, but the first retained is "
                "%" PRIu64,
                sb->name, x->channel, e, x->offset);
  }
  if (retain == 0) {
    return fail(k,
                "compacted: ch%" PRIu32 " never drops a message, yet %s was "
                "told offset %" PRIu64 " is compacted (first retained %" PRIu64
                ")",
                x->channel, sb->name, e, x->offset);
  }
  if (x->next < x->offset || x->next - x->offset != retain) {
    return fail(k,
                "compacted: ch%" PRIu32 "'s window [%" PRIu64 ", %" PRIu64
                ") holds %" PRIu64 " messages when it told %s offset %" PRIu64
                " is gone, but it drops only beyond its limit of %" PRIu64,
                x->channel, x->offset, x->next, x->next - x->offset, sb->name,
                e, retain);
  }
  return true;
}

/* Gap, duplicate and compaction rules; fills *skips (the caller frees)
 * with the jumps the subscriber made. */
static bool stream_check(struct ck *k, const struct history_subscriber *sb,
                         struct skip **skips, size_t *skips_n) {
  const struct history_channels *h = k->h;
  uint64_t *expect = xcalloc(h->channels_n, sizeof *expect); /* 0: any */
  bool ok = true;
  *skips = xcalloc(sb->n, sizeof **skips);
  *skips_n = 0;
  for (uint32_t c = 0; c < h->channels_n; c++) {
    if (sb->prefix ? sb->start == 0 : c == sb->channel) {
      expect[c] = sb->prefix || sb->start == 0 ? 1 : sb->start;
    }
  }
  for (size_t i = 0; i < sb->n && ok; i++) {
    const struct history_delivery *x = &sb->d[i];
    if (x->channel >= h->channels_n ||
        (sb->prefix ? !h->in_prefix[x->channel] : x->channel != sb->channel)) {
      ok = fail(k,
                "index order: %s delivers a message of ch%" PRIu32
                ", not one of its channels",
                sb->name, x->channel);
      break;
    }
    uint64_t e = expect[x->channel];
    if (x->compacted) {
      ok = stream_compacted(k, sb, x, e);
      (*skips)[(*skips_n)++] =
          (struct skip){x->channel, e != 0 ? e : 1, x->offset};
      expect[x->channel] = x->offset;
      continue;
    }
    if (e != 0 && x->offset < e) {
      ok = fail(k,
                "duplicate: %s delivers ch%" PRIu32 " offset %" PRIu64
                " (index %" PRIu64 ") again: it had delivered up to %" PRIu64,
                sb->name, x->channel, x->offset, x->index, e - 1);
    } else if (e != 0 && x->offset > e) {
      ok = fail(k,
                "gap: %s delivers ch%" PRIu32 " offset %" PRIu64
                " (index %" PRIu64 ") next, skipping offsets %" PRIu64
                "..%" PRIu64,
                sb->name, x->channel, x->offset, x->index, e, x->offset - 1);
    }
    expect[x->channel] = x->offset + 1;
  }
  free(expect);
  return ok;
}

/* ------------------------------------------------------- prefix subscribers */

/* The next real delivery at or after *i with index > after; false at the
 * end. */
static bool prefix_next(const struct history_subscriber *sb, size_t *i,
                        uint64_t after) {
  while (*i < sb->n && (sb->d[*i].compacted || sb->d[*i].index <= after)) {
    (*i)++;
  }
  return *i < sb->n;
}

static bool interleaving_pair(struct ck *k, const struct history_subscriber *a,
                              const struct history_subscriber *b) {
  uint64_t after = a->start > b->start ? a->start : b->start;
  size_t i = 0, j = 0, n = 0;
  while (prefix_next(a, &i, after) && prefix_next(b, &j, after)) {
    const struct history_delivery *x = &a->d[i], *y = &b->d[j];
    if (x->channel != y->channel || x->offset != y->offset) {
      return fail(k,
                  "interleaving: after index %" PRIu64 ", message %zu of %s "
                  "is ch%" PRIu32 " offset %" PRIu64 " (index %" PRIu64
                  ") but that of %s is ch%" PRIu32 " offset %" PRIu64
                  " (index %" PRIu64 ")",
                  after, n, a->name, x->channel, x->offset, x->index, b->name,
                  y->channel, y->offset, y->index);
    }
    i++, j++, n++;
  }
  return true;
}

static bool interleaving_check(struct ck *k) {
  const struct history_channels *h = k->h;
  for (size_t a = 0; a < h->subs_n; a++) {
    for (size_t b = a + 1; b < h->subs_n && h->subs[a].prefix; b++) {
      if (h->subs[b].prefix &&
          !interleaving_pair(k, &h->subs[a], &h->subs[b])) {
        return false;
      }
    }
  }
  return true;
}

static bool index_order_check(struct ck *k,
                              const struct history_subscriber *sb) {
  uint64_t prev = 0;
  uint32_t prev_channel = 0;
  for (size_t i = 0; i < sb->n; i++) {
    const struct history_delivery *x = &sb->d[i];
    if (x->compacted) {
      continue;
    }
    if (x->index <= sb->start) {
      return fail(k,
                  "index order: %s starts after index %" PRIu64
                  " yet delivers ch%" PRIu32 " offset %" PRIu64
                  " of index %" PRIu64,
                  sb->name, sb->start, x->channel, x->offset, x->index);
    }
    if (x->index < prev || (x->index == prev && x->channel != prev_channel)) {
      return fail(k,
                  "index order: %s delivers ch%" PRIu32 " offset %" PRIu64
                  " (index %" PRIu64 ") after index %" PRIu64 " of ch%" PRIu32,
                  sb->name, x->channel, x->offset, x->index, prev,
                  prev_channel);
    }
    prev = x->index;
    prev_channel = x->channel;
  }
  return true;
}

/* ------------------------------------------------------------ agreement */

/* A delivered message and who delivered it. */
struct msg {
  uint32_t channel;
  uint64_t offset;
  uint64_t index;
  uint32_t publish;
  uint32_t part;
  const struct history_subscriber *by;
};

static int by_position(const void *pa, const void *pb) {
  const struct msg *a = pa, *b = pb;
  if (a->channel != b->channel) {
    return a->channel < b->channel ? -1 : 1;
  }
  return (a->offset > b->offset) - (a->offset < b->offset);
}

static int by_index(const void *pa, const void *pb) {
  const struct msg *a = pa, *b = pb;
  if (a->index != b->index) {
    return a->index < b->index ? -1 : 1;
  }
  return by_position(pa, pb);
}

static int by_payload(const void *pa, const void *pb) {
  const struct msg *a = pa, *b = pb;
  if (a->publish != b->publish) {
    return a->publish < b->publish ? -1 : 1;
  }
  if (a->part != b->part) {
    return a->part < b->part ? -1 : 1;
  }
  return by_position(pa, pb);
}

/* Every delivered message, then (*unique_n) one per position. */
static struct msg *messages_gather(struct ck *k, size_t *n) {
  const struct history_channels *h = k->h;
  size_t total = 0;
  for (size_t s = 0; s < h->subs_n; s++) {
    total += h->subs[s].n;
  }
  struct msg *m = xcalloc(total, sizeof *m);
  *n = 0;
  for (size_t s = 0; s < h->subs_n; s++) {
    for (size_t i = 0; i < h->subs[s].n; i++) {
      const struct history_delivery *x = &h->subs[s].d[i];
      if (!x->compacted) {
        m[(*n)++] = (struct msg){x->channel, x->offset, x->index,
                                 x->publish, x->part,   &h->subs[s]};
      }
    }
  }
  return m;
}

static bool same_message(const struct msg *a, const struct msg *b) {
  return a->index == b->index && a->publish == b->publish && a->part == b->part;
}

/* One message per (channel, offset); one channel per index; every payload
 * a publish's. Leaves m[0..*n) one per position. */
static bool agreement_check(struct ck *k, struct msg *m, size_t *n) {
  const struct history_channels *h = k->h;
  qsort(m, *n, sizeof *m, by_position);
  size_t u = 0;
  for (size_t i = 0; i < *n; i++) {
    const struct msg *x = &m[i];
    if (x->publish >= h->pubs_n || h->pubs[x->publish].n == 0) {
      return fail(k,
                  "agreement: %s delivers ch%" PRIu32 " offset %" PRIu64
                  " (index %" PRIu64 ") whose payload no publish sent",
                  x->by->name, x->channel, x->offset, x->index);
    }
    if (u > 0 && by_position(&m[u - 1], x) == 0) {
      if (!same_message(&m[u - 1], x)) {
        const struct msg *y = &m[u - 1];
        return fail(k,
                    "agreement: ch%" PRIu32 " offset %" PRIu64
                    " carries publish %" PRIu32 " part %" PRIu32
                    " at index %" PRIu64 " for %s but publish %" PRIu32
                    " part %" PRIu32 " at index %" PRIu64 " for %s",
                    x->channel, x->offset, y->publish, y->part, y->index,
                    y->by->name, x->publish, x->part, x->index, x->by->name);
      }
      continue;
    }
    m[u++] = *x;
  }
  *n = u;
  qsort(m, u, sizeof *m, by_index);
  for (size_t i = 1; i < u; i++) {
    if (m[i].index == m[i - 1].index && m[i].channel != m[i - 1].channel) {
      return fail(k,
                  "agreement: log index %" PRIu64
                  " carries messages of ch%" PRIu32 " (offset %" PRIu64
                  ") and ch%" PRIu32 " (offset %" PRIu64 ")",
                  m[i].index, m[i - 1].channel, m[i - 1].offset, m[i].channel,
                  m[i].offset);
    }
  }
  return true;
}

/* Where a publish's messages were seen: at offsets first.. of an index. */
struct seen {
  bool known;
  uint64_t first;
  uint64_t index;
};

/* Each payload at one offset; a batch at consecutive offsets of one entry
 * of its channel; a refused publish nowhere. Fills seen[publish]. */
static bool exactly_once_check(struct ck *k, struct msg *m, size_t n,
                               struct seen *seen) {
  const struct history_channels *h = k->h;
  qsort(m, n, sizeof *m, by_payload);
  for (size_t i = 0; i < n; i++) {
    const struct msg *x = &m[i];
    const struct history_publish *p = &h->pubs[x->publish];
    struct seen *sn = &seen[x->publish];
    if (i > 0 && m[i - 1].publish == x->publish && m[i - 1].part == x->part) {
      return fail(k,
                  "exactly-once: publish %" PRIu32 " part %" PRIu32
                  " appears at ch%" PRIu32 " offset %" PRIu64
                  " and at ch%" PRIu32 " offset %" PRIu64,
                  x->publish, x->part, m[i - 1].channel, m[i - 1].offset,
                  x->channel, x->offset);
    }
    if (p->refused) {
      return fail(k,
                  "exactly-once: publish %" PRIu32 " was refused, yet its "
                  "part %" PRIu32 " is at ch%" PRIu32 " offset %" PRIu64,
                  x->publish, x->part, x->channel, x->offset);
    }
    if (x->channel != p->channel || x->part >= p->n || x->offset <= x->part ||
        (sn->known &&
         (sn->first != x->offset - x->part || sn->index != x->index))) {
      return fail(k,
                  "exactly-once: publish %" PRIu32 " of %" PRIu32
                  " messages to ch%" PRIu32 " has part %" PRIu32
                  " at ch%" PRIu32 " offset %" PRIu64 " index %" PRIu64
                  ", not with its batch (offsets from %" PRIu64
                  " at index %" PRIu64 ")",
                  x->publish, p->n, p->channel, x->part, x->channel, x->offset,
                  x->index, sn->first, sn->index);
    }
    *sn = (struct seen){true, x->offset - x->part, x->index};
  }
  return true;
}

static bool acknowledged_check(struct ck *k, const struct seen *seen) {
  const struct history_channels *h = k->h;
  for (size_t i = 0; i < h->pubs_n; i++) {
    const struct history_publish *p = &h->pubs[i];
    if (p->n == 0 || !p->acked) {
      continue;
    }
    if (p->last_offset < p->first_offset ||
        p->last_offset - p->first_offset + 1 != p->n) {
      return fail(k,
                  "acknowledged: publish %zu of %" PRIu32 " messages was "
                  "told offsets %" PRIu64 "..%" PRIu64,
                  i, p->n, p->first_offset, p->last_offset);
    }
    if (seen[i].known &&
        (seen[i].first != p->first_offset || seen[i].index != p->index)) {
      return fail(k,
                  "acknowledged: publish %zu to ch%" PRIu32 " was told "
                  "offsets %" PRIu64 "..%" PRIu64 " at index %" PRIu64
                  ", but is delivered from offset %" PRIu64
                  " at index %" PRIu64,
                  i, p->channel, p->first_offset, p->last_offset, p->index,
                  seen[i].first, seen[i].index);
    }
  }
  return true;
}

/* ------------------------------------------------------------------ lost */

static int by_channel_offset(const void *pa, const void *pb) {
  const uint64_t *a = pa, *b = pb;
  if (a[0] != b[0]) {
    return a[0] < b[0] ? -1 : 1;
  }
  return (a[1] > b[1]) - (a[1] < b[1]);
}

static bool covers(const struct history_channels *h,
                   const struct history_subscriber *sb,
                   const struct history_publish *p, uint64_t offset,
                   const struct skip *skips, size_t skips_n) {
  if (sb->prefix ? !h->in_prefix[p->channel] || p->index <= sb->start
                 : p->channel != sb->channel || offset < sb->start) {
    return false;
  }
  for (size_t i = 0; i < skips_n; i++) {
    if (skips[i].channel == p->channel && offset >= skips[i].from &&
        offset < skips[i].to) {
      return false;
    }
  }
  return true;
}

static bool lost_check_one(struct ck *k, const struct history_subscriber *sb,
                           const struct skip *skips, size_t skips_n) {
  const struct history_channels *h = k->h;
  uint64_t(*have)[2] = xcalloc(sb->n, sizeof *have);
  size_t n = 0;
  bool ok = true;
  for (size_t i = 0; i < sb->n; i++) {
    if (!sb->d[i].compacted) {
      have[n][0] = sb->d[i].channel;
      have[n++][1] = sb->d[i].offset;
    }
  }
  qsort(have, n, sizeof *have, by_channel_offset);
  for (size_t i = 0; i < h->pubs_n && ok; i++) {
    const struct history_publish *p = &h->pubs[i];
    for (uint32_t part = 0; p->n > 0 && p->acked && part < p->n && ok; part++) {
      uint64_t key[2] = {p->channel, p->first_offset + part};
      if (covers(h, sb, p, key[1], skips, skips_n) &&
          bsearch(key, have, n, sizeof *have, by_channel_offset) == NULL) {
        ok = fail(k,
                  "lost: publish %zu (ch%" PRIu32 " offsets %" PRIu64
                  "..%" PRIu64 ", index %" PRIu64 ") was acknowledged, but "
                  "%s, which started at %" PRIu64 " and ran to the end, "
                  "never delivered offset %" PRIu64,
                  i, p->channel, p->first_offset, p->last_offset, p->index,
                  sb->name, sb->start, key[1]);
      }
    }
  }
  free(have);
  return ok;
}

/* ------------------------------------------------------------- real time */

struct rt_event {
  uint64_t clock;
  int kind; /* 0 invoke, 1 complete: at one clock, invokes first */
  size_t p;
};

static int by_clock(const void *pa, const void *pb) {
  const struct rt_event *a = pa, *b = pb;
  if (a->clock != b->clock) {
    return a->clock < b->clock ? -1 : 1;
  }
  return a->kind - b->kind;
}

/* A publish's position: as acknowledged, else as seen, else unknown. */
static bool position(const struct history_publish *p, const struct seen *sn,
                     uint64_t *first, uint64_t *index) {
  if (p->acked) {
    *first = p->first_offset;
    *index = p->index;
    return true;
  }
  *first = sn->first;
  *index = sn->index;
  return sn->known;
}

static bool realtime_check(struct ck *k, const struct seen *seen) {
  const struct history_channels *h = k->h;
  struct rt_event *ev = xcalloc(2 * h->pubs_n, sizeof *ev);
  uint64_t *chan_last = xcalloc(h->channels_n, sizeof *chan_last);
  size_t *chan_by = xcalloc(h->channels_n, sizeof *chan_by);
  size_t n = 0, max_by = 0;
  uint64_t first, index, max_index = 0;
  bool ok = true;
  for (size_t i = 0; i < h->pubs_n; i++) {
    const struct history_publish *p = &h->pubs[i];
    if (p->n > 0 && position(p, &seen[i], &first, &index)) {
      ev[n++] = (struct rt_event){p->invoke, 0, i};
      if (p->acked) {
        ev[n++] = (struct rt_event){p->complete, 1, i};
      }
    }
  }
  qsort(ev, n, sizeof *ev, by_clock);
  for (size_t i = 0; i < n && ok; i++) {
    const struct history_publish *p = &h->pubs[ev[i].p];
    position(p, &seen[ev[i].p], &first, &index);
    if (ev[i].kind == 1) {
      if (p->last_offset > chan_last[p->channel]) {
        chan_last[p->channel] = p->last_offset;
        chan_by[p->channel] = ev[i].p;
      }
      if (index > max_index) {
        max_index = index;
        max_by = ev[i].p;
      }
    } else if (first <= chan_last[p->channel]) {
      ok = fail(k,
                "real-time: publish %zu to ch%" PRIu32 " was acknowledged "
                "(offsets ..%" PRIu64 ") before publish %zu to it was "
                "invoked, yet the later one has offset %" PRIu64,
                chan_by[p->channel], p->channel, chan_last[p->channel], ev[i].p,
                first);
    } else if (index <= max_index) {
      ok = fail(k,
                "real-time: publish %zu (ch%" PRIu32 ", index %" PRIu64
                ") was acknowledged before publish %zu (ch%" PRIu32
                ") was invoked, yet the later one has index %" PRIu64,
                max_by, h->pubs[max_by].channel, max_index, ev[i].p, p->channel,
                index);
    }
  }
  free(ev);
  free(chan_last);
  free(chan_by);
  return ok;
}

/* ------------------------------------------------------------------ all */

bool history_channels_check(const struct history_channels *h, char *why,
                            size_t why_len) {
  struct ck k = {h, why, why_len};
  struct skip **skips = xcalloc(h->subs_n, sizeof *skips);
  size_t *skips_n = xcalloc(h->subs_n, sizeof *skips_n);
  struct seen *seen = xcalloc(h->pubs_n, sizeof *seen);
  struct msg *m = NULL;
  size_t n = 0;
  bool ok = true;
  if (why_len > 0) {
    why[0] = '\0';
  }
  for (size_t s = 0; s < h->subs_n && ok; s++) {
    ok = stream_check(&k, &h->subs[s], &skips[s], &skips_n[s]);
  }
  ok = ok && interleaving_check(&k);
  for (size_t s = 0; s < h->subs_n && ok; s++) {
    ok = !h->subs[s].prefix || index_order_check(&k, &h->subs[s]);
  }
  if (ok) {
    m = messages_gather(&k, &n);
    ok = agreement_check(&k, m, &n) && exactly_once_check(&k, m, n, seen) &&
         acknowledged_check(&k, seen);
  }
  for (size_t s = 0; s < h->subs_n && ok; s++) {
    ok = !h->subs[s].to_end ||
         lost_check_one(&k, &h->subs[s], skips[s], skips_n[s]);
  }
  ok = ok && realtime_check(&k, seen);
  for (size_t s = 0; s < h->subs_n; s++) {
    free(skips[s]);
  }
  free(skips);
  free(skips_n);
  free(seen);
  free(m);
  return ok;
}
