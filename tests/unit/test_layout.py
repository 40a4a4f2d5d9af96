"""The import rule: services never import each other; schemas and runtime import no service;
runtime imports no business logic."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_services_never_import_each_other() -> None:
    services = [p.name for p in (ROOT / "services").iterdir() if (p / "__init__.py").exists()]
    assert {"ingest", "enqueuer"} <= set(services)
    for name in services:
        for path in (ROOT / "services" / name).rglob("*.py"):
            others = {
                imp
                for imp in imports_of(path)
                if imp.startswith("services.") and imp.split(".")[1] != name
            }
            assert not others, f"{path.relative_to(ROOT)} imports {sorted(others)}"


def test_shared_packages_import_no_service_and_no_test_double() -> None:
    for package in ("schemas", "runtime"):
        for path in (ROOT / package).rglob("*.py"):
            bad = {
                imp
                for imp in imports_of(path)
                if imp.split(".")[0] in {"services", "mlbus", "clearml_sim", "serving_node"}
            }
            assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"
