/* tests/unit/test_actionloop.c - the actionloop protocol's lines
 * (runtimes/actionloop.c): byte for byte what a worker reads, and what the
 * pool makes of what a worker writes. */
#include <errno.h>
#include <string.h>

#include "actionloop.h"
#include "check.h"
#include "wjson.h"

static void run_line_bytes(void)
{
    json_t *v = json_pack("{s:i, s:s}", "n", 1, "s", "é\"");
    struct pool_msg m = {.value = v, .namespace = "guest", .action_name = "/guest/pkg/a",
                         .activation_id = "abc", .api_host = "http://127.0.0.1:3233",
                         .deadline_ms = 1700000000123};
    struct plat_buf b = {0};
    CHECK_EQ_INT(al_run_line(&b, &m), 0);
    CHECK_STREQ(b.data, "{\"value\":{\"n\":1,\"s\":\"é\\\"\"},\"namespace\":\"guest\","
                        "\"action_name\":\"/guest/pkg/a\",\"activation_id\":\"abc\","
                        "\"transaction_id\":\"abc\",\"deadline\":1700000000123,"
                        "\"api_host\":\"http://127.0.0.1:3233\"}");
    /* the key only when given (provide-api-key) */
    m.api_key = "u:k";
    b.len = 0;
    CHECK_EQ_INT(al_run_line(&b, &m), 0);
    CHECK(strstr(b.data, ",\"api_host\":\"http://127.0.0.1:3233\",\"api_key\":\"u:k\"}") != NULL);
    /* the value's own size is what the bound counts: {"n":1,"s":"é\""} is 18 bytes */
    m.value_max = 18;
    b.len = 0;
    CHECK_EQ_INT(al_run_line(&b, &m), 0);
    m.value_max = 17;
    size_t before = b.len = 3;
    CHECK_EQ_INT(al_run_line(&b, &m), -EMSGSIZE);
    CHECK_EQ_INT(b.len, before); /* left as it was */
    plat_buf_fini(&b);
    json_decref(v);
}

static void init_line_and_answers(void)
{
    json_t *code = json_string("def main(a): return a");
    struct plat_buf b = {0};
    CHECK_EQ_INT(al_init_line(&b, "/guest/a", NULL, code, false), 0);
    CHECK_STREQ(b.data, "{\"value\":{\"name\":\"/guest/a\",\"main\":\"main\",\"code\":\"def main(a): "
                        "return a\",\"binary\":false,\"env\":{}}}");
    b.len = 0;
    CHECK_EQ_INT(al_init_line(&b, "/guest/a", "run", code, true), 0);
    CHECK(strstr(b.data, "\"main\":\"run\"") && strstr(b.data, "\"binary\":true"));
    plat_buf_fini(&b);
    json_decref(code);

    CHECK(al_is_ack("{\"ok\":true}", 11));
    CHECK(al_is_ack(" { \"ok\" : true } ", 17));
    CHECK(!al_is_ack("{\"ok\":true,\"x\":1}", 17)); /* an ack is exactly that */
    CHECK(!al_is_ack("{\"ok\":false}", 12));
    CHECK(!al_is_ack("{\"ok\":tru", 9));

    char msg[128];
    CHECK_EQ_INT(al_init_answer("{\"ok\":true,\"extra\":1}", 21, msg, sizeof msg), 0);
    CHECK_EQ_INT(al_init_answer("{\"error\":\"SyntaxError\"}", 23, msg, sizeof msg), -EINVAL);
    CHECK_STREQ(msg, "Initialization has failed: SyntaxError");
    CHECK_EQ_INT(al_init_answer("garbage", 7, msg, sizeof msg), -EINVAL);
    CHECK_STREQ(msg, "Initialization has failed: no valid answer");
}

static void results_and_logs(void)
{
    json_t *r = al_result("{\"a\":[1,2]}", 11);
    CHECK(json_is_object(r));
    json_decref(r);
    CHECK(al_result("{\"a\":", 5) == NULL);
    CHECK(al_result("", 0) == NULL);

    struct timespec at = {1700000000, 5};
    json_t *l = al_log_line(&at, "stdout", "hello", 5);
    CHECK_STREQ(json_string_value(l), "2023-11-14T22:13:20.000000005Z stdout: hello");
    json_decref(l);
    l = al_log_line(&at, "stderr", "a\xff" "b", 3); /* not UTF-8 */
    CHECK_STREQ(json_string_value(l), "2023-11-14T22:13:20.000000005Z stderr: a?b");
    json_decref(l);
    /* the pool charges a line AL_LOG_PREFIX_LEN plus its text against limits.logs */
    l = al_log_line(&at, "stdout", "", 0);
    CHECK_EQ_INT((int)json_string_length(l), AL_LOG_PREFIX_LEN);
    json_decref(l);

    char n[160];
    al_truncation_notice(n, sizeof n, 10485760);
    CHECK_STREQ(n, "Logs were truncated because the total bytes size exceeds the limit of "
                   "10485760 bytes.");
}

static const struct check_test tests[] = {
    {"run_line_bytes", run_line_bytes},
    {"init_line_and_answers", init_line_and_answers},
    {"results_and_logs", results_and_logs},
};

CHECK_MAIN(tests)
