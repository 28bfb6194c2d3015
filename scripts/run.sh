#!/usr/bin/env bash
# Builds Eventscope (release) and runs it. With no arguments: demo mode, a
# managed local nats-server and the built-in producer; open the URL it
# prints (http://127.0.0.1:3000). Any arguments go to `eventscope`, e.g.
#   scripts/run.sh --nats-url nats://127.0.0.1:4222 --subject 'logs.>'
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
"$REPO_ROOT/scripts/setup.sh"
cd "$REPO_ROOT"
log "building (cargo leptos build --release --split)"
cargo leptos build --release --split
exec "$EVENTSCOPE_BIN" --site-root "$LEPTOS_SITE_ROOT" "$@"
