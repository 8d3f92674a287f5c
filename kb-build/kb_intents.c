
/*
 * Copyright (C) ngx_support_agent authors
 *
 * kb-build intents: trains the intent router (src/sa_intent.h) on
 * labelled examples and writes its model file, the rules and routes
 * compiled in; kb-build route: classifies messages with a model exactly
 * as the module does, JSON Lines in, JSON Lines out.
 */


#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "kb_build.h"
#include "sa_intent.h"
#include "sa_json.h"
#include "sa_utf8.h"


#define KB_MAX_EXAMPLE_FILES  64


typedef struct {
    char      *text;
    size_t     len;
    char      *intent;            /* may be NULL for route */
    char      *id;                /* "_id" as JSON, or NULL */
    size_t     id_len;
} kb_msg_t;


typedef struct {
    kb_msg_t  *msgs;
    size_t     n;
    size_t     cap;
} kb_msgs_t;


/* one example's out-of-fold answer, for --threshold auto */
typedef struct {
    float      score;         /* the in-scope score */
    int        correct;       /* the right in-scope intent, if kept */
    int        oos_pred;      /* routed out of scope whatever the
                                 threshold */
    int        oos_label;     /* the example is out of scope */
} kb_heldout_t;


static int kb_read_messages(const char *file, FILE *f, int need_intent,
    kb_msgs_t *out);
static int kb_message_line(void *data, const char *file, long line,
    yajl_val root);
static void kb_msgs_free(kb_msgs_t *m);
static int kb_auto_threshold(const sa_intent_example_t *ex, size_t n,
    const sa_intent_conf_t *conf, unsigned folds, float oos_recall,
    float *threshold, char *how, size_t howlen);
static sa_intent_t *kb_heldout_model(const sa_intent_example_t *ex,
    size_t n, const sa_intent_conf_t *conf, char *err, size_t errlen);
static int kb_heldout_one(sa_intent_t *m, const sa_intent_example_t *ex,
    kb_heldout_t *h);
static int kb_float_cmp(const void *one, const void *two);
static int kb_lat_cmp(const void *one, const void *two);
static int kb_route_one(sa_intent_t *m, sa_jw_t *w, const kb_msg_t *msg,
    double *us);


/* one JSON Lines file of {"text" or "message", "intent"?, "_id"?} */

typedef struct {
    kb_msgs_t  *out;
    sa_jw_t    *w;
    int         need_intent;
} kb_msgs_reader_t;


static int
kb_read_messages(const char *file, FILE *f, int need_intent,
    kb_msgs_t *out)
{
    int               rc;
    kb_msgs_reader_t  rd;

    rd.out = out;
    rd.need_intent = need_intent;
    rd.w = sa_jw_new();

    if (rd.w == NULL) {
        kb_error("out of memory");
        return -1;
    }

    rc = kb_jsonl(file, f, kb_message_line, &rd, NULL);

    sa_jw_free(rd.w);

    return rc;
}


static int
kb_message_line(void *data, const char *file, long line, yajl_val root)
{
    yajl_val           v;
    kb_msg_t          *p;
    kb_msgs_t         *out;
    const char        *path[2], *buf;
    kb_msgs_reader_t  *rd = data;

    out = rd->out;
    path[1] = NULL;

    if (out->n == out->cap) {
        out->cap = out->cap ? out->cap * 2 : 1024;
        p = realloc(out->msgs, out->cap * sizeof(kb_msg_t));
        if (p == NULL) {
            kb_error("out of memory");
            return -1;
        }

        out->msgs = p;
    }

    p = &out->msgs[out->n++];
    memset(p, 0, sizeof(kb_msg_t));

    path[0] = "text";
    v = yajl_tree_get(root, path, yajl_t_string);

    if (v == NULL) {
        path[0] = "message";
        v = yajl_tree_get(root, path, yajl_t_string);
    }

    if (v != NULL) {
        p->len = strlen(v->u.string);
        p->text = strdup(v->u.string);
    }

    path[0] = "intent";
    v = yajl_tree_get(root, path, yajl_t_string);

    if (v != NULL) {
        p->intent = strdup(v->u.string);
    }

    /* the id is echoed as it came, string or number */
    path[0] = "_id";
    v = yajl_tree_get(root, path, yajl_t_any);

    if (v != NULL && (YAJL_IS_STRING(v) || YAJL_IS_NUMBER(v))) {
        sa_jw_reset(rd->w);
        if (sa_jw_tree(rd->w, v) == SA_OK) {
            buf = sa_jw_buf(rd->w, &p->id_len);
            p->id = strndup(buf, p->id_len);
        }
    }

    if (p->text == NULL || (rd->need_intent && p->intent == NULL)) {
        kb_error("%s:%ld: needs a \"text\" string%s", file, line,
                 rd->need_intent ? " and an \"intent\" string" : "");
        return -1;
    }

    return 0;
}


static void
kb_msgs_free(kb_msgs_t *m)
{
    size_t  i;

    for (i = 0; i < m->n; i++) {
        free(m->msgs[i].text);
        free(m->msgs[i].intent);
        free(m->msgs[i].id);
    }

    free(m->msgs);
}


static int
kb_float_cmp(const void *one, const void *two)
{
    float  a = *(const float *) one, b = *(const float *) two;

    return (a > b) - (a < b);
}


static int
kb_lat_cmp(const void *one, const void *two)
{
    double  a = *(const double *) one, b = *(const double *) two;

    return (a > b) - (a < b);
}


/*
 * --threshold auto: out-of-fold predictions (example i is in fold
 * i % folds) decide the threshold; the training set's own scores are
 * useless for this, the model has seen those examples and is sure of
 * them.  With out-of-scope examples (an intent routed out_of_scope) it
 * is the lowest threshold that sends oos_recall of them out of scope:
 * the most in-scope answers kept for the recall asked.  Without, it is
 * the highest threshold that loses at most 1% of the right held-out
 * answers.
 */

static int
kb_auto_threshold(const sa_intent_example_t *ex, size_t n,
    const sa_intent_conf_t *conf, unsigned folds, float oos_recall,
    float *threshold, char *how, size_t howlen)
{
    int                  rc;
    char                 err[512];
    size_t               i, f, nt, nin, noos, c, in_ok, oos_ok, need;
    float               *cands, t;
    kb_heldout_t        *h;
    sa_intent_t         *m;
    sa_intent_example_t *train;

    h = calloc(n, sizeof(kb_heldout_t));
    train = malloc(n * sizeof(sa_intent_example_t));
    cands = malloc((n + 1) * sizeof(float));

    if (h == NULL || train == NULL || cands == NULL) {
        free(h);
        free(train);
        free(cands);
        kb_error("out of memory");
        return -1;
    }

    rc = -1;

    for (f = 0; f < folds; f++) {
        nt = 0;

        for (i = 0; i < n; i++) {
            if (i % folds != f) {
                train[nt++] = ex[i];
            }
        }

        m = kb_heldout_model(train, nt, conf, err, sizeof(err));
        if (m == NULL) {
            kb_error("--threshold auto: %s", err);
            goto done;
        }

        for (i = f; i < n; i += folds) {
            if (kb_heldout_one(m, &ex[i], &h[i]) != 0) {
                sa_intent_close(m);
                kb_error("out of memory");
                goto done;
            }
        }

        sa_intent_close(m);
    }

    nin = 0;
    noos = 0;

    for (i = 0; i < n; i++) {
        noos += h[i].oos_label;
        nin += !h[i].oos_label;
    }

    c = 0;

    if (noos) {
        /* the out-of-scope examples the class alone misses, by score:
           the threshold is just above the last one the recall needs */
        oos_ok = 0;

        for (i = 0; i < n; i++) {
            if (h[i].oos_label && h[i].oos_pred) {
                oos_ok++;

            } else if (h[i].oos_label) {
                cands[c++] = h[i].score;
            }
        }

        need = (size_t) ceil(oos_recall * noos - 1e-6);
        t = 0;

        if (need > oos_ok) {
            qsort(cands, c, sizeof(float), kb_float_cmp);
            t = nextafterf(cands[need - oos_ok - 1], 2);
        }

    } else {
        /* the right answers by score: losing the lowest 1% */
        for (i = 0; i < n; i++) {
            if (h[i].correct) {
                cands[c++] = h[i].score;
            }
        }

        qsort(cands, c, sizeof(float), kb_float_cmp);
        t = c ? cands[c / 100] : 0;
    }

    in_ok = 0;
    oos_ok = 0;

    for (i = 0; i < n; i++) {
        if (h[i].oos_label) {
            oos_ok += (h[i].oos_pred || h[i].score < t);

        } else {
            in_ok += (h[i].correct && h[i].score >= t);
        }
    }

    *threshold = t > 1 ? 1 : t;

    if (noos) {
        snprintf(how, howlen, "%u-fold held-out: out-of-scope recall "
                 "%.4f, in-scope accuracy %.4f", folds,
                 (double) oos_ok / noos, nin ? (double) in_ok / nin : 0);

    } else {
        snprintf(how, howlen, "%u-fold held-out: in-scope accuracy %.4f",
                 folds, nin ? (double) in_ok / nin : 0);
    }

    rc = 0;

done:

    free(h);
    free(train);
    free(cands);

    return rc;
}


/* a model of one fold's training examples, classifying with no
   threshold */

static sa_intent_t *
kb_heldout_model(const sa_intent_example_t *ex, size_t n,
    const sa_intent_conf_t *conf, char *err, size_t errlen)
{
    sa_intent_t       *m;
    sa_intent_conf_t   fc;

    fc = *conf;
    fc.threshold = 0;

    if (sa_intent_train(ex, n, &fc, &m, err, errlen) != SA_OK) {
        return NULL;
    }

    return m;
}


static int
kb_heldout_one(sa_intent_t *m, const sa_intent_example_t *ex,
    kb_heldout_t *h)
{
    sa_route_e          route;
    sa_intent_result_t  r;

    if (sa_intent_classify(m, ex->text, ex->len, &r) != SA_OK) {
        return -1;
    }

    sa_intent_route(m, ex->intent, &route);

    h->score = r.in_scope;
    h->oos_label = (route == SA_ROUTE_OUT_OF_SCOPE);
    h->oos_pred = (r.route == SA_ROUTE_OUT_OF_SCOPE);
    h->correct = !h->oos_label && !h->oos_pred
                 && strcmp(r.intent, ex->intent) == 0;

    return 0;
}


int
kb_intents(int argc, char **argv)
{
    int                   i, quiet, rc;
    char                  err[512], how[128], *rules;
    long                  v;
    FILE                 *f;
    size_t                j, nfiles, rules_len;
    float                 oos_recall;
    double                t0, secs;
    unsigned              folds;
    kb_msgs_t             msgs;
    const char           *opt, *out, *files[KB_MAX_EXAMPLE_FILES],
                         *rules_file, *threshold;
    sa_intent_t          *m;
    sa_intent_conf_t      conf;
    sa_intent_info_t      info;
    sa_intent_example_t  *ex;

    sa_intent_conf_init(&conf);
    out = NULL;
    rules_file = NULL;
    threshold = NULL;
    nfiles = 0;
    quiet = 0;
    folds = 5;
    oos_recall = 0.9f;

    for (i = 1; i < argc; i++) {
        opt = argv[i];

        if (strcmp(opt, "--quiet") == 0) {
            quiet = 1;
            continue;
        }

        if (strcmp(opt, "--no-bigrams") == 0) {
            conf.features &= ~SA_INTENT_F_BIGRAMS;
            continue;
        }

        if (strcmp(opt, "--no-stems") == 0) {
            conf.features &= ~SA_INTENT_F_STEMS;
            continue;
        }

        if (i + 1 >= argc) {
            kb_usage("intents: %s needs a value", opt);
            return KB_EXIT_USAGE;
        }

        v = kb_number(argv[i + 1]);

        if (strcmp(opt, "--examples") == 0) {
            if (nfiles == KB_MAX_EXAMPLE_FILES) {
                kb_usage("intents: at most %d --examples",
                         KB_MAX_EXAMPLE_FILES);
                return KB_EXIT_USAGE;
            }

            files[nfiles++] = argv[++i];

        } else if (strcmp(opt, "--out") == 0) {
            out = argv[++i];

        } else if (strcmp(opt, "--rules") == 0) {
            rules_file = argv[++i];

        } else if (strcmp(opt, "--threshold") == 0) {
            threshold = argv[++i];

        } else if (strcmp(opt, "--folds") == 0 && v >= 2 && v <= 100) {
            folds = (unsigned) v;
            i++;

        } else if (strcmp(opt, "--epochs") == 0 && v >= 1 && v <= 1000) {
            conf.epochs = (unsigned) v;
            i++;

        } else if (strcmp(opt, "--seed") == 0 && v >= 0) {
            conf.seed = (uint32_t) v;
            i++;

        } else if (strcmp(opt, "--min-count") == 0 && v >= 1) {
            conf.min_count = (unsigned) v;
            i++;

        } else if (strcmp(opt, "--char-min") == 0 && v >= 0 && v <= 16) {
            conf.char_min = (unsigned) v;
            i++;

        } else if (strcmp(opt, "--char-max") == 0 && v >= 0 && v <= 16) {
            conf.char_max = (unsigned) v;
            i++;

        } else if (strcmp(opt, "--oos-recall") == 0) {
            oos_recall = strtof(argv[++i], &rules);

            if (*rules != '\0' || !(oos_recall > 0 && oos_recall <= 1)) {
                kb_usage("intents: --oos-recall is in (0, 1]");
                return KB_EXIT_USAGE;
            }

        } else if (strcmp(opt, "--rate") == 0) {
            conf.rate = strtof(argv[++i], NULL);

        } else if (strcmp(opt, "--word-weight") == 0) {
            conf.word_weight = strtof(argv[++i], NULL);

        } else if (strcmp(opt, "--l2") == 0) {
            conf.l2 = strtof(argv[++i], NULL);

        } else {
            kb_usage("intents: bad option or value \"%s %s\"", opt,
                     argv[i + 1]);
            return KB_EXIT_USAGE;
        }
    }

    if (out == NULL || nfiles == 0) {
        kb_usage("intents: --examples FILE and --out PATH are required");
        return KB_EXIT_USAGE;
    }

    if (!(conf.rate > 0 && conf.rate < 100) || !(conf.l2 >= 0 && conf.l2 < 1))
    {
        kb_usage("intents: --rate is in (0, 100), --l2 in [0, 1)");
        return KB_EXIT_USAGE;
    }

    if (threshold != NULL && strcmp(threshold, "auto") != 0) {
        conf.threshold = strtof(threshold, &rules);

        if (*rules != '\0' || !(conf.threshold >= 0
                                && conf.threshold <= 1))
        {
            kb_usage("intents: --threshold is 0..1 or auto");
            return KB_EXIT_USAGE;
        }
    }

    t0 = kb_now();

    rules = NULL;
    rules_len = 0;

    if (rules_file != NULL) {
        rules = kb_read_file(rules_file, &rules_len);
        if (rules == NULL) {
            kb_error("--rules \"%s\": %s", rules_file, strerror(errno));
            return KB_EXIT_FAIL;
        }

        conf.rules = rules;
        conf.rules_len = rules_len;
    }

    memset(&msgs, 0, sizeof(kb_msgs_t));
    rc = KB_EXIT_FAIL;
    ex = NULL;

    for (j = 0; j < nfiles; j++) {
        f = fopen(files[j], "rb");
        if (f == NULL) {
            kb_error("--examples \"%s\": %s", files[j], strerror(errno));
            goto done;
        }

        i = kb_read_messages(files[j], f, 1, &msgs);
        fclose(f);

        if (i != 0) {
            goto done;
        }
    }

    if (msgs.n == 0) {
        kb_error("no examples in the --examples files");
        goto done;
    }

    ex = malloc(msgs.n * sizeof(sa_intent_example_t));
    if (ex == NULL) {
        kb_error("out of memory");
        goto done;
    }

    for (j = 0; j < msgs.n; j++) {
        ex[j].text = msgs.msgs[j].text;
        ex[j].len = msgs.msgs[j].len;
        ex[j].intent = msgs.msgs[j].intent;
    }

    how[0] = '\0';

    if (threshold != NULL && strcmp(threshold, "auto") == 0) {
        if (kb_auto_threshold(ex, msgs.n, &conf, folds, oos_recall,
                              &conf.threshold, how, sizeof(how))
            != 0)
        {
            goto done;
        }
    }

    err[0] = '\0';

    if (sa_intent_train(ex, msgs.n, &conf, &m, err, sizeof(err)) != SA_OK) {
        kb_error("%s%s", rules_file && strncmp(err, "line", 4) == 0
                         ? "--rules: " : "", err);
        goto done;
    }

    if (sa_intent_write(m, out, err, sizeof(err)) != SA_OK) {
        kb_error("%s", err);
        sa_intent_close(m);
        goto done;
    }

    secs = kb_now() - t0;
    sa_intent_info(m, &info);

    if (!quiet) {
        printf("kb-build: wrote %s\n", out);
        printf("  examples   %zu\n", msgs.n);
        printf("  intents    %u\n", info.classes);
        printf("  features   %u\n", info.features);
        printf("  rules      %u\n", info.rules);
        printf("  threshold  %.4f%s%s%s\n", sa_intent_threshold(m),
               how[0] ? " (" : "", how, how[0] ? ")" : "");
        printf("  size       %.1f MB\n", info.size / 1048576.0);
        printf("  seconds    %.2f\n", secs);
    }

    sa_intent_close(m);
    rc = KB_EXIT_OK;

done:

    free(ex);
    free(rules);
    kb_msgs_free(&msgs);

    return rc;
}


/* one output line */

static int
kb_route_one(sa_intent_t *m, sa_jw_t *w, const kb_msg_t *msg, double *us)
{
    size_t              i, len;
    double              t0;
    const char         *buf;
    sa_intent_result_t  r;

    t0 = kb_now();

    if (sa_intent_classify(m, msg->text, msg->len, &r) != SA_OK) {
        kb_error("out of memory");
        return -1;
    }

    *us = (kb_now() - t0) * 1e6;

    sa_jw_reset(w);
    sa_jw_open(w);

    if (msg->id != NULL) {
        sa_jw_key(w, "_id");
        sa_jw_raw(w, msg->id, msg->id_len);
    }

    sa_jw_kstr(w, "intent", r.intent, strlen(r.intent));
    sa_jw_kstr(w, "route", r.route_name, strlen(r.route_name));
    sa_jw_kdouble(w, "confidence", r.confidence);
    sa_jw_kdouble(w, "in_scope", r.in_scope);

    if (r.rule != NULL) {
        sa_jw_kstr(w, "rule", r.rule, strlen(r.rule));
        sa_jw_kint(w, "rule_line", r.rule_line);
    }

    sa_jw_key(w, "top");
    sa_jw_array_open(w);

    for (i = 0; i < r.ntop; i++) {
        sa_jw_open(w);
        sa_jw_kstr(w, "intent", r.top[i].intent, strlen(r.top[i].intent));
        sa_jw_kdouble(w, "p", r.top[i].p);
        sa_jw_close(w);
    }

    sa_jw_array_close(w);

    if (msg->intent != NULL) {
        sa_jw_kstr(w, "expected", msg->intent, strlen(msg->intent));
    }

    sa_jw_close(w);

    buf = sa_jw_buf(w, &len);
    fwrite(buf, 1, len, stdout);
    fputc('\n', stdout);

    return 0;
}


int
kb_route(int argc, char **argv)
{
    int                 i, rc;
    char                err[512], *rules, *end;
    long                repeat, r;
    float               t;
    double             *lat, us, t0;
    sa_intent_result_t  res;
    size_t        j, nlat, rules_len;
    kb_msgs_t     msgs;
    sa_jw_t      *w;
    const char   *opt, *model, *rules_file, *threshold;
    sa_intent_t  *m;

    model = NULL;
    rules_file = NULL;
    threshold = NULL;
    repeat = 1;

    for (i = 1; i < argc; i++) {
        opt = argv[i];

        if (i + 1 >= argc) {
            kb_usage("route: %s needs a value", opt);
            return KB_EXIT_USAGE;
        }

        if (strcmp(opt, "--model") == 0) {
            model = argv[++i];

        } else if (strcmp(opt, "--rules") == 0) {
            rules_file = argv[++i];

        } else if (strcmp(opt, "--threshold") == 0) {
            threshold = argv[++i];

        } else if (strcmp(opt, "--repeat") == 0) {
            repeat = kb_number(argv[++i]);

        } else {
            kb_usage("route: unknown option \"%s\"", opt);
            return KB_EXIT_USAGE;
        }
    }

    if (model == NULL || repeat < 1 || repeat > 1000) {
        kb_usage("route: --model PATH is required; --repeat is 1..1000");
        return KB_EXIT_USAGE;
    }

    if (sa_intent_open(model, &m, err, sizeof(err)) != SA_OK) {
        kb_error("%s", err);
        return KB_EXIT_FAIL;
    }

    if (rules_file != NULL) {
        rules = kb_read_file(rules_file, &rules_len);
        if (rules == NULL) {
            kb_error("--rules \"%s\": %s", rules_file, strerror(errno));
            sa_intent_close(m);
            return KB_EXIT_FAIL;
        }

        rc = sa_intent_set_rules(m, rules, rules_len, err, sizeof(err));
        free(rules);

        if (rc != SA_OK) {
            kb_error("--rules \"%s\": %s", rules_file, err);
            sa_intent_close(m);
            return KB_EXIT_FAIL;
        }
    }

    if (threshold != NULL) {
        t = strtof(threshold, &end);

        if (*end != '\0' || !(t >= 0 && t <= 1)) {
            kb_usage("route: --threshold is 0..1");
            sa_intent_close(m);
            return KB_EXIT_USAGE;
        }

        sa_intent_set_threshold(m, t);
    }

    memset(&msgs, 0, sizeof(kb_msgs_t));
    rc = KB_EXIT_FAIL;
    lat = NULL;

    w = sa_jw_new();
    if (w == NULL || kb_read_messages("stdin", stdin, 0, &msgs) != 0) {
        goto done;
    }

    lat = malloc((msgs.n * repeat + 1) * sizeof(double));
    if (lat == NULL) {
        kb_error("out of memory");
        goto done;
    }

    nlat = 0;

    for (j = 0; j < msgs.n; j++) {
        if (kb_route_one(m, w, &msgs.msgs[j], &lat[nlat++]) != 0) {
            goto done;
        }
    }

    /* --repeat: more timings, the output once */
    for (r = 1; r < repeat; r++) {
        for (j = 0; j < msgs.n; j++) {
            t0 = kb_now();

            if (sa_intent_classify(m, msgs.msgs[j].text, msgs.msgs[j].len,
                                   &res)
                != SA_OK)
            {
                goto done;
            }

            us = (kb_now() - t0) * 1e6;
            lat[nlat++] = us;
        }
    }

    if (nlat) {
        qsort(lat, nlat, sizeof(double), kb_lat_cmp);
        fprintf(stderr, "kb-build: routed %zu messages: p50 %.1f us, "
                "p90 %.1f us, p99 %.1f us, max %.1f us\n", msgs.n,
                lat[nlat / 2], lat[nlat * 9 / 10], lat[nlat * 99 / 100],
                lat[nlat - 1]);
    }

    rc = KB_EXIT_OK;

done:

    free(lat);
    sa_jw_free(w);
    kb_msgs_free(&msgs);
    sa_intent_close(m);

    return rc;
}
