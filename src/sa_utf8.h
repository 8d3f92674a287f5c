
/*
 * Copyright (C) ngx_support_agent authors
 *
 * UTF-8 checks: validation of untrusted text and cutting text at a
 * character boundary.
 */


#ifndef _SA_UTF8_H_INCLUDED_
#define _SA_UTF8_H_INCLUDED_


#include <stddef.h>


/* 1 if [p, p + len) is valid UTF-8: no overlong forms, no surrogates,
   nothing above U+10FFFF; NUL bytes are allowed */
int sa_utf8_valid(const unsigned char *p, size_t len);

/* length of the longest prefix of p that does not end inside a multi-byte
   sequence (for cutting text safely) */
size_t sa_utf8_complete_prefix(const unsigned char *p, size_t len);

/* length in bytes of the valid UTF-8 sequence at p (1..4), or 0 if the
   bytes at p do not start one (invalid or cut short) */
size_t sa_utf8_seq_len(const unsigned char *p, size_t len);

/* replaces, in place, every byte that is not part of a valid UTF-8
   sequence with '?' (the length does not change); returns the number of
   bytes replaced */
size_t sa_utf8_sanitize(unsigned char *p, size_t len);


#endif /* _SA_UTF8_H_INCLUDED_ */
