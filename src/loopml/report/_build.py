"""Gather a project's results and assemble the self-contained HTML report."""

from __future__ import annotations

import html
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from loopml._lineage import loopml_version, utcnow
from loopml.errors import InputError, LoopmlError
from loopml.project import Project, open_project
from loopml.report._figures import (
    Figure,
    calibration_figure,
    confusion_figure,
    forest_figure,
    learning_curve_figure,
    pr_figure,
    priority_figure,
    roc_figure,
    scope_figure,
)
from loopml.store import Record

__all__ = ["Report", "build_report", "render_report"]

SECTIONS: tuple[tuple[str, str], ...] = (
    ("summary", "Project summary"),
    ("status", "Status board"),
    ("scope", "Scope assessment"),
    ("data", "Data and validation"),
    ("leaderboard", "Leaderboard: models, baselines and HLP"),
    ("metric", "Optimizing metric and constraints"),
    ("confusion", "Confusion matrix (residuals for regression)"),
    ("curves", "Precision-recall and ROC curves"),
    ("calibration", "Calibration"),
    ("slices", "Key slices with intervals"),
    ("priorities", "Error analysis: priorities"),
    ("discovered", "Discovered slices"),
    ("audit", "Audit"),
    ("gate", "Promotion gate and champion"),
    ("learning_curve", "Learning curve"),
)

_e = html.escape

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
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { color: #15803d; font-weight: 600; }
.fail { color: #b91c1c; font-weight: 600; }
.na { color: var(--muted); }
.placeholder { color: var(--muted); font-style: italic; }
.warn { background: #fef3c7; border-left: 4px solid #f59e0b; padding: 6px 10px; margin: 6px 0; }
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


@dataclass
class Report:
    """The rendered report: the HTML text, its figures and its section ids."""

    html: str
    figures: list[Figure] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)
    placeholders: dict[str, str] = field(default_factory=dict)
    evaluation: str | None = None

    def figure(self, name: str) -> Figure:
        for f in self.figures:
            if f.name == name:
                return f
        raise KeyError(name)

    def write(self, out: str | Path) -> Path:
        """Write the HTML to ``out`` atomically (a temporary file renamed into place)."""
        target = _check_out(out)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(self.html, encoding="utf-8")
            tmp.replace(target)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise InputError(
                f"cannot write the report to {str(target)!r}: {exc.strerror or exc}",
                hint="choose a path in a folder you may write to (--out DIR/report.html)",
                where=str(target),
            ) from None
        return target

    def _repr_html_(self) -> str:
        return self.html


def _check_out(out: str | Path) -> Path:
    target = Path(out).expanduser()
    if target.exists() and target.is_dir():
        raise InputError(
            f"the report path {str(target)!r} is a directory; expected a file name",
            hint=f"pass --out {target / 'report.html'}",
            where=str(target),
        )
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.exists():
        raise InputError(
            f"cannot write the report: the folder {str(parent)!r} does not exist",
            hint="create the folder first or choose another --out path",
            where=str(target),
        )
    if not parent.is_dir():
        raise InputError(
            f"cannot write the report: {str(parent)!r} is a file, not a folder",
            hint="choose an --out path inside a folder",
            where=str(target),
        )
    if not os.access(parent, os.W_OK):
        raise InputError(
            f"cannot write the report: the folder {str(parent)!r} is not writable",
            hint="choose an --out path in a folder you may write to",
            where=str(target),
        )
    return target


# --------------------------------------------------------------------------- formatting


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None or isinstance(x, bool):
        return "n/a"
    try:
        v = float(x)
    except (TypeError, ValueError):
        return _e(str(x))
    if math.isnan(v):
        return "n/a"
    return f"{0.0 if abs(v) < 0.5 * 10**-digits else v:.{digits}f}"  # never "-0.0000"


def _iv(low: Any, high: Any) -> str:
    if low is None or high is None:
        return ""
    if isinstance(low, float) and math.isnan(low):
        return ""
    return f"[{_fmt(low)}, {_fmt(high)}]"


def _mark(passed: bool | None) -> str:
    if passed is None:
        return '<span class="na">n/a</span>'
    return '<span class="pass">pass</span>' if passed else '<span class="fail">FAIL</span>'


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], *, num: Sequence[int] = ()) -> str:
    h = "".join(f"<th>{_e(c)}</th>" for c in head) if any(head) else ""
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{cell}</td>' if i in num else f"<td>{cell}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table>{f'<tr>{h}</tr>' if h else ''}{body}</table>"


def _placeholder(text: str, command: str | None = None) -> str:
    cmd = f": run <code>{_e(command)}</code>" if command else ""
    return f'<p class="placeholder">{_e(text)}{cmd}</p>'


# --------------------------------------------------------------------------- context


@dataclass
class _Ctx:
    project: Project
    ev: Any | None  # loopml.evaluation.Evaluation
    record: Record | None
    discovery: Any | None
    figures: list[Figure] = field(default_factory=list)
    placeholders: dict[str, str] = field(default_factory=dict)
    hlp: tuple[float | None, str] = (None, "")
    _loaded: dict[str, Any] = field(default_factory=dict)

    def load(self, eval_id: str) -> Any | None:
        if eval_id not in self._loaded:
            from loopml.evaluation import load_evaluation

            try:
                self._loaded[eval_id] = load_evaluation(self.project, eval_id)
            except (LoopmlError, KeyError, ValueError):
                self._loaded[eval_id] = None
        return self._loaded[eval_id]

    def missing(self, section: str, text: str, command: str | None = None) -> str:
        self.placeholders[section] = text + (f": run `{command}`" if command else "")
        return _placeholder(text, command)

    def add(self, fig: Figure) -> str:
        self.figures.append(fig)
        return fig.html()


def _hlp(project: Project) -> tuple[float | None, str]:
    """HLP on the optimizing metric, resolved once by :mod:`loopml.references`."""
    from loopml.references import project_reference

    ref = project_reference(project)
    return ref.hlp, ref.hlp_source


def _hlp_slices(ctx: _Ctx) -> dict[str, float]:
    """HLP per slice label (``column=value``), as the error analysis reads it."""
    if ctx.ev is None:
        return {}
    from loopml.analysis import resolve_reference

    return dict(resolve_reference(ctx.ev, project=ctx.project).hlp_slices)


# --------------------------------------------------------------------------- sections


def _summary(ctx: _Ctx) -> str:
    spec = ctx.project.spec
    p = spec.project
    rows = [
        ("project", _e(p.name)),
        ("problem", _e(p.problem) or '<span class="na">not stated</span>'),
        ("task", _e(p.task)),
        ("archetype", _e(p.archetype)),
        ("label / id", f"{_e(p.label)} / {_e(p.id)}"),
        ("directory", f"<code>{_e(str(ctx.project.dir))}</code>"),
    ]
    if ctx.ev is not None and ctx.record is not None:
        lin = ctx.record.lineage()
        model = ctx.ev.inputs.get("model")
        rows += [
            (
                "evaluation",
                f"{_e(ctx.record.id)} ({_e(ctx.record.ref)}), {ctx.ev.n:,} rows"
                + (f", model {_e(str(model))}" if model else ""),
            ),
            ("evaluated at", _e(str(lin.get("created_at")))),
            ("code version", _e(str(lin.get("git_commit") or "no git commit"))),
            ("data", _e(str(ctx.ev.inputs.get("data", "")))),
        ]
    counts = {
        kind: len(ctx.project.store.list(kind))
        for kind in ("dataset", "labelset", "baseline", "model", "evaluation", "audit")
    }
    rows.append(("store", ", ".join(f"{n} {k}(s)" for k, n in counts.items())))
    body = _table(["", ""], [[f"<b>{_e(k)}</b>", v] for k, v in rows])
    if ctx.ev is None:
        body += ctx.missing(
            "summary",
            "no evaluation yet",
            "loopml eval --data TEST --predictions PREDICTIONS",
        )
    return body


def _status(ctx: _Ctx) -> str:
    from loopml.status import project_status, status_html

    return status_html(project_status(ctx.project))


def _scope(ctx: _Ctx) -> str:
    from loopml.workflows.scope import latest_assessment

    try:
        scope = latest_assessment(ctx.project)
    except (LoopmlError, KeyError, ValueError, TypeError):
        scope = None
    if scope is None:
        return ctx.missing("scope", "not run yet", "loopml scope --answers answers.toml")
    a = scope.assessment
    rows = [
        ["<b>impact</b>", f"{a.impact:.1f} / 10"],
        ["<b>feasibility</b>", f"{a.feasibility:.1f} / 10"],
        *[[f"&nbsp;&nbsp;{_e(k)}", f"{10 * v:.1f} / 10"] for k, v in a.sections.items()],
        ["required accuracy", f"{a.required_accuracy:.2%}"],
        ["cost multiplier 1/(1-a)", f"x{a.cost_multiplier:,.0f}"],
        ["quadrant", _e(a.quadrant_label)],
    ]
    risks = "".join(f"<li>{_e(r)}</li>" for r in a.risks)
    checks = _table(
        ["", "archetype check", "reason"],
        [[_mark(c.passed), _e(c.name), _e(c.reason)] for c in a.checks],
    )
    fig = ctx.add(scope_figure(a.impact, a.feasibility, ctx.project.spec.project.name))
    return (
        f'<div class="figs"><div>{_table(["score", "value"], rows, num=(1,))}'
        f"<h3>Main risks</h3><ul>{risks}</ul></div>{fig}</div>"
        f"<h3>Archetype checks ({_e(a.archetype)})</h3>{checks}"
        f'<p class="na">assessment {_e(scope.record.id)} of {_e(scope.record.created_at)}</p>'
    )


def _data(ctx: _Ctx) -> str:
    store = ctx.project.store
    datasets = store.list("dataset")
    if not datasets:
        return ctx.missing("data", "no dataset version yet", "loopml data add FILE --name NAME")
    splits = {r.name: r for r in store.list("split")}
    rows = []
    for r in datasets:
        p = r.payload
        cols = p.get("schema") or p.get("columns") or []
        rows.append(
            [
                _e(r.ref),
                _e(r.id),
                f"{p['n_rows']:,}" if isinstance(p.get("n_rows"), int) else "",
                str(len(cols)) if isinstance(cols, list | dict) else "",
                _e(splits[r.ref].ref) if r.ref in splits else '<span class="na">none</span>',
                _e(r.created_at[:19]),
            ]
        )
    out = _table(["version", "id", "rows", "columns", "split", "added"], rows, num=(2, 3))
    labelsets = store.list("labelset")
    if labelsets:
        out += "<h3>Annotator label sets</h3>" + _table(
            ["label set", "id", "dataset", "annotators", "annotations"],
            [
                [
                    _e(r.ref),
                    _e(r.id),
                    _e(str(r.payload.get("dataset", ""))),
                    _e(str(len(r.payload.get("annotators", [])) or "")),
                    _e(str(r.payload.get("n_annotations", r.payload.get("n_rows", "")))),
                ]
                for r in labelsets
            ],
        )
    newest = datasets[-1]
    out += f"<h3>Validation of {_e(newest.ref)}</h3>"
    try:
        from loopml.data import validate_dataset

        report = validate_dataset(ctx.project, newest.ref)
    except LoopmlError as exc:
        return out + _placeholder(f"validation could not run: {exc.message}")
    counts = report.counts()
    out += (
        f"<p>{counts.get('error', 0)} error(s), {counts.get('warning', 0)} warning(s), "
        f"{counts.get('info', 0)} note(s).</p>"
    )
    if report.findings:
        out += _table(
            ["severity", "check", "column", "count", "message"],
            [
                [
                    f'<span class="{"fail" if f.severity == "error" else "na"}">'
                    f"{_e(f.severity)}</span>",
                    _e(f.check),
                    _e(f.column or ""),
                    f"{f.count:,}",
                    _e(f.message),
                ]
                for f in report.findings
            ],
            num=(3,),
        )
    return out


def _leaderboard(ctx: _Ctx) -> str:
    """The leaderboard read model (:func:`loopml.baselines.leaderboard`), rendered.

    The same rows, reference and signs as `loopml leaderboard`: each baseline once (its newest
    version), HLP as the project resolves it, deployment measures for models, and
    evaluations that scored training rows kept out of the ranking."""
    from loopml.baselines import leaderboard

    spec = ctx.project.spec
    metric = spec.metric.optimizing
    lb = leaderboard(ctx.project)
    if not lb.rows:
        return ctx.missing("leaderboard", "no model or baseline evaluated yet", "loopml baseline")
    cons = [str(c) for c in spec.metric.satisficing]
    rows = []
    # HLP is the reference line, not a competitor: it comes after the ranked rows
    ordered = [r for r in lb.rows if r.kind != "hlp"] + [r for r in lb.rows if r.kind == "hlp"]
    for r in ordered:
        checks = {c.get("constraint"): c for c in r.constraints}
        selected = (
            " <b>(this report)</b>"
            if ctx.record is not None and r.evaluation == ctx.record.id
            else ""
        )
        shown_name = r.ref if r.kind == "model" and r.ref else r.name
        name = "<b>human-level performance</b>" if r.kind == "hlp" else _e(shown_name)
        note = f" <span class='na'>({_e(r.note)})</span>" if r.note else ""
        cells = []
        for c in cons:
            got = checks.get(c)
            if got is None:
                cells.append(_mark(None))
            else:
                shown = _fmt(got.get("value"), 3) + " " if got.get("value") is not None else ""
                cells.append(shown + _mark(got.get("passed")))
        rows.append(
            [
                f"{name}{selected}{note}",
                _e(r.kind),
                _e(r.evaluation or r.id or ""),
                _fmt(r.value),
                _iv(r.low, r.high),
                *cells,
                _fmt(r.gap_to_hlp),
                _fmt(r.gap_to_best_baseline),
            ]
        )
    head = [
        "name",
        "kind",
        "evaluation",
        metric,
        "interval",
        *cons,
        "gap to HLP",
        "vs best baseline",
    ]
    warn = "".join(f"<p class='warn'>&#9888; {_e(w)}</p>" for w in lb.warnings)
    note = (
        f"<p>Sorted by <b>{_e(metric)}</b>, best first. <b>gap to HLP</b> is how far below "
        "human-level performance a row is (positive: room to improve); <b>vs best "
        "baseline</b> how far above the best baseline it is (positive: better), the same "
        "signs as `loopml leaderboard` and `loopml analyze`.</p>"
    )
    return warn + note + _table(head, rows, num=(3, len(head) - 2, len(head) - 1))


def _metric(ctx: _Ctx) -> str:
    if ctx.ev is None:
        return ctx.missing(
            "metric", "no evaluation yet", "loopml eval --data TEST --predictions PREDICTIONS"
        )
    ev = ctx.ev
    v = ev.verdict()
    out = "".join(f'<p class="warn">{_e(w)}</p>' for w in ev.warnings)
    out += (
        f"<p>Optimizing <b>{_e(v['optimizing'])}</b> = <b>{_fmt(v['value'])}</b> "
        f"{_iv(v['low'], v['high'])} ({ev.confidence:.0%} interval)</p>"
    )
    if v["constraints"]:
        out += "<h3>Satisficing constraints</h3>" + _table(
            ["", "constraint", "value", "interval", "note"],
            [
                [
                    _mark(c["passed"]),
                    _e(c["constraint"]),
                    _fmt(c.get("value")),
                    _iv(c.get("low"), c.get("high")),
                    _e(c.get("note", "")),
                ]
                for c in v["constraints"]
            ],
            num=(2,),
        )
    out += "<h3>All metrics</h3>" + _table(
        ["metric", "value", "interval", "method"],
        [
            [_e(k), _fmt(m.value), _iv(m.low, m.high), _e(m.method or "")]
            for k, m in ev.overall().items()
        ],
        num=(1,),
    )
    if ev.threshold_choice:
        tc = ev.threshold_choice
        metrics = ", ".join(f"{_e(k)} {_fmt(x)}" for k, x in tc.get("metrics", {}).items())
        out += f"<p><b>Chosen threshold</b> {_fmt(tc.get('threshold'))}: {metrics}</p>"
    if ev.comparison:
        out += "<h3>Difference from the earlier evaluation (this - that)</h3>" + _table(
            ["slice", "metric", "this", "that", "difference", "interval"],
            [
                [
                    _e(r["slice"]),
                    _e(r["metric"]),
                    _fmt(r["a"]),
                    _fmt(r["b"]),
                    _fmt(r["difference"]),
                    _iv(r["low"], r["high"]),
                ]
                for r in ev.comparison[:40]
            ],
            num=(2, 3, 4),
        )
    return out


def _residuals(ctx: _Ctx) -> str:
    """Regression: the residuals (prediction - label) overall and per key slice, from sums."""
    import numpy as np

    from loopml.report._figures import residual_figure, residual_summary

    ev = ctx.ev
    assert ev is not None
    rows = []
    fig = ""
    for g in [ev.counts.overall, *ev.counts.groups]:
        reg = g.regression
        if reg is None:
            continue
        n = np.asarray(reg.n).ravel()
        summary = residual_summary(
            n, np.ravel(reg.sum_err), np.ravel(reg.sum_sq_err), confidence=ev.confidence
        )
        mae = np.asarray(reg.sum_abs_err, dtype=float).ravel() / np.where(n > 0, n, np.nan)
        for i, label in enumerate(g.labels()):
            small = n[i] < ev.min_support
            rows.append(
                [
                    _e(label) + (" <span class='na'>(small)</span>" if small else ""),
                    f"{int(n[i]):,}",
                    _fmt(summary["mean"][i]),
                    _iv(summary["low"][i], summary["high"][i]),
                    _fmt(mae[i]),
                    _fmt(summary["rmse"][i]),
                ]
            )
        if g.definition is not None:
            fig += ctx.add(
                residual_figure(
                    g.labels(), reg.n, reg.sum_err, reg.sum_sq_err, confidence=ev.confidence
                )
            )
    if not rows:
        return _placeholder("this evaluation kept no regression sums")
    note = (
        "<p>Residual = prediction - label. A mean residual whose interval excludes 0 is a "
        f"bias on that slice ({ev.confidence:.0%} t interval from the sums of errors and of "
        "squared errors).</p>"
    )
    return (
        fig
        + note
        + _table(
            ["slice", "rows", "mean residual", "interval", "MAE", "RMSE"],
            rows,
            num=(1, 2, 4, 5),
        )
    )


def _confusion(ctx: _Ctx) -> str:
    if ctx.ev is None:
        return ctx.missing("confusion", "no evaluation yet", "loopml eval")
    ev = ctx.ev
    cm = ev.confusion_matrix()
    if ev.task == "regression":
        return _residuals(ctx)
    if cm is None:
        return _placeholder("no confusion counts in this evaluation")
    fig = ctx.add(confusion_figure(cm, ev.classes))
    per = ev.per_class()
    keys = [k for k in ("precision", "recall", "f1", "support") if per and k in per[0]]
    table = _table(
        ["class", *keys],
        [
            [
                _e(str(r["class"])),
                *[_fmt(r[k]) if k != "support" else f"{int(r[k]):,}" for k in keys],
            ]
            for r in per
        ],
        num=tuple(range(1, len(keys) + 1)),
    )
    return f'<div class="figs">{fig}<div><h3>Per class</h3>{table}</div></div>'


def _flat_scores(ev: Any) -> Any | None:
    from loopml.metrics import ScoreCounts

    scores = ev.counts.overall.scores
    if ev.task != "binary" or scores is None:
        return None
    return ScoreCounts(
        classes=scores.classes,
        edges=scores.edges,
        hist=scores.hist[0],
        score_sum=scores.score_sum[0],
        logloss_sum=scores.logloss_sum[0],
        brier_sum=scores.brier_sum[0],
        n=scores.n[0],
    )


def _curves(ctx: _Ctx) -> str:
    if ctx.ev is None:
        return ctx.missing("curves", "no evaluation yet", "loopml eval")
    flat = _flat_scores(ctx.ev)
    if flat is None:
        return _placeholder(
            "not available: ROC and precision-recall curves need a binary task with a 'score' "
            "column in the predictions"
        )
    from loopml.metrics import pr_curve, roc_curve

    overall = ctx.ev.overall()
    fpr, tpr, _ = roc_curve(flat)
    precision, recall, _ = pr_curve(flat)
    auc = overall["roc_auc"].value if "roc_auc" in overall else None
    ap = overall["average_precision"].value if "average_precision" in overall else None
    hist = np.asarray(flat.hist)
    n_pos = float(hist[1].sum())
    prevalence = n_pos / max(float(hist.sum()), 1.0)
    a = ctx.add(pr_figure(precision.tolist(), recall.tolist(), ap, prevalence))
    b = ctx.add(roc_figure(fpr.tolist(), tpr.tolist(), auc))
    return f'<div class="figs">{a}{b}</div>'


def _calibration(ctx: _Ctx) -> str:
    if ctx.ev is None:
        return ctx.missing("calibration", "no evaluation yet", "loopml eval")
    flat = _flat_scores(ctx.ev)
    if flat is None:
        return _placeholder("not available: calibration needs a binary task with scores")
    from loopml.metrics import calibration_table

    t = calibration_table(flat, 10)
    fig = ctx.add(
        calibration_figure(t.mean_predicted.tolist(), t.observed_rate.tolist(), t.count.tolist())
    )
    rows = [
        [
            f"[{t.edges[i]:.1f}, {t.edges[i + 1]:.1f}{']' if i == len(t.count) - 1 else ')'}",
            f"{int(t.count[i]):,}",
            _fmt(t.mean_predicted[i], 3),
            _fmt(t.observed_rate[i], 3),
        ]
        for i in range(len(t.count))
    ]
    overall = ctx.ev.overall()
    extra = ", ".join(
        f"{k} {_fmt(overall[k].value)}" for k in ("brier", "log_loss") if k in overall
    )
    table = _table(["score bin", "rows", "mean score", "observed rate"], rows, num=(1, 2, 3))
    return f'<div class="figs">{fig}<div>{table}<p>{_e(extra)}</p></div></div>'


def _slices(ctx: _Ctx) -> str:
    if ctx.ev is None:
        return ctx.missing("slices", "no evaluation yet", "loopml eval")
    ev = ctx.ev
    metric = ev.optimizing
    rows = [r for r in ev.slices() if metric in r.metrics]
    if not rows:
        return _placeholder(
            "no key slices: declare them under [slices] in loopml.toml and evaluate again"
        )
    hlp_slices = _hlp_slices(ctx)
    overall = ev.overall().get(metric)
    from loopml.evidence import metric_support, support_unit

    unit = support_unit(ev.task, metric)
    evidence: dict[tuple[str, str], int] = {}
    for g in ev.counts.groups:
        if g.definition is not None:
            for label, n in zip(g.labels(), metric_support(ev.task, metric, g), strict=True):
                evidence[(g.definition.name, label)] = int(n)

    def thin(r: Any) -> bool:
        return bool(r.too_small or evidence.get((r.group, r.slice), r.support) < ev.min_support)

    fig = ctx.add(
        forest_figure(
            [r.slice for r in rows],
            [r.metrics[metric].value for r in rows],
            [r.metrics[metric].low for r in rows],
            [r.metrics[metric].high for r in rows],
            metric=metric,
            overall=overall.value if overall is not None else None,
            too_small=[thin(r) for r in rows],
            reference=ctx.hlp[0],
            confidence=ev.confidence,
        )
    )
    table = _table(
        ["group", "slice", "rows", "share", metric, "interval", "HLP", "note"],
        [
            [
                _e(r.group),
                _e(r.slice),
                f"{r.support:,}",
                f"{r.share:.1%}",
                _fmt(r.metrics[metric].value),
                _iv(r.metrics[metric].low, r.metrics[metric].high),
                _fmt(hlp_slices.get(r.slice)),
                (
                    f"too small ({evidence.get((r.group, r.slice), r.support)} {unit} "
                    f"&lt; {ev.min_support})"
                    if thin(r)
                    else ""
                ),
            ]
            for r in rows
        ],
        num=(2, 3, 4, 6),
    )
    return fig + table


def _priorities(ctx: _Ctx) -> str:
    if ctx.ev is None:
        return ctx.missing("priorities", "not run yet", "loopml analyze")
    try:
        from loopml.status import priorities_for

        pr = priorities_for(ctx.ev, ctx.project)
    except ImportError:
        return ctx.missing("priorities", "not available in this installation", None)
    except LoopmlError as exc:
        return _placeholder(f"the error analysis could not run: {exc.message}")
    if not pr.rows:
        return _placeholder("no slice or rare class to rank")
    out = "".join(f'<p class="fail"><b>First:</b> {_e(str(f))}</p>' for f in pr.findings)
    out += f"<p>Reference: {_e(pr.reference.describe())}</p>"
    out += "".join(f'<p class="warn">{_e(w)}</p>' for w in pr.warnings)
    out += "<ul>" + "".join(f"<li>{_e(x)}</li>" for x in pr.readings[len(pr.findings) :]) + "</ul>"
    top = [r for r in pr.rows if r.gain is not None][:15]
    if top:
        out += ctx.add(
            priority_figure(
                [f"{r.rank}. {r.slice} ({r.metric})" for r in top],
                [r.gain for r in top],
                [r.gain_low for r in top],
                [r.gain_high for r in top],
                metric=pr.metric,
                confidence=ctx.ev.confidence,
            )
        )
    out += str(pr.table(30).to_html())  # the rows `loopml analyze` prints
    return out


def _stored_discovery(project: Any, eval_id: str) -> Any:
    """The newest stored ``loopml analyze --discover`` result for this evaluation."""
    from loopml.discovery import DiscoveryResult

    runs = project.store.list("discovery", name=eval_id)
    return DiscoveryResult.from_dict(runs[-1].payload) if runs else None


def _discovered(ctx: _Ctx) -> str:
    d = ctx.discovery
    if d is None:
        return ctx.missing(
            "discovered",
            "not run yet: find weak slices nobody named with `loopml analyze EVAL_ID --discover`",
        )
    if not d.slices:
        return _placeholder(d.nothing_found())
    head = f"<p>{_e(d.search_summary())}</p>"
    level = "95%"  # discovery's Wilson and t intervals are at 95% (loopml.discovery._stats)
    return head + _table(
        ["#", "slice", "rows", "error rate", level, "excess", f"excess {level}", "p adj."],
        [
            [
                str(s.rank),
                f"<code>{_e(s.expression)}</code>"
                + (
                    f" <span class='na'>(and its parent {_e(', '.join(s.parents))})</span>"
                    if s.parents
                    else ""
                ),
                f"{s.support:,}",
                _fmt(s.error_rate),
                _iv(s.ci_low, s.ci_high),
                _fmt(s.excess, 1),
                _iv(s.excess_low, s.excess_high),
                f"{s.p_adjusted:.3g}",
            ]
            for s in d.slices
        ],
        num=(2, 3, 5, 7),
    )


def _gate(ctx: _Ctx) -> str:
    """The newest gate decision as its table, and the champion alias's history."""
    from loopml.registry import Decision, model_history

    decisions = ctx.project.store.list("decision")
    if not decisions:
        return ctx.missing(
            "gate", "no model has been through the promotion gate", "loopml promote MODEL@V"
        )
    d = Decision.from_record(decisions[-1])
    verdict = "pass" if d.passed else "fail"
    out = f'<p class="{verdict}">{_e(d.summary())}</p>' + d.table().to_html()
    moves = model_history(ctx.project, "champion")
    if moves:
        out += "<h3>Champion history</h3>" + _table(
            ["move", "model", "previous", "decision", "action", "who", "when", "reason"],
            [
                [
                    _e(m.id),
                    _e(m.model or ""),
                    _e(m.previous or ""),
                    _e(m.decision or ""),
                    _e(m.action + (" (forced)" if m.forced else "")),
                    _e(m.who),
                    _e(m.when[:16].replace("T", " ")),
                    _e(m.reason),
                ]
                for m in moves
            ],
        )
    return out


def _audit(ctx: _Ctx) -> str:
    if ctx.record is None:
        return ctx.missing("audit", "not run yet", "loopml audit EVAL_ID")
    runs = ctx.project.store.list("audit", name=ctx.record.id)
    if not runs:
        return ctx.missing("audit", "not run yet", f"loopml audit {ctx.record.id}")
    rec = runs[-1]
    checks = rec.payload.get("checks", [])
    failed = [c for c in checks if not c.get("passed", True)]
    verdict = (
        '<p class="pass">all checks passed</p>'
        if not failed
        else f'<p class="fail">{len(failed)} of {len(checks)} check(s) failed</p>'
    )
    return f"<p>Audit {_e(rec.id)} of {_e(ctx.record.id)}</p>{verdict}" + _table(
        ["", "check", "rule", "evidence", "reason"],
        [
            [
                _mark(bool(c.get("passed"))),
                _e(str(c.get("name", ""))),
                _e(str(c.get("check", ""))),
                _e(str(c.get("message", ""))),
                _e(str(c.get("reason", ""))),
            ]
            for c in checks
        ],
    )


def _series(payload: Mapping[str, Any]) -> dict[str, list[Any]] | None:
    """Read a learning-curve payload: a list of points or parallel arrays (tolerant)."""
    pts = payload.get("points")
    if isinstance(pts, list) and pts and isinstance(pts[0], Mapping):

        def get(p: Mapping[str, Any], *keys: str) -> Any:
            for k in keys:
                if k in p:
                    return p[k]
            return None

        xs = [get(p, "n_train", "size", "n", "train_size", "rows") for p in pts]
        ys = [get(p, "value", "score", "test", "estimate") for p in pts]
        if any(x is None for x in xs) or any(y is None for y in ys):
            return None
        return {
            "sizes": xs,
            "values": ys,
            "low": [get(p, "low") for p in pts],
            "high": [get(p, "high") for p in pts],
            "train": [get(p, "train_value", "train", "train_score") for p in pts],
        }
    sizes = payload.get("sizes") or payload.get("train_sizes")
    values = payload.get("values") or payload.get("test") or payload.get("scores")
    if isinstance(sizes, list) and isinstance(values, list) and len(sizes) == len(values):
        n = len(sizes)
        return {
            "sizes": sizes,
            "values": values,
            "low": payload.get("low") or [None] * n,
            "high": payload.get("high") or [None] * n,
            "train": payload.get("train_values") or payload.get("train") or [None] * n,
        }
    return None


def _learning_curve(ctx: _Ctx) -> str:
    rec = ctx.project.store.latest("learning_curve")
    if rec is None:
        return ctx.missing("learning_curve", "not run yet", "loopml train --learning-curve")
    s = _series(rec.payload)
    if s is None or not s["sizes"]:
        return _placeholder(f"{rec.id} has no points this report can read")
    metric = str(rec.payload.get("metric", ctx.project.spec.metric.optimizing))
    train = s["train"] if any(v is not None for v in s["train"]) else None
    fig = ctx.add(
        learning_curve_figure(
            [float(x) for x in s["sizes"]],
            s["values"],
            s["low"],
            s["high"],
            metric=metric,
            train_values=train,
            reference=ctx.hlp[0],
            confidence=ctx.project.spec.metric.confidence,
        )
    )
    reading = rec.payload.get("reading") or rec.payload.get("readings")
    if isinstance(reading, list):
        reading = " ".join(str(x) for x in reading)
    text = f"<p>{_e(str(reading))}</p>" if reading else ""
    return f"<p>{_e(rec.id)} ({_e(rec.ref)})</p>{fig}{text}"


_BUILDERS: dict[str, Callable[[_Ctx], str]] = {
    "summary": _summary,
    "status": _status,
    "scope": _scope,
    "data": _data,
    "leaderboard": _leaderboard,
    "metric": _metric,
    "confusion": _confusion,
    "curves": _curves,
    "calibration": _calibration,
    "slices": _slices,
    "priorities": _priorities,
    "discovered": _discovered,
    "audit": _audit,
    "gate": _gate,
    "learning_curve": _learning_curve,
}


# --------------------------------------------------------------------------- entry points


def _resolve(project: Project | str | Path | None) -> tuple[Project, bool]:
    if isinstance(project, Project):
        return project, False
    return open_project(project), True


def render_report(
    project: Project | str | Path | None = None,
    eval_ref: str | None = None,
    *,
    discovery: Any | None = None,
) -> Report:
    """Gather everything stored for ``project`` and render the report (not written).

    ``eval_ref`` selects the evaluation (an id such as ``eval-3`` or ``name@version``;
    default: the newest). Raises :class:`~loopml.errors.NotFoundError` when it does not
    exist. ``discovery`` is an optional :class:`loopml.discovery.DiscoveryResult`.
    """
    proj, opened = _resolve(project)
    try:
        from loopml.evaluation import load_evaluation

        record: Record | None
        if eval_ref is not None:
            record = proj.store.get(eval_ref, kind="evaluation")
        else:
            record = proj.store.latest("evaluation")
        ev = load_evaluation(proj, record.id) if record is not None else None
        if discovery is None and record is not None:
            discovery = _stored_discovery(proj, record.id)
        ctx = _Ctx(project=proj, ev=ev, record=record, discovery=discovery)
        ctx.hlp = _hlp(proj)
        parts = []
        for sid, title in SECTIONS:
            body = _BUILDERS[sid](ctx)
            parts.append(f'<section id="{sid}"><h2>{_e(title)}</h2>{body}</section>')
        name = proj.spec.project.name
        nav = "".join(f'<a href="#{sid}">{_e(t.split(":")[0])}</a>' for sid, t in SECTIONS)
        generated = utcnow()[:19].replace("T", " ")
        sub = f"evaluation {record.id}" if record is not None else "no evaluation yet"
        page = (
            "<!DOCTYPE html>\n"
            '<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>loopml report: {_e(name)}</title><style>{CSS}</style></head><body>"
            f"<header><h1>{_e(name)}</h1><p>loopml report, {_e(sub)}; generated "
            f"{_e(generated)} UTC by loopml {_e(loopml_version())}</p></header>"
            f"<nav>{nav}</nav><main>{''.join(parts)}</main>"
            "<footer>Every number here is computed from counts stored with the evaluation; "
            "intervals are at the project's confidence level. This file needs no network."
            "</footer></body></html>\n"
        )
        return Report(
            html=page,
            figures=list(ctx.figures),
            sections=[sid for sid, _ in SECTIONS],
            placeholders=dict(ctx.placeholders),
            evaluation=record.id if record is not None else None,
        )
    finally:
        if opened:
            proj.close()


def build_report(
    project: Project | str | Path | None = None,
    eval_ref: str | None = None,
    out: str | Path = "report.html",
    *,
    discovery: Any | None = None,
) -> Path:
    """Render the report of ``project`` for ``eval_ref`` (default: the newest evaluation)
    and write it to ``out`` as one self-contained HTML file. Returns the path written.

    The output path is checked before any work: a missing or read-only folder, or a path
    that is a directory, raises :class:`~loopml.errors.InputError`.
    """
    _check_out(out)
    report = render_report(project, eval_ref, discovery=discovery)
    return report.write(out)
