
/*
 * Copyright (C) ngx_support_agent authors
 *
 * The intent router: a linear model over hashed word, word pair and
 * character n-gram features, trained by softmax regression, plus the
 * operator's rules and routes (sa_intent.h).
 */


#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sa_intent.h"
#include "sa_text.h"


#define SA_INTENT_MAGIC     "SAINTENT"
#define SA_INTENT_HEADER    64
#define SA_INTENT_MAX_K     65536
#define SA_INTENT_MAX_PRIO  1000000
#define SA_INTENT_SHAPE     8        /* digits kept of a word's shape */


typedef struct {
    uint64_t       *terms;          /* hashes of the phrase's terms */
    size_t          n;
} sa_phrase_t;


/* one " + " part of a pattern: any of its '|' phrases */
typedef struct {
    sa_phrase_t    *alts;
    size_t          nalts;
    int             negate;
} sa_part_t;


typedef struct {
    char           *intent;
    sa_route_e      route;
    char           *name;           /* "knowledge", "action:refund" */
    char           *tool;           /* in name, after "action:" */
} sa_route_t;


/* "threshold INTENT F" */
typedef struct {
    char           *intent;
    float           value;
} sa_floor_t;


typedef struct {
    int             priority;
    unsigned        line;
    char           *intent;
    int             index;          /* model class, or -1 */
    char           *pattern;
    sa_part_t      *parts;
    size_t          nparts;
    const sa_route_t  *route;
} sa_rule_t;


/* the feature extractor's state while one text is analyzed */
typedef struct {
    void          (*emit)(void *data, uint32_t key, float w);
    void           *data;
    unsigned        flags;
    float           ww;             /* the weight of word features */
    unsigned        cmin;
    unsigned        cmax;
    uint64_t        prev;           /* the previous word's hash */
    float           norm;           /* sum of squared weights */
} sa_fx_t;


struct sa_intent_s {
    unsigned char  *image;
    size_t          size;

    uint32_t        format;
    uint32_t        K;
    uint32_t        F;
    uint32_t        S;
    unsigned        flags;
    unsigned        cmin;
    unsigned        cmax;
    float           ww;
    float           file_threshold;
    float           threshold;

    const char    **names;
    const float    *bias;
    const uint32_t *slots;
    const float    *weights;
    const char     *rules_text;
    size_t          rules_len;

    sa_rule_t      *rules;          /* by priority, then line */
    size_t          nrules;
    sa_route_t     *routes;
    size_t          nroutes;
    sa_route_t      default_route;
    sa_route_t      oos_route;
    const sa_route_t  **class_route;   /* K */
    float          *class_floor;    /* K: "threshold INTENT F", else 0 */
    uint32_t        noos;           /* classes routed out_of_scope */
    sa_floor_t     *floors;
    size_t          nfloors;
    int             rules_threshold;   /* the rules file set one */
    float           rules_threshold_v;

    sa_analyzer_t  *simple;
    sa_analyzer_t  *english;

    float          *scores;         /* K */
    uint64_t       *terms;          /* the message's english terms */
    size_t          nterms;
    size_t          terms_cap;

    char           *path;
    dev_t           dev;
    ino_t           ino;
    off_t           fsize;
    struct timespec mtime;
};


static uint64_t sa_fnv64(uint64_t h, const void *p, size_t len);
static uint32_t sa_fnv32(const unsigned char *p, size_t len);
static uint32_t sa_fold(uint64_t h);
static void sa_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int sa_features(sa_analyzer_t *simple, sa_analyzer_t *english,
    sa_fx_t *fx, const char *text, size_t len);
static int sa_fx_word(void *data, const char *term, size_t len,
    uint32_t position);
static int sa_fx_stem(void *data, const char *term, size_t len,
    uint32_t position);
static int sa_intent_parse(sa_intent_t *m, char *err, size_t errlen);
static int sa_rules_parse(sa_intent_t *m, const char *text, size_t len,
    char *err, size_t errlen);
static int sa_rules_threshold(sa_intent_t *m, const char *p, const char *e,
    unsigned line, char *err, size_t errlen);
static int sa_part_parse(sa_intent_t *m, sa_rule_t *rule, sa_part_t *part,
    const char *a, const char *b, char *err, size_t errlen);
static void sa_rules_free(sa_intent_t *m);
static int sa_rules_match(sa_intent_t *m, const char *text, size_t len,
    const sa_rule_t **rule);
static int sa_route_parse(sa_route_t *r, const char *target, size_t len);
static const sa_route_t *sa_route_find(const sa_intent_t *m,
    const char *intent);
static int sa_name_cmp(const void *one, const void *two);
static uint32_t sa_decide(const sa_intent_t *m, float *in_scope);


static const char  *sa_route_names[] = {
    "knowledge", "action", "escalate", "smalltalk", "out_of_scope"
};


/* FNV-1a, 64 bits: features and rule terms */

static uint64_t
sa_fnv64(uint64_t h, const void *p, size_t len)
{
    const unsigned char  *s = p;

    while (len--) {
        h ^= *s++;
        h *= 0x100000001b3ULL;
    }

    return h;
}


static uint32_t
sa_fnv32(const unsigned char *p, size_t len)
{
    uint32_t  h = 2166136261u;

    while (len--) {
        h ^= *p++;
        h *= 16777619u;
    }

    return h;
}


/* 0 marks an empty slot, so no feature hashes to it */

static uint32_t
sa_fold(uint64_t h)
{
    uint32_t  k;

    k = (uint32_t) (h ^ (h >> 32));

    return k ? k : 1;
}


static void
sa_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list  ap;

    if (err == NULL || errlen == 0) {
        return;
    }

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}


#define SA_FNV_INIT  0xcbf29ce484222325ULL


/*
 * Features.  The same code runs in training and in classification, so
 * the two can never disagree on what a message is.
 */

static int
sa_features(sa_analyzer_t *simple, sa_analyzer_t *english, sa_fx_t *fx,
    const char *text, size_t len)
{
    int  rc;

    if (len > SA_INTENT_MAX_TEXT) {
        len = SA_INTENT_MAX_TEXT;
    }

    fx->prev = sa_fnv64(SA_FNV_INIT, "^", 1);
    fx->norm = 0;

    rc = sa_analyze(simple, text, len, sa_fx_word, fx);
    if (rc != SA_OK) {
        return SA_ERROR;
    }

    if ((fx->flags & SA_INTENT_F_STEMS) && english != NULL) {
        rc = sa_analyze(english, text, len, sa_fx_stem, fx);
        if (rc != SA_OK) {
            return SA_ERROR;
        }
    }

    return SA_OK;
}


static int
sa_fx_word(void *data, const char *term, size_t len, uint32_t position)
{
    sa_fx_t        *fx = data;
    size_t          i, j, n, digits;
    uint64_t        w;
    unsigned char   buf[SA_TEXT_MAX_TERM + 3];

    /* a word with digits is its shape: "#W2611340" and "4217" are
       instances, not words to learn */
    digits = 0;
    j = 0;
    buf[j++] = '<';

    for (i = 0; i < len; i++) {
        if (term[i] >= '0' && term[i] <= '9') {
            if (++digits > SA_INTENT_SHAPE) {
                continue;
            }

            buf[j++] = '0';

        } else {
            buf[j++] = (unsigned char) term[i];
        }
    }

    buf[j++] = '>';

    w = sa_fnv64(SA_FNV_INIT, buf + 1, j - 2);

    if (fx->flags & SA_INTENT_F_WORDS) {
        fx->emit(fx->data, sa_fold(sa_fnv64(w, "w", 1)), fx->ww);
        fx->norm += fx->ww * fx->ww;
    }

    if (fx->flags & SA_INTENT_F_BIGRAMS) {
        fx->emit(fx->data, sa_fold(sa_fnv64(fx->prev ^ (w * 31), "b", 1)),
                 fx->ww);
        fx->norm += fx->ww * fx->ww;
    }

    fx->prev = w;

    if (digits || fx->cmax == 0) {
        return 0;
    }

    for (n = fx->cmin; n <= fx->cmax && n <= j; n++) {
        for (i = 0; i + n <= j; i++) {
            fx->emit(fx->data,
                     sa_fold(sa_fnv64(sa_fnv64(SA_FNV_INIT, "c", 1),
                                      buf + i, n)), 1.0f);
            fx->norm += 1.0f;
        }
    }

    return 0;
}


static int
sa_fx_stem(void *data, const char *term, size_t len, uint32_t position)
{
    sa_fx_t  *fx = data;

    fx->emit(fx->data,
             sa_fold(sa_fnv64(sa_fnv64(SA_FNV_INIT, "s", 1), term, len)),
             fx->ww);
    fx->norm += fx->ww * fx->ww;

    return 0;
}


void
sa_intent_conf_init(sa_intent_conf_t *conf)
{
    memset(conf, 0, sizeof(sa_intent_conf_t));

    conf->epochs = 12;
    conf->rate = 0.1f;
    conf->l2 = 1e-6f;
    conf->seed = 1;
    conf->min_count = 1;
    conf->features = SA_INTENT_F_WORDS | SA_INTENT_F_BIGRAMS
                     | SA_INTENT_F_STEMS;
    conf->char_min = 3;
    conf->char_max = 5;
    conf->threshold = -1;
    conf->word_weight = 2;
}


/*
 * Training.
 */

typedef struct {
    uint32_t   *keys;               /* the dictionary: feature -> row */
    uint32_t   *rows;
    uint32_t   *counts;
    size_t      cap;                /* a power of two */
    size_t      used;

    uint32_t   *occ;                /* one example's features */
    float      *occw;               /* and their weights */
    size_t      nocc;
    size_t      occ_cap;
    int         oom;
} sa_dict_t;


typedef struct {
    uint32_t   *rows;               /* all examples' features, merged */
    float      *vals;
    size_t     *start;              /* n + 1 */
    uint32_t   *label;
} sa_data_t;


static void
sa_collect(void *data, uint32_t key, float w)
{
    sa_dict_t  *d = data;
    float      *q;
    size_t      cap;
    uint32_t   *p;

    if (d->oom) {
        return;
    }

    if (d->nocc == d->occ_cap) {
        cap = d->occ_cap ? d->occ_cap * 2 : 1024;

        p = realloc(d->occ, cap * sizeof(uint32_t));
        if (p != NULL) {
            d->occ = p;
        }

        q = realloc(d->occw, cap * sizeof(float));
        if (q != NULL) {
            d->occw = q;
        }

        if (p == NULL || q == NULL) {
            d->oom = 1;
            return;
        }

        d->occ_cap = cap;
    }

    d->occ[d->nocc] = key;
    d->occw[d->nocc++] = w;
}


/* the slot of key in the dictionary (empty or holding key) */

static size_t
sa_dict_slot(const sa_dict_t *d, uint32_t key)
{
    size_t  i;

    i = key & (d->cap - 1);

    while (d->keys[i] != 0 && d->keys[i] != key) {
        i = (i + 1) & (d->cap - 1);
    }

    return i;
}


static int
sa_dict_grow(sa_dict_t *d)
{
    size_t     i, j, cap;
    sa_dict_t  n;

    cap = d->cap ? d->cap * 2 : 65536;

    n = *d;
    n.cap = cap;
    n.keys = calloc(cap, sizeof(uint32_t));
    n.rows = calloc(cap, sizeof(uint32_t));
    n.counts = calloc(cap, sizeof(uint32_t));

    if (n.keys == NULL || n.rows == NULL || n.counts == NULL) {
        free(n.keys);
        free(n.rows);
        free(n.counts);
        return SA_ERROR;
    }

    for (i = 0; i < d->cap; i++) {
        if (d->keys[i] == 0) {
            continue;
        }

        j = sa_dict_slot(&n, d->keys[i]);
        n.keys[j] = d->keys[i];
        n.rows[j] = d->rows[i];
        n.counts[j] = d->counts[i];
    }

    free(d->keys);
    free(d->rows);
    free(d->counts);
    *d = n;

    return SA_OK;
}


typedef struct {
    uint32_t    row;
    float       w;
} sa_pair_t;


/* by row, then weight: qsort() is not stable, the order must not depend
   on it */

static int
sa_pair_cmp(const void *one, const void *two)
{
    const sa_pair_t  *a = one, *b = two;

    if (a->row != b->row) {
        return (a->row > b->row) - (a->row < b->row);
    }

    return (a->w > b->w) - (a->w < b->w);
}


static int
sa_name_cmp(const void *one, const void *two)
{
    return strcmp(*(char *const *) one, *(char *const *) two);
}


static int
sa_name_ok(const char *name)
{
    size_t  i, len;

    len = strlen(name);

    if (len == 0 || len > SA_INTENT_NAME_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if ((unsigned char) name[i] <= ' ' || name[i] == 0x7f) {
            return 0;
        }
    }

    return 1;
}


static uint32_t
sa_xorshift(uint32_t *s)
{
    uint32_t  x = *s;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;

    return x;
}


/* the class names, sorted and unique */

static int
sa_train_names(const sa_intent_example_t *ex, size_t n, char ***names,
    uint32_t *K, char *err, size_t errlen)
{
    size_t   i, k;
    char   **all;

    all = malloc(n * sizeof(char *));
    if (all == NULL) {
        return SA_ERROR;
    }

    for (i = 0; i < n; i++) {
        if (ex[i].intent == NULL || !sa_name_ok(ex[i].intent)) {
            sa_errf(err, errlen, "example %zu: the intent must be 1..%d "
                    "bytes without spaces", i + 1, SA_INTENT_NAME_MAX);
            free(all);
            return SA_INVALID;
        }

        all[i] = (char *) ex[i].intent;
    }

    qsort(all, n, sizeof(char *), sa_name_cmp);

    for (i = 0, k = 0; i < n; i++) {
        if (k == 0 || strcmp(all[k - 1], all[i]) != 0) {
            all[k++] = all[i];
        }
    }

    if (k > SA_INTENT_MAX_K) {
        sa_errf(err, errlen, "more than %d intents", SA_INTENT_MAX_K);
        free(all);
        return SA_INVALID;
    }

    *names = all;
    *K = (uint32_t) k;

    return SA_OK;
}


static uint32_t
sa_train_label(char **names, uint32_t K, const char *intent)
{
    char  **p;

    p = bsearch(&intent, names, K, sizeof(char *), sa_name_cmp);

    return (uint32_t) (p - names);
}


/* every example's features, as merged (row, value) pairs over the
   dictionary of features seen at least min_count times */

static int
sa_train_featurize(const sa_intent_example_t *ex, size_t n,
    const sa_intent_conf_t *conf, sa_analyzer_t *simple,
    sa_analyzer_t *english, sa_dict_t *d, sa_data_t *data, uint32_t *F)
{
    size_t      i, j, s, total, pass, nf, at, np, npairs;
    uint32_t    row;
    float       inv;
    sa_fx_t     fx;
    sa_pair_t  *pairs;

    memset(&fx, 0, sizeof(sa_fx_t));
    fx.emit = sa_collect;
    fx.data = d;
    fx.flags = conf->features;
    fx.cmin = conf->char_min;
    fx.cmax = conf->char_max;
    fx.ww = conf->word_weight;

    pairs = NULL;
    npairs = 0;

    data->start = calloc(n + 1, sizeof(size_t));
    if (data->start == NULL) {
        return SA_ERROR;
    }

    total = 0;

    for (pass = 0; pass < 2; pass++) {
        nf = 0;
        at = 0;

        for (i = 0; i < n; i++) {
            d->nocc = 0;

            if (sa_features(simple, english, &fx, ex[i].text, ex[i].len)
                != SA_OK || d->oom)
            {
                free(pairs);
                return SA_ERROR;
            }

            if (pass == 0) {
                total += d->nocc;
                data->start[i + 1] = total;

                for (j = 0; j < d->nocc; j++) {
                    if (d->used * 2 >= d->cap && sa_dict_grow(d) != SA_OK) {
                        free(pairs);
                        return SA_ERROR;
                    }

                    s = sa_dict_slot(d, d->occ[j]);
                    if (d->keys[s] == 0) {
                        d->keys[s] = d->occ[j];
                        d->rows[s] = UINT32_MAX;
                        d->used++;
                    }

                    d->counts[s]++;
                }

                continue;
            }

            /* rows in order of first appearance: deterministic */
            inv = fx.norm > 0 ? 1.0f / sqrtf(fx.norm) : 0;

            if (d->nocc > npairs) {
                free(pairs);
                npairs = d->occ_cap;
                pairs = malloc(npairs * sizeof(sa_pair_t));
                if (pairs == NULL) {
                    return SA_ERROR;
                }
            }

            np = 0;

            for (j = 0; j < d->nocc; j++) {
                s = sa_dict_slot(d, d->occ[j]);
                if (d->counts[s] < conf->min_count) {
                    continue;
                }

                if (d->rows[s] == UINT32_MAX) {
                    d->rows[s] = (uint32_t) nf++;
                }

                pairs[np].row = d->rows[s];
                pairs[np].w = d->occw[j];
                np++;
            }

            qsort(pairs, np, sizeof(sa_pair_t), sa_pair_cmp);

            data->start[i] = at;

            for (j = 0; j < np; j++) {
                row = pairs[j].row;

                if (at > data->start[i] && data->rows[at - 1] == row) {
                    data->vals[at - 1] += pairs[j].w * inv;
                    continue;
                }

                data->rows[at] = row;
                data->vals[at] = pairs[j].w * inv;
                at++;
            }
        }

        if (pass == 0) {
            data->rows = malloc((total + 1) * sizeof(uint32_t));
            data->vals = malloc((total + 1) * sizeof(float));
            if (data->rows == NULL || data->vals == NULL) {
                free(pairs);
                return SA_ERROR;
            }

        } else {
            data->start[n] = at;
            *F = (uint32_t) nf;
        }
    }

    free(pairs);

    return SA_OK;
}


/* softmax of z[0..K) in place */

static void
sa_softmax(float *z, uint32_t K)
{
    uint32_t  k;
    float     max, sum;

    max = z[0];

    for (k = 1; k < K; k++) {
        if (z[k] > max) {
            max = z[k];
        }
    }

    sum = 0;

    for (k = 0; k < K; k++) {
        z[k] = expf(z[k] - max);
        sum += z[k];
    }

    for (k = 0; k < K; k++) {
        z[k] /= sum;
    }
}


/*
 * Softmax regression by AdaGrad with one accumulator per feature row
 * (the row's mean squared gradient): about as good as per-weight AdaGrad
 * on sparse text, with one square root per feature instead of K.  The
 * L2 penalty is applied to the rows an example touches, when it touches
 * them.
 */

static int
sa_train_sgd(const sa_data_t *data, size_t n, uint32_t K, uint32_t F,
    const sa_intent_conf_t *conf, float *W, float *bias)
{
    size_t     i, e, j, t;
    uint32_t   k, seed, *order, tmp, row;
    float     *z, *g, *G, Gb, step, x, sum, *w;

    order = malloc(n * sizeof(uint32_t));
    z = malloc(K * sizeof(float));
    g = malloc(K * sizeof(float));
    G = calloc(F ? F : 1, sizeof(float));

    if (order == NULL || z == NULL || g == NULL || G == NULL) {
        free(order);
        free(z);
        free(g);
        free(G);
        return SA_ERROR;
    }

    for (i = 0; i < n; i++) {
        order[i] = (uint32_t) i;
    }

    seed = conf->seed ? conf->seed : 1;
    Gb = 0;

    for (e = 0; e < conf->epochs; e++) {

        for (i = n; i > 1; i--) {
            j = sa_xorshift(&seed) % i;
            tmp = order[i - 1];
            order[i - 1] = order[j];
            order[j] = tmp;
        }

        for (t = 0; t < n; t++) {
            i = order[t];

            memcpy(z, bias, K * sizeof(float));

            for (j = data->start[i]; j < data->start[i + 1]; j++) {
                w = &W[(size_t) data->rows[j] * K];
                x = data->vals[j];

                for (k = 0; k < K; k++) {
                    z[k] += w[k] * x;
                }
            }

            sa_softmax(z, K);

            sum = 0;

            for (k = 0; k < K; k++) {
                g[k] = z[k] - (k == data->label[i] ? 1.0f : 0.0f);
                sum += g[k] * g[k];
            }

            Gb += sum / K;
            step = conf->rate / sqrtf(Gb + 1e-8f);

            for (k = 0; k < K; k++) {
                bias[k] -= step * g[k];
            }

            for (j = data->start[i]; j < data->start[i + 1]; j++) {
                row = data->rows[j];
                w = &W[(size_t) row * K];
                x = data->vals[j];

                G[row] += sum * x * x / K;
                step = conf->rate / sqrtf(G[row] + 1e-8f);

                for (k = 0; k < K; k++) {
                    w[k] -= step * (g[k] * x + conf->l2 * w[k]);
                }
            }
        }
    }

    free(order);
    free(z);
    free(g);
    free(G);

    return SA_OK;
}


static size_t
sa_align8(size_t n)
{
    return (n + 7) & ~(size_t) 7;
}


static void
sa_put32(unsigned char *p, uint32_t v)
{
    memcpy(p, &v, 4);
}


/* the file image of a trained model */

static unsigned char *
sa_train_image(const sa_intent_conf_t *conf, char **names, uint32_t K,
    uint32_t F, const sa_dict_t *d, const float *W, const float *bias,
    float threshold, size_t *size)
{
    size_t          i, names_len, rules_len, off_names, off_rules, off_bias,
                    off_slots, off_w, total, s;
    uint32_t        S, key, *slots;
    uint64_t        total64;
    unsigned char  *img;

    names_len = 0;

    for (i = 0; i < K; i++) {
        names_len += strlen(names[i]) + 1;
    }

    rules_len = conf->rules ? conf->rules_len : 0;

    S = 16;
    while (S <= (uint64_t) F * 2) {
        S *= 2;
    }

    off_names = SA_INTENT_HEADER;
    off_rules = sa_align8(off_names + names_len);
    off_bias = sa_align8(off_rules + rules_len);
    off_slots = sa_align8(off_bias + (size_t) K * 4);
    off_w = off_slots + (size_t) S * 8;
    total = off_w + (size_t) F * K * 4;

    img = calloc(1, total);
    if (img == NULL) {
        return NULL;
    }

    memcpy(img, SA_INTENT_MAGIC, 8);
    sa_put32(img + 8, SA_INTENT_FORMAT);
    sa_put32(img + 12, SA_INTENT_HEADER);
    total64 = total;
    memcpy(img + 16, &total64, 8);
    sa_put32(img + 28, K);
    sa_put32(img + 32, F);
    sa_put32(img + 36, S);
    sa_put32(img + 40, conf->features);
    img[44] = (unsigned char) (conf->char_max ? conf->char_min : 0);
    img[45] = (unsigned char) conf->char_max;
    memcpy(img + 48, &threshold, 4);
    sa_put32(img + 52, (uint32_t) names_len);
    sa_put32(img + 56, (uint32_t) rules_len);
    memcpy(img + 60, &conf->word_weight, 4);

    for (i = 0, s = off_names; i < K; i++) {
        memcpy(img + s, names[i], strlen(names[i]) + 1);
        s += strlen(names[i]) + 1;
    }

    if (rules_len) {
        memcpy(img + off_rules, conf->rules, rules_len);
    }

    memcpy(img + off_bias, bias, (size_t) K * 4);

    slots = (uint32_t *) (img + off_slots);

    for (i = 0; i < d->cap; i++) {
        if (d->keys[i] == 0 || d->rows[i] == UINT32_MAX) {
            continue;
        }

        key = d->keys[i];
        s = key & (S - 1);

        while (slots[s * 2] != 0) {
            s = (s + 1) & (S - 1);
        }

        slots[s * 2] = key;
        slots[s * 2 + 1] = d->rows[i];
    }

    memcpy(img + off_w, W, (size_t) F * K * 4);

    sa_put32(img + 24, sa_fnv32(img + SA_INTENT_HEADER,
                                total - SA_INTENT_HEADER));

    *size = total;

    return img;
}


int
sa_intent_train(const sa_intent_example_t *examples, size_t n,
    const sa_intent_conf_t *conf, sa_intent_t **model, char *err,
    size_t errlen)
{
    int              rc;
    char           **names;
    size_t           i, size;
    uint32_t         K, F;
    float           *W, *bias, threshold;
    sa_dict_t        d;
    sa_data_t        data;
    sa_intent_t     *probe;
    unsigned char   *img;
    sa_analyzer_t   *simple, *english;

    *model = NULL;

    if (n == 0) {
        sa_errf(err, errlen, "no examples");
        return SA_INVALID;
    }

    if (conf->char_max > 16 || conf->char_min > conf->char_max
        || (conf->char_max && conf->char_min == 0)
        || (conf->features & ~7u)
        || (conf->features == 0 && conf->char_max == 0)
        || !(conf->word_weight > 0 && conf->word_weight <= 100))
    {
        sa_errf(err, errlen, "bad feature options");
        return SA_INVALID;
    }

    /* the rules must parse before anything is trained */
    threshold = conf->threshold;

    if (conf->rules_len || threshold < 0) {
        probe = calloc(1, sizeof(sa_intent_t));
        if (probe == NULL) {
            return SA_ERROR;
        }

        probe->english = sa_analyzer_new("english");
        if (probe->english == NULL) {
            free(probe);
            return SA_ERROR;
        }

        rc = sa_rules_parse(probe, conf->rules, conf->rules_len, err,
                            errlen);

        if (rc == SA_OK && threshold < 0) {
            threshold = probe->rules_threshold ? probe->rules_threshold_v
                                               : 0;
        }

        sa_rules_free(probe);
        sa_analyzer_free(probe->english);
        free(probe);

        if (rc != SA_OK) {
            return rc;
        }
    }

    if (threshold > 1) {
        sa_errf(err, errlen, "the threshold is 0..1");
        return SA_INVALID;
    }

    rc = sa_train_names(examples, n, &names, &K, err, errlen);
    if (rc != SA_OK) {
        return rc;
    }

    memset(&d, 0, sizeof(sa_dict_t));
    memset(&data, 0, sizeof(sa_data_t));
    W = NULL;
    bias = NULL;
    img = NULL;
    english = NULL;

    simple = sa_analyzer_new("simple");
    if (conf->features & SA_INTENT_F_STEMS) {
        english = sa_analyzer_new("english");
    }

    data.label = malloc(n * sizeof(uint32_t));

    rc = SA_ERROR;

    if (simple == NULL || data.label == NULL
        || ((conf->features & SA_INTENT_F_STEMS) && english == NULL)
        || sa_dict_grow(&d) != SA_OK)
    {
        goto done;
    }

    for (i = 0; i < n; i++) {
        data.label[i] = sa_train_label(names, K, examples[i].intent);
    }

    if (sa_train_featurize(examples, n, conf, simple, english, &d, &data,
                           &F)
        != SA_OK)
    {
        goto done;
    }

    W = calloc((size_t) F * K + 1, sizeof(float));
    bias = calloc(K, sizeof(float));
    if (W == NULL || bias == NULL) {
        goto done;
    }

    if (sa_train_sgd(&data, n, K, F, conf, W, bias) != SA_OK) {
        goto done;
    }

    img = sa_train_image(conf, names, K, F, &d, W, bias,
                         threshold < 0 ? 0 : threshold, &size);
    if (img == NULL) {
        goto done;
    }

    rc = sa_intent_load(img, size, model, err, errlen);

done:

    if (rc == SA_ERROR && err != NULL && errlen && err[0] == '\0') {
        sa_errf(err, errlen, "out of memory");
    }

    free(img);
    free(W);
    free(bias);
    free(names);
    free(d.keys);
    free(d.rows);
    free(d.counts);
    free(d.occ);
    free(d.occw);
    free(data.rows);
    free(data.vals);
    free(data.start);
    free(data.label);
    sa_analyzer_free(simple);
    sa_analyzer_free(english);

    return rc;
}


int
sa_intent_write(const sa_intent_t *m, const char *path, char *err,
    size_t errlen)
{
    int      fd;
    char    *tmp;
    size_t   len, off;
    ssize_t  w;

    len = strlen(path);
    tmp = malloc(len + 5);
    if (tmp == NULL) {
        sa_errf(err, errlen, "out of memory");
        return SA_ERROR;
    }

    memcpy(tmp, path, len);
    memcpy(tmp + len, ".tmp", 5);

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd == -1) {
        sa_errf(err, errlen, "\"%s\": %s", tmp, strerror(errno));
        free(tmp);
        return SA_ERROR;
    }

    for (off = 0; off < m->size; off += (size_t) w) {
        w = write(fd, m->image + off, m->size - off);

        if (w == -1 && errno == EINTR) {
            w = 0;
            continue;
        }

        if (w <= 0) {
            sa_errf(err, errlen, "\"%s\": %s", tmp, strerror(errno));
            goto failed;
        }
    }

    if (fsync(fd) == -1) {
        sa_errf(err, errlen, "\"%s\": fsync: %s", tmp, strerror(errno));
        goto failed;
    }

    if (close(fd) == -1) {
        fd = -1;
        sa_errf(err, errlen, "\"%s\": %s", tmp, strerror(errno));
        goto failed;
    }

    fd = -1;

    if (rename(tmp, path) == -1) {
        sa_errf(err, errlen, "rename \"%s\": %s", tmp, strerror(errno));
        goto failed;
    }

    free(tmp);

    return SA_OK;

failed:

    if (fd != -1) {
        close(fd);
    }

    unlink(tmp);
    free(tmp);

    return SA_ERROR;
}


/*
 * Reading.
 */

int
sa_intent_open(const char *path, sa_intent_t **m, char *err, size_t errlen)
{
    int             fd, rc;
    char            msg[256];
    size_t          off;
    ssize_t         r;
    struct stat     st;
    unsigned char  *buf;

    *m = NULL;

    fd = open(path, O_RDONLY);
    if (fd == -1) {
        sa_errf(err, errlen, "intent model \"%s\": %s", path,
                strerror(errno));
        return SA_ERROR;
    }

    if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
        sa_errf(err, errlen, "intent model \"%s\": not a regular file",
                path);
        close(fd);
        return SA_ERROR;
    }

    buf = malloc(st.st_size ? (size_t) st.st_size : 1);
    if (buf == NULL) {
        sa_errf(err, errlen, "intent model \"%s\": out of memory", path);
        close(fd);
        return SA_ERROR;
    }

    for (off = 0; off < (size_t) st.st_size; off += (size_t) r) {
        r = read(fd, buf + off, (size_t) st.st_size - off);

        if (r == -1 && errno == EINTR) {
            r = 0;
            continue;
        }

        if (r <= 0) {
            sa_errf(err, errlen, "intent model \"%s\": %s", path,
                    r == 0 ? "truncated while read" : strerror(errno));
            free(buf);
            close(fd);
            return SA_ERROR;
        }
    }

    close(fd);

    msg[0] = '\0';
    rc = sa_intent_load(buf, off, m, msg, sizeof(msg));
    free(buf);

    if (rc != SA_OK) {
        sa_errf(err, errlen, "intent model \"%s\": %s", path, msg);
        return rc;
    }

    (*m)->path = strdup(path);
    if ((*m)->path == NULL) {
        sa_intent_close(*m);
        *m = NULL;
        sa_errf(err, errlen, "intent model \"%s\": out of memory", path);
        return SA_ERROR;
    }

    (*m)->dev = st.st_dev;
    (*m)->ino = st.st_ino;
    (*m)->fsize = st.st_size;
    (*m)->mtime = st.st_mtim;

    return SA_OK;
}


int
sa_intent_load(const void *data, size_t len, sa_intent_t **m, char *err,
    size_t errlen)
{
    int           rc;
    sa_intent_t  *im;

    *m = NULL;

    im = calloc(1, sizeof(sa_intent_t));
    if (im == NULL) {
        sa_errf(err, errlen, "out of memory");
        return SA_ERROR;
    }

    im->image = malloc(len ? len : 1);
    if (im->image == NULL) {
        free(im);
        sa_errf(err, errlen, "out of memory");
        return SA_ERROR;
    }

    memcpy(im->image, data, len);
    im->size = len;

    rc = sa_intent_parse(im, err, errlen);
    if (rc != SA_OK) {
        sa_intent_close(im);
        return rc;
    }

    *m = im;

    return SA_OK;
}


static uint32_t
sa_get32(const unsigned char *p)
{
    uint32_t  v;

    memcpy(&v, p, 4);

    return v;
}


/* checks the image and points into it */

static int
sa_intent_parse(sa_intent_t *m, char *err, size_t errlen)
{
    float           t;
    size_t          i, off_rules, off_bias, off_slots, off_w;
    uint32_t        k, names_len, rules_len;
    uint64_t        size, need;
    const char     *p, *end;
    unsigned char  *img;

    img = m->image;

    if (m->size < SA_INTENT_HEADER || memcmp(img, SA_INTENT_MAGIC, 8) != 0) {
        sa_errf(err, errlen, "not an intent model (bad magic)");
        return SA_INVALID;
    }

    /* format 1 differs in what the threshold is held against only */
    m->format = sa_get32(img + 8);

    if (m->format != SA_INTENT_FORMAT && m->format != 1) {
        sa_errf(err, errlen, "unknown format %u (this build reads 1 and "
                "%d; rebuild with kb-build intents)", m->format,
                SA_INTENT_FORMAT);
        return SA_INVALID;
    }

    memcpy(&size, img + 16, 8);

    if (sa_get32(img + 12) != SA_INTENT_HEADER || size != m->size) {
        sa_errf(err, errlen, "truncated or damaged: %zu bytes, the header "
                "says %llu", m->size, (unsigned long long) size);
        return SA_INVALID;
    }

    if (sa_fnv32(img + SA_INTENT_HEADER, m->size - SA_INTENT_HEADER)
        != sa_get32(img + 24))
    {
        sa_errf(err, errlen, "damaged: checksum mismatch");
        return SA_INVALID;
    }

    m->K = sa_get32(img + 28);
    m->F = sa_get32(img + 32);
    m->S = sa_get32(img + 36);
    m->flags = sa_get32(img + 40);
    m->cmin = img[44];
    m->cmax = img[45];
    memcpy(&t, img + 48, 4);
    memcpy(&m->ww, img + 60, 4);
    names_len = sa_get32(img + 52);
    rules_len = sa_get32(img + 56);

    if (m->K == 0 || m->K > SA_INTENT_MAX_K || m->S < 16
        || (m->S & (m->S - 1)) || m->F >= m->S || (m->flags & ~7u)
        || m->cmax > 16 || m->cmin > m->cmax || !(t >= 0 && t <= 1)
        || !(m->ww > 0 && m->ww <= 100))
    {
        sa_errf(err, errlen, "damaged: bad header fields");
        return SA_INVALID;
    }

    off_rules = sa_align8((size_t) SA_INTENT_HEADER + names_len);
    off_bias = sa_align8(off_rules + rules_len);
    off_slots = sa_align8(off_bias + (size_t) m->K * 4);
    off_w = off_slots + (size_t) m->S * 8;
    need = off_w + (uint64_t) m->F * m->K * 4;

    if (need != m->size) {
        sa_errf(err, errlen, "damaged: sections do not fit the size");
        return SA_INVALID;
    }

    m->names = calloc(m->K, sizeof(char *));
    m->class_route = calloc(m->K, sizeof(sa_route_t *));
    m->class_floor = calloc(m->K, sizeof(float));
    m->scores = calloc(m->K, sizeof(float));
    m->simple = sa_analyzer_new("simple");
    m->english = sa_analyzer_new("english");

    if (m->names == NULL || m->class_route == NULL || m->class_floor == NULL
        || m->scores == NULL || m->simple == NULL || m->english == NULL)
    {
        sa_errf(err, errlen, "out of memory");
        return SA_ERROR;
    }

    p = (const char *) img + SA_INTENT_HEADER;
    end = p + names_len;

    for (k = 0; k < m->K; k++) {
        m->names[k] = p;

        while (p < end && *p != '\0') {
            p++;
        }

        if (p == end || !sa_name_ok(m->names[k])
            || (k && strcmp(m->names[k - 1], m->names[k]) >= 0))
        {
            sa_errf(err, errlen, "damaged: bad intent names");
            return SA_INVALID;
        }

        p++;
    }

    m->rules_text = (const char *) img + off_rules;
    m->rules_len = rules_len;
    m->bias = (const float *) (img + off_bias);
    m->slots = (const uint32_t *) (img + off_slots);
    m->weights = (const float *) (img + off_w);

    for (i = 0; i < m->S; i++) {
        if (m->slots[i * 2] != 0 && m->slots[i * 2 + 1] >= m->F) {
            sa_errf(err, errlen, "damaged: bad feature slot");
            return SA_INVALID;
        }
    }

    m->file_threshold = t;
    m->threshold = t;

    return sa_rules_parse(m, m->rules_text, m->rules_len, err, errlen);
}


void
sa_intent_close(sa_intent_t *m)
{
    if (m == NULL) {
        return;
    }

    sa_rules_free(m);
    sa_analyzer_free(m->simple);
    sa_analyzer_free(m->english);
    free((void *) m->names);
    free((void *) m->class_route);
    free(m->class_floor);
    free(m->scores);
    free(m->terms);
    free(m->path);
    free(m->image);
    free(m);
}


/*
 * Classification.
 */

static void
sa_score(void *data, uint32_t key, float x)
{
    sa_intent_t  *m = data;
    size_t        s;
    uint32_t      k, K;
    const float  *w;

    s = key & (m->S - 1);

    while (m->slots[s * 2] != key) {
        if (m->slots[s * 2] == 0) {
            return;
        }

        s = (s + 1) & (m->S - 1);
    }

    K = m->K;
    w = &m->weights[(size_t) m->slots[s * 2 + 1] * K];

    for (k = 0; k < K; k++) {
        m->scores[k] += w[k] * x;
    }
}


int
sa_intent_classify(sa_intent_t *m, const char *text, size_t len,
    sa_intent_result_t *out)
{
    size_t            i, j;
    uint32_t          k, best;
    float             inv;
    sa_fx_t           fx;
    const sa_rule_t  *rule;

    memset(out, 0, sizeof(sa_intent_result_t));

    if (len > SA_INTENT_MAX_TEXT) {
        len = SA_INTENT_MAX_TEXT;
    }

    memset(m->scores, 0, m->K * sizeof(float));

    memset(&fx, 0, sizeof(sa_fx_t));
    fx.emit = sa_score;
    fx.data = m;
    fx.flags = m->flags;
    fx.cmin = m->cmin;
    fx.cmax = m->cmax;
    fx.ww = m->ww;

    if (sa_features(m->simple, m->english, &fx, text, len) != SA_OK) {
        return SA_ERROR;
    }

    /* unseen features count in the norm: a message of words the model
       never saw gets flat probabilities, which is what out of scope
       looks like */
    inv = fx.norm > 0 ? 1.0f / sqrtf(fx.norm) : 0;

    for (k = 0; k < m->K; k++) {
        m->scores[k] = m->bias[k] + m->scores[k] * inv;
    }

    sa_softmax(m->scores, m->K);

    for (i = 0; i < SA_INTENT_TOP && i < m->K; i++) {
        best = UINT32_MAX;

        for (k = 0; k < m->K; k++) {
            for (j = 0; j < i; j++) {
                if (out->top[j].intent == m->names[k]) {
                    break;
                }
            }

            if (j == i && (best == UINT32_MAX
                           || m->scores[k] > m->scores[best]))
            {
                best = k;
            }
        }

        out->top[i].intent = m->names[best];
        out->top[i].p = m->scores[best];

        if (i == 0) {
            out->index = (int) best;
        }

        out->ntop++;
    }

    out->intent = out->top[0].intent;
    out->confidence = out->top[0].p;

    if (sa_rules_match(m, text, len, &rule) != SA_OK) {
        return SA_ERROR;
    }

    if (rule != NULL) {
        out->intent = rule->intent;
        out->index = rule->index;
        out->confidence = 1;
        out->in_scope = 1;
        out->rule = rule->pattern;
        out->rule_line = rule->line;
        out->rule_priority = rule->priority;
        out->route = rule->route->route;
        out->route_name = rule->route->name;
        out->tool = rule->route->tool;
        return SA_OK;
    }

    best = sa_decide(m, &out->in_scope);
    k = (uint32_t) out->index;

    if (best == UINT32_MAX || out->in_scope < m->threshold) {
        out->intent = SA_INTENT_OUT_OF_SCOPE;
        out->index = -1;
        out->route = SA_ROUTE_OUT_OF_SCOPE;
        out->route_name = m->oos_route.name;
        return SA_OK;
    }

    /* the top class is one of the out-of-scope examples' */
    if (m->class_route[k]->route != SA_ROUTE_OUT_OF_SCOPE) {
        k = best;
    }

    out->intent = m->names[k];
    out->index = (int) k;
    out->confidence = m->scores[k];
    out->route = m->class_route[k]->route;
    out->route_name = m->class_route[k]->name;
    out->tool = m->class_route[k]->tool;

    return SA_OK;
}


/*
 * The class the model may decide: the likeliest not routed out_of_scope
 * whose probability reaches its own threshold, or UINT32_MAX; *in_scope
 * gets its score against the threshold (sa_intent.h, "Out of scope").
 * Format 1 files hold p(best) against theirs.
 */

static uint32_t
sa_decide(const sa_intent_t *m, float *in_scope)
{
    float     poos, p;
    uint32_t  k, best;

    best = UINT32_MAX;
    poos = 0;

    for (k = 0; k < m->K; k++) {
        p = m->scores[k];

        if (m->class_route[k]->route == SA_ROUTE_OUT_OF_SCOPE) {
            poos += p;
            continue;
        }

        if (p >= m->class_floor[k]
            && (best == UINT32_MAX || p > m->scores[best]))
        {
            best = k;
        }
    }

    if (best == UINT32_MAX) {
        *in_scope = 0;
        return best;
    }

    p = m->scores[best];

    if (m->format == 1 || m->noos == 0) {
        *in_scope = p;

    } else {
        /* both may underflow to 0 far from every example */
        *in_scope = p + poos > 0 ? p / (p + poos) : 0;
    }

    return best;
}


float
sa_intent_threshold(const sa_intent_t *m)
{
    return m->threshold;
}


void
sa_intent_set_threshold(sa_intent_t *m, float threshold)
{
    m->threshold = threshold < 0 ? m->file_threshold
                                 : (threshold > 1 ? 1 : threshold);
}


int
sa_intent_changed(const sa_intent_t *m)
{
    struct stat  st;

    if (m->path == NULL) {
        return 0;
    }

    if (stat(m->path, &st) == -1) {
        return 1;
    }

    return st.st_dev != m->dev || st.st_ino != m->ino
           || st.st_size != m->fsize
           || st.st_mtim.tv_sec != m->mtime.tv_sec
           || st.st_mtim.tv_nsec != m->mtime.tv_nsec;
}


void
sa_intent_info(const sa_intent_t *m, sa_intent_info_t *info)
{
    info->classes = m->K;
    info->features = m->F;
    info->slots = m->S;
    info->rules = (uint32_t) m->nrules;
    info->size = m->size;
}


const char *
sa_intent_name(const sa_intent_t *m, uint32_t i)
{
    return i < m->K ? m->names[i] : NULL;
}


const char *
sa_route_name(sa_route_e route)
{
    return (unsigned) route <= SA_ROUTE_OUT_OF_SCOPE ? sa_route_names[route]
                                                     : "?";
}


const char *
sa_intent_route(const sa_intent_t *m, const char *intent, sa_route_e *route)
{
    const sa_route_t  *r;

    r = sa_route_find(m, intent);

    if (route != NULL) {
        *route = r->route;
    }

    return r->name;
}


/*
 * Rules and routes.
 */

typedef struct {
    uint64_t   *terms;
    size_t      n;
    size_t      cap;
    int         oom;
} sa_terms_t;


static int
sa_term_add(void *data, const char *term, size_t len, uint32_t position)
{
    sa_terms_t  *t = data;
    uint64_t    *p;

    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        p = realloc(t->terms, t->cap * sizeof(uint64_t));
        if (p == NULL) {
            t->oom = 1;
            return 1;
        }

        t->terms = p;
    }

    t->terms[t->n++] = sa_fnv64(SA_FNV_INIT, term, len);

    return 0;
}


static int
sa_rule_cmp(const void *one, const void *two)
{
    const sa_rule_t  *a = one, *b = two;

    if (a->priority != b->priority) {
        return a->priority > b->priority ? -1 : 1;
    }

    return (a->line > b->line) - (a->line < b->line);
}


static char *
sa_strndup(const char *s, size_t len)
{
    char  *p;

    p = malloc(len + 1);
    if (p != NULL) {
        memcpy(p, s, len);
        p[len] = '\0';
    }

    return p;
}


/* the next word of [*p, end): its start and length; 0 at the end */

static size_t
sa_word(const char **p, const char *end, const char **word)
{
    const char  *s;

    s = *p;

    while (s < end && (*s == ' ' || *s == '\t')) {
        s++;
    }

    *word = s;

    while (s < end && *s != ' ' && *s != '\t') {
        s++;
    }

    *p = s;

    return (size_t) (s - *word);
}


static int
sa_route_parse(sa_route_t *r, const char *target, size_t len)
{
    size_t  i;

    r->name = sa_strndup(target, len);
    if (r->name == NULL) {
        return SA_ERROR;
    }

    r->tool = NULL;

    if (len > 7 && memcmp(target, "action:", 7) == 0) {
        r->route = SA_ROUTE_ACTION;
        r->tool = r->name + 7;
        return SA_OK;
    }

    for (i = 0; i <= SA_ROUTE_OUT_OF_SCOPE; i++) {
        if (i != SA_ROUTE_ACTION && strlen(sa_route_names[i]) == len
            && memcmp(sa_route_names[i], target, len) == 0)
        {
            r->route = (sa_route_e) i;
            return SA_OK;
        }
    }

    free(r->name);
    r->name = NULL;

    return SA_INVALID;
}


/* one pattern: parts split at '+', each phrases split at '|', '!' for
   "not" */

static int
sa_pattern_parse(sa_intent_t *m, sa_rule_t *rule, const char *s,
    const char *end, char *err, size_t errlen)
{
    int          rc, positive;
    size_t       n;
    const char  *a, *b, *plus;
    sa_part_t   *parts, *part;

    rule->pattern = sa_strndup(s, (size_t) (end - s));
    if (rule->pattern == NULL) {
        return SA_ERROR;
    }

    n = 1;
    for (a = s; a < end; a++) {
        n += (*a == '+');
    }

    parts = calloc(n, sizeof(sa_part_t));
    if (parts == NULL) {
        return SA_ERROR;
    }

    rule->parts = parts;
    positive = 0;

    for (a = s; a <= end; a = plus + 1) {
        plus = memchr(a, '+', (size_t) (end - a));
        if (plus == NULL) {
            plus = end;
        }

        b = plus;

        while (a < b && (*a == ' ' || *a == '\t')) {
            a++;
        }

        part = &parts[rule->nparts++];

        if (a < b && *a == '!') {
            part->negate = 1;
            a++;
        }

        rc = sa_part_parse(m, rule, part, a, b, err, errlen);
        if (rc != SA_OK) {
            return rc;
        }

        positive += !part->negate;

        if (plus == end) {
            break;
        }
    }

    if (positive == 0) {
        sa_errf(err, errlen, "line %u: a rule needs a phrase that is not "
                "negated", rule->line);
        return SA_INVALID;
    }

    return SA_OK;
}


/* the phrases of [a, b), split at '|', each optionally quoted */

static int
sa_part_parse(sa_intent_t *m, sa_rule_t *rule, sa_part_t *part,
    const char *a, const char *b, char *err, size_t errlen)
{
    size_t        n;
    const char   *p, *q, *bar;
    sa_terms_t    t;
    sa_phrase_t  *ph;

    n = 1;
    for (p = a; p < b; p++) {
        n += (*p == '|');
    }

    part->alts = calloc(n, sizeof(sa_phrase_t));
    if (part->alts == NULL) {
        return SA_ERROR;
    }

    for (p = a; p <= b; p = bar + 1) {
        bar = memchr(p, '|', (size_t) (b - p));
        if (bar == NULL) {
            bar = b;
        }

        q = bar;

        while (p < q && (*p == ' ' || *p == '\t')) {
            p++;
        }

        while (q > p && (q[-1] == ' ' || q[-1] == '\t')) {
            q--;
        }

        if (q - p >= 2 && *p == '"' && q[-1] == '"') {
            p++;
            q--;
        }

        memset(&t, 0, sizeof(sa_terms_t));

        if (sa_analyze(m->english, p, (size_t) (q - p), sa_term_add, &t)
            != SA_OK || t.oom)
        {
            free(t.terms);
            return SA_ERROR;
        }

        if (t.n == 0) {
            sa_errf(err, errlen, "line %u: \"%.*s\" has no words (stop "
                    "words such as \"to\", \"not\" do not count)",
                    rule->line, (int) (q - p), p);
            free(t.terms);
            return SA_INVALID;
        }

        ph = &part->alts[part->nalts++];
        ph->terms = t.terms;
        ph->n = t.n;

        if (bar == b) {
            break;
        }
    }

    return SA_OK;
}


/* room for one more entry; rules files are short */

static int
sa_rules_grow(void **p, size_t n, size_t size)
{
    void  *q;

    q = realloc(*p, (n + 1) * size);
    if (q == NULL) {
        return SA_ERROR;
    }

    *p = q;

    return SA_OK;
}


/* "threshold F" or "threshold INTENT F": the words in [p, e) */

static int
sa_rules_threshold(sa_intent_t *m, const char *p, const char *e,
    unsigned line, char *err, size_t errlen)
{
    char         num[32], *end;
    size_t       i, wl, il;
    double       t;
    sa_floor_t  *f;
    const char  *w, *iw;

    il = sa_word(&p, e, &iw);
    wl = sa_word(&p, e, &w);

    if (wl == 0) {
        /* one word: the global threshold */
        w = iw;
        wl = il;
        il = 0;
    }

    if (wl == 0 || wl >= sizeof(num) || p != e || il > SA_INTENT_NAME_MAX)
    {
        sa_errf(err, errlen, "line %u: threshold [INTENT] F", line);
        return SA_INVALID;
    }

    memcpy(num, w, wl);
    num[wl] = '\0';
    t = strtod(num, &end);

    if (*end != '\0' || !(t >= 0 && t <= 1)) {
        sa_errf(err, errlen, "line %u: the threshold is 0..1", line);
        return SA_INVALID;
    }

    if (il == 0) {
        m->rules_threshold = 1;
        m->rules_threshold_v = (float) t;
        return SA_OK;
    }

    for (i = 0; i < m->nfloors; i++) {
        if (strlen(m->floors[i].intent) == il
            && memcmp(m->floors[i].intent, iw, il) == 0)
        {
            sa_errf(err, errlen, "line %u: a second threshold for \"%.*s\"",
                    line, (int) il, iw);
            return SA_INVALID;
        }
    }

    if (sa_rules_grow((void **) &m->floors, m->nfloors, sizeof(sa_floor_t))
        != SA_OK)
    {
        return SA_ERROR;
    }

    f = &m->floors[m->nfloors];
    f->value = (float) t;
    f->intent = sa_strndup(iw, il);
    if (f->intent == NULL) {
        return SA_ERROR;
    }

    m->nfloors++;

    if (!sa_name_ok(f->intent)) {
        sa_errf(err, errlen, "line %u: bad intent name", line);
        return SA_INVALID;
    }

    if (strcmp(f->intent, SA_INTENT_OUT_OF_SCOPE) == 0) {
        sa_errf(err, errlen, "line %u: out_of_scope has no threshold of "
                "its own", line);
        return SA_INVALID;
    }

    return SA_OK;
}


static int
sa_rules_parse(sa_intent_t *m, const char *text, size_t len, char *err,
    size_t errlen)
{
    int          rc;
    char        *e, num[32], name[SA_INTENT_NAME_MAX + 1];
    long         prio;
    size_t       i, j, wl, il;
    unsigned     line;
    sa_rule_t   *rule;
    sa_route_t  *route;
    const char  *p, *end, *eol, *w, *iw, *hash;

    sa_rules_free(m);

    m->default_route.route = SA_ROUTE_KNOWLEDGE;
    m->default_route.name = strdup("knowledge");
    m->oos_route.route = SA_ROUTE_OUT_OF_SCOPE;
    m->oos_route.name = strdup("out_of_scope");

    if (m->default_route.name == NULL || m->oos_route.name == NULL) {
        return SA_ERROR;
    }

    p = text;
    end = text ? text + len : NULL;
    line = 0;

    while (p != NULL && p < end) {
        line++;
        eol = memchr(p, '\n', (size_t) (end - p));
        if (eol == NULL) {
            eol = end;
        }

        hash = memchr(p, '#', (size_t) (eol - p));
        e = (char *) (hash ? hash : eol);

        while ((const char *) e > p && (e[-1] == ' ' || e[-1] == '\t'
                                        || e[-1] == '\r'))
        {
            e--;
        }

        wl = sa_word(&p, e, &w);

        if (wl == 0) {
            p = eol + 1;
            continue;
        }

        if (memchr(w, '\0', (size_t) (e - w)) != NULL) {
            sa_errf(err, errlen, "line %u: a NUL byte", line);
            return SA_INVALID;
        }

        if (wl == 4 && memcmp(w, "rule", 4) == 0) {
            wl = sa_word(&p, e, &w);
            il = sa_word(&p, e, &iw);

            if (wl == 0 || wl >= sizeof(num) || il == 0 || p == e) {
                sa_errf(err, errlen, "line %u: rule PRIORITY INTENT "
                        "PATTERN", line);
                return SA_INVALID;
            }

            memcpy(num, w, wl);
            num[wl] = '\0';
            errno = 0;
            prio = strtol(num, &e, 10);

            if (*e != '\0' || errno || prio < 0
                || prio > SA_INTENT_MAX_PRIO)
            {
                sa_errf(err, errlen, "line %u: the priority is 0..%d",
                        line, SA_INTENT_MAX_PRIO);
                return SA_INVALID;
            }

            if (sa_rules_grow((void **) &m->rules, m->nrules,
                              sizeof(sa_rule_t))
                != SA_OK)
            {
                return SA_ERROR;
            }

            rule = &m->rules[m->nrules++];
            memset(rule, 0, sizeof(sa_rule_t));
            rule->priority = (int) prio;
            rule->line = line;
            rule->intent = sa_strndup(iw, il);
            if (rule->intent == NULL) {
                return SA_ERROR;
            }

            if (!sa_name_ok(rule->intent)) {
                sa_errf(err, errlen, "line %u: bad intent name", line);
                return SA_INVALID;
            }

            e = (char *) (hash ? hash : eol);
            while ((const char *) e > p && (e[-1] == ' ' || e[-1] == '\t'
                                            || e[-1] == '\r'))
            {
                e--;
            }

            while (p < e && (*p == ' ' || *p == '\t')) {
                p++;
            }

            rc = sa_pattern_parse(m, rule, p, e, err, errlen);
            if (rc != SA_OK) {
                return rc;
            }

        } else if (wl == 5 && memcmp(w, "route", 5) == 0) {
            il = sa_word(&p, e, &iw);
            wl = sa_word(&p, e, &w);

            if (il == 0 || wl == 0 || p != e || il > SA_INTENT_NAME_MAX) {
                sa_errf(err, errlen, "line %u: route INTENT TARGET", line);
                return SA_INVALID;
            }

            memcpy(name, iw, il);
            name[il] = '\0';

            if (strcmp(name, SA_INTENT_OUT_OF_SCOPE) == 0) {
                sa_errf(err, errlen, "line %u: out_of_scope is always "
                        "routed out_of_scope", line);
                return SA_INVALID;
            }

            if (sa_route_find(m, name) != &m->default_route) {
                sa_errf(err, errlen, "line %u: a second route for \"%s\"",
                        line, name);
                return SA_INVALID;
            }

            if (sa_rules_grow((void **) &m->routes, m->nroutes,
                              sizeof(sa_route_t))
                != SA_OK)
            {
                return SA_ERROR;
            }

            route = &m->routes[m->nroutes];
            memset(route, 0, sizeof(sa_route_t));
            route->intent = strdup(name);
            if (route->intent == NULL) {
                return SA_ERROR;
            }

            m->nroutes++;

            rc = sa_route_parse(route, w, wl);
            if (rc != SA_OK) {
                goto bad_target;
            }

        } else if (wl == 7 && memcmp(w, "default", 7) == 0) {
            wl = sa_word(&p, e, &w);

            if (wl == 0 || p != e) {
                sa_errf(err, errlen, "line %u: default TARGET", line);
                return SA_INVALID;
            }

            free(m->default_route.name);
            m->default_route.name = NULL;

            rc = sa_route_parse(&m->default_route, w, wl);
            if (rc != SA_OK) {
                goto bad_target;
            }

        } else if (wl == 9 && memcmp(w, "threshold", 9) == 0) {
            rc = sa_rules_threshold(m, p, e, line, err, errlen);
            if (rc != SA_OK) {
                return rc;
            }

        } else {
            sa_errf(err, errlen, "line %u: unknown statement \"%.*s\" "
                    "(rule, route, default, threshold)", line, (int) wl, w);
            return SA_INVALID;
        }

        p = eol + 1;
        continue;

    bad_target:

        if (rc == SA_INVALID) {
            sa_errf(err, errlen, "line %u: the target is knowledge, "
                    "action:TOOL, escalate, smalltalk or out_of_scope",
                    line);
        }

        return rc;
    }

    if (m->nrules) {
        qsort(m->rules, m->nrules, sizeof(sa_rule_t), sa_rule_cmp);
    }

    for (i = 0; i < m->nrules; i++) {
        m->rules[i].route = sa_route_find(m, m->rules[i].intent);
        m->rules[i].index = -1;

        if (m->names != NULL) {
            p = m->rules[i].intent;
            iw = bsearch(&p, m->names, m->K, sizeof(char *), sa_name_cmp);
            if (iw != NULL) {
                m->rules[i].index = (int) ((const char **) iw - m->names);
            }
        }
    }

    m->noos = 0;

    for (i = 0; m->class_route != NULL && i < m->K; i++) {
        m->class_route[i] = sa_route_find(m, m->names[i]);
        m->noos += (m->class_route[i]->route == SA_ROUTE_OUT_OF_SCOPE);
        m->class_floor[i] = 0;

        for (j = 0; j < m->nfloors; j++) {
            if (strcmp(m->floors[j].intent, m->names[i]) == 0) {
                m->class_floor[i] = m->floors[j].value;
            }
        }
    }

    return SA_OK;
}


static const sa_route_t *
sa_route_find(const sa_intent_t *m, const char *intent)
{
    size_t  i;

    for (i = 0; i < m->nroutes; i++) {
        if (strcmp(m->routes[i].intent, intent) == 0) {
            return &m->routes[i];
        }
    }

    if (strcmp(intent, SA_INTENT_OUT_OF_SCOPE) == 0) {
        return &m->oos_route;
    }

    return &m->default_route;
}


static void
sa_rules_free(sa_intent_t *m)
{
    size_t      i, j, k;
    sa_part_t  *part;

    for (i = 0; i < m->nrules; i++) {
        for (j = 0; j < m->rules[i].nparts; j++) {
            part = &m->rules[i].parts[j];

            for (k = 0; k < part->nalts; k++) {
                free(part->alts[k].terms);
            }

            free(part->alts);
        }

        free(m->rules[i].parts);
        free(m->rules[i].intent);
        free(m->rules[i].pattern);
    }

    for (i = 0; i < m->nroutes; i++) {
        free(m->routes[i].intent);
        free(m->routes[i].name);
    }

    for (i = 0; i < m->nfloors; i++) {
        free(m->floors[i].intent);
    }

    free(m->rules);
    free(m->routes);
    free(m->floors);
    free(m->default_route.name);
    free(m->oos_route.name);

    m->rules = NULL;
    m->nrules = 0;
    m->routes = NULL;
    m->nroutes = 0;
    m->floors = NULL;
    m->nfloors = 0;
    m->default_route.name = NULL;
    m->oos_route.name = NULL;
    m->rules_threshold = 0;
}


int
sa_intent_set_rules(sa_intent_t *m, const char *text, size_t len,
    char *err, size_t errlen)
{
    int  rc;

    rc = sa_rules_parse(m, text, len, err, errlen);

    if (rc != SA_OK) {
        /* no half-parsed rules stay behind */
        sa_rules_parse(m, NULL, 0, NULL, 0);
        return rc;
    }

    if (m->rules_threshold) {
        m->threshold = m->rules_threshold_v;
    }

    return SA_OK;
}


/* 1 if one of the part's phrases occurs as consecutive terms of the
   message */

static int
sa_part_in(const sa_part_t *part, const uint64_t *terms, size_t n)
{
    size_t              i, j, k;
    const sa_phrase_t  *ph;

    for (k = 0; k < part->nalts; k++) {
        ph = &part->alts[k];

        for (i = 0; i + ph->n <= n; i++) {
            for (j = 0; j < ph->n; j++) {
                if (terms[i + j] != ph->terms[j]) {
                    break;
                }
            }

            if (j == ph->n) {
                return 1;
            }
        }
    }

    return 0;
}


static int
sa_rules_match(sa_intent_t *m, const char *text, size_t len,
    const sa_rule_t **rule)
{
    size_t       i, j;
    sa_terms_t   t;
    sa_rule_t   *r;

    *rule = NULL;

    if (m->nrules == 0) {
        return SA_OK;
    }

    /* the term buffer is kept between messages */
    t.terms = m->terms;
    t.n = 0;
    t.cap = m->terms_cap;
    t.oom = 0;

    if (sa_analyze(m->english, text, len, sa_term_add, &t) != SA_OK
        || t.oom)
    {
        m->terms = t.terms;
        m->terms_cap = t.cap;
        return SA_ERROR;
    }

    m->terms = t.terms;
    m->terms_cap = t.cap;
    m->nterms = t.n;

    for (i = 0; i < m->nrules; i++) {
        r = &m->rules[i];

        for (j = 0; j < r->nparts; j++) {
            if (sa_part_in(&r->parts[j], t.terms, t.n) == r->parts[j].negate)
            {
                break;
            }
        }

        if (j == r->nparts) {
            *rule = r;
            return SA_OK;
        }
    }

    return SA_OK;
}
