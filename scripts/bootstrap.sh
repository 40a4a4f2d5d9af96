#!/usr/bin/env bash
# Prepares a fresh clone: the Python environment (.venv), the Kafka jars and the FerretDB binary.
# Caches live outside the repository (~/.cache/pip, ~/.m2, Go's caches, ~/.cache/mlbus), so a
# second clone on the same machine is ready in seconds. Each step says what it does.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-12)
if [ ! -f "$stamp" ]; then
  echo "mlbus: installing the Python environment in .venv (first run only, ~1-2 min)..."
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip >/dev/null
  .venv/bin/pip install --quiet --progress-bar off -e ".[dev]"
  rm -f .venv/.installed-* && touch "$stamp"
fi
bash deploy/kafka/fetch.sh >/dev/null
bash deploy/ferretdb/build.sh >/dev/null
