"""Scripts and style sheets: named by version in the pages, kept by the browser for a year."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from runtime.webassets import IMMUTABLE, CachedFiles, versioned
from services.console.web import STATIC, TEMPLATES


def test_a_versioned_url_is_kept_a_year_and_a_bare_one_is_asked_again(tmp_path: Path) -> None:
    (tmp_path / "a.css").write_text("body{color:red}")
    app = FastAPI()
    app.mount("/s", CachedFiles(directory=tmp_path))
    url = versioned({"/s": tmp_path})("/s/a.css")
    assert re.fullmatch(r"/s/a\.css\?v=[0-9a-f]{12}", url)
    with TestClient(app) as client:
        assert client.get(url).headers["cache-control"] == IMMUTABLE
        assert client.get("/s/a.css").headers["cache-control"] == "no-cache"
        assert "cache-control" not in client.get("/s/missing.css").headers


def test_the_version_changes_with_the_content(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text("1")
    before = versioned({"/s": tmp_path})("/s/a.js")
    (tmp_path / "a.js").write_text("2")
    assert versioned({"/s": tmp_path})("/s/a.js") != before
    with pytest.raises(ValueError, match="not under"):
        versioned({"/s": tmp_path})("/elsewhere/a.js")


def test_every_script_and_style_sheet_of_the_console_is_named_by_version() -> None:
    loader = TEMPLATES.loader
    assert loader is not None
    for name in loader.list_templates():
        source = (Path(STATIC["/static"]).parent / "templates" / name).read_text()
        for ref in re.findall(r'(?:src|href)="([^"]+\.(?:js|css)[^"]*)"', source):
            assert ref.startswith("{{ asset("), f"{name}: {ref} is not versioned"
