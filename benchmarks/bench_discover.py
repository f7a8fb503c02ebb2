"""Weak-slice discovery speed and memory: loopml.discovery side by side with `sliceline`.

Seeded data: 8 categorical (integer-coded) columns of cardinality 2, 3, 5, 10, 20, 50, 100,
1000, a 10% base error rate, tripled on the planted slice `s0_2 = 1 and s2_5 = 3`. Side by
side (100k rows), both tools search conjunctions of up to 3 predicates with the same minimum
support (1% of the rows, sliceline's usual setting; SliceLine weight 0.95): sliceline ranks
by its score, loopml tests every slice of the family and ranks the significant ones by
excess errors. Alone (1M, 10M rows), loopml runs with its default minimum support (30
rows). Each tool runs in its own subprocess, so the peak memory (ru_maxrss) is its own.

    python benchmarks/bench_discover.py                      # 100k rows, both tools
    python benchmarks/bench_discover.py --rows 1000000 --loopml-only
    python benchmarks/bench_discover.py --rows 10000000 --loopml-only --repeat 1
    python benchmarks/bench_discover.py --all                # all three

Do not run sliceline at 1M rows: it needs more than 24 GiB.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

CARDINALITIES = (2, 3, 5, 10, 20, 50, 100, 1000)
COLUMNS = [f"s{i}_{c}" for i, c in enumerate(CARDINALITIES)]
PLANTED = {"s0_2": 1, "s2_5": 3}
WEIGHT = 0.95
MAX_L = 3


def make_table(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {}
    for name, card in zip(COLUMNS, CARDINALITIES, strict=True):
        cols[name] = rng.integers(0, card, n).astype(np.int32)
    weak = np.ones(n, dtype=bool)
    for name, value in PLANTED.items():
        weak &= cols[name] == value
    cols["err"] = (rng.random(n) < np.where(weak, 0.3, 0.1)).astype(np.int8)
    return pd.DataFrame(cols)


def run_loopml(df: pd.DataFrame, min_sup: int) -> tuple[frozenset[str], float]:
    from loopml.discovery import discover

    result = discover(
        df,
        errors="err",
        columns=COLUMNS,
        categorical=COLUMNS,
        max_predicates=MAX_L,
        k=1,
        min_support=min_sup,
        weight=WEIGHT,
    )
    top = result.slices[0]
    return frozenset(top.predicates), top.score


def run_sliceline(df: pd.DataFrame, min_sup: int) -> tuple[frozenset[str], float]:
    from sliceline import Slicefinder

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        finder = Slicefinder(alpha=WEIGHT, k=1, max_l=MAX_L, min_sup=min_sup, verbose=False)
        finder.fit(df[COLUMNS].to_numpy(), df["err"].to_numpy().astype(np.float64))
    row = finder.top_slices_[0]
    preds = frozenset(f"{c} = {int(v)}" for c, v in zip(COLUMNS, row, strict=True) if v is not None)
    return preds, float(finder.top_slices_statistics_[0]["slice_score"])


def child(tool: str, rows: int, repeat: int, min_sup: int) -> None:
    """Run one tool in this process; print JSON with the times, top slice and peak RSS."""
    df = make_table(rows)
    fn = run_loopml if tool == "loopml" else run_sliceline
    times = []
    top: tuple[frozenset[str], float] = (frozenset(), 0.0)
    for _ in range(repeat):
        t0 = time.perf_counter()
        top = fn(df, min_sup)
        times.append(time.perf_counter() - t0)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "times": times,
                "top": sorted(top[0]),
                "score": top[1],
                "peak_mib": peak_kib / 1024,
            }
        )
    )


def measure(tool: str, rows: int, repeat: int, min_sup: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", tool, "--rows", str(rows), "--repeat", str(repeat)]
    cmd += ["--min-support", str(min_sup)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def report(results: dict[str, dict[str, Any]]) -> None:
    for tool, r in results.items():
        if "error" in r:
            print(f"{tool:>10}: FAILED: {r['error']}")
            continue
        med = statistics.median(r["times"])
        print(
            f"{tool:>10}: median {med:8.3f} s over {len(r['times'])} run(s), "
            f"peak RSS {r['peak_mib']:8.1f} MiB, top slice {' and '.join(r['top'])} "
            f"(score {r['score']:.4f})"
        )
    if "sliceline" in results and not any("error" in r for r in results.values()):
        lm, sl = results["loopml"], results["sliceline"]
        ratio = statistics.median(sl["times"]) / statistics.median(lm["times"])
        print(f"speed-up: {ratio:.1f}x; same top slice: {lm['top'] == sl['top']}")


def run(rows: int, repeat: int, sliceline_repeat: int, loopml_only: bool) -> None:
    min_sup = 30 if loopml_only else max(32, rows // 100)
    print(f"rows={rows:,}  columns={len(COLUMNS)} (cardinality {CARDINALITIES})")
    print(f"planted: {PLANTED}; up to {MAX_L} predicates; min support {min_sup} rows")
    print("peak memory includes the seeded table (pandas, ~40 bytes a row) and imports")
    results = {"loopml": measure("loopml", rows, repeat, min_sup)}
    if not loopml_only:
        results["sliceline"] = measure("sliceline", rows, sliceline_repeat, min_sup)
    report(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sliceline-repeat", type=int, default=1)
    parser.add_argument("--loopml-only", action="store_true", help="skip sliceline")
    parser.add_argument("--all", action="store_true", help="100k side by side, 1M and 10M alone")
    parser.add_argument("--min-support", type=int, default=30, help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=["loopml", "sliceline"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.rows, args.repeat, args.min_support)
        return
    if args.all:
        run(100_000, args.repeat, args.sliceline_repeat, False)
        run(1_000_000, args.repeat, 1, True)
        run(10_000_000, 1, 1, True)
        return
    run(args.rows, args.repeat, args.sliceline_repeat, args.loopml_only)


if __name__ == "__main__":
    main()
