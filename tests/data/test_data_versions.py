"""Dataset versions and splits: content hashing, schema inference, reading, bad input, splits.

Checked against pandas (null counts, ranges, categories) and scikit-learn's
``train_test_split(stratify=...)`` (class shares of a stratified split).
"""

from __future__ import annotations

import math
from pathlib import Path

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pytest
from sklearn.model_selection import train_test_split

from loopml.data import (
    add_dataset,
    dataset_path,
    get_dataset,
    get_split,
    list_datasets,
    load_dataset,
    split_dataset,
)
from loopml.errors import InputError, NotFoundError, SchemaError
from loopml.project import Project


def frame(n: int = 200, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    x[rng.choice(n, 7, replace=False)] = np.nan
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "x": x,
            "region": rng.choice(["north", "south", "east"], n),
            "customer": rng.integers(0, 40, n),
            "day": pd.date_range("2024-01-01", periods=n, freq="h"),
            "label": rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1]),
        }
    )


def test_formats_give_one_version_and_schema_matches_pandas(
    project: Project, tmp_path: Path
) -> None:
    df = frame()
    pq_path, arrow_path = tmp_path / "d.parquet", tmp_path / "d.arrow"
    df.to_parquet(pq_path, index=False)
    feather.write_feather(pa.Table.from_pandas(df, preserve_index=False), arrow_path)
    v1 = add_dataset(project, pq_path, name="train")
    assert (v1.ref, v1.existing, v1.n_rows) == ("train@1", False, len(df))
    again = add_dataset(project, arrow_path, name="train")
    assert (again.ref, again.existing, again.content_hash) == ("train@1", True, v1.content_hash)
    assert [v.ref for v in list_datasets(project)] == ["train@1"]
    # the schema agrees with pandas
    x = v1.column("x")
    assert x.n_null == int(df["x"].isna().sum()) == 7
    assert x.min == pytest.approx(df["x"].min()) and x.max == pytest.approx(df["x"].max())
    assert v1.column("region").categories == sorted(df["region"].unique())
    assert v1.column("label").categories == ["a", "b", "c"]
    assert v1.column("customer").n_distinct == df["customer"].nunique()
    assert v1.column("day").kind == "temporal" and not v1.column("day").nullable
    # the stored file is the data and its hash is its sha256
    back = pd.read_parquet(dataset_path(project, "train@1"))
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
    import hashlib

    assert hashlib.sha256(dataset_path(project, "train").read_bytes()).hexdigest() == (
        v1.content_hash
    )
    # a changed row is a new version
    df2 = df.copy()
    df2.loc[0, "label"] = "c"
    v2 = add_dataset(project, df2, name="train")
    assert v2.ref == "train@2" and v2.content_hash != v1.content_hash
    assert get_dataset(project, "train").ref == "train@2"
    assert get_dataset(project, v1.id).ref == "train@1"
    assert "<table>" in v2._repr_html_() and v2.to_dict()["n_columns"] == 6


def test_csv_and_fsspec_url(project: Project, tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("id,x,label\n1,0.5,a\n2,1.5,b\n3,,a\n", encoding="utf-8")
    v = add_dataset(project, path, name="csv")
    assert v.n_rows == 3 and v.column("x").n_null == 1 and v.column("x").max == 1.5
    fs = fsspec.filesystem("memory")
    with fs.open("/loopml-test/d.parquet", "wb") as handle:
        pd.DataFrame({"id": [1, 2], "label": ["a", "b"]}).to_parquet(handle, index=False)
    u = add_dataset(project, "memory://loopml-test/d.parquet", name="url")
    assert u.n_rows == 2 and load_dataset(project, u)["label"].to_pylist() == ["a", "b"]


def test_malformed_csv_names_the_line_and_stores_nothing(project: Project, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("id,a,label\n1,2,x\n2,3,y\n3,4,5,6\n4,5,z\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        add_dataset(project, path, name="train")
    assert info.value.where == f"{path}:4"
    assert "line 4" in info.value.message and "4 fields" in info.value.message
    assert project.store.list("dataset") == []


def test_large_malformed_csv_line_from_duckdb(project: Project, tmp_path: Path) -> None:
    rows = ["id,a,label"] + [f"{i},{i * 2},x" for i in range(25000)]
    rows.insert(22001, "99,4,5,6")  # line 22002 of the file
    path = tmp_path / "big.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        add_dataset(project, path, name="train")
    assert info.value.where == f"{path}:22002"


def test_unreadable_files(project: Project, tmp_path: Path) -> None:
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really parquet")
    with pytest.raises(InputError, match="Parquet"):
        add_dataset(project, broken, name="train")
    with pytest.raises(InputError, match="does not exist"):
        add_dataset(project, tmp_path / "missing.csv", name="train")
    with pytest.raises(InputError, match="format"):
        add_dataset(project, tmp_path / "data.xlsx", name="train")
    assert project.store.list("dataset") == []


def test_label_or_id_column_missing_is_a_schema_error(project: Project) -> None:
    before = project.store.list("dataset")
    with pytest.raises(SchemaError) as info:
        add_dataset(project, pd.DataFrame({"id": [1, 2], "y": ["a", "b"]}), name="train")
    assert "'label'" in info.value.message and "--unlabeled" in (info.value.hint or "")
    with pytest.raises(SchemaError, match="'id'"):
        add_dataset(project, pd.DataFrame({"key": [1, 2], "label": ["a", "b"]}), name="train")
    assert project.store.list("dataset") == before
    v = add_dataset(project, pd.DataFrame({"id": [1, 2], "y": [3, 4]}), name="p", unlabeled=True)
    assert v.label_column is None


def test_failed_add_before_put_stores_nothing(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_dataset(project, frame(20), name="train")
    before = [r.id for r in project.store.list("dataset")]

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(project.store.artifacts, "put_bytes", boom)
    with pytest.raises(OSError, match="disk full"):  # the injected failure, not another
        add_dataset(project, frame(30), name="train")
    assert [r.id for r in project.store.list("dataset")] == before


def test_random_split_is_reproducible(project: Project) -> None:
    v = add_dataset(project, frame(), name="train")
    s1 = split_dataset(project, v.ref, by="random", test=0.25, seed=3)
    s2 = split_dataset(project, v.ref, by="random", test=0.25, seed=3)
    assert s1.id == s2.id and s1.ref == "train@1@1"
    assert s1.n_test == math.ceil(0.25 * 200) and s1.n_train == 150
    s3 = split_dataset(project, v.ref, by="random", test=0.25, seed=4)
    assert set(s3.ids(project, "test").to_pylist()) != set(s1.ids(project, "test").to_pylist())
    # load_dataset(split=) follows the newest split
    assert get_split(project, v.ref).id == s3.id
    test_rows = load_dataset(project, v.ref, split="test")
    assert set(test_rows["id"].to_pylist()) == set(s3.ids(project, "test").to_pylist())
    assert load_dataset(project, v.ref, split="train").num_rows == 150


def test_stratified_split_keeps_class_shares_like_sklearn(project: Project) -> None:
    df = frame(1000, seed=5)
    v = add_dataset(project, df, name="train")
    sp = split_dataset(project, v.ref, by="stratified", test=0.2, seed=0)
    test = load_dataset(project, v.ref, split="test").to_pandas()
    _, sk_test = train_test_split(df, test_size=0.2, stratify=df["label"], random_state=0)
    ours = test["label"].value_counts().sort_index()
    theirs = sk_test["label"].value_counts().sort_index()
    assert len(test) == len(sk_test) == sp.n_test == 200
    assert (ours - theirs).abs().max() <= 1


def test_group_and_time_splits(project: Project) -> None:
    v = add_dataset(project, frame(), name="train")
    split_dataset(project, v.ref, by="group:customer", test=0.3, seed=1)
    train = load_dataset(project, v.ref, split="train").to_pandas()
    test = load_dataset(project, v.ref, split="test").to_pandas()
    assert not set(train["customer"]) & set(test["customer"])
    assert 0.3 * 200 <= len(test) < 0.3 * 200 + 40
    split_dataset(project, v.ref, by="time:day", test=0.2, seed=0)
    train = load_dataset(project, v.ref, split="train").to_pandas()
    test = load_dataset(project, v.ref, split="test").to_pandas()
    assert len(test) == 40 and train["day"].max() < test["day"].min()


def test_bad_split_requests(project: Project) -> None:
    v = add_dataset(project, frame(20), name="train")
    with pytest.raises(InputError, match="not a split method"):
        split_dataset(project, v.ref, by="bananas")
    with pytest.raises(SchemaError, match="nope"):
        split_dataset(project, v.ref, by="group:nope")
    with pytest.raises(InputError, match="strictly between"):
        split_dataset(project, v.ref, test=1.5)
    with pytest.raises(NotFoundError, match="has no split"):
        load_dataset(project, v.ref, split="test")
    dup = frame(20)
    dup.loc[3, "id"] = 4
    d = add_dataset(project, dup, name="dup")
    with pytest.raises(InputError, match=r"1 id\(s\).*more than once"):
        split_dataset(project, d.ref)
