
/*
 * Copyright (C) ngx_support_agent authors
 *
 * JSON for the support agent: parsing of the customer's chat request and a
 * small builder for the JSON we send (to the LLM and to browsers).
 */


#ifndef _SA_JSON_H_INCLUDED_
#define _SA_JSON_H_INCLUDED_


#include <stddef.h>

#include "sa_types.h"


/* deeper JSON is refused before yajl builds a tree of it: yajl frees
   trees recursively, and a hostile body must not exhaust the stack */
#define SA_JSON_MAX_DEPTH  64


typedef enum {
    SA_REQ_OK = 0,
    SA_REQ_MALFORMED,          /* not JSON */
    SA_REQ_NOT_OBJECT,         /* JSON but not an object */
    SA_REQ_BAD_UTF8,           /* body is not valid UTF-8 */
    SA_REQ_NO_MESSAGE,         /* "message" missing */
    SA_REQ_BAD_MESSAGE,        /* "message" not a string (or has NULs) */
    SA_REQ_EMPTY_MESSAGE,      /* "message" empty or only white space */
    SA_REQ_MESSAGE_TOO_LONG,   /* longer than max_message bytes */
    SA_REQ_BAD_CONVERSATION_ID,/* not a string of 8..64 [A-Za-z0-9_-] */
    SA_REQ_NO_MEMORY           /* out of memory: a server error, not the
                                  client's */
} sa_req_status_e;


typedef struct {
    char    *message;            /* malloc()ed, NUL-terminated */
    size_t   message_len;
    char    *conversation_id;    /* NULL when absent or JSON null */
    size_t   conversation_id_len;
    void    *root;               /* the parsed yajl_val tree, kept for fields
                                    later layers read (filters, metadata) */
} sa_chat_request_t;


/* body need not be NUL-terminated. err gets a short customer-safe English
   description, e.g. "\"message\" must be a non-empty string" or
   "request body is not valid JSON: <yajl's short reason>" ("" on SA_REQ_OK).
   A leading UTF-8 BOM is skipped.  "message" is UTF-8 (unpaired surrogate
   escapes become '?') and never contains NUL bytes (a "\u0000" in it is
   SA_REQ_BAD_MESSAGE).  max_message 0: no limit.  Whatever it returns,
   sa_chat_request_free() must be called afterwards. */
sa_req_status_e sa_chat_request_parse(const char *body, size_t len,
    size_t max_message, sa_chat_request_t *req, char *err, size_t errlen);
void sa_chat_request_free(sa_chat_request_t *req);


/* a yajl_val tree of [p, p + len) (need not be NUL-terminated), or NULL
   with a short reason in err (not valid JSON, nested deeper than
   SA_JSON_MAX_DEPTH, out of memory); free it with yajl_tree_free() */
void *sa_json_tree_parse(const char *p, size_t len, char *err,
    size_t errlen);

/* the deepest nesting of arrays and objects in the JSON text (strings are
   skipped properly; the text need not be valid) */
size_t sa_json_nesting(const char *p, size_t len);


/* JSON generation with UTF-8 validation on: a tiny builder so callers
   don't repeat yajl boilerplate.  Output is compact; strings are escaped
   per RFC 8259 (quote, backslash, control characters; everything else,
   "</" included, is left as it is).  A call that fails leaves the builder
   as it was before it, so a caller may go on (e.g. with a substitute). */
typedef struct sa_jw_s  sa_jw_t;

sa_jw_t *sa_jw_new(void);
void sa_jw_free(sa_jw_t *w);
int sa_jw_open(sa_jw_t *w);                 /* { */
int sa_jw_close(sa_jw_t *w);                /* } */
int sa_jw_array_open(sa_jw_t *w);
int sa_jw_array_close(sa_jw_t *w);
int sa_jw_key(sa_jw_t *w, const char *key); /* NUL-terminated key */
int sa_jw_str(sa_jw_t *w, const char *s, size_t len);
int sa_jw_kstr(sa_jw_t *w, const char *key, const char *s, size_t len);
int sa_jw_kint(sa_jw_t *w, const char *key, long long v);
int sa_jw_kdouble(sa_jw_t *w, const char *key, double v);
int sa_jw_kbool(sa_jw_t *w, const char *key, int v);
int sa_jw_knull(sa_jw_t *w, const char *key);
int sa_jw_int(sa_jw_t *w, long long v);
int sa_jw_double(sa_jw_t *w, double v);     /* NaN, infinities: SA_INVALID */
int sa_jw_bool(sa_jw_t *w, int v);
int sa_jw_null(sa_jw_t *w);
int sa_jw_raw(sa_jw_t *w, const char *json, size_t len); /* insert already
                                                            valid JSON value */
/* the members of the JSON object json are added to the object being built
   (keys are not checked against those already there) */
int sa_jw_raw_members(sa_jw_t *w, const char *json, size_t len);
/* a yajl_val tree (yajl_tree_parse()'s result), re-emitted */
int sa_jw_tree(sa_jw_t *w, const void *tree);
/* all return SA_OK, or SA_INVALID (invalid UTF-8 / misuse) / SA_ERROR */

/* NUL-terminated too; valid until the next call */
const char *sa_jw_buf(sa_jw_t *w, size_t *len);
/* 1 when exactly one whole value was written */
int sa_jw_complete(const sa_jw_t *w);
/* empties the builder for the next document, keeping its memory */
void sa_jw_reset(sa_jw_t *w);


#endif /* _SA_JSON_H_INCLUDED_ */
