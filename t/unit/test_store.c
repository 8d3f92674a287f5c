/*
 * Copyright (C) ngx_support_agent authors
 *
 * sa_store: conversations in LMDB, shared by processes.
 */


#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "tap.h"
#include "sa_store.h"


#define KIB  1024
#define MIB  (1024 * 1024)


static char  tmp_base[] = "/tmp/sa_store_test_XXXXXX";


static void
make_dir(char *path, size_t size, const char *name)
{
    snprintf(path, size, "%s/%s", tmp_base, name);

    if (mkdir(path, 0700) != 0) {
        printf("Bail out! mkdir %s: %s\n", path, strerror(errno));
        exit(1);
    }
}


static void
remove_dir(const char *path)
{
    char  file[512];

    snprintf(file, sizeof(file), "%s/data.mdb", path);
    unlink(file);
    snprintf(file, sizeof(file), "%s/lock.mdb", path);
    unlink(file);
    rmdir(path);
}


static sa_store_t *
open_store(const char *dir, size_t map, size_t max, int sync)
{
    char         err[512];
    sa_store_t  *st;

    if (sa_store_open(&st, dir, map, max, sync, 0, err, sizeof(err))
        != SA_OK)
    {
        printf("Bail out! %s\n", err);
        exit(1);
    }

    return st;
}


static int64_t
now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static double
mono_us(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}


static sa_msg_t
msg(sa_role_e role, const char *content, int64_t ts)
{
    sa_msg_t  m;

    memset(&m, 0, sizeof(sa_msg_t));
    m.role = role;
    m.content = (char *) content;
    m.content_len = content ? strlen(content) : 0;
    m.ts_ms = ts;

    return m;
}


static size_t
map_size(sa_store_t *st)
{
    sa_store_info_t  info;

    if (sa_store_info(st, &info) != SA_OK) {
        return 0;
    }

    return info.map_size;
}


/* a pid that surely belongs to no process: a reaped child's */
static int
dead_pid(void)
{
    pid_t  pid;

    pid = fork();
    if (pid == 0) {
        _exit(0);
    }

    waitpid(pid, NULL, 0);

    return (int) pid;
}


static void
test_open_errors(void)
{
    int          rc;
    char         err[512];
    sa_store_t  *st;

    rc = sa_store_open(&st, "/nonexistent/sa_store", 1 * MIB, 1 * MIB, 1, 0,
                       err, sizeof(err));
    is_int(rc, SA_ERROR, "open: missing directory fails");
    ok(st == NULL, "open: no store on failure");
    ok(strstr(err, "/nonexistent/sa_store") != NULL
       && strstr(err, "No such file") != NULL,
       "open: error names the path and the cause (%s)", err);

    sa_store_close(NULL);
    ok(1, "close(NULL) is harmless");
}


static void
test_conversations(void)
{
    int              pid, rc;
    char             dir[256], long_id[80];
    size_t           n;
    int64_t          now;
    sa_msg_t         turn[2], *hist;
    sa_store_t      *st;
    sa_conv_meta_t   meta;

    make_dir(dir, sizeof(dir), "conv");
    st = open_store(dir, 1 * MIB, 8 * MIB, 1);

    pid = (int) getpid();
    now = now_ms();

    /* create / get */

    is_int(sa_conv_create(st, "c1", now, pid, now + 60000), SA_OK,
           "create");

    memset(&meta, 0, sizeof(meta));
    is_int(sa_conv_get(st, "c1", &meta), SA_OK, "get");
    is_str(meta.id, "c1", "get: id");
    is_int(meta.created_ms, now, "get: created_ms");
    is_int(meta.updated_ms, now, "get: updated_ms");
    is_int(meta.turns, 0, "get: no turns yet");
    is_int(meta.messages, 0, "get: no messages yet");
    is_int(meta.busy_pid, pid, "get: created busy by its creator");
    is_int(meta.busy_until_ms, now + 60000, "get: lease");

    is_int(sa_conv_create(st, "c1", now, pid, now + 60000), SA_BUSY,
           "duplicate create: SA_BUSY");
    ok(strstr(sa_store_last_error(st), "c1") != NULL,
       "last error names the id: %s", sa_store_last_error(st));

    is_int(sa_conv_get(st, "nope", &meta), SA_NOT_FOUND,
           "get unknown: SA_NOT_FOUND");

    memset(long_id, 'a', 65);
    long_id[65] = '\0';
    is_int(sa_conv_create(st, long_id, now, pid, now), SA_INVALID,
           "65-byte id: SA_INVALID");
    is_int(sa_conv_get(st, "", &meta), SA_INVALID, "empty id: SA_INVALID");
    long_id[64] = '\0';
    is_int(sa_conv_create(st, long_id, now, pid, now), SA_OK,
           "64-byte id is fine");
    is_int(sa_conv_get(st, long_id, &meta), SA_OK, "64-byte id: get");
    is_str(meta.id, long_id, "64-byte id: id copied whole");

    /* begin_turn */

    is_int(sa_conv_begin_turn(st, "nope", now, pid, now + 1000, &meta),
           SA_NOT_FOUND, "begin_turn unknown: SA_NOT_FOUND");

    memset(&meta, 0, sizeof(meta));
    is_int(sa_conv_begin_turn(st, "c1", now, pid + 1, now + 1000, &meta),
           SA_BUSY, "begin_turn on a live lease: SA_BUSY");
    is_int(meta.busy_pid, pid, "SA_BUSY: meta shows the holder");
    is_int(meta.busy_until_ms, now + 60000, "SA_BUSY: and its lease");

    is_int(sa_conv_begin_turn(st, "c1", now, pid, now + 1000, NULL),
           SA_BUSY, "begin_turn by the same live pid: SA_BUSY too");

    /* stale lease: expired, though the pid lives */

    is_int(sa_conv_begin_turn(st, "c1", now + 60000, 4242, now + 70000,
                              &meta),
           SA_OK, "expired lease taken over");
    is_int(meta.busy_pid, 4242, "taken over: new pid");
    is_int(meta.busy_until_ms, now + 70000, "taken over: new lease");

    /* dead pid: lease still running, the worker crashed */

    is_int(sa_conv_create(st, "c2", now, dead_pid(), now + 600000), SA_OK,
           "create busy by a dead pid");
    is_int(sa_conv_begin_turn(st, "c2", now, pid, now + 1000, &meta), SA_OK,
           "dead pid's mark taken over");
    is_int(meta.busy_pid, pid, "dead pid: now ours");

    is_int(sa_conv_create(st, "c3", now, 0, 0), SA_OK, "create idle");
    is_int(sa_conv_begin_turn(st, "c3", now, pid, now + 1000, NULL), SA_OK,
           "begin on idle");
    is_int(sa_conv_create(st, "c4", now, -1, now + 600000), SA_OK,
           "create with a nonsense pid");
    is_int(sa_conv_begin_turn(st, "c4", now, pid, now + 1000, NULL), SA_OK,
           "nonsense pid (-1, kill() would hit every process) is stale");

    /* commit_turn appends and clears our mark */

    turn[0] = msg(SA_ROLE_USER, "hello", now + 1);
    turn[1] = msg(SA_ROLE_ASSISTANT, "hi, how can I help?", now + 2);

    is_int(sa_conv_commit_turn(st, "c2", pid, turn, 2, now + 3), SA_OK,
           "commit_turn");
    is_int(sa_conv_get(st, "c2", &meta), SA_OK, "get after commit");
    is_int(meta.turns, 1, "commit: turns 1");
    is_int(meta.messages, 2, "commit: messages 2");
    is_int(meta.updated_ms, now + 3, "commit: updated_ms");
    is_int(meta.busy_pid, 0, "commit: busy cleared");
    is_int(meta.busy_until_ms, 0, "commit: lease cleared");

    rc = sa_conv_history(st, "c2", 10, &hist, &n);
    is_int(rc, SA_OK, "history");
    is_int(n, 2, "history: 2 messages");
    if (n == 2) {
        is_int(hist[0].role, SA_ROLE_USER, "history[0] role");
        is_str(hist[0].content, "hello", "history[0] content");
        is_int(hist[0].content_len, 5, "history[0] content_len");
        is_int(hist[0].ts_ms, now + 1, "history[0] ts");
        ok(hist[0].tool_call_id == NULL && hist[0].tool_calls_json == NULL,
           "history[0] no tool fields");
        is_int(hist[1].role, SA_ROLE_ASSISTANT, "history[1] role");
        is_str(hist[1].content, "hi, how can I help?", "history[1] content");
    }
    sa_msgs_free(hist, n);

    /* a commit by a pid whose mark was taken over leaves the mark */

    is_int(sa_conv_begin_turn(st, "c2", now, pid, now + 1000, NULL), SA_OK,
           "begin second turn");
    is_int(sa_conv_commit_turn(st, "c2", 4242, turn, 1, now + 4), SA_OK,
           "commit by another pid");
    is_int(sa_conv_get(st, "c2", &meta), SA_OK, "get");
    is_int(meta.busy_pid, pid, "another pid's commit keeps our mark");
    is_int(meta.messages, 3, "but its messages were appended");

    /* end_turn: clears the mark, saves nothing */

    is_int(sa_conv_end_turn(st, "c2", 4242), SA_OK,
           "end_turn by another pid: ok");
    is_int(sa_conv_get(st, "c2", &meta), SA_OK, "get");
    is_int(meta.busy_pid, pid, "another pid's end_turn keeps our mark");

    is_int(sa_conv_end_turn(st, "c2", pid), SA_OK, "end_turn");
    is_int(sa_conv_get(st, "c2", &meta), SA_OK, "get");
    is_int(meta.busy_pid, 0, "end_turn: busy cleared");
    is_int(meta.turns, 2, "end_turn: turns unchanged");
    is_int(meta.messages, 3, "end_turn: messages unchanged");
    is_int(sa_conv_end_turn(st, "nope", pid), SA_NOT_FOUND,
           "end_turn unknown: SA_NOT_FOUND");
    is_int(sa_conv_commit_turn(st, "nope", pid, turn, 2, now), SA_NOT_FOUND,
           "commit_turn unknown: SA_NOT_FOUND");

    hist = (sa_msg_t *) 1;
    is_int(sa_conv_history(st, "nope", 10, &hist, &n), SA_NOT_FOUND,
           "history unknown: SA_NOT_FOUND");
    ok(hist == NULL && n == 0, "history unknown: nothing returned");

    is_int(sa_conv_history(st, "c1", 10, &hist, &n), SA_OK,
           "history of a conversation without messages");
    ok(hist == NULL && n == 0, "empty history: NULL, 0");

    is_int(sa_conv_commit_turn(st, "c1", 4242, NULL, 0, now + 5), SA_OK,
           "commit of a turn without messages");
    is_int(sa_conv_get(st, "c1", &meta), SA_OK, "get");
    ok(meta.turns == 1 && meta.messages == 0 && meta.busy_pid == 0,
       "empty turn: turns 1, messages 0, idle");

    sa_store_close(st);
    remove_dir(dir);
}


static void
test_history(void)
{
    int          pid, i, good;
    char         dir[256], text[2][64];
    size_t       n;
    sa_msg_t     turn[2], *hist;
    sa_store_t  *st;

    make_dir(dir, sizeof(dir), "history");
    st = open_store(dir, 1 * MIB, 8 * MIB, 0);

    pid = (int) getpid();

    sa_conv_create(st, "h", 1, 0, 0);

    /* a neighbour whose keys sort right after h's: must not leak in */
    sa_conv_create(st, "h0", 1, 0, 0);
    turn[0] = msg(SA_ROLE_USER, "neighbour", 1);
    sa_conv_commit_turn(st, "h0", pid, turn, 1, 1);

    /* 300 turns: sequence numbers cross the 256 byte boundary */

    good = 1;
    for (i = 0; i < 150; i++) {
        snprintf(text[0], sizeof(text[0]), "q%d", 2 * i);
        snprintf(text[1], sizeof(text[1]), "a%d", 2 * i + 1);
        turn[0] = msg(SA_ROLE_USER, text[0], 2 * i);
        turn[1] = msg(SA_ROLE_ASSISTANT, text[1], 2 * i + 1);
        good &= sa_conv_commit_turn(st, "h", pid, turn, 2, i) == SA_OK;
    }
    ok(good, "150 turns committed");

    is_int(sa_conv_history(st, "h", 5, &hist, &n), SA_OK, "history last 5");
    is_int(n, 5, "5 returned");
    good = (n == 5);
    for (i = 0; good && i < 5; i++) {
        snprintf(text[0], sizeof(text[0]), "%c%d",
                 (295 + i) % 2 ? 'a' : 'q', 295 + i);
        good = strcmp(hist[i].content, text[0]) == 0
               && hist[i].ts_ms == 295 + i;
    }
    ok(good, "the last 5, oldest first (a295 .. q299)");
    sa_msgs_free(hist, n);

    is_int(sa_conv_history(st, "h", 1000, &hist, &n), SA_OK,
           "history more than stored");
    is_int(n, 300, "all 300 returned");
    good = (n == 300);
    for (i = 0; good && i < 300; i++) {
        good = hist[i].ts_ms == i;
    }
    ok(good, "in order, none from the neighbour");
    sa_msgs_free(hist, n);

    is_int(sa_conv_history(st, "h", SIZE_MAX, &hist, &n), SA_OK,
           "history SIZE_MAX");
    is_int(n, 300, "SIZE_MAX: all");
    sa_msgs_free(hist, n);

    is_int(sa_conv_history(st, "h", 0, &hist, &n), SA_OK, "history 0");
    ok(n == 0 && hist == NULL, "0: nothing");

    is_int(sa_conv_history(st, "h", 257, &hist, &n), SA_OK, "history 257");
    ok(n == 257 && hist[0].ts_ms == 43 && hist[256].ts_ms == 299,
       "257: from seq 43 to 299");
    sa_msgs_free(hist, n);

    is_int(sa_conv_history(st, "h0", 10, &hist, &n), SA_OK,
           "neighbour history");
    ok(n == 1 && strcmp(hist[0].content, "neighbour") == 0,
       "neighbour: its own message only");
    sa_msgs_free(hist, n);

    sa_store_close(st);
    remove_dir(dir);
}


static void
test_round_trip(void)
{
    int             pid;
    char            dir[256], big[70000];
    size_t          n;
    sa_msg_t        turn[4], *hist;
    sa_store_t     *st;
    sa_conv_meta_t  meta;

    static const char  unicode[] =
        "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80 \xe4\xb8\xad\xe6\x96\x87 "
        "\"quoted\" back\\slash\nnew line\ttab \x01 /slash";

    static const char  nul_content[] = "before\0after";

    static const char  tool_calls[] =
        "[{\"id\":\"call_1\",\"type\":\"function\",\"function\":"
        "{\"name\":\"lookup_order\",\"arguments\":\"{\\\"order\\\":42}\"}}]";

    make_dir(dir, sizeof(dir), "roundtrip");
    st = open_store(dir, 1 * MIB, 8 * MIB, 1);

    pid = (int) getpid();

    sa_conv_create(st, "r", 1, pid, 2);

    turn[0] = msg(SA_ROLE_USER, unicode, -5);
    turn[1] = msg(SA_ROLE_ASSISTANT, NULL, INT64_MAX);
    turn[1].tool_calls_json = (char *) tool_calls;
    turn[2] = msg(SA_ROLE_TOOL, "{\"status\":\"shipped\"}", 7);
    turn[2].tool_call_id = "call_1";
    turn[3] = msg(SA_ROLE_SYSTEM, nul_content, 8);
    turn[3].content_len = sizeof(nul_content) - 1;

    is_int(sa_conv_commit_turn(st, "r", pid, turn, 4, 3), SA_OK,
           "commit unicode, tool call, tool result, NUL");

    is_int(sa_conv_history(st, "r", 10, &hist, &n), SA_OK, "history");
    is_int(n, 4, "4 messages");

    if (n == 4) {
        is_str(hist[0].content, unicode, "unicode content round trip");
        is_int(hist[0].content_len, strlen(unicode), "unicode length");
        is_int(hist[0].ts_ms, -5, "negative ts");

        is_int(hist[1].role, SA_ROLE_ASSISTANT, "assistant role");
        ok(hist[1].content == NULL && hist[1].content_len == 0,
           "NULL content stays NULL");
        is_str(hist[1].tool_calls_json, tool_calls, "tool_calls_json");
        ok(hist[1].tool_call_id == NULL, "no tool_call_id");
        is_int(hist[1].ts_ms, INT64_MAX, "INT64_MAX ts");

        is_int(hist[2].role, SA_ROLE_TOOL, "tool role");
        is_str(hist[2].tool_call_id, "call_1", "tool_call_id");
        is_str(hist[2].content, "{\"status\":\"shipped\"}",
               "tool content");
        ok(hist[2].tool_calls_json == NULL, "no tool_calls_json");

        is_int(hist[3].role, SA_ROLE_SYSTEM, "system role");
        ok(hist[3].content_len == sizeof(nul_content) - 1
           && memcmp(hist[3].content, nul_content,
                     sizeof(nul_content)) == 0,
           "content with an embedded NUL keeps its length");
    }

    sa_msgs_free(hist, n);

    /* invalid UTF-8 refuses the whole turn */

    sa_conv_begin_turn(st, "r", 10, pid, 20, NULL);
    turn[0] = msg(SA_ROLE_USER, "fine", 9);
    turn[1] = msg(SA_ROLE_ASSISTANT, "bad \xc3\x28 utf-8", 10);
    is_int(sa_conv_commit_turn(st, "r", pid, turn, 2, 11), SA_INVALID,
           "invalid UTF-8: SA_INVALID");
    ok(strstr(sa_store_last_error(st), "message 1") != NULL,
       "error names the message: %s", sa_store_last_error(st));

    turn[1] = msg(SA_ROLE_TOOL, "ok", 10);
    turn[1].tool_call_id = "\xff";
    is_int(sa_conv_commit_turn(st, "r", pid, turn, 2, 11), SA_INVALID,
           "invalid UTF-8 in tool_call_id: SA_INVALID");

    sa_conv_get(st, "r", &meta);
    ok(meta.messages == 4 && meta.turns == 1 && meta.busy_pid == pid,
       "refused turn: nothing written, mark left");

    /* a large message (overflow pages) */

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    turn[0] = msg(SA_ROLE_ASSISTANT, big, 12);
    is_int(sa_conv_commit_turn(st, "r", pid, turn, 1, 13), SA_OK,
           "commit a 70 KB message");
    is_int(sa_conv_history(st, "r", 1, &hist, &n), SA_OK, "history 1");
    ok(n == 1 && hist[0].content_len == sizeof(big) - 1
       && strcmp(hist[0].content, big) == 0, "70 KB round trip");
    sa_msgs_free(hist, n);

    sa_store_close(st);
    remove_dir(dir);
}


/* the handlers of test_compat(): records as a later version writes them */

typedef struct {
    unsigned      dbi;
    const char   *id;
    const void   *value;
    size_t        len;
    size_t        key_len;
} raw_put_t;


static int
raw_put(sa_store_t *st, struct MDB_txn *txn, void *data)
{
    raw_put_t  *rp = data;
    MDB_val     key, val;

    key.mv_data = (void *) rp->id;
    key.mv_size = rp->key_len;
    val.mv_data = (void *) rp->value;
    val.mv_size = rp->len;

    return mdb_put(txn, rp->dbi, &key, &val, 0);
}


static int
raw_fail(sa_store_t *st, struct MDB_txn *txn, void *data)
{
    (*(int *) data)++;
    return SA_NOT_FOUND;
}


static void
test_compat(void)
{
    int              pid, calls;
    char             dir[256];
    size_t           n;
    MDB_val          key, val;
    MDB_txn         *txn;
    sa_msg_t        *hist;
    unsigned         conversations, messages;
    raw_put_t        rp;
    sa_store_t      *st;
    unsigned char    rec[48], saved[64];
    sa_conv_meta_t   meta;

    static const char  future[] =
        "{\"v\":1,\"r\":\"assistant\",\"x\":{\"c\":\"nested\",\"r\":[1,"
        "{\"v\":2}]},\"c\":\"now\",\"t\":5,\"score\":0.5,\"ok\":true,"
        "\"n\":null,\"list\":[\"c\"]}";

    static const char  newer[] = "{\"v\":2,\"r\":\"user\",\"c\":\"x\"}";

    make_dir(dir, sizeof(dir), "compat");
    st = open_store(dir, 1 * MIB, 8 * MIB, 1);

    pid = (int) getpid();

    is_int(sa_store_dbi_open(st, "conversations", 0, &conversations), SA_OK,
           "dbi_open conversations");
    is_int(sa_store_dbi_open(st, "messages", 0, &messages), SA_OK,
           "dbi_open messages");

    /* meta v1 with 8 more bytes a later layout appended */

    memset(rec, 0, sizeof(rec));
    rec[0] = 1;
    rec[8] = 1;                         /* messages = 1 */
    rec[16] = 100;                      /* created_ms = 100 */
    memcpy(rec + 40, "LATER...", 8);

    rp.dbi = conversations;
    rp.id = "f";
    rp.key_len = 1;
    rp.value = rec;
    rp.len = sizeof(rec);
    is_int(sa_store_write(st, "raw meta", raw_put, &rp), SA_OK,
           "write a longer meta record");

    rp.dbi = messages;
    rp.id = "f\0\0\0\0\0";
    rp.key_len = 6;
    rp.value = future;
    rp.len = sizeof(future) - 1;
    is_int(sa_store_write(st, "raw message", raw_put, &rp), SA_OK,
           "write a message record with unknown keys");

    is_int(sa_conv_get(st, "f", &meta), SA_OK, "longer meta readable");
    ok(meta.messages == 1 && meta.created_ms == 100, "its known fields");

    is_int(sa_conv_history(st, "f", 10, &hist, &n), SA_OK,
           "unknown keys ignored");
    ok(n == 1 && hist[0].role == SA_ROLE_ASSISTANT
       && strcmp(hist[0].content, "now") == 0 && hist[0].ts_ms == 5,
       "known keys read, nested lookalikes skipped");
    sa_msgs_free(hist, n);

    is_int(sa_conv_begin_turn(st, "f", 1, pid, 2, NULL), SA_OK,
           "begin_turn rewrites the meta");

    n = 0;
    if (sa_store_read_begin(st, &txn) == SA_OK) {
        key.mv_data = "f";
        key.mv_size = 1;
        if (mdb_get(txn, conversations, &key, &val) == MDB_SUCCESS
            && val.mv_size <= sizeof(saved))
        {
            n = val.mv_size;
            memcpy(saved, val.mv_data, n);
        }
        sa_store_read_end(st);
    }
    ok(n == sizeof(rec) && memcmp(saved + 40, "LATER...", 8) == 0,
       "rewrite keeps the bytes it does not know");

    /* an incompatible record version is refused */

    rp.value = newer;
    rp.len = sizeof(newer) - 1;
    sa_store_write(st, "raw message", raw_put, &rp);
    is_int(sa_conv_history(st, "f", 10, &hist, &n), SA_ERROR,
           "record version 2 refused");
    ok(strstr(sa_store_last_error(st), "version") != NULL,
       "error says why: %s", sa_store_last_error(st));

    rp.value = "{\"v\":1,\"c\":\"x\"}";
    rp.len = strlen(rp.value);
    sa_store_write(st, "raw message", raw_put, &rp);
    is_int(sa_conv_history(st, "f", 10, &hist, &n), SA_ERROR,
           "record without a role refused");

    rp.value = "{\"v\":1,\"r\":\"user\",\"c\":";
    rp.len = strlen(rp.value);
    sa_store_write(st, "raw message", raw_put, &rp);
    is_int(sa_conv_history(st, "f", 10, &hist, &n), SA_ERROR,
           "truncated record refused");

    rp.value = "{\"v\":1,\"r\":\"user\",\"c\":[\"x\"]}";
    rp.len = strlen(rp.value);
    sa_store_write(st, "raw message", raw_put, &rp);
    is_int(sa_conv_history(st, "f", 10, &hist, &n), SA_ERROR,
           "wrong type for a known key refused");
    ok(hist == NULL && n == 0, "nothing returned on error");

    rp.dbi = conversations;
    rp.id = "g";
    rp.key_len = 1;
    rp.value = rec;
    rp.len = 39;
    sa_store_write(st, "raw meta", raw_put, &rp);
    is_int(sa_conv_get(st, "g", &meta), SA_ERROR, "short meta refused");

    /* the write wrapper: handler codes pass through, nothing committed */

    calls = 0;
    is_int(sa_store_write(st, "fail", raw_fail, &calls), SA_NOT_FOUND,
           "write: handler's SA_* code returned");
    is_int(calls, 1, "write: handler ran once");

    is_int(sa_store_read_begin(st, &txn), SA_OK, "read_begin");
    is_int(sa_store_read_begin(st, &txn), SA_ERROR,
           "read_begin twice refused");
    sa_store_read_end(st);
    sa_store_read_end(st);
    ok(1, "read_end twice harmless");

    sa_store_close(st);
    remove_dir(dir);
}


static void
test_map_full(void)
{
    int              pid, rc, i, grew;
    char             dir[256], big[1500];
    size_t           n, before, at_full;
    sa_msg_t         turn[2], *hist;
    sa_store_t      *st;
    sa_conv_meta_t   meta, meta_full;

    make_dir(dir, sizeof(dir), "mapfull");
    st = open_store(dir, 64 * KIB, 256 * KIB, 1);

    pid = (int) getpid();

    before = map_size(st);
    is_int(before, 64 * KIB, "tiny map: 64 KiB");

    sa_conv_create(st, "m", 1, 0, 0);

    memset(big, 'y', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';

    grew = 0;
    rc = SA_OK;

    for (i = 0; i < 1000; i++) {
        if (sa_conv_begin_turn(st, "m", i, pid, i + 1000, NULL) != SA_OK) {
            rc = SA_ERROR;
            break;
        }

        turn[0] = msg(SA_ROLE_USER, big, i);
        turn[1] = msg(SA_ROLE_ASSISTANT, big, i);

        sa_conv_get(st, "m", &meta);

        rc = sa_conv_commit_turn(st, "m", pid, turn, 2, i);
        if (rc != SA_OK) {
            break;
        }

        if (map_size(st) > before) {
            grew = 1;
        }
    }

    is_int(rc, SA_FULL, "writes end with SA_FULL");
    ok(i > 20, "after %d turns", i);
    ok(grew, "the map grew before that");
    at_full = map_size(st);
    is_int(at_full, 256 * KIB, "map at its limit");
    ok(strstr(sa_store_last_error(st), "limit") != NULL,
       "error: %s", sa_store_last_error(st));

    is_int(sa_conv_get(st, "m", &meta_full), SA_OK, "get after SA_FULL");
    ok(meta_full.messages == meta.messages && meta_full.turns == meta.turns,
       "failed commit wrote nothing (%u messages)",
       (unsigned) meta_full.messages);
    is_int(meta_full.busy_pid, pid, "busy mark left for end_turn");

    is_int(sa_conv_history(st, "m", SIZE_MAX, &hist, &n), SA_OK,
           "history after SA_FULL");
    is_int(n, meta.messages, "history: all committed messages");
    ok(n > 0 && hist[n - 1].content_len == sizeof(big) - 1,
       "and they read back");
    sa_msgs_free(hist, n);

    is_int(sa_conv_end_turn(st, "m", pid), SA_OK, "end_turn at the limit");
    sa_conv_get(st, "m", &meta);
    is_int(meta.busy_pid, 0, "end_turn cleared the mark");

    sa_store_close(st);

    /* reopening with a smaller configured map keeps what is there */

    st = open_store(dir, 64 * KIB, 256 * KIB, 1);
    ok(map_size(st) >= 256 * KIB, "reopen adopts the grown map (%zu)",
       map_size(st));
    is_int(sa_conv_history(st, "m", 2, &hist, &n), SA_OK,
           "history after reopen");
    sa_msgs_free(hist, n);
    sa_store_close(st);

    remove_dir(dir);
}


static int
child_grow(const char *dir, const char *id, int turns)
{
    int          i, pid;
    char         big[3000];
    sa_msg_t     turn[2];
    sa_store_t  *st;

    /* a new process, as an nginx worker: its own env */

    st = open_store(dir, 64 * KIB, 64 * MIB, 0);

    pid = (int) getpid();
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';

    if (sa_conv_create(st, id, 1, pid, 2) != SA_OK) {
        return 1;
    }

    for (i = 0; i < turns; i++) {
        turn[0] = msg(SA_ROLE_USER, big, i);
        turn[1] = msg(SA_ROLE_ASSISTANT, big, i);

        if (sa_conv_commit_turn(st, id, pid, turn, 2, i) != SA_OK) {
            printf("# child: %s\n", sa_store_last_error(st));
            return 1;
        }
    }

    if (map_size(st) < 1 * MIB) {
        return 2;
    }

    sa_store_close(st);

    return 0;
}


static void
test_cross_process(void)
{
    int              pid, status;
    char             dir[256];
    size_t           n, before;
    pid_t            child;
    sa_msg_t         turn[1], *hist;
    sa_store_t      *st;
    sa_conv_meta_t   meta;

    make_dir(dir, sizeof(dir), "cross");
    st = open_store(dir, 64 * KIB, 64 * MIB, 0);

    pid = (int) getpid();

    sa_conv_create(st, "p", 1, pid, 2);
    turn[0] = msg(SA_ROLE_USER, "parent", 1);
    is_int(sa_conv_commit_turn(st, "p", pid, turn, 1, 2), SA_OK,
           "parent writes");
    is_int(sa_conv_get(st, "p", &meta), SA_OK,
           "parent reads (its read txn is now kept, reset)");

    before = map_size(st);
    is_int(before, 64 * KIB, "parent map 64 KiB");

    /* round 1: the child grows the map, then the parent writes first */

    child = fork();
    if (child == 0) {
        _exit(child_grow(dir, "child1", 200));
    }

    waitpid(child, &status, 0);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
       "child grew the map past 1 MiB (status %d)", status);
    is_int(map_size(st), 64 * KIB, "parent map unchanged so far");

    is_int(sa_conv_begin_turn(st, "p", 3, pid, 4, NULL), SA_OK,
           "parent write after the child grew the map (MDB_MAP_RESIZED)");
    ok(map_size(st) > 1 * MIB, "parent adopted the map size (%zu)",
       map_size(st));
    is_int(sa_conv_commit_turn(st, "p", pid, turn, 1, 5), SA_OK,
           "parent commit");

    is_int(sa_conv_history(st, "child1", 3, &hist, &n), SA_OK,
           "parent reads the child's conversation");
    ok(n == 3 && hist[2].content_len == 2999, "the child's messages");
    sa_msgs_free(hist, n);

    /* round 2: the child grows it further, the parent reads first */

    before = map_size(st);

    child = fork();
    if (child == 0) {
        _exit(child_grow(dir, "child2", 2000));
    }

    waitpid(child, &status, 0);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
       "second child grew the map further (status %d)", status);

    is_int(sa_conv_history(st, "child2", 2, &hist, &n), SA_OK,
           "parent read after that (MDB_MAP_RESIZED on renew)");
    ok(n == 2 && hist[1].content_len == 2999, "the second child's data");
    sa_msgs_free(hist, n);
    ok(map_size(st) > before, "parent map grew on read (%zu > %zu)",
       map_size(st), before);

    is_int(sa_conv_get(st, "p", &meta), SA_OK, "parent get");
    is_int(meta.messages, 2, "parent's conversation intact");

    sa_store_close(st);
    remove_dir(dir);
}


/*
 * Globals (not static: a write-only static may be optimized away), so
 * what a child leaves behind at _exit() (the parent's store it inherited,
 * the crashing child's store and txn) stays reachable for valgrind.
 */
sa_store_t  *crashed_store;
sa_store_t  *inherited_store;
MDB_txn     *crashed_txn;


#define WORKERS        4
#define WORKER_TURNS   150


/* a worker: turns on one shared conversation, under the busy mark */
static int
worker(const char *dir)
{
    int              pid, i, rc;
    char             q[1100], a[1100];
    sa_msg_t         turn[2];
    sa_store_t      *st;
    sa_conv_meta_t   meta;
    struct timespec  pause;

    st = open_store(dir, 64 * KIB, 64 * MIB, 0);

    pid = (int) getpid();
    pause.tv_sec = 0;
    pause.tv_nsec = 50000;

    for (i = 0; i < WORKER_TURNS; i++) {

        do {
            rc = sa_conv_begin_turn(st, "shared", now_ms(), pid,
                                    now_ms() + 60000, &meta);
            if (rc == SA_BUSY) {
                nanosleep(&pause, NULL);
            }
        } while (rc == SA_BUSY);

        if (rc != SA_OK) {
            printf("# worker %d: begin: %s\n", pid, sa_store_last_error(st));
            return 1;
        }

        /* the sequence number the turn must get if the mark excludes */
        snprintf(q, sizeof(q), "%d %d %u q %01000d", pid, i,
                 (unsigned) meta.messages, 0);
        snprintf(a, sizeof(a), "%d %d %u a", pid, i,
                 (unsigned) meta.messages + 1);

        turn[0] = msg(SA_ROLE_USER, q, i);
        turn[1] = msg(SA_ROLE_ASSISTANT, a, i);

        if (sa_conv_commit_turn(st, "shared", pid, turn, 2, now_ms())
            != SA_OK)
        {
            printf("# worker %d: commit: %s\n", pid, sa_store_last_error(st));
            return 1;
        }
    }

    sa_store_close(st);

    return 0;
}


static void
test_concurrent(void)
{
    int              i, status, good, exits_ok, reads, alive;
    char             dir[256];
    size_t           n, k;
    pid_t            child;
    unsigned         seq;
    sa_msg_t        *hist;
    sa_store_t      *st;
    sa_conv_meta_t   meta;
    sa_store_info_t  info;

    make_dir(dir, sizeof(dir), "concurrent");
    st = open_store(dir, 64 * KIB, 64 * MIB, 0);
    sa_conv_create(st, "shared", now_ms(), 0, 0);

    for (i = 0; i < WORKERS; i++) {
        if (fork() == 0) {
            inherited_store = st;
            _exit(worker(dir));
        }
    }

    /* meanwhile the parent reads, while the others grow the map */

    good = 1;
    exits_ok = 1;
    reads = 0;
    alive = WORKERS;

    while (alive > 0) {
        child = waitpid(-1, &status, WNOHANG);

        if (child > 0) {
            exits_ok &= WIFEXITED(status) && WEXITSTATUS(status) == 0;
            alive--;
            continue;
        }

        if (child < 0) {
            exits_ok = 0;
            break;
        }

        good &= sa_conv_get(st, "shared", &meta) == SA_OK;
        if (sa_conv_history(st, "shared", 4, &hist, &n) == SA_OK) {
            sa_msgs_free(hist, n);
        } else {
            good = 0;
        }
        reads++;
    }

    ok(good, "parent reads during the run (%d)", reads);
    ok(exits_ok, "%d workers ran %d turns each", WORKERS, WORKER_TURNS);

    is_int(sa_conv_get(st, "shared", &meta), SA_OK, "get");
    is_int(meta.turns, WORKERS * WORKER_TURNS, "all turns counted");
    is_int(meta.messages, 2 * WORKERS * WORKER_TURNS,
           "all messages stored");
    is_int(meta.busy_pid, 0, "idle at the end");

    is_int(sa_conv_history(st, "shared", SIZE_MAX, &hist, &n), SA_OK,
           "history of all");
    good = (n == 2 * WORKERS * WORKER_TURNS);
    for (k = 0; good && k < n; k++) {
        good = sscanf(hist[k].content, "%*d %*d %u", &seq) == 1
               && seq == k;
    }
    ok(good, "every turn got the sequence numbers it saw at begin_turn: "
       "the busy mark excluded the others");
    sa_msgs_free(hist, n);

    memset(&info, 0, sizeof(info));
    sa_store_info(st, &info);
    ok(info.used_size > 512 * KIB && info.map_size >= info.used_size,
       "map grew from 64 KiB under concurrency (%zu used, %zu mapped)",
       info.used_size, info.map_size);

    sa_store_close(st);
    remove_dir(dir);
}


static void
test_stale_reader(void)
{
    int          status, cleared;
    char         dir[256];
    pid_t        child;
    sa_store_t  *st;

    make_dir(dir, sizeof(dir), "stale");
    st = open_store(dir, 1 * MIB, 8 * MIB, 1);

    child = fork();
    if (child == 0) {
        inherited_store = st;
        crashed_store = open_store(dir, 1 * MIB, 8 * MIB, 1);

        if (mdb_txn_begin(sa_store_env(crashed_store), NULL, MDB_RDONLY,
                          &crashed_txn)
            != 0)
        {
            _exit(1);
        }

        /* a worker crashing inside a read txn */
        _exit(0);
    }

    waitpid(child, &status, 0);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
       "child died holding a read txn");

    cleared = 0;
    is_int(sa_store_reader_check(st, &cleared), SA_OK, "reader_check");
    ok(cleared >= 1, "stale reader cleared (%d)", cleared);

    is_int(sa_store_reader_check(st, &cleared), SA_OK, "reader_check again");
    is_int(cleared, 0, "nothing left to clear");

    is_int(sa_conv_create(st, "after", 1, 0, 0), SA_OK,
           "store still writable");
    is_int(sa_store_sync(st), SA_OK, "sync");

    sa_store_close(st);
    remove_dir(dir);
}


static void
time_commits(const char *dir, int sync, int count, const char *label)
{
    int              pid, i, good;
    char             id[32], q[256], a[256];
    size_t           n;
    double           t0, t1, t2, t3;
    sa_msg_t         turn[2], *hist;
    sa_store_t      *st;
    sa_conv_meta_t   meta;

    st = open_store(dir, 1 * MIB, 1024 * MIB, sync);

    pid = (int) getpid();
    memset(q, 'q', sizeof(q) - 1);
    q[sizeof(q) - 1] = '\0';
    memset(a, 'a', sizeof(a) - 1);
    a[sizeof(a) - 1] = '\0';

    for (i = 0; i < 100; i++) {
        snprintf(id, sizeof(id), "conversation-%03d", i);
        sa_conv_create(st, id, 1, 0, 0);
    }

    good = 1;
    t0 = mono_us();

    for (i = 0; i < count; i++) {
        snprintf(id, sizeof(id), "conversation-%03d", i % 100);
        turn[0] = msg(SA_ROLE_USER, q, i);
        turn[1] = msg(SA_ROLE_ASSISTANT, a, i);
        good &= sa_conv_commit_turn(st, id, pid, turn, 2, i) == SA_OK;
    }

    t1 = mono_us();
    ok(good, "%s: %d commit_turn of 2 messages", label, count);
    printf("# %s: commit_turn (2 x 255 B): %.1f us/op\n", label,
           (t1 - t0) / count);

    good = 1;
    for (i = 0; i < count; i++) {
        snprintf(id, sizeof(id), "conversation-%03d", i % 100);
        good &= sa_conv_begin_turn(st, id, i, pid, i + 50, NULL) == SA_OK;
    }

    t2 = mono_us();
    ok(good, "%s: %d begin_turn", label, count);
    printf("# %s: begin_turn: %.1f us/op\n", label, (t2 - t1) / count);

    good = 1;
    for (i = 0; i < count; i++) {
        snprintf(id, sizeof(id), "conversation-%03d", i % 100);
        good &= sa_conv_get(st, id, &meta) == SA_OK;
    }

    t3 = mono_us();
    ok(good, "%s: %d get", label, count);
    printf("# %s: get: %.1f us/op\n", label, (t3 - t2) / count);

    good = 1;
    for (i = 0; i < count; i++) {
        snprintf(id, sizeof(id), "conversation-%03d", i % 100);
        good &= sa_conv_history(st, id, 20, &hist, &n) == SA_OK
                && n == (size_t) (count / 50 < 20 ? count / 50 : 20);
        sa_msgs_free(hist, n);
    }

    t0 = mono_us();
    ok(good, "%s: %d history of 20", label, count);
    printf("# %s: history (last 20): %.1f us/op\n", label,
           (t0 - t3) / count);

    sa_store_close(st);
}


static void
test_timing(void)
{
    char  dir[256];

    make_dir(dir, sizeof(dir), "timing");
    time_commits(dir, 0, 10000, "sync=0");
    remove_dir(dir);

    make_dir(dir, sizeof(dir), "timing-sync");
    time_commits(dir, 1, 200, "sync=1");
    remove_dir(dir);
}


int
main(void)
{
    if (mkdtemp(tmp_base) == NULL) {
        printf("Bail out! mkdtemp: %s\n", strerror(errno));
        return 1;
    }

    test_open_errors();
    test_conversations();
    test_history();
    test_round_trip();
    test_compat();
    test_map_full();
    test_cross_process();
    test_concurrent();
    test_stale_reader();
    test_timing();

    rmdir(tmp_base);

    return done_testing();
}
