
/*
 * Copyright (C) ngx_support_agent authors
 *
 * The knowledge base: help-center articles split into chunks, indexed by
 * kb-build into one LMDB file, searched with BM25 by the module.  Pure C,
 * no nginx types.
 *
 * The file.  One LMDB environment in one file (MDB_NOSUBDIR).  kb-build
 * writes PATH.tmp (holding an flock on it, so two builds of one PATH do
 * not mix), syncs it and rename()s it onto PATH: a reader sees the old
 * file or the new one, whole.  A published file is never written again,
 * so readers open it with MDB_RDONLY | MDB_NOLOCK (no lock file, no
 * reader slots): any number of processes may read it, and a reader keeps
 * the version it opened until it opens the path again.
 *
 * Named databases (format 1):
 *
 *   "meta"      key: an ASCII name; value: ASCII text (no NUL):
 *                 format        "1"
 *                 language      the analyzer: "english" or "simple"
 *                 k1, b         BM25 defaults ("0.9", "0.4")
 *                 docs          documents
 *                 chunks        chunks (live)
 *                 tokens        terms indexed in all chunks (avgdl is
 *                               tokens / chunks)
 *                 terms         distinct terms (entries of "postings")
 *                 next_chunk    the next chunk id (ids are never reused
 *                               within incremental builds; chunk ids
 *                               range over [0, next_chunk))
 *                 built_ms      when the file was built, ms since epoch
 *                 max_chars, overlap   the chunking options
 *                 embed_model, embed_dim, embed_encoding   vectors: ""
 *                               "0" "" for none; else the model's name
 *                               (kb-build --embed-model, or the URL),
 *                               the dimension, and "float32" or "int8"
 *
 *   "docs"      key: the document id (1..SA_KB_ID_MAX bytes, UTF-8);
 *               value: the document record.
 *   "chunks"    key: the chunk id, u32 big-endian (so cursor order is id
 *               order); value: the chunk record.
 *   "postings"  key: a term as the analyzer makes it; value: a varint df,
 *               then df entries in increasing chunk id order, each a
 *               varint (delta << 1 | (tf == 1)) and, when tf != 1, a
 *               varint tf; delta is the id for the first entry, else the
 *               id minus the previous id.  Varints: LEB128, unsigned.
 *   "hashes"    key: the 16-byte hash (sa_kb_hash()) of a chunk's text;
 *               value: u32 big-endian id of the chunk that holds the text,
 *               then the ids of the other documents that contain the same
 *               text (each a varint length and bytes): identical chunk
 *               text is stored and indexed once.
 *   "columns"   per-chunk arrays, loaded whole by readers: "length": u32
 *               little-endian token count per chunk id (next_chunk of
 *               them, 0 for ids not in use); "product_area", "version",
 *               "tier", "region": u32 LE count of values, the values
 *               (u16 LE length, bytes; value 0 is ""), then a u16 LE code
 *               (the value's index) per chunk id.
 *   "vectors"   key: chunk id, u32 big-endian; value: the embedding of
 *               the chunk's indexed text (prefix, a newline, text), L2-
 *               normalised (so cosine similarity is the dot product):
 *               "float32": embed_dim float32 LE; "int8": a float32 LE
 *               scale, then embed_dim int8s (component i is scale *
 *               int8[i]; the int8s are the components in units of max
 *               |component| / 127, rounded, and the scale makes the
 *               vector unit length again).  A chunk may have no vector
 *               (the embedding service gave none, or a zero vector); a
 *               chunk whose text another document shares has one
 *               vector, its owner's.
 *
 * Records: fixed fields little-endian, then strings as varint length and
 * bytes (not NUL-terminated).
 *
 *   document   u8 version (1), u8 source (1 markdown, 2 jsonl), u16 0,
 *              u32 entries, i64 updated_ms, 16 bytes content hash
 *              (kb-build's, of the source and the options), strings title,
 *              url, source path, product_area, doc_type, version, tier,
 *              region; then per entry (the document's chunks in order):
 *              varint chunk id, strings section, anchor (a chunk whose
 *              text another document holds is listed with this
 *              document's own section and anchor).
 *   chunk      u8 version (1), u8 0, u16 0, u32 token length, i64
 *              updated_ms, 16 bytes text hash, strings doc id, section,
 *              anchor, product_area, doc_type, version, tier, region,
 *              prefix (indexed before the text but not shown: title and
 *              section), text.
 *
 * A reader refuses a format it does not know.  Fields only ever grow at
 * the end of records; readers ignore what follows the fields they know.
 *
 * Search: BM25 over chunks, Lucene 8's form: idf = ln(1 + (N - df + 0.5)
 * / (df + 0.5)), score = sum over query terms of idf * tf / (tf + k1 (1 -
 * b + b dl / avgdl)), with N the chunks and dl the chunk's token length
 * (exact, not Lucene's one-byte approximation).  Dense search: exact
 * cosine similarity with the stored vectors (sa_kb_search_dense()).
 */


#ifndef _SA_KB_H_INCLUDED_
#define _SA_KB_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "sa_types.h"


#define SA_KB_FORMAT     1
#define SA_KB_ID_MAX     256        /* bytes of a document id */
#define SA_KB_HASH_SIZE  16


/*
 * Reading: the module's side.
 *
 * An sa_kb_t is for one thread of one process: it keeps a read
 * transaction that is renewed and reset by each call (nothing is held
 * between calls), a score accumulator of 4 bytes per chunk and the
 * per-chunk columns (about 24 bytes per chunk in all), and the analyzer.
 * Open it after fork() (a handle inherited over fork() may only be
 * closed).  It maps the file read-only: the pages are the page cache's,
 * shared by every process that opens the file.  Every value handed back
 * is a copy and outlives the handle.  Calls never wait for a lock; a
 * search costs a few microseconds per thousand postings of its terms.
 */

typedef struct sa_kb_s  sa_kb_t;

/* opens a KB file read-only; err gets a message naming path on failure
   (missing file, not a KB, unknown format).  Loads the columns: a few ms
   per 100k chunks. */
int sa_kb_open(sa_kb_t **kb, const char *path, char *err, size_t errlen);

/* kb may be NULL */
void sa_kb_close(sa_kb_t *kb);

typedef struct {
    uint32_t   docs;
    uint32_t   chunks;
    int64_t    built_ms;
    char       language[16];
    uint32_t   dim;            /* 0 = no vectors */
} sa_kb_info_t;

int sa_kb_info(sa_kb_t *kb, sa_kb_info_t *info);

typedef struct {           /* NULL or "" = any; comparisons exact */
    const char  *product_area;
    const char  *version;
    const char  *tier;
    const char  *region;
} sa_kb_filter_t;

typedef struct {
    uint32_t  chunk;
    float     score;
} sa_kb_hit_t;

/* sa_kb_search_bm25_ex() flags: a chunk without a value for a filtered
   field passes too ("region": "us" also finds the articles for every
   region, which have no region) */
#define SA_KB_MATCH_UNSET  0x01

/* BM25 over chunks (k1, b: pass < 0 for the KB's defaults, 0.9 and 0.4;
   b is at most 1).
   The query is analyzed with the KB's analyzer; a term repeated in the
   query counts as often as it is repeated (Lucene's one clause per
   occurrence).  hits (room for k) get the best *n <= k chunks that pass
   filter (may be NULL), by score descending, ties by chunk id ascending.
   SA_OK, also with *n == 0 when nothing matches (or the query has no
   terms); SA_ERROR (out of memory, a damaged file: see
   sa_kb_last_error()). */
int sa_kb_search_bm25(sa_kb_t *kb, const char *query, size_t len,
    const sa_kb_filter_t *filter, float k1, float b, size_t k,
    sa_kb_hit_t *hits, size_t *n);

/* the same, with flags (SA_KB_MATCH_UNSET); sa_kb_search_bm25() is this
   with flags 0 */
int sa_kb_search_bm25_ex(sa_kb_t *kb, const char *query, size_t len,
    const sa_kb_filter_t *filter, unsigned flags, float k1, float b,
    size_t k, sa_kb_hit_t *hits, size_t *n);

/* all strings malloc()ed, NUL-terminated, may be "" */
typedef struct {
    uint32_t  chunk;
    char     *doc_id;
    char     *title;
    char     *section;      /* "Refunds > EU customers" */
    char     *anchor;
    char     *url;          /* the document's url, "#anchor" added */
    char     *text;
    size_t    text_len;
    char     *product_area;
    char     *doc_type;
    char     *version;
    char     *tier;
    char     *region;
    int64_t   updated_ms;   /* 0 = unknown */

    /* what was indexed: prefix (title and section, not shown), then
       text; NULL prefix in chunks not read from a KB */
    char     *prefix;
    size_t    prefix_len;
    uint32_t  tokens;       /* the token length BM25 uses */
    unsigned char  hash[SA_KB_HASH_SIZE];   /* sa_kb_hash(text, seed 0) */
} sa_kb_chunk_t;

/* SA_OK, SA_NOT_FOUND (no such chunk), SA_ERROR; after SA_OK the chunk
   must be freed with sa_kb_chunk_free() */
int sa_kb_chunk(sa_kb_t *kb, uint32_t chunk, sa_kb_chunk_t *out);

/* frees the strings and zeroes c; c may be NULL, and a zeroed chunk may
   be freed */
void sa_kb_chunk_free(sa_kb_chunk_t *c);

/* enumerates the chunks: *chunk gets the lowest chunk id >= from that is
   in use.  SA_OK, SA_NOT_FOUND (none left), SA_ERROR.  A loop:
   for (id = 0; sa_kb_chunk_next(kb, id, &id) == SA_OK; id++) */
int sa_kb_chunk_next(sa_kb_t *kb, uint32_t from, uint32_t *chunk);


/*
 * Dense vectors (kb-build --embed; sa_kb_info_t.dim > 0).
 *
 * sa_kb_search_dense(): exact cosine similarity of query (dim floats,
 * normalised here) with every stored vector: a linear scan of the mapped
 * "vectors" database, nothing held in memory (about 1.2 ms per 10k
 * chunks of dim 384 in float32, 0.7 ms in int8: kb-build/README.md).
 * Filter, flags and the order of hits are those of
 * sa_kb_search_bm25_ex(): best first, ties by chunk id; scores are
 * cosines in [-1, 1].  The call blocks for the whole scan.  SA_OK, also
 * with *n == 0 (k == 0, a zero query, no vectors pass the filter);
 * SA_INVALID when the KB has no vectors, dim is not the KB's, or the
 * query has a value that is not finite; SA_ERROR (a damaged file: see
 * sa_kb_last_error()).
 */
int sa_kb_search_dense(sa_kb_t *kb, const float *query, size_t dim,
    const sa_kb_filter_t *filter, unsigned flags, size_t k,
    sa_kb_hit_t *hits, size_t *n);

/* a chunk's stored vector (normalised; int8 dequantised) into out (dim
   floats).  SA_OK, SA_NOT_FOUND (the chunk has none), SA_INVALID (no
   vectors in the KB, another dim), SA_ERROR */
int sa_kb_vector(sa_kb_t *kb, uint32_t chunk, float *out, size_t dim);

/* the text of the last failure, "" if none */
const char *sa_kb_last_error(sa_kb_t *kb);

/* a meta value ("" when absent) into buf, NUL-terminated; SA_NOT_FOUND
   when absent */
int sa_kb_meta(sa_kb_t *kb, const char *name, char *buf, size_t size);


/* a term's (as the analyzer makes it) BM25 idf over the chunks:
   ln(1 + (N - df + 0.5) / (df + 0.5)); a term not in the KB gets the
   highest, df 0 */
double sa_kb_term_idf(sa_kb_t *kb, const char *term, size_t len);


/* MurmurHash3 x64 128 of data (seed mixes in options), for content hashes */
void sa_kb_hash(const void *data, size_t len, uint32_t seed,
    unsigned char out[SA_KB_HASH_SIZE]);


/*
 * Writing: kb-build's side.  One writer per PATH at a time (the flock on
 * PATH.tmp says so: SA_BUSY).
 *
 *   sa_kb_writer_open()     reuses PATH when it is a KB of this format and
 *                           language (an incremental build: PATH is
 *                           copied, compacted, into PATH.tmp), else starts
 *                           an empty PATH.tmp (a full build)
 *   sa_kb_writer_check()    for every document of the input, with its
 *                           content hash: SA_OK when PATH has it with
 *                           this hash (kept as it is), SA_NOT_FOUND when
 *                           it is new or changed (add it), SA_BUSY for an
 *                           id already checked in this run
 *   sa_kb_writer_prune()    once, after all checks: removes the documents
 *                           that changed or are no longer in the input
 *   sa_kb_writer_add()      for each document checked SA_NOT_FOUND
 *   sa_kb_writer_finish()   writes the postings and columns, syncs, and
 *                           renames PATH.tmp onto PATH (an incremental
 *                           build that changed nothing leaves PATH as it
 *                           is); the writer is freed whatever it returns
 *   sa_kb_writer_abort()    removes PATH.tmp and frees the writer
 */

typedef struct sa_kb_writer_s  sa_kb_writer_t;

typedef struct {
    const char  *language;    /* "english" (NULL) or "simple" */
    int          rebuild;     /* 1: ignore PATH, build from scratch */
    uint32_t     max_chars;   /* recorded in meta */
    uint32_t     overlap;

    /* vectors: embed_model NULL or "" for none.  embed_dim 0: not known
       yet (sa_kb_writer_embed_dim() sets it).  Settings other than
       PATH's make a full build (reason "embeddings"); embed_dim 0 takes
       PATH's dimension when the model and encoding are PATH's. */
    const char  *embed_model;
    uint32_t     embed_dim;
    int          embed_int8;  /* 1: store int8 with a scale per vector */
} sa_kb_writer_conf_t;

typedef struct {          /* NULL strings count as "" */
    const char    *id;        /* 1..SA_KB_ID_MAX bytes of UTF-8 */
    const char    *title;
    const char    *url;
    const char    *source;    /* where it came from, for people */
    int            kind;      /* 1 markdown, 2 jsonl */
    const char    *product_area;
    const char    *doc_type;
    const char    *version;
    const char    *tier;
    const char    *region;
    int64_t        updated_ms;
    unsigned char  hash[SA_KB_HASH_SIZE];
} sa_kb_doc_t;

typedef struct {
    const char    *section;   /* NULL counts as "" */
    const char    *anchor;
    const char    *prefix;    /* indexed before text, not stored as text */
    size_t         prefix_len;
    const char    *text;      /* what is shown and cited */
    size_t         text_len;
    const float   *vector;    /* embed_dim floats of the embedding of
                                 prefix "\n" text (any length: stored
                                 normalised), or NULL for none; a zero
                                 vector is stored as none */
} sa_kb_wchunk_t;

typedef struct {
    int       incremental;    /* PATH was reused */
    int       kept;           /* nothing changed: PATH was left as it was
                                 (not rewritten) */
    uint32_t  docs;           /* in the KB now */
    uint32_t  chunks;
    uint64_t  tokens;
    uint32_t  terms;          /* distinct terms in the KB */
    uint32_t  added;          /* documents new to the KB */
    uint32_t  changed;
    uint32_t  unchanged;
    uint32_t  removed;
    uint32_t  chunks_added;
    uint32_t  chunks_removed;
    uint32_t  duplicates;     /* chunks whose text another chunk holds */
    uint32_t  relinked;       /* shared chunks handed to another document
                                 when theirs was removed */
    uint64_t  bytes;          /* size of the file written */
    const char *reason;       /* why a full build: "new", "--rebuild",
                                 "language", "format", "sparse ids",
                                 "embeddings" */
    uint32_t  vectors;        /* chunks with a vector in the KB */
    uint32_t  dim;            /* their dimension, 0 for none */
} sa_kb_writer_stats_t;

int sa_kb_writer_open(sa_kb_writer_t **w, const char *path,
    const sa_kb_writer_conf_t *conf, char *err, size_t errlen);
int sa_kb_writer_check(sa_kb_writer_t *w, const char *id,
    const unsigned char hash[SA_KB_HASH_SIZE]);
int sa_kb_writer_prune(sa_kb_writer_t *w);
/* SA_OK; SA_INVALID (a bad id, not valid UTF-8, not checked first, a
   vector with a value that is not finite, a vector without embed_dim or
   embed_model); SA_ERROR */
int sa_kb_writer_add(sa_kb_writer_t *w, const sa_kb_doc_t *doc,
    const sa_kb_wchunk_t *chunks, size_t n);
/* the dimension of the vectors to come, when the conf left it 0 (known
   only once the embedding service answers): SA_OK when the writer had
   none yet (it takes dim) or has dim; SA_INVALID when it has another
   (an incremental build of PATH, whose vectors have it: the error says
   both) or has no embed_model */
int sa_kb_writer_embed_dim(sa_kb_writer_t *w, uint32_t dim);
int sa_kb_writer_finish(sa_kb_writer_t *w, sa_kb_writer_stats_t *stats,
    char *err, size_t errlen);
void sa_kb_writer_abort(sa_kb_writer_t *w);
const char *sa_kb_writer_error(sa_kb_writer_t *w);


#endif /* _SA_KB_H_INCLUDED_ */
