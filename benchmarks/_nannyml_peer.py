"""NannyML's side of bench_cbpe.py: runs inside NannyML's own venv, never loopml's.

    NML_DISABLE_USAGE_LOGGING=1 /tmp/nannyml-venv/bin/python \\
        benchmarks/_nannyml_peer.py --out DIR [--quick] [--repeat 3]
    ... benchmarks/_nannyml_peer.py --fixture tests/monitor/data

For each of NannyML 0.13's binary datasets (synthetic binary "work from home", synthetic
car loan, US census MA employment) it writes to DIR:

- ``NAME_reference.parquet``: the reference frame (with its labels);
- ``NAME_analysis.parquet``: the analysis frame with its targets joined by ``id``;
- ``NAME.json``: the column roles, the chunks (start/end row index, rows), per chunk
  NannyML's CBPE estimate and the realized value of roc_auc, f1, precision, recall and
  accuracy with NannyML's alert flags, univariate drift per (chunk, feature), timings.

The frames keep NannyML's column names; only types are normalized so that any reader
sees the same data: ``timestamp`` text becomes a timestamp, the label becomes an integer
(car loan's reference stores it as float). The census data has no time column: NannyML's
quickstart chunks it in row order without one, and the files get an added ``timestamp``
(1 January of ``year`` plus one second per row, in file order), so that a tool which cuts
windows in time order cuts the same rows. NannyML itself runs on the frames read back from
these Parquet files (analysis without the label for CBPE).

Chunking: ``chunk_size=5000`` for every dataset (NannyML's tutorials use 5000 for all three;
SizeBasedChunker, incomplete='keep': a last, smaller chunk is kept), over the analysis in
timestamp order (census: row order). Timings are the median of --repeat runs of fit +
estimate/calculate on frames in memory (reading Parquet is timed apart).

Drift: UnivariateDriftCalculator with its defaults, jensen_shannon for continuous and for
categorical columns (continuous: histogram of the reference with numpy's 'doane' bins);
a chunk alerts when its distance is above the mean + 3 standard deviations of the
reference chunks' distances (StandardDeviationThreshold, no lower bound). CBPE and the
realized performance use the default StandardDeviationThreshold (mean +- 3 std of the
reference chunks), isotonic calibration.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")

CHUNK_SIZE = 5000
METRICS = ["roc_auc", "f1", "precision", "recall", "accuracy"]
FIXTURE_METRICS = ["roc_auc", "f1"]
FIXTURE_NAME = "nannyml_synthetic_binary"
FIXTURE_LIMIT = 6 * 1024 * 1024  # both Parquet files together


def _nml() -> Any:
    return importlib.import_module("nannyml")


# Each dataset: NannyML's loader and the roles of its columns. "nml_timestamp" is the column
# NannyML chunks by (None: row order, as NannyML's own census example).
DATASETS: dict[str, dict[str, Any]] = {
    "synthetic_binary": {
        "loader": "load_synthetic_binary_classification_dataset",
        "score": "y_pred_proba",
        "prediction": "y_pred",
        "label": "work_home_actual",
        "timestamp": "timestamp",
        "nml_timestamp": "timestamp",
        "features": [
            "distance_from_office",
            "salary_range",
            "gas_price_per_litre",
            "public_transportation_cost",
            "wfh_prev_workday",
            "workday",
            "tenure",
        ],
    },
    "car_loan": {
        "loader": "load_synthetic_car_loan_dataset",
        "score": "y_pred_proba",
        "prediction": "y_pred",
        "label": "repaid",
        "timestamp": "timestamp",
        "nml_timestamp": "timestamp",
        "features": [
            "car_value",
            "salary_range",
            "debt_to_income_ratio",
            "loan_length",
            "repaid_loan_on_prev_car",
            "size_of_downpayment",
            "driver_tenure",
        ],
    },
    "us_census": {
        "loader": "load_us_census_ma_employment_data",
        "score": "predicted_probability",
        "prediction": "prediction",
        "label": "employed",
        "timestamp": "timestamp",  # added: see the module docstring
        "nml_timestamp": None,
        "features": [
            "AGEP",
            "SCHL",
            "MAR",
            "RELP",
            "DIS",
            "ESP",
            "CIT",
            "MIG",
            "MIL",
            "ANC",
            "NATIVITY",
            "DEAR",
            "DEYE",
            "DREM",
            "SEX",
            "RAC1P",
        ],
    },
}


# --------------------------------------------------------------------------- export


def _normalize(name: str, frame: Any, label: str, conversions: list[str]) -> Any:
    import pandas as pd

    frame = frame.copy()
    spec = DATASETS[name]
    if spec["nml_timestamp"] is None:
        # 1 January of the year + one second per row, in file order (the file is in year
        # order): unique, so "rows in time order" is the file's order
        years = pd.to_datetime(frame["year"].astype(str), format="%Y")
        within = frame.groupby("year").cumcount().to_numpy()
        frame["timestamp"] = years + pd.to_timedelta(within, unit="s")
        _note(conversions, "timestamp added: 1 January of `year` + 1 s per row (file order)")
    else:
        ts = spec["timestamp"]
        if not pd.api.types.is_datetime64_any_dtype(frame[ts]):
            frame[ts] = pd.to_datetime(frame[ts])
            _note(conversions, f"{ts}: text -> timestamp")
    if label in frame.columns and frame[label].dtype.kind != "i":
        if frame[label].isna().any():
            raise SystemExit(f"{name}: label {label} has missing values")
        before = frame[label].dtype.name
        frame[label] = frame[label].astype("int64")
        _note(conversions, f"{label}: {before} -> int64")
    return frame


def _note(conversions: list[str], text: str) -> None:
    if text not in conversions:
        conversions.append(text)


def export(name: str, out: Path) -> dict[str, Any]:
    """Write NAME_reference.parquet and NAME_analysis.parquet (targets joined by id)."""
    nml = _nml()
    spec = DATASETS[name]
    reference, analysis, targets = getattr(nml, spec["loader"])()
    label = spec["label"]
    conversions: list[str] = []
    targets = targets[["id", label]].astype({label: "int64"})
    joined = analysis.merge(targets, on="id", how="left", validate="one_to_one")
    if len(joined) != len(analysis) or joined[label].isna().any():
        raise SystemExit(f"{name}: the targets do not cover every analysis row by id")
    reference = _normalize(name, reference, label, conversions)
    joined = _normalize(name, joined, label, conversions)
    ref_path = out / f"{name}_reference.parquet"
    ana_path = out / f"{name}_analysis.parquet"
    reference.to_parquet(ref_path, index=False)
    joined.to_parquet(ana_path, index=False)
    return {
        "reference": str(ref_path),
        "analysis": str(ana_path),
        "conversions": conversions,
        "reference_columns": list(reference.columns),
        "analysis_columns": list(joined.columns),
    }


# --------------------------------------------------------------------------- NannyML runs


def _median_time(fn: Callable[[], Any], repeat: int) -> tuple[float, list[float], Any]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, result


def _num(v: Any) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _flag(v: Any) -> bool | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return bool(v)


def _date(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    try:
        import pandas as pd

        if pd.isna(v):
            return None
        return str(pd.Timestamp(v).isoformat())
    except (TypeError, ValueError):
        return str(v)


def run_dataset(
    name: str, out: Path, repeat: int, metrics: list[str] | None = None
) -> dict[str, Any]:
    import pandas as pd

    nml = _nml()
    metrics = metrics or METRICS
    spec = DATASETS[name]
    files = export(name, out)
    score, pred, label = spec["score"], spec["prediction"], spec["label"]
    ts = spec["nml_timestamp"]
    features = list(spec["features"])

    t0 = time.perf_counter()
    reference = pd.read_parquet(files["reference"])
    analysis_full = pd.read_parquet(files["analysis"])
    read_s = time.perf_counter() - t0
    analysis = analysis_full.drop(columns=[label])  # CBPE never sees the analysis labels

    common = {"chunk_size": CHUNK_SIZE, "timestamp_column_name": ts}

    def cbpe() -> Any:
        est = nml.CBPE(
            y_pred_proba=score,
            y_pred=pred,
            y_true=label,
            metrics=metrics,
            problem_type="classification_binary",
            **common,
        )
        est.fit(reference)
        return est.estimate(analysis)

    def realized() -> Any:
        calc = nml.PerformanceCalculator(
            y_pred_proba=score,
            y_pred=pred,
            y_true=label,
            metrics=metrics,
            problem_type="classification_binary",
            **common,
        )
        calc.fit(reference)
        return calc.calculate(analysis_full)

    drift_calc: list[Any] = []

    def drift() -> Any:
        calc = nml.UnivariateDriftCalculator(column_names=features, **common)
        calc.fit(reference)
        drift_calc[:] = [calc]
        return calc.calculate(analysis)

    cbpe_s, cbpe_all, est_res = _median_time(cbpe, repeat)
    real_s, real_all, real_res = _median_time(realized, repeat)
    drift_s, drift_all, drift_res = _median_time(drift, repeat)

    est_df = est_res.filter(period="analysis").to_df()
    real_df = real_res.filter(period="analysis").to_df()
    drift_df = drift_res.filter(period="analysis").to_df()
    calc = drift_calc[0]

    chunks = []
    for i in range(len(est_df)):
        e, r = est_df.iloc[i], real_df.iloc[i]
        start, end = int(e[("chunk", "start_index")]), int(e[("chunk", "end_index")])
        if (int(r[("chunk", "start_index")]), int(r[("chunk", "end_index")])) != (start, end):
            raise SystemExit(f"{name}: CBPE and PerformanceCalculator chunked differently")
        chunk: dict[str, Any] = {
            "index": i,
            "key": str(e[("chunk", "key")]),
            "start": start,
            "end": end,  # inclusive, as NannyML's end_index
            "rows": end - start + 1,
            "start_date": _date(e[("chunk", "start_date")]),
            "end_date": _date(e[("chunk", "end_date")]),
            "estimated": {},
            "realized": {},
        }
        for m in metrics:
            chunk["estimated"][m] = {
                "value": _num(e[(m, "value")]),
                "sampling_error": _num(e[(m, "sampling_error")]),
                "lower": _num(e[(m, "lower_confidence_boundary")]),
                "upper": _num(e[(m, "upper_confidence_boundary")]),
                "lower_threshold": _num(e[(m, "lower_threshold")]),
                "upper_threshold": _num(e[(m, "upper_threshold")]),
                "alert": _flag(e[(m, "alert")]),
            }
            chunk["realized"][m] = {
                "value": _num(r[(m, "value")]),
                "lower_threshold": _num(r[(m, "lower_threshold")]),
                "upper_threshold": _num(r[(m, "upper_threshold")]),
                "alert": _flag(r[(m, "alert")]),
            }
        chunks.append(chunk)

    # the chunk rows must be the analysis rows in file order (the files are in time order)
    starts = [c["start"] for c in chunks]
    expected = list(range(0, len(analysis), CHUNK_SIZE))
    if starts != expected or chunks[-1]["end"] != len(analysis) - 1:
        raise SystemExit(f"{name}: NannyML's chunks are not consecutive {CHUNK_SIZE}-row blocks")

    drift_rows = []
    methods = {
        f: calc.continuous_method_names
        if f in calc.continuous_column_names
        else calc.categorical_method_names
        for f in features
    }
    for i in range(len(drift_df)):
        row = drift_df.iloc[i]
        for f in features:
            for method in methods[f]:
                drift_rows.append(
                    {
                        "chunk": i,
                        "feature": f,
                        "method": method,
                        "value": _num(row[(f, method, "value")]),
                        "upper_threshold": _num(row[(f, method, "upper_threshold")]),
                        "lower_threshold": _num(row[(f, method, "lower_threshold")]),
                        "alert": bool(row[(f, method, "alert")]),
                    }
                )

    return {
        "dataset": name,
        "loader": f"nannyml.{spec['loader']}",
        "versions": _versions(),
        "columns": {
            "id": "id",
            "score": score,
            "prediction": pred,
            "label": label,
            "timestamp": spec["timestamp"],
            "nannyml_timestamp": ts,
            "features": features,
            "continuous": [f for f in features if f in calc.continuous_column_names],
            "categorical": [f for f in features if f in calc.categorical_column_names],
        },
        "files": files,
        "rows": {"reference": len(reference), "analysis": len(analysis)},
        "chunk_size": CHUNK_SIZE,
        "chunking": (
            f"SizeBasedChunker(chunk_size={CHUNK_SIZE}, incomplete='keep') over the analysis "
            + (f"sorted by {ts}" if ts else "in row order (no timestamp, as NannyML's example)")
        ),
        "metrics": metrics,
        "cbpe": {"calibration": "isotonic", "thresholds": "StandardDeviationThreshold(3, 3)"},
        "chunks": chunks,
        "drift": {
            "methods": {
                "continuous": list(calc.continuous_method_names),
                "categorical": list(calc.categorical_method_names),
            },
            "defaults": "UnivariateDriftCalculator defaults: jensen_shannon for both kinds",
            "threshold": "StandardDeviationThreshold(std_upper_multiplier=3, lower=None) "
            "of the reference chunks' values",
            "rows": drift_rows,
        },
        "timings": {
            "repeat": repeat,
            "read_parquet_s": read_s,
            "cbpe_fit_estimate_s": cbpe_s,
            "cbpe_all_s": cbpe_all,
            "realized_fit_calculate_s": real_s,
            "realized_all_s": real_all,
            "drift_fit_calculate_s": drift_s,
            "drift_all_s": drift_all,
            "total_s": cbpe_s + real_s + drift_s,
        },
    }


def _versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for mod in ("nannyml", "pandas", "numpy", "sklearn", "lightgbm", "pyarrow"):
        with contextlib.suppress(ImportError):
            out[mod] = str(importlib.import_module(mod).__version__)
    return out


# --------------------------------------------------------------------------- fixture


def write_fixture(dest: Path) -> None:
    """tests/monitor/data: the synthetic binary set as two Parquet files (prediction, score,
    label, timestamp and features only) and NannyML's per-chunk roc_auc and f1 on them."""
    import tempfile

    import pandas as pd

    spec = DATASETS["synthetic_binary"]
    keep = [spec["score"], spec["prediction"], spec["label"], spec["timestamp"]]
    keep += spec["features"]
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        files = export("synthetic_binary", Path(tmp))
        ref = pd.read_parquet(files["reference"])[keep]
        ana = pd.read_parquet(files["analysis"])[keep]
    ref_path = dest / f"{FIXTURE_NAME}_reference.parquet"
    ana_path = dest / f"{FIXTURE_NAME}_analysis.parquet"
    ref.to_parquet(ref_path, index=False, compression="zstd")
    ana.to_parquet(ana_path, index=False, compression="zstd")
    size = ref_path.stat().st_size + ana_path.stat().st_size
    if size > FIXTURE_LIMIT:
        raise SystemExit(f"fixture Parquet files are {size / 2**20:.1f} MB, over the 6 MB limit")

    # NannyML as in run_dataset: on the same export, whose kept columns are these files
    with tempfile.TemporaryDirectory() as tmp:
        res = run_dataset("synthetic_binary", Path(tmp), repeat=1, metrics=FIXTURE_METRICS)
    ref_back, ana_back = pd.read_parquet(ref_path), pd.read_parquet(ana_path)
    if not (ref_back.equals(ref) and ana_back.equals(ana)):
        raise SystemExit("fixture Parquet files do not read back equal")
    fixture = {
        "about": (
            "NannyML 0.13 CBPE (isotonic calibration) and realized performance on "
            "nannyml.load_synthetic_binary_classification_dataset(), chunk_size 5000 over "
            "the analysis in timestamp order; written by benchmarks/_nannyml_peer.py "
            "--fixture tests/monitor/data"
        ),
        "versions": res["versions"],
        "files": {"reference": ref_path.name, "analysis": ana_path.name},
        "sha256": {
            p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (ref_path, ana_path)
        },
        "subsampled": False,
        "rows": {"reference": len(ref), "analysis": len(ana)},
        "columns": {k: res["columns"][k] for k in ("score", "prediction", "label")}
        | {"timestamp": spec["timestamp"], "features": spec["features"]},
        "chunk_size": CHUNK_SIZE,
        "regenerate": (
            "the analysis file holds the label column (work_home_actual) joined by id: drop "
            "it for estimation; fit CBPE on the reference file; estimate on windows of 5000 "
            "analysis rows in timestamp order (row i belongs to chunk i // 5000); realized "
            "values are sklearn's roc_auc_score and f1_score of each chunk's rows"
        ),
        "chunks": [
            {
                "index": c["index"],
                "start": c["start"],
                "end": c["end"],
                "rows": c["rows"],
                "realized": {m: c["realized"][m]["value"] for m in FIXTURE_METRICS},
                "estimated": {m: c["estimated"][m]["value"] for m in FIXTURE_METRICS},
                "estimated_lower": {m: c["estimated"][m]["lower"] for m in FIXTURE_METRICS},
                "estimated_upper": {m: c["estimated"][m]["upper"] for m in FIXTURE_METRICS},
                "sampling_error": {m: c["estimated"][m]["sampling_error"] for m in FIXTURE_METRICS},
            }
            for c in res["chunks"]
        ],
    }
    path = dest / f"{FIXTURE_NAME}.json"
    path.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {path}, {ref_path.name}, {ana_path.name} ({size / 2**20:.2f} MB)")


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="directory for the Parquet and JSON files")
    parser.add_argument("--quick", action="store_true", help="only the synthetic binary set")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fixture", type=Path, help="write the test fixture to this folder")
    args = parser.parse_args()
    if args.fixture is not None:
        write_fixture(args.fixture)
        if args.out is None:
            return
    if args.out is None:
        parser.error("--out DIR is required")
    args.out.mkdir(parents=True, exist_ok=True)
    names = ["synthetic_binary"] if args.quick else list(DATASETS)
    for name in names:
        res = run_dataset(name, args.out, args.repeat)
        path = args.out / f"{name}.json"
        path.write_text(json.dumps(res, indent=1) + "\n")
        t = res["timings"]
        print(
            f"  {name}: {len(res['chunks'])} chunks; CBPE {t['cbpe_fit_estimate_s']:.2f} s, "
            f"realized {t['realized_fit_calculate_s']:.2f} s, "
            f"drift {t['drift_fit_calculate_s']:.2f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
