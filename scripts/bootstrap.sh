#!/usr/bin/env bash
# Prepares a fresh clone: the Python environment (.venv), the Kafka jars, the FerretDB binary,
# Keycloak (its distribution and a Java 21+ JDK) and Node-RED (npm ci; the existing-client check).
# Caches live outside the repository (~/.cache/pip, ~/.m2, Go's caches, ~/.cache/mlbus), so a
# second clone on the same machine is ready in seconds. Each step says what it does.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-12)
if [ ! -f "$stamp" ]; then
  echo "mlbus: installing the Python environment in .venv (first run only, ~1-2 min)..."
  [ -x .venv/bin/python ] || python3 -m venv .venv
  mkdir -p var/logs
  if ! .venv/bin/pip install --progress-bar off -e ".[dev]" > var/logs/pip-install.log 2>&1; then
    tail -30 var/logs/pip-install.log
    echo "mlbus: pip install failed; the full log is var/logs/pip-install.log" >&2
    exit 1
  fi
  rm -f .venv/.installed-* && touch "$stamp"
fi
bash deploy/kafka/fetch.sh >/dev/null
bash deploy/ferretdb/build.sh >/dev/null
bash deploy/keycloak/fetch.sh >/dev/null
bash deploy/nodered/fetch.sh >/dev/null
bash deploy/web/fetch.sh >/dev/null # axe-core for the browser tests (served assets are vendored)
if ! command -v chromium >/dev/null; then
  # The browser tests drive Debian's Chromium through Playwright (executable_path): no browser
  # download of Playwright's own, which an offline machine could not make anyway.
  echo "mlbus: installing Debian's chromium for the browser tests (apt-get, first run only)..."
  mkdir -p var/logs
  if [ "$(id -u)" -ne 0 ] || ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq chromium; } > var/logs/apt-chromium.log 2>&1; then
    echo "mlbus: could not install chromium (root and Debian's packages are needed; see" \
      "var/logs/apt-chromium.log); the browser tests will be skipped" >&2
  fi
fi
