
/*
 * Copyright (C) ngx_support_agent authors
 *
 * sa_kb vectors: float32 and int8 round trips, normalisation, exact
 * cosine search against a brute force in double, filters, ties, zero
 * vectors, dimension mismatches, incremental builds that keep vectors
 * or start afresh when the embedding settings change, and the chunk
 * enumeration kb-build reads them back with.
 */


#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"
#include "sa_kb.h"


#define DIM  8


static char  tmp_dir[] = "/tmp/sa_vec_test_XXXXXX";
static char  kb_path[512];


typedef struct {
    const char  *id;
    const char  *area;
    const char  *region;
    int          version;          /* a new version: a changed document */
    const char  *texts[3];
    float        vec[3][DIM];
    int          novec[3];         /* 1: the chunk has no vector */
} vdoc_t;


/* the settings a build uses */
typedef struct {
    const char  *model;
    uint32_t     dim;
    int          int8;
    uint32_t     late_dim;         /* sa_kb_writer_embed_dim() after open */
} vconf_t;


static vdoc_t  docs[] = {
    { "billing/refunds", "billing", "eu", 0,
      { "refund policy", "refunds take ten days", NULL },
      { { 1, 0, 0, 0, 0, 0, 0, 0 }, { 3, 4, 0, 0, 0, 0, 0, 0 } },
      { 0, 0, 0 } },
    { "shipping/delays", "shipping", "", 0,
      { "shipping delays", NULL },
      { { 0, 1, 0, 0, 0, 0, 0, 0.5f } },
      { 0, 0, 0 } },
    { "shipping/twin", "shipping", "us", 0,
      { "a twin of the delays", NULL },
      { { 0, 2, 0, 0, 0, 0, 0, 1 } },        /* same direction as above */
      { 0, 0, 0 } },
    { "misc/zero", "misc", "", 0,
      { "a zero vector", "no vector at all", NULL },
      { { 0 }, { 0 } },
      { 0, 1, 0 } },
    { "misc/mixed", "misc", "", 0,
      { "mixed signs", NULL },
      { { -0.3f, 0.2f, 0.9f, -0.1f, 0.05f, 0.4f, -0.7f, 0.25f } },
      { 0, 0, 0 } },
    { NULL, NULL, NULL, 0, { NULL }, { { 0 } }, { 0 } }
};


static void
hash_of(const vdoc_t *d, unsigned char *hash)
{
    char  buf[256];

    snprintf(buf, sizeof(buf), "%s/%d", d->id, d->version);
    sa_kb_hash(buf, strlen(buf), 0, hash);
}


static int
build(vdoc_t *ds, const vconf_t *vc, sa_kb_writer_stats_t *st)
{
    int                   i, j, rc, need[16];
    char                  err[512], title[128];
    sa_kb_doc_t           d;
    sa_kb_writer_t       *w;
    sa_kb_wchunk_t        c[3];
    unsigned char         h[SA_KB_HASH_SIZE];
    sa_kb_writer_conf_t   conf;

    memset(&conf, 0, sizeof(conf));
    conf.max_chars = 1000;
    conf.embed_model = vc->model;
    conf.embed_dim = vc->dim;
    conf.embed_int8 = vc->int8;

    rc = sa_kb_writer_open(&w, kb_path, &conf, err, sizeof(err));
    if (rc != SA_OK) {
        printf("# writer_open: %s\n", err);
        return rc;
    }

    if (vc->late_dim != 0) {
        rc = sa_kb_writer_embed_dim(w, vc->late_dim);
        if (rc != SA_OK) {
            printf("# embed_dim: %s\n", sa_kb_writer_error(w));
            sa_kb_writer_abort(w);
            return rc;
        }
    }

    for (i = 0; ds[i].id != NULL; i++) {
        hash_of(&ds[i], h);
        rc = sa_kb_writer_check(w, ds[i].id, h);
        need[i] = (rc == SA_NOT_FOUND);
    }

    if (sa_kb_writer_prune(w) != SA_OK) {
        sa_kb_writer_abort(w);
        return SA_ERROR;
    }

    for (i = 0; ds[i].id != NULL; i++) {
        if (!need[i]) {
            continue;
        }

        snprintf(title, sizeof(title), "Title of %s", ds[i].id);

        memset(&d, 0, sizeof(d));
        d.id = ds[i].id;
        d.title = title;
        d.url = "/help/x";
        d.kind = 1;
        d.product_area = ds[i].area;
        d.region = ds[i].region;
        hash_of(&ds[i], d.hash);

        memset(c, 0, sizeof(c));

        for (j = 0; ds[i].texts[j] != NULL; j++) {
            c[j].prefix = title;
            c[j].prefix_len = strlen(title);
            c[j].text = ds[i].texts[j];
            c[j].text_len = strlen(ds[i].texts[j]);
            c[j].vector = (vc->model != NULL && !ds[i].novec[j])
                          ? ds[i].vec[j] : NULL;
        }

        rc = sa_kb_writer_add(w, &d, c, (size_t) j);
        if (rc != SA_OK) {
            printf("# add: %s\n", sa_kb_writer_error(w));
            sa_kb_writer_abort(w);
            return rc;
        }
    }

    rc = sa_kb_writer_finish(w, st, err, sizeof(err));
    if (rc != SA_OK) {
        printf("# finish: %s\n", err);
    }

    return rc;
}


static sa_kb_t *
open_kb(void)
{
    char      err[512];
    sa_kb_t  *kb;

    if (sa_kb_open(&kb, kb_path, err, sizeof(err)) != SA_OK) {
        printf("Bail out! %s\n", err);
        exit(1);
    }

    return kb;
}


/* the chunk id holding text, or UINT32_MAX */

static uint32_t
chunk_of(sa_kb_t *kb, const char *text)
{
    uint32_t       id;
    sa_kb_chunk_t  c;

    for (id = 0; sa_kb_chunk_next(kb, id, &id) == SA_OK; id++) {
        if (sa_kb_chunk(kb, id, &c) != SA_OK) {
            continue;
        }

        if (strcmp(c.text, text) == 0) {
            sa_kb_chunk_free(&c);
            return id;
        }

        sa_kb_chunk_free(&c);
    }

    return UINT32_MAX;
}


static void
normalise(const float *v, double *out)
{
    int     i;
    double  s;

    s = 0;

    for (i = 0; i < DIM; i++) {
        s += (double) v[i] * v[i];
    }

    for (i = 0; i < DIM; i++) {
        out[i] = s > 0 ? v[i] / sqrt(s) : 0;
    }
}


static double
cosine(const float *a, const float *b)
{
    int     i;
    double  x[DIM], y[DIM], s;

    normalise(a, x);
    normalise(b, y);

    for (s = 0, i = 0; i < DIM; i++) {
        s += x[i] * y[i];
    }

    return s;
}


/* the largest difference between a chunk's stored vector and v
   normalised */

static double
stored_error(sa_kb_t *kb, uint32_t id, const float *v)
{
    int     i;
    float   got[DIM];
    double  want[DIM], e;

    if (sa_kb_vector(kb, id, got, DIM) != SA_OK) {
        return 1e9;
    }

    normalise(v, want);

    for (e = 0, i = 0; i < DIM; i++) {
        e = fmax(e, fabs(got[i] - want[i]));
    }

    return e;
}


static void
test_float32(void)
{
    int             i, bad;
    char            buf[64];
    size_t          n;
    uint32_t        r, t, m, z, nv, prev;
    sa_kb_t        *kb;
    sa_kb_hit_t     hits[16];
    sa_kb_info_t    info;
    sa_kb_chunk_t   c;
    sa_kb_filter_t  f;

    static const float  q[DIM] = { 0.1f, 2, -1, 0, 0, 0, 0, 1 };

    kb = open_kb();

    sa_kb_info(kb, &info);
    is_int(info.dim, DIM, "info: dim");
    sa_kb_meta(kb, "embed_model", buf, sizeof(buf));
    is_str(buf, "test-model", "meta: embed_model");
    sa_kb_meta(kb, "embed_encoding", buf, sizeof(buf));
    is_str(buf, "float32", "meta: embed_encoding");

    r = chunk_of(kb, "refunds take ten days");
    ok(stored_error(kb, r, docs[0].vec[1]) < 1e-7,
       "a vector comes back normalised (3,4 -> 0.6,0.8)");

    m = chunk_of(kb, "mixed signs");
    ok(stored_error(kb, m, docs[4].vec[0]) < 1e-7,
       "mixed signs round trip");

    z = chunk_of(kb, "a zero vector");
    ok(z != UINT32_MAX, "the chunk with a zero vector is stored");
    is_int(sa_kb_vector(kb, z, (float *) buf, DIM), SA_NOT_FOUND,
           "a zero vector is stored as none");
    nv = chunk_of(kb, "no vector at all");
    is_int(sa_kb_vector(kb, nv, (float *) buf, DIM), SA_NOT_FOUND,
           "a chunk given no vector has none");

    /* every vector against the brute force */

    is_int(sa_kb_search_dense(kb, q, DIM, NULL, 0, 16, hits, &n), SA_OK,
           "dense search");
    is_int(n, 5, "every chunk with a vector, no more");

    bad = 0;
    prev = 0;

    for (i = 0; i < (int) n; i++) {
        if (sa_kb_chunk(kb, hits[i].chunk, &c) != SA_OK) {
            bad++;
            continue;
        }

        if (hits[i].chunk == z || hits[i].chunk == nv) {
            bad++;
        }

        if (i > 0 && (hits[i].score > hits[i - 1].score
                      || (hits[i].score == hits[i - 1].score
                          && hits[i].chunk < prev)))
        {
            bad++;
        }

        prev = hits[i].chunk;
        sa_kb_chunk_free(&c);
    }

    is_int(bad, 0, "best first, ties by chunk id, no vectorless chunk");

    t = chunk_of(kb, "a twin of the delays");
    ok(fabs(hits[0].score - cosine(q, docs[1].vec[0])) < 1e-6,
       "the score is the cosine (%f)", hits[0].score);
    ok(hits[0].score == hits[1].score
       && hits[0].chunk == chunk_of(kb, "shipping delays")
       && hits[1].chunk == t, "equal cosines: the lower chunk id first");
    ok(hits[2].chunk == r && fabs(hits[2].score
                                  - cosine(q, docs[0].vec[1])) < 1e-6,
       "then 0.6,0.8");
    ok(hits[4].chunk == m && hits[4].score < 0, "a negative cosine last");

    /* k */

    is_int(sa_kb_search_dense(kb, q, DIM, NULL, 0, 2, hits, &n), SA_OK,
           "k 2");
    ok(n == 2 && hits[1].chunk == t, "the best two");
    is_int(sa_kb_search_dense(kb, q, DIM, NULL, 0, 0, hits, &n), SA_OK,
           "k 0");
    is_int(n, 0, "k 0: nothing");

    /* filters, as BM25's */

    memset(&f, 0, sizeof(f));
    f.product_area = "shipping";
    sa_kb_search_dense(kb, q, DIM, &f, 0, 16, hits, &n);
    ok(n == 2 && hits[0].chunk != r && hits[1].chunk == t,
       "product_area filter");

    memset(&f, 0, sizeof(f));
    f.region = "us";
    sa_kb_search_dense(kb, q, DIM, &f, 0, 16, hits, &n);
    ok(n == 1 && hits[0].chunk == t, "region filter");

    sa_kb_search_dense(kb, q, DIM, &f, SA_KB_MATCH_UNSET, 16, hits, &n);
    is_int(n, 3, "region us, with SA_KB_MATCH_UNSET: also no region");

    f.region = "mars";
    sa_kb_search_dense(kb, q, DIM, &f, 0, 16, hits, &n);
    is_int(n, 0, "an unknown value matches nothing");
    sa_kb_search_dense(kb, q, DIM, &f, SA_KB_MATCH_UNSET, 16, hits, &n);
    is_int(n, 2, "an unknown value with SA_KB_MATCH_UNSET: no region");

    /* bad queries */

    is_int(sa_kb_search_dense(kb, q, DIM - 1, NULL, 0, 16, hits, &n),
           SA_INVALID, "another dimension: SA_INVALID");
    ok(strstr(sa_kb_last_error(kb), "dimensions") != NULL,
       "the error tells (%s)", sa_kb_last_error(kb));
    is_int(sa_kb_vector(kb, r, (float *) buf, DIM - 1), SA_INVALID,
           "sa_kb_vector with another dimension");

    {
        float  zero[DIM], nan[DIM];

        memset(zero, 0, sizeof(zero));
        memcpy(nan, q, sizeof(nan));
        nan[3] = NAN;

        is_int(sa_kb_search_dense(kb, zero, DIM, NULL, 0, 16, hits, &n),
               SA_OK, "a zero query");
        is_int(n, 0, "a zero query is similar to nothing");
        is_int(sa_kb_search_dense(kb, nan, DIM, NULL, 0, 16, hits, &n),
               SA_INVALID, "a NaN in the query: SA_INVALID");
    }

    sa_kb_close(kb);
}


static void
test_chunk_enumeration(void)
{
    int            count, good;
    uint32_t       id;
    sa_kb_t       *kb;
    sa_kb_info_t   info;
    sa_kb_chunk_t  c;
    unsigned char  h[SA_KB_HASH_SIZE];

    kb = open_kb();
    sa_kb_info(kb, &info);

    count = 0;
    good = 0;

    for (id = 0; sa_kb_chunk_next(kb, id, &id) == SA_OK; id++) {
        count++;

        if (sa_kb_chunk(kb, id, &c) != SA_OK) {
            continue;
        }

        sa_kb_hash(c.text, c.text_len, 0, h);

        if (strncmp(c.prefix, "Title of ", 9) == 0
            && c.prefix_len == strlen(c.prefix)
            && memcmp(h, c.hash, SA_KB_HASH_SIZE) == 0 && c.tokens > 0)
        {
            good++;
        }

        sa_kb_chunk_free(&c);
    }

    is_int(count, info.chunks, "sa_kb_chunk_next lists every chunk");
    is_int(good, info.chunks, "chunks have prefix, tokens, text hash");
    is_int(sa_kb_chunk_next(kb, UINT32_MAX - 1, &id), SA_NOT_FOUND,
           "past the end: SA_NOT_FOUND");

    sa_kb_close(kb);
}


static void
test_int8(void)
{
    int                    i, same;
    size_t                 n, m;
    uint32_t               r, mx;
    sa_kb_t               *kb;
    sa_kb_hit_t            hits[16], fhits[16];
    sa_kb_writer_stats_t   st;
    char                   buf[64];

    static const float  q[DIM] = { 0.1f, 0.3f, 0.7f, 0, 0, 0.2f, -0.4f, 0 };

    vconf_t  f32 = { "test-model", DIM, 0, 0 };
    vconf_t  i8 = { "test-model", DIM, 1, 0 };

    build(docs, &f32, &st);
    kb = open_kb();
    sa_kb_search_dense(kb, q, DIM, NULL, 0, 16, fhits, &m);
    sa_kb_close(kb);

    is_int(build(docs, &i8, &st), SA_OK, "int8 build");
    ok(!st.incremental && strcmp(st.reason, "embeddings") == 0,
       "float32 -> int8 is a full build (embeddings)");

    kb = open_kb();
    sa_kb_meta(kb, "embed_encoding", buf, sizeof(buf));
    is_str(buf, "int8", "meta: int8");

    r = chunk_of(kb, "refunds take ten days");
    ok(stored_error(kb, r, docs[0].vec[1]) < 0.002,
       "0.6,0.8 in int8: 95, 127, renormalised (%g)",
       stored_error(kb, r, docs[0].vec[1]));
    mx = chunk_of(kb, "mixed signs");
    ok(stored_error(kb, mx, docs[4].vec[0]) < 0.01,
       "mixed signs within 0.01 (%g)",
       stored_error(kb, mx, docs[4].vec[0]));

    {
        float   v[DIM];
        double  s = 0;

        sa_kb_vector(kb, mx, v, DIM);

        for (i = 0; i < DIM; i++) {
            s += (double) v[i] * v[i];
        }

        ok(fabs(s - 1) < 1e-6, "a dequantised vector has unit length");
    }

    is_int(sa_kb_search_dense(kb, q, DIM, NULL, 0, 16, hits, &n), SA_OK,
           "int8 search");

    same = (n == m);

    for (i = 0; same && i < (int) n; i++) {
        if (fabs(hits[i].score - fhits[i].score) > 0.01) {
            same = 0;
        }
    }

    ok(same, "int8 scores within 0.01 of float32's");

    sa_kb_close(kb);
}


static void
test_incremental(void)
{
    int                    i;
    float                  v[DIM];
    uint32_t               before[8], after;
    sa_kb_t               *kb;
    sa_kb_writer_stats_t   st;
    vdoc_t                 changed[8];

    vconf_t  f32 = { "test-model", DIM, 0, 0 };
    vconf_t  late = { "test-model", 0, 0, DIM };
    vconf_t  wrong = { "test-model", 0, 0, DIM * 2 };
    vconf_t  other = { "other-model", DIM, 0, 0 };
    vconf_t  bigger = { "test-model", DIM * 2, 0, 0 };
    vconf_t  none = { NULL, 0, 0, 0 };

    is_int(build(docs, &f32, &st), SA_OK, "float32 build");

    kb = open_kb();
    before[0] = chunk_of(kb, "refund policy");
    before[1] = chunk_of(kb, "shipping delays");
    sa_kb_close(kb);

    /* refunds changes (a new vector for its first chunk), misc/mixed goes */

    memcpy(changed, docs, sizeof(docs));
    changed[0].version = 1;
    changed[0].vec[0][0] = 0;
    changed[0].vec[0][2] = 1;
    changed[4] = changed[5];

    is_int(build(changed, &f32, &st), SA_OK, "incremental build");
    ok(st.incremental && st.changed == 1 && st.removed == 1,
       "incremental: 1 changed, 1 removed");
    is_int(st.vectors, 4, "stats: vectors in the KB");
    is_int(st.dim, DIM, "stats: dim");

    kb = open_kb();
    after = chunk_of(kb, "shipping delays");
    ok(after == before[1], "an unchanged document keeps its chunk");
    ok(stored_error(kb, after, docs[1].vec[0]) < 1e-7,
       "and its vector");
    after = chunk_of(kb, "refund policy");
    ok(after != before[0] && stored_error(kb, after, changed[0].vec[0])
                             < 1e-7,
       "a changed document: a new chunk with its new vector");
    is_int(sa_kb_vector(kb, before[0], v, DIM), SA_NOT_FOUND,
           "the old chunk's vector is gone");
    ok(chunk_of(kb, "mixed signs") == UINT32_MAX,
       "a removed document is gone");
    sa_kb_close(kb);

    /* the dimension learned late: PATH's when the model is the same */

    changed[1].version = 1;
    is_int(build(changed, &late, &st), SA_OK,
           "embed_dim 0 and PATH's dimension given late");
    ok(st.incremental, "still incremental");

    changed[1].version = 2;
    is_int(build(changed, &wrong, &st), SA_INVALID,
           "another dimension given late: SA_INVALID");

    /* settings changed: full builds */

    is_int(build(changed, &other, &st), SA_OK, "another model");
    ok(!st.incremental && strcmp(st.reason, "embeddings") == 0,
       "another model: a full build (embeddings)");
    is_int(build(changed, &f32, &st), SA_OK, "the model back");
    ok(!st.incremental, "a full build again");

    {
        vdoc_t  big[2];

        memset(big, 0, sizeof(big));
        big[0].id = "big/one";
        big[0].texts[0] = "sixteen dimensions";
        big[0].vec[0][0] = 1;

        /* vec has room for DIM floats only: give none */
        big[0].novec[0] = 1;

        is_int(build(big, &bigger, &st), SA_OK, "another dimension");
        ok(!st.incremental && strcmp(st.reason, "embeddings") == 0,
           "another dimension: a full build (embeddings)");
    }

    is_int(build(changed, &none, &st), SA_OK, "no embeddings");
    ok(!st.incremental && strcmp(st.reason, "embeddings") == 0,
       "dropping the embeddings: a full build");
    kb = open_kb();
    {
        sa_kb_info_t  info;
        sa_kb_hit_t   hits[4];
        size_t        n;

        sa_kb_info(kb, &info);
        is_int(info.dim, 0, "no vectors: dim 0");
        is_int(sa_kb_search_dense(kb, v, DIM, NULL, 0, 4, hits, &n),
               SA_INVALID, "dense search without vectors: SA_INVALID");
    }
    sa_kb_close(kb);

    is_int(build(changed, &none, &st), SA_OK, "no embeddings again");
    ok(st.incremental && st.kept, "same settings: incremental, kept");

    for (i = 0; i < DIM; i++) {
        v[i] = 0;
    }
}


static void
test_duplicates_and_errors(void)
{
    int                    rc;
    char                   err[512];
    size_t                 n;
    uint32_t               id;
    sa_kb_t               *kb;
    sa_kb_doc_t            d;
    sa_kb_hit_t            hits[4];
    sa_kb_writer_t        *w;
    sa_kb_wchunk_t         c;
    sa_kb_writer_conf_t    conf;
    sa_kb_writer_stats_t   st;
    unsigned char          h[SA_KB_HASH_SIZE];

    float  a[DIM] = { 1, 0, 0, 0, 0, 0, 0, 0 };
    float  b[DIM] = { 0, 1, 0, 0, 0, 0, 0, 0 };
    float  bad[DIM] = { 0, 1, INFINITY, 0, 0, 0, 0, 0 };

    memset(&conf, 0, sizeof(conf));
    conf.rebuild = 1;
    conf.embed_model = "test-model";
    conf.embed_dim = DIM;

    rc = sa_kb_writer_open(&w, kb_path, &conf, err, sizeof(err));
    is_int(rc, SA_OK, "open");

    memset(h, 1, sizeof(h));
    sa_kb_writer_check(w, "one", h);
    sa_kb_writer_check(w, "two", h);
    sa_kb_writer_check(w, "three", h);
    sa_kb_writer_prune(w);

    memset(&d, 0, sizeof(d));
    memset(&c, 0, sizeof(c));
    c.text = "the same text";
    c.text_len = strlen(c.text);

    d.id = "one";
    c.vector = a;
    is_int(sa_kb_writer_add(w, &d, &c, 1), SA_OK, "first of two copies");
    d.id = "two";
    c.vector = b;
    is_int(sa_kb_writer_add(w, &d, &c, 1), SA_OK, "second copy");

    d.id = "three";
    c.text = "another text";
    c.text_len = strlen(c.text);
    c.vector = bad;
    is_int(sa_kb_writer_add(w, &d, &c, 1), SA_INVALID,
           "a vector with an infinity: SA_INVALID");
    ok(strstr(sa_kb_writer_error(w), "not finite") != NULL,
       "the error tells (%s)", sa_kb_writer_error(w));

    is_int(sa_kb_writer_embed_dim(w, DIM + 1), SA_INVALID,
           "embed_dim: another dimension");
    is_int(sa_kb_writer_embed_dim(w, DIM), SA_OK, "embed_dim: the same");

    rc = sa_kb_writer_finish(w, &st, err, sizeof(err));
    is_int(rc, SA_OK, "finish");
    ok(st.chunks == 1 && st.duplicates == 1 && st.vectors == 1,
       "one chunk, one vector");

    kb = open_kb();
    sa_kb_chunk_next(kb, 0, &id);
    ok(stored_error(kb, id, a) < 1e-7, "the first copy's vector");
    sa_kb_search_dense(kb, b, DIM, NULL, 0, 4, hits, &n);
    ok(n == 1 && fabs(hits[0].score) < 1e-7, "one vector searched");
    sa_kb_close(kb);

    /* a vector for a writer without a model */

    memset(&conf, 0, sizeof(conf));
    conf.rebuild = 1;

    rc = sa_kb_writer_open(&w, kb_path, &conf, err, sizeof(err));
    sa_kb_writer_check(w, "one", h);
    sa_kb_writer_prune(w);
    d.id = "one";
    c.vector = a;
    is_int(sa_kb_writer_add(w, &d, &c, 1), SA_INVALID,
           "a vector without embed_model: SA_INVALID");
    is_int(sa_kb_writer_embed_dim(w, DIM), SA_INVALID,
           "embed_dim without embed_model: SA_INVALID");
    sa_kb_writer_abort(w);
}


/* a bigger KB: the vectorised dot products (blocks of 8 and 16, and the
   tails) against a brute force in double, and the scan's speed */

static void
test_scale(uint32_t dim, int int8)
{
    int                    i, j, agree;
    char                   id[32], text[64], err[512];
    float                 *vecs, *q, *v;
    double                 t0, t1, s, nq, nv;
    size_t                 n, nd;
    sa_kb_t               *kb;
    sa_kb_doc_t            d;
    sa_kb_hit_t            hits[10];
    sa_kb_writer_t        *w;
    sa_kb_wchunk_t         c;
    sa_kb_writer_conf_t    conf;
    sa_kb_writer_stats_t   st;
    unsigned char          h[SA_KB_HASH_SIZE];
    struct timespec        ts;

    nd = 2000;

    vecs = malloc(nd * dim * sizeof(float));
    q = malloc(dim * sizeof(float));
    v = malloc(dim * sizeof(float));
    srand(7);

    for (i = 0; i < (int) (nd * dim); i++) {
        vecs[i] = (float) rand() / RAND_MAX - 0.5f;
    }

    for (i = 0; i < (int) dim; i++) {
        q[i] = (float) rand() / RAND_MAX - 0.5f;
    }

    memset(&conf, 0, sizeof(conf));
    conf.rebuild = 1;
    conf.embed_model = "big";
    conf.embed_dim = dim;
    conf.embed_int8 = int8;

    sa_kb_writer_open(&w, kb_path, &conf, err, sizeof(err));
    memset(h, 2, sizeof(h));

    for (i = 0; i < (int) nd; i++) {
        snprintf(id, sizeof(id), "d%05d", i);
        sa_kb_writer_check(w, id, h);
    }

    sa_kb_writer_prune(w);

    for (i = 0; i < (int) nd; i++) {
        snprintf(id, sizeof(id), "d%05d", i);
        snprintf(text, sizeof(text), "text number %d", i);
        memset(&d, 0, sizeof(d));
        d.id = id;
        memset(&c, 0, sizeof(c));
        c.text = text;
        c.text_len = strlen(text);
        c.vector = vecs + (size_t) i * dim;
        sa_kb_writer_add(w, &d, &c, 1);
    }

    ok(sa_kb_writer_finish(w, &st, err, sizeof(err)) == SA_OK,
       "2000 chunks of %u dimensions, %s", dim, int8 ? "int8" : "float32");

    kb = open_kb();

    clock_gettime(CLOCK_MONOTONIC, &ts);
    t0 = ts.tv_sec + ts.tv_nsec / 1e9;

    for (j = 0; j < 10; j++) {
        sa_kb_search_dense(kb, q, dim, NULL, 0, 10, hits, &n);
    }

    clock_gettime(CLOCK_MONOTONIC, &ts);
    t1 = ts.tv_sec + ts.tv_nsec / 1e9;

    printf("# dense search, 2000 x %u %s (ASan build): %.0f us\n", dim,
           int8 ? "int8" : "float32", (t1 - t0) / 10 * 1e6);

    /* every hit's score: the cosine of the query and the stored vector,
       in double */

    agree = (n == 10);

    for (i = 0; agree && i < (int) n; i++) {
        if (sa_kb_vector(kb, hits[i].chunk, v, dim) != SA_OK) {
            agree = 0;
            break;
        }

        s = 0;
        nq = 0;
        nv = 0;

        for (j = 0; j < (int) dim; j++) {
            s += (double) q[j] * v[j];
            nq += (double) q[j] * q[j];
            nv += (double) v[j] * v[j];
        }

        s /= sqrt(nq) * sqrt(nv);

        if (fabs(hits[i].score - s) > 1e-5) {
            printf("# hit %d: %f, brute force %f\n", i, hits[i].score, s);
            agree = 0;
        }
    }

    ok(agree, "%u %s: the scores are the brute force's", dim,
       int8 ? "int8" : "float32");

    /* and the best is the best over all */

    for (i = 0; agree && i < (int) nd; i++) {
        if (sa_kb_vector(kb, (uint32_t) i, v, dim) != SA_OK) {
            continue;
        }

        for (s = 0, nv = 0, nq = 0, j = 0; j < (int) dim; j++) {
            s += (double) q[j] * v[j];
            nq += (double) q[j] * q[j];
            nv += (double) v[j] * v[j];
        }

        if (s / (sqrt(nq) * sqrt(nv)) > hits[0].score + 1e-5) {
            agree = 0;
        }
    }

    ok(agree, "%u %s: no chunk beats the best", dim,
       int8 ? "int8" : "float32");

    sa_kb_close(kb);
    free(vecs);
    free(q);
    free(v);
}


int
main(void)
{
    sa_kb_writer_stats_t  st;
    vconf_t               f32 = { "test-model", DIM, 0, 0 };

    if (mkdtemp(tmp_dir) == NULL) {
        printf("Bail out! mkdtemp: %s\n", strerror(errno));
        return 1;
    }

    snprintf(kb_path, sizeof(kb_path), "%s/vec.kb", tmp_dir);

    is_int(build(docs, &f32, &st), SA_OK, "built with vectors");
    ok(st.vectors == 5 && st.dim == DIM, "5 vectors of %d (%u, %u)", DIM,
       st.vectors, st.dim);

    test_float32();
    test_chunk_enumeration();
    test_int8();
    test_incremental();
    test_duplicates_and_errors();
    test_scale(384, 0);
    test_scale(384, 1);
    test_scale(390, 0);
    test_scale(390, 1);
    test_scale(5, 1);

    unlink(kb_path);
    rmdir(tmp_dir);

    return done_testing();
}
