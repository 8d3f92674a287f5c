# The reply as a Server-Sent Events stream: meta, deltas as tokens arrive,
# heartbeats, done; errors after the stream began arrive as an event.

use Test::Nginx::Socket 'no_plan';
use SupportAgent::Test;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: meta, several deltas, done
--- config
    location = /chat {
        support_agent;
        support_agent_llm_url http://127.0.0.1:$TEST_NGINX_LLM_PORT/token_ms=30/v1;
        support_agent_llm_model test-model;
    }
--- request
POST /chat
{"message": "Where is my parcel?"}
--- more_headers
Content-Type: application/json
Accept: text/event-stream
--- response_headers
Content-Type: text/event-stream; charset=utf-8
Cache-Control: no-cache
X-Accel-Buffering: no
!Content-Length
--- response_body_like: ^event: meta\ndata: \{"conversation_id":"c_[0-9a-f]{32}","new":true\}\n\n(?:event: delta\ndata: \{"text":"[^"]+"\}\n\n){3,}event: done\ndata: \{"conversation_id":"c_[0-9a-f]{32}","finish_reason":"stop","source":"llm"\}\n\n$
--- no_error_log
[error]



=== TEST 2: the deltas add up to the reply
--- config
    location = /chat {
        support_agent;
        support_agent_llm_url http://127.0.0.1:$TEST_NGINX_LLM_PORT/token_ms=20,unicode/v1;
        support_agent_llm_model test-model;
    }
--- request
POST /chat
{"message": "hello"}
--- more_headers
Content-Type: application/json
Accept: text/event-stream
--- response_body_like eval
# any split of the text into deltas matches
my $sep = '(?:"\}\n\nevent: delta\ndata: \{"text":")?';
my $text = "Grüße — 日本語 ✓ 🎉 You said: hello. (messages: 2)";
'\n\nevent: delta\ndata: \{"text":"'
    . join($sep, map { quotemeta } split //, $text)
    . '"\}\n\nevent: done\n'
--- no_error_log
[error]



=== TEST 3: heartbeats keep a quiet stream alive
--- config
    location = /chat {
        support_agent;
        support_agent_llm_url http://127.0.0.1:$TEST_NGINX_LLM_PORT/first_ms=700/v1;
        support_agent_llm_model test-model;
        support_agent_heartbeat 200ms;
    }
--- request
POST /chat
{"message": "hello"}
--- more_headers
Content-Type: application/json
Accept: text/event-stream
--- response_body_like: ^event: meta\n[^\n]+\n\n(?:: ping\n\n){2,}event: delta\n
--- no_error_log
[error]



=== TEST 4: the finish reason reaches the client
--- config
    location = /chat {
        support_agent;
        support_agent_llm_url http://127.0.0.1:$TEST_NGINX_LLM_PORT/finish=length/v1;
        support_agent_llm_model test-model;
    }
--- request
POST /chat
{"message": "hello"}
--- more_headers
Content-Type: application/json
Accept: text/event-stream
--- response_body_like: event: done\ndata: \{"conversation_id":"c_[0-9a-f]{32}","finish_reason":"length","source":"llm"\}\n\n$



=== TEST 5: the LLM fails before any text: an error event after meta
--- config
    location = /chat {
        support_agent;
        support_agent_llm_url http://127.0.0.1:$TEST_NGINX_LLM_PORT/fail=500/v1;
        support_agent_llm_model test-model;
        support_agent_llm_retries 1;
        support_agent_llm_retry_backoff 50ms;
    }
--- request
POST /chat
{"message": "hello"}
--- more_headers
Content-Type: application/json
Accept: text/event-stream
--- error_code: 200
--- response_body_like: ^event: meta\n[^\n]+\n\nevent: error\ndata: \{"error":\{"code":"llm_unavailable","message":"Sorry, I can't answer right now\. Please try again in a moment\."\},"conversation_id":"c_[0-9a-f]{32}"\}\n\n$
--- error_log
support agent: LLM answered 500
(after 2 attempts)



=== TEST 6: the LLM connection breaks after text was sent: no retry
--- config
    location = /chat {
        support_agent;
        support_agent_llm_url http://127.0.0.1:$TEST_NGINX_LLM_PORT/reset_after=3,token_ms=20/v1;
        support_agent_llm_model test-model;
        support_agent_llm_retries 2;
    }
--- request
POST /chat
{"message": "hello"}
--- more_headers
Content-Type: application/json
Accept: text/event-stream
--- response_body_like: ^event: meta\n[^\n]+\n\n(?:event: delta\n[^\n]+\n\n)+event: error\ndata: \{"error":\{"code":"llm_unavailable"
--- error_log
(after 1 attempt)



=== TEST 7: a client that leaves mid-stream cancels the LLM call
--- config
    location = /chat {
        support_agent;
        support_agent_llm_url http://127.0.0.1:$TEST_NGINX_LLM_PORT/tokens=20,token_ms=1500/v1;
        support_agent_llm_model test-model;
        support_agent_conversation_key $http_x_session;
    }
--- request
POST /chat
{"message": "hello"}
--- more_headers
Content-Type: application/json
Accept: text/event-stream
X-Session: sse-t7
--- timeout: 0.6
--- abort
--- ignore_response
--- wait: 0.3
--- error_log
client prematurely closed connection
--- no_error_log
[error]
[alert]



=== TEST 8: the LLM saw the client leave, and the conversation is free again
--- config
    location = /chat {
        support_agent;
        support_agent_llm_url http://127.0.0.1:$TEST_NGINX_LLM_PORT/v1;
        support_agent_llm_model test-model;
        support_agent_conversation_key $http_x_session;
    }
    location = /llm-log {
        proxy_pass http://127.0.0.1:$TEST_NGINX_LLM_PORT/_requests?last=1;
    }
--- more_headers
Content-Type: application/json
X-Session: sse-t7
--- request eval
["GET /llm-log", "POST /chat\n{\"message\": \"again\"}"]
--- response_body_like eval
[qr/"scenario":"tokens=20,token_ms=1500".*"outcome":"client_closed"/,
 qr/"reply":"You said: again\. \(messages: 2\)"/]
--- no_error_log
[error]



=== TEST 9: HEAD gets no stream
--- config
    location = /chat {
        support_agent;
    }
--- request
HEAD /chat
--- error_code: 405
--- response_body
