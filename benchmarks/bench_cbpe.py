"""Performance estimation: loopml's CBPE side by side with NannyML's, on NannyML's data.

NannyML (0.13, in its own venv: it pins its own pandas and scikit-learn) runs in a child
process, ``benchmarks/_nannyml_peer.py``, which writes each dataset's reference and analysis
rows (targets joined by id) as Parquet with its results as JSON: per chunk of 5,000
analysis rows in time order, the CBPE estimate and the realized value of roc_auc, f1,
precision, recall and accuracy, and univariate drift (its defaults: Jensen-Shannon, an
alert above mean + 3 std of the reference chunks). Then loopml's ``monitor`` reads the same
Parquet files with windows of ``5000rows`` (cut in time order: window i is NannyML's chunk
i), and this prints per dataset:

- the mean and max absolute error, over the chunks, of each tool's estimate against the
  realized value (NannyML's PerformanceCalculator on the analysis labels; loopml's own
  realized value is checked against it);
- timings: NannyML's CBPE fit + estimate, realized performance and drift (median of
  --repeat, on frames in memory) against one loopml ``monitor`` call that does all three
  from the Parquet files (reading included; median of --repeat after one untimed warm-up
  call); the ratio NannyML / loopml (target >= 5x); and, for the breakdown, loopml's
  ``monitor`` without the performance arguments (drift alone) beside NannyML's drift;
- drift alerts per (chunk, feature): both alarm, only loopml, only NannyML, neither.

Datasets: NannyML's synthetic binary ("work from home"), synthetic car loan and US census
MA employment; --quick runs only the first.

    python benchmarks/bench_cbpe.py [--quick] [--repeat 3] [--out DIR] [--reuse]

NannyML's venv: ``python3 -m venv /tmp/nannyml-venv && /tmp/nannyml-venv/bin/pip install
"nannyml==0.13.*" statsmodels`` (or --nannyml-python PATH).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
PEER = ROOT / "_nannyml_peer.py"
NANNYML_PYTHON = Path("/tmp/nannyml-venv/bin/python")
DATASETS = ("synthetic_binary", "car_loan", "us_census")
METRICS = ("roc_auc", "f1", "precision", "recall", "accuracy")
TARGET_RATIO = 5.0
# loopml's metric names, should they differ from NannyML's
ALIASES = {"roc_auc": ("roc_auc", "auc", "auroc")}


# --------------------------------------------------------------------------- NannyML


def run_peer(out: Path, *, quick: bool, repeat: int, python: Path) -> None:
    if not python.exists():
        sys.exit(
            f"NannyML's venv is missing ({python}): python3 -m venv /tmp/nannyml-venv && "
            '/tmp/nannyml-venv/bin/pip install "nannyml==0.13.*" statsmodels'
        )
    cmd = [str(python), str(PEER), "--out", str(out), "--repeat", str(repeat)]
    if quick:
        cmd.append("--quick")
    env = dict(os.environ, NML_DISABLE_USAGE_LOGGING="1")
    print("NannyML (child process) ...", flush=True)
    subprocess.run(cmd, check=True, env=env)


def load_peer(out: Path, name: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((out / f"{name}.json").read_text())
    return result


# --------------------------------------------------------------------------- loopml


@dataclass
class LoopmlRun:
    """loopml's side of one dataset; ``error`` says why a part is missing."""

    seconds: float | None = None
    drift_seconds: float | None = None  # full mode: monitor without the performance part
    times: list[float] = field(default_factory=list)
    mode: str = "full"  # "full" (performance and drift) or "drift" (drift only)
    windows: list[int] = field(default_factory=list)  # rows per window
    estimated: dict[tuple[int, str], float | None] = field(default_factory=dict)
    realized: dict[tuple[int, str], float | None] = field(default_factory=dict)
    alarms: dict[tuple[int, str], bool] = field(default_factory=dict)
    alert: dict[tuple[int, str], bool] = field(default_factory=dict)  # estimate alarms
    label_change: float | None = None  # see label_blind
    error: str | None = None


def _monitor_kwargs(peer: dict[str, Any], *, performance: bool) -> dict[str, Any]:
    cols = peer["columns"]
    kwargs: dict[str, Any] = {
        "data": peer["files"]["analysis"],
        "reference": peer["files"]["reference"],
        "window": f"{peer['chunk_size']}rows",
        "time": cols["timestamp"],
        "columns": list(cols["features"]),
        "store": False,
    }
    if performance:
        kwargs |= {
            "task": "binary",
            "label": cols["label"],
            "score": cols["score"],
            "prediction": cols["prediction"],
        }
    return kwargs


def _timed(kwargs: dict[str, Any], repeat: int) -> tuple[Any, list[float]]:
    from loopml.monitor import monitor

    times, res = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = monitor(None, **kwargs)
        times.append(time.perf_counter() - t0)
    return res, times


def run_loopml(peer: dict[str, Any], repeat: int) -> LoopmlRun:
    """loopml.monitor on the peer's Parquet files and chunks. Until monitor takes the
    performance arguments (a TypeError), the drift alone, so the drift table still shows."""
    import inspect

    from loopml.monitor import monitor

    run = LoopmlRun()
    params = inspect.signature(monitor).parameters
    missing = [p for p in ("task", "label", "score", "prediction") if p not in params]
    if missing:
        run.error = f"not available yet (TypeError: monitor() takes no {missing[0]!r})"
        run.mode = "drift"
    try:
        res, times = _timed(_monitor_kwargs(peer, performance=run.mode == "full"), 1)
    except Exception as exc:
        what = "drift alone failed" if run.mode == "drift" else "failed"
        run.error = (
            run.error + "; " if run.error else ""
        ) + f"{what} ({type(exc).__name__}: {exc})"
        return run
    # the first call above is a warm-up (imports, the engine's first connection), not timed
    res, times = _timed(_monitor_kwargs(peer, performance=run.mode == "full"), repeat)
    run.times = times
    run.seconds = statistics.median(times)
    if run.mode == "full":
        # drift alone, for the breakdown; monitor may refuse it (it takes a column named
        # like an outcome, e.g. "prediction", for one and then wants the task)
        with contextlib.suppress(Exception):
            _, drift_times = _timed(_monitor_kwargs(peer, performance=False), repeat)
            run.drift_seconds = statistics.median(drift_times)
    run.windows = [int(w.rows) for w in sorted(res.windows, key=lambda w: w.index)]
    for d in res.drift:
        run.alarms[(int(d.window), str(d.feature))] = bool(d.alarm)
    if run.mode == "full":
        for row in res.performance_rows():
            if row.get("slice", "all") != "all":
                continue
            key = (int(row["window"]), _metric_name(str(row["metric"])))
            value = row.get("value")
            target = run.estimated if row["kind"] == "estimated" else run.realized
            target[key] = None if value is None else float(value)
            if row["kind"] == "estimated" and row.get("alarm") is not None:
                run.alert[key] = bool(row["alarm"])
    return run


def label_blind(peer: dict[str, Any], run: LoopmlRun) -> float | None:
    """The largest change of loopml's estimates when the analysis labels are permuted: 0
    when the estimate uses the reference's labels only, as CBPE does."""
    import numpy as np
    import pandas as pd

    if run.mode != "full" or not run.estimated:
        return None
    label = peer["columns"]["label"]
    frame = pd.read_parquet(peer["files"]["analysis"])
    frame[label] = np.random.default_rng(0).permutation(frame[label].to_numpy())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "permuted.parquet"
        frame.to_parquet(path, index=False)
        kwargs = _monitor_kwargs(peer, performance=True) | {"data": str(path)}
        res, _ = _timed(kwargs, 1)
    other = {
        (int(r["window"]), _metric_name(str(r["metric"]))): r.get("value")
        for r in res.performance_rows()
        if r["kind"] == "estimated" and r.get("slice", "all") == "all"
    }
    diffs = []
    for key, v in run.estimated.items():
        w = other.get(key)
        if v is None or w is None:
            diffs.append(0.0 if v is None and w is None else math.inf)
        else:
            diffs.append(abs(v - float(w)))
    return max(diffs, default=0.0)


def _metric_name(name: str) -> str:
    for ours, names in ALIASES.items():
        if name.lower() in names:
            return ours
    return name.lower()


# --------------------------------------------------------------------------- comparison


def _errors(
    estimated: dict[int, float | None], realized: dict[int, float | None]
) -> tuple[float, float, int] | None:
    """Mean and max |estimated - realized| over the chunks both have, and their number."""
    diffs = [
        abs(e - r)
        for i, e in estimated.items()
        if e is not None and (r := realized.get(i)) is not None
    ]
    if not diffs:
        return None
    return statistics.fmean(diffs), max(diffs), len(diffs)


def _fmt_err(err: tuple[float, float, int] | None, n: int) -> str:
    if err is None:
        return f"{'-':>8} {'-':>8}"
    mean, mx, k = err
    mark = "" if k == n else "*"
    return f"{mean:8.4f} {mx:8.4f}{mark}"


def compare(peer: dict[str, Any], run: LoopmlRun) -> dict[str, Any]:
    """Print one dataset's comparison; return the numbers for the summary."""
    cols, chunks = peer["columns"], peer["chunks"]
    n = len(chunks)
    rows_nml = [int(c["rows"]) for c in chunks]
    feats = list(cols["features"])
    print()
    print(f"== {peer['dataset']}")
    print(
        f"   rows: reference {peer['rows']['reference']:,}, analysis "
        f"{peer['rows']['analysis']:,} in {n} chunks of {peer['chunk_size']:,}"
    )
    print(
        f"   score {cols['score']}, prediction {cols['prediction']}, label {cols['label']}, "
        f"time {cols['timestamp']}"
        if len(cols["score"] + cols["prediction"] + cols["label"] + cols["timestamp"]) < 44
        else f"   score {cols['score']}, prediction {cols['prediction']}\n"
        f"   label {cols['label']}, time {cols['timestamp']}"
    )
    print(
        f"   features: {len(feats)} ({len(cols['continuous'])} continuous, "
        f"{len(cols['categorical'])} categorical)"
    )
    aligned = set(range(n))
    if run.windows and run.windows != rows_nml:
        aligned = {i for i in range(min(n, len(run.windows))) if run.windows[i] == rows_nml[i]}
        print(
            f"   ! loopml's windows ({len(run.windows)}) differ from NannyML's chunks "
            f"({n}); compared where the rows agree: {len(aligned)}"
        )

    truth = {m: {c["index"]: c["realized"][m]["value"] for c in chunks} for m in METRICS}
    nml_est = {m: {c["index"]: c["estimated"][m]["value"] for c in chunks} for m in METRICS}
    out: dict[str, Any] = {"dataset": peer["dataset"], "errors": {}}

    print(f"   |estimated - realized| per chunk ({n} chunks; realized: NannyML's")
    print("   PerformanceCalculator on the analysis labels)")
    partial = False
    print(f"   {'':<10} {'NannyML':>8} {'':>8}  {'loopml':>8} {'':>8}  {'loopml - NannyML':>17}")
    print(
        f"   {'metric':<10} {'mean':>8} {'max':>8}  {'mean':>8} {'max':>8}  "
        f"{'estim.':>8} {'realiz.':>8}"
    )
    for m in METRICS:
        e_nml = _errors(nml_est[m], truth[m])
        loop_est = {i: v for (i, mm), v in run.estimated.items() if mm == m and i in aligned}
        loop_real = {i: v for (i, mm), v in run.realized.items() if mm == m and i in aligned}
        e_loop = _errors(loop_est, truth[m]) if loop_est else None
        gap_est = _errors(loop_est, nml_est[m]) if loop_est else None
        gap_real = _errors(loop_real, truth[m]) if loop_real else None
        out["errors"][m] = {"nannyml": e_nml, "loopml": e_loop}
        gaps = " ".join(f"{g[1]:8.1e}" if g else f"{'-':>8}" for g in (gap_est, gap_real))
        print(f"   {m:<10} {_fmt_err(e_nml, n)}  {_fmt_err(e_loop, n)}  {gaps}")
        partial = partial or any(e is not None and e[2] < n for e in (e_nml, e_loop))
    print("   (the last two: max |loopml - NannyML| of the estimate and of the realized")
    print("   value; '-': not reported by loopml)")
    if run.label_change is not None:
        ok = "ok" if run.label_change == 0 else "USES THEM"
        print(
            "   loopml, analysis labels permuted: estimates change by "
            f"{run.label_change:.1e} ({ok})"
        )
    if partial:
        print("   * over fewer chunks (a value missing or windows not aligned)")
    shown = [m for m in METRICS if any(mm == m for (_, mm) in run.alert)]
    nml_alerts = {
        (c["index"], m) for c in chunks for m in (shown or METRICS) if c["estimated"][m]["alert"]
    }
    if shown:
        loop_alerts = {k for k, a in run.alert.items() if a and k[0] in aligned}
        both = len(nml_alerts & loop_alerts)
        print(
            f"   estimate alerts ({', '.join(shown)}): NannyML {len(nml_alerts)}, "
            f"loopml {len(loop_alerts)}, both {both} of {n * len(shown)}"
        )
    else:
        print(f"   NannyML CBPE alerts: {len(nml_alerts)} of {n * len(METRICS)} (chunk, metric)")
    if run.error:
        text = f"loopml: {run.error}"
        print(textwrap.fill(text[:400], 80, initial_indent="   ", subsequent_indent="     "))

    t = peer["timings"]
    nml_total = float(t["total_s"])
    loop_n = f", loopml {len(run.times)}" if run.times else ""
    _line(f"timings, s (median of {t['repeat']}{loop_n})", "NannyML", "loopml")
    _line("CBPE fit + estimate", t["cbpe_fit_estimate_s"])
    _line("realized performance", t["realized_fit_calculate_s"])
    label = f"drift, {len(feats)} features" + (" (loopml: drift only)" if run.drift_seconds else "")
    _line(label, t["drift_fit_calculate_s"], run.drift_seconds)
    ratio: float | None = None
    if run.seconds is not None:
        full = run.mode == "full"
        nml_side = nml_total if full else float(t["drift_fit_calculate_s"])
        _line(
            "all three (loopml: one call)" if full else "drift (loopml: monitor)",
            nml_side,
            run.seconds,
        )
        ratio = nml_side / run.seconds
        ok = "ok" if ratio >= TARGET_RATIO else "BELOW target"
        print(f"   ratio NannyML / loopml: {ratio:.1f}x (target >= {TARGET_RATIO:g}x: {ok})")
    else:
        _line("total", nml_total)
    out["ratio"] = ratio
    out["mode"] = run.mode

    nml_alarm: dict[tuple[int, str], bool] = {}
    for r in peer["drift"]["rows"]:
        key = (int(r["chunk"]), str(r["feature"]))
        nml_alarm[key] = nml_alarm.get(key, False) or bool(r["alert"])
    if run.alarms:
        table = {"both": 0, "only loopml": 0, "only NannyML": 0, "neither": 0}
        per_feature: dict[str, int] = {}
        for key, a_nml in nml_alarm.items():
            if key[0] not in aligned or key not in run.alarms:
                continue
            a_loop = run.alarms[key]
            cell = (
                "both"
                if a_nml and a_loop
                else "only loopml"
                if a_loop
                else "only NannyML"
                if a_nml
                else "neither"
            )
            table[cell] += 1
            if a_nml != a_loop:
                per_feature[key[1]] = per_feature.get(key[1], 0) + 1
        total = sum(table.values())
        print(f"   drift alerts per (chunk, feature), {total} pairs:")
        print("   " + ", ".join(f"{k} {v}" for k, v in table.items()))
        if per_feature:
            worst = sorted(per_feature.items(), key=lambda kv: -kv[1])[:3]
            print("   disagree most: " + ", ".join(f"{f} ({k})" for f, k in worst))
        out["drift"] = table
    else:
        print(f"   NannyML drift alerts: {sum(nml_alarm.values())} of {len(nml_alarm)} pairs")
    return out


def _line(label: str, a: float | str, b: float | str | None = None) -> None:
    cells = [f"{v:>10}" if isinstance(v, str) else f"{v:10.3f}" for v in (a, b) if v is not None]
    print(f"   {label:<40}" + "".join(cells))


def summary(results: list[dict[str, Any]]) -> None:
    print()
    print("== summary: mean |estimated - realized| of roc_auc; time ratio NannyML / loopml")
    print(f"   {'dataset':<18} {'NannyML':>9} {'loopml':>9} {'ratio':>8}")
    for r in results:
        e = r["errors"]["roc_auc"]
        nml = f"{e['nannyml'][0]:.4f}" if e["nannyml"] else "-"
        loop = f"{e['loopml'][0]:.4f}" if e["loopml"] else "-"
        ratio = f"{r['ratio']:.1f}x" if r["ratio"] is not None else "-"
        if r["ratio"] is not None and r["mode"] != "full":
            ratio += " (drift)"
        print(f"   {r['dataset']:<18} {nml:>9} {loop:>9} {ratio:>8}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the synthetic binary set")
    parser.add_argument("--repeat", type=int, default=3, choices=range(1, 100), metavar="N")
    parser.add_argument("--out", type=Path, help="keep NannyML's files here (default: temp)")
    parser.add_argument(
        "--reuse", action="store_true", help="reuse NannyML's results already in --out"
    )
    parser.add_argument("--nannyml-python", type=Path, default=NANNYML_PYTHON)
    args = parser.parse_args()
    if args.reuse and args.out is None:
        parser.error("--reuse needs --out DIR")
    names = DATASETS[:1] if args.quick else DATASETS
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        if not (args.reuse and all((out / f"{n}.json").exists() for n in names)):
            run_peer(out, quick=args.quick, repeat=args.repeat, python=args.nannyml_python)
        results = []
        for name in names:
            peer = load_peer(out, name)
            print(f"loopml on {name} ...", flush=True)
            run = run_loopml(peer, args.repeat)
            run.label_change = label_blind(peer, run)
            results.append(compare(peer, run))
        summary(results)


if __name__ == "__main__":
    main()
