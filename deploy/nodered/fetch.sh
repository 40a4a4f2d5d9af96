#!/usr/bin/env bash
# Installs Node-RED (the exact version pinned in package.json, every dependency as in the committed
# package-lock.json) with `npm ci` into ~/.cache/mlbus/node-red-<version>-<lock hash> (outside the
# repo) and prints that folder. A changed lock file gets a new folder; a second run does nothing.
# Node-RED 5 needs Node 22.9+, newer than the Node 20 on these machines: 4.1.x is pinned (>= 18.5).
# Progress goes to stderr.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${MLBUS_CACHE:-$HOME/.cache/mlbus}"
say() { echo "mlbus: $*" >&2; }

for tool in node npm; do
  if ! command -v "$tool" >/dev/null; then
    say "$tool not found: the Node-RED check needs Node.js 18.5 or newer and npm"
    say "(e.g. apt-get install nodejs npm, or https://nodejs.org)."
    exit 1
  fi
done
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 18 ]; then
  say "Node.js $(node --version) is too old for Node-RED 4 (it needs 18.5 or newer)."
  exit 1
fi

version="$(node -p "require('$here/package.json').dependencies['node-red']")"
lock_hash="$(sha256sum "$here/package-lock.json" | cut -c1-12)"
home="$cache/node-red-$version-$lock_hash"
if [ ! -f "$home/.complete" ]; then
  mkdir -p "$cache"
  exec 9>"$cache/node-red-$version.lock"
  flock 9 # a test session and another may both be the first; the second waits, then finds it
fi
if [ ! -f "$home/.complete" ]; then
  say "installing Node-RED $version with npm ci into $home (first run only, ~1 min)..."
  rm -rf "$home"
  mkdir -p "$home"
  cp "$here/package.json" "$here/package-lock.json" "$home/"
  started=$SECONDS
  if ! (cd "$home" && npm ci --no-audit --no-fund --loglevel=warn >&2); then
    say "npm ci failed in $home (is the npm registry reachable? see the messages above)"
    exit 1
  fi
  say "Node-RED $version installed in $((SECONDS - started)) s"
  touch "$home/.complete"
fi
echo "$home"
