
/*
 * Copyright (C) ngx_support_agent authors
 *
 * A libFuzzer driver for the parsers that read untrusted bytes: the
 * customer's chat request, the LLM's SSE stream and response, error
 * bodies and retry hints, the replies of the retrieval services
 * (embeddings, rerank, Qdrant), the Qdrant cache record, an intent
 * model file and a rules file, and messages to route.  Besides
 * crashes and sanitizer reports it checks invariants (output is UTF-8,
 * NUL-terminated, the SSE split does not change the events, a cached
 * chunk reads back the same) and abort()s when one breaks.  Also the
 * escalation layer: the helpdesk's reply, the queue and state records,
 * business hours, personal-data masking, order ids, sentiment and the
 * handoff summary and ticket; and the actions layer: tool arguments from
 * the LLM (round trip through the canonical JSON), orders and answers of
 * the order API, the action state record, the customer's words (e-mail,
 * amount, address, confirmation) and reply templates.  Not built by
 * "make unit"; by hand:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
 *       -o build/fuzz_parsers t/unit/fuzz_parsers.c src/sa_types.c \
 *       src/sa_utf8.c src/sa_sse.c src/sa_json.c src/sa_llm.c \
 *       src/sa_remote.c src/sa_kb.c src/sa_text.c src/sa_chunk.c \
 *       src/sa_intent.c src/sa_escalate.c src/sa_handoff.c src/sa_act.c \
 *       -lyajl -lcurl -llmdb -lstemmer -lm
 *   mkdir -p build/fuzz-corpus
 *   build/fuzz_parsers -max_total_time=120 -max_len=4096 build/fuzz-corpus
 */


#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "sa_utf8.h"
#include "sa_sse.h"
#include "sa_json.h"
#include "sa_llm.h"
#include "sa_remote.h"
#include "sa_intent.h"
#include "sa_escalate.h"
#include "sa_handoff.h"
#include "sa_act.h"


#define check(cond)  do { if (!(cond)) abort(); } while (0)


/* a running digest of the events, to compare two ways of feeding */
typedef struct {
    uint64_t  hash;
    size_t    events;
} digest_t;


static void
digest_add(digest_t *d, const char *p, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        d->hash = (d->hash ^ (unsigned char) p[i]) * 1099511628211ULL;
    }

    d->hash = (d->hash ^ 0x100) * 1099511628211ULL;
}


static int
on_event(void *data, const char *event, size_t event_len,
    const char *payload, size_t payload_len)
{
    digest_t  *d = data;

    check(payload[payload_len] == '\0');
    check(event[event_len] == '\0');

    d->events++;
    digest_add(d, event, event_len);
    digest_add(d, payload, payload_len);

    return 0;
}


static int
on_delta(void *data, const char *text, size_t len)
{
    check(sa_utf8_valid((const unsigned char *) text, len));

    return 0;
}


static void
check_line(const char *s, size_t max)
{
    size_t  len, i;

    len = strlen(s);
    check(len < max);
    check(sa_utf8_valid((const unsigned char *) s, len));

    for (i = 0; i < len; i++) {
        check((unsigned char) s[i] >= 0x20 && s[i] != 0x7f);
    }
}


static void
fuzz_request(const char *p, size_t len)
{
    char               err[128];
    size_t             i;
    sa_req_status_e    st;
    sa_chat_request_t  req;

    st = sa_chat_request_parse(p, len, 1000, &req, err, sizeof(err));

    check(strlen(err) < sizeof(err));

    if (st == SA_REQ_OK) {
        check(req.message != NULL && req.root != NULL);
        check(req.message_len > 0 && req.message_len <= 1000);
        check(req.message[req.message_len] == '\0');
        check(strlen(req.message) == req.message_len);
        check(sa_utf8_valid((unsigned char *) req.message, req.message_len));

        if (req.conversation_id) {
            check(req.conversation_id_len >= 8
                  && req.conversation_id_len <= 64);

            for (i = 0; i < req.conversation_id_len; i++) {
                check(strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS"
                             "TUVWXYZ0123456789_-", req.conversation_id[i])
                      != NULL);
            }
        }

    } else {
        check(req.message == NULL && req.conversation_id == NULL);
        check(err[0] != '\0');
    }

    sa_chat_request_free(&req);
}


static void
fuzz_sse(const char *p, size_t len, size_t split)
{
    int              rc1, rc2;
    size_t           i;
    digest_t         d1, d2;
    sa_sse_parser_t  sp;

    memset(&d1, 0, sizeof(d1));
    sa_sse_parser_init(&sp, 512, on_event, &d1);
    rc1 = sa_sse_parser_feed(&sp, p, split);

    if (rc1 == SA_OK) {
        rc1 = sa_sse_parser_feed(&sp, p + split, len - split);
    }

    sa_sse_parser_free(&sp);

    /* byte by byte must give the very same events */
    memset(&d2, 0, sizeof(d2));
    sa_sse_parser_init(&sp, 512, on_event, &d2);
    rc2 = SA_OK;

    for (i = 0; i < len && rc2 == SA_OK; i++) {
        rc2 = sa_sse_parser_feed(&sp, p + i, 1);
    }

    sa_sse_parser_free(&sp);

    check(rc1 == rc2);
    check(d1.events == d2.events && d1.hash == d2.hash);
}


static void
check_stream(sa_llm_stream_t *s)
{
    size_t  i;

    check(s->content != NULL);
    check(strlen(s->content) == s->content_len);
    check(sa_utf8_valid((unsigned char *) s->content, s->content_len));
    check(strlen(s->finish_reason) < sizeof(s->finish_reason));
    check(strlen(s->error) < sizeof(s->error));
    check(!s->failed || s->error[0] != '\0');

    for (i = 0; i < s->n_tool_calls; i++) {
        check(s->tool_calls[i].arguments != NULL);
        check(strlen(s->tool_calls[i].arguments)
              == s->tool_calls[i].arguments_len);
    }
}


static void
fuzz_llm(const char *p, size_t len, size_t split)
{
    sa_llm_stream_t  s;

    sa_llm_stream_init(&s, 1024, on_delta, NULL);

    if (sa_llm_stream_feed(&s, p, split) == SA_OK) {
        (void) sa_llm_stream_feed(&s, p + split, len - split);
    }

    check_stream(&s);
    sa_llm_stream_free(&s);

    sa_llm_stream_init(&s, 1024, on_delta, NULL);
    (void) sa_llm_response_parse(&s, p, len);
    check_stream(&s);
    sa_llm_stream_free(&s);
}


static void
fuzz_error(const char *p, size_t len)
{
    char  msg[96], code[16];

    sa_llm_error_parse(p, len, msg, sizeof(msg), code, sizeof(code));

    check_line(msg, sizeof(msg));
    check_line(code, sizeof(code));
    check(msg[0] != '\0');
}


static void
fuzz_retry(const char *p, size_t len, size_t split)
{
    long  ms;

    ms = sa_llm_retry_after_ms(p, split, p + split, len - split, 1700000000);

    check(ms >= -1 && ms <= SA_LLM_RETRY_MAX_MS);
}


static void
fuzz_writer(const char *p, size_t len)
{
    int        rc;
    size_t     out_len;
    sa_jw_t   *w;
    yajl_val   v;
    const char *out;

    w = sa_jw_new();
    if (w == NULL) {
        return;
    }

    rc = sa_jw_str(w, p, len);
    check((rc == SA_OK) == sa_utf8_valid((const unsigned char *) p, len));

    if (rc == SA_OK && memchr(p, '\0', len) == NULL) {
        /* what we write, yajl reads back as the same string */
        out = sa_jw_buf(w, &out_len);
        v = yajl_tree_parse(out, NULL, 0);
        check(YAJL_IS_STRING(v));
        check(strlen(v->u.string) == len);
        check(memcmp(v->u.string, p, len) == 0);
        yajl_tree_free(v);
    }

    sa_jw_reset(w);

    if (sa_jw_raw(w, p, len) == SA_OK && sa_json_nesting(p, len) < 1000) {
        out = sa_jw_buf(w, &out_len);
        check(strlen(out) == out_len);
        v = yajl_tree_parse(out, NULL, 0);
        check(v != NULL);
        yajl_tree_free(v);
    }

    sa_jw_free(w);
}


static int
on_chunk(void *data, const char *id, sa_kb_chunk_t *c)
{
    size_t          len;
    unsigned char  *rec;
    sa_kb_chunk_t   back;

    check(strlen(id) < SA_QDRANT_ID_MAX);
    check(c->text != NULL && strlen(c->text) == c->text_len);
    check(sa_utf8_valid((unsigned char *) c->text, c->text_len));

    /* what is cached reads back the same */
    if (sa_remote_chunk_encode(c, &rec, &len) == SA_OK) {
        check(sa_remote_chunk_decode(rec, len, &back) == SA_OK);
        check(back.text_len == c->text_len);
        check(memcmp(back.text, c->text, c->text_len) == 0);
        sa_kb_chunk_free(&back);
        free(rec);
    }

    sa_kb_chunk_free(c);

    return 0;
}


static void
fuzz_remote(const char *p, size_t len)
{
    char               err[128], text[64];
    float             *vec, scores[8];
    size_t             dim, n, i;
    sa_kb_chunk_t      c;
    sa_qdrant_point_t  points[8];

    if (sa_embed_response(SA_EMBED_OPENAI, p, len, &vec, &dim, err,
                          sizeof(err))
        == SA_OK)
    {
        check(dim > 0 && dim <= SA_EMBED_MAX_DIM);
        free(vec);
    }

    if (sa_rerank_response(p, len, 8, scores, err, sizeof(err)) == SA_OK) {
        for (i = 0; i < 8; i++) {
            check(scores[i] == scores[i]);
        }
    }

    if (sa_qdrant_query_response(p, len, points, 8, &n, err, sizeof(err))
        == SA_OK)
    {
        check(n <= 8);

        for (i = 0; i < n; i++) {
            check(strlen(points[i].id) < SA_QDRANT_ID_MAX);
        }
    }

    (void) sa_qdrant_retrieve_response(p, len, on_chunk, NULL, err,
                                       sizeof(err));

    sa_remote_error_text(p, len, text, sizeof(text));
    check_line(text, sizeof(text));

    if (sa_remote_chunk_decode((const unsigned char *) p, len, &c)
        == SA_OK)
    {
        sa_kb_chunk_free(&c);
    }
}


/* a tiny model, trained once, to route fuzzed messages and rules with */
static sa_intent_t *
fuzz_model(void)
{
    char                  err[256];
    size_t                i;
    sa_intent_conf_t      conf;
    sa_intent_example_t   ex[4];

    static sa_intent_t   *m;

    if (m != NULL) {
        return m;
    }

    ex[0].text = "where is my order";
    ex[0].intent = "track_order";
    ex[1].text = "cancel my order";
    ex[1].intent = "cancel_order";
    ex[2].text = "I want my money back";
    ex[2].intent = "get_refund";
    ex[3].text = "let me talk to a person";
    ex[3].intent = "human";

    for (i = 0; i < 4; i++) {
        ex[i].len = strlen(ex[i].text);
    }

    sa_intent_conf_init(&conf);
    check(sa_intent_train(ex, 4, &conf, &m, err, sizeof(err)) == SA_OK);

    return m;
}


static void
fuzz_intent(const char *p, size_t len)
{
    char                 err[256];
    sa_intent_t         *m, *loaded;
    sa_intent_result_t   res;

    m = fuzz_model();

    /* the input as a message */
    check(sa_intent_classify(m, p, len, &res) == SA_OK);
    check(res.intent != NULL && res.route_name != NULL);
    check(res.confidence >= 0 && res.confidence <= 1);

    /* as a rules file: accepted or refused, then the message again */
    if (sa_intent_set_rules(m, p, len, err, sizeof(err)) == SA_OK) {
        check(sa_intent_classify(m, p, len, &res) == SA_OK);
        check(res.intent != NULL);
        (void) sa_intent_set_rules(m, "", 0, err, sizeof(err));
    }

    /* as a model file */
    if (sa_intent_load(p, len, &loaded, err, sizeof(err)) == SA_OK) {
        (void) sa_intent_classify(loaded, "where is my order", 17, &res);
        sa_intent_close(loaded);
    }
}

static void
fuzz_escalate(const char *p, size_t len, size_t split)
{
    char               id[SA_HANDOFF_ID_MAX + 1], err[160], *out, *sum;
    char               ids[8][SA_ORDER_ID_MAX], *subject, *json;
    double             score;
    size_t             n, i, olen;
    int32_t            wait;
    int64_t            now, next;
    sa_msg_t           msgs[2];
    sa_hours_t         hours;
    unsigned char     *rec, state_buf[SA_ESC_STATE_MAX];
    sa_esc_state_t     state, back;
    sa_handoff_rec_t   r;
    sa_esc_decision_t  d;
    sa_handoff_ticket_t  t;

    if (sa_handoff_parse_reply(p, len, id, sizeof(id), &wait, err,
                               sizeof(err))
        == SA_OK)
    {
        check(id[0] != '\0' && strlen(id) <= SA_HANDOFF_ID_MAX);
        check(wait >= -1);
    }

    if (sa_handoff_rec_decode(p, len, &r) == SA_OK) {
        check(r.url_len + r.body_len + SA_HANDOFF_HEADER == len);

        if (sa_handoff_rec_encode(&r, &rec, &olen) == SA_OK) {
            check(olen == len);
            free(rec);
        }
    }

    if (sa_esc_state_decode(p, len, &state) == SA_OK) {
        n = sa_esc_state_encode(&state, state_buf, sizeof(state_buf));
        check(n > 0);
        check(sa_esc_state_decode(state_buf, n, &back) == SA_OK);
        check(strcmp(back.issue, state.issue) == 0);
    }

    if (sa_hours_parse(p, len, &hours, err, sizeof(err)) == SA_OK) {
        now = (int64_t) (len * 7919) * 60000;
        next = sa_hours_next_open(&hours, now);
        check(next == -1 || next >= now);
        check(!sa_hours_open(&hours, now) || next == now);
    }

    score = sa_sentiment(p, len);
    check(score >= 0 && score <= 1);

    n = sa_order_ids(p, len, ids, 8);
    check(n <= 8);

    for (i = 0; i < n; i++) {
        check(strlen(ids[i]) < SA_ORDER_ID_MAX);
    }

    if (sa_mask_pii(p, len, SA_MASK_ALL, &out, &olen) == SA_OK) {
        check(out[olen] == '\0');
        check(!sa_utf8_valid((const unsigned char *) p, len)
              || sa_utf8_valid((const unsigned char *) out, olen));
        free(out);
    }

    /* the two halves as a short conversation */
    if (!sa_utf8_valid((const unsigned char *) p, len)) {
        return;
    }

    memset(msgs, 0, sizeof(msgs));
    msgs[0].role = SA_ROLE_USER;
    msgs[0].content = (char *) p;
    msgs[0].content_len = split;
    msgs[1].role = SA_ROLE_ASSISTANT;
    msgs[1].content = (char *) p + split;
    msgs[1].content_len = len - split;

    if (!sa_utf8_valid((const unsigned char *) p, split)) {
        return;
    }

    sa_esc_state_init(&state);
    state.attempts = 1;
    memset(&d, 0, sizeof(d));
    d.reason = SA_ESC_REPETITION;

    if (sa_handoff_summary(msgs, 2, &state, &d, SA_MASK_ALL, &sum, &subject)
        == SA_OK)
    {
        check(sa_utf8_valid((const unsigned char *) sum, strlen(sum)));
        check(sa_utf8_valid((const unsigned char *) subject, strlen(subject)));
        free(sum);
        free(subject);
    }

    memset(&t, 0, sizeof(t));
    t.conversation_id = "c_fuzz";
    t.msgs = msgs;
    t.n = 2;
    t.state = &state;
    t.decision = &d;
    t.mask = SA_MASK_ALL;
    t.now_ms = 1795526942123LL;

    if (sa_handoff_ticket(&t, &json, &olen) == SA_OK) {
        check(json[olen] == '\0');
        free(json);
    }
}

static void
fuzz_act(const char *p, size_t len)
{
    int               t, c;
    char              err[160], detail[320], email[256], *json, *json2;
    char             *path, *body, *out;
    size_t            n, n2, blen, olen;
    double            amount;
    const char       *method;
    sa_order_t        o;
    sa_kv_t           vars[1];
    sa_address_t      addr;
    sa_tool_args_t    a, b;
    sa_act_state_t    st, back;
    sa_templates_t   *tpl;
    unsigned char     buf[SA_ACT_STATE_MAX];

    for (t = 0; t < SA_TOOL_COUNT; t++) {
        if (sa_tool_args_parse((sa_tool_e) t, p, len, &a, err, sizeof(err))
            != SA_OK)
        {
            continue;
        }

        /* what validates reads back the same from its canonical form */
        check(sa_tool_args_json(&a, &json, &n) == SA_OK);
        check(sa_tool_args_parse((sa_tool_e) t, json, n, &b, err,
                                 sizeof(err)) == SA_OK);
        check(sa_tool_args_json(&b, &json2, &n2) == SA_OK);
        check(n == n2 && memcmp(json, json2, n) == 0);
        free(json);
        free(json2);

        if (sa_tool_request(&a, &method, &path, &body, &blen) == SA_OK) {
            check(path[0] == '/');
            free(path);
            free(body);
        }
    }

    if (sa_order_parse(p, len, &o, err, sizeof(err)) == SA_OK) {
        check(o.n_items <= SA_ACT_ITEMS);

        if (sa_order_json(&o, &json, &n) == SA_OK) {
            check(sa_utf8_valid((const unsigned char *) json, n));
            free(json);
        }
    }

    (void) sa_act_from_http(len ? 200 + (long) (p[0] & 0x7f) * 3 : 0, p,
                            len, detail, sizeof(detail));
    check(strlen(detail) < sizeof(detail));

    if (sa_act_state_decode(p, len, &st) == SA_OK) {
        n = sa_act_state_encode(&st, buf, sizeof(buf));
        check(n > 0);
        check(sa_act_state_decode(buf, n, &back) == SA_OK);
        check(strcmp(back.verified_email, st.verified_email) == 0);
    }

    if (sa_text_email(p, len, email, sizeof(email))) {
        check(strchr(email, '@') != NULL);
    }

    if (sa_text_amount(p, len, &amount)) {
        check(amount > 0 && amount < 1e9);
    }

    (void) sa_text_address(p, len, &addr);

    c = sa_confirmation(p, len);
    check(c == SA_CONFIRM_YES || c == SA_CONFIRM_NO
          || c == SA_CONFIRM_OTHER);

    if (sa_templates_parse(p, len, &tpl, err, sizeof(err)) == SA_OK) {
        vars[0].key = "order_id";
        vars[0].value = "W1";

        if (sa_template_render(tpl, "order_status", vars, 1, &out, &olen)
            == SA_OK)
        {
            check(out[olen] == '\0');
            free(out);
        }

        sa_templates_free(tpl);
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t       split;
    const char  *p = (const char *) data;

    /* the first byte's value decides where the input is cut in two */
    split = size ? data[0] % (size + 1) : 0;

    check(sa_utf8_complete_prefix(data, size) <= size);

    fuzz_request(p, size);
    fuzz_sse(p, size, split);
    fuzz_llm(p, size, split);
    fuzz_error(p, size);
    fuzz_retry(p, size, split);
    fuzz_writer(p, size);
    fuzz_remote(p, size);
    fuzz_intent(p, size);
    fuzz_escalate(p, size, split);
    fuzz_act(p, size);

    return 0;
}
