
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
#include "sa_json.h"
#include "sa_utf8.h"


#define NGX_HTTP_SA_KB_CHECK      1
#define NGX_HTTP_SA_KB_MAX_K      50
#define NGX_HTTP_SA_KB_MAX_QUERY  4096


static void ngx_http_sa_kb_cleanup(void *data);
static void ngx_http_sa_kb_results_cleanup(void *data);
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
 * BM25 over the KB, the relevance threshold, freshness (old articles are
 * demoted and flagged, never passed off as current), top k.  The chunks
 * are copied out and freed with the request.
 */

ngx_int_t
ngx_http_sa_kb_retrieve(ngx_http_request_t *r, ngx_http_sa_kb_conf_t *kbcf,
    const char *query, size_t len, ngx_uint_t top_k,
    const char *body_filters[NGX_HTTP_SA_KB_FILTERS],
    ngx_http_sa_kb_results_t *out)
{
    size_t                    n, i, want;
    int64_t                   now_ms, age_ms;
    sa_kb_t                  *kb;
    sa_kb_hit_t              *hits;
    sa_kb_filter_t            filter;
    ngx_pool_cleanup_t       *cln;
    ngx_http_sa_kb_result_t  *res;

    out->results = NULL;
    out->n = 0;

    kb = ngx_http_sa_kb_handle(kbcf->kb, r->connection->log);
    if (kb == NULL) {
        return NGX_DECLINED;
    }

    if (ngx_http_sa_kb_filter_values(r, kbcf, body_filters, &filter)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* demoted stale chunks may fall behind fresher ones further down */
    want = kbcf->max_age ? top_k * 2 : top_k;

    hits = ngx_palloc(r->pool, want * sizeof(sa_kb_hit_t));
    res = ngx_pcalloc(r->pool, want * sizeof(ngx_http_sa_kb_result_t));
    if (hits == NULL || res == NULL) {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_sa_kb_results_cleanup;
    cln->data = out;

    if (sa_kb_search_bm25(kb, query, len, &filter, -1, -1, want, hits, &n)
        != SA_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "support agent: search in knowledge base \"%V\" failed",
                      &kbcf->kb->path);
        return NGX_ERROR;
    }

    now_ms = (int64_t) ngx_time() * 1000;

    for (i = 0; i < n; i++) {
        if (hits[i].score < kbcf->min_score) {
            break;
        }

        if (sa_kb_chunk(kb, hits[i].chunk, &res[out->n].chunk) != SA_OK) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "support agent: chunk %uD of knowledge base "
                          "\"%V\" cannot be read", hits[i].chunk,
                          &kbcf->kb->path);
            continue;
        }

        res[out->n].score = hits[i].score;

        age_ms = now_ms - res[out->n].chunk.updated_ms;

        if (kbcf->max_age && res[out->n].chunk.updated_ms
            && age_ms > (int64_t) kbcf->max_age * 1000)
        {
            res[out->n].stale = 1;
            res[out->n].score /= 2;
        }

        out->results = res;
        out->n++;
    }

    if (out->n > 1) {
        ngx_qsort(res, out->n, sizeof(ngx_http_sa_kb_result_t),
                  ngx_http_sa_kb_result_cmp);
    }

    if (out->n > top_k) {
        for (i = top_k; i < out->n; i++) {
            sa_kb_chunk_free(&res[i].chunk);
        }

        out->n = top_k;
    }

    return NGX_OK;
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


static void
ngx_http_sa_kb_results_cleanup(void *data)
{
    ngx_http_sa_kb_results_free(data);
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
    size_t                     len;
    sa_jw_t                   *w;
    ngx_int_t                  rc, k;
    ngx_str_t                  q, kv, fv;
    ngx_uint_t                 i;
    const char                *json, *body[NGX_HTTP_SA_KB_FILTERS];
    ngx_http_sa_loc_conf_t    *conf;
    ngx_http_sa_kb_results_t  *res;

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

    res = ngx_pcalloc(r->pool, sizeof(ngx_http_sa_kb_results_t));
    if (res == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_sa_kb_retrieve(r, &conf->kb, (char *) q.data, q.len,
                                 (ngx_uint_t) k, body, res);

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
        || sa_jw_kstr(w, "query", (char *) q.data, q.len) != SA_OK
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
