
/*
 * Copyright (C) ngx_support_agent authors
 *
 * The knowledge base as the module sees it: a read-only LMDB file built by
 * kb-build, opened lazily in each worker, swapped when kb-build publishes
 * a new one; retrieval for a turn and the search endpoint.
 */


#ifndef _NGX_HTTP_SUPPORT_AGENT_KB_H_INCLUDED_
#define _NGX_HTTP_SUPPORT_AGENT_KB_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "sa_kb.h"


#define NGX_HTTP_SA_KB_FILTERS  4


/* one KB file, shared by the locations that name it */
typedef struct {
    ngx_str_t                  path;        /* NUL-terminated */
    sa_kb_t                   *kb;          /* this process's handle */
    ngx_file_uniq_t            uniq;        /* inode of the open file */
    time_t                     mtime;
    time_t                     checked;     /* last stat(), seconds */
} ngx_http_sa_kb_t;


/* what the location asks of retrieval */
typedef struct {
    ngx_http_sa_kb_t          *kb;
    ngx_uint_t                 top_k;
    double                     min_score;
    time_t                     max_age;     /* 0 = no freshness check */
    ngx_http_complex_value_t  *filters[NGX_HTTP_SA_KB_FILTERS];
} ngx_http_sa_kb_conf_t;


/* a retrieved chunk, ready for the prompt, the reply and citations */
typedef struct {
    sa_kb_chunk_t              chunk;
    float                      score;
    unsigned                   stale:1;
} ngx_http_sa_kb_result_t;


typedef struct {
    ngx_http_sa_kb_result_t   *results;
    ngx_uint_t                 n;
} ngx_http_sa_kb_results_t;


extern const char  *ngx_http_sa_kb_filter_names[NGX_HTTP_SA_KB_FILTERS];


ngx_http_sa_kb_t *ngx_http_sa_kb_add(ngx_conf_t *cf, ngx_str_t *path);
sa_kb_t *ngx_http_sa_kb_handle(ngx_http_sa_kb_t *kbh, ngx_log_t *log);

ngx_int_t ngx_http_sa_kb_retrieve(ngx_http_request_t *r,
    ngx_http_sa_kb_conf_t *kbcf, const char *query, size_t len,
    ngx_uint_t top_k, const char *body_filters[NGX_HTTP_SA_KB_FILTERS],
    ngx_http_sa_kb_results_t *out);
void ngx_http_sa_kb_results_free(ngx_http_sa_kb_results_t *res);

ngx_int_t ngx_http_sa_kb_search_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_SUPPORT_AGENT_KB_H_INCLUDED_ */
