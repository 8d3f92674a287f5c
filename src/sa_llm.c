
/*
 * Copyright (C) ngx_support_agent authors
 */


#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <yajl/yajl_tree.h>

#include "sa_llm.h"
#include "sa_json.h"
#include "sa_utf8.h"


/* a provider index beyond this is not believed to be an index */
#define SA_LLM_MAX_TOOL_INDEX  1024


static int sa_llm_message(sa_jw_t *w, const sa_msg_t *m);
static int sa_llm_extra_check(const char *extra, size_t len);
static int sa_llm_event(void *data, const char *event, size_t event_len,
    const char *payload, size_t len);
static int sa_llm_chunk(sa_llm_stream_t *s, yajl_val root, int whole);
static int sa_llm_choice(sa_llm_stream_t *s, yajl_val choice, int whole);
static int sa_llm_text(sa_llm_stream_t *s, yajl_val v);
static int sa_llm_tool_call(sa_llm_stream_t *s, yajl_val tc);
static sa_llm_tool_call_t *sa_llm_call_find(sa_llm_stream_t *s,
    const char *id, int wire_index);
static sa_llm_tool_call_t *sa_llm_call_add(sa_llm_stream_t *s,
    int wire_index);
static int sa_llm_append(char **buf, size_t *len, size_t *cap,
    const char *p, size_t n);
static int sa_llm_fail(sa_llm_stream_t *s, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int sa_llm_fail_error(sa_llm_stream_t *s, yajl_val root);
static int sa_llm_truthy(yajl_val v);
static yajl_val sa_llm_get(yajl_val obj, const char *key);
static const char *sa_llm_str(yajl_val obj, const char *key);
static int sa_llm_error_tree(yajl_val root, char *msg, size_t msglen,
    char *code, size_t codelen);
static void sa_llm_code(yajl_val v, char *code, size_t codelen);
static void sa_llm_error_text(const char *body, size_t len, char *msg,
    size_t msglen);
static size_t sa_llm_strip_tags(char *dst, const char *src, size_t len);
static const char *sa_llm_find_ci(const char *p, size_t len,
    const char *needle);
static void sa_llm_oneline(char *dst, size_t dstlen, const char *src,
    size_t len);
static int sa_llm_seconds(const char *p, size_t len, double *v);
static long sa_llm_ms(double ms);


/* what content points to before any text: never written to or freed */
static char  sa_llm_no_text[1] = "";


int
sa_llm_request_build(const sa_llm_params_t *p, const sa_msg_t *msgs,
    size_t n, char **out, size_t *out_len)
{
    return sa_llm_request_build_ex(p, msgs, n, NULL, 0, out, out_len);
}


int
sa_llm_request_build_ex(const sa_llm_params_t *p, const sa_msg_t *msgs,
    size_t n, const char *extra_json, size_t extra_len, char **out,
    size_t *out_len)
{
    int          rc;
    size_t       i, len;
    sa_jw_t     *w;
    const char  *buf, *field;
    sa_msg_t     system;

    *out = NULL;
    *out_len = 0;

    if (p->model == NULL
        || (n == 0 && (p->system_prompt == NULL || p->system_prompt_len == 0)))
    {
        return SA_INVALID;
    }

    if (extra_json != NULL) {
        rc = sa_llm_extra_check(extra_json, extra_len);
        if (rc != SA_OK) {
            return rc;
        }
    }

    w = sa_jw_new();
    if (w == NULL) {
        return SA_ERROR;
    }

    rc = sa_jw_open(w);

    if (rc == SA_OK) {
        rc = sa_jw_kstr(w, "model", p->model, strlen(p->model));
    }

    if (rc == SA_OK) {
        rc = sa_jw_key(w, "messages");
    }

    if (rc == SA_OK) {
        rc = sa_jw_array_open(w);
    }

    if (rc == SA_OK && p->system_prompt != NULL && p->system_prompt_len) {
        memset(&system, 0, sizeof(sa_msg_t));
        system.role = SA_ROLE_SYSTEM;
        system.content = (char *) p->system_prompt;
        system.content_len = p->system_prompt_len;

        rc = sa_llm_message(w, &system);
    }

    for (i = 0; rc == SA_OK && i < n; i++) {
        rc = sa_llm_message(w, &msgs[i]);
    }

    if (rc == SA_OK) {
        rc = sa_jw_array_close(w);
    }

    if (rc == SA_OK && p->max_tokens > 0) {
        field = p->max_tokens_field ? p->max_tokens_field : "max_tokens";
        rc = sa_jw_kint(w, field, p->max_tokens);
    }

    if (rc == SA_OK && p->temperature >= 0) {
        rc = sa_jw_kdouble(w, "temperature", p->temperature);
    }

    /* OpenAI answers 400 to stream_options without stream: both or none */
    if (rc == SA_OK && p->stream) {
        rc = sa_jw_kbool(w, "stream", 1);

        if (rc == SA_OK) {
            rc = sa_jw_key(w, "stream_options");
        }

        if (rc == SA_OK) {
            rc = sa_jw_open(w);
        }

        if (rc == SA_OK) {
            rc = sa_jw_kbool(w, "include_usage", 1);
        }

        if (rc == SA_OK) {
            rc = sa_jw_close(w);
        }
    }

    if (rc == SA_OK && extra_json != NULL) {
        rc = sa_jw_raw_members(w, extra_json, extra_len);
    }

    if (rc == SA_OK) {
        rc = sa_jw_close(w);
    }

    if (rc == SA_OK) {
        buf = sa_jw_buf(w, &len);

        *out = malloc(len + 1);

        if (*out == NULL) {
            rc = SA_ERROR;

        } else {
            memcpy(*out, buf, len + 1);
            *out_len = len;
        }
    }

    sa_jw_free(w);

    return rc;
}


static int
sa_llm_message(sa_jw_t *w, const sa_msg_t *m)
{
    int          rc;
    const char  *role, *content, *p;

    if ((unsigned) m->role > SA_ROLE_TOOL
        || (m->content == NULL && m->content_len != 0))
    {
        return SA_INVALID;
    }

    role = sa_role_name(m->role);
    content = m->content ? m->content : "";

    rc = sa_jw_open(w);

    if (rc == SA_OK) {
        rc = sa_jw_kstr(w, "role", role, strlen(role));
    }

    if (rc != SA_OK) {
        return rc;
    }

    if (m->role == SA_ROLE_ASSISTANT && m->tool_calls_json != NULL) {

        for (p = m->tool_calls_json; isspace((unsigned char) *p); p++) {
            /* void */
        }

        if (*p != '[') {
            return SA_INVALID;
        }

        /* a tool round is replayed with "content": null, as received */
        rc = m->content_len ? sa_jw_kstr(w, "content", content,
                                         m->content_len)
                            : sa_jw_knull(w, "content");

        if (rc == SA_OK) {
            rc = sa_jw_key(w, "tool_calls");
        }

        if (rc == SA_OK) {
            rc = sa_jw_raw(w, m->tool_calls_json,
                           strlen(m->tool_calls_json));
        }

    } else {
        rc = sa_jw_kstr(w, "content", content, m->content_len);
    }

    if (rc == SA_OK && m->role == SA_ROLE_TOOL) {
        /* required by the API: the call this message answers */
        if (m->tool_call_id == NULL) {
            return SA_INVALID;
        }

        rc = sa_jw_kstr(w, "tool_call_id", m->tool_call_id,
                        strlen(m->tool_call_id));
    }

    if (rc == SA_OK) {
        rc = sa_jw_close(w);
    }

    return rc;
}


static int
sa_llm_extra_check(const char *extra, size_t len)
{
    size_t     i, k;
    yajl_val   root;
    const char *key;

    static const char  *own[] = {
        "model", "messages", "stream", "stream_options", "temperature",
        "max_tokens", "max_completion_tokens", NULL
    };

    root = sa_json_tree_parse(extra, len, NULL, 0);
    if (root == NULL) {
        return SA_INVALID;
    }

    if (!YAJL_IS_OBJECT(root)) {
        yajl_tree_free(root);
        return SA_INVALID;
    }

    for (i = 0; i < root->u.object.len; i++) {
        key = root->u.object.keys[i];

        for (k = 0; own[k]; k++) {
            if (strcmp(key, own[k]) == 0) {
                yajl_tree_free(root);
                return SA_INVALID;
            }
        }
    }

    yajl_tree_free(root);

    return SA_OK;
}


void
sa_llm_stream_init(sa_llm_stream_t *s, size_t max_event,
    sa_llm_delta_pt on_delta, void *data)
{
    memset(s, 0, sizeof(sa_llm_stream_t));

    s->content = sa_llm_no_text;
    s->prompt_tokens = -1;
    s->completion_tokens = -1;
    s->on_delta = on_delta;
    s->data = data;
    s->rc = SA_OK;

    sa_sse_parser_init(&s->sse, max_event, sa_llm_event, s);
}


int
sa_llm_stream_feed(sa_llm_stream_t *s, const char *buf, size_t len)
{
    int  rc;

    if (s->rc != SA_OK) {
        return s->rc;
    }

    if (s->done) {
        /* the stream is over: whatever follows [DONE] is ignored */
        return SA_OK;
    }

    rc = sa_sse_parser_feed(&s->sse, buf, len);

    if (rc == SA_OK || s->rc != SA_OK) {
        /* fine, or the event handler already recorded why not */
        return rc;
    }

    /* the SSE framing itself failed */

    if (rc == SA_INVALID) {
        return sa_llm_fail(s, SA_INVALID, "SSE event larger than %zu bytes",
                           s->sse.max_event);
    }

    return sa_llm_fail(s, SA_ERROR, "out of memory");
}


int
sa_llm_response_parse(sa_llm_stream_t *s, const char *body, size_t len)
{
    int          rc;
    char         reason[128];
    size_t       i;
    yajl_val     root, error;

    if (s->rc != SA_OK) {
        return s->rc;
    }

    for (i = 0; i < len && isspace((unsigned char) body[i]); i++) {
        /* void */
    }

    /* an event stream sent as if it were a whole response */
    if (len - i >= 5
        && (memcmp(body + i, "data:", 5) == 0 || body[i] == ':'
            || (len - i >= 6 && memcmp(body + i, "event:", 6) == 0)))
    {
        return sa_llm_stream_feed(s, body, len);
    }

    root = sa_json_tree_parse(body, len, reason, sizeof(reason));
    if (root == NULL) {
        return sa_llm_fail(s, SA_INVALID, "response is not JSON: %s",
                           reason);
    }

    if (!YAJL_IS_OBJECT(root)) {
        yajl_tree_free(root);
        return sa_llm_fail(s, SA_INVALID, "response is not a JSON object");
    }

    error = sa_llm_get(root, "error");

    if (!sa_llm_truthy(error)
        && !YAJL_IS_ARRAY(sa_llm_get(root, "choices")))
    {
        /* an error without an "error" key (vLLM's old shape) or junk */
        if (sa_llm_get(root, "message") != NULL) {
            rc = sa_llm_fail_error(s, root);

        } else {
            rc = sa_llm_fail(s, SA_INVALID, "response has no choices");
        }

        yajl_tree_free(root);
        return rc;
    }

    rc = sa_llm_chunk(s, root, 1);

    yajl_tree_free(root);

    if (rc == SA_OK) {
        s->done = 1;
    }

    return rc;
}


int
sa_llm_stream_complete(const sa_llm_stream_t *s)
{
    return s->done && !s->failed;
}


void
sa_llm_stream_free(sa_llm_stream_t *s)
{
    size_t  i;

    if (s->content != sa_llm_no_text) {
        free(s->content);
    }

    for (i = 0; i < s->n_tool_calls; i++) {
        free(s->tool_calls[i].id);
        free(s->tool_calls[i].name);
        free(s->tool_calls[i].arguments);
    }

    free(s->tool_calls);

    sa_sse_parser_free(&s->sse);

    s->content = sa_llm_no_text;
    s->content_len = 0;
    s->content_cap = 0;
    s->tool_calls = NULL;
    s->n_tool_calls = 0;
    s->tool_calls_cap = 0;
    s->last_call = 0;
}


static int
sa_llm_event(void *data, const char *event, size_t event_len,
    const char *payload, size_t len)
{
    int                 rc;
    char                reason[128], msg[200], code[48];
    yajl_val            root;
    sa_llm_stream_t    *s = data;

    if (s->done) {
        return SA_OK;
    }

    if (event_len == 5 && memcmp(event, "error", 5) == 0) {
        sa_llm_error_parse(payload, len, msg, sizeof(msg), code,
                           sizeof(code));

        return sa_llm_fail(s, SA_ERROR, "%s%s%s%s", msg,
                           code[0] ? " (" : "", code, code[0] ? ")" : "");
    }

    while (len && isspace((unsigned char) *payload)) {
        payload++;
        len--;
    }

    if (len == 0) {
        /* "data:" with nothing: a keep-alive of sorts */
        return SA_OK;
    }

    /* the openai SDKs test the prefix only */
    if (len >= 6 && memcmp(payload, "[DONE]", 6) == 0) {
        s->done = 1;
        return SA_OK;
    }

    root = sa_json_tree_parse(payload, len, reason, sizeof(reason));
    if (root == NULL) {
        return sa_llm_fail(s, SA_INVALID, "stream chunk is not JSON: %s",
                           reason);
    }

    if (!YAJL_IS_OBJECT(root)) {
        yajl_tree_free(root);
        return sa_llm_fail(s, SA_INVALID,
                           "stream chunk is not a JSON object");
    }

    rc = sa_llm_chunk(s, root, 0);

    yajl_tree_free(root);

    return rc;
}


/*
 * One chunk of a stream, or a whole response (whole: choices carry
 * "message" instead of "delta").
 */

static int
sa_llm_chunk(sa_llm_stream_t *s, yajl_val root, int whole)
{
    int          rc;
    size_t       i;
    yajl_val     error, choices, usage, v;
    const char  *object;

    /* a mid-stream error can come with HTTP 200, as a chunk */
    error = sa_llm_get(root, "error");
    object = sa_llm_str(root, "object");

    if (sa_llm_truthy(error)
        || (object != NULL && strcmp(object, "error") == 0))
    {
        return sa_llm_fail_error(s, root);
    }

    choices = sa_llm_get(root, "choices");

    if (YAJL_IS_ARRAY(choices)) {
        for (i = 0; i < choices->u.array.len; i++) {
            rc = sa_llm_choice(s, choices->u.array.values[i], whole);
            if (rc != SA_OK) {
                return rc;
            }
        }
    }

    /* with include_usage the totals come in a chunk of their own, with
       "choices": [] (OpenAI) or not (OpenRouter); "usage": null before */
    usage = sa_llm_get(root, "usage");

    if (YAJL_IS_OBJECT(usage)) {
        v = sa_llm_get(usage, "prompt_tokens");
        if (YAJL_IS_INTEGER(v) && YAJL_GET_INTEGER(v) >= 0) {
            s->prompt_tokens = (long) YAJL_GET_INTEGER(v);
        }

        v = sa_llm_get(usage, "completion_tokens");
        if (YAJL_IS_INTEGER(v) && YAJL_GET_INTEGER(v) >= 0) {
            s->completion_tokens = (long) YAJL_GET_INTEGER(v);
        }
    }

    return SA_OK;
}


static int
sa_llm_choice(sa_llm_stream_t *s, yajl_val choice, int whole)
{
    int          rc;
    size_t       i;
    yajl_val     index, delta, tool_calls;
    const char  *finish;

    if (!YAJL_IS_OBJECT(choice)) {
        return SA_OK;
    }

    /* we ask for one choice (n = 1): others are not ours */
    index = sa_llm_get(choice, "index");
    if (YAJL_IS_INTEGER(index) && YAJL_GET_INTEGER(index) != 0) {
        return SA_OK;
    }

    delta = sa_llm_get(choice, whole ? "message" : "delta");
    if (delta == NULL) {
        delta = sa_llm_get(choice, whole ? "delta" : "message");
    }

    if (YAJL_IS_OBJECT(delta)) {
        rc = sa_llm_text(s, sa_llm_get(delta, "content"));
        if (rc != SA_OK) {
            return rc;
        }

        /* a refusal is what the model has to say: show it like text */
        rc = sa_llm_text(s, sa_llm_get(delta, "refusal"));
        if (rc != SA_OK) {
            return rc;
        }

        tool_calls = sa_llm_get(delta, "tool_calls");

        if (YAJL_IS_ARRAY(tool_calls)) {
            for (i = 0; i < tool_calls->u.array.len; i++) {
                rc = sa_llm_tool_call(s, tool_calls->u.array.values[i]);
                if (rc != SA_OK) {
                    return rc;
                }
            }
        }
    }

    finish = sa_llm_str(choice, "finish_reason");

    if (finish != NULL && finish[0] != '\0') {
        snprintf(s->finish_reason, sizeof(s->finish_reason), "%s", finish);

        /* OpenRouter: a failure in the middle of a 200 stream */
        if (strcmp(finish, "error") == 0) {
            return sa_llm_fail(s, SA_ERROR, "finish_reason \"error\"");
        }
    }

    return SA_OK;
}


static int
sa_llm_text(sa_llm_stream_t *s, yajl_val v)
{
    int      rc;
    size_t   len, old;

    /* null and "" both mean no text */
    if (!YAJL_IS_STRING(v) || v->u.string[0] == '\0') {
        return SA_OK;
    }

    len = strlen(v->u.string);

    /* yajl turns an unpaired low surrogate escape into non-UTF-8 bytes:
       they must not reach a browser or the JSON we build */
    (void) sa_utf8_sanitize((unsigned char *) v->u.string, len);

    old = s->content_len;

    if (s->content == sa_llm_no_text) {
        s->content = NULL;
    }

    rc = sa_llm_append(&s->content, &s->content_len, &s->content_cap,
                       v->u.string, len);

    if (s->content == NULL) {
        s->content = sa_llm_no_text;
    }

    if (rc != SA_OK) {
        return sa_llm_fail(s, SA_ERROR, "out of memory");
    }

    if (s->on_delta) {
        rc = s->on_delta(s->data, s->content + old, len);

        if (rc != 0) {
            s->rc = rc;
            return rc;
        }
    }

    return SA_OK;
}


/*
 * A tool call fragment.  Providers differ (protocols.md (a)): the index
 * may be missing, an index may be reused for another call, the name may
 * come after the arguments, the whole call may come at once, arguments
 * may even be a JSON object instead of a string.  The id, when there is
 * one, is the surest key; then the index; then the call last added to.
 */

static int
sa_llm_tool_call(sa_llm_stream_t *s, yajl_val tc)
{
    int                  wire_index, rc;
    char                *text;
    size_t               len;
    sa_jw_t             *w;
    yajl_val             v, function, arguments;
    const char          *id, *name, *json;
    sa_llm_tool_call_t  *call;

    if (!YAJL_IS_OBJECT(tc)) {
        return SA_OK;
    }

    wire_index = -1;

    v = sa_llm_get(tc, "index");
    if (YAJL_IS_INTEGER(v) && YAJL_GET_INTEGER(v) >= 0
        && YAJL_GET_INTEGER(v) < SA_LLM_MAX_TOOL_INDEX)
    {
        wire_index = (int) YAJL_GET_INTEGER(v);
    }

    id = sa_llm_str(tc, "id");
    if (id != NULL && id[0] == '\0') {
        id = NULL;
    }

    call = sa_llm_call_find(s, id, wire_index);

    if (call == NULL) {
        call = sa_llm_call_add(s, wire_index);
        if (call == NULL) {
            return sa_llm_fail(s, SA_ERROR, "out of memory");
        }
    }

    s->last_call = call - s->tool_calls + 1;

    if (id != NULL && call->id == NULL) {
        call->id = strdup(id);
        if (call->id == NULL) {
            return sa_llm_fail(s, SA_ERROR, "out of memory");
        }

        (void) sa_utf8_sanitize((unsigned char *) call->id,
                                strlen(call->id));
    }

    function = sa_llm_get(tc, "function");
    if (!YAJL_IS_OBJECT(function)) {
        return SA_OK;
    }

    name = sa_llm_str(function, "name");

    /* some servers repeat the name with every fragment: keep the first */
    if (name != NULL && name[0] != '\0' && call->name == NULL) {
        call->name = strdup(name);
        if (call->name == NULL) {
            return sa_llm_fail(s, SA_ERROR, "out of memory");
        }

        (void) sa_utf8_sanitize((unsigned char *) call->name,
                                strlen(call->name));
    }

    arguments = sa_llm_get(function, "arguments");

    if (YAJL_IS_STRING(arguments)) {
        text = arguments->u.string;
        len = strlen(text);

        (void) sa_utf8_sanitize((unsigned char *) text, len);

        rc = sa_llm_append(&call->arguments, &call->arguments_len,
                           &call->arguments_cap, text, len);

    } else if (YAJL_IS_OBJECT(arguments) || YAJL_IS_ARRAY(arguments)) {
        /* arguments sent as JSON rather than as a string of JSON */
        w = sa_jw_new();
        if (w == NULL) {
            return sa_llm_fail(s, SA_ERROR, "out of memory");
        }

        rc = sa_jw_tree(w, arguments);

        if (rc == SA_OK) {
            json = sa_jw_buf(w, &len);
            rc = sa_llm_append(&call->arguments, &call->arguments_len,
                               &call->arguments_cap, json, len);

        } else if (rc == SA_INVALID) {
            /* strings with bytes that are not UTF-8: leave them out */
            rc = SA_OK;
        }

        sa_jw_free(w);

    } else {
        rc = SA_OK;
    }

    if (rc != SA_OK) {
        return sa_llm_fail(s, SA_ERROR, "out of memory");
    }

    return SA_OK;
}


static sa_llm_tool_call_t *
sa_llm_call_find(sa_llm_stream_t *s, const char *id, int wire_index)
{
    size_t               i;
    sa_llm_tool_call_t  *call;

    if (id != NULL) {
        for (i = 0; i < s->n_tool_calls; i++) {
            if (s->tool_calls[i].id && strcmp(s->tool_calls[i].id, id) == 0)
            {
                return &s->tool_calls[i];
            }
        }
    }

    if (wire_index >= 0) {

        /* the latest call with this index: an index reused for another
           call (a new id) starts a new one */
        for (i = s->n_tool_calls; i > 0; i--) {
            call = &s->tool_calls[i - 1];

            if (call->wire_index != wire_index) {
                continue;
            }

            if (id != NULL && call->id != NULL) {
                return NULL;
            }

            return call;
        }

        return NULL;
    }

    if (id != NULL) {
        /* no index and an id not seen yet: a new call */
        return NULL;
    }

    /* neither index nor id: a continuation of the call last added to */
    if (s->last_call) {
        return &s->tool_calls[s->last_call - 1];
    }

    return NULL;
}


static sa_llm_tool_call_t *
sa_llm_call_add(sa_llm_stream_t *s, int wire_index)
{
    int                  index;
    size_t               i, cap;
    sa_llm_tool_call_t  *calls, *call;

    if (s->n_tool_calls == s->tool_calls_cap) {
        cap = s->tool_calls_cap ? s->tool_calls_cap * 2 : 4;

        if (cap > SA_LLM_MAX_TOOL_INDEX) {
            return NULL;
        }

        calls = realloc(s->tool_calls, cap * sizeof(sa_llm_tool_call_t));
        if (calls == NULL) {
            return NULL;
        }

        s->tool_calls = calls;
        s->tool_calls_cap = cap;
    }

    /* the provider's index if no other call has it, else the next free */
    index = wire_index;

    for (i = 0; index >= 0 && i < s->n_tool_calls; i++) {
        if (s->tool_calls[i].index == index) {
            index = -1;
        }
    }

    if (index < 0) {
        index = 0;

        for (i = 0; i < s->n_tool_calls; i++) {
            if (s->tool_calls[i].index >= index) {
                index = s->tool_calls[i].index + 1;
            }
        }
    }

    call = &s->tool_calls[s->n_tool_calls];
    memset(call, 0, sizeof(sa_llm_tool_call_t));

    call->arguments = malloc(16);
    if (call->arguments == NULL) {
        return NULL;
    }

    call->arguments[0] = '\0';
    call->arguments_cap = 16;
    call->index = index;
    call->wire_index = wire_index;

    s->n_tool_calls++;

    return call;
}


/* appends and keeps the buffer NUL-terminated */

static int
sa_llm_append(char **buf, size_t *len, size_t *cap, const char *p,
    size_t n)
{
    char    *nbuf;
    size_t   ncap;

    if (n > (size_t) -1 / 4 - *len) {
        return SA_ERROR;
    }

    if (*len + n + 1 > *cap) {
        ncap = *cap ? *cap : 256;

        while (ncap < *len + n + 1) {
            ncap *= 2;
        }

        nbuf = realloc(*buf, ncap);
        if (nbuf == NULL) {
            return SA_ERROR;
        }

        *buf = nbuf;
        *cap = ncap;
    }

    memcpy(*buf + *len, p, n);
    *len += n;
    (*buf)[*len] = '\0';

    return SA_OK;
}


static int
sa_llm_fail(sa_llm_stream_t *s, int rc, const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    vsnprintf(s->error, sizeof(s->error), fmt, args);
    va_end(args);

    s->failed = 1;
    s->rc = rc;

    return rc;
}


static int
sa_llm_fail_error(sa_llm_stream_t *s, yajl_val root)
{
    char  msg[200], code[48];

    /* a blank message says nothing either */
    if (!sa_llm_error_tree(root, msg, sizeof(msg), code, sizeof(code))
        || msg[0] == '\0')
    {
        snprintf(msg, sizeof(msg), "error without a message");
    }

    return sa_llm_fail(s, SA_ERROR, "%s%s%s%s", msg,
                       code[0] ? " (" : "", code, code[0] ? ")" : "");
}


/*
 * An "error" member counts when it holds something, as openai-python's
 * "if data.get('error')" decides: "error": null, "", {} or [] do not.
 */

static int
sa_llm_truthy(yajl_val v)
{
    if (v == NULL) {
        return 0;
    }

    if (YAJL_IS_OBJECT(v)) {
        return v->u.object.len > 0;
    }

    if (YAJL_IS_ARRAY(v)) {
        return v->u.array.len > 0;
    }

    if (YAJL_IS_STRING(v)) {
        return v->u.string[0] != '\0';
    }

    if (YAJL_IS_NUMBER(v)) {
        return strtod(v->u.number.r, NULL) != 0;
    }

    return YAJL_IS_TRUE(v);
}


static yajl_val
sa_llm_get(yajl_val obj, const char *key)
{
    size_t  i;

    if (!YAJL_IS_OBJECT(obj)) {
        return NULL;
    }

    for (i = 0; i < obj->u.object.len; i++) {
        if (strcmp(obj->u.object.keys[i], key) == 0) {
            return obj->u.object.values[i];
        }
    }

    return NULL;
}


static const char *
sa_llm_str(yajl_val obj, const char *key)
{
    yajl_val  v;

    v = sa_llm_get(obj, key);

    return YAJL_IS_STRING(v) ? v->u.string : NULL;
}


void
sa_llm_error_parse(const char *body, size_t len, char *msg, size_t msglen,
    char *code, size_t codelen)
{
    char      scratch[2], scratch_code[2];
    yajl_val  root;

    /* the outputs may be missing: work on scratch space then */
    if (msg == NULL || msglen == 0) {
        msg = scratch;
        msglen = sizeof(scratch);
    }

    if (code == NULL || codelen == 0) {
        code = scratch_code;
        codelen = sizeof(scratch_code);
    }

    msg[0] = '\0';
    code[0] = '\0';

    if (body == NULL) {
        len = 0;
    }

    root = len ? sa_json_tree_parse(body, len, NULL, 0) : NULL;

    if (root == NULL) {
        sa_llm_error_text(body, len, msg, msglen);
        return;
    }

    if (!sa_llm_error_tree(root, msg, msglen, code, codelen)
        || msg[0] == '\0')
    {
        /* JSON of a shape we do not know, or a blank message: the body
           itself tells most */
        sa_llm_oneline(msg, msglen, body, len);
    }

    yajl_tree_free(root);
}


/*
 * The shapes seen: {"error":{"message","type","param","code"}} (OpenAI,
 * vLLM new, OpenRouter with "metadata"), {"error":"text"},
 * {"object":"error","message","code"} (vLLM old), {"message"},
 * {"detail":"text"|[{"msg"}]} (FastAPI).  Returns 1 if a message was
 * found.
 */

static int
sa_llm_error_tree(yajl_val root, char *msg, size_t msglen, char *code,
    size_t codelen)
{
    char        *p, text[512];
    yajl_val     error, detail, metadata;
    const char  *message, *raw;

    message = NULL;
    raw = NULL;
    msg[0] = '\0';
    code[0] = '\0';

    error = sa_llm_get(root, "error");

    if (YAJL_IS_OBJECT(error)) {
        message = sa_llm_str(error, "message");
        sa_llm_code(sa_llm_get(error, "code"), code, codelen);

        /* OpenRouter: what the provider behind it said */
        metadata = sa_llm_get(error, "metadata");
        raw = sa_llm_str(metadata, "raw");

    } else if (YAJL_IS_STRING(error)) {
        message = error->u.string;
        sa_llm_code(sa_llm_get(root, "code"), code, codelen);

    } else {
        message = sa_llm_str(root, "message");
        sa_llm_code(sa_llm_get(root, "code"), code, codelen);

        detail = sa_llm_get(root, "detail");

        if (message == NULL && YAJL_IS_STRING(detail)) {
            message = detail->u.string;

        } else if (message == NULL && YAJL_IS_ARRAY(detail)
                   && detail->u.array.len > 0)
        {
            message = sa_llm_str(detail->u.array.values[0], "msg");
        }
    }

    if (message == NULL || message[0] == '\0') {
        return 0;
    }

    if (raw != NULL && raw[0] != '\0') {
        snprintf(text, sizeof(text), "%s: %s", message, raw);

    } else {
        snprintf(text, sizeof(text), "%s", message);
    }

    /* snprintf may have cut a character in two */
    p = text + sa_utf8_complete_prefix((unsigned char *) text,
                                       strlen(text));
    *p = '\0';

    sa_llm_oneline(msg, msglen, text, strlen(text));

    return 1;
}


static void
sa_llm_code(yajl_val v, char *code, size_t codelen)
{
    if (YAJL_IS_STRING(v)) {
        sa_llm_oneline(code, codelen, v->u.string, strlen(v->u.string));

    } else if (YAJL_IS_INTEGER(v)) {
        snprintf(code, codelen, "%lld", YAJL_GET_INTEGER(v));

    } else if (YAJL_IS_NUMBER(v)) {
        sa_llm_oneline(code, codelen, v->u.number.r, strlen(v->u.number.r));
    }
}


/* a body that is not JSON: plain text, or an HTML page from a proxy */

static void
sa_llm_error_text(const char *body, size_t len, char *msg, size_t msglen)
{
    char         *text;
    size_t        n, i;
    const char   *title, *end, *p;

    static const char  prefix[] = "HTTP error body not JSON";

    for (i = 0; i < len && isspace((unsigned char) body[i]); i++) {
        /* void */
    }

    text = NULL;
    n = 0;

    if (i < len) {
        p = body + i;
        len -= i;

        text = malloc(len + 1);
    }

    if (text != NULL) {

        if (*p == '<') {
            title = sa_llm_find_ci(p, len, "<title");
            end = NULL;

            if (title != NULL) {
                title = memchr(title, '>', len - (title - p));
            }

            if (title != NULL) {
                title++;
                end = sa_llm_find_ci(title, len - (title - p), "</title");
            }

            if (end != NULL) {
                n = sa_llm_strip_tags(text, title, end - title);

            } else {
                n = sa_llm_strip_tags(text, p, len);
            }

        } else {
            memcpy(text, p, len);
            n = len;
        }

        text[n] = '\0';

        for (i = 0; i < n && isspace((unsigned char) text[i]); i++) {
            /* void */
        }

        if (i < n) {
            /* the prefix, ": ", and the text as far as it fits */
            snprintf(msg, msglen, "%s: ", prefix);

            n = strlen(msg);

            if (n < msglen - 1) {
                sa_llm_oneline(msg + n, msglen - n, text + i,
                               strlen(text + i));
            }

            free(text);
            return;
        }

        free(text);
    }

    snprintf(msg, msglen, "%s", prefix);
}


static size_t
sa_llm_strip_tags(char *dst, const char *src, size_t len)
{
    int          in_tag;
    char        *d;
    const char  *end;

    in_tag = 0;
    d = dst;

    for (end = src + len; src < end; src++) {

        if (*src == '<') {
            in_tag = 1;

            /* tags separate words */
            *d++ = ' ';
            continue;
        }

        if (*src == '>' && in_tag) {
            in_tag = 0;
            continue;
        }

        if (!in_tag) {
            *d++ = *src;
        }
    }

    return d - dst;
}


static const char *
sa_llm_find_ci(const char *p, size_t len, const char *needle)
{
    size_t  i, n;

    n = strlen(needle);

    for (i = 0; i + n <= len; i++) {
        if (strncasecmp(p + i, needle, n) == 0) {
            return p + i;
        }
    }

    return NULL;
}


/*
 * Copies text as one line for a log: control characters and runs of
 * white space become one space, bytes that are not UTF-8 become '?', and
 * text that does not fit is cut at a character boundary with "...".
 */

static void
sa_llm_oneline(char *dst, size_t dstlen, const char *src, size_t len)
{
    int                   space, cut;
    size_t                n, out, room;
    const unsigned char  *p, *end;

    if (dstlen == 0) {
        return;
    }

    room = dstlen - 1;
    out = 0;
    space = 0;
    cut = 0;

    p = (const unsigned char *) src;
    end = p + len;

    while (p < end) {

        if (*p < 0x20 || *p == 0x7f || *p == ' ') {
            space = 1;
            p++;
            continue;
        }

        n = sa_utf8_seq_len(p, end - p);

        if (space && out > 0) {
            if (out + 1 > room) {
                cut = 1;
                break;
            }

            dst[out++] = ' ';
        }

        space = 0;

        if (out + (n ? n : 1) > room) {
            cut = 1;
            break;
        }

        if (n == 0) {
            dst[out++] = '?';
            p++;

        } else {
            memcpy(dst + out, p, n);
            out += n;
            p += n;
        }
    }

    if (cut && room >= 3) {
        /* make room for "..." without cutting a character */
        while (out > room - 3) {
            out--;

            while (out > 0 && ((unsigned char) dst[out] & 0xc0) == 0x80) {
                out--;
            }
        }

        memcpy(dst + out, "...", 3);
        out += 3;
    }

    dst[out] = '\0';
}


long
sa_llm_retry_after_ms(const char *retry_after_ms, size_t ms_len,
    const char *retry_after, size_t ra_len, long now_sec)
{
    char    date[64];
    size_t  i;
    double  v;
    time_t  t;
    int     alpha;

    if (retry_after_ms != NULL && sa_llm_seconds(retry_after_ms, ms_len, &v))
    {
        return sa_llm_ms(v);
    }

    if (retry_after == NULL || ra_len == 0) {
        return -1;
    }

    if (sa_llm_seconds(retry_after, ra_len, &v)) {
        return sa_llm_ms(v * 1000);
    }

    /* an HTTP-date: "Wed, 21 Oct 2015 07:28:00 GMT" (or RFC 850, asctime);
       every form names the day or month in letters */

    if (ra_len >= sizeof(date)) {
        return -1;
    }

    alpha = 0;

    for (i = 0; i < ra_len; i++) {
        if (retry_after[i] == '\0') {
            return -1;
        }

        if (isalpha((unsigned char) retry_after[i])) {
            alpha = 1;
        }
    }

    if (!alpha) {
        return -1;
    }

    memcpy(date, retry_after, ra_len);
    date[ra_len] = '\0';

    t = curl_getdate(date, NULL);
    if (t == (time_t) -1) {
        return -1;
    }

    if ((double) t <= (double) now_sec) {
        return 0;
    }

    return sa_llm_ms(((double) t - (double) now_sec) * 1000);
}


/* a non-negative decimal number: "120", "1.5", " 2 "; nothing else (no
   sign, exponent, hex, inf or nan, which strtod() would take) */

static int
sa_llm_seconds(const char *p, size_t len, double *v)
{
    char    num[40];
    size_t  i, n, digits, dots;

    while (len && (*p == ' ' || *p == '\t')) {
        p++;
        len--;
    }

    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) {
        len--;
    }

    if (len == 0 || len >= sizeof(num)) {
        return 0;
    }

    digits = 0;
    dots = 0;

    for (i = 0; i < len; i++) {
        if (p[i] >= '0' && p[i] <= '9') {
            digits++;

        } else if (p[i] == '.') {
            dots++;

        } else {
            return 0;
        }
    }

    if (digits == 0 || dots > 1) {
        return 0;
    }

    n = len;
    memcpy(num, p, n);
    num[n] = '\0';

    *v = strtod(num, NULL);

    return isfinite(*v);
}


static long
sa_llm_ms(double ms)
{
    if (!(ms >= 0)) {
        return -1;
    }

    if (ms >= (double) SA_LLM_RETRY_MAX_MS) {
        return SA_LLM_RETRY_MAX_MS;
    }

    /* up, so that a hint of 0.1 ms is not taken for "now" */
    return (long) ceil(ms);
}
