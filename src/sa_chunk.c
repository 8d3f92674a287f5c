
/*
 * Copyright (C) ngx_support_agent authors
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sa_chunk.h"
#include "sa_utf8.h"


/* the longest UTF-8 character: a smaller max_chars could not be kept */
#define SA_CHUNK_MIN_MAX  4


/* an ATX heading outside code blocks */
typedef struct {
    size_t            start;        /* offset of the heading line */
    size_t            next;         /* offset of the line after it */
    size_t            text;         /* offset of the heading text */
    size_t            text_len;
    int               level;        /* 1..6 */
    const char       *slug;         /* owned by the slug set */
} sa_chunk_head_t;


/* slugs given out so far and how often each base slug was repeated: an
   open addressing hash table, so that documents with very many headings
   stay linear */
typedef struct {
    char             *key;
    size_t            count;
} sa_chunk_slug_entry_t;

typedef struct {
    sa_chunk_slug_entry_t  *entries;
    size_t                  n;
    size_t                  cap;    /* a power of two, or 0 */
} sa_chunk_slugs_t;


typedef struct {
    sa_chunk_t       *chunks;
    size_t            n;
    size_t            cap;
    size_t            max;          /* 0: no limit */
    size_t            overlap;
} sa_chunk_out_t;


static char *sa_chunk_strndup(const char *p, size_t len);
static char *sa_chunk_normalize(const char *md, size_t len, size_t *out_len);
static size_t sa_chunk_line_end(const char *b, size_t len, size_t pos);
static int sa_chunk_ws(char c);
static int sa_chunk_blank(const char *b, size_t start, size_t end);
static int sa_chunk_is_rule(const char *b, size_t start, size_t end,
    const char *rule);
static int sa_chunk_front_matter(const char *b, size_t len,
    sa_doc_meta_t *meta, size_t *body);
static int sa_chunk_fm_line(const char *b, size_t start, size_t end,
    sa_doc_meta_t *meta);
static int sa_chunk_fm_value(const char *v, size_t len, char **out);
static int sa_chunk_fence(const char *b, size_t start, size_t end,
    char *ch, size_t *count, int *bare);
static int sa_chunk_atx(const char *b, size_t start, size_t end,
    size_t *text, size_t *text_len);
static int sa_chunk_headings(const char *b, size_t len, size_t body,
    sa_chunk_slugs_t *slugs, sa_chunk_head_t **heads, size_t *nheads);
static int sa_chunk_sections(sa_chunk_out_t *out, const char *b, size_t len,
    size_t body, sa_chunk_head_t *heads, size_t nheads);
static int sa_chunk_section(sa_chunk_out_t *out, const char *b, size_t start,
    size_t end, const char *section, const char *anchor);
static size_t sa_chunk_cut(const char *t, size_t len, size_t first,
    size_t limit);
static int sa_chunk_block_start(const char *t, size_t len, size_t q);
static int sa_chunk_sentence_end(const char *t, size_t c);
static size_t sa_chunk_overlap(const char *t, size_t len, size_t lo,
    size_t e);
static int sa_chunk_add(sa_chunk_out_t *out, const char *text, size_t len,
    const char *section, const char *anchor);
static uint64_t sa_chunk_hash(const char *key);
static sa_chunk_slug_entry_t *sa_chunk_slugs_find(sa_chunk_slugs_t *set,
    const char *key);
static int sa_chunk_slugs_add(sa_chunk_slugs_t *set, char *key);
static void sa_chunk_slugs_free(sa_chunk_slugs_t *set);
static int sa_chunk_unique_slug(sa_chunk_slugs_t *set, const char *text,
    size_t len, const char **slug);
static uint32_t sa_chunk_lower(uint32_t c);
static int sa_chunk_slug_drop(uint32_t c);
static size_t sa_chunk_utf8_put(char *p, uint32_t c);
static int sa_chunk_digits(const char *s, size_t n, int *v);
static int64_t sa_chunk_days(int64_t y, int m, int d);


static const char  sa_chunk_bom[] = "\xef\xbb\xbf";


int
sa_chunk_markdown(const char *md, size_t len, size_t max_chars,
    size_t overlap_chars, sa_doc_meta_t *meta, sa_chunk_t **chunks,
    size_t *n)
{
    int               rc;
    char             *buf;
    size_t            blen, body, i;
    sa_doc_meta_t     local;
    sa_chunk_out_t    out;
    sa_chunk_head_t  *heads;
    size_t            nheads;
    sa_chunk_slugs_t  slugs;

    *chunks = NULL;
    *n = 0;

    if (meta == NULL) {
        meta = &local;
    }

    memset(meta, 0, sizeof(sa_doc_meta_t));
    memset(&out, 0, sizeof(sa_chunk_out_t));
    memset(&slugs, 0, sizeof(sa_chunk_slugs_t));

    if ((md == NULL && len) || (max_chars && max_chars < SA_CHUNK_MIN_MAX)) {
        return SA_INVALID;
    }

    if (len >= 3 && memcmp(md, sa_chunk_bom, 3) == 0) {
        md += 3;
        len -= 3;
    }

    /* strings handed out are C strings: a NUL would cut them silently */

    if (len && (memchr(md, '\0', len) != NULL
                || !sa_utf8_valid((const unsigned char *) md, len)))
    {
        return SA_INVALID;
    }

    buf = sa_chunk_normalize(md, len, &blen);
    if (buf == NULL) {
        return SA_ERROR;
    }

    heads = NULL;
    nheads = 0;

    out.max = max_chars;

    /* overlap beyond half a chunk would leave little room for new text and
       repeat most of every chunk */
    out.overlap = overlap_chars < max_chars / 2 ? overlap_chars
                                                : max_chars / 2;

    rc = sa_chunk_front_matter(buf, blen, meta, &body);
    if (rc != SA_OK) {
        goto failed;
    }

    rc = sa_chunk_headings(buf, blen, body, &slugs, &heads, &nheads);
    if (rc != SA_OK) {
        goto failed;
    }

    if (meta->title == NULL) {
        for (i = 0; i < nheads; i++) {
            if (heads[i].level == 1 && heads[i].text_len) {
                meta->title = sa_chunk_strndup(buf + heads[i].text,
                                               heads[i].text_len);
                if (meta->title == NULL) {
                    rc = SA_ERROR;
                    goto failed;
                }

                break;
            }
        }
    }

    rc = sa_chunk_sections(&out, buf, blen, body, heads, nheads);
    if (rc != SA_OK) {
        goto failed;
    }

    free(heads);
    sa_chunk_slugs_free(&slugs);
    free(buf);

    if (meta == &local) {
        sa_doc_meta_free(&local);
    }

    if (out.n == 0) {
        free(out.chunks);
        return SA_OK;
    }

    *chunks = out.chunks;
    *n = out.n;

    return SA_OK;

failed:

    free(heads);
    sa_chunk_slugs_free(&slugs);
    free(buf);
    sa_doc_meta_free(meta);
    sa_chunks_free(out.chunks, out.n);

    return rc;
}


void
sa_chunks_free(sa_chunk_t *chunks, size_t n)
{
    size_t  i;

    if (chunks == NULL) {
        return;
    }

    for (i = 0; i < n; i++) {
        free(chunks[i].section);
        free(chunks[i].anchor);
        free(chunks[i].text);
    }

    free(chunks);
}


void
sa_doc_meta_free(sa_doc_meta_t *meta)
{
    if (meta == NULL) {
        return;
    }

    free(meta->title);
    free(meta->url);
    free(meta->product_area);
    free(meta->doc_type);
    free(meta->version);
    free(meta->tier);
    free(meta->region);

    memset(meta, 0, sizeof(sa_doc_meta_t));
}


static char *
sa_chunk_strndup(const char *p, size_t len)
{
    char  *s;

    s = malloc(len + 1);
    if (s == NULL) {
        return NULL;
    }

    if (len) {
        memcpy(s, p, len);
    }

    s[len] = '\0';

    return s;
}


/* a copy with every CRLF and lone CR turned into LF, so that the rest only
   ever sees LF */

static char *
sa_chunk_normalize(const char *md, size_t len, size_t *out_len)
{
    char    *buf;
    size_t   i, j;

    buf = malloc(len + 1);
    if (buf == NULL) {
        return NULL;
    }

    for (i = 0, j = 0; i < len; i++) {
        if (md[i] == '\r') {
            buf[j++] = '\n';

            if (i + 1 < len && md[i + 1] == '\n') {
                i++;
            }

            continue;
        }

        buf[j++] = md[i];
    }

    buf[j] = '\0';
    *out_len = j;

    return buf;
}


/* the offset of the LF ending the line at pos, or len */

static size_t
sa_chunk_line_end(const char *b, size_t len, size_t pos)
{
    const char  *p;

    p = memchr(b + pos, '\n', len - pos);

    return p ? (size_t) (p - b) : len;
}


static int
sa_chunk_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\v';
}


static int
sa_chunk_blank(const char *b, size_t start, size_t end)
{
    for ( /* void */ ; start < end; start++) {
        if (!sa_chunk_ws(b[start])) {
            return 0;
        }
    }

    return 1;
}


/* the line is exactly rule, trailing blanks allowed */

static int
sa_chunk_is_rule(const char *b, size_t start, size_t end, const char *rule)
{
    size_t  n;

    n = strlen(rule);

    return end - start >= n && memcmp(b + start, rule, n) == 0
           && sa_chunk_blank(b, start + n, end);
}


/*
 * Front matter: "---" on the first line, "key: value" lines, "---" (or
 * YAML's "...") on a line of its own.  Without the closing line the first
 * "---" is a thematic break of the body, as other markdown tools see it.
 */

static int
sa_chunk_front_matter(const char *b, size_t len, sa_doc_meta_t *meta,
    size_t *body)
{
    int     rc;
    size_t  end, pos, close, next;

    *body = 0;

    end = sa_chunk_line_end(b, len, 0);

    if (end == len || !sa_chunk_is_rule(b, 0, end, "---")) {
        return SA_OK;
    }

    close = len;

    for (pos = end + 1; pos < len; pos = next) {
        end = sa_chunk_line_end(b, len, pos);
        next = end < len ? end + 1 : len;

        if (sa_chunk_is_rule(b, pos, end, "---")
            || sa_chunk_is_rule(b, pos, end, "..."))
        {
            close = pos;
            *body = next;
            break;
        }
    }

    if (close == len) {
        return SA_OK;
    }

    for (pos = sa_chunk_line_end(b, len, 0) + 1; pos < close; pos = next) {
        end = sa_chunk_line_end(b, len, pos);
        next = end + 1;

        rc = sa_chunk_fm_line(b, pos, end, meta);
        if (rc != SA_OK) {
            return rc;
        }
    }

    return SA_OK;
}


static int
sa_chunk_fm_line(const char *b, size_t start, size_t end,
    sa_doc_meta_t *meta)
{
    int          rc;
    char        *value, **field;
    size_t       p, klen;
    int64_t      ms;
    const char  *key;

    /* a key starts the line: indented lines belong to nested YAML values,
       which no known key has */

    key = b + start;

    for (p = start; p < end; p++) {
        if (!((b[p] >= 'a' && b[p] <= 'z') || (b[p] >= 'A' && b[p] <= 'Z')
              || (b[p] >= '0' && b[p] <= '9') || b[p] == '_' || b[p] == '-'))
        {
            break;
        }
    }

    klen = p - start;

    while (p < end && (b[p] == ' ' || b[p] == '\t')) {
        p++;
    }

    if (klen == 0 || p == end || b[p] != ':') {
        return SA_OK;
    }

    p++;

    if (p < end && b[p] != ' ' && b[p] != '\t') {
        return SA_OK;
    }

#define sa_chunk_key_is(name)                                                \
    (klen == sizeof(name) - 1 && strncasecmp(key, name, klen) == 0)

    if (sa_chunk_key_is("title")) {
        field = &meta->title;

    } else if (sa_chunk_key_is("url")) {
        field = &meta->url;

    } else if (sa_chunk_key_is("product_area")) {
        field = &meta->product_area;

    } else if (sa_chunk_key_is("doc_type")) {
        field = &meta->doc_type;

    } else if (sa_chunk_key_is("version")) {
        field = &meta->version;

    } else if (sa_chunk_key_is("tier")) {
        field = &meta->tier;

    } else if (sa_chunk_key_is("region")) {
        field = &meta->region;

    } else if (sa_chunk_key_is("updated")) {
        field = NULL;

    } else {
        return SA_OK;
    }

#undef sa_chunk_key_is

    rc = sa_chunk_fm_value(b + p, end - p, &value);
    if (rc != SA_OK) {
        return rc;
    }

    if (field == NULL) {

        /* a date that cannot be read leaves the article without one
           rather than failing the whole article */

        if (value != NULL
            && sa_chunk_parse_time(value, strlen(value), &ms) == SA_OK)
        {
            meta->updated_ms = ms;
        }

        free(value);
        return SA_OK;
    }

    /* a repeated key: the last one wins, as in YAML parsers that allow it */
    free(*field);
    *field = value;

    return SA_OK;
}


/*
 * One scalar value in YAML's flow forms: "double quoted" with backslash
 * escapes, 'single quoted' with '' for a quote, or plain, where " #"
 * starts a comment.  Block scalars ("|", ">") are not supported and count
 * as absent; so does an empty value.
 */

static int
sa_chunk_fm_value(const char *v, size_t len, char **out)
{
    char    *s, q;
    size_t   i, j;

    *out = NULL;

    while (len && (*v == ' ' || *v == '\t')) {
        v++;
        len--;
    }

    if (len && (*v == '"' || *v == '\'')) {
        q = *v;

        s = malloc(len);
        if (s == NULL) {
            return SA_ERROR;
        }

        for (i = 1, j = 0; i < len; i++) {
            if (v[i] == q) {
                if (q == '\'' && i + 1 < len && v[i + 1] == '\'') {
                    s[j++] = '\'';
                    i++;
                    continue;
                }

                break;
            }

            if (q == '"' && v[i] == '\\' && i + 1 < len) {
                i++;

                switch (v[i]) {
                case 'n':
                    s[j++] = '\n';
                    break;
                case 't':
                    s[j++] = '\t';
                    break;
                case '"':
                case '\\':
                case '/':
                    s[j++] = v[i];
                    break;
                default:
                    /* unknown escapes are kept as written */
                    s[j++] = '\\';
                    s[j++] = v[i];
                }

                continue;
            }

            s[j++] = v[i];
        }

        if (i < len) {
            if (j == 0) {
                free(s);
                return SA_OK;
            }

            s[j] = '\0';
            *out = s;
            return SA_OK;
        }

        /* no closing quote: the value is taken as written */
        free(s);
    }

    if (len && (*v == '|' || *v == '>' || *v == '#')) {
        return SA_OK;
    }

    for (i = 0; i < len; i++) {
        if (v[i] == '#' && i && (v[i - 1] == ' ' || v[i - 1] == '\t')) {
            break;
        }
    }

    while (i && sa_chunk_ws(v[i - 1])) {
        i--;
    }

    if (i == 0) {
        return SA_OK;
    }

    *out = sa_chunk_strndup(v, i);

    return *out ? SA_OK : SA_ERROR;
}


/*
 * A code fence line (CommonMark): up to 3 spaces, then 3 or more "`" or
 * "~"; an info string after backticks must not contain a backtick.
 * bare: nothing but blanks follows, as a closing fence requires.
 */

static int
sa_chunk_fence(const char *b, size_t start, size_t end, char *ch,
    size_t *count, int *bare)
{
    size_t  p, n;

    for (p = start; p < end && p - start < 3 && b[p] == ' '; p++) {
        /* void */
    }

    if (p == end || (b[p] != '`' && b[p] != '~')) {
        return 0;
    }

    *ch = b[p];

    for (n = 0; p < end && b[p] == *ch; p++, n++) {
        /* void */
    }

    if (n < 3) {
        return 0;
    }

    if (*ch == '`' && memchr(b + p, '`', end - p) != NULL) {
        return 0;
    }

    *count = n;
    *bare = sa_chunk_blank(b, p, end);

    return 1;
}


/* the level of an ATX heading line (CommonMark), 0 if the line is none;
   the text goes without the optional closing "#"s */

static int
sa_chunk_atx(const char *b, size_t start, size_t end, size_t *text,
    size_t *text_len)
{
    int     level;
    size_t  p, q, r;

    for (p = start; p < end && p - start < 3 && b[p] == ' '; p++) {
        /* void */
    }

    for (level = 0; p < end && b[p] == '#'; p++, level++) {
        /* void */
    }

    if (level == 0 || level > 6
        || (p < end && b[p] != ' ' && b[p] != '\t'))
    {
        return 0;
    }

    while (p < end && (b[p] == ' ' || b[p] == '\t')) {
        p++;
    }

    q = end;

    while (q > p && sa_chunk_ws(b[q - 1])) {
        q--;
    }

    for (r = q; r > p && b[r - 1] == '#'; r--) {
        /* void */
    }

    if (r == p) {
        q = p;

    } else if (r < q && (b[r - 1] == ' ' || b[r - 1] == '\t')) {
        q = r;

        while (q > p && sa_chunk_ws(b[q - 1])) {
            q--;
        }
    }

    *text = p;
    *text_len = q - p;

    return level;
}


/* every heading of the body outside code fences, with its slug */

static int
sa_chunk_headings(const char *b, size_t len, size_t body,
    sa_chunk_slugs_t *slugs, sa_chunk_head_t **heads, size_t *nheads)
{
    int               level, in_fence, bare;
    char              ch, fence_ch;
    size_t            pos, end, next, count, fence_count, text, text_len;
    size_t            n, cap;
    sa_chunk_head_t  *h, *more;

    h = NULL;
    n = 0;
    cap = 0;
    in_fence = 0;
    fence_ch = 0;
    fence_count = 0;

    for (pos = body; pos < len; pos = next) {
        end = sa_chunk_line_end(b, len, pos);
        next = end < len ? end + 1 : len;

        if (in_fence) {

            /* an unclosed fence runs to the end of the document */

            if (sa_chunk_fence(b, pos, end, &ch, &count, &bare)
                && ch == fence_ch && count >= fence_count && bare)
            {
                in_fence = 0;
            }

            continue;
        }

        if (sa_chunk_fence(b, pos, end, &ch, &count, &bare)) {
            in_fence = 1;
            fence_ch = ch;
            fence_count = count;
            continue;
        }

        level = sa_chunk_atx(b, pos, end, &text, &text_len);
        if (level == 0) {
            continue;
        }

        if (n == cap) {
            cap = cap ? cap * 2 : 16;

            more = realloc(h, cap * sizeof(sa_chunk_head_t));
            if (more == NULL) {
                free(h);
                return SA_ERROR;
            }

            h = more;
        }

        h[n].start = pos;
        h[n].next = next;
        h[n].text = text;
        h[n].text_len = text_len;
        h[n].level = level;

        /* deeper headings get slugs too: GitHub counts them when it
           numbers repeated slugs */

        if (sa_chunk_unique_slug(slugs, b + text, text_len, &h[n].slug)
            != SA_OK)
        {
            free(h);
            return SA_ERROR;
        }

        n++;
    }

    *heads = h;
    *nheads = n;

    return SA_OK;
}


/*
 * Sections run from one heading of level 1..3 to the next; deeper
 * headings stay in the text.  A lone "#" heading is the document's title
 * and not part of section paths; with several, each is a top level.
 */

static int
sa_chunk_sections(sa_chunk_out_t *out, const char *b, size_t len,
    size_t body, sa_chunk_head_t *heads, size_t nheads)
{
    int               rc, h1s, level, title_h1;
    char             *path, *p;
    size_t            i, k, start, end, size;
    sa_chunk_head_t  *cur, *stack[4];

    h1s = 0;

    for (i = 0; i < nheads; i++) {
        if (heads[i].level == 1) {
            h1s++;
        }
    }

    title_h1 = (h1s == 1);

    /* a path joins the texts of at most three headings */
    size = 7;

    for (i = 0; i < nheads; i++) {
        if (heads[i].text_len * 3 + 7 > size) {
            size = heads[i].text_len * 3 + 7;
        }
    }

    path = malloc(size);
    if (path == NULL) {
        return SA_ERROR;
    }

    memset(stack, 0, sizeof(stack));
    cur = NULL;
    start = body;

    for (i = 0; i <= nheads; i++) {

        if (i < nheads && heads[i].level > 3) {
            continue;
        }

        end = (i < nheads) ? heads[i].start : len;

        p = path;

        for (level = 1; level <= 3; level++) {
            if (stack[level] == NULL || stack[level]->text_len == 0
                || (level == 1 && title_h1))
            {
                continue;
            }

            if (p != path) {
                memcpy(p, " > ", 3);
                p += 3;
            }

            memcpy(p, b + stack[level]->text, stack[level]->text_len);
            p += stack[level]->text_len;
        }

        *p = '\0';

        rc = sa_chunk_section(out, b, start, end, path,
                              cur ? cur->slug : "");
        if (rc != SA_OK) {
            free(path);
            return rc;
        }

        if (i == nheads) {
            break;
        }

        cur = &heads[i];
        stack[cur->level] = cur;

        for (k = cur->level + 1; k <= 3; k++) {
            stack[k] = NULL;
        }

        start = cur->next;
    }

    free(path);

    return SA_OK;
}


/*
 * One section's text: without leading blank lines and trailing blanks
 * (the first line keeps its indentation, which may mean code), in one
 * chunk or split into several of at most out->max bytes.  Every chunk is
 * a slice of the text: the overlap is the text before the new part.
 */

static int
sa_chunk_section(sa_chunk_out_t *out, const char *b, size_t start,
    size_t end, const char *section, const char *anchor)
{
    int          rc;
    size_t       p, len, s, pos, first, limit, c, e, lo, w;
    const char  *t;

    for (p = start; p < end; p++) {
        if (b[p] == '\n') {
            start = p + 1;

        } else if (!sa_chunk_ws(b[p])) {
            break;
        }
    }

    if (p == end) {
        return SA_OK;
    }

    while (end > start && sa_chunk_ws(b[end - 1])) {
        end--;
    }

    t = b + start;
    len = end - start;

    if (out->max == 0 || len <= out->max) {
        return sa_chunk_add(out, t, len, section, anchor);
    }

    s = 0;
    pos = 0;

    for ( ;; ) {

        if (len - s <= out->max) {
            return sa_chunk_add(out, t + s, len - s, section, anchor);
        }

        for (first = pos; first < len && sa_chunk_ws(t[first]); first++) {
            /* void */
        }

        limit = s + out->max;
        c = (limit > first) ? sa_chunk_cut(t, len, first, limit) : 0;

        if (c == 0) {

            /* the overlap (or the indentation) left no room for the
               next character: this chunk goes without */

            s = first;
            limit = s + out->max;

            if (len - s <= out->max) {
                return sa_chunk_add(out, t + s, len - s, section, anchor);
            }

            c = sa_chunk_cut(t, len, first, limit);
        }

        for (e = c; e > first && sa_chunk_ws(t[e - 1]); e--) {
            /* void */
        }

        rc = sa_chunk_add(out, t + s, e - s, section, anchor);
        if (rc != SA_OK) {
            return rc;
        }

        /* the next part starts at its first line's indentation, or right
           after the blanks that follow a cut within a line */

        for (pos = c; pos < len && sa_chunk_ws(t[pos]); pos++) {
            /* void */
        }

        for (p = pos; p > e && t[p - 1] != '\n'; p--) {
            /* void */
        }

        if (p > e) {
            pos = p;
        }

        if (out->overlap == 0) {
            s = pos;
            continue;
        }

        /* the overlap lies within the last out->overlap bytes of the
           chunk, starts later than the chunk itself, and leaves at least
           half a chunk for new text */

        lo = e > out->overlap ? e - out->overlap : 0;

        if (lo < s + 1) {
            lo = s + 1;
        }

        if (pos > out->max / 2 && lo < pos - out->max / 2) {
            lo = pos - out->max / 2;
        }

        w = (lo < e) ? sa_chunk_overlap(t, len, lo, e) : 0;

        s = w ? w : pos;
    }
}


/* where the overlap in [lo, e) starts (lo > 0): at the first start of a
   sentence, paragraph or list item, else at the first word; 0 if no word
   starts there */

static size_t
sa_chunk_overlap(const char *t, size_t len, size_t lo, size_t e)
{
    size_t  w, word, ls;

    word = 0;

    for (w = lo; w < e; w++) {
        if (sa_chunk_ws(t[w]) || !sa_chunk_ws(t[w - 1])) {
            continue;
        }

        if (w >= 2 && sa_chunk_sentence_end(t, w - 1)) {
            return w;
        }

        for (ls = w; ls > 0 && (t[ls - 1] == ' ' || t[ls - 1] == '\t'); ls--)
        {
            /* void */
        }

        if (ls >= 2 && t[ls - 1] == '\n'
            && (t[ls - 2] == '\n' || sa_chunk_block_start(t, len, ls)))
        {
            return w;
        }

        if (word == 0) {
            word = w;
        }
    }

    return word;
}


/*
 * Where to end a chunk whose new text starts at first (not a blank) and
 * which must end by limit (< len): the offset of the cut, after first, or
 * 0 if not even one character fits.  Preferred, latest first: a paragraph
 * end (a blank line follows), the end of a line before a list item, table
 * row or heading, a sentence end, any blank, the last whole character.
 * Plain line ends are no better than blanks: markdown is often wrapped
 * mid-sentence.  The first three only count in the second half of the
 * room, or chunks would come out needlessly small.
 */

static size_t
sa_chunk_cut(const char *t, size_t len, size_t first, size_t limit)
{
    size_t  c, half, q;

    half = first + (limit - first) / 2;

    /* a line end next to a blank line, on either side */

    for (c = limit; c > half; c--) {
        if (t[c] != '\n') {
            continue;
        }

        for (q = c + 1; q < len && (t[q] == ' ' || t[q] == '\t'); q++) {
            /* void */
        }

        if (q == len || t[q] == '\n') {
            return c;
        }

        for (q = c; q > first && (t[q - 1] == ' ' || t[q - 1] == '\t'); q--) {
            /* void */
        }

        if (q > first && t[q - 1] == '\n') {
            return c;
        }
    }

    for (c = limit; c > half; c--) {
        if (t[c] == '\n' && sa_chunk_block_start(t, len, c + 1)) {
            return c;
        }
    }

    for (c = limit; c > half; c--) {
        if (sa_chunk_ws(t[c]) && sa_chunk_sentence_end(t, c)) {
            return c;
        }
    }

    for (c = limit; c > first; c--) {
        if (sa_chunk_ws(t[c])) {
            return c;
        }
    }

    c = first + sa_utf8_complete_prefix((const unsigned char *) t + first,
                                        limit - first);

    return c > first ? c : 0;
}


/* the line at q starts a list item ("-", "*", "+", "1." or "1)" and a
   blank), a table row or a heading */

static int
sa_chunk_block_start(const char *t, size_t len, size_t q)
{
    size_t  d;

    while (q < len && (t[q] == ' ' || t[q] == '\t')) {
        q++;
    }

    if (q == len) {
        return 0;
    }

    if (t[q] == '|' || t[q] == '#') {
        return 1;
    }

    if (t[q] == '-' || t[q] == '*' || t[q] == '+') {
        return q + 1 < len && (t[q + 1] == ' ' || t[q + 1] == '\t');
    }

    for (d = q; d < len && d - q < 9 && t[d] >= '0' && t[d] <= '9'; d++) {
        /* void */
    }

    return d > q && d + 1 < len && (t[d] == '.' || t[d] == ')')
           && (t[d + 1] == ' ' || t[d + 1] == '\t');
}


/* the text before c (> 0) ends a sentence: ".", "!" or "?", possibly
   followed by a closing quote, parenthesis or emphasis */

static int
sa_chunk_sentence_end(const char *t, size_t c)
{
    size_t  k;

    for (k = c; k > 1 && k + 3 > c; k--) {
        if (t[k - 1] != '"' && t[k - 1] != '\'' && t[k - 1] != ')'
            && t[k - 1] != '*' && t[k - 1] != '_')
        {
            break;
        }
    }

    return t[k - 1] == '.' || t[k - 1] == '!' || t[k - 1] == '?';
}


static int
sa_chunk_add(sa_chunk_out_t *out, const char *text, size_t len,
    const char *section, const char *anchor)
{
    size_t       cap;
    sa_chunk_t  *c, *more;

    if (out->n == out->cap) {
        cap = out->cap ? out->cap * 2 : 8;

        more = realloc(out->chunks, cap * sizeof(sa_chunk_t));
        if (more == NULL) {
            return SA_ERROR;
        }

        out->chunks = more;
        out->cap = cap;
    }

    c = &out->chunks[out->n];

    c->section = sa_chunk_strndup(section, strlen(section));
    c->anchor = sa_chunk_strndup(anchor, strlen(anchor));
    c->text = sa_chunk_strndup(text, len);
    c->text_len = len;

    if (c->section == NULL || c->anchor == NULL || c->text == NULL) {
        free(c->section);
        free(c->anchor);
        free(c->text);
        return SA_ERROR;
    }

    out->n++;

    return SA_OK;
}


/* FNV-1a */

static uint64_t
sa_chunk_hash(const char *key)
{
    uint64_t  h;

    h = 0xcbf29ce484222325ULL;

    while (*key) {
        h ^= (unsigned char) *key++;
        h *= 0x100000001b3ULL;
    }

    return h;
}


static sa_chunk_slug_entry_t *
sa_chunk_slugs_find(sa_chunk_slugs_t *set, const char *key)
{
    size_t  i;

    if (set->cap == 0) {
        return NULL;
    }

    i = sa_chunk_hash(key) & (set->cap - 1);

    while (set->entries[i].key != NULL) {
        if (strcmp(set->entries[i].key, key) == 0) {
            return &set->entries[i];
        }

        i = (i + 1) & (set->cap - 1);
    }

    return NULL;
}


/* takes key over, also when it fails */

static int
sa_chunk_slugs_add(sa_chunk_slugs_t *set, char *key)
{
    size_t                  i, k, cap;
    sa_chunk_slug_entry_t  *e;

    if ((set->n + 1) * 2 > set->cap) {
        cap = set->cap ? set->cap * 2 : 32;

        e = calloc(cap, sizeof(sa_chunk_slug_entry_t));
        if (e == NULL) {
            free(key);
            return SA_ERROR;
        }

        for (k = 0; k < set->cap; k++) {
            if (set->entries[k].key == NULL) {
                continue;
            }

            i = sa_chunk_hash(set->entries[k].key) & (cap - 1);

            while (e[i].key != NULL) {
                i = (i + 1) & (cap - 1);
            }

            e[i] = set->entries[k];
        }

        free(set->entries);
        set->entries = e;
        set->cap = cap;
    }

    i = sa_chunk_hash(key) & (set->cap - 1);

    while (set->entries[i].key != NULL) {
        i = (i + 1) & (set->cap - 1);
    }

    set->entries[i].key = key;
    set->entries[i].count = 0;
    set->n++;

    return SA_OK;
}


static void
sa_chunk_slugs_free(sa_chunk_slugs_t *set)
{
    size_t  i;

    for (i = 0; i < set->cap; i++) {
        free(set->entries[i].key);
    }

    free(set->entries);
    memset(set, 0, sizeof(sa_chunk_slugs_t));
}


/* github-slugger's numbering: a repeated "faq" becomes "faq-1", "faq-2",
   skipping any of those a heading already has as its own slug */

static int
sa_chunk_unique_slug(sa_chunk_slugs_t *set, const char *text, size_t len,
    const char **slug)
{
    int                     rc;
    char                   *base, *cand;
    size_t                  blen;
    sa_chunk_slug_entry_t  *e;

    rc = sa_chunk_slug(text, len, &base);
    if (rc != SA_OK) {
        /* the whole document was validated: only memory can be short */
        return SA_ERROR;
    }

    e = sa_chunk_slugs_find(set, base);

    if (e == NULL) {
        *slug = base;
        return sa_chunk_slugs_add(set, base);
    }

    blen = strlen(base);

    cand = malloc(blen + 24);
    if (cand == NULL) {
        free(base);
        return SA_ERROR;
    }

    do {
        e->count++;
        snprintf(cand, blen + 24, "%s-%zu", base, e->count);
    } while (sa_chunk_slugs_find(set, cand) != NULL);

    free(base);

    *slug = cand;

    return sa_chunk_slugs_add(set, cand);
}


int
sa_chunk_slug(const char *text, size_t len, char **slug)
{
    char                 *s, *q;
    size_t                i, n, depth;
    uint32_t              c;
    const unsigned char  *p;

    p = (const unsigned char *) text;

    if (!sa_utf8_valid(p, len)) {
        return SA_INVALID;
    }

    /* lowercasing never more than doubles a character's bytes ("I" with
       a dot above becomes "i" and a combining dot) */

    s = malloc(len * 2 + 1);
    if (s == NULL) {
        return SA_ERROR;
    }

    q = s;

    for (i = 0; i < len; i += n) {
        n = sa_utf8_seq_len(p + i, len - i);
        if (n == 0) {
            /* a NUL byte: valid, but no character of a heading */
            n = 1;
            continue;
        }

        /* a link keeps its text only, as in the rendered heading */

        if (p[i] == ']' && i + 1 < len && p[i + 1] == '(') {
            depth = 0;

            for (i += 1; i < len; i++) {
                if (p[i] == '(') {
                    depth++;

                } else if (p[i] == ')' && --depth == 0) {
                    break;
                }
            }

            n = 1;
            continue;
        }

        if (n == 1) {
            c = p[i];

            if (c >= 'A' && c <= 'Z') {
                *q++ = (char) (c + 32);

            } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                       || c == '_' || c == '-')
            {
                *q++ = (char) c;

            } else if (c == ' ') {
                *q++ = '-';
            }

            continue;
        }

        switch (n) {
        case 2:
            c = ((p[i] & 0x1f) << 6) | (p[i + 1] & 0x3f);
            break;
        case 3:
            c = ((p[i] & 0x0f) << 12) | ((p[i + 1] & 0x3f) << 6)
                | (p[i + 2] & 0x3f);
            break;
        default:
            c = ((uint32_t) (p[i] & 0x07) << 18) | ((p[i + 1] & 0x3f) << 12)
                | ((p[i + 2] & 0x3f) << 6) | (p[i + 3] & 0x3f);
        }

        if (sa_chunk_slug_drop(c)) {
            continue;
        }

        if (c == 0x130) {
            *q++ = 'i';
            q += sa_chunk_utf8_put(q, 0x307);
            continue;
        }

        q += sa_chunk_utf8_put(q, sa_chunk_lower(c));
    }

    *q = '\0';
    *slug = s;

    return SA_OK;
}


/* lowercase for the scripts a help center is likely to use: Latin,
   Greek, Cyrillic, Armenian; other characters stay as they are */

static uint32_t
sa_chunk_lower(uint32_t c)
{
    if (c >= 0xc0 && c <= 0xde && c != 0xd7) {
        return c + 0x20;
    }

    if ((c >= 0x100 && c <= 0x12f) || (c >= 0x132 && c <= 0x137)
        || (c >= 0x14a && c <= 0x177) || (c >= 0x1e00 && c <= 0x1e95)
        || (c >= 0x1ea0 && c <= 0x1eff) || (c >= 0x460 && c <= 0x481)
        || (c >= 0x48a && c <= 0x4bf))
    {
        return (c & 1) ? c : c + 1;
    }

    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e)) {
        return (c & 1) ? c + 1 : c;
    }

    if (c == 0x178) {
        return 0xff;
    }

    if (c == 0x386) {
        return 0x3ac;
    }

    if (c >= 0x388 && c <= 0x38a) {
        return c + 0x25;
    }

    if (c == 0x38c) {
        return 0x3cc;
    }

    if (c == 0x38e || c == 0x38f) {
        return c + 0x3f;
    }

    if (c >= 0x391 && c <= 0x3ab && c != 0x3a2) {
        return c + 0x20;
    }

    if (c >= 0x400 && c <= 0x40f) {
        return c + 0x50;
    }

    if (c >= 0x410 && c <= 0x42f) {
        return c + 0x20;
    }

    if (c >= 0x531 && c <= 0x556) {
        return c + 0x30;
    }

    return c;
}


/* punctuation and symbols that GitHub leaves out of slugs (beyond ASCII):
   Latin-1's signs, general punctuation, currency, arrows, math, box
   drawing, shapes, dingbats, CJK and fullwidth punctuation, emoji */

static int
sa_chunk_slug_drop(uint32_t c)
{
    if (c <= 0xbf) {
        return c != 0xaa && c != 0xb5 && c != 0xba;
    }

    return c == 0xd7 || c == 0xf7
           || (c >= 0x2000 && c <= 0x206f)
           || (c >= 0x20a0 && c <= 0x20cf)
           || (c >= 0x2190 && c <= 0x23ff)
           || (c >= 0x2500 && c <= 0x2bff)
           || (c >= 0x2e00 && c <= 0x2e7f)
           || (c >= 0x3000 && c <= 0x3004)
           || (c >= 0x3008 && c <= 0x3020)
           || c == 0x3030 || c == 0x303d
           || (c >= 0xfe00 && c <= 0xfe1f)
           || (c >= 0xfe30 && c <= 0xfe6f)
           || c == 0xfeff
           || (c >= 0xff01 && c <= 0xff0f)
           || (c >= 0xff1a && c <= 0xff20)
           || (c >= 0xff3b && c <= 0xff40 && c != 0xff3f)
           || (c >= 0xff5b && c <= 0xff65)
           || (c >= 0x1f000 && c <= 0x1faff)
           || (c >= 0xe0000 && c <= 0xe007f);
}


static size_t
sa_chunk_utf8_put(char *p, uint32_t c)
{
    if (c < 0x80) {
        p[0] = (char) c;
        return 1;
    }

    if (c < 0x800) {
        p[0] = (char) (0xc0 | (c >> 6));
        p[1] = (char) (0x80 | (c & 0x3f));
        return 2;
    }

    if (c < 0x10000) {
        p[0] = (char) (0xe0 | (c >> 12));
        p[1] = (char) (0x80 | ((c >> 6) & 0x3f));
        p[2] = (char) (0x80 | (c & 0x3f));
        return 3;
    }

    p[0] = (char) (0xf0 | (c >> 18));
    p[1] = (char) (0x80 | ((c >> 12) & 0x3f));
    p[2] = (char) (0x80 | ((c >> 6) & 0x3f));
    p[3] = (char) (0x80 | (c & 0x3f));
    return 4;
}


int
sa_chunk_parse_time(const char *s, size_t len, int64_t *ms)
{
    int  year, month, day, hour, min, sec, mdays;

    static const int  days_in[] = {
        31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
    };

    if (len != 10 && len != 20) {
        return SA_INVALID;
    }

    if (!sa_chunk_digits(s, 4, &year) || s[4] != '-'
        || !sa_chunk_digits(s + 5, 2, &month) || s[7] != '-'
        || !sa_chunk_digits(s + 8, 2, &day))
    {
        return SA_INVALID;
    }

    hour = 0;
    min = 0;
    sec = 0;

    if (len == 20
        && ((s[10] != 'T' && s[10] != 't')
            || !sa_chunk_digits(s + 11, 2, &hour) || s[13] != ':'
            || !sa_chunk_digits(s + 14, 2, &min) || s[16] != ':'
            || !sa_chunk_digits(s + 17, 2, &sec)
            || (s[19] != 'Z' && s[19] != 'z')))
    {
        return SA_INVALID;
    }

    if (month < 1 || month > 12 || hour > 23 || min > 59 || sec > 59) {
        return SA_INVALID;
    }

    mdays = days_in[month - 1];

    if (month == 2
        && year % 4 == 0 && (year % 100 != 0 || year % 400 == 0))
    {
        mdays = 29;
    }

    if (day < 1 || day > mdays) {
        return SA_INVALID;
    }

    *ms = ((sa_chunk_days(year, month, day) * 24 + hour) * 60 + min) * 60
          + sec;
    *ms *= 1000;

    return SA_OK;
}


static int
sa_chunk_digits(const char *s, size_t n, int *v)
{
    size_t  i;

    *v = 0;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }

        *v = *v * 10 + (s[i] - '0');
    }

    return 1;
}


/* days from 1970-01-01 to a date of the proleptic Gregorian calendar
   (H. Hinnant's days_from_civil) */

static int64_t
sa_chunk_days(int64_t y, int m, int d)
{
    int64_t  era, yoe, doy, doe;

    y -= (m <= 2);
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + doe - 719468;
}
