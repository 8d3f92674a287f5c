
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

#include "ngx_http_support_agent_fetch.h"
#include "sa_kb.h"
#include "sa_remote.h"


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
    ngx_uint_t                 candidates;  /* per list, and reranked */
    double                     min_score;   /* BM25, before fusion */
    double                     min_relevance;  /* after reranking */
    time_t                     max_age;     /* 0 = no freshness check */
    ngx_http_complex_value_t  *filters[NGX_HTTP_SA_KB_FILTERS];

    /* reciprocal rank fusion */
    double                     rrf_k;
    double                     lexical_weight;
    double                     dense_weight;

    ngx_http_sa_service_t      embed;       /* url empty: none */
    ngx_str_t                  embed_model;
    ngx_str_t                  embed_key;
    ngx_uint_t                 embed_api;   /* sa_embed_api_e */

    ngx_http_sa_service_t      rerank;
    ngx_str_t                  rerank_model;
    ngx_str_t                  rerank_key;
    ngx_uint_t                 rerank_api;  /* sa_rerank_api_e */

    ngx_http_sa_service_t      qdrant;
    ngx_str_t                  qdrant_collection;
    ngx_str_t                  qdrant_key;
    ngx_str_t                  qdrant_query_path;
    ngx_str_t                  qdrant_points_path;
} ngx_http_sa_kb_conf_t;


/* a retrieved chunk, ready for the prompt, the reply and citations */
typedef struct {
    sa_kb_chunk_t              chunk;
    float                      score;
    float                      similarity;  /* to the query embedding,
                                               -1: not known */
    unsigned                   stale:1;
} ngx_http_sa_kb_result_t;


typedef struct {
    ngx_http_sa_kb_result_t   *results;
    ngx_uint_t                 n;

    /* how they were found, for the search endpoint and the logs */
    unsigned                   dense:1;      /* a dense list was fused */
    unsigned                   qdrant:1;     /* from Qdrant */
    unsigned                   reranked:1;   /* by the rerank endpoint */
    unsigned                   degraded:1;   /* a service failed */
} ngx_http_sa_kb_results_t;


typedef void (*ngx_http_sa_kb_done_pt)(ngx_http_request_t *r, void *data,
    ngx_int_t rc);


/* one retrieval in progress: lives in its owner's memory (the turn) */
typedef struct {
    ngx_http_request_t        *request;
    ngx_http_sa_kb_conf_t     *kbcf;
    ngx_http_sa_kb_results_t  *out;
    ngx_http_sa_kb_done_pt     on_done;
    void                      *data;

    char                      *query;       /* NUL-terminated, pool */
    size_t                     len;
    sa_kb_filter_t             filter;
    ngx_uint_t                 top_k;

    ngx_http_sa_fetch_t        fetch;
    ngx_uint_t                 stage;
    float                     *qvec;        /* malloc()ed */
    size_t                     dim;

    ngx_http_sa_kb_result_t   *cands;       /* candidates, pool */
    ngx_uint_t                 ncands;
    float                     *relevance;   /* per candidate */

    sa_qdrant_point_t         *points;
    size_t                     npoints;

    unsigned                   running:1;
    unsigned                   cleanup:1;
} ngx_http_sa_kb_retrieval_t;


extern const char  *ngx_http_sa_kb_filter_names[NGX_HTTP_SA_KB_FILTERS];


ngx_http_sa_kb_t *ngx_http_sa_kb_add(ngx_conf_t *cf, ngx_str_t *path);
sa_kb_t *ngx_http_sa_kb_handle(ngx_http_sa_kb_t *kbh, ngx_log_t *log);

/* NGX_OK: out is ready; NGX_AGAIN: a service is asked, rv->on_done(r,
   rv->data, rc) comes later with one of the other codes; NGX_DECLINED:
   no index can be read (logged), no sources; NGX_ERROR.  rv must stay
   in place until then; ngx_http_sa_kb_retrieval_cancel() stops it. */
ngx_int_t ngx_http_sa_kb_retrieve(ngx_http_request_t *r,
    ngx_http_sa_kb_conf_t *kbcf, const char *query, size_t len,
    ngx_uint_t top_k, const char *body_filters[NGX_HTTP_SA_KB_FILTERS],
    ngx_http_sa_kb_results_t *out, ngx_http_sa_kb_retrieval_t *rv);
void ngx_http_sa_kb_retrieval_cancel(ngx_http_sa_kb_retrieval_t *rv);
void ngx_http_sa_kb_results_free(ngx_http_sa_kb_results_t *res);
void ngx_http_sa_kb_exit_process(void);

ngx_int_t ngx_http_sa_kb_search_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_SUPPORT_AGENT_KB_H_INCLUDED_ */
