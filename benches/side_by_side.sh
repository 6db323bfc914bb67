#!/usr/bin/env bash
# Side-by-side timings for docs/performance.md: PyTorch's reference script and `tunnelbench bench`
# on the default backend, with tunnelbench's own kernels and with burn's ops
# (TUNNELBENCH_KERNELS=burn), interleaved, ROUNDS rounds per network and resolution, one JSON
# object per line in OUT. Summarise with benches/summarize.py OUT.
#
#   benches/side_by_side.sh PYTHON_WITH_TORCH OUT.jsonl [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
py="${1:?a python with torch}"
out="${2:?an output .jsonl file}"
rounds="${3:-3}"
bin="${TUNNELBENCH_BIN:-target/release/tunnelbench}"
threads="$(nproc)"
: > "$out"
# architecture, width, resolution, batch, timed steps; TUNNELBENCH_NETS replaces the list
# ("vit-t 1 32 128 10; resnet-18 1 32 128 10"), TUNNELBENCH_KERNELS_LIST the kernels ("own").
nets="${TUNNELBENCH_NETS:-vggm-17 0.125 32 128 5; vggm-11 1 32 128 5; resnet-18 1 32 128 5; vit-t 1 32 128 5; \
resnet-18 1 224 32 3; vit-t 1 224 8 2}"
IFS=';' read -r -a nets <<< "$nets"
for net in "${nets[@]}"; do
  read -r arch width res batch steps <<< "$net"
  args=(--arch "$arch" --width "$width" --resolution "$res" --batch "$batch" --steps "$steps")
  pytorch() {
    "$py" benches/reference/pytorch_reference.py "${args[@]}" --threads "$threads" \
      | python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin)))' >> "$out"
  }
  for round in $(seq "$rounds"); do
    # PyTorch first in odd rounds and last in even ones, so that whatever the order of a round
    # favours (the first run of a pair measured a few percent faster at times) falls on both.
    if (( round % 2 == 1 )); then pytorch; fi
    for kernels in ${TUNNELBENCH_KERNELS_LIST:-own burn}; do
      TUNNELBENCH_KERNELS="$kernels" "$bin" bench --backend flex "${args[@]}" --json \
        | python3 -c 'import json, sys; [print(json.dumps(r)) for r in json.load(sys.stdin)]' >> "$out"
    done
    if (( round % 2 == 0 )); then pytorch; fi
  done
done
