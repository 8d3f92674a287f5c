
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


#endif /* _NGX_HTTP_SUPPORT_AGENT_STORE_H_INCLUDED_ */
