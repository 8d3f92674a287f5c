
/*
 * Copyright (C) ngx_support_agent authors
 *
 * Markdown chunker for the knowledge base: reads an article's front
 * matter, splits the article into sections at its ATX headings and the
 * sections into chunks of bounded size for retrieval.
 */


#ifndef _SA_CHUNK_H_INCLUDED_
#define _SA_CHUNK_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "sa_types.h"


/* what the front matter says about an article; every string is malloc()ed,
   NUL-terminated, or NULL when absent (an empty value counts as absent) */
typedef struct {
    char     *title;        /* front matter "title", else the first "# "
                               heading's text */
    char     *url;
    char     *product_area;
    char     *doc_type;
    char     *version;
    char     *tier;
    char     *region;
    int64_t   updated_ms;   /* front matter "updated", 0 = none */
} sa_doc_meta_t;


/* one chunk; every string is malloc()ed and NUL-terminated */
typedef struct {
    char     *section;      /* heading path "A > B" ("" = before the first
                               heading, or under the document title) */
    char     *anchor;       /* GitHub-style slug of the section's own
                               heading ("" if none) */
    char     *text;         /* the chunk text (markdown, heading line
                               excluded) */
    size_t    text_len;
} sa_chunk_t;


/*
 * Splits a markdown article.
 *
 * md, len      the article: UTF-8, optionally with a BOM, LF or CRLF lines.
 * max_chars    the most bytes of UTF-8 in one chunk's text; 0: no limit.
 *              Values 1..3 are refused (a chunk must hold any character).
 * overlap_chars  how many bytes at most of a chunk's end are repeated at
 *              the start of the next chunk of the same section, starting
 *              on a word; only when a section had to be split, and never
 *              more than half of max_chars.
 * meta         receives the front matter (may be NULL when not needed);
 *              free it with sa_doc_meta_free() also after an error.
 * chunks, n    receive the chunks in document order (NULL and 0 if none);
 *              free them with sa_chunks_free().
 *
 * Returns SA_OK; SA_INVALID for text that is not valid UTF-8, has NUL
 * bytes, or for max_chars 1..3; SA_ERROR when out of memory.  After an
 * error *chunks is NULL, *n is 0 and meta is empty.
 */
int sa_chunk_markdown(const char *md, size_t len, size_t max_chars,
    size_t overlap_chars, sa_doc_meta_t *meta, sa_chunk_t **chunks,
    size_t *n);

/* frees the array and every string in it; chunks may be NULL */
void sa_chunks_free(sa_chunk_t *chunks, size_t n);

/* frees the strings and empties the struct (it may be reused); meta may
   be NULL */
void sa_doc_meta_free(sa_doc_meta_t *meta);


/* GitHub's heading slug of text (lowercased, spaces to "-", punctuation and
   symbols dropped, letters and digits of any script kept; links reduced to
   their text) as a malloc()ed string, without GitHub's "-1", "-2" suffixes
   for repeated headings (sa_chunk_markdown() adds those).  Returns SA_OK,
   SA_INVALID for text that is not valid UTF-8, SA_ERROR when out of
   memory. */
int sa_chunk_slug(const char *text, size_t len, char **slug);

/* "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SSZ" (UTC) to ms since the epoch;
   SA_INVALID for anything else, or a day or time that does not exist */
int sa_chunk_parse_time(const char *s, size_t len, int64_t *ms);


#endif /* _SA_CHUNK_H_INCLUDED_ */
