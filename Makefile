# ngx_support_agent: build, test and run.
#
#   make run     build the module and run nginx with the demo configuration
#                on 127.0.0.1:8080 (foreground; Ctrl-C stops it)
#   make test    build everything and run every suite (unit + t/*.t)
#   make build   only the module (build/nginx/ngx_http_support_agent_module.so)
#
# The module is built out of tree against Debian's nginx-dev sources
# (/usr/share/nginx/src), or against an nginx source tree given as
# NGINX_SRC=/path/to/nginx-1.x (then nginx itself is built there too and the
# tests use that binary).

SHELL        := /bin/bash
TOP          := $(abspath .)
BUILD        := $(TOP)/build
DEBIAN_SRC   := /usr/share/nginx/src
NGINX_SRC    ?=
CC           ?= cc
CFLAGS_UNIT  ?= -g -O1 -Wall -Wextra -Wno-unused-parameter -Werror -fsanitize=address,undefined -fno-omit-frame-pointer
PROVE_JOBS   ?= 2

ifeq ($(NGINX_SRC),)
NGX_SRC_DIR  := $(DEBIAN_SRC)
NGX_BUILD    := $(BUILD)/nginx
NGINX_BIN    ?= /usr/sbin/nginx
else
NGX_SRC_DIR  := $(abspath $(NGINX_SRC))
NGX_BUILD    := $(BUILD)/nginx-tree
NGINX_BIN    ?= $(NGX_BUILD)/nginx
endif
MODULE_SO    := $(NGX_BUILD)/ngx_http_support_agent_module.so

PURE_SRCS    := $(wildcard src/sa_*.c)
NGX_SRCS     := $(wildcard src/ngx_http_support_agent_*.c)
ALL_SRCS     := $(PURE_SRCS) $(NGX_SRCS) $(wildcard src/*.h) config
UNIT_SRCS    := $(wildcard t/unit/test_*.c)
UNIT_OBJS    := $(patsubst src/%.c,$(BUILD)/unit/obj/%.o,$(PURE_SRCS))
UNIT_BINS    := $(patsubst t/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRCS))

DEBIAN_PKGS  := nginx nginx-dev libcurl4-openssl-dev libyajl-dev liblmdb-dev \
                libstemmer-dev gcc make perl libtest-base-perl \
                libtext-diff-perl libtest-longstring-perl \
                liblist-moreutils-perl libhttp-message-perl liburi-perl \
                python3 python3-jsonschema python3-yaml curl

.PHONY: all build deps run test unit unit-quiet servers suites validate-requests clean valgrind bench retrieval

all: build

deps:
	@bash util/deps.sh $(DEBIAN_PKGS)

build: deps $(MODULE_SO) $(BUILD)/kb-build

$(MODULE_SO): $(ALL_SRCS)
	@mkdir -p $(NGX_BUILD)
ifeq ($(NGINX_SRC),)
	cd $(NGX_SRC_DIR) && . ./conf_flags && ./configure \
	    --with-cc-opt="-g -O2 -fPIC -Wall -Werror" --with-ld-opt="-fPIC" \
	    "$${NGX_CONF_FLAGS[@]}" \
	    --add-dynamic-module=$(TOP) --builddir=$(NGX_BUILD) > $(NGX_BUILD)/configure.log
	$(MAKE) -f $(NGX_BUILD)/Makefile -C $(NGX_SRC_DIR) modules
else
	cd $(NGX_SRC_DIR) && ./configure --with-compat --with-debug \
	    --with-cc-opt="-g -O2 -fPIC -Wall -Werror" --with-ld-opt="-fPIC" \
	    --add-dynamic-module=$(TOP) --builddir=$(NGX_BUILD) > $(NGX_BUILD)/configure.log
	$(MAKE) -f $(NGX_BUILD)/Makefile -C $(NGX_SRC_DIR) build modules
endif

# the offline indexer of the knowledge base (kb-build/README.md)
KB_BUILD_SRCS := $(wildcard kb-build/*.c)
KB_BUILD_DEPS := $(KB_BUILD_SRCS) $(wildcard kb-build/*.h) $(PURE_SRCS) \
                 $(wildcard src/sa_*.h)

$(BUILD)/kb-build: $(KB_BUILD_DEPS)
	@mkdir -p $(BUILD)
	$(CC) -g -O2 -Wall -Wextra -Wno-unused-parameter -Werror -Isrc -Ikb-build \
	    -o $@ $(KB_BUILD_SRCS) $(PURE_SRCS) -llmdb -lyajl -lstemmer -lcurl -lm

# the pure sources are compiled once, then linked into each unit test
.SECONDARY: $(UNIT_OBJS)

$(BUILD)/unit/obj/%.o: src/%.c $(wildcard src/sa_*.h)
	@mkdir -p $(BUILD)/unit/obj
	$(CC) $(CFLAGS_UNIT) -Isrc -c -o $@ $<

$(BUILD)/unit/%: t/unit/%.c $(UNIT_OBJS) t/unit/tap.h
	@mkdir -p $(BUILD)/unit
	$(CC) $(CFLAGS_UNIT) -Isrc -It/unit -o $@ $< $(UNIT_OBJS) -lyajl -llmdb -lstemmer -lcurl -lm

unit: deps $(UNIT_BINS)
	prove -v --exec '' $(UNIT_BINS) 2>&1 | tail -n 40

SHARED       := $(abspath $(TOP)/../shared)
RECORDED     := $(BUILD)/llm-requests

suites: build
	rm -rf $(RECORDED)
	TEST_NGINX_BINARY=$(NGINX_BIN) MODULE_SO=$(MODULE_SO) \
	PERL5OPT="-I$(TOP)/t/lib -MSubreaper" SA_LLM_RECORD_DIR=$(RECORDED) \
	TEST_NGINX_RANDOMIZE=1 prove -I$(TOP)/t/lib -j$(PROVE_JOBS) -r t/
	@$(MAKE) --no-print-directory validate-requests

# every request the module sent to the test servers, against the published
# schemas (strict: no key the spec does not name). t/llm_server.py records
# <test>/NNNNNN.json (chat); t/kb_server.py records <test>-kb/NNNNNN-<service>.json,
# checked against the $defs its service names (embeddings: openai
# CreateEmbeddingRequest, embed / rerank-tei: tei EmbedRequest / RerankRequest,
# qdrant-<op>: qdrant req.<op>; rerank-cohere has no published schema)
validate-requests:
	@if [ -f $(SHARED)/tools/validate.py ]; then \
	    n=$$(find $(RECORDED) -name '[0-9][0-9][0-9][0-9][0-9][0-9].json' | wc -l); \
	    find $(RECORDED) -name '[0-9][0-9][0-9][0-9][0-9][0-9].json' -print0 | xargs -0 \
	        /usr/bin/python3 $(SHARED)/tools/validate.py --strict \
	        $(SHARED)/specs/bundles/openai.schema.json \
	        CreateChatCompletionRequest > $(BUILD)/validate.log 2>&1 \
	    && echo "validate.py: $$n recorded LLM requests valid (strict)" \
	    || { cat $(BUILD)/validate.log; exit 1; }; \
	    k=0; : > $(BUILD)/validate-kb.log; \
	    for svc in $$(find $(RECORDED) -name '[0-9][0-9][0-9][0-9][0-9][0-9]-*.json' \
	                  | sed 's|.*/[0-9]*-||; s|[.]json$$||' | sort -u); do \
	        case $$svc in \
	            embeddings) b=openai d=CreateEmbeddingRequest;; \
	            embed) b=tei d=EmbedRequest;; \
	            rerank-tei) b=tei d=RerankRequest;; \
	            qdrant-*) b=qdrant d=req.$${svc#qdrant-};; \
	            *) continue;; \
	        esac; \
	        pat="[0-9][0-9][0-9][0-9][0-9][0-9]-$$svc.json"; \
	        k=$$((k + $$(find $(RECORDED) -name "$$pat" | wc -l))); \
	        find $(RECORDED) -name "$$pat" -print0 | xargs -0 \
	            /usr/bin/python3 $(SHARED)/tools/validate.py --strict \
	            $(SHARED)/specs/bundles/$$b.schema.json $$d >> $(BUILD)/validate-kb.log 2>&1 \
	        || { cat $(BUILD)/validate-kb.log; exit 1; }; \
	    done; \
	    echo "validate.py: $$k recorded kb_server requests valid (strict)"; \
	    h=$$(find $(RECORDED) -name '[0-9][0-9][0-9][0-9][0-9][0-9]-ticket.json' | wc -l); \
	    if [ $$h -gt 0 ]; then \
	        /usr/bin/python3 t/helpdesk_server.py check $(RECORDED) \
	            > $(BUILD)/validate-tickets.log 2>&1 \
	        && echo "helpdesk_server.py: $$h recorded tickets valid" \
	        || { cat $(BUILD)/validate-tickets.log; exit 1; }; \
	    fi; \
	    o=$$(find $(RECORDED) -path '*-shop/*' -name '[0-9][0-9][0-9][0-9][0-9][0-9]-*.json' | wc -l); \
	    if [ $$o -gt 0 ]; then \
	        /usr/bin/python3 t/shop_server.py check $(RECORDED) \
	            > $(BUILD)/validate-shop.log 2>&1 \
	        && echo "shop_server.py: $$o recorded order API requests valid" \
	        || { cat $(BUILD)/validate-shop.log; exit 1; }; \
	    fi; \
	else \
	    echo "validate.py: ../shared not found, recorded requests not checked"; \
	fi

test: deps
	@$(MAKE) --no-print-directory build
	@$(MAKE) --no-print-directory unit-quiet
	@$(MAKE) --no-print-directory servers
	@$(MAKE) --no-print-directory suites

# the test peers themselves: every endpoint, scenario and error path of
# t/llm_server.py and t/kb_server.py against their own expectations
servers:
	/usr/bin/python3 t/llm_server_selftest.py
	/usr/bin/python3 t/kb_server_selftest.py
	/usr/bin/python3 t/helpdesk_server_selftest.py
	/usr/bin/python3 t/shop_server_selftest.py
	/usr/bin/python3 util/check-replies.py

unit-quiet: $(UNIT_BINS)
	prove --exec '' $(UNIT_BINS)

valgrind: build
	TEST_NGINX_USE_VALGRIND=1 TEST_NGINX_BINARY=$(NGINX_BIN) \
	MODULE_SO=$(MODULE_SO) PERL5OPT="-I$(TOP)/t/lib -MSubreaper" \
	prove -I$(TOP)/t/lib -r t/

run: build
	@bash util/run.sh $(NGINX_BIN) $(MODULE_SO)

bench: build
	@bash bench/run.sh $(NGINX_BIN) $(MODULE_SO)

# BM25 quality and speed on BEIR SciFact (../shared), see bench/retrieval.sh
retrieval: deps $(BUILD)/kb-build
	@bash bench/retrieval.sh $(BUILD)/kb-build

# intent router quality and speed on ../shared/data, see bench/routing.sh
routing: deps $(BUILD)/kb-build
	@bash bench/routing.sh $(BUILD)/kb-build

clean:
	rm -rf $(BUILD) t/servroot* demo/
