
/*
 * Copyright (C) ngx_support_agent authors
 *
 * Server-Sent Events: an incremental parser for the LLM's event stream and
 * a writer for the events sent to browsers (WHATWG HTML, "Server-sent
 * events").
 */


#ifndef _SA_SSE_H_INCLUDED_
#define _SA_SSE_H_INCLUDED_


#include <stddef.h>

#include "sa_types.h"


/* one dispatched event: event is NUL-terminated ("" and event_len 0 when
   the stream named none, which means "message"); payload is the joined
   data, NUL-terminated; both valid only during the call.  A non-zero
   return stops the parser, and sa_sse_parser_feed() returns that value */
typedef int (*sa_sse_event_pt)(void *data, const char *event,
    size_t event_len, const char *payload, size_t payload_len);


typedef struct {
    sa_sse_event_pt   handler;
    void             *data;
    size_t            max_event;    /* 0: no limit */

    char             *line;         /* the line being read */
    size_t            line_len;
    size_t            line_cap;

    char             *payload;      /* data buffer of the pending event */
    size_t            payload_len;
    size_t            payload_cap;

    char             *event;        /* event type buffer */
    size_t            event_len;
    size_t            event_cap;

    int               rc;           /* not SA_OK once parsing stopped */
    unsigned          bom_matched;  /* bytes of a leading BOM seen so far */

    unsigned          started:1;    /* past the leading BOM check */
    unsigned          after_cr:1;   /* an LF right now ends no line */
    unsigned          in_line:1;    /* bytes of the current line were seen */
    unsigned          comment:1;    /* the current line is a comment */
    unsigned          has_data:1;   /* a "data" field was seen */
} sa_sse_parser_t;


/* max_event: limit on the bytes of one event (0: no limit) */
void sa_sse_parser_init(sa_sse_parser_t *p, size_t max_event,
    sa_sse_event_pt handler, void *data);

/* feeds bytes as they arrive (any split, even mid-line / mid-CRLF); calls
   the handler once per dispatched event.  Returns SA_OK, SA_INVALID if one
   event grows beyond max_event bytes, SA_ERROR when out of memory, or the
   handler's non-zero return value.  Once it returned anything but SA_OK
   the parser is stopped: later calls return the same value again. */
int sa_sse_parser_feed(sa_sse_parser_t *p, const char *buf, size_t len);

/* 1 if bytes of an undispatched event are pending (stream cut mid-event) */
int sa_sse_parser_pending(const sa_sse_parser_t *p);

/* frees the buffers; the parser may be initialized again afterwards */
void sa_sse_parser_free(sa_sse_parser_t *p);


/* writer: bytes needed to frame payload as one SSE event
   ("event: NAME\n" when event != NULL, one "data: ...\n" line per line of the
   payload, final "\n").  Lines of the payload end in LF, CRLF or CR, as
   the browser splits them; CR and LF in the event name are left out. */
size_t sa_sse_event_len(const char *event, const char *payload, size_t len);

/* writes it at dst (which has sa_sse_event_len() bytes), returns the end;
   nothing is NUL-terminated */
char *sa_sse_event_write(char *dst, const char *event, const char *payload,
    size_t len);

/* the same with an "id: ID\n" line first when id is not NULL (the browser
   sends it back as Last-Event-ID when it reconnects) */
size_t sa_sse_event_id_len(const char *id, const char *event,
    const char *payload, size_t len);
char *sa_sse_event_id_write(char *dst, const char *id, const char *event,
    const char *payload, size_t len);


#endif /* _SA_SSE_H_INCLUDED_ */
