
/*
 * Copyright (C) ngx_support_agent authors
 *
 * The steps of retrieval after the first searches: reciprocal rank fusion
 * of ranked lists (BM25, dense, ...) and the built-in lexical reranker
 * used when no rerank endpoint is configured or it fails.  Pure C, no
 * nginx types.
 */


#ifndef _SA_FUSE_H_INCLUDED_
#define _SA_FUSE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "sa_types.h"
#include "sa_kb.h"
#include "sa_text.h"


#define SA_FUSE_MAX_LISTS   8
#define SA_RERANK_MAX_TERMS 64      /* distinct query terms weighed */
#define SA_RERANK_MAX_QUERY_TERMS  1024   /* read, the heaviest kept */


typedef struct {
    const sa_kb_hit_t  *hits;       /* best first */
    size_t              n;
    double              weight;     /* > 0 */
} sa_fuse_list_t;


/*
 * Reciprocal rank fusion (Cormack et al. 2009), weighted: a chunk scores
 * sum over the lists holding it of weight / (k + rank), rank counted from
 * 1.  out (room for limit) gets the best *n chunks by fused score; ties go
 * to the chunk with the better single rank, then the lower chunk id, so
 * the order is deterministic.  A chunk repeated in one list counts once
 * (its best rank).  SA_OK, SA_INVALID (more than SA_FUSE_MAX_LISTS lists,
 * k < 0, a weight <= 0), SA_ERROR (out of memory).
 */
int sa_fuse_rrf(const sa_fuse_list_t *lists, size_t nlists, double k,
    sa_kb_hit_t *out, size_t limit, size_t *n);


/* what the lexical reranker reads of a candidate */
typedef struct {
    const char  *heading;           /* title and section path */
    size_t       heading_len;
    const char  *text;
    size_t       text_len;
} sa_rerank_doc_t;

/* the terms of a list of stop words (NULL-terminated), analyzed once
   with the analyzer the reranker will use; NULL when out of memory */
typedef struct sa_rerank_stop_s  sa_rerank_stop_t;

sa_rerank_stop_t *sa_rerank_stop_new(sa_analyzer_t *a,
    const char *const *words);
void sa_rerank_stop_free(sa_rerank_stop_t *s);

/* a query term's weight (its idf in the KB); NULL: every term weighs 1 */
typedef double (*sa_rerank_weight_pt)(void *data, const char *term,
    size_t len);


/*
 * The built-in reranker: how much of the question a candidate answers,
 * with no model.  For the distinct query terms t (the
 * SA_RERANK_MAX_TERMS heaviest of the first SA_RERANK_MAX_QUERY_TERMS,
 * weighed w(t), W their sum; the terms in stop (may be NULL) weigh 0:
 * "how do i" must not make every "How do I ...?" heading an answer):
 *
 *   coverage   sum of w(t) over the terms the candidate has anywhere / W
 *   proximity  the most weight of distinct terms found together within
 *              SA_RERANK_WINDOW positions of its text / W
 *   heading    sum of w(t) over the terms in its title or section / W
 *
 *   score = 0.5 coverage + 0.3 proximity + 0.2 heading, in [0, 1]
 *
 * so a candidate matching the rare words of the question, close
 * together, under a heading about them, comes first; one sharing only a
 * frequent word scores near 0, which the relevance threshold catches.
 * scores[i] gets docs[i]'s score.  SA_OK (all scores 0 when the query has
 * no terms), SA_ERROR.
 */
#define SA_RERANK_WINDOW  12

int sa_rerank_lexical(sa_analyzer_t *a, const char *query, size_t len,
    const sa_rerank_doc_t *docs, size_t n, const sa_rerank_stop_t *stop,
    sa_rerank_weight_pt weight, void *data, float *scores);


/*
 * The built-in reranker's final order: scores (the first stage's, best
 * first) become blend * relevance + (1 - blend) * score / scores[0], where
 * relevance is raised to similarity[i] when that is larger (a chunk close
 * to the query's embedding is relevant in other words; similarity may be
 * NULL, or -1 where unknown).  relevance is updated in place; the caller
 * sorts.
 */
#define SA_RERANK_BLEND  0.5

void sa_rerank_blend(float *scores, float *relevance,
    const float *similarity, size_t n, double blend);


#endif /* _SA_FUSE_H_INCLUDED_ */
