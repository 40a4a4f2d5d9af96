"""Parts of README.md written from the code, so they cannot drift: each between two markers,
rewritten by its module's `main` (`--check` only says whether it is current; a unit test runs
the same check)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


@dataclass(frozen=True)
class Part:
    """One written part: its markers and what writes its body."""

    module: str  # e.g. "mlbus.settings_doc": what a person runs
    what: str  # e.g. "settings": said when stale
    begin: str
    end: str
    render: Callable[[], str]

    def rewritten(self, readme: str) -> str:
        """`readme` with this part replaced."""
        head, rest = readme.split(self.begin, 1)
        _, tail = rest.split(self.end, 1)
        return f"{head}{self.begin}\n{self.render()}\n{self.end}{tail}"

    def main(self, argv: list[str] | None = None, doc: str | None = None) -> int:
        parser = argparse.ArgumentParser(prog=f"python -m {self.module}", description=doc)
        parser.add_argument("--check", action="store_true", help="fail if README.md is stale")
        args = parser.parse_args(argv)
        text = README.read_text()
        new = self.rewritten(text)
        if args.check:
            if new != text:
                sys.stderr.write(f"README.md's {self.what}: stale; run python -m {self.module}\n")
                return 1
            return 0
        if new != text:
            README.write_text(new)
        return 0
