"""Projection trees and tag expressions."""

from __future__ import annotations

from clearml_sim.query import TagFilter, project, projection_tree


def test_projection_tree_nests_and_keeps_id() -> None:
    tree = projection_tree(("execution.queue", "status", "execution.parameters"))
    doc = {"id": "t", "status": "queued", "name": "n", "execution": {"queue": "q", "x": 1}}
    assert project(doc, tree) == {"id": "t", "status": "queued", "execution": {"queue": "q"}}


def test_projection_whole_parent_wins() -> None:
    tree = projection_tree(("execution.queue", "execution"))
    assert project({"id": "t", "execution": {"queue": "q", "x": 1}}, tree) == {
        "id": "t",
        "execution": {"queue": "q", "x": 1},
    }


def test_tag_filter() -> None:
    assert TagFilter(["a", "b"]).match(["b"])
    assert not TagFilter(["a", "-b"]).match(["a", "b"])
    assert TagFilter(["-archived"]).match([])
    assert not TagFilter(["__$all", "a", "b"]).match(["a"])
    assert not TagFilter(["__$not", "a"]).match(["a"])
