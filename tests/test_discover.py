"""Tests of loopml.discovery: planted weak slices, null data, and independent oracles.

Oracles we did not write: scipy (binomtest, its Wilson interval), statsmodels (Holm and
Bonferroni), the ``sliceline`` package (the SliceLine reference implementation in Python),
pandas (brute-force counts over every conjunction), and the worked Holm example of
Wikipedia's "Holm–Bonferroni method" article (p = 0.01, 0.04, 0.03, 0.005 at alpha 0.05:
H1 and H4 are rejected).
"""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest
from statsmodels.stats.multitest import multipletests

from loopml.discovery import discover, holm_adjust, sliceline_score
from loopml.errors import ComputationError, InputError, SchemaError
from loopml.slices import evaluate, parse

PLANTED = "region = 'north' and device = 'old'"


def make_table(n: int, seed: int, *, planted: bool = True, base: float = 0.1) -> pd.DataFrame:
    """Four candidate columns; the error rate is tripled on region=north and device=old."""
    rng = np.random.default_rng(seed)
    region = rng.choice(["north", "south", "east", "west"], n)
    device = rng.choice(["old", "new"], n)
    plan = rng.choice(["basic", "plus", "pro"], n)
    age = rng.integers(18, 90, n)
    weak = (region == "north") & (device == "old")
    p = np.where(weak, 3 * base, base) if planted else np.full(n, base)
    err = (rng.random(n) < p).astype(np.int64)
    return pd.DataFrame({"region": region, "device": device, "plan": plan, "age": age, "err": err})


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_planted_slice_is_rank_one_and_significant(seed: int) -> None:
    result = discover(make_table(4000, seed), errors="err")
    top = result.slices[0]
    assert top.expression == PLANTED
    assert top.significant
    assert top.p_adjusted <= 0.05
    assert top.error_rate.low is not None  # discovery's intervals always exist
    assert top.error_rate.low > result.error_rate


def test_no_planted_slice_nothing_significant_in_95_percent_of_seeds() -> None:
    clean = 0
    for seed in range(40):
        result = discover(make_table(1500, 1000 + seed, planted=False), errors="err")
        clean += not result.significant
    assert clean >= 38  # at least 95% of 40 seeds


def _brute_force(df: pd.DataFrame, cols: list[str], sigma: int) -> pd.DataFrame:
    """Every conjunction of 1..3 values of ``cols`` with support >= sigma (pandas)."""
    rows = []
    for level in (1, 2, 3):
        for combo in itertools.combinations(cols, level):
            g = df.groupby(list(combo))["err"].agg(["size", "sum"])
            for key, (size, errs) in g.iterrows():
                if size < sigma:
                    continue
                key = key if isinstance(key, tuple) else (key,)
                preds = frozenset(f"{c} = '{v}'" for c, v in zip(combo, key, strict=True))
                rows.append((preds, int(size), int(errs)))
    return pd.DataFrame(rows, columns=["predicates", "support", "errors"])


def _pruning_table(seed: int) -> pd.DataFrame:
    """make_table plus a 60-value column whose values (50 rows each) have too few errors
    for any sub-slice to become significant, so the search skips the column sets that hold
    it, and a 400-value one (values below the minimum support)."""
    df = make_table(3000, seed).drop(columns="age")
    rng = np.random.default_rng(seed + 100)
    df["shop"] = np.repeat(np.arange(60), 50)[rng.permutation(len(df))].astype(str)
    df["zip"] = rng.integers(0, 400, len(df)).astype(str)
    return df


@pytest.mark.parametrize("seed", [7, 8])
def test_pruned_search_equals_brute_force(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    import loopml.discovery as disc
    from loopml.discovery import _search

    df = _pruning_table(seed)
    cols = ["region", "device", "plan", "shop", "zip"]
    brute = _brute_force(df, cols, 40)
    options: dict[str, Any] = {"errors": "err", "k": 10**6, "min_support": 40}
    pruned = discover(df, correction="bonferroni", **options)
    assert pruned.column_sets_skipped > 0  # the bound did prune
    real_search = _search.search
    monkeypatch.setattr(disc, "search", lambda *a, **kw: real_search(*a, **{**kw, "prune": False}))
    full = discover(df, correction="bonferroni", **options)
    assert full.column_sets_skipped == 0
    # brute force: the family is every slice with >= 40 rows, counted by pandas
    assert full.family_size == full.candidates_evaluated == len(brute)
    assert pruned.family_size >= len(brute) >= pruned.candidates_evaluated
    # the significant slices of the brute force (scipy, statsmodels over the same family)
    rate = df["err"].mean()
    p = [
        binomtest(int(e), int(s), rate, alternative="greater").pvalue if e > s * rate else 1.0
        for s, e in zip(brute.support, brute.errors, strict=True)
    ]
    reject = multipletests(p, alpha=0.05, method="bonferroni")[0]
    significant = {
        preds: (s, e)
        for preds, s, e, r in zip(
            brute.predicates, brute.support, brute.errors, reject, strict=True
        )
        if r
    }
    assert full.found >= 1 and pruned.found == full.found
    for a, b in zip(pruned.slices, full.slices, strict=True):
        assert (a.expression, a.support, a.errors, a.parents) == (
            b.expression,
            b.support,
            b.errors,
            b.parents,
        )
        assert a.p_value == b.p_value and a.excess.value == b.excess.value
        assert a.p_adjusted >= b.p_adjusted  # the pruned family is an upper bound
        assert significant[frozenset(b.predicates)] == (b.support, b.errors)
    # every brute-force significant slice is a finding or hidden behind one
    shown = {frozenset(s.predicates) for s in full.slices}
    behind = {frozenset(x.split(" and ")) for s in full.slices for x in s.parents}
    assert frozenset(PLANTED.split(" and ")) in shown
    assert shown <= set(significant) and behind <= set(significant)
    # ... and the other way round: a significant slice that is neither shown nor behind a
    # finding only adds predicates to one (a redundant child, not separated from it)
    reported = shown | behind
    for preds in significant:
        assert preds in reported or any(r < preds for r in reported), sorted(preds)


def test_counts_of_reported_slices_match_pandas_masks() -> None:
    df = make_table(3000, 11)
    old = df["age"] >= 75
    df.loc[old, "err"] = (np.random.default_rng(3).random(int(old.sum())) < 0.35).astype(int)
    result = discover(df, errors="err", k=10)
    assert any("age" in s.expression for s in result.slices)  # a numeric tail is found
    assert len(result.slices) >= 2
    for s in result.slices:
        mask = df.eval(s.expression.replace(" = ", " == "))
        assert isinstance(mask, pd.Series)
        assert int(mask.sum()) == s.support
        assert int(df.loc[mask, "err"].sum()) == s.errors
        # the expression is valid slice language, and loopml evaluates it the same way
        assert int(evaluate(parse(s.expression), df).sum()) == s.support
        assert s.excess.value == pytest.approx(s.errors - s.support * result.error_rate)


def test_statistics_match_scipy_and_statsmodels() -> None:
    df = make_table(4000, 3)
    result = discover(df, errors="err", k=10, correction="bonferroni")
    m = result.candidates_evaluated
    assert result.family_size == m  # nothing skipped on this table: the family is all counted
    for s in result.slices:
        ref = binomtest(s.errors, s.support, result.error_rate, alternative="greater")
        assert s.p_value == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)
        two_sided = binomtest(s.errors, s.support, result.error_rate)
        ci = two_sided.proportion_ci(confidence_level=0.95, method="wilson")
        assert (s.error_rate.low, s.error_rate.high) == pytest.approx((ci.low, ci.high), rel=1e-9)
        assert s.p_adjusted == pytest.approx(min(1.0, s.p_value * m), rel=1e-9)
        assert s.significant == (s.p_adjusted <= 0.05)


def test_holm_matches_statsmodels_and_the_wikipedia_example() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.005])
    adjusted = holm_adjust(p)
    assert list(adjusted <= 0.05) == [True, False, False, True]
    assert adjusted == pytest.approx(multipletests(p, method="holm")[1])
    rng = np.random.default_rng(0)
    q = rng.random(200) ** 3
    assert holm_adjust(q) == pytest.approx(multipletests(q, method="holm")[1])


def test_score_is_sliceline_formula() -> None:
    # SliceLine paper, Eq. (1): alpha * (e(S)/e - 1) - (1 - alpha) * (n/|S| - 1)
    got = sliceline_score([100], [30], rows=1000, error_rate=0.1, weight=0.95)
    assert got[0] == pytest.approx(0.95 * (0.3 / 0.1 - 1) - 0.05 * (1000 / 100 - 1))


def test_score_column_is_sliceline_score_and_top_slice_agrees() -> None:
    sliceline = pytest.importorskip("sliceline")
    df = make_table(3000, 5).drop(columns="age")
    cols = ["region", "device", "plan"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        finder = sliceline.Slicefinder(alpha=0.95, k=3, max_l=3, min_sup=40, verbose=False)
        finder.fit(df[cols].to_numpy(), df["err"].to_numpy())
    theirs = {}
    for row, stats in zip(finder.top_slices_, finder.top_slices_statistics_, strict=True):
        preds = frozenset(f"{c} = '{v}'" for c, v in zip(cols, row, strict=True) if v is not None)
        theirs[preds] = stats["slice_score"]
    ours = discover(df, errors="err", columns=cols, k=3, min_support=40)
    top = frozenset(ours.slices[0].predicates)
    assert top == next(iter(theirs))  # the planted slice tops both
    assert ours.slices[0].score == pytest.approx(theirs[top], rel=1e-9)


def test_label_prediction_equals_errors_column_and_reads_parquet(tmp_path: Path) -> None:
    df = make_table(3000, 2)
    rng = np.random.default_rng(2)
    df["label"] = rng.integers(0, 3, len(df))
    df["prediction"] = np.where(df["err"] == 1, (df["label"] + 1) % 3, df["label"])
    cols = ["region", "device", "plan", "age"]
    a = discover(df, errors="err", columns=cols)
    path = tmp_path / "preds.parquet"
    df.to_parquet(path)
    b = discover(str(path), label="label", prediction="prediction", columns=cols)
    assert a.to_dict() == b.to_dict()


def test_result_renders() -> None:
    result = discover(make_table(3000, 0), errors="err", k=3)
    d = result.to_dict()
    assert d["slices"][0]["expression"] == PLANTED
    assert 1 <= len(d["slices"]) <= 3 and d["rows"] == 3000
    top = d["slices"][0]
    assert top["excess_low"] < top["excess"] < top["excess_high"]
    page = result._repr_html_()
    assert "excess" in page
    assert "region = &#x27;north&#x27; and device = &#x27;old&#x27;" in page
    assert "<table>" in page


def _bad(**kwargs: Any) -> None:
    df = make_table(500, 0)
    discover(df, **{"errors": "err", **kwargs})


def test_bad_input_gets_clear_errors() -> None:
    df = make_table(500, 0)
    with pytest.raises(SchemaError, match="'regoin'") as info:
        discover(df, errors="err", columns=["regoin"])
    # the hint suggests the close match (not only the list of columns, which names it too)
    assert info.value.hint == "did you mean 'region'?"
    with pytest.raises(SchemaError, match="'wrong'"):
        discover(df, errors="wrong")
    with pytest.raises(SchemaError, match="'y'"):
        discover(df, label="y", prediction="err")
    with pytest.raises(InputError, match="k=0"):
        _bad(k=0)
    with pytest.raises(InputError, match="max_predicates=0"):
        _bad(max_predicates=0)
    with pytest.raises(InputError, match=r"alpha=1\.5"):
        _bad(alpha=1.5)
    with pytest.raises(InputError, match="min_support=-3"):
        _bad(min_support=-3)
    with pytest.raises(InputError, match="expected errors= or both"):
        discover(df, label="err")
    df["err"] = 0
    with pytest.raises(ComputationError, match="no row is an error"):
        discover(df, errors="err")
    df["err"] = 2
    with pytest.raises(InputError, match="other than 0/1"):
        discover(df, errors="err")
    df["err"] = "x"
    with pytest.raises(SchemaError, match="has type VARCHAR"):
        discover(df, errors="err")


def test_discover_on_a_stored_evaluation_finds_the_planted_slice(tmp_path: Path) -> None:
    from loopml.discovery import discover_evaluation
    from loopml.evaluation import evaluate
    from loopml.project import init_project

    project = init_project(tmp_path / "p", task="binary")
    rng = np.random.default_rng(7)
    n = 6000
    region = rng.choice(["north", "south", "east", "west"], n)
    device = rng.choice(["old", "new"], n)
    y = rng.integers(0, 2, n)
    weak = (region == "north") & (device == "old")
    wrong = rng.random(n) < np.where(weak, 0.30, 0.10)
    pred = np.where(wrong, 1 - y, y)
    data = pd.DataFrame({"id": np.arange(n), "label": y, "region": region, "device": device})
    data.to_parquet(tmp_path / "test.parquet")
    pd.DataFrame({"id": np.arange(n), "prediction": pred}).to_csv(tmp_path / "p.csv", index=False)
    ev = evaluate(tmp_path / "test.parquet", tmp_path / "p.csv", project=project)
    result = discover_evaluation(project, ev.id)
    top = result.slices[0]
    assert top.significant
    assert set(top.predicates) == {"region = 'north'", "device = 'old'"}
    assert top.support == int(weak.sum())
    assert project.store.latest("discovery") is not None
    from loopml.report import render_report

    report = render_report(project, ev.id)  # the stored discovery is in the report
    section = report.html.split('<section id="discovered">')[1].split("</section>")[0]
    assert "region = &#x27;north&#x27;" in section and "device = &#x27;old&#x27;" in section
    project.close()
