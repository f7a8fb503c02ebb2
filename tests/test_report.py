"""The HTML report: self-contained, every figure's data checked against scikit-learn and
statsmodels, placeholders for the stages not run yet, bad input refused, the CLI."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import typer
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve
from statsmodels.stats.proportion import proportion_confint
from typer.testing import CliRunner

from loopml.errors import InputError, NotFoundError, ProjectNotFoundError
from loopml.evaluation import evaluate
from loopml.project import Project, init_project, open_project
from loopml.report import build_report, render_report
from loopml.report._build import SECTIONS
from loopml.status import STAGES

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
HLP_TARGET = 0.95

SPEC = """
[project]
name = "report-test"
problem = "Flag the rows that need a second look."
archetype = "software-2.0"
task = "binary"
label = "label"
id = "id"

[metric]
optimizing = "accuracy"
satisficing = ["recall >= 0.6", "precision >= 0.99"]
min_support = 20

[slices]
columns = ["region"]

[targets]
hlp = {hlp}
hlp_source = "two radiologists, 2023"

[[audit]]
name = "south"
check = "recall on slice 'region=south' >= 0.99"
reason = "the south clinic serves most rare cases"

[[audit]]
name = "gap"
check = "max gap of recall across region <= 0.9"
reason = "no region left behind"
"""


def make_frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Binary rows with a score; the score is weaker in region south."""
    rng = np.random.default_rng(seed)
    region = rng.choice(["north", "south", "east"], n, p=[0.4, 0.3, 0.3])
    y = (rng.random(n) < 0.35).astype(int)
    strength = np.where(region == "south", 0.6, 2.2)
    logit = strength * (2 * y - 1) + rng.normal(0, 1.0, n)
    score = 1 / (1 + np.exp(-logit))
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "region": region,
            "x1": rng.normal(0, 1, n).round(3),
            "label": y,
            "score": score,
            "prediction": (score >= 0.5).astype(int),
        }
    )


@dataclass
class Built:
    dir: Path
    frame: pd.DataFrame
    model_eval: str
    baseline_eval: str
    dummy_pred: np.ndarray[Any, Any]


def build_full_project(
    root: Path, *, with_extras: bool = True, confidence: float | None = None
) -> Built:
    """A project with every stage run: scope, data + split, HLP target, a baseline, a model
    evaluation, an audit and a learning curve (the record shape loopml.training stores)."""
    from loopml.audit import run_audit
    from loopml.data import add_dataset, split_dataset
    from loopml.scope import run_scope

    project = init_project(root, task="binary")
    spec = SPEC.replace("{hlp}", str(HLP_TARGET))
    if confidence is not None:
        spec = spec.replace("min_support = 20", f"min_support = 20\nconfidence = {confidence}")
    (root / "loopml.toml").write_text(spec)
    project.close()
    frame = make_frame()
    with open_project(root) as project:
        run_scope(project, answers=EXAMPLES / "answers.toml")
        csv = root / "rows.csv"
        frame[["id", "region", "x1", "label"]].to_csv(csv, index=False)
        version = add_dataset(project, csv, name="rows")
        split_dataset(project, version.ref, by="stratified", test=0.3, seed=0)
        data = frame[["id", "region", "label"]]
        dummy = np.zeros(len(frame), dtype=int)
        base = evaluate(
            data,
            pd.DataFrame({"id": frame["id"], "prediction": dummy}),
            project=project,
            name="dummy",
        )
        project.store.put("baseline", "dummy", {"kind": "dummy", "evaluation": base.id})
        model = evaluate(
            data,
            frame[["id", "score", "prediction"]],
            project=project,
            name="model",
            model="model@1",
        )
        if with_extras:
            run_audit(model.id or "", project=project)
            project.store.put(
                "learning_curve",
                "model",
                {
                    "metric": "accuracy",
                    "points": [
                        {"n_train": 50, "value": 0.70, "low": 0.62, "high": 0.77},
                        {"n_train": 100, "value": 0.76, "low": 0.69, "high": 0.82},
                        {"n_train": 200, "value": 0.79, "low": 0.73, "high": 0.84},
                        {"n_train": 400, "value": 0.80, "low": 0.75, "high": 0.85},
                    ],
                    "reading": "the curve flattens: more data alone is unlikely to help",
                },
            )
    return Built(root, frame, model.id or "", base.id or "", dummy)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_full_project(tmp_path_factory.mktemp("report") / "proj")


@pytest.fixture(scope="module")
def report(built: Built) -> Any:
    from loopml.discovery import discover

    f = built.frame
    found = discover(f, label="label", prediction="prediction", columns=["region"], k=3)
    return render_report(built.dir, discovery=found)


def test_every_section_and_figure_is_there(report: Any) -> None:
    for sid, title in SECTIONS:
        assert f'<section id="{sid}">' in report.html
        assert title.split(":")[0] in report.html
    names = {f.name for f in report.figures}
    assert names == {
        "scope",
        "confusion",
        "pr",
        "roc",
        "calibration",
        "slices",
        "priorities",
        "learning_curve",
    }
    # every section has content; the gate needs a model record, which this project (bare
    # evaluations) does not have, so its section names the command instead
    assert report.placeholders == {
        "gate": "no model has been through the promotion gate: run `loopml promote MODEL@V`"
    }


def test_report_is_self_contained(report: Any) -> None:
    text = report.html
    outside_figures = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text)
    for needle in ("http:", "https:", "//", "file:", "ftp:"):
        assert needle not in outside_figures
    assert "<script" not in text.lower() and "<link" not in text.lower()
    assert "@import" not in text and "url(" not in text
    sources = re.findall(r'src="([^"]*)"', text)
    assert len(sources) == len(report.figures)
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.removeprefix("data:image/png;base64,"))
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000


def test_confusion_matrix_matches_sklearn(report: Any, built: Built) -> None:
    f = built.frame
    expected = skm.confusion_matrix(f["label"], f["prediction"], labels=[0, 1])
    assert report.figure("confusion").data["matrix"] == expected.tolist()


def _binned(score: pd.Series) -> np.ndarray[Any, Any]:
    """Scores snapped to the lower edge of the engine's 1000 histogram bins."""
    return np.asarray(np.floor(score.to_numpy(dtype=float) * 1000) / 1000)


def test_roc_and_pr_curves_match_sklearn(report: Any, built: Built) -> None:
    f = built.frame
    roc = report.figure("roc").data
    auc = float(np.trapezoid(roc["tpr"], roc["fpr"]))
    assert auc == pytest.approx(skm.roc_auc_score(f["label"], _binned(f["score"])), abs=1e-3)
    assert roc["auc"] == pytest.approx(skm.roc_auc_score(f["label"], f["score"]), abs=2e-3)
    pr = report.figure("pr").data
    p, r = np.asarray(pr["precision"]), np.asarray(pr["recall"])
    keep = ~np.isnan(p)
    ap = float(np.sum(np.diff(np.concatenate([[0.0], r[keep]])) * p[keep]))
    assert ap == pytest.approx(
        skm.average_precision_score(f["label"], _binned(f["score"])), abs=1e-3
    )
    assert pr["prevalence"] == pytest.approx(f["label"].mean())


def test_calibration_matches_sklearn(report: Any, built: Built) -> None:
    f = built.frame
    prob_true, prob_pred = calibration_curve(f["label"], f["score"], n_bins=10)
    cal = report.figure("calibration").data
    counts = np.asarray(cal["count"])
    assert counts.sum() == len(f)
    observed = np.asarray(cal["observed"])[counts > 0]
    mean_pred = np.asarray(cal["mean_predicted"])[counts > 0]
    np.testing.assert_allclose(observed, prob_true, atol=1e-9)
    np.testing.assert_allclose(mean_pred, prob_pred, atol=1e-9)


def test_slice_forest_matches_statsmodels_wilson(report: Any, built: Built) -> None:
    f = built.frame
    data = report.figure("slices").data
    assert data["overall"] == pytest.approx(skm.accuracy_score(f["label"], f["prediction"]))
    for label, value, low, high in zip(
        data["labels"], data["values"], data["low"], data["high"], strict=True
    ):
        region = label.removeprefix("region=")
        sub = f[f["region"] == region]
        hits = int((sub["label"] == sub["prediction"]).sum())
        lo, hi = proportion_confint(hits, len(sub), alpha=0.05, method="wilson")
        assert value == pytest.approx(hits / len(sub))
        assert (low, high) == (pytest.approx(lo), pytest.approx(hi))
    assert sorted(data["labels"]) == ["region=east", "region=north", "region=south"]


def test_priority_gains_are_share_times_gap_to_hlp(report: Any, built: Built) -> None:
    """For accuracy the gain of closing a slice's gap is exact: share x (HLP - accuracy)."""
    f = built.frame
    data = report.figure("priorities").data
    for label, gain in zip(data["labels"], data["gain"], strict=True):
        region = label.split("region=")[1].split(" ")[0]
        sub = f[f["region"] == region]
        acc = skm.accuracy_score(sub["label"], sub["prediction"])
        assert gain == pytest.approx(len(sub) / len(f) * max(HLP_TARGET - acc, 0.0))
    assert data["gain"] == sorted(data["gain"], reverse=True)


def test_leaderboard_gaps_checked_by_hand(report: Any, built: Built) -> None:
    f = built.frame
    model = skm.accuracy_score(f["label"], f["prediction"])
    dummy = skm.accuracy_score(f["label"], built.dummy_pred)
    section = report.html.split('<section id="leaderboard">')[1].split("</section>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", section)
    names = [re.sub("<[^>]+>", "", r.split("</td>")[0]) for r in rows[1:]]
    assert names[0].startswith("model@1") and names[1] == "dummy"
    assert "human-level performance" in names[2]
    model_row = rows[1]
    assert f"{model:.4f}" in model_row
    # one sign everywhere (issue "one reference and one sign"): gap to HLP = HLP - value
    assert f"{HLP_TARGET - model:.4f}" in model_row
    assert f"{model - dummy:.4f}" in model_row
    assert f"{dummy:.4f}" in rows[2]
    # one satisficing constraint fails (precision >= 0.99), one passes
    assert model_row.count("FAIL") == 1 and model_row.count(">pass<") == 1


def _section_rows(report: Any, sid: str) -> list[list[str]]:
    """The text of every body cell of a section's tables, row by row (tags stripped)."""
    section = report.html.split(f'<section id="{sid}">')[1].split("</section>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", section)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", r) for r in rows]
    return [[re.sub("<[^>]+>", "", c) for c in row] for row in cells if row]


def test_learning_curve_and_audit_and_discovery_render(report: Any, built: Built) -> None:
    lc = report.figure("learning_curve").data
    assert lc["sizes"] == [50.0, 100.0, 200.0, 400.0]
    assert lc["values"] == [0.70, 0.76, 0.79, 0.80]
    assert "the curve flattens" in report.html
    # each audit check's row: its status and its evidence, against scikit-learn
    f = built.frame
    recall = {
        region: skm.recall_score(sub["label"], sub["prediction"])
        for region, sub in f.groupby("region")
    }
    checks = {row[1]: row for row in _section_rows(report, "audit")}
    assert set(checks) == {"south", "gap"}
    assert recall["south"] < 0.99  # the seeded weak region: the check cannot hold
    assert checks["south"][0] == "FAIL"
    assert f"recall on region=south = {recall['south']:.4f}" in checks["south"][3]
    gap = max(recall.values()) - min(recall.values())
    assert gap <= 0.9  # every region is within 0.9 of the best: the gap check passes
    assert checks["gap"][0] == "pass"
    assert f"gap of recall across region = {gap:.4f}" in checks["gap"][3]
    # the discovered slices: the weak region on top, with its error rate
    disc = _section_rows(report, "discovered")
    assert disc[0][1].startswith("region = &#x27;south&#x27;")
    south = f[f["region"] == "south"]
    error_rate = float((south["label"] != south["prediction"]).mean())
    assert disc[0][3] == f"{error_rate:.4f}"


def test_interval_labels_follow_the_confidence_level(tmp_path: Path) -> None:
    """[metric] confidence = 0.9: every interval label says 90%, and the intervals are
    statsmodels' 90% Wilson intervals; discovery's own 95% intervals keep their label."""
    built = build_full_project(tmp_path / "p", with_extras=False, confidence=0.9)
    rep = render_report(built.dir)

    def section(sid: str) -> str:
        return str(rep.html.split(f'<section id="{sid}">')[1].split("</section>")[0])

    for sid in ("leaderboard", "metric", "slices", "priorities"):
        assert "90%" in section(sid), sid
        assert "95%" not in section(sid), sid
    assert "90% interval" in rep.figure("slices").title
    f = built.frame
    data = rep.figure("slices").data
    for label, low, high in zip(data["labels"], data["low"], data["high"], strict=True):
        sub = f[f["region"] == label.removeprefix("region=")]
        hits = int((sub["label"] == sub["prediction"]).sum())
        lo, hi = proportion_confint(hits, len(sub), alpha=0.1, method="wilson")
        assert (low, high) == (pytest.approx(lo), pytest.approx(hi))


def test_empty_project_has_placeholders_naming_the_command(tmp_path: Path) -> None:
    init_project(tmp_path / "p", task="binary").close()
    rep = render_report(tmp_path / "p")
    assert rep.figures == []
    assert rep.evaluation is None
    assert "loopml scope" in rep.placeholders["scope"]
    assert "loopml data add" in rep.placeholders["data"]
    assert "loopml baseline" in rep.placeholders["leaderboard"]
    assert "loopml eval" in rep.placeholders["metric"]
    assert "loopml train --learning-curve" in rep.placeholders["learning_curve"]
    assert rep.html.count('class="placeholder"') >= 10


# --------------------------------------------------------------------------- bad input


def test_unknown_evaluation_is_a_not_found_error(built: Built, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    with pytest.raises(NotFoundError) as err:
        build_report(built.dir, "eval-99", out)
    assert "eval-99" in err.value.message
    assert err.value.hint is not None and built.model_eval in err.value.hint
    assert not out.exists()


@pytest.mark.parametrize("case", ["missing_folder", "is_directory", "parent_is_file"])
def test_unwritable_report_path(built: Built, tmp_path: Path, case: str) -> None:
    if case == "missing_folder":
        out = tmp_path / "nope" / "r.html"
    elif case == "is_directory":
        out = tmp_path
    else:
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "r.html"
    with pytest.raises(InputError) as err:
        build_report(built.dir, None, out)
    assert err.value.where == str(out)
    assert err.value.hint


def test_build_report_writes_the_selected_evaluation(built: Built, tmp_path: Path) -> None:
    out = build_report(built.dir, built.baseline_eval, tmp_path / "base.html")
    text = out.read_text(encoding="utf-8")
    assert f"evaluation {built.baseline_eval}" in text
    assert not list(tmp_path.glob(".*.tmp"))


# --------------------------------------------------------------------------- CLI


def _app() -> typer.Typer:
    from loopml.cli import _report
    from loopml.cli._common import CliState, set_state

    app = typer.Typer()

    @app.callback()
    def root(project: Path | None = typer.Option(None, "--project", "-C")) -> None:
        set_state(CliState(project=project))

    _report.register(app)
    return app


def test_cli_report_and_status(built: Built, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli.html"
    res = runner.invoke(_app(), ["-C", str(built.dir), "report", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert out.stat().st_size > 10_000 and str(out) in res.output.replace("\n", "")
    res = runner.invoke(_app(), ["-C", str(built.dir), "status"])
    assert res.exit_code == 0, res.output
    for stage in ("scope", "metric", "data", "baselines", "train", "analyze", "audit"):
        assert stage in res.output
    res = runner.invoke(_app(), ["-C", str(built.dir), "status", "--json"])
    assert res.exit_code == 0
    import json

    board = json.loads(res.output)
    assert [s["stage"] for s in board["stages"]] == list(STAGES)


def test_cli_bad_input_exits_2_with_a_message(built: Built, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(_app(), ["-C", str(built.dir), "report", "eval-99", "--out", "x.html"])
    assert res.exit_code == 2
    assert "eval-99" in res.output and "Traceback" not in res.output
    res = runner.invoke(
        _app(), ["-C", str(built.dir), "report", "--out", str(tmp_path / "no" / "r.html")]
    )
    assert res.exit_code == 2 and "does not exist" in " ".join(res.output.split())
    outside = tmp_path / "outside"
    outside.mkdir()
    res = runner.invoke(_app(), ["-C", str(outside), "status"])
    assert res.exit_code == 2 and "loopml.toml" in res.output


def test_status_outside_a_project_raises(tmp_path: Path) -> None:
    from loopml.status import project_status

    with pytest.raises(ProjectNotFoundError):
        project_status(tmp_path)


def test_reprs_render_html(built: Built) -> None:
    from loopml.status import project_status

    with open_project(built.dir) as project:
        assert isinstance(project, Project)
        board = project_status(project)
    text = board._repr_html_()
    from loopml.status import STAGES

    assert text.count("<tr") == 1 + len(STAGES) and "Next:" in text
