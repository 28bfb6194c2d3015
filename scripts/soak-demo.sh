#!/usr/bin/env bash
# Demo-mode memory soak: runs the release binary in demo mode (its managed
# nats-server and producer) at RATE events/s with a STORE log cap for
# MINUTES, and samples its resident memory and the log's bytes every
# 30 s into OUT (CSV). The RSS curve should be flat once the log is full.
#   scripts/soak-demo.sh [MINUTES=60] [RATE=6000] [STORE=256MiB] [OUT=target/soak-demo.csv]
# Uses the binary already built (cargo build --release -p server --bin eventscope).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_ROOT"
minutes="${1:-60}"; rate="${2:-6000}"; store="${3:-256MiB}"
out="${4:-$REPO_ROOT/target/soak-demo.csv}"
bin="$CARGO_TARGET_DIR/release/eventscope"
[ -x "$bin" ] || { echo "build it first: cargo build --release -p server --bin eventscope" >&2; exit 2; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$(dirname "$out")"
EVENTSCOPE_LOG=warn "$bin" --demo-rate "$rate" --store-bytes "$store" --addr "127.0.0.1:$port" \
  --site-root "${LEPTOS_SITE_ROOT:-target/site}" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
log "demo soak: pid $pid, $rate events/s, store $store, $minutes min -> $out"
echo "seconds,rss_mib,store_bytes_mib,projections_mib,checkpoints_mib,checkpoints_held,ingested,dropped" > "$out"
start=$(date +%s)
end=$(( start + minutes * 60 ))
while [ "$(date +%s)" -lt "$end" ]; do
  sleep 30
  kill -0 $pid 2>/dev/null || { echo "eventscope exited" >&2; exit 1; }
  rss_kb=$(awk '/^VmRSS/ {print $2}' /proc/$pid/status)
  metrics=$(curl -s "http://127.0.0.1:$port/metrics" || true)
  store_b=$(awk '/^eventscope_store_bytes / {print $2}' <<<"$metrics")
  ingested=$(awk '/^eventscope_events_ingested_total/ {s+=$2} END {print s+0}' <<<"$metrics")
  dropped=$(awk '/^eventscope_events_dropped_total/ {s+=$2} END {print s+0}' <<<"$metrics")
  live_b=$(awk '/^eventscope_projection_bytes\{state="live"\}/ {print $2}' <<<"$metrics")
  cps_b=$(awk '/^eventscope_projection_bytes\{state="checkpoints"\}/ {print $2}' <<<"$metrics")
  held=$(awk '/^eventscope_checkpoints / {print $2}' <<<"$metrics")
  printf '%d,%.1f,%.1f,%.1f,%.1f,%s,%s,%s\n' $(( $(date +%s) - start )) "$(bc -l <<<"$rss_kb/1024")" \
    "$(bc -l <<<"${store_b:-0}/1048576")" "$(bc -l <<<"${live_b:-0}/1048576")" \
    "$(bc -l <<<"${cps_b:-0}/1048576")" "${held:-0}" "$ingested" "$dropped" | tee -a "$out"
done
