
/*
 * Copyright (C) ngx_support_agent authors
 *
 * sa_handoff: the queue record (round trip, damage), the backoff, the
 * helpdesk's reply (generic and Zendesk shapes, bad ids, garbage) and the
 * ticket JSON (fields, masking, order ids, the sentiment trend, roles that
 * are left out).
 */


#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "tap.h"
#include "sa_handoff.h"


static void
test_record(void)
{
    size_t            len;
    unsigned char    *buf;
    sa_handoff_rec_t  rec, back;

    memset(&rec, 0, sizeof(rec));
    rec.state = SA_HANDOFF_QUEUED;
    rec.attempts = 3;
    rec.lease_pid = 4242;
    rec.wait = -1;
    rec.created_ms = 1795526940990LL;
    rec.next_ms = 1795526941990LL;
    rec.lease_until_ms = -5;
    rec.delivered_ms = 0;
    strcpy(rec.ticket_id, "HD-1001");
    rec.url = "http://127.0.0.1:9/tickets";
    rec.url_len = strlen(rec.url);
    rec.body = "{\"a\":1}";
    rec.body_len = 7;

    is_int(sa_handoff_rec_encode(&rec, &buf, &len), SA_OK, "encode");
    is_int(len, SA_HANDOFF_HEADER + rec.url_len + 7, "length");
    is_int(sa_handoff_rec_decode(buf, len, &back), SA_OK, "decode");
    is_int(back.state, SA_HANDOFF_QUEUED, "state");
    is_int(back.attempts, 3, "attempts");
    is_int(back.lease_pid, 4242, "lease pid");
    is_int(back.wait, -1, "wait -1 survives");
    ok(back.created_ms == rec.created_ms, "created_ms");
    ok(back.next_ms == rec.next_ms, "next_ms");
    ok(back.lease_until_ms == -5, "negative times survive");
    is_str(back.ticket_id, "HD-1001", "ticket id");
    ok(back.url_len == rec.url_len
       && memcmp(back.url, rec.url, rec.url_len) == 0, "url");
    ok(back.body_len == 7 && memcmp(back.body, "{\"a\":1}", 7) == 0,
       "body");

    is_int(sa_handoff_rec_decode(buf, len - 1, &back), SA_INVALID,
           "a truncated record is refused");
    is_int(sa_handoff_rec_decode(buf, 10, &back), SA_INVALID,
           "a short header is refused");

    buf[0] = 0;
    is_int(sa_handoff_rec_decode(buf, len, &back), SA_INVALID,
           "version 0 is refused");
    buf[0] = 1;
    buf[1] = 7;
    is_int(sa_handoff_rec_decode(buf, len, &back), SA_INVALID,
           "an unknown state is refused");
    buf[1] = 0;
    buf[52] = 200;
    is_int(sa_handoff_rec_decode(buf, len, &back), SA_INVALID,
           "an id length over 64 is refused");
    free(buf);

    /* delivered: no body */
    rec.state = SA_HANDOFF_DELIVERED;
    rec.body = NULL;
    rec.body_len = 0;
    strcpy(rec.ticket_id,
           "0123456789012345678901234567890123456789012345678901234567890123");
    is_int(sa_handoff_rec_encode(&rec, &buf, &len), SA_OK,
           "encode delivered");
    is_int(sa_handoff_rec_decode(buf, len, &back), SA_OK,
           "decode delivered");
    is_int(back.body_len, 0, "no body");
    is_int(strlen(back.ticket_id), 64, "a 64-byte id");
    free(buf);
}


static void
test_backoff(void)
{
    ok(sa_handoff_backoff(0) == 0, "no failure, no wait");
    ok(sa_handoff_backoff(1) == 1000, "1 s after the first failure");
    ok(sa_handoff_backoff(2) == 2000, "then 2 s");
    ok(sa_handoff_backoff(5) == 16000, "16 s after five");
    ok(sa_handoff_backoff(9) == 256000, "256 s after nine");
    ok(sa_handoff_backoff(10) == SA_HANDOFF_BACKOFF_MAX_MS, "capped at 5 min");
    ok(sa_handoff_backoff(4000000000u) == SA_HANDOFF_BACKOFF_MAX_MS,
       "no overflow");
}


static void
test_reply(void)
{
    char         id[SA_HANDOFF_ID_MAX + 1], err[160];
    int32_t      wait;
    const char  *s;

    s = "{\"id\":\"HD-1001\",\"status\":\"open\",\"estimated_wait_minutes\":4}";
    is_int(sa_handoff_parse_reply(s, strlen(s), id, sizeof(id), &wait, err,
                                  sizeof(err)), SA_OK, "generic reply");
    is_str(id, "HD-1001", "its id");
    is_int(wait, 4, "its wait");

    s = "{\"ticket\":{\"id\":35436,\"status\":\"new\"}}";
    is_int(sa_handoff_parse_reply(s, strlen(s), id, sizeof(id), &wait, err,
                                  sizeof(err)), SA_OK, "Zendesk's shape");
    is_str(id, "35436", "an integer id as text");
    is_int(wait, -1, "no wait");

    s = "{\"id\":7,\"ticket\":{\"id\":8},\"estimated_wait_minutes\":2.6}";
    is_int(sa_handoff_parse_reply(s, strlen(s), id, sizeof(id), &wait, err,
                                  sizeof(err)), SA_OK, "both");
    is_str(id, "7", "the top-level id wins");
    is_int(wait, 3, "minutes rounded");

    s = "{\"id\":\"HD-1\",\"estimated_wait_minutes\":-3}";
    is_int(sa_handoff_parse_reply(s, strlen(s), id, sizeof(id), &wait, err,
                                  sizeof(err)), SA_OK, "negative wait");
    is_int(wait, -1, "is unknown");

    s = "{\"status\":\"open\"}";
    is_int(sa_handoff_parse_reply(s, strlen(s), id, sizeof(id), &wait, err,
                                  sizeof(err)), SA_INVALID, "no id");
    ok(strstr(err, "no ticket") != NULL, "says so: %s", err);

    s = "{\"id\":\"HD-1 <script>\"}";
    is_int(sa_handoff_parse_reply(s, strlen(s), id, sizeof(id), &wait, err,
                                  sizeof(err)), SA_INVALID,
           "an id with characters a customer must not see");

    s = "{\"id\":\"\"}";
    is_int(sa_handoff_parse_reply(s, strlen(s), id, sizeof(id), &wait, err,
                                  sizeof(err)), SA_INVALID, "an empty id");

    s = "{\"id\":true}";
    is_int(sa_handoff_parse_reply(s, strlen(s), id, sizeof(id), &wait, err,
                                  sizeof(err)), SA_INVALID, "a boolean id");

    s = "[\"HD-1\"]";
    is_int(sa_handoff_parse_reply(s, strlen(s), id, sizeof(id), &wait, err,
                                  sizeof(err)), SA_INVALID, "not an object");

    s = "{\"id\":\"HD-1";
    is_int(sa_handoff_parse_reply(s, strlen(s), id, sizeof(id), &wait, err,
                                  sizeof(err)), SA_INVALID, "cut JSON");

    is_int(sa_handoff_parse_reply("", 0, id, sizeof(id), &wait, err,
                                  sizeof(err)), SA_INVALID, "empty body");
}


static sa_msg_t
msg(sa_role_e role, const char *text, int64_t ts)
{
    sa_msg_t  m;

    memset(&m, 0, sizeof(m));
    m.role = role;
    m.content = (char *) text;
    m.content_len = text ? strlen(text) : 0;
    m.ts_ms = ts;

    return m;
}


static const char *
get_str(yajl_val root, const char *key)
{
    yajl_val     v;
    const char  *path[2];

    path[0] = key;
    path[1] = NULL;
    v = yajl_tree_get(root, path, yajl_t_string);

    return v ? YAJL_GET_STRING(v) : NULL;
}


static void
test_ticket(void)
{
    char                *json;
    size_t               len;
    yajl_val             root, v;
    sa_msg_t             msgs[5];
    sa_esc_state_t       state;
    sa_esc_decision_t    d;
    sa_handoff_ticket_t  t;
    const char          *path[3], *s;

    msgs[0] = msg(SA_ROLE_USER, "My order #W2611340 never arrived. "
                  "Mail me at jane.doe@example.com", 1795526940000LL);
    msgs[1] = msg(SA_ROLE_ASSISTANT, "Sorry to hear that. Orders usually "
                  "arrive within 5 days.", 1795526941000LL);
    msgs[2] = msg(SA_ROLE_TOOL, "{\"secret\":1}", 1795526941500LL);
    msgs[3] = msg(SA_ROLE_ASSISTANT, NULL, 1795526941600LL);
    msgs[4] = msg(SA_ROLE_USER, "This is useless, I want a human now!",
                  1795526942000LL);

    sa_esc_state_init(&state);
    state.attempts = 2;

    memset(&d, 0, sizeof(d));
    d.reason = SA_ESC_EXPLICIT;
    d.priority = SA_ESC_NORMAL;
    strcpy(d.detail, "asked for a human");

    memset(&t, 0, sizeof(t));
    t.conversation_id = "c_0123456789abcdef";
    t.msgs = msgs;
    t.n = 5;
    t.state = &state;
    t.decision = &d;
    t.intent = "contact_human_agent";
    t.mask = SA_MASK_ALL;
    t.open = 0;
    t.now_ms = 1795526942123LL;

    is_int(sa_handoff_ticket(&t, &json, &len), SA_OK, "a ticket");
    ok(len == strlen(json), "length");

    root = yajl_tree_parse(json, NULL, 0);
    ok(root != NULL && YAJL_IS_OBJECT(root), "is a JSON object");

    if (root == NULL) {
        free(json);
        return;
    }

    is_str(get_str(root, "external_id"), "c_0123456789abcdef",
           "external_id");
    is_str(get_str(root, "conversation_id"), "c_0123456789abcdef",
           "conversation_id");
    is_str(get_str(root, "priority"), "normal", "priority");
    is_str(get_str(root, "reason"), "explicit", "reason");
    is_str(get_str(root, "reason_detail"), "asked for a human", "detail");
    is_str(get_str(root, "intent"), "contact_human_agent", "intent");
    is_str(get_str(root, "created_at"), "2026-11-24T13:29:02.123Z",
           "created_at in RFC 3339 UTC with ms");
    is_str(get_str(root, "source"), "ngx_support_agent", "source");
    s = get_str(root, "subject");
    ok(s != NULL && strstr(s, "never arrived") != NULL,
       "the subject is the issue, not the request for a human");
    s = get_str(root, "summary");
    ok(s != NULL && strstr(s, "jane.doe") == NULL, "the summary is masked");

    path[0] = "order_ids";
    path[1] = NULL;
    v = yajl_tree_get(root, path, yajl_t_array);
    s = (v != NULL && YAJL_GET_ARRAY(v)->len == 1
         && YAJL_IS_STRING(YAJL_GET_ARRAY(v)->values[0]))
        ? YAJL_GET_STRING(YAJL_GET_ARRAY(v)->values[0]) : NULL;
    ok(s != NULL && strstr(s, "W2611340") != NULL, "the order id");

    path[0] = "attempts";
    v = yajl_tree_get(root, path, yajl_t_number);
    ok(v != NULL && YAJL_GET_INTEGER(v) == 2, "attempts");

    path[0] = "business_hours";
    path[1] = "open";
    path[2] = NULL;
    v = yajl_tree_get(root, path, yajl_t_false);
    ok(v != NULL, "business hours closed");

    path[0] = "sentiment";
    path[1] = "trend";
    v = yajl_tree_get(root, path, yajl_t_array);
    ok(v != NULL && YAJL_GET_ARRAY(v)->len == 2,
       "one score per customer message");
    ok(v != NULL && YAJL_GET_ARRAY(v)->len == 2
       && YAJL_GET_DOUBLE(YAJL_GET_ARRAY(v)->values[1]) < 0.3,
       "the angry one is low");

    path[0] = "messages";
    path[1] = NULL;
    v = yajl_tree_get(root, path, yajl_t_array);
    ok(v != NULL && YAJL_GET_ARRAY(v)->len == 3,
       "tool messages and tool-call-only replies are left out");
    ok(strstr(json, "jane.doe") == NULL && strstr(json, "j***@example.com"),
       "the e-mail is masked in the messages");
    ok(strstr(json, "secret") == NULL, "the tool result is not sent");
    ok(strstr(json, "\"at\":\"2026-11-24T13:29:00.000Z\"") != NULL,
       "each message has its time");

    yajl_tree_free(root);
    free(json);

    /* no router, nothing to mask */
    t.intent = NULL;
    t.mask = 0;
    t.n = 1;
    is_int(sa_handoff_ticket(&t, &json, &len), SA_OK, "without a router");
    ok(strstr(json, "\"intent\":null") != NULL, "intent null");
    ok(strstr(json, "jane.doe@example.com") != NULL, "mask 0 keeps it");
    free(json);
}


int
main(void)
{
    test_record();
    test_backoff();
    test_reply();
    test_ticket();

    return done_testing();
}
