/* Server-Sent Events framing: a message comes back byte for byte from
 * what an SSE client parses (several data: lines joined by LF, trailing LF
 * and empty message included), and one that is not UTF-8 or holds a CR is
 * base64 after "event: base64"; sizes are exact. Events with an id and
 * no data (a key watch's progress); key watch positions as ids, "R.E"
 * and "R", resumed right after, and the ids the parser refuses. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "sse.h"
#include "utf8.h"

/* Formats message (id, s) and checks the size function agrees. The
 * result is NUL-terminated, owned by a static buffer. */
static const char *fmt(uint64_t id, const char *s, size_t len) {
  static char out[4096];
  size_t need = sse_message_size(id, (const uint8_t *)s, len);
  ck_assert_uint_lt(need, sizeof out);
  memset(out, '#', sizeof out);
  size_t n = sse_message(out, id, (const uint8_t *)s, len);
  ck_assert_uint_eq(n, need);
  out[n] = '\0';
  return out;
}

/* What an SSE client gives the application for one event (the
 * standard's "interpret an event stream" for our subset: id, event,
 * data). */
struct parsed {
  char id[32];
  char event[32];
  char data[4096];
  size_t data_len;
};

static void parse(const char *ev, struct parsed *p) {
  memset(p, 0, sizeof *p);
  bool any = false;
  for (const char *line = ev; *line != '\0';) {
    const char *nl = strchr(line, '\n');
    ck_assert_ptr_nonnull(nl);
    size_t n = (size_t)(nl - line);
    if (n == 0) {
      break; /* dispatch */
    }
    const char *colon = memchr(line, ':', n);
    ck_assert_ptr_nonnull(colon);
    size_t fl = (size_t)(colon - line);
    const char *v = colon + 1;
    if (*v == ' ') {
      v++;
    }
    size_t vl = (size_t)(nl - v);
    if (fl == 4 && memcmp(line, "data", 4) == 0) {
      memcpy(p->data + p->data_len, v, vl);
      p->data_len += vl;
      p->data[p->data_len++] = '\n';
      any = true;
    } else if (fl == 2 && memcmp(line, "id", 2) == 0) {
      memcpy(p->id, v, vl);
    } else if (fl == 5 && memcmp(line, "event", 5) == 0) {
      memcpy(p->event, v, vl);
    }
    line = nl + 1;
  }
  ck_assert(any);
  p->data[--p->data_len] = '\0'; /* the last LF goes */
}

START_TEST(one_line_message_is_one_data_line_with_its_offset_as_id) {
  ck_assert_str_eq(fmt(7, "hello", 5), "id: 7\ndata: hello\n\n");
}
END_TEST

START_TEST(multi_line_message_is_split_and_rejoined_byte_for_byte) {
  const char *m = "line one\n line two\n\nlast\n";
  const char *ev = fmt(12, m, strlen(m));
  ck_assert_str_eq(ev, "id: 12\ndata: line one\ndata:  line two\ndata: \n"
                       "data: last\ndata: \n\n");
  struct parsed p;
  parse(ev, &p);
  ck_assert_str_eq(p.id, "12");
  ck_assert_str_eq(p.event, "");
  ck_assert_uint_eq(p.data_len, strlen(m));
  ck_assert_str_eq(p.data, m);
}
END_TEST

START_TEST(empty_message_is_one_empty_data_line) {
  const char *ev = fmt(1, "", 0);
  ck_assert_str_eq(ev, "id: 1\ndata: \n\n");
  struct parsed p;
  parse(ev, &p);
  ck_assert_uint_eq(p.data_len, 0);
}
END_TEST

START_TEST(utf8_message_is_sent_as_is) {
  const char *m = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
  ck_assert_str_eq(
      fmt(3, m, strlen(m)),
      "id: 3\ndata: caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\n\n");
}
END_TEST

START_TEST(binary_message_is_base64_after_event_base64) {
  const uint8_t m[] = {0x00, 0xff, 0xfe, 'a', 0x80};
  ck_assert(sse_needs_base64(m, sizeof m));
  ck_assert_str_eq(fmt(9, (const char *)m, sizeof m),
                   "id: 9\nevent: base64\ndata: AP/+YYA=\n\n");
  const uint8_t one[] = {0xc3};
  ck_assert_str_eq(fmt(10, (const char *)one, 1),
                   "id: 10\nevent: base64\ndata: ww==\n\n");
}
END_TEST

START_TEST(carriage_return_goes_base64_since_clients_read_it_as_a_break) {
  ck_assert_str_eq(fmt(4, "a\r\nb", 4),
                   "id: 4\nevent: base64\ndata: YQ0KYg==\n\n");
}
END_TEST

START_TEST(utf8_check_refuses_overlong_surrogate_and_cut_forms) {
  ck_assert(utf8_valid((const uint8_t *)"ascii", 5, NULL));
  ck_assert(!utf8_valid((const uint8_t *)"\xc0\xaf", 2, NULL)); /* overlong */
  ck_assert(!utf8_valid((const uint8_t *)"\xed\xa0\x80", 3, NULL)); /* D800 */
  ck_assert(!utf8_valid((const uint8_t *)"\xf4\x90\x80\x80", 4, NULL));
  ck_assert(!utf8_valid((const uint8_t *)"\xe2\x82", 2, NULL)); /* cut */
  ck_assert(!utf8_valid((const uint8_t *)"\x80", 1, NULL));
  ck_assert(utf8_valid((const uint8_t *)"\xf4\x8f\xbf\xbf", 4, NULL));
}
END_TEST

START_TEST(error_event_and_comment) {
  char out[128];
  size_t n =
      sse_event(out, sizeof out, "error",
                "{\"error\":\"SYNOD_ECOMPACTED\",\"first_available\":16}");
  ck_assert_uint_eq(n, strlen(out));
  ck_assert_str_eq(out, "event: error\ndata: "
                        "{\"error\":\"SYNOD_ECOMPACTED\",\"first_available\":"
                        "16}\n\n");
  ck_assert_uint_eq(sse_comment(out, sizeof out, "ping"), 8);
  ck_assert_str_eq(out, ": ping\n\n");
  ck_assert_uint_gt(sse_event(out, 4, "error", "x"), 4); /* needs more */
}
END_TEST

START_TEST(event_with_id_carries_it_and_may_have_no_data) {
  char out[128];
  size_t n = sse_event_id(out, sizeof out, "delete", "17.3", "{\"key\":\"a\"}");
  ck_assert_uint_eq(n, strlen(out));
  ck_assert_str_eq(out, "event: delete\nid: 17.3\ndata: {\"key\":\"a\"}\n\n");
  /* A progress: the id alone, which EventSource keeps without an event. */
  n = sse_event_id(out, sizeof out, "progress", "42", NULL);
  ck_assert_uint_eq(n, strlen(out));
  ck_assert_str_eq(out, "event: progress\nid: 42\n\n");
  ck_assert_uint_eq(sse_event_id(NULL, 0, "progress", "42", NULL), n);
  n = sse_event_id(out, sizeof out, "error", NULL, "{}");
  ck_assert_str_eq(out, "event: error\ndata: {}\n\n");
  ck_assert_uint_eq(n, sse_event(NULL, 0, "error", "{}"));
}
END_TEST

START_TEST(watch_position_ids_resume_right_after_inside_a_revision) {
  char id[SSE_POSITION_MAX];
  uint64_t from = 0;
  uint32_t after = 7;
  sse_position(id, 17, 3);
  ck_assert_str_eq(id, "17.3");
  ck_assert(sse_position_parse(id, strlen(id), &from, &after));
  ck_assert_uint_eq(from, 17); /* event 4 of revision 17 comes next */
  ck_assert_uint_eq(after, 3);
  sse_position(id, 17, 0);
  ck_assert_str_eq(id, "17"); /* all of 17 */
  ck_assert(sse_position_parse(id, strlen(id), &from, &after));
  ck_assert_uint_eq(from, 18);
  ck_assert_uint_eq(after, 0);
  ck_assert(sse_position_parse("17.0", 4, &from, &after));
  ck_assert_uint_eq(from, 18);
  ck_assert(sse_position_parse("0", 1, &from, &after));
  ck_assert_uint_eq(from, 1); /* before anything: from the first */
  sse_position(id, UINT64_MAX / 2, UINT32_MAX);
  ck_assert(sse_position_parse(id, strlen(id), &from, &after));
  ck_assert_uint_eq(from, UINT64_MAX / 2);
  ck_assert_uint_eq(after, UINT32_MAX);
}
END_TEST

START_TEST(watch_position_parse_refuses_what_it_did_not_write) {
  static const char *const bad[] = {
      "",    ".",   "3.",           ".3",
      "x",   "3.x", "3.1.2",        "-1",
      "0.2", " 3",  "3.4294967296", "12345678901234567890"};
  uint64_t from = 5;
  uint32_t after = 6;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ck_assert_msg(!sse_position_parse(bad[i], strlen(bad[i]), &from, &after),
                  "'%s' parsed", bad[i]);
  }
  ck_assert_uint_eq(from, 5); /* untouched */
  ck_assert_uint_eq(after, 6);
}
END_TEST

int main(void) {
  Suite *s = suite_create("sse");
  TCase *tc = tcase_create("sse");
  tcase_add_test(tc, one_line_message_is_one_data_line_with_its_offset_as_id);
  tcase_add_test(tc, multi_line_message_is_split_and_rejoined_byte_for_byte);
  tcase_add_test(tc, empty_message_is_one_empty_data_line);
  tcase_add_test(tc, utf8_message_is_sent_as_is);
  tcase_add_test(tc, binary_message_is_base64_after_event_base64);
  tcase_add_test(tc,
                 carriage_return_goes_base64_since_clients_read_it_as_a_break);
  tcase_add_test(tc, utf8_check_refuses_overlong_surrogate_and_cut_forms);
  tcase_add_test(tc, error_event_and_comment);
  tcase_add_test(tc, event_with_id_carries_it_and_may_have_no_data);
  tcase_add_test(tc, watch_position_ids_resume_right_after_inside_a_revision);
  tcase_add_test(tc, watch_position_parse_refuses_what_it_did_not_write);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
