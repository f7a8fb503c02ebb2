"""Evaluation speed: loopml's full evaluation side by side with its peers, in one run.

A seeded table: binary labels with 5% positives, predictions agreeing with the label 90%
of the time, scores, and 8 slice columns of cardinality 2, 3, 5, 10, 20, 50, 100, 1000.

    python benchmarks/bench_eval.py [--rows 10000000] [--repeat 5] [--no-fairlearn] [--cli-only]

Timed, each as the median of --repeat runs:
- loopml: evaluate() with every metric for the whole table and for all 8 slice columns,
  intervals included (Wilson for proportions, the count bootstrap for F1), nothing stored;
- numpy floor: np.bincount of the confusion counts of each slice column (the least work any
  tool must do);
- numpy, same outputs: np.bincount of everything loopml's engine returns (confusion counts,
  score histograms with score sums, exact log-loss and Brier sums per slice value, and the
  fine overall histogram): the floor for the same count tensors;
- pandas, same outputs: groupby of every slice column by (label, prediction, score bin)
  with count and the score, log-loss and Brier sums, plus the fine overall histogram;
- polars, same outputs: the same group_by aggregations in polars;
- the decision work: ``ev.slices()`` (metrics and intervals of every slice) on the stored
  counts, as a share of the whole evaluation;
- peak memory of one evaluation at --rows, in a child process reading the same rows from
  Parquet (resident set size above the loaded table);
- fairlearn: MetricFrame (accuracy, precision, recall, f1) on 1M rows and the four smallest
  slice columns (it is slow; it would take minutes on the full table);
- the command line: ``loopml eval`` on a --cli-rows Parquet file with two slice columns
  (5 and 20 values) in a fresh project, as a child process (the ``loopml`` script, wall time
  from start to exit, imports included; with bytecode cached as after ``pip install``, and
  with the environment as it is), against the same work in process (open the project,
  ``evaluate()`` with the record stored, the verdict, metrics and slices the command prints),
  and a child that only imports the libraries the command needs (numpy, duckdb, pydantic,
  typer, rich): no command line run can be faster than that plus the work.
  ``--cli-only`` runs this part alone.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

CARDINALITIES = (2, 3, 5, 10, 20, 50, 100, 1000)


def make_table(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.05).astype(np.int8)
    agree = rng.random(n) < 0.9
    pred = np.where(agree, y, 1 - y).astype(np.int8)
    score = np.clip(np.where(pred == 1, rng.beta(5, 2, n), rng.beta(2, 5, n)), 0.0, 1.0)
    cols: dict[str, Any] = {"id": np.arange(n), "label": y, "prediction": pred, "score": score}
    for i, card in enumerate(CARDINALITIES):
        cols[f"s{i}_{card}"] = rng.integers(0, card, n).astype(np.int32)
    return pd.DataFrame(cols)


def median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


_CHILD = """
import resource, sys
import pyarrow.parquet as pq
table = pq.read_table(sys.argv[1])
import os
with open("/proc/self/statm") as f:  # resident pages now (the table is loaded)
    before = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024
from loopml.evaluation import evaluate
ev = evaluate(table, task="binary", optimizing="f1", constraints=["recall >= 0.5"],
              slices=sys.argv[2].split(","), store=False)
ev.overall(); ev.slices()
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)  # KiB -> MiB
"""


def _peak_memory(df: pd.DataFrame, slice_cols: list[str]) -> float:
    """MiB of peak resident memory an evaluation adds above its loaded input table (Linux:
    the resident set after loading, from /proc, against the peak after evaluating)."""
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rows.parquet"
        df.to_parquet(path)
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path), ",".join(slice_cols)],
            capture_output=True,
            text=True,
            check=True,
        )
    return float(out.stdout.strip().splitlines()[-1])


def _cli_table(n: int, seed: int = 1) -> pd.DataFrame:
    """Predictions, labels and two slice columns (5 and 20 values) in one table."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.05).astype(np.int8)
    pred = np.where(rng.random(n) < 0.9, y, 1 - y).astype(np.int8)
    score = np.clip(np.where(pred == 1, rng.beta(5, 2, n), rng.beta(2, 5, n)), 0.0, 1.0)
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "label": y,
            "prediction": pred,
            "score": score,
            "region": rng.integers(0, 5, n).astype(str),
            "segment": rng.integers(0, 20, n),
        }
    )


#: what ``loopml eval`` cannot run without, imported and nothing else: its floor
_LIBRARIES = (
    "import numpy, numpy.random, duckdb, rich.console, rich.table, typer; "
    "from pydantic import BaseModel, TypeAdapter"
)

#: the in-process work once in a fresh process (imports done first, not timed): what a first
#: run costs that a warm loop hides (DuckDB's first query, fresh memory, lazy imports)
_COLD = """
import sys, time
from loopml.evaluation import evaluate
from loopml.project import open_project
t = time.perf_counter()
with open_project(sys.argv[1]) as project:
    ev = evaluate(sys.argv[2], project=project)
    ev.verdict()
    ev.slices()
print(time.perf_counter() - t)
"""


def _cli_section(rows: int, repeat: int) -> None:
    """``loopml eval`` from the command line against the same work in process."""
    import os
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from loopml.evaluation import evaluate
    from loopml.project import init_project, open_project

    with tempfile.TemporaryDirectory() as tmp:
        pdir = Path(tmp) / "proj"
        init_project(pdir, task="binary").close()
        spec = pdir / "loopml.toml"
        text = spec.read_text()
        assert "\ncolumns = []\n" in text
        spec.write_text(text.replace("\ncolumns = []\n", '\ncolumns = ["region", "segment"]\n'))
        path = pdir / "rows.parquet"
        _cli_table(rows).to_parquet(path)

        def in_process() -> None:
            with open_project(pdir) as project:
                ev = evaluate(str(path), project=project)
                ev.verdict()
                ev.slices()

        # the console script a user types (``python -m loopml`` is the same code, started
        # through runpy)
        script = Path(sys.executable).with_name("loopml")
        command = [str(script), "-C", str(pdir), "eval", "--data", str(path)]
        # bytecode cached, as after `pip install` (a cache of its own: the tree is not touched)
        cached = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cached["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        as_is = dict(os.environ)

        def child(args: list[str], env: dict[str, str]) -> Callable[[], None]:
            def run() -> None:
                subprocess.run(args, check=True, capture_output=True, env=env)

            return run

        timed: dict[str, Callable[[], None]] = {
            "in process": in_process,
            "command line": child(command, cached),
            "command line, environment as is": child(command, as_is),
            "libraries alone": child([sys.executable, "-c", _LIBRARIES], cached),
        }
        for fn in timed.values():  # warm up imports, the bytecode cache and the file cache
            fn()
        cold_command = [sys.executable, "-c", _COLD, str(pdir), str(path)]
        times: dict[str, list[float]] = {k: [] for k in [*timed, "cold"]}
        for _ in range(repeat):  # interleaved: every variant sees the same load
            for k, fn in timed.items():
                times[k].append(median_time(fn, 1))
            out = subprocess.run(
                cold_command, check=True, capture_output=True, text=True, env=cached
            )
            times["cold"].append(float(out.stdout.strip().splitlines()[-1]))
    t = {k: statistics.median(v) for k, v in times.items()}
    no_cache = " (PYTHONDONTWRITEBYTECODE=1)" if os.environ.get("PYTHONDONTWRITEBYTECODE") else ""
    print(
        f"loopml eval from the command line, rows={rows:,}, 2 slice columns, "
        f"repeat={repeat} (medians, wall time)"
    )
    print(f"  in process: open, evaluate, store   {t['in process']:8.3f} s")
    print(f"  command line (bytecode cached)      {t['command line']:8.3f} s")
    print(
        f"  command line, environment as is     {t['command line, environment as is']:8.3f} s"
        f"{no_cache}"
    )
    print(
        f"  its libraries imported, no work     {t['libraries alone']:8.3f} s"
        "   (numpy, duckdb, pydantic, typer, rich)"
    )
    print(f"  in process, first run of a process  {t['cold']:8.3f} s   (imports not counted)")
    ratio = t["command line"] / t["in process"]
    floor = (t["libraries alone"] + t["in process"]) / t["in process"]
    cold = (t["libraries alone"] + t["cold"]) / t["in process"]
    print(f"  command line / in process           = {ratio:.2f}x")
    print(f"  command line / first run in process = {t['command line'] / t['cold']:.2f}x")
    print(f"  floor: (libraries + in process) / in process = {floor:.2f}x")
    print(f"  floor with a first run: (libraries + first run) / in process = {cold:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--fairlearn-rows", type=int, default=1_000_000)
    parser.add_argument("--cli-rows", type=int, default=1_000_000)
    parser.add_argument("--cli-only", action="store_true", help="time only the command line")
    parser.add_argument("--no-fairlearn", action="store_true", help="leave out fairlearn (slow)")
    args = parser.parse_args()
    if args.cli_only:
        _cli_section(args.cli_rows, args.repeat)
        return

    from loopml.evaluation import evaluate

    slice_cols = [f"s{i}_{c}" for i, c in enumerate(CARDINALITIES)]
    print(f"generating {args.rows:,} rows ...", flush=True)
    df = make_table(args.rows)

    def run_loopml() -> None:
        ev = evaluate(
            df,
            task="binary",
            optimizing="f1",
            constraints=["recall >= 0.5"],
            slices=slice_cols,
            store=False,
        )
        ev.overall()
        ev.slices()

    y = df["label"].to_numpy()
    p = df["prediction"].to_numpy()
    codes = [df[c].to_numpy() for c in slice_cols]

    def run_numpy() -> None:
        cell = y.astype(np.int64) * 2 + p
        for c, card in zip(codes, CARDINALITIES, strict=True):
            np.bincount(c.astype(np.int64) * 4 + cell, minlength=card * 4)

    score = df["score"].to_numpy()
    p_true = np.clip(np.where(y == 1, score, 1 - score), 1e-15, 1 - 1e-15)

    def run_numpy_same_outputs() -> None:
        # what loopml's engine computes, in numpy: per slice value the confusion counts and
        # 20-bin score histograms with score sums, exact log-loss and Brier sums; overall a
        # 1000-bin histogram (the least work for the same count tensors)
        ll = -np.log(p_true)
        br = (score - y) ** 2
        cell = y.astype(np.int64) * 2 + p
        fine = cell * 1000 + np.minimum((score * 1000).astype(np.int64), 999)
        np.bincount(fine, minlength=4000)
        np.bincount(fine, weights=score, minlength=4000)
        coarse = cell * 20 + np.minimum((score * 20).astype(np.int64), 19)
        for c, card in zip(codes, CARDINALITIES, strict=True):
            key = c.astype(np.int64) * 80 + coarse
            np.bincount(key, minlength=card * 80)
            for w in (score, ll, br):
                np.bincount(key, weights=w, minlength=card * 80)

    frame = df.assign(
        __ll=-np.log(p_true),
        __br=(score - y) ** 2,
        __bs=np.minimum((score * 20).astype(np.int64), 19),
        __bo=np.minimum((score * 1000).astype(np.int64), 999),
    )
    sums = {"n": ("score", "size"), "s": ("score", "sum"), "ll": ("__ll", "sum")}
    sums["br"] = ("__br", "sum")

    def run_pandas() -> None:
        frame.groupby(["label", "prediction", "__bo"]).agg(n=("score", "size"), s=("score", "sum"))
        for c in slice_cols:
            frame.groupby([c, "label", "prediction", "__bs"]).agg(**sums)

    def run_polars() -> None:
        import polars as pl

        pf = pl.from_pandas(frame)
        aggs = [
            pl.len().alias("n"),
            pl.col("score").sum().alias("s"),
            pl.col("__ll").sum().alias("ll"),
            pl.col("__br").sum().alias("br"),
        ]
        pf.group_by(["label", "prediction", "__bo"]).agg(aggs[:2])
        for c in slice_cols:
            pf.group_by([c, "label", "prediction", "__bs"]).agg(aggs)

    results: dict[str, float] = {}
    run_loopml()  # warm up imports
    results["loopml"] = median_time(run_loopml, args.repeat)
    results["numpy_floor"] = median_time(run_numpy, args.repeat)
    results["numpy_same_outputs"] = median_time(run_numpy_same_outputs, args.repeat)
    results["pandas_same_outputs"] = median_time(run_pandas, args.repeat)
    try:
        import polars  # noqa: F401

        results["polars_same_outputs"] = median_time(run_polars, args.repeat)
    except ImportError:
        print("polars not installed: pip install 'loopml[polars]' to compare with it")
    ev = evaluate(
        df,
        task="binary",
        optimizing="f1",
        constraints=["recall >= 0.5"],
        slices=slice_cols,
        store=False,
    )

    def run_decision() -> None:
        ev._cache.clear()
        ev.slices()

    results["decision_slices"] = median_time(run_decision, args.repeat)
    n_slices = sum(len(g.values) for g in ev.counts.groups)
    print(f"rows={args.rows:,} slice columns=8 ({n_slices} slices) repeat={args.repeat} (medians)")
    for k, v in results.items():
        print(f"  {k:<20} {v:8.3f} s")
    total = results["loopml"]
    print(f"  loopml / numpy floor            = {total / results['numpy_floor']:.2f}x")
    print(f"  loopml / numpy, same outputs    = {total / results['numpy_same_outputs']:.2f}x")
    print(f"  pandas, same outputs / loopml   = {results['pandas_same_outputs'] / total:.2f}x")
    if "polars_same_outputs" in results:
        print(f"  polars, same outputs / loopml   = {results['polars_same_outputs'] / total:.2f}x")
    print(f"  decision work (slices) / total  = {results['decision_slices'] / total:.1%}")
    print(f"  peak memory of one evaluation   = {_peak_memory(df, slice_cols):,.0f} MiB")
    _cli_section(args.cli_rows, args.repeat)

    if args.no_fairlearn:
        return
    try:
        from fairlearn.metrics import MetricFrame
        from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score
    except ImportError:
        print("fairlearn not installed: pip install 'loopml[bench]' to compare with it")
        return
    small = df.iloc[: args.fairlearn_rows]
    four = slice_cols[:4]

    def run_fairlearn() -> None:
        for c in four:
            _ = MetricFrame(
                metrics={
                    "accuracy": accuracy_score,
                    "precision": precision_score,
                    "recall": recall_score,
                    "f1": f1_score,
                },
                y_true=small["label"],
                y_pred=small["prediction"],
                sensitive_features=small[c],
            ).by_group

    def run_loopml_small() -> None:
        ev = evaluate(small, task="binary", optimizing="f1", slices=four, store=False)
        ev.overall()
        ev.slices()

    f = median_time(run_fairlearn, max(1, args.repeat // 2))
    s = median_time(run_loopml_small, args.repeat)
    print(f"rows={len(small):,} slice columns=4")
    print(f"  fairlearn        {f:8.3f} s")
    print(f"  loopml           {s:8.3f} s   fairlearn / loopml = {f / s:.1f}x")


if __name__ == "__main__":
    main()
