#!/usr/bin/env bash
# Resolves the Kafka broker jars from Maven Central into ~/.cache/mlbus (outside the repo) and
# prints the folder. Maven's own cache (~/.m2) makes later runs instant.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")"
cache="${MLBUS_CACHE:-$HOME/.cache/mlbus}"
libs="$cache/kafka-$version/libs"
if [ ! -f "$libs/.complete" ]; then
  echo "mlbus: resolving Apache Kafka $version from Maven Central (first run only, ~1 min)..." >&2
  rm -rf "$libs"
  # Maven's quiet mode still writes colour resets; its output is shown only if it fails.
  mkdir -p "$cache"
  log="$cache/kafka-$version.log"
  if ! mvn -B -q -Dstyle.color=never -f "$here/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$libs" >"$log" 2>&1; then
    tail -30 "$log" >&2
    echo "mlbus: resolving Kafka failed; the full log is $log" >&2
    exit 1
  fi
  touch "$libs/.complete"
fi
echo "$libs"
