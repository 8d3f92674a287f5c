
/*
 * Copyright (C) ngx_support_agent authors
 */


#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yajl/yajl_tree.h>

#include "sa_act.h"
#include "sa_json.h"
#include "sa_utf8.h"


/* ASCII classes, whatever the locale */
#define sa_act_digit(c)  ((c) >= '0' && (c) <= '9')
#define sa_act_alpha(c)  (((c) | 0x20) >= 'a' && ((c) | 0x20) <= 'z')
#define sa_act_alnum(c)  (sa_act_digit(c) || sa_act_alpha(c))
#define sa_act_lower(c)  (((c) >= 'A' && (c) <= 'Z') ? ((c) | 0x20) : (c))
#define sa_act_upper(c)  (((c) >= 'a' && (c) <= 'z') ? ((c) & ~0x20) : (c))
#define sa_act_space(c)  ((c) == ' ' || (c) == '\t' || (c) == '\n'         \
                          || (c) == '\r')
#define sa_act_id_char(c)  (sa_act_alnum(c) || (c) == '_' || (c) == '-')


/* string options of sa_act_get_str() */
#define SA_STR_OPTIONAL  0x01     /* absent or null: "" */
#define SA_STR_EMPTY_OK  0x02
#define SA_STR_TRIM      0x04
#define SA_STR_CUT       0x08     /* too long: cut, not SA_INVALID */
#define SA_STR_CLEAN     0x10     /* control characters become spaces,
                                     not SA_INVALID (data from the API) */


/* 1. the tools: fixed JSON, checked by the unit tests */

static const char  *sa_tool_names[] = {
    "lookup_order",
    "process_refund",
    "update_shipping_address",
    "cancel_order"
};


#define SA_ORDER_ID_PROP                                                     \
    "\"order_id\":{\"type\":\"string\",\"description\":\"The order id as "  \
    "the customer gave it, such as \\\"#W2611340\\\".\"}"

#define SA_PREPARE_ONLY                                                      \
    " This does NOT change anything: it only prepares the action, and the " \
    "system then asks the customer to confirm it; only the customer's own " \
    "reply \\\"yes\\\" carries it out. Look the order up first, call this " \
    "once with everything the action needs, and tell the customer exactly " \
    "what will be done."

static const char  *sa_tool_schemas[] = {

    "{\"type\":\"function\",\"function\":{\"name\":\"lookup_order\","
    "\"description\":\"Look up one of the customer's orders by its order "
    "id: status, items with their prices and item ids, total, the amount "
    "still refundable, shipping address and tracking number. The system "
    "checks that the order is the customer's: when the result is "
    "identity_required, ask the customer for the e-mail address used for "
    "the order; never guess it.\",\"strict\":true,\"parameters\":{"
    "\"type\":\"object\",\"properties\":{" SA_ORDER_ID_PROP "},"
    "\"required\":[\"order_id\"],\"additionalProperties\":false}}}",

    "{\"type\":\"function\",\"function\":{\"name\":\"process_refund\","
    "\"description\":\"Prepare a refund of a delivered order to its "
    "original payment method: an amount (part or all of what is still "
    "refundable), or some of its items at their price, not both."
    SA_PREPARE_ONLY "\",\"strict\":true,\"parameters\":{"
    "\"type\":\"object\",\"properties\":{" SA_ORDER_ID_PROP ","
    "\"amount\":{\"type\":[\"number\",\"null\"],\"description\":\"US "
    "dollars to refund, more than 0, at most 2 decimals, no more than the "
    "order's refundable amount; null when refunding items.\"},"
    "\"item_ids\":{\"type\":[\"array\",\"null\"],\"items\":{\"type\":"
    "\"string\"},\"description\":\"The item_id of each item to refund, "
    "from lookup_order (1 to 16); null when refunding an amount.\"},"
    "\"reason\":{\"type\":[\"string\",\"null\"],\"description\":\"Why, "
    "briefly, in the customer's words (at most 200 characters), or "
    "null.\"}},\"required\":[\"order_id\",\"amount\",\"item_ids\","
    "\"reason\"],\"additionalProperties\":false}}}",

    "{\"type\":\"function\",\"function\":{\"name\":"
    "\"update_shipping_address\",\"description\":\"Prepare a change of "
    "the shipping address of a pending order to a whole new address."
    SA_PREPARE_ONLY "\",\"strict\":true,\"parameters\":{"
    "\"type\":\"object\",\"properties\":{" SA_ORDER_ID_PROP ","
    "\"address1\":{\"type\":\"string\",\"description\":\"Street and "
    "number.\"},"
    "\"address2\":{\"type\":\"string\",\"description\":\"Apartment, "
    "suite, unit; \\\"\\\" when none.\"},"
    "\"city\":{\"type\":\"string\"},"
    "\"state\":{\"type\":\"string\",\"description\":\"In the USA the "
    "two-letter code, such as \\\"NY\\\".\"},"
    "\"zip\":{\"type\":\"string\",\"description\":\"In the USA five "
    "digits.\"},"
    "\"country\":{\"type\":\"string\",\"description\":\"\\\"USA\\\" for "
    "the United States.\"}},\"required\":[\"order_id\",\"address1\","
    "\"address2\",\"city\",\"state\",\"zip\",\"country\"],"
    "\"additionalProperties\":false}}}",

    "{\"type\":\"function\",\"function\":{\"name\":\"cancel_order\","
    "\"description\":\"Prepare the cancellation of a pending order; what "
    "was paid goes back to the original payment method. Ask the customer "
    "for the reason first." SA_PREPARE_ONLY "\",\"strict\":true,"
    "\"parameters\":{\"type\":\"object\",\"properties\":{"
    SA_ORDER_ID_PROP ",\"reason\":{\"type\":\"string\",\"enum\":["
    "\"no longer needed\",\"ordered by mistake\"],\"description\":\"The "
    "customer's reason.\"}},\"required\":[\"order_id\",\"reason\"],"
    "\"additionalProperties\":false}}}"
};


/* the keys each tool takes, in the order they are checked and written */
static const char  *sa_tool_keys[SA_TOOL_COUNT][8] = {
    { "order_id", NULL },
    { "order_id", "amount", "item_ids", "reason", NULL },
    { "order_id", "address1", "address2", "city", "state", "zip",
      "country", NULL },
    { "order_id", "reason", NULL }
};


static const char  *sa_cancel_reasons[] = {
    "no longer needed",
    "ordered by mistake",
    NULL
};


/* 4. results */

static const char  *sa_act_codes[] = {
    "ok",
    "pending_confirmation",
    "order_not_found",
    "not_allowed",
    "service_unavailable",
    "verification_failed",
    "identity_required",
    "invalid_arguments",
    "unknown_tool",
    "handed_to_human"
};

/* what the LLM is told to do when the caller gives no detail */
static const char  *sa_act_defaults[] = {
    "",
    "",
    "There is no order with this id. Ask the customer to check the order "
    "id; do not guess one.",
    "The order system refused this action for this order.",
    "The order system is not answering; nothing was changed. Tell the "
    "customer to try again in a few minutes.",
    "This order is not the verified customer's. Do not reveal or change "
    "anything about it.",
    "The customer's identity is not verified yet. Ask the customer for "
    "the e-mail address used for the order; do not guess it.",
    "The arguments were not valid; nothing was done.",
    "There is no such tool.",
    "A human colleague will handle this; tell the customer so and do not "
    "promise anything else."
};

#define SA_ACT_DETAIL_MAX  300

static const char  sa_act_instruction[] =
    "Ask the customer to reply yes to confirm exactly this; nothing has "
    "been done yet.";


/* 6. text: US state and territory codes, sorted */
static const char  sa_us_states[] =
    "AA AE AK AL AP AR AS AZ CA CO CT DC DE FL FM GA GU HI IA ID IL IN KS "
    "KY LA MA MD ME MH MI MN MO MP MS MT NC ND NE NH NJ NM NV NY OH OK OR "
    "PA PR PW RI SC SD TN TX UT VA VI VT WA WI WV WY";

/* words that start an address2 part: "Apt 4", "Suite 991" */
static const char  *sa_unit_words[] = {
    "apt", "apartment", "suite", "ste", "unit", "floor", "fl", "room",
    "rm", "bldg", "building", "dept", "#", NULL
};


/* confirmation: phrases, words separated by one space */
static const char  *sa_yes_phrases[] = {
    "yes", "yeah", "yea", "yep", "yup", "ya", "yah", "yess", "y",
    "sure", "sure thing", "ok", "okay", "okey", "alright", "all right",
    "confirm", "confirmed", "i confirm", "confirm it", "i do",
    "go ahead", "go for it", "do it", "do that", "let's do it",
    "lets do it", "proceed", "please proceed", "please do", "correct",
    "that's right", "thats right", "that is right", "that's correct",
    "thats correct", "that is correct", "absolutely", "definitely",
    "of course", "sounds good", "agreed", "i agree", "affirmative",
    "exactly", "i'm sure", "im sure", "i am sure", "that's fine",
    "thats fine", "that is fine", NULL
};

static const char  *sa_no_phrases[] = {
    "no", "nope", "nah", "n", "cancel", "cancel it", "cancel that",
    "don't", "dont", "do not", "don't do it", "dont do it",
    "do not do it", "stop", "never mind", "nevermind", "not now",
    "no way", "forget it", "abort", NULL
};

/* courtesies that neither confirm nor refuse */
static const char  *sa_filler_phrases[] = {
    "please", "pls", "plz", "thanks", "thank you", "thx", "ty",
    "thank you so much", "thanks a lot", "and", "now", "then", "great",
    "perfect", "fine", NULL
};

#define SA_CONFIRM_MAX_LEN    256
#define SA_CONFIRM_MAX_WORDS  24
#define SA_CONFIRM_WORD       24


typedef struct {
    char    *name;
    char    *text;
    size_t   len;
} sa_template_t;

struct sa_templates_s {
    sa_template_t  *sec;
    size_t          n;
    size_t          cap;
};


static char *sa_act_take(sa_jw_t *w, size_t *len);
static void sa_act_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int sa_act_cp_control(uint32_t cp);
static uint32_t sa_act_decode(const unsigned char *p, size_t n);
static int sa_act_text_ok(const char *s, size_t len);
static size_t sa_act_clean(const char *in, size_t len, char *out,
    size_t cap);
static int sa_act_raw_ok(const char *p, size_t len);
static void sa_act_key_safe(const char *key, char *out, size_t cap);
static const char *sa_act_get(yajl_val obj, const char *key);
static yajl_val sa_act_member(yajl_val obj, const char *key);
static int sa_act_get_str(yajl_val obj, const char *key, const char *field,
    unsigned flags, char *out, size_t cap, char *err, size_t errlen);
static int sa_act_get_money(yajl_val obj, const char *key,
    const char *field, double *out, char *err, size_t errlen);
static int sa_act_order_id(const char *s, char *out);
static int sa_act_args_keys(sa_tool_e tool, yajl_val root, char *err,
    size_t errlen);
static int sa_act_args_refund(yajl_val root, sa_tool_args_t *a, char *err,
    size_t errlen);
static int sa_act_args_address(yajl_val root, sa_tool_args_t *a, char *err,
    size_t errlen);
static int sa_act_args_cancel(yajl_val root, sa_tool_args_t *a, char *err,
    size_t errlen);
static int sa_act_jw_address(sa_jw_t *w, const sa_address_t *ad);
static int sa_act_jw_field(sa_jw_t *w, const char *key, const char *s,
    size_t cap);
static size_t sa_act_cut(const char *s, size_t len, size_t cap);
static int sa_order_items(yajl_val root, sa_order_t *o, char *err,
    size_t errlen);
static int sa_order_address(yajl_val obj, sa_address_t *ad, char *err,
    size_t errlen);
static int sa_order_tracking(yajl_val root, sa_order_t *o, char *err,
    size_t errlen);
static int sa_act_state_ok(const sa_act_state_t *s);
static int sa_act_field_ok(const char *s, size_t cap, int printable);
static void sa_act_put32(unsigned char *p, uint32_t v);
static uint32_t sa_act_get32(const unsigned char *p);
static void sa_act_put64(unsigned char *p, uint64_t v);
static uint64_t sa_act_get64(const unsigned char *p);
static int sa_act_email_local(unsigned char c);
static size_t sa_act_number(const char *t, size_t len, size_t p,
    double *v);
static int sa_act_word_at(const char *t, size_t len, size_t p,
    const char *w);
static int sa_act_state_code(char a, char b);
static int sa_act_part(const char *t, size_t from, size_t to,
    size_t *start, size_t *end);
static int sa_act_unit_part(const char *t, size_t from, size_t to);
static int sa_act_set(char *out, size_t cap, const char *p, size_t n);
static int sa_confirm_words(const char *text, size_t len,
    char words[][SA_CONFIRM_WORD], size_t *n);
static int sa_confirm_match(char words[][SA_CONFIRM_WORD], size_t n,
    const char **phrases);
static size_t sa_confirm_phrase(char words[][SA_CONFIRM_WORD], size_t n,
    size_t at, const char *phrase);
static int sa_templates_add(sa_templates_t *t, const char *name,
    size_t name_len, char *body, size_t body_len);
static int sa_template_line(const char *p, size_t n, size_t line,
    char *err, size_t errlen);
static const char *sa_template_var(const sa_kv_t *vars, size_t n,
    const char *key, size_t len);


/* 1. tools */

const char *
sa_tool_name(sa_tool_e t)
{
    if (t < 0 || t >= SA_TOOL_COUNT) {
        return NULL;
    }

    return sa_tool_names[t];
}


sa_tool_e
sa_tool_by_name(const char *name, size_t len)
{
    int  t;

    if (name == NULL) {
        return SA_TOOL_NONE;
    }

    for (t = 0; t < SA_TOOL_COUNT; t++) {
        if (strlen(sa_tool_names[t]) == len
            && memcmp(sa_tool_names[t], name, len) == 0)
        {
            return (sa_tool_e) t;
        }
    }

    return SA_TOOL_NONE;
}


int
sa_tool_is_write(sa_tool_e t)
{
    return t > SA_TOOL_LOOKUP_ORDER && t < SA_TOOL_COUNT;
}


int
sa_tools_json(unsigned set, char **json, size_t *len)
{
    int      t, first;
    char    *p;
    size_t   n;

    *json = NULL;

    if (len) {
        *len = 0;
    }

    if ((set & SA_TOOLS_ALL) == 0 || (set & ~(unsigned) SA_TOOLS_ALL)) {
        return SA_INVALID;
    }

    n = sizeof("{\"tools\":[],\"tool_choice\":\"auto\"}");

    for (t = 0; t < SA_TOOL_COUNT; t++) {
        n += strlen(sa_tool_schemas[t]) + 1;
    }

    p = malloc(n);
    if (p == NULL) {
        return SA_ERROR;
    }

    strcpy(p, "{\"tools\":[");
    first = 1;

    for (t = 0; t < SA_TOOL_COUNT; t++) {
        if (!(set & (1u << t))) {
            continue;
        }

        if (!first) {
            strcat(p, ",");
        }

        strcat(p, sa_tool_schemas[t]);
        first = 0;
    }

    strcat(p, "],\"tool_choice\":\"auto\"}");

    *json = p;

    if (len) {
        *len = strlen(p);
    }

    return SA_OK;
}


/* 2. arguments */

int
sa_tool_args_parse(sa_tool_e tool, const char *json, size_t len,
    sa_tool_args_t *a, char *err, size_t errlen)
{
    int       rc;
    char      reason[128], id[SA_ORDER_ID_LEN + 1];
    yajl_val  root;

    memset(a, 0, sizeof(sa_tool_args_t));
    a->tool = tool;

    sa_act_err(err, errlen, "%s", "");

    if (tool < 0 || tool >= SA_TOOL_COUNT) {
        a->tool = SA_TOOL_NONE;
        sa_act_err(err, errlen, "tool: unknown tool");
        return SA_INVALID;
    }

    if (json == NULL || len == 0) {
        sa_act_err(err, errlen, "arguments: missing");
        return SA_INVALID;
    }

    if (!sa_utf8_valid((const unsigned char *) json, len)) {
        sa_act_err(err, errlen, "arguments: must be valid UTF-8");
        return SA_INVALID;
    }

    rc = sa_act_raw_ok(json, len);

    if (rc == 2) {
        sa_act_err(err, errlen,
                   "arguments: must not contain control characters");
        return SA_INVALID;
    }

    root = (rc == 0) ? sa_json_tree_parse(json, len, reason, sizeof(reason))
                     : NULL;

    if (root == NULL) {
        sa_act_err(err, errlen, "arguments: not valid JSON");
        return SA_INVALID;
    }

    if (!YAJL_IS_OBJECT(root)) {
        sa_act_err(err, errlen, "arguments: must be a JSON object");
        rc = SA_INVALID;
        goto done;
    }

    rc = sa_act_args_keys(tool, root, err, errlen);
    if (rc != SA_OK) {
        goto done;
    }

    /* cut: too long is the order id's own error below */
    rc = sa_act_get_str(root, "order_id", "order_id", SA_STR_CUT, id,
                        sizeof(id), err, errlen);
    if (rc != SA_OK) {
        goto done;
    }

    if (sa_act_order_id(id, a->order_id) != SA_OK) {
        sa_act_err(err, errlen, "order_id: must be 1 to 31 characters: an "
                   "optional '#' then A-Z a-z 0-9 _ -");
        rc = SA_INVALID;
        goto done;
    }

    switch (tool) {

    case SA_TOOL_PROCESS_REFUND:
        rc = sa_act_args_refund(root, a, err, errlen);
        break;

    case SA_TOOL_UPDATE_ADDRESS:
        rc = sa_act_args_address(root, a, err, errlen);
        break;

    case SA_TOOL_CANCEL_ORDER:
        rc = sa_act_args_cancel(root, a, err, errlen);
        break;

    default:
        rc = SA_OK;
    }

done:

    yajl_tree_free(root);

    if (rc != SA_OK) {
        memset(a, 0, sizeof(sa_tool_args_t));
        a->tool = tool;
    }

    return rc;
}


/* no unknown and no repeated keys */
static int
sa_act_args_keys(sa_tool_e tool, yajl_val root, char *err, size_t errlen)
{
    char         safe[48];
    size_t       i, j, k;
    const char  *key;

    for (i = 0; i < root->u.object.len; i++) {
        key = root->u.object.keys[i];

        for (k = 0; sa_tool_keys[tool][k] != NULL; k++) {
            if (strcmp(sa_tool_keys[tool][k], key) == 0) {
                break;
            }
        }

        sa_act_key_safe(key, safe, sizeof(safe));

        if (sa_tool_keys[tool][k] == NULL) {
            sa_act_err(err, errlen, "%s: unknown argument", safe);
            return SA_INVALID;
        }

        for (j = 0; j < i; j++) {
            if (strcmp(root->u.object.keys[j], key) == 0) {
                /* yajl keeps both; which one would count is a guess */
                sa_act_err(err, errlen, "%s: given twice", safe);
                return SA_INVALID;
            }
        }
    }

    return SA_OK;
}


static int
sa_act_args_refund(yajl_val root, sa_tool_args_t *a, char *err,
    size_t errlen)
{
    char         field[32];
    double       x, cents;
    size_t       i, n;
    yajl_val     v, item;
    const char  *s;

    v = sa_act_member(root, "amount");

    if (v != NULL && !YAJL_IS_NULL(v)) {

        if (!YAJL_IS_NUMBER(v)) {
            sa_act_err(err, errlen, "amount: must be a number or null");
            return SA_INVALID;
        }

        x = YAJL_GET_DOUBLE(v);

        if (!YAJL_IS_DOUBLE(v) || !isfinite(x)) {
            sa_act_err(err, errlen, "amount: must be a finite number");
            return SA_INVALID;
        }

        if (!(x > 0)) {
            sa_act_err(err, errlen, "amount: must be greater than 0");
            return SA_INVALID;
        }

        if (x >= SA_AMOUNT_MAX) {
            sa_act_err(err, errlen, "amount: must be less than 10000000");
            return SA_INVALID;
        }

        /* 12.345 is not money; 12.30 and 1.23e1 are */
        cents = x * 100;

        if (fabs(cents - round(cents)) > 1e-6 || round(cents) < 1) {
            sa_act_err(err, errlen, "amount: at most 2 decimal places");
            return SA_INVALID;
        }

        a->amount = round(cents) / 100;
    }

    v = sa_act_member(root, "item_ids");

    if (v != NULL && !YAJL_IS_NULL(v)) {

        if (!YAJL_IS_ARRAY(v)) {
            sa_act_err(err, errlen,
                       "item_ids: must be an array of strings or null");
            return SA_INVALID;
        }

        n = v->u.array.len;

        if (n == 0 || n > SA_ACT_ITEMS) {
            sa_act_err(err, errlen, "item_ids: must have 1 to %d items",
                       SA_ACT_ITEMS);
            return SA_INVALID;
        }

        for (i = 0; i < n; i++) {
            item = v->u.array.values[i];
            snprintf(field, sizeof(field), "item_ids[%zu]", i);

            if (!YAJL_IS_STRING(item)) {
                sa_act_err(err, errlen, "%s: must be a string", field);
                return SA_INVALID;
            }

            s = YAJL_GET_STRING(item);

            if (sa_act_set(a->item_ids[i], SA_ITEM_ID_LEN, s, strlen(s))
                != SA_OK)
            {
                sa_act_err(err, errlen, "%s: must be 1 to %d of 0-9 A-Z "
                           "a-z _ -", field, SA_ITEM_ID_LEN - 1);
                return SA_INVALID;
            }
        }

        a->n_items = n;
    }

    if (a->amount > 0 && a->n_items > 0) {
        sa_act_err(err, errlen,
                   "amount: give either amount or item_ids, not both");
        return SA_INVALID;
    }

    if (a->amount == 0 && a->n_items == 0) {
        sa_act_err(err, errlen,
                   "amount: give the amount or the item_ids to refund");
        return SA_INVALID;
    }

    return sa_act_get_str(root, "reason", "reason",
                          SA_STR_OPTIONAL | SA_STR_EMPTY_OK | SA_STR_TRIM,
                          a->reason, sizeof(a->reason), err, errlen);
}


static int
sa_act_args_address(yajl_val root, sa_tool_args_t *a, char *err,
    size_t errlen)
{
    int            rc;
    size_t         i;
    sa_address_t  *ad;

    ad = &a->address;

    rc = sa_act_get_str(root, "address1", "address1", SA_STR_TRIM,
                        ad->address1, sizeof(ad->address1), err, errlen);
    if (rc == SA_OK) {
        rc = sa_act_get_str(root, "address2", "address2",
                            SA_STR_OPTIONAL | SA_STR_EMPTY_OK | SA_STR_TRIM,
                            ad->address2, sizeof(ad->address2), err, errlen);
    }

    if (rc == SA_OK) {
        rc = sa_act_get_str(root, "city", "city", SA_STR_TRIM, ad->city,
                            sizeof(ad->city), err, errlen);
    }

    if (rc == SA_OK) {
        rc = sa_act_get_str(root, "state", "state", SA_STR_TRIM, ad->state,
                            sizeof(ad->state), err, errlen);
    }

    if (rc == SA_OK) {
        rc = sa_act_get_str(root, "zip", "zip", SA_STR_TRIM, ad->zip,
                            sizeof(ad->zip), err, errlen);
    }

    if (rc == SA_OK) {
        rc = sa_act_get_str(root, "country", "country", SA_STR_TRIM,
                            ad->country, sizeof(ad->country), err, errlen);
    }

    if (rc != SA_OK) {
        return rc;
    }

    if (strcasecmp(ad->country, "USA") == 0
        || strcasecmp(ad->country, "US") == 0
        || strcasecmp(ad->country, "U.S.") == 0
        || strcasecmp(ad->country, "U.S.A.") == 0
        || strcasecmp(ad->country, "United States") == 0
        || strcasecmp(ad->country, "United States of America") == 0)
    {
        strcpy(ad->country, "USA");
    }

    if (strcmp(ad->country, "USA") != 0) {
        return SA_OK;
    }

    /* the shop's schema wants these in the USA; say so before it does */

    for (i = 0; ad->zip[i] != '\0'; i++) {
        if (!sa_act_digit(ad->zip[i])) {
            break;
        }
    }

    if (i != 5 || ad->zip[i] != '\0') {
        sa_act_err(err, errlen, "zip: must be 5 digits when country is USA");
        return SA_INVALID;
    }

    if (strlen(ad->state) != 2 || !sa_act_alpha(ad->state[0])
        || !sa_act_alpha(ad->state[1]))
    {
        sa_act_err(err, errlen, "state: must be a 2-letter code such as NY "
                   "when country is USA");
        return SA_INVALID;
    }

    ad->state[0] = (char) sa_act_upper(ad->state[0]);
    ad->state[1] = (char) sa_act_upper(ad->state[1]);

    return SA_OK;
}


static int
sa_act_args_cancel(yajl_val root, sa_tool_args_t *a, char *err,
    size_t errlen)
{
    int     rc;
    size_t  i;

    rc = sa_act_get_str(root, "reason", "reason", SA_STR_TRIM, a->reason,
                        sizeof(a->reason), err, errlen);
    if (rc != SA_OK) {
        return rc;
    }

    for (i = 0; sa_cancel_reasons[i] != NULL; i++) {
        if (strcasecmp(a->reason, sa_cancel_reasons[i]) == 0) {
            strcpy(a->reason, sa_cancel_reasons[i]);
            return SA_OK;
        }
    }

    sa_act_err(err, errlen, "reason: must be \"no longer needed\" or "
               "\"ordered by mistake\"");

    return SA_INVALID;
}


/* "#W2611340" -> "W2611340"; out has SA_ORDER_ID_LEN bytes */
static int
sa_act_order_id(const char *s, char *out)
{
    size_t  i, n;

    n = strlen(s);

    if (n == 0 || n >= SA_ORDER_ID_LEN) {
        return SA_INVALID;
    }

    if (s[0] == '#') {
        s++;
        n--;
    }

    if (n == 0) {
        return SA_INVALID;
    }

    for (i = 0; i < n; i++) {
        if (!sa_act_id_char(s[i])) {
            return SA_INVALID;
        }
    }

    memcpy(out, s, n);
    out[n] = '\0';

    return SA_OK;
}


/* an id of [0-9A-Za-z_-], 1 .. cap - 1 bytes, into out */
static int
sa_act_set(char *out, size_t cap, const char *p, size_t n)
{
    size_t  i;

    if (n == 0 || n >= cap) {
        return SA_INVALID;
    }

    for (i = 0; i < n; i++) {
        if (!sa_act_id_char(p[i])) {
            return SA_INVALID;
        }
    }

    memcpy(out, p, n);
    out[n] = '\0';

    return SA_OK;
}


int
sa_tool_args_json(const sa_tool_args_t *a, char **json, size_t *len)
{
    int       rc;
    size_t    i;
    sa_jw_t  *w;

    *json = NULL;

    if (len) {
        *len = 0;
    }

    if (a == NULL || a->tool < 0 || a->tool >= SA_TOOL_COUNT) {
        return SA_INVALID;
    }

    w = sa_jw_new();
    if (w == NULL) {
        return SA_ERROR;
    }

    /* a failed call leaves the builder unfinished: checked at the end */
    rc = sa_jw_open(w);
    rc |= sa_act_jw_field(w, "order_id", a->order_id, SA_ORDER_ID_LEN);

    switch (a->tool) {

    case SA_TOOL_PROCESS_REFUND:
        rc |= (a->amount > 0) ? sa_jw_kdouble(w, "amount", a->amount)
                              : sa_jw_knull(w, "amount");

        if (a->n_items > 0 && a->n_items <= SA_ACT_ITEMS) {
            rc |= sa_jw_key(w, "item_ids");
            rc |= sa_jw_array_open(w);

            for (i = 0; i < a->n_items; i++) {
                rc |= sa_jw_str(w, a->item_ids[i],
                                strnlen(a->item_ids[i], SA_ITEM_ID_LEN));
            }

            rc |= sa_jw_array_close(w);

        } else {
            rc |= sa_jw_knull(w, "item_ids");
        }

        rc |= (a->reason[0] != '\0')
              ? sa_act_jw_field(w, "reason", a->reason, sizeof(a->reason))
              : sa_jw_knull(w, "reason");
        break;

    case SA_TOOL_UPDATE_ADDRESS:
        rc |= sa_act_jw_address(w, &a->address);
        break;

    case SA_TOOL_CANCEL_ORDER:
        rc |= sa_act_jw_field(w, "reason", a->reason, sizeof(a->reason));
        break;

    default:
        break;
    }

    rc |= sa_jw_close(w);

    if (rc != SA_OK || !sa_jw_complete(w)) {
        sa_jw_free(w);
        return SA_INVALID;
    }

    *json = sa_act_take(w, len);

    return *json ? SA_OK : SA_ERROR;
}


static int
sa_act_jw_address(sa_jw_t *w, const sa_address_t *ad)
{
    int  rc;

    rc = sa_act_jw_field(w, "address1", ad->address1, sizeof(ad->address1));
    rc |= sa_act_jw_field(w, "address2", ad->address2, sizeof(ad->address2));
    rc |= sa_act_jw_field(w, "city", ad->city, sizeof(ad->city));
    rc |= sa_act_jw_field(w, "state", ad->state, sizeof(ad->state));
    rc |= sa_act_jw_field(w, "zip", ad->zip, sizeof(ad->zip));
    rc |= sa_act_jw_field(w, "country", ad->country, sizeof(ad->country));

    return rc;
}


/* a string field of a struct, perhaps without its NUL */
static int
sa_act_jw_field(sa_jw_t *w, const char *key, const char *s, size_t cap)
{
    return sa_jw_kstr(w, key, s, strnlen(s, cap - 1));
}


int
sa_tool_request(const sa_tool_args_t *a, const char **method,
    char **path, char **body, size_t *body_len)
{
    int           rc;
    char         *p;
    size_t        i, n, id_len;
    sa_jw_t      *w;
    const char   *suffix;
    static const char  hex[] = "0123456789ABCDEF";

    *method = NULL;
    *path = NULL;
    *body = NULL;
    *body_len = 0;

    if (a == NULL || a->tool < 0 || a->tool >= SA_TOOL_COUNT) {
        return SA_INVALID;
    }

    id_len = strnlen(a->order_id, SA_ORDER_ID_LEN - 1);
    if (id_len == 0) {
        return SA_INVALID;
    }

    switch (a->tool) {

    case SA_TOOL_PROCESS_REFUND:
        *method = "POST";
        suffix = "/refunds";
        break;

    case SA_TOOL_UPDATE_ADDRESS:
        *method = "PATCH";
        suffix = "/shipping_address";
        break;

    case SA_TOOL_CANCEL_ORDER:
        *method = "POST";
        suffix = "/cancel";
        break;

    default:
        *method = "GET";
        suffix = "";
    }

    w = NULL;

    if (a->tool != SA_TOOL_LOOKUP_ORDER) {
        w = sa_jw_new();
        if (w == NULL) {
            *method = NULL;
            return SA_ERROR;
        }

        rc = sa_jw_open(w);

        switch (a->tool) {

        case SA_TOOL_PROCESS_REFUND:
            if (a->amount > 0 && a->n_items == 0) {
                rc |= sa_jw_kdouble(w, "amount", a->amount);

            } else if (a->n_items > 0 && a->n_items <= SA_ACT_ITEMS
                       && a->amount == 0)
            {
                rc |= sa_jw_key(w, "item_ids");
                rc |= sa_jw_array_open(w);

                for (i = 0; i < a->n_items; i++) {
                    rc |= sa_jw_str(w, a->item_ids[i],
                                    strnlen(a->item_ids[i], SA_ITEM_ID_LEN));
                }

                rc |= sa_jw_array_close(w);

            } else {
                rc = SA_INVALID;
            }

            if (a->reason[0] != '\0') {
                rc |= sa_act_jw_field(w, "reason", a->reason,
                                      sizeof(a->reason));
            }

            break;

        case SA_TOOL_UPDATE_ADDRESS:
            rc |= sa_act_jw_address(w, &a->address);
            break;

        default:
            if (a->reason[0] == '\0') {
                rc = SA_INVALID;
            }

            rc |= sa_act_jw_field(w, "reason", a->reason, sizeof(a->reason));
        }

        rc |= sa_jw_close(w);

        if (rc != SA_OK || !sa_jw_complete(w)) {
            sa_jw_free(w);
            *method = NULL;
            return SA_INVALID;
        }
    }

    /* "/orders/" "%23" id suffix: every byte but [A-Za-z0-9_-] encoded */
    p = malloc(sizeof("/orders/%23") + 3 * id_len + strlen(suffix));
    if (p == NULL) {
        sa_jw_free(w);
        *method = NULL;
        return SA_ERROR;
    }

    n = sizeof("/orders/%23") - 1;
    memcpy(p, "/orders/%23", n);

    for (i = 0; i < id_len; i++) {
        if (sa_act_id_char(a->order_id[i])) {
            p[n++] = a->order_id[i];

        } else {
            p[n++] = '%';
            p[n++] = hex[(unsigned char) a->order_id[i] >> 4];
            p[n++] = hex[(unsigned char) a->order_id[i] & 0xf];
        }
    }

    strcpy(p + n, suffix);

    if (w != NULL) {
        *body = sa_act_take(w, body_len);
        if (*body == NULL) {
            free(p);
            *method = NULL;
            return SA_ERROR;
        }
    }

    *path = p;

    return SA_OK;
}


int
sa_act_summary(const sa_tool_args_t *a, char *buf, size_t cap)
{
    char                 money[32];
    size_t               i, n;
    const sa_address_t  *ad;

    if (buf == NULL || cap == 0) {
        return SA_INVALID;
    }

    buf[0] = '\0';

    if (a == NULL || !sa_tool_is_write(a->tool)) {
        return SA_INVALID;
    }

    switch (a->tool) {

    case SA_TOOL_PROCESS_REFUND:

        if (a->n_items > 0 && a->n_items <= SA_ACT_ITEMS) {
            snprintf(buf, cap, "refund the item%s ",
                     a->n_items > 1 ? "s" : "");

            for (i = 0; i < a->n_items; i++) {
                n = strlen(buf);
                snprintf(buf + n, cap - n, "%s%.*s", i ? ", " : "",
                         SA_ITEM_ID_LEN - 1, a->item_ids[i]);
            }

            n = strlen(buf);
            snprintf(buf + n, cap - n, " of order #%.*s at their price to "
                     "the original payment method", SA_ORDER_ID_LEN - 1,
                     a->order_id);

        } else {
            sa_act_money(a->amount, money, sizeof(money));
            snprintf(buf, cap, "refund %s USD on order #%.*s to the "
                     "original payment method", money, SA_ORDER_ID_LEN - 1,
                     a->order_id);
        }

        if (a->reason[0] != '\0') {
            n = strlen(buf);
            snprintf(buf + n, cap - n, " (reason: %.*s)", SA_REASON_MAX,
                     a->reason);
        }

        break;

    case SA_TOOL_UPDATE_ADDRESS:
        ad = &a->address;
        snprintf(buf, cap, "change the shipping address of order #%.*s to: "
                 "%.127s%s%.127s, %.63s, %.31s %.15s, %.31s",
                 SA_ORDER_ID_LEN - 1, a->order_id, ad->address1,
                 ad->address2[0] ? ", " : "", ad->address2, ad->city,
                 ad->state, ad->zip, ad->country);
        break;

    default:
        snprintf(buf, cap, "cancel order #%.*s (reason: %.*s); what was "
                 "paid goes back to the original payment method",
                 SA_ORDER_ID_LEN - 1, a->order_id, SA_REASON_MAX,
                 a->reason);
    }

    /* snprintf() may have cut inside a character */
    n = strlen(buf);
    buf[sa_utf8_complete_prefix((const unsigned char *) buf, n)] = '\0';

    return SA_OK;
}


/* 3. orders */

int
sa_order_parse(const char *body, size_t len, sa_order_t *o, char *err,
    size_t errlen)
{
    int       rc;
    char      reason[128], id[SA_ORDER_ID_LEN + 1];
    yajl_val  root, customer, name, v;

    memset(o, 0, sizeof(sa_order_t));
    sa_act_err(err, errlen, "%s", "");

    if (body == NULL || len == 0 || sa_act_raw_ok(body, len) != 0) {
        sa_act_err(err, errlen, "order: not valid JSON");
        return SA_INVALID;
    }

    root = sa_json_tree_parse(body, len, reason, sizeof(reason));
    if (root == NULL) {
        sa_act_err(err, errlen, "order: not valid JSON");
        return SA_INVALID;
    }

    if (!YAJL_IS_OBJECT(root)) {
        sa_act_err(err, errlen, "order: not a JSON object");
        rc = SA_INVALID;
        goto done;
    }

    rc = sa_act_get_str(root, "order_id", "order_id", SA_STR_CUT, id,
                        sizeof(id), err, errlen);
    if (rc != SA_OK) {
        goto done;
    }

    if (sa_act_order_id(id, o->order_id) != SA_OK) {
        sa_act_err(err, errlen, "order_id: not an order id");
        rc = SA_INVALID;
        goto done;
    }

    rc = sa_act_get_str(root, "status", "status", SA_STR_CLEAN, o->status,
                        sizeof(o->status), err, errlen);
    if (rc != SA_OK) {
        goto done;
    }

    customer = sa_act_member(root, "customer");

    if (!YAJL_IS_OBJECT(customer)) {
        sa_act_err(err, errlen, "customer: %s",
                   customer ? "must be an object" : "missing");
        rc = SA_INVALID;
        goto done;
    }

    rc = sa_act_get_str(customer, "email", "customer.email", 0, o->email,
                        sizeof(o->email), err, errlen);
    if (rc != SA_OK) {
        goto done;
    }

    name = sa_act_member(customer, "name");

    if (!YAJL_IS_OBJECT(name)) {
        sa_act_err(err, errlen, "customer.name: %s",
                   name ? "must be an object" : "missing");
        rc = SA_INVALID;
        goto done;
    }

    rc = sa_act_get_str(name, "first_name", "customer.name.first_name",
                        SA_STR_EMPTY_OK | SA_STR_CUT | SA_STR_CLEAN,
                        o->first_name, sizeof(o->first_name), err, errlen);
    if (rc != SA_OK) {
        goto done;
    }

    rc = sa_order_items(root, o, err, errlen);
    if (rc != SA_OK) {
        goto done;
    }

    rc = sa_act_get_money(root, "total", "total", &o->total, err, errlen);
    if (rc != SA_OK) {
        goto done;
    }

    rc = sa_act_get_money(root, "refundable_amount", "refundable_amount",
                          &o->refundable, err, errlen);
    if (rc != SA_OK) {
        goto done;
    }

    rc = sa_act_get_str(root, "currency", "currency", SA_STR_CLEAN,
                        o->currency, sizeof(o->currency), err, errlen);
    if (rc != SA_OK) {
        goto done;
    }

    v = sa_act_member(root, "shipping_address");

    if (!YAJL_IS_OBJECT(v)) {
        sa_act_err(err, errlen, "shipping_address: %s",
                   v ? "must be an object" : "missing");
        rc = SA_INVALID;
        goto done;
    }

    rc = sa_order_address(v, &o->address, err, errlen);
    if (rc != SA_OK) {
        goto done;
    }

    rc = sa_order_tracking(root, o, err, errlen);

done:

    yajl_tree_free(root);

    if (rc != SA_OK) {
        memset(o, 0, sizeof(sa_order_t));
    }

    return rc;
}


static int
sa_order_items(yajl_val root, sa_order_t *o, char *err, size_t errlen)
{
    int       rc;
    char      field[48], id[SA_ITEM_ID_LEN + 1];
    size_t    i, n;
    yajl_val  items, it;

    items = sa_act_member(root, "items");

    if (!YAJL_IS_ARRAY(items)) {
        sa_act_err(err, errlen, "items: %s",
                   items ? "must be an array" : "missing");
        return SA_INVALID;
    }

    n = items->u.array.len;

    if (n > SA_ACT_ITEMS) {
        sa_act_err(err, errlen, "items: more than %d items", SA_ACT_ITEMS);
        return SA_INVALID;
    }

    for (i = 0; i < n; i++) {
        it = items->u.array.values[i];

        if (!YAJL_IS_OBJECT(it)) {
            sa_act_err(err, errlen, "items[%zu]: must be an object", i);
            return SA_INVALID;
        }

        snprintf(field, sizeof(field), "items[%zu].item_id", i);

        rc = sa_act_get_str(it, "item_id", field, SA_STR_CUT, id,
                            sizeof(id), err, errlen);
        if (rc != SA_OK) {
            return rc;
        }

        if (sa_act_set(o->items[i].item_id, SA_ITEM_ID_LEN, id, strlen(id))
            != SA_OK)
        {
            sa_act_err(err, errlen, "%s: not an item id", field);
            return SA_INVALID;
        }

        snprintf(field, sizeof(field), "items[%zu].name", i);

        rc = sa_act_get_str(it, "name", field,
                            SA_STR_EMPTY_OK | SA_STR_CUT | SA_STR_CLEAN,
                            o->items[i].name, sizeof(o->items[i].name), err,
                            errlen);
        if (rc != SA_OK) {
            return rc;
        }

        snprintf(field, sizeof(field), "items[%zu].price", i);

        rc = sa_act_get_money(it, "price", field, &o->items[i].price, err,
                              errlen);
        if (rc != SA_OK) {
            return rc;
        }
    }

    o->n_items = n;

    return SA_OK;
}


static int
sa_order_address(yajl_val obj, sa_address_t *ad, char *err, size_t errlen)
{
    int       rc;
    unsigned  f;

    f = SA_STR_CLEAN;

    rc = sa_act_get_str(obj, "address1", "shipping_address.address1", f,
                        ad->address1, sizeof(ad->address1), err, errlen);
    if (rc == SA_OK) {
        rc = sa_act_get_str(obj, "address2", "shipping_address.address2",
                            f | SA_STR_EMPTY_OK | SA_STR_OPTIONAL,
                            ad->address2, sizeof(ad->address2), err, errlen);
    }

    if (rc == SA_OK) {
        rc = sa_act_get_str(obj, "city", "shipping_address.city", f,
                            ad->city, sizeof(ad->city), err, errlen);
    }

    /* some countries have neither states nor zip codes */

    if (rc == SA_OK) {
        rc = sa_act_get_str(obj, "state", "shipping_address.state",
                            f | SA_STR_EMPTY_OK, ad->state,
                            sizeof(ad->state), err, errlen);
    }

    if (rc == SA_OK) {
        rc = sa_act_get_str(obj, "zip", "shipping_address.zip",
                            f | SA_STR_EMPTY_OK, ad->zip, sizeof(ad->zip),
                            err, errlen);
    }

    if (rc == SA_OK) {
        rc = sa_act_get_str(obj, "country", "shipping_address.country", f,
                            ad->country, sizeof(ad->country), err, errlen);
    }

    return rc;
}


/* the first tracking id of the fulfillments, which may be absent */
static int
sa_order_tracking(yajl_val root, sa_order_t *o, char *err, size_t errlen)
{
    size_t       i, j, n;
    yajl_val     ff, f, ids, id;
    const char  *s;

    ff = sa_act_member(root, "fulfillments");

    if (ff == NULL || YAJL_IS_NULL(ff)) {
        return SA_OK;
    }

    if (!YAJL_IS_ARRAY(ff)) {
        sa_act_err(err, errlen, "fulfillments: must be an array");
        return SA_INVALID;
    }

    for (i = 0; i < ff->u.array.len; i++) {
        f = ff->u.array.values[i];

        if (!YAJL_IS_OBJECT(f)) {
            sa_act_err(err, errlen, "fulfillments[%zu]: must be an object",
                       i);
            return SA_INVALID;
        }

        ids = sa_act_member(f, "tracking_id");

        if (ids == NULL || YAJL_IS_NULL(ids)) {
            continue;
        }

        if (!YAJL_IS_ARRAY(ids)) {
            sa_act_err(err, errlen, "fulfillments[%zu].tracking_id: must be "
                       "an array", i);
            return SA_INVALID;
        }

        for (j = 0; j < ids->u.array.len; j++) {
            id = ids->u.array.values[j];

            if (!YAJL_IS_STRING(id)) {
                sa_act_err(err, errlen, "fulfillments[%zu].tracking_id[%zu]: "
                           "must be a string", i, j);
                return SA_INVALID;
            }

            s = YAJL_GET_STRING(id);
            n = strlen(s);

            if (o->tracking[0] != '\0' || n == 0) {
                continue;
            }

            /* a cut tracking number would send the customer astray */
            if (n >= sizeof(o->tracking) || !sa_act_text_ok(s, n)) {
                sa_act_err(err, errlen, "fulfillments[%zu].tracking_id[%zu]: "
                           "too long or not text", i, j);
                return SA_INVALID;
            }

            memcpy(o->tracking, s, n + 1);
        }
    }

    return SA_OK;
}


int
sa_order_json(const sa_order_t *o, char **json, size_t *len)
{
    int       rc;
    char      id[SA_ORDER_ID_LEN + 1];
    size_t    i, n;
    sa_jw_t  *w;

    *json = NULL;

    if (len) {
        *len = 0;
    }

    if (o == NULL || o->n_items > SA_ACT_ITEMS) {
        return SA_INVALID;
    }

    w = sa_jw_new();
    if (w == NULL) {
        return SA_ERROR;
    }

    n = strnlen(o->order_id, SA_ORDER_ID_LEN - 1);
    id[0] = '#';
    memcpy(id + 1, o->order_id, n);

    rc = sa_jw_open(w);
    rc |= sa_jw_kstr(w, "order_id", id, n + 1);
    rc |= sa_act_jw_field(w, "status", o->status, sizeof(o->status));
    rc |= sa_jw_key(w, "items");
    rc |= sa_jw_array_open(w);

    for (i = 0; i < o->n_items; i++) {
        rc |= sa_jw_open(w);
        rc |= sa_act_jw_field(w, "item_id", o->items[i].item_id,
                              sizeof(o->items[i].item_id));
        rc |= sa_act_jw_field(w, "name", o->items[i].name,
                              sizeof(o->items[i].name));
        rc |= sa_jw_kdouble(w, "price", round(o->items[i].price * 100) / 100);
        rc |= sa_jw_close(w);
    }

    rc |= sa_jw_array_close(w);
    rc |= sa_jw_kdouble(w, "total", round(o->total * 100) / 100);
    rc |= sa_jw_kdouble(w, "refundable_amount",
                        round(o->refundable * 100) / 100);
    rc |= sa_act_jw_field(w, "currency", o->currency, sizeof(o->currency));
    rc |= sa_jw_key(w, "shipping_address");
    rc |= sa_jw_open(w);
    rc |= sa_act_jw_address(w, &o->address);
    rc |= sa_jw_close(w);

    rc |= (o->tracking[0] != '\0')
          ? sa_act_jw_field(w, "tracking_id", o->tracking,
                            sizeof(o->tracking))
          : sa_jw_knull(w, "tracking_id");

    rc |= sa_jw_close(w);

    if (rc != SA_OK || !sa_jw_complete(w)) {
        sa_jw_free(w);
        return SA_INVALID;
    }

    *json = sa_act_take(w, len);

    return *json ? SA_OK : SA_ERROR;
}


int
sa_order_email_matches(const sa_order_t *o, const char *email)
{
    if (o == NULL || email == NULL || email[0] == '\0'
        || o->email[0] == '\0')
    {
        return 0;
    }

    return strncasecmp(o->email, email, sizeof(o->email)) == 0;
}


void
sa_order_items_text(const sa_order_t *o, char *buf, size_t cap)
{
    int     k;
    char    money[32];
    size_t  i, n;

    if (buf == NULL || cap == 0) {
        return;
    }

    buf[0] = '\0';

    if (o == NULL || o->n_items == 0 || o->n_items > SA_ACT_ITEMS) {
        snprintf(buf, cap, "no items");
        return;
    }

    k = snprintf(buf, cap, "%zu item%s: ", o->n_items,
                 o->n_items > 1 ? "s" : "");
    n = (k > 0) ? (size_t) k : 0;

    for (i = 0; i < o->n_items && n < cap; i++) {
        sa_act_money(o->items[i].price, money, sizeof(money));
        k = snprintf(buf + n, cap - n, "%s%.*s (%s)", i ? ", " : "",
                     (int) sizeof(o->items[i].name) - 1, o->items[i].name,
                     money);
        n += (k > 0) ? (size_t) k : 0;
    }

    n = strlen(buf);
    buf[sa_utf8_complete_prefix((const unsigned char *) buf, n)] = '\0';
}


void
sa_act_money(double v, char *buf, size_t cap)
{
    char  *comma;

    if (buf == NULL || cap == 0) {
        return;
    }

    buf[0] = '\0';

    if (!isfinite(v) || fabs(v) >= 1e15) {
        return;
    }

    snprintf(buf, cap, "%.2f", round(v * 100) / 100);

    /* a locale with a decimal comma must not change money */
    comma = strchr(buf, ',');
    if (comma) {
        *comma = '.';
    }
}


/* 4. results */

const char *
sa_act_code_name(sa_act_code_e c, sa_tool_e t)
{
    if (c < SA_ACT_OK || c > SA_ACT_NEEDS_HUMAN) {
        return "unknown";
    }

    if (c == SA_ACT_NOT_ALLOWED) {
        switch (t) {
        case SA_TOOL_PROCESS_REFUND:
            return "refund_not_allowed";
        case SA_TOOL_UPDATE_ADDRESS:
            return "address_change_not_allowed";
        case SA_TOOL_CANCEL_ORDER:
            return "cancel_not_allowed";
        default:
            break;
        }
    }

    return sa_act_codes[c];
}


int
sa_act_result_json(sa_act_code_e c, sa_tool_e t, const char *detail,
    const char *data_json, const char *action_id, char **json, size_t *len)
{
    int       rc;
    char      text[SA_ACT_DETAIL_MAX + 1];
    size_t    n;
    sa_jw_t  *w;

    *json = NULL;

    if (len) {
        *len = 0;
    }

    if (c < SA_ACT_OK || c > SA_ACT_NEEDS_HUMAN) {
        return SA_INVALID;
    }

    if (c == SA_ACT_PENDING && (action_id == NULL || action_id[0] == '\0')) {
        return SA_INVALID;
    }

    if (detail == NULL || detail[0] == '\0') {
        detail = sa_act_defaults[c];
    }

    n = sa_act_clean(detail, strlen(detail), text, sizeof(text));

    w = sa_jw_new();
    if (w == NULL) {
        return SA_ERROR;
    }

    rc = sa_jw_open(w);

    switch (c) {

    case SA_ACT_OK:
        rc |= sa_jw_kbool(w, "ok", 1);
        rc |= sa_jw_key(w, "result");

        if (rc == SA_OK) {
            rc = (data_json != NULL)
                 ? sa_jw_raw(w, data_json, strlen(data_json))
                 : sa_jw_null(w);
        }

        break;

    case SA_ACT_PENDING:
        rc |= sa_jw_kbool(w, "ok", 1);
        rc |= sa_jw_kstr(w, "status", "pending_confirmation",
                         sizeof("pending_confirmation") - 1);
        rc |= sa_jw_kstr(w, "action_id", action_id, strlen(action_id));
        rc |= sa_jw_kstr(w, "summary", text, n);
        rc |= sa_jw_kstr(w, "instruction", sa_act_instruction,
                         sizeof(sa_act_instruction) - 1);
        break;

    default:
        rc |= sa_jw_kbool(w, "ok", 0);
        rc |= sa_jw_kstr(w, "error", sa_act_code_name(c, t),
                         strlen(sa_act_code_name(c, t)));
        rc |= sa_jw_kstr(w, "detail", text, n);
    }

    rc |= sa_jw_close(w);

    if (rc != SA_OK || !sa_jw_complete(w)) {
        sa_jw_free(w);
        return SA_INVALID;
    }

    *json = sa_act_take(w, len);

    return *json ? SA_OK : SA_ERROR;
}


sa_act_code_e
sa_act_from_http(long status, const char *body, size_t len, char *detail,
    size_t cap)
{
    char           reason[128];
    size_t         n;
    yajl_val       root;
    const char    *d, *e;
    sa_act_code_e  c;

    if (detail != NULL && cap > 0) {
        detail[0] = '\0';
    }

    if (status >= 200 && status <= 299) {
        return SA_ACT_OK;
    }

    if (status != 404 && status != 409 && status != 422) {
        if (detail != NULL && cap > 0) {
            if (status == 0) {
                snprintf(detail, cap, "no answer");

            } else {
                snprintf(detail, cap, "HTTP %ld", status);
            }
        }

        return SA_ACT_UNAVAILABLE;
    }

    root = NULL;
    d = NULL;
    e = NULL;

    if (body != NULL && len > 0) {
        root = sa_json_tree_parse(body, len, reason, sizeof(reason));
    }

    if (YAJL_IS_OBJECT(root)) {
        d = sa_act_get(root, "detail");
        e = sa_act_get(root, "error");
    }

    if (status == 404) {
        if (e != NULL && strcmp(e, "order_not_found") != 0) {
            c = SA_ACT_UNAVAILABLE;
            d = "HTTP 404";

        } else {
            c = SA_ACT_ORDER_NOT_FOUND;
            d = (d != NULL && d[0] != '\0') ? d : "order not found";
        }

    } else {
        c = SA_ACT_NOT_ALLOWED;

        if (d == NULL || d[0] == '\0') {
            d = (e != NULL && e[0] != '\0') ? e : "not allowed";
        }
    }

    if (detail != NULL && cap > 0) {
        n = sa_act_clean(d, strlen(d), detail, cap);

        /* the replies put their own full stop after it */
        while (n > 0 && (detail[n - 1] == ' ' || detail[n - 1] == '.')) {
            detail[--n] = '\0';
        }
    }

    if (root != NULL) {
        yajl_tree_free(root);
    }

    return c;
}


/* 5. the state */

void
sa_act_state_init(sa_act_state_t *s)
{
    memset(s, 0, sizeof(sa_act_state_t));
    s->pending_tool = SA_TOOL_NONE;
    s->awaiting_tool = SA_TOOL_NONE;
}


size_t
sa_act_state_encode(const sa_act_state_t *s, unsigned char *buf,
    size_t cap)
{
    uint64_t  bits;

    if (buf == NULL || cap < SA_ACT_STATE_V1 || !sa_act_state_ok(s)) {
        return 0;
    }

    memset(buf, 0, SA_ACT_STATE_V1);

    buf[0] = 1;
    buf[1] = (unsigned char) s->verified_by;
    buf[2] = (unsigned char) s->pending;
    buf[3] = (unsigned char) (s->pending_tool + 1);
    buf[4] = (unsigned char) (s->awaiting_tool + 1);
    sa_act_put32(buf + 8, s->seq);
    sa_act_put64(buf + 16, (uint64_t) s->pending_created_ms);
    memcpy(&bits, &s->pending_amount, 8);
    sa_act_put64(buf + 24, bits);

    strcpy((char *) buf + 32, s->pending_id);
    strcpy((char *) buf + 56, s->last_order);
    strcpy((char *) buf + 88, s->verified_email);
    strcpy((char *) buf + 344, s->pending_args);

    return SA_ACT_STATE_V1;
}


int
sa_act_state_decode(const void *buf, size_t len, sa_act_state_t *s)
{
    uint64_t              bits;
    const unsigned char  *p = buf;

    sa_act_state_init(s);

    if (p == NULL || len < SA_ACT_STATE_V1 || p[0] < 1
        || p[3] > SA_TOOL_COUNT || p[4] > SA_TOOL_COUNT)
    {
        return SA_INVALID;
    }

    /* the NULs first: the checks below read the strings */
    if (memchr(p + 32, '\0', SA_ACT_ID_LEN) == NULL
        || memchr(p + 56, '\0', SA_ORDER_ID_LEN) == NULL
        || memchr(p + 88, '\0', sizeof(s->verified_email)) == NULL
        || memchr(p + 344, '\0', sizeof(s->pending_args)) == NULL)
    {
        return SA_INVALID;
    }

    s->verified_by = p[1];
    s->pending = p[2];
    s->pending_tool = (int32_t) p[3] - 1;
    s->awaiting_tool = (int32_t) p[4] - 1;
    s->seq = sa_act_get32(p + 8);
    s->pending_created_ms = (int64_t) sa_act_get64(p + 16);
    bits = sa_act_get64(p + 24);
    memcpy(&s->pending_amount, &bits, 8);

    memcpy(s->pending_id, p + 32, SA_ACT_ID_LEN);
    memcpy(s->last_order, p + 56, SA_ORDER_ID_LEN);
    memcpy(s->verified_email, p + 88, sizeof(s->verified_email));
    memcpy(s->pending_args, p + 344, sizeof(s->pending_args));

    if (!sa_act_state_ok(s)) {
        sa_act_state_init(s);
        return SA_INVALID;
    }

    return SA_OK;
}


/* what decode accepts, and so what encode writes */
static int
sa_act_state_ok(const sa_act_state_t *s)
{
    if (s == NULL || s->verified_by > SA_ACT_VERIFIED_TRUSTED
        || s->pending > 1 || s->pending_tool < SA_TOOL_NONE
        || s->pending_tool >= SA_TOOL_COUNT
        || s->awaiting_tool < SA_TOOL_NONE
        || s->awaiting_tool >= SA_TOOL_COUNT
        || !isfinite(s->pending_amount) || s->pending_amount < 0)
    {
        return 0;
    }

    if (!sa_act_field_ok(s->pending_id, SA_ACT_ID_LEN, 1)
        || !sa_act_field_ok(s->last_order, SA_ORDER_ID_LEN, 1)
        || !sa_act_field_ok(s->verified_email, sizeof(s->verified_email), 0)
        || !sa_act_field_ok(s->pending_args, sizeof(s->pending_args), 0))
    {
        return 0;
    }

    /* an identity without its e-mail address, or the other way round */
    if ((s->verified_by == SA_ACT_VERIFIED_NONE)
        != (s->verified_email[0] == '\0'))
    {
        return 0;
    }

    if (s->pending
        && (!sa_tool_is_write((sa_tool_e) s->pending_tool)
            || s->pending_id[0] == '\0' || s->pending_args[0] == '\0'))
    {
        return 0;
    }

    return 1;
}


/* NUL-terminated within cap, valid UTF-8 without control characters;
   printable: visible ASCII only (it goes into an HTTP header) */
static int
sa_act_field_ok(const char *s, size_t cap, int printable)
{
    size_t  i, n;

    n = strnlen(s, cap);

    if (n == cap) {
        return 0;
    }

    if (printable) {
        for (i = 0; i < n; i++) {
            if (s[i] <= ' ' || s[i] > '~') {
                return 0;
            }
        }

        return 1;
    }

    return sa_act_text_ok(s, n);
}


int
sa_act_prepare(sa_act_state_t *s, const sa_tool_args_t *a, uint32_t rnd,
    int64_t now_ms)
{
    int     rc;
    char   *json;
    size_t  len, n;

    if (s == NULL || a == NULL || !sa_tool_is_write(a->tool)) {
        return SA_INVALID;
    }

    rc = sa_tool_args_json(a, &json, &len);
    if (rc != SA_OK) {
        return rc;
    }

    if (len >= sizeof(s->pending_args)) {
        free(json);
        return SA_INVALID;
    }

    s->seq++;
    s->pending = 1;
    snprintf(s->pending_id, SA_ACT_ID_LEN, "act_%u_%08x", (unsigned) s->seq,
             (unsigned) rnd);
    s->pending_tool = a->tool;
    memcpy(s->pending_args, json, len + 1);
    s->pending_amount = (a->tool == SA_TOOL_PROCESS_REFUND) ? a->amount : 0;
    s->pending_created_ms = now_ms;

    n = strnlen(a->order_id, SA_ORDER_ID_LEN - 1);
    memcpy(s->last_order, a->order_id, n);
    s->last_order[n] = '\0';

    free(json);

    return SA_OK;
}


void
sa_act_clear_pending(sa_act_state_t *s)
{
    s->pending = 0;
    s->pending_tool = SA_TOOL_NONE;
    s->pending_amount = 0;
    s->pending_created_ms = 0;
    memset(s->pending_id, 0, sizeof(s->pending_id));
    memset(s->pending_args, 0, sizeof(s->pending_args));
}


int
sa_act_idempotency_key(const char *conversation_id,
    const sa_act_state_t *s, char *buf, size_t cap)
{
    int     n;
    size_t  i, len;

    if (buf != NULL && cap > 0) {
        buf[0] = '\0';
    }

    if (conversation_id == NULL || s == NULL || buf == NULL || !s->pending
        || !sa_act_field_ok(s->pending_id, SA_ACT_ID_LEN, 1)
        || s->pending_id[0] == '\0')
    {
        return SA_INVALID;
    }

    len = strlen(conversation_id);

    if (len == 0 || len > 64) {
        return SA_INVALID;
    }

    for (i = 0; i < len; i++) {
        if (!sa_act_id_char(conversation_id[i])) {
            return SA_INVALID;
        }
    }

    n = snprintf(buf, cap, "act-%s-%s", conversation_id, s->pending_id);

    if (n < 0 || (size_t) n >= cap) {
        buf[0] = '\0';
        return SA_INVALID;
    }

    return SA_OK;
}


static void
sa_act_put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char) v;
    p[1] = (unsigned char) (v >> 8);
    p[2] = (unsigned char) (v >> 16);
    p[3] = (unsigned char) (v >> 24);
}


static uint32_t
sa_act_get32(const unsigned char *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16
           | (uint32_t) p[3] << 24;
}


static void
sa_act_put64(unsigned char *p, uint64_t v)
{
    sa_act_put32(p, (uint32_t) v);
    sa_act_put32(p + 4, (uint32_t) (v >> 32));
}


static uint64_t
sa_act_get64(const unsigned char *p)
{
    return (uint64_t) sa_act_get32(p) | (uint64_t) sa_act_get32(p + 4) << 32;
}


/* 6. text */

int
sa_text_email(const char *text, size_t len, char *out, size_t cap)
{
    size_t                i, j, k, d, e, n, label;
    const unsigned char  *t = (const unsigned char *) text;

    if (out != NULL && cap > 0) {
        out[0] = '\0';
    }

    if (text == NULL || out == NULL || cap == 0) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (t[i] != '@') {
            continue;
        }

        /* the local part back from '@', without leading dots */
        j = i;
        while (j > 0 && sa_act_email_local(t[j - 1])) {
            j--;
        }

        while (j < i && t[j] == '.') {
            j++;
        }

        if (j == i || t[i - 1] == '.' || i - j > 64) {
            continue;
        }

        /* the domain, without a trailing dot or dash ("me@x.com.") */
        k = i + 1;
        while (k < len && (sa_act_alnum(t[k]) || t[k] == '.' || t[k] == '-'))
        {
            k++;
        }

        while (k > i + 1 && (t[k - 1] == '.' || t[k - 1] == '-')) {
            k--;
        }

        /* labels of 1..63, not starting or ending with '-'; at least two;
           the last of letters, 2 or more */
        label = 0;
        d = 0;
        e = i + 1;

        for (n = i + 1; n <= k; n++) {
            if (n < k && t[n] != '.') {
                continue;
            }

            if (n == e || n - e > 63 || t[e] == '-' || t[n - 1] == '-') {
                break;
            }

            label++;
            d = e;
            e = n + 1;
        }

        if (n <= k || label < 2 || k - d < 2) {
            continue;
        }

        for (n = d; n < k; n++) {
            if (!sa_act_alpha(t[n])) {
                break;
            }
        }

        if (n < k || k - j > 254 || k - j >= cap) {
            continue;
        }

        for (n = j; n < k; n++) {
            out[n - j] = (char) sa_act_lower(t[n]);
        }

        out[k - j] = '\0';

        return 1;
    }

    return 0;
}


static int
sa_act_email_local(unsigned char c)
{
    return sa_act_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+'
           || c == '-';
}


int
sa_text_amount(const char *text, size_t len, double *amount)
{
    size_t       i, p, end;
    double       v;
    const char  *t = text;

    if (text == NULL || amount == NULL) {
        return 0;
    }

    *amount = 0;

    for (i = 0; i < len; i++) {

        /* a prefix: "$", "US$", "USD" */
        p = 0;

        if (t[i] == '$') {
            p = i + 1;

        } else if ((i == 0 || !sa_act_alpha(t[i - 1]))
                   && sa_act_word_at(t, len, i, "us$"))
        {
            p = i + 3;

        } else if ((i == 0 || !sa_act_alpha(t[i - 1]))
                   && sa_act_word_at(t, len, i, "usd")
                   && (i + 3 >= len || !sa_act_alpha(t[i + 3])))
        {
            p = i + 3;
        }

        if (p != 0) {
            if (i > 0 && t[i - 1] == '-') {
                continue;
            }

            while (p < len && t[p] == ' ') {
                p++;
            }

            end = sa_act_number(t, len, p, &v);

            if (end != 0 && v > 0 && v < SA_AMOUNT_MAX) {
                *amount = v;
                return 1;
            }

            continue;
        }

        /* a number, then "$", "USD", "dollar(s)" */
        if (!sa_act_digit(t[i])
            || (i > 0 && (sa_act_alnum(t[i - 1]) || t[i - 1] == '.'
                          || t[i - 1] == ',' || t[i - 1] == '-'
                          || t[i - 1] == '#')))
        {
            continue;
        }

        end = sa_act_number(t, len, i, &v);

        if (end == 0) {
            continue;
        }

        p = end;
        while (p < len && t[p] == ' ') {
            p++;
        }

        if (p < len
            && (t[p] == '$'
                || ((sa_act_word_at(t, len, p, "usd")
                     || sa_act_word_at(t, len, p, "dollars")
                     || sa_act_word_at(t, len, p, "dollar"))))
            && v > 0 && v < SA_AMOUNT_MAX)
        {
            *amount = v;
            return 1;
        }

        /* the digits of this number are no other number's start */
        i = end - 1;
    }

    return 0;
}


/* "1,234.56", "12", "12.5" at p: the end, or 0 when it is not money (3
   decimals, "1,23" ...) */
static size_t
sa_act_number(const char *t, size_t len, size_t p, double *v)
{
    size_t  i, n, frac;
    double  x, scale;

    i = p;
    x = 0;

    for (n = 0; i < len && sa_act_digit(t[i]); i++, n++) {
        x = x * 10 + (t[i] - '0');
    }

    if (n == 0 || n > 12) {
        return 0;
    }

    /* thousands: only after 1..3 digits, always 3 digits a group */
    while (n <= 3 && i + 3 < len && t[i] == ',' && sa_act_digit(t[i + 1])
           && sa_act_digit(t[i + 2]) && sa_act_digit(t[i + 3])
           && (i + 4 >= len || !sa_act_digit(t[i + 4])))
    {
        x = x * 1000 + (t[i + 1] - '0') * 100 + (t[i + 2] - '0') * 10
            + (t[i + 3] - '0');
        i += 4;
    }

    if (i + 1 < len && t[i] == '.' && sa_act_digit(t[i + 1])) {
        scale = 0.1;
        i++;

        for (frac = 0; i < len && sa_act_digit(t[i]); i++, frac++) {
            x += (t[i] - '0') * scale;
            scale /= 10;
        }

        if (frac > 2) {
            return 0;
        }
    }

    /* "12,50" and "1.2.3" are not ours to guess */
    if (i < len
        && (sa_act_digit(t[i])
            || ((t[i] == ',' || t[i] == '.') && i + 1 < len
                && sa_act_digit(t[i + 1]))))
    {
        return 0;
    }

    *v = round(x * 100) / 100;

    return i;
}


/* the ASCII word w (lowercase) at p, case-insensitively, not followed by a
   letter */
static int
sa_act_word_at(const char *t, size_t len, size_t p, const char *w)
{
    size_t  i, n;

    n = strlen(w);

    if (p + n > len) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (sa_act_lower(t[p + i]) != w[i]) {
            return 0;
        }
    }

    return p + n == len || !sa_act_alpha(t[p + n]);
}


int
sa_text_address(const char *text, size_t len, sa_address_t *a)
{
    size_t        i, j, z, c1, c2, c3, s, e, s1, e1;
    sa_address_t  ad;
    const char   *t = text;

    if (text == NULL || a == NULL) {
        return 0;
    }

    for (i = 0; i + 7 < len; i++) {

        /* "IL 62704", "IL, 62704", "il 62704-1234" */
        if (!sa_act_alpha(t[i]) || !sa_act_alpha(t[i + 1])
            || (i > 0 && (sa_act_alnum(t[i - 1])
                          || (unsigned char) t[i - 1] >= 0x80))
            || !sa_act_state_code(t[i], t[i + 1]))
        {
            continue;
        }

        j = i + 2;

        if (j < len && t[j] == ',') {
            j++;
        }

        z = j;
        while (j < len && t[j] == ' ') {
            j++;
        }

        if (j == z && t[j - 1] != ',') {
            continue;
        }

        for (z = j; z < len && z < j + 6 && sa_act_digit(t[z]); z++) {
            /* void */
        }

        if (z - j != 5) {
            continue;
        }

        if (z + 4 < len && t[z] == '-' && sa_act_digit(t[z + 1])
            && sa_act_digit(t[z + 2]) && sa_act_digit(t[z + 3])
            && sa_act_digit(t[z + 4]))
        {
            z += 5;
        }

        if (z < len && (sa_act_alnum(t[z]) || t[z] == '-')) {
            continue;
        }

        /* ", City, " before the state */
        c1 = i;
        while (c1 > 0 && t[c1 - 1] == ' ') {
            c1--;
        }

        if (c1 == 0 || t[c1 - 1] != ',') {
            continue;
        }

        c1--;

        for (c2 = c1; c2 > 0 && t[c2 - 1] != ','; c2--) {
            /* void */
        }

        if (c2 == 0) {
            continue;
        }

        c2--;

        if (sa_act_part(t, c2 + 1, c1, &s, &e) != SA_OK) {
            continue;
        }

        for (z = s; z < e; z++) {
            if (sa_act_digit(t[z]) || t[z] == '\n' || t[z] == '@') {
                break;
            }
        }

        if (z < e) {
            continue;
        }

        memset(&ad, 0, sizeof(sa_address_t));

        if (e - s >= sizeof(ad.city)) {
            continue;
        }

        memcpy(ad.city, t + s, e - s);

        /* "Apt 4" before the city is address2, the street before it */
        for (c3 = c2; c3 > 0 && t[c3 - 1] != ','; c3--) {
            /* void */
        }

        s1 = 0;
        e1 = 0;

        if (sa_act_unit_part(t, c3, c2)) {
            if (c3 == 0 || sa_act_part(t, c3, c2, &s, &e) != SA_OK
                || e - s >= sizeof(ad.address2))
            {
                continue;
            }

            memcpy(ad.address2, t + s, e - s);

            c2 = c3 - 1;

            for (c3 = c2; c3 > 0 && t[c3 - 1] != ','; c3--) {
                /* void */
            }
        }

        /* the street from the first word that starts with a digit */
        for (z = c3; z < c2; z++) {
            if (sa_act_digit(t[z]) && (z == c3 || sa_act_space(t[z - 1]))) {
                break;
            }
        }

        if (z == c2 || sa_act_part(t, z, c2, &s1, &e1) != SA_OK
            || e1 - s1 >= sizeof(ad.address1))
        {
            continue;
        }

        memcpy(ad.address1, t + s1, e1 - s1);

        if (!sa_act_text_ok(ad.address1, strlen(ad.address1))
            || !sa_act_text_ok(ad.address2, strlen(ad.address2))
            || !sa_act_text_ok(ad.city, strlen(ad.city)))
        {
            continue;
        }

        ad.state[0] = (char) sa_act_upper(t[i]);
        ad.state[1] = (char) sa_act_upper(t[i + 1]);
        memcpy(ad.zip, t + j, 5);
        strcpy(ad.country, "USA");

        *a = ad;

        return 1;
    }

    return 0;
}


static int
sa_act_state_code(char a, char b)
{
    size_t  i;

    a = (char) sa_act_upper(a);
    b = (char) sa_act_upper(b);

    for (i = 0; i + 1 < sizeof(sa_us_states); i += 3) {
        if (sa_us_states[i] == a && sa_us_states[i + 1] == b) {
            return 1;
        }
    }

    return 0;
}


/* [from, to) trimmed of white space, not empty */
static int
sa_act_part(const char *t, size_t from, size_t to, size_t *start,
    size_t *end)
{
    while (from < to && sa_act_space(t[from])) {
        from++;
    }

    while (to > from && sa_act_space(t[to - 1])) {
        to--;
    }

    if (from == to) {
        return SA_INVALID;
    }

    *start = from;
    *end = to;

    return SA_OK;
}


/* the part [from, to) starts with "Apt", "Suite", "#" ... */
static int
sa_act_unit_part(const char *t, size_t from, size_t to)
{
    size_t  i, k, n;

    while (from < to && sa_act_space(t[from])) {
        from++;
    }

    for (i = 0; sa_unit_words[i] != NULL; i++) {
        n = strlen(sa_unit_words[i]);

        if (to - from < n) {
            continue;
        }

        for (k = 0; k < n; k++) {
            if (sa_act_lower(t[from + k]) != sa_unit_words[i][k]) {
                break;
            }
        }

        if (k < n) {
            continue;
        }

        /* "Apt 4", "Apt. 4", "#4", not "Aptos" */
        if (sa_unit_words[i][0] == '#' || from + n == to
            || !sa_act_alpha(t[from + n]))
        {
            return 1;
        }
    }

    return 0;
}


/* 6. confirmation */

int
sa_confirmation(const char *text, size_t len)
{
    char    words[SA_CONFIRM_MAX_WORDS][SA_CONFIRM_WORD];
    size_t  n;

    if (text == NULL || len == 0 || len > SA_CONFIRM_MAX_LEN) {
        return SA_CONFIRM_OTHER;
    }

    if (sa_confirm_words(text, len, words, &n) != SA_OK || n == 0) {
        return SA_CONFIRM_OTHER;
    }

    if (sa_confirm_match(words, n, sa_yes_phrases)) {
        return SA_CONFIRM_YES;
    }

    if (sa_confirm_match(words, n, sa_no_phrases)) {
        return SA_CONFIRM_NO;
    }

    return SA_CONFIRM_OTHER;
}


/* the words of text, lowercased, apostrophes kept ("that's"); SA_INVALID
   for anything that makes the message more than an answer */
static int
sa_confirm_words(const char *text, size_t len, char words[][SA_CONFIRM_WORD],
    size_t *n)
{
    char                  c;
    size_t                i, k, w, seq;
    uint32_t              cp;
    const unsigned char  *t = (const unsigned char *) text;

    *n = 0;
    w = 0;
    k = 0;

    for (i = 0; i <= len; i += seq) {
        seq = 1;
        c = 0;

        if (i == len) {
            c = ' ';

        } else if (t[i] < 0x80) {
            c = (char) t[i];

            if (c == '?' || sa_act_digit(c)) {
                return SA_INVALID;
            }

            /* "yes..." hesitates */
            if (c == '.' && i + 1 < len && t[i + 1] == '.') {
                return SA_INVALID;
            }

            if (sa_act_alpha(c)) {
                c = (char) sa_act_lower(c);

            } else if (c == '\'' && k > 0 && i + 1 < len
                       && sa_act_alpha(t[i + 1]))
            {
                /* void: an apostrophe inside a word */

            } else if (sa_act_space(c)
                       || (c != '\0' && strchr(".,!;:-()\"'*_~", c) != NULL))
            {
                c = ' ';

            } else {
                return SA_INVALID;
            }

        } else {
            seq = sa_utf8_seq_len(t + i, len - i);
            if (seq == 0) {
                return SA_INVALID;
            }

            cp = sa_act_decode(t + i, seq);

            if (cp == 0x2019 && k > 0 && i + seq < len
                && sa_act_alpha(t[i + seq]))
            {
                c = '\'';

            } else if (cp == 0xa0 || cp == 0x200b || cp == 0x2018
                       || cp == 0x2019 || cp == 0x201c || cp == 0x201d
                       || cp == 0xfe0f || cp == 0x200d
                       || (cp >= 0x1f3fb && cp <= 0x1f3ff))
            {
                c = ' ';

            } else if (cp == 0x2026 || cp == 0x1f44e || cp == 0x274c
                       || cp == 0x2716 || cp == 0x2717 || cp == 0x2718
                       || cp == 0x1f6ab || cp == 0x26d4 || cp == 0x1f6d1
                       || cp == 0x270b || cp == 0x1f914 || cp == 0x1f937
                       || cp == 0x1f615 || cp == 0x1f61f || cp == 0x1f644
                       || cp == 0x1f62c || cp == 0x1f610 || cp == 0x1f611)
            {
                /* an ellipsis, thumbs down, a cross, a stop sign, the
                   thinking face, a shrug ... */
                return SA_INVALID;

            } else if ((cp >= 0x1f000 && cp <= 0x1faff)
                       || (cp >= 0x2600 && cp <= 0x27bf)
                       || (cp >= 0x2b00 && cp <= 0x2bff))
            {
                c = ' ';

            } else {
                /* letters of other scripts ("sí"): not ours to read */
                return SA_INVALID;
            }
        }

        if (c != ' ') {
            if (k + 1 >= SA_CONFIRM_WORD) {
                return SA_INVALID;
            }

            words[w][k++] = c;
            continue;
        }

        if (k > 0) {
            words[w][k] = '\0';
            k = 0;

            if (++w == SA_CONFIRM_MAX_WORDS) {
                return SA_INVALID;
            }
        }
    }

    *n = w;

    return SA_OK;
}


/* the words are phrases and fillers, at least one phrase */
static int
sa_confirm_match(char words[][SA_CONFIRM_WORD], size_t n,
    const char **phrases)
{
    size_t         i, k, m;
    unsigned char  reach[SA_CONFIRM_MAX_WORDS + 1];

    /* reach[i]: words [0, i) segment; bit 1 without a phrase, bit 2 with
       one */
    memset(reach, 0, sizeof(reach));
    reach[0] = 1;

    for (i = 0; i < n; i++) {
        if (reach[i] == 0) {
            continue;
        }

        for (k = 0; phrases[k] != NULL; k++) {
            m = sa_confirm_phrase(words, n, i, phrases[k]);
            if (m) {
                reach[i + m] |= 2;
            }
        }

        for (k = 0; sa_filler_phrases[k] != NULL; k++) {
            m = sa_confirm_phrase(words, n, i, sa_filler_phrases[k]);
            if (m) {
                reach[i + m] |= reach[i];
            }
        }
    }

    return (reach[n] & 2) != 0;
}


/* the number of words of phrase matched at words[at], or 0 */
static size_t
sa_confirm_phrase(char words[][SA_CONFIRM_WORD], size_t n, size_t at,
    const char *phrase)
{
    size_t       m, len;
    const char  *p, *sp;

    m = 0;
    p = phrase;

    while (*p != '\0') {
        sp = strchr(p, ' ');
        len = sp ? (size_t) (sp - p) : strlen(p);

        if (at + m >= n || strlen(words[at + m]) != len
            || memcmp(words[at + m], p, len) != 0)
        {
            return 0;
        }

        m++;
        p += len + (sp ? 1 : 0);
    }

    return m;
}


/* 7. templates */

int
sa_templates_parse(const char *text, size_t len, sa_templates_t **t,
    char *err, size_t errlen)
{
    int              rc, in, para;
    char            *body, *nb, safe[48];
    size_t           i, n, line, p, q, sep, body_len, body_cap;
    const char      *name, *nl;
    sa_templates_t  *ts;

    *t = NULL;
    sa_act_err(err, errlen, "%s", "");

    if (text == NULL) {
        if (len > 0) {
            return SA_INVALID;
        }

        text = "";
    }

    ts = calloc(1, sizeof(sa_templates_t));
    if (ts == NULL) {
        return SA_ERROR;
    }

    body = NULL;
    body_len = 0;
    body_cap = 0;
    name = NULL;
    n = 0;
    in = 0;
    para = 0;
    rc = SA_OK;

    for (p = 0, line = 1; p <= len; p = q + 1, line++) {
        nl = (p < len) ? memchr(text + p, '\n', len - p) : NULL;
        q = nl ? (size_t) (nl - text) : len;
        i = q;

        if (i > p && text[i - 1] == '\r') {
            i--;
        }

        if (!sa_utf8_valid((const unsigned char *) text + p, q - p)
            || memchr(text + p, '\0', q - p) != NULL)
        {
            sa_act_err(err, errlen, "line %zu: not valid UTF-8 text", line);
            rc = SA_INVALID;
            break;
        }

        if (i > p && text[p] == '#') {
            continue;
        }

        if (i > p && text[p] == '[') {

            if (in) {
                rc = sa_templates_add(ts, name, n, body, body_len);
                body = NULL;

                if (rc != SA_OK) {
                    break;
                }
            }

            while (i > p && (text[i - 1] == ' ' || text[i - 1] == '\t')) {
                i--;
            }

            if (text[i - 1] != ']' || i - p < 2) {
                sa_act_err(err, errlen, "line %zu: a section line must be "
                           "\"[name]\"", line);
                rc = SA_INVALID;
                break;
            }

            name = text + p + 1;
            n = i - p - 2;

            if (n == 0) {
                sa_act_err(err, errlen, "line %zu: a section without a name",
                           line);
                rc = SA_INVALID;
                break;
            }

            for (i = 0; i < n; i++) {
                if (!((name[i] >= 'a' && name[i] <= 'z')
                      || sa_act_digit(name[i]) || name[i] == '_'))
                {
                    break;
                }
            }

            if (i < n || n > 64) {
                sa_act_err(err, errlen, "line %zu: a section name must be "
                           "1 to 64 of a-z 0-9 _", line);
                rc = SA_INVALID;
                break;
            }

            for (i = 0; i < ts->n; i++) {
                if (strlen(ts->sec[i].name) == n
                    && memcmp(ts->sec[i].name, name, n) == 0)
                {
                    break;
                }
            }

            if (i < ts->n) {
                memcpy(safe, name, n);
                safe[n] = '\0';
                sa_act_err(err, errlen, "line %zu: duplicate section "
                           "\"%s\"", line, safe);
                rc = SA_INVALID;
                break;
            }

            in = 1;
            para = 0;
            body_len = 0;
            body_cap = 0;
            continue;
        }

        if (!in) {
            while (p < i && sa_act_space(text[p])) {
                p++;
            }

            if (p < i) {
                sa_act_err(err, errlen, "line %zu: text outside a section",
                           line);
                rc = SA_INVALID;
                break;
            }

            continue;
        }

        if (sa_template_line(text + p, i - p, line, err, errlen) != SA_OK) {
            rc = SA_INVALID;
            break;
        }

        /* the lines of a paragraph are joined by a space, paragraphs by
           an empty line: the file is wrapped, the replies are not */

        while (p < i && (text[p] == ' ' || text[p] == '\t')) {
            p++;
        }

        while (i > p && (text[i - 1] == ' ' || text[i - 1] == '\t')) {
            i--;
        }

        if (p == i) {
            para = (body_len > 0);
            continue;
        }

        sep = (body_len == 0) ? 0 : (para ? 2 : 1);

        if (body_len + sep + (i - p) + 1 > body_cap) {
            body_cap = 2 * body_cap + sep + (i - p) + 64;
            nb = realloc(body, body_cap);

            if (nb == NULL) {
                rc = SA_ERROR;
                break;
            }

            body = nb;
        }

        memcpy(body + body_len, (sep == 2) ? "\n\n" : " ", sep);
        body_len += sep;
        memcpy(body + body_len, text + p, i - p);
        body_len += i - p;
        para = 0;
    }

    if (rc == SA_OK && in) {
        rc = sa_templates_add(ts, name, n, body, body_len);
        body = NULL;
    }

    free(body);

    if (rc != SA_OK) {
        sa_templates_free(ts);
        return rc;
    }

    *t = ts;

    return SA_OK;
}


/* placeholders of one body line: {key}, "{{", "}}" */
static int
sa_template_line(const char *p, size_t n, size_t line, char *err,
    size_t errlen)
{
    size_t  i, k;

    for (i = 0; i < n; i++) {

        if (p[i] == '}') {
            if (i + 1 < n && p[i + 1] == '}') {
                i++;
                continue;
            }

            sa_act_err(err, errlen, "line %zu: \"}\" without \"{\" (write "
                       "\"}}\" for a brace)", line);
            return SA_INVALID;
        }

        if (p[i] != '{') {
            continue;
        }

        if (i + 1 < n && p[i + 1] == '{') {
            i++;
            continue;
        }

        for (k = i + 1; k < n && p[k] != '}' && p[k] != '{'; k++) {
            /* void */
        }

        if (k == n || p[k] == '{') {
            sa_act_err(err, errlen, "line %zu: \"{\" without \"}\"", line);
            return SA_INVALID;
        }

        if (k == i + 1 || k - i - 1 > 64) {
            sa_act_err(err, errlen, "line %zu: a placeholder must be {key}, "
                       "key 1 to 64 of a-z 0-9 _", line);
            return SA_INVALID;
        }

        for (i++; i < k; i++) {
            if (!((p[i] >= 'a' && p[i] <= 'z') || sa_act_digit(p[i])
                  || p[i] == '_'))
            {
                sa_act_err(err, errlen, "line %zu: a placeholder must be "
                           "{key}, key 1 to 64 of a-z 0-9 _", line);
                return SA_INVALID;
            }
        }
    }

    return SA_OK;
}


static int
sa_templates_add(sa_templates_t *t, const char *name, size_t name_len,
    char *body, size_t body_len)
{
    size_t          cap;
    sa_template_t  *sec;

    if (body == NULL) {
        body = malloc(1);
        if (body == NULL) {
            return SA_ERROR;
        }

        body_len = 0;
    }

    body[body_len] = '\0';

    if (t->n == t->cap) {
        cap = t->cap ? 2 * t->cap : 16;
        sec = realloc(t->sec, cap * sizeof(sa_template_t));

        if (sec == NULL) {
            free(body);
            return SA_ERROR;
        }

        t->sec = sec;
        t->cap = cap;
    }

    sec = &t->sec[t->n];

    sec->name = malloc(name_len + 1);
    if (sec->name == NULL) {
        free(body);
        return SA_ERROR;
    }

    memcpy(sec->name, name, name_len);
    sec->name[name_len] = '\0';
    sec->text = body;
    sec->len = body_len;
    t->n++;

    return SA_OK;
}


void
sa_templates_free(sa_templates_t *t)
{
    size_t  i;

    if (t == NULL) {
        return;
    }

    for (i = 0; i < t->n; i++) {
        free(t->sec[i].name);
        free(t->sec[i].text);
    }

    free(t->sec);
    free(t);
}


int
sa_template_has(const sa_templates_t *t, const char *name)
{
    size_t  i;

    if (t == NULL || name == NULL) {
        return 0;
    }

    for (i = 0; i < t->n; i++) {
        if (strcmp(t->sec[i].name, name) == 0) {
            return 1;
        }
    }

    return 0;
}


int
sa_template_render(const sa_templates_t *t, const char *name,
    const sa_kv_t *vars, size_t n, char **out, size_t *len)
{
    int                   pass;
    char                 *buf;
    size_t                i, k, o, vl;
    const char           *v;
    const sa_template_t  *sec;

    *out = NULL;

    if (len) {
        *len = 0;
    }

    if (t == NULL || name == NULL || (vars == NULL && n > 0)) {
        return SA_INVALID;
    }

    sec = NULL;

    for (i = 0; i < t->n; i++) {
        if (strcmp(t->sec[i].name, name) == 0) {
            sec = &t->sec[i];
            break;
        }
    }

    if (sec == NULL) {
        return SA_NOT_FOUND;
    }

    /* pass 0 measures, pass 1 writes; the text was checked by parse */
    buf = NULL;
    o = 0;

    for (pass = 0; pass < 2; pass++) {
        o = 0;

        for (i = 0; i < sec->len; i++) {

            if ((sec->text[i] == '{' || sec->text[i] == '}')
                && i + 1 < sec->len && sec->text[i + 1] == sec->text[i])
            {
                if (pass) {
                    buf[o] = sec->text[i];
                }

                o++;
                i++;
                continue;
            }

            if (sec->text[i] != '{') {
                if (pass) {
                    buf[o] = sec->text[i];
                }

                o++;
                continue;
            }

            for (k = i + 1; k < sec->len && sec->text[k] != '}'; k++) {
                /* void */
            }

            v = sa_template_var(vars, n, sec->text + i + 1, k - i - 1);
            vl = strlen(v);

            if (pass) {
                memcpy(buf + o, v, vl);
            }

            o += vl;
            i = k;
        }

        if (pass == 0) {
            buf = malloc(o + 1);
            if (buf == NULL) {
                return SA_ERROR;
            }
        }
    }

    buf[o] = '\0';
    *out = buf;

    if (len) {
        *len = o;
    }

    return SA_OK;
}


static const char *
sa_template_var(const sa_kv_t *vars, size_t n, const char *key, size_t len)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (vars[i].key != NULL && strlen(vars[i].key) == len
            && memcmp(vars[i].key, key, len) == 0)
        {
            return vars[i].value ? vars[i].value : "";
        }
    }

    return "";
}


/* helpers */

/* the builder's document, malloc()ed; the builder is freed */
static char *
sa_act_take(sa_jw_t *w, size_t *len)
{
    char        *p;
    size_t       n;
    const char  *b;

    b = sa_jw_buf(w, &n);

    p = malloc(n + 1);
    if (p != NULL) {
        memcpy(p, b, n + 1);

        if (len) {
            *len = n;
        }
    }

    sa_jw_free(w);

    return p;
}


static void
sa_act_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list  ap;

    if (err == NULL || errlen == 0) {
        return;
    }

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}


/* C0, DEL, C1, the line and paragraph separators, the bidi overrides and
   isolates: nothing a name, an address or a reason needs */
static int
sa_act_cp_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028
           || cp == 0x2029 || (cp >= 0x202a && cp <= 0x202e)
           || (cp >= 0x2066 && cp <= 0x2069);
}


/* the code point of a valid sequence of n bytes */
static uint32_t
sa_act_decode(const unsigned char *p, size_t n)
{
    switch (n) {
    case 1:
        return p[0];
    case 2:
        return (uint32_t) (p[0] & 0x1f) << 6 | (p[1] & 0x3f);
    case 3:
        return (uint32_t) (p[0] & 0x0f) << 12 | (uint32_t) (p[1] & 0x3f) << 6
               | (p[2] & 0x3f);
    default:
        return (uint32_t) (p[0] & 0x07) << 18
               | (uint32_t) (p[1] & 0x3f) << 12
               | (uint32_t) (p[2] & 0x3f) << 6 | (p[3] & 0x3f);
    }
}


/* 1: valid UTF-8 without control characters (NUL included) */
static int
sa_act_text_ok(const char *s, size_t len)
{
    size_t                i, n;
    const unsigned char  *p = (const unsigned char *) s;

    for (i = 0; i < len; i += n) {
        n = sa_utf8_seq_len(p + i, len - i);

        if (n == 0 || sa_act_cp_control(sa_act_decode(p + i, n))) {
            return 0;
        }
    }

    return 1;
}


/* a copy of in: invalid bytes become '?', control characters spaces; cut
   on a character boundary to cap - 1 bytes; NUL-terminated */
static size_t
sa_act_clean(const char *in, size_t len, char *out, size_t cap)
{
    size_t                i, n, o;
    const unsigned char  *p = (const unsigned char *) in;

    if (cap == 0) {
        return 0;
    }

    o = 0;

    for (i = 0; i < len; i += n) {
        n = sa_utf8_seq_len(p + i, len - i);

        if (n == 0) {
            n = 1;

            if (o + 1 >= cap) {
                break;
            }

            out[o++] = '?';
            continue;
        }

        if (sa_act_cp_control(sa_act_decode(p + i, n))) {
            if (o + 1 >= cap) {
                break;
            }

            out[o++] = ' ';
            continue;
        }

        if (o + n >= cap) {
            break;
        }

        memcpy(out + o, p + i, n);
        o += n;
    }

    out[o] = '\0';

    return o;
}


/*
 * The raw JSON text, before yajl: 0 fine, 1 a '/' outside strings (yajl
 * would take a comment), 2 a "\u0000" in a string (yajl would cut the
 * string there and the rest would go unchecked).
 */
static int
sa_act_raw_ok(const char *p, size_t len)
{
    int     in;
    size_t  i;

    in = 0;

    for (i = 0; i < len; i++) {

        if (!in) {
            if (p[i] == '"') {
                in = 1;

            } else if (p[i] == '/') {
                return 1;
            }

            continue;
        }

        if (p[i] == '"') {
            in = 0;

        } else if (p[i] == '\\' && i + 1 < len) {
            if (p[i + 1] == 'u' && i + 5 < len && p[i + 2] == '0'
                && p[i + 3] == '0' && p[i + 4] == '0' && p[i + 5] == '0')
            {
                return 2;
            }

            i++;
        }
    }

    return 0;
}


/* an untrusted key for a message: at most 32 bytes of [A-Za-z0-9_], '?'
   for the others */
static void
sa_act_key_safe(const char *key, char *out, size_t cap)
{
    size_t  i;

    for (i = 0; key[i] != '\0' && i < 32 && i + 4 < cap; i++) {
        out[i] = (sa_act_alnum(key[i]) || key[i] == '_') ? key[i] : '?';
    }

    if (key[i] != '\0' && i + 3 < cap) {
        memcpy(out + i, "...", 3);
        i += 3;
    }

    out[i] = '\0';
}


/* the value of key in the object, NULL when absent */
static yajl_val
sa_act_member(yajl_val obj, const char *key)
{
    size_t  i;

    for (i = 0; i < obj->u.object.len; i++) {
        if (strcmp(obj->u.object.keys[i], key) == 0) {
            return obj->u.object.values[i];
        }
    }

    return NULL;
}


/* the string value of key, NULL when absent or not a string */
static const char *
sa_act_get(yajl_val obj, const char *key)
{
    return YAJL_GET_STRING(sa_act_member(obj, key));
}


static int
sa_act_get_str(yajl_val obj, const char *key, const char *field,
    unsigned flags, char *out, size_t cap, char *err, size_t errlen)
{
    size_t       n, s;
    yajl_val     v;
    const char  *p;

    out[0] = '\0';
    v = sa_act_member(obj, key);

    if (v == NULL || YAJL_IS_NULL(v)) {
        if (flags & SA_STR_OPTIONAL) {
            return SA_OK;
        }

        sa_act_err(err, errlen, "%s: %s", field,
                   v ? "must be a string" : "required");
        return SA_INVALID;
    }

    if (!YAJL_IS_STRING(v)) {
        sa_act_err(err, errlen, "%s: must be a string%s", field,
                   (flags & SA_STR_OPTIONAL) ? " or null" : "");
        return SA_INVALID;
    }

    p = YAJL_GET_STRING(v);
    n = strlen(p);

    if (flags & SA_STR_CLEAN) {
        /* the API's text is shown, never acted on: repaired, not refused */
        if (!(flags & SA_STR_CUT) && n >= cap) {
            sa_act_err(err, errlen, "%s: at most %zu bytes", field, cap - 1);
            return SA_INVALID;
        }

        n = sa_act_clean(p, n, out, cap);
        p = out;

    } else if (!sa_act_text_ok(p, n)) {
        sa_act_err(err, errlen, "%s: must be valid UTF-8 without control "
                   "characters", field);
        return SA_INVALID;
    }

    s = 0;

    if (flags & SA_STR_TRIM) {
        while (s < n && p[s] == ' ') {
            s++;
        }

        while (n > s && p[n - 1] == ' ') {
            n--;
        }
    }

    if (n == s && !(flags & SA_STR_EMPTY_OK)) {
        out[0] = '\0';
        sa_act_err(err, errlen, "%s: must not be empty", field);
        return SA_INVALID;
    }

    if (n - s >= cap) {
        if (!(flags & SA_STR_CUT)) {
            sa_act_err(err, errlen, "%s: at most %zu bytes", field, cap - 1);
            return SA_INVALID;
        }

        n = s + sa_act_cut(p + s, n - s, cap);
    }

    memmove(out, p + s, n - s);
    out[n - s] = '\0';

    return SA_OK;
}


/* the longest prefix of s under cap bytes that ends on a character */
static size_t
sa_act_cut(const char *s, size_t len, size_t cap)
{
    if (len < cap) {
        return len;
    }

    return sa_utf8_complete_prefix((const unsigned char *) s, cap - 1);
}


static int
sa_act_get_money(yajl_val obj, const char *key, const char *field,
    double *out, char *err, size_t errlen)
{
    double    x;
    yajl_val  v;

    v = sa_act_member(obj, key);

    if (v == NULL) {
        sa_act_err(err, errlen, "%s: missing", field);
        return SA_INVALID;
    }

    x = YAJL_IS_DOUBLE(v) ? YAJL_GET_DOUBLE(v) : NAN;

    if (!isfinite(x)) {
        sa_act_err(err, errlen, "%s: must be a number", field);
        return SA_INVALID;
    }

    if (x < 0) {
        sa_act_err(err, errlen, "%s: must not be negative", field);
        return SA_INVALID;
    }

    *out = x;

    return SA_OK;
}
