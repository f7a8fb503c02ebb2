"""The end-to-end demo: one project walked through every stage loopml has.

The data is scikit-learn's bundled Wisconsin breast cancer set (569 tumours, 30 features;
the positive class is "malignant", the finding a screening team must not miss). It has no
metadata and no annotator labels, so the demo adds, clearly simulated and seeded:

- ``site`` (hospital A, B or C) and ``scanner`` (old or new) for every row; rows scanned on
  an old scanner at site C get extra measurement noise, a weak slice to be found;
- three annotators who re-read the test tumours with error rates of 1%, 2% and 4%
  (half as much again on the noisy slice: the scanner noise hurts the measurements more
  than the pathologists), from which agreement and human-level performance follow.

Nothing is downloaded; the run takes well under two minutes on a laptop.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from loopml.tableview import HtmlRepr

if TYPE_CHECKING:
    from loopml.project import Project

__all__ = ["DemoResult", "make_demo_data", "run_demo"]

ANSWERS = """\
[impact]
cheap_prediction = 4
product_friction = 4
automates_manual_process = 4
others_doing_it = "products_ship_it"

[feasibility.data]
acquisition_difficulty = 3
labeling_cost = 4
examples_needed = 500
examples_available = 569
stability = 4
security = 5

[feasibility.accuracy]
required = 0.95
wrong_prediction_cost = 5
ethical_risk = 4

[feasibility.difficulty]
well_defined = 4
published_work = "same_problem"
compute = "small"
human_can_do = true

[archetype.human_in_the_loop]
useful_accuracy = 0.9
easy_to_correct = true
"""


@dataclass(frozen=True)
class DemoResult(HtmlRepr):
    directory: Path
    steps: list[tuple[str, str]] = field(default_factory=list)
    evaluations: dict[str, str] = field(default_factory=dict)
    report: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "report": str(self.report) if self.report else None,
            "steps": [{"stage": s, "summary": t} for s, t in self.steps],
            "evaluations": self.evaluations,
        }


def make_demo_data(seed: int = 0) -> tuple[pd.DataFrame, list[str]]:
    """The breast cancer set with simulated site/scanner metadata and a noisy slice."""
    from sklearn.datasets import load_breast_cancer

    raw = load_breast_cancer(as_frame=True)
    features = raw.frame.drop(columns=["target"])
    features.columns = [c.replace(" ", "_") for c in features.columns]
    rng = np.random.default_rng(seed)
    n = len(features)
    site = rng.choice(["A", "B", "C"], n, p=[0.4, 0.35, 0.25])
    scanner = rng.choice(["new", "old"], n, p=[0.6, 0.4])
    noisy = (site == "C") & (scanner == "old")
    std = features.std().to_numpy()
    features.loc[noisy, :] = (
        features.loc[noisy, :].to_numpy()
        + rng.normal(0, 1.2, (int(noisy.sum()), features.shape[1])) * std
    )
    frame = pd.DataFrame({"id": np.arange(n), "site": site, "scanner": scanner})
    frame = pd.concat([frame, features.reset_index(drop=True)], axis=1)
    frame["label"] = (raw.frame["target"].to_numpy() == 0).astype(int)  # 1 = malignant
    return frame, list(features.columns)


def _annotations(test: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed + 1)
    rows = []
    hard = ((test["site"] == "C") & (test["scanner"] == "old")).to_numpy()
    for annotator, rate in (("ann_1", 0.01), ("ann_2", 0.02), ("ann_3", 0.04)):
        flip = rng.random(len(test)) < np.where(hard, 1.5 * rate, rate)
        labels = np.where(flip, 1 - test["label"].to_numpy(), test["label"].to_numpy())
        rows.append(
            pd.DataFrame(
                {"item_id": test["id"].to_numpy(), "annotator": annotator, "label": labels}
            )
        )
    return pd.concat(rows, ignore_index=True)


def _overall_difference(comparison: list[dict[str, Any]], metric: str) -> str:
    row = next(c for c in comparison if c["slice"] == "all" and c["metric"] == metric)
    return f"{row['difference']:+.3f} [{row['low']:+.3f}, {row['high']:+.3f}]"


def _findings(report: Any) -> str:
    by: dict[str, int] = {}
    for f in report.findings:
        by[f.severity] = by.get(f.severity, 0) + 1
    return ", ".join(f"{n} {sev}" for sev, n in sorted(by.items())) or "no findings"


def _hlp(hlp: Any) -> str:
    m = hlp.pooled.metrics[hlp.metric]
    low, high = m.get("low"), m.get("high")
    text = f"{m['estimate']:.3f}"
    if low is not None and high is not None:
        text += f" [{low:.3f}, {high:.3f}]"
    return text


def _http(url: str, body: Any | None = None, timeout: float = 10.0) -> Any:
    """GET (``body`` None) or POST JSON with the standard library; JSON or text back."""
    import json
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        text = resp.read().decode()
    return json.loads(text) if resp.headers.get_content_type() == "application/json" else text


def _serve_and_log(
    root: Path,
    test: pd.DataFrame,
    *,
    seed: int,
    during: Callable[[str], list[tuple[str, str]]] | None = None,
) -> list[tuple[str, str]]:
    """Start ``loopml serve`` on a free loopback port, send the test rows as production
    traffic with their labels (and a KPI) as feedback, run ``during(url)`` while the server
    is up (the monitor and the closed loop), read /metrics, stop it with SIGTERM and read the
    prediction log back. Skipped, saying why, without the serve extra."""
    import importlib.util
    import signal
    import subprocess
    import sys
    import time

    if any(importlib.util.find_spec(m) is None for m in ("fastapi", "uvicorn")):
        return [("serve", "skipped: the server needs pip install 'loopml[serve]'")]
    import pyarrow as pa

    from loopml.server._process import free_port, wait_until_up
    from loopml.serving import read_joined

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    out = root / "server.log"
    cmd = [sys.executable, "-c", "from loopml.cli import main; main()", "-C", str(root)]
    with open(out, "wb") as sink:
        proc = subprocess.Popen(
            [*cmd, "serve", "--port", str(port)], stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        wait_until_up(proc, f"{url}/ready", log=out)
        ready = _http(f"{url}/ready")
        champion = ready.get("models", {}).get("champion", "?") if isinstance(ready, dict) else "?"
        latencies: list[float] = []
        served = _send(url, test, batch=10, latencies=latencies)
        # the pathologists' verdicts come back later; the KPI: minutes of review each flag costs
        feedback = _feed_back(url, served, test["label"].astype(int).tolist())
        time.sleep(0.5)  # the log writes every 0.2 s: let the first traffic land
        extra = during(url) if during is not None else []
        metrics = _http(f"{url}/metrics")
        counted = sum(
            float(line.rsplit(" ", 1)[1])
            for line in str(metrics).splitlines()
            if line.startswith("loopml_predictions_total{")
        )
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    log = read_joined(root)
    first = {p["request_id"] for p in served}  # the test rows' traffic (the loop adds more)
    log = log.filter(pa.array([r in first for r in log.column("request_id").to_pylist()]))
    labelled = sum(1 for v in log.column("label").to_pylist() if v is not None)
    latencies.sort()
    p50 = 1000 * latencies[len(latencies) // 2]
    right = sum(int(p["prediction"]) == int(y) for p, y in zip(served, test["label"], strict=True))
    return [
        (
            "serve",
            f"champion {champion} on {url}: {len(served)} rows in {len(latencies)} requests "
            f"(p50 {p50:.0f} ms), {labelled} labels fed back, /metrics counted {counted:.0f}; "
            + (
                "stopped by SIGTERM, log flushed"
                if code in (0, -signal.SIGTERM)
                else f"the server exited with {code} (see {out})"
            ),
        ),
        (
            "prediction log",
            f"{log.num_rows} rows in the log, {labelled} joined with their feedback; "
            f"{right} of {len(served)} served predictions were right; "
            f"review minutes (KPI) {sum(f['kpi'] for f in feedback):.0f}",
        ),
        *extra,
    ]


#: what site B's new scanner reads too high (the drift of the loop): these measurements, by
#: ``SCANNER_OFFSET`` standard deviations of the training rows
SCANNER_DRIFTED = ("radius", "perimeter", "area", "concave")
SCANNER_OFFSET = 1.2


def _drifted_traffic(
    train: pd.DataFrame, features: list[str], n: int, seed: int, *, start_id: int
) -> pd.DataFrame:
    """``n`` production rows drawn from ``train`` (a little measurement jitter); at site B
    a new scanner, calibrated wrong, reads the size and concavity measurements
    ``SCANNER_OFFSET`` standard deviations high, so benign tumours there look malignant.
    Values stay inside the training range (the server refuses others: a saturating sensor)."""
    rng = np.random.default_rng(seed)
    t = train.sample(n, replace=True, random_state=seed).reset_index(drop=True)
    std = train[features].std()
    t[features] = t[features] + rng.normal(0, 0.05, (n, len(features))) * std.to_numpy()
    drifted = [c for c in features if any(part in c for part in SCANNER_DRIFTED)]
    at_b = (t["site"] == "B").to_numpy()
    t.loc[at_b, drifted] = t.loc[at_b, drifted] + SCANNER_OFFSET * std[drifted].to_numpy()
    t[features] = t[features].clip(train[features].min(), train[features].max(), axis=1)
    t["id"] = np.arange(start_id, start_id + n)
    return t


def _send(
    url: str, rows: pd.DataFrame, *, batch: int = 50, latencies: list[float] | None = None
) -> list[dict[str, Any]]:
    """POST ``rows`` (without their label) to /predict, ``batch`` records a request; each
    request's seconds go to ``latencies``."""
    import time

    records = rows.drop(columns=["label"]).to_dict("records")
    records = [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in records]
    served: list[dict[str, Any]] = []
    for i in range(0, len(records), batch):
        t0 = time.perf_counter()
        served += _http(f"{url}/predict", {"records": records[i : i + batch]})["predictions"]
        if latencies is not None:
            latencies.append(time.perf_counter() - t0)
    return served


def _feed_back(url: str, served: list[dict[str, Any]], labels: list[int]) -> list[dict[str, Any]]:
    """The labels back by request id, with the KPI (minutes of review each flag costs)."""
    items = [
        {"request_id": p["request_id"], "label": int(y), "kpi": 12.0 * int(p["prediction"])}
        for p, y in zip(served, labels, strict=True)
    ]
    for i in range(0, len(items), 500):
        _http(f"{url}/feedback", {"feedback": items[i : i + 500]})
    return items


def _annotate(tasks_file: Path, truth: dict[str, int], out: Path, seed: int) -> None:
    """Simulated pathologists label the exported tasks in Label Studio: one per task, three
    on the overlap tasks, each wrong once in a hundred; written as Label Studio's JSON export."""
    import json

    from loopml.flywheel._schema import FROM_NAME, ITEM_FIELD, TO_NAME

    rng = np.random.default_rng(seed + 7)
    tasks = json.loads(tasks_file.read_text(encoding="utf-8"))
    exported, k = [], 0
    for i, task in enumerate(tasks):
        y = truth[task["data"][ITEM_FIELD]]
        who = [1, 2, 3] if (task.get("meta") or {}).get("overlap") else [1 + i % 3]
        annotations = []
        for a in who:
            k += 1
            label = 1 - y if rng.random() < 0.01 else y
            annotations.append(
                {
                    "id": k,
                    "completed_by": a,
                    "created_at": "2026-11-30T10:00:00Z",
                    "was_cancelled": False,
                    "result": [
                        {
                            "type": "choices",
                            "from_name": FROM_NAME,
                            "to_name": TO_NAME,
                            "value": {"choices": [str(label)]},
                        }
                    ],
                }
            )
        exported.append({"id": i + 1, "data": task["data"], "annotations": annotations})
    out.write_text(json.dumps(exported), encoding="utf-8")


def _slice_f1(mon: Any, slice_name: str) -> str:
    rows = [
        p
        for p in mon.performance
        if p.kind == "realized" and p.metric == "f1" and p.slice == slice_name and not p.too_small
    ]
    if not rows:
        return "n/a"
    p = rows[-1]
    v, ref = p.value, p.reference
    return f"{v.value:.3f} [{v.low:.3f}, {v.high:.3f}] (offline {ref.value:.3f})"


def _kpi(mon: Any) -> str:
    """The business KPI over a monitor run: the pathologists' review minutes per case."""
    rows = [k for k in mon.kpi if k.get("value") is not None and k.get("rows")]
    n = sum(int(k["rows"]) for k in rows)
    if not n:
        return "review minutes a case n/a"
    mean = sum(float(k["value"]) * int(k["rows"]) for k in rows) / n
    return f"review minutes a case {mean:.1f}"


def _closed_loop(
    project: Project,
    root: Path,
    url: str,
    estimator: tuple[str, dict[str, Any]],
    name: str,
    *,
    seed: int,
) -> list[tuple[str, str]]:
    """The flywheel, end to end, while the server serves: site B's new scanner drifts, the
    monitor says go back to the data for that site, its rows are exported, labeled and
    imported, a new dataset version is made, a retrain passes the gate, and the monitor
    shows the site recovered."""
    import time
    from datetime import UTC, datetime

    from loopml.data import load_dataset
    from loopml.flywheel import dataset_from_production, export_labels, import_labels
    from loopml.monitor import monitor
    from loopml.registry import promote
    from loopml.training import train

    steps: list[tuple[str, str]] = []
    champion_data = load_dataset(project, "tumours@1", split="train").to_pandas()
    features = [c for c in champion_data.columns if c not in ("id", "site", "scanner", "label")]
    # 1. site B's new scanner: 1,500 rows, the pathologists' verdicts for 40% so far
    start = datetime.now(UTC)
    traffic = _drifted_traffic(champion_data, features, 1500, seed + 1, start_id=100_000)
    served = _send(url, traffic)
    labels = traffic["label"].astype(int).tolist()
    known = int(0.4 * len(served))
    _feed_back(url, served[:known], labels[:known])
    time.sleep(0.5)
    mon = monitor(project, window="1000rows", since=start.isoformat())
    rec = mon.recommendation
    weak = rec.slice if rec is not None and rec.slice else "site=B"
    steps.append(
        (
            "drift",
            f"{len(served)} rows; site B's new scanner reads sizes and concavity "
            f"{SCANNER_OFFSET:g} sd high: "
            f"f1 at {weak} {_slice_f1(mon, weak)}; {_kpi(mon)}; go back to: "
            + (f"{rec.stage} ({rec.action})" if rec is not None else "n/a"),
        )
    )
    # 2. export the rows worth labeling: the weak site first
    tasks = root / "label-tasks.json"
    ex = export_labels(
        project,
        n=800,
        mix={"uncertainty": 0.1, "weak": 0.6, "random": 0.2, "overlap": 0.1},
        weak=[weak],
        out=tasks,
        seed=seed,
    )
    steps.append(
        (
            "export",
            f"{len(ex.rows)} unlabeled rows for Label Studio ({tasks.name}; "
            + ", ".join(f"{k} {v:.0%}" for k, v in ex.to_dict()["mix"]["achieved"].items())
            + f"), stored as {ex.record_id}",
        )
    )
    # 3. the pathologists label them; the export comes back
    labeled = root / "labeled.json"
    truth = {p["request_id"]: y for p, y in zip(served, labels, strict=True)}
    _annotate(tasks, truth, labeled, seed)
    imp = import_labels(project, labeled)
    alpha = (imp.agreement or {}).get("krippendorff_alpha")
    steps.append(
        (
            "import",
            f"{imp.n_annotations} labels on {imp.n_items} rows by {len(imp.annotators)} "
            f"annotators; agreement (Krippendorff's alpha) "
            + (f"{alpha:.2f}" if isinstance(alpha, float) else "n/a")
            + f", {len(imp.disagreements)} disagreements; label set {imp.labelset}",
        )
    )
    # 4. a new dataset version, 5. retrain, the gate on the same test rows
    ds = dataset_from_production(project, imp.labelset, test=0.3, seed=seed)
    err = next((e for e in ds.champion_error if e["slice"] == weak), None)
    steps.append(
        (
            "new data",
            f"{ds.dataset} = {ds.base} + {ds.n_added} labeled production rows (split carried:"
            f" {ds.split}); the champion errs on "
            + (f"{err['error']:.0%} of the {weak} rows" if err else "n/a"),
        )
    )
    path, params = estimator
    if path.endswith("LogisticRegression"):
        # weigh the malignant class up: the new site's rows must not cost recall (>= 0.9)
        params = {**params, "class_weight": "balanced"}
    trained = train(
        project,
        estimator=path,
        params=params,
        name=name,
        dataset=ds.dataset,
        n_single=50,
        sanity=False,
        choose_threshold="recall >= 0.95",
    )
    assert trained.model is not None and trained.model.evaluation is not None
    from loopml.audit import run_audit

    audited = run_audit(trained.model.evaluation, project=project)  # the candidate's audit
    moved = promote(project, trained.model.ref)
    steps.append(
        (
            "retrain",
            f"{trained.model.ref} on {ds.dataset} (audit {audited.id}: "
            f"{sum(c.passed for c in audited.checks)} of {len(audited.checks)} checks pass): "
            f"{moved.decision.summary()}",
        )
    )
    if moved.move is None:  # the gate keeps the champion: the loop stops here, said so
        steps.append(
            (
                "loop",
                "the gate kept the champion (the candidate must be better on the same test "
                "rows, slice by slice); label more of the weak rows and retrain",
            )
        )
        return steps
    # the server swaps models when the alias moves (it polls every second)
    deadline = time.time() + 15
    while time.time() < deadline:
        ready = _http(f"{url}/ready")
        if isinstance(ready, dict) and ready.get("models", {}).get("champion") == moved.move.model:
            break
        time.sleep(0.3)
    # 6. the same scanner, the new champion: the site recovered?
    after = datetime.now(UTC)
    traffic2 = _drifted_traffic(champion_data, features, 600, seed + 2, start_id=200_000)
    served2 = _send(url, traffic2)
    _feed_back(url, served2, traffic2["label"].astype(int).tolist())
    time.sleep(0.5)
    mon2 = monitor(project, window="1000rows", since=after.isoformat())
    rec2 = mon2.recommendation
    steps.append(
        (
            "recovered",
            f"{len(served2)} more rows from site B's scanner, served by "
            f"{moved.move.model}: f1 at {weak} {_slice_f1(mon2, weak)}; {_kpi(mon2)}; "
            "go back to: " + (f"{rec2.stage} ({rec2.action})" if rec2 is not None else "n/a"),
        )
    )
    return steps


def _monitor_summary(project: Project) -> str:
    """Monitor the demo's log in windows of 50 rows: drift, performance, the advice."""
    from loopml.monitor import monitor

    mon = monitor(project, window="50rows")
    metric = project.spec.metric.optimizing

    def mean(kind: str) -> str:
        vals = [
            p.value.value
            for p in mon.performance
            if p.kind == kind and p.metric == metric and p.slice == "all" and p.value is not None
        ]
        return f"{sum(vals) / len(vals):.3f}" if vals else "n/a"

    rec = mon.recommendation
    return (
        f"{len(mon.windows)} windows of 50 rows against {mon.reference}: "
        f"{len(mon.alerts)} drift alarms of {len(mon.drift)}; {metric} realized {mean('realized')}"
        f", estimated {mean('estimated')}; {_kpi(mon)}; go back to: "
        + (f"{rec.stage} ({rec.action})" if rec else "n/a")
        + f"; stored as {mon.record_id}"
    )


def run_demo(
    directory: str | Path | None = None,
    *,
    progress: Callable[[str, str], None] | None = None,
    seed: int = 0,
) -> DemoResult:
    """Build a demo project in ``directory`` (a new temporary one when None) and walk it."""

    from loopml.data import (
        add_dataset,
        add_labels,
        compute_hlp,
        label_agreement,
        load_dataset,
        split_dataset,
        validate_dataset,
    )
    from loopml.evaluation import load_evaluation
    from loopml.project import init_project
    from loopml.scope import run_scope

    root = (
        Path(directory) if directory is not None else Path(tempfile.mkdtemp(prefix="loopml-demo-"))
    )
    # what the result holds, gathered as the demo goes and frozen into it at the end
    done: list[tuple[str, str]] = []
    evaluations: dict[str, str] = {}

    def step(stage: str, summary: str) -> None:
        done.append((stage, summary))
        if progress is not None:
            progress(stage, summary)

    project = init_project(
        root,
        task="binary",
        name="tumour-screening",
        problem="Flag malignant tumours from 30 cell-nucleus measurements so that a "
        "pathologist reviews every flagged case first.",
        archetype="human-in-the-loop",
        optimizing="f1",
        force=True,
    )
    spec_path = root / "loopml.toml"
    text = spec_path.read_text()
    text = text.replace(
        'satisficing = ["recall >= 0.5", "latency_p99_ms <= 50", "model_size_mb <= 100"]',
        'satisficing = ["recall >= 0.9", "precision >= 0.8", "latency_p99_ms <= 50"]',
    )
    text = text.replace("columns = []", 'columns = ["site", "scanner"]')
    text = text.replace("crosses = []", 'crosses = [["site", "scanner"]]')
    text = text.replace(
        "# young_android = \"age < 25 and os = 'android'\"", 'large_tumours = "mean_radius >= 17"'
    )
    text = text.replace("min_support = 30", "min_support = 15")
    text += (
        "\n[baselines]\n"
        'dummy = ["majority", "stratified"]\n'
        "quick = []  # the two models below are the quick models here\n"
        "[baselines.rules]\n"
        "# a radiologist's rule of thumb: large tumours are suspicious\n"
        'when = [["mean_radius >= 15", 1]]\n'
        "default = 0\n"
        "\n[model]\n"
        "# the model reads site and scanner too: scanners differ, and a retrain can learn\n"
        "# a new one's calibration from labeled rows (the closed loop does)\n"
        "exclude = []\n"
        "\n# failure modes the team brainstormed, run by `loopml audit`\n"
        "[[audit]]\n"
        'name = "noisy scans"\n'
        "check = \"recall on slice 'scanner=old' >= 0.8\"\n"
        'reason = "old scanners at site C give noisier measurements; malignant cases there '
        'must still be caught"\n'
        "[[audit]]\n"
        'name = "sites alike"\n'
        'check = "max gap of recall across site <= 0.15"\n'
        'reason = "a patient should not be screened worse because of the hospital"\n'
        "[[audit]]\n"
        'name = "malignant recall"\n'
        'check = "recall of class 1 >= 0.9"\n'
        'reason = "a missed malignant tumour is the costliest error"\n'
    )
    spec_path.write_text(text)
    project.close()
    from loopml.project import open_project

    project = open_project(root)
    step("init", f"project 'tumour-screening' in {root} (binary, optimizing f1)")

    answers = root / "answers.toml"
    answers.write_text(ANSWERS)
    scope = run_scope(project, answers=answers)
    a = scope.assessment
    step(
        "scope",
        f"impact {a.impact:.1f}/10, feasibility {a.feasibility:.1f}/10: "
        f"{a.quadrant_label} ({scope.record.id})",
    )

    frame, _ = make_demo_data(seed)
    csv = root / "tumours.csv"
    frame.to_csv(csv, index=False)
    version = add_dataset(project, csv, name="tumours")
    split = split_dataset(project, version.ref, by="stratified", test=0.3, seed=seed)
    report = validate_dataset(project, version.ref)
    step(
        "data",
        f"{version.ref}: {version.n_rows} rows, split {split.ref} "
        f"(stratified, 30% test); validation: {_findings(report)}",
    )

    test = load_dataset(project, version.ref, split="test").to_pandas()
    labels_csv = root / "annotations.csv"
    _annotations(test, seed).to_csv(labels_csv, index=False)
    ls = add_labels(project, labels_csv, dataset=version.ref)
    agree = label_agreement(project, ls.ref)
    hlp = compute_hlp(project, ls.ref)
    step(
        "labels",
        f"{ls.ref}: Fleiss' kappa {agree.report.fleiss.kappa:.3f}, "
        f"Krippendorff's alpha {agree.report.krippendorff.alpha:.3f}; "
        f"HLP {hlp.metric} {_hlp(hlp)} ({hlp.id})",
    )

    from loopml.baselines import leaderboard, run_baselines
    from loopml.training import sanity_check, train

    base = run_baselines(project)
    best, best_f1 = max(
        (
            (r, scored)
            for r in base.results
            if r.kind in ("dummy", "rules") and (scored := r.value) is not None
        ),
        key=lambda rv: rv[1].value or 0.0,
    )
    hlp_row = next((r for r in base.results if r.kind == "hlp"), None)
    step(
        "baselines",
        f"{len(base.results)} on {base.split}: best {best.name} f1 {best_f1.value:.3f} "
        f"[{best_f1.low:.3f}, {best_f1.high:.3f}]"
        + (f"; HLP f1 {hlp_row.value.value:.3f}" if hlp_row and hlp_row.value is not None else ""),
    )

    estimators = {
        "logistic": ("sklearn.linear_model.LogisticRegression", {"max_iter": 2000}),
        # smaller leaves than the default 20, so the model can fit (and be sanity-checked on)
        # 32 rows
        "boosting": (
            "sklearn.ensemble.HistGradientBoostingClassifier",
            {"min_samples_leaf": 5, "random_state": seed},
        ),
    }
    checks = [
        sanity_check(project, estimator=path, params=params) for path, params in estimators.values()
    ]
    step(
        "sanity check",
        "; ".join(
            f"{name}: {'can overfit' if c.passed else 'FLAGGED'} 32 rows "
            f"(training accuracy {c.value:.3f})" + ("" if c.passed else f", likely {c.causes[0]}")
            for name, c in zip(estimators, checks, strict=True)
        ),
    )

    test.to_parquet(root / "test.parquet")
    previous: str | None = None
    for name, (path, params) in estimators.items():
        trained = train(
            project,
            estimator=path,
            params=params,
            name=name,
            n_single=50,
            against=previous,
            choose_threshold="recall >= 0.95",
            # the first model also reads its learning curve: would more data help?
            with_learning_curve=previous is None,
        )
        mv = trained.model
        assert mv is not None and mv.deployment is not None and mv.evaluation is not None
        dep = mv.deployment
        step(
            f"train {name}",
            f"{mv.ref} ({mv.id}): {dep.model_size_mb or 0:.3f} MB, latency p50 "
            f"{dep.latency_p50_ms:.2f} ms / p99 {dep.latency_p99_ms:.2f} ms, "
            f"{dep.throughput_rows_per_s:,.0f} rows/s"
            + ("" if dep.passed is not False else " (a deployment constraint FAILS)")
            + (f"; learning curve: {trained.curve.reading}" if trained.curve is not None else ""),
        )
        ev = load_evaluation(project, mv.evaluation)
        v = ev.verdict()
        failed = [c["constraint"] for c in v["constraints"] if c["passed"] is False]
        worst = min(
            (r for r in ev.slices() if not r.too_small), key=lambda r: r.metrics["f1"].value
        )
        step(
            f"evaluate {name}",
            f"{ev.id}: f1 {v['value']:.3f} [{v['low']:.3f}, {v['high']:.3f}]"
            + (f"; failed: {', '.join(failed)}" if failed else "; all constraints met")
            + f"; weakest slice {worst.slice} (f1 {worst.metrics['f1'].value:.3f}, "
            f"n={worst.support})"
            + (
                f"; threshold for recall >= 0.95: {ev.threshold_choice['threshold']:.3f}"
                if ev.threshold_choice
                else ""
            )
            + (
                f"; vs {previous}: f1 {_overall_difference(ev.comparison, 'f1')}"
                if previous and ev.comparison
                else ""
            ),
        )
        evaluations[name] = ev.id or ""
        previous = ev.id
    board = leaderboard(project)
    top = board.rows[:4]
    best_model = next((r for r in board.rows if r.kind == "model"), None)
    gap = best_model.gap_to_hlp if best_model is not None else None
    step(
        "leaderboard",
        ", ".join(f"{r.name} {r.value.value:.3f}" for r in top if r.value is not None)
        + (
            f"; best model {best_model.name} is {abs(gap):.3f} "
            + ("below" if gap > 0 else "above")
            + " HLP"
            if best_model is not None and gap is not None
            else ""
        ),
    )
    # -- error analysis, discovery and the audit of the newest model
    from loopml.analysis import analyze
    from loopml.audit import run_audit
    from loopml.discovery import discover_evaluation

    newest = evaluations[list(estimators)[-1]]
    priorities = analyze(newest, project=project)
    step(
        "analyze",
        priorities.readings[0] if priorities.readings else "no slice is below its reference",
    )
    found = discover_evaluation(project, newest, columns=["site", "scanner"], min_support=10)
    top_found = found.slices[0] if found.slices else None
    step(
        "discover",
        (
            f"top slice {top_found.expression} (error rate {top_found.error_rate.value:.3f} vs "
            f"{found.error_rate:.3f} overall, n={top_found.support}, adjusted p "
            f"{top_found.p_adjusted:.2g})"
        )
        if top_found is not None
        else found.nothing_found(),
    )
    audit = run_audit(newest, project=project)
    failed_checks = [c.name for c in audit.failures if c.status == "fail"]
    thin_checks = [c.name for c in audit.undecided]
    step(
        "audit",
        f"{audit.id}: {len(audit.checks) - len(audit.failures)} of {len(audit.checks)} checks "
        "pass"
        + (f"; FAILED: {', '.join(failed_checks)}" if failed_checks else "")
        + (f"; not enough data: {', '.join(thin_checks)}" if thin_checks else "")
        + "".join(f"; first: {f}" for f in audit.findings),
    )

    # -- the promotion gate: the better model becomes champion, the other is refused
    from loopml.evaluation import load_evaluation
    from loopml.registry import promote

    metric = project.spec.metric.optimizing
    order = sorted(
        evaluations,
        key=lambda k: load_evaluation(project, evaluations[k]).overall()[metric].value,
    )
    best_name, other_name = order[-1], order[0]
    first = promote(project, f"{best_name}@1")
    step(
        "promote" if first.move is not None else "gate refuses",
        first.decision.summary()
        + (f"; champion is now {first.move.model}" if first.move is not None else ""),
    )
    second = promote(project, f"{other_name}@1")
    step("promote" if second.move is not None else "gate refuses", second.decision.summary())
    if first.move is None:
        first = second

    # -- serve the champion, send traffic and feedback, read the log back (the ship stage);
    #    monitor the log against the champion's training rows (the watch stage), then the
    #    closed loop while the server keeps serving: drift in one site, labels, a retrain
    champion = (first.move.model if first.move is not None else None) or f"{best_name}@1"
    name = champion.partition("@")[0]

    def during(url: str) -> list[tuple[str, str]]:
        steps = [("monitor", _monitor_summary(project))]
        if name in estimators:
            steps += _closed_loop(project, root, url, estimators[name], name, seed=seed)
        return steps

    for stage, summary in _serve_and_log(root, test, seed=seed, during=during):
        step(stage, summary)

    # -- report and status (the see stage)
    from loopml.report import build_report
    from loopml.status import project_status

    report_path = build_report(project, None, root / "report.html")
    step("report", f"{report_path} (open it in a browser; it needs no network)")
    status = project_status(project)
    nxt = status.next
    step(
        "status",
        ", ".join(f"{r.stage} {r.state}" for r in status.rows)
        + (f"; next ({nxt.stage}): {nxt.next_action}" if nxt is not None else ""),
    )
    project.close()
    return DemoResult(root, steps=done, evaluations=evaluations, report=report_path)
