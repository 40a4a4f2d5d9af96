#!/usr/bin/env bash
# Installs one of the Go tools that `make check` uses to validate deploy/ (kustomize, kubeconform,
# promrules) and prints its path, into a cache folder outside the repository, so later runs and CI
# reuse the binary.
# - kustomize and kubeconform: `go install module@version` from the Go module proxy (the module's
#   own go.mod and go.sum, verified by the Go checksum database).
# - promrules (deploy/tools/promrules): promtool's `check rules` and `test rules`, built from
#   Prometheus's module at the version its go.mod pins (go.sum checked in), without the rest of
#   promtool. All of cmd/promtool took ~36 min cold on 2 cores; this takes a few.
# Usage: deploy/tools/install.sh kustomize|kubeconform|promrules
set -euo pipefail
declare -A pkg=(
  [kustomize]=sigs.k8s.io/kustomize/kustomize/v5
  [kubeconform]=github.com/yannh/kubeconform/cmd/kubeconform
  [promrules]=./deploy/tools/promrules
)
declare -A version=(
  [kustomize]=v5.8.2
  [kubeconform]=v0.8.0
  [promrules]=v0.316.0  # github.com/prometheus/prometheus, as deploy/tools/promrules/go.mod pins it
)
# Rough cold build times on a 2-core machine, said before a build starts so nobody thinks it hangs.
declare -A cost=([kustomize]="~2 min" [kubeconform]="~1 min" [promrules]="~5 min")
tool="${1:?usage: $0 kustomize|kubeconform|promrules}"
[ -n "${pkg[$tool]:-}" ] || { echo "mlbus: unknown tool $tool" >&2; exit 2; }
cache="${MLBUS_CACHE:-$HOME/.cache/mlbus}"
out="$cache/bin/$tool-${version[$tool]}"
if [ "$tool" = promrules ]; then  # built from this repository: a change to its source rebuilds it
  src="$(cd "$(dirname "$0")/promrules" && pwd)"
  grep -q "github.com/prometheus/prometheus ${version[$tool]}\$" "$src/go.mod" \
    || { echo "mlbus: $src/go.mod does not pin prometheus ${version[$tool]}" >&2; exit 2; }
  out="$out-$(cat "$src"/go.mod "$src"/go.sum "$src"/*.go | sha256sum | cut -c1-12)"
fi
[ -x "$out" ] && { echo "$out"; exit 0; }

echo "mlbus: building $tool ${version[$tool]} from the Go module proxy (first run only, ${cost[$tool]})..." >&2
gobin="$cache/build/gobin-$tool-${version[$tool]}"
rm -rf "$gobin" && mkdir -p "$gobin" "$cache/bin"
log="$cache/build/$tool-${version[$tool]}.log"  # Go lists every module: shown only on failure
if [ "$tool" = promrules ]; then
  build() { (cd "$src" && GOFLAGS=-trimpath go build -o "$gobin/$tool" .); }
else
  build() { GOBIN="$gobin" GOFLAGS=-trimpath go install "${pkg[$tool]}@${version[$tool]}"; }
fi
if ! build >"$log" 2>&1; then
  tail -30 "$log" >&2
  echo "mlbus: building $tool failed; the full log is $log" >&2
  exit 1
fi
mv "$gobin/$tool" "$out"
rm -rf "$gobin"
echo "mlbus: $tool built: $out" >&2
echo "$out"
