"""Discovery statistics against oracles we did not write (scipy, statsmodels), regression
and multiclass inputs, parent/child grouping, and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom, binomtest, ttest_ind
from statsmodels.stats.multitest import multipletests

from loopml.discovery import DiscoveryResult, discover, holm_adjust
from loopml.discovery._stats import min_errors_to_prove
from loopml.errors import InputError, SchemaError


def regression_table(seed: int, n: int = 20_000, planted: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    region = rng.choice(["north", "south", "east", "west"], n)
    device = rng.choice(["old", "new", "mid"], n)
    weak = (region == "north") & (device == "old")
    y = rng.normal(100, 10, n)
    noise = rng.normal(0, np.where(weak & planted, 8.0, 4.0), n)
    return pd.DataFrame(
        {
            "region": region,
            "device": device,
            "size": rng.integers(1, 50, n),
            "y": y,
            "yhat": y + noise,
        }
    )


def test_regression_finds_the_slice_with_the_larger_absolute_error() -> None:
    df = regression_table(0)
    result = discover(df, label="y", prediction="yhat", loss="absolute")
    top = result.slices[0]
    assert set(top.predicates) == {"region = 'north'", "device = 'old'"}
    loss = (df["y"] - df["yhat"]).abs()
    assert result.error_rate == pytest.approx(loss.mean())
    for s in result.slices:
        selected = df.eval(s.expression.replace(" = ", " == "))
        assert isinstance(selected, pd.Series)
        mask = selected.to_numpy()
        ref = ttest_ind(loss[mask], loss[~mask], equal_var=False, alternative="greater")
        assert s.p_value == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-300)
        assert s.error_rate.value == pytest.approx(loss[mask].mean())
        assert s.excess.value == pytest.approx(loss[mask].sum() - mask.sum() * loss.mean())
        low, high = s.excess.low, s.excess.high
        assert low is not None and high is not None  # discovery's intervals always exist
        assert low < s.excess.value < high


def test_regression_squared_loss_and_residual_column() -> None:
    df = regression_table(1)
    df["res"] = df["y"] - df["yhat"]
    a = discover(df, label="y", prediction="yhat", loss="squared", columns=["region", "device"])
    b = discover(df, errors="res", loss="squared", columns=["region", "device"])
    assert a.error_rate == pytest.approx((df["res"] ** 2).mean())
    assert [s.expression for s in a.slices] == [s.expression for s in b.slices]
    assert a.slices[0].p_value == pytest.approx(b.slices[0].p_value, rel=1e-9)


def test_regression_null_tables_stay_quiet() -> None:
    alarms = sum(
        bool(
            discover(
                regression_table(100 + s, 5000, planted=False),
                label="y",
                prediction="yhat",
                loss="absolute",
            ).slices
        )
        for s in range(10)
    )
    assert alarms <= 1


def test_holm_over_a_larger_family_matches_statsmodels_with_the_rest_at_one() -> None:
    rng = np.random.default_rng(1)
    p = rng.random(30) ** 4
    padded = np.concatenate([p, np.ones(70)])
    ref = multipletests(padded, method="holm")[1][:30]
    assert holm_adjust(p, 100) == pytest.approx(ref)
    assert holm_adjust(p) == pytest.approx(multipletests(p, method="holm")[1])


@pytest.mark.parametrize(
    ("sigma", "rate", "threshold"), [(30, 0.06, 1e-6), (40, 0.1, 0.05), (5, 0.3, 1e-9)]
)
def test_min_errors_to_prove_is_the_brute_force_minimum(
    sigma: int, rate: float, threshold: float
) -> None:
    """Over every sub-slice (s >= sigma rows, e errors): the fewest errors whose best
    sub-slice (all errors in max(sigma, e) rows) reaches the threshold, by scipy."""

    def best(e: int) -> float:
        return min(
            float(binomtest(x, s, rate, alternative="greater").pvalue)
            for x in range(0, e + 1)
            for s in range(max(sigma, x), max(sigma, x) + 3)
        )

    need = min_errors_to_prove(sigma, rate, threshold)
    assert best(need) <= threshold
    assert need == 1 or best(need - 1) > threshold


def test_smallest_detectable_effect_is_the_corrected_binomial_threshold() -> None:
    rng = np.random.default_rng(0)
    n = 5000
    df = pd.DataFrame(
        {
            "a": rng.choice(list("xyz"), n),
            "b": rng.choice(list("pq"), n),
            "err": (rng.random(n) < 0.1).astype(int),
        }
    )
    result = discover(df, errors="err")
    assert not result.slices
    thr = result.alpha / result.family_size
    support, needed = result.detectable[0]
    assert support == result.min_support == 30
    assert needed is not None
    e = round(needed * support)
    assert (
        binom.sf(e - 1, support, result.error_rate)
        <= thr
        < binom.sf(e - 2, support, result.error_rate)
    )
    text = result.nothing_found()
    assert "searched 5,000 rows" in text and "30 rows needs an error rate >=" in text


def test_a_near_copy_child_is_not_a_finding_and_the_parent_is_shown_with_its_child() -> None:
    rng = np.random.default_rng(4)
    n = 40_000
    region = rng.choice(["north", "south", "east", "west"], n)
    device = rng.choice(["old", "new"], n)
    common = np.where(rng.random(n) < 0.98, "yes", "no")  # a near-constant column
    weak = (region == "north") & (device == "old")
    err = (rng.random(n) < np.where(weak, 0.3, 0.08)).astype(int)
    df = pd.DataFrame({"region": region, "device": device, "common": common, "err": err})
    result = discover(df, errors="err")
    top = result.slices[0]
    assert set(top.predicates) == {"region = 'north'", "device = 'old'"}
    assert set(top.parents) == {"region = 'north'", "device = 'old'"}
    assert result.found == 1  # no "... and common = 'yes'" copy, no parent on its own


def test_no_planted_slice_has_no_finding_on_a_plain_table() -> None:
    rng = np.random.default_rng(5)
    n = 40_000
    df = pd.DataFrame(
        {
            "region": rng.choice(["north", "south", "east", "west"], n),
            "device": rng.choice(["old", "new"], n),
            "err": (rng.random(n) < 0.08).astype(int),
        }
    )
    assert discover(df, errors="err").found == 0


def test_an_old_stored_record_still_loads() -> None:
    old = {
        "rows": 100,
        "errors": 10,
        "error_rate": 0.1,
        "columns": ["a"],
        "min_support": 32,
        "max_predicates": 3,
        "k": 10,
        "alpha": 0.05,
        "weight": 0.95,
        "correction": "holm",
        "candidates_evaluated": 3,
        "slices": [
            {
                "rank": 1,
                "expression": "a = 'x'",
                "predicates": ["a = 'x'"],
                "support": 40,
                "errors": 9,
                "error_rate": 0.225,
                "share": 0.4,
                "score": 1.0,
                "ci_low": 0.1,
                "ci_high": 0.4,
                "p_value": 0.001,
                "p_adjusted": 0.003,
                "significant": True,
            }
        ],
    }
    result = DiscoveryResult.from_dict(old)
    assert result.slices[0].excess.value == 0.0 and result.slices[0].parents == ()
    assert DiscoveryResult.from_dict(result.to_dict()).to_dict() == result.to_dict()


def test_bad_settings_get_clear_errors() -> None:
    df = regression_table(0, 500)
    with pytest.raises(InputError, match="number of rows, not a share"):
        discover(df, label="y", prediction="yhat", loss="absolute", min_support=0.01)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"tails contains 0\.7"):
        discover(df, label="y", prediction="yhat", loss="absolute", tails=(0.1, 0.7))
    with pytest.raises(InputError, match="loss='l1'"):
        discover(df, label="y", prediction="yhat", loss="l1")  # type: ignore[arg-type]
    with pytest.raises(SchemaError, match="'region' has type VARCHAR"):
        discover(df, label="region", prediction="yhat", loss="absolute", columns=["device"])
    df.loc[3, "yhat"] = np.nan
    with pytest.raises(InputError, match="has 1 missing values"):
        discover(df, label="y", prediction="yhat", loss="absolute")


def test_multiclass_evaluation_with_only_proba_columns(tmp_path: Path) -> None:
    from loopml.discovery import discover_evaluation
    from loopml.evaluation import evaluate
    from loopml.project import init_project

    project = init_project(tmp_path / "p", task="multiclass")
    rng = np.random.default_rng(3)
    n = 6000
    region = rng.choice(["north", "south", "east"], n)
    y = rng.choice(["a", "b", "c"], n)
    weak = region == "north"
    wrong = rng.random(n) < np.where(weak, 0.4, 0.1)
    pred = np.where(wrong, np.where(y == "a", "b", "a"), y)
    proba = {f"proba_{c}": np.where(pred == c, 0.8, 0.1) for c in ("a", "b", "c")}
    pd.DataFrame({"id": np.arange(n), "label": y, "region": region}).to_parquet(
        tmp_path / "t.parquet"
    )
    pd.DataFrame({"id": np.arange(n), **proba}).to_parquet(tmp_path / "p.parquet")
    ev = evaluate(tmp_path / "t.parquet", tmp_path / "p.parquet", project=project)
    result = discover_evaluation(project, ev.id)
    assert result.slices[0].expression == "region = 'north'"
    assert result.errors == int(wrong.sum())
    project.close()


def test_regression_evaluation_uses_the_absolute_error(tmp_path: Path) -> None:
    from loopml.discovery import discover_evaluation
    from loopml.evaluation import evaluate
    from loopml.project import init_project

    project = init_project(tmp_path / "p", task="regression")
    df = regression_table(2, 6000)
    df["id"] = np.arange(len(df))
    df.rename(columns={"y": "label"})[["id", "label", "region", "device"]].to_parquet(
        tmp_path / "t.parquet"
    )
    df.rename(columns={"yhat": "prediction"})[["id", "prediction"]].to_parquet(
        tmp_path / "p.parquet"
    )
    ev = evaluate(tmp_path / "t.parquet", tmp_path / "p.parquet", project=project)
    result = discover_evaluation(project, ev.id)
    assert result.loss == "absolute"
    assert set(result.slices[0].predicates) == {"region = 'north'", "device = 'old'"}
    assert result.error_rate == pytest.approx((df["y"] - df["yhat"]).abs().mean())
    project.close()


def test_child_against_rest_of_parent_tests_match_scipy() -> None:
    from scipy.stats import fisher_exact

    from loopml.discovery._stats import fisher_greater, two_sample_welch

    got = fisher_greater([30, 12], [100, 80], [50, 40], [400, 300])
    for (e, s, ep, sp), p in zip([(30, 100, 50, 400), (12, 80, 40, 300)], got, strict=True):
        table = [[e, s - e], [ep - e, (sp - s) - (ep - e)]]
        assert p == pytest.approx(fisher_exact(table, alternative="greater").pvalue, rel=1e-9)
    rng = np.random.default_rng(0)
    x, y = rng.exponential(1.3, 70), rng.exponential(1.0, 200)
    p = two_sample_welch([70], [x.sum()], [(x**2).sum()], [200], [y.sum()], [(y**2).sum()])
    ref = ttest_ind(x, y, equal_var=False, alternative="greater").pvalue
    assert p[0] == pytest.approx(ref, rel=1e-9)
