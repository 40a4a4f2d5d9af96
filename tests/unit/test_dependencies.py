"""The runtime dependencies are what the README's "Dependencies" table says, and no service
imports a package that is only a test dependency."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_PACKAGES = ("runtime", "schemas", "services", "mlbus", "clearml_sim", "serving_node")
# Import names of packages that are test-only (`dev` extra) or gone: a service must not need them.
NOT_AT_RUN_TIME = {"clearml", "clearml_agent", "faust", "mode", "pytest", "schemathesis"}


def distribution_name(requirement: str) -> str:
    """`uvicorn[standard]>=0.32,<1` -> `uvicorn[standard]` (the name as the README writes it)."""
    match = re.match(r"\s*([A-Za-z0-9._-]+(?:\[[^\]]*\])?)", requirement)
    assert match, requirement
    return match.group(1).lower()


def pyproject_dependencies() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [distribution_name(r) for r in project["dependencies"]]


def readme_dependencies(readme: str) -> list[str]:
    """The first column of the first table under "## Dependencies"."""
    section = readme.split("\n## Dependencies\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert rows, "no table under ## Dependencies"
    return [re.match(r"\| `([^`]+)`", row).group(1).lower() for row in rows]  # type: ignore[union-attr]


def test_readme_table_lists_exactly_the_runtime_dependencies() -> None:
    in_readme = readme_dependencies((ROOT / "README.md").read_text())
    in_pyproject = pyproject_dependencies()
    assert len(in_readme) == len(set(in_readme)), "a package listed twice in the README"
    assert sorted(in_readme) == sorted(in_pyproject), (
        f"only in pyproject.toml: {sorted(set(in_pyproject) - set(in_readme))}; "
        f"only in the README: {sorted(set(in_readme) - set(in_pyproject))}"
    )


def test_drift_is_caught() -> None:
    """The comparison above sees a row added without its dependency, and one missing."""
    readme = (ROOT / "README.md").read_text()
    extra = readme.replace(
        "\n| `aiokafka` |", "\n| `faust-streaming` | streams | no |\n| `aiokafka` |", 1
    )
    assert "faust-streaming" in readme_dependencies(extra)
    missing = readme.replace("\n| `numpy` |", "\n| numpy |", 1)
    assert "numpy" not in readme_dependencies(missing)
    assert "numpy" in pyproject_dependencies()


def test_services_do_not_import_test_only_packages() -> None:
    for package in RUNTIME_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names = [node.module]
                else:
                    continue
                bad = {n for n in names if n.split(".")[0] in NOT_AT_RUN_TIME}
                assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"
