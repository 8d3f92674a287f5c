
/*
 * Copyright (C) ngx_support_agent authors
 *
 * kb-build publishes a model by rename()ing a finished file onto the
 * configured path.  Each worker looks at most once a second whether the
 * path is another file now (sa_intent_changed()) and, if so, opens it and
 * closes the old handle: classifying is synchronous and its strings are
 * copied out, so nothing refers to the old model after the swap.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_support_agent_module.h"
#include "ngx_http_support_agent_intent.h"
#include "ngx_http_support_agent_reply.h"
#include "sa_json.h"


#define NGX_HTTP_SA_INTENT_CHECK  1


static void ngx_http_sa_intents_cleanup(void *data);
static sa_intent_t *ngx_http_sa_intents_handle(ngx_http_sa_intents_t *h,
    ngx_log_t *log);
static ngx_int_t ngx_http_sa_intent_copy(ngx_pool_t *pool, ngx_str_t *dst,
    const char *src);
static ngx_int_t ngx_http_sa_intent_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static void ngx_http_sa_intent_set_variable(ngx_http_request_t *r,
    ngx_int_t index, ngx_str_t *value);
static void ngx_http_sa_classify_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_sa_classify_reply(ngx_http_request_t *r,
    const char *text, size_t len);


static ngx_int_t  ngx_http_sa_intent_index = NGX_ERROR;
static ngx_int_t  ngx_http_sa_route_index = NGX_ERROR;


static ngx_http_variable_t  ngx_http_sa_intent_vars[] = {

    { ngx_string("support_agent_intent"), NULL,
      ngx_http_sa_intent_variable, 0,
      NGX_HTTP_VAR_NOHASH, 0 },

    { ngx_string("support_agent_route"), NULL,
      ngx_http_sa_intent_variable, 0,
      NGX_HTTP_VAR_NOHASH, 0 },

      ngx_http_null_variable
};


/*
 * At configuration time: one entry per model file, checked by opening it
 * so that "nginx -t" reports a missing or broken model, or rules that do
 * not parse.
 */

ngx_http_sa_intents_t *
ngx_http_sa_intents_add(ngx_conf_t *cf, ngx_str_t *path)
{
    char                      err[512];
    ngx_str_t                 full;
    ngx_uint_t                i;
    sa_intent_t              *m;
    ngx_pool_cleanup_t       *cln;
    ngx_http_sa_intents_t   **files, *h;
    ngx_http_sa_main_conf_t  *smcf;

    full = *path;

    if (ngx_conf_full_name(cf->cycle, &full, 1) != NGX_OK) {
        return NULL;
    }

    smcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_support_agent_module);

    files = smcf->intents.elts;

    for (i = 0; i < smcf->intents.nelts; i++) {
        if (files[i]->path.len == full.len
            && ngx_strncmp(files[i]->path.data, full.data, full.len) == 0)
        {
            return files[i];
        }
    }

    if (sa_intent_open((char *) full.data, &m, err, sizeof(err)) != SA_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "cannot open intent model \"%V\": %s", &full,
                           err);
        return NULL;
    }

    sa_intent_close(m);

    h = ngx_pcalloc(cf->pool, sizeof(ngx_http_sa_intents_t));
    if (h == NULL) {
        return NULL;
    }

    h->path = full;

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_sa_intents_cleanup;
    cln->data = h;

    files = ngx_array_push(&smcf->intents);
    if (files == NULL) {
        return NULL;
    }

    *files = h;

    return h;
}


static void
ngx_http_sa_intents_cleanup(void *data)
{
    ngx_http_sa_intents_t  *h = data;

    sa_intent_close(h->model);
    h->model = NULL;
}


void
ngx_http_sa_intent_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                i;
    ngx_http_sa_intents_t   **files;
    ngx_http_sa_main_conf_t  *smcf;

    smcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_support_agent_module);
    if (smcf == NULL) {
        return;
    }

    files = smcf->intents.elts;

    for (i = 0; i < smcf->intents.nelts; i++) {
        sa_intent_close(files[i]->model);
        files[i]->model = NULL;
    }
}


/* the process's handle, opened or swapped for a newly published file */

static sa_intent_t *
ngx_http_sa_intents_handle(ngx_http_sa_intents_t *h, ngx_log_t *log)
{
    char          err[512];
    time_t        now;
    sa_intent_t  *m;

    now = ngx_time();

    if (h->model != NULL
        && (now - h->checked < NGX_HTTP_SA_INTENT_CHECK
            || !sa_intent_changed(h->model)))
    {
        h->checked = now;
        return h->model;
    }

    h->checked = now;

    if (sa_intent_open((char *) h->path.data, &m, err, sizeof(err))
        != SA_OK)
    {
        /* keep routing with the model that is open */
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "support agent: cannot open intent model \"%V\": %s",
                      &h->path, err);
        return h->model;
    }

    if (h->model != NULL) {
        sa_intent_close(h->model);
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "support agent: intent model \"%V\" reloaded",
                      &h->path);
    }

    h->model = m;

    return m;
}


ngx_int_t
ngx_http_sa_intent_route(ngx_http_request_t *r, ngx_http_sa_intents_t *h,
    double threshold, const char *text, size_t len,
    ngx_http_sa_routed_t *out)
{
    float               saved;
    ngx_uint_t          i;
    sa_intent_t        *m;
    sa_intent_result_t  res;

    ngx_memzero(out, sizeof(ngx_http_sa_routed_t));

    m = ngx_http_sa_intents_handle(h, r->connection->log);
    if (m == NULL) {
        return NGX_DECLINED;
    }

    /* the handle is shared by locations: a location's threshold is set
       for its call only */
    saved = sa_intent_threshold(m);

    if (threshold >= 0) {
        sa_intent_set_threshold(m, (float) threshold);
    }

    i = sa_intent_classify(m, text, len, &res);

    sa_intent_set_threshold(m, saved);

    if (i != SA_OK) {
        return NGX_ERROR;
    }

    /* the strings point into the handle, which a swap may close */
    if (ngx_http_sa_intent_copy(r->pool, &out->intent, res.intent) != NGX_OK
        || ngx_http_sa_intent_copy(r->pool, &out->route, res.route_name)
           != NGX_OK
        || ngx_http_sa_intent_copy(r->pool, &out->rule,
                                   res.rule ? res.rule : "")
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    out->confidence = res.confidence;
    out->kind = res.route;
    out->ntop = res.ntop;

    for (i = 0; i < res.ntop; i++) {
        if (ngx_http_sa_intent_copy(r->pool, &out->top[i], res.top[i].intent)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        out->top_p[i] = res.top[i].p;
    }

    ngx_http_sa_intent_set_variable(r, ngx_http_sa_intent_index,
                                    &out->intent);
    ngx_http_sa_intent_set_variable(r, ngx_http_sa_route_index, &out->route);

    return NGX_OK;
}


static ngx_int_t
ngx_http_sa_intent_copy(ngx_pool_t *pool, ngx_str_t *dst, const char *src)
{
    dst->len = ngx_strlen(src);

    dst->data = ngx_pnalloc(pool, dst->len + 1);
    if (dst->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(dst->data, src, dst->len + 1);

    return NGX_OK;
}


/*
 * $support_agent_intent, $support_agent_route: empty until a message is
 * routed; routing stores the values in the request's variable slots, so
 * access logs written at the end of the request see them.
 */

ngx_int_t
ngx_http_sa_intent_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_sa_intent_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    v = ngx_http_sa_intent_vars;

    ngx_http_sa_intent_index = ngx_http_get_variable_index(cf, &v[0].name);
    ngx_http_sa_route_index = ngx_http_get_variable_index(cf, &v[1].name);

    if (ngx_http_sa_intent_index == NGX_ERROR
        || ngx_http_sa_route_index == NGX_ERROR)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_sa_intent_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    v->not_found = 1;

    return NGX_OK;
}


static void
ngx_http_sa_intent_set_variable(ngx_http_request_t *r, ngx_int_t index,
    ngx_str_t *value)
{
    ngx_http_variable_value_t  *v;

    if (index == NGX_ERROR) {
        return;
    }

    v = &r->variables[index];

    v->data = value->data;
    v->len = value->len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->escape = 0;
}


/*
 * POST {"message": "..."} (or GET ?q=...): the route of a message, for
 * operators checking their rules and for evaluating the router.
 */

ngx_int_t
ngx_http_sa_classify_handler(ngx_http_request_t *r)
{
    u_char                  *dst, *src;
    ngx_int_t                rc;
    ngx_str_t                q;
    ngx_http_sa_loc_conf_t  *conf;

    conf = ngx_http_get_module_loc_conf(r, ngx_http_support_agent_module);

    if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        if (ngx_http_arg(r, (u_char *) "q", 1, &q) != NGX_OK || q.len == 0) {
            return ngx_http_sa_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "invalid_request",
                                          "the query parameter \"q\" is "
                                          "required", NULL);
        }

        dst = ngx_pnalloc(r->pool, q.len + 1);
        if (dst == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        src = q.data;
        q.data = dst;
        ngx_unescape_uri(&dst, &src, q.len, 0);
        q.len = dst - q.data;

        for (src = q.data; src < dst; src++) {
            if (*src == '+') {
                *src = ' ';
            }
        }

        return ngx_http_sa_classify_reply(r, (char *) q.data, q.len);
    }

    if (r->method != NGX_HTTP_POST) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_sa_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                      "method_not_allowed",
                                      "use POST with a JSON body, or GET "
                                      "with ?q=", NULL);
    }

    if (!ngx_http_sa_is_json(r)
        || r->headers_in.content_length_n > (off_t) conf->max_body)
    {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        if (!ngx_http_sa_is_json(r)) {
            return ngx_http_sa_send_error(r, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                          "unsupported_media_type",
                                          "the body must be "
                                          "application/json", NULL);
        }

        return ngx_http_sa_send_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                      "body_too_large",
                                      "the request body is too large", NULL);
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_sa_classify_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_sa_classify_body(ngx_http_request_t *r)
{
    char                     err[256];
    u_char                  *body;
    size_t                   len;
    ngx_int_t                rc;
    sa_req_status_e          status;
    sa_chat_request_t        req;
    ngx_http_sa_loc_conf_t  *conf;

    conf = ngx_http_get_module_loc_conf(r, ngx_http_support_agent_module);

    if (ngx_http_sa_read_body(r, conf->max_body, &body, &len) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (len > conf->max_body) {
        ngx_http_finalize_request(r,
            ngx_http_sa_send_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                   "body_too_large",
                                   "the request body is too large", NULL));
        return;
    }

    status = sa_chat_request_parse((char *) body, len, conf->max_message,
                                   &req, err, sizeof(err));

    if (status == SA_REQ_OK) {
        rc = ngx_http_sa_classify_reply(r, req.message, req.message_len);

    } else if (status == SA_REQ_NO_MEMORY) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;

    } else {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "support agent: classify: %s", err);

        rc = ngx_http_sa_send_error(r, NGX_HTTP_BAD_REQUEST,
                                    status == SA_REQ_MALFORMED
                                    || status == SA_REQ_NOT_OBJECT
                                    ? "invalid_json"
                                    : status == SA_REQ_BAD_UTF8
                                    ? "invalid_utf8" : "invalid_request",
                                    err, NULL);
    }

    sa_chat_request_free(&req);

    ngx_http_finalize_request(r, rc);
}


static ngx_int_t
ngx_http_sa_classify_reply(ngx_http_request_t *r, const char *text,
    size_t len)
{
    size_t                   jlen;
    sa_jw_t                 *w;
    ngx_int_t                rc;
    ngx_uint_t               i;
    const char              *json;
    ngx_http_sa_routed_t     routed;
    ngx_http_sa_loc_conf_t  *conf;

    conf = ngx_http_get_module_loc_conf(r, ngx_http_support_agent_module);

    rc = ngx_http_sa_intent_route(r, conf->intents, conf->intent_threshold,
                                  text, len, &routed);

    if (rc == NGX_DECLINED) {
        return ngx_http_sa_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "router_unavailable",
                                      "the intent model cannot be read",
                                      NULL);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    w = sa_jw_new();
    if (w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (sa_jw_open(w) != SA_OK
        || sa_jw_kstr(w, "intent", (char *) routed.intent.data,
                      routed.intent.len) != SA_OK
        || sa_jw_kstr(w, "route", (char *) routed.route.data,
                      routed.route.len) != SA_OK
        || sa_jw_kdouble(w, "confidence", routed.confidence) != SA_OK
        || sa_jw_key(w, "signals") != SA_OK
        || sa_jw_open(w) != SA_OK
        || (routed.rule.len
            && sa_jw_kstr(w, "rule", (char *) routed.rule.data,
                          routed.rule.len) != SA_OK)
        || sa_jw_close(w) != SA_OK
        || sa_jw_key(w, "top") != SA_OK
        || sa_jw_array_open(w) != SA_OK)
    {
        goto failed;
    }

    for (i = 0; i < routed.ntop; i++) {
        if (sa_jw_open(w) != SA_OK
            || sa_jw_kstr(w, "intent", (char *) routed.top[i].data,
                          routed.top[i].len) != SA_OK
            || sa_jw_kdouble(w, "p", routed.top_p[i]) != SA_OK
            || sa_jw_close(w) != SA_OK)
        {
            goto failed;
        }
    }

    if (sa_jw_array_close(w) != SA_OK || sa_jw_close(w) != SA_OK) {
        goto failed;
    }

    json = sa_jw_buf(w, &jlen);
    rc = ngx_http_sa_send_json(r, NGX_HTTP_OK, json, jlen);
    sa_jw_free(w);

    return rc;

failed:

    sa_jw_free(w);
    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}
