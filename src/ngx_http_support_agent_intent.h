
/*
 * Copyright (C) ngx_support_agent authors
 *
 * The intent router as the module sees it: a model file built by
 * "kb-build intents" (model, operator rules and routes in one file),
 * opened lazily in each worker and swapped when a new one is published;
 * classification for a turn, the classify endpoint, and the
 * $support_agent_intent and $support_agent_route variables.
 */


#ifndef _NGX_HTTP_SUPPORT_AGENT_INTENT_H_INCLUDED_
#define _NGX_HTTP_SUPPORT_AGENT_INTENT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "sa_intent.h"


/* one model file, shared by the locations that name it */
typedef struct {
    ngx_str_t                  path;        /* NUL-terminated */
    sa_intent_t               *model;       /* this process's handle */
    time_t                     checked;     /* last look, seconds */
} ngx_http_sa_intents_t;


/* a message's route, copied into the request's pool */
typedef struct {
    ngx_str_t                  intent;
    ngx_str_t                  route;
    ngx_str_t                  rule;        /* empty: the model decided */
    float                      confidence;
    sa_route_e                 kind;
    ngx_uint_t                 ntop;
    ngx_str_t                  top[SA_INTENT_TOP];
    float                      top_p[SA_INTENT_TOP];
} ngx_http_sa_routed_t;


ngx_http_sa_intents_t *ngx_http_sa_intents_add(ngx_conf_t *cf,
    ngx_str_t *path);

/* NGX_OK with *out filled, NGX_DECLINED when the model cannot be read
   (logged), NGX_ERROR; sets the variables */
ngx_int_t ngx_http_sa_intent_route(ngx_http_request_t *r,
    ngx_http_sa_intents_t *intents, double threshold, const char *text,
    size_t len, ngx_http_sa_routed_t *out);

ngx_int_t ngx_http_sa_intent_add_variables(ngx_conf_t *cf);
ngx_int_t ngx_http_sa_classify_handler(ngx_http_request_t *r);
void ngx_http_sa_intent_exit_process(ngx_cycle_t *cycle);


#endif /* _NGX_HTTP_SUPPORT_AGENT_INTENT_H_INCLUDED_ */
