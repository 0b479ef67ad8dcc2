/* The core's private state and the functions its files share; the shell
 * sees only core.h. */
#ifndef SYNOD_CORE_INT_H
#define SYNOD_CORE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "core.h"
#include "core_log.h"
#include "core_prng.h"
#include "err.h"
#include "synod.h"

/* Followers and learners a leader tracks: every member but itself. */
#define CORE_PEERS_MAX (2 * CORE_MEMBERS_MAX)
/* Snapshot chunks in flight per follower. */
#define CORE_SNAPSHOT_CHUNKS_INFLIGHT 4
/* ReadIndex requests waiting for confirmation. */
#define CORE_READS_MAX 4096

enum core_progress_state {
  CORE_PROGRESS_PROBE,     /* one append at a time until a match is found */
  CORE_PROGRESS_REPLICATE, /* pipelined appends from an optimistic next */
  CORE_PROGRESS_SNAPSHOT,  /* appends paused while a snapshot streams */
};

struct core_inflight {
  uint64_t last; /* the last index of an append in flight */
  uint64_t bytes;
};

/* A leader's view of one follower or learner (Figure 2 nextIndex and
 * matchIndex, etcd raft's Progress). */
struct core_progress {
  uint64_t id; /* 0 = free slot */
  enum core_progress_state state;
  uint64_t match; /* persisted on the follower; match < next */
  uint64_t next;
  bool probe_sent;      /* PROBE: paused until a reply or heartbeat reply */
  bool recent_active;   /* heard from in this CheckQuorum period */
  bool timeout_sent;    /* transfer target: TIMEOUT_NOW went out */
  uint64_t read_acked;  /* highest ReadIndex round acknowledged */
  uint64_t commit_sent; /* the commit index of the last append sent */
  /* REPLICATE: a ring of inflight_appends_max appends in flight. */
  struct core_inflight *inflights;
  uint32_t infl_head;
  uint32_t infl_n;
  uint64_t infl_bytes;
  /* SNAPSHOT: the image streamed; acked <= sent <= meta.size_bytes. */
  struct core_snapshot_meta snap;
  uint64_t snap_sent;
  uint64_t snap_acked;
  bool snap_sent_all;
  bool snap_nacked; /* went back once since the last progress */
  uint32_t snap_idle_ticks;
};

/* A ReadIndex request (thesis 6.4). round 0: waiting for the leader's
 * first commit in its term; then index is the commit at that time. */
struct core_pending_read {
  uint64_t ctx;
  uint64_t index;
  uint64_t round;
};

/* The update under construction. Arrays grow as needed and are reused. */
struct core_out {
  struct core_update *up;
  struct core_msg *msgs;
  uint32_t *msg_ents_off; /* per message: its first entry in msg_ents */
  uint32_t msgs_n, msgs_cap, msg_ents_off_cap;
  struct core_entry *msg_ents;
  uint32_t msg_ents_n, msg_ents_cap;
  struct core_entry *ents; /* to persist */
  uint32_t ents_cap;
  struct core_entry *committed;
  uint32_t committed_n, committed_cap;
  struct core_read *reads;
  uint32_t reads_n, reads_cap;
  uint64_t persist_from; /* 0 = nothing appended in this step */
};

struct core {
  struct core_options o; /* defaults filled in */
  uint64_t id;
  struct core_prng prng;
  char errmsg[SYNOD_ERRMSG_MAX];

  enum core_role role;
  uint64_t term;
  uint64_t vote;   /* 0 = none in this term */
  uint64_t leader; /* 0 = unknown */
  /* snap.index <= applied <= commit <= last index */
  uint64_t commit;
  uint64_t applied;
  struct core_log log;
  /* The latest configuration in the log (in effect once appended) and the
   * index of its entry (or of the snapshot that carried it). */
  struct core_config config;
  uint64_t config_index;
  struct core_snapshot_meta snap; /* the latest snapshot; index 0 = none */
  uint64_t snap_wanted_at;        /* applied when snapshot_wanted was set */
  uint64_t applied_bytes;         /* bytes of entries handed out to apply */
  uint64_t snap_wanted_bytes;     /* applied_bytes then (or at a snapshot) */
  uint64_t handed_max;            /* highest index ever handed out to persist */

  /* Timers, in ticks. election_timeout is in [e, 2e). */
  uint32_t election_elapsed;
  uint32_t election_timeout;
  uint32_t heartbeat_elapsed;

  /* Candidate and pre-candidate: the answers so far. */
  uint64_t tally_ids[CORE_PEERS_MAX + 1];
  bool tally_granted[CORE_PEERS_MAX + 1];
  uint32_t tally_n;
  /* Candidate that won by its own vote: the index of its noop, whose
   * PERSISTED makes it leader (0 = none). */
  uint64_t self_win_index;

  /* Leader. self_match: the highest entry of this term known durable
   * here (only PERSISTED moves it). */
  uint64_t self_match;
  struct core_progress prs[CORE_PEERS_MAX];
  uint64_t transfer_target; /* 0 = no transfer */
  uint32_t transfer_elapsed;
  struct core_pending_read *reads;
  uint32_t reads_n;
  uint64_t read_round;      /* last ReadIndex round broadcast */
  uint64_t read_round_done; /* highest round confirmed by a quorum */

  /* Follower: the snapshot being received; offset = next byte wanted. */
  bool recv_active;
  struct core_snapshot_meta recv_meta;
  uint64_t recv_offset;

  /* What the last update reported, to detect changes. */
  struct core_hard_state hs_out;
  enum core_role role_out;
  uint64_t term_out;
  uint64_t leader_out;
  struct core_config config_out;

  struct core_out out;
};

/* core.c: updates, tracing, helpers. */
void core_trace(struct core *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
struct core_msg *core_msg_push(struct core *c, enum core_msg_type type,
                               uint64_t to);
void core_msg_attach_entries(struct core *c, uint64_t first, uint32_t n);
void core_out_appended(struct core *c, uint64_t index);
void core_out_truncated(struct core *c, uint64_t from);
struct core_read *core_out_read(struct core *c);
bool core_config_is_voter(const struct core_config *cfg, uint64_t id);
bool core_config_is_member(const struct core_config *cfg, uint64_t id);
uint32_t core_quorum(const struct core *c);
bool core_log_up_to_date(const struct core *c, uint64_t last_index,
                         uint64_t last_term);

/* check.c */
bool core_entry_valid(const struct core_entry *e);
int core_check_event(struct core *c, const struct core_event *ev);

/* election.c */
void core_election_timer_reset(struct core *c);
void core_election_tick(struct core *c);
void core_election_peer_gone(struct core *c, uint64_t id);
void core_election_campaign(struct core *c, bool pre, bool transfer);
void core_become_follower(struct core *c, uint64_t term, uint64_t leader);
bool core_election_in_lease(const struct core *c);
void core_recv_vote(struct core *c, const struct core_msg *m);
void core_recv_pre_vote(struct core *c, const struct core_msg *m);
void core_recv_vote_reply(struct core *c, const struct core_msg *m);
void core_recv_pre_vote_reply(struct core *c, const struct core_msg *m);
void core_recv_timeout_now(struct core *c, const struct core_msg *m);
void core_election_persisted(struct core *c, uint64_t index, uint64_t term);

/* replication.c */
struct core_progress *core_progress_find(struct core *c, uint64_t id);
void core_repl_start(struct core *c);
void core_repl_stop(struct core *c);
void core_repl_sync_members(struct core *c);
void core_repl_send(struct core *c, struct core_progress *p, bool empty_ok);
void core_repl_broadcast(struct core *c);
void core_repl_heartbeat(struct core *c);
void core_repl_tick(struct core *c);
void core_repl_maybe_commit(struct core *c);
void core_repl_deliver(struct core *c);
void core_repl_propose(struct core *c, const struct core_entry *ents,
                       uint32_t n);
void core_repl_persisted(struct core *c, uint64_t index, uint64_t term);
void core_repl_unreachable(struct core *c, uint64_t id);
void core_repl_progressed(struct core *c, struct core_progress *p);
void core_recv_append(struct core *c, const struct core_msg *m);
void core_recv_append_reply(struct core *c, const struct core_msg *m);
void core_recv_heartbeat(struct core *c, const struct core_msg *m);
void core_recv_heartbeat_reply(struct core *c, const struct core_msg *m);
void core_progress_probe(struct core_progress *p, uint64_t next);

/* read.c */
void core_read_request(struct core *c, uint64_t ctx);
void core_read_check(struct core *c);
void core_read_on_commit(struct core *c);
void core_read_fail_all(struct core *c);
uint64_t core_read_round_outstanding(const struct core *c);

/* snapshot.c */
int core_snapshot_check_taken(struct core *c,
                              const struct core_snapshot_meta *meta);
void core_snapshot_taken(struct core *c, const struct core_snapshot_meta *m);
void core_snapshot_start(struct core *c, struct core_progress *p);
void core_snapshot_send(struct core *c, struct core_progress *p);
void core_snapshot_tick(struct core *c, struct core_progress *p);
void core_recv_snapshot(struct core *c, const struct core_msg *m);
void core_recv_snapshot_reply(struct core *c, const struct core_msg *m);
bool core_snapshot_meta_valid(const struct core_snapshot_meta *meta);

/* membership.c */
bool core_config_valid(const struct core_config *cfg);
int core_membership_check(struct core *c, enum core_event_type type,
                          uint64_t id);
void core_membership_change(struct core *c, enum core_event_type type,
                            uint64_t id);
void core_membership_refresh(struct core *c);
void core_membership_on_commit(struct core *c);
void core_membership_maybe_promote(struct core *c);

/* transfer.c */
int core_transfer_check(struct core *c, uint64_t id);
void core_transfer_start(struct core *c, uint64_t id);
void core_transfer_progress(struct core *c, struct core_progress *p);
void core_transfer_tick(struct core *c);
void core_transfer_abort(struct core *c, const char *why);

#endif
