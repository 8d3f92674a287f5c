
/*
 * Copyright (C) ngx_support_agent authors
 *
 * sa_chunk: front matter, sections, paths, anchors, bounded chunks with
 * overlap, line endings, bad input, and random documents under ASan.
 */


#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "sa_chunk.h"
#include "sa_utf8.h"


typedef struct {
    sa_doc_meta_t   meta;
    sa_chunk_t     *c;
    size_t          n;
    int             rc;
} doc_t;


static void
doc_run(doc_t *d, const char *md, size_t len, size_t max, size_t overlap)
{
    d->rc = sa_chunk_markdown(md, len, max, overlap, &d->meta, &d->c, &d->n);
}


static void
doc(doc_t *d, const char *md, size_t max, size_t overlap)
{
    doc_run(d, md, strlen(md), max, overlap);
}


static void
doc_free(doc_t *d)
{
    sa_chunks_free(d->c, d->n);
    sa_doc_meta_free(&d->meta);
    d->c = NULL;
    d->n = 0;
}


static int
is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\v';
}


/* what every chunk must be, whatever the input; returns a reason or NULL */

static const char *
chunk_problem(const sa_chunk_t *c, size_t n, size_t max)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (c[i].text == NULL || c[i].section == NULL || c[i].anchor == NULL) {
            return "a string is NULL";
        }

        if (strlen(c[i].text) != c[i].text_len) {
            return "text_len differs from the text";
        }

        if (c[i].text_len == 0) {
            return "empty chunk";
        }

        if (max && c[i].text_len > max) {
            return "chunk longer than max";
        }

        if (!sa_utf8_valid((const unsigned char *) c[i].text, c[i].text_len)
            || !sa_utf8_valid((const unsigned char *) c[i].section,
                              strlen(c[i].section))
            || !sa_utf8_valid((const unsigned char *) c[i].anchor,
                              strlen(c[i].anchor)))
        {
            return "invalid UTF-8 out";
        }

        if (is_ws(c[i].text[c[i].text_len - 1])) {
            return "trailing blank";
        }

        if (c[i].text[0] == '\n' || strchr(c[i].text, '\r') != NULL) {
            return "leading blank line or CR";
        }
    }

    return NULL;
}


/* the text without any blank characters */

static char *
squeeze(const char *s, size_t len, size_t *out_len)
{
    char    *d;
    size_t   i, j;

    d = malloc(len + 1);
    if (d == NULL) {
        abort();
    }

    for (i = 0, j = 0; i < len; i++) {
        if (!is_ws(s[i])) {
            d[j++] = s[i];
        }
    }

    d[j] = '\0';
    *out_len = j;

    return d;
}


/* every chunk's non-blank characters, in order */

static char *
squeeze_all(const sa_chunk_t *c, size_t n)
{
    char    *all, *one;
    size_t   i, len, total, cap;

    cap = 1;

    for (i = 0; i < n; i++) {
        cap += c[i].text_len;
    }

    all = malloc(cap);
    if (all == NULL) {
        abort();
    }

    total = 0;

    for (i = 0; i < n; i++) {
        one = squeeze(c[i].text, c[i].text_len, &len);
        memcpy(all + total, one, len);
        total += len;
        free(one);
    }

    all[total] = '\0';

    return all;
}


static int
same_chunks(const doc_t *a, const doc_t *b)
{
    size_t  i;

    if (a->rc != b->rc || a->n != b->n) {
        return 0;
    }

    for (i = 0; i < a->n; i++) {
        if (a->c[i].text_len != b->c[i].text_len
            || strcmp(a->c[i].text, b->c[i].text) != 0
            || strcmp(a->c[i].section, b->c[i].section) != 0
            || strcmp(a->c[i].anchor, b->c[i].anchor) != 0)
        {
            return 0;
        }
    }

    return 1;
}


static void
slug_is(const char *text, const char *want, const char *name)
{
    char  *s;

    s = NULL;

    if (sa_chunk_slug(text, strlen(text), &s) != SA_OK) {
        ok(0, "%s (slug failed)", name);
        return;
    }

    is_str(s, want, name);
    free(s);
}


static void
time_is(const char *s, long long want, const char *name)
{
    int64_t  ms;

    ms = -1;

    if (want < 0) {
        is_int(sa_chunk_parse_time(s, strlen(s), &ms), SA_INVALID, name);
        return;
    }

    if (sa_chunk_parse_time(s, strlen(s), &ms) != SA_OK) {
        ok(0, "%s (refused)", name);
        return;
    }

    is_int(ms, want, name);
}


static void
test_front_matter(void)
{
    doc_t  d;

    doc(&d,
        "---\n"
        "title: \"Change your \\\"shipping\\\" address\"\n"
        "url: https://help.example.com/orders/change-address\n"
        "product_area: orders\n"
        "doc_type: 'how-to'\n"
        "version : 2\n"
        "tier: plus   # Plus members only\n"
        "region: eu\n"
        "updated: 2025-03-14\n"
        "tags: [orders, address]\n"
        "  nested: ignored\n"
        "Unknown: value\n"
        "---\n"
        "# The heading title\n"
        "\n"
        "Body text.\n", 0, 0);

    is_int(d.rc, SA_OK, "front matter: ok");
    is_str(d.meta.title, "Change your \"shipping\" address",
           "front matter title wins over the heading, escapes read");
    is_str(d.meta.url, "https://help.example.com/orders/change-address",
           "url");
    is_str(d.meta.product_area, "orders", "product_area");
    is_str(d.meta.doc_type, "how-to", "single-quoted doc_type");
    is_str(d.meta.version, "2", "blank before the colon");
    is_str(d.meta.tier, "plus", "comment after a plain value dropped");
    is_str(d.meta.region, "eu", "region");
    is_int(d.meta.updated_ms, 1741910400000LL, "updated date to ms");
    is_int(d.n, 1, "one chunk");

    if (d.n == 1) {
        is_str(d.c[0].text, "Body text.", "body without the heading");
        is_str(d.c[0].section, "", "title heading is not in the path");
        is_str(d.c[0].anchor, "the-heading-title",
               "text under the title: the title's anchor");
    }

    doc_free(&d);

    doc(&d,
        "---\n"
        "title: 'It''s here'\n"
        "updated: \"2026-01-15T09:30:00Z\"\n"
        "region:\n"
        "tier: \"\"\n"
        "doc_type: |\n"
        "  block scalar\n"
        "url: '\n"
        "...\n"
        "text\n", 0, 0);

    is_int(d.rc, SA_OK, "second front matter: ok");
    is_str(d.meta.title, "It's here", "'' in single quotes");
    is_int(d.meta.updated_ms, 1768469400000LL, "updated date and time");
    ok(d.meta.region == NULL, "empty value is absent");
    ok(d.meta.tier == NULL, "empty quoted value is absent");
    ok(d.meta.doc_type == NULL, "block scalar is absent");
    is_str(d.meta.url, "'", "unclosed quote taken as written");
    ok(d.n == 1 && strcmp(d.c[0].text, "text") == 0,
       "\"...\" closes the front matter");
    doc_free(&d);

    doc(&d,
        "---\n"
        "title: Order #W2611340 help\n"
        "doc_type: \"Order #W2611340\"\n"
        "updated: 2025-02-30\n"
        "---\n"
        "text\n", 0, 0);

    is_int(d.rc, SA_OK, "impossible date: still ok");
    is_int(d.meta.updated_ms, 0, "impossible date ignored");
    is_str(d.meta.title, "Order", "\" #\" starts a YAML comment");
    is_str(d.meta.doc_type, "Order #W2611340", "quoted value keeps \"#\"");
    doc_free(&d);

    doc(&d, "---\nupdated: yesterday\ntitle: T\n---\n", 0, 0);
    is_int(d.meta.updated_ms, 0, "non-date updated ignored");
    is_str(d.meta.title, "T", "keys after a bad date still read");
    is_int(d.n, 0, "front matter only: no chunks");
    doc_free(&d);

    doc(&d, "---\ntitle: Not front matter\n\nSome text.\n", 0, 0);
    ok(d.meta.title == NULL, "unclosed front matter is no front matter");
    ok(d.n == 1
       && strcmp(d.c[0].text,
                 "---\ntitle: Not front matter\n\nSome text.") == 0,
       "unclosed front matter stays text");
    doc_free(&d);

    doc(&d, "Intro\n---\ntitle: X\n---\n", 0, 0);
    ok(d.meta.title == NULL, "front matter only on the first line");
    doc_free(&d);

    doc(&d, "---\ntitle: \"\"\n---\n# From heading #\ntext\n", 0, 0);
    is_str(d.meta.title, "From heading", "empty title: the heading's text");
    doc_free(&d);

    doc(&d, "## Only a second level\ntext\n", 0, 0);
    ok(d.meta.title == NULL, "no title anywhere: NULL");
    doc_free(&d);

    doc(&d, "text\n\n# First\n\n# Second\n", 0, 0);
    is_str(d.meta.title, "First", "title: the first # heading");
    doc_free(&d);

    time_is("2025-03-14", 1741910400000LL, "time: date");
    time_is("2024-02-29", 1709164800000LL, "time: leap day");
    time_is("2000-03-01", 951868800000LL, "time: after a 400-year leap");
    time_is("1970-01-01T00:00:01Z", 1000, "time: epoch + 1 s");
    time_is("2026-01-15t09:30:00z", 1768469400000LL, "time: lowercase t z");
    time_is("2023-02-29", -1, "time: no Feb 29 in 2023");
    time_is("1900-02-29", -1, "time: no Feb 29 in 1900");
    time_is("2025-13-01", -1, "time: month 13");
    time_is("2025-00-10", -1, "time: month 0");
    time_is("2025-04-31", -1, "time: April 31");
    time_is("2025-01-01T24:00:00Z", -1, "time: hour 24");
    time_is("2025-01-01T10:00:00", -1, "time: no Z");
    time_is("2025-01-01T10:00:00+01:00", -1, "time: offsets not taken");
    time_is("2025-1-01", -1, "time: one-digit month");
    time_is("", -1, "time: empty");
}


static void
test_headings(void)
{
    doc_t  d;

    doc(&d,
        "# Doc\n"
        "## Real\n"
        "text\n"
        "```\n"
        "## not a heading\n"
        "```\n"
        "~~~~\n"
        "# nope\n"
        "~~~\n"
        "still code\n"
        "~~~~\n"
        "   ```sh\n"
        "### nor this\n"
        "   ```\n"
        "## Second\n"
        "    # indented code, not a heading\n"
        "#hashtag is text\n"
        "####### seven is text\n", 0, 0);

    is_int(d.n, 2, "fences: two sections");

    if (d.n == 2) {
        is_str(d.c[0].section, "Real", "fences: first section");
        ok(strstr(d.c[0].text, "## not a heading") != NULL
           && strstr(d.c[0].text, "# nope") != NULL
           && strstr(d.c[0].text, "### nor this") != NULL,
           "headings in ``` and ~~~ fences stay text");
        ok(strstr(d.c[0].text, "still code") != NULL,
           "a shorter fence does not close a longer one");
        is_str(d.c[1].text,
               "    # indented code, not a heading\n"
               "#hashtag is text\n"
               "####### seven is text",
               "indented, unspaced and level 7 are no headings");
    }

    doc_free(&d);

    doc(&d, "## A\n```\n## B\ntext\n", 0, 0);
    ok(d.n == 1 && strcmp(d.c[0].text, "```\n## B\ntext") == 0,
       "an unclosed fence runs to the end");
    doc_free(&d);

    doc(&d, "## A\n``` a`b\n## B\nx\n", 0, 0);
    ok(d.n == 2 && strcmp(d.c[0].text, "``` a`b") == 0
       && strcmp(d.c[1].section, "B") == 0,
       "backtick in a backtick info string: no fence");
    doc_free(&d);

    doc(&d,
        "## Section\n"
        "intro\n"
        "#### Detail\n"
        "more\n"
        "##### Deeper\n"
        "most\n", 0, 0);

    ok(d.n == 1
       && strcmp(d.c[0].text,
                 "intro\n#### Detail\nmore\n##### Deeper\nmost") == 0,
       "#### and deeper stay inside the section");
    doc_free(&d);

    doc(&d,
        "# Returns\n"
        "intro\n"
        "## EU\n"
        "eu text\n"
        "### Card\n"
        "card text\n"
        "## US ##\n"
        "us text\n"
        "### Card\n"
        "card us\n"
        "#### deep\n"
        "x\n", 0, 0);

    is_int(d.n, 5, "paths: five chunks");

    if (d.n == 5) {
        is_str(d.c[0].section, "", "paths: under the title");
        is_str(d.c[0].anchor, "returns", "paths: title anchor");
        is_str(d.c[0].text, "intro", "paths: intro text");
        is_str(d.c[1].section, "EU", "paths: ##");
        is_str(d.c[2].section, "EU > Card", "paths: ## > ###");
        is_str(d.c[2].anchor, "card", "paths: anchor of ###");
        is_str(d.c[3].section, "US", "paths: closing #s dropped");
        is_str(d.c[3].text, "us text", "paths: text of US");
        is_str(d.c[4].section, "US > Card", "paths: new ## resets ###");
        is_str(d.c[4].anchor, "card-1", "paths: repeated slug numbered");
        is_str(d.c[4].text, "card us\n#### deep\nx", "paths: last text");
    }

    doc_free(&d);

    doc(&d,
        "intro before\n"
        "# One\n"
        "a\n"
        "## Sub\n"
        "b\n"
        "# Two\n"
        "c\n"
        "### Skipped level\n"
        "d\n", 0, 0);

    is_int(d.n, 5, "several #: five chunks");

    if (d.n == 5) {
        is_str(d.c[0].section, "", "several #: text before any heading");
        is_str(d.c[0].anchor, "", "several #: no anchor before headings");
        is_str(d.c[0].text, "intro before", "several #: first text");
        is_str(d.c[1].section, "One", "several #: each # is a top level");
        is_str(d.c[2].section, "One > Sub", "several #: # > ##");
        is_str(d.c[3].section, "Two", "several #: second #");
        is_str(d.c[4].section, "Two > Skipped level",
               "several #: a skipped level leaves no gap");
    }

    doc_free(&d);

    doc(&d, "# T\n### Deep first\nx\n", 0, 0);
    ok(d.n == 1 && strcmp(d.c[0].section, "Deep first") == 0,
       "### right under the title");
    doc_free(&d);

    doc(&d,
        "# T\n"
        "## Empty\n"
        "## Blank\n"
        "\n"
        "   \n"
        "\t\n"
        "## Full\n"
        "\n"
        "\n"
        "    indented first line\n"
        "last line   \n"
        "\n"
        "\n", 0, 0);

    is_int(d.n, 1, "empty sections give no chunk");

    if (d.n == 1) {
        is_str(d.c[0].section, "Full", "the full one");
        is_str(d.c[0].text, "    indented first line\nlast line",
               "blank lines trimmed, first indentation kept");
    }

    doc_free(&d);

    doc(&d,
        "## FAQ\nx\n## FAQ\ny\n## FAQ-1\nz\n## FAQ\nw\n"
        "## Hours\n#### Hours\nin\n## Hours\nv\n", 0, 0);

    if (d.n == 6) {
        is_str(d.c[0].anchor, "faq", "dup: first");
        is_str(d.c[1].anchor, "faq-1", "dup: second numbered");
        is_str(d.c[2].anchor, "faq-1-1", "dup: own slug taken already");
        is_str(d.c[3].anchor, "faq-2", "dup: third");
        is_str(d.c[4].anchor, "hours", "dup: hours");
        is_str(d.c[5].anchor, "hours-2", "dup: #### headings count");

    } else {
        ok(0, "dup: six chunks, got %zu", d.n);
    }

    doc_free(&d);

    doc(&d,
        "## Rückerstattung & Umtausch\nx\n"
        "## Error code `4217`: authorization expired\ny\n"
        "## See [the policy](https://example.com/a_(b))\nz\n", 0, 0);

    if (d.n == 3) {
        is_str(d.c[0].anchor, "rückerstattung--umtausch",
               "anchor: unicode letters kept, & dropped");
        is_str(d.c[1].anchor, "error-code-4217-authorization-expired",
               "anchor: code and colon");
        is_str(d.c[2].anchor, "see-the-policy", "anchor: link text only");
        is_str(d.c[2].section, "See [the policy](https://example.com/a_(b))",
               "path keeps the heading as written");

    } else {
        ok(0, "anchors: three chunks, got %zu", d.n);
    }

    doc_free(&d);

    slug_is("Hello World", "hello-world", "slug: words");
    slug_is("What's new? (2025)", "whats-new-2025", "slug: punctuation");
    slug_is("foo_bar-baz", "foo_bar-baz", "slug: _ and - kept");
    slug_is("C++ & C#", "c--c", "slug: symbols");
    slug_is("a  b", "a--b", "slug: each space a dash");
    slug_is("tab\there", "tabhere", "slug: tab dropped like GitHub");
    slug_is("Заказ и Доставка", "заказ-и-доставка",
            "slug: Cyrillic");
    slug_is("ΕΛΛΗΝΙΚΆ", "ελληνικά", "slug: Greek");
    slug_is("ÉTÉ À ŁÓDŹ", "été-à-łódź", "slug: Latin accents");
    slug_is("İstanbul", "i\xcc\x87stanbul", "slug: dotted capital I");
    slug_is("日本語のヘルプ", "日本語のヘルプ",
            "slug: CJK kept");
    slug_is("「注文」について", "注文について",
            "slug: CJK brackets dropped");
    slug_is("Ship 🚚 fast", "ship--fast", "slug: emoji dropped");
    slug_is("Returns — EU", "returns--eu", "slug: em dash dropped");
    slug_is("Price: 5 € · 6 $", "price-5---6-", "slug: currency dropped");
    slug_is("¿Qué? ½ µ ª", "qué--µ-ª", "slug: Latin-1 signs");
    slug_is("", "", "slug: empty");

    {
        char  *s;

        s = NULL;
        is_int(sa_chunk_slug("a\xff", 2, &s), SA_INVALID,
               "slug: invalid UTF-8");
        ok(s == NULL, "slug: nothing returned on error");
    }
}


/* where a chunk lies in the section text it came from */

static size_t
where(const char *orig, const sa_chunk_t *c)
{
    const char  *p;

    p = strstr(orig, c->text);

    return p ? (size_t) (p - orig) : (size_t) -1;
}


/* chunks cover the text in order, with gaps of blanks only, and each
   overlap is at most max_ov bytes and starts on a word */

static const char *
cover_problem(const char *orig, const sa_chunk_t *c, size_t n,
    size_t max_ov, int want_overlap)
{
    size_t  i, at, prev_end, k;

    prev_end = 0;

    for (i = 0; i < n; i++) {
        at = where(orig, &c[i]);

        if (at == (size_t) -1) {
            return "chunk is not a slice of the text";
        }

        if (i == 0 && at != 0) {
            return "first chunk does not start the text";
        }

        if (i > 0) {
            if (at < prev_end) {
                if (prev_end - at > max_ov) {
                    return "overlap too long";
                }

                if (!is_ws(orig[at - 1])) {
                    return "overlap does not start on a word";
                }

            } else {
                if (want_overlap) {
                    return "no overlap";
                }

                for (k = prev_end; k < at; k++) {
                    if (!is_ws(orig[k])) {
                        return "text lost between chunks";
                    }
                }
            }
        }

        prev_end = at + c[i].text_len;
    }

    if (prev_end != strlen(orig)) {
        return "last chunk does not end the text";
    }

    return NULL;
}


static void
test_split(void)
{
    int          para_ends, sentence_ends, bad;
    char        *text, *md, *a, *b;
    size_t       i, len, pos, at;
    doc_t        d, whole;
    const char  *why;

    /* 12 paragraphs of 4 sentences of numbered words */

    text = malloc(16384);
    md = malloc(16384 + 64);

    if (text == NULL || md == NULL) {
        abort();
    }

    pos = 0;

    for (i = 0; i < 12 * 4 * 9; i++) {
        pos += sprintf(text + pos, "w%03zu", i);

        if (i % 9 == 8) {
            text[pos++] = '.';

            if (i % 36 == 35) {
                if (i != 12 * 4 * 9 - 1) {
                    memcpy(text + pos, "\n\n", 2);
                    pos += 2;
                }

            } else {
                text[pos++] = ' ';
            }

        } else {
            text[pos++] = ' ';
        }
    }

    text[pos] = '\0';
    len = pos;

    sprintf(md, "## Long\n\n%s\n", text);

    doc(&d, md, 400, 0);
    is_int(d.rc, SA_OK, "split: ok");
    ok(d.n > 1, "split: a long section gives %zu chunks", d.n);
    ok(chunk_problem(d.c, d.n, 400) == NULL, "split: chunks sound");
    why = cover_problem(text, d.c, d.n, 0, 0);
    ok(why == NULL, "split: chunks cover the text (%s)", why ? why : "yes");

    para_ends = 0;

    for (i = 0; i + 1 < d.n; i++) {
        at = where(text, &d.c[i]) + d.c[i].text_len;

        if (at + 1 < len && text[at] == '\n' && text[at + 1] == '\n') {
            para_ends++;
        }

        if (strcmp(d.c[i].section, "Long") != 0) {
            para_ends = -100;
        }
    }

    is_int(para_ends, d.n - 1, "split: every cut at a paragraph end");
    doc_free(&d);

    doc(&d, md, 400, 60);
    why = cover_problem(text, d.c, d.n, 60, 1);
    ok(why == NULL, "split+overlap: cover, overlap <= 60 on a word (%s)",
       why ? why : "yes");
    ok(chunk_problem(d.c, d.n, 400) == NULL, "split+overlap: chunks sound");
    doc_free(&d);

    doc(&d, md, 100, 1000);
    why = cover_problem(text, d.c, d.n, 50, 1);
    ok(why == NULL, "split: overlap capped at half of max (%s)",
       why ? why : "yes");
    ok(chunk_problem(d.c, d.n, 100) == NULL, "split: capped chunks sound");
    doc_free(&d);

    /* one paragraph: cuts at sentence ends */

    for (i = 0; i < len; i++) {
        if (text[i] == '\n') {
            text[i] = ' ';
        }
    }

    sprintf(md, "## Long\n%s", text);

    doc(&d, md, 250, 0);
    why = cover_problem(text, d.c, d.n, 0, 0);
    ok(why == NULL, "sentences: cover (%s)", why ? why : "yes");

    sentence_ends = 0;

    for (i = 0; i < d.n; i++) {
        if (d.c[i].text[d.c[i].text_len - 1] == '.') {
            sentence_ends++;
        }
    }

    is_int(sentence_ends, d.n, "sentences: every chunk ends a sentence");
    doc_free(&d);

    /* no sentence ends: cuts at blanks */

    for (i = 0; i < len; i++) {
        if (text[i] == '.') {
            text[i] = ',';
        }
    }

    sprintf(md, "## Long\n%s", text);

    doc(&d, md, 97, 20);
    why = cover_problem(text, d.c, d.n, 20, 1);
    ok(why == NULL, "words: cover with overlap (%s)", why ? why : "yes");

    bad = 0;

    for (i = 0; i < d.n; i++) {
        at = where(text, &d.c[i]);

        if ((at > 0 && !is_ws(text[at - 1]))
            || (at + d.c[i].text_len < len
                && !is_ws(text[at + d.c[i].text_len])))
        {
            bad++;
        }
    }

    is_int(bad, 0, "words: no word cut");
    ok(chunk_problem(d.c, d.n, 97) == NULL, "words: chunks sound");

    /* the heading changes the section, not the cuts */
    doc(&whole, text, 97, 20);
    bad = (whole.n != d.n);

    for (i = 0; !bad && i < d.n; i++) {
        bad = strcmp(d.c[i].text, whole.c[i].text) != 0
              || strcmp(whole.c[i].section, "") != 0;
    }

    is_int(bad, 0, "words: same cuts without a heading");
    doc_free(&whole);
    doc_free(&d);

    /* a word longer than a chunk: cut at characters, never inside one */

    pos = 0;
    pos += sprintf(md + pos, "## x\n");

    for (i = 0; i < 100; i++) {
        pos += sprintf(md + pos, "\xc3\xa9");
    }

    doc(&d, md, 15, 5);
    is_int(d.n, 15, "long word: 200 bytes in 14-byte pieces and the rest");
    ok(chunk_problem(d.c, d.n, 15) == NULL, "long word: valid UTF-8");
    a = squeeze_all(d.c, d.n);
    ok(strcmp(a, md + 5) == 0, "long word: nothing lost or repeated");
    free(a);
    doc_free(&d);

    sprintf(md, "\xf0\x9f\x98\x80\xf0\x9f\x98\x80 \xf0\x9f\x98\x80");
    doc(&d, md, 4, 4);
    ok(d.n == 3 && chunk_problem(d.c, d.n, 4) == NULL,
       "max 4: one emoji per chunk");
    doc_free(&d);

    /* exact boundaries */

    doc(&d, "## H\n\naaaa bbbb\n\n", 9, 3);
    ok(d.n == 1 && strcmp(d.c[0].text, "aaaa bbbb") == 0,
       "text of exactly max bytes: one chunk");
    doc_free(&d);

    doc(&d, "## H\n\naaaa bbbb\n\n", 8, 0);
    ok(d.n == 2 && strcmp(d.c[0].text, "aaaa") == 0
       && strcmp(d.c[1].text, "bbbb") == 0, "max + 1: two chunks");
    doc_free(&d);

    doc(&d, "aaaa bbbb\n\ncc dd ee", 14, 0);
    ok(d.n == 2 && strcmp(d.c[0].text, "aaaa bbbb") == 0
       && strcmp(d.c[1].text, "cc dd ee") == 0,
       "a paragraph end beats a later blank");
    doc_free(&d);

    doc(&d, "aa\n\nbbbb cccc dd", 12, 0);
    ok(d.n == 2 && strcmp(d.c[0].text, "aa\n\nbbbb") == 0
       && strcmp(d.c[1].text, "cccc dd") == 0,
       "a paragraph end in the first half does not");
    doc_free(&d);

    doc(&d, "aa bb cc dd ee ff", 8, 3);
    ok(d.n == 3 && strcmp(d.c[0].text, "aa bb cc") == 0
       && strcmp(d.c[1].text, "cc dd ee") == 0
       && strcmp(d.c[2].text, "ee ff") == 0, "overlap of one word");
    doc_free(&d);

    doc(&d, "aa bb cc dd ee ff", 8, 1);
    ok(d.n == 2 && strcmp(d.c[1].text, "dd ee ff") == 0,
       "overlap shorter than any word: none");
    doc_free(&d);

    doc(&d, "## A\nshort\n## B\nalso short", 8, 4);
    ok(d.n == 3 && strcmp(d.c[0].text, "short") == 0
       && strcmp(d.c[1].text, "also") == 0
       && strcmp(d.c[2].text, "short") == 0
       && strcmp(d.c[2].section, "B") == 0,
       "no overlap across sections");
    doc_free(&d);

    doc(&d, "- one\n- two\n- three\n- four", 14, 0);
    ok(d.n == 2 && strcmp(d.c[0].text, "- one\n- two") == 0
       && strcmp(d.c[1].text, "- three\n- four") == 0,
       "list items: cut at line ends");
    doc_free(&d);

    doc(&d, "- aaa bbb ccc ddd\n- eee. fff ggg hhh iii jjj", 30, 0);
    ok(d.n == 2 && strcmp(d.c[0].text, "- aaa bbb ccc ddd") == 0,
       "a list item start beats a later sentence end");
    doc_free(&d);

    doc(&d, "Aaa bbb ccc. Ddd\neee fff ggg", 20, 0);
    ok(d.n == 2 && strcmp(d.c[0].text, "Aaa bbb ccc.") == 0
       && strcmp(d.c[1].text, "Ddd\neee fff ggg") == 0,
       "a sentence end beats a later wrapped line end");
    doc_free(&d);

    doc(&d, "Aaaa bbbb (cccc.) Dddd eeee ffff", 22, 0);
    ok(d.n == 2 && strcmp(d.c[0].text, "Aaaa bbbb (cccc.)") == 0,
       "a sentence may end in a closing parenthesis");
    doc_free(&d);

    doc(&d, "Xxxx aa bb. Cc dd\n\nEe ff gg hh ii jj kk", 24, 12);
    ok(d.n >= 2 && strncmp(d.c[1].text, "Cc dd\n\nEe", 9) == 0,
       "the overlap starts at a sentence when it can");
    doc_free(&d);

    doc(&d, "intro text\n\n    code line one\n    code line two", 20, 0);
    ok(d.n == 3 && strcmp(d.c[1].text, "    code line one") == 0,
       "a later chunk keeps its first line's indentation");
    doc_free(&d);

    /* splitting loses nothing: same words as without a limit */

    doc(&whole, md, 0, 0);
    doc(&d, md, 7, 0);
    a = squeeze_all(whole.c, whole.n);
    b = squeeze_all(d.c, d.n);
    ok(strcmp(a, b) == 0, "split keeps every character");
    free(a);
    free(b);
    doc_free(&d);
    doc_free(&whole);

    free(text);
    free(md);
}


static void
test_input_forms(void)
{
    int          rc;
    doc_t        d, crlf;
    sa_chunk_t  *c;
    size_t       n;

    static const char  lf[] =
        "---\ntitle: T\nregion: us\n---\n# T\nIntro line.\n\n"
        "## Sub\n```\n# code\n```\nText one. Text two.\n"
        "Line three is a bit longer than the others.\n";

    static const char  crlf_text[] =
        "---\r\ntitle: T\r\nregion: us\r\n---\r\n# T\r\nIntro line.\r\n\r\n"
        "## Sub\r\n```\r\n# code\r\n```\r\nText one. Text two.\r\n"
        "Line three is a bit longer than the others.\r\n";

    doc(&d, lf, 30, 10);
    doc(&crlf, crlf_text, 30, 10);
    ok(d.rc == SA_OK && d.n > 2, "LF: %zu chunks", d.n);
    ok(same_chunks(&d, &crlf), "CRLF: the same chunks as LF");
    is_str(crlf.meta.region, "us", "CRLF: front matter read");
    doc_free(&crlf);

    doc(&crlf, "## A\rone\r\rtwo\r", 0, 0);
    ok(crlf.n == 1 && strcmp(crlf.c[0].text, "one\n\ntwo") == 0,
       "lone CR: line ends too");
    doc_free(&crlf);

    doc(&crlf, "\xef\xbb\xbf---\ntitle: T\nregion: us\n---\n# T\n"
               "Intro line.\n\n## Sub\n```\n# code\n```\nText one. Text two."
               "\nLine three is a bit longer than the others.\n", 30, 10);
    ok(same_chunks(&d, &crlf), "BOM: skipped");
    is_str(crlf.meta.title, "T", "BOM: front matter still first");
    doc_free(&crlf);
    doc_free(&d);

    doc(&d, "\xef\xbb\xbf", 0, 0);
    ok(d.rc == SA_OK && d.n == 0 && d.c == NULL, "only a BOM: no chunks");
    doc_free(&d);

    doc(&d, "", 100, 10);
    ok(d.rc == SA_OK && d.n == 0 && d.c == NULL && d.meta.title == NULL,
       "empty input: no chunks");
    doc_free(&d);

    doc_run(&d, NULL, 0, 0, 0);
    ok(d.rc == SA_OK && d.n == 0, "NULL with length 0: no chunks");
    doc_free(&d);

    doc(&d, " \n\t\n\n   ", 0, 0);
    ok(d.rc == SA_OK && d.n == 0, "blank input: no chunks");
    doc_free(&d);

    doc(&d, "Just text,\nno headings.\n", 0, 0);
    ok(d.n == 1 && strcmp(d.c[0].section, "") == 0
       && strcmp(d.c[0].anchor, "") == 0
       && strcmp(d.c[0].text, "Just text,\nno headings.") == 0,
       "no headings: one chunk, empty path and anchor");
    ok(d.meta.title == NULL, "no headings: no title");
    doc_free(&d);

    doc(&d, "---\ntitle: Bad\n---\n## A\ntext \xc3\x28 more\n", 0, 0);
    is_int(d.rc, SA_INVALID, "invalid UTF-8 refused");
    ok(d.c == NULL && d.n == 0 && d.meta.title == NULL,
       "invalid UTF-8: nothing returned");
    doc_free(&d);

    doc(&d, "\xed\xa0\x80", 0, 0);
    is_int(d.rc, SA_INVALID, "surrogate refused");
    doc_free(&d);

    doc(&d, "## A\n\xe2\x82", 0, 0);
    is_int(d.rc, SA_INVALID, "cut sequence at the end refused");
    doc_free(&d);

    doc_run(&d, "## A\ntext\0more", 15, 0, 0);
    is_int(d.rc, SA_INVALID, "NUL byte refused");
    doc_free(&d);

    doc(&d, "text", 3, 0);
    is_int(d.rc, SA_INVALID, "max_chars 3 refused");
    doc_free(&d);

    doc(&d, "text", 1, 0);
    is_int(d.rc, SA_INVALID, "max_chars 1 refused");
    doc_free(&d);

    doc(&d, "text", 4, 100);
    ok(d.rc == SA_OK && d.n == 1, "max_chars 4 taken");
    doc_free(&d);

    c = NULL;
    n = 7;
    rc = sa_chunk_markdown("---\ntitle: x\n---\n# y\nz", 22, 0, 0, NULL,
                           &c, &n);
    ok(rc == SA_OK && n == 1 && strcmp(c[0].text, "z") == 0,
       "meta may be NULL");
    sa_chunks_free(c, n);

    sa_chunks_free(NULL, 0);
    sa_doc_meta_free(NULL);
    ok(1, "free functions take NULL");
}


static const char  *pieces[] = {
    "# ", "## ", "### ", "#### ", "#", "##", " #", "   # ",
    "```", "~~~", "````", "```sh", "---", "...", "title: ", "updated: ",
    "2025-01-01", "'", "\"", "\\", "\n", "\n", "\n", "\n\n", "\r\n", "\r",
    " ", " ", "  ", "\t", "word", "words", "Wörter", "слово", "日本語",
    "\xf0\x9f\x98\x80", "\xc3\xa9", ".", ". ", "? ", "!", ",", "-", "_",
    "[link](http://x/(y))", "`code`", "*", "\xef\xbb\xbf", "faq", "FAQ",
    "a", "bb", "ccc", "dddd eeee ffff gggg hhhh",
};


static size_t
random_doc(char *buf, size_t cap)
{
    size_t       len, k, n, i;
    const char  *p;

    len = 0;
    n = rand() % 200;

    for (i = 0; i < n; i++) {
        p = pieces[rand() % (sizeof(pieces) / sizeof(pieces[0]))];
        k = strlen(p);

        if (len + k >= cap) {
            break;
        }

        memcpy(buf + len, p, k);
        len += k;
    }

    if (len == 0 || rand() % 3) {
        /* often a front matter start */
        if (rand() % 4 == 0 && len + 4 < cap) {
            memmove(buf + 4, buf, len);
            memcpy(buf, "---\n", 4);
            len += 4;
        }
    }

    return len;
}


static void
test_random(void)
{
    int          i, fails_rc, fails_sound, fails_det, fails_lost, invalid;
    char         buf[4096], *a, *b;
    size_t       len, max, ov, j;
    doc_t        d, again, whole;
    const char  *why;

    static const char  alphabet[] = " \n#`~-abc.\xc3\xa9";

    srand(4217);

    fails_rc = 0;
    fails_sound = 0;
    fails_det = 0;
    fails_lost = 0;
    why = NULL;

    for (i = 0; i < 20000; i++) {
        len = random_doc(buf, sizeof(buf));
        max = rand() % 4 ? 4 + rand() % 120 : 0;
        ov = rand() % 2 ? rand() % 80 : 0;

        doc_run(&d, buf, len, max, ov);

        if (d.rc != SA_OK) {
            fails_rc++;
            doc_free(&d);
            continue;
        }

        if (chunk_problem(d.c, d.n, max) != NULL) {
            why = chunk_problem(d.c, d.n, max);
            fails_sound++;
        }

        doc_run(&again, buf, len, max, ov);

        if (!same_chunks(&d, &again)) {
            fails_det++;
        }

        doc_free(&again);

        /* without overlap, splitting only drops blanks at the cuts */

        doc_run(&again, buf, len, max, 0);
        doc_run(&whole, buf, len, 0, 0);
        a = squeeze_all(again.c, again.n);
        b = squeeze_all(whole.c, whole.n);

        if (strcmp(a, b) != 0) {
            fails_lost++;
        }

        free(a);
        free(b);
        doc_free(&again);
        doc_free(&whole);
        doc_free(&d);
    }

    is_int(fails_rc, 0, "random documents: all accepted");
    ok(fails_sound == 0, "random documents: chunks sound (%d: %s)",
       fails_sound, why ? why : "-");
    is_int(fails_det, 0, "random documents: deterministic");
    is_int(fails_lost, 0, "random documents: splitting loses no text");

    /* random bytes: refused or sound, never a crash */

    fails_sound = 0;
    invalid = 0;

    for (i = 0; i < 20000; i++) {
        len = rand() % 300;

        for (j = 0; j < len; j++) {
            buf[j] = (char) (rand() % 4
                             ? alphabet[rand() % (sizeof(alphabet) - 1)]
                             : rand() % 256);
        }

        max = rand() % 3 ? rand() % 64 : 0;
        ov = rand() % 40;

        doc_run(&d, buf, len, max, ov);

        if (d.rc == SA_INVALID) {
            invalid++;

            if (d.c != NULL || d.n != 0) {
                fails_sound++;
            }

        } else if (d.rc != SA_OK
                   || chunk_problem(d.c, d.n, max) != NULL)
        {
            fails_sound++;
        }

        doc_free(&d);
    }

    is_int(fails_sound, 0, "random bytes: refused or sound");
    ok(invalid > 0 && invalid < 20000, "random bytes: %d refused", invalid);
}


static void
test_big(void)
{
    char    *md;
    size_t   i, len;
    doc_t    d;

    /* many headings: the slug table must stay fast and correct */

    len = 200000 * 7;
    md = malloc(len + 1);
    if (md == NULL) {
        abort();
    }

    /* every second section is empty */
    for (i = 0; i < 200000; i++) {
        memcpy(md + i * 7, (i % 2) ? "## A\n \n" : "## A\nx\n", 7);
    }

    md[len] = '\0';

    doc(&d, md, 0, 0);
    ok(d.rc == SA_OK && d.n == 100000, "200000 headings: %zu chunks", d.n);

    if (d.n == 100000) {
        is_str(d.c[d.n - 1].anchor, "a-199998",
               "200000 headings: numbered slugs");
    }

    doc_free(&d);
    free(md);
}


int
main(void)
{
    test_front_matter();
    test_headings();
    test_split();
    test_input_forms();
    test_random();
    test_big();

    return done_testing();
}
