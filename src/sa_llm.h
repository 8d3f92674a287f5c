
/*
 * Copyright (C) ngx_support_agent authors
 *
 * OpenAI-compatible Chat Completions: request building, parsing of the
 * streamed (SSE) and whole responses, error bodies and retry hints.
 */


#ifndef _SA_LLM_H_INCLUDED_
#define _SA_LLM_H_INCLUDED_


#include <stddef.h>

#include "sa_types.h"
#include "sa_sse.h"


/* a retry hint longer than this is cut to it */
#define SA_LLM_RETRY_MAX_MS  86400000L


typedef struct {
    const char  *model;
    const char  *system_prompt;      /* may be NULL */
    size_t       system_prompt_len;
    long         max_tokens;         /* <= 0: not sent */
    const char  *max_tokens_field;   /* "max_tokens" or
                                        "max_completion_tokens" (NULL:
                                        "max_tokens") */
    double       temperature;        /* < 0: not sent */
    int          stream;             /* 1: "stream": true and
                                        "stream_options": {"include_usage":
                                        true}; 0: neither key is sent */
} sa_llm_params_t;


/* builds the request body: model, messages = system prompt (if any) then
   msgs in order (role + content; assistant messages with tool_calls_json
   carry "tool_calls" (raw JSON inserted) and "content": null when content
   is empty; tool messages carry "tool_call_id"), and the parameters.
   *out is malloc()ed, NUL-terminated. SA_OK, SA_INVALID (invalid UTF-8 in
   a message; also: no model, no messages at all, a tool message without
   tool_call_id, tool_calls_json that is not a JSON array), SA_ERROR (no
   memory) */
int sa_llm_request_build(const sa_llm_params_t *p, const sa_msg_t *msgs,
    size_t n, char **out, size_t *out_len);

/* the same, with the members of the JSON object extra_json (e.g.
   {"tools":[...],"tool_choice":"auto"}) added to the request; a member
   that the builder sends itself (model, messages, stream, stream_options,
   temperature, max_tokens, max_completion_tokens) is SA_INVALID */
int sa_llm_request_build_ex(const sa_llm_params_t *p, const sa_msg_t *msgs,
    size_t n, const char *extra_json, size_t extra_len, char **out,
    size_t *out_len);


typedef struct {
    int      index;       /* as the provider numbered it (or inferred);
                             unique within one response */
    char    *id;          /* malloc()ed or NULL */
    char    *name;        /* malloc()ed or NULL */
    char    *arguments;   /* concatenated fragments, malloc()ed, never
                             NULL ("" when none came); not checked to be
                             JSON */
    size_t   arguments_len;

    /* private */
    size_t   arguments_cap;
    int      wire_index;  /* the index sent, -1: none */
} sa_llm_tool_call_t;


/* new content text; text is valid UTF-8, not NUL-terminated, valid only
   during the call.  Non-zero stops the parsing: the feed returns it */
typedef int (*sa_llm_delta_pt)(void *data, const char *text, size_t len);


typedef struct {
    /* results, accumulated over the whole response */
    char                *content;        /* all text so far, NUL-terminated,
                                            valid UTF-8; "" (not NULL)
                                            before any */
    size_t               content_len;
    sa_llm_tool_call_t  *tool_calls;     /* in order of first appearance */
    size_t               n_tool_calls;
    char                 finish_reason[32];   /* "" until seen */
    long                 prompt_tokens;       /* -1 = unknown */
    long                 completion_tokens;   /* -1 = unknown */
    int                  done;           /* "data: [DONE]" seen (streams),
                                            or a full response parsed */
    int                  failed;         /* error payload or invalid data */
    char                 error[256];     /* short reason, for logs (never
                                            shown to customers) */

    /* private */
    sa_sse_parser_t      sse;
    sa_llm_delta_pt      on_delta;
    void                *data;
    size_t               content_cap;
    size_t               tool_calls_cap;
    size_t               last_call;      /* 1 + the call last added to;
                                            0: none */
    int                  rc;             /* once not SA_OK: stopped */
} sa_llm_stream_t;


/* max_event: limit on one SSE event's size (SA_INVALID beyond it; 0: no
   limit).  on_delta is called with each new piece of content text as it
   arrives (may be NULL).  A "refusal" text is treated as content. */
void sa_llm_stream_init(sa_llm_stream_t *s, size_t max_event,
    sa_llm_delta_pt on_delta, void *data);

/* raw response body bytes of a streaming response, in any split. Returns
   SA_OK; SA_INVALID (a chunk that is not JSON, not an object, framing
   error — failed=1, error set); SA_ERROR (the provider sent an error
   payload {"error":{...}} or `event: error` or finish_reason "error" — failed
   = 1, error = its message; also out of memory); or the non-zero value
   on_delta returned.  After a non-SA_OK return, later feeds return the
   same value and parse nothing.  Data after [DONE] is ignored. */
int sa_llm_stream_feed(sa_llm_stream_t *s, const char *buf, size_t len);

/* a whole non-streaming chat.completion body (some servers answer
   stream:true requests with one): fills the same fields, calls on_delta
   once with the whole content, sets done. Same return codes.  A body that
   turns out to be an SSE stream ("data:" first) is fed to
   sa_llm_stream_feed() instead. */
int sa_llm_response_parse(sa_llm_stream_t *s, const char *body, size_t len);

/* 1 if the stream ended properly: done and not failed. A stream that ends
   without [DONE] is truncated even if a finish_reason was seen. */
int sa_llm_stream_complete(const sa_llm_stream_t *s);

/* frees everything; sa_llm_stream_init() may follow */
void sa_llm_stream_free(sa_llm_stream_t *s);


/* reads an error body of any shape (OpenAI envelope, vLLM old/new,
   OpenRouter, FastAPI "detail", plain text/HTML) into a short one-line
   message (control characters replaced, truncated with "...") and a code
   ("" if none; numeric codes printed as digits).  Never fails; falls back
   to "HTTP error body not JSON" (followed by ": " and the text, or an HTML
   page's title, when there is one).  Both outputs NUL-terminated. */
void sa_llm_error_parse(const char *body, size_t len, char *msg,
    size_t msglen, char *code, size_t codelen);

/* retry delay hint in milliseconds from the "retry-after-ms" and
   "retry-after" header values (either may be NULL; values are not
   NUL-terminated, lengths given). retry-after may be seconds (int or float)
   or an HTTP-date (relative to now_sec; a date in the past gives 0).
   retry-after-ms wins when usable.  Capped at SA_LLM_RETRY_MAX_MS.
   Returns -1 when no usable hint. */
long sa_llm_retry_after_ms(const char *retry_after_ms, size_t ms_len,
    const char *retry_after, size_t ra_len, long now_sec);


#endif /* _SA_LLM_H_INCLUDED_ */
