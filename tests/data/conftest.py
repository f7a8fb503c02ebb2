"""Fixtures for the data tests: a multiclass project with a key slice column ``region``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from loopml.project import Project, init_project, open_project


def make_project(directory: Path, task: str = "multiclass") -> Project:
    init_project(directory, task=task).close()  # type: ignore[arg-type]
    spec = directory / "loopml.toml"
    spec.write_text(
        spec.read_text().replace("columns = []", 'columns = ["region"]', 1), encoding="utf-8"
    )
    return open_project(directory)


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    p = make_project(tmp_path / "proj")
    yield p
    p.close()
