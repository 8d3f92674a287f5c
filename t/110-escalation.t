# Escalation signals, each with its directive: an explicit request for a
# human, high stakes, repetition, negative sentiment, out of scope (the
# router's and the knowledge base's), time, business hours; the handoff
# reply and event; a reminder instead of a second ticket; personal data
# masked in the ticket; nginx -t.  The helpdesk is t/helpdesk_server.py
# (reached by the blocks through /helpdesk/), which validates every ticket
# against docs/handoff-ticket.schema.json.

use Test::Nginx::Socket 'no_plan';
use SupportAgent::Test;
use File::Temp qw(tempdir);
use POSIX qw(strftime);

my $repo = SupportAgent::Test::repo_root();
my $dir = tempdir('sa-escalation-XXXXXX', TMPDIR => 1, CLEANUP => 1);

system("$repo/build/kb-build", 'intents',
       '--examples', "$repo/t/fixtures/intents.jsonl",
       '--rules', "$repo/t/fixtures/routes.conf",
       '--out', "$dir/router.model") == 0
    or die "kb-build intents failed\n";

$ENV{TEST_NGINX_ROUTER} = "$dir/router.model";

# business hours that are surely closed now: one day, two days from today
my @days = qw(sun mon tue wed thu fri sat);
$ENV{TEST_NGINX_CLOSED_DAY} = $days[((gmtime)[6] + 2) % 7];

no_shuffle();
run_tests();

__DATA__

=== TEST 1: an explicit request for a human: a ticket, and the customer is told its number and the wait
--- config
    location = /chat {
        support_agent;
        support_agent_intents $TEST_NGINX_ROUTER;
        support_agent_handoff_url http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/tickets;
        support_agent_conversation_key $http_x_session;
    }
    location /helpdesk/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/;
    }
--- more_headers
Content-Type: application/json
X-Session: esc-explicit
--- request eval
["POST /helpdesk/_reset",
 "POST /chat\n{\"message\": \"Where is my order #W2611340? I want to speak to a human!\"}",
 "GET /helpdesk/tickets?min=1&wait=5"]
--- response_body_like eval
[qr/\S/,
 qr/^\{"conversation_id":"[A-Za-z0-9_-]+","reply":"Of course\. I'm passing you to a specialist\. They will see our whole conversation, so you won't need to repeat yourself\. Your ticket number is HD-1001\. A specialist should be with you in about 4 minutes\.","finish_reason":"stop","source":"handoff","intent":"contact_human_agent","route":"escalate","confidence":1,"handoff":\{"status":"created","ticket_id":"HD-1001","estimated_wait_minutes":4,"reason":"explicit","priority":"normal","business_hours":\{"open":true\}\}\}$/,
 qr/"id": ?"HD-1001".*"deliveries": ?1.*"priority": ?"normal", ?"reason": ?"explicit".*"intent": ?"contact_human_agent".*"order_ids": ?\["W2611340"\].*"business_hours": ?\{"open": ?true\}.*"messages": ?\[\{"role": ?"user", ?"content": ?"Where is my order #W2611340\? I want to speak to a human!"/s]
--- no_error_log
[error]



=== TEST 2: high stakes go with high priority; the stream has a handoff event before the text
--- config
    location = /chat {
        support_agent;
        support_agent_intents $TEST_NGINX_ROUTER;
        support_agent_handoff_url http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/wait=0/tickets;
    }
--- more_headers
Content-Type: application/json
Accept: text/event-stream
--- request
POST /chat
{"message": "This is fraud, someone used my card"}
--- response_body_like: ^event: meta\ndata: \{"conversation_id":"c_[0-9a-f]{32}","new":true,"intent":"fraud","route":"escalate","confidence":1\}\n\nevent: handoff\ndata: \{"status":"created","ticket_id":"HD-\d+","estimated_wait_minutes":0,"reason":"high_stakes","priority":"high","business_hours":\{"open":true\}\}\n\nevent: delta\ndata: \{"text":"This needs a person from our team[^"]+ticket number is HD-\d+\. A specialist should be with you in about a minute\."\}\n\nevent: done\ndata: \{"conversation_id":"c_[0-9a-f]{32}","finish_reason":"stop","source":"handoff"\}\n\n$
--- error_log eval
qr/conversation "c_[0-9a-f]{32}" handed off: high_stakes, priority high/
--- no_error_log
[error]



=== TEST 3: the operator decides what is high stakes
--- config
    location = /chat {
        support_agent;
        support_agent_intents $TEST_NGINX_ROUTER;
        support_agent_high_stakes legal_threat;
        support_agent_handoff_url http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/tickets;
    }
--- more_headers
Content-Type: application/json
--- request eval
["POST /chat\n{\"message\": \"This is fraud, someone used my card\"}",
 "POST /chat\n{\"message\": \"I will call my lawyer\"}"]
--- response_body_like eval
[qr/"handoff":\{"status":"created","ticket_id":"HD-\d+","estimated_wait_minutes":4,"reason":"explicit","priority":"normal"/,
 qr/"handoff":\{"status":"created","ticket_id":"HD-\d+","estimated_wait_minutes":4,"reason":"high_stakes","priority":"high"/]
--- no_error_log
[error]



=== TEST 4: the same issue three times: the third goes to a human
--- config
    location = /chat {
        support_agent;
        support_agent_intents $TEST_NGINX_ROUTER;
        support_agent_handoff_url http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/tickets;
        support_agent_conversation_key $http_x_session;
    }
--- more_headers
Content-Type: application/json
X-Session: esc-repeat
--- request eval
["POST /chat\n{\"message\": \"where is my parcel?\"}",
 "POST /chat\n{\"message\": \"Where is my parcel??\"}",
 "POST /chat\n{\"message\": \"I still don't know where my parcel is\"}"]
--- response_body_like eval
[qr/"source":"fallback","intent":"track_order"/,
 qr/"source":"fallback","intent":"track_order"/,
 qr/"reply":"I'm sorry I haven't been able to sort this out\. [^"]+","finish_reason":"stop","source":"handoff",.*"handoff":\{"status":"created","ticket_id":"HD-\d+","estimated_wait_minutes":4,"reason":"repetition","priority":"normal"/]
--- no_error_log
[error]



=== TEST 5: support_agent_escalate_repeats: two times is enough here; "off" never
--- config
    location /chat {
        support_agent;
        support_agent_intents $TEST_NGINX_ROUTER;
        support_agent_handoff_url http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/tickets;
        support_agent_conversation_key $http_x_session;
        support_agent_escalate_repeats 2;

        location /chat/patient {
            support_agent;
            support_agent_escalate_repeats off;
        }
    }
--- request eval
["POST /chat\n{\"message\": \"where is my parcel?\"}",
 "POST /chat\n{\"message\": \"where is my parcel?\"}",
 "POST /chat/patient\n{\"message\": \"I want a refund\"}",
 "POST /chat/patient\n{\"message\": \"I want a refund\"}",
 "POST /chat/patient\n{\"message\": \"I want a refund\"}",
 "POST /chat/patient\n{\"message\": \"I want a refund\"}"]
--- more_headers eval
["Content-Type: application/json\nX-Session: esc-repeat-2",
 "Content-Type: application/json\nX-Session: esc-repeat-2",
 "Content-Type: application/json\nX-Session: esc-patient",
 "Content-Type: application/json\nX-Session: esc-patient",
 "Content-Type: application/json\nX-Session: esc-patient",
 "Content-Type: application/json\nX-Session: esc-patient"]
--- response_body_like eval
[qr/"source":"fallback"/,
 qr/"source":"handoff",.*"reason":"repetition"/,
 qr/"source":"fallback"/,
 qr/"source":"fallback"/,
 qr/"source":"fallback"/,
 qr/"source":"fallback"/]
--- no_error_log
[error]



=== TEST 6: negative sentiment in the last two messages (no router needed)
--- config
    location = /chat {
        support_agent;
        support_agent_handoff_url http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/tickets;
        support_agent_conversation_key $http_x_session;
    }
    location /helpdesk/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/;
    }
--- more_headers
Content-Type: application/json
X-Session: esc-angry
--- request eval
["POST /helpdesk/_reset",
 "POST /chat\n{\"message\": \"This is ridiculous, your service is useless and I am furious!\"}",
 "POST /chat\n{\"message\": \"Absolutely terrible. Worst company ever, I am fed up!!!\"}",
 "GET /helpdesk/tickets?min=1&wait=5"]
--- response_body_like eval
[qr/\S/,
 qr/"source":"fallback"/,
 qr/"reply":"I'm sorry this has been frustrating\. [^"]+","finish_reason":"stop","source":"handoff","handoff":\{"status":"created","ticket_id":"HD-1001","estimated_wait_minutes":4,"reason":"sentiment","priority":"(?:normal|high)"/,
 qr/"reason": ?"sentiment".*"intent": ?null.*"sentiment": ?\{"mood": ?"negative", ?"trend": ?\[0\.[0-2]\d*, ?0\.[0-2]\d*\]\}/s]
--- no_error_log
[error]



=== TEST 7: support_agent_escalate_sentiment off, or a stricter threshold
--- config
    location /chat {
        support_agent;
        support_agent_handoff_url http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/tickets;
        support_agent_conversation_key $http_x_session;
        support_agent_escalate_sentiment off;

        location /chat/strict {
            support_agent;
            support_agent_escalate_sentiment 0.01;
        }
    }
--- request eval
["POST /chat\n{\"message\": \"This is ridiculous, your service is useless and I am furious!\"}",
 "POST /chat\n{\"message\": \"Absolutely terrible. Worst company ever, I am fed up!!!\"}",
 "POST /chat/strict\n{\"message\": \"This is ridiculous, your service is useless!\"}",
 "POST /chat/strict\n{\"message\": \"Terrible. I am fed up.\"}"]
--- more_headers eval
["Content-Type: application/json\nX-Session: esc-calm",
 "Content-Type: application/json\nX-Session: esc-calm",
 "Content-Type: application/json\nX-Session: esc-strict",
 "Content-Type: application/json\nX-Session: esc-strict"]
--- response_body_like eval
[qr/"source":"fallback"/,
 qr/"source":"fallback"/,
 qr/"source":"fallback"/,
 qr/"source":"fallback"/]
--- no_error_log
[error]



=== TEST 8: out of scope twice in a row: the second goes to a human, low priority
--- config
    location = /chat {
        support_agent;
        support_agent_intents $TEST_NGINX_ROUTER;
        support_agent_handoff_url http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/tickets;
        support_agent_conversation_key $http_x_session;
    }
--- more_headers
Content-Type: application/json
X-Session: esc-oos
--- request eval
["POST /chat\n{\"message\": \"qwerty zxcvb plugh\"}",
 "POST /chat\n{\"message\": \"xyzzy frotz gnusto\"}"]
--- response_body_like eval
[qr/"reply":"Sorry, I can't help with that here\.[^"]*","finish_reason":"stop","source":"router"/,
 qr/"reply":"That's not something I can help with here, so I'm passing your question to a specialist\.[^"]+","finish_reason":"stop","source":"handoff","intent":"out_of_scope","route":"out_of_scope","confidence":0\.\d+,"handoff":\{"status":"created","ticket_id":"HD-\d+","estimated_wait_minutes":4,"reason":"out_of_scope","priority":"low"/]
--- no_error_log
[error]



=== TEST 9: questions the knowledge base cannot answer count as out of scope; "off" turns it off
--- config
    location /chat {
        support_agent;
        support_agent_kb $TEST_NGINX_KB;
        support_agent_handoff_url http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/tickets;
        support_agent_conversation_key $http_x_session;

        location /chat/off {
            support_agent;
            support_agent_escalate_unserved off;
        }
    }
--- request eval
["POST /chat\n{\"message\": \"zorblax frobnicate quuxify\"}",
 "POST /chat\n{\"message\": \"glorp vexillology snargle\"}",
 "POST /chat/off\n{\"message\": \"zorblax frobnicate quuxify\"}",
 "POST /chat/off\n{\"message\": \"glorp vexillology snargle\"}"]
--- more_headers eval
["Content-Type: application/json\nX-Session: esc-kb",
 "Content-Type: application/json\nX-Session: esc-kb",
 "Content-Type: application/json\nX-Session: esc-kb-off",
 "Content-Type: application/json\nX-Session: esc-kb-off"]
--- response_body_like eval
[qr/"source":"kb"/,
 qr/"source":"handoff","handoff":\{"status":"created","ticket_id":"HD-\d+","estimated_wait_minutes":4,"reason":"out_of_scope","priority":"low"/,
 qr/"source":"kb"/,
 qr/"source":"kb"/]
--- no_error_log
[error]



=== TEST 10: a conversation that has gone on too long
--- config
    location = /chat {
        support_agent;
        support_agent_handoff_url http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/tickets;
        support_agent_conversation_key $http_x_session;
        support_agent_escalate_after 1ms;
    }
--- more_headers
Content-Type: application/json
X-Session: esc-time
--- request eval
["POST /chat\n{\"message\": \"hello\"}",
 "POST /chat\n{\"message\": \"are you still there\"}"]
--- response_body_like eval
[qr/"source":"fallback"/,
 qr/"reply":"This is taking longer than it should[^"]+","finish_reason":"stop","source":"handoff","handoff":\{"status":"created","ticket_id":"HD-\d+","estimated_wait_minutes":4,"reason":"time","priority":"normal"/]
--- no_error_log
[error]



=== TEST 11: outside business hours the customer is told a specialist replies by e-mail
--- config
    location /chat {
        support_agent;
        support_agent_intents $TEST_NGINX_ROUTER;
        support_agent_handoff_url http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/tickets;
        support_agent_business_hours $TEST_NGINX_CLOSED_DAY 09:00-17:00 UTC+01:00;

        location /chat/open {
            support_agent;
            support_agent_business_hours daily 00:00-24:00;
        }
    }
--- more_headers
Content-Type: application/json
--- request eval
["POST /chat\n{\"message\": \"let me talk to a real person\"}",
 "POST /chat/open\n{\"message\": \"let me talk to a real person\"}"]
--- response_body_like eval
[qr/"reply":"Of course\.[^"]+Your ticket number is HD-\d+\. Our team is offline right now \(hours: [a-z]{3} 09:00-17:00 UTC\+01:00\)\. A specialist will reply by e-mail when we are back\.".*"business_hours":\{"open":false,"next_open":"\d{4}-\d\d-\d\dT08:00:00\.000Z"\}\}\}$/,
 qr/"reply":"Of course\.[^"]+ A specialist should be with you in about 4 minutes\.".*"business_hours":\{"open":true\}\}\}$/]
--- no_error_log
[error]



=== TEST 12: after the handoff, another request for a human is reminded of the ticket, not given a second one
--- config
    location = /chat {
        support_agent;
        support_agent_intents $TEST_NGINX_ROUTER;
        support_agent_handoff_url http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/tickets;
        support_agent_conversation_key $http_x_session;
    }
    location /helpdesk/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/;
    }
--- more_headers
Content-Type: application/json
X-Session: esc-remind
--- request eval
["POST /helpdesk/_reset",
 "POST /chat\n{\"message\": \"I want to speak to a human\"}",
 "POST /chat\n{\"message\": \"where is my parcel?\"}",
 "POST /chat\n{\"message\": \"Hello? I want to speak to a human!\"}",
 "GET /helpdesk/tickets?min=1&wait=5"]
--- response_body_like eval
[qr/\S/,
 qr/"source":"handoff",.*"ticket_id":"HD-1001"/,
 qr/"source":"fallback","intent":"track_order"/,
 qr/"reply":"Your conversation is already with our support team \(ticket HD-1001\)\. A specialist will reply here; they can see everything we have discussed\.","finish_reason":"stop","source":"handoff",.*"handoff":\{"status":"existing","ticket_id":"HD-1001","estimated_wait_minutes":4,"reason":"explicit"/,
 qr/^\{"tickets": ?\[\{"id": ?"HD-1001"(?!.*HD-1002)/s]
--- no_error_log
[error]



=== TEST 13: personal data is masked in the ticket (all kinds by default)
--- config
    location = /chat {
        support_agent;
        support_agent_intents $TEST_NGINX_ROUTER;
        support_agent_handoff_url http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/tickets;
    }
    location /helpdesk/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/;
    }
--- more_headers
Content-Type: application/json
--- request eval
["POST /helpdesk/_reset",
 "POST /chat\n{\"message\": \"I'm jane.doe\@example.com, card 4111 1111 1111 1111, phone +1 415 555 0134. Let me speak to a human.\"}",
 "GET /helpdesk/tickets?min=1&wait=5"]
--- response_body_like eval
[qr/\S/,
 qr/"source":"handoff"/,
 qr/"content": ?"I'm j\*\*\*\@example\.com, card \[card ending 1111\], phone \[phone ending 34\]\. Let me speak to a human\."/]
--- response_body_unlike eval
[qr/jane\.doe/,
 qr/4111 1111/,
 qr/jane\.doe|4111 1111|555 0134/]
--- no_error_log
[error]



=== TEST 14: support_agent_handoff_mask: only what the operator names
--- config
    location = /chat {
        support_agent;
        support_agent_intents $TEST_NGINX_ROUTER;
        support_agent_handoff_url http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/tickets;
        support_agent_handoff_mask card;
    }
    location /helpdesk/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/;
    }
--- more_headers
Content-Type: application/json
--- request eval
["POST /helpdesk/_reset",
 "POST /chat\n{\"message\": \"I'm jane.doe\@example.com, card 4111 1111 1111 1111. Let me speak to a human.\"}",
 "GET /helpdesk/tickets?min=1&wait=5"]
--- response_body_like eval
[qr/\S/,
 qr/"source":"handoff"/,
 qr/"content": ?"I'm jane\.doe\@example\.com, card \[card ending 1111\]\. Let me speak to a human\."/]
--- no_error_log
[error]



=== TEST 15: no handoff URL, no escalation: the agent keeps answering
--- config
    location = /chat {
        support_agent;
        support_agent_intents $TEST_NGINX_ROUTER;
    }
--- more_headers
Content-Type: application/json
--- request
POST /chat
{"message": "I want to speak to a human"}
--- response_body_like: "source":"fallback","intent":"contact_human_agent","route":"escalate","confidence":1\}$
--- no_error_log
[error]



=== TEST 16: with an LLM and support_agent_handoff_summary_prompt, the LLM writes the summary from the masked transcript
--- config
    location = /chat {
        support_agent;
        support_agent_intents $TEST_NGINX_ROUTER;
        support_agent_llm_url http://127.0.0.1:$TEST_NGINX_LLM_PORT/v1;
        support_agent_llm_model test-model;
        support_agent_handoff_url http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/tickets;
        support_agent_handoff_summary_prompt ../html/handoff.txt;
    }
    location /helpdesk/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/;
    }
--- user_files
>>> handoff.txt
Write a handoff note for the human agent.
--- more_headers
Content-Type: application/json
--- request eval
["POST /helpdesk/_reset",
 "POST /chat\n{\"message\": \"I'm jane.doe\@example.com, let me speak to a human\"}",
 "GET /helpdesk/tickets?min=1&wait=5"]
--- response_body_like eval
[qr/\S/,
 qr/"source":"handoff",.*"handoff":\{"status":"created"/,
 qr/"summary": ?"You said: Customer: I'm j\*\*\*\@example\.com, let me speak to a human/]
--- response_body_unlike eval
[qr/jane\.doe/,
 qr/jane\.doe/,
 qr/jane\.doe/]
--- no_error_log
[error]



=== TEST 17: the LLM fails: the ticket has the built summary, and the log says why
--- config
    location = /chat {
        support_agent;
        support_agent_intents $TEST_NGINX_ROUTER;
        support_agent_llm_url http://127.0.0.1:$TEST_NGINX_LLM_PORT/fail=503:9/v1;
        support_agent_llm_model test-model;
        support_agent_llm_retries 0;
        support_agent_handoff_url http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/tickets;
        support_agent_handoff_summary_prompt ../html/handoff.txt;
    }
--- user_files
>>> handoff.txt
Write a handoff note for the human agent.
--- more_headers
Content-Type: application/json
--- request
POST /chat
{"message": "let me speak to a human"}
--- response_body_like: "source":"handoff",.*"handoff":\{"status":"created"
--- error_log eval
qr/\[warn\] .*no summary by the LLM for the handoff of conversation "c_[0-9a-f]{32}": .*503.*; the ticket has the built one/
--- no_error_log
[alert]
[crit]



=== TEST 18: nginx -t: business hours that do not parse
--- config
    location = /chat {
        support_agent;
        support_agent_business_hours mon-fri 18:00-09:00;
    }
--- must_die
--- error_log eval
qr/invalid "support_agent_business_hours" "mon-fri 18:00-09:00": .*closing time/



=== TEST 19: nginx -t: a sentiment threshold out of range
--- config
    location = /chat {
        support_agent;
        support_agent_escalate_sentiment 1.5;
    }
--- must_die
--- error_log
invalid value "1.5" in "support_agent_escalate_sentiment": a score above 0 and at most 1 (0 is very negative), or "off"



=== TEST 20: nginx -t: repeats that are not a number
--- config
    location = /chat {
        support_agent;
        support_agent_escalate_repeats three;
    }
--- must_die
--- error_log
invalid value "three" in "support_agent_escalate_repeats": a number from 1 to 1000, or "off"



=== TEST 21: nginx -t: an unknown kind of personal data
--- config
    location = /chat {
        support_agent;
        support_agent_handoff_mask email passport;
    }
--- must_die
--- error_log
invalid value "passport" in "support_agent_handoff_mask": email, phone, card, or "off" alone



=== TEST 22: nginx -t: a time that is not one
--- config
    location = /chat {
        support_agent;
        support_agent_escalate_after soon;
    }
--- must_die
--- error_log
invalid value "soon" in "support_agent_escalate_after": a time such as "30m", or "off"



=== TEST 23: nginx -t: a handoff URL that is not http(s)
--- config
    location = /chat {
        support_agent;
        support_agent_handoff_url ftp://helpdesk.example.com/tickets;
    }
--- must_die
--- error_log
invalid URL "ftp://helpdesk.example.com/tickets" in "support_agent_handoff_url": must start with http:// or https://
