/*
 * Copyright (C) ngx_support_agent authors
 *
 * Conversation store: LMDB, one environment shared by all nginx worker
 * processes.  Pure C, no nginx types.
 *
 * Process model.  Each worker opens its own store after fork()
 * (init_process) and closes it in exit_process; a store must never be used
 * across fork() (sa_store_close() in a process that did not open the store
 * only frees memory, so it cannot release the opener's reader slots).  The
 * environment is opened with MDB_NOTLS.  Every call runs one short
 * transaction and returns with no transaction open: nothing is held across
 * event-loop iterations, and every value handed back is a malloc()ed copy.
 * Write transactions are serialized across all processes by LMDB's
 * process-shared mutex, so a write call blocks the worker while another
 * worker writes; they are kept tiny (records are encoded before the
 * transaction begins).  Reads never block.
 *
 * Map growth.  On MDB_MAP_FULL the transaction is aborted, the map grows
 * (first to the size another process already recorded, else doubled,
 * capped at max_map_size) and the whole write is retried; at the cap the
 * call returns SA_FULL with nothing written.  A process whose map is
 * smaller than the data another process wrote gets MDB_MAP_RESIZED from
 * mdb_txn_begin/mdb_txn_renew: it adopts the recorded size and retries.
 *
 * Named databases (max_dbs 32, later layers add their own):
 *
 *   "conversations"  key: the id (no NUL), value: the meta record.
 *   "messages"       key: id, '\0', 4-byte big-endian sequence number
 *                    (0-based), so one conversation's messages are
 *                    adjacent and in order under memcmp ordering (ids
 *                    never contain '\0', so no id is a key prefix of
 *                    another id's keys).  Value: one JSON message record.
 *
 * Meta record, version 1: 40 bytes, little-endian, no padding:
 *
 *   0  u8   layout version (1)     4  u32  turns
 *   1  u8   flags (0)              8  u32  messages (= next sequence no)
 *   2  u16  reserved (0)          12  i32  busy_pid (0 = idle)
 *                                 16  i64  created_ms
 *                                 24  i64  updated_ms
 *                                 32  i64  busy_until_ms
 *
 * Layouts only ever grow at the end: a reader accepts any version >= 1
 * that is at least 40 bytes long and ignores what follows; a rewrite keeps
 * the version byte and the trailing bytes it does not know (up to 256
 * bytes in all).  An incompatible change would use a new database name.
 *
 * Message record: compact JSON written by yajl, keys in this order:
 *
 *   {"v":1,"r":"assistant","c":"...","t":1700000000000,
 *    "tid":"call_1","tc":"[{...}]"}
 *
 *   v    record format version; bumped only for incompatible changes, a
 *        reader refuses versions it does not know (SA_ERROR)
 *   r    role: system, user, assistant, tool (required)
 *   c    content; absent when sa_msg_t.content is NULL (an assistant
 *        message with only tool calls); may hold any byte incl. NUL
 *   t    ts_ms
 *   tid  tool_call_id, absent when NULL
 *   tc   tool_calls_json kept as a JSON string (not embedded), absent when
 *        NULL
 *
 *   Readers ignore keys they do not know (nested values too), so later
 *   layers may add fields without a version bump.  Strings must be valid
 *   UTF-8: commit_turn returns SA_INVALID otherwise.
 *
 * Ids: NUL-terminated, 1..64 bytes ([A-Za-z0-9_-], validated by the
 * caller); anything else gives SA_INVALID.
 *
 * Busy mark: a turn runs under a lease (busy_pid, busy_until_ms).  Every
 * process sharing the directory must share the PID namespace (kill(pid, 0)
 * decides whether a marking worker is still alive).
 */

#ifndef _SA_STORE_H_INCLUDED_
#define _SA_STORE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "sa_types.h"


#define SA_ID_MAX  64

/*
 * A sa_store_write() handler returns this to end its transaction without
 * committing it (nothing to change); sa_store_write() then returns SA_OK.
 */
#define SA_STORE_NOCOMMIT  -1000


typedef struct sa_store_s  sa_store_t;

/* the same type as lmdb.h's MDB_txn, without including lmdb.h here */
struct MDB_txn;

typedef struct {
    char      id[65];
    int64_t   created_ms;
    int64_t   updated_ms;
    uint32_t  turns;          /* completed turns */
    uint32_t  messages;       /* stored messages; also the next sequence no */
    int32_t   busy_pid;       /* process running a turn now, 0 = idle */
    int64_t   busy_until_ms;  /* lease: after it the busy mark is stale */
} sa_conv_meta_t;

typedef struct {
    size_t    map_size;       /* this process's current map size */
    size_t    max_map_size;   /* growth limit, rounded to the page size */
    size_t    used_size;      /* pages in use (last page + 1) * page size */
    size_t    page_size;
    unsigned  max_readers;
    unsigned  readers_used;   /* reader slots ever taken (high-water) */
    unsigned  stale_readers_cleared; /* by sa_store_open() */
    uint64_t  last_txnid;
} sa_store_info_t;


/* dir: an existing directory (data.mdb + lock.mdb inside).
   map_size: initial map size; max_map_size: growth limit (map doubles on
   MDB_MAP_FULL up to it, then SA_FULL). sync: 1 = MDB_NOMETASYNC (commit
   flushes data, not meta: integrity kept, a system crash may undo the last
   commit), 0 = MDB_NOSYNC|MDB_NOMETASYNC (caller calls sa_store_sync()
   periodically). Uses MDB_NOTLS, max_dbs 32 (later layers add named dbs:
   pending actions, handoff queue, kb), maxreaders = max(126, readers).
   Runs mdb_reader_check once (stale readers of crashed workers).
   err gets a message naming the path and mdb_strerror() on failure.
   Both sizes are rounded up to the page size; a map already recorded
   larger in the files is adopted. The files are created with mode 0600. */
int sa_store_open(sa_store_t **st, const char *dir, size_t map_size,
    size_t max_map_size, int sync, unsigned readers, char *err,
    size_t errlen);

/* st may be NULL */
void sa_store_close(sa_store_t *st);

/* mdb_reader_check(); cleared may be NULL */
int sa_store_reader_check(sa_store_t *st, int *cleared);

/* mdb_env_sync(env, 1) */
int sa_store_sync(sa_store_t *st);

/* MDB_env *, for later layers */
void *sa_store_env(sa_store_t *st);

/* text of the last failure (also set for SA_NOT_FOUND, SA_BUSY, SA_FULL,
   SA_INVALID); "" if none */
const char *sa_store_last_error(sa_store_t *st);

/* sizes and reader slots, for logs and status pages */
int sa_store_info(sa_store_t *st, sa_store_info_t *info);


/* creates conversation id, already marked busy by pid until busy_until_ms.
   SA_BUSY if the id exists (the caller generates another id). */
int sa_conv_create(sa_store_t *st, const char *id, int64_t now_ms, int pid,
    int64_t busy_until_ms);

/* marks a turn as running. SA_NOT_FOUND for an unknown id; SA_BUSY when
   another turn is running: busy_pid != 0 and busy_until_ms > now_ms and
   the pid is alive (kill(pid, 0) == 0 or errno EPERM). A stale mark (lease
   expired, or the pid is dead: a crashed worker) is taken over. Fills *meta
   (may be NULL): on SA_OK with the new mark, on SA_BUSY with the current
   holder's (busy_until_ms tells when to retry). */
int sa_conv_begin_turn(sa_store_t *st, const char *id, int64_t now_ms,
    int pid, int64_t busy_until_ms, sa_conv_meta_t *meta);

/* the last max_messages messages, oldest first; *msgs malloc()ed array
   (sa_msgs_free(msgs, n)), *n may be 0 (then *msgs is NULL). SA_NOT_FOUND
   for unknown id. SIZE_MAX gives all. The window may start with a "tool"
   message whose assistant tool_calls message was cut off. */
int sa_conv_history(sa_store_t *st, const char *id, size_t max_messages,
    sa_msg_t **msgs, size_t *n);

/* appends msgs (all or nothing, one write txn), turns++, updated_ms, and
   clears the busy mark if it is pid's. SA_NOT_FOUND, SA_FULL (map at its
   limit: nothing written, busy mark left for sa_conv_end_turn), SA_INVALID
   (a string is not valid UTF-8, or a bad id: nothing written), SA_ERROR.
   Messages are appended even when the mark is no longer pid's (the lease
   expired and another worker took the conversation over). */
int sa_conv_commit_turn(sa_store_t *st, const char *id, int pid,
    const sa_msg_t *msgs, size_t n, int64_t now_ms);

/* clears the busy mark if it is pid's (a failed turn: nothing saved);
   SA_OK also when the mark is not pid's. SA_NOT_FOUND for an unknown id. */
int sa_conv_end_turn(sa_store_t *st, const char *id, int pid);

int sa_conv_get(sa_store_t *st, const char *id, sa_conv_meta_t *meta);


/*
 * For later layers (pending actions, handoff queue, kb): the transaction
 * discipline above, for their own named databases.
 *
 * sa_store_write() runs handler(st, txn, data) in a write transaction and
 * commits it.  The handler returns SA_OK (commit), SA_STORE_NOCOMMIT
 * (abort, result SA_OK), another SA_* code (abort, returned as is), or an
 * LMDB return code (abort; MDB_MAP_FULL grows the map and runs the handler
 * again in a new transaction, up to SA_FULL; anything else is SA_ERROR with
 * the error text naming "what").  The handler may run several times, so it
 * must not change anything outside the transaction before it succeeds.
 *
 * sa_store_read_begin() gives a read-only transaction (the store's own,
 * renewed); sa_store_read_end() must follow before the caller returns to
 * the event loop.  Values read must be copied before sa_store_read_end().
 *
 * sa_store_dbi_open() opens (creating) a named database; the handle is
 * valid in every later transaction of this store.
 */
typedef int (*sa_store_write_pt)(sa_store_t *st, struct MDB_txn *txn,
    void *data);

int sa_store_write(sa_store_t *st, const char *what,
    sa_store_write_pt handler, void *data);
int sa_store_read_begin(sa_store_t *st, struct MDB_txn **txn);
void sa_store_read_end(sa_store_t *st);
int sa_store_dbi_open(sa_store_t *st, const char *name, unsigned flags,
    unsigned *dbi);


#endif /* _SA_STORE_H_INCLUDED_ */
