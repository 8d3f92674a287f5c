#!/usr/bin/env bash
# BM25 retrieval: quality and speed of kb-build and sa_kb_search_bm25().
#
#   bash bench/retrieval.sh [build/kb-build]        (make retrieval)
#
# 1. Indexes BEIR SciFact (../shared/data/beir-scifact: 5,183 abstracts),
#    searches its 809 train queries exactly as the module does, and checks
#    nDCG@10 and recall@100 against a Lucene-like BM25 (k1 0.9, b 0.4,
#    English stop words, Porter): 0.695 and 0.926, within 0.005.
# 2. Times an incremental rebuild with 1% of the documents changed.
# 3. Builds a synthetic 100k-chunk KB (the corpus 20 times, each copy with
#    its own ids and a marker word, so nothing is deduplicated) and times
#    the same queries there.
# 4. tau2-banking (../shared/data/tau2-banking-kb: a bank's 698-article
#    help center, 49 dev tasks whose query is the whole customer scenario):
#    recall@10, nDCG@10 and recall@100 of the articles a task needs, and
#    latency, for plain BM25 of the whole scenario and for the module's
#    query strategy (sa_query_search(), kb-build search --strategy auto),
#    over the articles indexed by section (converted to markdown, as a help
#    center is indexed) and as whole documents (corpus.jsonl).  Figures
#    only, no check; skipped when the folder is absent.
#
# The searches use the module's default strategy (sa_query_search()):
# SciFact's claims are short (at most 39 words), so they are plain BM25,
# which the check in 1 confirms.
#
# Prints a table of figures.  Exits 0, or 1 when the quality is off (or a
# step fails).  Without ../shared it says so and exits 0.
set -euo pipefail

cd "$(dirname "$0")/.."
TOP=$(pwd)
KB_BUILD=${1:-$TOP/build/kb-build}
DATA=$TOP/../shared/data/beir-scifact
WORK=$TOP/build/retrieval
PYTHON=${PYTHON:-/usr/bin/python3}
[ -x "$PYTHON" ] || PYTHON=python3

REF_NDCG=0.695
REF_RECALL=0.926
TOLERANCE=0.005

if [ ! -f "$DATA/corpus.jsonl" ]; then
    echo "retrieval: $DATA not found (../shared absent): skipped"
    exit 0
fi

if [ ! -x "$KB_BUILD" ]; then
    echo "retrieval: $KB_BUILD not built (make build)" >&2
    exit 1
fi

rm -rf "$WORK"
mkdir -p "$WORK"

# "seconds    0.35 (14622 docs/s, 22.7 MB/s)" -> "0.35 14622 22.7"
speed() {
    sed -n 's/^  seconds *\([0-9.]*\) (\([0-9]*\) docs\/s, \([0-9.]*\) MB\/s)/\1 \2 \3/p' "$1"
}

# "... p50 52.8 us, p90 89.7 us, p99 125.9 us, max 193.8 us" -> "52.8 125.9"
latency() {
    sed -n 's/.* p50 \([0-9.]*\) us, p90 [0-9.]* us, p99 \([0-9.]*\) us.*/\1 \2/p' "$1"
}

echo "retrieval: indexing SciFact"
"$KB_BUILD" index --out "$WORK/scifact.kb" --jsonl "$DATA/corpus.jsonl" \
    --quiet > "$WORK/index.log"
read -r IDX_S IDX_DOCS IDX_MB < <(speed "$WORK/index.log")

echo "retrieval: searching 809 queries"
"$KB_BUILD" search --kb "$WORK/scifact.kb" --queries "$DATA/queries.train.jsonl" \
    --k 100 --tag kb-build --repeat 5 > "$WORK/scifact.run" 2> "$WORK/search.log"
read -r P50 P99 < <(latency "$WORK/search.log")

"$KB_BUILD" search --kb "$WORK/scifact.kb" --queries "$DATA/queries.train.jsonl" \
    --k 10 --repeat 5 > /dev/null 2> "$WORK/search10.log"
read -r P50_10 P99_10 < <(latency "$WORK/search10.log")

# the module's whole default pipeline: sa_query, then the built-in
# reranker over 20 candidates (support_agent_kb_candidates) with its
# relevance threshold; nDCG@10 only (at most 20 documents come back)
"$KB_BUILD" search --kb "$WORK/scifact.kb" --queries "$DATA/queries.train.jsonl" \
    --k 10 --chunk-k 20 --reranker builtin --tag rerank --repeat 3 \
    > "$WORK/scifact-rerank.run" 2> "$WORK/search-rerank.log"
read -r RR_P50 RR_P99 < <(latency "$WORK/search-rerank.log")
read -r RR_NDCG < <("$PYTHON" bench/retrieval_eval.py \
    "$DATA/qrels.train.tsv" "$WORK/scifact-rerank.run" --json \
    | "$PYTHON" -c 'import json,sys; r=json.load(sys.stdin); print("%.4f" % r["ndcg@10"])')

read -r NDCG RECALL < <("$PYTHON" bench/retrieval_eval.py \
    "$DATA/qrels.train.tsv" "$WORK/scifact.run" --json \
    | "$PYTHON" -c 'import json,sys; r=json.load(sys.stdin); print("%.4f %.4f" % (r["ndcg@10"], r["recall@100"]))')

QUALITY=$("$PYTHON" -c "print('ok' if abs($NDCG - $REF_NDCG) <= $TOLERANCE and abs($RECALL - $REF_RECALL) <= $TOLERANCE else 'OFF')")

# an incremental rebuild: 1% of the documents changed, 0.5% removed
echo "retrieval: incremental rebuild"
"$PYTHON" - "$DATA/corpus.jsonl" "$WORK/changed.jsonl" <<'EOF'
import json, sys
with open(sys.argv[1], encoding='utf-8') as f, \
        open(sys.argv[2], 'w', encoding='utf-8') as o:
    for i, line in enumerate(f):
        d = json.loads(line)
        if i % 200 == 7:
            continue
        if i % 100 == 3:
            d['text'] += ' (revised)'
        o.write(json.dumps(d) + '\n')
EOF
"$KB_BUILD" index --out "$WORK/scifact.kb" --jsonl "$WORK/changed.jsonl" \
    --quiet > "$WORK/incremental.log"
read -r INC_S _ _ < <(speed "$WORK/incremental.log")
INC_WHAT=$(sed -n 's/^  documents *\([0-9]*\) (new \([0-9]*\), changed \([0-9]*\), unchanged \([0-9]*\), removed \([0-9]*\))/changed \3, removed \5/p' "$WORK/incremental.log")

# 100k chunks
echo "retrieval: synthetic 100k-chunk KB"
"$PYTHON" - "$DATA/corpus.jsonl" "$WORK/synthetic.jsonl" <<'EOF'
import json, sys
with open(sys.argv[1], encoding='utf-8') as f:
    docs = [json.loads(line) for line in f]
with open(sys.argv[2], 'w', encoding='utf-8') as o:
    for r in range(20):
        for d in docs:
            o.write(json.dumps({'_id': '%s-%d' % (d['_id'], r),
                                'title': d['title'],
                                'text': '%s copy%d' % (d['text'], r)}) + '\n')
EOF
"$KB_BUILD" index --out "$WORK/synthetic.kb" --jsonl "$WORK/synthetic.jsonl" \
    --quiet > "$WORK/synthetic-index.log"
read -r SYN_S SYN_DOCS SYN_MB < <(speed "$WORK/synthetic-index.log")
SYN_CHUNKS=$(sed -n 's/^  chunks *\([0-9]*\).*/\1/p' "$WORK/synthetic-index.log")
SYN_SIZE=$(sed -n 's/^  size *\([0-9.]*\) MB.*/\1/p' "$WORK/synthetic-index.log")

"$KB_BUILD" search --kb "$WORK/synthetic.kb" --queries "$DATA/queries.train.jsonl" \
    --k 100 --repeat 3 > /dev/null 2> "$WORK/synthetic-search.log"
read -r SYN_P50 SYN_P99 < <(latency "$WORK/synthetic-search.log")

"$KB_BUILD" search --kb "$WORK/synthetic.kb" --queries "$DATA/queries.train.jsonl" \
    --k 10 --repeat 3 > /dev/null 2> "$WORK/synthetic-search10.log"
read -r SYN_P50_10 SYN_P99_10 < <(latency "$WORK/synthetic-search10.log")

rm -f "$WORK/synthetic.jsonl" "$WORK/synthetic.kb" "$WORK/changed.jsonl"

# tau2-banking: long, noisy customer scenarios against a real-shaped help
# center.  Documents are scored as their best chunk (kb-build search), so
# 1000 chunks are fetched for recall@100 of documents.
TAU2=$TOP/../shared/data/tau2-banking-kb
TAU2_ROWS=()

tau2_search() {     # KB RUN-NAME LABEL SEARCH-OPTIONS...
    local kb=$1 name=$WORK/tau2-$1-$2 label=$3 r10 ndcg r100 p50 p99
    shift 3
    "$KB_BUILD" search --kb "$WORK/tau2-$kb.kb" \
        --queries "$TAU2/queries.dev.jsonl" --k 100 --chunk-k 1000 \
        --repeat 5 "$@" > "$name.run" 2> "$name.log"
    read -r p50 p99 < <(latency "$name.log")
    read -r r10 ndcg r100 < <("$PYTHON" bench/retrieval_eval.py \
        "$TAU2/qrels.dev.tsv" "$name.run" --json \
        | "$PYTHON" -c 'import json,sys; r=json.load(sys.stdin); print("%.4f %.4f %.4f" % (r["recall@10"], r["ndcg@10"], r["recall@100"]))')
    TAU2_ROWS+=("$(printf '%-6s %-22s %7s %8s %7s   p50 %s us, p99 %s us' \
        "$kb" "$label" "$r10" "$ndcg" "$r100" "$p50" "$p99")")
}

if [ -d "$TAU2/documents" ] && [ -f "$TAU2/queries.dev.jsonl" ]; then
    echo "retrieval: tau2-banking (698 articles, 49 dev scenarios)"
    rm -rf "$WORK/tau2-md"
    mkdir -p "$WORK/tau2-md"

    # each article as the markdown page a help center would have
    "$PYTHON" - "$TAU2/documents" "$WORK/tau2-md" <<'EOF'
import glob, json, os, sys
for path in sorted(glob.glob(os.path.join(sys.argv[1], '*.json'))):
    with open(path, encoding='utf-8') as f:
        d = json.load(f)
    with open(os.path.join(sys.argv[2], d['id'] + '.md'), 'w',
              encoding='utf-8') as o:
        o.write('# %s\n\n%s\n' % (d['title'], d['content']))
EOF
    "$KB_BUILD" index --out "$WORK/tau2-md.kb" --markdown "$WORK/tau2-md" \
        --quiet > "$WORK/tau2-md-index.log"
    "$KB_BUILD" index --out "$WORK/tau2-jsonl.kb" \
        --jsonl "$TAU2/corpus.jsonl" --quiet > "$WORK/tau2-jsonl-index.log"
    TAU2_CHUNKS=$(sed -n 's/^  chunks *\([0-9]*\).*/\1/p' "$WORK/tau2-md-index.log")

    for kb in md jsonl; do
        tau2_search "$kb" plain "plain BM25" --strategy plain
        tau2_search "$kb" nopairs "stop words, b 0.75" --strategy auto \
            --rerank 0
        tau2_search "$kb" auto "sa_query (default)" --strategy auto
        tau2_search "$kb" rerank "+ built-in reranker" --strategy auto \
            --reranker builtin
    done
else
    TAU2_ROWS+=("$TAU2 not found: skipped")
fi

echo
echo "BM25 retrieval (kb-build, sa_query_search / sa_kb_search_bm25; $(nproc) CPUs)"
printf '%-44s %s\n' "figure" "value"
printf '%-44s %s\n' "--------------------------------------------" "----------------------------"
printf '%-44s %s (reference %s +- %s: %s)\n' "SciFact train nDCG@10 (809 queries)" "$NDCG" "$REF_NDCG" "$TOLERANCE" "$QUALITY"
printf '%-44s %s (reference %s)\n' "SciFact train recall@100" "$RECALL" "$REF_RECALL"
printf '%-44s %s s, %s docs/s, %s MB/s\n' "index SciFact (5,183 docs, full)" "$IDX_S" "$IDX_DOCS" "$IDX_MB"
printf '%-44s %s s (%s)\n' "incremental rebuild" "$INC_S" "$INC_WHAT"
printf '%-44s p50 %s us, p99 %s us\n' "search SciFact, k 100" "$P50" "$P99"
printf '%-44s p50 %s us, p99 %s us\n' "search SciFact, k 10" "$P50_10" "$P99_10"
printf '%-44s nDCG@10 %s, p50 %s us, p99 %s us\n' "SciFact + built-in reranker (module default)" "$RR_NDCG" "$RR_P50" "$RR_P99"
printf '%-44s %s s, %s docs/s, %s MB/s, %s MB\n' "index synthetic ($SYN_CHUNKS chunks)" "$SYN_S" "$SYN_DOCS" "$SYN_MB" "$SYN_SIZE"
printf '%-44s p50 %s us, p99 %s us\n' "search synthetic, k 100" "$SYN_P50" "$SYN_P99"
printf '%-44s p50 %s us, p99 %s us\n' "search synthetic, k 10" "$SYN_P50_10" "$SYN_P99_10"
echo
echo "tau2-banking dev: 49 whole scenarios; md: the 698 articles by section (${TAU2_CHUNKS:-?} chunks), jsonl: whole"
echo "(the built-in reranker keeps 20 candidates, so its R@100 is at most R@20)"
printf '%-6s %-22s %7s %8s %7s   %s\n' "KB" "strategy" "R@10" "nDCG@10" "R@100" "search latency"
for row in "${TAU2_ROWS[@]}"; do
    echo "$row"
done
echo
echo "run: $WORK/scifact.run; logs in $WORK"

if [ "$QUALITY" != ok ]; then
    echo "retrieval: nDCG@10 or recall@100 off the reference by more than $TOLERANCE" >&2
    exit 1
fi
