#!/usr/bin/env bash
# Installs the palette's development dependencies (Node-RED and node-red-node-test-helper, as in
# the committed package-lock.json) with `npm ci` into clients/node-red/node_modules (ignored by
# git), once per lock file: a second run does nothing. Progress goes to stderr.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
say() { echo "mlbus: $*" >&2; }
for tool in node npm; do
  if ! command -v "$tool" >/dev/null; then
    say "$tool not found: the Node-RED palette needs Node.js 18.5 or newer and npm"
    exit 1
  fi
done
stamp="$here/node_modules/.mlbus-lock-$(sha256sum "$here/package-lock.json" | cut -c1-12)"
if [ -f "$stamp" ]; then
  exit 0
fi
exec 9>"$here/.install.lock"
flock 9 # two test sessions may both be the first; the second waits, then finds it done
if [ ! -f "$stamp" ]; then
  say "installing the Node-RED palette's test dependencies with npm ci (first run only, ~1 min)..."
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=warn >&2)
  touch "$stamp"
fi
