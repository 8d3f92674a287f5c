
/*
 * Copyright (C) ngx_support_agent authors
 *
 * sa_sparse: MurmurHash3 x86 32 against known values, term indices as
 * fastembed makes them, BM25 document and query vectors, hash
 * collisions, the JSON form, and Qdrant point ids.
 */


#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "sa_sparse.h"


/*
 * Known values.  "hello", "" and "foo" (signed -156908512, and
 * -1322301282 with seed 42) are the examples of Python's mmh3; the others
 * were computed with the npm package murmurhash3js-revisited, which
 * gives those same values.
 */

static void
test_murmur(void)
{
    size_t  i;

    static const struct {
        const char  *s;
        uint32_t     seed;
        uint32_t     h;
    } known[] = {
        { "hello", 0, 613153351u },
        { "", 0, 0u },
        { "foo", 0, 4138058784u },
        { "foo", 42, (uint32_t) -1322301282 },
        { "The quick brown fox jumps over the lazy dog", 0, 776992547u },
        { "a", 0, 1009084850u },
        { "ab", 0, 2613040991u },
        { "abc", 0, 3017643002u },
        { "abcd", 0, 1139631978u },
        { "abcde", 0, 3902511862u },
        { "caf\xc3\xa9", 0, 605818632u },
        { "\xe6\x97\xa5\xe6\x9c\xac", 0, 3302619458u }
    };

    for (i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        ok(sa_murmur3_32(known[i].s, strlen(known[i].s), known[i].seed)
           == known[i].h, "murmur3_32(\"%s\", %u)", known[i].s,
           known[i].seed);
    }

    is_int(sa_sparse_index("hello", 5), 613153351, "index of a positive");
    is_int(sa_sparse_index("foo", 3), 156908512,
           "index of a negative: its absolute value");
    is_int(sa_sparse_index("refund", 6), 517146909, "index of \"refund\"");
    is_int(sa_sparse_index("polici", 6), 203139330, "index of \"polici\"");
}


static void
test_vectors(void)
{
    char            *json;
    size_t           len;
    sa_jw_t         *w;
    sa_sparse_t      s;
    sa_analyzer_t   *a;
    const char      *text;
    double           norm;

    a = sa_analyzer_new("english");
    memset(&s, 0, sizeof(s));

    /* refund x3, polici x1 ("for" is a stop word); dl 4 = avgdl */

    text = "Refunds\nRefund policy for refunds";
    is_int(sa_sparse_document(a, text, strlen(text), 4, 4.0, 0.9, 0.4, &s),
           SA_OK, "document vector");
    is_int(s.n, 2, "two distinct terms");
    ok(s.n == 2 && s.indices[0] == 203139330 && s.indices[1] == 517146909,
       "indices in increasing order");

    norm = 0.9 * (1 - 0.4 + 0.4 * 4 / 4.0);
    ok(s.n == 2 && fabs(s.values[0] - 1.9 / (1 + norm)) < 1e-6
       && fabs(s.values[1] - 3 * 1.9 / (3 + norm)) < 1e-6,
       "tf (k1 + 1) / (tf + k1 (1 - b + b dl / avgdl))");

    /* a longer chunk weighs less */

    is_int(sa_sparse_document(a, text, strlen(text), 40, 4.0, 0.9, 0.4, &s),
           SA_OK, "dl 40");
    norm = 0.9 * (1 - 0.4 + 0.4 * 40 / 4.0);
    ok(fabs(s.values[1] - 3 * 1.9 / (3 + norm)) < 1e-6, "dl counts");

    /* queries: the count of each term */

    text = "refund? Refunds! policy";
    is_int(sa_sparse_query(a, text, strlen(text), &s), SA_OK, "query");
    ok(s.n == 2 && s.indices[0] == 203139330 && s.values[0] == 1
       && s.indices[1] == 517146909 && s.values[1] == 2,
       "a repeated term counts twice");

    w = sa_jw_new();
    sa_sparse_json(&s, w);
    json = (char *) sa_jw_buf(w, &len);
    is_str(json, "{\"indices\":[203139330,517146909],\"values\":[1,2]}",
           "JSON");

    text = "the of and";
    is_int(sa_sparse_query(a, text, strlen(text), &s), SA_OK,
           "a query of stop words");
    is_int(s.n, 0, "no terms");

    sa_jw_reset(w);
    sa_sparse_json(&s, w);
    is_str(sa_jw_buf(w, &len), "{\"indices\":[],\"values\":[]}",
           "an empty vector in JSON");

    sa_jw_reset(w);
    sa_jw_array_open(w);
    sa_sparse_jw_float(w, 0.1f);
    sa_sparse_jw_float(w, 1.4615384f);
    sa_sparse_jw_float(w, -3e-20f);
    sa_sparse_jw_float(w, 16777216.0f);
    sa_jw_array_close(w);
    is_str(sa_jw_buf(w, &len), "[0.1,1.4615384,-3e-20,16777216]",
           "floats: the fewest digits that read back");
    is_int(sa_sparse_jw_float(w, NAN), SA_INVALID, "NaN: SA_INVALID");

    sa_jw_free(w);
    sa_sparse_free(&s);
    sa_analyzer_free(a);
}


/* two words whose indices are equal, found among many: their values add
   up in documents, their counts in queries */

typedef struct {
    uint32_t  index;
    uint32_t  n;
} idx_t;


static int
idx_cmp(const void *one, const void *two)
{
    const idx_t  *a = one, *b = two;

    return (a->index > b->index) - (a->index < b->index);
}


static void
test_collisions(void)
{
    char            w1[16], w2[16], text[64];
    size_t          i, n;
    idx_t          *all;
    sa_sparse_t     s;
    sa_analyzer_t  *a;
    double          norm;

    n = 300000;
    all = malloc(n * sizeof(idx_t));

    for (i = 0; i < n; i++) {
        snprintf(w1, sizeof(w1), "w%zu", i);
        all[i].index = sa_sparse_index(w1, strlen(w1));
        all[i].n = (uint32_t) i;
    }

    qsort(all, n, sizeof(idx_t), idx_cmp);

    for (i = 1; i < n; i++) {
        if (all[i].index == all[i - 1].index) {
            break;
        }
    }

    if (!ok(i < n, "a collision among %zu words", n)) {
        free(all);
        return;
    }

    snprintf(w1, sizeof(w1), "w%u", all[i - 1].n);
    snprintf(w2, sizeof(w2), "w%u", all[i].n);
    free(all);

    a = sa_analyzer_new("simple");
    memset(&s, 0, sizeof(s));

    snprintf(text, sizeof(text), "%s %s %s", w1, w2, w1);
    sa_sparse_document(a, text, strlen(text), 3, 3.0, 0.9, 0.4, &s);

    norm = 0.9;
    ok(s.n == 1 && fabs(s.values[0] - (2 * 1.9 / (2 + norm)
                                       + 1.9 / (1 + norm))) < 1e-6,
       "document: %s and %s share an index, their values add up", w1, w2);

    sa_sparse_query(a, text, strlen(text), &s);
    ok(s.n == 1 && s.values[0] == 3, "query: their counts add up");

    sa_sparse_free(&s);
    sa_analyzer_free(a);
}


static void
test_point_id(void)
{
    int            i, hexes;
    char           id[SA_KB_POINT_ID_SIZE], id2[SA_KB_POINT_ID_SIZE];
    const char    *text;
    unsigned char  h[SA_KB_HASH_SIZE];

    text = "EU customers may return items within 30 days.";
    sa_kb_hash(text, strlen(text), 0, h);

    sa_kb_point_id("billing/refunds", 15, h, id);

    /* computed with an independent MurmurHash3 x64 128 in Python (which
       gives the test vector of test_kb.c) */
    is_str(id, "b2200fce-a1ca-52e4-8f61-555ed4285318", "the point id");

    hexes = 0;

    for (i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            hexes += id[i] == '-';

        } else {
            hexes += (id[i] >= '0' && id[i] <= '9')
                     || (id[i] >= 'a' && id[i] <= 'f');
        }
    }

    ok(hexes == 36 && id[36] == '\0', "8-4-4-4-12 lower-case hex");
    ok(id[14] == '5' && strchr("89ab", id[19]) != NULL,
       "version 5, RFC 4122 variant");

    sa_kb_point_id("billing/refund", 14, h, id2);
    ok(strcmp(id, id2) != 0, "another document: another id");

    h[0] ^= 1;
    sa_kb_point_id("billing/refunds", 15, h, id2);
    ok(strcmp(id, id2) != 0, "another text: another id");
}


int
main(void)
{
    test_murmur();
    test_vectors();
    test_collisions();
    test_point_id();

    return done_testing();
}
