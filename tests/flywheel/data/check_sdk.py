"""Label Studio's own checks of an export, run by label-studio-sdk's interpreter (it is
too heavy for loopml's environment): ``python check_sdk.py CONFIG.xml TASKS.json``. The
config must validate, every object's variable must be in each task's data, and every
prediction must validate. Exit 0 when all hold; else a message and exit 1."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path


def main() -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from label_studio_sdk.label_interface import LabelInterface  # type: ignore[import-not-found]

        li = LabelInterface(Path(sys.argv[1]).read_text(encoding="utf-8"))
        li.validate()
        tasks = json.loads(Path(sys.argv[2]).read_text(encoding="utf-8"))
        for k, task in enumerate(tasks):
            for obj in li.objects:
                if task["data"].get(obj.value_name) is None:
                    print(f"task {k}: no {obj.value_name!r} in data")
                    return 1
            for pred in task["predictions"]:
                errors = li.validate_prediction(pred, return_errors=True)
                if errors:
                    print(f"task {k}: prediction invalid: {errors}")
                    return 1
    print(f"ok: {len(tasks)} tasks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
