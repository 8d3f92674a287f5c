
/*
 * Copyright (C) ngx_support_agent authors
 *
 * Escalation: when the agent hands a conversation to a human, and what it
 * tells the human.  Pure C, no nginx types.
 *
 * Every customer message is weighed by sa_esc_observe() against the
 * conversation's state (kept in LMDB by the caller as the record of
 * sa_esc_state_encode()).  The signals, in precedence order:
 *
 *   high_stakes   the intent is on the operator's high-stakes list
 *   explicit      the router sent the message to "escalate" (the customer
 *                 asked for a human, or a complaint ...)
 *   sentiment     the last two customer messages scored below a threshold
 *                 by the built-in lexicon scorer sa_sentiment()
 *   repetition    the same issue N times in a row: the same intent, or
 *                 messages whose analyzed terms overlap (a bottom-k sketch
 *                 of the terms, Jaccard estimate)
 *   out_of_scope  N messages in a row the agent could not serve (routed
 *                 out of scope, or the knowledge base had nothing)
 *   time          the conversation has gone on too long
 *
 * A conversation is handed off at most once.  For the ticket the layer
 * also masks personal data (e-mail addresses, phone and card numbers),
 * finds order ids and writes a plain-text summary; sa_hours_*() tell
 * whether a human is at work now.
 *
 * Readings of the design that are decisions:
 *
 *   - high_stakes escalates whatever the route (an intent the operator
 *     listed as high stakes is handed off even if it is also routed to
 *     knowledge or an action); high_stakes has precedence over explicit.
 *   - "unserved" counts consecutive customer turns that were not served:
 *     routed out of scope (sa_esc_observe()) or answered "nothing found"
 *     (sa_esc_unserved(), called after the answer of the same turn).  A
 *     turn is served unless one of the two says otherwise, so the run is
 *     broken at the next observed message after a served turn; smalltalk
 *     neither counts nor breaks it.  The state remembers the turn counted
 *     last (unserved_turn) so that a turn counts once.
 *   - the signature drops, besides the analyzer's stop words, the words
 *     of conversation that say nothing about the issue ("i", "my", "how",
 *     "please", "again", "still" ...): "I want my money back" and "I want
 *     my password reset" are different issues.
 *   - order ids are returned without their '#': "#W2611340" and "order
 *     W2611340" are one id; the summary writes them with '#'.
 *   - the summary's issue for high_stakes is the message that escalated
 *     (a report of fraud is the issue); for explicit with an earlier
 *     customer message, the message before the request.
 */


#ifndef _SA_ESCALATE_H_INCLUDED_
#define _SA_ESCALATE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "sa_types.h"
#include "sa_text.h"


/*
 * 1. Sentiment of a customer message: 0 very negative, 0.5 neutral (also
 * empty text, NULL, no sentiment words), 1 very positive.
 *
 * A lexicon scorer in the manner of VADER: words and phrases of a sorted
 * static table carry a valence (-3 .. +3); ASCII is matched case-
 * insensitively, other UTF-8 bytes are word characters, invalid UTF-8
 * separates words.  A negator ("not", "never", "isn't", "no" ...) within
 * the 3 words before flips a valence ("not happy" is negative, "not bad"
 * mildly positive, "doesn't work" negative though "work" is neutral);
 * punctuation ends its reach.  An intensifier ("very", "so", "really" ...)
 * just before multiplies it, a diminisher ("a bit", "slightly") weakens
 * it; "but" halves what came before.  Emphasis only ever adds to the
 * negative side: a negative word in capitals (3 letters or more) counts
 * 1.5 times; shouting (mostly capitals) and runs of "!!" or "???" make
 * the negative sum heavier, or are a small negative signal alone.  The
 * sum s maps to 0.5 + 0.5 tanh(s / 4).
 */
double sa_sentiment(const char *text, size_t len);

/* for the unit tests: SA_OK when the built-in tables are sorted */
int sa_sentiment_selftest(void);
size_t sa_sentiment_lexicon_size(void);

/* "negative" below 0.4, "positive" above 0.6, else "neutral" */
const char *sa_mood_name(double sentiment);


/*
 * 2. Same-issue detection: a bottom-k sketch of a message's analyzed
 * terms, MurmurHash3 x86 32 (seed 0) of each distinct term.
 */
#define SA_ESC_SIG  16

typedef struct {
    uint32_t  term[SA_ESC_SIG];   /* the smallest term hashes, ascending */
    uint32_t  n;
} sa_esc_sig_t;

/* analyzer: sa_analyzer_new("english") as a rule (stems, stop words).
   SA_OK (sig->n == 0 when the text has no terms), SA_INVALID (a NULL
   argument), SA_ERROR (the analyzer failed) */
int sa_esc_signature(sa_analyzer_t *a, const char *text, size_t len,
    sa_esc_sig_t *sig);

/* the Jaccard similarity of the two term sets, estimated from the
   sketches (exact when both have fewer than SA_ESC_SIG terms); 0 when
   either is empty */
double sa_esc_similarity(const sa_esc_sig_t *a, const sa_esc_sig_t *b);


/* 3. Escalation state of a conversation */

typedef enum {
    SA_ESC_NONE = 0,
    SA_ESC_EXPLICIT,       /* the customer asked for a human */
    SA_ESC_HIGH_STAKES,    /* fraud, safety, legal, security ... */
    SA_ESC_REPETITION,     /* the same issue N times */
    SA_ESC_SENTIMENT,      /* the last two customer messages negative */
    SA_ESC_OUT_OF_SCOPE,   /* N unserved messages in a row */
    SA_ESC_TIME            /* the conversation has gone on too long */
} sa_esc_reason_e;

typedef enum {
    SA_ESC_LOW = 0,
    SA_ESC_NORMAL,
    SA_ESC_HIGH,
    SA_ESC_URGENT          /* not decided by this layer */
} sa_esc_priority_e;


#define SA_ESC_ISSUE_MAX  64

typedef struct {
    uint32_t      attempts;      /* consecutive customer messages on the
                                    current issue, this one included */
    uint32_t      unserved;      /* consecutive out-of-scope/unanswered */
    uint32_t      turns;         /* customer messages observed */
    float         sentiment[2];  /* [0] latest, [1] the one before; -1
                                    none */
    char          issue[SA_ESC_ISSUE_MAX + 1];  /* the current issue's
                                    intent, "" unknown */
    sa_esc_sig_t  sig;           /* of the last customer message */
    uint32_t      escalated;     /* 1 once handed off (exactly once) */
    uint32_t      reason;        /* sa_esc_reason_e of the handoff */
    int64_t       escalated_ms;
    uint32_t      unserved_turn; /* the turn unserved counted last */
} sa_esc_state_t;

void sa_esc_state_init(sa_esc_state_t *s);


/*
 * The LMDB record of a state, layout version 1, little-endian, 169 bytes:
 *
 *    0  u8   layout version (1)      16  u32  unserved_turn
 *    1  u8   escalated (0, 1)        20  f32  sentiment[0]
 *    2  u8   reason                  24  f32  sentiment[1]
 *    3  u8   sig.n (0..16)           28  u32  0
 *    4  u32  attempts                32  i64  escalated_ms
 *    8  u32  unserved                40  16 u32  sig.term
 *   12  u32  turns                  104  65 bytes issue, NUL-terminated,
 *                                            zero padded
 *
 * Layouts only grow at the end: decode accepts a longer record of any
 * version >= 1 and ignores what follows; a short record, version 0, a
 * flag or reason out of range, sig terms not ascending, a score that is
 * neither -1 nor in [0, 1], or an issue without its NUL is SA_INVALID.
 */
#define SA_ESC_STATE_V1   169
#define SA_ESC_STATE_MAX  256

/* the length written, 0 if cap is too small */
size_t sa_esc_state_encode(const sa_esc_state_t *s, unsigned char *buf,
    size_t cap);
int sa_esc_state_decode(const void *buf, size_t len, sa_esc_state_t *s);


typedef struct {
    uint32_t  repeats;         /* same issue this many times: escalate;
                                  0 off (3) */
    double    sentiment;       /* both of the last two customer messages
                                  below this: escalate; <= 0 off (0.3) */
    uint32_t  unserved;        /* this many unserved messages in a row;
                                  0 off (2) */
    int64_t   max_duration_ms; /* conversation older than this; 0 off
                                  (30 min) */
    double    similar;         /* Jaccard from which two messages are
                                  the same issue (0.5) */
} sa_esc_policy_t;

void sa_esc_policy_init(sa_esc_policy_t *p);


typedef enum {
    SA_ESC_ROUTE_UNKNOWN = 0,  /* no router */
    SA_ESC_ROUTE_KNOWLEDGE,
    SA_ESC_ROUTE_ACTION,
    SA_ESC_ROUTE_ESCALATE,
    SA_ESC_ROUTE_SMALLTALK,
    SA_ESC_ROUTE_OUT_OF_SCOPE
} sa_esc_route_e;

typedef struct {
    sa_esc_route_e       route;
    const char          *intent;      /* NULL without a router */
    int                  high_stakes; /* the intent is on the operator's
                                         high-stakes list */
    double               sentiment;   /* sa_sentiment() of this message */
    const sa_esc_sig_t  *sig;         /* of this message, or NULL */
    int64_t              now_ms;
    int64_t              created_ms;  /* the conversation's start, 0
                                         unknown */
} sa_esc_turn_t;

typedef struct {
    sa_esc_reason_e      reason;      /* SA_ESC_NONE: no escalation */
    sa_esc_priority_e    priority;
    char                 detail[160]; /* "asked 3 times about get_refund",
                                         "sentiment 0.12 then 0.20" ... */
} sa_esc_decision_t;


/*
 * Updates s with one customer message and decides; d is always filled
 * (reason NONE, priority LOW when nothing fires).  In precedence order:
 *
 *   - s->escalated: the state is updated, no new decision;
 *   - high_stakes -> HIGH_STAKES, HIGH;
 *   - route ESCALATE -> EXPLICIT, NORMAL;
 *   - sentiment: the scores shift ([1] = [0], [0] = this one, -1 when
 *     outside [0, 1]); both valid and below p->sentiment -> SENTIMENT,
 *     HIGH when either is below p->sentiment / 2, else NORMAL;
 *   - repetition: the same issue as the previous customer message when
 *     the intent equals s->issue on a knowledge or action route, or the
 *     signatures' similarity is >= p->similar: attempts + 1, else
 *     attempts = 1; smalltalk sets attempts to 0 and forgets the issue;
 *     attempts >= p->repeats -> REPETITION, NORMAL;
 *   - route OUT_OF_SCOPE: unserved + 1 (see the header comment);
 *     unserved >= p->unserved -> OUT_OF_SCOPE, LOW;
 *   - now_ms - created_ms > p->max_duration_ms -> TIME, NORMAL.
 *
 * A decision sets s->escalated, s->reason and s->escalated_ms.
 */
void sa_esc_observe(sa_esc_state_t *s, const sa_esc_turn_t *t,
    const sa_esc_policy_t *p, sa_esc_decision_t *d);

/* the answer to this turn's message found nothing relevant: counts as
   unserved once per turn, like OUT_OF_SCOPE, and may decide it */
void sa_esc_unserved(sa_esc_state_t *s, const sa_esc_policy_t *p,
    int64_t now_ms, sa_esc_decision_t *d);

/* "none", "explicit", "high_stakes", "repetition", "sentiment",
   "out_of_scope", "time" */
const char *sa_esc_reason_name(sa_esc_reason_e r);

/* "low", "normal", "high", "urgent" */
const char *sa_esc_priority_name(sa_esc_priority_e p);


/*
 * 4. Business hours at a fixed UTC offset.  There is no time zone
 * database: where clocks change (DST), the operator changes the offset.
 */
typedef struct {
    uint8_t   days;        /* bit 0 = Monday ... bit 6 = Sunday */
    uint16_t  open_min;    /* minutes after local midnight, 0..1439 */
    uint16_t  close_min;   /* 1..1440, > open_min */
} sa_hours_span_t;

#define SA_HOURS_SPANS  14

typedef struct {
    sa_hours_span_t  span[SA_HOURS_SPANS];
    uint32_t         n;
    int32_t          utc_offset_min;
} sa_hours_t;

/*
 * "mon-fri 09:00-17:30, sat 10:00-14:00 UTC+01:00": days (mon tue wed thu
 * fri sat sun, case-insensitive; a single day, a range that may wrap as
 * "fri-mon", or "daily") followed by one or more HH:MM-HH:MM ranges, the
 * groups separated by "," or spaces; an optional last offset "UTC",
 * "UTC+2", "UTC-05:30", "+01:00" (GMT too; default UTC, at most 14:00).
 * Closing must be after opening ("24:00" is a closing time); a range
 * over midnight is two spans.  SA_OK, or SA_INVALID with a message in
 * err ("unknown day \"mo\"", "\"18:00-09:00\": closing time before
 * opening time" ...).
 */
int sa_hours_parse(const char *spec, size_t len, sa_hours_t *h, char *err,
    size_t errlen);

/* 1 within the hours, else 0 */
int sa_hours_open(const sa_hours_t *h, int64_t now_ms);

/* now_ms when open, else the next opening after it; -1 without spans */
int64_t sa_hours_next_open(const sa_hours_t *h, int64_t now_ms);


/*
 * 5. Personal data masking, for handoff tickets and logs.
 *
 *   e-mail  "jane.doe@example.com" -> "j***@example.com"
 *   card    13..19 digits, in groups split by single spaces or dashes,
 *           Luhn-valid -> "[card ending 1234]"
 *   phone   an optional "+", then 9..15 digits with separators (space,
 *           dash, dot, parentheses) or none, or 7..8 digits with a
 *           separator ("555-1234") -> "[phone ending 67]"; dates
 *           ("2024-01-15"), dotted quads and decimals are not phones
 *
 * Digits glued to a letter, '#', '_', '@' or non-ASCII ("#W2611340",
 * "A123456789"), a bare run of 7..8 digits, and a bare number right
 * after "order" (an order id, see sa_order_ids()) are left alone; a
 * number right after a phone or card number does not hide it.  Any
 * bytes in; invalid UTF-8 passes through unchanged and no UTF-8
 * sequence is split.  *out is malloc()ed, NUL-terminated (free());
 * out_len may be NULL.  SA_OK, SA_INVALID (in NULL with len > 0),
 * SA_ERROR.
 */
#define SA_MASK_EMAIL  0x1
#define SA_MASK_PHONE  0x2
#define SA_MASK_CARD   0x4
#define SA_MASK_ALL    0x7

int sa_mask_pii(const char *in, size_t len, unsigned what, char **out,
    size_t *out_len);


/*
 * 6. Order ids mentioned in a message, in order of appearance, without
 * duplicates: "#" and 0..3 letters and 4..15 digits ("#W2611340",
 * "#12345"), or 0..3 letters and 5..15 digits right after "order",
 * "order number", "order no", "order no.", "order id", "order #",
 * "order:" (case-insensitive).  The ids are written without '#', as
 * they appear ("W2611340"), NUL-terminated; returns how many (<= max).
 */
#define SA_ORDER_ID_MAX  32

size_t sa_order_ids(const char *text, size_t len,
    char ids[][SA_ORDER_ID_MAX], size_t max);


/*
 * 7. The summary of a handoff for the human, built from the conversation
 * (when no LLM writes one).  msgs: oldest first; only user and assistant
 * messages are read.  mask: SA_MASK_* applied to every quoted text.
 * Plain text, valid UTF-8 (invalid bytes become '?'), lines separated by
 * "\n", under 1500 bytes:
 *
 *   Issue: <the customer's issue, one line, <= 160 bytes>
 *   Tried: 2 replies by the assistant; last: "<one line, <= 160 bytes>"
 *          (or "Tried: nothing yet": no reply after the issue)
 *   Orders: #W2611340, #W1234567      (omitted when none; at most 16)
 *   Mood: negative (0.12, 0.20, 0.08) (sa_sentiment() of the last 5
 *                                      customer messages, oldest first;
 *                                      sa_mood_name() of the mean of the
 *                                      last two: the mood now)
 *   Why: sentiment: sentiment 0.12 then 0.20
 *
 * The issue is the first customer message of the current run of
 * s->attempts messages; for EXPLICIT with more than one customer message
 * the one before the request, with " (then asked for a human)".  Texts
 * cut to fit end in "...".  subject_out (may be NULL) gets the issue
 * alone, <= 160 bytes.  Both malloc()ed, NUL-terminated.  SA_OK,
 * SA_INVALID (summary NULL), SA_ERROR.
 */
#define SA_SUMMARY_LINE  160

int sa_handoff_summary(const sa_msg_t *msgs, size_t n,
    const sa_esc_state_t *s, const sa_esc_decision_t *d, unsigned mask,
    char **summary, char **subject_out);


#endif /* _SA_ESCALATE_H_INCLUDED_ */
