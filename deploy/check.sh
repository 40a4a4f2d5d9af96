#!/usr/bin/env bash
# Validates deploy/ (run by `make check`):
# - the generated manifests match the topic registry (python -m mlbus.k8s --check);
# - every overlay of deploy/k8s builds with kustomize, and kubeconform finds every resource
#   valid (strict: unknown fields are errors) against the schemas vendored in
#   deploy/k8s/schemas (Kubernetes, Strimzi, KEDA): nothing is fetched, a kind without a schema
#   is an error;
# - the Prometheus rules pass `promtool check rules` and their unit tests `promtool test rules`,
#   run by deploy/tools/promrules: those two commands of promtool, from the same Prometheus module.
# The three tools are built once into ~/.cache/mlbus/bin by deploy/tools/install.sh (the first run
# says so and takes a few minutes); later runs take seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
kustomize="$(bash deploy/tools/install.sh kustomize)"
kubeconform="$(bash deploy/tools/install.sh kubeconform)"
promrules="$(bash deploy/tools/install.sh promrules)"

.venv/bin/python -m mlbus.k8s --check
out=var/k8s
mkdir -p "$out"
for overlay in deploy/k8s/overlays/*/; do
  name="$(basename "$overlay")"
  "$kustomize" build "$overlay" > "$out/$name.yaml"
  printf 'deploy/k8s/overlays/%s: ' "$name"
  "$kubeconform" -strict -summary \
    -schema-location 'deploy/k8s/schemas/kubernetes/{{.ResourceKind}}{{.KindSuffix}}.json' \
    -schema-location 'deploy/k8s/schemas/crds/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json' \
    "$out/$name.yaml"
done
"$promrules" check rules deploy/prometheus/*.rules.yaml
"$promrules" test rules deploy/prometheus/tests/*.test.yaml
