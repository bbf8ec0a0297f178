#!/usr/bin/env bash
# Profiles a wasm filter benchmark down to the Go functions inside the
# module. wazero built with -tags perfmap writes /tmp/perf-<pid>.map, which
# names the machine code it compiled from the module; perf samples it like
# any other code. Prints the share of samples per function: "wasm:" rows
# are the module's Go code (runtime included), the rest is the test host,
# wazero and the Go runtime around them. Needs perf (apt-get install
# linux-perf).
#
#   bash bench/wasm-profile.sh 'BenchmarkFilter/headers$' [ROWS] [BENCHTIME]
set -euo pipefail
[ $# -ge 1 ] || { sed -n 2,10p "$0"; exit 2; }
bench=$1 rows=${2:-40} benchtime=${3:-8s}
cd "$(dirname "$0")/.."
out=$PWD/bench/out/wasm-profile
mkdir -p "$out"
make -s wasm
go test -c -tags perfmap -o "$out/wasm.test" ./wasm/
(cd wasm && MESHGUARD_WASM_DIR=$PWD/../dist perf record -q -e cpu-clock -F 4999 -o "$out/perf.data" \
  "$out/wasm.test" -test.run '^$' -test.bench "$bench" -test.benchtime "$benchtime" -test.benchmem) | grep '^Benchmark'
# perf names a module function "[index/count].pkg_path.Func:::::Lblock";
# samples are summed per function.
perf report -i "$out/perf.data" --no-children -F overhead,sym 2>/dev/null |
  awk '
    /^#/ || !/%/ { next }
    {
      pct = $1; sub(/%/, "", pct)
      sym = $0; sub(/^[^]]*\] +/, "", sym); sub(/ +$/, "", sym)
      if (sym ~ /^\[[0-9]+\/[0-9]+\]/) { sub(/^\[[0-9]+\/[0-9]+\]\.?/, "", sym); sub(/:::::.*/, "", sym); sym = "wasm:" sym; guest += pct }
      share[sym] += pct
    }
    END {
      printf "guest (module) code: %.1f%% of samples\n", guest
      for (s in share) printf "%6.2f%%  %s\n", share[s], s | "sort -rn | head -n '"$rows"'"
    }'
