
/*
 * Copyright (C) ngx_support_agent authors
 *
 * sa_query: word counting, short messages exactly as plain BM25, long
 * messages without their stop words, rescoring by adjacent word pairs
 * (and pairs not crossing sentences), determinism, empty, huge and
 * invalid UTF-8 input, filters, and a KB of the "simple" language.
 */


#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tap.h"
#include "sa_kb.h"
#include "sa_query.h"


static char  tmp_dir[] = "/tmp/sa_query_test_XXXXXX";
static char  kb_path[512];
static char  simple_path[512];


typedef struct {
    const char  *id;
    const char  *area;
    const char  *text;
} doc_t;


/*
 * The two "silver" chunks have the same terms and length, so the same
 * BM25 score for any query; the scattered one has the lower chunk id and
 * wins the tie, unless the pairs of the message decide.
 */

static doc_t  corpus[] = {
    { "cards/silver-scattered", "cards",
      "rewards silver benefits card gold" },
    { "cards/silver-adjacent", "cards",
      "silver rewards card benefits gold" },
    { "help/asking", "help",
      "ask us what you want: tell us what you need, ask again if you want "
      "to, and we will get back to you" },
    { "cards/replacement", "cards",
      "order a replacement card when your card is lost or stolen" },
    { "billing/refunds", "billing",
      "refund policy for the silver card annual fee" },
    { "misc/zebra", "misc",
      "zebra crossing" },
    { NULL, NULL, NULL }
};


/* 20 words, all of them stop words or filler */
#define FILLER                                                               \
    "I would like to ask you: can you tell me more about it? "               \
    "Thank you, I really need to know. "

#define FILLER4  FILLER FILLER FILLER FILLER


static int
build(const char *path, const char *language)
{
    int                   i, rc;
    char                  err[512];
    sa_kb_doc_t           d;
    sa_kb_writer_t       *w;
    sa_kb_wchunk_t        c;
    sa_kb_writer_conf_t   conf;

    memset(&conf, 0, sizeof(conf));
    conf.max_chars = 1000;
    conf.language = language;

    rc = sa_kb_writer_open(&w, path, &conf, err, sizeof(err));
    if (rc != SA_OK) {
        printf("# writer_open: %s\n", err);
        return rc;
    }

    for (i = 0; corpus[i].id != NULL; i++) {
        memset(&d, 0, sizeof(d));
        d.id = corpus[i].id;
        d.title = "";
        d.kind = 2;
        d.product_area = corpus[i].area;
        sa_kb_hash(d.id, strlen(d.id), 0, d.hash);

        rc = sa_kb_writer_check(w, d.id, d.hash);
        if (rc != SA_NOT_FOUND) {
            printf("# check: %s\n", sa_kb_writer_error(w));
            sa_kb_writer_abort(w);
            return SA_ERROR;
        }
    }

    if (sa_kb_writer_prune(w) != SA_OK) {
        sa_kb_writer_abort(w);
        return SA_ERROR;
    }

    for (i = 0; corpus[i].id != NULL; i++) {
        memset(&d, 0, sizeof(d));
        d.id = corpus[i].id;
        d.title = "";
        d.kind = 2;
        d.product_area = corpus[i].area;
        sa_kb_hash(d.id, strlen(d.id), 0, d.hash);

        memset(&c, 0, sizeof(c));
        c.text = corpus[i].text;
        c.text_len = strlen(corpus[i].text);

        rc = sa_kb_writer_add(w, &d, &c, 1);
        if (rc != SA_OK) {
            printf("# add: %s\n", sa_kb_writer_error(w));
            sa_kb_writer_abort(w);
            return rc;
        }
    }

    rc = sa_kb_writer_finish(w, NULL, err, sizeof(err));
    if (rc != SA_OK) {
        printf("# finish: %s\n", err);
    }

    return rc;
}


static sa_kb_t *
open_kb(const char *path)
{
    char      err[512];
    sa_kb_t  *kb;

    if (sa_kb_open(&kb, path, err, sizeof(err)) != SA_OK) {
        printf("Bail out! %s\n", err);
        exit(1);
    }

    return kb;
}


/* the doc id of a chunk, in a static buffer */

static const char *
doc_of(sa_kb_t *kb, uint32_t chunk)
{
    static char    buf[256];
    sa_kb_chunk_t  c;

    if (sa_kb_chunk(kb, chunk, &c) != SA_OK) {
        return "(none)";
    }

    snprintf(buf, sizeof(buf), "%s", c.doc_id);
    sa_kb_chunk_free(&c);

    return buf;
}


static int
same_hits(const sa_kb_hit_t *a, size_t na, const sa_kb_hit_t *b, size_t nb)
{
    size_t  i;

    if (na != nb) {
        return 0;
    }

    for (i = 0; i < na; i++) {
        if (a[i].chunk != b[i].chunk
            || memcmp(&a[i].score, &b[i].score, sizeof(float)) != 0)
        {
            return 0;
        }
    }

    return 1;
}


/* s with \t, \r and \n written out, for a test's name */

static const char *
show(const char *s)
{
    size_t       n;
    static char  buf[256];

    for (n = 0; *s != '\0' && n + 3 < sizeof(buf); s++) {
        if (*s == '\t' || *s == '\r' || *s == '\n') {
            buf[n++] = '\\';
            buf[n++] = (*s == '\t') ? 't' : (*s == '\r') ? 'r' : 'n';

        } else {
            buf[n++] = *s;
        }
    }

    buf[n] = '\0';

    return buf;
}


static int
query(sa_kb_t *kb, const char *text, const sa_query_conf_t *conf,
    size_t k, sa_kb_hit_t *hits, size_t *n)
{
    return sa_query_search(kb, text, strlen(text), NULL, 0, conf, k, hits,
                           n);
}


static void
test_words(void)
{
    sa_query_conf_t  conf;

    sa_query_conf_init(&conf);

    is_int(conf.long_words, 40, "default: 40 words make a long message");
    ok(conf.k1 < 0 && conf.b == 0.75f, "default: KB's k1, b 0.75");
    ok(conf.stop == 1 && conf.rerank == 50 && conf.pairs == 1.0f
       && conf.max_bytes == 32768, "default: stop 1, rerank 50, pairs 1, "
       "max_bytes 32768");

    is_int(sa_query_words("", 0, 0), 0, "no words in \"\"");
    is_int(sa_query_words(" \t\r\n\f\v ", 7, 0), 0,
           "no words in white space");
    is_int(sa_query_words("card", 4, 0), 1, "one word");
    is_int(sa_query_words("  lost\tmy\n\ncard  ", 17, 0), 3,
           "runs of white space separate words");
    is_int(sa_query_words("card.lost,stolen!", 17, 0), 1,
           "punctuation does not");
    is_int(sa_query_words("\xff\xfe \xc3\xa9t\xc3\xa9 \xe2\x80\x99", 12, 0),
           3, "invalid UTF-8 and non-ASCII bytes are word bytes");
    is_int(sa_query_words("a\0b c", 5, 0), 2, "a NUL byte is a word byte");
    is_int(sa_query_words("a b c d e", 9, 3), 3, "counting stops at max");
    is_int(sa_query_words("a b", 3, 3), 2, "fewer than max");
}


static void
test_short(sa_kb_t *kb)
{
    int              i, rc1, rc2;
    size_t           n1, n2;
    sa_kb_hit_t      h1[16], h2[16];
    sa_kb_filter_t   f;
    sa_query_conf_t  conf;

    static const char  *s43 = "silver rewards card " FILLER FILLER;

    static const char  *queries[] = {
        "silver rewards card",
        "I lost my card, can you send me a replacement?",
        "what do you want",
        "",
        "   ",
        "\xff\xfe card \xc3",
        NULL
    };

    for (i = 0; queries[i] != NULL; i++) {
        rc1 = sa_query_search(kb, queries[i], strlen(queries[i]), NULL, 0,
                              NULL, 16, h1, &n1);
        rc2 = sa_kb_search_bm25_ex(kb, queries[i], strlen(queries[i]), NULL,
                                   0, -1, -1, 16, h2, &n2);

        ok(rc1 == SA_OK && rc2 == SA_OK && same_hits(h1, n1, h2, n2),
           "short \"%s\": plain BM25 (%zu hits)", queries[i], n1);
    }

    /* with a filter and flags */

    memset(&f, 0, sizeof(f));
    f.product_area = "cards";

    rc1 = sa_query_search(kb, "silver card", 11, &f, SA_KB_MATCH_UNSET,
                          NULL, 16, h1, &n1);
    rc2 = sa_kb_search_bm25_ex(kb, "silver card", 11, &f, SA_KB_MATCH_UNSET,
                               -1, -1, 16, h2, &n2);
    ok(rc1 == SA_OK && rc2 == SA_OK && n1 == 3 && same_hits(h1, n1, h2, n2),
       "short with a filter: plain BM25");

    /* 43 words: short below long_words 44, whatever the conf says about
       long messages, and long from long_words 43 */

    sa_query_conf_init(&conf);
    conf.pairs = 5;
    conf.b = 1;
    conf.long_words = 44;

    is_int(sa_query_words(s43, strlen(s43), 0), 43, "43 words");

    rc1 = query(kb, s43, &conf, 16, h1, &n1);
    rc2 = sa_kb_search_bm25_ex(kb, s43, strlen(s43), NULL, 0, -1, -1, 16,
                               h2, &n2);
    ok(rc1 == SA_OK && rc2 == SA_OK && same_hits(h1, n1, h2, n2),
       "fewer words than long_words: plain BM25");

    conf.long_words = 43;

    rc1 = query(kb, s43, &conf, 16, h1, &n1);
    ok(rc1 == SA_OK && !same_hits(h1, n1, h2, n2),
       "as many words as long_words: long");

    /* long_words 0: never long */

    conf.long_words = 0;

    rc1 = query(kb, "silver rewards card. " FILLER4, &conf, 16, h1, &n1);
    rc2 = sa_kb_search_bm25_ex(kb, "silver rewards card. " FILLER4,
                               strlen("silver rewards card. " FILLER4), NULL,
                               0, -1, -1, 16, h2, &n2);
    ok(rc1 == SA_OK && rc2 == SA_OK && same_hits(h1, n1, h2, n2),
       "long_words 0: a long message is searched as plain BM25");
}


static void
test_long(sa_kb_t *kb)
{
    int              rc;
    size_t           n, n2, i;
    sa_kb_hit_t      hits[16], h2[16];
    sa_query_conf_t  conf;
    const char      *msg;

    /*
     * Filler words repeated drown the need in plain BM25; without them
     * the replacement card comes first.
     */

    msg = "Hi! I want to ask you, and tell you what I need: a replacement "
          "card. " FILLER4;

    ok(sa_query_words(msg, strlen(msg), 0) >= 40, "a long message");

    rc = sa_kb_search_bm25_ex(kb, msg, strlen(msg), NULL, 0, -1, -1, 16,
                              hits, &n);
    ok(rc == SA_OK && n > 0 && strcmp(doc_of(kb, hits[0].chunk),
                                      "help/asking") == 0,
       "plain BM25: the filler article first (%s)",
       n ? doc_of(kb, hits[0].chunk) : "none");

    rc = query(kb, msg, NULL, 16, hits, &n);
    ok(rc == SA_OK && n > 0, "long message: hits");
    is_str(n ? doc_of(kb, hits[0].chunk) : "none", "cards/replacement",
           "long message: the replacement card first");

    for (i = 0; i < n; i++) {
        if (strcmp(doc_of(kb, hits[i].chunk), "help/asking") == 0) {
            break;
        }
    }

    ok(i == n, "the filler article matches nothing left");

    /* stop 0 and b 0.4 with no pairs: plain BM25 again */

    sa_query_conf_init(&conf);
    conf.stop = 0;
    conf.b = -1;
    conf.pairs = 0;

    rc = query(kb, msg, &conf, 16, hits, &n);
    sa_kb_search_bm25_ex(kb, msg, strlen(msg), NULL, 0, -1, -1, 16, h2, &n2);
    ok(rc == SA_OK && same_hits(hits, n, h2, n2),
       "no stop words, the KB's b, no pairs: plain BM25 (words rejoined)");

    /* nothing but stop words: as a short message */

    rc = query(kb, FILLER4, NULL, 16, hits, &n);
    sa_kb_search_bm25_ex(kb, FILLER4, strlen(FILLER4), NULL, 0, -1, -1, 16,
                         h2, &n2);
    ok(rc == SA_OK && n > 0 && same_hits(hits, n, h2, n2),
       "only stop words: plain BM25 (%zu hits)", n);

    /* k 0 */

    rc = query(kb, msg, NULL, 0, hits, &n);
    ok(rc == SA_OK && n == 0, "k 0: nothing");

    /* a filter */

    {
        sa_kb_filter_t  f;

        memset(&f, 0, sizeof(f));
        f.product_area = "billing";

        rc = sa_query_search(kb, msg, strlen(msg), &f, 0, NULL, 16, hits,
                             &n);
        ok(rc == SA_OK && n == 1 && strcmp(doc_of(kb, hits[0].chunk),
                                           "billing/refunds") == 0,
           "a filter applies to long messages");
    }
}


static void
test_pairs(sa_kb_t *kb)
{
    int              rc;
    size_t           n, n2, i;
    sa_kb_hit_t      hits[16], h2[16];
    char             buf[1024];
    sa_query_conf_t  conf;
    const char      *msg, *split, *lines;

    static const char  *ends[] = {
        "silver! rewards", "silver? rewards", "silver; rewards",
        "silver: rewards", "silver.) rewards", "silver.\" rewards",
        "**silver.** rewards", "silver...\trewards", "silver\r\nrewards",
        NULL
    };

    static const char  *goes_on[] = {
        "**silver** rewards", "(silver) rewards", "silver, rewards",
        "silver - rewards", "\"silver\" rewards", "silver\trewards",
        NULL
    };

    msg = "Hello! I would like to ask you about the silver rewards card. "
          FILLER4;
    split = "Hello! I would like to ask you about the silver. Rewards "
            "card? " FILLER4;
    lines = "Hello! I would like to ask you about the silver\n\nrewards "
            "card " FILLER4;

    sa_query_conf_init(&conf);
    conf.pairs = 0;

    rc = query(kb, msg, &conf, 16, hits, &n);
    ok(rc == SA_OK && n >= 2
       && strcmp(doc_of(kb, hits[0].chunk), "cards/silver-scattered") == 0
       && hits[0].score == hits[1].score,
       "no pairs: the silver chunks tie, the lower chunk id first");

    rc = query(kb, msg, NULL, 16, hits, &n);
    ok(rc == SA_OK && n >= 2
       && strcmp(doc_of(kb, hits[0].chunk), "cards/silver-adjacent") == 0
       && hits[0].score > hits[1].score,
       "pairs: \"silver rewards card\" next to each other comes first");

    for (i = 1; i < n; i++) {
        if (hits[i - 1].score < hits[i].score
            || (hits[i - 1].score == hits[i].score
                && hits[i - 1].chunk > hits[i].chunk))
        {
            break;
        }
    }

    ok(i == n, "hits by score descending, ties by chunk id");

    /* rerank 0: as pairs 0 */

    conf.pairs = 1;
    conf.rerank = 0;

    rc = query(kb, msg, &conf, 16, hits, &n);
    ok(rc == SA_OK && n >= 2
       && strcmp(doc_of(kb, hits[0].chunk), "cards/silver-scattered") == 0,
       "rerank 0: no rescoring");

    /* a sentence end or a line break cuts the pair */

    rc = query(kb, split, NULL, 16, hits, &n);
    rc |= query(kb, msg, NULL, 16, h2, &n2);
    ok(rc == SA_OK && n >= 2 && n2 >= 2 && hits[0].score < h2[0].score,
       "\"silver. Rewards\" is no pair: %.4f < %.4f", hits[0].score,
       h2[0].score);

    rc = query(kb, lines, NULL, 16, h2, &n2);
    ok(rc == SA_OK && same_hits(hits, n, h2, n2),
       "nor is \"silver\\n\\nrewards\": the same hits");

    /* what ends a sentence: . ! ? ; : before closing marks */

    for (i = 0; ends[i] != NULL; i++) {
        snprintf(buf, sizeof(buf), "Hello! I would like to ask you about "
                 "the %s card " FILLER4, ends[i]);
        rc = query(kb, buf, NULL, 16, h2, &n2);
        ok(rc == SA_OK && same_hits(hits, n, h2, n2),
           "\"%s\" ends a sentence", show(ends[i]));
    }

    rc = query(kb, msg, NULL, 16, hits, &n);

    for (i = 0; goes_on[i] != NULL; i++) {
        snprintf(buf, sizeof(buf), "Hello! I would like to ask you about "
                 "the %s card. " FILLER4, goes_on[i]);
        rc = query(kb, buf, NULL, 16, h2, &n2);
        ok(rc == SA_OK && same_hits(hits, n, h2, n2),
           "\"%s\" does not", show(goes_on[i]));
    }

    /* k below rerank: the best k of the rescored list */

    rc = query(kb, msg, NULL, 16, hits, &n);
    rc |= query(kb, msg, NULL, 2, h2, &n2);
    ok(rc == SA_OK && n2 == 2 && same_hits(hits, 2, h2, 2),
       "k 2: the first two of k 16");
}


static void
test_determinism(sa_kb_t *kb)
{
    int              i, same;
    size_t           n, n2;
    sa_kb_hit_t      hits[16], h2[16];
    const char      *msg;

    msg = "Hello! I lost my silver rewards card and I want a replacement "
          "card, and a refund of the annual fee. " FILLER4;

    same = 1;

    query(kb, msg, NULL, 16, hits, &n);

    for (i = 0; i < 20; i++) {
        query(kb, i % 2 ? "refund" : FILLER4, NULL, 16, h2, &n2);
        query(kb, msg, NULL, 16, h2, &n2);
        same &= same_hits(hits, n, h2, n2);
    }

    ok(same && n >= 4, "the same message gives the same hits (%zu)", n);
}


static void
test_input(sa_kb_t *kb)
{
    int              rc;
    char            *huge, *p;
    size_t           n, n2, len, i, cut;
    sa_kb_hit_t      hits[16], h2[16];
    sa_query_conf_t  conf;
    const char      *bad, *clean;

    rc = sa_query_search(kb, NULL, 0, NULL, 0, NULL, 16, hits, &n);
    ok(rc == SA_OK && n == 0, "NULL text: nothing");

    rc = query(kb, "", NULL, 16, hits, &n);
    ok(rc == SA_OK && n == 0, "empty text: nothing");

    /* invalid UTF-8 separates terms, as in the analyzer */

    bad = "Hello! I would like to ask you about the \xffsilver\xfe rewards "
          "\xc3" "card. " FILLER4 "\xe2\x80";
    clean = "Hello! I would like to ask you about the  silver  rewards "
            " card. " FILLER4 "  ";

    rc = query(kb, bad, NULL, 16, hits, &n);
    query(kb, clean, NULL, 16, h2, &n2);
    ok(rc == SA_OK && n > 0 && same_hits(hits, n, h2, n2),
       "invalid UTF-8 bytes: as if they were spaces");

    /* huge: only the first max_bytes are read, cut at white space */

    len = 1 << 20;
    huge = malloc(len + 1);

    if (huge == NULL) {
        ok(0, "malloc");
        return;
    }

    for (p = huge; p + 21 < huge + len - 32; p += 20) {
        memcpy(p, "silver rewards card ", 20);
    }

    memcpy(p, " zebra zebra zebra zebra zebra", 30);
    p += 30;
    *p = '\0';

    rc = sa_query_search(kb, huge, (size_t) (p - huge), NULL, 0, NULL, 16,
                         hits, &n);

    for (i = 0; i < n; i++) {
        if (strcmp(doc_of(kb, hits[i].chunk), "misc/zebra") == 0) {
            break;
        }
    }

    ok(rc == SA_OK && n > 0 && i == n,
       "1 MB message: searched, the words past max_bytes ignored");

    /* 32768 falls in "rewards": the cut is at the space before it */

    for (cut = 32768; huge[cut] != ' '; cut--) {
        /* void */
    }

    rc = sa_query_search(kb, huge, cut, NULL, 0, NULL, 16, h2, &n2);
    ok(rc == SA_OK && cut < 32768 && same_hits(hits, n, h2, n2),
       "the same as its first %zu bytes, cut at white space", cut);

    /* max_bytes 0: all of it */

    sa_query_conf_init(&conf);
    conf.max_bytes = 0;
    conf.rerank = 0;

    rc = sa_query_search(kb, huge, (size_t) (p - huge), NULL, 0, &conf, 16,
                         hits, &n);

    for (i = 0; i < n; i++) {
        if (strcmp(doc_of(kb, hits[i].chunk), "misc/zebra") == 0) {
            break;
        }
    }

    ok(rc == SA_OK && i < n, "max_bytes 0: the whole message is read");

    /* one huge word: cut at a character boundary */

    memset(huge, 'a', len);

    for (i = 0; i + 2 <= len; i += 2) {
        huge[i] = (char) 0xc3;
        huge[i + 1] = (char) 0xa9;
    }

    rc = sa_query_search(kb, huge, len, NULL, 0, NULL, 16, hits, &n);
    ok(rc == SA_OK && n == 0, "one 1 MB word: nothing, no error");

    free(huge);
}


static void
test_simple(void)
{
    int          rc;
    size_t       n;
    sa_kb_t     *kb;
    sa_kb_hit_t  hits[16];
    const char  *msg;

    rc = build(simple_path, "simple");
    is_int(rc, SA_OK, "a \"simple\" KB");

    if (rc != SA_OK) {
        return;
    }

    kb = open_kb(simple_path);

    msg = "Hello! I would like to ask you about the silver rewards card. "
          FILLER4;

    rc = query(kb, msg, NULL, 16, hits, &n);
    ok(rc == SA_OK && n >= 2
       && strcmp(doc_of(kb, hits[0].chunk), "cards/silver-adjacent") == 0,
       "simple: stop words unstemmed, pairs work");

    sa_kb_close(kb);
    unlink(simple_path);
}


int
main(void)
{
    int       rc;
    sa_kb_t  *kb;

    if (mkdtemp(tmp_dir) == NULL) {
        printf("Bail out! mkdtemp: %s\n", strerror(errno));
        return 1;
    }

    snprintf(kb_path, sizeof(kb_path), "%s/test.kb", tmp_dir);
    snprintf(simple_path, sizeof(simple_path), "%s/simple.kb", tmp_dir);

    test_words();

    rc = build(kb_path, NULL);
    is_int(rc, SA_OK, "built");

    if (rc == SA_OK) {
        kb = open_kb(kb_path);

        test_short(kb);
        test_long(kb);
        test_pairs(kb);
        test_determinism(kb);
        test_input(kb);

        sa_kb_close(kb);
    }

    test_simple();

    unlink(kb_path);
    rmdir(tmp_dir);

    return done_testing();
}
