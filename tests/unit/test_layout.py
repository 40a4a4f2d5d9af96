"""The import rule: services never import each other; schemas and runtime import no service;
runtime imports no business logic."""

from __future__ import annotations

import ast
from pathlib import Path

from schemas.status import RequestStatus

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


def _defines_or_names(path: Path, names: set[str]) -> set[str]:
    tree = ast.parse(path.read_text())
    found = {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name in names}
    found |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id in names}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "pymongo.errors":
            found |= {a.name for a in node.names if a.name in names}
    return found


def mongo_error_violations(root: Path) -> list[str]:
    """Where pymongo's transient errors are named outside runtime/mongo.py, and every module
    that defines a StoreUnavailable of its own."""
    transient = {
        "TRANSIENT_MONGO_ERRORS",
        "AutoReconnect",
        "ConnectionFailure",
        "NetworkTimeout",
        "ServerSelectionTimeoutError",
    }
    found = []
    for package in ("services", "runtime", "schemas", "mlbus"):
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            if rel == "runtime/mongo.py":
                continue
            tree = ast.parse(path.read_text())
            if any(
                isinstance(n, ast.ClassDef) and n.name == "StoreUnavailable" for n in ast.walk(tree)
            ):
                found.append(f"{rel} defines StoreUnavailable")
            if named := _defines_or_names(path, transient):
                found.append(f"{rel} names {sorted(named)}")
    return found


def test_mongo_errors_are_translated_in_one_place() -> None:
    """StoreUnavailable is defined once (runtime/mongo.py), and only that module names pymongo's
    transient errors: every store translates them with `store_errors()`."""
    assert mongo_error_violations(ROOT) == []


def status_groups_spelled(root: Path) -> list[str]:
    """Collections of two or more request statuses written out outside schemas/status.py."""
    statuses = {s.value for s in RequestStatus}
    found = []
    for package in ("services", "runtime", "schemas", "mlbus"):
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            if rel == "schemas/status.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Set | ast.Tuple | ast.List) and len(node.elts) >= 2:
                    values = [e.value for e in node.elts if isinstance(e, ast.Constant)]
                    if len(values) == len(node.elts) and set(values) <= statuses:
                        found.append(f"{rel}:{node.lineno} {values}")
    return found


def test_request_status_groups_come_from_schemas() -> None:
    """SETTLED, ACTIVE, ENDED and ALL are schemas.status's; a service that spells its own set
    of statuses drifts when the vocabulary changes."""
    assert status_groups_spelled(ROOT) == []
