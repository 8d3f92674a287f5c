
/*
 * Copyright (C) ngx_support_agent authors
 *
 * Actions on orders: everything about looking up orders, refunds, address
 * changes and cancellations that is not nginx.  Pure C, no nginx types.
 *
 * The module offers the LLM four tools (sa_tools_json()).  Their
 * arguments are untrusted input: sa_tool_args_parse() validates them
 * strictly, and the module acts only on the validated struct, whose
 * canonical JSON (sa_tool_args_json()) is also what a pending action
 * keeps.  A write tool never acts when the LLM calls it: the call only
 * prepares the action (sa_act_prepare(), answered "pending_confirmation"),
 * and the action is carried out when the customer's next message is a
 * clear yes by sa_confirmation(), decided by code, not by the LLM.  The
 * customer's identity is code too: an order is shown or changed only for
 * the customer whose e-mail address (taken from the customer's own
 * messages by sa_text_email(), or given by nginx) is the order's.
 *
 * The order API is the demo shop's (docs/shop-api.openapi.json):
 * sa_tool_request() builds its requests, sa_order_parse() reads its
 * orders, sa_act_from_http() classifies its answers, and
 * sa_act_result_json() writes what the LLM is told.  Writes carry the
 * Idempotency-Key of sa_act_idempotency_key(): the same for every retry
 * and every repeated "yes" of one prepared action.
 *
 * Without an LLM the module runs the same actions from the text alone:
 * e-mail addresses, amounts and US addresses (sa_text_*()), order ids
 * (sa_order_ids() of sa_escalate.h), and answers with the templates of
 * prompts/actions.txt (sa_templates_parse(), sa_template_render()).
 *
 * The state of a conversation's actions is one LMDB record ("actions"),
 * layout version 1, little-endian, 1368 bytes:
 *
 *      0  u8   layout version (1)       16  i64  pending_created_ms
 *      1  u8   verified_by (0..2)       24  f64  pending_amount (IEEE 754)
 *      2  u8   pending (0, 1)           32  24 bytes pending_id
 *      3  u8   pending_tool + 1         56  32 bytes last_order
 *      4  u8   awaiting_tool + 1        88  256 bytes verified_email
 *      5  3 bytes 0                    344  1024 bytes pending_args
 *      8  u32  seq
 *     12  u32  0
 *
 * (tool + 1: 0 is none.)
 * The strings are NUL-terminated and zero padded.  Layouts only grow at
 * the end: decode accepts a longer record of any version >= 1 and ignores
 * what follows; a short record, version 0, a flag or tool out of range, a
 * string without its NUL or not valid UTF-8, an amount that is negative
 * or not finite, verified_by 0 with an e-mail address (or an address
 * without verified_by), or a pending action without a write tool, an id
 * or arguments, is SA_INVALID.
 *
 * Readings of the design that are decisions:
 *
 *   - lookup_order takes no e-mail address: the LLM could invent one.
 *     Identity comes from the customer's messages or from nginx.
 *   - order ids: one '#' is allowed, first, and dropped ("#W2611340" and
 *     "W2611340" are one order); a '#' anywhere else is invalid.  Case
 *     is kept.
 *   - update_shipping_address takes the six address fields flat, as
 *     tau-bench's tool does; address fields and reasons are trimmed of
 *     spaces; a country written "US", "U.S.A.", "United States" (of
 *     America) becomes "USA", and for the USA the state must be two
 *     capital letters as the shop's schema wants, besides the zip.
 *   - "control characters" are C0, DEL, C1, U+2028/9 and the bidi
 *     overrides and isolates (U+202A..E, U+2066..9).
 *   - orders with more than SA_ACT_ITEMS items are SA_INVALID rather than
 *     cut: a refund by items must see every item.
 *   - a 404 whose body names another error than "order_not_found" (the
 *     shop's "not_found": no such endpoint) is service_unavailable, not
 *     order_not_found: a wrong API base must not tell customers their
 *     order does not exist.
 *   - sa_confirmation(): an emoji alone, "yes?", "yes..." are not a yes.
 */


#ifndef _SA_ACT_H_INCLUDED_
#define _SA_ACT_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "sa_types.h"


/* 1. The tools */

typedef enum {
    SA_TOOL_NONE = -1,
    SA_TOOL_LOOKUP_ORDER = 0,     /* read */
    SA_TOOL_PROCESS_REFUND,       /* write: full or partial, by amount or by
                                     item ids */
    SA_TOOL_UPDATE_ADDRESS,       /* write: update_shipping_address */
    SA_TOOL_CANCEL_ORDER,         /* write */
    SA_TOOL_COUNT
} sa_tool_e;

#define SA_TOOLS_ALL  0xf         /* bit (1 << tool) */


/* "lookup_order", "process_refund", "update_shipping_address",
   "cancel_order"; NULL for anything else */
const char *sa_tool_name(sa_tool_e t);

/* SA_TOOL_NONE for an unknown name */
sa_tool_e sa_tool_by_name(const char *name, size_t len);

/* 1 for the tools that change an order */
int sa_tool_is_write(sa_tool_e t);

/*
 * {"tools":[...],"tool_choice":"auto"} for the request to the LLM (the
 * extra_json of sa_llm_request_build_ex()): OpenAI function tools with
 * "strict": true, whose JSON Schemas have "additionalProperties": false
 * and every property required (optional ones typed [<type>, "null"]).
 * Only the tools of set, in enum order.  *json malloc()ed, NUL-
 * terminated.  SA_OK, SA_INVALID (set empty or with unknown bits),
 * SA_ERROR.
 */
int sa_tools_json(unsigned set, char **json, size_t *len);


/* 2. A tool call's arguments */

typedef struct {
    char  address1[128], address2[128], city[64], state[32], zip[16],
          country[32];
} sa_address_t;

#define SA_ORDER_ID_LEN  32
#define SA_ACT_ITEMS     16
#define SA_ITEM_ID_LEN   24
#define SA_REASON_MAX    200
#define SA_AMOUNT_MAX    1e7

typedef struct {
    sa_tool_e     tool;
    char          order_id[SA_ORDER_ID_LEN];  /* without '#' */
    double        amount;          /* refund by amount (> 0), else 0 */
    char          item_ids[SA_ACT_ITEMS][SA_ITEM_ID_LEN];
    size_t        n_items;         /* refund by items, else 0 */
    char          reason[SA_REASON_MAX + 1];  /* refund, cancel; "" none */
    sa_address_t  address;         /* update_shipping_address */
} sa_tool_args_t;

/*
 * Strict validation of the LLM's arguments string for tool.  The JSON
 * object must have no unknown or repeated keys, the required keys with
 * the right types, no control characters, valid UTF-8 and no "\u0000"
 * anywhere.  Optional keys may be absent or null.
 *
 *   lookup_order             order_id
 *   process_refund           order_id, amount | item_ids, reason?
 *   update_shipping_address  order_id, address1, address2 (may be ""
 *                            or null), city, state, zip, country
 *   cancel_order             order_id, reason ("no longer needed",
 *                            "ordered by mistake")
 *
 * order_id: 1..31 characters, an optional '#' then [A-Za-z0-9_-].
 * amount: a finite number > 0 and < 1e7, at most 2 decimals (kept
 * rounded to the cent).  item_ids: 1..16 strings of [0-9A-Za-z_-]{1,23}.
 * reason: at most 200 bytes.  Address fields: non-empty within their
 * sizes (address2 may be empty), zip 5 digits and state 2 capitals when
 * the country is "USA".
 *
 * SA_OK, or SA_INVALID with err naming the field and the problem
 * ("amount: must be greater than 0"); *a is zeroed (tool set) first.
 */
int sa_tool_args_parse(sa_tool_e tool, const char *json, size_t len,
    sa_tool_args_t *a, char *err, size_t errlen);

/* canonical compact JSON of validated args: every key of the tool in a
   fixed order, null for an absent optional value (sa_tool_args_parse()
   reads it back to the same struct); malloc()ed.  SA_OK, SA_INVALID (an
   unknown tool, text that is not UTF-8), SA_ERROR */
int sa_tool_args_json(const sa_tool_args_t *a, char **json, size_t *len);

/*
 * The order API request of a tool, paths under the API base:
 *
 *   lookup_order             GET   /orders/%23W2611340
 *   process_refund           POST  /orders/%23W2611340/refunds
 *                            {"amount":12.5,"reason":"..."} or
 *                            {"item_ids":["..."],"reason":"..."}
 *                            (no "reason" when there is none)
 *   update_shipping_address  PATCH /orders/%23W2611340/shipping_address
 *                            {"address1":..,"address2":..,"city":..,
 *                             "state":..,"zip":..,"country":..}
 *   cancel_order             POST  /orders/%23W2611340/cancel
 *                            {"reason":"no longer needed"}
 *
 * *method is static; *path and *body malloc()ed (*body NULL and
 * *body_len 0 for GET).  SA_OK, SA_INVALID, SA_ERROR.
 */
int sa_tool_request(const sa_tool_args_t *a, const char **method,
    char **path, char **body, size_t *body_len);

/* what a write will do, one line for the customer and the LLM ("refund
   12.50 USD on order #W2611340 to the original payment method"),
   NUL-terminated, cut on a UTF-8 boundary; SA_OK, SA_INVALID (not a
   write tool) */
int sa_act_summary(const sa_tool_args_t *a, char *buf, size_t cap);


/* 3. Orders */

/*
 * An order as GET /orders/{id} returns it:
 *   {"order_id":"#W2611340","status":"delivered","customer":{"user_id",
 *    "email","name":{"first_name","last_name"},"zip"},"items":[{"item_id",
 *    "product_id","name","price","options":{...}}],"total":536.65,
 *    "currency":"USD","shipping_address":{address1..country},
 *    "fulfillments":[{"tracking_id":["..."],"item_ids":[...]}],
 *    "payment_history":[...],"refunds":[...],"refundable_amount":536.65,
 *    ...}
 * Extra fields are ignored; the fields read must be there with their
 * types (fulfillments may be absent or null).
 */
typedef struct {
    char          order_id[SA_ORDER_ID_LEN];   /* without '#' */
    char          status[32];
    char          email[256];
    char          first_name[64];
    double        total;
    double        refundable;
    char          currency[8];
    size_t        n_items;
    struct {
        char      item_id[SA_ITEM_ID_LEN];
        char      name[96];    /* cut on a UTF-8 boundary */
        double    price;
    }             items[SA_ACT_ITEMS];
    sa_address_t  address;
    char          tracking[64];    /* the first tracking id, "" none */
} sa_order_t;

/* SA_OK, or SA_INVALID with err naming the field ("items[1].price: must
   be a number") */
int sa_order_parse(const char *body, size_t len, sa_order_t *o, char *err,
    size_t errlen);

/* what the LLM may see of an order (no payment details, no personal data
   but the shipping address):
   {"order_id":"#W2611340","status":..,"items":[{"item_id","name",
    "price"}],"total":..,"refundable_amount":..,"currency":..,
    "shipping_address":{..},"tracking_id":"..." or null}; malloc()ed */
int sa_order_json(const sa_order_t *o, char **json, size_t *len);

/* 1 when email is the order's (ASCII case-insensitive), else 0 */
int sa_order_email_matches(const sa_order_t *o, const char *email);

/* the items in words: "2 items: Water Bottle (47.84), Office Chair
   (488.81)", "1 item: ...", "no items"; cut to cap on a UTF-8 boundary */
void sa_order_items_text(const sa_order_t *o, char *buf, size_t cap);

/* money with two decimals and a '.': "536.65"; "" when not finite */
void sa_act_money(double v, char *buf, size_t cap);


/* 4. Results of tool calls */

typedef enum {
    SA_ACT_OK = 0,
    SA_ACT_PENDING,              /* a write prepared, waiting for "yes" */
    SA_ACT_ORDER_NOT_FOUND,      /* 404 */
    SA_ACT_NOT_ALLOWED,          /* 409, 422: refused by a business rule */
    SA_ACT_UNAVAILABLE,          /* timeout, 5xx, connection, bad JSON */
    SA_ACT_VERIFICATION_FAILED,  /* the order is not the verified
                                    customer's */
    SA_ACT_NEEDS_IDENTITY,       /* not verified yet: ask for the e-mail */
    SA_ACT_INVALID_ARGUMENTS,
    SA_ACT_UNKNOWN_TOOL,
    SA_ACT_NEEDS_HUMAN           /* e.g. a refund above the limit */
} sa_act_code_e;

/* "ok", "pending_confirmation", "order_not_found", "refund_not_allowed" /
   "address_change_not_allowed" / "cancel_not_allowed" (by tool, else
   "not_allowed"), "service_unavailable", "verification_failed",
   "identity_required", "invalid_arguments", "unknown_tool",
   "handed_to_human"; "unknown" out of range */
const char *sa_act_code_name(sa_act_code_e c, sa_tool_e t);

/*
 * The tool message content given back to the LLM, malloc()ed:
 *
 *   OK       {"ok":true,"result":<data_json or null>}
 *   PENDING  {"ok":true,"status":"pending_confirmation","action_id":"..",
 *             "summary":"<detail>","instruction":"Ask the customer to
 *             reply yes to confirm exactly this; nothing has been done
 *             yet."}
 *   others   {"ok":false,"error":"<code>","detail":"<detail>"}
 *
 * detail is sanitised (control characters become spaces, invalid UTF-8
 * '?') and cut to 300 bytes on a UTF-8 boundary; NULL or "" gives a
 * default telling the LLM what to do ("Ask the customer for the e-mail
 * address used for the order; do not guess it.").  data_json must be
 * valid JSON.  SA_OK, SA_INVALID (bad code, bad data_json, PENDING
 * without action_id), SA_ERROR.
 */
int sa_act_result_json(sa_act_code_e c, sa_tool_e t, const char *detail,
    const char *data_json, const char *action_id, char **json, size_t *len);

/*
 * Classifies an API answer: status 0 (transport failure, timeout) and
 * 401, 403, 429, 5xx and other statuses are UNAVAILABLE with detail
 * "HTTP <status>" ("no answer" for 0); 2xx OK (detail ""); 404
 * ORDER_NOT_FOUND (see the header comment); 409 and 422 NOT_ALLOWED with
 * the body's "detail" (else "error", else "not allowed") in detail,
 * without a trailing full stop (the replies add theirs).  detail is
 * printable UTF-8, cut on a UTF-8 boundary to cap - 1 bytes.
 */
sa_act_code_e sa_act_from_http(long status, const char *body, size_t len,
    char *detail, size_t cap);


/* 5. The state of a conversation's actions */

#define SA_ACT_ID_LEN  24

typedef struct {
    char          verified_email[256]; /* "" not verified */
    uint32_t      verified_by;        /* 0 none, 1 e-mail matched an
                                         order's, 2 trusted identity from
                                         nginx */
    uint32_t      seq;                /* actions prepared so far */
    uint32_t      pending;            /* 1: a write waits for "yes" */
    char          pending_id[SA_ACT_ID_LEN];  /* "act_<seq>_<8 hex>" */
    int32_t       pending_tool;       /* sa_tool_e */
    char          pending_args[1024]; /* canonical JSON (sa_tool_args_json) */
    double        pending_amount;     /* refund amount (0 otherwise) */
    int64_t       pending_created_ms;
    char          last_order[SA_ORDER_ID_LEN]; /* the order talked about */
    int32_t       awaiting_tool;      /* sa_tool_e whose details (order id,
                                         e-mail, address) the flow without
                                         an LLM asked for, or NONE */
} sa_act_state_t;

#define SA_ACT_VERIFIED_NONE     0
#define SA_ACT_VERIFIED_EMAIL    1
#define SA_ACT_VERIFIED_TRUSTED  2

void sa_act_state_init(sa_act_state_t *s);

#define SA_ACT_STATE_V1   1368
#define SA_ACT_STATE_MAX  2048

/* the length written; 0 if cap is too small or s would not decode (see
   the header comment) */
size_t sa_act_state_encode(const sa_act_state_t *s, unsigned char *buf,
    size_t cap);
int sa_act_state_decode(const void *buf, size_t len, sa_act_state_t *s);

/* a write prepared: seq + 1, pending = 1, pending_id "act_<seq>_<rnd as
   8 hex>", the tool, its canonical arguments, the refund amount, now_ms,
   last_order.  SA_OK, SA_INVALID (not a write tool, arguments too long),
   SA_ERROR */
int sa_act_prepare(sa_act_state_t *s, const sa_tool_args_t *a, uint32_t rnd,
    int64_t now_ms);

/* no action pending any more (done, refused or cancelled): the pending
   fields are emptied; seq, identity, last_order and awaiting_tool are
   kept */
void sa_act_clear_pending(sa_act_state_t *s);

/* the Idempotency-Key of the pending action, "act-<conversation id>-
   <pending_id>", into buf (cap >= 128 is always enough): the same for
   every retry and every repeated confirmation.  SA_OK, SA_INVALID (no
   pending action, a conversation id not 1..64 of [A-Za-z0-9_-], cap too
   small) */
int sa_act_idempotency_key(const char *conversation_id,
    const sa_act_state_t *s, char *buf, size_t cap);


/* 6. Deterministic text understanding, for the flows without an LLM */

/* the first e-mail address in text, lowercased, into out (NUL-
   terminated): 1 found, 0 none (or too long for cap) */
int sa_text_email(const char *text, size_t len, char *out, size_t cap);

/* the first positive amount of US dollars: "$12.34", "$ 1,234.50",
   "US$12", "USD 12", "12.34 USD", "12 dollars"; at most 2 decimals, below
   1e7.  1 found, 0 none */
int sa_text_amount(const char *text, size_t len, double *amount);

/* a US address written with commas: "123 Main St, Apt 4, Springfield, IL
   62704" (address2 optional; it is the part before the city when that
   starts with Apt, Suite, Unit, # ...; ", USA" optional; ZIP+4 is cut to
   the ZIP); the street starts at the first word that starts with a digit
   in its part, so words before it are skipped.  Country "USA", state
   uppercased (a US state or territory code).  1 found, 0 none */
int sa_text_address(const char *text, size_t len, sa_address_t *a);


/*
 * The customer's answer to "shall I do X? reply yes to confirm".
 *
 * SA_CONFIRM_YES only when the whole message is affirmation: words of a
 * fixed list of yes phrases ("yes", "yep", "confirm", "go ahead", "do
 * it", "that's right" ...) and courtesies ("please", "thanks", "and"),
 * at least one yes phrase; ASCII case-insensitive; spaces, . , ! ; : - ( )
 * quotes and emoji are ignored.  SA_CONFIRM_NO likewise for a clear no
 * ("no", "nope", "cancel", "don't", "stop", "never mind").  Anything else
 * is SA_CONFIRM_OTHER: any other word (a hedge, a negation in a yes, an
 * instruction, another language), a digit, '?', "...", a symbol, a
 * negative emoji (thumbs down, cross, thinking face, shrug), invalid
 * UTF-8, more than 23 words or 256 bytes, an empty message.
 */
#define SA_CONFIRM_YES    1
#define SA_CONFIRM_NO     2
#define SA_CONFIRM_OTHER  3

int sa_confirmation(const char *text, size_t len);


/*
 * 7. Reply templates (prompts/actions.txt): lines starting with '#' are
 * comments; a line "[name]" (name of [a-z0-9_]) starts a section whose
 * text is the lines up to the next section.  The file is wrapped, the
 * replies are not: the lines of a paragraph are trimmed and joined by a
 * space, paragraphs (separated by blank lines) by "\n\n"; blank lines
 * before and after the text are dropped.  In the text {key} (key of
 * [a-z0-9_]) is a placeholder, "{{" and "}}" are literal braces.
 *
 * sa_templates_parse(): SA_OK, SA_INVALID with err ("line 7: ...") for
 * text outside a section, a section without a name or with a bad one, a
 * duplicate section, a "{" without "}", a bad placeholder, a "}" alone,
 * invalid UTF-8; SA_ERROR.
 *
 * sa_template_render(): the section's text with each {key} replaced by
 * its value in vars (the first one; missing keys and NULL values are
 * ""); *out malloc()ed, NUL-terminated, len may be NULL.  SA_OK,
 * SA_NOT_FOUND (no such section), SA_INVALID, SA_ERROR.
 */
typedef struct sa_templates_s  sa_templates_t;

typedef struct {
    const char  *key;
    const char  *value;
} sa_kv_t;

int sa_templates_parse(const char *text, size_t len, sa_templates_t **t,
    char *err, size_t errlen);
void sa_templates_free(sa_templates_t *t);
int sa_template_render(const sa_templates_t *t, const char *name,
    const sa_kv_t *vars, size_t n, char **out, size_t *len);

/* 1 when the section exists */
int sa_template_has(const sa_templates_t *t, const char *name);


#endif /* _SA_ACT_H_INCLUDED_ */
