
/*
 * Copyright (C) ngx_support_agent authors
 *
 * The pitfalls this file avoids are listed in docs/architecture.md
 * ("Outgoing HTTP"): level-triggered registration, CURL_POLL_REMOVE before
 * curl closes the socket, a dummy connection behind the timer, and never
 * re-entering libcurl from its own callbacks.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_support_agent_curl.h"


static int ngx_http_sa_curl_socket(CURL *easy, curl_socket_t s, int what,
    void *userp, void *socketp);
static int ngx_http_sa_curl_timer(CURLM *multi, long timeout_ms,
    void *userp);
static void ngx_http_sa_curl_event_handler(ngx_event_t *ev);
static void ngx_http_sa_curl_timer_handler(ngx_event_t *ev);
static void ngx_http_sa_curl_close(ngx_connection_t *c);
static ngx_int_t ngx_http_sa_curl_want(ngx_event_t *ev, ngx_uint_t event,
    ngx_uint_t want);
static void ngx_http_sa_curl_process(void);


/* per worker process */
static CURLM                   *ngx_http_sa_multi;
static ngx_event_t              ngx_http_sa_curl_timer_event;
static ngx_connection_t         ngx_http_sa_curl_timer_conn;
static ngx_queue_t              ngx_http_sa_transfers;
static ngx_http_sa_transfer_t  *ngx_http_sa_ready_head;
static ngx_uint_t               ngx_http_sa_live;
static ngx_uint_t               ngx_http_sa_curl_global;


ngx_int_t
ngx_http_sa_curl_init_process(ngx_cycle_t *cycle, ngx_uint_t keepalive)
{
    CURLcode  rc;

    if (ngx_http_sa_multi != NULL) {
        return NGX_OK;
    }

    if (!ngx_http_sa_curl_global) {
        rc = curl_global_init(CURL_GLOBAL_DEFAULT);
        if (rc != CURLE_OK) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "support agent: curl_global_init() failed: %s",
                          curl_easy_strerror(rc));
            return NGX_ERROR;
        }

        ngx_http_sa_curl_global = 1;
    }

    ngx_http_sa_multi = curl_multi_init();
    if (ngx_http_sa_multi == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "support agent: curl_multi_init() failed");
        return NGX_ERROR;
    }

    curl_multi_setopt(ngx_http_sa_multi, CURLMOPT_SOCKETFUNCTION,
                      ngx_http_sa_curl_socket);
    curl_multi_setopt(ngx_http_sa_multi, CURLMOPT_TIMERFUNCTION,
                      ngx_http_sa_curl_timer);

    /*
     * like "keepalive" of an upstream: libcurl would otherwise keep up to
     * four idle connections per transfer ever running at once
     */
    curl_multi_setopt(ngx_http_sa_multi, CURLMOPT_MAXCONNECTS,
                      (long) keepalive);

    /*
     * the timer event's data must look like a connection: the debug log of
     * ngx_add_timer() prints ((ngx_connection_t *) ev->data)->fd
     */

    ngx_http_sa_curl_timer_conn.fd = (ngx_socket_t) -1;
    ngx_http_sa_curl_timer_event.data = &ngx_http_sa_curl_timer_conn;
    ngx_http_sa_curl_timer_event.handler = ngx_http_sa_curl_timer_handler;
    ngx_http_sa_curl_timer_event.log = cycle->log;

    /* curl's timer alone must not keep an exiting worker alive */
    ngx_http_sa_curl_timer_event.cancelable = 1;

    ngx_queue_init(&ngx_http_sa_transfers);
    ngx_http_sa_ready_head = NULL;
    ngx_http_sa_live = 0;

    return NGX_OK;
}


void
ngx_http_sa_curl_exit_process(ngx_cycle_t *cycle)
{
    ngx_queue_t             *q;
    ngx_http_sa_transfer_t  *t;

    if (ngx_http_sa_multi == NULL) {
        return;
    }

    /*
     * requests may still be alive here (single process mode quits at
     * once): detach curl from them without finalizing anything
     */

    while (!ngx_queue_empty(&ngx_http_sa_transfers)) {
        q = ngx_queue_head(&ngx_http_sa_transfers);
        t = ngx_queue_data(q, ngx_http_sa_transfer_t, queue);
        ngx_http_sa_transfer_stop(t);

        if (t->on_exit) {
            t->on_exit(t);
        }
    }

    if (ngx_http_sa_curl_timer_event.timer_set) {
        ngx_del_timer(&ngx_http_sa_curl_timer_event);
    }

    curl_multi_cleanup(ngx_http_sa_multi);
    ngx_http_sa_multi = NULL;

    if (ngx_http_sa_curl_global) {
        curl_global_cleanup();
        ngx_http_sa_curl_global = 0;
    }
}


ngx_int_t
ngx_http_sa_transfer_start(ngx_http_sa_transfer_t *t, ngx_log_t *log)
{
    CURLMcode  rc;

    if (ngx_http_sa_multi == NULL) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "support agent: no curl multi handle in this process");
        return NGX_ERROR;
    }

    curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);

    rc = curl_multi_add_handle(ngx_http_sa_multi, t->easy);
    if (rc != CURLM_OK) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "support agent: curl_multi_add_handle() failed: %s",
                      curl_multi_strerror(rc));
        return NGX_ERROR;
    }

    t->active = 1;
    t->ready = 0;
    ngx_queue_insert_tail(&ngx_http_sa_transfers, &t->queue);
    ngx_http_sa_live++;

    return NGX_OK;
}


void
ngx_http_sa_transfer_stop(ngx_http_sa_transfer_t *t)
{
    ngx_http_sa_transfer_t  **pp;

    if (!t->active) {
        return;
    }

    if (t->ready) {
        for (pp = &ngx_http_sa_ready_head; *pp; pp = &(*pp)->next_ready) {
            if (*pp == t) {
                *pp = t->next_ready;
                break;
            }
        }

        t->ready = 0;
    }

    /* this also drops a pending "done" message of the handle */
    curl_multi_remove_handle(ngx_http_sa_multi, t->easy);

    ngx_queue_remove(&t->queue);
    t->active = 0;
    ngx_http_sa_live--;
}


void
ngx_http_sa_transfer_mark_ready(ngx_http_sa_transfer_t *t)
{
    if (t->ready || !t->active) {
        return;
    }

    t->ready = 1;
    t->next_ready = ngx_http_sa_ready_head;
    ngx_http_sa_ready_head = t;
}


ngx_uint_t
ngx_http_sa_curl_live(void)
{
    return ngx_http_sa_live;
}


static int
ngx_http_sa_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp,
    void *socketp)
{
    ngx_connection_t  *c;

    c = socketp;

    if (what == CURL_POLL_REMOVE) {
        if (c != NULL) {
            curl_multi_assign(ngx_http_sa_multi, s, NULL);
            ngx_http_sa_curl_close(c);
        }

        return 0;
    }

    if (c == NULL) {
        c = ngx_get_connection(s, ngx_cycle->log);
        if (c == NULL) {
            return -1;
        }

        /* ngx_get_connection() leaves the events' logs unset */
        c->read->log = c->log;
        c->write->log = c->log;

        /* the worker_shutdown_timeout handler calls c->read->handler on
           every open connection, so both handlers must be set */
        c->read->handler = ngx_http_sa_curl_event_handler;
        c->write->handler = ngx_http_sa_curl_event_handler;

        curl_multi_assign(ngx_http_sa_multi, s, c);
    }

    /*
     * level-triggered: libcurl does not promise to drain a socket (buffer
     * limits, TLS records, paused transfers), so edge-triggered
     * registration could lose wake-ups
     */

    if (ngx_http_sa_curl_want(c->read, NGX_READ_EVENT, what & CURL_POLL_IN)
        != NGX_OK
        || ngx_http_sa_curl_want(c->write, NGX_WRITE_EVENT,
                                 what & CURL_POLL_OUT)
           != NGX_OK)
    {
        return -1;
    }

    return 0;
}


static ngx_int_t
ngx_http_sa_curl_want(ngx_event_t *ev, ngx_uint_t event, ngx_uint_t want)
{
    if (want && !ev->active) {
        return ngx_add_event(ev, event, NGX_LEVEL_EVENT);
    }

    if (!want && ev->active) {
        return ngx_del_event(ev, event, 0);
    }

    return NGX_OK;
}


static void
ngx_http_sa_curl_close(ngx_connection_t *c)
{
    /* curl owns the socket and closes it itself after this */

    if (c->read->active || c->write->active) {
        if (ngx_del_conn) {
            ngx_del_conn(c, 0);

        } else {
            if (c->read->active) {
                ngx_del_event(c->read, NGX_READ_EVENT, 0);
            }

            if (c->write->active) {
                ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
            }
        }
    }

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    ngx_free_connection(c);

    /* ngx_free_connection() keeps fd: a stale one makes a graceful exit
       report "open socket left" */
    c->fd = (ngx_socket_t) -1;
}


static int
ngx_http_sa_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    /* always delete first: ngx_add_timer() keeps an existing timer whose
       expiry is within NGX_TIMER_LAZY_DELAY of the new one */

    if (ngx_http_sa_curl_timer_event.timer_set) {
        ngx_del_timer(&ngx_http_sa_curl_timer_event);
    }

    if (timeout_ms >= 0) {
        /* 0 fires on the next loop iteration: curl must not be called
           from inside its own callback */
        ngx_add_timer(&ngx_http_sa_curl_timer_event, (ngx_msec_t) timeout_ms);
    }

    return 0;
}


static void
ngx_http_sa_curl_event_handler(ngx_event_t *ev)
{
    int                running;
    ngx_connection_t  *c;

    c = ev->data;

    /* "ready" is only cleared by nginx's own I/O, so the direction comes
       from the event, not from ev->ready */

    curl_multi_socket_action(ngx_http_sa_multi, c->fd,
                             ev->write ? CURL_CSELECT_OUT : CURL_CSELECT_IN,
                             &running);

    /* c may have been freed by CURL_POLL_REMOVE: not touched again */

    ngx_http_sa_curl_process();
}


static void
ngx_http_sa_curl_timer_handler(ngx_event_t *ev)
{
    int  running;

    curl_multi_socket_action(ngx_http_sa_multi, CURL_SOCKET_TIMEOUT, 0,
                             &running);

    ngx_http_sa_curl_process();
}


static void
ngx_http_sa_curl_process(void)
{
    int                      left;
    CURL                    *easy;
    CURLMsg                 *msg;
    CURLcode                 result;
    ngx_http_sa_transfer_t  *t;

    /* deliver what arrived first, then the ends: an owner sees its last
       bytes before it hears the transfer is over */

    while (ngx_http_sa_ready_head != NULL) {
        t = ngx_http_sa_ready_head;
        ngx_http_sa_ready_head = t->next_ready;
        t->ready = 0;

        t->on_ready(t);
    }

    while ((msg = curl_multi_info_read(ngx_http_sa_multi, &left)) != NULL) {

        if (msg->msg != CURLMSG_DONE) {
            continue;
        }

        easy = msg->easy_handle;
        result = msg->data.result;

        t = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &t);

        if (t == NULL || !t->active) {
            continue;
        }

        ngx_http_sa_transfer_stop(t);
        t->result = result;
        t->on_done(t);
    }
}
