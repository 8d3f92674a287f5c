
/*
 * Copyright (C) ngx_support_agent authors
 *
 * One call to an OpenAI-compatible Chat Completions endpoint on behalf of a
 * request: streaming, retries with backoff that honour retry-after, idle
 * timeout.  The total time limit belongs to the caller's turn deadline.
 */


#ifndef _NGX_HTTP_SUPPORT_AGENT_LLM_H_INCLUDED_
#define _NGX_HTTP_SUPPORT_AGENT_LLM_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_support_agent_module.h"
#include "ngx_http_support_agent_curl.h"
#include "sa_llm.h"


typedef struct ngx_http_sa_llm_s  ngx_http_sa_llm_t;

/* new reply text; called from inside libcurl: only buffer it */
typedef void (*ngx_http_sa_llm_text_pt)(ngx_http_sa_llm_t *llm,
    const char *text, size_t len);

/* buffered text may be sent now (event context); NGX_ERROR when the
   client is gone: the call then ends with on_done(NGX_ABORT) */
typedef ngx_int_t (*ngx_http_sa_llm_flush_pt)(ngx_http_sa_llm_t *llm);

/* the call is over: NGX_OK with llm->stream complete, or NGX_ERROR with
   llm->failure set; event context, the caller may finalize */
typedef void (*ngx_http_sa_llm_done_pt)(ngx_http_sa_llm_t *llm,
    ngx_int_t rc);


struct ngx_http_sa_llm_s {
    ngx_http_request_t        *request;
    ngx_http_sa_loc_conf_t    *conf;
    void                      *data;

    ngx_http_sa_llm_text_pt    on_text;
    ngx_http_sa_llm_flush_pt   on_flush;
    ngx_http_sa_llm_done_pt    on_done;

    /* no retry once the deadline is near */
    ngx_msec_t                 deadline;

    /* the system prompt for this call (with retrieved sources), or empty
       for the location's */
    ngx_str_t                  system_prompt;

    /* members added to the request ({"tools":[...],"tool_choice":...}),
       or empty */
    ngx_str_t                  extra_json;

    /* results */
    sa_llm_stream_t            stream;
    ngx_uint_t                 attempts;
    long                       status;
    char                       failure[320];   /* for logs only */

    /* private */
    ngx_http_sa_transfer_t     transfer;
    struct curl_slist         *headers;
    char                      *body;
    size_t                     body_len;
    char                      *url;
    u_char                    *raw;            /* non-SSE response body */
    size_t                     raw_len;
    size_t                     raw_cap;
    char                       retry_after[32];
    char                       retry_after_ms[32];
    char                       should_retry[8];
    char                       errbuf[CURL_ERROR_SIZE];
    ngx_event_t                idle;
    ngx_event_t                retry;

    unsigned                   stream_inited:1;
    unsigned                   is_sse:1;
    unsigned                   checked:1;      /* status/type looked at */
    unsigned                   delivered:1;    /* text reached the client */
    unsigned                   idle_expired:1;
    unsigned                   running:1;
};


ngx_int_t ngx_http_sa_llm_start(ngx_http_sa_llm_t *llm,
    const sa_msg_t *msgs, size_t n);
void ngx_http_sa_llm_cancel(ngx_http_sa_llm_t *llm);


#endif /* _NGX_HTTP_SUPPORT_AGENT_LLM_H_INCLUDED_ */
