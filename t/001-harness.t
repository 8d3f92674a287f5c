# Self-test of the Test::Nginx::Socket runner in t/lib (plain nginx only).
#
# It must pass under both runners:
#   prove -It/lib t/001-harness.t                       (ours)
#   prove -I<test-nginx>/lib -It/lib t/001-harness.t    (openresty's)
# so it only uses the subset of shared/notes/nginx-craft.md §1.6.

use Test::Nginx::Socket 'no_plan';

# expanded as $TEST_NGINX_HARNESS_WORD in config sections
$ENV{TEST_NGINX_HARNESS_WORD} = 'expanded';

repeat_each(2);
no_shuffle();    # the real runner shuffles blocks otherwise
no_long_string();
env_to_nginx('TEST_NGINX_HARNESS_WORD');

# Blocks without their own log checks must not log errors.
add_block_preprocessor(sub {
    my $block = shift;
    if (!defined $block->error_log && !defined $block->no_error_log
        && !defined $block->must_die)
    {
        $block->set_value('no_error_log', "[error]\n[crit]\n[alert]\n[emerg]");
    }
});

# Runs before the one above (most recently added first): a default config.
add_block_preprocessor(sub {
    my $block = shift;
    if (!defined $block->config) {
        $block->set_value('config', <<'_EOC_');
    location = /t {
        return 200 "$request|$http_host|$http_connection|$http_content_length\n";
    }
_EOC_
    }
});

run_tests();

__DATA__

=== TEST 1: sanity
--- config
    location = /t {
        return 200 "hello\n";
    }
--- request
GET /t
--- response_body
hello
--- no_error_log
[error]



=== TEST 2: request defaults: URI /, HTTP/1.1, Host and Connection added
--- config
    location = / {
        return 200 "$request|$http_host|$http_connection\n";
    }
--- request
GET
--- response_body
GET / HTTP/1.1|localhost|close



=== TEST 3: default config from a block preprocessor; comment lines skipped
--- request
    # this comment line is not part of the request

    GET /t?a=1 HTTP/1.0
--- response_body
GET /t?a=1 HTTP/1.0|localhost|close|



=== TEST 4: request body: Content-Length added, trailing newline dropped
--- request
POST /t
hello world
--- response_body
POST /t HTTP/1.1|localhost|close|11



=== TEST 5: request body with eval: still one trailing newline dropped
--- request eval
"POST /t\n{\"q\":\"hi\"}\n"
--- response_body
POST /t HTTP/1.1|localhost|close|10



=== TEST 6: more_headers (Host overridden, comments skipped)
--- config
    location = /t {
        return 200 "$http_host|$http_x_foo|$http_connection\n";
    }
--- more_headers
# a comment
Host: example.com
X-Foo: bar baz
--- request
GET /t
--- response_body
example.com|bar baz|close



=== TEST 7: response_headers, absent header, error_code
--- config
    location = /t {
        add_header X-Test "a b";
        return 201 "ok\n";
    }
--- request
GET /t
--- error_code: 201
--- response_headers
X-Test: a b
Content-Type: text/plain
Content-Length: 3
!X-Missing
--- response_body
ok



=== TEST 8: response_headers_like, raw_response_headers_like/unlike
--- config
    location = /t {
        return 200 "ok\n";
    }
--- request
GET /t
--- response_headers_like
Server: nginx/[\d.]+
Date: .+ GMT
--- raw_response_headers_like: ^HTTP/1\.1 200 OK\r\n
--- raw_response_headers_unlike: Transfer-Encoding
--- response_body_like: ^ok$



=== TEST 9: error_code_like, response_body_like, error_log (literal)
--- request
GET /nope1.html
--- error_code_like: ^40[0-9]$
--- response_body_like: <title>404 Not Found</title>
--- error_log
[error]
nope1.html" failed (2: No such file or directory)



=== TEST 10: response_body_unlike, error_log eval (array of qr// and string)
--- request
GET /nope2.html
--- error_code: 404
--- response_body_unlike: It works
--- error_log eval
[qr/open\(\) "[^"]+nope2\.html" failed/, "No such file or directory"]
--- no_error_log eval
[qr/\[alert\]/, "nope1.html"]



=== TEST 11: grep_error_log with one expected value per repeat
--- request
GET /nope3.html
--- error_code: 404
--- grep_error_log eval: qr/nope\d\.html" failed/
--- grep_error_log_out eval
["nope3.html\" failed\n", "nope3.html\" failed\n"]
--- no_error_log
[alert]



=== TEST 12: several requests, each on its own connection, expected arrays
--- config
    location = /t {
        return 200 "$connection_requests $http_x_n\n";
    }
--- more_headers eval
["X-N: first", "X-N: second"]
--- request eval
["GET /t", "GET /nope4.html"]
--- error_code eval
[200, 404]
--- response_body_like eval
["^1 first\n\$", "404 Not Found"]
--- no_error_log
[alert]



=== TEST 13: pipelined requests on one keep-alive connection
--- config
    location = /t {
        return 200 "$connection_requests $http_connection\n";
    }
--- pipelined_requests eval
["GET /t", "GET /t", "GET /t"]
--- response_body eval
["1 keep-alive\n", "2 keep-alive\n", "3 close\n"]



=== TEST 14: raw_request as a string
--- raw_request eval
"GET /t HTTP/1.0\r\nHost: raw\r\n\r\n"
--- response_body
GET /t HTTP/1.0|raw||



=== TEST 15: raw_request as packets
--- raw_request eval
["GET /t HTTP/1.0\r\n", "Host: ", "raw\r\n\r\n"]
--- response_body
GET /t HTTP/1.0|raw||



=== TEST 16: HEAD request: no body read
--- config
    location = /t {
        return 200 "hello\n";
    }
--- request
HEAD /t
--- response_headers
Content-Length: 6
--- response_body eval
""



=== TEST 17: response_body eval (escapes, no trailing newline)
--- config
    location = /t {
        return 200 "a\tb";
    }
--- request
GET /t
--- response_body eval
"a\tb"



=== TEST 18: $TEST_NGINX_* in config, $ServerPort in expected values
--- config
    location = /t {
        add_header X-Port $server_port;
        return 200 "$TEST_NGINX_HARNESS_WORD $TEST_NGINX_SERVER_PORT $server_port\n";
    }
--- request
GET /t
--- response_headers
X-Port: $ServerPort
--- response_body
expanded $ServerPort $ServerPort



=== TEST 19: http_config (map), main_config, post_main_config
--- main_config
    env TEST_NGINX_HARNESS_WORD;
--- http_config
    map $uri $harness_map {
        default  mapped;
    }
--- post_main_config
    pcre_jit on;
--- config
    location = /t {
        return 200 "$harness_map\n";
    }
--- request
GET /t
--- response_body
mapped



=== TEST 20: same-server upstream through http_config
--- http_config
    upstream self {
        server 127.0.0.1:$TEST_NGINX_SERVER_PORT;
    }
--- config
    location = /t {
        proxy_pass http://self/mock;
    }
    location = /mock {
        return 200 "from mock\n";
    }
--- request
GET /t
--- response_body
from mock



=== TEST 21: user_files (plain, in a subdirectory), default root location
--- user_files
>>> a.txt
A
>>> sub/b.txt
B
--- request eval
["GET /a.txt", "GET /sub/b.txt", "GET /"]
--- response_body eval
["A\n", "B\n", "<html><head><title>It works!</title></head><body>It works!</body></html>"]



=== TEST 22: user_files with a modification date
--- user_files
>>> dated.txt 201001020304
dated
--- request
GET /dated.txt
--- response_headers
Last-Modified: Sat, 02 Jan 2010 03:04:00 GMT
--- response_body
dated



=== TEST 23: tcp_listen mock: request body sent in delayed packets, tcp_query
--- config
    location = /p {
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/up;
        proxy_set_header Host upstream;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_query eval
"POST /up HTTP/1.0\r\nHost: upstream\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello"
--- tcp_reply eval
"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n"
--- request eval
[["POST /p\nhel", {value => "lo", delay_before => 0.1}]]
--- response_body
ok



=== TEST 24: tcp_reply as a sub, tcp_query_len
--- config
    location = /p {
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/up;
        proxy_set_header Host upstream;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_query_len: 55
--- tcp_reply eval
sub {
    my $query = shift;
    my ($line) = $query =~ /^(.*?)\r\n/;
    return "HTTP/1.0 200 OK\r\n\r\n[$line]\n";
}
--- request
GET /p
--- response_body
[GET /up HTTP/1.0]



=== TEST 25: tcp_reply packets, chunked upstream response de-chunked
--- config
    location = /p {
        proxy_http_version 1.1;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply eval
["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
 "5\r\nhello\r\n", "6\r\n world\r\n", "0\r\n\r\n"]
--- request
GET /p
--- response_headers
Transfer-Encoding: chunked
--- response_body chomp
hello world



=== TEST 26: tcp_reply_delay shorter than the timeout, tcp_query_auto_timeout
--- config
    location = /p {
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/up;
        proxy_set_header Host upstream;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_query_auto_timeout: 0.05
--- tcp_query eval
"GET /up HTTP/1.0\r\nHost: upstream\r\nConnection: close\r\n\r\n"
--- tcp_reply_delay: 0.2
--- tcp_reply eval
"HTTP/1.0 200 OK\r\n\r\nlate\n"
--- timeout: 2
--- request
GET /p
--- response_body
late



=== TEST 27: abort: client times out, nginx notices the closed client
--- config
    location = /p {
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply_delay: 2
--- tcp_reply eval
"HTTP/1.0 200 OK\r\n\r\ntoo late\n"
--- request
GET /p
--- timeout: 200ms
--- abort
--- ignore_response
--- wait: 0.1
--- error_log
client prematurely closed connection
--- no_error_log
[alert]



=== TEST 28: abort: the partial response is still checked
--- config
    location = /p {
        proxy_buffering off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_no_close
--- tcp_reply eval
"HTTP/1.0 200 OK\r\n\r\npartial"
--- request
GET /p HTTP/1.0
--- timeout: 0.3
--- abort
--- response_body chomp
partial
--- no_error_log
[alert]



=== TEST 29: log_level: [error] lines not logged at level crit
--- log_level: crit
--- request
GET /nope6.html
--- error_code: 404
--- no_error_log
nope6.html



=== TEST 30: must_die: nginx refuses a bad directive, error_log still checked
--- config
    location = /t {
        harness_no_such_directive;
    }
--- must_die
--- suppress_stderr
--- error_log
[emerg]
unknown directive "harness_no_such_directive"



=== TEST 31: nginx starts again after must_die; shutdown_error_log
--- request
GET /t
--- response_body
GET /t HTTP/1.1|localhost|close|
--- shutdown_error_log
SIGQUIT
--- no_shutdown_error_log
[alert]



=== TEST 32: SKIP: this block must not run
--- SKIP
--- request
GET /t
--- error_code: 500



=== TEST 33: wait before the log checks
--- request
GET /nope5.html
--- error_code: 404
--- wait: 0.05
--- error_log
nope5.html
