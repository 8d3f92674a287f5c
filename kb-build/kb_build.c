
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
#include "kb_embed.h"
#include "kb_http.h"
#include "kb_qdrant.h"
#include "sa_chunk.h"
#include "sa_json.h"
#include "sa_kb.h"
#include "sa_utf8.h"


#define KB_MAX_CHARS     1500
#define KB_OVERLAP       200
#define KB_PROGRESS_S    2.0
#define KB_EMBED_BATCH   32          /* TEI's max_client_batch_size */
#define KB_QDRANT_BATCH  64
#define KB_TIMEOUT       120         /* seconds per HTTP request */

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

    const char     *embed;           /* URL */
    const char     *embed_model;
    long            embed_dim;       /* 0: the model's */
    long            embed_batch;
    int             embed_int8;
    const char     *embed_key_env;
    int             embed_key_given;

    const char     *qdrant;          /* URL */
    const char     *collection;
    long            qdrant_batch;
    const char     *qdrant_key_env;
    int             qdrant_key_given;

    long            timeout;
    long            retries;
} kb_index_conf_t;

/* a document ready to be added: its records and chunks, and with --embed
   the texts to embed and their vectors */
typedef struct {
    kb_doc_t         *src;
    sa_kb_doc_t       doc;
    sa_doc_meta_t     meta;
    sa_chunk_t       *chunks;        /* markdown */
    size_t            n;
    char             *area;
    char             *url;
    char             *text;          /* jsonl: title "\n" text */
    sa_kb_wchunk_t   *wc;            /* n of them */
    char            **input;         /* prefix "\n" text; NULL: white
                                        space only, not embedded */
    float            *vec;           /* n * dim, once vectors came */
    size_t            next;          /* the next chunk to embed */
    size_t            todo;          /* chunks still waiting for one */
} kb_prep_t;

/* an index run: the writer, and with --embed the documents waiting for
   their vectors, in input order (chunk ids follow it) */
typedef struct {
    kb_index_conf_t  *conf;
    sa_kb_writer_t   *w;
    kb_embed_t       *embed;
    kb_prep_t       **queue;
    size_t            head;
    size_t            tail;
    size_t            cap;
    size_t            pending;       /* chunks in the queue to embed */
    const char      **texts;         /* a batch */
    size_t           *lens;
    kb_prep_t       **owner;
    size_t           *which;
} kb_run_t;


static int kb_index_run(kb_index_conf_t *conf);
static int kb_collect_markdown(const char *dir, kb_docs_t *docs);
static int kb_walk(const char *root, const char *rel, kb_paths_t *paths);
static int kb_paths_cmp(const void *one, const void *two);
static int kb_collect_jsonl(const char *file, kb_docs_t *docs);
static int kb_jsonl_doc(void *data, const char *file, long line,
    yajl_val root);
static char *kb_json_string(yajl_val root, const char *key);
static kb_doc_t *kb_docs_add(kb_docs_t *docs);
static void kb_docs_free(kb_docs_t *docs);
static void kb_doc_release(kb_doc_t *d);
static void kb_hash_doc(kb_doc_t *d, kb_index_conf_t *conf);
static int kb_index_options(int argc, char **argv, kb_index_conf_t *conf);
static int kb_index_check(kb_index_conf_t *conf);
static int kb_run_open(kb_run_t *run, char *model, size_t size);
static void kb_run_close(kb_run_t *run);
static int kb_run_doc(kb_run_t *run, kb_doc_t *d);
static int kb_run_embed(kb_run_t *run);
static int kb_run_flush(kb_run_t *run);
static kb_prep_t *kb_prepare_markdown(kb_doc_t *d, kb_index_conf_t *conf);
static kb_prep_t *kb_prepare_jsonl(kb_doc_t *d);
static int kb_prep_inputs(kb_prep_t *p);
static int kb_prep_add(sa_kb_writer_t *w, kb_prep_t *p);
static void kb_prep_free(kb_prep_t *p);
static void kb_index_report(kb_index_conf_t *conf, kb_run_t *run,
    sa_kb_writer_stats_t *st, kb_docs_t *docs, double secs);
static int kb_index_qdrant(kb_index_conf_t *conf);
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
    "                 [--embed URL [--embed-model NAME] [--embed-dim N]\n"
    "                  [--embed-batch N] [--embed-int8]"
    " [--embed-key-env VAR]]\n"
    "                 [--qdrant URL --collection NAME [--qdrant-batch N]\n"
    "                  [--qdrant-key-env VAR]]"
    " [--timeout S] [--retries N]\n"
    "  kb-build search --kb PATH --queries FILE.jsonl [--k 100]"
    " [--chunk-k N]\n"
    "                 [--tag NAME] [--k1 F --b F] [--repeat N]\n"
    "                 [--strategy plain|auto|long] [--long-words N]"
    " [--stop 0|1]\n"
    "                 [--rerank N] [--pairs F]\n"
    "                 [--reranker none|builtin [--candidates N]"
    " [--min-relevance F]]\n"
    "  kb-build stats --kb PATH\n"
    "  kb-build intents --examples FILE.jsonl [--examples FILE ...]"
    " --out PATH\n"
    "                 [--rules FILE] [--threshold F|auto [--folds N]"
    " [--oos-recall R]]\n"
    "                 [--epochs N]"
    " [--rate F] [--l2 F] [--seed N] [--min-count N]"
    " [--char-min N]\n"
    "                 [--char-max N] [--word-weight F] [--no-bigrams]"
    " [--no-stems]\n"
    "                 [--quiet]\n"
    "  kb-build route --model PATH [--rules FILE] [--threshold F]"
    " [--repeat N]\n"
    "                 < in.jsonl > out.jsonl\n";


/* --help: the usage, then what the index options of embeddings and Qdrant
   do (kb-build/README.md has the rest) */
static const char  kb_help_text[] =
    "\n"
    "index, embeddings:\n"
    "  --embed URL          embed each new or changed chunk (its title and\n"
    "                       headings, a newline, its text); a URL ending in\n"
    "                       /embed is TEI's native API, any other is\n"
    "                       OpenAI-compatible (/embeddings is added unless\n"
    "                       the URL ends with it)\n"
    "  --embed-model NAME   the model (required for OpenAI-compatible URLs);\n"
    "                       recorded in the KB, whose vectors are all redone\n"
    "                       when it, --embed-dim or --embed-int8 change\n"
    "  --embed-dim N        ask for N dimensions (\"dimensions\")\n"
    "  --embed-batch N      texts per request (32)\n"
    "  --embed-int8         store vectors as int8 with a scale (4x smaller)\n"
    "  --embed-key-env VAR  the bearer key's variable (OPENAI_API_KEY)\n"
    "index, Qdrant (after the KB file is written):\n"
    "  --qdrant URL         copy every chunk to Qdrant (http://host:6333)\n"
    "  --collection NAME    the collection, created when missing\n"
    "  --qdrant-batch N     points per upsert (64)\n"
    "  --qdrant-key-env VAR the api-key's variable (QDRANT_API_KEY)\n"
    "both:\n"
    "  --timeout S          seconds per HTTP request (120)\n"
    "  --retries N          retries of a request that failed for a network\n"
    "                       error, 408, 429 or 5xx, with backoff and\n"
    "                       retry-after (3)\n";


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

    if (strcmp(argv[1], "intents") == 0) {
        return kb_intents(argc - 1, argv + 1);
    }

    if (strcmp(argv[1], "route") == 0) {
        return kb_route(argc - 1, argv + 1);
    }

    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(kb_usage_text, stdout);
        fputs(kb_help_text, stdout);
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
    int              rc;
    kb_index_conf_t  conf;

    memset(&conf, 0, sizeof(kb_index_conf_t));
    conf.language = "english";
    conf.max_chars = KB_MAX_CHARS;
    conf.overlap = KB_OVERLAP;
    conf.embed_batch = KB_EMBED_BATCH;
    conf.embed_key_env = "OPENAI_API_KEY";
    conf.qdrant_batch = KB_QDRANT_BATCH;
    conf.qdrant_key_env = "QDRANT_API_KEY";
    conf.timeout = KB_TIMEOUT;
    conf.retries = KB_HTTP_RETRIES;

    rc = kb_index_options(argc, argv, &conf);
    if (rc != KB_EXIT_OK) {
        return rc;
    }

    rc = kb_index_check(&conf);
    if (rc != KB_EXIT_OK) {
        return rc;
    }

    rc = kb_index_run(&conf);
    if (rc != KB_EXIT_OK || conf.qdrant == NULL) {
        return rc;
    }

    /* the KB file is written and stays the module's fallback */

    return kb_index_qdrant(&conf);
}


static int
kb_index_options(int argc, char **argv, kb_index_conf_t *conf)
{
    int          i;
    const char  *opt, *v;

    for (i = 1; i < argc; i++) {
        opt = argv[i];

        if (strcmp(opt, "--rebuild") == 0) {
            conf->rebuild = 1;
            continue;
        }

        if (strcmp(opt, "--quiet") == 0) {
            conf->quiet = 1;
            continue;
        }

        if (strcmp(opt, "--embed-int8") == 0) {
            conf->embed_int8 = 1;
            continue;
        }

        if (i + 1 >= argc) {
            kb_usage("index: %s needs a value", opt);
            return KB_EXIT_USAGE;
        }

        v = argv[++i];

        if (strcmp(opt, "--out") == 0) {
            conf->out = v;

        } else if (strcmp(opt, "--markdown") == 0) {
            conf->markdown = v;

        } else if (strcmp(opt, "--jsonl") == 0) {
            conf->jsonl = v;

        } else if (strcmp(opt, "--language") == 0) {
            conf->language = v;

        } else if (strcmp(opt, "--max-chars") == 0) {
            conf->max_chars = kb_number(v);

        } else if (strcmp(opt, "--overlap") == 0) {
            conf->overlap = kb_number(v);

        } else if (strcmp(opt, "--embed") == 0) {
            conf->embed = v;

        } else if (strcmp(opt, "--embed-model") == 0) {
            conf->embed_model = v;

        } else if (strcmp(opt, "--embed-dim") == 0) {
            conf->embed_dim = kb_number(v);

        } else if (strcmp(opt, "--embed-batch") == 0) {
            conf->embed_batch = kb_number(v);

        } else if (strcmp(opt, "--embed-key-env") == 0) {
            conf->embed_key_env = v;
            conf->embed_key_given = 1;

        } else if (strcmp(opt, "--qdrant") == 0) {
            conf->qdrant = v;

        } else if (strcmp(opt, "--collection") == 0) {
            conf->collection = v;

        } else if (strcmp(opt, "--qdrant-batch") == 0) {
            conf->qdrant_batch = kb_number(v);

        } else if (strcmp(opt, "--qdrant-key-env") == 0) {
            conf->qdrant_key_env = v;
            conf->qdrant_key_given = 1;

        } else if (strcmp(opt, "--timeout") == 0) {
            conf->timeout = kb_number(v);

        } else if (strcmp(opt, "--retries") == 0) {
            conf->retries = kb_number(v);

        } else {
            kb_usage("index: unknown option \"%s\"", opt);
            return KB_EXIT_USAGE;
        }
    }

    return KB_EXIT_OK;
}


static int
kb_index_check(kb_index_conf_t *conf)
{
    size_t  len;

    if (conf->out == NULL) {
        kb_usage("index: --out PATH is required");
        return KB_EXIT_USAGE;
    }

    if (conf->markdown == NULL && conf->jsonl == NULL) {
        kb_usage("index: give --markdown DIR and/or --jsonl FILE");
        return KB_EXIT_USAGE;
    }

    if (strcmp(conf->language, "english") != 0
        && strcmp(conf->language, "simple") != 0)
    {
        kb_usage("index: --language is english or simple");
        return KB_EXIT_USAGE;
    }

    if (conf->max_chars < 0 || (conf->max_chars > 0 && conf->max_chars < 64)
        || conf->max_chars > 1000000)
    {
        kb_usage("index: --max-chars is 0 (no limit) or 64..1000000");
        return KB_EXIT_USAGE;
    }

    if (conf->overlap < 0 || conf->overlap > 1000000) {
        kb_usage("index: --overlap is 0..1000000");
        return KB_EXIT_USAGE;
    }

    if (conf->embed == NULL
        && (conf->embed_model != NULL || conf->embed_dim != 0
            || conf->embed_int8 || conf->embed_key_given))
    {
        kb_usage("index: --embed-* options need --embed URL");
        return KB_EXIT_USAGE;
    }

    if (conf->embed_dim < 0 || conf->embed_dim > 65536) {
        kb_usage("index: --embed-dim is 1..65536");
        return KB_EXIT_USAGE;
    }

    if (conf->embed_batch < 1 || conf->embed_batch > 2048) {
        kb_usage("index: --embed-batch is 1..2048");
        return KB_EXIT_USAGE;
    }

    if (conf->embed != NULL && conf->embed_model == NULL) {
        len = strlen(conf->embed);

        while (len > 0 && conf->embed[len - 1] == '/') {
            len--;
        }

        if (len < 6 || strncmp(conf->embed + len - 6, "/embed", 6) != 0) {
            kb_usage("index: --embed-model NAME is required for an "
                     "OpenAI-compatible --embed URL (TEI's /embed needs "
                     "none)");
            return KB_EXIT_USAGE;
        }
    }

    if ((conf->qdrant == NULL) != (conf->collection == NULL)) {
        kb_usage("index: --qdrant URL and --collection NAME go together");
        return KB_EXIT_USAGE;
    }

    if (conf->qdrant == NULL && (conf->qdrant_key_given
                                 || conf->qdrant_batch != KB_QDRANT_BATCH))
    {
        kb_usage("index: --qdrant-* options need --qdrant URL");
        return KB_EXIT_USAGE;
    }

    if (conf->collection != NULL
        && (conf->collection[0] == '\0' || strlen(conf->collection) > 255))
    {
        kb_usage("index: --collection is 1..255 bytes");
        return KB_EXIT_USAGE;
    }

    if (conf->qdrant_batch < 1 || conf->qdrant_batch > 10000) {
        kb_usage("index: --qdrant-batch is 1..10000");
        return KB_EXIT_USAGE;
    }

    if (conf->timeout < 1 || conf->timeout > 3600) {
        kb_usage("index: --timeout is 1..3600 seconds");
        return KB_EXIT_USAGE;
    }

    if (conf->retries < 0 || conf->retries > 20) {
        kb_usage("index: --retries is 0..20");
        return KB_EXIT_USAGE;
    }

    /* a key variable named on the command line must be there; the
       defaults may be absent (a local server wants no key) */

    if (conf->embed_key_given && kb_http_env_key(conf->embed_key_env) == NULL)
    {
        kb_usage("index: --embed-key-env: %s is not set",
                 conf->embed_key_env);
        return KB_EXIT_USAGE;
    }

    if (conf->qdrant_key_given
        && kb_http_env_key(conf->qdrant_key_env) == NULL)
    {
        kb_usage("index: --qdrant-key-env: %s is not set",
                 conf->qdrant_key_env);
        return KB_EXIT_USAGE;
    }

    return KB_EXIT_OK;
}


static int
kb_index_run(kb_index_conf_t *conf)
{
    int                    rc;
    char                   err[1024], model[512];
    double                 start, last, now;
    size_t                 i, needed, done;
    kb_run_t               run;
    kb_docs_t              docs;
    sa_kb_writer_conf_t    wconf;
    sa_kb_writer_stats_t   st;
    unsigned long          reqs, texts;
    double                 esecs;

    start = kb_now();
    memset(&docs, 0, sizeof(kb_docs_t));
    memset(&run, 0, sizeof(kb_run_t));
    run.conf = conf;

    if (conf->markdown != NULL
        && kb_collect_markdown(conf->markdown, &docs) != 0)
    {
        goto failed;
    }

    if (conf->jsonl != NULL && kb_collect_jsonl(conf->jsonl, &docs) != 0) {
        goto failed;
    }

    if (kb_run_open(&run, model, sizeof(model)) != 0) {
        goto failed;
    }

    memset(&wconf, 0, sizeof(sa_kb_writer_conf_t));
    wconf.language = conf->language;
    wconf.rebuild = conf->rebuild;
    wconf.max_chars = (uint32_t) conf->max_chars;
    wconf.overlap = (uint32_t) conf->overlap;

    if (run.embed != NULL) {
        wconf.embed_model = model;
        wconf.embed_dim = (uint32_t) conf->embed_dim;
        wconf.embed_int8 = conf->embed_int8;
    }

    rc = sa_kb_writer_open(&run.w, conf->out, &wconf, err, sizeof(err));
    if (rc != SA_OK) {
        kb_error("%s", err);
        run.w = NULL;
        goto failed;
    }

    /* which documents are new or changed */

    needed = 0;

    for (i = 0; i < docs.n; i++) {
        kb_hash_doc(&docs.docs[i], conf);

        rc = sa_kb_writer_check(run.w, docs.docs[i].id, docs.docs[i].hash);

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
            kb_error("%s: %s", docs.docs[i].source,
                     sa_kb_writer_error(run.w));
            goto failed;

        default:
            kb_error("%s", sa_kb_writer_error(run.w));
            goto failed;
        }
    }

    if (sa_kb_writer_prune(run.w) != SA_OK) {
        kb_error("%s", sa_kb_writer_error(run.w));
        goto failed;
    }

    last = kb_now();
    done = 0;

    for (i = 0; i < docs.n; i++) {
        if (!docs.docs[i].needed) {
            continue;
        }

        if (kb_run_doc(&run, &docs.docs[i]) != 0) {
            goto failed;
        }

        done++;

        now = kb_now();

        if (!conf->quiet && now - last >= KB_PROGRESS_S) {
            if (run.embed != NULL) {
                kb_embed_stats(run.embed, &reqs, &texts, &esecs);
                fprintf(stderr, "kb-build: %zu/%zu documents read, %lu "
                        "chunks embedded, %.1f s\n", done, needed, texts,
                        now - start);

            } else {
                fprintf(stderr, "kb-build: %zu/%zu documents indexed, "
                        "%.1f s\n", done, needed, now - start);
            }

            last = now;
        }
    }

    /* the last, partial batch of embeddings */

    while (run.pending > 0) {
        if (kb_run_embed(&run) != 0) {
            goto failed;
        }
    }

    if (kb_run_flush(&run) != 0) {
        goto failed;
    }

    rc = sa_kb_writer_finish(run.w, &st, err, sizeof(err));
    run.w = NULL;

    if (rc != SA_OK) {
        kb_error("%s", err);
        goto failed;
    }

    kb_index_report(conf, &run, &st, &docs, kb_now() - start);

    kb_run_close(&run);
    kb_docs_free(&docs);

    return KB_EXIT_OK;

failed:

    sa_kb_writer_abort(run.w);
    run.w = NULL;
    kb_run_close(&run);
    kb_docs_free(&docs);

    return KB_EXIT_FAIL;
}


static void
kb_index_report(kb_index_conf_t *conf, kb_run_t *run,
    sa_kb_writer_stats_t *st, kb_docs_t *docs, double secs)
{
    double         esecs;
    unsigned long  reqs, texts;

    if (st->kept) {
        printf("kb-build: %s is up to date, left as it was\n", conf->out);

    } else {
        printf("kb-build: wrote %s (%s%s)\n", conf->out,
               st->incremental ? "incremental" : "full build: ",
               st->incremental ? "" : st->reason);
    }

    printf("  documents  %u (new %u, changed %u, unchanged %u, removed %u)\n",
           st->docs, st->added, st->changed, st->unchanged, st->removed);
    printf("  chunks     %u (new %u, removed %u, duplicates skipped %u, "
           "relinked %u)\n", st->chunks, st->chunks_added,
           st->chunks_removed, st->duplicates, st->relinked);
    printf("  terms      %u distinct, %llu indexed\n", st->terms,
           (unsigned long long) st->tokens);

    if (run->embed != NULL) {
        kb_embed_stats(run->embed, &reqs, &texts, &esecs);
        printf("  embedded   %lu chunks in %lu requests, %.2f s (%u "
               "dimensions, %s; %u vectors in the KB)\n", texts, reqs, esecs,
               st->dim, conf->embed_int8 ? "int8" : "float32", st->vectors);
    }

    printf("  size       %.1f MB (input read %.1f MB)\n",
           (double) st->bytes / 1e6, (double) docs->bytes / 1e6);
    printf("  seconds    %.2f (%.0f docs/s, %.1f MB/s)\n", secs,
           secs > 0 ? (double) docs->n / secs : 0,
           secs > 0 ? (double) docs->bytes / 1e6 / secs : 0);

    fflush(stdout);
}


/* the embedding client and the batch arrays; model gets the name the KB
   records (--embed-model, else TEI's URL) */

static int
kb_run_open(kb_run_t *run, char *model, size_t size)
{
    char              err[512];
    size_t            batch;
    kb_embed_conf_t   ec;
    kb_index_conf_t  *conf;

    conf = run->conf;

    if (conf->embed == NULL) {
        return 0;
    }

    memset(&ec, 0, sizeof(kb_embed_conf_t));
    ec.url = conf->embed;
    ec.model = conf->embed_model;
    ec.dim = (uint32_t) conf->embed_dim;
    ec.key = kb_http_env_key(conf->embed_key_env);
    ec.timeout = conf->timeout;
    ec.retries = (int) conf->retries;

    run->embed = kb_embed_new(&ec, err, sizeof(err));
    if (run->embed == NULL) {
        kb_error("%s", err);
        return -1;
    }

    snprintf(model, size, "%s", conf->embed_model ? conf->embed_model
                                                  : kb_embed_url(run->embed));

    batch = (size_t) conf->embed_batch;

    run->texts = malloc(batch * sizeof(const char *));
    run->lens = malloc(batch * sizeof(size_t));
    run->owner = malloc(batch * sizeof(kb_prep_t *));
    run->which = malloc(batch * sizeof(size_t));

    if (run->texts == NULL || run->lens == NULL || run->owner == NULL
        || run->which == NULL)
    {
        kb_error("out of memory");
        return -1;
    }

    return 0;
}


static void
kb_run_close(kb_run_t *run)
{
    size_t  i;

    for (i = run->head; i < run->tail; i++) {
        kb_prep_free(run->queue[i]);
    }

    free(run->queue);
    free(run->texts);
    free(run->lens);
    free(run->owner);
    free(run->which);
    kb_embed_free(run->embed);
    sa_kb_writer_abort(run->w);

    memset(run, 0, sizeof(kb_run_t));
}


/*
 * A document to add.  Without --embed it is added at once.  With it, it
 * waits in the queue until its chunks have their vectors: batches are
 * full, across documents, and documents are added in input order.
 */

static int
kb_run_doc(kb_run_t *run, kb_doc_t *d)
{
    int         rc;
    size_t      cap;
    kb_prep_t  *p, **q;

    p = (d->kind == 1) ? kb_prepare_markdown(d, run->conf)
                       : kb_prepare_jsonl(d);
    if (p == NULL) {
        return -1;
    }

    if (run->embed == NULL) {
        rc = kb_prep_add(run->w, p);
        kb_prep_free(p);
        return rc;
    }

    if (kb_prep_inputs(p) != 0) {
        kb_prep_free(p);
        kb_error("out of memory");
        return -1;
    }

    if (run->tail == run->cap) {
        if (run->head > 0) {
            memmove(run->queue, run->queue + run->head,
                    (run->tail - run->head) * sizeof(kb_prep_t *));
            run->tail -= run->head;
            run->head = 0;
        }

        if (run->tail == run->cap) {
            cap = run->cap ? run->cap * 2 : 64;

            q = realloc(run->queue, cap * sizeof(kb_prep_t *));
            if (q == NULL) {
                kb_prep_free(p);
                kb_error("out of memory");
                return -1;
            }

            run->queue = q;
            run->cap = cap;
        }
    }

    run->queue[run->tail++] = p;
    run->pending += p->todo;

    while (run->pending >= (size_t) run->conf->embed_batch) {
        if (kb_run_embed(run) != 0) {
            return -1;
        }
    }

    return kb_run_flush(run);
}


/* one request: the next chunks without vectors, in queue order */

static int
kb_run_embed(kb_run_t *run)
{
    float        *v;
    size_t        i, j, n, dim, batch;
    kb_prep_t    *p;
    const float  *vecs;

    batch = (size_t) run->conf->embed_batch;
    n = 0;

    for (i = run->head; i < run->tail && n < batch; i++) {
        p = run->queue[i];

        while (p->next < p->n && n < batch) {
            j = p->next++;

            if (p->input[j] == NULL) {
                continue;
            }

            run->texts[n] = p->input[j];
            run->lens[n] = strlen(p->input[j]);
            run->owner[n] = p;
            run->which[n++] = j;
        }
    }

    if (n == 0) {
        run->pending = 0;
        return 0;
    }

    vecs = kb_embed(run->embed, run->texts, run->lens, n);
    if (vecs == NULL) {
        kb_error("--embed: %s", kb_embed_error(run->embed));
        return -1;
    }

    dim = kb_embed_dim(run->embed);

    /* the first answer tells the dimension; an incremental build's must
       be the KB's */

    if (sa_kb_writer_embed_dim(run->w, (uint32_t) dim) != SA_OK) {
        kb_error("--embed %s: %s", kb_embed_url(run->embed),
                 sa_kb_writer_error(run->w));
        return -1;
    }

    for (i = 0; i < n; i++) {
        p = run->owner[i];

        if (p->vec == NULL) {
            p->vec = malloc(p->n * dim * sizeof(float));
            if (p->vec == NULL) {
                kb_error("out of memory");
                return -1;
            }
        }

        v = p->vec + run->which[i] * dim;
        memcpy(v, vecs + i * dim, dim * sizeof(float));
        p->wc[run->which[i]].vector = v;
        p->todo--;
    }

    run->pending -= n;

    return 0;
}


/* the documents at the head of the queue whose vectors are all there */

static int
kb_run_flush(kb_run_t *run)
{
    int         rc;
    kb_prep_t  *p;

    while (run->head < run->tail && run->queue[run->head]->todo == 0) {
        p = run->queue[run->head++];

        rc = kb_prep_add(run->w, p);
        kb_prep_free(p);

        if (rc != 0) {
            return -1;
        }
    }

    if (run->head == run->tail) {
        run->head = 0;
        run->tail = 0;
    }

    return 0;
}


/* --qdrant: the KB just written, copied into the collection */

static int
kb_index_qdrant(kb_index_conf_t *conf)
{
    char               safe[512];
    kb_qdrant_conf_t   qc;
    kb_qdrant_stats_t  st;

    memset(&qc, 0, sizeof(kb_qdrant_conf_t));
    qc.url = conf->qdrant;
    qc.collection = conf->collection;
    qc.key = kb_http_env_key(conf->qdrant_key_env);
    qc.batch = (size_t) conf->qdrant_batch;
    qc.timeout = conf->timeout;
    qc.retries = (int) conf->retries;
    qc.quiet = conf->quiet;

    kb_http_safe_url(conf->qdrant, safe, sizeof(safe));

    if (kb_qdrant_sync(&qc, conf->out, &st) != 0) {
        kb_error("%s was written, but not copied to Qdrant (%s, collection "
                 "\"%s\"): run again to retry", conf->out, safe,
                 conf->collection);
        return KB_EXIT_FAIL;
    }

    printf("  qdrant     %lu points (%lu with dense vectors) in \"%s\" at "
           "%s%s, %lu payload indexes made, %lu requests, %.2f s\n",
           st.points, st.dense, conf->collection, safe,
           st.created ? " (created)" : "", st.indexes, st.requests,
           st.seconds);

    return KB_EXIT_OK;
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
    int    rc;
    FILE  *f;

    f = fopen(file, "rb");
    if (f == NULL) {
        kb_error("--jsonl \"%s\": %s", file, strerror(errno));
        return -1;
    }

    rc = kb_jsonl(file, f, kb_jsonl_doc, docs, &docs->bytes);

    fclose(f);

    return rc;
}


/*
 * JSON Lines, as every command reads them: blank lines are skipped; a line
 * that is not UTF-8 or not JSON is an error naming the file and the line.
 */

int
kb_jsonl(const char *file, FILE *f, kb_jsonl_pt handler, void *data,
    size_t *bytes)
{
    int        rc;
    char      *line, err[256];
    long       n;
    size_t     cap, j;
    ssize_t    len;
    yajl_val   root;

    line = NULL;
    cap = 0;
    n = 0;
    rc = 0;

    while ((len = getline(&line, &cap, f)) != -1) {
        n++;

        if (bytes != NULL) {
            *bytes += (size_t) len;
        }

        for (j = 0; j < (size_t) len; j++) {
            if (line[j] != ' ' && line[j] != '\t' && line[j] != '\r'
                && line[j] != '\n')
            {
                break;
            }
        }

        if (j == (size_t) len) {
            continue;
        }

        if (!sa_utf8_valid((unsigned char *) line, (size_t) len)) {
            kb_error("%s:%ld: not valid UTF-8", file, n);
            rc = -1;
            break;
        }

        root = sa_json_tree_parse(line, (size_t) len, err, sizeof(err));
        if (root == NULL) {
            kb_error("%s:%ld: invalid JSON: %s", file, n, err);
            rc = -1;
            break;
        }

        rc = handler(data, file, n, root);

        yajl_tree_free(root);

        if (rc != 0) {
            break;
        }
    }

    if (rc == 0 && ferror(f)) {
        kb_error("%s: %s", file, strerror(errno));
        rc = -1;
    }

    free(line);

    return rc;
}


/* one line of BEIR's corpus.jsonl: {"_id", "title", "text", "metadata"} */

static int
kb_jsonl_doc(void *data, const char *file, long line, yajl_val root)
{
    int          i;
    char         num[32], src[64], *updated;
    yajl_val     v;
    kb_doc_t    *d;
    kb_docs_t   *docs;
    const char  *path[3];

    docs = data;

    if (!YAJL_IS_OBJECT(root)) {
        kb_error("%s:%ld: not a JSON object", file, line);
        return -1;
    }

    d = kb_docs_add(docs);
    if (d == NULL) {
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
        snprintf(num, sizeof(num), "%lld", YAJL_GET_INTEGER(v));
        d->id = strdup(num);

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

    return 0;

nomem:

    kb_error("out of memory");

failed:

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


static kb_prep_t *
kb_prepare_markdown(kb_doc_t *d, kb_index_conf_t *conf)
{
    int          rc;
    char        *prefix, *slash;
    size_t       i;
    kb_prep_t   *p;

    p = calloc(1, sizeof(kb_prep_t));
    if (p == NULL) {
        kb_error("out of memory");
        return NULL;
    }

    p->src = d;

    rc = sa_chunk_markdown(d->data, d->len, (size_t) conf->max_chars,
                           (size_t) conf->overlap, &p->meta, &p->chunks,
                           &p->n);
    if (rc != SA_OK) {
        kb_error("%s: %s", d->source,
                 rc == SA_INVALID ? "not valid UTF-8 or has NUL bytes"
                                  : "out of memory chunking it");
        kb_prep_free(p);
        return NULL;
    }

    p->doc.id = d->id;
    p->doc.kind = 1;
    p->doc.source = d->source;
    memcpy(p->doc.hash, d->hash, SA_KB_HASH_SIZE);
    p->doc.updated_ms = p->meta.updated_ms;

    /* the title: front matter, first "# " heading, else the file name */

    slash = strrchr(d->id, '/');
    p->doc.title = p->meta.title ? p->meta.title
                                 : (slash ? slash + 1 : d->id);

    /* "billing/refunds" is in product area "billing" */

    if (p->meta.product_area != NULL) {
        p->doc.product_area = p->meta.product_area;

    } else if ((slash = strchr(d->id, '/')) != NULL) {
        p->area = strndup(d->id, (size_t) (slash - d->id));
        if (p->area == NULL) {
            goto nomem;
        }

        p->doc.product_area = p->area;
    }

    if (p->meta.url != NULL) {
        p->doc.url = p->meta.url;

    } else {
        p->url = kb_url_path("/help/", d->id);
        if (p->url == NULL) {
            goto nomem;
        }

        p->doc.url = p->url;
    }

    p->doc.doc_type = p->meta.doc_type ? p->meta.doc_type : "article";
    p->doc.version = p->meta.version;
    p->doc.tier = p->meta.tier;
    p->doc.region = p->meta.region;

    /* each chunk is indexed with its title and headings before it */

    p->wc = calloc(p->n + 1, sizeof(sa_kb_wchunk_t));
    if (p->wc == NULL) {
        goto nomem;
    }

    for (i = 0; i < p->n; i++) {
        p->wc[i].section = p->chunks[i].section;
        p->wc[i].anchor = p->chunks[i].anchor;
        p->wc[i].text = p->chunks[i].text;
        p->wc[i].text_len = p->chunks[i].text_len;

        if (p->chunks[i].section[0] == '\0'
            || strcmp(p->chunks[i].section, p->doc.title) == 0)
        {
            prefix = strdup(p->doc.title);

        } else {
            prefix = kb_concat(p->doc.title, "\n", p->chunks[i].section);
        }

        if (prefix == NULL) {
            goto nomem;
        }

        p->wc[i].prefix = prefix;
        p->wc[i].prefix_len = strlen(prefix);
    }

    return p;

nomem:

    kb_error("out of memory");
    kb_prep_free(p);

    return NULL;
}


/* a BEIR document is one chunk: title and text, as Anserini's flat
   "contents" field */

static kb_prep_t *
kb_prepare_jsonl(kb_doc_t *d)
{
    kb_prep_t  *p;

    p = calloc(1, sizeof(kb_prep_t));
    if (p == NULL) {
        kb_error("out of memory");
        return NULL;
    }

    p->src = d;
    p->n = 1;

    p->text = (d->title[0] != '\0') ? kb_concat(d->title, "\n", d->data)
                                    : strdup(d->data);
    p->wc = calloc(1, sizeof(sa_kb_wchunk_t));

    if (p->text == NULL || p->wc == NULL) {
        kb_error("out of memory");
        kb_prep_free(p);
        return NULL;
    }

    p->doc.id = d->id;
    p->doc.kind = 2;
    p->doc.source = d->source;
    p->doc.title = d->title;
    p->doc.url = d->meta[KB_M_URL];
    p->doc.product_area = d->meta[KB_M_PRODUCT_AREA];
    p->doc.doc_type = d->meta[KB_M_DOC_TYPE];
    p->doc.version = d->meta[KB_M_VERSION];
    p->doc.tier = d->meta[KB_M_TIER];
    p->doc.region = d->meta[KB_M_REGION];
    p->doc.updated_ms = d->updated_ms;
    memcpy(p->doc.hash, d->hash, SA_KB_HASH_SIZE);

    p->wc[0].text = p->text;
    p->wc[0].text_len = strlen(p->text);

    return p;
}


/*
 * What is embedded for each chunk: what BM25 indexes, the prefix (title
 * and headings), a newline, the text.  Chunks of only white space are
 * not stored, so they are not embedded.
 */

static int
kb_prep_inputs(kb_prep_t *p)
{
    size_t           i, j;
    sa_kb_wchunk_t  *c;

    p->input = calloc(p->n + 1, sizeof(char *));
    if (p->input == NULL) {
        return -1;
    }

    for (i = 0; i < p->n; i++) {
        c = &p->wc[i];

        for (j = 0; j < c->text_len; j++) {
            if (strchr(" \t\r\n", c->text[j]) == NULL) {
                break;
            }
        }

        if (j == c->text_len) {
            continue;
        }

        p->input[i] = malloc(c->prefix_len + 1 + c->text_len + 1);
        if (p->input[i] == NULL) {
            return -1;
        }

        j = 0;

        if (c->prefix_len > 0) {
            memcpy(p->input[i], c->prefix, c->prefix_len);
            p->input[i][c->prefix_len] = '\n';
            j = c->prefix_len + 1;
        }

        memcpy(p->input[i] + j, c->text, c->text_len);
        p->input[i][j + c->text_len] = '\0';

        p->todo++;
    }

    return 0;
}


static int
kb_prep_add(sa_kb_writer_t *w, kb_prep_t *p)
{
    int  rc;

    rc = sa_kb_writer_add(w, &p->doc, p->wc, p->n);
    if (rc != SA_OK) {
        kb_error("%s: %s", p->src->source, sa_kb_writer_error(w));
        return -1;
    }

    /* its text is in the KB now */

    kb_doc_release(p->src);

    return 0;
}


static void
kb_prep_free(kb_prep_t *p)
{
    size_t  i;

    if (p == NULL) {
        return;
    }

    if (p->src != NULL && p->src->kind == 1 && p->wc != NULL) {
        for (i = 0; i < p->n; i++) {
            free((char *) p->wc[i].prefix);
        }
    }

    if (p->input != NULL) {
        for (i = 0; i < p->n; i++) {
            free(p->input[i]);
        }
    }

    free(p->input);
    free(p->vec);
    free(p->wc);
    free(p->text);
    free(p->area);
    free(p->url);
    sa_chunks_free(p->chunks, p->n);
    sa_doc_meta_free(&p->meta);
    free(p);
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
