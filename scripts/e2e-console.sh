#!/usr/bin/env bash
# The console end to end in headless Chromium (e2e/console.test.mjs).
# Installs Debian's chromium when it is missing (needs root and apt), and
# playwright-core from npm into e2e/node_modules (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
(cd e2e && npm ci --no-audit --no-fund --silent)
cargo build --quiet -p yoi
(cd e2e && YOI_BIN="$PWD/../target/debug/yoi" npm test --silent)
