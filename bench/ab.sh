#!/usr/bin/env bash
# A/B Go benchmarks: a base git revision against the working tree, built
# side by side and run alternately in one session, so the noise of a shared
# machine falls on both sides alike. Prints the median ns/op and allocs/op of
# each benchmark per side and the head/base time ratio; raw output is kept
# in bench/out/ab/.
#
#   bash bench/ab.sh BASE PKG BENCH [ROUNDS]
#   bash bench/ab.sh 19de195 ./extauthz/ 'BenchmarkCheck$/(anonymous-allow|jwt-cached-allow)/other=0' 5
set -euo pipefail
[ $# -ge 3 ] || { sed -n 2,9p "$0"; exit 2; }
base=$1 pkg=$2 bench=$3 rounds=${4:-5}
cd "$(dirname "$0")/.."
root=$PWD out=$PWD/bench/out/ab
mkdir -p "$out"
: >"$out/base.txt"
: >"$out/head.txt"
wt=$(mktemp -d)
trap 'git worktree remove --force "$wt" >/dev/null 2>&1 || rm -rf "$wt"' EXIT
git worktree add --detach -q "$wt" "$base"
(cd "$wt" && go test -c -o "$out/base.test" "$pkg")
go test -c -o "$out/head.test" "$pkg"
for r in $(seq "$rounds"); do
  echo "round $r/$rounds" >&2
  for side in base head; do
    dir=$root/$pkg
    [ "$side" = base ] && dir=$wt/$pkg
    (cd "$dir" && "$out/$side.test" -test.run '^$' -test.bench "$bench" -test.benchmem) | grep '^Benchmark' >>"$out/$side.txt"
  done
done
median() { sort -n | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
printf '| benchmark | base ns/op | head ns/op | head/base | base allocs | head allocs |\n|---|---:|---:|---:|---:|---:|\n'
for name in $(awk '{print $1}' "$out/head.txt" | sort -u); do
  bt=$(awk -v n="$name" '$1==n {print $3}' "$out/base.txt" | median)
  ht=$(awk -v n="$name" '$1==n {print $3}' "$out/head.txt" | median)
  ba=$(awk -v n="$name" '$1==n {print $(NF-1)}' "$out/base.txt" | median)
  ha=$(awk -v n="$name" '$1==n {print $(NF-1)}' "$out/head.txt" | median)
  awk -v n="$name" -v bt="$bt" -v ht="$ht" -v ba="$ba" -v ha="$ha" \
    'BEGIN {printf "| %s | %s | %s | %.2f | %s | %s |\n", n, bt, ht, ht/bt, ba, ha}'
done
