#!/usr/bin/env bash
# The many-core curve of docs/PERFORMANCE.md ("Many cores"): Eventscope's
# loss-free ceiling and kept / offered against --partitions (1, 2, 4, 8),
# next to a bare subscriber's on the same cores, in one run.
#
#   scripts/curve.sh [BIN_DIR] [OUT_DIR] [SECONDS]
#
# BIN_DIR holds `eventscope-load` (release) and `nats-server` (default:
# the build's and the tools'); OUT_DIR gets machine.txt, steps.log (every
# step's whole output, as it runs) and threads.log (the busiest threads
# during two of the paced runs) (default target/curve); SECONDS is each
# paced trial's length (default 4).
# Cores: nats-server on 0-3, the load tool (Eventscope, the bare subscriber
# and four publisher threads) on 4-15, eight runtime workers. Made for a
# 16-core machine; on fewer cores it runs, with everything sharing them.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-}
OUT=${2:-$here/target/curve}
SECS=${3:-4}
mkdir -p "$OUT"
if [ -z "$BIN" ]; then
    load=${CARGO_TARGET_DIR:-$here/target}/release/eventscope-load
    nats=$(command -v nats-server || echo "$HOME/.cache/eventscope/venv/bin/nats-server")
else
    load=$BIN/eventscope-load
    nats=$BIN/nats-server
fi
cores=$(nproc)
{
    date -u
    echo "cores: $cores"
    grep -m1 'model name' /proc/cpuinfo
    free -g | head -2
    "$nats" --version
} > "$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"

if [ "$cores" -ge 16 ]; then
    nats_cpus=0-3
    load_cpus=4-15
    export TOKIO_WORKER_THREADS=8
else
    nats_cpus=0-$((cores - 1))
    load_cpus=0-$((cores - 1))
fi
# taskset where the machine lets it, else unpinned.
pin() {
    local cpus=$1
    shift
    if taskset -c "$cpus" true 2>/dev/null; then
        taskset -c "$cpus" "$@"
    else
        "$@"
    fi
}
port=$((20000 + RANDOM % 20000))
store=$(mktemp -d)
pin "$nats_cpus" "$nats" -a 127.0.0.1 -p "$port" -js -sd "$store" > "$store.log" 2>&1 &
nats_pid=$!
trap 'kill $nats_pid 2>/dev/null; rm -rf "$store"' EXIT
sleep 1
url=nats://127.0.0.1:$port

# One step: its name, then the load tool's arguments. Its output is
# appended to steps.log as it runs (a step cut short keeps what it
# printed); the results are echoed.
step() {
    local name=$1
    shift
    echo "== $name: eventscope-load $*" | tee -a "$OUT/steps.log"
    pin "$load_cpus" "$load" --nats-url "$url" --publishers 4 \
        --paced-seconds "$SECS" --ceiling-precision 1.25 "$@" \
        > "$OUT/step.tmp" 2>&1
    echo "   rc $?" | tee -a "$OUT/steps.log"
    cat "$OUT/step.tmp" >> "$OUT/steps.log"
    grep -E '^(paced|loss-free|burst)' "$OUT/step.tmp" | sed 's/^/   /'
    rm -f "$OUT/step.tmp"
}

# The busiest threads of every process, `after` seconds from now, into
# threads.log (where top is there).
threads() {
    local after=$1 what=$2
    command -v top > /dev/null || return 0
    (sleep "$after"; { echo "== $what"; top -H -b -n 2 -d 2 -w 160 | awk '/^top -/{n++} n==2' | head -30; } >> "$OUT/threads.log") &
    samplers+=($!)
}
samplers=()

# The ceilings first (the figure the target is about), the bare
# subscriber's once, then Eventscope's for each partition count.
step ceiling-p1 --only ceiling --partitions 1 --ceiling-from 200000
for n in 8 4 2; do
    step "ceiling-p$n" --only ceiling --no-bare --partitions "$n" --ceiling-from 200000
done
# kept / offered at fixed rates, for each partition count.
step paced-bare --only paced --paced 300000,600000,900000 --partitions 1
for n in 1 2 4 8; do
    # (the 600,000/s trial starts about SECS + 2 s in)
    [ "$n" = 1 ] || [ "$n" = 8 ] && threads $((SECS + 4)) "paced 600000/s, $n partition(s)"
    step "paced-p$n" --only paced --no-bare --paced 300000,600000,900000 --partitions "$n"
done
# An unpaced burst: the bare subscriber, Eventscope with 1 and 8.
step burst-p1 --only burst --burst 2000000 --partitions 1
step burst-p8 --only burst --no-bare --burst 2000000 --partitions 8
wait "${samplers[@]}"
echo "done"
