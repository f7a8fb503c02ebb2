"""Tests for loopml.data._agreement: annotator agreement and HLP confusion counts.

References checked against:
- Fleiss, J. L. (1971). "Measuring nominal scale agreement among many raters."
  Psychological Bulletin 76(5), 378-382; worked example as reproduced in Wikipedia's
  "Fleiss' kappa" article (10 subjects, 14 raters, 5 categories, kappa = 0.210).
- Krippendorff, K. (2011). "Computing Krippendorff's Alpha-Reliability." Annenberg School for
  Communication, University of Pennsylvania, section C (nominal data, 4 observers, 12 units,
  missing data): coincidence margins 9, 13, 10, 5, 3 (n = 40), alpha = 0.743.
- statsmodels.stats.inter_rater.fleiss_kappa, the `krippendorff` PyPI package and
  sklearn.metrics.cohen_kappa_score / confusion_matrix on random data.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loopml.data._agreement import (
    AnnotationMatrix,
    agreement,
    cohen_kappa_pairs,
    fleiss_kappa,
    fleiss_kappa_from_counts,
    hlp_confusions,
    krippendorff_alpha_nominal,
    most_disputed,
    per_class_agreement,
    per_item_agreement,
)
from loopml.errors import ComputationError, InputError, SchemaError

# Krippendorff (2011), section C: observers x units, None = missing value.
KRIPPENDORFF_2011: dict[str, list[int | None]] = {
    "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
}

# Fleiss (1971) as in Wikipedia "Fleiss' kappa": subjects x categories, 14 raters each.
FLEISS_1971 = np.array(
    [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
)


def _wide_to_long(wide: dict[str, list[Any]]) -> tuple[list[Any], list[str], list[Any]]:
    items: list[Any] = []
    annotators: list[str] = []
    labels: list[Any] = []
    for annotator, values in wide.items():
        for unit, value in enumerate(values, start=1):
            items.append(unit)
            annotators.append(annotator)
            labels.append(value)
    return items, annotators, labels


def _counts_to_matrix(counts: np.ndarray[Any, Any]) -> AnnotationMatrix:
    """Expand an items x categories count table into annotations by raters r0, r1, ..."""
    items: list[int] = []
    annotators: list[str] = []
    labels: list[int] = []
    for i, row in enumerate(counts):
        rater = 0
        for category, n in enumerate(row):
            for _ in range(int(n)):
                items.append(i)
                annotators.append(f"r{rater:02d}")
                labels.append(category)
                rater += 1
    return AnnotationMatrix.from_long(items, annotators, labels)


def _random_matrix(
    rng: np.random.Generator, n_items: int, n_annotators: int, n_classes: int, p_missing: float
) -> AnnotationMatrix:
    truth = rng.integers(0, n_classes, n_items)
    codes = np.where(
        rng.random((n_items, n_annotators)) < 0.6,
        truth[:, None],
        rng.integers(0, n_classes, (n_items, n_annotators)),
    )
    codes = np.where(rng.random(codes.shape) < p_missing, -1, codes)
    return AnnotationMatrix(
        codes=codes,
        items=tuple(range(n_items)),
        annotators=tuple(f"a{j}" for j in range(n_annotators)),
        classes=tuple(f"c{k}" for k in range(n_classes)),
    )


# --------------------------------------------------------------------------------------------
# building the matrix


def test_from_long_builds_sorted_classes_and_missing_cells() -> None:
    m = AnnotationMatrix.from_long(
        ["x", "x", "y", "z", "z"],
        ["bob", "amy", "amy", "bob", "cat"],
        ["dog", "cat", "cat", "ant", "dog"],
    )
    assert m.classes == ("ant", "cat", "dog")
    assert m.annotators == ("amy", "bob", "cat")
    assert m.items == ("x", "y", "z")
    np.testing.assert_array_equal(m.codes, [[1, 2, -1], [1, -1, -1], [-1, 0, 2]])
    np.testing.assert_array_equal(m.counts(), [[0, 1, 1], [0, 1, 0], [1, 0, 1]])
    back = m.to_frame()
    assert sorted(back.itertuples(index=False, name=None)) == sorted(
        [
            ("x", "bob", "dog"),
            ("x", "amy", "cat"),
            ("y", "amy", "cat"),
            ("z", "bob", "ant"),
            ("z", "cat", "dog"),
        ]
    )


def test_from_frame_matches_from_long_and_checks_columns() -> None:
    items, annotators, labels = _wide_to_long(KRIPPENDORFF_2011)
    frame = pd.DataFrame({"unit": items, "coder": annotators, "value": labels})
    m = AnnotationMatrix.from_frame(frame, item="unit", annotator="coder", label="value")
    expected = AnnotationMatrix.from_long(items, annotators, labels)
    np.testing.assert_array_equal(m.codes, expected.codes)
    assert m.n_annotations == 41  # 48 cells minus 7 missing values in the 2011 table
    with pytest.raises(SchemaError, match="coder"):
        AnnotationMatrix.from_frame(frame, item="unit", annotator="rater", label="value")


def test_duplicate_item_annotator_pairs_raise_input_error() -> None:
    with pytest.raises(InputError) as info:
        AnnotationMatrix.from_long(
            ["i1", "i1", "i2", "i2", "i2"], ["a", "a", "b", "b", "a"], [0, 1, 0, 0, 1]
        )
    text = str(info.value)
    assert "2 (item, annotator) pair(s)" in text
    assert "('i1', 'a')" in text and "('i2', 'b')" in text


def test_unknown_label_with_explicit_classes_and_length_mismatch_raise() -> None:
    with pytest.raises(InputError, match="not among the classes"):
        AnnotationMatrix.from_long([1, 2], ["a", "b"], ["yes", "maybe"], classes=["no", "yes"])
    with pytest.raises(InputError, match="lengths 2, 2 and 3"):
        AnnotationMatrix.from_long([1, 2], ["a", "b"], ["yes", "no", "no"])


def test_single_annotator_or_no_overlap_raise_computation_error() -> None:
    one = AnnotationMatrix.from_long([1, 2, 3], ["a", "a", "a"], ["x", "y", "x"])
    for fn in (cohen_kappa_pairs, fleiss_kappa, krippendorff_alpha_nominal, agreement):
        with pytest.raises(ComputationError, match="one annotator"):
            fn(one)
    disjoint = AnnotationMatrix.from_long([1, 2, 3], ["a", "b", "c"], ["x", "y", "x"])
    with pytest.raises(ComputationError, match="two or more"):
        per_item_agreement(disjoint)
    with pytest.raises(ComputationError, match="two or more"):
        hlp_confusions(disjoint)
    # against gold labels a single annotator is fine: that is plain accuracy counting
    gold = hlp_confusions(one, gold=["x", "x", "x"])
    np.testing.assert_array_equal(gold.pooled, [[2, 1], [0, 0]])


# --------------------------------------------------------------------------------------------
# published worked examples


def test_fleiss_kappa_worked_example_fleiss_1971() -> None:
    # Fleiss (1971) via Wikipedia "Fleiss' kappa": P-bar = 0.378, P-bar_e = 0.213, kappa = 0.210
    direct = fleiss_kappa_from_counts(FLEISS_1971)
    assert direct.kappa == pytest.approx(0.210, abs=5e-4)
    assert direct.observed_agreement == pytest.approx(0.378, abs=5e-4)
    assert direct.chance_agreement == pytest.approx(0.213, abs=5e-4)
    via_matrix = fleiss_kappa(_counts_to_matrix(FLEISS_1971))
    assert via_matrix.kappa == pytest.approx(direct.kappa, rel=1e-12)
    assert (via_matrix.n_raters, via_matrix.n_items_used) == (14, 10)


def test_krippendorff_alpha_worked_example_2011() -> None:
    # Krippendorff (2011) "Computing Krippendorff's Alpha-Reliability", nominal: alpha = 0.743
    m = AnnotationMatrix.from_long(*_wide_to_long(KRIPPENDORFF_2011))
    result = krippendorff_alpha_nominal(m)
    assert result.alpha == pytest.approx(0.743, abs=5e-4)
    assert result.n_values_pairable == 40  # n = 40 pairable values in the paper
    assert result.n_units_pairable == 11  # unit 12 has a single value
    # paper's coincidence matrix margins n_c for values 1..5 and o_11 = 7, o_12 = 4/3
    np.testing.assert_allclose(result.coincidences.sum(axis=1), [9, 13, 10, 5, 3])
    assert result.coincidences[0, 0] == pytest.approx(7.0)
    assert result.coincidences[0, 1] == pytest.approx(4.0 / 3.0)


# --------------------------------------------------------------------------------------------
# against independent implementations on random data


def test_fleiss_kappa_matches_statsmodels_on_random_data() -> None:
    inter_rater = pytest.importorskip("statsmodels.stats.inter_rater")
    rng = np.random.default_rng(7)
    for n_classes in (2, 3, 5):
        m = _random_matrix(rng, 80, 6, n_classes, p_missing=0.15)
        ratings = m.ratings_per_item()
        values, freq = np.unique(ratings[ratings >= 2], return_counts=True)
        modal = values[freq == freq.max()].max()
        table = m.counts()[ratings == modal]
        expected = inter_rater.fleiss_kappa(table, method="fleiss")
        result = fleiss_kappa(m)
        assert result.kappa == pytest.approx(expected, rel=1e-10, abs=1e-12)
        assert result.n_raters == modal
        assert result.n_items_used == len(table)


def test_fleiss_kappa_modal_count_tie_goes_to_more_raters() -> None:
    # two items with 2 ratings, two items with 3 ratings: the 3-rating items are used
    m = AnnotationMatrix.from_long(
        [1, 1, 2, 2, 3, 3, 3, 4, 4, 4],
        ["a", "b", "a", "b", "a", "b", "c", "a", "b", "c"],
        ["x", "x", "x", "y", "x", "x", "y", "y", "y", "y"],
    )
    result = fleiss_kappa(m)
    assert (result.n_raters, result.n_items_used, result.n_items_not_used) == (3, 2, 2)
    inter_rater = pytest.importorskip("statsmodels.stats.inter_rater")
    expected = inter_rater.fleiss_kappa(np.array([[2, 1], [0, 3]]), method="fleiss")
    assert result.kappa == pytest.approx(expected)


def test_krippendorff_alpha_matches_krippendorff_package_with_missing_values() -> None:
    krippendorff = pytest.importorskip("krippendorff")
    rng = np.random.default_rng(11)
    for n_classes, p_missing in ((2, 0.3), (4, 0.4), (6, 0.5)):
        m = _random_matrix(rng, 60, 5, n_classes, p_missing)
        reliability = np.where(m.codes.T >= 0, m.codes.T, np.nan).astype(float)
        expected = krippendorff.alpha(reliability_data=reliability, level_of_measurement="nominal")
        assert krippendorff_alpha_nominal(m).alpha == pytest.approx(expected, rel=1e-9)


def test_cohen_kappa_pairs_match_sklearn() -> None:
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(3)
    m = _random_matrix(rng, 120, 4, 3, p_missing=0.25)
    pairs = cohen_kappa_pairs(m)
    assert len(pairs) == 6
    for pair in pairs:
        a = m.annotators.index(pair.annotator_a)
        b = m.annotators.index(pair.annotator_b)
        both = (m.codes[:, a] >= 0) & (m.codes[:, b] >= 0)
        assert pair.n_items == int(both.sum())
        expected = cohen_kappa_score(m.codes[both, a], m.codes[both, b])
        assert pair.kappa == pytest.approx(expected, rel=1e-12)
        assert pair.reason is None


def test_cohen_kappa_pairs_nan_with_reason_when_degenerate() -> None:
    m = AnnotationMatrix.from_long(
        [1, 1, 2, 2, 3, 3, 4],
        ["a", "b", "a", "b", "b", "c", "c"],
        ["x", "x", "x", "x", "y", "y", "x"],
    )
    by_pair = {(p.annotator_a, p.annotator_b): p for p in cohen_kappa_pairs(m)}
    assert math.isnan(by_pair[("a", "b")].kappa)  # both always "x": chance agreement 1
    assert "chance agreement is 1" in str(by_pair[("a", "b")].reason)
    assert by_pair[("b", "c")].n_items == 1 and math.isnan(by_pair[("b", "c")].kappa)
    assert "at least 2" in str(by_pair[("b", "c")].reason)
    assert by_pair[("a", "c")].n_items == 0


def test_per_class_specific_agreement_matches_two_rater_formula() -> None:
    # Cicchetti & Feinstein (1990): positive agreement for class c between two raters is
    # 2 n_cc / (row_c + col_c) of their confusion matrix (computed here by sklearn).
    from sklearn.metrics import confusion_matrix

    rng = np.random.default_rng(5)
    m = _random_matrix(rng, 200, 2, 4, p_missing=0.1)
    both = (m.codes >= 0).all(axis=1)
    cm = confusion_matrix(m.codes[both, 0], m.codes[both, 1], labels=range(4))
    expected = 2 * np.diag(cm) / (cm.sum(axis=0) + cm.sum(axis=1))
    np.testing.assert_allclose(per_class_agreement(m).specific_agreement, expected, rtol=1e-12)


def test_per_item_agreement_and_most_disputed_by_hand() -> None:
    m = AnnotationMatrix.from_long(*_wide_to_long(KRIPPENDORFF_2011))
    per_item = per_item_agreement(m)
    pos = {item: i for i, item in enumerate(m.items)}
    # unit 6: values 1, 2, 3, 4 -> no agreeing pair out of 6; majority tie -> first class (1)
    u6 = pos[6]
    assert per_item.agreement[u6] == 0.0
    assert per_item.majority[u6] == 1 and bool(per_item.majority_tied[u6])
    assert per_item.majority_share[u6] == pytest.approx(0.25)
    # unit 2: values 2, 2, 3, 2 -> 3 agreeing pairs of 6
    assert per_item.agreement[pos[2]] == pytest.approx(0.5)
    assert per_item.majority[pos[2]] == 2 and per_item.majority_share[pos[2]] == 0.75
    # unit 12: one value only
    assert math.isnan(per_item.agreement[pos[12]])
    disputed = most_disputed(m, 3)
    assert [d.item for d in disputed] == [6, 2, 8]  # 0.0, then 0.5 (4 ratings) twice
    assert disputed[0].label_counts == {1: 1, 2: 1, 3: 1, 4: 1}


# --------------------------------------------------------------------------------------------
# HLP confusion counts


def test_hlp_leave_one_out_majority_by_hand() -> None:
    # items x annotators (a, b, c), classes 0/1, '-' = missing
    #   i1: 0 0 0   every annotator's reference (the two others) is 0 -> three (0, 0)
    #   i2: 0 0 1   a: ref{0,1} tie, b: ref{0,1} tie, c: ref{0,0}=0 -> c contributes (0, 1)
    #   i3: 1 1 -   a: ref{1} -> (1, 1); b: ref{1} -> (1, 1)
    #   i4: 1 - -   a: no other annotation -> skipped
    #   i5: 0 1 1   a: ref{1,1}=1 -> (1, 0); b: ref{0,1} tie; c: ref{0,1} tie
    m = AnnotationMatrix(
        codes=np.array([[0, 0, 0], [0, 0, 1], [1, 1, -1], [1, -1, -1], [0, 1, 1]]),
        items=("i1", "i2", "i3", "i4", "i5"),
        annotators=("a", "b", "c"),
        classes=(0, 1),
    )
    skip = hlp_confusions(m)
    np.testing.assert_array_equal(skip.per_annotator[0], [[1, 0], [1, 1]])
    np.testing.assert_array_equal(skip.per_annotator[1], [[1, 0], [0, 1]])
    np.testing.assert_array_equal(skip.per_annotator[2], [[1, 1], [0, 0]])
    np.testing.assert_array_equal(skip.pooled, [[3, 1], [1, 2]])
    np.testing.assert_array_equal(skip.n_no_reference, [1, 0, 0])
    np.testing.assert_array_equal(skip.n_tied, [1, 2, 1])
    assert skip.pooled.dtype == np.int64 and skip.per_annotator.dtype == np.int64
    # ties="lowest": tied references become class 0 -> a on i2 adds (0,0), b on i2 adds (0,0),
    # b on i5 adds (0,1), c on i5 adds (0,1)
    lowest = hlp_confusions(m, ties="lowest")
    np.testing.assert_array_equal(lowest.pooled, [[5, 3], [1, 2]])
    assert int(lowest.pooled.sum()) == m.n_annotations - 1  # only i4 has no reference


def test_hlp_against_gold_matches_sklearn_confusion_matrix() -> None:
    from sklearn.metrics import confusion_matrix

    rng = np.random.default_rng(9)
    m = _random_matrix(rng, 90, 3, 3, p_missing=0.3)
    gold_codes = rng.integers(0, 3, m.n_items)
    gold_codes[0] = -1
    gold: list[str | None] = [f"c{k}" if k >= 0 else None for k in gold_codes]  # None: skipped
    result = hlp_confusions(m, gold=gold)
    for a in range(m.n_annotators):
        keep = (m.codes[:, a] >= 0) & (gold_codes >= 0)
        expected = confusion_matrix(gold_codes[keep], m.codes[keep, a], labels=range(3))
        np.testing.assert_array_equal(result.per_annotator[a], expected)
    np.testing.assert_array_equal(result.pooled, result.per_annotator.sum(axis=0))
    assert result.reference == "gold"
    with pytest.raises(InputError, match="'c9'"):
        hlp_confusions(m, gold=["c9"] * m.n_items)
    with pytest.raises(InputError, match="3 gold labels given for 90 items"):
        hlp_confusions(m, gold=["c0"] * 3)


# --------------------------------------------------------------------------------------------
# the report


def test_agreement_report_collects_everything_and_serialises() -> None:
    m = AnnotationMatrix.from_long(*_wide_to_long(KRIPPENDORFF_2011))
    report = agreement(m, k_disputed=2)
    assert report.krippendorff.alpha == pytest.approx(0.743, abs=5e-4)
    assert report.n_items == 12 and report.n_items_multi == 11 and report.n_annotators == 4
    assert len(report.pairs) == 6 and len(report.most_disputed) == 2
    assert report.mean_pairwise_kappa == pytest.approx(np.mean([p.kappa for p in report.pairs]))
    payload = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert payload["krippendorff"]["alpha"] == pytest.approx(report.krippendorff.alpha)
    assert payload["hlp"]["pooled"] == report.hlp.pooled.tolist()
    assert "Krippendorff" in report._repr_html_()
