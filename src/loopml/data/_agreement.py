"""Annotator agreement and human-level performance (HLP), from annotation counts.

Annotations arrive in long format (item id, annotator, label); any annotator may label any
subset of the items. :class:`AnnotationMatrix` turns them into an items x annotators matrix
of class indices (``-1`` = not labelled). Everything else is computed in numpy from that
matrix or from the small item x class count table it reduces to (``AnnotationMatrix.counts``):

- :func:`cohen_kappa_pairs`: Cohen's kappa for every pair of annotators, on the items both
  labelled.
- :func:`fleiss_kappa`: Fleiss' (1971) kappa. The classic statistic needs the same number of
  ratings on every item, so it is computed on the items that carry the *modal* number of
  ratings (among items with two or more; a tie between counts goes to the larger count); the
  result says how many items that used. Use Krippendorff's alpha when the counts vary a lot.
- :func:`krippendorff_alpha_nominal`: Krippendorff's alpha for nominal data by the
  coincidence-matrix method, which uses every item with two or more ratings.
- :func:`per_item_agreement`, :func:`most_disputed`: the share of agreeing annotator pairs per
  item, the majority label and its share; the least agreed items first.
- :func:`per_class_agreement`: the proportion of specific (positive) agreement per class.
- :func:`hlp_confusions`: for each annotator, a K x K confusion matrix (rows = reference,
  columns = annotator) against the leave-one-out majority of the other annotators, or against
  gold labels; the pooled matrix (sum over annotators) is what becomes human-level performance.
- :func:`agreement`: all of the above in one :class:`AgreementReport`.

Agreement is undefined with a single annotator or when no item carries two annotations: those
cases raise :class:`loopml.errors.ComputationError`.
"""

from __future__ import annotations

import html
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from loopml.errors import ComputationError, InputError, SchemaError
from loopml.tableview import HtmlRepr

__all__ = [
    "AgreementReport",
    "AlphaResult",
    "AnnotationMatrix",
    "DisputedItem",
    "FleissResult",
    "HLPConfusions",
    "KappaPair",
    "PerClassAgreement",
    "PerItemAgreement",
    "agreement",
    "cohen_kappa_pairs",
    "fleiss_kappa",
    "fleiss_kappa_from_counts",
    "hlp_confusions",
    "krippendorff_alpha_nominal",
    "krippendorff_alpha_nominal_from_counts",
    "most_disputed",
    "per_class_agreement",
    "per_item_agreement",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
TieRule = Literal["skip", "lowest"]

_MAX_EXAMPLES = 5


# --------------------------------------------------------------------------------------------
# helpers


def _py(value: Any) -> Any:
    """A JSON-friendly Python value: numpy scalars unwrapped, NaN -> None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _floats(values: FloatArray) -> list[Any]:
    return [_py(float(v)) for v in values]


def _factorize(values: npt.NDArray[Any], what: str, *, sort: bool) -> tuple[IntArray, list[Any]]:
    try:
        codes, uniques = pd.factorize(values, sort=sort)
    except TypeError as exc:
        kinds = sorted({type(v).__name__ for v in values.tolist()})
        raise InputError(
            f"the {what} values mix types that cannot be ordered ({', '.join(kinds)})",
            hint=f"give every {what} as the same type (for example all strings)",
            where=what,
        ) from exc
    return np.asarray(codes, dtype=np.int64), list(np.asarray(uniques, dtype=object).tolist())


def _as_object_array(values: Any, what: str) -> npt.NDArray[Any]:
    arr = np.asarray(values, dtype=object)
    if arr.ndim != 1:
        raise InputError(
            f"the {what} values have shape {arr.shape}; expected a one-dimensional sequence",
            hint=f"pass one {what} per annotation (long format: one row per item and annotator)",
            where=what,
        )
    return arr


def _require_pairs(m: AnnotationMatrix, what: str) -> None:
    """Raise ComputationError unless two annotators labelled at least one common item."""
    active = np.flatnonzero((m.codes >= 0).any(axis=0))
    if active.size < 2:
        names = ", ".join(repr(m.annotators[a]) for a in active) or "none"
        raise ComputationError(
            f"{what} is undefined with one annotator: the annotations come from "
            f"{active.size} annotator(s) ({names}); agreement needs at least two",
            hint="have a second annotator label some of the same items (a double-labelled "
            "sample of a few hundred items is usually enough)",
        )
    if not (m.ratings_per_item() >= 2).any():
        raise ComputationError(
            f"{what} is undefined: none of the {m.n_items} items was labelled by two or more "
            f"of the {active.size} annotators, so no two labels can be compared",
            hint="have two or more annotators label the same items (overlap a sample of items "
            "across annotators)",
        )


def _check_counts(counts: Any, what: str) -> IntArray:
    arr = np.asarray(counts)
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise InputError(
            f"{what} got a count table of shape {arr.shape}; expected items x classes (2-D)",
            hint="pass one row per item and one column per class, each cell the number of "
            "annotators who gave that class",
        )
    if arr.size and (not np.issubdtype(arr.dtype, np.number) or (arr < 0).any()):
        raise InputError(
            f"{what} got a count table with negative or non-numeric cells",
            hint="every cell must be a count (a non-negative integer)",
        )
    as_int = arr.astype(np.int64)
    if arr.size and not np.array_equal(as_int, arr):
        raise InputError(
            f"{what} got a count table with non-integer cells",
            hint="every cell must be a count (a non-negative integer)",
        )
    return as_int


# --------------------------------------------------------------------------------------------
# the annotation matrix


@dataclass(frozen=True, eq=False)
class AnnotationMatrix:
    """Items x annotators matrix of class indices, ``-1`` where an annotator gave no label.

    ``classes`` are sorted (so class index ``k`` means ``classes[k]``); ``annotators`` are
    sorted; ``items`` keep the order of their first appearance. Build it with
    :meth:`from_long` or :meth:`from_frame`; the constructor validates a matrix given directly.
    """

    codes: IntArray
    items: tuple[Hashable, ...]
    annotators: tuple[Hashable, ...]
    classes: tuple[Hashable, ...]

    def __post_init__(self) -> None:
        codes = np.array(self.codes, dtype=np.int64, copy=True)
        if codes.ndim != 2:
            raise InputError(
                f"the annotation codes have shape {codes.shape}; expected items x annotators",
                hint="build the matrix with AnnotationMatrix.from_long(item_ids, annotators, "
                "labels)",
            )
        n_items, n_annotators = codes.shape
        for name, values, size in (
            ("items", self.items, n_items),
            ("annotators", self.annotators, n_annotators),
        ):
            if len(values) != size:
                raise InputError(
                    f"{len(values)} {name} given for a matrix with {size} {name}",
                    hint=f"give one name per {name[:-1]}",
                    where=name,
                )
        for name, values in (
            ("items", self.items),
            ("annotators", self.annotators),
            ("classes", self.classes),
        ):
            if len(set(values)) != len(values):
                raise InputError(
                    f"the {name} contain duplicates",
                    hint=f"give each of the {name} once",
                    where=name,
                )
        n_classes = len(self.classes)
        bad = (codes < -1) | (codes >= n_classes)
        if bad.any():
            i, a = (int(x) for x in np.argwhere(bad)[0])
            raise InputError(
                f"class index {int(codes[i, a])} at item {self.items[i]!r}, annotator "
                f"{self.annotators[a]!r}; expected -1 (missing) or 0..{n_classes - 1}",
                hint="codes index into `classes`; use -1 for a missing annotation",
            )
        codes.setflags(write=False)
        object.__setattr__(self, "codes", codes)
        object.__setattr__(self, "items", tuple(self.items))
        object.__setattr__(self, "annotators", tuple(self.annotators))
        object.__setattr__(self, "classes", tuple(self.classes))

    # constructors -----------------------------------------------------------------------

    @classmethod
    def from_long(
        cls,
        item_ids: Any,
        annotators: Any,
        labels: Any,
        *,
        classes: Sequence[Hashable] | None = None,
    ) -> AnnotationMatrix:
        """Build the matrix from three equally long sequences (one entry per annotation).

        Rows whose label is null (None/NaN) are treated as missing annotations and dropped.
        ``classes`` fixes the class list (sorted as given); without it the classes are the
        sorted distinct labels. A duplicated (item, annotator) pair raises InputError.
        """
        item_arr = _as_object_array(item_ids, "item_id")
        ann_arr = _as_object_array(annotators, "annotator")
        lab_arr = _as_object_array(labels, "label")
        lengths = {len(item_arr), len(ann_arr), len(lab_arr)}
        if len(lengths) != 1:
            raise InputError(
                f"item_ids, annotators and labels have lengths {len(item_arr)}, "
                f"{len(ann_arr)} and {len(lab_arr)}; expected the same length",
                hint="pass one entry per annotation in each of the three sequences",
            )
        for name, arr in (("item_id", item_arr), ("annotator", ann_arr)):
            null = pd.isna(arr)
            if null.any():
                rows = np.flatnonzero(null)[:_MAX_EXAMPLES].tolist()
                raise InputError(
                    f"{int(null.sum())} annotation(s) have no {name} (rows {rows})",
                    hint=f"fill in the {name} or drop those rows",
                    where=name,
                )
        keep = ~np.asarray(pd.isna(lab_arr), dtype=bool)
        row_numbers = np.flatnonzero(keep)
        item_arr, ann_arr, lab_arr = item_arr[keep], ann_arr[keep], lab_arr[keep]
        if item_arr.size == 0:
            raise InputError(
                "no annotations were given (or every label is null)",
                hint="pass at least one (item, annotator, label) row",
            )
        item_idx, item_names = _factorize(item_arr, "item_id", sort=False)
        ann_idx, ann_names = _factorize(ann_arr, "annotator", sort=True)
        if classes is None:
            lab_idx, class_names = _factorize(lab_arr, "label", sort=True)
        else:
            class_names = list(classes)
            lookup = {c: k for k, c in enumerate(class_names)}
            if len(lookup) != len(class_names):
                raise InputError(
                    f"the classes {class_names!r} contain duplicates",
                    hint="give each class once",
                    where="classes",
                )
            lab_idx = np.fromiter(
                (lookup.get(v, -1) for v in lab_arr.tolist()), dtype=np.int64, count=lab_arr.size
            )
            unknown = np.flatnonzero(lab_idx < 0)
            if unknown.size:
                seen = sorted({str(v) for v in lab_arr[unknown].tolist()})[:_MAX_EXAMPLES]
                raise InputError(
                    f"{unknown.size} label(s) are not among the classes {class_names!r}: "
                    f"{', '.join(seen)} (first at row {int(row_numbers[unknown[0]])})",
                    hint="add those labels to `classes` or fix the labels",
                    where="label",
                )
        n_ann = len(ann_names)
        pair = item_idx * n_ann + ann_idx
        uniq, counts = np.unique(pair, return_counts=True)
        if (counts > 1).any():
            dup = uniq[counts > 1]
            examples = ", ".join(
                f"({item_names[int(p) // n_ann]!r}, {ann_names[int(p) % n_ann]!r})"
                for p in dup[:_MAX_EXAMPLES]
            )
            n_rows = int(counts[counts > 1].sum())
            raise InputError(
                f"{dup.size} (item, annotator) pair(s) are labelled more than once "
                f"({n_rows} rows), for example {examples}",
                hint="keep one label per item and annotator (for example the latest) before "
                "computing agreement",
                where="item_id, annotator",
            )
        codes = np.full((len(item_names), n_ann), -1, dtype=np.int64)
        codes[item_idx, ann_idx] = lab_idx
        return cls(
            codes=codes,
            items=tuple(item_names),
            annotators=tuple(ann_names),
            classes=tuple(class_names),
        )

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        item: str = "item_id",
        annotator: str = "annotator",
        label: str = "label",
        classes: Sequence[Hashable] | None = None,
    ) -> AnnotationMatrix:
        """Build the matrix from a long-format DataFrame with the given column names."""
        missing = [c for c in (item, annotator, label) if c not in frame.columns]
        if missing:
            raise SchemaError(
                f"the annotation table has no column(s) {missing}; its columns are "
                f"{[str(c) for c in frame.columns]}",
                hint="name the columns with item=, annotator= and label=",
                where=", ".join(missing),
            )
        return cls.from_long(
            frame[item].to_numpy(dtype=object),
            frame[annotator].to_numpy(dtype=object),
            frame[label].to_numpy(dtype=object),
            classes=classes,
        )

    # views ------------------------------------------------------------------------------

    @property
    def n_items(self) -> int:
        return int(self.codes.shape[0])

    @property
    def n_annotators(self) -> int:
        return int(self.codes.shape[1])

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def n_annotations(self) -> int:
        return int((self.codes >= 0).sum())

    def ratings_per_item(self) -> IntArray:
        """Number of annotations on each item."""
        return np.asarray((self.codes >= 0).sum(axis=1), dtype=np.int64)

    def counts(self) -> IntArray:
        """Items x classes table: how many annotators gave each class to each item."""
        rows, cols = np.nonzero(self.codes >= 0)
        flat = rows * self.n_classes + self.codes[rows, cols]
        table = np.bincount(flat, minlength=self.n_items * self.n_classes)
        return np.asarray(table, dtype=np.int64).reshape(self.n_items, self.n_classes)

    def to_frame(self) -> pd.DataFrame:
        """The annotations back in long format (columns item_id, annotator, label)."""
        rows, cols = np.nonzero(self.codes >= 0)
        items = np.asarray(self.items, dtype=object)
        annotators = np.asarray(self.annotators, dtype=object)
        classes = np.asarray(self.classes, dtype=object)
        return pd.DataFrame(
            {
                "item_id": items[rows],
                "annotator": annotators[cols],
                "label": classes[self.codes[rows, cols]],
            }
        )


# --------------------------------------------------------------------------------------------
# Cohen's kappa per pair


class KappaPair(NamedTuple):
    """Cohen's kappa between two annotators on the items both labelled."""

    annotator_a: Hashable
    annotator_b: Hashable
    n_items: int
    kappa: float
    reason: str | None = None  # why kappa is NaN, when it is

    def to_dict(self) -> dict[str, Any]:
        return {
            "annotator_a": _py(self.annotator_a),
            "annotator_b": _py(self.annotator_b),
            "n_items": self.n_items,
            "kappa": _py(self.kappa),
            "reason": self.reason,
        }


def _cohen_from_confusion(confusion: IntArray) -> tuple[float, str | None]:
    n = int(confusion.sum())
    if n < 2:
        return math.nan, f"only {n} item(s) labelled by both; kappa needs at least 2"
    observed = float(np.trace(confusion)) / n
    expected = float(confusion.sum(axis=1) @ confusion.sum(axis=0)) / (n * n)
    if expected >= 1.0:
        return math.nan, (
            "both annotators gave one and the same class to every shared item; "
            "chance agreement is 1 and kappa is undefined"
        )
    return (observed - expected) / (1.0 - expected), None


def cohen_kappa_pairs(m: AnnotationMatrix) -> list[KappaPair]:
    """Cohen's kappa for every pair of annotators (in annotator order), on shared items.

    Kappa is NaN, with a ``reason``, when the pair shares fewer than 2 items or when both
    gave a single identical class to all shared items (chance agreement 1).
    """
    _require_pairs(m, "Cohen's kappa")
    k = m.n_classes
    out: list[KappaPair] = []
    for a in range(m.n_annotators):
        col_a = m.codes[:, a]
        for b in range(a + 1, m.n_annotators):
            col_b = m.codes[:, b]
            both = (col_a >= 0) & (col_b >= 0)
            flat = col_a[both] * k + col_b[both]
            confusion = np.bincount(flat, minlength=k * k).astype(np.int64).reshape(k, k)
            kappa, reason = _cohen_from_confusion(confusion)
            out.append(KappaPair(m.annotators[a], m.annotators[b], int(both.sum()), kappa, reason))
    return out


# --------------------------------------------------------------------------------------------
# Fleiss' kappa


@dataclass(frozen=True)
class FleissResult(HtmlRepr):
    """Fleiss' kappa on the items that carry ``n_raters`` ratings each."""

    kappa: float
    n_raters: int
    n_items_used: int
    n_items_not_used: int
    observed_agreement: float  # mean per-item agreement (P-bar)
    chance_agreement: float  # sum of squared class shares (P-bar_e)
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kappa": _py(self.kappa),
            "n_raters": self.n_raters,
            "n_items_used": self.n_items_used,
            "n_items_not_used": self.n_items_not_used,
            "observed_agreement": _py(self.observed_agreement),
            "chance_agreement": _py(self.chance_agreement),
            "reason": self.reason,
        }


def fleiss_kappa_from_counts(counts: Any) -> FleissResult:
    """Fleiss' (1971) kappa from an items x classes count table with equal row sums >= 2."""
    table = _check_counts(counts, "Fleiss' kappa")
    if table.shape[0] == 0:
        raise InputError(
            "Fleiss' kappa got a count table with no items",
            hint="pass at least one item rated by two or more annotators",
        )
    sums = table.sum(axis=1)
    n = int(sums[0])
    if (sums != n).any() or n < 2:
        raise InputError(
            f"Fleiss' kappa needs the same number (>= 2) of ratings on every item; the rows "
            f"sum to {sorted(set(sums.tolist()))[:_MAX_EXAMPLES]}",
            hint="use fleiss_kappa(matrix), which keeps the items with the modal number of "
            "ratings, or krippendorff_alpha_nominal for varying numbers of ratings",
        )
    n_items = table.shape[0]
    tf = table.astype(np.float64)
    p_items = ((tf * (tf - 1.0)).sum(axis=1)) / (n * (n - 1))
    p_bar = float(p_items.mean())
    shares = tf.sum(axis=0) / (n_items * n)
    p_e = float((shares**2).sum())
    if p_e >= 1.0 - 1e-15:
        return FleissResult(
            math.nan,
            n,
            n_items,
            0,
            p_bar,
            p_e,
            "every rating is the same class; chance agreement is 1 and kappa is undefined",
        )
    return FleissResult((p_bar - p_e) / (1.0 - p_e), n, n_items, 0, p_bar, p_e)


def fleiss_kappa(m: AnnotationMatrix) -> FleissResult:
    """Fleiss' kappa on the items with the modal number of ratings.

    Fleiss' statistic assumes every item has the same number of ratings. Among the items with
    two or more ratings, the most common number of ratings is chosen (a tie goes to the larger
    number) and only the items with exactly that many ratings are used; ``n_items_used`` and
    ``n_items_not_used`` say how many. The raters need not be the same people on each item.
    """
    _require_pairs(m, "Fleiss' kappa")
    ratings = m.ratings_per_item()
    multi = ratings[ratings >= 2]
    values, freq = np.unique(multi, return_counts=True)
    modal = int(values[freq == freq.max()].max())
    used = ratings == modal
    result = fleiss_kappa_from_counts(m.counts()[used])
    return FleissResult(
        result.kappa,
        result.n_raters,
        result.n_items_used,
        m.n_items - result.n_items_used,
        result.observed_agreement,
        result.chance_agreement,
        result.reason,
    )


# --------------------------------------------------------------------------------------------
# Krippendorff's alpha (nominal)


@dataclass(frozen=True)
class AlphaResult(HtmlRepr):
    """Krippendorff's alpha for nominal data, with its coincidence matrix."""

    alpha: float
    n_units_pairable: int  # items with two or more ratings
    n_values_pairable: int  # ratings on those items (n in Krippendorff's notation)
    coincidences: FloatArray  # classes x classes coincidence matrix o_ck
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "alpha": _py(self.alpha),
            "n_units_pairable": self.n_units_pairable,
            "n_values_pairable": self.n_values_pairable,
            "coincidences": [_floats(row) for row in self.coincidences],
            "reason": self.reason,
        }


def krippendorff_alpha_nominal_from_counts(counts: Any) -> AlphaResult:
    """Nominal Krippendorff's alpha from an items x classes count table (any row sums).

    Coincidence-matrix method (Krippendorff 2011): each unit with m_u >= 2 values adds
    ``(n_uc n_uk - [c == k] n_uc) / (m_u - 1)`` to o_ck; with n_c the margins and n their
    total, alpha = 1 - (n - 1) (n - sum_c o_cc) / (n^2 - sum_c n_c^2). Units with fewer than
    two values are not pairable and are ignored.
    """
    table = _check_counts(counts, "Krippendorff's alpha")
    m_u = table.sum(axis=1)
    pairable = table[m_u >= 2].astype(np.float64)
    weights = 1.0 / (pairable.sum(axis=1) - 1.0)
    coincid = np.einsum("u,uc,uk->ck", weights, pairable, pairable)
    coincid -= np.diag((pairable * weights[:, None]).sum(axis=0))
    n_units = int(pairable.shape[0])
    n = float(pairable.sum())
    margins = coincid.sum(axis=1)
    if n_units == 0:
        return AlphaResult(math.nan, 0, 0, coincid, "no item has two or more ratings")
    denominator = n * n - float((margins**2).sum())
    if denominator <= 0.0:
        return AlphaResult(
            math.nan,
            n_units,
            int(n),
            coincid,
            "every pairable rating is the same class; expected disagreement is 0 and alpha "
            "is undefined",
        )
    disagreement = n - float(np.trace(coincid))
    alpha = 1.0 - (n - 1.0) * disagreement / denominator
    return AlphaResult(alpha, n_units, int(n), coincid)


def krippendorff_alpha_nominal(m: AnnotationMatrix) -> AlphaResult:
    """Krippendorff's alpha (nominal) over all items; missing annotations are allowed."""
    _require_pairs(m, "Krippendorff's alpha")
    return krippendorff_alpha_nominal_from_counts(m.counts())


# --------------------------------------------------------------------------------------------
# per item, per class


@dataclass(frozen=True)
class PerItemAgreement:
    """Agreement on each item, aligned with ``items``.

    ``agreement`` is the share of annotator pairs on the item that gave the same label (NaN
    with fewer than two ratings). ``majority`` is the most frequent label (a tie goes to the
    first class in sorted order; ``majority_tied`` marks those items; None without ratings)
    and ``majority_share`` its share of the item's ratings.
    """

    items: tuple[Hashable, ...]
    n_ratings: IntArray
    agreement: FloatArray
    majority_index: IntArray  # -1 without ratings
    majority: tuple[Hashable | None, ...]
    majority_share: FloatArray
    majority_tied: npt.NDArray[np.bool_]

    def to_dict(self) -> dict[str, Any]:
        return {
            "items": [_py(v) for v in self.items],
            "n_ratings": self.n_ratings.tolist(),
            "agreement": _floats(self.agreement),
            "majority": [_py(v) for v in self.majority],
            "majority_share": _floats(self.majority_share),
            "majority_tied": self.majority_tied.tolist(),
        }


def _per_item_from_counts(
    counts: IntArray,
) -> tuple[IntArray, FloatArray, IntArray, FloatArray, npt.NDArray[np.bool_]]:
    n_ratings = counts.sum(axis=1).astype(np.int64)
    cf = counts.astype(np.float64)
    nf = n_ratings.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        agree = (cf * (cf - 1.0)).sum(axis=1) / (nf * (nf - 1.0))
        share = counts.max(axis=1, initial=0) / nf
    agree = np.where(n_ratings >= 2, agree, np.nan)
    share = np.where(n_ratings >= 1, share, np.nan)
    top = counts.max(axis=1, initial=0)
    tied = ((counts == top[:, None]).sum(axis=1) > 1) & (n_ratings > 0)
    majority = np.where(n_ratings > 0, counts.argmax(axis=1), -1).astype(np.int64)
    return n_ratings, agree, majority, share, tied


def per_item_agreement(m: AnnotationMatrix) -> PerItemAgreement:
    """Share of agreeing annotator pairs, majority label and its share, for every item."""
    _require_pairs(m, "per-item agreement")
    n_ratings, agree, majority, share, tied = _per_item_from_counts(m.counts())
    labels = tuple(m.classes[k] if k >= 0 else None for k in majority.tolist())
    return PerItemAgreement(m.items, n_ratings, agree, majority, labels, share, tied)


class DisputedItem(NamedTuple):
    """One item of :func:`most_disputed`."""

    item: Hashable
    agreement: float
    majority: Hashable | None
    majority_share: float
    n_ratings: int
    label_counts: dict[Hashable, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "item": _py(self.item),
            "agreement": _py(self.agreement),
            "majority": _py(self.majority),
            "majority_share": _py(self.majority_share),
            "n_ratings": self.n_ratings,
            "label_counts": {str(_py(k)): v for k, v in self.label_counts.items()},
        }


def most_disputed(m: AnnotationMatrix, k: int = 10) -> list[DisputedItem]:
    """The ``k`` items with two or more ratings and the lowest pairwise agreement.

    Sorted by agreement ascending, then by number of ratings descending, then by item order.
    """
    if k < 0:
        raise InputError(f"k={k}; expected a non-negative number of items", hint="pass k >= 0")
    _require_pairs(m, "per-item agreement")
    counts = m.counts()
    n_ratings, agree, majority, share, _ = _per_item_from_counts(counts)
    candidates = np.flatnonzero(n_ratings >= 2)
    order = np.lexsort(
        (candidates, -n_ratings[candidates], agree[candidates]),
    )
    out: list[DisputedItem] = []
    for i in candidates[order][:k].tolist():
        label_counts = {m.classes[c]: int(counts[i, c]) for c in np.flatnonzero(counts[i]).tolist()}
        out.append(
            DisputedItem(
                m.items[i],
                float(agree[i]),
                m.classes[int(majority[i])],
                float(share[i]),
                int(n_ratings[i]),
                label_counts,
            )
        )
    return out


@dataclass(frozen=True)
class PerClassAgreement:
    """Proportion of specific agreement for each class.

    For class c, over the items with two or more ratings: the number of agreeing ordered
    pairs on c divided by the number of ordered pairs that involve c at least once,
    ``sum_i n_ic (n_ic - 1) / sum_i n_ic (m_i - 1)``. With two annotators this is the
    positive agreement 2a / (2a + b + c) of Cicchetti and Feinstein (1990). NaN for a class
    never given on such items.
    """

    classes: tuple[Hashable, ...]
    specific_agreement: FloatArray
    n_ratings: IntArray  # ratings of the class on items with two or more ratings

    def to_dict(self) -> dict[str, Any]:
        return {
            "classes": [_py(c) for c in self.classes],
            "specific_agreement": _floats(self.specific_agreement),
            "n_ratings": self.n_ratings.tolist(),
        }


def per_class_agreement(m: AnnotationMatrix) -> PerClassAgreement:
    """Specific (positive) agreement for each class; see :class:`PerClassAgreement`."""
    _require_pairs(m, "per-class agreement")
    counts = m.counts()
    m_i = counts.sum(axis=1)
    multi = counts[m_i >= 2].astype(np.float64)
    mf = m_i[m_i >= 2].astype(np.float64)
    agree = (multi * (multi - 1.0)).sum(axis=0)
    involved = (multi * (mf[:, None] - 1.0)).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        specific = np.where(involved > 0, agree / involved, np.nan)
    return PerClassAgreement(m.classes, specific, multi.sum(axis=0).astype(np.int64))


# --------------------------------------------------------------------------------------------
# human-level performance: confusion counts


@dataclass(frozen=True)
class HLPConfusions:
    """Confusion counts of each annotator against a reference (rows = reference, cols = label).

    ``reference`` is ``"leave_one_out_majority"`` (the majority label of the other annotators on
    the item) or ``"gold"``. ``pooled`` is the sum over annotators: the counts behind HLP.
    ``n_no_reference`` counts, per annotator, the annotations skipped because the item had no
    other annotation (or no gold label); ``n_tied`` those whose reference was a tie (skipped
    with ``ties="skip"``, resolved to the first class in sorted order with ``ties="lowest"``).
    """

    annotators: tuple[Hashable, ...]
    classes: tuple[Hashable, ...]
    per_annotator: IntArray  # annotators x classes x classes
    pooled: IntArray  # classes x classes
    n_no_reference: IntArray
    n_tied: IntArray
    reference: Literal["leave_one_out_majority", "gold"]
    ties: TieRule

    def to_dict(self) -> dict[str, Any]:
        return {
            "annotators": [_py(a) for a in self.annotators],
            "classes": [_py(c) for c in self.classes],
            "per_annotator": self.per_annotator.tolist(),
            "pooled": self.pooled.tolist(),
            "n_no_reference": self.n_no_reference.tolist(),
            "n_tied": self.n_tied.tolist(),
            "reference": self.reference,
            "ties": self.ties,
        }


def _gold_codes(m: AnnotationMatrix, gold: Any) -> IntArray:
    arr = _as_object_array(gold, "gold")
    if arr.size != m.n_items:
        raise InputError(
            f"{arr.size} gold labels given for {m.n_items} items; expected one per item",
            hint="align the gold labels with AnnotationMatrix.items (None where unknown)",
            where="gold",
        )
    lookup = {c: k for k, c in enumerate(m.classes)}
    null = np.asarray(pd.isna(arr), dtype=bool)
    codes = np.full(m.n_items, -1, dtype=np.int64)
    for i in np.flatnonzero(~null).tolist():
        k = lookup.get(arr[i])
        if k is None:
            raise InputError(
                f"gold label {arr[i]!r} for item {m.items[i]!r} (row {i}) is not among the "
                f"classes {list(m.classes)!r}",
                hint="fix the gold label, or build the matrix with classes= including it",
                where="gold",
            )
        codes[i] = k
    return codes


def hlp_confusions(
    m: AnnotationMatrix, *, gold: Any | None = None, ties: TieRule = "skip"
) -> HLPConfusions:
    """Per-annotator and pooled confusion counts for human-level performance.

    Without ``gold``, each annotation is compared with the majority label of the OTHER
    annotators on the same item (leave-one-out). Items with no other annotation are skipped.
    When the other annotators tie, ``ties="skip"`` (default) skips the annotation and
    ``ties="lowest"`` takes the tied class that comes first in sorted class order. With
    ``gold`` (one label per item, aligned with ``m.items``, None where unknown), each
    annotation is compared with the item's gold label; items without one are skipped.
    """
    if ties not in ("skip", "lowest"):
        raise InputError(
            f"ties={ties!r}; expected 'skip' or 'lowest'", hint="pass ties='skip' or 'lowest'"
        )
    k, n_ann = m.n_classes, m.n_annotators
    rows, cols = np.nonzero(m.codes >= 0)
    labels = m.codes[rows, cols]
    tied = np.zeros(rows.size, dtype=bool)
    if gold is None:
        _require_pairs(m, "human-level performance without gold labels")
        others = m.counts()[rows]
        others[np.arange(rows.size), labels] -= 1
        top = others.max(axis=1, initial=0)
        no_ref = others.sum(axis=1) == 0
        tied = ~no_ref & ((others == top[:, None]).sum(axis=1) > 1)
        ref = others.argmax(axis=1).astype(np.int64)
        use = ~no_ref & ~tied if ties == "skip" else ~no_ref
        reference: Literal["leave_one_out_majority", "gold"] = "leave_one_out_majority"
    else:
        ref = _gold_codes(m, gold)[rows]
        no_ref = ref < 0
        use = ~no_ref
        reference = "gold"
    flat = (cols[use] * k + ref[use]) * k + labels[use]
    per = np.bincount(flat, minlength=n_ann * k * k).astype(np.int64).reshape(n_ann, k, k)
    return HLPConfusions(
        annotators=m.annotators,
        classes=m.classes,
        per_annotator=per,
        pooled=per.sum(axis=0).astype(np.int64),
        n_no_reference=np.bincount(cols[no_ref], minlength=n_ann).astype(np.int64),
        n_tied=np.bincount(cols[tied], minlength=n_ann).astype(np.int64),
        reference=reference,
        ties=ties,
    )


# --------------------------------------------------------------------------------------------
# the report


@dataclass(frozen=True)
class AgreementReport:
    """Every agreement statistic of an annotation matrix, plus the HLP confusion counts."""

    n_items: int
    n_annotators: int
    n_annotations: int
    n_items_multi: int  # items with two or more ratings
    classes: tuple[Hashable, ...]
    pairs: tuple[KappaPair, ...]
    mean_pairwise_kappa: float  # mean over the pairs whose kappa is defined
    fleiss: FleissResult
    krippendorff: AlphaResult
    per_class: PerClassAgreement
    most_disputed: tuple[DisputedItem, ...]
    hlp: HLPConfusions

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_items": self.n_items,
            "n_annotators": self.n_annotators,
            "n_annotations": self.n_annotations,
            "n_items_multi": self.n_items_multi,
            "classes": [_py(c) for c in self.classes],
            "pairs": [p.to_dict() for p in self.pairs],
            "mean_pairwise_kappa": _py(self.mean_pairwise_kappa),
            "fleiss": self.fleiss.to_dict(),
            "krippendorff": self.krippendorff.to_dict(),
            "per_class": self.per_class.to_dict(),
            "most_disputed": [d.to_dict() for d in self.most_disputed],
            "hlp": self.hlp.to_dict(),
        }

    def _repr_html_(self) -> str:
        def fmt(x: float) -> str:
            return "n/a" if math.isnan(x) else f"{x:.3f}"

        rows = [
            ("items (with 2+ ratings)", f"{self.n_items} ({self.n_items_multi})"),
            ("annotators / annotations", f"{self.n_annotators} / {self.n_annotations}"),
            ("Krippendorff's alpha (nominal)", fmt(self.krippendorff.alpha)),
            (
                f"Fleiss' kappa ({self.fleiss.n_items_used} items x {self.fleiss.n_raters})",
                fmt(self.fleiss.kappa),
            ),
            ("mean pairwise Cohen's kappa", fmt(self.mean_pairwise_kappa)),
        ]
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
            for k, v in rows
        )
        return f"<table><caption>Annotator agreement</caption>{body}</table>"


def agreement(
    m: AnnotationMatrix,
    *,
    gold: Any | None = None,
    k_disputed: int = 10,
    ties: TieRule = "skip",
) -> AgreementReport:
    """Compute every agreement statistic and the HLP confusion counts in one report."""
    _require_pairs(m, "annotator agreement")
    pairs = tuple(cohen_kappa_pairs(m))
    defined = [p.kappa for p in pairs if not math.isnan(p.kappa)]
    return AgreementReport(
        n_items=m.n_items,
        n_annotators=m.n_annotators,
        n_annotations=m.n_annotations,
        n_items_multi=int((m.ratings_per_item() >= 2).sum()),
        classes=m.classes,
        pairs=pairs,
        mean_pairwise_kappa=float(np.mean(defined)) if defined else math.nan,
        fleiss=fleiss_kappa(m),
        krippendorff=krippendorff_alpha_nominal(m),
        per_class=per_class_agreement(m),
        most_disputed=tuple(most_disputed(m, k_disputed)),
        hlp=hlp_confusions(m, gold=gold, ties=ties),
    )
