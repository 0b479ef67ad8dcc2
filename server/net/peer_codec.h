/* Peer codec: the core's messages (struct core_msg) to and from the wire
 * (synod.peer.PeerMessage in proto/peer.proto). Everything that arrives is
 * validated here or in the core; nothing a peer sends can trip an assert. */
#ifndef SYNOD_PEER_CODEC_H
#define SYNOD_PEER_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "core.h"
#include "frame.h"
#include "pb_arena.h"
#include "peer.pb-c.h"

/* At most this many entries in one append; more is refused as malformed. */
#define PEER_APPEND_ENTRIES_MAX 65536

/* Appends one frame holding `m` to `out`. For a CORE_MSG_SNAPSHOT the
 * image bytes must already be in m->snapshot.data (the shell fills them).
 * Returns 0, SYNOD_ETOOBIG (the frame would exceed frame_max_bytes) or
 * SYNOD_ENOMEM; on error nothing is appended. */
int peer_msg_encode(const struct core_msg *m, struct frame_buf *out,
                    uint32_t frame_max_bytes);

/* A decoded frame: either a core message or a link-level message (hello,
 * join, leave, membership reply) left in `pb` for the link to read. */
struct peer_decoded {
  Synod__Peer__PeerMessage *pb; /* owns every byte `msg` points to */
  bool is_core;                 /* msg is valid */
  struct core_msg msg;
  struct core_entry *entries; /* msg.append.entries, owned */
  struct pb_arena *arena;     /* pb's memory, or NULL: the heap's */
};

/* Decodes one frame's payload. Returns 0, or SYNOD_EMALFORMED if it does
 * not decode or breaks a limit (an unknown body, an entry type the core does
 * not know, more than CORE_MEMBERS_MAX members, a snapshot chunk over 4 GiB,
 * too many entries); errmsg (SYNOD_ERRMSG_MAX bytes) then says which.
 * On success the caller frees `out` with peer_decoded_free. */
int peer_msg_decode(const uint8_t *buf, size_t len, struct peer_decoded *out,
                    char *errmsg);

/* The same, unpacking into arena (a frame's 2 allocations per entry and
 * more come from one reused buffer): peer_decoded_free() then resets the
 * arena, so it serves one decoded frame at a time. */
int peer_msg_decode_in(struct pb_arena *arena, const uint8_t *buf, size_t len,
                       struct peer_decoded *out, char *errmsg);

void peer_decoded_free(struct peer_decoded *d);

#endif /* SYNOD_PEER_CODEC_H */
