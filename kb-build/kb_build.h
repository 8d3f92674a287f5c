
/*
 * Copyright (C) ngx_support_agent authors
 *
 * kb-build: what its commands share.
 */


#ifndef _KB_BUILD_H_INCLUDED_
#define _KB_BUILD_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


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

double kb_now(void);

/* parses a non-negative integer option value; -1 if it is not one */
long kb_number(const char *s);


#endif /* _KB_BUILD_H_INCLUDED_ */
