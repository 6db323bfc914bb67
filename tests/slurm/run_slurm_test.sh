#!/usr/bin/env bash
# Runs a tiny study on a one-node Slurm cluster started on this machine: `tunnelbench slurm`
# writes the 2-shard array and the dependent collect job, submit.sh submits them, and the
# collected study_metrics.csv must equal a local run's. Installs Debian's slurm-wlm and munge when
# they are missing (needs root). Every daemon it starts is stopped by its pid on exit.
#
#   tests/slurm/run_slurm_test.sh            (from the repository root; builds the binary)
#   TUNNELBENCH_BIN=/path/to/tunnelbench tests/slurm/run_slurm_test.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
repo="$(pwd)"

if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "slurm test: SKIPPED (slurm-wlm/munge missing and cannot be installed without root + apt-get)"
    exit 0
  fi
  echo "slurm test: installing slurm-wlm and munge"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null
fi
if [ "$(id -u)" != 0 ]; then
  echo "slurm test: SKIPPED (the one-node cluster runs its daemons as root)"
  exit 0
fi

bin="${TUNNELBENCH_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --release --quiet
  bin="${CARGO_TARGET_DIR:-$repo/target}/release/tunnelbench"
fi
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
scenario="$repo/tests/scenarios/tiny-study.toml"

work="$(mktemp -d /tmp/tunnelbench-slurm.XXXXXX)"
chmod 755 "$work"
pids=()
cleanup() {
  for f in "$work/slurmd.pid" "$work/slurmctld.pid" "$work/munged.pid"; do
    if [ -s "$f" ]; then kill "$(cat "$f")" 2>/dev/null || true; fi
  done
  sleep 1
  if [ "${KEEP_SLURM_WORK:-}" != 1 ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

fail() {
  echo "slurm test: FAILED: $*" >&2
  for log in "$work"/slurmctld.log "$work"/slurmd.log "$work"/out/slurm/*.log; do
    [ -f "$log" ] && { echo "--- $log" >&2; tail -n 30 "$log" >&2; }
  done
  exit 1
}

# munge, with its own socket so that a system munged is left alone.
mkdir -p "$work/munge"
chown munge:munge "$work/munge" 2>/dev/null || true
chmod 700 "$work/munge"
socket="$work/munge/munge.socket"
munged --force --socket="$socket" --pid-file="$work/munged.pid" --log-file="$work/munged.log" \
  --seed-file="$work/munge/seed" || fail "munged did not start"

host="$(hostname -s)"
cpus="$(nproc)"
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))
port=$(( 20000 + RANDOM % 20000 ))
mkdir -p "$work/state" "$work/spool"
conf="$work/slurm.conf"
cat > "$conf" <<EOF
ClusterName=tunnelbench
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$(( port + 1 ))
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
MinJobAge=600
NodeName=$host NodeHostname=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$conf"

slurmctld -f "$conf" -i || fail "slurmctld did not start"
slurmd -f "$conf" || fail "slurmd did not start"
for _ in $(seq 1 60); do
  if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed)'; then break; fi
  sleep 1
done
sinfo -h -o '%T' | grep -qE '^(idle|mixed)' || fail "the node did not become idle: $(sinfo 2>&1)"
echo "slurm test: one-node cluster up ($host, $cpus CPUs, port $port)"

out="$work/out"
"$bin" slurm "$scenario" --shards 2 --out "$out" --bin "$bin"
submitted="$("$out/slurm/submit.sh")"
echo "slurm test: $submitted"
collect_id="$(echo "$submitted" | sed -n 's/.*collect job \([0-9]*\).*/\1/p')"
[ -n "$collect_id" ] || fail "no collect job id in: $submitted"

for _ in $(seq 1 600); do
  state="$(scontrol show job "$collect_id" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')"
  case "$state" in
    COMPLETED) break ;;
    FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY) fail "collect job $collect_id: $state" ;;
  esac
  sleep 1
done
[ "$state" = COMPLETED ] || fail "collect job $collect_id did not finish (state ${state:-unknown})"

"$bin" run "$scenario" --out "$work/local" --quiet >/dev/null 2>&1 || fail "local run failed"
[ -f "$out/study_metrics.csv" ] || fail "no study_metrics.csv from the collect job"
if ! diff -u "$work/local/study_metrics.csv" "$out/study_metrics.csv"; then
  fail "the Slurm study's study_metrics.csv differs from the local run's"
fi
n_rows=$(( $(wc -l < "$out/study_metrics.csv") - 1 ))
for shard in 0 1; do
  grep -q "shard $shard/2 finished" "$out/slurm/shard-$shard.log" || fail "shard $shard log lacks its end line"
done
echo "slurm test: PASSED (2 array tasks + collect; $n_rows rows equal to the local run's)"
