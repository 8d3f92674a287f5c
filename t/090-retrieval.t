# Hybrid retrieval against the test services of t/kb_server.py: the query
# embedding (OpenAI and TEI shapes) fused with BM25 by reciprocal rank, the
# rerank endpoint (Cohere v2 and TEI), the built-in reranker and its
# relevance threshold, and every service failing (errors, timeouts, bad
# replies, a model of another size): retrieval degrades, the turn goes on.
#
# The knowledge base is the sample help center with vectors from the test
# server's embedding function (kb-build index --embed), built here.  Its
# paraphrase: "Can I call off my purchase?" shares no word with
# orders/cancel-an-order, which only the dense side finds.

use Test::Nginx::Socket 'no_plan';
use SupportAgent::Test;
use File::Temp qw(tempdir);

my $repo = SupportAgent::Test::repo_root();
my $dir = tempdir('sa-dense-XXXXXX', TMPDIR => 1, CLEANUP => 1);

system("$repo/build/kb-build", 'index', '--out', "$dir/dense.kb",
       '--markdown', "$repo/kb-build/sample-helpcenter", '--quiet',
       '--embed', "http://127.0.0.1:$ENV{TEST_NGINX_KB_PORT}/v1",
       '--embed-model', 'test-embed') == 0
    or die "kb-build --embed failed\n";

$ENV{TEST_NGINX_DENSE_KB} = "$dir/dense.kb";

no_shuffle();
run_tests();

__DATA__

=== TEST 1: the dense side finds a paraphrase that BM25 alone misses
--- config
    location = /bm25 {
        support_agent_search;
        support_agent_kb $TEST_NGINX_DENSE_KB;
    }
    location = /hybrid {
        support_agent_search;
        support_agent_kb $TEST_NGINX_DENSE_KB;
        support_agent_embed_url http://127.0.0.1:$TEST_NGINX_KB_PORT/v1;
        support_agent_embed_model test-embed;
    }
--- request eval
["GET /bm25?q=Can+I+call+off+my+purchase&k=5",
 "GET /hybrid?q=Can+I+call+off+my+purchase&k=5"]
--- response_body_like eval
[qr/^(?!.*cancel-an-order).*"retrieval":\{"index":"embedded","dense":false,"reranker":"built-in","degraded":false\}/s,
 qr/"retrieval":\{"index":"embedded","dense":true,"reranker":"built-in","degraded":false\}.*"document":"orders\/cancel-an-order"/s]
--- no_error_log
[warn]



=== TEST 2: TEI's /embed answers the same
--- config
    location = /hybrid {
        support_agent_search;
        support_agent_kb $TEST_NGINX_DENSE_KB;
        support_agent_embed_url http://127.0.0.1:$TEST_NGINX_KB_PORT/embed;
    }
--- request
GET /hybrid?q=Can+I+call+off+my+purchase&k=5
--- response_body_like: "dense":true,.*"document":"orders/cancel-an-order"
--- no_error_log
[warn]



=== TEST 3: OpenAI embeddings in any order: the index says which
--- config
    location = /hybrid {
        support_agent_search;
        support_agent_kb $TEST_NGINX_DENSE_KB;
        support_agent_embed_url http://127.0.0.1:$TEST_NGINX_KB_PORT/shuffle/v1/embeddings;
        support_agent_embed_model test-embed;
    }
--- request
GET /hybrid?q=Can+I+call+off+my+purchase&k=5
--- response_body_like: "dense":true,.*"document":"orders/cancel-an-order"



=== TEST 4: the embeddings service fails: BM25 alone, logged at warn
--- config
    location = /hybrid {
        support_agent_search;
        support_agent_kb $TEST_NGINX_DENSE_KB;
        support_agent_embed_url http://127.0.0.1:$TEST_NGINX_KB_PORT/fail=503/v1;
        support_agent_embed_model test-embed;
    }
--- request
GET /hybrid?q=How+long+is+the+return+window+in+the+EU+store&k=3
--- response_body_like: "retrieval":\{"index":"embedded","dense":false,"reranker":"built-in","degraded":true\},"hits":\[\{"chunk":\d+,"document":"returns-and-refunds/
--- error_log
embeddings service answered 503
searching without the query embedding
--- no_error_log
[error]



=== TEST 5: the embeddings service hangs: its time limit, then BM25 alone
--- config
    location = /hybrid {
        support_agent_search;
        support_agent_kb $TEST_NGINX_DENSE_KB;
        support_agent_embed_url http://127.0.0.1:$TEST_NGINX_KB_PORT/hang=5/v1;
        support_agent_embed_model test-embed;
        support_agent_embed_timeout 300ms;
    }
--- request
GET /hybrid?q=return+window&k=1
--- response_body_like: "degraded":true\},"hits":\[\{
--- error_log eval
qr/\[warn\] .*embeddings request failed after \d+ ms: .*; searching without the query embedding/
--- timeout: 3



=== TEST 6: a truncated embeddings reply
--- config
    location = /cut {
        support_agent_search;
        support_agent_kb $TEST_NGINX_DENSE_KB;
        support_agent_embed_url http://127.0.0.1:$TEST_NGINX_KB_PORT/cut/v1;
        support_agent_embed_model test-embed;
    }
--- request
GET /cut?q=return+window
--- response_body_like: "degraded":true\},"hits":\[\{
--- error_log eval
qr/\[warn\] .*embeddings request failed/



=== TEST 7: an unparsable embeddings reply
--- config
    location = /bad {
        support_agent_search;
        support_agent_kb $TEST_NGINX_DENSE_KB;
        support_agent_embed_url http://127.0.0.1:$TEST_NGINX_KB_PORT/badjson/v1;
        support_agent_embed_model test-embed;
    }
--- request
GET /bad?q=return+window
--- response_body_like: "degraded":true\},"hits":\[\{
--- error_log eval
qr/\[warn\] .*invalid embeddings reply/



=== TEST 8: a model of another size is refused, loudly
--- config
    location = /hybrid {
        support_agent_search;
        support_agent_kb $TEST_NGINX_DENSE_KB;
        support_agent_embed_url http://127.0.0.1:$TEST_NGINX_KB_PORT/dim=32/v1;
        support_agent_embed_model test-embed;
    }
--- request
GET /hybrid?q=return+window
--- response_body_like: "dense":false,"reranker":"built-in","degraded":true\},"hits":\[\{
--- error_log eval
qr/\[error\] .*the query embedding has 32 dimensions, knowledge base ".*dense.kb" 64: is support_agent_embed_url the model kb-build used\?/



=== TEST 9: a KB without vectors: BM25, and a hint
--- config
    location = /hybrid {
        support_agent_search;
        support_agent_kb $TEST_NGINX_KB;
        support_agent_embed_url http://127.0.0.1:$TEST_NGINX_KB_PORT/v1;
        support_agent_embed_model test-embed;
    }
--- request
GET /hybrid?q=return+window
--- response_body_like: "dense":false,.*"hits":\[\{
--- error_log
has no vectors (kb-build --embed); BM25 only



=== TEST 10: the rerank endpoint, Cohere v2: its order and its scores
--- config
    location = /rr {
        support_agent_search;
        support_agent_kb $TEST_NGINX_DENSE_KB;
        support_agent_embed_url http://127.0.0.1:$TEST_NGINX_KB_PORT/v1;
        support_agent_embed_model test-embed;
        support_agent_rerank_url http://127.0.0.1:$TEST_NGINX_KB_PORT/v2/rerank;
        support_agent_rerank_model test-rerank;
    }
--- request
GET /rr?q=Can+I+call+off+my+purchase&k=2
--- response_body_like: "reranker":"endpoint","degraded":false\},"hits":\[\{"chunk":\d+,"document":"orders/cancel-an-order",[^{]*"score":0\.9\d*,
--- no_error_log
[warn]



=== TEST 11: the rerank endpoint, TEI
--- config
    location = /rr {
        support_agent_search;
        support_agent_kb $TEST_NGINX_DENSE_KB;
        support_agent_rerank_url http://127.0.0.1:$TEST_NGINX_KB_PORT/rerank;
    }
--- request
GET /rr?q=How+do+I+cancel+an+order&k=1
--- response_body_like: "reranker":"endpoint","degraded":false\},"hits":\[\{"chunk":\d+,"document":"orders/cancel-an-order"
--- no_error_log
[warn]



=== TEST 12: the rerank endpoint times out: the built-in reranker
--- config
    location = /rr {
        support_agent_search;
        support_agent_kb $TEST_NGINX_DENSE_KB;
        support_agent_rerank_url http://127.0.0.1:$TEST_NGINX_KB_PORT/hang=5/v2/rerank;
        support_agent_rerank_model test-rerank;
        support_agent_rerank_timeout 300ms;
    }
--- request
GET /rr?q=How+do+I+cancel+an+order&k=3
--- response_body_like: "reranker":"built-in","degraded":true\},"hits":\[.*"document":"orders/cancel-an-order"
--- error_log eval
qr/\[warn\] .*rerank request failed after \d+ ms: .*; using the built-in reranker/
--- timeout: 3



=== TEST 13: the rerank endpoint errs: the built-in reranker
--- config
    location = /e500 {
        support_agent_search;
        support_agent_kb $TEST_NGINX_DENSE_KB;
        support_agent_rerank_url http://127.0.0.1:$TEST_NGINX_KB_PORT/fail=500/v2/rerank;
        support_agent_rerank_model test-rerank;
    }
--- request
GET /e500?q=How+do+I+cancel+an+order&k=3
--- response_body_like: "reranker":"built-in","degraded":true\},"hits":\[.*"document":"orders/cancel-an-order"
--- error_log eval
qr/\[warn\] .*rerank service answered 500: .*; using the built-in reranker/



=== TEST 14: the rerank endpoint answers nonsense: the built-in reranker
--- config
    location = /bad {
        support_agent_search;
        support_agent_kb $TEST_NGINX_DENSE_KB;
        support_agent_rerank_url http://127.0.0.1:$TEST_NGINX_KB_PORT/badjson/rerank;
    }
--- request
GET /bad?q=How+do+I+cancel+an+order&k=3
--- response_body_like: "reranker":"built-in","degraded":true\},"hits":\[.*"document":"orders/cancel-an-order"
--- error_log eval
qr/\[warn\] .*invalid rerank reply: .*; using the built-in reranker/



=== TEST 15: a turn with both services: the extractive answer cites the paraphrased article
--- config
    location = /chat {
        support_agent;
        support_agent_kb $TEST_NGINX_DENSE_KB;
        support_agent_embed_url http://127.0.0.1:$TEST_NGINX_KB_PORT/v1;
        support_agent_embed_model test-embed;
        support_agent_rerank_url http://127.0.0.1:$TEST_NGINX_KB_PORT/v2/rerank;
        support_agent_rerank_model test-rerank;
    }
--- request
POST /chat
{"message": "Can I call off my purchase?"}
--- more_headers
Content-Type: application/json
--- response_body_like: "reply":"[^"]*cancel[^"]*".*"citations":\[\{"index":1,"document":"orders/cancel-an-order"
--- no_error_log
[warn]



=== TEST 16: a turn with every service failing still answers from BM25
--- config
    location = /chat {
        support_agent;
        support_agent_kb $TEST_NGINX_DENSE_KB;
        support_agent_embed_url http://127.0.0.1:$TEST_NGINX_KB_PORT/fail=503/v1;
        support_agent_embed_model test-embed;
        support_agent_rerank_url http://127.0.0.1:$TEST_NGINX_KB_PORT/fail=503/v2/rerank;
        support_agent_rerank_model test-rerank;
    }
--- request
POST /chat
{"message": "How long is the return window in the EU store?"}
--- more_headers
Content-Type: application/json
--- response_body_like: "citations":\[\{"index":1,"document":"returns-and-refunds/return-policy-eu"
--- error_log
embeddings service answered 503
rerank service answered 503
--- no_error_log
[error]



=== TEST 17: the relevance threshold: a high one finds nothing, the agent says so
--- config
    location = /kb/search {
        support_agent_search;
        support_agent_kb $TEST_NGINX_DENSE_KB;
        support_agent_kb_min_relevance 0.99;
    }
    location = /chat {
        support_agent;
        support_agent_kb $TEST_NGINX_DENSE_KB;
        support_agent_kb_min_relevance 0.99;
    }
--- request eval
["GET /kb/search?q=gift+card+email+never+arrived", "POST /chat\n{\"message\":\"gift card email never arrived\"}"]
--- more_headers
Content-Type: application/json
--- response_body_like eval
[qr/"hits":\[\]\}$/, qr/"reply":"I'm sorry, I couldn't find anything about that in our help center\./]



=== TEST 18: a question that only shares common words is not answered
--- config
    location = /kb/search {
        support_agent_search;
        support_agent_kb $TEST_NGINX_DENSE_KB;
    }
--- request
GET /kb/search?q=what+is+the+weather+like+on+mars+today
--- response_body_like: "hits":\[\]\}$



=== TEST 19: fusion weights and k
--- config
    location = /lex {
        support_agent_search;
        support_agent_kb $TEST_NGINX_DENSE_KB;
        support_agent_embed_url http://127.0.0.1:$TEST_NGINX_KB_PORT/v1;
        support_agent_embed_model test-embed;
        support_agent_kb_fusion k=10 lexical=1 dense=0.001;
        support_agent_kb_candidates 3;
    }
    location = /dense {
        support_agent_search;
        support_agent_kb $TEST_NGINX_DENSE_KB;
        support_agent_embed_url http://127.0.0.1:$TEST_NGINX_KB_PORT/v1;
        support_agent_embed_model test-embed;
        support_agent_kb_fusion k=10 lexical=0.001 dense=1;
        support_agent_kb_candidates 3;
    }
--- request eval
["GET /lex?q=Can+I+call+off+my+purchase&k=3", "GET /dense?q=Can+I+call+off+my+purchase&k=3"]
--- response_body_like eval
[qr/"hits":\[\{"chunk":\d+,"document":"(?!orders\/cancel-an-order)/,
 qr/"hits":\[\{"chunk":\d+,"document":"orders\/cancel-an-order"/]



=== TEST 20: a client that leaves while the services are asked cancels them
--- config
    location = /chat {
        support_agent;
        support_agent_kb $TEST_NGINX_DENSE_KB;
        support_agent_embed_url http://127.0.0.1:$TEST_NGINX_KB_PORT/hang=3/v1;
        support_agent_embed_model test-embed;
        support_agent_embed_timeout 5s;
        support_agent_conversation_key $http_x_session;
    }
--- request
POST /chat
{"message": "Can I call off my purchase?"}
--- more_headers
Content-Type: application/json
Accept: text/event-stream
X-Session: retrieval-abort
--- timeout: 0.5
--- abort
--- ignore_response
--- wait: 0.3
--- error_log
client prematurely closed connection
--- no_error_log
[error]
[alert]



=== TEST 21: and the conversation is free for the next turn
--- config
    location = /chat {
        support_agent;
        support_agent_kb $TEST_NGINX_DENSE_KB;
        support_agent_embed_url http://127.0.0.1:$TEST_NGINX_KB_PORT/v1;
        support_agent_embed_model test-embed;
        support_agent_conversation_key $http_x_session;
    }
--- request
POST /chat
{"message": "Can I call off my purchase?"}
--- more_headers
Content-Type: application/json
X-Session: retrieval-abort
--- response_body_like: "citations":\[\{"index":1,"document":"orders/
--- no_error_log
[error]



=== TEST 22: bad queries: empty, too long, not UTF-8; a huge message still gets its turn
--- config
    location = /kb/search {
        support_agent_search;
        support_agent_kb $TEST_NGINX_DENSE_KB;
        support_agent_embed_url http://127.0.0.1:$TEST_NGINX_KB_PORT/v1;
        support_agent_embed_model test-embed;
        support_agent_rerank_url http://127.0.0.1:$TEST_NGINX_KB_PORT/rerank;
    }
    location = /chat {
        support_agent;
        support_agent_kb $TEST_NGINX_DENSE_KB;
        support_agent_embed_url http://127.0.0.1:$TEST_NGINX_KB_PORT/v1;
        support_agent_embed_model test-embed;
        support_agent_rerank_url http://127.0.0.1:$TEST_NGINX_KB_PORT/rerank;
    }
--- request eval
["GET /kb/search?q=", "GET /kb/search?q=" . ("refund+" x 700), "GET /kb/search?q=refund%C3%28",
 "POST /chat\n{\"message\":\"" . ("My parcel never arrived and I want a refund. " x 170) . "\"}"]
--- more_headers
Content-Type: application/json
--- error_code eval
[400, 400, 400, 200]
--- response_body_like eval
[qr/"the query parameter \\"q\\" is required"/, qr/must be UTF-8 text of at most 4096 bytes/,
 qr/must be UTF-8 text of at most 4096 bytes/, qr/"citations":\[\{"index":1,/]
--- no_error_log
[error]



=== TEST 23: nginx -t: an OpenAI-style embeddings URL needs a model
--- config
    location = /x {
        support_agent_search;
        support_agent_kb $TEST_NGINX_DENSE_KB;
        support_agent_embed_url http://127.0.0.1:1/v1;
    }
--- must_die
--- error_log
"support_agent_embed_model" is required when "support_agent_embed_url" is an OpenAI-compatible endpoint



=== TEST 24: nginx -t: a Cohere-style rerank URL needs a model
--- config
    location = /x {
        support_agent_search;
        support_agent_kb $TEST_NGINX_DENSE_KB;
        support_agent_rerank_url https://api.cohere.com/v2/rerank;
    }
--- must_die
--- error_log
"support_agent_rerank_model" is required when "support_agent_rerank_url" is a Cohere-style endpoint



=== TEST 25: nginx -t: bad fusion parameters
--- config
    location = /x {
        support_agent_search;
        support_agent_kb $TEST_NGINX_DENSE_KB;
        support_agent_kb_fusion k=0 dense=2;
    }
--- must_die
--- error_log
invalid value in "k=0" of "support_agent_kb_fusion"



=== TEST 26: nginx -t: a key pasted into nginx.conf is refused and not repeated
--- config
    location = /x {
        support_agent_search;
        support_agent_kb $TEST_NGINX_DENSE_KB;
        support_agent_rerank_url http://127.0.0.1:1/rerank;
        support_agent_rerank_api_key sk-secret-1234;
    }
--- must_die
--- error_log
invalid value in "support_agent_rerank_api_key", expected "env=NAME" or "file=PATH"
--- no_error_log
sk-secret-1234



=== TEST 27: nginx -t: a URL that is not http(s)
--- config
    location = /x {
        support_agent_search;
        support_agent_kb $TEST_NGINX_DENSE_KB;
        support_agent_embed_url ftp://x/embed;
    }
--- must_die
--- error_log
invalid URL "ftp://x/embed" in "support_agent_embed_url": must start with http:// or https://
