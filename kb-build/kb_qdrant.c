
/*
 * Copyright (C) ngx_support_agent authors
 *
 * kb-build --qdrant: the KB's chunks as points of a Qdrant collection
 * (see kb_qdrant.h for the contract with the module).
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "kb_build.h"
#include "kb_http.h"
#include "kb_qdrant.h"
#include "sa_json.h"
#include "sa_kb.h"
#include "sa_sparse.h"
#include "sa_text.h"


#define KB_QDRANT_PROGRESS_S  2.0


typedef struct {
    const kb_qdrant_conf_t  *conf;
    kb_qdrant_stats_t       *st;
    kb_http_t               *http;
    char                    *path;        /* base/collections/NAME */
    char                     safe[512];   /* base, for messages */
    sa_kb_t                 *kb;
    sa_kb_info_t             info;
    sa_analyzer_t           *analyzer;
    double                   k1;
    double                   b;
    double                   avgdl;
    sa_jw_t                 *jw;
    kb_buf_t                 resp;
    sa_sparse_t              sparse;
    float                   *vec;
    char                    *text;        /* prefix "\n" text */
    size_t                   text_cap;
    int                      indexed[5];  /* payload indexes there */
} kb_qdrant_t;


static const char  *kb_qdrant_indexes[5] = {
    "doc_id", "product_area", "version", "tier", "region"
};


static int kb_qdrant_open(kb_qdrant_t *q, const char *kb_path);
static void kb_qdrant_close(kb_qdrant_t *q);
static int kb_qdrant_call(kb_qdrant_t *q, const char *method,
    const char *suffix, int body, long *status);
static int kb_qdrant_collection(kb_qdrant_t *q);
static int kb_qdrant_check(kb_qdrant_t *q, yajl_val result);
static int kb_qdrant_create(kb_qdrant_t *q);
static int kb_qdrant_payload_indexes(kb_qdrant_t *q);
static int kb_qdrant_upsert_all(kb_qdrant_t *q);
static int kb_qdrant_point(kb_qdrant_t *q, uint32_t id);
static int kb_qdrant_payload(kb_qdrant_t *q, const sa_kb_chunk_t *c);
static int kb_qdrant_kstr(sa_jw_t *w, const char *key, const char *s);
static int kb_qdrant_delete_stale(kb_qdrant_t *q);
static int kb_qdrant_failed(kb_qdrant_t *q, const char *what, long status);
static char *kb_qdrant_escape(const char *s);
static double kb_qdrant_meta(sa_kb_t *kb, const char *name, double dflt);
static const char *kb_qdrant_string(yajl_val v);


int
kb_qdrant_sync(const kb_qdrant_conf_t *conf, const char *kb_path,
    kb_qdrant_stats_t *st)
{
    int          rc;
    double       start;
    kb_qdrant_t  q;

    memset(st, 0, sizeof(kb_qdrant_stats_t));
    memset(&q, 0, sizeof(kb_qdrant_t));
    q.conf = conf;
    q.st = st;
    start = kb_now();

    rc = kb_qdrant_open(&q, kb_path);

    if (rc == 0) {
        rc = kb_qdrant_collection(&q);
    }

    if (rc == 0) {
        rc = kb_qdrant_payload_indexes(&q);
    }

    if (rc == 0) {
        rc = kb_qdrant_upsert_all(&q);
    }

    if (rc == 0) {
        rc = kb_qdrant_delete_stale(&q);
    }

    if (q.http != NULL) {
        st->requests = kb_http_requests(q.http);
    }

    st->seconds = kb_now() - start;

    kb_qdrant_close(&q);

    return rc;
}


static int
kb_qdrant_open(kb_qdrant_t *q, const char *kb_path)
{
    char         err[1024], *coll;
    size_t       len;
    const char  *url;

    url = q->conf->url;

    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
    {
        kb_error("--qdrant: not an http:// or https:// URL");
        return -1;
    }

    if (sa_kb_open(&q->kb, kb_path, err, sizeof(err)) != SA_OK) {
        kb_error("%s", err);
        return -1;
    }

    sa_kb_info(q->kb, &q->info);

    q->analyzer = sa_analyzer_new(q->info.language);
    if (q->analyzer == NULL) {
        kb_error("kb \"%s\": no analyzer for \"%s\"", kb_path,
                 q->info.language);
        return -1;
    }

    /* BM25 as the KB has it: the sparse vectors carry its tf part */

    q->k1 = kb_qdrant_meta(q->kb, "k1", 0.9);
    q->b = kb_qdrant_meta(q->kb, "b", 0.4);
    q->avgdl = q->info.chunks
               ? kb_qdrant_meta(q->kb, "tokens", 0) / q->info.chunks : 1;

    len = strlen(url);

    while (len > 0 && url[len - 1] == '/') {
        len--;
    }

    coll = kb_qdrant_escape(q->conf->collection);
    q->path = coll ? malloc(len + sizeof("/collections/") + strlen(coll))
                   : NULL;

    if (q->path != NULL) {
        sprintf(q->path, "%.*s/collections/%s", (int) len, url, coll);
    }

    free(coll);

    q->http = kb_http_new("api-key: ", q->conf->key, q->conf->timeout,
                          q->conf->retries);

    q->jw = sa_jw_new();

    if (q->path == NULL || q->http == NULL || q->jw == NULL) {
        kb_error("out of memory");
        return -1;
    }

    kb_http_safe_url(q->path, q->safe, sizeof(q->safe));

    if (q->info.dim > 0) {
        q->vec = malloc(q->info.dim * sizeof(float));
        if (q->vec == NULL) {
            kb_error("out of memory");
            return -1;
        }
    }

    return 0;
}


static void
kb_qdrant_close(kb_qdrant_t *q)
{
    sa_kb_close(q->kb);
    sa_analyzer_free(q->analyzer);
    kb_http_free(q->http);
    sa_jw_free(q->jw);
    kb_buf_free(&q->resp);
    sa_sparse_free(&q->sparse);
    free(q->vec);
    free(q->text);
    free(q->path);
}


/* METHOD path suffix, with the JSON being built as the body when body */

static int
kb_qdrant_call(kb_qdrant_t *q, const char *method, const char *suffix,
    int body, long *status)
{
    int          rc;
    char        *url;
    size_t       len;
    const char  *json;

    url = malloc(strlen(q->path) + strlen(suffix) + 1);
    if (url == NULL) {
        kb_error("out of memory");
        return -1;
    }

    sprintf(url, "%s%s", q->path, suffix);

    json = NULL;
    len = 0;

    if (body) {
        json = sa_jw_buf(q->jw, &len);
    }

    rc = kb_http_json(q->http, method, url, json, len, status, &q->resp);

    free(url);

    if (rc != 0) {
        kb_error("qdrant: %s", kb_http_error(q->http));
        return -1;
    }

    return 0;
}


/* the collection: checked when it exists, created when it does not */

static int
kb_qdrant_collection(kb_qdrant_t *q)
{
    int       rc;
    long      status;
    char      err[128];
    yajl_val  root, result;

    static const char  *result_path[] = { "result", NULL };

    if (kb_qdrant_call(q, "GET", "", 0, &status) != 0) {
        return -1;
    }

    if (status == 404) {
        return kb_qdrant_create(q);
    }

    if (status != 200) {
        return kb_qdrant_failed(q, "GET", status);
    }

    root = sa_json_tree_parse(q->resp.data ? q->resp.data : "", q->resp.len,
                              err, sizeof(err));

    result = root ? yajl_tree_get(root, result_path, yajl_t_object) : NULL;

    if (result == NULL) {
        kb_error("qdrant: GET %s: not a collection's info (%s)", q->safe,
                 root ? "no \"result\"" : err);
        yajl_tree_free(root);
        return -1;
    }

    rc = kb_qdrant_check(q, result);

    yajl_tree_free(root);

    return rc;
}


/*
 * An existing collection must have the named vectors this KB fills:
 * "dense" of the KB's size (any, when the KB has no vectors) with Cosine
 * distance, and "sparse" with the IDF modifier.
 */

static int
kb_qdrant_check(kb_qdrant_t *q, yajl_val result)
{
    int          i;
    yajl_val     vectors, dense, size, dist, sparse, mod, schema;
    const char  *name;

    static const char  *vectors_path[] =
        { "config", "params", "vectors", NULL };
    static const char  *sparse_path[] =
        { "config", "params", "sparse_vectors", "sparse", NULL };
    static const char  *schema_path[] = { "payload_schema", NULL };
    static const char  *dense_path[] = { "dense", NULL };
    static const char  *size_path[] = { "size", NULL };
    static const char  *dist_path[] = { "distance", NULL };
    static const char  *mod_path[] = { "modifier", NULL };

    name = q->conf->collection;
    vectors = yajl_tree_get(result, vectors_path, yajl_t_object);
    dense = vectors ? yajl_tree_get(vectors, dense_path, yajl_t_object)
                    : NULL;

    if (vectors != NULL && yajl_tree_get(vectors, size_path, yajl_t_number))
    {
        kb_error("qdrant: collection \"%s\" has one unnamed dense vector, "
                 "kb-build fills named vectors \"dense\" and \"sparse\": "
                 "give another --collection", name);
        return -1;
    }

    if (q->info.dim > 0) {
        size = dense ? yajl_tree_get(dense, size_path, yajl_t_number)
                     : NULL;

        if (size == NULL) {
            kb_error("qdrant: collection \"%s\" has no dense vector "
                     "\"dense\", the KB has vectors of %u dimensions: give "
                     "another --collection", name, q->info.dim);
            return -1;
        }

        if (YAJL_GET_INTEGER(size) != (long long) q->info.dim) {
            kb_error("qdrant: collection \"%s\" has dense vectors of size "
                     "%lld, the KB's have %u dimensions (another embedding "
                     "model?): give a new --collection name, or delete the "
                     "collection", name, YAJL_GET_INTEGER(size),
                     q->info.dim);
            return -1;
        }

        dist = yajl_tree_get(dense, dist_path, yajl_t_string);

        if (strcmp(kb_qdrant_string(dist), "Cosine") != 0) {
            kb_error("qdrant: collection \"%s\": the distance of \"dense\" "
                     "is not Cosine: give another --collection", name);
            return -1;
        }
    }

    sparse = yajl_tree_get(result, sparse_path, yajl_t_object);
    mod = sparse ? yajl_tree_get(sparse, mod_path, yajl_t_string) : NULL;

    if (strcmp(kb_qdrant_string(mod), "idf") != 0) {
        kb_error("qdrant: collection \"%s\" has no sparse vector \"sparse\" "
                 "with the IDF modifier: give another --collection", name);
        return -1;
    }

    schema = yajl_tree_get(result, schema_path, yajl_t_object);

    for (i = 0; schema != NULL && i < 5; i++) {
        const char  *field[2];

        field[0] = kb_qdrant_indexes[i];
        field[1] = NULL;

        q->indexed[i] = yajl_tree_get(schema, field, yajl_t_any) != NULL;
    }

    return 0;
}


static int
kb_qdrant_create(kb_qdrant_t *q)
{
    int       rc;
    long      status;
    sa_jw_t  *w;

    w = q->jw;
    sa_jw_reset(w);

    /* no dense vector for a KB without vectors: the sparse one only */

    rc = sa_jw_open(w);

    if (q->info.dim > 0) {
        rc |= sa_jw_key(w, "vectors");
        rc |= sa_jw_open(w);
        rc |= sa_jw_key(w, "dense");
        rc |= sa_jw_open(w);
        rc |= sa_jw_kint(w, "size", q->info.dim);
        rc |= sa_jw_kstr(w, "distance", "Cosine", 6);
        rc |= sa_jw_close(w);
        rc |= sa_jw_close(w);
    }

    rc |= sa_jw_key(w, "sparse_vectors");
    rc |= sa_jw_open(w);
    rc |= sa_jw_key(w, "sparse");
    rc |= sa_jw_open(w);
    rc |= sa_jw_kstr(w, "modifier", "idf", 3);
    rc |= sa_jw_close(w);
    rc |= sa_jw_close(w);
    rc |= sa_jw_close(w);

    if (rc != SA_OK) {
        kb_error("out of memory");
        return -1;
    }

    if (kb_qdrant_call(q, "PUT", "", 1, &status) != 0) {
        return -1;
    }

    if (status != 200) {
        return kb_qdrant_failed(q, "PUT", status);
    }

    q->st->created = 1;

    return 0;
}


/* keyword indexes for the fields the module filters on */

static int
kb_qdrant_payload_indexes(kb_qdrant_t *q)
{
    int       i, rc;
    long      status;
    sa_jw_t  *w;

    w = q->jw;

    for (i = 0; i < 5; i++) {
        if (q->indexed[i]) {
            continue;
        }

        sa_jw_reset(w);
        rc = sa_jw_open(w);
        rc |= sa_jw_kstr(w, "field_name", kb_qdrant_indexes[i],
                         strlen(kb_qdrant_indexes[i]));
        rc |= sa_jw_kstr(w, "field_schema", "keyword", 7);
        rc |= sa_jw_close(w);

        if (rc != SA_OK) {
            kb_error("out of memory");
            return -1;
        }

        if (kb_qdrant_call(q, "PUT", "/index?wait=true", 1, &status) != 0) {
            return -1;
        }

        if (status != 200) {
            return kb_qdrant_failed(q, "PUT", status);
        }

        q->st->indexes++;
    }

    return 0;
}


static int
kb_qdrant_upsert_all(kb_qdrant_t *q)
{
    int       rc;
    long      status;
    size_t    n;
    double    last, now;
    uint32_t  id;
    sa_jw_t  *w;

    w = q->jw;
    id = 0;
    last = kb_now();

    for ( ;; ) {
        sa_jw_reset(w);

        if (sa_jw_open(w) != SA_OK || sa_jw_key(w, "points") != SA_OK
            || sa_jw_array_open(w) != SA_OK)
        {
            kb_error("out of memory");
            return -1;
        }

        for (n = 0; n < q->conf->batch; n++, id++) {
            rc = sa_kb_chunk_next(q->kb, id, &id);

            if (rc == SA_NOT_FOUND) {
                break;
            }

            if (rc != SA_OK || kb_qdrant_point(q, id) != 0) {
                if (rc != SA_OK) {
                    kb_error("%s", sa_kb_last_error(q->kb));
                }

                return -1;
            }
        }

        if (n == 0) {
            return 0;
        }

        if (sa_jw_array_close(w) != SA_OK || sa_jw_close(w) != SA_OK) {
            kb_error("out of memory");
            return -1;
        }

        if (kb_qdrant_call(q, "PUT", "/points?wait=true", 1, &status) != 0)
        {
            return -1;
        }

        if (status != 200) {
            return kb_qdrant_failed(q, "PUT", status);
        }

        q->st->points += n;

        now = kb_now();

        if (!q->conf->quiet && now - last >= KB_QDRANT_PROGRESS_S) {
            fprintf(stderr, "kb-build: qdrant: %lu/%u points\n",
                    q->st->points, q->info.chunks);
            last = now;
        }
    }
}


/* {"id", "vector": {"dense", "sparse"}, "payload"} of chunk id */

static int
kb_qdrant_point(kb_qdrant_t *q, uint32_t id)
{
    int            rc, dense;
    char           point[SA_KB_POINT_ID_SIZE], *p;
    size_t         i, len;
    sa_jw_t       *w;
    sa_kb_chunk_t  c;

    rc = sa_kb_chunk(q->kb, id, &c);
    if (rc != SA_OK) {
        kb_error("%s", sa_kb_last_error(q->kb));
        return -1;
    }

    /* what the KB indexed: the prefix, a newline, the text */

    len = c.prefix_len + 1 + c.text_len;

    if (len > q->text_cap) {
        p = realloc(q->text, len);
        if (p == NULL) {
            goto nomem;
        }

        q->text = p;
        q->text_cap = len;
    }

    len = 0;

    if (c.prefix_len > 0) {
        memcpy(q->text, c.prefix, c.prefix_len);
        q->text[c.prefix_len] = '\n';
        len = c.prefix_len + 1;
    }

    memcpy(q->text + len, c.text, c.text_len);
    len += c.text_len;

    if (sa_sparse_document(q->analyzer, q->text, len, c.tokens, q->avgdl,
                           q->k1, q->b, &q->sparse)
        != SA_OK)
    {
        goto nomem;
    }

    dense = 0;

    if (q->info.dim > 0) {
        rc = sa_kb_vector(q->kb, id, q->vec, q->info.dim);

        if (rc == SA_OK) {
            dense = 1;

        } else if (rc != SA_NOT_FOUND) {
            kb_error("%s", sa_kb_last_error(q->kb));
            sa_kb_chunk_free(&c);
            return -1;
        }
    }

    sa_kb_point_id(c.doc_id, strlen(c.doc_id), c.hash, point);

    w = q->jw;

    rc = sa_jw_open(w);
    rc |= sa_jw_kstr(w, "id", point, strlen(point));
    rc |= sa_jw_key(w, "vector");
    rc |= sa_jw_open(w);

    if (dense) {
        rc |= sa_jw_key(w, "dense");
        rc |= sa_jw_array_open(w);

        for (i = 0; i < q->info.dim; i++) {
            rc |= sa_sparse_jw_float(w, q->vec[i]);
        }

        rc |= sa_jw_array_close(w);
        q->st->dense++;
    }

    rc |= sa_jw_key(w, "sparse");
    rc |= sa_sparse_json(&q->sparse, w);
    rc |= sa_jw_close(w);
    rc |= kb_qdrant_payload(q, &c);
    rc |= sa_jw_close(w);

    sa_kb_chunk_free(&c);

    if (rc != SA_OK) {
        kb_error("chunk %u: cannot make its point (out of memory)", id);
        return -1;
    }

    return 0;

nomem:

    sa_kb_chunk_free(&c);
    kb_error("out of memory");

    return -1;
}


static int
kb_qdrant_payload(kb_qdrant_t *q, const sa_kb_chunk_t *c)
{
    int       rc;
    sa_jw_t  *w;

    w = q->jw;

    rc = sa_jw_key(w, "payload");
    rc |= sa_jw_open(w);
    rc |= kb_qdrant_kstr(w, "doc_id", c->doc_id);
    rc |= kb_qdrant_kstr(w, "title", c->title);
    rc |= kb_qdrant_kstr(w, "section", c->section);
    rc |= kb_qdrant_kstr(w, "anchor", c->anchor);
    rc |= kb_qdrant_kstr(w, "url", c->url);
    rc |= sa_jw_kstr(w, "text", c->text, c->text_len);
    rc |= kb_qdrant_kstr(w, "product_area", c->product_area);
    rc |= kb_qdrant_kstr(w, "doc_type", c->doc_type);
    rc |= kb_qdrant_kstr(w, "version", c->version);
    rc |= kb_qdrant_kstr(w, "tier", c->tier);
    rc |= kb_qdrant_kstr(w, "region", c->region);

    if (c->updated_ms != 0) {
        rc |= sa_jw_kint(w, "updated_ms", c->updated_ms);
    }

    rc |= sa_jw_kint(w, "chunk", c->chunk);
    rc |= sa_jw_kint(w, "build", q->info.built_ms);
    rc |= sa_jw_close(w);

    return rc;
}


/* a string member, left out when empty */

static int
kb_qdrant_kstr(sa_jw_t *w, const char *key, const char *s)
{
    if (s == NULL || s[0] == '\0') {
        return SA_OK;
    }

    return sa_jw_kstr(w, key, s, strlen(s));
}


/* the points of older builds: chunks removed or changed since */

static int
kb_qdrant_delete_stale(kb_qdrant_t *q)
{
    int       rc;
    long      status;
    sa_jw_t  *w;

    w = q->jw;
    sa_jw_reset(w);

    rc = sa_jw_open(w);
    rc |= sa_jw_key(w, "filter");
    rc |= sa_jw_open(w);
    rc |= sa_jw_key(w, "must_not");
    rc |= sa_jw_array_open(w);
    rc |= sa_jw_open(w);
    rc |= sa_jw_kstr(w, "key", "build", 5);
    rc |= sa_jw_key(w, "match");
    rc |= sa_jw_open(w);
    rc |= sa_jw_kint(w, "value", q->info.built_ms);
    rc |= sa_jw_close(w);
    rc |= sa_jw_close(w);
    rc |= sa_jw_array_close(w);
    rc |= sa_jw_close(w);
    rc |= sa_jw_close(w);

    if (rc != SA_OK) {
        kb_error("out of memory");
        return -1;
    }

    if (kb_qdrant_call(q, "POST", "/points/delete?wait=true", 1, &status)
        != 0)
    {
        return -1;
    }

    if (status != 200) {
        return kb_qdrant_failed(q, "POST", status);
    }

    return 0;
}


static int
kb_qdrant_failed(kb_qdrant_t *q, const char *what, long status)
{
    char  text[400];

    kb_http_error_text(q->http, q->resp.data ? q->resp.data : "",
                       q->resp.len, text, sizeof(text));

    kb_error("qdrant: %s %s: HTTP %ld%s%s", what, q->safe, status,
             text[0] ? ": " : "", text);

    return -1;
}


/* a path segment: unreserved characters as they are, the rest %XX */

static char *
kb_qdrant_escape(const char *s)
{
    char                 *out, *p;
    const unsigned char  *c;

    static const char  hex[] = "0123456789ABCDEF";

    out = malloc(3 * strlen(s) + 1);
    if (out == NULL) {
        return NULL;
    }

    p = out;

    for (c = (const unsigned char *) s; *c != '\0'; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')
            || (*c >= '0' && *c <= '9') || strchr("-._~", *c) != NULL)
        {
            *p++ = (char) *c;
            continue;
        }

        *p++ = '%';
        *p++ = hex[*c >> 4];
        *p++ = hex[*c & 0x0f];
    }

    *p = '\0';

    return out;
}


static double
kb_qdrant_meta(sa_kb_t *kb, const char *name, double dflt)
{
    char    buf[64], *end;
    double  v;

    if (sa_kb_meta(kb, name, buf, sizeof(buf)) != SA_OK || buf[0] == '\0') {
        return dflt;
    }

    v = strtod(buf, &end);

    return (end != buf && *end == '\0') ? v : dflt;
}


/* a string value, "" for anything else */

static const char *
kb_qdrant_string(yajl_val v)
{
    if (v == NULL || !YAJL_IS_STRING(v) || v->u.string == NULL) {
        return "";
    }

    return v->u.string;
}
