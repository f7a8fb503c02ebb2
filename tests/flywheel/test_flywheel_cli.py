"""The flywheel from the command line: export logged rows for labeling, label them (as
Label Studio would export them), import, and a new dataset version from production; each
table legible at 80 columns."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from flywheel.flywheel_helpers import build_project, rows, serve_rows
from loopml.cli import app
from loopml.data import load_dataset
from loopml.flywheel._schema import FROM_NAME, ITEM_FIELD, TO_NAME
from loopml.tableview import legibility_problems

runner = CliRunner()


def _label_studio_export(
    tasks: list[dict[str, object]], truth: dict[str, int]
) -> list[dict[str, object]]:
    """What Label Studio's JSON export holds once annotators labeled the imported tasks:
    one annotator per task, three on the overlap tasks (the third wrong on every 4th)."""
    out = []
    ann_id = 0
    for k, task in enumerate(tasks):
        data = task["data"]
        assert isinstance(data, dict)
        y = truth[data[ITEM_FIELD]]
        meta = task.get("meta") or {}
        assert isinstance(meta, dict)
        who = [1, 2, 3] if meta.get("overlap") else [1 + k % 2]
        annotations = []
        for a in who:
            ann_id += 1
            label = 1 - y if (a == 3 and k % 4 == 0) else y
            annotations.append(
                {
                    "id": ann_id,
                    "completed_by": a,
                    "created_at": "2026-11-30T10:00:00.000000Z",
                    "was_cancelled": False,
                    "result": [
                        {"type": "choices", "from_name": FROM_NAME, "to_name": TO_NAME,
                         "value": {"choices": [str(label)]}}
                    ],
                }
            )  # fmt: skip
        out.append({"id": k + 1, "data": data, "annotations": annotations})
    return out


def test_export_label_import_and_a_new_version(tmp_path: Path) -> None:
    project = build_project(tmp_path / "p")
    prod = rows(600, 11, start=20_000)
    ids = serve_rows(project, prod, feedback=False)
    truth = dict(zip(ids, prod["label"].tolist(), strict=True))
    base = ["-C", str(project.dir)]
    tasks_file = tmp_path / "tasks.json"
    r = runner.invoke(
        app, [*base, "labels", "export", "--out", str(tasks_file), "--n", "150",
              "--weak", "region=north", "--seed", "3"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "stored as lsx-" in r.output and not legibility_problems(r.output, 80)
    tasks = json.loads(tasks_file.read_text(encoding="utf-8"))
    assert len(tasks) == 150
    labeled = tmp_path / "labeled.json"
    labeled.write_text(json.dumps(_label_studio_export(tasks, truth)), encoding="utf-8")
    r = runner.invoke(app, [*base, "labels", "import", str(labeled)])
    assert r.exit_code == 0, r.output
    assert "data add --from-production" in r.output and not legibility_problems(r.output, 80)
    r = runner.invoke(app, [*base, "data", "add", "--from-production", "--json"])
    assert r.exit_code == 0, r.output
    made = json.loads(r.output)
    assert made["n_added"] == 150 and made["base"] == "train@1"
    new = load_dataset(project, made["dataset"]).to_pandas()
    added = new.iloc[-150:]
    # every added row carries the true label (the overlap's third annotator is outvoted)
    lineage = project.store.get(made["dataset"], kind="dataset").payload["lineage"]
    got = {
        lineage["request_ids"][str(i)]: y for i, y in zip(added["id"], added["label"], strict=True)
    }
    assert got == {rid: truth[rid] for rid in got}
    assert len(got) == 150
    assert made["agreement"] is not None  # overlap items exist, so agreement is defined
    # the same labels again give the same version (content-addressed), not a copy
    r = runner.invoke(app, [*base, "data", "add", "--from-production", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["dataset"] == made["dataset"]
    project.close()
