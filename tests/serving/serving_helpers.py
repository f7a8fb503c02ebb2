"""Helpers of the serving tests: a small served project and a real server process.

Features ``a``, ``b`` (float), ``n`` (integer 0..9) and ``segment`` (text: a, b, c); a
binary label. ``logit@1`` (logistic regression) is the champion, ``tree@1`` (a decision
tree) is free for the canary and shadow aliases.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from loopml.project import open_project
from loopml.server._process import free_port, wait_until_up

SPEC = """\
[project]
name = "served"
task = "binary"
label = "label"
id = "id"
positive_class = 1

[metric]
optimizing = "accuracy"
satisficing = ["latency_p99_ms <= 5000"]
"""

ROOT = Path(__file__).resolve().parents[2]


def frame(n: int = 600, seed: int = 0, start: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = rng.normal(size=n)
    seg = rng.choice(["a", "b", "c"], n)
    k = rng.integers(0, 10, n)
    y = (a + 0.5 * (seg == "a") + 0.1 * k + rng.normal(0, 0.5, n) > 0.5).astype(int)
    return pd.DataFrame(
        {"id": np.arange(start, start + n), "a": a, "b": b, "n": k, "segment": seg, "label": y}
    )


def build_project(root: Path) -> None:
    from loopml.baselines import run_baselines
    from loopml.data import add_dataset, split_dataset
    from loopml.project import init_project
    from loopml.registry import promote
    from loopml.training import train

    root.mkdir(parents=True)
    init_project(root, task="binary").close()
    (root / "loopml.toml").write_text(SPEC, encoding="utf-8")
    with open_project(root) as p:
        v = add_dataset(p, frame(), name="train")
        split_dataset(p, v.ref, by="stratified", test=0.3, seed=0)
        run_baselines(p, only=["dummy"])
        for name, est in (
            ("logit", "sklearn.linear_model.LogisticRegression"),
            ("tree", "sklearn.tree.DecisionTreeClassifier"),
        ):
            train(p, estimator=est, name=name, sanity=False, n_single=20)
        moved = promote(p, "logit@1")
        assert moved.move is not None, moved.decision.summary()


@dataclass
class Server:
    """A real ``loopml serve`` process on 127.0.0.1."""

    proc: subprocess.Popen[bytes]
    url: str
    project_dir: Path
    log_path: Path

    def client(self, **kw: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kw)  # type: ignore[arg-type]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(
    project_dir: Path, *args: str, env: dict[str, str] | None = None, ready: bool = True
) -> Server:
    port = free_port()
    log_path = project_dir.parent / f"server-{port}.log"
    full_env = {**os.environ, **(env or {})}
    full_env.pop("LOOPML_STORE_URL", None)
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "loopml"),
                "-C",
                str(project_dir),
                "serve",
                "--port",
                str(port),
                *args,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=project_dir,
        )
    server = Server(proc, f"http://127.0.0.1:{port}", project_dir, log_path)
    wait_until_up(proc, f"{server.url}/{'ready' if ready else 'health'}", log=log_path)
    return server
