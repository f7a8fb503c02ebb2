"""A small served project, built once per session and copied for every test that writes
(the project and the server helpers live in serving_helpers.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopml.project import Project, open_project
from serving.serving_helpers import Server, build_project, start_server


@pytest.fixture(scope="session")
def built_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("served") / "proj"
    build_project(root)
    return root


@pytest.fixture
def project_dir(built_project: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "proj"
    shutil.copytree(built_project, dest)
    return dest


@pytest.fixture
def project(project_dir: Path) -> Iterator[Project]:
    p = open_project(project_dir)
    yield p
    p.close()


@pytest.fixture
def serve(project_dir: Path) -> Iterator[object]:
    """Start servers on the copied project; every one is stopped at the end."""
    started: list[Server] = []

    def _start(*args: str, env: dict[str, str] | None = None) -> Server:
        s = start_server(project_dir, *args, env=env)
        started.append(s)
        return s

    yield _start
    for s in started:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait(10)
