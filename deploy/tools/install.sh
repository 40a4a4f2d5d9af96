#!/usr/bin/env bash
# Installs one of the Go tools that `make check` uses to validate deploy/ (kustomize, kubeconform,
# promtool) and prints its path. Each is built from the Go module proxy at the version pinned below
# (`go install module@version`: the module's own go.mod and go.sum, verified by the Go checksum
# database), into a cache folder outside the repository, so later runs and CI reuse the binary.
# Usage: deploy/tools/install.sh kustomize|kubeconform|promtool
set -euo pipefail
declare -A pkg=(
  [kustomize]=sigs.k8s.io/kustomize/kustomize/v5
  [kubeconform]=github.com/yannh/kubeconform/cmd/kubeconform
  [promtool]=github.com/prometheus/prometheus/cmd/promtool
)
declare -A version=(
  [kustomize]=v5.8.2
  [kubeconform]=v0.8.0
  [promtool]=v0.316.0
)
# Rough cold build times on a 2-core machine, said before a build starts so nobody thinks it hangs.
declare -A cost=([kustomize]="~2 min" [kubeconform]="~1 min" [promtool]="~30-40 min")
tool="${1:?usage: $0 kustomize|kubeconform|promtool}"
[ -n "${pkg[$tool]:-}" ] || { echo "mlbus: unknown tool $tool" >&2; exit 2; }
cache="${MLBUS_CACHE:-$HOME/.cache/mlbus}"
out="$cache/bin/$tool-${version[$tool]}"
[ -x "$out" ] && { echo "$out"; exit 0; }

echo "mlbus: building $tool ${version[$tool]} from the Go module proxy (first run only, ${cost[$tool]})..." >&2
gobin="$cache/build/gobin-$tool-${version[$tool]}"
rm -rf "$gobin" && mkdir -p "$gobin" "$cache/bin"
log="$cache/build/$tool-${version[$tool]}.log"  # Go lists every module: shown only on failure
if ! GOBIN="$gobin" GOFLAGS=-trimpath go install "${pkg[$tool]}@${version[$tool]}" >"$log" 2>&1; then
  tail -30 "$log" >&2
  echo "mlbus: building $tool failed; the full log is $log" >&2
  exit 1
fi
mv "$gobin/$tool" "$out"
rm -rf "$gobin"
echo "mlbus: $tool built: $out" >&2
echo "$out"
