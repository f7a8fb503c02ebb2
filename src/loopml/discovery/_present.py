"""From counted slices to findings: test, correct, merge parents into children, rank.

Every counted slice worse than the overall rate is tested (classification: one-sided exact
binomial against the overall error rate; regression: one-sided Welch t-test of its mean loss
against the rest of the table) and corrected over the whole family. The significant slices
are then grouped, comparing each with its *parents* (one predicate fewer, or one numeric
predicate widened to a larger one of the same column) that are significant too; with
``R = parent minus child``:

- the child is *redundant* when it is not separated from ``R`` (it is not significantly
  worse than ``R``, at the family's corrected level): it only adds a predicate; it is not
  reported;
- the parent is *explained* by the child when they are separated and ``R`` on its own is not
  significant: the parent's excess is the child's; it is shown with the child
  ("and its parent ...") instead of as a finding of its own.

The findings are the significant slices that are neither, ranked by excess.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from loopml.discovery._encode import Encoded
from loopml.discovery._result import DiscoveredSlice, interval_method
from loopml.discovery._search import Search
from loopml.discovery._stats import (
    binomial_p,
    fisher_greater,
    holm_adjust,
    mean_interval,
    sliceline_score,
    two_sample_welch,
    welch_p,
    wilson,
)
from loopml.metrics import Estimate
from loopml.slices import And, Expr, to_text

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(slots=True)
class Totals:
    rows: int
    rate: float  # overall error rate, or mean loss
    total1: float  # regression: sum of the centered loss (~0)
    total2: float  # regression: its sum of squares
    binary: bool


@dataclass(slots=True)
class Findings:
    slices: list[DiscoveredSlice]
    found: int


def _pvalues(n: FloatArray, t1: FloatArray, t2: FloatArray | None, tot: Totals) -> FloatArray:
    if tot.binary:
        return binomial_p(t1, n, tot.rate)
    assert t2 is not None
    return welch_p(n, t1, t2, rows=tot.rows, total1=tot.total1, total2=tot.total2)


def _intervals(
    n: FloatArray, t1: FloatArray, t2: FloatArray | None, tot: Totals, confidence: float
) -> tuple[FloatArray, FloatArray]:
    """The ``confidence`` interval of the slice's error rate (Wilson) or mean loss (t)."""
    if tot.binary:
        return wilson(t1, n, confidence)
    assert t2 is not None
    # sums of the loss centered at the overall mean: shift back
    lo, hi = mean_interval(n, t1, t2, confidence)
    return lo + tot.rate, hi + tot.rate


def findings(
    search: Search,
    enc: Encoded,
    tot: Totals,
    *,
    alpha: float,
    correction: str,
    k: int,
    weight: float,
    confidence: float = 0.95,
) -> Findings:
    levels = search.levels
    if not levels:
        return Findings([], 0)
    n = np.concatenate([lv.support for lv in levels]).astype(np.float64)
    t1 = np.concatenate([lv.t1 for lv in levels])
    t2 = None if tot.binary else np.concatenate([lv.t2 for lv in levels if lv.t2 is not None])
    origin_level = np.concatenate([np.full(lv.support.size, i) for i, lv in enumerate(levels)])
    origin_row = np.concatenate([np.arange(lv.support.size) for lv in levels])
    excess = t1 - n * tot.rate if tot.binary else t1.copy()
    p = _pvalues(n, t1, t2, tot)
    m = max(search.family, int(n.size))
    adjusted = holm_adjust(p, m) if correction == "holm" else np.minimum(p * m, 1.0)
    sig = np.flatnonzero((adjusted <= alpha) & (excess > 0))
    if sig.size == 0:
        return Findings([], 0)

    def key(i: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        lv = levels[int(origin_level[i])]
        return lv.cols, tuple(int(v) for v in lv.values[int(origin_row[i])])

    index = {key(int(i)): int(i) for i in sig}
    wider = _wider_predicates(enc)
    parent_of: list[int] = []
    child_of: list[int] = []
    for c in sig.tolist():
        cols, vals = key(c)
        cands: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
        if len(cols) > 1:
            for pos in range(len(cols)):
                cands.append((cols[:pos] + cols[pos + 1 :], vals[:pos] + vals[pos + 1 :]))
        for pos, j in enumerate(cols):
            for w in wider[j].get(vals[pos], ()):
                cands.append((cols, (*vals[:pos], w, *vals[pos + 1 :])))
        for cand in cands:
            pi = index.get(cand)
            if pi is not None:
                parent_of.append(pi)
                child_of.append(c)
    redundant: set[int] = set()
    explains: list[tuple[int, int]] = []  # (parent, child)
    if parent_of:
        pa = np.asarray(parent_of)
        ch = np.asarray(child_of)
        rn = n[pa] - n[ch]
        r1 = t1[pa] - t1[ch]
        r2 = None if t2 is None else t2[pa] - t2[ch]
        # the child is a finding of its own only when it is significantly worse than the
        # rest of its parent, at the family's corrected level
        if tot.binary:
            gap_p = fisher_greater(t1[ch], n[ch], t1[pa], n[pa])
        else:
            assert t2 is not None and r2 is not None
            gap_p = two_sample_welch(n[ch], t1[ch], t2[ch], rn, r1, r2)
        separated = (rn >= (1 if tot.binary else 2)) & (gap_p <= alpha / m)
        if tot.binary:
            r_p = binomial_p(r1, rn, tot.rate)
        else:
            assert r2 is not None
            r_p = welch_p(rn, r1, r2, rows=tot.rows, total1=tot.total1, total2=tot.total2)
        r_weak = (rn > 0) & (r_p <= alpha / m)
        redundant = {int(c) for c in ch[~separated]}
        explains = [
            (int(a), int(b)) for a, b, ok in zip(pa, ch, separated & ~r_weak, strict=True) if ok
        ]
    kept = [int(i) for i in sig if int(i) not in redundant]
    kept_set = set(kept)
    explained_by: dict[int, list[int]] = {}
    hidden: set[int] = set()
    for a, b in explains:
        if a in kept_set and b in kept_set:
            hidden.add(a)
            explained_by.setdefault(b, []).append(a)
    final = [i for i in kept if i not in hidden]
    depth = np.concatenate([np.full(lv.support.size, len(lv.cols)) for lv in levels])
    final.sort(key=lambda i: (-excess[i], depth[i], -n[i], i))
    top = final[:k]
    if not top:
        return Findings([], 0)
    idx = np.asarray(top)
    lo, hi = _intervals(n[idx], t1[idx], None if t2 is None else t2[idx], tot, confidence)
    rate_s = t1[idx] / n[idx] if tot.binary else tot.rate + t1[idx] / n[idx]
    scores = sliceline_score(
        n[idx], rate_s * n[idx], rows=tot.rows, error_rate=tot.rate, weight=weight
    )
    method = interval_method(tot.binary)
    out: list[DiscoveredSlice] = []
    for rank, i in enumerate(top, start=1):
        r = rank - 1
        expr, preds = _expression(enc, *key(i))
        parents = _parents(i, explained_by)
        parents.sort(key=lambda a: (depth[a], -excess[a], a))
        total = float(t1[i]) if tot.binary else float(rate_s[r] * n[i])
        out.append(
            DiscoveredSlice(
                rank=rank,
                expression=to_text(expr),
                predicates=preds,
                support=int(n[i]),
                errors=round(total) if tot.binary else total,
                error_rate=Estimate(float(rate_s[r]), float(lo[r]), float(hi[r]), method),
                share=float(n[i] / tot.rows),
                score=float(scores[r]),
                p_value=float(p[i]),
                p_adjusted=float(adjusted[i]),
                significant=True,
                expr=expr,
                excess=Estimate(
                    float(excess[i]),
                    float(n[i] * (lo[r] - tot.rate)),
                    float(n[i] * (hi[r] - tot.rate)),
                    method,
                ),
                parents=tuple(to_text(_expression(enc, *key(a))[0]) for a in parents),
            )
        )
    return Findings(out, len(final))


def _parents(i: int, explained_by: dict[int, list[int]]) -> list[int]:
    """Every slice whose excess ``i`` explains, directly or through another explained one."""
    seen: list[int] = []
    todo = list(explained_by.get(i, ()))
    while todo:
        a = todo.pop()
        if a in seen:
            continue
        seen.append(a)
        todo.extend(explained_by.get(a, ()))
    return seen


def _wider_predicates(enc: Encoded) -> list[dict[int, list[int]]]:
    """Per column: predicate -> the predicates of the same column that strictly contain it."""
    out: list[dict[int, list[int]]] = []
    for col in enc.columns:
        wider: dict[int, list[int]] = {}
        if col.numeric:
            sets = [frozenset(m.tolist()) for m in col.members]
            for a, sa in enumerate(sets):
                wider[a] = [b for b, sb in enumerate(sets) if b != a and sa < sb]
        out.append(wider)
    return out


def _expression(
    enc: Encoded, cols: tuple[int, ...], vals: tuple[int, ...]
) -> tuple[Expr, tuple[str, ...]]:
    conds: list[Expr] = []
    preds: list[str] = []
    for j, v in zip(cols, vals, strict=True):
        atoms = enc.columns[j].atoms[v]
        conds.extend(atoms)
        preds.append(to_text(atoms[0] if len(atoms) == 1 else And(atoms)))
    expr = conds[0] if len(conds) == 1 else And(tuple(conds))
    return expr, tuple(preds)
