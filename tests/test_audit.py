"""The audit: each check form checked against sklearn / scipy on crafted data, bad checks
refused with clear errors, JUnit XML read back with junitparser, and the CLI exit codes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from junitparser import Failure, JUnitXml
from scipy.stats import binomtest
from sklearn import metrics as skm
from typer.testing import CliRunner

from loopml.audit import CheckResult, parse_check, run_audit
from loopml.cli._common import CliState, set_state
from loopml.errors import InputError
from loopml.evaluation import Evaluation, evaluate
from loopml.metrics import Estimate
from loopml.project import init_project, open_project


def frame(n: int = 2000, seed: int = 0, north_miss: float = 0.5) -> pd.DataFrame:
    """Binary data: recall is about 0.9 except in region north (about 1 - north_miss)."""
    rng = np.random.default_rng(seed)
    region = rng.choice(["north", "south", "east"], n)
    sex = rng.choice(["f", "m"], n)
    age = rng.integers(18, 90, n)
    y = (rng.random(n) < 0.4).astype(int)
    miss = np.where(region == "north", north_miss, 0.1)
    pred = np.where(y == 1, (rng.random(n) >= miss).astype(int), (rng.random(n) < 0.1))
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "label": y,
            "prediction": pred.astype(int),
            "region": region,
            "sex": sex,
            "age": age,
        }
    )


def ev_of(df: pd.DataFrame) -> Evaluation:
    return evaluate(
        df,
        task="binary",
        optimizing="recall",
        slices=["region", "sex", "senior=age >= 65"],
        store=False,
        n_boot=300,
    )


def figure(c: CheckResult) -> Estimate:
    """A check's value with its interval (every check read here has one)."""
    assert c.value is not None
    return c.value


def wilson(k: int, n: int) -> tuple[float, float]:
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def test_slice_bound_by_label_and_by_expression() -> None:
    df = frame()
    ev = ev_of(df)
    res = run_audit(
        ev,
        [
            {"name": "north", "check": "recall on slice 'region=north' >= 0.8", "reason": "r"},
            {"name": "south", "check": "recall on slice region = south >= 0.8"},
            {"name": "quoted", "check": "recall on slice \"region = 'south'\" >= 0.8"},
            {"name": "seniors", "check": "recall on slice 'age >= 65' >= 0.5"},
        ],
    )
    checks = {c.name: c for c in res.checks}
    north = df[df.region == "north"]
    rec = skm.recall_score(north.label, north.prediction)
    c = checks["north"]
    assert figure(c).value == pytest.approx(rec) and not c.passed
    tp = int(((north.label == 1) & (north.prediction == 1)).sum())
    assert (figure(c).low, figure(c).high) == pytest.approx(wilson(tp, int(north.label.sum())))
    assert c.support == len(north) and c.evidence["denominator"] == int(north.label.sum())
    assert c.threshold == 0.8 and c.op == ">=" and c.reason == "r"
    south = df[df.region == "south"]
    for name in ("south", "quoted"):
        assert checks[name].passed
        assert figure(checks[name]).value == pytest.approx(
            skm.recall_score(south.label, south.prediction)
        )
    old = df[df.age >= 65]
    assert figure(checks["seniors"]).value == pytest.approx(
        skm.recall_score(old.label, old.prediction)
    )
    assert checks["seniors"].evidence["slice"] == "senior"
    assert not res.passed and [f.name for f in res.failures] == ["north"]


def test_max_gap_across_a_column() -> None:
    df = frame()
    ev = ev_of(df)
    res = run_audit(
        ev, ["max gap of recall across region <= 0.05", "max gap of recall across sex <= 0.2"]
    )
    by_region = [skm.recall_score(g.label, g.prediction) for _, g in df.groupby("region")]
    gap = max(by_region) - min(by_region)
    c = res.checks[0]
    assert figure(c).value == pytest.approx(gap) and not c.passed
    assert c.evidence["lowest"] == "region=north"
    assert c.value is not None and c.value.low is not None and c.value.high is not None
    assert c.value.low < c.value.value < c.value.high
    by_sex = [skm.recall_score(g.label, g.prediction) for _, g in df.groupby("sex")]
    assert figure(res.checks[1]).value == pytest.approx(max(by_sex) - min(by_sex))
    assert res.checks[1].passed


def test_rare_class_bound_matches_sklearn() -> None:
    rng = np.random.default_rng(5)
    y = np.array(["ok"] * 900 + ["fraud"] * 60 + ["spam"] * 40)
    pred = y.copy()
    flip = rng.random(len(y)) < 0.35
    pred[flip] = rng.choice(["ok", "fraud", "spam"], int(flip.sum()))
    df = pd.DataFrame({"id": np.arange(len(y)), "label": y, "prediction": pred})
    ev = evaluate(df, task="multiclass", store=False, n_boot=300)
    res = run_audit(
        ev,
        [
            "recall of class 'fraud' >= 0.6",
            "precision of class 'fraud' >= 0.99",
            "f1 of class spam >= 0.1",
        ],
    )
    labels = ["fraud", "ok", "spam"]
    rec = skm.recall_score(y, pred, labels=labels, average=None)
    prec = skm.precision_score(y, pred, labels=labels, average=None)
    f1 = skm.f1_score(y, pred, labels=labels, average=None)
    r, p, f = res.checks
    assert figure(r).value == pytest.approx(rec[0]) and r.passed and r.support == 60
    tp = int(((y == "fraud") & (pred == "fraud")).sum())
    assert (figure(r).low, figure(r).high) == pytest.approx(wilson(tp, 60))
    assert figure(p).value == pytest.approx(prec[0]) and not p.passed
    assert figure(f).value == pytest.approx(f1[2]) and f.passed


def test_no_regression_uses_the_interval_and_tolerance() -> None:
    df = frame(seed=1)
    ev = ev_of(df)
    noisy = frame(seed=2)  # another sample of the same model: differences are noise
    worse = frame(seed=1, north_miss=0.2)  # the older model was much better in north
    others = {"eval-noisy": ev_of(noisy), "eval-old": ev_of(worse)}
    res = run_audit(
        ev,
        [
            {"name": "noise", "check": "no regression of recall vs eval-noisy on region"},
            {"name": "north", "check": "no regression of recall vs eval-old on region"},
            {
                "name": "tolerant",
                "check": "no regression of recall vs eval-old on region",
                "tolerance": 0.5,
            },
            {"name": "overall", "check": "no regression of recall vs eval-noisy"},
        ],
        others=others,
    )
    noise, north, tolerant, overall = res.checks
    assert noise.passed and len(noise.evidence["slices"]) == 3
    assert not north.passed and "region=north" in north.message
    row = next(s for s in north.evidence["slices"] if s["slice"] == "region=north")
    a = df[df.region == "north"]
    b = worse[worse.region == "north"]
    expected = skm.recall_score(a.label, a.prediction) - skm.recall_score(b.label, b.prediction)
    assert row["difference"] == pytest.approx(expected)
    assert row["high"] < 0 and row["regressed"]
    assert tolerant.passed and tolerant.threshold == -0.5
    assert overall.passed and overall.evidence["slices"][0]["slice"] == "all"


@pytest.mark.parametrize(
    ("check", "match"),
    [
        ("recall on slice 'age >= 70' >= 0.8", r"(?s)not among the key slices.*slices.named"),
        ("recall on slice 'region=west' >= 0.8", "not among the key slices"),
        ("recal on slice 'region=north' >= 0.8", "unknown metric 'recal'"),
        ("roc_auc on slice 'region=north' >= 0.8", "needs scores"),
        ("mae on slice 'region=north' <= 1", "cannot be computed from a binary"),
        ("recall on slice 'region=north' >= high", "threshold 'high' .* is not a number"),
        ("recall on slice 'region=north' != 0.8", "comparator '!=' .* not supported"),
        ("max gap of recall across device <= 0.05", "column 'device' is not a key slice column"),
        ("max gap of recall across sex >= 0.05", "bound the gap from above"),
        ("recall of class 'fraud' >= 0.6", r"class 'fraud' .* not a class"),
        ("mcc of class '1' >= 0.6", "no per-class value"),
        ("no regression of recall vs eval-9", "'eval-9' to compare with is not available"),
        ("recall should be good", "not in a known form"),
    ],
)
def test_bad_checks_are_refused(check: str, match: str) -> None:
    ev = ev_of(frame(n=400))
    with pytest.raises(InputError, match=match) as info:
        run_audit(ev, [{"name": "c1", "check": check}])
    assert info.value.where == "audit check 'c1'"


def test_bad_check_lists_are_refused() -> None:
    ev = ev_of(frame(n=400))
    with pytest.raises(InputError, match="no audit checks"):
        run_audit(ev, [])
    with pytest.raises(InputError, match="two audit checks are named 'a'"):
        run_audit(
            ev,
            [
                {"name": "a", "check": "recall on slice sex=f >= 0"},
                {"name": "a", "check": "recall on slice sex=m >= 0"},
            ],
        )
    with pytest.raises(InputError, match="tolerance"):
        run_audit(ev, [{"name": "a", "check": "no regression of recall vs x", "tolerance": -1}])


def test_parse_check_forms() -> None:
    pc = parse_check("no regression of f1 vs eval-3 on region, sex")
    assert (pc.kind, pc.metric, pc.other, pc.on) == (
        "no_regression",
        "f1",
        "eval-3",
        ("region", "sex"),
    )
    pc = parse_check("recall on slice 'name = ''O''Brien''' => 0.5")
    assert (pc.target, pc.op, pc.threshold) == ("name = 'O'Brien'", ">=", 0.5)


def test_junit_xml_reads_back(tmp_path: Path) -> None:
    ev = ev_of(frame())
    res = run_audit(
        ev,
        [
            {"name": "north", "check": "recall on slice region=north >= 0.8"},
            {"name": "south", "check": "recall on slice region=south >= 0.8"},
        ],
    )
    path = res.write_junit(tmp_path / "audit.xml")
    xml = JUnitXml.fromfile(str(path))
    suites = list(xml)
    assert len(suites) == 1
    suite = suites[0]
    assert suite.tests == 2 and suite.failures == 1
    cases = {case.name: case for case in suite}
    assert cases["south"].is_passed
    failures = [r for r in cases["north"].result if isinstance(r, Failure)]
    assert failures and "recall on region=north" in (failures[0].message or "")


SPEC_TOML = """
[project]
name = "p"
task = "binary"
label = "label"
id = "id"

[metric]
optimizing = "recall"

[slices]
columns = ["region", "sex"]

[slices.named]
senior = "age >= 65"

[[audit]]
name = "seniors"
check = "recall on slice 'age >= 65' >= 0.5"
reason = "older customers call in more"

[[audit]]
name = "north"
check = "{north}"
reason = "the new northern market"
"""


def _app() -> typer.Typer:
    from loopml.cli import _analyze

    app = typer.Typer()

    @app.callback()
    def root(project: Path = typer.Option(..., "--project")) -> None:
        set_state(CliState(project=project))

    _analyze.register(app)
    return app


@pytest.mark.parametrize(
    ("north", "code"),
    [
        ("recall on slice region=north >= 0.8", 1),
        ("recall on slice region=north >= 0.1", 0),
        ("recall on slice region=west >= 0.1", 2),
    ],
)
def test_cli_audit_exit_codes_and_storage(tmp_path: Path, north: str, code: int) -> None:
    init_project(tmp_path, task="binary").close()
    (tmp_path / "loopml.toml").write_text(SPEC_TOML.format(north=north), encoding="utf-8")
    with open_project(tmp_path) as project:
        ev = evaluate(frame(n=600), project=project, n_boot=200)
    runner = CliRunner()
    junit = tmp_path / "out.xml"
    result = runner.invoke(
        _app(), ["--project", str(tmp_path), "audit", str(ev.id), "--junit", str(junit)]
    )
    assert result.exit_code == code, result.output
    with open_project(tmp_path) as project:
        stored = project.store.list("audit")
    if code == 2:
        assert "region=west" in result.output and not stored and not junit.exists()
        return
    assert len(stored) == 1 and stored[0].payload["evaluation"] == ev.id
    assert stored[0].payload["passed"] is (code == 0)
    assert {c["name"] for c in stored[0].payload["checks"]} == {"seniors", "north"}
    assert JUnitXml.fromfile(str(junit))
    analyzed = runner.invoke(_app(), ["--project", str(tmp_path), "analyze", "--json"])
    assert analyzed.exit_code == 0, analyzed.output
    assert '"metric": "recall"' in analyzed.output


def test_cli_renders_tables(tmp_path: Path) -> None:
    init_project(tmp_path, task="binary").close()
    spec = SPEC_TOML.format(north="recall on slice region=north >= 0.8")
    (tmp_path / "loopml.toml").write_text(spec + "\n[targets]\nhlp = 0.95\n", encoding="utf-8")
    with open_project(tmp_path) as project:
        ev = evaluate(frame(n=600), project=project, n_boot=200)
    runner = CliRunner()
    out = runner.invoke(_app(), ["--project", str(tmp_path), "analyze", str(ev.id)])
    assert out.exit_code == 0, out.output
    assert "Priorities" in out.output and "closing the gap on `region=north`" in out.output
    out = runner.invoke(_app(), ["--project", str(tmp_path), "audit", str(ev.id)])
    assert out.exit_code == 1 and "FAIL" in out.output and "1 of 2 check(s) failed" in out.output
