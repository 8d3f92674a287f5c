/*
 * Copyright (C) ngx_support_agent authors
 *
 * Types shared by the pure-C parts of the support agent (no nginx types):
 * the store, the JSON helpers, kb-build and the unit tests.
 */

#ifndef _SA_TYPES_H_INCLUDED_
#define _SA_TYPES_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define SA_OK            0
#define SA_ERROR        -1
#define SA_NOT_FOUND    -2
#define SA_BUSY         -3
#define SA_FULL         -4
#define SA_INVALID      -5


typedef enum {
    SA_ROLE_SYSTEM = 0,
    SA_ROLE_USER,
    SA_ROLE_ASSISTANT,
    SA_ROLE_TOOL
} sa_role_e;


/* one message of a conversation; strings are malloc()ed, NUL-terminated */
typedef struct {
    sa_role_e      role;
    char          *content;
    size_t         content_len;
    int64_t        ts_ms;           /* when it was said, ms since epoch */
    char          *tool_call_id;    /* role tool: the call answered, or NULL */
    char          *tool_calls_json; /* role assistant: raw "tool_calls" JSON
                                       array as the LLM sent it, or NULL */
} sa_msg_t;


void sa_msg_free(sa_msg_t *m);
void sa_msgs_free(sa_msg_t *msgs, size_t n);
const char *sa_role_name(sa_role_e role);
int sa_role_parse(const char *name, size_t len, sa_role_e *role);


#endif /* _SA_TYPES_H_INCLUDED_ */
