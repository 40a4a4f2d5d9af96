"""Refreshes the JSON schemas that `make check` validates deploy/k8s against (kubeconform).

Run by hand when a version below changes, then commit the result; `make check` reads only the
files in this folder and fetches nothing.

- kubernetes/: the kinds mlbus deploys, for Kubernetes KUBERNETES (strict: unknown fields are
  errors), cut out of the `kubernetes-validate` package on PyPI (its copy of the Kubernetes
  OpenAPI definitions) and made standalone (each file holds the definitions it refers to).
- crds/keda.sh/: KEDA's ScaledObject and TriggerAuthentication, from the openAPIV3Schema of the
  CRDs in the KEDA Go module (KEDA), made strict.
- crds/kafka.strimzi.io/: written for mlbus (no registry ships Strimzi's CRDs); see README.md.

Usage: .venv/bin/python deploy/k8s/schemas/vendor.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
KUBERNETES = "v1.33.0"
VALIDATE = "kubernetes-validate==1.37.0"
KEDA = "github.com/kedacore/keda/v2@v2.21.0"
KINDS = (
    "configmap-v1",
    "daemonset-apps-v1",
    "deployment-apps-v1",
    "networkpolicy-networking-v1",
    "poddisruptionbudget-policy-v1",
    "secret-v1",
    "service-v1",
    "serviceaccount-v1",
)
KEDA_CRDS = ("keda.sh_scaledobjects.yaml", "keda.sh_triggerauthentications.yaml")


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            found.add(ref.rsplit("/", 1)[-1])
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def _local(node: Any) -> Any:
    """Point every reference at this file's own $defs."""
    if isinstance(node, dict):
        return {
            k: ("#/$defs/" + v.rsplit("/", 1)[-1] if k == "$ref" else _local(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_local(v) for v in node]
    return node


def kubernetes(root: Path) -> None:
    """Standalone strict schemas of KINDS."""
    folder = root / f"kubernetes_validate/kubernetes-json-schema/{KUBERNETES}-local-strict"
    definitions = json.loads((folder / "_definitions.json").read_text())["$defs"]
    out = HERE / "kubernetes"
    out.mkdir(exist_ok=True)
    for kind in KINDS:
        schema = json.loads((folder / f"{kind}.json").read_text())
        wanted: set[str] = set()
        _refs(schema, wanted)
        todo = list(wanted)
        while todo:  # the definitions those refer to, transitively
            more: set[str] = set()
            _refs(definitions[todo.pop()], more)
            todo += sorted(more - wanted)
            wanted |= more
        schema["$defs"] = {name: definitions[name] for name in sorted(wanted)}
        (out / f"{kind}.json").write_text(json.dumps(_local(schema), indent=1) + "\n")


def _strict(node: Any) -> Any:
    """openAPIV3Schema -> JSON schema as kubeconform reads it: objects with properties allow
    nothing else (unless the CRD keeps unknown fields), int-or-string is either."""
    if isinstance(node, list):
        return [_strict(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _strict(v) for k, v in node.items()}
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["oneOf"] = [{"type": "string"}, {"type": "integer"}]
    preserve = out.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    return out


def keda(module_dir: Path) -> None:
    """KEDA's CRD schemas, one file per kind and version."""
    out = HERE / "crds" / "keda.sh"
    out.mkdir(parents=True, exist_ok=True)
    for name in KEDA_CRDS:
        crd = yaml.safe_load((module_dir / "config/crd/bases" / name).read_text())
        kind = crd["spec"]["names"]["kind"].lower()
        for version in crd["spec"]["versions"]:
            schema = _strict(version["schema"]["openAPIV3Schema"])
            path = out / f"{kind}_{version['name']}.json"
            path.write_text(json.dumps(schema, indent=1) + "\n")


def main() -> int:
    """Fetch through the registries' own clients, then write the schemas."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(  # noqa: S603 - fixed arguments
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", VALIDATE, "-d", tmp],
            check=True,
        )
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            prefix = f"kubernetes_validate/kubernetes-json-schema/{KUBERNETES}-local-strict/"
            archive.extractall(tmp, [n for n in archive.namelist() if n.startswith(prefix)])
        kubernetes(Path(tmp))
    info = subprocess.run(  # noqa: S603 - fixed arguments
        ["go", "mod", "download", "-json", KEDA],  # noqa: S607 - go from PATH, as build.sh does
        check=True,
        capture_output=True,
        text=True,
    )
    keda(Path(json.loads(info.stdout)["Dir"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
