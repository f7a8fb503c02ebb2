"""The data and labels commands through Typer's CliRunner (each a thin layer over the API)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from loopml.cli._common import CliState, set_state
from loopml.cli._data import register
from loopml.project import Project

# A command line run in the project: the arguments after `loopml -C <project>` in, the exit
# code and the output out.
Invoke = Callable[..., tuple[int, str]]


def make_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root(project: Path = typer.Option(None, "--project", "-C")) -> None:
        set_state(CliState(project=project))

    register(app)
    return app


@pytest.fixture
def run(project: Project) -> Invoke:
    runner = CliRunner()
    app = make_app()

    def invoke(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, ["-C", str(project.dir), *args])
        return result.exit_code, result.output

    return invoke


def test_data_commands(run: Invoke, tmp_path: Path) -> None:
    invoke = run
    a = tmp_path / "a.csv"
    b = tmp_path / "b.csv"
    pd.DataFrame(
        {"id": [1, 2, 3, 4], "x": [1.0, 2, 3, 4], "region": list("nnss"), "label": list("abab")}
    ).to_csv(a, index=False)
    pd.DataFrame(
        {"id": [2, 3, 4, 5], "x": [2.0, 3, 4, 5], "region": list("nssn"), "label": list("bbba")}
    ).to_csv(b, index=False)
    code, out = invoke("data", "add", str(a), "--name", "train", "--json")
    assert code == 0 and json.loads(out)["ref"] == "train@1"
    code, out = invoke("data", "add", str(a), "--name", "train")
    assert code == 0 and "already stored as" in out
    code, out = invoke("data", "add", str(b), "--name", "train")
    assert code == 0 and "train@2" in out
    code, out = invoke("data", "list", "--json")
    assert [d["ref"] for d in json.loads(out)] == ["train@1", "train@2"]
    code, out = invoke("data", "show", "train@2")
    assert code == 0 and "region" in out
    code, out = invoke("data", "split", "train@2", "--by", "random", "--test", "0.5", "--json")
    assert code == 0 and json.loads(out)["n_test"] == 2
    code, out = invoke("data", "diff", "train@1", "train@2", "--json")
    d = json.loads(out)
    assert (d["added"], d["removed"], d["relabelled"]) == (1, 1, 1)
    code, out = invoke("data", "validate", "train@2", "--against", "train@1")
    assert code == 0 and "range_violation" in out
    code, out = invoke("data", "show", "train@9")
    assert code == 2 and "train@9" in out


def test_validate_exit_code_and_bad_csv(run: Invoke, tmp_path: Path) -> None:
    invoke = run
    dup = tmp_path / "dup.csv"
    pd.DataFrame({"id": [1, 1, 2], "label": list("aab")}).to_csv(dup, index=False)
    assert invoke("data", "add", str(dup), "--name", "d")[0] == 0
    code, out = invoke("data", "validate", "d@1", "--json")
    assert code == 1 and json.loads(out)["has_errors"] is True
    bad = tmp_path / "bad.csv"
    bad.write_text("id,a,label\n1,2,x\n2,3,y\n3,4,5,6\n", encoding="utf-8")
    code, out = invoke("data", "add", str(bad), "--name", "bad")
    assert code == 2 and "bad.csv:4" in out.replace("\n", "")


def test_labels_commands(run: Invoke, tmp_path: Path) -> None:
    invoke = run
    data = tmp_path / "d.csv"
    pd.DataFrame({"id": [1, 2, 3, 4], "region": list("nnss"), "label": list("abab")}).to_csv(
        data, index=False
    )
    ann = tmp_path / "ann.csv"
    pd.DataFrame(
        {
            "item_id": [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4],
            "annotator": ["x", "y", "z"] * 4,
            "label": list("aaabbaabbbbb"),
        }
    ).to_csv(ann, index=False)
    assert invoke("data", "add", str(data), "--name", "train")[0] == 0
    code, out = invoke("labels", "add", str(ann), "--dataset", "train@1", "--json")
    assert code == 0 and json.loads(out)["n_annotators"] == 3
    code, out = invoke("labels", "agreement", "--json")
    assert code == 0 and json.loads(out)["n_items"] == 4
    code, out = invoke("labels", "agreement")
    assert code == 0 and "most disputed" in out
    code, out = invoke("labels", "hlp", "--json")
    assert code == 0 and json.loads(out)["scores"][0]["metrics"]["accuracy"]["estimate"] == 0.75
    code, out = invoke("labels", "hlp", "--gold", "label")
    assert code == 0 and "gold" in out


def test_data_add_split_and_validate_say_what_went_wrong(run: Invoke, tmp_path: Path) -> None:
    invoke = run
    n = 200
    x = [str(i / 10) for i in range(n)]
    x[5] = "n/a"
    path = tmp_path / "w.csv"
    pd.DataFrame(
        {
            "id": range(n),
            "x": x,
            "site": ["s1"] * 100 + ["s2"] * 100,
            "label": ["yes", "no"] * 100,
        }
    ).to_csv(path, index=False)
    code, out = invoke("data", "add", str(path), "--name", "train")
    assert code == 0 and "warning" in out and "numeric_text" in out
    assert "row 6: 'n/a'" in out and "--type x=float" in out
    code, out = invoke("data", "show", "train@1", "--json")
    assert json.loads(out)["columns"][3]["categories"] == ["no", "yes"]
    code, out = invoke("data", "split", "train@1", "--by", "group:site", "--test", "0.3")
    assert code == 0 and "asked for a 30% test part, got 50%" in out.replace("\n", " ")
    code, out = invoke("data", "validate", "train@1")
    assert "numeric_text" in out and "hint:" in out
    code, out = invoke("data", "add", str(path), "--name", "t2", "--type", "x=float")
    assert code == 2 and "1 cell(s) of column 'x' are not float" in out.replace("\n", " ")
    code, out = invoke("data", "add", str(path), "--name", "t2", "--type", "x")
    assert code == 2 and "COLUMN=TYPE" in out
