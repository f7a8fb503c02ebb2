"""One table view model for every surface: Rich in a terminal, HTML in the report, JSON.

A :class:`TableView` is an immutable value: a title, typed :class:`Column` s, rows of raw
values and notes. Each surface renders the same rows from it:

- ``view.to_dict()``: JSON-ready, raw values (never formatted strings); ``TableView.from_dict``
  reads it back.
- ``view.to_html()`` (and ``_repr_html_`` for notebooks): a ``<table>``, every cell escaped.
- ``console.print(view)`` or ``view.to_rich(width)``: a :class:`rich.table.Table` that fits
  ``width``. Long text folds; numbers are never cut to ``0.9…``; when the table still does
  not fit, columns are dropped from the highest ``priority`` down and a note says which
  ("dropped columns: a, b (use --json or a wider terminal)"). If even the essential columns
  (``priority=0``) do not fit, each row is printed as a block of ``header  value`` lines.

Cells, headers, the title and the notes are rendered as :class:`rich.text.Text`: slice names
such as ``time:date`` or values such as ``[green]x[/]`` print as they are, never as Rich
markup or emoji, whatever console prints them.

Numbers are rounded by kind: ``number`` to 3 significant digits (``digits``), trailing zeros
dropped, large values as whole numbers with thousands separators; ``percent`` (a fraction:
0.123 prints 12.3%) to 1 decimal; ``count`` with thousands separators; ``interval`` as
``0.912 [0.88, 0.94]`` under a header carrying the table's confidence (``auc (90% CI)`` for
``confidence=0.9``). ``signed=True`` prints ``+`` on positive numbers (gaps, gains).

Usage in a command (``--json`` prints ``view.to_dict()``)::

    from loopml.tableview import Column, TableView

    view = TableView(
        "Leaderboard on f1 (higher is better)",
        [
            Column("name", "model"),
            Column("f1", "f1", kind="interval"),
            Column("n", "rows", kind="count", priority=2),
            Column("gap_to_hlp", "gap to HLP", kind="number", signed=True, priority=1),
        ],
        [{"name": r.name, "f1": (r.value, r.low, r.high), "n": r.n, "gap_to_hlp": r.gap}
         for r in board.rows],
        notes=["gap to HLP > 0 means below humans"],
        confidence=spec.confidence,
    )
    console.print(view)            # fits the terminal (80 columns when piped)

Tests render with :func:`render_text` and check with :func:`assert_legible`.
"""

from __future__ import annotations

import html
import io
import math
import numbers
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, cast, get_args

from loopml.errors import InputError

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult
    from rich.table import Table

__all__ = [
    "Column",
    "ColumnKind",
    "HtmlRepr",
    "Interval",
    "TableView",
    "assert_legible",
    "confidence_label",
    "dict_html",
    "format_number",
    "interval_header",
    "legibility_problems",
    "render_text",
]

ColumnKind = Literal["text", "number", "percent", "count", "interval"]
Align = Literal["left", "right", "center"]

_KINDS: tuple[str, ...] = get_args(ColumnKind)
_ALIGNS: tuple[str, ...] = get_args(Align)
#: a text column is never narrowed below this many characters (or its own width) to fit
_TEXT_MIN = 16
#: characters between two columns (one pad and one blank divider)
_GAP = 2
_DROPPED_HINT = "(use --json or a wider terminal)"


class Interval(NamedTuple):
    """A value with its interval; any of the three may be ``None``."""

    value: float | None
    low: float | None
    high: float | None


def confidence_label(confidence: float) -> str:
    """``0.95`` -> ``"95%"``, ``0.9`` -> ``"90%"``, ``0.995`` -> ``"99.5%"``."""
    return f"{100 * confidence:.10g}%"


def interval_header(header: str, confidence: float) -> str:
    """The header of an interval column: ``"auc (95% CI)"``, or ``"95% CI"`` alone."""
    ci = f"{confidence_label(confidence)} CI"
    return f"{header} ({ci})" if header else ci


def _printable(text: str) -> str:
    """Control characters shown as ``\\x1b`` escapes (a cell must not drive the terminal)."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch == "\n" or ch.isprintable() or unicodedata.category(ch) != "Cc":
            out.append(ch)
        elif ch == "\t":
            out.append(" ")
        else:
            out.append(f"\\x{ord(ch):02x}")
    return "".join(out)


def format_number(x: float, digits: int = 3, *, signed: bool = False) -> str:
    """``x`` to ``digits`` significant digits, trailing zeros dropped.

    Values of ``10**(digits-1)`` or more print whole with thousands separators
    (``12,346``); values below ``1e-4`` in exponent notation; NaN as ``n/a``.
    """
    if math.isnan(x):
        return "n/a"
    sign = "+" if signed and x > 0 else ""
    if math.isinf(x):
        return f"{sign}inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    rounded = float(f"{x:.{digits - 1}e}")
    mag = math.floor(math.log10(abs(rounded)))
    if mag >= digits - 1:
        return f"{sign}{round(x):,}"
    if mag < -4:
        return f"{x:{'+' if signed else ''}.{digits}g}"
    text = f"{rounded:.{digits - 1 - mag}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return sign + text


@dataclass(frozen=True)
class Column:
    """One column of a :class:`TableView`.

    ``key`` names the row field; ``header`` is shown (the key when ``None``). ``kind`` says
    how values print: ``text``, ``number`` (``digits`` significant digits, 3 by default),
    ``percent`` (a fraction, ``digits`` decimals, 1 by default), ``count`` (an integer with
    thousands separators) or ``interval`` (``(value, low, high)``). ``priority`` 0 marks an
    essential column; higher numbers are dropped first when the terminal is too narrow.
    ``align`` defaults to left for text and right for numbers.
    """

    key: str
    header: str | None = None
    kind: ColumnKind = "text"
    digits: int | None = None
    priority: int = 0
    align: Align | None = None
    signed: bool = False

    def __post_init__(self) -> None:
        where = f"column {self.key!r}"
        if not isinstance(self.key, str) or not self.key:
            raise InputError(
                f"column key {self.key!r} was given; expected a non-empty string",
                hint="name the row field the column shows, for example Column('auc', 'AUC')",
                where="column key",
            )
        if self.header is not None and not isinstance(self.header, str):
            raise InputError(
                f"header {self.header!r} is not a string",
                hint="pass the header text as a string, or None to show the key",
                where=where,
            )
        if self.kind not in _KINDS:
            raise InputError(
                f"kind {self.kind!r} is not a column kind; expected one of {', '.join(_KINDS)}",
                hint="use kind='number' for metrics, 'count' for row counts, 'interval' for "
                "(value, low, high)",
                where=where,
            )
        if self.digits is not None and (
            isinstance(self.digits, bool) or not isinstance(self.digits, int) or self.digits < 0
        ):
            raise InputError(
                f"digits={self.digits!r}; expected a whole number >= 0 (or None)",
                hint="digits are significant digits for numbers, decimals for percents",
                where=where,
            )
        if self.digits == 0 and self.kind in ("number", "interval"):
            raise InputError(
                "digits=0 keeps no significant digit",
                hint="pass digits=1 or more (3 is the default)",
                where=where,
            )
        if isinstance(self.priority, bool) or not isinstance(self.priority, int):
            raise InputError(
                f"priority={self.priority!r}; expected a whole number",
                hint="0 is essential; higher numbers are dropped first when space is short",
                where=where,
            )
        if self.priority < 0:
            raise InputError(
                f"priority={self.priority}; expected 0 (essential) or more",
                hint="0 is essential; higher numbers are dropped first when space is short",
                where=where,
            )
        if self.align is not None and self.align not in _ALIGNS:
            raise InputError(
                f"align={self.align!r}; expected one of {', '.join(_ALIGNS)}",
                hint="leave align=None for left text and right-aligned numbers",
                where=where,
            )

    @property
    def label(self) -> str:
        return self.key if self.header is None else self.header

    @property
    def numeric(self) -> bool:
        return self.kind != "text"

    @property
    def justify(self) -> Align:
        if self.align is not None:
            return self.align
        return "right" if self.numeric else "left"

    def format(self, value: Any) -> str:
        """The cell text of a (validated) raw value."""
        if value is None:
            return ""
        if self.kind == "text":
            return _printable(str(value))
        if self.kind == "count":
            return f"{int(value):,}"
        if self.kind == "percent":
            decimals = 1 if self.digits is None else self.digits
            if math.isnan(value):
                return "n/a"
            sign = "+" if self.signed and value > 0 else ""
            return f"{sign}{100 * value:.{decimals}f}%"
        digits = 3 if self.digits is None else self.digits
        if self.kind == "number":
            return format_number(value, digits, signed=self.signed)
        iv = cast(Interval, value)

        def f(x: float | None) -> str:
            return "?" if x is None else format_number(x, digits, signed=self.signed)

        bounds = "" if iv.low is None and iv.high is None else f"[{f(iv.low)}, {f(iv.high)}]"
        if iv.value is None:
            return bounds
        return f"{f(iv.value)} {bounds}".rstrip()

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "header": self.header,
            "kind": self.kind,
            "digits": self.digits,
            "priority": self.priority,
            "align": self.align,
            "signed": self.signed,
        }


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _plain(value: Any) -> Any:
    """numpy scalars to Python scalars."""
    item = getattr(value, "item", None)
    if item is not None and getattr(value, "shape", None) == ():
        return item()
    return value


def _bad(row: int, column: Column, value: Any, expected: str, hint: str) -> InputError:
    return InputError(
        f"value {value!r} ({type(value).__name__}) in a {column.kind} column; expected {expected}",
        hint=hint,
        where=f"row {row}, column {column.key!r}",
    )


def _check_value(row: int, column: Column, value: Any) -> Any:
    value = _plain(value)
    if value is None:
        return None
    kind = column.kind
    if kind == "text":
        if isinstance(value, str | bool | int | float):
            return value
        raise _bad(row, column, value, "text", "pass a string (or None for an empty cell)")
    if kind == "interval":
        return _check_interval(row, column, value)
    if not _is_number(value):
        raise _bad(
            row,
            column,
            value,
            "a number",
            "pass the raw number (not a formatted string), or None for an empty cell",
        )
    value = float(value) if kind != "count" else value
    if kind == "count":
        if isinstance(value, float) and not value.is_integer():
            raise _bad(row, column, value, "a whole number", "counts are whole numbers of rows")
        return int(value)
    return value


def _check_interval(row: int, column: Column, value: Any) -> Interval:
    parts: Sequence[Any]
    if isinstance(value, Mapping):
        missing = [k for k in ("value", "low", "high") if k not in value]
        if missing:
            raise _bad(
                row,
                column,
                value,
                "a mapping with value, low and high",
                f"add {', '.join(missing)} (None when unknown)",
            )
        parts = (value["value"], value["low"], value["high"])
    elif isinstance(value, tuple | list) and len(value) == 3:
        parts = value
    else:
        raise _bad(
            row,
            column,
            value,
            "(value, low, high)",
            "pass a 3-tuple or an Interval(value, low, high); None for an unknown part",
        )
    out: list[float | None] = []
    for part in parts:
        p = _plain(part)
        if p is not None and not _is_number(p):
            raise _bad(row, column, value, "three numbers (or None)", "pass raw numbers")
        out.append(None if p is None else float(p))
    return Interval(*out)


def _jsonable(value: Any, where: str) -> Any:
    value = _plain(value)
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Interval):
        return {
            "value": _jsonable(value.value, where),
            "low": _jsonable(value.low, where),
            "high": _jsonable(value.high, where),
        }
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, where) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v, where) for v in value]
    tolist = getattr(value, "tolist", None)
    if tolist is not None:
        return _jsonable(tolist(), where)
    raise InputError(
        f"value of type {type(value).__name__} cannot be written as JSON",
        hint="pass numbers, strings, booleans, None, lists or mappings of them",
        where=where,
    )


def _freeze_rows(
    rows: Iterable[Mapping[str, Any]], columns: Sequence[Column]
) -> tuple[Mapping[str, Any], ...]:
    out: list[Mapping[str, Any]] = []
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise InputError(
                f"row {i} is a {type(row).__name__}; expected a mapping of column key to value",
                hint="pass rows as dicts such as {'slice': 'a', 'auc': 0.91}",
                where=f"row {i}",
            )
        missing = [c.key for c in columns if c.key not in row]
        if missing:
            raise InputError(
                f"row {i} has no value for {', '.join(repr(k) for k in missing)}",
                hint="give every column a value in every row (None for an empty cell)",
                where=f"row {i}, column {missing[0]!r}",
            )
        keys = {c.key for c in columns}
        frozen = {
            str(k): _jsonable(v, f"row {i}, field {k!r}") for k, v in row.items() if k not in keys
        }
        for c in columns:
            frozen[c.key] = _check_value(i, c, row[c.key])
        out.append(MappingProxyType(frozen))
    return tuple(out)


@dataclass(frozen=True)
class TableView:
    """A titled table of typed columns and raw rows, rendered alike by Rich, HTML and JSON.

    ``confidence`` (for example the spec's ``confidence``) is required when a column is an
    interval column: its header says ``95% CI`` only when ``confidence=0.95``. Rows may hold
    fields no column shows; ``to_dict`` keeps them.
    """

    title: str
    columns: Sequence[Column]
    rows: Sequence[Mapping[str, Any]] = ()
    notes: Sequence[str] = ()
    confidence: float | None = None
    _cells: tuple[tuple[str, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.title, str):
            raise InputError(
                f"title {self.title!r} is not a string",
                hint="pass the table title as a string ('' for none)",
                where="table title",
            )
        columns = tuple(self.columns)
        if not columns or not all(isinstance(c, Column) for c in columns):
            raise InputError(
                "a table needs one or more Column objects",
                hint="pass columns=[Column('name'), Column('auc', kind='number'), ...]",
                where=f"table {self.title!r}",
            )
        seen: set[str] = set()
        for c in columns:
            if c.key in seen:
                raise InputError(
                    f"column key {c.key!r} appears twice",
                    hint="give every column its own key",
                    where=f"table {self.title!r}",
                )
            seen.add(c.key)
        if isinstance(self.notes, str) or not all(isinstance(n, str) for n in self.notes):
            raise InputError(
                "notes must be a list of strings",
                hint="pass notes=['one line', 'another line']",
                where=f"table {self.title!r}",
            )
        conf = self.confidence
        if conf is not None:
            if not _is_number(conf) or not 0 < float(conf) < 1:
                raise InputError(
                    f"confidence={conf!r}; expected a number strictly between 0 and 1",
                    hint="pass the spec's confidence, for example 0.95",
                    where=f"table {self.title!r}",
                )
            conf = float(conf)
        elif any(c.kind == "interval" for c in columns):
            key = next(c.key for c in columns if c.kind == "interval")
            raise InputError(
                "an interval column needs the table's confidence level",
                hint="pass confidence=spec.confidence (for example 0.95) to TableView",
                where=f"table {self.title!r}, column {key!r}",
            )
        if isinstance(self.rows, Mapping | str):
            raise InputError(
                f"rows is a {type(self.rows).__name__}; expected a list of mappings",
                hint="pass rows=[{'slice': 'a', 'auc': 0.91}, ...]",
                where=f"table {self.title!r}",
            )
        rows = _freeze_rows(self.rows, columns)
        object.__setattr__(self, "columns", columns)
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "notes", tuple(self.notes))
        object.__setattr__(self, "confidence", conf)
        cells = tuple(tuple(c.format(r[c.key]) for c in columns) for r in rows)
        object.__setattr__(self, "_cells", cells)

    # -- shared -------------------------------------------------------------------------

    def header(self, column: Column) -> str:
        """The shown header: interval columns carry the confidence level."""
        if column.kind == "interval" and self.confidence is not None:
            return interval_header(column.label, self.confidence)
        return column.label

    def cells(self) -> list[list[str]]:
        """Every formatted cell, row by row (the strings every surface shows)."""
        return [list(r) for r in self._cells]

    # -- JSON ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: raw values (intervals as ``{"value", "low", "high"}``; NaN as None)."""
        return {
            "title": self.title,
            "confidence": self.confidence,
            "columns": [c.to_dict() for c in self.columns],
            "rows": [_jsonable(dict(r), "row") for r in self.rows],
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TableView:
        """Read back :meth:`to_dict` output."""
        try:
            columns = [Column(**c) for c in data["columns"]]
            return cls(
                title=data["title"],
                columns=columns,
                rows=data["rows"],
                notes=data.get("notes", ()),
                confidence=data.get("confidence"),
            )
        except (KeyError, TypeError) as exc:
            raise InputError(
                f"not a table view: {exc}",
                hint="pass the output of TableView.to_dict()",
                where="table view",
            ) from None

    # -- HTML ---------------------------------------------------------------------------

    def to_html(self) -> str:
        """A ``<table class="loopml-table">``; every cell, header, title and note escaped."""
        e = html.escape
        cls = {c.key: ' class="num"' if c.numeric else "" for c in self.columns}
        parts = ['<table class="loopml-table">']
        if self.title:
            parts.append(f"<caption>{e(self.title)}</caption>")
        parts.append("<thead><tr>")
        parts.extend(
            f'<th scope="col" data-key="{e(c.key)}"{cls[c.key]}>{e(self.header(c))}</th>'
            for c in self.columns
        )
        parts.append("</tr></thead><tbody>")
        for row in self._cells:
            parts.append("<tr>")
            parts.extend(
                f"<td{cls[c.key]}>{e(text)}</td>" for c, text in zip(self.columns, row, strict=True)
            )
            parts.append("</tr>")
        parts.append("</tbody>")
        if self.notes:
            parts.append("<tfoot>")
            parts.extend(
                f'<tr><td colspan="{len(self.columns)}">{e(n)}</td></tr>' for n in self.notes
            )
            parts.append("</tfoot>")
        parts.append("</table>")
        return "".join(parts)

    def _repr_html_(self) -> str:
        return self.to_html()

    # -- Rich ---------------------------------------------------------------------------

    def layout(self, width: int) -> tuple[list[int], list[int], bool]:
        """The shown column indices, their widths, and whether rows print as blocks."""
        from rich.cells import cell_len

        n = len(self.columns)
        headers = [_printable(self.header(c)) for c in self.columns]
        natural: list[int] = []
        minimum: list[int] = []
        for i, c in enumerate(self.columns):
            cell = max((cell_len(r[i]) for r in self._cells), default=0)
            word = max((cell_len(w) for w in headers[i].split()), default=0)
            natural.append(max(cell, cell_len(headers[i]), 1))
            if c.numeric:
                minimum.append(max(cell, word, 1))
            else:
                minimum.append(min(natural[i], _TEXT_MIN))

        def need(cols: list[int]) -> int:
            return sum(minimum[i] for i in cols) + _GAP * (len(cols) - 1)

        shown = list(range(n))
        while need(shown) > width:
            droppable = [i for i in shown if self.columns[i].priority > 0]
            if not droppable:
                break
            shown.remove(max(droppable, key=lambda i: (self.columns[i].priority, i)))
        if need(shown) > width:
            return list(range(n)), [], True
        widths = {i: minimum[i] for i in shown}
        spare = width - need(shown)
        # text columns grow first (each fold costs a line per row), then numeric headers
        for group in (
            [i for i in shown if not self.columns[i].numeric],
            [i for i in shown if self.columns[i].numeric],
        ):
            while spare > 0:
                short = [i for i in group if widths[i] < natural[i]]
                if not short:
                    break
                share = max(1, spare // len(short))
                for i in short:
                    add = min(share, natural[i] - widths[i], spare)
                    widths[i] += add
                    spare -= add
        # as wide as the title and the longest word of the notes, so that they do not wrap
        # needlessly; the whole width when columns were dropped (the note says which)
        words = [cell_len(w) for note in self.notes for w in note.split()]
        floor = width if len(shown) < n else min(width, max([cell_len(self.title), *words]))
        floor -= sum(widths.values()) + _GAP * (len(shown) - 1)
        if floor > 0:
            text = [i for i in shown if not self.columns[i].numeric]
            widths[text[-1] if text else shown[-1]] += floor
        return shown, [widths[i] for i in shown], False

    def to_rich(self, width: int = 80) -> Table:
        """A :class:`rich.table.Table` no wider than ``width`` (see the module docstring)."""
        from rich import box
        from rich.table import Table
        from rich.text import Text

        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise InputError(
                f"width={width!r}; expected a positive number of characters",
                hint="pass the terminal width, for example 80",
                where=f"table {self.title!r}",
            )
        shown, widths, stacked = self.layout(width)
        notes = list(self.notes)
        dropped = [self.columns[i].label for i in range(len(self.columns)) if i not in shown]
        if dropped:
            notes.append(f"dropped columns: {', '.join(dropped)} {_DROPPED_HINT}")
        table = Table(
            title=Text(_printable(self.title)) if self.title else None,
            caption=Text(_printable("\n".join(notes))) if notes else None,
            title_justify="left",
            caption_justify="left",
            box=box.SIMPLE_HEAD,
            show_edge=False,
            pad_edge=False,
            padding=(0, 1, 0, 0),
            expand=False,
        )
        if stacked:
            return self._stacked(table, width)
        for i, w in zip(shown, widths, strict=True):
            c = self.columns[i]
            table.add_column(
                Text(_printable(self.header(c)), overflow="fold", no_wrap=False),
                width=w,
                justify=c.justify,
                no_wrap=c.numeric,
                overflow="fold",
            )
        for row in self._cells:
            table.add_row(
                *(
                    Text(row[i], no_wrap=True) if self.columns[i].numeric else Text(row[i])
                    for i in shown
                )
            )
        return table

    def _stacked(self, table: Table, width: int) -> Table:
        from rich.cells import cell_len
        from rich.text import Text

        headers = [_printable(self.header(c)) for c in self.columns]
        longest = max(
            (
                cell_len(row[i])
                for row in self._cells
                for i, c in enumerate(self.columns)
                if c.numeric
            ),
            default=0,
        )
        label = min(max(cell_len(h) for h in headers), max(width - _GAP - longest, width // 3, 1))
        value = max(1, width - _GAP - label)
        table.show_header = False
        table.add_column(width=label, overflow="fold")
        table.add_column(width=value, overflow="fold")
        last = len(self._cells) - 1
        for r, row in enumerate(self._cells):
            for i, text in enumerate(row):
                end = i == len(row) - 1 and r < last
                table.add_row(Text(headers[i]), Text(text), end_section=end)
        return table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.to_rich(options.max_width)

    def __str__(self) -> str:
        return render_text(self)


_HTML_DEPTH = 4
_HTML_ITEMS = 50


def dict_html(value: Any, *, title: str | None = None, _depth: int = 0) -> str:
    """A result's ``to_dict()`` as escaped nested HTML (a definition table per mapping, a
    list per sequence; long lists cut at 50 items, deep nesting at 4 levels), for results
    whose notebook view is their data rather than a table."""
    e = html.escape
    if _depth >= _HTML_DEPTH:
        return f"<code>{e(str(value)[:200])}</code>"
    if isinstance(value, Mapping):
        rows = "".join(
            f"<tr><th style='text-align:left;vertical-align:top'>{e(str(k))}</th>"
            f"<td>{dict_html(v, _depth=_depth + 1)}</td></tr>"
            for k, v in list(value.items())[:_HTML_ITEMS]
        )
        more = "<tr><td colspan=2>...</td></tr>" if len(value) > _HTML_ITEMS else ""
        head = f"<caption style='text-align:left'><b>{e(title)}</b></caption>" if title else ""
        return f"<table>{head}{rows}{more}</table>"
    if isinstance(value, list | tuple):
        if not value:
            return "<i>none</i>"
        items = "".join(f"<li>{dict_html(v, _depth=_depth + 1)}</li>" for v in value[:_HTML_ITEMS])
        more = f"<li>... {len(value) - _HTML_ITEMS} more</li>" if len(value) > _HTML_ITEMS else ""
        return f"<ul>{items}{more}</ul>"
    if value is None:
        return "<i>none</i>"
    if isinstance(value, float):
        return e(format_number(value))
    return e(str(value))


class HtmlRepr:
    """Mixin: a notebook view of a result from its ``to_dict()``."""

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover - every user defines it
        raise NotImplementedError

    def _repr_html_(self) -> str:
        table = getattr(self, "table", None)
        if callable(table):  # a result with a table view shows the rows the CLI shows
            view = table()
            if isinstance(view, TableView):
                return view.to_html()
        return dict_html(self.to_dict(), title=type(self).__name__)


def render_text(view: TableView, width: int = 80) -> str:
    """``view`` as plain text at a fixed width (no colour, no markup, no emoji)."""
    from rich.console import Console

    buf = io.StringIO()
    console = Console(
        file=buf,
        width=width,
        force_terminal=False,
        color_system=None,
        emoji=False,
        highlight=False,
        legacy_windows=False,
    )
    console.print(view)
    return buf.getvalue()


def legibility_problems(text: str, width: int = 80) -> list[str]:
    """What makes a rendered output unreadable at ``width``: long lines, cut cells."""
    from rich.cells import cell_len

    problems: list[str] = []
    for no, line in enumerate(text.splitlines(), start=1):
        if cell_len(line) > width:
            problems.append(f"line {no} is {cell_len(line)} characters wide (> {width}): {line}")
        if "…" in line:
            problems.append(f"line {no} has a cut cell ('…'): {line}")
    return problems


def assert_legible(text: str, width: int = 80, view: TableView | None = None) -> None:
    """Raise AssertionError if ``text`` has a line wider than ``width`` or a cut cell.

    With ``view``, also check that every number cell of every shown column appears whole.
    """
    problems = legibility_problems(text, width)
    if view is not None:
        shown, _, stacked = view.layout(width)
        lines = text.splitlines()
        for i in shown:
            c = view.columns[i]
            if not c.numeric:
                continue
            for r, row in enumerate(view.cells()):
                cell = row[i]
                if cell and not any(cell in line for line in lines):
                    where = "as a block" if stacked else "in the table"
                    problems.append(f"row {r}, column {c.key!r}: {cell!r} not whole {where}")
    if problems:
        raise AssertionError("\n".join(problems))
