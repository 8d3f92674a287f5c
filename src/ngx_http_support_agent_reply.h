
/*
 * Copyright (C) ngx_support_agent authors
 *
 * What goes back to the client: JSON responses, JSON errors and the SSE
 * stream (with buffer reuse and flushing).
 */


#ifndef _NGX_HTTP_SUPPORT_AGENT_REPLY_H_INCLUDED_
#define _NGX_HTTP_SUPPORT_AGENT_REPLY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


typedef struct {
    ngx_chain_t   *free;
    ngx_chain_t   *busy;
    ngx_chain_t   *pending;       /* filled, not yet sent */
    unsigned       started:1;     /* headers sent */
    unsigned       finished:1;    /* last buffer sent */
} ngx_http_sa_out_t;


ngx_int_t ngx_http_sa_send_json(ngx_http_request_t *r, ngx_uint_t status,
    const char *json, size_t len);
ngx_int_t ngx_http_sa_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *message, ngx_str_t *conversation_id);
ngx_int_t ngx_http_sa_error_json(ngx_pool_t *pool, const char *code,
    const char *message, ngx_str_t *conversation_id, ngx_str_t *out);

ngx_int_t ngx_http_sa_sse_start(ngx_http_request_t *r,
    ngx_http_sa_out_t *out);
ngx_int_t ngx_http_sa_sse_event(ngx_http_request_t *r,
    ngx_http_sa_out_t *out, const char *event, const char *payload,
    size_t len);
ngx_int_t ngx_http_sa_sse_comment(ngx_http_request_t *r,
    ngx_http_sa_out_t *out, const char *text);
ngx_int_t ngx_http_sa_sse_finish(ngx_http_request_t *r,
    ngx_http_sa_out_t *out);
ngx_uint_t ngx_http_sa_is_json(ngx_http_request_t *r);
ngx_int_t ngx_http_sa_read_body(ngx_http_request_t *r, size_t max,
    u_char **body, size_t *len);
ngx_int_t ngx_http_sa_out_flush(ngx_http_request_t *r,
    ngx_http_sa_out_t *out);


#endif /* _NGX_HTTP_SUPPORT_AGENT_REPLY_H_INCLUDED_ */
