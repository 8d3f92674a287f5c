/*
 * Copyright (C) ngx_support_agent authors
 */


#include <stdlib.h>
#include <string.h>

#include "sa_types.h"


static const char  *sa_role_names[] = {
    "system", "user", "assistant", "tool"
};


void
sa_msg_free(sa_msg_t *m)
{
    free(m->content);
    free(m->tool_call_id);
    free(m->tool_calls_json);
    m->content = NULL;
    m->tool_call_id = NULL;
    m->tool_calls_json = NULL;
}


void
sa_msgs_free(sa_msg_t *msgs, size_t n)
{
    size_t  i;

    if (msgs == NULL) {
        return;
    }

    for (i = 0; i < n; i++) {
        sa_msg_free(&msgs[i]);
    }

    free(msgs);
}


const char *
sa_role_name(sa_role_e role)
{
    if ((unsigned) role > SA_ROLE_TOOL) {
        return "unknown";
    }

    return sa_role_names[role];
}


int
sa_role_parse(const char *name, size_t len, sa_role_e *role)
{
    unsigned  i;

    for (i = 0; i <= SA_ROLE_TOOL; i++) {
        if (strlen(sa_role_names[i]) == len
            && memcmp(sa_role_names[i], name, len) == 0)
        {
            *role = (sa_role_e) i;
            return SA_OK;
        }
    }

    return SA_INVALID;
}
