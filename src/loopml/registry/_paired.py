"""Paired comparison of two models on the same rows, from one aggregation of joint counts.

The candidate's and the champion's evaluation rows are joined by id, and ONE DuckDB
statement (the evaluation engine's ``GROUP BY GROUPING SETS``) reduces them to joint cells
per slice value: label x candidate prediction x champion prediction, overall and on every
key slice. Everything the gate decides is numpy on those counts:

- the 2x2 table (candidate right/wrong x champion right/wrong) and McNemar's exact test,
  a binomial test on the discordant pairs (equal to statsmodels' ``mcnemar(exact=True)``);
- the paired difference of any label metric (accuracy, f1, recall, ...) with its interval:
  a bootstrap that resamples the joint cells (a multinomial per slice), which is a per-row
  paired bootstrap computed on counts (tested equal to one within its noise);
- a one-sided p-value per slice for "the candidate is worse by more than the tolerance".

Differences are signed so that a positive number means the candidate is better, whatever
the metric's direction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from loopml.errors import ComputationError, InputError

if TYPE_CHECKING:
    from loopml.evaluation import Evaluation, EvaluationRows

__all__ = [
    "JointCounts",
    "PairedDifference",
    "holm",
    "joint_counts",
    "mcnemar_exact",
    "paired_difference",
]


@dataclass(frozen=True)
class JointCounts:
    """One grouping's joint cells: ``cells[s, y, c, h]`` rows of slice value ``s`` with label
    class ``y``, candidate prediction ``c`` and champion prediction ``h``."""

    group: str  # "overall" or the key slice definition's name
    labels: list[str]  # one per slice value ("all" for overall)
    classes: tuple[Any, ...]
    cells: npt.NDArray[np.int64]  # (S, K, K, K)

    @property
    def n(self) -> npt.NDArray[np.int64]:
        return np.asarray(self.cells.sum(axis=(1, 2, 3)), dtype=np.int64)

    def candidate_matrix(self) -> npt.NDArray[np.int64]:
        """(S, K, K) true x predicted confusion of the candidate."""
        return np.asarray(self.cells.sum(axis=3), dtype=np.int64)

    def champion_matrix(self) -> npt.NDArray[np.int64]:
        return np.asarray(self.cells.sum(axis=2), dtype=np.int64)

    def table2x2(self) -> npt.NDArray[np.int64]:
        """(S, 2, 2): [candidate right, wrong] x [champion right, wrong]."""
        cells = self.cells
        both = np.einsum("syyy->s", cells)
        cand_right = np.einsum("syyh->s", cells)
        champ_right = np.einsum("sycy->s", cells)
        n = self.n
        b = cand_right - both
        c = champ_right - both
        d = n - both - b - c
        return np.stack([np.stack([both, b], -1), np.stack([c, d], -1)], -2).astype(np.int64)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value on the discordant counts ``b`` and ``c`` (as
    statsmodels: twice the binomial tail of the smaller count, at most 1)."""
    from scipy.stats import binom

    n = int(b) + int(c)
    if n == 0:
        return 1.0
    return float(min(1.0, 2.0 * binom.cdf(min(int(b), int(c)), n, 0.5)))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (step-down, monotone, at most 1); NaN stays NaN."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(len(p), np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = len(ok)
    if m == 0:
        return out.tolist()
    order = ok[np.argsort(p[ok], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()


@dataclass(frozen=True)
class PairedDifference:
    """The signed difference (positive: the candidate is better) of one metric on one slice
    value, its interval, the McNemar test on the 2x2 table and the one-sided p-value of
    "worse by more than ``tolerance``"."""

    metric: str
    slice: str
    n: int
    candidate: float
    champion: float
    diff: float
    low: float | None
    high: float | None
    table: list[list[int]]
    mcnemar_p: float
    p_worse: float | None
    tolerance: float
    method: str

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {k: _clean(v) for k, v in asdict(self).items()}


def _clean(x: Any) -> Any:
    if isinstance(x, float) and math.isnan(x):
        return None
    return x


def _metric(name: str, matrix: npt.NDArray[np.int64], classes: tuple[Any, ...], task: str) -> Any:
    from loopml.metrics import ConfusionCounts, compute

    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(
            compute(name, ConfusionCounts(classes=classes, matrix=matrix), task=task),  # type: ignore[arg-type]
            dtype=float,
        )


def paired_difference(
    joint: JointCounts,
    metric: str,
    *,
    task: str,
    tolerance: float = 0.0,
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> list[PairedDifference]:
    """Per slice value of ``joint``: the paired difference of ``metric`` and its evidence.

    The interval is the percentile interval of a bootstrap that draws each slice value's
    joint cells from a multinomial with the observed shares (resampling rows with
    replacement, both models' predictions of a row together). ``p_worse`` is the one-sided
    p-value of "the candidate is worse than the champion by more than ``tolerance``": for
    accuracy and error rate with ``tolerance == 0`` the exact McNemar tail (the candidate
    wins at most its discordant pairs by chance), else the bootstrap share of resamples not
    worse by more than ``tolerance``.
    """
    from loopml.metrics import resolve_metric

    info = resolve_metric(metric)
    if info is None or info.kind != "labels":
        raise ComputationError(
            f"the paired gate compares label metrics (accuracy, f1, recall, ...); "
            f"{metric!r} needs scores or is a regression metric",
            hint="optimize a label metric, or compare these models with `loopml eval --against`",
            where="metric.optimizing",
        )
    sign = 1.0 if info.higher_is_better else -1.0
    base = info.name
    classes = joint.classes
    k = len(classes)
    cand = _metric(metric, joint.candidate_matrix(), classes, task)
    champ = _metric(metric, joint.champion_matrix(), classes, task)
    tables = joint.table2x2()
    rng = np.random.default_rng(seed)
    alpha = 1.0 - confidence
    out: list[PairedDifference] = []
    from scipy.stats import binom

    for s, label in enumerate(joint.labels):
        n = int(joint.n[s])
        t = tables[s]
        b, c = int(t[0, 1]), int(t[1, 0])
        mc = mcnemar_exact(b, c)
        diff = float(sign * (cand[s] - champ[s]))
        low = high = p_worse = None
        if n > 0:
            flat = joint.cells[s].reshape(-1).astype(float)
            draws = rng.multinomial(n, flat / flat.sum(), size=n_boot).reshape(n_boot, k, k, k)
            d = sign * (
                _metric(metric, draws.sum(axis=3), classes, task)
                - _metric(metric, draws.sum(axis=2), classes, task)
            )
            d = d[~np.isnan(d)]
            if len(d) >= n_boot // 2:
                low = float(np.quantile(d, alpha / 2))
                high = float(np.quantile(d, 1 - alpha / 2))
                p_worse = float((np.sum(d >= -tolerance) + 1) / (len(d) + 1))
            if base in ("accuracy", "error_rate") and tolerance == 0.0:
                # the candidate is right where the champion is wrong on b pairs, and the
                # other way round on c: under "as good", b ~ Binomial(b + c, 1/2)
                p_worse = float(binom.cdf(b, b + c, 0.5)) if b + c else 1.0
        method = (
            "McNemar exact, joint-cell bootstrap"
            if base in ("accuracy", "error_rate") and tolerance == 0.0
            else "joint-cell bootstrap"
        )
        out.append(
            PairedDifference(
                metric=metric,
                slice=label,
                n=n,
                candidate=float(cand[s]),
                champion=float(champ[s]),
                diff=diff,
                low=low,
                high=high,
                table=t.tolist(),
                mcnemar_p=mc,
                p_worse=p_worse,
                tolerance=tolerance,
                method=method,
            )
        )
    return out


# --------------------------------------------------------------------------- aggregation


def _code_sql(ev: Evaluation, columns: dict[str, str], what: str) -> str:
    """SQL giving the class index (0..K-1) of the label or the prediction, as the
    evaluation itself derived it."""
    from loopml.slices import quote_identifier as q
    from loopml.slices import sql_literal

    classes = list(ev.classes)
    label = str(ev.inputs.get("label") or "label")
    if what == "label":
        col = label
    elif "prediction" in columns:
        col = "prediction"
    elif ev.task == "binary" and "score" in columns:
        threshold = float(ev.inputs.get("threshold") or 0.5)
        return f'CASE WHEN "score" >= {threshold!r} THEN 1 ELSE 0 END'
    else:
        probas = [q(f"proba_{c}") for c in classes]
        if not all(f"proba_{c}" in columns for c in classes):
            raise InputError(
                f"the rows of evaluation {ev.id} have no prediction to compare",
                hint="evaluate the model again with a 'prediction' column",
                where=f"evaluation {ev.id}",
            )
        top = ", ".join(probas)
        return (
            "CASE "
            + " ".join(f"WHEN {p} = greatest({top}) THEN {i}" for i, p in enumerate(probas))
            + " END"
        )
    if ev.task == "binary":
        return f"CASE WHEN {q(col)} = {sql_literal(classes[1])} THEN 1 ELSE 0 END"
    cases = " ".join(
        f"WHEN CAST({q(col)} AS VARCHAR) = {sql_literal(str(c))} THEN {i}"
        for i, c in enumerate(classes)
    )
    return f"CASE {cases} END"


def _ids_sql(rows: EvaluationRows) -> str:
    from loopml.slices import quote_identifier as q

    return q(rows.id_col)


def joint_counts(
    project: Any,
    candidate: Evaluation,
    champion: Evaluation,
    *,
    candidate_name: str = "the candidate",
    champion_name: str = "the champion",
) -> list[JointCounts]:
    """Join both evaluations' rows by id and count the joint cells, overall first, then one
    :class:`JointCounts` per key slice definition of the spec (one DuckDB statement).

    Refuses (InputError) when the two evaluations are not on the same rows with the same
    labels, naming how they differ.
    """
    from loopml.engine import aggregate_classification
    from loopml.evaluation import _group_defs, open_rows
    from loopml.slices import quote_identifier as q

    if candidate.task != champion.task or [str(c) for c in candidate.classes] != [
        str(c) for c in champion.classes
    ]:
        raise InputError(
            f"{candidate_name} (evaluation {candidate.id}) and {champion_name} (evaluation "
            f"{champion.id}) do not predict the same classes: {candidate.classes} vs "
            f"{champion.classes}",
            hint="compare models of the same task on the same labelled rows",
            where=f"evaluation {candidate.id}",
        )
    k = len(candidate.classes)
    if k < 2:
        raise InputError(f"evaluation {candidate.id} has fewer than two classes")
    with open_rows(champion, project) as ch:
        h_code = _code_sql(champion, ch.columns, "prediction")
        y_code = _code_sql(champion, ch.columns, "label")
        champ_table = ch.con.sql(
            f"SELECT {_ids_sql(ch)} AS __id, {h_code} AS __h, {y_code} AS __y FROM {q(ch.view)}"
        ).to_arrow_table()
    with open_rows(candidate, project) as rows:
        con = rows.con
        con.register("__champion", champ_table)
        c_code = _code_sql(candidate, rows.columns, "prediction")
        y_code = _code_sql(candidate, rows.columns, "label")
        idc = q(rows.id_col)
        con.execute(
            f"CREATE TEMP VIEW __paired AS SELECT r.*, ch.__h AS __h, ch.__y AS __y_champion "
            f"FROM {q(rows.view)} AS r JOIN __champion AS ch ON r.{idc} = ch.__id"
        )
        matched = int(con.execute("SELECT count(*) FROM __paired").fetchall()[0][0])
        n_cand, n_champ = rows.n, champ_table.num_rows
        if not (matched == n_cand == n_champ):
            only_cand = n_cand - matched
            only_champ = n_champ - matched
            raise InputError(
                f"{candidate_name} (evaluation {candidate.id}, {n_cand} rows) and "
                f"{champion_name} (evaluation {champion.id}, {n_champ} rows) were not "
                f"evaluated on the same rows: {matched} ids in common, {only_cand} only in "
                f"the candidate's, {only_champ} only in the champion's; the gate compares "
                "models only on the same rows",
                hint="evaluate both on one dataset version (set [gate] golden = "
                '"name@version" in loopml.toml), or register both models on the same split',
                where=f"evaluations {candidate.id} and {champion.id}",
            )
        differ = int(
            con.execute(
                f"SELECT count(*) FROM __paired WHERE ({y_code}) <> __y_champion"
            ).fetchall()[0][0]
        )
        if differ:
            raise InputError(
                f"{differ} of the {matched} rows have different labels in evaluation "
                f"{candidate.id} ({candidate_name}) and {champion.id} ({champion_name}): they "
                "were evaluated on different label versions",
                hint="evaluate both models on one dataset version ([gate] golden)",
                where=f"evaluations {candidate.id} and {champion.id}",
            )
        columns = {c: t for c, t in rows.columns.items() if not c.startswith("__")}
        spec = getattr(project, "spec", None)
        groups = _group_defs(None, spec, columns)
        kk = k * k
        agg = aggregate_classification(
            con,
            "__paired",
            y_sql=y_code,
            p_sql=f"({c_code}) * {k} + __h",
            classes=list(range(kk)),
            groups=groups,
        )
    classes = tuple(candidate.classes)

    def cells(m: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        return np.asarray(m[:, :k, :].reshape(m.shape[0], k, k, k), dtype=np.int64)

    assert agg.overall.confusion is not None
    out = [JointCounts("overall", ["all"], classes, cells(agg.overall.confusion.matrix))]
    for g in agg.groups:
        assert g.definition is not None and g.confusion is not None
        out.append(JointCounts(g.definition.name, g.labels(), classes, cells(g.confusion.matrix)))
    return out
