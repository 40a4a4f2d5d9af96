#!/usr/bin/env bash
# Builds FerretDB (MongoDB wire protocol, SQLite backend) from the Go module proxy.
# The module version and its checksum are pinned by go.mod/go.sum beside this script; the build
# happens in a cache folder outside the repository, so later runs and CI reuse it.
# FerretDB embeds build/version/version.txt, which its own repo generates with `task gen-version`;
# a module download lacks it, so we write it from the pinned version.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version="$(awk '$1 == "require" && $2 == "github.com/FerretDB/FerretDB" {print $3; exit}' "$here/go.mod")"
cache="${MLBUS_CACHE:-$HOME/.cache/mlbus}"
# The binary's name carries a hash of the patches, so a changed patch rebuilds it.
patch_sum="$(cat "$here"/patches/*.patch | sha256sum | cut -c1-8)"
out="$cache/bin/ferretdb-$version-$patch_sum"
[ -x "$out" ] && { echo "$out"; exit 0; }

echo "mlbus: building FerretDB $version from the Go module proxy (first run only, ~2 min)..." >&2
src_dir="$(cd "$here" && go mod download -json "github.com/FerretDB/FerretDB@$version" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
work="$cache/build/ferretdb-$version"
rm -rf "$work" && mkdir -p "$work" "$cache/bin"
cp -R "$src_dir/." "$work/" && chmod -R u+w "$work"
echo "$version" > "$work/build/version/version.txt"
for p in "$here"/patches/*.patch; do
  patch -s -d "$work" -p1 < "$p"
done
# Go lists every module it downloads: kept in a log, shown only if the build fails.
log="$cache/build/ferretdb-$version.log"
if ! (cd "$work" && GOFLAGS=-mod=mod go build -trimpath -o "$out.tmp" ./cmd/ferretdb) >"$log" 2>&1; then
  tail -30 "$log" >&2
  echo "mlbus: FerretDB build failed; the full log is $log" >&2
  exit 1
fi
mv "$out.tmp" "$out"
echo "mlbus: FerretDB built: $out" >&2
echo "$out"
