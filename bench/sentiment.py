#!/usr/bin/env python3
"""The built-in sentiment scorer (sa_sentiment(), src/sa_escalate.c) on
real dialogues, and on a few hand-written support messages.

    python3 bench/sentiment.py [--data ../shared/data/uss-satisfaction/SGD.txt]
                               [--threshold 0.3]

The data is the SGD part of USS (Sun et al. 2021, "Simulating User
Satisfaction for the Evaluation of Task-oriented Dialogue Systems"):
tab-separated lines "USER<TAB>text<TAB>ACT<TAB>r1,r2,r3" and
"SYSTEM<TAB>...", dialogues separated by blank lines, and a last line
"USER<TAB>OVERALL<TAB><TAB>r1,r2,r3" rating the whole dialogue.  Ratings
are 1..5 (3 neutral); a turn or a dialogue is "negative" when the mean of
its ratings is <= 2.

What this measures, honestly: USS raters judged how satisfied the user
was with the system, and a low rating is mostly the system getting
something wrong ("No, I said 2 tickets."), seldom angry words.  A lexicon
scorer of the customer's words can only see the part of dissatisfaction
that shows in them; expect a modest AUC.  The lexicon is written for
support conversations in general and is not tuned on this data.

The scorer is src/sa_escalate.c built into build/sentiment_score (from
bench/sentiment_score.c), rebuilt when a source is newer.  Python 3
standard library only.
"""

import argparse
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCORER = os.path.join(ROOT, 'build', 'sentiment_score')
SOURCES = ['bench/sentiment_score.c', 'src/sa_escalate.c',
           'src/sa_text.c', 'src/sa_utf8.c', 'src/sa_sparse.c',
           'src/sa_kb.c', 'src/sa_json.c']
HEADERS = ['src/sa_escalate.h', 'src/sa_text.h', 'src/sa_utf8.h',
           'src/sa_sparse.h', 'src/sa_kb.h', 'src/sa_json.h',
           'src/sa_types.h']
LIBS = ['-lstemmer', '-llmdb', '-lyajl', '-lm']

# written for this report before it was first run; not used to tune the
# lexicon
EXAMPLES = [
    ('angry', "This is the third time I'm writing about the same order. "
              "Unacceptable."),
    ('angry', "Your support is useless, nobody ever answers my emails"),
    ('angry', "I've been waiting 3 weeks for my refund, this is a joke"),
    ('angry', "WHY IS MY ACCOUNT STILL LOCKED??? I NEED IT NOW"),
    ('angry', "Worst company ever. I want my money back."),
    ('angry', "Honestly I'm so frustrated, the app keeps crashing and "
              "nothing you suggested works"),
    ('angry', "Stop sending me the same link, it doesn't help!!"),
    ('angry', "I'm sick of this, cancel everything"),
    ('neutral', "Where is my order #W2611340?"),
    ('neutral', "How do I reset my password?"),
    ('neutral', "Can I change the delivery address for my last order?"),
    ('neutral', "What payment methods do you accept?"),
    ('neutral', "I'd like to return a jacket I bought last week."),
    ('neutral', "Is the blue version available in size M?"),
    ('neutral', "My email is jane@example.com, order 12345678."),
    ('neutral', "Do you ship to Norway, and how long does it take?"),
    ('happy', "Thanks, that solved it!"),
    ('happy', "Great, the refund arrived today. Thank you so much."),
    ('happy', "Perfect, that's exactly what I needed"),
    ('happy', "You've been very helpful, appreciate it"),
    ('happy', "Awesome, it works now :)"),
    ('happy', "Thank you for the quick answer, have a nice day"),
    ('happy', "Brilliant service, I'll recommend you to my friends"),
    ('happy', "ok that fixed it, thanks a lot"),
]


def build():
    """build/sentiment_score, if missing or older than its sources"""
    srcs = [os.path.join(ROOT, p) for p in SOURCES + HEADERS]
    if os.path.exists(SCORER):
        built = os.path.getmtime(SCORER)
        if all(os.path.getmtime(p) <= built for p in srcs):
            return
    os.makedirs(os.path.dirname(SCORER), exist_ok=True)
    cmd = ([os.environ.get('CC', 'cc'), '-O2', '-Isrc', '-o', SCORER]
           + SOURCES + LIBS)
    print('building: ' + ' '.join(cmd), file=sys.stderr)
    subprocess.run(cmd, cwd=ROOT, check=True)


def score(texts):
    """sa_sentiment() of each text"""
    data = ''.join(t.replace('\r', ' ').replace('\n', ' ') + '\n'
                   for t in texts)
    out = subprocess.run([SCORER], input=data.encode('utf-8'),
                         capture_output=True, check=True).stdout
    scores = [float(x) for x in out.decode().split()]
    assert len(scores) == len(texts)
    return scores


def ratings(field):
    vals = [int(x) for x in field.split(',') if x.strip()]
    return sum(vals) / len(vals) if vals else None


def dialogues(path):
    """[(turns, overall)], turns: [(role, text, mean rating or None)]"""
    out, turns, overall = [], [], None
    with open(path, encoding='utf-8') as f:
        for line in f:
            line = line.rstrip('\n')
            if not line.strip():
                if turns:
                    out.append((turns, overall))
                turns, overall = [], None
                continue
            cols = line.split('\t')
            while len(cols) < 4:
                cols.append('')
            role, text, _act, rate = cols[:4]
            if role == 'USER' and text == 'OVERALL':
                overall = ratings(rate)
            elif role in ('USER', 'SYSTEM'):
                turns.append((role, text,
                              ratings(rate) if role == 'USER' else None))
    if turns:
        out.append((turns, overall))
    return out


def auc(pos, neg):
    """P(a positive scores above a negative), ties half (Mann-Whitney)"""
    allv = sorted([(v, 1) for v in pos] + [(v, 0) for v in neg])
    rank_sum, i = 0.0, 0
    while i < len(allv):
        j = i
        while j < len(allv) and allv[j][0] == allv[i][0]:
            j += 1
        avg = (i + 1 + j) / 2.0
        rank_sum += avg * sum(1 for k in range(i, j) if allv[k][1])
        i = j
    n1, n0 = len(pos), len(neg)
    if n1 == 0 or n0 == 0:
        return float('nan')
    return (rank_sum - n1 * (n1 + 1) / 2.0) / (n1 * n0)


def prf(pred, gold):
    tp = sum(1 for p, g in zip(pred, gold) if p and g)
    fp = sum(1 for p, g in zip(pred, gold) if p and not g)
    fn = sum(1 for p, g in zip(pred, gold) if not p and g)
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f, tp + fp


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--data', default=os.path.join(
        ROOT, '..', 'shared', 'data', 'uss-satisfaction', 'SGD.txt'))
    ap.add_argument('--threshold', type=float, default=0.3,
                    help='support_agent_escalate_sentiment (0.3)')
    args = ap.parse_args()
    th = args.threshold

    build()

    print('Hand-written support messages (angry < %.2f, neutral '
          '0.4..0.6, happy > 0.6 expected):' % th)
    ex_scores = score([t for _, t in EXAMPLES])
    right = {'angry': 0, 'neutral': 0, 'happy': 0}
    total = {'angry': 0, 'neutral': 0, 'happy': 0}
    for (label, text), s in zip(EXAMPLES, ex_scores):
        good = ((label == 'angry' and s < th)
                or (label == 'neutral' and 0.4 <= s <= 0.6)
                or (label == 'happy' and s > 0.6))
        right[label] += good
        total[label] += 1
        print('  %-7s %.3f %s  %s' % (label, s, ' ' if good else 'x', text))
    for label in ('angry', 'neutral', 'happy'):
        print('  %-7s %d/%d as expected' % (label, right[label],
                                             total[label]))

    if not os.path.exists(args.data):
        print('\n%s not found: no USS figures' % args.data)
        return 0

    dias = dialogues(args.data)
    texts, gold, means = [], [], []
    for turns, _ in dias:
        for role, text, mean in turns:
            if role == 'USER' and mean is not None:
                texts.append(text)
                gold.append(mean <= 2)
                means.append(mean)
    scores = score(texts)

    print('\nUSS SGD (%s): %d dialogues' % (os.path.basename(args.data),
                                           len(dias)))
    print('  user turns            %d' % len(texts))
    print('  negative (mean <= 2)  %d (%.2f%%)' % (
        sum(gold), 100.0 * sum(gold) / len(gold)))
    neg = [1 - s for s, g in zip(scores, gold) if g]
    rest = [1 - s for s, g in zip(scores, gold) if not g]
    print('  ROC AUC, 1 - score for negative   %.3f' % auc(neg, rest))
    p, r, f, n = prf([s < th for s in scores], gold)
    print('  score < %.2f: %d turns flagged; precision %.3f recall %.3f '
          'F1 %.3f' % (th, n, p, r, f))
    p, r, f, n = prf([s < 0.5 for s in scores], gold)
    print('  score < 0.50: %d turns flagged; precision %.3f recall %.3f '
          'F1 %.3f' % (n, p, r, f))

    print('  mean score by turn rating (rounded mean):')
    for k in range(1, 6):
        sel = [s for s, m in zip(scores, means) if round(m) == k]
        if sel:
            print('    %d: %.3f over %d turns' % (k, sum(sel) / len(sel),
                                                 len(sel)))

    # the escalation rule on whole dialogues: two customer messages in a
    # row below the threshold, against the dialogue's overall rating
    it = iter(scores)
    pred, dgold, tgold = [], [], []
    for turns, overall in dias:
        rated = [(next(it), m) for role, _, m in turns
                 if role == 'USER' and m is not None]
        us = [s for s, _ in rated]
        pred.append(any(a < th and b < th for a, b in zip(us, us[1:])))
        dgold.append(overall is not None and overall <= 2)
        tgold.append(any(m <= 2 for _, m in rated))
    n = sum(pred)
    print('  rule "two customer messages in a row < %.2f" (the escalation '
          'signal):' % th)
    print('    fires in %d of %d dialogues (%.1f%%)' % (
        n, len(pred), 100.0 * n / len(pred)))
    p, r, f, _ = prf(pred, dgold)
    print('    vs overall rating <= 2 (%d dialogues): precision %.3f '
          'recall %.3f F1 %.3f' % (sum(dgold), p, r, f))
    p, r, f, _ = prf(pred, tgold)
    print('    vs a negative turn (%d dialogues): precision %.3f '
          'recall %.3f F1 %.3f' % (sum(tgold), p, r, f))
    return 0


if __name__ == '__main__':
    sys.exit(main())
