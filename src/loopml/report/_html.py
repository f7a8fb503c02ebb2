"""The report's HTML: escaping, number formatting, tables, placeholders, the page shell."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from loopml.tableview import confidence_label

__all__ = [
    "CSS",
    "e",
    "fmt",
    "iv",
    "level",
    "mark",
    "page",
    "placeholder",
    "status_mark",
    "table",
]

e = html.escape

CSS = """
:root { --fg: #111827; --muted: #6b7280; --line: #e5e7eb; --accent: #2563eb; }
* { box-sizing: border-box; }
body { font: 14px/1.45 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
  color: var(--fg); margin: 0; background: #f9fafb; }
header { background: #111827; color: #fff; padding: 18px 32px; }
header h1 { margin: 0 0 4px 0; font-size: 22px; }
header p { margin: 0; color: #d1d5db; }
nav { padding: 8px 32px; background: #fff; border-bottom: 1px solid var(--line); }
nav a { color: var(--accent); margin-right: 12px; text-decoration: none; font-size: 13px; }
main { padding: 8px 32px 48px 32px; max-width: 1200px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px;
  padding: 12px 20px; margin: 16px 0; }
h2 { font-size: 18px; margin: 4px 0 10px 0; }
h3 { font-size: 15px; margin: 14px 0 6px 0; }
table { border-collapse: collapse; margin: 6px 0 10px 0; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px; text-align: left;
  vertical-align: top; }
th { background: #f3f4f6; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num, td.nw { white-space: nowrap; }
table.loopml-table caption { caption-side: top; text-align: left; font-weight: 600;
  padding: 2px 0 6px 0; }
table.loopml-table tfoot td { color: var(--muted); font-size: 12px; border-bottom: none;
  text-align: left; white-space: normal; }
.pass { color: #15803d; font-weight: 600; }
.fail { color: #b91c1c; font-weight: 600; }
.na { color: var(--muted); }
.placeholder { color: var(--muted); font-style: italic; }
.warn { background: #fef3c7; border-left: 4px solid #f59e0b; padding: 6px 10px; margin: 6px 0; }
.good { background: #dcfce7; border-left: 4px solid #16a34a; padding: 6px 10px; margin: 6px 0; }
.note { background: #f3f4f6; border-left: 4px solid #9ca3af; padding: 6px 10px; margin: 6px 0; }
.figs { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
figure.fig { margin: 0; }
figure.fig img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 12px; max-width: 640px; }
tr.st-attention td.state { color: #b91c1c; font-weight: 600; }
tr.st-todo td.state { color: #b45309; }
tr.st-done td.state { color: #15803d; }
code { background: #f3f4f6; padding: 1px 4px; border-radius: 3px; }
footer { color: var(--muted); font-size: 12px; padding: 0 32px 24px 32px; }
"""


def fmt(x: object, digits: int = 4) -> str:
    """A number with ``digits`` decimals (never ``-0.0000``); ``n/a`` for None and NaN."""
    if x is None or isinstance(x, bool):
        return "n/a"
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return e(str(x))
    if math.isnan(v):
        return "n/a"
    return f"{0.0 if abs(v) < 0.5 * 10**-digits else v:.{digits}f}"


def iv(low: float | None, high: float | None) -> str:
    """``[low, high]``, or nothing when the interval is unknown."""
    if low is None or high is None:
        return ""
    if isinstance(low, float) and math.isnan(low):
        return ""
    return f"[{fmt(low)}, {fmt(high)}]"


def level(confidence: float) -> str:
    """The header of an interval column at ``confidence``: ``95% interval``."""
    return f"{confidence_label(confidence)} interval"


def mark(passed: bool | None) -> str:
    if passed is None:
        return '<span class="na">n/a</span>'
    return '<span class="pass">pass</span>' if passed else '<span class="fail">FAIL</span>'


def status_mark(status: str) -> str:
    """An audit check's status: pass, FAIL, or "not enough data" (never shown as a pass)."""
    if status == "pass":
        return mark(True)
    if status == "fail":
        return mark(False)
    return f'<span class="na">{e(status)}</span>'


def table(
    head: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    num: Sequence[int] = (),
    nowrap: Sequence[int] = (),
) -> str:
    """A ``<table>``: ``head`` is escaped here, the cells are HTML already (escape them).

    Columns in ``num`` are right-aligned numbers; cells in ``nowrap`` (intervals, a value
    with its mark) stay on one line. Numbers never wrap.
    """

    def cls(i: int) -> str:
        return ' class="num"' if i in num else (' class="nw"' if i in nowrap else "")

    h = "".join(f"<th{cls(i)}>{e(c)}</th>" for i, c in enumerate(head)) if any(head) else ""
    body = "".join(
        "<tr>" + "".join(f"<td{cls(i)}>{cell}</td>" for i, cell in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table>{f'<tr>{h}</tr>' if h else ''}{body}</table>"


def placeholder(text: str, command: str | None = None) -> str:
    cmd = f": run <code>{e(command)}</code>" if command else ""
    return f'<p class="placeholder">{e(text)}{cmd}</p>'


def page(
    *,
    name: str,
    subtitle: str,
    generated: str,
    version: str,
    sections: Sequence[tuple[str, str, str]],
) -> str:
    """The whole self-contained page: ``sections`` are (id, title, body HTML)."""
    parts = "".join(
        f'<section id="{sid}"><h2>{e(title)}</h2>{body}</section>' for sid, title, body in sections
    )
    nav = "".join(f'<a href="#{sid}">{e(t.split(":")[0])}</a>' for sid, t, _ in sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>loopml report: {e(name)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{e(name)}</h1><p>loopml report, {e(subtitle)}; generated "
        f"{e(generated)} UTC by loopml {e(version)}</p></header>"
        f"<nav>{nav}</nav><main>{parts}</main>"
        "<footer>Every number here is computed from counts stored with the evaluation; "
        "intervals are at the project's confidence level. This file needs no network."
        "</footer></body></html>\n"
    )
