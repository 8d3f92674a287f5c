# What the agent does when the LLM misbehaves: retries with backoff that
# honour retry-after, timeouts, broken and truncated streams, error bodies.
# The customer always gets a clear answer; the log says what happened.

use Test::Nginx::Socket 'no_plan';
use SupportAgent::Test;

no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;

    if (defined $block->scenario && !defined $block->config) {
        my $scenario = $block->scenario;
        my $extra = $block->directives // "";
        $block->set_value("config", <<_EOC_);
    location = /chat {
        support_agent;
        support_agent_llm_url http://127.0.0.1:\$TEST_NGINX_LLM_PORT/$scenario/v1;
        support_agent_llm_model test-model;
        support_agent_llm_retry_backoff 50ms;
        $extra
    }
_EOC_
    }

    $block->set_value("request", "POST /chat\n{\"message\": \"hello\"}")
        unless defined $block->request;
    $block->set_value("more_headers", "Content-Type: application/json")
        unless defined $block->more_headers;
});

run_tests();

__DATA__

=== TEST 1: 429 with retry-after-ms, then a reply
--- scenario: fail=429:1,ra_ms=300
--- response_body_like: "reply":"You said: hello\. \(messages: 2\)"
--- error_log
LLM answered 429 rate_limit_exceeded
retry 1 in 300 ms
--- no_error_log
[error]



=== TEST 2: 503 with retry-after in seconds
--- scenario: fail=503:1,ra=1
--- response_body_like: "source":"llm"
--- error_log
retry 1 in 1000 ms
--- no_error_log
[error]



=== TEST 3: 500 twice, then a reply (exponential backoff)
--- scenario: fail=500:2
--- response_body_like: "source":"llm"
--- error_log
retry 1 in
retry 2 in
--- no_error_log
[error]



=== TEST 4: 500 every time: 502 after the retries
--- scenario: fail=500
--- directives: support_agent_llm_retries 2;
--- error_code: 502
--- response_body_like: ^\{"error":\{"code":"llm_unavailable","message":"Sorry, I can't answer right now\. Please try again in a moment\."\},"conversation_id":"c_[0-9a-f]{32}"\}$
--- error_log
support agent: LLM answered 500
(after 3 attempts)



=== TEST 5: no credits left is not retried
--- scenario: fail=429,code=insufficient_quota
--- error_code: 502
--- response_body_like: "code":"llm_unavailable"
--- error_log
LLM answered 429 insufficient_quota
(after 1 attempt)



=== TEST 6: a wrong API key is not retried
--- scenario: fail=401
--- error_code: 502
--- error_log
LLM answered 401 invalid_api_key
(after 1 attempt)



=== TEST 7: x-should-retry: false wins over the status
--- scenario: fail=503,should_retry=false
--- error_code: 502
--- error_log
(after 1 attempt)



=== TEST 8: an HTML error page from a proxy in front of the LLM
--- scenario: html_error=502:1
--- response_body_like: "source":"llm"
--- error_log
LLM answered 502



=== TEST 9: nothing listens at the LLM's address
--- config
    location = /chat {
        support_agent;
        support_agent_llm_url http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/v1;
        support_agent_llm_model test-model;
        support_agent_llm_retries 1;
        support_agent_llm_retry_backoff 50ms;
    }
--- error_code: 502
--- response_body_like: "code":"llm_unavailable"
--- error_log
LLM request failed:
(after 2 attempts)



=== TEST 10: the connection is reset before any text reached the client: retried
--- scenario: reset_after=2
--- directives: support_agent_llm_retries 1;
--- error_code: 502
--- error_log
LLM request failed:
(after 2 attempts)



=== TEST 11: a stream that ends without [DONE]
--- scenario: truncate_after=2
--- directives: support_agent_llm_retries 0;
--- error_code: 502
--- error_log
LLM stream ended without [DONE]



=== TEST 12: a cut HTTP body
--- scenario: cut_after=2
--- directives: support_agent_llm_retries 0;
--- error_code: 502
--- error_log
LLM request failed:



=== TEST 13: invalid JSON in the stream
--- scenario: badjson_after=1
--- directives: support_agent_llm_retries 0;
--- error_code: 502
--- error_log
LLM stream failed:



=== TEST 14: an error object inside a 200 stream
--- scenario: error_after=1
--- directives: support_agent_llm_retries 0;
--- error_code: 502
--- error_log
LLM stream failed:



=== TEST 15: an LLM that never answers: idle timeout
--- scenario: hang=5
--- directives: support_agent_llm_retries 0; support_agent_llm_idle_timeout 300ms;
--- error_code: 502
--- error_log
no data from the LLM for 300 ms



=== TEST 16: a stream that takes too long in total
--- scenario: tokens=50,token_ms=100
--- directives: support_agent_llm_timeout 700ms;
--- error_code: 504
--- response_body_like: "code":"llm_unavailable"
--- error_log
took longer than support_agent_llm_timeout (700 ms)



=== TEST 17: retry-after beyond the total time limit is not waited for
--- scenario: fail=429,ra=30
--- directives: support_agent_llm_timeout 2s;
--- error_code: 502
--- error_log
no time left for a retry in 30000 ms
(after 1 attempt)



=== TEST 18: a failed turn saves nothing
--- config
    location = /chat {
        support_agent;
        support_agent_llm_url http://127.0.0.1:$TEST_NGINX_LLM_PORT/v1;
        support_agent_llm_model test-model;
        support_agent_conversation_key $http_x_session;
    }
    location = /chat-broken {
        support_agent;
        support_agent_llm_url http://127.0.0.1:$TEST_NGINX_LLM_PORT/fail=500/v1;
        support_agent_llm_model test-model;
        support_agent_llm_retries 0;
        support_agent_conversation_key $http_x_session;
    }
--- more_headers
Content-Type: application/json
X-Session: faults-t18
--- request eval
["POST /chat\n{\"message\": \"one\"}",
 "POST /chat-broken\n{\"message\": \"lost\"}",
 "POST /chat\n{\"message\": \"two\"}"]
--- error_code eval
[200, 502, 200]
--- response_body_like eval
[qr/"reply":"You said: one\. \(messages: 2\)"/,
 qr/"code":"llm_unavailable"/,
 qr/"reply":"You said: two\. \(messages: 4\)"/]



=== TEST 19: an empty reply is a failed attempt
--- scenario: tokens=0
--- directives: support_agent_llm_retries 1;
--- error_code: 502
--- response_body_like: "code":"llm_unavailable"
--- error_log
LLM sent no text (finish_reason "stop")
(after 2 attempts)
