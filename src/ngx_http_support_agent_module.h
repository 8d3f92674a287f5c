
/*
 * Copyright (C) ngx_support_agent authors
 *
 * Shared types of the support agent module: configuration and the state of
 * one chat turn.
 */


#ifndef _NGX_HTTP_SUPPORT_AGENT_MODULE_H_INCLUDED_
#define _NGX_HTTP_SUPPORT_AGENT_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_support_agent_kb.h"
#include "ngx_http_support_agent_intent.h"
#include "ngx_http_support_agent_escalate.h"
#include "ngx_http_support_agent_act.h"


#define NGX_HTTP_SA_MAX_TOKENS_FIELD      0
#define NGX_HTTP_SA_MAX_COMPLETION_TOKENS 1


typedef struct {
    ngx_str_t                  store_path;
    size_t                     store_max_size;
    ngx_flag_t                 store_sync;
    ngx_uint_t                 llm_keepalive;  /* idle LLM connections kept */
    ngx_array_t                kbs;            /* ngx_http_sa_kb_t * */
    ngx_array_t                intents;     /* ngx_http_sa_intents_t * */
    ngx_array_t                helpdesks;   /* ngx_http_sa_service_t * */
    ngx_uint_t                 used;        /* a location has support_agent */
} ngx_http_sa_main_conf_t;


typedef struct {
    ngx_flag_t                 enable;
    ngx_flag_t                 search;      /* support_agent_search */

    ngx_str_t                  llm_url;     /* full chat completions URL */
    ngx_str_t                  llm_model;
    ngx_str_t                  llm_api_key; /* never logged */
    ngx_msec_t                 llm_connect_timeout;
    ngx_msec_t                 llm_idle_timeout;
    ngx_msec_t                 llm_timeout;
    ngx_uint_t                 llm_retries;
    ngx_msec_t                 llm_retry_backoff;
    ngx_int_t                  llm_max_tokens;
    ngx_uint_t                 llm_max_tokens_field;
    double                     llm_temperature;  /* < 0: not sent */

    ngx_str_t                  system_prompt;
    ngx_str_t                  fallback_reply;

    ngx_http_sa_kb_conf_t      kb;

    /* the intent router */
    ngx_http_sa_intents_t     *intents;
    double                     intent_threshold;   /* < 0: the model's */
    ngx_flag_t                 classify;    /* support_agent_classify */
    ngx_str_t                  out_of_scope_reply;
    ngx_str_t                  kb_prompt;   /* how to use the sources */
    ngx_str_t                  kb_no_answer;

    /* escalation and the handoff to a human */
    ngx_http_sa_escalate_conf_t  escalate;

    /* actions against the company's order API */
    ngx_http_sa_act_conf_t     act;

    /* binds the conversation to a value from nginx (a session) */
    ngx_http_complex_value_t  *conversation_key;

    ngx_uint_t                 history;
    size_t                     max_body;
    size_t                     max_message;
    ngx_msec_t                 heartbeat;
} ngx_http_sa_loc_conf_t;


extern ngx_module_t  ngx_http_support_agent_module;


#endif /* _NGX_HTTP_SUPPORT_AGENT_MODULE_H_INCLUDED_ */
