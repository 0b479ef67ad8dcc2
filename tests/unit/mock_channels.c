/* The mock's channels, included by mock_synodd.c: create, publish, read,
 * list, info, delete, durable cursors and subscriptions with credits,
 * pushed as ChannelDelivery events in the order of one log (msgs, by
 * index). Knobs (struct mock) make a subscription misbehave the ways the
 * library must survive: the connection dropped mid-stream, a replica
 * that starts early or repeats itself, a gap, compaction, a replica that
 * stops. */

#define MOCK_BATCH_DEFAULT 64

static struct mock_channel *mock_channel(struct mock *m, const char *name,
                                         bool create) {
  struct mock_channel *free_slot = NULL;
  for (int i = 0; i < MOCK_MAX; i++) {
    if (m->channels[i].name[0] && strcmp(m->channels[i].name, name) == 0) {
      return &m->channels[i];
    }
    if (!m->channels[i].name[0] && free_slot == NULL) {
      free_slot = &m->channels[i];
    }
  }
  if (!create || free_slot == NULL) {
    return NULL;
  }
  memset(free_slot, 0, sizeof *free_slot);
  snprintf(free_slot->name, sizeof free_slot->name, "%s", name);
  free_slot->first_offset = free_slot->next_offset = 1;
  return free_slot;
}

static struct mock_cursor *mock_cursor(struct mock_channel *ch,
                                       const char *name, bool create) {
  for (int i = 0; i < ch->cursors_n; i++) {
    if (strcmp(ch->cursors[i].name, name) == 0) {
      return &ch->cursors[i];
    }
  }
  if (!create || ch->cursors_n == MOCK_CURSORS) {
    return NULL;
  }
  struct mock_cursor *c = &ch->cursors[ch->cursors_n++];
  memset(c, 0, sizeof *c);
  snprintf(c->name, sizeof c->name, "%s", name);
  return c;
}

static bool mock_sub_matches(const struct mock_sub *s,
                             const struct mock_msg *x) {
  return s->prefix ? strncmp(x->channel, s->channel, strlen(s->channel)) == 0
                   : strcmp(x->channel, s->channel) == 0;
}

/* The subscription is over on this side. */
static void mock_sub_drop(struct mock *m, struct mock_sub *s) {
  if (s->used) {
    s->used = false;
    m->subs_active--;
  }
}

static void mock_event(struct mock *m, uint64_t conn_id, Synod__Event *ev) {
  Synod__ServerMessage sm = SYNOD__SERVER_MESSAGE__INIT;
  sm.body_case = SYNOD__SERVER_MESSAGE__BODY_EVENT;
  sm.event = ev;
  client_net_send(m->net, conn_id, &sm);
}

static void mock_sub_end(struct mock *m, struct mock_sub *s, int code,
                         uint64_t first_available) {
  Synod__Event ev = SYNOD__EVENT__INIT;
  Synod__SubscriptionEnded se = SYNOD__SUBSCRIPTION_ENDED__INIT;
  Synod__Error e = SYNOD__ERROR__INIT;
  e.code = (Synod__ErrorCode)code;
  e.message = (char *)synod_strerror(code);
  e.first_available = first_available;
  se.subscription_id = s->id;
  se.error = &e;
  ev.body_case = SYNOD__EVENT__BODY_SUBSCRIPTION_ENDED;
  ev.subscription_ended = &se;
  mock_event(m, s->conn_id, &ev);
  mock_sub_drop(m, s);
}

static void mock_pb_message(const struct mock_msg *x, Synod__ChannelMessage *pb,
                            bool prefix) {
  synod__channel_message__init(pb);
  pb->offset = x->offset;
  pb->index = x->index;
  pb->time_ms = x->time_ms;
  pb->data.data = x->data;
  pb->data.len = x->len;
  pb->channel = prefix ? (char *)x->channel : (char *)"";
}

/* Sends s what its credits allow, in deliveries of at most the batch
 * knob; honours the misbehaviour knobs. */
static void mock_sub_pump(struct mock *m, struct mock_sub *s) {
  /* Slot 0: the duplicate that sub_duplicate puts before the new ones. */
  Synod__ChannelMessage pbs[MOCK_BATCH_DEFAULT + 1];
  Synod__ChannelMessage *ptrs[MOCK_BATCH_DEFAULT + 1];
  size_t batch = m->sub_batch_max > 0 && m->sub_batch_max < MOCK_BATCH_DEFAULT
                     ? (size_t)m->sub_batch_max
                     : MOCK_BATCH_DEFAULT;
  while (s->used && s->credits > 0) {
    Synod__Event ev = SYNOD__EVENT__INIT;
    Synod__ChannelDelivery d = SYNOD__CHANNEL_DELIVERY__INIT;
    size_t n = 1, first = 1, dup = s->last_pos;
    int drop_after = m->sub_drop_after;
    bool dropping = false;
    for (; s->pos < m->msgs_n && s->credits > 0 && n <= batch && !dropping;
         s->pos++) {
      const struct mock_msg *x = &m->msgs[s->pos];
      struct mock_channel *ch = mock_channel(m, x->channel, false);
      if (!mock_sub_matches(s, x)) {
        continue;
      }
      if (!s->prefix && ch != NULL && x->offset < ch->first_offset) {
        mock_sub_end(m, s, SYNOD_ECOMPACTED, ch->first_offset);
        return;
      }
      if (atomic_exchange(&m->sub_skip, false)) {
        continue; /* a gap */
      }
      mock_pb_message(x, &pbs[n], s->prefix);
      ptrs[n] = &pbs[n];
      n++;
      s->credits--;
      s->last_pos = s->pos + 1;
      dropping = drop_after > 0 && (int)(n - 1) >= drop_after;
    }
    if (n == 1) {
      return; /* nothing new */
    }
    if (m->sub_duplicate && dup > 0 && s->credits > 0) {
      mock_pb_message(&m->msgs[dup - 1], &pbs[0], s->prefix);
      ptrs[0] = &pbs[0];
      first = 0;
      s->credits--;
    }
    d.subscription_id = s->id;
    d.messages = ptrs + first;
    d.n_messages = n - first;
    ev.body_case = SYNOD__EVENT__BODY_CHANNEL_DELIVERY;
    ev.channel_delivery = &d;
    mock_event(m, s->conn_id, &ev);
    m->delivered += (int)(n - 1);
    if (drop_after > 0) {
      m->sub_drop_after = dropping ? 0 : drop_after - (int)(n - 1);
    }
    if (dropping) {
      m->conns_dropped++;
      client_net_close(m->net, s->conn_id, "mock: dropped mid-stream");
      mock_sub_drop(m, s);
    }
  }
}

static void mock_subs_pump(struct mock *m) {
  for (int i = 0; i < MOCK_MAX; i++) {
    if (m->subs[i].used) {
      mock_sub_pump(m, &m->subs[i]);
    }
  }
}

/* ------------------------------------------------------------ writes */

static int mock_publish(struct mock *m, const Synod__ChannelPublish *p,
                        Synod__Response *r, Synod__ChannelPublishReply *pr) {
  struct mock_channel *ch = mock_channel(m, p->name, true);
  if (ch == NULL || p->n_messages == 0) {
    return SYNOD_EINVAL;
  }
  if (m->msgs_n + p->n_messages > m->msgs_cap) {
    size_t cap = (m->msgs_cap + p->n_messages) * 2;
    struct mock_msg *grown = realloc(m->msgs, cap * sizeof *grown);
    if (grown == NULL) {
      return SYNOD_ENOMEM;
    }
    m->msgs = grown;
    m->msgs_cap = cap;
  }
  uint64_t index = ++m->index;
  pr->first_offset = ch->next_offset;
  for (size_t i = 0; i < p->n_messages; i++) {
    struct mock_msg *x = &m->msgs[m->msgs_n++];
    snprintf(x->channel, sizeof x->channel, "%s", p->name);
    x->offset = ch->next_offset++;
    x->index = index;
    x->time_ms = 1000 * index;
    x->len = p->messages[i].len;
    x->data = malloc(x->len + 1);
    memcpy(x->data, p->messages[i].data, x->len);
  }
  pr->last_offset = ch->next_offset - 1;
  pr->index = index;
  r->body_case = SYNOD__RESPONSE__BODY_CHANNEL_PUBLISH;
  r->channel_publish = pr;
  return 0;
}

static int mock_cursor_commit(struct mock *m,
                              const Synod__ChannelCursorCommit *q,
                              Synod__Response *r, Synod__ChannelCursor *cr) {
  struct mock_channel *ch = mock_channel(m, q->channel, false);
  struct mock_cursor *c;
  if (ch == NULL) {
    return SYNOD_ENOTFOUND;
  }
  if (q->offset >= ch->next_offset) {
    return SYNOD_ERANGE;
  }
  if ((c = mock_cursor(ch, q->cursor, true)) == NULL) {
    return SYNOD_ELIMIT;
  }
  c->offset = q->offset;
  c->index = ++m->index;
  cr->channel = ch->name;
  cr->cursor = c->name;
  cr->offset = c->offset;
  cr->index = c->index;
  r->body_case = SYNOD__RESPONSE__BODY_CHANNEL_CURSOR;
  r->channel_cursor = cr;
  return 0;
}

/* Create (limits are not kept: the answer has none) and delete (the
 * slot is freed; its messages stay in the log, as the mock never forgets
 * one). */
static int mock_channel_create_delete(struct mock *m, const Synod__Request *q,
                                      Synod__Response *r,
                                      Synod__ChannelInfo *ci) {
  bool create = q->body_case == SYNOD__REQUEST__BODY_CHANNEL_CREATE;
  const char *name = create ? q->channel_create->name : q->channel_delete->name;
  struct mock_channel *ch = mock_channel(m, name, create);
  if (ch == NULL) {
    return create ? SYNOD_ELIMIT : SYNOD_ENOTFOUND;
  }
  m->index++;
  ci->name = ch->name;
  ci->first_offset = ch->first_offset;
  ci->next_offset = ch->next_offset;
  ci->messages = ch->next_offset - ch->first_offset;
  r->body_case = SYNOD__RESPONSE__BODY_CHANNEL_INFO;
  r->channel_info = ci;
  if (!create) {
    ch->name[0] = '\0'; /* ci->name is read before the slot is reused */
    snprintf(m->deleted_name, sizeof m->deleted_name, "%s", name);
    ci->name = m->deleted_name;
  }
  return 0;
}

/* Applies a sequenced channel request; returns its status (r filled on
 * success). The answer's bodies live in *bodies. */
struct mock_channel_bodies {
  Synod__ChannelPublishReply pr;
  Synod__ChannelCursor cr;
  Synod__ChannelInfo ci;
};

static int mock_channel_mutate(struct mock *m, const Synod__Request *q,
                               Synod__Response *r,
                               struct mock_channel_bodies *b) {
  synod__channel_publish_reply__init(&b->pr);
  synod__channel_cursor__init(&b->cr);
  synod__channel_info__init(&b->ci);
  if (q->body_case == SYNOD__REQUEST__BODY_CHANNEL_PUBLISH) {
    return mock_publish(m, q->channel_publish, r, &b->pr);
  }
  if (q->body_case == SYNOD__REQUEST__BODY_CHANNEL_CREATE ||
      q->body_case == SYNOD__REQUEST__BODY_CHANNEL_DELETE) {
    return mock_channel_create_delete(m, q, r, &b->ci);
  }
  return mock_cursor_commit(m, q->channel_cursor_commit, r, &b->cr);
}

/* ------------------------------------------------------------ reads */

/* ChannelRead: at most `max` (0: 16, at most 16) of one channel's
 * messages from `from` (0: the first retained). */
#define MOCK_READ_MAX 16
static void mock_channel_messages(struct mock *m, uint64_t conn_id,
                                  const Synod__ChannelRead *q,
                                  uint64_t request_id) {
  Synod__Response r = SYNOD__RESPONSE__INIT;
  Synod__ChannelMessages cm = SYNOD__CHANNEL_MESSAGES__INIT;
  Synod__ChannelMessage pbs[MOCK_READ_MAX], *ptrs[MOCK_READ_MAX];
  struct mock_channel *ch = mock_channel(m, q->name, false);
  uint64_t from = q->from ? q->from : 1;
  size_t max = q->max && q->max < MOCK_READ_MAX ? q->max : MOCK_READ_MAX;
  if (ch != NULL && from < ch->first_offset) {
    mock_error(m, conn_id, request_id, SYNOD_ECOMPACTED, "compacted", "");
    return;
  }
  cm.first_offset = ch ? ch->first_offset : 1;
  cm.next_offset = ch ? ch->next_offset : 1;
  cm.messages = ptrs;
  for (size_t i = 0; ch != NULL && i < m->msgs_n && cm.n_messages < max; i++) {
    const struct mock_msg *x = &m->msgs[i];
    if (strcmp(x->channel, ch->name) == 0 && x->offset >= from) {
      mock_pb_message(x, &pbs[cm.n_messages], false);
      ptrs[cm.n_messages] = &pbs[cm.n_messages];
      cm.n_messages++;
    }
  }
  r.id = request_id;
  r.body_case = SYNOD__RESPONSE__BODY_CHANNEL_MESSAGES;
  r.channel_messages = &cm;
  mock_send(m, conn_id, &r);
}

/* ChannelList: the channels in slot order (the tests create them in
 * name order), those after `after`, at most `limit` (0: all). */
static void mock_channel_list(struct mock *m, uint64_t conn_id,
                              const Synod__ChannelList *q,
                              uint64_t request_id) {
  Synod__Response r = SYNOD__RESPONSE__INIT;
  Synod__ChannelListReply lr = SYNOD__CHANNEL_LIST_REPLY__INIT;
  Synod__ChannelInfo cis[MOCK_MAX], *ptrs[MOCK_MAX];
  lr.channels = ptrs;
  for (int i = 0; i < MOCK_MAX; i++) {
    struct mock_channel *ch = &m->channels[i];
    if (!ch->name[0] || strcmp(ch->name, q->after) <= 0) {
      continue;
    }
    if (q->limit != 0 && lr.n_channels == q->limit) {
      lr.more = true;
      break;
    }
    synod__channel_info__init(&cis[lr.n_channels]);
    cis[lr.n_channels].name = ch->name;
    cis[lr.n_channels].next_offset = ch->next_offset;
    ptrs[lr.n_channels] = &cis[lr.n_channels];
    lr.n_channels++;
  }
  r.id = request_id;
  r.body_case = SYNOD__RESPONSE__BODY_CHANNEL_LIST;
  r.channel_list = &lr;
  mock_send(m, conn_id, &r);
}

static void mock_channel_read(struct mock *m, uint64_t conn_id,
                              const Synod__Request *q) {
  Synod__Response r = SYNOD__RESPONSE__INIT;
  Synod__ChannelInfo ci = SYNOD__CHANNEL_INFO__INIT;
  Synod__ChannelCursor cr = SYNOD__CHANNEL_CURSOR__INIT;
  struct mock_channel *ch;
  struct mock_cursor *c = NULL;
  r.id = q->id;
  if (q->body_case == SYNOD__REQUEST__BODY_CHANNEL_READ) {
    mock_channel_messages(m, conn_id, q->channel_read, q->id);
    return;
  }
  if (q->body_case == SYNOD__REQUEST__BODY_CHANNEL_LIST) {
    mock_channel_list(m, conn_id, q->channel_list, q->id);
    return;
  }
  if (q->body_case == SYNOD__REQUEST__BODY_CHANNEL_INFO) {
    if ((ch = mock_channel(m, q->channel_info->name, false)) == NULL) {
      mock_error(m, conn_id, q->id, SYNOD_ENOTFOUND, "no such channel", "");
      return;
    }
    ci.name = ch->name;
    ci.first_offset = ch->first_offset;
    ci.next_offset = ch->next_offset;
    ci.messages = ch->next_offset - ch->first_offset;
    ci.cursors = (uint32_t)ch->cursors_n;
    for (int i = 0; i < MOCK_MAX; i++) {
      ci.subscribers += m->subs[i].used && !m->subs[i].prefix &&
                        strcmp(m->subs[i].channel, ch->name) == 0;
    }
    r.body_case = SYNOD__RESPONSE__BODY_CHANNEL_INFO;
    r.channel_info = &ci;
    mock_send(m, conn_id, &r);
    return;
  }
  ch = mock_channel(m, q->channel_cursor_get->channel, false);
  if (ch != NULL) {
    c = mock_cursor(ch, q->channel_cursor_get->cursor, false);
  }
  if (c == NULL) {
    mock_error(m, conn_id, q->id, SYNOD_ENOTFOUND, "no such cursor", "");
    return;
  }
  cr.channel = ch->name;
  cr.cursor = c->name;
  cr.offset = c->offset;
  cr.index = c->index;
  r.body_case = SYNOD__RESPONSE__BODY_CHANNEL_CURSOR;
  r.channel_cursor = &cr;
  mock_send(m, conn_id, &r);
}

/* ---------------------------------------------------- subscriptions */

/* Where a new subscription starts in msgs; 0 or an error code. */
static int mock_sub_position(struct mock *m, const Synod__ChannelSubscribe *q,
                             struct mock_sub *s, uint64_t *first_available) {
  struct mock_channel *ch = mock_channel(m, q->channel, false);
  struct mock_cursor *c = NULL;
  int from = q->from;
  uint64_t offset = q->offset, after = q->after_index;
  uint64_t after_offset = q->after_offset;
  if (ch != NULL && !q->prefix && q->cursor[0] != '\0') {
    c = mock_cursor(ch, q->cursor, false);
  }
  if (c != NULL) {
    from = SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_OFFSET;
    offset = c->offset + 1;
  } else if (q->cursor[0] != '\0' &&
             from == SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_DEFAULT) {
    return SYNOD_ENOTFOUND;
  }
  if (from == SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_FIRST) {
    offset = ch != NULL ? ch->first_offset : 1;
    after = 0;
  } else if (from != SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_OFFSET) { /* NEXT */
    offset = ch != NULL ? ch->next_offset : 1;
    after = m->index;
  }
  if (from != SYNOD__CHANNEL_SUBSCRIBE__FROM__FROM_OFFSET) {
    after_offset = 0;
  }
  if (!q->prefix && ch != NULL && offset < ch->first_offset) {
    *first_available = ch->first_offset;
    return SYNOD_ECOMPACTED;
  }
  s->next_offset = offset;
  s->after_index = q->prefix ? after : 0;
  s->after_offset = q->prefix ? after_offset : 0;
  for (s->pos = 0; s->pos < m->msgs_n; s->pos++) {
    const struct mock_msg *x = &m->msgs[s->pos];
    bool later = x->index > after || (x->index == after && after_offset != 0 &&
                                      x->offset > after_offset);
    if (mock_sub_matches(s, x) && (q->prefix ? later : x->offset >= offset)) {
      break;
    }
  }
  /* A replica that starts early: `rewind` matching messages before. */
  for (int k = m->sub_rewind; k > 0 && s->pos > 0;) {
    s->pos--;
    k -= mock_sub_matches(s, &m->msgs[s->pos]);
  }
  return 0;
}

static void mock_subscribe(struct mock *m, uint64_t conn_id,
                           const Synod__Request *q) {
  const Synod__ChannelSubscribe *cs = q->channel_subscribe;
  Synod__Response r = SYNOD__RESPONSE__INIT;
  Synod__ChannelSubscribeReply sr = SYNOD__CHANNEL_SUBSCRIBE_REPLY__INIT;
  struct mock_sub *s = NULL;
  uint64_t first = 0;
  int rv;
  m->subscribes++;
  m->sub_last_from = cs->from;
  m->sub_last_offset = cs->offset;
  m->sub_last_after_index = cs->after_index;
  m->sub_last_after_offset = cs->after_offset;
  m->sub_last_credits = cs->credits;
  for (int i = 0; i < MOCK_MAX && s == NULL; i++) {
    s = m->subs[i].used ? NULL : &m->subs[i];
  }
  if (m->sub_refuse != 0) {
    mock_error(m, conn_id, q->id, m->sub_refuse, "mock: refused", "");
    return;
  }
  memset(s, 0, sizeof *s);
  s->conn_id = conn_id;
  s->id = cs->subscription_id;
  s->prefix = cs->prefix;
  snprintf(s->channel, sizeof s->channel, "%s", cs->channel);
  rv = mock_sub_position(m, cs, s, &first);
  if (rv != 0) {
    Synod__Response er = SYNOD__RESPONSE__INIT;
    Synod__Error e = SYNOD__ERROR__INIT;
    e.code = (Synod__ErrorCode)rv;
    e.message = (char *)synod_strerror(rv);
    e.first_available = first;
    er.id = q->id;
    er.error = &e;
    mock_send(m, conn_id, &er);
    return;
  }
  s->credits = cs->credits ? cs->credits : 1000;
  s->used = true;
  m->subs_active++;
  struct mock_channel *ch = mock_channel(m, cs->channel, false);
  sr.subscription_id = s->id;
  sr.offset = cs->prefix ? 0 : s->next_offset;
  sr.after_index = s->after_index;
  sr.after_offset = s->after_offset;
  sr.first_offset = ch && !cs->prefix ? ch->first_offset : 0;
  sr.next_offset = ch && !cs->prefix ? ch->next_offset : 0;
  r.id = q->id;
  r.body_case = SYNOD__RESPONSE__BODY_CHANNEL_SUBSCRIBE;
  r.channel_subscribe = &sr;
  mock_send(m, conn_id, &r);
  mock_sub_pump(m, s);
}

static struct mock_sub *mock_sub_find(struct mock *m, uint64_t conn_id,
                                      uint64_t id) {
  for (int i = 0; i < MOCK_MAX; i++) {
    if (m->subs[i].used && m->subs[i].conn_id == conn_id &&
        m->subs[i].id == id) {
      return &m->subs[i];
    }
  }
  return NULL;
}

/* Subscribe, credit, unsubscribe: served here, follower or not. */
static void mock_sub_request(struct mock *m, uint64_t conn_id,
                             const Synod__Request *q) {
  Synod__Response r = SYNOD__RESPONSE__INIT;
  struct mock_sub *s;
  if (q->body_case == SYNOD__REQUEST__BODY_CHANNEL_SUBSCRIBE) {
    mock_subscribe(m, conn_id, q);
    return;
  }
  r.id = q->id;
  if (q->body_case == SYNOD__REQUEST__BODY_CHANNEL_CREDIT) {
    uint32_t n = q->channel_credit->credits;
    s = mock_sub_find(m, conn_id, q->channel_credit->subscription_id);
    m->credit_grants++;
    m->credits_granted += n;
    m->credit_min = m->credit_min == 0 || n < m->credit_min ? n : m->credit_min;
    m->credit_max = n > m->credit_max ? n : m->credit_max;
    mock_send(m, conn_id, &r);
    if (s != NULL) {
      s->credits += n;
      mock_sub_pump(m, s);
    }
    return;
  }
  s = mock_sub_find(m, conn_id, q->channel_unsubscribe->subscription_id);
  m->unsubscribes++;
  if (s != NULL) {
    mock_sub_drop(m, s);
  }
  mock_send(m, conn_id, &r);
}

static bool mock_is_sub_request(Synod__Request__BodyCase c) {
  return c == SYNOD__REQUEST__BODY_CHANNEL_SUBSCRIBE ||
         c == SYNOD__REQUEST__BODY_CHANNEL_CREDIT ||
         c == SYNOD__REQUEST__BODY_CHANNEL_UNSUBSCRIBE;
}

/* The connection closed: its subscriptions go with it. */
static void mock_subs_closed(struct mock *m, uint64_t conn_id) {
  for (int i = 0; i < MOCK_MAX; i++) {
    if (m->subs[i].conn_id == conn_id) {
      mock_sub_drop(m, &m->subs[i]);
    }
  }
}

/* mock_poke's part: end every subscription with sub_end_code; apply a
 * compaction (compact_channel up to compact_to). */
static void mock_subs_poked(struct mock *m) {
  int code = atomic_exchange(&m->sub_end_code, 0);
  uint64_t to = atomic_exchange(&m->compact_to, 0);
  if (code == 0 && to == 0) {
    return;
  }
  for (int i = 0; code != 0 && i < MOCK_MAX; i++) {
    if (m->subs[i].used) {
      struct mock_channel *ch = mock_channel(m, m->subs[i].channel, false);
      mock_sub_end(m, &m->subs[i], code, ch ? ch->first_offset : 0);
    }
  }
  if (to != 0) {
    struct mock_channel *ch = mock_channel(m, m->compact_channel, false);
    if (ch != NULL && to > ch->first_offset && to <= ch->next_offset) {
      ch->first_offset = to;
    }
    mock_subs_pump(m);
  }
  m->pokes_done++;
}

static void mock_channels_free(struct mock *m) {
  for (size_t i = 0; i < m->msgs_n; i++) {
    free(m->msgs[i].data);
  }
  free(m->msgs);
}
