"""Regenerate the Label Studio fixtures of ``tests/flywheel/test_import.py``.

``ls_export.json`` is a hand-made Label Studio JSON export (the shape of "Export -> JSON"
of a project labeled with loopml's config: one ``<Choices name="label" toName="row">``);
``ls_export_min.json`` and ``ls_export.csv`` are what label-studio-sdk's converter makes of
it (JSON_MIN and CSV). The tests read these files; they never import label-studio-sdk.

Request ids are placeholders ``req-000`` .. ``req-011``: the tests replace them with ids of
a seeded prediction log. Run it in a throwaway venv::

    python3 -m venv /tmp/ls-venv && /tmp/ls-venv/bin/pip install label-studio-sdk
    /tmp/ls-venv/bin/python tests/flywheel/data/make_fixtures.py
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

CONFIG = """<View>
  <Text name="row" value="$request_id"/>
  <Choices name="label" toName="row" choice="single">
    <Choice value="0"/>
    <Choice value="1"/>
  </Choices>
</View>"""

# annotator 1 is exported as a bare user id, the others as user objects with an email
ANNOTATORS: dict[str, Any] = {
    "1": 1,
    "ben": {"id": 2, "first_name": "Ben", "last_name": "", "email": "ben@example.com"},
    "cy": {"id": 3, "first_name": "Cy", "last_name": "", "email": "cy@example.com"},
}

# (task, annotator, choice, minute, cancelled): req-002 is labeled twice by annotator 1,
# differently (the later one counts); req-008 .. req-010 are overlap items; cy's annotation
# of req-009 was cancelled (skipped); req-011 has no annotation
ANNOTATIONS: list[tuple[int, str, str | None, int, bool]] = [
    (0, "1", "1", 1, False),
    (1, "ben", "0", 2, False),
    (2, "1", "0", 3, False),
    (2, "1", "1", 30, False),
    (3, "ben", "1", 4, False),
    (4, "1", "0", 5, False),
    (5, "ben", "0", 6, False),
    (6, "1", "1", 7, False),
    (7, "ben", "1", 8, False),
    (8, "1", "1", 9, False),
    (8, "ben", "1", 10, False),
    (8, "cy", "1", 11, False),
    (9, "1", "0", 12, False),
    (9, "ben", "1", 13, False),
    (9, "cy", None, 14, True),
    (10, "1", "0", 15, False),
    (10, "ben", "0", 16, False),
]


def _time(minute: int) -> str:
    return f"2026-05-04T10:{minute:02d}:00.000000Z"


def tasks() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for t in range(12):
        rid = f"req-{t:03d}"
        out.append(
            {
                "id": 100 + t,
                "annotations": [],
                "drafts": [],
                "predictions": [],
                "data": {
                    "request_id": rid,
                    "x": round(0.25 * t - 1.0, 2),
                    "region": ("north", "south", "east")[t % 3],
                },
                "meta": {},
                "created_at": _time(0),
                "updated_at": _time(0),
                "inner_id": t + 1,
                "total_annotations": 0,
                "cancelled_annotations": 0,
                "total_predictions": 0,
                "comment_count": 0,
                "unresolved_comment_count": 0,
                "last_comment_updated_at": None,
                "project": 7,
                "updated_by": None,
                "file_upload": None,
                "comment_authors": [],
            }
        )
    for n, (t, who, choice, minute, cancelled) in enumerate(ANNOTATIONS):
        task = out[t]
        result = (
            []
            if choice is None
            else [
                {
                    "value": {"choices": [choice]},
                    "id": f"r{n:03d}",
                    "from_name": "label",
                    "to_name": "row",
                    "type": "choices",
                    "origin": "manual",
                }
            ]
        )
        task["annotations"].append(
            {
                "id": 500 + n,
                "completed_by": ANNOTATORS[who],
                "result": result,
                "was_cancelled": cancelled,
                "ground_truth": False,
                "created_at": _time(minute),
                "updated_at": _time(minute),
                "draft_created_at": None,
                "lead_time": 3.5,
                "prediction": {},
                "result_count": len(result),
                "unique_id": f"u-{n:03d}",
                "import_id": None,
                "last_action": None,
                "task": task["id"],
                "project": 7,
                "updated_by": ANNOTATORS[who] if isinstance(ANNOTATORS[who], int) else None,
                "parent_prediction": None,
                "parent_annotation": None,
                "last_created_by": None,
            }
        )
        task["total_annotations"] += 0 if cancelled else 1
        task["cancelled_annotations"] += 1 if cancelled else 0
    return out


def main() -> None:
    from label_studio_sdk.converter import Converter  # type: ignore[import-not-found]

    export = HERE / "ls_export.json"
    export.write_text(json.dumps(tasks(), indent=2) + "\n", encoding="utf-8")
    work = Path(tempfile.mkdtemp())
    try:
        conv = Converter(config=CONFIG, project_dir=str(work), download_resources=False)
        conv.convert_to_json_min(str(export), str(work / "min"), is_dir=False)
        shutil.copy(work / "min" / "result.json", HERE / "ls_export_min.json")
        conv.convert_to_csv(str(export), str(work / "csv"), is_dir=False, sep=",")
        shutil.copy(work / "csv" / "result.csv", HERE / "ls_export.csv")
    finally:
        shutil.rmtree(work)
    for name in ("ls_export.json", "ls_export_min.json", "ls_export.csv"):
        print(name, (HERE / name).stat().st_size, "bytes")


if __name__ == "__main__":
    main()
