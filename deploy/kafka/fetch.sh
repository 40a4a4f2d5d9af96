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
  mvn -B -q -Dstyle.color=never -f "$here/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$libs" >&2
  touch "$libs/.complete"
fi
echo "$libs"
