"""Lineage: what every stored record carries (loopml version, git commit, time)."""

from __future__ import annotations

import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["git_commit", "lineage", "loopml_version", "utcnow"]


def loopml_version() -> str:
    try:
        return metadata.version("loopml")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


def utcnow() -> str:
    """The current UTC time as an ISO 8601 string with microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def git_commit(directory: str | Path) -> str | None:
    """The HEAD commit of the git work tree holding ``directory`` (``+dirty`` if modified)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        if head.returncode != 0:
            return None
        commit = head.stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(directory), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        return commit + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def lineage(directory: str | Path | None = None) -> dict[str, Any]:
    """The lineage fields recorded with every object."""
    return {
        "loopml_version": loopml_version(),
        "git_commit": git_commit(directory) if directory is not None else None,
        "created_at": utcnow(),
        "python": platform.python_version(),
    }
