#!/usr/bin/python3
"""Turns the JSON lines of bench/run_model_bench.sh into its one table (markdown).

Each line is one run: {"net", "round", "runtime": "c"|"ort", "threads", "times_ms" or
"modes": {mode: {"times_ms", ...}}, "engine" (C only), ...}. Per network and C engine:
  - C ms per mode: median over every repetition of every round;
  - C/ORT: median over rounds of (C none median / ORT median) of the same round, so that each
    ratio compares runs made under the same load; "max" is the largest of those per-round ratios;
  - InstCal overheads: median over every repetition of (mode / none) of the same repetition;
  - peak RSS: the largest high-water mark of the process over the rounds, per runtime: the C
    engine's 2-thread runs (all three modes in one process), ORT's 2-thread runs (node included).
"""
import json
import statistics
import sys
from collections import defaultdict

ORDER = ['tiny', 'small', 'shipped', 'r52', 'r52l']
LABEL = {'tiny': 'tiny-test', 'small': 'small-dsconv (bench/configs)', 'shipped': 'synthcity-small (shipped)',
         'r52': 'R-52-DSConv', 'r52l': 'R-52-DSConv'}
ENGINES = ['blocked', 'exact', 'nchw']


def main(path):
    runs = [json.loads(line) for line in open(path) if line.strip().startswith('{')]
    by = defaultdict(list)
    for r in runs:
        by[(r['net'], r['runtime'], r['threads'], r.get('engine', 'nchw') if r['runtime'] == 'c' else '')].append(r)
    nets = [n for n in ORDER if any(k[0] == n for k in by)]
    print('| network | input | C engine | C none ms | C instcal-u ms | C instcal-c ms | ORT ms | C/ORT (max) | '
          'instcal-u | instcal-c | C none 1T ms | ORT 1T ms | C/ORT 1T (max) | peak act MiB | C peak RSS MiB | '
          'ORT peak RSS MiB |')
    print('|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    for n, eng in [(n, e) for n in nets for e in ENGINES]:
        c2, o2 = by.get((n, 'c', 2, eng), []), by.get((n, 'ort', 2, ''), [])
        c1, o1 = by.get((n, 'c', 1, eng), []), by.get((n, 'ort', 1, ''), [])
        if not c2:
            continue
        size = '%dx%d' % (c2[0]['h'], c2[0]['w'])

        def cms(runs_, mode):
            v = [t for r in runs_ for t in r['modes'].get(mode, {}).get('times_ms', [])]
            return statistics.median(v) if v else float('nan')

        def overhead(mode):
            v = [a / b for r in c2 if mode in r['modes']
                 for a, b in zip(r['modes'][mode]['times_ms'], r['modes']['none']['times_ms'])]
            return '%+.1f%%' % (100 * (statistics.median(v) - 1)) if v else '-'

        def ratio(cr, orr):
            o_by_round = {r['round']: r['median_ms'] for r in orr}
            v = [r['modes']['none']['median_ms'] / o_by_round[r['round']] for r in cr
                 if r['round'] in o_by_round]
            return '%.2f (%.2f)' % (statistics.median(v), max(v)) if v else '-'

        def oms(orr):
            v = [t for r in orr for t in r['times_ms']]
            return '%.1f' % statistics.median(v) if v else '-'

        act = max(m['peak_act_bytes'] for r in c2 for m in r['modes'].values()) / 2**20
        rss = max(r['peak_rss_mib'] for r in c2)
        orss = [r['peak_rss_mib'] for r in o2 if 'peak_rss_mib' in r]
        orss = '%.0f' % max(orss) if orss else '-'
        c1s = '%.1f' % cms(c1, 'none') if c1 else '-'
        print('| %s | %s | %s | %.1f | %.1f | %.1f | %s | %s | %s | %s | %s | %s | %s | %.0f | %.0f | %s |'
              % (LABEL.get(n, n), size, eng, cms(c2, 'none'), cms(c2, 'instcal-u'), cms(c2, 'instcal-c'),
                 oms(o2), ratio(c2, o2), overhead('instcal-u'), overhead('instcal-c'),
                 c1s, oms(o1), ratio(c1, o1), act, rss, orss))
    # engines against each other in the same rounds (the C runs of one round are back to back)
    print()
    for n in nets:
        for th in (2, 1):
            per = {}
            for e in ENGINES:
                for r in by.get((n, 'c', th, e), []):
                    per.setdefault(r['round'], {})[e] = r['modes']['none']['median_ms']
            fr = ['%.2f' % (v['blocked'] / v['nchw']) for _, v in sorted(per.items())
                  if 'blocked' in v and 'nchw' in v]
            if fr:
                print('%s %s %dT: blocked / nchw (none) per round: %s'
                      % (LABEL.get(n, n), '%dx%d' % (by[(n, 'c', th, 'blocked')][0]['h'],
                                                      by[(n, 'c', th, 'blocked')][0]['w']), th, ', '.join(fr)))
    rounds = sorted({r['round'] for r in runs})
    reps = sorted({r['reps'] for r in runs})
    print('\n%d rounds x %s reps; ORT %s; C/ORT = median over rounds of per-round medians; '
          'overheads = median of per-rep ratios to none; 1T = one thread on both sides.'
          % (len(rounds), '/'.join(map(str, reps)),
             next((r['version'] for r in runs if r['runtime'] == 'ort'), '?')))


if __name__ == '__main__':
    main(sys.argv[1])
