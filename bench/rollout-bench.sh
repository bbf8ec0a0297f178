#!/usr/bin/env bash
# The Check path of a route in a rollout (shadow, canary 10 %) against the
# same route enforcing its set alone, with and without the decision cache
# (extauthz BenchmarkCheckRollout). Every round runs each variant once, in a
# process of its own, so the noise of a shared machine falls on all alike
# (the benchmark warms the process up first); prints the
# median ns/op of each and its ratio to rollout=enforce. Raw output:
# bench/out/rollout-bench.txt. GOGC=400 as the authorizer runs by default.
#
#   bash bench/rollout-bench.sh [ROUNDS]
set -euo pipefail
rounds=${1:-8} cpu=${CPU:-1}
cd "$(dirname "$0")/.."
mkdir -p bench/out
out=bench/out/rollout-bench.txt
go test -c -o bench/out/extauthz.test ./extauthz/
: >"$out"
for r in $(seq "$rounds"); do
  echo "round $r/$rounds" >&2
  (cd extauthz && GOGC=400 taskset -c "$cpu" ../bench/out/extauthz.test -test.run '^$' -test.bench 'BenchmarkCheckRollout' -test.benchtime 300ms -test.cpu 1 -test.benchmem) | grep '^Benchmark' >>"$out"
done
awk '
  match($0, /^BenchmarkCheckRollout\/cache[^ ]+/) {
    name = substr($0, RSTART + 22, RLENGTH - 22)
    n[name]++; v[name, n[name]] = $3; allocs[name] = $7
  }
  END {
    for (k in n) {
      m = n[k]; for (i = 1; i <= m; i++) a[i] = v[k, i]
      for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
      med[k] = (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
    }
    for (k in med) {
      split(k, p, "/"); base = p[1] "/rollout=enforce/" p[3]
      printf "%-48s %8.0f ns/op %5.2fx  %3d allocs/op\n", k, med[k], med[k] / med[base], allocs[k]
    }
  }' "$out" | sort
