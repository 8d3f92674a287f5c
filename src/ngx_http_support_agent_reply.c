
/*
 * Copyright (C) ngx_support_agent authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_support_agent_module.h"
#include "ngx_http_support_agent_reply.h"
#include "sa_json.h"
#include "sa_sse.h"


#define NGX_HTTP_SA_MIN_BUF  512


static ngx_int_t ngx_http_sa_out_send(ngx_http_request_t *r,
    ngx_http_sa_out_t *out, ngx_uint_t last);
static ngx_chain_t *ngx_http_sa_out_buf(ngx_http_request_t *r,
    ngx_http_sa_out_t *out, size_t size);


static ngx_str_t  ngx_http_sa_json_type = ngx_string("application/json");
static ngx_str_t  ngx_http_sa_sse_type =
    ngx_string("text/event-stream; charset=utf-8");


ngx_int_t
ngx_http_sa_send_json(ngx_http_request_t *r, ngx_uint_t status,
    const char *json, size_t len)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   cl;

    r->headers_out.status = status;
    r->headers_out.content_type = ngx_http_sa_json_type;
    r->headers_out.content_type_len = ngx_http_sa_json_type.len;
    r->headers_out.content_length_n = len + 1;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_create_temp_buf(r->pool, len + 1);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->last = ngx_cpymem(b->last, json, len);
    *b->last++ = '\n';
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    cl.buf = b;
    cl.next = NULL;

    return ngx_http_output_filter(r, &cl);
}


ngx_int_t
ngx_http_sa_error_json(ngx_pool_t *pool, const char *code,
    const char *message, ngx_str_t *conversation_id, ngx_str_t *out)
{
    size_t       len;
    sa_jw_t     *w;
    const char  *buf;

    w = sa_jw_new();
    if (w == NULL) {
        return NGX_ERROR;
    }

    if (sa_jw_open(w) != SA_OK
        || sa_jw_key(w, "error") != SA_OK
        || sa_jw_open(w) != SA_OK
        || sa_jw_kstr(w, "code", code, ngx_strlen(code)) != SA_OK
        || sa_jw_kstr(w, "message", message, ngx_strlen(message)) != SA_OK
        || sa_jw_close(w) != SA_OK
        || (conversation_id != NULL && conversation_id->len
            && sa_jw_kstr(w, "conversation_id",
                          (char *) conversation_id->data,
                          conversation_id->len)
               != SA_OK)
        || sa_jw_close(w) != SA_OK)
    {
        sa_jw_free(w);
        return NGX_ERROR;
    }

    buf = sa_jw_buf(w, &len);

    out->data = ngx_pnalloc(pool, len);
    if (out->data == NULL) {
        sa_jw_free(w);
        return NGX_ERROR;
    }

    ngx_memcpy(out->data, buf, len);
    out->len = len;

    sa_jw_free(w);

    return NGX_OK;
}


ngx_int_t
ngx_http_sa_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *message, ngx_str_t *conversation_id)
{
    ngx_str_t         json;
    ngx_table_elt_t  *allow;

    if (ngx_http_sa_error_json(r->pool, code, message, conversation_id,
                               &json)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (status == NGX_HTTP_NOT_ALLOWED) {
        allow = ngx_list_push(&r->headers_out.headers);
        if (allow == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        allow->hash = 1;
        ngx_str_set(&allow->key, "Allow");
        ngx_str_set(&allow->value, "POST");
    }

    return ngx_http_sa_send_json(r, status, (char *) json.data, json.len);
}


ngx_int_t
ngx_http_sa_sse_start(ngx_http_request_t *r, ngx_http_sa_out_t *out)
{
    ngx_int_t         rc;
    ngx_table_elt_t  *h;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_type = ngx_http_sa_sse_type;
    r->headers_out.content_type_len = ngx_http_sa_sse_type.len;
    r->headers_out.content_type_lowcase = NULL;

    ngx_http_clear_content_length(r);
    ngx_http_clear_accept_ranges(r);

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "no-cache");

    /* tells an nginx in front of us not to buffer the stream */

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "X-Accel-Buffering");
    ngx_str_set(&h->value, "no");

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc == NGX_OK ? NGX_ERROR : rc;
    }

    out->started = 1;

    return NGX_OK;
}


ngx_int_t
ngx_http_sa_sse_event(ngx_http_request_t *r, ngx_http_sa_out_t *out,
    const char *event, const char *payload, size_t len)
{
    size_t        size;
    ngx_chain_t  *cl;

    size = sa_sse_event_len(event, payload, len);

    cl = ngx_http_sa_out_buf(r, out, size);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    cl->buf->last = (u_char *) sa_sse_event_write((char *) cl->buf->pos,
                                                  event, payload, len);

    return ngx_http_sa_out_send(r, out, 0);
}


ngx_int_t
ngx_http_sa_sse_comment(ngx_http_request_t *r, ngx_http_sa_out_t *out,
    const char *text)
{
    size_t        len;
    ngx_chain_t  *cl;

    len = ngx_strlen(text);

    cl = ngx_http_sa_out_buf(r, out, len + 4);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    cl->buf->last = ngx_sprintf(cl->buf->pos, ": %s\n\n", text);

    return ngx_http_sa_out_send(r, out, 0);
}


ngx_int_t
ngx_http_sa_sse_finish(ngx_http_request_t *r, ngx_http_sa_out_t *out)
{
    if (out->finished) {
        return NGX_OK;
    }

    out->finished = 1;

    return ngx_http_sa_out_send(r, out, 1);
}


ngx_int_t
ngx_http_sa_out_flush(ngx_http_request_t *r, ngx_http_sa_out_t *out)
{
    ngx_int_t  rc;

    rc = ngx_http_output_filter(r, NULL);

    ngx_chain_update_chains(r->pool, &out->free, &out->busy, NULL,
                            (ngx_buf_tag_t) &ngx_http_support_agent_module);

    return rc;
}


/*
 * Takes a buffer of at least size bytes from the free list (or a new one)
 * and queues it as the next one to send; the caller fills it.
 */

static ngx_chain_t *
ngx_http_sa_out_buf(ngx_http_request_t *r, ngx_http_sa_out_t *out,
    size_t size)
{
    u_char       *p;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    cl = ngx_chain_get_free_buf(r->pool, &out->free);
    if (cl == NULL) {
        return NULL;
    }

    b = cl->buf;

    if (b->start == NULL || (size_t) (b->end - b->start) < size) {
        size = ngx_max(size, NGX_HTTP_SA_MIN_BUF);

        p = ngx_palloc(r->pool, size);
        if (p == NULL) {
            return NULL;
        }

        b->start = p;
        b->end = p + size;
    }

    b->pos = b->start;
    b->last = b->start;
    b->temporary = 1;
    b->memory = 0;
    b->flush = 1;
    b->last_buf = 0;
    b->last_in_chain = 1;
    b->tag = (ngx_buf_tag_t) &ngx_http_support_agent_module;

    cl->next = NULL;
    out->pending = cl;

    return cl;
}


/* sends the pending buffer (if any), or a last empty one when last is set */

static ngx_int_t
ngx_http_sa_out_send(ngx_http_request_t *r, ngx_http_sa_out_t *out,
    ngx_uint_t last)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    cl = out->pending;
    out->pending = NULL;

    if (last) {
        if (cl == NULL) {
            cl = ngx_chain_get_free_buf(r->pool, &out->free);
            if (cl == NULL) {
                return NGX_ERROR;
            }

            b = cl->buf;
            ngx_memzero(b, sizeof(ngx_buf_t));
            b->tag = (ngx_buf_tag_t) &ngx_http_support_agent_module;
            cl->next = NULL;
        }

        cl->buf->last_buf = (r == r->main) ? 1 : 0;
        cl->buf->last_in_chain = 1;
        cl->buf->flush = 1;
    }

    if (cl == NULL) {
        return NGX_OK;
    }

    rc = ngx_http_output_filter(r, cl);

    ngx_chain_update_chains(r->pool, &out->free, &out->busy, &cl,
                            (ngx_buf_tag_t) &ngx_http_support_agent_module);

    return rc;
}


/* Content-Type: application/json, with or without parameters */

ngx_uint_t
ngx_http_sa_is_json(ngx_http_request_t *r)
{
    u_char     *p, *last;
    ngx_str_t  *type;

    if (r->headers_in.content_type == NULL) {
        return 0;
    }

    type = &r->headers_in.content_type->value;
    p = type->data;
    last = p + type->len;

    while (p < last && *p != ';' && *p != ' ') {
        p++;
    }

    return (size_t) (p - type->data) == sizeof("application/json") - 1
           && ngx_strncasecmp(type->data, (u_char *) "application/json",
                              sizeof("application/json") - 1) == 0;
}


/* the body as one piece of memory, whether nginx kept it in memory or in
   a temporary file; a body larger than max is not copied (*len says its
   size) */

ngx_int_t
ngx_http_sa_read_body(ngx_http_request_t *r, size_t max, u_char **body,
    size_t *len)
{
    u_char                  *p;
    off_t                    size;
    ssize_t                  n;
    ngx_buf_t               *b;
    ngx_chain_t             *cl;

    *body = (u_char *) "";
    *len = 0;

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    size = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        size += ngx_buf_size(cl->buf);
    }

    if (size == 0) {
        return NGX_OK;
    }

    /* larger bodies are refused by the caller without copying them */
    if (size > (off_t) max) {
        *len = (size_t) size;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, (size_t) size + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    *body = p;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            n = ngx_read_file(b->file, p, (size_t) (b->file_last - b->file_pos),
                              b->file_pos);
            if (n == NGX_ERROR) {
                return NGX_ERROR;
            }

            p += n;
            continue;
        }

        p = ngx_cpymem(p, b->pos, b->last - b->pos);
    }

    *p = '\0';
    *len = p - *body;

    return NGX_OK;
}
