
/*
 * Copyright (C) ngx_support_agent authors
 *
 * kb-build's HTTP client: blocking JSON requests over libcurl, for an
 * offline tool (the module's own client never blocks).  Retries with
 * backoff on transport failures, 408, 429 and 5xx, honouring
 * retry-after; errors name the method and the URL (without credentials
 * or query), never the key, which only travels in a header.
 */


#ifndef _KB_HTTP_H_INCLUDED_
#define _KB_HTTP_H_INCLUDED_


#include <stddef.h>


#define KB_HTTP_RETRIES   3         /* after the first attempt */


typedef struct {
    char    *data;                  /* NUL-terminated (not counted) */
    size_t   len;
    size_t   cap;
} kb_buf_t;

typedef struct kb_http_s  kb_http_t;


/* key: sent as the header auth followed by the key ("Authorization:
   Bearer ", "api-key: "), NULL for none; timeout: seconds for each
   attempt; retries: after the first */
kb_http_t *kb_http_new(const char *auth, const char *key, long timeout,
    int retries);
void kb_http_free(kb_http_t *h);

/*
 * A request with a JSON body (body NULL: none, for GET).  0 with *status
 * the final HTTP status, whatever it is, and the body in resp; -1 when no
 * answer came (connection, timeout) after the retries, or out of memory:
 * kb_http_error() tells, naming the method and URL.  A status that is
 * retried (408, 429, 5xx) and still failing comes back as 0 with it.
 */
int kb_http_json(kb_http_t *h, const char *method, const char *url,
    const char *body, size_t len, long *status, kb_buf_t *resp);

const char *kb_http_error(kb_http_t *h);

/* requests made, attempts included */
unsigned long kb_http_requests(kb_http_t *h);

/* url without user:password@ and without ?query, for messages */
void kb_http_safe_url(const char *url, char *buf, size_t size);

/* the error text of a failed answer: OpenAI's {"error":{"message"}},
   TEI's {"error"}, Qdrant's {"status":{"error"}}, else the start of the
   body as text, into buf (NUL-terminated, printable); a service that
   quotes the key back ("Incorrect API key provided: ...") gets it
   replaced by "***" */
void kb_http_error_text(kb_http_t *h, const char *body, size_t len,
    char *buf, size_t size);

/* the value of environment variable name, NULL if unset or empty */
const char *kb_http_env_key(const char *name);

void kb_buf_free(kb_buf_t *b);


#endif /* _KB_HTTP_H_INCLUDED_ */
