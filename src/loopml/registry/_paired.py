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

Score and regression metrics use the same single aggregation of the joined rows
(:func:`paired_sums`): per slice value, the sums of each row's loss under both models and of
their difference (mae, mse, rmse, r2, mape, log_loss, brier: t intervals, rmse and r2 by the
delta method), or a joint histogram of both models' score bins per label (ROC AUC, average
precision: each model's binned metric from its marginal, and a bootstrap drawing the joint
cells from a multinomial). Both are tested equal to a per-row paired bootstrap.

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
from loopml.metrics import Estimate
from loopml.tableview import HtmlRepr

if TYPE_CHECKING:
    from loopml.evaluation import Evaluation, EvaluationRows
    from loopml.project import Project

__all__ = [
    "JointCounts",
    "PairedDifference",
    "PairedSums",
    "holm",
    "joint_counts",
    "mcnemar_exact",
    "paired_difference",
    "paired_kind",
    "paired_score_difference",
    "paired_sums",
    "paired_sums_from_arrays",
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
class PairedDifference(HtmlRepr):
    """The signed difference (positive: the candidate is better) of one metric on one slice
    value with its interval and the interval's method (``diff``), the McNemar test on the
    2x2 table and the one-sided p-value of "worse by more than ``tolerance``".
    ``to_dict`` keeps the flat ``diff``, ``low``, ``high``, ``method`` of the stored
    decisions."""

    metric: str
    slice: str
    n: int
    candidate: float
    champion: float
    diff: Estimate
    table: list[list[int]]
    mcnemar_p: float
    p_worse: float | None
    tolerance: float

    def to_dict(self) -> dict[str, Any]:
        out = {
            "metric": self.metric,
            "slice": self.slice,
            "n": self.n,
            "candidate": self.candidate,
            "champion": self.champion,
            "diff": self.diff.value,
            "low": self.diff.low,
            "high": self.diff.high,
            "table": [list(row) for row in self.table],
            "mcnemar_p": self.mcnemar_p,
            "p_worse": self.p_worse,
            "tolerance": self.tolerance,
            "method": self.diff.method,
        }
        return {k: _clean(v) for k, v in out.items()}


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
                diff=Estimate(diff, low, high, method),
                table=t.tolist(),
                mcnemar_p=mc,
                p_worse=p_worse,
                tolerance=tolerance,
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
    project: Project,
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
    from loopml.evaluation import open_rows
    from loopml.evaluation._inputs import _group_defs
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
        champ_table = ch.con.arrow(
            f"SELECT {_ids_sql(ch)} AS __id, {h_code} AS __h, {y_code} AS __y FROM {q(ch.view)}"
        )
    with open_rows(candidate, project) as rows:
        con = rows.con
        con.register(champ_table, "__champion")
        c_code = _code_sql(candidate, rows.columns, "prediction")
        y_code = _code_sql(candidate, rows.columns, "label")
        idc = q(rows.id_col)
        con.execute(
            f"CREATE TEMP VIEW __paired AS SELECT r.*, ch.__h AS __h, ch.__y AS __y_champion "
            f"FROM {q(rows.view)} AS r JOIN __champion AS ch ON r.{idc} = ch.__id"
        )
        _check_paired_rows(
            con,
            f"({y_code}) <> __y_champion",
            (candidate, candidate_name, rows.n),
            (champion, champion_name, champ_table.num_rows),
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


# --------------------------------------------------------------------------- scores and errors

#: score bins of the joint histograms (candidate bin x champion bin x label): overall, and
#: per key slice value (as the evaluation's 20 slice bins)
RANK_BINS = 100
RANK_SLICE_BINS = 20

_LOSSES = ("mae", "mse", "rmse", "r2", "mape", "log_loss", "brier")
_RANKS = ("roc_auc", "average_precision")


def paired_kind(metric: str, task: str) -> str:
    """How the gate compares two models on ``metric``: ``"labels"`` (joint cells of label x
    both predictions), ``"losses"`` (sums of each row's loss under both models) or
    ``"ranks"`` (a joint histogram of both models' score bins per label). Raises
    ConfigurationError for a metric the paired gate cannot compare."""
    from loopml.errors import ConfigurationError
    from loopml.metrics import parse_metric, resolve_metric

    info = resolve_metric(metric)
    if info is None:
        raise ConfigurationError(
            f"the gate does not know the metric {metric!r}",
            hint="set [metric] optimizing to a metric loopml knows (loopml.metrics.metric_names)",
            where="metric.optimizing",
        )
    if info.kind == "labels":
        return "labels"
    base = parse_metric(metric).base
    if base in _LOSSES:
        return "losses"
    if base in _RANKS and task == "binary":
        return "ranks"
    if base in _RANKS:
        raise ConfigurationError(
            f"the paired gate compares {base} of binary tasks only; this project is {task}",
            hint="optimize log_loss or a label metric (f1_macro, accuracy, ...) for a "
            "multiclass gate",
            where="metric.optimizing",
        )
    raise ConfigurationError(
        f"the gate cannot compare {metric!r} ({info.kind} metric) between two models",
        hint="optimize a label, score or regression metric",
        where="metric.optimizing",
    )


@dataclass(frozen=True)
class PairedSums:
    """One grouping's paired sums per slice value (leading axis ``S``).

    For a per-row loss (mae, mse, rmse, r2, mape, log_loss, brier), ``a`` is a row's loss
    under the candidate and ``b`` under the champion, and ``d = b - a`` (positive: the
    candidate is better on the row): ``sums`` holds ``a``, ``b``, ``d``, ``dd`` (d^2),
    ``aa``, ``bb``, ``ab``, and, of the target ``y`` shifted by one constant (its mean
    overall), ``y``, ``yy``, ``y3``, ``y4``, ``dy``, ``dyy`` (r2's delta method).
    ``n`` counts the rows the loss is defined on (MAPE: the rows with a nonzero target).

    For ROC AUC and average precision, ``hist[s, y, c, h]`` counts the rows of label ``y``
    (0/1) whose candidate score is in bin ``c`` and champion score in bin ``h`` of ``edges``.
    """

    group: str
    labels: list[str]
    n: npt.NDArray[np.int64]
    sums: dict[str, npt.NDArray[np.float64]]
    hist: npt.NDArray[np.int64] | None = None
    edges: npt.NDArray[np.float64] | None = None

    def support(self, unit: str) -> npt.NDArray[np.int64]:
        """Per slice value: the rows ``unit`` counts ("rows", or the smaller class)."""
        if unit == "rows" or self.hist is None:
            return np.asarray(self.n, dtype=np.int64)
        per_class = self.hist.sum(axis=(2, 3))  # (S, 2)
        return np.asarray(per_class.min(axis=-1), dtype=np.int64)


_SUM_KEYS = ("a", "b", "d", "dd", "aa", "bb", "ab", "y", "yy", "y3", "y4", "dy", "dyy")


def paired_sums_from_arrays(
    metric: str,
    y: npt.ArrayLike,
    candidate: npt.ArrayLike,
    champion: npt.ArrayLike,
    *,
    bins: int = RANK_BINS,
    group: str = "overall",
    label: str = "all",
    shift: float = 0.0,
) -> PairedSums:
    """Reference builder of one slice value's :class:`PairedSums` from per-row arrays (the
    target and both models' predictions: values for regression, positive-class scores for a
    binary score metric), the numpy counterpart of :func:`paired_sums`."""
    from loopml.metrics import parse_metric

    base = parse_metric(metric).base
    yv = np.asarray(y, dtype=np.float64)
    cv = np.asarray(candidate, dtype=np.float64)
    hv = np.asarray(champion, dtype=np.float64)
    if yv.ndim != 1 or cv.shape != yv.shape or hv.shape != yv.shape:
        raise InputError(
            f"y {yv.shape}, candidate {cv.shape} and champion {hv.shape} must be equal 1-d arrays",
            hint="pass one target and one prediction of each model per row",
            where="candidate",
        )
    sums = {k: np.zeros(1) for k in _SUM_KEYS}
    yc = yv - shift
    for key, arr in (("y", yc), ("yy", yc**2), ("y3", yc**3), ("y4", yc**4)):
        sums[key][0] = arr.sum()
    if base in _RANKS:
        edges = np.linspace(0.0, 1.0, bins + 1)
        cb = np.clip(np.floor(cv * bins).astype(np.int64), 0, bins - 1)
        hb = np.clip(np.floor(hv * bins).astype(np.int64), 0, bins - 1)
        yi = (yv == 1).astype(np.int64)
        hist = np.bincount((yi * bins + cb) * bins + hb, minlength=2 * bins * bins)
        return PairedSums(
            group,
            [label],
            np.array([yv.size], dtype=np.int64),
            sums,
            hist.reshape(1, 2, bins, bins).astype(np.int64),
            edges,
        )

    def loss(p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        if base == "mae":
            return np.abs(p - yv)
        if base in ("mse", "rmse", "r2"):
            return (p - yv) ** 2
        if base == "mape":
            return np.where(yv != 0, np.abs(p - yv) / np.where(yv != 0, np.abs(yv), 1.0), np.nan)
        if base == "brier":
            return (p - yv) ** 2
        if base == "log_loss":
            p_true = np.where(yv == 1, p, 1.0 - p)
            return np.asarray(-np.log(np.clip(p_true, 1e-15, 1 - 1e-15)))
        raise InputError(f"{metric!r} is not a loss the paired gate sums", where="metric")

    a, b = loss(cv), loss(hv)
    ok = ~np.isnan(a)
    a, b, yc = a[ok], b[ok], yc[ok]
    d = b - a
    sums["dy"][0], sums["dyy"][0] = (d * yc).sum(), (d * yc * yc).sum()
    for key, arr in (
        ("a", a),
        ("b", b),
        ("d", d),
        ("dd", d * d),
        ("aa", a * a),
        ("bb", b * b),
        ("ab", a * b),
    ):
        sums[key][0] = arr.sum()
    return PairedSums(group, [label], np.array([a.size], dtype=np.int64), sums)


def _loss_parts(
    sums: PairedSums, base: str
) -> tuple[
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    str,
]:
    """Per slice value: (candidate, champion, signed difference, its standard error, how)."""
    s = sums.sums
    n = sums.n.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        nn = np.where(n > 0, n, np.nan)
        m1 = np.where(n > 1, n - 1, np.nan)
        mean_a, mean_b, mean_d = s["a"] / nn, s["b"] / nn, s["d"] / nn
        var_d = np.maximum(s["dd"] - s["d"] * mean_d, 0.0) / m1
        se_d = np.sqrt(var_d / nn)
        if base == "rmse":
            ra, rb = np.sqrt(mean_a), np.sqrt(mean_b)
            # delta method: rmse_h - rmse_c ~ d / (2 rmse_h) + a (1/(2 rmse_h) - 1/(2 rmse_c))
            k1 = 1.0 / (2.0 * rb)
            k2 = (ra - rb) / (2.0 * ra * rb)
            var_a = np.maximum(s["aa"] - s["a"] * mean_a, 0.0) / m1
            cov_da = ((s["ab"] - s["aa"]) - s["d"] * mean_a) / m1
            var_u = np.maximum(k1**2 * var_d + k2**2 * var_a + 2 * k1 * k2 * cov_da, 0.0)
            same = (ra == 0) & (rb == 0)
            se = np.where(same, 0.0, np.sqrt(var_u / nn))
            return ra, rb, rb - ra, se, "paired t, delta method on the squared errors"
        if base == "r2":
            # the same rows, so the same SST: r2_c - r2_h = mean(d) / V, V = var(y); by the
            # delta method the row's share is u = d / V - mean(d) / V^2 * (y^2 - 2 mean(y) y)
            # (the sums of y are of the targets shifted by one constant, which r2 ignores)
            m_y = s["y"] / nn
            var_y = s["yy"] / nn - m_y**2
            var_y = np.where(var_y > 1e-12 * np.abs(s["yy"] / nn), var_y, np.nan)
            k = mean_d / var_y**2
            sum_w = s["yy"] - 2 * m_y * s["y"]
            sum_dw = s["dyy"] - 2 * m_y * s["dy"]
            sum_ww = s["y4"] - 4 * m_y * s["y3"] + 4 * m_y**2 * s["yy"]
            sum_u = s["d"] / var_y - k * sum_w
            sum_uu = s["dd"] / var_y**2 - 2 * k / var_y * sum_dw + k**2 * sum_ww
            var_u = np.maximum(sum_uu - sum_u * sum_u / nn, 0.0) / m1
            return (
                1.0 - mean_a / var_y,
                1.0 - mean_b / var_y,
                mean_d / var_y,
                np.sqrt(var_u / nn),
                "paired t, delta method on the squared errors and the targets' variance",
            )
    return mean_a, mean_b, mean_d, se_d, "paired t on the per-row loss differences"


def _rank_metric(
    metric: str, hist: npt.NDArray[np.int64], edges: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """The binned metric of score histograms ``hist[..., y, b]`` (loopml.metrics)."""
    from loopml.metrics import ScoreCounts, compute

    lead = hist.shape[:-2]
    h = hist.reshape(*lead, 2, 1, hist.shape[-1])
    counts = ScoreCounts(
        classes=(0, 1),
        edges=edges,
        hist=h,
        score_sum=np.zeros(h.shape),
        logloss_sum=np.zeros(lead),
        brier_sum=np.zeros(lead),
        n=h.sum(axis=(-3, -2, -1)),
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(compute(metric, counts, task="binary"), dtype=float)


def _marginals(
    draws: npt.NDArray[np.int64], keys: npt.NDArray[np.int64], size: int
) -> npt.NDArray[np.int64]:
    """Sum the columns of ``draws`` (m x cells) by ``keys`` into m x ``size``."""
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    starts = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1]])
    out = np.zeros((draws.shape[0], size), dtype=np.int64)
    out[:, sk[starts]] = np.add.reduceat(draws[:, order], starts, axis=1)
    return out


def _rank_difference(
    sums: PairedSums,
    metric: str,
    *,
    tolerance: float,
    confidence: float,
    n_boot: int,
    seed: int,
) -> list[PairedDifference]:
    assert sums.hist is not None and sums.edges is not None
    hist, edges = sums.hist, sums.edges
    nb = hist.shape[-1]
    cand = _rank_metric(metric, hist.sum(axis=3), edges)
    champ = _rank_metric(metric, hist.sum(axis=2), edges)
    rng = np.random.default_rng(seed)
    alpha = 1.0 - confidence
    out: list[PairedDifference] = []
    for s, label in enumerate(sums.labels):
        flat = hist[s].reshape(-1)
        n = int(flat.sum())
        low = high = p_worse = None
        if n > 0:
            cells = np.flatnonzero(flat)
            p = flat[cells] / n
            y, rest = np.divmod(cells, nb * nb)
            c, h = np.divmod(rest, nb)
            diffs: list[npt.NDArray[np.float64]] = []
            chunk = max(1, min(n_boot, 4_000_000 // max(len(cells), 1)))
            done = 0
            while done < n_boot:
                m = min(chunk, n_boot - done)
                draws = rng.multinomial(n, p, size=m)
                hc = _marginals(draws, y * nb + c, 2 * nb).reshape(m, 2, nb)
                hh = _marginals(draws, y * nb + h, 2 * nb).reshape(m, 2, nb)
                diffs.append(_rank_metric(metric, hc, edges) - _rank_metric(metric, hh, edges))
                done += m
            d = np.concatenate(diffs)
            d = d[~np.isnan(d)]
            if len(d) >= n_boot // 2:
                low = float(np.quantile(d, alpha / 2))
                high = float(np.quantile(d, 1 - alpha / 2))
                p_worse = float((np.sum(d >= -tolerance) + 1) / (len(d) + 1))
        out.append(
            PairedDifference(
                metric=metric,
                slice=label,
                n=n,
                candidate=float(cand[s]),
                champion=float(champ[s]),
                diff=Estimate(
                    float(cand[s] - champ[s]),
                    low,
                    high,
                    f"joint-histogram bootstrap ({nb}x{nb} score bins x label)",
                ),
                table=[],
                mcnemar_p=math.nan,
                p_worse=p_worse,
                tolerance=tolerance,
            )
        )
    return out


def paired_score_difference(
    sums: PairedSums,
    metric: str,
    *,
    tolerance: float = 0.0,
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> list[PairedDifference]:
    """Per slice value of ``sums``: the paired difference of a score or regression metric.

    Losses (mae, mse, log_loss, brier, mape): the mean of the per-row loss differences
    ``d = b - a`` with a t interval from ``n``, ``sum(d)`` and ``sum(d^2)``; rmse by the delta
    method on the squared errors; r2 as the mean squared-error difference over the targets'
    variance (the same rows, so the same variance). ``p_worse`` is the one-sided t p-value
    of "worse by more than ``tolerance``". ROC AUC and average precision: the binned metric
    of each model's marginal histogram, with a bootstrap that draws the joint (candidate bin
    x champion bin x label) cells from a multinomial, i.e. a per-row paired bootstrap done
    on counts; ``p_worse`` is the bootstrap share not worse by more than ``tolerance``.
    """
    from scipy.stats import t as student

    from loopml.metrics import parse_metric

    base = parse_metric(metric).base
    if base in _RANKS:
        if sums.hist is None or sums.edges is None:
            raise ComputationError(f"{metric} needs the joint score histogram of both models")
        return _rank_difference(
            sums, metric, tolerance=tolerance, confidence=confidence, n_boot=n_boot, seed=seed
        )
    if base not in _LOSSES:
        raise ComputationError(
            f"{metric!r} is not a score or regression metric the paired gate compares",
            hint="use paired_difference for label metrics",
            where="metric.optimizing",
        )
    cand, champ, diff, se, method = _loss_parts(sums, base)
    alpha = 1.0 - confidence
    out: list[PairedDifference] = []
    for s, label in enumerate(sums.labels):
        n = int(sums.n[s])
        dv, sv = float(diff[s]), float(se[s])
        low = high = p_worse = None
        if n > 1 and not math.isnan(dv) and not math.isnan(sv):
            if sv > 0:
                q = float(student.ppf(1 - alpha / 2, n - 1))
                low, high = dv - q * sv, dv + q * sv
                p_worse = float(student.cdf((dv + tolerance) / sv, n - 1))
            else:  # every row's difference is the same: no noise
                low = high = dv
                p_worse = 1.0 if dv + tolerance >= 0 else 0.0
        out.append(
            PairedDifference(
                metric=metric,
                slice=label,
                n=n,
                candidate=float(cand[s]),
                champion=float(champ[s]),
                diff=Estimate(dv, low, high, method),
                table=[],
                mcnemar_p=math.nan,
                p_worse=p_worse,
                tolerance=tolerance,
            )
        )
    return out


def _value_sql(ev: Evaluation, columns: dict[str, str], base: str) -> tuple[str, str]:
    """(target SQL, per-row value SQL) of one evaluation's rows for the metric ``base``: the
    row's loss for a loss metric, the positive-class score for ROC AUC / average precision
    (the same formulas as the evaluation's own sums)."""
    from loopml.slices import quote_identifier as q

    where = f"evaluation {ev.id}"
    if ev.task == "regression":
        label = str(ev.inputs.get("label") or "label")
        if "prediction" not in columns:
            raise InputError(
                f"the rows of evaluation {ev.id} have no 'prediction' column to compare",
                hint="register the model's predictions with a 'prediction' column",
                where=where,
            )
        y = f"CAST({q(label)} AS DOUBLE)"
        e = f'(CAST("prediction" AS DOUBLE) - {y})'
        if base == "mae":
            return y, f"abs({e})"
        if base == "mape":
            return y, f"CASE WHEN {y} <> 0 THEN abs({e}) / abs({y}) END"
        return y, f"({e} * {e})"
    y = _code_sql(ev, columns, "label")
    classes = list(ev.classes)
    if ev.task == "binary" or base in _RANKS:
        score = None
        if "score" in columns:
            score = '"score"'
        elif len(classes) == 2 and f"proba_{classes[1]}" in columns:
            score = q(f"proba_{classes[1]}")
        if score is None:
            raise InputError(
                f"the rows of evaluation {ev.id} have no 'score' column: {base} compares the "
                "models' scores (probabilities of the positive class)",
                hint="register the model's predictions with a 'score' column (and evaluate it "
                "again), or optimize a label metric",
                where=where,
            )
        s = f"CAST({score} AS DOUBLE)"
        if base in _RANKS:
            return f"({y})", s
        if base == "brier":
            return f"({y})", f"(({s} - ({y})) * ({s} - ({y})))"
        p_true = f"CASE WHEN ({y}) = 1 THEN {s} ELSE 1 - {s} END"
        return f"({y})", f"(-ln(greatest(least({p_true}, 1 - 1e-15), 1e-15)))"
    probas = [f"CAST({q(f'proba_{c}')} AS DOUBLE)" for c in classes]
    if not all(f"proba_{c}" in columns for c in classes):
        raise InputError(
            f"the rows of evaluation {ev.id} have no proba_<class> columns: {base} compares "
            "the models' probabilities",
            hint="register the model's predictions with one proba_<class> column per class",
            where=where,
        )
    if base == "brier":
        terms = [
            f"(({p}) - CASE WHEN ({y}) = {j} THEN 1 ELSE 0 END) * "
            f"(({p}) - CASE WHEN ({y}) = {j} THEN 1 ELSE 0 END)"
            for j, p in enumerate(probas)
        ]
        return f"({y})", f"({' + '.join(terms)})"
    p_true = "CASE " + " ".join(f"WHEN ({y}) = {j} THEN {p}" for j, p in enumerate(probas)) + " END"
    return f"({y})", f"(-ln(greatest(least({p_true}, 1 - 1e-15), 1e-15)))"


def paired_sums(
    project: Project,
    candidate: Evaluation,
    champion: Evaluation,
    metric: str,
    *,
    candidate_name: str = "the candidate",
    champion_name: str = "the champion",
    bins: int = RANK_BINS,
    slice_bins: int = RANK_SLICE_BINS,
) -> list[PairedSums]:
    """Join both evaluations' rows by id and reduce them, in ONE DuckDB statement (``GROUP
    BY GROUPING SETS``), to :class:`PairedSums`, overall first, then one per key slice
    definition: the sums of both models' per-row losses and of their differences, or, for
    ROC AUC and average precision, the joint histogram of both models' score bins per label
    (``bins`` overall, ``slice_bins`` per slice value).

    Refuses (InputError) when the two evaluations are not on the same rows with the same
    targets, naming how they differ, or when a model's rows lack what the metric needs.
    """
    from loopml.engine import GroupCounts
    from loopml.engine._aggregate import (
        _factorize,
        _grouping_rows,
        _grouping_select,
        _key_chunks,
        _key_columns,
        _plain,
        _run,
    )
    from loopml.evaluation import open_rows
    from loopml.evaluation._inputs import _group_defs
    from loopml.metrics import parse_metric
    from loopml.slices import quote_identifier as q

    base = parse_metric(metric).base
    if candidate.task != champion.task or [str(c) for c in candidate.classes] != [
        str(c) for c in champion.classes
    ]:
        raise InputError(
            f"{candidate_name} (evaluation {candidate.id}) and {champion_name} (evaluation "
            f"{champion.id}) are not of the same task and classes: {candidate.task} "
            f"{candidate.classes} vs {champion.task} {champion.classes}",
            hint="compare models of the same task on the same labelled rows",
            where=f"evaluation {candidate.id}",
        )
    with open_rows(champion, project) as ch:
        y_h, v_h = _value_sql(champion, ch.columns, base)
        champ_table = ch.con.arrow(
            f"SELECT {_ids_sql(ch)} AS __id, {v_h} AS __vh, {y_h} AS __yh FROM {q(ch.view)}"
        )
    with open_rows(candidate, project) as rows:
        con = rows.con
        con.register(champ_table, "__champion")
        y_c, v_c = _value_sql(candidate, rows.columns, base)
        idc = q(rows.id_col)
        con.execute(
            f"CREATE TEMP VIEW __paired AS SELECT r.*, {v_c} AS __vc, ch.__vh AS __vh, "
            f"{y_c} AS __yc, ch.__yh AS __yh "
            f"FROM {q(rows.view)} AS r JOIN __champion AS ch ON r.{idc} = ch.__id"
        )
        _check_paired_rows(
            con,
            "__yc IS DISTINCT FROM __yh",
            (candidate, candidate_name, rows.n),
            (champion, champion_name, champ_table.num_rows),
        )
        columns = {c: t for c, t in rows.columns.items() if not c.startswith("__")}
        groups = _group_defs(None, getattr(project, "spec", None), columns)
        proj, keys = _key_columns(groups)
        # the targets' moments are summed about their mean, which keeps y^4 small
        mean = con.rows("SELECT avg(CAST(__yc AS DOUBLE)) FROM __paired")[0][0]
        shift = float(mean) if mean is not None and math.isfinite(float(mean)) else 0.0
        ranks = base in _RANKS

        def cell(nb: int) -> str:
            if not ranks:
                return "0"
            c_bin = f"least(CAST(floor(__vc * {nb}) AS INTEGER), {nb - 1})"
            h_bin = f"least(CAST(floor(__vh * {nb}) AS INTEGER), {nb - 1})"
            return f"(CAST(__yc AS INTEGER) * {nb} + {c_bin}) * {nb} + {h_bin}"

        inner = [
            "__vc AS __a",
            "__vh AS __b",
            "__vh - __vc AS __d",
            f"CAST(__yc AS DOUBLE) - {shift!r} AS __y",
            f"{cell(bins)} AS __o",
            f"{cell(slice_bins)} AS __x",
            *proj,
        ]
        aggs = [
            "count(*) AS __rows",
            "count(__a) AS __n",
            *(
                f"coalesce(sum({e}), 0) AS __s_{k}"
                for k, e in (
                    ("a", "__a"),
                    ("b", "__b"),
                    ("d", "__d"),
                    ("dd", "__d * __d"),
                    ("aa", "__a * __a"),
                    ("bb", "__b * __b"),
                    ("ab", "__a * __b"),
                    ("y", "__y"),
                    ("yy", "__y * __y"),
                    ("y3", "__y * __y * __y"),
                    ("y4", "__y * __y * __y * __y"),
                    ("dy", "__d * __y"),
                    ("dyy", "__d * __y * __y"),
                )
            ),
        ]
        all_keys = list(
            dict.fromkeys(["__o", *(["__x"] if keys else []), *(k2 for ks in keys for k2 in ks)])
        )
        sets = ["(__o)"] + [f"({', '.join([*ks, '__x'])})" for ks in keys]
        chunks = _key_chunks(all_keys)
        res = _run(
            con,
            f"SELECT {_grouping_select(con, chunks)}, {', '.join(all_keys)}, "
            f"{', '.join(aggs)} FROM (SELECT {', '.join(inner)} FROM __paired) AS __rows "
            f"GROUP BY GROUPING SETS ({', '.join(sets)})",
        )

    def build(
        name: str,
        labels: list[str],
        rows_mask: npt.NDArray[np.bool_],
        v_idx: npt.NDArray[np.int64],
        code_col: str,
        nb: int,
    ) -> PairedSums:
        nv = len(labels)
        keep = v_idx >= 0
        vi = v_idx[keep]

        def total(col: str, dtype: Any) -> npt.NDArray[Any]:
            out = np.zeros(nv, dtype=dtype)
            np.add.at(out, vi, _plain(res[col][rows_mask])[keep].astype(dtype))
            return out

        sums = {k: total(f"__s_{k}", np.float64) for k in _SUM_KEYS}
        if not ranks:
            return PairedSums(name, labels, total("__n", np.int64), sums)
        code = _plain(res[code_col][rows_mask])[keep].astype(np.int64)
        cnt = _plain(res["__rows"][rows_mask])[keep].astype(np.int64)
        hist = np.zeros((nv, 2 * nb * nb), dtype=np.int64)
        np.add.at(hist, (vi, code), cnt)
        return PairedSums(
            name,
            labels,
            total("__rows", np.int64),
            sums,
            hist.reshape(nv, 2, nb, nb),
            np.linspace(0.0, 1.0, nb + 1),
        )

    overall_rows = _grouping_rows(res, chunks, ["__o"])
    out = [
        build(
            "overall",
            ["all"],
            overall_rows,
            np.zeros(int(overall_rows.sum()), dtype=np.int64),
            "__o",
            bins,
        )
    ]
    for g, ks in zip(groups, keys, strict=True):
        mask = _grouping_rows(res, chunks, [*ks, "__x"])
        values, v_idx = _factorize(res, mask, ks, g.kind)
        labels = GroupCounts(
            definition=g, values=values, n=np.zeros(len(values), dtype=np.int64)
        ).labels()
        out.append(build(g.name, labels, mask, v_idx, "__x", slice_bins))
    return out


def _check_paired_rows(
    con: Any,
    labels_differ: str,
    candidate: tuple[Any, str, int],
    champion: tuple[Any, str, int],
) -> None:
    """Refuse unless the view ``__paired`` joins every row of both evaluations and their
    labels agree (``labels_differ`` is the SQL condition of a row whose labels differ)."""
    (cand, cand_name, n_cand), (champ, champ_name, n_champ) = candidate, champion
    where = f"evaluations {cand.id} and {champ.id}"
    matched = int(con.rows("SELECT count(*) FROM __paired")[0][0])
    if not (matched == n_cand == n_champ):
        raise InputError(
            f"{cand_name} (evaluation {cand.id}, {n_cand} rows) and "
            f"{champ_name} (evaluation {champ.id}, {n_champ} rows) were not "
            f"evaluated on the same rows: {matched} ids in common, {n_cand - matched} only in "
            f"the candidate's, {n_champ - matched} only in the champion's; the gate compares "
            "models only on the same rows",
            hint="evaluate both on one dataset version (set [gate] golden = "
            '"name@version" in loopml.toml), or register both models on the same split',
            where=where,
        )
    differ = int(con.rows(f"SELECT count(*) FROM __paired WHERE {labels_differ}")[0][0])
    if differ:
        raise InputError(
            f"{differ} of the {matched} rows have different labels in evaluation "
            f"{cand.id} ({cand_name}) and {champ.id} ({champ_name}): they "
            "were evaluated on different label versions",
            hint="evaluate both models on one dataset version ([gate] golden)",
            where=where,
        )
