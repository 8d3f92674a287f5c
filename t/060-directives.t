# Directive mistakes stop nginx with a message naming the directive.

use Test::Nginx::Socket 'no_plan';
use SupportAgent::Test;

delete $ENV{SA_TEST_UNSET_KEY};

no_shuffle();
run_tests();

__DATA__

=== TEST 1: an LLM URL without a model
--- config
    location = /chat {
        support_agent;
        support_agent_llm_url http://127.0.0.1:$TEST_NGINX_LLM_PORT/v1;
    }
--- must_die
--- error_log
"support_agent_llm_model" is required when "support_agent_llm_url" is set



=== TEST 2: an LLM URL that is not http(s)
--- config
    location = /chat {
        support_agent;
        support_agent_llm_url ftp://example.com/v1;
        support_agent_llm_model m;
    }
--- must_die
--- error_log
invalid URL "ftp://example.com/v1" in "support_agent_llm_url": must start with http:// or https://



=== TEST 3: an API key from an unset environment variable
--- config
    location = /chat {
        support_agent;
        support_agent_llm_api_key env=SA_TEST_UNSET_KEY;
    }
--- must_die
--- error_log
environment variable "SA_TEST_UNSET_KEY" named by "support_agent_llm_api_key" is not set



=== TEST 4: an API key file that does not exist
--- config
    location = /chat {
        support_agent;
        support_agent_llm_api_key file=../html/missing.key;
    }
--- must_die
--- error_log eval
qr/open\(\) ".*missing\.key" failed/



=== TEST 5: an API key in nginx.conf itself is refused
--- config
    location = /chat {
        support_agent;
        support_agent_llm_api_key sk-live-123;
    }
--- must_die
--- error_log
invalid value in "support_agent_llm_api_key", expected "env=NAME" or "file=PATH" (the key itself does not belong in nginx.conf)
--- no_error_log
sk-live-123



=== TEST 6: temperature out of range
--- config
    location = /chat {
        support_agent;
        support_agent_llm_temperature 3;
    }
--- must_die
--- error_log
invalid value "3" in "support_agent_llm_temperature", expected a number from 0 to 2 or "off"



=== TEST 7: max_message larger than max_body
--- config
    location = /chat {
        support_agent;
        support_agent_max_body 1k;
        support_agent_max_message 2k;
    }
--- must_die
--- error_log
"support_agent_max_message" (2048) must not be larger than "support_agent_max_body" (1024)



=== TEST 8: support_agent twice
--- config
    location = /chat {
        support_agent;
        support_agent;
    }
--- must_die
--- error_log
"support_agent" directive is duplicate



=== TEST 9: a store map too small
--- http_config
    support_agent_store support_agent_tiny max_size=4k;
--- config
    location = /chat {
        support_agent;
    }
--- must_die
--- error_log
invalid max_size "4k", must be at least 64k



=== TEST 10: a system prompt file that is empty
--- config
    location = /chat {
        support_agent;
        support_agent_system_prompt ../html/empty.txt;
    }
--- user_files
>>> empty.txt
--- must_die
--- error_log eval
qr/"\.\.\/html\/empty\.txt" is empty/



=== TEST 11: retries out of range
--- config
    location = /chat {
        support_agent;
        support_agent_llm_retries 11;
    }
--- must_die
--- error_log
"support_agent_llm_retries" must be between 0 and 10



=== TEST 12: an unknown max tokens field
--- config
    location = /chat {
        support_agent;
        support_agent_llm_max_tokens_field max_output_tokens;
    }
--- must_die
--- error_log
invalid value "max_output_tokens"



=== TEST 13: support_agent outside a location
--- http_config
    support_agent;
--- config
    location = /x { return 204; }
--- must_die
--- error_log
"support_agent" directive is not allowed here



=== TEST 14: a valid full configuration starts
--- config
    location = /chat {
        support_agent;
        support_agent_llm_url http://127.0.0.1:$TEST_NGINX_LLM_PORT/v1/chat/completions;
        support_agent_llm_model test-model;
        support_agent_llm_api_key file=../html/llm.key;
        support_agent_llm_connect_timeout 2s;
        support_agent_llm_idle_timeout 30s;
        support_agent_llm_timeout 60s;
        support_agent_llm_retries 1;
        support_agent_llm_retry_backoff 200ms;
        support_agent_llm_max_tokens 256;
        support_agent_llm_max_tokens_field max_completion_tokens;
        support_agent_llm_temperature off;
        support_agent_history 10;
        support_agent_max_body 32k;
        support_agent_max_message 4k;
        support_agent_heartbeat 10s;
    }
--- user_files
>>> llm.key
sk-file-key-1
--- request
GET /chat
--- error_code: 405
--- no_error_log
[emerg]
sk-file-key-1



=== TEST 15: keepalive out of range
--- http_config
    support_agent_llm_keepalive 0;
--- config
    location = /chat {
        support_agent;
    }
--- must_die
--- error_log
"support_agent_llm_keepalive" must be between 1 and 100000
