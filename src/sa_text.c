
/*
 * Copyright (C) ngx_support_agent authors
 *
 * The knowledge base's analyzer; what it does is described in sa_text.h.
 */


#include <stdlib.h>
#include <string.h>

#include <libstemmer.h>

#include "sa_text.h"


/* word-break classes (UAX #29), as far as tokenizing needs them */
enum {
    SA_C_OTHER = 0,
    SA_C_ALETTER,
    SA_C_HEBREW,        /* ALetter, and takes a "'" after it (WB7a) */
    SA_C_NUMERIC,
    SA_C_EXTEND,        /* Extend, Format, ZWJ: belong to what precedes */
    SA_C_KATAKANA,
    SA_C_HIRAGANA,
    SA_C_IDEO,
    SA_C_SEA,           /* complex context: Thai, Lao, Khmer, Myanmar */
    SA_C_SEA_EXTEND,    /* their marks: Extend, but a token when alone */
    SA_C_ENL,           /* ExtendNumLet: "_" and other connectors */
    SA_C_MIDLETTER,     /* ":" and friends: only between letters */
    SA_C_MIDNUMLET,     /* "." and curly apostrophes */
    SA_C_SQUOTE,        /* "'" */
    SA_C_MIDNUM,        /* "," ";": only between digits */
    SA_C_DQUOTE,        /* '"': only between Hebrew letters (WB7b/c) */
    SA_C_EMOJI,         /* Lucene 8 makes tokens of emoji */

    /* not a class of a character: a token ended by Hebrew "'" so far */
    SA_C_HEBREW_QUOTE
};


typedef struct {
    uint32_t  lo;
    uint32_t  hi;
    uint8_t   cls;
} sa_text_range_t;

typedef struct {
    uint32_t  lo;
    uint32_t  hi;
    int32_t   delta;
    uint8_t   stride;
} sa_text_lower_t;


struct sa_analyzer_s {
    int                  english;
    struct sb_stemmer   *stemmer;
    char                 language[16];

    /* the current token, possessive stripped and lowercased */
    char                 term[SA_TEXT_MAX_TERM + 8];
};


static size_t sa_text_decode(const unsigned char *p, size_t len,
    uint32_t *cp);
static unsigned sa_text_class(uint32_t cp);
static uint32_t sa_text_to_lower(uint32_t cp);
static size_t sa_text_encode(uint32_t cp, char *p);
static int sa_text_joins(unsigned last, unsigned next);
static size_t sa_text_token_end(const unsigned char *p, size_t len,
    size_t start, unsigned cls, int *word);
static size_t sa_text_emoji_end(const unsigned char *p, size_t len,
    size_t start);
static unsigned sa_text_class_at(const unsigned char *p, size_t len,
    size_t i, size_t *n);
static size_t sa_text_skip_extend(const unsigned char *p, size_t len,
    size_t i);
static int sa_text_term(sa_analyzer_t *a, const unsigned char *p,
    size_t len, uint32_t position, sa_term_pt handler, void *data);
static int sa_text_is_stop(const char *term, size_t len);
static size_t sa_text_porter_departures(const char *word, size_t wlen,
    char *stem, size_t len);
static int sa_text_ends(const char *s, size_t len, const char *suffix);
static int sa_text_cons(const char *s, size_t i);
static int sa_text_measure(const char *s, size_t len);


/* Lucene's EnglishAnalyzer.ENGLISH_STOP_WORDS_SET, sorted */
static const char  *sa_text_stop_words[] = {
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if",
    "in", "into", "is", "it", "no", "not", "of", "on", "or", "such", "that",
    "the", "their", "then", "there", "these", "they", "this", "to", "was",
    "will", "with"
};


#define O    SA_C_OTHER
#define A    SA_C_ALETTER
#define W    SA_C_HEBREW
#define N    SA_C_NUMERIC
#define E    SA_C_EXTEND
#define K    SA_C_KATAKANA
#define H    SA_C_HIRAGANA
#define I    SA_C_IDEO
#define S    SA_C_SEA
#define X    SA_C_SEA_EXTEND
#define U    SA_C_ENL
#define ML   SA_C_MIDLETTER
#define MNL  SA_C_MIDNUMLET
#define SQ   SA_C_SQUOTE
#define MN   SA_C_MIDNUM
#define DQ   SA_C_DQUOTE
#define M    SA_C_EMOJI


/* ASCII: letters, digits, "_", and the punctuation UAX #29 cares about */
static const uint8_t  sa_text_ascii[128] = {
    O  , O  , O  , O  , O  , O  , O  , O  ,  /* 00 */
    O  , O  , O  , O  , O  , O  , O  , O  ,  /* 08 */
    O  , O  , O  , O  , O  , O  , O  , O  ,  /* 10 */
    O  , O  , O  , O  , O  , O  , O  , O  ,  /* 18 */
    O  , O  , DQ , O  , O  , O  , O  , SQ ,  /* 20 */
    O  , O  , O  , O  , MN , O  , MNL, O  ,  /* 28 */
    N  , N  , N  , N  , N  , N  , N  , N  ,  /* 30 */
    N  , N  , ML , MN , O  , O  , O  , O  ,  /* 38 */
    O  , A  , A  , A  , A  , A  , A  , A  ,  /* 40 */
    A  , A  , A  , A  , A  , A  , A  , A  ,  /* 48 */
    A  , A  , A  , A  , A  , A  , A  , A  ,  /* 50 */
    A  , A  , A  , O  , O  , O  , O  , U  ,  /* 58 */
    O  , A  , A  , A  , A  , A  , A  , A  ,  /* 60 */
    A  , A  , A  , A  , A  , A  , A  , A  ,  /* 68 */
    A  , A  , A  , A  , A  , A  , A  , A  ,  /* 70 */
    A  , A  , A  , O  , O  , O  , O  , O     /* 78 */
};


/* punctuation outside ASCII with a word-break class (Unicode 14.0) */
static const struct {
    uint32_t  cp;
    uint8_t   cls;
} sa_text_punct[] = {
    { 0x00b7, ML }, { 0x037e, MN },
    { 0x0387, ML }, { 0x0589, MN },
    { 0x05f4, ML }, { 0x060c, MN },
    { 0x060d, MN }, { 0x066c, MN },
    { 0x07f8, MN }, { 0x2018, MNL },
    { 0x2019, MNL }, { 0x2024, MNL },
    { 0x2027, ML }, { 0x2044, MN },
    { 0xfe10, MN }, { 0xfe13, ML },
    { 0xfe14, MN }, { 0xfe50, MN },
    { 0xfe52, MNL }, { 0xfe54, MN },
    { 0xfe55, ML }, { 0xff07, MNL },
    { 0xff0c, MN }, { 0xff0e, MNL },
    { 0xff1a, ML }, { 0xff1b, MN }
};


/* BEGIN GENERATED */
/* generated by kb-build/gen_unicode.py from Unicode 14.0.0: do
   not edit by hand */

static const sa_text_range_t  sa_text_classes[] = {
    { 0x000a9, 0x000a9, M }, { 0x000aa, 0x000aa, A }, { 0x000ad, 0x000ad, E },
    { 0x000ae, 0x000ae, M }, { 0x000b5, 0x000b5, A }, { 0x000ba, 0x000ba, A },
    { 0x000c0, 0x000d6, A }, { 0x000d8, 0x000f6, A }, { 0x000f8, 0x002c1, A },
    { 0x002c6, 0x002d1, A }, { 0x002e0, 0x002e4, A }, { 0x002ec, 0x002ec, A },
    { 0x002ee, 0x002ee, A }, { 0x00300, 0x0036f, E }, { 0x00370, 0x00374, A },
    { 0x00376, 0x00377, A }, { 0x0037a, 0x0037d, A }, { 0x0037f, 0x0037f, A },
    { 0x00386, 0x00386, A }, { 0x00388, 0x0038a, A }, { 0x0038c, 0x0038c, A },
    { 0x0038e, 0x003a1, A }, { 0x003a3, 0x003f5, A }, { 0x003f7, 0x00481, A },
    { 0x00483, 0x00489, E }, { 0x0048a, 0x0052f, A }, { 0x00531, 0x00556, A },
    { 0x00559, 0x00559, A }, { 0x00560, 0x00588, A }, { 0x00591, 0x005bd, E },
    { 0x005bf, 0x005bf, E }, { 0x005c1, 0x005c2, E }, { 0x005c4, 0x005c5, E },
    { 0x005c7, 0x005c7, E }, { 0x005d0, 0x005ea, W }, { 0x005ef, 0x005f2, W },
    { 0x00600, 0x00605, E }, { 0x00610, 0x0061a, E }, { 0x0061c, 0x0061c, E },
    { 0x00620, 0x0064a, A }, { 0x0064b, 0x0065f, E }, { 0x00660, 0x00669, N },
    { 0x0066e, 0x0066f, A }, { 0x00670, 0x00670, E }, { 0x00671, 0x006d3, A },
    { 0x006d5, 0x006d5, A }, { 0x006d6, 0x006dd, E }, { 0x006df, 0x006e4, E },
    { 0x006e5, 0x006e6, A }, { 0x006e7, 0x006e8, E }, { 0x006ea, 0x006ed, E },
    { 0x006ee, 0x006ef, A }, { 0x006f0, 0x006f9, N }, { 0x006fa, 0x006fc, A },
    { 0x006ff, 0x006ff, A }, { 0x0070f, 0x0070f, E }, { 0x00710, 0x00710, A },
    { 0x00711, 0x00711, E }, { 0x00712, 0x0072f, A }, { 0x00730, 0x0074a, E },
    { 0x0074d, 0x007a5, A }, { 0x007a6, 0x007b0, E }, { 0x007b1, 0x007b1, A },
    { 0x007c0, 0x007c9, N }, { 0x007ca, 0x007ea, A }, { 0x007eb, 0x007f3, E },
    { 0x007f4, 0x007f5, A }, { 0x007fa, 0x007fa, A }, { 0x007fd, 0x007fd, E },
    { 0x00800, 0x00815, A }, { 0x00816, 0x00819, E }, { 0x0081a, 0x0081a, A },
    { 0x0081b, 0x00823, E }, { 0x00824, 0x00824, A }, { 0x00825, 0x00827, E },
    { 0x00828, 0x00828, A }, { 0x00829, 0x0082d, E }, { 0x00840, 0x00858, A },
    { 0x00859, 0x0085b, E }, { 0x00860, 0x0086a, A }, { 0x00870, 0x00887, A },
    { 0x00889, 0x0088e, A }, { 0x00890, 0x00891, E }, { 0x00898, 0x0089f, E },
    { 0x008a0, 0x008c9, A }, { 0x008ca, 0x00903, E }, { 0x00904, 0x00939, A },
    { 0x0093a, 0x0093c, E }, { 0x0093d, 0x0093d, A }, { 0x0093e, 0x0094f, E },
    { 0x00950, 0x00950, A }, { 0x00951, 0x00957, E }, { 0x00958, 0x00961, A },
    { 0x00962, 0x00963, E }, { 0x00966, 0x0096f, N }, { 0x00971, 0x00980, A },
    { 0x00981, 0x00983, E }, { 0x00985, 0x0098c, A }, { 0x0098f, 0x00990, A },
    { 0x00993, 0x009a8, A }, { 0x009aa, 0x009b0, A }, { 0x009b2, 0x009b2, A },
    { 0x009b6, 0x009b9, A }, { 0x009bc, 0x009bc, E }, { 0x009bd, 0x009bd, A },
    { 0x009be, 0x009c4, E }, { 0x009c7, 0x009c8, E }, { 0x009cb, 0x009cd, E },
    { 0x009ce, 0x009ce, A }, { 0x009d7, 0x009d7, E }, { 0x009dc, 0x009dd, A },
    { 0x009df, 0x009e1, A }, { 0x009e2, 0x009e3, E }, { 0x009e6, 0x009ef, N },
    { 0x009f0, 0x009f1, A }, { 0x009fc, 0x009fc, A }, { 0x009fe, 0x009fe, E },
    { 0x00a01, 0x00a03, E }, { 0x00a05, 0x00a0a, A }, { 0x00a0f, 0x00a10, A },
    { 0x00a13, 0x00a28, A }, { 0x00a2a, 0x00a30, A }, { 0x00a32, 0x00a33, A },
    { 0x00a35, 0x00a36, A }, { 0x00a38, 0x00a39, A }, { 0x00a3c, 0x00a3c, E },
    { 0x00a3e, 0x00a42, E }, { 0x00a47, 0x00a48, E }, { 0x00a4b, 0x00a4d, E },
    { 0x00a51, 0x00a51, E }, { 0x00a59, 0x00a5c, A }, { 0x00a5e, 0x00a5e, A },
    { 0x00a66, 0x00a6f, N }, { 0x00a70, 0x00a71, E }, { 0x00a72, 0x00a74, A },
    { 0x00a75, 0x00a75, E }, { 0x00a81, 0x00a83, E }, { 0x00a85, 0x00a8d, A },
    { 0x00a8f, 0x00a91, A }, { 0x00a93, 0x00aa8, A }, { 0x00aaa, 0x00ab0, A },
    { 0x00ab2, 0x00ab3, A }, { 0x00ab5, 0x00ab9, A }, { 0x00abc, 0x00abc, E },
    { 0x00abd, 0x00abd, A }, { 0x00abe, 0x00ac5, E }, { 0x00ac7, 0x00ac9, E },
    { 0x00acb, 0x00acd, E }, { 0x00ad0, 0x00ad0, A }, { 0x00ae0, 0x00ae1, A },
    { 0x00ae2, 0x00ae3, E }, { 0x00ae6, 0x00aef, N }, { 0x00af9, 0x00af9, A },
    { 0x00afa, 0x00aff, E }, { 0x00b01, 0x00b03, E }, { 0x00b05, 0x00b0c, A },
    { 0x00b0f, 0x00b10, A }, { 0x00b13, 0x00b28, A }, { 0x00b2a, 0x00b30, A },
    { 0x00b32, 0x00b33, A }, { 0x00b35, 0x00b39, A }, { 0x00b3c, 0x00b3c, E },
    { 0x00b3d, 0x00b3d, A }, { 0x00b3e, 0x00b44, E }, { 0x00b47, 0x00b48, E },
    { 0x00b4b, 0x00b4d, E }, { 0x00b55, 0x00b57, E }, { 0x00b5c, 0x00b5d, A },
    { 0x00b5f, 0x00b61, A }, { 0x00b62, 0x00b63, E }, { 0x00b66, 0x00b6f, N },
    { 0x00b71, 0x00b71, A }, { 0x00b82, 0x00b82, E }, { 0x00b83, 0x00b83, A },
    { 0x00b85, 0x00b8a, A }, { 0x00b8e, 0x00b90, A }, { 0x00b92, 0x00b95, A },
    { 0x00b99, 0x00b9a, A }, { 0x00b9c, 0x00b9c, A }, { 0x00b9e, 0x00b9f, A },
    { 0x00ba3, 0x00ba4, A }, { 0x00ba8, 0x00baa, A }, { 0x00bae, 0x00bb9, A },
    { 0x00bbe, 0x00bc2, E }, { 0x00bc6, 0x00bc8, E }, { 0x00bca, 0x00bcd, E },
    { 0x00bd0, 0x00bd0, A }, { 0x00bd7, 0x00bd7, E }, { 0x00be6, 0x00bef, N },
    { 0x00c00, 0x00c04, E }, { 0x00c05, 0x00c0c, A }, { 0x00c0e, 0x00c10, A },
    { 0x00c12, 0x00c28, A }, { 0x00c2a, 0x00c39, A }, { 0x00c3c, 0x00c3c, E },
    { 0x00c3d, 0x00c3d, A }, { 0x00c3e, 0x00c44, E }, { 0x00c46, 0x00c48, E },
    { 0x00c4a, 0x00c4d, E }, { 0x00c55, 0x00c56, E }, { 0x00c58, 0x00c5a, A },
    { 0x00c5d, 0x00c5d, A }, { 0x00c60, 0x00c61, A }, { 0x00c62, 0x00c63, E },
    { 0x00c66, 0x00c6f, N }, { 0x00c80, 0x00c80, A }, { 0x00c81, 0x00c83, E },
    { 0x00c85, 0x00c8c, A }, { 0x00c8e, 0x00c90, A }, { 0x00c92, 0x00ca8, A },
    { 0x00caa, 0x00cb3, A }, { 0x00cb5, 0x00cb9, A }, { 0x00cbc, 0x00cbc, E },
    { 0x00cbd, 0x00cbd, A }, { 0x00cbe, 0x00cc4, E }, { 0x00cc6, 0x00cc8, E },
    { 0x00cca, 0x00ccd, E }, { 0x00cd5, 0x00cd6, E }, { 0x00cdd, 0x00cde, A },
    { 0x00ce0, 0x00ce1, A }, { 0x00ce2, 0x00ce3, E }, { 0x00ce6, 0x00cef, N },
    { 0x00cf1, 0x00cf2, A }, { 0x00d00, 0x00d03, E }, { 0x00d04, 0x00d0c, A },
    { 0x00d0e, 0x00d10, A }, { 0x00d12, 0x00d3a, A }, { 0x00d3b, 0x00d3c, E },
    { 0x00d3d, 0x00d3d, A }, { 0x00d3e, 0x00d44, E }, { 0x00d46, 0x00d48, E },
    { 0x00d4a, 0x00d4d, E }, { 0x00d4e, 0x00d4e, A }, { 0x00d54, 0x00d56, A },
    { 0x00d57, 0x00d57, E }, { 0x00d5f, 0x00d61, A }, { 0x00d62, 0x00d63, E },
    { 0x00d66, 0x00d6f, N }, { 0x00d7a, 0x00d7f, A }, { 0x00d81, 0x00d83, E },
    { 0x00d85, 0x00d96, A }, { 0x00d9a, 0x00db1, A }, { 0x00db3, 0x00dbb, A },
    { 0x00dbd, 0x00dbd, A }, { 0x00dc0, 0x00dc6, A }, { 0x00dca, 0x00dca, E },
    { 0x00dcf, 0x00dd4, E }, { 0x00dd6, 0x00dd6, E }, { 0x00dd8, 0x00ddf, E },
    { 0x00de6, 0x00def, N }, { 0x00df2, 0x00df3, E }, { 0x00e01, 0x00e30, S },
    { 0x00e31, 0x00e31, X }, { 0x00e32, 0x00e33, S }, { 0x00e34, 0x00e3a, X },
    { 0x00e40, 0x00e46, S }, { 0x00e47, 0x00e4e, X }, { 0x00e50, 0x00e59, N },
    { 0x00e81, 0x00e82, S }, { 0x00e84, 0x00e84, S }, { 0x00e86, 0x00e8a, S },
    { 0x00e8c, 0x00ea3, S }, { 0x00ea5, 0x00ea5, S }, { 0x00ea7, 0x00eb0, S },
    { 0x00eb1, 0x00eb1, X }, { 0x00eb2, 0x00eb3, S }, { 0x00eb4, 0x00ebc, X },
    { 0x00ebd, 0x00ebd, S }, { 0x00ec0, 0x00ec4, S }, { 0x00ec6, 0x00ec6, S },
    { 0x00ec8, 0x00ecd, X }, { 0x00ed0, 0x00ed9, N }, { 0x00edc, 0x00edf, S },
    { 0x00f00, 0x00f00, A }, { 0x00f18, 0x00f19, E }, { 0x00f20, 0x00f29, N },
    { 0x00f35, 0x00f35, E }, { 0x00f37, 0x00f37, E }, { 0x00f39, 0x00f39, E },
    { 0x00f3e, 0x00f3f, E }, { 0x00f40, 0x00f47, A }, { 0x00f49, 0x00f6c, A },
    { 0x00f71, 0x00f84, E }, { 0x00f86, 0x00f87, E }, { 0x00f88, 0x00f8c, A },
    { 0x00f8d, 0x00f97, E }, { 0x00f99, 0x00fbc, E }, { 0x00fc6, 0x00fc6, E },
    { 0x01000, 0x0102a, S }, { 0x0102b, 0x0103e, X }, { 0x0103f, 0x0103f, S },
    { 0x01040, 0x01049, N }, { 0x01050, 0x01055, S }, { 0x01056, 0x01059, X },
    { 0x0105a, 0x0105d, S }, { 0x0105e, 0x01060, X }, { 0x01061, 0x01061, S },
    { 0x01062, 0x01064, X }, { 0x01065, 0x01066, S }, { 0x01067, 0x0106d, X },
    { 0x0106e, 0x01070, S }, { 0x01071, 0x01074, X }, { 0x01075, 0x01081, S },
    { 0x01082, 0x0108d, X }, { 0x0108e, 0x0108e, S }, { 0x0108f, 0x0108f, X },
    { 0x01090, 0x01099, N }, { 0x0109a, 0x0109d, X }, { 0x010a0, 0x010c5, A },
    { 0x010c7, 0x010c7, A }, { 0x010cd, 0x010cd, A }, { 0x010d0, 0x010fa, A },
    { 0x010fc, 0x01248, A }, { 0x0124a, 0x0124d, A }, { 0x01250, 0x01256, A },
    { 0x01258, 0x01258, A }, { 0x0125a, 0x0125d, A }, { 0x01260, 0x01288, A },
    { 0x0128a, 0x0128d, A }, { 0x01290, 0x012b0, A }, { 0x012b2, 0x012b5, A },
    { 0x012b8, 0x012be, A }, { 0x012c0, 0x012c0, A }, { 0x012c2, 0x012c5, A },
    { 0x012c8, 0x012d6, A }, { 0x012d8, 0x01310, A }, { 0x01312, 0x01315, A },
    { 0x01318, 0x0135a, A }, { 0x0135d, 0x0135f, E }, { 0x01380, 0x0138f, A },
    { 0x013a0, 0x013f5, A }, { 0x013f8, 0x013fd, A }, { 0x01401, 0x0166c, A },
    { 0x0166f, 0x0167f, A }, { 0x01681, 0x0169a, A }, { 0x016a0, 0x016ea, A },
    { 0x016ee, 0x016f8, A }, { 0x01700, 0x01711, A }, { 0x01712, 0x01715, E },
    { 0x0171f, 0x01731, A }, { 0x01732, 0x01734, E }, { 0x01740, 0x01751, A },
    { 0x01752, 0x01753, E }, { 0x01760, 0x0176c, A }, { 0x0176e, 0x01770, A },
    { 0x01772, 0x01773, E }, { 0x01780, 0x017b3, S }, { 0x017b4, 0x017d3, X },
    { 0x017d7, 0x017d7, S }, { 0x017dc, 0x017dc, S }, { 0x017dd, 0x017dd, X },
    { 0x017e0, 0x017e9, N }, { 0x0180b, 0x0180f, E }, { 0x01810, 0x01819, N },
    { 0x01820, 0x01878, A }, { 0x01880, 0x01884, A }, { 0x01885, 0x01886, E },
    { 0x01887, 0x018a8, A }, { 0x018a9, 0x018a9, E }, { 0x018aa, 0x018aa, A },
    { 0x018b0, 0x018f5, A }, { 0x01900, 0x0191e, A }, { 0x01920, 0x0192b, E },
    { 0x01930, 0x0193b, E }, { 0x01946, 0x0194f, N }, { 0x01950, 0x0196d, S },
    { 0x01970, 0x01974, S }, { 0x01980, 0x019ab, S }, { 0x019b0, 0x019c9, S },
    { 0x019d0, 0x019d9, N }, { 0x01a00, 0x01a16, A }, { 0x01a17, 0x01a1b, E },
    { 0x01a20, 0x01a54, S }, { 0x01a55, 0x01a5e, X }, { 0x01a60, 0x01a7c, X },
    { 0x01a7f, 0x01a7f, X }, { 0x01a80, 0x01a89, N }, { 0x01a90, 0x01a99, N },
    { 0x01aa7, 0x01aa7, S }, { 0x01ab0, 0x01ace, E }, { 0x01b00, 0x01b04, E },
    { 0x01b05, 0x01b33, A }, { 0x01b34, 0x01b44, E }, { 0x01b45, 0x01b4c, A },
    { 0x01b50, 0x01b59, N }, { 0x01b6b, 0x01b73, E }, { 0x01b80, 0x01b82, E },
    { 0x01b83, 0x01ba0, A }, { 0x01ba1, 0x01bad, E }, { 0x01bae, 0x01baf, A },
    { 0x01bb0, 0x01bb9, N }, { 0x01bba, 0x01be5, A }, { 0x01be6, 0x01bf3, E },
    { 0x01c00, 0x01c23, A }, { 0x01c24, 0x01c37, E }, { 0x01c40, 0x01c49, N },
    { 0x01c4d, 0x01c4f, A }, { 0x01c50, 0x01c59, N }, { 0x01c5a, 0x01c7d, A },
    { 0x01c80, 0x01c88, A }, { 0x01c90, 0x01cba, A }, { 0x01cbd, 0x01cbf, A },
    { 0x01cd0, 0x01cd2, E }, { 0x01cd4, 0x01ce8, E }, { 0x01ce9, 0x01cec, A },
    { 0x01ced, 0x01ced, E }, { 0x01cee, 0x01cf3, A }, { 0x01cf4, 0x01cf4, E },
    { 0x01cf5, 0x01cf6, A }, { 0x01cf7, 0x01cf9, E }, { 0x01cfa, 0x01cfa, A },
    { 0x01d00, 0x01dbf, A }, { 0x01dc0, 0x01dff, E }, { 0x01e00, 0x01f15, A },
    { 0x01f18, 0x01f1d, A }, { 0x01f20, 0x01f45, A }, { 0x01f48, 0x01f4d, A },
    { 0x01f50, 0x01f57, A }, { 0x01f59, 0x01f59, A }, { 0x01f5b, 0x01f5b, A },
    { 0x01f5d, 0x01f5d, A }, { 0x01f5f, 0x01f7d, A }, { 0x01f80, 0x01fb4, A },
    { 0x01fb6, 0x01fbc, A }, { 0x01fbe, 0x01fbe, A }, { 0x01fc2, 0x01fc4, A },
    { 0x01fc6, 0x01fcc, A }, { 0x01fd0, 0x01fd3, A }, { 0x01fd6, 0x01fdb, A },
    { 0x01fe0, 0x01fec, A }, { 0x01ff2, 0x01ff4, A }, { 0x01ff6, 0x01ffc, A },
    { 0x0200c, 0x0200f, E }, { 0x0202a, 0x0202e, E }, { 0x0203c, 0x0203c, M },
    { 0x0203f, 0x02040, U }, { 0x02049, 0x02049, M }, { 0x02054, 0x02054, U },
    { 0x02060, 0x02064, E }, { 0x02066, 0x0206f, E }, { 0x02071, 0x02071, A },
    { 0x0207f, 0x0207f, A }, { 0x02090, 0x0209c, A }, { 0x020d0, 0x020f0, E },
    { 0x02102, 0x02102, A }, { 0x02107, 0x02107, A }, { 0x0210a, 0x02113, A },
    { 0x02115, 0x02115, A }, { 0x02119, 0x0211d, A }, { 0x02122, 0x02122, M },
    { 0x02124, 0x02124, A }, { 0x02126, 0x02126, A }, { 0x02128, 0x02128, A },
    { 0x0212a, 0x0212d, A }, { 0x0212f, 0x02139, A }, { 0x0213c, 0x0213f, A },
    { 0x02145, 0x02149, A }, { 0x0214e, 0x0214e, A }, { 0x02160, 0x02188, A },
    { 0x02194, 0x02199, M }, { 0x021a9, 0x021aa, M }, { 0x0231a, 0x0231b, M },
    { 0x02328, 0x02328, M }, { 0x023cf, 0x023cf, M }, { 0x023e9, 0x023f3, M },
    { 0x023f8, 0x023fa, M }, { 0x024c2, 0x024c2, M }, { 0x025aa, 0x025ab, M },
    { 0x025b6, 0x025b6, M }, { 0x025c0, 0x025c0, M }, { 0x025fb, 0x025fe, M },
    { 0x02600, 0x02604, M }, { 0x0260e, 0x0260e, M }, { 0x02611, 0x02611, M },
    { 0x02614, 0x02615, M }, { 0x02618, 0x02618, M }, { 0x0261d, 0x0261d, M },
    { 0x02620, 0x02620, M }, { 0x02622, 0x02623, M }, { 0x02626, 0x02626, M },
    { 0x0262a, 0x0262a, M }, { 0x0262e, 0x0262f, M }, { 0x02638, 0x0263a, M },
    { 0x02640, 0x02640, M }, { 0x02642, 0x02642, M }, { 0x02648, 0x02653, M },
    { 0x0265f, 0x02660, M }, { 0x02663, 0x02663, M }, { 0x02665, 0x02666, M },
    { 0x02668, 0x02668, M }, { 0x0267b, 0x0267b, M }, { 0x0267e, 0x0267f, M },
    { 0x02692, 0x02697, M }, { 0x02699, 0x02699, M }, { 0x0269b, 0x0269c, M },
    { 0x026a0, 0x026a1, M }, { 0x026a7, 0x026a7, M }, { 0x026aa, 0x026ab, M },
    { 0x026b0, 0x026b1, M }, { 0x026bd, 0x026be, M }, { 0x026c4, 0x026c5, M },
    { 0x026c8, 0x026c8, M }, { 0x026ce, 0x026cf, M }, { 0x026d1, 0x026d1, M },
    { 0x026d3, 0x026d4, M }, { 0x026e9, 0x026ea, M }, { 0x026f0, 0x026f5, M },
    { 0x026f7, 0x026fa, M }, { 0x026fd, 0x026fd, M }, { 0x02702, 0x02702, M },
    { 0x02705, 0x02705, M }, { 0x02708, 0x0270d, M }, { 0x0270f, 0x0270f, M },
    { 0x02712, 0x02712, M }, { 0x02714, 0x02714, M }, { 0x02716, 0x02716, M },
    { 0x0271d, 0x0271d, M }, { 0x02721, 0x02721, M }, { 0x02728, 0x02728, M },
    { 0x02733, 0x02734, M }, { 0x02744, 0x02744, M }, { 0x02747, 0x02747, M },
    { 0x0274c, 0x0274c, M }, { 0x0274e, 0x0274e, M }, { 0x02753, 0x02755, M },
    { 0x02757, 0x02757, M }, { 0x02763, 0x02764, M }, { 0x02795, 0x02797, M },
    { 0x027a1, 0x027a1, M }, { 0x027b0, 0x027b0, M }, { 0x027bf, 0x027bf, M },
    { 0x02934, 0x02935, M }, { 0x02b05, 0x02b07, M }, { 0x02b1b, 0x02b1c, M },
    { 0x02b50, 0x02b50, M }, { 0x02b55, 0x02b55, M }, { 0x02c00, 0x02ce4, A },
    { 0x02ceb, 0x02cee, A }, { 0x02cef, 0x02cf1, E }, { 0x02cf2, 0x02cf3, A },
    { 0x02d00, 0x02d25, A }, { 0x02d27, 0x02d27, A }, { 0x02d2d, 0x02d2d, A },
    { 0x02d30, 0x02d67, A }, { 0x02d6f, 0x02d6f, A }, { 0x02d7f, 0x02d7f, E },
    { 0x02d80, 0x02d96, A }, { 0x02da0, 0x02da6, A }, { 0x02da8, 0x02dae, A },
    { 0x02db0, 0x02db6, A }, { 0x02db8, 0x02dbe, A }, { 0x02dc0, 0x02dc6, A },
    { 0x02dc8, 0x02dce, A }, { 0x02dd0, 0x02dd6, A }, { 0x02dd8, 0x02dde, A },
    { 0x02de0, 0x02dff, E }, { 0x02e2f, 0x02e2f, A }, { 0x03005, 0x03007, A },
    { 0x03021, 0x03029, A }, { 0x0302a, 0x0302f, E }, { 0x03030, 0x03030, M },
    { 0x03031, 0x03035, A }, { 0x03038, 0x0303c, A }, { 0x0303d, 0x0303d, M },
    { 0x03041, 0x03096, H }, { 0x03099, 0x0309a, E }, { 0x0309d, 0x0309f, H },
    { 0x030a1, 0x030fa, K }, { 0x030fc, 0x030ff, K }, { 0x03105, 0x0312f, A },
    { 0x03131, 0x0318e, A }, { 0x031a0, 0x031bf, A }, { 0x031f0, 0x031ff, K },
    { 0x03297, 0x03297, M }, { 0x03299, 0x03299, M }, { 0x03400, 0x04dbf, I },
    { 0x04e00, 0x09fff, I }, { 0x0a000, 0x0a48c, A }, { 0x0a4d0, 0x0a4fd, A },
    { 0x0a500, 0x0a60c, A }, { 0x0a610, 0x0a61f, A }, { 0x0a620, 0x0a629, N },
    { 0x0a62a, 0x0a62b, A }, { 0x0a640, 0x0a66e, A }, { 0x0a66f, 0x0a672, E },
    { 0x0a674, 0x0a67d, E }, { 0x0a67f, 0x0a69d, A }, { 0x0a69e, 0x0a69f, E },
    { 0x0a6a0, 0x0a6ef, A }, { 0x0a6f0, 0x0a6f1, E }, { 0x0a717, 0x0a71f, A },
    { 0x0a722, 0x0a788, A }, { 0x0a78b, 0x0a7ca, A }, { 0x0a7d0, 0x0a7d1, A },
    { 0x0a7d3, 0x0a7d3, A }, { 0x0a7d5, 0x0a7d9, A }, { 0x0a7f2, 0x0a801, A },
    { 0x0a802, 0x0a802, E }, { 0x0a803, 0x0a805, A }, { 0x0a806, 0x0a806, E },
    { 0x0a807, 0x0a80a, A }, { 0x0a80b, 0x0a80b, E }, { 0x0a80c, 0x0a822, A },
    { 0x0a823, 0x0a827, E }, { 0x0a82c, 0x0a82c, E }, { 0x0a840, 0x0a873, A },
    { 0x0a880, 0x0a881, E }, { 0x0a882, 0x0a8b3, A }, { 0x0a8b4, 0x0a8c5, E },
    { 0x0a8d0, 0x0a8d9, N }, { 0x0a8e0, 0x0a8f1, E }, { 0x0a8f2, 0x0a8f7, A },
    { 0x0a8fb, 0x0a8fb, A }, { 0x0a8fd, 0x0a8fe, A }, { 0x0a8ff, 0x0a8ff, E },
    { 0x0a900, 0x0a909, N }, { 0x0a90a, 0x0a925, A }, { 0x0a926, 0x0a92d, E },
    { 0x0a930, 0x0a946, A }, { 0x0a947, 0x0a953, E }, { 0x0a960, 0x0a97c, A },
    { 0x0a980, 0x0a983, E }, { 0x0a984, 0x0a9b2, A }, { 0x0a9b3, 0x0a9c0, E },
    { 0x0a9cf, 0x0a9cf, A }, { 0x0a9d0, 0x0a9d9, N }, { 0x0a9e0, 0x0a9e4, S },
    { 0x0a9e5, 0x0a9e5, X }, { 0x0a9e6, 0x0a9ef, S }, { 0x0a9f0, 0x0a9f9, N },
    { 0x0a9fa, 0x0a9fe, S }, { 0x0aa00, 0x0aa28, A }, { 0x0aa29, 0x0aa36, E },
    { 0x0aa40, 0x0aa42, A }, { 0x0aa43, 0x0aa43, E }, { 0x0aa44, 0x0aa4b, A },
    { 0x0aa4c, 0x0aa4d, E }, { 0x0aa50, 0x0aa59, N }, { 0x0aa60, 0x0aa76, S },
    { 0x0aa7a, 0x0aa7a, S }, { 0x0aa7b, 0x0aa7d, X }, { 0x0aa7e, 0x0aaaf, S },
    { 0x0aab0, 0x0aab0, X }, { 0x0aab1, 0x0aab1, S }, { 0x0aab2, 0x0aab4, X },
    { 0x0aab5, 0x0aab6, S }, { 0x0aab7, 0x0aab8, X }, { 0x0aab9, 0x0aabd, S },
    { 0x0aabe, 0x0aabf, X }, { 0x0aac0, 0x0aac0, S }, { 0x0aac1, 0x0aac1, X },
    { 0x0aac2, 0x0aac2, S }, { 0x0aadb, 0x0aadd, S }, { 0x0aae0, 0x0aaea, A },
    { 0x0aaeb, 0x0aaef, E }, { 0x0aaf2, 0x0aaf4, A }, { 0x0aaf5, 0x0aaf6, E },
    { 0x0ab01, 0x0ab06, A }, { 0x0ab09, 0x0ab0e, A }, { 0x0ab11, 0x0ab16, A },
    { 0x0ab20, 0x0ab26, A }, { 0x0ab28, 0x0ab2e, A }, { 0x0ab30, 0x0ab5a, A },
    { 0x0ab5c, 0x0ab69, A }, { 0x0ab70, 0x0abe2, A }, { 0x0abe3, 0x0abea, E },
    { 0x0abec, 0x0abed, E }, { 0x0abf0, 0x0abf9, N }, { 0x0ac00, 0x0d7a3, A },
    { 0x0d7b0, 0x0d7c6, A }, { 0x0d7cb, 0x0d7fb, A }, { 0x0f900, 0x0fa6d, I },
    { 0x0fa70, 0x0fad9, I }, { 0x0fb00, 0x0fb06, A }, { 0x0fb13, 0x0fb17, A },
    { 0x0fb1d, 0x0fb1d, W }, { 0x0fb1e, 0x0fb1e, E }, { 0x0fb1f, 0x0fb28, W },
    { 0x0fb2a, 0x0fb36, W }, { 0x0fb38, 0x0fb3c, W }, { 0x0fb3e, 0x0fb3e, W },
    { 0x0fb40, 0x0fb41, W }, { 0x0fb43, 0x0fb44, W }, { 0x0fb46, 0x0fb4f, W },
    { 0x0fb50, 0x0fbb1, A }, { 0x0fbd3, 0x0fd3d, A }, { 0x0fd50, 0x0fd8f, A },
    { 0x0fd92, 0x0fdc7, A }, { 0x0fdf0, 0x0fdfb, A }, { 0x0fe00, 0x0fe0f, E },
    { 0x0fe20, 0x0fe2f, E }, { 0x0fe33, 0x0fe34, U }, { 0x0fe4d, 0x0fe4f, U },
    { 0x0fe70, 0x0fe74, A }, { 0x0fe76, 0x0fefc, A }, { 0x0feff, 0x0feff, E },
    { 0x0ff10, 0x0ff19, N }, { 0x0ff21, 0x0ff3a, A }, { 0x0ff3f, 0x0ff3f, U },
    { 0x0ff41, 0x0ff5a, A }, { 0x0ff66, 0x0ff9f, K }, { 0x0ffa0, 0x0ffbe, A },
    { 0x0ffc2, 0x0ffc7, A }, { 0x0ffca, 0x0ffcf, A }, { 0x0ffd2, 0x0ffd7, A },
    { 0x0ffda, 0x0ffdc, A }, { 0x0fff9, 0x0fffb, E }, { 0x10000, 0x1000b, A },
    { 0x1000d, 0x10026, A }, { 0x10028, 0x1003a, A }, { 0x1003c, 0x1003d, A },
    { 0x1003f, 0x1004d, A }, { 0x10050, 0x1005d, A }, { 0x10080, 0x100fa, A },
    { 0x10140, 0x10174, A }, { 0x101fd, 0x101fd, E }, { 0x10280, 0x1029c, A },
    { 0x102a0, 0x102d0, A }, { 0x102e0, 0x102e0, E }, { 0x10300, 0x1031f, A },
    { 0x1032d, 0x1034a, A }, { 0x10350, 0x10375, A }, { 0x10376, 0x1037a, E },
    { 0x10380, 0x1039d, A }, { 0x103a0, 0x103c3, A }, { 0x103c8, 0x103cf, A },
    { 0x103d1, 0x103d5, A }, { 0x10400, 0x1049d, A }, { 0x104a0, 0x104a9, N },
    { 0x104b0, 0x104d3, A }, { 0x104d8, 0x104fb, A }, { 0x10500, 0x10527, A },
    { 0x10530, 0x10563, A }, { 0x10570, 0x1057a, A }, { 0x1057c, 0x1058a, A },
    { 0x1058c, 0x10592, A }, { 0x10594, 0x10595, A }, { 0x10597, 0x105a1, A },
    { 0x105a3, 0x105b1, A }, { 0x105b3, 0x105b9, A }, { 0x105bb, 0x105bc, A },
    { 0x10600, 0x10736, A }, { 0x10740, 0x10755, A }, { 0x10760, 0x10767, A },
    { 0x10780, 0x10785, A }, { 0x10787, 0x107b0, A }, { 0x107b2, 0x107ba, A },
    { 0x10800, 0x10805, A }, { 0x10808, 0x10808, A }, { 0x1080a, 0x10835, A },
    { 0x10837, 0x10838, A }, { 0x1083c, 0x1083c, A }, { 0x1083f, 0x10855, A },
    { 0x10860, 0x10876, A }, { 0x10880, 0x1089e, A }, { 0x108e0, 0x108f2, A },
    { 0x108f4, 0x108f5, A }, { 0x10900, 0x10915, A }, { 0x10920, 0x10939, A },
    { 0x10980, 0x109b7, A }, { 0x109be, 0x109bf, A }, { 0x10a00, 0x10a00, A },
    { 0x10a01, 0x10a03, E }, { 0x10a05, 0x10a06, E }, { 0x10a0c, 0x10a0f, E },
    { 0x10a10, 0x10a13, A }, { 0x10a15, 0x10a17, A }, { 0x10a19, 0x10a35, A },
    { 0x10a38, 0x10a3a, E }, { 0x10a3f, 0x10a3f, E }, { 0x10a60, 0x10a7c, A },
    { 0x10a80, 0x10a9c, A }, { 0x10ac0, 0x10ac7, A }, { 0x10ac9, 0x10ae4, A },
    { 0x10ae5, 0x10ae6, E }, { 0x10b00, 0x10b35, A }, { 0x10b40, 0x10b55, A },
    { 0x10b60, 0x10b72, A }, { 0x10b80, 0x10b91, A }, { 0x10c00, 0x10c48, A },
    { 0x10c80, 0x10cb2, A }, { 0x10cc0, 0x10cf2, A }, { 0x10d00, 0x10d23, A },
    { 0x10d24, 0x10d27, E }, { 0x10d30, 0x10d39, N }, { 0x10e80, 0x10ea9, A },
    { 0x10eab, 0x10eac, E }, { 0x10eb0, 0x10eb1, A }, { 0x10f00, 0x10f1c, A },
    { 0x10f27, 0x10f27, A }, { 0x10f30, 0x10f45, A }, { 0x10f46, 0x10f50, E },
    { 0x10f70, 0x10f81, A }, { 0x10f82, 0x10f85, E }, { 0x10fb0, 0x10fc4, A },
    { 0x10fe0, 0x10ff6, A }, { 0x11000, 0x11002, E }, { 0x11003, 0x11037, A },
    { 0x11038, 0x11046, E }, { 0x11066, 0x1106f, N }, { 0x11070, 0x11070, E },
    { 0x11071, 0x11072, A }, { 0x11073, 0x11074, E }, { 0x11075, 0x11075, A },
    { 0x1107f, 0x11082, E }, { 0x11083, 0x110af, A }, { 0x110b0, 0x110ba, E },
    { 0x110bd, 0x110bd, E }, { 0x110c2, 0x110c2, E }, { 0x110cd, 0x110cd, E },
    { 0x110d0, 0x110e8, A }, { 0x110f0, 0x110f9, N }, { 0x11100, 0x11102, E },
    { 0x11103, 0x11126, A }, { 0x11127, 0x11134, E }, { 0x11136, 0x1113f, N },
    { 0x11144, 0x11144, A }, { 0x11145, 0x11146, E }, { 0x11147, 0x11147, A },
    { 0x11150, 0x11172, A }, { 0x11173, 0x11173, E }, { 0x11176, 0x11176, A },
    { 0x11180, 0x11182, E }, { 0x11183, 0x111b2, A }, { 0x111b3, 0x111c0, E },
    { 0x111c1, 0x111c4, A }, { 0x111c9, 0x111cc, E }, { 0x111ce, 0x111cf, E },
    { 0x111d0, 0x111d9, N }, { 0x111da, 0x111da, A }, { 0x111dc, 0x111dc, A },
    { 0x11200, 0x11211, A }, { 0x11213, 0x1122b, A }, { 0x1122c, 0x11237, E },
    { 0x1123e, 0x1123e, E }, { 0x11280, 0x11286, A }, { 0x11288, 0x11288, A },
    { 0x1128a, 0x1128d, A }, { 0x1128f, 0x1129d, A }, { 0x1129f, 0x112a8, A },
    { 0x112b0, 0x112de, A }, { 0x112df, 0x112ea, E }, { 0x112f0, 0x112f9, N },
    { 0x11300, 0x11303, E }, { 0x11305, 0x1130c, A }, { 0x1130f, 0x11310, A },
    { 0x11313, 0x11328, A }, { 0x1132a, 0x11330, A }, { 0x11332, 0x11333, A },
    { 0x11335, 0x11339, A }, { 0x1133b, 0x1133c, E }, { 0x1133d, 0x1133d, A },
    { 0x1133e, 0x11344, E }, { 0x11347, 0x11348, E }, { 0x1134b, 0x1134d, E },
    { 0x11350, 0x11350, A }, { 0x11357, 0x11357, E }, { 0x1135d, 0x11361, A },
    { 0x11362, 0x11363, E }, { 0x11366, 0x1136c, E }, { 0x11370, 0x11374, E },
    { 0x11400, 0x11434, A }, { 0x11435, 0x11446, E }, { 0x11447, 0x1144a, A },
    { 0x11450, 0x11459, N }, { 0x1145e, 0x1145e, E }, { 0x1145f, 0x11461, A },
    { 0x11480, 0x114af, A }, { 0x114b0, 0x114c3, E }, { 0x114c4, 0x114c5, A },
    { 0x114c7, 0x114c7, A }, { 0x114d0, 0x114d9, N }, { 0x11580, 0x115ae, A },
    { 0x115af, 0x115b5, E }, { 0x115b8, 0x115c0, E }, { 0x115d8, 0x115db, A },
    { 0x115dc, 0x115dd, E }, { 0x11600, 0x1162f, A }, { 0x11630, 0x11640, E },
    { 0x11644, 0x11644, A }, { 0x11650, 0x11659, N }, { 0x11680, 0x116aa, A },
    { 0x116ab, 0x116b7, E }, { 0x116b8, 0x116b8, A }, { 0x116c0, 0x116c9, N },
    { 0x11700, 0x1171a, A }, { 0x1171d, 0x1172b, E }, { 0x11730, 0x11739, N },
    { 0x11740, 0x11746, A }, { 0x11800, 0x1182b, A }, { 0x1182c, 0x1183a, E },
    { 0x118a0, 0x118df, A }, { 0x118e0, 0x118e9, N }, { 0x118ff, 0x11906, A },
    { 0x11909, 0x11909, A }, { 0x1190c, 0x11913, A }, { 0x11915, 0x11916, A },
    { 0x11918, 0x1192f, A }, { 0x11930, 0x11935, E }, { 0x11937, 0x11938, E },
    { 0x1193b, 0x1193e, E }, { 0x1193f, 0x1193f, A }, { 0x11940, 0x11940, E },
    { 0x11941, 0x11941, A }, { 0x11942, 0x11943, E }, { 0x11950, 0x11959, N },
    { 0x119a0, 0x119a7, A }, { 0x119aa, 0x119d0, A }, { 0x119d1, 0x119d7, E },
    { 0x119da, 0x119e0, E }, { 0x119e1, 0x119e1, A }, { 0x119e3, 0x119e3, A },
    { 0x119e4, 0x119e4, E }, { 0x11a00, 0x11a00, A }, { 0x11a01, 0x11a0a, E },
    { 0x11a0b, 0x11a32, A }, { 0x11a33, 0x11a39, E }, { 0x11a3a, 0x11a3a, A },
    { 0x11a3b, 0x11a3e, E }, { 0x11a47, 0x11a47, E }, { 0x11a50, 0x11a50, A },
    { 0x11a51, 0x11a5b, E }, { 0x11a5c, 0x11a89, A }, { 0x11a8a, 0x11a99, E },
    { 0x11a9d, 0x11a9d, A }, { 0x11ab0, 0x11af8, A }, { 0x11c00, 0x11c08, A },
    { 0x11c0a, 0x11c2e, A }, { 0x11c2f, 0x11c36, E }, { 0x11c38, 0x11c3f, E },
    { 0x11c40, 0x11c40, A }, { 0x11c50, 0x11c59, N }, { 0x11c72, 0x11c8f, A },
    { 0x11c92, 0x11ca7, E }, { 0x11ca9, 0x11cb6, E }, { 0x11d00, 0x11d06, A },
    { 0x11d08, 0x11d09, A }, { 0x11d0b, 0x11d30, A }, { 0x11d31, 0x11d36, E },
    { 0x11d3a, 0x11d3a, E }, { 0x11d3c, 0x11d3d, E }, { 0x11d3f, 0x11d45, E },
    { 0x11d46, 0x11d46, A }, { 0x11d47, 0x11d47, E }, { 0x11d50, 0x11d59, N },
    { 0x11d60, 0x11d65, A }, { 0x11d67, 0x11d68, A }, { 0x11d6a, 0x11d89, A },
    { 0x11d8a, 0x11d8e, E }, { 0x11d90, 0x11d91, E }, { 0x11d93, 0x11d97, E },
    { 0x11d98, 0x11d98, A }, { 0x11da0, 0x11da9, N }, { 0x11ee0, 0x11ef2, A },
    { 0x11ef3, 0x11ef6, E }, { 0x11fb0, 0x11fb0, A }, { 0x12000, 0x12399, A },
    { 0x12400, 0x1246e, A }, { 0x12480, 0x12543, A }, { 0x12f90, 0x12ff0, A },
    { 0x13000, 0x1342e, A }, { 0x13430, 0x13438, E }, { 0x14400, 0x14646, A },
    { 0x16800, 0x16a38, A }, { 0x16a40, 0x16a5e, A }, { 0x16a60, 0x16a69, N },
    { 0x16a70, 0x16abe, A }, { 0x16ac0, 0x16ac9, N }, { 0x16ad0, 0x16aed, A },
    { 0x16af0, 0x16af4, E }, { 0x16b00, 0x16b2f, A }, { 0x16b30, 0x16b36, E },
    { 0x16b40, 0x16b43, A }, { 0x16b50, 0x16b59, N }, { 0x16b63, 0x16b77, A },
    { 0x16b7d, 0x16b8f, A }, { 0x16e40, 0x16e7f, A }, { 0x16f00, 0x16f4a, A },
    { 0x16f4f, 0x16f4f, E }, { 0x16f50, 0x16f50, A }, { 0x16f51, 0x16f87, E },
    { 0x16f8f, 0x16f92, E }, { 0x16f93, 0x16f9f, A }, { 0x16fe0, 0x16fe1, A },
    { 0x16fe3, 0x16fe3, A }, { 0x16fe4, 0x16fe4, E }, { 0x16ff0, 0x16ff1, E },
    { 0x17000, 0x187f7, A }, { 0x18800, 0x18cd5, A }, { 0x18d00, 0x18d08, A },
    { 0x1aff0, 0x1aff3, K }, { 0x1aff5, 0x1affb, K }, { 0x1affd, 0x1affe, K },
    { 0x1b000, 0x1b000, K }, { 0x1b001, 0x1b001, H }, { 0x1b002, 0x1b11e, A },
    { 0x1b11f, 0x1b11f, H }, { 0x1b120, 0x1b122, K }, { 0x1b150, 0x1b152, H },
    { 0x1b164, 0x1b167, K }, { 0x1b170, 0x1b2fb, A }, { 0x1bc00, 0x1bc6a, A },
    { 0x1bc70, 0x1bc7c, A }, { 0x1bc80, 0x1bc88, A }, { 0x1bc90, 0x1bc99, A },
    { 0x1bc9d, 0x1bc9e, E }, { 0x1bca0, 0x1bca3, E }, { 0x1cf00, 0x1cf2d, E },
    { 0x1cf30, 0x1cf46, E }, { 0x1d165, 0x1d169, E }, { 0x1d16d, 0x1d182, E },
    { 0x1d185, 0x1d18b, E }, { 0x1d1aa, 0x1d1ad, E }, { 0x1d242, 0x1d244, E },
    { 0x1d400, 0x1d454, A }, { 0x1d456, 0x1d49c, A }, { 0x1d49e, 0x1d49f, A },
    { 0x1d4a2, 0x1d4a2, A }, { 0x1d4a5, 0x1d4a6, A }, { 0x1d4a9, 0x1d4ac, A },
    { 0x1d4ae, 0x1d4b9, A }, { 0x1d4bb, 0x1d4bb, A }, { 0x1d4bd, 0x1d4c3, A },
    { 0x1d4c5, 0x1d505, A }, { 0x1d507, 0x1d50a, A }, { 0x1d50d, 0x1d514, A },
    { 0x1d516, 0x1d51c, A }, { 0x1d51e, 0x1d539, A }, { 0x1d53b, 0x1d53e, A },
    { 0x1d540, 0x1d544, A }, { 0x1d546, 0x1d546, A }, { 0x1d54a, 0x1d550, A },
    { 0x1d552, 0x1d6a5, A }, { 0x1d6a8, 0x1d6c0, A }, { 0x1d6c2, 0x1d6da, A },
    { 0x1d6dc, 0x1d6fa, A }, { 0x1d6fc, 0x1d714, A }, { 0x1d716, 0x1d734, A },
    { 0x1d736, 0x1d74e, A }, { 0x1d750, 0x1d76e, A }, { 0x1d770, 0x1d788, A },
    { 0x1d78a, 0x1d7a8, A }, { 0x1d7aa, 0x1d7c2, A }, { 0x1d7c4, 0x1d7cb, A },
    { 0x1d7ce, 0x1d7ff, N }, { 0x1da00, 0x1da36, E }, { 0x1da3b, 0x1da6c, E },
    { 0x1da75, 0x1da75, E }, { 0x1da84, 0x1da84, E }, { 0x1da9b, 0x1da9f, E },
    { 0x1daa1, 0x1daaf, E }, { 0x1df00, 0x1df1e, A }, { 0x1e000, 0x1e006, E },
    { 0x1e008, 0x1e018, E }, { 0x1e01b, 0x1e021, E }, { 0x1e023, 0x1e024, E },
    { 0x1e026, 0x1e02a, E }, { 0x1e100, 0x1e12c, A }, { 0x1e130, 0x1e136, E },
    { 0x1e137, 0x1e13d, A }, { 0x1e140, 0x1e149, N }, { 0x1e14e, 0x1e14e, A },
    { 0x1e290, 0x1e2ad, A }, { 0x1e2ae, 0x1e2ae, E }, { 0x1e2c0, 0x1e2eb, A },
    { 0x1e2ec, 0x1e2ef, E }, { 0x1e2f0, 0x1e2f9, N }, { 0x1e7e0, 0x1e7e6, A },
    { 0x1e7e8, 0x1e7eb, A }, { 0x1e7ed, 0x1e7ee, A }, { 0x1e7f0, 0x1e7fe, A },
    { 0x1e800, 0x1e8c4, A }, { 0x1e8d0, 0x1e8d6, E }, { 0x1e900, 0x1e943, A },
    { 0x1e944, 0x1e94a, E }, { 0x1e94b, 0x1e94b, A }, { 0x1e950, 0x1e959, N },
    { 0x1ee00, 0x1ee03, A }, { 0x1ee05, 0x1ee1f, A }, { 0x1ee21, 0x1ee22, A },
    { 0x1ee24, 0x1ee24, A }, { 0x1ee27, 0x1ee27, A }, { 0x1ee29, 0x1ee32, A },
    { 0x1ee34, 0x1ee37, A }, { 0x1ee39, 0x1ee39, A }, { 0x1ee3b, 0x1ee3b, A },
    { 0x1ee42, 0x1ee42, A }, { 0x1ee47, 0x1ee47, A }, { 0x1ee49, 0x1ee49, A },
    { 0x1ee4b, 0x1ee4b, A }, { 0x1ee4d, 0x1ee4f, A }, { 0x1ee51, 0x1ee52, A },
    { 0x1ee54, 0x1ee54, A }, { 0x1ee57, 0x1ee57, A }, { 0x1ee59, 0x1ee59, A },
    { 0x1ee5b, 0x1ee5b, A }, { 0x1ee5d, 0x1ee5d, A }, { 0x1ee5f, 0x1ee5f, A },
    { 0x1ee61, 0x1ee62, A }, { 0x1ee64, 0x1ee64, A }, { 0x1ee67, 0x1ee6a, A },
    { 0x1ee6c, 0x1ee72, A }, { 0x1ee74, 0x1ee77, A }, { 0x1ee79, 0x1ee7c, A },
    { 0x1ee7e, 0x1ee7e, A }, { 0x1ee80, 0x1ee89, A }, { 0x1ee8b, 0x1ee9b, A },
    { 0x1eea1, 0x1eea3, A }, { 0x1eea5, 0x1eea9, A }, { 0x1eeab, 0x1eebb, A },
    { 0x1f004, 0x1f004, M }, { 0x1f0cf, 0x1f0cf, M }, { 0x1f170, 0x1f171, M },
    { 0x1f17e, 0x1f17f, M }, { 0x1f18e, 0x1f18e, M }, { 0x1f191, 0x1f19a, M },
    { 0x1f1e6, 0x1f1ff, M }, { 0x1f201, 0x1f202, M }, { 0x1f21a, 0x1f21a, M },
    { 0x1f22f, 0x1f22f, M }, { 0x1f232, 0x1f23a, M }, { 0x1f250, 0x1f251, M },
    { 0x1f300, 0x1f321, M }, { 0x1f324, 0x1f393, M }, { 0x1f396, 0x1f397, M },
    { 0x1f399, 0x1f39b, M }, { 0x1f39e, 0x1f3f0, M }, { 0x1f3f3, 0x1f3f5, M },
    { 0x1f3f7, 0x1f4fd, M }, { 0x1f4ff, 0x1f53d, M }, { 0x1f549, 0x1f54e, M },
    { 0x1f550, 0x1f567, M }, { 0x1f56f, 0x1f570, M }, { 0x1f573, 0x1f57a, M },
    { 0x1f587, 0x1f587, M }, { 0x1f58a, 0x1f58d, M }, { 0x1f590, 0x1f590, M },
    { 0x1f595, 0x1f596, M }, { 0x1f5a4, 0x1f5a5, M }, { 0x1f5a8, 0x1f5a8, M },
    { 0x1f5b1, 0x1f5b2, M }, { 0x1f5bc, 0x1f5bc, M }, { 0x1f5c2, 0x1f5c4, M },
    { 0x1f5d1, 0x1f5d3, M }, { 0x1f5dc, 0x1f5de, M }, { 0x1f5e1, 0x1f5e1, M },
    { 0x1f5e3, 0x1f5e3, M }, { 0x1f5e8, 0x1f5e8, M }, { 0x1f5ef, 0x1f5ef, M },
    { 0x1f5f3, 0x1f5f3, M }, { 0x1f5fa, 0x1f64f, M }, { 0x1f680, 0x1f6c5, M },
    { 0x1f6cb, 0x1f6d2, M }, { 0x1f6d5, 0x1f6d7, M }, { 0x1f6dd, 0x1f6e5, M },
    { 0x1f6e9, 0x1f6e9, M }, { 0x1f6eb, 0x1f6ec, M }, { 0x1f6f0, 0x1f6f0, M },
    { 0x1f6f3, 0x1f6fc, M }, { 0x1f7e0, 0x1f7eb, M }, { 0x1f7f0, 0x1f7f0, M },
    { 0x1f90c, 0x1f93a, M }, { 0x1f93c, 0x1f945, M }, { 0x1f947, 0x1f9ff, M },
    { 0x1fa70, 0x1fa74, M }, { 0x1fa78, 0x1fa7c, M }, { 0x1fa80, 0x1fa86, M },
    { 0x1fa90, 0x1faac, M }, { 0x1fab0, 0x1faba, M }, { 0x1fac0, 0x1fac5, M },
    { 0x1fad0, 0x1fad9, M }, { 0x1fae0, 0x1fae7, M }, { 0x1faf0, 0x1faf6, M },
    { 0x1fbf0, 0x1fbf9, N }, { 0x20000, 0x2a6df, I }, { 0x2a700, 0x2b738, I },
    { 0x2b740, 0x2b81d, I }, { 0x2b820, 0x2cea1, I }, { 0x2ceb0, 0x2ebe0, I },
    { 0x2f800, 0x2fa1d, I }, { 0x30000, 0x3134a, I }, { 0xe0001, 0xe0001, E },
    { 0xe0020, 0xe007f, E }, { 0xe0100, 0xe01ef, E },
};

static const sa_text_lower_t  sa_text_lower[] = {
    { 0x000c0, 0x000d6, 32, 1 }, { 0x000d8, 0x000de, 32, 1 },
    { 0x00100, 0x0012e, 1, 2 }, { 0x00130, 0x00130, -199, 1 },
    { 0x00132, 0x00136, 1, 2 }, { 0x00139, 0x00147, 1, 2 },
    { 0x0014a, 0x00176, 1, 2 }, { 0x00178, 0x00178, -121, 1 },
    { 0x00179, 0x0017d, 1, 2 }, { 0x00181, 0x00181, 210, 1 },
    { 0x00182, 0x00184, 1, 2 }, { 0x00186, 0x00186, 206, 1 },
    { 0x00187, 0x00187, 1, 1 }, { 0x00189, 0x0018a, 205, 1 },
    { 0x0018b, 0x0018b, 1, 1 }, { 0x0018e, 0x0018e, 79, 1 },
    { 0x0018f, 0x0018f, 202, 1 }, { 0x00190, 0x00190, 203, 1 },
    { 0x00191, 0x00191, 1, 1 }, { 0x00193, 0x00193, 205, 1 },
    { 0x00194, 0x00194, 207, 1 }, { 0x00196, 0x00196, 211, 1 },
    { 0x00197, 0x00197, 209, 1 }, { 0x00198, 0x00198, 1, 1 },
    { 0x0019c, 0x0019c, 211, 1 }, { 0x0019d, 0x0019d, 213, 1 },
    { 0x0019f, 0x0019f, 214, 1 }, { 0x001a0, 0x001a4, 1, 2 },
    { 0x001a6, 0x001a6, 218, 1 }, { 0x001a7, 0x001a7, 1, 1 },
    { 0x001a9, 0x001a9, 218, 1 }, { 0x001ac, 0x001ac, 1, 1 },
    { 0x001ae, 0x001ae, 218, 1 }, { 0x001af, 0x001af, 1, 1 },
    { 0x001b1, 0x001b2, 217, 1 }, { 0x001b3, 0x001b5, 1, 2 },
    { 0x001b7, 0x001b7, 219, 1 }, { 0x001b8, 0x001b8, 1, 1 },
    { 0x001bc, 0x001bc, 1, 1 }, { 0x001c4, 0x001c4, 2, 1 },
    { 0x001c5, 0x001c5, 1, 1 }, { 0x001c7, 0x001c7, 2, 1 },
    { 0x001c8, 0x001c8, 1, 1 }, { 0x001ca, 0x001ca, 2, 1 },
    { 0x001cb, 0x001db, 1, 2 }, { 0x001de, 0x001ee, 1, 2 },
    { 0x001f1, 0x001f1, 2, 1 }, { 0x001f2, 0x001f4, 1, 2 },
    { 0x001f6, 0x001f6, -97, 1 }, { 0x001f7, 0x001f7, -56, 1 },
    { 0x001f8, 0x0021e, 1, 2 }, { 0x00220, 0x00220, -130, 1 },
    { 0x00222, 0x00232, 1, 2 }, { 0x0023a, 0x0023a, 10795, 1 },
    { 0x0023b, 0x0023b, 1, 1 }, { 0x0023d, 0x0023d, -163, 1 },
    { 0x0023e, 0x0023e, 10792, 1 }, { 0x00241, 0x00241, 1, 1 },
    { 0x00243, 0x00243, -195, 1 }, { 0x00244, 0x00244, 69, 1 },
    { 0x00245, 0x00245, 71, 1 }, { 0x00246, 0x0024e, 1, 2 },
    { 0x00370, 0x00372, 1, 2 }, { 0x00376, 0x00376, 1, 1 },
    { 0x0037f, 0x0037f, 116, 1 }, { 0x00386, 0x00386, 38, 1 },
    { 0x00388, 0x0038a, 37, 1 }, { 0x0038c, 0x0038c, 64, 1 },
    { 0x0038e, 0x0038f, 63, 1 }, { 0x00391, 0x003a1, 32, 1 },
    { 0x003a3, 0x003ab, 32, 1 }, { 0x003cf, 0x003cf, 8, 1 },
    { 0x003d8, 0x003ee, 1, 2 }, { 0x003f4, 0x003f4, -60, 1 },
    { 0x003f7, 0x003f7, 1, 1 }, { 0x003f9, 0x003f9, -7, 1 },
    { 0x003fa, 0x003fa, 1, 1 }, { 0x003fd, 0x003ff, -130, 1 },
    { 0x00400, 0x0040f, 80, 1 }, { 0x00410, 0x0042f, 32, 1 },
    { 0x00460, 0x00480, 1, 2 }, { 0x0048a, 0x004be, 1, 2 },
    { 0x004c0, 0x004c0, 15, 1 }, { 0x004c1, 0x004cd, 1, 2 },
    { 0x004d0, 0x0052e, 1, 2 }, { 0x00531, 0x00556, 48, 1 },
    { 0x010a0, 0x010c5, 7264, 1 }, { 0x010c7, 0x010c7, 7264, 1 },
    { 0x010cd, 0x010cd, 7264, 1 }, { 0x013a0, 0x013ef, 38864, 1 },
    { 0x013f0, 0x013f5, 8, 1 }, { 0x01c90, 0x01cba, -3008, 1 },
    { 0x01cbd, 0x01cbf, -3008, 1 }, { 0x01e00, 0x01e94, 1, 2 },
    { 0x01e9e, 0x01e9e, -7615, 1 }, { 0x01ea0, 0x01efe, 1, 2 },
    { 0x01f08, 0x01f0f, -8, 1 }, { 0x01f18, 0x01f1d, -8, 1 },
    { 0x01f28, 0x01f2f, -8, 1 }, { 0x01f38, 0x01f3f, -8, 1 },
    { 0x01f48, 0x01f4d, -8, 1 }, { 0x01f59, 0x01f5f, -8, 2 },
    { 0x01f68, 0x01f6f, -8, 1 }, { 0x01f88, 0x01f8f, -8, 1 },
    { 0x01f98, 0x01f9f, -8, 1 }, { 0x01fa8, 0x01faf, -8, 1 },
    { 0x01fb8, 0x01fb9, -8, 1 }, { 0x01fba, 0x01fbb, -74, 1 },
    { 0x01fbc, 0x01fbc, -9, 1 }, { 0x01fc8, 0x01fcb, -86, 1 },
    { 0x01fcc, 0x01fcc, -9, 1 }, { 0x01fd8, 0x01fd9, -8, 1 },
    { 0x01fda, 0x01fdb, -100, 1 }, { 0x01fe8, 0x01fe9, -8, 1 },
    { 0x01fea, 0x01feb, -112, 1 }, { 0x01fec, 0x01fec, -7, 1 },
    { 0x01ff8, 0x01ff9, -128, 1 }, { 0x01ffa, 0x01ffb, -126, 1 },
    { 0x01ffc, 0x01ffc, -9, 1 }, { 0x02126, 0x02126, -7517, 1 },
    { 0x0212a, 0x0212a, -8383, 1 }, { 0x0212b, 0x0212b, -8262, 1 },
    { 0x02132, 0x02132, 28, 1 }, { 0x02160, 0x0216f, 16, 1 },
    { 0x02183, 0x02183, 1, 1 }, { 0x024b6, 0x024cf, 26, 1 },
    { 0x02c00, 0x02c2f, 48, 1 }, { 0x02c60, 0x02c60, 1, 1 },
    { 0x02c62, 0x02c62, -10743, 1 }, { 0x02c63, 0x02c63, -3814, 1 },
    { 0x02c64, 0x02c64, -10727, 1 }, { 0x02c67, 0x02c6b, 1, 2 },
    { 0x02c6d, 0x02c6d, -10780, 1 }, { 0x02c6e, 0x02c6e, -10749, 1 },
    { 0x02c6f, 0x02c6f, -10783, 1 }, { 0x02c70, 0x02c70, -10782, 1 },
    { 0x02c72, 0x02c72, 1, 1 }, { 0x02c75, 0x02c75, 1, 1 },
    { 0x02c7e, 0x02c7f, -10815, 1 }, { 0x02c80, 0x02ce2, 1, 2 },
    { 0x02ceb, 0x02ced, 1, 2 }, { 0x02cf2, 0x02cf2, 1, 1 },
    { 0x0a640, 0x0a66c, 1, 2 }, { 0x0a680, 0x0a69a, 1, 2 },
    { 0x0a722, 0x0a72e, 1, 2 }, { 0x0a732, 0x0a76e, 1, 2 },
    { 0x0a779, 0x0a77b, 1, 2 }, { 0x0a77d, 0x0a77d, -35332, 1 },
    { 0x0a77e, 0x0a786, 1, 2 }, { 0x0a78b, 0x0a78b, 1, 1 },
    { 0x0a78d, 0x0a78d, -42280, 1 }, { 0x0a790, 0x0a792, 1, 2 },
    { 0x0a796, 0x0a7a8, 1, 2 }, { 0x0a7aa, 0x0a7aa, -42308, 1 },
    { 0x0a7ab, 0x0a7ab, -42319, 1 }, { 0x0a7ac, 0x0a7ac, -42315, 1 },
    { 0x0a7ad, 0x0a7ad, -42305, 1 }, { 0x0a7ae, 0x0a7ae, -42308, 1 },
    { 0x0a7b0, 0x0a7b0, -42258, 1 }, { 0x0a7b1, 0x0a7b1, -42282, 1 },
    { 0x0a7b2, 0x0a7b2, -42261, 1 }, { 0x0a7b3, 0x0a7b3, 928, 1 },
    { 0x0a7b4, 0x0a7c2, 1, 2 }, { 0x0a7c4, 0x0a7c4, -48, 1 },
    { 0x0a7c5, 0x0a7c5, -42307, 1 }, { 0x0a7c6, 0x0a7c6, -35384, 1 },
    { 0x0a7c7, 0x0a7c9, 1, 2 }, { 0x0a7d0, 0x0a7d0, 1, 1 },
    { 0x0a7d6, 0x0a7d8, 1, 2 }, { 0x0a7f5, 0x0a7f5, 1, 1 },
    { 0x0ff21, 0x0ff3a, 32, 1 }, { 0x10400, 0x10427, 40, 1 },
    { 0x104b0, 0x104d3, 40, 1 }, { 0x10570, 0x1057a, 39, 1 },
    { 0x1057c, 0x1058a, 39, 1 }, { 0x1058c, 0x10592, 39, 1 },
    { 0x10594, 0x10595, 39, 1 }, { 0x10c80, 0x10cb2, 64, 1 },
    { 0x118a0, 0x118bf, 32, 1 }, { 0x16e40, 0x16e5f, 32, 1 },
    { 0x1e900, 0x1e921, 34, 1 },
};
/* END GENERATED */

#undef O
#undef A
#undef W
#undef N
#undef E
#undef K
#undef H
#undef I
#undef S
#undef X
#undef U
#undef ML
#undef MNL
#undef SQ
#undef MN
#undef DQ
#undef M


sa_analyzer_t *
sa_analyzer_new(const char *language)
{
    sa_analyzer_t  *a;

    if (language == NULL) {
        return NULL;
    }

    if (strcmp(language, "english") != 0 && strcmp(language, "simple") != 0)
    {
        return NULL;
    }

    a = calloc(1, sizeof(sa_analyzer_t));
    if (a == NULL) {
        return NULL;
    }

    strcpy(a->language, language);

    if (strcmp(language, "english") == 0) {
        a->english = 1;

        /* Snowball's "porter" is the original algorithm, which is what
           Lucene's PorterStemFilter implements ("english" is Porter2) */

        a->stemmer = sb_stemmer_new("porter", "UTF_8");
        if (a->stemmer == NULL) {
            free(a);
            return NULL;
        }
    }

    return a;
}


void
sa_analyzer_free(sa_analyzer_t *a)
{
    if (a == NULL) {
        return;
    }

    if (a->stemmer != NULL) {
        sb_stemmer_delete(a->stemmer);
    }

    free(a);
}


const char *
sa_analyzer_language(const sa_analyzer_t *a)
{
    return a->language;
}


int
sa_analyze(sa_analyzer_t *a, const char *text, size_t len,
    sa_term_pt handler, void *data)
{
    int                   rc, word;
    size_t                i, n, end;
    uint32_t              position;
    unsigned              cls;
    const unsigned char  *p;

    p = (const unsigned char *) text;
    position = 0;
    i = 0;

    while (i < len) {

        cls = sa_text_class_at(p, len, i, &n);

        switch (cls) {

        case SA_C_ALETTER:
        case SA_C_HEBREW:
        case SA_C_NUMERIC:
        case SA_C_KATAKANA:
        case SA_C_HIRAGANA:
        case SA_C_IDEO:
        case SA_C_SEA:
        case SA_C_ENL:
            end = sa_text_token_end(p, len, i, cls, &word);
            break;

        case SA_C_SEA_EXTEND:
            end = sa_text_token_end(p, len, i, SA_C_SEA, &word);
            break;

        case SA_C_EMOJI:
            end = sa_text_emoji_end(p, len, i);
            word = 1;

            if (end == 0) {
                /* a regional indicator alone */
                i += n;
                continue;
            }

            break;

        default:
            i += n;
            continue;
        }

        /* only connectors ("___") make no token */

        if (word) {
            if (end - i <= SA_TEXT_MAX_TOKEN) {
                rc = sa_text_term(a, p + i, end - i, position, handler,
                                  data);
                if (rc != SA_OK) {
                    return rc;
                }
            }

            position++;
        }

        i = end;
    }

    return SA_OK;
}


/*
 * The end of the token starting at start (whose first character has class
 * cls), by Lucene's StandardTokenizer grammar (UAX #29 rules WB4-WB13b):
 * runs of letters and digits with single mid-word punctuation between two
 * letters or two digits, connectors, katakana runs, south-east Asian runs.
 * *word tells whether the token has more than connectors ("___").
 */

static size_t
sa_text_token_end(const unsigned char *p, size_t len, size_t start,
    unsigned cls, int *word)
{
    int       mid;
    size_t    i, j, n, end;
    unsigned  last, next, after, want;

    *word = (cls != SA_C_ENL);
    last = cls;
    mid = 0;

    (void) sa_text_class_at(p, len, start, &n);
    i = start + n;

    for ( ;; ) {
        /* WB4: extend and format characters stay with what precedes */

        i = sa_text_skip_extend(p, len, i);
        end = i;

        if (i >= len) {
            return end;
        }

        next = sa_text_class_at(p, len, i, &n);

        switch (last) {

        case SA_C_HIRAGANA:
        case SA_C_IDEO:
            /* single characters */
            return end;

        case SA_C_SEA:
            if (next == SA_C_SEA) {
                i += n;
                continue;
            }

            return end;
        }

        if (sa_text_joins(last, next)) {
            if (next != SA_C_ENL) {
                *word = 1;
            }

            last = next;
            mid = 0;
            i += n;
            continue;
        }

        /* WB6/7: a letter, ' . : a letter; WB11/12: a digit , ; ' . a
           digit; WB7b/c: a Hebrew letter, ", a Hebrew letter */

        want = SA_C_OTHER;

        if (last == SA_C_ALETTER || last == SA_C_HEBREW) {
            if (next == SA_C_MIDLETTER || next == SA_C_MIDNUMLET
                || next == SA_C_SQUOTE)
            {
                want = SA_C_ALETTER;

            } else if (last == SA_C_HEBREW && next == SA_C_DQUOTE) {
                want = SA_C_HEBREW;
            }

        } else if (last == SA_C_NUMERIC) {
            if (next == SA_C_MIDNUM || next == SA_C_MIDNUMLET
                || next == SA_C_SQUOTE)
            {
                want = SA_C_NUMERIC;
            }
        }

        if (want == SA_C_OTHER) {
            return end;
        }

        j = sa_text_skip_extend(p, len, i + n);
        after = (j < len) ? sa_text_class_at(p, len, j, &n) : SA_C_OTHER;

        if (after == want
            || (want == SA_C_ALETTER && after == SA_C_HEBREW))
        {
            last = after;
            mid = 1;
            i = j + n;
            continue;
        }

        /* WB7a: a Hebrew letter keeps a "'" after it (Lucene: unless the
           letter came after mid-word punctuation) */

        if (last == SA_C_HEBREW && next == SA_C_SQUOTE && !mid) {
            last = SA_C_HEBREW_QUOTE;
            i = j;
            continue;
        }

        return end;
    }
}


/* the class of the character at p + i and its length; OTHER, 1 for a byte
   that does not start valid UTF-8 */

static unsigned
sa_text_class_at(const unsigned char *p, size_t len, size_t i, size_t *n)
{
    uint32_t  cp;

    if (p[i] < 0x80) {
        *n = 1;
        return sa_text_ascii[p[i]];
    }

    *n = sa_text_decode(p + i, len - i, &cp);
    if (*n == 0) {
        *n = 1;
        return SA_C_OTHER;
    }

    return sa_text_class(cp);
}


/* past the extend and format characters at p + i */

static size_t
sa_text_skip_extend(const unsigned char *p, size_t len, size_t i)
{
    size_t    n;
    unsigned  cls;

    while (i < len) {
        cls = sa_text_class_at(p, len, i, &n);

        if (cls != SA_C_EXTEND && cls != SA_C_SEA_EXTEND) {
            break;
        }

        i += n;
    }

    return i;
}


/*
 * An emoji token: the emoji with its skin tone modifiers and variation
 * selectors, a pair of regional indicators (a flag), and emoji joined by
 * ZWJ (U+200D), as one token.  0 for a regional indicator alone: Lucene
 * makes no token of it.
 */

static size_t
sa_text_emoji_end(const unsigned char *p, size_t len, size_t i)
{
    int       zwj;
    size_t    n;
    uint32_t  cp, first;
    unsigned  cls;

    for ( ;; ) {
        /* the emoji at i: its class was checked */

        n = sa_text_decode(p + i, len - i, &first);
        i += n;
        zwj = 0;

        /* U+1F1E6..U+1F1FF: a flag is two of them */

        if (first >= 0x1f1e6 && first <= 0x1f1ff) {
            n = (i < len) ? sa_text_decode(p + i, len - i, &cp) : 0;
            if (n == 0 || cp < 0x1f1e6 || cp > 0x1f1ff) {
                return 0;
            }

            i += n;
        }

        for ( ;; ) {
            if (i >= len) {
                return i;
            }

            n = sa_text_decode(p + i, len - i, &cp);
            if (n == 0) {
                return i;
            }

            /* U+1F3FB..U+1F3FF: skin tones */

            if (cp >= 0x1f3fb && cp <= 0x1f3ff) {
                i += n;
                continue;
            }

            cls = sa_text_class(cp);

            if (cls == SA_C_EXTEND || cls == SA_C_SEA_EXTEND) {
                zwj = (cp == 0x200d);
                i += n;
                continue;
            }

            if (cls == SA_C_EMOJI && zwj) {
                break;
            }

            return i;
        }
    }
}


/* UAX #29 WB5, WB8-WB10, WB13-WB13b: no break between last and next */

static int
sa_text_joins(unsigned last, unsigned next)
{
    switch (last) {

    case SA_C_ALETTER:
    case SA_C_HEBREW:
    case SA_C_NUMERIC:
    case SA_C_HEBREW_QUOTE:
        return next == SA_C_ALETTER || next == SA_C_HEBREW
               || next == SA_C_NUMERIC || next == SA_C_ENL;

    case SA_C_KATAKANA:
        return next == SA_C_KATAKANA || next == SA_C_ENL;

    case SA_C_ENL:
        return next == SA_C_ALETTER || next == SA_C_HEBREW
               || next == SA_C_NUMERIC || next == SA_C_KATAKANA
               || next == SA_C_ENL;

    default:
        return 0;
    }
}


/* the filters after the tokenizer, then the handler */

static int
sa_text_term(sa_analyzer_t *a, const unsigned char *p, size_t len,
    uint32_t position, sa_term_pt handler, void *data)
{
    size_t               i, n, tlen, chars;
    uint32_t             cp;
    const sb_symbol     *stem;

    if (a->english && len >= 2 && (p[len - 1] == 's' || p[len - 1] == 'S'))
    {
        /* EnglishPossessiveFilter: ' U+2019 U+FF07 followed by s */

        if (p[len - 2] == '\'') {
            len -= 2;

        } else if (len >= 4 && p[len - 4] == 0xe2 && p[len - 3] == 0x80
                   && p[len - 2] == 0x99)
        {
            len -= 4;

        } else if (len >= 4 && p[len - 4] == 0xef && p[len - 3] == 0xbc
                   && p[len - 2] == 0x87)
        {
            len -= 4;
        }

        if (len == 0) {
            return SA_OK;
        }
    }

    /* lowercase; the token is valid UTF-8, the tokenizer saw to it */

    tlen = 0;
    chars = 0;

    for (i = 0; i < len; i += n) {
        if (p[i] < 0x80) {
            a->term[tlen++] = (p[i] >= 'A' && p[i] <= 'Z') ? p[i] | 0x20
                                                           : p[i];
            n = 1;

        } else {
            n = sa_text_decode(p + i, len - i, &cp);
            if (n == 0) {
                /* cannot happen; be safe all the same */
                return SA_OK;
            }

            tlen += sa_text_encode(sa_text_to_lower(cp), a->term + tlen);
        }

        chars++;
    }

    a->term[tlen] = '\0';

    if (!a->english) {
        return handler(data, a->term, tlen, position);
    }

    if (sa_text_is_stop(a->term, tlen)) {
        return SA_OK;
    }

    /* Porter's reference code leaves words of 1 or 2 characters alone;
       Snowball's would make "us" "u" */

    if (chars <= 2) {
        return handler(data, a->term, tlen, position);
    }

    stem = sb_stemmer_stem(a->stemmer, (const sb_symbol *) a->term,
                           (int) tlen);
    if (stem == NULL) {
        return SA_ERROR;
    }

    n = (size_t) sb_stemmer_length(a->stemmer);
    if (n == 0 || n > SA_TEXT_MAX_TERM) {
        /* no stem: keep the word */
        return handler(data, a->term, tlen, position);
    }

    /* the word is still in term, the stem goes after it */

    if (tlen + 1 + n + 1 > sizeof(a->term)) {
        return handler(data, a->term, tlen, position);
    }

    memcpy(a->term + tlen + 1, stem, n);
    n = sa_text_porter_departures(a->term, tlen, a->term + tlen + 1, n);

    memmove(a->term, a->term + tlen + 1, n);
    a->term[n] = '\0';

    return handler(data, a->term, n, position);
}


/*
 * Porter's reference implementation (and so Lucene's PorterStemmer) has
 * two departures from the published algorithm that Snowball's "porter"
 * does not make, in step 2: "bli" becomes "ble" (not "abli" "able") and
 * "logi" becomes "log".  Without them "technology" stems to "technologi"
 * here but "technolog" in Lucene.  Snowball leaves a word that ends in
 * "bli" or "logi" after step 1 as it is in steps 2 to 5, so its stem
 * still ends so, and the word is the stem with its "i" or a "y" followed
 * by what step 1 removes ("", "s", "es", "ed", "ing").  This redoes steps
 * 2 to 5 for those words the reference way.  Returns the new length of
 * stem.
 */

static size_t
sa_text_porter_departures(const char *word, size_t wlen, char *stem,
    size_t len)
{
    size_t       k, rest;
    const char  *r;

    if (len < 4 || wlen < len || memcmp(word, stem, len - 1) != 0
        || (word[len - 1] != 'i' && word[len - 1] != 'y'))
    {
        return len;
    }

    r = word + len;
    rest = wlen - len;

    if (!(rest == 0
          || (rest == 1 && r[0] == 's')
          || (rest == 2 && (memcmp(r, "es", 2) == 0
                            || memcmp(r, "ed", 2) == 0))
          || (rest == 3 && memcmp(r, "ing", 3) == 0)))
    {
        return len;
    }

    if (sa_text_ends(stem, len, "logi")) {
        /* step 2: "logi" -> "log" when m > 0; steps 3 to 5 keep "log" */

        if (sa_text_measure(stem, len - 4) > 0) {
            return len - 1;
        }

        return len;
    }

    if (!sa_text_ends(stem, len, "bli")
        || sa_text_measure(stem, len - 3) == 0)
    {
        return len;
    }

    /* step 2: "bli" -> "ble" */

    stem[len - 1] = 'e';

    /* step 4: "able", "ible" go when m > 1 */

    if ((sa_text_ends(stem, len, "able") || sa_text_ends(stem, len, "ible"))
        && sa_text_measure(stem, len - 4) > 1)
    {
        len -= 4;
    }

    /* step 5a: a final "e" goes when m > 1, or m == 1 and not *o */

    if (len > 0 && stem[len - 1] == 'e') {
        k = len - 1;

        if (sa_text_measure(stem, k) > 1
            || (sa_text_measure(stem, k) == 1
                && !(k >= 3 && sa_text_cons(stem, k - 3)
                     && !sa_text_cons(stem, k - 2)
                     && sa_text_cons(stem, k - 1)
                     && stem[k - 1] != 'w' && stem[k - 1] != 'x'
                     && stem[k - 1] != 'y')))
        {
            len = k;
        }
    }

    /* step 5b: "ll" -> "l" when m > 1 */

    if (sa_text_ends(stem, len, "ll") && sa_text_measure(stem, len) > 1) {
        len--;
    }

    return len;
}


static int
sa_text_ends(const char *s, size_t len, const char *suffix)
{
    size_t  n;

    n = strlen(suffix);

    return len >= n && memcmp(s + len - n, suffix, n) == 0;
}


/* Porter's consonant: not a vowel, and "y" only after a vowel or first */

static int
sa_text_cons(const char *s, size_t i)
{
    switch (s[i]) {

    case 'a':
    case 'e':
    case 'i':
    case 'o':
    case 'u':
        return 0;

    case 'y':
        return i == 0 ? 1 : !sa_text_cons(s, i - 1);

    default:
        return 1;
    }
}


/* Porter's m: the number of vowel-consonant sequences in s[0, len) */

static int
sa_text_measure(const char *s, size_t len)
{
    int     m;
    size_t  i;

    m = 0;
    i = 0;

    while (i < len && sa_text_cons(s, i)) {
        i++;
    }

    for ( ;; ) {
        while (i < len && !sa_text_cons(s, i)) {
            i++;
        }

        if (i >= len) {
            return m;
        }

        while (i < len && sa_text_cons(s, i)) {
            i++;
        }

        m++;
    }
}


static int
sa_text_is_stop(const char *term, size_t len)
{
    int  lo, hi, mid, c;

    if (len > 5) {
        return 0;
    }

    lo = 0;
    hi = (int) (sizeof(sa_text_stop_words) / sizeof(sa_text_stop_words[0]))
         - 1;

    while (lo <= hi) {
        mid = (lo + hi) / 2;
        c = strcmp(term, sa_text_stop_words[mid]);

        if (c == 0) {
            return 1;
        }

        if (c < 0) {
            hi = mid - 1;

        } else {
            lo = mid + 1;
        }
    }

    return 0;
}


/* one well-formed UTF-8 sequence (no overlongs, no surrogates, at most
   U+10FFFF): its length, or 0 */

static size_t
sa_text_decode(const unsigned char *p, size_t len, uint32_t *cp)
{
    uint32_t  c;

    c = p[0];

    if (c < 0x80) {
        *cp = c;
        return 1;
    }

    if (c >= 0xc2 && c <= 0xdf) {
        if (len < 2 || (p[1] & 0xc0) != 0x80) {
            return 0;
        }

        *cp = ((c & 0x1f) << 6) | (p[1] & 0x3f);
        return 2;
    }

    if (c >= 0xe0 && c <= 0xef) {
        if (len < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80) {
            return 0;
        }

        c = ((c & 0x0f) << 12) | ((p[1] & 0x3fu) << 6) | (p[2] & 0x3f);

        if (c < 0x800 || (c >= 0xd800 && c <= 0xdfff)) {
            return 0;
        }

        *cp = c;
        return 3;
    }

    if (c >= 0xf0 && c <= 0xf4) {
        if (len < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80
            || (p[3] & 0xc0) != 0x80)
        {
            return 0;
        }

        c = ((c & 0x07) << 18) | ((p[1] & 0x3fu) << 12)
            | ((p[2] & 0x3fu) << 6) | (p[3] & 0x3f);

        if (c < 0x10000 || c > 0x10ffff) {
            return 0;
        }

        *cp = c;
        return 4;
    }

    return 0;
}


static size_t
sa_text_encode(uint32_t cp, char *p)
{
    if (cp < 0x80) {
        p[0] = (char) cp;
        return 1;
    }

    if (cp < 0x800) {
        p[0] = (char) (0xc0 | (cp >> 6));
        p[1] = (char) (0x80 | (cp & 0x3f));
        return 2;
    }

    if (cp < 0x10000) {
        p[0] = (char) (0xe0 | (cp >> 12));
        p[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
        p[2] = (char) (0x80 | (cp & 0x3f));
        return 3;
    }

    p[0] = (char) (0xf0 | (cp >> 18));
    p[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
    p[2] = (char) (0x80 | ((cp >> 6) & 0x3f));
    p[3] = (char) (0x80 | (cp & 0x3f));
    return 4;
}


static unsigned
sa_text_class(uint32_t cp)
{
    size_t  lo, hi, mid;

    if (cp < 0x80) {
        return sa_text_ascii[cp];
    }

    /* the few punctuation marks with a class of their own */

    lo = 0;
    hi = sizeof(sa_text_punct) / sizeof(sa_text_punct[0]);

    while (lo < hi) {
        mid = (lo + hi) / 2;

        if (sa_text_punct[mid].cp == cp) {
            return sa_text_punct[mid].cls;
        }

        if (sa_text_punct[mid].cp < cp) {
            lo = mid + 1;

        } else {
            hi = mid;
        }
    }

    lo = 0;
    hi = sizeof(sa_text_classes) / sizeof(sa_text_classes[0]);

    while (lo < hi) {
        mid = (lo + hi) / 2;

        if (cp > sa_text_classes[mid].hi) {
            lo = mid + 1;

        } else if (cp < sa_text_classes[mid].lo) {
            hi = mid;

        } else {
            return sa_text_classes[mid].cls;
        }
    }

    return SA_C_OTHER;
}


static uint32_t
sa_text_to_lower(uint32_t cp)
{
    size_t                  lo, hi, mid;
    const sa_text_lower_t  *r;

    lo = 0;
    hi = sizeof(sa_text_lower) / sizeof(sa_text_lower[0]);

    while (lo < hi) {
        mid = (lo + hi) / 2;
        r = &sa_text_lower[mid];

        if (cp > r->hi) {
            lo = mid + 1;

        } else if (cp < r->lo) {
            hi = mid;

        } else {
            if ((cp - r->lo) % r->stride != 0) {
                return cp;
            }

            return (uint32_t) ((int32_t) cp + r->delta);
        }
    }

    return cp;
}
