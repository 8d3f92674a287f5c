
/*
 * Copyright (C) ngx_support_agent authors
 *
 * kb-build's embedding client (see kb_embed.h).
 */


#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "kb_build.h"
#include "kb_embed.h"
#include "kb_http.h"
#include "sa_json.h"


#define KB_EMBED_MAX_DIM  65536


struct kb_embed_s {
    kb_http_t      *http;
    char           *url;          /* where requests go */
    char            safe[512];    /* the same, for messages */
    int             tei;
    char           *model;
    uint32_t        asked;
    uint32_t        dim;
    sa_jw_t        *jw;
    kb_buf_t        resp;
    float          *vecs;
    size_t          cap;          /* floats in vecs */
    unsigned long   texts;
    double          seconds;
    char            err[1024];
};


static int kb_embed_body(kb_embed_t *e, const char *const *texts,
    const size_t *lens, size_t n);
static int kb_embed_parse(kb_embed_t *e, size_t n);
static int kb_embed_openai(kb_embed_t *e, yajl_val root, size_t n);
static int kb_embed_tei_answer(kb_embed_t *e, yajl_val root, size_t n);
static int kb_embed_vector(kb_embed_t *e, yajl_val v, size_t i);


kb_embed_t *
kb_embed_new(const kb_embed_conf_t *conf, char *err, size_t errlen)
{
    size_t       len;
    kb_embed_t  *e;
    const char  *path;

    if (strncmp(conf->url, "http://", 7) != 0
        && strncmp(conf->url, "https://", 8) != 0)
    {
        snprintf(err, errlen, "--embed: not an http:// or https:// URL");
        return NULL;
    }

    e = calloc(1, sizeof(kb_embed_t));
    if (e == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }

    /* TEI: a path ending in /embed; else OpenAI's /embeddings, added
       when the URL is a base ("http://host/v1") */

    len = strlen(conf->url);

    while (len > 0 && conf->url[len - 1] == '/') {
        len--;
    }

    path = strstr(conf->url, "://") + 3;
    path += strcspn(path, "/");

    e->tei = (len >= 6 && strncmp(conf->url + len - 6, "/embed", 6) == 0
              && conf->url + len - 6 >= path);

    if (e->tei
        || (len >= 11
            && strncmp(conf->url + len - 11, "/embeddings", 11) == 0))
    {
        e->url = strndup(conf->url, len);

    } else {
        e->url = malloc(len + sizeof("/embeddings"));

        if (e->url != NULL) {
            memcpy(e->url, conf->url, len);
            memcpy(e->url + len, "/embeddings", sizeof("/embeddings"));
        }
    }

    e->model = conf->model ? strdup(conf->model) : NULL;
    e->asked = conf->dim;
    e->jw = sa_jw_new();

    e->http = kb_http_new("Authorization: Bearer ", conf->key,
                          conf->timeout, conf->retries);

    if (e->url == NULL || (conf->model && e->model == NULL) || e->jw == NULL
        || e->http == NULL)
    {
        kb_embed_free(e);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }

    kb_http_safe_url(e->url, e->safe, sizeof(e->safe));

    return e;
}


void
kb_embed_free(kb_embed_t *e)
{
    if (e == NULL) {
        return;
    }

    kb_http_free(e->http);
    sa_jw_free(e->jw);
    kb_buf_free(&e->resp);
    free(e->vecs);
    free(e->url);
    free(e->model);
    free(e);
}


int
kb_embed_tei(kb_embed_t *e)
{
    return e->tei;
}


const char *
kb_embed_url(kb_embed_t *e)
{
    return e->safe;
}


uint32_t
kb_embed_dim(kb_embed_t *e)
{
    return e->dim;
}


const char *
kb_embed_error(kb_embed_t *e)
{
    return e->err;
}


void
kb_embed_stats(kb_embed_t *e, unsigned long *requests,
    unsigned long *texts, double *seconds)
{
    *requests = kb_http_requests(e->http);
    *texts = e->texts;
    *seconds = e->seconds;
}


const float *
kb_embed(kb_embed_t *e, const char *const *texts, const size_t *lens,
    size_t n)
{
    long         status;
    char         text[400];
    size_t       len;
    double       start;
    const char  *body;

    e->err[0] = '\0';
    start = kb_now();

    if (kb_embed_body(e, texts, lens, n) != 0) {
        snprintf(e->err, sizeof(e->err), "POST %s: cannot make the request "
                 "(out of memory)", e->safe);
        return NULL;
    }

    body = sa_jw_buf(e->jw, &len);

    if (kb_http_json(e->http, "POST", e->url, body, len, &status, &e->resp)
        != 0)
    {
        snprintf(e->err, sizeof(e->err), "%s", kb_http_error(e->http));
        return NULL;
    }

    e->seconds += kb_now() - start;

    if (status < 200 || status > 299) {
        kb_http_error_text(e->http, e->resp.data ? e->resp.data : "",
                           e->resp.len, text, sizeof(text));
        snprintf(e->err, sizeof(e->err), "POST %s: HTTP %ld%s%s", e->safe,
                 status, text[0] ? ": " : "", text);
        return NULL;
    }

    if (kb_embed_parse(e, n) != 0) {
        return NULL;
    }

    e->texts += n;

    return e->vecs;
}


/* OpenAI {"model","input":[...],"encoding_format":"float"}; TEI
   {"inputs":[...],"normalize":true,"truncate":true} */

static int
kb_embed_body(kb_embed_t *e, const char *const *texts, const size_t *lens,
    size_t n)
{
    int       rc;
    size_t    i, len;
    sa_jw_t  *w;

    w = e->jw;
    sa_jw_reset(w);

    rc = sa_jw_open(w);

    if (!e->tei && e->model != NULL) {
        rc |= sa_jw_kstr(w, "model", e->model, strlen(e->model));
    }

    rc |= sa_jw_key(w, e->tei ? "inputs" : "input");
    rc |= sa_jw_array_open(w);

    for (i = 0; i < n; i++) {
        len = lens[i];

        if (len > KB_EMBED_MAX_INPUT) {
            /* cut before a continuation byte: at a character */
            len = KB_EMBED_MAX_INPUT;

            while (len > 0 && ((unsigned char) texts[i][len] & 0xc0) == 0x80)
            {
                len--;
            }
        }

        rc |= sa_jw_str(w, texts[i], len);
    }

    rc |= sa_jw_array_close(w);

    if (e->tei) {
        rc |= sa_jw_kbool(w, "normalize", 1);
        rc |= sa_jw_kbool(w, "truncate", 1);

    } else {
        rc |= sa_jw_kstr(w, "encoding_format", "float", 5);
    }

    if (e->asked != 0) {
        rc |= sa_jw_kint(w, "dimensions", e->asked);
    }

    rc |= sa_jw_close(w);

    return rc == SA_OK ? 0 : -1;
}


static int
kb_embed_parse(kb_embed_t *e, size_t n)
{
    int       rc;
    char      err[128];
    yajl_val  root;

    root = sa_json_tree_parse(e->resp.data ? e->resp.data : "", e->resp.len,
                              err, sizeof(err));
    if (root == NULL) {
        snprintf(e->err, sizeof(e->err), "POST %s: the answer is not JSON "
                 "(%s)", e->safe, err);
        return -1;
    }

    rc = e->tei ? kb_embed_tei_answer(e, root, n)
                : kb_embed_openai(e, root, n);

    yajl_tree_free(root);

    return rc;
}


/* {"data":[{"index":i,"embedding":[...]}...]}: matched by index, not by
   order */

static int
kb_embed_openai(kb_embed_t *e, yajl_val root, size_t n)
{
    size_t         i, j;
    yajl_val       data, item, index, emb;
    unsigned char *seen;

    static const char  *data_path[] = { "data", NULL };
    static const char  *index_path[] = { "index", NULL };
    static const char  *emb_path[] = { "embedding", NULL };

    data = yajl_tree_get(root, data_path, yajl_t_array);

    if (data == NULL) {
        snprintf(e->err, sizeof(e->err), "POST %s: no \"data\" array in the "
                 "answer", e->safe);
        return -1;
    }

    if (data->u.array.len != n) {
        snprintf(e->err, sizeof(e->err), "POST %s: %zu embeddings for %zu "
                 "inputs", e->safe, data->u.array.len, n);
        return -1;
    }

    seen = calloc(n + 1, 1);
    if (seen == NULL) {
        snprintf(e->err, sizeof(e->err), "out of memory");
        return -1;
    }

    for (i = 0; i < n; i++) {
        item = data->u.array.values[i];
        index = yajl_tree_get(item, index_path, yajl_t_number);
        emb = yajl_tree_get(item, emb_path, yajl_t_array);

        if (index == NULL || !YAJL_IS_INTEGER(index) || emb == NULL) {
            snprintf(e->err, sizeof(e->err), "POST %s: data[%zu] has no "
                     "integer \"index\" or no \"embedding\" array", e->safe,
                     i);
            break;
        }

        j = (size_t) YAJL_GET_INTEGER(index);

        if (YAJL_GET_INTEGER(index) < 0 || j >= n || seen[j]) {
            snprintf(e->err, sizeof(e->err), "POST %s: data[%zu] has index "
                     "%lld: out of range or repeated", e->safe, i,
                     YAJL_GET_INTEGER(index));
            break;
        }

        seen[j] = 1;

        if (kb_embed_vector(e, emb, j) != 0) {
            break;
        }
    }

    free(seen);

    return i == n ? 0 : -1;
}


/* [[...], [...]]: in the order of the inputs */

static int
kb_embed_tei_answer(kb_embed_t *e, yajl_val root, size_t n)
{
    size_t  i;

    if (!YAJL_IS_ARRAY(root)) {
        snprintf(e->err, sizeof(e->err), "POST %s: the answer is not an "
                 "array of embeddings", e->safe);
        return -1;
    }

    if (root->u.array.len != n) {
        snprintf(e->err, sizeof(e->err), "POST %s: %zu embeddings for %zu "
                 "inputs", e->safe, root->u.array.len, n);
        return -1;
    }

    for (i = 0; i < n; i++) {
        if (!YAJL_IS_ARRAY(root->u.array.values[i])) {
            snprintf(e->err, sizeof(e->err), "POST %s: embedding %zu is not "
                     "an array", e->safe, i);
            return -1;
        }

        if (kb_embed_vector(e, root->u.array.values[i], i) != 0) {
            return -1;
        }
    }

    return 0;
}


/* vector i of the answer into vecs; the first fixes the dimension */

static int
kb_embed_vector(kb_embed_t *e, yajl_val v, size_t i)
{
    float     *p;
    double     x;
    size_t     d, j, need;
    yajl_val   c;

    d = v->u.array.len;

    if (d == 0 || d > KB_EMBED_MAX_DIM) {
        snprintf(e->err, sizeof(e->err), "POST %s: an embedding of %zu "
                 "values", e->safe, d);
        return -1;
    }

    if (e->dim == 0) {
        if (e->asked != 0 && d != e->asked) {
            snprintf(e->err, sizeof(e->err), "POST %s: embeddings of %zu "
                     "dimensions, %u were asked for (--embed-dim)", e->safe,
                     d, e->asked);
            return -1;
        }

        e->dim = (uint32_t) d;
    }

    if (d != e->dim) {
        snprintf(e->err, sizeof(e->err), "POST %s: an embedding of %zu "
                 "dimensions, the others have %u", e->safe, d, e->dim);
        return -1;
    }

    need = (i + 1) * d;

    if (need > e->cap) {
        p = realloc(e->vecs, need * 2 * sizeof(float));
        if (p == NULL) {
            snprintf(e->err, sizeof(e->err), "out of memory");
            return -1;
        }

        e->vecs = p;
        e->cap = need * 2;
    }

    for (j = 0; j < d; j++) {
        c = v->u.array.values[j];

        if (!YAJL_IS_NUMBER(c)) {
            snprintf(e->err, sizeof(e->err), "POST %s: embedding %zu has a "
                     "value that is not a number", e->safe, i);
            return -1;
        }

        x = YAJL_GET_DOUBLE(c);

        if (!isfinite(x) || fabs(x) > 3e38) {
            snprintf(e->err, sizeof(e->err), "POST %s: embedding %zu has a "
                     "value out of range", e->safe, i);
            return -1;
        }

        e->vecs[i * d + j] = (float) x;
    }

    return 0;
}
