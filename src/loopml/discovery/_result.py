"""The results of discovery: plain data, stored as the payload of a ``discovery`` record."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from loopml.metrics import Estimate, flat
from loopml.slices import Expr
from loopml.tableview import Column, HtmlRepr, TableView, confidence_label

_LOSS_WORDS = {
    "zero_one": ("error rate", "errors"),
    "absolute": ("mean absolute error", "total absolute error"),
    "squared": ("mean squared error", "total squared error"),
}


#: the excess of a slice stored before excess was (frozen, so one shared value)
_NO_EXCESS = Estimate(0.0, 0.0, 0.0)


def interval_method(binary: bool) -> str:
    """The method of a discovered slice's intervals: Wilson for the zero-one loss (an error
    rate, ``binary``), Student t for a mean loss."""
    return "wilson" if binary else "student t"


@dataclass(frozen=True, slots=True)
class DiscoveredSlice(HtmlRepr):
    """One weak slice and its evidence.

    ``error_rate`` is the slice's error rate (or mean loss) with its interval at the
    result's ``confidence`` (Wilson for the zero-one loss, Student t for a mean loss).
    ``excess`` is what fixing it is worth: ``support * (error_rate - overall rate)``, the
    errors (or loss) above what the slice would have at the overall rate, with its
    interval at the same confidence (from the interval of the slice's rate).
    ``to_dict`` keeps the flat keys of the stored payload (``error_rate``, ``ci_low``,
    ``ci_high``, ``excess``, ``excess_low``, ``excess_high``).
    ``parents`` are broader slices whose excess this slice explains (shown with it, not as
    findings of their own).
    """

    rank: int
    expression: str
    predicates: tuple[str, ...]
    support: int
    errors: float
    error_rate: Estimate
    share: float
    score: float
    p_value: float
    p_adjusted: float
    significant: bool
    expr: Expr = field(repr=False, compare=False)
    excess: Estimate = _NO_EXCESS
    parents: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "expression": self.expression,
            "predicates": list(self.predicates),
            "support": self.support,
            "errors": self.errors,
            "error_rate": self.error_rate.value,
            "share": self.share,
            **flat(self.excess, "excess"),
            "score": self.score,
            "ci_low": self.error_rate.low,
            "ci_high": self.error_rate.high,
            "p_value": self.p_value,
            "p_adjusted": self.p_adjusted,
            "significant": self.significant,
            "parents": list(self.parents),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, method: str | None = None) -> DiscoveredSlice:
        """Rebuild a stored slice; ``method`` names its intervals' method (the payload does
        not store it: it follows from the result's loss, see :func:`interval_method`)."""
        from loopml.slices import parse

        skip = ("expr", "predicates", "parents", "error_rate", "excess")
        fields_ = {k: d[k] for k in cls.__dataclass_fields__ if k not in skip and k in d}
        excess = (
            Estimate(d["excess"], d.get("excess_low", 0.0), d.get("excess_high", 0.0), method)
            if "excess" in d
            else _NO_EXCESS
        )
        return cls(
            **fields_,
            error_rate=Estimate(d["error_rate"], d["ci_low"], d["ci_high"], method),
            excess=excess,
            predicates=tuple(d["predicates"]),
            parents=tuple(d.get("parents", ())),
            expr=parse(d["expression"]),
        )

    def describe(self) -> str:
        """The slice with the parents it explains: ``a and b (and its parent a)``."""
        if not self.parents:
            return self.expression
        word = "parent" if len(self.parents) == 1 else "parents"
        return f"{self.expression} (and its {word} " + "; ".join(self.parents) + ")"


@dataclass(frozen=True, slots=True)
class DiscoveryResult:
    """The significant weak slices, most excess error first, with the search's settings."""

    slices: tuple[DiscoveredSlice, ...]
    rows: int
    errors: float
    error_rate: float
    columns: tuple[str, ...]
    min_support: int
    max_predicates: int
    k: int
    alpha: float
    weight: float
    correction: str
    candidates_evaluated: int
    family_size: int = 0
    found: int = 0
    loss: str = "zero_one"
    bins: int = 5
    tails: tuple[float, ...] = ()
    max_values: int = 1000
    column_sets: int = 0
    column_sets_skipped: int = 0
    detectable: tuple[tuple[int, float | None], ...] = ()
    confidence: float = 0.95  # of the slices' intervals (error_rate, excess)

    @property
    def significant(self) -> tuple[DiscoveredSlice, ...]:
        """The reported slices whose adjusted p-value is at most ``alpha`` (all of them)."""
        return tuple(s for s in self.slices if s.significant)

    def __len__(self) -> int:
        return len(self.slices)

    @property
    def rate_name(self) -> str:
        return _LOSS_WORDS.get(self.loss, _LOSS_WORDS["zero_one"])[0]

    def table(self) -> TableView:
        """The slices as a table, most excess error first (a slice's parents, the broader
        slices whose excess it explains, under its expression); fits 80 columns, the slice
        expressions wrap but are never cut."""
        return TableView(
            "Significant weak slices, most excess error first",
            [
                Column("rank", "#", kind="count"),
                Column("slice", "slice"),
                Column("support", "support", kind="count"),
                Column("rate", self.rate_name, kind="interval", digits=4),
                Column("excess", "excess", kind="interval", priority=1),
                Column("p_adjusted", "adj. p", kind="number", digits=2, priority=2),
            ],
            [
                {
                    "rank": s.rank,
                    "slice": s.expression
                    + (f"\n(and its parent {'; '.join(s.parents)})" if s.parents else ""),
                    "support": s.support,
                    "rate": (s.error_rate.value, s.error_rate.low, s.error_rate.high),
                    "excess": (s.excess.value, s.excess.low, s.excess.high),
                    "p_adjusted": s.p_adjusted,
                }
                for s in self.slices
            ],
            confidence=self.confidence,
        )

    def search_summary(self) -> str:
        """What was searched, in one sentence."""
        family = self.family_size or self.candidates_evaluated
        skipped = (
            f", {self.column_sets_skipped} of {self.column_sets} column sets skipped by the "
            "pruning bound"
            if self.column_sets_skipped
            else ""
        )
        return (
            f"searched {self.rows:,} rows over {len(self.columns)} columns "
            f"({', '.join(self.columns[:8])}{', ...' if len(self.columns) > 8 else ''}), "
            f"up to {self.max_predicates} predicates, slices of at least {self.min_support} rows: "
            f"{family:,} slices in the family ({self.candidates_evaluated:,} counted{skipped}); "
            f"{self.correction} correction at alpha {self.alpha:g}; overall {self.rate_name} "
            f"{self.error_rate:.4g}"
        )

    def smallest_effect(self) -> str:
        """The smallest effect this table could have shown as significant."""
        parts = []
        for support, needed in self.detectable:
            if needed is None:
                parts.append(f"a slice of {support:,} rows could not be significant at all")
            else:
                parts.append(
                    f"a slice of {support:,} rows needs {_article(self.rate_name)} "
                    f"{self.rate_name} >= {needed:.4g}"
                )
        if not parts:
            return ""
        return (
            "; ".join(parts)
            + f" (overall {self.error_rate:.4g}) to be significant after the correction"
        )

    def nothing_found(self) -> str:
        """The message when no slice is significant: what was searched, what it could show."""
        return (
            "no slice is significantly worse than the overall "
            f"{self.rate_name}: {self.search_summary()}. Smallest detectable effect: "
            f"{self.smallest_effect()}."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "columns": list(self.columns),
            "min_support": self.min_support,
            "max_predicates": self.max_predicates,
            "k": self.k,
            "alpha": self.alpha,
            "weight": self.weight,
            "correction": self.correction,
            "candidates_evaluated": self.candidates_evaluated,
            "family_size": self.family_size,
            "found": self.found,
            "loss": self.loss,
            "bins": self.bins,
            "tails": list(self.tails),
            "max_values": self.max_values,
            "column_sets": self.column_sets,
            "column_sets_skipped": self.column_sets_skipped,
            "detectable": [{"support": s, "rate": r} for s, r in self.detectable],
            "slices": [s.to_dict() for s in self.slices],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DiscoveryResult:
        """Rebuild a stored result (the payload of a ``discovery`` record); records written
        before a field existed get its default."""
        special = ("slices", "columns", "tails", "detectable")
        fields_ = {k: d[k] for k in cls.__dataclass_fields__ if k not in special and k in d}
        return cls(
            **fields_,
            columns=tuple(d["columns"]),
            tails=tuple(d.get("tails", ())),
            detectable=tuple((int(x["support"]), x["rate"]) for x in d.get("detectable", ())),
            slices=tuple(
                DiscoveredSlice.from_dict(
                    x, method=interval_method(d.get("loss", "zero_one") == "zero_one")
                )
                for x in d["slices"]
            ),
        )

    def _repr_html_(self) -> str:
        head = f"<p>Discovered slices: {html.escape(self.search_summary())}.</p>"
        if not self.slices:
            return head + f"<p>{html.escape(self.nothing_found())}</p>"
        cols = (
            "rank",
            "slice",
            "support",
            self.rate_name,
            f"{confidence_label(self.confidence)} CI",
            "excess",
            f"excess {confidence_label(self.confidence)} CI",
            "score",
            "p",
            "p adj.",
        )
        rows = ["<tr>" + "".join(f"<th>{c}</th>" for c in cols) + "</tr>"]
        for s in self.slices:
            parents = (
                "<br><small>and its parent "
                + "; ".join(html.escape(p) for p in s.parents)
                + "</small>"
                if s.parents
                else ""
            )
            cells = (
                str(s.rank),
                f"<code>{html.escape(s.expression)}</code>{parents}",
                str(s.support),
                f"{s.error_rate.value:.4f}",
                _bracket(s.error_rate, 4),
                f"{s.excess.value:.1f}",
                _bracket(s.excess, 1),
                f"{s.score:.4f}",
                f"{s.p_value:.3g}",
                f"{s.p_adjusted:.3g}",
            )
            rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        more = (
            f"<p>{self.found - len(self.slices)} more significant slices not shown "
            f"(k={self.k}).</p>"
            if self.found > len(self.slices)
            else ""
        )
        return head + "<table>" + "".join(rows) + "</table>" + more


def _bracket(e: Estimate, digits: int) -> str:
    if e.low is None or e.high is None:
        return ""
    return f"[{e.low:.{digits}f}, {e.high:.{digits}f}]"


def _article(noun: str) -> str:
    return "an" if noun[:1].lower() in "aeiou" else "a"
