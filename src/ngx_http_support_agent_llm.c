
/*
 * Copyright (C) ngx_support_agent authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_support_agent_llm.h"
#include "sa_types.h"


#define NGX_HTTP_SA_LLM_MAX_EVENT     (1024 * 1024)
#define NGX_HTTP_SA_LLM_MAX_RAW       (4 * 1024 * 1024)
#define NGX_HTTP_SA_LLM_MAX_ERROR     (16 * 1024)
#define NGX_HTTP_SA_LLM_MAX_BACKOFF   8000


static ngx_int_t ngx_http_sa_llm_attempt(ngx_http_sa_llm_t *llm);
static ngx_int_t ngx_http_sa_llm_prepare(ngx_http_sa_llm_t *llm);
static size_t ngx_http_sa_llm_write(char *ptr, size_t size, size_t nmemb,
    void *userdata);
static size_t ngx_http_sa_llm_header(char *ptr, size_t size, size_t nmemb,
    void *userdata);
static int ngx_http_sa_llm_delta(void *data, const char *text, size_t len);
static ngx_int_t ngx_http_sa_llm_raw_append(ngx_http_sa_llm_t *llm,
    const char *p, size_t len, size_t limit);
static void ngx_http_sa_llm_ready(ngx_http_sa_transfer_t *t);
static void ngx_http_sa_llm_abort(ngx_http_sa_llm_t *llm);
static void ngx_http_sa_llm_transfer_done(ngx_http_sa_transfer_t *t);
static void ngx_http_sa_llm_transfer_exit(ngx_http_sa_transfer_t *t);
static void ngx_http_sa_llm_finish(ngx_http_sa_llm_t *llm, CURLcode result);
static ngx_uint_t ngx_http_sa_llm_retryable_status(ngx_http_sa_llm_t *llm,
    const char *code);
static void ngx_http_sa_llm_schedule_retry(ngx_http_sa_llm_t *llm);
static void ngx_http_sa_llm_idle_handler(ngx_event_t *ev);
static void ngx_http_sa_llm_retry_handler(ngx_event_t *ev);
static void ngx_http_sa_llm_reset_attempt(ngx_http_sa_llm_t *llm);


ngx_int_t
ngx_http_sa_llm_start(ngx_http_sa_llm_t *llm, const sa_msg_t *msgs,
    size_t n)
{
    int                      rc;
    ngx_http_request_t      *r;
    sa_llm_params_t          params;
    ngx_http_sa_loc_conf_t  *conf;

    r = llm->request;
    conf = llm->conf;

    ngx_memzero(&params, sizeof(sa_llm_params_t));

    params.model = (char *) conf->llm_model.data;
    if (llm->system_prompt.len) {
        params.system_prompt = (char *) llm->system_prompt.data;
        params.system_prompt_len = llm->system_prompt.len;

    } else {
        params.system_prompt = (char *) conf->system_prompt.data;
        params.system_prompt_len = conf->system_prompt.len;
    }
    params.max_tokens = conf->llm_max_tokens;
    params.max_tokens_field =
        conf->llm_max_tokens_field == NGX_HTTP_SA_MAX_COMPLETION_TOKENS
        ? "max_completion_tokens" : "max_tokens";
    params.temperature = conf->llm_temperature;
    params.stream = 1;

    rc = llm->extra_json.len
         ? sa_llm_request_build_ex(&params, msgs, n,
                                   (char *) llm->extra_json.data,
                                   llm->extra_json.len, &llm->body,
                                   &llm->body_len)
         : sa_llm_request_build(&params, msgs, n, &llm->body,
                                &llm->body_len);
    if (rc != SA_OK) {
        ngx_snprintf((u_char *) llm->failure, sizeof(llm->failure) - 1,
                     "cannot build the LLM request%Z");
        return NGX_ERROR;
    }

    if (ngx_http_sa_llm_prepare(llm) != NGX_OK) {
        return NGX_ERROR;
    }

    llm->idle.handler = ngx_http_sa_llm_idle_handler;
    llm->idle.data = r->connection;
    llm->idle.log = r->connection->log;

    llm->retry.handler = ngx_http_sa_llm_retry_handler;
    llm->retry.data = r->connection;
    llm->retry.log = r->connection->log;

    llm->running = 1;

    return ngx_http_sa_llm_attempt(llm);
}


void
ngx_http_sa_llm_cancel(ngx_http_sa_llm_t *llm)
{
    ngx_http_sa_transfer_stop(&llm->transfer);

    if (llm->idle.timer_set) {
        ngx_del_timer(&llm->idle);
    }

    if (llm->retry.timer_set) {
        ngx_del_timer(&llm->retry);
    }

    if (llm->transfer.easy != NULL) {
        curl_easy_cleanup(llm->transfer.easy);
        llm->transfer.easy = NULL;
    }

    if (llm->headers != NULL) {
        curl_slist_free_all(llm->headers);
        llm->headers = NULL;
    }

    free(llm->body);
    llm->body = NULL;

    free(llm->raw);
    llm->raw = NULL;

    if (llm->stream_inited) {
        sa_llm_stream_free(&llm->stream);
        llm->stream_inited = 0;
    }

    llm->running = 0;
}


static ngx_int_t
ngx_http_sa_llm_prepare(ngx_http_sa_llm_t *llm)
{
    u_char                  *p;
    CURL                    *easy;
    struct curl_slist       *h;
    ngx_http_sa_loc_conf_t  *conf;

    conf = llm->conf;

    easy = curl_easy_init();
    if (easy == NULL) {
        ngx_snprintf((u_char *) llm->failure, sizeof(llm->failure) - 1,
                     "curl_easy_init() failed%Z");
        return NGX_ERROR;
    }

    llm->transfer.easy = easy;
    llm->transfer.data = llm;
    llm->transfer.on_ready = ngx_http_sa_llm_ready;
    llm->transfer.on_done = ngx_http_sa_llm_transfer_done;
    llm->transfer.on_exit = ngx_http_sa_llm_transfer_exit;

    /* conf strings are NUL-terminated (ngx_conf_t tokens and ours) */
    llm->url = (char *) conf->llm_url.data;

    h = curl_slist_append(NULL, "Content-Type: application/json");
    if (h == NULL) {
        goto failed;
    }

    llm->headers = h;

    h = curl_slist_append(llm->headers, "Accept: text/event-stream");
    if (h == NULL) {
        goto failed;
    }

    /* the body is small and sent at once: no 100-continue round trip */
    h = curl_slist_append(llm->headers, "Expect:");
    if (h == NULL) {
        goto failed;
    }

    if (conf->llm_api_key.len) {
        p = ngx_pnalloc(llm->request->pool,
                        sizeof("Authorization: Bearer ")
                        + conf->llm_api_key.len);
        if (p == NULL) {
            goto failed;
        }

        ngx_sprintf(p, "Authorization: Bearer %V%Z", &conf->llm_api_key);

        h = curl_slist_append(llm->headers, (char *) p);

        /* curl copied it: do not leave the key in the request pool */
        ngx_explicit_memzero(p, ngx_strlen(p));

        if (h == NULL) {
            goto failed;
        }
    }

    curl_easy_setopt(easy, CURLOPT_URL, llm->url);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, llm->headers);
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, llm->body);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t) llm->body_len);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, ngx_http_sa_llm_write);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, llm);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, ngx_http_sa_llm_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, llm);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, llm->errbuf);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     (long) conf->llm_connect_timeout);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "ngx_support_agent/0.1");
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);

    /* stream chunks are small; curl's 16k default costs memory per stream */
    curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, 4096L);

    return NGX_OK;

failed:

    ngx_snprintf((u_char *) llm->failure, sizeof(llm->failure) - 1,
                 "cannot set up the LLM request%Z");
    return NGX_ERROR;
}


static void
ngx_http_sa_llm_reset_attempt(ngx_http_sa_llm_t *llm)
{
    if (llm->stream_inited) {
        sa_llm_stream_free(&llm->stream);
    }

    sa_llm_stream_init(&llm->stream, NGX_HTTP_SA_LLM_MAX_EVENT,
                       ngx_http_sa_llm_delta, llm);
    llm->stream_inited = 1;

    llm->raw_len = 0;
    llm->status = 0;
    llm->checked = 0;
    llm->is_sse = 0;
    llm->idle_expired = 0;
    llm->retry_after[0] = '\0';
    llm->retry_after_ms[0] = '\0';
    llm->should_retry[0] = '\0';
    llm->errbuf[0] = '\0';
}


static ngx_int_t
ngx_http_sa_llm_attempt(ngx_http_sa_llm_t *llm)
{
    ngx_http_sa_llm_reset_attempt(llm);

    llm->attempts++;

    if (ngx_http_sa_transfer_start(&llm->transfer,
                                   llm->request->connection->log)
        != NGX_OK)
    {
        ngx_snprintf((u_char *) llm->failure, sizeof(llm->failure) - 1,
                     "cannot start the LLM transfer%Z");
        return NGX_ERROR;
    }

    /* time to the first byte counts as idle time too */
    ngx_add_timer(&llm->idle, llm->conf->llm_idle_timeout);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, llm->request->connection->log, 0,
                   "support agent: LLM attempt %ui to \"%s\"",
                   llm->attempts, llm->url);

    return NGX_OK;
}


static size_t
ngx_http_sa_llm_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    ngx_http_sa_llm_t  *llm = userdata;

    size_t   len, vlen, n;
    char    *value, *dst;

    len = size * nmemb;

    ngx_add_timer(&llm->idle, llm->conf->llm_idle_timeout);

    if (len > 5 && ngx_strncmp(ptr, "HTTP/", 5) == 0) {
        /* a new response (after 100-continue or a redirect hop) */
        llm->retry_after[0] = '\0';
        llm->retry_after_ms[0] = '\0';
        llm->should_retry[0] = '\0';
        return len;
    }

    value = (char *) ngx_strlchr((u_char *) ptr, (u_char *) ptr + len, ':');

    if (value == NULL) {
        return len;
    }

    n = value - ptr;
    value++;

    while (value < ptr + len && (*value == ' ' || *value == '\t')) {
        value++;
    }

    vlen = ptr + len - value;

    while (vlen && (value[vlen - 1] == '\r' || value[vlen - 1] == '\n'
                    || value[vlen - 1] == ' '))
    {
        vlen--;
    }

    if (n == sizeof("retry-after") - 1
        && ngx_strncasecmp((u_char *) ptr, (u_char *) "retry-after", n) == 0)
    {
        dst = llm->retry_after;

    } else if (n == sizeof("retry-after-ms") - 1
               && ngx_strncasecmp((u_char *) ptr,
                                  (u_char *) "retry-after-ms", n) == 0)
    {
        dst = llm->retry_after_ms;

    } else if (n == sizeof("x-should-retry") - 1
               && ngx_strncasecmp((u_char *) ptr,
                                  (u_char *) "x-should-retry", n) == 0)
    {
        dst = llm->should_retry;

    } else {
        return len;
    }

    vlen = ngx_min(vlen, 31);
    ngx_memcpy(dst, value, vlen);
    dst[vlen] = '\0';

    return len;
}


static size_t
ngx_http_sa_llm_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    ngx_http_sa_llm_t  *llm = userdata;

    int     rc;
    char   *type;
    size_t  len;

    len = size * nmemb;

    if (!llm->checked) {
        llm->checked = 1;

        curl_easy_getinfo(llm->transfer.easy, CURLINFO_RESPONSE_CODE,
                          &llm->status);

        type = NULL;
        curl_easy_getinfo(llm->transfer.easy, CURLINFO_CONTENT_TYPE, &type);

        llm->is_sse = (type != NULL
                       && ngx_strlcasestrn((u_char *) type,
                                           (u_char *) type + ngx_strlen(type),
                                           (u_char *) "text/event-stream",
                                           sizeof("text/event-stream") - 2)
                          != NULL);
    }

    ngx_add_timer(&llm->idle, llm->conf->llm_idle_timeout);

    if (llm->status != 200) {
        /* keep the start of an error body for the log */
        (void) ngx_http_sa_llm_raw_append(llm, ptr, len,
                                          NGX_HTTP_SA_LLM_MAX_ERROR);
        return len;
    }

    if (!llm->is_sse) {
        /* a server that answers stream:true with one JSON object */
        if (ngx_http_sa_llm_raw_append(llm, ptr, len,
                                       NGX_HTTP_SA_LLM_MAX_RAW)
            != NGX_OK)
        {
            ngx_snprintf((u_char *) llm->failure, sizeof(llm->failure) - 1,
                         "LLM response larger than %uz bytes%Z",
                         (size_t) NGX_HTTP_SA_LLM_MAX_RAW);
            return CURL_WRITEFUNC_ERROR;
        }

        return len;
    }

    rc = sa_llm_stream_feed(&llm->stream, ptr, len);

    if (rc != SA_OK) {
        /* stops the transfer; the done handler reads stream.error */
        return CURL_WRITEFUNC_ERROR;
    }

    return len;
}


static int
ngx_http_sa_llm_delta(void *data, const char *text, size_t len)
{
    ngx_http_sa_llm_t  *llm = data;

    if (len == 0) {
        return 0;
    }

    llm->on_text(llm, text, len);
    ngx_http_sa_transfer_mark_ready(&llm->transfer);

    return 0;
}


static ngx_int_t
ngx_http_sa_llm_raw_append(ngx_http_sa_llm_t *llm, const char *p,
    size_t len, size_t limit)
{
    size_t   cap;
    u_char  *raw;

    if (llm->raw_len + len > limit) {
        len = limit - llm->raw_len;
        if (len == 0) {
            return NGX_DECLINED;
        }
    }

    if (llm->raw_len + len + 1 > llm->raw_cap) {
        cap = ngx_max(llm->raw_cap * 2, llm->raw_len + len + 1);
        cap = ngx_max(cap, 4096);

        raw = realloc(llm->raw, cap);
        if (raw == NULL) {
            return NGX_ERROR;
        }

        llm->raw = raw;
        llm->raw_cap = cap;
    }

    ngx_memcpy(llm->raw + llm->raw_len, p, len);
    llm->raw_len += len;
    llm->raw[llm->raw_len] = '\0';

    return NGX_OK;
}


static void
ngx_http_sa_llm_ready(ngx_http_sa_transfer_t *t)
{
    ngx_http_sa_llm_t  *llm = t->data;

    if (llm->on_flush(llm) != NGX_OK) {
        ngx_http_sa_llm_abort(llm);
    }
}


/* the client is gone: stop, and tell the owner once */

static void
ngx_http_sa_llm_abort(ngx_http_sa_llm_t *llm)
{
    ngx_http_sa_transfer_stop(&llm->transfer);

    if (llm->idle.timer_set) {
        ngx_del_timer(&llm->idle);
    }

    if (llm->retry.timer_set) {
        ngx_del_timer(&llm->retry);
    }

    llm->running = 0;
    llm->on_done(llm, NGX_ABORT);
}


static void
ngx_http_sa_llm_transfer_done(ngx_http_sa_transfer_t *t)
{
    ngx_http_sa_llm_finish(t->data, t->result);
}


static void
ngx_http_sa_llm_transfer_exit(ngx_http_sa_transfer_t *t)
{
    ngx_http_sa_llm_cancel(t->data);
}


static void
ngx_http_sa_llm_idle_handler(ngx_event_t *ev)
{
    ngx_http_sa_llm_t  *llm;

    llm = (ngx_http_sa_llm_t *) ((u_char *) ev
                                 - offsetof(ngx_http_sa_llm_t, idle));

    llm->idle_expired = 1;
    ngx_http_sa_transfer_stop(&llm->transfer);

    ngx_http_sa_llm_finish(llm, CURLE_OPERATION_TIMEDOUT);
}


static void
ngx_http_sa_llm_retry_handler(ngx_event_t *ev)
{
    ngx_http_sa_llm_t  *llm;

    llm = (ngx_http_sa_llm_t *) ((u_char *) ev
                                 - offsetof(ngx_http_sa_llm_t, retry));

    if (ngx_http_sa_llm_attempt(llm) != NGX_OK) {
        llm->on_done(llm, NGX_ERROR);
    }
}


/*
 * Decides what an attempt's end means: success, a retry, or failure.
 */

static void
ngx_http_sa_llm_finish(ngx_http_sa_llm_t *llm, CURLcode result)
{
    ngx_log_t  *log;
    ngx_uint_t  retry;
    char        msg[256], code[64];

    log = llm->request->connection->log;

    if (llm->idle.timer_set) {
        ngx_del_timer(&llm->idle);
    }

    if (llm->status == 0) {
        curl_easy_getinfo(llm->transfer.easy, CURLINFO_RESPONSE_CODE,
                          &llm->status);
    }

    retry = 0;

    if (llm->idle_expired) {
        ngx_snprintf((u_char *) llm->failure, sizeof(llm->failure) - 1,
                     "no data from the LLM for %M ms%Z",
                     llm->conf->llm_idle_timeout);
        retry = 1;

    } else if (llm->status == 200
               && (result == CURLE_OK || result == CURLE_WRITE_ERROR))
    {
        if (!llm->is_sse && result == CURLE_OK) {
            (void) sa_llm_response_parse(&llm->stream,
                                         llm->raw ? (char *) llm->raw : "",
                                         llm->raw_len);

            /* the whole text arrived with it */
            if (llm->on_flush(llm) != NGX_OK) {
                ngx_http_sa_llm_abort(llm);
                return;
            }
        }

        if (sa_llm_stream_complete(&llm->stream)
            && (llm->stream.content_len > 0
                || (llm->extra_json.len && llm->stream.n_tool_calls > 0)))
        {
            llm->running = 0;
            llm->on_done(llm, NGX_OK);
            return;
        }

        if (sa_llm_stream_complete(&llm->stream)) {
            /* nothing to show the customer (a content filter, or tool
               calls that were not offered) */
            ngx_snprintf((u_char *) llm->failure, sizeof(llm->failure) - 1,
                         "LLM sent no text (finish_reason \"%s\")%Z",
                         llm->stream.finish_reason);

        } else if (llm->stream.failed) {
            ngx_snprintf((u_char *) llm->failure, sizeof(llm->failure) - 1,
                         "LLM stream failed: %s%Z", llm->stream.error);

        } else if (result == CURLE_WRITE_ERROR) {
            /* llm->failure was set by the write callback */

        } else {
            ngx_snprintf((u_char *) llm->failure, sizeof(llm->failure) - 1,
                         "LLM stream ended without [DONE]%Z");
        }

        retry = 1;

    } else if (result != CURLE_OK) {
        ngx_snprintf((u_char *) llm->failure, sizeof(llm->failure) - 1,
                     "LLM request failed: %s%Z",
                     llm->errbuf[0] ? llm->errbuf
                                    : curl_easy_strerror(result));
        retry = 1;

    } else {
        sa_llm_error_parse(llm->raw ? (char *) llm->raw : "", llm->raw_len,
                           msg, sizeof(msg), code, sizeof(code));

        ngx_snprintf((u_char *) llm->failure, sizeof(llm->failure) - 1,
                     "LLM answered %l%s%s: %s%Z", llm->status,
                     code[0] ? " " : "", code, msg);

        retry = ngx_http_sa_llm_retryable_status(llm, code);
    }

    /* text already shown to the customer cannot be taken back */
    if (llm->delivered) {
        retry = 0;
    }

    if (retry && llm->attempts <= llm->conf->llm_retries) {
        ngx_http_sa_llm_schedule_retry(llm);

        if (llm->retry.timer_set) {
            return;
        }
    }

    ngx_log_error(NGX_LOG_ERR, log, 0,
                  "support agent: %s (after %ui attempt%s)",
                  llm->failure, llm->attempts,
                  llm->attempts == 1 ? "" : "s");

    llm->running = 0;
    llm->on_done(llm, NGX_ERROR);
}


static ngx_uint_t
ngx_http_sa_llm_retryable_status(ngx_http_sa_llm_t *llm, const char *code)
{
    if (ngx_strcasecmp((u_char *) llm->should_retry, (u_char *) "true")
        == 0)
    {
        return 1;
    }

    if (ngx_strcasecmp((u_char *) llm->should_retry, (u_char *) "false")
        == 0)
    {
        return 0;
    }

    /* no credits left: waiting does not help */
    if (ngx_strcmp(code, "insufficient_quota") == 0) {
        return 0;
    }

    return llm->status == 408 || llm->status == 409 || llm->status == 429
           || llm->status >= 500;
}


static void
ngx_http_sa_llm_schedule_retry(ngx_http_sa_llm_t *llm)
{
    long        hint;
    ngx_msec_t  delay, left, jitter;

    hint = sa_llm_retry_after_ms(llm->retry_after_ms,
                                 ngx_strlen(llm->retry_after_ms),
                                 llm->retry_after,
                                 ngx_strlen(llm->retry_after),
                                 (long) ngx_time());

    if (hint >= 0) {
        delay = (ngx_msec_t) hint;

    } else {
        delay = llm->conf->llm_retry_backoff << (llm->attempts - 1);
        delay = ngx_min(delay, NGX_HTTP_SA_LLM_MAX_BACKOFF);

        /* up to 25% less, so that clients hit by one outage spread out */
        jitter = delay / 4;
        if (jitter) {
            delay -= ngx_random() % jitter;
        }
    }

    left = (ngx_msec_int_t) (llm->deadline - ngx_current_msec) > 0
           ? llm->deadline - ngx_current_msec : 0;

    if (delay + 100 >= left) {
        ngx_log_error(NGX_LOG_WARN, llm->request->connection->log, 0,
                      "support agent: %s; no time left for a retry in "
                      "%M ms", llm->failure, delay);
        return;
    }

    ngx_log_error(NGX_LOG_WARN, llm->request->connection->log, 0,
                  "support agent: %s; retry %ui in %M ms",
                  llm->failure, llm->attempts, delay);

    ngx_add_timer(&llm->retry, delay);
}
