
/*
 * Copyright (C) ngx_support_agent authors
 *
 * The sentiment scorer of src/sa_escalate.c on stdin: one message a line
 * in, its sa_sentiment() score a line out ("%.4f").  For
 * bench/sentiment.py, which builds it with
 *
 *   cc -O2 -Isrc -o build/sentiment_score bench/sentiment_score.c \
 *       src/sa_escalate.c src/sa_text.c src/sa_utf8.c src/sa_sparse.c \
 *       src/sa_kb.c src/sa_json.c -lstemmer -llmdb -lyajl -lm
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sa_escalate.h"


int
main(void)
{
    char     *line;
    size_t    cap;
    ssize_t   n;

    line = NULL;
    cap = 0;

    while ((n = getline(&line, &cap, stdin)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
            n--;
        }

        printf("%.4f\n", sa_sentiment(line, (size_t) n));
    }

    free(line);

    return ferror(stdin) ? 1 : 0;
}
