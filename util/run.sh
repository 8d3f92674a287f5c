#!/usr/bin/env bash
# `make run`: nginx in the foreground with conf/demo.conf on 127.0.0.1:8080.
#
# An LLM is used when SUPPORT_AGENT_LLM_URL is set (any OpenAI-compatible
# server: a hosted API or a local vLLM, Ollama or llama.cpp server):
#   SUPPORT_AGENT_LLM_URL    base URL, e.g. https://api.openai.com/v1
#   SUPPORT_AGENT_LLM_MODEL  model name (default gpt-4o-mini)
#   SUPPORT_AGENT_LLM_API_KEY or OPENAI_API_KEY   the key (optional)
set -euo pipefail

nginx_bin=$1
top=$(cd "$(dirname "$0")/.." && pwd)
demo=$top/build/demo

mkdir -p "$demo"
: > "$demo/llm.conf"

if [ -n "${SUPPORT_AGENT_LLM_URL:-}" ]; then
    {
        echo "support_agent_llm_url   ${SUPPORT_AGENT_LLM_URL};"
        echo "support_agent_llm_model ${SUPPORT_AGENT_LLM_MODEL:-gpt-4o-mini};"
        if [ -n "${SUPPORT_AGENT_LLM_API_KEY:-${OPENAI_API_KEY:-}}" ]; then
            # the key stays in the environment, never in a file
            export SUPPORT_AGENT_LLM_API_KEY=${SUPPORT_AGENT_LLM_API_KEY:-$OPENAI_API_KEY}
            echo "support_agent_llm_api_key env=SUPPORT_AGENT_LLM_API_KEY;"
        fi
    } > "$demo/llm.conf"
    echo "LLM: ${SUPPORT_AGENT_LLM_URL} (model ${SUPPORT_AGENT_LLM_MODEL:-gpt-4o-mini})"
else
    echo "No LLM configured (set SUPPORT_AGENT_LLM_URL to use one):"
    echo "the agent answers in its no-LLM mode."
fi

"$nginx_bin" -p "$top/" -c conf/demo.conf -e build/demo/error.log -t -q

echo "Listening on http://127.0.0.1:8080  (Ctrl-C stops; log: build/demo/error.log)"
echo "Try:  curl -sN http://127.0.0.1:8080/chat -H 'Content-Type: application/json' -H 'Accept: text/event-stream' -d '{\"message\":\"Where is my order?\"}'"

exec "$nginx_bin" -p "$top/" -c conf/demo.conf -e build/demo/error.log
