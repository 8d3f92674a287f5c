
/*
 * Copyright (C) ngx_support_agent authors
 *
 * kb-build publishes a knowledge base by rename()ing a finished file onto
 * the configured path.  Each worker stat()s the path at most once a second
 * and, when the file changed, opens the new one and closes the old: a
 * search is synchronous and chunks are copied out, so nothing refers to
 * the old file after the swap.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_support_agent_module.h"
#include "ngx_http_support_agent_kb.h"
#include "ngx_http_support_agent_reply.h"
#include "ngx_http_support_agent_store.h"
#include "sa_fuse.h"
#include "sa_json.h"
#include "sa_query.h"
#include "sa_sparse.h"
#include "sa_store.h"
#include "sa_utf8.h"

#include <lmdb.h>


#define NGX_HTTP_SA_KB_CHECK      1
#define NGX_HTTP_SA_KB_MAX_K      50
#define NGX_HTTP_SA_KB_MAX_QUERY  4096

#define NGX_HTTP_SA_KB_CACHE_KEY  (NGX_MAX_CONF_ERRSTR + SA_QDRANT_ID_MAX)

/* retrieval stages */
#define NGX_HTTP_SA_KB_EMBED      0
#define NGX_HTTP_SA_KB_QDRANT     1
#define NGX_HTTP_SA_KB_POINTS     2
#define NGX_HTTP_SA_KB_LOCAL      3
#define NGX_HTTP_SA_KB_RERANK     4
#define NGX_HTTP_SA_KB_FINISH     5


typedef struct {
    ngx_str_t                    query;
    ngx_http_sa_kb_results_t     results;
    ngx_http_sa_kb_retrieval_t   retrieval;
} ngx_http_sa_kb_search_t;


static void ngx_http_sa_kb_cleanup(void *data);
static void ngx_http_sa_kb_retrieval_cleanup(void *data);
static ngx_int_t ngx_http_sa_kb_run(ngx_http_sa_kb_retrieval_t *rv);
static void ngx_http_sa_kb_fetched(ngx_http_sa_fetch_t *f);
static ngx_int_t ngx_http_sa_kb_fetch(ngx_http_sa_kb_retrieval_t *rv,
    ngx_http_sa_service_t *svc, const char *what, const char *path,
    sa_jw_t *w);
static ngx_int_t ngx_http_sa_kb_embed_start(ngx_http_sa_kb_retrieval_t *rv);
static void ngx_http_sa_kb_embed_done(ngx_http_sa_kb_retrieval_t *rv);
static ngx_int_t ngx_http_sa_kb_local(ngx_http_sa_kb_retrieval_t *rv);
static ngx_int_t ngx_http_sa_kb_rerank_builtin(
    ngx_http_sa_kb_retrieval_t *rv);
static ngx_int_t ngx_http_sa_kb_rerank_start(ngx_http_sa_kb_retrieval_t *rv);
static void ngx_http_sa_kb_rerank_done(ngx_http_sa_kb_retrieval_t *rv);
static ngx_int_t ngx_http_sa_kb_finish(ngx_http_sa_kb_retrieval_t *rv);
static void ngx_http_sa_kb_cands_free(ngx_http_sa_kb_retrieval_t *rv);
static ngx_uint_t ngx_http_sa_kb_long(ngx_http_sa_kb_retrieval_t *rv);
static ngx_int_t ngx_http_sa_kb_qdrant_start(ngx_http_sa_kb_retrieval_t *rv);
static void ngx_http_sa_kb_qdrant_done(ngx_http_sa_kb_retrieval_t *rv);
static ngx_int_t ngx_http_sa_kb_points(ngx_http_sa_kb_retrieval_t *rv);
static void ngx_http_sa_kb_points_done(ngx_http_sa_kb_retrieval_t *rv);
static int ngx_http_sa_kb_point_chunk(void *data, const char *id,
    sa_kb_chunk_t *chunk);
static void ngx_http_sa_kb_cands_compact(ngx_http_sa_kb_retrieval_t *rv);
static ngx_int_t ngx_http_sa_kb_cache_get(ngx_http_sa_kb_retrieval_t *rv,
    const char *id, sa_kb_chunk_t *chunk);
static void ngx_http_sa_kb_cache_put(ngx_http_sa_kb_retrieval_t *rv,
    const char *id, sa_kb_chunk_t *chunk);
static ngx_int_t ngx_http_sa_kb_language(ngx_http_sa_kb_retrieval_t *rv);
static sa_analyzer_t *ngx_http_sa_kb_analyzer(
    ngx_http_sa_kb_retrieval_t *rv);
static sa_rerank_stop_t *ngx_http_sa_kb_stop(ngx_http_sa_kb_retrieval_t *rv,
    sa_analyzer_t *a);
static double ngx_http_sa_kb_idf(void *data, const char *term, size_t len);
static void ngx_http_sa_kb_search_done(ngx_http_request_t *r, void *data,
    ngx_int_t rc);
static ngx_int_t ngx_http_sa_kb_search_reply(ngx_http_request_t *r,
    ngx_int_t rc);
static ngx_int_t ngx_http_sa_kb_filter_values(ngx_http_request_t *r,
    ngx_http_sa_kb_conf_t *kbcf, const char *body[NGX_HTTP_SA_KB_FILTERS],
    sa_kb_filter_t *filter);
static int ngx_http_sa_kb_result_cmp(const void *one, const void *two);
static ngx_int_t ngx_http_sa_kb_arg(ngx_http_request_t *r, char *name,
    ngx_str_t *value);
static int ngx_http_sa_kb_hit_json(sa_jw_t *w, ngx_http_sa_kb_result_t *res);


const char  *ngx_http_sa_kb_filter_names[NGX_HTTP_SA_KB_FILTERS] = {
    "product_area", "version", "tier", "region"
};


/*
 * At configuration time: one entry per KB file, checked by opening it so
 * that "nginx -t" reports a missing or broken knowledge base.
 */

ngx_http_sa_kb_t *
ngx_http_sa_kb_add(ngx_conf_t *cf, ngx_str_t *path)
{
    char                      err[512];
    sa_kb_t                  *kb;
    ngx_str_t                 full;
    ngx_uint_t                i;
    ngx_http_sa_kb_t        **kbs, *kbh;
    ngx_pool_cleanup_t       *cln;
    ngx_http_sa_main_conf_t  *smcf;

    full = *path;

    if (ngx_conf_full_name(cf->cycle, &full, 1) != NGX_OK) {
        return NULL;
    }

    smcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_support_agent_module);

    kbs = smcf->kbs.elts;

    for (i = 0; i < smcf->kbs.nelts; i++) {
        if (kbs[i]->path.len == full.len
            && ngx_strncmp(kbs[i]->path.data, full.data, full.len) == 0)
        {
            return kbs[i];
        }
    }

    if (sa_kb_open(&kb, (char *) full.data, err, sizeof(err)) != SA_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "cannot open knowledge base \"%V\": %s", &full,
                           err);
        return NULL;
    }

    /* the master must not keep LMDB handles across fork() */
    sa_kb_close(kb);

    kbh = ngx_pcalloc(cf->pool, sizeof(ngx_http_sa_kb_t));
    if (kbh == NULL) {
        return NULL;
    }

    kbh->path = full;

    /* a reload in single process mode drops the old cycle's handles */
    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_sa_kb_cleanup;
    cln->data = kbh;

    kbs = ngx_array_push(&smcf->kbs);
    if (kbs == NULL) {
        return NULL;
    }

    *kbs = kbh;

    return kbh;
}


static void
ngx_http_sa_kb_cleanup(void *data)
{
    ngx_http_sa_kb_t  *kbh = data;

    if (kbh->kb != NULL) {
        sa_kb_close(kbh->kb);
        kbh->kb = NULL;
    }
}


/* the process's handle, opened or swapped for a newly published file */

sa_kb_t *
ngx_http_sa_kb_handle(ngx_http_sa_kb_t *kbh, ngx_log_t *log)
{
    char             err[512];
    time_t           now;
    sa_kb_t         *kb;
    ngx_file_info_t  fi;

    now = ngx_time();

    if (kbh->kb != NULL && now - kbh->checked < NGX_HTTP_SA_KB_CHECK) {
        return kbh->kb;
    }

    kbh->checked = now;

    if (ngx_file_info(kbh->path.data, &fi) == NGX_FILE_ERROR) {
        if (kbh->kb == NULL) {
            ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                          "support agent: knowledge base \"%V\" is missing",
                          &kbh->path);
        }

        /* keep serving the file that is open */
        return kbh->kb;
    }

    if (kbh->kb != NULL
        && kbh->uniq == ngx_file_uniq(&fi)
        && kbh->mtime == ngx_file_mtime(&fi))
    {
        return kbh->kb;
    }

    if (sa_kb_open(&kb, (char *) kbh->path.data, err, sizeof(err)) != SA_OK) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "support agent: cannot open knowledge base \"%V\": %s",
                      &kbh->path, err);
        return kbh->kb;
    }

    if (kbh->kb != NULL) {
        sa_kb_close(kbh->kb);
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "support agent: knowledge base \"%V\" reloaded",
                      &kbh->path);
    }

    kbh->kb = kb;
    kbh->uniq = ngx_file_uniq(&fi);
    kbh->mtime = ngx_file_mtime(&fi);

    return kb;
}


/*
 * Retrieval of a question, in stages; each stage that asks a service
 * returns NGX_AGAIN and the pipeline goes on from the fetch's end:
 *
 *   embed     the query's embedding (support_agent_embed_url)
 *   qdrant    the collection's hybrid query, then the texts of the
 *             points the cache does not hold (support_agent_qdrant_url);
 *             on failure the embedded index answers
 *   local     BM25 over the embedded index, dense similarity when there
 *             is a query embedding and the KB has vectors, reciprocal rank
 *             fusion, candidate chunks copied out
 *   rerank    the rerank endpoint (support_agent_rerank_url), or the
 *             built-in lexical reranker (also when the endpoint fails)
 *   finish    the relevance threshold, freshness (old articles are
 *             demoted and flagged, never passed off as current), top k
 *
 * The KB is searched within one event (the local stage), so a hot swap
 * between stages cannot mix chunk ids of two versions: chunks are copied
 * out and freed with the request.
 */

ngx_int_t
ngx_http_sa_kb_retrieve(ngx_http_request_t *r, ngx_http_sa_kb_conf_t *kbcf,
    const char *query, size_t len, ngx_uint_t top_k,
    const char *body_filters[NGX_HTTP_SA_KB_FILTERS],
    ngx_http_sa_kb_results_t *out, ngx_http_sa_kb_retrieval_t *rv)
{
    ngx_pool_cleanup_t  *cln;

    out->results = NULL;
    out->n = 0;
    out->dense = 0;
    out->qdrant = 0;
    out->reranked = 0;
    out->degraded = 0;

    rv->request = r;
    rv->kbcf = kbcf;
    rv->out = out;
    rv->top_k = top_k;
    rv->stage = NGX_HTTP_SA_KB_EMBED;
    rv->qvec = NULL;
    rv->dim = 0;
    rv->cands = NULL;
    rv->ncands = 0;
    rv->relevance = NULL;
    rv->points = NULL;
    rv->npoints = 0;
    rv->running = 0;

    rv->query = ngx_pnalloc(r->pool, len + 1);
    if (rv->query == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(rv->query, query, len);
    rv->query[len] = '\0';
    rv->len = len;

    if (ngx_http_sa_kb_filter_values(r, kbcf, body_filters, &rv->filter)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (!rv->cleanup) {
        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (cln == NULL) {
            return NGX_ERROR;
        }

        cln->handler = ngx_http_sa_kb_retrieval_cleanup;
        cln->data = rv;
        rv->cleanup = 1;
    }

    return ngx_http_sa_kb_run(rv);
}


void
ngx_http_sa_kb_retrieval_cancel(ngx_http_sa_kb_retrieval_t *rv)
{
    if (rv->running) {
        ngx_http_sa_fetch_cancel(&rv->fetch);
        rv->running = 0;
    }

    free(rv->qvec);
    rv->qvec = NULL;
}


static void
ngx_http_sa_kb_retrieval_cleanup(void *data)
{
    ngx_http_sa_kb_retrieval_t  *rv = data;

    ngx_http_sa_kb_retrieval_cancel(rv);

    if (rv->out) {
        ngx_http_sa_kb_results_free(rv->out);
    }

    ngx_http_sa_kb_cands_free(rv);
}


/* runs stages until one waits for a service or all are done */

static ngx_int_t
ngx_http_sa_kb_run(ngx_http_sa_kb_retrieval_t *rv)
{
    ngx_int_t               rc;
    ngx_http_sa_kb_conf_t  *kbcf;

    kbcf = rv->kbcf;

    for ( ;; ) {

        switch (rv->stage) {

        case NGX_HTTP_SA_KB_EMBED:
            rv->stage = NGX_HTTP_SA_KB_QDRANT;

            if (kbcf->embed.url.len) {
                rc = ngx_http_sa_kb_embed_start(rv);
                if (rc != NGX_DECLINED) {
                    return rc;
                }
            }

            break;

        case NGX_HTTP_SA_KB_QDRANT:
            rv->stage = NGX_HTTP_SA_KB_LOCAL;

            if (kbcf->qdrant.url.len) {
                rc = ngx_http_sa_kb_qdrant_start(rv);
                if (rc != NGX_DECLINED) {
                    return rc;
                }
            }

            break;

        case NGX_HTTP_SA_KB_POINTS:
            /* the query answered: the texts the cache lacks */
            rv->stage = NGX_HTTP_SA_KB_RERANK;

            rc = ngx_http_sa_kb_points(rv);
            if (rc == NGX_AGAIN || rc == NGX_ERROR) {
                return rc;
            }

            if (rc == NGX_DECLINED) {
                ngx_http_sa_kb_cands_free(rv);
                rv->stage = NGX_HTTP_SA_KB_LOCAL;
            }

            break;

        case NGX_HTTP_SA_KB_LOCAL:
            rv->stage = NGX_HTTP_SA_KB_RERANK;

            if (kbcf->kb == NULL) {
                /* Qdrant alone, and it failed: no index to ask */
                return NGX_DECLINED;
            }

            rc = ngx_http_sa_kb_local(rv);
            if (rc != NGX_OK) {
                return rc;
            }

            break;

        case NGX_HTTP_SA_KB_RERANK:
            rv->stage = NGX_HTTP_SA_KB_FINISH;

            if (rv->ncands == 0) {
                break;
            }

            if (kbcf->rerank.url.len) {
                rc = ngx_http_sa_kb_rerank_start(rv);
                if (rc != NGX_DECLINED) {
                    return rc;
                }
            }

            if (ngx_http_sa_kb_rerank_builtin(rv) != NGX_OK) {
                return NGX_ERROR;
            }

            break;

        default: /* NGX_HTTP_SA_KB_FINISH */
            return ngx_http_sa_kb_finish(rv);
        }
    }
}


/* a fetch ended: the pipeline goes on, and its owner hears of the end */

static void
ngx_http_sa_kb_fetched(ngx_http_sa_fetch_t *f)
{
    ngx_int_t                    rc;
    ngx_connection_t            *c;
    ngx_http_request_t          *r;
    ngx_http_sa_kb_retrieval_t  *rv;

    rv = f->data;
    r = rv->request;
    c = r->connection;

    rv->running = 0;

    switch (rv->stage) {

    case NGX_HTTP_SA_KB_QDRANT:
        ngx_http_sa_kb_embed_done(rv);
        break;

    case NGX_HTTP_SA_KB_LOCAL:
        ngx_http_sa_kb_qdrant_done(rv);
        break;

    case NGX_HTTP_SA_KB_RERANK:
        ngx_http_sa_kb_points_done(rv);
        break;

    default: /* NGX_HTTP_SA_KB_FINISH */
        ngx_http_sa_kb_rerank_done(rv);
        break;
    }

    ngx_http_sa_fetch_cancel(&rv->fetch);

    rc = ngx_http_sa_kb_run(rv);

    if (rc != NGX_AGAIN) {
        rv->on_done(r, rv->data, rc);
        ngx_http_run_posted_requests(c);
    }
}


static ngx_int_t
ngx_http_sa_kb_fetch(ngx_http_sa_kb_retrieval_t *rv,
    ngx_http_sa_service_t *svc, const char *what, const char *path,
    sa_jw_t *w)
{
    size_t       len;
    const char  *body;

    body = sa_jw_buf(w, &len);

    rv->fetch.log = rv->request->connection->log;
    rv->fetch.data = rv;
    rv->fetch.on_done = ngx_http_sa_kb_fetched;
    rv->fetch.what = what;

    if (ngx_http_sa_fetch_start(&rv->fetch, svc, path, body, len) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, rv->request->connection->log, 0,
                      "support agent: %s", rv->fetch.failure);
        return NGX_DECLINED;
    }

    rv->running = 1;

    return NGX_AGAIN;
}


/* the query's embedding */

static ngx_int_t
ngx_http_sa_kb_embed_start(ngx_http_sa_kb_retrieval_t *rv)
{
    int                     rc;
    sa_jw_t                *w;
    ngx_int_t               n;
    ngx_http_sa_kb_conf_t  *kbcf;

    kbcf = rv->kbcf;

    w = sa_jw_new();
    if (w == NULL) {
        return NGX_ERROR;
    }

    rc = sa_embed_request(kbcf->embed_api, (char *) kbcf->embed_model.data,
                          rv->query, rv->len, w);

    n = rc == SA_OK ? ngx_http_sa_kb_fetch(rv, &kbcf->embed, "embeddings",
                                           NULL, w)
                    : NGX_DECLINED;

    sa_jw_free(w);

    if (n == NGX_DECLINED) {
        rv->out->degraded = 1;
    }

    return n;
}


static void
ngx_http_sa_kb_embed_done(ngx_http_sa_kb_retrieval_t *rv)
{
    char        err[128];
    ngx_log_t  *log;

    log = rv->request->connection->log;

    if (rv->fetch.rc != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "support agent: %s; searching without the query "
                      "embedding", rv->fetch.failure);
        rv->out->degraded = 1;
        return;
    }

    if (sa_embed_response(rv->kbcf->embed_api, (char *) rv->fetch.body,
                          rv->fetch.len, &rv->qvec, &rv->dim, err,
                          sizeof(err))
        != SA_OK)
    {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "support agent: invalid embeddings reply: %s; "
                      "searching without the query embedding", err);
        rv->out->degraded = 1;
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log, 0,
                   "support agent: query embedding of %uz dimensions in "
                   "%M ms", rv->dim, rv->fetch.elapsed);
}


/*
 * The embedded index: BM25 and, with a query embedding, dense similarity,
 * fused by reciprocal rank.
 */

static ngx_int_t
ngx_http_sa_kb_local(ngx_http_sa_kb_retrieval_t *rv)
{
    size_t                  i, j, nb, nd, nf, want;
    sa_kb_t                *kb;
    ngx_log_t              *log;
    sa_kb_hit_t            *bm25, *dense, *fused;
    sa_kb_info_t            info;
    sa_fuse_list_t          lists[2];
    ngx_http_request_t     *r;
    ngx_http_sa_kb_conf_t  *kbcf;

    r = rv->request;
    log = r->connection->log;
    kbcf = rv->kbcf;

    kb = ngx_http_sa_kb_handle(kbcf->kb, log);
    if (kb == NULL) {
        return NGX_DECLINED;
    }

    want = ngx_max(kbcf->candidates, rv->top_k);

    bm25 = ngx_palloc(r->pool, 3 * want * sizeof(sa_kb_hit_t));
    if (bm25 == NULL) {
        return NGX_ERROR;
    }

    dense = bm25 + want;
    fused = dense + want;

    if (sa_query_search(kb, rv->query, rv->len, &rv->filter, 0, NULL, want,
                        bm25, &nb)
        != SA_OK)
    {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "support agent: search in knowledge base \"%V\" "
                      "failed: %s", &kbcf->kb->path, sa_kb_last_error(kb));
        return NGX_ERROR;
    }

    /* too weak a lexical match is no match */
    while (nb && bm25[nb - 1].score < kbcf->min_score) {
        nb--;
    }

    nd = 0;

    if (rv->qvec && sa_kb_info(kb, &info) == SA_OK) {
        if (info.dim == rv->dim) {
            if (sa_kb_search_dense(kb, rv->qvec, rv->dim, &rv->filter, 0,
                                   want, dense, &nd)
                != SA_OK)
            {
                ngx_log_error(NGX_LOG_ERR, log, 0,
                              "support agent: dense search in knowledge "
                              "base \"%V\" failed: %s", &kbcf->kb->path,
                              sa_kb_last_error(kb));
                nd = 0;
                rv->out->degraded = 1;
            }

        } else if (info.dim == 0) {
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "support agent: knowledge base \"%V\" has no "
                          "vectors (kb-build --embed); BM25 only",
                          &kbcf->kb->path);

        } else {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "support agent: the query embedding has %uz "
                          "dimensions, knowledge base \"%V\" %uD: is "
                          "support_agent_embed_url the model kb-build "
                          "used?", rv->dim, &kbcf->kb->path, info.dim);
            rv->out->degraded = 1;
        }
    }

    if (nd) {
        rv->out->dense = 1;

        lists[0].hits = bm25;
        lists[0].n = nb;
        lists[0].weight = kbcf->lexical_weight;
        lists[1].hits = dense;
        lists[1].n = nd;
        lists[1].weight = kbcf->dense_weight;

        if (sa_fuse_rrf(lists, 2, kbcf->rrf_k, fused, want, &nf) != SA_OK) {
            return NGX_ERROR;
        }

    } else {
        fused = bm25;
        nf = nb;
    }

    rv->cands = ngx_pcalloc(r->pool, nf * sizeof(ngx_http_sa_kb_result_t)
                                     + 1);
    if (rv->cands == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < nf; i++) {
        if (sa_kb_chunk(kb, fused[i].chunk, &rv->cands[rv->ncands].chunk)
            != SA_OK)
        {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "support agent: chunk %uD of knowledge base "
                          "\"%V\" cannot be read", fused[i].chunk,
                          &kbcf->kb->path);
            continue;
        }

        rv->cands[rv->ncands].score = fused[i].score;
        rv->cands[rv->ncands].similarity = -1;

        for (j = 0; j < nd; j++) {
            if (dense[j].chunk == fused[i].chunk) {
                rv->cands[rv->ncands].similarity = dense[j].score;
                break;
            }
        }

        rv->ncands++;
    }

    return NGX_OK;
}


/* candidates for a reranker: heading (title and section) and text */

static ngx_int_t
ngx_http_sa_kb_rerank_builtin(ngx_http_sa_kb_retrieval_t *rv)
{
    float                    *scores, *similarity;
    u_char                   *p;
    size_t                    len;
    sa_kb_t                  *kb;
    ngx_uint_t                i;
    sa_analyzer_t            *a;
    sa_rerank_doc_t          *docs;
    sa_rerank_stop_t         *stop;
    ngx_http_request_t       *r;
    ngx_http_sa_kb_result_t  *c;

    r = rv->request;

    docs = ngx_palloc(r->pool, rv->ncands * sizeof(sa_rerank_doc_t));
    rv->relevance = ngx_palloc(r->pool, rv->ncands * sizeof(float));
    if (docs == NULL || rv->relevance == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < rv->ncands; i++) {
        c = &rv->cands[i];

        /* "Return policy (EU store) Refunds" */
        len = ngx_strlen(c->chunk.title) + 1 + ngx_strlen(c->chunk.section);

        p = ngx_pnalloc(r->pool, len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        docs[i].heading = (char *) p;
        docs[i].heading_len = len;
        p = ngx_cpymem(p, c->chunk.title, ngx_strlen(c->chunk.title));
        *p++ = ' ';
        ngx_memcpy(p, c->chunk.section, ngx_strlen(c->chunk.section));

        docs[i].text = c->chunk.text;
        docs[i].text_len = c->chunk.text_len;
    }

    kb = rv->kbcf->kb ? ngx_http_sa_kb_handle(rv->kbcf->kb,
                                              r->connection->log)
                      : NULL;

    a = ngx_http_sa_kb_analyzer(rv);
    stop = a ? ngx_http_sa_kb_stop(rv, a) : NULL;

    if (stop == NULL
        || sa_rerank_lexical(a, rv->query, rv->len, docs, rv->ncands, stop,
                             kb ? ngx_http_sa_kb_idf : NULL, kb,
                             rv->relevance)
           != SA_OK)
    {
        return NGX_ERROR;
    }

    scores = ngx_palloc(r->pool, 2 * rv->ncands * sizeof(float));
    if (scores == NULL) {
        return NGX_ERROR;
    }

    similarity = scores + rv->ncands;

    for (i = 0; i < rv->ncands; i++) {
        scores[i] = rv->cands[i].score;
        similarity[i] = rv->cands[i].similarity;
    }

    sa_rerank_blend(scores, rv->relevance, similarity, rv->ncands,
                    SA_RERANK_BLEND);

    for (i = 0; i < rv->ncands; i++) {
        rv->cands[i].score = scores[i];
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_sa_kb_rerank_start(ngx_http_sa_kb_retrieval_t *rv)
{
    int                     rc;
    size_t                 *lens;
    sa_jw_t                *w;
    ngx_int_t               n;
    ngx_uint_t              i;
    const char            **docs;
    ngx_http_request_t     *r;
    ngx_http_sa_kb_conf_t  *kbcf;

    r = rv->request;
    kbcf = rv->kbcf;

    docs = ngx_palloc(r->pool, rv->ncands * sizeof(char *));
    lens = ngx_palloc(r->pool, rv->ncands * sizeof(size_t));
    if (docs == NULL || lens == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < rv->ncands; i++) {
        docs[i] = rv->cands[i].chunk.text;
        lens[i] = rv->cands[i].chunk.text_len;
    }

    w = sa_jw_new();
    if (w == NULL) {
        return NGX_ERROR;
    }

    rc = sa_rerank_request(kbcf->rerank_api, (char *) kbcf->rerank_model.data,
                           rv->query, rv->len, docs, lens, rv->ncands, 0, w);

    n = rc == SA_OK ? ngx_http_sa_kb_fetch(rv, &kbcf->rerank, "rerank", NULL,
                                           w)
                    : NGX_DECLINED;

    sa_jw_free(w);

    if (n == NGX_DECLINED) {
        rv->out->degraded = 1;
    }

    return n;
}


static void
ngx_http_sa_kb_rerank_done(ngx_http_sa_kb_retrieval_t *rv)
{
    char                 err[128];
    float               *scores;
    ngx_log_t           *log;
    ngx_uint_t           i;
    ngx_http_request_t  *r;

    r = rv->request;
    log = r->connection->log;

    scores = ngx_palloc(r->pool, rv->ncands * sizeof(float));

    if (rv->fetch.rc != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "support agent: %s; using the built-in reranker",
                      rv->fetch.failure);
        goto builtin;
    }

    if (scores == NULL
        || sa_rerank_response((char *) rv->fetch.body, rv->fetch.len,
                              rv->ncands, scores, err, sizeof(err))
           != SA_OK)
    {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "support agent: invalid rerank reply: %s; using the "
                      "built-in reranker", scores ? err : "no memory");
        goto builtin;
    }

    rv->relevance = scores;

    for (i = 0; i < rv->ncands; i++) {
        rv->cands[i].score = scores[i];
    }

    rv->out->reranked = 1;

    return;

builtin:

    rv->out->degraded = 1;

    if (ngx_http_sa_kb_rerank_builtin(rv) != NGX_OK) {
        /* the first stage's order stands; nothing passes as relevant */
        rv->relevance = NULL;
    }
}


static ngx_uint_t
ngx_http_sa_kb_long(ngx_http_sa_kb_retrieval_t *rv)
{
    sa_query_conf_t  conf;

    sa_query_conf_init(&conf);

    return conf.long_words
           && sa_query_words(rv->query, rv->len, conf.long_words)
              >= conf.long_words;
}


/* relevance, freshness, the best top_k, handed to the owner */

static ngx_int_t
ngx_http_sa_kb_finish(ngx_http_sa_kb_retrieval_t *rv)
{
    int64_t                    now_ms, age_ms;
    ngx_uint_t                 i, n, gate;
    ngx_http_sa_kb_conf_t     *kbcf;
    ngx_http_sa_kb_result_t   *c;
    ngx_http_sa_kb_results_t  *out;

    kbcf = rv->kbcf;
    out = rv->out;
    now_ms = (int64_t) ngx_time() * 1000;

    n = 0;

    /* a long message (a whole story) shares only part of its words with
       any one answer: its candidates are ranked, not gated */
    gate = rv->ncands && !ngx_http_sa_kb_long(rv);

    for (i = 0; i < rv->ncands; i++) {
        c = &rv->cands[i];

        if (rv->relevance == NULL
            || (gate && !(rv->relevance[i] >= kbcf->min_relevance)))
        {
            sa_kb_chunk_free(&c->chunk);
            continue;
        }

        age_ms = now_ms - c->chunk.updated_ms;

        if (kbcf->max_age && c->chunk.updated_ms
            && age_ms > (int64_t) kbcf->max_age * 1000)
        {
            c->stale = 1;
            c->score /= 2;
        }

        rv->cands[n++] = *c;
    }

    rv->ncands = 0;

    if (n > 1) {
        ngx_qsort(rv->cands, n, sizeof(ngx_http_sa_kb_result_t),
                  ngx_http_sa_kb_result_cmp);
    }

    for (i = rv->top_k; i < n; i++) {
        sa_kb_chunk_free(&rv->cands[i].chunk);
    }

    out->results = rv->cands;
    out->n = ngx_min(n, rv->top_k);

    rv->cands = NULL;

    return NGX_OK;
}


static void
ngx_http_sa_kb_cands_free(ngx_http_sa_kb_retrieval_t *rv)
{
    ngx_http_sa_kb_results_t  res;

    res.results = rv->cands;
    res.n = rv->ncands;

    ngx_http_sa_kb_results_free(&res);

    rv->ncands = 0;
}


/*
 * Qdrant: one hybrid query (dense and sparse prefetches fused by RRF)
 * answered with point ids; the texts come from the LMDB cache shared by
 * the workers, or from one retrieve of the points it lacks.  Point ids
 * are derived from the chunk's document and text hash (kb-build), so a
 * cached text never goes stale: changed content gets a new id.
 */

static ngx_int_t
ngx_http_sa_kb_qdrant_start(ngx_http_sa_kb_retrieval_t *rv)
{
    int                     rc;
    sa_jw_t                *w;
    ngx_int_t               n;
    sa_sparse_t             sparse;
    sa_analyzer_t          *a;
    sa_qdrant_query_t       q;
    ngx_http_sa_kb_conf_t  *kbcf;

    kbcf = rv->kbcf;

    ngx_memzero(&sparse, sizeof(sa_sparse_t));

    a = ngx_http_sa_kb_analyzer(rv);
    if (a == NULL) {
        return NGX_ERROR;
    }

    if (sa_sparse_query(a, rv->query, rv->len, &sparse) != SA_OK) {
        sa_sparse_free(&sparse);
        return NGX_ERROR;
    }

    ngx_memzero(&q, sizeof(sa_qdrant_query_t));

    q.dense = rv->qvec;
    q.dim = rv->dim;
    q.sparse_indices = sparse.indices;
    q.sparse_values = sparse.values;
    q.sparse_n = sparse.n;
    q.filter = &rv->filter;
    q.prefetch_limit = ngx_max(kbcf->candidates, rv->top_k);
    q.limit = q.prefetch_limit;
    q.rrf_k = kbcf->rrf_k;
    q.dense_weight = kbcf->dense_weight;
    q.sparse_weight = kbcf->lexical_weight;

    if (q.dense == NULL && q.sparse_n == 0) {
        /* only stop words, and no embedding: nothing to ask */
        sa_sparse_free(&sparse);
        return NGX_DECLINED;
    }

    w = sa_jw_new();
    if (w == NULL) {
        sa_sparse_free(&sparse);
        return NGX_ERROR;
    }

    rc = sa_qdrant_query_request(&q, w);

    sa_sparse_free(&sparse);

    n = rc == SA_OK ? ngx_http_sa_kb_fetch(rv, &kbcf->qdrant, "qdrant",
                                           (char *)
                                           kbcf->qdrant_query_path.data, w)
                    : NGX_DECLINED;

    sa_jw_free(w);

    if (n == NGX_DECLINED) {
        rv->out->degraded = 1;
    }

    return n;
}


static void
ngx_http_sa_kb_qdrant_done(ngx_http_sa_kb_retrieval_t *rv)
{
    char                    err[128];
    size_t                  max;
    ngx_log_t              *log;
    ngx_http_sa_kb_conf_t  *kbcf;

    kbcf = rv->kbcf;
    log = rv->request->connection->log;

    if (rv->fetch.rc != NGX_OK) {
        ngx_snprintf((u_char *) err, sizeof(err) - 1, "%s%Z",
                     rv->fetch.failure);
        goto failed;
    }

    max = ngx_max(kbcf->candidates, rv->top_k);

    rv->points = ngx_palloc(rv->request->pool,
                            max * sizeof(sa_qdrant_point_t));
    if (rv->points == NULL) {
        ngx_snprintf((u_char *) err, sizeof(err) - 1, "no memory%Z");
        goto failed;
    }

    if (sa_qdrant_query_response((char *) rv->fetch.body, rv->fetch.len,
                                 rv->points, max, &rv->npoints, err,
                                 sizeof(err))
        != SA_OK)
    {
        goto failed;
    }

    rv->out->qdrant = 1;
    rv->out->dense = rv->qvec != NULL;
    rv->stage = NGX_HTTP_SA_KB_POINTS;

    return;

failed:

    rv->out->degraded = 1;

    ngx_log_error((kbcf->kb ? NGX_LOG_WARN : NGX_LOG_ERR), log, 0,
                  "support agent: Qdrant collection \"%V\": %s%s",
                  &kbcf->qdrant_collection, err,
                  kbcf->kb ? "; searching the embedded index" : "");
}


static ngx_int_t
ngx_http_sa_kb_points(ngx_http_sa_kb_retrieval_t *rv)
{
    sa_jw_t                  *w;
    size_t                    i, misses;
    ngx_int_t                 n;
    sa_qdrant_point_t        *ask;
    ngx_http_request_t       *r;
    ngx_http_sa_kb_conf_t    *kbcf;
    ngx_http_sa_kb_result_t  *c;

    r = rv->request;
    kbcf = rv->kbcf;

    rv->cands = ngx_pcalloc(r->pool, rv->npoints
                                     * sizeof(ngx_http_sa_kb_result_t) + 1);
    ask = ngx_palloc(r->pool, rv->npoints * sizeof(sa_qdrant_point_t) + 1);
    if (rv->cands == NULL || ask == NULL) {
        return NGX_ERROR;
    }

    /* slots in point order; ncands counts them all until compacted */
    rv->ncands = rv->npoints;
    misses = 0;

    for (i = 0; i < rv->npoints; i++) {
        c = &rv->cands[i];
        c->score = rv->points[i].score;
        c->similarity = -1;

        if (ngx_http_sa_kb_cache_get(rv, rv->points[i].id, &c->chunk)
            != NGX_OK)
        {
            ask[misses++] = rv->points[i];
        }
    }

    if (misses == 0) {
        ngx_http_sa_kb_cands_compact(rv);
        return NGX_OK;
    }

    w = sa_jw_new();
    if (w == NULL) {
        return NGX_ERROR;
    }

    n = sa_qdrant_retrieve_request(ask, misses, w) == SA_OK
        ? ngx_http_sa_kb_fetch(rv, &kbcf->qdrant, "qdrant",
                               (char *) kbcf->qdrant_points_path.data, w)
        : NGX_DECLINED;

    sa_jw_free(w);

    return n;
}


static void
ngx_http_sa_kb_points_done(ngx_http_sa_kb_retrieval_t *rv)
{
    char                    err[128];
    ngx_log_t              *log;
    ngx_http_sa_kb_conf_t  *kbcf;

    kbcf = rv->kbcf;
    log = rv->request->connection->log;

    if (rv->fetch.rc != NGX_OK) {
        ngx_snprintf((u_char *) err, sizeof(err) - 1, "%s%Z",
                     rv->fetch.failure);
        goto failed;
    }

    if (sa_qdrant_retrieve_response((char *) rv->fetch.body, rv->fetch.len,
                                    ngx_http_sa_kb_point_chunk, rv, err,
                                    sizeof(err))
        != SA_OK)
    {
        goto failed;
    }

    ngx_http_sa_kb_cands_compact(rv);

    return;

failed:

    ngx_http_sa_kb_cands_free(rv);
    rv->out->qdrant = 0;
    rv->out->dense = 0;
    rv->out->degraded = 1;
    rv->stage = NGX_HTTP_SA_KB_LOCAL;

    ngx_log_error((kbcf->kb ? NGX_LOG_WARN : NGX_LOG_ERR), log, 0,
                  "support agent: Qdrant collection \"%V\": %s%s",
                  &kbcf->qdrant_collection, err,
                  kbcf->kb ? "; searching the embedded index" : "");
}


/* a retrieved point's chunk goes to its slot and to the cache */

static int
ngx_http_sa_kb_point_chunk(void *data, const char *id, sa_kb_chunk_t *chunk)
{
    ngx_http_sa_kb_retrieval_t *rv = data;

    size_t  i;

    for (i = 0; i < rv->npoints; i++) {
        if (ngx_strcmp(rv->points[i].id, id) == 0
            && rv->cands[i].chunk.text == NULL)
        {
            ngx_http_sa_kb_cache_put(rv, id, chunk);
            rv->cands[i].chunk = *chunk;
            return 0;
        }
    }

    /* not asked for */
    sa_kb_chunk_free(chunk);

    return 0;
}


/* drops the slots left empty (points deleted since the query) */

static void
ngx_http_sa_kb_cands_compact(ngx_http_sa_kb_retrieval_t *rv)
{
    ngx_uint_t  i, n;

    n = 0;

    for (i = 0; i < rv->ncands; i++) {
        if (rv->cands[i].chunk.text != NULL) {
            rv->cands[n++] = rv->cands[i];
        }
    }

    rv->ncands = n;
}


/*
 * The cache of Qdrant's texts: the store's "kbcache" database, key the
 * collection, a NUL and the point id.  Reads never block; a write is one
 * short transaction per retrieved point.
 */

static ngx_int_t
ngx_http_sa_kb_cache_dbi(sa_store_t *store, unsigned *dbi)
{
    static sa_store_t  *opened;
    static unsigned     cache_dbi;

    if (opened != store) {
        if (sa_store_dbi_open(store, "kbcache", 0, &cache_dbi) != SA_OK) {
            return NGX_ERROR;
        }

        opened = store;
    }

    *dbi = cache_dbi;

    return NGX_OK;
}


static size_t
ngx_http_sa_kb_cache_key(ngx_http_sa_kb_retrieval_t *rv, const char *id,
    u_char *key)
{
    u_char  *p;

    p = ngx_cpymem(key, rv->kbcf->qdrant_collection.data,
                   rv->kbcf->qdrant_collection.len);
    *p++ = '\0';
    p = ngx_cpymem(p, id, ngx_strlen(id));

    return p - key;
}


static ngx_int_t
ngx_http_sa_kb_cache_get(ngx_http_sa_kb_retrieval_t *rv, const char *id,
    sa_kb_chunk_t *chunk)
{
    int          rc;
    u_char       key[NGX_HTTP_SA_KB_CACHE_KEY];
    unsigned     dbi;
    MDB_txn     *txn;
    MDB_val      k, v;
    sa_store_t  *store;

    store = ngx_http_sa_store();

    if (store == NULL || ngx_http_sa_kb_cache_dbi(store, &dbi) != NGX_OK) {
        return NGX_DECLINED;
    }

    k.mv_data = key;
    k.mv_size = ngx_http_sa_kb_cache_key(rv, id, key);

    if (sa_store_read_begin(store, &txn) != SA_OK) {
        return NGX_DECLINED;
    }

    rc = mdb_get(txn, dbi, &k, &v);

    if (rc == MDB_SUCCESS) {
        rc = sa_remote_chunk_decode(v.mv_data, v.mv_size, chunk);
    }

    sa_store_read_end(store);

    return rc == SA_OK ? NGX_OK : NGX_DECLINED;
}


typedef struct {
    unsigned        dbi;
    MDB_val         key;
    MDB_val         value;
} ngx_http_sa_kb_cache_put_t;


static int
ngx_http_sa_kb_cache_put_handler(sa_store_t *st, MDB_txn *txn, void *data)
{
    ngx_http_sa_kb_cache_put_t  *put = data;

    return mdb_put(txn, put->dbi, &put->key, &put->value, 0);
}


static void
ngx_http_sa_kb_cache_put(ngx_http_sa_kb_retrieval_t *rv, const char *id,
    sa_kb_chunk_t *chunk)
{
    u_char                      key[NGX_HTTP_SA_KB_CACHE_KEY];
    size_t                      len;
    sa_store_t                 *store;
    unsigned char              *rec;
    ngx_http_sa_kb_cache_put_t  put;

    store = ngx_http_sa_store();

    if (store == NULL || ngx_http_sa_kb_cache_dbi(store, &put.dbi) != NGX_OK
        || sa_remote_chunk_encode(chunk, &rec, &len) != SA_OK)
    {
        return;
    }

    put.key.mv_data = key;
    put.key.mv_size = ngx_http_sa_kb_cache_key(rv, id, key);
    put.value.mv_data = rec;
    put.value.mv_size = len;

    /* a full store only costs a later fetch */
    if (sa_store_write(store, "kbcache", ngx_http_sa_kb_cache_put_handler,
                       &put)
        != SA_OK)
    {
        ngx_log_error(NGX_LOG_WARN, rv->request->connection->log, 0,
                      "support agent: cannot cache a Qdrant text: %s",
                      sa_store_last_error(store));
    }

    free(rec);
}


/* the analyzer of the KB's language (Qdrant alone: english), one per
   process and language */

/* per process and language: the analyzer, and the stop list's terms */
static sa_analyzer_t     *ngx_http_sa_kb_analyzers[2];
static sa_rerank_stop_t  *ngx_http_sa_kb_stops[2];


static ngx_int_t
ngx_http_sa_kb_language(ngx_http_sa_kb_retrieval_t *rv)
{
    char      language[16];
    sa_kb_t  *kb;

    kb = rv->kbcf->kb ? ngx_http_sa_kb_handle(rv->kbcf->kb,
                                              rv->request->connection->log)
                      : NULL;

    /* the KB's language; Qdrant alone: english */
    if (kb != NULL
        && sa_kb_meta(kb, "language", language, sizeof(language)) == SA_OK
        && ngx_strcmp(language, "simple") == 0)
    {
        return 1;
    }

    return 0;
}


static sa_analyzer_t *
ngx_http_sa_kb_analyzer(ngx_http_sa_kb_retrieval_t *rv)
{
    ngx_int_t  i;

    static const char  *languages[2] = { "english", "simple" };

    i = ngx_http_sa_kb_language(rv);

    if (ngx_http_sa_kb_analyzers[i] == NULL) {
        ngx_http_sa_kb_analyzers[i] = sa_analyzer_new(languages[i]);
    }

    return ngx_http_sa_kb_analyzers[i];
}


static sa_rerank_stop_t *
ngx_http_sa_kb_stop(ngx_http_sa_kb_retrieval_t *rv, sa_analyzer_t *a)
{
    ngx_int_t  i;

    i = ngx_http_sa_kb_language(rv);

    if (ngx_http_sa_kb_stops[i] == NULL) {
        ngx_http_sa_kb_stops[i] = sa_rerank_stop_new(a, sa_query_stop_words);
    }

    return ngx_http_sa_kb_stops[i];
}


void
ngx_http_sa_kb_exit_process(void)
{
    ngx_uint_t  i;

    for (i = 0; i < 2; i++) {
        sa_analyzer_free(ngx_http_sa_kb_analyzers[i]);
        sa_rerank_stop_free(ngx_http_sa_kb_stops[i]);
        ngx_http_sa_kb_analyzers[i] = NULL;
        ngx_http_sa_kb_stops[i] = NULL;
    }
}


/* a query term's weight for the built-in reranker */

static double
ngx_http_sa_kb_idf(void *data, const char *term, size_t len)
{
    return sa_kb_term_idf(data, term, len);
}



static int
ngx_http_sa_kb_result_cmp(const void *one, const void *two)
{
    const ngx_http_sa_kb_result_t  *a = one;
    const ngx_http_sa_kb_result_t  *b = two;

    if (a->score != b->score) {
        return a->score > b->score ? -1 : 1;
    }

    return a->chunk.chunk < b->chunk.chunk ? -1 : 1;
}


void
ngx_http_sa_kb_results_free(ngx_http_sa_kb_results_t *res)
{
    ngx_uint_t  i;

    for (i = 0; i < res->n; i++) {
        sa_kb_chunk_free(&res->results[i].chunk);
    }

    res->n = 0;
}


/* a filter set by a directive wins over the same filter in the request */

static ngx_int_t
ngx_http_sa_kb_filter_values(ngx_http_request_t *r,
    ngx_http_sa_kb_conf_t *kbcf, const char *body[NGX_HTTP_SA_KB_FILTERS],
    sa_kb_filter_t *filter)
{
    ngx_str_t     v;
    ngx_uint_t    i;
    const char   *value[NGX_HTTP_SA_KB_FILTERS];

    for (i = 0; i < NGX_HTTP_SA_KB_FILTERS; i++) {
        value[i] = body ? body[i] : NULL;

        if (kbcf->filters[i] == NULL) {
            continue;
        }

        if (ngx_http_complex_value(r, kbcf->filters[i], &v) != NGX_OK) {
            return NGX_ERROR;
        }

        if (v.len == 0) {
            continue;
        }

        value[i] = (char *) ngx_pnalloc(r->pool, v.len + 1);
        if (value[i] == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy((char *) value[i], v.data, v.len);
        ((char *) value[i])[v.len] = '\0';
    }

    filter->product_area = value[0];
    filter->version = value[1];
    filter->tier = value[2];
    filter->region = value[3];

    return NGX_OK;
}


/*
 * GET ?q=...&k=...[&product_area=...&version=...&tier=...&region=...]:
 * the hits a turn would get, for operators checking their content and for
 * the widget's related articles.
 */

ngx_int_t
ngx_http_sa_kb_search_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc, k;
    ngx_str_t                  q, kv, fv;
    ngx_uint_t                 i;
    const char                *body[NGX_HTTP_SA_KB_FILTERS];
    ngx_http_sa_loc_conf_t    *conf;
    ngx_http_sa_kb_search_t   *search;

    conf = ngx_http_get_module_loc_conf(r, ngx_http_support_agent_module);

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_sa_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                      "method_not_allowed", "use GET",
                                      NULL);
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_sa_kb_arg(r, "q", &q) != NGX_OK || q.len == 0) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "support agent: search without \"q\"");
        return ngx_http_sa_send_error(r, NGX_HTTP_BAD_REQUEST,
                                      "invalid_request",
                                      "the query parameter \"q\" is "
                                      "required", NULL);
    }

    if (q.len > NGX_HTTP_SA_KB_MAX_QUERY || !sa_utf8_valid(q.data, q.len)) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "support agent: search query too long or not UTF-8");
        return ngx_http_sa_send_error(r, NGX_HTTP_BAD_REQUEST,
                                      "invalid_request",
                                      "\"q\" must be UTF-8 text of at most "
                                      "4096 bytes", NULL);
    }

    k = 5;

    if (ngx_http_sa_kb_arg(r, "k", &kv) == NGX_OK && kv.len) {
        k = ngx_atoi(kv.data, kv.len);

        if (k < 1 || k > NGX_HTTP_SA_KB_MAX_K) {
            return ngx_http_sa_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "invalid_request",
                                          "\"k\" must be from 1 to 50",
                                          NULL);
        }
    }

    for (i = 0; i < NGX_HTTP_SA_KB_FILTERS; i++) {
        body[i] = NULL;

        if (ngx_http_sa_kb_arg(r, (char *) ngx_http_sa_kb_filter_names[i],
                               &fv)
            == NGX_OK && fv.len)
        {
            body[i] = (char *) fv.data;
        }
    }

    search = ngx_pcalloc(r->pool, sizeof(ngx_http_sa_kb_search_t));
    if (search == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    search->query = q;
    search->retrieval.on_done = ngx_http_sa_kb_search_done;
    search->retrieval.data = search;

    ngx_http_set_ctx(r, search, ngx_http_support_agent_module);

    rc = ngx_http_sa_kb_retrieve(r, &conf->kb, (char *) q.data, q.len,
                                 (ngx_uint_t) k, body, &search->results,
                                 &search->retrieval);

    if (rc == NGX_AGAIN) {
        r->main->count++;
        return NGX_DONE;
    }

    return ngx_http_sa_kb_search_reply(r, rc);
}


static void
ngx_http_sa_kb_search_done(ngx_http_request_t *r, void *data, ngx_int_t rc)
{
    ngx_http_finalize_request(r, ngx_http_sa_kb_search_reply(r, rc));
}


static ngx_int_t
ngx_http_sa_kb_search_reply(ngx_http_request_t *r, ngx_int_t rc)
{
    size_t                     len;
    sa_jw_t                   *w;
    ngx_uint_t                 i;
    const char                *json;
    ngx_http_sa_kb_search_t   *search;
    ngx_http_sa_kb_results_t  *res;

    search = ngx_http_get_module_ctx(r, ngx_http_support_agent_module);
    res = &search->results;

    if (rc == NGX_DECLINED) {
        return ngx_http_sa_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "kb_unavailable",
                                      "the knowledge base cannot be read",
                                      NULL);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    w = sa_jw_new();
    if (w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (sa_jw_open(w) != SA_OK
        || sa_jw_kstr(w, "query", (char *) search->query.data,
                      search->query.len) != SA_OK
        || sa_jw_key(w, "retrieval") != SA_OK
        || sa_jw_open(w) != SA_OK
        || sa_jw_kstr(w, "index", res->qdrant ? "qdrant" : "embedded",
                      res->qdrant ? 6 : 8) != SA_OK
        || sa_jw_kbool(w, "dense", res->dense) != SA_OK
        || sa_jw_kstr(w, "reranker", res->reranked ? "endpoint" : "built-in",
                      res->reranked ? 8 : 8) != SA_OK
        || sa_jw_kbool(w, "degraded", res->degraded) != SA_OK
        || sa_jw_close(w) != SA_OK
        || sa_jw_key(w, "hits") != SA_OK
        || sa_jw_array_open(w) != SA_OK)
    {
        goto failed;
    }

    for (i = 0; i < res->n; i++) {
        if (ngx_http_sa_kb_hit_json(w, &res->results[i]) != SA_OK) {
            goto failed;
        }
    }

    if (sa_jw_array_close(w) != SA_OK || sa_jw_close(w) != SA_OK) {
        goto failed;
    }

    json = sa_jw_buf(w, &len);
    rc = ngx_http_sa_send_json(r, NGX_HTTP_OK, json, len);
    sa_jw_free(w);

    return rc;

failed:

    sa_jw_free(w);
    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}


/* a query argument, URL-decoded and NUL-terminated */

static ngx_int_t
ngx_http_sa_kb_arg(ngx_http_request_t *r, char *name, ngx_str_t *value)
{
    u_char     *dst, *src;
    ngx_str_t   raw;

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &raw) != NGX_OK) {
        return NGX_DECLINED;
    }

    dst = ngx_pnalloc(r->pool, raw.len + 1);
    if (dst == NULL) {
        return NGX_ERROR;
    }

    value->data = dst;
    src = raw.data;

    ngx_unescape_uri(&dst, &src, raw.len, 0);

    /* '+' is a space in query strings */
    for (src = value->data; src < dst; src++) {
        if (*src == '+') {
            *src = ' ';
        }
    }

    *dst = '\0';
    value->len = dst - value->data;

    return NGX_OK;
}


static int
ngx_http_sa_kb_hit_json(sa_jw_t *w, ngx_http_sa_kb_result_t *res)
{
    u_char          updated[16];
    ngx_tm_t        tm;
    sa_kb_chunk_t  *c;

    c = &res->chunk;

    updated[0] = '\0';

    if (c->updated_ms) {
        ngx_gmtime((time_t) (c->updated_ms / 1000), &tm);
        ngx_sprintf(updated, "%4d-%02d-%02d%Z", tm.ngx_tm_year,
                    tm.ngx_tm_mon, tm.ngx_tm_mday);
    }

    if (sa_jw_open(w) != SA_OK
        || sa_jw_kint(w, "chunk", c->chunk) != SA_OK
        || sa_jw_kstr(w, "document", c->doc_id, ngx_strlen(c->doc_id))
           != SA_OK
        || sa_jw_kstr(w, "title", c->title, ngx_strlen(c->title)) != SA_OK
        || sa_jw_kstr(w, "section", c->section, ngx_strlen(c->section))
           != SA_OK
        || sa_jw_kstr(w, "anchor", c->anchor, ngx_strlen(c->anchor))
           != SA_OK
        || sa_jw_kstr(w, "url", c->url, ngx_strlen(c->url)) != SA_OK
        || sa_jw_kdouble(w, "score", (double) res->score) != SA_OK
        || sa_jw_kbool(w, "stale", res->stale) != SA_OK
        || sa_jw_kstr(w, "text", c->text, c->text_len) != SA_OK
        || sa_jw_key(w, "metadata") != SA_OK
        || sa_jw_open(w) != SA_OK
        || sa_jw_kstr(w, "product_area", c->product_area,
                      ngx_strlen(c->product_area)) != SA_OK
        || sa_jw_kstr(w, "doc_type", c->doc_type, ngx_strlen(c->doc_type))
           != SA_OK
        || sa_jw_kstr(w, "version", c->version, ngx_strlen(c->version))
           != SA_OK
        || sa_jw_kstr(w, "tier", c->tier, ngx_strlen(c->tier)) != SA_OK
        || sa_jw_kstr(w, "region", c->region, ngx_strlen(c->region))
           != SA_OK
        || sa_jw_kstr(w, "updated", (char *) updated,
                      ngx_strlen(updated)) != SA_OK
        || sa_jw_close(w) != SA_OK
        || sa_jw_close(w) != SA_OK)
    {
        return SA_ERROR;
    }

    return SA_OK;
}
