# The module loads, a location answers chat turns without any LLM (the
# no-LLM mode), in JSON and as an SSE stream.

use Test::Nginx::Socket 'no_plan';
use SupportAgent::Test;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: no LLM configured: the fallback reply as JSON
--- config
    location = /chat {
        support_agent;
    }
--- request
POST /chat
{"message": "Hello"}
--- more_headers
Content-Type: application/json
--- response_headers
Content-Type: application/json
--- response_body_like: ^\{"conversation_id":"c_[0-9a-f]{32}","reply":"I'm sorry, I can't answer questions automatically right now\. A member of our support team will be happy to help you\.","finish_reason":"stop","source":"fallback"\}$
--- no_error_log
[error]
[alert]



=== TEST 2: no LLM configured: the fallback reply as an SSE stream
--- config
    location = /chat {
        support_agent;
    }
--- request
POST /chat
{"message": "Hello"}
--- more_headers
Content-Type: application/json
Accept: text/event-stream
--- response_headers
Content-Type: text/event-stream; charset=utf-8
Cache-Control: no-cache
X-Accel-Buffering: no
--- response_body_like: ^event: meta\ndata: \{"conversation_id":"c_[0-9a-f]{32}","new":true\}\n\nevent: delta\ndata: \{"text":"I'm sorry, I can't answer[^"]*"\}\n\nevent: done\ndata: \{"conversation_id":"c_[0-9a-f]{32}","finish_reason":"stop","source":"fallback"\}\n\n$
--- no_error_log
[error]
[alert]



=== TEST 3: the fallback reply comes from a file
--- config
    location = /chat {
        support_agent;
        support_agent_fallback_reply ../html/fallback.txt;
    }
--- user_files
>>> fallback.txt
Our team answers within one business day: support@example.com
--- request
POST /chat
{"message": "Hello"}
--- more_headers
Content-Type: application/json
--- response_body_like: "reply":"Our team answers within one business day: support@example.com"
--- no_error_log
[error]



=== TEST 4: Content-Type parameters and case are accepted
--- config
    location = /chat {
        support_agent;
    }
--- request
POST /chat
{"message": "Hello"}
--- more_headers
Content-Type: Application/JSON; charset=utf-8
--- response_body_like: "source":"fallback"
--- no_error_log
[error]



=== TEST 5: a location without the directive is untouched
--- config
    location = /chat {
        support_agent;
    }
    location = /other {
        return 200 "plain\n";
    }
--- request
GET /other
--- response_body
plain
--- no_error_log
[error]



=== TEST 6: the conversation store is created under the prefix by default
--- config
    location = /chat {
        support_agent;
    }
--- request
POST /chat
{"message": "Hello"}
--- more_headers
Content-Type: application/json
--- response_body_like: "conversation_id":"c_
--- no_error_log
[error]
[emerg]
