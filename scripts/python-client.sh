#!/usr/bin/env bash
# Generates a Python client from a live server's /api/openapi.json with
# openapi-python-client and runs one chat cycle with it: create a Worker,
# send input, long-poll events until turn_completed, read the transcript,
# then find the Worker with a state filter and sort, and count Workers.
# Proves the OpenAPI document is usable by a generator, not just valid.
#
#   bash scripts/python-client.sh
#
# Installs openapi-python-client into target/python-client-venv on first use
# (PyPI); everything it writes stays under target/.
set -euo pipefail
cd "$(dirname "$0")/.."

GENERATOR_VERSION=0.29.1
VENV="$PWD/target/python-client-venv"
OUT="$PWD/target/python-client"

if [ ! -x "$VENV/bin/openapi-python-client" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "openapi-python-client==$GENERATOR_VERSION"
fi

cargo build --quiet -p yoi
workdir="$(mktemp -d)"
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$workdir"' EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
target/debug/yoi serve --memory --bind "127.0.0.1:$port" >"$workdir/server.log" 2>&1 &
server=$!
base="http://127.0.0.1:$port"
# Waits for the server, then saves its document (no curl on a fresh machine).
python3 - "$base" "$workdir/openapi.json" <<'PY'
import sys, time, urllib.request
base, out = sys.argv[1], sys.argv[2]
for _ in range(300):
    try:
        urllib.request.urlopen(base + "/healthz", timeout=1)
        break
    except OSError:
        time.sleep(0.1)
with urllib.request.urlopen(base + "/api/openapi.json", timeout=10) as response:
    open(out, "wb").write(response.read())
PY

# No post hooks: they would need ruff, and formatting proves nothing here.
printf 'post_hooks: []\n' >"$workdir/config.yaml"
rm -rf "$OUT"
(cd "$workdir" && "$VENV/bin/openapi-python-client" generate \
  --path openapi.json --config config.yaml --output-path "$OUT" --meta setup \
  --fail-on-warning)
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps "$OUT"
"$VENV/bin/python" scripts/python_client_chat.py "$base"
