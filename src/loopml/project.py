"""A project: its directory, its validated spec and its store, opened together."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from loopml.errors import InputError, LoopmlError
from loopml.metrics._catalog import Task
from loopml.spec import SPEC_FILE, Spec, find_project_dir, load_spec, render_spec
from loopml.store import Store

__all__ = ["Project", "init_project", "open_project"]


@dataclass
class Project:
    """An opened project. ``store`` is opened lazily and migrated on first use."""

    dir: Path
    spec: Spec
    _store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store.open(self.dir)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_project(directory: str | Path | None = None) -> Project:
    """Open the project in ``directory`` or the nearest parent holding loopml.toml."""
    pdir = find_project_dir(directory)
    return Project(dir=pdir, spec=load_spec(pdir / SPEC_FILE))


def _write_spec(pdir: Path, spec_path: Path, text: str) -> None:
    """Validate ``text`` and write it to ``spec_path`` atomically; on failure nothing is left
    behind and the error names loopml.toml, never the temporary file."""
    tmp = pdir / f".{SPEC_FILE}.{os.getpid()}.tmp"
    try:
        pdir.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        try:
            load_spec(tmp)  # never write a spec loopml itself would refuse
        except LoopmlError as exc:
            raise type(exc)(
                exc.message.replace(str(tmp), str(spec_path)),
                hint=exc.hint,
                where=(exc.where or "").replace(str(tmp), str(spec_path)) or str(spec_path),
            ) from None
        tmp.replace(spec_path)
    except OSError as exc:
        raise InputError(
            f"cannot write {spec_path}: {exc.strerror or exc}",
            hint="check that the directory exists and is writable (and the disk is not full)",
            where=str(spec_path),
        ) from None
    finally:
        tmp.unlink(missing_ok=True)


def init_project(
    directory: str | Path = ".",
    *,
    task: Task,
    name: str | None = None,
    label: str = "label",
    id_column: str = "id",
    problem: str = "",
    archetype: str = "software-2.0",
    optimizing: str | None = None,
    force: bool = False,
) -> Project:
    """Write a commented loopml.toml in ``directory``, create the store and open the project."""
    pdir = Path(directory).resolve()
    if pdir.exists() and not pdir.is_dir():
        raise InputError(f"{pdir} exists and is not a directory", hint="choose another path")
    spec_path = pdir / SPEC_FILE
    if spec_path.exists() and not force:
        raise InputError(
            f"{spec_path} already exists",
            hint="edit it, or pass --force to overwrite it (the store is kept)",
        )
    from loopml.spec import ARCHETYPES

    if archetype not in ARCHETYPES:
        raise InputError(
            f"unknown archetype {archetype!r}; expected one of {', '.join(ARCHETYPES)}",
            hint="pass --archetype software-2.0, human-in-the-loop or autonomous",
        )
    if task not in ("binary", "multiclass", "regression"):
        raise InputError(
            f"unknown task {task!r}; expected binary, multiclass or regression",
            hint="pass --task binary, multiclass or regression",
        )
    text = render_spec(
        name=name or pdir.name,
        task=task,
        label=label,
        id_column=id_column,
        problem=problem,
        archetype=archetype,
        optimizing=optimizing,
    )
    _write_spec(pdir, spec_path, text)
    project = Project(dir=pdir, spec=load_spec(spec_path))
    project.store  # create and migrate the store now  # noqa: B018
    return project
