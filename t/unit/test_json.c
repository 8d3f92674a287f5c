
/*
 * Copyright (C) ngx_support_agent authors
 *
 * sa_json: chat request parsing (every status) and the JSON builder.
 */


#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "tap.h"
#include "sa_json.h"


static char  err[256];


/* parses a copy of exactly len bytes: ASan catches any read past it */

static sa_req_status_e
parse(const char *body, size_t len, size_t max, sa_chat_request_t *req)
{
    char             *copy;
    sa_req_status_e   st;

    copy = malloc(len ? len : 1);
    memcpy(copy, body, len);

    st = sa_chat_request_parse(copy, len, max, req, err, sizeof(err));

    free(copy);

    return st;
}


#define PARSE(s, max, req)  parse(s, sizeof(s) - 1, max, req)


static sa_req_status_e
status_of(const char *body, size_t len, size_t max)
{
    sa_chat_request_t  req;
    sa_req_status_e    st;

    st = parse(body, len, max, &req);
    sa_chat_request_free(&req);

    return st;
}


#define RAW(w, s)      sa_jw_raw(w, s, sizeof(s) - 1)
#define MEMBERS(w, s)  sa_jw_raw_members(w, s, sizeof(s) - 1)
#define STATUS(s)  status_of(s, sizeof(s) - 1, 4000)
#define STATUS_MAX(s, max)  status_of(s, sizeof(s) - 1, max)


static void
test_request_ok(void)
{
    sa_chat_request_t   req;
    sa_req_status_e     st;
    yajl_val            v;
    const char         *path[] = { "metadata", "page", NULL };

    st = PARSE("{\"message\":\"Where is my order?\","
               "\"conversation_id\":\"conv_1234-abcd\","
               "\"metadata\":{\"page\":\"/orders\"}}", 4000, &req);
    is_int(st, SA_REQ_OK, "a full request");
    is_str(req.message, "Where is my order?", "message");
    is_int(req.message_len, 18, "message_len");
    is_str(req.conversation_id, "conv_1234-abcd", "conversation_id");
    is_int(req.conversation_id_len, 14, "conversation_id_len");
    is_str(err, "", "no error text on success");

    v = yajl_tree_get(req.root, path, yajl_t_string);
    ok(v != NULL && strcmp(v->u.string, "/orders") == 0,
       "the tree is kept for later layers");
    sa_chat_request_free(&req);
    sa_chat_request_free(&req);
    ok(req.root == NULL && req.message == NULL, "free clears, twice is ok");

    st = PARSE("{\"message\":\"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\n\"}",
               4000, &req);
    is_int(st, SA_REQ_OK, "escapes");
    is_str(req.message, "caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\" \n",
           "escapes decoded, surrogate pair joined");
    ok(req.conversation_id == NULL, "conversation_id absent: NULL");
    sa_chat_request_free(&req);

    st = PARSE("{\"message\":\"x\\udc00y\"}", 4000, &req);
    is_int(st, SA_REQ_OK, "unpaired low surrogate escape");
    is_str(req.message, "x???y", "becomes '?' bytes, not invalid UTF-8");
    sa_chat_request_free(&req);

    st = PARSE("\xef\xbb\xbf{\"message\":\"bom\",\"conversation_id\":null}",
               4000, &req);
    is_int(st, SA_REQ_OK, "leading BOM skipped; conversation_id null");
    ok(req.conversation_id == NULL, "null conversation_id: NULL");
    sa_chat_request_free(&req);

    st = PARSE("{\"message\":\"first\",\"message\":\"second\"}", 4000, &req);
    is_str(req.message, "first", "duplicate keys: the first wins");
    sa_chat_request_free(&req);

    st = PARSE(" \n{ \"message\" : \" hi \" } \n", 4000, &req);
    is_int(st, SA_REQ_OK, "white space around tokens");
    is_str(req.message, " hi ", "the message is not trimmed");
    sa_chat_request_free(&req);

    is_int(STATUS("{\"message\":\"\xe2\x80\x8bx\"}"), SA_REQ_OK,
           "a zero width space before text is fine");
}


static void
test_request_errors(void)
{
    sa_chat_request_t   req;
    sa_req_status_e     st;
    char               *big, small[8];
    size_t              i;

    is_int(STATUS("{\"message\":"), SA_REQ_MALFORMED, "cut JSON");
    ok(strncmp(err, "request body is not valid JSON: ", 32) == 0
       && strchr(err, '\n') == NULL, "short one-line reason: %s", err);
    is_int(STATUS(""), SA_REQ_MALFORMED, "empty body");
    is_int(STATUS("{message:\"x\"}"), SA_REQ_MALFORMED, "unquoted key");
    ok(strstr(err, "invalid") != NULL, "yajl's reason: %s", err);
    is_int(STATUS("{\"message\":\"x\"} {}"), SA_REQ_MALFORMED,
           "trailing garbage");
    is_int(STATUS("{\"message\":'x'}"), SA_REQ_MALFORMED, "single quotes");
    is_int(STATUS("{\"message\":\"x\"}\0"), SA_REQ_MALFORMED,
           "a raw NUL after the object");
    is_int(STATUS("{\"message\":\"a\tb\"}"), SA_REQ_MALFORMED,
           "a raw control character in a string");

    is_int(STATUS("[\"message\"]"), SA_REQ_NOT_OBJECT, "an array");
    is_str(err, "request body must be a JSON object", "its error text");
    is_int(STATUS("\"message\""), SA_REQ_NOT_OBJECT, "a string");
    is_int(STATUS("42"), SA_REQ_NOT_OBJECT, "a number");
    is_int(STATUS("null"), SA_REQ_NOT_OBJECT, "null");

    is_int(STATUS("{\"message\":\"caf\xe9\"}"), SA_REQ_BAD_UTF8,
           "Latin-1 inside a JSON string");
    is_str(err, "request body is not valid UTF-8", "its error text");
    is_int(STATUS("{\"message\":\"\xed\xa0\x80\"}"), SA_REQ_BAD_UTF8,
           "a raw surrogate inside a JSON string");
    is_int(STATUS("{\"message\":\"ok\"}\xff"), SA_REQ_BAD_UTF8,
           "a stray byte outside");

    is_int(STATUS("{}"), SA_REQ_NO_MESSAGE, "no message");
    is_str(err, "\"message\" is required", "its error text");
    is_int(STATUS("{\"msg\":\"x\",\"inner\":{\"message\":\"y\"}}"),
           SA_REQ_NO_MESSAGE, "a nested message does not count");

    is_int(STATUS("{\"message\":42}"), SA_REQ_BAD_MESSAGE, "numeric");
    is_str(err, "\"message\" must be a non-empty string", "its error text");
    is_int(STATUS("{\"message\":null}"), SA_REQ_BAD_MESSAGE, "null");
    is_int(STATUS("{\"message\":[\"x\"]}"), SA_REQ_BAD_MESSAGE, "array");
    is_int(STATUS("{\"message\":{\"text\":\"x\"}}"), SA_REQ_BAD_MESSAGE,
           "object");
    is_int(STATUS("{\"message\":true}"), SA_REQ_BAD_MESSAGE, "boolean");
    is_int(STATUS("{\"message\":\"a\\u0000b\"}"), SA_REQ_BAD_MESSAGE,
           "\\u0000 inside the message");
    is_str(err, "\"message\" must not contain NUL characters",
           "its error text");

    is_int(STATUS("{\"message\":\"\"}"), SA_REQ_EMPTY_MESSAGE, "empty");
    is_str(err, "\"message\" must be a non-empty string", "its error text");
    is_int(STATUS("{\"message\":\" \\t\\r\\n \"}"), SA_REQ_EMPTY_MESSAGE,
           "ASCII white space only");
    is_int(STATUS("{\"message\":\"\\u00a0\\u3000\\u2003\\u200b\\ufeff\"}"),
           SA_REQ_EMPTY_MESSAGE, "Unicode spaces only");
    is_int(STATUS("{\"message\":\"\xc2\xa0\xe3\x80\x80\"}"),
           SA_REQ_EMPTY_MESSAGE, "raw Unicode spaces only");

    is_int(STATUS_MAX("{\"message\":\"12345\"}", 5), SA_REQ_OK,
           "exactly max_message bytes");
    is_int(STATUS_MAX("{\"message\":\"123456\"}", 5),
           SA_REQ_MESSAGE_TOO_LONG, "one byte more");
    is_str(err, "\"message\" is longer than 5 bytes", "its error text");
    is_int(STATUS_MAX("{\"message\":\"\xc3\xa9\xc3\xa9\xc3\xa9\"}", 5),
           SA_REQ_MESSAGE_TOO_LONG, "the limit counts bytes, not characters");

    big = malloc(2000000 + 20);
    memcpy(big, "{\"message\":\"", 12);
    memset(big + 12, 'a', 2000000);
    memcpy(big + 12 + 2000000, "\"}", 2);

    st = parse(big, 2000000 + 14, 4000, &req);
    is_int(st, SA_REQ_MESSAGE_TOO_LONG, "a 2 MB message");
    ok(req.message == NULL, "no message kept on failure");
    sa_chat_request_free(&req);

    st = parse(big, 2000000 + 14, 0, &req);
    is_int(st, SA_REQ_OK, "max_message 0: no limit");
    is_int(req.message_len, 2000000, "all of it");
    sa_chat_request_free(&req);
    free(big);

    is_int(STATUS("{\"message\":\"x\",\"conversation_id\":12345678}"),
           SA_REQ_BAD_CONVERSATION_ID, "numeric conversation_id");
    ok(strstr(err, "conversation_id") != NULL, "its error text: %s", err);
    is_int(STATUS("{\"message\":\"x\",\"conversation_id\":\"short\"}"),
           SA_REQ_BAD_CONVERSATION_ID, "7 characters");
    is_int(STATUS("{\"message\":\"x\",\"conversation_id\":\"abcdefgh\"}"),
           SA_REQ_OK, "8 characters");
    is_int(STATUS("{\"message\":\"x\",\"conversation_id\":"
                  "\"0123456789012345678901234567890123456789012345678901"
                  "234567890123\"}"),
           SA_REQ_OK, "64 characters");
    is_int(STATUS("{\"message\":\"x\",\"conversation_id\":"
                  "\"0123456789012345678901234567890123456789012345678901"
                  "2345678901234\"}"),
           SA_REQ_BAD_CONVERSATION_ID, "65 characters");
    is_int(STATUS("{\"message\":\"x\",\"conversation_id\":\"abc/defgh\"}"),
           SA_REQ_BAD_CONVERSATION_ID, "a slash");
    is_int(STATUS("{\"message\":\"x\",\"conversation_id\":\"abcd efgh\"}"),
           SA_REQ_BAD_CONVERSATION_ID, "a space");
    is_int(STATUS("{\"message\":\"x\","
                  "\"conversation_id\":\"abcd\\u0000efgh\"}"),
           SA_REQ_BAD_CONVERSATION_ID, "a \\u0000");
    is_int(STATUS("{\"message\":\"x\",\"conversation_id\":"
                  "\"abcd\xc3\xa9" "efgh\"}"),
           SA_REQ_BAD_CONVERSATION_ID, "a non-ASCII letter");
    is_int(STATUS("{\"message\":\"x\",\"conversation_id\":[\"abcdefgh\"]}"),
           SA_REQ_BAD_CONVERSATION_ID, "an array");

    /* nesting: refused before a tree is built */
    big = malloc(200000);

    for (i = 0; i < 100000; i++) {
        big[i] = '[';
        big[199999 - i] = ']';
    }

    is_int(status_of(big, 200000, 0), SA_REQ_MALFORMED, "100000 levels deep");
    ok(strstr(err, "nested too deeply") != NULL, "its error text: %s", err);
    free(big);

    is_int(STATUS("{\"message\":\"x\",\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
                  "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}"),
           SA_REQ_OK, "32 levels are fine");

    st = sa_chat_request_parse("{}", 2, 0, &req, small, sizeof(small));
    is_int(st, SA_REQ_NO_MESSAGE, "a small error buffer");
    is_int(strlen(small), sizeof(small) - 1, "the text is cut, terminated");
    sa_chat_request_free(&req);

    st = sa_chat_request_parse("[]", 2, 0, &req, NULL, 0);
    is_int(st, SA_REQ_NOT_OBJECT, "no error buffer at all");
    sa_chat_request_free(&req);
}


static const char *
built(sa_jw_t *w)
{
    return sa_jw_buf(w, NULL);
}


static void
test_builder(void)
{
    sa_jw_t     *w;
    size_t       len;
    const char  *out;
    char         deep[300];
    int          i, rc;
    yajl_val     tree;
    static const char  tricky[] = "q\" b\\ \b\f\n\r\t \x01\x1f\x7f </script> "
                                  "\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x80\xa8";
    double       values[] = { 0.1, 1.0 / 3, 1e-300, 123456789.125,
                              DBL_MAX, DBL_MIN, -2.5e-7 };

    w = sa_jw_new();
    ok(w != NULL, "new");
    is_str(built(w), "", "empty at first");
    ok(!sa_jw_complete(w), "not complete");

    rc = sa_jw_open(w);
    rc |= sa_jw_kstr(w, "s", "text", 4);
    rc |= sa_jw_kint(w, "i", -42);
    rc |= sa_jw_kdouble(w, "d", 0.2);
    rc |= sa_jw_kbool(w, "t", 1);
    rc |= sa_jw_kbool(w, "f", 0);
    rc |= sa_jw_knull(w, "z");
    rc |= sa_jw_key(w, "a");
    rc |= sa_jw_array_open(w);
    rc |= sa_jw_int(w, 1);
    rc |= sa_jw_str(w, "x", 1);
    rc |= sa_jw_array_open(w);
    rc |= sa_jw_array_close(w);
    rc |= sa_jw_double(w, 1.0);
    rc |= sa_jw_bool(w, 0);
    rc |= sa_jw_null(w);
    rc |= sa_jw_array_close(w);
    rc |= sa_jw_key(w, "o");
    rc |= sa_jw_open(w);
    rc |= sa_jw_close(w);
    rc |= sa_jw_close(w);
    is_int(rc, SA_OK, "a document of every kind of value");
    out = sa_jw_buf(w, &len);
    is_str(out, "{\"s\":\"text\",\"i\":-42,\"d\":0.2,\"t\":true,\"f\":false,"
           "\"z\":null,\"a\":[1,\"x\",[],1,false,null],\"o\":{}}",
           "compact output");
    is_int(len, strlen(out), "length agrees");
    ok(sa_jw_complete(w), "complete");

    is_int(sa_jw_open(w), SA_INVALID, "a second top-level value: misuse");
    is_str(built(w), out, "the failed call changed nothing");

    sa_jw_reset(w);
    is_str(built(w), "", "reset empties");

    rc = sa_jw_str(w, tricky, sizeof(tricky) - 1);
    is_int(rc, SA_OK, "a string of everything that needs care");
    is_str(built(w), "\"q\\\" b\\\\ \\b\\f\\n\\r\\t \\u0001\\u001f\x7f "
           "</script> \xc3\xa9 \xf0\x9f\x98\x80 \xe2\x80\xa8\"",
           "escaped per RFC 8259, UTF-8 left as it is");

    tree = yajl_tree_parse(built(w), NULL, 0);
    ok(YAJL_IS_STRING(tree) && strcmp(tree->u.string,
       "q\" b\\ \b\f\n\r\t \x01\x1f\x7f </script> \xc3\xa9 "
       "\xf0\x9f\x98\x80 \xe2\x80\xa8") == 0, "yajl reads it back the same");
    yajl_tree_free(tree);

    sa_jw_reset(w);
    rc = sa_jw_str(w, "a\0b", 3);
    is_str(built(w), "\"a\\u0000b\"", "a NUL byte is escaped");

    sa_jw_reset(w);
    sa_jw_open(w);
    sa_jw_kstr(w, "ok", "1", 1);
    is_int(sa_jw_kstr(w, "bad", "caf\xe9", 4), SA_INVALID,
           "invalid UTF-8 value refused");
    is_int(sa_jw_kstr(w, "bad\xff", "x", 1), SA_INVALID,
           "invalid UTF-8 key refused");
    is_int(sa_jw_kstr(w, "bad", "\xed\xa0\x80", 3), SA_INVALID,
           "a surrogate refused");
    is_int(sa_jw_kstr(w, "bad", "\xc0\x80", 2), SA_INVALID,
           "an overlong NUL refused");
    is_int(sa_jw_str(w, "x", 1), SA_INVALID, "a value without a key");
    is_int(sa_jw_array_close(w), SA_INVALID, "closing the wrong kind");
    is_int(sa_jw_kdouble(w, "nan", NAN), SA_INVALID, "NaN refused");
    is_int(sa_jw_kdouble(w, "inf", INFINITY), SA_INVALID,
           "infinity refused");
    is_str(built(w), "{\"ok\":\"1\"", "none of that left a trace");
    is_int(sa_jw_key(w, "k"), SA_OK, "a key");
    is_int(sa_jw_key(w, "k2"), SA_INVALID, "a key after a key");
    is_int(sa_jw_close(w), SA_INVALID, "closing with a key pending");
    is_int(sa_jw_str(w, "v", 1), SA_OK, "its value");
    is_int(sa_jw_close(w), SA_OK, "close");
    is_int(sa_jw_close(w), SA_INVALID, "one close too many");
    is_str(built(w), "{\"ok\":\"1\",\"k\":\"v\"}", "still well-formed");

    sa_jw_reset(w);
    sa_jw_array_open(w);
    is_int(sa_jw_key(w, "k"), SA_INVALID, "a key in an array");
    is_int(sa_jw_close(w), SA_INVALID, "closing an array as an object");
    sa_jw_int(w, LLONG_MIN);
    sa_jw_int(w, LLONG_MAX);
    sa_jw_array_close(w);
    is_str(built(w), "[-9223372036854775808,9223372036854775807]",
           "long long limits");

    sa_jw_reset(w);
    sa_jw_array_open(w);
    sa_jw_double(w, 0.1 + 0.2);
    sa_jw_double(w, 1e300);
    sa_jw_double(w, -0.5);
    sa_jw_double(w, 100);
    sa_jw_double(w, 2.5e-5);
    sa_jw_array_close(w);
    is_str(built(w), "[0.30000000000000004,1e+300,-0.5,100,2.5e-05]",
           "shortest round-trip doubles");

    rc = 1;

    for (i = 0; i < (int) (sizeof(values) / sizeof(values[0])); i++) {
        sa_jw_reset(w);
        sa_jw_double(w, values[i]);

        if (strtod(built(w), NULL) != values[i]) {
            rc = 0;
        }
    }

    ok(rc, "doubles read back exactly");

    sa_jw_reset(w);
    sa_jw_open(w);
    sa_jw_key(w, "raw");
    rc = RAW(w, " [1, 2,\n {\"a b\" : \"c \\\" d\"}, true ] ");
    is_int(rc, SA_OK, "raw value");
    is_int(RAW(w, "1"), SA_INVALID, "raw value without a key");
    sa_jw_key(w, "bad");
    is_int(RAW(w, "[1,"), SA_INVALID, "raw: cut JSON refused");
    is_int(RAW(w, "1 2"), SA_INVALID, "raw: two values refused");
    is_int(RAW(w, "\"\xff\""), SA_INVALID,
           "raw: invalid UTF-8 refused");
    is_int(RAW(w, ""), SA_INVALID, "raw: nothing refused");
    is_int(RAW(w, "-1.5e3"), SA_OK, "raw number");
    rc = MEMBERS(w, "{ \"m\" : [ 1 ] , \"n\":{} }");
    is_int(rc, SA_OK, "raw members");
    is_int(MEMBERS(w, "{}"), SA_OK, "no members");
    is_int(MEMBERS(w, "[1]"), SA_INVALID,
           "members of an array refused");
    sa_jw_close(w);
    is_str(built(w), "{\"raw\":[1,2,{\"a b\":\"c \\\" d\"},true],"
           "\"bad\":-1.5e3,\"m\":[1],\"n\":{}}", "raw inserted minified");

    sa_jw_reset(w);
    sa_jw_array_open(w);
    is_int(MEMBERS(w, "{\"a\":1}"), SA_INVALID,
           "members into an array refused");
    sa_jw_reset(w);
    is_int(RAW(w, "{\"top\" : null}"), SA_OK,
           "raw as the top-level value");
    ok(sa_jw_complete(w), "complete");

    tree = yajl_tree_parse("{\"k\":[1,2.50,\"\\u00e9\\n\",{\"n\":null,"
                           "\"t\":true,\"f\":false}],\"e\":{}}", NULL, 0);
    sa_jw_reset(w);
    is_int(sa_jw_tree(w, tree), SA_OK, "tree");
    is_str(built(w), "{\"k\":[1,2.50,\"\xc3\xa9\\n\",{\"n\":null,"
           "\"t\":true,\"f\":false}],\"e\":{}}", "tree re-emitted");
    yajl_tree_free(tree);

    sa_jw_reset(w);

    for (i = 0; i < 128; i++) {
        if (sa_jw_array_open(w) != SA_OK) {
            break;
        }
    }

    is_int(i, 128, "128 levels");
    is_int(sa_jw_array_open(w), SA_INVALID, "a 129th refused");

    sa_jw_free(w);
    sa_jw_free(NULL);

    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    memcpy(deep + 200, "\"[[[\\\"[\"", 9);
    is_int(sa_json_nesting(deep, 200), 100, "nesting counted");
    is_int(sa_json_nesting(deep + 200, 8), 0,
           "brackets in strings do not count");
    is_int(sa_json_nesting("{\"a\":[{}]}", 10), 3, "mixed nesting");

    tree = sa_json_tree_parse("{\"a\":1}xx", 7, err, sizeof(err));
    ok(YAJL_IS_OBJECT(tree), "tree_parse reads len bytes only");
    yajl_tree_free(tree);

    tree = sa_json_tree_parse("{\"a\":", 5, err, sizeof(err));
    ok(tree == NULL && err[0] && strchr(err, '\n') == NULL,
       "tree_parse error is one line: %s", err);
}


int
main(void)
{
    test_request_ok();
    test_request_errors();
    test_builder();

    return done_testing();
}
