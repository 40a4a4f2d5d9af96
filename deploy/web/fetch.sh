#!/usr/bin/env bash
# Installs the browser assets mlbus serves itself (deploy/web/package.json: Swagger UI, htmx,
# uPlot; axe-core for the browser tests), every version as in the committed package-lock.json,
# with `npm ci --ignore-scripts` into ~/.cache/mlbus/web-<lock hash> (outside the repo), and
# prints that folder. Nothing is loaded from a CDN at run time: clusters run offline.
# A changed lock file gets a new folder; a second run does nothing. Progress goes to stderr.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${MLBUS_CACHE:-$HOME/.cache/mlbus}"
say() { echo "mlbus: $*" >&2; }

for tool in node npm; do
  if ! command -v "$tool" >/dev/null; then
    say "$tool not found: the web assets are installed with npm (apt-get install nodejs npm)."
    exit 1
  fi
done
lock_hash="$(sha256sum "$here/package-lock.json" | cut -c1-12)"
home="$cache/web-$lock_hash"
if [ ! -f "$home/.complete" ]; then
  mkdir -p "$cache"
  exec 9>"$cache/web.lock"
  flock 9 # two first runs at once: the second waits, then finds it
fi
if [ ! -f "$home/.complete" ]; then
  say "installing the web assets with npm ci into $home (first run only)..."
  rm -rf "$home"
  mkdir -p "$home"
  cp "$here/package.json" "$here/package-lock.json" "$home/"
  # --ignore-scripts: swagger-ui-dist's dependency @scarf/scarf phones home in a postinstall.
  if ! (cd "$home" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=warn >&2); then
    say "npm ci failed in $home (is the npm registry reachable? see the messages above)"
    exit 1
  fi
  touch "$home/.complete"
fi
echo "$home"
