
/*
 * Copyright (C) ngx_support_agent authors
 *
 * kb-build's embedding client: batches of texts to an OpenAI-compatible
 * /embeddings endpoint or to TEI's /embed (a URL whose path ends in
 * "/embed"), vectors back, every answer checked (count, index, numbers,
 * one dimension throughout).
 */


#ifndef _KB_EMBED_H_INCLUDED_
#define _KB_EMBED_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


/* bytes of one input: longer texts are cut (at a character), about
   8k tokens, OpenAI's limit per input; TEI truncates on its own */
#define KB_EMBED_MAX_INPUT  24000


typedef struct {
    const char  *url;
    const char  *model;       /* NULL: none (TEI only) */
    uint32_t     dim;         /* "dimensions" asked for; 0: not sent */
    const char  *key;         /* bearer token, NULL for none */
    long         timeout;     /* seconds per request */
    int          retries;
} kb_embed_conf_t;

typedef struct kb_embed_s  kb_embed_t;


/* NULL with err set (a URL that is not http(s), out of memory) */
kb_embed_t *kb_embed_new(const kb_embed_conf_t *conf, char *err,
    size_t errlen);
void kb_embed_free(kb_embed_t *e);

/* 1 for TEI's /embed, 0 for OpenAI's shape */
int kb_embed_tei(kb_embed_t *e);

/* the URL requests go to, without credentials or query */
const char *kb_embed_url(kb_embed_t *e);

/*
 * One request for n texts: n * kb_embed_dim() floats, owned by e and
 * valid until the next call, vector i for texts[i]; NULL on failure
 * (kb_embed_error() says why, naming the URL).  The first answer sets
 * the dimension; a later one with another is a failure.
 */
const float *kb_embed(kb_embed_t *e, const char *const *texts,
    const size_t *lens, size_t n);

uint32_t kb_embed_dim(kb_embed_t *e);
const char *kb_embed_error(kb_embed_t *e);

/* what was done: requests (retries counted), texts embedded, seconds */
void kb_embed_stats(kb_embed_t *e, unsigned long *requests,
    unsigned long *texts, double *seconds);


#endif /* _KB_EMBED_H_INCLUDED_ */
