#!/usr/bin/env bash
# Prints the folder of PostgreSQL 15's server programs (initdb, postgres, psql), for the
# throw-away clusters of mlbus/servers/postgres.py (FerretDB's PostgreSQL backend, measured by
# bench/backends.py). Debian's postgresql-15 package is installed with apt-get when missing
# (root only: anyone else is told what to install). Nothing else of mlbus needs it.
set -euo pipefail
bin="${MLBUS_POSTGRES_BIN:-/usr/lib/postgresql/15/bin}"
if [ ! -x "$bin/postgres" ]; then
  echo "mlbus: PostgreSQL 15 is not installed; installing Debian's postgresql-15 (apt-get)..." >&2
  mkdir -p var/logs
  if [ "$(id -u)" -ne 0 ] || ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq postgresql-15; } > var/logs/apt-postgresql.log 2>&1; then
    echo "mlbus: could not install postgresql-15 (root and Debian's packages are needed; see" \
      "var/logs/apt-postgresql.log). Install it, or set MLBUS_POSTGRES_BIN to its bin folder." >&2
    exit 1
  fi
fi
echo "$bin"
