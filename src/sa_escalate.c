
/*
 * Copyright (C) ngx_support_agent authors
 */


#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sa_escalate.h"
#include "sa_sparse.h"
#include "sa_utf8.h"


/* ASCII classes, whatever the locale */
#define sa_esc_digit(c)  ((c) >= '0' && (c) <= '9')
#define sa_esc_alpha(c)  (((c) | 0x20) >= 'a' && ((c) | 0x20) <= 'z')
#define sa_esc_alnum(c)  (sa_esc_digit(c) || sa_esc_alpha(c))
#define sa_esc_lower(c)  (((c) >= 'A' && (c) <= 'Z') ? ((c) | 0x20) : (c))


/* sentiment: the lexicon */

typedef enum {
    SA_LEX_WORD = 0,
    SA_LEX_NEGATOR,
    SA_LEX_INTENSIFIER,
    SA_LEX_DIMINISHER,
    SA_LEX_BUT
} sa_lex_kind_e;


typedef struct {
    const char     *text;       /* lowercase, words separated by a space */
    float           val;        /* valence, or a multiplier */
    float           neg;        /* valence when negated, if has_neg */
    unsigned char   kind;
    unsigned char   has_neg;
} sa_lex_t;


#define SA_W(s, v)               { s, v, 0, SA_LEX_WORD, 0 }
#define SA_WN(s, v, n)           { s, v, n, SA_LEX_WORD, 1 }
#define SA_NEGATOR(s)            { s, 0, 0, SA_LEX_NEGATOR, 0 }
#define SA_INTENSIFIER(s, m)     { s, m, 0, SA_LEX_INTENSIFIER, 0 }
#define SA_DIMINISHER(s, m)      { s, m, 0, SA_LEX_DIMINISHER, 0 }
#define SA_BUT(s)                { s, 0, 0, SA_LEX_BUT, 0 }


/*
 * Sorted by strcmp() (sa_sentiment_selftest() checks).  Valences follow
 * VADER's scale (-4 .. 4) shrunk to what a support conversation means:
 * factual trouble ("late", "broken") is mild, anger and contempt strong.
 * Words neutral alone ("work", "help", "received") carry a valence only
 * when negated: "doesn't work", "never received".  Phrases of valence 0
 * keep a greeting or a sign-off from counting ("good morning", "best
 * regards").
 */
static const sa_lex_t  sa_lexicon[] = {
    SA_W("2nd time", -1.0),
    SA_W("3rd time", -1.5),
    SA_W("4th time", -2.0),
    SA_W("5th time", -2.0),
    SA_W(":(", -2.0),
    SA_W(":)", 1.5),
    SA_W(":/", -1.0),
    SA_DIMINISHER("a bit", 0.6),
    SA_DIMINISHER("a little", 0.6),
    SA_DIMINISHER("a little bit", 0.5),
    SA_INTENSIFIER("absolutely", 1.6),
    SA_W("absurd", -2.5),
    SA_W("abysmal", -3.0),
    SA_WN("acceptable", 1.0, -2.0),
    SA_W("afraid", -0.5),
    SA_W("again", -0.4),
    SA_W("aggravating", -2.0),
    SA_NEGATOR("aint"),
    SA_W("all good", 1.5),
    SA_W("all the best", 0.0),
    SA_W("amazing", 3.0),
    SA_W("angry", -2.5),
    SA_W("annoyed", -2.0),
    SA_W("annoying", -2.0),
    SA_WN("answer", 0.0, -1.5),
    SA_WN("answered", 0.0, -1.5),
    SA_W("appalled", -3.0),
    SA_W("appalling", -3.0),
    SA_W("appreciate", 2.0),
    SA_W("appreciated", 2.0),
    SA_NEGATOR("arent"),
    SA_W("argh", -1.5),
    SA_WN("arrived", 0.0, -1.0),
    SA_W("atrocious", -3.0),
    SA_W("awesome", 3.0),
    SA_W("awful", -3.0),
    SA_W("bad", -2.0),
    SA_W("best", 2.0),
    SA_W("best regards", 0.0),
    SA_W("better", 1.0),
    SA_INTENSIFIER("beyond", 1.5),
    SA_W("brilliant", 3.0),
    SA_W("broken", -1.5),
    SA_W("bug", -0.5),
    SA_W("buggy", -1.5),
    SA_W("bullshit", -3.0),
    SA_BUT("but"),
    SA_NEGATOR("cannot"),
    SA_NEGATOR("cant"),
    SA_W("charged twice", -2.0),
    SA_W("cheat", -2.5),
    SA_W("cheated", -3.0),
    SA_W("cheers", 1.0),
    SA_W("clueless", -2.0),
    SA_W("come on", -1.0),
    SA_W("complain", -1.5),
    SA_W("complaint", -1.5),
    SA_INTENSIFIER("completely", 1.5),
    SA_W("complicated", -1.0),
    SA_W("concerned", -1.0),
    SA_W("confused", -1.0),
    SA_W("confusing", -1.5),
    SA_W("cool", 1.0),
    SA_NEGATOR("couldnt"),
    SA_W("crap", -2.5),
    SA_W("crappy", -2.5),
    SA_W("crash", -1.0),
    SA_W("crashed", -1.0),
    SA_W("crashes", -1.0),
    SA_W("crashing", -1.0),
    SA_W("damaged", -1.5),
    SA_W("dammit", -2.5),
    SA_W("damn", -2.0),
    SA_W("damned", -2.0),
    SA_INTENSIFIER("deeply", 1.5),
    SA_W("defective", -1.5),
    SA_W("delayed", -1.0),
    SA_W("delighted", 3.0),
    SA_W("demand", -1.5),
    SA_W("desperate", -2.0),
    SA_NEGATOR("didnt"),
    SA_W("difficult", -1.0),
    SA_W("disappointed", -2.5),
    SA_W("disappointing", -2.5),
    SA_W("disappointment", -2.5),
    SA_W("disaster", -3.0),
    SA_W("disgraceful", -3.0),
    SA_W("disgusted", -3.0),
    SA_W("disgusting", -3.0),
    SA_W("dissatisfied", -2.5),
    SA_NEGATOR("doesnt"),
    SA_NEGATOR("dont"),
    SA_W("double charged", -2.0),
    SA_W("dreadful", -3.0),
    SA_W("easy", 1.0),
    SA_W("efficient", 1.5),
    SA_W("embarrassing", -2.0),
    SA_W("enough is enough", -2.5),
    SA_W("enraged", -3.0),
    SA_W("error", -0.5),
    SA_W("errors", -0.5),
    SA_INTENSIFIER("especially", 1.3),
    SA_W("excellent", 3.0),
    SA_INTENSIFIER("extremely", 1.8),
    SA_W("fail", -1.5),
    SA_W("failed", -1.0),
    SA_W("failing", -1.0),
    SA_W("fails", -1.0),
    SA_W("failure", -2.0),
    SA_WN("fair", 0.5, -1.5),
    SA_DIMINISHER("fairly", 0.8),
    SA_W("fantastic", 3.0),
    SA_W("fast", 1.0),
    SA_W("faulty", -1.5),
    SA_W("fed up", -2.5),
    SA_W("fed up with", -2.5),
    SA_W("fifth time", -2.0),
    SA_W("fine", 0.5),
    SA_WN("fixed", 1.0, -1.5),
    SA_W("for ages", -1.0),
    SA_W("forever", -1.0),
    SA_W("fourth time", -2.0),
    SA_W("fraud", -1.5),
    SA_W("friendly", 1.5),
    SA_W("frustrated", -2.5),
    SA_W("frustrating", -2.5),
    SA_W("frustration", -2.5),
    SA_W("fuck", -3.0),
    SA_W("fucked", -3.0),
    SA_W("fucking", -2.5),
    SA_W("fuming", -3.0),
    SA_W("furious", -3.0),
    SA_W("garbage", -3.0),
    SA_W("gave up", -1.5),
    SA_W("give up", -1.5),
    SA_W("glad", 2.0),
    SA_W("good", 1.5),
    SA_W("good afternoon", 0.0),
    SA_W("good day", 0.0),
    SA_W("good evening", 0.0),
    SA_W("good morning", 0.0),
    SA_W("good night", 0.0),
    SA_W("grateful", 2.5),
    SA_W("great", 2.5),
    SA_W("grr", -1.5),
    SA_W("had enough", -2.0),
    SA_NEGATOR("hadnt"),
    SA_WN("happy", 2.0, -1.8),
    SA_NEGATOR("hasnt"),
    SA_W("hassle", -1.5),
    SA_W("hate", -3.0),
    SA_W("hated", -3.0),
    SA_NEGATOR("havent"),
    SA_WN("help", 0.0, -1.5),
    SA_WN("helped", 1.5, -1.5),
    SA_WN("helpful", 2.0, -1.8),
    SA_WN("helping", 0.0, -1.5),
    SA_WN("helps", 0.0, -1.5),
    SA_INTENSIFIER("highly", 1.4),
    SA_W("hopeless", -2.5),
    SA_W("horrendous", -3.0),
    SA_W("horrible", -3.0),
    SA_W("how many times", -2.0),
    SA_BUT("however"),
    SA_INTENSIFIER("hugely", 1.5),
    SA_W("idiot", -3.0),
    SA_W("idiots", -3.0),
    SA_W("ignored", -2.0),
    SA_W("ignoring", -2.0),
    SA_W("impossible", -1.5),
    SA_W("impressed", 2.5),
    SA_W("in circles", -2.0),
    SA_W("incompetence", -3.0),
    SA_W("incompetent", -3.0),
    SA_W("inconvenience", -1.0),
    SA_W("inconvenient", -1.0),
    SA_INTENSIFIER("incredibly", 1.7),
    SA_W("inexcusable", -3.0),
    SA_W("infuriated", -3.0),
    SA_W("infuriating", -3.0),
    SA_W("insane", -2.0),
    SA_INTENSIFIER("insanely", 1.5),
    SA_W("irritated", -2.0),
    SA_W("irritating", -2.0),
    SA_NEGATOR("isnt"),
    SA_W("joke", -1.0),
    SA_W("junk", -2.5),
    SA_W("kidding me", -2.0),
    SA_W("kind", 1.0),
    SA_DIMINISHER("kind of", 0.7),
    SA_W("kind regards", 0.0),
    SA_DIMINISHER("kinda", 0.7),
    SA_W("lame", -2.0),
    SA_W("last straw", -2.5),
    SA_W("late", -1.0),
    SA_W("legend", 2.0),
    SA_W("liar", -3.0),
    SA_W("liars", -3.0),
    SA_W("lied", -2.5),
    SA_W("lies", -2.5),
    SA_W("life saver", 3.0),
    SA_W("lifesaver", 3.0),
    SA_W("livid", -3.0),
    SA_W("lost", -1.0),
    SA_W("lousy", -2.5),
    SA_W("love", 2.5),
    SA_W("loved", 2.5),
    SA_W("lovely", 2.5),
    SA_W("mad", -2.0),
    SA_W("many thanks", 2.5),
    SA_W("many times", -1.5),
    SA_W("mess", -2.0),
    SA_W("messed", -2.0),
    SA_W("messed up", -2.0),
    SA_W("miserable", -3.0),
    SA_W("missing", -1.0),
    SA_INTENSIFIER("most", 1.2),
    SA_NEGATOR("mustnt"),
    SA_NEGATOR("neednt"),
    SA_NEGATOR("neither"),
    SA_NEGATOR("never"),
    SA_W("never again", -2.5),
    SA_W("nice", 1.5),
    SA_W("nightmare", -3.0),
    SA_NEGATOR("no"),
    SA_W("no good", -2.0),
    SA_W("no help", -2.0),
    SA_W("no longer", 0.0),
    SA_W("no luck", -1.5),
    SA_W("no one", -1.0),
    SA_W("no one helps", -2.5),
    SA_W("no problem", 1.0),
    SA_W("no problems", 1.0),
    SA_W("no thank you", 0.0),
    SA_W("no thanks", 0.0),
    SA_W("no worries", 1.0),
    SA_W("nobody", -1.5),
    SA_W("nobody helps", -2.5),
    SA_NEGATOR("none"),
    SA_W("nonsense", -2.5),
    SA_NEGATOR("nor"),
    SA_NEGATOR("not"),
    SA_NEGATOR("nothing"),
    SA_NEGATOR("nowhere"),
    SA_WN("ok", 0.0, -1.0),
    SA_WN("okay", 0.0, -1.0),
    SA_W("outrage", -3.0),
    SA_W("outraged", -3.0),
    SA_W("outrageous", -3.0),
    SA_W("overcharged", -2.0),
    SA_W("painful", -2.0),
    SA_DIMINISHER("partly", 0.7),
    SA_W("pathetic", -3.0),
    SA_W("perfect", 2.5),
    SA_W("perfectly", 2.0),
    SA_W("pissed", -3.0),
    SA_W("pleased", 2.0),
    SA_W("pointless", -2.5),
    SA_W("poor", -2.0),
    SA_W("poorly", -2.0),
    SA_W("problem", -0.5),
    SA_W("problem solved", 2.0),
    SA_W("problems", -0.5),
    SA_W("professional", 1.5),
    SA_W("quick", 1.0),
    SA_W("quickly", 1.0),
    SA_INTENSIFIER("quite", 1.2),
    SA_W("rage", -3.0),
    SA_INTENSIFIER("really", 1.4),
    SA_WN("received", 0.0, -1.0),
    SA_W("recommend", 2.0),
    SA_WN("refunded", 0.0, -1.5),
    SA_W("reliable", 1.5),
    SA_W("relieved", 1.5),
    SA_WN("replied", 0.0, -1.5),
    SA_WN("reply", 0.0, -1.5),
    SA_WN("resolved", 1.5, -1.5),
    SA_WN("responded", 0.0, -1.5),
    SA_WN("response", 0.0, -1.5),
    SA_W("ridiculous", -2.5),
    SA_W("ridiculously", -1.5),
    SA_WN("right", 0.0, -1.0),
    SA_W("right away", 0.0),
    SA_W("right now", 0.0),
    SA_W("rip off", -3.0),
    SA_W("ripoff", -3.0),
    SA_W("robbed", -3.0),
    SA_W("rubbish", -2.5),
    SA_W("rude", -2.5),
    SA_W("run around", -2.0),
    SA_W("runaround", -2.0),
    SA_W("sad", -2.0),
    SA_W("sadly", -1.0),
    SA_WN("satisfied", 2.0, -2.0),
    SA_W("scam", -3.0),
    SA_W("scammed", -3.0),
    SA_W("scammers", -3.0),
    SA_W("scared", -1.5),
    SA_W("screwed", -2.5),
    SA_W("screwed up", -2.5),
    SA_W("second time", -1.0),
    SA_WN("sense", 0.0, -1.0),
    SA_W("seriously", -1.0),
    SA_W("several times", -1.5),
    SA_W("shambles", -3.0),
    SA_W("shameful", -3.0),
    SA_W("shit", -3.0),
    SA_W("shitty", -3.0),
    SA_W("shocking", -2.5),
    SA_NEGATOR("shouldnt"),
    SA_W("sick and tired", -3.0),
    SA_W("sick of", -2.5),
    SA_DIMINISHER("slightly", 0.6),
    SA_W("slow", -1.0),
    SA_W("smooth", 1.0),
    SA_INTENSIFIER("so", 1.4),
    SA_WN("solved", 1.5, -1.5),
    SA_DIMINISHER("somewhat", 0.7),
    SA_DIMINISHER("sort of", 0.7),
    SA_W("sorted", 1.0),
    SA_W("spot on", 2.0),
    SA_W("still waiting", -2.0),
    SA_W("stolen", -1.5),
    SA_W("stuck", -1.0),
    SA_W("stupid", -2.5),
    SA_INTENSIFIER("such", 1.3),
    SA_W("suck", -2.5),
    SA_W("sucks", -3.0),
    SA_INTENSIFIER("super", 1.4),
    SA_W("superb", 3.0),
    SA_W("terrible", -3.0),
    SA_W("terrific", 3.0),
    SA_W("thank", 2.0),
    SA_W("thank you", 2.0),
    SA_W("thank you so much", 3.0),
    SA_W("thankful", 2.5),
    SA_W("thanks", 2.0),
    SA_W("thanks a lot", 2.5),
    SA_W("thanks so much", 3.0),
    SA_W("third time", -1.5),
    SA_W("this is a joke", -2.5),
    SA_W("three times", -1.5),
    SA_W("thx", 1.5),
    SA_INTENSIFIER("too", 1.3),
    SA_INTENSIFIER("totally", 1.5),
    SA_W("trash", -2.5),
    SA_INTENSIFIER("truly", 1.4),
    SA_W("ugh", -1.5),
    SA_W("unacceptable", -3.0),
    SA_W("unbelievable", -1.5),
    SA_W("unclear", -1.0),
    SA_W("unfortunately", -1.0),
    SA_W("unhappy", -2.0),
    SA_W("unhelpful", -2.5),
    SA_W("unprofessional", -2.5),
    SA_W("unreliable", -2.0),
    SA_W("unresolved", -1.5),
    SA_W("upset", -2.0),
    SA_W("useful", 1.5),
    SA_W("useless", -2.5),
    SA_INTENSIFIER("utterly", 1.7),
    SA_INTENSIFIER("very", 1.5),
    SA_W("warm regards", 0.0),
    SA_NEGATOR("wasnt"),
    SA_W("waste", -2.0),
    SA_W("waste of money", -2.5),
    SA_W("waste of time", -2.5),
    SA_W("wasted", -2.0),
    SA_W("well done", 2.0),
    SA_NEGATOR("werent"),
    SA_NEGATOR("without"),
    SA_W("wonderful", 3.0),
    SA_NEGATOR("wont"),
    SA_WN("work", 0.0, -2.0),
    SA_WN("worked", 1.0, -2.0),
    SA_WN("working", 0.0, -2.0),
    SA_W("working now", 2.0),
    SA_WN("works", 0.0, -2.0),
    SA_W("works now", 2.0),
    SA_W("worried", -1.5),
    SA_W("worry", -1.0),
    SA_W("worse", -2.5),
    SA_W("worst", -3.0),
    SA_W("worthless", -3.0),
    SA_NEGATOR("wouldnt"),
    SA_W("wrong", -1.0),
    SA_W("wtf", -3.0),
    SA_W("yay", 2.0),
    SA_W("\xe2\x9d\xa4", 2.0),
    SA_W("\xf0\x9f\x91\x8d", 1.5),
    SA_W("\xf0\x9f\x91\x8e", -2.0),
    SA_W("\xf0\x9f\x98\x80", 2.0),
    SA_W("\xf0\x9f\x98\x83", 2.0),
    SA_W("\xf0\x9f\x98\x84", 2.0),
    SA_W("\xf0\x9f\x98\x8a", 2.0),
    SA_W("\xf0\x9f\x98\x8d", 3.0),
    SA_W("\xf0\x9f\x98\x92", -1.5),
    SA_W("\xf0\x9f\x98\x9e", -2.0),
    SA_W("\xf0\x9f\x98\xa0", -2.5),
    SA_W("\xf0\x9f\x98\xa1", -3.0),
    SA_W("\xf0\x9f\x98\xa2", -2.0),
    SA_W("\xf0\x9f\x98\xa4", -2.0),
    SA_W("\xf0\x9f\x98\xa9", -2.0),
    SA_W("\xf0\x9f\x98\xab", -2.0),
    SA_W("\xf0\x9f\x98\xad", -2.0),
    SA_W("\xf0\x9f\x99\x82", 1.5),
    SA_W("\xf0\x9f\x99\x84", -1.5),
    SA_W("\xf0\x9f\x99\x8f", 1.5),
    SA_W("\xf0\x9f\xa4\xac", -3.0),
};


#define SA_LEXICON_N  (sizeof(sa_lexicon) / sizeof(sa_lexicon[0]))

#define SA_SENTI_WORD    48     /* bytes of a word looked up */
#define SA_SENTI_AHEAD   4      /* words of the longest phrase */
#define SA_SENTI_NEGATE  3      /* words a negator reaches */
#define SA_SENTI_BOOST   2      /* words an intensifier reaches */
#define SA_SENTI_SCALE   4.0    /* of tanh(): one strong word ~ 0.2/0.8 */
#define SA_SENTI_FAR     (-1000)


typedef struct {
    char      w[SA_SENTI_WORD];
    size_t    len;              /* SA_SENTI_WORD or more: too long */
    unsigned  upper;            /* ASCII capitals */
    unsigned  lower;
    unsigned  boundary;         /* punctuation before it */
} sa_senti_tok_t;


typedef struct {
    const unsigned char  *p;
    const unsigned char  *start;
    const unsigned char  *end;
    unsigned              bangs;     /* "!!", "???", "?!" runs */
    unsigned              boundary;
} sa_senti_scan_t;


typedef enum {
    SA_CH_SPACE = 0,            /* separates words */
    SA_CH_WORD,
    SA_CH_APOS,
    SA_CH_BOUNDARY,             /* ends a negator's reach, a phrase */
    SA_CH_BANG,
    SA_CH_EMOJI                 /* a word of its own */
} sa_senti_class_e;


/* signature: analyzed terms that say nothing about the issue, as the
   english analyzer leaves them and as written; sorted */
static const char  *sa_esc_filler[] = {
    "again", "also", "am", "anyon", "anyone", "can", "could", "did", "do",
    "doe", "does", "get", "got", "ha", "had", "has", "have", "he", "hei",
    "hello", "help", "hey", "hi", "how", "i", "i'm", "just", "know", "me",
    "my", "need", "ok", "okai", "okay", "our", "pleas", "please", "she",
    "should", "someon", "someone", "sorri", "sorry", "still", "tell",
    "thank", "thanks", "us", "want", "we", "what", "when", "where", "which",
    "who", "why", "would", "ye", "yes", "you", "your"
};

#define SA_ESC_FILLER_N  (sizeof(sa_esc_filler) / sizeof(sa_esc_filler[0]))


/* a growing output string */
typedef struct {
    char    *p;
    size_t   len;
    size_t   cap;
    int      failed;
} sa_esc_buf_t;


static const char  *sa_hours_days[] = {
    "mon", "tue", "wed", "thu", "fri", "sat", "sun"
};

static const char  *sa_hours_long[] = {
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
    "sunday"
};


static sa_senti_class_e sa_senti_class(const unsigned char *p,
    const unsigned char *end, size_t *n);
static int sa_senti_emoticon(sa_senti_scan_t *sc, sa_senti_tok_t *t);
static int sa_senti_next(sa_senti_scan_t *sc, sa_senti_tok_t *t);
static const sa_lex_t *sa_lex_find(const char *key, size_t len);
static int sa_lex_cmp(const char *key, size_t len, const char *entry);
static int sa_esc_is_filler(const char *term, size_t len);
static int sa_esc_sig_term(void *data, const char *term, size_t len,
    uint32_t position);
static void sa_esc_copy_issue(sa_esc_state_t *s, const char *intent);
static int sa_esc_same_intent(const sa_esc_state_t *s, const char *intent);
static void sa_esc_decide(sa_esc_state_t *s, sa_esc_decision_t *d,
    sa_esc_reason_e reason, sa_esc_priority_e priority, int64_t now_ms,
    const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void sa_esc_put32(unsigned char *p, uint32_t v);
static uint32_t sa_esc_get32(const unsigned char *p);
static int sa_esc_score_ok(float f);
static void sa_hours_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int sa_hours_day(const char *w, size_t len);
static int sa_hours_time(const char *p, size_t len, unsigned *min);
static int sa_hours_offset(const char *w, size_t len, int32_t *off);
static int64_t sa_floor_div(int64_t a, int64_t b);
static void sa_buf_add(sa_esc_buf_t *b, const void *data, size_t len);
static void sa_buf_str(sa_esc_buf_t *b, const char *s);
static int sa_mask_glued(const unsigned char *in, size_t len, size_t i);
static int sa_mask_glued_after(const unsigned char *in, size_t len,
    size_t end);
static int sa_mask_local(unsigned char c);
static size_t sa_mask_email(const unsigned char *in, size_t len, size_t i,
    size_t *at);
static size_t sa_mask_card(const unsigned char *in, size_t len, size_t i,
    char *last4);
static size_t sa_mask_phone(const unsigned char *in, size_t len, size_t i,
    char *last2);
static int sa_mask_phone_groups(const unsigned char *in, size_t len,
    size_t i, int plus, const size_t *g, size_t ng, unsigned seps,
    size_t end);
static int sa_mask_order_before(const unsigned char *in, size_t i);
static int sa_word_is(const unsigned char *p, size_t len, const char *w);
static size_t sa_order_skip(const unsigned char *p, size_t len, size_t i);
static size_t sa_order_token(const unsigned char *p, size_t len, size_t i,
    size_t min);
static size_t sa_words(const char *text, size_t len);
static char *sa_one_line(const char *text, size_t len, unsigned mask,
    size_t max, const char *suffix);


/* 1. sentiment */

double
sa_sentiment(const char *text, size_t len)
{
    int              neg_at, int_at, idx;
    char             key[SA_SENTI_AHEAD * (SA_SENTI_WORD + 1)];
    double           pos, negs, v, mult, sum;
    size_t           i, k, n, L, keylen[SA_SENTI_AHEAD + 1];
    unsigned         words, caps, emphasis, caps_in;
    sa_senti_tok_t   tok[SA_SENTI_AHEAD];
    const sa_lex_t  *e;
    sa_senti_scan_t  sc;

    if (text == NULL || len == 0) {
        return 0.5;
    }

    sc.start = (const unsigned char *) text;
    sc.p = sc.start;
    sc.end = sc.start + len;
    sc.bangs = 0;
    sc.boundary = 0;

    pos = 0;
    negs = 0;
    mult = 1;
    neg_at = SA_SENTI_FAR;
    int_at = SA_SENTI_FAR;
    idx = 0;
    words = 0;
    caps = 0;
    n = 0;

    for ( ;; ) {
        while (n < SA_SENTI_AHEAD && sa_senti_next(&sc, &tok[n])) {
            n++;
        }

        if (n == 0) {
            break;
        }

        /* the longest phrase at tok[0]: it may not cross punctuation */
        keylen[0] = 0;
        L = 0;

        for (k = 0; k < n; k++) {
            if (tok[k].len >= SA_SENTI_WORD || (k > 0 && tok[k].boundary)) {
                break;
            }

            i = keylen[k];
            if (k > 0) {
                key[i++] = ' ';
            }

            memcpy(key + i, tok[k].w, tok[k].len);
            keylen[k + 1] = i + tok[k].len;
            L = k + 1;
        }

        e = NULL;

        for ( /* void */ ; L > 0; L--) {
            e = sa_lex_find(key, keylen[L]);
            if (e != NULL) {
                break;
            }
        }

        if (e == NULL) {
            L = 1;
        }

        if (tok[0].boundary) {
            neg_at = SA_SENTI_FAR;
            int_at = SA_SENTI_FAR;
        }

        caps_in = 0;

        for (k = 0; k < L; k++) {
            if (tok[k].upper + tok[k].lower > 0) {
                words++;
            }

            if (tok[k].upper >= 3 && tok[k].lower == 0) {
                caps++;
                caps_in = 1;
            }
        }

        if (e == NULL) {
            /* "doesn't", "can't", "won't" ... */
            if (tok[0].len >= 3 && tok[0].len < SA_SENTI_WORD
                && memcmp(tok[0].w + tok[0].len - 3, "n't", 3) == 0)
            {
                neg_at = idx;
            }

        } else if (e->kind == SA_LEX_NEGATOR) {
            neg_at = idx + (int) L - 1;

        } else if (e->kind == SA_LEX_INTENSIFIER
                   || e->kind == SA_LEX_DIMINISHER)
        {
            int_at = idx + (int) L - 1;
            mult = e->val;

        } else if (e->kind == SA_LEX_BUT) {
            /* what follows "but" is what the customer means */
            pos *= 0.5;
            negs *= 0.5;
            neg_at = SA_SENTI_FAR;
            int_at = SA_SENTI_FAR;

        } else {
            v = e->val;

            if (idx - neg_at <= SA_SENTI_NEGATE) {
                if (e->has_neg) {
                    v = e->neg;

                } else {
                    v = v > 0 ? -0.8 * v : -0.5 * v;
                }
            }

            if (idx - int_at <= SA_SENTI_BOOST) {
                v *= mult;
            }

            if (v < 0 && caps_in) {
                v *= 1.5;
            }

            if (v > 0) {
                pos += v;

            } else {
                negs -= v;
            }
        }

        idx += (int) L;
        n -= L;
        memmove(&tok[0], &tok[L], n * sizeof(sa_senti_tok_t));

        if (idx > 1000000) {
            /* a huge text: the sums are saturated long before */
            break;
        }
    }

    /* emphasis sharpens complaints; "THANK YOU!!" stays positive */
    emphasis = sc.bangs < 3 ? sc.bangs : 3;

    if (caps >= 2 && caps * 2 >= words) {
        emphasis++;
    }

    if (negs > 0) {
        negs *= 1 + 0.2 * emphasis;

    } else if (pos == 0) {
        negs = 0.6 * emphasis;
    }

    sum = pos - negs;

    return 0.5 + 0.5 * tanh(sum / SA_SENTI_SCALE);
}


int
sa_sentiment_selftest(void)
{
    size_t  i;

    for (i = 1; i < SA_LEXICON_N; i++) {
        if (strcmp(sa_lexicon[i - 1].text, sa_lexicon[i].text) >= 0) {
            return SA_ERROR;
        }
    }

    for (i = 1; i < SA_ESC_FILLER_N; i++) {
        if (strcmp(sa_esc_filler[i - 1], sa_esc_filler[i]) >= 0) {
            return SA_ERROR;
        }
    }

    return SA_OK;
}


size_t
sa_sentiment_lexicon_size(void)
{
    return SA_LEXICON_N;
}


const char *
sa_mood_name(double sentiment)
{
    if (sentiment < 0.4) {
        return "negative";
    }

    if (sentiment > 0.6) {
        return "positive";
    }

    return "neutral";
}


static sa_senti_class_e
sa_senti_class(const unsigned char *p, const unsigned char *end, size_t *n)
{
    uint32_t  cp;

    *n = 1;

    if (*p < 0x80) {
        if (sa_esc_alnum(*p)) {
            return SA_CH_WORD;
        }

        switch (*p) {
        case '\'':
            return SA_CH_APOS;

        case '!':
        case '?':
            return SA_CH_BANG;

        case '.': case ',': case ';': case ':': case '(': case ')':
        case '[': case ']': case '{': case '}': case '"': case '\n':
        case '\r':
            return SA_CH_BOUNDARY;

        default:
            return SA_CH_SPACE;
        }
    }

    *n = sa_utf8_seq_len(p, end - p);
    if (*n == 0) {
        /* not UTF-8: a separator */
        *n = 1;
        return SA_CH_SPACE;
    }

    if (*n == 2) {
        cp = ((uint32_t) (p[0] & 0x1f) << 6) | (p[1] & 0x3f);

    } else if (*n == 3) {
        cp = ((uint32_t) (p[0] & 0x0f) << 12)
             | ((uint32_t) (p[1] & 0x3f) << 6) | (p[2] & 0x3f);

    } else {
        cp = ((uint32_t) (p[0] & 0x07) << 18)
             | ((uint32_t) (p[1] & 0x3f) << 12)
             | ((uint32_t) (p[2] & 0x3f) << 6) | (p[3] & 0x3f);
    }

    if (cp == 0x2019) {
        return SA_CH_APOS;
    }

    if (cp == 0x00a0 || cp == 0xfe0f || cp == 0x3000
        || (cp >= 0x2000 && cp <= 0x2015) || (cp >= 0x2028 && cp <= 0x202f)
        || (cp >= 0x1f3fb && cp <= 0x1f3ff))
    {
        /* spaces, dashes, joiners, variation selectors, skin tones */
        return SA_CH_SPACE;
    }

    if ((cp >= 0x00a1 && cp <= 0x00bf) || (cp >= 0x2016 && cp <= 0x2027)
        || (cp >= 0x2030 && cp <= 0x205e) || (cp >= 0x3001 && cp <= 0x303f)
        || (cp >= 0xff01 && cp <= 0xff0f) || (cp >= 0xff1a && cp <= 0xff20))
    {
        return SA_CH_BOUNDARY;
    }

    if ((cp >= 0x1f000 && cp <= 0x1faff) || (cp >= 0x2600 && cp <= 0x27bf)
        || (cp >= 0x2b00 && cp <= 0x2bff))
    {
        return SA_CH_EMOJI;
    }

    return SA_CH_WORD;
}


/* ":)", ":-(", ":'(", ";)", "=D", ":/" as the words ":)", ":(", ":/" */
static int
sa_senti_emoticon(sa_senti_scan_t *sc, sa_senti_tok_t *t)
{
    unsigned char         c, m;
    const unsigned char  *p;

    p = sc->p;

    if (p > sc->start
        && (sa_esc_alnum(p[-1]) || p[-1] == ':' || p[-1] == '/'))
    {
        /* "http://", "10:30" */
        return 0;
    }

    p++;

    if (p < sc->end && (*p == '-' || *p == '\'')) {
        p++;
    }

    if (p >= sc->end) {
        return 0;
    }

    c = *p++;

    switch (c) {
    case ')': case ']': case 'D': case 'P': case 'p':
        m = ')';
        break;

    case '(': case '[':
        m = '(';
        break;

    case '/': case '\\':
        m = '/';
        break;

    default:
        return 0;
    }

    if (p < sc->end && (sa_esc_alnum(*p) || *p == '/')) {
        /* ":Data", "://" */
        return 0;
    }

    t->w[0] = ':';
    t->w[1] = (char) m;
    t->w[2] = '\0';
    t->len = 2;
    t->upper = 0;
    t->lower = 0;
    t->boundary = sc->boundary;

    sc->boundary = 0;
    sc->p = p;

    return 1;
}


static int
sa_senti_next(sa_senti_scan_t *sc, sa_senti_tok_t *t)
{
    size_t            n, m, excl, quest;
    sa_senti_class_e  cl, next;

    while (sc->p < sc->end) {
        cl = sa_senti_class(sc->p, sc->end, &n);

        if ((*sc->p == ':' || *sc->p == ';' || *sc->p == '=')
            && sa_senti_emoticon(sc, t))
        {
            return 1;
        }

        if (cl == SA_CH_BANG) {
            excl = 0;
            quest = 0;

            while (sc->p < sc->end && (*sc->p == '!' || *sc->p == '?')) {
                if (*sc->p++ == '!') {
                    excl++;

                } else {
                    quest++;
                }
            }

            if (excl >= 2 || quest >= 3 || (excl && quest)) {
                sc->bangs++;
            }

            sc->boundary = 1;
            continue;
        }

        if (cl == SA_CH_EMOJI) {
            memcpy(t->w, sc->p, n);
            t->w[n] = '\0';
            t->len = n;
            t->upper = 0;
            t->lower = 0;
            t->boundary = sc->boundary;
            sc->boundary = 0;
            sc->p += n;
            return 1;
        }

        if (cl != SA_CH_WORD) {
            if (cl == SA_CH_BOUNDARY) {
                sc->boundary = 1;
            }

            sc->p += n;
            continue;
        }

        /* a word: letters, digits, other UTF-8, inner apostrophes */
        t->len = 0;
        t->upper = 0;
        t->lower = 0;
        t->boundary = sc->boundary;
        sc->boundary = 0;

        for ( ;; ) {
            if (cl == SA_CH_APOS) {
                if (sc->p + n >= sc->end
                    || sa_senti_class(sc->p + n, sc->end, &m) != SA_CH_WORD)
                {
                    break;
                }

                if (t->len < SA_SENTI_WORD - 1) {
                    t->w[t->len] = '\'';
                }

                t->len++;

            } else if (*sc->p < 0x80) {
                if (*sc->p >= 'A' && *sc->p <= 'Z') {
                    t->upper++;

                } else if (*sc->p >= 'a' && *sc->p <= 'z') {
                    t->lower++;
                }

                if (t->len < SA_SENTI_WORD - 1) {
                    t->w[t->len] = (char) sa_esc_lower(*sc->p);
                }

                t->len++;

            } else {
                if (t->len + n < SA_SENTI_WORD) {
                    memcpy(t->w + t->len, sc->p, n);
                }

                t->len += n;
            }

            sc->p += n;

            if (sc->p >= sc->end) {
                break;
            }

            next = sa_senti_class(sc->p, sc->end, &n);
            if (next != SA_CH_WORD && next != SA_CH_APOS) {
                break;
            }

            cl = next;
        }

        if (t->len >= SA_SENTI_WORD) {
            t->len = SA_SENTI_WORD;
            t->w[0] = '\0';

        } else {
            t->w[t->len] = '\0';
        }

        return 1;
    }

    return 0;
}


static const sa_lex_t *
sa_lex_find(const char *key, size_t len)
{
    int     c;
    size_t  lo, hi, mid;

    lo = 0;
    hi = SA_LEXICON_N;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        c = sa_lex_cmp(key, len, sa_lexicon[mid].text);

        if (c == 0) {
            return &sa_lexicon[mid];
        }

        if (c < 0) {
            hi = mid;

        } else {
            lo = mid + 1;
        }
    }

    return NULL;
}


/* strcmp() order of key[0 .. len) against a NUL-terminated entry */
static int
sa_lex_cmp(const char *key, size_t len, const char *entry)
{
    size_t          i;
    unsigned char   a, b;

    for (i = 0; i < len; i++) {
        a = (unsigned char) key[i];
        b = (unsigned char) entry[i];

        if (b == '\0' || a != b) {
            return b == '\0' ? 1 : (a < b ? -1 : 1);
        }
    }

    return entry[len] == '\0' ? 0 : -1;
}


/* 2. same-issue signatures */

int
sa_esc_signature(sa_analyzer_t *a, const char *text, size_t len,
    sa_esc_sig_t *sig)
{
    int  rc;

    if (sig == NULL) {
        return SA_INVALID;
    }

    memset(sig, 0, sizeof(sa_esc_sig_t));

    if (a == NULL || (text == NULL && len > 0)) {
        return SA_INVALID;
    }

    if (len == 0) {
        return SA_OK;
    }

    rc = sa_analyze(a, text, len, sa_esc_sig_term, sig);

    return rc == SA_OK ? SA_OK : SA_ERROR;
}


static int
sa_esc_sig_term(void *data, const char *term, size_t len, uint32_t position)
{
    sa_esc_sig_t  *sig = data;

    size_t    i, last;
    uint32_t  h;

    if (sa_esc_is_filler(term, len)) {
        return 0;
    }

    h = sa_murmur3_32(term, len, 0);

    for (i = 0; i < sig->n && sig->term[i] < h; i++) {
        /* void */
    }

    if (i == SA_ESC_SIG || (i < sig->n && sig->term[i] == h)) {
        /* larger than the k smallest, or seen */
        return 0;
    }

    last = sig->n < SA_ESC_SIG ? sig->n : SA_ESC_SIG - 1;

    memmove(&sig->term[i + 1], &sig->term[i], (last - i) * sizeof(uint32_t));
    sig->term[i] = h;

    if (sig->n < SA_ESC_SIG) {
        sig->n++;
    }

    return 0;
}


static int
sa_esc_is_filler(const char *term, size_t len)
{
    int     c;
    size_t  lo, hi, mid;

    if (len >= 3 && memcmp(term + len - 3, "n't", 3) == 0) {
        return 1;
    }

    lo = 0;
    hi = SA_ESC_FILLER_N;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        c = sa_lex_cmp(term, len, sa_esc_filler[mid]);

        if (c == 0) {
            return 1;
        }

        if (c < 0) {
            hi = mid;

        } else {
            lo = mid + 1;
        }
    }

    return 0;
}


double
sa_esc_similarity(const sa_esc_sig_t *a, const sa_esc_sig_t *b)
{
    size_t  i, j, na, nb, both, taken;

    if (a == NULL || b == NULL || a->n == 0 || b->n == 0) {
        return 0;
    }

    na = a->n < SA_ESC_SIG ? a->n : SA_ESC_SIG;
    nb = b->n < SA_ESC_SIG ? b->n : SA_ESC_SIG;

    i = 0;
    j = 0;
    both = 0;
    taken = 0;

    /*
     * The k smallest of the union of the sketches are the k smallest of
     * the union of the sets, and one of them is in both sets exactly when
     * it is in both sketches (Broder; Cohen and Kaplan).  With both sets
     * smaller than k the sketches are the sets: the value is exact.
     */
    while (i < na || j < nb) {
        if (taken == SA_ESC_SIG && (na == SA_ESC_SIG || nb == SA_ESC_SIG)) {
            break;
        }

        if (j == nb || (i < na && a->term[i] < b->term[j])) {
            i++;

        } else if (i == na || b->term[j] < a->term[i]) {
            j++;

        } else {
            both++;
            i++;
            j++;
        }

        taken++;
    }

    return (double) both / (double) taken;
}


/* 3. escalation state and decisions */

void
sa_esc_state_init(sa_esc_state_t *s)
{
    memset(s, 0, sizeof(sa_esc_state_t));

    s->sentiment[0] = -1;
    s->sentiment[1] = -1;
}


void
sa_esc_policy_init(sa_esc_policy_t *p)
{
    p->repeats = 3;
    p->sentiment = 0.3;
    p->unserved = 2;
    p->max_duration_ms = 30 * 60 * 1000;
    p->similar = 0.5;
}


void
sa_esc_observe(sa_esc_state_t *s, const sa_esc_turn_t *t,
    const sa_esc_policy_t *p, sa_esc_decision_t *d)
{
    int       same, served_route;
    double    sim;
    uint32_t  prev_unserved;

    memset(d, 0, sizeof(sa_esc_decision_t));

    s->turns++;

    /* was the previous customer turn unserved?  Otherwise the run of
       unserved turns is over */
    prev_unserved = (s->unserved_turn == s->turns - 1);

    s->sentiment[1] = s->sentiment[0];
    s->sentiment[0] = (t->sentiment >= 0 && t->sentiment <= 1)
                      ? (float) t->sentiment : -1;

    served_route = (t->route == SA_ESC_ROUTE_KNOWLEDGE
                    || t->route == SA_ESC_ROUTE_ACTION);

    if (t->route == SA_ESC_ROUTE_SMALLTALK) {
        /* "thanks", "hello": the issue is over, or not begun */
        s->attempts = 0;
        s->issue[0] = '\0';
        memset(&s->sig, 0, sizeof(sa_esc_sig_t));

        if (prev_unserved) {
            /* smalltalk neither counts nor breaks the run */
            s->unserved_turn = s->turns;
        }

    } else {
        same = (t->intent != NULL && served_route
                && sa_esc_same_intent(s, t->intent));

        if (!same && t->sig != NULL) {
            sim = sa_esc_similarity(t->sig, &s->sig);
            same = (sim > 0 && sim >= p->similar);
        }

        s->attempts = same ? s->attempts + 1 : 1;

        if (t->intent != NULL && served_route) {
            sa_esc_copy_issue(s, t->intent);

        } else if (!same) {
            s->issue[0] = '\0';
        }

        if (t->sig != NULL) {
            s->sig = *t->sig;

        } else {
            memset(&s->sig, 0, sizeof(sa_esc_sig_t));
        }

        if (!prev_unserved) {
            s->unserved = 0;
        }

        if (t->route == SA_ESC_ROUTE_OUT_OF_SCOPE) {
            s->unserved++;
            s->unserved_turn = s->turns;
        }
    }

    if (s->escalated) {
        return;
    }

    if (t->high_stakes) {
        sa_esc_decide(s, d, SA_ESC_HIGH_STAKES, SA_ESC_HIGH, t->now_ms,
                      "high-stakes intent %.64s",
                      t->intent ? t->intent : "(unknown)");
        return;
    }

    if (t->route == SA_ESC_ROUTE_ESCALATE) {
        if (t->intent != NULL) {
            sa_esc_decide(s, d, SA_ESC_EXPLICIT, SA_ESC_NORMAL, t->now_ms,
                          "intent %.64s goes to a human", t->intent);

        } else {
            sa_esc_decide(s, d, SA_ESC_EXPLICIT, SA_ESC_NORMAL, t->now_ms,
                          "asked for a human");
        }

        return;
    }

    if (p->sentiment > 0
        && s->sentiment[0] >= 0 && s->sentiment[0] < p->sentiment
        && s->sentiment[1] >= 0 && s->sentiment[1] < p->sentiment)
    {
        sa_esc_decide(s, d, SA_ESC_SENTIMENT,
                      (s->sentiment[0] < p->sentiment / 2
                       || s->sentiment[1] < p->sentiment / 2)
                      ? SA_ESC_HIGH : SA_ESC_NORMAL,
                      t->now_ms, "sentiment %.2f then %.2f",
                      s->sentiment[1], s->sentiment[0]);
        return;
    }

    if (p->repeats > 0 && s->attempts >= p->repeats) {
        sa_esc_decide(s, d, SA_ESC_REPETITION, SA_ESC_NORMAL, t->now_ms,
                      "asked %u times about %.64s", (unsigned) s->attempts,
                      s->issue[0] ? s->issue : "the same issue");
        return;
    }

    if (t->route == SA_ESC_ROUTE_OUT_OF_SCOPE && p->unserved > 0
        && s->unserved >= p->unserved)
    {
        sa_esc_decide(s, d, SA_ESC_OUT_OF_SCOPE, SA_ESC_LOW, t->now_ms,
                      "%u messages in a row out of scope or unanswered",
                      (unsigned) s->unserved);
        return;
    }

    if (p->max_duration_ms > 0 && t->created_ms > 0
        && t->now_ms - t->created_ms > p->max_duration_ms)
    {
        sa_esc_decide(s, d, SA_ESC_TIME, SA_ESC_NORMAL, t->now_ms,
                      "conversation open for %lld min",
                      (long long) ((t->now_ms - t->created_ms) / 60000));
    }
}


void
sa_esc_unserved(sa_esc_state_t *s, const sa_esc_policy_t *p,
    int64_t now_ms, sa_esc_decision_t *d)
{
    memset(d, 0, sizeof(sa_esc_decision_t));

    if (s->turns == 0) {
        /* no customer message observed */
        return;
    }

    if (s->unserved_turn != s->turns) {
        if (s->unserved_turn != s->turns - 1) {
            s->unserved = 0;
        }

        s->unserved++;
        s->unserved_turn = s->turns;
    }

    if (!s->escalated && p->unserved > 0 && s->unserved >= p->unserved) {
        sa_esc_decide(s, d, SA_ESC_OUT_OF_SCOPE, SA_ESC_LOW, now_ms,
                      "%u messages in a row out of scope or unanswered",
                      (unsigned) s->unserved);
    }
}


static void
sa_esc_copy_issue(sa_esc_state_t *s, const char *intent)
{
    size_t  n;

    n = strlen(intent);
    if (n > SA_ESC_ISSUE_MAX) {
        n = SA_ESC_ISSUE_MAX;
    }

    memcpy(s->issue, intent, n);
    s->issue[n] = '\0';
}


/* the intent as s->issue keeps it: cut at SA_ESC_ISSUE_MAX bytes */
static int
sa_esc_same_intent(const sa_esc_state_t *s, const char *intent)
{
    return s->issue[0] != '\0'
           && strncmp(s->issue, intent, SA_ESC_ISSUE_MAX) == 0;
}


static void
sa_esc_decide(sa_esc_state_t *s, sa_esc_decision_t *d,
    sa_esc_reason_e reason, sa_esc_priority_e priority, int64_t now_ms,
    const char *fmt, ...)
{
    va_list  ap;

    d->reason = reason;
    d->priority = priority;

    va_start(ap, fmt);
    vsnprintf(d->detail, sizeof(d->detail), fmt, ap);
    va_end(ap);

    s->escalated = 1;
    s->reason = reason;
    s->escalated_ms = now_ms;
}


const char *
sa_esc_reason_name(sa_esc_reason_e r)
{
    static const char  *names[] = {
        "none", "explicit", "high_stakes", "repetition", "sentiment",
        "out_of_scope", "time"
    };

    if ((unsigned) r >= sizeof(names) / sizeof(names[0])) {
        return "none";
    }

    return names[r];
}


const char *
sa_esc_priority_name(sa_esc_priority_e p)
{
    static const char  *names[] = { "low", "normal", "high", "urgent" };

    if ((unsigned) p >= sizeof(names) / sizeof(names[0])) {
        return "normal";
    }

    return names[p];
}


/* the state's record */

size_t
sa_esc_state_encode(const sa_esc_state_t *s, unsigned char *buf,
    size_t cap)
{
    float     v;
    size_t    i, n;
    uint32_t  f;
    uint64_t  ms;

    if (cap < SA_ESC_STATE_V1) {
        return 0;
    }

    memset(buf, 0, SA_ESC_STATE_V1);

    n = s->sig.n < SA_ESC_SIG ? s->sig.n : SA_ESC_SIG;

    buf[0] = 1;
    buf[1] = s->escalated ? 1 : 0;
    buf[2] = (unsigned char) (s->reason <= SA_ESC_TIME ? s->reason : 0);
    buf[3] = (unsigned char) n;
    sa_esc_put32(buf + 4, s->attempts);
    sa_esc_put32(buf + 8, s->unserved);
    sa_esc_put32(buf + 12, s->turns);
    sa_esc_put32(buf + 16, s->unserved_turn);

    for (i = 0; i < 2; i++) {
        v = sa_esc_score_ok(s->sentiment[i]) ? s->sentiment[i] : -1;
        memcpy(&f, &v, 4);
        sa_esc_put32(buf + 20 + 4 * i, f);
    }

    ms = (uint64_t) s->escalated_ms;
    sa_esc_put32(buf + 32, (uint32_t) ms);
    sa_esc_put32(buf + 36, (uint32_t) (ms >> 32));

    for (i = 0; i < n; i++) {
        sa_esc_put32(buf + 40 + 4 * i, s->sig.term[i]);
    }

    n = strnlen(s->issue, SA_ESC_ISSUE_MAX);
    memcpy(buf + 104, s->issue, n);

    return SA_ESC_STATE_V1;
}


int
sa_esc_state_decode(const void *buf, size_t len, sa_esc_state_t *s)
{
    size_t                i, n;
    uint32_t              f;
    const unsigned char  *p = buf;

    sa_esc_state_init(s);

    if (p == NULL || len < SA_ESC_STATE_V1 || p[0] < 1 || p[1] > 1
        || p[2] > SA_ESC_TIME || p[3] > SA_ESC_SIG)
    {
        return SA_INVALID;
    }

    if (memchr(p + 104, '\0', SA_ESC_ISSUE_MAX + 1) == NULL) {
        return SA_INVALID;
    }

    n = p[3];

    for (i = 0; i < n; i++) {
        s->sig.term[i] = sa_esc_get32(p + 40 + 4 * i);

        if (i > 0 && s->sig.term[i] <= s->sig.term[i - 1]) {
            sa_esc_state_init(s);
            return SA_INVALID;
        }
    }

    s->sig.n = (uint32_t) n;

    for (i = 0; i < 2; i++) {
        f = sa_esc_get32(p + 20 + 4 * i);
        memcpy(&s->sentiment[i], &f, 4);

        if (!sa_esc_score_ok(s->sentiment[i])) {
            sa_esc_state_init(s);
            return SA_INVALID;
        }
    }

    s->escalated = p[1];
    s->reason = p[2];
    s->attempts = sa_esc_get32(p + 4);
    s->unserved = sa_esc_get32(p + 8);
    s->turns = sa_esc_get32(p + 12);
    s->unserved_turn = sa_esc_get32(p + 16);
    s->escalated_ms = (int64_t) ((uint64_t) sa_esc_get32(p + 32)
                                 | (uint64_t) sa_esc_get32(p + 36) << 32);

    memcpy(s->issue, p + 104, SA_ESC_ISSUE_MAX + 1);

    return SA_OK;
}


static void
sa_esc_put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char) v;
    p[1] = (unsigned char) (v >> 8);
    p[2] = (unsigned char) (v >> 16);
    p[3] = (unsigned char) (v >> 24);
}


static uint32_t
sa_esc_get32(const unsigned char *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16
           | (uint32_t) p[3] << 24;
}


static int
sa_esc_score_ok(float f)
{
    return f == -1 || (f >= 0 && f <= 1);
}


/* 4. business hours */

int
sa_hours_parse(const char *spec, size_t len, sa_hours_t *h, char *err,
    size_t errlen)
{
    int          a, b, d, offset;
    size_t       i, wlen, dash, glen;
    unsigned     days, open, close, ranged;
    const char  *w, *group;

    memset(h, 0, sizeof(sa_hours_t));

    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }

    if (spec == NULL) {
        len = 0;
    }

    days = 0;
    ranged = 0;
    offset = 0;
    group = NULL;
    glen = 0;
    i = 0;

    for ( ;; ) {
        while (i < len && (spec[i] == ' ' || spec[i] == '\t'
                           || spec[i] == ',' || spec[i] == '\n'))
        {
            i++;
        }

        if (i == len) {
            break;
        }

        w = spec + i;

        while (i < len && spec[i] != ' ' && spec[i] != '\t'
               && spec[i] != ',' && spec[i] != '\n')
        {
            i++;
        }

        /* quoted in messages: the first 40 bytes are enough */
        wlen = (size_t) ((spec + i) - w);
        if (wlen > 40) {
            wlen = sa_utf8_complete_prefix((const unsigned char *) w, 40);
        }

        if (offset) {
            sa_hours_err(err, errlen, "\"%.*s\" after the UTC offset, "
                         "which must come last", (int) wlen, w);
            goto failed;
        }

        if ((wlen >= 3 && (strncasecmp(w, "utc", 3) == 0
                           || strncasecmp(w, "gmt", 3) == 0))
            || w[0] == '+' || w[0] == '-')
        {
            if (sa_hours_offset(w, wlen, &h->utc_offset_min) != SA_OK) {
                sa_hours_err(err, errlen, "bad UTC offset \"%.*s\"",
                             (int) wlen, w);
                goto failed;
            }

            offset = 1;
            continue;
        }

        if (sa_esc_alpha((unsigned char) w[0])) {
            if (days != 0 && ranged) {
                /* the next group of days */
                days = 0;
            }

            if (days == 0) {
                group = w;
                ranged = 0;
            }

            glen = (size_t) ((w + wlen) - group);

            if (wlen == 5 && strncasecmp(w, "daily", 5) == 0) {
                days |= 0x7f;
                continue;
            }

            for (dash = 0; dash < wlen && w[dash] != '-'; dash++) {
                /* void */
            }

            a = sa_hours_day(w, dash);
            if (a < 0) {
                sa_hours_err(err, errlen, "unknown day \"%.*s\"",
                             (int) dash, w);
                goto failed;
            }

            b = a;

            if (dash < wlen) {
                b = sa_hours_day(w + dash + 1, wlen - dash - 1);
                if (b < 0) {
                    sa_hours_err(err, errlen, "unknown day \"%.*s\"",
                                 (int) (wlen - dash - 1), w + dash + 1);
                    goto failed;
                }
            }

            /* "fri-mon" wraps over the end of the week */
            for (d = a; ; d = (d + 1) % 7) {
                days |= 1u << d;

                if (d == b) {
                    break;
                }
            }

            continue;
        }

        if (!sa_esc_digit((unsigned char) w[0])) {
            sa_hours_err(err, errlen,
                         "\"%.*s\": expected days, hours or a UTC offset",
                         (int) wlen, w);
            goto failed;
        }

        if (days == 0) {
            sa_hours_err(err, errlen, "\"%.*s\": no days before the hours",
                         (int) wlen, w);
            goto failed;
        }

        for (dash = 0; dash < wlen && w[dash] != '-'; dash++) {
            /* void */
        }

        if (dash == wlen) {
            sa_hours_err(err, errlen, "\"%.*s\": expected HH:MM-HH:MM",
                         (int) wlen, w);
            goto failed;
        }

        if (sa_hours_time(w, dash, &open) != SA_OK) {
            sa_hours_err(err, errlen, "\"%.*s\": bad time \"%.*s\"",
                         (int) wlen, w, (int) dash, w);
            goto failed;
        }

        if (sa_hours_time(w + dash + 1, wlen - dash - 1, &close) != SA_OK) {
            sa_hours_err(err, errlen, "\"%.*s\": bad time \"%.*s\"",
                         (int) wlen, w, (int) (wlen - dash - 1),
                         w + dash + 1);
            goto failed;
        }

        if (close <= open) {
            sa_hours_err(err, errlen,
                         "\"%.*s\": closing time before opening time",
                         (int) wlen, w);
            goto failed;
        }

        if (h->n == SA_HOURS_SPANS) {
            sa_hours_err(err, errlen, "more than %d spans", SA_HOURS_SPANS);
            goto failed;
        }

        h->span[h->n].days = (uint8_t) days;
        h->span[h->n].open_min = (uint16_t) open;
        h->span[h->n].close_min = (uint16_t) close;
        h->n++;
        ranged = 1;
    }

    if (days != 0 && !ranged) {
        sa_hours_err(err, errlen, "\"%.*s\": days without hours",
                     (int) glen, group);
        goto failed;
    }

    if (h->n == 0) {
        sa_hours_err(err, errlen, "no opening hours");
        goto failed;
    }

    return SA_OK;

failed:

    memset(h, 0, sizeof(sa_hours_t));

    return SA_INVALID;
}


int
sa_hours_open(const sa_hours_t *h, int64_t now_ms)
{
    size_t    i;
    int64_t   local, day, min;
    unsigned  wd;

    if (h == NULL) {
        return 0;
    }

    local = now_ms + (int64_t) h->utc_offset_min * 60000;
    day = sa_floor_div(local, 86400000);
    min = (local - day * 86400000) / 60000;

    /* 1970-01-01 was a Thursday: day 0 is weekday 3 counted from Monday */
    wd = (unsigned) ((day % 7 + 7 + 3) % 7);

    for (i = 0; i < h->n; i++) {
        if ((h->span[i].days & (1u << wd))
            && min >= h->span[i].open_min && min < h->span[i].close_min)
        {
            return 1;
        }
    }

    return 0;
}


int64_t
sa_hours_next_open(const sa_hours_t *h, int64_t now_ms)
{
    size_t    i;
    int64_t   local, day, d, t, best;
    unsigned  wd;

    if (h == NULL || h->n == 0) {
        return -1;
    }

    if (sa_hours_open(h, now_ms)) {
        return now_ms;
    }

    local = now_ms + (int64_t) h->utc_offset_min * 60000;
    day = sa_floor_div(local, 86400000);
    best = -1;

    /* today's later openings up to the same weekday next week */
    for (d = day; d <= day + 7; d++) {
        wd = (unsigned) ((d % 7 + 7 + 3) % 7);

        for (i = 0; i < h->n; i++) {
            if (!(h->span[i].days & (1u << wd))) {
                continue;
            }

            t = d * 86400000 + (int64_t) h->span[i].open_min * 60000;

            if (t > local && (best < 0 || t < best)) {
                best = t;
            }
        }

        if (best >= 0) {
            break;
        }
    }

    if (best < 0) {
        return -1;
    }

    return best - (int64_t) h->utc_offset_min * 60000;
}


static void
sa_hours_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list  ap;

    if (err == NULL || errlen == 0) {
        return;
    }

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}


/* 0 Monday ... 6 Sunday, -1 unknown */
static int
sa_hours_day(const char *w, size_t len)
{
    int  i;

    for (i = 0; i < 7; i++) {
        if ((len == 3 && strncasecmp(w, sa_hours_days[i], 3) == 0)
            || (len == strlen(sa_hours_long[i])
                && strncasecmp(w, sa_hours_long[i], len) == 0))
        {
            return i;
        }
    }

    return -1;
}


/* "9:00", "09:00" .. "24:00" */
static int
sa_hours_time(const char *p, size_t len, unsigned *min)
{
    unsigned  hh, mm;

    if (len != 4 && len != 5) {
        return SA_INVALID;
    }

    if (p[len - 3] != ':' || !sa_esc_digit((unsigned char) p[0])
        || !sa_esc_digit((unsigned char) p[len - 4])
        || !sa_esc_digit((unsigned char) p[len - 2])
        || !sa_esc_digit((unsigned char) p[len - 1]))
    {
        return SA_INVALID;
    }

    hh = (unsigned) (p[len - 4] - '0');
    if (len == 5) {
        hh += 10 * (unsigned) (p[0] - '0');
    }

    mm = 10 * (unsigned) (p[len - 2] - '0') + (unsigned) (p[len - 1] - '0');

    if (hh > 24 || mm > 59 || (hh == 24 && mm != 0)) {
        return SA_INVALID;
    }

    *min = hh * 60 + mm;

    return SA_OK;
}


/* "UTC", "GMT", "UTC+2", "UTC-05:30", "+0100", "-5" */
static int
sa_hours_offset(const char *w, size_t len, int32_t *off)
{
    int       sign;
    size_t    i, nd;
    unsigned  hh, mm;

    i = 0;

    if (len >= 3 && (strncasecmp(w, "utc", 3) == 0
                     || strncasecmp(w, "gmt", 3) == 0))
    {
        i = 3;

        if (len == 3) {
            *off = 0;
            return SA_OK;
        }
    }

    if (w[i] != '+' && w[i] != '-') {
        return SA_INVALID;
    }

    sign = (w[i] == '-') ? -1 : 1;
    i++;

    hh = 0;
    mm = 0;

    for (nd = 0; i < len && sa_esc_digit((unsigned char) w[i]); i++, nd++) {
        hh = hh * 10 + (unsigned) (w[i] - '0');
    }

    if (nd == 4 && i == len) {
        /* "+0530" */
        mm = hh % 100;
        hh /= 100;

    } else if (nd < 1 || nd > 2) {
        return SA_INVALID;

    } else if (i < len) {
        if (w[i] != ':' || len - i != 3
            || !sa_esc_digit((unsigned char) w[i + 1])
            || !sa_esc_digit((unsigned char) w[i + 2]))
        {
            return SA_INVALID;
        }

        mm = 10 * (unsigned) (w[i + 1] - '0') + (unsigned) (w[i + 2] - '0');
    }

    if (mm > 59 || hh * 60 + mm > 14 * 60) {
        return SA_INVALID;
    }

    *off = sign * (int32_t) (hh * 60 + mm);

    return SA_OK;
}


static int64_t
sa_floor_div(int64_t a, int64_t b)
{
    int64_t  q;

    q = a / b;

    if ((a % b != 0) && ((a < 0) != (b < 0))) {
        q--;
    }

    return q;
}


/* 5. personal data */

int
sa_mask_pii(const char *in, size_t len, unsigned what, char **out,
    size_t *out_len)
{
    char                  tail[8], tag[32];
    size_t                i, n, end, at;
    unsigned char         c;
    sa_esc_buf_t          b;
    const unsigned char  *p = (const unsigned char *) in;

    *out = NULL;

    if (out_len != NULL) {
        *out_len = 0;
    }

    if (in == NULL && len > 0) {
        return SA_INVALID;
    }

    memset(&b, 0, sizeof(sa_esc_buf_t));

    /* most texts come out as long as they went in */
    b.cap = len + 1;
    b.p = malloc(b.cap);
    if (b.p == NULL) {
        return SA_ERROR;
    }

    i = 0;

    while (i < len && !b.failed) {
        c = p[i];

        if ((what & SA_MASK_EMAIL) && sa_mask_local(c) && c != '.'
            && (i == 0 || !sa_mask_local(p[i - 1])))
        {
            end = sa_mask_email(p, len, i, &at);

            if (end) {
                sa_buf_add(&b, &p[i], 1);
                sa_buf_str(&b, "***");
                sa_buf_add(&b, &p[at], end - at);
                i = end;
                continue;
            }
        }

        if ((what & (SA_MASK_CARD | SA_MASK_PHONE))
            && (sa_esc_digit(c) || c == '+' || c == '(')
            && !sa_mask_glued(p, len, i))
        {
            end = 0;

            if ((what & SA_MASK_CARD) && sa_esc_digit(c)) {
                end = sa_mask_card(p, len, i, tail);

                if (end) {
                    snprintf(tag, sizeof(tag), "[card ending %s]", tail);
                }
            }

            if (end == 0 && (what & SA_MASK_PHONE)) {
                end = sa_mask_phone(p, len, i, tail);

                if (end) {
                    snprintf(tag, sizeof(tag), "[phone ending %s]", tail);
                }
            }

            if (end) {
                sa_buf_str(&b, tag);
                i = end;
                continue;
            }
        }

        if (sa_esc_digit(c)) {
            /* the rest of a number is no number of its own */
            for (n = i; n < len && sa_esc_digit(p[n]); n++) {
                /* void */
            }

            sa_buf_add(&b, &p[i], n - i);
            i = n;
            continue;
        }

        n = 1;

        if (c >= 0x80) {
            n = sa_utf8_seq_len(&p[i], len - i);
            if (n == 0) {
                /* not UTF-8: passes through, a byte at a time */
                n = 1;
            }
        }

        sa_buf_add(&b, &p[i], n);
        i += n;
    }

    sa_buf_add(&b, "", 1);

    if (b.failed) {
        free(b.p);
        return SA_ERROR;
    }

    *out = b.p;

    if (out_len != NULL) {
        *out_len = b.len - 1;
    }

    return SA_OK;
}


/*
 * Whether the character before i (or, with i past a number, the one at
 * i) glues a number to something else: a letter, '#', '_', '@', '/', a
 * non-ASCII character, or a '.', ',', ':', '-' that joins two digits
 * ("1.5", "2024-01", "10:30").
 */
static int
sa_mask_glued(const unsigned char *in, size_t len, size_t i)
{
    unsigned char  c;

    if (i == 0) {
        return 0;
    }

    c = in[i - 1];

    if (sa_esc_alnum(c) || c == '#' || c == '_' || c == '@' || c == '/'
        || c == '+' || c >= 0x80)
    {
        return 1;
    }

    if ((c == '.' || c == ',' || c == ':' || c == '-')
        && i >= 2 && sa_esc_digit(in[i - 2]))
    {
        return 1;
    }

    return 0;
}


/* whether a number ending at end goes on glued to something */
static int
sa_mask_glued_after(const unsigned char *in, size_t len, size_t end)
{
    unsigned char  c;

    if (end >= len) {
        return 0;
    }

    c = in[end];

    if (sa_esc_alnum(c) || c == '#' || c == '_' || c == '@' || c >= 0x80) {
        return 1;
    }

    if ((c == '.' || c == ',' || c == ':' || c == '-' || c == '/')
        && end + 1 < len && sa_esc_digit(in[end + 1]))
    {
        return 1;
    }

    return 0;
}


static int
sa_mask_local(unsigned char c)
{
    return sa_esc_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+'
           || c == '-';
}


/* the end of an address whose local part starts at i, *at its '@' */
static size_t
sa_mask_email(const unsigned char *in, size_t len, size_t i, size_t *at)
{
    size_t  j, k, d, label, dot;

    for (j = i; j < len && sa_mask_local(in[j]); j++) {
        /* void */
    }

    if (j == len || in[j] != '@' || in[j - 1] == '.') {
        return 0;
    }

    for (k = j + 1;
         k < len && (sa_esc_alnum(in[k]) || in[k] == '-' || in[k] == '.');
         k++)
    {
        /* void */
    }

    /* a full stop or a dash after the address is not part of it */
    while (k > j + 1 && (in[k - 1] == '.' || in[k - 1] == '-')) {
        k--;
    }

    if (k < len && in[k] == '@') {
        return 0;
    }

    label = 0;
    dot = 0;

    for (d = j + 1; d < k; d++) {
        if (in[d] == '.') {
            if (label == 0 || in[d - 1] == '-') {
                return 0;
            }

            label = 0;
            dot = d;
            continue;
        }

        if (label == 0 && in[d] == '-') {
            return 0;
        }

        label++;
    }

    if (dot == 0 || k - dot < 3) {
        return 0;
    }

    for (d = dot + 1; d < k; d++) {
        if (!sa_esc_alpha(in[d])) {
            return 0;
        }
    }

    *at = j;

    return k;
}


/* digits in groups split by single spaces or dashes, 13..19 of them,
   Luhn-valid; the longest such prefix of the groups at i */
static size_t
sa_mask_card(const unsigned char *in, size_t len, size_t i, char *last4)
{
    int       sum, dbl, v;
    char      dg[19];
    size_t    j, r, nd, g, k, ends[19], counts[19];

    j = i;
    nd = 0;
    g = 0;

    for ( ;; ) {
        for (r = j; r < len && sa_esc_digit(in[r]); r++) {
            /* void */
        }

        if (nd + (r - j) > 19) {
            /* a longer number, or another number after the card */
            break;
        }

        memcpy(dg + nd, in + j, r - j);
        nd += r - j;
        ends[g] = r;
        counts[g] = nd;
        g++;

        if (r + 1 < len && (in[r] == ' ' || in[r] == '-')
            && sa_esc_digit(in[r + 1]))
        {
            j = r + 1;
            continue;
        }

        break;
    }

    while (g > 0) {
        g--;
        nd = counts[g];
        j = ends[g];

        if (nd < 13) {
            break;
        }

        if (sa_mask_glued_after(in, len, j) && in[j] != ' ') {
            /* only a space ends a prefix: "4111-1111-1111-1111-5" is no
               card */
            continue;
        }

        if (nd <= 15 && j == i + nd && sa_mask_order_before(in, i)) {
            /* "order 123456789012": an order id */
            continue;
        }

        sum = 0;
        dbl = 0;

        for (k = nd; k > 0; k--) {
            v = dg[k - 1] - '0';

            if (dbl) {
                v *= 2;
                if (v > 9) {
                    v -= 9;
                }
            }

            sum += v;
            dbl = !dbl;
        }

        if (sum % 10 != 0) {
            continue;
        }

        memcpy(last4, &dg[nd - 4], 4);
        last4[4] = '\0';

        return j;
    }

    return 0;
}


/*
 * an optional '+', then groups of digits split by spaces, dashes, dots
 * and parentheses (see sa_mask_pii()); the longest prefix of the groups
 * that is a phone number, so that a number right after it does not hide
 * it
 */
static size_t
sa_mask_phone(const unsigned char *in, size_t len, size_t i, char *last2)
{
    int            plus;
    char           dg[15];
    size_t         j, r, nd, ng, nsep, g[16], ends[16], cum[16];
    unsigned       sep, seps[16];
    unsigned char  c;

    j = i;
    plus = 0;

    if (in[j] == '+') {
        if (j + 1 == len || !(sa_esc_digit(in[j + 1]) || in[j + 1] == '(')) {
            return 0;
        }

        plus = 1;
        j++;
    }

    nd = 0;
    ng = 0;
    nsep = 0;
    sep = 0;

    while (j < len) {
        c = in[j];

        if (sa_esc_digit(c)) {
            for (r = j; r < len && sa_esc_digit(in[r]); r++) {
                /* void */
            }

            if (nd + (r - j) > 15 || ng == 16) {
                break;
            }

            memcpy(dg + nd, in + j, r - j);
            nd += r - j;
            g[ng] = r - j;
            ends[ng] = r;
            cum[ng] = nd;
            seps[ng] = sep | (ng > 0 ? seps[ng - 1] : 0);
            ng++;

            nsep = 0;
            sep = 0;
            j = r;
            continue;
        }

        if (c != ' ' && c != '-' && c != '.' && c != '(' && c != ')') {
            break;
        }

        /* at most two separators in a row, ") " or " (", one space */
        if (nsep == 2 || (c == ' ' && j > i && in[j - 1] == ' ')
            || (ng == 0 && c != '('))
        {
            break;
        }

        if (c == '.' && (j + 1 == len || !sa_esc_digit(in[j + 1]))) {
            /* a full stop */
            break;
        }

        sep |= (c == ' ') ? 1 : (c == '-') ? 2 : (c == '.') ? 4 : 8;
        nsep++;
        j++;
    }

    for ( /* void */ ; ng > 0; ng--) {
        if (sa_mask_phone_groups(in, len, i, plus, g, ng, seps[ng - 1],
                                 ends[ng - 1]))
        {
            nd = cum[ng - 1];
            last2[0] = dg[nd - 2];
            last2[1] = dg[nd - 1];
            last2[2] = '\0';

            return ends[ng - 1];
        }
    }

    return 0;
}


/* whether ng groups of digits g[], with the separators seps, ending at
   end, are a phone number */
static int
sa_mask_phone_groups(const unsigned char *in, size_t len, size_t i,
    int plus, const size_t *g, size_t ng, unsigned seps, size_t end)
{
    size_t  k, nd;

    if (sa_mask_glued_after(in, len, end)) {
        return 0;
    }

    nd = 0;

    for (k = 0; k < ng; k++) {
        nd += g[k];

        if (ng >= 2 && !plus && g[k] >= 7) {
            /* two long numbers in a row, not one phone number */
            return 0;
        }
    }

    if (nd < 7 || (nd < 9 && ng < 2)) {
        return 0;
    }

    if (ng == 1 && !plus && sa_mask_order_before(in, i)) {
        return 0;
    }

    if (seps == 4) {
        /* dots only: "192.168.10.200", "3.14159265", "1.234.567" */
        if (ng == 2 || (ng == 4 && g[0] <= 3 && g[1] <= 3 && g[2] <= 3
                        && g[3] <= 3))
        {
            return 0;
        }

        for (k = 1; k < ng && g[k] == 3; k++) {
            /* void */
        }

        if (k == ng) {
            return 0;
        }
    }

    if (nd < 9 && ng == 3 && (seps & 8) == 0
        && ((g[0] == 4 && g[1] == 2 && g[2] == 2)
            || (g[0] <= 2 && g[1] <= 2 && g[2] == 4)))
    {
        /* a date: "2024-01-15", "15.01.2024" */
        return 0;
    }

    return 1;
}


/* whether the text before i ends with "order", "order number", "order
   no.", "order id", "order #", "order:" */
static int
sa_mask_order_before(const unsigned char *in, size_t i)
{
    int     pass;
    size_t  k, e;

    k = i;

    for (pass = 0; pass < 2; pass++) {
        while (k > 0 && (in[k - 1] == ' ' || in[k - 1] == ':'
                         || in[k - 1] == '#' || in[k - 1] == '.'
                         || in[k - 1] == '\t'))
        {
            k--;
        }

        e = k;

        while (k > 0 && sa_esc_alpha(in[k - 1])) {
            k--;
        }

        if (k > 0 && (sa_esc_digit(in[k - 1]) || in[k - 1] >= 0x80)) {
            return 0;
        }

        if (sa_word_is(in + k, e - k, "order")) {
            return 1;
        }

        if (pass > 0
            || !(sa_word_is(in + k, e - k, "number")
                 || sa_word_is(in + k, e - k, "no")
                 || sa_word_is(in + k, e - k, "id")
                 || sa_word_is(in + k, e - k, "num")
                 || sa_word_is(in + k, e - k, "nr")))
        {
            return 0;
        }
    }

    return 0;
}


/* case-insensitive: the len bytes at p are the word w */
static int
sa_word_is(const unsigned char *p, size_t len, const char *w)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if (w[i] == '\0' || sa_esc_lower(p[i]) != (unsigned char) w[i]) {
            return 0;
        }
    }

    return w[len] == '\0';
}


/* 6. order ids */

size_t
sa_order_ids(const char *text, size_t len, char ids[][SA_ORDER_ID_MAX],
    size_t max)
{
    size_t                i, j, n, w, end;
    const unsigned char  *p = (const unsigned char *) text;

    n = 0;

    if (text == NULL) {
        return 0;
    }

    i = 0;

    while (i < len && n < max) {
        end = 0;

        if (p[i] == '#' && (i == 0 || !sa_esc_alnum(p[i - 1]))) {
            end = sa_order_token(p, len, i + 1, 4);
            j = i + 1;

        } else if (sa_esc_lower(p[i]) == 'o' && i + 5 <= len
                   && (i == 0 || !sa_esc_alpha(p[i - 1]))
                   && sa_word_is(p + i, 5, "order")
                   && (i + 5 == len || !sa_esc_alnum(p[i + 5])))
        {
            j = sa_order_skip(p, len, i + 5);

            /* "order number", "order no.", "order id" */
            for (w = j; w < len && sa_esc_alpha(p[w]); w++) {
                /* void */
            }

            if (sa_word_is(p + j, w - j, "number")
                || sa_word_is(p + j, w - j, "no")
                || sa_word_is(p + j, w - j, "id")
                || sa_word_is(p + j, w - j, "num")
                || sa_word_is(p + j, w - j, "nr"))
            {
                j = sa_order_skip(p, len, w);
            }

            end = sa_order_token(p, len, j, 5);

            if (end == 0) {
                i += 5;
                continue;
            }
        }

        if (end == 0) {
            i++;
            continue;
        }

        memcpy(ids[n], p + j, end - j);
        ids[n][end - j] = '\0';

        for (w = 0; w < n && strcmp(ids[w], ids[n]) != 0; w++) {
            /* void */
        }

        if (w == n) {
            n++;
        }

        i = end;
    }

    return n;
}


/* spaces, ':', '#', '.' between "order" and its id */
static size_t
sa_order_skip(const unsigned char *p, size_t len, size_t i)
{
    while (i < len && (p[i] == ' ' || p[i] == ':' || p[i] == '#'
                       || p[i] == '.' || p[i] == '\t'))
    {
        i++;
    }

    return i;
}


/* 0..3 letters and min..15 digits at i, not glued to what follows: the
   end, or 0 */
static size_t
sa_order_token(const unsigned char *p, size_t len, size_t i, size_t min)
{
    size_t  j, k;

    for (j = i; j < len && j - i < 4 && sa_esc_alpha(p[j]); j++) {
        /* void */
    }

    if (j - i > 3) {
        return 0;
    }

    for (k = j; k < len && sa_esc_digit(p[k]); k++) {
        /* void */
    }

    if (k - j < min || k - j > 15) {
        return 0;
    }

    if (k < len && (sa_esc_alnum(p[k]) || p[k] == '_' || p[k] >= 0x80)) {
        return 0;
    }

    return k;
}


/* 7. the handoff summary */

#define SA_SUMMARY_ORDERS  16
#define SA_SUMMARY_MOODS   5
#define SA_SUMMARY_NO_ISSUE  "(no message from the customer)"


/* white-space separated words, for telling an answer from a request */

static size_t
sa_words(const char *text, size_t len)
{
    size_t  i, n;
    int     in;

    n = 0;
    in = 0;

    for (i = 0; text != NULL && i < len; i++) {
        if (text[i] == ' ' || text[i] == '\t' || text[i] == '\n'
            || text[i] == '\r')
        {
            in = 0;

        } else if (!in) {
            in = 1;
            n++;
        }
    }

    return n;
}

int
sa_handoff_summary(const sa_msg_t *msgs, size_t n, const sa_esc_state_t *s,
    const sa_esc_decision_t *d, unsigned mask, char **summary,
    char **subject_out)
{
    char             *issue, *line, num[64];
    char              ids[SA_SUMMARY_ORDERS][SA_ORDER_ID_MAX];
    char              found[SA_SUMMARY_ORDERS][SA_ORDER_ID_MAX];
    double            score[SA_SUMMARY_MOODS], mean;
    size_t            i, k, f, nu, nids, nf, nscore, first, back,
                      replies, last, users;
    const char       *suffix;
    sa_esc_buf_t      b;
    sa_esc_reason_e   reason;

    if (summary == NULL) {
        return SA_INVALID;
    }

    *summary = NULL;

    if (subject_out != NULL) {
        *subject_out = NULL;
    }

    if (msgs == NULL) {
        n = 0;
    }

    reason = SA_ESC_NONE;

    if (d != NULL && d->reason != SA_ESC_NONE) {
        reason = d->reason;

    } else if (s != NULL && s->escalated) {
        reason = (sa_esc_reason_e) s->reason;
    }

    nu = 0;

    for (i = 0; i < n; i++) {
        if (msgs[i].role == SA_ROLE_USER) {
            nu++;
        }
    }

    /* which customer message is the issue, counted back from the last */
    suffix = NULL;
    back = 1;

    if (reason == SA_ESC_EXPLICIT && nu > 1) {
        /* a request for a human is not the issue */
        back = 2;
        suffix = " (then asked for a human)";

    } else if (reason != SA_ESC_HIGH_STAKES && s != NULL
               && s->attempts > 0)
    {
        /* the first message of the run on the current issue */
        back = s->attempts;
    }

    if (back > nu) {
        back = nu;
    }

    first = n;
    users = 0;

    for (i = n; i > 0 && back > 0; i--) {
        if (msgs[i - 1].role == SA_ROLE_USER && ++users == back) {
            first = i - 1;
            break;
        }
    }

    /* a short answer ("yes", "ok", an e-mail address) is not the issue
       either: the nearest earlier message that says something */
    for (i = first; first < n && i > 0 && sa_words(msgs[first].content,
                                                   msgs[first].content_len)
                                           < 3;
         i--)
    {
        if (msgs[i - 1].role == SA_ROLE_USER
            && sa_words(msgs[i - 1].content, msgs[i - 1].content_len) >= 3)
        {
            first = i - 1;
        }
    }

    if (first < n) {
        issue = sa_one_line(msgs[first].content, msgs[first].content_len,
                            mask, SA_SUMMARY_LINE, suffix);

    } else {
        issue = sa_one_line(SA_SUMMARY_NO_ISSUE,
                            sizeof(SA_SUMMARY_NO_ISSUE) - 1, 0,
                            SA_SUMMARY_LINE, NULL);
    }

    if (issue == NULL) {
        return SA_ERROR;
    }

    memset(&b, 0, sizeof(sa_esc_buf_t));

    sa_buf_str(&b, "Issue: ");
    sa_buf_str(&b, issue);
    sa_buf_str(&b, "\n");

    /* what the assistant said since */
    replies = 0;
    last = n;

    for (i = (first < n ? first + 1 : 0); i < n; i++) {
        if (msgs[i].role == SA_ROLE_ASSISTANT && msgs[i].content_len > 0) {
            replies++;
            last = i;
        }
    }

    if (replies == 0) {
        sa_buf_str(&b, "Tried: nothing yet\n");

    } else {
        line = sa_one_line(msgs[last].content, msgs[last].content_len, mask,
                           SA_SUMMARY_LINE, NULL);
        if (line == NULL) {
            b.failed = 1;

        } else {
            snprintf(num, sizeof(num), "Tried: %zu repl%s by the assistant; "
                     "last: \"", replies, replies == 1 ? "y" : "ies");
            sa_buf_str(&b, num);
            sa_buf_str(&b, line);
            sa_buf_str(&b, "\"\n");
            free(line);
        }
    }

    /* order ids anywhere in the conversation */
    nf = 0;

    for (i = 0; i < n && nf < SA_SUMMARY_ORDERS; i++) {
        if (msgs[i].role != SA_ROLE_USER
            && msgs[i].role != SA_ROLE_ASSISTANT)
        {
            continue;
        }

        nids = sa_order_ids(msgs[i].content, msgs[i].content_len, ids,
                            SA_SUMMARY_ORDERS);

        for (k = 0; k < nids && nf < SA_SUMMARY_ORDERS; k++) {
            for (f = 0; f < nf && strcmp(found[f], ids[k]) != 0; f++) {
                /* void */
            }

            if (f == nf) {
                memcpy(found[nf++], ids[k], SA_ORDER_ID_MAX);
            }
        }
    }

    if (nf > 0) {
        sa_buf_str(&b, "Orders: ");

        for (k = 0; k < nf; k++) {
            sa_buf_str(&b, k ? ", #" : "#");
            sa_buf_str(&b, found[k]);
        }

        sa_buf_str(&b, "\n");
    }

    /* the customer's last scores, oldest first */
    nscore = 0;

    for (i = n; i > 0 && nscore < SA_SUMMARY_MOODS; i--) {
        if (msgs[i - 1].role == SA_ROLE_USER) {
            nscore++;
        }
    }

    k = nscore;

    for (i = n; i > 0 && k > 0; i--) {
        if (msgs[i - 1].role == SA_ROLE_USER) {
            score[--k] = sa_sentiment(msgs[i - 1].content,
                                      msgs[i - 1].content_len);
        }
    }

    if (nscore > 0) {
        /* the mood now: the last two messages, as the sentiment rule */
        mean = (nscore == 1) ? score[0]
                             : (score[nscore - 2] + score[nscore - 1]) / 2;

        snprintf(num, sizeof(num), "Mood: %s (", sa_mood_name(mean));
        sa_buf_str(&b, num);

        for (k = 0; k < nscore; k++) {
            snprintf(num, sizeof(num), "%s%.2f", k ? ", " : "", score[k]);
            sa_buf_str(&b, num);
        }

        sa_buf_str(&b, ")\n");
    }

    sa_buf_str(&b, "Why: ");
    sa_buf_str(&b, sa_esc_reason_name(reason));

    if (reason != SA_ESC_NONE && d != NULL && d->reason == reason
        && d->detail[0] != '\0')
    {
        line = sa_one_line(d->detail, strnlen(d->detail, sizeof(d->detail)),
                           0, SA_SUMMARY_LINE, NULL);
        if (line == NULL) {
            b.failed = 1;

        } else {
            sa_buf_str(&b, ": ");
            sa_buf_str(&b, line);
            free(line);
        }
    }

    sa_buf_add(&b, "", 1);

    if (b.failed) {
        free(b.p);
        free(issue);
        return SA_ERROR;
    }

    *summary = b.p;

    if (subject_out != NULL) {
        *subject_out = issue;

    } else {
        free(issue);
    }

    return SA_OK;
}


/*
 * text as one line of at most max bytes, suffix included: personal data
 * masked, bytes that are not UTF-8 as '?', white space and control
 * characters as single spaces; cut on a character with "..."
 */
static char *
sa_one_line(const char *text, size_t len, unsigned mask, size_t max,
    const char *suffix)
{
    char           *m, *r;
    size_t          i, o, mlen, slen, room, cut;
    unsigned        space;
    unsigned char   c;

    if (sa_mask_pii(text, len, mask, &m, &mlen) != SA_OK) {
        return NULL;
    }

    sa_utf8_sanitize((unsigned char *) m, mlen);

    o = 0;
    space = 0;

    for (i = 0; i < mlen; i++) {
        c = (unsigned char) m[i];

        if (c <= ' ' || c == 0x7f) {
            space = (o > 0);
            continue;
        }

        if (space) {
            m[o++] = ' ';
            space = 0;
        }

        m[o++] = (char) c;
    }

    mlen = o;
    slen = suffix ? strlen(suffix) : 0;
    room = max > slen ? max - slen : 0;

    if (mlen > room) {
        cut = sa_utf8_complete_prefix((unsigned char *) m,
                                      room >= 3 ? room - 3 : 0);

        while (cut > 0 && m[cut - 1] == ' ') {
            cut--;
        }

        memcpy(m + cut, "...", 3);
        mlen = cut + 3;
    }

    r = realloc(m, mlen + slen + 1);
    if (r == NULL) {
        free(m);
        return NULL;
    }

    if (slen > 0) {
        memcpy(r + mlen, suffix, slen);
    }

    r[mlen + slen] = '\0';

    return r;
}


static void
sa_buf_add(sa_esc_buf_t *b, const void *data, size_t len)
{
    char    *p;
    size_t   cap;

    if (b->failed) {
        return;
    }

    if (b->len + len > b->cap) {
        cap = b->cap ? b->cap * 2 : 256;

        while (cap < b->len + len) {
            cap *= 2;
        }

        p = realloc(b->p, cap);
        if (p == NULL) {
            b->failed = 1;
            return;
        }

        b->p = p;
        b->cap = cap;
    }

    memcpy(b->p + b->len, data, len);
    b->len += len;
}


static void
sa_buf_str(sa_esc_buf_t *b, const char *s)
{
    sa_buf_add(b, s, strlen(s));
}
