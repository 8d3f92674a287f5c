
/*
 * Copyright (C) ngx_support_agent authors
 *
 * What kb-build and the module must compute alike for Qdrant: the sparse
 * BM25 vectors of chunks and queries, and the ids of points.  Pure C, no
 * nginx types.
 *
 * Sparse vectors ("sparse" in kb-build's collection, created with
 * "modifier": "idf").  Qdrant scores a point by the sum over the indices
 * the query and the point share of query value * idf(index) * point
 * value, with idf = ln(1 + (N - df + 0.5) / (df + 0.5)) from the
 * collection's live statistics.  So a point carries the term-frequency
 * part of BM25 and the query the count of each term: the sum is our
 * embedded BM25 (src/sa_kb.h) up to the constant factor k1 + 1, with the
 * same analyzer, k1, b, and token lengths, and N, df counted by Qdrant.
 *
 *   terms      the KB's analyzer (sa_analyzer_new() of the KB's meta
 *              "language"), over what the KB indexed: the chunk's prefix,
 *              a newline, its text (the analyzer breaks at the newline,
 *              so the terms are the KB's).  Queries: the customer's text
 *              as it is.
 *   index      sa_sparse_index(term): MurmurHash3 x86 32-bit, seed 0, of
 *              the term's UTF-8 bytes, as a signed int32, absolute value
 *              (fastembed's Qdrant/bm25 ids; INT32_MIN gives 2^31).
 *   document   per distinct term: tf (k1 + 1) / (tf + k1 (1 - b + b dl /
 *              avgdl)), tf its count in the chunk, dl the chunk's token
 *              length as the KB counts it (sa_kb_chunk_t.tokens), avgdl
 *              the KB's meta tokens / chunks, k1 and b the KB's meta
 *              (0.9 and 0.4 by default); terms whose indices collide add
 *              up.
 *   query      per distinct index: the number of times its terms occur
 *              in the query (a repeated word counts again, as in
 *              sa_kb_search_bm25()).
 *
 * Vectors come out with their indices in increasing order, each once.
 */


#ifndef _SA_SPARSE_H_INCLUDED_
#define _SA_SPARSE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "sa_types.h"
#include "sa_json.h"
#include "sa_kb.h"
#include "sa_text.h"


/* a sparse vector; zero it before the first use, reuse it, free it with
   sa_sparse_free() */
typedef struct {
    uint32_t  *indices;
    float     *values;
    size_t     n;
    size_t     cap;
} sa_sparse_t;


uint32_t sa_sparse_index(const char *term, size_t len);

/* MurmurHash3 x86 32 (Austin Appleby's MurmurHash3_x86_32) */
uint32_t sa_murmur3_32(const void *data, size_t len, uint32_t seed);

/* the vector of a chunk: text is the indexed text (prefix "\n" text);
   SA_OK (also with out->n == 0: no terms), SA_ERROR (out of memory) */
int sa_sparse_document(sa_analyzer_t *a, const char *text, size_t len,
    uint32_t dl, double avgdl, double k1, double b, sa_sparse_t *out);

/* the vector of a query; SA_OK (out->n == 0 when it has no terms: send
   no sparse prefetch then), SA_ERROR (out of memory) */
int sa_sparse_query(sa_analyzer_t *a, const char *text, size_t len,
    sa_sparse_t *out);

void sa_sparse_free(sa_sparse_t *s);

/* {"indices":[...],"values":[...]} as a value (after a key, in an array) */
int sa_sparse_json(const sa_sparse_t *s, sa_jw_t *w);

/* a float as the fewest digits that read back as the same float (0.1,
   not 0.10000000149011612); NaN and infinities: SA_INVALID */
int sa_sparse_jw_float(sa_jw_t *w, float v);


/*
 * A chunk's point id in Qdrant: a UUID (version 5 bits, RFC 4122 variant)
 * made of sa_kb_hash(), seed 0, of the owner document's id, a NUL byte
 * and the 16-byte hash of the chunk's text (sa_kb_chunk_t.doc_id and
 * .hash): byte 6 = (h[6] & 0x0f) | 0x50, byte 8 = (h[8] & 0x3f) | 0x80,
 * lower-case hex 8-4-4-4-12.  The same text of the same document keeps
 * its id across builds (and chunk ids); out gets 36 characters and a NUL.
 */

#define SA_KB_POINT_ID_SIZE  37

void sa_kb_point_id(const char *doc_id, size_t len,
    const unsigned char text_hash[SA_KB_HASH_SIZE],
    char out[SA_KB_POINT_ID_SIZE]);


#endif /* _SA_SPARSE_H_INCLUDED_ */
