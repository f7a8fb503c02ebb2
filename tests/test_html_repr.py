"""Every result a notebook user holds shows itself as HTML: its table view where it has
one, else its to_dict() as escaped nested tables."""

from __future__ import annotations

from pathlib import Path

from loopml.evidence import MajorityCheck
from loopml.metrics import Estimate
from loopml.serving import PredictFileResult
from loopml.store import Store
from loopml.tableview import Column, HtmlRepr, TableView, dict_html


def test_dict_html_escapes_and_nests() -> None:
    text = dict_html({"a<b": [1.23456, None, {"x": "<script>"}]}, title="T & U")
    assert "&lt;script&gt;" in text and "<script>" not in text
    assert "a&lt;b" in text and "T &amp; U" in text and "1.23" in text and "<i>none</i>" in text


def test_a_result_with_a_table_shows_the_table() -> None:
    class Board(HtmlRepr):
        def to_dict(self) -> dict[str, object]:
            return {"rows": 1}

        def table(self) -> TableView:
            return TableView("Board", [Column("name")], [{"name": "only row"}])

    html = Board()._repr_html_()
    assert "only row" in html and "<table" in html


def test_results_render(tmp_path: Path) -> None:
    assert "0.5 [0.4, 0.6]" in Estimate(0.5, 0.4, 0.6, "wilson")._repr_html_()
    assert issubclass(PredictFileResult, HtmlRepr) and issubclass(MajorityCheck, HtmlRepr)
    with Store.open(tmp_path) as store:
        html = store.verify()._repr_html_()
    assert "StoreCheck" in html and "<table" in html
