
/*
 * Copyright (C) ngx_support_agent authors
 *
 * sa_remote: the bodies sent to embeddings, rerank and Qdrant services
 * and the parsing of their replies, including hostile ones.
 */


#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "sa_remote.h"


static const char *
body(sa_jw_t *w)
{
    size_t  len;

    return sa_jw_buf(w, &len);
}


static void
test_api(void)
{
    ok(sa_embed_api("http://tei:8080/embed", 21) == SA_EMBED_TEI,
       "api: /embed is TEI");
    ok(sa_embed_api("http://h/v1/embeddings", 22) == SA_EMBED_OPENAI,
       "api: /v1/embeddings is OpenAI");
    ok(sa_embed_api("http://h/embed/?x=1", 19) == SA_EMBED_TEI,
       "api: trailing slash and query string");
    ok(sa_rerank_api("http://tei/rerank", 17) == SA_RERANK_TEI,
       "api: /rerank is TEI");
    ok(sa_rerank_api("https://api.cohere.com/v2/rerank", 32)
       == SA_RERANK_COHERE, "api: /v2/rerank is Cohere");
    ok(sa_rerank_api("http://vllm/v1/rerank", 21) == SA_RERANK_COHERE,
       "api: /v1/rerank is Cohere-style");
}


static void
test_embed(void)
{
    char      err[128];
    float    *v;
    size_t    dim;
    sa_jw_t  *w;

    w = sa_jw_new();

    ok(sa_embed_request(SA_EMBED_OPENAI, "m", "hi \"x\"", 6, w) == SA_OK,
       "embed request: openai");
    is_str(body(w), "{\"model\":\"m\",\"input\":[\"hi \\\"x\\\"\"],"
           "\"encoding_format\":\"float\"}", "embed request: openai body");

    ok(sa_embed_request(SA_EMBED_TEI, NULL, "hi", 2, w) == SA_OK,
       "embed request: tei");
    is_str(body(w), "{\"inputs\":[\"hi\"],\"normalize\":true,"
           "\"truncate\":true}", "embed request: tei body");

    ok(sa_embed_request(SA_EMBED_TEI, NULL, "\xff", 1, w) == SA_INVALID,
       "embed request: invalid UTF-8 refused");

#define R(s)  s, sizeof(s) - 1

    ok(sa_embed_response(SA_EMBED_OPENAI, R("{\"data\":[{\"index\":1,"
           "\"embedding\":[9]},{\"index\":0,\"embedding\":[1,2.5,-3]}]}"),
           &v, &dim, err, sizeof(err)) == SA_OK
       && dim == 3 && v[1] == 2.5f && v[2] == -3,
       "embed response: index 0 found out of order");
    free(v);

    ok(sa_embed_response(SA_EMBED_TEI, R("[[0.5,0.25]]"), &v, &dim, err,
                         sizeof(err)) == SA_OK && dim == 2 && v[0] == 0.5f,
       "embed response: tei bare array");
    free(v);

    ok(sa_embed_response(SA_EMBED_OPENAI, R("{\"data\":[]}"), &v, &dim, err,
                         sizeof(err)) == SA_INVALID && v == NULL,
       "embed response: no data");
    ok(sa_embed_response(SA_EMBED_TEI, R("[[]]"), &v, &dim, err,
                         sizeof(err)) == SA_INVALID,
       "embed response: empty vector");
    ok(sa_embed_response(SA_EMBED_TEI, R("[[1,\"x\"]]"), &v, &dim, err,
                         sizeof(err)) == SA_INVALID,
       "embed response: not numbers");
    ok(sa_embed_response(SA_EMBED_TEI, R("[[1,2"), &v, &dim, err,
                         sizeof(err)) == SA_INVALID,
       "embed response: truncated");
    ok(sa_embed_response(SA_EMBED_TEI, R("{\"error\":\"x\"}"), &v, &dim,
                         err, sizeof(err)) == SA_INVALID,
       "embed response: an error object");

    sa_jw_free(w);
}


static void
test_rerank(void)
{
    char         err[128];
    float        s[3];
    sa_jw_t     *w;
    const char  *docs[2] = { "a", "b" };
    size_t       lens[2] = { 1, 1 };

    w = sa_jw_new();

    ok(sa_rerank_request(SA_RERANK_COHERE, "rr", "q", 1, docs, lens, 2, 1, w)
       == SA_OK, "rerank request: cohere");
    is_str(body(w), "{\"model\":\"rr\",\"query\":\"q\",\"documents\":"
           "[\"a\",\"b\"],\"top_n\":1}", "rerank request: cohere body");

    ok(sa_rerank_request(SA_RERANK_TEI, "rr", "q", 1, docs, lens, 2, 1, w)
       == SA_OK, "rerank request: tei");
    is_str(body(w), "{\"query\":\"q\",\"texts\":[\"a\",\"b\"],"
           "\"truncate\":true}", "rerank request: tei body, no model/top_n");

    ok(sa_rerank_response(R("{\"results\":[{\"index\":2,"
           "\"relevance_score\":0.9},{\"index\":0,\"relevance_score\":0.1}]}"),
           3, s, err, sizeof(err)) == SA_OK
       && s[2] == 0.9f && s[0] == 0.1f && isinf(s[1]),
       "rerank response: cohere, unscored is -inf");

    ok(sa_rerank_response(R("[{\"index\":1,\"score\":-2.5}]"), 3, s, err,
                          sizeof(err)) == SA_OK && s[1] == -2.5f,
       "rerank response: tei raw score");

    ok(sa_rerank_response(R("[{\"index\":3,\"score\":1}]"), 3, s, err,
                          sizeof(err)) == SA_INVALID,
       "rerank response: index out of range");
    ok(sa_rerank_response(R("[{\"index\":-1,\"score\":1}]"), 3, s, err,
                          sizeof(err)) == SA_INVALID,
       "rerank response: negative index");
    ok(sa_rerank_response(R("{\"message\":\"invalid token\"}"), 3, s, err,
                          sizeof(err)) == SA_INVALID,
       "rerank response: error body");
    ok(sa_rerank_response(R("<html>"), 3, s, err, sizeof(err)) == SA_INVALID,
       "rerank response: html");

    sa_jw_free(w);
}


static void
test_qdrant(void)
{
    char               err[128];
    size_t             n;
    sa_jw_t           *w;
    float              dense[2] = { 0.5f, -1 };
    uint32_t           idx[2] = { 17, 4051 };
    float              val[2] = { 1, 2 };
    sa_kb_filter_t     f;
    sa_qdrant_query_t  q;
    sa_qdrant_point_t  p[4];

    w = sa_jw_new();

    memset(&q, 0, sizeof(q));
    memset(&f, 0, sizeof(f));

    ok(sa_qdrant_query_request(&q, w) == SA_INVALID,
       "query: nothing to ask");

    f.product_area = "billing";
    q.dense = dense;
    q.dim = 2;
    q.sparse_indices = idx;
    q.sparse_values = val;
    q.sparse_n = 2;
    q.filter = &f;
    q.prefetch_limit = 20;
    q.limit = 20;
    q.rrf_k = 60;
    q.dense_weight = 1;
    q.sparse_weight = 0.5;

    ok(sa_qdrant_query_request(&q, w) == SA_OK, "query: hybrid");
    is_str(body(w),
           "{\"prefetch\":["
           "{\"query\":[0.5,-1],\"using\":\"dense\",\"filter\":{\"must\":["
           "{\"key\":\"product_area\",\"match\":{\"value\":\"billing\"}}]},"
           "\"limit\":20},"
           "{\"query\":{\"indices\":[17,4051],\"values\":[1,2]},"
           "\"using\":\"sparse\",\"filter\":{\"must\":["
           "{\"key\":\"product_area\",\"match\":{\"value\":\"billing\"}}]},"
           "\"limit\":20}],"
           "\"query\":{\"rrf\":{\"k\":60,\"weights\":[1,0.5]}},"
           "\"filter\":{\"must\":[{\"key\":\"product_area\",\"match\":"
           "{\"value\":\"billing\"}}]},\"limit\":20,\"with_payload\":false}",
           "query: body with filters in every prefetch");

    q.dense = NULL;
    q.flags = SA_KB_MATCH_UNSET;
    f.product_area = NULL;
    f.region = "eu";

    ok(sa_qdrant_query_request(&q, w) == SA_OK
       && strstr(body(w), "\"should\":[{\"key\":\"region\",\"match\":"
                 "{\"value\":\"eu\"}},{\"is_empty\":{\"key\":\"region\"}}]")
       && strstr(body(w), "weights") == NULL,
       "query: sparse only, a field may be unset");

    ok(sa_qdrant_query_response(R("{\"result\":{\"points\":[{\"id\":42,"
           "\"score\":0.5},{\"id\":\"5c56c793-69f3-4fbf-87e6-c4bf54c28c26\","
           "\"version\":1,\"score\":0.25}]},\"status\":\"ok\"}"), p, 4, &n,
           err, sizeof(err)) == SA_OK && n == 2
       && strcmp(p[0].id, "42") == 0 && p[1].score == 0.25f,
       "query response: int and uuid ids");

    ok(sa_qdrant_retrieve_request(p, 2, w) == SA_OK, "retrieve request");
    is_str(body(w), "{\"ids\":[42,\"5c56c793-69f3-4fbf-87e6-c4bf54c28c26\"],"
           "\"with_payload\":true,\"with_vector\":false}",
           "retrieve request: ids keep their type");

    ok(sa_qdrant_query_response(R("{\"result\":{\"points\":[{\"id\":"
           "\"../../x\",\"score\":1}]}}"), p, 4, &n, err, sizeof(err))
       == SA_INVALID, "query response: an id that is no uuid");
    ok(sa_qdrant_query_response(R("{\"status\":{\"error\":\"Not found\"}}"),
                                p, 4, &n, err, sizeof(err)) == SA_INVALID,
       "query response: error envelope");
    ok(sa_qdrant_query_response(R("{\"result\":{\"points\":[{\"id\":1,"
           "\"score\":1},{\"id\":2,\"score\":1},{\"id\":3,\"score\":1}]}}"),
           p, 2, &n, err, sizeof(err)) == SA_OK && n == 2,
       "query response: at most max");

    sa_jw_free(w);
}


static int  seen;


static int
on_chunk(void *data, const char *id, sa_kb_chunk_t *c)
{
    unsigned char  *rec;
    size_t          len;
    sa_kb_chunk_t   back;

    seen++;

    ok(strcmp(id, "7") == 0 && strcmp(c->text, "Refunds take 5 days.") == 0
       && c->text_len == 20 && strcmp(c->product_area, "billing") == 0
       && strcmp(c->region, "") == 0 && c->updated_ms == 1700000000000LL
       && c->chunk == 3, "retrieve: the chunk from the payload");

    ok(sa_remote_chunk_encode(c, &rec, &len) == SA_OK
       && sa_remote_chunk_decode(rec, len, &back) == SA_OK
       && strcmp(back.text, c->text) == 0 && back.text_len == c->text_len
       && strcmp(back.url, c->url) == 0 && back.chunk == 3
       && back.updated_ms == c->updated_ms,
       "cache record round trip");

    sa_kb_chunk_free(&back);

    ok(sa_remote_chunk_decode(rec, len - 1, &back) == SA_INVALID,
       "cache record: truncated refused");

    free(rec);
    sa_kb_chunk_free(&back);
    sa_kb_chunk_free(c);

    return 0;
}


static void
test_retrieve(void)
{
    char  err[128], text[64];

    ok(sa_qdrant_retrieve_response(R("{\"result\":[{\"id\":7,\"payload\":{"
           "\"text\":\"Refunds take 5 days.\",\"doc_id\":\"billing/refunds\","
           "\"url\":\"/help/refunds#x\",\"product_area\":\"billing\","
           "\"updated_ms\":1700000000000,\"chunk\":3}}]}"), on_chunk, NULL,
           err, sizeof(err)) == SA_OK, "retrieve response");
    is_int(seen, 1, "retrieve response: one point");

    ok(sa_qdrant_retrieve_response(R("{\"result\":[{\"id\":7,\"payload\":"
           "{}}]}"), on_chunk, NULL, err, sizeof(err)) == SA_INVALID
       && seen == 1, "retrieve response: a point without text");

    sa_remote_error_text(R("{\"status\":{\"error\":\"Not found: "
                           "Collection `x` doesn't exist!\"},\"time\":0}"),
                         text, sizeof(text));
    is_str(text, "Not found: Collection `x` doesn't exist!",
           "error text: qdrant");

    sa_remote_error_text(R("{\"error\":{\"message\":\"bad key\"}}"), text,
                         sizeof(text));
    is_str(text, "bad key", "error text: openai");

    sa_remote_error_text(R("Must provide an API key\n\x01\xff"), text,
                         sizeof(text));
    is_str(text, "Must provide an API key  ?", "error text: plain, cleaned");
}


int
main(void)
{
    test_api();
    test_embed();
    test_rerank();
    test_qdrant();
    test_retrieve();

    return done_testing();
}
