#!/usr/bin/env python3
"""Intent router quality and speed on ../shared/data (bench/routing.sh).

Trains with `kb-build intents`, classifies with `kb-build route` (the
module's code), and prints one table of figures with their targets.

    routing_eval.py KB_BUILD DATA_DIR WORK_DIR ROUTES_CONF

Folds are by position (example i is in fold i % k), so every run gives the
same figures.  Exit status 1 when a target is missed.
"""

import json
import os
import re
import subprocess
import sys
import time

KB, DATA, WORK, ROUTES = sys.argv[1:5]
ROWS = []
MISSED = []


def jsonl(path):
    with open(path, encoding='utf-8') as f:
        return [json.loads(line) for line in f if line.strip()]


def write(path, rows):
    with open(path, 'w', encoding='utf-8') as f:
        for r in rows:
            f.write(json.dumps(r) + '\n')


def train(name, examples, *opts):
    """a model file from examples; returns (path, report dict)"""
    ex = os.path.join(WORK, name + '.train.jsonl')
    model = os.path.join(WORK, name + '.model')
    write(ex, examples)
    out = subprocess.run([KB, 'intents', '--examples', ex, '--out', model]
                         + list(opts), check=True, capture_output=True,
                         text=True).stdout
    rep = dict(re.findall(r'^  (\w+) +(.*)$', out, re.M))
    return model, rep


def route(model, messages, *opts):
    """kb-build route's answers, and its latency line"""
    p = subprocess.run([KB, 'route', '--model', model] + list(opts),
                       input=''.join(json.dumps(m) + '\n' for m in messages),
                       check=True, capture_output=True, text=True)
    return [json.loads(line) for line in p.stdout.splitlines()], p.stderr


def row(figure, value, target=None, ok=None):
    if ok is not None and not ok:
        MISSED.append(figure)
    t = '' if target is None else '(target %s: %s)' % (
        target, 'ok' if ok else 'MISSED')
    ROWS.append((figure, value, t))


def f1(pred, gold):
    tp = sum(1 for p, g in zip(pred, gold) if p and g)
    fp = sum(1 for p, g in zip(pred, gold) if p and not g)
    fn = sum(1 for p, g in zip(pred, gold) if not p and g)
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    return (2 * prec * rec / (prec + rec) if prec + rec else 0.0), prec, rec


def cv(name, examples, k, *opts):
    """out-of-fold answers, in the examples' order"""
    out = [None] * len(examples)
    for f in range(k):
        tr = [x for i, x in enumerate(examples) if i % k != f]
        te = [(i, x) for i, x in enumerate(examples) if i % k == f]
        model, _ = train('%s-cv%d' % (name, f), tr, '--quiet', *opts)
        answers, _ = route(model, [x for _, x in te])
        for (i, _), a in zip(te, answers):
            out[i] = a
        os.unlink(model)
    return out


def latency(stderr):
    m = re.search(r'p50 ([0-9.]+) us, p90 [0-9.]+ us, p99 ([0-9.]+) us',
                  stderr)
    return (m.group(1), m.group(2)) if m else ('?', '?')


def bitext():
    d = os.path.join(DATA, 'bitext')
    tr, va = jsonl(d + '/train.jsonl'), jsonl(d + '/validation.jsonl')
    t0 = time.time()
    model, rep = train('bitext', tr, '--rules', ROUTES)
    secs = time.time() - t0
    ans, err = route(model, va, '--repeat', '20')
    acc = sum(a['intent'] == x['intent'] for a, x in zip(ans, va)) / len(va)
    row('Bitext validation accuracy (810, with routes.conf)', '%.4f' % acc,
        '>= 0.99', acc >= 0.99)
    plain, _ = train('bitext-plain', tr, '--quiet')
    ans0, _ = route(plain, va)
    acc0 = sum(a['intent'] == x['intent'] for a, x in zip(ans0, va)) / len(va)
    row('Bitext validation accuracy, model alone', '%.4f' % acc0)
    f, p, r = f1([a['intent'] == 'contact_human_agent' for a in ans],
                 [x['intent'] == 'contact_human_agent' for x in va])
    row('Bitext contact_human_agent F1 (P, R)',
        '%.4f (%.4f, %.4f)' % (f, p, r), '>= 0.95', f >= 0.95)
    p50, p99 = latency(err)
    row('scoring time per message (Bitext, rules on)',
        'p50 %s us, p99 %s us' % (p50, p99), '< 50 us', float(p99) < 50)
    row('Bitext model: training time, size',
        '%.2f s, %s, %s features, %s rules' % (secs, rep.get('size'),
                                               rep.get('features'),
                                               rep.get('rules')))
    again, _ = train('bitext-again', tr, '--rules', ROUTES)
    with open(model, 'rb') as a, open(again, 'rb') as b:
        same = a.read() == b.read()
    row('deterministic (trained twice: identical bytes)',
        'yes' if same else 'NO', 'yes', same)


def banking77():
    ex = jsonl(os.path.join(DATA, 'banking77/train.jsonl'))
    t0 = time.time()
    ans = cv('b77', ex, 5)
    acc = sum(a['intent'] == x['intent'] for a, x in zip(ans, ex)) / len(ex)
    row('Banking77 5-fold CV accuracy (10,003)', '%.4f' % acc, '>= 0.90',
        acc >= 0.90)
    model, rep = train('b77-full', ex, '--quiet')
    _, err = route(model, ex[:2000])
    p50, p99 = latency(err)
    row('Banking77: 5 trainings, model size, scoring',
        '%.1f s, %.1f MB, p50 %s us, p99 %s us' % (
            time.time() - t0, os.path.getsize(model) / 1048576, p50, p99))


def clinc():
    d = os.path.join(DATA, 'clinc150')
    tr, va = jsonl(d + '/train.jsonl'), jsonl(d + '/val.jsonl')
    rules = os.path.join(WORK, 'clinc-routes.conf')
    with open(rules, 'w') as f:
        f.write('route oos out_of_scope\n')
    t0 = time.time()
    model, rep = train('clinc', tr, '--rules', rules, '--threshold', 'auto')
    secs = time.time() - t0
    ans, _ = route(model, va)
    ins = [(a, x) for a, x in zip(ans, va) if x['intent'] != 'oos']
    oos = [(a, x) for a, x in zip(ans, va) if x['intent'] == 'oos']
    acc = sum(a['intent'] == x['intent'] for a, x in ins) / len(ins)
    rec = sum(a['route'] == 'out_of_scope' for a, _ in oos) / len(oos)
    thr = rep.get('threshold', '?').split(' ')[0]
    row('CLINC150 val oos recall (threshold %s from train)' % thr,
        '%.4f' % rec, '>= 0.85', rec >= 0.85)
    row('CLINC150 val in-scope accuracy (same threshold)', '%.4f' % acc,
        '>= 0.90', acc >= 0.90)
    ans0, _ = route(model, va, '--threshold', '0')
    acc0 = sum(a['intent'] == x['intent'] for a, x in zip(ans0, va)
               if x['intent'] != 'oos') / len(ins)
    rec0 = sum(a['route'] == 'out_of_scope' for a, x in zip(ans0, va)
               if x['intent'] == 'oos') / len(oos)
    row('CLINC150 val, oos class only (threshold 0)',
        'in-scope %.4f, oos recall %.4f' % (acc0, rec0))
    row('CLINC150 training (6 trainings for the threshold), size',
        '%.1f s, %s' % (secs, rep.get('size')))


def nlupp():
    ex = []
    for dom in ('banking', 'hotels'):
        for k in range(10):
            p = os.path.join(DATA, 'nlupp', dom, 'fold%d.jsonl' % k)
            for x in jsonl(p):
                ex.append({'text': x['text'],
                           'intent': 'contact_human_agent'
                           if 'handoff' in x['intents'] else 'other'})
    ans = cv('nlupp', ex, 10, '--rules', ROUTES)
    gold = [x['intent'] == 'contact_human_agent' for x in ex]
    f, p, r = f1([a['intent'] == 'contact_human_agent' for a in ans], gold)
    row('NLU++ handoff F1, 10-fold CV (P, R; %d of %d)' % (sum(gold),
                                                          len(ex)),
        '%.4f (%.4f, %.4f)' % (f, p, r), '>= 0.95', f >= 0.95)
    f, p, r = f1([a.get('rule') is not None
                  and a['intent'] == 'contact_human_agent' for a in ans], gold)
    row('NLU++ handoff, the rules alone (P, R)',
        '%.4f (%.4f, %.4f)' % (f, p, r))
    # the same without the intent's own threshold: the model escalating
    # on its own whenever contact_human_agent is its best guess
    with open(ROUTES) as fi:
        text = fi.read()
    loose = os.path.join(WORK, 'routes-no-intent-threshold.conf')
    with open(loose, 'w') as fo:
        fo.write(re.sub(r'(?m)^threshold [a-z_]+ .*$', '', text))
    ans = cv('nlupp-loose', ex, 10, '--rules', loose)
    f, p, r = f1([a['intent'] == 'contact_human_agent' for a in ans], gold)
    row('NLU++ handoff, no "threshold contact_human_agent" (P, R)',
        '%.4f (%.4f, %.4f)' % (f, p, r))


def false_alarms():
    """the human-request rules on messages that are not requests"""
    model, _ = train('alarms', [{'text': 'x', 'intent': 'x'}], '--quiet',
                     '--rules', ROUTES)
    sets = [('Banking77', 'banking77/train.jsonl', 'text'),
            ('CLINC150 val', 'clinc150/val.jsonl', 'text'),
            ('DSTC11', 'dstc11-track5/routing.jsonl', 'last_user_turn')]
    out = []
    for name, path, key in sets:
        p = os.path.join(DATA, path)
        if not os.path.exists(p):
            continue
        msgs = [{'text': x[key]} for x in jsonl(p)]
        ans, _ = route(model, msgs)
        n = sum(a.get('rule') is not None
                and a['intent'] == 'contact_human_agent' for a in ans)
        out.append('%s %d of %d' % (name, n, len(msgs)))
    row('contact_human_agent rules on data sets without the intent',
        ', '.join(out))


def hint3():
    d = os.path.join(DATA, 'hint3/train')
    for name in sorted(os.listdir(d)):
        ex = jsonl(os.path.join(d, name))
        ans = cv('hint3-' + name, ex, 5)
        acc = sum(a['intent'] == x['intent']
                  for a, x in zip(ans, ex)) / len(ex)
        row('HINT3 %s 5-fold CV accuracy (%d, %d intents)' % (
            name.split('_')[0], len(ex), len({x['intent'] for x in ex})),
            '%.4f' % acc)


def dstc11():
    rows = jsonl(os.path.join(DATA, 'dstc11-track5/routing.jsonl'))
    ex = [{'text': r['last_user_turn'],
           'intent': 'knowledge' if r['knowledge_seeking'] else 'action'}
          for r in rows]
    ans = cv('dstc11', ex, 5)
    acc = sum(a['intent'] == x['intent'] for a, x in zip(ans, ex)) / len(ex)
    f, p, r = f1([a['intent'] == 'knowledge' for a in ans],
                 [x['intent'] == 'knowledge' for x in ex])
    row('DSTC11 knowledge vs action, 5-fold CV (last turn)',
        'accuracy %.4f, knowledge F1 %.4f (P %.4f, R %.4f)' % (acc, f, p, r))


def main():
    steps = [('bitext', bitext), ('banking77', banking77),
             ('clinc150', clinc), ('nlupp', nlupp),
             ('banking77', false_alarms), ('hint3', hint3),
             ('dstc11-track5', dstc11)]
    for folder, fn in steps:
        if not os.path.isdir(os.path.join(DATA, folder)):
            row(folder, 'not found: skipped')
            continue
        print('routing: %s' % folder, file=sys.stderr, flush=True)
        fn()
    print()
    print('Intent router (kb-build intents / route, sa_intent; %d CPUs)'
          % os.cpu_count())
    w = max(len(r[0]) for r in ROWS)
    for figure, value, target in ROWS:
        print('%-*s  %s %s' % (w, figure, value, target))
    if MISSED:
        print('\nmissed: ' + '; '.join(MISSED))
    return 1 if MISSED else 0


if __name__ == '__main__':
    sys.exit(main())
