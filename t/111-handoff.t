# The handoff when the helpdesk misbehaves: down (5xx, connection reset),
# slow (past support_agent_handoff_timeout: the ticket got there, the retry
# is deduplicated on the Idempotency-Key), garbled or id-less replies, the
# client leaving mid-POST, and a ticket still queued when nginx restarts.
# In every case the customer gets an honest reply at once and the helpdesk
# ends up with exactly one ticket.  Also: Zendesk's reply shape, the
# service token (sent, never logged).  t/helpdesk_server.py's scenario
# prefixes (/fail=503:1/tickets ...) script the faults; GET
# /tickets?min=N&wait=S waits for N delivered tickets.

use Test::Nginx::Socket 'no_plan';
use SupportAgent::Test;
use File::Temp qw(tempdir);

my $repo = SupportAgent::Test::repo_root();
my $dir = tempdir('sa-handoff-XXXXXX', TMPDIR => 1, CLEANUP => 1);

system("$repo/build/kb-build", 'intents',
       '--examples', "$repo/t/fixtures/intents.jsonl",
       '--rules', "$repo/t/fixtures/routes.conf",
       '--out', "$dir/router.model") == 0
    or die "kb-build intents failed\n";

$ENV{TEST_NGINX_ROUTER} = "$dir/router.model";
$ENV{SA_TEST_HELPDESK_KEY} = 'hd-secret-token-123';

no_shuffle();
run_tests();

__DATA__

=== TEST 1: the helpdesk answers 503: the customer is told the case is saved; the queue delivers it a second later
--- config
    location = /chat {
        support_agent;
        support_agent_intents $TEST_NGINX_ROUTER;
        support_agent_handoff_url http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/fail=503:1/tickets;
    }
    location /helpdesk/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/;
    }
--- more_headers
Content-Type: application/json
--- request eval
["POST /helpdesk/_reset",
 "POST /chat\n{\"message\": \"let me speak to a human\"}",
 "GET /helpdesk/tickets?min=1&wait=5"]
--- response_body_like eval
[qr/\S/,
 qr/"reply":"Of course\. I'm passing you to a specialist\. They will see our whole conversation, so you won't need to repeat yourself\. Our ticket system is slow to answer right now; your case is saved and will reach the team automatically\.","finish_reason":"stop","source":"handoff",.*"handoff":\{"status":"queued","ticket_id":null,"estimated_wait_minutes":null,"reason":"explicit","priority":"normal","business_hours":\{"open":true\}\}\}$/,
 qr/^\{"tickets": ?\[\{"id": ?"HD-1001", ?"idempotency_key": ?"handoff-c_[0-9a-f]{32}", ?"deliveries": ?1, ?"posts": ?1,(?!.*HD-1002)/s]
--- no_error_log
[error]



=== TEST 2: the 503 is logged at warn, with the reason
--- config
    location = /chat {
        support_agent;
        support_agent_intents $TEST_NGINX_ROUTER;
        support_agent_handoff_url http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/fail=503:1,wait=4/tickets;
    }
--- more_headers
Content-Type: application/json
--- request
POST /chat
{"message": "let me speak to a human"}
--- response_body_like: "status":"queued"
--- wait: 2.5
--- error_log eval
qr/\[warn\] .*the helpdesk did not take the ticket of conversation "c_[0-9a-f]{32}": .*503.*; it is sent again later/
--- no_error_log
[error]



=== TEST 3: the helpdesk is slower than support_agent_handoff_timeout: the ticket got there; the retry is deduplicated
--- config
    location = /chat {
        support_agent;
        support_agent_intents $TEST_NGINX_ROUTER;
        support_agent_handoff_url http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/delay=1500:1/tickets;
        support_agent_handoff_timeout 500ms;
    }
    location /helpdesk/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/;
    }
--- more_headers
Content-Type: application/json
--- request eval
["POST /helpdesk/_reset",
 "POST /chat\n{\"message\": \"let me speak to a human\"}",
 "GET /helpdesk/_requests?min=2&wait=6",
 "GET /helpdesk/tickets"]
--- response_body_like eval
[qr/\S/,
 qr/"handoff":\{"status":"queued","ticket_id":null/,
 qr/"outcome": ?"client_closed".*"outcome": ?"duplicate"/s,
 qr/^\{"tickets": ?\[\{"id": ?"HD-1001", ?"idempotency_key": ?"handoff-c_[0-9a-f]{32}", ?"deliveries": ?1, ?"posts": ?2,(?!.*HD-1002)/s]
--- no_error_log
[error]



=== TEST 4: a connection reset, then a reply that is not JSON, then one without an id: still one ticket
--- config
    location = /chat {
        support_agent;
        support_agent_intents $TEST_NGINX_ROUTER;
        support_agent_handoff_url http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/reset:1,badjson:2,noid:3/tickets;
    }
    location /helpdesk/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/;
    }
--- more_headers
Content-Type: application/json
--- request eval
["POST /helpdesk/_reset",
 "POST /chat\n{\"message\": \"let me speak to a human\"}",
 "GET /helpdesk/_requests?min=4&wait=12",
 "GET /helpdesk/tickets"]
--- response_body_like eval
[qr/\S/,
 qr/"handoff":\{"status":"queued","ticket_id":null/,
 qr/"outcome": ?"reset".*"outcome": ?"created".*"outcome": ?"duplicate".*"outcome": ?"duplicate"/s,
 qr/^\{"tickets": ?\[\{"id": ?"HD-1001", ?"idempotency_key": ?"handoff-c_[0-9a-f]{32}", ?"deliveries": ?3,(?!.*HD-1002)/s]
--- timeout: 15
--- no_error_log
[error]



=== TEST 5: the client leaves while the helpdesk is slow; the ticket is still delivered, once
--- config
    location = /chat {
        support_agent;
        support_agent_intents $TEST_NGINX_ROUTER;
        support_agent_handoff_url http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/delay=3000:1/tickets;
        support_agent_conversation_key $http_x_session;
    }
--- more_headers
Content-Type: application/json
X-Session: handoff-abort
--- request
POST /chat
{"message": "let me speak to a human"}
--- timeout: 0.5
--- abort
--- ignore_response
--- wait: 0.3
--- no_error_log
[error]



=== TEST 6: (after a restart of nginx) the queue delivered the ticket of the customer who left
--- config
    location = /chat {
        support_agent;
        support_agent_intents $TEST_NGINX_ROUTER;
        support_agent_handoff_url http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/delay=3000:1/tickets;
        support_agent_conversation_key $http_x_session;
    }
    location /helpdesk/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/;
    }
--- more_headers
Content-Type: application/json
X-Session: handoff-abort
--- request eval
["GET /helpdesk/_requests?scenario=delay%3D3000%3A1&min=2&wait=8",
 "POST /chat\n{\"message\": \"I want to talk to a human\"}"]
--- response_body_like eval
[qr/"outcome": ?"client_closed".*"outcome": ?"duplicate", ?"ticket": ?"(HD-\d+)"/s,
 qr/"handoff":\{"status":"existing","ticket_id":"HD-\d+"/]
--- timeout: 10
--- no_error_log
[error]



=== TEST 7: a ticket still queued when nginx stops is delivered by the next nginx
--- config
    location = /chat {
        support_agent;
        support_agent_intents $TEST_NGINX_ROUTER;
        support_agent_handoff_url http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/fail=500:2/tickets;
    }
    location /helpdesk/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/;
    }
--- more_headers
Content-Type: application/json
--- request eval
["POST /helpdesk/_reset",
 "POST /chat\n{\"message\": \"let me speak to a human\"}"]
--- response_body_like eval
[qr/\S/,
 qr/"handoff":\{"status":"queued","ticket_id":null/]



=== TEST 8: (the next nginx) one ticket, delivered after the failures
--- config
    location = /chat {
        support_agent;
        support_agent_intents $TEST_NGINX_ROUTER;
        support_agent_handoff_url http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/fail=500:2/tickets;
    }
    location /helpdesk/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/;
    }
--- request
GET /helpdesk/tickets?min=1&wait=10
--- response_body_like: ^\{"tickets": ?\[\{"id": ?"HD-1001", ?"idempotency_key": ?"handoff-c_[0-9a-f]{32}", ?"deliveries": ?1,(?!.*HD-1002)
--- timeout: 12
--- no_error_log
[error]



=== TEST 9: Zendesk's reply shape: the ticket id is read from "ticket"
--- config
    location = /chat {
        support_agent;
        support_agent_intents $TEST_NGINX_ROUTER;
        support_agent_handoff_url http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/zendesk/tickets;
    }
--- more_headers
Content-Type: application/json
--- request
POST /chat
{"message": "let me speak to a human"}
--- response_body_like: "reply":"[^"]+Your ticket number is 3543\d\.",.*"handoff":\{"status":"created","ticket_id":"3543\d","estimated_wait_minutes":null,
--- no_error_log
[error]



=== TEST 10: the service token is sent as a bearer token and never logged
--- config
    location = /chat {
        support_agent;
        support_agent_intents $TEST_NGINX_ROUTER;
        support_agent_handoff_url http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/tickets;
        support_agent_handoff_api_key env=SA_TEST_HELPDESK_KEY;
    }
    location /helpdesk/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/;
    }
--- more_headers
Content-Type: application/json
--- request eval
["DELETE /helpdesk/_requests",
 "POST /chat\n{\"message\": \"let me speak to a human\"}",
 "GET /helpdesk/_requests"]
--- response_body_like eval
[qr/.*/,
 qr/"status":"created"/,
 qr/"authorization": ?true/]
--- no_error_log
hd-secret-token
[error]
