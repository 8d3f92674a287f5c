
/*
 * Copyright (C) ngx_support_agent authors
 *
 * kb-build: what its commands share.
 */


#ifndef _KB_BUILD_H_INCLUDED_
#define _KB_BUILD_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <yajl/yajl_tree.h>


/* exit codes */
#define KB_EXIT_OK      0
#define KB_EXIT_FAIL    1     /* bad input, I/O, a KB that cannot be read */
#define KB_EXIT_USAGE   2


int kb_index(int argc, char **argv);
int kb_search(int argc, char **argv);
int kb_stats(int argc, char **argv);
int kb_intents(int argc, char **argv);
int kb_route(int argc, char **argv);

void kb_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void kb_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* the whole file, NUL-terminated (not counted in *len); NULL with errno */
char *kb_read_file(const char *path, size_t *len);

/* JSON Lines: handler gets each non-blank line's value (freed after the
   call) and its line number; a line that is not UTF-8 or not JSON is
   reported (file:line) and ends the read with -1.  bytes (may be NULL)
   is increased by what was read.  0, -1, or the handler's non-zero
   return */
typedef int (*kb_jsonl_pt)(void *data, const char *file, long line,
    yajl_val root);

int kb_jsonl(const char *file, FILE *f, kb_jsonl_pt handler, void *data,
    size_t *bytes);

double kb_now(void);

/* parses a non-negative integer option value; -1 if it is not one */
long kb_number(const char *s);


#endif /* _KB_BUILD_H_INCLUDED_ */
