
/*
 * Copyright (C) ngx_support_agent authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <lmdb.h>
#include <signal.h>

#include "ngx_http_support_agent_module.h"
#include "ngx_http_support_agent_escalate.h"
#include "ngx_http_support_agent_store.h"
#include "sa_handoff.h"
#include "sa_json.h"
#include "sa_store.h"
#include "sa_text.h"
#include "sa_utf8.h"


#define NGX_HTTP_SA_HANDOFF_TICK        1000
#define NGX_HTTP_SA_HANDOFF_LEASE       10000
#define NGX_HTTP_SA_HANDOFF_JOBS        4
#define NGX_HTTP_SA_HANDOFF_MAX_REPLY   (64 * 1024)
#define NGX_HTTP_SA_IDEMPOTENCY         "Idempotency-Key: handoff-"


/* a ticket being stored, or a stored one being claimed or updated */
typedef struct {
    const char                *id;
    size_t                     id_len;
    int64_t                    now_ms;

    /* enqueue */
    unsigned char             *record;
    size_t                     record_len;
    unsigned char             *state;
    size_t                     state_len;

    /* what was there */
    ngx_uint_t                 existed;
    sa_handoff_rec_t           found;
    char                      *url;        /* claim: malloc()ed copies */
    char                      *body;
    size_t                     body_len;

    /* finish */
    ngx_uint_t                 delivered;
    const char                *ticket_id;
    int32_t                    wait;
    ngx_msec_t                 lease;
} ngx_http_sa_handoff_op_t;


/* a queued ticket being delivered by the worker's timer */
typedef struct {
    ngx_queue_t                queue;
    ngx_http_sa_fetch_t        fetch;
    char                       id[SA_ID_MAX + 1];
    char                       header[sizeof(NGX_HTTP_SA_IDEMPOTENCY)
                                      + SA_ID_MAX];
} ngx_http_sa_handoff_job_t;


static ngx_int_t ngx_http_sa_escalate_dbis(ngx_log_t *log);
static int64_t ngx_http_sa_esc_now(void);
static ngx_uint_t ngx_http_sa_is_high_stakes(ngx_http_sa_escalate_conf_t *conf,
    ngx_str_t *intent);
static void ngx_http_sa_handoff_hours(ngx_http_sa_escalation_t *esc,
    int64_t now);
static int ngx_http_sa_handoff_enqueue_handler(sa_store_t *st,
    struct MDB_txn *txn, void *data);
static int ngx_http_sa_handoff_claim_handler(sa_store_t *st,
    struct MDB_txn *txn, void *data);
static int ngx_http_sa_handoff_finish_handler(sa_store_t *st,
    struct MDB_txn *txn, void *data);
static int ngx_http_sa_esc_state_handler(sa_store_t *st, struct MDB_txn *txn,
    void *data);
static ngx_int_t ngx_http_sa_handoff_read(ngx_log_t *log, const char *id,
    size_t len, sa_handoff_rec_t *rec, char *ticket_id);
static int ngx_http_sa_handoff_rec_read(const void *buf, size_t len,
    void *out);
static int ngx_http_sa_esc_state_decode(const void *buf, size_t len,
    void *out);
static ngx_int_t ngx_http_sa_handoff_finish(ngx_log_t *log, const char *id,
    ngx_http_sa_fetch_t *f, char *ticket_id, int32_t *wait);
static void ngx_http_sa_handoff_turn_done(ngx_http_sa_fetch_t *f);
static void ngx_http_sa_handoff_tick(ngx_event_t *ev);
static void ngx_http_sa_handoff_deliver(ngx_log_t *log, const char *id,
    size_t len);
static void ngx_http_sa_handoff_job_done(ngx_http_sa_fetch_t *f);
static ngx_http_sa_service_t *ngx_http_sa_helpdesk(const char *url,
    size_t len);
static ngx_uint_t ngx_http_sa_lease_held(const sa_handoff_rec_t *rec,
    int64_t now);


static ngx_str_t  ngx_http_sa_default_high_stakes[] = {
    ngx_string("safety"),
    ngx_string("fraud"),
    ngx_string("account_security"),
    ngx_string("data_breach"),
    ngx_string("legal_threat")
};


static unsigned           ngx_http_sa_esc_dbi;
static unsigned           ngx_http_sa_handoff_dbi;
static unsigned           ngx_http_sa_queue_dbi;
static ngx_uint_t         ngx_http_sa_esc_dbis_open;
static sa_analyzer_t     *ngx_http_sa_esc_analyzer;

static ngx_event_t        ngx_http_sa_handoff_timer;
static ngx_queue_t        ngx_http_sa_handoff_jobs;
static ngx_uint_t         ngx_http_sa_handoff_njobs;
static ngx_array_t       *ngx_http_sa_helpdesks;


/* configuration */

void
ngx_http_sa_escalate_init_conf(ngx_http_sa_escalate_conf_t *conf)
{
    conf->repeats = NGX_CONF_UNSET_UINT;
    conf->sentiment = -1;
    conf->unserved = NGX_CONF_UNSET_UINT;
    conf->max_duration = NGX_CONF_UNSET_MSEC;
    conf->high_stakes = NGX_CONF_UNSET_PTR;
    conf->hours = NGX_CONF_UNSET_PTR;
    conf->helpdesk.timeout = NGX_CONF_UNSET_MSEC;
    conf->mask = NGX_CONF_UNSET_UINT;
}


char *
ngx_http_sa_escalate_merge(ngx_conf_t *cf, ngx_http_sa_escalate_conf_t *conf,
    ngx_http_sa_escalate_conf_t *prev)
{
    ngx_uint_t                i;
    ngx_str_t                *s;
    ngx_http_sa_service_t   **svc;
    ngx_http_sa_main_conf_t  *smcf;

    ngx_conf_merge_uint_value(conf->repeats, prev->repeats, 3);
    ngx_conf_merge_uint_value(conf->unserved, prev->unserved, 2);
    ngx_conf_merge_msec_value(conf->max_duration, prev->max_duration,
                              30 * 60 * 1000);
    ngx_conf_merge_uint_value(conf->mask, prev->mask, SA_MASK_ALL);

    if (conf->sentiment < 0) {
        conf->sentiment = prev->sentiment < 0 ? 0.3 : prev->sentiment;
    }

    if (conf->high_stakes == NGX_CONF_UNSET_PTR) {
        if (prev->high_stakes != NGX_CONF_UNSET_PTR) {
            conf->high_stakes = prev->high_stakes;

        } else {
            conf->high_stakes = ngx_array_create(cf->pool, 5,
                                                 sizeof(ngx_str_t));
            if (conf->high_stakes == NULL) {
                return NGX_CONF_ERROR;
            }

            for (i = 0; i < 5; i++) {
                s = ngx_array_push(conf->high_stakes);
                if (s == NULL) {
                    return NGX_CONF_ERROR;
                }

                *s = ngx_http_sa_default_high_stakes[i];
            }
        }
    }

    if (conf->hours == NGX_CONF_UNSET_PTR) {
        conf->hours = prev->hours == NGX_CONF_UNSET_PTR ? NULL : prev->hours;
        conf->hours_text = prev->hours_text;
    }

    if (conf->helpdesk.url.data == NULL) {
        conf->helpdesk.url = prev->helpdesk.url;
    }

    if (conf->helpdesk_key.data == NULL) {
        conf->helpdesk_key = prev->helpdesk_key;
    }

    if (conf->summary_prompt.data == NULL) {
        conf->summary_prompt = prev->summary_prompt;
    }

    ngx_conf_merge_msec_value(conf->helpdesk.timeout, prev->helpdesk.timeout,
                              5000);

    if (conf->helpdesk.timeout == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"support_agent_handoff_timeout\" must be "
                           "positive");
        return NGX_CONF_ERROR;
    }

    conf->helpdesk.connect_timeout = ngx_min(conf->helpdesk.timeout, 5000);
    conf->helpdesk.max_body = NGX_HTTP_SA_HANDOFF_MAX_REPLY;

    if (conf->helpdesk_key.len && conf->helpdesk.key_header.len == 0) {
        s = &conf->helpdesk.key_header;
        s->data = ngx_pnalloc(cf->pool, sizeof("Authorization: Bearer ")
                                        + conf->helpdesk_key.len);
        if (s->data == NULL) {
            return NGX_CONF_ERROR;
        }

        s->len = ngx_sprintf(s->data, "Authorization: Bearer %V%Z",
                             &conf->helpdesk_key)
                 - s->data - 1;
    }

    sa_esc_policy_init(&conf->policy);
    conf->policy.repeats = (uint32_t) conf->repeats;
    conf->policy.sentiment = conf->sentiment;
    conf->policy.unserved = (uint32_t) conf->unserved;
    conf->policy.max_duration_ms = (int64_t) conf->max_duration;

    if (conf->helpdesk.url.len == 0) {
        return NGX_CONF_OK;
    }

    /* the workers' queue delivers tickets of every location */

    smcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_support_agent_module);
    svc = smcf->helpdesks.elts;

    for (i = 0; i < smcf->helpdesks.nelts; i++) {
        if (svc[i]->url.len == conf->helpdesk.url.len
            && ngx_strncmp(svc[i]->url.data, conf->helpdesk.url.data,
                           conf->helpdesk.url.len) == 0)
        {
            return NGX_CONF_OK;
        }
    }

    svc = ngx_array_push(&smcf->helpdesks);
    if (svc == NULL) {
        return NGX_CONF_ERROR;
    }

    *svc = &conf->helpdesk;

    return NGX_CONF_OK;
}


/* "N" or "off" (0), into a ngx_uint_t */

char *
ngx_http_sa_number_or_off(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_int_t    n;
    ngx_str_t   *value;
    ngx_uint_t  *field;

    field = (ngx_uint_t *) ((u_char *) conf + cmd->offset);

    if (*field != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        *field = 0;
        return NGX_CONF_OK;
    }

    n = ngx_atoi(value[1].data, value[1].len);

    if (n <= 0 || n > 1000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\": a number from "
                           "1 to 1000, or \"off\"", &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    *field = (ngx_uint_t) n;

    return NGX_CONF_OK;
}


/* a number above 0 within cmd->post's bounds, or "off" (0), into a double
   initialised to -1 */

char *
ngx_http_sa_positive_or_off(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_sa_number_bounds_t  *b = cmd->post;

    char       *end;
    double      v, *field;
    ngx_str_t  *value;

    field = (double *) ((u_char *) conf + cmd->offset);

    if (*field >= 0) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        *field = 0;
        return NGX_CONF_OK;
    }

    v = strtod((char *) value[1].data, &end);

    if (value[1].len == 0 || *end != '\0' || !(v > 0)
        || v > b->max || (v == b->max && !b->inclusive))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\": %s, or \"off\"",
                           &value[1], &cmd->name, b->what);
        return NGX_CONF_ERROR;
    }

    *field = v;

    return NGX_CONF_OK;
}


char *
ngx_http_sa_escalate_after(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_sa_escalate_conf_t *ecf;

    ngx_msec_t  ms;
    ngx_str_t  *value;

    ecf = (ngx_http_sa_escalate_conf_t *) ((u_char *) conf + cmd->offset);

    if (ecf->max_duration != NGX_CONF_UNSET_MSEC) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        ecf->max_duration = 0;
        return NGX_CONF_OK;
    }

    ms = ngx_parse_time(&value[1], 0);

    if (ms == (ngx_msec_t) NGX_ERROR || ms == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\": a time such as "
                           "\"30m\", or \"off\"", &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    ecf->max_duration = ms;

    return NGX_CONF_OK;
}


char *
ngx_http_sa_high_stakes(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_sa_escalate_conf_t *ecf;

    u_char      *p;
    ngx_str_t   *value, *s;
    ngx_uint_t   i;

    ecf = (ngx_http_sa_escalate_conf_t *) ((u_char *) conf + cmd->offset);

    if (ecf->high_stakes != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        ecf->high_stakes = NULL;
        return NGX_CONF_OK;
    }

    ecf->high_stakes = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                        sizeof(ngx_str_t));
    if (ecf->high_stakes == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {
        for (p = value[i].data; p < value[i].data + value[i].len; p++) {
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
                  || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'
                  || *p == '.'))
            {
                break;
            }
        }

        if (value[i].len == 0 || value[i].len > 64
            || p != value[i].data + value[i].len)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid intent name \"%V\" in \"%V\"",
                               &value[i], &cmd->name);
            return NGX_CONF_ERROR;
        }

        s = ngx_array_push(ecf->high_stakes);
        if (s == NULL) {
            return NGX_CONF_ERROR;
        }

        *s = value[i];
    }

    return NGX_CONF_OK;
}


char *
ngx_http_sa_business_hours(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_sa_escalate_conf_t *ecf;

    char        err[160];
    u_char     *p;
    size_t      len;
    ngx_str_t  *value;
    ngx_uint_t  i;
    sa_hours_t *hours;

    ecf = (ngx_http_sa_escalate_conf_t *) ((u_char *) conf + cmd->offset);

    if (ecf->hours != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        ecf->hours = NULL;
        ngx_str_null(&ecf->hours_text);
        return NGX_CONF_OK;
    }

    /* the words make one spec again: mon-fri 09:00-17:00, sat ... */

    len = 0;

    for (i = 1; i < cf->args->nelts; i++) {
        len += value[i].len + 1;
    }

    p = ngx_pnalloc(cf->pool, len);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    ecf->hours_text.data = p;

    for (i = 1; i < cf->args->nelts; i++) {
        if (i > 1) {
            *p++ = ' ';
        }

        p = ngx_cpymem(p, value[i].data, value[i].len);
    }

    *p = '\0';
    ecf->hours_text.len = p - ecf->hours_text.data;

    hours = ngx_pcalloc(cf->pool, sizeof(sa_hours_t));
    if (hours == NULL) {
        return NGX_CONF_ERROR;
    }

    if (sa_hours_parse((char *) ecf->hours_text.data, ecf->hours_text.len,
                       hours, err, sizeof(err))
        != SA_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"%V\" \"%V\": %s", &cmd->name,
                           &ecf->hours_text, err);
        return NGX_CONF_ERROR;
    }

    ecf->hours = hours;

    return NGX_CONF_OK;
}


char *
ngx_http_sa_handoff_mask(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_sa_escalate_conf_t *ecf;

    ngx_str_t   *value;
    ngx_uint_t   i, mask;

    ecf = (ngx_http_sa_escalate_conf_t *) ((u_char *) conf + cmd->offset);

    if (ecf->mask != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    mask = 0;

    for (i = 1; i < cf->args->nelts; i++) {
        if (ngx_strcmp(value[i].data, "off") == 0 && cf->args->nelts == 2) {
            mask = 0;

        } else if (ngx_strcmp(value[i].data, "email") == 0) {
            mask |= SA_MASK_EMAIL;

        } else if (ngx_strcmp(value[i].data, "phone") == 0) {
            mask |= SA_MASK_PHONE;

        } else if (ngx_strcmp(value[i].data, "card") == 0) {
            mask |= SA_MASK_CARD;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\" in \"%V\": email, "
                               "phone, card, or \"off\" alone",
                               &value[i], &cmd->name);
            return NGX_CONF_ERROR;
        }
    }

    ecf->mask = mask;

    return NGX_CONF_OK;
}


/* a turn */

ngx_int_t
ngx_http_sa_escalate_observe(ngx_http_request_t *r,
    ngx_http_sa_escalation_t *esc, ngx_http_sa_escalate_conf_t *conf,
    ngx_str_t *conversation_id, ngx_uint_t created,
    ngx_http_sa_routed_t *routed, const sa_msg_t *user)
{
    int64_t          now;
    sa_store_t      *store;
    sa_esc_sig_t     sig;
    sa_esc_turn_t    turn;
    sa_conv_meta_t   meta;

    if (conf->helpdesk.url.len == 0) {
        return NGX_DECLINED;
    }

    esc->conf = conf;
    esc->conversation_id = conversation_id;
    esc->info.wait = -1;
    esc->info.next_open_ms = -1;

    store = ngx_http_sa_store();

    if (ngx_http_sa_escalate_dbis(r->connection->log) != NGX_OK) {
        return NGX_ERROR;
    }

    now = ngx_http_sa_esc_now();

    sa_esc_state_init(&esc->state);

    switch (ngx_http_sa_store_read(r->connection->log, ngx_http_sa_esc_dbi,
                                   conversation_id,
                                   ngx_http_sa_esc_state_decode,
                                   &esc->state,
                                   "escalation state of conversation"))
    {
    case NGX_ERROR:
        return NGX_ERROR;

    case NGX_ABORT:
        /* a damaged record starts over rather than block every turn */
        sa_esc_state_init(&esc->state);
        break;

    default:
        break;
    }

    meta.created_ms = now;

    if (!created
        && sa_conv_get(store, (char *) conversation_id->data, &meta)
           != SA_OK)
    {
        meta.created_ms = now;
    }

    if (ngx_http_sa_esc_analyzer == NULL) {
        ngx_http_sa_esc_analyzer = sa_analyzer_new("english");
        if (ngx_http_sa_esc_analyzer == NULL) {
            return NGX_ERROR;
        }
    }

    if (sa_esc_signature(ngx_http_sa_esc_analyzer, user->content,
                         user->content_len, &sig)
        != SA_OK)
    {
        ngx_memzero(&sig, sizeof(sa_esc_sig_t));
    }

    ngx_memzero(&turn, sizeof(sa_esc_turn_t));

    turn.route = SA_ESC_ROUTE_UNKNOWN;

    if (routed != NULL) {
        switch (routed->kind) {
        case SA_ROUTE_KNOWLEDGE:
            turn.route = SA_ESC_ROUTE_KNOWLEDGE;
            break;
        case SA_ROUTE_ACTION:
            turn.route = SA_ESC_ROUTE_ACTION;
            break;
        case SA_ROUTE_ESCALATE:
            turn.route = SA_ESC_ROUTE_ESCALATE;
            break;
        case SA_ROUTE_SMALLTALK:
            turn.route = SA_ESC_ROUTE_SMALLTALK;
            break;
        default:
            turn.route = SA_ESC_ROUTE_OUT_OF_SCOPE;
            break;
        }

        turn.intent = (char *) routed->intent.data;
        turn.high_stakes = ngx_http_sa_is_high_stakes(conf, &routed->intent);
    }

    turn.sentiment = sa_sentiment(user->content, user->content_len);
    turn.sig = &sig;
    turn.now_ms = now;
    turn.created_ms = meta.created_ms;

    sa_esc_observe(&esc->state, &turn, &conf->policy, &esc->decision);

    esc->active = 1;

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "support agent: escalation of \"%V\": sentiment %.3f, "
                   "attempts %uD, decision %s", conversation_id,
                   turn.sentiment, esc->state.attempts,
                   sa_esc_reason_name(esc->decision.reason));

    return NGX_OK;
}


void
ngx_http_sa_escalate_unserved(ngx_http_sa_escalation_t *esc)
{
    if (!esc->active || esc->decision.reason != SA_ESC_NONE) {
        return;
    }

    sa_esc_unserved(&esc->state, &esc->conf->policy, ngx_http_sa_esc_now(),
                    &esc->decision);
}


ngx_uint_t
ngx_http_sa_escalate_reminder(ngx_http_request_t *r,
    ngx_http_sa_escalation_t *esc, ngx_http_sa_routed_t *routed)
{
    char              ticket_id[SA_HANDOFF_ID_MAX + 1];
    sa_handoff_rec_t  rec;

    if (!esc->active || !esc->state.escalated || routed == NULL
        || routed->kind != SA_ROUTE_ESCALATE)
    {
        return 0;
    }

    if (ngx_http_sa_handoff_read(r->connection->log,
                                 (char *) esc->conversation_id->data,
                                 esc->conversation_id->len, &rec, ticket_id)
        != NGX_OK)
    {
        return 0;
    }

    esc->info.status = NGX_HTTP_SA_HANDOFF_EXISTING;
    esc->info.reason = (sa_esc_reason_e) esc->state.reason;
    esc->info.priority = SA_ESC_NORMAL;
    esc->info.wait = rec.wait;

    ngx_memcpy(esc->ticket, ticket_id, SA_HANDOFF_ID_MAX + 1);
    esc->info.ticket_id.data = (u_char *) esc->ticket;
    esc->info.ticket_id.len = ngx_strlen(esc->ticket);

    ngx_http_sa_handoff_hours(esc, ngx_http_sa_esc_now());

    return 1;
}


ngx_int_t
ngx_http_sa_handoff_start(ngx_http_request_t *r,
    ngx_http_sa_escalation_t *esc, const sa_msg_t *msgs, size_t n,
    ngx_http_sa_routed_t *routed)
{
    int                        rc;
    char                      *json, *header;
    size_t                     len;
    int64_t                    now;
    sa_store_t                *store;
    sa_handoff_rec_t           rec;
    sa_handoff_ticket_t        t;
    ngx_http_sa_handoff_op_t   op;
    unsigned char              state[SA_ESC_STATE_MAX];

    store = ngx_http_sa_store();
    now = ngx_http_sa_esc_now();

    esc->info.reason = esc->decision.reason;
    esc->info.priority = esc->decision.priority;
    ngx_http_sa_handoff_hours(esc, now);

    ngx_memzero(&t, sizeof(sa_handoff_ticket_t));
    t.conversation_id = (char *) esc->conversation_id->data;
    t.msgs = msgs;
    t.n = n;
    t.state = &esc->state;
    t.decision = &esc->decision;
    t.intent = routed ? (char *) routed->intent.data : NULL;
    t.mask = (unsigned) esc->conf->mask;
    t.open = (int) esc->info.open;
    t.now_ms = now;

    if (esc->summary.len) {
        t.summary = (char *) esc->summary.data;
        t.summary_len = esc->summary.len;
    }

    rc = sa_handoff_ticket(&t, &json, &len);
    if (rc != SA_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "support agent: cannot build the handoff ticket of "
                      "conversation \"%V\"", esc->conversation_id);
        return NGX_ERROR;
    }

    esc->body.data = ngx_pnalloc(r->pool, len + 1);
    if (esc->body.data == NULL) {
        free(json);
        return NGX_ERROR;
    }

    ngx_memcpy(esc->body.data, json, len + 1);
    esc->body.len = len;
    free(json);

    ngx_memzero(&rec, sizeof(sa_handoff_rec_t));
    rec.state = SA_HANDOFF_QUEUED;
    rec.attempts = 1;
    rec.lease_pid = ngx_pid;
    rec.wait = -1;
    rec.created_ms = now;
    rec.next_ms = now;
    rec.lease_until_ms = now + esc->conf->helpdesk.timeout
                         + NGX_HTTP_SA_HANDOFF_LEASE;
    rec.url = (char *) esc->conf->helpdesk.url.data;
    rec.url_len = esc->conf->helpdesk.url.len;
    rec.body = (char *) esc->body.data;
    rec.body_len = esc->body.len;

    ngx_memzero(&op, sizeof(ngx_http_sa_handoff_op_t));
    op.id = (char *) esc->conversation_id->data;
    op.id_len = esc->conversation_id->len;
    op.now_ms = now;
    op.state = state;

    op.state_len = sa_esc_state_encode(&esc->state, state, sizeof(state));

    if (op.state_len == 0
        || sa_handoff_rec_encode(&rec, &op.record, &op.record_len) != SA_OK)
    {
        return NGX_ERROR;
    }

    rc = sa_store_write(store, "handoff", ngx_http_sa_handoff_enqueue_handler,
                        &op);
    free(op.record);

    if (rc != SA_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "support agent: cannot store the handoff ticket of "
                      "conversation \"%V\": %s", esc->conversation_id,
                      sa_store_last_error(store));
        return NGX_ERROR;
    }

    esc->saved = 1;

    if (op.existed) {
        /* handed off before (the state was lost): one ticket only */
        esc->info.status = NGX_HTTP_SA_HANDOFF_EXISTING;
        esc->info.wait = op.found.wait;

        ngx_memcpy(esc->ticket, op.found.ticket_id, SA_HANDOFF_ID_MAX + 1);
        esc->info.ticket_id.data = (u_char *) esc->ticket;
        esc->info.ticket_id.len = ngx_strlen(esc->ticket);

        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "support agent: conversation \"%V\" handed off: %s, "
                  "priority %s", esc->conversation_id,
                  sa_esc_reason_name(esc->decision.reason),
                  sa_esc_priority_name(esc->decision.priority));

    header = ngx_pnalloc(r->pool, sizeof(NGX_HTTP_SA_IDEMPOTENCY)
                                  + esc->conversation_id->len);
    if (header == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf((u_char *) header, NGX_HTTP_SA_IDEMPOTENCY "%V%Z",
                esc->conversation_id);

    esc->fetch.log = r->connection->log;
    esc->fetch.data = esc;
    esc->fetch.on_done = ngx_http_sa_handoff_turn_done;
    esc->fetch.what = "helpdesk";
    esc->fetch.header = header;

    if (ngx_http_sa_fetch_start(&esc->fetch, &esc->conf->helpdesk, NULL,
                                (char *) esc->body.data, esc->body.len)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "support agent: cannot send the handoff ticket of "
                      "conversation \"%V\": %s", esc->conversation_id,
                      esc->fetch.failure);

        /* the queue sends it; ngx_http_sa_handoff_finish() frees the
           lease with f->rc NGX_ERROR */
        (void) ngx_http_sa_handoff_finish(r->connection->log,
                                          (char *) esc->conversation_id->data,
                                          &esc->fetch, NULL, NULL);
        esc->info.status = NGX_HTTP_SA_HANDOFF_QUEUED;
        return NGX_OK;
    }

    esc->running = 1;

    return NGX_AGAIN;
}


static void
ngx_http_sa_handoff_turn_done(ngx_http_sa_fetch_t *f)
{
    int32_t                    wait;
    ngx_http_sa_escalation_t  *esc;

    esc = f->data;
    esc->running = 0;

    if (ngx_http_sa_handoff_finish(f->log,
                                   (char *) esc->conversation_id->data, f,
                                   esc->ticket, &wait)
        == NGX_OK)
    {
        esc->info.status = NGX_HTTP_SA_HANDOFF_CREATED;
        esc->info.wait = wait;
        esc->info.ticket_id.data = (u_char *) esc->ticket;
        esc->info.ticket_id.len = ngx_strlen(esc->ticket);

    } else {
        esc->info.status = NGX_HTTP_SA_HANDOFF_QUEUED;
    }

    ngx_http_sa_fetch_cancel(f);

    esc->on_done(esc->data);
}


ngx_int_t
ngx_http_sa_handoff_transcript(ngx_http_request_t *r,
    ngx_http_sa_escalation_t *esc, const sa_msg_t *msgs, size_t n,
    ngx_str_t *out)
{
    char        *text;
    u_char      *p;
    size_t       i, len, tlen;
    const char  *who;

    len = 0;

    for (i = 0; i < n; i++) {
        if (msgs[i].content != NULL) {
            /* a masked phone number may come out longer */
            len += 2 * msgs[i].content_len + sizeof("Customer: \n\n") + 32;
        }
    }

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;

    for (i = 0; i < n; i++) {
        if (msgs[i].content == NULL
            || (msgs[i].role != SA_ROLE_USER
                && msgs[i].role != SA_ROLE_ASSISTANT))
        {
            continue;
        }

        if (sa_mask_pii(msgs[i].content, msgs[i].content_len,
                        (unsigned) esc->conf->mask, &text, &tlen)
            != SA_OK)
        {
            return NGX_ERROR;
        }

        who = msgs[i].role == SA_ROLE_USER ? "Customer: " : "Agent: ";

        /* masking never makes a text longer than "[card ending 1234]"
           makes a card number; keep within the buffer regardless */
        if ((size_t) (p - out->data) + ngx_strlen(who) + tlen + 2 > len) {
            free(text);
            break;
        }

        p = ngx_cpymem(p, who, ngx_strlen(who));
        p = ngx_cpymem(p, text, tlen);
        *p++ = '\n';
        *p++ = '\n';
        free(text);
    }

    out->len = p - out->data;

    return NGX_OK;
}


ngx_int_t
ngx_http_sa_handoff_summary(ngx_http_request_t *r,
    ngx_http_sa_escalation_t *esc, const char *text, size_t len)
{
    char    *masked;
    size_t   mlen;

    /* the model's text is untrusted: masked again, bounded, and it must
       be UTF-8 (checked when the ticket is built) */

    while (len && (text[0] == ' ' || text[0] == '\n')) {
        text++;
        len--;
    }

    if (len == 0) {
        return NGX_DECLINED;
    }

    if (sa_mask_pii(text, len, (unsigned) esc->conf->mask, &masked, &mlen)
        != SA_OK)
    {
        return NGX_DECLINED;
    }

    mlen = sa_utf8_complete_prefix((u_char *) masked, ngx_min(mlen, 4000));

    esc->summary.data = ngx_pnalloc(r->pool, mlen + 1);
    if (esc->summary.data == NULL) {
        free(masked);
        return NGX_ERROR;
    }

    ngx_memcpy(esc->summary.data, masked, mlen);
    esc->summary.data[mlen] = '\0';
    esc->summary.len = mlen;
    free(masked);

    if (!sa_utf8_valid(esc->summary.data, mlen)) {
        ngx_str_null(&esc->summary);
        return NGX_DECLINED;
    }

    return NGX_OK;
}


void
ngx_http_sa_escalate_save(ngx_http_request_t *r,
    ngx_http_sa_escalation_t *esc)
{
    int                        rc;
    sa_store_t                *store;
    ngx_http_sa_handoff_op_t   op;
    unsigned char              state[SA_ESC_STATE_MAX];

    if (!esc->active || esc->saved) {
        return;
    }

    esc->saved = 1;
    store = ngx_http_sa_store();

    ngx_memzero(&op, sizeof(ngx_http_sa_handoff_op_t));
    op.id = (char *) esc->conversation_id->data;
    op.id_len = esc->conversation_id->len;
    op.state = state;
    op.state_len = sa_esc_state_encode(&esc->state, state, sizeof(state));

    if (op.state_len == 0) {
        return;
    }

    rc = sa_store_write(store, "escalation", ngx_http_sa_esc_state_handler,
                        &op);

    if (rc != SA_OK) {
        /* the turn is saved; only the signals' memory of it is lost */
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "support agent: cannot save the escalation state of "
                      "conversation \"%V\": %s", esc->conversation_id,
                      sa_store_last_error(store));
    }
}


void
ngx_http_sa_escalate_cancel(ngx_http_sa_escalation_t *esc)
{
    if (!esc->running) {
        return;
    }

    esc->running = 0;
    ngx_http_sa_fetch_cancel(&esc->fetch);

    /* the POST may or may not have arrived: the queue sends it again,
       with the same Idempotency-Key, after the backoff */
    esc->fetch.rc = NGX_ERROR;
    (void) ngx_http_sa_handoff_finish(esc->fetch.log,
                                      (char *) esc->conversation_id->data,
                                      &esc->fetch, NULL, NULL);
}


/* what the customer reads */

ngx_int_t
ngx_http_sa_handoff_reply(ngx_http_request_t *r,
    ngx_http_sa_escalation_t *esc, ngx_str_t *text)
{
    u_char            *p, *last;
    size_t             size;
    const char        *opening;
    ngx_http_sa_handoff_info_t  *info;

    info = &esc->info;
    size = 1024 + info->ticket_id.len + esc->conf->hours_text.len;

    p = ngx_pnalloc(r->pool, size);
    if (p == NULL) {
        return NGX_ERROR;
    }

    text->data = p;
    last = p + size;

    if (info->status == NGX_HTTP_SA_HANDOFF_EXISTING) {
        p = ngx_slprintf(p, last, "Your conversation is already with our "
                         "support team");

        if (info->ticket_id.len) {
            p = ngx_slprintf(p, last, " (ticket %V)", &info->ticket_id);
        }

        p = ngx_slprintf(p, last, ". A specialist will reply here%s; "
                         "they can see everything we have discussed.",
                         info->open ? "" : " or by e-mail");
        text->len = p - text->data;
        return NGX_OK;
    }

    switch (info->reason) {
    case SA_ESC_HIGH_STAKES:
        opening = "This needs a person from our team, so I'm passing your "
                  "case to a specialist straight away.";
        break;
    case SA_ESC_REPETITION:
        opening = "I'm sorry I haven't been able to sort this out. I'm "
                  "passing your case to a specialist.";
        break;
    case SA_ESC_SENTIMENT:
        opening = "I'm sorry this has been frustrating. I'm passing your "
                  "case to a specialist.";
        break;
    case SA_ESC_OUT_OF_SCOPE:
        opening = "That's not something I can help with here, so I'm "
                  "passing your question to a specialist.";
        break;
    case SA_ESC_TIME:
        opening = "This is taking longer than it should, so I'm passing "
                  "your case to a specialist.";
        break;
    default:
        opening = "Of course. I'm passing you to a specialist.";
        break;
    }

    p = ngx_slprintf(p, last, "%s They will see our whole conversation, so "
                     "you won't need to repeat yourself.", opening);

    if (info->status == NGX_HTTP_SA_HANDOFF_CREATED) {
        p = ngx_slprintf(p, last, " Your ticket number is %V.",
                         &info->ticket_id);

    } else {
        p = ngx_slprintf(p, last, " Our ticket system is slow to answer "
                         "right now; your case is saved and will reach the "
                         "team automatically.");
    }

    if (!info->open) {
        p = ngx_slprintf(p, last, " Our team is offline right now (hours: "
                         "%V). A specialist will reply by e-mail when we "
                         "are back.", &esc->conf->hours_text);

    } else if (info->status == NGX_HTTP_SA_HANDOFF_CREATED
               && info->wait >= 0)
    {
        if (info->wait <= 1) {
            p = ngx_slprintf(p, last, " A specialist should be with you in "
                             "about a minute.");

        } else {
            p = ngx_slprintf(p, last, " A specialist should be with you in "
                             "about %i minutes.", info->wait);
        }
    }

    text->len = p - text->data;

    return NGX_OK;
}


/* {"status", "ticket_id", "estimated_wait_minutes", "reason", "priority",
   "business_hours": {"open", "next_open"}} */

int
ngx_http_sa_handoff_json(ngx_http_sa_escalation_t *esc, void *jw)
{
    char                        at[32];
    sa_jw_t                    *w = jw;
    const char                 *status, *reason, *priority;
    ngx_http_sa_handoff_info_t  *info;

    info = &esc->info;

    status = info->status == NGX_HTTP_SA_HANDOFF_CREATED ? "created"
             : info->status == NGX_HTTP_SA_HANDOFF_QUEUED ? "queued"
             : "existing";
    reason = sa_esc_reason_name(info->reason);
    priority = sa_esc_priority_name(info->priority);

    if (sa_jw_open(w) != SA_OK
        || sa_jw_kstr(w, "status", status, ngx_strlen(status)) != SA_OK
        || (info->ticket_id.len
            ? sa_jw_kstr(w, "ticket_id", (char *) info->ticket_id.data,
                         info->ticket_id.len)
            : sa_jw_knull(w, "ticket_id")) != SA_OK
        || (info->wait >= 0
            ? sa_jw_kint(w, "estimated_wait_minutes", info->wait)
            : sa_jw_knull(w, "estimated_wait_minutes")) != SA_OK
        || sa_jw_kstr(w, "reason", reason, ngx_strlen(reason)) != SA_OK
        || sa_jw_kstr(w, "priority", priority, ngx_strlen(priority))
           != SA_OK
        || sa_jw_key(w, "business_hours") != SA_OK
        || sa_jw_open(w) != SA_OK
        || sa_jw_kbool(w, "open", (int) info->open) != SA_OK)
    {
        return SA_ERROR;
    }

    if (info->next_open_ms >= 0 && !info->open) {
        sa_handoff_time(info->next_open_ms, at);

        if (sa_jw_kstr(w, "next_open", at, ngx_strlen(at)) != SA_OK) {
            return SA_ERROR;
        }
    }

    if (sa_jw_close(w) != SA_OK || sa_jw_close(w) != SA_OK) {
        return SA_ERROR;
    }

    return SA_OK;
}


static void
ngx_http_sa_handoff_hours(ngx_http_sa_escalation_t *esc, int64_t now)
{
    sa_hours_t  *hours;

    hours = esc->conf->hours;

    if (hours == NULL) {
        esc->info.open = 1;
        esc->info.next_open_ms = -1;
        return;
    }

    esc->info.open = sa_hours_open(hours, now) ? 1 : 0;
    esc->info.next_open_ms = sa_hours_next_open(hours, now);
}


static ngx_uint_t
ngx_http_sa_is_high_stakes(ngx_http_sa_escalate_conf_t *conf,
    ngx_str_t *intent)
{
    ngx_str_t   *s;
    ngx_uint_t   i;

    if (conf->high_stakes == NULL || intent->len == 0) {
        return 0;
    }

    s = conf->high_stakes->elts;

    for (i = 0; i < conf->high_stakes->nelts; i++) {
        if (s[i].len == intent->len
            && ngx_strncmp(s[i].data, intent->data, intent->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/* the store */

static ngx_int_t
ngx_http_sa_escalate_dbis(ngx_log_t *log)
{
    static const char  *names[] = { "escalation", "handoff", "handoff_queue",
                                    NULL };
    static unsigned    *dbis[] = { &ngx_http_sa_esc_dbi,
                                   &ngx_http_sa_handoff_dbi,
                                   &ngx_http_sa_queue_dbi };

    if (ngx_http_sa_esc_dbis_open) {
        return NGX_OK;
    }

    if (ngx_http_sa_store_dbis(log, names, dbis, "escalation")
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_sa_esc_dbis_open = 1;

    return NGX_OK;
}


static int
ngx_http_sa_handoff_enqueue_handler(sa_store_t *st, struct MDB_txn *txn,
    void *data)
{
    ngx_http_sa_handoff_op_t  *op = data;

    int       rc;
    MDB_val   key, val;

    (void) st;

    key.mv_data = (void *) op->id;
    key.mv_size = op->id_len;

    op->existed = 0;

    rc = mdb_get(txn, ngx_http_sa_handoff_dbi, &key, &val);

    if (rc == MDB_SUCCESS) {
        if (sa_handoff_rec_decode(val.mv_data, val.mv_size, &op->found)
            == SA_OK)
        {
            op->existed = 1;
            op->found.url = NULL;
            op->found.body = NULL;

            /* the state says so from now on */
            val.mv_data = op->state;
            val.mv_size = op->state_len;

            return mdb_put(txn, ngx_http_sa_esc_dbi, &key, &val, 0);
        }

        /* a damaged record is replaced */

    } else if (rc != MDB_NOTFOUND) {
        return rc;
    }

    val.mv_data = op->record;
    val.mv_size = op->record_len;

    rc = mdb_put(txn, ngx_http_sa_handoff_dbi, &key, &val, 0);
    if (rc != MDB_SUCCESS) {
        return rc;
    }

    val.mv_data = (void *) "";
    val.mv_size = 0;

    rc = mdb_put(txn, ngx_http_sa_queue_dbi, &key, &val, 0);
    if (rc != MDB_SUCCESS) {
        return rc;
    }

    val.mv_data = op->state;
    val.mv_size = op->state_len;

    return mdb_put(txn, ngx_http_sa_esc_dbi, &key, &val, 0);
}


static int
ngx_http_sa_esc_state_handler(sa_store_t *st, struct MDB_txn *txn,
    void *data)
{
    ngx_http_sa_handoff_op_t  *op = data;

    MDB_val  key, val;

    (void) st;

    key.mv_data = (void *) op->id;
    key.mv_size = op->id_len;
    val.mv_data = op->state;
    val.mv_size = op->state_len;

    return mdb_put(txn, ngx_http_sa_esc_dbi, &key, &val, 0);
}


static ngx_int_t
ngx_http_sa_handoff_read(ngx_log_t *log, const char *id, size_t len,
    sa_handoff_rec_t *rec, char *ticket_id)
{
    ngx_int_t  rc;
    ngx_str_t  key;

    key.data = (u_char *) id;
    key.len = len;

    rc = ngx_http_sa_store_read(log, ngx_http_sa_handoff_dbi, &key,
                                ngx_http_sa_handoff_rec_read, rec,
                                "handoff ticket of conversation");

    if (rc != NGX_OK) {
        return NGX_DECLINED;
    }

    ngx_memcpy(ticket_id, rec->ticket_id, SA_HANDOFF_ID_MAX + 1);

    return NGX_OK;
}


/* the pointers into the map are dropped: the transaction is over */

static int
ngx_http_sa_handoff_rec_read(const void *buf, size_t len, void *out)
{
    sa_handoff_rec_t  *rec = out;

    if (sa_handoff_rec_decode(buf, len, rec) != SA_OK) {
        return SA_INVALID;
    }

    rec->url = NULL;
    rec->body = NULL;

    return SA_OK;
}


static int
ngx_http_sa_esc_state_decode(const void *buf, size_t len, void *out)
{
    return sa_esc_state_decode(buf, len, out);
}


/*
 * The POST is over: a ticket id means delivered (the record keeps the id,
 * the queue forgets the key); anything else puts it back in the queue,
 * due after the backoff.  ticket_id may be NULL (a failure known already).
 */

static ngx_int_t
ngx_http_sa_handoff_finish(ngx_log_t *log, const char *id,
    ngx_http_sa_fetch_t *f, char *ticket_id, int32_t *wait)
{
    int                        rc;
    char                       err[160], tid[SA_HANDOFF_ID_MAX + 1];
    int32_t                    minutes;
    sa_store_t                *store;
    ngx_http_sa_handoff_op_t   op;

    store = ngx_http_sa_store();

    ngx_memzero(&op, sizeof(ngx_http_sa_handoff_op_t));
    op.id = id;
    op.id_len = ngx_strlen(id);
    op.now_ms = ngx_http_sa_esc_now();

    minutes = -1;
    tid[0] = '\0';

    if (f->rc == NGX_OK && ticket_id != NULL) {
        if (sa_handoff_parse_reply((char *) f->body, f->len, tid,
                                   sizeof(tid), &minutes, err, sizeof(err))
            == SA_OK)
        {
            op.delivered = 1;
            op.ticket_id = tid;
            op.wait = minutes;

        } else {
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "support agent: the helpdesk's reply for "
                          "conversation \"%s\" is not usable (%s); the "
                          "ticket is sent again later", id, err);
        }

    } else if (ticket_id != NULL) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "support agent: the helpdesk did not take the ticket "
                      "of conversation \"%s\": %s; it is sent again later",
                      id, f->failure[0] ? f->failure : "failed");
    }

    rc = sa_store_write(store, "handoff", ngx_http_sa_handoff_finish_handler,
                        &op);

    if (rc != SA_OK) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "support agent: cannot update the handoff ticket of "
                      "conversation \"%s\": %s", id,
                      sa_store_last_error(store));
    }

    if (!op.delivered) {
        return NGX_DECLINED;
    }

    ngx_log_error(NGX_LOG_NOTICE, log, 0,
                  "support agent: the helpdesk took the ticket of "
                  "conversation \"%s\" as \"%s\" in %M ms", id, tid,
                  f->elapsed);

    if (ticket_id != NULL) {
        ngx_memcpy(ticket_id, tid, SA_HANDOFF_ID_MAX + 1);
        *wait = minutes;
    }

    return NGX_OK;
}


static int
ngx_http_sa_handoff_finish_handler(sa_store_t *st, struct MDB_txn *txn,
    void *data)
{
    ngx_http_sa_handoff_op_t  *op = data;

    int                rc;
    size_t             len;
    MDB_val            key, val;
    unsigned char     *record;
    sa_handoff_rec_t   rec;

    (void) st;

    key.mv_data = (void *) op->id;
    key.mv_size = op->id_len;

    rc = mdb_get(txn, ngx_http_sa_handoff_dbi, &key, &val);
    if (rc != MDB_SUCCESS) {
        return rc;
    }

    if (sa_handoff_rec_decode(val.mv_data, val.mv_size, &rec) != SA_OK) {
        return SA_INVALID;
    }

    if (rec.state == SA_HANDOFF_DELIVERED) {
        /* another worker's POST got there first: keep its id */
        op->delivered = 0;
        return SA_STORE_NOCOMMIT;
    }

    if (rec.lease_pid == ngx_pid) {
        rec.lease_pid = 0;
        rec.lease_until_ms = 0;
    }

    if (op->delivered) {
        rec.state = SA_HANDOFF_DELIVERED;
        rec.delivered_ms = op->now_ms;
        rec.wait = op->wait;
        ngx_cpystrn((u_char *) rec.ticket_id, (u_char *) op->ticket_id,
                    sizeof(rec.ticket_id));
        rec.body = NULL;
        rec.body_len = 0;

    } else {
        rec.next_ms = op->now_ms + sa_handoff_backoff(rec.attempts);
    }

    if (sa_handoff_rec_encode(&rec, &record, &len) != SA_OK) {
        return SA_ERROR;
    }

    val.mv_data = record;
    val.mv_size = len;

    rc = mdb_put(txn, ngx_http_sa_handoff_dbi, &key, &val, 0);
    free(record);

    if (rc != MDB_SUCCESS) {
        return rc;
    }

    if (op->delivered) {
        rc = mdb_del(txn, ngx_http_sa_queue_dbi, &key, NULL);
        if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
            return rc;
        }
    }

    return SA_OK;
}


/* the queue: each worker looks for due tickets every second */

ngx_int_t
ngx_http_sa_handoff_init_process(ngx_cycle_t *cycle)
{
    ngx_http_sa_main_conf_t  *smcf;

    ngx_queue_init(&ngx_http_sa_handoff_jobs);
    ngx_http_sa_handoff_njobs = 0;
    ngx_http_sa_esc_dbis_open = 0;

    smcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_support_agent_module);

    if (smcf == NULL || smcf->helpdesks.nelts == 0
        || ngx_http_sa_store() == NULL)
    {
        return NGX_OK;
    }

    ngx_http_sa_helpdesks = &smcf->helpdesks;

    ngx_http_sa_handoff_timer.handler = ngx_http_sa_handoff_tick;
    ngx_http_sa_handoff_timer.log = cycle->log;
    ngx_http_sa_handoff_timer.data = cycle;
    ngx_http_sa_handoff_timer.cancelable = 1;

    /* soon after a start or a reload: tickets may be waiting */
    ngx_add_timer(&ngx_http_sa_handoff_timer, 200 + ngx_pid % 300);

    return NGX_OK;
}


void
ngx_http_sa_handoff_exit_process(ngx_cycle_t *cycle)
{
    ngx_queue_t                *q;
    ngx_http_sa_handoff_job_t  *job;

    (void) cycle;

    if (ngx_http_sa_handoff_timer.timer_set) {
        ngx_del_timer(&ngx_http_sa_handoff_timer);
    }

    if (ngx_http_sa_handoff_jobs.next != NULL) {
        while (!ngx_queue_empty(&ngx_http_sa_handoff_jobs)) {
            q = ngx_queue_head(&ngx_http_sa_handoff_jobs);
            ngx_queue_remove(q);
            job = ngx_queue_data(q, ngx_http_sa_handoff_job_t, queue);

            /* its lease names a dead pid: another worker sends it */
            ngx_http_sa_fetch_cancel(&job->fetch);
            free(job);
        }
    }

    ngx_http_sa_handoff_njobs = 0;
    ngx_http_sa_helpdesks = NULL;
    ngx_http_sa_esc_dbis_open = 0;

    sa_analyzer_free(ngx_http_sa_esc_analyzer);
    ngx_http_sa_esc_analyzer = NULL;
}


static void
ngx_http_sa_handoff_tick(ngx_event_t *ev)
{
    int                rc;
    char               due[NGX_HTTP_SA_HANDOFF_JOBS][SA_ID_MAX + 1];
    size_t             len[NGX_HTTP_SA_HANDOFF_JOBS];
    int64_t            now;
    MDB_val            key, val;
    MDB_txn           *txn;
    MDB_cursor        *cur;
    ngx_uint_t         i, n, room;
    sa_store_t        *store;
    sa_handoff_rec_t   rec;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    ngx_add_timer(ev, NGX_HTTP_SA_HANDOFF_TICK);

    room = NGX_HTTP_SA_HANDOFF_JOBS - ngx_http_sa_handoff_njobs;

    if (room == 0 || ngx_http_sa_escalate_dbis(ev->log) != NGX_OK) {
        return;
    }

    store = ngx_http_sa_store();
    now = ngx_http_sa_esc_now();
    n = 0;

    if (sa_store_read_begin(store, &txn) != SA_OK) {
        return;
    }

    rc = mdb_cursor_open(txn, ngx_http_sa_queue_dbi, &cur);

    if (rc == MDB_SUCCESS) {
        rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);

        while (rc == MDB_SUCCESS && n < room) {
            if (key.mv_size <= SA_ID_MAX
                && mdb_get(txn, ngx_http_sa_handoff_dbi, &key, &val)
                   == MDB_SUCCESS
                && sa_handoff_rec_decode(val.mv_data, val.mv_size, &rec)
                   == SA_OK
                && rec.state == SA_HANDOFF_QUEUED
                && rec.next_ms <= now
                && !ngx_http_sa_lease_held(&rec, now))
            {
                ngx_memcpy(due[n], key.mv_data, key.mv_size);
                due[n][key.mv_size] = '\0';
                len[n] = key.mv_size;
                n++;
            }

            rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
        }

        mdb_cursor_close(cur);
    }

    sa_store_read_end(store);

    for (i = 0; i < n; i++) {
        ngx_http_sa_handoff_deliver(ev->log, due[i], len[i]);
    }
}


static ngx_uint_t
ngx_http_sa_lease_held(const sa_handoff_rec_t *rec, int64_t now)
{
    if (rec->lease_pid == 0 || rec->lease_until_ms <= now) {
        return 0;
    }

    if (rec->lease_pid == ngx_pid) {
        return 1;
    }

    /* a crashed worker's lease is over at once */
    return kill(rec->lease_pid, 0) == 0 || ngx_errno == NGX_EPERM;
}


static void
ngx_http_sa_handoff_deliver(ngx_log_t *log, const char *id, size_t len)
{
    int                         rc;
    char                        ticket_id[SA_HANDOFF_ID_MAX + 1];
    int32_t                     wait;
    sa_store_t                 *store;
    ngx_http_sa_service_t      *svc;
    ngx_http_sa_handoff_op_t    op;
    ngx_http_sa_handoff_job_t  *job;

    store = ngx_http_sa_store();

    ngx_memzero(&op, sizeof(ngx_http_sa_handoff_op_t));
    op.id = id;
    op.id_len = len;
    op.now_ms = ngx_http_sa_esc_now();

    rc = sa_store_write(store, "handoff", ngx_http_sa_handoff_claim_handler,
                        &op);

    if (rc != SA_OK || op.body == NULL) {
        /* taken by another worker meanwhile, or an error (logged) */
        if (rc != SA_OK) {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "support agent: cannot claim the handoff ticket of "
                          "conversation \"%s\": %s", id,
                          sa_store_last_error(store));
        }

        free(op.url);
        free(op.body);
        return;
    }

    svc = ngx_http_sa_helpdesk(op.url, ngx_strlen(op.url));

    job = calloc(1, sizeof(ngx_http_sa_handoff_job_t));

    if (svc == NULL || job == NULL) {
        if (svc == NULL) {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "support agent: no helpdesk is configured for the "
                          "queued ticket of conversation \"%s\"", id);
        }

        free(job);
        free(op.url);
        free(op.body);
        return;
    }

    ngx_memcpy(job->id, id, len);
    job->id[len] = '\0';
    ngx_sprintf((u_char *) job->header, NGX_HTTP_SA_IDEMPOTENCY "%s%Z", id);

    job->fetch.log = log;
    job->fetch.data = job;
    job->fetch.on_done = ngx_http_sa_handoff_job_done;
    job->fetch.what = "helpdesk";
    job->fetch.header = job->header;

    ngx_log_error(NGX_LOG_INFO, log, 0,
                  "support agent: sending the queued ticket of conversation "
                  "\"%s\" (attempt %uD)", id, op.found.attempts);

    rc = ngx_http_sa_fetch_start(&job->fetch, svc, NULL, op.body,
                                 op.body_len);

    free(op.url);
    free(op.body);

    if (rc != NGX_OK) {
        job->fetch.rc = NGX_ERROR;
        (void) ngx_http_sa_handoff_finish(log, job->id, &job->fetch,
                                          ticket_id, &wait);
        ngx_http_sa_fetch_cancel(&job->fetch);
        free(job);
        return;
    }

    ngx_queue_insert_tail(&ngx_http_sa_handoff_jobs, &job->queue);
    ngx_http_sa_handoff_njobs++;
}


static int
ngx_http_sa_handoff_claim_handler(sa_store_t *st, struct MDB_txn *txn,
    void *data)
{
    ngx_http_sa_handoff_op_t  *op = data;

    int                rc;
    size_t             len;
    MDB_val            key, val;
    unsigned char     *record;
    sa_handoff_rec_t   rec;
    ngx_msec_t         timeout;
    ngx_http_sa_service_t  *svc;

    (void) st;

    /* the handler may run again after the map grew */
    free(op->url);
    free(op->body);
    op->url = NULL;
    op->body = NULL;

    key.mv_data = (void *) op->id;
    key.mv_size = op->id_len;

    rc = mdb_get(txn, ngx_http_sa_handoff_dbi, &key, &val);
    if (rc == MDB_NOTFOUND) {
        return SA_STORE_NOCOMMIT;
    }

    if (rc != MDB_SUCCESS) {
        return rc;
    }

    if (sa_handoff_rec_decode(val.mv_data, val.mv_size, &rec) != SA_OK
        || rec.state != SA_HANDOFF_QUEUED
        || rec.next_ms > op->now_ms
        || ngx_http_sa_lease_held(&rec, op->now_ms))
    {
        return SA_STORE_NOCOMMIT;
    }

    op->url = malloc(rec.url_len + 1);
    op->body = malloc(rec.body_len + 1);

    if (op->url == NULL || op->body == NULL) {
        return SA_ERROR;
    }

    ngx_memcpy(op->url, rec.url, rec.url_len);
    op->url[rec.url_len] = '\0';
    ngx_memcpy(op->body, rec.body, rec.body_len);
    op->body[rec.body_len] = '\0';
    op->body_len = rec.body_len;

    svc = ngx_http_sa_helpdesk(op->url, rec.url_len);
    timeout = svc ? svc->timeout : 60000;

    rec.attempts++;
    rec.lease_pid = ngx_pid;
    rec.lease_until_ms = op->now_ms + timeout + NGX_HTTP_SA_HANDOFF_LEASE;
    op->found = rec;

    if (sa_handoff_rec_encode(&rec, &record, &len) != SA_OK) {
        return SA_ERROR;
    }

    val.mv_data = record;
    val.mv_size = len;

    rc = mdb_put(txn, ngx_http_sa_handoff_dbi, &key, &val, 0);
    free(record);

    return rc;
}


static void
ngx_http_sa_handoff_job_done(ngx_http_sa_fetch_t *f)
{
    char                        ticket_id[SA_HANDOFF_ID_MAX + 1];
    int32_t                     wait;
    ngx_http_sa_handoff_job_t  *job;

    job = f->data;

    (void) ngx_http_sa_handoff_finish(f->log, job->id, f, ticket_id, &wait);

    ngx_queue_remove(&job->queue);
    ngx_http_sa_handoff_njobs--;

    ngx_http_sa_fetch_cancel(f);
    free(job);
}


/* the helpdesk a queued ticket was meant for, else the first one */

static ngx_http_sa_service_t *
ngx_http_sa_helpdesk(const char *url, size_t len)
{
    ngx_uint_t               i;
    ngx_http_sa_service_t  **svc;

    if (ngx_http_sa_helpdesks == NULL || ngx_http_sa_helpdesks->nelts == 0) {
        return NULL;
    }

    svc = ngx_http_sa_helpdesks->elts;

    for (i = 0; i < ngx_http_sa_helpdesks->nelts; i++) {
        if (svc[i]->url.len == len
            && ngx_strncmp(svc[i]->url.data, url, len) == 0)
        {
            return svc[i];
        }
    }

    return svc[0];
}


static int64_t
ngx_http_sa_esc_now(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (int64_t) tp->sec * 1000 + tp->msec;
}
