
/*
 * Copyright (C) ngx_support_agent authors
 */


#include <stdlib.h>
#include <string.h>

#include "sa_sse.h"


static int sa_sse_parse(sa_sse_parser_t *p, const char *buf, size_t len);
static int sa_sse_line(sa_sse_parser_t *p);
static int sa_sse_dispatch(sa_sse_parser_t *p);
static int sa_sse_reserve(char **buf, size_t *cap, size_t need);
static int sa_sse_over_limit(sa_sse_parser_t *p, size_t more);
static size_t sa_sse_field(char *dst, const char *name, const char *value);
static size_t sa_sse_frame(char *dst, const char *id, const char *event,
    const char *payload, size_t len);


static const unsigned char  sa_sse_bom[3] = { 0xef, 0xbb, 0xbf };


void
sa_sse_parser_init(sa_sse_parser_t *p, size_t max_event,
    sa_sse_event_pt handler, void *data)
{
    memset(p, 0, sizeof(sa_sse_parser_t));

    p->max_event = max_event;
    p->handler = handler;
    p->data = data;
    p->rc = SA_OK;
}


int
sa_sse_parser_feed(sa_sse_parser_t *p, const char *buf, size_t len)
{
    int     rc;
    size_t  i;

    if (p->rc != SA_OK) {
        return p->rc;
    }

    i = 0;

    /*
     * One BOM is skipped at the start of the stream only; its bytes may
     * arrive in separate feeds, so matched bytes are held back until it is
     * clear whether they are a BOM or text.
     */

    while (!p->started && i < len) {

        if ((unsigned char) buf[i] == sa_sse_bom[p->bom_matched]) {
            p->bom_matched++;
            i++;

            if (p->bom_matched == sizeof(sa_sse_bom)) {
                p->started = 1;
            }

            continue;
        }

        p->started = 1;

        if (p->bom_matched) {
            rc = sa_sse_parse(p, (const char *) sa_sse_bom, p->bom_matched);
            if (rc != SA_OK) {
                return rc;
            }
        }
    }

    return sa_sse_parse(p, buf + i, len - i);
}


static int
sa_sse_parse(sa_sse_parser_t *p, const char *buf, size_t len)
{
    int          rc;
    size_t       n;
    const char  *end, *eol;

    end = buf + len;

    while (buf < end) {

        if (p->after_cr) {
            /* the LF of a CRLF split between two feeds */
            p->after_cr = 0;

            if (*buf == '\n') {
                buf++;
                continue;
            }
        }

        if (*buf == '\r' || *buf == '\n') {
            p->after_cr = (*buf == '\r');
            buf++;

            if (p->comment) {
                rc = SA_OK;

            } else {
                rc = sa_sse_line(p);
            }

            p->line_len = 0;
            p->in_line = 0;
            p->comment = 0;

            if (rc != SA_OK) {
                p->rc = rc;
                return rc;
            }

            continue;
        }

        for (eol = buf; eol < end && *eol != '\r' && *eol != '\n'; eol++) {
            /* void */
        }

        n = eol - buf;

        if (!p->in_line) {
            p->in_line = 1;

            /* comments (": ping") can be long: skipped, never stored */
            p->comment = (*buf == ':');
        }

        if (!p->comment) {
            if (sa_sse_over_limit(p, p->line_len + n)) {
                p->rc = SA_INVALID;
                return SA_INVALID;
            }

            if (sa_sse_reserve(&p->line, &p->line_cap, p->line_len + n)
                != SA_OK)
            {
                p->rc = SA_ERROR;
                return SA_ERROR;
            }

            memcpy(p->line + p->line_len, buf, n);
            p->line_len += n;
        }

        buf = eol;
    }

    return SA_OK;
}


static int
sa_sse_line(sa_sse_parser_t *p)
{
    char    *colon, *value;
    size_t   name_len, value_len;

    if (p->line_len == 0) {
        return sa_sse_dispatch(p);
    }

    colon = memchr(p->line, ':', p->line_len);

    if (colon == NULL) {
        /* a line without a colon is a field with an empty value */
        name_len = p->line_len;
        value = p->line + p->line_len;
        value_len = 0;

    } else {
        name_len = colon - p->line;
        value = colon + 1;
        value_len = p->line + p->line_len - value;

        if (value_len && *value == ' ') {
            value++;
            value_len--;
        }
    }

    if (name_len == 4 && memcmp(p->line, "data", 4) == 0) {

        if (sa_sse_over_limit(p, value_len + 1)) {
            return SA_INVALID;
        }

        /* + 1 for the LF that joins data lines, + 1 for the NUL */
        if (sa_sse_reserve(&p->payload, &p->payload_cap,
                           p->payload_len + value_len + 2)
            != SA_OK)
        {
            return SA_ERROR;
        }

        memcpy(p->payload + p->payload_len, value, value_len);
        p->payload_len += value_len;
        p->payload[p->payload_len++] = '\n';
        p->has_data = 1;

        return SA_OK;
    }

    if (name_len == 5 && memcmp(p->line, "event", 5) == 0) {

        if (sa_sse_over_limit(p, value_len)) {
            return SA_INVALID;
        }

        if (sa_sse_reserve(&p->event, &p->event_cap, value_len + 1)
            != SA_OK)
        {
            return SA_ERROR;
        }

        memcpy(p->event, value, value_len);
        p->event_len = value_len;
        p->event[value_len] = '\0';

        return SA_OK;
    }

    /* "id", "retry" and unknown fields do not matter to us */

    return SA_OK;
}


static int
sa_sse_dispatch(sa_sse_parser_t *p)
{
    int          rc;
    const char  *event;

    if (!p->has_data) {
        /* an event without data is not dispatched, but it ends */
        p->event_len = 0;
        return SA_OK;
    }

    /* the LF after the last data line is not part of the data */
    p->payload_len--;
    p->payload[p->payload_len] = '\0';

    event = p->event_len ? p->event : "";

    rc = SA_OK;

    if (p->handler) {
        rc = p->handler(p->data, event, p->event_len, p->payload,
                        p->payload_len);
    }

    p->payload_len = 0;
    p->event_len = 0;
    p->has_data = 0;

    return rc;
}


static int
sa_sse_over_limit(sa_sse_parser_t *p, size_t more)
{
    size_t  total;

    if (p->max_event == 0) {
        return 0;
    }

    total = p->payload_len + p->event_len;

    return more > p->max_event || total > p->max_event - more;
}


static int
sa_sse_reserve(char **buf, size_t *cap, size_t need)
{
    char    *nbuf;
    size_t   ncap;

    if (need <= *cap) {
        return SA_OK;
    }

    ncap = *cap ? *cap : 256;

    while (ncap < need) {
        if (ncap > (size_t) -1 / 2) {
            ncap = need;
            break;
        }

        ncap *= 2;
    }

    nbuf = realloc(*buf, ncap);
    if (nbuf == NULL) {
        return SA_ERROR;
    }

    *buf = nbuf;
    *cap = ncap;

    return SA_OK;
}


int
sa_sse_parser_pending(const sa_sse_parser_t *p)
{
    return p->has_data || p->event_len
           || (p->in_line && !p->comment)
           || (!p->started && p->bom_matched);
}


void
sa_sse_parser_free(sa_sse_parser_t *p)
{
    free(p->line);
    free(p->payload);
    free(p->event);

    p->line = NULL;
    p->payload = NULL;
    p->event = NULL;
    p->line_cap = 0;
    p->payload_cap = 0;
    p->event_cap = 0;
    p->line_len = 0;
    p->payload_len = 0;
    p->event_len = 0;
}


size_t
sa_sse_event_len(const char *event, const char *payload, size_t len)
{
    return sa_sse_frame(NULL, NULL, event, payload, len);
}


char *
sa_sse_event_write(char *dst, const char *event, const char *payload,
    size_t len)
{
    return dst + sa_sse_frame(dst, NULL, event, payload, len);
}


size_t
sa_sse_event_id_len(const char *id, const char *event, const char *payload,
    size_t len)
{
    return sa_sse_frame(NULL, id, event, payload, len);
}


char *
sa_sse_event_id_write(char *dst, const char *id, const char *event,
    const char *payload, size_t len)
{
    return dst + sa_sse_frame(dst, id, event, payload, len);
}


/*
 * Frames one event; with dst == NULL it only counts, so that the length
 * and the bytes written can never disagree.
 */

static size_t
sa_sse_frame(char *dst, const char *id, const char *event,
    const char *payload, size_t len)
{
    size_t       n, line;
    const char  *p, *end;

    n = 0;

    if (id != NULL) {
        n += sa_sse_field(dst ? dst + n : NULL, "id", id);
    }

    if (event != NULL && event[0] != '\0') {
        n += sa_sse_field(dst ? dst + n : NULL, "event", event);
    }

    p = payload;
    end = payload + len;

    for ( ;; ) {
        for (line = 0; p + line < end; line++) {
            if (p[line] == '\r' || p[line] == '\n') {
                break;
            }
        }

        if (dst) {
            memcpy(dst + n, "data: ", 6);
            memcpy(dst + n + 6, p, line);
            dst[n + 6 + line] = '\n';
        }

        n += 6 + line + 1;
        p += line;

        if (p == end) {
            break;
        }

        /* a CRLF is one line break, as for the browser */
        if (*p == '\r' && p + 1 < end && p[1] == '\n') {
            p++;
        }

        p++;
    }

    if (dst) {
        dst[n] = '\n';
    }

    return n + 1;
}


static size_t
sa_sse_field(char *dst, const char *name, const char *value)
{
    size_t       n;
    const char  *v;

    n = strlen(name);

    if (dst) {
        memcpy(dst, name, n);
        memcpy(dst + n, ": ", 2);
    }

    n += 2;

    /* a raw CR or LF would end the field early and break the framing */
    for (v = value; *v; v++) {
        if (*v == '\r' || *v == '\n') {
            continue;
        }

        if (dst) {
            dst[n] = *v;
        }

        n++;
    }

    if (dst) {
        dst[n] = '\n';
    }

    return n + 1;
}
