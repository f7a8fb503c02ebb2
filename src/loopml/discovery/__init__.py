"""Find weak slices nobody named, with a test you can trust, ranked by what fixing them is worth.

``discover(table, label="y", prediction="p", columns=[...])`` searches conjunctions of up to
``max_predicates`` predicates (``column = value`` for categorical columns; equal-frequency
bins and one-sided tails ``x < t`` / ``x >= t`` for numeric ones) for slices of at least
``min_support`` rows whose error rate (or mean loss, for regression) is significantly above
the overall one, corrected over every slice of the family, and reports them ranked by their
excess errors ``support * (slice rate - overall rate)`` with an interval.

Aggregate once, decide on counts: DuckDB reads the table once per pass (validation and
quantiles, categorical value counts, one encoding pass to small integer codes), numpy counts
every slice of a column set with one ``np.bincount`` (see ``_search``), scipy gives the exact
tests (see ``_present`` and docs/discover.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from loopml.discovery._encode import LOSSES, encode
from loopml.discovery._present import Totals, findings
from loopml.discovery._result import DiscoveredSlice, DiscoveryResult
from loopml.discovery._search import search
from loopml.discovery._stats import holm_adjust, sliceline_score
from loopml.errors import ComputationError, InputError

if TYPE_CHECKING:
    from loopml.project import Project

__all__ = [
    "DEFAULT_TAILS",
    "DiscoveredSlice",
    "DiscoveryResult",
    "discover",
    "discover_evaluation",
    "holm_adjust",
    "sliceline_score",
]

# lower-tail shares (the upper tails are 1 - q): adjacent ones differ by at most a third, so
# some threshold's slice overlaps any true tail between 1% and 45% with Jaccard >= 0.75
DEFAULT_TAILS: tuple[float, ...] = (
    0.01,
    0.015,
    0.02,
    0.025,
    0.03,
    0.04,
    0.05,
    0.06,
    0.075,
    0.09,
    0.11,
    0.14,
    0.17,
    0.2,
    0.25,
    0.3,
    0.35,
    0.4,
    0.45,
)


def discover(
    data: Any,
    *,
    errors: str | None = None,
    label: str | None = None,
    prediction: str | None = None,
    loss: Literal["zero_one", "absolute", "squared"] = "zero_one",
    columns: Sequence[str] | None = None,
    categorical: Sequence[str] = (),
    max_predicates: int = 3,
    k: int = 10,
    min_support: int = 30,
    alpha: float = 0.05,
    weight: float = 0.95,
    bins: int = 5,
    tails: Sequence[float] = DEFAULT_TAILS,
    max_values: int = 1000,
    correction: Literal["holm", "bonferroni"] = "holm",
    engine: Literal["duckdb"] = "duckdb",
    confidence: float = 0.95,
) -> DiscoveryResult:
    """The slices (conjunctions of up to ``max_predicates`` predicates) whose error rate (or
    mean loss) is significantly above the overall one, most excess error first.

    ``data`` is a pandas/polars DataFrame, a pyarrow Table or a Parquet/CSV/Arrow path.
    The per-row error is the 0/1 (or boolean) column ``errors``, or ``label != prediction``
    (``IS DISTINCT FROM``: a missing label or prediction counts as an error). With
    ``loss="absolute"`` or ``"squared"`` (regression) the per-row loss is ``|label -
    prediction|`` (or its square), or that of the residuals in ``errors``.
    ``columns`` are the candidate columns (default: every other column). Numeric columns
    with more than ``bins`` distinct values get ``bins`` equal-frequency bins and the
    one-sided tails at the ``tails`` quantiles (``x < q`` and ``x >= q(1 - share)``);
    the others, and those named in ``categorical``, are sliced by value, keeping the
    ``max_values`` most frequent values with at least ``min_support`` rows.
    ``min_support`` is a number of rows. ``alpha`` is the family-wise significance level,
    ``correction`` Holm or Bonferroni over every slice of the family (every slice with at
    least ``min_support`` rows; slices the search provably did not need to count are
    included by an upper bound). ``weight`` is SliceLine's alpha, for the ``score`` column.

    Returns the top ``k`` significant slices by excess (``result.found`` counts them all).
    """
    if errors is None and (label is None or prediction is None):
        raise InputError(
            "no error source was given; expected errors= or both label= and prediction=",
            hint="pass errors='is_wrong' (a 0/1 column) or label='y', prediction='y_hat'",
        )
    if errors is not None and (label is not None or prediction is not None):
        raise InputError(
            f"both errors={errors!r} and label/prediction were given; expected one of them",
            hint="pass either errors= or label= and prediction=",
        )
    _check_int("k", k, 1, "k=10 reports the ten best slices")
    _check_int("max_predicates", max_predicates, 1, "max_predicates=3", high=5)
    _check_int("bins", bins, 2, "bins=5 (quintiles)")
    _check_int("max_values", max_values, 1, "max_values=1000")
    if isinstance(min_support, float) and 0.0 < min_support < 1.0:
        raise InputError(
            f"min_support={min_support!r} was given; expected a number of rows, not a share "
            "of the table",
            hint="use min_support=30 (or the rows you mean: "
            f"{max(1, round(min_support * 1e5))} for that share of 100,000 rows)",
            where="min_support",
        )
    _check_int("min_support", min_support, 1, "min_support=30 (rows)")
    if loss not in LOSSES:
        raise InputError(
            f"loss={loss!r} was given; expected one of {', '.join(LOSSES)}",
            hint="use loss='zero_one' for classification, 'absolute' or 'squared' for regression",
            where="loss",
        )
    if loss != "zero_one" and min_support < 2:
        raise InputError(
            f"min_support={min_support} was given; a test of a mean needs at least 2 rows",
            hint="use min_support=30",
            where="min_support",
        )
    if not (isinstance(alpha, float | int) and 0.0 < float(alpha) < 1.0):
        raise InputError(
            f"alpha={alpha!r} was given; expected a significance level in (0, 1)",
            hint="use alpha=0.05",
            where="alpha",
        )
    if not (isinstance(confidence, float | int) and 0.5 < float(confidence) < 1.0):
        raise InputError(
            f"confidence={confidence!r} was given; expected a level in (0.5, 1)",
            hint="use confidence=0.95 (the spec's metric.confidence for stored evaluations)",
            where="confidence",
        )
    if not (isinstance(weight, float | int) and 0.0 < float(weight) <= 1.0):
        raise InputError(
            f"weight={weight!r} was given; expected SliceLine's alpha in (0, 1]",
            hint="use weight=0.95 (error matters far more than size)",
            where="weight",
        )
    if correction not in ("holm", "bonferroni"):
        raise InputError(
            f"correction={correction!r} was given; expected 'holm' or 'bonferroni'",
            hint="use correction='holm'",
            where="correction",
        )
    if engine != "duckdb":
        raise InputError(
            f"engine={engine!r} was given; expected 'duckdb' (the only engine so far)",
            hint="leave engine= at its default",
            where="engine",
        )
    tails = tuple(sorted({float(t) for t in _tails(tails)}))
    if isinstance(columns, str):
        columns = [columns]
    if isinstance(categorical, str):
        categorical = [categorical]
    enc, total, source = encode(
        data,
        errors=errors,
        label=label,
        prediction=prediction,
        loss=loss,
        columns=columns,
        categorical=categorical,
        bins=bins,
        tails=tails,
        min_support=min_support,
        max_values=max_values,
    )
    n = enc.rows
    binary = loss == "zero_one"
    if binary and total == 0:
        raise ComputationError(
            f"no row is an error ({source} is false on all {n} rows); there is no weak slice "
            "to find",
            hint="check the error column, or evaluate a model that makes mistakes",
        )
    if binary and total == n:
        raise ComputationError(
            f"every row is an error ({source} is true on all {n} rows); every slice has the "
            "same error rate",
            hint="check the error column (is 1 = wrong?) and the label/prediction columns",
        )
    if not binary and total == 0:
        raise ComputationError(
            f"the {source} is 0 on all {n} rows; there is no weak slice to find",
            hint="check the label and prediction columns",
        )
    rate = total / n
    if binary:
        tot = Totals(n, rate, 0.0, 0.0, True)
    else:
        assert enc.loss is not None
        b = enc.loss - rate
        tot = Totals(n, rate, float(b.sum()), float(np.dot(b, b)), False)
    found = search(
        enc, sigma=min_support, max_predicates=max_predicates, alpha=float(alpha), rate=rate
    )
    res = findings(
        found,
        enc,
        tot,
        alpha=float(alpha),
        correction=correction,
        k=k,
        weight=float(weight),
        confidence=float(confidence),
    )
    return DiscoveryResult(
        slices=tuple(res.slices),
        rows=n,
        errors=round(total) if binary else total,
        error_rate=rate,
        columns=tuple(enc.names),
        min_support=min_support,
        max_predicates=max_predicates,
        k=k,
        alpha=float(alpha),
        weight=float(weight),
        correction=correction,
        candidates_evaluated=found.evaluated,
        family_size=found.family,
        found=res.found,
        loss=loss,
        bins=bins,
        tails=tails,
        max_values=max_values,
        column_sets=found.column_sets,
        column_sets_skipped=found.skipped_sets,
        detectable=_detectable(tot, min_support, max(1, found.family), float(alpha)),
        confidence=float(confidence),
    )


def _tails(tails: Any) -> Sequence[float]:
    if isinstance(tails, str) or not isinstance(tails, Sequence):
        raise InputError(
            f"tails={tails!r} was given; expected a list of tail shares in (0, 0.5)",
            hint="use tails=(0.05, 0.1, 0.25), or tails=() for bins only",
            where="tails",
        )
    for t in tails:
        if isinstance(t, bool) or not isinstance(t, float | int) or not 0.0 < float(t) < 0.5:
            raise InputError(
                f"tails contains {t!r}; expected shares of the rows in (0, 0.5) (0.05 gives "
                "the 5% lowest and the 5% highest values)",
                hint="use tails=(0.05, 0.1, 0.25)",
                where="tails",
            )
    return tails


def _detectable(
    tot: Totals, sigma: int, family: int, alpha: float
) -> tuple[tuple[int, float | None], ...]:
    """The rate a slice of ``sigma`` rows (and of 1% and 10% of the rows) would need to be
    significant after the correction (regression: approximately, at the table's spread)."""
    from scipy.stats import binom
    from scipy.stats import t as student

    sizes = sorted({sigma, *(s for s in (tot.rows // 100, tot.rows // 10) if s > sigma)})
    thr = alpha / family
    out: list[tuple[int, float | None]] = []
    for s in sizes:
        if s >= tot.rows:
            continue
        if tot.binary:
            e = int(binom.isf(thr, s, tot.rate)) + 1
            out.append((s, e / s if e <= s else None))
        else:
            sd = float(np.sqrt(tot.total2 / max(1, tot.rows - 1)))
            q = float(student.isf(thr, max(1, s - 1)))
            out.append((s, tot.rate + q * sd * float(np.sqrt(1 / s + 1 / (tot.rows - s)))))
    return tuple(out)


def _check_int(name: str, value: Any, low: int, example: str, *, high: int | None = None) -> None:
    bad = isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low
    if not bad and high is not None and value > high:
        bad = True
    if bad:
        expected = f"an integer >= {low}" + (f" and <= {high}" if high is not None else "")
        raise InputError(
            f"{name}={value!r} was given; expected {expected}",
            hint=f"use {example}",
            where=name,
        )


def discover_evaluation(
    project: Project,
    ref: str | None = None,
    *,
    store: bool = True,
    **options: Any,
) -> DiscoveryResult:
    """Run :func:`discover` on the rows behind a stored evaluation (its data and predictions
    files or dataset version), over every data column that is not the id, the label or a
    prediction column; store the result as a ``discovery`` record.

    Binary: the prediction column, or ``score >= threshold``; multiclass: the prediction
    column, or the class of the largest ``proba_<class>``; regression: the absolute error
    (``loss="squared"`` for the squared error).
    """
    from loopml.errors import NotFoundError
    from loopml.evaluation import load_evaluation, open_rows
    from loopml.slices import quote_identifier, sql_literal

    record = (
        project.store.latest("evaluation")
        if ref is None
        else project.store.get(ref, kind="evaluation")
    )
    if record is None:
        raise NotFoundError("no evaluation is stored yet", hint="run `loopml eval` first")
    payload = record.payload
    task = payload["task"]
    inputs = payload.get("inputs", {})
    options.setdefault("confidence", float(payload.get("confidence", 0.95)))
    if task == "regression":
        options.setdefault("loss", "absolute")
        if options["loss"] == "zero_one":
            raise InputError(
                f"{record.id} is a regression evaluation; loss='zero_one' needs classes",
                hint="use loss='absolute' or loss='squared'",
                where="loss",
            )
    elif options.get("loss", "zero_one") != "zero_one":
        raise InputError(
            f"{record.id} is a {task} evaluation; loss={options['loss']!r} needs numbers",
            hint="leave loss at 'zero_one' for classification",
            where="loss",
        )
    with open_rows(load_evaluation(project, record.id), project) as rows:
        id_col, label, view = rows.id_col, rows.label, rows.view
        names = list(rows.columns)
        proba = [c for c in names if c.startswith("proba_")]
        if "prediction" not in names:
            classes = payload["classes"]
            if task == "binary" and "score" in names:
                threshold = float(inputs.get("threshold") or 0.5)
                pred_sql = (
                    f"CASE WHEN score >= {threshold!r} THEN {sql_literal(classes[-1])} "
                    f"ELSE {sql_literal(classes[0])} END"
                )
            elif proba:
                by_text = {str(c): c for c in classes}
                qs = [quote_identifier(c) for c in proba]
                # the class of the largest probability (the first one on ties), typed as
                # the label so that label IS DISTINCT FROM prediction compares like with like
                names_ = [c.removeprefix("proba_") for c in proba]
                cases = " ".join(
                    f"WHEN {q} = greatest({', '.join(qs)}) THEN {sql_literal(by_text.get(c, c))}"
                    for q, c in zip(qs, names_, strict=True)
                )
                pred_sql = f"CAST(CASE {cases} END AS {rows.columns[label]})"
            else:
                raise InputError(
                    f"the predictions of {record.id} have no 'prediction', 'score' or "
                    "proba_<class> column",
                    hint="evaluate again with a predictions table that has a prediction column",
                )
            view = "__with_prediction"
            rows.con.execute(
                f'CREATE TEMP VIEW {view} AS SELECT *, {pred_sql} AS prediction FROM "{rows.view}"'
            )
        table = rows.con.arrow(f'SELECT * FROM "{view}"')
    exclude = {id_col, label, "prediction", "score"}
    candidates = [c for c in table.column_names if c not in exclude and not c.startswith("proba_")]
    options.setdefault("columns", candidates)
    result = discover(table, label=label, prediction="prediction", **options)
    if store:
        project.store.put("discovery", record.id, {"evaluation": record.id, **result.to_dict()})
    return result
