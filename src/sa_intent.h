
/*
 * Copyright (C) ngx_support_agent authors
 *
 * The intent router: what a customer's message is, decided without an
 * LLM.  Pure C, no nginx types.
 *
 * The model.  A linear classifier (multinomial logistic regression) over
 * hashed features of the message:
 *
 *   - words: the "simple" analyzer's terms (src/sa_text.h: UAX #29 words,
 *     lowercased, no stop words removed, no stemming); a word with a digit
 *     in it becomes its shape (digits as '0', at most 8 of them), so order
 *     numbers generalise;
 *   - word pairs (bigrams) of adjacent words, the first word paired with
 *     a start mark;
 *   - character n-grams (3..5 bytes by default) of each word with '<' and
 *     '>' around it, which catch typos, inflections and compounds that a
 *     stemmer would miss or mangle.
 *
 * Each feature is a 32-bit hash (FNV-1a 64 folded); a message is the
 * L2-normalised vector of its feature counts.  Only features seen in
 * training (at least conf.min_count times) have weights; the others are
 * ignored.  Training: softmax cross-entropy with L2, AdaGrad, a fixed
 * seed and a seeded shuffle per epoch, class indices in byte order of the
 * names: the same examples and options give the same file, byte for
 * byte.  The confidence is the softmax probability of the decided intent.
 *
 * Out of scope.  The threshold is on the in-scope score of a message.
 * When some model classes are routed out_of_scope (examples of what the
 * agent does not handle, CLINC150's "oos"), it is the odds of the best
 * in-scope class against those classes, p(best) / (p(best) + p(oos)).
 * Over many intents p(best) alone is poorly calibrated: an in-scope
 * message shared by two close intents looks as unsure as one no intent
 * covers, while the out-of-scope class's share tells them apart (CLINC150
 * val, at the threshold that keeps in-scope accuracy 0.90: out-of-scope
 * recall 0.88, against 0.80 with p(best)).  Without such classes it is
 * p(best).
 *
 * Rules and routes.  The operator's rules file (conf/routes.conf) is
 * compiled into the model file, so one file carries the model, the rules
 * and the routes and they are swapped together.  Its syntax, one
 * statement per line, '#' starts a comment:
 *
 *   rule PRIORITY INTENT PATTERN     PRIORITY 0..1000000; INTENT a name
 *                                    (need not be a model intent)
 *   route INTENT TARGET              TARGET: knowledge, action:TOOL,
 *                                    escalate, smalltalk, out_of_scope
 *   default TARGET                   the route of intents without one
 *                                    (knowledge unless given)
 *   threshold F                      the out-of-scope threshold, 0..1
 *                                    (kb-build intents --threshold wins)
 *   threshold INTENT F               the model decides INTENT only with
 *                                    probability F or more (0..1): for
 *                                    intents whose false alarms cost, as
 *                                    an escalation to a human does
 *
 * A PATTERN is one or more parts separated by " + "; each part is one
 * or more phrases separated by '|', each optionally quoted, and a part
 * starting with '!' must not occur.  A phrase occurs in a message as
 * consecutive terms of the "english" analyzer (lowercased, stop words
 * dropped, Porter stems: "speak to a human" matches "Speaking with
 * humans"); a part occurs when one of its phrases does.  A pattern
 * matches when every part occurs but the '!' ones, which do not:
 * "speak|talk + human|person + !am i".  Matching is deterministic and
 * linear in the message; no regular expressions.
 *
 * Classification, in order:
 *   1. the rules, highest priority first (file order breaks ties): the
 *      first that matches decides the intent, confidence 1;
 *   2. otherwise the model: its best intent among those not routed
 *      out_of_scope whose probability reaches their own threshold.  If
 *      there is none, or the in-scope score is below the threshold, the
 *      intent is "out_of_scope" (route out_of_scope); else if the top
 *      class is one routed out_of_scope, that class; else that intent.
 *      The model's guesses stay in top[];
 *   3. the route: the intent's "route" line, else "default".
 *
 * The file (format 2, little-endian; this code runs on little-endian
 * hosts):
 *
 *   header, 64 bytes:
 *     0  8 bytes magic "SAINTENT"
 *     8  u32 format (2)          12 u32 header size (64)
 *    16  u64 file size           24 u32 FNV-1a 32 of bytes 64..size
 *    28  u32 classes K           32 u32 rows F (features with weights)
 *    36  u32 slots S (a power of two, > F)
 *    40  u32 feature flags (SA_INTENT_F_*)
 *    44  u8 char n-gram min, u8 max (0 0: none), u16 0
 *    48  f32 threshold           52 u32 names bytes
 *    56  u32 rules bytes         60 f32 word feature weight
 *   then, each section starting at a multiple of 8:
 *     names     K NUL-terminated intent names, in byte order
 *     rules     the rules file's text as given (may be empty)
 *     bias      K f32
 *     slots     S x (u32 feature hash, u32 row); hash 0 = empty; open
 *               addressing, linear probing from hash & (S - 1)
 *     weights   F x K f32, row-major
 *
 * A reader refuses another magic or format, a size or checksum that does
 * not match, and sections that do not fit; the rules are parsed at open.
 * Format 1 is format 2's layout with the threshold on p(best) whatever
 * the classes (its auto thresholds were chosen that way): it is read so.
 * kb-build writes PATH.tmp and rename()s it onto PATH.
 *
 * A handle (sa_intent_t) owns two analyzers: one handle per thread (per
 * nginx worker).  It reads the file into memory once (a few MB); the
 * module checks sa_intent_changed() now and then and opens the new file,
 * then closes the old handle, as it does for the knowledge base.
 * Classifying allocates nothing: a few microseconds per message.
 */


#ifndef _SA_INTENT_H_INCLUDED_
#define _SA_INTENT_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "sa_types.h"


#define SA_INTENT_FORMAT      2
#define SA_INTENT_NAME_MAX    128     /* bytes of an intent name */
#define SA_INTENT_TOP         3
#define SA_INTENT_MAX_TEXT    4096    /* bytes of a message looked at */

/* feature flags */
#define SA_INTENT_F_WORDS     0x01
#define SA_INTENT_F_BIGRAMS   0x02
#define SA_INTENT_F_STEMS     0x04    /* also the english analyzer's terms */

/* the intent of a message below the threshold */
#define SA_INTENT_OUT_OF_SCOPE  "out_of_scope"


typedef enum {
    SA_ROUTE_KNOWLEDGE = 0,
    SA_ROUTE_ACTION,
    SA_ROUTE_ESCALATE,
    SA_ROUTE_SMALLTALK,
    SA_ROUTE_OUT_OF_SCOPE
} sa_route_e;


typedef struct {
    const char  *text;
    size_t       len;
    const char  *intent;          /* NUL-terminated */
} sa_intent_example_t;


typedef struct {
    unsigned     epochs;          /* 12 */
    float        rate;            /* AdaGrad's step, 0.1 */
    float        l2;              /* 1e-6 per example */
    uint32_t     seed;            /* 1 */
    unsigned     min_count;       /* 1: keep features seen this often */
    unsigned     features;        /* SA_INTENT_F_WORDS | F_BIGRAMS
                                     | F_STEMS */
    unsigned     char_min;        /* 3 */
    unsigned     char_max;        /* 5; 0 for no n-grams */
    float        word_weight;     /* of word, pair and stem features
                                     against character n-grams (2) */
    float        threshold;       /* < 0: the rules file's, else 0 */
    const char  *rules;           /* the rules file's text, or NULL */
    size_t       rules_len;
} sa_intent_conf_t;


typedef struct {
    const char  *intent;
    float        p;
} sa_intent_score_t;


/* every string points into the handle: valid until sa_intent_close() */
typedef struct {
    const char         *intent;       /* the decision */
    int                 index;        /* its class, -1 if not a model class
                                         (a rule's, or out_of_scope) */
    float               confidence;   /* the decided intent's model
                                         probability (out of scope: the
                                         best one); 1 for a rule */
    sa_route_e          route;
    const char         *route_name;   /* "knowledge", "action:track_order" */
    const char         *tool;         /* action's tool, else NULL */
    const char         *rule;         /* the rule's pattern, or NULL */
    unsigned            rule_line;    /* its line in the rules file */
    int                 rule_priority;
    size_t              ntop;
    sa_intent_score_t   top[SA_INTENT_TOP];  /* model intents, best first */
    float               in_scope;     /* the score held against the
                                         threshold (sa_intent.h, "Out of
                                         scope"); 1 for a rule */
} sa_intent_result_t;


typedef struct sa_intent_s  sa_intent_t;


void sa_intent_conf_init(sa_intent_conf_t *conf);

/* trains a model on n examples (their order matters for determinism
   only); the handle classifies at once and can be written.  SA_OK,
   SA_INVALID (no examples, a bad name or option, rules that do not
   parse: err says which), SA_ERROR (out of memory). */
int sa_intent_train(const sa_intent_example_t *examples, size_t n,
    const sa_intent_conf_t *conf, sa_intent_t **model, char *err,
    size_t errlen);

/* writes the model to path.tmp, fsync()s it and renames it onto path */
int sa_intent_write(const sa_intent_t *m, const char *path, char *err,
    size_t errlen);

/* opens a model file; err gets a message naming path (missing, not a
   model, unknown format, damaged or truncated, bad rules) */
int sa_intent_open(const char *path, sa_intent_t **m, char *err,
    size_t errlen);

/* the same from a file image in memory (copied) */
int sa_intent_load(const void *data, size_t len, sa_intent_t **m,
    char *err, size_t errlen);

/* m may be NULL */
void sa_intent_close(sa_intent_t *m);

/* classifies len bytes of text (any bytes: invalid UTF-8 separates words
   like punctuation; only the first SA_INTENT_MAX_TEXT bytes count).
   SA_OK, or SA_ERROR (out of memory in the stemmer) */
int sa_intent_classify(sa_intent_t *m, const char *text, size_t len,
    sa_intent_result_t *out);

/* replaces the rules compiled into the model (kb-build route --rules);
   SA_OK or SA_INVALID with err */
int sa_intent_set_rules(sa_intent_t *m, const char *text, size_t len,
    char *err, size_t errlen);

/* the out-of-scope threshold: the file's, or a directive's (0..1) */
float sa_intent_threshold(const sa_intent_t *m);
void sa_intent_set_threshold(sa_intent_t *m, float threshold);

/* 1 if the file m was opened from is now another file (inode, size or
   mtime differ, or it is gone), 0 if not or m was not opened from a
   file */
int sa_intent_changed(const sa_intent_t *m);

typedef struct {
    uint32_t  classes;
    uint32_t  features;
    uint32_t  slots;
    uint32_t  rules;
    size_t    size;                   /* bytes of the file image */
} sa_intent_info_t;

void sa_intent_info(const sa_intent_t *m, sa_intent_info_t *info);

/* class i's name (i < classes), else NULL */
const char *sa_intent_name(const sa_intent_t *m, uint32_t i);

const char *sa_route_name(sa_route_e route);

/* the route of an intent (a model's, a rule's or any name): its name
   ("action:track_order"), and *route if route is not NULL */
const char *sa_intent_route(const sa_intent_t *m, const char *intent,
    sa_route_e *route);


#endif /* _SA_INTENT_H_INCLUDED_ */
