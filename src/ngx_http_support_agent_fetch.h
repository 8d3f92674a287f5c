
/*
 * Copyright (C) ngx_support_agent authors
 *
 * One JSON request to a retrieval service (embeddings, rerank, Qdrant) on
 * the worker's libcurl multi handle: the body is sent at once, the reply
 * collected up to a size limit, all within one time limit.  No retries:
 * retrieval degrades (BM25 alone, the built-in reranker, the embedded
 * index) rather than keep a customer waiting.
 */


#ifndef _NGX_HTTP_SUPPORT_AGENT_FETCH_H_INCLUDED_
#define _NGX_HTTP_SUPPORT_AGENT_FETCH_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_support_agent_curl.h"


typedef struct ngx_http_sa_fetch_s  ngx_http_sa_fetch_t;

/* the fetch is over (event context): f->rc NGX_OK with a 2xx status and
   the body, or NGX_ERROR with f->failure set (for logs) */
typedef void (*ngx_http_sa_fetch_done_pt)(ngx_http_sa_fetch_t *f);


typedef struct {
    ngx_str_t                  url;         /* NUL-terminated */
    ngx_str_t                  key_header;  /* "Authorization: Bearer k"
                                               or "api-key: k", or empty;
                                               NUL-terminated, never
                                               logged */
    ngx_msec_t                 connect_timeout;
    ngx_msec_t                 timeout;
    size_t                     max_body;
} ngx_http_sa_service_t;


struct ngx_http_sa_fetch_s {
    ngx_log_t                 *log;
    void                      *data;
    ngx_http_sa_fetch_done_pt  on_done;
    const char                *what;        /* "embeddings", for logs */
    const char                *method;      /* NULL: POST; "GET" (no
                                               body), "PATCH", ... */
    const char                *header;      /* one more header line
                                               ("Idempotency-Key: k"),
                                               NUL-terminated, or NULL */

    /* results */
    ngx_int_t                  rc;
    long                       status;
    u_char                    *body;        /* malloc()ed */
    size_t                     len;
    ngx_msec_t                 elapsed;
    char                       failure[320];

    /* private */
    ngx_http_sa_transfer_t     transfer;
    struct curl_slist         *headers;
    char                      *request;     /* malloc()ed */
    size_t                     max_body;
    ngx_msec_t                 started;
    char                       errbuf[CURL_ERROR_SIZE];
    unsigned                   running:1;
    unsigned                   too_big:1;
};


/* POSTs body to svc (or sends f->method), with path appended to its URL
   (path may be NULL).  body is copied.  A reply that is not 2xx is kept
   too (f->status, f->body) for callers that read error bodies.  NGX_OK:
   on_done will be called once, unless ngx_http_sa_fetch_cancel() comes
   first. */
ngx_int_t ngx_http_sa_fetch_start(ngx_http_sa_fetch_t *f,
    ngx_http_sa_service_t *svc, const char *path, const char *body,
    size_t len);

/* stops a running fetch without calling on_done; frees what it holds
   (a fetch that is over may be cancelled too, to free its body) */
void ngx_http_sa_fetch_cancel(ngx_http_sa_fetch_t *f);


#endif /* _NGX_HTTP_SUPPORT_AGENT_FETCH_H_INCLUDED_ */
