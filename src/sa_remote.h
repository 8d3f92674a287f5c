
/*
 * Copyright (C) ngx_support_agent authors
 *
 * Wire formats of the retrieval services the module calls: embeddings
 * (OpenAI-compatible /v1/embeddings, TEI /embed), rerank (Cohere v2 and
 * its vLLM / Jina cousins, TEI /rerank) and Qdrant's Query API.  Bodies
 * are built with the sa_jw_* writer and parsed with yajl; replies are
 * untrusted input: every field is checked, nothing is assumed about
 * order.  Pure C, no nginx types.
 */


#ifndef _SA_REMOTE_H_INCLUDED_
#define _SA_REMOTE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "sa_types.h"
#include "sa_json.h"
#include "sa_kb.h"


#define SA_EMBED_MAX_DIM  16384


typedef enum {
    SA_EMBED_OPENAI = 0,       /* {"model","input":[...]} -> data[].index */
    SA_EMBED_TEI               /* {"inputs":[...]} -> [[...]] */
} sa_embed_api_e;

typedef enum {
    SA_RERANK_COHERE = 0,      /* {"model","query","documents","top_n"} */
    SA_RERANK_TEI              /* {"query","texts"} */
} sa_rerank_api_e;


/* the API a URL speaks: a path ending in "/embed" is TEI's, anything
   else OpenAI's; for rerank a path ending in "/rerank" without a "/v1/"
   or "/v2/" before it is TEI's */
sa_embed_api_e sa_embed_api(const char *url, size_t len);
sa_rerank_api_e sa_rerank_api(const char *url, size_t len);

/* the body asking for the embedding of one text; model may be NULL or ""
   (TEI ignores it; OpenAI needs one) */
int sa_embed_request(sa_embed_api_e api, const char *model,
    const char *text, size_t len, sa_jw_t *w);

/* the embedding of the first input; *vec malloc()ed (dim floats).
   SA_OK, SA_INVALID (not an embeddings response, no vector, a vector
   that is empty, too long, or not numbers: err says which), SA_ERROR */
int sa_embed_response(sa_embed_api_e api, const char *body, size_t len,
    float **vec, size_t *dim, char *err, size_t errlen);


/* top_n 0: not sent (TEI never gets it) */
int sa_rerank_request(sa_rerank_api_e api, const char *model,
    const char *query, size_t qlen, const char *const *docs,
    const size_t *lens, size_t n, size_t top_n, sa_jw_t *w);

/* scores[i] gets document i's relevance, or -INFINITY when the reply
   does not score it (cut by top_n).  Either shape is accepted whatever was
   asked: a bare array is TEI's ({"index","score"}), an object with
   "results" ({"index","relevance_score"}) the others'.  SA_INVALID for
   anything else, an index out of range, a score that is not a number. */
int sa_rerank_response(const char *body, size_t len, size_t n,
    float *scores, char *err, size_t errlen);


/*
 * Qdrant.  The collection is kb-build's (kb-build/README.md): named
 * vectors "dense" and "sparse" (BM25 term weights, Qdrant's IDF
 * modifier), payload doc_id, title, section, anchor, url, text,
 * product_area, doc_type, version, tier, region, updated_ms, chunk, build.
 */

typedef struct {
    const float           *dense;         /* NULL: no dense prefetch */
    size_t                 dim;
    const uint32_t        *sparse_indices;
    const float           *sparse_values;
    size_t                 sparse_n;      /* 0: no sparse prefetch */
    const sa_kb_filter_t  *filter;        /* may be NULL */
    unsigned               flags;         /* SA_KB_MATCH_UNSET */
    size_t                 prefetch_limit;
    size_t                 limit;
    double                 rrf_k;
    double                 dense_weight;
    double                 sparse_weight;
} sa_qdrant_query_t;

/* POST /collections/NAME/points/query: the prefetches (each with the
   filter: a top-level filter alone would drop candidates after they were
   fetched) fused by RRF with k and weights; ids and scores only, the
   texts come from the cache or a retrieve.  SA_INVALID when there is no
   prefetch. */
int sa_qdrant_query_request(const sa_qdrant_query_t *q, sa_jw_t *w);

#define SA_QDRANT_ID_MAX  40

typedef struct {
    char      id[SA_QDRANT_ID_MAX];    /* a UUID, or an integer's digits */
    float     score;
} sa_qdrant_point_t;

/* the points of a query reply {"result":{"points":[...]}}, at most max */
int sa_qdrant_query_response(const char *body, size_t len,
    sa_qdrant_point_t *points, size_t max, size_t *n, char *err,
    size_t errlen);

/* POST /collections/NAME/points: {"ids":[...],"with_payload":true} */
int sa_qdrant_retrieve_request(const sa_qdrant_point_t *points, size_t n,
    sa_jw_t *w);

/* called for each point of a retrieve reply, with the chunk built from
   its payload (owned by the callee after the call, free it with
   sa_kb_chunk_free()); a non-zero return stops */
typedef int (*sa_qdrant_chunk_pt)(void *data, const char *id,
    sa_kb_chunk_t *chunk);

int sa_qdrant_retrieve_response(const char *body, size_t len,
    sa_qdrant_chunk_pt handler, void *data, char *err, size_t errlen);

/* Qdrant's error text from an error reply ({"status":{"error":...}}), or
   the start of a plain-text body, into buf */
void sa_remote_error_text(const char *body, size_t len, char *buf,
    size_t size);


/*
 * A chunk as the cache keeps it (the module caches Qdrant's texts in
 * LMDB): the sa_kb_chunk_t fields, serialised.  Decoded strings are
 * malloc()ed.
 */
int sa_remote_chunk_encode(const sa_kb_chunk_t *c, unsigned char **out,
    size_t *len);
int sa_remote_chunk_decode(const unsigned char *p, size_t len,
    sa_kb_chunk_t *c);


#endif /* _SA_REMOTE_H_INCLUDED_ */
