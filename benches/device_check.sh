#!/usr/bin/env bash
# The GPU machine's check, in one run of at most about 8 minutes: tunnelbench's GPU backends against
# PyTorch on CUDA (TF32 on and off), the default CPU backend against PyTorch on THREADS CPU threads,
# and the quick scenario end to end on each, one JSON object per line in OUT. Summarise with
# benches/summarize.py OUT.
#
#   benches/device_check.sh [--dry-run] OUT.jsonl
#
# It installs and builds nothing: the binaries are built beforehand and named here.
#   TUNNELBENCH_BIN      the default (CPU) build (default target/release/tunnelbench)
#   TUNNELBENCH_GPU_BIN  a build with `--features wgpu` and, where it builds, `cuda`; required
#                        unless --dry-run. Its GPU backends (`tunnelbench backends`) are measured,
#                        or those in GPU_BACKENDS (e.g. "cuda").
#   TUNNELBENCH_GPU_TEST_BIN  optional: the integration tests built with the same features
#                        (`cargo test --release --features wgpu,cuda --test suite --no-run` prints
#                        its path); its GPU tests run first: the same weights give the same logits
#                        and per-layer features on each GPU backend as on flex, and training runs
#   PYTHON               a python with torch (default python3); on the GPU, with CUDA
#   THREADS              CPU threads for the CPU lines (default 16; --dry-run: this machine's)
#   ROUNDS               rounds of the GPU and CPU networks, interleaved (default 2; --dry-run: 1)
#   DEADLINE_S           no measurement runs past this many seconds from the start (default 480,
#                        --dry-run 420); one that would not fit is recorded as skipped
#
# The lines (field `kind`): `machine` (what ran where, first), `bench` (one implementation on one
# network: `implementation` tunnelbench or pytorch, `backend`, `device` gpu or cpu, `threads`,
# `tf32`, `arch`, `width`, `resolution`, `batch`, `train_images_per_sec`,
# `inference_images_per_sec`, and for tunnelbench the training step's stages), `quick` (the quick
# scenario: wall seconds, the run's own stage times, peak memory), `check` (the GPU tests: each
# test's result), `failure` (a measurement that
# failed: its command, exit status and the end of its output) and `skipped` (with a reason); the
# last two keep the measurement's tags and its kind as `measured`. One failed measurement never
# stops the others.
#
# --dry-run (no GPU needed): checks the same inputs, records the GPU lines as skipped (or runs them
# where a GPU build and CUDA are there after all), and runs the CPU lines with this machine's
# threads, two steps and one round, and the quick scenario, in a few minutes.
set -uo pipefail
cd "$(dirname "$0")/.."

dry=0
if [ "${1:-}" = "--dry-run" ]; then
  dry=1
  shift
fi
out="${1:?usage: benches/device_check.sh [--dry-run] OUT.jsonl}"
bin="${TUNNELBENCH_BIN:-target/release/tunnelbench}"
gpu_bin="${TUNNELBENCH_GPU_BIN:-}"
py="${PYTHON:-python3}"
if [ "$dry" = 1 ]; then
  threads="${THREADS:-$(nproc)}"
  rounds="${ROUNDS:-1}"
  deadline="${DEADLINE_S:-420}"
else
  threads="${THREADS:-16}"
  rounds="${ROUNDS:-2}"
  deadline="${DEADLINE_S:-480}"
fi
start=$(date +%s)
# A panic's message, not its backtrace, is what a failure line keeps.
export RUST_BACKTRACE=0
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

die() {
  echo "device_check: $*" >&2
  exit 2
}

# --- inputs -------------------------------------------------------------------------------------
[ -f benches/reference/pytorch_reference.py ] || die "benches/reference/pytorch_reference.py is missing"
[ -f scenarios/quick.toml ] || die "scenarios/quick.toml is missing"
[ -x "$bin" ] || die "TUNNELBENCH_BIN=$bin is not an executable (build: cargo build --release)"
"$bin" backends > "$work/cpu-backends" 2>&1 || die "$bin does not run: $(tail -3 "$work/cpu-backends")"
grep -q '^flex  *compiled in' "$work/cpu-backends" || die "$bin has no flex backend"
if [ -n "$gpu_bin" ]; then
  [ -x "$gpu_bin" ] || die "TUNNELBENCH_GPU_BIN=$gpu_bin is not an executable"
  "$gpu_bin" backends > "$work/gpu-backends" 2>&1 || die "$gpu_bin does not run: $(tail -3 "$work/gpu-backends")"
  gpu_backends="${GPU_BACKENDS:-$(awk '($1 == "wgpu" || $1 == "cuda") && $2 == "compiled" { print $1 }' "$work/gpu-backends" | xargs)}"
  [ -n "$gpu_backends" ] || die "$gpu_bin has no GPU backend compiled in (build with --features wgpu or cuda)"
elif [ "$dry" = 0 ]; then
  die "TUNNELBENCH_GPU_BIN is not set (a build with --features wgpu, and cuda where it builds)"
else
  gpu_backends=""
fi
test_bin="${TUNNELBENCH_GPU_TEST_BIN:-}"
if [ -n "$test_bin" ]; then
  [ -x "$test_bin" ] || die "TUNNELBENCH_GPU_TEST_BIN=$test_bin is not an executable"
fi
"$py" -c 'import torch' 2> "$work/torch" || die "$py cannot import torch: $(tail -1 "$work/torch")"
cuda="$("$py" -c 'import torch; print(int(torch.cuda.is_available()))' 2> /dev/null)"
if [ "$dry" = 0 ] && [ "$cuda" != 1 ]; then
  die "$py's torch sees no CUDA GPU (torch.cuda.is_available() is False)"
fi
: > "$out" || die "cannot write $out"

# --- helpers ------------------------------------------------------------------------------------
# tag.py TAGS_JSON: reads one JSON object or a list of them from stdin, adds TAGS, prints one a line.
cat > "$work/tag.py" << 'PY'
import json, sys
tags = json.loads(sys.argv[1])
data = json.load(sys.stdin)
for row in data if isinstance(data, list) else [data]:
    row.update(tags)
    print(json.dumps(row))
PY
# line.py KIND TAGS_JSON [FIELD=VALUE | FIELD=@FILE ...]: one line of KIND with TAGS (their kind
# as `measured`), each VALUE, and the last 1,500 characters of each FILE.
cat > "$work/line.py" << 'PY'
import json, sys
tags = json.loads(sys.argv[2])
row = {"kind": sys.argv[1], "measured": tags.pop("kind", None), **tags}
for arg in sys.argv[3:]:
    field, value = arg.split("=", 1)
    if value.startswith("@"):
        try:
            value = open(value[1:], errors="replace").read()[-1500:]
        except OSError:
            continue
    row[field] = value
print(json.dumps(row))
PY
# tests.py -- COMMAND...: runs the GPU tests; prints each test's result ("ok", "FAILED", "ignored").
cat > "$work/tests.py" << 'PY'
import json, re, subprocess, sys
p = subprocess.run(sys.argv[2:], capture_output=True, text=True)
results = dict(re.findall(r"^test (\S+) \.\.\. (\w+)", p.stdout, re.M))
print(json.dumps({"tests": results, "passed": p.returncode == 0 and bool(results),
                  "output": (p.stdout + p.stderr)[-1500:]}))
PY
# quick.py OUT_DIR -- COMMAND...: runs the quick scenario; prints its wall seconds, the run's own
# stage times (summary.json) and the peak resident memory of the run.
cat > "$work/quick.py" << 'PY'
import json, resource, subprocess, sys, time
out_dir, cmd = sys.argv[1], sys.argv[3:]
t = time.perf_counter()
rc = subprocess.call(cmd, stdout=subprocess.DEVNULL)
wall = time.perf_counter() - t
if rc != 0:
    sys.exit(rc)
summary = json.load(open(f"{out_dir}/summary.json"))
print(json.dumps({"wall_secs": wall, "timings_secs": summary.get("timings_secs"),
                  "backbone_accuracy": summary.get("backbone_accuracy"),
                  "max_rss_gb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6}))
PY

elapsed() { echo $(($(date +%s) - start)); }

# measure EST_S CAP_S TAGS_JSON COMMAND...: run COMMAND (whose stdout is one JSON object or a list
# of them) if EST_S more seconds fit before the deadline, for at most CAP_S seconds and never past
# the deadline; append its lines, each with TAGS added, to OUT, or else one `failure` or `skipped`
# line.
measure() {
  local est="$1" cap="$2" tags="$3" rc left
  shift 3
  left=$(($deadline - $(elapsed)))
  if [ "$left" -lt "$est" ]; then
    "$py" "$work/line.py" skipped "$tags" "reason=time budget: ${left}s left, ~${est}s needed" "command=$*" >> "$out"
    echo "[$(elapsed)s] skipped (time budget): $*" >&2
    return
  fi
  [ "$cap" -gt "$left" ] && cap="$left"
  echo "[$(elapsed)s] $*" >&2
  timeout --kill-after=10 "$cap" "$@" > "$work/stdout" 2> "$work/stderr"
  rc=$?
  if [ "$rc" = 0 ] && "$py" "$work/tag.py" "$tags" < "$work/stdout" > "$work/lines" 2>> "$work/stderr"; then
    cat "$work/lines" >> "$out"
    return
  fi
  if [ "$rc" = 0 ]; then
    rc="0, output not JSON"
  elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    rc="$rc (timeout after ${cap}s)"
  fi
  "$py" "$work/line.py" failure "$tags" "command=$*" "exit=$rc" "stderr=@$work/stderr" "stdout=@$work/stdout" >> "$out"
  echo "  FAILED, exit $rc: $(tail -2 "$work/stderr")" >&2
}

# --- what ran where -----------------------------------------------------------------------------
gpu_name="$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2> /dev/null | head -1)"
"$py" - "$dry" "$threads" "$rounds" "$deadline" "$gpu_backends" "$gpu_name" "$cuda" >> "$out" << 'PY'
import json, os, platform, sys, time
import torch
dry, threads, rounds, deadline, gpu_backends, gpu_name, cuda = sys.argv[1:]
try:
    cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
except (OSError, StopIteration):
    cpu = platform.processor()
print(json.dumps({
    "kind": "machine", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "dry_run": dry == "1",
    "cpu": cpu, "cpu_threads": os.cpu_count(), "threads": int(threads), "rounds": int(rounds),
    "deadline_secs": int(deadline), "gpu": gpu_name or None, "torch": torch.__version__,
    "torch_cuda": cuda == "1", "gpu_backends": gpu_backends.split(), "load_average": os.getloadavg()[0],
}))
PY

# --- the measurements ---------------------------------------------------------------------------
cpus="$(nproc)"
ref=benches/reference/pytorch_reference.py
# architecture, width, resolution, batch, timed steps
gpu_nets=("vggm-11 0.25 32 128 20" "vggm-11 1 32 128 20" "resnet-18 1 32 128 20" "resnet-18 1 224 64 10")
cpu_nets=("vggm-17 0.125 32 128 5" "vggm-11 0.25 32 128 5" "vggm-11 1 32 128 5")
[ "$dry" = 1 ] && cpu_nets=("vggm-17 0.125 32 128 2" "vggm-11 0.25 32 128 2" "vggm-11 1 32 128 2")

gpu_round() {
  local round="$1" net arch width res batch steps args base shape tf32 backend
  for net in "${gpu_nets[@]}"; do
    read -r arch width res batch steps <<< "$net"
    args=(--arch "$arch" --width "$width" --resolution "$res" --batch "$batch" --steps "$steps")
    base="\"kind\": \"bench\", \"round\": $round, \"device\": \"gpu\", \"threads\": $cpus"
    shape="\"arch\": \"$arch\", \"width\": $width, \"resolution\": $res, \"batch\": $batch"
    if [ "$cuda" = 1 ]; then
      for tf32 in on off; do
        measure 15 90 "{$base, $shape, \"backend\": \"cuda\"}" \
          "$py" "$ref" "${args[@]}" --threads "$cpus" --device cuda --tf32 "$tf32" --no-probe
      done
    else
      "$py" "$work/line.py" skipped "{$base, $shape, \"implementation\": \"pytorch\", \"backend\": \"cuda\"}" \
        "reason=torch sees no CUDA GPU" >> "$out"
    fi
    for backend in $gpu_backends; do
      # wgpu has no TF32 path (WGSL); burn's cuda kernels choose for themselves (autotune).
      if [ "$backend" = wgpu ]; then tf32='"off"'; else tf32='"auto"'; fi
      measure 30 150 "{$base, $shape, \"implementation\": \"tunnelbench\", \"backend\": \"$backend\", \"tf32\": $tf32}" \
        "$gpu_bin" bench --backend "$backend" "${args[@]}" --json
    done
    if [ -z "$gpu_backends" ]; then
      "$py" "$work/line.py" skipped "{$base, $shape, \"implementation\": \"tunnelbench\"}" \
        "reason=no GPU build (TUNNELBENCH_GPU_BIN)" >> "$out"
    fi
  done
}

cpu_round() {
  local round="$1" net arch width res batch steps args base shape
  for net in "${cpu_nets[@]}"; do
    read -r arch width res batch steps <<< "$net"
    args=(--arch "$arch" --width "$width" --resolution "$res" --batch "$batch" --steps "$steps")
    base="\"kind\": \"bench\", \"round\": $round, \"device\": \"cpu\", \"threads\": $threads, \"tf32\": null"
    shape="\"arch\": \"$arch\", \"width\": $width, \"resolution\": $res, \"batch\": $batch"
    measure 15 120 "{$base, $shape, \"backend\": \"cpu\"}" \
      "$py" "$ref" "${args[@]}" --threads "$threads" --no-probe
    measure 15 150 "{$base, $shape, \"implementation\": \"tunnelbench\", \"backend\": \"flex\"}" \
      env RAYON_NUM_THREADS="$threads" "$bin" bench --backend flex "${args[@]}" --json
  done
}

quick() {
  local backend="$1" binary="$2" device="$3" est="$4" dir="$work/quick-$1"
  measure "$est" 240 \
    "{\"kind\": \"quick\", \"implementation\": \"tunnelbench\", \"backend\": \"$backend\", \"device\": \"$device\", \"threads\": $threads}" \
    env RAYON_NUM_THREADS="$threads" "$py" "$work/quick.py" "$dir" -- \
    "$binary" run scenarios/quick.toml --backend "$backend" --out "$dir" --quiet
}

for backend in $gpu_backends; do
  if [ -n "$test_bin" ]; then
    measure 30 120 "{\"kind\": \"check\", \"device\": \"gpu\", \"backend\": \"$backend\"}" \
      "$py" "$work/tests.py" -- "$test_bin" --test-threads 1 "$backend::"
  fi
done

for round in $(seq "$rounds"); do
  gpu_round "$round"
  cpu_round "$round"
  if [ "$round" = 1 ]; then
    quick flex "$bin" cpu 40
    for backend in $gpu_backends; do
      quick "$backend" "$gpu_bin" gpu 90
    done
  fi
done

echo "device_check: $(grep -c '"kind": "bench"' "$out") bench lines, $(grep -c '"kind": "quick"' "$out") quick," \
  "$(grep -c '"kind": "failure"' "$out") failed, $(grep -c '"kind": "skipped"' "$out") skipped, $(elapsed)s;" \
  "summarise with: python3 benches/summarize.py $out" >&2
