# Conversation state in LMDB: shared by workers, kept across restarts,
# one turn at a time per conversation, a full store handled.

use Test::Nginx::Socket 'no_plan';
use SupportAgent::Test;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a first turn of a keyed conversation
--- config
    location = /chat {
        support_agent;
        support_agent_llm_url http://127.0.0.1:$TEST_NGINX_LLM_PORT/v1;
        support_agent_llm_model test-model;
        support_agent_conversation_key $http_x_session;
    }
--- more_headers
Content-Type: application/json
X-Session: state-restart
--- request
POST /chat
{"message": "one"}
--- response_body_like: "reply":"You said: one\. \(messages: 2\)"
--- no_error_log
[error]



=== TEST 2: the conversation survives a restart of nginx
--- config
    location = /chat {
        support_agent;
        support_agent_llm_url http://127.0.0.1:$TEST_NGINX_LLM_PORT/v1;
        support_agent_llm_model test-model;
        support_agent_conversation_key $http_x_session;
    }
--- more_headers
Content-Type: application/json
X-Session: state-restart
--- request
POST /chat
{"message": "two"}
--- response_body_like: "reply":"You said: two\. \(messages: 4\)","finish_reason":"stop","source":"llm"
--- no_error_log
[error]



=== TEST 3: a second turn while the first is still answered gets 409
--- http_config
    limit_req_zone $server_name zone=one_at_a_time:1m rate=2r/s;
--- config
    location = /chat {
        support_agent;
        support_agent_llm_url http://127.0.0.1:$TEST_NGINX_LLM_PORT/first_ms=1500/v1;
        support_agent_llm_model test-model;
        support_agent_conversation_key $http_x_session;
    }

    # two turns of one conversation, started 0.5 s apart (limit_req delays
    # the second) while the LLM takes 1.5 s to answer the first
    location = /race {
        mirror /turn;
        mirror /turn;
        mirror_request_body on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/started;
    }
    location = /turn {
        internal;
        limit_req zone=one_at_a_time burst=5;
        proxy_set_header X-Session state-race;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/chat;
    }
    location = /started {
        return 200 "started\n";
    }
--- request
POST /race
{"message": "are you there?"}
--- more_headers
Content-Type: application/json
--- response_body
started
--- wait: 2
--- error_log eval
qr/support agent: conversation "k_[0-9a-f]{32}" has a turn in progress/
--- no_error_log
[error]



=== TEST 4: a full store answers 503, and the conversation does not get stuck busy
--- http_config
    support_agent_store $TEST_NGINX_STORE_DIR/full max_size=96k;
--- config
    location = /chat {
        support_agent;
        support_agent_llm_url http://127.0.0.1:$TEST_NGINX_LLM_PORT/reply=ok/v1;
        support_agent_llm_model test-model;
        support_agent_conversation_key $http_x_session;
        support_agent_max_message 8k;
        support_agent_history 0;
    }
--- more_headers
Content-Type: application/json
X-Session: state-full
--- request eval
my $big = "x" x 8000;
[map { "POST /chat\n{\"message\": \"$big\"}" } 1 .. 14]
--- error_code eval
[(200) x 5, (503) x 9]
--- response_body_like eval
[(qr/"reply":"ok"/) x 5,
 (qr/^\{"error":\{"code":"storage_full","message":"[^"]+"\},"conversation_id":"k_[0-9a-f]{32}"\}$/) x 9]
