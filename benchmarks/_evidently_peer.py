"""Evidently's side of bench_monitor.py, run in Evidently's own venv (it needs pandas < 3).

    /tmp/evidently-venv/bin/python benchmarks/_evidently_peer.py REF CUR NUMERIC CATEGORICAL N

Reads the two Parquet files with pandas (not timed, timed apart as ``read_seconds``), then
runs ``Report([DataDriftPreset()], include_tests=True).run(current, reference)`` N times,
each wrapping the frames in ``Dataset.from_pandas`` with the column types given (the same
numeric and categorical columns loopml and scipy see). Prints one JSON line: the seconds of
each run, the drifted columns (a ValueDrift test that failed), each column's method and
score, the version, and the peak resident memory of this process (VmHWM, MiB).

Only the standard library, numpy and pandas are imported at the top: the script is checked
by the main venv's linters, where Evidently is not installed.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import time
from typing import Any


def peak_mib() -> float:
    """Peak resident memory (VmHWM; ru_maxrss would carry the parent's peak over exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str]) -> None:
    ref_path, cur_path, numeric_arg, categorical_arg, repeat_arg = argv
    os.environ.setdefault("DO_NOT_TRACK", "1")  # no telemetry (there is no network anyway)
    import pandas as pd

    evidently: Any = importlib.import_module("evidently")
    presets: Any = importlib.import_module("evidently.presets")
    numeric = [c for c in numeric_arg.split(",") if c]
    categorical = [c for c in categorical_arg.split(",") if c]
    t0 = time.perf_counter()
    ref = pd.read_parquet(ref_path)
    cur = pd.read_parquet(cur_path)
    read_seconds = time.perf_counter() - t0
    definition = evidently.DataDefinition(
        numerical_columns=numeric, categorical_columns=categorical
    )
    seconds: list[float] = []
    result: Any = None
    for _ in range(int(repeat_arg)):
        t0 = time.perf_counter()
        report = evidently.Report([presets.DataDriftPreset()], include_tests=True)
        result = report.run(
            evidently.Dataset.from_pandas(cur, data_definition=definition),
            evidently.Dataset.from_pandas(ref, data_definition=definition),
        )
        seconds.append(time.perf_counter() - t0)
    drifted: dict[str, bool] = {}
    methods: dict[str, dict[str, Any]] = {}
    out = result.dict() if result is not None else {"metrics": [], "tests": []}
    for m in out["metrics"]:
        params = m.get("config") or {}
        if "column" in params:
            methods[params["column"]] = {
                "method": params.get("method"),
                "threshold": params.get("threshold"),
                "score": m.get("value"),
            }
    for t in out["tests"]:
        params = (t.get("metric_config") or {}).get("params") or {}
        if "column" in params:
            drifted[params["column"]] = t.get("status") == "FAIL"
    print(
        json.dumps(
            {
                "version": evidently.__version__,
                "pandas": pd.__version__,
                "seconds": seconds,
                "read_seconds": read_seconds,
                "drifted": drifted,
                "methods": methods,
                "peak_rss_mib": peak_mib(),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
