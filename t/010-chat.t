# Chat turns answered by an OpenAI-compatible LLM (t/llm_server.py), JSON
# replies; what the LLM receives is checked against the published schema by
# the test server itself (an invalid request would be answered with 400).

use Test::Nginx::Socket 'no_plan';
use SupportAgent::Test;

$ENV{SA_TEST_ENV_KEY} = 'sk-env-key-456';

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a reply from the LLM
--- config
    location = /chat {
        support_agent;
        support_agent_llm_url http://127.0.0.1:$TEST_NGINX_LLM_PORT/v1;
        support_agent_llm_model test-model;
    }
--- request
POST /chat
{"message": "Where is my order?"}
--- more_headers
Content-Type: application/json
--- response_body_like: ^\{"conversation_id":"c_[0-9a-f]{32}","reply":"You said: Where is my order\?\. \(messages: 2\)","finish_reason":"stop","source":"llm"\}$
--- no_error_log
[error]
[warn]



=== TEST 2: what the LLM received: model, system prompt, stream, limits, key
--- config
    location = /chat {
        support_agent;
        support_agent_llm_url http://127.0.0.1:$TEST_NGINX_LLM_PORT/v1;
        support_agent_llm_model test-model;
        support_agent_llm_api_key file=../html/llm.key;
        support_agent_llm_max_tokens 64;
        support_agent_llm_temperature 0.5;
        support_agent_system_prompt ../html/system.txt;
    }
    location = /llm-log {
        proxy_pass http://127.0.0.1:$TEST_NGINX_LLM_PORT/_requests?last=1;
    }
--- user_files
>>> llm.key
sk-test-123
>>> system.txt
You are the support assistant of Example Shop.
--- request eval
["POST /chat\n{\"message\": \"Hi there\"}", "GET /llm-log"]
--- more_headers
Content-Type: application/json
--- response_body_like eval
[qr/"reply":"You said: Hi there\. \(messages: 2\)"/,
 qr/"path":"\/v1\/chat\/completions".*"authorization":"Bearer sk-test-123".*"body":\{"model":"test-model","messages":\[\{"role":"system","content":"You are the support assistant of Example Shop\."\},\{"role":"user","content":"Hi there"\}\],"max_tokens":64,"temperature":0\.5,"stream":true,"stream_options":\{"include_usage":true\}\},"valid":true/]
--- no_error_log
[error]
sk-test-123



=== TEST 3: the API key from the environment; max_completion_tokens
--- config
    location = /chat {
        support_agent;
        support_agent_llm_url http://127.0.0.1:$TEST_NGINX_LLM_PORT/v1/chat/completions;
        support_agent_llm_model test-model;
        support_agent_llm_api_key env=SA_TEST_ENV_KEY;
        support_agent_llm_max_tokens_field max_completion_tokens;
        support_agent_llm_temperature off;
    }
    location = /llm-log {
        proxy_pass http://127.0.0.1:$TEST_NGINX_LLM_PORT/_requests?last=1;
    }
--- request eval
["POST /chat\n{\"message\": \"Hi\"}", "GET /llm-log"]
--- more_headers
Content-Type: application/json
--- response_body_like eval
[qr/"source":"llm"/,
 qr/"authorization":"Bearer sk-env-key-456".*"max_completion_tokens":512,"stream":true,"stream_options":\{"include_usage":true\}\},"valid":true/]
--- response_body_unlike eval
[qr/^$/, qr/temperature|"max_tokens"/]
--- no_error_log
[error]
sk-env-key-456



=== TEST 4: a conversation keeps its history
--- config
    location = /chat {
        support_agent;
        support_agent_llm_url http://127.0.0.1:$TEST_NGINX_LLM_PORT/v1;
        support_agent_llm_model test-model;
        support_agent_conversation_key $http_x_session;
    }
--- more_headers
Content-Type: application/json
X-Session: chat-t4
--- request eval
["POST /chat\n{\"message\": \"one\"}",
 "POST /chat\n{\"message\": \"two\"}",
 "POST /chat\n{\"message\": \"three\"}"]
--- response_body_like eval
[qr/^\{"conversation_id":"k_[0-9a-f]{32}","reply":"You said: one\. \(messages: 2\)"/,
 qr/^\{"conversation_id":"k_[0-9a-f]{32}","reply":"You said: two\. \(messages: 4\)"/,
 qr/^\{"conversation_id":"k_[0-9a-f]{32}","reply":"You said: three\. \(messages: 6\)"/]
--- no_error_log
[error]



=== TEST 5: the history sent to the LLM is bounded
--- config
    location = /chat {
        support_agent;
        support_agent_llm_url http://127.0.0.1:$TEST_NGINX_LLM_PORT/v1;
        support_agent_llm_model test-model;
        support_agent_conversation_key $http_x_session;
        support_agent_history 2;
    }
    location = /llm-log {
        proxy_pass http://127.0.0.1:$TEST_NGINX_LLM_PORT/_requests?last=1;
    }
--- more_headers
Content-Type: application/json
X-Session: chat-t5
--- request eval
["POST /chat\n{\"message\": \"one\"}",
 "POST /chat\n{\"message\": \"two\"}",
 "POST /chat\n{\"message\": \"three\"}",
 "GET /llm-log"]
--- response_body_like eval
[qr/"reply":"You said: one\. \(messages: 2\)"/,
 qr/"reply":"You said: two\. \(messages: 4\)"/,
 qr/"reply":"You said: three\. \(messages: 4\)"/,
 qr/"messages":\[\{"role":"system","content":"[^"]*"\},\{"role":"user","content":"two"\},\{"role":"assistant","content":"You said: two\. \(messages: 4\)"\},\{"role":"user","content":"three"\}\]/]
--- no_error_log
[error]



=== TEST 6: a conversation id from the reply continues the conversation
--- config
    location = /chat {
        support_agent;
        support_agent_llm_url http://127.0.0.1:$TEST_NGINX_LLM_PORT/v1;
        support_agent_llm_model test-model;
        support_agent_conversation_key $http_x_session;
    }
    location = /chat-by-id {
        support_agent;
        support_agent_llm_url http://127.0.0.1:$TEST_NGINX_LLM_PORT/v1;
        support_agent_llm_model test-model;
    }
--- more_headers
Content-Type: application/json
X-Session: chat-t6
--- request eval
use Digest::SHA qw(sha1_hex);
my $id = "k_" . substr(sha1_hex("ngx_support_agent:chat-t6"), 0, 32);
["POST /chat\n{\"message\": \"one\"}",
 "POST /chat-by-id\n{\"message\": \"two\", \"conversation_id\": \"$id\"}"]
--- response_body_like eval
[qr/"reply":"You said: one\. \(messages: 2\)"/,
 qr/"reply":"You said: two\. \(messages: 4\)"/]
--- no_error_log
[error]



=== TEST 7: multi-byte text survives the round trip
--- config
    location = /chat {
        support_agent;
        support_agent_llm_url http://127.0.0.1:$TEST_NGINX_LLM_PORT/unicode/v1;
        support_agent_llm_model test-model;
    }
--- request
POST /chat
{"message": "Grüße aus Köln"}
--- more_headers
Content-Type: application/json
--- response_body_like: "reply":"Grüße — 日本語 ✓ 🎉 You said: Grüße aus Köln\. \(messages: 2\)"
--- no_error_log
[error]



=== TEST 8: provider variations are read alike
--- config eval
my $i = 0;
join "", map {
    $i++;
    "location = /chat/$i {
        support_agent;
        support_agent_llm_url http://127.0.0.1:\$TEST_NGINX_LLM_PORT/$_/v1;
        support_agent_llm_model test-model;
    }\n"
} ("crlf", "nospace", "comments", "drip=3", "usage_in_choices", "no_usage",
   "nonstream", "escape_unicode", "crlf,comments,drip=5");
--- more_headers
Content-Type: application/json
--- request eval
[map { "POST /chat/$_\n{\"message\": \"hello\"}" } 1 .. 9]
--- response_body_like eval
[map { qr/"reply":"You said: hello\. \(messages: 2\)","finish_reason":"stop","source":"llm"/ } 1 .. 9]
--- no_error_log
[error]
