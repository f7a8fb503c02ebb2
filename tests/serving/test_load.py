"""The load test: mixed predict and feedback traffic at concurrency 16 against a real
uvicorn process for 60 s (LOOPML_LOADTEST_SECONDS shortens it locally), then SIGTERM:
no errors, every acknowledged row in the log, every feedback row joined."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from loopml.serving import read_joined
from serving.test_server import CLEAN, rows

CONCURRENCY = 16


@pytest.mark.slow
def test_sixty_seconds_of_mixed_traffic_then_sigterm_loses_nothing(
    serve: Any, project_dir: Path
) -> None:
    seconds = float(os.environ.get("LOOPML_LOADTEST_SECONDS", "60"))
    s = serve()
    pool = rows(200)
    acked: set[str] = set()
    labelled: dict[str, int] = {}
    sent: set[str] = set()
    errors: list[str] = []

    async def worker(k: int, deadline: float) -> None:
        rng = random.Random(k)
        async with httpx.AsyncClient(base_url=s.url, timeout=30) as c:
            while time.monotonic() < deadline:
                open_ids = acked - labelled.keys() - sent
                if open_ids and rng.random() < 0.3:
                    rid = min(open_ids)  # each id labelled once: the expected label is known
                    sent.add(rid)
                    label = rng.randint(0, 1)
                    r = await c.post("/feedback", json={"request_id": rid, "label": label})
                    if r.status_code != 200:
                        errors.append(f"feedback {r.status_code} {r.text[:200]}")
                    else:
                        labelled[rid] = label
                    continue
                n = 1 if rng.random() < 0.8 else rng.randint(2, 20)
                body = {"records": rng.sample(pool, n)}
                try:
                    r = await c.post("/predict", json=body)
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))
                    continue
                if r.status_code != 200:
                    errors.append(f"predict {r.status_code} {r.text[:200]}")
                    continue
                acked.update(p["request_id"] for p in r.json()["predictions"])

    async def main() -> None:
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(worker(k, deadline) for k in range(CONCURRENCY)))

    asyncio.run(main())
    assert s.stop(signal.SIGTERM) in CLEAN
    assert errors == []
    assert len(acked) > 10 * seconds  # traffic really flowed
    joined = read_joined(project_dir).to_pandas()
    assert len(joined) == len(acked) and set(joined["request_id"]) == acked
    got = joined.dropna(subset=["label"]).set_index("request_id")["label"].astype(int)
    assert got.to_dict() == labelled
