
/*
 * Copyright (C) ngx_support_agent authors
 */


#include <stdlib.h>
#include <string.h>

#include "sa_fuse.h"


typedef struct {
    uint32_t  chunk;
    uint32_t  best_rank;
    double    score;
} sa_fuse_entry_t;


typedef struct {
    char      *term;
    size_t     len;
    double     weight;      /* < 0 while marked a stop word */
    size_t     order;
} sa_rerank_term_t;


typedef struct {
    sa_rerank_term_t  terms[SA_RERANK_MAX_QUERY_TERMS];
    size_t            n;
    int               failed;
} sa_rerank_query_t;


struct sa_rerank_stop_s {
    char    **terms;            /* sorted, distinct */
    size_t    n;
    size_t    cap;
    int       failed;
};


/* one occurrence of a query term in a candidate's text */
typedef struct {
    uint32_t  position;
    uint8_t   term;
} sa_rerank_hit_t;


typedef struct {
    sa_rerank_query_t  *query;
    uint64_t            seen;        /* bit per query term */
    sa_rerank_hit_t    *hits;
    size_t              n;
    size_t              cap;
    int                 failed;
} sa_rerank_scan_t;


static int sa_fuse_by_chunk(const void *one, const void *two);
static int sa_fuse_by_score(const void *one, const void *two);
static int sa_rerank_query_term(void *data, const char *term, size_t len,
    uint32_t position);
static int sa_rerank_doc_term(void *data, const char *term, size_t len,
    uint32_t position);
static int sa_rerank_stop_add(void *data, const char *term, size_t len,
    uint32_t position);
static int sa_rerank_str_cmp(const void *one, const void *two);
static int sa_rerank_by_weight(const void *one, const void *two);
static int sa_rerank_find(sa_rerank_query_t *q, const char *term,
    size_t len);
static double sa_rerank_mass(sa_rerank_query_t *q, uint64_t set);
static double sa_rerank_window(sa_rerank_scan_t *scan);


int
sa_fuse_rrf(const sa_fuse_list_t *lists, size_t nlists, double k,
    sa_kb_hit_t *out, size_t limit, size_t *n)
{
    size_t            i, j, p, total, m;
    sa_fuse_entry_t  *e;

    *n = 0;

    if (nlists > SA_FUSE_MAX_LISTS || k < 0) {
        return SA_INVALID;
    }

    total = 0;

    for (i = 0; i < nlists; i++) {
        if (!(lists[i].weight > 0)) {
            return SA_INVALID;
        }

        total += lists[i].n;
    }

    if (total == 0 || limit == 0) {
        return SA_OK;
    }

    e = malloc(total * sizeof(sa_fuse_entry_t));
    if (e == NULL) {
        return SA_ERROR;
    }

    m = 0;

    for (i = 0; i < nlists; i++) {
        for (j = 0; j < lists[i].n; j++) {
            e[m].chunk = lists[i].hits[j].chunk;
            e[m].best_rank = (uint32_t) (j + 1);
            e[m].score = lists[i].weight / (k + (double) (j + 1));

            /* a chunk twice in one list counts once, at its best rank:
               the list is best first, so an earlier entry wins */
            for (p = m; p > m - j; p--) {
                if (e[p - 1].chunk == e[m].chunk) {
                    e[m].score = 0;
                    break;
                }
            }

            m++;
        }
    }

    qsort(e, m, sizeof(sa_fuse_entry_t), sa_fuse_by_chunk);

    /* merge the entries of one chunk */
    j = 0;

    for (i = 0; i < m; i++) {
        if (j > 0 && e[j - 1].chunk == e[i].chunk) {
            e[j - 1].score += e[i].score;
            if (e[i].best_rank < e[j - 1].best_rank) {
                e[j - 1].best_rank = e[i].best_rank;
            }

            continue;
        }

        e[j++] = e[i];
    }

    qsort(e, j, sizeof(sa_fuse_entry_t), sa_fuse_by_score);

    for (i = 0; i < j && i < limit; i++) {
        out[i].chunk = e[i].chunk;
        out[i].score = (float) e[i].score;
    }

    *n = i;

    free(e);

    return SA_OK;
}


static int
sa_fuse_by_chunk(const void *one, const void *two)
{
    const sa_fuse_entry_t  *a = one;
    const sa_fuse_entry_t  *b = two;

    if (a->chunk != b->chunk) {
        return a->chunk < b->chunk ? -1 : 1;
    }

    /* within a chunk, the better rank first: its score is kept */
    return a->best_rank < b->best_rank ? -1 : (a->best_rank > b->best_rank);
}


static int
sa_fuse_by_score(const void *one, const void *two)
{
    const sa_fuse_entry_t  *a = one;
    const sa_fuse_entry_t  *b = two;

    if (a->score != b->score) {
        return a->score > b->score ? -1 : 1;
    }

    if (a->best_rank != b->best_rank) {
        return a->best_rank < b->best_rank ? -1 : 1;
    }

    return a->chunk < b->chunk ? -1 : (a->chunk > b->chunk);
}


int
sa_rerank_lexical(sa_analyzer_t *a, const char *query, size_t len,
    const sa_rerank_doc_t *docs, size_t n, const sa_rerank_stop_t *stop,
    sa_rerank_weight_pt weight, void *data, float *scores)
{
    int                rc;
    size_t             i;
    double             total, coverage, proximity, heading, w;
    uint64_t           in_heading;
    const char        *key;
    sa_rerank_scan_t   scan;
    sa_rerank_query_t  q;

    memset(&q, 0, sizeof(sa_rerank_query_t));
    memset(&scan, 0, sizeof(sa_rerank_scan_t));

    for (i = 0; i < n; i++) {
        scores[i] = 0;
    }

    rc = sa_analyze(a, query, len, sa_rerank_query_term, &q);
    if (rc != SA_OK || q.failed) {
        rc = SA_ERROR;
        goto done;
    }

    /* a stop word's terms weigh nothing */
    for (i = 0; stop != NULL && i < q.n; i++) {
        key = q.terms[i].term;

        if (bsearch(&key, stop->terms, stop->n, sizeof(char *),
                    sa_rerank_str_cmp)
            != NULL)
        {
            q.terms[i].weight = -1;
        }
    }

    for (i = 0; i < q.n; i++) {
        if (q.terms[i].weight < 0) {
            q.terms[i].weight = 0;
            continue;
        }

        w = weight ? weight(data, q.terms[i].term, q.terms[i].len) : 1.0;
        q.terms[i].weight = w > 0 ? w : 0;
    }

    /* a long message: its SA_RERANK_MAX_TERMS heaviest terms stand for it
       (stable: the first said wins a tie) */
    if (q.n > SA_RERANK_MAX_TERMS) {
        for (i = 0; i < q.n; i++) {
            q.terms[i].order = i;
        }

        qsort(q.terms, q.n, sizeof(sa_rerank_term_t), sa_rerank_by_weight);

        for (i = SA_RERANK_MAX_TERMS; i < q.n; i++) {
            free(q.terms[i].term);
        }

        q.n = SA_RERANK_MAX_TERMS;
    }

    total = 0;

    for (i = 0; i < q.n; i++) {
        total += q.terms[i].weight;
    }

    scan.query = &q;

    if (total <= 0) {
        rc = SA_OK;
        goto done;
    }

    scan.query = &q;

    for (i = 0; i < n; i++) {
        scan.seen = 0;
        scan.n = 0;

        if (sa_analyze(a, docs[i].heading, docs[i].heading_len,
                       sa_rerank_doc_term, &scan)
            != SA_OK || scan.failed)
        {
            rc = SA_ERROR;
            goto done;
        }

        in_heading = scan.seen;

        /* heading terms are not text positions */
        scan.n = 0;

        if (sa_analyze(a, docs[i].text, docs[i].text_len,
                       sa_rerank_doc_term, &scan)
            != SA_OK || scan.failed)
        {
            rc = SA_ERROR;
            goto done;
        }

        coverage = sa_rerank_mass(&q, scan.seen);
        heading = sa_rerank_mass(&q, in_heading);
        proximity = sa_rerank_window(&scan);

        scores[i] = (float) ((0.5 * coverage + 0.3 * proximity
                              + 0.2 * heading) / total);
    }

    rc = SA_OK;

done:

    for (i = 0; i < q.n; i++) {
        free(q.terms[i].term);
    }

    free(scan.hits);

    return rc;
}


static int
sa_rerank_query_term(void *data, const char *term, size_t len,
    uint32_t position)
{
    sa_rerank_query_t  *q = data;

    if (q->n == SA_RERANK_MAX_QUERY_TERMS
        || sa_rerank_find(q, term, len) >= 0)
    {
        return SA_OK;
    }

    q->terms[q->n].term = malloc(len + 1);
    if (q->terms[q->n].term == NULL) {
        q->failed = 1;
        return SA_ERROR;
    }

    memcpy(q->terms[q->n].term, term, len + 1);
    q->terms[q->n].len = len;
    q->n++;

    return SA_OK;
}


/*
 * The stop words' terms, analyzed once (per analyzer), so that a rerank
 * looks them up instead of analyzing the list again.
 */

sa_rerank_stop_t *
sa_rerank_stop_new(sa_analyzer_t *a, const char *const *words)
{
    size_t             i, j;
    sa_rerank_stop_t  *s;

    s = calloc(1, sizeof(sa_rerank_stop_t));
    if (s == NULL) {
        return NULL;
    }

    for (i = 0; words[i] != NULL; i++) {
        if (sa_analyze(a, words[i], strlen(words[i]), sa_rerank_stop_add, s)
            != SA_OK || s->failed)
        {
            sa_rerank_stop_free(s);
            return NULL;
        }
    }

    qsort(s->terms, s->n, sizeof(char *), sa_rerank_str_cmp);

    /* distinct: "does" and "doing" may stem alike */
    for (i = 0, j = 0; i < s->n; i++) {
        if (j > 0 && strcmp(s->terms[j - 1], s->terms[i]) == 0) {
            free(s->terms[i]);
            continue;
        }

        s->terms[j++] = s->terms[i];
    }

    s->n = j;

    return s;
}


void
sa_rerank_stop_free(sa_rerank_stop_t *s)
{
    size_t  i;

    if (s == NULL) {
        return;
    }

    for (i = 0; i < s->n; i++) {
        free(s->terms[i]);
    }

    free(s->terms);
    free(s);
}


static int
sa_rerank_stop_add(void *data, const char *term, size_t len,
    uint32_t position)
{
    char             **terms;
    size_t             cap;
    sa_rerank_stop_t  *s = data;

    if (s->n == s->cap) {
        cap = s->cap ? s->cap * 2 : 256;
        terms = realloc(s->terms, cap * sizeof(char *));
        if (terms == NULL) {
            s->failed = 1;
            return SA_ERROR;
        }

        s->terms = terms;
        s->cap = cap;
    }

    s->terms[s->n] = strndup(term, len);
    if (s->terms[s->n] == NULL) {
        s->failed = 1;
        return SA_ERROR;
    }

    s->n++;

    return SA_OK;
}


static int
sa_rerank_str_cmp(const void *one, const void *two)
{
    return strcmp(*(char * const *) one, *(char * const *) two);
}


static int
sa_rerank_by_weight(const void *one, const void *two)
{
    const sa_rerank_term_t  *a = one;
    const sa_rerank_term_t  *b = two;

    if (a->weight != b->weight) {
        return a->weight > b->weight ? -1 : 1;
    }

    return a->order < b->order ? -1 : 1;
}


static int
sa_rerank_doc_term(void *data, const char *term, size_t len,
    uint32_t position)
{
    int                t;
    size_t             cap;
    sa_rerank_hit_t   *hits;
    sa_rerank_scan_t  *scan = data;

    t = sa_rerank_find(scan->query, term, len);
    if (t < 0) {
        return SA_OK;
    }

    scan->seen |= (uint64_t) 1 << t;

    if (scan->n == scan->cap) {
        cap = scan->cap ? scan->cap * 2 : 64;
        hits = realloc(scan->hits, cap * sizeof(sa_rerank_hit_t));
        if (hits == NULL) {
            scan->failed = 1;
            return SA_ERROR;
        }

        scan->hits = hits;
        scan->cap = cap;
    }

    scan->hits[scan->n].position = position;
    scan->hits[scan->n].term = (uint8_t) t;
    scan->n++;

    return SA_OK;
}


static int
sa_rerank_find(sa_rerank_query_t *q, const char *term, size_t len)
{
    size_t  i;

    for (i = 0; i < q->n; i++) {
        if (q->terms[i].len == len && memcmp(q->terms[i].term, term, len) == 0)
        {
            return (int) i;
        }
    }

    return -1;
}


static double
sa_rerank_mass(sa_rerank_query_t *q, uint64_t set)
{
    size_t  i;
    double  m;

    m = 0;

    for (i = 0; i < q->n; i++) {
        if (set & ((uint64_t) 1 << i)) {
            m += q->terms[i].weight;
        }
    }

    return m;
}


/* the heaviest set of distinct query terms inside one window of text
   positions; occurrences come in position order */

static double
sa_rerank_window(sa_rerank_scan_t *scan)
{
    size_t    i, j, first;
    double    best, m;
    uint64_t  set;

    best = 0;
    first = 0;

    for (i = 0; i < scan->n; i++) {
        while (scan->hits[i].position - scan->hits[first].position
               >= SA_RERANK_WINDOW)
        {
            first++;
        }

        set = 0;

        for (j = first; j <= i; j++) {
            set |= (uint64_t) 1 << scan->hits[j].term;
        }

        m = sa_rerank_mass(scan->query, set);
        if (m > best) {
            best = m;
        }
    }

    return best;
}


void
sa_rerank_blend(float *scores, float *relevance, const float *similarity,
    size_t n, double blend)
{
    float   top;
    size_t  i;

    if (n == 0) {
        return;
    }

    top = scores[0];

    for (i = 0; i < n; i++) {
        if (similarity && similarity[i] > relevance[i]) {
            relevance[i] = similarity[i];
        }

        scores[i] = (float) (blend * relevance[i]
                             + (1 - blend) * (top > 0 ? scores[i] / top : 0));
    }
}
