
/*
 * Copyright (C) ngx_support_agent authors
 *
 * sa_fuse: reciprocal rank fusion (scores, weights, ties, duplicates, bad
 * arguments) and the built-in lexical reranker (coverage, proximity,
 * headings, weights, empty and hostile input).
 */


#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "sa_fuse.h"


static int
near(double a, double b)
{
    return fabs(a - b) < 1e-6;
}


static void
test_rrf(void)
{
    size_t          n;
    sa_kb_hit_t     a[3] = { {10, 9}, {20, 8}, {30, 7} };
    sa_kb_hit_t     b[3] = { {30, 0.9f}, {40, 0.8f}, {10, 0.7f} };
    sa_kb_hit_t     dup[3] = { {5, 3}, {5, 2}, {6, 1} };
    sa_kb_hit_t     out[8];
    sa_fuse_list_t  lists[2];

    lists[0].hits = a;
    lists[0].n = 3;
    lists[0].weight = 1;
    lists[1].hits = b;
    lists[1].n = 3;
    lists[1].weight = 1;

    ok(sa_fuse_rrf(lists, 2, 60, out, 8, &n) == SA_OK, "rrf: ok");
    is_int(n, 4, "rrf: four distinct chunks");

    /* 10: 1/61 + 1/63; 30: 1/63 + 1/61 -> tie, broken by best rank (both
       1), then chunk id; 20: 1/62; 40: 1/62 -> tie, best rank 2 both,
       chunk id */
    is_int(out[0].chunk, 10, "rrf: tie on score and best rank: lower id");
    is_int(out[1].chunk, 30, "rrf: the other of the tie");
    is_int(out[2].chunk, 20, "rrf: then 20");
    is_int(out[3].chunk, 40, "rrf: then 40");
    ok(near(out[0].score, 1.0 / 61 + 1.0 / 63), "rrf: score is the sum");

    lists[1].weight = 2;
    ok(sa_fuse_rrf(lists, 2, 60, out, 8, &n) == SA_OK, "weighted: ok");
    is_int(out[0].chunk, 30, "weighted: the dense first place wins");
    ok(near(out[0].score, 1.0 / 63 + 2.0 / 61), "weighted: score");
    is_int(out[1].chunk, 10, "weighted: then 10");
    is_int(out[2].chunk, 40, "weighted: 40 (2/62) before 20 (1/62)");

    ok(sa_fuse_rrf(lists, 2, 60, out, 2, &n) == SA_OK && n == 2,
       "limit cuts");

    ok(sa_fuse_rrf(lists, 1, 60, out, 8, &n) == SA_OK && n == 3
       && out[0].chunk == 10 && out[2].chunk == 30,
       "one list keeps its order");

    lists[0].hits = dup;
    ok(sa_fuse_rrf(lists, 1, 0, out, 8, &n) == SA_OK && n == 2
       && out[0].chunk == 5 && near(out[0].score, 1.0)
       && near(out[1].score, 1.0 / 3),
       "a repeated chunk counts once, at its best rank");

    lists[0].n = 0;
    lists[1].n = 0;
    ok(sa_fuse_rrf(lists, 2, 60, out, 8, &n) == SA_OK && n == 0,
       "empty lists");

    lists[0].weight = 0;
    ok(sa_fuse_rrf(lists, 2, 60, out, 8, &n) == SA_INVALID,
       "weight 0 refused");
    lists[0].weight = 1;
    ok(sa_fuse_rrf(lists, 2, -1, out, 8, &n) == SA_INVALID,
       "negative k refused");
    ok(sa_fuse_rrf(lists, SA_FUSE_MAX_LISTS + 1, 60, out, 8, &n)
       == SA_INVALID, "too many lists refused");
}


static double
weight_rare(void *data, const char *term, size_t len)
{
    /* "refund" is rare, "order" common */
    if (len == 6 && memcmp(term, "refund", 6) == 0) {
        return 5;
    }

    return 1;
}


static void
test_rerank(void)
{
    float             s[6];
    sa_analyzer_t    *a;
    sa_rerank_doc_t   d[6];
    const char       *q = "How long does a refund take for my order?";
    const char       *words[] = { "how", "does", "my", "long", NULL };
    sa_rerank_stop_t *stop;
    char             *big;
    size_t            i;

    a = sa_analyzer_new("english");
    is_str(sa_analyzer_language(a), "english", "rerank: english analyzer");

    stop = sa_rerank_stop_new(a, words);
    ok(stop != NULL, "a stop list, analyzed once");

    d[0].heading = "Refunds";
    d[0].text = "A refund takes five to ten days after we receive your order.";
    d[1].heading = "Orders";
    d[1].text = "Your order ships in two days. Track the order online.";
    d[2].heading = "Shipping";
    d[2].text = "We ship worldwide.";
    d[3].heading = "Refunds > Timing";
    d[3].text = "The refund appears on your statement. Many unrelated words "
                "come here to separate things from each other so that the "
                "order is far away from it.";
    d[4].heading = "";
    d[4].text = "";
    d[5].heading = "Refund";
    d[5].text = "\xff\xfe refund \xc3 order";

    for (i = 0; i < 6; i++) {
        d[i].heading_len = strlen(d[i].heading);
        d[i].text_len = strlen(d[i].text);
    }

    ok(sa_rerank_lexical(a, q, strlen(q), d, 6, NULL, NULL, NULL, s)
       == SA_OK, "rerank: ok");
    ok(s[0] > s[1], "rerank: the answer beats a chunk with fewer terms");
    ok(s[2] == 0, "rerank: no shared term scores 0");
    ok(s[4] == 0, "rerank: an empty chunk scores 0");
    ok(s[0] > s[3], "rerank: terms close together beat terms far apart");
    ok(s[0] <= 1 && s[0] > 0.3, "rerank: an answer scores well, <= 1");
    ok(s[5] > 0, "rerank: invalid UTF-8 is only a separator");

    ok(sa_rerank_lexical(a, q, strlen(q), d, 6, NULL, weight_rare, NULL, s)
       == SA_OK, "weighted: ok");
    ok(s[3] > s[1], "weighted: the rare term outweighs the common one");

    ok(sa_rerank_lexical(a, "the and of", 10, d, 6, NULL, NULL, NULL, s)
       == SA_OK && s[0] == 0 && s[1] == 0, "stop words only: all 0");

    ok(sa_rerank_lexical(a, q, strlen(q), d, 6, stop, NULL, NULL, s)
       == SA_OK && s[1] > 0 && s[0] > s[1],
       "a stop list: its words weigh nothing");
    ok(sa_rerank_lexical(a, "how do I", 8, d, 6, stop, NULL, NULL, s)
       == SA_OK && s[0] == 0, "a question of stop words only: all 0");

    ok(sa_rerank_lexical(a, "", 0, d, 6, NULL, NULL, NULL, s) == SA_OK
       && s[0] == 0, "empty query: all 0");

    ok(sa_rerank_lexical(a, q, strlen(q), d, 0, NULL, NULL, NULL, s)
       == SA_OK, "no candidates");

    /* a query of many distinct terms: only the first ones weigh */
    big = malloc(200 * 8);
    for (i = 0; i < 200; i++) {
        sprintf(big + i * 8, "w%05zu ", i);
    }

    d[0].text = big;
    d[0].text_len = strlen(big);

    ok(sa_rerank_lexical(a, big, strlen(big), d, 1, NULL, NULL, NULL, s)
       == SA_OK
       && s[0] > 0.5 && s[0] <= 1,
       "200 terms: bounded, the same text matches");

    free(big);
    sa_rerank_stop_free(stop);
    sa_analyzer_free(a);
}


int
main(void)
{
    test_rrf();
    test_rerank();

    return done_testing();
}
