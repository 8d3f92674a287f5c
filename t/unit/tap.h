/*
 * Copyright (C) ngx_support_agent authors
 *
 * A minimal TAP producer for the pure-C unit tests; prove reads its output.
 */

#ifndef _SA_TAP_H_INCLUDED_
#define _SA_TAP_H_INCLUDED_


#include <stdio.h>
#include <string.h>


static int  tap_run;
static int  tap_failed;


#define ok(cond, ...)                                                        \
    tap_ok((cond) ? 1 : 0, __FILE__, __LINE__, __VA_ARGS__)

#define is_int(got, want, name)                                              \
    tap_is_int((long long) (got), (long long) (want), __FILE__, __LINE__,    \
               name)

#define is_str(got, want, name)                                              \
    tap_is_str((got), (want), __FILE__, __LINE__, name)


static int
tap_ok(int pass, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#include <stdarg.h>

static int
tap_ok(int pass, const char *file, int line, const char *fmt, ...)
{
    va_list  ap;

    tap_run++;
    printf("%s %d - ", pass ? "ok" : "not ok", tap_run);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");

    if (!pass) {
        tap_failed++;
        printf("#   failed at %s line %d\n", file, line);
    }

    fflush(stdout);
    return pass;
}


static int
tap_is_int(long long got, long long want, const char *file, int line,
    const char *name)
{
    if (!tap_ok(got == want, file, line, "%s", name)) {
        printf("#          got: %lld\n#     expected: %lld\n", got, want);
        return 0;
    }

    return 1;
}


static int
tap_is_str(const char *got, const char *want, const char *file, int line,
    const char *name)
{
    int  pass;

    pass = (got == NULL && want == NULL)
           || (got != NULL && want != NULL && strcmp(got, want) == 0);

    if (!tap_ok(pass, file, line, "%s", name)) {
        printf("#          got: '%s'\n#     expected: '%s'\n",
               got ? got : "(null)", want ? want : "(null)");
        return 0;
    }

    return 1;
}


static int
done_testing(void)
{
    printf("1..%d\n", tap_run);
    return tap_failed ? 1 : 0;
}


#endif /* _SA_TAP_H_INCLUDED_ */
