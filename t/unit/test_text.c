
/*
 * Copyright (C) ngx_support_agent authors
 *
 * sa_text: the KB analyzer (Lucene EnglishAnalyzer's behaviour).
 */


#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "sa_text.h"


typedef struct {
    char      out[8192];
    size_t    len;
    int       stop_at;      /* the handler aborts at this term, 0: never */
    int       n;
    uint32_t  positions[256];
} terms_t;


static int
collect(void *data, const char *term, size_t len, uint32_t position)
{
    terms_t  *t = data;

    if (strlen(term) != len) {
        return 99;
    }

    if (t->n < 256) {
        t->positions[t->n] = position;
    }

    t->n++;

    if (t->len + len + 2 < sizeof(t->out)) {
        if (t->len > 0) {
            t->out[t->len++] = ' ';
        }

        memcpy(t->out + t->len, term, len);
        t->len += len;
        t->out[t->len] = '\0';
    }

    if (t->stop_at && t->n == t->stop_at) {
        return 7;
    }

    return 0;
}


static const char *
analyze(sa_analyzer_t *a, const char *text, size_t len, terms_t *t)
{
    memset(t, 0, sizeof(terms_t));

    if (sa_analyze(a, text, len, collect, t) != SA_OK) {
        return "(error)";
    }

    return t->out;
}


#define terms_are(a, text, want, name)                                       \
    do {                                                                     \
        terms_t  t_;                                                         \
        is_str(analyze(a, text, strlen(text), &t_), want, name);            \
    } while (0)


int
main(void)
{
    int             i;
    char            big[2048], other[2048];
    terms_t         t, t2;
    sa_analyzer_t  *en, *simple;

    en = sa_analyzer_new("english");
    simple = sa_analyzer_new("simple");

    ok(en != NULL && simple != NULL, "analyzers created");
    ok(sa_analyzer_new("klingon") == NULL, "unknown language refused");
    ok(sa_analyzer_new(NULL) == NULL, "no language refused");
    is_str(sa_analyzer_language(en), "english", "language name");
    is_str(sa_analyzer_language(simple), "simple", "language name simple");

    /* stop words: Lucene's 33, positions still count them */

    analyze(en, "The cat is on the mat", 21, &t);
    is_str(t.out, "cat mat", "stop words removed");
    ok(t.n == 2 && t.positions[0] == 1 && t.positions[1] == 5,
       "positions count the stop words");

    terms_are(en, "a an and are as at be but by for if in into is it no not "
              "of on or such that the their then there these they this to "
              "was will with", "", "all 33 stop words");
    terms_are(en, "what about those", "what about those",
              "other function words are kept (and stemmed)");

    /* possessives */

    terms_are(en, "John's car", "john car", "possessive 's dropped");
    terms_are(en, "JOHN'S", "john", "possessive 'S dropped");
    terms_are(en, "John\xe2\x80\x99s bike", "john bike",
              "possessive with U+2019");
    terms_are(en, "the students' grades", "student grade",
              "plural possessive: the apostrophe is not in the token");
    terms_are(en, "don't won't", "don't won't", "contractions stay whole");
    terms_are(simple, "John's", "john's", "simple keeps the possessive");

    /* numbers */

    terms_are(en, "order 4217 was late", "order 4217 late", "4217 kept");
    terms_are(en, "pi is 3.14, about 1,000 times", "pi 3.14 about 1,000 time",
              "decimals and thousands stay whole");
    terms_are(en, "version v1.2.3 and 2024-05-01",
              "version v1.2.3 2024 05 01", "versions; dates split at -");
    terms_are(en, "H1N1 and COVID19", "h1n1 covid19",
              "letters and digits together");
    terms_are(en, "the 1990s", "1990", "1990s stems to 1990");

    /* hyphens, punctuation */

    terms_are(en, "e-mail covid-19 well-known", "e mail covid 19 well known",
              "hyphens split");
    terms_are(en, "U.S.A. and e.g. foo_bar", "u.s.a e.g foo_bar",
              "mid-word dots and underscores stay");
    terms_are(en, "ratio a:b 1:2", "ratio a:b 1 2",
              "a colon joins letters, not digits");
    terms_are(en, "support@example.com/help?x=1",
              "support example.com help x 1", "e-mail and url pieces");
    terms_are(en, "(hello), [world]! \"quoted\"", "hello world quot",
              "brackets and quotes split");

    /* unicode */

    terms_are(en, "Stra\xc3\x9f" "e \xc3\x89" "COLE \xd0\x9c\xd0\xbe\xd1\x81"
              "\xd0\xba\xd0\xb2\xd0\xb0",
              "stra\xc3\x9f" "e \xc3\xa9" "cole \xd0\xbc\xd0\xbe\xd1\x81"
              "\xd0\xba\xd0\xb2\xd0\xb0",
              "Latin-1, Cyrillic lowercased");
    terms_are(en, "\xc3\x85NGSTR\xc3\x96M \xc4\xb0stanbul \xce\xa3\xce\x9f",
              "\xc3\xa5ngstr\xc3\xb6m istanbul \xcf\x83\xce\xbf",
              "Latin Extended-A, dotted I, Greek");
    terms_are(en, "\xe6\x9d\xb1\xe4\xba\xac", "\xe6\x9d\xb1 \xe4\xba\xac",
              "ideographs one per token");
    terms_are(en, "\xe3\x82\xab\xe3\x82\xbf\xe3\x82\xab\xe3\x83\x8a",
              "\xe3\x82\xab\xe3\x82\xbf\xe3\x82\xab\xe3\x83\x8a",
              "katakana run one token");
    terms_are(en, "caf\x65\xcc\x81 ok", "cafe\xcc\x81 ok",
              "combining mark stays with its letter");
    terms_are(en, "great \xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd job",
              "great \xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd job",
              "emoji with skin tone is a token");
    terms_are(en, "\xc2\xa0nbsp\xe3\x80\x80ideographic space",
              "nbsp ideograph space", "unicode spaces separate");

    /* invalid UTF-8: bytes that are not UTF-8 separate tokens */

    terms_are(en, "ab\xff" "cd", "ab cd", "0xff separates");
    terms_are(en, "refund\xc3", "refund", "cut sequence at the end");
    terms_are(en, "\xc0\xafpath\xed\xa0\x80x",
              "path x", "overlong and surrogate bytes separate");
    terms_are(en, "\xe2\x82", "", "only a broken sequence");

    analyze(en, "a\0b", 3, &t);
    is_str(t.out, "b", "NUL separates (a is a stop word)");

    /* long tokens are skipped, their position counts */

    memset(big, 'x', 300);
    memcpy(big + 300, " next", 6);
    analyze(en, big, strlen(big), &t);
    ok(t.n == 1 && strcmp(t.out, "next") == 0 && t.positions[0] == 1,
       "a 300-byte token is skipped");

    memset(big, 'y', 255);
    big[255] = '\0';
    analyze(simple, big, 255, &t);
    ok(t.n == 1 && t.len == 255, "a 255-byte token is kept");

    /* stemming: the original Porter algorithm, as Lucene's */

    terms_are(en, "running runs ran", "run run ran", "run");
    terms_are(en, "ponies caresses cats", "poni caress cat", "step 1a");
    terms_are(en, "generalization relational", "gener relat", "steps 2-4");
    terms_are(en, "technology possibly irreversibly",
              "technolog possibl irrevers",
              "Porter's reference departures (logi, bli), as Lucene");
    terms_are(en, "assemblies methodologies", "assembl methodolog",
              "departures after step 1");
    terms_are(en, "us gas is", "us ga", "two-letter words are not stemmed");
    terms_are(simple, "The Running Ponies", "the running ponies",
              "simple: lowercase only");

    /* the handler's value stops the analysis and is returned */

    memset(&t, 0, sizeof(terms_t));
    t.stop_at = 2;
    is_int(sa_analyze(en, "one two three four", 18, collect, &t), 7,
           "handler's value returned");
    is_int(t.n, 2, "analysis stopped at once");

    is_int(sa_analyze(en, "", 0, collect, &t), SA_OK, "empty text");

    /* determinism, also on random bytes */

    srand(42);

    for (i = 0; i < 2000; i++) {
        big[i] = (char) (rand() % 256);
    }

    memcpy(other, big, 2000);

    analyze(en, big, 2000, &t);
    analyze(en, other, 2000, &t2);
    ok(t.n == t2.n && strcmp(t.out, t2.out) == 0,
       "random bytes: same terms twice (%d)", t.n);

    sa_analyzer_free(en);
    sa_analyzer_free(simple);
    sa_analyzer_free(NULL);

    return done_testing();
}
