"""The table view model: one set of rows for Rich (fits 80 columns), HTML and JSON."""

from __future__ import annotations

import io
import json
import math
from html.parser import HTMLParser
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table

from loopml.errors import InputError
from loopml.tableview import (
    Column,
    Interval,
    TableView,
    assert_legible,
    confidence_label,
    format_number,
    interval_header,
    legibility_problems,
    render_text,
)

# -- a leaderboard-like table: 10 columns, 4 of them intervals ---------------------------

COLUMNS = [
    Column("rank", "#", kind="count"),  # p0, width 1
    Column("name", "model"),  # p0, text: folds down to 16
    Column("f1", "f1", kind="interval"),  # p0: "0.912 [0.881, 0.94]" = 19
    Column("precision", "precision", kind="interval", priority=1),  # 19
    Column("recall", "recall", kind="interval", priority=2),  # 19
    Column("roc_auc", "roc_auc", kind="interval", priority=3),  # 19
    Column("share", "share", kind="percent", priority=4),  # "12.3%" = 5
    Column("n", "rows", kind="count", priority=5),  # "123,456" = 7
    Column("gap", "gap to HLP", kind="number", signed=True, priority=6),  # "-0.0123" = 7
    Column("kind", "kind", priority=7),  # "baseline" = 8
]


def _rows() -> list[dict[str, Any]]:
    names = ["logistic-regression-balanced-v3", "gradient-boosting", "majority"]
    return [
        {
            "rank": i + 1,
            "name": name,
            "f1": (0.9123, 0.8812, 0.9401),
            "precision": (0.9234, 0.8912, 0.9501),
            "recall": (0.9012, 0.8711, 0.9301),
            "roc_auc": (0.9712, 0.9512, 0.9801),
            "share": 0.1234,
            "n": 123456,
            "gap": -0.0123,
            "kind": "model" if i < 2 else "baseline",
        }
        for i, name in enumerate(names)
    ]


def leaderboard(confidence: float = 0.95) -> TableView:
    return TableView(
        "Leaderboard on f1 (higher is better)",
        COLUMNS,
        _rows(),
        notes=["gap to HLP > 0 means below humans"],
        confidence=confidence,
    )


def test_wide_leaderboard_at_80_keeps_numbers_whole_and_drops_low_priority_columns() -> None:
    view = leaderboard()
    text = render_text(view, 80)
    assert_legible(text, 80, view)
    # minimum widths: # 1, model 16, f1 19, precision 19, recall 19 -> 74 + 4 gaps of 2 = 82
    # > 80, so recall (p2) goes too; with precision: 55 + 2 * 3 = 61 fits
    words = " ".join(text.split())  # the note wraps at the table's width
    assert (
        "dropped columns: recall, roc_auc, share, rows, gap to HLP, kind "
        "(use --json or a wider terminal)"
    ) in words
    for kept in ("f1 (95% CI)", "precision (95% CI)", "0.912 [0.881, 0.94]", "0.923 [0.891, 0.95]"):
        assert kept in text
    assert "0.901 [0.871, 0.93]" not in text  # recall's cells are gone with their column
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_wide_leaderboard_at_200_drops_nothing() -> None:
    view = leaderboard()
    text = render_text(view, 200)
    assert_legible(text, 200, view)
    assert "dropped" not in text
    header = next(line for line in text.splitlines() if line.startswith("#"))
    for col in COLUMNS:
        assert view.header(col) in header
    for row in _rows():
        line = next(line for line in text.splitlines() if line.startswith(str(row["rank"]) + " "))
        assert row["name"] in line  # no folding when there is room
        assert "12.3%" in line and "123,456" in line and "-0.0123" in line


def test_plain_rich_table_cuts_the_same_numbers_at_80() -> None:
    """The problem being fixed: Rich alone cuts cells to '0.9…'; the helper catches it."""
    view = leaderboard()
    table = Table(title=view.title)
    for c in view.columns:
        table.add_column(view.header(c))
    for row in view.cells():
        table.add_row(*row)
    buf = io.StringIO()
    Console(file=buf, width=80, color_system=None).print(table)
    problems = legibility_problems(buf.getvalue(), 80)
    assert any("cut cell" in p for p in problems)
    with pytest.raises(AssertionError, match="cut cell"):
        assert_legible(buf.getvalue(), 80)


def test_assert_legible_flags_long_lines_and_missing_numbers() -> None:
    with pytest.raises(AssertionError, match="81 characters wide"):
        assert_legible("x" * 81, 80)
    assert legibility_problems("x" * 80, 80) == []
    view = TableView("t", [Column("v", kind="number")], [{"v": 0.123}])
    with pytest.raises(AssertionError, match=r"'0\.123' not whole"):
        assert_legible("v\n0.12\n", 80, view)


def test_a_table_that_fits_is_left_alone() -> None:
    """False alarm check: nothing dropped, folded or noted when the table fits."""
    view = TableView(
        "Metrics",
        [Column("metric"), Column("value", kind="number", priority=3), Column("n", kind="count")],
        [{"metric": "precision_at_recall_0.9", "value": 0.91234, "n": 1200}],
    )
    text = render_text(view, 80)
    assert_legible(text, 80, view)
    assert [line.rstrip() for line in text.splitlines()] == [
        "Metrics",
        "metric                   value      n",
        "─" * 37,
        "precision_at_recall_0.9  0.912  1,200",
    ]
    assert "dropped" not in text


def test_drop_order_highest_priority_first_rightmost_on_ties() -> None:
    cols = [
        Column("a", kind="number"),
        Column("b", kind="number", priority=1),
        Column("c", kind="number", priority=2),
        Column("d", kind="number", priority=2),
    ]
    view = TableView("", cols, [{k: 1234.5678 for k in "abcd"}])  # "1,235" = 5 each

    # all four: 20 + 6 = 26; width 19: drop d (p2, rightmost) -> 15 + 4 = 19 fits
    def note(width: int) -> str:
        words = " ".join(render_text(view, width).split())
        return words[words.index("dropped") :]

    assert note(19).startswith("dropped columns: d (")
    # width 18: d, then c -> 10 + 2 = 12
    assert note(18).startswith("dropped columns: c, d (")
    # width 11: b goes too; a is essential and stays
    assert note(11).startswith("dropped columns: b, c, d (")
    assert "1,235" in render_text(view, 11)


def test_essential_columns_that_cannot_fit_print_as_blocks() -> None:
    cols = [Column("slice")] + [Column(f"m{i}", kind="interval") for i in range(4)]
    rows = [
        {"slice": f"site=a{r}", **{f"m{i}": (0.9123, 0.8812, 0.9401) for i in range(4)}}
        for r in range(2)
    ]
    view = TableView("All essential", cols, rows, confidence=0.9)
    text = render_text(view, 60)
    assert_legible(text, 60, view)
    lines = text.splitlines()
    assert any(line.startswith("slice") and "site=a0" in line for line in lines)
    assert sum("0.912 [0.881, 0.94]" in line for line in lines) == 8
    assert any(line.startswith("m3 (90% CI)") for line in lines)


# -- escaping: markup, emoji codes, HTML ------------------------------------------------


@pytest.mark.parametrize("emoji", [True, False])
def test_markup_and_emoji_codes_print_as_written(emoji: bool) -> None:
    view = TableView(
        "By time:date [bold]x[/]",
        [Column("slice", "slice :date:"), Column("labels", "stored")],
        [{"slice": "time:date", "labels": "[green]x[/]"}, {"slice": ":smile:", "labels": "[/]"}],
        notes=["[red]note[/] :date:"],
    )
    buf = io.StringIO()
    Console(file=buf, width=80, emoji=emoji, markup=True, color_system=None).print(view)
    text = buf.getvalue()
    for literal in (
        "By time:date [bold]x[/]",
        "slice :date:",
        "time:date",
        "[green]x[/]",
        ":smile:",
        "[/]",
        "[red]note[/] :date:",
    ):
        assert literal in text
    assert "📅" not in text and "😄" not in text
    assert render_text(view, 80) == text


def test_control_characters_cannot_drive_the_terminal() -> None:
    view = TableView("t\x1b[2J", [Column("s")], [{"s": "a\x1b[31mred\tb\rc"}], notes=["\x07"])
    text = render_text(view, 80)
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text
    assert "a\\x1b[31mred b\\x0dc" in text and "t\\x1b[2J" in text and "\\x07" in text
    assert view.to_dict()["rows"] == [{"s": "a\x1b[31mred\tb\rc"}]  # JSON keeps the raw value


class _Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.cells: list[str] = []
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag in ("td", "th", "caption"):
            self._open = ""

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th", "caption") and self._open is not None:
            self.cells.append(self._open)
            self._open = None

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open += data


def test_html_is_escaped() -> None:
    view = TableView(
        "a <b>title</b> & more",
        [Column("s", "slice <i>"), Column("v", "auc", kind="interval")],
        [{"s": "<script>alert(1)</script>", "v": (0.9, 0.85, 0.95)}, {"s": 'a"&b', "v": None}],
        notes=["<img src=x>"],
        confidence=0.9,
    )
    out = view.to_html()
    parser = _Cells()
    parser.feed(out)
    assert set(parser.tags) == {"table", "caption", "thead", "tbody", "tfoot", "tr", "th", "td"}
    assert parser.cells == [
        "a <b>title</b> & more",
        "slice <i>",
        "auc (90% CI)",
        "<script>alert(1)</script>",
        "0.9 [0.85, 0.95]",
        'a"&b',
        "",
        "<img src=x>",
    ]
    assert view._repr_html_() == out


# -- JSON ---------------------------------------------------------------------------------


def test_to_dict_round_trips_the_raw_values() -> None:
    rows = _rows()
    rows[0]["extra"] = {"constraints": [{"name": "recall >= 0.9", "passed": True}]}
    rows[1]["share"] = np.float64(0.5)  # numpy scalars become Python numbers
    rows[1]["n"] = np.int64(7)
    view = TableView("t", COLUMNS, rows, notes=["n"], confidence=0.9)
    data = json.loads(json.dumps(view.to_dict(), allow_nan=False))
    assert data["confidence"] == 0.9 and data["notes"] == ["n"] and data["title"] == "t"
    assert data["rows"][0]["f1"] == {"value": 0.9123, "low": 0.8812, "high": 0.9401}
    assert data["rows"][0]["extra"] == rows[0]["extra"]
    assert data["rows"][1]["share"] == 0.5 and data["rows"][1]["n"] == 7
    assert data["rows"][2]["gap"] == -0.0123 and data["rows"][2]["kind"] == "baseline"
    assert [c["key"] for c in data["columns"]] == [c.key for c in COLUMNS]
    back = TableView.from_dict(data)
    assert back == view
    assert back.rows[0]["f1"] == Interval(0.9123, 0.8812, 0.9401)
    assert render_text(back, 80) == render_text(view, 80)


def test_nan_is_none_in_json_and_na_on_screen() -> None:
    view = TableView("t", [Column("v", kind="number")], [{"v": float("nan")}, {"v": None}])
    assert view.to_dict()["rows"] == [{"v": None}, {"v": None}]
    assert view.cells() == [["n/a"], [""]]


# -- confidence ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("confidence", "header"),
    [(0.95, "f1 (95% CI)"), (0.9, "f1 (90% CI)"), (0.99, "f1 (99% CI)"), (0.995, "f1 (99.5% CI)")],
)
def test_interval_header_follows_the_confidence(confidence: float, header: str) -> None:
    view = leaderboard(confidence)
    assert view.header(COLUMNS[2]) == header
    text = render_text(view, 200)
    assert header in text
    if confidence != 0.95:
        assert "95%" not in text and "95%" not in view.to_html()
    assert view.to_dict()["confidence"] == confidence


def test_confidence_helpers() -> None:
    assert confidence_label(0.95) == "95%" and confidence_label(0.8) == "80%"
    assert interval_header("", 0.9) == "90% CI"


def test_interval_column_without_confidence_is_an_error() -> None:
    with pytest.raises(InputError, match="confidence") as err:
        TableView("t", [Column("v", kind="interval")], [{"v": (1, 0, 2)}])
    assert err.value.where == "table 't', column 'v'" and "spec.confidence" in str(err.value.hint)
    with pytest.raises(InputError, match="strictly between 0 and 1"):
        TableView("t", [Column("v", kind="interval")], [], confidence=95)


# -- rounding by kind ---------------------------------------------------------------------


def test_rounding_by_kind() -> None:
    view = TableView(
        "t",
        [
            Column("m", kind="number"),
            Column("g", kind="number", signed=True),
            Column("p", kind="percent"),
            Column("c", kind="count"),
            Column("i", kind="interval"),
            Column("d", kind="number", digits=5),
        ],
        [
            {
                "m": 0.912345,
                "g": 0.01234,
                "p": 0.12345,
                "c": 1234567,
                "i": (0.9, 0.8, 1.0),
                "d": 0.912346,
            },
            {"m": 12345.6, "g": -0.5, "p": 1.0, "c": 3.0, "i": Interval(None, 0.1, 0.2), "d": 2.0},
        ],
        confidence=0.95,
    )
    assert view.cells() == [
        ["0.912", "+0.0123", "12.3%", "1,234,567", "0.9 [0.8, 1]", "0.91235"],
        ["12,346", "-0.5", "100.0%", "3", "[0.1, 0.2]", "2"],
    ]


@given(st.floats(min_value=1e-4, max_value=99.9))
def test_three_significant_digits_match_python_g_format(x: float) -> None:
    assert float(format_number(x)) == float(f"{x:.3g}")
    assert float(format_number(-x)) == float(f"{-x:.3g}")
    assert format_number(x, 4) == f"{x:.4g}" or float(format_number(x, 4)) == float(f"{x:.4g}")


def test_format_number_edges() -> None:
    assert format_number(0.0) == "0"
    assert format_number(float("inf")) == "inf" and format_number(-math.inf) == "-inf"
    assert format_number(1.234e-7) == "1.23e-07"
    assert format_number(9.9996) == "10"


_values = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@given(
    st.integers(min_value=40, max_value=160),
    st.lists(st.integers(min_value=0, max_value=4), min_size=1, max_size=9),
    st.lists(st.text(min_size=0, max_size=40), min_size=1, max_size=4),
    st.lists(st.tuples(_values, _values, _values), min_size=1, max_size=4),
)
def test_any_table_fits_and_keeps_numbers_whole(
    width: int, priorities: list[int], texts: list[str], triples: list[tuple[float, ...]]
) -> None:
    kinds = ["number", "interval", "count", "percent"]
    cols = [Column("label", "label [x] :date:")] + [
        Column(f"c{i}", f"col {i}", kind=kinds[i % 4], priority=p)  # type: ignore[arg-type]
        for i, p in enumerate(priorities)
    ]
    rows = []
    for text, (a, b, c) in zip(texts, triples, strict=False):
        row: dict[str, Any] = {"label": text}
        for i in range(len(priorities)):
            kind = kinds[i % 4]
            row[f"c{i}"] = (a, b, c) if kind == "interval" else round(a) if kind == "count" else b
        rows.append(row)
    view = TableView("A title", cols, rows, confidence=0.95)
    text = render_text(view, width)
    _, _, stacked = view.layout(width)
    if not stacked:
        assert_legible(text, width, view)
    else:  # blocks: lines still fit; a number longer than the value column may fold
        assert max(cell_len(line) for line in text.splitlines()) <= width


# -- bad input ----------------------------------------------------------------------------


def test_bad_input_names_the_row_and_column() -> None:
    cols = [Column("slice"), Column("auc", kind="number")]
    with pytest.raises(InputError, match="no value for 'auc'") as err:
        TableView("t", cols, [{"slice": "a", "auc": 0.9}, {"slice": "b"}])
    assert err.value.where == "row 1, column 'auc'" and err.value.hint
    with pytest.raises(InputError, match="expected a number") as err:
        TableView("t", cols, [{"slice": "a", "auc": "0.9"}])
    assert err.value.where == "row 0, column 'auc'" and "raw number" in str(err.value.hint)
    with pytest.raises(InputError, match="expected a whole number"):
        TableView("t", [Column("n", kind="count")], [{"n": 2.5}])
    with pytest.raises(InputError, match=r"\(value, low, high\)"):
        TableView("t", [Column("v", kind="interval")], [{"v": (1, 2)}], confidence=0.9)
    with pytest.raises(InputError, match="appears twice"):
        TableView("t", [Column("a"), Column("a")], [])
    with pytest.raises(InputError, match="not a column kind") as err:
        Column("a", kind="money")  # type: ignore[arg-type]
    assert err.value.where == "column 'a'"
    with pytest.raises(InputError, match="priority"):
        Column("a", priority=-1)
    with pytest.raises(InputError, match="one or more Column"):
        TableView("t", [], [])
    with pytest.raises(InputError, match="expected a mapping"):
        TableView("t", [Column("a")], [["a"]])  # type: ignore[list-item]
    with pytest.raises(InputError, match="cannot be written as JSON"):
        TableView("t", [Column("a")], [{"a": "x", "b": object()}])
    with pytest.raises(InputError, match="not a table view"):
        TableView.from_dict({"title": "t"})
    with pytest.raises(InputError, match="width"):
        leaderboard().to_rich(0)


def test_view_is_immutable() -> None:
    view = leaderboard()
    with pytest.raises(AttributeError):
        view.title = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        view.rows[0]["name"] = "x"  # type: ignore[index]
    assert isinstance(view.columns, tuple) and isinstance(view.rows, tuple)
