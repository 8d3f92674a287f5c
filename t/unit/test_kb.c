
/*
 * Copyright (C) ngx_support_agent authors
 *
 * sa_kb: building a KB file with the writer, BM25 search against
 * hand-computed scores, filters, chunk fetch, publishing by rename, and
 * incremental rebuilds.
 */


#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"
#include "sa_kb.h"


static char  tmp_dir[] = "/tmp/sa_kb_test_XXXXXX";
static char  kb_path[512];


/* a document of the test corpus */
typedef struct {
    const char  *id;
    const char  *area;
    const char  *version;
    const char  *tier;
    const char  *region;
    const char  *texts[4];     /* its chunks, NULL-terminated */
} doc_t;


static doc_t  corpus[] = {
    { "billing/refunds", "billing", "v2", "pro", "eu",
      { "refund refund policy", "shipping policy for orders and returns",
        NULL } },
    { "shipping/delays", "shipping", "v1", "", "",
      { "shipping delays", NULL } },
    { "misc/ties", "misc", "", "", "",
      { "alpha beta", "beta alpha", NULL } },
    { NULL, NULL, NULL, NULL, NULL, { NULL } }
};


static void
hash_of(const char *id, int version, unsigned char *hash)
{
    char  buf[256];

    snprintf(buf, sizeof(buf), "%s/%d", id, version);
    sa_kb_hash(buf, strlen(buf), 0, hash);
}


/* builds (or rebuilds) kb_path from docs; versions[i] is doc i's content
   version (a changed version means a changed document) */

static const char  *build_language;


static int
build(doc_t *docs, const int *versions, int rebuild,
    sa_kb_writer_stats_t *st)
{
    int                   i, j, rc, need[16];
    char                  err[512], title[128], url[128];
    sa_kb_doc_t           d;
    sa_kb_writer_t       *w;
    sa_kb_wchunk_t        c[4];
    sa_kb_writer_conf_t   conf;

    memset(&conf, 0, sizeof(conf));
    conf.rebuild = rebuild;
    conf.max_chars = 1000;
    conf.language = build_language;

    rc = sa_kb_writer_open(&w, kb_path, &conf, err, sizeof(err));
    if (rc != SA_OK) {
        printf("# writer_open: %s\n", err);
        return rc;
    }

    for (i = 0; docs[i].id != NULL; i++) {
        unsigned char  h[SA_KB_HASH_SIZE];

        hash_of(docs[i].id, versions ? versions[i] : 0, h);
        rc = sa_kb_writer_check(w, docs[i].id, h);

        if (rc != SA_OK && rc != SA_NOT_FOUND) {
            printf("# check: %s\n", sa_kb_writer_error(w));
            sa_kb_writer_abort(w);
            return rc;
        }

        need[i] = (rc == SA_NOT_FOUND);
    }

    if (sa_kb_writer_prune(w) != SA_OK) {
        printf("# prune: %s\n", sa_kb_writer_error(w));
        sa_kb_writer_abort(w);
        return SA_ERROR;
    }

    for (i = 0; docs[i].id != NULL; i++) {
        if (!need[i]) {
            continue;
        }

        snprintf(title, sizeof(title), "Title of %s", docs[i].id);
        snprintf(url, sizeof(url), "/help/%s", docs[i].id);

        memset(&d, 0, sizeof(d));
        d.id = docs[i].id;
        d.title = title;
        d.url = url;
        d.kind = 1;
        d.product_area = docs[i].area;
        d.doc_type = "article";
        d.version = docs[i].version;
        d.tier = docs[i].tier;
        d.region = docs[i].region;
        d.updated_ms = 1700000000000LL + i;
        hash_of(docs[i].id, versions ? versions[i] : 0, d.hash);

        memset(c, 0, sizeof(c));

        for (j = 0; docs[i].texts[j] != NULL; j++) {
            c[j].section = "Section";
            c[j].anchor = "section";
            c[j].text = docs[i].texts[j];
            c[j].text_len = strlen(docs[i].texts[j]);
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


static int
search(sa_kb_t *kb, const char *q, const sa_kb_filter_t *f, size_t k,
    sa_kb_hit_t *hits, size_t *n)
{
    return sa_kb_search_bm25(kb, q, strlen(q), f, -1, -1, k, hits, n);
}


/* the doc id of a chunk, in a static buffer */

static const char *
doc_of(sa_kb_t *kb, uint32_t chunk)
{
    static char    buf[256];
    sa_kb_chunk_t  c;

    if (sa_kb_chunk(kb, chunk, &c) != SA_OK) {
        return "(none)";
    }

    snprintf(buf, sizeof(buf), "%s", c.doc_id);
    sa_kb_chunk_free(&c);

    return buf;
}


static double
idf(double n, double df)
{
    return log(1 + (n - df + 0.5) / (df + 0.5));
}


static double
tfn(double tf, double dl, double avgdl, double k1, double b)
{
    return tf / (tf + k1 * (1 - b + b * dl / avgdl));
}


static void
test_search(void)
{
    int             rc;
    size_t          n;
    double          avgdl, want0, want1;
    sa_kb_t        *kb;
    sa_kb_hit_t     hits[16];
    sa_kb_info_t    info;
    sa_kb_filter_t  f;

    kb = open_kb();

    is_int(sa_kb_info(kb, &info), SA_OK, "info");
    is_int(info.docs, 3, "3 documents");
    is_int(info.chunks, 5, "5 chunks");
    is_str(info.language, "english", "language english");
    is_int(info.dim, 0, "no vectors");
    ok(info.built_ms > 1700000000000LL, "built_ms set");

    /*
     * chunk terms (english): 0 refund refund polici (3); 1 ship polici
     * order return (4, "for" "and" are stop words); 2 ship delai (2);
     * 3 alpha beta (2); 4 beta alpha (2): avgdl 13 / 5
     */

    avgdl = 13.0 / 5;

    rc = search(kb, "refund policy", NULL, 10, hits, &n);
    is_int(rc, SA_OK, "search ok");
    is_int(n, 2, "two chunks match \"refund policy\"");

    want0 = idf(5, 1) * tfn(2, 3, avgdl, 0.9, 0.4)
            + idf(5, 2) * tfn(1, 3, avgdl, 0.9, 0.4);
    want1 = idf(5, 2) * tfn(1, 4, avgdl, 0.9, 0.4);

    ok(n >= 1 && hits[0].chunk == 0 && fabs(hits[0].score - want0) < 1e-4,
       "chunk 0 first, BM25 %.6f (want %.6f)", n ? hits[0].score : 0,
       want0);
    ok(n >= 2 && hits[1].chunk == 1 && fabs(hits[1].score - want1) < 1e-4,
       "chunk 1 second, BM25 %.6f (want %.6f)", n > 1 ? hits[1].score : 0,
       want1);

    /* k1 and b given */

    rc = sa_kb_search_bm25(kb, "refund policy", 13, NULL, 1.2f, 0.75f, 10,
                           hits, &n);
    want0 = idf(5, 1) * tfn(2, 3, avgdl, 1.2, 0.75)
            + idf(5, 2) * tfn(1, 3, avgdl, 1.2, 0.75);
    ok(rc == SA_OK && n == 2 && fabs(hits[0].score - want0) < 1e-4,
       "k1 1.2, b 0.75: %.6f (want %.6f)", hits[0].score, want0);

    /* and back to the defaults (the norm cache follows) */

    rc = search(kb, "refund policy", NULL, 10, hits, &n);
    want0 = idf(5, 1) * tfn(2, 3, avgdl, 0.9, 0.4)
            + idf(5, 2) * tfn(1, 3, avgdl, 0.9, 0.4);
    ok(rc == SA_OK && fabs(hits[0].score - want0) < 1e-4,
       "defaults again");

    /* a repeated query term counts twice, as Lucene's clauses */

    rc = search(kb, "refunds refund", NULL, 10, hits, &n);
    want0 = 2 * idf(5, 1) * tfn(2, 3, avgdl, 0.9, 0.4);
    ok(rc == SA_OK && n == 1 && fabs(hits[0].score - want0) < 1e-4,
       "repeated query term: %.6f (want %.6f)", hits[0].score, want0);

    /* k */

    rc = search(kb, "refund policy", NULL, 1, hits, &n);
    ok(rc == SA_OK && n == 1 && hits[0].chunk == 0, "k 1: the best only");

    rc = search(kb, "refund policy", NULL, 0, hits, &n);
    ok(rc == SA_OK && n == 0, "k 0: nothing");

    /* ties: equal scores by chunk id */

    rc = search(kb, "alpha", NULL, 10, hits, &n);
    ok(rc == SA_OK && n == 2 && hits[0].chunk == 3 && hits[1].chunk == 4
       && hits[0].score == hits[1].score, "ties by chunk id ascending");

    /* ship and alpha have the same df, chunks 2, 3, 4 the same length */

    rc = search(kb, "shipping alpha", NULL, 10, hits, &n);
    ok(rc == SA_OK && n == 4 && hits[0].chunk == 2 && hits[1].chunk == 3
       && hits[2].chunk == 4 && hits[3].chunk == 1
       && hits[0].score == hits[2].score && hits[3].score < hits[2].score,
       "a three-way tie in id order, then the longer chunk");

    /* nothing */

    rc = search(kb, "zebra", NULL, 10, hits, &n);
    ok(rc == SA_OK && n == 0, "unknown term: no hits");

    rc = search(kb, "", NULL, 10, hits, &n);
    ok(rc == SA_OK && n == 0, "empty query: no hits");

    rc = search(kb, "the of and", NULL, 10, hits, &n);
    ok(rc == SA_OK && n == 0, "stop words only: no hits");

    rc = search(kb, "\xff\xfe refund", NULL, 10, hits, &n);
    ok(rc == SA_OK && n == 1, "invalid UTF-8 in the query is skipped");

    /* filters */

    memset(&f, 0, sizeof(f));
    f.product_area = "shipping";

    rc = search(kb, "shipping policy", &f, 10, hits, &n);
    ok(rc == SA_OK && n == 1 && hits[0].chunk == 2,
       "product_area filter");

    f.product_area = "billing";
    f.version = "v2";
    f.tier = "pro";
    f.region = "eu";
    rc = search(kb, "shipping policy", &f, 10, hits, &n);
    ok(rc == SA_OK && n == 2 && hits[0].chunk == 1 && hits[1].chunk == 0,
       "all four filters");

    f.region = "us";
    rc = search(kb, "shipping policy", &f, 10, hits, &n);
    ok(rc == SA_OK && n == 0, "a value no chunk has: no hits");

    f.region = "e";
    rc = search(kb, "shipping policy", &f, 10, hits, &n);
    ok(rc == SA_OK && n == 0, "comparisons are exact (no prefix)");

    memset(&f, 0, sizeof(f));
    f.product_area = "";
    f.version = "v1";
    rc = search(kb, "shipping policy", &f, 10, hits, &n);
    ok(rc == SA_OK && n == 1 && hits[0].chunk == 2,
       "\"\" is any; version v1");

    /* SA_KB_MATCH_UNSET: chunks without a value pass too */

    memset(&f, 0, sizeof(f));
    f.tier = "pro";
    rc = sa_kb_search_bm25_ex(kb, "shipping alpha", 14, &f, SA_KB_MATCH_UNSET,
                              -1, -1, 10, hits, &n);
    ok(rc == SA_OK && n == 4, "tier pro or none: all 4");

    rc = sa_kb_search_bm25_ex(kb, "shipping alpha", 14, &f, 0, -1, -1, 10,
                              hits, &n);
    ok(rc == SA_OK && n == 1 && hits[0].chunk == 1, "tier pro only: 1");

    f.tier = "gold";
    rc = sa_kb_search_bm25_ex(kb, "shipping alpha", 14, &f, SA_KB_MATCH_UNSET,
                              -1, -1, 10, hits, &n);
    ok(rc == SA_OK && n == 3 && hits[0].chunk == 2,
       "a value no chunk has, or none: the 3 without a tier");

    sa_kb_close(kb);
}


static void
test_chunk(void)
{
    sa_kb_t        *kb;
    sa_kb_chunk_t   c;

    kb = open_kb();

    is_int(sa_kb_chunk(kb, 1, &c), SA_OK, "chunk 1 fetched");
    is_int(c.chunk, 1, "its id");
    is_str(c.doc_id, "billing/refunds", "doc id");
    is_str(c.title, "Title of billing/refunds", "title (the document's)");
    is_str(c.section, "Section", "section");
    is_str(c.anchor, "section", "anchor");
    is_str(c.url, "/help/billing/refunds#section", "url with the anchor");
    is_str(c.text, "shipping policy for orders and returns", "text");
    is_int(c.text_len, strlen("shipping policy for orders and returns"),
           "text_len");
    is_str(c.product_area, "billing", "product_area");
    is_str(c.doc_type, "article", "doc_type");
    is_str(c.version, "v2", "version");
    is_str(c.tier, "pro", "tier");
    is_str(c.region, "eu", "region");
    is_int(c.updated_ms, 1700000000000LL, "updated_ms");
    sa_kb_chunk_free(&c);
    ok(c.text == NULL, "freed and zeroed");
    sa_kb_chunk_free(&c);
    sa_kb_chunk_free(NULL);

    is_int(sa_kb_chunk(kb, 2, &c), SA_OK, "chunk 2 fetched");
    is_str(c.tier, "", "empty field is \"\"");
    sa_kb_chunk_free(&c);

    is_int(sa_kb_chunk(kb, 99, &c), SA_NOT_FOUND, "no chunk 99");
    ok(c.text == NULL, "nothing to free after SA_NOT_FOUND");

    sa_kb_close(kb);
}


static void
test_open_errors(void)
{
    int       rc;
    char      err[512], path[600];
    FILE     *f;
    sa_kb_t  *kb;

    snprintf(path, sizeof(path), "%s/missing.kb", tmp_dir);
    rc = sa_kb_open(&kb, path, err, sizeof(err));
    ok(rc == SA_ERROR && kb == NULL && strstr(err, "missing.kb") != NULL
       && strstr(err, "No such file") != NULL, "missing file: %s", err);

    snprintf(path, sizeof(path), "%s/garbage.kb", tmp_dir);
    f = fopen(path, "w");
    fputs("this is not an LMDB file, not at all, no", f);
    fclose(f);

    rc = sa_kb_open(&kb, path, err, sizeof(err));
    ok(rc == SA_ERROR && kb == NULL, "not a KB: %s", err);

    rc = sa_kb_open(&kb, tmp_dir, err, sizeof(err));
    ok(rc == SA_ERROR && kb == NULL, "a directory: %s", err);
}


static void
test_writer_errors(void)
{
    int                   rc, rc2;
    char                  err[512];
    sa_kb_doc_t           d;
    sa_kb_writer_t       *w, *w2;
    sa_kb_wchunk_t        c;
    unsigned char         h[SA_KB_HASH_SIZE];
    sa_kb_writer_conf_t   conf;

    memset(&conf, 0, sizeof(conf));

    conf.language = "klingon";
    rc = sa_kb_writer_open(&w, kb_path, &conf, err, sizeof(err));
    ok(rc == SA_INVALID && w == NULL, "unknown language: %s", err);

    conf.language = NULL;
    rc = sa_kb_writer_open(&w, kb_path, &conf, err, sizeof(err));
    if (!is_int(rc, SA_OK, "writer open")) {
        printf("# %s\n", err);
        return;
    }

    /* one build of a path at a time */

    rc2 = sa_kb_writer_open(&w2, kb_path, &conf, err, sizeof(err));
    ok(rc2 == SA_BUSY && w2 == NULL, "second writer: %s", err);

    hash_of("x", 0, h);
    is_int(sa_kb_writer_check(w, "x", h), SA_NOT_FOUND, "new doc");
    is_int(sa_kb_writer_check(w, "x", h), SA_BUSY, "same id twice");
    is_int(sa_kb_writer_check(w, "", h), SA_INVALID, "empty id");
    is_int(sa_kb_writer_check(w, "bad\xff", h), SA_INVALID,
           "id not UTF-8");

    memset(&d, 0, sizeof(d));
    d.id = "x";
    memset(&c, 0, sizeof(c));
    c.text = "ok";
    c.text_len = 2;

    is_int(sa_kb_writer_add(w, &d, &c, 1), SA_INVALID,
           "add before prune refused");
    is_int(sa_kb_writer_prune(w), SA_OK, "prune");

    d.id = "y";
    is_int(sa_kb_writer_add(w, &d, &c, 1), SA_INVALID,
           "add without check refused");

    d.id = "x";
    c.text = "bad \xc3";
    c.text_len = 5;
    is_int(sa_kb_writer_add(w, &d, &c, 1), SA_INVALID,
           "text not UTF-8 refused");

    sa_kb_writer_abort(w);

    {
        struct stat  st;
        char         tmp[600];

        snprintf(tmp, sizeof(tmp), "%s.tmp", kb_path);
        ok(stat(tmp, &st) != 0 && errno == ENOENT, "abort removes .tmp");
    }
}


/*
 * A reader keeps the file it opened; kb-build's rename publishes the new
 * one to those who open the path again.
 */

static void
test_rename(void)
{
    int                    rc, versions[4] = { 0, 0, 0, 0 };
    size_t                 n;
    sa_kb_t               *old, *kb;
    sa_kb_hit_t            hits[16];
    sa_kb_writer_stats_t   st;

    static doc_t  v2[] = {
        { "billing/refunds", "billing", "v2", "pro", "eu",
          { "refund refund policy", "shipping policy for orders and returns",
            NULL } },
        { "shipping/delays", "shipping", "v1", "", "",
          { "shipping delays and zebras", NULL } },
        { NULL, NULL, NULL, NULL, NULL, { NULL } }
    };

    old = open_kb();

    versions[1] = 1;
    rc = build(v2, versions, 0, &st);
    is_int(rc, SA_OK, "rebuilt with one doc changed, one removed");
    ok(st.incremental && !st.kept, "incremental");
    ok(st.unchanged == 1 && st.changed == 1 && st.removed == 1
       && st.added == 0, "unchanged 1, changed 1, removed 1");
    ok(st.chunks_removed == 3 && st.chunks_added == 1,
       "3 chunks removed, 1 added");
    is_int(st.docs, 2, "2 docs now");
    is_int(st.chunks, 3, "3 chunks now");

    rc = search(old, "zebra", NULL, 10, hits, &n);
    ok(rc == SA_OK && n == 0, "the open handle still reads the old file");

    rc = search(old, "alpha", NULL, 10, hits, &n);
    ok(rc == SA_OK && n == 2, "old file: old documents");

    kb = open_kb();

    rc = search(kb, "zebra", NULL, 10, hits, &n);
    ok(rc == SA_OK && n == 1 && hits[0].chunk == 5
       && strcmp(doc_of(kb, 5), "shipping/delays") == 0,
       "reopened: the changed document, under a new chunk id");

    rc = search(kb, "alpha", NULL, 10, hits, &n);
    ok(rc == SA_OK && n == 0, "reopened: the removed document is gone");

    rc = search(kb, "refund", NULL, 10, hits, &n);
    ok(rc == SA_OK && n == 1 && hits[0].chunk == 0,
       "the unchanged document keeps its chunks");

    sa_kb_close(old);
    sa_kb_close(kb);

    /* nothing changed: the file is not rewritten */

    {
        struct stat  before, after;

        stat(kb_path, &before);
        rc = build(v2, versions, 0, &st);
        stat(kb_path, &after);

        ok(rc == SA_OK && st.kept && st.unchanged == 2
           && before.st_ino == after.st_ino, "unchanged input: file kept");
    }
}


/* the same text in two documents is stored once, and survives the
   removal of the document that held it */

static void
test_duplicates(void)
{
    int                    rc, versions[4] = { 0, 0, 0, 0 };
    size_t                 n;
    sa_kb_t               *kb;
    sa_kb_hit_t            hits[16];
    sa_kb_chunk_t          c;
    sa_kb_writer_stats_t   st;

    static doc_t  both[] = {
        { "a/first", "a", "", "", "",
          { "contact support by chat", "first only", NULL } },
        { "b/second", "b", "", "", "",
          { "second only", "contact support by chat", NULL } },
        { NULL, NULL, NULL, NULL, NULL, { NULL } }
    };

    static doc_t  second[] = {
        { "b/second", "b", "", "", "",
          { "second only", "contact support by chat", NULL } },
        { NULL, NULL, NULL, NULL, NULL, { NULL } }
    };

    rc = build(both, versions, 1, &st);
    ok(rc == SA_OK && !st.incremental && st.duplicates == 1
       && st.chunks == 3, "full build: the shared text stored once");

    kb = open_kb();
    rc = search(kb, "contact", NULL, 10, hits, &n);
    ok(rc == SA_OK && n == 1 && strcmp(doc_of(kb, hits[0].chunk), "a/first")
       == 0, "one hit, the first document's");
    sa_kb_close(kb);

    rc = build(second, versions, 0, &st);
    ok(rc == SA_OK && st.removed == 1 && st.relinked == 1
       && st.chunks == 2 && st.chunks_removed == 1,
       "first removed: its shared chunk relinked to the second");

    kb = open_kb();
    rc = search(kb, "contact", NULL, 10, hits, &n);
    ok(rc == SA_OK && n == 1, "the shared text is still found");

    if (n == 1 && sa_kb_chunk(kb, hits[0].chunk, &c) == SA_OK) {
        ok(strcmp(c.doc_id, "b/second") == 0
           && strcmp(c.product_area, "b") == 0
           && strcmp(c.url, "/help/b/second#section") == 0,
           "now the second document's: %s %s", c.doc_id, c.url);
        sa_kb_chunk_free(&c);

    } else {
        ok(0, "now the second document's");
    }

    rc = search(kb, "first", NULL, 10, hits, &n);
    ok(rc == SA_OK && n == 0, "the first document's own chunk is gone");
    sa_kb_close(kb);

    /* and back: the first one shares again */

    rc = build(both, versions, 0, &st);
    ok(rc == SA_OK && st.added == 1 && st.unchanged == 1
       && st.duplicates == 1 && st.chunks == 3,
       "first added again: the text is shared again");

    kb = open_kb();
    rc = search(kb, "contact", NULL, 10, hits, &n);
    ok(rc == SA_OK && n == 1
       && strcmp(doc_of(kb, hits[0].chunk), "b/second") == 0,
       "still one hit");
    sa_kb_close(kb);
}


/* an incremental build and a full one of the same input answer alike */

static void
test_incremental_equals_full(void)
{
    int                    rc, i, v[16];
    size_t                 n1, n2, j;
    char                   full[600];
    sa_kb_t               *a, *b;
    sa_kb_hit_t            h1[64], h2[64];
    sa_kb_writer_stats_t   st;

    static const char  *queries[] = {
        "refund policy", "shipping", "alpha beta", "orders returns",
        "delays zebra", NULL
    };

    static doc_t  docs[] = {
        { "d0", "x", "", "", "", { "refund policy for everyone", NULL } },
        { "d1", "x", "", "", "", { "shipping takes days", "orders", NULL } },
        { "d2", "y", "", "", "", { "alpha beta gamma", NULL } },
        { "d3", "y", "", "", "", { "returns and refunds", NULL } },
        { "d4", "z", "", "", "", { "delays of shipping", NULL } },
        { NULL, NULL, NULL, NULL, NULL, { NULL } }
    };

    for (i = 0; i < 16; i++) {
        v[i] = 0;
    }

    rc = build(docs, v, 1, &st);
    is_int(rc, SA_OK, "base build");

    /* d1 and d3 change (their texts too), d4 goes */

    v[1] = 1;
    v[3] = 1;
    docs[1].texts[0] = "shipping takes weeks";
    docs[3].texts[0] = "returns within thirty days";
    docs[4].id = NULL;

    rc = build(docs, v, 0, &st);
    ok(rc == SA_OK && st.incremental && st.changed == 2
       && st.unchanged == 2 && st.removed == 1,
       "incremental: changed 2, unchanged 2, removed 1");

    snprintf(full, sizeof(full), "%s/incremental.kb", tmp_dir);
    rename(kb_path, full);

    rc = build(docs, v, 1, &st);
    ok(rc == SA_OK && !st.incremental, "full build of the same input");

    b = open_kb();

    /* a is the incremental one */

    {
        char  err[512];

        if (sa_kb_open(&a, full, err, sizeof(err)) != SA_OK) {
            printf("Bail out! %s\n", err);
            exit(1);
        }
    }

    for (i = 0; queries[i] != NULL; i++) {
        search(a, queries[i], NULL, 64, h1, &n1);
        search(b, queries[i], NULL, 64, h2, &n2);

        for (j = 0; n1 == n2 && j < n1; j++) {
            if (fabsf(h1[j].score - h2[j].score) > 1e-6
                || strcmp(doc_of(a, h1[j].chunk), doc_of(b, h2[j].chunk))
                   != 0)
            {
                break;
            }
        }

        ok(n1 == n2 && j == n1, "\"%s\": same hits (%zu)", queries[i], n1);
    }

    sa_kb_close(a);
    sa_kb_close(b);
    unlink(full);

    docs[4].id = "d4";
}


/* readers in other processes, at once */

static void
test_processes(void)
{
    int          i, status, good;
    pid_t        pids[4];
    size_t       n;
    sa_kb_t     *kb;
    sa_kb_hit_t  hits[8];

    for (i = 0; i < 4; i++) {
        pids[i] = fork();

        if (pids[i] == 0) {
            kb = open_kb();

            for (n = 0; n < 2000; n++) {
                size_t  m;

                if (search(kb, "refund policy", NULL, 8, hits, &m) != SA_OK
                    || m == 0)
                {
                    _exit(1);
                }
            }

            sa_kb_close(kb);
            _exit(0);
        }
    }

    good = 0;

    for (i = 0; i < 4; i++) {
        if (pids[i] > 0 && waitpid(pids[i], &status, 0) == pids[i]
            && WIFEXITED(status) && WEXITSTATUS(status) == 0)
        {
            good++;
        }
    }

    is_int(good, 4, "4 processes searched the file at once");
}


/* the KB's analyzer is the one it was built with */

static void
test_language(void)
{
    int                    rc;
    size_t                 n;
    sa_kb_t               *kb;
    sa_kb_hit_t            hits[8];
    sa_kb_info_t           info;
    sa_kb_writer_stats_t   st;

    static doc_t  docs[] = {
        { "simple", "", "", "", "", { "The Running Ponies", NULL } },
        { NULL, NULL, NULL, NULL, NULL, { NULL } }
    };

    build_language = "simple";
    rc = build(docs, NULL, 0, &st);
    build_language = NULL;

    ok(rc == SA_OK && !st.incremental && st.reason != NULL
       && strcmp(st.reason, "language") == 0,
       "another language: a full build");

    kb = open_kb();
    sa_kb_info(kb, &info);
    is_str(info.language, "simple", "language simple");

    rc = search(kb, "the", NULL, 8, hits, &n);
    ok(rc == SA_OK && n == 1, "\"the\" is a term in a simple KB");

    rc = search(kb, "ponies", NULL, 8, hits, &n);
    ok(rc == SA_OK && n == 1, "not stemmed: ponies");

    rc = search(kb, "pony", NULL, 8, hits, &n);
    ok(rc == SA_OK && n == 0, "not stemmed: no pony");

    sa_kb_close(kb);
}


static void
test_hash(void)
{
    unsigned char  h[SA_KB_HASH_SIZE];
    const char    *fox = "The quick brown fox jumps over the lazy dog";

    static const unsigned char  want[SA_KB_HASH_SIZE] = {
        0x6c, 0x1b, 0x07, 0xbc, 0x7b, 0xbc, 0x4b, 0xe3,
        0x47, 0x93, 0x9a, 0xc4, 0xa9, 0x3c, 0x43, 0x7a
    };

    sa_kb_hash(fox, strlen(fox), 0, h);
    ok(memcmp(h, want, SA_KB_HASH_SIZE) == 0,
       "MurmurHash3 x64 128 test vector");
}


int
main(void)
{
    int                    rc;
    sa_kb_writer_stats_t   st;

    if (mkdtemp(tmp_dir) == NULL) {
        printf("Bail out! mkdtemp: %s\n", strerror(errno));
        return 1;
    }

    snprintf(kb_path, sizeof(kb_path), "%s/test.kb", tmp_dir);

    test_hash();
    test_open_errors();

    rc = build(corpus, NULL, 0, &st);
    is_int(rc, SA_OK, "built");
    ok(rc == SA_OK && !st.incremental && st.reason != NULL
       && strcmp(st.reason, "new") == 0, "a full build");
    ok(st.docs == 3 && st.chunks == 5 && st.added == 3
       && st.tokens == 13, "3 docs, 5 chunks, 13 tokens");

    test_search();
    test_chunk();
    test_processes();
    test_writer_errors();
    test_rename();
    test_duplicates();
    test_incremental_equals_full();
    test_language();

    unlink(kb_path);
    rmdir(tmp_dir);

    return done_testing();
}
