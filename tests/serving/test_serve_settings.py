"""``loopml serve`` takes its settings from [serve] in loopml.toml; an option overrides it."""

from __future__ import annotations

from pathlib import Path

import httpx

from serving.serving_helpers import start_server
from serving.test_server import GOOD


def _with_serve_table(project_dir: Path, table: str) -> None:
    spec = project_dir / "loopml.toml"
    spec.write_text(spec.read_text(encoding="utf-8") + "\n[serve]\n" + table, encoding="utf-8")


def test_the_serve_table_sets_the_limits_and_an_option_overrides_it(project_dir: Path) -> None:
    _with_serve_table(project_dir, "max_rows = 2\nlog = false\n")
    s = start_server(project_dir)
    try:
        r = httpx.post(f"{s.url}/predict", json={"records": [GOOD] * 3}, timeout=10)
        assert r.status_code == 400 and "at most 2" in r.json()["message"], r.text
        ok = httpx.post(f"{s.url}/predict", json={"records": [GOOD] * 2}, timeout=10)
        assert ok.status_code == 200
        # log = false: no segment is written
        assert not list(project_dir.glob(".loopml/log/predictions/**/*.parquet"))
    finally:
        s.stop()
    s = start_server(project_dir, "--max-rows", "5")
    try:
        r = httpx.post(f"{s.url}/predict", json={"records": [GOOD] * 3}, timeout=10)
        assert r.status_code == 200, r.text
    finally:
        s.stop()


def test_a_serve_table_mistake_stops_the_server_before_it_binds(project_dir: Path) -> None:
    import subprocess
    import sys

    _with_serve_table(project_dir, "flush_rows = 5000\nqueue_rows = 10\n")
    out = subprocess.run(
        [str(Path(sys.executable).parent / "loopml"), "-C", str(project_dir), "serve"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "serve.queue_rows" in out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr


def test_an_option_is_validated_like_the_table(project_dir: Path) -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [
            str(Path(sys.executable).parent / "loopml"),
            "-C",
            str(project_dir),
            "serve",
            "--flush-rows",
            "100",
            "--queue-rows",
            "10",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    text = out.stdout + out.stderr
    assert out.returncode == 2 and "serve.queue_rows" in text and "--queue-rows" in text
    assert "Traceback" not in text


def test_options_override_the_table_and_none_keeps_it() -> None:
    from loopml.spec import ServeSpec

    table = ServeSpec(port=9000, max_rows=5)
    cfg = table.with_options(port=None, max_rows=7, shadow=False)
    assert (cfg.port, cfg.max_rows, cfg.shadow) == (9000, 7, False)
    assert table.max_rows == 5  # the table itself is unchanged
