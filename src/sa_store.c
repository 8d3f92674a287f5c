/*
 * Copyright (C) ngx_support_agent authors
 *
 * Conversation store on LMDB; the formats and the process model are
 * described in sa_store.h.
 */


#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <lmdb.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>

#include "sa_store.h"


#define SA_STORE_MAX_DBS        32
#define SA_STORE_MIN_READERS    126

/*
 * MDB_MAP_RESIZED can come back once per growth done by other processes
 * between our attempts; each MDB_MAP_FULL grows the map at least twofold.
 * Either way a handful of attempts is plenty; the bound only guards
 * against a loop should LMDB misbehave.
 */
#define SA_STORE_MAX_ATTEMPTS   64

#define SA_META_VERSION         1
#define SA_META_SIZE            40
#define SA_META_MAX             256

#define SA_MSG_VERSION          1

/* id, '\0', 4-byte big-endian sequence number */
#define SA_MSG_KEY_MAX          (SA_ID_MAX + 1 + 4)


struct sa_store_s {
    MDB_env       *env;
    MDB_dbi        conversations;
    MDB_dbi        messages;

    /* reset between calls, renewed by sa_store_read_begin(); NULL when
       none was begun yet or the last renew failed */
    MDB_txn       *read_txn;
    int            reading;

    size_t         max_map_size;
    pid_t          pid;             /* the opener; see sa_store_close() */
    unsigned       stale_readers_cleared;
    char          *path;
    char           err[512];
};


typedef struct {
    const char            *name;
    unsigned               flags;
    MDB_dbi                dbi;         /* out */
} sa_store_dbi_t;


/* the data of the conversation write handlers */
typedef struct {
    const char            *id;
    size_t                 id_len;
    int64_t                now_ms;
    int                    pid;
    int64_t                busy_until_ms;
    sa_conv_meta_t        *meta;        /* out, may be NULL */

    /* commit_turn: the encoded records, one after another in buf */
    size_t                 n;
    const unsigned char   *buf;
    const size_t          *ends;        /* ends[i]: end of record i in buf */
} sa_conv_op_t;


/* the state of parsing one message record */
typedef enum {
    SA_FIELD_UNKNOWN = 0,
    SA_FIELD_VERSION,
    SA_FIELD_ROLE,
    SA_FIELD_CONTENT,
    SA_FIELD_TS,
    SA_FIELD_TOOL_CALL_ID,
    SA_FIELD_TOOL_CALLS
} sa_msg_field_e;

typedef struct {
    sa_msg_t        *msg;
    unsigned         depth;     /* open maps and arrays */
    sa_msg_field_e   field;     /* of the last key at depth 1 */
    int              have_role;
    const char      *problem;   /* why the record was refused */
} sa_msg_parse_t;


static void sa_store_error(sa_store_t *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sa_store_lmdb_error(sa_store_t *st, const char *what,
    const char *call, int rc);
static int sa_store_is_lmdb_rc(int rc);
static int sa_store_grow(sa_store_t *st, const char *what);
static int sa_store_adopt_map_size(sa_store_t *st, const char *what);
static int sa_store_dbi_open_handler(sa_store_t *st, MDB_txn *txn,
    void *data);
static int sa_store_check_id(sa_store_t *st, const char *id, size_t *len);
static size_t sa_msg_key(unsigned char *key, const char *id, size_t id_len,
    uint32_t seq);

static uint32_t sa_msg_key_seq(const unsigned char *key, size_t id_len);
static void sa_put_u16(unsigned char *p, uint16_t v);
static void sa_put_u32(unsigned char *p, uint32_t v);
static void sa_put_u64(unsigned char *p, uint64_t v);
static uint32_t sa_get_u32(const unsigned char *p);
static uint64_t sa_get_u64(const unsigned char *p);
static void sa_meta_encode(unsigned char *p, const sa_conv_meta_t *meta);
static int sa_meta_decode(sa_store_t *st, const MDB_val *val,
    const char *id, size_t id_len, sa_conv_meta_t *meta);
static int sa_meta_load(sa_store_t *st, MDB_txn *txn, sa_conv_op_t *op,
    unsigned char *buf, size_t *len, sa_conv_meta_t *meta);
static int sa_meta_store(sa_store_t *st, MDB_txn *txn, sa_conv_op_t *op,
    unsigned char *buf, size_t len, const sa_conv_meta_t *meta);
static int sa_pid_alive(int pid);

static int sa_conv_create_handler(sa_store_t *st, MDB_txn *txn,
    void *data);
static int sa_conv_begin_turn_handler(sa_store_t *st, MDB_txn *txn,
    void *data);
static int sa_conv_commit_turn_handler(sa_store_t *st, MDB_txn *txn,
    void *data);
static int sa_conv_end_turn_handler(sa_store_t *st, MDB_txn *txn,
    void *data);

static int sa_msgs_encode(sa_store_t *st, const sa_msg_t *msgs, size_t n,
    yajl_gen gen, size_t *ends);
static int sa_msg_encode(const sa_msg_t *msg, yajl_gen gen);
static int sa_gen_string_field(yajl_gen gen, const char *name,
    const char *value, size_t len);
static int sa_gen_integer_field(yajl_gen gen, const char *name,
    int64_t value);
static int sa_msg_decode(sa_store_t *st, const MDB_val *val, const char *id,
    uint32_t seq, sa_msg_t *msg);

static int sa_msg_parse_null(void *ctx);
static int sa_msg_parse_boolean(void *ctx, int value);
static int sa_msg_parse_integer(void *ctx, long long value);
static int sa_msg_parse_double(void *ctx, double value);
static int sa_msg_parse_string(void *ctx, const unsigned char *s,
    size_t len);
static int sa_msg_parse_start_map(void *ctx);
static int sa_msg_parse_map_key(void *ctx, const unsigned char *key,
    size_t len);
static int sa_msg_parse_end(void *ctx);
static int sa_msg_parse_start_array(void *ctx);
static int sa_msg_parse_scalar(sa_msg_parse_t *ps);


static yajl_callbacks  sa_msg_parse_callbacks = {
    sa_msg_parse_null,
    sa_msg_parse_boolean,
    sa_msg_parse_integer,
    sa_msg_parse_double,
    NULL,
    sa_msg_parse_string,
    sa_msg_parse_start_map,
    sa_msg_parse_map_key,
    sa_msg_parse_end,
    sa_msg_parse_start_array,
    sa_msg_parse_end
};


int
sa_store_open(sa_store_t **stp, const char *dir, size_t map_size,
    size_t max_map_size, int sync, unsigned readers, char *err,
    size_t errlen)
{
    int           rc, dead;
    long          page;
    size_t        psize;
    unsigned      flags;
    sa_store_t   *st;
    const char   *call;
    MDB_envinfo   info;

    *stp = NULL;

    if (errlen > 0) {
        err[0] = '\0';
    }

    st = calloc(1, sizeof(sa_store_t));
    if (st == NULL) {
        snprintf(err, errlen, "lmdb \"%s\": out of memory", dir);
        return SA_ERROR;
    }

    st->path = strdup(dir);
    if (st->path == NULL) {
        free(st);
        snprintf(err, errlen, "lmdb \"%s\": out of memory", dir);
        return SA_ERROR;
    }

    st->pid = getpid();

    /* LMDB counts the map in pages: keep both sizes whole pages */

    page = sysconf(_SC_PAGESIZE);
    psize = page > 0 ? (size_t) page : 4096;

    map_size = (map_size + psize - 1) / psize * psize;
    if (map_size < 16 * psize) {
        map_size = 16 * psize;
    }

    max_map_size = max_map_size / psize * psize;
    if (max_map_size < map_size) {
        max_map_size = map_size;
    }

    st->max_map_size = max_map_size;

    flags = MDB_NOTLS | MDB_NOMETASYNC;
    if (!sync) {
        flags |= MDB_NOSYNC;
    }

    if (readers < SA_STORE_MIN_READERS) {
        readers = SA_STORE_MIN_READERS;
    }

    call = "mdb_env_create";
    rc = mdb_env_create(&st->env);
    if (rc != MDB_SUCCESS) {
        st->env = NULL;
        goto failed;
    }

    call = "mdb_env_set_mapsize";
    rc = mdb_env_set_mapsize(st->env, map_size);
    if (rc != MDB_SUCCESS) {
        goto failed;
    }

    call = "mdb_env_set_maxreaders";
    rc = mdb_env_set_maxreaders(st->env, readers);
    if (rc != MDB_SUCCESS) {
        goto failed;
    }

    call = "mdb_env_set_maxdbs";
    rc = mdb_env_set_maxdbs(st->env, SA_STORE_MAX_DBS);
    if (rc != MDB_SUCCESS) {
        goto failed;
    }

    call = "mdb_env_open";
    rc = mdb_env_open(st->env, dir, flags, 0600);
    if (rc != MDB_SUCCESS) {
        goto failed;
    }

    /* slots of workers that crashed inside a read txn pin old pages */

    call = "mdb_reader_check";
    rc = mdb_reader_check(st->env, &dead);
    if (rc != MDB_SUCCESS) {
        goto failed;
    }

    st->stale_readers_cleared = (unsigned) dead;

    /*
     * mdb_env_open() maps what we asked for (or just enough for the data);
     * another process may have grown the map since: start from the size
     * recorded in the files, so we do not hit MDB_MAP_FULL at once.
     */

    if (sa_store_adopt_map_size(st, "open") != SA_OK) {
        goto failed_store;
    }

    call = "mdb_env_info";
    rc = mdb_env_info(st->env, &info);
    if (rc != MDB_SUCCESS) {
        goto failed;
    }

    if (info.me_mapsize < map_size) {
        call = "mdb_env_set_mapsize";
        rc = mdb_env_set_mapsize(st->env, map_size);
        if (rc != MDB_SUCCESS) {
            goto failed;
        }
    }

    if (sa_store_dbi_open(st, "conversations", 0, &st->conversations)
        != SA_OK
        || sa_store_dbi_open(st, "messages", 0, &st->messages) != SA_OK)
    {
        goto failed_store;
    }

    *stp = st;

    return SA_OK;

failed:

    snprintf(err, errlen, "lmdb \"%s\": %s() failed: %s", dir, call,
             mdb_strerror(rc));
    goto done;

failed_store:

    snprintf(err, errlen, "%s", st->err);

done:

    if (st->env != NULL) {
        /* also required after a failed mdb_env_open() */
        mdb_env_close(st->env);
    }

    free(st->path);
    free(st);

    return SA_ERROR;
}


void
sa_store_close(sa_store_t *st)
{
    if (st == NULL) {
        return;
    }

    /*
     * In a forked child the inherited MDB_env is the parent's: closing it
     * would clear the parent's reader slots in the shared lock file (LMDB
     * matches them by the pid stored in the env).  Leave it alone.
     */

    if (st->pid == getpid()) {
        if (st->read_txn != NULL) {
            mdb_txn_abort(st->read_txn);
        }

        mdb_env_close(st->env);
    }

    free(st->path);
    free(st);
}


int
sa_store_reader_check(sa_store_t *st, int *cleared)
{
    int  rc, dead;

    dead = 0;

    rc = mdb_reader_check(st->env, &dead);
    if (rc != MDB_SUCCESS) {
        sa_store_lmdb_error(st, "reader check", "mdb_reader_check", rc);
        return SA_ERROR;
    }

    if (cleared != NULL) {
        *cleared = dead;
    }

    return SA_OK;
}


int
sa_store_sync(sa_store_t *st)
{
    int  rc;

    rc = mdb_env_sync(st->env, 1);
    if (rc != MDB_SUCCESS) {
        sa_store_lmdb_error(st, "sync", "mdb_env_sync", rc);
        return SA_ERROR;
    }

    return SA_OK;
}


void *
sa_store_env(sa_store_t *st)
{
    return st->env;
}


const char *
sa_store_last_error(sa_store_t *st)
{
    return st->err;
}


int
sa_store_info(sa_store_t *st, sa_store_info_t *info)
{
    int           rc;
    MDB_stat      stat;
    MDB_envinfo   envinfo;

    rc = mdb_env_info(st->env, &envinfo);
    if (rc != MDB_SUCCESS) {
        sa_store_lmdb_error(st, "info", "mdb_env_info", rc);
        return SA_ERROR;
    }

    rc = mdb_env_stat(st->env, &stat);
    if (rc != MDB_SUCCESS) {
        sa_store_lmdb_error(st, "info", "mdb_env_stat", rc);
        return SA_ERROR;
    }

    info->map_size = envinfo.me_mapsize;
    info->max_map_size = st->max_map_size;
    info->page_size = stat.ms_psize;
    info->used_size = (envinfo.me_last_pgno + 1) * (size_t) stat.ms_psize;
    info->max_readers = envinfo.me_maxreaders;
    info->readers_used = envinfo.me_numreaders;
    info->stale_readers_cleared = st->stale_readers_cleared;
    info->last_txnid = envinfo.me_last_txnid;

    return SA_OK;
}


int
sa_store_write(sa_store_t *st, const char *what, sa_store_write_pt handler,
    void *data)
{
    int       rc, attempt;
    MDB_txn  *txn;

    /* growing the map remaps it: no read txn of ours may be active */

    if (st->reading) {
        sa_store_error(st, "lmdb \"%s\": %s: write inside a read txn",
                       st->path, what);
        return SA_ERROR;
    }

    for (attempt = 0; attempt < SA_STORE_MAX_ATTEMPTS; attempt++) {

        rc = mdb_txn_begin(st->env, NULL, 0, &txn);

        if (rc == MDB_MAP_RESIZED) {
            /* another process grew the map past ours */
            rc = sa_store_adopt_map_size(st, what);
            if (rc != SA_OK) {
                return rc;
            }

            continue;
        }

        if (rc != MDB_SUCCESS) {
            sa_store_lmdb_error(st, what, "mdb_txn_begin", rc);
            return SA_ERROR;
        }

        rc = handler(st, txn, data);

        if (rc == SA_OK) {
            /* frees the txn, also when it fails */
            rc = mdb_txn_commit(txn);
            if (rc == MDB_SUCCESS) {
                return SA_OK;
            }

        } else {
            mdb_txn_abort(txn);

            if (rc == SA_STORE_NOCOMMIT) {
                return SA_OK;
            }

            if (!sa_store_is_lmdb_rc(rc)) {
                return rc;
            }
        }

        if (rc == MDB_MAP_FULL) {
            rc = sa_store_grow(st, what);
            if (rc != SA_OK) {
                return rc;
            }

            continue;
        }

        sa_store_error(st, "lmdb \"%s\": %s: %s", st->path, what,
                       mdb_strerror(rc));
        return SA_ERROR;
    }

    sa_store_error(st, "lmdb \"%s\": %s: gave up after %d attempts "
                   "(map keeps changing)", st->path, what, attempt);
    return SA_ERROR;
}


int
sa_store_read_begin(sa_store_t *st, MDB_txn **txn)
{
    int          rc, attempt;
    const char  *call;

    if (st->reading) {
        sa_store_error(st, "lmdb \"%s\": read txn already in use",
                       st->path);
        return SA_ERROR;
    }

    for (attempt = 0; attempt < SA_STORE_MAX_ATTEMPTS; attempt++) {

        if (st->read_txn != NULL) {
            call = "mdb_txn_renew";
            rc = mdb_txn_renew(st->read_txn);
            if (rc == MDB_SUCCESS) {
                goto done;
            }

            /* the failed renew ended it; abort frees it and its slot */
            mdb_txn_abort(st->read_txn);
            st->read_txn = NULL;

        } else {
            call = "mdb_txn_begin";
            rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &st->read_txn);
            if (rc == MDB_SUCCESS) {
                goto done;
            }

            st->read_txn = NULL;
        }

        if (rc != MDB_MAP_RESIZED) {
            sa_store_lmdb_error(st, "read", call, rc);
            return SA_ERROR;
        }

        /* no txn of ours is active now, as mdb_env_set_mapsize() needs */

        rc = sa_store_adopt_map_size(st, "read");
        if (rc != SA_OK) {
            return rc;
        }
    }

    sa_store_error(st, "lmdb \"%s\": read: gave up after %d attempts "
                   "(map keeps changing)", st->path, attempt);
    return SA_ERROR;

done:

    st->reading = 1;
    *txn = st->read_txn;

    return SA_OK;
}


void
sa_store_read_end(sa_store_t *st)
{
    /*
     * Reset, not abort: the txn keeps its reader slot (MDB_NOTLS ties the
     * slot to the txn) and the next read renews it without taking the
     * reader table mutex.  A reset txn pins no pages.
     */

    if (st->reading) {
        mdb_txn_reset(st->read_txn);
        st->reading = 0;
    }
}


int
sa_store_dbi_open(sa_store_t *st, const char *name, unsigned flags,
    unsigned *dbi)
{
    int             rc;
    sa_store_dbi_t  request;

    request.name = name;
    request.flags = flags;
    request.dbi = 0;

    rc = sa_store_write(st, name, sa_store_dbi_open_handler, &request);
    if (rc != SA_OK) {
        return rc;
    }

    *dbi = request.dbi;

    return SA_OK;
}


static int
sa_store_dbi_open_handler(sa_store_t *st, MDB_txn *txn, void *data)
{
    sa_store_dbi_t  *request = data;

    /* the handle outlives the txn once it commits */
    return mdb_dbi_open(txn, request->name, request->flags | MDB_CREATE,
                        &request->dbi);
}


static int
sa_store_adopt_map_size(sa_store_t *st, const char *what)
{
    int  rc;

    /* size 0: take the size recorded in the files (at least the data) */

    rc = mdb_env_set_mapsize(st->env, 0);
    if (rc != MDB_SUCCESS) {
        sa_store_lmdb_error(st, what, "mdb_env_set_mapsize", rc);
        return SA_ERROR;
    }

    return SA_OK;
}


static int
sa_store_grow(sa_store_t *st, const char *what)
{
    int           rc;
    size_t        old_size, new_size;
    MDB_envinfo   info;

    rc = mdb_env_info(st->env, &info);
    if (rc != MDB_SUCCESS) {
        sa_store_lmdb_error(st, what, "mdb_env_info", rc);
        return SA_ERROR;
    }

    old_size = info.me_mapsize;

    /* another process may have grown it already: then that is enough */

    if (sa_store_adopt_map_size(st, what) != SA_OK) {
        return SA_ERROR;
    }

    rc = mdb_env_info(st->env, &info);
    if (rc != MDB_SUCCESS) {
        sa_store_lmdb_error(st, what, "mdb_env_info", rc);
        return SA_ERROR;
    }

    if (info.me_mapsize > old_size) {
        return SA_OK;
    }

    if (old_size >= st->max_map_size) {
        /* keep the limit we reached: the failed txn did not record it */

        if (info.me_mapsize != old_size) {
            rc = mdb_env_set_mapsize(st->env, old_size);
            if (rc != MDB_SUCCESS) {
                sa_store_lmdb_error(st, what, "mdb_env_set_mapsize", rc);
                return SA_ERROR;
            }
        }

        sa_store_error(st, "lmdb \"%s\": %s: map full at its limit of %zu "
                       "bytes", st->path, what, st->max_map_size);
        return SA_FULL;
    }

    new_size = old_size * 2;
    if (new_size > st->max_map_size || new_size < old_size) {
        new_size = st->max_map_size;
    }

    rc = mdb_env_set_mapsize(st->env, new_size);
    if (rc != MDB_SUCCESS) {
        sa_store_lmdb_error(st, what, "mdb_env_set_mapsize", rc);
        return SA_ERROR;
    }

    return SA_OK;
}


static int
sa_store_is_lmdb_rc(int rc)
{
    /* errno values and MDB_* codes; SA_* codes are small negatives */
    return rc > 0 || (rc >= MDB_KEYEXIST && rc <= MDB_LAST_ERRCODE);
}


static void
sa_store_error(sa_store_t *st, const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    vsnprintf(st->err, sizeof(st->err), fmt, args);
    va_end(args);
}


static void
sa_store_lmdb_error(sa_store_t *st, const char *what, const char *call,
    int rc)
{
    sa_store_error(st, "lmdb \"%s\": %s: %s() failed: %s", st->path, what,
                   call, mdb_strerror(rc));
}


static int
sa_store_check_id(sa_store_t *st, const char *id, size_t *len)
{
    size_t  n;

    n = (id == NULL) ? 0 : strnlen(id, SA_ID_MAX + 1);

    if (n == 0 || n > SA_ID_MAX) {
        sa_store_error(st, "conversation id is empty or longer than %d "
                       "bytes", SA_ID_MAX);
        return SA_INVALID;
    }

    *len = n;

    return SA_OK;
}


int
sa_conv_create(sa_store_t *st, const char *id, int64_t now_ms, int pid,
    int64_t busy_until_ms)
{
    sa_conv_op_t  op;

    memset(&op, 0, sizeof(sa_conv_op_t));

    if (sa_store_check_id(st, id, &op.id_len) != SA_OK) {
        return SA_INVALID;
    }

    op.id = id;
    op.now_ms = now_ms;
    op.pid = pid;
    op.busy_until_ms = busy_until_ms;

    return sa_store_write(st, "create conversation", sa_conv_create_handler,
                          &op);
}


static int
sa_conv_create_handler(sa_store_t *st, MDB_txn *txn, void *data)
{
    sa_conv_op_t  *op = data;

    int             rc;
    MDB_val         key, val;
    sa_conv_meta_t  meta;
    unsigned char   buf[SA_META_SIZE];

    memset(&meta, 0, sizeof(sa_conv_meta_t));
    meta.created_ms = op->now_ms;
    meta.updated_ms = op->now_ms;
    meta.busy_pid = op->pid;
    meta.busy_until_ms = op->busy_until_ms;

    memset(buf, 0, sizeof(buf));
    buf[0] = SA_META_VERSION;
    sa_meta_encode(buf, &meta);

    key.mv_data = (void *) op->id;
    key.mv_size = op->id_len;
    val.mv_data = buf;
    val.mv_size = sizeof(buf);

    rc = mdb_put(txn, st->conversations, &key, &val, MDB_NOOVERWRITE);

    if (rc == MDB_KEYEXIST) {
        sa_store_error(st, "conversation \"%s\" exists", op->id);
        return SA_BUSY;
    }

    return rc;
}


int
sa_conv_begin_turn(sa_store_t *st, const char *id, int64_t now_ms,
    int pid, int64_t busy_until_ms, sa_conv_meta_t *meta)
{
    sa_conv_op_t  op;

    memset(&op, 0, sizeof(sa_conv_op_t));

    if (sa_store_check_id(st, id, &op.id_len) != SA_OK) {
        return SA_INVALID;
    }

    op.id = id;
    op.now_ms = now_ms;
    op.pid = pid;
    op.busy_until_ms = busy_until_ms;
    op.meta = meta;

    return sa_store_write(st, "begin turn", sa_conv_begin_turn_handler,
                          &op);
}


static int
sa_conv_begin_turn_handler(sa_store_t *st, MDB_txn *txn, void *data)
{
    sa_conv_op_t  *op = data;

    int             rc;
    size_t          len;
    sa_conv_meta_t  meta;
    unsigned char   buf[SA_META_MAX];

    rc = sa_meta_load(st, txn, op, buf, &len, &meta);
    if (rc != SA_OK) {
        return rc;
    }

    if (meta.busy_pid != 0
        && meta.busy_until_ms > op->now_ms
        && sa_pid_alive(meta.busy_pid))
    {
        if (op->meta != NULL) {
            *op->meta = meta;
        }

        sa_store_error(st, "conversation \"%s\" is busy: process %d runs a "
                       "turn until %lld", op->id, (int) meta.busy_pid,
                       (long long) meta.busy_until_ms);
        return SA_BUSY;
    }

    meta.busy_pid = op->pid;
    meta.busy_until_ms = op->busy_until_ms;

    rc = sa_meta_store(st, txn, op, buf, len, &meta);
    if (rc != MDB_SUCCESS) {
        return rc;
    }

    if (op->meta != NULL) {
        *op->meta = meta;
    }

    return SA_OK;
}


static int
sa_pid_alive(int pid)
{
    /* kill(0 or negative) would address process groups: never alive */

    if (pid <= 0) {
        return 0;
    }

    if (kill((pid_t) pid, 0) == 0) {
        return 1;
    }

    /* EPERM: it exists, it is just not ours to signal */
    return errno == EPERM;
}


int
sa_conv_history(sa_store_t *st, const char *id, size_t max_messages,
    sa_msg_t **msgsp, size_t *np)
{
    int              rc, op_rc;
    size_t           id_len, want, n;
    uint32_t         first, seq;
    MDB_val          key, val;
    MDB_txn         *txn;
    sa_msg_t        *msgs;
    MDB_cursor      *cursor;
    sa_conv_meta_t   meta;
    unsigned char    kbuf[SA_MSG_KEY_MAX];

    *msgsp = NULL;
    *np = 0;

    if (sa_store_check_id(st, id, &id_len) != SA_OK) {
        return SA_INVALID;
    }

    if (sa_store_read_begin(st, &txn) != SA_OK) {
        return SA_ERROR;
    }

    msgs = NULL;
    cursor = NULL;
    n = 0;

    key.mv_data = (void *) id;
    key.mv_size = id_len;

    rc = mdb_get(txn, st->conversations, &key, &val);

    if (rc == MDB_NOTFOUND) {
        sa_store_error(st, "conversation \"%s\" not found", id);
        op_rc = SA_NOT_FOUND;
        goto done;
    }

    if (rc != MDB_SUCCESS) {
        sa_store_lmdb_error(st, "history", "mdb_get", rc);
        op_rc = SA_ERROR;
        goto done;
    }

    op_rc = sa_meta_decode(st, &val, id, id_len, &meta);
    if (op_rc != SA_OK) {
        goto done;
    }

    want = meta.messages;
    if (want > max_messages) {
        want = max_messages;
    }

    if (want == 0) {
        goto done;
    }

    first = meta.messages - (uint32_t) want;

    msgs = calloc(want, sizeof(sa_msg_t));
    if (msgs == NULL) {
        sa_store_error(st, "history of \"%s\": out of memory", id);
        op_rc = SA_ERROR;
        goto done;
    }

    rc = mdb_cursor_open(txn, st->messages, &cursor);
    if (rc != MDB_SUCCESS) {
        sa_store_lmdb_error(st, "history", "mdb_cursor_open", rc);
        op_rc = SA_ERROR;
        goto done;
    }

    key.mv_data = kbuf;
    key.mv_size = sa_msg_key(kbuf, id, id_len, first);

    rc = mdb_cursor_get(cursor, &key, &val, MDB_SET_RANGE);

    /* the conversation's keys are contiguous; stop at the first other */

    while (rc == MDB_SUCCESS && n < want) {

        if (key.mv_size != id_len + 5
            || memcmp(key.mv_data, kbuf, id_len + 1) != 0)
        {
            break;
        }

        seq = sa_msg_key_seq(key.mv_data, id_len);

        op_rc = sa_msg_decode(st, &val, id, seq, &msgs[n]);
        if (op_rc != SA_OK) {
            goto done;
        }

        n++;

        rc = mdb_cursor_get(cursor, &key, &val, MDB_NEXT);
    }

    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
        sa_store_lmdb_error(st, "history", "mdb_cursor_get", rc);
        op_rc = SA_ERROR;
        goto done;
    }

    op_rc = SA_OK;

done:

    if (cursor != NULL) {
        mdb_cursor_close(cursor);
    }

    sa_store_read_end(st);

    if (op_rc != SA_OK || n == 0) {
        sa_msgs_free(msgs, n);
        return op_rc;
    }

    *msgsp = msgs;
    *np = n;

    return SA_OK;
}


int
sa_conv_commit_turn(sa_store_t *st, const char *id, int pid,
    const sa_msg_t *msgs, size_t n, int64_t now_ms)
{
    int            rc;
    size_t         len, *ends;
    yajl_gen       gen;
    sa_conv_op_t   op;

    memset(&op, 0, sizeof(sa_conv_op_t));

    if (sa_store_check_id(st, id, &op.id_len) != SA_OK) {
        return SA_INVALID;
    }

    op.id = id;
    op.now_ms = now_ms;
    op.pid = pid;
    op.n = n;

    /* encode before the write txn: other workers wait while it is open */

    gen = yajl_gen_alloc(NULL);
    ends = malloc((n ? n : 1) * sizeof(size_t));

    if (gen == NULL || ends == NULL) {
        sa_store_error(st, "commit turn of \"%s\": out of memory", id);
        rc = SA_ERROR;
        goto done;
    }

    rc = sa_msgs_encode(st, msgs, n, gen, ends);
    if (rc != SA_OK) {
        goto done;
    }

    if (n > 0 && yajl_gen_get_buf(gen, &op.buf, &len) != yajl_gen_status_ok)
    {
        sa_store_error(st, "commit turn of \"%s\": encoding failed", id);
        rc = SA_ERROR;
        goto done;
    }

    op.ends = ends;

    rc = sa_store_write(st, "commit turn", sa_conv_commit_turn_handler, &op);

done:

    if (gen != NULL) {
        yajl_gen_free(gen);
    }

    free(ends);

    return rc;
}


static int
sa_conv_commit_turn_handler(sa_store_t *st, MDB_txn *txn, void *data)
{
    sa_conv_op_t  *op = data;

    int             rc;
    size_t          i, len, start;
    MDB_val         key, val;
    sa_conv_meta_t  meta;
    unsigned char   buf[SA_META_MAX], kbuf[SA_MSG_KEY_MAX];

    rc = sa_meta_load(st, txn, op, buf, &len, &meta);
    if (rc != SA_OK) {
        return rc;
    }

    if (op->n > (size_t) (UINT32_MAX - meta.messages)) {
        sa_store_error(st, "conversation \"%s\" has too many messages",
                       op->id);
        return SA_ERROR;
    }

    start = 0;

    for (i = 0; i < op->n; i++) {
        key.mv_data = kbuf;
        key.mv_size = sa_msg_key(kbuf, op->id, op->id_len,
                                 meta.messages + (uint32_t) i);

        val.mv_data = (void *) (op->buf + start);
        val.mv_size = op->ends[i] - start;

        rc = mdb_put(txn, st->messages, &key, &val, 0);
        if (rc != MDB_SUCCESS) {
            return rc;
        }

        start = op->ends[i];
    }

    meta.messages += (uint32_t) op->n;
    meta.turns++;
    meta.updated_ms = op->now_ms;

    if (meta.busy_pid == op->pid) {
        meta.busy_pid = 0;
        meta.busy_until_ms = 0;
    }

    return sa_meta_store(st, txn, op, buf, len, &meta);
}


int
sa_conv_end_turn(sa_store_t *st, const char *id, int pid)
{
    sa_conv_op_t  op;

    memset(&op, 0, sizeof(sa_conv_op_t));

    if (sa_store_check_id(st, id, &op.id_len) != SA_OK) {
        return SA_INVALID;
    }

    op.id = id;
    op.pid = pid;

    return sa_store_write(st, "end turn", sa_conv_end_turn_handler, &op);
}


static int
sa_conv_end_turn_handler(sa_store_t *st, MDB_txn *txn, void *data)
{
    sa_conv_op_t  *op = data;

    int             rc;
    size_t          len;
    sa_conv_meta_t  meta;
    unsigned char   buf[SA_META_MAX];

    rc = sa_meta_load(st, txn, op, buf, &len, &meta);
    if (rc != SA_OK) {
        return rc;
    }

    if (meta.busy_pid != op->pid) {
        /* taken over after our lease expired: not ours to clear */
        return SA_STORE_NOCOMMIT;
    }

    meta.busy_pid = 0;
    meta.busy_until_ms = 0;

    return sa_meta_store(st, txn, op, buf, len, &meta);
}


int
sa_conv_get(sa_store_t *st, const char *id, sa_conv_meta_t *meta)
{
    int       rc;
    size_t    id_len;
    MDB_val   key, val;
    MDB_txn  *txn;

    if (sa_store_check_id(st, id, &id_len) != SA_OK) {
        return SA_INVALID;
    }

    if (sa_store_read_begin(st, &txn) != SA_OK) {
        return SA_ERROR;
    }

    key.mv_data = (void *) id;
    key.mv_size = id_len;

    rc = mdb_get(txn, st->conversations, &key, &val);

    if (rc == MDB_SUCCESS) {
        rc = sa_meta_decode(st, &val, id, id_len, meta);

    } else if (rc == MDB_NOTFOUND) {
        sa_store_error(st, "conversation \"%s\" not found", id);
        rc = SA_NOT_FOUND;

    } else {
        sa_store_lmdb_error(st, "get", "mdb_get", rc);
        rc = SA_ERROR;
    }

    sa_store_read_end(st);

    return rc;
}


static int
sa_meta_load(sa_store_t *st, MDB_txn *txn, sa_conv_op_t *op,
    unsigned char *buf, size_t *len, sa_conv_meta_t *meta)
{
    int      rc;
    MDB_val  key, val;

    key.mv_data = (void *) op->id;
    key.mv_size = op->id_len;

    rc = mdb_get(txn, st->conversations, &key, &val);

    if (rc == MDB_NOTFOUND) {
        sa_store_error(st, "conversation \"%s\" not found", op->id);
        return SA_NOT_FOUND;
    }

    if (rc != MDB_SUCCESS) {
        return rc;
    }

    rc = sa_meta_decode(st, &val, op->id, op->id_len, meta);
    if (rc != SA_OK) {
        return rc;
    }

    if (val.mv_size > SA_META_MAX) {
        sa_store_error(st, "conversation \"%s\": meta record of %zu bytes "
                       "is too large", op->id, val.mv_size);
        return SA_ERROR;
    }

    /*
     * Keep a copy: the rewrite must keep bytes a later layout added, and
     * the mapped value may move once this txn writes.
     */

    memcpy(buf, val.mv_data, val.mv_size);
    *len = val.mv_size;

    return SA_OK;
}


static int
sa_meta_store(sa_store_t *st, MDB_txn *txn, sa_conv_op_t *op,
    unsigned char *buf, size_t len, const sa_conv_meta_t *meta)
{
    MDB_val  key, val;

    sa_meta_encode(buf, meta);

    key.mv_data = (void *) op->id;
    key.mv_size = op->id_len;
    val.mv_data = buf;
    val.mv_size = len;

    return mdb_put(txn, st->conversations, &key, &val, 0);
}


static void
sa_meta_encode(unsigned char *p, const sa_conv_meta_t *meta)
{
    /* the version and flags bytes are the caller's: kept on rewrites */

    sa_put_u16(p + 2, 0);
    sa_put_u32(p + 4, meta->turns);
    sa_put_u32(p + 8, meta->messages);
    sa_put_u32(p + 12, (uint32_t) meta->busy_pid);
    sa_put_u64(p + 16, (uint64_t) meta->created_ms);
    sa_put_u64(p + 24, (uint64_t) meta->updated_ms);
    sa_put_u64(p + 32, (uint64_t) meta->busy_until_ms);
}


static int
sa_meta_decode(sa_store_t *st, const MDB_val *val, const char *id,
    size_t id_len, sa_conv_meta_t *meta)
{
    const unsigned char  *p = val->mv_data;

    if (val->mv_size < SA_META_SIZE || p[0] < 1) {
        sa_store_error(st, "conversation \"%s\": corrupt meta record "
                       "(%zu bytes, version %u)", id, val->mv_size,
                       val->mv_size ? p[0] : 0);
        return SA_ERROR;
    }

    memcpy(meta->id, id, id_len);
    meta->id[id_len] = '\0';

    meta->turns = sa_get_u32(p + 4);
    meta->messages = sa_get_u32(p + 8);
    meta->busy_pid = (int32_t) sa_get_u32(p + 12);
    meta->created_ms = (int64_t) sa_get_u64(p + 16);
    meta->updated_ms = (int64_t) sa_get_u64(p + 24);
    meta->busy_until_ms = (int64_t) sa_get_u64(p + 32);

    return SA_OK;
}


static size_t
sa_msg_key(unsigned char *key, const char *id, size_t id_len, uint32_t seq)
{
    unsigned char  *p;

    memcpy(key, id, id_len);
    p = key + id_len;

    *p++ = '\0';

    /* big-endian: memcmp order is numeric order */
    *p++ = (unsigned char) (seq >> 24);
    *p++ = (unsigned char) (seq >> 16);
    *p++ = (unsigned char) (seq >> 8);
    *p++ = (unsigned char) seq;

    return (size_t) (p - key);
}


static uint32_t
sa_msg_key_seq(const unsigned char *key, size_t id_len)
{
    const unsigned char  *p = key + id_len + 1;

    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16
           | (uint32_t) p[2] << 8 | (uint32_t) p[3];
}


static void
sa_put_u16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char) v;
    p[1] = (unsigned char) (v >> 8);
}


static void
sa_put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char) v;
    p[1] = (unsigned char) (v >> 8);
    p[2] = (unsigned char) (v >> 16);
    p[3] = (unsigned char) (v >> 24);
}


static void
sa_put_u64(unsigned char *p, uint64_t v)
{
    sa_put_u32(p, (uint32_t) v);
    sa_put_u32(p + 4, (uint32_t) (v >> 32));
}


static uint32_t
sa_get_u32(const unsigned char *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16
           | (uint32_t) p[3] << 24;
}


static uint64_t
sa_get_u64(const unsigned char *p)
{
    return (uint64_t) sa_get_u32(p) | (uint64_t) sa_get_u32(p + 4) << 32;
}


static int
sa_msgs_encode(sa_store_t *st, const sa_msg_t *msgs, size_t n, yajl_gen gen,
    size_t *ends)
{
    size_t                i, len;
    const unsigned char  *buf;

    /* client and LLM text: keep every record valid JSON */

    if (!yajl_gen_config(gen, yajl_gen_validate_utf8, 1)) {
        sa_store_error(st, "yajl_gen_config() failed");
        return SA_ERROR;
    }

    for (i = 0; i < n; i++) {

        if ((unsigned) msgs[i].role > SA_ROLE_TOOL) {
            sa_store_error(st, "message %zu: unknown role %d", i,
                           (int) msgs[i].role);
            return SA_INVALID;
        }

        switch (sa_msg_encode(&msgs[i], gen)) {

        case yajl_gen_status_ok:
            break;

        case yajl_gen_invalid_string:
            sa_store_error(st, "message %zu: a string is not valid UTF-8",
                           i);
            return SA_INVALID;

        default:
            sa_store_error(st, "message %zu: encoding failed", i);
            return SA_ERROR;
        }

        /* records are concatenated; ends[] splits them again */

        if (yajl_gen_get_buf(gen, &buf, &len) != yajl_gen_status_ok) {
            sa_store_error(st, "message %zu: encoding failed", i);
            return SA_ERROR;
        }

        ends[i] = len;
        yajl_gen_reset(gen, NULL);
    }

    return SA_OK;
}


static int
sa_msg_encode(const sa_msg_t *msg, yajl_gen gen)
{
    int          rc;
    const char  *role;

    role = sa_role_name(msg->role);

    rc = yajl_gen_map_open(gen);
    if (rc != yajl_gen_status_ok) {
        return rc;
    }

    rc = sa_gen_integer_field(gen, "v", SA_MSG_VERSION);
    if (rc != yajl_gen_status_ok) {
        return rc;
    }

    rc = sa_gen_string_field(gen, "r", role, strlen(role));
    if (rc != yajl_gen_status_ok) {
        return rc;
    }

    if (msg->content != NULL) {
        rc = sa_gen_string_field(gen, "c", msg->content, msg->content_len);
        if (rc != yajl_gen_status_ok) {
            return rc;
        }
    }

    rc = sa_gen_integer_field(gen, "t", msg->ts_ms);
    if (rc != yajl_gen_status_ok) {
        return rc;
    }

    if (msg->tool_call_id != NULL) {
        rc = sa_gen_string_field(gen, "tid", msg->tool_call_id,
                                 strlen(msg->tool_call_id));
        if (rc != yajl_gen_status_ok) {
            return rc;
        }
    }

    if (msg->tool_calls_json != NULL) {
        rc = sa_gen_string_field(gen, "tc", msg->tool_calls_json,
                                 strlen(msg->tool_calls_json));
        if (rc != yajl_gen_status_ok) {
            return rc;
        }
    }

    return yajl_gen_map_close(gen);
}


static int
sa_gen_string_field(yajl_gen gen, const char *name, const char *value,
    size_t len)
{
    int  rc;

    rc = yajl_gen_string(gen, (const unsigned char *) name, strlen(name));
    if (rc != yajl_gen_status_ok) {
        return rc;
    }

    return yajl_gen_string(gen, (const unsigned char *) value, len);
}


static int
sa_gen_integer_field(yajl_gen gen, const char *name, int64_t value)
{
    int  rc;

    rc = yajl_gen_string(gen, (const unsigned char *) name, strlen(name));
    if (rc != yajl_gen_status_ok) {
        return rc;
    }

    return yajl_gen_integer(gen, (long long) value);
}


static int
sa_msg_decode(sa_store_t *st, const MDB_val *val, const char *id,
    uint32_t seq, sa_msg_t *msg)
{
    yajl_handle      h;
    yajl_status      status;
    unsigned char   *text;
    sa_msg_parse_t   ps;

    memset(msg, 0, sizeof(sa_msg_t));
    memset(&ps, 0, sizeof(sa_msg_parse_t));
    ps.msg = msg;

    h = yajl_alloc(&sa_msg_parse_callbacks, NULL, &ps);
    if (h == NULL) {
        sa_store_error(st, "message %u of \"%s\": out of memory", seq, id);
        return SA_ERROR;
    }

    status = yajl_parse(h, val->mv_data, val->mv_size);
    if (status == yajl_status_ok) {
        status = yajl_complete_parse(h);
    }

    if (status == yajl_status_ok && !ps.have_role) {
        ps.problem = "no role";
        status = yajl_status_client_canceled;
    }

    if (status != yajl_status_ok) {

        if (ps.problem != NULL) {
            sa_store_error(st, "message %u of \"%s\": corrupt record: %s",
                           seq, id, ps.problem);

        } else {
            text = yajl_get_error(h, 0, NULL, 0);
            sa_store_error(st, "message %u of \"%s\": corrupt record: %s",
                           seq, id, text ? (char *) text : "parse error");
            if (text != NULL) {
                yajl_free_error(h, text);
            }
        }

        yajl_free(h);
        sa_msg_free(msg);
        return SA_ERROR;
    }

    yajl_free(h);

    return SA_OK;
}


/*
 * The parse callbacks: values of known keys of the top-level map are
 * taken, everything else (unknown keys, whatever they nest) is skipped.
 * A known key with a value of the wrong type refuses the record.
 */

static int
sa_msg_parse_scalar(sa_msg_parse_t *ps)
{
    /* 1: take the value, 0: skip it, -1: refuse the record */

    if (ps->depth == 0) {
        ps->problem = "not an object";
        return -1;
    }

    if (ps->depth > 1 || ps->field == SA_FIELD_UNKNOWN) {
        return 0;
    }

    return 1;
}


static int
sa_msg_parse_null(void *ctx)
{
    sa_msg_parse_t  *ps = ctx;

    int  take;

    take = sa_msg_parse_scalar(ps);
    if (take <= 0) {
        return take == 0;
    }

    /* null is "absent" for the optional strings */

    switch (ps->field) {

    case SA_FIELD_CONTENT:
    case SA_FIELD_TOOL_CALL_ID:
    case SA_FIELD_TOOL_CALLS:
        return 1;

    default:
        ps->problem = "null for a required field";
        return 0;
    }
}


static int
sa_msg_parse_boolean(void *ctx, int value)
{
    sa_msg_parse_t  *ps = ctx;

    int  take;

    take = sa_msg_parse_scalar(ps);
    if (take <= 0) {
        return take == 0;
    }

    ps->problem = "a boolean for a known field";
    return 0;
}


static int
sa_msg_parse_integer(void *ctx, long long value)
{
    sa_msg_parse_t  *ps = ctx;

    int  take;

    take = sa_msg_parse_scalar(ps);
    if (take <= 0) {
        return take == 0;
    }

    switch (ps->field) {

    case SA_FIELD_VERSION:
        if (value != SA_MSG_VERSION) {
            ps->problem = "unknown record version";
            return 0;
        }

        return 1;

    case SA_FIELD_TS:
        ps->msg->ts_ms = (int64_t) value;
        return 1;

    default:
        ps->problem = "a number for a string field";
        return 0;
    }
}


static int
sa_msg_parse_double(void *ctx, double value)
{
    sa_msg_parse_t  *ps = ctx;

    int  take;

    take = sa_msg_parse_scalar(ps);
    if (take <= 0) {
        return take == 0;
    }

    ps->problem = "a fraction for a known field";
    return 0;
}


static int
sa_msg_parse_string(void *ctx, const unsigned char *s, size_t len)
{
    sa_msg_parse_t  *ps = ctx;

    int         take;
    char       *copy, **target;
    sa_role_e   role;

    take = sa_msg_parse_scalar(ps);
    if (take <= 0) {
        return take == 0;
    }

    switch (ps->field) {

    case SA_FIELD_ROLE:
        if (sa_role_parse((const char *) s, len, &role) != SA_OK) {
            ps->problem = "unknown role";
            return 0;
        }

        ps->msg->role = role;
        ps->have_role = 1;
        return 1;

    case SA_FIELD_CONTENT:
        target = &ps->msg->content;
        break;

    case SA_FIELD_TOOL_CALL_ID:
        target = &ps->msg->tool_call_id;
        break;

    case SA_FIELD_TOOL_CALLS:
        target = &ps->msg->tool_calls_json;
        break;

    default:
        ps->problem = "a string for a number field";
        return 0;
    }

    /* yajl's strings are not terminated and live only in this callback */

    copy = malloc(len + 1);
    if (copy == NULL) {
        ps->problem = "out of memory";
        return 0;
    }

    memcpy(copy, s, len);
    copy[len] = '\0';

    /* a repeated key: the last one wins */
    free(*target);
    *target = copy;

    if (ps->field == SA_FIELD_CONTENT) {
        ps->msg->content_len = len;
    }

    return 1;
}


static int
sa_msg_parse_start_map(void *ctx)
{
    sa_msg_parse_t  *ps = ctx;

    if (ps->depth == 1 && ps->field != SA_FIELD_UNKNOWN) {
        ps->problem = "an object for a known field";
        return 0;
    }

    ps->depth++;

    return 1;
}


static int
sa_msg_parse_map_key(void *ctx, const unsigned char *key, size_t len)
{
    sa_msg_parse_t  *ps = ctx;

    static const struct {
        const char      *name;
        size_t           len;
        sa_msg_field_e   field;
    } fields[] = {
        { "v", 1, SA_FIELD_VERSION },
        { "r", 1, SA_FIELD_ROLE },
        { "c", 1, SA_FIELD_CONTENT },
        { "t", 1, SA_FIELD_TS },
        { "tid", 3, SA_FIELD_TOOL_CALL_ID },
        { "tc", 2, SA_FIELD_TOOL_CALLS }
    };

    size_t  i;

    if (ps->depth != 1) {
        return 1;
    }

    ps->field = SA_FIELD_UNKNOWN;

    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (fields[i].len == len && memcmp(fields[i].name, key, len) == 0) {
            ps->field = fields[i].field;
            break;
        }
    }

    return 1;
}


static int
sa_msg_parse_start_array(void *ctx)
{
    sa_msg_parse_t  *ps = ctx;

    if (ps->depth == 0) {
        ps->problem = "not an object";
        return 0;
    }

    if (ps->depth == 1 && ps->field != SA_FIELD_UNKNOWN) {
        ps->problem = "an array for a known field";
        return 0;
    }

    ps->depth++;

    return 1;
}


static int
sa_msg_parse_end(void *ctx)
{
    sa_msg_parse_t  *ps = ctx;

    ps->depth--;

    /* a value nested under an unknown key ended: back to the top map */
    if (ps->depth == 1) {
        ps->field = SA_FIELD_UNKNOWN;
    }

    return 1;
}
