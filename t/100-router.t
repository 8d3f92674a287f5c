# The intent router: a model built here by kb-build intents from a small
# labelled fixture (t/fixtures/intents.jsonl) with operator rules and routes
# (t/fixtures/routes.conf); the classify endpoint, rule precedence, the
# out-of-scope threshold, the route in chat replies, the meta event and
# the variables, bad input and nginx -t.

use Test::Nginx::Socket 'no_plan';
use SupportAgent::Test;
use File::Temp qw(tempdir);

my $repo = SupportAgent::Test::repo_root();
my $dir = tempdir('sa-router-XXXXXX', TMPDIR => 1, CLEANUP => 1);

system("$repo/build/kb-build", 'intents',
       '--examples', "$repo/t/fixtures/intents.jsonl",
       '--rules', "$repo/t/fixtures/routes.conf",
       '--out', "$dir/router.model") == 0
    or die "kb-build intents failed\n";

$ENV{TEST_NGINX_ROUTER} = "$dir/router.model";

no_shuffle();
run_tests();

__DATA__

=== TEST 1: classify: the model's intent and its route
--- config
    location = /classify {
        support_agent_classify;
        support_agent_intents $TEST_NGINX_ROUTER;
    }
--- request
POST /classify
{"message": "where is my parcel?"}
--- more_headers
Content-Type: application/json
--- response_body_like: ^\{"intent":"track_order","route":"action:lookup_order","confidence":0\.\d+,"signals":\{\},"top":\[\{"intent":"track_order","p":0\.\d+\},\{"intent":"[a-z_]+","p":[0-9.e-]+\},\{"intent":"[a-z_]+","p":[0-9.e-]+\}\]\}$
--- no_error_log
[error]



=== TEST 2: an operator rule wins over the model, and says so
--- config
    location = /classify {
        support_agent_classify;
        support_agent_intents $TEST_NGINX_ROUTER;
    }
--- request eval
["POST /classify\n{\"message\": \"Where is my order? I want to speak to a human!\"}",
 "POST /classify\n{\"message\": \"Someone used my card without asking\"}"]
--- more_headers
Content-Type: application/json
--- response_body_like eval
[qr/^\{"intent":"contact_human_agent","route":"escalate","confidence":1,"signals":\{"rule":"speak to a human"\}/,
 qr/^\{"intent":"fraud","route":"escalate","confidence":1,"signals":\{"rule":"\\"someone used my card\\""\}/]



=== TEST 3: GET ?q= does the same, and the variables are set
--- config
    location = /classify {
        support_agent_classify;
        support_agent_intents $TEST_NGINX_ROUTER;
        add_header X-Intent $support_agent_intent;
        add_header X-Route $support_agent_route;
    }
--- request
GET /classify?q=please+cancel+my+order
--- response_headers
X-Intent: cancel_order
X-Route: action:cancel_order
--- response_body_like: ^\{"intent":"cancel_order"



=== TEST 4: below the threshold a message is out of scope: the agent says what it can do
--- config
    location = /chat {
        support_agent;
        support_agent_intents $TEST_NGINX_ROUTER;
        support_agent_kb $TEST_NGINX_KB;
        add_header X-Route $support_agent_route;
    }
--- request
POST /chat
{"message": "qwerty zxcvb plugh"}
--- more_headers
Content-Type: application/json
--- response_headers
X-Route: out_of_scope
--- response_body_like: ^\{"conversation_id":"c_[0-9a-f]{32}","reply":"Sorry, I can't help with that here\. [^"]+","finish_reason":"stop","source":"router","intent":"out_of_scope","route":"out_of_scope","confidence":0\.\d+\}$
--- no_error_log
[error]



=== TEST 5: the operator's out-of-scope text and threshold
--- config
    location = /chat {
        support_agent;
        support_agent_intents $TEST_NGINX_ROUTER;
        support_agent_intent_threshold 0.9999;
        support_agent_out_of_scope_reply ../html/out-of-scope.txt;
    }
--- user_files
>>> out-of-scope.txt
I can help with orders and returns only.
--- request eval
["POST /chat\n{\"message\": \"where is my parcel?\"}",
 "POST /chat\n{\"message\": \"let me speak to a human\"}"]
--- more_headers
Content-Type: application/json
--- response_body_like eval
[qr/"reply":"I can help with orders and returns only\.","finish_reason":"stop","source":"router","intent":"out_of_scope"/,
 qr/"source":"fallback","intent":"contact_human_agent","route":"escalate","confidence":1\}$/]



=== TEST 6: a knowledge question goes on to retrieval; the stream's meta event carries the route
--- config
    location = /chat {
        support_agent;
        support_agent_intents $TEST_NGINX_ROUTER;
        support_agent_intent_threshold 0.2;
        support_agent_kb $TEST_NGINX_KB;
    }
--- request
POST /chat
{"message": "Do you offer express delivery?"}
--- more_headers
Content-Type: application/json
Accept: text/event-stream
--- response_body_like: ^event: meta\ndata: \{"conversation_id":"c_[0-9a-f]{32}","new":true,"intent":"delivery_options","route":"knowledge","confidence":0\.\d+\}\n\n.*event: citation\n.*event: done\ndata: \{[^\n]*"source":"kb"\}\n\n$
--- no_error_log
[error]



=== TEST 7: bad requests to the classify endpoint
--- config
    location = /classify {
        support_agent_classify;
        support_agent_intents $TEST_NGINX_ROUTER;
    }
--- request eval
["POST /classify\n{\"message\": ", "POST /classify\n{\"text\": \"hi\"}",
 "POST /classify\n{\"message\": \"\xff\xfe\"}", "GET /classify",
 "PUT /classify\n{}"]
--- more_headers
Content-Type: application/json
--- error_code eval
[400, 400, 400, 400, 405]
--- response_body_like eval
[qr/"code":"invalid_json"/, qr/"code":"invalid_request"/, qr/"code":"invalid_utf8"/,
 qr/the query parameter \\"q\\" is required/, qr/"code":"method_not_allowed"/]



=== TEST 8: not JSON, or too large
--- config
    location = /classify {
        support_agent_classify;
        support_agent_intents $TEST_NGINX_ROUTER;
        support_agent_max_body 1k;
        support_agent_max_message 1k;
    }
--- request eval
["POST /classify\nmessage=hi", "POST /classify\n{\"message\": \"" . ("a" x 2000) . "\"}"]
--- more_headers eval
["Content-Type: text/plain", "Content-Type: application/json"]
--- error_code eval
[415, 413]



=== TEST 9: nginx -t: a model that is not there
--- config
    location = /classify {
        support_agent_classify;
        support_agent_intents /nonexistent/router.model;
    }
--- must_die
--- error_log
cannot open intent model "/nonexistent/router.model"



=== TEST 10: nginx -t: a classify location needs a model
--- config
    location = /classify {
        support_agent_classify;
    }
--- must_die
--- error_log
"support_agent_classify" needs "support_agent_intents"



=== TEST 11: nginx -t: a threshold above 1
--- config
    location = /chat {
        support_agent;
        support_agent_intents $TEST_NGINX_ROUTER;
        support_agent_intent_threshold 1.5;
    }
--- must_die
--- error_log
"support_agent_intent_threshold" must be from 0 to 1
