
/*
 * Copyright (C) ngx_support_agent authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <lmdb.h>
#include <math.h>
#include <sys/random.h>

#include <yajl/yajl_tree.h>

#include "ngx_http_support_agent_module.h"
#include "ngx_http_support_agent_act.h"
#include "ngx_http_support_agent_store.h"
#include "sa_escalate.h"
#include "sa_json.h"
#include "sa_store.h"


#define NGX_HTTP_SA_ACT_LOOKUP   1      /* GET the order: a no-LLM flow */
#define NGX_HTTP_SA_ACT_EXECUTE  2      /* the confirmed write */
#define NGX_HTTP_SA_ACT_CALL     3      /* GET the order: an LLM's call */

#define NGX_HTTP_SA_ACT_MAX_REPLY  (256 * 1024)


typedef struct {
    const char                *id;
    size_t                     id_len;
    unsigned char             *state;
    size_t                     state_len;
    unsigned char             *audit;
    size_t                     audit_len;
    int64_t                    now_ms;
} ngx_http_sa_act_op_t;


static ngx_int_t ngx_http_sa_act_dbis(ngx_log_t *log);
static ngx_int_t ngx_http_sa_act_confirm(ngx_http_request_t *r,
    ngx_http_sa_action_t *act);
static ngx_int_t ngx_http_sa_act_flow(ngx_http_request_t *r,
    ngx_http_sa_action_t *act);
static ngx_int_t ngx_http_sa_act_get_order(ngx_http_request_t *r,
    ngx_http_sa_action_t *act, const char *order_id, ngx_uint_t step);
static ngx_int_t ngx_http_sa_act_send(ngx_http_request_t *r,
    ngx_http_sa_action_t *act, const char *method, const char *path,
    const char *body, size_t len, ngx_uint_t step);
static void ngx_http_sa_act_fetched(ngx_http_sa_fetch_t *f);
static void ngx_http_sa_act_failed(ngx_event_t *ev);
static void ngx_http_sa_act_free_replies(void *data);
static int ngx_http_sa_act_state_decode(const void *buf, size_t len,
    void *out);
static char *ngx_http_sa_act_strdup(ngx_pool_t *pool, const char *s,
    size_t len);
static void ngx_http_sa_act_executed(ngx_http_request_t *r,
    ngx_http_sa_action_t *act, sa_act_code_e code, const char *detail);
static void ngx_http_sa_act_looked_up(ngx_http_request_t *r,
    ngx_http_sa_action_t *act, sa_act_code_e code, const char *detail);
static void ngx_http_sa_act_call_looked_up(ngx_http_request_t *r,
    ngx_http_sa_action_t *act, sa_act_code_e code, const char *detail);
static ngx_int_t ngx_http_sa_act_next_call(ngx_http_request_t *r,
    ngx_http_sa_action_t *act);
static ngx_int_t ngx_http_sa_act_result(ngx_http_request_t *r,
    ngx_http_sa_action_t *act, sa_act_code_e code, const char *detail,
    const char *data_json);
static sa_act_code_e ngx_http_sa_act_check(ngx_http_sa_action_t *act,
    sa_tool_args_t *args, double *amount, char *detail, size_t cap);
static ngx_int_t ngx_http_sa_act_prepare(ngx_http_request_t *r,
    ngx_http_sa_action_t *act, sa_tool_args_t *args, double amount);
static ngx_int_t ngx_http_sa_act_owner(ngx_http_request_t *r,
    ngx_http_sa_action_t *act);
static ngx_int_t ngx_http_sa_act_say(ngx_http_request_t *r,
    ngx_http_sa_action_t *act, const char *name, const char *detail,
    const char *amount, const char *refund_id, ngx_str_t *out);
static void ngx_http_sa_act_audit(ngx_http_request_t *r,
    ngx_http_sa_action_t *act, sa_tool_e tool, sa_tool_args_t *args,
    const char *outcome, const char *by);
static int ngx_http_sa_act_state_handler(sa_store_t *st,
    struct MDB_txn *txn, void *data);
static void ngx_http_sa_act_clear_pending(ngx_http_sa_action_t *act);
static int64_t ngx_http_sa_act_now(void);


/* prompts/actions.txt without its comments (make test checks they agree) */
static ngx_str_t  ngx_http_sa_default_replies = ngx_string(
"[ask_order_id]\n"
"Sure, I can help with that. What is the order number? It starts\n"
"with #W, like #W1234567.\n"
"\n"
"[ask_email]\n"
"To look at an order I need to check it's yours: what e-mail address did\n"
"you use for it?\n"
"\n"
"[verification_failed]\n"
"That e-mail address doesn't match order #{order_id}, so I can't show or\n"
"change it. Please check the order number and the e-mail address you\n"
"used when ordering, or ask for a human colleague.\n"
"\n"
"[order_not_found]\n"
"I couldn't find an order #{order_id}. Could you check the number? It\n"
"starts with #W, like #W1234567.\n"
"\n"
"[order_status]\n"
"Order #{order_id} is {status}. It has {items}. Total {total}\n"
"{currency}.{tracking_line}\n"
"\n"
"[refund_ask_amount]\n"
"How much would you like refunded for order #{order_id}? Please write\n"
"the amount in dollars, like $20.\n"
"\n"
"[refund_confirm]\n"
"I can refund {amount} {currency} for order #{order_id} to the original\n"
"payment method. Reply \"yes\" to confirm; anything else cancels.\n"
"\n"
"[refund_done]\n"
"Done: {amount} {currency} refunded for order #{order_id} (refund\n"
"{refund_id}). It goes back to the original payment method: a gift card\n"
"at once, a card or PayPal usually within 5 to 7 business days.\n"
"\n"
"[refund_not_allowed]\n"
"I can't refund order #{order_id}: {detail}. Nothing was changed.\n"
"\n"
"[refund_over_limit]\n"
"A refund of {amount} {currency} for order #{order_id} is more than I\n"
"can do on my own: a person from our team has to do it. Nothing has\n"
"been refunded yet.\n"
"\n"
"[cancel_ask_reason]\n"
"Why would you like to cancel order #{order_id}: is it no longer needed,\n"
"or was it ordered by mistake?\n"
"\n"
"[cancel_confirm]\n"
"I can cancel order #{order_id}. The {total} {currency} you paid goes\n"
"back to the original payment method. Reply \"yes\" to confirm; anything\n"
"else keeps the order as it is.\n"
"\n"
"[cancel_done]\n"
"Done: order #{order_id} is cancelled. What you paid goes back to the\n"
"original payment method: a gift card at once, a card or PayPal usually\n"
"within 5 to 7 business days.\n"
"\n"
"[cancel_not_allowed]\n"
"I can't cancel order #{order_id}: {detail}. Nothing was changed.\n"
"\n"
"[address_ask]\n"
"What is the new shipping address for order #{order_id}? Please write it\n"
"on one line as: street, [apartment,] city, state ZIP. For example: 123\n"
"Main St, Apt 4, Springfield, IL 62704.\n"
"\n"
"[address_confirm]\n"
"I can change the shipping address of order #{order_id} to {address}.\n"
"Reply \"yes\" to confirm; anything else keeps the current address.\n"
"\n"
"[address_done]\n"
"Done: order #{order_id} will be shipped to {address}.\n"
"\n"
"[address_not_allowed]\n"
"I can't change the address of order #{order_id}: {detail}. Nothing was\n"
"changed.\n"
"\n"
"[action_cancelled]\n"
"OK, I haven't done anything. Let me know if there's something else I\n"
"can help with.\n"
"\n"
"[service_unavailable]\n"
"Our order system isn't answering right now; nothing was changed. Please\n"
"try again in a few minutes.\n"
"\n"
"[unknown_request]\n"
"I can look up an order, refund it, change its shipping address or\n"
"cancel it. What would you like to do? Please include the order number.\n");


static unsigned    ngx_http_sa_act_dbi;
static unsigned    ngx_http_sa_audit_dbi;
static ngx_uint_t  ngx_http_sa_act_dbis_open;
static ngx_pid_t   ngx_http_sa_act_dbis_pid;


/* configuration */

void
ngx_http_sa_act_init_conf(ngx_http_sa_act_conf_t *conf)
{
    conf->api.timeout = NGX_CONF_UNSET_MSEC;
    conf->tools = NGX_CONF_UNSET_UINT;
    conf->rounds = NGX_CONF_UNSET_UINT;
    conf->refund_limit = -1;
    conf->identity = NGX_CONF_UNSET_PTR;
}


char *
ngx_http_sa_act_merge(ngx_conf_t *cf, ngx_http_sa_act_conf_t *conf,
    ngx_http_sa_act_conf_t *prev)
{
    char                *json, err[160];
    u_char              *p;
    size_t               len;
    ngx_pool_cleanup_t  *cln;

    if (conf->api.url.data == NULL) {
        conf->api.url = prev->api.url;
    }

    if (conf->api_key.data == NULL) {
        conf->api_key = prev->api_key;
    }

    ngx_conf_merge_msec_value(conf->api.timeout, prev->api.timeout, 5000);
    ngx_conf_merge_uint_value(conf->tools, prev->tools, SA_TOOLS_ALL);
    ngx_conf_merge_uint_value(conf->rounds, prev->rounds, 5);
    ngx_conf_merge_ptr_value(conf->identity, prev->identity, NULL);

    if (conf->refund_limit < 0) {
        conf->refund_limit = prev->refund_limit < 0 ? 500
                                                    : prev->refund_limit;
    }

    if (conf->replies_text.data == NULL) {
        conf->replies_text = prev->replies_text.data
                             ? prev->replies_text
                             : ngx_http_sa_default_replies;
    }

    if (conf->api.timeout == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"support_agent_orders_timeout\" must be "
                           "positive");
        return NGX_CONF_ERROR;
    }

    conf->api.connect_timeout = ngx_min(conf->api.timeout, 5000);
    conf->api.max_body = NGX_HTTP_SA_ACT_MAX_REPLY;

    if (conf->api_key.len && conf->api.key_header.len == 0) {
        conf->api.key_header.data = ngx_pnalloc(cf->pool,
                                                sizeof("Authorization: "
                                                       "Bearer ")
                                                + conf->api_key.len);
        if (conf->api.key_header.data == NULL) {
            return NGX_CONF_ERROR;
        }

        conf->api.key_header.len =
            ngx_sprintf(conf->api.key_header.data,
                        "Authorization: Bearer %V%Z", &conf->api_key)
            - conf->api.key_header.data - 1;
    }

    if (conf->api.url.len == 0) {
        return NGX_CONF_OK;
    }

    if (prev->replies != NULL && conf->replies_text.data
                                 == prev->replies_text.data)
    {
        conf->replies = prev->replies;

    } else {
        if (sa_templates_parse((char *) conf->replies_text.data,
                               conf->replies_text.len, &conf->replies, err,
                               sizeof(err))
            != SA_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid \"support_agent_action_replies\": "
                               "%s", err);
            return NGX_CONF_ERROR;
        }

        /* freed with the configuration */
        cln = ngx_pool_cleanup_add(cf->pool, 0);
        if (cln == NULL) {
            sa_templates_free(conf->replies);
            conf->replies = NULL;
            return NGX_CONF_ERROR;
        }

        cln->handler = ngx_http_sa_act_free_replies;
        cln->data = conf->replies;
    }

    if (conf->tools_json.data == NULL && conf->tools) {
        if (sa_tools_json((unsigned) conf->tools, &json, &len) != SA_OK) {
            return NGX_CONF_ERROR;
        }

        conf->tools_json.data = ngx_pnalloc(cf->pool, len + 1);
        if (conf->tools_json.data == NULL) {
            free(json);
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(conf->tools_json.data, json, len + 1);
        conf->tools_json.len = len;
        free(json);

        /* the last round: the tools stay described (the history has their
           calls) but the model must answer in words */
        conf->tools_json_final.data = ngx_pnalloc(cf->pool, len + 1);
        if (conf->tools_json_final.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(conf->tools_json_final.data, conf->tools_json.data,
                   len + 1);
        conf->tools_json_final.len = len;

        p = ngx_strlcasestrn(conf->tools_json_final.data,
                             conf->tools_json_final.data + len,
                             (u_char *) "\"tool_choice\":\"auto\"",
                             sizeof("\"tool_choice\":\"auto\"") - 2);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(p + sizeof("\"tool_choice\":\"") - 1, "none", 4);
    }

    return NGX_CONF_OK;
}


static int
ngx_http_sa_act_state_decode(const void *buf, size_t len, void *out)
{
    return sa_act_state_decode(buf, len, out);
}


static void
ngx_http_sa_act_free_replies(void *data)
{
    sa_templates_free(data);
}


char *
ngx_http_sa_act_tools(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_sa_act_conf_t *acf;

    ngx_str_t   *value;
    sa_tool_e    tool;
    ngx_uint_t   i, set;

    acf = (ngx_http_sa_act_conf_t *) ((u_char *) conf + cmd->offset);

    if (acf->tools != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    set = 0;

    for (i = 1; i < cf->args->nelts; i++) {
        if (cf->args->nelts == 2 && ngx_strcmp(value[i].data, "off") == 0) {
            break;
        }

        tool = sa_tool_by_name((char *) value[i].data, value[i].len);

        if (tool == SA_TOOL_NONE) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "unknown tool \"%V\" in \"%V\": "
                               "lookup_order, process_refund, "
                               "update_shipping_address, cancel_order, or "
                               "\"off\" alone", &value[i], &cmd->name);
            return NGX_CONF_ERROR;
        }

        set |= 1 << tool;
    }

    acf->tools = set;

    return NGX_CONF_OK;
}


char *
ngx_http_sa_act_identity(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_sa_act_conf_t *acf;

    ngx_str_t                         *value;
    ngx_http_compile_complex_value_t   ccv;

    acf = (ngx_http_sa_act_conf_t *) ((u_char *) conf + cmd->offset);

    if (acf->identity != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    acf->identity = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (acf->identity == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));
    ccv.cf = cf;
    ccv.value = &value[1];
    ccv.complex_value = acf->identity;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* a turn */

ngx_int_t
ngx_http_sa_act_begin(ngx_http_request_t *r, ngx_http_sa_action_t *act,
    ngx_http_sa_act_conf_t *conf, ngx_str_t *conversation_id,
    const sa_msg_t *user, ngx_str_t *confirm)
{
    u_char      *p;
    ngx_str_t    trusted;

    if (conf->api.url.len == 0) {
        return NGX_DECLINED;
    }

    act->conf = conf;
    act->request = r;
    act->conversation_id = conversation_id;
    act->message = user->content;
    act->message_len = user->content_len;
    act->tool = SA_TOOL_NONE;

    if (confirm != NULL) {
        act->confirm_id = *confirm;
    }

    if (ngx_http_sa_act_dbis(r->connection->log) != NGX_OK) {
        return NGX_ERROR;
    }

    sa_act_state_init(&act->state);

    switch (ngx_http_sa_store_read(r->connection->log, ngx_http_sa_act_dbi,
                                   conversation_id,
                                   ngx_http_sa_act_state_decode,
                                   &act->state, "actions of conversation"))
    {
    case NGX_ERROR:
        return NGX_ERROR;

    case NGX_ABORT:
        /* a damaged record starts over rather than block every turn */
        sa_act_state_init(&act->state);
        act->dirty = 1;
        break;

    default:
        break;
    }

    /* nginx vouches for the customer (auth_request, a session layer) */

    if (conf->identity != NULL) {
        if (ngx_http_complex_value(r, conf->identity, &trusted) != NGX_OK) {
            return NGX_ERROR;
        }

        if (trusted.len && trusted.len < sizeof(act->state.verified_email)) {
            /* lowercased in a copy: the value may be the configuration's
               or a request header's own bytes */
            p = ngx_pnalloc(r->pool, trusted.len + 1);
            if (p == NULL) {
                return NGX_ERROR;
            }

            ngx_strlow(p, trusted.data, trusted.len);
            p[trusted.len] = '\0';

            if (act->state.verified_by != 2
                || ngx_strcmp(act->state.verified_email, p) != 0)
            {
                ngx_memcpy(act->state.verified_email, p, trusted.len + 1);
                act->state.verified_by = 2;
                act->dirty = 1;
            }
        }
    }

    /* an e-mail address in this message is a claim, checked against the
       order before it counts */
    if (!sa_text_email(act->message, act->message_len, act->email,
                       sizeof(act->email)))
    {
        act->email[0] = '\0';
    }

    act->active = 1;

    return NGX_OK;
}


sa_tool_e
ngx_http_sa_act_route_tool(ngx_http_sa_routed_t *routed)
{
    size_t       i;
    ngx_str_t   *route;

    static const struct {
        const char  *name;
        sa_tool_e    tool;
    } map[] = {
        { "action:lookup_order", SA_TOOL_LOOKUP_ORDER },
        { "action:track_order", SA_TOOL_LOOKUP_ORDER },
        { "action:order_status", SA_TOOL_LOOKUP_ORDER },
        { "action:refund", SA_TOOL_PROCESS_REFUND },
        { "action:get_refund", SA_TOOL_PROCESS_REFUND },
        { "action:process_refund", SA_TOOL_PROCESS_REFUND },
        { "action:cancel_order", SA_TOOL_CANCEL_ORDER },
        { "action:change_address", SA_TOOL_UPDATE_ADDRESS },
        { "action:modify_address", SA_TOOL_UPDATE_ADDRESS },
        { "action:update_shipping_address", SA_TOOL_UPDATE_ADDRESS }
    };

    if (routed == NULL || routed->kind != SA_ROUTE_ACTION) {
        return SA_TOOL_NONE;
    }

    route = &routed->route;

    for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (ngx_strlen(map[i].name) == route->len
            && ngx_strncmp(map[i].name, route->data, route->len) == 0)
        {
            return map[i].tool;
        }
    }

    return SA_TOOL_NONE;
}


ngx_int_t
ngx_http_sa_act_turn(ngx_http_request_t *r, ngx_http_sa_action_t *act,
    sa_tool_e tool)
{
    if (!act->active) {
        return NGX_DECLINED;
    }

    if (act->state.pending) {
        return ngx_http_sa_act_confirm(r, act);
    }

    if (tool == SA_TOOL_NONE || !(act->conf->tools & (1 << tool))) {
        return NGX_DECLINED;
    }

    act->tool = tool;

    return ngx_http_sa_act_flow(r, act);
}


/*
 * A pending action and the customer's next message: a clear "yes" (or a
 * confirm carrying its id) runs it; anything else cancels it.  Decided
 * here, never by the LLM.
 */

static ngx_int_t
ngx_http_sa_act_confirm(ngx_http_request_t *r, ngx_http_sa_action_t *act)
{
    int              yes;
    char            *path, *body, err[160], key[128];
    size_t           len;
    ngx_int_t        rc;
    const char      *method;
    sa_act_state_t  *s;

    s = &act->state;

    if (act->confirm_id.len) {
        yes = act->confirm_id.len == ngx_strlen(s->pending_id)
              && ngx_strncmp(act->confirm_id.data, s->pending_id,
                             act->confirm_id.len) == 0;

    } else {
        yes = sa_confirmation(act->message, act->message_len)
              == SA_CONFIRM_YES;
    }

    if (sa_tool_args_parse((sa_tool_e) s->pending_tool, s->pending_args,
                           ngx_strlen(s->pending_args), &act->args, err,
                           sizeof(err))
        != SA_OK)
    {
        /* our own record: damaged, or an older format */
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "support agent: the pending action of conversation "
                      "\"%V\" cannot be read (%s); cancelled",
                      act->conversation_id, err);
        yes = 0;
    }

    act->tool = (sa_tool_e) s->pending_tool;

    if (!yes) {
        ngx_http_sa_act_audit(r, act, act->tool, NULL, "cancelled",
                              "customer");
        ngx_http_sa_act_clear_pending(act);
        act->outcome = "cancelled";

        if (ngx_http_sa_act_say(r, act, "action_cancelled", NULL, NULL,
                                NULL, &act->reply)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (sa_tool_request(&act->args, &method, &path, &body, &len) != SA_OK
        || sa_act_idempotency_key((char *) act->conversation_id->data, s,
                                  key, sizeof(key))
           != SA_OK)
    {
        return NGX_ERROR;
    }

    ngx_snprintf((u_char *) act->key, sizeof(act->key) - 1,
                 "Idempotency-Key: %s%Z", key);

    rc = ngx_http_sa_act_send(r, act, method, path, body, body ? len : 0,
                              NGX_HTTP_SA_ACT_EXECUTE);
    free(path);
    free(body);

    return rc;
}


/* the no-LLM flow of a tool: which order, whose, then what */

static ngx_int_t
ngx_http_sa_act_flow(ngx_http_request_t *r, ngx_http_sa_action_t *act)
{
    char    ids[4][SA_ORDER_ID_MAX];
    size_t  n;

    n = sa_order_ids(act->message, act->message_len, ids, 4);

    if (n) {
        ngx_cpystrn((u_char *) act->state.last_order, (u_char *) ids[0],
                    sizeof(act->state.last_order));
        act->dirty = 1;
    }

    /* what is missing is asked for; the answer continues this flow */
    act->state.awaiting_tool = act->tool;
    act->dirty = 1;

    if (act->state.last_order[0] == '\0') {
        act->outcome = "needs_order";
        return ngx_http_sa_act_say(r, act, "ask_order_id", NULL, NULL, NULL,
                                   &act->reply);
    }

    if (act->state.verified_email[0] == '\0' && act->email[0] == '\0') {
        act->outcome = "needs_identity";
        return ngx_http_sa_act_say(r, act, "ask_email", NULL, NULL, NULL,
                                   &act->reply);
    }

    return ngx_http_sa_act_get_order(r, act, act->state.last_order,
                                     NGX_HTTP_SA_ACT_LOOKUP);
}


sa_tool_e
ngx_http_sa_act_awaited(ngx_http_sa_action_t *act)
{
    char          ids[1][SA_ORDER_ID_MAX];
    sa_address_t  address;

    if (!act->active || act->state.pending
        || act->state.awaiting_tool < 0
        || act->state.awaiting_tool >= SA_TOOL_COUNT)
    {
        return SA_TOOL_NONE;
    }

    if (act->email[0]
        || sa_order_ids(act->message, act->message_len, ids, 1)
        || (act->state.awaiting_tool == SA_TOOL_UPDATE_ADDRESS
            && sa_text_address(act->message, act->message_len, &address)))
    {
        return (sa_tool_e) act->state.awaiting_tool;
    }

    return SA_TOOL_NONE;
}


static ngx_int_t
ngx_http_sa_act_get_order(ngx_http_request_t *r, ngx_http_sa_action_t *act,
    const char *order_id, ngx_uint_t step)
{
    char            *path, *body;
    size_t           len;
    ngx_int_t        rc;
    const char      *method;
    sa_tool_args_t   args;

    ngx_memzero(&args, sizeof(sa_tool_args_t));
    args.tool = SA_TOOL_LOOKUP_ORDER;
    ngx_cpystrn((u_char *) args.order_id, (u_char *) order_id,
                sizeof(args.order_id));

    if (sa_tool_request(&args, &method, &path, &body, &len) != SA_OK) {
        return NGX_ERROR;
    }

    act->key[0] = '\0';

    rc = ngx_http_sa_act_send(r, act, method, path, NULL, 0, step);
    free(path);
    free(body);

    return rc;
}


static ngx_int_t
ngx_http_sa_act_send(ngx_http_request_t *r, ngx_http_sa_action_t *act,
    const char *method, const char *path, const char *body, size_t len,
    ngx_uint_t step)
{
    ngx_memzero(&act->fetch, sizeof(ngx_http_sa_fetch_t));

    act->fetch.log = r->connection->log;
    act->fetch.data = act;
    act->fetch.on_done = ngx_http_sa_act_fetched;
    act->fetch.what = "orders API";
    act->fetch.method = method;
    act->fetch.header = act->key[0] ? act->key : NULL;
    act->step = step;
    act->started = ngx_current_msec;

    if (ngx_http_sa_fetch_start(&act->fetch, &act->conf->api, path,
                                body ? body : "", len)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "support agent: %s", act->fetch.failure);

        /* answered as "unavailable" from the event loop, like a request
           that failed on the way */
        act->fetch.rc = NGX_ERROR;
        act->fetch.status = 0;
        act->failed.handler = ngx_http_sa_act_failed;
        act->failed.data = act;
        act->failed.log = r->connection->log;
        act->running = 1;

        ngx_post_event(&act->failed, &ngx_posted_events);

        return NGX_AGAIN;
    }

    act->running = 1;

    return NGX_AGAIN;
}


static void
ngx_http_sa_act_fetched(ngx_http_sa_fetch_t *f)
{
    char                   detail[320];
    long                   status;
    ngx_uint_t             step;
    sa_act_code_e          code;
    ngx_http_request_t    *r;
    ngx_http_sa_action_t  *act;

    act = f->data;
    r = act->request;
    act->running = 0;
    step = act->step;

    /* 0: no usable answer (connection, time limit, a reply cut short or
       too big); an error status keeps its body */
    status = (f->rc == NGX_OK || (f->status >= 300 && f->status < 600))
             ? f->status : 0;

    code = sa_act_from_http(status, f->body ? (char *) f->body : "", f->len,
                            detail, sizeof(detail));

    if (code == SA_ACT_UNAVAILABLE) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "support agent: orders API: %s",
                      f->failure[0] ? f->failure : detail);
    }

    if (step == NGX_HTTP_SA_ACT_EXECUTE) {
        ngx_http_sa_act_executed(r, act, code, detail);

    } else if (step == NGX_HTTP_SA_ACT_LOOKUP) {
        ngx_http_sa_act_looked_up(r, act, code, detail);

    } else {
        ngx_http_sa_act_call_looked_up(r, act, code, detail);
        return;
    }

    ngx_http_sa_fetch_cancel(f);
    act->step = 0;

    act->on_done(act->data);
}


static void
ngx_http_sa_act_failed(ngx_event_t *ev)
{
    ngx_connection_t      *c;
    ngx_http_sa_action_t  *act;

    act = ev->data;
    c = act->request->connection;

    ngx_http_sa_act_fetched(&act->fetch);
    ngx_http_run_posted_requests(c);
}


static void
ngx_http_sa_act_executed(ngx_http_request_t *r, ngx_http_sa_action_t *act,
    sa_act_code_e code, const char *detail)
{
    char         amount[32], *refund_id;
    yajl_val     root, v;
    const char  *name, *path[] = { "refund_id", NULL };
    const char  *amount_path[] = { "amount", NULL };
    ngx_str_t   *reply;
    ngx_http_sa_fetch_t  *f;

    f = &act->fetch;
    reply = &act->reply;
    refund_id = NULL;
    root = NULL;
    amount[0] = '\0';

    if (act->state.pending_amount > 0) {
        ngx_snprintf((u_char *) amount, sizeof(amount) - 1, "%.2f%Z",
                     act->state.pending_amount);
    }

    switch (code) {

    case SA_ACT_OK:
        act->outcome = "done";

        if (act->tool == SA_TOOL_PROCESS_REFUND) {
            root = f->body ? sa_json_tree_parse((char *) f->body, f->len,
                                                NULL, 0)
                           : NULL;
            v = root ? yajl_tree_get(root, path, yajl_t_string) : NULL;
            refund_id = v ? YAJL_GET_STRING(v) : "(pending)";

            v = root ? yajl_tree_get(root, amount_path, yajl_t_number)
                     : NULL;

            if (v != NULL && isfinite(YAJL_GET_DOUBLE(v))) {
                ngx_snprintf((u_char *) amount, sizeof(amount) - 1,
                             "%.2f%Z", YAJL_GET_DOUBLE(v));
            }
        }

        name = act->tool == SA_TOOL_PROCESS_REFUND ? "refund_done"
               : act->tool == SA_TOOL_CANCEL_ORDER ? "cancel_done"
               : "address_done";
        ngx_http_sa_act_audit(r, act, act->tool, &act->args, "done",
                              "customer");
        ngx_http_sa_act_clear_pending(act);
        break;

    case SA_ACT_UNAVAILABLE:
        /* kept: "yes" again retries with the same key */
        act->outcome = "failed";
        name = "service_unavailable";
        ngx_http_sa_act_audit(r, act, act->tool, &act->args, "failed",
                              "customer");
        break;

    case SA_ACT_ORDER_NOT_FOUND:
        act->outcome = "refused";
        name = "order_not_found";
        ngx_http_sa_act_audit(r, act, act->tool, &act->args, "refused",
                              "customer");
        ngx_http_sa_act_clear_pending(act);
        break;

    default:
        act->outcome = "refused";
        name = act->tool == SA_TOOL_PROCESS_REFUND ? "refund_not_allowed"
               : act->tool == SA_TOOL_CANCEL_ORDER ? "cancel_not_allowed"
               : "address_not_allowed";
        ngx_http_sa_act_audit(r, act, act->tool, &act->args, "refused",
                              "customer");
        ngx_http_sa_act_clear_pending(act);
        break;
    }

    ngx_cpystrn((u_char *) act->order.order_id, (u_char *) act->args.order_id,
                sizeof(act->order.order_id));

    if (ngx_http_sa_act_say(r, act, name, detail,
                            amount[0] ? amount : NULL, refund_id, reply)
        != NGX_OK)
    {
        ngx_str_null(reply);
    }

    if (root != NULL) {
        yajl_tree_free(root);
    }
}


static void
ngx_http_sa_act_looked_up(ngx_http_request_t *r, ngx_http_sa_action_t *act,
    sa_act_code_e code, const char *detail)
{
    char            err[160], amount_text[32];
    double          amount;
    ngx_int_t       rc;
    const char     *name;
    sa_tool_args_t  args;

    ngx_cpystrn((u_char *) act->order.order_id,
                (u_char *) act->state.last_order,
                sizeof(act->order.order_id));

    /* nothing more is awaited, unless the new address is asked below */
    act->state.awaiting_tool = SA_TOOL_NONE;
    act->dirty = 1;

    if (code == SA_ACT_OK
        && sa_order_parse((char *) act->fetch.body, act->fetch.len,
                          &act->order, err, sizeof(err))
           != SA_OK)
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "support agent: orders API: unusable order: %s", err);
        code = SA_ACT_UNAVAILABLE;
    }

    if (code != SA_ACT_OK) {
        act->outcome = code == SA_ACT_ORDER_NOT_FOUND ? "not_found"
                                                      : "failed";
        (void) ngx_http_sa_act_say(r, act,
                                   code == SA_ACT_ORDER_NOT_FOUND
                                   ? "order_not_found"
                                   : "service_unavailable",
                                   detail, NULL, NULL, &act->reply);
        return;
    }

    if (ngx_http_sa_act_owner(r, act) != NGX_OK) {
        act->outcome = "verification_failed";
        (void) ngx_http_sa_act_say(r, act, "verification_failed", NULL, NULL,
                                   NULL, &act->reply);
        return;
    }

    if (act->tool == SA_TOOL_LOOKUP_ORDER) {
        act->outcome = "done";
        ngx_http_sa_act_audit(r, act, act->tool, NULL, "done", "flow");
        (void) ngx_http_sa_act_say(r, act, "order_status", NULL, NULL, NULL,
                                   &act->reply);
        return;
    }

    ngx_memzero(&args, sizeof(sa_tool_args_t));
    args.tool = act->tool;
    ngx_cpystrn((u_char *) args.order_id, (u_char *) act->order.order_id,
                sizeof(args.order_id));

    if (act->tool == SA_TOOL_PROCESS_REFUND) {
        if (!sa_text_amount(act->message, act->message_len, &args.amount)) {
            args.amount = 0;
        }

    } else if (act->tool == SA_TOOL_CANCEL_ORDER) {
        ngx_cpystrn((u_char *) args.reason, (u_char *) "no longer needed",
                    sizeof(args.reason));

    } else if (!sa_text_address(act->message, act->message_len,
                                &args.address))
    {
        act->outcome = "needs_address";
        act->state.awaiting_tool = SA_TOOL_UPDATE_ADDRESS;
        (void) ngx_http_sa_act_say(r, act, "address_ask", NULL, NULL, NULL,
                                   &act->reply);
        return;
    }

    code = ngx_http_sa_act_check(act, &args, &amount, err, sizeof(err));

    ngx_snprintf((u_char *) amount_text, sizeof(amount_text) - 1, "%.2f%Z",
                 amount);

    if (code == SA_ACT_NEEDS_HUMAN) {
        act->outcome = "needs_human";
        (void) ngx_http_sa_act_say(r, act, "refund_over_limit", NULL,
                                   amount_text, NULL, &act->reply);
        return;
    }

    if (code != SA_ACT_OK) {
        act->outcome = "refused";
        name = act->tool == SA_TOOL_PROCESS_REFUND ? "refund_not_allowed"
               : act->tool == SA_TOOL_CANCEL_ORDER ? "cancel_not_allowed"
               : "address_not_allowed";
        (void) ngx_http_sa_act_say(r, act, name, err, NULL, NULL,
                                   &act->reply);
        return;
    }

    rc = ngx_http_sa_act_prepare(r, act, &args, amount);

    if (rc != NGX_OK) {
        ngx_str_null(&act->reply);
        return;
    }

    name = act->tool == SA_TOOL_PROCESS_REFUND ? "refund_confirm"
           : act->tool == SA_TOOL_CANCEL_ORDER ? "cancel_confirm"
           : "address_confirm";

    act->args = args;

    (void) ngx_http_sa_act_say(r, act, name, NULL, amount_text, NULL,
                               &act->reply);
}


/* the order is the customer's: the verified e-mail, or the one given now
   (which verifies the conversation) */

static ngx_int_t
ngx_http_sa_act_owner(ngx_http_request_t *r, ngx_http_sa_action_t *act)
{
    const char  *want;

    want = act->state.verified_email[0] ? act->state.verified_email
                                        : act->email;

    if (!sa_order_email_matches(&act->order, want)) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "support agent: conversation \"%V\" asked about order "
                      "\"%s\" of another customer: refused",
                      act->conversation_id, act->order.order_id);
        return NGX_DECLINED;
    }

    if (act->state.verified_email[0] == '\0') {
        ngx_cpystrn((u_char *) act->state.verified_email,
                    (u_char *) act->email,
                    sizeof(act->state.verified_email));
        act->state.verified_by = 1;
        act->dirty = 1;

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "support agent: conversation \"%V\" verified by the "
                      "e-mail address of order \"%s\"",
                      act->conversation_id, act->order.order_id);
    }

    ngx_cpystrn((u_char *) act->state.last_order,
                (u_char *) act->order.order_id,
                sizeof(act->state.last_order));
    act->dirty = 1;

    return NGX_OK;
}


/*
 * The rules a write must pass before the customer is even asked: what the
 * order allows, and how much may be refunded without a person.
 */

static sa_act_code_e
ngx_http_sa_act_check(ngx_http_sa_action_t *act, sa_tool_args_t *args,
    double *amount, char *detail, size_t cap)
{
    size_t       i, j;
    sa_order_t  *o;

    o = &act->order;
    *amount = 0;
    detail[0] = '\0';

    switch (args->tool) {

    case SA_TOOL_PROCESS_REFUND:
        if (ngx_strcmp(o->status, "delivered") != 0) {
            ngx_snprintf((u_char *) detail, cap - 1,
                         "order #%s is %s, not delivered%Z", o->order_id,
                         o->status);
            return SA_ACT_NOT_ALLOWED;
        }

        if (args->n_items) {
            for (i = 0; i < args->n_items; i++) {
                for (j = 0; j < o->n_items; j++) {
                    if (ngx_strcmp(o->items[j].item_id, args->item_ids[i])
                        == 0)
                    {
                        *amount += o->items[j].price;
                        break;
                    }
                }

                if (j == o->n_items) {
                    ngx_snprintf((u_char *) detail, cap - 1,
                                 "item %s is not in order #%s%Z",
                                 args->item_ids[i], o->order_id);
                    return SA_ACT_NOT_ALLOWED;
                }
            }

        } else {
            *amount = args->amount > 0 ? args->amount : o->refundable;
        }

        if (*amount <= 0) {
            ngx_snprintf((u_char *) detail, cap - 1,
                         "nothing is left to refund%Z");
            return SA_ACT_NOT_ALLOWED;
        }

        if (*amount > o->refundable + 0.005) {
            ngx_snprintf((u_char *) detail, cap - 1,
                         "%.2f is more than the refundable %.2f %s%Z",
                         *amount, o->refundable, o->currency);
            return SA_ACT_NOT_ALLOWED;
        }

        if (act->conf->refund_limit > 0
            && *amount > act->conf->refund_limit + 0.005)
        {
            return SA_ACT_NEEDS_HUMAN;
        }

        if (args->n_items == 0) {
            args->amount = *amount;
        }

        return SA_ACT_OK;

    case SA_TOOL_CANCEL_ORDER:
        *amount = o->total;

        if (ngx_strcmp(o->status, "pending") != 0) {
            ngx_snprintf((u_char *) detail, cap - 1,
                         "order #%s is %s; only pending orders can be "
                         "cancelled%Z", o->order_id, o->status);
            return SA_ACT_NOT_ALLOWED;
        }

        return SA_ACT_OK;

    case SA_TOOL_UPDATE_ADDRESS:
        if (ngx_strcmp(o->status, "pending") != 0) {
            ngx_snprintf((u_char *) detail, cap - 1,
                         "order #%s is %s; only pending orders can change "
                         "address%Z", o->order_id, o->status);
            return SA_ACT_NOT_ALLOWED;
        }

        return SA_ACT_OK;

    default:
        return SA_ACT_OK;
    }
}


/* the write waits for the customer's "yes": stored with the conversation */

static ngx_int_t
ngx_http_sa_act_prepare(ngx_http_request_t *r, ngx_http_sa_action_t *act,
    sa_tool_args_t *args, double amount)
{
    uint32_t  rnd;

    if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd)) {
        rnd = (uint32_t) ngx_random();
    }

    if (sa_act_prepare(&act->state, args, rnd, ngx_http_sa_act_now())
        != SA_OK)
    {
        return NGX_ERROR;
    }

    /* a refund by items: the amount their prices make */
    if (args->tool == SA_TOOL_PROCESS_REFUND) {
        act->state.pending_amount = amount;
    }

    act->dirty = 1;
    act->outcome = "pending_confirmation";
    act->args = *args;

    ngx_http_sa_act_audit(r, act, args->tool, args, "pending", "flow");

    return NGX_OK;
}


static void
ngx_http_sa_act_clear_pending(ngx_http_sa_action_t *act)
{
    sa_act_clear_pending(&act->state);
    act->dirty = 1;
}


/* the LLM's tool calls: one at a time, each checked as untrusted input */

ngx_int_t
ngx_http_sa_act_tool_calls(ngx_http_request_t *r, ngx_http_sa_action_t *act,
    sa_llm_stream_t *stream)
{
    size_t               i;
    sa_llm_tool_call_t  *c;

    act->n_calls = stream->n_tool_calls;
    act->call = 0;
    act->rounds++;

    act->calls = ngx_pcalloc(r->pool,
                             act->n_calls * sizeof(sa_llm_tool_call_t));
    act->results = ngx_pcalloc(r->pool, act->n_calls * sizeof(sa_msg_t));

    if (act->calls == NULL || act->results == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < act->n_calls; i++) {
        c = &stream->tool_calls[i];

        act->calls[i].id = c->id ? ngx_http_sa_act_strdup(r->pool, c->id,
                                                          ngx_strlen(c->id))
                                 : NULL;
        act->calls[i].name = c->name
                             ? ngx_http_sa_act_strdup(r->pool, c->name,
                                                      ngx_strlen(c->name))
                             : NULL;
        act->calls[i].arguments = ngx_http_sa_act_strdup(r->pool,
                                                         c->arguments,
                                                         c->arguments_len);
        act->calls[i].arguments_len = c->arguments_len;

        if ((c->id && act->calls[i].id == NULL)
            || (c->name && act->calls[i].name == NULL)
            || act->calls[i].arguments == NULL)
        {
            return NGX_ERROR;
        }
    }

    return ngx_http_sa_act_next_call(r, act);
}


static ngx_int_t
ngx_http_sa_act_next_call(ngx_http_request_t *r, ngx_http_sa_action_t *act)
{
    char                 err[160];
    sa_tool_e            tool;
    sa_llm_tool_call_t  *c;

    while (act->call < act->n_calls) {
        c = &act->calls[act->call];

        tool = c->name ? sa_tool_by_name(c->name, ngx_strlen(c->name))
                       : SA_TOOL_NONE;

        if (tool == SA_TOOL_NONE || !(act->conf->tools & (1 << tool))) {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "support agent: the LLM called an unknown tool "
                          "in conversation \"%V\"", act->conversation_id);

            if (ngx_http_sa_act_result(r, act, SA_ACT_UNKNOWN_TOOL,
                                       "no such tool", NULL)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            continue;
        }

        act->tool = tool;

        if (sa_tool_args_parse(tool, c->arguments, c->arguments_len,
                               &act->args, err, sizeof(err))
            != SA_OK)
        {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "support agent: the LLM called %s with bad "
                          "arguments in conversation \"%V\": %s",
                          sa_tool_name(tool), act->conversation_id, err);

            if (ngx_http_sa_act_result(r, act, SA_ACT_INVALID_ARGUMENTS, err,
                                       NULL)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            continue;
        }

        if (act->state.verified_email[0] == '\0' && act->email[0] == '\0') {
            if (ngx_http_sa_act_result(r, act, SA_ACT_NEEDS_IDENTITY,
                                       "ask the customer for the e-mail "
                                       "address of the order", NULL)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            continue;
        }

        return ngx_http_sa_act_get_order(r, act, act->args.order_id,
                                         NGX_HTTP_SA_ACT_CALL);
    }

    return NGX_OK;
}


static void
ngx_http_sa_act_call_looked_up(ngx_http_request_t *r,
    ngx_http_sa_action_t *act, sa_act_code_e code, const char *detail)
{
    char            err[160], *json, amount_text[32];
    size_t          len;
    double          amount;
    ngx_int_t       rc;
    sa_tool_args_t  args;

    args = act->args;
    json = NULL;

    if (code == SA_ACT_OK
        && sa_order_parse((char *) act->fetch.body, act->fetch.len,
                          &act->order, err, sizeof(err))
           != SA_OK)
    {
        code = SA_ACT_UNAVAILABLE;
        detail = "the order system answered something unusable";
    }

    ngx_http_sa_fetch_cancel(&act->fetch);
    act->step = 0;

    if (code != SA_ACT_OK) {
        rc = ngx_http_sa_act_result(r, act, code, detail, NULL);
        goto next;
    }

    if (ngx_http_sa_act_owner(r, act) != NGX_OK) {
        ngx_http_sa_act_audit(r, act, args.tool, &args,
                              "verification_failed", "llm");
        rc = ngx_http_sa_act_result(r, act, SA_ACT_VERIFICATION_FAILED,
                                    "this order is not the verified "
                                    "customer's; nothing about it may be "
                                    "shown or changed", NULL);
        goto next;
    }

    if (args.tool == SA_TOOL_LOOKUP_ORDER) {
        if (sa_order_json(&act->order, &json, &len) != SA_OK) {
            rc = NGX_ERROR;
            goto next;
        }

        ngx_http_sa_act_audit(r, act, args.tool, &args, "done", "llm");
        rc = ngx_http_sa_act_result(r, act, SA_ACT_OK, NULL, json);
        free(json);
        goto next;
    }

    code = ngx_http_sa_act_check(act, &args, &amount, err, sizeof(err));

    if (code == SA_ACT_NEEDS_HUMAN) {
        act->outcome = "needs_human";
        ngx_http_sa_act_audit(r, act, args.tool, &args, "needs_human",
                              "llm");
        rc = ngx_http_sa_act_result(r, act, code,
                                    "refunds this large are done by a "
                                    "person; tell the customer a specialist "
                                    "will handle it", NULL);
        goto next;
    }

    if (code != SA_ACT_OK) {
        ngx_http_sa_act_audit(r, act, args.tool, &args, "refused", "llm");
        rc = ngx_http_sa_act_result(r, act, code, err, NULL);
        goto next;
    }

    /* a write is only ever prepared: the customer's "yes" runs it */

    if (ngx_http_sa_act_prepare(r, act, &args, amount) != NGX_OK) {
        rc = NGX_ERROR;
        goto next;
    }

    ngx_snprintf((u_char *) amount_text, sizeof(amount_text) - 1, "%.2f%Z",
                 amount);

    (void) ngx_http_sa_act_say(r, act,
                               args.tool == SA_TOOL_PROCESS_REFUND
                               ? "refund_confirm"
                               : args.tool == SA_TOOL_CANCEL_ORDER
                               ? "cancel_confirm" : "address_confirm",
                               NULL, amount_text, NULL, &act->pending_note);

    rc = ngx_http_sa_act_result(r, act, SA_ACT_PENDING,
                                (char *) act->pending_note.data, NULL);

next:

    if (rc == NGX_OK) {
        rc = ngx_http_sa_act_next_call(r, act);
    }

    if (rc == NGX_AGAIN) {
        return;
    }

    if (rc == NGX_ERROR) {
        act->n_calls = 0;
    }

    act->on_done(act->data);
}


/* the tool message answering the current call; malloc()ed strings, as
   they join the conversation's messages */

static ngx_int_t
ngx_http_sa_act_result(ngx_http_request_t *r, ngx_http_sa_action_t *act,
    sa_act_code_e code, const char *detail, const char *data_json)
{
    char                *json;
    size_t               len;
    sa_msg_t            *m;
    sa_llm_tool_call_t  *c;

    c = &act->calls[act->call];
    m = &act->results[act->call];

    if (sa_act_result_json(code, act->tool, detail, data_json,
                           code == SA_ACT_PENDING ? act->state.pending_id
                                                  : NULL,
                           &json, &len)
        != SA_OK)
    {
        return NGX_ERROR;
    }

    m->role = SA_ROLE_TOOL;
    m->content = json;
    m->content_len = len;
    m->ts_ms = ngx_http_sa_act_now();
    m->tool_call_id = strdup(c->id ? c->id : "call_0");

    if (m->tool_call_id == NULL) {
        return NGX_ERROR;
    }

    act->call++;

    return NGX_OK;
}


/* the reply texts of the no-LLM flows */

static ngx_int_t
ngx_http_sa_act_say(ngx_http_request_t *r, ngx_http_sa_action_t *act,
    const char *name, const char *detail, const char *amount,
    const char *refund_id, ngx_str_t *out)
{
    int          rc;
    char         total[32], tracking[96], items[512], address[400], *text;
    char        *p, *last;
    size_t       i, len, n;
    sa_kv_t      vars[12];
    sa_order_t  *o;
    sa_address_t *a;

    o = &act->order;

    ngx_snprintf((u_char *) total, sizeof(total) - 1, "%.2f%Z", o->total);

    tracking[0] = '\0';

    if (o->tracking[0]) {
        ngx_snprintf((u_char *) tracking, sizeof(tracking) - 1,
                     " Tracking number: %s.%Z", o->tracking);
    }

    p = items;
    last = items + sizeof(items) - 1;

    for (i = 0; i < o->n_items && p < last; i++) {
        p = (char *) ngx_slprintf((u_char *) p, (u_char *) last, "%s%s",
                                  i == 0 ? ""
                                  : i + 1 == o->n_items ? " and " : ", ",
                                  o->items[i].name);
    }

    *p = '\0';

    if (o->n_items == 0) {
        ngx_cpystrn((u_char *) items, (u_char *) "no items", sizeof(items));
    }

    a = &act->args.address;

    ngx_snprintf((u_char *) address, sizeof(address) - 1,
                 "%s%s%s, %s, %s %s%Z", a->address1,
                 a->address2[0] ? ", " : "", a->address2, a->city, a->state,
                 a->zip);

    n = 0;
    vars[n].key = "order_id";
    vars[n++].value = o->order_id[0] ? o->order_id : act->state.last_order;
    vars[n].key = "status";
    vars[n++].value = o->status;
    vars[n].key = "items";
    vars[n++].value = items;
    vars[n].key = "total";
    vars[n++].value = total;
    vars[n].key = "currency";
    vars[n++].value = o->currency[0] ? o->currency : "USD";
    vars[n].key = "tracking_line";
    vars[n++].value = tracking;
    vars[n].key = "amount";
    vars[n++].value = amount ? amount : total;
    vars[n].key = "refund_id";
    vars[n++].value = refund_id ? refund_id : "";
    vars[n].key = "detail";
    vars[n++].value = detail ? detail : "";
    vars[n].key = "address";
    vars[n++].value = address;
    vars[n].key = "limit";
    vars[n++].value = "";

    rc = sa_template_render(act->conf->replies, name, vars, n, &text, &len);

    if (rc != SA_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "support agent: no \"%s\" in the action replies",
                      name);
        return NGX_ERROR;
    }

    /* the template's line break is not part of the reply */
    while (len && (text[len - 1] == '\n' || text[len - 1] == ' ')) {
        len--;
    }

    out->data = ngx_pnalloc(r->pool, len + 1);
    if (out->data == NULL) {
        free(text);
        return NGX_ERROR;
    }

    ngx_memcpy(out->data, text, len);
    out->data[len] = '\0';
    out->len = len;
    free(text);

    return NGX_OK;
}


/*
 * Every tool call is recorded with the conversation (LMDB "audit": key the
 * conversation id, '\0', the time; value JSON) and logged, with personal
 * data left out: the order, the amount, the outcome, who decided.
 */

static void
ngx_http_sa_act_audit(ngx_http_request_t *r, ngx_http_sa_action_t *act,
    sa_tool_e tool, sa_tool_args_t *args, const char *outcome,
    const char *by)
{
    int                    rc;
    char                   amount[32];
    size_t                 len;
    sa_jw_t               *w;
    ngx_msec_t             elapsed;
    sa_store_t            *store;
    const char            *name, *json, *order;
    ngx_http_sa_act_op_t   op;

    name = sa_tool_name(tool);
    order = args ? args->order_id : act->state.last_order;
    elapsed = act->started ? ngx_current_msec - act->started : 0;

    amount[0] = '\0';

    if (args && tool == SA_TOOL_PROCESS_REFUND) {
        ngx_snprintf((u_char *) amount, sizeof(amount) - 1, "%.2f%Z",
                     args->amount > 0 ? args->amount
                                      : act->state.pending_amount);
    }

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "support agent: action %s order \"%s\"%s%s: %s (by %s, "
                  "%M ms) in conversation \"%V\"", name ? name : "?", order,
                  amount[0] ? " amount " : "", amount, outcome, by, elapsed,
                  act->conversation_id);

    w = sa_jw_new();
    if (w == NULL) {
        return;
    }

    if (sa_jw_open(w) != SA_OK
        || sa_jw_kint(w, "t", ngx_http_sa_act_now()) != SA_OK
        || sa_jw_kstr(w, "tool", name ? name : "?",
                      name ? ngx_strlen(name) : 1) != SA_OK
        || sa_jw_kstr(w, "order_id", order, ngx_strlen(order)) != SA_OK
        || (amount[0] && sa_jw_kstr(w, "amount", amount, ngx_strlen(amount))
                         != SA_OK)
        || (args && args->n_items
            && sa_jw_kint(w, "items", (long long) args->n_items) != SA_OK)
        || sa_jw_kstr(w, "outcome", outcome, ngx_strlen(outcome)) != SA_OK
        || sa_jw_kstr(w, "by", by, ngx_strlen(by)) != SA_OK
        || sa_jw_kint(w, "ms", (long long) elapsed) != SA_OK
        || sa_jw_close(w) != SA_OK)
    {
        sa_jw_free(w);
        return;
    }

    json = sa_jw_buf(w, &len);

    ngx_memzero(&op, sizeof(ngx_http_sa_act_op_t));
    op.id = (char *) act->conversation_id->data;
    op.id_len = act->conversation_id->len;
    op.audit = (unsigned char *) json;
    op.audit_len = len;
    op.now_ms = ngx_http_sa_act_now();

    store = ngx_http_sa_store();
    rc = sa_store_write(store, "audit", ngx_http_sa_act_state_handler, &op);

    if (rc != SA_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "support agent: cannot record the action in "
                      "conversation \"%V\": %s", act->conversation_id,
                      sa_store_last_error(store));
    }

    sa_jw_free(w);
}


ngx_int_t
ngx_http_sa_act_save(ngx_http_request_t *r, ngx_http_sa_action_t *act)
{
    int                    rc;
    sa_store_t            *store;
    ngx_http_sa_act_op_t   op;
    unsigned char          state[SA_ACT_STATE_MAX];

    if (!act->active || !act->dirty) {
        return NGX_OK;
    }

    ngx_memzero(&op, sizeof(ngx_http_sa_act_op_t));
    op.id = (char *) act->conversation_id->data;
    op.id_len = act->conversation_id->len;
    op.state = state;
    op.state_len = sa_act_state_encode(&act->state, state, sizeof(state));

    if (op.state_len == 0) {
        return NGX_ERROR;
    }

    store = ngx_http_sa_store();
    rc = sa_store_write(store, "actions", ngx_http_sa_act_state_handler, &op);

    if (rc != SA_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "support agent: cannot save the actions of "
                      "conversation \"%V\": %s", act->conversation_id,
                      sa_store_last_error(store));
        return NGX_ERROR;
    }

    act->dirty = 0;

    return NGX_OK;
}


static int
ngx_http_sa_act_state_handler(sa_store_t *st, struct MDB_txn *txn,
    void *data)
{
    ngx_http_sa_act_op_t  *op = data;

    int             rc;
    int64_t         t;
    MDB_val         key, val;
    unsigned char   k[SA_ID_MAX + 1 + 8];
    ngx_uint_t      i;

    (void) st;

    if (op->state != NULL) {
        key.mv_data = (void *) op->id;
        key.mv_size = op->id_len;
        val.mv_data = op->state;
        val.mv_size = op->state_len;

        return mdb_put(txn, ngx_http_sa_act_dbi, &key, &val, 0);
    }

    /* audit: id, '\0', big-endian time, so a conversation's records are
       adjacent and in order; a clash within the same ms moves on by 1 */

    ngx_memcpy(k, op->id, op->id_len);
    k[op->id_len] = '\0';

    for (t = op->now_ms; /* void */; t++) {
        for (i = 0; i < 8; i++) {
            k[op->id_len + 1 + i] = (unsigned char) ((uint64_t) t
                                                     >> (56 - 8 * i));
        }

        key.mv_data = k;
        key.mv_size = op->id_len + 1 + 8;
        val.mv_data = op->audit;
        val.mv_size = op->audit_len;

        rc = mdb_put(txn, ngx_http_sa_audit_dbi, &key, &val,
                     MDB_NOOVERWRITE);

        if (rc != MDB_KEYEXIST) {
            return rc;
        }
    }
}


void
ngx_http_sa_act_cancel(ngx_http_sa_action_t *act)
{
    if (act->failed.posted) {
        ngx_delete_posted_event(&act->failed);
    }

    if (act->running) {
        act->running = 0;
        ngx_http_sa_fetch_cancel(&act->fetch);
    }
}


static char *
ngx_http_sa_act_strdup(ngx_pool_t *pool, const char *s, size_t len)
{
    char  *p;

    p = ngx_pnalloc(pool, len + 1);
    if (p == NULL) {
        return NULL;
    }

    ngx_memcpy(p, s, len);
    p[len] = '\0';

    return p;
}


void
ngx_http_sa_act_free(ngx_http_sa_action_t *act)
{
    size_t  i;

    ngx_http_sa_act_cancel(act);

    /* results that never joined the conversation */
    for (i = 0; act->results != NULL && i < act->n_calls; i++) {
        sa_msg_free(&act->results[i]);
    }

    act->n_calls = 0;
}


int
ngx_http_sa_act_json(ngx_http_sa_action_t *act, void *jw)
{
    sa_jw_t     *w = jw;
    const char  *tool;

    tool = act->tool != SA_TOOL_NONE ? sa_tool_name(act->tool) : NULL;

    if (sa_jw_open(w) != SA_OK
        || sa_jw_kstr(w, "status", act->outcome, ngx_strlen(act->outcome))
           != SA_OK
        || (tool && sa_jw_kstr(w, "tool", tool, ngx_strlen(tool)) != SA_OK)
        || (act->state.pending
            && sa_jw_kstr(w, "id", act->state.pending_id,
                          ngx_strlen(act->state.pending_id)) != SA_OK)
        || sa_jw_kbool(w, "verified",
                       act->state.verified_email[0] != '\0') != SA_OK
        || sa_jw_close(w) != SA_OK)
    {
        return SA_ERROR;
    }

    return SA_OK;
}


static ngx_int_t
ngx_http_sa_act_dbis(ngx_log_t *log)
{
    static const char  *names[] = { "actions", "audit", NULL };
    static unsigned    *dbis[] = { &ngx_http_sa_act_dbi,
                                   &ngx_http_sa_audit_dbi };

    if (ngx_http_sa_act_dbis_open && ngx_http_sa_act_dbis_pid == ngx_pid) {
        return NGX_OK;
    }

    if (ngx_http_sa_store_dbis(log, names, dbis, "actions")
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_sa_act_dbis_open = 1;
    ngx_http_sa_act_dbis_pid = ngx_pid;

    return NGX_OK;
}


static int64_t
ngx_http_sa_act_now(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (int64_t) tp->sec * 1000 + tp->msec;
}
