/* Wire schema: the error enum in proto/synod.proto mirrors SYNOD_ERRORS. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "synod.h"
#include "synod.pb-c.h"

/* Every code in SYNOD_ERRORS has a proto value with the same name and
 * number, and the proto enum has no value that the C list lacks. */
START_TEST(error_enum_matches_c_list) {
  const ProtobufCEnumDescriptor *d = &synod__error_code__descriptor;
  unsigned c_count = 0;
#define CHECK_ONE(name, num, text)                                             \
  do {                                                                         \
    const ProtobufCEnumValue *v =                                              \
        protobuf_c_enum_descriptor_get_value_by_name(d, #name);                \
    ck_assert_msg(v != NULL, "proto ErrorCode lacks %s", #name);               \
    ck_assert_int_eq(v->value, num);                                           \
    c_count++;                                                                 \
  } while (0);
  SYNOD_ERRORS(CHECK_ONE)
#undef CHECK_ONE
  ck_assert_uint_eq(d->n_values, c_count);
}
END_TEST

START_TEST(strerror_knows_every_code_and_rejects_unknown) {
#define CHECK_TEXT(name, num, text)                                            \
  ck_assert_str_eq(synod_strerror(num), text);                                 \
  ck_assert_str_eq(synod_errname(num), #name);
  SYNOD_ERRORS(CHECK_TEXT)
#undef CHECK_TEXT
  ck_assert_str_eq(synod_strerror(-1), "unknown error");
  ck_assert_str_eq(synod_strerror(9999), "unknown error");
  ck_assert_str_eq(synod_errname(9999), "SYNOD_E?");
}
END_TEST

/* A request survives an encode/decode round trip with its oneof body, and
 * garbage does not decode. */
START_TEST(request_round_trip_and_garbage_rejected) {
  Synod__Request req = SYNOD__REQUEST__INIT;
  Synod__CounterAdd add = SYNOD__COUNTER_ADD__INIT;
  add.name = "jobs";
  add.delta = -3;
  req.id = 42;
  req.session_id = 7;
  req.sequence = 9;
  req.body_case = SYNOD__REQUEST__BODY_COUNTER_ADD;
  req.counter_add = &add;

  size_t len = synod__request__get_packed_size(&req);
  uint8_t *buf = malloc(len);
  ck_assert_ptr_nonnull(buf);
  ck_assert_uint_eq(synod__request__pack(&req, buf), len);

  Synod__Request *back = synod__request__unpack(NULL, len, buf);
  ck_assert_ptr_nonnull(back);
  ck_assert_uint_eq(back->id, 42);
  ck_assert_uint_eq(back->session_id, 7);
  ck_assert_uint_eq(back->sequence, 9);
  ck_assert_int_eq(back->body_case, SYNOD__REQUEST__BODY_COUNTER_ADD);
  ck_assert_str_eq(back->counter_add->name, "jobs");
  ck_assert_int_eq(back->counter_add->delta, -3);
  synod__request__free_unpacked(back, NULL);

  /* A field whose declared length runs past the end of the buffer. */
  const uint8_t garbage[] = {0x0a, 0xff, 0x01, 0x02};
  ck_assert_ptr_null(synod__request__unpack(NULL, sizeof garbage, garbage));
  free(buf);
}
END_TEST

static Suite *proto_suite(void) {
  Suite *s = suite_create("proto");
  TCase *tc = tcase_create("schema");
  tcase_add_test(tc, error_enum_matches_c_list);
  tcase_add_test(tc, strerror_knows_every_code_and_rejects_unknown);
  tcase_add_test(tc, request_round_trip_and_garbage_rejected);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(proto_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
