"""Importing labels of an export's production rows: Label Studio JSON, JSON_MIN and CSV give
the same label set; agreement and HLP against sklearn; every bad input is an error that
stores nothing, or a finding listed with the result.

The Label Studio files in ``data/`` were made by label-studio-sdk's converter
(``data/make_fixtures.py``); their request ids ``req-000`` .. are replaced by ids of a
seeded log here."""

from __future__ import annotations

import copy
import csv
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from flywheel.flywheel_helpers import build_project, rows, serve_rows
from loopml.data import get_labelset, load_dataset
from loopml.errors import InputError, LoopmlError, NotFoundError, SchemaError
from loopml.flywheel._import import import_labels
from loopml.flywheel._schema import EXPORT_KIND, IMPORT_KIND, ITEM_FIELD
from loopml.project import Project
from loopml.serving import read_log
from loopml.store import Record
from loopml.tableview import assert_legible, render_text

DATA = Path(__file__).parent / "data"
PLACEHOLDERS = [f"req-{i:03d}" for i in range(12)]
BEN, CY = "ben@example.com", "cy@example.com"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, pd.DataFrame]]:
    project = build_project(tmp_path_factory.mktemp("fwi") / "p")
    prod = rows(240, 7, start=20_000)
    prod["x"] = prod["x"].clip(-2.5, 2.5)  # inside the range the champion saw in training
    ids = serve_rows(project, prod, feedback=False)
    log = read_log(project).to_pandas().set_index("request_id")
    prod = prod.assign(request_id=ids, prediction=log.loc[ids, "prediction"].to_numpy())
    yield project, prod
    project.close()


def put_export(
    project: Project, prod: pd.DataFrame, ids: list[str], overlap: set[str] | None = None
) -> Record:
    """An export record as ``export_labels`` writes it, over rows of the seeded log."""
    overlap = overlap or set()
    region = dict(zip(prod["request_id"], prod["region"], strict=True))
    prediction = dict(zip(prod["request_id"], prod["prediction"].astype(int), strict=True))
    payload = {
        "file": "tasks.json",
        "format": "labelstudio",
        "n": len(ids),
        "model": "logit@1",
        "classes": [0, 1],
        "label_field": "label",
        "rows": [
            {
                ITEM_FIELD: r,
                "strategy": "overlap" if r in overlap else "random",
                "inclusion": 0.25,
                "weight": 4.0,
                "overlap": r in overlap,
                "slice": "region = north" if region[r] == "north" else None,
                "score": 0.5,
                "prediction": int(prediction[r]),
            }
            for r in ids
        ],
    }
    return project.store.put(EXPORT_KIND, "export", payload)


def fixture_file(
    name: str, ids: list[str], folder: Path, edit: Callable[[str], str] | None = None
) -> Path:
    text = (DATA / name).read_text(encoding="utf-8")
    for placeholder, rid in zip(PLACEHOLDERS, ids, strict=True):
        text = text.replace(placeholder, rid)
    if edit is not None:
        text = edit(text)
    out = folder / name
    out.write_text(text, encoding="utf-8")
    return out


def label_map(project: Project, ref: str) -> dict[str, dict[str, Any]]:
    t = get_labelset(project, ref).annotations(project).to_pandas()
    out: dict[str, dict[str, Any]] = {}
    for item, who, label in zip(t["item_id"], t["annotator"], t["label"], strict=True):
        out.setdefault(str(item), {})[str(who)] = int(label)
    return out


def n_records(project: Project) -> int:
    return len(project.store.list())


# --------------------------------------------------------------------------------------------
# the label-studio-sdk fixtures


def test_the_sdk_formats_give_the_same_label_set(
    served: tuple[Project, pd.DataFrame], tmp_path: Path
) -> None:
    project, prod = served
    ids = prod["request_id"].tolist()[:12]
    exp = put_export(project, prod, ids, overlap=set(ids[8:]))
    # the fixture's annotations (make_fixtures.ANNOTATIONS): req-002 labeled 0 then 1 by
    # annotator 1 (the later one counts); cy's annotation of req-009 cancelled; req-011 none
    expected = {
        0: {"1": 1},
        1: {BEN: 0},
        2: {"1": 1},
        3: {BEN: 1},
        4: {"1": 0},
        5: {BEN: 0},
        6: {"1": 1},
        7: {BEN: 1},
        8: {"1": 1, BEN: 1, CY: 1},
        9: {"1": 0, BEN: 1},
        10: {"1": 0, BEN: 0},
    }
    results = {}
    for name in ("ls_export.json", "ls_export_min.json", "ls_export.csv"):
        results[name] = import_labels(
            project, fixture_file(name, ids, tmp_path), export=exp.id, name="sdk"
        )
    fmts = {k: r.format for k, r in results.items()}
    assert fmts == {
        "ls_export.json": "labelstudio",
        "ls_export_min.json": "json_min",
        "ls_export.csv": "csv",
    }
    refs = {r.labelset for r in results.values()}
    assert len(refs) == 1  # one stored label set: the same content from the three files
    assert label_map(project, refs.pop()) == {ids[k]: v for k, v in expected.items()}
    for name, res in results.items():
        checks = {f.check: f for f in res.findings}
        assert checks["changed"].count == 1, name
        assert checks["changed"].examples[0].startswith(f"{ids[2]} by 1: 0 then 1 (kept 1)")
        assert checks["overlap_short"].examples == (ids[11],)
        # the converter drops cancelled annotations itself: only the full export has one
        assert ("cancelled" in checks) == (name == "ls_export.json"), name
        assert res.n_items == 11 and res.n_annotations == 15 and res.n_overlap == 3
        assert [d.item for d in res.disagreements] == [ids[9]]
        assert res.disagreements[0].majority is None
        assert res.disagreements[0].labels == {"1": 0, BEN: 1}
    cancelled = {f.check: f for f in results["ls_export.json"].findings}["cancelled"]
    assert cancelled.count == 1 and cancelled.examples[0].startswith(ids[9])
    # the dataset version: the export's rows, read from the log by request id
    res = results["ls_export.json"]
    table = load_dataset(project, res.dataset).to_pandas()
    assert table["id"].tolist() == ids
    by_id = prod.set_index("request_id").loc[ids]
    np.testing.assert_allclose(table["x"].to_numpy(), by_id["x"].to_numpy())
    assert table["region"].tolist() == by_id["region"].tolist()
    assert table["prediction"].tolist() == by_id["prediction"].tolist()
    assert {"ts", "model", "version", "score"} <= set(table.columns)
    assert "label" not in table.columns
    # the import record names what the dataset-from-production step reads
    rec = project.store.get(res.id, kind=IMPORT_KIND)
    assert rec.payload["dataset"] == res.dataset and rec.payload["export"] == exp.id
    assert rec.payload["labelset"] == res.labelset
    assert rec.payload["counts"]["cancelled"] == 1
    assert rec.payload["counts"]["unlabeled_tasks"] == 1


# --------------------------------------------------------------------------------------------
# an export of 120 rows, its annotations in the three formats


def _annotations(prod: pd.DataFrame, ids: list[str]) -> tuple[list[tuple[str, Any, int]], set[str]]:
    """(request id, completed_by, label): the first 50 rows are overlap rows labeled by ann
    and bo (bo wrong on a fifth of them), the others by one of ann, bo and user 7."""
    rng = np.random.default_rng(3)
    truth = prod.set_index("request_id").loc[ids, "label"].to_numpy()
    ann = {"id": 11, "email": "ann@example.com"}
    bo = {"id": 12, "email": "bo@example.com"}
    out: list[tuple[str, Any, int]] = []
    for i, rid in enumerate(ids):
        y = int(truth[i])
        if i < 50:
            out.append((rid, ann, y))
            out.append((rid, bo, 1 - y if rng.random() < 0.2 else y))
        else:
            out.append((rid, (ann, bo, 7)[i % 3], y))
    return out, set(ids[:50])


def _ls_tasks(prod: pd.DataFrame, ids: list[str], anns: list[tuple[str, Any, int]]) -> list[Any]:
    template = json.loads((DATA / "ls_export.json").read_text(encoding="utf-8"))
    task_t = template[0]
    ann_t = task_t["annotations"][0]
    xs = dict(zip(prod["request_id"], prod["x"].astype(float), strict=True))
    regions = dict(zip(prod["request_id"], prod["region"].astype(str), strict=True))
    tasks: dict[str, Any] = {}
    for n, (rid, who, label) in enumerate(anns):
        if rid not in tasks:
            task = copy.deepcopy(task_t)
            task["id"] = 1000 + ids.index(rid)
            task["data"] = {
                ITEM_FIELD: rid,
                "x": float(xs[rid]),
                "region": regions[rid],
            }
            task["annotations"] = []
            tasks[rid] = task
        a = copy.deepcopy(ann_t)
        a["id"] = 5000 + n
        a["completed_by"] = who
        a["created_at"] = a["updated_at"] = f"2026-05-05T{n // 60:02d}:{n % 60:02d}:00.000000Z"
        a["result"][0]["value"] = {"choices": [str(label)]}
        a["task"] = tasks[rid]["id"]
        tasks[rid]["annotations"].append(a)
    return list(tasks.values())


def _min_rows(tasks: list[Any]) -> list[dict[str, Any]]:
    """What the converter's JSON_MIN makes of tasks (one row per annotation, newest first)."""
    out = []
    for task in tasks:
        for a in sorted(task["annotations"], key=lambda a: a["created_at"], reverse=True):
            row = dict(task["data"])
            row["id"] = task["id"]
            row["label"] = a["result"][0]["value"]["choices"][0]
            who = a["completed_by"]
            row["annotator"] = who["email"] if isinstance(who, dict) else who
            for k in ("created_at", "updated_at", "lead_time"):
                row[k] = a[k]
            row["annotation_id"] = a["id"]
            out.append(row)
    return out


def test_a_built_export_round_trips_and_agreement_matches_sklearn(
    served: tuple[Project, pd.DataFrame], tmp_path: Path
) -> None:
    from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score

    project, prod = served
    ids = prod["request_id"].tolist()[20:140]
    anns, overlap = _annotations(prod, ids)
    exp = put_export(project, prod, ids, overlap=overlap)
    tasks = _ls_tasks(prod, ids, anns)
    (tmp_path / "tasks.json").write_text(json.dumps(tasks, indent=2), encoding="utf-8")
    # JSON_MIN and CSV as the converter writes them: the fixtures' keys and header
    min_rows = _min_rows(tasks)
    sdk_min = json.loads((DATA / "ls_export_min.json").read_text(encoding="utf-8"))
    assert set(min_rows[0]) == set(sdk_min[0])
    (tmp_path / "tasks_min.json").write_text(json.dumps(min_rows, indent=2), encoding="utf-8")
    header = next(csv.reader(io.StringIO((DATA / "ls_export.csv").read_text(encoding="utf-8"))))
    assert sorted(min_rows[0]) == header
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, quoting=csv.QUOTE_NONNUMERIC)
    writer.writeheader()
    for row in min_rows:
        writer.writerow({**row, "annotator": str(row["annotator"])})
    (tmp_path / "tasks.csv").write_text(buf.getvalue(), encoding="utf-8")

    results = [
        import_labels(project, tmp_path / f, export=exp.id, name="built")
        for f in ("tasks.json", "tasks_min.json", "tasks.csv")
    ]
    assert [r.format for r in results] == ["labelstudio", "json_min", "csv"]
    assert len({r.labelset for r in results}) == 1
    expected: dict[str, dict[str, int]] = {}
    for rid, who, label in anns:
        expected.setdefault(rid, {})[who["email"] if isinstance(who, dict) else str(who)] = label
    assert label_map(project, results[0].labelset) == expected
    res = results[0]
    assert not res.findings
    assert res.n_overlap == res.n_overlap_exported == 50
    # agreement on the overlap items: the one defined pair is ann x bo
    a = np.array([lab for rid, who, lab in anns if rid in overlap and who == anns[0][1]])
    b = np.array([lab for rid, who, lab in anns if rid in overlap and who != anns[0][1]])
    kappa = cohen_kappa_score(a, b)
    assert res.agreement is not None
    pairs = {(p["annotator_a"], p["annotator_b"]): p for p in res.agreement["pairs"]}
    pair = pairs[("ann@example.com", "bo@example.com")]
    assert pair["n_items"] == 50
    assert pair["kappa"] == pytest.approx(kappa, abs=1e-12)
    assert res.agreement["mean_pairwise_kappa"] == pytest.approx(kappa, abs=1e-12)
    assert res.report is not None
    assert res.report.report.mean_pairwise_kappa == pytest.approx(kappa, abs=1e-12)
    # disagreements: the overlap items where bo differs from ann
    over = [rid for rid in ids if rid in overlap]
    assert [d.item for d in res.disagreements] == [
        r for r, x, y in zip(over, a, b, strict=True) if x != y
    ]
    # HLP: with two annotators each one's reference is the other's label (pooled)
    truth, given = np.concatenate([b, a]), np.concatenate([a, b])
    assert res.hlp is not None and res.hlp["metric"] == "f1" and res.hlp["n"] == 100
    assert res.hlp["estimate"] == pytest.approx(f1_score(truth, given, pos_label=1))
    assert res.hlp["scores"]["accuracy"]["estimate"] == pytest.approx(accuracy_score(truth, given))
    assert res.hlp["low"] < res.hlp["estimate"] < res.hlp["high"]
    # the project's HLP baseline is not replaced by production data
    assert project.store.latest("baseline", name="hlp") is None
    # the result reads at 80 columns and as JSON
    for view in (res.table(), res.disagreements_table()):
        text = render_text(view, 80)
        assert_legible(text, 80, view)
    assert "disagreements" in render_text(res.table(), 80)
    json.dumps(res.to_dict(), allow_nan=False)
    # importing the same file again stores nothing new
    before = n_records(project)
    again = import_labels(project, tmp_path / "tasks.json", export=exp.id, name="built")
    assert again.existing and again.id == res.id and n_records(project) == before


def test_a_plain_csv_keeps_the_later_row_without_times(
    served: tuple[Project, pd.DataFrame], tmp_path: Path
) -> None:
    project, prod = served
    ids = prod["request_id"].tolist()[140:150]
    exp = put_export(project, prod, ids)
    lines = [f"{ITEM_FIELD},annotator,label"]
    lines += [f"{r},zoe,{i % 2}" for i, r in enumerate(ids)]
    lines += [f"{ids[0]},zoe,1", f"{ids[1]},zoe,1"]  # ids[0] changed 0 -> 1; ids[1] repeated
    (tmp_path / "plain.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    res = import_labels(project, tmp_path / "plain.csv", export=exp.id, name="plain")
    labels = label_map(project, res.labelset)
    assert labels == {r: {"zoe": 1 if i in (0, 1) else i % 2} for i, r in enumerate(ids)}
    checks = {f.check: f for f in res.findings}
    assert checks["changed"].count == 1 and "later in the file" in checks["changed"].message
    assert checks["repeated"].count == 1
    assert res.agreement is None and res.hlp is None
    assert "one annotator" in (res.agreement_note or "")
    assert_legible(render_text(res.table(), 80), 80)


# --------------------------------------------------------------------------------------------
# bad inputs: an error naming the file, the item and the field; nothing stored


def _multi(text: str) -> str:
    tasks = json.loads(text)
    tasks[3]["annotations"][0]["result"][0]["value"]["choices"] = ["0", "1"]
    return json.dumps(tasks)


def _unknown_class(text: str) -> str:
    tasks = json.loads(text)
    tasks[4]["annotations"][0]["result"][0]["value"]["choices"] = ["2"]
    return json.dumps(tasks)


def _all_cancelled(text: str) -> str:
    tasks = json.loads(text)
    for t in tasks:
        for a in t["annotations"]:
            a["was_cancelled"] = True
    return json.dumps(tasks)


def _no_request_id(text: str) -> str:
    tasks = json.loads(text)
    del tasks[5]["data"][ITEM_FIELD]
    return json.dumps(tasks)


def _bad_time(text: str) -> str:
    tasks = json.loads(text)
    tasks[0]["annotations"][0]["created_at"] = "yesterday"
    return json.dumps(tasks)


BAD: dict[str, tuple[str, Callable[[str], str] | None, dict[str, Any], type, list[str]]] = {
    "multiple choices": (
        "ls_export.json",
        _multi,
        {},
        InputError,
        ["several choices", "annotation 504", "chose ['0', '1']", 'choice="single"'],
    ),
    "unknown class": (
        "ls_export.json",
        _unknown_class,
        {},
        InputError,
        ["'2' (1x)", "known classes are [0, 1]", "annotation 505", "field 'label'"],
    ),
    "every annotation cancelled": (
        "ls_export.json",
        _all_cancelled,
        {},
        InputError,
        ["no annotation to import", "17 cancelled"],
    ),
    "no request id": (
        "ls_export.json",
        _no_request_id,
        {},
        InputError,
        ["task 105 (6th)", "no 'request_id'"],
    ),
    "bad time": ("ls_export.json", _bad_time, {}, InputError, ["'yesterday' is not a time"]),
    "empty file": ("ls_export.json", lambda t: "", {}, InputError, ["is empty"]),
    "blank file": ("ls_export.csv", lambda t: "  \n\n", {}, InputError, ["is empty"]),
    "empty list": ("ls_export.json", lambda t: "[]", {}, InputError, ["holds no tasks"]),
    "broken JSON": (
        "ls_export.json",
        lambda t: '[\n{"a": 1,,}\n]',
        {},
        InputError,
        ["not valid JSON", "line 2, column 9", "ls_export.json:2:9"],
    ),
    "header only": (
        "ls_export.csv",
        lambda t: t.splitlines()[0] + "\n",
        {},
        InputError,
        ["no rows"],
    ),
    "no annotator column": (
        "ls_export.csv",
        lambda t: t.replace('"annotator"', '"who"', 1),
        {},
        SchemaError,
        ["annotator ('annotator')"],
    ),
    "format mismatch": (
        "ls_export.json",
        None,
        {"format": "json_min"},
        InputError,
        ["not JSON_MIN rows", "--format labelstudio"],
    ),
    "unknown format": (
        "ls_export.json",
        None,
        {"format": "xml"},
        InputError,
        ["not a labels format"],
    ),
    "unknown export": ("ls_export.json", None, {"export": "lsx-999"}, NotFoundError, ["lsx-999"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_file_is_an_error_that_stores_nothing(
    case: str, served: tuple[Project, pd.DataFrame], tmp_path: Path
) -> None:
    project, prod = served
    name, edit, kwargs, error, parts = BAD[case]
    ids = prod["request_id"].tolist()[150:162]
    exp = put_export(project, prod, ids)
    path = fixture_file(name, ids, tmp_path, edit)
    before = n_records(project)
    with pytest.raises(error) as info:
        import_labels(project, path, **{"export": exp.id, **kwargs})
    text = str(info.value)
    for part in parts:
        assert part in text, (case, text)
    if case not in ("unknown export", "unknown format"):
        assert name in text  # the file is named
    assert isinstance(info.value, LoopmlError) and info.value.hint
    assert n_records(project) == before


def test_ids_never_exported_are_named_up_to_ten(
    served: tuple[Project, pd.DataFrame], tmp_path: Path
) -> None:
    project, prod = served
    ids = prod["request_id"].tolist()
    exp = put_export(project, prod, ids[162:172])
    stray = ids[180:193]  # 13 ids of the log that this export never sent
    lines = [f"{ITEM_FIELD},annotator,label"] + [f"{r},zoe,1" for r in ids[162:172] + stray]
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = n_records(project)
    with pytest.raises(InputError) as info:
        import_labels(project, tmp_path / "labels.csv", export=exp.id)
    text = str(info.value)
    assert f"13 annotation(s) in labels.csv label 13 request id(s) that export {exp.id}" in text
    assert all(r in text for r in stray[:10]) and not any(r in text for r in stray[10:])
    assert "line 12" in text and "--export" in text
    assert n_records(project) == before


def test_exported_ids_missing_from_the_log_store_nothing(
    served: tuple[Project, pd.DataFrame], tmp_path: Path
) -> None:
    project, prod = served
    ids = prod["request_id"].tolist()[200:210]
    exp = put_export(project, prod, ids)
    payload = dict(exp.payload)
    payload["rows"] = [*payload["rows"], {**payload["rows"][0], ITEM_FIELD: "gone-1"}]
    exp = project.store.put(EXPORT_KIND, "export", payload)
    lines = [f"{ITEM_FIELD},annotator,label", f"{ids[0]},zoe,1", "gone-1,zoe,0"]
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = n_records(project)
    with pytest.raises(NotFoundError, match="not in the prediction log: gone-1"):
        import_labels(project, tmp_path / "labels.csv", export=exp.id)
    assert n_records(project) == before
