"""Data and label commands: data add/list/show/split/validate/diff, labels add/agreement/hlp."""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape

from loopml.cli._common import console, handles_errors, print_json, project_dir


def _g(x: Any) -> str:
    """A number rounded for a person (4 decimals), or n/a."""
    if isinstance(x, bool) or not isinstance(x, int | float) or x != x:
        return "n/a"
    return f"{x:.4f}"


__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``data`` and ``labels`` command groups to ``app``."""
    data_app = typer.Typer(
        help="Dataset versions, splits, validation and diffs.", no_args_is_help=True
    )
    data_app.command("add")(data_add)
    data_app.command("list")(data_list)
    data_app.command("show")(data_show)
    data_app.command("split")(data_split)
    data_app.command("validate")(data_validate)
    data_app.command("diff")(data_diff)
    labels_app = typer.Typer(
        help="Annotator label sets, agreement and human-level performance.",
        no_args_is_help=True,
    )
    labels_app.command("add")(labels_add)
    labels_app.command("agreement")(labels_agreement)
    labels_app.command("hlp")(labels_hlp)
    labels_app.command("export")(labels_export)
    labels_app.command("import")(labels_import)
    app.add_typer(data_app, name="data")
    app.add_typer(labels_app, name="labels")


_JSON = typer.Option(False, "--json", help="Print JSON (for scripts).")


@handles_errors
def data_add(
    file: str | None = typer.Argument(None, help="A Parquet, CSV or Arrow file, or an fsspec URL."),
    name: str | None = typer.Option(None, "--name", "-n", help="The dataset name, e.g. train."),
    from_production: bool = typer.Option(
        False,
        "--from-production",
        help="Append labeled production rows (--labels) to the champion's training dataset "
        "as its next version.",
    ),
    labels: str | None = typer.Option(
        None, "--labels", help="With --from-production: the label set (default: the newest)."
    ),
    base: str | None = typer.Option(
        None,
        "--base",
        help="With --from-production: the version to extend (default: the champion's).",
    ),
    test: float = typer.Option(
        0.2, "--test", help="With --from-production: the share of the new rows in test."
    ),
    unlabeled: bool = typer.Option(False, "--unlabeled", help="The data has no label column."),
    types: list[str] = typer.Option(
        [],
        "--type",
        help="Declare a column's type, COLUMN=TYPE (float, integer, text, boolean, date, "
        "timestamp); repeatable. Cells that do not parse are an error.",
    ),
    decimal: str = typer.Option(".", "--decimal", help="The CSV decimal separator: . or ,"),
    as_json: bool = _JSON,
) -> None:
    """Store FILE as a new immutable version of dataset NAME (or, with --from-production,
    the labeled production rows as the next version of the champion's dataset)."""
    from loopml.data import add_dataset
    from loopml.errors import InputError
    from loopml.project import open_project

    if from_production:
        if file is not None or name is not None:
            raise InputError(
                "--from-production takes its rows from the label set, not from FILE/--name",
                hint="run `loopml data add --from-production --labels production-labels@1`",
                where="FILE" if file is not None else "--name",
            )
        _from_production(labels, base, test, as_json)
        return
    if file is None or name is None:
        raise InputError(
            "data add needs FILE and --name (or --from-production)",
            hint="run `loopml data add rows.parquet --name train`",
            where="FILE" if file is None else "--name",
        )
    declared = _parse_types(types)
    with open_project(project_dir()) as project:
        version = add_dataset(
            project, file, name=name, unlabeled=unlabeled, types=declared, decimal=decimal
        )
    if as_json:
        print_json(version.to_dict())
        return
    verb = "already stored as" if version.existing else "stored"
    console.print(
        f"[green]{verb}[/] [bold]{version.ref}[/] ({version.id}): {version.n_rows} rows, "
        f"{len(version.columns)} columns, sha256 {version.content_hash[:12]}"
    )
    for w in version.warnings:
        console.print("  [yellow]warning[/] ", end="")
        console.print(f"{w['check']}: {w['message']}", markup=False)
        if w.get("hint"):
            console.print(f"    hint: {w['hint']}", markup=False)


def _from_production(labels: str | None, base: str | None, test: float, as_json: bool) -> None:
    from loopml.flywheel import dataset_from_production
    from loopml.project import open_project

    with open_project(project_dir()) as project:
        result = dataset_from_production(project, labels, base=base, test=test)
    if as_json:
        print_json(result.to_dict())
        return
    console.print(result.table())
    console.print(result.checks_table())
    console.print(
        f"next: loopml train --dataset {result.dataset}, then loopml promote MODEL: the gate "
        "compares it with the champion on the same test rows, slice by slice"
    )


@handles_errors
def labels_export(
    out: str = typer.Option(..., "--out", help="The file to write (tasks.json or tasks.csv)."),
    n: int = typer.Option(500, "--n", help="How many rows to pick."),
    strategy: str | None = typer.Option(
        None,
        "--strategy",
        help="The mix, e.g. uncertainty=0.3,weak=0.3,random=0.3,overlap=0.1 (default).",
    ),
    weak: list[str] = typer.Option(
        [],
        "--weak",
        help="A weak slice, e.g. region=north (repeatable; default: the monitor's "
        "recommended slice, else the analysis' top priorities).",
    ),
    since: str | None = typer.Option(
        None, "--since", help="Only rows since a date (2026-11-01) or the last 7d."
    ),
    window: str | None = typer.Option(None, "--window", help="Only the last window (1d)."),
    fmt: str = typer.Option("labelstudio", "--format", help="labelstudio or csv."),
    annotators: int = typer.Option(3, "--overlap-annotators", help="Annotators per overlap row."),
    include_labeled: bool = typer.Option(
        False, "--include-labeled", help="Also rows whose feedback label has arrived."
    ),
    seed: int = typer.Option(0, "--seed", help="The sampling seed."),
    as_json: bool = _JSON,
) -> None:
    """Pick logged predictions worth labeling (a stated mix of strategies, with weights)."""
    from loopml.flywheel import export_labels
    from loopml.project import open_project

    with open_project(project_dir()) as project:
        result = export_labels(
            project,
            n=n,
            mix=strategy,
            since=since,
            window=window,
            weak=weak or None,
            overlap_annotators=annotators,
            format=fmt,
            out=out,
            seed=seed,
            include_labeled=include_labeled,
        )
    if as_json:
        print_json(result.to_dict())
        return
    console.print(result.table())
    console.print(f"stored as {result.record_id}; label the rows, then: loopml labels import FILE")


@handles_errors
def labels_import(
    file: str = typer.Argument(
        ..., help="A Label Studio export (JSON, JSON_MIN) or a CSV of request_id, annotator, label."
    ),
    export: str | None = typer.Option(
        None, "--export", help="The export the labels answer (default: the newest)."
    ),
    fmt: str = typer.Option("auto", "--format", help="auto, labelstudio, json_min or csv."),
    name: str | None = typer.Option(
        None, "--name", help="Name of the production dataset and label set (default: production)."
    ),
    as_json: bool = _JSON,
) -> None:
    """Import labels of exported production rows: a label set, agreement, disagreements."""
    from loopml.flywheel import import_labels
    from loopml.project import open_project

    with open_project(project_dir()) as project:
        result = import_labels(project, file, export=export, format=fmt, name=name)
    if as_json:
        print_json(result.to_dict())
        return
    console.print(result.table())
    if result.disagreements:
        console.print(result.disagreements_table())
    console.print(
        f"next: loopml data add --from-production --labels {result.labelset} (a new "
        "version of the champion's dataset)"
    )


def _parse_types(items: list[str]) -> dict[str, str]:
    from loopml.errors import InputError

    out: dict[str, str] = {}
    for item in items:
        column, sep, kind = item.rpartition("=")
        if not sep or not column or not kind:
            raise InputError(
                f"--type {item!r} is not COLUMN=TYPE",
                hint="write e.g. --type price=float (repeat --type for more columns)",
                where="--type",
            )
        out[column] = kind
    return out


@handles_errors
def data_list(as_json: bool = _JSON) -> None:
    """List every dataset version."""
    from loopml.data import list_datasets
    from loopml.project import open_project

    with open_project(project_dir()) as project:
        versions = list_datasets(project)
    if as_json:
        print_json([v.to_dict() for v in versions])
        return
    if not versions:
        console.print("no dataset is stored yet; add one with `loopml data add FILE --name train`")
    for v in versions:
        console.print(
            f"{v.ref:<20} {v.id:<10} {v.n_rows:>10} rows  {len(v.columns):>4} cols  "
            f"{v.content_hash[:12]}  {v.created_at[:19]}"
        )


@handles_errors
def data_show(ref: str = typer.Argument(..., help="e.g. train@2"), as_json: bool = _JSON) -> None:
    """Show a dataset version and its schema."""
    from loopml.data import get_dataset
    from loopml.project import open_project

    with open_project(project_dir()) as project:
        v = get_dataset(project, ref)
    if as_json:
        print_json(v.to_dict())
        return
    console.print(f"[bold]{v.ref}[/] ({v.id}) {v.n_rows} rows, sha256 {v.content_hash}")
    console.print(f"  source {v.source}, id column {v.id_column}, label column {v.label_column}")
    for c in v.columns:
        extra = f" range {c.min}..{c.max}" if c.min is not None else ""
        if c.categories is not None:
            extra += f" categories {c.categories[:10]}"
        console.print(
            f"  {c.name:<24} {c.type:<16} nulls {c.n_null:<8} distinct {c.n_distinct}{extra}",
            markup=False,
        )


@handles_errors
def data_split(
    ref: str = typer.Argument(..., help="e.g. train@2"),
    by: str = typer.Option("random", "--by", help="random, stratified, group:COL or time:COL."),
    test: float = typer.Option(0.2, "--test", help="The test share."),
    seed: int = typer.Option(0, "--seed", help="The random seed."),
    as_json: bool = _JSON,
) -> None:
    """Split a version into train and test; the split is recorded in the lineage."""
    from loopml.data import split_dataset
    from loopml.project import open_project

    with open_project(project_dir()) as project:
        sp = split_dataset(project, ref, by=by, test=test, seed=seed)
    if as_json:
        print_json(sp.to_dict())
        return
    console.print(
        f"[green]split[/] {sp.ref} ({sp.id}) by {sp.by}: {sp.n_train} train, {sp.n_test} test"
    )
    for w in sp.warnings:
        console.print("  [yellow]warning[/] ", end="")
        console.print(w, markup=False)


@handles_errors
def data_validate(
    ref: str = typer.Argument(..., help="e.g. train@2"),
    against: str | None = typer.Option(None, "--against", help="A reference version."),
    holdout: str | None = typer.Option(None, "--holdout", help="A version to check leakage with."),
    as_json: bool = _JSON,
) -> None:
    """Validate a version; exit 1 when an error-level finding exists."""
    from loopml.data import validate_dataset
    from loopml.project import open_project

    with open_project(project_dir()) as project:
        report = validate_dataset(project, ref, against=against, holdout=holdout)
    if as_json:
        print_json(report.to_dict())
    else:
        c = report.counts()
        console.print(
            f"[bold]{report.dataset}[/]: {c['error']} error(s), {c['warning']} warning(s), "
            f"{c['info']} info"
        )
        colour = {"error": "red", "warning": "yellow", "info": "cyan"}
        for f in report.findings:
            text = f"{f.message}" + (f" (e.g. {f.examples})" if f.examples else "")
            console.print(
                f"  [{colour[f.severity]}]{f.severity:<7}[/] {escape(f.check)}: {escape(text)}"
            )
            if f.hint:
                console.print(f"           hint: {f.hint}", markup=False)
    if report.has_errors:
        raise typer.Exit(1)


@handles_errors
def data_diff(
    a: str = typer.Argument(..., help="The old version, e.g. train@1"),
    b: str = typer.Argument(..., help="The new version, e.g. train@2"),
    as_json: bool = _JSON,
) -> None:
    """Rows added, removed, changed and relabelled between two versions (by id)."""
    from loopml.data import diff_datasets
    from loopml.project import open_project

    with open_project(project_dir()) as project:
        d = diff_datasets(project, a, b)
    if as_json:
        print_json(d.to_dict())
        return
    console.print(
        f"[bold]{d.a} -> {d.b}[/] ({d.n_a} -> {d.n_b} rows): {d.added} added, {d.removed} "
        f"removed, {d.changed} changed ({d.relabelled} relabelled), {d.unchanged} unchanged"
    )
    for cls, counts in d.by_class.items():
        console.print(
            f"  class {cls}: " + ", ".join(f"{k} {v}" for k, v in counts.items()), markup=False
        )
    for old, new, n in d.relabel_transitions:
        console.print(f"  relabelled {old} -> {new}: {n}", markup=False)
    for col, values in d.by_slice.items():
        for val, counts in values.items():
            console.print(
                f"  {col} = {val}: " + ", ".join(f"{k} {v}" for k, v in counts.items()),
                markup=False,
            )


@handles_errors
def labels_add(
    file: str = typer.Argument(..., help="Long format: item id, annotator, label (, time)."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="The dataset version, e.g. train@2."),
    name: str | None = typer.Option(None, "--name", help="Label set name (default: dataset's)."),
    item_column: str | None = typer.Option(None, "--item-column"),
    annotator_column: str | None = typer.Option(None, "--annotator-column"),
    label_column: str | None = typer.Option(None, "--label-column"),
    as_json: bool = _JSON,
) -> None:
    """Store annotations from several annotators as a label set."""
    from loopml.data import add_labels
    from loopml.project import open_project

    with open_project(project_dir()) as project:
        ls = add_labels(
            project,
            file,
            dataset=dataset,
            name=name,
            item_column=item_column,
            annotator_column=annotator_column,
            label_column=label_column,
        )
    if as_json:
        print_json(ls.to_dict())
        return
    console.print(
        f"[green]stored[/] label set {ls.ref} ({ls.id}) on {ls.dataset}: {ls.n_annotations} "
        f"annotations of {ls.n_items} items by {len(ls.annotators)} annotators"
    )


@handles_errors
def labels_agreement(
    labelset: str | None = typer.Argument(None, help="A label set (default: the newest)."),
    top: int = typer.Option(10, "--top", help="How many disputed items to list."),
    as_json: bool = _JSON,
) -> None:
    """Annotator agreement: kappas, alpha, per class and slice, the most disputed items."""
    from loopml.data import label_agreement
    from loopml.project import open_project

    with open_project(project_dir()) as project:
        ag = label_agreement(project, labelset, k_disputed=top)
    if as_json:
        print_json(ag.to_dict())
        return
    r = ag.report
    console.print(
        f"[bold]{ag.labelset}[/]: {r.n_items} items, {r.n_annotators} annotators; "
        f"Krippendorff's alpha {r.krippendorff.alpha:.3f}, Fleiss' kappa {r.fleiss.kappa:.3f}, "
        f"mean pairwise Cohen's kappa {r.mean_pairwise_kappa:.3f}"
    )
    for p in r.pairs:
        console.print(
            f"  kappa {p.annotator_a} / {p.annotator_b}: {p.kappa:.3f} ({p.n_items} items)",
            markup=False,
        )
    for s in ag.slices:
        console.print(
            f"  {s.column} = {s.value}: alpha {s.krippendorff_alpha:.3f} ({s.n_items} items)",
            markup=False,
        )
    console.print("most disputed items (is the x -> y mapping clear?):")
    for d in r.most_disputed:
        console.print(
            f"  {d.item}: agreement {d.agreement:.2f}, labels {d.label_counts}", markup=False
        )


@handles_errors
def labels_hlp(
    labelset: str | None = typer.Argument(None, help="A label set (default: the newest)."),
    gold: str | None = typer.Option(None, "--gold", help="An adjudicated gold label column."),
    as_json: bool = _JSON,
) -> None:
    """Human-level performance: each annotator against the others (or gold); stored as HLP."""
    from loopml.data import compute_hlp
    from loopml.project import open_project

    with open_project(project_dir()) as project:
        h = compute_hlp(project, labelset, gold)
    if as_json:
        print_json(h.to_dict())
        return
    m = h.pooled.metrics[h.metric]
    console.print(
        f"[green]stored[/] HLP baseline {escape(h.ref)} ({h.id}) vs {escape(str(h.reference))}: "
        f"{h.metric} {_g(m['estimate'])} \\[{_g(m['low'])}, {_g(m['high'])}]"
    )
    for s in h.scores:
        where = "overall" if s.column is None else f"{s.column} = {s.value}"
        v = s.metrics[h.metric]
        console.print(
            f"  {s.who:<12} {where:<20} n {s.n:<6} {h.metric} {v['estimate']}", markup=False
        )
