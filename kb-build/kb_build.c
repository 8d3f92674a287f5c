
/*
 * Copyright (C) ngx_support_agent authors
 *
 * kb-build: builds the knowledge base file the module searches (index),
 * searches it as the module does (search), and tells what is in it
 * (stats).  See kb-build/README.md.
 */


#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <yajl/yajl_tree.h>

#include "kb_build.h"
#include "sa_chunk.h"
#include "sa_json.h"
#include "sa_kb.h"
#include "sa_utf8.h"


#define KB_MAX_CHARS     1500
#define KB_OVERLAP       200
#define KB_PROGRESS_S    2.0

/* metadata a JSONL line may give in "metadata" */
enum {
    KB_M_URL = 0,
    KB_M_PRODUCT_AREA,
    KB_M_DOC_TYPE,
    KB_M_VERSION,
    KB_M_TIER,
    KB_M_REGION,
    KB_M_N
};


typedef struct {
    char           *id;
    int             kind;            /* 1 markdown, 2 jsonl */
    char           *source;          /* "DIR/a/b.md", "FILE:LINE" */
    char           *data;            /* markdown: the file; jsonl: text */
    size_t          len;
    char           *title;           /* jsonl */
    char           *meta[KB_M_N];    /* jsonl */
    int64_t         updated_ms;
    unsigned char   hash[SA_KB_HASH_SIZE];
    int             needed;
} kb_doc_t;

typedef struct {
    kb_doc_t       *docs;
    size_t          n;
    size_t          cap;
    size_t          bytes;           /* of input read */
} kb_docs_t;

typedef struct {
    char          **paths;
    size_t          n;
    size_t          cap;
} kb_paths_t;

typedef struct {
    const char     *out;
    const char     *markdown;
    const char     *jsonl;
    const char     *language;
    long            max_chars;
    long            overlap;
    int             rebuild;
    int             quiet;
} kb_index_conf_t;


static int kb_index_run(kb_index_conf_t *conf);
static int kb_collect_markdown(const char *dir, kb_docs_t *docs);
static int kb_walk(const char *root, const char *rel, kb_paths_t *paths);
static int kb_paths_cmp(const void *one, const void *two);
static int kb_collect_jsonl(const char *file, kb_docs_t *docs);
static int kb_jsonl_line(const char *file, long line, const char *p,
    size_t len, kb_docs_t *docs);
static char *kb_json_string(yajl_val root, const char *key);
static kb_doc_t *kb_docs_add(kb_docs_t *docs);
static void kb_docs_free(kb_docs_t *docs);
static void kb_doc_release(kb_doc_t *d);
static void kb_hash_doc(kb_doc_t *d, kb_index_conf_t *conf);
static int kb_add_markdown(sa_kb_writer_t *w, kb_doc_t *d,
    kb_index_conf_t *conf);
static int kb_add_jsonl(sa_kb_writer_t *w, kb_doc_t *d);
static char *kb_concat(const char *a, const char *sep, const char *b);
static char *kb_url_path(const char *prefix, const char *id);


static const char  *kb_meta_keys[KB_M_N] = {
    "url", "product_area", "doc_type", "version", "tier", "region"
};


static const char  kb_usage_text[] =
    "usage:\n"
    "  kb-build index --out PATH [--markdown DIR] [--jsonl FILE]\n"
    "                 [--language english|simple] [--max-chars N]"
    " [--overlap N]\n"
    "                 [--rebuild] [--quiet]\n"
    "  kb-build search --kb PATH --queries FILE.jsonl [--k 100]"
    " [--chunk-k N]\n"
    "                 [--tag NAME] [--k1 F --b F] [--repeat N]\n"
    "  kb-build stats --kb PATH\n";


int
main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(kb_usage_text, stderr);
        return KB_EXIT_USAGE;
    }

    if (strcmp(argv[1], "index") == 0) {
        return kb_index(argc - 1, argv + 1);
    }

    if (strcmp(argv[1], "search") == 0) {
        return kb_search(argc - 1, argv + 1);
    }

    if (strcmp(argv[1], "stats") == 0) {
        return kb_stats(argc - 1, argv + 1);
    }

    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(kb_usage_text, stdout);
        return KB_EXIT_OK;
    }

    kb_usage("unknown command \"%s\"", argv[1]);

    return KB_EXIT_USAGE;
}


void
kb_error(const char *fmt, ...)
{
    va_list  ap;

    fputs("kb-build: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}


void
kb_usage(const char *fmt, ...)
{
    va_list  ap;

    fputs("kb-build: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fputs(kb_usage_text, stderr);
}


char *
kb_read_file(const char *path, size_t *len)
{
    int          e;
    char        *data;
    FILE        *f;
    size_t       n;
    struct stat  st;

    f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }

    if (fstat(fileno(f), &st) != 0) {
        e = errno;
        fclose(f);
        errno = e;
        return NULL;
    }

    if (!S_ISREG(st.st_mode)) {
        fclose(f);
        errno = EISDIR;
        return NULL;
    }

    data = malloc((size_t) st.st_size + 1);
    if (data == NULL) {
        fclose(f);
        errno = ENOMEM;
        return NULL;
    }

    n = fread(data, 1, (size_t) st.st_size, f);

    if (ferror(f)) {
        e = errno;
        fclose(f);
        free(data);
        errno = e ? e : EIO;
        return NULL;
    }

    fclose(f);

    data[n] = '\0';
    *len = n;

    return data;
}


double
kb_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}


long
kb_number(const char *s)
{
    long   v;
    char  *end;

    errno = 0;
    v = strtol(s, &end, 10);

    if (errno != 0 || end == s || *end != '\0' || v < 0) {
        return -1;
    }

    return v;
}


/* ------------------------------------------------------------------ */
/* index                                                               */


int
kb_index(int argc, char **argv)
{
    int               i;
    const char       *opt;
    kb_index_conf_t   conf;

    memset(&conf, 0, sizeof(kb_index_conf_t));
    conf.language = "english";
    conf.max_chars = KB_MAX_CHARS;
    conf.overlap = KB_OVERLAP;

    for (i = 1; i < argc; i++) {
        opt = argv[i];

        if (strcmp(opt, "--rebuild") == 0) {
            conf.rebuild = 1;
            continue;
        }

        if (strcmp(opt, "--quiet") == 0) {
            conf.quiet = 1;
            continue;
        }

        if (i + 1 >= argc) {
            kb_usage("index: %s needs a value", opt);
            return KB_EXIT_USAGE;
        }

        if (strcmp(opt, "--out") == 0) {
            conf.out = argv[++i];

        } else if (strcmp(opt, "--markdown") == 0) {
            conf.markdown = argv[++i];

        } else if (strcmp(opt, "--jsonl") == 0) {
            conf.jsonl = argv[++i];

        } else if (strcmp(opt, "--language") == 0) {
            conf.language = argv[++i];

        } else if (strcmp(opt, "--max-chars") == 0) {
            conf.max_chars = kb_number(argv[++i]);

        } else if (strcmp(opt, "--overlap") == 0) {
            conf.overlap = kb_number(argv[++i]);

        } else {
            kb_usage("index: unknown option \"%s\"", opt);
            return KB_EXIT_USAGE;
        }
    }

    if (conf.out == NULL) {
        kb_usage("index: --out PATH is required");
        return KB_EXIT_USAGE;
    }

    if (conf.markdown == NULL && conf.jsonl == NULL) {
        kb_usage("index: give --markdown DIR and/or --jsonl FILE");
        return KB_EXIT_USAGE;
    }

    if (strcmp(conf.language, "english") != 0
        && strcmp(conf.language, "simple") != 0)
    {
        kb_usage("index: --language is english or simple");
        return KB_EXIT_USAGE;
    }

    if (conf.max_chars < 0 || (conf.max_chars > 0 && conf.max_chars < 64)
        || conf.max_chars > 1000000)
    {
        kb_usage("index: --max-chars is 0 (no limit) or 64..1000000");
        return KB_EXIT_USAGE;
    }

    if (conf.overlap < 0 || conf.overlap > 1000000) {
        kb_usage("index: --overlap is 0..1000000");
        return KB_EXIT_USAGE;
    }

    return kb_index_run(&conf);
}


static int
kb_index_run(kb_index_conf_t *conf)
{
    int                    rc;
    char                   err[1024];
    double                 start, last, now, secs;
    size_t                 i, needed, done;
    kb_docs_t              docs;
    sa_kb_writer_t        *w;
    sa_kb_writer_conf_t    wconf;
    sa_kb_writer_stats_t   st;

    start = kb_now();
    memset(&docs, 0, sizeof(kb_docs_t));
    w = NULL;

    if (conf->markdown != NULL
        && kb_collect_markdown(conf->markdown, &docs) != 0)
    {
        goto failed;
    }

    if (conf->jsonl != NULL && kb_collect_jsonl(conf->jsonl, &docs) != 0) {
        goto failed;
    }

    memset(&wconf, 0, sizeof(sa_kb_writer_conf_t));
    wconf.language = conf->language;
    wconf.rebuild = conf->rebuild;
    wconf.max_chars = (uint32_t) conf->max_chars;
    wconf.overlap = (uint32_t) conf->overlap;

    rc = sa_kb_writer_open(&w, conf->out, &wconf, err, sizeof(err));
    if (rc != SA_OK) {
        kb_error("%s", err);
        w = NULL;
        goto failed;
    }

    /* which documents are new or changed */

    needed = 0;

    for (i = 0; i < docs.n; i++) {
        kb_hash_doc(&docs.docs[i], conf);

        rc = sa_kb_writer_check(w, docs.docs[i].id, docs.docs[i].hash);

        switch (rc) {

        case SA_OK:
            /* unchanged: its text is not needed any more */
            kb_doc_release(&docs.docs[i]);
            break;

        case SA_NOT_FOUND:
            docs.docs[i].needed = 1;
            needed++;
            break;

        case SA_BUSY:
            kb_error("%s: document id \"%s\" again, skipped",
                     docs.docs[i].source, docs.docs[i].id);
            kb_doc_release(&docs.docs[i]);
            break;

        case SA_INVALID:
            kb_error("%s: %s", docs.docs[i].source, sa_kb_writer_error(w));
            goto failed;

        default:
            kb_error("%s", sa_kb_writer_error(w));
            goto failed;
        }
    }

    if (sa_kb_writer_prune(w) != SA_OK) {
        kb_error("%s", sa_kb_writer_error(w));
        goto failed;
    }

    last = kb_now();
    done = 0;

    for (i = 0; i < docs.n; i++) {
        if (!docs.docs[i].needed) {
            continue;
        }

        rc = (docs.docs[i].kind == 1)
             ? kb_add_markdown(w, &docs.docs[i], conf)
             : kb_add_jsonl(w, &docs.docs[i]);

        if (rc != 0) {
            goto failed;
        }

        kb_doc_release(&docs.docs[i]);
        done++;

        now = kb_now();

        if (!conf->quiet && now - last >= KB_PROGRESS_S) {
            fprintf(stderr, "kb-build: %zu/%zu documents indexed, %.1f s\n",
                    done, needed, now - start);
            last = now;
        }
    }

    rc = sa_kb_writer_finish(w, &st, err, sizeof(err));
    w = NULL;

    if (rc != SA_OK) {
        kb_error("%s", err);
        goto failed;
    }

    secs = kb_now() - start;

    if (st.kept) {
        printf("kb-build: %s is up to date, left as it was\n", conf->out);

    } else {
        printf("kb-build: wrote %s (%s%s)\n", conf->out,
               st.incremental ? "incremental" : "full build: ",
               st.incremental ? "" : st.reason);
    }

    printf("  documents  %u (new %u, changed %u, unchanged %u, removed %u)\n",
           st.docs, st.added, st.changed, st.unchanged, st.removed);
    printf("  chunks     %u (new %u, removed %u, duplicates skipped %u, "
           "relinked %u)\n", st.chunks, st.chunks_added, st.chunks_removed,
           st.duplicates, st.relinked);
    printf("  terms      %u distinct, %llu indexed\n", st.terms,
           (unsigned long long) st.tokens);
    printf("  size       %.1f MB (input read %.1f MB)\n",
           (double) st.bytes / 1e6, (double) docs.bytes / 1e6);
    printf("  seconds    %.2f (%.0f docs/s, %.1f MB/s)\n", secs,
           secs > 0 ? (double) docs.n / secs : 0,
           secs > 0 ? (double) docs.bytes / 1e6 / secs : 0);

    kb_docs_free(&docs);

    return KB_EXIT_OK;

failed:

    sa_kb_writer_abort(w);
    kb_docs_free(&docs);

    return KB_EXIT_FAIL;
}


/* every *.md under dir, in the order of their paths */

static int
kb_collect_markdown(const char *dir, kb_docs_t *docs)
{
    int          rc;
    char        *path;
    size_t       i, len, plen;
    kb_doc_t    *d;
    kb_paths_t   paths;
    struct stat  st;

    if (stat(dir, &st) != 0) {
        kb_error("--markdown \"%s\": %s", dir, strerror(errno));
        return -1;
    }

    if (!S_ISDIR(st.st_mode)) {
        kb_error("--markdown \"%s\": not a directory", dir);
        return -1;
    }

    memset(&paths, 0, sizeof(kb_paths_t));

    rc = kb_walk(dir, NULL, &paths);

    if (rc == 0) {
        qsort(paths.paths, paths.n, sizeof(char *), kb_paths_cmp);
    }

    for (i = 0; rc == 0 && i < paths.n; i++) {
        path = kb_concat(dir, "/", paths.paths[i]);
        if (path == NULL) {
            kb_error("out of memory");
            rc = -1;
            break;
        }

        d = kb_docs_add(docs);
        if (d == NULL) {
            free(path);
            kb_error("out of memory");
            rc = -1;
            break;
        }

        d->kind = 1;
        d->source = path;

        d->data = kb_read_file(path, &len);
        if (d->data == NULL) {
            kb_error("%s: %s", path, strerror(errno));
            rc = -1;
            break;
        }

        d->len = len;
        docs->bytes += len;

        if (!sa_utf8_valid((unsigned char *) d->data, len)) {
            kb_error("%s: not valid UTF-8", path);
            rc = -1;
            break;
        }

        /* the id: the path without ".md" */

        plen = strlen(paths.paths[i]) - 3;

        d->id = strndup(paths.paths[i], plen);
        if (d->id == NULL) {
            kb_error("out of memory");
            rc = -1;
            break;
        }
    }

    for (i = 0; i < paths.n; i++) {
        free(paths.paths[i]);
    }

    free(paths.paths);

    return rc;
}


/* collects the paths (relative to root) of the *.md files under root/rel;
   hidden files and directories and README.md files are left out, symbolic
   links to directories are not followed */

static int
kb_walk(const char *root, const char *rel, kb_paths_t *paths)
{
    int             rc;
    char           *dir, *sub, *full, **p;
    DIR            *d;
    size_t          len;
    struct stat     st;
    struct dirent  *e;

    dir = rel ? kb_concat(root, "/", rel) : strdup(root);
    if (dir == NULL) {
        kb_error("out of memory");
        return -1;
    }

    d = opendir(dir);
    if (d == NULL) {
        kb_error("%s: %s", dir, strerror(errno));
        free(dir);
        return -1;
    }

    rc = 0;

    while (rc == 0 && (errno = 0, e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }

        sub = rel ? kb_concat(rel, "/", e->d_name) : strdup(e->d_name);
        full = kb_concat(dir, "/", e->d_name);

        if (sub == NULL || full == NULL) {
            free(sub);
            free(full);
            kb_error("out of memory");
            rc = -1;
            break;
        }

        if (lstat(full, &st) != 0) {
            kb_error("%s: %s", full, strerror(errno));
            rc = -1;

        } else if (S_ISDIR(st.st_mode)) {
            rc = kb_walk(root, sub, paths);

        } else {
            len = strlen(e->d_name);

            /* a README describes the folder, it is not an article */

            if (len > 3 && strcmp(e->d_name + len - 3, ".md") == 0
                && strcasecmp(e->d_name, "README.md") != 0
                && stat(full, &st) == 0 && S_ISREG(st.st_mode))
            {
                if (paths->n == paths->cap) {
                    paths->cap = paths->cap ? paths->cap * 2 : 64;

                    p = realloc(paths->paths, paths->cap * sizeof(char *));
                    if (p == NULL) {
                        free(sub);
                        free(full);
                        kb_error("out of memory");
                        rc = -1;
                        break;
                    }

                    paths->paths = p;
                }

                paths->paths[paths->n++] = sub;
                sub = NULL;
            }
        }

        free(sub);
        free(full);
    }

    if (rc == 0 && errno != 0) {
        kb_error("%s: %s", dir, strerror(errno));
        rc = -1;
    }

    closedir(d);
    free(dir);

    return rc;
}


static int
kb_paths_cmp(const void *one, const void *two)
{
    return strcmp(*(char * const *) one, *(char * const *) two);
}


static int
kb_collect_jsonl(const char *file, kb_docs_t *docs)
{
    int       rc;
    char     *line;
    long      n;
    FILE     *f;
    size_t    cap;
    ssize_t   len;

    f = fopen(file, "rb");
    if (f == NULL) {
        kb_error("--jsonl \"%s\": %s", file, strerror(errno));
        return -1;
    }

    line = NULL;
    cap = 0;
    n = 0;
    rc = 0;

    while ((len = getline(&line, &cap, f)) != -1) {
        n++;
        docs->bytes += (size_t) len;

        rc = kb_jsonl_line(file, n, line, (size_t) len, docs);
        if (rc != 0) {
            break;
        }
    }

    if (rc == 0 && ferror(f)) {
        kb_error("%s: %s", file, strerror(errno));
        rc = -1;
    }

    free(line);
    fclose(f);

    return rc;
}


/* one line of BEIR's corpus.jsonl: {"_id", "title", "text", "metadata"} */

static int
kb_jsonl_line(const char *file, long line, const char *p, size_t len,
    kb_docs_t *docs)
{
    int          i;
    char         err[256], src[64], *updated;
    size_t       j;
    yajl_val     root, v;
    kb_doc_t    *d;
    const char  *path[3];

    for (j = 0; j < len; j++) {
        if (p[j] != ' ' && p[j] != '\t' && p[j] != '\r' && p[j] != '\n') {
            break;
        }
    }

    if (j == len) {
        return 0;
    }

    if (!sa_utf8_valid((const unsigned char *) p, len)) {
        kb_error("%s:%ld: not valid UTF-8", file, line);
        return -1;
    }

    root = sa_json_tree_parse(p, len, err, sizeof(err));
    if (root == NULL) {
        kb_error("%s:%ld: invalid JSON: %s", file, line, err);
        return -1;
    }

    if (!YAJL_IS_OBJECT(root)) {
        kb_error("%s:%ld: not a JSON object", file, line);
        yajl_tree_free(root);
        return -1;
    }

    d = kb_docs_add(docs);
    if (d == NULL) {
        yajl_tree_free(root);
        kb_error("out of memory");
        return -1;
    }

    d->kind = 2;

    snprintf(src, sizeof(src), ":%ld", line);
    d->source = kb_concat(file, "", src);

    path[0] = "_id";
    path[1] = NULL;
    v = yajl_tree_get(root, path, yajl_t_any);

    if (v != NULL && YAJL_IS_NUMBER(v) && YAJL_IS_INTEGER(v)) {
        /* some corpora have numeric ids */
        snprintf(err, sizeof(err), "%lld", YAJL_GET_INTEGER(v));
        d->id = strdup(err);

    } else {
        d->id = kb_json_string(root, "_id");
    }

    d->title = kb_json_string(root, "title");
    d->data = kb_json_string(root, "text");

    if (d->source == NULL) {
        goto nomem;
    }

    if (d->id == NULL || d->id[0] == '\0') {
        kb_error("%s:%ld: no \"_id\" string", file, line);
        goto failed;
    }

    if (d->data == NULL) {
        kb_error("%s:%ld: no \"text\" string", file, line);
        goto failed;
    }

    d->len = strlen(d->data);

    if (d->title == NULL) {
        d->title = strdup("");
        if (d->title == NULL) {
            goto nomem;
        }
    }

    /* optional metadata, as the markdown front matter has it */

    path[0] = "metadata";
    path[2] = NULL;

    for (i = 0; i < KB_M_N; i++) {
        path[1] = kb_meta_keys[i];
        v = yajl_tree_get(root, path, yajl_t_string);

        if (v != NULL) {
            d->meta[i] = strdup(v->u.string);
            if (d->meta[i] == NULL) {
                goto nomem;
            }
        }
    }

    path[1] = "updated";
    v = yajl_tree_get(root, path, yajl_t_string);

    if (v != NULL) {
        updated = v->u.string;

        if (sa_chunk_parse_time(updated, strlen(updated), &d->updated_ms)
            != SA_OK)
        {
            kb_error("%s:%ld: metadata \"updated\" is not YYYY-MM-DD or "
                     "YYYY-MM-DDTHH:MM:SSZ", file, line);
            goto failed;
        }
    }

    yajl_tree_free(root);

    return 0;

nomem:

    kb_error("out of memory");

failed:

    yajl_tree_free(root);

    return -1;
}


/* a malloc()ed copy of root[key] when it is a string without NULs */

static char *
kb_json_string(yajl_val root, const char *key)
{
    yajl_val     v;
    const char  *path[2];

    path[0] = key;
    path[1] = NULL;

    v = yajl_tree_get(root, path, yajl_t_string);
    if (v == NULL) {
        return NULL;
    }

    return strdup(v->u.string);
}


static kb_doc_t *
kb_docs_add(kb_docs_t *docs)
{
    size_t     cap;
    kb_doc_t  *d;

    if (docs->n == docs->cap) {
        cap = docs->cap ? docs->cap * 2 : 256;

        d = realloc(docs->docs, cap * sizeof(kb_doc_t));
        if (d == NULL) {
            return NULL;
        }

        docs->docs = d;
        docs->cap = cap;
    }

    d = &docs->docs[docs->n++];
    memset(d, 0, sizeof(kb_doc_t));

    return d;
}


/* the text of a document, once it is not needed */

static void
kb_doc_release(kb_doc_t *d)
{
    int  i;

    free(d->data);
    free(d->title);
    d->data = NULL;
    d->title = NULL;
    d->len = 0;

    for (i = 0; i < KB_M_N; i++) {
        free(d->meta[i]);
        d->meta[i] = NULL;
    }
}


static void
kb_docs_free(kb_docs_t *docs)
{
    size_t  i;

    for (i = 0; i < docs->n; i++) {
        kb_doc_release(&docs->docs[i]);
        free(docs->docs[i].id);
        free(docs->docs[i].source);
    }

    free(docs->docs);
    memset(docs, 0, sizeof(kb_docs_t));
}


/*
 * The content hash: the source bytes and everything else that shapes the
 * document's chunks and records (kind, id, chunking options, metadata), so
 * that a change of any of them redoes the document.
 */

static void
kb_hash_doc(kb_doc_t *d, kb_index_conf_t *conf)
{
    int             i;
    char            head[128];
    size_t          n, len;
    unsigned char  *buf, *p;
    const char     *parts[2 + KB_M_N + 1];

    n = (size_t) snprintf(head, sizeof(head), "%d %ld %ld %lld", d->kind,
                          conf->max_chars, conf->overlap,
                          (long long) d->updated_ms);

    parts[0] = d->id;
    parts[1] = d->title ? d->title : "";

    for (i = 0; i < KB_M_N; i++) {
        parts[2 + i] = d->meta[i] ? d->meta[i] : "";
    }

    parts[2 + KB_M_N] = NULL;

    len = n + 1 + d->len;

    for (i = 0; parts[i] != NULL; i++) {
        len += strlen(parts[i]) + 1;
    }

    buf = malloc(len);
    if (buf == NULL) {
        /* a hash no KB has: the document is redone, which is safe */
        memset(d->hash, 0xff, SA_KB_HASH_SIZE);
        return;
    }

    p = buf;
    memcpy(p, head, n + 1);
    p += n + 1;

    for (i = 0; parts[i] != NULL; i++) {
        n = strlen(parts[i]) + 1;
        memcpy(p, parts[i], n);
        p += n;
    }

    memcpy(p, d->data, d->len);

    sa_kb_hash(buf, len, 0x6b620001, d->hash);

    free(buf);
}


static int
kb_add_markdown(sa_kb_writer_t *w, kb_doc_t *d, kb_index_conf_t *conf)
{
    int              rc;
    char            *area, *url, *prefix, *slash;
    size_t           i, n;
    sa_kb_doc_t      doc;
    sa_chunk_t      *chunks;
    sa_doc_meta_t    meta;
    sa_kb_wchunk_t  *wc;

    memset(&meta, 0, sizeof(sa_doc_meta_t));
    chunks = NULL;
    n = 0;
    wc = NULL;
    area = NULL;
    url = NULL;

    rc = sa_chunk_markdown(d->data, d->len, (size_t) conf->max_chars,
                           (size_t) conf->overlap, &meta, &chunks, &n);
    if (rc != SA_OK) {
        kb_error("%s: %s", d->source,
                 rc == SA_INVALID ? "not valid UTF-8 or has NUL bytes"
                                  : "out of memory chunking it");
        sa_doc_meta_free(&meta);
        return -1;
    }

    memset(&doc, 0, sizeof(sa_kb_doc_t));
    doc.id = d->id;
    doc.kind = 1;
    doc.source = d->source;
    memcpy(doc.hash, d->hash, SA_KB_HASH_SIZE);
    doc.updated_ms = meta.updated_ms;

    /* the title: front matter, first "# " heading, else the file name */

    slash = strrchr(d->id, '/');
    doc.title = meta.title ? meta.title : (slash ? slash + 1 : d->id);

    /* "billing/refunds" is in product area "billing" */

    if (meta.product_area != NULL) {
        doc.product_area = meta.product_area;

    } else if ((slash = strchr(d->id, '/')) != NULL) {
        area = strndup(d->id, (size_t) (slash - d->id));
        if (area == NULL) {
            goto nomem;
        }

        doc.product_area = area;
    }

    if (meta.url != NULL) {
        doc.url = meta.url;

    } else {
        url = kb_url_path("/help/", d->id);
        if (url == NULL) {
            goto nomem;
        }

        doc.url = url;
    }

    doc.doc_type = meta.doc_type ? meta.doc_type : "article";
    doc.version = meta.version;
    doc.tier = meta.tier;
    doc.region = meta.region;

    /* each chunk is indexed with its title and headings before it */

    wc = calloc(n + 1, sizeof(sa_kb_wchunk_t));
    if (wc == NULL) {
        goto nomem;
    }

    for (i = 0; i < n; i++) {
        wc[i].section = chunks[i].section;
        wc[i].anchor = chunks[i].anchor;
        wc[i].text = chunks[i].text;
        wc[i].text_len = chunks[i].text_len;

        if (chunks[i].section[0] == '\0'
            || strcmp(chunks[i].section, doc.title) == 0)
        {
            prefix = strdup(doc.title);

        } else {
            prefix = kb_concat(doc.title, "\n", chunks[i].section);
        }

        if (prefix == NULL) {
            goto nomem;
        }

        wc[i].prefix = prefix;
        wc[i].prefix_len = strlen(prefix);
    }

    rc = sa_kb_writer_add(w, &doc, wc, n);
    if (rc != SA_OK) {
        kb_error("%s: %s", d->source, sa_kb_writer_error(w));
    }

    goto done;

nomem:

    kb_error("out of memory");
    rc = SA_ERROR;

done:

    if (wc != NULL) {
        for (i = 0; i < n; i++) {
            free((char *) wc[i].prefix);
        }

        free(wc);
    }

    free(area);
    free(url);
    sa_chunks_free(chunks, n);
    sa_doc_meta_free(&meta);

    return rc == SA_OK ? 0 : -1;
}


/* a BEIR document is one chunk: title and text, as Anserini's flat
   "contents" field */

static int
kb_add_jsonl(sa_kb_writer_t *w, kb_doc_t *d)
{
    int              rc;
    char            *text;
    sa_kb_doc_t      doc;
    sa_kb_wchunk_t   wc;

    text = (d->title[0] != '\0') ? kb_concat(d->title, "\n", d->data)
                                 : strdup(d->data);
    if (text == NULL) {
        kb_error("out of memory");
        return -1;
    }

    memset(&doc, 0, sizeof(sa_kb_doc_t));
    doc.id = d->id;
    doc.kind = 2;
    doc.source = d->source;
    doc.title = d->title;
    doc.url = d->meta[KB_M_URL];
    doc.product_area = d->meta[KB_M_PRODUCT_AREA];
    doc.doc_type = d->meta[KB_M_DOC_TYPE];
    doc.version = d->meta[KB_M_VERSION];
    doc.tier = d->meta[KB_M_TIER];
    doc.region = d->meta[KB_M_REGION];
    doc.updated_ms = d->updated_ms;
    memcpy(doc.hash, d->hash, SA_KB_HASH_SIZE);

    memset(&wc, 0, sizeof(sa_kb_wchunk_t));
    wc.text = text;
    wc.text_len = strlen(text);

    rc = sa_kb_writer_add(w, &doc, &wc, 1);
    if (rc != SA_OK) {
        kb_error("%s: %s", d->source, sa_kb_writer_error(w));
    }

    free(text);

    return rc == SA_OK ? 0 : -1;
}


static char *
kb_concat(const char *a, const char *sep, const char *b)
{
    char    *p;
    size_t   la, ls, lb;

    la = strlen(a);
    ls = strlen(sep);
    lb = strlen(b);

    p = malloc(la + ls + lb + 1);
    if (p == NULL) {
        return NULL;
    }

    memcpy(p, a, la);
    memcpy(p + la, sep, ls);
    memcpy(p + la + ls, b, lb + 1);

    return p;
}


/* prefix and id, the id percent-encoded but for its slashes */

static char *
kb_url_path(const char *prefix, const char *id)
{
    char                 *url, *p;
    size_t                len;
    const unsigned char  *c;

    static const char  hex[] = "0123456789ABCDEF";

    len = strlen(prefix);

    url = malloc(len + 3 * strlen(id) + 1);
    if (url == NULL) {
        return NULL;
    }

    memcpy(url, prefix, len);
    p = url + len;

    for (c = (const unsigned char *) id; *c != '\0'; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')
            || (*c >= '0' && *c <= '9') || strchr("-._~/", *c) != NULL)
        {
            *p++ = (char) *c;
            continue;
        }

        *p++ = '%';
        *p++ = hex[*c >> 4];
        *p++ = hex[*c & 0x0f];
    }

    *p = '\0';

    return url;
}
