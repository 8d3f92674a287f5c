
/*
 * Copyright (C) ngx_support_agent authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_support_agent_fetch.h"
#include "sa_remote.h"


static size_t ngx_http_sa_fetch_write(char *ptr, size_t size, size_t nmemb,
    void *userdata);
static void ngx_http_sa_fetch_done(ngx_http_sa_transfer_t *t);
static void ngx_http_sa_fetch_exit(ngx_http_sa_transfer_t *t);
static void ngx_http_sa_fetch_ready(ngx_http_sa_transfer_t *t);
static void ngx_http_sa_fetch_free(ngx_http_sa_fetch_t *f);


ngx_int_t
ngx_http_sa_fetch_start(ngx_http_sa_fetch_t *f, ngx_http_sa_service_t *svc,
    const char *path, const char *body, size_t len)
{
    size_t              plen;
    CURL               *easy;
    u_char             *url;
    struct curl_slist  *h;

    f->rc = NGX_ERROR;
    f->status = 0;
    f->body = NULL;
    f->len = 0;
    f->failure[0] = '\0';
    f->errbuf[0] = '\0';
    f->too_big = 0;
    f->max_body = svc->max_body;

    plen = path ? ngx_strlen(path) : 0;

    f->request = malloc(len + 1 + svc->url.len + plen + 1);
    if (f->request == NULL) {
        goto failed;
    }

    ngx_memcpy(f->request, body, len);
    f->request[len] = '\0';

    /* the URL lives behind the body, in the same allocation */
    url = (u_char *) f->request + len + 1;
    ngx_memcpy(url, svc->url.data, svc->url.len);

    if (plen) {
        /* "http://q:6333/" + "/collections/..." */
        if (svc->url.len && url[svc->url.len - 1] == '/' && path[0] == '/') {
            path++;
            plen--;
        }

        ngx_memcpy(url + svc->url.len, path, plen);
    }

    url[svc->url.len + plen] = '\0';

    easy = curl_easy_init();
    if (easy == NULL) {
        goto failed;
    }

    f->transfer.easy = easy;
    f->transfer.data = f;
    f->transfer.on_ready = ngx_http_sa_fetch_ready;
    f->transfer.on_done = ngx_http_sa_fetch_done;
    f->transfer.on_exit = ngx_http_sa_fetch_exit;

    h = curl_slist_append(NULL, "Content-Type: application/json");
    if (h == NULL) {
        goto failed;
    }

    f->headers = h;

    if (curl_slist_append(f->headers, "Accept: application/json") == NULL
        || curl_slist_append(f->headers, "Expect:") == NULL)
    {
        goto failed;
    }

    if (svc->key_header.len
        && curl_slist_append(f->headers, (char *) svc->key_header.data)
           == NULL)
    {
        goto failed;
    }

    if (f->header != NULL
        && curl_slist_append(f->headers, f->header) == NULL)
    {
        goto failed;
    }

    curl_easy_setopt(easy, CURLOPT_URL, (char *) url);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, f->headers);

    if (f->method != NULL && ngx_strcmp(f->method, "GET") == 0) {
        curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);

    } else {
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, f->request);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t) len);

        if (f->method != NULL && ngx_strcmp(f->method, "POST") != 0) {
            curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, f->method);
        }
    }

    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, ngx_http_sa_fetch_write);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, f->errbuf);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     (long) svc->connect_timeout);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long) svc->timeout);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "ngx_support_agent/0.1");
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);

    f->started = ngx_current_msec;

    if (ngx_http_sa_transfer_start(&f->transfer, f->log) != NGX_OK) {
        goto failed;
    }

    f->running = 1;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, f->log, 0,
                   "support agent: %s request to \"%s\"", f->what, url);

    return NGX_OK;

failed:

    ngx_snprintf((u_char *) f->failure, sizeof(f->failure) - 1,
                 "cannot set up the %s request%Z", f->what);
    ngx_http_sa_fetch_free(f);

    return NGX_ERROR;
}


void
ngx_http_sa_fetch_cancel(ngx_http_sa_fetch_t *f)
{
    ngx_http_sa_transfer_stop(&f->transfer);
    ngx_http_sa_fetch_free(f);

    free(f->body);
    f->body = NULL;
    f->len = 0;
    f->running = 0;
}


static void
ngx_http_sa_fetch_free(ngx_http_sa_fetch_t *f)
{
    if (f->transfer.easy != NULL) {
        curl_easy_cleanup(f->transfer.easy);
        f->transfer.easy = NULL;
    }

    if (f->headers != NULL) {
        curl_slist_free_all(f->headers);
        f->headers = NULL;
    }

    free(f->request);
    f->request = NULL;
}


static size_t
ngx_http_sa_fetch_write(char *ptr, size_t size, size_t nmemb,
    void *userdata)
{
    ngx_http_sa_fetch_t  *f = userdata;

    size_t   len;
    u_char  *p;

    len = size * nmemb;

    if (f->len + len > f->max_body) {
        f->too_big = 1;
        return CURL_WRITEFUNC_ERROR;
    }

    p = realloc(f->body, f->len + len + 1);
    if (p == NULL) {
        return CURL_WRITEFUNC_ERROR;
    }

    ngx_memcpy(p + f->len, ptr, len);
    f->body = p;
    f->len += len;
    f->body[f->len] = '\0';

    return len;
}


static void
ngx_http_sa_fetch_ready(ngx_http_sa_transfer_t *t)
{
    /* the reply is read whole: nothing to do before the end */
}


static void
ngx_http_sa_fetch_done(ngx_http_sa_transfer_t *t)
{
    char                  text[200];
    ngx_http_sa_fetch_t  *f = t->data;

    f->running = 0;
    f->elapsed = ngx_current_msec - f->started;

    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &f->status);

    if (f->too_big) {
        ngx_snprintf((u_char *) f->failure, sizeof(f->failure) - 1,
                     "%s reply larger than %uz bytes%Z", f->what,
                     f->max_body);

    } else if (t->result != CURLE_OK) {
        ngx_snprintf((u_char *) f->failure, sizeof(f->failure) - 1,
                     "%s request failed after %M ms: %s%Z", f->what,
                     f->elapsed,
                     f->errbuf[0] ? f->errbuf : curl_easy_strerror(t->result));

    } else if (f->status < 200 || f->status > 299) {
        sa_remote_error_text(f->body ? (char *) f->body : "", f->len, text,
                             sizeof(text));

        ngx_snprintf((u_char *) f->failure, sizeof(f->failure) - 1,
                     "%s service answered %l: %s%Z", f->what, f->status,
                     text);

    } else {
        f->rc = NGX_OK;
    }

    ngx_http_sa_fetch_free(f);

    f->on_done(f);
}


static void
ngx_http_sa_fetch_exit(ngx_http_sa_transfer_t *t)
{
    ngx_http_sa_fetch_cancel(t->data);
}
