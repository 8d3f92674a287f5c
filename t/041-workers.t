# Two worker processes under a master share one LMDB store: turns of one
# conversation land on either worker and see the whole history.

use Test::Nginx::Socket 'no_plan';
use SupportAgent::Test;

master_on();
workers(2);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: two workers share conversations
--- config
    location = /chat {
        support_agent;
        support_agent_llm_url http://127.0.0.1:$TEST_NGINX_LLM_PORT/v1;
        support_agent_llm_model test-model;
        support_agent_conversation_key $http_x_session;
    }
--- more_headers
Content-Type: application/json
X-Session: state-workers
--- request eval
[map { "POST /chat\n{\"message\": \"m$_\"}" } 1 .. 6]
--- response_body_like eval
[map { my $n = 2 * $_; qr/"reply":"You said: m$_\. \(messages: $n\)"/ } 1 .. 6]
--- no_error_log
[error]
