/* synod-bench: helpers for etcd's v3 JSON gateway, shared by the etcd
 * load generator and the status call used at start-up. */
#ifndef SYNOD_BENCH_ETCD_H
#define SYNOD_BENCH_ETCD_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define ETCD_RESPONSE_MAX 16384 /* bytes of one gateway reply */

/* Standard base64 with padding into out (NUL-terminated). Returns 0, or
 * -1 if out_len is too small. */
int etcd_b64_encode(const void *src, size_t len, char *out, size_t out_len);

/* Decodes NUL-terminated base64 into out (NUL-terminated). Returns the
 * decoded length, or -1 on a bad character or if out_len is too small. */
int etcd_b64_decode(const char *src, char *out, size_t out_len);

/* Reads an int64 that the gateway sent as a JSON string (or a number).
 * Returns 0, or -1 if j is neither. */
int etcd_json_i64(const json_t *j, int64_t *out);

/* From a RangeResponse object: the first key's value (decimal text) and
 * mod_revision; both 0 if the key does not exist. Returns 0 or -1 if the
 * reply is malformed. */
int etcd_kv_read(const json_t *range, int64_t *value, int64_t *mod_revision);

#endif /* SYNOD_BENCH_ETCD_H */
