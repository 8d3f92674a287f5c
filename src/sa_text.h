
/*
 * Copyright (C) ngx_support_agent authors
 *
 * Text analysis for the knowledge base: the one analyzer that turns both
 * the indexed chunks (kb-build) and the customer's query (the module) into
 * terms, so that the two always agree.
 *
 * "english" follows Lucene's EnglishAnalyzer:
 *
 *   1. StandardTokenizer (Unicode UAX #29 word boundaries): letters and
 *      digits form words; words are split on white space and punctuation,
 *      but "don't", "john's", "u.s.a", "3.14", "1,000", "h1n1", "foo_bar"
 *      stay whole (a mid-word ' . : , ; between letters or digits as
 *      UAX #29 says); hyphens split ("covid-19" gives "covid", "19").
 *      Han ideographs and hiragana are one token per character, katakana
 *      and south-east Asian scripts (Thai, Lao, Khmer, Myanmar) one token
 *      per run.  Tokens longer than SA_TEXT_MAX_TOKEN bytes are skipped
 *      (their position still counts).  Bytes that are not valid UTF-8
 *      separate tokens, like punctuation.
 *   2. EnglishPossessiveFilter: a trailing 's ('s with U+2019 or U+FF07
 *      as well) is dropped.
 *   3. LowerCaseFilter: simple Unicode lowercase mapping of every letter.
 *   4. StopFilter with Lucene's 33 English stop words.
 *   5. PorterStemFilter: the original Porter stemmer (Snowball's "porter",
 *      through libstemmer); words of one or two characters are left as
 *      they are, as in Porter's reference code.
 *
 * "simple" is steps 1 and 3 only.
 *
 * An analyzer owns a Snowball stemmer, which is not thread-safe: use one
 * analyzer per thread.  Analysis is deterministic: it depends only on the
 * text and the tables compiled into sa_text.c (Unicode 14.0).
 */


#ifndef _SA_TEXT_H_INCLUDED_
#define _SA_TEXT_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "sa_types.h"


/* bytes of UTF-8, before lowercasing */
#define SA_TEXT_MAX_TOKEN  255

/* the longest term a handler may get, NUL excluded (lowercasing may grow
   a few letters by a byte) */
#define SA_TEXT_MAX_TERM   (SA_TEXT_MAX_TOKEN * 3 / 2)


typedef struct sa_analyzer_s  sa_analyzer_t;


/* language: "english" or "simple"; NULL for an unknown language or when
   out of memory */
sa_analyzer_t *sa_analyzer_new(const char *language);

/* a may be NULL */
void sa_analyzer_free(sa_analyzer_t *a);

const char *sa_analyzer_language(const sa_analyzer_t *a);


/* term: NUL-terminated, len bytes, valid during the call only; position:
   the token's position in the text (0-based; removed stop words and
   skipped tokens count, as in Lucene).  A non-zero return stops the
   analysis. */
typedef int (*sa_term_pt)(void *data, const char *term, size_t len,
    uint32_t position);

/* calls handler for every term of text, in order.  Returns SA_OK,
   SA_ERROR (out of memory in the stemmer) or the handler's non-zero
   value. */
int sa_analyze(sa_analyzer_t *a, const char *text, size_t len,
    sa_term_pt handler, void *data);


#endif /* _SA_TEXT_H_INCLUDED_ */
