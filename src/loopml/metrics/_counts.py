"""Count containers: the small tensors the engine reduces a big table to.

Leading dimensions of every array are *slices* (any shape ``S...``, possibly none). The
pure-numpy builders (``*_from_arrays``) are the reference the engine is tested against.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from loopml.errors import InputError

__all__ = [
    "ClassLabel",
    "ConfusionCounts",
    "RegressionCounts",
    "ScoreCounts",
    "confusion_from_arrays",
    "default_edges",
    "regression_counts_from_arrays",
    "score_counts_from_arrays",
]

ClassLabel = str | int | float | bool

DEFAULT_BINS = 1000


def default_edges(bins: int = DEFAULT_BINS) -> npt.NDArray[np.float64]:
    """``bins`` equal bins on [0, 1]: an array of ``bins + 1`` edges."""
    if bins < 1:
        raise InputError(
            f"bins={bins} was given; expected a positive number of bins",
            hint="pass bins=1000 (the default) or another positive integer",
        )
    return np.linspace(0.0, 1.0, bins + 1)


def _plain_classes(classes: Any) -> tuple[ClassLabel, ...]:
    out: list[ClassLabel] = []
    for c in classes:
        out.append(c.item() if isinstance(c, np.generic) else c)
    return tuple(out)


def _as_int(name: str, value: Any) -> npt.NDArray[np.int64]:
    arr = np.asarray(value)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise InputError(
                f"{name} holds non-integer values; expected integer counts",
                hint=f"pass {name} as an int64 array of counts",
                where=name,
            )
    elif arr.dtype.kind not in "iub":
        raise InputError(
            f"{name} has dtype {arr.dtype}; expected integer counts",
            hint=f"pass {name} as an int64 array of counts",
            where=name,
        )
    out = arr.astype(np.int64)
    if np.any(out < 0):
        raise InputError(
            f"{name} holds negative values; expected counts >= 0",
            hint="counts come from the engine; check how the array was built",
            where=name,
        )
    return out


def _as_float(value: Any) -> npt.NDArray[np.float64]:
    return np.asarray(value, dtype=np.float64)


def _encode(arr: npt.NDArray[Any]) -> dict[str, Any]:
    return {"shape": list(arr.shape), "data": arr.ravel().tolist()}


def _decode(obj: Any, dtype: type[np.generic]) -> npt.NDArray[Any]:
    if isinstance(obj, dict):
        return np.asarray(obj["data"], dtype=dtype).reshape(obj["shape"])
    return np.asarray(obj, dtype=dtype)


def _check_key(data: dict[str, Any], key: str, kind: str) -> Any:
    if key not in data:
        raise InputError(
            f"the {kind} dictionary has no key {key!r}; keys given: {sorted(data)}",
            hint=f"pass the dictionary produced by {kind}.to_dict()",
            where=key,
        )
    return data[key]


@dataclass(frozen=True, eq=False)
class ConfusionCounts:
    """Confusion matrices, shape ``S... x K x K``: rows true class, columns predicted class.

    For binary tasks the positive class is the last class (index 1).
    """

    classes: tuple[ClassLabel, ...]
    matrix: npt.NDArray[np.int64]

    def __post_init__(self) -> None:
        classes = _plain_classes(self.classes)
        matrix = _as_int("matrix", self.matrix)
        k = len(classes)
        if matrix.ndim < 2 or matrix.shape[-2:] != (k, k):
            raise InputError(
                f"matrix has shape {matrix.shape}; expected (..., {k}, {k}) for {k} classes",
                hint="the last two axes are (true class, predicted class), one per class",
                where="matrix",
            )
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "matrix", matrix)

    @property
    def slice_shape(self) -> tuple[int, ...]:
        return tuple(self.matrix.shape[:-2])

    @property
    def n(self) -> npt.NDArray[np.int64]:
        """Rows per slice, shape ``S...``."""
        return np.asarray(self.matrix.sum(axis=(-2, -1)), dtype=np.int64)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "confusion", "classes": list(self.classes), "matrix": _encode(self.matrix)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConfusionCounts:
        return cls(
            classes=tuple(_check_key(data, "classes", "ConfusionCounts")),
            matrix=_decode(_check_key(data, "matrix", "ConfusionCounts"), np.int64),
        )


@dataclass(frozen=True, eq=False)
class ScoreCounts:
    """Score histograms per (true class k, score of class j, bin b), with exact loss sums.

    ``hist[..., k, j, b]`` counts rows of true class ``k`` whose probability for class ``j``
    falls in bin ``b`` (``edges[b] <= p < edges[b+1]``; the last bin is closed on the right).
    Binary tasks have ``J = 1``: ``j = 0`` is the score of the positive (last) class.
    """

    classes: tuple[ClassLabel, ...]
    edges: npt.NDArray[np.float64]
    hist: npt.NDArray[np.int64]
    score_sum: npt.NDArray[np.float64]
    logloss_sum: npt.NDArray[np.float64]
    brier_sum: npt.NDArray[np.float64]
    n: npt.NDArray[np.int64]

    def __post_init__(self) -> None:
        classes = _plain_classes(self.classes)
        edges = _as_float(self.edges)
        hist = _as_int("hist", self.hist)
        score_sum = _as_float(self.score_sum)
        logloss_sum = _as_float(self.logloss_sum)
        brier_sum = _as_float(self.brier_sum)
        n = _as_int("n", self.n)
        k = len(classes)
        if k < 2:
            raise InputError(
                f"{k} class(es) given; expected at least 2",
                hint="a score task needs a negative and a positive class at least",
                where="classes",
            )
        if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
            raise InputError(
                f"edges has shape {edges.shape}; expected a strictly increasing 1-d array",
                hint="use default_edges(bins)",
                where="edges",
            )
        j = 1 if k == 2 else k
        b = edges.size - 1
        if hist.ndim < 3 or hist.shape[-3:] != (k, j, b):
            raise InputError(
                f"hist has shape {hist.shape}; expected (..., {k}, {j}, {b})",
                hint="axes are (true class, scored class, bin); binary tasks have one scored "
                "class (the positive one)",
                where="hist",
            )
        s = hist.shape[:-3]
        if score_sum.shape != hist.shape:
            raise InputError(
                f"score_sum has shape {score_sum.shape}; expected {hist.shape} like hist",
                hint="score_sum sums the scores of the rows counted in each hist cell",
                where="score_sum",
            )
        for name, arr in (("logloss_sum", logloss_sum), ("brier_sum", brier_sum), ("n", n)):
            if arr.shape != s:
                raise InputError(
                    f"{name} has shape {arr.shape}; expected the slice shape {s}",
                    hint=f"{name} holds one value per slice",
                    where=name,
                )
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "edges", edges)
        object.__setattr__(self, "hist", hist)
        object.__setattr__(self, "score_sum", score_sum)
        object.__setattr__(self, "logloss_sum", logloss_sum)
        object.__setattr__(self, "brier_sum", brier_sum)
        object.__setattr__(self, "n", n)

    @property
    def slice_shape(self) -> tuple[int, ...]:
        return tuple(self.hist.shape[:-3])

    @property
    def binary(self) -> bool:
        return len(self.classes) == 2

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "scores",
            "classes": list(self.classes),
            "edges": self.edges.tolist(),
            "hist": _encode(self.hist),
            "score_sum": _encode(self.score_sum),
            "logloss_sum": _encode(self.logloss_sum),
            "brier_sum": _encode(self.brier_sum),
            "n": _encode(self.n),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScoreCounts:
        def get(key: str) -> Any:
            return _check_key(data, key, "ScoreCounts")

        return cls(
            classes=tuple(get("classes")),
            edges=np.asarray(get("edges"), dtype=np.float64),
            hist=_decode(get("hist"), np.int64),
            score_sum=_decode(get("score_sum"), np.float64),
            logloss_sum=_decode(get("logloss_sum"), np.float64),
            brier_sum=_decode(get("brier_sum"), np.float64),
            n=_decode(get("n"), np.int64),
        )


_REG_FIELDS = (
    "n",
    "sum_err",
    "sum_abs_err",
    "sum_sq_err",
    "sum_err4",
    "sum_ape",
    "n_ape",
    "sum_y",
    "sum_y2",
)


@dataclass(frozen=True, eq=False)
class RegressionCounts:
    """Moment sums of the error ``err = prediction - y`` per slice (each of shape ``S...``).

    ``ape = |err| / |y|`` over the ``n_ape`` rows with ``y != 0``. ``sum_ape2`` (optional)
    sums ``ape**2``; it is needed only for a MAPE interval.
    """

    n: npt.NDArray[np.int64]
    sum_err: npt.NDArray[np.float64]
    sum_abs_err: npt.NDArray[np.float64]
    sum_sq_err: npt.NDArray[np.float64]
    sum_err4: npt.NDArray[np.float64]
    sum_ape: npt.NDArray[np.float64]
    n_ape: npt.NDArray[np.int64]
    sum_y: npt.NDArray[np.float64]
    sum_y2: npt.NDArray[np.float64]
    sum_ape2: npt.NDArray[np.float64] | None = field(default=None)

    def __post_init__(self) -> None:
        shape = np.shape(self.n)
        for name in (*_REG_FIELDS, "sum_ape2"):
            value = getattr(self, name)
            if value is None:
                continue
            arr = _as_int(name, value) if name in ("n", "n_ape") else _as_float(value)
            if arr.shape != shape:
                raise InputError(
                    f"{name} has shape {arr.shape}; expected the slice shape {shape} of n",
                    hint="every regression sum holds one value per slice",
                    where=name,
                )
            object.__setattr__(self, name, arr)

    @property
    def slice_shape(self) -> tuple[int, ...]:
        return tuple(self.n.shape)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": "regression"}
        for name in (*_REG_FIELDS, "sum_ape2"):
            value = getattr(self, name)
            out[name] = None if value is None else _encode(value)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RegressionCounts:
        kwargs: dict[str, Any] = {}
        for name in _REG_FIELDS:
            dtype = np.int64 if name in ("n", "n_ape") else np.float64
            kwargs[name] = _decode(_check_key(data, name, "RegressionCounts"), dtype)
        ape2 = data.get("sum_ape2")
        kwargs["sum_ape2"] = None if ape2 is None else _decode(ape2, np.float64)
        return cls(**kwargs)


def _slice_index(
    slice_idx: Any, n_slices: int | None, n_rows: int
) -> tuple[npt.NDArray[np.int64], int, tuple[int, ...]]:
    """Return (per-row slice index, number of slices, slice shape)."""
    if slice_idx is None:
        return np.zeros(n_rows, dtype=np.int64), 1, ()
    idx = np.asarray(slice_idx)
    if idx.shape != (n_rows,) or idx.dtype.kind not in "iu":
        raise InputError(
            f"slice_idx has shape {idx.shape} and dtype {idx.dtype}; expected {n_rows} integers",
            hint="pass one integer slice index per row",
            where="slice_idx",
        )
    idx = idx.astype(np.int64)
    if n_slices is None:
        n_slices = int(idx.max()) + 1 if idx.size else 0
    if idx.size and (idx.min() < 0 or idx.max() >= n_slices):
        raise InputError(
            f"slice_idx holds values in [{idx.min()}, {idx.max()}]; expected 0..{n_slices - 1}",
            hint="pass n_slices larger than the largest slice index",
            where="slice_idx",
        )
    return idx, n_slices, (n_slices,)


def _class_index(name: str, value: Any, k: int, n_rows: int | None = None) -> npt.NDArray[np.int64]:
    arr = np.asarray(value)
    if arr.ndim != 1 or arr.dtype.kind not in "iu" or (n_rows is not None and arr.size != n_rows):
        raise InputError(
            f"{name} has shape {arr.shape} and dtype {arr.dtype}; expected a 1-d integer array"
            + (f" of {n_rows} rows" if n_rows is not None else ""),
            hint=f"encode {name} as class indices 0..K-1",
            where=name,
        )
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= k):
        bad = int(np.flatnonzero((arr < 0) | (arr >= k))[0])
        raise InputError(
            f"{name}[{bad}] = {arr[bad]}; expected a class index in 0..{k - 1}",
            hint="check the class encoding or the number of classes K",
            where=f"{name}[{bad}]",
        )
    return arr


def confusion_from_arrays(
    y_true_idx: npt.ArrayLike,
    y_pred_idx: npt.ArrayLike,
    K: int,
    slice_idx: npt.ArrayLike | None = None,
    n_slices: int | None = None,
    *,
    classes: tuple[ClassLabel, ...] | None = None,
) -> ConfusionCounts:
    """Reference builder: confusion matrices (``n_slices x K x K``, or ``K x K``) by bincount."""
    t = _class_index("y_true_idx", y_true_idx, K)
    p = _class_index("y_pred_idx", y_pred_idx, K, t.size)
    s, ns, shape = _slice_index(slice_idx, n_slices, t.size)
    flat = np.bincount((s * K + t) * K + p, minlength=ns * K * K)
    return ConfusionCounts(
        classes=tuple(range(K)) if classes is None else classes,
        matrix=flat.reshape((*shape, K, K)).astype(np.int64),
    )


def score_counts_from_arrays(
    y_true_idx: npt.ArrayLike,
    proba: npt.ArrayLike,
    slice_idx: npt.ArrayLike | None = None,
    n_slices: int | None = None,
    bins: int | npt.ArrayLike = DEFAULT_BINS,
    *,
    classes: tuple[ClassLabel, ...] | None = None,
) -> ScoreCounts:
    """Reference builder of :class:`ScoreCounts`.

    ``proba`` is the positive-class score (shape ``n``, binary), or ``n x K`` probabilities
    (``n x 2`` is binary too: its column 1 is used as the score). ``bins`` is a number of
    equal bins on [0, 1] or an array of edges.
    """
    pr = np.asarray(proba, dtype=np.float64)
    if pr.ndim == 2 and pr.shape[1] == 2:
        pr = pr[:, 1]
    if pr.ndim == 1:
        k = 2
        scores = pr[:, None]
    elif pr.ndim == 2 and pr.shape[1] >= 3:
        k = pr.shape[1]
        scores = pr
    else:
        raise InputError(
            f"proba has shape {pr.shape}; expected (n,) positive scores or (n, K) probabilities",
            hint="pass predict_proba output, or its positive-class column for binary tasks",
            where="proba",
        )
    n_rows = pr.shape[0]
    t = _class_index("y_true_idx", y_true_idx, k, n_rows)
    if not np.all(np.isfinite(pr)) or np.any((pr < 0) | (pr > 1)):
        bad = int(np.flatnonzero(~((pr >= 0) & (pr <= 1)).reshape(n_rows, -1).all(axis=1))[0])
        raise InputError(
            f"proba row {bad} holds {pr[bad]}; expected probabilities in [0, 1]",
            hint="pass probabilities (predict_proba), not raw decision scores",
            where=f"proba[{bad}]",
        )
    edges = default_edges(int(bins)) if isinstance(bins, int | np.integer) else _as_float(bins)
    nb = edges.size - 1
    s, ns, shape = _slice_index(slice_idx, n_slices, n_rows)
    j = scores.shape[1]
    b = np.clip(np.searchsorted(edges, scores, side="right") - 1, 0, nb - 1)
    cell = ((s[:, None] * k + t[:, None]) * j + np.arange(j)[None, :]) * nb + b
    size = ns * k * j * nb
    hist = np.bincount(cell.ravel(), minlength=size).reshape((*shape, k, j, nb))
    ssum = np.bincount(cell.ravel(), weights=scores.ravel(), minlength=size)
    if k == 2:
        p_true = np.where(t == 1, pr, 1.0 - pr)
        brier_row = (pr - (t == 1)) ** 2
    else:
        p_true = pr[np.arange(n_rows), t]
        onehot = np.zeros_like(pr)
        onehot[np.arange(n_rows), t] = 1.0
        brier_row = ((pr - onehot) ** 2).sum(axis=1)
    ll_row = -np.log(np.clip(p_true, 1e-15, 1 - 1e-15))
    return ScoreCounts(
        classes=tuple(range(k)) if classes is None else classes,
        edges=edges,
        hist=hist.astype(np.int64),
        score_sum=ssum.reshape((*shape, k, j, nb)),
        logloss_sum=np.bincount(s, weights=ll_row, minlength=ns).reshape(shape).astype(np.float64),
        brier_sum=np.bincount(s, weights=brier_row, minlength=ns).reshape(shape).astype(np.float64),
        n=np.bincount(s, minlength=ns).reshape(shape).astype(np.int64),
    )


def regression_counts_from_arrays(
    y: npt.ArrayLike,
    pred: npt.ArrayLike,
    slice_idx: npt.ArrayLike | None = None,
    n_slices: int | None = None,
) -> RegressionCounts:
    """Reference builder of :class:`RegressionCounts` (moment sums by bincount)."""
    yv = np.asarray(y, dtype=np.float64)
    pv = np.asarray(pred, dtype=np.float64)
    if yv.ndim != 1 or pv.shape != yv.shape:
        raise InputError(
            f"y has shape {yv.shape} and pred has shape {pv.shape}; expected two equal 1-d arrays",
            hint="pass one target and one prediction per row",
            where="pred",
        )
    s, ns, shape = _slice_index(slice_idx, n_slices, yv.size)
    err = pv - yv
    nz = yv != 0
    ape = np.where(nz, np.abs(err) / np.where(nz, np.abs(yv), 1.0), 0.0)

    def total(w: npt.NDArray[np.float64] | None) -> npt.NDArray[Any]:
        return np.bincount(s, weights=w, minlength=ns).reshape(shape)

    return RegressionCounts(
        n=total(None).astype(np.int64),
        sum_err=total(err),
        sum_abs_err=total(np.abs(err)),
        sum_sq_err=total(err**2),
        sum_err4=total(err**4),
        sum_ape=total(ape),
        n_ape=total(nz.astype(np.float64)).astype(np.int64),
        sum_y=total(yv),
        sum_y2=total(yv**2),
        sum_ape2=total(ape**2),
    )
