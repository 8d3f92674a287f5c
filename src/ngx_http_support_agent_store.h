
/*
 * Copyright (C) ngx_support_agent authors
 *
 * The worker's handle on the LMDB store shared by all workers.
 */


#ifndef _NGX_HTTP_SUPPORT_AGENT_STORE_H_INCLUDED_
#define _NGX_HTTP_SUPPORT_AGENT_STORE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_support_agent_module.h"
#include "sa_store.h"


ngx_int_t ngx_http_sa_store_prepare(ngx_cycle_t *cycle,
    ngx_http_sa_main_conf_t *smcf);
ngx_int_t ngx_http_sa_store_init_process(ngx_cycle_t *cycle,
    ngx_http_sa_main_conf_t *smcf);
void ngx_http_sa_store_exit_process(ngx_cycle_t *cycle);
sa_store_t *ngx_http_sa_store(void);

/* opens (creating) a layer's named databases in this process's store:
   names NULL-terminated, each handle into *dbis[i]; NGX_ERROR (logged,
   naming what) */
ngx_int_t ngx_http_sa_store_dbis(ngx_log_t *log, const char **names,
    unsigned **dbis, const char *what);

/* decodes a record read from the store into out: SA_OK or SA_INVALID */
typedef int (*ngx_http_sa_record_decode_pt)(const void *buf, size_t len,
    void *out);

/* the record of key in the named database dbi, decoded in one short read
   transaction: NGX_OK, NGX_DECLINED (no such key), NGX_ABORT (the record
   is damaged: the caller starts over), NGX_ERROR (logged, naming what) */
ngx_int_t ngx_http_sa_store_read(ngx_log_t *log, unsigned dbi,
    ngx_str_t *key, ngx_http_sa_record_decode_pt decode, void *out,
    const char *what);


#endif /* _NGX_HTTP_SUPPORT_AGENT_STORE_H_INCLUDED_ */
