"""A reference file that did not change is binned once per process; a changed file (or a
frame) is binned again, and the result is the same either way."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from loopml.monitor import _REFERENCE_CACHE, monitor
from monitor.monitor_helpers import make_stream


def test_the_reference_is_binned_once_until_it_changes(tmp_path: Path) -> None:
    ref = tmp_path / "ref.parquet"
    cur = tmp_path / "cur.parquet"
    pq.write_table(make_stream(np.random.default_rng(0), 4000), ref)
    pq.write_table(make_stream(np.random.default_rng(1), 2000, shift=0.3), cur)
    _REFERENCE_CACHE.clear()
    first = monitor(None, data=str(cur), time="ts", window="1000rows", reference=str(ref),
                    store=False)  # fmt: skip
    assert len(_REFERENCE_CACHE) == 1
    again = monitor(None, data=str(cur), time="ts", window="1000rows", reference=str(ref),
                    store=False)  # fmt: skip
    assert len(_REFERENCE_CACHE) == 1
    assert [d.to_dict() for d in again.drift] == [d.to_dict() for d in first.drift]
    # a new reference under the same name is binned again
    pq.write_table(make_stream(np.random.default_rng(5), 3000, shift=0.3), ref)
    os.utime(ref, ns=(1, 1))
    changed = monitor(None, data=str(cur), time="ts", window="1000rows", reference=str(ref),
                      store=False)  # fmt: skip
    assert len(_REFERENCE_CACHE) == 2 and changed.n_ref == 3000
    # frames are never cached
    monitor(None, data=str(cur), time="ts", window="1000rows",
            reference=pq.read_table(ref), store=False)  # fmt: skip
    assert len(_REFERENCE_CACHE) == 2
