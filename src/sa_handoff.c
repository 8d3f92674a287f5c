/*
 * Copyright (C) ngx_support_agent authors
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <yajl/yajl_tree.h>

#include "sa_handoff.h"
#include "sa_json.h"


#define SA_HANDOFF_TREND_MAX  20
#define SA_HANDOFF_ORDERS     16


static void sa_put16(unsigned char *p, uint32_t v);
static void sa_put32(unsigned char *p, uint32_t v);
static void sa_put64(unsigned char *p, int64_t v);
static uint32_t sa_get16(const unsigned char *p);
static uint32_t sa_get32(const unsigned char *p);
static int64_t sa_get64(const unsigned char *p);
static int sa_handoff_id_ok(const char *id, size_t len);
static int sa_handoff_messages(sa_jw_t *w, const sa_handoff_ticket_t *t);
static int sa_handoff_orders(sa_jw_t *w, const sa_handoff_ticket_t *t);
static int sa_handoff_sentiment(sa_jw_t *w, const sa_handoff_ticket_t *t);


int
sa_handoff_rec_encode(const sa_handoff_rec_t *rec, unsigned char **out,
    size_t *len)
{
    size_t          n, idlen;
    unsigned char  *p;

    if (rec->url_len > 65535 || rec->body_len > UINT32_MAX) {
        return SA_INVALID;
    }

    idlen = strnlen(rec->ticket_id, SA_HANDOFF_ID_MAX);
    n = SA_HANDOFF_HEADER + rec->url_len + rec->body_len;

    p = calloc(1, n);
    if (p == NULL) {
        return SA_ERROR;
    }

    p[0] = 1;
    p[1] = (unsigned char) rec->state;
    sa_put16(p + 2, (uint32_t) rec->url_len);
    sa_put32(p + 4, rec->attempts);
    sa_put32(p + 8, (uint32_t) rec->body_len);
    sa_put32(p + 12, (uint32_t) rec->lease_pid);
    sa_put64(p + 16, rec->created_ms);
    sa_put64(p + 24, rec->next_ms);
    sa_put64(p + 32, rec->lease_until_ms);
    sa_put64(p + 40, rec->delivered_ms);
    sa_put32(p + 48, (uint32_t) rec->wait);
    p[52] = (unsigned char) idlen;
    memcpy(p + 53, rec->ticket_id, idlen);

    if (rec->url_len) {
        memcpy(p + SA_HANDOFF_HEADER, rec->url, rec->url_len);
    }

    if (rec->body_len) {
        memcpy(p + SA_HANDOFF_HEADER + rec->url_len, rec->body,
               rec->body_len);
    }

    *out = p;
    *len = n;

    return SA_OK;
}


int
sa_handoff_rec_decode(const void *buf, size_t len, sa_handoff_rec_t *rec)
{
    size_t               idlen;
    const unsigned char  *p = buf;

    if (len < SA_HANDOFF_HEADER || p[0] < 1 || p[1] > SA_HANDOFF_DELIVERED) {
        return SA_INVALID;
    }

    memset(rec, 0, sizeof(sa_handoff_rec_t));

    rec->state = p[1];
    rec->url_len = sa_get16(p + 2);
    rec->attempts = sa_get32(p + 4);
    rec->body_len = sa_get32(p + 8);
    rec->lease_pid = (int32_t) sa_get32(p + 12);
    rec->created_ms = sa_get64(p + 16);
    rec->next_ms = sa_get64(p + 24);
    rec->lease_until_ms = sa_get64(p + 32);
    rec->delivered_ms = sa_get64(p + 40);
    rec->wait = (int32_t) sa_get32(p + 48);
    idlen = p[52];

    if (idlen > SA_HANDOFF_ID_MAX
        || SA_HANDOFF_HEADER + rec->url_len + rec->body_len != len)
    {
        return SA_INVALID;
    }

    memcpy(rec->ticket_id, p + 53, idlen);
    rec->ticket_id[idlen] = '\0';

    rec->url = (const char *) p + SA_HANDOFF_HEADER;
    rec->body = rec->url + rec->url_len;

    return SA_OK;
}


int64_t
sa_handoff_backoff(uint32_t attempts)
{
    int64_t  ms;

    if (attempts == 0) {
        return 0;
    }

    if (attempts > 20) {
        return SA_HANDOFF_BACKOFF_MAX_MS;
    }

    ms = (int64_t) 1000 << (attempts - 1);

    return ms < SA_HANDOFF_BACKOFF_MAX_MS ? ms : SA_HANDOFF_BACKOFF_MAX_MS;
}


int
sa_handoff_parse_reply(const char *body, size_t len, char *id, size_t idcap,
    int32_t *wait, char *err, size_t errlen)
{
    int          n;
    char         num[32];
    double       minutes;
    yajl_val     root, v, w;
    const char  *s, *id_path[] = { "id", NULL };
    const char  *ticket_path[] = { "ticket", "id", NULL };
    const char  *wait_path[] = { "estimated_wait_minutes", NULL };

    root = sa_json_tree_parse(body, len, err, errlen);
    if (root == NULL) {
        return SA_INVALID;
    }

    if (!YAJL_IS_OBJECT(root)) {
        snprintf(err, errlen, "the reply is not a JSON object");
        yajl_tree_free(root);
        return SA_INVALID;
    }

    v = yajl_tree_get(root, id_path, yajl_t_any);
    if (v == NULL) {
        v = yajl_tree_get(root, ticket_path, yajl_t_any);
    }

    s = NULL;

    if (v != NULL && YAJL_IS_STRING(v)) {
        s = YAJL_GET_STRING(v);

    } else if (v != NULL && YAJL_IS_INTEGER(v)) {
        snprintf(num, sizeof(num), "%lld", (long long) YAJL_GET_INTEGER(v));
        s = num;
    }

    if (s == NULL) {
        snprintf(err, errlen, "the reply has no ticket \"id\"");
        yajl_tree_free(root);
        return SA_INVALID;
    }

    if (!sa_handoff_id_ok(s, strlen(s)) || strlen(s) >= idcap) {
        snprintf(err, errlen, "the reply's ticket id is not 1 to 64 of "
                 "A-Z a-z 0-9 _ . : # -");
        yajl_tree_free(root);
        return SA_INVALID;
    }

    strcpy(id, s);

    *wait = -1;

    w = yajl_tree_get(root, wait_path, yajl_t_any);

    if (w != NULL && YAJL_IS_NUMBER(w)) {
        minutes = YAJL_GET_DOUBLE(w);

        if (minutes >= 0 && minutes < 100000) {
            n = (int) (minutes + 0.5);
            *wait = n;
        }
    }

    yajl_tree_free(root);

    return SA_OK;
}


static int
sa_handoff_id_ok(const char *id, size_t len)
{
    size_t  i;
    char    c;

    if (len == 0 || len > SA_HANDOFF_ID_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = id[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':'
              || c == '#' || c == '-'))
        {
            return 0;
        }
    }

    return 1;
}


int
sa_handoff_ticket(const sa_handoff_ticket_t *t, char **json, size_t *len)
{
    int          rc;
    char         at[32], *summary, *subject;
    size_t       n;
    sa_jw_t     *w;
    const char  *buf, *priority, *reason;

    summary = NULL;
    subject = NULL;

    rc = sa_handoff_summary(t->msgs, t->n, t->state, t->decision, t->mask,
                            &summary, &subject);
    if (rc != SA_OK) {
        return rc;
    }

    w = sa_jw_new();
    if (w == NULL) {
        free(summary);
        free(subject);
        return SA_ERROR;
    }

    if (subject[0] == '\0') {
        free(subject);
        subject = strdup("Conversation with a customer");
        if (subject == NULL) {
            rc = SA_ERROR;
            goto done;
        }
    }

    sa_handoff_time(t->now_ms, at);
    priority = sa_esc_priority_name(t->decision->priority);
    reason = sa_esc_reason_name(t->decision->reason);

    if ((rc = sa_jw_open(w)) != SA_OK
        || (rc = sa_jw_kstr(w, "external_id", t->conversation_id,
                            strlen(t->conversation_id))) != SA_OK
        || (rc = sa_jw_kstr(w, "conversation_id", t->conversation_id,
                            strlen(t->conversation_id))) != SA_OK
        || (rc = sa_jw_kstr(w, "subject", subject, strlen(subject)))
           != SA_OK
        || (rc = sa_jw_kstr(w, "priority", priority, strlen(priority)))
           != SA_OK
        || (rc = sa_jw_kstr(w, "reason", reason, strlen(reason))) != SA_OK
        || (rc = sa_jw_kstr(w, "reason_detail", t->decision->detail,
                            strlen(t->decision->detail))) != SA_OK
        || (rc = (t->intent
                  ? sa_jw_kstr(w, "intent", t->intent, strlen(t->intent))
                  : sa_jw_knull(w, "intent"))) != SA_OK
        || (rc = (t->summary
                  ? sa_jw_kstr(w, "summary", t->summary, t->summary_len)
                  : sa_jw_kstr(w, "summary", summary, strlen(summary))))
           != SA_OK
        || (rc = sa_handoff_orders(w, t)) != SA_OK
        || (rc = sa_jw_kint(w, "attempts", t->state->attempts)) != SA_OK
        || (rc = sa_handoff_sentiment(w, t)) != SA_OK
        || (rc = sa_jw_key(w, "business_hours")) != SA_OK
        || (rc = sa_jw_open(w)) != SA_OK
        || (rc = sa_jw_kbool(w, "open", t->open)) != SA_OK
        || (rc = sa_jw_close(w)) != SA_OK
        || (rc = sa_jw_kstr(w, "created_at", at, strlen(at))) != SA_OK
        || (rc = sa_handoff_messages(w, t)) != SA_OK
        || (rc = sa_jw_kstr(w, "source", "ngx_support_agent",
                            sizeof("ngx_support_agent") - 1)) != SA_OK
        || (rc = sa_jw_close(w)) != SA_OK)
    {
        goto done;
    }

    buf = sa_jw_buf(w, &n);

    *json = malloc(n + 1);
    if (*json == NULL) {
        rc = SA_ERROR;
        goto done;
    }

    memcpy(*json, buf, n + 1);
    *len = n;

done:

    sa_jw_free(w);
    free(summary);
    free(subject);

    return rc;
}


static int
sa_handoff_messages(sa_jw_t *w, const sa_handoff_ticket_t *t)
{
    int          rc;
    char         at[32], *text;
    size_t       i, len;
    const char  *role;

    if ((rc = sa_jw_key(w, "messages")) != SA_OK
        || (rc = sa_jw_array_open(w)) != SA_OK)
    {
        return rc;
    }

    for (i = 0; i < t->n; i++) {
        if (t->msgs[i].role != SA_ROLE_USER
            && t->msgs[i].role != SA_ROLE_ASSISTANT)
        {
            continue;
        }

        if (t->msgs[i].content == NULL) {
            /* an assistant message with only tool calls */
            continue;
        }

        rc = sa_mask_pii(t->msgs[i].content, t->msgs[i].content_len,
                         t->mask, &text, &len);
        if (rc != SA_OK) {
            return rc;
        }

        role = sa_role_name(t->msgs[i].role);
        sa_handoff_time(t->msgs[i].ts_ms, at);

        rc = sa_jw_open(w);

        if (rc == SA_OK) {
            rc = sa_jw_kstr(w, "role", role, strlen(role));
        }

        if (rc == SA_OK) {
            rc = sa_jw_kstr(w, "content", text, len);
        }

        free(text);

        if (rc != SA_OK
            || (rc = sa_jw_kstr(w, "at", at, strlen(at))) != SA_OK
            || (rc = sa_jw_close(w)) != SA_OK)
        {
            return rc;
        }
    }

    return sa_jw_array_close(w);
}


static int
sa_handoff_orders(sa_jw_t *w, const sa_handoff_ticket_t *t)
{
    int     rc;
    char    ids[SA_HANDOFF_ORDERS][SA_ORDER_ID_MAX];
    char    found[SA_HANDOFF_ORDERS][SA_ORDER_ID_MAX];
    size_t  i, j, k, n, nfound;

    nfound = 0;

    for (i = 0; i < t->n && nfound < SA_HANDOFF_ORDERS; i++) {
        if (t->msgs[i].role != SA_ROLE_USER || t->msgs[i].content == NULL) {
            continue;
        }

        n = sa_order_ids(t->msgs[i].content, t->msgs[i].content_len, ids,
                         SA_HANDOFF_ORDERS);

        for (j = 0; j < n && nfound < SA_HANDOFF_ORDERS; j++) {
            for (k = 0; k < nfound; k++) {
                if (strcmp(found[k], ids[j]) == 0) {
                    break;
                }
            }

            if (k == nfound) {
                memcpy(found[nfound++], ids[j], SA_ORDER_ID_MAX);
            }
        }
    }

    if ((rc = sa_jw_key(w, "order_ids")) != SA_OK
        || (rc = sa_jw_array_open(w)) != SA_OK)
    {
        return rc;
    }

    for (i = 0; i < nfound; i++) {
        rc = sa_jw_str(w, found[i], strlen(found[i]));
        if (rc != SA_OK) {
            return rc;
        }
    }

    return sa_jw_array_close(w);
}


static int
sa_handoff_sentiment(sa_jw_t *w, const sa_handoff_ticket_t *t)
{
    int          rc;
    double       score[SA_HANDOFF_TREND_MAX], last;
    size_t       i, n, first;
    const char  *mood;

    n = 0;

    for (i = 0; i < t->n; i++) {
        if (t->msgs[i].role != SA_ROLE_USER || t->msgs[i].content == NULL) {
            continue;
        }

        if (n == SA_HANDOFF_TREND_MAX) {
            memmove(score, score + 1, (n - 1) * sizeof(double));
            n--;
        }

        score[n++] = sa_sentiment(t->msgs[i].content,
                                  t->msgs[i].content_len);
    }

    /* the mood now: the last two messages */
    first = n > 2 ? n - 2 : 0;
    last = 0;

    for (i = first; i < n; i++) {
        last += score[i];
    }

    mood = sa_mood_name(n ? last / (n - first) : 0.5);

    if ((rc = sa_jw_key(w, "sentiment")) != SA_OK
        || (rc = sa_jw_open(w)) != SA_OK
        || (rc = sa_jw_kstr(w, "mood", mood, strlen(mood))) != SA_OK
        || (rc = sa_jw_key(w, "trend")) != SA_OK
        || (rc = sa_jw_array_open(w)) != SA_OK)
    {
        return rc;
    }

    for (i = 0; i < n; i++) {
        /* three decimals are plenty for a human */
        rc = sa_jw_double(w, (double) (long) (score[i] * 1000 + 0.5) / 1000);
        if (rc != SA_OK) {
            return rc;
        }
    }

    if ((rc = sa_jw_array_close(w)) != SA_OK) {
        return rc;
    }

    return sa_jw_close(w);
}


void
sa_handoff_time(int64_t ms, char *buf)
{
    time_t     sec;
    struct tm  tm;

    if (ms < 0) {
        ms = 0;
    }

    sec = (time_t) (ms / 1000);
    gmtime_r(&sec, &tm);

    /* the bounds tell the compiler the text fits */
    snprintf(buf, 32, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ",
             (unsigned) (tm.tm_year + 1900) % 10000u,
             (unsigned) (tm.tm_mon + 1) % 100u, (unsigned) tm.tm_mday % 100u,
             (unsigned) tm.tm_hour % 100u, (unsigned) tm.tm_min % 100u,
             (unsigned) tm.tm_sec % 100u, (unsigned) (ms % 1000));
}


static void
sa_put16(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char) v;
    p[1] = (unsigned char) (v >> 8);
}


static void
sa_put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char) v;
    p[1] = (unsigned char) (v >> 8);
    p[2] = (unsigned char) (v >> 16);
    p[3] = (unsigned char) (v >> 24);
}


static void
sa_put64(unsigned char *p, int64_t v)
{
    sa_put32(p, (uint32_t) ((uint64_t) v & 0xffffffff));
    sa_put32(p + 4, (uint32_t) ((uint64_t) v >> 32));
}


static uint32_t
sa_get16(const unsigned char *p)
{
    return (uint32_t) p[0] | ((uint32_t) p[1] << 8);
}


static uint32_t
sa_get32(const unsigned char *p)
{
    return (uint32_t) p[0] | ((uint32_t) p[1] << 8) | ((uint32_t) p[2] << 16)
           | ((uint32_t) p[3] << 24);
}


static int64_t
sa_get64(const unsigned char *p)
{
    return (int64_t) ((uint64_t) sa_get32(p)
                      | ((uint64_t) sa_get32(p + 4) << 32));
}
