"""The fitted reference kept in the project (``.loopml/cache``): loaded by the next run (a
fresh process included) with the very result of fitting again; a changed reference, a
corrupt file or another format is fitted again; no project keeps nothing on disk."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import loopml.monitor as mon
from loopml.monitor import _REFERENCE_CACHE, monitor
from loopml.monitor import _fitted as fitted_mod
from loopml.monitor._bins import FeatureBins
from loopml.monitor._drift import _NULL_CACHE, Null
from loopml.project import Project
from monitor.monitor_helpers import make_stream


def _files(folder: Path, ref_seed: int = 0, n_ref: int = 4000) -> tuple[Path, Path]:
    ref, cur = folder / "ref.parquet", folder / "cur.parquet"
    pq.write_table(make_stream(np.random.default_rng(ref_seed), n_ref), ref)
    if not cur.exists():
        pq.write_table(make_stream(np.random.default_rng(1), 2500, shift=0.3), cur)
    return ref, cur


def _forget() -> None:
    """As a new process: no fit and no null in memory."""
    _REFERENCE_CACHE.clear()
    _NULL_CACHE.clear()


def _run(project: Any, ref: Any, cur: Path, **kw: Any) -> dict[str, Any]:
    kw.setdefault("window", "10min")
    got = monitor(project, data=str(cur), time="ts", reference=ref, store=False, **kw)
    return got.to_dict()


def _cache_files(project: Project) -> list[Path]:
    return sorted((project.dir / ".loopml" / "cache").glob("monitor-reference-*.json"))


def _no_fitting(monkeypatch: pytest.MonkeyPatch) -> None:
    def refit(*a: Any, **k: Any) -> Any:
        raise AssertionError("the reference was fitted again")

    monkeypatch.setattr(mon, "reference_bins", refit)
    monkeypatch.setattr(mon, "null_for", refit)


def test_the_saved_fit_gives_the_result_of_fitting_again(
    binary_project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref, cur = _files(tmp_path)
    _forget()
    cold = _run(binary_project, str(ref), cur)
    (saved,) = _cache_files(binary_project)
    doc = json.loads(saved.read_text())
    assert doc["format"] == fitted_mod.FORMAT and doc["rows"] == 4000
    assert doc["key"]["reference"][:2] == ["file", str(ref.resolve())]
    assert len(doc["nulls"]) > 0
    _forget()
    with monkeypatch.context() as m:
        _no_fitting(m)
        loaded = _run(binary_project, str(ref), cur)
    assert loaded == cold
    # other settings of the nulls draw theirs once, kept beside the first ones
    _forget()
    other = _run(binary_project, str(ref), cur, alpha=0.01)
    assert other != cold and len(json.loads(saved.read_text())["nulls"]) > len(doc["nulls"])
    _forget()
    with monkeypatch.context() as m:
        _no_fitting(m)
        assert _run(binary_project, str(ref), cur, alpha=0.01) == other
        assert _run(binary_project, str(ref), cur) == cold
    # another bin setting or other columns are another fit
    _forget()
    _run(binary_project, str(ref), cur, n_bins=5)
    _run(binary_project, str(ref), cur, columns=["c10", "num"])
    assert len(_cache_files(binary_project)) == 3


_CHILD = """
import sys
import loopml.monitor as mon
if sys.argv[1] == "loaded":
    def refit(*a, **k):
        raise AssertionError("the reference was fitted again")
    mon.reference_bins = refit
    mon.null_for = refit
from loopml.cli import app
app(sys.argv[2:])
"""


def test_a_new_process_loads_the_fit(binary_project: Project, tmp_path: Path) -> None:
    ref, cur = _files(tmp_path)
    args = ["-C", str(binary_project.dir), "monitor", "--data", str(cur), "--time", "ts"]
    args += ["--window", "10min", "--reference", str(ref), "--json", "--no-store"]

    def run(mode: str) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, mode, *args], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-2000:]
        out: dict[str, Any] = json.loads(done.stdout)
        return out

    first = run("fit")
    assert len(_cache_files(binary_project)) == 1
    assert run("loaded") == first


def test_a_changed_reference_file_is_fitted_again(binary_project: Project, tmp_path: Path) -> None:
    ref, cur = _files(tmp_path)
    _forget()
    first = _run(binary_project, str(ref), cur)
    _files(tmp_path, ref_seed=5, n_ref=3000)  # the same name, other rows
    os.utime(ref, ns=(1, 1))
    _forget()
    changed = _run(binary_project, str(ref), cur)
    assert changed["rows_reference"] == 3000 and changed != first
    assert len(_cache_files(binary_project)) == 2
    for f in _cache_files(binary_project):
        f.unlink()
    _forget()
    assert _run(binary_project, str(ref), cur) == changed


def test_a_changed_dataset_or_split_is_fitted_again(
    binary_project: Project, tmp_path: Path
) -> None:
    from loopml.data import add_dataset, split_dataset

    _, cur = _files(tmp_path)

    def table(seed: int) -> pa.Table:
        base = make_stream(np.random.default_rng(seed), 2_000).drop_columns(["ts"])
        return base.append_column("id", pa.array(range(2_000))).append_column(
            "label", pa.array(np.random.default_rng(2).integers(0, 2, 2_000))
        )

    split_dataset(binary_project, add_dataset(binary_project, table(9), name="d"), test=0.25)
    _forget()
    first = _run(binary_project, "d@1:train", cur)
    _forget()
    assert _run(binary_project, "d@1:train", cur) == first
    # a new split of the same version: other training rows, another fit
    split_dataset(binary_project, "d@1", test=0.25, seed=7)
    _forget()
    resplit = _run(binary_project, "d@1:train", cur)
    assert resplit["features"] != first["features"]
    # a new version's content is another fit; its fit equals fitting with nothing saved
    split_dataset(binary_project, add_dataset(binary_project, table(4), name="d"), test=0.25)
    _forget()
    second = _run(binary_project, "d@2:train", cur)
    assert second["features"] not in (first["features"], resplit["features"])
    assert len(_cache_files(binary_project)) == 3
    for f in _cache_files(binary_project):
        f.unlink()
    _forget()
    assert _run(binary_project, "d@1:train", cur) == resplit
    assert _run(binary_project, "d@2:train", cur) == second


@pytest.mark.parametrize(
    "damage",
    ["garbage", "truncated", "format", "counts", "empty", "not an object", "a folder"],
)
def test_a_damaged_or_other_format_file_is_fitted_again(
    binary_project: Project, tmp_path: Path, damage: str
) -> None:
    ref, cur = _files(tmp_path)
    _forget()
    cold = _run(binary_project, str(ref), cur)
    (saved,) = _cache_files(binary_project)
    good = saved.read_text()
    doc = json.loads(good)
    if damage == "garbage":
        saved.write_bytes(b"\x00\xff not json")
    elif damage == "truncated":
        saved.write_text(good[: len(good) // 2])
    elif damage == "format":
        saved.write_text(json.dumps({**doc, "format": fitted_mod.FORMAT + 1}))
    elif damage == "counts":  # valid JSON whose counts do not sum to the reference's rows
        doc["features"][0]["ref_counts"][1] += 1
        saved.write_text(json.dumps(doc))
    elif damage == "empty":
        saved.write_text("")
    elif damage == "not an object":
        saved.write_text("[1, 2, 3]")
    else:  # something that is not a file where the fit belongs
        saved.unlink()
        saved.mkdir()
    _forget()
    assert _run(binary_project, str(ref), cur) == cold
    if damage == "a folder":
        saved.rmdir()
        _forget()
        assert _run(binary_project, str(ref), cur) == cold
    # fitted again and rewritten: the next run loads it
    key = json.loads(saved.read_text())["key"]
    columns = {c: t for c, t in key["columns"]}
    assert fitted_mod.load(saved, key, columns) is not None


def test_an_interrupted_write_leaves_no_file(
    binary_project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref, cur = _files(tmp_path)

    def interrupted(src: Any, dst: Any) -> None:
        raise OSError("disk full")

    with monkeypatch.context() as m:
        m.setattr(os, "replace", interrupted)
        _forget()
        cold = _run(binary_project, str(ref), cur)
    folder = binary_project.dir / ".loopml" / "cache"
    assert not list(folder.iterdir())  # neither the fit nor its temporary file
    # a temporary file a killed writer left behind is removed once it is old
    stale = folder / ".monitor-reference-0123.99.abcd.tmp"
    stale.write_text('{"format": 1, "ke')
    os.utime(stale, (1, 1))
    _forget()
    assert _run(binary_project, str(ref), cur) == cold
    assert [p.name for p in folder.iterdir()] == [_cache_files(binary_project)[0].name]


def test_at_most_a_few_fits_are_kept(
    binary_project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fitted_mod, "KEEP", 2)
    _, cur = _files(tmp_path)
    names = []
    for seed in range(4):
        ref = tmp_path / f"ref{seed}.parquet"
        pq.write_table(make_stream(np.random.default_rng(seed), 1000 + seed), ref)
        _forget()
        _run(binary_project, str(ref), cur)
        names.append({p.name for p in _cache_files(binary_project)})
    assert len(names[-1]) == 2 and names[-1] - names[2] and names[-1] & names[2]
    assert not names[-1] & names[1] - names[2]


def test_without_a_project_nothing_is_kept_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref, cur = _files(tmp_path)
    monkeypatch.chdir(tmp_path)
    _forget()
    cold = _run(None, str(ref), cur)
    assert len(_REFERENCE_CACHE) == 1
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["cur.parquet", "ref.parquet"]
    with monkeypatch.context() as m:
        _no_fitting(m)
        assert _run(None, str(ref), cur) == cold  # the process's own fit


def test_the_store_checks_ignore_the_cache(binary_project: Project, tmp_path: Path) -> None:
    ref, cur = _files(tmp_path)
    _forget()
    _run(binary_project, str(ref), cur)
    (saved,) = _cache_files(binary_project)
    check = binary_project.store.verify()
    assert check.ok, check.problems
    listed = [x.location for x in (*check.temporary, *check.unreferenced)]
    assert not [x for x in listed if "cache" in x]
    removed = binary_project.store.gc(grace=0).removed
    assert not [x for x in removed if "cache" in x.location] and saved.exists()


def test_bins_and_nulls_round_trip_exactly(tmp_path: Path) -> None:
    numeric = FeatureBins(
        "x", "numeric", "DOUBLE", ("missing", "<= 0.1", "(0.1, 2]", "> 2"), (1, 3, 0, 4),
        edges=(0.1, 2.0000000000000004), means=(-0.3333333333333333, math.nan, 7.1e300),
    )  # fmt: skip
    cat = FeatureBins(
        "c", "categorical", "VARCHAR", ("missing", "other", "a'b", "é"), (0, 2, 5, 1),
        values=("a'b", "é"),
    )  # fmt: skip
    null = Null(
        n=17, draws=400, median=0.1 / 3, threshold=0.3, shift_median=1.0000000000000002,
        shift_threshold=3.5, score_fit=(math.nan, math.nan), shift_fit=(2.5, 1e-17),
    )  # fmt: skip
    cols = {"x": "DOUBLE", "c": "VARCHAR"}
    key = fitted_mod.key_of(["file", "/r.parquet", 1, 2], cols, n_bins=3, max_categories=5,
                            engine="DuckDBBackend")  # fmt: skip
    fit = fitted_mod.Fitted([numeric, cat], 8, {("x", 17, 0.05, 400, 0): null})
    path = fitted_mod.file_for(tmp_path, key)
    assert fitted_mod.save(path, key, fit, reference="r")
    got = fitted_mod.load(path, key, cols)
    assert got is not None and got.n_ref == 8
    assert [b.to_dict() for b in got.bins] == [numeric.to_dict(), cat.to_dict()]
    assert got.bins[1] == cat and got.bins[0].values == () and got.bins[0].edges == numeric.edges
    (k, v), = got.nulls.items()  # fmt: skip
    assert k == ("x", 17, 0.05, 400, 0) and math.isnan(v.score_fit[0])
    assert (v.median, v.threshold, v.shift_median, v.shift_fit) == (
        null.median, null.threshold, null.shift_median, null.shift_fit
    )  # fmt: skip
    assert "NaN" not in path.read_text().replace('"NaN"', "")  # plain JSON, no NaN tokens
    # another key or other columns do not load it
    assert fitted_mod.load(path, {**key, "n_bins": 4}, cols) is None
    assert fitted_mod.load(path, key, {"c": "VARCHAR", "x": "DOUBLE"}) is None
