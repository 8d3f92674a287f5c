
/*
 * Copyright (C) ngx_support_agent authors
 *
 * kb-build's blocking HTTP client (see kb_http.h).
 */


#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <yajl/yajl_tree.h>

#include "kb_http.h"
#include "sa_json.h"


#define KB_HTTP_MAX_BODY     ((size_t) 512 << 20)
#define KB_HTTP_BACKOFF      0.5      /* seconds, doubled each retry */
#define KB_HTTP_BACKOFF_MAX  8.0
#define KB_HTTP_WAIT_MAX     60.0     /* the longest retry-after obeyed */
#define KB_HTTP_CONNECT      10L


struct kb_http_s {
    CURL               *curl;
    struct curl_slist  *headers;
    char               *key;          /* to keep out of messages */
    long                timeout;
    int                 retries;
    unsigned long       requests;
    double              retry_after;  /* seconds, < 0: none */
    kb_buf_t           *resp;
    int                 too_big;
    int                 nomem;
    char                curl_err[CURL_ERROR_SIZE];
    char                err[1024];
};


static int kb_http_attempt(kb_http_t *h, const char *method,
    const char *url, const char *body, size_t len, long *status,
    CURLcode *cc);
static size_t kb_http_write(char *p, size_t size, size_t n, void *data);
static size_t kb_http_header(char *p, size_t size, size_t n, void *data);
static int kb_http_retried(long status);
static void kb_http_sleep(double s);
static void kb_http_printable(const char *p, size_t len, char *buf,
    size_t size);
static void kb_http_redact(kb_http_t *h, char *text);


kb_http_t *
kb_http_new(const char *auth, const char *key, long timeout, int retries)
{
    char               *header;
    size_t              len;
    kb_http_t          *h;
    struct curl_slist  *l;

    static int  initialised;

    if (!initialised) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            return NULL;
        }

        initialised = 1;
    }

    h = calloc(1, sizeof(kb_http_t));
    if (h == NULL) {
        return NULL;
    }

    h->timeout = timeout;
    h->retries = retries;

    h->curl = curl_easy_init();
    if (h->curl == NULL) {
        free(h);
        return NULL;
    }

    /* no "Expect: 100-continue" round trip before big bodies */

    l = curl_slist_append(NULL, "Content-Type: application/json");
    l = l ? curl_slist_append(l, "Accept: application/json") : NULL;
    l = l ? curl_slist_append(l, "Expect:") : NULL;

    h->headers = l;

    if (l != NULL && key != NULL) {
        len = strlen(auth) + strlen(key) + 1;
        header = malloc(len);
        h->key = strdup(key);

        if (header == NULL || h->key == NULL) {
            free(header);
            kb_http_free(h);
            return NULL;
        }

        snprintf(header, len, "%s%s", auth, key);
        l = curl_slist_append(l, header);

        memset(header, 0, len);
        free(header);

        if (l != NULL) {
            h->headers = l;
        }
    }

    if (l == NULL) {
        kb_http_free(h);
        return NULL;
    }

    return h;
}


void
kb_http_free(kb_http_t *h)
{
    if (h == NULL) {
        return;
    }

    if (h->curl != NULL) {
        curl_easy_cleanup(h->curl);
    }

    /* the list holds the key: wipe it before it goes back to malloc */

    if (h->headers != NULL) {
        struct curl_slist  *l;

        for (l = h->headers; l != NULL; l = l->next) {
            memset(l->data, 0, strlen(l->data));
        }

        curl_slist_free_all(h->headers);
    }

    if (h->key != NULL) {
        memset(h->key, 0, strlen(h->key));
        free(h->key);
    }

    free(h);
}


const char *
kb_http_error(kb_http_t *h)
{
    return h->err;
}


unsigned long
kb_http_requests(kb_http_t *h)
{
    return h->requests;
}


int
kb_http_json(kb_http_t *h, const char *method, const char *url,
    const char *body, size_t len, long *status, kb_buf_t *resp)
{
    int       attempt, rc;
    char      safe[512];
    double    wait;
    CURLcode  cc;

    h->err[0] = '\0';
    h->resp = resp;
    kb_http_safe_url(url, safe, sizeof(safe));

    for (attempt = 0; ; attempt++) {
        resp->len = 0;

        if (resp->data != NULL) {
            resp->data[0] = '\0';
        }

        rc = kb_http_attempt(h, method, url, body, len, status, &cc);

        if (rc == 0 && !kb_http_retried(*status)) {
            return 0;
        }

        if (rc == -2) {
            snprintf(h->err, sizeof(h->err), "%s %s: %s", method, safe,
                     h->too_big ? "the answer is too big" : "out of memory");
            return -1;
        }

        if (attempt >= h->retries) {
            break;
        }

        wait = KB_HTTP_BACKOFF * (double) (1 << (attempt < 8 ? attempt : 8));

        if (wait > KB_HTTP_BACKOFF_MAX) {
            wait = KB_HTTP_BACKOFF_MAX;
        }

        if (rc == 0 && h->retry_after >= 0) {
            wait = h->retry_after < KB_HTTP_WAIT_MAX ? h->retry_after
                                                     : KB_HTTP_WAIT_MAX;
        }

        if (rc == 0) {
            fprintf(stderr, "kb-build: %s %s: HTTP %ld, retrying in %.1f s\n",
                    method, safe, *status, wait);

        } else {
            fprintf(stderr, "kb-build: %s %s: %s, retrying in %.1f s\n",
                    method, safe,
                    h->curl_err[0] ? h->curl_err : curl_easy_strerror(cc),
                    wait);
        }

        kb_http_sleep(wait);
    }

    if (rc == 0) {
        /* the last answer, an error status: the caller says what it is */
        return 0;
    }

    snprintf(h->err, sizeof(h->err), "%s %s: %s (%d attempts)", method,
             safe, h->curl_err[0] ? h->curl_err : curl_easy_strerror(cc),
             attempt + 1);

    return -1;
}


/* 0 with an answer, -1 without (cc tells), -2 out of memory */

static int
kb_http_attempt(kb_http_t *h, const char *method, const char *url,
    const char *body, size_t len, long *status, CURLcode *cc)
{
    CURL  *c;

    c = h->curl;
    curl_easy_reset(c);

    h->curl_err[0] = '\0';
    h->retry_after = -1;
    h->too_big = 0;
    h->nomem = 0;
    h->requests++;

    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->headers);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->curl_err);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, KB_HTTP_CONNECT);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, h->timeout);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "kb-build");
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, kb_http_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, kb_http_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, h);

    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) len);
    }

    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);

    } else if (strcmp(method, "POST") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }

    *cc = curl_easy_perform(c);

    if (*cc == CURLE_WRITE_ERROR && (h->too_big || h->nomem)) {
        return -2;
    }

    if (*cc != CURLE_OK) {
        return -1;
    }

    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);

    return 0;
}


static size_t
kb_http_write(char *p, size_t size, size_t n, void *data)
{
    char       *d;
    size_t      len, cap;
    kb_http_t  *h = data;
    kb_buf_t   *b;

    b = h->resp;
    len = size * n;

    if (b->len + len > KB_HTTP_MAX_BODY) {
        h->too_big = 1;
        return 0;
    }

    if (b->cap - b->len <= len) {
        cap = b->cap ? b->cap : 4096;

        while (cap - b->len <= len) {
            cap *= 2;
        }

        d = realloc(b->data, cap);
        if (d == NULL) {
            h->nomem = 1;
            return 0;
        }

        b->data = d;
        b->cap = cap;
    }

    memcpy(b->data + b->len, p, len);
    b->len += len;
    b->data[b->len] = '\0';

    return len;
}


/* retry-after: seconds, or an HTTP date */

static size_t
kb_http_header(char *p, size_t size, size_t n, void *data)
{
    char       *end, value[128];
    long        s;
    size_t      len, vlen;
    time_t      t;
    kb_http_t  *h = data;

    len = size * n;

    if (len < 12 || strncasecmp(p, "retry-after:", 12) != 0) {
        return len;
    }

    p += 12;
    len -= 12;

    while (len > 0 && (*p == ' ' || *p == '\t')) {
        p++;
        len--;
    }

    while (len > 0 && (p[len - 1] == '\r' || p[len - 1] == '\n'
                       || p[len - 1] == ' '))
    {
        len--;
    }

    vlen = len < sizeof(value) - 1 ? len : sizeof(value) - 1;
    memcpy(value, p, vlen);
    value[vlen] = '\0';

    errno = 0;
    s = strtol(value, &end, 10);

    if (end != value && *end == '\0' && errno == 0 && s >= 0) {
        h->retry_after = (double) s;
        return size * n;
    }

    t = curl_getdate(value, NULL);

    if (t != -1) {
        h->retry_after = t > time(NULL) ? (double) (t - time(NULL)) : 0;
    }

    return size * n;
}


static int
kb_http_retried(long status)
{
    return status == 408 || status == 429 || status >= 500;
}


static void
kb_http_sleep(double s)
{
    struct timespec  ts;

    ts.tv_sec = (time_t) s;
    ts.tv_nsec = (long) ((s - (double) ts.tv_sec) * 1e9);

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        /* void */
    }
}


void
kb_http_safe_url(const char *url, char *buf, size_t size)
{
    size_t       n;
    const char  *p, *host, *at, *end;

    if (size == 0) {
        return;
    }

    p = strstr(url, "://");
    host = p ? p + 3 : url;

    /* user:password@host: the part before the host goes */

    end = host + strcspn(host, "/?#");
    at = memchr(host, '@', (size_t) (end - host));

    n = (size_t) (host - url);
    n = n < size - 1 ? n : size - 1;
    memcpy(buf, url, n);

    if (at != NULL) {
        host = at + 1;
    }

    snprintf(buf + n, size - n, "%.*s", (int) strcspn(host, "?#"), host);
}


void
kb_http_error_text(kb_http_t *h, const char *body, size_t len, char *buf,
    size_t size)
{
    char         err[64], *s;
    yajl_val     root, v;
    const char  *openai[] = { "error", "message", NULL };
    const char  *tei[] = { "error", NULL };
    const char  *qdrant[] = { "status", "error", NULL };
    const char  *message[] = { "message", NULL };
    const char **paths[4];
    int          i;

    paths[0] = openai;
    paths[1] = tei;
    paths[2] = qdrant;
    paths[3] = message;

    if (size == 0) {
        return;
    }

    buf[0] = '\0';

    root = sa_json_tree_parse(body, len, err, sizeof(err));

    if (root != NULL) {
        for (i = 0; i < 4; i++) {
            v = yajl_tree_get(root, paths[i], yajl_t_string);
            s = (v != NULL) ? YAJL_GET_STRING(v) : NULL;

            if (s != NULL) {
                kb_http_printable(s, strlen(s), buf, size);
                yajl_tree_free(root);
                kb_http_redact(h, buf);
                return;
            }
        }

        yajl_tree_free(root);
    }

    kb_http_printable(body, len, buf, size);
    kb_http_redact(h, buf);
}


/* the key, should the text hold it, as "***" */

static void
kb_http_redact(kb_http_t *h, char *text)
{
    char    *p;
    size_t   len;

    if (h->key == NULL || (len = strlen(h->key)) < 4) {
        return;
    }

    while ((p = strstr(text, h->key)) != NULL) {
        memcpy(p, "***", 3);
        memmove(p + 3, p + len, strlen(p + len) + 1);
    }
}


/* at most 300 bytes of p, control characters as spaces */

static void
kb_http_printable(const char *p, size_t len, char *buf, size_t size)
{
    size_t  i, n;

    n = len < 300 ? len : 300;
    n = n < size - 1 ? n : size - 1;

    for (i = 0; i < n; i++) {
        buf[i] = ((unsigned char) p[i] < 0x20 || p[i] == 0x7f) ? ' ' : p[i];
    }

    buf[n] = '\0';
}


const char *
kb_http_env_key(const char *name)
{
    const char  *v;

    v = getenv(name);

    return (v != NULL && v[0] != '\0') ? v : NULL;
}


void
kb_buf_free(kb_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}
