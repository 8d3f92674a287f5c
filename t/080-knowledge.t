# Answers from the knowledge base (kb-build/sample-helpcenter, built into
# $TEST_NGINX_KB): the search endpoint, grounded LLM answers with
# citations, extractive answers without an LLM or when it fails, "nothing
# found", filters, freshness.

use Test::Nginx::Socket 'no_plan';
use SupportAgent::Test;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: search: the best hit for a question
--- config
    location = /kb/search {
        support_agent_search;
        support_agent_kb $TEST_NGINX_KB;
    }
--- request
GET /kb/search?q=How+long+is+the+return+window+in+the+EU+store&k=3
--- response_headers
Content-Type: application/json
--- response_body_like: ^\{"query":"How long is the return window in the EU store","retrieval":\{"index":"embedded","dense":false,"reranker":"built-in","degraded":false\},"hits":\[\{"chunk":\d+,"document":"returns-and-refunds/return-policy-eu","title":"Return policy \(EU store\)","section":"[^"]*",.*"metadata":\{"product_area":"returns-and-refunds","doc_type":"policy",.*"region":"eu"
--- no_error_log
[error]



=== TEST 2: search: a region filter from the query string
--- config
    location = /kb/search {
        support_agent_search;
        support_agent_kb $TEST_NGINX_KB;
    }
--- request
GET /kb/search?q=return+window&region=us&k=1
--- response_body_like: "hits":\[\{"chunk":\d+,"document":"returns-and-refunds/return-policy-us"
--- no_error_log
[error]



=== TEST 3: search: bad requests
--- config
    location = /kb/search {
        support_agent_search;
        support_agent_kb $TEST_NGINX_KB;
    }
--- request eval
["GET /kb/search", "GET /kb/search?q=refund&k=0", "POST /kb/search?q=refund\nx",
 "GET /kb/search?q=%ff%fe"]
--- error_code eval
[400, 400, 405, 400]
--- response_body_like eval
[qr/"code":"invalid_request","message":"the query parameter \\"q\\" is required"/,
 qr/"k\\" must be from 1 to 50/, qr/"code":"method_not_allowed"/,
 qr/must be UTF-8 text/]



=== TEST 4: search: nothing matches
--- config
    location = /kb/search {
        support_agent_search;
        support_agent_kb $TEST_NGINX_KB;
    }
--- request
GET /kb/search?q=xyzzy+plugh
--- response_body
{"query":"xyzzy plugh","retrieval":{"index":"embedded","dense":false,"reranker":"built-in","degraded":false},"hits":[]}



=== TEST 5: no LLM: the answer is taken from the best source, cited
--- config
    location = /chat {
        support_agent;
        support_agent_kb $TEST_NGINX_KB;
    }
--- request
POST /chat
{"message": "How long is the return window in the EU store"}
--- more_headers
Content-Type: application/json
--- response_body_like: ^\{"conversation_id":"c_[0-9a-f]{32}","reply":"[^"]+","citations":\[\{"index":1,"document":"returns-and-refunds/return-policy-eu","title":"Return policy \(EU store\)","section":"[^"]*","url":"[^"]+","stale":false\}\],"finish_reason":"stop","source":"kb"\}$
--- no_error_log
[error]



=== TEST 6: no LLM: nothing relevant, so no guess
--- config
    location = /chat {
        support_agent;
        support_agent_kb $TEST_NGINX_KB;
    }
--- request
POST /chat
{"message": "xyzzy plugh"}
--- more_headers
Content-Type: application/json
--- response_body_like: ^\{"conversation_id":"c_[0-9a-f]{32}","reply":"I'm sorry, I couldn't find anything about that in our help center\. A member of our support team will be happy to help you\.","citations":\[\],"finish_reason":"stop","source":"kb"\}$



=== TEST 7: the LLM gets numbered sources and the reply cites what it names
--- config
    location = /chat {
        support_agent;
        support_agent_kb $TEST_NGINX_KB;
        support_agent_kb_top_k 3;
        support_agent_llm_url http://127.0.0.1:$TEST_NGINX_LLM_PORT/reply=You%20have%2030%20days%20%5B1%5D./v1;
        support_agent_llm_model test-model;
    }
    location = /llm-log {
        proxy_pass http://127.0.0.1:$TEST_NGINX_LLM_PORT/_requests?last=1;
    }
--- more_headers
Content-Type: application/json
--- request eval
["POST /chat\n{\"message\": \"How long is the return window in the EU store\"}",
 "GET /llm-log"]
--- response_body_like eval
[qr/^\{"conversation_id":"c_[0-9a-f]{32}","reply":"You have 30 days \[1\]\.","citations":\[\{"index":1,"document":"returns-and-refunds\/return-policy-eu"[^\]]*\}\],"finish_reason":"stop","source":"llm"\}$/,
 qr/"role":"system","content":"You are the customer support assistant[^"]*Answer only from the help-center sources below\.[^"]*Sources:\\n\\n\[1\] Return policy \(EU store\) (?:\\u2014|—) [^"]*[^"]*\[2\] [^"]*\[3\] /]
--- no_error_log
[error]



=== TEST 8: as a stream: deltas, then citation events, then done
--- config
    location = /chat {
        support_agent;
        support_agent_kb $TEST_NGINX_KB;
        support_agent_kb_top_k 2;
        support_agent_llm_url http://127.0.0.1:$TEST_NGINX_LLM_PORT/v1;
        support_agent_llm_model test-model;
    }
--- request
POST /chat
{"message": "How long is the return window in the EU store"}
--- more_headers
Content-Type: application/json
Accept: text/event-stream
--- response_body_like: ^event: meta\n[^\n]+\n\n(?:event: delta\n[^\n]+\n\n)+event: citation\ndata: \{"index":1,[^\n]+\n\nevent: citation\ndata: \{"index":2,[^\n]+\n\nevent: done\n
--- no_error_log
[error]



=== TEST 9: the LLM is down: the answer comes from the knowledge base
--- config
    location = /chat {
        support_agent;
        support_agent_kb $TEST_NGINX_KB;
        support_agent_llm_url http://127.0.0.1:$TEST_NGINX_LLM_PORT/fail=503/v1;
        support_agent_llm_model test-model;
        support_agent_llm_retries 0;
    }
--- request
POST /chat
{"message": "How long is the return window in the EU store"}
--- more_headers
Content-Type: application/json
--- response_body_like: "reply":"[^"]+","citations":\[\{"index":1,"document":"returns-and-refunds/return-policy-eu".*"source":"kb"\}$
--- error_log
answering conversation
from the knowledge base without the LLM



=== TEST 10: filters from the request, and a directive that wins over them
--- config
    location = /chat {
        support_agent;
        support_agent_kb $TEST_NGINX_KB;
        support_agent_kb_top_k 1;
    }
    location = /chat-eu {
        support_agent;
        support_agent_kb $TEST_NGINX_KB;
        support_agent_kb_top_k 1;
        support_agent_kb_filter region $http_x_region;
    }
--- more_headers
Content-Type: application/json
X-Region: eu
--- request eval
["POST /chat\n{\"message\": \"How long is the return window?\", \"filters\": {\"region\": \"us\"}}",
 "POST /chat-eu\n{\"message\": \"How long is the return window?\", \"filters\": {\"region\": \"us\"}}"]
--- response_body_like eval
[qr/"document":"returns-and-refunds\/return-policy-us"/,
 qr/"document":"returns-and-refunds\/return-policy-eu"/]



=== TEST 11: no knowledge base file: nginx -t fails
--- config
    location = /chat {
        support_agent;
        support_agent_kb ../html/missing.kb;
    }
--- must_die
--- error_log
cannot open knowledge base



=== TEST 12: a search location without a knowledge base
--- config
    location = /kb/search {
        support_agent_search;
    }
--- must_die
--- error_log
"support_agent_search" needs "support_agent_kb"



=== TEST 13: an unknown filter
--- config
    location = /chat {
        support_agent;
        support_agent_kb $TEST_NGINX_KB;
        support_agent_kb_filter colour blue;
    }
--- must_die
--- error_log
unknown filter "colour" in "support_agent_kb_filter", expected product_area, version, tier or region
