/* Metrics rendering: node_metrics_text writes every family in the
 * Prometheus text exposition format 0.0.4, from kept counts only (no walk
 * over locks, counters or sessions), so a scrape costs the same whatever
 * the state holds. README.md's metrics table lists the families. */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "node_int.h"
#include "version.h"

/* A label value with \, " and newline escaped (the format's rules). */
#define LABEL_VALUE_MAX (2 * NODE_NAME_MAX + 1)

static void label_escape(const char *v, char *out) {
  size_t k = 0;
  for (; *v != '\0' && k + 2 < LABEL_VALUE_MAX; v++) {
    if (*v == '\\' || *v == '"') {
      out[k++] = '\\';
      out[k++] = *v;
    } else if (*v == '\n') {
      out[k++] = '\\';
      out[k++] = 'n';
    } else {
      out[k++] = *v;
    }
  }
  out[k] = '\0';
}

static void family(FILE *f, const char *name, const char *type,
                   const char *help) {
  fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void gauge(FILE *f, const char *name, const char *help, uint64_t v) {
  family(f, name, "gauge", help);
  fprintf(f, "%s %" PRIu64 "\n", name, v);
}

static void counter(FILE *f, const char *name, const char *help, uint64_t v) {
  family(f, name, "counter", help);
  fprintf(f, "%s %" PRIu64 "\n", name, v);
}

static void histogram(FILE *f, const char *name, const char *help,
                      const struct histogram *h) {
  family(f, name, "histogram", help);
  histogram_write(h, f, name, NULL);
}

/* Code label values: SYNOD_OK, SYNOD_ELOCKED, ...; the last slot holds
 * codes this build does not know. */
static const char *code_name(int slot) {
  return slot <= SYNOD_EINTERNAL ? synod_errname(slot) : "SYNOD_E?";
}

/* ------------------------------------------------------------ process */

static uint64_t process_resident_bytes(void) {
  unsigned long long size = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL) {
    return 0;
  }
  if (fscanf(f, "%llu %llu", &size, &resident) != 2) {
    resident = 0;
  }
  fclose(f);
  return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Open descriptors, not counting the one that lists them. */
static uint64_t process_open_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  uint64_t k = 0;
  if (d == NULL) {
    return 0;
  }
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    k += e->d_name[0] != '.';
  }
  closedir(d);
  return k > 0 ? k - 1 : 0;
}

static void write_process(FILE *f, struct node *n) {
  family(f, "synod_build_info", "gauge",
         "Always 1; the version label is this synodd's.");
  fprintf(f, "synod_build_info{version=\"%s\"} 1\n", SYNOD_VERSION);
  gauge(f, "synod_process_start_time_seconds",
        "When this replica started, in seconds since the Unix epoch.",
        n->metrics.start_unix_s);
  gauge(f, "synod_process_resident_memory_bytes",
        "Resident memory of the synodd process.", process_resident_bytes());
  gauge(f, "synod_process_open_fds",
        "File descriptors the synodd process has open.", process_open_fds());
}

/* --------------------------------------------------------------- raft */

static void write_raft(FILE *f, struct node *n) {
  static const enum core_role roles[] = {CORE_FOLLOWER, CORE_PRE_CANDIDATE,
                                         CORE_CANDIDATE, CORE_LEADER};
  const struct core_config *cfg = core_config(n->core);
  gauge(f, "synod_term", "Current Raft term.", n->term);
  family(f, "synod_role", "gauge",
         "1 for this replica's Raft role, 0 for the others.");
  for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
    fprintf(f, "synod_role{role=\"%s\"} %d\n", core_role_name(roles[i]),
            n->role == roles[i]);
  }
  gauge(f, "synod_is_leader", "1 if this replica is the Raft leader.",
        n->role == CORE_LEADER);
  counter(f, "synod_raft_leader_changes_total",
          "Times this replica learnt of a new leader.",
          n->metrics.leader_changes);
  counter(f, "synod_raft_elections_started_total",
          "Elections this replica started as a candidate.",
          n->metrics.elections_started);
  family(f, "synod_raft_messages_sent_total", "counter",
         "Raft messages this replica sent to its peers, by type.");
  for (int t = 0; t < CORE_MSG_TYPE_COUNT; t++) {
    fprintf(f, "synod_raft_messages_sent_total{type=\"%s\"} %" PRIu64 "\n",
            core_msg_type_name((enum core_msg_type)t), n->metrics.msgs_sent[t]);
  }
  gauge(f, "synod_commit_index", "Highest log index known committed.",
        core_commit_index(n->core));
  gauge(f, "synod_applied_index", "Highest log index applied here.",
        n->applied_index);
  gauge(f, "synod_last_index", "Highest log index in this replica's log.",
        core_last_index(n->core));
  gauge(f, "synod_snapshot_index", "Last index of the current snapshot.",
        n->snap_meta.index);
  gauge(f, "synod_snapshot_size_bytes", "Size of the current snapshot image.",
        n->snap_len);
  gauge(f, "synod_voters", "Voters in the configuration.", cfg->voters_n);
  gauge(f, "synod_learners", "Learners in the configuration.", cfg->learners_n);
}

/* -------------------------------------------------------------- peers */

/* Peers known by handshake, labelled by name and id (a replica back with
 * a new disk has a new id under its old name). */
static void peer_labels(const struct member *mem, char *out, size_t cap) {
  char name[LABEL_VALUE_MAX];
  label_escape(mem->name, name);
  snprintf(out, cap, "peer=\"%s\",peer_id=\"%016" PRIx64 "\"", name, mem->id);
}

/* The per-peer families, from each link's counts. */
static const struct {
  const char *name, *type, *help;
} peer_families[] = {
    {"synod_peer_up", "gauge", "1 while the link to this peer is up."},
    {"synod_peer_sent_bytes_total", "counter",
     "Bytes of frames queued to this peer, headers included."},
    {"synod_peer_received_bytes_total", "counter",
     "Bytes of frames received from this peer, headers included."},
    {"synod_peer_last_contact_seconds", "gauge",
     "Seconds since the last frame from this peer (once one came)."},
};

/* Formats family k's value for one link; false when it has none. */
static bool peer_value(int k, const struct peer_link_stats *ls, uint64_t now_ms,
                       char *out, size_t cap) {
  uint64_t age_ms = now_ms - ls->last_recv_ms;
  switch (k) {
  case 0:
    return snprintf(out, cap, "%d", ls->up) > 0;
  case 1:
    return snprintf(out, cap, "%" PRIu64, ls->bytes_out) > 0;
  case 2:
    return snprintf(out, cap, "%" PRIu64, ls->bytes_in) > 0;
  default:
    return ls->last_recv_ms != 0 && snprintf(out, cap, "%" PRIu64 ".%03" PRIu64,
                                             age_ms / 1000, age_ms % 1000) > 0;
  }
}

static void write_peer_traffic(FILE *f, struct node *n) {
  char labels[256], value[32];
  uint64_t now_ms = uv_now(n->loop);
  for (int k = 0; k < 4; k++) {
    family(f, peer_families[k].name, peer_families[k].type,
           peer_families[k].help);
    for (uint32_t i = 0; i < n->members_n; i++) {
      struct peer_link_stats ls;
      if (peer_net_link_stats(n->peer_net, n->members[i].id, &ls) &&
          peer_value(k, &ls, now_ms, value, sizeof value)) {
        peer_labels(&n->members[i], labels, sizeof labels);
        fprintf(f, "%s{%s} %s\n", peer_families[k].name, labels, value);
      }
    }
  }
}

/* Leader only: how far each member's log is behind ours. */
static void write_peer_lag(FILE *f, struct node *n) {
  const struct core_config *cfg = core_config(n->core);
  uint64_t last = core_last_index(n->core);
  char name[LABEL_VALUE_MAX];
  family(f, "synod_peer_match_lag_entries", "gauge",
         "Leader only: entries in the leader's log that this member is not "
         "known to have.");
  if (n->role != CORE_LEADER) {
    return;
  }
  for (uint32_t i = 0; i < cfg->voters_n + cfg->learners_n; i++) {
    uint64_t id =
        i < cfg->voters_n ? cfg->voters[i] : cfg->learners[i - cfg->voters_n];
    if (id == n->id) {
      continue;
    }
    uint64_t match = core_match_index(n->core, id);
    label_escape(node_member_name(n, id), name);
    fprintf(f,
            "synod_peer_match_lag_entries{peer=\"%s\",peer_id=\"%016" PRIx64
            "\"} %" PRIu64 "\n",
            name, id, last > match ? last - match : 0);
  }
}

/* ---------------------------------------------------------- requests */

/* The op label of a request body case: its field name in synod.Request
 * ("counter_add"), or NULL if it is not one of the body's fields. */
static const char *op_name(uint32_t body_case) {
  const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field(
      &synod__request__descriptor, body_case);
  return fd != NULL && (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ? fd->name
                                                                 : NULL;
}

/* Every op has an ok series (0 until answered); error codes appear once
 * they happen. */
static void write_requests(FILE *f, struct node *n) {
  const struct node_metrics *m = &n->metrics;
  char labels[96];
  family(f, "synod_requests_total", "counter",
         "Client requests answered, by operation and answer code.");
  for (uint32_t op = 0; op < METRICS_OPS_MAX; op++) {
    const char *name = op_name(op);
    for (int c = 0; name != NULL && c < METRICS_CODES; c++) {
      if (c == 0 || m->requests[op][c] != 0) {
        fprintf(f, "synod_requests_total{op=\"%s\",code=\"%s\"} %" PRIu64 "\n",
                name, code_name(c), m->requests[op][c]);
      }
    }
  }
  family(f, "synod_request_duration_seconds", "histogram",
         "Client requests from arrival to answer, by operation.");
  for (uint32_t op = 0; op < METRICS_OPS_MAX; op++) {
    const char *name = op_name(op);
    if (name != NULL && m->request_durations[op].count > 0) {
      snprintf(labels, sizeof labels, "op=\"%s\"", name);
      histogram_write(&m->request_durations[op], f,
                      "synod_request_duration_seconds", labels);
    }
  }
}

static void write_clients(FILE *f, struct node *n) {
  struct client_net_stats cs = {0};
  if (n->client_net != NULL) {
    client_net_stats(n->client_net, &cs);
  }
  gauge(f, "synod_client_connections", "Client connections open now.",
        cs.conns);
  counter(f, "synod_client_connections_accepted_total",
          "Client connections accepted.", cs.accepted);
  counter(f, "synod_client_connections_refused_total",
          "Client connections closed for bad input.", cs.refused);
  gauge(f, "synod_client_queued_bytes",
        "Bytes queued to client connections and not yet taken by their "
        "sockets.",
        cs.queued_bytes);
  gauge(f, "synod_channel_subscriptions",
        "Channel subscriptions this replica serves now.",
        n->subs.n - subs_key_watches(&n->subs) -
            subs_group_subscriptions(&n->subs));
  gauge(f, "synod_key_watches", "Key watches this replica serves now.",
        subs_key_watches(&n->subs));
  gauge(f, "synod_group_subscriptions",
        "Group subscriptions this replica serves now.",
        subs_group_subscriptions(&n->subs));
  counter(f, "synod_channel_deliveries_total",
          "Channel messages pushed to subscribers.", n->subs.deliveries);
  counter(f, "synod_channel_delivery_bytes_total",
          "Payload bytes of the channel messages pushed to subscribers.",
          n->subs.delivery_bytes);
}

/* ------------------------------------------------------ proposals, log */

static void write_log(FILE *f, struct node *n) {
  const struct node_metrics *m = &n->metrics;
  counter(f, "synod_proposals_total",
          "Entries this replica proposed as leader.", m->proposals);
  counter(f, "synod_writes_forwarded_total",
          "Clients' writes (keepalives and session opens included) this "
          "replica forwarded to the leader as a follower and answered "
          "(Request.forward).",
          m->writes_forwarded);
  family(f, "synod_proposals_refused_total", "counter",
         "Entries the Raft core refused to append, by code (not the "
         "leader, log full, ...).");
  for (int c = 0; c < METRICS_CODES; c++) {
    if (m->proposals_refused[c] != 0) {
      fprintf(f, "synod_proposals_refused_total{code=\"%s\"} %" PRIu64 "\n",
              code_name(c), m->proposals_refused[c]);
    }
  }
  histogram(f, "synod_commit_latency_seconds",
            "Leader: from proposing an entry to its commit.",
            &m->commit_latencies);
  histogram(f, "synod_apply_duration_seconds",
            "Applying one batch of committed entries and answering them.",
            &m->apply_durations);
  family(f, "synod_apply_duration_max_seconds", "gauge",
         "The longest apply of one batch since the replica started.");
  fprintf(f, "synod_apply_duration_max_seconds %.6f\n",
          (double)m->apply_duration_max_us / 1e6);
  gauge(f, "synod_log_memory_bytes",
        "Entry bytes the in-memory Raft log holds (entries applied and "
        "durable give theirs back, but for the newest few MiB).",
        core_log_memory_bytes(n->core));
  counter(f, "synod_appends_read_back_total",
          "Appends to a follower whose entries were read back from the "
          "store.",
          n->persist.appends_filled);
  counter(f, "synod_appends_unreadable_total",
          "Appends dropped because the store could not read one of their "
          "entries back (a snapshot compacted it since; anything else is "
          "also logged as a warning): the follower is probed again.",
          n->persist.appends_unfilled);
  counter(f, "synod_log_syncs_total",
          "Batches written to disk, one sync each (group commit).",
          n->persist.syncs);
  counter(f, "synod_log_synced_entries_total",
          "Log entries in those batches; per sync, the group commit's size.",
          n->persist.synced_entries);
  histogram(f, "synod_log_sync_duration_seconds",
            "Writing and syncing one batch (a snapshot too, if it holds one).",
            &m->sync_durations);
  histogram(f, "synod_store_checkpoint_duration_seconds",
            "Copying the write-ahead file's records into LMDB, once each.",
            &m->checkpoint_durations);
}

/* ---------------------------------------------------------- snapshots */

static void write_snapshots(FILE *f, struct node *n) {
  const struct node_metrics *m = &n->metrics;
  counter(f, "synod_snapshots_taken_total", "Snapshots this replica took.",
          m->snapshots_taken);
  counter(f, "synod_snapshot_taken_bytes_total",
          "Image bytes of the snapshots taken.", m->snapshot_taken_bytes);
  family(f, "synod_snapshots_encoded_total", "counter",
         "Snapshot images encoded, on the event loop or by a forked child "
         "(--snapshot-fork).");
  fprintf(f, "synod_snapshots_encoded_total{by=\"loop\"} %" PRIu64 "\n",
          m->snapshots_encoded_loop);
  fprintf(f, "synod_snapshots_encoded_total{by=\"child\"} %" PRIu64 "\n",
          m->snapshots_encoded_child);
  histogram(f, "synod_snapshot_save_duration_seconds",
            "Writing a snapshot taken here to disk.",
            &m->snapshot_save_durations);
  counter(f, "synod_snapshots_sent_total",
          "Snapshots sent to followers (last chunk sent).", m->snapshots_sent);
  counter(f, "synod_snapshot_sent_bytes_total",
          "Snapshot chunk bytes sent to followers.", m->snapshot_sent_bytes);
  histogram(f, "synod_snapshot_send_duration_seconds",
            "Sending a snapshot to a follower, first chunk to last.",
            &m->snapshot_send_durations);
  counter(f, "synod_snapshots_received_total",
          "Snapshots received from the leader.", m->snapshots_received);
  counter(f, "synod_snapshot_received_bytes_total",
          "Snapshot chunk bytes received from the leader.",
          m->snapshot_received_bytes);
  histogram(f, "synod_snapshot_receive_duration_seconds",
            "Receiving a snapshot from the leader, first chunk to last.",
            &m->snapshot_receive_durations);
}

/* ------------------------------------------------------ state machine */

static void write_fsm(FILE *f, struct node *n) {
  struct fsm_stats st;
  fsm_stats_get(n->fsm, &st);
  gauge(f, "synod_sessions", "Client sessions open.", st.sessions);
  counter(f, "synod_sessions_opened_total", "Sessions opened (applied here).",
          st.sessions_opened);
  counter(f, "synod_sessions_expired_total",
          "Sessions that expired (applied here).", st.sessions_expired);
  gauge(f, "synod_locks_held", "Locks with a holder.", st.locks_held);
  gauge(f, "synod_lock_waiters", "Lock acquires queued, over all locks.",
        st.lock_waiters);
  counter(f, "synod_lock_grants_total",
          "Locks granted to a new holder (applied here).", st.lock_grants);
  histogram(f, "synod_lock_wait_duration_seconds",
            "Queued lock acquires, from queueing to grant, in cluster time "
            "(ms resolution).",
            &st.lock_wait);
  gauge(f, "synod_counters", "Counters that exist.", st.counters);
  gauge(f, "synod_elections_with_leader",
        "Elections (the application's) that have a leader.", st.elections);
  gauge(f, "synod_keys", "Keys that exist (ended sessions' excluded).",
        st.keys);
  gauge(f, "synod_keys_bytes", "Bytes of the keys' names and values.",
        st.keys_bytes);
  gauge(f, "synod_key_work_keys",
        "Keys of ended sessions still to be removed from the store, a "
        "bounded number per applied entry (0 when idle).",
        st.key_work_keys);
  gauge(f, "synod_key_revision",
        "The key store's revision: its last change applied here.",
        fsm_key_revision(n->fsm));
}

int node_metrics_text(struct node *n, char **text, size_t *len) {
  char *buf = NULL;
  size_t size = 0;
  FILE *f = open_memstream(&buf, &size);
  if (f == NULL) {
    return SYNOD_ENOMEM;
  }
  write_process(f, n);
  write_raft(f, n);
  write_peer_traffic(f, n);
  write_peer_lag(f, n);
  write_log(f, n);
  write_requests(f, n);
  write_clients(f, n);
  write_fsm(f, n);
  write_snapshots(f, n);
  bool failed = ferror(f) != 0;
  if (fclose(f) != 0 || failed) {
    free(buf);
    return SYNOD_ENOMEM;
  }
  *text = buf;
  *len = size;
  return 0;
}
