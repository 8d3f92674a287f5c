#!/bin/bash
# make bench: bash bench/run.sh /usr/sbin/nginx /abs/path/to/ngx_http_support_agent_module.so
#
# ngx_http_support_agent_module against plain nginx proxy_pass of the same mock LLM stream,
# in one run; see bench/README.md. A benchmark, not a test: exits 0 whatever the figures.
# Extra arguments go to bench/bench.py (--turns N, --streams N, --only a|b, --keep, ...).

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
nginx=${1:-/usr/sbin/nginx}
module=${2:-$here/../build/nginx/ngx_http_support_agent_module.so}
shift $(( $# < 2 ? $# : 2 ))

py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3)

for f in "$nginx" "$module" "$here/../t/llm_server.py"; do
    if [ ! -e "$f" ]; then
        echo "bench: $f not found; skipped (make build first)"
        exit 0
    fi
done

# 1000 client sockets + 1000 downstream + 1000 upstream connections in one process each
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 4200 ]; then
    echo "bench: note: ulimit -n is only $(ulimit -n); the 1000-stream scenario may fail to connect"
fi

"$py" "$here/bench.py" "$nginx" "$module" "$@"
rc=$?
[ $rc -eq 0 ] || echo "bench: bench.py exited with status $rc (setup problem, see above)"
exit 0
