
/*
 * Copyright (C) ngx_support_agent authors
 *
 * sa_llm: request building (read back with yajl), streamed and whole
 * responses with the provider variations of protocols.md (a), error bodies
 * and retry hints.
 */


#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "tap.h"
#include "sa_llm.h"


/* request building */


static yajl_val
get(yajl_val v, const char *a, const char *b)
{
    const char  *path[3] = { a, b, NULL };

    return yajl_tree_get(v, path, yajl_t_any);
}


static const char *
get_str(yajl_val v, const char *a, const char *b)
{
    v = get(v, a, b);

    return YAJL_IS_STRING(v) ? v->u.string : NULL;
}


static yajl_val
message(yajl_val root, size_t i)
{
    yajl_val  msgs;

    msgs = get(root, "messages", NULL);

    if (!YAJL_IS_ARRAY(msgs) || i >= msgs->u.array.len) {
        return NULL;
    }

    return msgs->u.array.values[i];
}


static void
test_build(void)
{
    int               rc;
    char             *out, errbuf[128];
    size_t            out_len;
    yajl_val          root, v;
    sa_msg_t          msgs[4];
    sa_llm_params_t   p;

    static const char  extra[] = "{\"tools\": [{\"type\":\"function\"}],"
                                 " \"tool_choice\": \"auto\"}";

    memset(msgs, 0, sizeof(msgs));
    msgs[0].role = SA_ROLE_USER;
    msgs[0].content = "What is the refund window for EU orders?";
    msgs[0].content_len = strlen(msgs[0].content);
    msgs[1].role = SA_ROLE_ASSISTANT;
    msgs[1].content = "";
    msgs[1].tool_calls_json =
        "[{\"id\": \"call_abc123\", \"type\": \"function\",\n"
        " \"function\": {\"name\": \"search_docs\", \"arguments\": "
        "\"{\\\"query\\\":\\\"refund window EU\\\"}\"}}]";
    msgs[2].role = SA_ROLE_TOOL;
    msgs[2].content = "[1] EU customers may return items within 30 days.";
    msgs[2].content_len = strlen(msgs[2].content);
    msgs[2].tool_call_id = "call_abc123";
    msgs[3].role = SA_ROLE_ASSISTANT;
    msgs[3].content = "Within 30 days \"quoted\"\n\xc3\xa9";
    msgs[3].content_len = strlen(msgs[3].content);

    memset(&p, 0, sizeof(p));
    p.model = "gpt-4o-mini";
    p.system_prompt = "You answer from the provided context.XXX";
    p.system_prompt_len = 37;
    p.max_tokens = 512;
    p.max_tokens_field = "max_completion_tokens";
    p.temperature = 0.2;
    p.stream = 1;

    rc = sa_llm_request_build(&p, msgs, 4, &out, &out_len);
    is_int(rc, SA_OK, "build a tool round");
    is_int(strlen(out), out_len, "NUL-terminated, length agrees");

    root = yajl_tree_parse(out, errbuf, sizeof(errbuf));
    ok(YAJL_IS_OBJECT(root), "the body is a JSON object");

    is_str(get_str(root, "model", NULL), "gpt-4o-mini", "model");
    is_str(get_str(message(root, 0), "role", NULL), "system",
           "the system prompt comes first");
    is_str(get_str(message(root, 0), "content", NULL),
           "You answer from the provided context.",
           "system prompt taken by length");
    is_str(get_str(message(root, 1), "role", NULL), "user", "then user");
    is_str(get_str(message(root, 2), "role", NULL), "assistant",
           "then assistant");
    ok(YAJL_IS_NULL(get(message(root, 2), "content", NULL)),
       "assistant with tool calls and no text: content null");
    is_str(get_str(get(message(root, 2), "tool_calls", NULL)
                   ->u.array.values[0], "function", "name"),
           "search_docs", "tool_calls inserted as JSON");
    ok(strstr(out, "\"tool_calls\":[{\"id\":\"call_abc123\",\"type\":"
              "\"function\",\"function\":{\"name\":\"search_docs\"") != NULL,
       "and minified");
    is_str(get_str(message(root, 3), "role", NULL), "tool", "then tool");
    is_str(get_str(message(root, 3), "tool_call_id", NULL), "call_abc123",
           "tool_call_id");
    is_str(get_str(message(root, 4), "content", NULL),
           "Within 30 days \"quoted\"\n\xc3\xa9", "text survives escaping");
    ok(get(message(root, 4), "tool_calls", NULL) == NULL,
       "no tool_calls on a plain assistant message");
    ok(message(root, 5) == NULL, "5 messages");

    v = get(root, "max_completion_tokens", NULL);
    ok(YAJL_IS_INTEGER(v) && YAJL_GET_INTEGER(v) == 512,
       "max_completion_tokens");
    ok(get(root, "max_tokens", NULL) == NULL, "not max_tokens too");
    ok(strstr(out, "\"temperature\":0.2") != NULL, "temperature 0.2 short");
    ok(YAJL_IS_TRUE(get(root, "stream", NULL)), "stream true");
    ok(YAJL_IS_TRUE(get(root, "stream_options", "include_usage")),
       "stream_options.include_usage true");

    yajl_tree_free(root);
    free(out);

    p.stream = 0;
    p.temperature = -1;
    p.max_tokens_field = "max_tokens";
    p.system_prompt = NULL;
    p.system_prompt_len = 0;

    rc = sa_llm_request_build(&p, msgs, 1, &out, &out_len);
    is_int(rc, SA_OK, "build without stream");
    root = yajl_tree_parse(out, NULL, 0);
    is_str(get_str(message(root, 0), "role", NULL), "user",
           "no system prompt: the user first");
    ok(get(root, "stream", NULL) == NULL, "no stream key");
    ok(get(root, "stream_options", NULL) == NULL, "no stream_options");
    ok(get(root, "temperature", NULL) == NULL, "temperature < 0: omitted");
    ok(YAJL_IS_INTEGER(get(root, "max_tokens", NULL)), "max_tokens");
    yajl_tree_free(root);
    free(out);

    p.max_tokens = 0;
    p.temperature = 0;
    rc = sa_llm_request_build(&p, msgs, 1, &out, &out_len);
    ok(rc == SA_OK && strstr(out, "max_tokens") == NULL,
       "max_tokens 0: omitted");
    ok(strstr(out, "\"temperature\":0") != NULL, "temperature 0 is sent");
    free(out);

    rc = sa_llm_request_build_ex(&p, msgs, 1, extra, sizeof(extra) - 1,
                                 &out, &out_len);
    is_int(rc, SA_OK, "build with extra members");
    root = yajl_tree_parse(out, NULL, 0);
    is_str(get_str(root, "tool_choice", NULL), "auto", "extra: tool_choice");
    ok(YAJL_IS_ARRAY(get(root, "tools", NULL)), "extra: tools");
    yajl_tree_free(root);
    free(out);

    rc = sa_llm_request_build_ex(&p, msgs, 1, "{\"model\":\"x\"}", 13, &out,
                                 &out_len);
    ok(rc == SA_INVALID && out == NULL, "extra may not override model");
    rc = sa_llm_request_build_ex(&p, msgs, 1, "[1]", 3, &out, &out_len);
    is_int(rc, SA_INVALID, "extra must be an object");

    msgs[0].content = "caf\xe9";
    msgs[0].content_len = 4;
    out = (char *) 1;
    rc = sa_llm_request_build(&p, msgs, 1, &out, &out_len);
    ok(rc == SA_INVALID && out == NULL && out_len == 0,
       "invalid UTF-8 in a message: SA_INVALID, nothing out");
    msgs[0].content = "ok";
    msgs[0].content_len = 2;

    msgs[2].tool_call_id = NULL;
    rc = sa_llm_request_build(&p, msgs, 3, &out, &out_len);
    is_int(rc, SA_INVALID, "a tool message without tool_call_id");
    msgs[2].tool_call_id = "call_abc123";

    msgs[1].tool_calls_json = "[{\"id\":";
    rc = sa_llm_request_build(&p, msgs, 2, &out, &out_len);
    is_int(rc, SA_INVALID, "tool_calls_json that is not JSON");
    msgs[1].tool_calls_json = "{\"id\":1}";
    rc = sa_llm_request_build(&p, msgs, 2, &out, &out_len);
    is_int(rc, SA_INVALID, "tool_calls_json that is not an array");
    msgs[1].tool_calls_json = NULL;

    rc = sa_llm_request_build(&p, msgs, 0, &out, &out_len);
    is_int(rc, SA_INVALID, "no messages at all");

    p.model = NULL;
    rc = sa_llm_request_build(&p, msgs, 1, &out, &out_len);
    is_int(rc, SA_INVALID, "no model");
}


/* streams */


typedef struct {
    char    text[4096];
    size_t  len;
    int     calls;
    int     stop_at;     /* return 42 on this call (1-based) */
} deltas_t;


static int
on_delta(void *data, const char *text, size_t len)
{
    deltas_t  *d = data;

    d->calls++;

    if (d->len + len < sizeof(d->text)) {
        memcpy(d->text + d->len, text, len);
        d->len += len;
        d->text[d->len] = '\0';
    }

    if (d->stop_at && d->calls == d->stop_at) {
        return 42;
    }

    return 0;
}


/* feeds in pieces (step 0: random sizes), exact-size copies for ASan */

static int
feed(sa_llm_stream_t *s, const char *in, size_t len, size_t step)
{
    int     rc;
    size_t  off, n;
    char   *piece;

    rc = SA_OK;

    for (off = 0; off < len; off += n) {
        n = step ? step : (size_t) (1 + rand() % 40);

        if (n > len - off) {
            n = len - off;
        }

        piece = malloc(n);
        memcpy(piece, in + off, n);
        rc = sa_llm_stream_feed(s, piece, n);
        free(piece);

        if (rc != SA_OK) {
            break;
        }
    }

    return rc;
}


#define FEED(s, str, step)  feed(s, str, sizeof(str) - 1, step)


static const char  tool_stream[] =
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\","
    "\"created\":1700000000,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":"
    "0,\"delta\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{"
    "\"index\":0,\"id\":\"call_abc123\",\"type\":\"function\",\"function\":{"
    "\"name\":\"search_docs\",\"arguments\":\"\"}}]},\"logprobs\":null,"
    "\"finish_reason\":null}],\"usage\":null}\n"
    "\n"
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\","
    "\"created\":1700000000,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":"
    "0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
    "\"{\\\"query\\\":\"}}]},\"logprobs\":null,\"finish_reason\":null}],"
    "\"usage\":null}\n"
    "\n"
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\","
    "\"created\":1700000000,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":"
    "0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
    "\"\\\"refund EU\\\"}\"}}]},\"logprobs\":null,\"finish_reason\":null}],"
    "\"usage\":null}\n"
    "\n"
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\","
    "\"created\":1700000000,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":"
    "0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"tool_calls\"}],"
    "\"usage\":null}\n"
    "\n"
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\","
    "\"created\":1700000000,\"model\":\"gpt-4o-mini\",\"choices\":[],"
    "\"usage\":{\"prompt_tokens\":120,\"completion_tokens\":18,"
    "\"total_tokens\":138}}\n"
    "\n"
    "data: [DONE]\n"
    "\n";


#define CHUNK(delta, finish)                                                 \
    "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1," \
    "\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":" delta             \
    ",\"finish_reason\":" finish "}]}\n\n"

static const char  text_stream[] =
    CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null")
    CHUNK("{\"content\":\"Hel\"}", "null")
    CHUNK("{\"content\":\"lo \\u00e9\"}", "null")
    CHUNK("{\"content\":null}", "null")
    CHUNK("{}", "\"stop\"")
    "data: [DONE]\n\n";


static void
check_tool_stream(sa_llm_stream_t *s, const char *how)
{
    char  name[128];

    snprintf(name, sizeof(name), "%s: one tool call", how);
    is_int(s->n_tool_calls, 1, name);

    if (s->n_tool_calls != 1) {
        return;
    }

    snprintf(name, sizeof(name), "%s: id", how);
    is_str(s->tool_calls[0].id, "call_abc123", name);
    snprintf(name, sizeof(name), "%s: name", how);
    is_str(s->tool_calls[0].name, "search_docs", name);
    snprintf(name, sizeof(name), "%s: arguments joined", how);
    is_str(s->tool_calls[0].arguments, "{\"query\":\"refund EU\"}", name);
    snprintf(name, sizeof(name), "%s: finish_reason, usage, complete", how);
    ok(strcmp(s->finish_reason, "tool_calls") == 0
       && s->prompt_tokens == 120 && s->completion_tokens == 18
       && s->tool_calls[0].index == 0 && s->content_len == 0
       && s->content[0] == '\0' && sa_llm_stream_complete(s), "%s", name);
}


static void
test_official(void)
{
    int               rc, seed, good;
    deltas_t          d;
    sa_llm_stream_t   s;

    memset(&d, 0, sizeof(d));
    sa_llm_stream_init(&s, 65536, on_delta, &d);
    ok(s.content != NULL && s.content[0] == '\0' && s.prompt_tokens == -1
       && s.completion_tokens == -1 && !s.done && !s.failed,
       "fresh stream state");
    ok(!sa_llm_stream_complete(&s), "not complete before anything");
    rc = FEED(&s, tool_stream, sizeof(tool_stream));
    is_int(rc, SA_OK, "tool-call stream in one piece");
    check_tool_stream(&s, "whole");
    is_int(d.calls, 0, "no content deltas for a tool call");
    sa_llm_stream_free(&s);

    sa_llm_stream_init(&s, 65536, on_delta, &d);
    rc = FEED(&s, tool_stream, 1);
    is_int(rc, SA_OK, "tool-call stream byte by byte");
    check_tool_stream(&s, "byte by byte");
    sa_llm_stream_free(&s);

    good = 1;

    for (seed = 1; seed <= 200 && good; seed++) {
        srand(seed);
        sa_llm_stream_init(&s, 65536, on_delta, &d);
        rc = FEED(&s, tool_stream, 0);

        good = rc == SA_OK && s.n_tool_calls == 1
               && strcmp(s.tool_calls[0].arguments,
                         "{\"query\":\"refund EU\"}") == 0
               && sa_llm_stream_complete(&s) && s.prompt_tokens == 120;

        sa_llm_stream_free(&s);
    }

    ok(good, "200 random splits give the same result");

    memset(&d, 0, sizeof(d));
    sa_llm_stream_init(&s, 65536, on_delta, &d);
    rc = FEED(&s, text_stream, 7);
    is_int(rc, SA_OK, "text stream");
    is_str(s.content, "Hello \xc3\xa9", "content accumulated");
    is_int(s.content_len, 8, "content_len");
    is_str(d.text, "Hello \xc3\xa9", "deltas carry the same text");
    is_int(d.calls, 2, "one delta per non-empty piece");
    is_str(s.finish_reason, "stop", "finish_reason stop");
    ok(s.n_tool_calls == 0 && s.prompt_tokens == -1,
       "no tool calls, usage unknown");
    ok(sa_llm_stream_complete(&s), "complete");
    ok(!sa_sse_parser_pending(&s.sse), "nothing pending");
    sa_llm_stream_free(&s);
}


/* one whole stream; returns the feed's result, the stream stays set up */

static int
stream_of(sa_llm_stream_t *s, deltas_t *d, const char *in, size_t len)
{
    memset(d, 0, sizeof(deltas_t));
    sa_llm_stream_init(s, 65536, on_delta, d);

    return feed(s, in, len, 5);
}


#define STREAM(s, d, str)  stream_of(s, d, str, sizeof(str) - 1)


static void
test_variations(void)
{
    int               rc;
    deltas_t          d;
    sa_llm_stream_t   s;

    rc = STREAM(&s, &d,
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},"
        "\"finish_reason\":null}]}\r\n\r\n"
        "data:{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"b\"}}]}\r\n"
        "\r\n"
        ": OPENROUTER PROCESSING\r\n\r\n"
        ":\n\n"
        "data: {\"choices\":[{\"delta\":{\"content\":\"c\"},"
        "\"finish_reason\":\"stop\",\"native_finish_reason\":\"STOP\"}],"
        "\"provider\":\"X\",\"obfuscation\":\"zz\",\"system_fingerprint\":"
        "\"fp\",\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3,"
        "\"total_tokens\":8}}\r\n\r\n"
        "data: [DONE]\r\n\r\n");
    is_int(rc, SA_OK, "CRLF, data: without space, comments, extra fields");
    is_str(s.content, "abc", "their text");
    ok(s.prompt_tokens == 5 && s.completion_tokens == 3,
       "usage in a chunk that also has choices (OpenRouter)");
    ok(sa_llm_stream_complete(&s), "complete");
    sa_llm_stream_free(&s);

    rc = STREAM(&s, &d,
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":"
        "\"thinking...\",\"content\":\"\"}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\","
        "\"refusal\":null}}]}\n\n"
        "data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"other\"}}]}"
        "\n\n"
        "data: [DONE]\n\n");
    is_int(rc, SA_OK, "reasoning_content, content \"\", a second choice");
    is_str(s.content, "x", "only the content of choice 0");
    is_int(d.calls, 1, "\"\" and null give no delta");
    sa_llm_stream_free(&s);

    rc = STREAM(&s, &d,
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"id\":\"g1\","
        "\"type\":\"function\",\"function\":{\"name\":\"search_docs\","
        "\"arguments\":\"{\\\"q\\\":\"}}]}}]}\n\n"
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"function\":{"
        "\"arguments\":\"1}\"}}]}}]}\n\n"
        "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"tool_calls\"}]}"
        "\n\ndata: [DONE]\n\n");
    is_int(rc, SA_OK, "tool call without index (Gemini)");
    ok(s.n_tool_calls == 1 && strcmp(s.tool_calls[0].arguments,
       "{\"q\":1}") == 0 && s.tool_calls[0].index == 0,
       "fragments without index or id continue the open call");
    sa_llm_stream_free(&s);

    rc = STREAM(&s, &d,
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"id\":\"a\","
        "\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}},{\"id\":\"b\","
        "\"function\":{\"name\":\"g\",\"arguments\":\"{\\\"x\\\":1}\"}}]}}]}"
        "\n\ndata: [DONE]\n\n");
    is_int(rc, SA_OK, "two whole calls without index, by id (Ollama)");
    ok(s.n_tool_calls == 2
       && strcmp(s.tool_calls[0].name, "f") == 0
       && strcmp(s.tool_calls[1].name, "g") == 0
       && strcmp(s.tool_calls[1].arguments, "{\"x\":1}") == 0
       && s.tool_calls[0].index == 0 && s.tool_calls[1].index == 1,
       "two calls, indexes 0 and 1");
    sa_llm_stream_free(&s);

    rc = STREAM(&s, &d,
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":1,"
        "\"id\":\"c1\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}"
        "\n\n"
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":1,"
        "\"function\":{\"arguments\":\"{}\"}}]}}]}\n\ndata: [DONE]\n\n");
    is_int(rc, SA_OK, "first call with index 1");
    ok(s.n_tool_calls == 1 && s.tool_calls[0].index == 1
       && strcmp(s.tool_calls[0].arguments, "{}") == 0,
       "kept under index 1");
    sa_llm_stream_free(&s);

    rc = STREAM(&s, &d,
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,"
        "\"id\":\"s1\",\"type\":\"function\",\"function\":{\"arguments\":"
        "\"{\\\"a\\\"\"}}]}}]}\n\n"
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,"
        "\"function\":{\"arguments\":\":2}\"}}]}}]}\n\n"
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,"
        "\"function\":{\"name\":\"late_name\"}}]}}]}\n\n"
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,"
        "\"function\":{\"name\":\"late_name\"}}]}}]}\n\n"
        "data: [DONE]\n\n");
    is_int(rc, SA_OK, "name after the arguments (SGLang)");
    ok(s.n_tool_calls == 1 && s.tool_calls[0].name != NULL
       && strcmp(s.tool_calls[0].name, "late_name") == 0
       && strcmp(s.tool_calls[0].arguments, "{\"a\":2}") == 0,
       "name set late, once; arguments whole");
    sa_llm_stream_free(&s);

    rc = STREAM(&s, &d,
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":["
        "{\"index\":0,\"id\":\"p0\",\"function\":{\"name\":\"f\","
        "\"arguments\":\"[\"}},"
        "{\"index\":1,\"id\":\"p1\",\"function\":{\"name\":\"g\","
        "\"arguments\":\"(\"}}]}}]}\n\n"
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":1,"
        "\"function\":{\"arguments\":\")\"}}]}}]}\n\n"
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,"
        "\"function\":{\"arguments\":\"]\"}}]}}]}\n\n"
        "data: [DONE]\n\n");
    is_int(rc, SA_OK, "parallel calls interleaved by index");
    ok(s.n_tool_calls == 2 && strcmp(s.tool_calls[0].arguments, "[]") == 0
       && strcmp(s.tool_calls[1].arguments, "()") == 0,
       "each call got its own fragments");
    sa_llm_stream_free(&s);

    rc = STREAM(&s, &d,
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,"
        "\"id\":\"r1\",\"function\":{\"name\":\"f\",\"arguments\":\"1\"}}]}}]}"
        "\n\n"
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,"
        "\"id\":\"r2\",\"function\":{\"name\":\"g\",\"arguments\":\"2\"}}]}}]}"
        "\n\n"
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,"
        "\"function\":{\"arguments\":\"3\"}}]}}]}\n\n"
        "data: [DONE]\n\n");
    is_int(rc, SA_OK, "an index reused with a new id");
    ok(s.n_tool_calls == 2 && strcmp(s.tool_calls[0].arguments, "1") == 0
       && strcmp(s.tool_calls[1].arguments, "23") == 0
       && s.tool_calls[0].index != s.tool_calls[1].index,
       "two calls, unique indexes, later fragments to the latest");
    sa_llm_stream_free(&s);

    rc = STREAM(&s, &d,
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,"
        "\"id\":\"o1\",\"function\":{\"name\":\"f\",\"arguments\":"
        "{\"city\":\"Paris\",\"n\":[1,2.5]}}}]}}]}\n\n"
        "data: [DONE]\n\n");
    is_int(rc, SA_OK, "arguments as a JSON object");
    ok(s.n_tool_calls == 1 && strcmp(s.tool_calls[0].arguments,
       "{\"city\":\"Paris\",\"n\":[1,2.5]}") == 0, "serialized to a string");
    sa_llm_stream_free(&s);

    rc = STREAM(&s, &d,
        "data: {\"choices\":[{\"delta\":{\"content\":\"x\\udc00y\"}}]}\n\n"
        "data: [DONE]\n\n");
    is_int(rc, SA_OK, "an unpaired surrogate escape in content");
    is_str(s.content, "x???y", "becomes '?', the content stays UTF-8");
    sa_llm_stream_free(&s);

    rc = STREAM(&s, &d,
        "event: message\ndata: {\"choices\":[{\"delta\":{\"content\":\"n\"}}]}"
        "\n\ndata: \n\n"
        "data:{\"choices\":[{\"message\":{\"content\":\"m\"}}]}\n\n"
        "data: [DONE]\n\n");
    is_int(rc, SA_OK, "named event, empty data, message in place of delta");
    is_str(s.content, "nm", "all text taken");
    sa_llm_stream_free(&s);

    rc = STREAM(&s, &d,
        "data: {\"error\":null,\"choices\":[{\"delta\":{\"content\":\"a\"}}]}"
        "\n\n"
        "data: {\"error\":{},\"choices\":[{\"delta\":{\"content\":\"b\"}}]}"
        "\n\n"
        "data: {\"error\":\"\",\"choices\":[{\"delta\":{\"content\":\"c\"}}]}"
        "\n\n"
        "data: [DONE]\n\n");
    ok(rc == SA_OK && sa_llm_stream_complete(&s)
       && strcmp(s.content, "abc") == 0,
       "\"error\": null, {} or \"\" is no error");
    sa_llm_stream_free(&s);

    rc = STREAM(&s, &d,
        "data: {\"choices\":[{\"delta\":{\"refusal\":\"I can't help\"}}]}\n\n"
        "data: [DONE]\n\n");
    is_str(s.content, "I can't help", "a refusal is shown as text");
    sa_llm_stream_free(&s);
}


static void
test_failures(void)
{
    int               rc;
    deltas_t          d;
    sa_llm_stream_t   s;

    rc = STREAM(&s, &d,
        CHUNK("{\"content\":\"partial\"}", "null")
        "data: {\"error\":{\"message\":\"The server had an error\","
        "\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n"
        CHUNK("{\"content\":\"more\"}", "null")
        "data: [DONE]\n\n");
    is_int(rc, SA_ERROR, "mid-stream error payload");
    ok(s.failed && !sa_llm_stream_complete(&s), "failed, not complete");
    is_str(s.error, "The server had an error", "its message");
    is_str(s.content, "partial", "text before the error is kept");
    is_int(sa_llm_stream_feed(&s, "data: [DONE]\n\n", 14), SA_ERROR,
           "later feeds keep returning the error");
    ok(!s.done, "and do not parse");
    sa_llm_stream_free(&s);

    rc = STREAM(&s, &d,
        "data: {\"error\":{\"object\":\"error\",\"message\":\"vLLM broke\","
        "\"type\":\"BadRequestError\",\"param\":null,\"code\":400}}\n\n");
    ok(rc == SA_ERROR && strcmp(s.error, "vLLM broke (400)") == 0,
       "vLLM error chunk with a numeric code: %s", s.error);
    sa_llm_stream_free(&s);

    rc = STREAM(&s, &d,
        "data: {\"object\":\"error\",\"message\":\"old vLLM\","
        "\"code\":500}\n\n");
    ok(rc == SA_ERROR && strcmp(s.error, "old vLLM (500)") == 0,
       "old vLLM error shape: %s", s.error);
    sa_llm_stream_free(&s);

    rc = STREAM(&s, &d,
        "event: error\ndata: {\"error\":{\"message\":\"overloaded\","
        "\"code\":\"overloaded_error\"}}\n\n");
    ok(rc == SA_ERROR && strcmp(s.error, "overloaded (overloaded_error)")
       == 0, "event: error: %s", s.error);
    sa_llm_stream_free(&s);

    rc = STREAM(&s, &d, "event: error\ndata: upstream went away\n\n");
    ok(rc == SA_ERROR && strstr(s.error, "upstream went away") != NULL,
       "event: error with text: %s", s.error);
    sa_llm_stream_free(&s);

    rc = STREAM(&s, &d,
        "data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
        "\"\"},\"finish_reason\":\"error\"}],\"error\":{\"code\":502,"
        "\"message\":\"Provider disconnected\"}}\n\n");
    ok(rc == SA_ERROR && strcmp(s.error, "Provider disconnected (502)") == 0,
       "OpenRouter finish_reason error with an error object: %s", s.error);
    sa_llm_stream_free(&s);

    rc = STREAM(&s, &d,
        CHUNK("{\"content\":\"x\"}", "\"error\""));
    ok(rc == SA_ERROR && s.failed && strcmp(s.finish_reason, "error") == 0,
       "finish_reason error alone: %s", s.error);
    sa_llm_stream_free(&s);

    rc = STREAM(&s, &d,
        CHUNK("{\"content\":\"x\"}", "null")
        "data: {\"choices\": [ {\"delta\": \n\n");
    ok(rc == SA_INVALID && s.failed
       && strncmp(s.error, "stream chunk is not JSON", 24) == 0,
       "invalid JSON chunk: %s", s.error);
    sa_llm_stream_free(&s);

    rc = STREAM(&s, &d, "data: [1,2]\n\n");
    ok(rc == SA_INVALID && s.failed, "a chunk that is not an object: %s",
       s.error);
    sa_llm_stream_free(&s);

    rc = STREAM(&s, &d, "data: hello\n\n");
    ok(rc == SA_INVALID && s.failed, "plain text chunk: %s", s.error);
    sa_llm_stream_free(&s);

    rc = STREAM(&s, &d, CHUNK("{\"content\":\"Hi\"}", "\"stop\""));
    ok(rc == SA_OK && !s.failed && !s.done, "no [DONE]: no failure yet");
    ok(!sa_llm_stream_complete(&s),
       "a stream without [DONE] is truncated despite finish_reason");
    sa_llm_stream_free(&s);

    rc = STREAM(&s, &d, CHUNK("{\"content\":\"Hi\"}", "null")
                        "data: {\"choices\":[{\"del");
    ok(rc == SA_OK && !sa_llm_stream_complete(&s)
       && sa_sse_parser_pending(&s.sse), "cut mid-event: pending");
    sa_llm_stream_free(&s);

    rc = STREAM(&s, &d, CHUNK("{\"content\":\"Hi\"}", "\"stop\"")
                        "data: [DONE]\n\n"
                        "data: {\"error\":{\"message\":\"late\"}}\n\n"
                        "not even SSE \xff\xfe\n\n");
    ok(rc == SA_OK && sa_llm_stream_complete(&s)
       && strcmp(s.content, "Hi") == 0, "anything after [DONE] is ignored");
    is_int(sa_llm_stream_feed(&s, "data: x\n\n", 9), SA_OK,
           "also in later feeds");
    sa_llm_stream_free(&s);

    memset(&d, 0, sizeof(d));
    d.stop_at = 2;
    sa_llm_stream_init(&s, 65536, on_delta, &d);
    rc = FEED(&s, text_stream, sizeof(text_stream));
    ok(rc == 42 && !s.failed && d.calls == 2,
       "on_delta's non-zero return stops the stream and comes back");
    is_int(sa_llm_stream_feed(&s, "data: [DONE]\n\n", 14), 42,
           "and is returned again");
    sa_llm_stream_free(&s);

    memset(&d, 0, sizeof(d));
    sa_llm_stream_init(&s, 64, on_delta, &d);
    rc = FEED(&s, tool_stream, 10);
    ok(rc == SA_INVALID && s.failed
       && strstr(s.error, "larger than 64") != NULL,
       "an event beyond max_event: %s", s.error);
    sa_llm_stream_free(&s);

    sa_llm_stream_init(&s, 0, NULL, NULL);
    rc = FEED(&s, text_stream, 3);
    ok(rc == SA_OK && strcmp(s.content, "Hello \xc3\xa9") == 0,
       "no on_delta callback, no limit");
    sa_llm_stream_free(&s);
    sa_llm_stream_free(&s);
    ok(s.content != NULL && s.content[0] == '\0', "free twice is harmless");
}


static const char  whole_tools[] =
    "{\"id\":\"chatcmpl-abc123\",\"object\":\"chat.completion\",\"created\":"
    "1700000000,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":"
    "0,\"message\":{\"role\":\"assistant\",\"content\":null,\"refusal\":null,"
    "\"tool_calls\":[{\"id\":\"call_abc123\",\"type\":\"function\","
    "\"function\":{\"name\":\"search_docs\",\"arguments\":\"{\\\"query\\\":"
    "\\\"refund window EU\\\"}\"}}]},\"logprobs\":null,\"finish_reason\":"
    "\"tool_calls\"}],\"usage\":{\"prompt_tokens\":82,\"completion_tokens\":"
    "17,\"total_tokens\":99,\"prompt_tokens_details\":{\"cached_tokens\":0}},"
    "\"service_tier\":\"default\",\"system_fingerprint\":\"fp_44709d6fcb\"}";


static const char  whole_text[] =
    "{\"object\":\"chat.completion\",\"choices\":[{\"index\":0,"
    "\"message\":{\"role\":\"assistant\",\"content\":\"Refunds: 30 days."
    "\"},\"finish_reason\":\"stop\",\"stop_reason\":null}]}xx";


static const char  whole_error[] =
    "{\"error\":{\"message\":\"Invalid key\",\"type\":"
    "\"invalid_request_error\",\"code\":\"invalid_api_key\"}}";


static void
test_whole(void)
{
    int               rc;
    deltas_t          d;
    sa_llm_stream_t   s;

    memset(&d, 0, sizeof(d));
    sa_llm_stream_init(&s, 4096, on_delta, &d);
    rc = sa_llm_response_parse(&s, whole_tools, sizeof(whole_tools) - 1);
    is_int(rc, SA_OK, "whole response with a tool call");
    ok(s.n_tool_calls == 1 && strcmp(s.tool_calls[0].id, "call_abc123") == 0
       && strcmp(s.tool_calls[0].name, "search_docs") == 0
       && strcmp(s.tool_calls[0].arguments,
                 "{\"query\":\"refund window EU\"}") == 0,
       "its tool call");
    ok(strcmp(s.finish_reason, "tool_calls") == 0 && s.prompt_tokens == 82
       && s.completion_tokens == 17, "finish_reason and usage");
    ok(sa_llm_stream_complete(&s) && d.calls == 0, "complete, no text");
    sa_llm_stream_free(&s);

    memset(&d, 0, sizeof(d));
    sa_llm_stream_init(&s, 4096, on_delta, &d);
    rc = sa_llm_response_parse(&s, whole_text, sizeof(whole_text) - 3);
    is_int(rc, SA_OK, "whole text response (reads len bytes only)");
    ok(d.calls == 1 && strcmp(d.text, "Refunds: 30 days.") == 0,
       "on_delta once with all the text");
    ok(strcmp(s.content, "Refunds: 30 days.") == 0
       && sa_llm_stream_complete(&s), "content, complete");
    sa_llm_stream_free(&s);

    sa_llm_stream_init(&s, 4096, NULL, NULL);
    rc = sa_llm_response_parse(&s, whole_error, sizeof(whole_error) - 1);
    ok(rc == SA_ERROR && s.failed
       && strcmp(s.error, "Invalid key (invalid_api_key)") == 0,
       "whole error response: %s", s.error);
    sa_llm_stream_free(&s);

    sa_llm_stream_init(&s, 4096, NULL, NULL);
    rc = sa_llm_response_parse(&s, "<html>502</html>", 16);
    ok(rc == SA_INVALID && s.failed, "HTML: %s", s.error);
    sa_llm_stream_free(&s);

    sa_llm_stream_init(&s, 4096, NULL, NULL);
    rc = sa_llm_response_parse(&s, "{\"id\":\"x\"}", 10);
    ok(rc == SA_INVALID && strcmp(s.error, "response has no choices") == 0,
       "an object without choices: %s", s.error);
    sa_llm_stream_free(&s);

    sa_llm_stream_init(&s, 4096, NULL, NULL);
    rc = sa_llm_response_parse(&s, text_stream, sizeof(text_stream) - 1);
    ok(rc == SA_OK && sa_llm_stream_complete(&s)
       && strcmp(s.content, "Hello \xc3\xa9") == 0,
       "an SSE body given as a whole response is parsed as a stream");
    sa_llm_stream_free(&s);

    sa_llm_stream_init(&s, 4096, NULL, NULL);
    rc = sa_llm_response_parse(&s, "", 0);
    ok(rc == SA_INVALID && !sa_llm_stream_complete(&s), "an empty body");
    sa_llm_stream_free(&s);
}


static void
error_case(const char *body, const char *want_msg, const char *want_code,
    const char *name)
{
    char  msg[200], code[48], label[160];

    memset(msg, 'X', sizeof(msg));
    memset(code, 'X', sizeof(code));

    sa_llm_error_parse(body, strlen(body), msg, sizeof(msg), code,
                       sizeof(code));

    snprintf(label, sizeof(label), "%s: message", name);
    is_str(msg, want_msg, label);
    snprintf(label, sizeof(label), "%s: code", name);
    is_str(code, want_code, label);
}


static void
test_error_bodies(void)
{
    char  msg[16], code[4];

    static const char  accents[] =
        "{\"error\":{\"message\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
        "\xc3\xa9\xc3\xa9\xc3\xa9\",\"code\":\"long_code\"}}";

    error_case("{\"error\": {\"message\": \"Rate limit reached for gpt-4o-mini"
               " on tokens per min (TPM). Please try again in 45.19s.\", "
               "\"type\": \"tokens\", \"param\": null, \"code\": "
               "\"rate_limit_exceeded\"}}",
               "Rate limit reached for gpt-4o-mini on tokens per min (TPM). "
               "Please try again in 45.19s.", "rate_limit_exceeded",
               "OpenAI envelope");
    error_case("{\"error\":{\"message\":\"You exceeded your quota\","
               "\"type\":\"insufficient_quota\",\"param\":null,\"code\":"
               "\"insufficient_quota\"}}",
               "You exceeded your quota", "insufficient_quota",
               "insufficient_quota");
    error_case("{\"object\":\"error\",\"message\":\"This model's maximum "
               "context length is 4096 tokens.\",\"type\":"
               "\"BadRequestError\",\"param\":null,\"code\":400}",
               "This model's maximum context length is 4096 tokens.", "400",
               "vLLM old shape");
    error_case("{\"error\":{\"message\":\"The model `x` does not exist.\","
               "\"type\":\"NotFoundError\",\"param\":null,\"code\":404}}",
               "The model `x` does not exist.", "404", "vLLM new shape");
    error_case("{\"error\":{\"message\":\"No auth credentials found\","
               "\"code\":401}}",
               "No auth credentials found", "401", "OpenRouter");
    error_case("{\"error\":{\"message\":\"Provider returned error\","
               "\"code\":429,\"metadata\":{\"raw\":\"upstream rate-limited\","
               "\"provider_name\":\"P\"}}}",
               "Provider returned error: upstream rate-limited", "429",
               "OpenRouter with provider metadata");
    error_case("{\"error\":\"model not loaded\"}", "model not loaded", "",
               "error as a string");
    error_case("{\"detail\":\"Not Found\"}", "Not Found", "",
               "FastAPI detail string");
    error_case("{\"detail\":[{\"loc\":[\"body\"],\"msg\":\"field required\","
               "\"type\":\"value_error.missing\"}]}",
               "field required", "", "FastAPI validation detail");
    error_case("{\"error\":{\"message\":\"line\\none\\ttab\\u0000nul\","
               "\"code\":12.5}}",
               "line one tab", "12.5",
               "control characters replaced, NUL ends, float code");
    error_case("{\"status\":\"down\"}", "{\"status\":\"down\"}", "",
               "unknown JSON: the body itself");
    error_case("Bad Gateway\n", "HTTP error body not JSON: Bad Gateway", "",
               "plain text");
    error_case("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n"
               "<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n"
               "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
               "HTTP error body not JSON: 502 Bad Gateway", "",
               "nginx HTML page: its title");
    error_case("<html><body><h1>Service Unavailable</h1>\n<p>try later</p>"
               "</body></html>",
               "HTTP error body not JSON: Service Unavailable try later", "",
               "HTML without a title: its text");
    error_case("", "HTTP error body not JSON", "", "empty body");
    error_case("  \r\n ", "HTTP error body not JSON", "", "blank body");
    error_case("\xff\xfe garbage \x01", "HTTP error body not JSON: ?? "
               "garbage", "", "binary garbage");

    sa_llm_error_parse(accents, sizeof(accents) - 1, msg, sizeof(msg),
                       code, sizeof(code));
    is_str(msg, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9...",
           "truncated at a character boundary with ...");
    is_str(code, "...", "a short code buffer");

    sa_llm_error_parse(accents, sizeof(accents) - 1, NULL, 0, NULL, 0);
    ok(1, "NULL outputs are fine");
    sa_llm_error_parse(NULL, 10, msg, sizeof(msg), code, sizeof(code));
    is_str(msg, "HTTP error body", "NULL body: the fallback, cut to fit");
}


static long
ra(const char *ms, const char *seconds, long now)
{
    return sa_llm_retry_after_ms(ms, ms ? strlen(ms) : 0, seconds,
                                 seconds ? strlen(seconds) : 0, now);
}


static void
test_retry_after(void)
{
    long  now;

#define RA(ms, seconds, now)  ra(ms, seconds, now)

    now = 1445412450;    /* 30 s before Wed, 21 Oct 2015 07:28:00 GMT */

    is_int(RA("1500", NULL, now), 1500, "retry-after-ms");
    is_int(RA("1500.2", NULL, now), 1501, "retry-after-ms float, rounded up");
    is_int(RA("0", NULL, now), 0, "retry-after-ms 0");
    is_int(RA("250", "20", now), 250, "retry-after-ms wins");
    is_int(RA("soon", "20", now), 20000, "bad retry-after-ms: retry-after");
    is_int(RA(NULL, "20", now), 20000, "seconds");
    is_int(RA(NULL, " 3 ", now), 3000, "seconds with spaces");
    is_int(RA(NULL, "1.5", now), 1500, "float seconds");
    is_int(RA(NULL, "0.0001", now), 1, "a tiny delay is not 0");
    is_int(RA(NULL, "Wed, 21 Oct 2015 07:28:00 GMT", now), 30000,
           "HTTP-date");
    is_int(RA(NULL, "Wednesday, 21-Oct-15 07:28:00 GMT", now), 30000,
           "RFC 850 date");
    is_int(RA(NULL, "Wed Oct 21 07:28:00 2015", now), 30000, "asctime date");
    is_int(RA(NULL, "Wed, 21 Oct 2015 07:27:00 GMT", now), 0,
           "a date in the past: 0");
    is_int(RA(NULL, "99999999999", now), SA_LLM_RETRY_MAX_MS, "capped");
    is_int(RA(NULL, "soon", now), -1, "garbage");
    is_int(RA(NULL, "-5", now), -1, "negative");
    is_int(RA(NULL, "1e3", now), -1, "exponent");
    is_int(RA(NULL, "0x10", now), -1, "hex");
    is_int(RA(NULL, "inf", now), -1, "inf");
    is_int(RA(NULL, "nan", now), -1, "nan");
    is_int(RA(NULL, "1.2.3", now), -1, "two dots");
    is_int(RA(NULL, ".", now), -1, "a dot alone");
    is_int(RA(NULL, "", now), -1, "empty");
    is_int(RA(NULL, NULL, now), -1, "no headers");
    is_int(RA("", "", now), -1, "both empty");
    is_int(sa_llm_retry_after_ms(NULL, 0, "20 junk", 2, now), 20000,
           "only the given length is read");
}


int
main(void)
{
    test_build();
    test_official();
    test_variations();
    test_failures();
    test_whole();
    test_error_bodies();
    test_retry_after();

    return done_testing();
}
