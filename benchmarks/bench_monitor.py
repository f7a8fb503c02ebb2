"""Drift monitoring speed: loopml.monitor side by side with scipy and Evidently 0.7.

Seeded data written to Parquet in a temporary folder: 12 numeric columns (normal, with 1%
missing, lognormal, uniform, exponential, Poisson, integer, bimodal, Student t, beta, wide
normal, gamma) and 8 categorical (text) columns of 2, 3, 5, 10, 30, 100, 300 and 1,000
Zipf-like values. The current rows drift in six columns: four clearly (a mean shift of 0.25
sd, a scale change of 25%, one category gaining 10 points of share, 5% of rows with values
the reference never had) and two subtly (a scale change of 3%, one category gaining 2
points).

Part 1 (--rows reference rows against --rows current rows, one window), each tool from the
same two Parquet files on disk:

- loopml: ``monitor(data=cur.parquet, reference=ref.parquet, window="<rows>rows",
  store=False)`` in this process; the first run (imports, DuckDB start) is timed apart and
  left out of the median; reading the files is included (DuckDB reads them in the pass).
  Three ways: cold (the reference fitted in the call), with the reference's fit reused in
  the process, and inside a project with the fit loaded from its ``.loopml/cache`` (the
  process's caches emptied, as in a new process); then ``loopml monitor`` on the command
  line, a new process per run, once fitting and once loading the saved fit;
- scipy: ``pd.read_parquet`` of both files, then per column ``scipy.stats.ks_2samp``
  (numbers, missing values dropped) or ``chi2_contingency`` of the two value counts
  (categories), drifted when p < 0.05; reading included, and timed without it too;
- Evidently 0.7: ``Report([DataDriftPreset()]).run(current, reference)`` in its own venv
  (/tmp/evidently-venv, created by this script if missing; it needs pandas < 3) through
  benchmarks/_evidently_peer.py; only the report is timed (reading the files is not).

Each is the median of --repeat runs (Evidently: --evidently-repeat). Peak memory: each tool
once more in its own process (VmHWM). Then the columns each tool flagged, side by side.

Part 2 (--scale): --scale-rows logged rows (a timestamp over 30 days, written in row groups
so that generating them stays in bounded memory; the drift starts on day 20) against the
reference: loopml alone in a child process, windows of one day and windows of rows, wall
time and peak resident memory.

    python benchmarks/bench_monitor.py                 # part 1 at 500k rows
    python benchmarks/bench_monitor.py --scale         # and part 2 at 10M rows
    python benchmarks/bench_monitor.py --scale-only    # part 2 alone
    python benchmarks/bench_monitor.py --quick         # both, 20k rows and 300k rows
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
EVIDENTLY_VENV = Path("/tmp/evidently-venv")
EVIDENTLY_PY = EVIDENTLY_VENV / "bin" / "python"

NUMERIC = [
    "n00_normal",
    "n01_normal_na",
    "n02_lognormal",
    "n03_uniform",
    "n04_expon",
    "n05_poisson",
    "n06_int100",
    "n07_bimodal",
    "n08_student",
    "n09_beta",
    "n10_wide",
    "n11_gamma",
]
CARDINALITIES = (2, 3, 5, 10, 30, 100, 300, 1000)
CATEGORICAL = [f"c{i}_{card}" for i, card in enumerate(CARDINALITIES)]
#: the injected drift: column -> what changed ("subtle" ones are small effects)
DRIFT = {
    "n00_normal": "mean +0.25 sd",
    "n02_lognormal": "scale x1.25",
    "c3_10": "one value +10 pts",
    "c7_1000": "5% new values",
    "n04_expon": "subtle: scale x1.03",
    "c1_3": "subtle: one value +2 pts",
}
ALPHA = 0.05
TARGET_EVIDENTLY = 100.0
TARGET_SCIPY = 5.0
SCALE_DAYS = 30
DRIFT_DAY = 20
CHUNK = 500_000


# --------------------------------------------------------------------------- data


def _zipf(card: int) -> Any:
    p = 1.0 / np.arange(1, card + 1) ** 1.1
    return p / p.sum()


def make_columns(n: int, rng: np.random.Generator, drifted: Any) -> dict[str, pa.Array]:
    """``n`` rows of every column; rows where ``drifted`` (a bool array) carry the drift."""
    m = np.asarray(drifted, dtype=bool)
    cols: dict[str, pa.Array] = {}
    x = rng.normal(0.0, 1.0, n)
    cols["n00_normal"] = pa.array(x + 0.25 * m)
    x = rng.normal(10.0, 2.0, n)
    cols["n01_normal_na"] = pa.array(x, mask=rng.random(n) < 0.01)
    cols["n02_lognormal"] = pa.array(rng.lognormal(0.0, 1.0, n) * np.where(m, 1.25, 1.0))
    cols["n03_uniform"] = pa.array(rng.random(n))
    cols["n04_expon"] = pa.array(rng.exponential(1.0, n) * np.where(m, 1.03, 1.0))
    cols["n05_poisson"] = pa.array(rng.poisson(3.0, n).astype(np.int64))
    cols["n06_int100"] = pa.array(rng.integers(0, 100, n).astype(np.int64))
    cols["n07_bimodal"] = pa.array(rng.normal(0.0, 1.0, n) + np.where(rng.random(n) < 0.5, -2, 2))
    cols["n08_student"] = pa.array(rng.standard_t(3.0, n))
    cols["n09_beta"] = pa.array(rng.beta(2.0, 5.0, n))
    cols["n10_wide"] = pa.array(rng.normal(1000.0, 300.0, n))
    cols["n11_gamma"] = pa.array(rng.gamma(2.0, 2.0, n))
    for name, card in zip(CATEGORICAL, CARDINALITIES, strict=True):
        codes = rng.choice(card, size=n, p=_zipf(card))
        values = [f"v{k}" for k in range(card)]
        if name == "c3_10":
            codes = np.where(m & (rng.random(n) < 0.10), card - 1, codes)
        elif name == "c1_3":
            codes = np.where(m & (rng.random(n) < 0.02), card - 1, codes)
        elif name == "c7_1000":
            values += [f"new{k}" for k in range(50)]
            codes = np.where(m & (rng.random(n) < 0.05), card + rng.integers(0, 50, n), codes)
        mask = rng.random(n) < 0.01 if name == "c4_30" else None
        dictionary = pa.array(values, type=pa.string())
        cols[name] = dictionary.take(pa.array(codes.astype(np.int32), mask=mask))
    return cols


def write_pair(folder: Path, n: int, seed: int = 0) -> tuple[Path, Path]:
    """The reference (no drift) and the current rows (drifted), ``n`` rows each."""
    ref, cur = folder / "reference.parquet", folder / "current.parquet"
    rng = np.random.default_rng(seed)
    pq.write_table(pa.table(make_columns(n, rng, np.zeros(n, bool))), ref)
    pq.write_table(pa.table(make_columns(n, rng, np.ones(n, bool))), cur)
    return ref, cur


def day_counts(n: int, seed: int) -> Any:
    """Rows per day over SCALE_DAYS days: a weekly rhythm, seeded."""
    rng = np.random.default_rng(seed)
    d = np.arange(SCALE_DAYS)
    w = 1.0 + 0.2 * np.sin(2 * np.pi * d / 7)
    return rng.multinomial(n, w / w.sum())


def write_log(path: Path, n: int, seed: int = 1) -> Any:
    """``n`` logged rows with a UTC timestamp ``ts`` over SCALE_DAYS days in time order,
    drifted from day DRIFT_DAY on; written CHUNK rows (one row group) at a time, so memory
    stays bounded. Returns the rows per day."""
    counts = day_counts(n, seed)
    starts = np.concatenate([[0], np.cumsum(counts)])
    t0 = np.datetime64("2025-01-01T00:00:00", "us").astype(np.int64)
    day_us = 86_400 * 1_000_000
    rng = np.random.default_rng(seed + 1)
    writer = None
    try:
        for lo in range(0, n, CHUNK):
            hi = min(lo + CHUNK, n)
            idx = np.arange(lo, hi)
            day = np.searchsorted(starts, idx, side="right") - 1
            frac = (idx - starts[day]) / counts[day]
            ts = t0 + day * day_us + (frac * day_us).astype(np.int64)
            cols = make_columns(hi - lo, rng, day >= DRIFT_DAY)
            cols = {"ts": pa.array(ts, type=pa.timestamp("us", tz="UTC")), **cols}
            table = pa.table(cols)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    return counts


# --------------------------------------------------------------------------- tools


def run_loopml(
    ref: Path,
    cur: Path,
    window: str,
    time_col: str | None = None,
    *,
    cold: bool = True,
    project: Any = None,
) -> Any:
    """One monitor call; ``cold``: the reference is binned anew and its nulls drawn anew
    (the process's caches of reference bins and of null distributions emptied first), else
    its bins and the nulls of the window sizes it met in the previous call are reused.
    ``project``: monitor inside it, whose ``.loopml/cache`` keeps the fitted reference
    (cold, the fit saved by an earlier call is loaded from there, as a new process would)."""
    from loopml.monitor import _REFERENCE_CACHE, monitor
    from loopml.monitor._drift import _NULL_CACHE

    if cold:
        _REFERENCE_CACHE.clear()
        _NULL_CACHE.clear()
    return monitor(
        project, data=str(cur), reference=str(ref), window=window, time=time_col, store=False
    )


def cli_runs(folder: Path, ref: Path, cur: Path, window: str, pairs: int) -> tuple[Any, Any]:
    """``loopml monitor`` on the command line, each run a new process (imports included):
    ``pairs`` times, a run that fits the reference (nothing saved) then one that loads the
    fit it saved. Returns the medians (seconds) of the first runs and of the second."""
    import shutil

    from loopml.project import init_project

    init_project(folder, task="binary").close()
    exe = Path(sys.executable).with_name("loopml")
    cmd = (
        [str(exe)]
        if exe.exists()
        else [sys.executable, "-c", "from loopml.cli import main; main()"]
    )
    cmd += ["-C", str(folder), "monitor", "--data", str(cur), "--reference", str(ref)]
    cmd += ["--window", window, "--no-store", "--json"]
    fits: list[float] = []
    loads: list[float] = []
    for _ in range(pairs):
        shutil.rmtree(folder / ".loopml" / "cache", ignore_errors=True)
        for times in (fits, loads):
            t0 = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True)
            times.append(time.perf_counter() - t0)
            if done.returncode != 0:
                raise RuntimeError(f"loopml monitor failed:\n{done.stderr[-2000:]}")
    return statistics.median(fits), statistics.median(loads)


def engine_floor(ref: Path, cur: Path, repeat: int) -> dict[str, float]:
    """What the engine alone takes for the work no drift pass can skip, each the median of
    ``repeat`` runs in DuckDB through loopml's backend: reading every column of both files
    (a sum or a string length of each, so the Parquet statistics cannot answer), the
    reference's quantiles (the one sort of each number the bins need), and loopml's own
    counting statements (the reference's, then the current rows') as monitor sends them."""
    from loopml.engine import connect
    from loopml.monitor._bins import column_family, count_windows, reference_bins

    out: dict[str, float] = {}
    with connect() as con:
        con.register(str(ref), "ref_rows")
        con.register(str(cur), "cur_rows")
        types = con.columns("ref_rows")
        reads = [
            f'sum("{c}")' if column_family(t) == "numeric" else f'max(length("{c}"))'
            for c, t in types.items()
        ]
        both = [f"SELECT {', '.join(reads)} FROM {v}" for v in ("ref_rows", "cur_rows")]
        out["read both files"], _ = median_time(lambda: [con.rows(q) for q in both], repeat)
        qs = [i / 10 for i in range(1, 10)]
        parts = [
            con.quantiles_sql(f'CAST("{c}" AS DOUBLE PRECISION)', qs)
            for c, t in types.items()
            if column_family(t) == "numeric"
        ]
        quantiles = f"SELECT {', '.join(parts)} FROM ref_rows"
        out["reference quantiles"], _ = median_time(lambda: con.rows(quantiles), repeat)
        out["reference bins (quantiles + counts)"], _ = median_time(
            lambda: reference_bins(con, "ref_rows", types), repeat
        )
        bins = reference_bins(con, "ref_rows", types)
        out["current counts"], _ = median_time(
            lambda: count_windows(con, "cur_rows", bins, window_sql="0"), repeat
        )
    return out


def loopml_drifted(ref: Path, cur: Path, rows: int) -> dict[str, bool]:
    result = run_loopml(ref, cur, f"{rows}rows")
    alarmed = {d.feature for d in result.alerts}
    return {c: c in alarmed for c in NUMERIC + CATEGORICAL}


def scipy_tests(r: Any, c: Any) -> dict[str, bool]:
    """Per column: KS (numbers) or chi-square of the value counts (categories), p < alpha."""
    import pandas as pd
    from scipy.stats import chi2_contingency, ks_2samp

    out: dict[str, bool] = {}
    for col in NUMERIC:
        a = r[col].to_numpy(dtype=np.float64)
        b = c[col].to_numpy(dtype=np.float64)
        p = ks_2samp(a[~np.isnan(a)], b[~np.isnan(b)]).pvalue
        out[col] = bool(p < ALPHA)
    for col in CATEGORICAL:
        table = pd.concat([r[col].value_counts(), c[col].value_counts()], axis=1).fillna(0)
        p = chi2_contingency(table.to_numpy().T, correction=False).pvalue
        out[col] = bool(p < ALPHA)
    return out


def run_scipy(ref: Path, cur: Path) -> dict[str, bool]:
    import pandas as pd

    return scipy_tests(pd.read_parquet(ref), pd.read_parquet(cur))


def median_time(fn: Callable[[], object], repeat: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def _status_mib(key: str) -> float:
    """A line of /proc/self/status in MiB (Linux): VmRSS now, VmHWM the peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mib() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries a parent's
    ru_maxrss over fork and exec, so a child's ru_maxrss is at least its parent's."""
    peak = _status_mib("VmHWM")
    if math.isnan(peak):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return peak


def child(argv: list[str]) -> None:
    """One run in this fresh process; prints JSON (seconds, peak resident memory)."""
    if argv[0] == "write-log":  # path, rows: generation alone, its own peak memory
        t0 = time.perf_counter()
        counts = write_log(Path(argv[1]), int(argv[2]))
        gen = {"counts": [int(x) for x in counts], "seconds": time.perf_counter() - t0}
        print(json.dumps({**gen, "peak_rss_mib": _peak_mib()}))
        return
    what, ref, cur = argv[0], Path(argv[1]), Path(argv[2])
    t0 = time.perf_counter()
    if what == "scipy":
        import pandas as pd  # noqa: F401
        import scipy.stats  # noqa: F401
    else:
        import loopml.monitor  # noqa: F401
    imported = time.perf_counter() - t0
    rss_imported = _status_mib("VmRSS")
    t0 = time.perf_counter()
    out: dict[str, Any] = {}
    if what == "scipy":
        out["drifted"] = run_scipy(ref, cur)
    elif what == "loopml":
        out["drifted"] = loopml_drifted(ref, cur, int(argv[3]))
    else:  # scale: window, time column ("-" for none)
        result = run_loopml(ref, cur, argv[3], None if argv[4] == "-" else argv[4])
        out["windows"] = [w.rows for w in result.windows]
        out["window_ids"] = [w.index for w in result.windows]
        out["alarms"] = [[d.window, d.feature] for d in result.alerts]
        out["pairs"] = len(result.drift)
        out["findings"] = list(result.findings)[:3]
    out["seconds"] = time.perf_counter() - t0
    out["import_seconds"] = imported
    out["rss_after_import_mib"] = rss_imported
    out["peak_rss_mib"] = _peak_mib()
    print(json.dumps(out))


def run_child(*args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", *args],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"child {args[0]} failed:\n{out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# --------------------------------------------------------------------------- Evidently


def ensure_evidently() -> str | None:
    """None when Evidently's venv is there (created here if missing), else why not. Whether
    Evidently 0.7 imports in it is checked by the peer run itself (importing it only to
    check would cost seconds)."""
    if EVIDENTLY_PY.exists():
        return None
    print(f"creating {EVIDENTLY_VENV} with evidently 0.7 ...", flush=True)
    steps = [
        ["python3", "-m", "venv", str(EVIDENTLY_VENV)],
        [str(EVIDENTLY_PY), "-m", "pip", "install", "-q", "evidently==0.7.*", "pandas<3"],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            return f"{' '.join(step[:4])} failed: {done.stderr.strip()[-300:]}"
    return None


def run_evidently(ref: Path, cur: Path, repeat: int) -> dict[str, Any]:
    cmd = [str(EVIDENTLY_PY), str(HERE / "_evidently_peer.py"), str(ref), str(cur)]
    cmd += [",".join(NUMERIC), ",".join(CATEGORICAL), str(repeat)]
    out = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, "DO_NOT_TRACK": "1"}
    )
    if out.returncode != 0:
        last = out.stderr.strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"the Evidently run failed: {last[0][-300:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if not str(result["version"]).startswith("0.7"):
        raise RuntimeError(f"evidently {result['version']} in {EVIDENTLY_VENV}, not 0.7")
    return result


# --------------------------------------------------------------------------- parts


def _mark(flag: bool | None) -> str:
    return "-" if flag is None else ("DRIFT" if flag else ".")


def note(text: str, indent: str = "  ") -> None:
    """Print ``text`` wrapped to 80 columns."""
    print(textwrap.fill(text, width=80, initial_indent=indent, subsequent_indent=indent + "  "))


def compare(rows: int, repeat: int, ev_repeat: int, skip_evidently: bool, memory: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="bench_monitor_") as tmp:
        t0 = time.perf_counter()
        ref, cur = write_pair(Path(tmp), rows)
        mib = (ref.stat().st_size + cur.stat().st_size) / 2**20
        note(
            f"Part 1: {rows:,} reference rows vs {rows:,} current rows, {len(NUMERIC)} "
            f"numeric + {len(CATEGORICAL)} categorical columns ({mib:,.0f} MiB of Parquet, "
            f"written in {time.perf_counter() - t0:.1f} s)",
            indent="",
        )
        sys.stdout.flush()
        window = f"{rows}rows"
        t0 = time.perf_counter()
        flags: dict[str, dict[str, bool]] = {"loopml": loopml_drifted(ref, cur, rows)}
        first = time.perf_counter() - t0
        secs: dict[str, float] = {}
        secs["loopml"], _ = median_time(lambda: run_loopml(ref, cur, window), repeat)
        secs["loopml_warm"], _ = median_time(
            lambda: run_loopml(ref, cur, window, cold=False), repeat
        )
        from loopml.project import init_project

        with init_project(Path(tmp) / "project", task="binary") as project:
            run_loopml(ref, cur, window, project=project)  # fits and saves
            loaded = run_loopml(ref, cur, window, project=project).to_dict()
            same = loaded == run_loopml(ref, cur, window).to_dict()
            secs["loopml_saved"], _ = median_time(
                lambda: run_loopml(ref, cur, window, project=project), repeat
            )
        cli = cli_runs(Path(tmp) / "cli_project", ref, cur, window, min(repeat, 3))
        flags["scipy"] = run_scipy(ref, cur)
        secs["scipy"], _ = median_time(lambda: run_scipy(ref, cur), repeat)
        import pandas as pd

        frames = [pd.read_parquet(ref), pd.read_parquet(cur)]
        secs["scipy_mem"], _ = median_time(lambda: scipy_tests(*frames), repeat)
        frames.clear()  # free them before the children run
        floor = engine_floor(ref, cur, repeat)
        peak: dict[str, float] = {}
        if memory:
            peak["loopml"] = run_child("loopml", str(ref), str(cur), str(rows))["peak_rss_mib"]
            peak["scipy"] = run_child("scipy", str(ref), str(cur))["peak_rss_mib"]
        ev: dict[str, Any] | None = None
        why = "--skip-evidently" if skip_evidently else ensure_evidently()
        if why is None:
            print(f"running Evidently ({ev_repeat} runs) ...", flush=True)
            try:
                ev = run_evidently(ref, cur, ev_repeat)
            except RuntimeError as e:
                why = str(e)
        if ev is not None:
            secs["evidently"] = statistics.median(ev["seconds"])
            flags["evidently"] = {k: bool(v) for k, v in ev["drifted"].items()}
            peak["evidently"] = ev["peak_rss_mib"]

    base = secs["loopml"]
    print(f"\nmedian of {repeat} runs (Evidently: {ev_repeat}); ratio = tool / loopml")
    print(f"  {'tool':<36}{'seconds':>10}{'ratio':>10}{'peak RSS':>12}")
    lines = [
        ("loopml monitor (reads Parquet)", "loopml", "loopml"),
        ("loopml, ref. bins and nulls reused", "loopml_warm", ""),
        ("loopml, fitted ref. loaded (project)", "loopml_saved", ""),
        ("scipy ks/chi2 (reads Parquet)", "scipy", "scipy"),
        ("scipy ks/chi2 (frames in memory)", "scipy_mem", ""),
    ]
    if ev is not None:
        lines.append((f"Evidently {ev['version']} (report only)", "evidently", "evidently"))
    for label, key, mem in lines:
        rss = f"{peak[mem]:,.0f} MiB" if mem in peak else ""
        print(f"  {label:<36}{secs[key]:>10.3f}{secs[key] / base:>9.1f}x{rss:>12}")
    note(f"loopml's first run (imports, DuckDB start): {first:.2f} s, not in the median.")
    note(
        "fitted ref. loaded: monitor inside a project, the process's caches emptied, the "
        "fit (bins, rows, nulls) read from .loopml/cache as the next process would; the "
        f"result {'equals' if same else 'DIFFERS from'} the cold one. The command line, "
        f"`loopml monitor` in a new process each run (imports included), medians of "
        f"{min(repeat, 3)}: {cli[0]:.2f} s when it fits the reference, {cli[1]:.2f} s when "
        f"it loads the fit the first run saved ({cli[0] / cli[1]:.1f}x)."
    )
    note(
        "the engine alone (DuckDB, medians): "
        + "; ".join(f"{what} {sec:.3f} s" for what, sec in floor.items())
    )
    if ev is not None:
        note(
            f"Evidently runs: {', '.join(f'{s:.2f}' for s in ev['seconds'])} s; reading "
            f"both files with pandas {ev['pandas']} took {ev['read_seconds']:.2f} s more "
            "(not timed, as asked; loopml's and scipy's times include reading)."
        )
    else:
        note(f"Evidently: SKIPPED, {why}")
    note(
        "peak RSS: each tool once more in a fresh process (VmHWM), imports included "
        "(Evidently: its process over all its runs)"
        + ("." if memory else "; loopml's and scipy's not measured with --quick.")
    )

    print(
        f"\ntargets: loopml >= {TARGET_EVIDENTLY:.0f}x faster than Evidently, "
        f">= {TARGET_SCIPY:.0f}x faster than scipy"
    )
    warm, saved = secs["loopml_warm"], secs["loopml_saved"]
    s_ratio = secs["scipy"] / base
    met = "met" if s_ratio >= TARGET_SCIPY else "NOT met"
    print(f"  scipy / loopml     = {s_ratio:7.1f}x  {met}  (reference reused: "
          f"{secs['scipy'] / warm:.1f}x, fit loaded: {secs['scipy'] / saved:.1f}x)")  # fmt: skip
    if ev is not None:
        e_ratio = secs["evidently"] / base
        met = "met" if e_ratio >= TARGET_EVIDENTLY else "NOT met"
        print(f"  Evidently / loopml = {e_ratio:7.1f}x  {met}  (reference reused: "
              f"{secs['evidently'] / warm:.1f}x, fit loaded: "
              f"{secs['evidently'] / saved:.1f}x)")  # fmt: skip
    else:
        print("  Evidently / loopml = not measured (Evidently skipped)")

    tools = list(flags)
    print("\ncolumns each tool flagged as drifted (DRIFT), and the drift injected")
    print(f"  {'column':<16}" + "".join(f"{t:>10}" for t in tools) + "  injected")
    for col in NUMERIC + CATEGORICAL:
        marks = "".join(f"{_mark(flags[t].get(col)):>10}" for t in tools)
        print(f"  {col:<16}{marks}  {DRIFT.get(col, '')}")
    counts = []
    for t in tools:
        hit = sum(bool(flags[t].get(c)) for c in DRIFT)
        false = sum(bool(v) for c, v in flags[t].items() if c not in DRIFT)
        counts.append(f"{hit}/{len(DRIFT)}, {false}")
    print(f"  {'found, false':<16}" + "".join(f"{x:>10}" for x in counts))
    note(
        "loopml: JS distance or largest share shift above its null quantile "
        f"(alpha {ALPHA}); scipy: p < {ALPHA} per column, uncorrected; Evidently: its "
        "default method and threshold per column"
        + (
            f" (here {', '.join(sorted({str(m['method']) for m in ev['methods'].values()}))})"
            if ev is not None
            else ""
        )
        + "."
    )


def scale(scale_rows: int, ref_rows: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench_monitor_scale_") as tmp:
        folder = Path(tmp)
        rng = np.random.default_rng(0)
        ref = folder / "reference.parquet"
        pq.write_table(pa.table(make_columns(ref_rows, rng, np.zeros(ref_rows, bool))), ref)
        log = folder / "log.parquet"
        gen = run_child("write-log", str(log), str(scale_rows))
        counts = np.array(gen["counts"])
        print()
        note(
            f"Part 2: {scale_rows:,} logged rows over {SCALE_DAYS} days "
            f"({log.stat().st_size / 2**20:,.0f} MiB of Parquet, written by a child in "
            f"{gen['seconds']:.1f} s, row groups of {CHUNK:,}, peak RSS "
            f"{gen['peak_rss_mib']:,.0f} MiB) against {ref_rows:,} reference rows, drift "
            f"from day {DRIFT_DAY}: loopml alone, one run per row in a child process",
            indent="",
        )
        sys.stdout.flush()
        size = math.ceil(scale_rows / SCALE_DAYS)
        drift_row = int(np.sum(counts[:DRIFT_DAY]))
        head = f"  {'windows':<22}{'n':>4}{'seconds':>9}{'peak RSS':>11}"
        print(head + f"{'drift found':>14}{'false alarms':>14}")
        imported = []
        for label, window, tcol in (("1d (time column ts)", "1d", "ts"),
                                    (f"{size}rows (no time)", f"{size}rows", "-")):  # fmt: skip
            out = run_child("scale", str(ref), str(log), window, tcol)
            imported.append(out["rss_after_import_mib"])
            ends = np.cumsum(out["windows"])
            starts = ends - np.array(out["windows"])
            after = {i for i, s in enumerate(starts) if s >= drift_row}
            before = {i for i, e in enumerate(ends) if e <= drift_row}
            pos = {w: i for i, w in enumerate(out["window_ids"])}  # window id -> position
            hit = sum(1 for w, f in out["alarms"] if f in DRIFT and pos[w] in after)
            false = sum(1 for w, f in out["alarms"] if f not in DRIFT or pos[w] in before)
            mixed = len(ends) - len(after) - len(before)
            n_hit = len(after) * len(DRIFT)
            n_false = out["pairs"] - n_hit - mixed * len(DRIFT)
            print(
                f"  {label:<22}{len(ends):>4}{out['seconds']:>9.2f}"
                f"{out['peak_rss_mib']:>7,.0f} MiB{f'{hit}/{n_hit}':>14}"
                f"{f'{false}/{n_false}':>14}"
            )
        note(
            "seconds: the monitor() call alone (imports excluded); peak RSS: the child's "
            f"VmHWM, imports included (RSS after imports: {max(imported):,.0f} MiB)."
        )
        note(
            f"drift found: alarms among the (window, column) pairs of the {len(DRIFT)} "
            f"drifted columns in windows after day {DRIFT_DAY}; false alarms: among all "
            "other pairs (a window that straddles day 20 is left out for those columns)."
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--evidently-repeat", type=int, default=3)
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--scale", action="store_true", help="also run part 2 (10M rows)")
    parser.add_argument("--scale-only", action="store_true", help="run part 2 alone")
    parser.add_argument("--scale-rows", type=int, default=10_000_000)
    parser.add_argument("--quick", action="store_true", help="20k rows, 300k scale rows")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    t0 = time.perf_counter()
    if args.quick:
        args.rows, args.scale_rows, args.scale = 20_000, 300_000, True
        args.repeat, args.evidently_repeat = 2, 1
    if not args.scale_only:
        compare(args.rows, args.repeat, args.evidently_repeat, args.skip_evidently, not args.quick)
    if args.scale or args.scale_only:
        scale(args.scale_rows, args.rows)
    print(f"\n(whole benchmark: {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
