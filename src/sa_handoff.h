/*
 * Copyright (C) ngx_support_agent authors
 *
 * The handoff ticket: its JSON body (docs/handoff-ticket.schema.json), the
 * helpdesk's reply, and the LMDB record that keeps a ticket until the
 * helpdesk has it.  Pure C, no nginx types.
 *
 * Record, version 1, little-endian, 120-byte header then the URL then the
 * body:
 *
 *    0  u8   layout version (1)       4  u32  attempts (POSTs started)
 *    1  u8   state (queued 0,         8  u32  body length
 *            delivered 1)            12  i32  lease pid (0: none)
 *    2  u16  URL length              16  i64  created_ms
 *                                    24  i64  next_ms (due from)
 *                                    32  i64  lease_until_ms
 *                                    40  i64  delivered_ms
 *                                    48  i32  wait minutes (-1 unknown)
 *                                    52  u8   ticket id length
 *                                    53  64 bytes ticket id, then padding
 *
 * A delivered record drops its body (the helpdesk has it).  Readers accept
 * versions >= 1 and ignore header bytes they do not know; the header size
 * is fixed at 120 for version 1 layouts.
 */

#ifndef _SA_HANDOFF_H_INCLUDED_
#define _SA_HANDOFF_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "sa_escalate.h"
#include "sa_types.h"


#define SA_HANDOFF_HEADER     120
#define SA_HANDOFF_ID_MAX     64

#define SA_HANDOFF_QUEUED     0
#define SA_HANDOFF_DELIVERED  1

#define SA_HANDOFF_BACKOFF_MAX_MS  300000


typedef struct {
    uint32_t     state;
    uint32_t     attempts;
    int32_t      lease_pid;
    int32_t      wait;            /* minutes, -1 unknown */
    int64_t      created_ms;
    int64_t      next_ms;
    int64_t      lease_until_ms;
    int64_t      delivered_ms;
    char         ticket_id[SA_HANDOFF_ID_MAX + 1];
    const char  *url;             /* points into the record (decode) */
    size_t       url_len;
    const char  *body;
    size_t       body_len;
} sa_handoff_rec_t;


/* malloc()ed record in *out; SA_INVALID for a URL over 65535 bytes */
int sa_handoff_rec_encode(const sa_handoff_rec_t *rec, unsigned char **out,
    size_t *len);

/* rec's url and body point into buf; SA_INVALID for a damaged record */
int sa_handoff_rec_decode(const void *buf, size_t len, sa_handoff_rec_t *rec);

/* the wait before the next POST after attempts failed ones: 1 s doubling,
   at most SA_HANDOFF_BACKOFF_MAX_MS */
int64_t sa_handoff_backoff(uint32_t attempts);


/* the helpdesk's 2xx reply: "id" (string or integer) at the top level or
   in "ticket" (Zendesk); "estimated_wait_minutes" (number, optional).
   The id must be 1..64 of [A-Za-z0-9_.:#-] (it is shown to the customer).
   SA_OK, or SA_INVALID with err saying why. */
int sa_handoff_parse_reply(const char *body, size_t len, char *id,
    size_t idcap, int32_t *wait, char *err, size_t errlen);


typedef struct {
    const char               *conversation_id;
    const sa_msg_t           *msgs;       /* oldest first */
    size_t                    n;
    const sa_esc_state_t     *state;
    const sa_esc_decision_t  *decision;
    const char               *intent;     /* NULL without a router */
    unsigned                  mask;       /* SA_MASK_* */
    int                       open;       /* within business hours */
    int64_t                   now_ms;
    const char               *summary;    /* the LLM's, or NULL: built
                                             from the conversation */
    size_t                    summary_len;
} sa_handoff_ticket_t;

/* the ticket JSON, malloc()ed (free()); SA_INVALID when a message is not
   valid UTF-8 (cannot happen for stored messages), SA_ERROR */
int sa_handoff_ticket(const sa_handoff_ticket_t *t, char **json,
    size_t *len);

/* "2026-11-24T13:00:00.123Z" into buf (at least 32 bytes) */
void sa_handoff_time(int64_t ms, char *buf);


#endif /* _SA_HANDOFF_H_INCLUDED_ */
