# Sourced by the other scripts: where tools and builds live. Everything the
# scripts install goes under $EVENTSCOPE_TOOLS (outside the checkout), so a
# fresh clone reuses what an earlier one installed and built.
EVENTSCOPE_TOOLS="${EVENTSCOPE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/eventscope}"
export EVENTSCOPE_TOOLS
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$EVENTSCOPE_TOOLS/target}"
export PATH="$HOME/.cargo/bin:$EVENTSCOPE_TOOLS/node/node_modules/.bin:$EVENTSCOPE_TOOLS/venv/bin:$PATH"
# New dependencies resolve to versions this rustc can build.
export CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export REPO_ROOT
# Where the release binary lands after `cargo leptos build --release`.
export EVENTSCOPE_BIN="$CARGO_TARGET_DIR/release/eventscope"
export EVENTSCOPE_NATS_SERVER="${EVENTSCOPE_NATS_SERVER:-$EVENTSCOPE_TOOLS/venv/bin/nats-server}"
export LEPTOS_SITE_ROOT="${LEPTOS_SITE_ROOT:-$REPO_ROOT/target/site}"

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
