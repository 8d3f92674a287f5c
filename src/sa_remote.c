
/*
 * Copyright (C) ngx_support_agent authors
 */


#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "sa_remote.h"
#include "sa_utf8.h"


static yajl_val sa_remote_get(yajl_val obj, const char *key);
static int sa_remote_vector(yajl_val v, float **vec, size_t *dim,
    char *err, size_t errlen);
static int sa_remote_filter(sa_jw_t *w, const sa_kb_filter_t *f,
    unsigned flags);
static int sa_remote_prefetch_dense(sa_jw_t *w, const sa_qdrant_query_t *q);
static int sa_remote_prefetch_sparse(sa_jw_t *w,
    const sa_qdrant_query_t *q);
static int sa_remote_point_id(yajl_val v, char *id);
static char *sa_remote_dup(yajl_val obj, const char *key);
static int sa_remote_put_str(unsigned char **p, const char *s);
static int sa_remote_get_str(const unsigned char **p,
    const unsigned char *end, char **s, size_t *len);


static int
sa_remote_ends_with(const char *url, size_t len, const char *tail)
{
    size_t  n;

    /* a query string is not part of the path */
    for (n = 0; n < len; n++) {
        if (url[n] == '?') {
            len = n;
            break;
        }
    }

    while (len > 1 && url[len - 1] == '/') {
        len--;
    }

    n = strlen(tail);

    return len >= n && memcmp(url + len - n, tail, n) == 0;
}


sa_embed_api_e
sa_embed_api(const char *url, size_t len)
{
    return sa_remote_ends_with(url, len, "/embed") ? SA_EMBED_TEI
                                                   : SA_EMBED_OPENAI;
}


sa_rerank_api_e
sa_rerank_api(const char *url, size_t len)
{
    if (sa_remote_ends_with(url, len, "/v1/rerank")
        || sa_remote_ends_with(url, len, "/v2/rerank"))
    {
        return SA_RERANK_COHERE;
    }

    return sa_remote_ends_with(url, len, "/rerank") ? SA_RERANK_TEI
                                                    : SA_RERANK_COHERE;
}


int
sa_embed_request(sa_embed_api_e api, const char *model, const char *text,
    size_t len, sa_jw_t *w)
{
    sa_jw_reset(w);

    if (sa_jw_open(w) != SA_OK) {
        return SA_ERROR;
    }

    if (api == SA_EMBED_TEI) {
        if (sa_jw_key(w, "inputs") != SA_OK
            || sa_jw_array_open(w) != SA_OK
            || sa_jw_str(w, text, len) != SA_OK
            || sa_jw_array_close(w) != SA_OK
            || sa_jw_kbool(w, "normalize", 1) != SA_OK
            || sa_jw_kbool(w, "truncate", 1) != SA_OK)
        {
            return SA_INVALID;
        }

    } else {
        if (sa_jw_kstr(w, "model", model ? model : "",
                       model ? strlen(model) : 0) != SA_OK
            || sa_jw_key(w, "input") != SA_OK
            || sa_jw_array_open(w) != SA_OK
            || sa_jw_str(w, text, len) != SA_OK
            || sa_jw_array_close(w) != SA_OK
            || sa_jw_kstr(w, "encoding_format", "float", 5) != SA_OK)
        {
            return SA_INVALID;
        }
    }

    return sa_jw_close(w);
}


int
sa_embed_response(sa_embed_api_e api, const char *body, size_t len,
    float **vec, size_t *dim, char *err, size_t errlen)
{
    int        rc;
    size_t     i;
    yajl_val   root, data, item, v, first;

    *vec = NULL;
    *dim = 0;

    root = sa_json_tree_parse(body, len, err, errlen);
    if (root == NULL) {
        return SA_INVALID;
    }

    first = NULL;

    /* either shape is accepted: servers answer what they answer */
    if (YAJL_IS_ARRAY(root)) {
        if (YAJL_GET_ARRAY(root)->len) {
            first = YAJL_GET_ARRAY(root)->values[0];
        }

    } else if (YAJL_IS_OBJECT(root)) {
        data = sa_remote_get(root, "data");

        if (YAJL_IS_ARRAY(data)) {
            for (i = 0; i < YAJL_GET_ARRAY(data)->len; i++) {
                item = YAJL_GET_ARRAY(data)->values[i];
                v = sa_remote_get(item, "index");

                /* the order is not promised: the index says which */
                if (YAJL_IS_INTEGER(v) && YAJL_GET_INTEGER(v) == 0) {
                    first = sa_remote_get(item, "embedding");
                    break;
                }
            }
        }
    }

    (void) api;

    if (first == NULL) {
        snprintf(err, errlen, "no embedding in the response");
        yajl_tree_free(root);
        return SA_INVALID;
    }

    rc = sa_remote_vector(first, vec, dim, err, errlen);

    yajl_tree_free(root);

    return rc;
}


static int
sa_remote_vector(yajl_val v, float **vec, size_t *dim, char *err,
    size_t errlen)
{
    size_t   i, n;
    double   d;
    float   *f;

    if (!YAJL_IS_ARRAY(v)) {
        snprintf(err, errlen, "the embedding is not an array of numbers");
        return SA_INVALID;
    }

    n = YAJL_GET_ARRAY(v)->len;

    if (n == 0 || n > SA_EMBED_MAX_DIM) {
        snprintf(err, errlen, "the embedding has %zu dimensions", n);
        return SA_INVALID;
    }

    f = malloc(n * sizeof(float));
    if (f == NULL) {
        return SA_ERROR;
    }

    for (i = 0; i < n; i++) {
        if (!YAJL_IS_NUMBER(YAJL_GET_ARRAY(v)->values[i])) {
            free(f);
            snprintf(err, errlen, "the embedding is not an array of numbers");
            return SA_INVALID;
        }

        d = YAJL_GET_DOUBLE(YAJL_GET_ARRAY(v)->values[i]);
        if (!isfinite(d)) {
            free(f);
            snprintf(err, errlen, "the embedding has a non-finite number");
            return SA_INVALID;
        }

        f[i] = (float) d;
    }

    *vec = f;
    *dim = n;

    return SA_OK;
}


int
sa_rerank_request(sa_rerank_api_e api, const char *model, const char *query,
    size_t qlen, const char *const *docs, const size_t *lens, size_t n,
    size_t top_n, sa_jw_t *w)
{
    size_t  i;

    sa_jw_reset(w);

    if (sa_jw_open(w) != SA_OK) {
        return SA_ERROR;
    }

    if (api == SA_RERANK_COHERE
        && sa_jw_kstr(w, "model", model ? model : "",
                      model ? strlen(model) : 0) != SA_OK)
    {
        return SA_INVALID;
    }

    if (sa_jw_kstr(w, "query", query, qlen) != SA_OK
        || sa_jw_key(w, api == SA_RERANK_TEI ? "texts" : "documents")
           != SA_OK
        || sa_jw_array_open(w) != SA_OK)
    {
        return SA_INVALID;
    }

    for (i = 0; i < n; i++) {
        if (sa_jw_str(w, docs[i], lens[i]) != SA_OK) {
            return SA_INVALID;
        }
    }

    if (sa_jw_array_close(w) != SA_OK) {
        return SA_ERROR;
    }

    if (api == SA_RERANK_TEI) {
        if (sa_jw_kbool(w, "truncate", 1) != SA_OK) {
            return SA_ERROR;
        }

    } else if (top_n
               && sa_jw_kint(w, "top_n", (long long) top_n) != SA_OK)
    {
        return SA_ERROR;
    }

    return sa_jw_close(w);
}


int
sa_rerank_response(const char *body, size_t len, size_t n, float *scores,
    char *err, size_t errlen)
{
    size_t       i;
    yajl_val     root, list, item, iv, sv;
    const char  *score_key;

    for (i = 0; i < n; i++) {
        scores[i] = -INFINITY;
    }

    root = sa_json_tree_parse(body, len, err, errlen);
    if (root == NULL) {
        return SA_INVALID;
    }

    if (YAJL_IS_ARRAY(root)) {
        list = root;
        score_key = "score";

    } else {
        list = sa_remote_get(root, "results");
        score_key = "relevance_score";
    }

    if (!YAJL_IS_ARRAY(list)) {
        snprintf(err, errlen, "no rerank results in the response");
        yajl_tree_free(root);
        return SA_INVALID;
    }

    for (i = 0; i < YAJL_GET_ARRAY(list)->len; i++) {
        item = YAJL_GET_ARRAY(list)->values[i];
        iv = sa_remote_get(item, "index");
        sv = sa_remote_get(item, score_key);

        if (!YAJL_IS_INTEGER(iv) || YAJL_GET_INTEGER(iv) < 0
            || (unsigned long long) YAJL_GET_INTEGER(iv) >= n
            || !YAJL_IS_NUMBER(sv) || !isfinite(YAJL_GET_DOUBLE(sv)))
        {
            snprintf(err, errlen, "rerank result %zu has no valid index "
                     "and score", i);
            yajl_tree_free(root);
            return SA_INVALID;
        }

        scores[YAJL_GET_INTEGER(iv)] = (float) YAJL_GET_DOUBLE(sv);
    }

    yajl_tree_free(root);

    return SA_OK;
}


int
sa_qdrant_query_request(const sa_qdrant_query_t *q, sa_jw_t *w)
{
    int  fused;

    if (q->dense == NULL && q->sparse_n == 0) {
        return SA_INVALID;
    }

    fused = q->dense != NULL && q->sparse_n != 0;

    sa_jw_reset(w);

    if (sa_jw_open(w) != SA_OK
        || sa_jw_key(w, "prefetch") != SA_OK
        || sa_jw_array_open(w) != SA_OK)
    {
        return SA_ERROR;
    }

    if (q->dense && sa_remote_prefetch_dense(w, q) != SA_OK) {
        return SA_INVALID;
    }

    if (q->sparse_n && sa_remote_prefetch_sparse(w, q) != SA_OK) {
        return SA_INVALID;
    }

    if (sa_jw_array_close(w) != SA_OK
        || sa_jw_key(w, "query") != SA_OK
        || sa_jw_open(w) != SA_OK)
    {
        return SA_ERROR;
    }

    /* one prefetch: RRF of one list keeps its order */
    if (sa_jw_key(w, "rrf") != SA_OK
        || sa_jw_open(w) != SA_OK
        || sa_jw_kint(w, "k", (long long) (q->rrf_k + 0.5)) != SA_OK)
    {
        return SA_ERROR;
    }

    if (fused) {
        if (sa_jw_key(w, "weights") != SA_OK
            || sa_jw_array_open(w) != SA_OK
            || sa_jw_double(w, q->dense_weight) != SA_OK
            || sa_jw_double(w, q->sparse_weight) != SA_OK
            || sa_jw_array_close(w) != SA_OK)
        {
            return SA_INVALID;
        }
    }

    if (sa_jw_close(w) != SA_OK || sa_jw_close(w) != SA_OK) {
        return SA_ERROR;
    }

    if (q->filter && sa_remote_filter(w, q->filter, q->flags) != SA_OK) {
        return SA_INVALID;
    }

    if (sa_jw_kint(w, "limit", (long long) q->limit) != SA_OK
        || sa_jw_kbool(w, "with_payload", 0) != SA_OK
        || sa_jw_close(w) != SA_OK)
    {
        return SA_ERROR;
    }

    return SA_OK;
}


static int
sa_remote_prefetch_dense(sa_jw_t *w, const sa_qdrant_query_t *q)
{
    size_t  i;

    if (sa_jw_open(w) != SA_OK
        || sa_jw_key(w, "query") != SA_OK
        || sa_jw_array_open(w) != SA_OK)
    {
        return SA_ERROR;
    }

    for (i = 0; i < q->dim; i++) {
        if (sa_jw_double(w, q->dense[i]) != SA_OK) {
            return SA_INVALID;
        }
    }

    if (sa_jw_array_close(w) != SA_OK
        || sa_jw_kstr(w, "using", "dense", 5) != SA_OK
        || (q->filter && sa_remote_filter(w, q->filter, q->flags) != SA_OK)
        || sa_jw_kint(w, "limit", (long long) q->prefetch_limit) != SA_OK
        || sa_jw_close(w) != SA_OK)
    {
        return SA_ERROR;
    }

    return SA_OK;
}


static int
sa_remote_prefetch_sparse(sa_jw_t *w, const sa_qdrant_query_t *q)
{
    size_t  i;

    if (sa_jw_open(w) != SA_OK
        || sa_jw_key(w, "query") != SA_OK
        || sa_jw_open(w) != SA_OK
        || sa_jw_key(w, "indices") != SA_OK
        || sa_jw_array_open(w) != SA_OK)
    {
        return SA_ERROR;
    }

    for (i = 0; i < q->sparse_n; i++) {
        if (sa_jw_int(w, (long long) q->sparse_indices[i]) != SA_OK) {
            return SA_ERROR;
        }
    }

    if (sa_jw_array_close(w) != SA_OK
        || sa_jw_key(w, "values") != SA_OK
        || sa_jw_array_open(w) != SA_OK)
    {
        return SA_ERROR;
    }

    for (i = 0; i < q->sparse_n; i++) {
        if (sa_jw_double(w, q->sparse_values[i]) != SA_OK) {
            return SA_INVALID;
        }
    }

    if (sa_jw_array_close(w) != SA_OK
        || sa_jw_close(w) != SA_OK
        || sa_jw_kstr(w, "using", "sparse", 6) != SA_OK
        || (q->filter && sa_remote_filter(w, q->filter, q->flags) != SA_OK)
        || sa_jw_kint(w, "limit", (long long) q->prefetch_limit) != SA_OK
        || sa_jw_close(w) != SA_OK)
    {
        return SA_ERROR;
    }

    return SA_OK;
}


/* the KB filters as a Qdrant filter: each set field must match; with
   SA_KB_MATCH_UNSET a point without the field passes too */

static int
sa_remote_filter(sa_jw_t *w, const sa_kb_filter_t *f, unsigned flags)
{
    size_t       i, set;
    const char  *names[4], *values[4];

    names[0] = "product_area";
    values[0] = f->product_area;
    names[1] = "version";
    values[1] = f->version;
    names[2] = "tier";
    values[2] = f->tier;
    names[3] = "region";
    values[3] = f->region;

    set = 0;

    for (i = 0; i < 4; i++) {
        if (values[i] && values[i][0]) {
            set++;
        }
    }

    if (set == 0) {
        return SA_OK;
    }

    if (sa_jw_key(w, "filter") != SA_OK
        || sa_jw_open(w) != SA_OK
        || sa_jw_key(w, "must") != SA_OK
        || sa_jw_array_open(w) != SA_OK)
    {
        return SA_ERROR;
    }

    for (i = 0; i < 4; i++) {
        if (values[i] == NULL || values[i][0] == '\0') {
            continue;
        }

        if (flags & SA_KB_MATCH_UNSET) {
            if (sa_jw_open(w) != SA_OK
                || sa_jw_key(w, "should") != SA_OK
                || sa_jw_array_open(w) != SA_OK)
            {
                return SA_ERROR;
            }
        }

        if (sa_jw_open(w) != SA_OK
            || sa_jw_kstr(w, "key", names[i], strlen(names[i])) != SA_OK
            || sa_jw_key(w, "match") != SA_OK
            || sa_jw_open(w) != SA_OK
            || sa_jw_kstr(w, "value", values[i], strlen(values[i])) != SA_OK
            || sa_jw_close(w) != SA_OK
            || sa_jw_close(w) != SA_OK)
        {
            return SA_INVALID;
        }

        if (flags & SA_KB_MATCH_UNSET) {
            if (sa_jw_open(w) != SA_OK
                || sa_jw_key(w, "is_empty") != SA_OK
                || sa_jw_open(w) != SA_OK
                || sa_jw_kstr(w, "key", names[i], strlen(names[i])) != SA_OK
                || sa_jw_close(w) != SA_OK
                || sa_jw_close(w) != SA_OK
                || sa_jw_array_close(w) != SA_OK
                || sa_jw_close(w) != SA_OK)
            {
                return SA_ERROR;
            }
        }
    }

    if (sa_jw_array_close(w) != SA_OK || sa_jw_close(w) != SA_OK) {
        return SA_ERROR;
    }

    return SA_OK;
}


int
sa_qdrant_query_response(const char *body, size_t len,
    sa_qdrant_point_t *points, size_t max, size_t *n, char *err,
    size_t errlen)
{
    size_t    i;
    yajl_val  root, result, list, item, sv;

    *n = 0;

    root = sa_json_tree_parse(body, len, err, errlen);
    if (root == NULL) {
        return SA_INVALID;
    }

    result = sa_remote_get(root, "result");
    list = sa_remote_get(result, "points");

    if (!YAJL_IS_ARRAY(list)) {
        snprintf(err, errlen, "no result.points in the response");
        yajl_tree_free(root);
        return SA_INVALID;
    }

    for (i = 0; i < YAJL_GET_ARRAY(list)->len && *n < max; i++) {
        item = YAJL_GET_ARRAY(list)->values[i];
        sv = sa_remote_get(item, "score");

        if (sa_remote_point_id(sa_remote_get(item, "id"), points[*n].id)
            != SA_OK
            || !YAJL_IS_NUMBER(sv) || !isfinite(YAJL_GET_DOUBLE(sv)))
        {
            snprintf(err, errlen, "point %zu has no valid id and score", i);
            yajl_tree_free(root);
            return SA_INVALID;
        }

        points[*n].score = (float) YAJL_GET_DOUBLE(sv);
        (*n)++;
    }

    yajl_tree_free(root);

    return SA_OK;
}


/* an id is an unsigned integer or a UUID; anything else is refused, so
   an id is always safe to send back and to use as a cache key */

static int
sa_remote_point_id(yajl_val v, char *id)
{
    size_t       i, len;
    const char  *s;

    if (YAJL_IS_INTEGER(v)) {
        if (YAJL_GET_INTEGER(v) < 0) {
            return SA_INVALID;
        }

        snprintf(id, SA_QDRANT_ID_MAX, "%lld",
                 (long long) YAJL_GET_INTEGER(v));
        return SA_OK;
    }

    if (!YAJL_IS_STRING(v)) {
        return SA_INVALID;
    }

    s = YAJL_GET_STRING(v);
    len = strlen(s);

    if (len != 36) {
        return SA_INVALID;
    }

    for (i = 0; i < len; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') {
                return SA_INVALID;
            }

        } else if (!((s[i] >= '0' && s[i] <= '9')
                     || (s[i] >= 'a' && s[i] <= 'f')
                     || (s[i] >= 'A' && s[i] <= 'F')))
        {
            return SA_INVALID;
        }
    }

    memcpy(id, s, len + 1);

    return SA_OK;
}


int
sa_qdrant_retrieve_request(const sa_qdrant_point_t *points, size_t n,
    sa_jw_t *w)
{
    size_t  i;

    sa_jw_reset(w);

    if (sa_jw_open(w) != SA_OK
        || sa_jw_key(w, "ids") != SA_OK
        || sa_jw_array_open(w) != SA_OK)
    {
        return SA_ERROR;
    }

    for (i = 0; i < n; i++) {
        if (points[i].id[0] >= '0' && points[i].id[0] <= '9'
            && strlen(points[i].id) < 20 && strchr(points[i].id, '-') == NULL)
        {
            if (sa_jw_int(w, strtoll(points[i].id, NULL, 10)) != SA_OK) {
                return SA_ERROR;
            }

        } else if (sa_jw_str(w, points[i].id, strlen(points[i].id))
                   != SA_OK)
        {
            return SA_ERROR;
        }
    }

    if (sa_jw_array_close(w) != SA_OK
        || sa_jw_kbool(w, "with_payload", 1) != SA_OK
        || sa_jw_kbool(w, "with_vector", 0) != SA_OK
        || sa_jw_close(w) != SA_OK)
    {
        return SA_ERROR;
    }

    return SA_OK;
}


int
sa_qdrant_retrieve_response(const char *body, size_t len,
    sa_qdrant_chunk_pt handler, void *data, char *err, size_t errlen)
{
    int            rc;
    size_t         i;
    char           id[SA_QDRANT_ID_MAX];
    yajl_val       root, list, item, payload, v;
    sa_kb_chunk_t  c;

    root = sa_json_tree_parse(body, len, err, errlen);
    if (root == NULL) {
        return SA_INVALID;
    }

    list = sa_remote_get(root, "result");

    if (!YAJL_IS_ARRAY(list)) {
        snprintf(err, errlen, "no result in the response");
        yajl_tree_free(root);
        return SA_INVALID;
    }

    rc = SA_OK;

    for (i = 0; i < YAJL_GET_ARRAY(list)->len; i++) {
        item = YAJL_GET_ARRAY(list)->values[i];
        payload = sa_remote_get(item, "payload");

        if (sa_remote_point_id(sa_remote_get(item, "id"), id) != SA_OK
            || !YAJL_IS_OBJECT(payload)
            || !YAJL_IS_STRING(sa_remote_get(payload, "text")))
        {
            snprintf(err, errlen, "point %zu has no id or no text", i);
            rc = SA_INVALID;
            break;
        }

        memset(&c, 0, sizeof(sa_kb_chunk_t));

        c.doc_id = sa_remote_dup(payload, "doc_id");
        c.title = sa_remote_dup(payload, "title");
        c.section = sa_remote_dup(payload, "section");
        c.anchor = sa_remote_dup(payload, "anchor");
        c.url = sa_remote_dup(payload, "url");
        c.text = sa_remote_dup(payload, "text");
        c.product_area = sa_remote_dup(payload, "product_area");
        c.doc_type = sa_remote_dup(payload, "doc_type");
        c.version = sa_remote_dup(payload, "version");
        c.tier = sa_remote_dup(payload, "tier");
        c.region = sa_remote_dup(payload, "region");

        if (c.doc_id == NULL || c.title == NULL || c.section == NULL
            || c.anchor == NULL || c.url == NULL || c.text == NULL
            || c.product_area == NULL || c.doc_type == NULL
            || c.version == NULL || c.tier == NULL || c.region == NULL)
        {
            sa_kb_chunk_free(&c);
            rc = SA_ERROR;
            break;
        }

        c.text_len = strlen(c.text);

        v = sa_remote_get(payload, "updated_ms");
        if (YAJL_IS_INTEGER(v) && YAJL_GET_INTEGER(v) > 0) {
            c.updated_ms = YAJL_GET_INTEGER(v);
        }

        v = sa_remote_get(payload, "chunk");
        if (YAJL_IS_INTEGER(v) && YAJL_GET_INTEGER(v) >= 0
            && YAJL_GET_INTEGER(v) <= UINT32_MAX)
        {
            c.chunk = (uint32_t) YAJL_GET_INTEGER(v);
        }

        if (handler(data, id, &c) != 0) {
            break;
        }
    }

    yajl_tree_free(root);

    return rc;
}


/* a payload string (valid UTF-8 without NUL: yajl checked), "" when it
   is absent or not a string; NULL when out of memory */

static char *
sa_remote_dup(yajl_val obj, const char *key)
{
    yajl_val  v;

    v = sa_remote_get(obj, key);

    return strdup(YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : "");
}


void
sa_remote_error_text(const char *body, size_t len, char *buf, size_t size)
{
    char      err[64];
    size_t    i, n;
    yajl_val  root, v;

    if (size == 0) {
        return;
    }

    buf[0] = '\0';

    root = sa_json_tree_parse(body, len, err, sizeof(err));

    if (root != NULL) {
        /* Qdrant {"status":{"error"}}, OpenAI {"error":{"message"}},
           TEI {"error":"..."}, Cohere {"message"} */
        v = sa_remote_get(sa_remote_get(root, "status"), "error");

        if (!YAJL_IS_STRING(v)) {
            v = sa_remote_get(root, "error");
            if (YAJL_IS_OBJECT(v)) {
                v = sa_remote_get(v, "message");
            }
        }

        if (!YAJL_IS_STRING(v)) {
            v = sa_remote_get(root, "message");
        }

        if (YAJL_IS_STRING(v)) {
            snprintf(buf, size, "%s", YAJL_GET_STRING(v));
        }

        yajl_tree_free(root);
    }

    if (buf[0] == '\0') {
        n = len < size - 1 ? len : size - 1;
        memcpy(buf, body, n);
        buf[n] = '\0';
    }

    /* one log line: no control characters, no broken UTF-8 at the cut */
    n = strlen(buf);

    for (i = 0; i < n; i++) {
        if ((unsigned char) buf[i] < 0x20 || buf[i] == 0x7f) {
            buf[i] = ' ';
        }
    }

    n = sa_utf8_complete_prefix((unsigned char *) buf, n);
    buf[n] = '\0';
    sa_utf8_sanitize((unsigned char *) buf, n);
}


static yajl_val
sa_remote_get(yajl_val obj, const char *key)
{
    size_t  i;

    if (!YAJL_IS_OBJECT(obj)) {
        return NULL;
    }

    for (i = 0; i < YAJL_GET_OBJECT(obj)->len; i++) {
        if (strcmp(YAJL_GET_OBJECT(obj)->keys[i], key) == 0) {
            return YAJL_GET_OBJECT(obj)->values[i];
        }
    }

    return NULL;
}


/* the cache record: u8 version (1), u8 0, u16 0, u32 chunk, i64
   updated_ms, then the strings as u32 length and bytes */

#define SA_REMOTE_CHUNK_STRINGS  11

int
sa_remote_chunk_encode(const sa_kb_chunk_t *c, unsigned char **out,
    size_t *len)
{
    size_t          i, size;
    unsigned char  *p;
    const char     *s[SA_REMOTE_CHUNK_STRINGS];

    s[0] = c->doc_id;
    s[1] = c->title;
    s[2] = c->section;
    s[3] = c->anchor;
    s[4] = c->url;
    s[5] = c->text;
    s[6] = c->product_area;
    s[7] = c->doc_type;
    s[8] = c->version;
    s[9] = c->tier;
    s[10] = c->region;

    size = 16;

    for (i = 0; i < SA_REMOTE_CHUNK_STRINGS; i++) {
        size += 4 + (s[i] ? strlen(s[i]) : 0);
    }

    p = malloc(size);
    if (p == NULL) {
        return SA_ERROR;
    }

    *out = p;
    *len = size;

    p[0] = 1;
    p[1] = 0;
    p[2] = 0;
    p[3] = 0;
    memcpy(p + 4, &c->chunk, 4);
    memcpy(p + 8, &c->updated_ms, 8);
    p += 16;

    for (i = 0; i < SA_REMOTE_CHUNK_STRINGS; i++) {
        if (sa_remote_put_str(&p, s[i] ? s[i] : "") != SA_OK) {
            free(*out);
            return SA_ERROR;
        }
    }

    return SA_OK;
}


static int
sa_remote_put_str(unsigned char **p, const char *s)
{
    uint32_t  n;

    n = (uint32_t) strlen(s);
    memcpy(*p, &n, 4);
    memcpy(*p + 4, s, n);
    *p += 4 + n;

    return SA_OK;
}


int
sa_remote_chunk_decode(const unsigned char *p, size_t len, sa_kb_chunk_t *c)
{
    size_t                i;
    const unsigned char  *end;
    char                **s[SA_REMOTE_CHUNK_STRINGS];

    memset(c, 0, sizeof(sa_kb_chunk_t));

    if (len < 16 || p[0] != 1) {
        return SA_INVALID;
    }

    end = p + len;

    memcpy(&c->chunk, p + 4, 4);
    memcpy(&c->updated_ms, p + 8, 8);
    p += 16;

    s[0] = &c->doc_id;
    s[1] = &c->title;
    s[2] = &c->section;
    s[3] = &c->anchor;
    s[4] = &c->url;
    s[5] = &c->text;
    s[6] = &c->product_area;
    s[7] = &c->doc_type;
    s[8] = &c->version;
    s[9] = &c->tier;
    s[10] = &c->region;

    for (i = 0; i < SA_REMOTE_CHUNK_STRINGS; i++) {
        if (sa_remote_get_str(&p, end, s[i], i == 5 ? &c->text_len : NULL)
            != SA_OK)
        {
            sa_kb_chunk_free(c);
            return SA_INVALID;
        }
    }

    return SA_OK;
}


static int
sa_remote_get_str(const unsigned char **p, const unsigned char *end,
    char **s, size_t *len)
{
    uint32_t  n;

    if (end - *p < 4) {
        return SA_INVALID;
    }

    memcpy(&n, *p, 4);

    if ((size_t) (end - *p - 4) < n) {
        return SA_INVALID;
    }

    *s = malloc((size_t) n + 1);
    if (*s == NULL) {
        return SA_ERROR;
    }

    memcpy(*s, *p + 4, n);
    (*s)[n] = '\0';
    *p += 4 + n;

    if (len) {
        *len = n;
    }

    return SA_OK;
}
