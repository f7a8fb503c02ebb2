"""The label export on seeded prediction logs: the strategies pick what they say, the random
part is uniform, the reweighted error rate is honest, the files are Label Studio's import
format (or CSV), written whole or not at all, and the record holds every row."""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from flywheel.flywheel_helpers import REGIONS, build_project, rows, serve_rows
from loopml.errors import ComputationError, InputError, SchemaError
from loopml.flywheel import _export as export_module
from loopml.flywheel._export import (
    DEFAULT_MIX,
    LabelExport,
    draw_sample,
    export_labels,
    load_export,
    parse_mix,
    reweighted_error_rate,
)
from loopml.flywheel._schema import EXPORT_KIND, FROM_NAME, ITEM_FIELD, STRATEGIES, TO_NAME
from loopml.project import Project, open_project
from loopml.serving import read_feedback, read_joined
from loopml.tableview import assert_legible, render_text

N_LOG = 3000
FLIP_NORTH = 0.6


def production(n: int, seed: int, start: int) -> pd.DataFrame:
    """Production rows with north's labels flipped; ``x`` kept inside the training range
    (the server rejects values outside it)."""
    frame = rows(n, seed, start=start, flip_north=FLIP_NORTH)
    frame["x"] = frame["x"].clip(-3.0, 3.0)
    return frame


@dataclass
class Served:
    project: Project
    frame: pd.DataFrame  # the rows served, with the request id of each
    table: pd.DataFrame  # the log joined to its feedback


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("flywheel") / "base"
    build_project(root).close()
    return root


def _copy(base: Path, name: str) -> Project:
    target = base.parent / name
    shutil.copytree(base, target)
    return open_project(target)


def _serve(project: Project, frame: pd.DataFrame, *, feedback: bool = True) -> None:
    """Serve ``frame`` with request ids drawn from a seeded generator, so that the log, its
    order and every seeded draw on it are the same in every run."""
    gen = random.Random(len(frame))
    fake = SimpleNamespace(uuid4=lambda: uuid.UUID(int=gen.getrandbits(128), version=4))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("loopml.serving._predict.uuid", fake)
        serve_rows(project, frame, feedback=feedback)


def _served(project: Project) -> Served:
    table = read_joined(project).to_pandas()
    return Served(project, table[["request_id", "id", "x", "region"]], table)


@pytest.fixture(scope="module")
def labeled(base: Path) -> Iterator[Served]:
    """3,000 served rows, every one with its feedback label."""
    project = _copy(base, "labeled")
    _serve(project, production(N_LOG, 1, 10_000))
    yield _served(project)
    project.close()


@pytest.fixture(scope="module")
def mixed(base: Path) -> Iterator[Served]:
    """600 rows with feedback, then 400 without."""
    project = _copy(base, "mixed")
    _serve(project, production(600, 2, 20_000))
    _serve(project, production(400, 3, 30_000), feedback=False)
    yield _served(project)
    project.close()


def _record_rows(ex: LabelExport) -> pd.DataFrame:
    return pd.DataFrame([r.to_dict() for r in ex.rows])


# --------------------------------------------------------------------------- strategies


def test_weak_slice_is_over_represented_as_stated(labeled: Served, tmp_path: Path) -> None:
    n = 600
    ex = export_labels(
        labeled.project, n=n, weak=["region=north"], include_labeled=True,
        out=tmp_path / "tasks.json", seed=3,
    )  # fmt: skip
    assert ex.counts_achieved == {"uncertainty": 180, "weak": 180, "random": 180, "overlap": 60}
    assert ex.mix_achieved == pytest.approx(dict(DEFAULT_MIX))
    got = _record_rows(ex).merge(labeled.table, on="request_id")
    assert len(got) == n
    # every weak pick is in the slice and says so; every north row names the slice
    assert (got.loc[got.strategy == "weak", "region"] == "north").all()
    assert ((got.region == "north") == (got.slice == "region=north")).all()
    # the slice's share = the weak share + its share of the random part (+ the uncertainty
    # rows that happen to be north); the random part's north count is binomial-like
    unc = got[got.strategy == "uncertainty"]
    outside = labeled.table[~labeled.table.request_id.isin(unc.request_id)]
    p_north = float((outside.region == "north").mean())
    part = got[got.strategy.isin(["random", "overlap"])]
    x = int((part.region == "north").sum())
    low, high = stats.binom.interval(0.999, len(part), p_north)
    assert low <= x <= high, (x, len(part), p_north)
    share = float((got.region == "north").mean())
    expected = ((unc.region == "north").sum() + 180 + len(part) * p_north) / n
    assert abs(share - expected) <= (high - low) / 2 / n
    # and the stream's share of north is far lower: the export over-represents it
    assert share > float((labeled.table.region == "north").mean()) + 0.2


def test_random_part_is_uniform(labeled: Served, tmp_path: Path) -> None:
    ex = export_labels(
        labeled.project, n=600, weak=["region=north"], include_labeled=True,
        out=tmp_path / "tasks.json", seed=4,
    )  # fmt: skip
    got = _record_rows(ex).merge(labeled.table, on="request_id")
    unc = set(got.loc[got.strategy == "uncertainty", "request_id"])
    outside = labeled.table[~labeled.table.request_id.isin(unc)]
    part = got[got.strategy.isin(["random", "overlap"])]
    observed = [int((part.region == r).sum()) for r in REGIONS]
    shares = np.array([(outside.region == r).mean() for r in REGIONS])
    assert stats.chisquare(observed, shares * len(part)).pvalue > 0.001
    # pooled over 200 draws (the fast path): each row outside uncertainty is in the random
    # part equally often, checked on the deciles of x and on the regions
    frame = labeled.table
    unc_measure = -np.abs(frame.score.to_numpy() - 0.5)
    weak = (frame.region == "north").to_numpy()
    counts = {"uncertainty": 180, "weak": 180, "random": 180, "overlap": 60}
    hits = np.zeros(len(frame))
    for seed in range(200):
        s = draw_sample(unc_measure, weak, counts, seed=seed)
        rand = np.isin(np.array(s.strategy), ["random", "overlap"])
        hits[s.index[rand]] += 1
    eligible = np.ones(len(frame), dtype=bool)
    eligible[np.argsort(-unc_measure, kind="stable")[:180]] = False
    assert hits[~eligible].sum() == 0
    deciles = pd.qcut(frame.x[eligible], 10, labels=False).to_numpy()
    per_decile = np.bincount(deciles, weights=hits[eligible], minlength=10)
    size = np.bincount(deciles, minlength=10)
    assert stats.chisquare(per_decile, size / size.sum() * per_decile.sum()).pvalue > 0.001
    regions = frame.region.to_numpy()[eligible]
    per_region = [hits[eligible][regions == r].sum() for r in REGIONS]
    size_r = np.array([(regions == r).sum() for r in REGIONS])
    assert stats.chisquare(per_region, size_r / size_r.sum() * sum(per_region)).pvalue > 0.001


def test_uncertainty_picks_the_scores_nearest_the_threshold(
    labeled: Served, tmp_path: Path
) -> None:
    ex = export_labels(
        labeled.project, n=400, mix={"uncertainty": 0.5, "random": 0.5},
        include_labeled=True, out=tmp_path / "t.json", seed=0,
    )  # fmt: skip
    assert ex.threshold == 0.5 and ex.threshold_source == "threshold of eval-4"
    picked = {r.request_id for r in ex.rows if r.strategy == "uncertainty"}
    frame = labeled.table
    nearest = np.argsort(np.abs(frame.score.to_numpy() - 0.5))[:200]
    assert picked == set(frame.request_id.to_numpy()[nearest])
    assert all(r.inclusion == 1.0 and r.stratum == "uncertainty" for r in ex.rows
               if r.strategy == "uncertainty")  # fmt: skip
    assert ex.counts_achieved["weak"] == 0  # no weak share asked


def test_entropy_is_the_multiclass_uncertainty() -> None:
    rng = np.random.default_rng(0)
    p = rng.dirichlet([1.0, 1.0, 1.0], 50)
    got = {f"__p{i}": p[:, i] for i in range(3)}
    ent = export_module._uncertainty(got, "multiclass", None, 3, 50)
    assert ent is not None
    np.testing.assert_allclose(ent, stats.entropy(p, axis=1))
    s = draw_sample(ent, np.zeros(50, dtype=bool), {"uncertainty": 5, "random": 5}, seed=1)
    chosen = {int(i) for i, k in zip(s.index, s.strategy, strict=True) if k == "uncertainty"}
    assert chosen == set(np.argsort(-stats.entropy(p, axis=1))[:5].tolist())


def test_weak_slice_expression(labeled: Served, tmp_path: Path) -> None:
    text = "x > 1.0 and region = 'south'"
    ex = export_labels(
        labeled.project, n=200, weak=text, include_labeled=True, out=tmp_path / "t.json"
    )
    got = _record_rows(ex).merge(labeled.table, on="request_id")
    weak = got[got.strategy == "weak"]
    assert len(weak) == 60
    assert ((weak.x > 1.0) & (weak.region == "south")).all()
    in_slice = (got.x > 1.0) & (got.region == "south")
    assert (in_slice == (got.slice == text)).all()


# --------------------------------------------------------------------------- estimates


def _truth(frame: pd.DataFrame) -> float:
    return float((frame.label != frame.prediction).mean())


def test_reweighted_error_rate_is_horvitz_thompson(labeled: Served, tmp_path: Path) -> None:
    ex = export_labels(
        labeled.project, n=500, weak=["region=north"], include_labeled=True,
        out=tmp_path / "tasks.json", seed=5,
    )  # fmt: skip
    fb = read_feedback(labeled.project)
    est = reweighted_error_rate(ex, fb)  # rows with request_id and label (Arrow)
    got = _record_rows(ex).merge(labeled.table[["request_id", "label"]], on="request_id")
    y = (got.label != got.prediction).to_numpy(dtype=float)
    ht = float((y / got.inclusion).sum() / N_LOG)
    assert est.value == pytest.approx(ht, abs=1e-12)
    assert est.estimate.contains(_truth(labeled.table))
    assert est.labeled == 500 and est.unlabeled == 0 and est.ignored == N_LOG - 500
    assert est.population == N_LOG
    assert sum(s["rows"] for s in est.strata) == N_LOG
    # the unweighted rate is pulled up by the over-sampled (flipped) north rows
    assert est.naive is not None and est.naive > est.value + 0.05
    assert ex.error_rate(fb).value == est.value  # the method is the function
    # half the labels: each stratum's rate rests on what is labeled; a stratum without
    # any label cannot be estimated
    half = dict(list(zip(got.request_id, got.label, strict=True))[::2])
    part = reweighted_error_rate(ex, half)
    assert part.labeled == 250 and part.unlabeled == 250
    assert part.estimate.low is not None and est.estimate.low is not None
    assert part.estimate.high is not None and est.estimate.high is not None
    assert part.estimate.high - part.estimate.low > est.estimate.high - est.estimate.low
    no_rest = {r.request_id: 0 for r in ex.rows if r.stratum != "rest"}
    with pytest.raises(ComputationError, match="rest"):
        reweighted_error_rate(ex, no_rest)
    text = render_text(est.table())
    assert_legible(text)


def test_reweighted_estimate_covers_the_true_rate(labeled: Served) -> None:
    """100 seeded draws of the design on the same log (no files, no store): the interval
    covers the stream's error rate in at least 90 of them, and the estimate is unbiased."""
    frame = labeled.table
    truth = _truth(frame)
    score = frame.score.to_numpy()
    weak = (frame.region == "north").to_numpy()
    ids = frame.request_id.to_numpy()
    pred = frame.prediction.to_numpy()
    labels = dict(zip(ids, frame.label.to_numpy(), strict=True))
    counts = {"uncertainty": 150, "weak": 150, "random": 150, "overlap": 50}
    covered = 0
    values: list[float] = []
    naive: list[float] = []
    for seed in range(100):
        s = draw_sample(-np.abs(score - 0.5), weak, counts, seed=seed)
        payload = {
            "rows": [
                {ITEM_FIELD: ids[i], "stratum": st, "inclusion": pi, "prediction": pred[i]}
                for i, st, pi in zip(s.index, s.stratum, s.inclusion, strict=True)
            ],
            "strata": s.strata,
        }
        est = reweighted_error_rate(payload, labels)
        covered += bool(est.estimate.contains(truth))
        values.append(est.value)
        assert est.naive is not None
        naive.append(est.naive)
    assert covered >= 90, covered
    se = np.std(values) / np.sqrt(len(values))
    assert abs(np.mean(values) - truth) < 4 * se
    assert np.mean(naive) > truth + 0.05  # unweighted: biased toward north


def test_census_and_edge_designs() -> None:
    # a population smaller than n: everything taken, the rate is known exactly
    s = draw_sample(np.arange(10.0), np.zeros(10, dtype=bool), {"random": 50}, seed=0)
    assert len(s) == 10 and s.inclusion.tolist() == [1.0] * 10
    assert any("all taken" in note for note in s.notes)
    payload = {
        "rows": [{ITEM_FIELD: str(i), "stratum": st, "inclusion": 1.0, "prediction": 1}
                 for i, st in zip(s.index, s.stratum, strict=True)],
        "strata": s.strata,
    }  # fmt: skip
    est = reweighted_error_rate(payload, {str(i): int(i % 2) for i in range(10)})
    assert est.value == 0.5 and est.estimate.low == est.estimate.high == 0.5
    # a weak stratum smaller than asked: taken whole, the rest makes up the difference
    weak = np.zeros(100, dtype=bool)
    weak[:5] = True
    s = draw_sample(np.zeros(100), weak, {"weak": 20, "random": 10}, seed=0)
    assert len(s) == 30 and s.strata[1]["sampled"] == 5 and s.strata[1]["inclusion"] == 1.0
    assert any("fewer than asked" in note for note in s.notes)
    # no score to judge uncertainty: its rows go to random
    s = draw_sample(np.full(100, np.nan), weak, {"uncertainty": 10, "random": 10}, seed=0)
    assert s.achieved["uncertainty"] == 0 and s.achieved["random"] == 20


# --------------------------------------------------------------------------- files


def test_label_studio_import_format(labeled: Served, tmp_path: Path) -> None:
    out = tmp_path / "tasks.json"
    ex = export_labels(
        labeled.project, n=300, weak=["region=north"], include_labeled=True, out=out, seed=6
    )
    tasks = json.loads(out.read_text(encoding="utf-8"))
    assert isinstance(tasks, list) and len(tasks) == 300
    by_id = labeled.table.set_index("request_id")
    for task, row in zip(tasks, ex.rows, strict=True):
        assert set(task) == {"data", "meta", "predictions"}
        data = task["data"]
        assert set(data) == {ITEM_FIELD, "x", "region", "id"}
        logged = by_id.loc[data[ITEM_FIELD]]
        assert data["x"] == pytest.approx(logged.x) and data["region"] == logged.region
        assert data["id"] == logged.id and data[ITEM_FIELD] == row.request_id
        meta = task["meta"]
        assert meta["strategy"] in STRATEGIES and meta["strategy"] == row.strategy
        assert meta["overlap"] == (meta["strategy"] == "overlap")
        assert meta["annotators"] == (3 if meta["overlap"] else 1)
        (pred,) = task["predictions"]
        assert set(pred) == {"model_version", "score", "result"}
        assert pred["model_version"] == "logit@1"
        (result,) = pred["result"]
        assert result == {
            "type": "choices",
            "from_name": FROM_NAME,
            "to_name": TO_NAME,
            "value": {"choices": [str(logged.prediction)]},
        }
        p1 = float(logged.score)
        assert pred["score"] == pytest.approx(p1 if logged.prediction == 1 else 1 - p1)
        assert 0.5 <= pred["score"] <= 1.0  # the probability of the predicted class
    config = ET.fromstring(Path(ex.config or "").read_text(encoding="utf-8"))
    assert Path(ex.config or "") == out.with_suffix(".xml")
    choices = config.find("Choices")
    assert choices is not None
    assert choices.get("name") == FROM_NAME and choices.get("toName") == TO_NAME
    assert [c.get("value") for c in choices.findall("Choice")] == ["0", "1"]
    texts = config.findall("Text")
    assert texts[0].get("name") == TO_NAME
    variables = {str(t.get("value")).removeprefix("$") for t in texts}
    assert variables == set(tasks[0]["data"])


def _sdk_python() -> str | None:
    """An interpreter with label-studio-sdk: LOOPML_LABEL_STUDIO_PYTHON (.ci/run makes one),
    else this one when it has the sdk."""
    import importlib.util
    import os
    import sys

    given = os.environ.get("LOOPML_LABEL_STUDIO_PYTHON")
    if given:
        return given
    return sys.executable if importlib.util.find_spec("label_studio_sdk") else None


def test_label_studio_sdk_accepts_the_export(labeled: Served, tmp_path: Path) -> None:
    """Label Studio's own checks (label-studio-sdk, in its own environment): the config is
    valid, every object's variable is in each task's data, every prediction validates."""
    import os
    import subprocess

    python = _sdk_python()
    if python is None:
        if os.environ.get("CI"):
            pytest.fail("CI checks the export with label-studio-sdk: .ci/run sets "
                        "LOOPML_LABEL_STUDIO_PYTHON")  # fmt: skip
        pytest.skip("label-studio-sdk not installed (set LOOPML_LABEL_STUDIO_PYTHON to a "
                    "python that has it; .ci/run does)")  # fmt: skip
    out = tmp_path / "tasks.json"
    ex = export_labels(labeled.project, n=100, include_labeled=True, out=out, weak=[])
    script = Path(__file__).parent / "data" / "check_sdk.py"
    done = subprocess.run(
        [python, str(script), str(ex.config), str(out)], capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("ok: 100 tasks")


def test_csv_export(labeled: Served, tmp_path: Path) -> None:
    out = tmp_path / "tasks.csv"
    ex = export_labels(
        labeled.project, n=120, format="csv", weak="region=north", include_labeled=True,
        out=out, seed=7,
    )  # fmt: skip
    assert ex.config is None and not out.with_suffix(".xml").exists()
    with out.open(encoding="utf-8", newline="") as fh:
        read = list(csv.DictReader(fh))
    assert list(read[0]) == [
        ITEM_FIELD, "x", "region", "id", "prediction", "score", "strategy", "overlap",
    ]  # fmt: skip
    assert len(read) == 120
    by_id = labeled.table.set_index("request_id")
    for line, row in zip(read, ex.rows, strict=True):
        logged = by_id.loc[line[ITEM_FIELD]]
        assert line[ITEM_FIELD] == row.request_id and line["strategy"] == row.strategy
        assert float(line["x"]) == pytest.approx(logged.x) and line["region"] == logged.region
        assert line["prediction"] == str(logged.prediction)
        assert float(line["score"]) == pytest.approx(logged.score)
        assert line["overlap"] == ("true" if row.overlap else "false")


def test_record_holds_every_row(labeled: Served, tmp_path: Path) -> None:
    out = tmp_path / "tasks.json"
    ex = export_labels(
        labeled.project, n=250, weak=["region=north"], include_labeled=True, out=out,
        seed=8, overlap_annotators=2,
    )  # fmt: skip
    assert ex.record_id is not None and ex.record_id.startswith("lsx-")
    rec = labeled.project.store.get(ex.record_id, kind=EXPORT_KIND)
    p = rec.payload
    assert p["file"] == str(out) and p["format"] == "labelstudio" and p["n"] == 250
    assert p["population"] == N_LOG and p["model"] == "logit@1" and p["label_field"] == "label"
    assert p["classes"] == [0, 1] and p["weak"] == {"slices": ["region=north"], "source": "given"}
    assert p["mix"]["asked"] == dict(DEFAULT_MIX) and p["mix"]["achieved"] == ex.mix_achieved
    tasks = json.loads(out.read_text(encoding="utf-8"))
    assert [r[ITEM_FIELD] for r in p["rows"]] == [t["data"][ITEM_FIELD] for t in tasks]
    assert len({r[ITEM_FIELD] for r in p["rows"]}) == 250
    keys = {ITEM_FIELD, "strategy", "stratum", "inclusion", "weight", "overlap", "annotators",
            "slice", "score", "prediction", "model_version"}  # fmt: skip
    for r in p["rows"]:
        assert set(r) == keys
        assert r["weight"] == pytest.approx(1 / r["inclusion"])
        assert r["annotators"] == (2 if r["overlap"] else 1)
    # inclusion = sampled / rows of the stratum; the strata partition the population
    strata = {s["stratum"]: s for s in p["strata"]}
    assert sum(s["rows"] for s in p["strata"]) == N_LOG
    for r in p["rows"]:
        s = strata[r["stratum"]]
        assert r["inclusion"] == pytest.approx(s["sampled"] / s["rows"])
    loaded = load_export(labeled.project, ex.record_id)
    assert loaded.rows == ex.rows and loaded.strata == ex.strata
    assert load_export(labeled.project).record_id == ex.record_id  # the newest
    text = render_text(ex.table())
    assert_legible(text)
    assert "region=north (from given)" in text
    assert ex._repr_html_().startswith("<")


@pytest.mark.parametrize("fail", ["fsync", "second rename"])
def test_a_failed_write_leaves_no_file(
    labeled: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail: str
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    before = len(labeled.project.store.list(EXPORT_KIND))
    if fail == "fsync":
        monkeypatch.setattr(os, "fsync", _raise_oserror)
    else:
        real = os.replace
        calls: list[Any] = []

        def replace(src: Any, dst: Any) -> None:
            calls.append(dst)
            if len(calls) == 2:
                raise OSError("disk full")
            real(src, dst)

        monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(InputError, match="cannot write"):
        export_labels(labeled.project, n=50, include_labeled=True, out=folder / "t.json")
    assert list(folder.iterdir()) == []
    assert len(labeled.project.store.list(EXPORT_KIND)) == before


def _raise_oserror(*_: Any) -> None:
    raise OSError("no space left on device")


def test_a_failed_record_removes_the_files(
    labeled: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def put(*_: Any, **__: Any) -> None:
        raise RuntimeError("store down")

    monkeypatch.setattr(labeled.project.store, "put", put)
    with pytest.raises(RuntimeError):
        export_labels(labeled.project, n=20, include_labeled=True, out=tmp_path / "t.json")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- population


def test_population_is_the_unlabeled_rows_by_default(mixed: Served, tmp_path: Path) -> None:
    unlabeled = set(mixed.table.loc[mixed.table.label.isna(), "request_id"])
    assert len(unlabeled) == 400
    ex = export_labels(mixed.project, n=100, weak=["region=north"], out=tmp_path / "a.json")
    assert ex.population == 400 and ex.log_rows == 1000 and not ex.include_labeled
    assert {r.request_id for r in ex.rows} <= unlabeled
    ex = export_labels(
        mixed.project, n=100, include_labeled=True, weak=["region=north"],
        out=tmp_path / "b.json",
    )  # fmt: skip
    assert ex.population == 1000
    newest = mixed.table.sort_values(["ts", "request_id"]).request_id.to_numpy()[-50:]
    ex = export_labels(
        mixed.project, n=20, window="50rows", include_labeled=True, weak=["region=north"],
        out=tmp_path / "c.json",
    )  # fmt: skip
    assert ex.population == 50 and {r.request_id for r in ex.rows} <= set(newest)
    ex = export_labels(mixed.project, n=20, since="1d", weak=[], out=tmp_path / "d.json")
    assert ex.population == 400 and ex.since == "1d"
    first = mixed.table.ts.min().isoformat()
    ex = export_labels(mixed.project, n=20, since=first, weak=[], out=tmp_path / "e.json")
    assert ex.population == 400
    with pytest.raises(InputError, match="no logged prediction") as err:
        export_labels(mixed.project, n=20, since="2999-01-01", out=tmp_path / "f.json")
    assert err.value.hint and "include_labeled" in err.value.hint


def test_default_weak_slices(mixed: Served, tmp_path: Path) -> None:
    # no monitor record, and analysis ranks no slice with a gain: weak share goes to random
    ex = export_labels(mixed.project, n=100, out=tmp_path / "a.json")
    assert ex.weak_slices == () and ex.weak_source is None
    assert ex.counts_achieved["weak"] == 0 and ex.counts_achieved["random"] == 60
    assert any("went to random" in n for n in ex.notes)
    assert any("analysis of eval-4" in n for n in ex.notes)
    # the newest monitor record recommends going back to data for north
    rec = mixed.project.store.put(
        "monitor", "monitor",
        {"recommendation": {"stage": "data", "slice": "region=north", "action": "label"}},
    )  # fmt: skip
    ex = export_labels(mixed.project, n=100, out=tmp_path / "b.json")
    assert ex.weak_slices == ("region=north",) and ex.weak_source == f"monitor {rec.id}"
    assert ex.counts_achieved["weak"] == 30
    got = _record_rows(ex).merge(mixed.table, on="request_id")
    assert (got.loc[got.strategy == "weak", "region"] == "north").all()


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n": 0}, InputError, "n=0"),
        ({"n": 2.5}, InputError, "n=2.5"),
        ({"mix": {"uncertainty": 0.5, "wek": 0.5}}, InputError, "'wek'.*did you mean 'weak'"),
        ({"mix": {"uncertainty": 0.5, "random": 0.4}}, InputError, "sum to 0.9"),
        ({"mix": {"random": 1.5}}, InputError, "outside"),
        ({"mix": "random=0.5,overlap=x"}, InputError, "not a number"),
        ({"weak": ["city=paris"]}, SchemaError, "'city'"),
        ({"weak": "regon = 'north'"}, SchemaError, "'regon'.*did you mean 'region'"),
        ({"format": "excel"}, InputError, "not an export format"),
        ({"overlap_annotators": 1}, InputError, "overlap_annotators"),
        ({"window": "soon"}, InputError, "not a window size"),
        ({"since": "yesterday"}, InputError, "neither a date"),
        ({"since": "100rows"}, InputError, "number of rows"),
    ],
)
def test_bad_input(
    labeled: Served, tmp_path: Path, kwargs: dict[str, Any], error: type, match: str
) -> None:
    args: dict[str, Any] = {"include_labeled": True, "out": tmp_path / "t.json", **kwargs}
    with pytest.raises(error, match=match):
        export_labels(labeled.project, **args)
    assert list(tmp_path.iterdir()) == []


def test_bad_output_paths(labeled: Served, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist") as err:
        export_labels(labeled.project, include_labeled=True, out=tmp_path / "nope" / "t.json")
    assert err.value.where == "out"
    with pytest.raises(InputError, match="is a directory"):
        export_labels(labeled.project, include_labeled=True, out=tmp_path)
    with pytest.raises(InputError, match="labeling config"):
        export_labels(labeled.project, include_labeled=True, out=tmp_path / "t.xml")


def test_no_log(binary_project: Project, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no prediction log") as err:
        export_labels(binary_project, out=tmp_path / "t.json")
    assert err.value.hint and "serve" in err.value.hint


def test_parse_mix() -> None:
    assert parse_mix(None) == dict(DEFAULT_MIX)
    assert parse_mix("uncertainty=0.5, random=0.5") == {
        "uncertainty": 0.5, "weak": 0.0, "random": 0.5, "overlap": 0.0,
    }  # fmt: skip
    assert export_module._counts(7, parse_mix(None)) == {
        "uncertainty": 2, "weak": 2, "random": 2, "overlap": 1,
    }  # fmt: skip
    assert sum(export_module._counts(499, parse_mix(None)).values()) == 499


def test_request_ids_are_unique_and_sort_in_the_order_sent() -> None:
    from loopml.serving._predict import request_ids_for

    a, b = request_ids_for(120), request_ids_for(120)
    assert all(len(r) == 32 and int(r, 16) >= 0 for r in a)
    assert a == sorted(a) and len(set(a) | set(b)) == 240
    assert len({r[:20] for r in a}) == 1 and a[0][:20] != b[0][:20]


def test_the_same_traffic_served_twice_exports_the_same_rows(base: Path, tmp_path: Path) -> None:
    """With random request ids (not seeded here), the same requests sent in the same order
    give the same export: the log's rows of one request share a timestamp, and their ids
    sort in the order they were sent."""
    picked = []
    for name in ("twice-a", "twice-b"):
        project = _copy(base, name)
        try:
            serve_rows(project, production(400, 7, 50_000), feedback=False)
            ex = export_labels(
                project, n=120, weak=["region=north"], out=tmp_path / f"{name}.json", seed=3
            )
            log = read_joined(project).to_pandas()[["request_id", "id"]]
            rows = _record_rows(ex).merge(log, on="request_id")
            picked.append(list(zip(rows["id"], rows["strategy"], strict=True)))
        finally:
            project.close()
    assert len(picked[0]) == 120
    assert picked[0] == picked[1]
