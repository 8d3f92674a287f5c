
/*
 * Copyright (C) ngx_support_agent authors
 */


#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sa_query.h"
#include "sa_text.h"


#define SA_QUERY_LONG_WORDS  40
#define SA_QUERY_B           0.75f
#define SA_QUERY_RERANK      50
#define SA_QUERY_PAIRS       1.0f
#define SA_QUERY_MAX_BYTES   32768

#define SA_QUERY_NONE        ((uint32_t) -1)     /* no term, a break */
#define SA_QUERY_STOP        ((uint32_t) -2)     /* a stop word */


/* a set of terms with ids 0, 1, ...: open addressing over one buffer of
   NUL-terminated keys, so that a message of thousands of words stays
   linear */
typedef struct {
    uint32_t          hash;
    uint32_t          len;
    size_t            off;
} sa_query_key_t;

typedef struct {
    char             *data;
    size_t            len;
    size_t            cap;
    sa_query_key_t   *keys;
    size_t            n;
    size_t            kcap;
    uint32_t         *slots;        /* id + 1, 0 for empty */
    size_t            mask;         /* slots - 1, a power of two */
} sa_query_set_t;

/* a pair of adjacent query terms */
typedef struct {
    uint32_t          a;
    uint32_t          b;
    uint32_t          count;        /* in the query */
    uint32_t          df;           /* candidates that have it */
    uint32_t          tf;           /* in the candidate being read */
} sa_query_pair_t;

/* a word of the candidates: its terms' codes, at off in codes */
typedef struct {
    uint32_t          off;
    uint32_t          n;
} sa_query_span_t;

/* a pair found in a candidate */
typedef struct {
    uint32_t          cand;
    uint32_t          pair;
    uint32_t          tf;
} sa_query_occ_t;

typedef struct {
    sa_analyzer_t    *analyzer;
    sa_query_set_t    stop;
    sa_query_set_t    terms;        /* the message's terms, stop words out */

    sa_query_pair_t  *pairs;
    size_t            npairs;
    size_t            pcap;
    uint32_t         *pslots;       /* index + 1, 0 for empty */
    size_t            pmask;

    uint32_t         *touched;      /* pairs of the candidate being read */
    size_t            ntouched;
    size_t            tcap;

    sa_query_occ_t   *occ;
    size_t            nocc;
    size_t            ocap;

    /* the candidates' words seen so far and their terms' codes (a query
       term's id, SA_QUERY_STOP or SA_QUERY_NONE): a help center says the
       same words again and again, and analysis (stemming) is most of the
       cost of rescoring */
    sa_query_set_t    words;
    sa_query_span_t  *spans;        /* per word id */
    size_t            scap;
    uint32_t         *codes;
    size_t            ncodes;
    size_t            ccap;

    uint32_t          prev;         /* the term before, SA_QUERY_NONE after
                                       a break */
    int               content;      /* the word has a term kept */
    int               use_stop;
} sa_query_ctx_t;


static int sa_query_long(sa_kb_t *kb, const char *text, size_t len,
    const sa_kb_filter_t *filter, unsigned flags,
    const sa_query_conf_t *conf, size_t k, sa_kb_hit_t *hits, size_t *n);
static int sa_query_prepare(sa_query_ctx_t *ctx, const char *text,
    size_t len, char *out, size_t *out_len);
static int sa_query_rescore(sa_query_ctx_t *ctx, sa_kb_t *kb,
    const sa_query_conf_t *conf, sa_kb_hit_t *hits, size_t nr);
static int sa_query_stop_term(void *data, const char *term, size_t len,
    uint32_t position);
static int sa_query_word_term(void *data, const char *term, size_t len,
    uint32_t position);
static int sa_query_chunk_words(sa_query_ctx_t *ctx, const char *text,
    size_t len);
static int sa_query_code_term(void *data, const char *term, size_t len,
    uint32_t position);
static int sa_query_step(sa_query_ctx_t *ctx, uint32_t code);
static int sa_query_sentence_end(const char *w, size_t len);
static int sa_query_ws(unsigned char c);
static size_t sa_query_cut(const char *text, size_t len, size_t max);
static void sa_query_bm25(sa_kb_t *kb, const sa_query_conf_t *conf,
    double *k1, double *b, double *avgdl);
static uint32_t sa_query_hash(const char *s, size_t len);
static uint32_t sa_query_pair_hash(uint32_t a, uint32_t b);
static uint32_t sa_query_set_find(sa_query_set_t *s, const char *key,
    size_t len, uint32_t hash);
static int sa_query_set_add(sa_query_set_t *s, const char *key, size_t len,
    uint32_t *id);
static void sa_query_set_free(sa_query_set_t *s);
static uint32_t sa_query_pair_find(sa_query_ctx_t *ctx, uint32_t a,
    uint32_t b);
static int sa_query_pair_add(sa_query_ctx_t *ctx, uint32_t a, uint32_t b);
static void sa_query_ctx_free(sa_query_ctx_t *ctx);


/*
 * English function words (the Snowball stop list, with NLTK's forms of
 * n't), then conversational filler: what any customer message has,
 * whatever it is about.  Analyzed with the KB's analyzer, so "asked" and
 * "asking" go with "ask", and the list is the same stems as the index.
 */

const char  *const sa_query_stop_words[] = {
    "i", "me", "my", "myself", "we", "our", "ours", "ourselves", "you",
    "you're", "you've", "you'll", "you'd", "your", "yours", "yourself",
    "yourselves", "he", "him", "his", "himself", "she", "she's", "her",
    "hers", "herself", "it", "it's", "its", "itself", "they", "them",
    "their", "theirs", "themselves", "what", "which", "who", "whom",
    "this", "that", "that'll", "these", "those", "am", "is", "are", "was",
    "were", "be", "been", "being", "have", "has", "had", "having", "do",
    "does", "did", "doing", "a", "an", "the", "and", "but", "if", "or",
    "because", "as", "until", "while", "of", "at", "by", "for", "with",
    "about", "against", "between", "into", "through", "during", "before",
    "after", "above", "below", "to", "from", "up", "down", "in", "out",
    "on", "off", "over", "under", "again", "further", "then", "once",
    "here", "there", "when", "where", "why", "how", "all", "any", "both",
    "each", "few", "more", "most", "other", "some", "such", "no", "nor",
    "not", "only", "own", "same", "so", "than", "too", "very", "s", "t",
    "can", "will", "just", "don", "don't", "should", "should've", "now",
    "d", "ll", "m", "o", "re", "ve", "y", "ain", "aren", "aren't",
    "couldn", "couldn't", "didn", "didn't", "doesn", "doesn't", "hadn",
    "hadn't", "hasn", "hasn't", "haven", "haven't", "isn", "isn't", "ma",
    "mightn", "mightn't", "mustn", "mustn't", "needn", "needn't", "shan",
    "shan't", "shouldn", "shouldn't", "wasn", "wasn't", "weren",
    "weren't", "won", "won't", "wouldn", "wouldn't",
    "would", "could", "ought", "i'm", "he's", "we're", "they're", "i've",
    "we've", "they've", "i'd", "he'd", "she'd", "we'd", "they'd", "i'll",
    "he'll", "she'll", "we'll", "they'll", "can't", "cannot", "let's",
    "who's", "what's", "here's", "there's", "when's", "where's", "why's",
    "how's",

    "hi", "hello", "hey", "thanks", "thank", "please", "sorry", "ok",
    "okay", "yes", "yeah", "ask", "say", "tell", "want", "need", "like",
    "know", "think", "get", "go", "also", "really",
    NULL
};


void
sa_query_conf_init(sa_query_conf_t *conf)
{
    conf->long_words = SA_QUERY_LONG_WORDS;
    conf->k1 = -1;
    conf->b = SA_QUERY_B;
    conf->stop = 1;
    conf->rerank = SA_QUERY_RERANK;
    conf->pairs = SA_QUERY_PAIRS;
    conf->max_bytes = SA_QUERY_MAX_BYTES;
}


size_t
sa_query_words(const char *text, size_t len, size_t max)
{
    size_t  i, words;
    int     in;

    words = 0;
    in = 0;

    for (i = 0; i < len; i++) {
        if (sa_query_ws((unsigned char) text[i])) {
            in = 0;
            continue;
        }

        if (!in) {
            in = 1;
            words++;

            if (max != 0 && words >= max) {
                break;
            }
        }
    }

    return words;
}


int
sa_query_search(sa_kb_t *kb, const char *text, size_t len,
    const sa_kb_filter_t *filter, unsigned flags,
    const sa_query_conf_t *conf, size_t k, sa_kb_hit_t *hits, size_t *n)
{
    sa_query_conf_t  dflt;

    *n = 0;

    if (conf == NULL) {
        sa_query_conf_init(&dflt);
        conf = &dflt;
    }

    if (text == NULL) {
        len = 0;
        text = "";
    }

    len = sa_query_cut(text, len, conf->max_bytes);

    if (conf->long_words == 0
        || sa_query_words(text, len, conf->long_words) < conf->long_words)
    {
        return sa_kb_search_bm25_ex(kb, text, len, filter, flags, -1, -1, k,
                                    hits, n);
    }

    return sa_query_long(kb, text, len, filter, flags, conf, k, hits, n);
}


static int
sa_query_long(sa_kb_t *kb, const char *text, size_t len,
    const sa_kb_filter_t *filter, unsigned flags,
    const sa_query_conf_t *conf, size_t k, sa_kb_hit_t *hits, size_t *n)
{
    int              rc;
    char            *query;
    size_t           m, nt, nr, qlen;
    sa_kb_info_t     info;
    sa_kb_hit_t     *all;
    sa_query_ctx_t   ctx;

    if (k == 0) {
        return SA_OK;
    }

    if (sa_kb_info(kb, &info) != SA_OK) {
        return SA_ERROR;
    }

    memset(&ctx, 0, sizeof(sa_query_ctx_t));
    ctx.use_stop = conf->stop;
    ctx.prev = SA_QUERY_NONE;

    all = NULL;
    query = malloc(len + 1);
    ctx.analyzer = sa_analyzer_new(info.language);

    if (query == NULL || ctx.analyzer == NULL) {
        rc = SA_ERROR;
        goto done;
    }

    rc = sa_query_prepare(&ctx, text, len, query, &qlen);
    if (rc != SA_OK) {
        goto done;
    }

    if (ctx.terms.n == 0) {
        /* nothing but stop words: as a short message, better than
           nothing */
        rc = sa_kb_search_bm25_ex(kb, text, len, filter, flags, -1, -1, k,
                                  hits, n);
        goto done;
    }

    nr = (conf->pairs > 0 && ctx.npairs > 0) ? conf->rerank : 0;
    m = k > nr ? k : nr;

    all = malloc(m * sizeof(sa_kb_hit_t));
    if (all == NULL) {
        rc = SA_ERROR;
        goto done;
    }

    rc = sa_kb_search_bm25_ex(kb, query, qlen, filter, flags, conf->k1,
                              conf->b, m, all, &nt);
    if (rc != SA_OK) {
        goto done;
    }

    if (nr > nt) {
        nr = nt;
    }

    if (nr > 1) {
        rc = sa_query_rescore(&ctx, kb, conf, all, nr);
        if (rc != SA_OK) {
            goto done;
        }
    }

    /* the rescored chunks only gained, and each scored at least as much
       as any chunk after them: the order stays total */

    *n = nt < k ? nt : k;
    memcpy(hits, all, *n * sizeof(sa_kb_hit_t));

done:

    free(all);
    free(query);
    sa_query_ctx_free(&ctx);

    return rc;
}


/*
 * The message word by word (runs of non-white-space bytes): a word goes
 * into the query that BM25 reads when one of its terms is not a stop
 * word, and its terms that are not stop words make the pairs.  A pair
 * does not straddle a line break or the end of a sentence.
 */

static int
sa_query_prepare(sa_query_ctx_t *ctx, const char *text, size_t len,
    char *out, size_t *out_len)
{
    int          rc;
    size_t       i, start;
    const char  *p;

    *out_len = 0;

    if (ctx->use_stop) {
        for (i = 0; sa_query_stop_words[i] != NULL; i++) {
            p = sa_query_stop_words[i];

            rc = sa_analyze(ctx->analyzer, p, strlen(p), sa_query_stop_term,
                            ctx);
            if (rc != SA_OK) {
                return SA_ERROR;
            }
        }
    }

    i = 0;

    while (i < len) {
        if (sa_query_ws((unsigned char) text[i])) {
            if (text[i] == '\n') {
                ctx->prev = SA_QUERY_NONE;
            }

            i++;
            continue;
        }

        start = i;

        while (i < len && !sa_query_ws((unsigned char) text[i])) {
            i++;
        }

        ctx->content = 0;

        rc = sa_analyze(ctx->analyzer, text + start, i - start,
                        sa_query_word_term, ctx);
        if (rc != SA_OK) {
            return SA_ERROR;
        }

        if (ctx->content) {
            memcpy(out + *out_len, text + start, i - start);
            *out_len += i - start;

            if (i < len) {
                out[(*out_len)++] = ' ';
            }
        }

        if (sa_query_sentence_end(text + start, i - start)) {
            ctx->prev = SA_QUERY_NONE;
        }
    }

    out[*out_len] = '\0';

    return SA_OK;
}


static int
sa_query_stop_term(void *data, const char *term, size_t len,
    uint32_t position)
{
    sa_query_ctx_t  *ctx = data;
    uint32_t         id;

    return sa_query_set_add(&ctx->stop, term, len, &id);
}


static int
sa_query_word_term(void *data, const char *term, size_t len,
    uint32_t position)
{
    sa_query_ctx_t  *ctx = data;
    uint32_t         id;

    if (ctx->stop.n > 0
        && sa_query_set_find(&ctx->stop, term, len,
                             sa_query_hash(term, len))
           != SA_QUERY_NONE)
    {
        /* skipped, as in the chunks: "card for your business" pairs
           "card" with "business" */
        return SA_OK;
    }

    ctx->content = 1;

    if (sa_query_set_add(&ctx->terms, term, len, &id) != SA_OK) {
        return SA_ERROR;
    }

    if (ctx->prev != SA_QUERY_NONE
        && sa_query_pair_add(ctx, ctx->prev, id) != SA_OK)
    {
        return SA_ERROR;
    }

    ctx->prev = id;

    return SA_OK;
}


/*
 * Rescoring: each of the nr candidates is analyzed again as it was
 * indexed (prefix, then text), the query's pairs it has are counted, and
 * a pair scores as a BM25 term of a collection made of the candidates:
 * idf = ln(1 + (nr - df + 0.5) / (df + 0.5)), df the candidates that
 * have it, times how often the message has it.  A pair most candidates
 * have says little (they all got there through its words), one that
 * sets a few of them apart says most; the KB-wide frequency of a pair is
 * not known (the index has no positions), and the candidates' own would
 * make every pair look rare.
 */

static int
sa_query_rescore(sa_query_ctx_t *ctx, sa_kb_t *kb,
    const sa_query_conf_t *conf, sa_kb_hit_t *hits, size_t nr)
{
    int               rc;
    float            *norm;
    double            k1, b, avgdl, df, idf, tf, *bonus;
    size_t            i, j, cap;
    uint32_t          p;
    sa_kb_chunk_t     c;
    sa_query_occ_t   *o;
    sa_query_pair_t  *pair;

    sa_query_bm25(kb, conf, &k1, &b, &avgdl);

    norm = malloc(nr * sizeof(float));
    bonus = calloc(nr, sizeof(double));

    if (norm == NULL || bonus == NULL) {
        rc = SA_ERROR;
        goto done;
    }

    rc = SA_OK;

    for (i = 0; i < nr; i++) {
        rc = sa_kb_chunk(kb, hits[i].chunk, &c);
        if (rc != SA_OK) {
            rc = SA_ERROR;
            goto done;
        }

        norm[i] = (float) (k1 * (1 - b + b * c.tokens / avgdl));

        ctx->prev = SA_QUERY_NONE;

        if (c.prefix != NULL) {
            rc = sa_query_chunk_words(ctx, c.prefix, c.prefix_len);
        }

        ctx->prev = SA_QUERY_NONE;

        if (rc == SA_OK) {
            rc = sa_query_chunk_words(ctx, c.text, c.text_len);
        }

        sa_kb_chunk_free(&c);

        if (rc != SA_OK) {
            rc = SA_ERROR;
            goto done;
        }

        /* the pairs of this candidate */

        for (j = 0; j < ctx->ntouched; j++) {
            pair = &ctx->pairs[ctx->touched[j]];

            if (ctx->nocc == ctx->ocap) {
                cap = ctx->ocap ? ctx->ocap * 2 : 64;

                o = realloc(ctx->occ, cap * sizeof(sa_query_occ_t));
                if (o == NULL) {
                    rc = SA_ERROR;
                    goto done;
                }

                ctx->occ = o;
                ctx->ocap = cap;
            }

            o = &ctx->occ[ctx->nocc++];
            o->cand = (uint32_t) i;
            o->pair = ctx->touched[j];
            o->tf = pair->tf;

            pair->df++;
            pair->tf = 0;
        }

        ctx->ntouched = 0;
    }

    /* in candidate order, so that the sums are the same every time */

    for (j = 0; j < ctx->nocc; j++) {
        o = &ctx->occ[j];
        p = o->pair;
        df = ctx->pairs[p].df;
        idf = log(1 + (nr - df + 0.5) / (df + 0.5));
        tf = o->tf;

        bonus[o->cand] += conf->pairs * ctx->pairs[p].count * idf * tf
                          / (tf + norm[o->cand]);
    }

    for (i = 0; i < nr; i++) {
        hits[i].score = (float) (hits[i].score + bonus[i]);
    }

    qsort(hits, nr, sizeof(sa_kb_hit_t), sa_query_hit_cmp);

done:

    free(norm);
    free(bonus);

    return rc;
}


/*
 * A candidate's text word by word, as the message: a word's terms are
 * those its analysis gave the first time it was seen in this call.
 */

static int
sa_query_chunk_words(sa_query_ctx_t *ctx, const char *text, size_t len)
{
    size_t            i, start, j, cap;
    uint32_t          id, hash, first;
    sa_query_span_t  *span;

    i = 0;

    while (i < len) {
        if (sa_query_ws((unsigned char) text[i])) {
            i++;
            continue;
        }

        start = i;

        while (i < len && !sa_query_ws((unsigned char) text[i])) {
            i++;
        }

        hash = sa_query_hash(text + start, i - start);
        id = sa_query_set_find(&ctx->words, text + start, i - start, hash);

        if (id == SA_QUERY_NONE) {
            first = (uint32_t) ctx->ncodes;

            if (sa_analyze(ctx->analyzer, text + start, i - start,
                           sa_query_code_term, ctx)
                != SA_OK)
            {
                return SA_ERROR;
            }

            if (sa_query_set_add(&ctx->words, text + start, i - start, &id)
                != SA_OK)
            {
                return SA_ERROR;
            }

            if (id == ctx->scap) {
                cap = ctx->scap ? ctx->scap * 2 : 256;

                span = realloc(ctx->spans, cap * sizeof(sa_query_span_t));
                if (span == NULL) {
                    return SA_ERROR;
                }

                ctx->spans = span;
                ctx->scap = cap;
            }

            ctx->spans[id].off = first;
            ctx->spans[id].n = (uint32_t) ctx->ncodes - first;
        }

        span = &ctx->spans[id];

        for (j = 0; j < span->n; j++) {
            if (sa_query_step(ctx, ctx->codes[span->off + j]) != SA_OK) {
                return SA_ERROR;
            }
        }
    }

    return SA_OK;
}


static int
sa_query_code_term(void *data, const char *term, size_t len,
    uint32_t position)
{
    sa_query_ctx_t  *ctx = data;
    size_t           cap;
    uint32_t         code, hash, *codes;

    hash = sa_query_hash(term, len);

    if (ctx->stop.n > 0
        && sa_query_set_find(&ctx->stop, term, len, hash) != SA_QUERY_NONE)
    {
        code = SA_QUERY_STOP;

    } else {
        code = sa_query_set_find(&ctx->terms, term, len, hash);
    }

    if (ctx->ncodes == ctx->ccap) {
        cap = ctx->ccap ? ctx->ccap * 2 : 1024;

        codes = realloc(ctx->codes, cap * sizeof(uint32_t));
        if (codes == NULL) {
            return SA_ERROR;
        }

        ctx->codes = codes;
        ctx->ccap = cap;
    }

    ctx->codes[ctx->ncodes++] = code;

    return SA_OK;
}


/* one term of a candidate: stop words are skipped, as in the message; a
   term the message does not have breaks the pairs */

static int
sa_query_step(sa_query_ctx_t *ctx, uint32_t code)
{
    size_t            cap;
    uint32_t         *t, p;
    sa_query_pair_t  *pair;

    if (code == SA_QUERY_STOP) {
        return SA_OK;
    }

    if (code != SA_QUERY_NONE && ctx->prev != SA_QUERY_NONE) {
        p = sa_query_pair_find(ctx, ctx->prev, code);

        if (p != SA_QUERY_NONE) {
            pair = &ctx->pairs[p];

            if (pair->tf++ == 0) {
                if (ctx->ntouched == ctx->tcap) {
                    cap = ctx->tcap ? ctx->tcap * 2 : 64;

                    t = realloc(ctx->touched, cap * sizeof(uint32_t));
                    if (t == NULL) {
                        return SA_ERROR;
                    }

                    ctx->touched = t;
                    ctx->tcap = cap;
                }

                ctx->touched[ctx->ntouched++] = p;
            }
        }
    }

    ctx->prev = code;

    return SA_OK;
}


/* "done.", "(see above)", "**Note:**", "why?" */

static int
sa_query_sentence_end(const char *w, size_t len)
{
    while (len > 0 && memchr(")]}\"'*_`", w[len - 1], 8) != NULL) {
        len--;
    }

    return len > 0 && memchr(".!?;:", w[len - 1], 5) != NULL;
}


static int
sa_query_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
           || c == '\v';
}


/* at most max bytes, cut after the last white space that fits, else at
   a character boundary */

static size_t
sa_query_cut(const char *text, size_t len, size_t max)
{
    size_t  i;

    if (max == 0 || len <= max) {
        return len;
    }

    for (i = max; i > 0; i--) {
        if (sa_query_ws((unsigned char) text[i])) {
            return i;
        }
    }

    for (i = max; i > 0 && ((unsigned char) text[i] & 0xc0) == 0x80; i--) {
        /* a continuation byte */
    }

    return i;
}


static void
sa_query_bm25(sa_kb_t *kb, const sa_query_conf_t *conf, double *k1,
    double *b, double *avgdl)
{
    char          buf[64];
    double        tokens;
    sa_kb_info_t  info;

    *k1 = 0.9;
    *b = 0.4;
    *avgdl = 1;

    /* as sa_kb_search_bm25_ex() takes them */

    if (conf->k1 >= 0 && isfinite(conf->k1)) {
        *k1 = conf->k1;

    } else if (sa_kb_meta(kb, "k1", buf, sizeof(buf)) == SA_OK) {
        *k1 = strtod(buf, NULL);
    }

    if (conf->b >= 0) {
        *b = conf->b;

    } else if (sa_kb_meta(kb, "b", buf, sizeof(buf)) == SA_OK) {
        *b = strtod(buf, NULL);
    }

    if (*b > 1) {
        *b = 1;
    }

    if (sa_kb_info(kb, &info) == SA_OK && info.chunks > 0) {
        if (sa_kb_meta(kb, "tokens", buf, sizeof(buf)) == SA_OK) {
            tokens = strtod(buf, NULL);

            if (tokens > 0) {
                *avgdl = tokens / info.chunks;
            }
        }
    }
}


/* score descending, then chunk id ascending */

int
sa_query_hit_cmp(const void *one, const void *two)
{
    const sa_kb_hit_t  *a = one;
    const sa_kb_hit_t  *b = two;

    if (a->score != b->score) {
        return a->score > b->score ? -1 : 1;
    }

    return (a->chunk > b->chunk) - (a->chunk < b->chunk);
}


/* FNV-1a */

static uint32_t
sa_query_hash(const char *s, size_t len)
{
    size_t    i;
    uint32_t  h;

    h = 2166136261u;

    for (i = 0; i < len; i++) {
        h ^= (unsigned char) s[i];
        h *= 16777619u;
    }

    return h;
}


static uint32_t
sa_query_set_find(sa_query_set_t *s, const char *key, size_t len,
    uint32_t hash)
{
    size_t           i;
    uint32_t         id;
    sa_query_key_t  *e;

    if (s->slots == NULL) {
        return SA_QUERY_NONE;
    }

    for (i = hash & s->mask; s->slots[i] != 0; i = (i + 1) & s->mask) {
        id = s->slots[i] - 1;
        e = &s->keys[id];

        if (e->hash == hash && e->len == len
            && memcmp(s->data + e->off, key, len) == 0)
        {
            return id;
        }
    }

    return SA_QUERY_NONE;
}


static int
sa_query_set_add(sa_query_set_t *s, const char *key, size_t len,
    uint32_t *id)
{
    char            *d;
    size_t           i, cap, size;
    uint32_t         hash, *slots;
    sa_query_key_t  *keys;

    hash = sa_query_hash(key, len);

    *id = sa_query_set_find(s, key, len, hash);
    if (*id != SA_QUERY_NONE) {
        return SA_OK;
    }

    /* at most half full */

    if (2 * (s->n + 1) > s->mask + 1 || s->slots == NULL) {
        size = s->slots ? 2 * (s->mask + 1) : 64;

        slots = calloc(size, sizeof(uint32_t));
        if (slots == NULL) {
            return SA_ERROR;
        }

        for (i = 0; i < s->n; i++) {
            cap = s->keys[i].hash & (size - 1);

            while (slots[cap] != 0) {
                cap = (cap + 1) & (size - 1);
            }

            slots[cap] = (uint32_t) i + 1;
        }

        free(s->slots);
        s->slots = slots;
        s->mask = size - 1;
    }

    if (s->n == s->kcap) {
        cap = s->kcap ? s->kcap * 2 : 64;

        keys = realloc(s->keys, cap * sizeof(sa_query_key_t));
        if (keys == NULL) {
            return SA_ERROR;
        }

        s->keys = keys;
        s->kcap = cap;
    }

    if (s->len + len + 1 > s->cap) {
        cap = s->cap ? s->cap : 1024;

        while (cap < s->len + len + 1) {
            cap *= 2;
        }

        d = realloc(s->data, cap);
        if (d == NULL) {
            return SA_ERROR;
        }

        s->data = d;
        s->cap = cap;
    }

    memcpy(s->data + s->len, key, len);
    s->data[s->len + len] = '\0';

    s->keys[s->n].hash = hash;
    s->keys[s->n].len = (uint32_t) len;
    s->keys[s->n].off = s->len;
    s->len += len + 1;

    for (i = hash & s->mask; s->slots[i] != 0; i = (i + 1) & s->mask) {
        /* linear probing */
    }

    s->slots[i] = (uint32_t) s->n + 1;
    *id = (uint32_t) s->n++;

    return SA_OK;
}


static void
sa_query_set_free(sa_query_set_t *s)
{
    free(s->data);
    free(s->keys);
    free(s->slots);
}


static uint32_t
sa_query_pair_hash(uint32_t a, uint32_t b)
{
    uint64_t  h;

    h = ((uint64_t) a << 32 | b) * 0x9e3779b97f4a7c15ull;

    return (uint32_t) (h >> 32);
}


static uint32_t
sa_query_pair_find(sa_query_ctx_t *ctx, uint32_t a, uint32_t b)
{
    size_t            i;
    sa_query_pair_t  *p;

    if (ctx->pslots == NULL) {
        return SA_QUERY_NONE;
    }

    for (i = sa_query_pair_hash(a, b) & ctx->pmask;
         ctx->pslots[i] != 0;
         i = (i + 1) & ctx->pmask)
    {
        p = &ctx->pairs[ctx->pslots[i] - 1];

        if (p->a == a && p->b == b) {
            return ctx->pslots[i] - 1;
        }
    }

    return SA_QUERY_NONE;
}


static int
sa_query_pair_add(sa_query_ctx_t *ctx, uint32_t a, uint32_t b)
{
    size_t            i, j, size, cap;
    uint32_t          id, *slots;
    sa_query_pair_t  *pairs;

    id = sa_query_pair_find(ctx, a, b);
    if (id != SA_QUERY_NONE) {
        ctx->pairs[id].count++;
        return SA_OK;
    }

    if (2 * (ctx->npairs + 1) > ctx->pmask + 1 || ctx->pslots == NULL) {
        size = ctx->pslots ? 2 * (ctx->pmask + 1) : 64;

        slots = calloc(size, sizeof(uint32_t));
        if (slots == NULL) {
            return SA_ERROR;
        }

        for (i = 0; i < ctx->npairs; i++) {
            j = sa_query_pair_hash(ctx->pairs[i].a, ctx->pairs[i].b)
                & (size - 1);

            while (slots[j] != 0) {
                j = (j + 1) & (size - 1);
            }

            slots[j] = (uint32_t) i + 1;
        }

        free(ctx->pslots);
        ctx->pslots = slots;
        ctx->pmask = size - 1;
    }

    if (ctx->npairs == ctx->pcap) {
        cap = ctx->pcap ? ctx->pcap * 2 : 64;

        pairs = realloc(ctx->pairs, cap * sizeof(sa_query_pair_t));
        if (pairs == NULL) {
            return SA_ERROR;
        }

        ctx->pairs = pairs;
        ctx->pcap = cap;
    }

    pairs = &ctx->pairs[ctx->npairs];
    pairs->a = a;
    pairs->b = b;
    pairs->count = 1;
    pairs->df = 0;
    pairs->tf = 0;

    for (i = sa_query_pair_hash(a, b) & ctx->pmask;
         ctx->pslots[i] != 0;
         i = (i + 1) & ctx->pmask)
    {
        /* linear probing */
    }

    ctx->pslots[i] = (uint32_t) ctx->npairs + 1;
    ctx->npairs++;

    return SA_OK;
}


static void
sa_query_ctx_free(sa_query_ctx_t *ctx)
{
    sa_analyzer_free(ctx->analyzer);
    sa_query_set_free(&ctx->stop);
    sa_query_set_free(&ctx->terms);
    free(ctx->pairs);
    free(ctx->pslots);
    free(ctx->touched);
    free(ctx->occ);
    sa_query_set_free(&ctx->words);
    free(ctx->spans);
    free(ctx->codes);
}
