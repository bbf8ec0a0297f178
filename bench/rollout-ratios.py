# Paired ratios of bench/out/rollout-bench.txt: each variant's ns/op over
# rollout=enforce's for the same cache setting and request in the same
# round (process), then the median and spread over rounds.
import collections, re, statistics, sys

path = sys.argv[1] if len(sys.argv) > 1 else "bench/out/rollout-bench.txt"
rounds, cur = [], None
for line in open(path):
    m = re.match(r"BenchmarkCheckRollout/(cache=\S+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op", line)
    if not m:
        continue
    name, ns = m.group(1), float(m.group(2))
    if cur is None or name in cur:
        cur = {}
        rounds.append(cur)
    cur[name] = ns
ratios = collections.defaultdict(list)
for rd in rounds:
    for name, ns in rd.items():
        cache, stage, req = name.split("/")
        base = rd.get(f"{cache}/rollout=enforce/{req}")
        if base:
            ratios[name].append(ns / base)
for name in sorted(ratios):
    v = sorted(ratios[name])
    q = statistics.quantiles(v, n=4) if len(v) > 1 else [v[0]] * 3
    print(f"{name:46s} median {statistics.median(v):.2f}x  IQR {q[0]:.2f}-{q[2]:.2f}  n={len(v)}")
