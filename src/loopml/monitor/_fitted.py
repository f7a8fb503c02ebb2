"""The fitted reference, kept in the project: what monitoring computes from the reference
alone, saved once and loaded by the next run (a new process each time on the command line).

A fit is the reference's bins (:class:`~loopml.monitor._bins.FeatureBins`: edges, values,
counts, bin means), its row count and the drift nulls drawn so far for it (one
:class:`~loopml.monitor._drift.Null` per feature, window size, ``alpha``, ``draws`` and
``seed``: a null is a function of the reference's counts and those alone). It is keyed by
everything it depends on (:func:`key_of`): the reference's identity (a file's resolved path,
size and modification time; a dataset version's content hash, the part, and the split's
assignment), the monitored columns and their types in order, the bin settings, the engine,
:data:`FORMAT` and loopml's version.

Stored as JSON, never pickle, in ``.loopml/cache/monitor-reference-<key>.json``: written to
a temporary file and renamed (:func:`save`), so a reader sees the old file or the new one,
never half of one. A file that cannot be read, is not valid JSON, has another format or key,
or whose numbers do not hold together (each feature's counts summing to the reference's
rows, one count per bin) is ignored (:func:`load` returns None): the run fits again and
rewrites it. At most :data:`KEEP` fits are kept (the least recently used go first).
Deleting the folder is always safe: the next run fits again.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import json
import math
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopml.monitor._bins import FeatureBins
from loopml.monitor._drift import Null

__all__ = [
    "FORMAT",
    "KEEP",
    "Fitted",
    "NullKey",
    "cache_folder",
    "file_for",
    "key_of",
    "load",
    "save",
]

#: the file format (and the meaning of a fit): a change of either bumps it, so older files
#: are ignored and fitted again
FORMAT = 1
#: fitted references kept per project (the least recently used are removed beyond it)
KEEP = 8
#: nulls kept per fit (the least recently used go first)
MAX_NULLS = 4096
#: a file larger than this is not read (a fit of 2,000 values per feature is far smaller)
MAX_BYTES = 64 * 2**20
#: a temporary file older than this is a leftover of an interrupted write
STALE_SECONDS = 3600.0
PREFIX = "monitor-reference-"

#: (feature, window rows, alpha, draws, seed)
NullKey = tuple[str, int, float, int, int]


@dataclass
class Fitted:
    """One reference's fit: its bins (in the monitored columns' order), its rows, and the
    nulls drawn for it so far."""

    bins: list[FeatureBins]
    n_ref: int
    nulls: dict[NullKey, Null] = field(default_factory=dict)

    def nulls_for(self, alpha: float, draws: int, seed: int) -> dict[tuple[str, int], Null]:
        """The known nulls of these settings, by (feature, window rows)."""
        return {
            (f, n): null
            for (f, n, a, d, s), null in self.nulls.items()
            if a == alpha and d == draws and s == seed
        }

    def remember(
        self, used: Mapping[tuple[str, int], Null], alpha: float, draws: int, seed: int
    ) -> bool:
        """Add the nulls a run used (the most recent last); True when one was new."""
        new = False
        for (feature, n), null in used.items():
            key = (feature, int(n), float(alpha), int(draws), int(seed))
            new = new or key not in self.nulls
            self.nulls.pop(key, None)
            self.nulls[key] = null
        while len(self.nulls) > MAX_NULLS:
            self.nulls.pop(next(iter(self.nulls)))
        return new


@functools.cache
def _loopml_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("loopml")
    except PackageNotFoundError:
        return "unknown"


def key_of(
    identity: list[Any],
    columns: Mapping[str, str],
    *,
    n_bins: int,
    max_categories: int,
    engine: str,
) -> dict[str, Any]:
    """Everything a fit depends on, as JSON data (its digest names the file)."""
    return {
        "format": FORMAT,
        "loopml": _loopml_version(),
        "engine": engine,
        "reference": list(identity),
        "columns": [[c, t] for c, t in columns.items()],
        "n_bins": int(n_bins),
        "max_categories": int(max_categories),
    }


def digest(key: Mapping[str, Any]) -> str:
    text = json.dumps(key, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def cache_folder(project_dir: str | Path) -> Path | None:
    """``.loopml/cache`` of a project, or None when the project has no ``.loopml`` folder."""
    base = Path(project_dir) / ".loopml"
    return base / "cache" if base.is_dir() else None


def file_for(folder: Path, key: Mapping[str, Any]) -> Path:
    return folder / f"{PREFIX}{digest(key)}.json"


# --------------------------------------------------------------------------- numbers


def _num(x: float) -> float | str:
    """A float as JSON: itself when finite (``repr`` round-trips exactly), else a name."""
    x = float(x)
    if math.isfinite(x):
        return x
    return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")


_NAMED = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _float(v: Any) -> float:
    if isinstance(v, str) and v in _NAMED:
        return _NAMED[v]
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"not a number: {v!r}")
    return float(v)


def _int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"not an integer: {v!r}")
    return v


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"not text: {v!r}")
    return v


def _list(v: Any) -> list[Any]:
    if not isinstance(v, list):
        raise ValueError(f"not a list: {v!r}")
    return v


# --------------------------------------------------------------------------- encoding


def _bins_to_json(fb: FeatureBins) -> dict[str, Any]:
    return {
        "name": fb.name,
        "kind": fb.kind,
        "type": fb.type_name,
        "labels": list(fb.labels),
        "ref_counts": [int(c) for c in fb.ref_counts],
        "edges": [_num(e) for e in fb.edges],
        "values": list(fb.values),
        "means": [_num(m) for m in fb.means],
    }


def _bins_from_json(d: Any, n_ref: int) -> FeatureBins:
    if not isinstance(d, dict):
        raise ValueError("a feature is not an object")
    kind = d["kind"]
    if kind not in ("numeric", "categorical"):
        raise ValueError(f"kind {kind!r}")
    labels = tuple(_str(x) for x in _list(d["labels"]))
    counts = tuple(_int(x) for x in _list(d["ref_counts"]))
    edges = tuple(_float(x) for x in _list(d["edges"]))
    values = tuple(_str(x) for x in _list(d["values"]))
    means = tuple(_float(x) for x in _list(d["means"]))
    if len(counts) != len(labels) or sum(counts) != n_ref or min(counts, default=0) < 0:
        raise ValueError("the counts do not fit the bins or the reference's rows")
    if kind == "numeric":
        ok = len(labels) == len(edges) + 2 and len(means) in (0, len(labels) - 1)
        ok = ok and not values and all(math.isfinite(e) for e in edges)
        ok = ok and all(a < b for a, b in itertools.pairwise(edges))
    else:
        ok = labels[:2] == ("missing", "other") and labels[2:] == values
        ok = ok and not edges and not means
    if not ok:
        raise ValueError("the bins do not hold together")
    return FeatureBins(
        _str(d["name"]), kind, _str(d["type"]), labels, counts,
        edges=edges, values=values, means=means,
    )  # fmt: skip


def _null_to_json(key: NullKey, null: Null) -> dict[str, Any]:
    feature, n, alpha, draws, seed = key
    return {
        "feature": feature,
        "n": int(n),
        "alpha": _num(alpha),
        "draws": int(draws),
        "seed": int(seed),
        "drawn": int(null.draws),
        "median": _num(null.median),
        "threshold": _num(null.threshold),
        "shift_median": _num(null.shift_median),
        "shift_threshold": _num(null.shift_threshold),
        "score_fit": [_num(x) for x in null.score_fit],
        "shift_fit": [_num(x) for x in null.shift_fit],
    }


def _null_from_json(d: Any) -> tuple[NullKey, Null]:
    if not isinstance(d, dict):
        raise ValueError("a null is not an object")
    n = _int(d["n"])
    key = (_str(d["feature"]), n, _float(d["alpha"]), _int(d["draws"]), _int(d["seed"]))
    score_fit = tuple(_float(x) for x in _list(d["score_fit"]))
    shift_fit = tuple(_float(x) for x in _list(d["shift_fit"]))
    if len(score_fit) != 2 or len(shift_fit) != 2:
        raise ValueError("a gamma fit is two numbers")
    null = Null(
        n=n,
        draws=_int(d["drawn"]),
        median=_float(d["median"]),
        threshold=_float(d["threshold"]),
        shift_median=_float(d["shift_median"]),
        shift_threshold=_float(d["shift_threshold"]),
        score_fit=(score_fit[0], score_fit[1]),
        shift_fit=(shift_fit[0], shift_fit[1]),
    )
    return key, null


# --------------------------------------------------------------------------- files


def load(path: Path, key: Mapping[str, Any], columns: Mapping[str, str]) -> Fitted | None:
    """The fit saved at ``path`` for ``key``, or None: no file, or one that cannot be used
    (unreadable, not JSON, another format or key, numbers that do not hold together). A
    file used is touched, so the least recently used fits are the ones removed."""
    try:
        if path.stat().st_size > MAX_BYTES:
            return None
        doc = json.loads(path.read_bytes())
        fitted = _decode(doc, key, columns)
    except (OSError, ValueError, TypeError, KeyError, IndexError, RecursionError):
        return None
    with contextlib.suppress(OSError):
        os.utime(path)
    return fitted


def _decode(doc: Any, key: Mapping[str, Any], columns: Mapping[str, str]) -> Fitted:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("key") != dict(key):
        raise ValueError("another format or key")
    n_ref = _int(doc["rows"])
    if n_ref <= 0:
        raise ValueError("a reference without rows")
    bins = [_bins_from_json(d, n_ref) for d in _list(doc["features"])]
    if [(b.name, b.type_name) for b in bins] != list(columns.items()):
        raise ValueError("other columns")
    nulls = dict(_null_from_json(d) for d in _list(doc["nulls"]))
    return Fitted(bins=bins, n_ref=n_ref, nulls=nulls)


def save(path: Path, key: Mapping[str, Any], fitted: Fitted, *, reference: str) -> bool:
    """Write the fit to ``path`` atomically (a temporary file in the same folder, renamed
    over it), then remove the least recently used fits beyond :data:`KEEP` and leftovers of
    interrupted writes. True when written; a folder that cannot be written is no error (the
    next run fits again)."""
    doc = {
        "format": FORMAT,
        "key": dict(key),
        "reference": reference,
        "saved": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "rows": int(fitted.n_ref),
        "features": [_bins_to_json(fb) for fb in fitted.bins],
        "nulls": [_null_to_json(k, v) for k, v in fitted.nulls.items()],
    }
    text = json.dumps(doc, separators=(",", ":"), allow_nan=False)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        return False
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    prune(path.parent, keep=KEEP)
    return True


def prune(folder: Path, *, keep: int = KEEP) -> None:
    """Keep the ``keep`` most recently used fits; remove temporary files older than
    :data:`STALE_SECONDS` (an interrupted write's)."""
    now = time.time()
    fits: list[tuple[float, Path]] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return
    for p in entries:
        name = p.name
        try:
            mtime = p.stat().st_mtime
        except OSError:
            continue
        if name.startswith(PREFIX) and name.endswith(".json"):
            fits.append((mtime, p))
        elif (
            name.startswith("." + PREFIX) and name.endswith(".tmp") and now - mtime > STALE_SECONDS
        ):
            with contextlib.suppress(OSError):
                p.unlink(missing_ok=True)
    fits.sort(key=lambda t: (-t[0], t[1].name))
    for _, p in fits[keep:]:
        with contextlib.suppress(OSError):
            p.unlink(missing_ok=True)
