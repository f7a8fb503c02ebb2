"""Classification inputs to counts: label and class mapping, the aggregation, skew warnings."""

from __future__ import annotations

from typing import Any

from loopml.engine import (
    Aggregate,
    Backend,
    GroupDef,
    aggregate_classification,
)
from loopml.errors import InputError, SchemaError
from loopml.evaluation._inputs import (
    MAX_SLICE_VALUES,
    _binary_classes,
    _check_many,
    _check_rows,
    _Inputs,
    _is_integer_or_bool,
    _label_check,
)
from loopml.evaluation._result import _PROBA_TOL, Evaluation
from loopml.metrics import (
    resolve_metric,
)
from loopml.metrics._catalog import Task
from loopml.slices import quote_identifier as _q
from loopml.slices import sql_literal


def _classification(
    con: Backend,
    inp: _Inputs,
    *,
    task: Task,
    label: str,
    id_col: str,
    groups: list[GroupDef],
    positive_class: Any,
    threshold: float,
    bins: int,
    slice_bins: int,
    warnings: list[str],
) -> tuple[Aggregate, list[Any]]:
    cols = inp.columns
    where = inp.info.get("predictions") or inp.info["data"]
    proba_cols = [c for c in cols if c.startswith("proba_")]
    has_pred = "prediction" in cols
    if task == "binary":
        if not has_pred and "score" not in cols:
            raise SchemaError(
                "the predictions have neither a 'prediction' nor a 'score' column",
                hint="a binary predictions table needs the id and 'prediction' and/or 'score' "
                "(the positive class probability)",
                where=where,
            )
        score_sql = None
        checks: list[tuple[str, str, str]] = [_label_check(label)]
        if "score" in cols:
            s = '"score"'
            checks.append(
                (
                    f"{s} IS NULL OR isnan(CAST({s} AS DOUBLE)) OR isinf(CAST({s} AS DOUBLE))",
                    "have a missing, NaN or infinite score",
                    "scores must be finite probabilities of the positive class",
                )
            )
            checks.append(
                (
                    f"{s} < 0 OR {s} > 1",
                    "have a score outside [0, 1]",
                    "scores must be probabilities of the positive class; apply a sigmoid "
                    "to raw margins",
                )
            )
            score_sql = s
        if has_pred:
            checks.append(('"prediction" IS NULL', "have no prediction", "predict every row"))
        found = _check_many(
            con, inp, checks, id_col, distinct=[label] + (["prediction"] if has_pred else [])
        )
        classes = _binary_classes(found, positive_class, label)
        pos = sql_literal(classes[1])
        types = inp.columns

        def indicator(col: str) -> str:
            # 0/1 integers and booleans already are the indicator: a cast is cheaper than CASE
            if list(classes) in ([0, 1], [False, True]) and _is_integer_or_bool(types[col]):
                return f"CAST({_q(col)} AS INTEGER)"
            return f"CASE WHEN {_q(col)} = {pos} THEN 1 ELSE 0 END"

        y_sql = indicator(label)
        p_sql = (
            indicator("prediction")
            if has_pred
            else f'CASE WHEN "score" >= {float(threshold)!r} THEN 1 ELSE 0 END'
        )
        if not has_pred:
            warnings.append(f"no 'prediction' column: predicted positive when score >= {threshold}")
        agg = aggregate_classification(
            con,
            inp.view,
            y_sql=y_sql,
            p_sql=p_sql,
            classes=classes,
            groups=groups,
            score_sql=score_sql,
            bins=bins,
            slice_bins=slice_bins,
            max_values=MAX_SLICE_VALUES,
        )
        return agg, classes
    # multiclass
    found = _check_many(
        con,
        inp,
        [_label_check(label)],
        id_col,
        distinct=[label] + (["prediction"] if has_pred else []),
    )
    if proba_cols:
        classes_txt = [c.removeprefix("proba_") for c in proba_cols]
        _unseen_label_classes(con, inp, label, classes_txt)
        unknown = [v for v in found if str(v) not in classes_txt]
        if unknown:
            raise InputError(
                f"predictions outside the classes of the proba_* columns {classes_txt}: "
                f"{unknown[:10]}",
                hint="a predictions table needs a proba_<class> column for every class it "
                "predicts; write the predictions again",
                where=where,
            )
        by_txt = {str(v): v for v in found}
        classes = [by_txt.get(t, t) for t in classes_txt]
        for c in proba_cols:
            q = _q(c)
            _check_rows(
                con,
                inp,
                f"{q} IS NULL OR isnan(CAST({q} AS DOUBLE)) OR "
                f"isinf(CAST({q} AS DOUBLE)) OR {q} < 0 OR {q} > 1",
                f"have a missing, non-finite or out-of-range {c!r}",
                "probabilities must be finite numbers in [0, 1]",
                id_col,
            )
        total = " + ".join(_q(c) for c in proba_cols)
        _check_rows(
            con,
            inp,
            f"abs(({total}) - 1) > {_PROBA_TOL}",
            f"have probabilities that do not sum to one (tolerance {_PROBA_TOL})",
            "normalize each row's proba_* columns (e.g. a softmax)",
            id_col,
        )
        proba_sqls = [_q(c) for c in proba_cols]
    else:
        if not has_pred:
            raise SchemaError(
                "the predictions have neither a 'prediction' column nor proba_<class> columns",
                hint="a multiclass predictions table needs the id and 'prediction' and/or one "
                "proba_<class> column per class",
                where=where,
            )
        classes = found
        proba_sqls = None
    if len(classes) < 2:
        raise InputError(
            f"only one class present ({classes}); nothing to tell apart",
            hint="evaluate on data with at least two classes",
            where=where,
        )

    def code(col: str) -> str:
        cases = " ".join(
            f"WHEN CAST({_q(col)} AS VARCHAR) = {sql_literal(str(c))} THEN {i}"
            for i, c in enumerate(classes)
        )
        return f"CASE {cases} END"

    y_sql = code(label)
    if has_pred:
        p_sql = code("prediction")
    else:
        assert proba_sqls is not None
        p_sql = (
            "CASE "
            + " ".join(
                f"WHEN {p} = greatest({', '.join(proba_sqls)}) THEN {i}"
                for i, p in enumerate(proba_sqls)
            )
            + " END"
        )
        warnings.append("no 'prediction' column: predicted the class with the highest probability")
    agg = aggregate_classification(
        con,
        inp.view,
        y_sql=y_sql,
        p_sql=p_sql,
        classes=classes,
        groups=groups,
        proba_sqls=proba_sqls,
        bins=bins,
        slice_bins=slice_bins,
        max_values=MAX_SLICE_VALUES,
    )
    return agg, classes


def _unseen_label_classes(con: Backend, inp: _Inputs, label: str, classes: list[str]) -> None:
    """Refuse labels of a class the predictions have no proba_<class> column for: the model
    never saw that class in training, so it cannot predict it (the predictions file is not
    malformed)."""
    q = _q(label)
    known = ", ".join(sql_literal(c) for c in classes)
    rows = con.rows(
        f'SELECT CAST({q} AS VARCHAR) AS c, count(*) FROM "{inp.view}" '
        f"WHERE {q} IS NOT NULL AND CAST({q} AS VARCHAR) NOT IN ({known}) "
        "GROUP BY 1 ORDER BY 2 DESC, 1"
    )
    if not rows:
        return
    total = sum(int(n) for _, n in rows)
    listed = ", ".join(f"{c!r} ({int(n)} row{'s' if n != 1 else ''})" for c, n in rows[:10])
    more = f" and {len(rows) - 10} more" if len(rows) > 10 else ""
    raise InputError(
        f"the labels hold {len(rows)} class(es) the model never saw in training: {listed}"
        f"{more}; {total} of {inp.n} rows. Its predictions have proba_* columns only for "
        f"{classes}",
        hint="train on data that has every class (add labelled rows of the missing class to the "
        "training data, e.g. with a stratified split: `loopml data split --by stratified`), or "
        "leave those rows out of the evaluation data",
        where=f"column {label!r} of {inp.info['data']}",
    )


def _skew_warnings(ev: Evaluation) -> list[str]:
    """The warnings skewed classes call for: prefer precision, recall, F1 or average
    precision to accuracy, and the accuracy paradox when accuracy is the optimizing metric."""
    balance = ev.class_balance()
    if balance is None or not balance["skewed"]:
        return []
    out = [
        f"skewed data: the rarest class {balance['rarest_class']!r} is "
        f"{balance['rarest_share']:.1%} of rows (under 10%); prefer precision, recall, F1 "
        "or average precision to accuracy"
    ]
    if resolve_metric(ev.optimizing) is not None and ev.optimizing in ("accuracy", "error_rate"):
        base = balance["majority_baseline"]["accuracy"]
        out.append(
            f"accuracy paradox: a model that always predicts {balance['majority_class']!r} "
            f"scores accuracy {base:.4f} here; accuracy is a poor optimizing metric on this data"
        )
    return out
