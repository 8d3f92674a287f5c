
/*
 * Copyright (C) ngx_support_agent authors
 *
 * libcurl's multi interface driven by nginx's event loop: one multi handle
 * per worker, curl's sockets registered as nginx connections, curl's timer
 * as an nginx timer.
 */


#ifndef _NGX_HTTP_SUPPORT_AGENT_CURL_H_INCLUDED_
#define _NGX_HTTP_SUPPORT_AGENT_CURL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <curl/curl.h>


typedef struct ngx_http_sa_transfer_s  ngx_http_sa_transfer_t;

typedef void (*ngx_http_sa_transfer_pt)(ngx_http_sa_transfer_t *t);


/*
 * One easy handle on the worker's multi handle.  The owner sets easy, data
 * and the two callbacks; they are called from nginx events, never from
 * inside libcurl, so they may finalize requests and stop transfers.
 */
struct ngx_http_sa_transfer_s {
    CURL                      *easy;
    void                      *data;

    /* bytes arrived since the last call (the owner's write callback called
       ngx_http_sa_transfer_mark_ready()) */
    ngx_http_sa_transfer_pt    on_ready;

    /* the transfer ended; result holds curl's code */
    ngx_http_sa_transfer_pt    on_done;

    /* the worker exits with the transfer running: free what it holds,
       finalize nothing (optional) */
    ngx_http_sa_transfer_pt    on_exit;

    CURLcode                   result;

    ngx_queue_t                queue;        /* live transfers */
    ngx_http_sa_transfer_t    *next_ready;

    unsigned                   active:1;
    unsigned                   ready:1;
};


ngx_int_t ngx_http_sa_curl_init_process(ngx_cycle_t *cycle,
    ngx_uint_t keepalive);
void ngx_http_sa_curl_exit_process(ngx_cycle_t *cycle);

ngx_int_t ngx_http_sa_transfer_start(ngx_http_sa_transfer_t *t,
    ngx_log_t *log);
void ngx_http_sa_transfer_stop(ngx_http_sa_transfer_t *t);
void ngx_http_sa_transfer_mark_ready(ngx_http_sa_transfer_t *t);
ngx_uint_t ngx_http_sa_curl_live(void);


#endif /* _NGX_HTTP_SUPPORT_AGENT_CURL_H_INCLUDED_ */
