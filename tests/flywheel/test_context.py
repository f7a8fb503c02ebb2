"""Key slice columns no model reads are logged as context when a request carries them,
so monitoring follows the slices of the spec (not only the model's inputs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from flywheel.flywheel_helpers import SPEC, rows, serve_rows
from loopml.project import init_project, open_project
from loopml.serving import read_log


def test_a_key_slice_the_model_does_not_read_is_logged_as_sent(tmp_path: Path) -> None:
    from loopml.baselines import run_baselines
    from loopml.data import add_dataset, split_dataset
    from loopml.monitor import monitor
    from loopml.registry import promote
    from loopml.training import train

    root = tmp_path / "p"
    init_project(root, task="binary").close()
    spec = SPEC.replace('columns = ["region"]', 'columns = ["region", "channel"]')
    (root / "loopml.toml").write_text(spec + '\n[model]\nexclude = ["channel"]\n', encoding="utf-8")
    rng = np.random.default_rng(0)
    with open_project(root) as project:
        train_rows = rows(800, 0).assign(channel=rng.choice(["web", "app"], 800))
        v = add_dataset(project, train_rows, name="train")
        split_dataset(project, v.ref, by="stratified", test=0.3, seed=0)
        run_baselines(project, only=["dummy"])
        train(project, estimator="sklearn.linear_model.LogisticRegression", name="logit",
              sanity=False, n_single=20)  # fmt: skip
        assert promote(project, "logit@1").move is not None
        prod = rows(300, 1, start=5000).assign(channel=rng.choice(["web", "app"], 300))
        serve_rows(project, prod)
        log = read_log(project)
        assert "channel" in log.column_names
        assert log.column("channel").to_pylist() == prod["channel"].tolist()
        res = monitor(project, window="300rows", store=False)
        slices = {p.slice for p in res.performance if p.kind == "realized"}
        assert {"channel=web", "channel=app"} <= slices
