# Qdrant for scale, against the Qdrant REST server of t/kb_server.py: the
# collection kb-build wrote, one hybrid /points/query (dense and BM25
# sparse prefetches fused by RRF, the filters inside each prefetch), the
# texts from the LMDB cache or one retrieve of the missing points, the API
# key, and the fall back to the embedded index when Qdrant fails.

use Test::Nginx::Socket 'no_plan';
use SupportAgent::Test;
use File::Temp qw(tempdir);

my $repo = SupportAgent::Test::repo_root();
my $dir = tempdir('sa-qdrant-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $kb = "http://127.0.0.1:$ENV{TEST_NGINX_KB_PORT}";

system("$repo/build/kb-build", 'index', '--out', "$dir/help.kb",
       '--markdown', "$repo/kb-build/sample-helpcenter", '--quiet',
       '--embed', "$kb/v1", '--embed-model', 'test-embed',
       '--qdrant', $kb, '--collection', 'help') == 0
    or die "kb-build --qdrant failed\n";

$ENV{TEST_NGINX_QDRANT_KB} = "$dir/help.kb";
$ENV{SA_TEST_QDRANT_KEY} = 'qk-test-1234';

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a paraphrase through Qdrant's hybrid query, reranked
--- config
    location = /q {
        support_agent_search;
        support_agent_embed_url http://127.0.0.1:$TEST_NGINX_KB_PORT/v1;
        support_agent_embed_model test-embed;
        support_agent_rerank_url http://127.0.0.1:$TEST_NGINX_KB_PORT/v2/rerank;
        support_agent_rerank_model test-rerank;
        support_agent_qdrant_url http://127.0.0.1:$TEST_NGINX_KB_PORT;
        support_agent_qdrant_collection help;
    }
--- request
GET /q?q=Can+I+call+off+my+purchase&k=3
--- response_body_like: "retrieval":\{"index":"qdrant","dense":true,"reranker":"endpoint","degraded":false\},"hits":\[\{"chunk":\d+,"document":"orders/cancel-an-order"
--- no_error_log
[warn]



=== TEST 2: BM25 alone as Qdrant's sparse vectors ranks like the embedded index
--- config
    location = /q {
        support_agent_search;
        support_agent_qdrant_url http://127.0.0.1:$TEST_NGINX_KB_PORT;
        support_agent_qdrant_collection help;
    }
    location = /local {
        support_agent_search;
        support_agent_kb $TEST_NGINX_QDRANT_KB;
    }
--- request eval
["GET /q?q=What+does+error+4217+mean&k=2", "GET /local?q=What+does+error+4217+mean&k=2"]
--- response_body_like eval
[qr/"retrieval":\{"index":"qdrant","dense":false,"reranker":"built-in","degraded":false\},"hits":\[\{"chunk":\d+,"document":"(billing\/payment-declined|troubleshooting\/error-4217-payment-authorization-expired)".*"document":"(billing\/payment-declined|troubleshooting\/error-4217-payment-authorization-expired)"/,
 qr/"retrieval":\{"index":"embedded","dense":false,"reranker":"built-in","degraded":false\},"hits":\[\{"chunk":\d+,"document":"(billing\/payment-declined|troubleshooting\/error-4217-payment-authorization-expired)".*"document":"(billing\/payment-declined|troubleshooting\/error-4217-payment-authorization-expired)"/]



=== TEST 3: the filters go into every prefetch, and the query is ids only
--- config
    location = /q {
        support_agent_search;
        support_agent_embed_url http://127.0.0.1:$TEST_NGINX_KB_PORT/v1;
        support_agent_embed_model test-embed;
        support_agent_qdrant_url http://127.0.0.1:$TEST_NGINX_KB_PORT;
        support_agent_qdrant_collection help;
        support_agent_kb_filter product_area orders;
    }
    location /kbsvc/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_KB_PORT/;
    }
--- request eval
["GET /q?q=How+do+I+cancel+an+order&k=5",
 "GET /kbsvc/_requests?last=1&service=qdrant-query_points"]
--- response_body_like eval
[qr/"index":"qdrant".*"hits":\[\{"chunk":\d+,"document":"orders\//,
 qr/"body":\{"prefetch":\[\{"query":\[[^\]]+\],"using":"dense","filter":\{"must":\[\{"key":"product_area","match":\{"value":"orders"\}\}\]\},"limit":20\},\{"query":\{"indices":\[[^\]]+\],"values":\[[^\]]+\]\},"using":"sparse","filter":\{"must":\[\{"key":"product_area","match":\{"value":"orders"\}\}\]\},"limit":20\}\],"query":\{"rrf":\{"k":60,"weights":\[1,1\]\}\},"filter":\{"must":\[\{"key":"product_area","match":\{"value":"orders"\}\}\]\},"limit":20,"with_payload":false\},"valid":true/]



=== TEST 4: the texts are cached in LMDB: a second question fetches none
--- config
    location = /q {
        support_agent_search;
        support_agent_qdrant_url http://127.0.0.1:$TEST_NGINX_KB_PORT;
        support_agent_qdrant_collection help;
    }
    location /kbsvc/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_KB_PORT/;
    }
--- request eval
["DELETE /kbsvc/_requests",
 "GET /q?q=gift+card+expiry+date&k=3",
 "GET /q?q=gift+card+expiry+date&k=3",
 "GET /kbsvc/_requests?service=qdrant-get_points"]
--- response_body_like eval
[qr/"cleared":true/,
 qr/"index":"qdrant".*"document":"billing\/gift-cards"/,
 qr/"index":"qdrant".*"document":"billing\/gift-cards"/,
 qr/^\[\{"seq":\d+,(?:(?!"seq").)*"service":"qdrant-get_points"(?:(?!"seq").)*"valid":true(?:(?!"seq").)*\}\]$/s]



=== TEST 5: the API key goes in "api-key", and nowhere in the logs
--- main_config
    env SA_TEST_QDRANT_KEY;
--- config
    location = /q {
        support_agent_search;
        support_agent_qdrant_url http://127.0.0.1:$TEST_NGINX_KB_PORT;
        support_agent_qdrant_collection help;
        support_agent_qdrant_api_key env=SA_TEST_QDRANT_KEY;
    }
    location /kbsvc/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_KB_PORT/;
    }
--- request eval
["GET /q?q=return+window&k=1", "GET /kbsvc/_requests?last=1&service=qdrant-query_points"]
--- response_body_like eval
[qr/"index":"qdrant"/, qr/"api-key":"qk-test-1234"/]
--- no_error_log
qk-test-1234



=== TEST 6: Qdrant is down: the embedded index answers
--- config
    location = /q {
        support_agent_search;
        support_agent_kb $TEST_NGINX_QDRANT_KB;
        support_agent_qdrant_url http://127.0.0.1:$TEST_NGINX_KB_PORT/fail=503;
        support_agent_qdrant_collection help;
    }
--- request
GET /q?q=How+long+is+the+return+window+in+the+EU+store&k=1
--- response_body_like: "retrieval":\{"index":"embedded","dense":false,"reranker":"built-in","degraded":true\},"hits":\[\{"chunk":\d+,"document":"returns-and-refunds/return-policy-eu"
--- error_log eval
qr/\[warn\] .*Qdrant collection "help": qdrant service answered 503: .*; searching the embedded index/
--- no_error_log
[error]



=== TEST 7: Qdrant hangs: its time limit, then the embedded index
--- config
    location = /q {
        support_agent_search;
        support_agent_kb $TEST_NGINX_QDRANT_KB;
        support_agent_qdrant_url http://127.0.0.1:$TEST_NGINX_KB_PORT/hang=5;
        support_agent_qdrant_collection help;
        support_agent_qdrant_timeout 300ms;
    }
--- request
GET /q?q=return+window&k=1
--- response_body_like: "index":"embedded",.*"degraded":true\},"hits":\[\{
--- error_log eval
qr/\[warn\] .*qdrant request failed after \d+ ms/
--- timeout: 3



=== TEST 8: a collection that does not exist: Qdrant's message, then the embedded index
--- config
    location = /q {
        support_agent_search;
        support_agent_kb $TEST_NGINX_QDRANT_KB;
        support_agent_qdrant_url http://127.0.0.1:$TEST_NGINX_KB_PORT;
        support_agent_qdrant_collection nope;
    }
--- request
GET /q?q=return+window&k=1
--- response_body_like: "index":"embedded",.*"degraded":true\},"hits":\[\{
--- error_log
qdrant service answered 404: Not found: Collection `nope` doesn't exist!



=== TEST 9: Qdrant alone and down: the search says the KB is unavailable, a turn says it found nothing
--- config
    location = /q {
        support_agent_search;
        support_agent_qdrant_url http://127.0.0.1:$TEST_NGINX_KB_PORT/fail=503;
        support_agent_qdrant_collection help;
    }
    location = /chat {
        support_agent;
        support_agent_qdrant_url http://127.0.0.1:$TEST_NGINX_KB_PORT/fail=503;
        support_agent_qdrant_collection help;
    }
--- request eval
["GET /q?q=return+window", "POST /chat\n{\"message\":\"return window\"}"]
--- more_headers
Content-Type: application/json
--- error_code eval
[503, 200]
--- response_body_like eval
[qr/"code":"kb_unavailable"/, qr/"reply":"I'm sorry, I couldn't find anything about that/]
--- error_log eval
qr/\[error\] .*Qdrant collection "help": qdrant service answered 503/



=== TEST 10: a turn through Qdrant, answered from the cited chunk
--- config
    location = /chat {
        support_agent;
        support_agent_embed_url http://127.0.0.1:$TEST_NGINX_KB_PORT/embed;
        support_agent_qdrant_url http://127.0.0.1:$TEST_NGINX_KB_PORT;
        support_agent_qdrant_collection help;
    }
--- request
POST /chat
{"message": "What does error 4217 mean?"}
--- more_headers
Content-Type: application/json
--- response_body_like: "reply":"[^"]*4217.*"citations":\[\{"index":1,"document":"(billing/payment-declined|troubleshooting/error-4217-payment-authorization-expired)"
--- no_error_log
[warn]



=== TEST 11: a stream through Qdrant: citation events
--- config
    location = /chat {
        support_agent;
        support_agent_qdrant_url http://127.0.0.1:$TEST_NGINX_KB_PORT;
        support_agent_qdrant_collection help;
    }
--- request
POST /chat
{"message": "How do I reset my password?"}
--- more_headers
Content-Type: application/json
Accept: text/event-stream
--- response_body_like: event: citation\ndata: \{"index":1,"document":"account/reset-your-password".*event: done\n
--- no_error_log
[warn]



=== TEST 12: nginx -t: a Qdrant URL needs a collection
--- config
    location = /q {
        support_agent_search;
        support_agent_qdrant_url http://127.0.0.1:1;
    }
--- must_die
--- error_log
"support_agent_qdrant_collection" is required when "support_agent_qdrant_url" is set



=== TEST 13: nginx -t: a collection name that would not be a path segment
--- config
    location = /q {
        support_agent_search;
        support_agent_qdrant_url http://127.0.0.1:1;
        support_agent_qdrant_collection ../help;
    }
--- must_die
--- error_log
invalid collection name "../help" in "support_agent_qdrant_collection"
