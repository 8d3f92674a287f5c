
/*
 * Copyright (C) ngx_support_agent authors
 *
 * Escalation and handoff: the signals of each customer message are kept
 * per conversation in LMDB ("escalation"); when one fires, a ticket for
 * the helpdesk is built, stored in LMDB ("handoff", with its key in
 * "handoff_queue" until it is delivered) and POSTed.  A ticket the
 * helpdesk did not take is retried with backoff by whichever worker finds
 * it due, under a lease, with the same Idempotency-Key: one ticket per
 * conversation, across reloads and crashes.
 */


#ifndef _NGX_HTTP_SUPPORT_AGENT_ESCALATE_H_INCLUDED_
#define _NGX_HTTP_SUPPORT_AGENT_ESCALATE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_support_agent_fetch.h"
#include "ngx_http_support_agent_intent.h"
#include "sa_escalate.h"
#include "sa_types.h"


typedef struct {
    ngx_uint_t                 repeats;      /* 0: off */
    double                     sentiment;    /* 0: off, < 0 unset */
    ngx_uint_t                 unserved;     /* 0: off */
    ngx_msec_t                 max_duration; /* 0: off */
    ngx_array_t               *high_stakes;  /* ngx_str_t, or NULL */
    sa_hours_t                *hours;        /* NULL: no schedule */
    ngx_str_t                  hours_text;   /* as configured */
    ngx_uint_t                 hours_set;

    ngx_http_sa_service_t      helpdesk;     /* url empty: no handoff */
    ngx_str_t                  helpdesk_key; /* never logged */
    ngx_uint_t                 mask;         /* SA_MASK_*, unset: -1 */
    ngx_str_t                  summary_prompt; /* empty: built summary */

    sa_esc_policy_t            policy;
} ngx_http_sa_escalate_conf_t;


/* what the customer is told about the handoff */
typedef struct {
    ngx_uint_t                 status;       /* NGX_HTTP_SA_HANDOFF_* */
    ngx_str_t                  ticket_id;    /* empty: not known yet */
    ngx_int_t                  wait;         /* minutes, -1 unknown */
    sa_esc_reason_e            reason;
    sa_esc_priority_e          priority;
    ngx_uint_t                 open;         /* within business hours */
    int64_t                    next_open_ms; /* -1: none */
} ngx_http_sa_handoff_info_t;

#define NGX_HTTP_SA_HANDOFF_CREATED  1   /* the helpdesk took the ticket */
#define NGX_HTTP_SA_HANDOFF_QUEUED   2   /* stored, delivered later */
#define NGX_HTTP_SA_HANDOFF_EXISTING 3   /* handed off in an earlier turn */


typedef struct ngx_http_sa_escalation_s  ngx_http_sa_escalation_t;

typedef void (*ngx_http_sa_handoff_done_pt)(void *data);

/* one turn's escalation: the state read at the start of the turn, the
   decision, and the handoff running for it */
struct ngx_http_sa_escalation_s {
    ngx_http_sa_escalate_conf_t  *conf;
    ngx_str_t                    *conversation_id;
    sa_esc_state_t                state;
    sa_esc_decision_t             decision;
    ngx_http_sa_handoff_info_t    info;

    ngx_http_sa_handoff_done_pt   on_done;
    void                         *data;

    ngx_http_sa_fetch_t           fetch;
    ngx_str_t                     body;       /* the ticket, pool memory */
    ngx_str_t                     summary;    /* the LLM's, masked */
    char                          ticket[65]; /* info.ticket_id's bytes */

    unsigned                      active:1;   /* observed this turn */
    unsigned                      saved:1;
    unsigned                      running:1;  /* the POST is out */
    unsigned                      summarized:1; /* the LLM was asked */
};


char *ngx_http_sa_escalate_merge(ngx_conf_t *cf,
    ngx_http_sa_escalate_conf_t *conf, ngx_http_sa_escalate_conf_t *prev);
void ngx_http_sa_escalate_init_conf(ngx_http_sa_escalate_conf_t *conf);

char *ngx_http_sa_number_or_off(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
/* the bounds of ngx_http_sa_positive_or_off(), its cmd->post */
typedef struct {
    double                     max;
    ngx_uint_t                 inclusive;    /* max itself allowed */
    const char                *what;         /* for the error message */
} ngx_http_sa_number_bounds_t;

char *ngx_http_sa_positive_or_off(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_sa_escalate_after(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_sa_high_stakes(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_sa_business_hours(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_sa_handoff_mask(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* reads the conversation's state and weighs this message.  NGX_OK (see
   esc->decision), NGX_DECLINED (escalation not configured here), or
   NGX_ERROR (logged: the turn goes on without escalation). */
ngx_int_t ngx_http_sa_escalate_observe(ngx_http_request_t *r,
    ngx_http_sa_escalation_t *esc, ngx_http_sa_escalate_conf_t *conf,
    ngx_str_t *conversation_id, ngx_uint_t created,
    ngx_http_sa_routed_t *routed, const sa_msg_t *user);

/* the answer found nothing: may escalate as out of scope */
void ngx_http_sa_escalate_unserved(ngx_http_sa_escalation_t *esc);

/* a reminder of the earlier handoff is due: a repeated request for a
   human after the conversation was handed off; fills esc->info */
ngx_uint_t ngx_http_sa_escalate_reminder(ngx_http_request_t *r,
    ngx_http_sa_escalation_t *esc, ngx_http_sa_routed_t *routed);

/* stores the ticket and POSTs it.  NGX_AGAIN: esc->on_done follows;
   NGX_OK: esc->info is ready now (stored, or handed off already);
   NGX_ERROR: the ticket could not be stored (logged). */
ngx_int_t ngx_http_sa_handoff_start(ngx_http_request_t *r,
    ngx_http_sa_escalation_t *esc, const sa_msg_t *msgs, size_t n,
    ngx_http_sa_routed_t *routed);

/* the transcript for the LLM that writes the summary: one text, personal
   data masked */
ngx_int_t ngx_http_sa_handoff_transcript(ngx_http_request_t *r,
    ngx_http_sa_escalation_t *esc, const sa_msg_t *msgs, size_t n,
    ngx_str_t *out);

/* keeps the LLM's summary (masked, at most 4000 bytes); NGX_DECLINED if
   it is not usable */
ngx_int_t ngx_http_sa_handoff_summary(ngx_http_request_t *r,
    ngx_http_sa_escalation_t *esc, const char *text, size_t len);

/* saves the state if the turn did not already (end of a normal turn) */
void ngx_http_sa_escalate_save(ngx_http_request_t *r,
    ngx_http_sa_escalation_t *esc);

/* stops a running POST (the client left): the ticket stays queued */
void ngx_http_sa_escalate_cancel(ngx_http_sa_escalation_t *esc);

/* the customer's message and the JSON of the handoff */
ngx_int_t ngx_http_sa_handoff_reply(ngx_http_request_t *r,
    ngx_http_sa_escalation_t *esc, ngx_str_t *text);
int ngx_http_sa_handoff_json(ngx_http_sa_escalation_t *esc, void *w);

/* the workers' delivery queue */
ngx_int_t ngx_http_sa_handoff_init_process(ngx_cycle_t *cycle);
void ngx_http_sa_handoff_exit_process(ngx_cycle_t *cycle);


#endif /* _NGX_HTTP_SUPPORT_AGENT_ESCALATE_H_INCLUDED_ */
