#!/usr/bin/env bash
# The fuzz (property) tests in their long mode: the decoder, the event
# filter / query-string parser, the config file parser and the live
# socket's message handling, each with CASES cases (default 100,000; the
# test suite runs a few hundred to a few thousand each).
#   scripts/fuzz.sh [CASES]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/env.sh
cases="${1:-100000}"
log "fuzz: $cases cases per test"
EVENTSCOPE_FUZZ_CASES="$cases" cargo test --release -p server -p app --lib fuzz -- --test-threads 1
