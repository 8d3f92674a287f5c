
/*
 * Copyright (C) ngx_support_agent authors
 *
 * sa_intent: determinism, a small separable set, rules and their
 * priorities, '|' alternatives, routes, the threshold, out-of-scope
 * classes and the in-scope score, intents' own thresholds, the file
 * round trip (format 1 files too), damaged and truncated files, and odd
 * messages.
 */


#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tap.h"
#include "sa_intent.h"


static const char  *texts[][2] = {
    { "where is my order", "track_order" },
    { "track my package please", "track_order" },
    { "has my parcel shipped yet", "track_order" },
    { "when will my order arrive", "track_order" },
    { "i want my money back", "get_refund" },
    { "refund my purchase please", "get_refund" },
    { "can i get a refund for this", "get_refund" },
    { "give me back my money", "get_refund" },
    { "cancel my order", "cancel_order" },
    { "i want to cancel the purchase", "cancel_order" },
    { "please cancel order 12345", "cancel_order" },
    { "stop my order from being sent, cancel it", "cancel_order" },
};

#define NTEXTS  (sizeof(texts) / sizeof(texts[0]))


static const char  rules[] =
    "# test rules\n"
    "rule 10 contact_human_agent speak + human\n"
    "rule 50 fraud fraud   # a comment\n"
    "rule 50 legal_threat lawyer\n"
    "rule 20 get_refund \"money back\" + !never\n"
    "route contact_human_agent escalate\n"
    "route fraud escalate\n"
    "route track_order action:track_order\n"
    "route get_refund action:refund\n"
    "default knowledge\n"
    "threshold 0.2\n";


static sa_intent_t *
train(const char *r, float threshold)
{
    char                 err[256];
    size_t               i;
    sa_intent_t         *m;
    sa_intent_conf_t     conf;
    sa_intent_example_t  ex[NTEXTS];

    for (i = 0; i < NTEXTS; i++) {
        ex[i].text = texts[i][0];
        ex[i].len = strlen(texts[i][0]);
        ex[i].intent = texts[i][1];
    }

    sa_intent_conf_init(&conf);
    conf.epochs = 30;
    conf.threshold = threshold;
    conf.rules = r;
    conf.rules_len = r ? strlen(r) : 0;

    err[0] = '\0';
    if (sa_intent_train(ex, NTEXTS, &conf, &m, err, sizeof(err)) != SA_OK) {
        printf("# train: %s\n", err);
        return NULL;
    }

    return m;
}


static char *
slurp(const char *path, size_t *len)
{
    FILE  *f;
    char  *buf;
    long   n;

    f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }

    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc(n + 1);
    if (buf != NULL && fread(buf, 1, n, f) != (size_t) n) {
        free(buf);
        buf = NULL;
    }

    fclose(f);
    *len = (size_t) n;

    return buf;
}


static const char *
classify(sa_intent_t *m, const char *text, sa_intent_result_t *r)
{
    if (sa_intent_classify(m, text, strlen(text), r) != SA_OK) {
        return "(error)";
    }

    return r->intent;
}


static void
test_separable(void)
{
    sa_intent_t         *m;
    sa_intent_info_t     info;
    sa_intent_result_t   r;

    m = train(NULL, 0);
    ok(m != NULL, "trains");
    if (m == NULL) {
        return;
    }

    sa_intent_info(m, &info);
    is_int(info.classes, 3, "three intents");
    is_str(sa_intent_name(m, 0), "cancel_order", "names in byte order");
    ok(sa_intent_name(m, 3) == NULL, "no fourth name");

    is_str(classify(m, "where is my parcel", &r), "track_order", "track");
    ok(r.confidence > 0.5 && r.confidence <= 1, "confident (%f)",
       r.confidence);
    is_int(r.ntop, 3, "top 3");
    ok(r.top[0].p >= r.top[1].p && r.top[1].p >= r.top[2].p,
       "top is sorted");
    ok(fabsf(r.top[0].p + r.top[1].p + r.top[2].p - 1) < 1e-4,
       "probabilities sum to 1");
    is_str(classify(m, "I want a refund", &r), "get_refund", "refund");
    is_str(classify(m, "please cancel order 98765", &r), "cancel_order",
           "cancel, another number");
    is_str(r.route_name, "knowledge", "default route without rules");
    ok(r.rule == NULL, "no rule");

    sa_intent_close(m);
}


static void
test_determinism(void)
{
    int           same;
    char         *a, *b, err[256];
    size_t        la, lb;
    sa_intent_t  *m1, *m2;

    m1 = train(rules, -1);
    m2 = train(rules, -1);

    ok(m1 && m2, "trained twice");
    if (m1 == NULL || m2 == NULL) {
        sa_intent_close(m1);
        sa_intent_close(m2);
        return;
    }

    ok(sa_intent_write(m1, "/tmp/test_intent_a.model", err, sizeof(err))
       == SA_OK, "write a");
    ok(sa_intent_write(m2, "/tmp/test_intent_b.model", err, sizeof(err))
       == SA_OK, "write b");
    ok(access("/tmp/test_intent_a.model.tmp", F_OK) != 0,
       "no .tmp left behind");

    a = slurp("/tmp/test_intent_a.model", &la);
    b = slurp("/tmp/test_intent_b.model", &lb);
    same = a && b && la == lb && memcmp(a, b, la) == 0;
    ok(same, "identical bytes (%zu)", la);

    free(a);
    free(b);
    sa_intent_close(m1);
    sa_intent_close(m2);
    unlink("/tmp/test_intent_b.model");
}


static int
set_rules(sa_intent_t *m, const char *text, char *err, size_t errlen)
{
    return sa_intent_set_rules(m, text, strlen(text), err, errlen);
}


static void
test_rules(void)
{
    char                 err[256];
    sa_intent_t         *m;
    sa_intent_result_t   r;

    m = train(rules, -1);
    if (m == NULL) {
        ok(0, "trained with rules");
        return;
    }

    ok(fabsf(sa_intent_threshold(m) - 0.2f) < 1e-6,
       "the rules file's threshold");

    is_str(classify(m, "Can I SPEAK to a Human?", &r),
           "contact_human_agent", "rule: speak + human");
    is_str(r.route_name, "escalate", "its route");
    is_str(r.rule, "speak + human", "the pattern");
    is_int(r.rule_line, 2, "its line");
    ok(r.confidence == 1, "confidence 1");
    ok(r.index == -1, "not a model class");
    is_str(r.top[0].intent != NULL ? "yes" : "no", "yes",
           "the model's top is still there");

    is_str(classify(m, "humans, I'd like speaking with one", &r),
           "contact_human_agent", "stems and any order of parts");
    is_str(classify(m, "my order is fraud, speak to a human", &r),
           "fraud", "priority 50 beats 10");
    is_str(classify(m, "a lawyer will hear about this fraud", &r),
           "fraud", "equal priority: the earlier line");
    is_str(classify(m, "I want my money back", &r), "get_refund",
           "phrase rule");
    ok(r.rule != NULL && r.index >= 0, "a rule naming a model class");
    is_str(r.route_name, "action:refund", "action route");
    is_str(r.tool, "refund", "its tool");
    is_str(classify(m, "money back? never mind", &r), "get_refund",
           "a negated part stops the rule...");
    ok(r.rule == NULL, "...and the model decides");
    classify(m, "back money", &r);
    ok(r.rule == NULL, "phrases are ordered");

    is_str(classify(m, "where is my order", &r), "track_order", "model");
    is_str(r.route_name, "action:track_order", "routed");

    /* replacing the rules */
    ok(set_rules(m, "rule 1 x where\nroute x smalltalk\n", err,
                 sizeof(err)) == SA_OK, "set rules");
    is_str(classify(m, "where is my order", &r), "x", "new rule");
    is_str(r.route_name, "smalltalk", "new route");
    classify(m, "speak to a human", &r);
    ok(r.rule == NULL, "old rules gone");

    ok(set_rules(m, "rule x y z\n", err, sizeof(err))
       == SA_INVALID, "bad priority refused: %s", err);
    ok(strstr(err, "line 1") != NULL, "error names the line");
    ok(set_rules(m, "route a nowhere\n", err, sizeof(err))
       == SA_INVALID, "bad target refused: %s", err);
    ok(set_rules(m, "rule 1 a the + to\n", err, sizeof(err))
       == SA_INVALID, "stop words only refused: %s", err);
    ok(set_rules(m, "rule 1 a !foo\n", err, sizeof(err))
       == SA_INVALID, "only negated refused: %s", err);
    ok(set_rules(m, "route a escalate\nroute a knowledge\n", err, sizeof(err))
       == SA_INVALID, "a second route refused: %s", err);
    ok(set_rules(m, "frobnicate\n", err, sizeof(err))
       == SA_INVALID, "unknown statement refused: %s", err);
    ok(set_rules(m, "route out_of_scope knowledge\n", err, sizeof(err))
       == SA_INVALID, "out_of_scope keeps its route: %s", err);
    ok(set_rules(m, "threshold 2\n", err, sizeof(err))
       == SA_INVALID, "threshold out of range refused");
    is_str(classify(m, "where is my order", &r), "track_order",
           "after a failed set no rules stay");

    sa_intent_close(m);
}


static void
test_alternatives(void)
{
    char                 err[256];
    sa_intent_t         *m;
    sa_intent_result_t   r;

    m = train(NULL, 0);
    if (m == NULL) {
        ok(0, "trained");
        return;
    }

    err[0] = '\0';
    ok(set_rules(m, "rule 5 h speak|talk + human|real person + !am i|"
                 "you human\nrule 4 x \"money back\" | refund\n", err,
                 sizeof(err)) == SA_OK, "alternatives parse: %s", err);
    is_str(classify(m, "Let me talk to a real person", &r), "h",
           "talk + real person");
    is_str(r.rule, "speak|talk + human|real person + !am i|you human",
           "the pattern as written");
    is_str(classify(m, "speaking with humans, please", &r), "h",
           "speak + human");
    classify(m, "am I talking to a human?", &r);
    ok(r.rule == NULL, "a negated alternative stops it");
    classify(m, "are you human? talk to me", &r);
    ok(r.rule == NULL, "the other negated alternative too");
    classify(m, "talk about a person", &r);
    ok(r.rule == NULL, "a phrase is consecutive terms: person is not "
       "real person");
    is_str(classify(m, "a refund please", &r), "x", "refund");
    is_str(classify(m, "my money back", &r), "x", "quoted alternative");
    classify(m, "back money", &r);
    ok(r.rule == NULL, "alternatives are phrases");

    ok(set_rules(m, "rule 1 a speak|\n", err, sizeof(err)) == SA_INVALID,
       "an empty alternative refused: %s", err);
    ok(set_rules(m, "rule 1 a speak|the\n", err, sizeof(err)) == SA_INVALID,
       "a stop-word alternative refused: %s", err);
    ok(set_rules(m, "rule 1 a !x|y\n", err, sizeof(err)) == SA_INVALID,
       "negated alternatives only refused: %s", err);

    sa_intent_close(m);
}


static void
test_threshold(void)
{
    sa_intent_t         *m;
    sa_intent_result_t   r;

    m = train("route lecture smalltalk\n", 0.99f);
    if (m == NULL) {
        ok(0, "trained");
        return;
    }

    is_str(classify(m, "quantum chromodynamics lecture", &r),
           SA_INTENT_OUT_OF_SCOPE, "below the threshold: out of scope");
    ok(r.route == SA_ROUTE_OUT_OF_SCOPE, "routed out of scope");
    is_str(r.route_name, "out_of_scope", "always out_of_scope");
    ok(r.index == -1 && r.ntop == 3, "the guess stays in top");

    sa_intent_set_threshold(m, 0);
    ok(strcmp(classify(m, "quantum chromodynamics lecture", &r),
              SA_INTENT_OUT_OF_SCOPE) != 0, "threshold 0: a guess");
    sa_intent_set_threshold(m, -1);
    ok(fabsf(sa_intent_threshold(m) - 0.99f) < 1e-6, "-1: the file's");

    sa_intent_close(m);
}


/* examples of what the agent does not do, routed out_of_scope */

static const char  *oos_texts[] = {
    "what is the weather like today",
    "tell me a joke",
    "who won the football game",
    "play some jazz music",
    "what is the capital of france",
    "how tall is mount everest",
};

#define NOOS  (sizeof(oos_texts) / sizeof(oos_texts[0]))


static sa_intent_t *
train_oos(void)
{
    char                 err[256];
    size_t               i;
    sa_intent_t         *m;
    sa_intent_conf_t     conf;
    sa_intent_example_t  ex[NTEXTS + NOOS];
    static const char    r[] = "route oos out_of_scope\n";

    for (i = 0; i < NTEXTS; i++) {
        ex[i].text = texts[i][0];
        ex[i].len = strlen(texts[i][0]);
        ex[i].intent = texts[i][1];
    }

    for (i = 0; i < NOOS; i++) {
        ex[NTEXTS + i].text = oos_texts[i];
        ex[NTEXTS + i].len = strlen(oos_texts[i]);
        ex[NTEXTS + i].intent = "oos";
    }

    sa_intent_conf_init(&conf);
    conf.epochs = 30;
    conf.threshold = 0;
    conf.rules = r;
    conf.rules_len = sizeof(r) - 1;

    if (sa_intent_train(ex, NTEXTS + NOOS, &conf, &m, err, sizeof(err))
        != SA_OK)
    {
        printf("# train: %s\n", err);
        return NULL;
    }

    return m;
}


static void
test_oos_class(void)
{
    int                  found;
    char                 err[256], *img;
    size_t               i, len;
    float                p, poos;
    sa_intent_t         *m, *m1;
    sa_intent_result_t   r;

    m = train_oos();
    if (m == NULL) {
        ok(0, "trained with an oos class");
        return;
    }

    /* the in-scope score is the odds against the oos class */
    is_str(classify(m, "where is my parcel", &r), "track_order",
           "in scope");
    ok(r.confidence == r.top[0].p, "confidence: the intent's p");
    found = 0;

    for (i = 0; i < r.ntop; i++) {
        if (strcmp(r.top[i].intent, "oos") == 0) {
            found = 1;
            poos = r.top[i].p;
            p = r.top[0].p;
            ok(fabsf(r.in_scope - p / (p + poos)) < 1e-5,
               "in_scope = p / (p + p(oos)): %f", r.in_scope);
        }
    }

    if (!found) {
        ok(r.in_scope >= r.confidence && r.in_scope <= 1,
           "in_scope >= p (%f, %f)", r.in_scope, r.confidence);
    }

    is_str(classify(m, "tell me a joke about the weather", &r), "oos",
           "threshold 0: the oos class decides");
    ok(r.route == SA_ROUTE_OUT_OF_SCOPE && r.index >= 0,
       "routed out of scope, a model class");
    ok(r.in_scope < 0.5, "its in-scope score is below 0.5 (%f)",
       r.in_scope);

    sa_intent_set_threshold(m, 0.5f);
    is_str(classify(m, "tell me a joke about the weather", &r),
           SA_INTENT_OUT_OF_SCOPE, "threshold 0.5: out_of_scope");
    ok(r.index == -1, "not a class");
    is_str(classify(m, "where is my parcel", &r), "track_order",
           "in scope still");

    /* with the oos class routed elsewhere the score is p(best) */
    ok(sa_intent_set_rules(m, "route oos smalltalk\n", 20, err,
                           sizeof(err)) == SA_OK, "oos rerouted");
    classify(m, "where is my parcel", &r);
    ok(r.in_scope == r.top[0].p, "no out-of-scope class: p(best)");

    ok(sa_intent_set_rules(m, "route oos out_of_scope\n", 23, err,
                           sizeof(err)) == SA_OK, "routed back");
    ok(sa_intent_write(m, "/tmp/test_intent_oos.model", err, sizeof(err))
       == SA_OK, "written");
    sa_intent_close(m);

    /* a format 1 file: the threshold held against p(best) */
    img = slurp("/tmp/test_intent_oos.model", &len);
    unlink("/tmp/test_intent_oos.model");
    ok(img != NULL && img[8] == 2, "format 2 written");
    if (img == NULL) {
        return;
    }

    img[8] = 1;
    ok(sa_intent_load(img, len, &m1, err, sizeof(err)) == SA_OK,
       "format 1 read: %s", err);
    classify(m1, "where is my parcel", &r);
    ok(r.in_scope == r.confidence, "format 1: in_scope is p(best)");
    sa_intent_close(m1);

    img[8] = 3;
    ok(sa_intent_load(img, len, &m1, err, sizeof(err)) == SA_INVALID
       && strstr(err, "rebuild with kb-build intents") != NULL,
       "format 3 refused: %s", err);
    free(img);
}


static void
test_floors(void)
{
    int                  top;
    char                 err[256];
    sa_intent_t         *m;
    sa_intent_result_t   r;

    m = train(NULL, 0);
    if (m == NULL) {
        ok(0, "trained");
        return;
    }

    is_str(classify(m, "where is my parcel", &r), "track_order", "model");
    top = r.index;
    ok(r.confidence < 0.999f, "not sure to 0.999 (%f)", r.confidence);

    ok(set_rules(m, "threshold track_order 0.999\n", err, sizeof(err))
       == SA_OK, "an intent's threshold");
    ok(fabsf(sa_intent_threshold(m)) < 1e-6, "not the global one");
    classify(m, "where is my parcel", &r);
    ok(strcmp(r.intent, "track_order") != 0 && r.index >= 0
       && r.index != top, "below it: the next intent (%s)", r.intent);
    is_str(r.top[0].intent, "track_order", "still the top guess");
    ok(r.confidence == r.top[1].p && r.in_scope == r.confidence,
       "the confidence is the decided intent's");
    is_str(classify(m, "I want a refund", &r), "get_refund",
           "other intents unaffected");

    ok(set_rules(m, "threshold track_order 1\nthreshold get_refund 1\n"
                 "threshold cancel_order 1\nthreshold 0.1\n", err,
                 sizeof(err)) == SA_OK, "every intent's, and the global");
    ok(fabsf(sa_intent_threshold(m) - 0.1f) < 1e-6, "global 0.1");
    is_str(classify(m, "where is my parcel", &r), SA_INTENT_OUT_OF_SCOPE,
           "no intent left: out of scope");
    ok(r.in_scope == 0 && r.index == -1, "score 0, no class");

    ok(set_rules(m, "rule 1 track_order parcel\nthreshold track_order 1\n",
                 err, sizeof(err)) == SA_OK, "a rule and a threshold");
    is_str(classify(m, "where is my parcel", &r), "track_order",
           "rules are not held to it");
    ok(r.rule != NULL && r.in_scope == 1, "the rule, in scope");

    ok(set_rules(m, "threshold a 0.5\nthreshold a 0.6\n", err, sizeof(err))
       == SA_INVALID && strstr(err, "line 2") != NULL,
       "a second threshold for an intent refused: %s", err);
    ok(set_rules(m, "threshold a 1.5\n", err, sizeof(err)) == SA_INVALID,
       "out of range refused: %s", err);
    ok(set_rules(m, "threshold out_of_scope 0.5\n", err, sizeof(err))
       == SA_INVALID, "out_of_scope refused: %s", err);
    ok(set_rules(m, "threshold a 0.5 b\n", err, sizeof(err)) == SA_INVALID,
       "three words refused: %s", err);
    ok(set_rules(m, "threshold\n", err, sizeof(err)) == SA_INVALID,
       "no value refused: %s", err);
    is_str(classify(m, "where is my parcel", &r), "track_order",
           "after a failed set: no thresholds stay");

    sa_intent_close(m);
}


static void
test_file(void)
{
    int                  rc;
    char                 err[256], *img;
    size_t               len;
    FILE                *f;
    sa_intent_t         *m;
    sa_intent_result_t   r;

    rc = sa_intent_open("/tmp/test_intent_a.model", &m, err, sizeof(err));
    ok(rc == SA_OK, "opens the written file");
    if (rc != SA_OK) {
        return;
    }

    is_str(classify(m, "track my parcel", &r), "track_order", "same answers");
    is_str(classify(m, "let me speak to a human", &r),
           "contact_human_agent", "rules came along");
    ok(sa_intent_changed(m) == 0, "not changed");
    sa_intent_close(m);

    img = slurp("/tmp/test_intent_a.model", &len);

    rc = sa_intent_open("/tmp/test_intent_none.model", &m, err, sizeof(err));
    ok(rc != SA_OK && strstr(err, "test_intent_none") != NULL,
       "missing file: %s", err);

    /* truncated */
    f = fopen("/tmp/test_intent_t.model", "wb");
    fwrite(img, 1, len - 100, f);
    fclose(f);
    rc = sa_intent_open("/tmp/test_intent_t.model", &m, err, sizeof(err));
    ok(rc == SA_INVALID && strstr(err, "truncated") != NULL,
       "truncated refused: %s", err);

    f = fopen("/tmp/test_intent_t.model", "wb");
    fwrite(img, 1, 10, f);
    fclose(f);
    rc = sa_intent_open("/tmp/test_intent_t.model", &m, err, sizeof(err));
    ok(rc == SA_INVALID, "a stub refused: %s", err);

    /* one flipped byte in the weights */
    img[len - 7] ^= 0x40;
    ok(sa_intent_load(img, len, &m, err, sizeof(err)) == SA_INVALID
       && strstr(err, "checksum") != NULL, "damaged refused: %s", err);
    img[len - 7] ^= 0x40;

    img[8] = 9;
    ok(sa_intent_load(img, len, &m, err, sizeof(err)) == SA_INVALID
       && strstr(err, "format") != NULL, "unknown format: %s", err);
    img[8] = SA_INTENT_FORMAT;

    img[0] = 'X';
    ok(sa_intent_load(img, len, &m, err, sizeof(err)) == SA_INVALID
       && strstr(err, "magic") != NULL, "not a model: %s", err);
    img[0] = 'S';

    ok(sa_intent_load(img, len, &m, err, sizeof(err)) == SA_OK,
       "restored image loads");
    sa_intent_close(m);

    /* the module's reload check */
    rc = sa_intent_open("/tmp/test_intent_a.model", &m, err, sizeof(err));
    f = fopen("/tmp/test_intent_t.model", "wb");
    fwrite(img, 1, len, f);
    fclose(f);
    rename("/tmp/test_intent_t.model", "/tmp/test_intent_a.model");
    ok(rc == SA_OK && sa_intent_changed(m) == 1, "a new file is noticed");
    sa_intent_close(m);

    free(img);
    unlink("/tmp/test_intent_a.model");
    unlink("/tmp/test_intent_t.model");
}


static void
test_messages(void)
{
    char                *huge;
    size_t               i;
    sa_intent_t         *m;
    sa_intent_result_t   r;

    m = train(rules, -1);
    if (m == NULL) {
        ok(0, "trained");
        return;
    }

    ok(sa_intent_classify(m, "", 0, &r) == SA_OK && r.ntop == 3,
       "empty message");
    ok(r.confidence > 0 && r.confidence <= 1, "a confidence all the same");
    ok(sa_intent_classify(m, "   !!! ", 7, &r) == SA_OK, "punctuation");

    ok(sa_intent_classify(m, "where \xff\xfe is my \xc3 order\x80", 22, &r)
       == SA_OK, "invalid UTF-8");
    is_str(r.intent, "track_order", "invalid bytes separate words");

    huge = malloc(1 << 20);
    for (i = 0; i < (1 << 20); i++) {
        huge[i] = "cancel my order "[i % 16];
    }

    ok(sa_intent_classify(m, huge, 1 << 20, &r) == SA_OK, "1 MB message");
    is_str(r.intent, "cancel_order", "its first 4 KB count");
    free(huge);

    ok(sa_intent_classify(m, "a\0b", 3, &r) == SA_OK, "NUL inside");

    sa_intent_close(m);
}


static void
test_bad_training(void)
{
    char                 err[256];
    sa_intent_t         *m;
    sa_intent_conf_t     conf;
    sa_intent_example_t  ex[1] = { { "x", 1, "bad name" } };

    sa_intent_conf_init(&conf);

    ok(sa_intent_train(ex, 0, &conf, &m, err, sizeof(err)) == SA_INVALID,
       "no examples: %s", err);
    ok(sa_intent_train(ex, 1, &conf, &m, err, sizeof(err)) == SA_INVALID,
       "a name with a space: %s", err);

    ex[0].intent = "ok";
    conf.rules = "rule";
    conf.rules_len = 4;
    ok(sa_intent_train(ex, 1, &conf, &m, err, sizeof(err)) == SA_INVALID,
       "bad rules: %s", err);

    conf.rules = NULL;
    conf.rules_len = 0;
    conf.char_min = 6;
    ok(sa_intent_train(ex, 1, &conf, &m, err, sizeof(err)) == SA_INVALID,
       "bad n-gram range: %s", err);

    conf.char_min = 3;
    ok(sa_intent_train(ex, 1, &conf, &m, err, sizeof(err)) == SA_OK,
       "one example, one intent");
    sa_intent_close(m);
}


int
main(void)
{
    test_separable();
    test_determinism();
    test_rules();
    test_alternatives();
    test_threshold();
    test_oos_class();
    test_floors();
    test_file();
    test_messages();
    test_bad_training();

    return done_testing();
}
