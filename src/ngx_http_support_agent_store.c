
/*
 * Copyright (C) ngx_support_agent authors
 *
 * The LMDB environment is opened once per process after fork and kept in a
 * process global: in single process mode a reload runs a new cycle in the
 * same process, and opening the environment twice in one process would drop
 * its locks (lmdb.h caveats).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_support_agent_store.h"

#include <lmdb.h>


#define NGX_HTTP_SA_STORE_MAINTAIN   10000
#define NGX_HTTP_SA_STORE_FIRST_MAP  (64 * 1024 * 1024)


static void ngx_http_sa_store_maintain(ngx_event_t *ev);


static sa_store_t        *ngx_http_sa_store_handle;
static ngx_flag_t         ngx_http_sa_store_sync;
static ngx_event_t        ngx_http_sa_store_timer;
static ngx_connection_t   ngx_http_sa_store_timer_conn;


/* in the master (or the single process) before workers start */

ngx_int_t
ngx_http_sa_store_prepare(ngx_cycle_t *cycle, ngx_http_sa_main_conf_t *smcf)
{
    ngx_err_t         err;
    ngx_file_info_t   fi;
    ngx_core_conf_t  *ccf;

    err = ngx_create_full_path(smcf->store_path.data, 0700);
    if (err != 0) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, err,
                      "support agent: cannot create store directory "
                      "\"%s\"", smcf->store_path.data);
        return NGX_ERROR;
    }

    if (ngx_create_dir(smcf->store_path.data, 0700) == NGX_FILE_ERROR
        && ngx_errno != NGX_EEXIST)
    {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                      "support agent: cannot create store directory "
                      "\"%s\"", smcf->store_path.data);
        return NGX_ERROR;
    }

    if (ngx_file_info(smcf->store_path.data, &fi) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                      ngx_file_info_n " \"%s\" failed",
                      smcf->store_path.data);
        return NGX_ERROR;
    }

    if (!ngx_is_dir(&fi)) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "support agent: store path \"%s\" is not a directory",
                      smcf->store_path.data);
        return NGX_ERROR;
    }

    /* workers run as the "user" of nginx.conf and must own the files */

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    if (geteuid() == 0 && ccf->user != (ngx_uid_t) NGX_CONF_UNSET_UINT
        && fi.st_uid != ccf->user)
    {
        if (chown((char *) smcf->store_path.data, ccf->user, ccf->group)
            == -1)
        {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                          "support agent: chown(\"%s\") failed",
                          smcf->store_path.data);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_sa_store_init_process(ngx_cycle_t *cycle,
    ngx_http_sa_main_conf_t *smcf)
{
    int               cleared;
    char              err[512];
    size_t            map_size;
    ngx_core_conf_t  *ccf;

    if (ngx_http_sa_store_handle == NULL) {

        map_size = ngx_min(smcf->store_max_size, NGX_HTTP_SA_STORE_FIRST_MAP);

        ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx,
                                               ngx_core_module);

        if (sa_store_open(&ngx_http_sa_store_handle,
                          (char *) smcf->store_path.data, map_size,
                          smcf->store_max_size, smcf->store_sync ? 1 : 0,
                          (unsigned) ccf->worker_processes * 4 + 64,
                          err, sizeof(err))
            != SA_OK)
        {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "support agent: cannot open store: %s", err);
            ngx_http_sa_store_handle = NULL;
            return NGX_ERROR;
        }

        ngx_http_sa_store_sync = smcf->store_sync;
    }

    /* a worker that crashed while reading leaves its reader slot behind */

    cleared = 0;
    if (sa_store_reader_check(ngx_http_sa_store_handle, &cleared) == SA_OK
        && cleared > 0)
    {
        ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                      "support agent: cleared %d stale store readers",
                      cleared);
    }

    ngx_http_sa_store_timer_conn.fd = (ngx_socket_t) -1;
    ngx_http_sa_store_timer.data = &ngx_http_sa_store_timer_conn;
    ngx_http_sa_store_timer.handler = ngx_http_sa_store_maintain;
    ngx_http_sa_store_timer.log = cycle->log;
    ngx_http_sa_store_timer.cancelable = 1;

    if (!ngx_http_sa_store_timer.timer_set) {
        ngx_add_timer(&ngx_http_sa_store_timer, NGX_HTTP_SA_STORE_MAINTAIN);
    }

    return NGX_OK;
}


void
ngx_http_sa_store_exit_process(ngx_cycle_t *cycle)
{
    if (ngx_http_sa_store_timer.timer_set) {
        ngx_del_timer(&ngx_http_sa_store_timer);
    }

    if (ngx_http_sa_store_handle == NULL) {
        return;
    }

    if (!ngx_http_sa_store_sync) {
        (void) sa_store_sync(ngx_http_sa_store_handle);
    }

    sa_store_close(ngx_http_sa_store_handle);
    ngx_http_sa_store_handle = NULL;
}


sa_store_t *
ngx_http_sa_store(void)
{
    return ngx_http_sa_store_handle;
}


static void
ngx_http_sa_store_maintain(ngx_event_t *ev)
{
    int  cleared;

    if (ngx_http_sa_store_handle == NULL) {
        return;
    }

    cleared = 0;
    if (sa_store_reader_check(ngx_http_sa_store_handle, &cleared) == SA_OK
        && cleared > 0)
    {
        ngx_log_error(NGX_LOG_NOTICE, ev->log, 0,
                      "support agent: cleared %d stale store readers",
                      cleared);
    }

    if (!ngx_http_sa_store_sync
        && sa_store_sync(ngx_http_sa_store_handle) != SA_OK)
    {
        ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                      "support agent: store sync failed: %s",
                      sa_store_last_error(ngx_http_sa_store_handle));
    }

    if (!ngx_exiting && !ngx_quit && !ngx_terminate) {
        ngx_add_timer(ev, NGX_HTTP_SA_STORE_MAINTAIN);
    }
}


ngx_int_t
ngx_http_sa_store_read(ngx_log_t *log, unsigned dbi, ngx_str_t *key,
    ngx_http_sa_record_decode_pt decode, void *out, const char *what)
{
    int          rc;
    MDB_val      k, v;
    MDB_txn     *txn;
    ngx_int_t    res;
    sa_store_t  *store;

    store = ngx_http_sa_store();

    if (sa_store_read_begin(store, &txn) != SA_OK) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "support agent: cannot read the %s \"%V\": %s",
                      what, key, sa_store_last_error(store));
        return NGX_ERROR;
    }

    k.mv_data = key->data;
    k.mv_size = key->len;

    rc = mdb_get(txn, dbi, &k, &v);

    if (rc == MDB_SUCCESS) {
        /* decoded before the transaction ends: the value is the map's */
        res = decode(v.mv_data, v.mv_size, out) == SA_OK ? NGX_OK
                                                         : NGX_ABORT;

    } else {
        res = rc == MDB_NOTFOUND ? NGX_DECLINED : NGX_ERROR;
    }

    sa_store_read_end(store);

    if (res == NGX_ERROR) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "support agent: cannot read the %s \"%V\": %s",
                      what, key, mdb_strerror(rc));

    } else if (res == NGX_ABORT) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "support agent: damaged %s \"%V\" reset", what,
                      key);
    }

    return res;
}


ngx_int_t
ngx_http_sa_store_dbis(ngx_log_t *log, const char **names, unsigned **dbis,
    const char *what)
{
    ngx_uint_t   i;
    sa_store_t  *store;

    store = ngx_http_sa_store();

    if (store == NULL) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "support agent: the conversation store is not open "
                      "in this process");
        return NGX_ERROR;
    }

    for (i = 0; names[i] != NULL; i++) {
        if (sa_store_dbi_open(store, names[i], 0, dbis[i]) != SA_OK) {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "support agent: cannot open the %s databases: %s",
                          what, sa_store_last_error(store));
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}
