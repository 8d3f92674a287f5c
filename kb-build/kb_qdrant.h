
/*
 * Copyright (C) ngx_support_agent authors
 *
 * kb-build --qdrant: copies a built KB into a Qdrant collection, which
 * the module may search instead of (and falls back to) the KB file.
 *
 * The contract with the module's query side (kb-build/README.md):
 *
 *   collection  named vectors "dense" (the KB's dimension, Cosine; left
 *               out when the KB has no vectors) and sparse "sparse"
 *               ("modifier": "idf"); keyword payload indexes on doc_id,
 *               product_area, version, tier, region.
 *   point id    sa_kb_point_id() of the chunk's owner document and text
 *               hash (src/sa_sparse.h): a UUID string.
 *   vectors     "dense": the KB's stored vector (normalised; int8
 *               dequantised), when the chunk has one; "sparse":
 *               sa_sparse_document() of prefix "\n" text with the KB's
 *               analyzer, k1, b, the chunk's token length and avgdl.
 *   payload     doc_id, title, section, anchor, url (with "#anchor"),
 *               text (shown text, no prefix), product_area, doc_type,
 *               version, tier, region (strings; left out when empty),
 *               updated_ms (integer, left out when 0), chunk (the KB's
 *               chunk id), build (the KB's built_ms).
 *   stale       after the upserts, points whose build is not this KB's
 *               are deleted.
 */


#ifndef _KB_QDRANT_H_INCLUDED_
#define _KB_QDRANT_H_INCLUDED_


#include <stddef.h>


typedef struct {
    const char  *url;           /* http://host:6333, maybe with a path */
    const char  *collection;
    const char  *key;           /* "api-key", NULL for none */
    size_t       batch;         /* points per upsert */
    long         timeout;
    int          retries;
    int          quiet;         /* no progress on stderr */
} kb_qdrant_conf_t;

typedef struct {
    int            created;     /* the collection was created */
    unsigned long  indexes;     /* payload indexes created */
    unsigned long  points;      /* upserted */
    unsigned long  dense;       /* of them with a dense vector */
    unsigned long  requests;    /* retries counted */
    double         seconds;
} kb_qdrant_stats_t;


/* 0, or -1 with the reason printed (kb_error()) */
int kb_qdrant_sync(const kb_qdrant_conf_t *conf, const char *kb_path,
    kb_qdrant_stats_t *st);


#endif /* _KB_QDRANT_H_INCLUDED_ */
