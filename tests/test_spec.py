from __future__ import annotations

from pathlib import Path

import pytest

from loopml.errors import ProjectNotFoundError, SpecError
from loopml.spec import load_spec, parse_constraint, render_spec


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "loopml.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_rendered_template_loads_for_every_task(tmp_path: Path, task: str) -> None:
    spec = load_spec(write(tmp_path, render_spec(name="p", task=task)))  # type: ignore[arg-type]
    assert spec.task == task
    assert spec.project.label == "label"
    assert spec.project.id == "id"
    assert {c.metric for c in spec.metric.satisficing} >= {"latency_p99_ms", "model_size_mb"}


def test_constraints_parse_and_check() -> None:
    c = parse_constraint("recall >= 0.9")
    assert (c.metric, c.op, c.threshold) == ("recall", ">=", 0.9)
    assert c.check(0.9) and not c.check(0.89) and not c.check(float("nan"))
    assert parse_constraint("latency_p99_ms<=50").check(49.0)


def _bad(tmp_path: Path, old: str, new: str) -> SpecError:
    text = render_spec(name="p", task="binary").replace(old, new)
    assert text != render_spec(name="p", task="binary"), "the replacement must change the spec"
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, text))
    return info.value


def _line_of(tmp_path: Path, needle: str) -> int:
    lines = (tmp_path / "loopml.toml").read_text().splitlines()
    return next(i for i, line in enumerate(lines, start=1) if needle in line)


def test_unknown_metric_names_file_line_value_and_choices(tmp_path: Path) -> None:
    err = _bad(tmp_path, 'optimizing = "f1"', 'optimizing = "f1_scroe"')
    assert err.where == f"{tmp_path / 'loopml.toml'}:{_line_of(tmp_path, 'f1_scroe')}"
    assert "f1_scroe" in err.message and "recall" in err.message


def test_metric_that_does_not_fit_the_task(tmp_path: Path) -> None:
    err = _bad(tmp_path, 'optimizing = "f1"', 'optimizing = "rmse"')
    assert "does not fit a binary task" in err.message
    assert err.where is not None and err.where.endswith(f":{_line_of(tmp_path, 'rmse')}")


def test_unknown_comparator(tmp_path: Path) -> None:
    err = _bad(tmp_path, '"recall >= 0.5"', '"recall => 0.5"')
    assert "unknown comparator '=>'" in err.message
    assert err.where is not None and err.where.endswith(f":{_line_of(tmp_path, 'recall =>')}")


def test_wrong_type(tmp_path: Path) -> None:
    err = _bad(tmp_path, "min_support = 30", 'min_support = "many"')
    assert "min_support" in err.message and "'many'" in err.message


def test_missing_label_column(tmp_path: Path) -> None:
    err = _bad(tmp_path, 'label = "label"', "")
    assert "project.label is missing" in err.message
    assert err.hint is not None and 'label = "label"' in err.hint


def test_unknown_archetype_and_task(tmp_path: Path) -> None:
    err = _bad(tmp_path, 'archetype = "software-2.0"', 'archetype = "magic"')
    assert "archetype" in err.message and "magic" in err.message
    err = _bad(tmp_path, 'task = "binary"', 'task = "ranking"')
    assert "task" in err.message and "ranking" in err.message


def test_bad_toml_names_the_line(tmp_path: Path) -> None:
    err = _bad(tmp_path, "[metric]", "[metric")
    assert err.where == f"{tmp_path / 'loopml.toml'}:{_line_of(tmp_path, '[metric')}"


def test_deployment_metric_cannot_be_optimized(tmp_path: Path) -> None:
    err = _bad(tmp_path, 'optimizing = "f1"', 'optimizing = "latency_p99_ms"')
    assert "deployment" in err.message


def test_no_project(tmp_path: Path) -> None:
    with pytest.raises(ProjectNotFoundError):
        load_spec(tmp_path / "nowhere" / "loopml.toml")


def test_a_misspelt_metric_gets_a_did_you_mean(tmp_path: Path) -> None:
    err = _bad(tmp_path, 'optimizing = "f1"', 'optimizing = "recal"')
    assert "did you mean 'recall'?" in err.message
    err = _bad(tmp_path, '"recall >= 0.5"', '"precison >= 0.5"')
    assert "did you mean 'precision'?" in err.message
    # a name close to nothing gets no guess
    err = _bad(tmp_path, 'optimizing = "f1"', 'optimizing = "qqqq"')
    assert "did you mean" not in err.message


@pytest.mark.parametrize(
    ("name", "task", "expected"),
    [
        ("recal", None, "recall"),
        ("f1_macor", "multiclass", "f1_macro"),
        ("precison_weighted", "multiclass", "precision_weighted"),
        ("rocauc", "binary", "roc_auc"),
        ("f1score", "binary", "f1"),  # an alias close to f1_score resolves to f1
        ("rmsee", "regression", "rmse"),
        ("recal", "regression", None),  # not a regression metric: no guess from other tasks
        ("zzzz", None, None),
    ],
)
def test_suggest_metric(name: str, task: str | None, expected: str | None) -> None:
    from loopml.spec import suggest_metric

    assert suggest_metric(name, task) == expected
