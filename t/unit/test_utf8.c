
/*
 * Copyright (C) ngx_support_agent authors
 *
 * sa_utf8: validation edge cases, checked also against a reference
 * decoder over every 1..3 byte string and many random 4 byte ones.
 */


#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "sa_utf8.h"


#define V(s)  sa_utf8_valid((const unsigned char *) (s), sizeof(s) - 1)
#define P(s)  sa_utf8_complete_prefix((const unsigned char *) (s),          \
                                      sizeof(s) - 1)


/* the obvious decoder, written from RFC 3629's definitions */

static int
reference_valid(const unsigned char *p, size_t len)
{
    size_t    i, n, k;
    unsigned  cp, min;

    for (i = 0; i < len; i += n) {
        if (p[i] < 0x80) {
            n = 1;
            continue;

        } else if ((p[i] & 0xe0) == 0xc0) {
            n = 2;
            cp = p[i] & 0x1f;
            min = 0x80;

        } else if ((p[i] & 0xf0) == 0xe0) {
            n = 3;
            cp = p[i] & 0x0f;
            min = 0x800;

        } else if ((p[i] & 0xf8) == 0xf0) {
            n = 4;
            cp = p[i] & 0x07;
            min = 0x10000;

        } else {
            return 0;
        }

        if (i + n > len) {
            return 0;
        }

        for (k = 1; k < n; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return 0;
            }

            cp = (cp << 6) | (p[i + k] & 0x3f);
        }

        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return 0;
        }
    }

    return 1;
}


int
main(void)
{
    unsigned char  buf[8];
    unsigned       a, b, c, mismatches, i;
    char           text[16];

    ok(V(""), "empty is valid");
    ok(V("plain ASCII"), "ASCII");
    ok(V("a\0b"), "NUL bytes are allowed");
    ok(V("\x7f"), "DEL");

    ok(V("\xc2\x80"), "U+0080, smallest 2-byte");
    ok(V("\xdf\xbf"), "U+07FF, largest 2-byte");
    ok(!V("\xc0\x80"), "overlong NUL (C0 80)");
    ok(!V("\xc1\xbf"), "overlong C1 BF");
    ok(!V("\xc0\xaf"), "overlong '/'");

    ok(V("\xe0\xa0\x80"), "U+0800, smallest 3-byte");
    ok(!V("\xe0\x9f\xbf"), "overlong 3-byte E0 9F BF");
    ok(!V("\xe0\x80\xaf"), "overlong 3-byte '/'");
    ok(V("\xed\x9f\xbf"), "U+D7FF, just below the surrogates");
    ok(!V("\xed\xa0\x80"), "U+D800 surrogate");
    ok(!V("\xed\xbf\xbf"), "U+DFFF surrogate");
    ok(!V("\xed\xa0\xbd\xed\xb8\x80"), "CESU-8 surrogate pair");
    ok(V("\xee\x80\x80"), "U+E000, just above the surrogates");
    ok(V("\xef\xbf\xbf"), "U+FFFF");

    ok(V("\xf0\x90\x80\x80"), "U+10000, smallest 4-byte");
    ok(!V("\xf0\x8f\xbf\xbf"), "overlong 4-byte");
    ok(V("\xf4\x8f\xbf\xbf"), "U+10FFFF, the maximum");
    ok(!V("\xf4\x90\x80\x80"), "U+110000, above the maximum");
    ok(!V("\xf5\x80\x80\x80"), "F5 lead byte");
    ok(!V("\xf8\x88\x80\x80\x80"), "5-byte form");
    ok(!V("\xfe"), "FE");
    ok(!V("\xff"), "FF");
    ok(V("\xf0\x9f\x98\x80 smile"), "emoji");

    ok(!V("\x80"), "lone continuation byte");
    ok(!V("a\xbf"), "continuation byte after ASCII");
    ok(!V("\xe2\x82"), "truncated 3-byte sequence");
    ok(!V("a\xf0\x9f\x98"), "truncated 4-byte sequence");
    ok(!V("\xc3"), "truncated 2-byte sequence at the end");
    ok(!V("\xc3(x"), "2-byte lead followed by ASCII");
    ok(!V("\xe2\x28\xa1"), "bad second byte of 3");
    ok(!V("\xf0\x9f\x28\x80"), "bad third byte of 4");

    is_int(P(""), 0, "prefix of empty");
    is_int(P("abc"), 3, "prefix of ASCII");
    is_int(P("ab\xe2\x82"), 2, "cut 3-byte sequence dropped");
    is_int(P("ab\xe2"), 2, "lone 3-byte lead dropped");
    is_int(P("ab\xe2\x82\xac"), 5, "complete euro sign kept");
    is_int(P("\xf0\x9f\x98"), 0, "cut emoji dropped");
    is_int(P("\xf0\x9f\x98\x80"), 4, "complete emoji kept");
    is_int(P("x\xc3"), 1, "cut 2-byte sequence dropped");
    is_int(P("x\xc3\xa9"), 3, "complete 2-byte sequence kept");
    is_int(P("a\x80"), 2, "stray continuation byte: nothing to wait for");
    is_int(P("a\xff"), 2, "FF is no lead byte");
    is_int(P("\x80\x80\x80\x80\x80"), 5, "only continuation bytes");

    memcpy(text, "a\xff" "b\xed\xa0\x80" "\xc3\xa9", 9);
    is_int(sa_utf8_sanitize((unsigned char *) text, 9), 4,
           "sanitize counts replaced bytes");
    ok(memcmp(text, "a?b???\xc3\xa9", 9) == 0,
       "sanitize replaces invalid bytes, keeps valid ones");
    ok(V("a?b???\xc3\xa9"), "sanitized text is valid");
    text[9] = '\0';
    is_str(text, "a?b???\xc3\xa9", "sanitized text as a string");

    is_int(sa_utf8_seq_len((const unsigned char *) "\xc3\xa9", 2), 2,
           "seq_len 2");
    is_int(sa_utf8_seq_len((const unsigned char *) "\xc3", 1), 0,
           "seq_len of a cut sequence is 0");

    /* every string of 1, 2 and 3 bytes */
    mismatches = 0;

    for (a = 0; a < 256; a++) {
        buf[0] = a;

        if (sa_utf8_valid(buf, 1) != reference_valid(buf, 1)) {
            mismatches++;
        }

        for (b = 0; b < 256; b++) {
            buf[1] = b;

            if (sa_utf8_valid(buf, 2) != reference_valid(buf, 2)) {
                mismatches++;
            }

            if (a < 0xc0) {
                /* ASCII or continuation first: the third byte changes
                   nothing the 2-byte case did not already check */
                continue;
            }

            for (c = 0; c < 256; c++) {
                buf[2] = c;

                if (sa_utf8_valid(buf, 3) != reference_valid(buf, 3)) {
                    mismatches++;
                }
            }
        }
    }

    is_int(mismatches, 0, "all 1..3 byte strings agree with the reference");

    mismatches = 0;
    srand(1);

    for (i = 0; i < 2000000; i++) {
        buf[0] = 0xf0 + rand() % 16;
        buf[1] = 0x80 + rand() % 64 - (rand() % 8 == 0 ? 0x40 : 0);
        buf[2] = rand() % 256;
        buf[3] = 0x80 + rand() % 64;

        if (sa_utf8_valid(buf, 4) != reference_valid(buf, 4)) {
            mismatches++;
        }
    }

    is_int(mismatches, 0, "random 4 byte strings agree with the reference");

    return done_testing();
}
