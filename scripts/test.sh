#!/usr/bin/env bash
# Runs the whole test suite: installs what is missing, builds the release
# site once, runs the Rust unit and integration tests (against real
# nats-servers they start themselves), then the Playwright end-to-end tests
# in the system Chromium against the built binary.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
"$REPO_ROOT/scripts/setup.sh" --test
cd "$REPO_ROOT"

log "building the release site (cargo leptos build --release --split)"
cargo leptos build --release --split

log "rust tests (unit, golden fixtures, integration against nats-server)"
cargo test --release -p server -p app

log "benchmarks, short mode (each runs once, so they cannot rot)"
cargo bench -p server --bench core -- --test

log "load tool, short mode (eventscope-load --quick)"
cargo run --release -q -p server --bin eventscope-load -- --quick

log "hostile soak, short mode (eventscope-load --quick --only soak: 20 s of the binary)"
cargo run --release -q -p server --bin eventscope-load -- --quick --only soak --eventscope-bin "$EVENTSCOPE_BIN"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

log "end-to-end tests (Playwright, Chromium)"
nats_port=$(free_port)
nats_dir=$(mktemp -d)
"$EVENTSCOPE_NATS_SERVER" -a 127.0.0.1 -p "$nats_port" -js -sd "$nats_dir" >"$nats_dir/nats.log" 2>&1 &
nats_pid=$!
cleanup() {
  kill "$nats_pid" 2>/dev/null || true
  wait "$nats_pid" 2>/dev/null || true
  rm -rf "$nats_dir"
}
trap cleanup EXIT
export E2E_NATS_URL="nats://127.0.0.1:$nats_port"
export E2E_ATTACHED_PORT=$(free_port)
export E2E_DEMO_PORT=$(free_port)
export E2E_SIGNIN_PORT=$(free_port)
export E2E_OIDC_PORT=$(free_port)
export E2E_OIDC_PROVIDER_PORT=$(free_port)
cd "$REPO_ROOT/end2end"
npx playwright test
