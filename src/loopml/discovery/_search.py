"""Count every slice of the lattice, level by level, pruning only what provably cannot matter.

A slice is a conjunction of predicates on distinct columns. For a set of columns, one
``np.bincount`` over the mixed-radix combined cell codes gives the rows and errors (or loss
sums) of every combination of cells; a numeric column's predicates (bins, tails) are unions
of its cells, so its axis is then expanded into predicates and summed again.

The family of hypotheses is fixed by the rows alone: every slice of up to ``max_predicates``
predicates with at least ``min_support`` rows. A set of columns is counted only when each of
its subsets one column smaller holds a slice that can still be extended: at least
``min_support`` rows and (classification) enough errors for some sub-slice to reach the
corrected significance threshold (see ``min_errors_to_prove``). The slices of a set that is
not counted are still members of the family: they are counted in ``family`` by an upper
bound, so the correction stays valid.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from loopml.discovery._encode import Encoded
from loopml.discovery._stats import min_errors_to_prove
from loopml.errors import InputError

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

_DENSE_CELLS = 1 << 24  # above this many combined cells, count by sorting instead of bincount
_MAX_CODE_SPACE = 1 << 62


@dataclass(slots=True)
class Level:
    """The slices of one column set with at least ``min_support`` rows."""

    cols: tuple[int, ...]
    values: IntArray  # (m, L) predicate codes
    support: IntArray
    t1: FloatArray  # errors (classification) or the sum of the centered loss
    t2: FloatArray | None  # regression: the sum of squares of the centered loss


@dataclass(slots=True)
class Search:
    levels: list[Level]
    family: int  # the number of slices in the family (exact + upper bounds of skipped sets)
    evaluated: int  # the number of slices counted
    skipped_sets: int
    column_sets: int


@dataclass(slots=True)
class _Csr:
    ptr: IntArray
    idx: IntArray
    count: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def _membership(members: list[IntArray], cells: int) -> _Csr:
    """For each cell, the predicates that hold it (CSR)."""
    per: list[list[int]] = [[] for _ in range(cells + 1)]
    for p, m in enumerate(members):
        for c in m.tolist():
            per[c].append(p)
    count = np.array([len(x) for x in per], dtype=np.int64)
    ptr = np.concatenate([[0], np.cumsum(count)]).astype(np.int64)
    idx = np.array([p for x in per for p in x], dtype=np.int64)
    return _Csr(ptr, idx, count)


def _aggregate(
    key: IntArray, support: IntArray, t1: FloatArray, t2: FloatArray | None, vals: IntArray
) -> tuple[IntArray, IntArray, FloatArray, FloatArray | None]:
    uniq, first, inv = np.unique(key, return_index=True, return_inverse=True)
    k = uniq.size
    s = np.rint(_fbin(inv, weights=support, minlength=k)).astype(np.int64)
    a = _fbin(inv, weights=t1, minlength=k)
    b = None if t2 is None else _fbin(inv, weights=t2, minlength=k)
    return vals[first], s, a, b


def _fbin(x: IntArray, weights: npt.ArrayLike, minlength: int = 0) -> FloatArray:
    """``np.bincount`` with weights, typed as float."""
    return np.asarray(np.bincount(x, weights=weights, minlength=minlength), dtype=np.float64)


def _key(vals: IntArray, radix: list[int]) -> IntArray:
    out = np.zeros(vals.shape[0], dtype=np.int64)
    for pos, r in enumerate(radix):
        out = out * r + vals[:, pos]
    return out


class Counter:
    """Counts of the slices of any column set of one encoded table."""

    def __init__(self, enc: Encoded, sigma: int, mean: float) -> None:
        self.enc = enc
        self.sigma = sigma
        self.radix = [c.cells + 1 for c in enc.columns]
        self.npred = [len(c.atoms) for c in enc.columns]
        self.csr = [_membership(c.members, c.cells) if c.numeric else None for c in enc.columns]
        if enc.errors is not None:
            self.err_rows: IntArray | None = np.flatnonzero(enc.errors)
            self.b1: FloatArray = np.zeros(0)
            self.b2: FloatArray = np.zeros(0)
        else:
            assert enc.loss is not None
            self.err_rows = None
            self.b1 = enc.loss - mean
            self.b2 = self.b1 * self.b1

    def count(self, cs: tuple[int, ...]) -> Level:
        enc, radix = self.enc, self.radix
        space = math.prod(radix[j] for j in cs)
        if space > _MAX_CODE_SPACE:
            raise InputError(
                f"the columns {[enc.names[j] for j in cs]} have too many values to combine in "
                "64-bit codes",
                hint="lower max_values= or max_predicates=",
            )
        code = enc.codes[cs[0]].astype(np.int64)
        for j in cs[1:]:
            code *= radix[j]
            code += enc.codes[j]
        t2: FloatArray | None
        numeric = [pos for pos, j in enumerate(cs) if self.csr[j] is not None]
        if numeric and space <= _DENSE_CELLS:
            return self._dense(cs, code)
        if space <= _DENSE_CELLS:
            cnt = np.bincount(code, minlength=space)
            cells = np.flatnonzero(cnt)
            support = cnt[cells].astype(np.int64)
            if self.err_rows is not None:
                t1 = np.bincount(code[self.err_rows], minlength=space)[cells].astype(np.float64)
                t2 = None
            else:
                assert self.b1 is not None and self.b2 is not None
                t1 = _fbin(code, weights=self.b1, minlength=space)[cells]
                t2 = _fbin(code, weights=self.b2, minlength=space)[cells]
        else:
            cells, inv, cnt = np.unique(code, return_inverse=True, return_counts=True)
            support = cnt.astype(np.int64)
            if self.err_rows is not None:
                t1 = np.bincount(inv[self.err_rows], minlength=cells.size).astype(np.float64)
                t2 = None
            else:
                t1 = _fbin(inv, weights=self.b1, minlength=cells.size)
                t2 = _fbin(inv, weights=self.b2, minlength=cells.size)
        del code
        vals = np.empty((cells.size, len(cs)), dtype=np.int64)
        rest = cells.astype(np.int64)
        for pos in range(len(cs) - 1, -1, -1):
            rest, vals[:, pos] = np.divmod(rest, radix[cs[pos]])
        # a categorical cell code == cells means "in no predicate"
        real = np.ones(cells.size, dtype=bool)
        for pos, j in enumerate(cs):
            if self.csr[j] is None:
                real &= vals[:, pos] < enc.columns[j].cells
        vals, support, t1 = vals[real], support[real], t1[real]
        t2 = None if t2 is None else t2[real]
        if numeric:
            cat = [pos for pos in range(len(cs)) if pos not in numeric]
            if cat:  # a slice lies inside its categorical cell: drop the cells too small
                gkey = _key(vals[:, cat], [radix[cs[p]] for p in cat])
                _, ginv = np.unique(gkey, return_inverse=True)
                gsup = _fbin(ginv, weights=support)
                keep = gsup[ginv] >= self.sigma
                vals, support, t1 = vals[keep], support[keep], t1[keep]
                t2 = None if t2 is None else t2[keep]
            axis_radix = [radix[j] for j in cs]
            for pos in numeric:
                csr = self.csr[cs[pos]]
                assert csr is not None
                reps = csr.count[vals[:, pos]]
                total = int(reps.sum())
                rows = np.repeat(np.arange(vals.shape[0]), reps)
                start = np.repeat(csr.ptr[vals[:, pos]], reps)
                within = np.arange(total) - np.repeat(np.cumsum(reps) - reps, reps)
                vals = vals[rows]
                vals[:, pos] = csr.idx[start + within]
                vals, support, t1, t2 = _aggregate(
                    _key(vals, axis_radix),
                    support[rows],
                    t1[rows],
                    None if t2 is None else t2[rows],
                    vals,
                )
        ok = support >= self.sigma
        return Level(
            cs, vals[ok], support[ok], t1[ok].astype(np.float64), None if t2 is None else t2[ok]
        )

    def _dense(self, cs: tuple[int, ...], code: IntArray) -> Level:
        """Counts of a column set with numeric columns, as dense tensors: one bincount over
        the cells, then each numeric axis multiplied by its cell-to-predicate matrix."""
        radix = self.radix
        space = math.prod(radix[j] for j in cs)
        shape = tuple(radix[j] for j in cs)
        tensors = [np.bincount(code, minlength=space).astype(np.float64)]
        if self.err_rows is not None:
            tensors.append(np.bincount(code[self.err_rows], minlength=space).astype(np.float64))
        else:
            tensors.append(_fbin(code, weights=self.b1, minlength=space))
            tensors.append(_fbin(code, weights=self.b2, minlength=space))
        del code
        cat = [pos for pos, j in enumerate(cs) if not self.enc.columns[j].numeric]
        num = [pos for pos in range(len(cs)) if pos not in cat]
        # categorical axes first, without their "in no predicate" code, flattened to one axis;
        # only the categorical cells with >= sigma rows can hold a slice that large
        cat_shape = tuple(self.enc.columns[cs[p]].cells for p in cat)
        num_shape = tuple(radix[cs[p]] for p in num)
        out = []
        for t in tensors:
            t = np.transpose(t.reshape(shape), cat + num)
            for i in range(len(cat)):
                t = np.take(t, np.arange(cat_shape[i]), axis=i)
            out.append(t.reshape((math.prod(cat_shape), *num_shape)))
        margin = out[0].reshape(out[0].shape[0], -1).sum(axis=1)
        rows = np.flatnonzero(margin >= self.sigma)
        out = [t[rows] for t in out]
        for i, p in enumerate(num):
            matrix = self._matrix(cs[p])
            out = [
                np.moveaxis(np.tensordot(t, matrix, axes=([i + 1], [0])), -1, i + 1) for t in out
            ]
        support = out[0]
        flat = np.flatnonzero(support >= self.sigma)
        idx = np.unravel_index(flat, support.shape)
        vals = np.empty((flat.size, len(cs)), dtype=np.int64)
        if cat:
            for p, v in zip(cat, np.unravel_index(rows[idx[0]], cat_shape), strict=True):
                vals[:, p] = v
        for i, p in enumerate(num):
            vals[:, p] = idx[i + 1]
        return Level(
            cs,
            vals,
            np.rint(support.ravel()[flat]).astype(np.int64),
            out[1].ravel()[flat],
            out[2].ravel()[flat] if len(out) > 2 else None,
        )

    def _matrix(self, j: int) -> FloatArray:
        col = self.enc.columns[j]
        m = np.zeros((col.cells + 1, len(col.members)), dtype=np.float64)
        for p, cells in enumerate(col.members):
            m[cells, p] = 1.0
        return m

    def bound(self, cs: tuple[int, ...], counted: dict[tuple[int, ...], Level]) -> int:
        """An upper bound on the number of slices of ``cs`` with >= sigma rows."""
        n, sigma = self.enc.rows, self.sigma
        mult = [self.enc.columns[j].multiplicity for j in cs]
        best = min(math.prod(self.npred[j] for j in cs), n * math.prod(mult) // sigma)
        for pos, j in enumerate(cs):
            sub = cs[:pos] + cs[pos + 1 :]
            lv = counted.get(sub)
            if lv is None:
                continue
            per = np.minimum(self.npred[j], lv.support * mult[pos] // sigma)
            best = min(best, int(per.sum()))
        return int(best)


def search(
    enc: Encoded,
    *,
    sigma: int,
    max_predicates: int,
    alpha: float,
    rate: float,
    prune: bool = True,
) -> Search:
    """Count the lattice; ``rate`` is the overall error rate (classification) or mean loss."""
    counter = Counter(enc, sigma, rate)
    binary = enc.errors is not None
    ncols = len(enc.columns)
    counted: dict[tuple[int, ...], Level] = {}
    extendable: dict[tuple[int, ...], bool] = {}
    exact = bounded = skipped = sets = 0
    for level in range(1, max_predicates + 1):
        found: list[Level] = []
        for cs in itertools.combinations(range(ncols), level):
            sets += 1
            if (
                level == 1
                or not prune
                or all(extendable.get(cs[:p] + cs[p + 1 :], False) for p in range(level))
            ):
                lv = counter.count(cs)
                counted[cs] = lv
                found.append(lv)
                exact += int(lv.support.size)
            else:
                skipped += 1
                bounded += counter.bound(cs, counted)
        if level == max_predicates:
            break
        family_so_far = max(1, exact + bounded)
        need = min_errors_to_prove(sigma, rate, alpha / family_so_far) if binary else 0
        for lv in found:
            extendable[lv.cols] = bool(np.any(lv.t1 >= need)) if binary else lv.support.size > 0
    return Search(
        levels=[lv for lv in counted.values() if lv.support.size],
        family=exact + bounded,
        evaluated=exact,
        skipped_sets=skipped,
        column_sets=sets,
    )
