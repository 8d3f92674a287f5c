
/*
 * Copyright (C) ngx_support_agent authors
 *
 * sa_sse: the incremental parser (whatever the split of the input, the
 * events are the same) and the writer (its output parses back).
 */


#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "sa_sse.h"


/* the events seen, as "[event]{payload}" one after another */
typedef struct {
    char    log[8192];
    size_t  len;
    int     events;
    int     abort_at;      /* return 7 on this event (1-based), 0: never */
    int     bad_nul;       /* a payload was not NUL-terminated */
} collect_t;


static int
collect(void *data, const char *event, size_t event_len, const char *payload,
    size_t payload_len)
{
    collect_t  *c = data;
    size_t      need;

    c->events++;

    if (payload[payload_len] != '\0' || event[event_len] != '\0') {
        c->bad_nul++;
    }

    need = event_len + payload_len + 4;

    if (c->len + need < sizeof(c->log)) {
        c->log[c->len++] = '[';
        memcpy(c->log + c->len, event, event_len);
        c->len += event_len;
        c->log[c->len++] = ']';
        c->log[c->len++] = '{';
        memcpy(c->log + c->len, payload, payload_len);
        c->len += payload_len;
        c->log[c->len++] = '}';
        c->log[c->len] = '\0';
    }

    if (c->abort_at && c->events == c->abort_at) {
        return 7;
    }

    return 0;
}


/* feeds the whole input in pieces: step 0 = random sizes */

static int
run(const char *in, size_t len, size_t max_event, size_t step,
    collect_t *c, int *pending)
{
    int              rc;
    size_t           off, n;
    char            *piece;
    sa_sse_parser_t  p;

    memset(c, 0, sizeof(collect_t));
    sa_sse_parser_init(&p, max_event, collect, c);

    rc = SA_OK;

    for (off = 0; off < len && rc == SA_OK; off += n) {
        n = step ? step : (size_t) (rand() % 9);

        if (n > len - off) {
            n = len - off;
        }

        /* an exact-size copy, so that ASan sees any read past it */
        piece = malloc(n ? n : 1);
        memcpy(piece, in + off, n);
        rc = sa_sse_parser_feed(&p, piece, n);
        free(piece);
    }

    if (pending) {
        *pending = sa_sse_parser_pending(&p);
    }

    sa_sse_parser_free(&p);

    return rc;
}


static const char  stream[] =
    "\xef\xbb\xbf"
    ": a comment, ignored\n"
    "data: first\n"
    "\n"
    "data:no space\r\n"
    "\r\n"
    "data:  two spaces\r"
    "\r"
    "event: delta\n"
    "data: line one\n"
    "data: line two\n"
    "data\n"
    "id: 42\n"
    "retry: 1000\n"
    "unknown: field\n"
    "\n"
    "event: lonely\n"
    "\n"
    "data: after lonely\n"
    "\n"
    "data:\n"
    "\n"
    ":\n"
    "data: {\"json\":\"with: colon\"}\n"
    "\n"
    "DATA: case matters\n"
    "\n"
    "event:done\r\n"
    "data: bye\r\n"
    "\r\n"
    "data: cut off";

static const char  expected[] =
    "[]{first}"
    "[]{no space}"
    "[]{ two spaces}"
    "[delta]{line one\nline two\n}"
    "[]{after lonely}"
    "[]{}"
    "[]{{\"json\":\"with: colon\"}}"
    "[done]{bye}";


static void
test_splits(void)
{
    int        rc, pending, seed, same;
    collect_t  c;

    rc = run(stream, sizeof(stream) - 1, 0, sizeof(stream), &c, &pending);
    is_int(rc, SA_OK, "whole stream parses");
    is_str(c.log, expected, "events of the whole stream");
    is_int(c.events, 8, "8 events");
    is_int(c.bad_nul, 0, "payloads and names are NUL-terminated");
    ok(pending, "the cut-off last event is pending");

    rc = run(stream, sizeof(stream) - 1, 0, 1, &c, &pending);
    is_int(rc, SA_OK, "byte by byte");
    is_str(c.log, expected, "byte by byte: same events");
    ok(pending, "byte by byte: pending");

    same = 1;

    for (seed = 1; seed <= 500; seed++) {
        srand(seed);
        rc = run(stream, sizeof(stream) - 1, 0, 0, &c, &pending);

        if (rc != SA_OK || strcmp(c.log, expected) != 0 || !pending
            || c.bad_nul)
        {
            same = 0;
            printf("# seed %d: %s\n", seed, c.log);
            break;
        }
    }

    ok(same, "500 random splits: same events");
}


static void
test_line_endings(void)
{
    collect_t        c;
    sa_sse_parser_t  p;
    int              rc;

    memset(&c, 0, sizeof(c));
    sa_sse_parser_init(&p, 0, collect, &c);

    rc = sa_sse_parser_feed(&p, "data: a\r", 8);
    rc |= sa_sse_parser_feed(&p, "\n", 1);
    is_int(c.events, 0, "CRLF split: no event yet after the first line");
    rc |= sa_sse_parser_feed(&p, "\r", 1);
    is_int(c.events, 1, "CR of the blank line dispatches");
    rc |= sa_sse_parser_feed(&p, "\ndata: b\r\n\r\n", 12);
    is_int(rc, SA_OK, "CRLF split feeds");
    is_str(c.log, "[]{a}[]{b}", "CRLF split between feeds: no extra lines");
    ok(!sa_sse_parser_pending(&p), "nothing pending");

    sa_sse_parser_free(&p);

    rc = run("data: a\r\rdata: b\n\ndata: c\r\n\r\n", 29, 0, 1, &c, NULL);
    is_str(c.log, "[]{a}[]{b}[]{c}", "CR, LF and CRLF mixed");

    rc = run("data: a\n\r\ndata: b\n\n", 19, 0, 0, &c, NULL);
    is_str(c.log, "[]{a}[]{b}", "a blank CRLF line after LF");

    rc = run("data: x\r\n\n", 10, 0, 3, &c, NULL);
    is_str(c.log, "[]{x}", "CRLF then LF: one blank line");
}


static void
test_bom(void)
{
    int        pending;
    collect_t  c;

    run("\xef\xbb\xbf" "data: x\n\n", 12, 0, 1, &c, NULL);
    is_str(c.log, "[]{x}", "BOM split byte by byte is skipped");

    run("\xef\xbb\xbf\xef\xbb\xbf" "data: x\n\n", 15, 0, 0, &c, NULL);
    is_int(c.events, 0, "a second BOM is part of the field name");

    run("\xef" "data: x\n\ndata: y\n\n", 19, 0, 1, &c, NULL);
    is_str(c.log, "[]{y}", "a partial BOM is kept as text");

    run("data: \xef\xbb\xbfx\n\n", 13, 0, 1, &c, NULL);
    is_str(c.log, "[]{\xef\xbb\xbfx}", "a BOM later in the stream is data");

    run("\xef\xbb", 2, 0, 1, &c, &pending);
    ok(pending, "a stream cut inside a BOM is pending");

    run("", 0, 0, 1, &c, &pending);
    ok(!pending, "an empty stream is not pending");
}


static void
test_limits(void)
{
    int              rc, pending;
    collect_t        c;
    sa_sse_parser_t  p;
    char             big[3000];

    rc = run("data: 0123456789\n\n", 18, 16, 0, &c, NULL);
    is_int(rc, SA_OK, "an event of exactly max_event");
    is_str(c.log, "[]{0123456789}", "and it arrives");

    rc = run("data: 0123456789abcdef\n\n", 24, 16, 5, &c, NULL);
    is_int(rc, SA_INVALID, "a line beyond max_event");
    is_int(c.events, 0, "no event from it");

    rc = run("data: 01234567\ndata: 01234567\n\n", 32, 16, 0, &c, NULL);
    is_int(rc, SA_INVALID, "data lines that add up beyond max_event");

    memset(big, 'x', sizeof(big));
    big[0] = ':';
    memcpy(big + sizeof(big) - 12, "\ndata: ok\n\n", 11);

    rc = run(big, sizeof(big) - 1, 16, 7, &c, &pending);
    is_int(rc, SA_OK, "comments beyond max_event are skipped, not stored");
    is_str(c.log, "[]{ok}", "the event after the long comment");

    memset(&c, 0, sizeof(c));
    sa_sse_parser_init(&p, 8, collect, &c);
    rc = sa_sse_parser_feed(&p, "data: 0123456789", 16);
    is_int(rc, SA_INVALID, "overflow reported");
    rc = sa_sse_parser_feed(&p, "\n\ndata: a\n\n", 11);
    is_int(rc, SA_INVALID, "the parser stays stopped");
    is_int(c.events, 0, "no event after the overflow");
    sa_sse_parser_free(&p);
}


static void
test_abort(void)
{
    int              rc;
    collect_t        c;
    sa_sse_parser_t  p;

    memset(&c, 0, sizeof(c));
    c.abort_at = 2;
    sa_sse_parser_init(&p, 0, collect, &c);

    rc = sa_sse_parser_feed(&p, "data: 1\n\ndata: 2\n\ndata: 3\n\n", 27);
    is_int(rc, 7, "the handler's return value comes back");
    is_str(c.log, "[]{1}[]{2}", "parsing stopped after the second event");

    rc = sa_sse_parser_feed(&p, "data: 4\n\n", 9);
    is_int(rc, 7, "and stays stopped");
    is_int(c.events, 2, "no more events");

    sa_sse_parser_free(&p);
}


static void
test_pending(void)
{
    collect_t        c;
    sa_sse_parser_t  p;

    memset(&c, 0, sizeof(c));
    sa_sse_parser_init(&p, 0, collect, &c);

    ok(!sa_sse_parser_pending(&p), "fresh parser: nothing pending");
    sa_sse_parser_feed(&p, "data: x\n", 8);
    ok(sa_sse_parser_pending(&p), "data without its blank line: pending");
    sa_sse_parser_feed(&p, "\n", 1);
    ok(!sa_sse_parser_pending(&p), "dispatched: nothing pending");
    sa_sse_parser_feed(&p, "dat", 3);
    ok(sa_sse_parser_pending(&p), "half a line: pending");
    sa_sse_parser_feed(&p, "a: y\n\n: keep-alive", 18);
    ok(!sa_sse_parser_pending(&p), "an unfinished comment: not pending");
    sa_sse_parser_feed(&p, "\nevent: e\n", 10);
    ok(sa_sse_parser_pending(&p), "an event name alone: pending");

    sa_sse_parser_free(&p);
    sa_sse_parser_free(&p);
    ok(1, "free twice is harmless");
}


static int
roundtrip(const char *event, const char *payload, size_t len, collect_t *c)
{
    int              rc;
    char            *buf, *end;
    size_t           n;
    sa_sse_parser_t  p;

    n = sa_sse_event_len(event, payload, len);
    buf = malloc(n);
    end = sa_sse_event_write(buf, event, payload, len);

    if ((size_t) (end - buf) != n) {
        free(buf);
        return -100;
    }

    memset(c, 0, sizeof(collect_t));
    sa_sse_parser_init(&p, 0, collect, c);
    rc = sa_sse_parser_feed(&p, buf, n);

    if (sa_sse_parser_pending(&p)) {
        rc = -101;
    }

    sa_sse_parser_free(&p);
    free(buf);

    return rc;
}


static void
test_writer(void)
{
    char        buf[256], *end, payload[200];
    size_t      n, i, len;
    collect_t   c;
    int         k, good;

    n = sa_sse_event_len("delta", "a\nb", 3);
    end = sa_sse_event_write(buf, "delta", "a\nb", 3);
    is_int(end - buf, n, "length matches the bytes written");
    *end = '\0';
    is_str(buf, "event: delta\ndata: a\ndata: b\n\n", "framed event");

    end = sa_sse_event_write(buf, NULL, "{\"x\":1}", 7);
    *end = '\0';
    is_str(buf, "data: {\"x\":1}\n\n", "no event name");

    end = sa_sse_event_write(buf, NULL, "", 0);
    *end = '\0';
    is_str(buf, "data: \n\n", "empty payload: one empty data line");
    is_int(sa_sse_event_len(NULL, "", 0), 8, "its length");

    end = sa_sse_event_write(buf, "x\r\ny", "a\r\nb\rc\n", 7);
    *end = '\0';
    is_str(buf, "event: xy\ndata: a\ndata: b\ndata: c\ndata: \n\n",
           "CRLF, CR, LF in the payload; CR/LF dropped from the name");
    is_int(end - buf, sa_sse_event_len("x\r\ny", "a\r\nb\rc\n", 7),
           "length agrees");

    n = sa_sse_event_id_len("42", "done", "{}", 2);
    end = sa_sse_event_id_write(buf, "42", "done", "{}", 2);
    is_int(end - buf, n, "id variant: length agrees");
    *end = '\0';
    is_str(buf, "id: 42\nevent: done\ndata: {}\n\n", "id variant");

    is_int(roundtrip("delta", "line 1\nline 2\n\nline 4", 21, &c), SA_OK,
           "round trip parses");
    is_str(c.log, "[delta]{line 1\nline 2\n\nline 4}", "round trip: same");

    is_int(roundtrip(NULL, " leading space", 14, &c), SA_OK,
           "round trip of a leading space");
    is_str(c.log, "[]{ leading space}", "the leading space survives");

    is_int(roundtrip(NULL, "", 0, &c), SA_OK, "round trip of nothing");
    is_str(c.log, "[]{}", "an empty payload arrives empty");

    is_int(roundtrip("e", "x\r\ny", 4, &c), SA_OK, "round trip of CRLF");
    is_str(c.log, "[e]{x\ny}", "CRLF comes back as LF, as in a browser");

    good = 1;
    srand(7);

    for (k = 0; k < 300 && good; k++) {
        len = rand() % sizeof(payload);

        for (i = 0; i < len; i++) {
            payload[i] = " \n:adz{}\"" [rand() % 9];
        }

        if (roundtrip(k % 2 ? "ev" : NULL, payload, len, &c) != SA_OK
            || c.len != len + 4 + (k % 2 ? 2 : 0)
            || memcmp(c.log + (k % 2 ? 5 : 3), payload, len) != 0)
        {
            good = 0;
            printf("# round trip %d failed: %s\n", k, c.log);
        }
    }

    ok(good, "300 random payloads round trip exactly");
}


int
main(void)
{
    test_splits();
    test_line_endings();
    test_bom();
    test_limits();
    test_abort();
    test_pending();
    test_writer();

    return done_testing();
}
