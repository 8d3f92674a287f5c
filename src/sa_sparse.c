
/*
 * Copyright (C) ngx_support_agent authors
 *
 * Sparse BM25 vectors and point ids for Qdrant (see sa_sparse.h).
 */


#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sa_sparse.h"


/* a term met while analyzing: its index, and where its bytes are */
typedef struct {
    uint32_t      index;
    uint32_t      len;
    size_t        off;
    const char   *p;            /* bytes + off, once all are in */
} sa_sparse_term_t;

typedef struct {
    sa_sparse_term_t  *terms;
    size_t             n;
    size_t             cap;
    char              *bytes;       /* the terms, one after another */
    size_t             used;
    size_t             size;
    int                keep;        /* documents compare the terms */
} sa_sparse_ctx_t;


static int sa_sparse_collect(sa_analyzer_t *a, const char *text,
    size_t len, int keep, sa_sparse_ctx_t *ctx);
static int sa_sparse_term(void *data, const char *term, size_t len,
    uint32_t position);
static int sa_sparse_term_cmp(const void *one, const void *two);
static int sa_sparse_reserve(sa_sparse_t *s, size_t n);
static void sa_sparse_ctx_free(sa_sparse_ctx_t *ctx);


uint32_t
sa_murmur3_32(const void *data, size_t len, uint32_t seed)
{
    size_t                i, nblocks;
    uint32_t              h, k;
    const unsigned char  *p, *tail;

    const uint32_t  c1 = 0xcc9e2d51;
    const uint32_t  c2 = 0x1b873593;

    p = data;
    h = seed;
    nblocks = len / 4;

    for (i = 0; i < nblocks; i++) {
        k = (uint32_t) p[4 * i] | ((uint32_t) p[4 * i + 1] << 8)
            | ((uint32_t) p[4 * i + 2] << 16)
            | ((uint32_t) p[4 * i + 3] << 24);

        k *= c1;
        k = (k << 15) | (k >> 17);
        k *= c2;

        h ^= k;
        h = (h << 13) | (h >> 19);
        h = h * 5 + 0xe6546b64;
    }

    tail = p + nblocks * 4;
    k = 0;

    switch (len & 3) {
    case 3: k ^= (uint32_t) tail[2] << 16;  /* fall through */
    case 2: k ^= (uint32_t) tail[1] << 8;   /* fall through */
    case 1:
        k ^= tail[0];
        k *= c1;
        k = (k << 15) | (k >> 17);
        k *= c2;
        h ^= k;
    }

    h ^= (uint32_t) len;

    h ^= h >> 16;
    h *= 0x85ebca6b;
    h ^= h >> 13;
    h *= 0xc2b2ae35;
    h ^= h >> 16;

    return h;
}


/* abs() of the hash as a signed int32, as Python's abs(mmh3.hash(t)):
   INT32_MIN's absolute value, 2^31, still fits in 32 bits unsigned */

uint32_t
sa_sparse_index(const char *term, size_t len)
{
    uint32_t  h;

    h = sa_murmur3_32(term, len, 0);

    return (h & 0x80000000) ? 0u - h : h;
}


int
sa_sparse_document(sa_analyzer_t *a, const char *text, size_t len,
    uint32_t dl, double avgdl, double k1, double b, sa_sparse_t *out)
{
    double             norm, tf, v;
    size_t             i, j;
    sa_sparse_ctx_t    ctx;
    sa_sparse_term_t  *t;

    out->n = 0;

    if (sa_sparse_collect(a, text, len, 1, &ctx) != SA_OK) {
        return SA_ERROR;
    }

    if (sa_sparse_reserve(out, ctx.n) != SA_OK) {
        sa_sparse_ctx_free(&ctx);
        return SA_ERROR;
    }

    norm = k1 * (1 - b + b * dl / (avgdl > 0 ? avgdl : 1));

    /* sorted by index, then term: a run of one term is its tf */

    for (i = 0; i < ctx.n; i = j) {
        t = &ctx.terms[i];

        for (j = i + 1; j < ctx.n; j++) {
            if (ctx.terms[j].len != t->len || ctx.terms[j].index != t->index
                || memcmp(ctx.terms[j].p, t->p, t->len) != 0)
            {
                break;
            }
        }

        tf = (double) (j - i);
        v = tf * (k1 + 1) / (tf + norm);

        if (out->n > 0 && out->indices[out->n - 1] == t->index) {
            /* another term with the same index */
            out->values[out->n - 1] += (float) v;
            continue;
        }

        out->indices[out->n] = t->index;
        out->values[out->n++] = (float) v;
    }

    sa_sparse_ctx_free(&ctx);

    return SA_OK;
}


int
sa_sparse_query(sa_analyzer_t *a, const char *text, size_t len,
    sa_sparse_t *out)
{
    size_t           i, j;
    sa_sparse_ctx_t  ctx;

    out->n = 0;

    if (sa_sparse_collect(a, text, len, 0, &ctx) != SA_OK) {
        return SA_ERROR;
    }

    if (sa_sparse_reserve(out, ctx.n) != SA_OK) {
        sa_sparse_ctx_free(&ctx);
        return SA_ERROR;
    }

    for (i = 0; i < ctx.n; i = j) {
        for (j = i + 1; j < ctx.n; j++) {
            if (ctx.terms[j].index != ctx.terms[i].index) {
                break;
            }
        }

        out->indices[out->n] = ctx.terms[i].index;
        out->values[out->n++] = (float) (j - i);
    }

    sa_sparse_ctx_free(&ctx);

    return SA_OK;
}


void
sa_sparse_free(sa_sparse_t *s)
{
    if (s == NULL) {
        return;
    }

    free(s->indices);
    free(s->values);
    memset(s, 0, sizeof(sa_sparse_t));
}


int
sa_sparse_json(const sa_sparse_t *s, sa_jw_t *w)
{
    size_t  i;

    if (sa_jw_open(w) != SA_OK || sa_jw_key(w, "indices") != SA_OK
        || sa_jw_array_open(w) != SA_OK)
    {
        return SA_ERROR;
    }

    for (i = 0; i < s->n; i++) {
        if (sa_jw_int(w, s->indices[i]) != SA_OK) {
            return SA_ERROR;
        }
    }

    if (sa_jw_array_close(w) != SA_OK || sa_jw_key(w, "values") != SA_OK
        || sa_jw_array_open(w) != SA_OK)
    {
        return SA_ERROR;
    }

    for (i = 0; i < s->n; i++) {
        if (sa_sparse_jw_float(w, s->values[i]) != SA_OK) {
            return SA_ERROR;
        }
    }

    if (sa_jw_array_close(w) != SA_OK || sa_jw_close(w) != SA_OK) {
        return SA_ERROR;
    }

    return SA_OK;
}


/*
 * The double nearest to the shortest decimal that reads back as v: the
 * JSON writer then prints that decimal (it prints a double's shortest
 * form), not the 17 digits of v's exact double.
 */

int
sa_sparse_jw_float(sa_jw_t *w, float v)
{
    int     precision;
    char    num[32];
    double  d;

    if (!isfinite(v)) {
        return SA_INVALID;
    }

    d = v;

    for (precision = 1; precision < 9; precision++) {
        snprintf(num, sizeof(num), "%.*e", precision - 1, (double) v);

        if ((float) strtod(num, NULL) == v) {
            d = strtod(num, NULL);
            break;
        }
    }

    return sa_jw_double(w, d);
}


void
sa_kb_point_id(const char *doc_id, size_t len,
    const unsigned char text_hash[SA_KB_HASH_SIZE],
    char out[SA_KB_POINT_ID_SIZE])
{
    int             i;
    char           *p;
    unsigned char   h[SA_KB_HASH_SIZE], small[SA_KB_ID_MAX + 1
                                                + SA_KB_HASH_SIZE];
    unsigned char  *buf;

    static const char  hex[] = "0123456789abcdef";

    /* doc id, NUL, text hash; ids are at most SA_KB_ID_MAX bytes, but
       the module may pass what Qdrant holds */

    buf = (len <= SA_KB_ID_MAX) ? small
                                : malloc(len + 1 + SA_KB_HASH_SIZE);

    if (buf == NULL) {
        /* cannot happen for a KB's ids: a stable id from the hash alone */
        sa_kb_hash(text_hash, SA_KB_HASH_SIZE, 0, h);

    } else {
        memcpy(buf, doc_id, len);
        buf[len] = '\0';
        memcpy(buf + len + 1, text_hash, SA_KB_HASH_SIZE);

        sa_kb_hash(buf, len + 1 + SA_KB_HASH_SIZE, 0, h);

        if (buf != small) {
            free(buf);
        }
    }

    h[6] = (unsigned char) ((h[6] & 0x0f) | 0x50);
    h[8] = (unsigned char) ((h[8] & 0x3f) | 0x80);

    p = out;

    for (i = 0; i < SA_KB_HASH_SIZE; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            *p++ = '-';
        }

        *p++ = hex[h[i] >> 4];
        *p++ = hex[h[i] & 0x0f];
    }

    *p = '\0';
}


/* the terms of text with their indices, sorted by index (then by term,
   when keep) */

static int
sa_sparse_collect(sa_analyzer_t *a, const char *text, size_t len, int keep,
    sa_sparse_ctx_t *ctx)
{
    int     rc;
    size_t  i;

    memset(ctx, 0, sizeof(sa_sparse_ctx_t));
    ctx->keep = keep;

    rc = sa_analyze(a, text, len, sa_sparse_term, ctx);
    if (rc != SA_OK) {
        sa_sparse_ctx_free(ctx);
        return SA_ERROR;
    }

    /* the buffer moved as it grew: the terms are found only now */

    for (i = 0; i < ctx->n; i++) {
        ctx->terms[i].p = (keep && ctx->bytes != NULL)
                          ? ctx->bytes + ctx->terms[i].off : "";
    }

    if (ctx->n > 1) {
        qsort(ctx->terms, ctx->n, sizeof(sa_sparse_term_t),
              sa_sparse_term_cmp);
    }

    return SA_OK;
}


static int
sa_sparse_term(void *data, const char *term, size_t len, uint32_t position)
{
    size_t             cap;
    sa_sparse_ctx_t   *ctx = data;
    sa_sparse_term_t  *t;
    char              *p;

    if (ctx->n == ctx->cap) {
        cap = ctx->cap ? ctx->cap * 2 : 64;

        t = realloc(ctx->terms, cap * sizeof(sa_sparse_term_t));
        if (t == NULL) {
            return SA_ERROR;
        }

        ctx->terms = t;
        ctx->cap = cap;
    }

    t = &ctx->terms[ctx->n];
    t->index = sa_sparse_index(term, len);
    t->off = 0;
    t->len = 0;

    if (ctx->keep) {
        if (ctx->size - ctx->used < len) {
            cap = ctx->size ? ctx->size * 2 : 1024;

            while (cap - ctx->used < len) {
                cap *= 2;
            }

            p = realloc(ctx->bytes, cap);
            if (p == NULL) {
                return SA_ERROR;
            }

            ctx->bytes = p;
            ctx->size = cap;
        }

        memcpy(ctx->bytes + ctx->used, term, len);
        t->off = ctx->used;
        t->len = (uint32_t) len;
        ctx->used += len;
    }

    ctx->n++;

    return SA_OK;
}


static int
sa_sparse_term_cmp(const void *one, const void *two)
{
    int                      c;
    size_t                   m;
    const sa_sparse_term_t  *a, *b;

    a = one;
    b = two;

    if (a->index != b->index) {
        return a->index < b->index ? -1 : 1;
    }

    m = a->len < b->len ? a->len : b->len;

    if (m > 0) {
        c = memcmp(a->p, b->p, m);
        if (c != 0) {
            return c;
        }
    }

    return (a->len > b->len) - (a->len < b->len);
}


static int
sa_sparse_reserve(sa_sparse_t *s, size_t n)
{
    float     *v;
    uint32_t  *ix;

    if (n <= s->cap) {
        return SA_OK;
    }

    ix = realloc(s->indices, n * sizeof(uint32_t));
    if (ix == NULL) {
        return SA_ERROR;
    }

    s->indices = ix;

    v = realloc(s->values, n * sizeof(float));
    if (v == NULL) {
        return SA_ERROR;
    }

    s->values = v;
    s->cap = n;

    return SA_OK;
}


static void
sa_sparse_ctx_free(sa_sparse_ctx_t *ctx)
{
    free(ctx->terms);
    free(ctx->bytes);
    ctx->terms = NULL;
    ctx->bytes = NULL;
}
