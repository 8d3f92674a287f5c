
/*
 * Copyright (C) ngx_support_agent authors
 *
 * Query strategy: how a customer's message becomes a KB search.  Pure C,
 * no nginx types.
 *
 * A short message (a question, a sentence or two) is searched as it is
 * with BM25 (sa_kb_search_bm25_ex() with the KB's k1 and b): short
 * queries are what BM25 is tuned for, and every word in them counts.
 *
 * A long message (at least long_words words: a story with greetings,
 * details about the customer and several needs) drowns its topic in
 * words every message has.  BM25 counts a word repeated in the query as
 * often as it appears, so "you", "my", "want" and "ask", repeated twenty
 * times, outweigh the two mentions of "replacement card".  Such a
 * message is searched in three steps:
 *
 *   1. stop words: English function words (the Snowball/NLTK list) and
 *      conversational filler (greetings, thanks, "want", "need", "ask",
 *      "tell", ...) are dropped; every other word keeps all its
 *      occurrences, because what a customer repeats is what the message
 *      is about.
 *   2. BM25 with b = 0.75 (Robertson's default) instead of the KB's
 *      0.4: a long query shares some words with any long chunk by chance,
 *      so chunk length is normalised harder.
 *   3. the best rerank (50) chunks are rescored with the pairs of
 *      adjacent query words ("silver rewards", "rewards card") that they
 *      also have next to each other: names of products, features and
 *      procedures are phrases, and their words one by one are common in
 *      a help center.  A pair scores as a BM25 term of the collection of
 *      candidates (idf from how many of them have it), so a pair that
 *      sets a few candidates apart counts, and one they all have does
 *      not.  A pair does not cross a sentence end or a line break of the
 *      message.
 *
 * The hits are chunks, best first, ties by chunk id: the same input
 * always gives the same hits.  On the 49 tau2-banking dev tasks (whole
 * role-play scenarios of about 575 words as queries, a 698-article help
 * center indexed by section) this raises recall@10 of the needed articles
 * from 0.25 to 0.36 and nDCG@10 from 0.29 to 0.45; forced on SciFact's
 * short claims it leaves nDCG@10 as it is (0.697 to 0.703): see
 * kb-build/README.md.  A long message costs about 1 ms more than plain
 * BM25 (rescoring: the candidates are analyzed again, the index has no
 * positions); a short one costs nothing more.
 */


#ifndef _SA_QUERY_H_INCLUDED_
#define _SA_QUERY_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "sa_types.h"
#include "sa_kb.h"


typedef struct {
    /* a message of at least this many words (runs of non-white-space
       bytes) is long; 0: every message is searched as it is (plain
       BM25); 1: every message is long.  Default 40 (about three
       sentences) */
    size_t    long_words;

    /* BM25 for long messages; < 0: the KB's.  Defaults: k1 -1 (the KB's,
       0.9), b 0.75 */
    float     k1;
    float     b;

    /* 1: drop stop words and conversational filler from long messages
       (default 1) */
    int       stop;

    /* how many of the best chunks are rescored by word pairs (default
       50; the pairs' idf is counted among them); 0: none */
    size_t    rerank;

    /* the weight of a pair of adjacent words against a single word
       (default 1.0); 0: no rescoring */
    float     pairs;

    /* only the first max_bytes of a message are read, cut at white
       space, so that a huge message costs a bounded time (default
       32768); 0: no limit */
    size_t    max_bytes;
} sa_query_conf_t;


/* English function words and conversational filler ("how", "i", "can",
   "please", "want", ...), as written (analyze them with the KB's analyzer
   to compare with terms); NULL-terminated.  Long messages drop them; the
   built-in reranker gives them no weight. */
extern const char  *const sa_query_stop_words[];


/* fills conf with the defaults above */
void sa_query_conf_init(sa_query_conf_t *conf);

/* the words of text (runs of bytes other than ASCII white space), the
   measure of long_words; counts stop at max (0: no limit) */
size_t sa_query_words(const char *text, size_t len, size_t max);

/*
 * Searches kb for text (any bytes: white space separates words, invalid
 * UTF-8 separates terms, as in the analyzer) with conf (NULL: the
 * defaults).  filter and flags are those of sa_kb_search_bm25_ex().
 * hits (room for k) get the best *n <= k chunks, by score descending,
 * ties by chunk id ascending.
 *
 * A short message (within max_bytes) gives exactly what
 * sa_kb_search_bm25_ex(kb, text, len, filter, flags, -1, -1, k, hits, n)
 * gives.  The scores of a long message are BM25 with conf's k1 and b plus
 * the pairs' bonus: not comparable with those of a short one, so a
 * relevance threshold on scores should not be shared.  A long message
 * with nothing left after its stop words is searched as a short one.
 *
 * A call uses kb (one thread at a time, as kb) and memory of its own,
 * freed before it returns.  SA_OK, also with *n == 0; SA_ERROR (out of
 * memory, a damaged KB: sa_kb_last_error() says which, "" for memory
 * that ran out here).
 */
int sa_query_search(sa_kb_t *kb, const char *text, size_t len,
    const sa_kb_filter_t *filter, unsigned flags,
    const sa_query_conf_t *conf, size_t k, sa_kb_hit_t *hits, size_t *n);


/* qsort() order of hits: score descending, ties by chunk id ascending */
int sa_query_hit_cmp(const void *one, const void *two);


#endif /* _SA_QUERY_H_INCLUDED_ */
