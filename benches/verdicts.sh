#!/usr/bin/env bash
# Are `compare`'s verdicts right? Runs of the quick scenario with fresh seeds (none of them among
# the baseline's), each judged against the baseline as CI judges one run:
#   unchanged       the scenario as it is: every REGRESSED is a false alarm (target <= 5%);
#   epochs3         train.epochs 15 -> 3 (a planted regression: should be caught);
#   lr-div10        train.lr 3e-3 -> 3e-4 (planted);
#   lr-div3         train.lr 3e-3 -> 1e-3 (planted, milder);
#   ridge-lambda1   probe.main.ridge_lambda 1e-3 -> 1 (planted; the probe's label carries λ, so
#                   its metrics go missing under the baseline's names);
#   epochs10        train.epochs 15 -> 10 (a change of the recipe that leaves the results where they
#                   were: 10 epochs of the same schedule reach the same accuracy; not a regression);
#   unchanged-avx2  the first fresh seeds again on the AVX2 path (TUNNELBENCH_ISA=avx2, where the
#                   machine can take it): portability of a baseline recorded on the other path.
# One tab-separated line per judged run in OUT, then a summary; with KEEP=DIR, each run's metrics
# (`compare --record`) are kept in DIR to judge them again later.
#
#   benches/verdicts.sh OUT.tsv [FRESH_SEEDS] [PLANTED_SEEDS]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:?an output .tsv file}"
fresh="${2:-20}"
planted="${3:-3}"
bin="${TUNNELBENCH_BIN:-target/release/tunnelbench}"
base="${BASELINE:-results/quick.json}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
keep="${KEEP:-}"

printf 'case\tseed\tisa\texit\tregressed\timproved\tno_change\n' > "$out"

# judge CASE SEED ISA [--set KEY=VALUE]...
judge() {
  local case="$1" seed="$2" isa="$3"
  shift 3
  local dir="$work/$case-$seed"
  TUNNELBENCH_ISA="$isa" "$bin" run scenarios/quick.toml --quiet --out "$dir" --set "seed=$seed" "$@" \
    > /dev/null 2> "$work/log"
  local code=0
  "$bin" compare "$dir" "$base" > "$work/report" || code=$?
  # verdict: REGRESSED (3 regressed, 1 improved, 301 no change of 305 metrics)
  local counts
  counts="$(sed -n 's/^verdict: [A-Z ]* (\([0-9]*\) regressed[^,]*, \([0-9]*\) improved, \([0-9]*\) no change.*/\1\t\2\t\3/p' "$work/report")"
  printf '%s\t%s\t%s\t%s\t%s\n' "$case" "$seed" "$isa" "$code" "$counts" | tee -a "$out"
  if [ -n "$keep" ]; then
    mkdir -p "$keep"
    "$bin" compare "$dir" "$keep/$case-$seed-$isa.json" --record > /dev/null 2>&1
  fi
  rm -rf "$dir"
}

for i in $(seq 1 "$fresh"); do
  judge unchanged $((1000 + i)) auto
done
for i in $(seq 1 "$planted"); do
  seed=$((1000 + i))
  judge epochs3 "$seed" auto --set train.epochs=3
  judge lr-div10 "$seed" auto --set train.lr=3e-4
  judge lr-div3 "$seed" auto --set train.lr=1e-3
  judge ridge-lambda1 "$seed" auto --set probe.main.ridge_lambda=1
  judge epochs10 "$seed" auto --set train.epochs=10
done
if TUNNELBENCH_ISA=avx2 "$bin" backends > /dev/null 2>&1; then
  for i in $(seq 1 "$planted"); do
    judge unchanged-avx2 $((1000 + i)) avx2
  done
else
  echo "unchanged-avx2: SKIPPED, this machine cannot take the AVX2 path" >&2
fi

echo
echo "runs judged REGRESSED (exit 1) per case:"
awk -F'\t' 'NR > 1 { n[$1]++; if ($4 == 1) r[$1]++ }
  END { for (c in n) printf "  %-15s %d of %d\n", c, r[c] + 0, n[c] }' "$out" | sort
