"""Real data must not break or bend silently (issues 10, 11, 12): yes/no labels stay text,
numbers stored as text are reported, split checks, empty and non-CSV files, wide tables and
every table kind ``evaluate`` accepts.

Right answers come from pandas (``read_csv``, ``to_numeric``) and scikit-learn (``f1_score``,
``train_test_split``); every check also has a false-alarm test on data where nothing is wrong.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split

from loopml.data import add_dataset, load_dataset, split_dataset, validate_dataset
from loopml.errors import InputError
from loopml.project import Project, init_project, open_project


def _binary_project(root: Path, extra_project: str = "", baselines: str = "") -> Project:
    init_project(root, task="binary").close()
    spec = root / "loopml.toml"
    text = spec.read_text()
    text = text.replace('id = "id"', 'id = "id"\n' + extra_project, 1)
    text = text.replace("[targets]", baselines + "\n[targets]")
    spec.write_text(text)
    return open_project(root)


def _yes_no_csv(path: Path, n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    df = pd.DataFrame(
        {
            "id": np.arange(n),
            "a": a.round(6),
            "flag": rng.choice(["t", "f"], n),
            "answer": rng.choice(["True", "False"], n),
            "label": np.where(a + rng.normal(0, 0.8, n) > 0.3, "yes", "no"),
        }
    )
    df.to_csv(path, index=False)
    return df


# ------------------------------------------------------------------------------ yes / no


def test_yes_no_labels_stay_text_through_add_split_and_rules(tmp_path: Path) -> None:
    from loopml.baselines import run_baselines

    rules = (
        '[baselines]\ndummy = []\nquick = []\n[baselines.rules]\nwhen = [["a > 0.3", "yes"]]\n'
        'default = "no"\n'
    )
    p = _binary_project(tmp_path / "p", 'positive_class = "yes"', rules)
    try:
        df = _yes_no_csv(tmp_path / "yn.csv")
        v = add_dataset(p, tmp_path / "yn.csv", name="train")
        label = v.column("label")
        assert (label.kind, label.categories) == ("text", ["no", "yes"])
        # boolean-looking features are kept as written too
        assert v.column("flag").categories == ["f", "t"]
        assert v.column("answer").categories == ["False", "True"]
        split_dataset(p, v.ref, by="stratified", seed=0)
        run = run_baselines(p)
        test = load_dataset(p, v.ref, split="test").to_pandas()
        expected = f1_score(test["label"], np.where(test["a"] > 0.3, "yes", "no"), pos_label="yes")
        got = run.get("rules").value
        assert got is not None and got.value == pytest.approx(expected, abs=1e-12)
        assert set(test["label"]) == set(df["label"]) == {"yes", "no"}
    finally:
        p.close()


def test_positive_class_true_keeps_a_boolean_label(tmp_path: Path) -> None:
    p = _binary_project(tmp_path / "p", "positive_class = true")
    try:
        path = tmp_path / "b.csv"
        path.write_text("id,x,label\n1,yes,true\n2,no,false\n3,yes,true\n", encoding="utf-8")
        v = add_dataset(p, path, name="train")
        assert v.column("label").kind == "boolean"
        assert v.column("label").categories == [False, True]
        assert v.column("x").categories == ["no", "yes"]  # features stay as written
    finally:
        p.close()


# ------------------------------------------------------------------- numbers stored as text


def _numbers_csv(path: Path, n: int = 1000) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    x = rng.normal(10, 2, n).round(3).astype(str).astype(object)
    x[[17, 402, 951]] = ["n/a", "12..5", "?"]
    price = np.char.replace(rng.uniform(1, 99, n).round(2).astype(str), ".", ",")
    zips = [f"{rng.integers(10000, 99999)}" if i % 3 else f"SW{i % 9}A" for i in range(n)]
    words = rng.choice(["red", "green", "blue", "4", "7"], n)
    df = pd.DataFrame(
        {
            "id": np.arange(n),
            "x": x,
            "price": price,
            "zip": zips,
            "note": words,
            "y": rng.normal(size=n).round(4),
            "label": rng.choice(["a", "b", "c"], n),
        }
    )
    df.to_csv(path, index=False)
    return df


def test_numbers_stored_as_text_are_reported_at_add_and_validate(
    project: Project, tmp_path: Path
) -> None:
    path = tmp_path / "nums.csv"
    df = _numbers_csv(path)
    v = add_dataset(project, path, name="train")
    assert v.column("x").kind == "text"  # what the file holds; reported, not coerced
    # the right answer from pandas: the cells to_numeric cannot parse
    bad = df.index[pd.to_numeric(df["x"], errors="coerce").isna()].tolist()
    assert bad == [17, 402, 951]
    warned = {w["column"]: w for w in v.warnings}
    assert set(warned) == {"x", "price"}
    assert warned["x"]["n_bad"] == 3 and warned["x"]["count"] == 3
    assert [e["row"] for e in warned["x"]["examples"]] == [i + 1 for i in bad]
    assert [e["value"] for e in warned["x"]["examples"]] == ["n/a", "12..5", "?"]
    report = validate_dataset(project, v.ref)
    found = {f.column: f for f in report.by_check("numeric_text")}
    assert set(found) == {"x", "price"}  # no false alarm on zip codes, words or numbers
    x = found["x"]
    assert (x.severity, x.count) == ("warning", 3)
    assert "3 cell(s) are not numbers" in x.message and "row 18: 'n/a'" in x.message
    assert x.hint is not None and "--type x=float" in x.hint
    price = found["price"]
    assert price.count == len(df) and "decimal comma" in price.message
    assert price.hint is not None and "--decimal ," in price.hint


def test_declared_decimal_and_types_parse_or_name_the_bad_cells(
    project: Project, tmp_path: Path
) -> None:
    path = tmp_path / "nums.csv"
    df = _numbers_csv(path)
    with pytest.raises(InputError) as info:
        add_dataset(project, path, name="train", types={"x": "float"})
    assert "3 cell(s) of column 'x' are not float" in info.value.message
    assert "row 18: 'n/a'" in info.value.message and str(path) in str(info.value.where)
    assert project.store.list("dataset") == []
    clean = df.drop(index=[17, 402, 951])
    clean.to_csv(path, index=False)
    v = add_dataset(project, path, name="train", types={"x": "float"})
    assert v.column("x").kind == "float"
    assert [w["column"] for w in v.warnings] == ["price"]  # still written with commas
    np.testing.assert_allclose(load_dataset(project, v.ref)["x"], clean["x"].astype(float))
    # a European file: ';' between fields, ',' before decimals
    euro = tmp_path / "euro.csv"
    clean[["id", "price", "label"]].to_csv(euro, index=False, sep=";")
    e = add_dataset(project, euro, name="euro", decimal=",")
    assert e.column("price").kind == "float" and e.warnings == []
    theirs = pd.read_csv(euro, sep=";", decimal=",")
    np.testing.assert_allclose(load_dataset(project, e.ref)["price"], theirs["price"])
    with pytest.raises(InputError, match="not one loopml knows"):
        add_dataset(project, path, name="t2", types={"x": "floaty"})
    with pytest.raises(InputError, match="named in the declared"):
        add_dataset(project, path, name="t2", types={"nope": "float"})


def test_a_bad_cell_beyond_the_sniffer_sample_is_text_and_reported(
    project: Project, tmp_path: Path
) -> None:
    rows = ["id,x,label"] + [f"{i},{i * 0.5},a" for i in range(30000)] + ["30000,abc,b"]
    path = tmp_path / "late.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    v = add_dataset(project, path, name="train")
    assert v.n_rows == 30001 and v.column("x").kind == "text"
    (w,) = v.warnings
    assert w["column"] == "x" and w["examples"] == [{"row": 30001, "value": "abc"}]


def test_no_numeric_text_finding_on_clean_data(project: Project, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 500
    pd.DataFrame(
        {
            "id": [f"{i:05d}" for i in range(n)],  # numeric-looking ids are not checked
            "x": rng.normal(size=n),
            "postcode": [f"{rng.integers(10, 99)}{'AB'[i % 2]}{i % 7}" for i in range(n)],
            "text": rng.choice(["it costs 5", "fine", "n/a", "12 apples"], n),
            "label": rng.choice(["1", "2"], n),  # class names written as numbers: fine
        }
    ).to_csv(tmp_path / "ok.csv", index=False)
    v = add_dataset(project, tmp_path / "ok.csv", name="ok", types={"id": "text"})
    assert v.warnings == []
    assert validate_dataset(project, v.ref).by_check("numeric_text") == []


# ------------------------------------------------------------------------------- splits


def _classes_frame(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(2)
    label = rng.choice(["a", "b"], n).astype(object)
    label[-3:] = "c"  # the latest three rows are the only ones of class c
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "x": rng.normal(size=n),
            "region": rng.choice(["n", "s"], n),
            "day": pd.date_range("2024-01-01", periods=n, freq="D"),
            "label": label,
        }
    )


def test_a_class_only_in_the_test_part_is_warned_and_an_error(project: Project) -> None:
    v = add_dataset(project, _classes_frame(), name="train")
    sp = split_dataset(project, v.ref, by="time:day", test=0.1, seed=0)
    assert len(sp.warnings) == 1
    assert "class 'c' has 3 row(s) in the test part and none in train" in sp.warnings[0]
    report = validate_dataset(project, v.ref)
    (f,) = report.by_check("unseen_test_class")
    assert (f.severity, f.count, f.column, f.examples) == ("error", 3, "label", [197, 198, 199])
    assert report.has_errors and f.hint is not None and "stratified" in f.hint
    # false alarm: a stratified split puts c in train too
    strat = split_dataset(project, v.ref, by="stratified", test=0.1, seed=0)
    assert strat.warnings == []
    assert validate_dataset(project, v.ref).by_check("unseen_test_class") == []


def test_stratifying_a_continuous_label_is_refused(tmp_path: Path) -> None:
    init_project(tmp_path / "r", task="regression").close()
    p = open_project(tmp_path / "r")
    try:
        rng = np.random.default_rng(0)
        df = pd.DataFrame({"id": np.arange(300), "label": rng.normal(size=300)})
        df["bin"] = pd.qcut(df["label"], 4, labels=["q1", "q2", "q3", "q4"]).astype(str)
        v = add_dataset(p, df, name="train")
        with pytest.raises(InputError) as info:
            split_dataset(p, v.ref, by="stratified")
        assert "continuous" in info.value.message and "300 distinct" in info.value.message
        assert "--by random" in (info.value.hint or "")
        # the suggested fix works and keeps the bins' shares like scikit-learn
        sp = split_dataset(p, v.ref, by="stratified:bin", test=0.2, seed=0)
        test = load_dataset(p, v.ref, split="test").to_pandas()
        _, sk = train_test_split(df, test_size=0.2, stratify=df["bin"], random_state=0)
        assert sp.n_test == len(sk) == 60
        assert test["bin"].value_counts().to_dict() == sk["bin"].value_counts().to_dict()
        # false alarm: float labels that are whole numbers are classes, not continuous
        df2 = pd.DataFrame({"id": np.arange(100), "label": np.tile([0.0, 1.0], 50)})
        v2 = add_dataset(p, df2, name="whole")
        assert split_dataset(p, v2.ref, by="stratified", test=0.2).n_test == 20
    finally:
        p.close()


def test_a_group_split_far_from_the_asked_share_says_so(project: Project) -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "id": np.arange(200),
            "site": np.repeat(["s1", "s2"], 100),
            "many": np.repeat(np.arange(100), 2),
            "label": rng.choice(["a", "b"], 200),
        }
    )
    v = add_dataset(project, df, name="train")
    sp = split_dataset(project, v.ref, by="group:site", test=0.3, seed=0)
    assert sp.n_test == 100
    assert len(sp.warnings) == 1
    assert "asked for a 30% test part, got 50% (100 of 200 rows)" in sp.warnings[0]
    assert "2 group(s), 1 in test" in sp.warnings[0]
    # false alarm: 100 groups of 2 rows reach the asked share
    fine = split_dataset(project, v.ref, by="group:many", test=0.3, seed=0)
    assert fine.n_test == 60 and fine.warnings == []


# ------------------------------------------------------------------- empty and non-CSV files


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "is empty (0 bytes)"),
        (b"\n\n  \n", "is empty (only blank lines)"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "it is a PNG image"),
        (b"PK\x03\x04" + os.urandom(500), "ZIP archive"),
        (bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8)), "binary"),
    ],
)
def test_empty_and_non_csv_files_are_clear_errors(
    project: Project, tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        add_dataset(project, path, name="train")
    text = str(info.value)
    assert expected in info.value.message and str(path) in text
    assert "CSV" in text and "sniff" not in text.lower() and "column0" not in text
    assert project.store.list("dataset") == []


def test_a_header_only_csv_is_a_clear_error(project: Project, tmp_path: Path) -> None:
    path = tmp_path / "head.csv"
    path.write_text("id,x,label\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        add_dataset(project, path, name="train")
    assert "holds no rows" in info.value.message and "['id', 'x', 'label']" in (info.value.message)


def test_duckdbs_sniffer_text_is_never_shown(tmp_path: Path) -> None:
    from loopml.data._read import _raise_csv_error

    path = tmp_path / "odd.csv"
    path.write_text("a\n1\n", encoding="utf-8")
    raw = (
        'Invalid Input Error: Error when sniffing file "odd.csv".\nIt was not possible to '
        "automatically detect the CSV parsing dialect"
    )
    with pytest.raises(InputError) as info:
        _raise_csv_error(path, raw)
    assert "sniffing" not in str(info.value) and "Invalid Input Error" not in str(info.value)
    assert info.value.where == str(path) and "delimiter" in info.value.message


# ------------------------------------------------------------------------------ wide data


def test_a_wide_csv_adds_and_validates_in_seconds(project: Project, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n_rows, n_cols = 200, 2000
    df = pd.DataFrame(rng.normal(size=(n_rows, n_cols)).round(4))
    df.columns = [f"f{i}" for i in range(n_cols)]
    df.insert(0, "id", np.arange(n_rows))
    df["region"] = rng.choice(["n", "s"], n_rows)
    df["label"] = rng.choice(["a", "b"], n_rows)
    path = tmp_path / "wide.csv"
    df.to_csv(path, index=False)
    start = time.perf_counter()
    v = add_dataset(project, path, name="wide")
    report = validate_dataset(project, v.ref)
    elapsed = time.perf_counter() - start
    assert elapsed < 30  # several minutes or a crash before batching
    assert len(v.columns) == n_cols + 3 and not report.has_errors
    f7 = v.column("f7")
    assert f7.min == pytest.approx(df["f7"].min()) and f7.max == pytest.approx(df["f7"].max())
    assert f7.n_distinct == df["f7"].nunique()


# --------------------------------------------------------------------- every table kind


def test_every_table_kind_evaluate_accepts_gives_the_same_version(
    project: Project, tmp_path: Path
) -> None:
    df = pd.DataFrame({"id": [1, 2, 3], "x": [0.5, 1.5, 2.5], "label": ["a", "b", "a"]})
    v = add_dataset(project, df, name="train")
    table = pa.Table.from_pandas(df, preserve_index=False)
    noext = tmp_path / "data-file"
    df.to_parquet(noext, index=False)
    con = duckdb.connect()
    try:
        kinds = [
            pl.from_pandas(df),
            pl.from_pandas(df).lazy(),
            table,
            table.to_batches()[0],
            con.from_arrow(table),
            noext,
        ]
        for kind in kinds:
            again = add_dataset(project, kind, name="train")
            assert (again.ref, again.existing) == ("train@1", True), type(kind).__name__
    finally:
        con.close()
    assert v.content_hash == again.content_hash
    with pytest.raises(InputError, match="cannot read a dict"):
        add_dataset(project, {"id": [1]}, name="train")
