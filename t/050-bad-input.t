# Bad requests get a clear status, a JSON body and one error-log line.

use Test::Nginx::Socket 'no_plan';
use SupportAgent::Test;

no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("config", <<'_EOC_') unless defined $block->config;
    location = /chat {
        support_agent;
        support_agent_max_body 1k;
        support_agent_max_message 100;
    }
_EOC_
});

run_tests();

__DATA__

=== TEST 1: GET is not allowed
--- request
GET /chat
--- error_code: 405
--- response_headers
Allow: POST
Content-Type: application/json
--- response_body
{"error":{"code":"method_not_allowed","message":"use POST with a JSON body"}}
--- error_log
support agent: 405 method_not_allowed
--- no_error_log
[error]



=== TEST 2: a body that is not JSON by its type
--- request
POST /chat
message=hello
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 415
--- response_body
{"error":{"code":"unsupported_media_type","message":"the body must be application/json"}}
--- error_log
support agent: 415 unsupported_media_type



=== TEST 3: no Content-Type at all
--- request
POST /chat
{"message": "hi"}
--- error_code: 415
--- response_body_like: "code":"unsupported_media_type"



=== TEST 4: malformed JSON
--- request
POST /chat
{"message": "hi"
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: ^\{"error":\{"code":"invalid_json","message":"request body is not valid JSON[^"]*"\}\}$
--- error_log
support agent: 400 invalid_json
--- no_error_log
[error]



=== TEST 5: JSON that is not an object
--- request
POST /chat
["hi"]
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: "code":"invalid_json"



=== TEST 6: no message
--- request
POST /chat
{"text": "hi"}
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: ^\{"error":\{"code":"invalid_request","message":"\\"message\\" is required"\}\}$
--- error_log
support agent: 400 invalid_request



=== TEST 7: an empty message
--- request
POST /chat
{"message": "   "}
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: "code":"invalid_request"



=== TEST 8: a message that is not a string
--- request
POST /chat
{"message": 42}
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: "code":"invalid_request"



=== TEST 9: an empty body
--- request
POST /chat
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: "code":"invalid_json"



=== TEST 10: invalid UTF-8 in the message
--- request eval
"POST /chat\n{\"message\": \"caf\xe9 \xff\"}"
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: ^\{"error":\{"code":"invalid_utf8","message":"[^"]*UTF-8[^"]*"\}\}$
--- error_log
support agent: 400 invalid_utf8



=== TEST 11: a body above support_agent_max_body (Content-Length)
--- request eval
"POST /chat\n{\"message\": \"" . ("x" x 2000) . "\"}"
--- more_headers
Content-Type: application/json
--- error_code: 413
--- response_body
{"error":{"code":"body_too_large","message":"the request body is too large"}}
--- error_log
support agent: 413 body_too_large



=== TEST 12: a chunked body above support_agent_max_body
--- raw_request eval
my $body = "{\"message\": \"" . ("x" x 2000) . "\"}";
"POST /chat HTTP/1.1\r
Host: localhost\r
Connection: close\r
Content-Type: application/json\r
Transfer-Encoding: chunked\r
\r
" . sprintf("%x", length $body) . "\r\n$body\r\n0\r\n\r\n"
--- error_code: 413
--- response_body_like: "code":"body_too_large"



=== TEST 13: a message longer than support_agent_max_message
--- request eval
"POST /chat\n{\"message\": \"" . ("y" x 101) . "\"}"
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: "code":"message_too_long"



=== TEST 14: a conversation id of the wrong shape
--- request
POST /chat
{"message": "hi", "conversation_id": "../../etc/passwd"}
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: "code":"invalid_request"



=== TEST 15: an unknown conversation
--- request
POST /chat
{"message": "hi", "conversation_id": "c_00000000000000000000000000000000"}
--- more_headers
Content-Type: application/json
--- error_code: 404
--- response_body
{"error":{"code":"conversation_not_found","message":"no conversation with this id"},"conversation_id":"c_00000000000000000000000000000000"}
--- error_log
support agent: unknown conversation "c_00000000000000000000000000000000"
--- no_error_log
[error]



=== TEST 16: a NUL character in the message is refused
--- request
POST /chat
{"message": "a\u0000b"}
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: "message":"\\"message\\" must not contain NUL characters"
