#!/usr/bin/env bash
# `make run`: nginx in the foreground with conf/demo.conf on 127.0.0.1:8080.
#
# An LLM is used when SUPPORT_AGENT_LLM_URL is set (any OpenAI-compatible
# server: a hosted API or a local vLLM, Ollama or llama.cpp server):
#   SUPPORT_AGENT_LLM_URL    base URL, e.g. https://api.openai.com/v1
#   SUPPORT_AGENT_LLM_MODEL  model name (default gpt-4o-mini)
#   SUPPORT_AGENT_LLM_API_KEY or OPENAI_API_KEY   the key (optional)
# Retrieval over the sample help center is BM25 with the built-in reranker;
# dense vectors and a rerank endpoint are added when these are set:
#   SUPPORT_AGENT_EMBED_URL    e.g. https://api.openai.com/v1 or http://tei/embed
#   SUPPORT_AGENT_EMBED_MODEL  (OpenAI-compatible URLs; text-embedding-3-small)
#   SUPPORT_AGENT_RERANK_URL   e.g. http://tei:8080/rerank (Cohere v2 URLs
#   SUPPORT_AGENT_RERANK_MODEL  need the model, e.g. rerank-v3.5)
# Conversations handed to a human go to SUPPORT_AGENT_HANDOFF_URL (a helpdesk
# webhook, docs/handoff.md; SUPPORT_AGENT_HANDOFF_API_KEY its token), else to
# a demo helpdesk on 127.0.0.1:8081 (t/helpdesk_server.py: GET /tickets).
# Orders are looked up, refunded, cancelled at SUPPORT_AGENT_ORDERS_URL
# (SUPPORT_AGENT_ORDERS_API_KEY its token), else in a demo shop on :8082.
set -euo pipefail

nginx_bin=$1
top=$(cd "$(dirname "$0")/.." && pwd)
demo=$top/build/demo

mkdir -p "$demo"
: > "$demo/llm.conf"
: > "$demo/retrieval.conf"

# the knowledge base: an incremental build, so a rerun is instant
embed=()
if [ -n "${SUPPORT_AGENT_EMBED_URL:-}" ]; then
    model=${SUPPORT_AGENT_EMBED_MODEL:-text-embedding-3-small}
    embed=(--embed "$SUPPORT_AGENT_EMBED_URL" --embed-model "$model")
    {
        echo "support_agent_embed_url   ${SUPPORT_AGENT_EMBED_URL};"
        echo "support_agent_embed_model ${model};"
        if [ -n "${OPENAI_API_KEY:-}" ]; then
            echo "support_agent_embed_api_key env=OPENAI_API_KEY;"
        fi
    } >> "$demo/retrieval.conf"
fi
if [ -n "${SUPPORT_AGENT_RERANK_URL:-}" ]; then
    {
        echo "support_agent_rerank_url   ${SUPPORT_AGENT_RERANK_URL};"
        if [ -n "${SUPPORT_AGENT_RERANK_MODEL:-}" ]; then
            echo "support_agent_rerank_model ${SUPPORT_AGENT_RERANK_MODEL};"
        fi
    } >> "$demo/retrieval.conf"
fi
"$top/build/kb-build" index --out "$demo/helpcenter.kb" \
    --markdown "$top/kb-build/sample-helpcenter" --quiet "${embed[@]}"
echo "Knowledge base: kb-build/sample-helpcenter -> build/demo/helpcenter.kb"

# the intent router, when the Bitext examples are there (../shared/data):
# every turn is classified, and POST /classify shows how
: > "$demo/router.conf"
bitext=$top/../shared/data/bitext/train.jsonl
if [ -f "$bitext" ]; then
    "$top/build/kb-build" intents --examples "$bitext" \
        --rules "$top/conf/routes.conf" --out "$demo/router.model" --quiet
    {
        echo "support_agent_intents  ../build/demo/router.model;"
        echo "location = /classify {"
        echo "    support_agent_classify;"
        echo "}"
    } > "$demo/router.conf"
    echo "Router: Bitext examples + conf/routes.conf -> build/demo/router.model"
fi

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

# the company's order API for the agent's actions (look up, refund, cancel,
# change the address): SUPPORT_AGENT_ORDERS_URL, else a demo shop
# (docs/shop-api.md) with all of tau-retail's orders when ../shared is there
if [ -n "${SUPPORT_AGENT_ORDERS_URL:-}" ]; then
    {
        echo "support_agent_orders_url ${SUPPORT_AGENT_ORDERS_URL};"
        if [ -n "${SUPPORT_AGENT_ORDERS_API_KEY:-}" ]; then
            export SUPPORT_AGENT_ORDERS_API_KEY
            echo "support_agent_orders_api_key env=SUPPORT_AGENT_ORDERS_API_KEY;"
        fi
    } > "$demo/orders.conf"
    echo "Orders API: ${SUPPORT_AGENT_ORDERS_URL}"
else
    shop_seed=()
    tau=$top/../shared/data/tau-retail
    if [ -d "$tau" ]; then
        shop_seed=(--seed-tau "$tau")
    fi
    /usr/bin/python3 "$top/t/shop_server.py" --port 8082 --quiet \
        --parent-pid $$ --db "$demo/shop.db" "${shop_seed[@]}" &
    echo "support_agent_orders_url http://127.0.0.1:8082/api;" \
        > "$demo/orders.conf"
    echo "Orders API: a demo shop on http://127.0.0.1:8082/api (curl -s '127.0.0.1:8082/api/orders/%23W2611340')"
fi

# the handoff to humans: the company's helpdesk, or the demo one
if [ -n "${SUPPORT_AGENT_HANDOFF_URL:-}" ]; then
    {
        echo "support_agent_handoff_url ${SUPPORT_AGENT_HANDOFF_URL};"
        if [ -n "${SUPPORT_AGENT_HANDOFF_API_KEY:-}" ]; then
            export SUPPORT_AGENT_HANDOFF_API_KEY
            echo "support_agent_handoff_api_key env=SUPPORT_AGENT_HANDOFF_API_KEY;"
        fi
    } > "$demo/handoff.conf"
    echo "Handoff: ${SUPPORT_AGENT_HANDOFF_URL}"
else
    # nginx is exec'd below with this pid: the helpdesk goes with it
    /usr/bin/python3 "$top/t/helpdesk_server.py" --port 8081 --quiet \
        --parent-pid $$ --record-dir "$demo/helpdesk" &
    echo "support_agent_handoff_url http://127.0.0.1:8081/tickets;" \
        > "$demo/handoff.conf"
    echo "Handoff: a demo helpdesk on 127.0.0.1:8081 (curl -s 127.0.0.1:8081/tickets)"
fi

"$nginx_bin" -p "$top/" -c conf/demo.conf -e build/demo/error.log -t -q

echo "Listening on http://127.0.0.1:8080  (Ctrl-C stops; log: build/demo/error.log)"
echo "Try:  curl -sN http://127.0.0.1:8080/chat -H 'Content-Type: application/json' -H 'Accept: text/event-stream' -d '{\"message\":\"What does error 4217 mean?\"}'"
echo "      curl -s 'http://127.0.0.1:8080/search?q=return+window&k=3'"
echo "      curl -s http://127.0.0.1:8080/chat -H 'Content-Type: application/json' -d '{\"message\":\"I want to talk to a human\"}'"

exec "$nginx_bin" -p "$top/" -c conf/demo.conf -e build/demo/error.log
