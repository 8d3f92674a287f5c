
/*
 * Copyright (C) ngx_support_agent authors
 */


#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>
#include <yajl/yajl_tree.h>

#include "sa_json.h"
#include "sa_utf8.h"


#define SA_CONVERSATION_ID_MIN  8
#define SA_CONVERSATION_ID_MAX  64


/* what the request scan remembers of one top-level field */
typedef enum {
    SA_REQ_FIELD_ABSENT = 0,
    SA_REQ_FIELD_NULL,
    SA_REQ_FIELD_STRING,
    SA_REQ_FIELD_OTHER
} sa_req_field_e;


typedef enum {
    SA_REQ_WANT_NONE = 0,
    SA_REQ_WANT_MESSAGE,
    SA_REQ_WANT_CONVERSATION_ID
} sa_req_want_e;


/*
 * The request is scanned with yajl's event parser first: it keeps the
 * true length of strings (yajl_tree NUL-terminates them and so loses
 * everything after a "\u0000"), and it bounds the nesting before a tree
 * is built.
 */

typedef struct {
    size_t           depth;
    int              top_is_object;
    sa_req_want_e    want;

    sa_req_field_e   message_type;
    char            *message;
    size_t           message_len;

    sa_req_field_e   conversation_id_type;
    char            *conversation_id;
    size_t           conversation_id_len;

    int              too_deep;
    int              no_memory;
} sa_req_scan_t;


static int sa_req_value(sa_req_scan_t *scan, sa_req_field_e type,
    const unsigned char *s, size_t len);
static int sa_req_null(void *ctx);
static int sa_req_boolean(void *ctx, int v);
static int sa_req_number(void *ctx, const char *s, size_t len);
static int sa_req_string(void *ctx, const unsigned char *s, size_t len);
static int sa_req_start_map(void *ctx);
static int sa_req_start_array(void *ctx);
static int sa_req_open(sa_req_scan_t *scan);
static int sa_req_map_key(void *ctx, const unsigned char *key, size_t len);
static int sa_req_end(void *ctx);
static sa_req_status_e sa_req_scan(const char *body, size_t len,
    sa_req_scan_t *scan, char *err, size_t errlen);
static int sa_req_blank(const unsigned char *p, size_t len);
static int sa_req_conversation_id_valid(const char *id, size_t len);
static void sa_json_error(char *err, size_t errlen, const char *prefix,
    const char *reason);


static yajl_callbacks  sa_req_callbacks = {
    sa_req_null,
    sa_req_boolean,
    NULL,
    NULL,
    sa_req_number,
    sa_req_string,
    sa_req_start_map,
    sa_req_map_key,
    sa_req_end,
    sa_req_start_array,
    sa_req_end
};


sa_req_status_e
sa_chat_request_parse(const char *body, size_t len, size_t max_message,
    sa_chat_request_t *req, char *err, size_t errlen)
{
    char             reason[128];
    sa_req_scan_t    scan;
    sa_req_status_e  status;

    memset(req, 0, sizeof(sa_chat_request_t));
    memset(&scan, 0, sizeof(sa_req_scan_t));
    sa_json_error(err, errlen, "", NULL);

    /* RFC 8259 lets parsers ignore a BOM; yajl does not */
    if (len >= 3 && memcmp(body, "\xef\xbb\xbf", 3) == 0) {
        body += 3;
        len -= 3;
    }

    if (!sa_utf8_valid((const unsigned char *) body, len)) {
        sa_json_error(err, errlen, "request body is not valid UTF-8", NULL);
        return SA_REQ_BAD_UTF8;
    }

    status = sa_req_scan(body, len, &scan, err, errlen);
    if (status != SA_REQ_OK) {
        goto done;
    }

    if (!scan.top_is_object) {
        sa_json_error(err, errlen, "request body must be a JSON object",
                      NULL);
        status = SA_REQ_NOT_OBJECT;
        goto done;
    }

    req->root = sa_json_tree_parse(body, len, reason, sizeof(reason));
    if (req->root == NULL) {
        /* the scan accepted the text, so only memory can be short */
        sa_json_error(err, errlen, "out of memory", NULL);
        status = SA_REQ_NO_MEMORY;
        goto done;
    }

    switch (scan.message_type) {

    case SA_REQ_FIELD_STRING:
        break;

    case SA_REQ_FIELD_ABSENT:
        sa_json_error(err, errlen, "\"message\" is required", NULL);
        status = SA_REQ_NO_MESSAGE;
        goto done;

    default:
        sa_json_error(err, errlen, "\"message\" must be a non-empty string",
                      NULL);
        status = SA_REQ_BAD_MESSAGE;
        goto done;
    }

    if (memchr(scan.message, '\0', scan.message_len) != NULL) {
        /* C string consumers downstream would cut the text there */
        sa_json_error(err, errlen,
                      "\"message\" must not contain NUL characters", NULL);
        status = SA_REQ_BAD_MESSAGE;
        goto done;
    }

    /* yajl decodes an unpaired low surrogate escape into bytes that are
       not UTF-8 (an unpaired high one already becomes '?') */
    (void) sa_utf8_sanitize((unsigned char *) scan.message,
                            scan.message_len);

    if (sa_req_blank((const unsigned char *) scan.message,
                     scan.message_len))
    {
        sa_json_error(err, errlen, "\"message\" must be a non-empty string",
                      NULL);
        status = SA_REQ_EMPTY_MESSAGE;
        goto done;
    }

    if (max_message && scan.message_len > max_message) {
        snprintf(reason, sizeof(reason), "%zu bytes", max_message);
        sa_json_error(err, errlen, "\"message\" is longer than ", reason);
        status = SA_REQ_MESSAGE_TOO_LONG;
        goto done;
    }

    switch (scan.conversation_id_type) {

    case SA_REQ_FIELD_ABSENT:
    case SA_REQ_FIELD_NULL:
        break;

    case SA_REQ_FIELD_STRING:
        if (sa_req_conversation_id_valid(scan.conversation_id,
                                         scan.conversation_id_len))
        {
            break;
        }

        /* fall through */

    default:
        sa_json_error(err, errlen, "\"conversation_id\" must be a string of "
                      "8 to 64 letters, digits, '_' or '-'", NULL);
        status = SA_REQ_BAD_CONVERSATION_ID;
        goto done;
    }

    req->message = scan.message;
    req->message_len = scan.message_len;
    scan.message = NULL;

    if (scan.conversation_id_type == SA_REQ_FIELD_STRING) {
        req->conversation_id = scan.conversation_id;
        req->conversation_id_len = scan.conversation_id_len;
        scan.conversation_id = NULL;
    }

done:

    free(scan.message);
    free(scan.conversation_id);

    return status;
}


void
sa_chat_request_free(sa_chat_request_t *req)
{
    free(req->message);
    free(req->conversation_id);

    if (req->root) {
        yajl_tree_free(req->root);
    }

    memset(req, 0, sizeof(sa_chat_request_t));
}


static sa_req_status_e
sa_req_scan(const char *body, size_t len, sa_req_scan_t *scan, char *err,
    size_t errlen)
{
    char           *reason, *nl;
    yajl_handle     h;
    yajl_status     rc;
    sa_req_status_e status;

    h = yajl_alloc(&sa_req_callbacks, NULL, scan);
    if (h == NULL) {
        sa_json_error(err, errlen, "out of memory", NULL);
        return SA_REQ_NO_MEMORY;
    }

    rc = yajl_parse(h, (const unsigned char *) body, len);
    if (rc == yajl_status_ok) {
        rc = yajl_complete_parse(h);
    }

    status = SA_REQ_OK;

    if (scan->no_memory) {
        sa_json_error(err, errlen, "out of memory", NULL);
        status = SA_REQ_NO_MEMORY;

    } else if (scan->too_deep) {
        sa_json_error(err, errlen, "request body is not valid JSON: "
                      "nested too deeply", NULL);
        status = SA_REQ_MALFORMED;

    } else if (rc != yajl_status_ok) {
        /* the short form: yajl's verbose one quotes the body */
        reason = (char *) yajl_get_error(h, 0, NULL, 0);

        if (reason) {
            nl = strchr(reason, '\n');
            if (nl) {
                *nl = '\0';
            }
        }

        sa_json_error(err, errlen, "request body is not valid JSON: ",
                      reason ? reason : "parse error");

        if (reason) {
            yajl_free_error(h, (unsigned char *) reason);
        }

        status = SA_REQ_MALFORMED;
    }

    yajl_free(h);

    return status;
}


static int
sa_req_value(sa_req_scan_t *scan, sa_req_field_e type,
    const unsigned char *s, size_t len)
{
    char          **dst;
    size_t         *dst_len;
    sa_req_field_e *dst_type;

    if (scan->depth != 1 || scan->want == SA_REQ_WANT_NONE) {
        return 1;
    }

    if (scan->want == SA_REQ_WANT_MESSAGE) {
        dst = &scan->message;
        dst_len = &scan->message_len;
        dst_type = &scan->message_type;

    } else {
        dst = &scan->conversation_id;
        dst_len = &scan->conversation_id_len;
        dst_type = &scan->conversation_id_type;
    }

    scan->want = SA_REQ_WANT_NONE;

    /* the first of duplicate keys wins, as with yajl_tree_get() */
    if (*dst_type != SA_REQ_FIELD_ABSENT) {
        return 1;
    }

    *dst_type = type;

    if (type == SA_REQ_FIELD_STRING) {
        *dst = malloc(len + 1);
        if (*dst == NULL) {
            scan->no_memory = 1;
            return 0;
        }

        memcpy(*dst, s, len);
        (*dst)[len] = '\0';
        *dst_len = len;
    }

    return 1;
}


static int
sa_req_null(void *ctx)
{
    return sa_req_value(ctx, SA_REQ_FIELD_NULL, NULL, 0);
}


static int
sa_req_boolean(void *ctx, int v)
{
    return sa_req_value(ctx, SA_REQ_FIELD_OTHER, NULL, 0);
}


static int
sa_req_number(void *ctx, const char *s, size_t len)
{
    return sa_req_value(ctx, SA_REQ_FIELD_OTHER, NULL, 0);
}


static int
sa_req_string(void *ctx, const unsigned char *s, size_t len)
{
    return sa_req_value(ctx, SA_REQ_FIELD_STRING, s, len);
}


static int
sa_req_start_map(void *ctx)
{
    sa_req_scan_t  *scan = ctx;

    if (scan->depth == 0) {
        scan->top_is_object = 1;
    }

    return sa_req_open(scan);
}


static int
sa_req_start_array(void *ctx)
{
    return sa_req_open(ctx);
}


static int
sa_req_open(sa_req_scan_t *scan)
{
    if (!sa_req_value(scan, SA_REQ_FIELD_OTHER, NULL, 0)) {
        return 0;
    }

    if (++scan->depth > SA_JSON_MAX_DEPTH) {
        scan->too_deep = 1;
        return 0;
    }

    return 1;
}


static int
sa_req_map_key(void *ctx, const unsigned char *key, size_t len)
{
    sa_req_scan_t  *scan = ctx;

    if (scan->depth != 1) {
        return 1;
    }

    if (len == 7 && memcmp(key, "message", 7) == 0) {
        scan->want = SA_REQ_WANT_MESSAGE;

    } else if (len == 15 && memcmp(key, "conversation_id", 15) == 0) {
        scan->want = SA_REQ_WANT_CONVERSATION_ID;

    } else {
        scan->want = SA_REQ_WANT_NONE;
    }

    return 1;
}


static int
sa_req_end(void *ctx)
{
    sa_req_scan_t  *scan = ctx;

    scan->depth--;

    return 1;
}


/*
 * White space that shows nothing: ASCII space and controls, and the
 * Unicode spaces a paste from a word processor or a phone may carry.
 */

static int
sa_req_blank(const unsigned char *p, size_t len)
{
    size_t  i, n;

    static const char  *spaces[] = {
        "\xc2\x85",            /* U+0085 next line */
        "\xc2\xa0",            /* U+00A0 no-break space */
        "\xe1\x9a\x80",        /* U+1680 ogham space mark */
        "\xe2\x80\x8b",        /* U+200B zero width space */
        "\xe2\x80\xa8",        /* U+2028 line separator */
        "\xe2\x80\xa9",        /* U+2029 paragraph separator */
        "\xe2\x80\xaf",        /* U+202F narrow no-break space */
        "\xe2\x81\x9f",        /* U+205F medium mathematical space */
        "\xe3\x80\x80",        /* U+3000 ideographic space */
        "\xef\xbb\xbf",        /* U+FEFF zero width no-break space */
        NULL
    };

    while (len) {

        if (*p == ' ' || (*p >= '\t' && *p <= '\r')) {
            p++;
            len--;
            continue;
        }

        /* U+2000 .. U+200A, the typographic spaces */
        if (len >= 3 && p[0] == 0xe2 && p[1] == 0x80 && p[2] <= 0x8a) {
            p += 3;
            len -= 3;
            continue;
        }

        n = 0;

        for (i = 0; spaces[i]; i++) {
            if (len >= strlen(spaces[i])
                && memcmp(p, spaces[i], strlen(spaces[i])) == 0)
            {
                n = strlen(spaces[i]);
                break;
            }
        }

        if (n == 0) {
            return 0;
        }

        p += n;
        len -= n;
    }

    return 1;
}


static int
sa_req_conversation_id_valid(const char *id, size_t len)
{
    size_t  i;
    char    c;

    if (len < SA_CONVERSATION_ID_MIN || len > SA_CONVERSATION_ID_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = id[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || c == '-'))
        {
            return 0;
        }
    }

    return 1;
}


static void
sa_json_error(char *err, size_t errlen, const char *prefix,
    const char *reason)
{
    if (err == NULL || errlen == 0) {
        return;
    }

    snprintf(err, errlen, "%s%s", prefix, reason ? reason : "");
}


void *
sa_json_tree_parse(const char *p, size_t len, char *err, size_t errlen)
{
    char     *copy, *nl, reason[256];
    yajl_val  root;

    sa_json_error(err, errlen, "", NULL);

    /* yajl_tree_parse() reads up to a NUL; a NUL is never valid in JSON
       text outside strings, and inside them it must be escaped */
    if (memchr(p, '\0', len) != NULL) {
        sa_json_error(err, errlen, "NUL byte in JSON text", NULL);
        return NULL;
    }

    if (sa_json_nesting(p, len) > SA_JSON_MAX_DEPTH) {
        sa_json_error(err, errlen, "JSON nested too deeply", NULL);
        return NULL;
    }

    copy = malloc(len + 1);
    if (copy == NULL) {
        sa_json_error(err, errlen, "out of memory", NULL);
        return NULL;
    }

    memcpy(copy, p, len);
    copy[len] = '\0';

    reason[0] = '\0';
    root = yajl_tree_parse(copy, reason, sizeof(reason));

    free(copy);

    if (root == NULL) {
        /* the first line only: the rest quotes the text */
        nl = strchr(reason, '\n');
        if (nl) {
            *nl = '\0';
        }

        sa_json_error(err, errlen, reason[0] ? reason : "parse error", NULL);
    }

    return root;
}


size_t
sa_json_nesting(const char *p, size_t len)
{
    int          in_string, escaped;
    size_t       depth, deepest;
    const char  *end;

    in_string = 0;
    escaped = 0;
    depth = 0;
    deepest = 0;

    for (end = p + len; p < end; p++) {

        if (in_string) {
            if (escaped) {
                escaped = 0;

            } else if (*p == '\\') {
                escaped = 1;

            } else if (*p == '"') {
                in_string = 0;
            }

            continue;
        }

        switch (*p) {

        case '"':
            in_string = 1;
            break;

        case '[':
        case '{':
            if (++depth > deepest) {
                deepest = depth;
            }

            break;

        case ']':
        case '}':
            if (depth) {
                depth--;
            }

            break;

        default:
            break;
        }
    }

    return deepest;
}


/* the JSON builder */


#define SA_JW_MAX_DEPTH    128

#define SA_JW_ARRAY        0x01
#define SA_JW_OBJECT       0x02
#define SA_JW_NONEMPTY     0x04
#define SA_JW_WANT_VALUE   0x08    /* a key was written, its value not */


struct sa_jw_s {
    char           *buf;
    size_t          len;
    size_t          cap;
    size_t          depth;     /* 0: top level, outside any container */
    int             done;      /* the top-level value was started */
    unsigned char   level[SA_JW_MAX_DEPTH + 1];
};


/* what a failed call puts back */
typedef struct {
    size_t          len;
    size_t          depth;
    int             done;
    unsigned char   level;
} sa_jw_mark_t;


static void sa_jw_mark(sa_jw_t *w, sa_jw_mark_t *m);
static int sa_jw_rollback(sa_jw_t *w, sa_jw_mark_t *m, int rc);
static int sa_jw_reserve(sa_jw_t *w, size_t more);
static int sa_jw_put(sa_jw_t *w, const char *s, size_t len);
static int sa_jw_value_start(sa_jw_t *w);
static int sa_jw_do_open(sa_jw_t *w, unsigned char kind);
static int sa_jw_do_close(sa_jw_t *w, unsigned char kind);
static int sa_jw_do_key(sa_jw_t *w, const char *key, size_t len);
static int sa_jw_do_string(sa_jw_t *w, const char *s, size_t len);
static int sa_jw_do_literal(sa_jw_t *w, const char *s, size_t len);
static int sa_jw_do_int(sa_jw_t *w, long long v);
static int sa_jw_do_double(sa_jw_t *w, double v);
static int sa_jw_do_tree(sa_jw_t *w, yajl_val v);
static int sa_jw_escape(sa_jw_t *w, const char *s, size_t len);
static int sa_jw_check_raw(const char *json, size_t len);
static size_t sa_jw_minify(char *dst, const char *src, size_t len);


sa_jw_t *
sa_jw_new(void)
{
    sa_jw_t  *w;

    w = calloc(1, sizeof(sa_jw_t));
    if (w == NULL) {
        return NULL;
    }

    if (sa_jw_reserve(w, 256) != SA_OK) {
        free(w);
        return NULL;
    }

    w->buf[0] = '\0';

    return w;
}


void
sa_jw_free(sa_jw_t *w)
{
    if (w == NULL) {
        return;
    }

    free(w->buf);
    free(w);
}


void
sa_jw_reset(sa_jw_t *w)
{
    w->len = 0;
    w->depth = 0;
    w->done = 0;
    w->buf[0] = '\0';
}


const char *
sa_jw_buf(sa_jw_t *w, size_t *len)
{
    if (len) {
        *len = w->len;
    }

    return w->buf;
}


int
sa_jw_complete(const sa_jw_t *w)
{
    return w->depth == 0 && w->done;
}


int
sa_jw_open(sa_jw_t *w)
{
    sa_jw_mark_t  m;

    sa_jw_mark(w, &m);
    return sa_jw_rollback(w, &m, sa_jw_do_open(w, SA_JW_OBJECT));
}


int
sa_jw_close(sa_jw_t *w)
{
    sa_jw_mark_t  m;

    sa_jw_mark(w, &m);
    return sa_jw_rollback(w, &m, sa_jw_do_close(w, SA_JW_OBJECT));
}


int
sa_jw_array_open(sa_jw_t *w)
{
    sa_jw_mark_t  m;

    sa_jw_mark(w, &m);
    return sa_jw_rollback(w, &m, sa_jw_do_open(w, SA_JW_ARRAY));
}


int
sa_jw_array_close(sa_jw_t *w)
{
    sa_jw_mark_t  m;

    sa_jw_mark(w, &m);
    return sa_jw_rollback(w, &m, sa_jw_do_close(w, SA_JW_ARRAY));
}


int
sa_jw_key(sa_jw_t *w, const char *key)
{
    sa_jw_mark_t  m;

    sa_jw_mark(w, &m);
    return sa_jw_rollback(w, &m, sa_jw_do_key(w, key, strlen(key)));
}


int
sa_jw_str(sa_jw_t *w, const char *s, size_t len)
{
    sa_jw_mark_t  m;

    sa_jw_mark(w, &m);
    return sa_jw_rollback(w, &m, sa_jw_do_string(w, s, len));
}


int
sa_jw_kstr(sa_jw_t *w, const char *key, const char *s, size_t len)
{
    int           rc;
    sa_jw_mark_t  m;

    sa_jw_mark(w, &m);

    rc = sa_jw_do_key(w, key, strlen(key));
    if (rc == SA_OK) {
        rc = sa_jw_do_string(w, s, len);
    }

    return sa_jw_rollback(w, &m, rc);
}


int
sa_jw_kint(sa_jw_t *w, const char *key, long long v)
{
    int           rc;
    sa_jw_mark_t  m;

    sa_jw_mark(w, &m);

    rc = sa_jw_do_key(w, key, strlen(key));
    if (rc == SA_OK) {
        rc = sa_jw_do_int(w, v);
    }

    return sa_jw_rollback(w, &m, rc);
}


int
sa_jw_kdouble(sa_jw_t *w, const char *key, double v)
{
    int           rc;
    sa_jw_mark_t  m;

    sa_jw_mark(w, &m);

    rc = sa_jw_do_key(w, key, strlen(key));
    if (rc == SA_OK) {
        rc = sa_jw_do_double(w, v);
    }

    return sa_jw_rollback(w, &m, rc);
}


int
sa_jw_kbool(sa_jw_t *w, const char *key, int v)
{
    int           rc;
    sa_jw_mark_t  m;

    sa_jw_mark(w, &m);

    rc = sa_jw_do_key(w, key, strlen(key));
    if (rc == SA_OK) {
        rc = v ? sa_jw_do_literal(w, "true", 4)
               : sa_jw_do_literal(w, "false", 5);
    }

    return sa_jw_rollback(w, &m, rc);
}


int
sa_jw_knull(sa_jw_t *w, const char *key)
{
    int           rc;
    sa_jw_mark_t  m;

    sa_jw_mark(w, &m);

    rc = sa_jw_do_key(w, key, strlen(key));
    if (rc == SA_OK) {
        rc = sa_jw_do_literal(w, "null", 4);
    }

    return sa_jw_rollback(w, &m, rc);
}


int
sa_jw_int(sa_jw_t *w, long long v)
{
    sa_jw_mark_t  m;

    sa_jw_mark(w, &m);
    return sa_jw_rollback(w, &m, sa_jw_do_int(w, v));
}


int
sa_jw_double(sa_jw_t *w, double v)
{
    sa_jw_mark_t  m;

    sa_jw_mark(w, &m);
    return sa_jw_rollback(w, &m, sa_jw_do_double(w, v));
}


int
sa_jw_bool(sa_jw_t *w, int v)
{
    sa_jw_mark_t  m;

    sa_jw_mark(w, &m);
    return sa_jw_rollback(w, &m, v ? sa_jw_do_literal(w, "true", 4)
                                   : sa_jw_do_literal(w, "false", 5));
}


int
sa_jw_null(sa_jw_t *w)
{
    sa_jw_mark_t  m;

    sa_jw_mark(w, &m);
    return sa_jw_rollback(w, &m, sa_jw_do_literal(w, "null", 4));
}


int
sa_jw_raw(sa_jw_t *w, const char *json, size_t len)
{
    int           rc;
    sa_jw_mark_t  m;

    rc = sa_jw_check_raw(json, len);
    if (rc != SA_OK) {
        return rc;
    }

    sa_jw_mark(w, &m);

    rc = sa_jw_value_start(w);

    if (rc == SA_OK) {
        rc = sa_jw_reserve(w, len);
    }

    if (rc == SA_OK) {
        w->len += sa_jw_minify(w->buf + w->len, json, len);
        w->buf[w->len] = '\0';
    }

    return sa_jw_rollback(w, &m, rc);
}


int
sa_jw_raw_members(sa_jw_t *w, const char *json, size_t len)
{
    int             rc;
    char           *min;
    size_t          n;
    sa_jw_mark_t    m;
    unsigned char  *level;

    rc = sa_jw_check_raw(json, len);
    if (rc != SA_OK) {
        return rc;
    }

    level = &w->level[w->depth];

    if (w->depth == 0 || !(*level & SA_JW_OBJECT)
        || (*level & SA_JW_WANT_VALUE))
    {
        return SA_INVALID;
    }

    min = malloc(len + 1);
    if (min == NULL) {
        return SA_ERROR;
    }

    n = sa_jw_minify(min, json, len);

    if (min[0] != '{') {
        free(min);
        return SA_INVALID;
    }

    sa_jw_mark(w, &m);

    rc = SA_OK;

    /* "{}" adds nothing; otherwise the members go in without the braces */
    if (n > 2) {
        if (*level & SA_JW_NONEMPTY) {
            rc = sa_jw_put(w, ",", 1);
        }

        if (rc == SA_OK) {
            rc = sa_jw_put(w, min + 1, n - 2);
        }

        *level |= SA_JW_NONEMPTY;
    }

    free(min);

    return sa_jw_rollback(w, &m, rc);
}


int
sa_jw_tree(sa_jw_t *w, const void *tree)
{
    yajl_val      v;
    sa_jw_mark_t  m;

    if (tree == NULL) {
        return SA_INVALID;
    }

    /* yajl's accessors take non-const values; nothing is changed */
    v = (yajl_val) (uintptr_t) tree;

    sa_jw_mark(w, &m);
    return sa_jw_rollback(w, &m, sa_jw_do_tree(w, v));
}


static void
sa_jw_mark(sa_jw_t *w, sa_jw_mark_t *m)
{
    m->len = w->len;
    m->depth = w->depth;
    m->done = w->done;
    m->level = w->level[w->depth];
}


static int
sa_jw_rollback(sa_jw_t *w, sa_jw_mark_t *m, int rc)
{
    if (rc == SA_OK) {
        return SA_OK;
    }

    w->len = m->len;
    w->depth = m->depth;
    w->done = m->done;
    w->level[w->depth] = m->level;
    w->buf[w->len] = '\0';

    return rc;
}


static int
sa_jw_reserve(sa_jw_t *w, size_t more)
{
    char    *buf;
    size_t   need, cap;

    /* + 1: the buffer is always NUL-terminated */
    if (more > (size_t) -1 / 2 - w->len) {
        return SA_ERROR;
    }

    need = w->len + more + 1;

    if (need <= w->cap) {
        return SA_OK;
    }

    cap = w->cap ? w->cap : 256;

    while (cap < need) {
        cap *= 2;
    }

    buf = realloc(w->buf, cap);
    if (buf == NULL) {
        return SA_ERROR;
    }

    w->buf = buf;
    w->cap = cap;

    return SA_OK;
}


static int
sa_jw_put(sa_jw_t *w, const char *s, size_t len)
{
    if (sa_jw_reserve(w, len) != SA_OK) {
        return SA_ERROR;
    }

    memcpy(w->buf + w->len, s, len);
    w->len += len;
    w->buf[w->len] = '\0';

    return SA_OK;
}


/* the comma before a value, and the checks that a value may come now */

static int
sa_jw_value_start(sa_jw_t *w)
{
    unsigned char  *level;

    if (w->depth == 0) {
        if (w->done) {
            return SA_INVALID;      /* one top-level value only */
        }

        w->done = 1;
        return SA_OK;
    }

    level = &w->level[w->depth];

    if (*level & SA_JW_ARRAY) {
        if (*level & SA_JW_NONEMPTY) {
            if (sa_jw_put(w, ",", 1) != SA_OK) {
                return SA_ERROR;
            }
        }

        *level |= SA_JW_NONEMPTY;
        return SA_OK;
    }

    if (!(*level & SA_JW_WANT_VALUE)) {
        return SA_INVALID;          /* a value in an object needs a key */
    }

    *level &= ~SA_JW_WANT_VALUE;

    return SA_OK;
}


static int
sa_jw_do_open(sa_jw_t *w, unsigned char kind)
{
    int  rc;

    if (w->depth >= SA_JW_MAX_DEPTH) {
        return SA_INVALID;
    }

    rc = sa_jw_value_start(w);
    if (rc != SA_OK) {
        return rc;
    }

    rc = sa_jw_put(w, kind == SA_JW_OBJECT ? "{" : "[", 1);
    if (rc != SA_OK) {
        return rc;
    }

    w->level[++w->depth] = kind;

    return SA_OK;
}


static int
sa_jw_do_close(sa_jw_t *w, unsigned char kind)
{
    int             rc;
    unsigned char   level;

    if (w->depth == 0) {
        return SA_INVALID;
    }

    level = w->level[w->depth];

    if (!(level & kind) || (level & SA_JW_WANT_VALUE)) {
        return SA_INVALID;
    }

    rc = sa_jw_put(w, kind == SA_JW_OBJECT ? "}" : "]", 1);
    if (rc != SA_OK) {
        return rc;
    }

    w->depth--;

    return SA_OK;
}


static int
sa_jw_do_key(sa_jw_t *w, const char *key, size_t len)
{
    int             rc;
    unsigned char  *level;

    level = &w->level[w->depth];

    if (w->depth == 0 || !(*level & SA_JW_OBJECT)
        || (*level & SA_JW_WANT_VALUE))
    {
        return SA_INVALID;
    }

    if (*level & SA_JW_NONEMPTY) {
        rc = sa_jw_put(w, ",", 1);
        if (rc != SA_OK) {
            return rc;
        }
    }

    rc = sa_jw_escape(w, key, len);
    if (rc != SA_OK) {
        return rc;
    }

    rc = sa_jw_put(w, ":", 1);
    if (rc != SA_OK) {
        return rc;
    }

    *level |= SA_JW_NONEMPTY | SA_JW_WANT_VALUE;

    return SA_OK;
}


static int
sa_jw_do_string(sa_jw_t *w, const char *s, size_t len)
{
    int  rc;

    /* the comma this may write goes again if sa_jw_escape() refuses the
       string: the public callers roll back on failure */
    rc = sa_jw_value_start(w);
    if (rc != SA_OK) {
        return rc;
    }

    return sa_jw_escape(w, s, len);
}


static int
sa_jw_do_literal(sa_jw_t *w, const char *s, size_t len)
{
    int  rc;

    rc = sa_jw_value_start(w);
    if (rc != SA_OK) {
        return rc;
    }

    return sa_jw_put(w, s, len);
}


static int
sa_jw_do_int(sa_jw_t *w, long long v)
{
    int   n;
    char  num[32];

    n = snprintf(num, sizeof(num), "%lld", v);

    return sa_jw_do_literal(w, num, n);
}


static int
sa_jw_do_double(sa_jw_t *w, double v)
{
    int    n, precision, exponent;
    char  *comma, num[40];

    if (!isfinite(v)) {
        return SA_INVALID;          /* JSON has no NaN or Infinity */
    }

    /* the fewest digits that read back as the same double: 0.2, not
       0.20000000000000001 */

    for (precision = 1; precision < 17; precision++) {
        snprintf(num, sizeof(num), "%.*e", precision - 1, v);

        if (strtod(num, NULL) == v) {
            break;
        }
    }

    /* %g would write 100 as 1e+02 with one digit: with enough digits for
       the integer part, numbers of ordinary size come out plainly */
    exponent = atoi(strchr(num, 'e') + 1);

    if (exponent >= precision && exponent < 17) {
        precision = exponent + 1;
    }

    n = snprintf(num, sizeof(num), "%.*g", precision, v);

    /* a locale with a decimal comma must not leak into JSON */
    comma = strchr(num, ',');
    if (comma) {
        *comma = '.';
    }

    return sa_jw_do_literal(w, num, n);
}


static int
sa_jw_do_tree(sa_jw_t *w, yajl_val v)
{
    int     rc;
    size_t  i;

    if (YAJL_IS_STRING(v)) {
        return sa_jw_do_string(w, v->u.string, strlen(v->u.string));
    }

    if (YAJL_IS_NUMBER(v)) {
        /* yajl keeps the number as it was written, which is valid JSON */
        return sa_jw_do_literal(w, v->u.number.r, strlen(v->u.number.r));
    }

    if (YAJL_IS_TRUE(v)) {
        return sa_jw_do_literal(w, "true", 4);
    }

    if (YAJL_IS_FALSE(v)) {
        return sa_jw_do_literal(w, "false", 5);
    }

    if (YAJL_IS_NULL(v)) {
        return sa_jw_do_literal(w, "null", 4);
    }

    if (YAJL_IS_OBJECT(v)) {
        rc = sa_jw_do_open(w, SA_JW_OBJECT);

        for (i = 0; rc == SA_OK && i < v->u.object.len; i++) {
            rc = sa_jw_do_key(w, v->u.object.keys[i],
                              strlen(v->u.object.keys[i]));

            if (rc == SA_OK) {
                rc = sa_jw_do_tree(w, v->u.object.values[i]);
            }
        }

        return rc == SA_OK ? sa_jw_do_close(w, SA_JW_OBJECT) : rc;
    }

    if (YAJL_IS_ARRAY(v)) {
        rc = sa_jw_do_open(w, SA_JW_ARRAY);

        for (i = 0; rc == SA_OK && i < v->u.array.len; i++) {
            rc = sa_jw_do_tree(w, v->u.array.values[i]);
        }

        return rc == SA_OK ? sa_jw_do_close(w, SA_JW_ARRAY) : rc;
    }

    return SA_INVALID;
}


static int
sa_jw_escape(sa_jw_t *w, const char *s, size_t len)
{
    char                *d;
    unsigned char        c;
    const unsigned char *p, *end;

    static const char    hex[] = "0123456789abcdef";

    if (!sa_utf8_valid((const unsigned char *) s, len)) {
        return SA_INVALID;
    }

    /* the worst case: every byte a control character as \u00XX */
    if (len > ((size_t) -1 / 2 - 2) / 6
        || sa_jw_reserve(w, len * 6 + 2) != SA_OK)
    {
        return SA_ERROR;
    }

    d = w->buf + w->len;
    *d++ = '"';

    for (p = (const unsigned char *) s, end = p + len; p < end; p++) {
        c = *p;

        switch (c) {

        case '"':
        case '\\':
            *d++ = '\\';
            *d++ = c;
            break;

        case '\b':
            *d++ = '\\';
            *d++ = 'b';
            break;

        case '\f':
            *d++ = '\\';
            *d++ = 'f';
            break;

        case '\n':
            *d++ = '\\';
            *d++ = 'n';
            break;

        case '\r':
            *d++ = '\\';
            *d++ = 'r';
            break;

        case '\t':
            *d++ = '\\';
            *d++ = 't';
            break;

        default:
            if (c < 0x20) {
                *d++ = '\\';
                *d++ = 'u';
                *d++ = '0';
                *d++ = '0';
                *d++ = hex[c >> 4];
                *d++ = hex[c & 0xf];

            } else {
                *d++ = c;
            }
        }
    }

    *d++ = '"';

    w->len = d - w->buf;
    w->buf[w->len] = '\0';

    return SA_OK;
}


/* one complete JSON value, UTF-8, nothing after it */

static int
sa_jw_check_raw(const char *json, size_t len)
{
    yajl_handle  h;
    yajl_status  rc;

    if (!sa_utf8_valid((const unsigned char *) json, len)) {
        return SA_INVALID;
    }

    h = yajl_alloc(NULL, NULL, NULL);
    if (h == NULL) {
        return SA_ERROR;
    }

    rc = yajl_parse(h, (const unsigned char *) json, len);
    if (rc == yajl_status_ok) {
        rc = yajl_complete_parse(h);
    }

    yajl_free(h);

    return rc == yajl_status_ok ? SA_OK : SA_INVALID;
}


/* drops the white space between tokens of valid JSON */

static size_t
sa_jw_minify(char *dst, const char *src, size_t len)
{
    int          in_string, escaped;
    char        *d;
    const char  *end;

    in_string = 0;
    escaped = 0;
    d = dst;

    for (end = src + len; src < end; src++) {

        if (in_string) {
            *d++ = *src;

            if (escaped) {
                escaped = 0;

            } else if (*src == '\\') {
                escaped = 1;

            } else if (*src == '"') {
                in_string = 0;
            }

            continue;
        }

        if (*src == ' ' || *src == '\t' || *src == '\n' || *src == '\r') {
            continue;
        }

        if (*src == '"') {
            in_string = 1;
        }

        *d++ = *src;
    }

    return d - dst;
}
