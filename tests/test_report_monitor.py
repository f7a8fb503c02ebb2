"""The report's monitoring section: the newest monitor record's drift heat map, performance
over time with the KPI, the alarm tables and the recommendation, for records with and
without the keys monitoring's second part adds; and one real ``monitor()`` run."""

from __future__ import annotations

import base64
import math
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loopml._lineage import utcnow
from loopml.project import Project, init_project, open_project
from loopml.report import render_report
from loopml.report._build import SECTIONS

START = datetime(2024, 3, 1, tzinfo=UTC)
FEATURES = ("age", "income", "country", "device", "plan")
RECOMMENDATION = {
    "stage": "data",
    "action": "Refresh the training data with recent rows and retrain.",
    "reason": "country drifted since 2024-03-09 and the estimated recall fell below 0.75",
    "slice": "region=north",
    "window": None,  # set to the ninth window's index by synthetic_payload
    "command": "loopml data add recent.parquet --name customers",
}
SECOND = {
    "stage": "labels",
    "action": "Label a sample of the newest windows.",
    "reason": "realized recall rests on 40 labels",
    "slice": None,
    "window": None,
    "command": None,
}


def synthetic_payload(
    n_windows: int = 12,
    features: tuple[str, ...] = FEATURES,
    *,
    new_keys: bool = True,
    seed: int = 0,
    hours: int = 24,
) -> dict[str, Any]:
    """A monitor payload in the stored shape (docs/monitor.md): drift on ``country`` from
    window 8, one share shift on ``device`` in window 5; with ``new_keys`` performance
    (realized until window 7, estimated throughout), the KPI and recommendations."""
    rng = np.random.default_rng(seed)
    base = first_index(hours)
    windows = [
        {
            "index": base + i,
            "rows": 1000 + 10 * i,
            "start": (START + timedelta(hours=hours * i)).isoformat(),
            "end": (START + timedelta(hours=hours * (i + 1))).isoformat(),
        }
        for i in range(n_windows)
    ]
    drift = []
    for i in range(n_windows):
        for f in features:
            threshold, shift_threshold = 0.02 + 0.001 * len(f), 3.2
            score = threshold * float(rng.uniform(0.2, 0.9))
            shift = shift_threshold * float(rng.uniform(0.1, 0.8))
            if f == "country" and i >= 8:
                score = threshold * (1.5 + 0.5 * (i - 8))
            if f == "device" and i == 5:
                shift = shift_threshold * 1.4
            drift.append(
                {
                    "window": base + i,
                    "feature": f,
                    "kind": "categorical",
                    "rows": windows[i]["rows"],
                    "score": score,
                    "null_median": threshold / 2,
                    "threshold": threshold,
                    "shift": shift,
                    "shift_median": 1.0,
                    "shift_threshold": shift_threshold,
                    "alarm": score > threshold or shift > shift_threshold,
                    "top_bin": "DE" if f == "country" else "b1",
                    "psi": score * 2,
                    "chi2": 1.0,
                    "chi2_p": 0.5,
                    "wasserstein": None,
                    "ks": None,
                    "ks_p": None,
                    "missing_share": 0.0,
                    "other_share": 0.0,
                }
            )
    payload: dict[str, Any] = {
        "data": "the prediction log",
        "reference": "customers@1:train",
        "rows_reference": 50_000,
        "window": f"{hours}h" if hours != 24 else "1d",
        "time": "ts",
        "alpha": 0.05,
        "draws": 400,
        "windows": windows,
        "drift": drift,
        "alerts": [
            {"window": d["window"], "feature": d["feature"], "score": d["score"]}
            for d in drift
            if d["alarm"]
        ],
        "features": [{"name": f, "kind": "categorical"} for f in features],
        "findings": ["plan: missing from production (the prediction log has no column 'plan')"],
        "record_id": None,
    }
    if not new_keys:
        return payload
    perf = []
    for i in range(n_windows):
        for slice_ in ("all", "region=north"):
            if i < 8:
                v = 0.82 + 0.01 * math.sin(i)
                perf.append(
                    {"window": base + i, "metric": "recall", "kind": "realized", "slice": slice_,
                     "rows": 300, "value": v, "low": v - 0.04, "high": v + 0.04,
                     "reference": 0.83, "bound": 0.75, "alarm": False}
                )  # fmt: skip
            e = 0.81 - (0.035 * (i - 7) if i >= 8 else 0.0)
            perf.append(
                {"window": base + i, "metric": "recall", "kind": "estimated", "slice": slice_,
                 "rows": windows[i]["rows"], "value": e, "low": e - 0.05, "high": e + 0.05,
                 "reference": 0.83, "bound": 0.75, "alarm": e < 0.75}
            )  # fmt: skip
        p = 0.9 - 0.005 * i
        perf.append(
            {"window": base + i, "metric": "precision", "kind": "estimated", "slice": "all",
             "rows": windows[i]["rows"], "value": p, "low": None, "high": None,
             "reference": 0.91, "bound": None, "alarm": False}
        )  # fmt: skip
    payload["performance"] = perf
    payload["kpi"] = [
        {"window": base + i, "rows": 200, "value": 12.0 - 0.4 * max(0, i - 7),
         "low": 11.0 - 0.4 * max(0, i - 7), "high": 13.0 - 0.4 * max(0, i - 7)}
        for i in range(n_windows)
    ]  # fmt: skip
    payload["recommendation"] = {**RECOMMENDATION, "window": base + 8}
    payload["recommendations"] = [dict(payload["recommendation"]), dict(SECOND)]
    return payload


def first_index(hours: int = 24) -> int:
    """The first window's index as monitor numbers windows of time: since 1970-01-01."""
    return int(START.timestamp()) // (hours * 3600)


def set_champion(project: Project, model: str = "churn@1") -> None:
    project.store.put(
        "alias",
        "champion",
        {"alias": "champion", "model": model, "model_id": "model-1", "when": utcnow()},
    )


def section(html: str, sid: str = "monitoring") -> str:
    return html.split(f'<section id="{sid}">')[1].split("</section>")[0]


def table_rows(html: str, heading: str) -> list[list[str]]:
    """The body rows (cell text) of the table after the ``<h3>`` starting with ``heading``."""
    part = html.split(f"<h3>{heading}")[1].split("</table>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", part)[1:]
    return [
        [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", r)] for r in rows
    ]


def ratio_oracle(d: dict[str, Any]) -> float:
    js = float(d["score"]) / float(d["threshold"])
    return min(max(js, float(d["shift"]) / float(d["shift_threshold"])), 3.0)


@pytest.fixture
def project(tmp_path: Path) -> Any:
    init_project(tmp_path / "p", task="binary").close()
    with open_project(tmp_path / "p") as p:
        yield p


# --------------------------------------------------------------------------- no record


def test_without_a_record_one_line_names_loopml_monitor(project: Project) -> None:
    rep = render_report(project)
    assert SECTIONS[-1] == ("monitoring", "Monitoring: drift, performance and KPI")
    body = section(rep.html)
    assert "<code>loopml monitor</code>" in body and "<img" not in body
    # nothing is deployed: not a stage left undone
    assert "monitoring" not in rep.placeholders
    assert not {f.name for f in rep.figures} & {"monitor_drift", "monitor_performance"}
    set_champion(project)
    rep = render_report(project)
    assert rep.placeholders["monitoring"] == (
        "the champion churn@1 is not monitored yet: run `loopml monitor`"
    )


# --------------------------------------------------------------------------- old records


def test_a_drift_only_record_gives_the_heat_map_and_the_alarm_table(project: Project) -> None:
    payload = synthetic_payload(new_keys=False)
    base = first_index()
    rec = project.store.put("monitor", "monitor", payload)
    rep = render_report(project)
    body = section(rep.html)
    assert body.count("<img") == 1 and 'alt="drift heat map"' in body
    assert f"{rec.id} of " in body and "12 window(s) of 1d" in body
    assert "50,000 rows" in body and "predates them" in body
    fig = rep.figure("monitor_drift")
    assert fig.data["windows"] == [f"2024-03-{d:02d}" for d in range(1, 13)]
    assert fig.data["features"] == list(FEATURES)
    for d in payload["drift"]:
        i, j = FEATURES.index(d["feature"]), d["window"] - base
        assert fig.data["ratio"][i][j] == pytest.approx(ratio_oracle(d))
        assert fig.data["alarm"][i][j] is d["alarm"]
    # the alarms: country from window 8 (JS) and device in window 5 (share shift)
    alarms = sorted((d["window"] - base, d["feature"]) for d in payload["drift"] if d["alarm"])
    assert alarms == [(5, "device")] + [(w, "country") for w in range(8, 12)]
    rows = table_rows(body, "Drift alarms")
    assert [(r[0], r[1]) for r in rows] == [(f"2024-03-{w + 1:02d}", f) for w, f in alarms]
    country8 = next(
        d for d in payload["drift"] if d["window"] == base + 8 and d["feature"] == "country"
    )
    assert rows[1][3] == f"{country8['score']:.4f}" and rows[1][4] == f"{country8['threshold']:.4f}"
    assert "Drift alarms (5)" in body and "Performance alarms" not in body
    # the table says alarms are per pair and the recommendation decides family-wise
    assert f"false-alarm rate of {payload['alpha']:g}" in body
    assert "divided by the number of features times the windows judged" in body
    assert "plan: missing from production" in body  # the findings
    assert "monitor_performance" not in {f.name for f in rep.figures}
    assert "monitoring" not in rep.placeholders


# --------------------------------------------------------------------------- new keys


def test_performance_kpi_and_the_recommendation(project: Project) -> None:
    payload = synthetic_payload()
    base = first_index()
    project.store.put("monitor", "monitor", payload)
    rep = render_report(project)
    body = section(rep.html)
    assert body.count("<img") == 2
    assert 'alt="drift heat map"' in body and 'alt="performance over time and KPI"' in body
    for src in re.findall(r'src="data:image/png;base64,([^"]+)"', body):
        assert base64.b64decode(src)[:8] == b"\x89PNG\r\n\x1a\n"
    fig = rep.figure("monitor_performance")
    assert [m["metric"] for m in fig.data["metrics"]] == ["recall", "precision"]
    recall, precision = fig.data["metrics"]
    assert recall["slice"] == "all" and (recall["reference"], recall["bound"]) == (0.83, 0.75)
    for p in payload["performance"]:
        if p["slice"] != "all":
            continue
        m = recall if p["metric"] == "recall" else precision
        s = m[p["kind"]]
        j = p["window"] - base
        assert s["value"][j] == pytest.approx(p["value"])
        assert s["low"][j] == (pytest.approx(p["low"]) if p["low"] is not None else None)
        assert s["alarm"][j] is p["alarm"]
    assert recall["realized"]["value"][8:] == [None] * 4  # labels had not arrived
    assert precision["realized"] is None and precision["bound"] is None
    assert fig.data["kpi"]["value"] == pytest.approx([k["value"] for k in payload["kpi"]])
    assert "95% interval" in fig.title and "KPI" in fig.title
    # performance alarms: estimated recall under 0.75, on both slices
    expected = sorted(
        (p["window"] - base, p["slice"]) for p in payload["performance"] if p["alarm"]
    )
    assert len(expected) == 6 and {w for w, _ in expected} == {9, 10, 11}
    rows = table_rows(body, "Performance alarms")
    assert [(r[0], r[3]) for r in rows] == [(f"2024-03-{w + 1:02d}", s) for w, s in expected]
    first = next(p for p in payload["performance"] if p["alarm"] and p["slice"] == "all")
    row = rows[0]
    assert row[1:3] == ["recall", "estimated"]
    assert row[5] == f"{first['value']:.4f}"
    assert row[6] == f"[{first['low']:.4f}, {first['high']:.4f}]"
    assert row[7:] == ["0.8300", "0.7500"]
    # the recommendation in words, then the other rule that fired
    rec_html = body.split("<h3>Recommendation</h3>")[1].split('<div class="figs">')[0]
    assert '<div class="warn"><b>Go back to data</b>: Refresh the training data' in rec_html
    assert f"Why: {RECOMMENDATION['reason']}" in rec_html
    assert "slice <code>region=north</code>, window 2024-03-09" in rec_html
    assert "<code>loopml data add recent.parquet --name customers</code>" in rec_html
    assert "<li><b>Go back to labels</b>: Label a sample of the newest windows." in rec_html


@pytest.mark.parametrize(
    ("stage", "css", "words"),
    [("none", "good", "Nothing to do"), ("not enough data", "note", "Not enough data yet")],
)
def test_calm_recommendations_are_not_warnings(
    project: Project, stage: str, css: str, words: str
) -> None:
    payload = synthetic_payload()
    calm = {"stage": stage, "action": "Keep watching.", "reason": "", "slice": None,
            "window": None, "command": None}  # fmt: skip
    payload["recommendation"], payload["recommendations"] = calm, [calm]
    del payload["kpi"]
    project.store.put("monitor", "monitor", payload)
    rep = render_report(project)
    body = section(rep.html)
    assert f'<div class="{css}"><b>{words}</b>: Keep watching.</div>' in body
    assert 'class="warn"' not in body and "Other rules" not in body
    fig = rep.figure("monitor_performance")
    assert fig.data["kpi"] is None and fig.alt == "performance over time"


def test_the_newest_record_is_shown_and_names_are_escaped(project: Project) -> None:
    project.store.put("monitor", "monitor", synthetic_payload(new_keys=False))
    newer = synthetic_payload(n_windows=3, features=("<b>x</b>", "y"), hours=6)
    newer["recommendations"] = [dict(SECOND)]  # a list without "recommendation"
    newer["drift"][2]["score"], newer["drift"][2]["alarm"] = 1.0, True  # window 1, <b>x</b>
    assert (
        newer["drift"][2]["feature"] == "<b>x</b>"
        and newer["drift"][2]["window"] == first_index(6) + 1
    )
    rec = project.store.put("monitor", "monitor", newer)
    rep = render_report(project)
    body = section(rep.html)
    assert f"{rec.id} of " in body and "3 window(s) of 6h" in body
    assert "<b>x</b>" not in body and "&lt;b&gt;x&lt;/b&gt;" in body
    assert "<b>Go back to labels</b>" in body
    # windows of 6 hours are labelled with their time
    assert rep.figure("monitor_drift").data["windows"] == [
        "2024-03-01 00:00",
        "2024-03-01 06:00",
        "2024-03-01 12:00",
    ]


def test_many_features_keep_the_most_drifted(project: Project) -> None:
    features = tuple(f"feature_{i:02d}_with_a_long_descriptive_name" for i in range(60))
    payload = synthetic_payload(n_windows=40, features=features, new_keys=False)
    for d in payload["drift"]:
        if d["feature"].startswith(("feature_07", "feature_51")):
            d["score"], d["alarm"] = d["threshold"] * 2.5, True
    project.store.put("monitor", "monitor", payload)
    rep = render_report(project)
    fig = rep.figure("monitor_drift")
    assert len(fig.data["features"]) == 40 and "the 40 most drifted of 60 features" in fig.title
    kept = fig.data["features"]
    assert kept == sorted(kept)  # record order
    assert {features[7], features[51]} <= set(kept)
    assert len(fig.data["windows"]) == 40


# --------------------------------------------------------------------------- figures


def test_no_text_falls_off_the_monitor_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    from loopml.report import _figures as F
    from loopml.report import _monitor as M
    from test_figures import _outside

    figs: list[Any] = []
    original = F._png

    def keep(fig: Any, **kwargs: Any) -> str:
        figs.append(fig)
        return original(fig, **kwargs)

    monkeypatch.setattr(F, "_png", keep)
    long = ["region=north-east-coastal-district & scanner=siemens-magnetom", "short"]
    labels = [f"2024-03-{d:02d} 06:00" for d in range(1, 31)]
    M.drift_heatmap_figure(labels, long, [[0.5] * 30, [None] * 29 + [3.0]],
                           [[False] * 30, [False] * 29 + [True]])  # fmt: skip
    series = {
        "value": np.linspace(0.7, 0.8, 30),
        "low": np.linspace(0.6, 0.7, 30),
        "high": np.linspace(0.8, 0.9, 30),
        "alarm": np.arange(30) > 25,
    }
    M.performance_figure(
        labels,
        [{"metric": "precision_at_recall_0.95_with_a_long_custom_metric_name",
          "slice": long[0], "realized": series, "estimated": series,
          "reference": 0.8, "bound": 0.7}],
        series,
        confidence=0.9,
    )  # fmt: skip
    assert len(figs) == 2
    for fig in figs:
        assert _outside(fig) == []


# --------------------------------------------------------------------------- a real run


def test_a_real_monitor_run_is_drawn_as_stored(project: Project) -> None:
    import pyarrow as pa

    from loopml.monitor import monitor
    from monitor.monitor_helpers import make_stream

    ref = make_stream(np.random.default_rng(0), 5_000)
    calm = make_stream(np.random.default_rng(1), 2_880, seconds=60.0)
    moved = make_stream(np.random.default_rng(2), 1_440, shift=0.5, seconds=60.0)
    ts = pa.array(
        np.asarray(moved["ts"].cast(pa.int64())) + 2 * 86_400 * 10**6,
        pa.timestamp("us", tz="UTC"),
    )
    cur = pa.concat_tables([calm, moved.set_column(moved.schema.get_field_index("ts"), "ts", ts)])
    res = monitor(project, data=cur, time="ts", window="1d", reference=ref,
                  columns=["num", "count", "c10"])  # fmt: skip
    assert res.record_id is not None
    rep = render_report(project)
    fig = rep.figure("monitor_drift")
    assert fig.data["windows"] == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert fig.data["features"] == ["num", "count", "c10"]
    pos = {w.index: j for j, w in enumerate(res.windows)}
    assert len(pos) == 3
    for d in res.drift:
        i, j = fig.data["features"].index(d.feature), pos[d.window]
        want = min(max(d.score / d.threshold, d.shift / d.shift_threshold), 3.0)
        assert fig.data["ratio"][i][j] == pytest.approx(want)
        assert fig.data["alarm"][i][j] is d.alarm
    assert any(a.feature == "num" and pos[a.window] == 2 for a in res.alerts)
    rows = table_rows(section(rep.html), "Drift alarms")
    assert sorted((r[0], r[1]) for r in rows) == sorted(
        (f"2024-01-{pos[a.window] + 1:02d}", a.feature) for a in res.alerts
    )
    assert f"{res.record_id} of " in section(rep.html)
