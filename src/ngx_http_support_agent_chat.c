
/*
 * Copyright (C) ngx_support_agent authors
 *
 * A turn: validate the request, mark the conversation busy in LMDB, load
 * its bounded history, answer (LLM, or the fallback reply without one),
 * stream or return the reply, and save the user message and the reply in
 * one transaction.  A failed turn saves nothing.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <ngx_sha1.h>
#include <sys/random.h>

#include "ngx_http_support_agent_module.h"
#include "ngx_http_support_agent_chat.h"
#include "ngx_http_support_agent_kb.h"
#include "ngx_http_support_agent_llm.h"
#include "ngx_http_support_agent_reply.h"
#include "ngx_http_support_agent_store.h"
#include "sa_json.h"
#include "sa_store.h"
#include "sa_utf8.h"

#include <yajl/yajl_tree.h>


#define NGX_HTTP_SA_LEASE_MARGIN   10000
#define NGX_HTTP_SA_EXTRACT_MAX    700

#define NGX_HTTP_SA_UNAVAILABLE                                              \
    "Sorry, I can't answer right now. Please try again in a moment."


typedef struct {
    ngx_http_request_t        *request;
    ngx_http_sa_loc_conf_t    *conf;

    sa_chat_request_t          req;
    ngx_str_t                  conversation_id;

    sa_msg_t                  *msgs;       /* history + this user message */
    size_t                     n_msgs;

    ngx_http_sa_out_t          out;
    ngx_http_sa_llm_t          llm;

    ngx_http_sa_kb_results_t   kb;         /* retrieved sources */
    ngx_http_sa_kb_retrieval_t retrieval;

    ngx_http_sa_routed_t       routed;     /* the router's decision */
    ngx_http_sa_escalation_t   esc;
    ngx_http_sa_action_t       act;
    size_t                     turn_start; /* the user message in msgs */
    uint32_t                   cite;       /* bit n: source n+1 is cited */

    u_char                    *text;       /* reply text not yet streamed */
    size_t                     text_len;
    size_t                     text_cap;

    ngx_event_t                heartbeat;
    ngx_event_t                deadline;
    ngx_event_t                summary_timer;  /* the LLM's summary */

    ngx_queue_t                queue;      /* the worker's live turns */

    unsigned                   sse:1;
    unsigned                   created:1;  /* new conversation */
    unsigned                   turn_open:1;
    unsigned                   done:1;
    unsigned                   grounded:1; /* the KB was asked */
    unsigned                   is_routed:1;
    unsigned                   handoff:1;  /* the reply hands off */
    unsigned                   acted:1;    /* the reply tells an action */
} ngx_http_sa_ctx_t;


static void ngx_http_sa_chat_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_sa_chat_begin(ngx_http_request_t *r,
    ngx_http_sa_ctx_t *ctx);
static ngx_int_t ngx_http_sa_chat_open_turn(ngx_http_request_t *r,
    ngx_http_sa_ctx_t *ctx, int64_t now);
static ngx_int_t ngx_http_sa_chat_new_id(ngx_http_request_t *r,
    ngx_http_sa_ctx_t *ctx);
static ngx_int_t ngx_http_sa_chat_turn_status(ngx_http_request_t *r,
    ngx_http_sa_ctx_t *ctx, int rc);
static ngx_int_t ngx_http_sa_chat_keyed_id(ngx_http_request_t *r,
    ngx_http_sa_ctx_t *ctx, ngx_str_t *key, int64_t now, int64_t lease);
static ngx_int_t ngx_http_sa_chat_load_history(ngx_http_request_t *r,
    ngx_http_sa_ctx_t *ctx, int64_t now);
static ngx_int_t ngx_http_sa_chat_meta(ngx_http_request_t *r,
    ngx_http_sa_ctx_t *ctx);
static int ngx_http_sa_chat_route_json(ngx_http_sa_ctx_t *ctx, sa_jw_t *w);
static ngx_int_t ngx_http_sa_chat_handoff(ngx_http_request_t *r,
    ngx_http_sa_ctx_t *ctx);
static void ngx_http_sa_chat_handed_off(void *data);
static ngx_int_t ngx_http_sa_chat_summarize(ngx_http_request_t *r,
    ngx_http_sa_ctx_t *ctx);
static void ngx_http_sa_chat_summary_text(ngx_http_sa_llm_t *llm,
    const char *text, size_t len);
static ngx_int_t ngx_http_sa_chat_summary_flush(ngx_http_sa_llm_t *llm);
static void ngx_http_sa_chat_summarized(ngx_http_sa_llm_t *llm,
    ngx_int_t rc);
static void ngx_http_sa_chat_summary_timeout(ngx_event_t *ev);
static ngx_int_t ngx_http_sa_chat_object_event(ngx_http_request_t *r,
    ngx_http_sa_ctx_t *ctx, const char *name, int (*json)(void *obj,
    void *w), void *obj);
static int ngx_http_sa_chat_handoff_json(void *obj, void *w);
static int ngx_http_sa_chat_action_json(void *obj, void *w);
static void ngx_http_sa_chat_acted(void *data);
static ngx_uint_t ngx_http_sa_chat_needs_human(ngx_http_request_t *r,
    ngx_http_sa_ctx_t *ctx);
static ngx_int_t ngx_http_sa_chat_tool_calls(ngx_http_request_t *r,
    ngx_http_sa_ctx_t *ctx);
static void ngx_http_sa_chat_tools_done(void *data);
static void ngx_http_sa_chat_confirm_id(ngx_http_sa_ctx_t *ctx,
    ngx_str_t *id);
static ngx_int_t ngx_http_sa_chat_answer(ngx_http_request_t *r,
    ngx_http_sa_ctx_t *ctx);
static void ngx_http_sa_chat_retrieved(ngx_http_request_t *r, void *data,
    ngx_int_t rc);
static ngx_int_t ngx_http_sa_chat_retrieve(ngx_http_request_t *r,
    ngx_http_sa_ctx_t *ctx);
static ngx_int_t ngx_http_sa_chat_grounded_prompt(ngx_http_request_t *r,
    ngx_http_sa_ctx_t *ctx);
static void ngx_http_sa_chat_extractive(ngx_http_request_t *r,
    ngx_http_sa_ctx_t *ctx);
static void ngx_http_sa_chat_cite_markers(ngx_http_sa_ctx_t *ctx,
    const char *reply, size_t len);
static int ngx_http_sa_chat_citation_json(ngx_http_sa_ctx_t *ctx,
    ngx_uint_t i, sa_jw_t *w);
static int ngx_http_sa_chat_citations_json(ngx_http_sa_ctx_t *ctx,
    sa_jw_t *w);
static ngx_int_t ngx_http_sa_chat_citation_events(ngx_http_request_t *r,
    ngx_http_sa_ctx_t *ctx);
static void ngx_http_sa_chat_text(ngx_http_sa_llm_t *llm, const char *text,
    size_t len);
static ngx_int_t ngx_http_sa_chat_flush_text(ngx_http_sa_llm_t *llm);
static void ngx_http_sa_chat_llm_done(ngx_http_sa_llm_t *llm, ngx_int_t rc);
static ngx_int_t ngx_http_sa_chat_delta(ngx_http_request_t *r,
    ngx_http_sa_ctx_t *ctx, const char *text, size_t len);
static ngx_int_t ngx_http_sa_chat_event(ngx_http_request_t *r,
    ngx_http_sa_ctx_t *ctx, const char *name, sa_jw_t *w);
static void ngx_http_sa_chat_complete(ngx_http_request_t *r,
    ngx_http_sa_ctx_t *ctx, const char *reply, size_t len,
    const char *finish_reason, const char *source, ngx_uint_t streamed);
static void ngx_http_sa_chat_fail(ngx_http_request_t *r,
    ngx_http_sa_ctx_t *ctx, ngx_uint_t status, const char *code,
    const char *message);
static ngx_int_t ngx_http_sa_chat_reject(ngx_http_request_t *r,
    ngx_http_sa_ctx_t *ctx, ngx_uint_t status, const char *code,
    const char *message, ngx_str_t *conversation_id);
static void ngx_http_sa_chat_close_turn(ngx_http_sa_ctx_t *ctx);
static void ngx_http_sa_chat_finalize(ngx_http_request_t *r,
    ngx_http_sa_ctx_t *ctx, ngx_int_t rc);
static ngx_int_t ngx_http_sa_chat_sent(ngx_http_request_t *r, ngx_int_t rc);
static void ngx_http_sa_chat_write_handler(ngx_http_request_t *r);
static void ngx_http_sa_chat_heartbeat(ngx_event_t *ev);
static void ngx_http_sa_chat_deadline(ngx_event_t *ev);
static void ngx_http_sa_chat_cleanup(void *data);
static ngx_int_t ngx_http_sa_chat_error(ngx_http_request_t *r,
    ngx_uint_t level, ngx_uint_t status, const char *code,
    const char *message);
static ngx_uint_t ngx_http_sa_wants_sse(ngx_http_request_t *r);
static int64_t ngx_http_sa_now_ms(void);


/* turns in progress in this worker, released at exit */
static ngx_queue_t  ngx_http_sa_live_turns;


void
ngx_http_sa_chat_init_process(void)
{
    ngx_queue_init(&ngx_http_sa_live_turns);
}


/*
 * Single process mode quits without finalizing requests: release what live
 * turns hold (curl handles, busy marks, memory) while the store is open.
 */

void
ngx_http_sa_chat_exit_process(void)
{
    ngx_queue_t        *q;
    ngx_http_sa_ctx_t  *ctx;

    if (ngx_http_sa_live_turns.next == NULL) {
        return;
    }

    while (!ngx_queue_empty(&ngx_http_sa_live_turns)) {
        q = ngx_queue_head(&ngx_http_sa_live_turns);
        ctx = ngx_queue_data(q, ngx_http_sa_ctx_t, queue);
        ngx_http_sa_chat_cleanup(ctx);
    }
}


ngx_int_t
ngx_http_sa_chat_handler(ngx_http_request_t *r)
{
    ngx_int_t                rc;
    ngx_http_sa_ctx_t       *ctx;
    ngx_pool_cleanup_t      *cln;
    ngx_http_sa_loc_conf_t  *conf;

    conf = ngx_http_get_module_loc_conf(r, ngx_http_support_agent_module);

    if (r->method != NGX_HTTP_POST) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_sa_chat_error(r, NGX_LOG_INFO, NGX_HTTP_NOT_ALLOWED,
                                      "method_not_allowed",
                                      "use POST with a JSON body");
    }

    if (!ngx_http_sa_is_json(r)) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_sa_chat_error(r, NGX_LOG_INFO,
                                      NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                      "unsupported_media_type",
                                      "the body must be application/json");
    }

    if (r->headers_in.content_length_n > (off_t) conf->max_body) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_sa_chat_error(r, NGX_LOG_INFO,
                                      NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                      "body_too_large",
                                      "the request body is too large");
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_sa_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->request = r;
    ctx->conf = conf;

    /* runs on every way out: normal end, client abort, timeouts */
    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_sa_chat_cleanup;
    cln->data = ctx;

    ngx_http_set_ctx(r, ctx, ngx_http_support_agent_module);

    ngx_queue_insert_tail(&ngx_http_sa_live_turns, &ctx->queue);

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_sa_chat_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_sa_chat_body(ngx_http_request_t *r)
{
    u_char                   *body;
    size_t                    len;
    ngx_int_t                 rc;
    sa_req_status_e           status;
    ngx_http_sa_ctx_t        *ctx;
    char                      err[256];

    ctx = ngx_http_get_module_ctx(r, ngx_http_support_agent_module);

    /* from now on a client that goes away is noticed at once */
    r->read_event_handler = ngx_http_test_reading;

    rc = ngx_http_sa_read_body(r, ctx->conf->max_body, &body, &len);

    if (rc == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (len > ctx->conf->max_body) {
        ngx_http_finalize_request(r,
            ngx_http_sa_chat_error(r, NGX_LOG_INFO,
                                   NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                   "body_too_large",
                                   "the request body is too large"));
        return;
    }

    status = sa_chat_request_parse((char *) body, len, ctx->conf->max_message,
                                   &ctx->req, err, sizeof(err));

    if (status == SA_REQ_NO_MEMORY) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (status != SA_REQ_OK) {
        ngx_http_finalize_request(r,
            ngx_http_sa_chat_error(r, NGX_LOG_INFO, NGX_HTTP_BAD_REQUEST,
                                   status == SA_REQ_MALFORMED
                                   || status == SA_REQ_NOT_OBJECT
                                   ? "invalid_json"
                                   : status == SA_REQ_BAD_UTF8
                                   ? "invalid_utf8"
                                   : status == SA_REQ_MESSAGE_TOO_LONG
                                   ? "message_too_long"
                                   : "invalid_request",
                                   err));
        return;
    }

    rc = ngx_http_sa_chat_begin(r, ctx);

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


static ngx_int_t
ngx_http_sa_chat_begin(ngx_http_request_t *r, ngx_http_sa_ctx_t *ctx)
{
    int64_t                  now;
    sa_tool_e                tool;
    ngx_int_t                rc;
    ngx_str_t                confirm;
    ngx_http_sa_loc_conf_t  *conf;

    conf = ctx->conf;
    now = ngx_http_sa_now_ms();

    rc = ngx_http_sa_chat_open_turn(r, ctx, now);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_sa_chat_load_history(r, ctx, now);
    if (rc != NGX_OK) {
        return rc;
    }

    if (conf->intents != NULL) {
        /* the message now belongs to the history's last entry */
        rc = ngx_http_sa_intent_route(r, conf->intents, conf->intent_threshold,
                                      ctx->msgs[ctx->n_msgs - 1].content,
                                      ctx->msgs[ctx->n_msgs - 1].content_len,
                                      &ctx->routed);
        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        /* NGX_DECLINED: no model can be read (logged); unrouted */
        ctx->is_routed = (rc == NGX_OK);
    }

    /* NGX_DECLINED: no handoff here; NGX_ERROR: logged, no escalation */
    (void) ngx_http_sa_escalate_observe(r, &ctx->esc, &conf->escalate,
                                        &ctx->conversation_id, ctx->created,
                                        ctx->is_routed ? &ctx->routed : NULL,
                                        &ctx->msgs[ctx->n_msgs - 1]);

    ngx_http_sa_chat_confirm_id(ctx, &confirm);

    /* NGX_DECLINED: no actions here; NGX_ERROR: logged, no actions */
    (void) ngx_http_sa_act_begin(r, &ctx->act, &conf->act,
                                 &ctx->conversation_id,
                                 &ctx->msgs[ctx->n_msgs - 1],
                                 confirm.len ? &confirm : NULL);

    ctx->deadline.handler = ngx_http_sa_chat_deadline;
    ctx->deadline.data = r->connection;
    ctx->deadline.log = r->connection->log;

    /* not cancelable: a graceful reload lets the turn finish first */
    ngx_add_timer(&ctx->deadline, conf->llm_timeout);

    if (ngx_http_sa_wants_sse(r)) {
        ctx->sse = 1;

        rc = ngx_http_sa_sse_start(r, &ctx->out);
        if (rc != NGX_OK) {
            return rc;
        }

        r->write_event_handler = ngx_http_sa_chat_write_handler;

        rc = ngx_http_sa_chat_meta(r, ctx);
        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        ctx->heartbeat.handler = ngx_http_sa_chat_heartbeat;
        ctx->heartbeat.data = r->connection;
        ctx->heartbeat.log = r->connection->log;
        ctx->heartbeat.cancelable = 1;

        ngx_add_timer(&ctx->heartbeat, conf->heartbeat);
    }

    ctx->act.on_done = ngx_http_sa_chat_acted;
    ctx->act.data = ctx;

    if (ctx->act.active && ctx->act.state.pending) {
        /* the customer's answer to a pending action comes first */
        rc = ngx_http_sa_act_turn(r, &ctx->act, SA_TOOL_NONE);

        if (rc == NGX_OK) {
            ngx_http_sa_chat_acted(ctx);
            return NGX_DONE;
        }

        if (rc == NGX_AGAIN) {
            return NGX_DONE;
        }

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (ctx->esc.active && ctx->esc.decision.reason != SA_ESC_NONE) {
        return ngx_http_sa_chat_handoff(r, ctx);
    }

    if (ctx->esc.active
        && ngx_http_sa_escalate_reminder(r, &ctx->esc,
                                         ctx->is_routed ? &ctx->routed
                                                        : NULL))
    {
        ngx_http_sa_chat_handed_off(ctx);
        return NGX_DONE;
    }

    if (ctx->act.active && conf->llm_url.len == 0) {
        /* no LLM: the deterministic flow of the router's action, or of the
           flow that asked for what this message gives */
        tool = ngx_http_sa_act_route_tool(ctx->is_routed ? &ctx->routed
                                                         : NULL);
        if (tool == SA_TOOL_NONE) {
            tool = ngx_http_sa_act_awaited(&ctx->act);
        }

        rc = ngx_http_sa_act_turn(r, &ctx->act, tool);

        if (rc == NGX_OK) {
            ngx_http_sa_chat_acted(ctx);
            return NGX_DONE;
        }

        if (rc == NGX_AGAIN) {
            return NGX_DONE;
        }

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (ctx->is_routed && ctx->routed.kind == SA_ROUTE_OUT_OF_SCOPE) {
        /* say what the agent can help with rather than guess */
        ngx_http_sa_chat_complete(r, ctx,
                                  (char *) conf->out_of_scope_reply.data,
                                  conf->out_of_scope_reply.len, "stop",
                                  "router", 0);
        return NGX_DONE;
    }

    if (conf->kb.kb != NULL || conf->kb.qdrant.url.len) {
        rc = ngx_http_sa_chat_retrieve(r, ctx);

        if (rc == NGX_AGAIN) {
            /* ngx_http_sa_chat_retrieved() goes on */
            return NGX_DONE;
        }

        if (rc != NGX_OK) {
            return rc;
        }
    }

    return ngx_http_sa_chat_answer(r, ctx);
}


/*
 * A signal fired: the ticket is stored and sent; the customer is told what
 * happens next once the helpdesk answered (or did not, in time).
 */

static ngx_int_t
ngx_http_sa_chat_handoff(ngx_http_request_t *r, ngx_http_sa_ctx_t *ctx)
{
    ngx_int_t  rc;

    if (!ctx->esc.summarized && ctx->conf->llm_url.len
        && ctx->conf->escalate.summary_prompt.len)
    {
        ctx->esc.summarized = 1;

        if (ngx_http_sa_chat_summarize(r, ctx) == NGX_AGAIN) {
            /* ngx_http_sa_chat_summarized() comes back here */
            return NGX_DONE;
        }
    }

    ctx->esc.on_done = ngx_http_sa_chat_handed_off;
    ctx->esc.data = ctx;

    rc = ngx_http_sa_handoff_start(r, &ctx->esc, ctx->msgs, ctx->n_msgs,
                                   ctx->is_routed ? &ctx->routed : NULL);

    if (rc == NGX_AGAIN) {
        return NGX_DONE;
    }

    if (rc == NGX_OK) {
        ngx_http_sa_chat_handed_off(ctx);
        return NGX_DONE;
    }

    /* the ticket cannot be stored (logged): a human is out of reach, so
       the agent goes on answering */
    ctx->esc.decision.reason = SA_ESC_NONE;
    ctx->esc.state.escalated = 0;

    if (ctx->grounded) {
        ngx_http_sa_chat_complete(r, ctx, (char *) ctx->conf->kb_no_answer.data,
                                  ctx->conf->kb_no_answer.len, "stop", "kb",
                                  0);
        return NGX_DONE;
    }

    if (ctx->conf->kb.kb != NULL || ctx->conf->kb.qdrant.url.len) {
        rc = ngx_http_sa_chat_retrieve(r, ctx);

        if (rc == NGX_AGAIN) {
            return NGX_DONE;
        }

        if (rc != NGX_OK) {
            return rc;
        }
    }

    return ngx_http_sa_chat_answer(r, ctx);
}


/*
 * The LLM writes the summary for the human from the transcript, within
 * support_agent_handoff_timeout; without it (failed, slow, unusable) the
 * ticket has the summary built from the conversation.
 */

static ngx_int_t
ngx_http_sa_chat_summarize(ngx_http_request_t *r, ngx_http_sa_ctx_t *ctx)
{
    sa_msg_t   msg;
    ngx_str_t  transcript;

    if (ngx_http_sa_handoff_transcript(r, &ctx->esc, ctx->msgs, ctx->n_msgs,
                                       &transcript)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_memzero(&msg, sizeof(sa_msg_t));
    msg.role = SA_ROLE_USER;
    msg.content = (char *) transcript.data;
    msg.content_len = transcript.len;

    ctx->llm.request = r;
    ctx->llm.conf = ctx->conf;
    ctx->llm.data = ctx;
    ctx->llm.on_text = ngx_http_sa_chat_summary_text;
    ctx->llm.on_flush = ngx_http_sa_chat_summary_flush;
    ctx->llm.on_done = ngx_http_sa_chat_summarized;
    ctx->llm.deadline = ngx_current_msec + ctx->conf->escalate.helpdesk.timeout;
    ctx->llm.system_prompt = ctx->conf->escalate.summary_prompt;

    if (ngx_http_sa_llm_start(&ctx->llm, &msg, 1) != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "support agent: no summary by the LLM for the handoff "
                      "of conversation \"%V\": %s", &ctx->conversation_id,
                      ctx->llm.failure);
        return NGX_DECLINED;
    }

    ctx->summary_timer.handler = ngx_http_sa_chat_summary_timeout;
    ctx->summary_timer.data = r->connection;
    ctx->summary_timer.log = r->connection->log;

    ngx_add_timer(&ctx->summary_timer, ctx->conf->escalate.helpdesk.timeout);

    return NGX_AGAIN;
}


/* the summary is for the human only: nothing is streamed */

static void
ngx_http_sa_chat_summary_text(ngx_http_sa_llm_t *llm, const char *text,
    size_t len)
{
}


static ngx_int_t
ngx_http_sa_chat_summary_flush(ngx_http_sa_llm_t *llm)
{
    return NGX_OK;
}


static void
ngx_http_sa_chat_summarized(ngx_http_sa_llm_t *llm, ngx_int_t rc)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;
    ngx_http_sa_ctx_t   *ctx;

    ctx = llm->data;
    r = ctx->request;
    c = r->connection;

    if (ctx->summary_timer.timer_set) {
        ngx_del_timer(&ctx->summary_timer);
    }

    if (rc == NGX_OK
        && ngx_http_sa_handoff_summary(r, &ctx->esc, llm->stream.content,
                                       llm->stream.content_len)
           == NGX_OK)
    {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, c->log, 0,
                       "support agent: the LLM summarized conversation "
                       "\"%V\"", &ctx->conversation_id);

    } else {
        ngx_log_error(NGX_LOG_WARN, c->log, 0,
                      "support agent: no summary by the LLM for the handoff "
                      "of conversation \"%V\": %s; the ticket has the "
                      "built one", &ctx->conversation_id,
                      rc == NGX_OK ? "an empty or unusable reply"
                                   : llm->failure);
    }

    rc = ngx_http_sa_chat_handoff(r, ctx);

    if (rc != NGX_DONE) {
        ngx_http_sa_chat_close_turn(ctx);
        ngx_http_sa_chat_finalize(r, ctx, rc);
    }

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_sa_chat_summary_timeout(ngx_event_t *ev)
{
    ngx_http_sa_ctx_t  *ctx;

    ctx = (ngx_http_sa_ctx_t *) ((u_char *) ev
                                 - offsetof(ngx_http_sa_ctx_t,
                                            summary_timer));

    ngx_http_sa_llm_cancel(&ctx->llm);

    ngx_cpystrn((u_char *) ctx->llm.failure,
                (u_char *) "took longer than support_agent_handoff_timeout",
                sizeof(ctx->llm.failure));

    ngx_http_sa_chat_summarized(&ctx->llm, NGX_ERROR);
}


static void
ngx_http_sa_chat_handed_off(void *data)
{
    ngx_http_sa_ctx_t  *ctx = data;

    ngx_str_t            text;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = ctx->request;
    c = r->connection;

    if (ctx->done) {
        return;
    }

    if (ngx_http_sa_handoff_reply(r, &ctx->esc, &text) != NGX_OK) {
        ngx_http_sa_chat_fail(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                              "internal_error", NGX_HTTP_SA_UNAVAILABLE);

    } else {
        ctx->handoff = 1;
        ngx_http_sa_chat_complete(r, ctx, (char *) text.data, text.len,
                                  "stop", "handoff", 0);
    }

    ngx_http_run_posted_requests(c);
}




/* one event whose data is the object json() writes */

static ngx_int_t
ngx_http_sa_chat_object_event(ngx_http_request_t *r, ngx_http_sa_ctx_t *ctx,
    const char *name, int (*json)(void *obj, void *w), void *obj)
{
    sa_jw_t  *w;

    w = sa_jw_new();
    if (w == NULL) {
        return NGX_ERROR;
    }

    if (json(obj, w) != SA_OK) {
        sa_jw_free(w);
        return NGX_ERROR;
    }

    return ngx_http_sa_chat_event(r, ctx, name, w);
}


static int
ngx_http_sa_chat_handoff_json(void *obj, void *w)
{
    return ngx_http_sa_handoff_json(obj, w);
}


static int
ngx_http_sa_chat_action_json(void *obj, void *w)
{
    return ngx_http_sa_act_json(obj, w);
}


/* an action step is over: its reply is the answer */

static void
ngx_http_sa_chat_acted(void *data)
{
    ngx_http_sa_ctx_t  *ctx = data;

    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = ctx->request;
    c = r->connection;

    if (ctx->done) {
        return;
    }

    if (ctx->act.reply.len == 0) {
        ngx_http_sa_chat_fail(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                              "internal_error", NGX_HTTP_SA_UNAVAILABLE);

    } else if (ngx_http_sa_chat_needs_human(r, ctx)) {
        /* the handoff answers */

    } else {
        ctx->acted = 1;
        ngx_http_sa_chat_complete(r, ctx, (char *) ctx->act.reply.data,
                                  ctx->act.reply.len, "stop", "action", 0);
    }

    ngx_http_run_posted_requests(c);
}


/* an action only a person may do: handed off when a helpdesk is there */

static ngx_uint_t
ngx_http_sa_chat_needs_human(ngx_http_request_t *r, ngx_http_sa_ctx_t *ctx)
{
    ngx_int_t  rc;

    if (ctx->act.outcome == NULL
        || ngx_strcmp(ctx->act.outcome, "needs_human") != 0
        || !ctx->esc.active || ctx->esc.state.escalated)
    {
        return 0;
    }

    ctx->acted = 1;
    ctx->esc.decision.reason = SA_ESC_HIGH_STAKES;
    ctx->esc.decision.priority = SA_ESC_HIGH;
    ngx_snprintf((u_char *) ctx->esc.decision.detail,
                 sizeof(ctx->esc.decision.detail) - 1,
                 "%s on order #%s is over support_agent_refund_limit%Z",
                 sa_tool_name(ctx->act.tool), ctx->act.state.last_order);

    ctx->esc.state.escalated = 1;
    ctx->esc.state.reason = SA_ESC_HIGH_STAKES;
    ctx->esc.state.escalated_ms = ngx_http_sa_now_ms();

    rc = ngx_http_sa_chat_handoff(r, ctx);

    if (rc != NGX_DONE) {
        ngx_http_sa_chat_close_turn(ctx);
        ngx_http_sa_chat_finalize(r, ctx, rc);
    }

    return 1;
}


/*
 * The LLM asked for tools: the calls join the conversation as an assistant
 * message, each checked and run or prepared by the action layer; their
 * results go back to the LLM in the next round.
 */

static ngx_int_t
ngx_http_sa_chat_tool_calls(ngx_http_request_t *r, ngx_http_sa_ctx_t *ctx)
{
    size_t                i;
    sa_jw_t              *w;
    sa_msg_t             *m, *msgs;
    ngx_int_t             rc;
    const char           *json;
    size_t                len;
    sa_llm_stream_t      *s;
    sa_llm_tool_call_t   *c;

    s = &ctx->llm.stream;

    msgs = realloc(ctx->msgs, (ctx->n_msgs + 1 + s->n_tool_calls)
                              * sizeof(sa_msg_t));
    if (msgs == NULL) {
        return NGX_ERROR;
    }

    ctx->msgs = msgs;

    w = sa_jw_new();
    if (w == NULL) {
        return NGX_ERROR;
    }

    if (sa_jw_array_open(w) != SA_OK) {
        sa_jw_free(w);
        return NGX_ERROR;
    }

    for (i = 0; i < s->n_tool_calls; i++) {
        c = &s->tool_calls[i];

        /* the model's strings are kept only when they are valid UTF-8 */
        if (sa_jw_open(w) != SA_OK
            || sa_jw_kstr(w, "id", c->id ? c->id : "call_0",
                          c->id ? ngx_strlen(c->id) : 6) != SA_OK
            || sa_jw_kstr(w, "type", "function", 8) != SA_OK
            || sa_jw_key(w, "function") != SA_OK
            || sa_jw_open(w) != SA_OK
            || sa_jw_kstr(w, "name", c->name ? c->name : "",
                          c->name ? ngx_strlen(c->name) : 0) != SA_OK
            || sa_jw_kstr(w, "arguments", c->arguments, c->arguments_len)
               != SA_OK
            || sa_jw_close(w) != SA_OK
            || sa_jw_close(w) != SA_OK)
        {
            sa_jw_free(w);
            return NGX_ERROR;
        }
    }

    if (sa_jw_array_close(w) != SA_OK) {
        sa_jw_free(w);
        return NGX_ERROR;
    }

    json = sa_jw_buf(w, &len);

    m = &ctx->msgs[ctx->n_msgs];
    ngx_memzero(m, sizeof(sa_msg_t));
    m->role = SA_ROLE_ASSISTANT;
    m->ts_ms = ngx_http_sa_now_ms();
    m->tool_calls_json = strdup(json);
    sa_jw_free(w);

    if (m->tool_calls_json == NULL) {
        return NGX_ERROR;
    }

    if (s->content_len) {
        m->content = strdup(s->content);
        m->content_len = s->content_len;

        if (m->content == NULL) {
            sa_msg_free(m);
            return NGX_ERROR;
        }
    }

    ctx->n_msgs++;

    ctx->act.on_done = ngx_http_sa_chat_tools_done;
    ctx->act.data = ctx;

    rc = ngx_http_sa_act_tool_calls(r, &ctx->act, s);

    /* the calls are copied: the stream goes */
    ngx_http_sa_llm_cancel(&ctx->llm);

    if (rc == NGX_OK) {
        ngx_http_sa_chat_tools_done(ctx);
        return NGX_OK;
    }

    return rc == NGX_AGAIN ? NGX_OK : NGX_ERROR;
}


static void
ngx_http_sa_chat_tools_done(void *data)
{
    ngx_http_sa_ctx_t  *ctx = data;

    size_t                  i;
    unsigned                delivered;
    ngx_connection_t       *c;
    ngx_http_request_t     *r;
    ngx_http_sa_llm_t      *llm;
    ngx_http_sa_loc_conf_t *conf;

    r = ctx->request;
    c = r->connection;
    conf = ctx->conf;
    llm = &ctx->llm;

    if (ctx->done) {
        return;
    }

    if (ctx->act.n_calls == 0 || ctx->act.call < ctx->act.n_calls) {
        ngx_http_sa_chat_fail(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                              "internal_error", NGX_HTTP_SA_UNAVAILABLE);
        ngx_http_run_posted_requests(c);
        return;
    }

    /* the results join the conversation (its messages own them now) */

    for (i = 0; i < ctx->act.n_calls; i++) {
        ctx->msgs[ctx->n_msgs++] = ctx->act.results[i];
        ngx_memzero(&ctx->act.results[i], sizeof(sa_msg_t));
    }

    ctx->act.n_calls = 0;

    /* the next round; after the last allowed one the model must answer in
       words */

    delivered = llm->delivered;
    ngx_memzero(llm, sizeof(ngx_http_sa_llm_t));

    llm->request = r;
    llm->conf = conf;
    llm->data = ctx;
    llm->on_text = ngx_http_sa_chat_text;
    llm->on_flush = ngx_http_sa_chat_flush_text;
    llm->on_done = ngx_http_sa_chat_llm_done;
    llm->deadline = ngx_current_msec + conf->llm_timeout;
    llm->delivered = delivered;
    llm->extra_json = ctx->act.rounds < conf->act.rounds
                      ? conf->act.tools_json : conf->act.tools_json_final;

    if (ctx->grounded && ctx->kb.n) {
        if (ngx_http_sa_chat_grounded_prompt(r, ctx) != NGX_OK) {
            ngx_http_sa_chat_fail(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal_error", NGX_HTTP_SA_UNAVAILABLE);
            ngx_http_run_posted_requests(c);
            return;
        }
    }

    if (ngx_http_sa_llm_start(llm, ctx->msgs, ctx->n_msgs) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "support agent: %s", llm->failure);
        ngx_http_sa_chat_fail(r, ctx, NGX_HTTP_BAD_GATEWAY,
                              "llm_unavailable", NGX_HTTP_SA_UNAVAILABLE);
    }

    ngx_http_run_posted_requests(c);
}




/* "confirm": the id of the pending action a button confirms */

static void
ngx_http_sa_chat_confirm_id(ngx_http_sa_ctx_t *ctx, ngx_str_t *id)
{
    char        *s;
    yajl_val     v;
    const char  *path[] = { "confirm", NULL };

    ngx_str_null(id);

    v = ctx->req.root ? yajl_tree_get(ctx->req.root, path, yajl_t_string)
                      : NULL;
    s = v ? YAJL_GET_STRING(v) : NULL;

    if (s != NULL && ngx_strlen(s) < SA_ACT_ID_LEN) {
        id->data = (u_char *) s;
        id->len = ngx_strlen(s);
    }
}


/* the sources are known (or there is no KB): answer */

static ngx_int_t
ngx_http_sa_chat_answer(ngx_http_request_t *r, ngx_http_sa_ctx_t *ctx)
{
    ngx_http_sa_loc_conf_t  *conf;

    conf = ctx->conf;

    if (ctx->grounded) {
        if (ctx->kb.n == 0) {
            ngx_http_sa_escalate_unserved(&ctx->esc);

            if (ctx->esc.decision.reason != SA_ESC_NONE) {
                return ngx_http_sa_chat_handoff(r, ctx);
            }

            /* nothing relevant: say so rather than let a model guess */
            ngx_http_sa_chat_complete(r, ctx, (char *) conf->kb_no_answer.data,
                                      conf->kb_no_answer.len, "stop", "kb",
                                      0);
            return NGX_DONE;
        }

        if (conf->llm_url.len == 0) {
            ngx_http_sa_chat_extractive(r, ctx);
            return NGX_DONE;
        }

        if (ngx_http_sa_chat_grounded_prompt(r, ctx) != NGX_OK) {
            return NGX_ERROR;
        }

    } else if (conf->llm_url.len == 0) {
        /* no LLM configured: the deterministic answer */
        ngx_http_sa_chat_complete(r, ctx, (char *) conf->fallback_reply.data,
                                  conf->fallback_reply.len, "stop",
                                  "fallback", 0);
        return NGX_DONE;
    }

    ctx->llm.request = r;
    ctx->llm.conf = conf;
    ctx->llm.data = ctx;
    ctx->llm.on_text = ngx_http_sa_chat_text;
    ctx->llm.on_flush = ngx_http_sa_chat_flush_text;
    ctx->llm.on_done = ngx_http_sa_chat_llm_done;
    ctx->llm.deadline = ngx_current_msec + conf->llm_timeout;

    if (ctx->act.active && conf->act.tools_json.len) {
        ctx->llm.extra_json = conf->act.tools_json;
    }

    if (ngx_http_sa_llm_start(&ctx->llm, ctx->msgs, ctx->n_msgs) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "support agent: %s", ctx->llm.failure);
        ngx_http_sa_chat_fail(r, ctx, NGX_HTTP_BAD_GATEWAY,
                              "llm_unavailable", NGX_HTTP_SA_UNAVAILABLE);
        return NGX_DONE;
    }

    return NGX_DONE;
}


static ngx_int_t
ngx_http_sa_chat_open_turn(ngx_http_request_t *r, ngx_http_sa_ctx_t *ctx,
    int64_t now)
{
    int          rc;
    int64_t      lease;
    ngx_str_t    key;
    sa_store_t  *store;

    store = ngx_http_sa_store();

    if (store == NULL) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "support agent: the conversation store is not open "
                      "in this process");
        return ngx_http_sa_chat_reject(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "storage_unavailable",
                                      "conversations cannot be stored now",
                                      NULL);
    }

    /* a worker that dies mid-turn leaves the mark; it expires with this */
    lease = now + ctx->conf->llm_timeout + NGX_HTTP_SA_LEASE_MARGIN;

    if (ctx->conf->conversation_key != NULL) {
        if (ngx_http_complex_value(r, ctx->conf->conversation_key, &key)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (key.len) {
            return ngx_http_sa_chat_keyed_id(r, ctx, &key, now, lease);
        }
    }

    if (ctx->req.conversation_id == NULL) {
        return ngx_http_sa_chat_new_id(r, ctx);
    }

    ctx->conversation_id.data = (u_char *) ctx->req.conversation_id;
    ctx->conversation_id.len = ctx->req.conversation_id_len;

    rc = sa_conv_begin_turn(store, ctx->req.conversation_id, now, ngx_pid,
                            lease, NULL);

    return ngx_http_sa_chat_turn_status(r, ctx, rc);
}


static ngx_int_t
ngx_http_sa_chat_turn_status(ngx_http_request_t *r, ngx_http_sa_ctx_t *ctx,
    int rc)
{
    sa_store_t  *store;

    store = ngx_http_sa_store();

    switch (rc) {

    case SA_OK:
        ctx->turn_open = 1;
        return NGX_OK;

    case SA_NOT_FOUND:
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "support agent: unknown conversation \"%V\"",
                      &ctx->conversation_id);
        return ngx_http_sa_chat_reject(r, ctx, NGX_HTTP_NOT_FOUND,
                                      "conversation_not_found",
                                      "no conversation with this id",
                                      &ctx->conversation_id);

    case SA_BUSY:
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "support agent: conversation \"%V\" has a turn "
                      "in progress", &ctx->conversation_id);
        return ngx_http_sa_chat_reject(r, ctx, NGX_HTTP_CONFLICT,
                                      "conversation_busy",
                                      "the previous message is still being "
                                      "answered",
                                      &ctx->conversation_id);

    default:
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "support agent: cannot start a turn of conversation "
                      "\"%V\": %s", &ctx->conversation_id,
                      sa_store_last_error(store));
        return ngx_http_sa_chat_reject(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      rc == SA_FULL ? "storage_full"
                                                    : "storage_unavailable",
                                      "conversations cannot be stored now",
                                      &ctx->conversation_id);
    }
}


/*
 * The conversation of a session nginx knows (support_agent_conversation_key):
 * its id is derived from the key, so the client cannot pick another one and
 * the key itself (a session cookie) is never stored.
 */

static ngx_int_t
ngx_http_sa_chat_keyed_id(ngx_http_request_t *r, ngx_http_sa_ctx_t *ctx,
    ngx_str_t *key, int64_t now, int64_t lease)
{
    int          rc;
    u_char      *p;
    ngx_sha1_t   sha1;
    sa_store_t  *store;
    u_char       hash[20];

    store = ngx_http_sa_store();

    ngx_sha1_init(&sha1);
    ngx_sha1_update(&sha1, "ngx_support_agent:",
                    sizeof("ngx_support_agent:") - 1);
    ngx_sha1_update(&sha1, key->data, key->len);
    ngx_sha1_final(hash, &sha1);

    p = ngx_pnalloc(r->pool, 2 + 32 + 1);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    *ngx_hex_dump(ngx_cpymem(p, "k_", 2), hash, 16) = '\0';

    ctx->conversation_id.data = p;
    ctx->conversation_id.len = 2 + 32;

    rc = sa_conv_begin_turn(store, (char *) p, now, ngx_pid, lease, NULL);

    if (rc == SA_NOT_FOUND) {
        rc = sa_conv_create(store, (char *) p, now, ngx_pid, lease);

        if (rc == SA_OK) {
            ctx->created = 1;

        } else if (rc == SA_BUSY) {
            /* created by a concurrent first turn */
            rc = sa_conv_begin_turn(store, (char *) p, now, ngx_pid, lease,
                                    NULL);
        }
    }

    return ngx_http_sa_chat_turn_status(r, ctx, rc);
}


static ngx_int_t
ngx_http_sa_chat_new_id(ngx_http_request_t *r, ngx_http_sa_ctx_t *ctx)
{
    int          rc;
    u_char      *p;
    int64_t      now, lease;
    ngx_uint_t   tries;
    sa_store_t  *store;
    u_char       random[16];

    store = ngx_http_sa_store();
    now = ngx_http_sa_now_ms();
    lease = now + ctx->conf->llm_timeout + NGX_HTTP_SA_LEASE_MARGIN;

    p = ngx_pnalloc(r->pool, 2 + 2 * sizeof(random) + 1);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->conversation_id.data = p;
    ctx->conversation_id.len = 2 + 2 * sizeof(random);

    rc = SA_BUSY;

    for (tries = 0; tries < 3 && rc == SA_BUSY; tries++) {

        /* 128 bits from the kernel: ids are unguessable */
        if (getrandom(random, sizeof(random), 0) != sizeof(random)) {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, ngx_errno,
                          "support agent: getrandom() failed");
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        *ngx_hex_dump(ngx_cpymem(p, "c_", 2), random, sizeof(random)) = '\0';

        rc = sa_conv_create(store, (char *) p, now, ngx_pid, lease);
    }

    if (rc == SA_OK) {
        ctx->turn_open = 1;
        ctx->created = 1;
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "support agent: cannot create a conversation: %s",
                  sa_store_last_error(store));

    ngx_str_null(&ctx->conversation_id);

    return ngx_http_sa_chat_reject(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                  rc == SA_FULL ? "storage_full"
                                                : "storage_unavailable",
                                  "conversations cannot be stored now",
                                  NULL);
}


static ngx_int_t
ngx_http_sa_chat_load_history(ngx_http_request_t *r, ngx_http_sa_ctx_t *ctx,
    int64_t now)
{
    size_t       n, skip;
    sa_msg_t    *history, *msgs, *user;
    sa_store_t  *store;

    store = ngx_http_sa_store();
    history = NULL;
    n = 0;

    if (!ctx->created
        && ctx->conf->history > 0
        && sa_conv_history(store, (char *) ctx->conversation_id.data,
                           ctx->conf->history, &history, &n)
           != SA_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "support agent: cannot read conversation \"%V\": %s",
                      &ctx->conversation_id, sa_store_last_error(store));
        ngx_http_sa_chat_close_turn(ctx);
        return ngx_http_sa_chat_reject(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "storage_unavailable",
                                      "conversations cannot be read now",
                                      &ctx->conversation_id);
    }

    /* the window may begin with tool results whose call was cut off: an
       LLM refuses them alone */
    for (skip = 0; skip < n && history[skip].role == SA_ROLE_TOOL; skip++) {
        sa_msg_free(&history[skip]);
    }

    if (skip) {
        ngx_memmove(history, history + skip, (n - skip) * sizeof(sa_msg_t));
        n -= skip;
    }

    msgs = realloc(history, (n + 1) * sizeof(sa_msg_t));
    if (msgs == NULL) {
        sa_msgs_free(history, n);
        ngx_http_sa_chat_close_turn(ctx);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the user message moves from the parsed request into the list */

    user = &msgs[n];
    ngx_memzero(user, sizeof(sa_msg_t));
    user->role = SA_ROLE_USER;
    user->content = ctx->req.message;
    user->content_len = ctx->req.message_len;
    user->ts_ms = now;
    ctx->req.message = NULL;

    ctx->msgs = msgs;
    ctx->n_msgs = n + 1;
    ctx->turn_start = n;

    return NGX_OK;
}


static ngx_int_t
ngx_http_sa_chat_meta(ngx_http_request_t *r, ngx_http_sa_ctx_t *ctx)
{
    sa_jw_t  *w;

    w = sa_jw_new();
    if (w == NULL) {
        return NGX_ERROR;
    }

    if (sa_jw_open(w) != SA_OK
        || sa_jw_kstr(w, "conversation_id",
                      (char *) ctx->conversation_id.data,
                      ctx->conversation_id.len) != SA_OK
        || sa_jw_kbool(w, "new", ctx->created) != SA_OK
        || (ctx->is_routed && ngx_http_sa_chat_route_json(ctx, w) != SA_OK)
        || sa_jw_close(w) != SA_OK)
    {
        sa_jw_free(w);
        return NGX_ERROR;
    }

    return ngx_http_sa_chat_event(r, ctx, "meta", w);
}


/* the router's decision: "intent", "route", "confidence" */

static int
ngx_http_sa_chat_route_json(ngx_http_sa_ctx_t *ctx, sa_jw_t *w)
{
    if (sa_jw_kstr(w, "intent", (char *) ctx->routed.intent.data,
                   ctx->routed.intent.len) != SA_OK
        || sa_jw_kstr(w, "route", (char *) ctx->routed.route.data,
                      ctx->routed.route.len) != SA_OK
        || sa_jw_kdouble(w, "confidence", ctx->routed.confidence) != SA_OK)
    {
        return SA_ERROR;
    }

    return SA_OK;
}


/* called from inside libcurl: only collect the text */

static void
ngx_http_sa_chat_text(ngx_http_sa_llm_t *llm, const char *text, size_t len)
{
    size_t              cap;
    u_char             *p;
    ngx_http_sa_ctx_t  *ctx;

    ctx = llm->data;

    if (!ctx->sse) {
        /* the JSON reply is taken from llm->stream.content at the end */
        return;
    }

    if (ctx->text_len + len > ctx->text_cap) {
        cap = ngx_max(ctx->text_cap * 2, ctx->text_len + len);
        cap = ngx_max(cap, 256);

        p = realloc(ctx->text, cap);
        if (p == NULL) {
            /* dropped text shows as a gap; the saved reply is whole */
            ngx_log_error(NGX_LOG_ALERT, llm->request->connection->log, 0,
                          "support agent: out of memory for reply text");
            return;
        }

        ctx->text = p;
        ctx->text_cap = cap;
    }

    ngx_memcpy(ctx->text + ctx->text_len, text, len);
    ctx->text_len += len;
}


/* everything collected since the last flush goes out as one delta event */

static ngx_int_t
ngx_http_sa_chat_flush_text(ngx_http_sa_llm_t *llm)
{
    ngx_int_t           rc;
    ngx_http_sa_ctx_t  *ctx;

    ctx = llm->data;

    if (!ctx->sse || ctx->text_len == 0) {
        return NGX_OK;
    }

    rc = ngx_http_sa_chat_delta(ctx->request, ctx, (char *) ctx->text,
                                ctx->text_len);

    ctx->text_len = 0;
    llm->delivered = 1;

    return rc == NGX_ERROR ? NGX_ERROR : NGX_OK;
}


static ngx_int_t
ngx_http_sa_chat_delta(ngx_http_request_t *r, ngx_http_sa_ctx_t *ctx,
    const char *text, size_t len)
{
    sa_jw_t  *w;

    w = sa_jw_new();
    if (w == NULL) {
        return NGX_ERROR;
    }

    if (sa_jw_open(w) != SA_OK
        || sa_jw_kstr(w, "text", text, len) != SA_OK
        || sa_jw_close(w) != SA_OK)
    {
        sa_jw_free(w);
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "support agent: reply text is not valid UTF-8");
        return NGX_OK;
    }

    return ngx_http_sa_chat_event(r, ctx, "delta", w);
}


/* sends the object built in w as one SSE event, and frees w */

static ngx_int_t
ngx_http_sa_chat_event(ngx_http_request_t *r, ngx_http_sa_ctx_t *ctx,
    const char *name, sa_jw_t *w)
{
    size_t       len;
    ngx_int_t    rc;
    const char  *json;

    json = sa_jw_buf(w, &len);
    rc = ngx_http_sa_sse_event(r, &ctx->out, name, json, len);
    sa_jw_free(w);

    return ngx_http_sa_chat_sent(r, rc);
}


/*
 * The customer's message against the knowledge base.  Filters come from
 * directives, or from the request's "filters" object.
 */

static ngx_int_t
ngx_http_sa_chat_retrieve(ngx_http_request_t *r, ngx_http_sa_ctx_t *ctx)
{
    ngx_int_t    rc;
    sa_msg_t    *user;
    yajl_val     root, v;
    ngx_uint_t   i;
    const char  *path[3], *filters[NGX_HTTP_SA_KB_FILTERS];

    root = ctx->req.root;

    for (i = 0; i < NGX_HTTP_SA_KB_FILTERS; i++) {
        path[0] = "filters";
        path[1] = ngx_http_sa_kb_filter_names[i];
        path[2] = NULL;

        v = root ? yajl_tree_get(root, path, yajl_t_string) : NULL;
        filters[i] = v ? YAJL_GET_STRING(v) : NULL;
    }

    user = &ctx->msgs[ctx->n_msgs - 1];

    ctx->grounded = 1;
    ctx->retrieval.on_done = ngx_http_sa_chat_retrieved;
    ctx->retrieval.data = ctx;

    rc = ngx_http_sa_kb_retrieve(r, &ctx->conf->kb, user->content,
                                 user->content_len, ctx->conf->kb.top_k,
                                 filters, &ctx->kb, &ctx->retrieval);

    if (rc == NGX_AGAIN) {
        return NGX_AGAIN;
    }

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* NGX_DECLINED: the KB cannot be read (logged); no sources */

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "support agent: %ui sources for conversation \"%V\"",
                   ctx->kb.n, &ctx->conversation_id);

    return NGX_OK;
}


/* the services asked for retrieval have answered (or failed: retrieval
   degrades on its own; NGX_ERROR only for a failure of ours) */

static void
ngx_http_sa_chat_retrieved(ngx_http_request_t *r, void *data, ngx_int_t rc)
{
    ngx_http_sa_ctx_t  *ctx = data;

    if (ctx->done) {
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "support agent: %ui sources for conversation \"%V\"",
                   ctx->kb.n, &ctx->conversation_id);

    if (rc == NGX_ERROR) {
        ngx_http_sa_chat_fail(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                              "internal_error", NGX_HTTP_SA_UNAVAILABLE);
        return;
    }

    /* NGX_DECLINED: no index could be read (logged); no sources */

    rc = ngx_http_sa_chat_answer(r, ctx);

    if (rc != NGX_DONE) {
        ngx_http_sa_chat_close_turn(ctx);
        ngx_http_sa_chat_finalize(r, ctx, rc);
    }
}


/* the location's system prompt, how to use sources, and the sources */

static ngx_int_t
ngx_http_sa_chat_grounded_prompt(ngx_http_request_t *r,
    ngx_http_sa_ctx_t *ctx)
{
    u_char                   *p;
    size_t                    len;
    ngx_uint_t                i;
    sa_kb_chunk_t            *c;
    ngx_http_sa_loc_conf_t   *conf;

    conf = ctx->conf;

    len = conf->system_prompt.len + 2 + conf->kb_prompt.len
          + sizeof("\n\nSources:\n") - 1;

    for (i = 0; i < ctx->kb.n; i++) {
        c = &ctx->kb.results[i].chunk;
        len += sizeof("\n[] \xe2\x80\x94 \n") - 1 + NGX_INT_T_LEN
               + ngx_strlen(c->title) + ngx_strlen(c->section) + c->text_len
               + sizeof(" (may be out of date)") - 1 + 1;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ctx->llm.system_prompt.data = p;

    p = ngx_cpymem(p, conf->system_prompt.data, conf->system_prompt.len);
    *p++ = '\n';
    *p++ = '\n';
    p = ngx_cpymem(p, conf->kb_prompt.data, conf->kb_prompt.len);
    p = ngx_cpymem(p, "\n\nSources:\n", sizeof("\n\nSources:\n") - 1);

    for (i = 0; i < ctx->kb.n; i++) {
        c = &ctx->kb.results[i].chunk;

        p = ngx_sprintf(p, "\n[%ui] %s", i + 1, c->title);

        if (c->section[0]) {
            p = ngx_sprintf(p, " \xe2\x80\x94 %s", c->section);
        }

        if (ctx->kb.results[i].stale) {
            p = ngx_cpymem(p, " (may be out of date)",
                           sizeof(" (may be out of date)") - 1);
        }

        *p++ = '\n';
        p = ngx_cpymem(p, c->text, c->text_len);
        *p++ = '\n';
    }

    ctx->llm.system_prompt.len = p - ctx->llm.system_prompt.data;

    return NGX_OK;
}


/*
 * Without an LLM (or with it down): the best source's text, cut at a
 * paragraph or sentence end, cited.
 */

static void
ngx_http_sa_chat_extractive(ngx_http_request_t *r, ngx_http_sa_ctx_t *ctx)
{
    size_t          len, cut;
    const char     *text;
    sa_kb_chunk_t  *c;

    c = &ctx->kb.results[0].chunk;
    text = c->text;
    len = c->text_len;

    while (len && (*text == '\n' || *text == ' ')) {
        text++;
        len--;
    }

    if (len > NGX_HTTP_SA_EXTRACT_MAX) {
        len = sa_utf8_complete_prefix((const unsigned char *) text,
                                      NGX_HTTP_SA_EXTRACT_MAX);

        for (cut = len; cut > len / 2; cut--) {
            if (text[cut - 1] == '\n' && text[cut - 2] == '\n') {
                break;
            }
        }

        if (cut == len / 2) {
            for (cut = len; cut > len / 2; cut--) {
                if (text[cut - 1] == '.' && text[cut] == ' ') {
                    break;
                }
            }
        }

        if (cut > len / 2) {
            len = cut;
        }
    }

    while (len && (text[len - 1] == '\n' || text[len - 1] == ' ')) {
        len--;
    }

    ctx->cite = 1;

    ngx_http_sa_chat_complete(r, ctx, text, len, "stop", "kb", 0);
}


/* the sources the reply refers to as [n]; all of them if it names none */

static void
ngx_http_sa_chat_cite_markers(ngx_http_sa_ctx_t *ctx, const char *reply,
    size_t len)
{
    size_t      i;
    ngx_uint_t  n;

    ctx->cite = 0;

    for (i = 0; i + 2 < len; i++) {
        if (reply[i] != '[' || reply[i + 1] < '1' || reply[i + 1] > '9') {
            continue;
        }

        n = reply[i + 1] - '0';

        if (reply[i + 2] >= '0' && reply[i + 2] <= '9' && i + 3 < len) {
            n = n * 10 + reply[i + 2] - '0';
            i++;
        }

        if (reply[i + 2] == ']' && n <= ctx->kb.n) {
            ctx->cite |= 1u << (n - 1);
        }
    }

    if (ctx->cite == 0) {
        ctx->cite = (uint32_t) ((1ull << ctx->kb.n) - 1);
    }
}


static int
ngx_http_sa_chat_citation_json(ngx_http_sa_ctx_t *ctx, ngx_uint_t i,
    sa_jw_t *w)
{
    sa_kb_chunk_t  *c;

    c = &ctx->kb.results[i].chunk;

    if (sa_jw_open(w) != SA_OK
        || sa_jw_kint(w, "index", (long long) i + 1) != SA_OK
        || sa_jw_kstr(w, "document", c->doc_id, ngx_strlen(c->doc_id))
           != SA_OK
        || sa_jw_kstr(w, "title", c->title, ngx_strlen(c->title)) != SA_OK
        || sa_jw_kstr(w, "section", c->section, ngx_strlen(c->section))
           != SA_OK
        || sa_jw_kstr(w, "url", c->url, ngx_strlen(c->url)) != SA_OK
        || sa_jw_kbool(w, "stale", ctx->kb.results[i].stale) != SA_OK
        || sa_jw_close(w) != SA_OK)
    {
        return SA_ERROR;
    }

    return SA_OK;
}


static int
ngx_http_sa_chat_citations_json(ngx_http_sa_ctx_t *ctx, sa_jw_t *w)
{
    ngx_uint_t  i;

    if (sa_jw_key(w, "citations") != SA_OK
        || sa_jw_array_open(w) != SA_OK)
    {
        return SA_ERROR;
    }

    for (i = 0; i < ctx->kb.n; i++) {
        if ((ctx->cite & (1u << i))
            && ngx_http_sa_chat_citation_json(ctx, i, w) != SA_OK)
        {
            return SA_ERROR;
        }
    }

    return sa_jw_array_close(w);
}


static ngx_int_t
ngx_http_sa_chat_citation_events(ngx_http_request_t *r,
    ngx_http_sa_ctx_t *ctx)
{
    sa_jw_t     *w;
    ngx_int_t    rc;
    ngx_uint_t   i;

    rc = NGX_OK;

    for (i = 0; i < ctx->kb.n && rc != NGX_ERROR; i++) {
        if (!(ctx->cite & (1u << i))) {
            continue;
        }

        w = sa_jw_new();
        if (w == NULL) {
            return NGX_ERROR;
        }

        if (ngx_http_sa_chat_citation_json(ctx, i, w) != SA_OK) {
            sa_jw_free(w);
            return NGX_ERROR;
        }

        rc = ngx_http_sa_chat_event(r, ctx, "citation", w);
    }

    return rc;
}


static void
ngx_http_sa_chat_llm_done(ngx_http_sa_llm_t *llm, ngx_int_t rc)
{
    u_char              *p;
    ngx_str_t            text;
    ngx_http_request_t  *r;
    ngx_http_sa_ctx_t   *ctx;
    ngx_connection_t    *c;

    ctx = llm->data;
    r = ctx->request;
    c = r->connection;

    if (rc == NGX_ABORT) {
        ngx_http_sa_chat_close_turn(ctx);
        ngx_http_sa_chat_finalize(r, ctx, NGX_ERROR);

    } else if (rc == NGX_OK && llm->stream.n_tool_calls
               && ctx->act.active && ctx->act.rounds < ctx->conf->act.rounds)
    {
        if (ngx_http_sa_chat_tool_calls(r, ctx) == NGX_ERROR) {
            ngx_http_sa_chat_fail(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal_error", NGX_HTTP_SA_UNAVAILABLE);
        }

    } else if (rc == NGX_OK && llm->stream.n_tool_calls
               && llm->stream.content_len == 0)
    {
        /* calls past the limit (or without actions) are not run */
        ngx_log_error(NGX_LOG_WARN, c->log, 0,
                      "support agent: the LLM kept calling tools in "
                      "conversation \"%V\"", &ctx->conversation_id);

        ngx_http_sa_chat_complete(r, ctx,
                                  (char *) ctx->conf->fallback_reply.data,
                                  ctx->conf->fallback_reply.len, "stop",
                                  "llm", 0);

    } else if (rc == NGX_OK && ngx_http_sa_chat_needs_human(r, ctx)) {
        /* the handoff answers instead of the model */

    } else if (rc == NGX_OK && ctx->act.pending_note.len) {
        /* the customer is asked to confirm in the module's words, whatever
           the model wrote */
        text.len = llm->stream.content_len + 2 + ctx->act.pending_note.len;
        text.data = ngx_pnalloc(r->pool, text.len);

        if (text.data == NULL) {
            ngx_http_sa_chat_fail(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal_error", NGX_HTTP_SA_UNAVAILABLE);

        } else {
            p = ngx_cpymem(text.data, llm->stream.content,
                           llm->stream.content_len);
            p = ngx_cpymem(p, "\n\n", llm->stream.content_len ? 2 : 0);
            p = ngx_cpymem(p, ctx->act.pending_note.data,
                           ctx->act.pending_note.len);
            text.len = p - text.data;

            ctx->acted = 1;

            if (ctx->sse) {
                ngx_http_sa_chat_text(llm, (char *) text.data
                                           + llm->stream.content_len,
                                      text.len - llm->stream.content_len);
            }

            ngx_http_sa_chat_complete(r, ctx, (char *) text.data, text.len,
                                      "stop", "llm", 1);
        }

    } else if (rc == NGX_OK) {
        ngx_http_sa_chat_complete(r, ctx, llm->stream.content,
                                  llm->stream.content_len,
                                  llm->stream.finish_reason[0]
                                  ? llm->stream.finish_reason : "stop",
                                  "llm", 1);

    } else if (ctx->act.active && !llm->delivered && !ctx->act.rounds
               && ngx_http_sa_act_route_tool(ctx->is_routed ? &ctx->routed
                                                            : NULL)
                  != SA_TOOL_NONE)
    {
        ngx_log_error(NGX_LOG_WARN, c->log, 0,
                      "support agent: acting for conversation \"%V\" "
                      "without the LLM", &ctx->conversation_id);

        rc = ngx_http_sa_act_turn(r, &ctx->act,
                                  ngx_http_sa_act_route_tool(&ctx->routed));

        if (rc == NGX_OK) {
            ngx_http_sa_chat_acted(ctx);

        } else if (rc != NGX_AGAIN) {
            ngx_http_sa_chat_fail(r, ctx, NGX_HTTP_BAD_GATEWAY,
                                  "llm_unavailable", NGX_HTTP_SA_UNAVAILABLE);
        }

    } else if (ctx->kb.n && !llm->delivered) {
        ngx_log_error(NGX_LOG_WARN, c->log, 0,
                      "support agent: answering conversation \"%V\" from "
                      "the knowledge base without the LLM",
                      &ctx->conversation_id);
        ngx_http_sa_chat_extractive(r, ctx);

    } else {
        ngx_http_sa_chat_fail(r, ctx, NGX_HTTP_BAD_GATEWAY,
                              "llm_unavailable", NGX_HTTP_SA_UNAVAILABLE);
    }

    ngx_http_run_posted_requests(c);
}


/*
 * The turn succeeded: save it, then tell the client.  The reply is saved
 * before "done" is sent, so a client that sees "done" can send the next
 * turn at once.
 */

static void
ngx_http_sa_chat_complete(ngx_http_request_t *r, ngx_http_sa_ctx_t *ctx,
    const char *reply, size_t len, const char *finish_reason,
    const char *source, ngx_uint_t streamed)
{
    int                 rc;
    size_t              jlen, n;
    sa_jw_t            *w;
    sa_msg_t           *save;
    ngx_int_t           out;
    sa_store_t         *store;
    const char         *json;

    store = ngx_http_sa_store();

    /* the customer's message, the tool calls and results of this turn,
       and the reply */

    n = ctx->n_msgs - ctx->turn_start;

    save = ngx_pcalloc(r->pool, (n + 1) * sizeof(sa_msg_t));
    if (save == NULL) {
        ngx_http_sa_chat_fail(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                              "internal_error", NGX_HTTP_SA_UNAVAILABLE);
        return;
    }

    ngx_memcpy(save, &ctx->msgs[ctx->turn_start], n * sizeof(sa_msg_t));
    save[n].role = SA_ROLE_ASSISTANT;
    save[n].content = (char *) reply;
    save[n].content_len = len;
    save[n].ts_ms = ngx_http_sa_now_ms();

    rc = sa_conv_commit_turn(store, (char *) ctx->conversation_id.data,
                             ngx_pid, save, n + 1, save[n].ts_ms);

    if (rc != SA_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "support agent: cannot save turn of conversation "
                      "\"%V\": %s", &ctx->conversation_id,
                      sa_store_last_error(store));

        ngx_http_sa_chat_fail(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                              rc == SA_FULL ? "storage_full"
                                            : "storage_unavailable",
                              "Sorry, I can't save this conversation right "
                              "now. Please try again later.");
        return;
    }

    ctx->turn_open = 0;

    ngx_http_sa_escalate_save(r, &ctx->esc);
    (void) ngx_http_sa_act_save(r, &ctx->act);

    if (ngx_strcmp(source, "llm") == 0 && ctx->kb.n) {
        ngx_http_sa_chat_cite_markers(ctx, reply, len);
    }

    w = sa_jw_new();
    if (w == NULL) {
        ngx_http_sa_chat_finalize(r, ctx, NGX_ERROR);
        return;
    }

    if (sa_jw_open(w) != SA_OK
        || sa_jw_kstr(w, "conversation_id",
                      (char *) ctx->conversation_id.data,
                      ctx->conversation_id.len) != SA_OK
        || (!ctx->sse && sa_jw_kstr(w, "reply", reply, len) != SA_OK)
        || (!ctx->sse && ctx->grounded
            && ngx_http_sa_chat_citations_json(ctx, w) != SA_OK)
        || sa_jw_kstr(w, "finish_reason", finish_reason,
                      ngx_strlen(finish_reason)) != SA_OK
        || sa_jw_kstr(w, "source", source, ngx_strlen(source)) != SA_OK
        || (!ctx->sse && ctx->is_routed
            && ngx_http_sa_chat_route_json(ctx, w) != SA_OK)
        || (!ctx->sse && ctx->handoff
            && (sa_jw_key(w, "handoff") != SA_OK
                || ngx_http_sa_handoff_json(&ctx->esc, w) != SA_OK))
        || (!ctx->sse && ctx->acted && ctx->act.outcome
            && (sa_jw_key(w, "action") != SA_OK
                || ngx_http_sa_act_json(&ctx->act, w) != SA_OK))
        || sa_jw_close(w) != SA_OK)
    {
        sa_jw_free(w);
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "support agent: cannot encode the reply");
        ngx_http_sa_chat_finalize(r, ctx, NGX_ERROR);
        return;
    }

    if (!ctx->sse) {
        json = sa_jw_buf(w, &jlen);
        out = ngx_http_sa_send_json(r, NGX_HTTP_OK, json, jlen);
        sa_jw_free(w);
        ngx_http_sa_chat_finalize(r, ctx, out);
        return;
    }

    out = NGX_OK;

    if (ctx->handoff) {
        out = ngx_http_sa_chat_object_event(r, ctx, "handoff",
                                            ngx_http_sa_chat_handoff_json,
                                            &ctx->esc);
    }

    if (out == NGX_ERROR) {
        /* the client is gone */

    } else if (!streamed) {
        out = ngx_http_sa_chat_delta(r, ctx, reply, len);

    } else if (ctx->text_len) {
        out = ngx_http_sa_chat_flush_text(&ctx->llm);
    }

    if (out != NGX_ERROR) {
        out = ngx_http_sa_chat_citation_events(r, ctx);
    }

    if (out != NGX_ERROR && ctx->acted && ctx->act.outcome) {
        out = ngx_http_sa_chat_object_event(r, ctx, "action",
                                            ngx_http_sa_chat_action_json,
                                            &ctx->act);
    }

    if (out != NGX_ERROR) {
        out = ngx_http_sa_chat_event(r, ctx, "done", w);

    } else {
        sa_jw_free(w);
    }

    if (out != NGX_ERROR) {
        out = ngx_http_sa_sse_finish(r, &ctx->out);
    }

    ngx_http_sa_chat_finalize(r, ctx, out);
}


/*
 * The turn failed: nothing is saved.  Before the stream started the client
 * gets an HTTP error; after, a final "error" event.
 */

static void
ngx_http_sa_chat_fail(ngx_http_request_t *r, ngx_http_sa_ctx_t *ctx,
    ngx_uint_t status, const char *code, const char *message)
{
    ngx_int_t  rc;
    ngx_str_t  json;

    ngx_http_sa_chat_close_turn(ctx);

    if (!ctx->sse) {
        rc = ngx_http_sa_send_error(r, status, code, message,
                                    &ctx->conversation_id);
        ngx_http_sa_chat_finalize(r, ctx, rc);
        return;
    }

    if (ngx_http_sa_error_json(r->pool, code, message, &ctx->conversation_id,
                               &json)
        != NGX_OK)
    {
        ngx_http_sa_chat_finalize(r, ctx, NGX_ERROR);
        return;
    }

    rc = ngx_http_sa_chat_sent(r,
             ngx_http_sa_sse_event(r, &ctx->out, "error", (char *) json.data,
                                   json.len));

    if (rc != NGX_ERROR) {
        rc = ngx_http_sa_sse_finish(r, &ctx->out);
    }

    ngx_http_sa_chat_finalize(r, ctx, rc);
}


/*
 * The turn cannot start: answer with the error and end the request here.
 * NGX_DONE tells the callers that the request is finalized.
 */

static ngx_int_t
ngx_http_sa_chat_reject(ngx_http_request_t *r, ngx_http_sa_ctx_t *ctx,
    ngx_uint_t status, const char *code, const char *message,
    ngx_str_t *conversation_id)
{
    ngx_int_t  rc;

    ngx_http_sa_chat_close_turn(ctx);

    rc = ngx_http_sa_send_error(r, status, code, message, conversation_id);
    ngx_http_sa_chat_finalize(r, ctx, rc);

    return NGX_DONE;
}


/* a turn that is not saved releases the conversation */

static void
ngx_http_sa_chat_close_turn(ngx_http_sa_ctx_t *ctx)
{
    sa_store_t  *store;

    if (!ctx->turn_open) {
        return;
    }

    ctx->turn_open = 0;

    store = ngx_http_sa_store();

    if (store != NULL
        && sa_conv_end_turn(store, (char *) ctx->conversation_id.data,
                            ngx_pid)
           != SA_OK)
    {
        ngx_log_error(NGX_LOG_ERR, ctx->request->connection->log, 0,
                      "support agent: cannot release conversation \"%V\": "
                      "%s", &ctx->conversation_id,
                      sa_store_last_error(store));
    }
}


static void
ngx_http_sa_chat_finalize(ngx_http_request_t *r, ngx_http_sa_ctx_t *ctx,
    ngx_int_t rc)
{
    if (ctx->done) {
        return;
    }

    ctx->done = 1;

    if (ctx->heartbeat.timer_set) {
        ngx_del_timer(&ctx->heartbeat);
    }

    if (ctx->summary_timer.timer_set) {
        ngx_del_timer(&ctx->summary_timer);
    }

    if (ctx->deadline.timer_set) {
        ngx_del_timer(&ctx->deadline);
    }

    ngx_http_finalize_request(r, rc);
}


/* after each write to the client: wait for a slow one, give up on a gone
   one */

static ngx_int_t
ngx_http_sa_chat_sent(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_event_t               *wev;
    ngx_http_core_loc_conf_t  *clcf;

    if (rc == NGX_ERROR || r->connection->error) {
        return NGX_ERROR;
    }

    wev = r->connection->write;

    if (r->connection->buffered) {
        clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

        if (!wev->delayed && !wev->timer_set) {
            ngx_add_timer(wev, clcf->send_timeout);
        }

        if (ngx_handle_write_event(wev, clcf->send_lowat) != NGX_OK) {
            return NGX_ERROR;
        }

        return NGX_AGAIN;
    }

    if (wev->timer_set) {
        ngx_del_timer(wev);
    }

    return NGX_OK;
}


static void
ngx_http_sa_chat_write_handler(ngx_http_request_t *r)
{
    ngx_int_t           rc;
    ngx_event_t        *wev;
    ngx_http_sa_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_support_agent_module);
    wev = r->connection->write;

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, NGX_ETIMEDOUT,
                      "support agent: client timed out");
        r->connection->timedout = 1;
        ngx_http_sa_chat_close_turn(ctx);
        ngx_http_sa_chat_finalize(r, ctx, NGX_HTTP_REQUEST_TIME_OUT);
        return;
    }

    rc = ngx_http_sa_chat_sent(r, ngx_http_sa_out_flush(r, &ctx->out));

    if (rc == NGX_ERROR) {
        ngx_http_sa_chat_close_turn(ctx);
        ngx_http_sa_chat_finalize(r, ctx, NGX_ERROR);
    }
}


static void
ngx_http_sa_chat_heartbeat(ngx_event_t *ev)
{
    ngx_int_t            rc;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;
    ngx_http_sa_ctx_t   *ctx;

    ctx = (ngx_http_sa_ctx_t *) ((u_char *) ev
                                 - offsetof(ngx_http_sa_ctx_t, heartbeat));
    r = ctx->request;
    c = r->connection;

    rc = ngx_http_sa_chat_sent(r,
             ngx_http_sa_sse_comment(r, &ctx->out, "ping"));

    if (rc == NGX_ERROR) {
        ngx_http_sa_chat_close_turn(ctx);
        ngx_http_sa_chat_finalize(r, ctx, NGX_ERROR);

    } else {
        ngx_add_timer(ev, ctx->conf->heartbeat);
    }

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_sa_chat_deadline(ngx_event_t *ev)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;
    ngx_http_sa_ctx_t   *ctx;

    ctx = (ngx_http_sa_ctx_t *) ((u_char *) ev
                                 - offsetof(ngx_http_sa_ctx_t, deadline));
    r = ctx->request;
    c = r->connection;

    ngx_log_error(NGX_LOG_ERR, c->log, 0,
                  "support agent: turn of conversation \"%V\" took longer "
                  "than support_agent_llm_timeout (%M ms)",
                  &ctx->conversation_id, ctx->conf->llm_timeout);

    if (ctx->llm.running || ctx->llm.transfer.easy) {
        ngx_http_sa_llm_cancel(&ctx->llm);
    }

    ngx_http_sa_kb_retrieval_cancel(&ctx->retrieval);
    ngx_http_sa_escalate_cancel(&ctx->esc);
    ngx_http_sa_act_cancel(&ctx->act);

    ngx_http_sa_chat_fail(r, ctx, NGX_HTTP_GATEWAY_TIME_OUT,
                          "llm_unavailable", NGX_HTTP_SA_UNAVAILABLE);

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_sa_chat_cleanup(void *data)
{
    ngx_http_sa_ctx_t  *ctx = data;

    if (ctx->queue.next != NULL) {
        ngx_queue_remove(&ctx->queue);
        ctx->queue.next = NULL;
    }

    if (ctx->heartbeat.timer_set) {
        ngx_del_timer(&ctx->heartbeat);
    }

    if (ctx->deadline.timer_set) {
        ngx_del_timer(&ctx->deadline);
    }

    if (ctx->summary_timer.timer_set) {
        ngx_del_timer(&ctx->summary_timer);
    }

    ngx_http_sa_llm_cancel(&ctx->llm);
    ngx_http_sa_kb_retrieval_cancel(&ctx->retrieval);
    ngx_http_sa_escalate_cancel(&ctx->esc);
    ngx_http_sa_act_free(&ctx->act);

    /* client gone or request terminated mid-turn */
    ngx_http_sa_chat_close_turn(ctx);

    sa_msgs_free(ctx->msgs, ctx->n_msgs);
    ctx->msgs = NULL;
    ctx->n_msgs = 0;

    sa_chat_request_free(&ctx->req);

    free(ctx->text);
    ctx->text = NULL;
}


static ngx_int_t
ngx_http_sa_chat_error(ngx_http_request_t *r, ngx_uint_t level,
    ngx_uint_t status, const char *code, const char *message)
{
    ngx_log_error(level, r->connection->log, 0,
                  "support agent: %ui %s: %s", status, code, message);

    return ngx_http_sa_send_error(r, status, code, message, NULL);
}


static ngx_uint_t
ngx_http_sa_wants_sse(ngx_http_request_t *r)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return 0;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == sizeof("Accept") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Accept",
                               sizeof("Accept") - 1) == 0
            && ngx_strlcasestrn(h[i].value.data,
                                h[i].value.data + h[i].value.len,
                                (u_char *) "text/event-stream",
                                sizeof("text/event-stream") - 2)
               != NULL)
        {
            return 1;
        }
    }
}


static int64_t
ngx_http_sa_now_ms(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (int64_t) tp->sec * 1000 + tp->msec;
}
