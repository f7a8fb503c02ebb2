"""schemathesis against the server's own OpenAPI document: nothing a client sends,
valid (positive) or invalid (negative), gives a 5xx. A real uvicorn process on
127.0.0.1; bounded examples per operation and mode (well under a minute)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from serving.serving_helpers import Server, start_server

EXAMPLES = 25


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory, built_project: Path) -> Iterator[Server]:
    dest = tmp_path_factory.mktemp("fuzz") / "proj"
    shutil.copytree(built_project, dest)
    s = start_server(dest, env={"LOOPML_ADMIN_TOKEN": "fuzz-token"})
    yield s
    s.stop()


def _operations(url: str) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_input_gives_a_server_error(api_server: Server, mode: GenerationMode) -> None:
    ops = _operations(api_server.url)
    labels = {op.label for op in ops}
    assert {"POST /predict", "POST /feedback", "POST /admin/reload"} <= labels
    statuses: list[int] = []
    for op in ops:

        @given(case=op.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: Any) -> None:
            response = case.call_and_validate(base_url=api_server.url, checks=[not_a_server_error])
            statuses.append(response.status_code)

        try:
            check()
        except Unsatisfiable:  # an operation without inputs has no negative examples
            assert mode is GenerationMode.NEGATIVE
            assert op.label not in ("POST /predict", "POST /feedback")
    assert api_server.proc.poll() is None
    assert statuses and max(statuses) < 500
    if mode is GenerationMode.POSITIVE:
        assert 200 in statuses  # valid requests were generated and served
    else:
        assert any(400 <= s < 500 for s in statuses)
