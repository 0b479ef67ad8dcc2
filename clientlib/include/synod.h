/* libsynod: the client library of synod, and the one list of error codes
 * that the server, the client library and the wire schema share. */
#ifndef SYNOD_H
#define SYNOD_H

#ifdef __cplusplus
extern "C" {
#endif

/* Every fallible function in synod returns 0 or one of these codes.
 * The numbers are part of the wire protocol: proto/synod.proto's ErrorCode
 * mirrors this list and a unit test checks that they agree. Append only;
 * never renumber. */
#define SYNOD_ERRORS(X)                                                        \
  X(SYNOD_OK, 0, "success")                                                    \
  X(SYNOD_EINVAL, 1, "invalid argument")                                       \
  X(SYNOD_ENOMEM, 2, "out of memory")                                          \
  X(SYNOD_ERANGE, 3, "value out of range")                                     \
  X(SYNOD_ENOTFOUND, 4, "not found")                                           \
  X(SYNOD_EEXIST, 5, "already exists")                                         \
  X(SYNOD_ELIMIT, 6, "limit reached")                                          \
  X(SYNOD_ETOOBIG, 7, "too large")                                             \
  X(SYNOD_EMALFORMED, 8, "malformed message")                                  \
  X(SYNOD_ECORRUPT, 9, "corrupt data")                                         \
  X(SYNOD_EIO, 10, "I/O error")                                                \
  X(SYNOD_ENOSPACE, 11, "storage full")                                        \
  X(SYNOD_ECOMPACTED, 12, "entry compacted into a snapshot")                   \
  X(SYNOD_EUNAVAILABLE, 13, "entry not available yet")                         \
  X(SYNOD_ENOTLEADER, 14, "not the leader")                                    \
  X(SYNOD_ENOLEADER, 15, "no leader known")                                    \
  X(SYNOD_ETIMEDOUT, 16, "timed out")                                          \
  X(SYNOD_ESESSION, 17, "session expired or unknown")                          \
  X(SYNOD_ENOTHOLDER, 18, "not the lock holder")                               \
  X(SYNOD_ELOCKED, 19, "held by another owner")                                \
  X(SYNOD_EOVERFLOW, 20, "integer overflow")                                   \
  X(SYNOD_EPROTO, 21, "protocol version mismatch")                             \
  X(SYNOD_ECLOSED, 22, "connection closed")                                    \
  X(SYNOD_ESHUTDOWN, 23, "shutting down")                                      \
  X(SYNOD_EBUSY, 24, "busy, try again")                                        \
  X(SYNOD_ECANCELED, 25, "canceled")                                           \
  X(SYNOD_ESEQUENCE, 26, "request sequence too old")                           \
  X(SYNOD_ELOST, 27, "lock or session can no longer be trusted")               \
  X(SYNOD_ECONNECT, 28, "cannot connect to any endpoint")                      \
  X(SYNOD_ECONFIG, 29, "membership change in progress or not allowed")         \
  X(SYNOD_EINTERNAL, 30, "internal error")

enum synod_error {
#define SYNOD_ERROR_ENUM(name, num, text) name = num,
  SYNOD_ERRORS(SYNOD_ERROR_ENUM)
#undef SYNOD_ERROR_ENUM
};

/* Returns a static, human-readable text for an error code; unknown codes
 * give "unknown error". Never returns NULL. */
const char *synod_strerror(int code);

/* Returns the symbolic name of an error code ("SYNOD_ENOTFOUND"), or
 * "SYNOD_E?" for an unknown code. Never returns NULL. */
const char *synod_errname(int code);

#ifdef __cplusplus
}
#endif
#endif /* SYNOD_H */
