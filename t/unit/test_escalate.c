
/*
 * Copyright (C) ngx_support_agent authors
 *
 * sa_escalate: the sentiment scorer, same-issue signatures, every rule of
 * sa_esc_observe() at its threshold, the state record, business hours,
 * masking of personal data, order ids and the handoff summary.
 */


#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "sa_escalate.h"
#include "sa_utf8.h"


#define S(s)  sa_sentiment((s), sizeof(s) - 1)

/* 2024-01-01T00:00:00Z, a Monday */
#define MONDAY  1704067200000LL
#define HOUR    3600000LL
#define MINUTE  60000LL
#define DAY     (24 * HOUR)


static sa_analyzer_t  *an;


static void
test_sentiment(void)
{
    size_t       i;
    char        *big;
    double       a, b;
    const char  *neutral[] = {
        "Where is my order #W2611340?",
        "How do I reset my password?",
        "Can you help me with my refund?",
        "Hi, good morning, I'd like to change my shipping address.",
        "I want to speak to a human",
        "What are your opening hours on Saturday?",
        "I need the PDF invoice for my UPS delivery",
        "Do you ship to Canada? Best regards, John",
        "How does the warranty work?",
        "No, that is all.",
        "No thanks, not right now.",
        NULL
    };
    const char  *angry[] = {
        "This is ridiculous, I've asked three times and nobody helps!",
        "I am very disappointed with your service.",
        "This is the third time I'm asking. Useless.",
        "You guys are a scam, total rip-off",
        "I'm fed up with this. Worst service ever.",
        "This is unacceptable, I am furious",
        "Terrible, horrible, awful support",
        "What a waste of time, no one helps",
        NULL
    };

    is_int(sa_sentiment_selftest(), SA_OK, "lexicon and fillers sorted");
    ok(sa_sentiment_lexicon_size() >= 150
       && sa_sentiment_lexicon_size() <= 450,
       "lexicon of %zu entries", sa_sentiment_lexicon_size());

    for (i = 0; neutral[i] != NULL; i++) {
        a = sa_sentiment(neutral[i], strlen(neutral[i]));
        ok(a >= 0.45 && a <= 0.55, "neutral %.3f: %s", a, neutral[i]);
    }

    for (i = 0; angry[i] != NULL; i++) {
        a = sa_sentiment(angry[i], strlen(angry[i]));
        ok(a < 0.3, "angry %.3f: %s", a, angry[i]);
    }

    ok(S("happy") > 0.6, "happy is positive");
    ok(S("I'm not happy") < 0.5, "not happy is negative");
    ok(S("not bad") >= 0.5, "not bad is not negative");
    ok(S("bad") < 0.5, "bad is negative");
    ok(S("This isn't helpful at all") < 0.5, "isn't helpful");
    ok(S("This isn\xe2\x80\x99t helpful") < 0.5,
       "isn't helpful with a curly apostrophe");
    ok(S("It never works") < 0.4, "never works");
    ok(S("it doesnt work") < 0.4, "doesnt (no apostrophe) work");
    ok(S("It works") == 0.5, "works alone is neutral");
    ok(S("not that I am happy") > 0.5, "a negator 4 words away: no effect");
    ok(S("not so happy") < 0.5, "a negator 2 words away negates");
    ok(S("No, I'm happy now") > 0.5, "punctuation ends a negator's reach");
    ok(S("Thanks!") > 0.6, "thanks > 0.6");
    ok(S("thank you") > 0.6, "thank you > 0.6");
    ok(S("Great, it works now!") > 0.8, "works now");
    ok(S("No problem, thanks") > 0.6, "no problem is not a problem");

    ok(S("I am very disappointed") < S("I am disappointed"),
       "an intensifier strengthens");
    ok(S("I am a bit disappointed") > S("I am disappointed"),
       "a diminisher weakens");
    ok(S("This is TERRIBLE") < S("This is terrible"),
       "a negative word in capitals counts more");
    ok(S("where is my order!!!") < S("where is my order"),
       "!!! lowers a neutral message");
    ok(S("where is my order!!!") < 0.5, "!!! alone is negative");
    ok(S("WHERE IS MY ORDER") < 0.5, "shouting is negative");
    ok(S("why???") < 0.5 && S("why?") == 0.5, "??? counts, ? does not");
    ok(S("This is terrible!!!") < S("This is terrible"),
       "!!! sharpens a complaint");
    ok(S("THANK YOU!!!") > 0.6, "emphasis never makes thanks negative");
    ok(S("Thanks, but it still doesn't work") < 0.5,
       "what follows but weighs more");
    ok(S("No, one more thing: the box") == 0.5
       && S("No. One more question") == 0.5,
       "no negation without a sentiment word");
    ok(S("no one helps") < 0.3, "a frustration phrase");
    ok(S("a rip-off") < 0.3, "a hyphenated phrase");

    ok(S("\xf0\x9f\x98\xa1") < 0.3, "an angry emoji");
    ok(S("thanks\xf0\x9f\x91\x8d") > S("thanks"), "an emoji glued to a word");
    ok(S("ok :(") < 0.5 && S("ok :-)") > 0.5, "emoticons");
    ok(S("see https://example.com/a:b") == 0.5, "a URL is no emoticon");

    ok(sa_sentiment("", 0) == 0.5, "empty: 0.5");
    ok(sa_sentiment(NULL, 10) == 0.5, "NULL: 0.5");
    ok(S("\xff\xfe\x80\xc3") == 0.5, "invalid UTF-8 only: 0.5");
    ok(S("terrible\xff") < 0.3 && S("\xc3terrible") < 0.3,
       "invalid bytes separate words");
    ok(S("Tr\xc3\xa8s bien, merci beaucoup") == 0.5,
       "other languages pass through");
    ok(S("terrible\xc3\xa9") == 0.5, "a non-ASCII letter is part of a word");

    big = malloc(200001);
    for (i = 0; i < 200000; i++) {
        big[i] = (i % 2) ? ' ' : 'a';
    }

    memcpy(big + 100000, "awful", 5);
    a = sa_sentiment(big, 200000);
    ok(a < 0.5 && a > 0, "a 200 KB text: %.3f", a);
    free(big);

    a = S("terrible awful horrible pathetic useless scam worst");
    b = S("excellent amazing wonderful perfect awesome love");
    ok(a >= 0 && a < 0.01 && b <= 1 && b > 0.99, "scores stay in [0, 1]");

    is_str(sa_mood_name(0.39), "negative", "mood 0.39");
    is_str(sa_mood_name(0.4), "neutral", "mood 0.4");
    is_str(sa_mood_name(0.6), "neutral", "mood 0.6");
    is_str(sa_mood_name(0.61), "positive", "mood 0.61");
}


static void
sig(const char *text, sa_esc_sig_t *s)
{
    if (sa_esc_signature(an, text, strlen(text), s) != SA_OK) {
        s->n = 0xdead;
    }
}


static void
test_signature(void)
{
    size_t        i;
    uint32_t      k;
    sa_esc_sig_t  a, b, c;

    sig("I want a refund for my order", &a);
    sig("I want refunds for my orders!", &b);
    ok(a.n == 2, "fillers and stop words dropped: %u terms", a.n);
    ok(sa_esc_similarity(&a, &b) == 1, "refunds/refund: the same stems");

    sig("Where is my refund for order W2611340?", &a);
    sig("Still no refund for my order W2611340", &b);
    ok(sa_esc_similarity(&a, &b) >= 0.5, "a rephrasing is similar: %.2f",
       sa_esc_similarity(&a, &b));

    sig("How do I reset my password?", &a);
    sig("Can I change the delivery address?", &b);
    ok(sa_esc_similarity(&a, &b) < 0.2, "unrelated: %.2f",
       sa_esc_similarity(&a, &b));

    sig("I want my money back", &a);
    sig("I want my password reset", &b);
    ok(sa_esc_similarity(&a, &b) == 0, "shared fillers do not count");

    ok(sa_esc_similarity(&a, &a) == 1, "a message is its own issue");

    sig("thanks, I want to know", &c);
    is_int(c.n, 0, "fillers only: no terms");
    ok(sa_esc_similarity(&a, &c) == 0 && sa_esc_similarity(&c, &c) == 0,
       "empty: similarity 0");
    ok(sa_esc_similarity(NULL, &a) == 0, "NULL: similarity 0");

    is_int(sa_esc_signature(an, "", 0, &c), SA_OK, "empty text");
    is_int(c.n, 0, "empty text: no terms");
    is_int(sa_esc_signature(NULL, "x", 1, &c), SA_INVALID, "no analyzer");
    is_int(sa_esc_signature(an, "x", 1, NULL), SA_INVALID, "no sig");

    sig("alpha bravo charlie delta echo foxtrot golf hotel india juliet "
        "kilo lima mike november oscar papa quebec romeo sierra tango "
        "uniform victor whiskey xray yankee zulu alpha bravo", &a);
    is_int(a.n, SA_ESC_SIG, "a long text keeps SA_ESC_SIG terms");

    for (i = 1, k = 1; i < a.n; i++) {
        k &= a.term[i - 1] < a.term[i];
    }

    ok(k, "ascending, distinct");

    /* exact Jaccard under SA_ESC_SIG terms: {1,2,3} and {2,3,4} */
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    a.n = 3;
    a.term[0] = 1; a.term[1] = 2; a.term[2] = 3;
    b.n = 3;
    b.term[0] = 2; b.term[1] = 3; b.term[2] = 4;
    ok(sa_esc_similarity(&a, &b) == 0.5, "exact: 2 of 4");

    /* full sketches: {0..15} and {8..23}: the 16 smallest of the union
       are 0..15, of which 8..15 are in both */
    a.n = SA_ESC_SIG;
    b.n = SA_ESC_SIG;
    for (i = 0; i < SA_ESC_SIG; i++) {
        a.term[i] = (uint32_t) i;
        b.term[i] = (uint32_t) i + 8;
    }

    ok(sa_esc_similarity(&a, &b) == 0.5, "bottom-k estimate");
    ok(sa_esc_similarity(&a, &a) == 1, "bottom-k: identical");

    for (i = 0; i < SA_ESC_SIG; i++) {
        b.term[i] = (uint32_t) i + 100;
    }

    ok(sa_esc_similarity(&a, &b) == 0, "bottom-k: disjoint");
}


static sa_esc_turn_t
turn(sa_esc_route_e route, const char *intent, double sentiment,
    int64_t now)
{
    sa_esc_turn_t  t;

    memset(&t, 0, sizeof(t));
    t.route = route;
    t.intent = intent;
    t.sentiment = sentiment;
    t.now_ms = now;
    t.created_ms = MONDAY;

    return t;
}


static void
test_observe(void)
{
    int                i;
    sa_esc_sig_t       s1, s2;
    sa_esc_turn_t      t;
    sa_esc_state_t     s;
    sa_esc_policy_t    p;
    sa_esc_decision_t  d;

    sa_esc_policy_init(&p);
    ok(p.repeats == 3 && p.sentiment == 0.3 && p.unserved == 2
       && p.max_duration_ms == 30 * MINUTE && p.similar == 0.5,
       "policy defaults");

    sa_esc_state_init(&s);
    ok(s.attempts == 0 && s.turns == 0 && s.sentiment[0] == -1
       && s.sentiment[1] == -1 && s.issue[0] == '\0' && s.sig.n == 0
       && !s.escalated, "state init");

    /* explicit */
    t = turn(SA_ESC_ROUTE_ESCALATE, "contact_human_agent", 0.5, MONDAY + 5);
    sa_esc_observe(&s, &t, &p, &d);
    ok(d.reason == SA_ESC_EXPLICIT && d.priority == SA_ESC_NORMAL,
       "escalate route: explicit, normal");
    is_str(d.detail, "intent contact_human_agent goes to a human",
           "explicit: detail");
    ok(s.escalated == 1 && s.reason == SA_ESC_EXPLICIT
       && s.escalated_ms == MONDAY + 5 && s.turns == 1,
       "explicit: state records the handoff");

    sa_esc_observe(&s, &t, &p, &d);
    ok(d.reason == SA_ESC_NONE && s.turns == 2 && s.reason == SA_ESC_EXPLICIT
       && s.escalated_ms == MONDAY + 5,
       "escalated once: no new decision, state still updated");

    sa_esc_state_init(&s);
    t = turn(SA_ESC_ROUTE_ESCALATE, NULL, 0.5, MONDAY);
    sa_esc_observe(&s, &t, &p, &d);
    is_str(d.detail, "asked for a human", "explicit without an intent");

    /* high stakes */
    sa_esc_state_init(&s);
    t = turn(SA_ESC_ROUTE_ESCALATE, "fraud", 0.1, MONDAY);
    t.high_stakes = 1;
    sa_esc_observe(&s, &t, &p, &d);
    ok(d.reason == SA_ESC_HIGH_STAKES && d.priority == SA_ESC_HIGH,
       "high stakes: high");
    is_str(d.detail, "high-stakes intent fraud", "high stakes: detail");

    sa_esc_state_init(&s);
    t = turn(SA_ESC_ROUTE_KNOWLEDGE, "account_security", 0.5, MONDAY);
    t.high_stakes = 1;
    sa_esc_observe(&s, &t, &p, &d);
    ok(d.reason == SA_ESC_HIGH_STAKES, "high stakes on any route");

    /* sentiment */
    sa_esc_state_init(&s);
    t = turn(SA_ESC_ROUTE_KNOWLEDGE, "a", 0.2, MONDAY);
    sa_esc_observe(&s, &t, &p, &d);
    ok(d.reason == SA_ESC_NONE, "sentiment: one negative message is not "
       "enough");
    t = turn(SA_ESC_ROUTE_KNOWLEDGE, "b", 0.25, MONDAY);
    sa_esc_observe(&s, &t, &p, &d);
    ok(d.reason == SA_ESC_SENTIMENT && d.priority == SA_ESC_NORMAL,
       "sentiment: two below 0.3, normal");
    is_str(d.detail, "sentiment 0.20 then 0.25", "sentiment: detail");
    ok(s.sentiment[0] == 0.25f && s.sentiment[1] == 0.2f, "scores shifted");

    sa_esc_state_init(&s);
    t = turn(SA_ESC_ROUTE_KNOWLEDGE, "a", 0.2, MONDAY);
    sa_esc_observe(&s, &t, &p, &d);
    t = turn(SA_ESC_ROUTE_KNOWLEDGE, "b", 0.3, MONDAY);
    sa_esc_observe(&s, &t, &p, &d);
    ok(d.reason == SA_ESC_NONE, "sentiment: 0.3 is not below 0.3");

    sa_esc_state_init(&s);
    t = turn(SA_ESC_ROUTE_KNOWLEDGE, "a", 0.14, MONDAY);
    sa_esc_observe(&s, &t, &p, &d);
    t = turn(SA_ESC_ROUTE_KNOWLEDGE, "b", 0.29, MONDAY);
    sa_esc_observe(&s, &t, &p, &d);
    ok(d.reason == SA_ESC_SENTIMENT && d.priority == SA_ESC_HIGH,
       "sentiment: one below half the threshold: high");

    sa_esc_state_init(&s);
    t = turn(SA_ESC_ROUTE_KNOWLEDGE, "a", 0.1, MONDAY);
    sa_esc_observe(&s, &t, &p, &d);
    t = turn(SA_ESC_ROUTE_KNOWLEDGE, "b", 0.6, MONDAY);
    sa_esc_observe(&s, &t, &p, &d);
    t = turn(SA_ESC_ROUTE_KNOWLEDGE, "c", 0.1, MONDAY);
    sa_esc_observe(&s, &t, &p, &d);
    ok(d.reason == SA_ESC_NONE, "sentiment: not two in a row");

    sa_esc_state_init(&s);
    t = turn(SA_ESC_ROUTE_KNOWLEDGE, "a", 0.1, MONDAY);
    sa_esc_observe(&s, &t, &p, &d);
    t = turn(SA_ESC_ROUTE_KNOWLEDGE, "b", -1, MONDAY);
    sa_esc_observe(&s, &t, &p, &d);
    t = turn(SA_ESC_ROUTE_KNOWLEDGE, "c", 0.1, MONDAY);
    sa_esc_observe(&s, &t, &p, &d);
    ok(d.reason == SA_ESC_NONE && s.sentiment[1] == -1,
       "sentiment: an unscored message breaks the pair");

    p.sentiment = 0;
    sa_esc_state_init(&s);
    for (i = 0; i < 4; i++) {
        t = turn(SA_ESC_ROUTE_KNOWLEDGE, i % 2 ? "a" : "b", 0.01, MONDAY);
        sa_esc_observe(&s, &t, &p, &d);
    }

    ok(d.reason == SA_ESC_NONE, "sentiment 0: off");
    sa_esc_policy_init(&p);

    /* repetition by intent */
    sa_esc_state_init(&s);
    t = turn(SA_ESC_ROUTE_ACTION, "get_refund", 0.5, MONDAY);
    sa_esc_observe(&s, &t, &p, &d);
    sa_esc_observe(&s, &t, &p, &d);
    ok(d.reason == SA_ESC_NONE && s.attempts == 2, "twice: not yet");
    is_str(s.issue, "get_refund", "the issue is the intent");
    sa_esc_observe(&s, &t, &p, &d);
    ok(d.reason == SA_ESC_REPETITION && d.priority == SA_ESC_NORMAL,
       "three times: repetition, normal");
    is_str(d.detail, "asked 3 times about get_refund", "repetition: detail");

    sa_esc_state_init(&s);
    sa_esc_observe(&s, &t, &p, &d);
    sa_esc_observe(&s, &t, &p, &d);
    t = turn(SA_ESC_ROUTE_SMALLTALK, "thanks", 0.8, MONDAY);
    sa_esc_observe(&s, &t, &p, &d);
    ok(s.attempts == 0 && s.issue[0] == '\0', "smalltalk ends the issue");
    t = turn(SA_ESC_ROUTE_ACTION, "get_refund", 0.5, MONDAY);
    sa_esc_observe(&s, &t, &p, &d);
    ok(d.reason == SA_ESC_NONE && s.attempts == 1,
       "after smalltalk the count starts again");

    sa_esc_state_init(&s);
    sa_esc_observe(&s, &t, &p, &d);
    sa_esc_observe(&s, &t, &p, &d);
    t = turn(SA_ESC_ROUTE_ACTION, "track_order", 0.5, MONDAY);
    sa_esc_observe(&s, &t, &p, &d);
    ok(d.reason == SA_ESC_NONE && s.attempts == 1,
       "another intent is another issue");
    is_str(s.issue, "track_order", "the new issue");

    sa_esc_state_init(&s);
    t = turn(SA_ESC_ROUTE_OUT_OF_SCOPE, "out_of_scope", 0.5, MONDAY);
    p.unserved = 0;
    for (i = 0; i < 3; i++) {
        sa_esc_observe(&s, &t, &p, &d);
    }

    ok(d.reason == SA_ESC_NONE && s.attempts == 1,
       "an out-of-scope intent is no issue");
    sa_esc_policy_init(&p);

    p.repeats = 0;
    sa_esc_state_init(&s);
    t = turn(SA_ESC_ROUTE_ACTION, "get_refund", 0.5, MONDAY);
    for (i = 0; i < 10; i++) {
        sa_esc_observe(&s, &t, &p, &d);
    }

    ok(d.reason == SA_ESC_NONE && s.attempts == 10, "repeats 0: off");
    sa_esc_policy_init(&p);

    /* repetition by similarity, no router */
    sig("Where is my refund for order W2611340?", &s1);
    sig("Still no refund for my order W2611340", &s2);
    sa_esc_state_init(&s);
    t = turn(SA_ESC_ROUTE_UNKNOWN, NULL, 0.5, MONDAY);
    t.sig = &s1;
    sa_esc_observe(&s, &t, &p, &d);
    t.sig = &s2;
    sa_esc_observe(&s, &t, &p, &d);
    ok(s.attempts == 2 && d.reason == SA_ESC_NONE, "similar: twice");
    t.sig = &s1;
    sa_esc_observe(&s, &t, &p, &d);
    ok(d.reason == SA_ESC_REPETITION, "similar three times: repetition");
    is_str(d.detail, "asked 3 times about the same issue",
           "similar: detail");

    p.similar = 1.01;
    sa_esc_state_init(&s);
    for (i = 0; i < 3; i++) {
        sa_esc_observe(&s, &t, &p, &d);
    }

    ok(d.reason == SA_ESC_NONE && s.attempts == 1,
       "similar above 1: never the same");
    sa_esc_policy_init(&p);

    /* out of scope */
    sa_esc_state_init(&s);
    t = turn(SA_ESC_ROUTE_OUT_OF_SCOPE, "out_of_scope", 0.5, MONDAY + 7);
    sa_esc_observe(&s, &t, &p, &d);
    ok(d.reason == SA_ESC_NONE && s.unserved == 1, "one unserved");
    sa_esc_observe(&s, &t, &p, &d);
    ok(d.reason == SA_ESC_OUT_OF_SCOPE && d.priority == SA_ESC_LOW
       && s.escalated_ms == MONDAY + 7, "two unserved: out of scope, low");

    sa_esc_state_init(&s);
    sa_esc_observe(&s, &t, &p, &d);
    t = turn(SA_ESC_ROUTE_KNOWLEDGE, "x", 0.5, MONDAY);
    sa_esc_observe(&s, &t, &p, &d);
    t = turn(SA_ESC_ROUTE_OUT_OF_SCOPE, "out_of_scope", 0.5, MONDAY);
    sa_esc_observe(&s, &t, &p, &d);
    ok(d.reason == SA_ESC_NONE && s.unserved == 1,
       "a served question breaks the run");

    sa_esc_state_init(&s);
    sa_esc_observe(&s, &t, &p, &d);
    t = turn(SA_ESC_ROUTE_SMALLTALK, "greeting", 0.5, MONDAY);
    sa_esc_observe(&s, &t, &p, &d);
    t = turn(SA_ESC_ROUTE_OUT_OF_SCOPE, "out_of_scope", 0.5, MONDAY);
    sa_esc_observe(&s, &t, &p, &d);
    ok(d.reason == SA_ESC_OUT_OF_SCOPE && s.unserved == 2,
       "smalltalk does not break the run");

    p.unserved = 0;
    sa_esc_state_init(&s);
    for (i = 0; i < 5; i++) {
        sa_esc_observe(&s, &t, &p, &d);
    }

    ok(d.reason == SA_ESC_NONE && s.unserved == 5, "unserved 0: off");
    sa_esc_policy_init(&p);

    /* "nothing relevant found" */
    sa_esc_state_init(&s);
    t = turn(SA_ESC_ROUTE_KNOWLEDGE, "warranty", 0.5, MONDAY);
    sa_esc_unserved(&s, &p, MONDAY, &d);
    ok(d.reason == SA_ESC_NONE && s.unserved == 0,
       "unserved before any message: nothing");
    sa_esc_observe(&s, &t, &p, &d);
    sa_esc_unserved(&s, &p, MONDAY, &d);
    sa_esc_unserved(&s, &p, MONDAY, &d);
    ok(d.reason == SA_ESC_NONE && s.unserved == 1,
       "a turn counts once, however often it is reported");
    t = turn(SA_ESC_ROUTE_KNOWLEDGE, "shipping", 0.5, MONDAY + 9);
    sa_esc_observe(&s, &t, &p, &d);
    ok(d.reason == SA_ESC_NONE && s.unserved == 1,
       "the next question keeps the run until it is answered");
    sa_esc_unserved(&s, &p, MONDAY + 9, &d);
    ok(d.reason == SA_ESC_OUT_OF_SCOPE && d.priority == SA_ESC_LOW
       && s.escalated_ms == MONDAY + 9, "two unanswered: out of scope");
    is_str(d.detail, "2 messages in a row out of scope or unanswered",
           "unserved: detail");
    sa_esc_observe(&s, &t, &p, &d);
    sa_esc_unserved(&s, &p, MONDAY + 9, &d);
    ok(d.reason == SA_ESC_NONE && s.unserved == 3,
       "escalated: counted, no new decision");

    sa_esc_state_init(&s);
    sa_esc_observe(&s, &t, &p, &d);
    sa_esc_unserved(&s, &p, MONDAY, &d);
    sa_esc_observe(&s, &t, &p, &d);
    sa_esc_observe(&s, &t, &p, &d);
    sa_esc_unserved(&s, &p, MONDAY, &d);
    ok(d.reason == SA_ESC_NONE && s.unserved == 1,
       "an answered turn between breaks the run");

    sa_esc_state_init(&s);
    t = turn(SA_ESC_ROUTE_OUT_OF_SCOPE, "out_of_scope", 0.5, MONDAY);
    sa_esc_observe(&s, &t, &p, &d);
    sa_esc_unserved(&s, &p, MONDAY, &d);
    ok(d.reason == SA_ESC_NONE && s.unserved == 1,
       "out of scope and nothing found: one turn");

    /* time */
    sa_esc_state_init(&s);
    t = turn(SA_ESC_ROUTE_KNOWLEDGE, "a", 0.5, MONDAY + 30 * MINUTE);
    sa_esc_observe(&s, &t, &p, &d);
    ok(d.reason == SA_ESC_NONE, "time: exactly 30 minutes is not over");
    t = turn(SA_ESC_ROUTE_KNOWLEDGE, "b", 0.5, MONDAY + 30 * MINUTE + 1);
    sa_esc_observe(&s, &t, &p, &d);
    ok(d.reason == SA_ESC_TIME && d.priority == SA_ESC_NORMAL,
       "time: over 30 minutes");
    is_str(d.detail, "conversation open for 30 min", "time: detail");

    sa_esc_state_init(&s);
    t.created_ms = 0;
    sa_esc_observe(&s, &t, &p, &d);
    ok(d.reason == SA_ESC_NONE, "time: unknown start");
    p.max_duration_ms = 0;
    t.created_ms = MONDAY;
    sa_esc_observe(&s, &t, &p, &d);
    ok(d.reason == SA_ESC_NONE, "time 0: off");
    sa_esc_policy_init(&p);

    /* precedence */
    sa_esc_state_init(&s);
    t = turn(SA_ESC_ROUTE_ACTION, "get_refund", 0.1, MONDAY + 31 * MINUTE);
    sa_esc_observe(&s, &t, &p, &d);
    ok(d.reason == SA_ESC_TIME, "time fires when nothing else does");
    sa_esc_state_init(&s);
    t.now_ms = MONDAY;
    sa_esc_observe(&s, &t, &p, &d);
    sa_esc_observe(&s, &t, &p, &d);
    ok(d.reason == SA_ESC_SENTIMENT, "sentiment before time");
    sa_esc_state_init(&s);
    p.repeats = 2;
    sa_esc_observe(&s, &t, &p, &d);
    sa_esc_observe(&s, &t, &p, &d);
    ok(d.reason == SA_ESC_SENTIMENT, "sentiment before repetition");
    sa_esc_state_init(&s);
    t.sentiment = 0.5;
    t.route = SA_ESC_ROUTE_OUT_OF_SCOPE;
    t.sig = &s1;
    sa_esc_observe(&s, &t, &p, &d);
    sa_esc_observe(&s, &t, &p, &d);
    ok(d.reason == SA_ESC_REPETITION, "repetition before out of scope");
    sa_esc_policy_init(&p);
    sa_esc_state_init(&s);
    t = turn(SA_ESC_ROUTE_KNOWLEDGE, "a", 0.1, MONDAY);
    sa_esc_observe(&s, &t, &p, &d);
    t = turn(SA_ESC_ROUTE_ESCALATE, "complaint", 0.1, MONDAY);
    sa_esc_observe(&s, &t, &p, &d);
    ok(d.reason == SA_ESC_EXPLICIT, "explicit before sentiment");
    sa_esc_state_init(&s);
    t.high_stakes = 1;
    sa_esc_observe(&s, &t, &p, &d);
    ok(d.reason == SA_ESC_HIGH_STAKES, "high stakes before explicit");

    is_str(sa_esc_reason_name(SA_ESC_NONE), "none", "reason none");
    is_str(sa_esc_reason_name(SA_ESC_EXPLICIT), "explicit", "explicit");
    is_str(sa_esc_reason_name(SA_ESC_HIGH_STAKES), "high_stakes",
           "high_stakes");
    is_str(sa_esc_reason_name(SA_ESC_REPETITION), "repetition",
           "repetition");
    is_str(sa_esc_reason_name(SA_ESC_SENTIMENT), "sentiment", "sentiment");
    is_str(sa_esc_reason_name(SA_ESC_OUT_OF_SCOPE), "out_of_scope",
           "out_of_scope");
    is_str(sa_esc_reason_name(SA_ESC_TIME), "time", "time");
    is_str(sa_esc_reason_name((sa_esc_reason_e) 99), "none",
           "unknown reason");
    is_str(sa_esc_priority_name(SA_ESC_LOW), "low", "low");
    is_str(sa_esc_priority_name(SA_ESC_NORMAL), "normal", "normal");
    is_str(sa_esc_priority_name(SA_ESC_HIGH), "high", "high");
    is_str(sa_esc_priority_name(SA_ESC_URGENT), "urgent", "urgent");
}


static void
test_state(void)
{
    size_t             n;
    float              f;
    sa_esc_state_t     s, r;
    unsigned char      buf[SA_ESC_STATE_MAX], big[SA_ESC_STATE_MAX + 64];

    sa_esc_state_init(&s);
    s.attempts = 3;
    s.unserved = 2;
    s.turns = 0x01020304;
    s.unserved_turn = 7;
    s.sentiment[0] = 0.125f;
    s.sentiment[1] = -1;
    strcpy(s.issue, "get_refund");
    sig("Where is my refund for order W2611340?", &s.sig);
    s.escalated = 1;
    s.reason = SA_ESC_REPETITION;
    s.escalated_ms = -1234567890123LL;

    n = sa_esc_state_encode(&s, buf, sizeof(buf));
    is_int(n, SA_ESC_STATE_V1, "encoded length");
    ok(n <= SA_ESC_STATE_MAX, "within SA_ESC_STATE_MAX");
    is_int(buf[0], 1, "layout version 1");
    ok(buf[12] == 4 && buf[15] == 1, "little-endian");
    is_int(sa_esc_state_encode(&s, buf, SA_ESC_STATE_V1 - 1), 0,
           "cap too small: 0");

    n = sa_esc_state_encode(&s, buf, sizeof(buf));
    is_int(sa_esc_state_decode(buf, n, &r), SA_OK, "decode");
    ok(r.attempts == 3 && r.unserved == 2 && r.turns == 0x01020304
       && r.unserved_turn == 7 && r.sentiment[0] == 0.125f
       && r.sentiment[1] == -1 && r.escalated == 1
       && r.reason == SA_ESC_REPETITION
       && r.escalated_ms == -1234567890123LL,
       "round trip: counters, scores, handoff");
    is_str(r.issue, "get_refund", "round trip: issue");
    ok(r.sig.n == s.sig.n && r.sig.n > 0
       && memcmp(r.sig.term, s.sig.term, r.sig.n * 4) == 0,
       "round trip: signature");

    memset(big, 0xab, sizeof(big));
    memcpy(big, buf, n);
    big[0] = 2;
    is_int(sa_esc_state_decode(big, sizeof(big), &r), SA_OK,
           "a longer record of a later version");
    ok(r.attempts == 3 && strcmp(r.issue, "get_refund") == 0,
       "its tail ignored");

    is_int(sa_esc_state_decode(buf, n - 1, &r), SA_INVALID, "truncated");
    is_int(sa_esc_state_decode(NULL, n, &r), SA_INVALID, "NULL");
    memset(big, 0xff, sizeof(big));
    is_int(sa_esc_state_decode(big, sizeof(big), &r), SA_INVALID,
           "garbage");

    memcpy(big, buf, n);
    big[0] = 0;
    is_int(sa_esc_state_decode(big, n, &r), SA_INVALID, "version 0");
    memcpy(big, buf, n);
    big[1] = 2;
    is_int(sa_esc_state_decode(big, n, &r), SA_INVALID, "escalated 2");
    memcpy(big, buf, n);
    big[2] = SA_ESC_TIME + 1;
    is_int(sa_esc_state_decode(big, n, &r), SA_INVALID, "unknown reason");
    memcpy(big, buf, n);
    big[3] = SA_ESC_SIG + 1;
    is_int(sa_esc_state_decode(big, n, &r), SA_INVALID, "too many terms");
    memcpy(big, buf, n);
    memcpy(big + 44, big + 40, 4);
    is_int(sa_esc_state_decode(big, n, &r), SA_INVALID,
           "terms not ascending");
    memcpy(big, buf, n);
    f = 2.0f;
    memcpy(big + 20, &f, 4);
    is_int(sa_esc_state_decode(big, n, &r), SA_INVALID, "score above 1");
    f = NAN;
    memcpy(big + 20, &f, 4);
    is_int(sa_esc_state_decode(big, n, &r), SA_INVALID, "score NaN");
    memcpy(big, buf, n);
    memset(big + 104, 'x', SA_ESC_ISSUE_MAX + 1);
    is_int(sa_esc_state_decode(big, n, &r), SA_INVALID,
           "issue without its NUL");
    ok(r.turns == 0 && r.sentiment[0] == -1, "a rejected record: init");

    sa_esc_state_init(&s);
    n = sa_esc_state_encode(&s, buf, sizeof(buf));
    ok(sa_esc_state_decode(buf, n, &r) == SA_OK && r.sentiment[0] == -1
       && r.sig.n == 0 && r.issue[0] == '\0', "a fresh state");
}


static void
hours_err(const char *spec, const char *want)
{
    char        err[128];
    sa_hours_t  h;
    int         rc;

    rc = sa_hours_parse(spec, strlen(spec), &h, err, sizeof(err));
    ok(rc == SA_INVALID && h.n == 0 && strcmp(err, want) == 0,
       "hours \"%s\": %s", spec, err);
}


static void
test_hours(void)
{
    int         i;
    char        err[128], spec[512];
    sa_hours_t  h;

#define PARSE(s)  sa_hours_parse((s), strlen(s), &h, err, sizeof(err))

    is_int(PARSE("mon-fri 09:00-17:30, sat 10:00-14:00 UTC+01:00"), SA_OK,
           "hours: the example");
    ok(h.n == 2 && h.span[0].days == 0x1f && h.span[0].open_min == 540
       && h.span[0].close_min == 1050 && h.span[1].days == 0x20
       && h.span[1].open_min == 600 && h.span[1].close_min == 840
       && h.utc_offset_min == 60, "hours: spans and offset");

    ok(PARSE("daily 00:00-24:00") == SA_OK && h.n == 1
       && h.span[0].days == 0x7f && h.span[0].close_min == 1440
       && h.utc_offset_min == 0, "daily, 24:00 closes");
    ok(PARSE("FRI-Mon 10:00-12:00") == SA_OK && h.span[0].days == 0x71,
       "a range wrapping over the weekend");
    ok(PARSE("sun-sun 10:00-12:00") == SA_OK && h.span[0].days == 0x40,
       "a range of one day");
    ok(PARSE("mon 9:00-12:00 13:00-17:00") == SA_OK && h.n == 2
       && h.span[1].days == 1 && h.span[0].open_min == 540,
       "two ranges for one day, H:MM");
    ok(PARSE("mon, wed 08:00-10:00") == SA_OK && h.span[0].days == 0x05,
       "a list of days");
    ok(PARSE("monday 08:00-10:00 tuesday 09:00-10:00") == SA_OK
       && h.n == 2 && h.span[1].days == 0x02, "full day names");
    ok(PARSE("mon 08:00-10:00 UTC-05:30") == SA_OK
       && h.utc_offset_min == -330, "UTC-05:30");
    ok(PARSE("mon 08:00-10:00 +01:00") == SA_OK && h.utc_offset_min == 60,
       "+01:00");
    ok(PARSE("mon 08:00-10:00 gmt+2") == SA_OK && h.utc_offset_min == 120,
       "gmt+2");
    ok(PARSE("mon 08:00-10:00 UTC+0530") == SA_OK
       && h.utc_offset_min == 330, "UTC+0530");
    ok(PARSE("mon 08:00-10:00 UTC") == SA_OK && h.utc_offset_min == 0,
       "UTC");
    ok(PARSE("mon 08:00-10:00 UTC-14") == SA_OK
       && h.utc_offset_min == -840, "UTC-14");

    hours_err("mo 09:00-17:00", "unknown day \"mo\"");
    hours_err("mon-fr 09:00-17:00", "unknown day \"fr\"");
    hours_err("mon 18:00-09:00",
              "\"18:00-09:00\": closing time before opening time");
    hours_err("mon 09:00-09:00",
              "\"09:00-09:00\": closing time before opening time");
    hours_err("mon 25:00-26:00", "\"25:00-26:00\": bad time \"25:00\"");
    hours_err("mon 09:00-17:60", "\"09:00-17:60\": bad time \"17:60\"");
    hours_err("mon 24:30-24:40", "\"24:30-24:40\": bad time \"24:30\"");
    hours_err("mon 9-17", "\"9-17\": bad time \"9\"");
    hours_err("mon 09:00", "\"09:00\": expected HH:MM-HH:MM");
    hours_err("09:00-17:00", "\"09:00-17:00\": no days before the hours");
    hours_err("mon-fri", "\"mon-fri\": days without hours");
    hours_err("sat, sun UTC", "\"sat, sun\": days without hours");
    hours_err("mon 09:00-17:00 tue", "\"tue\": days without hours");
    hours_err("mon 09:00-17:00 UTC+15", "bad UTC offset \"UTC+15\"");
    hours_err("mon 09:00-17:00 UTC+1:5", "bad UTC offset \"UTC+1:5\"");
    hours_err("mon 09:00-17:00 UTC+01:60", "bad UTC offset \"UTC+01:60\"");
    hours_err("mon 09:00-17:00 UTC+1 tue 09:00-10:00",
              "\"tue\" after the UTC offset, which must come last");
    hours_err("mon 09:00-17:00 *",
              "\"*\": expected days, hours or a UTC offset");
    hours_err("", "no opening hours");
    hours_err(" , ", "no opening hours");

    spec[0] = '\0';
    for (i = 0; i < SA_HOURS_SPANS + 1; i++) {
        sprintf(spec + strlen(spec), "mon %02d:00-%02d:30 ", i, i);
    }

    hours_err(spec, "more than 14 spans");
    spec[strlen(spec) - 16] = '\0';
    ok(PARSE(spec) == SA_OK && h.n == SA_HOURS_SPANS, "14 spans fit");

    ok(sa_hours_parse("x", 1, &h, NULL, 0) == SA_INVALID,
       "no room for the error");

    /* open or closed, 2024-01-01 is a Monday */
    PARSE("mon-fri 09:00-17:30, sat 10:00-14:00");
    ok(!sa_hours_open(&h, MONDAY + 9 * HOUR - 1), "08:59:59.999 closed");
    ok(sa_hours_open(&h, MONDAY + 9 * HOUR), "09:00 open");
    ok(sa_hours_open(&h, MONDAY + 17 * HOUR + 29 * MINUTE + 59999),
       "17:29:59.999 open");
    ok(!sa_hours_open(&h, MONDAY + 17 * HOUR + 30 * MINUTE), "17:30 closed");
    ok(sa_hours_open(&h, MONDAY + 5 * DAY + 10 * HOUR), "saturday 10:00");
    ok(!sa_hours_open(&h, MONDAY + 5 * DAY + 15 * HOUR), "saturday 15:00");
    ok(!sa_hours_open(&h, MONDAY + 6 * DAY + 12 * HOUR), "sunday closed");
    ok(sa_hours_open(&h, MONDAY - 3 * DAY + 12 * HOUR),
       "friday before (an earlier week)");
    ok(sa_hours_open(&h, 12 * HOUR - 6 * DAY),
       "a friday before 1970");

    ok(sa_hours_next_open(&h, MONDAY + 12 * HOUR) == MONDAY + 12 * HOUR,
       "next open: now when open");
    ok(sa_hours_next_open(&h, MONDAY + 8 * HOUR) == MONDAY + 9 * HOUR,
       "next open: later the same day");
    ok(sa_hours_next_open(&h, MONDAY + 4 * DAY + 18 * HOUR)
       == MONDAY + 5 * DAY + 10 * HOUR, "next open: friday evening");
    ok(sa_hours_next_open(&h, MONDAY + 5 * DAY + 14 * HOUR)
       == MONDAY + 7 * DAY + 9 * HOUR, "next open: across the weekend");

    PARSE("mon-fri 09:00-17:30 UTC+01:00");
    ok(sa_hours_open(&h, MONDAY + 8 * HOUR)
       && !sa_hours_open(&h, MONDAY + 7 * HOUR + 59 * MINUTE)
       && !sa_hours_open(&h, MONDAY + 16 * HOUR + 30 * MINUTE),
       "UTC+1: 08:00Z opens, 16:30Z closes");
    ok(sa_hours_next_open(&h, MONDAY) == MONDAY + 8 * HOUR,
       "UTC+1: next opening in UTC");

    PARSE("sun 20:00-22:00 UTC-05:00");
    ok(sa_hours_open(&h, MONDAY + 2 * HOUR),
       "UTC-5: monday 02:00Z is sunday 21:00");
    ok(!sa_hours_open(&h, MONDAY + 21 * HOUR), "UTC-5: not in UTC");
    ok(sa_hours_next_open(&h, MONDAY + 4 * HOUR)
       == MONDAY + 7 * DAY + 1 * HOUR, "UTC-5: next sunday evening");

    PARSE("daily 00:00-24:00");
    ok(sa_hours_open(&h, MONDAY - 1) && sa_hours_open(&h, MONDAY),
       "always open");

    PARSE("fri-mon 10:00-12:00");
    ok(sa_hours_open(&h, MONDAY + 6 * DAY + 11 * HOUR)
       && !sa_hours_open(&h, MONDAY + 2 * DAY + 11 * HOUR),
       "a wrapping range: sunday open, wednesday closed");

    memset(&h, 0, sizeof(h));
    ok(sa_hours_next_open(&h, MONDAY) == -1 && !sa_hours_open(&h, MONDAY),
       "no spans: never");

#undef PARSE
}


static void
mask(const char *in, unsigned what, const char *want)
{
    char    *out;
    size_t   n;
    int      rc;

    rc = sa_mask_pii(in, strlen(in), what, &out, &n);
    ok(rc == SA_OK && strcmp(out, want) == 0 && n == strlen(out),
       "mask \"%s\" -> \"%s\"", in, rc == SA_OK ? out : "(error)");
    free(out);
}


static void
test_mask(void)
{
    char    *out;
    size_t   n;

    mask("mail me at jane.doe@example.com.", SA_MASK_ALL,
         "mail me at j***@example.com.");
    mask("<bob+x@mail.co.uk>", SA_MASK_ALL, "<b***@mail.co.uk>");
    mask("a@b and x@example.c and @example.com", SA_MASK_ALL,
         "a@b and x@example.c and @example.com");
    mask("card 4111 1111 1111 1111 exp", SA_MASK_ALL,
         "card [card ending 1111] exp");
    mask("4111-1111-1111-1111", SA_MASK_ALL, "[card ending 1111]");
    mask("4012888888881881", SA_MASK_ALL, "[card ending 1881]");
    mask("amex 3782 822463 10005", SA_MASK_ALL, "amex [card ending 0005]");
    mask("card 4111 1111 1111 1111 2 pcs", SA_MASK_ALL,
         "card [card ending 1111] 2 pcs");
    mask("4111111111111112", SA_MASK_ALL, "4111111111111112");
    mask("4111111111111111abc", SA_MASK_ALL, "4111111111111111abc");
    mask("call +1 (415) 555-2671 now", SA_MASK_ALL,
         "call [phone ending 71] now");
    mask("call 555-1234.", SA_MASK_ALL, "call [phone ending 34].");
    mask("0612345678", SA_MASK_ALL, "[phone ending 78]");
    mask("+33 6 12 34 56 78", SA_MASK_ALL, "[phone ending 78]");
    mask("555.123.4567", SA_MASK_ALL, "[phone ending 67]");
    mask("(555) 123 4567", SA_MASK_ALL, "[phone ending 67]");
    mask("+447911123456", SA_MASK_ALL, "[phone ending 56]");

    mask("order #W2611340", SA_MASK_ALL, "order #W2611340");
    mask("W2611340 A123456789 #123456789", SA_MASK_ALL,
         "W2611340 A123456789 #123456789");
    mask("id 12345678 and 1234567", SA_MASK_ALL, "id 12345678 and 1234567");
    mask("my order 1234567890", SA_MASK_ALL, "my order 1234567890");
    mask("Order number: 123456789012", SA_MASK_ALL,
         "Order number: 123456789012");
    mask("on 2024-01-15 at 10:30", SA_MASK_ALL, "on 2024-01-15 at 10:30");
    mask("15.01.2024", SA_MASK_ALL, "15.01.2024");
    mask("ip 192.168.100.200", SA_MASK_ALL, "ip 192.168.100.200");
    mask("pi 3.14159265", SA_MASK_ALL, "pi 3.14159265");
    mask("EUR 1.234.567", SA_MASK_ALL, "EUR 1.234.567");
    mask("orders 1234567 1234568", SA_MASK_ALL, "orders 1234567 1234568");
    mask("1234567890123456789012", SA_MASK_ALL, "1234567890123456789012");

    mask("jane@example.com 555-1234 4111111111111111", SA_MASK_EMAIL,
         "j***@example.com 555-1234 4111111111111111");
    mask("jane@example.com 555-1234 4111111111111111", SA_MASK_PHONE,
         "jane@example.com [phone ending 34] 4111111111111111");
    mask("jane@example.com 555-1234 4111111111111111", SA_MASK_CARD,
         "jane@example.com 555-1234 [card ending 1111]");
    mask("jane@example.com 555-1234", 0, "jane@example.com 555-1234");
    mask("Nothing to see here.", SA_MASK_ALL, "Nothing to see here.");
    mask("caf\xe9 jane@example.com \xff\xfe", SA_MASK_ALL,
         "caf\xe9 j***@example.com \xff\xfe");
    mask("\xc3\x9c" "n\xc3\xaf" "c\xc3\xb6" "d\xc3\xa9 555-1234", SA_MASK_ALL,
         "\xc3\x9c" "n\xc3\xaf" "c\xc3\xb6" "d\xc3\xa9 [phone ending 34]");
    mask("\xc3\xa9" "555-1234", SA_MASK_ALL, "\xc3\xa9" "555-1234");
    mask("", SA_MASK_ALL, "");

    is_int(sa_mask_pii(NULL, 0, SA_MASK_ALL, &out, NULL), SA_OK,
           "NULL, 0 bytes");
    is_str(out, "", "NULL: empty");
    free(out);
    is_int(sa_mask_pii(NULL, 3, SA_MASK_ALL, &out, &n), SA_INVALID,
           "NULL with a length");
    ok(out == NULL, "no output");

    is_int(sa_mask_pii("a\0b 555-1234", 12, SA_MASK_ALL, &out, &n), SA_OK,
           "NUL bytes inside");
    ok(n == 21 && memcmp(out, "a\0b [phone ending 34]", 22) == 0,
       "NUL bytes pass through");
    free(out);
}


static void
test_order_ids(void)
{
    char    ids[4][SA_ORDER_ID_MAX];
    size_t  n;

#define IDS(s)  sa_order_ids((s), strlen(s), ids, 4)

    n = IDS("Where is my order #W2611340?");
    ok(n == 1 && strcmp(ids[0], "W2611340") == 0, "#W2611340");
    n = IDS("order W2611340 and #W2611340, also #12345");
    ok(n == 2 && strcmp(ids[0], "W2611340") == 0
       && strcmp(ids[1], "12345") == 0, "deduplicated, in order");
    n = IDS("Order number 12345678 / order no. 98765 / ORDER ID: AB12345");
    ok(n == 3 && strcmp(ids[0], "12345678") == 0
       && strcmp(ids[1], "98765") == 0 && strcmp(ids[2], "AB12345") == 0,
       "order number, no., id");
    n = IDS("order #W1234567 and order: 55555");
    ok(n == 2 && strcmp(ids[0], "W1234567") == 0
       && strcmp(ids[1], "55555") == 0, "order #, order:");
    is_int(IDS("#123 order 1234 #ABCD1234 #1234567890123456"), 0,
           "too short, too many letters, too long");
    is_int(IDS("reorder 12345, orders 12345, order 12345x, a#12345"), 0,
           "not after the word order, glued");
    n = IDS("#1111 #2222 #3333 #4444 #5555");
    is_int(n, 4, "at most max");
    is_int(sa_order_ids(NULL, 5, ids, 4), 0, "NULL");
    is_int(sa_order_ids("#12345", 6, ids, 0), 0, "max 0");

#undef IDS
}


static void
msg(sa_msg_t *m, sa_role_e role, const char *text)
{
    memset(m, 0, sizeof(sa_msg_t));
    m->role = role;
    m->content = (char *) text;
    m->content_len = strlen(text);
}


static int
has_line(const char *text, const char *line)
{
    size_t       n;
    const char  *p;

    n = strlen(line);

    for (p = text; p != NULL; p = strchr(p, '\n')) {
        if (*p == '\n') {
            p++;
        }

        if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0')) {
            return 1;
        }
    }

    return 0;
}


static void
test_summary(void)
{
    int                 rc;
    char               *sum, *subj, long_msg[400];
    size_t              i;
    sa_msg_t            m[8];
    sa_esc_state_t      s;
    sa_esc_decision_t   d;

    msg(&m[0], SA_ROLE_USER, "Hi");
    msg(&m[1], SA_ROLE_ASSISTANT, "Hello! How can I help?");
    msg(&m[2], SA_ROLE_USER, "Where is my refund for order #W2611340?\n"
        "Email me at jane.doe@example.com");
    msg(&m[3], SA_ROLE_ASSISTANT, "Refunds take 5-7 days.");
    msg(&m[4], SA_ROLE_TOOL, "{\"order\": \"#W9999999\"}");
    msg(&m[5], SA_ROLE_USER, "I asked already, where is my refund??");
    msg(&m[6], SA_ROLE_ASSISTANT, "Your refund for\norder #W2611340 is on "
        "its way.");
    msg(&m[7], SA_ROLE_USER, "Where is my refund, this is ridiculous");

    sa_esc_state_init(&s);
    s.attempts = 3;
    memset(&d, 0, sizeof(d));
    d.reason = SA_ESC_REPETITION;
    d.priority = SA_ESC_NORMAL;
    strcpy(d.detail, "asked 3 times about track_refund");

    rc = sa_handoff_summary(m, 8, &s, &d, SA_MASK_ALL, &sum, &subj);
    is_int(rc, SA_OK, "summary");
    ok(has_line(sum, "Issue: Where is my refund for order #W2611340? "
                "Email me at j***@example.com"),
       "issue: the first of the run, one line, masked");
    is_str(subj, "Where is my refund for order #W2611340? Email me at "
           "j***@example.com", "subject: the issue alone");
    ok(has_line(sum, "Tried: 2 replies by the assistant; last: \"Your "
                "refund for order #W2611340 is on its way.\""),
       "tried: replies since the issue, the last one quoted");
    ok(has_line(sum, "Orders: #W2611340"), "orders (tool messages skipped)");
    ok(has_line(sum, "Mood: negative (0.50, 0.50, 0.50, 0.22)"),
       "mood: the customer's scores, the mood of the last two");
    ok(has_line(sum, "Why: repetition: asked 3 times about track_refund"),
       "why");
    ok(strlen(sum) < 1500 && sa_utf8_valid((unsigned char *) sum,
                                           strlen(sum)),
       "short, valid UTF-8");
    ok(strchr(sum, '\r') == NULL && sum[strlen(sum) - 1] != '\n',
       "lines separated by \\n");
    free(sum);
    free(subj);

    rc = sa_handoff_summary(m, 8, &s, &d, 0, &sum, NULL);
    ok(rc == SA_OK && strstr(sum, "jane.doe@example.com") != NULL,
       "mask 0: nothing masked");
    free(sum);

    /* explicit: the message before the request */
    msg(&m[0], SA_ROLE_USER, "My package never arrived");
    msg(&m[1], SA_ROLE_ASSISTANT, "Sorry to hear that.");
    msg(&m[2], SA_ROLE_USER, "I want to talk to a human");
    s.attempts = 1;
    d.reason = SA_ESC_EXPLICIT;
    strcpy(d.detail, "intent contact_human_agent goes to a human");

    rc = sa_handoff_summary(m, 3, &s, &d, SA_MASK_ALL, &sum, &subj);
    ok(rc == SA_OK && has_line(sum, "Issue: My package never arrived "
                               "(then asked for a human)"),
       "explicit: the message before the request");
    is_str(subj, "My package never arrived (then asked for a human)",
           "explicit: subject");
    ok(has_line(sum, "Tried: 1 reply by the assistant; last: \"Sorry to "
                "hear that.\""), "one reply");
    ok(strstr(sum, "Orders:") == NULL, "no orders: no line");
    ok(has_line(sum, "Why: explicit: intent contact_human_agent goes to a "
                "human"), "why: explicit");
    free(sum);
    free(subj);

    /* a short answer before the request is not the issue either */
    msg(&m[0], SA_ROLE_USER, "My package never arrived");
    msg(&m[1], SA_ROLE_ASSISTANT, "Shall I refund it?");
    msg(&m[2], SA_ROLE_USER, "yes");
    msg(&m[3], SA_ROLE_USER, "I want to talk to a human");

    rc = sa_handoff_summary(m, 4, &s, &d, SA_MASK_ALL, &sum, &subj);
    ok(rc == SA_OK, "explicit after a short answer");
    is_str(subj, "My package never arrived (then asked for a human)",
           "explicit: the short answer is skipped");
    free(sum);
    free(subj);

    rc = sa_handoff_summary(m + 3, 1, &s, &d, SA_MASK_ALL, &sum, NULL);
    ok(rc == SA_OK && has_line(sum, "Issue: I want to talk to a human")
       && has_line(sum, "Tried: nothing yet"),
       "explicit as the first message: that message, nothing tried");
    free(sum);

    d.reason = SA_ESC_HIGH_STAKES;
    strcpy(d.detail, "high-stakes intent fraud");
    msg(&m[2], SA_ROLE_USER, "Someone used my card 4111 1111 1111 1111");
    rc = sa_handoff_summary(m, 3, &s, &d, SA_MASK_ALL, &sum, NULL);
    ok(rc == SA_OK && has_line(sum, "Issue: Someone used my card "
                               "[card ending 1111]")
       && has_line(sum, "Tried: nothing yet"),
       "high stakes: the message that escalated, masked");
    free(sum);

    /* cut on a character */
    for (i = 0; i + 2 < 300; i += 2) {
        long_msg[i] = '\xc3';
        long_msg[i + 1] = '\xa9';
    }

    long_msg[i] = '\0';
    msg(&m[0], SA_ROLE_USER, long_msg);
    msg(&m[1], SA_ROLE_ASSISTANT, long_msg);
    s.attempts = 1;
    d.reason = SA_ESC_SENTIMENT;
    strcpy(d.detail, "sentiment 0.12 then 0.20");
    rc = sa_handoff_summary(m, 2, &s, &d, SA_MASK_ALL, &sum, &subj);
    ok(rc == SA_OK && strlen(subj) <= 160 && strlen(subj) >= 155
       && strcmp(subj + strlen(subj) - 3, "...") == 0
       && sa_utf8_valid((unsigned char *) subj, strlen(subj)),
       "issue cut at %zu bytes on a character, with ...", strlen(subj));
    ok(sa_utf8_valid((unsigned char *) sum, strlen(sum))
       && strstr(sum, "...\"\n") != NULL, "the quoted reply cut too");
    free(sum);
    free(subj);

    msg(&m[0], SA_ROLE_USER, "bad \xff\xfe bytes\tand\r\n\r\nlines");
    rc = sa_handoff_summary(m, 1, &s, NULL, SA_MASK_ALL, &sum, &subj);
    is_str(subj, "bad ?? bytes and lines", "invalid UTF-8 and white space");
    ok(rc == SA_OK && has_line(sum, "Why: none"), "no decision: why none");
    free(sum);
    free(subj);

    rc = sa_handoff_summary(NULL, 0, NULL, NULL, 0, &sum, &subj);
    ok(rc == SA_OK && has_line(sum, "Issue: (no message from the customer)")
       && strstr(sum, "Mood:") == NULL, "no messages");
    free(sum);
    free(subj);

    is_int(sa_handoff_summary(m, 1, &s, &d, 0, NULL, NULL), SA_INVALID,
           "summary NULL");
}


int
main(void)
{
    an = sa_analyzer_new("english");

    test_sentiment();
    test_signature();
    test_observe();
    test_state();
    test_hours();
    test_mask();
    test_order_ids();
    test_summary();

    sa_analyzer_free(an);

    return done_testing();
}
