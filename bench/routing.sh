#!/usr/bin/env bash
# The intent router: quality and speed of kb-build intents / route
# (src/sa_intent.c) on ../shared/data.
#
#   bash bench/routing.sh [build/kb-build]        (make routing)
#
# Bitext (train -> validation, with conf/routes.conf), Banking77 (5-fold
# cross-validation on train), CLINC150 (train -> val, out of scope by an
# "oos" class and a threshold chosen on train by cross-validation),
# explicit requests for a human (NLU++ handoff, 10-fold; Bitext
# contact_human_agent), HINT3 and DSTC11 track 5 (figures only), scoring
# time, model size, training time, determinism.  bench/routing_eval.py
# does the work and prints the table.
#
# Exits 0, or 1 when a target is missed (or a step fails).  Without
# ../shared it says so and exits 0.
set -euo pipefail

cd "$(dirname "$0")/.."
TOP=$(pwd)
KB_BUILD=${1:-$TOP/build/kb-build}
DATA=$TOP/../shared/data
WORK=$TOP/build/routing
PYTHON=${PYTHON:-/usr/bin/python3}
[ -x "$PYTHON" ] || PYTHON=python3

if [ ! -d "$DATA/bitext" ]; then
    echo "routing: $DATA not found (../shared absent): skipped"
    exit 0
fi

if [ ! -x "$KB_BUILD" ]; then
    echo "routing: $KB_BUILD not built (make build)" >&2
    exit 1
fi

rm -rf "$WORK"
mkdir -p "$WORK"

"$PYTHON" bench/routing_eval.py "$KB_BUILD" "$DATA" "$WORK" \
    "$TOP/conf/routes.conf"
