
/*
 * Copyright (C) ngx_support_agent authors
 *
 * kb-build search: a TREC run of queries against a KB, searched exactly as
 * the module searches (sa_query_search(), or plain sa_kb_search_bm25()),
 * with latency figures; kb-build stats: what a KB file holds.
 */


#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <yajl/yajl_tree.h>

#include "kb_build.h"
#include "sa_fuse.h"
#include "sa_json.h"
#include "sa_kb.h"
#include "sa_query.h"
#include "sa_utf8.h"


typedef struct {
    char      *id;
    char      *text;
} kb_query_t;


/* the module's built-in reranker (--reranker builtin) */
typedef struct {
    int                on;
    size_t             candidates;
    double             min_relevance;
    sa_analyzer_t     *analyzer;
    sa_rerank_stop_t  *stop;
} kb_reranker_t;

static kb_reranker_t  kb_reranker;


static int kb_read_queries(const char *file, kb_query_t **queries,
    size_t *n);
static int kb_run_query(sa_kb_t *kb, kb_query_t *q, size_t k,
    size_t chunk_k, const sa_query_conf_t *conf, float k1, float b,
    const char *tag, sa_kb_hit_t *hits, char **seen, double *us);
static int kb_query_line(void *data, const char *file, long line,
    yajl_val root);
static int kb_double_cmp(const void *one, const void *two);
static int kb_rerank(sa_kb_t *kb, kb_query_t *q, sa_kb_hit_t *hits,
    size_t *n);



int
kb_search(int argc, char **argv)
{
    int               i, rc;
    char              err[1024], **seen;
    long              k, chunk_k, repeat, r;
    float             k1, b;
    double           *lat, us;
    size_t            nq, q, nlat, j;
    sa_kb_t          *kb;
    const char       *path, *queries_file, *tag, *opt, *strategy;
    kb_query_t       *queries;
    sa_kb_hit_t      *hits;
    sa_query_conf_t   conf, *cp;

    path = NULL;
    queries_file = NULL;
    tag = "kb-build";
    k = 100;
    chunk_k = -1;
    repeat = 1;
    k1 = -1;
    b = -1;
    strategy = "auto";
    sa_query_conf_init(&conf);

    /* the module's defaults: support_agent_kb_candidates 20,
       support_agent_kb_min_relevance 0.2 */
    kb_reranker.on = 0;
    kb_reranker.candidates = 20;
    kb_reranker.min_relevance = 0.2;

    for (i = 1; i < argc; i++) {
        opt = argv[i];

        if (i + 1 >= argc) {
            kb_usage("search: %s needs a value", opt);
            return KB_EXIT_USAGE;
        }

        if (strcmp(opt, "--kb") == 0) {
            path = argv[++i];

        } else if (strcmp(opt, "--queries") == 0) {
            queries_file = argv[++i];

        } else if (strcmp(opt, "--tag") == 0) {
            tag = argv[++i];

        } else if (strcmp(opt, "--k") == 0) {
            k = kb_number(argv[++i]);

        } else if (strcmp(opt, "--chunk-k") == 0) {
            chunk_k = kb_number(argv[++i]);

        } else if (strcmp(opt, "--repeat") == 0) {
            repeat = kb_number(argv[++i]);

        } else if (strcmp(opt, "--k1") == 0) {
            k1 = strtof(argv[++i], NULL);

        } else if (strcmp(opt, "--b") == 0) {
            b = strtof(argv[++i], NULL);

        } else if (strcmp(opt, "--strategy") == 0) {
            strategy = argv[++i];

        } else if (strcmp(opt, "--long-words") == 0) {
            conf.long_words = (size_t) kb_number(argv[++i]);

        } else if (strcmp(opt, "--rerank") == 0) {
            conf.rerank = (size_t) kb_number(argv[++i]);

        } else if (strcmp(opt, "--pairs") == 0) {
            conf.pairs = strtof(argv[++i], NULL);

        } else if (strcmp(opt, "--stop") == 0) {
            conf.stop = (int) kb_number(argv[++i]);

        } else if (strcmp(opt, "--reranker") == 0) {
            opt = argv[++i];

            if (strcmp(opt, "builtin") == 0) {
                kb_reranker.on = 1;

            } else if (strcmp(opt, "none") != 0) {
                kb_usage("search: --reranker is builtin or none");
                return KB_EXIT_USAGE;
            }

        } else if (strcmp(opt, "--candidates") == 0) {
            kb_reranker.candidates = (size_t) kb_number(argv[++i]);

        } else if (strcmp(opt, "--min-relevance") == 0) {
            kb_reranker.min_relevance = strtod(argv[++i], NULL);

        } else {
            kb_usage("search: unknown option \"%s\"", opt);
            return KB_EXIT_USAGE;
        }
    }

    if (path == NULL || queries_file == NULL) {
        kb_usage("search: --kb PATH and --queries FILE are required");
        return KB_EXIT_USAGE;
    }

    if (k < 1 || k > 100000 || repeat < 1 || repeat > 1000
        || chunk_k == 0 || chunk_k > 1000000)
    {
        kb_usage("search: --k is 1..100000, --chunk-k 1..1000000, "
                 "--repeat 1..1000");
        return KB_EXIT_USAGE;
    }

    if (chunk_k < 0) {
        chunk_k = k;
    }

    if (!(k1 < 0 || k1 <= 100) || !(b < 0 || b <= 1)) {
        kb_usage("search: --k1 is 0..100, --b 0..1");
        return KB_EXIT_USAGE;
    }

    if (conf.long_words > 1000000 || conf.rerank > 100000
        || !(conf.pairs >= 0 && conf.pairs <= 100)
        || (conf.stop != 0 && conf.stop != 1))
    {
        kb_usage("search: --long-words is 0..1000000, --rerank 0..100000, "
                 "--pairs 0..100, --stop 0 or 1");
        return KB_EXIT_USAGE;
    }

    /* plain: BM25 as it is, with --k1 and --b; auto: the module's
       default; long: every query as a long message (--k1 and --b are
       then the long messages' BM25) */

    if (strcmp(strategy, "plain") == 0) {
        cp = NULL;

    } else if (strcmp(strategy, "auto") == 0
               || strcmp(strategy, "long") == 0)
    {
        if (strcmp(strategy, "long") == 0) {
            conf.long_words = 1;
        }

        if (k1 >= 0) {
            conf.k1 = k1;
        }

        if (b >= 0) {
            conf.b = b;
        }

        cp = &conf;

    } else {
        kb_usage("search: --strategy is plain, auto or long");
        return KB_EXIT_USAGE;
    }

    if (sa_kb_open(&kb, path, err, sizeof(err)) != SA_OK) {
        kb_error("%s", err);
        return KB_EXIT_FAIL;
    }

    if (kb_read_queries(queries_file, &queries, &nq) != 0) {
        sa_kb_close(kb);
        return KB_EXIT_FAIL;
    }

    hits = malloc((size_t) chunk_k * sizeof(sa_kb_hit_t));
    seen = calloc((size_t) chunk_k + 1, sizeof(char *));
    lat = malloc((nq * (size_t) repeat + 1) * sizeof(double));

    if (hits == NULL || seen == NULL || lat == NULL) {
        kb_error("out of memory");
        rc = KB_EXIT_FAIL;
        goto done;
    }

    rc = KB_EXIT_OK;
    nlat = 0;

    /* the run is printed once; later rounds only time the searches */

    for (r = 0; r < repeat && rc == KB_EXIT_OK; r++) {
        for (q = 0; q < nq; q++) {
            if (kb_run_query(kb, &queries[q], (size_t) k, (size_t) chunk_k,
                             cp, k1, b, r == 0 ? tag : NULL, hits, seen,
                             &us)
                != 0)
            {
                rc = KB_EXIT_FAIL;
                break;
            }

            lat[nlat++] = us;
        }
    }

    if (rc == KB_EXIT_OK && nlat > 0) {
        qsort(lat, nlat, sizeof(double), kb_double_cmp);

        fprintf(stderr, "kb-build search: %zu queries x %ld, k %ld: "
                "p50 %.1f us, p90 %.1f us, p99 %.1f us, max %.1f us\n",
                nq, repeat, chunk_k, lat[nlat / 2], lat[nlat * 90 / 100],
                lat[nlat * 99 / 100], lat[nlat - 1]);
    }

done:

    for (j = 0; j < nq; j++) {
        free(queries[j].id);
        free(queries[j].text);
    }

    free(queries);
    free(hits);
    free(seen);
    free(lat);
    sa_kb_close(kb);
    sa_analyzer_free(kb_reranker.analyzer);
    sa_rerank_stop_free(kb_reranker.stop);
    kb_reranker.analyzer = NULL;
    kb_reranker.stop = NULL;

    if (fflush(stdout) != 0) {
        kb_error("stdout: %s", strerror(errno));
        rc = KB_EXIT_FAIL;
    }

    return rc;
}


/*
 * One query: the chunks' search (sa_query_search() with conf, or plain
 * BM25 when conf is NULL), timed; then, when tag is given, the run's
 * lines for the documents, each scored as its best chunk (hits come best
 * first, so a document's first hit is its best).
 */

static int
kb_run_query(sa_kb_t *kb, kb_query_t *q, size_t k, size_t chunk_k,
    const sa_query_conf_t *conf, float k1, float b, const char *tag,
    sa_kb_hit_t *hits, char **seen, double *us)
{
    int            rc;
    double         start;
    size_t         n, i, j, rank;
    sa_kb_chunk_t  c;

    start = kb_now();

    if (conf == NULL) {
        rc = sa_kb_search_bm25(kb, q->text, strlen(q->text), NULL, k1, b,
                               chunk_k, hits, &n);

    } else {
        rc = sa_query_search(kb, q->text, strlen(q->text), NULL, 0, conf,
                             chunk_k, hits, &n);
    }

    if (rc == SA_OK && kb_reranker.on) {
        rc = kb_rerank(kb, q, hits, &n);
    }

    *us = (kb_now() - start) * 1e6;

    if (rc != SA_OK) {
        kb_error("query \"%s\": %s", q->id, sa_kb_last_error(kb));
        return -1;
    }

    if (tag == NULL) {
        return 0;
    }

    rank = 0;

    for (i = 0; i < n && rank < k; i++) {
        if (sa_kb_chunk(kb, hits[i].chunk, &c) != SA_OK) {
            kb_error("chunk %u: %s", hits[i].chunk, sa_kb_last_error(kb));
            rc = -1;
            break;
        }

        for (j = 0; j < rank; j++) {
            if (strcmp(seen[j], c.doc_id) == 0) {
                break;
            }
        }

        if (j < rank) {
            sa_kb_chunk_free(&c);
            continue;
        }

        seen[rank++] = c.doc_id;
        c.doc_id = NULL;
        sa_kb_chunk_free(&c);

        printf("%s Q0 %s %zu %.6f %s\n", q->id, seen[rank - 1], rank,
               hits[i].score, tag);
    }

    for (j = 0; j < rank; j++) {
        free(seen[j]);
        seen[j] = NULL;
    }

    return rc;
}


/*
 * The built-in reranker as the module runs it (ngx_http_sa_kb_rerank_
 * builtin()): the first candidates, their relevance by sa_rerank_lexical()
 * with the stop list and the KB's idf, the blended order, the relevance
 * threshold.  Hits beyond the candidates are dropped, as in the module.
 */

static double
kb_idf(void *data, const char *term, size_t len)
{
    return sa_kb_term_idf(data, term, len);
}


static int
kb_rerank(sa_kb_t *kb, kb_query_t *q, sa_kb_hit_t *hits, size_t *n)
{
    int               rc, long_query;
    char              language[16];
    float            *scores, *relevance;
    size_t            i, m, kept, hlen, tlen, slen;
    sa_query_conf_t   qc;
    sa_kb_chunk_t     c;
    sa_rerank_doc_t  *docs;

    m = *n < kb_reranker.candidates ? *n : kb_reranker.candidates;
    *n = 0;

    if (m == 0) {
        return SA_OK;
    }

    if (kb_reranker.analyzer == NULL) {
        if (sa_kb_meta(kb, "language", language, sizeof(language)) != SA_OK)
        {
            strcpy(language, "english");
        }

        kb_reranker.analyzer = sa_analyzer_new(language);
        if (kb_reranker.analyzer == NULL) {
            return SA_ERROR;
        }

        kb_reranker.stop = sa_rerank_stop_new(kb_reranker.analyzer,
                                              sa_query_stop_words);
        if (kb_reranker.stop == NULL) {
            return SA_ERROR;
        }
    }

    docs = calloc(m, sizeof(sa_rerank_doc_t));
    scores = malloc(2 * m * sizeof(float));
    if (docs == NULL || scores == NULL) {
        free(docs);
        free(scores);
        return SA_ERROR;
    }

    relevance = scores + m;
    rc = SA_OK;

    for (i = 0; i < m; i++) {
        if (sa_kb_chunk(kb, hits[i].chunk, &c) != SA_OK) {
            rc = SA_ERROR;
            m = i;
            break;
        }

        /* the module's heading: title, a space, section */
        tlen = strlen(c.title);
        slen = strlen(c.section);
        hlen = tlen + 1 + slen;

        docs[i].heading = malloc(hlen + 1);
        docs[i].text = c.text;
        docs[i].text_len = c.text_len;
        c.text = NULL;

        if (docs[i].heading != NULL) {
            snprintf((char *) docs[i].heading, hlen + 1, "%s %s", c.title,
                     c.section);
            docs[i].heading_len = hlen;
        }

        sa_kb_chunk_free(&c);

        if (docs[i].heading == NULL) {
            rc = SA_ERROR;
            m = i + 1;
            break;
        }

        scores[i] = hits[i].score;
    }

    if (rc == SA_OK) {
        rc = sa_rerank_lexical(kb_reranker.analyzer, q->text, strlen(q->text),
                               docs, m, kb_reranker.stop, kb_idf, kb,
                               relevance);
    }

    if (rc == SA_OK) {
        sa_rerank_blend(scores, relevance, NULL, m, SA_RERANK_BLEND);

        kept = 0;
        sa_query_conf_init(&qc);

        /* a long message is ranked, not gated (as in the module) */
        long_query = qc.long_words
                     && sa_query_words(q->text, strlen(q->text),
                                       qc.long_words) >= qc.long_words;

        for (i = 0; i < m; i++) {
            if (long_query || relevance[i] >= kb_reranker.min_relevance) {
                hits[kept].chunk = hits[i].chunk;
                hits[kept].score = scores[i];
                kept++;
            }
        }

        qsort(hits, kept, sizeof(sa_kb_hit_t), sa_query_hit_cmp);
        *n = kept;
    }

    for (i = 0; i < m; i++) {
        free((char *) docs[i].heading);
        free((char *) docs[i].text);
    }

    free(docs);
    free(scores);

    return rc;
}


typedef struct {
    kb_query_t  *qs;
    size_t       n;
    size_t       cap;
} kb_queries_t;


static int
kb_read_queries(const char *file, kb_query_t **queries, size_t *n)
{
    int            rc;
    FILE          *f;
    kb_queries_t   q;

    f = fopen(file, "rb");
    if (f == NULL) {
        kb_error("--queries \"%s\": %s", file, strerror(errno));
        return -1;
    }

    memset(&q, 0, sizeof(kb_queries_t));

    rc = kb_jsonl(file, f, kb_query_line, &q, NULL);

    fclose(f);

    *queries = q.qs;
    *n = q.n;

    return rc;
}


/* {"_id", "text"}: the id a string or an integer */

static int
kb_query_line(void *data, const char *file, long line, yajl_val root)
{
    char           num[32];
    yajl_val       v;
    kb_query_t    *p;
    kb_queries_t  *q = data;
    const char    *path[2];

    if (q->n == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 256;

        p = realloc(q->qs, q->cap * sizeof(kb_query_t));
        if (p == NULL) {
            kb_error("out of memory");
            return -1;
        }

        q->qs = p;
    }

    p = &q->qs[q->n++];
    memset(p, 0, sizeof(kb_query_t));

    path[1] = NULL;
    path[0] = "_id";
    v = yajl_tree_get(root, path, yajl_t_any);

    if (v != NULL && YAJL_IS_STRING(v)) {
        p->id = strdup(v->u.string);

    } else if (v != NULL && YAJL_IS_INTEGER(v)) {
        snprintf(num, sizeof(num), "%lld", YAJL_GET_INTEGER(v));
        p->id = strdup(num);
    }

    path[0] = "text";
    v = yajl_tree_get(root, path, yajl_t_string);

    if (v != NULL) {
        p->text = strdup(v->u.string);
    }

    if (p->id == NULL || p->id[0] == '\0' || p->text == NULL) {
        kb_error("%s:%ld: needs \"_id\" and \"text\" strings", file, line);
        return -1;
    }

    return 0;
}


static int
kb_double_cmp(const void *one, const void *two)
{
    double  a, b;

    a = *(const double *) one;
    b = *(const double *) two;

    return (a > b) - (a < b);
}


/* ------------------------------------------------------------------ */
/* stats                                                               */


int
kb_stats(int argc, char **argv)
{
    int           i, rc;
    char          err[1024], value[256];
    sa_kb_t      *kb;
    const char   *path;
    struct stat   st;

    static const char  *names[] = {
        "format", "builder", "language", "k1", "b", "docs", "chunks",
        "tokens", "terms", "next_chunk", "built_ms", "max_chars", "overlap",
        "embed_model", "embed_dim", "embed_encoding", NULL
    };

    path = NULL;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--kb") == 0 && i + 1 < argc) {
            path = argv[++i];

        } else {
            kb_usage("stats: unknown option \"%s\"", argv[i]);
            return KB_EXIT_USAGE;
        }
    }

    if (path == NULL) {
        kb_usage("stats: --kb PATH is required");
        return KB_EXIT_USAGE;
    }

    if (sa_kb_open(&kb, path, err, sizeof(err)) != SA_OK) {
        kb_error("%s", err);
        return KB_EXIT_FAIL;
    }

    printf("file %s\n", path);

    if (stat(path, &st) == 0) {
        printf("bytes %lld\n", (long long) st.st_size);
    }

    rc = KB_EXIT_OK;

    for (i = 0; names[i] != NULL; i++) {
        switch (sa_kb_meta(kb, names[i], value, sizeof(value))) {

        case SA_OK:
            printf("%s %s\n", names[i], value);
            break;

        case SA_NOT_FOUND:
            break;

        default:
            kb_error("%s", sa_kb_last_error(kb));
            rc = KB_EXIT_FAIL;
            break;
        }
    }

    sa_kb_close(kb);

    return rc;
}
