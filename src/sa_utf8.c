
/*
 * Copyright (C) ngx_support_agent authors
 */


#include "sa_utf8.h"


size_t
sa_utf8_seq_len(const unsigned char *p, size_t len)
{
    unsigned char  c, lo, hi;
    size_t         n, i;

    if (len == 0) {
        return 0;
    }

    c = p[0];

    if (c < 0x80) {
        return 1;
    }

    /*
     * The second byte's range carries the RFC 3629 restrictions: E0 and F0
     * would be overlong below A0 / 90, ED would encode surrogates from A0,
     * F4 would exceed U+10FFFF from 90.  C0, C1 and F5..FF never start a
     * sequence.
     */

    lo = 0x80;
    hi = 0xbf;

    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;

    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;

        if (c == 0xe0) {
            lo = 0xa0;

        } else if (c == 0xed) {
            hi = 0x9f;
        }

    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;

        if (c == 0xf0) {
            lo = 0x90;

        } else if (c == 0xf4) {
            hi = 0x8f;
        }

    } else {
        return 0;
    }

    if (len < n) {
        return 0;
    }

    if (p[1] < lo || p[1] > hi) {
        return 0;
    }

    for (i = 2; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
    }

    return n;
}


int
sa_utf8_valid(const unsigned char *p, size_t len)
{
    size_t  n;

    while (len) {

        /* ASCII runs are the common case: no table work for them */
        if (*p < 0x80) {
            p++;
            len--;
            continue;
        }

        n = sa_utf8_seq_len(p, len);
        if (n == 0) {
            return 0;
        }

        p += n;
        len -= n;
    }

    return 1;
}


size_t
sa_utf8_complete_prefix(const unsigned char *p, size_t len)
{
    size_t  i, back, need;

    /* a sequence is at most 4 bytes: look back over at most 3
       continuation bytes for the lead byte of the last sequence */

    for (back = 1; back <= 4 && back <= len; back++) {
        i = len - back;

        if ((p[i] & 0xc0) == 0x80) {
            continue;
        }

        if (p[i] >= 0xf8) {
            need = 1;       /* never a lead byte */

        } else if (p[i] >= 0xf0) {
            need = 4;

        } else if (p[i] >= 0xe0) {
            need = 3;

        } else if (p[i] >= 0xc0) {
            need = 2;

        } else {
            need = 1;
        }

        return back < need ? i : len;
    }

    /* only continuation bytes at the end (or nothing): nothing to wait for */
    return len;
}


size_t
sa_utf8_sanitize(unsigned char *p, size_t len)
{
    size_t  n, replaced;

    replaced = 0;

    while (len) {
        n = sa_utf8_seq_len(p, len);

        if (n == 0) {
            *p = '?';
            n = 1;
            replaced++;
        }

        p += n;
        len -= n;
    }

    return replaced;
}
