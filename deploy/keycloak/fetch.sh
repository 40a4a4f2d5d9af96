#!/usr/bin/env bash
# Fetches the Keycloak server distribution (org.keycloak:keycloak-quarkus-dist, zip) from Maven
# Central into ~/.cache/mlbus/keycloak-<version> (outside the repo), checks its SHA-1, unpacks it,
# starts it once in dev mode to build its dev-profile Quarkus image (so later `start-dev` starts
# skip that), and prints the folder. Keycloak 26 needs Java 21 or newer, newer than the default
# java on these machines: the JDK is chosen here (MLBUS_KEYCLOAK_JAVA_HOME, else JAVA_HOME or a JDK
# in /usr/lib/jvm, the oldest that is 21+) and written to <folder>/java-home for the launcher.
# Progress goes to stderr; a second run only re-checks the JDK.
set -euo pipefail
version="${MLBUS_KEYCLOAK_VERSION:-26.7.3}"
repo="${MLBUS_MAVEN_CENTRAL:-https://repo1.maven.org/maven2}"
cache="${MLBUS_CACHE:-$HOME/.cache/mlbus}"
home="$cache/keycloak-$version"
say() { echo "mlbus: $*" >&2; }

java_major() { # the major version of the JDK in folder $1, or 0
  local found
  found="$("$1/bin/java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)" || true
  echo "${found:-0}"
}

choose_java() { # an explicit choice must fit; else the oldest JDK >= 21 in /usr/lib/jvm
  local candidate major best="" best_major=999
  if [ -n "${MLBUS_KEYCLOAK_JAVA_HOME:-}" ]; then
    if [ "$(java_major "$MLBUS_KEYCLOAK_JAVA_HOME")" -ge 21 ]; then
      echo "$MLBUS_KEYCLOAK_JAVA_HOME"
      return 0
    fi
    say "MLBUS_KEYCLOAK_JAVA_HOME=$MLBUS_KEYCLOAK_JAVA_HOME is not a Java 21 or newer JDK"
    return 1
  fi
  for candidate in "${JAVA_HOME:-}" /usr/lib/jvm/*; do
    [ -n "$candidate" ] && [ -x "$candidate/bin/java" ] || continue
    major="$(java_major "$candidate")"
    if [ "$major" -ge 21 ] && [ "$major" -lt "$best_major" ]; then
      best="$candidate" best_major="$major"
    fi
  done
  if [ -n "$best" ]; then
    echo "$best"
    return 0
  fi
  say "Keycloak $version needs Java 21 or newer, and none was found (the default java here may be"
  say "older; looked at JAVA_HOME and /usr/lib/jvm/*). Install one (e.g. apt-get install"
  say "openjdk-21-jdk-headless) or set MLBUS_KEYCLOAK_JAVA_HOME to a JDK 21+ folder."
  return 1
}

java_home="$(choose_java)"
if [ ! -f "$home/.complete" ]; then
  mkdir -p "$cache"
  exec 9>"$cache/keycloak-$version.lock"
  flock 9 # a test session and `make run` may both be the first; the second waits, then finds it
fi
if [ ! -f "$home/.complete" ]; then
  zip="$cache/keycloak-quarkus-dist-$version.zip"
  url="$repo/org/keycloak/keycloak-quarkus-dist/$version/keycloak-quarkus-dist-$version.zip"
  mkdir -p "$cache"
  if [ ! -f "$zip" ]; then
    say "downloading Keycloak $version from Maven Central (first run only, ~180 MB)..."
    curl -fL --retry 3 --progress-bar -o "$zip.part" "$url"
    expected="$(curl -fsSL "$url.sha1" | cut -c1-40)"
    actual="$(sha1sum "$zip.part" | cut -c1-40)"
    if [ "$expected" != "$actual" ]; then
      rm -f "$zip.part"
      say "checksum mismatch for $url (expected $expected, got $actual)"
      exit 1
    fi
    mv "$zip.part" "$zip"
  fi
  say "unpacking Keycloak $version into $home..."
  rm -rf "$home" "$home.tmp"
  mkdir -p "$home.tmp"
  unzip -q "$zip" -d "$home.tmp"
  mv "$home.tmp/keycloak-$version" "$home"
  rmdir "$home.tmp"
  # `kc.sh build` refuses the dev profile ("You can not 'build' the server in development mode"),
  # and a production build does not serve start-dev (it re-augments). The first start-dev
  # re-augments Quarkus for the dev profile (~25 s) and keeps the result in lib/quarkus; do it
  # here once, in a throw-away home on a random port, so no later start pays for it or races it.
  say "preparing Keycloak's dev-mode build with Java $(java_major "$java_home") (once, ~1 min)..."
  warm="$(mktemp -d)"
  cp -r "$home/bin" "$warm/bin"
  for part in lib providers themes conf; do ln -s "$home/$part" "$warm/$part"; done
  JAVA_HOME="$java_home" "$warm/bin/kc.sh" start-dev --http-host=127.0.0.1 --http-port=0 \
    >"$home/warm-up.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    grep -q "Listening on:" "$home/warm-up.log" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" || true
  rm -rf "$warm"
  if ! grep -q "Listening on:" "$home/warm-up.log"; then
    tail -20 "$home/warm-up.log" >&2
    say "Keycloak did not start; see $home/warm-up.log"
    exit 1
  fi
  rm -f "$zip"
  touch "$home/.complete"
fi
echo "$java_home" >"$home/java-home"
echo "$home"
