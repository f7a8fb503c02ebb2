"""After a retrain on a new dataset version, the gate evaluates the champion on the
candidate's test rows. That evaluation is the gate's working: the status board and the
report's focus read the candidate's own evaluation, not the old champion's re-evaluation."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from flywheel.flywheel_helpers import build_project, rows, serve_rows
from loopml.data import add_dataset, add_labels
from loopml.flywheel._dataset import dataset_from_production
from loopml.overview import project_view
from loopml.serving import read_log
from loopml.status import project_status


def test_the_gates_re_evaluation_is_not_the_newest_evaluation(tmp_path: Path) -> None:
    from loopml.registry import promote
    from loopml.training import train

    project = build_project(tmp_path / "p")
    try:
        prod = rows(600, 11, start=10_000)
        ids = serve_rows(project, prod, feedback=False)
        log = read_log(project).drop_columns(["id"])
        log = log.rename_columns(["id" if c == "request_id" else c for c in log.column_names])
        pv = add_dataset(project, log, name="production", unlabeled=True)
        ann = pd.DataFrame({"item_id": ids, "annotator": "a1", "label": prod["label"]})
        ls = add_labels(project, ann, dataset=pv.ref, name="truth")
        res = dataset_from_production(project, ls.ref)
        trained = train(
            project, estimator="sklearn.tree.DecisionTreeClassifier", name="tree",
            dataset=res.dataset, sanity=False, n_single=20, params={"max_depth": 4},
        )  # fmt: skip
        assert trained.model is not None
        own = trained.model.evaluation
        moved = promote(project, "tree@1")
        made = moved.decision.to_dict()["evaluations"]["champion"]
        # the gate evaluated the champion on the new version's test rows: a new record
        assert made is not None and made != own
        assert project.store.list("evaluation")[-1].id == made

        view = project_view(project)
        assert made in view.gate_evaluations
        assert own not in view.gate_evaluations
        assert view.latest_evaluation is not None and view.latest_evaluation.id == own
        assert view.latest_model_evaluation is not None
        assert view.latest_model_evaluation.id == own
        assert view.focus is not None and view.focus.id == own
        rows_by_stage = {r.stage: r for r in project_status(project).rows}
        assert made not in " ".join(rows_by_stage["train"].exists), rows_by_stage["train"]
        assert own in " ".join(rows_by_stage["train"].exists), rows_by_stage["train"]
    finally:
        project.close()
