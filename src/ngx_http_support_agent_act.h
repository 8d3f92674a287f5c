
/*
 * Copyright (C) ngx_support_agent authors
 *
 * Actions on the customer's behalf (look up an order, refund, change the
 * shipping address, cancel) against the company's order API.  The rules
 * are enforced here, whatever the LLM or the customer's text says:
 *
 *   - identity: no order is shown or changed before the conversation is
 *     verified (the e-mail address the customer gives matches the order's,
 *     or nginx vouches for the customer: support_agent_identity), and only
 *     the verified customer's orders;
 *   - confirmation: a write only prepares a pending action (stored in
 *     LMDB); it runs when the customer's next message is a clear "yes" (or
 *     a confirm naming its id), decided here; anything else cancels it;
 *   - idempotency: the write carries an Idempotency-Key derived from the
 *     pending action, the same for every retry and every repeated "yes".
 *
 * The state of each conversation (verified e-mail, the pending action, the
 * order talked about) is the LMDB database "actions".
 */


#ifndef _NGX_HTTP_SUPPORT_AGENT_ACT_H_INCLUDED_
#define _NGX_HTTP_SUPPORT_AGENT_ACT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_support_agent_fetch.h"
#include "ngx_http_support_agent_intent.h"
#include "sa_act.h"
#include "sa_llm.h"
#include "sa_types.h"


typedef struct {
    ngx_http_sa_service_t      api;          /* url empty: no actions */
    ngx_str_t                  api_key;      /* never logged */
    ngx_uint_t                 tools;        /* 1 << sa_tool_e */
    ngx_uint_t                 rounds;       /* tool rounds per turn */
    double                     refund_limit; /* above: a human; < 0 unset */
    ngx_http_complex_value_t  *identity;     /* a trusted e-mail, or NULL */
    ngx_str_t                  replies_text;
    sa_templates_t            *replies;
    ngx_str_t                  tools_json;   /* for the LLM request */
    ngx_str_t                  tools_json_final; /* tool_choice "none" */
} ngx_http_sa_act_conf_t;


typedef struct ngx_http_sa_action_s  ngx_http_sa_action_t;

/* the action step is over: act->reply holds the customer's text (the
   no-LLM flows), or the tool messages are ready (the LLM's calls) */
typedef void (*ngx_http_sa_action_done_pt)(void *data);


struct ngx_http_sa_action_s {
    ngx_http_sa_act_conf_t      *conf;
    ngx_http_request_t          *request;
    ngx_str_t                   *conversation_id;
    sa_act_state_t               state;

    ngx_http_sa_action_done_pt   on_done;
    void                        *data;

    /* this turn */
    const char                  *message;       /* the customer's */
    size_t                       message_len;
    ngx_str_t                    confirm_id;    /* the request's "confirm" */
    char                         email[256];    /* given in this message */
    sa_tool_e                    tool;          /* of the no-LLM flow */
    sa_tool_args_t               args;
    sa_order_t                   order;
    ngx_uint_t                   step;
    ngx_str_t                    reply;         /* for the customer */
    const char                  *outcome;       /* "done", "pending",
                                                   "cancelled", ... */

    /* the LLM's tool calls of one round */
    sa_llm_tool_call_t          *calls;
    size_t                       n_calls;
    size_t                       call;          /* being processed */
    sa_msg_t                    *results;       /* role tool, one a call */
    ngx_uint_t                   rounds;        /* done this turn */
    ngx_str_t                    pending_note;  /* appended to the reply */

    ngx_http_sa_fetch_t          fetch;
    ngx_event_t                  failed;        /* a request that could
                                                   not start, answered
                                                   on the next loop */
    char                         key[160];      /* Idempotency-Key line */
    ngx_msec_t                   started;

    unsigned                     active:1;
    unsigned                     dirty:1;       /* state to save */
    unsigned                     running:1;     /* a request is out */
};


char *ngx_http_sa_act_merge(ngx_conf_t *cf, ngx_http_sa_act_conf_t *conf,
    ngx_http_sa_act_conf_t *prev);
void ngx_http_sa_act_init_conf(ngx_http_sa_act_conf_t *conf);
char *ngx_http_sa_act_tools(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_sa_act_identity(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* reads the conversation's action state; NGX_DECLINED without actions
   here, NGX_ERROR (logged) */
ngx_int_t ngx_http_sa_act_begin(ngx_http_request_t *r,
    ngx_http_sa_action_t *act, ngx_http_sa_act_conf_t *conf,
    ngx_str_t *conversation_id, const sa_msg_t *user, ngx_str_t *confirm);

/* the deterministic part of a turn: a pending action confirmed or
   cancelled, or (tool != NONE, no LLM) the no-LLM flow of that tool.
   NGX_OK: act->reply is the answer; NGX_AGAIN: on_done follows;
   NGX_DECLINED: not an action turn. */
ngx_int_t ngx_http_sa_act_turn(ngx_http_request_t *r,
    ngx_http_sa_action_t *act, sa_tool_e tool);

/* the tool of a flow that asked for something (an order number, the
   e-mail, an address) when this message gives it, else NONE */
sa_tool_e ngx_http_sa_act_awaited(ngx_http_sa_action_t *act);

/* the tool an action route names ("action:track_order"), or NONE */
sa_tool_e ngx_http_sa_act_route_tool(ngx_http_sa_routed_t *routed);

/* the LLM asked for tools: each call is checked and run (reads) or
   prepared (writes); NGX_AGAIN: on_done follows with act->results */
ngx_int_t ngx_http_sa_act_tool_calls(ngx_http_request_t *r,
    ngx_http_sa_action_t *act, sa_llm_stream_t *stream);

/* saves the state when it changed */
ngx_int_t ngx_http_sa_act_save(ngx_http_request_t *r,
    ngx_http_sa_action_t *act);

void ngx_http_sa_act_cancel(ngx_http_sa_action_t *act);
void ngx_http_sa_act_free(ngx_http_sa_action_t *act);

/* {"status": "...", "id", "tool", ...} for the reply and the stream */
int ngx_http_sa_act_json(ngx_http_sa_action_t *act, void *w);


#endif /* _NGX_HTTP_SUPPORT_AGENT_ACT_H_INCLUDED_ */
