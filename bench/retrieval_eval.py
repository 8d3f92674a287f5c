#!/usr/bin/env python3
"""nDCG@10, recall@10 and recall@100 of a TREC run against TREC/BEIR qrels.

    retrieval_eval.py QRELS RUN [--json]

QRELS: "query-id corpus-id score" lines (tab or space separated; a header
line is skipped), or TREC's "qid 0 docid rel".  RUN: "qid Q0 docid rank
score tag" lines.

trec_eval semantics: a query's documents are ordered by score, descending,
ties by docid descending (the rank column is ignored); nDCG@10 gains are the
qrels' relevance values (> 0), the ideal ranking is the qrels' own; queries
are those with at least one relevant document in the qrels (a query with no
line in the run scores 0, as trec_eval -c does).  Python 3 standard library
only.
"""

import json
import math
import sys


def read_qrels(path):
    qrels = {}
    with open(path, encoding='utf-8') as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) == 4:
                qid, _, doc, rel = parts
            elif len(parts) == 3:
                qid, doc, rel = parts
            else:
                sys.exit('%s:%d: expected 3 or 4 fields' % (path, n))
            try:
                rel = int(rel)
            except ValueError:
                if n == 1:
                    continue            # the header line
                sys.exit('%s:%d: relevance is not an integer' % (path, n))
            qrels.setdefault(qid, {})[doc] = rel
    return qrels


def read_run(path):
    run = {}
    with open(path, encoding='utf-8') as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 6:
                sys.exit('%s:%d: expected 6 fields' % (path, n))
            qid, _, doc, _, score, _ = parts
            run.setdefault(qid, {})[doc] = float(score)
    return run


def ranked(docs):
    # score descending, then docid descending: trec_eval's order
    return [d for d, _ in sorted(docs.items(),
                                 key=lambda x: (x[1], x[0]), reverse=True)]


def ndcg(ranking, rels, k):
    dcg = 0.0
    for i, doc in enumerate(ranking[:k]):
        gain = rels.get(doc, 0)
        if gain > 0:
            dcg += gain / math.log2(i + 2)
    ideal = sorted((g for g in rels.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall(ranking, rels, k):
    relevant = {d for d, g in rels.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranking[:k])) / len(relevant)


def evaluate(qrels, run):
    n = 0
    sum_ndcg = 0.0
    sum_recall10 = 0.0
    sum_recall = 0.0
    for qid, rels in qrels.items():
        if not any(g > 0 for g in rels.values()):
            continue
        ranking = ranked(run.get(qid, {}))
        n += 1
        sum_ndcg += ndcg(ranking, rels, 10)
        sum_recall10 += recall(ranking, rels, 10)
        sum_recall += recall(ranking, rels, 100)
    if n == 0:
        return {'queries': 0, 'ndcg@10': 0.0, 'recall@10': 0.0,
                'recall@100': 0.0}
    return {'queries': n, 'ndcg@10': sum_ndcg / n,
            'recall@10': sum_recall10 / n, 'recall@100': sum_recall / n}


def main():
    args = [a for a in sys.argv[1:] if not a.startswith('--')]
    if len(args) != 2:
        sys.exit(__doc__)
    res = evaluate(read_qrels(args[0]), read_run(args[1]))
    if '--json' in sys.argv:
        print(json.dumps(res))
    else:
        print('queries %d  nDCG@10 %.4f  recall@10 %.4f  recall@100 %.4f'
              % (res['queries'], res['ndcg@10'], res['recall@10'],
                 res['recall@100']))


if __name__ == '__main__':
    main()
