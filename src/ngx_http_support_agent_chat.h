
/*
 * Copyright (C) ngx_support_agent authors
 *
 * The chat endpoint: one POST is one turn of a conversation.
 */


#ifndef _NGX_HTTP_SUPPORT_AGENT_CHAT_H_INCLUDED_
#define _NGX_HTTP_SUPPORT_AGENT_CHAT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


ngx_int_t ngx_http_sa_chat_handler(ngx_http_request_t *r);
void ngx_http_sa_chat_init_process(void);
void ngx_http_sa_chat_exit_process(void);


#endif /* _NGX_HTTP_SUPPORT_AGENT_CHAT_H_INCLUDED_ */
