
/*
 * Copyright (C) ngx_support_agent authors
 *
 * The knowledge base file: reading and BM25 search (the module), writing
 * (kb-build).  The format is described in sa_kb.h.
 */


#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <lmdb.h>

#include "sa_kb.h"
#include "sa_text.h"
#include "sa_utf8.h"


#define SA_KB_MAX_DBS          16
#define SA_KB_REC_VERSION      1
#define SA_KB_DOC_FIXED        32
#define SA_KB_CHUNK_FIXED      32
#define SA_KB_NFILTERS         4
#define SA_KB_NO_CODE          0xffffffff
#define SA_KB_MAX_DIM          65536

/* the dense scan reads so many values at a time, prefetching so many
   values ahead */
#define SA_KB_SCAN_BATCH       32
#define SA_KB_AHEAD            2

/* a build commits every so many record writes: a txn's dirty pages stay
   in memory until it commits */
#define SA_KB_BATCH            4096

/* the writer's map: address space only, the file grows as needed; the
   size recorded in the file is cut to what is used at the end */
#define SA_KB_WRITE_MAP        ((size_t) 64 << 30)

/* an incremental build starts afresh when ids got this sparse */
#define SA_KB_SPARSE(next, chunks)  ((next) > 2 * (uint64_t) (chunks) + 4096)


/* fields of a chunk record, in order */
enum {
    SA_KB_C_DOC = 0,
    SA_KB_C_SECTION,
    SA_KB_C_ANCHOR,
    SA_KB_C_PRODUCT_AREA,
    SA_KB_C_DOC_TYPE,
    SA_KB_C_VERSION,
    SA_KB_C_TIER,
    SA_KB_C_REGION,
    SA_KB_C_PREFIX,
    SA_KB_C_TEXT,
    SA_KB_C_NFIELDS
};

/* fields of a document record, in order */
enum {
    SA_KB_D_TITLE = 0,
    SA_KB_D_URL,
    SA_KB_D_SOURCE,
    SA_KB_D_PRODUCT_AREA,
    SA_KB_D_DOC_TYPE,
    SA_KB_D_VERSION,
    SA_KB_D_TIER,
    SA_KB_D_REGION,
    SA_KB_D_NFIELDS
};

/* what a writer knows of a document id seen in this run */
enum {
    SA_KB_SEEN_UNCHANGED = 1,
    SA_KB_SEEN_NEW,
    SA_KB_SEEN_CHANGED,
    SA_KB_SEEN_ADDED
};


typedef struct {
    const char       *data;
    size_t            len;
} sa_kb_str_t;

typedef struct {
    unsigned char    *data;
    size_t            len;
    size_t            cap;
} sa_kb_buf_t;

/* a decoder over a record */
typedef struct {
    const unsigned char  *p;
    const unsigned char  *last;
    int                   bad;
} sa_kb_rd_t;

typedef struct {
    uint32_t              tokens;
    int64_t               updated_ms;
    const unsigned char  *hash;
    sa_kb_str_t           f[SA_KB_C_NFIELDS];
} sa_kb_chunk_rec_t;

typedef struct {
    int                   kind;
    uint32_t              entries;
    int64_t               updated_ms;
    const unsigned char  *hash;
    sa_kb_str_t           f[SA_KB_D_NFIELDS];
    sa_kb_rd_t            rest;         /* at the entries */
} sa_kb_doc_rec_t;

/* a vector found by the dense scan */
typedef struct {
    uint32_t              chunk;
    const unsigned char  *p;
} sa_kb_vref_t;

/* the values of one filter field, sorted ("" first) */
typedef struct {
    uint32_t              n;
    sa_kb_str_t          *values;
    unsigned char        *data;         /* the column, owns the strings */
    const unsigned char  *codes;        /* u16 LE per chunk id */
} sa_kb_dict_t;


struct sa_kb_s {
    MDB_env              *env;
    MDB_txn              *txn;          /* reset between calls */
    MDB_dbi               meta;
    MDB_dbi               docs;
    MDB_dbi               chunks;
    MDB_dbi               postings;
    MDB_dbi               columns;
    MDB_dbi               vectors;

    sa_analyzer_t        *analyzer;

    int                   int8;         /* vectors: scale and int8s */
    size_t                vsize;        /* bytes of a stored vector */
    float                *qvec;         /* the normalised dense query */

    uint32_t              ndocs;
    uint32_t              nchunks;
    uint32_t              next_chunk;
    uint64_t              tokens;
    double                avgdl;
    float                 k1;
    float                 b;
    int64_t               built_ms;
    uint32_t              dim;
    char                  language[16];

    uint32_t             *length;       /* per chunk id */
    sa_kb_dict_t          dicts[SA_KB_NFILTERS];

    /* k1 (1 - b + b dl / avgdl) per chunk, for norm_k1 and norm_b */
    float                *norm;
    float                 norm_k1;
    float                 norm_b;

    float                *score;        /* all 0 between calls */
    uint32_t             *touched;

    /* the query's terms: NUL-terminated, one after another, their offsets
       while analyzing, then pointers to them */
    sa_kb_buf_t           qterms;
    size_t               *qoff;
    const char          **qterm;
    size_t                nqoff;
    size_t                qoff_cap;

    char                  err[256];
};


/* string keys of the writer's hash tables; entries start with one */
typedef struct {
    uint32_t              hash;
    uint32_t              len;
    char                 *key;
} sa_kb_key_t;

typedef struct {
    sa_kb_key_t         **slots;
    size_t                n;
    size_t                mask;         /* slots - 1, a power of 2 */
} sa_kb_map_t;

typedef struct {
    sa_kb_key_t           k;
    int                   state;
} sa_kb_seen_t;

/* a term's postings added in this run */
typedef struct {
    sa_kb_key_t           k;
    uint32_t              df;           /* entries in buf */
    uint32_t              last;         /* chunk id of the last in buf */
    uint32_t              cur;          /* chunk of the pending entry */
    uint32_t              cur_tf;       /* 0: none pending */
    unsigned              dirty:1;      /* a chunk with it was removed */
    sa_kb_buf_t           buf;          /* first delta from 0 */
} sa_kb_term_t;


struct sa_kb_writer_s {
    MDB_env              *env;
    MDB_txn              *txn;
    MDB_dbi               meta;
    MDB_dbi               docs;
    MDB_dbi               chunks;
    MDB_dbi               postings;
    MDB_dbi               hashes;
    MDB_dbi               columns;
    MDB_dbi               vectors;

    sa_analyzer_t        *analyzer;
    char                  language[16];
    uint32_t              max_chars;
    uint32_t              overlap;

    char                 *embed_model;  /* NULL: no vectors */
    uint32_t              dim;          /* 0: not known yet */
    int                   int8;
    unsigned char        *vbuf;         /* a vector being stored */

    char                 *path;
    char                 *tmp;
    int                   lock_fd;

    int                   incremental;
    int                   pruned;
    uint32_t              first_new;    /* next_chunk when opened */
    uint32_t              next_chunk;
    unsigned char        *deleted;      /* bitmap over [0, first_new) */
    size_t                ops;

    sa_kb_map_t           seen;
    sa_kb_map_t           terms;

    /* the chunk being analyzed */
    uint32_t              cur_chunk;
    uint32_t              cur_len;

    sa_kb_buf_t           rec;
    sa_kb_buf_t           rec2;
    sa_kb_buf_t           val;

    sa_kb_writer_stats_t  stats;
    char                  err[512];
};


static const char  *sa_kb_filter_columns[SA_KB_NFILTERS] = {
    "product_area", "version", "tier", "region"
};

static const int  sa_kb_filter_fields[SA_KB_NFILTERS] = {
    SA_KB_C_PRODUCT_AREA, SA_KB_C_VERSION, SA_KB_C_TIER, SA_KB_C_REGION
};


static void sa_kb_error(sa_kb_t *kb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sa_kb_werror(sa_kb_writer_t *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int sa_kb_begin(sa_kb_t *kb);
static void sa_kb_end(sa_kb_t *kb);
static int sa_kb_load(sa_kb_t *kb, const char *path, char *err,
    size_t errlen);
static int sa_kb_load_meta(sa_kb_t *kb, const char *path, char *err,
    size_t errlen);
static int sa_kb_load_columns(sa_kb_t *kb, const char *path, char *err,
    size_t errlen);
static int sa_kb_load_dict(sa_kb_dict_t *d, const MDB_val *val,
    uint32_t next_chunk);
static int sa_kb_meta_get(MDB_txn *txn, MDB_dbi dbi, const char *name,
    char *buf, size_t size);
static int sa_kb_meta_u64(MDB_txn *txn, MDB_dbi dbi, const char *name,
    uint64_t *v);
static int sa_kb_query_term(void *data, const char *term, size_t len,
    uint32_t position);
static int sa_kb_qterm_cmp(const void *one, const void *two);
static void sa_kb_prepare_norm(sa_kb_t *kb, float k1, float b);
static int sa_kb_filter_code(sa_kb_dict_t *d, const char *value,
    uint32_t *code);
static int sa_kb_hit_worse(const sa_kb_hit_t *a, const sa_kb_hit_t *b);
static void sa_kb_heap_down(sa_kb_hit_t *h, size_t n, size_t i);
static void sa_kb_heap_push(sa_kb_hit_t *h, size_t *nh, size_t k,
    const sa_kb_hit_t *hit);
static void sa_kb_heap_sort(sa_kb_hit_t *h, size_t n);
static char *sa_kb_strdup(const sa_kb_str_t *s);
static int sa_kb_load_vectors(sa_kb_t *kb, const char *path, char *err,
    size_t errlen);
static int sa_kb_filter_prepare(sa_kb_t *kb, const sa_kb_filter_t *filter,
    unsigned flags, uint32_t *want, const unsigned char **codes, int *nf);
static int sa_kb_filter_pass(uint32_t id, const uint32_t *want,
    const unsigned char **codes, int nf, int unset);
static void sa_kb_prefetch(const unsigned char *p, size_t size);
static float sa_kb_dot_f32(const float *q, const unsigned char *v,
    size_t dim);
static float sa_kb_dot_i8(const float *q, const unsigned char *v,
    size_t dim);
static void sa_kb_i8_layout(float *q, size_t dim);

static void sa_kb_put_u16(unsigned char *p, uint16_t v);
static void sa_kb_put_u32(unsigned char *p, uint32_t v);
static void sa_kb_put_u64(unsigned char *p, uint64_t v);
static uint16_t sa_kb_get_u16(const unsigned char *p);
static uint32_t sa_kb_get_u32(const unsigned char *p);
static uint64_t sa_kb_get_u64(const unsigned char *p);
static void sa_kb_put_be32(unsigned char *p, uint32_t v);
static uint32_t sa_kb_get_be32(const unsigned char *p);
static void sa_kb_put_f32(unsigned char *p, float v);
static float sa_kb_get_f32(const unsigned char *p);
static size_t sa_kb_put_varint(unsigned char *p, uint64_t v);
static uint64_t sa_kb_rd_varint(sa_kb_rd_t *rd);
static void sa_kb_rd_str(sa_kb_rd_t *rd, sa_kb_str_t *s);
static int sa_kb_chunk_decode(const MDB_val *val, sa_kb_chunk_rec_t *r);
static int sa_kb_doc_decode(const MDB_val *val, sa_kb_doc_rec_t *r);

static int sa_kb_buf_reserve(sa_kb_buf_t *b, size_t more);
static int sa_kb_buf_add(sa_kb_buf_t *b, const void *data, size_t len);
static int sa_kb_buf_varint(sa_kb_buf_t *b, uint64_t v);
static int sa_kb_buf_str(sa_kb_buf_t *b, const char *s, size_t len);
static void sa_kb_buf_free(sa_kb_buf_t *b);

static uint32_t sa_kb_key_hash(const char *key, size_t len);
static sa_kb_key_t *sa_kb_map_find(sa_kb_map_t *m, const char *key,
    size_t len, uint32_t hash);
static int sa_kb_map_add(sa_kb_map_t *m, sa_kb_key_t *e);
static void sa_kb_map_free(sa_kb_map_t *m);
static void *sa_kb_entry_new(size_t size, const char *key, size_t len,
    uint32_t hash);
static int sa_kb_key_cmp(const void *one, const void *two);

static int sa_kb_writer_start(sa_kb_writer_t *w, const char *path,
    const sa_kb_writer_conf_t *conf, char *err, size_t errlen);
static int sa_kb_writer_lock(sa_kb_writer_t *w);
static int sa_kb_writer_examine(sa_kb_writer_t *w,
    const sa_kb_writer_conf_t *conf);
static int sa_kb_writer_env(sa_kb_writer_t *w);
static int sa_kb_writer_txn(sa_kb_writer_t *w);
static int sa_kb_writer_commit(sa_kb_writer_t *w);
static int sa_kb_writer_batch(sa_kb_writer_t *w);
static int sa_kb_writer_lmdb(sa_kb_writer_t *w, const char *call, int rc);
static void sa_kb_writer_free(sa_kb_writer_t *w);
static int sa_kb_writer_remove_doc(sa_kb_writer_t *w, const char *id,
    size_t len);
static int sa_kb_writer_drop_owned(sa_kb_writer_t *w, uint32_t chunk,
    const sa_kb_chunk_rec_t *rec);
static int sa_kb_writer_relink(sa_kb_writer_t *w, uint32_t chunk,
    const sa_kb_chunk_rec_t *rec, const sa_kb_str_t *owner);
static int sa_kb_writer_unref(sa_kb_writer_t *w,
    const unsigned char *hash, const char *id, size_t len);
static int sa_kb_writer_refs_without(sa_kb_writer_t *w,
    const unsigned char *hash, const char *id, size_t len, uint32_t *owner,
    sa_kb_str_t **refs, size_t *n, size_t *m);
static int sa_kb_writer_hash_value(sa_kb_writer_t *w,
    const unsigned char *hash, uint32_t owner, const sa_kb_str_t *refs,
    size_t n);
static int sa_kb_writer_parse_refs(const MDB_val *val, uint32_t *owner,
    sa_kb_str_t **refs, size_t *n);
static int sa_kb_writer_add_chunk(sa_kb_writer_t *w, const sa_kb_doc_t *doc,
    const sa_kb_wchunk_t *c, uint32_t *id);
static int sa_kb_writer_dedupe(sa_kb_writer_t *w, const sa_kb_doc_t *doc,
    const sa_kb_wchunk_t *c, const unsigned char *hash, uint32_t *id,
    int *taken);
static int sa_kb_writer_chunk_rec(sa_kb_buf_t *b, uint32_t tokens,
    int64_t updated_ms, const unsigned char *hash,
    const sa_kb_str_t *f);
static int sa_kb_writer_embed_examine(sa_kb_writer_t *w, MDB_txn *txn,
    MDB_dbi meta, uint32_t *dim);
static int sa_kb_writer_check_vector(sa_kb_writer_t *w,
    const sa_kb_doc_t *doc, size_t i, const float *v);
static int sa_kb_writer_put_vector(sa_kb_writer_t *w, uint32_t id,
    const float *v);
static int sa_kb_writer_vector_stats(sa_kb_writer_t *w);
static int sa_kb_index_term(void *data, const char *term, size_t len,
    uint32_t position);
static int sa_kb_dirty_term(void *data, const char *term, size_t len,
    uint32_t position);
static sa_kb_term_t *sa_kb_writer_term(sa_kb_writer_t *w, const char *term,
    size_t len);
static int sa_kb_term_encode(sa_kb_term_t *t, uint32_t id, uint32_t tf);
static int sa_kb_writer_postings(sa_kb_writer_t *w);
static int sa_kb_writer_merge(sa_kb_writer_t *w, sa_kb_term_t *t,
    MDB_val *val);
static int sa_kb_writer_columns(sa_kb_writer_t *w);
static int sa_kb_writer_meta(sa_kb_writer_t *w);
static int sa_kb_writer_put_meta(sa_kb_writer_t *w, const char *name,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int sa_kb_writer_publish(sa_kb_writer_t *w);
static int sa_kb_writer_kept(sa_kb_writer_t *w);
static int sa_kb_check_str(const char *s, size_t len);
static int64_t sa_kb_now_ms(void);


/* ------------------------------------------------------------------ */
/* reading                                                             */


int
sa_kb_open(sa_kb_t **kbp, const char *path, char *err, size_t errlen)
{
    int       rc;
    sa_kb_t  *kb;

    *kbp = NULL;

    if (errlen > 0) {
        err[0] = '\0';
    }

    kb = calloc(1, sizeof(sa_kb_t));
    if (kb == NULL) {
        snprintf(err, errlen, "kb \"%s\": out of memory", path);
        return SA_ERROR;
    }

    rc = sa_kb_load(kb, path, err, errlen);
    if (rc != SA_OK) {
        sa_kb_close(kb);
        return rc;
    }

    *kbp = kb;

    return SA_OK;
}


static int
sa_kb_load(sa_kb_t *kb, const char *path, char *err, size_t errlen)
{
    int          rc;
    struct stat  st;
    const char  *call;

    /* LMDB would create a missing file even read-only: look first */

    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "kb \"%s\": %s", path, strerror(errno));
        return SA_ERROR;
    }

    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "kb \"%s\": not a regular file", path);
        return SA_ERROR;
    }

    call = "mdb_env_create";
    rc = mdb_env_create(&kb->env);
    if (rc != MDB_SUCCESS) {
        kb->env = NULL;
        goto failed;
    }

    call = "mdb_env_set_maxdbs";
    rc = mdb_env_set_maxdbs(kb->env, SA_KB_MAX_DBS);
    if (rc != MDB_SUCCESS) {
        goto failed;
    }

    /*
     * Map the file, not the map size kb-build recorded (the address space
     * it wrote with): LMDB rounds a smaller size up to the data's.
     */

    if (st.st_size > 0) {
        call = "mdb_env_set_mapsize";
        rc = mdb_env_set_mapsize(kb->env, (size_t) st.st_size);
        if (rc != MDB_SUCCESS) {
            goto failed;
        }
    }

    /* never written once published: no lock file, no reader slots */

    call = "mdb_env_open";
    rc = mdb_env_open(kb->env, path,
                      MDB_RDONLY | MDB_NOLOCK | MDB_NOSUBDIR | MDB_NOTLS,
                      0644);
    if (rc != MDB_SUCCESS) {
        goto failed;
    }

    call = "mdb_txn_begin";
    rc = mdb_txn_begin(kb->env, NULL, MDB_RDONLY, &kb->txn);
    if (rc != MDB_SUCCESS) {
        kb->txn = NULL;
        goto failed;
    }

    call = "mdb_dbi_open";

    if ((rc = mdb_dbi_open(kb->txn, "meta", 0, &kb->meta)) != MDB_SUCCESS
        || (rc = mdb_dbi_open(kb->txn, "docs", 0, &kb->docs)) != MDB_SUCCESS
        || (rc = mdb_dbi_open(kb->txn, "chunks", 0, &kb->chunks))
           != MDB_SUCCESS
        || (rc = mdb_dbi_open(kb->txn, "postings", 0, &kb->postings))
           != MDB_SUCCESS
        || (rc = mdb_dbi_open(kb->txn, "columns", 0, &kb->columns))
           != MDB_SUCCESS)
    {
        if (rc == MDB_NOTFOUND) {
            snprintf(err, errlen, "kb \"%s\": not a knowledge base file "
                     "(built by kb-build)", path);
            return SA_ERROR;
        }

        goto failed;
    }

    if (sa_kb_load_meta(kb, path, err, errlen) != SA_OK
        || sa_kb_load_columns(kb, path, err, errlen) != SA_OK
        || sa_kb_load_vectors(kb, path, err, errlen) != SA_OK)
    {
        return SA_ERROR;
    }

    /* the database handles outlive only a txn that commits; the txn kept
       for the calls is a new one, reset until used */

    rc = mdb_txn_commit(kb->txn);
    kb->txn = NULL;

    if (rc != MDB_SUCCESS) {
        call = "mdb_txn_commit";
        goto failed;
    }

    call = "mdb_txn_begin";
    rc = mdb_txn_begin(kb->env, NULL, MDB_RDONLY, &kb->txn);
    if (rc != MDB_SUCCESS) {
        kb->txn = NULL;
        goto failed;
    }

    mdb_txn_reset(kb->txn);

    kb->analyzer = sa_analyzer_new(kb->language);
    if (kb->analyzer == NULL) {
        snprintf(err, errlen, "kb \"%s\": cannot create the \"%s\" analyzer",
                 path, kb->language);
        return SA_ERROR;
    }

    kb->score = calloc(kb->next_chunk + 1, sizeof(float));
    kb->touched = malloc((kb->next_chunk + 1) * sizeof(uint32_t));
    kb->norm = malloc((kb->next_chunk + 1) * sizeof(float));

    if (kb->score == NULL || kb->touched == NULL || kb->norm == NULL) {
        snprintf(err, errlen, "kb \"%s\": out of memory", path);
        return SA_ERROR;
    }

    sa_kb_prepare_norm(kb, kb->k1, kb->b);

    return SA_OK;

failed:

    snprintf(err, errlen, "kb \"%s\": %s() failed: %s", path, call,
             mdb_strerror(rc));

    return SA_ERROR;
}


static int
sa_kb_load_meta(sa_kb_t *kb, const char *path, char *err, size_t errlen)
{
    char      buf[64];
    uint64_t  format, docs, chunks, next, dim;
    int64_t   built;

    if (sa_kb_meta_u64(kb->txn, kb->meta, "format", &format) != SA_OK) {
        snprintf(err, errlen, "kb \"%s\": no format in meta", path);
        return SA_ERROR;
    }

    if (format != SA_KB_FORMAT) {
        snprintf(err, errlen, "kb \"%s\": format %llu, this build reads "
                 "format %d: rebuild it with this kb-build", path,
                 (unsigned long long) format, SA_KB_FORMAT);
        return SA_ERROR;
    }

    if (sa_kb_meta_get(kb->txn, kb->meta, "language", kb->language,
                       sizeof(kb->language))
        != SA_OK
        || sa_kb_meta_u64(kb->txn, kb->meta, "docs", &docs) != SA_OK
        || sa_kb_meta_u64(kb->txn, kb->meta, "chunks", &chunks) != SA_OK
        || sa_kb_meta_u64(kb->txn, kb->meta, "next_chunk", &next) != SA_OK
        || sa_kb_meta_u64(kb->txn, kb->meta, "tokens", &kb->tokens) != SA_OK)
    {
        snprintf(err, errlen, "kb \"%s\": incomplete meta", path);
        return SA_ERROR;
    }

    if (docs > UINT32_MAX || chunks > next || next >= UINT32_MAX) {
        snprintf(err, errlen, "kb \"%s\": bad counts in meta", path);
        return SA_ERROR;
    }

    kb->ndocs = (uint32_t) docs;
    kb->nchunks = (uint32_t) chunks;
    kb->next_chunk = (uint32_t) next;
    kb->avgdl = chunks ? (double) kb->tokens / (double) chunks : 0;

    kb->k1 = 0.9f;
    kb->b = 0.4f;

    if (sa_kb_meta_get(kb->txn, kb->meta, "k1", buf, sizeof(buf)) == SA_OK) {
        kb->k1 = strtof(buf, NULL);
    }

    if (sa_kb_meta_get(kb->txn, kb->meta, "b", buf, sizeof(buf)) == SA_OK) {
        kb->b = strtof(buf, NULL);
    }

    if (!(kb->k1 >= 0) || !(kb->b >= 0 && kb->b <= 1)) {
        snprintf(err, errlen, "kb \"%s\": bad k1 or b in meta", path);
        return SA_ERROR;
    }

    if (sa_kb_meta_get(kb->txn, kb->meta, "built_ms", buf, sizeof(buf))
        == SA_OK)
    {
        built = strtoll(buf, NULL, 10);
        kb->built_ms = built;
    }

    if (sa_kb_meta_u64(kb->txn, kb->meta, "embed_dim", &dim) == SA_OK
        && dim <= UINT32_MAX)
    {
        kb->dim = (uint32_t) dim;
    }

    return SA_OK;
}


static int
sa_kb_load_columns(sa_kb_t *kb, const char *path, char *err,
    size_t errlen)
{
    int       rc, i;
    MDB_val   key, val;
    uint32_t  c;

    key.mv_data = "length";
    key.mv_size = sizeof("length") - 1;

    rc = mdb_get(kb->txn, kb->columns, &key, &val);
    if (rc != MDB_SUCCESS
        || val.mv_size != (size_t) kb->next_chunk * 4)
    {
        snprintf(err, errlen, "kb \"%s\": bad \"length\" column", path);
        return SA_ERROR;
    }

    kb->length = malloc((kb->next_chunk + 1) * sizeof(uint32_t));
    if (kb->length == NULL) {
        snprintf(err, errlen, "kb \"%s\": out of memory", path);
        return SA_ERROR;
    }

    for (c = 0; c < kb->next_chunk; c++) {
        kb->length[c] = sa_kb_get_u32((unsigned char *) val.mv_data + 4 * c);
    }

    for (i = 0; i < SA_KB_NFILTERS; i++) {
        key.mv_data = (void *) sa_kb_filter_columns[i];
        key.mv_size = strlen(sa_kb_filter_columns[i]);

        rc = mdb_get(kb->txn, kb->columns, &key, &val);
        if (rc != MDB_SUCCESS
            || sa_kb_load_dict(&kb->dicts[i], &val, kb->next_chunk) != SA_OK)
        {
            snprintf(err, errlen, "kb \"%s\": bad \"%s\" column", path,
                     sa_kb_filter_columns[i]);
            return SA_ERROR;
        }
    }

    return SA_OK;
}


/* a filter column, copied: the values, then a u16 code per chunk id */

static int
sa_kb_load_dict(sa_kb_dict_t *d, const MDB_val *val, uint32_t next_chunk)
{
    size_t                i, len;
    const unsigned char  *p, *last;

    if (val->mv_size < 4) {
        return SA_ERROR;
    }

    d->data = malloc(val->mv_size);
    if (d->data == NULL) {
        return SA_ERROR;
    }

    memcpy(d->data, val->mv_data, val->mv_size);

    p = d->data;
    last = p + val->mv_size;

    d->n = sa_kb_get_u32(p);
    p += 4;

    if (d->n == 0 || d->n > 0x10000) {
        return SA_ERROR;
    }

    d->values = calloc(d->n, sizeof(sa_kb_str_t));
    if (d->values == NULL) {
        return SA_ERROR;
    }

    for (i = 0; i < d->n; i++) {
        if (last - p < 2) {
            return SA_ERROR;
        }

        len = sa_kb_get_u16(p);
        p += 2;

        if ((size_t) (last - p) < len) {
            return SA_ERROR;
        }

        d->values[i].data = (const char *) p;
        d->values[i].len = len;
        p += len;
    }

    if ((size_t) (last - p) != (size_t) next_chunk * 2) {
        return SA_ERROR;
    }

    d->codes = p;

    /* a code must name a value: checked once here, not per search */

    for (i = 0; i < next_chunk; i++) {
        if (sa_kb_get_u16(p + 2 * i) >= d->n) {
            return SA_ERROR;
        }
    }

    return SA_OK;
}


/* the vectors' encoding; the values themselves are read where they lie */

static int
sa_kb_load_vectors(sa_kb_t *kb, const char *path, char *err,
    size_t errlen)
{
    int   rc;
    char  encoding[16];

    if (kb->dim == 0) {
        return SA_OK;
    }

    if (kb->dim > SA_KB_MAX_DIM) {
        snprintf(err, errlen, "kb \"%s\": bad embed_dim in meta", path);
        return SA_ERROR;
    }

    if (sa_kb_meta_get(kb->txn, kb->meta, "embed_encoding", encoding,
                       sizeof(encoding))
        != SA_OK)
    {
        encoding[0] = '\0';
    }

    if (strcmp(encoding, "float32") == 0) {
        kb->vsize = (size_t) kb->dim * 4;

    } else if (strcmp(encoding, "int8") == 0) {
        kb->int8 = 1;
        kb->vsize = 4 + (size_t) kb->dim;

    } else {
        snprintf(err, errlen, "kb \"%s\": unknown embed_encoding \"%s\"",
                 path, encoding);
        return SA_ERROR;
    }

    rc = mdb_dbi_open(kb->txn, "vectors", 0, &kb->vectors);
    if (rc != MDB_SUCCESS) {
        snprintf(err, errlen, "kb \"%s\": no \"vectors\" database: %s",
                 path, mdb_strerror(rc));
        return SA_ERROR;
    }

    kb->qvec = malloc((size_t) kb->dim * sizeof(float));
    if (kb->qvec == NULL) {
        snprintf(err, errlen, "kb \"%s\": out of memory", path);
        return SA_ERROR;
    }

    return SA_OK;
}


void
sa_kb_close(sa_kb_t *kb)
{
    int  i;

    if (kb == NULL) {
        return;
    }

    if (kb->txn != NULL) {
        mdb_txn_abort(kb->txn);
    }

    if (kb->env != NULL) {
        mdb_env_close(kb->env);
    }

    sa_analyzer_free(kb->analyzer);

    for (i = 0; i < SA_KB_NFILTERS; i++) {
        free(kb->dicts[i].values);
        free(kb->dicts[i].data);
    }

    free(kb->length);
    free(kb->qvec);
    free(kb->norm);
    free(kb->score);
    free(kb->touched);
    free(kb->qoff);
    free(kb->qterm);
    sa_kb_buf_free(&kb->qterms);
    free(kb);
}


int
sa_kb_info(sa_kb_t *kb, sa_kb_info_t *info)
{
    memset(info, 0, sizeof(sa_kb_info_t));

    info->docs = kb->ndocs;
    info->chunks = kb->nchunks;
    info->built_ms = kb->built_ms;
    info->dim = kb->dim;
    memcpy(info->language, kb->language, sizeof(info->language));

    return SA_OK;
}


const char *
sa_kb_last_error(sa_kb_t *kb)
{
    return kb->err;
}


int
sa_kb_meta(sa_kb_t *kb, const char *name, char *buf, size_t size)
{
    int  rc;

    if (size > 0) {
        buf[0] = '\0';
    }

    if (sa_kb_begin(kb) != SA_OK) {
        return SA_ERROR;
    }

    rc = sa_kb_meta_get(kb->txn, kb->meta, name, buf, size);

    sa_kb_end(kb);

    return rc;
}


double
sa_kb_term_idf(sa_kb_t *kb, const char *term, size_t len)
{
    int          rc;
    double       df, N;
    MDB_val      key, val;
    sa_kb_rd_t   rd;

    N = kb->nchunks;
    df = 0;

    if (sa_kb_begin(kb) != SA_OK) {
        return 0;
    }

    key.mv_data = (void *) term;
    key.mv_size = len;

    rc = mdb_get(kb->txn, kb->postings, &key, &val);

    if (rc == MDB_SUCCESS) {
        rd.p = val.mv_data;
        rd.last = rd.p + val.mv_size;
        rd.bad = 0;

        df = (double) sa_kb_rd_varint(&rd);

        if (rd.bad || df > N) {
            df = 0;
        }
    }

    sa_kb_end(kb);

    /* BM25's idf; a term not in the KB weighs as the rarest */
    return log(1 + (N - df + 0.5) / (df + 0.5));
}


static int
sa_kb_begin(sa_kb_t *kb)
{
    int  rc;

    rc = mdb_txn_renew(kb->txn);
    if (rc != MDB_SUCCESS) {
        sa_kb_error(kb, "mdb_txn_renew() failed: %s", mdb_strerror(rc));
        return SA_ERROR;
    }

    return SA_OK;
}


static void
sa_kb_end(sa_kb_t *kb)
{
    mdb_txn_reset(kb->txn);
}


static int
sa_kb_meta_get(MDB_txn *txn, MDB_dbi dbi, const char *name, char *buf,
    size_t size)
{
    int      rc;
    size_t   n;
    MDB_val  key, val;

    if (size > 0) {
        buf[0] = '\0';
    }

    key.mv_data = (void *) name;
    key.mv_size = strlen(name);

    rc = mdb_get(txn, dbi, &key, &val);
    if (rc == MDB_NOTFOUND) {
        return SA_NOT_FOUND;
    }

    if (rc != MDB_SUCCESS) {
        return SA_ERROR;
    }

    if (size == 0) {
        return SA_OK;
    }

    n = val.mv_size < size - 1 ? val.mv_size : size - 1;
    memcpy(buf, val.mv_data, n);
    buf[n] = '\0';

    return SA_OK;
}


static int
sa_kb_meta_u64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t *v)
{
    int    rc;
    char   buf[32], *end;

    rc = sa_kb_meta_get(txn, dbi, name, buf, sizeof(buf));
    if (rc != SA_OK) {
        return rc;
    }

    errno = 0;
    *v = strtoull(buf, &end, 10);

    if (errno != 0 || end == buf || *end != '\0') {
        return SA_ERROR;
    }

    return SA_OK;
}


static void
sa_kb_error(sa_kb_t *kb, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    vsnprintf(kb->err, sizeof(kb->err), fmt, ap);
    va_end(ap);
}


/* ------------------------------------------------------------------ */
/* BM25                                                                */


int
sa_kb_search_bm25(sa_kb_t *kb, const char *query, size_t len,
    const sa_kb_filter_t *filter, float k1, float b, size_t k,
    sa_kb_hit_t *hits, size_t *n)
{
    return sa_kb_search_bm25_ex(kb, query, len, filter, 0, k1, b, k, hits,
                                n);
}


int
sa_kb_search_bm25_ex(sa_kb_t *kb, const char *query, size_t len,
    const sa_kb_filter_t *filter, unsigned flags, float k1, float b,
    size_t k, sa_kb_hit_t *hits, size_t *n)
{
    int                   rc, nf, unset;
    float                 w, s, tf, *score, *norm;
    double                idf, df, N;
    size_t                q, nq, nt, nh, qtf;
    uint32_t              id, want[SA_KB_NFILTERS], ntouched, *touched;
    uint64_t              v, cnt, e;
    MDB_val               key, val;
    sa_kb_rd_t            rd;
    sa_kb_hit_t           hit;
    const char           *term;
    const unsigned char  *p, *last, *codes[SA_KB_NFILTERS];

    *n = 0;
    kb->err[0] = '\0';

    if (k == 0 || kb->nchunks == 0) {
        return SA_OK;
    }

    /* NaN would stay in the accumulator for good: it is never 0 again */

    if (!(k1 >= 0) || !isfinite(k1)) {
        k1 = kb->k1;
    }

    if (!(b >= 0)) {
        b = kb->b;
    }

    if (b > 1) {
        b = 1;
    }

    unset = (flags & SA_KB_MATCH_UNSET) != 0;

    if (sa_kb_filter_prepare(kb, filter, flags, want, codes, &nf) != SA_OK)
    {
        return SA_OK;
    }

    /* the query's terms, sorted so that repeats are adjacent */

    kb->qterms.len = 0;
    kb->nqoff = 0;

    rc = sa_analyze(kb->analyzer, query, len, sa_kb_query_term, kb);
    if (rc != SA_OK) {
        sa_kb_error(kb, "out of memory analyzing the query");
        return SA_ERROR;
    }

    if (kb->nqoff == 0) {
        return SA_OK;
    }

    for (q = 0; q < kb->nqoff; q++) {
        kb->qterm[q] = (const char *) kb->qterms.data + kb->qoff[q];
    }

    qsort(kb->qterm, kb->nqoff, sizeof(const char *), sa_kb_qterm_cmp);

    if (kb->norm_k1 != k1 || kb->norm_b != b) {
        sa_kb_prepare_norm(kb, k1, b);
    }

    if (sa_kb_begin(kb) != SA_OK) {
        return SA_ERROR;
    }

    score = kb->score;
    norm = kb->norm;
    touched = kb->touched;
    ntouched = 0;
    N = kb->nchunks;
    nq = kb->nqoff;
    rc = SA_OK;

    for (q = 0; q < nq; q += qtf) {
        term = kb->qterm[q];

        for (qtf = 1; q + qtf < nq; qtf++) {
            if (strcmp(term, kb->qterm[q + qtf]) != 0) {
                break;
            }
        }

        key.mv_data = (void *) term;
        key.mv_size = strlen(term);

        rc = mdb_get(kb->txn, kb->postings, &key, &val);
        if (rc == MDB_NOTFOUND) {
            rc = SA_OK;
            continue;
        }

        if (rc != MDB_SUCCESS) {
            sa_kb_error(kb, "mdb_get(postings) failed: %s", mdb_strerror(rc));
            rc = SA_ERROR;
            break;
        }

        rd.p = val.mv_data;
        rd.last = rd.p + val.mv_size;
        rd.bad = 0;

        cnt = sa_kb_rd_varint(&rd);

        if (rd.bad || cnt == 0 || cnt > kb->nchunks) {
            sa_kb_error(kb, "bad postings of \"%s\"", term);
            rc = SA_ERROR;
            break;
        }

        p = rd.p;
        last = rd.last;

        df = (double) cnt;
        idf = log(1 + (N - df + 0.5) / (df + 0.5));
        w = (float) (idf * (double) qtf);

        /* the hot loop: a varint or two per entry, inlined */

        id = 0;

        for (e = 0; e < cnt; e++) {
            if (p < last && *p < 0x80) {
                v = *p++;

            } else {
                rd.p = p;
                v = sa_kb_rd_varint(&rd);
                p = rd.p;

                if (rd.bad) {
                    break;
                }
            }

            if (v & 1) {
                tf = 1;

            } else if (p < last && *p < 0x80) {
                tf = *p++;

            } else {
                rd.p = p;
                tf = (float) sa_kb_rd_varint(&rd);
                p = rd.p;

                if (rd.bad) {
                    break;
                }
            }

            v >>= 1;

            if (v >= kb->next_chunk - id || tf < 1) {
                break;
            }

            id += (uint32_t) v;

            s = w * tf / (tf + norm[id]);

            if (score[id] == 0) {
                touched[ntouched++] = id;
            }

            score[id] += s;
        }

        if (e != cnt) {
            sa_kb_error(kb, "bad postings of \"%s\"", term);
            rc = SA_ERROR;
            break;
        }
    }

    sa_kb_end(kb);

    /* the best k that pass the filter: a heap with the worst on top */

    nh = 0;

    for (nt = 0; nt < ntouched; nt++) {
        id = touched[nt];
        hit.chunk = id;
        hit.score = score[id];
        score[id] = 0;

        if (rc != SA_OK || !sa_kb_filter_pass(id, want, codes, nf, unset)) {
            continue;
        }

        sa_kb_heap_push(hits, &nh, k, &hit);
    }

    if (rc != SA_OK) {
        return SA_ERROR;
    }

    sa_kb_heap_sort(hits, nh);

    *n = nh;

    return SA_OK;
}


static int
sa_kb_query_term(void *data, const char *term, size_t len,
    uint32_t position)
{
    sa_kb_t       *kb = data;
    size_t        *qoff, cap;
    const char   **qterm;

    if (kb->nqoff == kb->qoff_cap) {
        cap = kb->qoff_cap ? kb->qoff_cap * 2 : 64;

        qoff = realloc(kb->qoff, cap * sizeof(size_t));
        if (qoff == NULL) {
            return SA_ERROR;
        }

        kb->qoff = qoff;

        qterm = realloc(kb->qterm, cap * sizeof(const char *));
        if (qterm == NULL) {
            return SA_ERROR;
        }

        kb->qterm = qterm;
        kb->qoff_cap = cap;
    }

    kb->qoff[kb->nqoff++] = kb->qterms.len;

    return sa_kb_buf_add(&kb->qterms, term, len + 1);
}


static int
sa_kb_qterm_cmp(const void *one, const void *two)
{
    return strcmp(*(const char * const *) one, *(const char * const *) two);
}


static void
sa_kb_prepare_norm(sa_kb_t *kb, float k1, float b)
{
    double    avgdl;
    uint32_t  c;

    avgdl = kb->avgdl > 0 ? kb->avgdl : 1;

    for (c = 0; c < kb->next_chunk; c++) {
        kb->norm[c] = (float) (k1 * (1 - b + b * kb->length[c] / avgdl));
    }

    kb->norm_k1 = k1;
    kb->norm_b = b;
}


/* binary search: the values are sorted as memcmp() sorts them */

static int
sa_kb_filter_code(sa_kb_dict_t *d, const char *value, uint32_t *code)
{
    int       c;
    size_t    len, lo, hi, mid, m;

    len = strlen(value);
    lo = 0;
    hi = d->n;

    while (lo < hi) {
        mid = (lo + hi) / 2;
        m = d->values[mid].len < len ? d->values[mid].len : len;

        c = memcmp(d->values[mid].data, value, m);
        if (c == 0) {
            c = (d->values[mid].len > len) - (d->values[mid].len < len);
        }

        if (c == 0) {
            *code = (uint32_t) mid;
            return SA_OK;
        }

        if (c < 0) {
            lo = mid + 1;

        } else {
            hi = mid;
        }
    }

    return SA_NOT_FOUND;
}


/* lower score, or the same score and a higher chunk id */

static int
sa_kb_hit_worse(const sa_kb_hit_t *a, const sa_kb_hit_t *b)
{
    return a->score < b->score
           || (a->score == b->score && a->chunk > b->chunk);
}


static void
sa_kb_heap_down(sa_kb_hit_t *h, size_t n, size_t i)
{
    size_t       c;
    sa_kb_hit_t  x;

    x = h[i];

    for ( ;; ) {
        c = 2 * i + 1;

        if (c >= n) {
            break;
        }

        if (c + 1 < n && sa_kb_hit_worse(&h[c + 1], &h[c])) {
            c++;
        }

        if (!sa_kb_hit_worse(&h[c], &x)) {
            break;
        }

        h[i] = h[c];
        i = c;
    }

    h[i] = x;
}


/* the best k so far: a heap with the worst on top */

static void
sa_kb_heap_push(sa_kb_hit_t *h, size_t *nh, size_t k, const sa_kb_hit_t *hit)
{
    size_t  j;

    if (*nh < k) {
        /* sift up */
        j = (*nh)++;

        while (j > 0 && sa_kb_hit_worse(hit, &h[(j - 1) / 2])) {
            h[j] = h[(j - 1) / 2];
            j = (j - 1) / 2;
        }

        h[j] = *hit;
        return;
    }

    if (sa_kb_hit_worse(&h[0], hit)) {
        h[0] = *hit;
        sa_kb_heap_down(h, *nh, 0);
    }
}


/* heap sort: the worst goes to the end each time, so the best is first */

static void
sa_kb_heap_sort(sa_kb_hit_t *h, size_t n)
{
    size_t       j;
    sa_kb_hit_t  x;

    for (j = n; j > 1; j--) {
        x = h[0];
        h[0] = h[j - 1];
        h[j - 1] = x;
        sa_kb_heap_down(h, j - 1, 0);
    }
}


/*
 * The filter as codes of the per-chunk columns.  A filter value the KB
 * does not have matches nothing (SA_NOT_FOUND), or only the chunks
 * without a value, with SA_KB_MATCH_UNSET.
 */

static int
sa_kb_filter_prepare(sa_kb_t *kb, const sa_kb_filter_t *filter,
    unsigned flags, uint32_t *want, const unsigned char **codes, int *nf)
{
    int          i;
    const char  *values[SA_KB_NFILTERS];

    *nf = 0;

    if (filter == NULL) {
        return SA_OK;
    }

    values[0] = filter->product_area;
    values[1] = filter->version;
    values[2] = filter->tier;
    values[3] = filter->region;

    for (i = 0; i < SA_KB_NFILTERS; i++) {
        if (values[i] == NULL || values[i][0] == '\0') {
            continue;
        }

        if (sa_kb_filter_code(&kb->dicts[i], values[i], &want[*nf])
            != SA_OK)
        {
            if (!(flags & SA_KB_MATCH_UNSET)) {
                return SA_NOT_FOUND;
            }

            /* no chunk has the value: code 0 ("") alone passes */
            want[*nf] = 0;
        }

        codes[(*nf)++] = kb->dicts[i].codes;
    }

    return SA_OK;
}


static int
sa_kb_filter_pass(uint32_t id, const uint32_t *want,
    const unsigned char **codes, int nf, int unset)
{
    int       j;
    uint32_t  code;

    for (j = 0; j < nf; j++) {
        code = sa_kb_get_u16(codes[j] + 2 * (size_t) id);

        if (code != want[j] && !(unset && code == 0)) {
            return 0;
        }
    }

    return 1;
}


/* ------------------------------------------------------------------ */
/* fetching a chunk                                                    */


int
sa_kb_chunk(sa_kb_t *kb, uint32_t chunk, sa_kb_chunk_t *out)
{
    int                rc;
    size_t             n;
    MDB_val            key, val;
    unsigned char      k[4];
    sa_kb_doc_rec_t    doc;
    sa_kb_chunk_rec_t  rec;
    static sa_kb_str_t  empty = { "", 0 };
    const sa_kb_str_t  *title, *url;

    memset(out, 0, sizeof(sa_kb_chunk_t));
    kb->err[0] = '\0';

    if (sa_kb_begin(kb) != SA_OK) {
        return SA_ERROR;
    }

    sa_kb_put_be32(k, chunk);
    key.mv_data = k;
    key.mv_size = 4;

    rc = mdb_get(kb->txn, kb->chunks, &key, &val);
    if (rc == MDB_NOTFOUND) {
        sa_kb_end(kb);
        sa_kb_error(kb, "no chunk %u", chunk);
        return SA_NOT_FOUND;
    }

    if (rc != MDB_SUCCESS) {
        sa_kb_end(kb);
        sa_kb_error(kb, "mdb_get(chunks) failed: %s", mdb_strerror(rc));
        return SA_ERROR;
    }

    if (sa_kb_chunk_decode(&val, &rec) != SA_OK) {
        sa_kb_end(kb);
        sa_kb_error(kb, "bad record of chunk %u", chunk);
        return SA_ERROR;
    }

    /* the title and the url are the document's */

    title = &empty;
    url = &empty;

    key.mv_data = (void *) rec.f[SA_KB_C_DOC].data;
    key.mv_size = rec.f[SA_KB_C_DOC].len;

    rc = mdb_get(kb->txn, kb->docs, &key, &val);
    if (rc == MDB_SUCCESS && sa_kb_doc_decode(&val, &doc) == SA_OK) {
        title = &doc.f[SA_KB_D_TITLE];
        url = &doc.f[SA_KB_D_URL];
    }

    out->chunk = chunk;
    out->updated_ms = rec.updated_ms;
    out->tokens = rec.tokens;
    memcpy(out->hash, rec.hash, SA_KB_HASH_SIZE);
    out->prefix_len = rec.f[SA_KB_C_PREFIX].len;
    out->prefix = sa_kb_strdup(&rec.f[SA_KB_C_PREFIX]);
    out->text_len = rec.f[SA_KB_C_TEXT].len;
    out->doc_id = sa_kb_strdup(&rec.f[SA_KB_C_DOC]);
    out->title = sa_kb_strdup(title);
    out->section = sa_kb_strdup(&rec.f[SA_KB_C_SECTION]);
    out->anchor = sa_kb_strdup(&rec.f[SA_KB_C_ANCHOR]);
    out->text = sa_kb_strdup(&rec.f[SA_KB_C_TEXT]);
    out->product_area = sa_kb_strdup(&rec.f[SA_KB_C_PRODUCT_AREA]);
    out->doc_type = sa_kb_strdup(&rec.f[SA_KB_C_DOC_TYPE]);
    out->version = sa_kb_strdup(&rec.f[SA_KB_C_VERSION]);
    out->tier = sa_kb_strdup(&rec.f[SA_KB_C_TIER]);
    out->region = sa_kb_strdup(&rec.f[SA_KB_C_REGION]);

    /* "url#anchor", unless the url has a fragment of its own */

    n = url->len + 1 + rec.f[SA_KB_C_ANCHOR].len + 1;
    out->url = malloc(n);

    if (out->url != NULL) {
        memcpy(out->url, url->data, url->len);
        out->url[url->len] = '\0';

        if (url->len > 0 && rec.f[SA_KB_C_ANCHOR].len > 0
            && memchr(url->data, '#', url->len) == NULL)
        {
            out->url[url->len] = '#';
            memcpy(out->url + url->len + 1, rec.f[SA_KB_C_ANCHOR].data,
                   rec.f[SA_KB_C_ANCHOR].len);
            out->url[n - 1] = '\0';
        }
    }

    sa_kb_end(kb);

    if (out->doc_id == NULL || out->title == NULL || out->section == NULL
        || out->anchor == NULL || out->text == NULL
        || out->product_area == NULL || out->doc_type == NULL
        || out->version == NULL || out->tier == NULL || out->region == NULL
        || out->url == NULL || out->prefix == NULL)
    {
        sa_kb_chunk_free(out);
        sa_kb_error(kb, "out of memory");
        return SA_ERROR;
    }

    return SA_OK;
}


void
sa_kb_chunk_free(sa_kb_chunk_t *c)
{
    if (c == NULL) {
        return;
    }

    free(c->doc_id);
    free(c->title);
    free(c->section);
    free(c->anchor);
    free(c->url);
    free(c->text);
    free(c->product_area);
    free(c->doc_type);
    free(c->version);
    free(c->tier);
    free(c->region);
    free(c->prefix);

    memset(c, 0, sizeof(sa_kb_chunk_t));
}


int
sa_kb_chunk_next(sa_kb_t *kb, uint32_t from, uint32_t *chunk)
{
    int            rc;
    MDB_val        key, val;
    MDB_cursor    *cur;
    unsigned char  k[4];

    kb->err[0] = '\0';

    if (from >= kb->next_chunk) {
        return SA_NOT_FOUND;
    }

    if (sa_kb_begin(kb) != SA_OK) {
        return SA_ERROR;
    }

    rc = mdb_cursor_open(kb->txn, kb->chunks, &cur);
    if (rc != MDB_SUCCESS) {
        sa_kb_end(kb);
        sa_kb_error(kb, "mdb_cursor_open() failed: %s", mdb_strerror(rc));
        return SA_ERROR;
    }

    sa_kb_put_be32(k, from);
    key.mv_data = k;
    key.mv_size = 4;

    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);

    if (rc == MDB_SUCCESS) {
        if (key.mv_size != 4) {
            rc = MDB_CORRUPTED;

        } else {
            *chunk = sa_kb_get_be32(key.mv_data);
        }
    }

    mdb_cursor_close(cur);
    sa_kb_end(kb);

    if (rc == MDB_NOTFOUND) {
        return SA_NOT_FOUND;
    }

    if (rc != MDB_SUCCESS) {
        sa_kb_error(kb, "mdb_cursor_get(chunks) failed: %s",
                    mdb_strerror(rc));
        return SA_ERROR;
    }

    return SA_OK;
}


static char *
sa_kb_strdup(const sa_kb_str_t *s)
{
    char  *p;

    p = malloc(s->len + 1);
    if (p == NULL) {
        return NULL;
    }

    memcpy(p, s->data, s->len);
    p[s->len] = '\0';

    return p;
}


/* ------------------------------------------------------------------ */
/* dense vectors                                                       */


int
sa_kb_search_dense(sa_kb_t *kb, const float *query, size_t dim,
    const sa_kb_filter_t *filter, unsigned flags, size_t k,
    sa_kb_hit_t *hits, size_t *n)
{
    int                   rc, nf, unset;
    float                 scale;
    double                sum, inv;
    size_t                i, nh;
    size_t                j, nb;
    uint32_t              id, want[SA_KB_NFILTERS];
    MDB_val               key, val;
    MDB_cursor           *cur;
    sa_kb_hit_t           hit;
    sa_kb_vref_t          batch[SA_KB_SCAN_BATCH];
    const unsigned char  *codes[SA_KB_NFILTERS];

    *n = 0;
    kb->err[0] = '\0';

    if (kb->dim == 0) {
        sa_kb_error(kb, "the knowledge base has no vectors "
                    "(kb-build --embed adds them)");
        return SA_INVALID;
    }

    if (dim != kb->dim) {
        sa_kb_error(kb, "a query vector of %zu dimensions, the knowledge "
                    "base's have %u", dim, kb->dim);
        return SA_INVALID;
    }

    sum = 0;

    for (i = 0; i < dim; i++) {
        if (!isfinite(query[i])) {
            sa_kb_error(kb, "a query vector with a value that is not "
                        "finite");
            return SA_INVALID;
        }

        sum += (double) query[i] * query[i];
    }

    /* a zero vector is similar to nothing */

    if (k == 0 || sum == 0) {
        return SA_OK;
    }

    inv = 1 / sqrt(sum);

    for (i = 0; i < dim; i++) {
        kb->qvec[i] = (float) (query[i] * inv);
    }

    if (kb->int8) {
        sa_kb_i8_layout(kb->qvec, dim);
    }

    unset = (flags & SA_KB_MATCH_UNSET) != 0;

    if (sa_kb_filter_prepare(kb, filter, flags, want, codes, &nf) != SA_OK)
    {
        return SA_OK;
    }

    if (sa_kb_begin(kb) != SA_OK) {
        return SA_ERROR;
    }

    rc = mdb_cursor_open(kb->txn, kb->vectors, &cur);
    if (rc != MDB_SUCCESS) {
        sa_kb_end(kb);
        sa_kb_error(kb, "mdb_cursor_open() failed: %s", mdb_strerror(rc));
        return SA_ERROR;
    }

    /*
     * The scan, in batches: the cursor walks a batch, then the dot
     * products read the values where they lie, in the mapped file, each
     * fetched a little ahead (the pages of a file are scattered in
     * memory: the hardware prefetcher stops at each one).
     */

    nh = 0;
    rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);

    while (rc == MDB_SUCCESS) {
        nb = 0;

        while (rc == MDB_SUCCESS && nb < SA_KB_SCAN_BATCH) {
            if (key.mv_size != 4 || val.mv_size != kb->vsize
                || (id = sa_kb_get_be32(key.mv_data)) >= kb->next_chunk)
            {
                rc = MDB_CORRUPTED;
                break;
            }

            if (nf == 0 || sa_kb_filter_pass(id, want, codes, nf, unset)) {
                batch[nb].chunk = id;
                batch[nb++].p = val.mv_data;
            }

            rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
        }

        for (j = 0; j < nb && j < SA_KB_AHEAD; j++) {
            sa_kb_prefetch(batch[j].p, kb->vsize);
        }

        for (j = 0; j < nb; j++) {
            if (j + SA_KB_AHEAD < nb) {
                sa_kb_prefetch(batch[j + SA_KB_AHEAD].p, kb->vsize);
            }

            hit.chunk = batch[j].chunk;

            if (kb->int8) {
                scale = sa_kb_get_f32(batch[j].p);
                hit.score = scale * sa_kb_dot_i8(kb->qvec, batch[j].p + 4,
                                                 dim);

            } else {
                hit.score = sa_kb_dot_f32(kb->qvec, batch[j].p, dim);
            }

            sa_kb_heap_push(hits, &nh, k, &hit);
        }
    }

    mdb_cursor_close(cur);
    sa_kb_end(kb);

    if (rc != MDB_NOTFOUND) {
        sa_kb_error(kb, "reading the vectors failed: %s", mdb_strerror(rc));
        return SA_ERROR;
    }

    sa_kb_heap_sort(hits, nh);

    *n = nh;

    return SA_OK;
}


int
sa_kb_vector(sa_kb_t *kb, uint32_t chunk, float *out, size_t dim)
{
    int                   rc;
    float                 scale;
    size_t                i;
    MDB_val               key, val;
    unsigned char         k[4];
    const unsigned char  *p;

    kb->err[0] = '\0';

    if (kb->dim == 0 || dim != kb->dim) {
        sa_kb_error(kb, "no vectors of %zu dimensions", dim);
        return SA_INVALID;
    }

    if (sa_kb_begin(kb) != SA_OK) {
        return SA_ERROR;
    }

    sa_kb_put_be32(k, chunk);
    key.mv_data = k;
    key.mv_size = 4;

    rc = mdb_get(kb->txn, kb->vectors, &key, &val);

    if (rc == MDB_SUCCESS && val.mv_size != kb->vsize) {
        rc = MDB_CORRUPTED;
    }

    if (rc != MDB_SUCCESS) {
        sa_kb_end(kb);

        if (rc == MDB_NOTFOUND) {
            sa_kb_error(kb, "no vector for chunk %u", chunk);
            return SA_NOT_FOUND;
        }

        sa_kb_error(kb, "mdb_get(vectors) failed: %s", mdb_strerror(rc));
        return SA_ERROR;
    }

    p = val.mv_data;

    if (kb->int8) {
        scale = sa_kb_get_f32(p);

        for (i = 0; i < dim; i++) {
            out[i] = scale * (float) (signed char) p[4 + i];
        }

    } else {
        for (i = 0; i < dim; i++) {
            out[i] = sa_kb_get_f32(p + 4 * i);
        }
    }

    sa_kb_end(kb);

    return SA_OK;
}


/*
 * The dot products of the scan.  Plain C loops over floats are not
 * vectorised without -ffast-math (the sums would be reordered), so on
 * GCC and clang they use vector extensions: four lanes, two accumulators,
 * unaligned loads through memcpy().  The stored floats are little-endian,
 * so a big-endian host reads them one by one.
 */

static void
sa_kb_prefetch(const unsigned char *p, size_t size)
{
#if defined(__GNUC__)
    size_t  o;

    for (o = 0; o < size; o += 64) {
        __builtin_prefetch(p + o);
    }
#endif
}


#if defined(__GNUC__) && defined(__BYTE_ORDER__)                           \
    && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__

typedef float  sa_kb_v4f_t __attribute__((vector_size(16)));


static float
sa_kb_dot_f32(const float *q, const unsigned char *v, size_t dim)
{
    float        s, x;
    size_t       i;
    sa_kb_v4f_t  a0, a1, x0, x1, y0, y1;

    a0 = (sa_kb_v4f_t) { 0, 0, 0, 0 };
    a1 = a0;

    for (i = 0; i + 8 <= dim; i += 8) {
        memcpy(&x0, v + 4 * i, 16);
        memcpy(&x1, v + 4 * i + 16, 16);
        memcpy(&y0, q + i, 16);
        memcpy(&y1, q + i + 4, 16);
        a0 += x0 * y0;
        a1 += x1 * y1;
    }

    a0 += a1;
    s = a0[0] + a0[1] + a0[2] + a0[3];

    for ( /* void */ ; i < dim; i++) {
        memcpy(&x, v + 4 * i, 4);
        s += q[i] * x;
    }

    return s;
}


/*
 * int8: 16 components at a time, widened with shifts within 32-bit lanes
 * (plain SSE2 has no sign-extending load): lane k of a block gives
 * components 4k, 4k + 1, 4k + 2, 4k + 3, so the query is laid out to
 * match (sa_kb_i8_layout()).
 */

typedef int32_t   sa_kb_v4i_t __attribute__((vector_size(16)));
typedef uint32_t  sa_kb_v4u_t __attribute__((vector_size(16)));

#if defined(__has_builtin)
#if __has_builtin(__builtin_convertvector)
#define sa_kb_v4i_to_f(x)  __builtin_convertvector(x, sa_kb_v4f_t)
#endif
#endif

#ifndef sa_kb_v4i_to_f
#define sa_kb_v4i_to_f(x)  ((sa_kb_v4f_t) { x[0], x[1], x[2], x[3] })
#endif


static void
sa_kb_i8_layout(float *q, size_t dim)
{
    int     r, k;
    float   t[16];
    size_t  b;

    for (b = 0; b + 16 <= dim; b += 16) {
        for (r = 0; r < 4; r++) {
            for (k = 0; k < 4; k++) {
                t[4 * r + k] = q[b + 4 * k + r];
            }
        }

        memcpy(q + b, t, sizeof(t));
    }
}


static float
sa_kb_dot_i8(const float *q, const unsigned char *v, size_t dim)
{
    float        s;
    size_t       i;
    sa_kb_v4f_t  a0, a1, y;
    sa_kb_v4i_t  w, x;
    sa_kb_v4u_t  u;

    a0 = (sa_kb_v4f_t) { 0, 0, 0, 0 };
    a1 = a0;

    for (i = 0; i + 16 <= dim; i += 16) {
        memcpy(&u, v + i, 16);
        w = (sa_kb_v4i_t) u;

        x = (sa_kb_v4i_t) (u << 24) >> 24;
        memcpy(&y, q + i, 16);
        a0 += sa_kb_v4i_to_f(x) * y;

        x = (sa_kb_v4i_t) (u << 16) >> 24;
        memcpy(&y, q + i + 4, 16);
        a1 += sa_kb_v4i_to_f(x) * y;

        x = (sa_kb_v4i_t) (u << 8) >> 24;
        memcpy(&y, q + i + 8, 16);
        a0 += sa_kb_v4i_to_f(x) * y;

        x = w >> 24;
        memcpy(&y, q + i + 12, 16);
        a1 += sa_kb_v4i_to_f(x) * y;
    }

    a0 += a1;
    s = a0[0] + a0[1] + a0[2] + a0[3];

    for ( /* void */ ; i < dim; i++) {
        s += q[i] * (float) (signed char) v[i];
    }

    return s;
}

#else

static void
sa_kb_i8_layout(float *q, size_t dim)
{
    /* the plain loops read the query as it is */
}


static float
sa_kb_dot_f32(const float *q, const unsigned char *v, size_t dim)
{
    float   s;
    size_t  i;

    s = 0;

    for (i = 0; i < dim; i++) {
        s += q[i] * sa_kb_get_f32(v + 4 * i);
    }

    return s;
}


static float
sa_kb_dot_i8(const float *q, const unsigned char *v, size_t dim)
{
    float   s;
    size_t  i;

    s = 0;

    for (i = 0; i < dim; i++) {
        s += q[i] * (float) (signed char) v[i];
    }

    return s;
}

#endif


/* ------------------------------------------------------------------ */
/* records                                                             */


static int
sa_kb_chunk_decode(const MDB_val *val, sa_kb_chunk_rec_t *r)
{
    int                   i;
    sa_kb_rd_t            rd;
    const unsigned char  *p;

    p = val->mv_data;

    if (val->mv_size < SA_KB_CHUNK_FIXED || p[0] != SA_KB_REC_VERSION) {
        return SA_ERROR;
    }

    r->tokens = sa_kb_get_u32(p + 4);
    r->updated_ms = (int64_t) sa_kb_get_u64(p + 8);
    r->hash = p + 16;

    rd.p = p + SA_KB_CHUNK_FIXED;
    rd.last = p + val->mv_size;
    rd.bad = 0;

    for (i = 0; i < SA_KB_C_NFIELDS; i++) {
        sa_kb_rd_str(&rd, &r->f[i]);
    }

    return rd.bad ? SA_ERROR : SA_OK;
}


static int
sa_kb_doc_decode(const MDB_val *val, sa_kb_doc_rec_t *r)
{
    int                   i;
    const unsigned char  *p;

    p = val->mv_data;

    if (val->mv_size < SA_KB_DOC_FIXED || p[0] != SA_KB_REC_VERSION) {
        return SA_ERROR;
    }

    r->kind = p[1];
    r->entries = sa_kb_get_u32(p + 4);
    r->updated_ms = (int64_t) sa_kb_get_u64(p + 8);
    r->hash = p + 16;

    r->rest.p = p + SA_KB_DOC_FIXED;
    r->rest.last = p + val->mv_size;
    r->rest.bad = 0;

    for (i = 0; i < SA_KB_D_NFIELDS; i++) {
        sa_kb_rd_str(&r->rest, &r->f[i]);
    }

    return r->rest.bad ? SA_ERROR : SA_OK;
}


static uint64_t
sa_kb_rd_varint(sa_kb_rd_t *rd)
{
    int       shift;
    uint64_t  v;

    v = 0;

    for (shift = 0; shift < 64; shift += 7) {
        if (rd->p >= rd->last) {
            rd->bad = 1;
            return 0;
        }

        v |= (uint64_t) (*rd->p & 0x7f) << shift;

        if ((*rd->p++ & 0x80) == 0) {
            return v;
        }
    }

    rd->bad = 1;
    return 0;
}


static void
sa_kb_rd_str(sa_kb_rd_t *rd, sa_kb_str_t *s)
{
    uint64_t  len;

    len = sa_kb_rd_varint(rd);

    if (rd->bad || len > (uint64_t) (rd->last - rd->p)) {
        rd->bad = 1;
        s->data = "";
        s->len = 0;
        return;
    }

    s->data = (const char *) rd->p;
    s->len = (size_t) len;
    rd->p += len;
}


static size_t
sa_kb_put_varint(unsigned char *p, uint64_t v)
{
    size_t  n;

    n = 0;

    while (v >= 0x80) {
        p[n++] = (unsigned char) (v | 0x80);
        v >>= 7;
    }

    p[n++] = (unsigned char) v;

    return n;
}


static void
sa_kb_put_u16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char) v;
    p[1] = (unsigned char) (v >> 8);
}


static void
sa_kb_put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char) v;
    p[1] = (unsigned char) (v >> 8);
    p[2] = (unsigned char) (v >> 16);
    p[3] = (unsigned char) (v >> 24);
}


static void
sa_kb_put_u64(unsigned char *p, uint64_t v)
{
    sa_kb_put_u32(p, (uint32_t) v);
    sa_kb_put_u32(p + 4, (uint32_t) (v >> 32));
}


static uint16_t
sa_kb_get_u16(const unsigned char *p)
{
    return (uint16_t) (p[0] | (p[1] << 8));
}


static uint32_t
sa_kb_get_u32(const unsigned char *p)
{
    return (uint32_t) p[0] | ((uint32_t) p[1] << 8)
           | ((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24);
}


static uint64_t
sa_kb_get_u64(const unsigned char *p)
{
    return sa_kb_get_u32(p) | ((uint64_t) sa_kb_get_u32(p + 4) << 32);
}


static void
sa_kb_put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char) (v >> 24);
    p[1] = (unsigned char) (v >> 16);
    p[2] = (unsigned char) (v >> 8);
    p[3] = (unsigned char) v;
}


static uint32_t
sa_kb_get_be32(const unsigned char *p)
{
    return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16)
           | ((uint32_t) p[2] << 8) | (uint32_t) p[3];
}


/* IEEE 754 binary32, little-endian */

static void
sa_kb_put_f32(unsigned char *p, float v)
{
    uint32_t  u;

    memcpy(&u, &v, 4);
    sa_kb_put_u32(p, u);
}


static float
sa_kb_get_f32(const unsigned char *p)
{
    float     v;
    uint32_t  u;

    u = sa_kb_get_u32(p);
    memcpy(&v, &u, 4);

    return v;
}


/* ------------------------------------------------------------------ */
/* MurmurHash3 x64 128 (Austin Appleby, public domain)                 */


static uint64_t
sa_kb_rotl(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}


static uint64_t
sa_kb_fmix(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;

    return k;
}


void
sa_kb_hash(const void *data, size_t len, uint32_t seed,
    unsigned char out[SA_KB_HASH_SIZE])
{
    size_t                i, nblocks;
    uint64_t              h1, h2, k1, k2;
    const unsigned char  *p, *tail;

    const uint64_t  c1 = 0x87c37b91114253d5ULL;
    const uint64_t  c2 = 0x4cf5ad432745937fULL;

    p = data;
    nblocks = len / 16;
    h1 = seed;
    h2 = seed;

    for (i = 0; i < nblocks; i++) {
        k1 = sa_kb_get_u64(p + i * 16);
        k2 = sa_kb_get_u64(p + i * 16 + 8);

        k1 *= c1;
        k1 = sa_kb_rotl(k1, 31);
        k1 *= c2;
        h1 ^= k1;

        h1 = sa_kb_rotl(h1, 27);
        h1 += h2;
        h1 = h1 * 5 + 0x52dce729;

        k2 *= c2;
        k2 = sa_kb_rotl(k2, 33);
        k2 *= c1;
        h2 ^= k2;

        h2 = sa_kb_rotl(h2, 31);
        h2 += h1;
        h2 = h2 * 5 + 0x38495ab5;
    }

    tail = p + nblocks * 16;
    k1 = 0;
    k2 = 0;

    switch (len & 15) {
    case 15: k2 ^= (uint64_t) tail[14] << 48;  /* fall through */
    case 14: k2 ^= (uint64_t) tail[13] << 40;  /* fall through */
    case 13: k2 ^= (uint64_t) tail[12] << 32;  /* fall through */
    case 12: k2 ^= (uint64_t) tail[11] << 24;  /* fall through */
    case 11: k2 ^= (uint64_t) tail[10] << 16;  /* fall through */
    case 10: k2 ^= (uint64_t) tail[9] << 8;    /* fall through */
    case 9:
        k2 ^= (uint64_t) tail[8];
        k2 *= c2;
        k2 = sa_kb_rotl(k2, 33);
        k2 *= c1;
        h2 ^= k2;
        /* fall through */
    case 8: k1 ^= (uint64_t) tail[7] << 56;    /* fall through */
    case 7: k1 ^= (uint64_t) tail[6] << 48;    /* fall through */
    case 6: k1 ^= (uint64_t) tail[5] << 40;    /* fall through */
    case 5: k1 ^= (uint64_t) tail[4] << 32;    /* fall through */
    case 4: k1 ^= (uint64_t) tail[3] << 24;    /* fall through */
    case 3: k1 ^= (uint64_t) tail[2] << 16;    /* fall through */
    case 2: k1 ^= (uint64_t) tail[1] << 8;     /* fall through */
    case 1:
        k1 ^= (uint64_t) tail[0];
        k1 *= c1;
        k1 = sa_kb_rotl(k1, 31);
        k1 *= c2;
        h1 ^= k1;
    }

    h1 ^= (uint64_t) len;
    h2 ^= (uint64_t) len;

    h1 += h2;
    h2 += h1;

    h1 = sa_kb_fmix(h1);
    h2 = sa_kb_fmix(h2);

    h1 += h2;
    h2 += h1;

    sa_kb_put_u64(out, h1);
    sa_kb_put_u64(out + 8, h2);
}


/* ------------------------------------------------------------------ */
/* growable buffers and string hash tables (the writer's)              */


static int
sa_kb_buf_reserve(sa_kb_buf_t *b, size_t more)
{
    size_t          cap;
    unsigned char  *p;

    if (b->cap - b->len >= more) {
        return SA_OK;
    }

    cap = b->cap ? b->cap : 16;

    while (cap - b->len < more) {
        cap *= 2;
    }

    p = realloc(b->data, cap);
    if (p == NULL) {
        return SA_ERROR;
    }

    b->data = p;
    b->cap = cap;

    return SA_OK;
}


static int
sa_kb_buf_add(sa_kb_buf_t *b, const void *data, size_t len)
{
    if (sa_kb_buf_reserve(b, len) != SA_OK) {
        return SA_ERROR;
    }

    if (len > 0) {
        memcpy(b->data + b->len, data, len);
        b->len += len;
    }

    return SA_OK;
}


static int
sa_kb_buf_varint(sa_kb_buf_t *b, uint64_t v)
{
    if (sa_kb_buf_reserve(b, 10) != SA_OK) {
        return SA_ERROR;
    }

    b->len += sa_kb_put_varint(b->data + b->len, v);

    return SA_OK;
}


static int
sa_kb_buf_str(sa_kb_buf_t *b, const char *s, size_t len)
{
    if (sa_kb_buf_varint(b, len) != SA_OK) {
        return SA_ERROR;
    }

    return sa_kb_buf_add(b, s, len);
}


static void
sa_kb_buf_free(sa_kb_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}


/* FNV-1a */

static uint32_t
sa_kb_key_hash(const char *key, size_t len)
{
    size_t    i;
    uint32_t  h;

    h = 2166136261u;

    for (i = 0; i < len; i++) {
        h ^= (unsigned char) key[i];
        h *= 16777619u;
    }

    return h;
}


static sa_kb_key_t *
sa_kb_map_find(sa_kb_map_t *m, const char *key, size_t len, uint32_t hash)
{
    size_t        i;
    sa_kb_key_t  *e;

    if (m->slots == NULL) {
        return NULL;
    }

    for (i = hash & m->mask; (e = m->slots[i]) != NULL;
         i = (i + 1) & m->mask)
    {
        if (e->hash == hash && e->len == len
            && memcmp(e->key, key, len) == 0)
        {
            return e;
        }
    }

    return NULL;
}


/* adds an entry that is not in the table yet */

static int
sa_kb_map_add(sa_kb_map_t *m, sa_kb_key_t *e)
{
    size_t         i, j, size;
    sa_kb_key_t  **slots;

    if (m->slots == NULL || (m->n + 1) * 2 > m->mask + 1) {
        size = m->slots ? (m->mask + 1) * 2 : 1024;

        slots = calloc(size, sizeof(sa_kb_key_t *));
        if (slots == NULL) {
            return SA_ERROR;
        }

        if (m->slots != NULL) {
            for (i = 0; i <= m->mask; i++) {
                if (m->slots[i] == NULL) {
                    continue;
                }

                for (j = m->slots[i]->hash & (size - 1); slots[j] != NULL;
                     j = (j + 1) & (size - 1))
                {
                    /* void */
                }

                slots[j] = m->slots[i];
            }

            free(m->slots);
        }

        m->slots = slots;
        m->mask = size - 1;
    }

    for (i = e->hash & m->mask; m->slots[i] != NULL; i = (i + 1) & m->mask)
    {
        /* void */
    }

    m->slots[i] = e;
    m->n++;

    return SA_OK;
}


/* frees the entries too (a term's buffer: the caller) */

static void
sa_kb_map_free(sa_kb_map_t *m)
{
    size_t  i;

    if (m->slots != NULL) {
        for (i = 0; i <= m->mask; i++) {
            free(m->slots[i]);
        }
    }

    free(m->slots);
    m->slots = NULL;
    m->n = 0;
    m->mask = 0;
}


/* an entry of size bytes with the key stored after it */

static void *
sa_kb_entry_new(size_t size, const char *key, size_t len, uint32_t hash)
{
    sa_kb_key_t  *e;

    e = calloc(1, size + len + 1);
    if (e == NULL) {
        return NULL;
    }

    e->hash = hash;
    e->len = (uint32_t) len;
    e->key = (char *) e + size;
    memcpy(e->key, key, len);

    return e;
}


/* LMDB's default key order: memcmp(), then the shorter first */

static int
sa_kb_key_cmp(const void *one, const void *two)
{
    int                 c;
    size_t              n;
    const sa_kb_key_t  *a, *b;

    a = *(const sa_kb_key_t * const *) one;
    b = *(const sa_kb_key_t * const *) two;

    n = a->len < b->len ? a->len : b->len;

    c = memcmp(a->key, b->key, n);
    if (c != 0) {
        return c;
    }

    return (a->len > b->len) - (a->len < b->len);
}


/* ------------------------------------------------------------------ */
/* writing                                                             */


int
sa_kb_writer_open(sa_kb_writer_t **wp, const char *path,
    const sa_kb_writer_conf_t *conf, char *err, size_t errlen)
{
    int              rc;
    sa_kb_writer_t  *w;

    *wp = NULL;

    if (errlen > 0) {
        err[0] = '\0';
    }

    w = calloc(1, sizeof(sa_kb_writer_t));
    if (w == NULL) {
        snprintf(err, errlen, "kb \"%s\": out of memory", path);
        return SA_ERROR;
    }

    w->lock_fd = -1;

    rc = sa_kb_writer_start(w, path, conf, err, errlen);
    if (rc != SA_OK) {
        if (w->err[0] != '\0') {
            snprintf(err, errlen, "%s", w->err);
        }

        /* PATH.tmp is left to whoever holds it when we are SA_BUSY */

        if (rc != SA_BUSY && w->tmp != NULL && w->lock_fd != -1) {
            unlink(w->tmp);
        }

        sa_kb_writer_free(w);
        return rc;
    }

    *wp = w;

    return SA_OK;
}


static int
sa_kb_writer_start(sa_kb_writer_t *w, const char *path,
    const sa_kb_writer_conf_t *conf, char *err, size_t errlen)
{
    int          rc;
    size_t       len;
    const char  *language;

    language = conf->language ? conf->language : "english";

    w->analyzer = sa_analyzer_new(language);
    if (w->analyzer == NULL) {
        snprintf(err, errlen, "unknown language \"%s\" (english, simple)",
                 language);
        return SA_INVALID;
    }

    snprintf(w->language, sizeof(w->language), "%s", language);
    w->max_chars = conf->max_chars;
    w->overlap = conf->overlap;

    if (conf->embed_model != NULL && conf->embed_model[0] != '\0') {
        len = strlen(conf->embed_model);

        if (conf->embed_dim > SA_KB_MAX_DIM || len > 200
            || sa_kb_check_str(conf->embed_model, len) != SA_OK)
        {
            snprintf(err, errlen, "bad embedding settings (a model name of "
                     "at most 200 bytes, at most %d dimensions)",
                     SA_KB_MAX_DIM);
            return SA_INVALID;
        }

        w->embed_model = strdup(conf->embed_model);
        if (w->embed_model == NULL) {
            snprintf(err, errlen, "kb \"%s\": out of memory", path);
            return SA_ERROR;
        }

        w->dim = conf->embed_dim;
        w->int8 = conf->embed_int8 ? 1 : 0;
    }

    len = strlen(path);

    w->path = strdup(path);
    w->tmp = malloc(len + sizeof(".tmp"));

    if (w->path == NULL || w->tmp == NULL) {
        snprintf(err, errlen, "kb \"%s\": out of memory", path);
        return SA_ERROR;
    }

    memcpy(w->tmp, path, len);
    memcpy(w->tmp + len, ".tmp", sizeof(".tmp"));

    rc = sa_kb_writer_lock(w);
    if (rc != SA_OK) {
        return rc;
    }

    rc = sa_kb_writer_examine(w, conf);
    if (rc != SA_OK) {
        return rc;
    }

    if (sa_kb_writer_env(w) != SA_OK || sa_kb_writer_txn(w) != SA_OK) {
        return SA_ERROR;
    }

    if (w->incremental) {
        w->deleted = calloc(w->first_new / 8 + 1, 1);
        if (w->deleted == NULL) {
            sa_kb_werror(w, "kb \"%s\": out of memory", w->path);
            return SA_ERROR;
        }

    } else {
        /* nothing to prune in an empty file */
        w->pruned = 1;
    }

    return SA_OK;
}


/*
 * PATH.tmp, created and locked: an flock held until the writer is done
 * keeps a second kb-build of the same PATH out.  The file locked must
 * still be PATH.tmp once locked: the build that held it may have renamed
 * it onto PATH meanwhile.
 */

static int
sa_kb_writer_lock(sa_kb_writer_t *w)
{
    int          fd, tries;
    struct stat  fst, pst;

    for (tries = 0; tries < 8; tries++) {
        fd = open(w->tmp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd == -1) {
            sa_kb_werror(w, "kb \"%s\": open() failed: %s", w->tmp,
                         strerror(errno));
            return SA_ERROR;
        }

        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            if (errno == EWOULDBLOCK) {
                sa_kb_werror(w, "kb \"%s\": another kb-build is writing it",
                             w->tmp);
                close(fd);
                return SA_BUSY;
            }

            sa_kb_werror(w, "kb \"%s\": flock() failed: %s", w->tmp,
                         strerror(errno));
            close(fd);
            return SA_ERROR;
        }

        if (fstat(fd, &fst) == 0 && stat(w->tmp, &pst) == 0
            && fst.st_dev == pst.st_dev && fst.st_ino == pst.st_ino)
        {
            if (ftruncate(fd, 0) != 0) {
                sa_kb_werror(w, "kb \"%s\": ftruncate() failed: %s", w->tmp,
                             strerror(errno));
                close(fd);
                return SA_ERROR;
            }

            w->lock_fd = fd;
            return SA_OK;
        }

        close(fd);
    }

    sa_kb_werror(w, "kb \"%s\": keeps changing under us", w->tmp);

    return SA_ERROR;
}


/*
 * Decides between an incremental build (PATH is a KB of our format and
 * language: copied, compacted, into PATH.tmp) and a full one.
 */

static int
sa_kb_writer_examine(sa_kb_writer_t *w, const sa_kb_writer_conf_t *conf)
{
    int          rc;
    char         language[16];
    MDB_env     *env;
    MDB_txn     *txn;
    MDB_dbi      meta;
    uint32_t     dim;
    uint64_t     format, next, chunks;
    struct stat  st;
    const char  *call;

    if (conf->rebuild) {
        w->stats.reason = "--rebuild";
        return SA_OK;
    }

    if (stat(w->path, &st) != 0) {
        if (errno == ENOENT) {
            w->stats.reason = "new";
            return SA_OK;
        }

        sa_kb_werror(w, "kb \"%s\": %s", w->path, strerror(errno));
        return SA_ERROR;
    }

    env = NULL;
    txn = NULL;

    call = "mdb_env_create";
    rc = mdb_env_create(&env);
    if (rc != MDB_SUCCESS) {
        env = NULL;
        goto failed;
    }

    call = "mdb_env_set_maxdbs";
    rc = mdb_env_set_maxdbs(env, SA_KB_MAX_DBS);
    if (rc != MDB_SUCCESS) {
        goto failed;
    }

    /* the file, not the map size it records (see sa_kb_load()) */

    if (st.st_size > 0) {
        call = "mdb_env_set_mapsize";
        rc = mdb_env_set_mapsize(env, (size_t) st.st_size);
        if (rc != MDB_SUCCESS) {
            goto failed;
        }
    }

    call = "mdb_env_open";
    rc = mdb_env_open(env, w->path,
                      MDB_RDONLY | MDB_NOLOCK | MDB_NOSUBDIR | MDB_NOTLS,
                      0644);
    if (rc != MDB_SUCCESS) {
        goto failed;
    }

    call = "mdb_txn_begin";
    rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (rc != MDB_SUCCESS) {
        txn = NULL;
        goto failed;
    }

    call = "mdb_dbi_open";
    rc = mdb_dbi_open(txn, "meta", 0, &meta);
    if (rc != MDB_SUCCESS) {
        goto failed;
    }

    if (sa_kb_meta_u64(txn, meta, "format", &format) != SA_OK
        || format != SA_KB_FORMAT)
    {
        w->stats.reason = "format";
        goto full;
    }

    if (sa_kb_meta_get(txn, meta, "language", language, sizeof(language))
        != SA_OK
        || strcmp(language, w->language) != 0)
    {
        w->stats.reason = "language";
        goto full;
    }

    if (sa_kb_writer_embed_examine(w, txn, meta, &dim) != SA_OK) {
        /* vectors of another model, encoding or dimension: all anew */
        w->stats.reason = "embeddings";
        goto full;
    }

    if (sa_kb_meta_u64(txn, meta, "next_chunk", &next) != SA_OK
        || sa_kb_meta_u64(txn, meta, "chunks", &chunks) != SA_OK
        || next >= UINT32_MAX / 2)
    {
        w->stats.reason = "format";
        goto full;
    }

    if (SA_KB_SPARSE(next, chunks)) {
        w->stats.reason = "sparse ids";
        goto full;
    }

    mdb_txn_abort(txn);
    txn = NULL;

    call = "mdb_env_copyfd2";
    rc = mdb_env_copyfd2(env, w->lock_fd, MDB_CP_COMPACT);
    if (rc != MDB_SUCCESS) {
        goto failed;
    }

    mdb_env_close(env);

    w->incremental = 1;
    w->first_new = (uint32_t) next;
    w->next_chunk = (uint32_t) next;

    /* PATH's vectors stay: new ones must be like them */

    if (w->embed_model != NULL && w->dim == 0) {
        w->dim = dim;
    }

    return SA_OK;

full:

    mdb_txn_abort(txn);
    mdb_env_close(env);

    return SA_OK;

failed:

    sa_kb_werror(w, "kb \"%s\": exists but cannot be read as a knowledge "
                 "base (%s(): %s); remove it or use --rebuild", w->path,
                 call, mdb_strerror(rc));

    if (txn != NULL) {
        mdb_txn_abort(txn);
    }

    if (env != NULL) {
        mdb_env_close(env);
    }

    return SA_ERROR;
}


/*
 * SA_OK when PATH's embedding settings are the writer's, with *dim
 * PATH's dimension (the writer may not know its own yet); SA_INVALID
 * otherwise.
 */

static int
sa_kb_writer_embed_examine(sa_kb_writer_t *w, MDB_txn *txn, MDB_dbi meta,
    uint32_t *dim)
{
    char         model[256], encoding[16];
    uint64_t     d;
    const char  *want;

    *dim = 0;

    if (sa_kb_meta_get(txn, meta, "embed_model", model, sizeof(model))
        != SA_OK)
    {
        model[0] = '\0';
    }

    if (sa_kb_meta_u64(txn, meta, "embed_dim", &d) != SA_OK) {
        d = 0;
    }

    if (sa_kb_meta_get(txn, meta, "embed_encoding", encoding,
                       sizeof(encoding))
        != SA_OK)
    {
        encoding[0] = '\0';
    }

    if (w->embed_model == NULL) {
        return (model[0] == '\0' && d == 0) ? SA_OK : SA_INVALID;
    }

    want = w->int8 ? "int8" : "float32";

    if (strcmp(model, w->embed_model) != 0 || d > SA_KB_MAX_DIM
        || (w->dim != 0 && d != w->dim)
        || (d != 0 && strcmp(encoding, want) != 0))
    {
        return SA_INVALID;
    }

    *dim = (uint32_t) d;

    return SA_OK;
}


static int
sa_kb_writer_env(sa_kb_writer_t *w)
{
    int          rc;
    size_t       map;
    const char  *call;

    /* a smaller map where address space is limited (ulimit -v, valgrind) */

    map = sizeof(size_t) > 4 ? SA_KB_WRITE_MAP : (size_t) 1 << 30;

    for ( ;; ) {
        call = "mdb_env_create";
        rc = mdb_env_create(&w->env);
        if (rc != MDB_SUCCESS) {
            w->env = NULL;
            goto failed;
        }

        call = "mdb_env_set_maxdbs";
        rc = mdb_env_set_maxdbs(w->env, SA_KB_MAX_DBS);
        if (rc != MDB_SUCCESS) {
            goto failed;
        }

        call = "mdb_env_set_mapsize";
        rc = mdb_env_set_mapsize(w->env, map);
        if (rc != MDB_SUCCESS) {
            goto failed;
        }

        /* nobody reads PATH.tmp: no locks; one sync at the end */

        call = "mdb_env_open";
        rc = mdb_env_open(w->env, w->tmp,
                          MDB_NOSUBDIR | MDB_NOLOCK | MDB_NOSYNC | MDB_NOTLS,
                          0644);
        if (rc == MDB_SUCCESS) {
            return SA_OK;
        }

        if ((rc != EINVAL && rc != ENOMEM) || map <= ((size_t) 256 << 20)) {
            goto failed;
        }

        mdb_env_close(w->env);
        w->env = NULL;
        map /= 4;
    }

failed:

    sa_kb_werror(w, "kb \"%s\": %s() failed: %s", w->tmp, call,
                 mdb_strerror(rc));

    return SA_ERROR;
}


/* a write txn, with the databases opened (created) in it */

static int
sa_kb_writer_txn(sa_kb_writer_t *w)
{
    int  rc;

    rc = mdb_txn_begin(w->env, NULL, 0, &w->txn);
    if (rc != MDB_SUCCESS) {
        w->txn = NULL;
        return sa_kb_writer_lmdb(w, "mdb_txn_begin", rc);
    }

    if ((rc = mdb_dbi_open(w->txn, "meta", MDB_CREATE, &w->meta))
        != MDB_SUCCESS
        || (rc = mdb_dbi_open(w->txn, "docs", MDB_CREATE, &w->docs))
           != MDB_SUCCESS
        || (rc = mdb_dbi_open(w->txn, "chunks", MDB_CREATE, &w->chunks))
           != MDB_SUCCESS
        || (rc = mdb_dbi_open(w->txn, "postings", MDB_CREATE, &w->postings))
           != MDB_SUCCESS
        || (rc = mdb_dbi_open(w->txn, "hashes", MDB_CREATE, &w->hashes))
           != MDB_SUCCESS
        || (rc = mdb_dbi_open(w->txn, "columns", MDB_CREATE, &w->columns))
           != MDB_SUCCESS
        || (rc = mdb_dbi_open(w->txn, "vectors", MDB_CREATE, &w->vectors))
           != MDB_SUCCESS)
    {
        return sa_kb_writer_lmdb(w, "mdb_dbi_open", rc);
    }

    return SA_OK;
}


static int
sa_kb_writer_commit(sa_kb_writer_t *w)
{
    int  rc;

    rc = mdb_txn_commit(w->txn);
    w->txn = NULL;
    w->ops = 0;

    if (rc != MDB_SUCCESS) {
        return sa_kb_writer_lmdb(w, "mdb_txn_commit", rc);
    }

    return SA_OK;
}


/* commits now and then, so a big build does not keep every page dirty */

static int
sa_kb_writer_batch(sa_kb_writer_t *w)
{
    if (++w->ops < SA_KB_BATCH) {
        return SA_OK;
    }

    if (sa_kb_writer_commit(w) != SA_OK) {
        return SA_ERROR;
    }

    return sa_kb_writer_txn(w);
}


static int
sa_kb_writer_lmdb(sa_kb_writer_t *w, const char *call, int rc)
{
    sa_kb_werror(w, "kb \"%s\": %s() failed: %s", w->tmp, call,
                 mdb_strerror(rc));

    return SA_ERROR;
}


static void
sa_kb_werror(sa_kb_writer_t *w, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    vsnprintf(w->err, sizeof(w->err), fmt, ap);
    va_end(ap);
}


const char *
sa_kb_writer_error(sa_kb_writer_t *w)
{
    return w->err;
}


void
sa_kb_writer_abort(sa_kb_writer_t *w)
{
    if (w == NULL) {
        return;
    }

    if (w->tmp != NULL && w->lock_fd != -1) {
        unlink(w->tmp);
    }

    sa_kb_writer_free(w);
}


static void
sa_kb_writer_free(sa_kb_writer_t *w)
{
    size_t         i;
    sa_kb_term_t  *t;

    if (w->txn != NULL) {
        mdb_txn_abort(w->txn);
    }

    if (w->env != NULL) {
        mdb_env_close(w->env);
    }

    if (w->lock_fd != -1) {
        close(w->lock_fd);
    }

    if (w->terms.slots != NULL) {
        for (i = 0; i <= w->terms.mask; i++) {
            t = (sa_kb_term_t *) w->terms.slots[i];
            if (t != NULL) {
                sa_kb_buf_free(&t->buf);
            }
        }
    }

    sa_kb_map_free(&w->terms);
    sa_kb_map_free(&w->seen);
    sa_analyzer_free(w->analyzer);
    sa_kb_buf_free(&w->rec);
    sa_kb_buf_free(&w->rec2);
    sa_kb_buf_free(&w->val);
    free(w->deleted);
    free(w->embed_model);
    free(w->vbuf);
    free(w->path);
    free(w->tmp);
    free(w);
}


int
sa_kb_writer_check(sa_kb_writer_t *w, const char *id,
    const unsigned char hash[SA_KB_HASH_SIZE])
{
    int              rc, state;
    size_t           len;
    MDB_val          key, val;
    uint32_t         h;
    sa_kb_seen_t    *s;
    sa_kb_doc_rec_t  doc;

    if (w->txn == NULL) {
        /* a write failed before: w->err tells which */
        return SA_ERROR;
    }

    len = strlen(id);

    if (sa_kb_check_str(id, len) != SA_OK || len == 0 || len > SA_KB_ID_MAX)
    {
        sa_kb_werror(w, "bad document id \"%.*s\"",
                     (int) (len < 64 ? len : 64), id);
        return SA_INVALID;
    }

    h = sa_kb_key_hash(id, len);

    if (sa_kb_map_find(&w->seen, id, len, h) != NULL) {
        sa_kb_werror(w, "document id \"%s\" given twice", id);
        return SA_BUSY;
    }

    state = SA_KB_SEEN_NEW;

    if (w->incremental) {
        key.mv_data = (void *) id;
        key.mv_size = len;

        rc = mdb_get(w->txn, w->docs, &key, &val);

        if (rc == MDB_SUCCESS) {
            if (sa_kb_doc_decode(&val, &doc) == SA_OK
                && memcmp(doc.hash, hash, SA_KB_HASH_SIZE) == 0)
            {
                state = SA_KB_SEEN_UNCHANGED;

            } else {
                state = SA_KB_SEEN_CHANGED;
            }

        } else if (rc != MDB_NOTFOUND) {
            return sa_kb_writer_lmdb(w, "mdb_get", rc);
        }
    }

    s = sa_kb_entry_new(sizeof(sa_kb_seen_t), id, len, h);
    if (s == NULL || sa_kb_map_add(&w->seen, &s->k) != SA_OK) {
        free(s);
        sa_kb_werror(w, "out of memory");
        return SA_ERROR;
    }

    s->state = state;

    if (state == SA_KB_SEEN_UNCHANGED) {
        w->stats.unchanged++;
        return SA_OK;
    }

    return SA_NOT_FOUND;
}


/*
 * Removes the documents that changed or are gone from the input.  A chunk
 * of a removed document whose text other, unchanged documents share is
 * handed to the first of them instead of being removed.
 */

int
sa_kb_writer_prune(sa_kb_writer_t *w)
{
    int              rc;
    size_t           i, n;
    MDB_val          key, val;
    MDB_cursor      *cur;
    sa_kb_buf_t      ids;
    sa_kb_seen_t    *s;
    sa_kb_rd_t       rd;
    sa_kb_str_t      id;

    if (w->txn == NULL) {
        return SA_ERROR;
    }

    if (w->pruned) {
        return SA_OK;
    }

    w->pruned = 1;

    /* the ids to remove first: the removal changes the docs database */

    memset(&ids, 0, sizeof(sa_kb_buf_t));
    n = 0;

    rc = mdb_cursor_open(w->txn, w->docs, &cur);
    if (rc != MDB_SUCCESS) {
        return sa_kb_writer_lmdb(w, "mdb_cursor_open", rc);
    }

    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
         rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT))
    {
        s = (sa_kb_seen_t *) sa_kb_map_find(&w->seen, key.mv_data,
                                            key.mv_size,
                                            sa_kb_key_hash(key.mv_data,
                                                           key.mv_size));

        if (s != NULL && s->state == SA_KB_SEEN_UNCHANGED) {
            continue;
        }

        if (s == NULL) {
            w->stats.removed++;
        }

        if (sa_kb_buf_str(&ids, key.mv_data, key.mv_size) != SA_OK) {
            mdb_cursor_close(cur);
            sa_kb_buf_free(&ids);
            sa_kb_werror(w, "out of memory");
            return SA_ERROR;
        }

        n++;
    }

    mdb_cursor_close(cur);

    if (rc != MDB_NOTFOUND) {
        sa_kb_buf_free(&ids);
        return sa_kb_writer_lmdb(w, "mdb_cursor_get", rc);
    }

    rd.p = ids.data;
    rd.last = ids.data + ids.len;
    rd.bad = 0;

    for (i = 0; i < n; i++) {
        sa_kb_rd_str(&rd, &id);

        if (sa_kb_writer_remove_doc(w, id.data, id.len) != SA_OK
            || sa_kb_writer_batch(w) != SA_OK)
        {
            sa_kb_buf_free(&ids);
            return SA_ERROR;
        }
    }

    sa_kb_buf_free(&ids);

    return SA_OK;
}


static int
sa_kb_writer_remove_doc(sa_kb_writer_t *w, const char *id, size_t len)
{
    int                rc;
    MDB_val            key, val;
    uint32_t           e, chunk;
    unsigned char      k[4];
    sa_kb_str_t        section, anchor;
    sa_kb_buf_t        doc;
    sa_kb_doc_rec_t    drec;
    sa_kb_chunk_rec_t  crec;

    /* copies: the pages under an MDB_val change as we write */

    memset(&doc, 0, sizeof(sa_kb_buf_t));

    key.mv_data = (void *) id;
    key.mv_size = len;

    rc = mdb_get(w->txn, w->docs, &key, &val);
    if (rc != MDB_SUCCESS) {
        return sa_kb_writer_lmdb(w, "mdb_get", rc);
    }

    if (sa_kb_buf_add(&doc, val.mv_data, val.mv_size) != SA_OK) {
        sa_kb_werror(w, "out of memory");
        return SA_ERROR;
    }

    val.mv_data = doc.data;

    if (sa_kb_doc_decode(&val, &drec) != SA_OK) {
        sa_kb_werror(w, "kb \"%s\": bad record of document \"%.*s\"",
                     w->path, (int) len, id);
        goto failed;
    }

    for (e = 0; e < drec.entries; e++) {
        chunk = (uint32_t) sa_kb_rd_varint(&drec.rest);
        sa_kb_rd_str(&drec.rest, &section);
        sa_kb_rd_str(&drec.rest, &anchor);

        if (drec.rest.bad) {
            sa_kb_werror(w, "kb \"%s\": bad record of document \"%.*s\"",
                         w->path, (int) len, id);
            goto failed;
        }

        sa_kb_put_be32(k, chunk);
        key.mv_data = k;
        key.mv_size = 4;

        rc = mdb_get(w->txn, w->chunks, &key, &val);
        if (rc == MDB_NOTFOUND) {
            /* listed twice in this document, and gone already */
            continue;
        }

        if (rc != MDB_SUCCESS) {
            sa_kb_writer_lmdb(w, "mdb_get", rc);
            goto failed;
        }

        w->rec.len = 0;

        if (sa_kb_buf_add(&w->rec, val.mv_data, val.mv_size) != SA_OK) {
            sa_kb_werror(w, "out of memory");
            goto failed;
        }

        val.mv_data = w->rec.data;

        if (sa_kb_chunk_decode(&val, &crec) != SA_OK) {
            sa_kb_werror(w, "kb \"%s\": bad record of chunk %u", w->path,
                         chunk);
            goto failed;
        }

        if (crec.f[SA_KB_C_DOC].len == len
            && memcmp(crec.f[SA_KB_C_DOC].data, id, len) == 0)
        {
            rc = sa_kb_writer_drop_owned(w, chunk, &crec);

        } else {
            rc = sa_kb_writer_unref(w, crec.hash, id, len);
        }

        if (rc != SA_OK) {
            goto failed;
        }
    }

    key.mv_data = (void *) id;
    key.mv_size = len;

    rc = mdb_del(w->txn, w->docs, &key, NULL);
    if (rc != MDB_SUCCESS) {
        sa_kb_writer_lmdb(w, "mdb_del", rc);
        goto failed;
    }

    sa_kb_buf_free(&doc);

    return SA_OK;

failed:

    sa_kb_buf_free(&doc);

    return SA_ERROR;
}


/* a chunk of a document being removed: relinked or removed */

static int
sa_kb_writer_drop_owned(sa_kb_writer_t *w, uint32_t chunk,
    const sa_kb_chunk_rec_t *rec)
{
    int            rc, own;
    size_t         i, n;
    MDB_val        key, val;
    uint32_t       owner;
    unsigned char  k[4];
    sa_kb_str_t   *refs;
    sa_kb_seen_t  *s;

    key.mv_data = (void *) rec->hash;
    key.mv_size = SA_KB_HASH_SIZE;

    rc = mdb_get(w->txn, w->hashes, &key, &val);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
        return sa_kb_writer_lmdb(w, "mdb_get", rc);
    }

    own = 0;

    if (rc == MDB_SUCCESS) {
        if (sa_kb_writer_parse_refs(&val, &owner, &refs, &n) != SA_OK) {
            sa_kb_werror(w, "out of memory");
            return SA_ERROR;
        }

        /* a text shared with an unchanged document stays, now its */

        own = (owner == chunk);

        for (i = 0; own && i < n; i++) {
            s = (sa_kb_seen_t *) sa_kb_map_find(&w->seen, refs[i].data,
                                     refs[i].len,
                                     sa_kb_key_hash(refs[i].data,
                                                    refs[i].len));

            if (s != NULL && s->state == SA_KB_SEEN_UNCHANGED) {
                rc = sa_kb_writer_relink(w, chunk, rec, &refs[i]);
                free(refs);
                return rc;
            }
        }

        free(refs);
    }

    /* removed: its postings go when its terms are merged at the end */

    if (own) {
        key.mv_data = (void *) rec->hash;
        key.mv_size = SA_KB_HASH_SIZE;

        rc = mdb_del(w->txn, w->hashes, &key, NULL);
        if (rc != MDB_SUCCESS) {
            return sa_kb_writer_lmdb(w, "mdb_del", rc);
        }
    }

    sa_kb_put_be32(k, chunk);
    key.mv_data = k;
    key.mv_size = 4;

    rc = mdb_del(w->txn, w->chunks, &key, NULL);
    if (rc != MDB_SUCCESS) {
        return sa_kb_writer_lmdb(w, "mdb_del", rc);
    }

    rc = mdb_del(w->txn, w->vectors, &key, NULL);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
        return sa_kb_writer_lmdb(w, "mdb_del", rc);
    }

    if (chunk < w->first_new) {
        w->deleted[chunk / 8] |= (unsigned char) (1 << (chunk % 8));
    }

    w->stats.chunks_removed++;

    rc = sa_analyze(w->analyzer, rec->f[SA_KB_C_PREFIX].data,
                    rec->f[SA_KB_C_PREFIX].len, sa_kb_dirty_term, w);
    if (rc == SA_OK) {
        rc = sa_analyze(w->analyzer, rec->f[SA_KB_C_TEXT].data,
                        rec->f[SA_KB_C_TEXT].len, sa_kb_dirty_term, w);
    }

    if (rc != SA_OK) {
        sa_kb_werror(w, "out of memory");
        return SA_ERROR;
    }

    return SA_OK;
}


/*
 * Hands a chunk over to another document holding the same text: the
 * record takes that document's id, metadata, section and anchor; the
 * indexed terms (prefix and text) stay, so the postings do too.
 */

static int
sa_kb_writer_relink(sa_kb_writer_t *w, uint32_t chunk,
    const sa_kb_chunk_rec_t *rec, const sa_kb_str_t *owner)
{
    int                rc;
    size_t             n, m;
    MDB_val            key, val;
    uint32_t           e, id, old;
    unsigned char      k[4];
    sa_kb_str_t        f[SA_KB_C_NFIELDS], section, anchor, *refs;
    sa_kb_doc_rec_t    drec;

    /* the new owner's record: a copy, we write below */

    key.mv_data = (void *) owner->data;
    key.mv_size = owner->len;

    rc = mdb_get(w->txn, w->docs, &key, &val);
    if (rc != MDB_SUCCESS) {
        return sa_kb_writer_lmdb(w, "mdb_get", rc);
    }

    w->rec2.len = 0;

    if (sa_kb_buf_add(&w->rec2, val.mv_data, val.mv_size) != SA_OK) {
        sa_kb_werror(w, "out of memory");
        return SA_ERROR;
    }

    val.mv_data = w->rec2.data;

    if (sa_kb_doc_decode(&val, &drec) != SA_OK) {
        sa_kb_werror(w, "kb \"%s\": bad record of document \"%.*s\"",
                     w->path, (int) owner->len, owner->data);
        return SA_ERROR;
    }

    memcpy(f, rec->f, sizeof(f));

    for (e = 0; e < drec.entries; e++) {
        id = (uint32_t) sa_kb_rd_varint(&drec.rest);
        sa_kb_rd_str(&drec.rest, &section);
        sa_kb_rd_str(&drec.rest, &anchor);

        if (drec.rest.bad) {
            break;
        }

        if (id == chunk) {
            f[SA_KB_C_SECTION] = section;
            f[SA_KB_C_ANCHOR] = anchor;
            break;
        }
    }

    f[SA_KB_C_DOC] = *owner;
    f[SA_KB_C_PRODUCT_AREA] = drec.f[SA_KB_D_PRODUCT_AREA];
    f[SA_KB_C_DOC_TYPE] = drec.f[SA_KB_D_DOC_TYPE];
    f[SA_KB_C_VERSION] = drec.f[SA_KB_D_VERSION];
    f[SA_KB_C_TIER] = drec.f[SA_KB_D_TIER];
    f[SA_KB_C_REGION] = drec.f[SA_KB_D_REGION];

    /* rec lives in w->rec: build the new record in w->val */

    w->val.len = 0;

    if (sa_kb_writer_chunk_rec(&w->val, rec->tokens, drec.updated_ms,
                               rec->hash, f)
        != SA_OK)
    {
        sa_kb_werror(w, "out of memory");
        return SA_ERROR;
    }

    sa_kb_put_be32(k, chunk);
    key.mv_data = k;
    key.mv_size = 4;
    val.mv_data = w->val.data;
    val.mv_size = w->val.len;

    rc = mdb_put(w->txn, w->chunks, &key, &val, 0);
    if (rc != MDB_SUCCESS) {
        return sa_kb_writer_lmdb(w, "mdb_put", rc);
    }

    /* the new owner leaves the list of those that share the text */

    rc = sa_kb_writer_refs_without(w, rec->hash, owner->data, owner->len,
                                   &old, &refs, &n, &m);
    if (rc != SA_OK) {
        return rc == SA_NOT_FOUND
               ? sa_kb_writer_lmdb(w, "mdb_get", MDB_NOTFOUND) : rc;
    }

    rc = sa_kb_writer_hash_value(w, rec->hash, chunk, refs, m);

    free(refs);

    if (rc != SA_OK) {
        return SA_ERROR;
    }

    w->stats.relinked++;

    return SA_OK;
}


/* a document being removed no longer shares the text of hash */

static int
sa_kb_writer_unref(sa_kb_writer_t *w, const unsigned char *hash,
    const char *id, size_t len)
{
    int           rc;
    size_t        n, m;
    uint32_t      owner;
    sa_kb_str_t  *refs;

    rc = sa_kb_writer_refs_without(w, hash, id, len, &owner, &refs, &n, &m);
    if (rc != SA_OK) {
        return rc == SA_NOT_FOUND ? SA_OK : rc;
    }

    rc = SA_OK;

    if (m != n) {
        rc = sa_kb_writer_hash_value(w, hash, owner, refs, m);
    }

    free(refs);

    return rc;
}


/*
 * The record of hash, parsed: its owner chunk and the documents sharing the
 * text, without document id.  *n is the count before, *m after; the caller
 * frees *refs.  SA_NOT_FOUND when the hash has no record.
 */

static int
sa_kb_writer_refs_without(sa_kb_writer_t *w, const unsigned char *hash,
    const char *id, size_t len, uint32_t *owner, sa_kb_str_t **refs,
    size_t *n, size_t *m)
{
    int       rc;
    size_t    i;
    MDB_val   key, val;

    key.mv_data = (void *) hash;
    key.mv_size = SA_KB_HASH_SIZE;

    rc = mdb_get(w->txn, w->hashes, &key, &val);
    if (rc == MDB_NOTFOUND) {
        return SA_NOT_FOUND;
    }

    if (rc != MDB_SUCCESS) {
        return sa_kb_writer_lmdb(w, "mdb_get", rc);
    }

    /* a copy: the caller writes the hash record again */

    w->rec2.len = 0;

    if (sa_kb_buf_add(&w->rec2, val.mv_data, val.mv_size) != SA_OK) {
        sa_kb_werror(w, "out of memory");
        return SA_ERROR;
    }

    val.mv_data = w->rec2.data;

    if (sa_kb_writer_parse_refs(&val, owner, refs, n) != SA_OK) {
        sa_kb_werror(w, "out of memory");
        return SA_ERROR;
    }

    for (i = 0, *m = 0; i < *n; i++) {
        if ((*refs)[i].len == len && memcmp((*refs)[i].data, id, len) == 0) {
            continue;
        }

        (*refs)[(*m)++] = (*refs)[i];
    }

    return SA_OK;
}


/* the "hashes" value of hash: the chunk holding the text, and the other
   documents sharing it */

static int
sa_kb_writer_hash_value(sa_kb_writer_t *w, const unsigned char *hash,
    uint32_t owner, const sa_kb_str_t *refs, size_t n)
{
    int            rc;
    size_t         i;
    MDB_val        key, val;
    unsigned char  k[4];

    w->val.len = 0;
    sa_kb_put_be32(k, owner);

    if (sa_kb_buf_add(&w->val, k, 4) != SA_OK) {
        goto nomem;
    }

    for (i = 0; i < n; i++) {
        if (sa_kb_buf_str(&w->val, refs[i].data, refs[i].len) != SA_OK) {
            goto nomem;
        }
    }

    key.mv_data = (void *) hash;
    key.mv_size = SA_KB_HASH_SIZE;
    val.mv_data = w->val.data;
    val.mv_size = w->val.len;

    rc = mdb_put(w->txn, w->hashes, &key, &val, 0);
    if (rc != MDB_SUCCESS) {
        return sa_kb_writer_lmdb(w, "mdb_put", rc);
    }

    return SA_OK;

nomem:

    sa_kb_werror(w, "out of memory");

    return SA_ERROR;
}


static int
sa_kb_writer_parse_refs(const MDB_val *val, uint32_t *owner,
    sa_kb_str_t **refs, size_t *n)
{
    size_t       cap;
    sa_kb_rd_t   rd;
    sa_kb_str_t  s, *r, *p;

    *refs = NULL;
    *n = 0;
    *owner = SA_KB_NO_CODE;

    if (val->mv_size < 4) {
        return SA_OK;
    }

    *owner = sa_kb_get_be32(val->mv_data);

    rd.p = (const unsigned char *) val->mv_data + 4;
    rd.last = (const unsigned char *) val->mv_data + val->mv_size;
    rd.bad = 0;

    r = NULL;
    cap = 0;

    while (rd.p < rd.last) {
        sa_kb_rd_str(&rd, &s);
        if (rd.bad) {
            break;
        }

        if (*n == cap) {
            cap = cap ? cap * 2 : 4;

            p = realloc(r, cap * sizeof(sa_kb_str_t));
            if (p == NULL) {
                free(r);
                return SA_ERROR;
            }

            r = p;
        }

        r[(*n)++] = s;
    }

    *refs = r;

    return SA_OK;
}


int
sa_kb_writer_add(sa_kb_writer_t *w, const sa_kb_doc_t *doc,
    const sa_kb_wchunk_t *chunks, size_t n)
{
    int            rc;
    size_t         i, len, fl;
    MDB_val        key, val;
    uint32_t       id, count;
    const char    *f[SA_KB_D_NFIELDS];
    sa_kb_seen_t  *s;
    unsigned char  fixed[SA_KB_DOC_FIXED];
    sa_kb_buf_t    doc_rec;

    if (w->txn == NULL) {
        return SA_ERROR;
    }

    len = strlen(doc->id);

    s = (sa_kb_seen_t *) sa_kb_map_find(&w->seen, doc->id, len,
                                        sa_kb_key_hash(doc->id, len));

    if (s == NULL || s->state == SA_KB_SEEN_UNCHANGED
        || s->state == SA_KB_SEEN_ADDED || !w->pruned)
    {
        sa_kb_werror(w, "document \"%s\" was not checked as new or changed "
                     "(or not pruned yet)", doc->id);
        return SA_INVALID;
    }

    f[SA_KB_D_TITLE] = doc->title;
    f[SA_KB_D_URL] = doc->url;
    f[SA_KB_D_SOURCE] = doc->source;
    f[SA_KB_D_PRODUCT_AREA] = doc->product_area;
    f[SA_KB_D_DOC_TYPE] = doc->doc_type;
    f[SA_KB_D_VERSION] = doc->version;
    f[SA_KB_D_TIER] = doc->tier;
    f[SA_KB_D_REGION] = doc->region;

    for (i = 0; i < SA_KB_D_NFIELDS; i++) {
        if (f[i] == NULL) {
            f[i] = "";
        }

        fl = strlen(f[i]);

        /* the filter columns keep values of up to 64k bytes */

        if (sa_kb_check_str(f[i], fl) != SA_OK || fl > 0xffff) {
            sa_kb_werror(w, "document \"%s\": a field is not valid UTF-8 "
                         "or too long", doc->id);
            return SA_INVALID;
        }
    }

    for (i = 0; i < n; i++) {
        if (sa_kb_check_str(chunks[i].text, chunks[i].text_len) != SA_OK
            || (chunks[i].prefix_len > 0
                && sa_kb_check_str(chunks[i].prefix, chunks[i].prefix_len)
                   != SA_OK)
            || (chunks[i].section != NULL
                && sa_kb_check_str(chunks[i].section,
                                   strlen(chunks[i].section)) != SA_OK)
            || (chunks[i].anchor != NULL
                && sa_kb_check_str(chunks[i].anchor,
                                   strlen(chunks[i].anchor)) != SA_OK))
        {
            sa_kb_werror(w, "document \"%s\": chunk %zu is not valid UTF-8",
                         doc->id, i);
            return SA_INVALID;
        }

        if (chunks[i].vector != NULL
            && sa_kb_writer_check_vector(w, doc, i, chunks[i].vector)
               != SA_OK)
        {
            return SA_INVALID;
        }
    }

    /* the chunks first: the record lists their ids */

    memset(&doc_rec, 0, sizeof(sa_kb_buf_t));
    memset(fixed, 0, sizeof(fixed));

    if (sa_kb_buf_add(&doc_rec, fixed, sizeof(fixed)) != SA_OK) {
        goto nomem;
    }

    for (i = 0; i < SA_KB_D_NFIELDS; i++) {
        if (sa_kb_buf_str(&doc_rec, f[i], strlen(f[i])) != SA_OK) {
            goto nomem;
        }
    }

    count = 0;
    id = 0;

    for (i = 0; i < n; i++) {
        rc = sa_kb_writer_add_chunk(w, doc, &chunks[i], &id);

        if (rc == SA_NOT_FOUND) {
            /* only white space */
            continue;
        }

        if (rc != SA_OK) {
            goto failed;
        }

        if (sa_kb_buf_varint(&doc_rec, id) != SA_OK
            || sa_kb_buf_str(&doc_rec, chunks[i].section,
                             chunks[i].section ? strlen(chunks[i].section)
                                               : 0)
               != SA_OK
            || sa_kb_buf_str(&doc_rec, chunks[i].anchor,
                             chunks[i].anchor ? strlen(chunks[i].anchor)
                                              : 0)
               != SA_OK)
        {
            goto nomem;
        }

        count++;

        if (sa_kb_writer_batch(w) != SA_OK) {
            goto failed;
        }
    }

    doc_rec.data[0] = SA_KB_REC_VERSION;
    doc_rec.data[1] = (unsigned char) doc->kind;
    sa_kb_put_u32(doc_rec.data + 4, count);
    sa_kb_put_u64(doc_rec.data + 8, (uint64_t) doc->updated_ms);
    memcpy(doc_rec.data + 16, doc->hash, SA_KB_HASH_SIZE);

    key.mv_data = (void *) doc->id;
    key.mv_size = len;
    val.mv_data = doc_rec.data;
    val.mv_size = doc_rec.len;

    rc = mdb_put(w->txn, w->docs, &key, &val, 0);
    if (rc != MDB_SUCCESS) {
        sa_kb_writer_lmdb(w, "mdb_put", rc);
        goto failed;
    }

    sa_kb_buf_free(&doc_rec);

    if (s->state == SA_KB_SEEN_CHANGED) {
        w->stats.changed++;

    } else {
        w->stats.added++;
    }

    s->state = SA_KB_SEEN_ADDED;

    return sa_kb_writer_batch(w);

nomem:

    sa_kb_werror(w, "out of memory");

failed:

    sa_kb_buf_free(&doc_rec);

    return SA_ERROR;
}


/* SA_OK with the chunk's id (new, or the one holding the same text),
   SA_NOT_FOUND for a chunk of only white space */

static int
sa_kb_writer_add_chunk(sa_kb_writer_t *w, const sa_kb_doc_t *doc,
    const sa_kb_wchunk_t *c, uint32_t *id)
{
    int            rc, taken;
    size_t         i;
    MDB_val        key, val;
    sa_kb_str_t    f[SA_KB_C_NFIELDS];
    unsigned char  hash[SA_KB_HASH_SIZE], k[4];

    for (i = 0; i < c->text_len; i++) {
        if (c->text[i] != ' ' && c->text[i] != '\t' && c->text[i] != '\n'
            && c->text[i] != '\r')
        {
            break;
        }
    }

    if (i == c->text_len) {
        return SA_NOT_FOUND;
    }

    sa_kb_hash(c->text, c->text_len, 0, hash);

    rc = sa_kb_writer_dedupe(w, doc, c, hash, id, &taken);
    if (rc != SA_NOT_FOUND) {
        return rc;
    }

    if (w->next_chunk >= UINT32_MAX / 2) {
        sa_kb_werror(w, "too many chunks");
        return SA_ERROR;
    }

    *id = w->next_chunk++;

    /* index: prefix, then text, as one stream of terms */

    w->cur_chunk = *id;
    w->cur_len = 0;

    rc = sa_analyze(w->analyzer, c->prefix, c->prefix_len, sa_kb_index_term,
                    w);
    if (rc == SA_OK) {
        rc = sa_analyze(w->analyzer, c->text, c->text_len, sa_kb_index_term,
                        w);
    }

    if (rc != SA_OK) {
        sa_kb_werror(w, "out of memory");
        return SA_ERROR;
    }

    f[SA_KB_C_DOC].data = doc->id;
    f[SA_KB_C_SECTION].data = c->section ? c->section : "";
    f[SA_KB_C_ANCHOR].data = c->anchor ? c->anchor : "";
    f[SA_KB_C_PRODUCT_AREA].data = doc->product_area ? doc->product_area
                                                     : "";
    f[SA_KB_C_DOC_TYPE].data = doc->doc_type ? doc->doc_type : "";
    f[SA_KB_C_VERSION].data = doc->version ? doc->version : "";
    f[SA_KB_C_TIER].data = doc->tier ? doc->tier : "";
    f[SA_KB_C_REGION].data = doc->region ? doc->region : "";

    for (i = 0; i < SA_KB_C_PREFIX; i++) {
        f[i].len = strlen(f[i].data);
    }

    f[SA_KB_C_PREFIX].data = c->prefix_len ? c->prefix : "";
    f[SA_KB_C_PREFIX].len = c->prefix_len;
    f[SA_KB_C_TEXT].data = c->text;
    f[SA_KB_C_TEXT].len = c->text_len;

    w->rec.len = 0;

    if (sa_kb_writer_chunk_rec(&w->rec, w->cur_len, doc->updated_ms, hash, f)
        != SA_OK)
    {
        sa_kb_werror(w, "out of memory");
        return SA_ERROR;
    }

    sa_kb_put_be32(k, *id);
    key.mv_data = k;
    key.mv_size = 4;
    val.mv_data = w->rec.data;
    val.mv_size = w->rec.len;

    /* new ids are the highest: appended */

    rc = mdb_put(w->txn, w->chunks, &key, &val, MDB_APPEND);
    if (rc != MDB_SUCCESS) {
        return sa_kb_writer_lmdb(w, "mdb_put", rc);
    }

    if (c->vector != NULL
        && sa_kb_writer_put_vector(w, *id, c->vector) != SA_OK)
    {
        return SA_ERROR;
    }

    w->stats.chunks_added++;

    if (taken) {
        /* the hash is another text's (a collision): this one is not
           shared */
        return SA_OK;
    }

    return sa_kb_writer_hash_value(w, hash, *id, NULL, 0);
}


/*
 * SA_OK with *id when a chunk holds the same text already (this document
 * is added to those that share it), SA_NOT_FOUND otherwise, with *taken
 * set when a different text has the same hash.
 */

static int
sa_kb_writer_dedupe(sa_kb_writer_t *w, const sa_kb_doc_t *doc,
    const sa_kb_wchunk_t *c, const unsigned char *hash, uint32_t *id,
    int *taken)
{
    int                rc;
    size_t             n, len;
    MDB_val            key, val, cval;
    uint32_t           owner;
    unsigned char      k[4];
    sa_kb_str_t       *refs, *all, self;
    sa_kb_chunk_rec_t  rec;

    *taken = 0;

    key.mv_data = (void *) hash;
    key.mv_size = SA_KB_HASH_SIZE;

    rc = mdb_get(w->txn, w->hashes, &key, &val);
    if (rc == MDB_NOTFOUND) {
        return SA_NOT_FOUND;
    }

    if (rc != MDB_SUCCESS) {
        return sa_kb_writer_lmdb(w, "mdb_get", rc);
    }

    w->rec2.len = 0;

    if (sa_kb_buf_add(&w->rec2, val.mv_data, val.mv_size) != SA_OK) {
        goto nomem;
    }

    val.mv_data = w->rec2.data;

    if (sa_kb_writer_parse_refs(&val, &owner, &refs, &n) != SA_OK) {
        goto nomem;
    }

    /* the text itself must be equal, not only its hash */

    sa_kb_put_be32(k, owner);
    key.mv_data = k;
    key.mv_size = 4;

    rc = mdb_get(w->txn, w->chunks, &key, &cval);

    if (rc != MDB_SUCCESS || sa_kb_chunk_decode(&cval, &rec) != SA_OK
        || rec.f[SA_KB_C_TEXT].len != c->text_len
        || memcmp(rec.f[SA_KB_C_TEXT].data, c->text, c->text_len) != 0)
    {
        free(refs);

        if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
            return sa_kb_writer_lmdb(w, "mdb_get", rc);
        }

        *taken = 1;
        return SA_NOT_FOUND;
    }

    *id = owner;
    w->stats.duplicates++;

    len = strlen(doc->id);

    /* the owner's own repeats need no entry */

    if (rec.f[SA_KB_C_DOC].len == len
        && memcmp(rec.f[SA_KB_C_DOC].data, doc->id, len) == 0)
    {
        free(refs);
        return SA_OK;
    }

    self.data = doc->id;
    self.len = len;

    all = realloc(refs, (n + 1) * sizeof(sa_kb_str_t));
    if (all == NULL) {
        free(refs);
        goto nomem;
    }

    refs = all;

    refs[n++] = self;

    rc = sa_kb_writer_hash_value(w, hash, owner, refs, n);

    free(refs);

    return rc;

nomem:

    sa_kb_werror(w, "out of memory");

    return SA_ERROR;
}


static int
sa_kb_writer_chunk_rec(sa_kb_buf_t *b, uint32_t tokens, int64_t updated_ms,
    const unsigned char *hash, const sa_kb_str_t *f)
{
    int            i;
    unsigned char  fixed[SA_KB_CHUNK_FIXED];

    memset(fixed, 0, sizeof(fixed));
    fixed[0] = SA_KB_REC_VERSION;
    sa_kb_put_u32(fixed + 4, tokens);
    sa_kb_put_u64(fixed + 8, (uint64_t) updated_ms);
    memcpy(fixed + 16, hash, SA_KB_HASH_SIZE);

    if (sa_kb_buf_add(b, fixed, sizeof(fixed)) != SA_OK) {
        return SA_ERROR;
    }

    for (i = 0; i < SA_KB_C_NFIELDS; i++) {
        if (sa_kb_buf_str(b, f[i].data, f[i].len) != SA_OK) {
            return SA_ERROR;
        }
    }

    return SA_OK;
}


int
sa_kb_writer_embed_dim(sa_kb_writer_t *w, uint32_t dim)
{
    if (w->embed_model == NULL) {
        sa_kb_werror(w, "vectors without an embedding model");
        return SA_INVALID;
    }

    if (dim == 0 || dim > SA_KB_MAX_DIM) {
        sa_kb_werror(w, "vectors of %u dimensions (1..%d)", dim,
                     SA_KB_MAX_DIM);
        return SA_INVALID;
    }

    if (w->dim == 0) {
        w->dim = dim;
        return SA_OK;
    }

    if (w->dim != dim) {
        sa_kb_werror(w, "vectors of %u dimensions, but the knowledge base "
                     "\"%s\" has vectors of %u of model \"%s\": ask for %u "
                     "or rebuild it (--rebuild)", dim, w->path, w->dim,
                     w->embed_model, w->dim);
        return SA_INVALID;
    }

    return SA_OK;
}


static int
sa_kb_writer_check_vector(sa_kb_writer_t *w, const sa_kb_doc_t *doc,
    size_t i, const float *v)
{
    uint32_t  j;

    if (w->embed_model == NULL || w->dim == 0) {
        sa_kb_werror(w, "document \"%s\": chunk %zu has a vector, but the "
                     "writer has no embedding model or dimension", doc->id,
                     i);
        return SA_INVALID;
    }

    for (j = 0; j < w->dim; j++) {
        if (!isfinite(v[j])) {
            sa_kb_werror(w, "document \"%s\": chunk %zu has a vector with "
                         "a value that is not finite", doc->id, i);
            return SA_INVALID;
        }
    }

    return SA_OK;
}


/*
 * A chunk's vector, normalised, so that search computes cosines as dot
 * products.  int8: each component as a multiple of max |component| / 127,
 * rounded, and a scale that makes the stored vector unit length again.
 * A zero vector points nowhere: it is not stored.
 */

static int
sa_kb_writer_put_vector(sa_kb_writer_t *w, uint32_t id, const float *v)
{
    int            rc;
    double         sum, max, a, inv;
    size_t         size;
    MDB_val        key, val;
    uint32_t       i;
    signed char    q;
    unsigned char  k[4];

    if (w->vbuf == NULL) {
        w->vbuf = malloc(4 + (size_t) w->dim * 4);
        if (w->vbuf == NULL) {
            sa_kb_werror(w, "out of memory");
            return SA_ERROR;
        }
    }

    sum = 0;
    max = 0;

    for (i = 0; i < w->dim; i++) {
        a = fabs((double) v[i]);
        sum += a * a;
        max = a > max ? a : max;
    }

    if (sum == 0) {
        return SA_OK;
    }

    if (w->int8) {
        sum = 0;

        for (i = 0; i < w->dim; i++) {
            q = (signed char) lrint(v[i] / max * 127);
            w->vbuf[4 + i] = (unsigned char) q;
            sum += (double) q * q;
        }

        sa_kb_put_f32(w->vbuf, (float) (1 / sqrt(sum)));
        size = 4 + (size_t) w->dim;

    } else {
        inv = 1 / sqrt(sum);

        for (i = 0; i < w->dim; i++) {
            sa_kb_put_f32(w->vbuf + 4 * (size_t) i, (float) (v[i] * inv));
        }

        size = (size_t) w->dim * 4;
    }

    sa_kb_put_be32(k, id);
    key.mv_data = k;
    key.mv_size = 4;
    val.mv_data = w->vbuf;
    val.mv_size = size;

    /* new ids are the highest: appended */

    rc = mdb_put(w->txn, w->vectors, &key, &val, MDB_APPEND);
    if (rc != MDB_SUCCESS) {
        return sa_kb_writer_lmdb(w, "mdb_put", rc);
    }

    return SA_OK;
}


/* a term of the chunk being added: its pending entry counts it */

static int
sa_kb_index_term(void *data, const char *term, size_t len,
    uint32_t position)
{
    sa_kb_writer_t  *w = data;
    sa_kb_term_t    *t;

    t = sa_kb_writer_term(w, term, len);
    if (t == NULL) {
        return SA_ERROR;
    }

    w->cur_len++;

    if (t->cur_tf != 0 && t->cur == w->cur_chunk) {
        t->cur_tf++;
        return SA_OK;
    }

    if (t->cur_tf != 0 && sa_kb_term_encode(t, t->cur, t->cur_tf) != SA_OK)
    {
        return SA_ERROR;
    }

    t->cur = w->cur_chunk;
    t->cur_tf = 1;

    return SA_OK;
}


/* a term of a chunk being removed: its list is rewritten at the end */

static int
sa_kb_dirty_term(void *data, const char *term, size_t len,
    uint32_t position)
{
    sa_kb_writer_t  *w = data;
    sa_kb_term_t    *t;

    t = sa_kb_writer_term(w, term, len);
    if (t == NULL) {
        return SA_ERROR;
    }

    t->dirty = 1;

    return SA_OK;
}


static sa_kb_term_t *
sa_kb_writer_term(sa_kb_writer_t *w, const char *term, size_t len)
{
    uint32_t       h;
    sa_kb_term_t  *t;

    h = sa_kb_key_hash(term, len);

    t = (sa_kb_term_t *) sa_kb_map_find(&w->terms, term, len, h);
    if (t != NULL) {
        return t;
    }

    t = sa_kb_entry_new(sizeof(sa_kb_term_t), term, len, h);
    if (t == NULL) {
        return NULL;
    }

    if (sa_kb_map_add(&w->terms, &t->k) != SA_OK) {
        free(t);
        return NULL;
    }

    return t;
}


static int
sa_kb_term_encode(sa_kb_term_t *t, uint32_t id, uint32_t tf)
{
    uint64_t  delta;

    delta = t->df ? id - t->last : id;

    if (sa_kb_buf_varint(&t->buf, (delta << 1) | (tf == 1)) != SA_OK) {
        return SA_ERROR;
    }

    if (tf != 1 && sa_kb_buf_varint(&t->buf, tf) != SA_OK) {
        return SA_ERROR;
    }

    t->last = id;
    t->df++;

    return SA_OK;
}


int
sa_kb_writer_finish(sa_kb_writer_t *w, sa_kb_writer_stats_t *stats,
    char *err, size_t errlen)
{
    int  rc;

    if (errlen > 0) {
        err[0] = '\0';
    }

    rc = SA_ERROR;

    if (w->txn == NULL) {
        goto done;
    }

    if (!w->pruned) {
        sa_kb_werror(w, "sa_kb_writer_prune() was not called");
        goto done;
    }

    if (w->incremental && w->stats.added == 0 && w->stats.changed == 0
        && w->stats.removed == 0 && w->stats.chunks_removed == 0)
    {
        /* nothing changed: PATH stays, readers need not reopen it */

        if (sa_kb_writer_kept(w) != SA_OK) {
            goto done;
        }

        unlink(w->tmp);
        rc = SA_OK;
        goto done;
    }

    if (sa_kb_writer_postings(w) != SA_OK
        || sa_kb_writer_columns(w) != SA_OK
        || sa_kb_writer_meta(w) != SA_OK
        || sa_kb_writer_publish(w) != SA_OK)
    {
        goto done;
    }

    rc = SA_OK;

done:

    if (stats != NULL) {
        *stats = w->stats;
        stats->incremental = w->incremental;
    }

    if (rc != SA_OK) {
        snprintf(err, errlen, "%s", w->err);

        if (w->tmp != NULL && w->lock_fd != -1) {
            unlink(w->tmp);
        }
    }

    sa_kb_writer_free(w);

    return rc;
}


/*
 * Every term with new postings or with a removed chunk, in key order: the
 * old list without the removed chunks, then the new entries.  A full build
 * has no old lists and appends.
 */

static int
sa_kb_writer_postings(sa_kb_writer_t *w)
{
    int             rc;
    size_t          i, n;
    MDB_val         key, val;
    sa_kb_term_t   *t, **all;

    all = malloc((w->terms.n + 1) * sizeof(sa_kb_term_t *));
    if (all == NULL) {
        sa_kb_werror(w, "out of memory");
        return SA_ERROR;
    }

    n = 0;

    for (i = 0; w->terms.slots != NULL && i <= w->terms.mask; i++) {
        t = (sa_kb_term_t *) w->terms.slots[i];
        if (t == NULL) {
            continue;
        }

        if (t->cur_tf != 0) {
            if (sa_kb_term_encode(t, t->cur, t->cur_tf) != SA_OK) {
                free(all);
                sa_kb_werror(w, "out of memory");
                return SA_ERROR;
            }

            t->cur_tf = 0;
        }

        all[n++] = t;
    }

    qsort(all, n, sizeof(sa_kb_term_t *), sa_kb_key_cmp);

    for (i = 0; i < n; i++) {
        t = all[i];

        key.mv_data = t->k.key;
        key.mv_size = t->k.len;

        if (key.mv_size == 0 || key.mv_size > 511) {
            continue;
        }

        if (!w->incremental) {
            w->val.len = 0;

            if (sa_kb_buf_varint(&w->val, t->df) != SA_OK
                || sa_kb_buf_add(&w->val, t->buf.data, t->buf.len) != SA_OK)
            {
                free(all);
                sa_kb_werror(w, "out of memory");
                return SA_ERROR;
            }

            val.mv_data = w->val.data;
            val.mv_size = w->val.len;

            rc = mdb_put(w->txn, w->postings, &key, &val, MDB_APPEND);

        } else {
            rc = sa_kb_writer_merge(w, t, &val);

            if (rc == SA_ERROR) {
                free(all);
                return SA_ERROR;
            }

            if (rc == SA_NOT_FOUND) {
                rc = mdb_del(w->txn, w->postings, &key, NULL);
                if (rc == MDB_NOTFOUND) {
                    rc = MDB_SUCCESS;
                }

            } else {
                rc = mdb_put(w->txn, w->postings, &key, &val, 0);
            }
        }

        if (rc != MDB_SUCCESS) {
            free(all);
            return sa_kb_writer_lmdb(w, "mdb_put", rc);
        }

        /* the memory goes as we go */

        sa_kb_buf_free(&t->buf);

        if (sa_kb_writer_batch(w) != SA_OK) {
            free(all);
            return SA_ERROR;
        }
    }

    free(all);

    return SA_OK;
}


/* the merged list of t into w->val (val points at it); SA_NOT_FOUND when
   no entry is left */

static int
sa_kb_writer_merge(sa_kb_writer_t *w, sa_kb_term_t *t, MDB_val *val)
{
    int            rc;
    MDB_val        key, old;
    uint32_t       id, last, df;
    uint64_t       i, n, v, tf;
    sa_kb_rd_t     rd;
    sa_kb_buf_t   *b;

    b = &w->rec;
    b->len = 0;
    df = 0;
    last = 0;

    key.mv_data = t->k.key;
    key.mv_size = t->k.len;

    rc = mdb_get(w->txn, w->postings, &key, &old);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
        return sa_kb_writer_lmdb(w, "mdb_get", rc);
    }

    if (rc == MDB_SUCCESS) {
        rd.p = old.mv_data;
        rd.last = rd.p + old.mv_size;
        rd.bad = 0;

        n = sa_kb_rd_varint(&rd);
        id = 0;

        for (i = 0; i < n && !rd.bad; i++) {
            v = sa_kb_rd_varint(&rd);
            tf = (v & 1) ? 1 : sa_kb_rd_varint(&rd);
            id += (uint32_t) (v >> 1);

            if (id < w->first_new
                && (w->deleted[id / 8] & (1 << (id % 8))))
            {
                continue;
            }

            v = df ? id - last : id;

            if (sa_kb_buf_varint(b, (v << 1) | (tf == 1)) != SA_OK
                || (tf != 1 && sa_kb_buf_varint(b, tf) != SA_OK))
            {
                goto nomem;
            }

            last = id;
            df++;
        }

        if (rd.bad) {
            sa_kb_werror(w, "kb \"%s\": bad postings of \"%.*s\"", w->path,
                         (int) t->k.len, t->k.key);
            return SA_ERROR;
        }
    }

    /* the new entries: ids above every old one; only the first delta
       changes */

    if (t->df > 0) {
        rd.p = t->buf.data;
        rd.last = rd.p + t->buf.len;
        rd.bad = 0;

        v = sa_kb_rd_varint(&rd);
        tf = (v & 1) ? 1 : sa_kb_rd_varint(&rd);
        id = (uint32_t) (v >> 1);

        if (rd.bad || (df > 0 && id <= last)) {
            sa_kb_werror(w, "postings of \"%.*s\" out of order",
                         (int) t->k.len, t->k.key);
            return SA_ERROR;
        }

        v = df ? id - last : id;

        if (sa_kb_buf_varint(b, (v << 1) | (tf == 1)) != SA_OK
            || (tf != 1 && sa_kb_buf_varint(b, tf) != SA_OK)
            || sa_kb_buf_add(b, rd.p, (size_t) (rd.last - rd.p)) != SA_OK)
        {
            goto nomem;
        }

        df += t->df;
    }

    if (df == 0) {
        return SA_NOT_FOUND;
    }

    w->val.len = 0;

    if (sa_kb_buf_varint(&w->val, df) != SA_OK
        || sa_kb_buf_add(&w->val, b->data, b->len) != SA_OK)
    {
        goto nomem;
    }

    val->mv_data = w->val.data;
    val->mv_size = w->val.len;

    return SA_OK;

nomem:

    sa_kb_werror(w, "out of memory");

    return SA_ERROR;
}


/* a filter field's values while the columns are built */
typedef struct {
    sa_kb_map_t   map;          /* value -> index in order of arrival */
    sa_kb_seen_t **order;
    size_t         n;
    size_t         cap;
    uint16_t      *codes;       /* per chunk id, indexes until sorted */
} sa_kb_colbuild_t;


static int
sa_kb_col_value(sa_kb_colbuild_t *cb, const char *s, size_t len,
    uint32_t *index)
{
    uint32_t        h;
    sa_kb_seen_t   *e, **order;

    h = sa_kb_key_hash(s, len);

    e = (sa_kb_seen_t *) sa_kb_map_find(&cb->map, s, len, h);
    if (e != NULL) {
        *index = (uint32_t) e->state;
        return SA_OK;
    }

    if (cb->n == 0xffff) {
        return SA_INVALID;
    }

    e = sa_kb_entry_new(sizeof(sa_kb_seen_t), s, len, h);
    if (e == NULL) {
        return SA_ERROR;
    }

    if (sa_kb_map_add(&cb->map, &e->k) != SA_OK) {
        free(e);
        return SA_ERROR;
    }

    if (cb->n == cb->cap) {
        cb->cap = cb->cap ? cb->cap * 2 : 16;

        order = realloc(cb->order, cb->cap * sizeof(sa_kb_seen_t *));
        if (order == NULL) {
            return SA_ERROR;
        }

        cb->order = order;
    }

    e->state = (int) cb->n;
    cb->order[cb->n++] = e;
    *index = (uint32_t) e->state;

    return SA_OK;
}


/*
 * The per-chunk columns, from the chunk records as they are now: token
 * lengths and the filter codes; the counts for meta come along.
 */

static int
sa_kb_writer_columns(sa_kb_writer_t *w)
{
    int                rc, i;
    size_t             j, size;
    MDB_val            key, val;
    uint32_t           id, index, *remap, chunks;
    uint64_t           tokens;
    MDB_cursor        *cur;
    const char        *problem;
    unsigned char     *length, *p;
    sa_kb_chunk_rec_t  rec;
    sa_kb_colbuild_t   cb[SA_KB_NFILTERS];

    memset(cb, 0, sizeof(cb));
    cur = NULL;
    remap = NULL;
    problem = "out of memory";
    rc = SA_ERROR;

    length = calloc((size_t) w->next_chunk + 1, 4);
    if (length == NULL) {
        goto failed;
    }

    for (i = 0; i < SA_KB_NFILTERS; i++) {
        cb[i].codes = calloc((size_t) w->next_chunk + 1, sizeof(uint16_t));
        if (cb[i].codes == NULL
            || sa_kb_col_value(&cb[i], "", 0, &index) != SA_OK)
        {
            goto failed;
        }
    }

    chunks = 0;
    tokens = 0;

    rc = mdb_cursor_open(w->txn, w->chunks, &cur);
    if (rc != MDB_SUCCESS) {
        sa_kb_writer_lmdb(w, "mdb_cursor_open", rc);
        rc = SA_ERROR;
        problem = NULL;
        goto failed;
    }

    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
         rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT))
    {
        if (key.mv_size != 4
            || (id = sa_kb_get_be32(key.mv_data)) >= w->next_chunk
            || sa_kb_chunk_decode(&val, &rec) != SA_OK)
        {
            problem = "a bad chunk record";
            rc = SA_ERROR;
            goto failed;
        }

        sa_kb_put_u32(length + 4 * (size_t) id, rec.tokens);
        chunks++;
        tokens += rec.tokens;

        for (i = 0; i < SA_KB_NFILTERS; i++) {
            rc = sa_kb_col_value(&cb[i],
                                 rec.f[sa_kb_filter_fields[i]].data,
                                 rec.f[sa_kb_filter_fields[i]].len, &index);
            if (rc != SA_OK) {
                problem = (rc == SA_INVALID)
                          ? "more than 65534 values of a filter field"
                          : "out of memory";
                rc = SA_ERROR;
                goto failed;
            }

            cb[i].codes[id] = (uint16_t) index;
        }
    }

    if (rc != MDB_NOTFOUND) {
        sa_kb_writer_lmdb(w, "mdb_cursor_get", rc);
        rc = SA_ERROR;
        problem = NULL;
        goto failed;
    }

    mdb_cursor_close(cur);
    cur = NULL;

    w->stats.chunks = chunks;
    w->stats.tokens = tokens;

    key.mv_data = "length";
    key.mv_size = sizeof("length") - 1;
    val.mv_data = length;
    val.mv_size = (size_t) w->next_chunk * 4;

    rc = mdb_put(w->txn, w->columns, &key, &val, 0);
    if (rc != MDB_SUCCESS) {
        sa_kb_writer_lmdb(w, "mdb_put", rc);
        rc = SA_ERROR;
        problem = NULL;
        goto failed;
    }

    /* values sorted ("" first), so readers search them */

    for (i = 0; i < SA_KB_NFILTERS; i++) {
        qsort(cb[i].order, cb[i].n, sizeof(sa_kb_seen_t *), sa_kb_key_cmp);

        free(remap);
        remap = malloc(cb[i].n * sizeof(uint32_t));
        if (remap == NULL) {
            rc = SA_ERROR;
            goto failed;
        }

        size = 4 + (size_t) w->next_chunk * 2;

        for (j = 0; j < cb[i].n; j++) {
            remap[cb[i].order[j]->state] = (uint32_t) j;
            size += 2 + cb[i].order[j]->k.len;
        }

        w->val.len = 0;

        if (sa_kb_buf_reserve(&w->val, size) != SA_OK) {
            rc = SA_ERROR;
            goto failed;
        }

        p = w->val.data;
        sa_kb_put_u32(p, (uint32_t) cb[i].n);
        p += 4;

        for (j = 0; j < cb[i].n; j++) {
            sa_kb_put_u16(p, (uint16_t) cb[i].order[j]->k.len);
            memcpy(p + 2, cb[i].order[j]->k.key, cb[i].order[j]->k.len);
            p += 2 + cb[i].order[j]->k.len;
        }

        for (id = 0; id < w->next_chunk; id++) {
            sa_kb_put_u16(p, (uint16_t) remap[cb[i].codes[id]]);
            p += 2;
        }

        key.mv_data = (void *) sa_kb_filter_columns[i];
        key.mv_size = strlen(sa_kb_filter_columns[i]);
        val.mv_data = w->val.data;
        val.mv_size = size;

        rc = mdb_put(w->txn, w->columns, &key, &val, 0);
        if (rc != MDB_SUCCESS) {
            sa_kb_writer_lmdb(w, "mdb_put", rc);
            rc = SA_ERROR;
            problem = NULL;
            goto failed;
        }
    }

    rc = SA_OK;
    problem = NULL;

failed:

    if (problem != NULL) {
        sa_kb_werror(w, "kb \"%s\": columns: %s", w->tmp, problem);
    }

    if (cur != NULL) {
        mdb_cursor_close(cur);
    }

    for (i = 0; i < SA_KB_NFILTERS; i++) {
        sa_kb_map_free(&cb[i].map);
        free(cb[i].order);
        free(cb[i].codes);
    }

    free(remap);
    free(length);

    return rc;
}


static int
sa_kb_writer_meta(sa_kb_writer_t *w)
{
    int         rc;
    MDB_stat    st;

    rc = mdb_stat(w->txn, w->docs, &st);
    if (rc != MDB_SUCCESS) {
        return sa_kb_writer_lmdb(w, "mdb_stat", rc);
    }

    w->stats.docs = (uint32_t) st.ms_entries;

    rc = mdb_stat(w->txn, w->postings, &st);
    if (rc != MDB_SUCCESS) {
        return sa_kb_writer_lmdb(w, "mdb_stat", rc);
    }

    w->stats.terms = (uint32_t) st.ms_entries;

    if (sa_kb_writer_vector_stats(w) != SA_OK) {
        return SA_ERROR;
    }

    if (sa_kb_writer_put_meta(w, "format", "%d", SA_KB_FORMAT) != SA_OK
        || sa_kb_writer_put_meta(w, "language", "%s", w->language) != SA_OK
        || sa_kb_writer_put_meta(w, "k1", "0.9") != SA_OK
        || sa_kb_writer_put_meta(w, "b", "0.4") != SA_OK
        || sa_kb_writer_put_meta(w, "docs", "%u", w->stats.docs) != SA_OK
        || sa_kb_writer_put_meta(w, "chunks", "%u", w->stats.chunks)
           != SA_OK
        || sa_kb_writer_put_meta(w, "tokens", "%llu",
                                 (unsigned long long) w->stats.tokens)
           != SA_OK
        || sa_kb_writer_put_meta(w, "next_chunk", "%u", w->next_chunk)
           != SA_OK
        || sa_kb_writer_put_meta(w, "terms", "%u", w->stats.terms) != SA_OK
        || sa_kb_writer_put_meta(w, "max_chars", "%u", w->max_chars)
           != SA_OK
        || sa_kb_writer_put_meta(w, "overlap", "%u", w->overlap) != SA_OK
        || sa_kb_writer_put_meta(w, "embed_model", "%s",
                                 w->embed_model ? w->embed_model : "")
           != SA_OK
        || sa_kb_writer_put_meta(w, "embed_dim", "%u", w->dim) != SA_OK
        || sa_kb_writer_put_meta(w, "embed_encoding", "%s",
                                 w->embed_model == NULL ? ""
                                 : w->int8 ? "int8" : "float32")
           != SA_OK
        || sa_kb_writer_put_meta(w, "built_ms", "%lld",
                                 (long long) sa_kb_now_ms())
           != SA_OK
        || sa_kb_writer_put_meta(w, "builder", "kb-build %d", SA_KB_FORMAT)
           != SA_OK)
    {
        return SA_ERROR;
    }

    return SA_OK;
}


static int
sa_kb_writer_put_meta(sa_kb_writer_t *w, const char *name,
    const char *fmt, ...)
{
    int      rc, n;
    char     buf[256];
    va_list  ap;
    MDB_val  key, val;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);

    if (n < 0 || (size_t) n >= sizeof(buf)) {
        sa_kb_werror(w, "meta \"%s\" too long", name);
        return SA_ERROR;
    }

    key.mv_data = (void *) name;
    key.mv_size = strlen(name);
    val.mv_data = buf;
    val.mv_size = (size_t) n;

    rc = mdb_put(w->txn, w->meta, &key, &val, 0);
    if (rc != MDB_SUCCESS) {
        return sa_kb_writer_lmdb(w, "mdb_put", rc);
    }

    return SA_OK;
}


static int
sa_kb_writer_vector_stats(sa_kb_writer_t *w)
{
    int       rc;
    MDB_stat  st;

    rc = mdb_stat(w->txn, w->vectors, &st);
    if (rc != MDB_SUCCESS) {
        return sa_kb_writer_lmdb(w, "mdb_stat", rc);
    }

    w->stats.vectors = (uint32_t) st.ms_entries;
    w->stats.dim = w->embed_model ? w->dim : 0;

    return SA_OK;
}


/* the counts of the KB left as it was */

static int
sa_kb_writer_kept(sa_kb_writer_t *w)
{
    uint64_t     docs, chunks, tokens, terms;
    struct stat  st;

    if (sa_kb_meta_u64(w->txn, w->meta, "docs", &docs) != SA_OK
        || sa_kb_meta_u64(w->txn, w->meta, "chunks", &chunks) != SA_OK
        || sa_kb_meta_u64(w->txn, w->meta, "tokens", &tokens) != SA_OK
        || sa_kb_meta_u64(w->txn, w->meta, "terms", &terms) != SA_OK)
    {
        sa_kb_werror(w, "kb \"%s\": incomplete meta", w->path);
        return SA_ERROR;
    }

    w->stats.kept = 1;
    w->stats.docs = (uint32_t) docs;
    w->stats.chunks = (uint32_t) chunks;
    w->stats.tokens = tokens;
    w->stats.terms = (uint32_t) terms;

    if (sa_kb_writer_vector_stats(w) != SA_OK) {
        return SA_ERROR;
    }

    if (stat(w->path, &st) == 0) {
        w->stats.bytes = (uint64_t) st.st_size;
    }

    return SA_OK;
}


/* commits, syncs, and renames PATH.tmp onto PATH */

static int
sa_kb_writer_publish(sa_kb_writer_t *w)
{
    int          rc, fd;
    char        *dir, *copy;
    struct stat  fst;

    if (sa_kb_writer_commit(w) != SA_OK) {
        return SA_ERROR;
    }

    rc = mdb_env_sync(w->env, 1);
    if (rc != MDB_SUCCESS) {
        return sa_kb_writer_lmdb(w, "mdb_env_sync", rc);
    }

    mdb_env_close(w->env);
    w->env = NULL;

    if (fstat(w->lock_fd, &fst) == 0) {
        w->stats.bytes = (uint64_t) fst.st_size;
    }

    if (rename(w->tmp, w->path) != 0) {
        sa_kb_werror(w, "kb: rename(\"%s\", \"%s\") failed: %s", w->tmp,
                     w->path, strerror(errno));
        return SA_ERROR;
    }

    /* the rename itself must survive a crash */

    copy = strdup(w->path);
    if (copy != NULL) {
        dir = dirname(copy);

        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd != -1) {
            (void) fsync(fd);
            close(fd);
        }

        free(copy);
    }

    /* PATH.tmp is gone: nothing to remove on the way out */

    close(w->lock_fd);
    w->lock_fd = -1;

    return SA_OK;
}


/* valid UTF-8 without NUL bytes */

static int
sa_kb_check_str(const char *s, size_t len)
{
    if (len > 0 && memchr(s, '\0', len) != NULL) {
        return SA_INVALID;
    }

    return sa_utf8_valid((const unsigned char *) s, len) ? SA_OK
                                                        : SA_INVALID;
}


static int64_t
sa_kb_now_ms(void)
{
    struct timeval  tv;

    gettimeofday(&tv, NULL);

    return (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;
}
